/* device events -> FHIR (not mapped yet). */
#include "query/fhir/map.h"

int cl_fhir_map_device(cl_fhir_map *m, cl_err *err) {
  (void)m;
  (void)err;
  return 0;
}

/* Clinical mappings (map_clinical.c, map_results.c): what the two files
 * share. Private to them.
 *
 * map_clinical.c has Condition, AllergyIntolerance, Immunization,
 * DocumentReference, ServiceRequest, the helpers below and the dispatcher;
 * map_results.c has ObservationRecorded and LabResultReported (Observation,
 * DiagnosticReport). The invariants of both are at the top of
 * map_clinical.c. */
#ifndef CL_QUERY_FHIR_MAP_CLINICAL_INT_H
#define CL_QUERY_FHIR_MAP_CLINICAL_INT_H

#include <stddef.h>

#include "query/fhir/fj.h"
#include "query/fhir/map.h"

#define TERMINOLOGY "http://terminology.hl7.org/CodeSystem/"

/* An enum member's FHIR code, in a table indexed by the enum value. */
typedef struct fcode {
  const char *code;    /* the FHIR code; NULL: the member states nothing */
  const char *display; /* its display in the code system */
} fcode;

/* The entry of enum value v in tab (n entries); NULL for UNSPECIFIED (not
 * stated) and for a value this build does not know. */
const fcode *mc_pick(const fcode *tab, size_t n, int v);
#define PICK(tab, v) mc_pick((tab), sizeof(tab) / sizeof((tab)[0]), (int)(v))

/* The code of an entry PICK found, or NULL. */
static inline const char *code_of(const fcode *c) { return c != NULL ? c->code : NULL; }

/* [v] (v stolen), or NULL for NULL. */
json_t *mc_one(json_t *v);

/* "#<cid>": a reference to a contained resource. */
json_t *mc_local_ref(const char *cid);

/* A contained Specimen with id `cid`, or NULL if s states nothing. Its
 * accession number defaults to the report's (`accession`, may be NULL). */
json_t *mc_specimen(const cl_fhir_map *m, const Clinlog__V1__Specimen *s, const char *cid,
                    const char *accession);

/* ObservationRecorded -> Observation; LabResultReported -> one Observation
 * per result line, then the DiagnosticReport (map_results.c). 0, or the
 * store's error through cl_fhir_map_put. */
int mc_observation(cl_fhir_map *m, const Clinlog__V1__ObservationRecorded *b, cl_err *err);
int mc_lab_report(cl_fhir_map *m, const Clinlog__V1__LabResultReported *b, cl_err *err);

#endif

/* The top-level elements of the FHIR R4 resource types clinlog serves, and
 * subsetting resources to some of them: the minimum-necessary filter the
 * access policy's `fields` rules ask for (query/auth/policy.h).
 *
 * Elements are numbered per type in StructureDefinition order (0 "id",
 * 1 "meta", ...; at most 64), from a table generated from the R4 core
 * definitions (elements_table.c, scripts/gen-fhir-elements.js). A choice
 * element keeps its definition name ("onset[x]") and covers every JSON
 * member it may appear as ("onsetDateTime", "onsetPeriod"); a primitive's
 * "_name" member (its id and extensions) goes with "name".
 *
 * Subsetting works on the JSON text and copies what it keeps byte for
 * byte, so decimals keep their precision (7.10 stays 7.10) and nothing is
 * re-encoded. All functions are reentrant. */
#ifndef CL_QUERY_FHIR_ELEMENTS_H
#define CL_QUERY_FHIR_ELEMENTS_H

#include <stddef.h>
#include <stdint.h>

typedef struct cl_fhir_elements {
  const char *const *names;
  size_t n;
  uint64_t required; /* bit i: element i has minimum cardinality 1 */
} cl_fhir_elements;

/* Indexed by enum cl_fhir_type (query/fhir/map.h); [0] is empty. */
extern const cl_fhir_elements cl_fhir_elements_table[];

/* The index of element `name` as the definition names it ("code",
 * "onset[x]") in resource type `type` (a CL_FHIR_*), or -1. */
int cl_fhir_element_index(int type, const char *name);
/* The element a JSON member of a `type` resource belongs to ("onsetPeriod"
 * and "_onsetDateTime" -> onset[x]), or -1 (not an element of the type). */
int cl_fhir_element_of_member(int type, const char *member, size_t len);
/* What a subset always keeps: id, meta and the required elements, so a
 * subsetted resource is still valid. */
uint64_t cl_fhir_elements_kept(int type);

/* Which elements of a `type` resource the reader may see: 0 all of them,
 * or 1 with *mask set to the allowed elements (cl_fhir_subset adds the
 * kept ones). */
typedef int (*cl_fhir_mask_fn)(void *ctx, int type, uint64_t *mask);

/* Copies a FHIR answer (a resource, or a Bundle whose entries' resources
 * are subsetted in turn; with `ndjson`, one resource per line) keeping of
 * each resource the elements `fn` allows. A resource that lost anything
 * gets meta.tag SUBSETTED (http://terminology.hl7.org/CodeSystem/
 * v3-ObservationValue), as FHIR asks of a partial resource. Resources of
 * types clinlog does not serve (OperationOutcome) are copied whole.
 * *out returned-owned (malloc; free), *changed 1 if anything was left out.
 * Returns 0, or -1 (malformed JSON: nothing the engine writes; or out of
 * memory). */
int cl_fhir_subset(const char *json, size_t len, int ndjson, cl_fhir_mask_fn fn, void *ctx,
                   char **out, size_t *outlen, int *changed);

#endif

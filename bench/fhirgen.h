/* Generated FHIR R4 patient records for clinlog-bench ingest fhir: one
 * outpatient visit each, as an EHR's interface would send it (modelled on
 * tests/interop/fhir_write/synthetic_patient.json): a Patient, a finished
 * Encounter, a Condition, an AllergyIntolerance, a MedicationRequest, a
 * blood-pressure panel and five vital signs (11 resources, 12 events). */
#ifndef CL_BENCH_FHIRGEN_H
#define CL_BENCH_FHIRGEN_H

#include <stddef.h>

#define BENCH_FHIR_RESOURCES 11 /* resources of one record */

/* Record i of the set `tag` as a transaction Bundle (JSON text; the
 * resources reference one another by urn:uuid fullUrls); distinct tags or
 * i give distinct patients and business ids. malloc'd, or NULL. */
char *bench_fhir_bundle(const char *tag, unsigned i);

/* The resources of `bundle` as NDJSON lines, as a Bulk Data export holds
 * them: the Patient with id `pid`, the others referencing Patient/<pid>
 * (and no Encounter). *lines: malloc'd array of malloc'd strings; returns
 * how many (0 on failure). */
size_t bench_fhir_ndjson(const char *bundle, const char *pid, char ***lines);

#endif

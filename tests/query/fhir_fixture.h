/* Fixtures of the fhir projection's tests (test_fhir.c): a log filled
 * with the golden cases of tests/query/fhir/cases, a runner over it. They
 * fail the running Criterion test on any error. */
#ifndef CL_TESTS_QUERY_FHIR_FIXTURE_H
#define CL_TESTS_QUERY_FHIR_FIXTURE_H

#include <jansson.h>
#include <stdint.h>

#include "query/runner.h"
#include "store/log.h"

#define FX_CASES CL_SOURCE_DIR "/tests/query/fhir/cases"

/* Appends one Event given as proto3 JSON (recorded by "admin", the test
 * log's signer); returns its seq. */
uint64_t fx_append_json(cl_log *log, const cl_signer *admin, json_t *j);
/* The events of case `name` (<name>.events.json), a JSON array. */
json_t *fx_load_case(const char *name);
/* Appends every event of every case, in a fixed order. */
void fx_append_all_cases(cl_log *log, const cl_signer *admin);
/* The fhir projection's runner over log (batches of 7 events, no linger). */
cl_runner *fx_start(cl_log *log);
/* Waits until r has folded the log's head, and checks it did so without error. */
void fx_wait_head(cl_runner *r, cl_log *log);
/* A copy of event `ev` (JSON) on `stream` with a fresh id; a
 * patientRegistered gets patient id `patient_id` (NULL: kept). */
json_t *fx_copy_event(json_t *ev, const char *stream, const char *patient_id);
/* Fails unless no file under dir holds plaintext of the patient case
 * (name, MRN, SSN, city, encounter id, birth date). */
void fx_assert_no_canaries(const char *dir);
/* An event as JSON, from a template body with its stream and a fresh id. */
json_t *fx_event(const char *stream, const char *body_json);

#endif

/* A patient's compartment (cl_fhir_stream, behind $everything and the
 * patient-scoped searches), read in batches (query/fhir/fhir.c): a
 * patient with more resources and events than a batch holds gets each
 * exactly once, of one type or all, and a reader that stops is given
 * nothing more. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/fhir/fhir.h"
#include "query/runner.h"
#include "tests/query/fhir_fixture.h"
#include "tests/support/testutil.h"

#define NOBS 600 /* over two batches of 256, and a part */

typedef struct seen {
  json_t *ids;    /* "Type/id" -> true */
  size_t calls;   /* resources given */
  size_t stop_at; /* say 1 (stop) at this call; 0: never */
  size_t dups;
} seen;

static int see(void *ctx, cl_fhir_resource *r, cl_err *err) {
  (void)err;
  seen *s = ctx;
  s->calls++;
  json_error_t je;
  json_t *j = json_loadb(r->json, r->len, 0, &je);
  cr_assert_not_null(j, "%s", je.text);
  char key[200];
  snprintf(key, sizeof key, "%s/%s", json_string_value(json_object_get(j, "resourceType")),
           json_string_value(json_object_get(j, "id")));
  if (json_object_get(s->ids, key) != NULL)
    s->dups++;
  json_object_set_new(s->ids, key, json_true());
  json_decref(j);
  cl_fhir_resource_clear(r);
  return s->stop_at != 0 && s->calls == s->stop_at ? 1 : 0;
}

/* The resources of the compartment of tag, of `type` (0: all): checks
 * none came twice and returns how many came. */
static size_t stream_count(cl_runner *r, const uint8_t tag[32], int type, size_t stop_at) {
  seen s = {json_object(), 0, stop_at, 0};
  cl_err err;
  cr_assert_eq(cl_fhir_stream(cl_runner_proj(r), tag, type, 0, see, &s, &err), 0, "%s", err.msg);
  cr_assert_eq(s.dups, 0, "%zu given twice", s.dups);
  cr_assert_eq(json_object_size(s.ids), s.calls);
  json_decref(s.ids);
  return s.calls;
}

static void append(cl_log *log, const cl_signer *admin, const char *stream, const char *body) {
  json_t *ev = fx_event(stream, body);
  fx_append_json(log, admin, ev);
  json_decref(ev);
}

Test(fhir_stream, a_compartment_larger_than_a_batch, .timeout = 120) {
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("fhirst", &dir, &admin, 1000);
  const char *stream = "patient-7000";
  append(
      log, &admin, stream,
      "{\"patientRegistered\": {\"patientId\": \"7000\", \"names\": [{\"family\": \"Batch\"}]}}");
  for (int i = 0; i < NOBS; i++) {
    char body[512];
    snprintf(body, sizeof body,
             "{\"observationRecorded\": {\"observationId\": \"b-%d\", \"code\": {\"coding\": "
             "[{\"system\": \"http://loinc.org\", \"code\": \"8867-4\"}]}, \"quantity\": "
             "{\"value\": \"%d\", \"unit\": \"/min\"}, \"status\": \"OBSERVATION_STATUS_FINAL\"}}",
             i, 60 + i % 40);
    append(log, &admin, stream, body);
  }
  /* another patient, whose resources must not come */
  append(log, &admin, "patient-7001", "{\"patientRegistered\": {\"patientId\": \"7001\"}}");
  cl_runner *r = fx_start(log);
  fx_wait_head(r, log);
  uint8_t tag[32];
  cl_err err;
  cr_assert_eq(cl_log_stream_tag(log, stream, tag, &err), 0, "%s", err.msg);
  cr_assert_eq(stream_count(r, tag, CL_FHIR_Observation, 0), NOBS);
  cr_assert_eq(stream_count(r, tag, CL_FHIR_Patient, 0), 1);
  cr_assert_eq(stream_count(r, tag, CL_FHIR_Provenance, 0), NOBS + 1, "one for each event");
  cr_assert_eq(stream_count(r, tag, 0, 0), 2 * (NOBS + 1), "the resources, then the Provenances");
  /* a reader that stops, inside a batch and at a batch's end */
  cr_assert_eq(stream_count(r, tag, 0, 300), 300);
  cr_assert_eq(stream_count(r, tag, 0, 256), 256);
  cr_assert_eq(stream_count(r, tag, 0, NOBS + 1 + 10), NOBS + 1 + 10,
               "stopped among the "
               "Provenances");
  cr_assert_eq(stream_count(r, tag, CL_FHIR_Provenance, 512), 512);
  cl_runner_stop(r);
  cl_log_close(log);
  cl_signer_free(&admin);
  cl_test_rmtree(dir);
  free(dir);
}

/* adapters/fhir/fhirw.c, entered-in-error: which resources say they were
 * entered in error (status, or a Condition's or AllergyIntolerance's
 * verificationStatus; never a Patient), and the EnteredInError event an
 * update to entered-in-error becomes: the corrected event and stream, the
 * reason from statusReason, the envelope, a derived id that depends on the
 * version replaced; an update that changes more than the status is refused
 * with its path and nothing produced. */
#include <criterion/criterion.h>
#include <string.h>

#include "adapters/fhir/fhirw.h"
#include "clinlog/v1/event.pb-c.h"

TestSuite(fhirw_retract, .timeout = 30);

static const char *const OBS =
    "{\"resourceType\":\"Observation\",\"id\":\"o-1\",\"meta\":{\"versionId\":\"3\"},"
    "\"identifier\":[{\"system\":\"urn:clinlog:id\",\"value\":\"obs-1\"}],\"status\":\"final\","
    "\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"8867-4\"}]},"
    "\"subject\":{\"reference\":\"Patient/p1\"},\"valueQuantity\":{\"value\":72.50}}";

static const uint8_t CORRECTED[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

static json_t *parse(const char *text) {
  json_t *j;
  cl_fhirw_error fe;
  cl_err err;
  cr_assert_eq(cl_fhirw_parse(text, strlen(text), &j, &fe, &err), 0, "%s", err.msg);
  return j;
}

static cl_fhirw_opts opts(void) {
  cl_fhirw_opts o = {.principal_id = "$log",
                     .role = "log",
                     .on_behalf_of = "dr1",
                     .source_system = "fhir-rest",
                     .now_ns = 1767225600LL * 1000000000LL};
  return o;
}

/* cur updated to entered-in-error (no meta), with a statusReason when `reason`. */
static json_t *eie_of(const json_t *cur, const char *reason) {
  json_t *r = json_deep_copy(cur);
  json_object_set_new(r, "status", json_string("entered-in-error"));
  json_object_del(r, "meta");
  if (reason)
    json_object_set_new(r, "statusReason", json_pack("{s:s}", "text", reason));
  return r;
}

Test(fhirw_retract, which_resources_say_entered_in_error) {
  static const struct {
    const char *res;
    int eie;
  } cases[] = {
      {"{\"resourceType\":\"Observation\",\"status\":\"entered-in-error\"}", 1},
      {"{\"resourceType\":\"Observation\",\"status\":\"final\"}", 0},
      {"{\"resourceType\":\"MedicationRequest\",\"status\":\"entered-in-error\"}", 1},
      {"{\"resourceType\":\"Condition\",\"verificationStatus\":{\"coding\":[{\"code\":\"x\"},"
       "{\"code\":\"entered-in-error\"}]}}",
       1},
      {"{\"resourceType\":\"Condition\",\"status\":\"entered-in-error\"}", 0},
      {"{\"resourceType\":\"AllergyIntolerance\",\"verificationStatus\":{\"coding\":[{"
       "\"code\":\"confirmed\"}]}}",
       0},
      {"{\"resourceType\":\"Patient\",\"status\":\"entered-in-error\"}", 0},
      {"{\"resourceType\":\"Observation\",\"status\":7}", 0},
      {"{\"status\":\"entered-in-error\"}", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    json_t *r = parse(cases[i].res);
    cr_assert_eq(cl_fhirw_entered_in_error(r), cases[i].eie, "%s", cases[i].res);
    json_decref(r);
  }
}

Test(fhirw_retract, the_event_retracts_the_version) {
  json_t *cur = parse(OBS), *res = eie_of(cur, "wrong patient");
  cl_fhirw_opts o = opts();
  cl_fhirw_mapped *m, *again, *other;
  cl_fhirw_error fe;
  cl_err err;
  cr_assert_eq(cl_fhirw_retract(res, cur, CORRECTED, NULL, "3", &o, &m, &fe, &err), 0, "%s",
               err.msg);
  cr_assert_eq(m->n, 1);
  cr_assert_eq(m->ev[0].type, CLINLOG__V1__EVENT__BODY_ENTERED_IN_ERROR);
  cr_assert_str_eq(m->type, "Observation");
  cr_assert_str_eq(m->bid, "obs-1");
  cr_assert_str_eq(m->patient_id, "p1");
  cr_assert_str_eq(m->stream, "patient-p1");
  Clinlog__V1__Event *e = clinlog__v1__event__unpack(NULL, m->ev[0].len, m->ev[0].bytes);
  cr_assert_not_null(e);
  const Clinlog__V1__EnteredInError *b = e->entered_in_error;
  cr_assert_eq(b->corrected_event_id.len, 16);
  cr_assert_arr_eq(b->corrected_event_id.data, CORRECTED, 16);
  cr_assert_str_eq(b->corrected_stream, "patient-p1");
  cr_assert_str_eq(b->reason, "wrong patient");
  cr_assert_str_eq(e->stream, "patient-p1");
  cr_assert_str_eq(e->recorded_by->principal_id, "$log");
  cr_assert_str_eq(e->recorded_by->on_behalf_of, "dr1");
  cr_assert_str_eq(e->source_system, "fhir-rest");
  cr_assert_arr_eq(e->event_id.data, m->ev[0].event_id, 16);
  clinlog__v1__event__free_unpacked(e, NULL);
  /* the same update: the same event; based on another version: another */
  cr_assert_eq(cl_fhirw_retract(res, cur, CORRECTED, NULL, "3", &o, &again, &fe, &err), 0);
  cr_assert_eq(cl_fhirw_retract(res, cur, CORRECTED, NULL, "4", &o, &other, &fe, &err), 0);
  cr_assert_arr_eq(again->ev[0].event_id, m->ev[0].event_id, 16);
  cr_assert(memcmp(other->ev[0].event_id, m->ev[0].event_id, 16) != 0);
  cl_fhirw_mapped_free(m);
  cl_fhirw_mapped_free(again);
  cl_fhirw_mapped_free(other);
  /* no statusReason: a reason that says where it came from */
  json_decref(res);
  res = eie_of(cur, NULL);
  cr_assert_eq(cl_fhirw_retract(res, cur, CORRECTED, NULL, "3", &o, &m, &fe, &err), 0);
  e = clinlog__v1__event__unpack(NULL, m->ev[0].len, m->ev[0].bytes);
  cr_assert(strstr(e->entered_in_error->reason, "entered-in-error") != NULL);
  clinlog__v1__event__free_unpacked(e, NULL);
  cl_fhirw_mapped_free(m);
  json_decref(res);
  json_decref(cur);
}

Test(fhirw_retract, only_the_status_may_change) {
  json_t *cur = parse(OBS);
  cl_fhirw_opts o = opts();
  cl_fhirw_error fe;
  cl_err err;
  static const char *const edits[] = {"valueQuantity", "code", "note", NULL};
  for (size_t i = 0; edits[i]; i++) {
    json_t *res = eie_of(cur, NULL);
    json_object_set_new(res, edits[i], json_pack("{s:s}", "text", "changed"));
    cl_fhirw_mapped *m = (cl_fhirw_mapped *)1;
    cr_assert_eq(
        cl_fhirw_retract(res, cur, CORRECTED, "Bundle.entry[1].resource", "3", &o, &m, &fe, &err),
        CL_EMALFORMED, "%s", edits[i]);
    cr_assert_null(m);
    cr_assert_eq(fe.status, 422);
    cr_assert_str_eq(fe.code, "business-rule");
    cr_assert_str_eq(fe.expression, "Bundle.entry[1].resource");
    cr_assert(strstr(fe.text, "version 3") != NULL, "%s", fe.text);
    json_decref(res);
  }
  /* retracted already: the same update writes nothing, another is refused */
  json_t *gone = eie_of(cur, NULL), *same = eie_of(cur, "again");
  cl_fhirw_mapped *none = (cl_fhirw_mapped *)1;
  cr_assert_eq(cl_fhirw_retract(same, gone, NULL, NULL, "4", &o, &none, &fe, &err), 0);
  cr_assert_null(none);
  json_object_set_new(same, "note", json_pack("[{s:s}]", "text", "late"));
  cr_assert_eq(cl_fhirw_retract(same, gone, NULL, NULL, "4", &o, &none, &fe, &err), CL_EMALFORMED);
  cr_assert_str_eq(fe.code, "business-rule");
  json_decref(same);
  json_decref(gone);
  /* a resource that names no patient or business id cannot be retracted so */
  json_t *bare = json_deep_copy(cur);
  json_object_del(bare, "subject");
  json_t *res = eie_of(bare, NULL);
  cl_fhirw_mapped *m;
  cr_assert_eq(cl_fhirw_retract(res, bare, CORRECTED, NULL, "3", &o, &m, &fe, &err), CL_EMALFORMED);
  cr_assert_eq(fe.status, 422);
  cr_assert_str_eq(fe.expression, "Observation");
  json_decref(res);
  json_decref(bare);
  json_decref(cur);
}

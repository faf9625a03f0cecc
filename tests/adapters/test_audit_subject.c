/* What an audit record says a call touched (adapters/service/audit.c):
 * the entity and patients a request names, and the patients a FHIR answer
 * holds. Pure functions over the request context. */
#include <criterion/criterion.h>
#include <string.h>

#include "adapters/service/audit.h"
#include "clinlog/v1/api.pb-c.h"
#include "clinlog/v1/fhir.pb-c.h"

static cl_req_ctx rc;

static void search(const char *type, const char *const *kv) {
  Clinlog__V1__FhirParam pv[8], *pp[8];
  size_t n = 0;
  for (; kv[2 * n]; n++) {
    clinlog__v1__fhir_param__init(&pv[n]);
    pv[n].name = (char *)kv[2 * n];
    pv[n].value = (char *)kv[2 * n + 1];
    pp[n] = &pv[n];
  }
  Clinlog__V1__FhirSearchRequest r = CLINLOG__V1__FHIR_SEARCH_REQUEST__INIT;
  r.type = (char *)type;
  r.n_params = n;
  r.params = pp;
  cl_req_ctx_init(&rc, M_FHIR_SEARCH, "test");
  audit_subject(&rc, &r.base);
}

Test(audit_subject, a_search_names_its_type_query_and_the_patients_it_asks_about) {
  const char *kv[] = {"patient", "Patient/p1,p2", "subject:Patient", "p3", "code", "x|1", NULL};
  search("Observation", kv);
  cr_assert_str_eq(rc.audit_what, "Observation");
  cr_assert_str_eq(rc.audit_query, "patient=Patient/p1,p2&subject:Patient=p3&code=x|1");
  cr_assert_str_eq(rc.audit_patients, "p1,p2,p3");
}

Test(audit_subject, chains_identifiers_and_other_references_are_not_patient_ids) {
  const char *kv[] = {"subject:Patient.identifier",
                      "MRN-1",
                      "patient:identifier",
                      "urn|MRN-2",
                      "subject",
                      "Group/g1",
                      "patient",
                      "",
                      NULL};
  search("Observation", kv);
  cr_assert_str_eq(rc.audit_patients, "");
  const char *id[] = {"_id", "p9", NULL};
  search("Patient", id);
  cr_assert_str_eq(rc.audit_patients, "p9");
  search("Observation", id);
  cr_assert_str_eq(rc.audit_patients, "", "an Observation's _id is no patient");
}

Test(audit_subject, reads_name_the_stream_or_resource) {
  Clinlog__V1__ReadRequest r = CLINLOG__V1__READ_REQUEST__INIT;
  r.stream = "patient-77";
  cl_req_ctx_init(&rc, M_READ, "test");
  audit_subject(&rc, &r.base);
  cr_assert_str_eq(rc.audit_what, "stream:patient-77");
  cr_assert_str_eq(rc.audit_patients, "77");
  Clinlog__V1__FhirReadRequest f = CLINLOG__V1__FHIR_READ_REQUEST__INIT;
  f.type = "Observation";
  f.id = "o-1";
  f.version_id = 2;
  cl_req_ctx_init(&rc, M_FHIR_READ, "test");
  audit_subject(&rc, &f.base);
  cr_assert_str_eq(rc.audit_what, "Observation/o-1/_history/2");
  cr_assert_str_eq(rc.audit_patients, "");
}

Test(audit_subject, an_answer_names_the_patients_it_holds_once_each) {
  cl_req_ctx_init(&rc, M_FHIR_SEARCH, "test");
  const char *bundle =
      "{\"resourceType\":\"Bundle\",\"entry\":[{\"resource\":{\"resourceType\":\"Patient\","
      "\"id\":\"a1\"}},{\"resource\":{\"resourceType\":\"Observation\",\"subject\":{"
      "\"reference\":\"Patient/b2\"},\"performer\":[{\"reference\":\"Practitioner/x\"}]}},"
      "{\"resource\":{\"resourceType\":\"Encounter\",\"subject\":{\"reference\":\"Patient/a1\"}}},"
      "{\"resource\":{\"resourceType\":\"Observation\",\"subject\":{\"reference\":"
      "\"Patient/c3/_history/2\"}}},{\"resource\":{\"subject\":{\"reference\":\"Patient/"
      "esc\\\"x\"}}"
      "}]}";
  cl_req_ctx_patients_of(&rc, bundle, strlen(bundle));
  /* references first, then Patient resources; an escaped id is not one the engine writes */
  cr_assert_str_eq(rc.audit_patients, "b2,a1,c3");
  /* cut short: nothing half-read */
  cl_req_ctx_init(&rc, M_FHIR_READ, "test");
  const char *cut = "{\"subject\":{\"reference\":\"Patient/abc";
  cl_req_ctx_patients_of(&rc, cut, strlen(cut));
  cr_assert_str_eq(rc.audit_patients, "");
}

Test(audit_subject, patients_past_the_records_room_are_left_out_whole) {
  cl_req_ctx_init(&rc, M_FHIR_SEARCH, "test");
  char id[64];
  size_t n = 0;
  for (; n < 5000; n++) {
    snprintf(id, sizeof id, "patient-with-a-long-id-%05zu", n);
    cl_req_ctx_add_patient(&rc, id);
  }
  size_t len = strlen(rc.audit_patients);
  cr_assert_lt(len, sizeof rc.audit_patients);
  cr_assert_gt(len, sizeof rc.audit_patients - 40, "filled up to its room");
  cr_assert_eq(rc.audit_patients[len - 1] != ',', 1);
  /* the last one kept is whole */
  const char *last = strrchr(rc.audit_patients, ',') + 1;
  cr_assert_eq(strlen(last), strlen("patient-with-a-long-id-00000"));
}

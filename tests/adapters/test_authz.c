/* Authorization by the access policy (query/auth/policy, adapters/service/
 * authz): the policy file's parser names the line of every mistake; the
 * shipped default policy, as a matrix of every role against every method,
 * the resource types reads return and the event types appends carry,
 * compared with the table below (written from the policy's intent, not
 * computed by its code); minimum necessary (fields rules: what each role
 * sees of a resource, and the searches it may make); a patient's own
 * compartment; and appends by event type and signer. */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/service/authz.h"
#include "clinlog/v1/audit.pb-c.h"
#include "clinlog/v1/fhir.pb-c.h"
#include "query/auth/cred.h"
#include "query/auth/principals.h"
#include "query/fhir/elements.h"
#include "query/fhir/map.h"
#include "tests/support/testutil.h"

/* ----------------------------------------------------------- parsing */

static void bad(const char *text, const char *want) {
  cl_policy *p = NULL;
  cl_err err;
  cl_err_clear(&err);
  cr_assert_eq(cl_policy_parse(text, strlen(text), "t.policy", &p, &err), CL_EMALFORMED,
               "accepted: %s", text);
  cr_assert_null(p);
  cr_assert(strstr(err.msg, want), "%s: got \"%s\", want \"%s\"", text, err.msg, want);
}

Test(policy, every_mistake_names_its_line) {
  bad("nurse call read\nnurse append ObservationRecordd\n",
      "t.policy:2: \"ObservationRecordd\" is not an event type");
  bad("# c\n\nnurse read Observatoin", "t.policy:3: \"Observatoin\" is not a FHIR resource type");
  bad("nurse call reed", "t.policy:1: \"reed\" is not a method kind");
  bad("nurse write Observation", "t.policy:1: \"write\" is not a verb");
  bad("nurse call", "t.policy:1: a rule is <role> <verb> <object>");
  bad("a,b call read", "t.policy:1: \"a,b\" is not a role name");
  bad("x append clinical\nx append pharmacy cardiology", "t.policy:2: \"cardiology\"");
  bad("b fields Condition code\nb fields Condition notes",
      "t.policy:2: \"notes\" is not an element of Condition (FHIR R4 names: code, onset[x], ...; "
      "https://hl7.org/fhir/R4/condition.html)");
  bad("b fields Condition onsetDateTime", "\"onsetDateTime\" is not an element of Condition");
  bad("b fields Conditon code", "t.policy:1: \"Conditon\" is not a FHIR resource type");
  bad("b fields Condition", "t.policy:1: a fields rule is <role> fields <type> <element>");

  cl_policy *p;
  cl_err err;
  const char *ok = "# only comments and rules\n  nurse  call read # trailing\n"
                   "nurse read Observation Patient\nnurse call clinlog.v1.Log/Append\n";
  cr_assert_eq(cl_policy_parse(ok, strlen(ok), "t", &p, &err), 0, "%s", err.msg);
  cr_assert(cl_policy_may_call(p, "nurse", "clinlog.v1.Log/Read", "read"));
  cr_assert(cl_policy_may_call(p, "nurse", "clinlog.v1.Log/Append", "write"));
  cr_assert_not(cl_policy_may_call(p, "nurse", "clinlog.v1.Log/AppendStream", "write"));
  cr_assert(cl_policy_may_read(p, "clerk,nurse", "Patient"), "the union of the roles");
  cr_assert_not(cl_policy_may_read(p, "nurse", "Claim"));
  cr_assert_not(cl_policy_may_read(p, "nurse", "*"));
  cr_assert_not(cl_policy_may_read(p, "clerk", "Patient"), "a role the policy does not name");
  cl_policy_free(p);
  cr_assert_eq(cl_policy_load("/nonexistent/x.policy", &p, &err), CL_EIO);
}

/* ------------------------------------------------ the default, as a matrix */

/* What the default policy means, per role (docs/security.md). */
static const struct {
  const char *role;
  const char *kinds;      /* method kinds it may call (besides health, auth) */
  const char *read_types; /* of Observation Patient Claim MedicationRequest Appointment; or "*" */
  const char *appends;    /* of ObservationRecorded MedicationPrescribed ClaimSubmitted
                             PatientRegistered DeviceReadingRecorded RiskScoreRecorded (only
                             a system principal: integration) */
  const char *cds;        /* the gRPC Cds methods it may call: CheckOrder (cds, and reads of
                             MedicationRequest and AllergyIntolerance), Alerts (read of
                             DetectedIssue), Acknowledge and Override (appends of
                             AlertAcknowledged, AlertOverridden) */
} EXPECT[] = {
    {"admin", "write read proof admin-read admin peer audit emergency cds", "*", "O M C P D R",
     "CheckOrder Alerts Acknowledge Override"},
    {"clinician", "write read proof admin-read emergency cds", "*", "O M P",
     "CheckOrder Alerts Acknowledge Override"},
    {"nurse", "write read proof emergency cds", "*", "O D",
     "CheckOrder Alerts Acknowledge Override"},
    {"pharmacist", "write read proof emergency cds", "Observation Patient MedicationRequest", "M",
     "CheckOrder Alerts Acknowledge Override"},
    {"registrar", "write read", "Patient Appointment", "P", ""},
    {"billing", "write read", "Patient Claim", "C", ""},
    {"auditor", "proof admin-read audit", "", "", ""},
    {"patient", "read", "", "", ""}, /* and audit, its own accounting only: below */
    {"analyst", "read", "*", "", "Alerts"},
    {"integration", "write proof cds", "", "O M C P D R", ""},
    {"device", "write", "", "D", ""},
    {"node", "write peer", "", "O M C P D R", "Acknowledge Override"},
};

static const char *const TYPES[] = {"Observation", "Patient", "Claim", "MedicationRequest",
                                    "Appointment"};

static int has_word(const char *list, const char *w) {
  size_t l = strlen(w);
  for (const char *s = list; (s = strstr(s, w)) != NULL; s += l)
    if ((s == list || s[-1] == ' ') && (s[l] == ' ' || s[l] == '\0'))
      return 1;
  return 0;
}

/* A request for method m reading resource type `type` (FHIR methods). */
static int call(const cl_policy *p, const char *role, int m, const char *type, cl_err *err) {
  cl_req_ctx rc;
  cl_req_ctx_init(&rc, m, "test");
  snprintf(rc.principal, sizeof rc.principal, "%s-1", role);
  snprintf(rc.roles, sizeof rc.roles, "%s", role);
  Clinlog__V1__FhirReadRequest rd = CLINLOG__V1__FHIR_READ_REQUEST__INIT;
  Clinlog__V1__FhirHistoryRequest hi = CLINLOG__V1__FHIR_HISTORY_REQUEST__INIT;
  Clinlog__V1__FhirSearchRequest se = CLINLOG__V1__FHIR_SEARCH_REQUEST__INIT;
  Clinlog__V1__FhirEverythingRequest ev = CLINLOG__V1__FHIR_EVERYTHING_REQUEST__INIT;
  Clinlog__V1__FhirExportRequest ex = CLINLOG__V1__FHIR_EXPORT_REQUEST__INIT;
  Clinlog__V1__FhirParam tp = CLINLOG__V1__FHIR_PARAM__INIT, *tpp = &tp;
  tp.name = "_type";
  tp.value = (char *)type;
  const ProtobufCMessage *req = NULL;
  switch (m) {
  case M_FHIR_READ:
    rd.type = (char *)type;
    req = &rd.base;
    break;
  case M_FHIR_HISTORY:
    hi.type = (char *)type;
    req = &hi.base;
    break;
  case M_FHIR_SEARCH:
    se.type = (char *)type;
    req = &se.base;
    break;
  case M_FHIR_EVERYTHING:
    ev.n_params = 1, ev.params = &tpp;
    req = &ev.base;
    break;
  case M_FHIR_EXPORT:
    ex.n_params = 1, ex.params = &tpp;
    req = &ex.base;
    break;
  default:
    break;
  }
  cl_err_clear(err);
  return authz_call(p, &rc, req, err);
}

static int is_fhir_typed(int m) {
  return m == M_FHIR_READ || m == M_FHIR_HISTORY || m == M_FHIR_SEARCH || m == M_FHIR_EVERYTHING ||
         m == M_FHIR_EXPORT;
}

/* The gRPC Cds method's name ("CheckOrder"...), or NULL for another method. */
static const char *cds_method(int m) {
  switch (m) {
  case M_CDS_CHECK_ORDER:
  case M_CDS_ALERTS:
  case M_CDS_ACKNOWLEDGE:
  case M_CDS_OVERRIDE:
    return strchr(cl_method_name(m), '/') + 1;
  default:
    return NULL;
  }
}

static int whole_events(int m) {
  return m == M_READ || m == M_SUBSCRIBE || m == M_GET_EVENT || m == M_GET_STREAM ||
         m == M_LIST_STREAMS;
}

Test(policy, the_default_as_a_matrix_of_roles_methods_and_types) {
  cl_policy *p;
  cl_err err;
  cr_assert_eq(cl_policy_default(&p, &err), 0, "%s", err.msg);
  size_t checked = 0;
  for (size_t r = 0; r < sizeof EXPECT / sizeof EXPECT[0]; r++) {
    const char *role = EXPECT[r].role;
    int read_all = !strcmp(EXPECT[r].read_types, "*");
    for (int m = 0; m < M_COUNT; m++) {
      int kind = cl_method_kind(m);
      int kind_ok = kind == CL_MK_HEALTH || kind == CL_MK_AUTH ||
                    has_word(EXPECT[r].kinds, cl_method_kind_name(kind));
      size_t ntypes = is_fhir_typed(m) ? sizeof TYPES / sizeof TYPES[0] : 1;
      for (size_t t = 0; t < ntypes; t++) {
        int want = kind_ok;
        if (kind_ok && is_fhir_typed(m))
          want = read_all || has_word(EXPECT[r].read_types, TYPES[t]);
        else if (kind_ok && whole_events(m))
          want = read_all;
        else if (cds_method(m))
          want = has_word(EXPECT[r].cds, cds_method(m));
        int got = call(p, role, m, TYPES[t], &err);
        cr_assert_eq(got == 0, want, "%s %s %s: got %s (%s)", role, cl_method_name(m),
                     is_fhir_typed(m) ? TYPES[t] : "", got ? "denied" : "allowed", err.msg);
        if (got)
          cr_assert_eq(got, CL_EDENIED);
        checked++;
      }
    }
  }
  cr_assert_geq(checked, 12 * M_COUNT);
  /* an include brings its type in: a billing search may not reach notes */
  cl_req_ctx rc;
  cl_req_ctx_init(&rc, M_FHIR_SEARCH, "test");
  snprintf(rc.principal, sizeof rc.principal, "b1");
  snprintf(rc.roles, sizeof rc.roles, "billing");
  Clinlog__V1__FhirSearchRequest se = CLINLOG__V1__FHIR_SEARCH_REQUEST__INIT;
  Clinlog__V1__FhirParam inc = CLINLOG__V1__FHIR_PARAM__INIT, *incp = &inc;
  se.type = "Claim";
  inc.name = "_revinclude";
  inc.value = "DocumentReference:patient";
  se.n_params = 1, se.params = &incp;
  cr_assert_eq(authz_call(p, &rc, &se.base, &err), CL_EDENIED);
  cr_assert(strstr(err.msg, "b1 (roles billing) may not read DocumentReference"), "%s", err.msg);
  inc.value = "Provenance:target";
  cr_assert_eq(authz_call(p, &rc, &se.base, &err), 0, "%s", err.msg);
  /* $everything without _type is every type */
  Clinlog__V1__FhirEverythingRequest ev = CLINLOG__V1__FHIR_EVERYTHING_REQUEST__INIT;
  rc.method = M_FHIR_EVERYTHING;
  cr_assert_eq(authz_call(p, &rc, &ev.base, &err), CL_EDENIED);
  cr_assert(strstr(err.msg, "read every resource type"), "%s", err.msg);
  cl_policy_free(p);
}

/* ------------------------------------------------- minimum necessary */

static uint64_t els(int type, const char *names) {
  uint64_t m = 0;
  char buf[256];
  snprintf(buf, sizeof buf, "%s", names);
  char *save = NULL;
  for (char *e = strtok_r(buf, " ", &save); e; e = strtok_r(NULL, " ", &save)) {
    int i = cl_fhir_element_index(type, e);
    cr_assert_geq(i, 0, "%s", e);
    m |= 1ull << i;
  }
  return m;
}

Test(policy, fields_rules_union_and_whole_readers) {
  const char *text = "a fields Condition code\n"
                     "b fields Condition note onset[x]\n"
                     "c read Condition\n"
                     "d read *\n"
                     "e read *\ne fields Condition code\n"
                     "f read compartment\n";
  cl_policy *p;
  cl_err err;
  cr_assert_eq(cl_policy_parse(text, strlen(text), "t", &p, &err), 0, "%s", err.msg);
  uint64_t m;
  int C = CL_FHIR_Condition;
  cr_assert_eq(cl_policy_fields(p, "a", C, &m), 1);
  cr_assert_eq(m, els(C, "code"));
  cr_assert(cl_policy_may_read(p, "a", "Condition"), "a fields rule reads the type");
  cr_assert_eq(cl_policy_fields(p, "a,b", C, &m), 1);
  cr_assert_eq(m, els(C, "code note onset[x]"), "the union of the roles' rules");
  cr_assert_eq(cl_policy_fields(p, "a,c", C, &m), 0, "a role reading it whole wins");
  cr_assert_eq(cl_policy_fields(p, "d,a", C, &m), 0);
  cr_assert_eq(cl_policy_fields(p, "e", C, &m), 1, "read * does not lift the role's own rule");
  cr_assert_eq(m, els(C, "code"));
  cr_assert_eq(cl_policy_fields(p, "e", CL_FHIR_Observation, &m), 0);
  cr_assert_eq(cl_policy_fields(p, "f", C, &m), 0, "its own compartment, whole");
  cr_assert_eq(cl_policy_fields(p, "a", CL_FHIR_Observation, &m), 1, "unreadable: nothing");
  cr_assert_eq(m, 0);
  cr_assert(cl_policy_restricts(p, "a"));
  cr_assert(cl_policy_restricts(p, "e"));
  cr_assert_not(cl_policy_restricts(p, "c,e"), "c reads Condition whole, e the rest");
  cr_assert_not(cl_policy_restricts(p, "a,c"));
  cr_assert_not(cl_policy_restricts(p, "c"));
  cr_assert_not(cl_policy_restricts(p, "d"));
  cl_policy_free(p);
}

/* What each role of the default sees of a resource (docs/security.md):
 * elements present (+) or left out (-) of a full resource of the type. */
static const struct {
  const char *role, *type, *seen, *hidden;
} FIELDS[] = {
    {"billing", "Condition", "code onset[x] recordedDate subject clinicalStatus", "note evidence"},
    {"billing", "Patient", "name birthDate address identifier", "contact photo"},
    {"billing", "ChargeItem", "code quantity priceOverride occurrence[x]", "note"},
    {"billing", "Task", "status code for authoredOn", "note description input output"},
    {"registrar", "Encounter", "status class period subject location", "reasonCode diagnosis"},
};

Test(policy, the_default_minimum_necessary) {
  cl_policy *p;
  cl_err err;
  cr_assert_eq(cl_policy_default(&p, &err), 0, "%s", err.msg);
  for (size_t i = 0; i < sizeof FIELDS / sizeof FIELDS[0]; i++) {
    int t = cl_fhir_type_of(FIELDS[i].type);
    uint64_t m;
    cr_assert_eq(cl_policy_fields(p, FIELDS[i].role, t, &m), 1, "%s %s", FIELDS[i].role,
                 FIELDS[i].type);
    m |= cl_fhir_elements_kept(t);
    uint64_t seen = els(t, FIELDS[i].seen), hidden = els(t, FIELDS[i].hidden);
    cr_assert_eq(m & seen, seen, "%s %s", FIELDS[i].role, FIELDS[i].type);
    cr_assert_eq(m & hidden, 0, "%s %s", FIELDS[i].role, FIELDS[i].type);
  }
  /* the roles that read the chart read it whole */
  const char *whole[] = {"admin", "clinician", "nurse", "pharmacist", "patient"};
  for (size_t r = 0; r < sizeof whole / sizeof whole[0]; r++) {
    cr_assert_not(cl_policy_restricts(p, whole[r]), "%s", whole[r]);
    uint64_t m;
    cr_assert_eq(cl_policy_fields(p, whole[r], CL_FHIR_Condition, &m), 0, "%s", whole[r]);
  }
  cr_assert(cl_policy_restricts(p, "billing"));
  cr_assert(cl_policy_restricts(p, "registrar"));
  cr_assert_not(cl_policy_restricts(p, "registrar,clinician"));
  cl_policy_free(p);
}

static int search_as(const cl_policy *p, const char *role, const char *type, const char *name,
                     const char *value, cl_err *err) {
  cl_req_ctx rc;
  cl_req_ctx_init(&rc, M_FHIR_SEARCH, "test");
  snprintf(rc.principal, sizeof rc.principal, "%s-1", role);
  snprintf(rc.roles, sizeof rc.roles, "%s", role);
  Clinlog__V1__FhirSearchRequest se = CLINLOG__V1__FHIR_SEARCH_REQUEST__INIT;
  Clinlog__V1__FhirParam pa = CLINLOG__V1__FHIR_PARAM__INIT, *pp = &pa;
  se.type = (char *)type;
  pa.name = (char *)name;
  pa.value = (char *)value;
  se.n_params = 1, se.params = &pp;
  cl_err_clear(err);
  return authz_call(p, &rc, &se.base, err);
}

Test(policy, searches_only_on_elements_the_role_sees) {
  cl_policy *p;
  cl_err err;
  cr_assert_eq(cl_policy_default(&p, &err), 0, "%s", err.msg);
  cr_assert_eq(search_as(p, "registrar", "Encounter", "reason-code", "http://snomed.info/sct|1",
                         &err),
               CL_EDENIED);
  cr_assert(strstr(err.msg, "may not search Encounter by reason-code (its reasonCode is not among"),
            "%s", err.msg);
  cr_assert_eq(search_as(p, "registrar", "Encounter", "reason-code:not", "x", &err), CL_EDENIED);
  cr_assert_eq(search_as(p, "registrar", "Encounter", "_sort", "-date,reason-code", &err),
               CL_EDENIED);
  cr_assert(strstr(err.msg, "by reason-code"), "%s", err.msg);
  cr_assert_eq(search_as(p, "registrar", "Encounter", "date", "ge2026", &err), 0, "%s", err.msg);
  cr_assert_eq(search_as(p, "registrar", "Encounter", "_sort", "-date", &err), 0, "%s", err.msg);
  cr_assert_eq(search_as(p, "registrar", "Encounter", "patient", "p1", &err), 0, "%s", err.msg);
  cr_assert_eq(search_as(p, "registrar", "Encounter", "_count", "5", &err), 0, "%s", err.msg);
  cr_assert_eq(search_as(p, "billing", "Condition", "onset-date", "ge2026", &err), 0, "%s",
               err.msg);
  cr_assert_eq(search_as(p, "billing", "Condition", "severity", "x", &err), CL_EDENIED);
  cr_assert_eq(search_as(p, "clinician", "Encounter", "reason-code", "x", &err), 0, "%s", err.msg);
  cl_policy_free(p);
}

Test(policy, answers_keep_the_elements_the_roles_see) {
  cl_policy *p;
  cl_err err;
  cr_assert_eq(cl_policy_default(&p, &err), 0, "%s", err.msg);
  const char *cond = "{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"entry\":[{"
                     "\"resource\":{\"resourceType\":\"Condition\",\"id\":\"c\",\"code\":{"
                     "\"text\":\"J10\"},\"subject\":{\"reference\":\"Patient/p\"},\"note\":[{"
                     "\"text\":\"discussed HIV status\"}]}}]}";
  cl_req_ctx rc;
  cl_req_ctx_init(&rc, M_FHIR_SEARCH, "test");
  snprintf(rc.principal, sizeof rc.principal, "b-1");
  const char *roles[] = {"billing", "clinician", "billing,clinician", "billing"};
  for (size_t i = 0; i < 4; i++) {
    snprintf(rc.roles, sizeof rc.roles, "%s", roles[i]);
    rc.break_glass = i == 3;
    size_t len = strlen(cond);
    char *body = malloc(len + 1);
    memcpy(body, cond, len + 1);
    cr_assert_eq(authz_subset(p, &rc, &body, &len, 0), 0);
    cr_assert_eq(strlen(body), len);
    int hidden = i == 0;
    cr_assert_eq(strstr(body, "HIV") == NULL, hidden, "%s: %s", roles[i], body);
    cr_assert_eq(strstr(body, "SUBSETTED") != NULL, hidden, "%s: %s", roles[i], body);
    cr_assert(strstr(body, "\"code\":{\"text\":\"J10\"}"), "%s", body);
    free(body);
  }
  cl_policy_free(p);
}

/* ------------------------------------------------------- SMART scopes */

/* A call by a token with `scope` (and the patient it is, if any). */
static int scoped(const char *scope, const char *patient, int m, const char *type,
                  const char *pname, const char *pvalue, cl_err *err) {
  cl_req_ctx rc;
  cl_req_ctx_init(&rc, m, "test");
  snprintf(rc.principal, sizeof rc.principal, "app");
  snprintf(rc.roles, sizeof rc.roles, "admin");
  snprintf(rc.scope, sizeof rc.scope, "%s", scope);
  snprintf(rc.patient_id, sizeof rc.patient_id, "%s", patient ? patient : "");
  Clinlog__V1__FhirReadRequest rd = CLINLOG__V1__FHIR_READ_REQUEST__INIT;
  Clinlog__V1__FhirSearchRequest se = CLINLOG__V1__FHIR_SEARCH_REQUEST__INIT;
  Clinlog__V1__FhirEverythingRequest ev = CLINLOG__V1__FHIR_EVERYTHING_REQUEST__INIT;
  Clinlog__V1__FhirExportRequest ex = CLINLOG__V1__FHIR_EXPORT_REQUEST__INIT;
  Clinlog__V1__AuditQueryRequest aq = CLINLOG__V1__AUDIT_QUERY_REQUEST__INIT;
  Clinlog__V1__FhirParam pa = CLINLOG__V1__FHIR_PARAM__INIT, *pp = &pa;
  pa.name = (char *)pname;
  pa.value = (char *)pvalue;
  size_t np = pname ? 1 : 0;
  const ProtobufCMessage *req = NULL;
  switch (m) {
  case M_FHIR_READ:
    rd.type = (char *)type;
    rd.id = (char *)(pvalue ? pvalue : "x");
    req = &rd.base;
    break;
  case M_FHIR_SEARCH:
    se.type = (char *)type;
    se.n_params = np, se.params = &pp;
    req = &se.base;
    break;
  case M_FHIR_EVERYTHING:
    ev.patient_id = (char *)(patient ? patient : "P");
    ev.n_params = np, ev.params = &pp;
    req = &ev.base;
    break;
  case M_FHIR_EXPORT:
    ex.n_params = np, ex.params = &pp;
    req = &ex.base;
    break;
  case M_AUDIT_QUERY:
    aq.patient = (char *)(pvalue ? pvalue : "");
    req = &aq.base;
    break;
  default:
    break;
  }
  cl_err_clear(err);
  return authz_scopes(&rc, req, err);
}

Test(scopes, narrow_a_token_to_fhir_reads_of_its_types) {
  cl_err err;
  const char *sys = "system/Patient.rs system/Encounter.r";
  cr_assert_eq(scoped(sys, NULL, M_FHIR_READ, "Patient", NULL, NULL, &err), 0, "%s", err.msg);
  cr_assert_eq(scoped(sys, NULL, M_FHIR_SEARCH, "Patient", NULL, NULL, &err), 0, "%s", err.msg);
  cr_assert_eq(scoped(sys, NULL, M_FHIR_READ, "Encounter", NULL, NULL, &err), 0, "%s", err.msg);
  cr_assert_eq(scoped(sys, NULL, M_FHIR_SEARCH, "Encounter", NULL, NULL, &err), CL_EDENIED);
  cr_assert(strstr(err.msg, "clinlog.v1.Fhir/Search: the token's scopes (system/Patient.rs "
                            "system/Encounter.r) do not allow searches of Encounter"),
            "%s", err.msg);
  cr_assert_eq(scoped(sys, NULL, M_FHIR_READ, "Observation", NULL, NULL, &err), CL_EDENIED);
  cr_assert(strstr(err.msg, "reads of Observation"), "%s", err.msg);
  /* includes bring their types in */
  cr_assert_eq(scoped(sys, NULL, M_FHIR_SEARCH, "Patient", "_revinclude", "Provenance:target",
                      &err),
               CL_EDENIED);
  cr_assert_eq(scoped(sys, NULL, M_FHIR_SEARCH, "Patient", "_revinclude", "Encounter:patient",
                      &err),
               0, "%s", err.msg);
  /* $everything and $export: every type, or each of _type */
  cr_assert_eq(scoped(sys, NULL, M_FHIR_EXPORT, NULL, NULL, NULL, &err), CL_EDENIED);
  cr_assert(strstr(err.msg, "reads of every type"), "%s", err.msg);
  cr_assert_eq(scoped(sys, NULL, M_FHIR_EXPORT, NULL, "_type", "Patient,Encounter", &err), 0,
               "%s", err.msg);
  cr_assert_eq(scoped("system/*.read", NULL, M_FHIR_EXPORT, NULL, NULL, NULL, &err), 0, "%s",
               err.msg);
  /* what is not a FHIR read: refused whatever the roles; health and auth open */
  int other[] = {M_READ, M_APPEND, M_GET_EVENT, M_PROVE_INCLUSION, M_ADD_NODE, M_AUTH_BREAK_GLASS};
  for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
    cr_assert_eq(scoped("system/*.*", NULL, other[i], NULL, NULL, NULL, &err), CL_EDENIED, "%s",
                 cl_method_name(other[i]));
    cr_assert(strstr(err.msg, "a scoped token makes FHIR reads and searches only"), "%s", err.msg);
  }
  cr_assert_eq(scoped(sys, NULL, M_HEALTH_CHECK, NULL, NULL, NULL, &err), 0);
  cr_assert_eq(scoped(sys, NULL, M_AUTH_WHOAMI, NULL, NULL, NULL, &err), 0);
  cr_assert_eq(scoped(sys, NULL, M_AUTH_LOGOUT, NULL, NULL, NULL, &err), 0);
  /* the audit trail: AuditEvent scopes */
  cr_assert_eq(scoped(sys, NULL, M_AUDIT_QUERY, NULL, "patient", "P", &err), CL_EDENIED);
  cr_assert_eq(scoped("user/AuditEvent.rs", NULL, M_AUDIT_QUERY, NULL, "patient", "P", &err), 0,
               "%s", err.msg);
  /* a v1 read is r and s; user/ without s cannot search */
  cr_assert_eq(scoped("user/Patient.read", NULL, M_FHIR_SEARCH, "Patient", NULL, NULL, &err), 0);
  cr_assert_eq(scoped("user/Patient.r", NULL, M_FHIR_SEARCH, "Patient", NULL, NULL, &err),
               CL_EDENIED);
}

Test(scopes, patient_scopes_keep_to_the_tokens_patient) {
  cl_err err;
  const char *pt = "patient/*.rs";
  cr_assert_eq(scoped(pt, "ADA1", M_FHIR_SEARCH, "Observation", "patient", "ADA1", &err), 0, "%s",
               err.msg);
  cr_assert_eq(scoped(pt, "ADA1", M_FHIR_SEARCH, "Observation", "patient", "BOB2", &err),
               CL_EDENIED);
  cr_assert(strstr(err.msg, "outside its own compartment"), "%s", err.msg);
  cr_assert_eq(scoped(pt, "ADA1", M_FHIR_SEARCH, "Observation", NULL, NULL, &err), CL_EDENIED);
  cr_assert_eq(scoped(pt, "ADA1", M_FHIR_READ, "Patient", NULL, "ADA1", &err), 0, "%s", err.msg);
  cr_assert_eq(scoped(pt, "ADA1", M_FHIR_READ, "Patient", NULL, "BOB2", &err), CL_EDENIED);
  cr_assert_eq(scoped(pt, "ADA1", M_FHIR_EVERYTHING, NULL, NULL, NULL, &err), 0, "%s", err.msg);
  cr_assert_eq(scoped(pt, "ADA1", M_FHIR_EXPORT, NULL, NULL, NULL, &err), CL_EDENIED);
  cr_assert(strstr(err.msg, "bulk export with patient/ scopes"), "%s", err.msg);
  cr_assert_eq(scoped(pt, "", M_FHIR_SEARCH, "Observation", "patient", "ADA1", &err), CL_EDENIED,
               "no patient context: nothing");
  /* a user/ scope beside it lifts the compartment for its type only */
  const char *mixed = "patient/*.rs user/Observation.rs";
  cr_assert_eq(scoped(mixed, "ADA1", M_FHIR_SEARCH, "Observation", "patient", "BOB2", &err), 0,
               "%s", err.msg);
  cr_assert_eq(scoped(mixed, "ADA1", M_FHIR_SEARCH, "Encounter", "patient", "BOB2", &err),
               CL_EDENIED);
  cr_assert_eq(scoped("patient/AuditEvent.rs", "ADA1", M_AUDIT_QUERY, NULL, NULL, "ADA1", &err), 0,
               "%s", err.msg);
  cr_assert_eq(scoped("patient/AuditEvent.rs", "ADA1", M_AUDIT_QUERY, NULL, NULL, "BOB2", &err),
               CL_EDENIED);
}

/* Appends: every event's type, and the signer must be the caller. */
Test(policy, appends_by_event_type_and_signer) {
  cl_policy *p;
  cl_err err;
  cr_assert_eq(cl_policy_default(&p, &err), 0, "%s", err.msg);
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("authz", &dir, &admin, 0);
  static const uint32_t EVS[] = {
      CLINLOG__V1__EVENT__BODY_OBSERVATION_RECORDED, CLINLOG__V1__EVENT__BODY_MEDICATION_PRESCRIBED,
      CLINLOG__V1__EVENT__BODY_CLAIM_SUBMITTED, CLINLOG__V1__EVENT__BODY_PATIENT_REGISTERED,
      CLINLOG__V1__EVENT__BODY_DEVICE_READING_RECORDED,
      CLINLOG__V1__EVENT__BODY_RISK_SCORE_RECORDED};
  static const char *const LETTERS[] = {"O", "M", "C", "P", "D", "R"};
  for (size_t r = 0; r < sizeof EXPECT / sizeof EXPECT[0]; r++) {
    /* a principal of this role with its own key, registered in the log */
    char pid[64];
    snprintf(pid, sizeof pid, "%s-1", EXPECT[r].role);
    cl_signer k;
    cr_assert_eq(cl_signer_generate(&k, &err), 0);
    size_t len;
    uint8_t *reg = cl_test_principal_event(pid, EXPECT[r].role, &k, &len);
    cl_append_result res;
    cr_assert_eq(cl_test_append(log, &admin, &reg, &len, 1, 1, NULL, 0, 0, &res, &err), 0, "%s",
                 err.msg);
    cl_append_result_free(&res);
    free(reg);
    for (size_t e = 0; e < sizeof EVS / sizeof EVS[0]; e++) {
      /* an event of that type, its body empty: the type is what the
       * policy reads */
      const ProtobufCFieldDescriptor *fd =
          protobuf_c_message_descriptor_get_field(&clinlog__v1__event__descriptor, EVS[e]);
      cr_assert_not_null(fd);
      const ProtobufCMessageDescriptor *bd = fd->descriptor;
      ProtobufCMessage *body = calloc(1, bd->sizeof_message);
      bd->message_init(body);
      Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
      ev.stream = "patient-authz";
      ev.body_case = EVS[e];
      *(ProtobufCMessage **)((char *)&ev + fd->offset) = body;
      size_t n;
      uint8_t *b = cl_test_pack_event(&ev, &n);
      free(body);
      ProtobufCBinaryData evb = {n, b};
      uint8_t h[32], sig[64];
      cl_event_hash(b, n, h);
      cl_sign_batch(&k, (const uint8_t(*)[32])h, 1, sig);
      Clinlog__V1__Signature bs = CLINLOG__V1__SIGNATURE__INIT;
      bs.key_id = (ProtobufCBinaryData){32, k.pk};
      bs.signature = (ProtobufCBinaryData){64, sig};
      Clinlog__V1__AppendBatch batch = CLINLOG__V1__APPEND_BATCH__INIT;
      batch.n_events = 1, batch.events = &evb, batch.batch_signature = &bs;
      cl_req_ctx rc;
      cl_req_ctx_init(&rc, M_APPEND, "test");
      snprintf(rc.principal, sizeof rc.principal, "%s", pid);
      snprintf(rc.roles, sizeof rc.roles, "%s", EXPECT[r].role);
      int want = has_word(EXPECT[r].appends, LETTERS[e]);
      int got = authz_append(p, log, &rc, &batch, &err);
      cr_assert_eq(got == 0, want, "%s appends %s: %s", EXPECT[r].role, fd->name, err.msg);
      if (!want)
        cr_assert(strstr(err.msg, "may not append events[0]"), "%s", err.msg);
      /* the same batch sent by someone else: refused unless a relay */
      snprintf(rc.principal, sizeof rc.principal, "someone-else");
      got = authz_append(p, log, &rc, &batch, &err);
      int relay = has_word("integration node", EXPECT[r].role);
      if (want && !relay) {
        cr_assert_eq(got, CL_EDENIED, "%s", EXPECT[r].role);
        cr_assert(strstr(err.msg, "signed by"), "%s", err.msg);
      }
      free(b);
    }
    cl_signer_free(&k);
  }
  cl_log_close(log);
  cl_signer_free(&admin);
  cl_test_rmtree(dir);
  free(dir);
  cl_policy_free(p);
}

/* A FHIR request of a patient principal (patient p-1): 0 or CL_EDENIED. */
static int as_patient(const cl_policy *p, const char *own, int m, const char *type, const char *id,
                      const char *const *params, cl_err *err) {
  cl_req_ctx rc;
  cl_req_ctx_init(&rc, m, "test");
  snprintf(rc.principal, sizeof rc.principal, "portal-user");
  snprintf(rc.roles, sizeof rc.roles, "patient");
  snprintf(rc.patient_id, sizeof rc.patient_id, "%s", own);
  Clinlog__V1__FhirParam pv[8], *pp[8];
  size_t n = 0;
  for (; params && params[2 * n]; n++) {
    clinlog__v1__fhir_param__init(&pv[n]);
    pv[n].name = (char *)params[2 * n];
    pv[n].value = (char *)params[2 * n + 1];
    pp[n] = &pv[n];
  }
  Clinlog__V1__FhirReadRequest rd = CLINLOG__V1__FHIR_READ_REQUEST__INIT;
  Clinlog__V1__FhirSearchRequest se = CLINLOG__V1__FHIR_SEARCH_REQUEST__INIT;
  Clinlog__V1__FhirEverythingRequest ev = CLINLOG__V1__FHIR_EVERYTHING_REQUEST__INIT;
  Clinlog__V1__ReadRequest lr = CLINLOG__V1__READ_REQUEST__INIT;
  const ProtobufCMessage *req = &lr.base;
  rd.type = se.type = (char *)type;
  rd.id = ev.patient_id = (char *)id;
  se.n_params = n, se.params = pp;
  if (m == M_FHIR_READ)
    req = &rd.base;
  else if (m == M_FHIR_SEARCH)
    req = &se.base;
  else if (m == M_FHIR_EVERYTHING)
    req = &ev.base;
  Clinlog__V1__AuditQueryRequest aq = CLINLOG__V1__AUDIT_QUERY_REQUEST__INIT;
  if (m == M_AUDIT_QUERY) {
    aq.patient = (char *)id;
    req = &aq.base;
  }
  cl_err_clear(err);
  return authz_call(p, &rc, req, err);
}

Test(policy, a_patient_reads_its_own_compartment_only) {
  cl_policy *p;
  cl_err err;
  cr_assert_eq(cl_policy_default(&p, &err), 0, "%s", err.msg);
  const char *mine[] = {"patient", "p-1", "code", "8867-4", NULL};
  const char *ref[] = {"subject", "Patient/p-1", NULL};
  const char *other[] = {"patient", "p-2", NULL};
  const char *both[] = {"patient", "p-1,p-2", NULL};
  const char *none[] = {"code", "8867-4", NULL};
  const char *prov[] = {"patient", "p-1", "_revinclude", "Provenance:target", NULL};
  const char *notes[] = {"patient", "p-1", "_revinclude", "DocumentReference:patient", NULL};
  const char *twice[] = {"patient", "p-1", "patient", "p-2", NULL};
  const char *pid[] = {"_id", "p-1", NULL};
  cr_assert_eq(as_patient(p, "p-1", M_FHIR_READ, "Patient", "p-1", NULL, &err), 0, "%s", err.msg);
  cr_assert_eq(as_patient(p, "p-1", M_FHIR_SEARCH, "Observation", "", mine, &err), 0, "%s",
               err.msg);
  cr_assert_eq(as_patient(p, "p-1", M_FHIR_SEARCH, "Condition", "", ref, &err), 0, "%s", err.msg);
  cr_assert_eq(as_patient(p, "p-1", M_FHIR_SEARCH, "Observation", "", prov, &err), 0, "%s",
               err.msg);
  cr_assert_eq(as_patient(p, "p-1", M_FHIR_SEARCH, "Patient", "", pid, &err), 0, "%s", err.msg);
  cr_assert_eq(as_patient(p, "p-1", M_FHIR_EVERYTHING, "", "p-1", NULL, &err), 0, "%s", err.msg);

  cr_assert_eq(as_patient(p, "p-1", M_FHIR_READ, "Patient", "p-2", NULL, &err), CL_EDENIED);
  cr_assert(strstr(err.msg, "may not read Patient/p-2 outside its own compartment"), "%s", err.msg);
  cr_assert_eq(as_patient(p, "p-1", M_FHIR_READ, "Observation", "o-1", NULL, &err), CL_EDENIED);
  cr_assert(strstr(err.msg, "by search with patient=p-1"), "%s", err.msg);
  cr_assert_eq(as_patient(p, "p-1", M_FHIR_SEARCH, "Observation", "", other, &err), CL_EDENIED);
  cr_assert(strstr(err.msg, "add patient=p-1"), "%s", err.msg);
  cr_assert_eq(as_patient(p, "p-1", M_FHIR_SEARCH, "Observation", "", both, &err), CL_EDENIED);
  cr_assert_eq(as_patient(p, "p-1", M_FHIR_SEARCH, "Observation", "", none, &err), CL_EDENIED);
  cr_assert_eq(as_patient(p, "p-1", M_FHIR_SEARCH, "Observation", "", notes, &err), CL_EDENIED);
  cr_assert_eq(as_patient(p, "p-1", M_FHIR_SEARCH, "Observation", "", twice, &err), CL_EDENIED);
  cr_assert_eq(as_patient(p, "p-1", M_FHIR_EVERYTHING, "", "p-2", NULL, &err), CL_EDENIED);
  cr_assert(strstr(err.msg, "its own is Patient/p-1"), "%s", err.msg);
  cr_assert_eq(as_patient(p, "p-1", M_READ, "", "", NULL, &err), CL_EDENIED);
  cr_assert(strstr(err.msg, "read every resource type"), "%s", err.msg);
  cr_assert_eq(as_patient(p, "", M_FHIR_READ, "Patient", "p-1", NULL, &err), CL_EDENIED);
  cr_assert(strstr(err.msg, "linked to no patient"), "%s", err.msg);
  /* who looked at my record: its own accounting of disclosures, no one else's */
  cr_assert_eq(as_patient(p, "p-1", M_AUDIT_QUERY, "", "p-1", NULL, &err), 0, "%s", err.msg);
  cr_assert_eq(as_patient(p, "p-1", M_AUDIT_QUERY, "", "p-2", NULL, &err), CL_EDENIED);
  cr_assert(strstr(err.msg, "ask with patient=p-1"), "%s", err.msg);
  cr_assert_eq(as_patient(p, "p-1", M_AUDIT_QUERY, "", "", NULL, &err), CL_EDENIED);
  cr_assert_eq(as_patient(p, "", M_AUDIT_QUERY, "", "", NULL, &err), CL_EDENIED);
  cl_policy_free(p);
}

/* Cluster.RotateLogKey changes the log's signing key: role admin only (the
 * matrix covers it by kind; this says so by name). LogKeyStatus is a peer
 * call: nodes ask each other before a rotation. */
Test(policy, rotate_log_key_is_admin_only) {
  cl_policy *p;
  cl_err err;
  cr_assert_eq(cl_policy_default(&p, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_method_kind(M_ROTATE_LOG_KEY), CL_MK_ADMIN);
  cr_assert_eq(cl_method_kind(M_LOG_KEY_STATUS), CL_MK_PEER);
  for (size_t i = 0; i < sizeof EXPECT / sizeof EXPECT[0]; i++) {
    const char *role = EXPECT[i].role;
    int code = call(p, role, M_ROTATE_LOG_KEY, NULL, &err);
    if (!strcmp(role, "admin")) {
      cr_assert_eq(code, 0, "admin: %s", err.msg);
    } else {
      cr_assert_eq(code, CL_EDENIED, "%s may rotate the log key", role);
      cr_assert(strstr(err.msg, "RotateLogKey") && strstr(err.msg, "admin calls"), "%s", err.msg);
    }
    code = call(p, role, M_LOG_KEY_STATUS, NULL, &err);
    cr_assert_eq(code, !strcmp(role, "admin") || !strcmp(role, "node") ? 0 : CL_EDENIED, "%s",
                 role);
  }
  cl_policy_free(p);
}

/* FHIR writes on the REST face (adapters/http/http_fhirw.c): the node
 * writes the events, so the call itself is checked on the event types the
 * write may make (a batch of bodiless events naming them). */
static int fhir_write(const cl_policy *p, const char *role, uint32_t type, cl_err *err) {
  cl_req_ctx rc;
  cl_req_ctx_init(&rc, M_FHIR_WRITE, "test");
  snprintf(rc.principal, sizeof rc.principal, "%s-1", role);
  snprintf(rc.roles, sizeof rc.roles, "%s", role);
  uint8_t ev[3] = {(uint8_t)(((type << 3) | 2) & 0x7f) | 0x80, (uint8_t)(((type << 3) | 2) >> 7),
                   0};
  ProtobufCBinaryData evs[1] = {{3, ev}};
  Clinlog__V1__AppendBatch b = CLINLOG__V1__APPEND_BATCH__INIT;
  b.n_events = 1;
  b.events = evs;
  return authz_call(p, &rc, &b.base, err);
}

Test(policy, fhir_writes_by_the_event_types_they_make) {
  cl_policy *p;
  cl_err err;
  cr_assert_eq(cl_policy_default(&p, &err), 0, "%s", err.msg);
  const uint32_t OBS = CLINLOG__V1__EVENT__BODY_OBSERVATION_RECORDED,
                 COND = CLINLOG__V1__EVENT__BODY_CONDITION_DIAGNOSED,
                 PAT = CLINLOG__V1__EVENT__BODY_PATIENT_REGISTERED,
                 RX = CLINLOG__V1__EVENT__BODY_MEDICATION_PRESCRIBED;
  cr_assert_eq(fhir_write(p, "nurse", OBS, &err), 0, "%s", err.msg);
  cr_assert_eq(fhir_write(p, "clinician", COND, &err), 0, "%s", err.msg);
  cr_assert_eq(fhir_write(p, "integration", RX, &err), 0, "%s", err.msg);
  cr_assert_eq(fhir_write(p, "registrar", PAT, &err), 0, "%s", err.msg);
  cr_assert_eq(fhir_write(p, "registrar", COND, &err), CL_EDENIED);
  cr_assert(strstr(err.msg, "ConditionDiagnosed"), "%s", err.msg);
  cr_assert_eq(fhir_write(p, "billing", OBS, &err), CL_EDENIED);
  cr_assert_eq(fhir_write(p, "nurse", RX, &err), CL_EDENIED, "a nurse does not prescribe");
  cr_assert_eq(fhir_write(p, "analyst", OBS, &err), CL_EDENIED, "a reader writes nothing");
  cr_assert(strstr(err.msg, "clinlog.v1.Fhir/Write"), "%s", err.msg);
  cl_policy_free(p);
}

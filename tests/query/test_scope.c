/* SMART on FHIR scopes (query/auth/scope.h): v2 and v1 forms as SMART App
 * Launch 2.x writes them, the contexts a caller may ask for, the scopes
 * that name no data, and what a set of scopes allows. */
#include <criterion/criterion.h>
#include <string.h>

#include "query/auth/scope.h"

#define ALL (CL_SCOPE_PATIENT | CL_SCOPE_USER | CL_SCOPE_SYSTEM)

static void ok(const char *text, int contexts, const char *want_granted, size_t want_n) {
  cl_scopes s;
  char granted[CL_SCOPE_TEXT_MAX];
  cl_err err;
  cl_err_clear(&err);
  cr_assert_eq(cl_scopes_parse(text, contexts, &s, granted, &err), 0, "%s: %s", text, err.msg);
  cr_assert_str_eq(granted, want_granted, "%s", text);
  cr_assert_eq(s.n, want_n, "%s", text);
}

static void bad(const char *text, int contexts, const char *want) {
  cl_scopes s;
  cl_err err;
  cl_err_clear(&err);
  cr_assert_eq(cl_scopes_parse(text, contexts, &s, NULL, &err), CL_EINVAL, "accepted: %s", text);
  cr_assert(strstr(err.msg, want), "%s: got \"%s\", want \"%s\"", text, err.msg, want);
}

Test(scope, v2_and_v1_forms) {
  ok("system/Observation.rs", ALL, "system/Observation.rs", 1);
  ok("  patient/*.read   openid fhirUser launch/patient offline_access user/Encounter.cruds ", ALL,
     "patient/*.read user/Encounter.cruds", 2);
  ok("", ALL, "", 0);
  ok("openid profile", ALL, "", 0);
  ok("user/AuditEvent.s system/*.*", ALL, "user/AuditEvent.s system/*.*", 2);
  cl_scopes s;
  cl_err err;
  cr_assert_eq(cl_scopes_parse("patient/Observation.read", ALL, &s, NULL, &err), 0);
  cr_assert_eq(s.s[0].perms, CL_SCOPE_R | CL_SCOPE_S, "v1 read is rs");
  cr_assert_eq(s.s[0].context, CL_SCOPE_PATIENT);
  cr_assert_str_eq(s.s[0].type, "Observation");
  cr_assert_eq(cl_scopes_parse("user/Claim.write", ALL, &s, NULL, &err), 0);
  cr_assert_eq(s.s[0].perms, CL_SCOPE_C | CL_SCOPE_U | CL_SCOPE_D, "v1 write is cud");
  cr_assert_eq(cl_scopes_parse("system/Patient.cud", ALL, &s, NULL, &err), 0);
  cr_assert_eq(s.s[0].perms, CL_SCOPE_C | CL_SCOPE_U | CL_SCOPE_D);
}

Test(scope, mistakes_name_the_scope) {
  bad("system/Observation.sr", ALL,
      "\"system/Observation.sr\": permissions are c r u d s in that order");
  bad("system/Observation.rr", ALL, "permissions are c r u d s");
  bad("system/Observation.x", ALL, "permissions are");
  bad("system/Observation.", ALL, "permissions are");
  bad("system/Obsrvation.rs", ALL, "\"Obsrvation\" is not a resource type this server serves");
  bad("admin/Observation.rs", ALL, "not <patient|user|system>/<type>.<permissions>");
  bad("Observation.rs", ALL, "not <patient|user|system>");
  bad("system/.rs", ALL, "no resource type");
  bad("patient/Observation.rs?category=laboratory", ALL, "granular scopes");
  bad("patient/*.rs", CL_SCOPE_SYSTEM,
      "patient/ scopes cannot be asked for here (a backend client");
  bad("system/*.rs", CL_SCOPE_USER | CL_SCOPE_PATIENT,
      "system/ scopes cannot be asked for here (a person asks for user/ or patient/");
  char many[4096] = "";
  for (int i = 0; i < CL_SCOPES_MAX + 1; i++)
    strcat(many, "user/Patient.rs ");
  bad(many, ALL, "more than 32 clinical scopes");
}

Test(scope, what_they_allow) {
  cl_scopes s;
  cl_err err;
  cr_assert_eq(cl_scopes_parse("patient/Observation.rs user/Patient.r system/Encounter.s "
                               "patient/*.read",
                               ALL, &s, NULL, &err),
               0);
  cr_assert_eq(cl_scopes_allow(&s, "Observation", CL_SCOPE_R), CL_SCOPE_PATIENT);
  cr_assert_eq(cl_scopes_allow(&s, "Patient", CL_SCOPE_R), CL_SCOPE_USER | CL_SCOPE_PATIENT);
  cr_assert_eq(cl_scopes_allow(&s, "Patient", CL_SCOPE_S), CL_SCOPE_PATIENT,
               "user/Patient.r: no s");
  cr_assert_eq(cl_scopes_allow(&s, "Encounter", CL_SCOPE_S), CL_SCOPE_SYSTEM | CL_SCOPE_PATIENT);
  cr_assert_eq(cl_scopes_allow(&s, "*", CL_SCOPE_R), CL_SCOPE_PATIENT, "only patient/* covers all");
  cr_assert_eq(cl_scopes_allow(&s, "Claim", CL_SCOPE_C), 0);
  cr_assert(cl_scopes_allow_context(&s, CL_SCOPE_SYSTEM));
  cr_assert_eq(cl_scopes_parse("user/Patient.rs", ALL, &s, NULL, &err), 0);
  cr_assert_eq(cl_scopes_allow(&s, "Observation", CL_SCOPE_R), 0);
  cr_assert_eq(cl_scopes_allow(&s, "*", CL_SCOPE_R), 0);
  cr_assert_not(cl_scopes_allow_context(&s, CL_SCOPE_PATIENT));
}

/* SMART on FHIR scopes (App Launch 2.x, "Scopes and Launch Context"): the
 * clinical scopes a token carries, parsed and asked about.
 *
 *   <context>/<type>.<permissions>
 *     context      patient (the token's patient compartment only), user (what
 *                  the person may see), system (a backend client)
 *     type         a FHIR resource type clinlog serves, AuditEvent, or *
 *     permissions  v2: one or more of c r u d s, in that order ("rs");
 *                  v1: read (= rs), write (= cud), * (= cruds)
 *
 * Scopes that name no clinical data (openid, fhirUser, profile, launch,
 * launch/patient, offline_access, online_access) are accepted and not
 * granted: clinlog has no OpenID Connect, launch or refresh tokens. v2's
 * granular scopes ("patient/Observation.rs?category=laboratory") are
 * refused rather than widened. Scopes only narrow what the access policy
 * lets the principal do; they never widen it. clinlog's FHIR face is
 * read-only, so only r and s can be used.
 *
 * All functions are reentrant; a cl_scopes is a plain value. */
#ifndef CL_QUERY_AUTH_SCOPE_H
#define CL_QUERY_AUTH_SCOPE_H

#include <stddef.h>

#include "store/err.h"

enum { CL_SCOPE_C = 1, CL_SCOPE_R = 2, CL_SCOPE_U = 4, CL_SCOPE_D = 8, CL_SCOPE_S = 16 };

/* Which contexts a request may ask for. */
enum {
  CL_SCOPE_PATIENT = 1, /* patient/ */
  CL_SCOPE_USER = 2,    /* user/ */
  CL_SCOPE_SYSTEM = 4   /* system/ */
};

#define CL_SCOPES_MAX 32
#define CL_SCOPE_TEXT_MAX 1024

typedef struct cl_scope {
  int context;   /* CL_SCOPE_PATIENT, _USER or _SYSTEM */
  char type[40]; /* "Observation", "AuditEvent" or "*" */
  unsigned perms;
} cl_scope;

typedef struct cl_scopes {
  cl_scope s[CL_SCOPES_MAX];
  size_t n;
} cl_scopes;

/* Parses a space-separated scope string (OAuth 2.0 "scope"). `contexts`
 * (CL_SCOPE_* bits) are the contexts the caller may ask for. `granted`
 * (CL_SCOPE_TEXT_MAX bytes, may be NULL) gets the clinical scopes, in the
 * order asked, as the token will carry them. Errors: CL_EINVAL with err
 * naming the scope and why (not context/type.permissions, an unknown type,
 * permissions out of order, a context not allowed here, a granular scope,
 * more than CL_SCOPES_MAX). An empty string parses to no scopes. */
int cl_scopes_parse(const char *text, int contexts, cl_scopes *out, char *granted, cl_err *err);

/* What the scopes allow on resources of `type` ("*": of every type): 0 if
 * no scope grants every permission bit of `perms`; else CL_SCOPE_* bits of
 * the contexts that do (a caller holding only CL_SCOPE_PATIENT must stay in
 * the patient compartment). */
int cl_scopes_allow(const cl_scopes *s, const char *type, unsigned perms);
/* 1 if one of the scopes is of `context` (a CL_SCOPE_* bit). */
int cl_scopes_allow_context(const cl_scopes *s, int context);

#endif

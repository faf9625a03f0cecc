/* The access policy: which role may call which methods, append which event
 * types, read which FHIR resource types and which of their elements. Read from a text file
 * (default.policy, shipped with clinlog and built into it, documents the
 * format); the request layer asks it about every authenticated call.
 *
 * A principal holds the union of its roles' rules; a role the policy does
 * not name may do nothing. The policy knows method names and kinds as
 * strings, so it does not depend on the front doors.
 *
 * A cl_policy is immutable once parsed: any thread may ask it. */
#ifndef CL_QUERY_AUTH_POLICY_H
#define CL_QUERY_AUTH_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "store/err.h"

typedef struct cl_policy cl_policy;

/* Parses policy text (len bytes; `name` for messages). *out returned-owned
 * (cl_policy_free). Errors: CL_EMALFORMED with err naming the place as
 * "NAME:LINE: reason" (an unknown verb, method kind or name, event type or
 * category, FHIR resource type; a rule without objects), CL_ENOMEM. */
int cl_policy_parse(const char *text, size_t len, const char *name, cl_policy **out, cl_err *err);
/* Reads and parses a file. Errors: as cl_policy_parse, CL_EIO. */
int cl_policy_load(const char *path, cl_policy **out, cl_err *err);
/* The built-in default (query/auth/default.policy). */
int cl_policy_default(cl_policy **out, cl_err *err);
void cl_policy_free(cl_policy *p);

/* `roles` is comma-separated. Each returns 1 if one of the roles may, else
 * 0. */
int cl_policy_may_call(const cl_policy *p, const char *roles, const char *method, const char *kind);
int cl_policy_may_append(const cl_policy *p, const char *roles, uint32_t event_type);
/* fhir_type: a resource type name ("Observation"); "*" asks for every type
 * (whole events, every resource of a compartment). */
int cl_policy_may_read(const cl_policy *p, const char *roles, const char *fhir_type);
/* 1 if one of the roles may read its own patient compartment (`read
 * compartment`: any type, of the patient the principal is). */
int cl_policy_reads_compartment(const cl_policy *p, const char *roles);

/* Minimum necessary (`fields` rules): what the roles see of resources of
 * `type` (a CL_FHIR_*, query/fhir/map.h). 0: the whole resource (one of
 * the roles reads the type without a fields rule for it, or reads its
 * compartment); 1: only the elements set in *mask (numbered as in
 * query/fhir/elements.h; the union of the roles' fields rules, 0 if no role
 * reads the type), plus those every resource keeps. */
int cl_policy_fields(const cl_policy *p, const char *roles, int type, uint64_t *mask);
/* 1 if the roles see only some elements of some type (answers must then go
 * through cl_fhir_subset), else 0. */
int cl_policy_restricts(const cl_policy *p, const char *roles);

/* The text of the built-in default. */
extern const char cl_policy_default_text[];

#endif

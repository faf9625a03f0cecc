/* Authorization by the access policy (query/auth/policy.h), for the
 * request layer: what an authenticated caller's roles allow, checked for
 * every call before the hooks (authz_call) and for every batch the writer
 * takes (authz_append). Internal to adapters/service. */
#ifndef CL_ADAPTERS_SERVICE_AUTHZ_H
#define CL_ADAPTERS_SERVICE_AUTHZ_H

#include "adapters/service/service.h"
#include "query/auth/policy.h"

/* May rc's principal make this call with this request (NULL for
 * client-streaming methods)? 0, or CL_EDENIED with err naming the method,
 * the roles and what is missing: the method's kind, whole-event reads
 * (read *), a FHIR resource type (the request's, an _include's or
 * _revinclude's, every type of $everything and $export unless _type names
 * readable ones). */
int authz_call(const cl_policy *p, const cl_req_ctx *rc, const ProtobufCMessage *req, cl_err *err);

/* May rc's principal append batch b? Every event's type must be one its
 * roles may append, and the batch must be signed by the caller's own key
 * (an `integration` or `node` caller relays batches others signed).
 * 0, or CL_EDENIED naming the event and its type, or the signer. */
int authz_append(const cl_policy *p, cl_log *log, const cl_req_ctx *rc,
                 const Clinlog__V1__AppendBatch *b, cl_err *err);

/* A token's SMART scopes (rc->scope, query/auth/scope.h), after the
 * policy allowed the call: FHIR reads need r and searches s on each type
 * they return (includes, _type, every type for $everything and $export
 * without one); AuditEvent reads likewise; a call that is not a FHIR read
 * is refused; when only patient/ scopes allow it, the request must stay in
 * the token's patient compartment (rc->patient_id). 0, or CL_EDENIED
 * naming the scopes and what they lack. */
int authz_scopes(const cl_req_ctx *rc, const ProtobufCMessage *req, cl_err *err);

/* Minimum necessary: keeps of each resource in a FHIR answer (*body: a
 * resource or Bundle, or NDJSON lines; malloc'd, replaced) only the
 * elements the policy's `fields` rules let rc's roles read (cl_fhir_subset).
 * Nothing changes for roles without such rules, nor under break-glass.
 * 0, or CL_ENOMEM (*body unchanged; the answer must not be sent). */
int authz_subset(const cl_policy *p, const cl_req_ctx *rc, char **body, size_t *len, int ndjson);

#endif

/* Authorization by the access policy; see authz.h. */
#include "adapters/service/authz.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clinlog/v1/audit.pb-c.h"
#include "clinlog/v1/fhir.pb-c.h"
#include "query/auth/scope.h"
#include "query/fhir/elements.h"
#include "query/fhir/engine.h"
#include "query/fhir/map.h"
#include "store/event.h"
#include "store/keyring.h"

static int deny(const cl_req_ctx *rc, cl_err *err, const char *what) {
  return cl_err_set(err, CL_EDENIED, "%s: %s (roles %s) may not %s", cl_method_name(rc->method),
                    rc->principal, rc->roles[0] ? rc->roles : "none", what);
}

/* 0 if the caller may read resources of `type` ("*": every type). */
static int need_read(const cl_policy *p, const cl_req_ctx *rc, const char *type, cl_err *err) {
  if (cl_policy_may_read(p, rc->roles, type))
    return 0;
  char what[160];
  if (!strcmp(type, "*"))
    snprintf(what, sizeof what, "read every resource type (the policy's read *)");
  else
    snprintf(what, sizeof what, "read %s", type);
  return deny(rc, err, what);
}

/* The resource type an _include or _revinclude value brings in: the
 * source type of a _revinclude ("Provenance:target"), the target of an
 * _include when the parameter says it ("Observation:patient" -> Patient);
 * "*" when it cannot be told (a wildcard, another reference). */
static void included_type(const char *name, const char *value, char *out, size_t n) {
  const char *colon = strchr(value, ':');
  snprintf(out, n, "*");
  if (!colon || strchr(value, '*'))
    return;
  if (!strncmp(name, "_revinclude", 11)) {
    snprintf(out, n, "%.*s", (int)(colon - value), value);
    return;
  }
  const char *param = colon + 1;
  size_t pl = strcspn(param, ":");
  if ((pl == 7 && !strncmp(param, "patient", 7)) || (pl == 7 && !strncmp(param, "subject", 7)))
    snprintf(out, n, "Patient");
  else if (pl == 9 && !strncmp(param, "encounter", 9))
    snprintf(out, n, "Encounter");
}

/* Calls need(ctx, type) for each type params name in _type (comma-
 * separated, possibly repeated) and bring in by _include/_revinclude, and
 * for "*" when there is no _type and `all_without_type`. The first nonzero
 * answer is returned. */
static int each_param_type(Clinlog__V1__FhirParam **params, size_t n, int all_without_type,
                           int (*need)(void *ctx, const char *type), void *ctx) {
  int typed = 0, code;
  char t[128];
  for (size_t i = 0; i < n; i++) {
    const char *name = params[i]->name, *v = params[i]->value;
    if (!strcmp(name, "_type")) {
      typed = 1;
      for (const char *s = v; *s;) {
        size_t l = strcspn(s, ",");
        snprintf(t, sizeof t, "%.*s", (int)(l < sizeof t ? l : sizeof t - 1), s);
        if ((code = need(ctx, t)) != 0)
          return code;
        s += l + (s[l] == ',');
      }
    } else if (!strncmp(name, "_include", 8) || !strncmp(name, "_revinclude", 11)) {
      included_type(name, v, t, sizeof t);
      if ((code = need(ctx, t)) != 0)
        return code;
    }
  }
  return all_without_type && !typed ? need(ctx, "*") : 0;
}

typedef struct read_q {
  const cl_policy *p;
  const cl_req_ctx *rc;
  cl_err *err;
} read_q;

static int need_read_q(void *ctx, const char *type) {
  read_q *q = ctx;
  return need_read(q->p, q->rc, type, q->err);
}

/* Each type the params bring in must be readable (each_param_type). */
static int check_params(const cl_policy *p, const cl_req_ctx *rc, Clinlog__V1__FhirParam **params,
                        size_t n, int all_without_type, cl_err *err) {
  read_q q = {p, rc, err};
  return each_param_type(params, n, all_without_type, need_read_q, &q);
}

/* Minimum necessary: a search of a type the caller sees only some
 * elements of may not filter or sort on the others (the matches would
 * reveal them). 0, or CL_EDENIED naming the parameter. */
static int search_fields(const cl_policy *p, const cl_req_ctx *rc, const char *type,
                         Clinlog__V1__FhirParam **params, size_t n, cl_err *err) {
  int t = cl_fhir_type_of(type);
  uint64_t mask;
  if (t <= 0 || !cl_policy_fields(p, rc->roles, t, &mask))
    return 0;
  mask |= cl_fhir_elements_kept(t);
  for (size_t i = 0; i < n; i++) {
    const char *name = params[i]->name, *v = params[i]->value;
    int sort = !strcmp(name, "_sort");
    for (const char *s = sort ? v : name; *s;) { /* _sort: each key, "-" for descending */
      size_t l = sort ? strcspn(s, ",") : strcspn(s, ":.");
      char pn[96];
      snprintf(pn, sizeof pn, "%.*s", (int)(l < sizeof pn ? l : sizeof pn - 1),
               s + (sort && *s == '-'));
      const char *path = cl_fhir_search_param_path(type, pn);
      for (const char *a = path ? path : ""; *a;) { /* "onsetDateTime|onsetPeriod" */
        size_t al = strcspn(a, "|."), e = (size_t)cl_fhir_element_of_member(t, a, al);
        if (e < 64 && !((mask >> e) & 1)) {
          char what[224];
          snprintf(what, sizeof what,
                   "search %s by %s (its %.*s is not among the elements the policy's fields "
                   "rules let it read)",
                   type, pn, (int)al, a);
          return deny(rc, err, what);
        }
        a += strcspn(a, "|");
        a += *a == '|';
      }
      if (!sort)
        break;
      s += l + (s[l] == ',');
    }
  }
  return 0;
}

/* The reads by resource type: 0, or CL_EDENIED. */
static int typed_reads(const cl_policy *p, const cl_req_ctx *rc, const ProtobufCMessage *req,
                       cl_err *err) {
  switch (rc->method) {
  case M_READ:
  case M_SUBSCRIBE:
  case M_GET_EVENT:
  case M_GET_STREAM:
  case M_LIST_STREAMS:
    return need_read(p, rc, "*", err); /* whole events, of any type */
  case M_FHIR_READ:
    return need_read(p, rc, ((const Clinlog__V1__FhirReadRequest *)req)->type, err);
  case M_FHIR_HISTORY: {
    const char *t = ((const Clinlog__V1__FhirHistoryRequest *)req)->type;
    return need_read(p, rc, t[0] ? t : "*", err);
  }
  case M_FHIR_SEARCH: {
    const Clinlog__V1__FhirSearchRequest *s = (const Clinlog__V1__FhirSearchRequest *)req;
    int code = need_read(p, rc, s->type[0] ? s->type : "*", err);
    if (!code)
      code = check_params(p, rc, s->params, s->n_params, 0, err);
    return code ? code : search_fields(p, rc, s->type, s->params, s->n_params, err);
  }
  case M_FHIR_EVERYTHING: {
    const Clinlog__V1__FhirEverythingRequest *e = (const Clinlog__V1__FhirEverythingRequest *)req;
    return check_params(p, rc, e->params, e->n_params, 1, err);
  }
  case M_FHIR_EXPORT: {
    const Clinlog__V1__FhirExportRequest *x = (const Clinlog__V1__FhirExportRequest *)req;
    return check_params(p, rc, x->params, x->n_params, 1, err);
  }
  case M_CDS_CHECK_ORDER: {
    /* the drafts are checked against the patient's medications and allergies */
    int code = need_read(p, rc, "MedicationRequest", err);
    return code ? code : need_read(p, rc, "AllergyIntolerance", err);
  }
  case M_CDS_ALERTS:
    return need_read(p, rc, "DetectedIssue", err); /* IssueDetected is a DetectedIssue */
  case M_CDS_HOOK: {
    /* a hook the server answers from its own views: _type names them (a
     * hook answered from the request's prefetch alone reads nothing) */
    const Clinlog__V1__FhirEverythingRequest *e = (const Clinlog__V1__FhirEverythingRequest *)req;
    return e ? check_params(p, rc, e->params, e->n_params, 0, err) : 0;
  }
  default:
    return 0;
  }
}

/* Is v the caller's own patient, as a search value ("p-1" or "Patient/p-1")? */
static int own_patient(const cl_req_ctx *rc, const char *v) {
  if (!strncmp(v, "Patient/", 8))
    v += 8;
  return !strcmp(v, rc->patient_id);
}

/* The patient compartment (`read compartment`): the caller reads what
 * belongs to the patient it is, asked for in a way that says so before
 * anything is read: Patient/<own> (read, vread, history), a search with
 * patient= or subject= (Patient: _id=) naming only the own patient, with
 * includes of the patient or of Provenance only, and $everything of the own
 * patient. 0, or CL_EDENIED saying what to ask instead. */
static int compartment(const cl_req_ctx *rc, const ProtobufCMessage *req, cl_err *err) {
  char what[640];
  if (!rc->patient_id[0])
    return deny(rc, err, "read a patient compartment: the principal is linked to no patient");
  switch (rc->method) {
  case M_FHIR_READ:
  case M_FHIR_HISTORY: {
    const char *type = rc->method == M_FHIR_READ
                           ? ((const Clinlog__V1__FhirReadRequest *)req)->type
                           : ((const Clinlog__V1__FhirHistoryRequest *)req)->type;
    const char *id = rc->method == M_FHIR_READ ? ((const Clinlog__V1__FhirReadRequest *)req)->id
                                               : ((const Clinlog__V1__FhirHistoryRequest *)req)->id;
    if (!strcmp(type, "Patient") && own_patient(rc, id))
      return 0;
    snprintf(what, sizeof what,
             "read %s/%s outside its own compartment (Patient/%s; other types by search with "
             "patient=%s)",
             type, id, rc->patient_id, rc->patient_id);
    return deny(rc, err, what);
  }
  case M_FHIR_SEARCH: {
    const Clinlog__V1__FhirSearchRequest *s = (const Clinlog__V1__FhirSearchRequest *)req;
    int patient = !strcmp(s->type, "Patient"), scoped = 0, inside = 1;
    for (size_t i = 0; i < s->n_params && inside; i++) {
      const char *n = s->params[i]->name, *v = s->params[i]->value;
      char t[128];
      if (patient ? !strcmp(n, "_id") : (!strcmp(n, "patient") || !strcmp(n, "subject"))) {
        inside = own_patient(rc, v); /* not another patient, nor several */
        scoped = 1;
      } else if (!strncmp(n, "_include", 8) || !strncmp(n, "_revinclude", 11)) {
        included_type(n, v, t, sizeof t);
        inside = !strcmp(t, "Patient") || !strcmp(t, "Provenance");
      }
    }
    if (inside && scoped)
      return 0;
    snprintf(what, sizeof what,
             "search %s outside its own compartment (add %s=%s; include only its Patient or "
             "Provenance)",
             s->type, patient ? "_id" : "patient", rc->patient_id);
    return deny(rc, err, what);
  }
  case M_FHIR_EVERYTHING:
    if (own_patient(rc, ((const Clinlog__V1__FhirEverythingRequest *)req)->patient_id))
      return 0;
    snprintf(what, sizeof what, "read another patient's record (its own is Patient/%s)",
             rc->patient_id);
    return deny(rc, err, what);
  default:
    return CL_EDENIED; /* whole events, exports: not a compartment's; err keeps why */
  }
}

/* The audit trail: a compartment reader (the portal's patient role) reads
 * its own accounting of disclosures only, asked for by its patient id. */
static int own_accounting(const cl_policy *p, const cl_req_ctx *rc, const ProtobufCMessage *req,
                          cl_err *err) {
  if (!cl_policy_reads_compartment(p, rc->roles))
    return 0; /* an auditor's, an admin's: every record */
  if (!rc->patient_id[0])
    return deny(rc, err, "read audit records: the principal is linked to no patient");
  const Clinlog__V1__AuditQueryRequest *q = (const Clinlog__V1__AuditQueryRequest *)req;
  if (q && q->event_id.len == 0 && !strcmp(q->patient, rc->patient_id))
    return 0;
  char what[256];
  snprintf(what, sizeof what,
           "read audit records other than its own accounting of disclosures (ask with "
           "patient=%s)",
           rc->patient_id);
  return deny(rc, err, what);
}

static uint32_t event_type_of(const uint8_t *p, size_t n);

int authz_call(const cl_policy *p, const cl_req_ctx *rc, const ProtobufCMessage *req, cl_err *err) {
  int kind = cl_method_kind(rc->method);
  if (kind == CL_MK_HEALTH || kind == CL_MK_AUTH)
    return 0; /* open to anyone */
  if (!cl_policy_may_call(p, rc->roles, cl_method_name(rc->method), cl_method_kind_name(kind))) {
    char what[96];
    snprintf(what, sizeof what, "make %s calls", cl_method_kind_name(kind));
    return deny(rc, err, what);
  }
  if (rc->method == M_AUDIT_QUERY)
    return own_accounting(p, rc, req, err);
  if (rc->method == M_CDS_ACKNOWLEDGE || rc->method == M_CDS_OVERRIDE) {
    /* the node writes the event for the caller: its roles must allow it */
    uint32_t t = rc->method == M_CDS_ACKNOWLEDGE ? CLINLOG__V1__EVENT__BODY_ALERT_ACKNOWLEDGED
                                                 : CLINLOG__V1__EVENT__BODY_ALERT_OVERRIDDEN;
    if (!cl_policy_may_append(p, rc->roles, t)) {
      char what[96];
      snprintf(what, sizeof what, "append %s", cl_event_type_name(t));
      return deny(rc, err, what);
    }
    return 0;
  }
  if (rc->method == M_FHIR_WRITE) {
    /* the node writes the events for the caller (adapters/http/http_fhirw.c):
     * the request is a batch of the event types the write may make */
    const Clinlog__V1__AppendBatch *b = (const Clinlog__V1__AppendBatch *)req;
    for (size_t i = 0;
         b && req->descriptor == &clinlog__v1__append_batch__descriptor && i < b->n_events; i++) {
      uint32_t t = event_type_of(b->events[i].data, b->events[i].len);
      if (t && !cl_policy_may_append(p, rc->roles, t)) {
        char what[96];
        snprintf(what, sizeof what, "append %s", cl_event_type_name(t));
        return deny(rc, err, what);
      }
    }
    return 0;
  }
  int code = typed_reads(p, rc, req, err);
  if (code == CL_EDENIED && cl_policy_reads_compartment(p, rc->roles))
    code = compartment(rc, req, err);
  return code;
}

/* ------------------------------------------------------- SMART scopes */

static int scope_deny(const cl_req_ctx *rc, cl_err *err, const char *what) {
  return cl_err_set(err, CL_EDENIED, "%s: the token's scopes (%s) do not allow %s",
                    cl_method_name(rc->method), rc->scope, what);
}

/* `perms` on resources of `type`: 0, or CL_EDENIED; *patient_only set when
 * only patient/ scopes allow it. */
static int scope_need(const cl_scopes *s, const cl_req_ctx *rc, const char *type, unsigned perms,
                      int *patient_only, cl_err *err) {
  int ctx = cl_scopes_allow(s, type, perms);
  if (!ctx) {
    char what[160];
    snprintf(what, sizeof what, "%s of %s (needs %s/%s.%s)",
             perms == CL_SCOPE_S ? "searches" : "reads", strcmp(type, "*") ? type : "every type",
             "<patient|user|system>", type, perms == CL_SCOPE_S ? "s" : "r");
    return scope_deny(rc, err, what);
  }
  if (ctx == CL_SCOPE_PATIENT)
    *patient_only = 1;
  return 0;
}

typedef struct scope_q {
  const cl_scopes *s;
  const cl_req_ctx *rc;
  int *patient_only;
  cl_err *err;
} scope_q;

static int need_r_q(void *ctx, const char *type) {
  scope_q *q = ctx;
  return scope_need(q->s, q->rc, type, CL_SCOPE_R, q->patient_only, q->err);
}

/* The types a request's _type and includes bring in, each needing r. */
static int scope_params(const cl_scopes *s, const cl_req_ctx *rc, Clinlog__V1__FhirParam **params,
                        size_t n, int all_without_type, int *patient_only, cl_err *err) {
  scope_q q = {s, rc, patient_only, err};
  return each_param_type(params, n, all_without_type, need_r_q, &q);
}

int authz_scopes(const cl_req_ctx *rc, const ProtobufCMessage *req, cl_err *err) {
  int kind = cl_method_kind(rc->method);
  if (kind == CL_MK_HEALTH || kind == CL_MK_AUTH)
    return 0;
  cl_scopes s;
  cl_err perr;
  if (cl_scopes_parse(rc->scope, CL_SCOPE_PATIENT | CL_SCOPE_USER | CL_SCOPE_SYSTEM, &s, NULL,
                      &perr) != 0)
    return cl_err_set(err, CL_EDENIED, "%s: the token's scopes: %s", cl_method_name(rc->method),
                      perr.msg);
  int patient_only = 0, code;
  switch (rc->method) {
  case M_FHIR_READ:
    code = scope_need(&s, rc, ((const Clinlog__V1__FhirReadRequest *)req)->type, CL_SCOPE_R,
                      &patient_only, err);
    break;
  case M_FHIR_HISTORY: {
    const char *t = ((const Clinlog__V1__FhirHistoryRequest *)req)->type;
    code = scope_need(&s, rc, t[0] ? t : "*", CL_SCOPE_R, &patient_only, err);
    break;
  }
  case M_FHIR_SEARCH: {
    const Clinlog__V1__FhirSearchRequest *q = (const Clinlog__V1__FhirSearchRequest *)req;
    code = scope_need(&s, rc, q->type[0] ? q->type : "*", CL_SCOPE_S, &patient_only, err);
    if (!code)
      code = scope_params(&s, rc, q->params, q->n_params, 0, &patient_only, err);
    break;
  }
  case M_FHIR_EVERYTHING: {
    const Clinlog__V1__FhirEverythingRequest *e = (const Clinlog__V1__FhirEverythingRequest *)req;
    code = scope_params(&s, rc, e->params, e->n_params, 1, &patient_only, err);
    break;
  }
  case M_FHIR_EXPORT: {
    const Clinlog__V1__FhirExportRequest *x = (const Clinlog__V1__FhirExportRequest *)req;
    code = scope_params(&s, rc, x->params, x->n_params, 1, &patient_only, err);
    if (!code && patient_only)
      code = scope_deny(rc, err, "a bulk export with patient/ scopes (it spans patients)");
    break;
  }
  case M_FHIR_EXPORT_STATUS:
  case M_FHIR_EXPORT_CANCEL:
  case M_FHIR_EXPORT_READ:
    return 0; /* the job's own (cl_fhir_export_owned): allowed when kicked off */
  case M_AUDIT_QUERY: {
    const Clinlog__V1__AuditQueryRequest *q = (const Clinlog__V1__AuditQueryRequest *)req;
    int one = q && q->event_id.len != 0;
    code = scope_need(&s, rc, "AuditEvent", one ? CL_SCOPE_R : CL_SCOPE_S, &patient_only, err);
    if (!code && patient_only && (one || !q || strcmp(q->patient, rc->patient_id) != 0))
      code = scope_deny(rc, err, "audit records other than the patient's own accounting");
    return code;
  }
  default:
    return scope_deny(rc, err, "it: a scoped token makes FHIR reads and searches only");
  }
  if (code || !patient_only)
    return code;
  return compartment(rc, req, err); /* patient/ scopes: the token's patient only */
}

/* The body's field number (its event type) of a serialized Event: the
 * first length-delimited field numbered 100 or more. 0 if there is none
 * or the bytes are not protobuf (the store refuses them with its reasons). */
static uint32_t event_type_of(const uint8_t *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint64_t key = 0;
    for (unsigned sh = 0; i < n && sh < 64; sh += 7) {
      key |= (uint64_t)(p[i] & 0x7f) << sh;
      if (!(p[i++] & 0x80))
        break;
    }
    uint64_t len = 0;
    switch (key & 7) {
    case 0:
      while (i < n && (p[i++] & 0x80))
        ;
      break;
    case 1:
      i += 8;
      break;
    case 5:
      i += 4;
      break;
    case 2:
      for (unsigned sh = 0; i < n && sh < 64; sh += 7) {
        len |= (uint64_t)(p[i] & 0x7f) << sh;
        if (!(p[i++] & 0x80))
          break;
      }
      if ((key >> 3) >= 100 && (key >> 3) < 1000)
        return (uint32_t)(key >> 3);
      if (len > n - (i < n ? i : n))
        return 0;
      i += len;
      break;
    default:
      return 0;
    }
  }
  return 0;
}

int authz_append(const cl_policy *p, cl_log *log, const cl_req_ctx *rc,
                 const Clinlog__V1__AppendBatch *b, cl_err *err) {
  char what[192];
  for (size_t i = 0; i < b->n_events; i++) {
    uint32_t t = event_type_of(b->events[i].data, b->events[i].len);
    if (t && !cl_policy_may_append(p, rc->roles, t)) {
      snprintf(what, sizeof what, "append events[%zu] (%s)", i, cl_event_type_name(t));
      return deny(rc, err, what);
    }
  }
  if (cl_roles_has(rc->roles, "integration") || cl_roles_has(rc->roles, "node"))
    return 0; /* relays batches signed by the systems and devices it carries */
  const ProtobufCBinaryData *kid = b->batch_signature ? &b->batch_signature->key_id
                                   : b->n_signatures && b->signatures[0] ? &b->signatures[0]->key_id
                                                                         : NULL;
  char signer[CL_PRINCIPAL_MAX] = "", roles[CL_ROLES_MAX];
  int revoked;
  if (!kid || kid->len != 32 ||
      cl_log_key_info(log, kid->data, signer, sizeof signer, roles, sizeof roles, &revoked) != 0)
    return 0; /* unsigned or an unknown key: the store refuses it, with its reason */
  if (strcmp(signer, rc->principal) != 0) {
    snprintf(what, sizeof what, "append a batch signed by %s's key", signer);
    return deny(rc, err, what);
  }
  return 0;
}

typedef struct subset_ctx {
  const cl_policy *p;
  const char *roles;
} subset_ctx;

static int mask_of(void *ctx, int type, uint64_t *mask) {
  const subset_ctx *x = ctx;
  return cl_policy_fields(x->p, x->roles, type, mask);
}

int authz_subset(const cl_policy *p, const cl_req_ctx *rc, char **body, size_t *len, int ndjson) {
  if (!*body || rc->break_glass || !cl_policy_restricts(p, rc->roles))
    return 0;
  subset_ctx x = {p, rc->roles};
  char *out;
  size_t n;
  int changed;
  if (cl_fhir_subset(*body, *len, ndjson, mask_of, &x, &out, &n, &changed) != 0)
    return CL_ENOMEM;
  sodium_memzero(*body, *len);
  free(*body);
  *body = out;
  *len = n;
  return 0;
}

/* The request layer; see service.h.
 *
 * `mu` guards the projection list while it is built (before serving) and
 * the draining flag; afterwards the list only grows at start, so readers
 * take `mu` briefly to copy what they need. */
#include "adapters/service/service.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapters/service/audit.h"
#include "adapters/service/authz.h"
#include "adapters/service/cds_emit.h"
#include "clinlog/v1/auth.pb-c.h"
#include "query/cds/gate.h"
#include "query/cds/proj.h"
#include "store/feed.h"
#include "store/keyring.h"
#include "store/keys.h"

#define MAX_PROJECTIONS 16

struct cl_svc {
  cl_svc_options o;
  pthread_mutex_t mu;
  int draining;
  cl_runner *runners[MAX_PROJECTIONS];
  size_t nrunners;
  cl_fhir_exports *exports;
  cl_authn *authn;
  int require_auth;
  cl_policy *policy;
  cl_kb *kb;             /* decision support (CDS Hooks, the cds projection), owned */
  cl_projection cds_def; /* the cds projection over kb (cl_svc_enable_cds) */
  cds_emitter *cds_emit; /* its emitter, NULL if none */
  int bcma_strict;       /* refuse administrations failing the five rights */
  int64_t device_skew_ms;   /* device readings' allowed clock skew; 0: the default */
  cl_audit *audit;
  audit_node node;
  /* cl_svc_set_blocking (set while other threads may already append) */
  _Atomic(cl_svc_blocking_fn) blocking;
  _Atomic(void *) blocking_ctx;
};

void cl_svc_set_blocking(cl_svc *s, cl_svc_blocking_fn fn, void *ctx) {
  atomic_store(&s->blocking_ctx, ctx);
  atomic_store(&s->blocking, fn);
}

/* Brackets a wait of the calling thread for another one (a commit, a
 * projection, the leader): on 1 before it, 0 after. */
static void svc_block(cl_svc *s, int on) {
  cl_svc_blocking_fn fn = atomic_load(&s->blocking);
  if (fn)
    fn(atomic_load(&s->blocking_ctx), on);
}

static const struct {
  const char *name;
  int kind;
} METHODS[M_COUNT] = {
#define CL_METHOD_ROW(id, name, kind) [id] = {name, kind},
    CL_METHODS(CL_METHOD_ROW)
#undef CL_METHOD_ROW
};

const char *cl_method_name(int m) { return m >= 0 && m < M_COUNT ? METHODS[m].name : "?"; }
int cl_method_kind(int m) { return m >= 0 && m < M_COUNT ? METHODS[m].kind : -1; }

const char *cl_method_kind_name(int kind) {
  switch (kind) {
  case CL_MK_WRITE:
    return "write";
  case CL_MK_READ:
    return "read";
  case CL_MK_PROOF:
    return "proof";
  case CL_MK_HEALTH:
    return "health";
  case CL_MK_ADMIN_READ:
    return "admin-read";
  case CL_MK_ADMIN:
    return "admin";
  case CL_MK_PEER:
    return "peer";
  case CL_MK_AUTH:
    return "auth";
  case CL_MK_AUDIT:
    return "audit";
  case CL_MK_CDS:
    return "cds";
  case CL_MK_EMERGENCY:
    return "emergency";
  default:
    return "?";
  }
}

int cl_method_by_name(const char *name) {
  for (int m = 0; m < M_COUNT; m++)
    if (!strcmp(METHODS[m].name, name))
      return m;
  return -1;
}

const char *cl_auth_name(int auth) {
  switch (auth) {
  case CL_AUTH_NONE:
    return "none";
  case CL_AUTH_TLS:
    return "tls";
  case CL_AUTH_MTLS:
    return "mtls";
  case CL_AUTH_TOKEN:
    return "token";
  case CL_AUTH_NODE:
    return "node";
  case CL_AUTH_KEY:
    return "key";
  default:
    return "?";
  }
}

void cl_req_ctx_init(cl_req_ctx *rc, int method, const char *transport) {
  memset(rc, 0, sizeof *rc);
  rc->method = method;
  rc->transport = transport;
  uint8_t id[16];
  cl_uuid_v4(id);
  cl_uuid_text(id, rc->request_id);
}

/* ---------------------------------------------------------------- life */

int cl_svc_new(const cl_svc_options *o, cl_svc **out, cl_err *err) {
  if (!o || !o->log)
    return cl_err_set(err, CL_EINVAL, "service: a log is required");
  cl_svc *s = calloc(1, sizeof *s);
  if (!s)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  s->o = *o;
  pthread_mutex_init(&s->mu, NULL);
  *out = s;
  return 0;
}

void cl_svc_free(cl_svc *s) {
  if (!s)
    return;
  cl_svc_stop_cds(s); /* it appends through the service and reads a runner */
  cl_fhir_exports_close(s->exports);
  cl_audit_close(s->audit);
  cl_authn_free(s->authn);
  cl_policy_free(s->policy);
  for (size_t i = s->nrunners; i-- > 0;)
    cl_runner_stop(s->runners[i]);
  cl_kb_free(s->kb); /* after the runners: the cds projection folds over it */
  pthread_mutex_destroy(&s->mu);
  free(s);
}

cl_log *cl_svc_log(cl_svc *s) { return s->o.log; }
cl_repl *cl_svc_repl(cl_svc *s) { return s->o.repl; }

void cl_svc_set_draining(cl_svc *s, int draining) {
  pthread_mutex_lock(&s->mu);
  s->draining = draining;
  pthread_mutex_unlock(&s->mu);
}

int cl_svc_draining(cl_svc *s) {
  pthread_mutex_lock(&s->mu);
  int d = s->draining;
  pthread_mutex_unlock(&s->mu);
  return d;
}

/* ---------------------------------------------------------------- calls */

/* Who the caller is: a session token, else a bound client certificate. */
static int authenticate(cl_svc *s, cl_req_ctx *rc, cl_err *err) {
  cl_identity id;
  int code;
  if (rc->bearer[0]) {
    if ((code = cl_authn_token(s->authn, rc->bearer, &id, err)) != 0)
      return code; /* a token that does not check out is refused, required or not */
    rc->auth = CL_AUTH_TOKEN;
    memcpy(rc->token_id, id.token_id, sizeof rc->token_id);
    rc->token_expires = id.expires_at;
    snprintf(rc->scope, sizeof rc->scope, "%s", id.scope);
  } else if (rc->auth == CL_AUTH_MTLS && rc->cert_fingerprint[0] &&
             cl_authn_cert(s->authn, rc->cert_fingerprint, &id, NULL) == 0) {
    /* a certificate bound to no principal proves nothing: checked below */
  } else {
    id.principal[0] = '\0';
  }
  int kind = cl_method_kind(rc->method);
  if (id.principal[0]) {
    snprintf(rc->principal, sizeof rc->principal, "%s", id.principal);
    snprintf(rc->roles, sizeof rc->roles, "%s", id.roles);
    snprintf(rc->patient_id, sizeof rc->patient_id, "%s", id.patient_id);
    if (rc->auth == CL_AUTH_MTLS && cl_roles_has(rc->roles, "node"))
      rc->auth = CL_AUTH_NODE; /* another node of the cluster, by its bound certificate */
    /* catch-up hands out every record of the log: only a node, by the
     * certificate it also speaks Raft with, never a person's token */
    if (s->require_auth && kind == CL_MK_PEER && rc->auth != CL_AUTH_NODE)
      return cl_err_set(err, CL_EDENIED,
                        "%s: %s (roles %s) may not: it needs a node certificate (a client "
                        "certificate bound to a principal with role node)",
                        cl_method_name(rc->method), rc->principal,
                        rc->roles[0] ? rc->roles : "none");
    return 0;
  }
  if (s->require_auth && kind != CL_MK_HEALTH && rc->method != M_AUTH_LOGIN &&
      rc->method != M_AUTH_TOKEN)
    return cl_err_set(err, CL_EUNAUTH,
                      "%s: authentication required (Auth.Login, then send "
                      "\"authorization: Bearer <token>\"; or a registered client certificate)",
                      cl_method_name(rc->method));
  return 0;
}

/* A read the policy refused, let through by the session's break-glass
 * grant: every patient the request names is the one granted (a request
 * that names none is not let through), and the grant has not expired.
 * Marks the call break-glass, purpose of use ETREAT, for its record. */
static int break_glass(cl_svc *s, cl_req_ctx *rc) {
  if (cl_method_kind(rc->method) != CL_MK_READ || !rc->token_id[0] || !s->authn ||
      !rc->audit_patients[0])
    return 0;
  char patient[128];
  cl_err gerr;
  if (cl_authn_glass(s->authn, rc->token_id, patient, sizeof patient, &gerr) != 1)
    return 0;
  size_t pl = strlen(patient);
  for (const char *p = rc->audit_patients; *p;) {
    size_t n = strcspn(p, ",");
    if (n != pl || strncmp(p, patient, pl) != 0)
      return 0;
    p += n + (p[n] == ',');
  }
  rc->break_glass = 1;
  snprintf(rc->purpose_of_use, sizeof rc->purpose_of_use, "ETREAT");
  return 1;
}

int cl_svc_admit(cl_svc *s, cl_req_ctx *rc, const ProtobufCMessage *req, cl_err *err) {
  const cl_svc_hooks *h = &s->o.hooks;
  if (rc->method < 0 || rc->method >= M_COUNT)
    return cl_err_set(err, CL_EINVAL, "unknown method");
  int code;
  /* an adapter acting as its own key's principal (CL_AUTH_KEY) was
   * identified by the codec from the keyring; anyone else proves it here */
  int by_key = rc->auth == CL_AUTH_KEY && rc->principal[0];
  if (!by_key)
    rc->principal[0] = rc->roles[0] = '\0';
  rc->token_id[0] = rc->patient_id[0] = rc->scope[0] = '\0';
  audit_subject(rc, req);
  if (s->authn && !by_key && (code = authenticate(s, rc, err)) != 0)
    return code;
  if (s->policy && rc->principal[0] && (code = authz_call(s->policy, rc, req, err)) != 0 &&
      (code != CL_EDENIED || !break_glass(s, rc)))
    return code;
  if (rc->scope[0] && (code = authz_scopes(rc, req, err)) != 0)
    return code; /* a token's SMART scopes narrow the policy; break-glass does not lift them */
  /* the hooks never see a login's secrets nor a client's assertion: only who tries */
  Clinlog__V1__LoginRequest redacted = CLINLOG__V1__LOGIN_REQUEST__INIT;
  Clinlog__V1__TokenRequest tredacted = CLINLOG__V1__TOKEN_REQUEST__INIT;
  if (rc->method == M_AUTH_LOGIN && req) {
    redacted.principal_id = ((const Clinlog__V1__LoginRequest *)req)->principal_id;
    redacted.scope = ((const Clinlog__V1__LoginRequest *)req)->scope;
    req = &redacted.base;
  } else if (rc->method == M_AUTH_TOKEN && req) {
    tredacted.grant_type = ((const Clinlog__V1__TokenRequest *)req)->grant_type;
    tredacted.scope = ((const Clinlog__V1__TokenRequest *)req)->scope;
    req = &tredacted.base;
  }
  if (h->authorize && (code = h->authorize(h->ctx, rc, req, err)) != 0) {
    if (code > 0 || !err->msg[0])
      cl_err_set(err, code < 0 ? code : CL_EDENIED, "%s: not allowed", cl_method_name(rc->method));
    return code < 0 ? code : CL_EDENIED;
  }
  if (h->audit && (code = h->audit(h->ctx, rc, req, err)) != 0) {
    /* no record, no access */
    char why[CL_ERR_MSG_SIZE];
    snprintf(why, sizeof why, "%s", err->msg);
    return cl_err_set(err, CL_EUNAVAILABLE, "the access could not be recorded: %s", why);
  }
  return 0;
}

void cl_svc_finished(cl_svc *s, const cl_req_ctx *rc, int code, const char *detail) {
  const cl_svc_hooks *h = &s->o.hooks;
  if (h->finished)
    h->finished(h->ctx, rc, code, detail ? detail : "");
}

/* --------------------------------------------------------------- writer */

int cl_svc_leader(cl_svc *s, cl_svc_route *route) {
  if (route)
    memset(route, 0, sizeof *route);
  if (!s->o.repl)
    return 1;
  uint64_t id = 0;
  char api[CL_REPL_ADDR_MAX] = "";
  int leads = cl_repl_leader(s->o.repl, &id, api, sizeof api);
  if (route && !leads) {
    route->leader_id = id;
    snprintf(route->leader_api, sizeof route->leader_api, "%s", api);
  }
  return leads;
}

/* Strict barcode administration (query/cds/gate.h): the five rights of
 * each scanned MedicationAdministered in b, against the cds projection
 * caught up to the log's head (bounded by the call's deadline, else 5 s). */
static int bcma_gate(cl_svc *s, const cl_req_ctx *rc, const Clinlog__V1__AppendBatch *b,
                     cl_err *err) {
  if (!cl_cds_gate_wants(b))
    return 0;
  cl_runner *r = cl_svc_runner(s, CL_CDS_PROJ_NAME);
  if (!r || !s->kb)
    return cl_err_set(err, CL_EUNAVAILABLE,
                      "strict barcode administration needs the cds projection, which does not "
                      "run on this node");
  int64_t deadline = rc->deadline_ms ? rc->deadline_ms : cl_feed_now_ms() + 5000;
  svc_block(s, 1);
  int code = cl_runner_wait(r, cl_feed_size(cl_log_feed(s->o.log)), deadline, err);
  svc_block(s, 0);
  if (code)
    return cl_err_prefix(err, "strict barcode administration: the cds projection");
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return cl_cds_gate_check(cl_runner_proj(r), s->o.log, s->kb, b,
                           (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec, err);
}

void cl_svc_set_bcma_strict(cl_svc *s, int on) { s->bcma_strict = on; }

void cl_svc_set_device_skew_ms(cl_svc *s, int64_t ms) { s->device_skew_ms = ms > 0 ? ms : 0; }
int64_t cl_svc_device_skew_ms(const cl_svc *s) { return s->device_skew_ms; }

int cl_svc_may_append(cl_svc *s, const cl_req_ctx *rc, uint32_t type) {
  return !s->policy || !rc->principal[0] || cl_policy_may_append(s->policy, rc->roles, type);
}

/* The call whose audit record rides with a batch: rc, naming the batch's
 * events by position (cl_svc_append_recorded), or `named`: rc's own
 * audit_what (cl_svc_append_for). */
typedef struct linked_rec {
  cl_req_ctx *rc;
  int named;
} linked_rec;

/* What every append passes before it is written: not draining (but for
 * the node's own records, `internal`), the caller's right to append b's
 * types, strict barcode administration. */
static int append_admit(cl_svc *s, cl_req_ctx *rc, const Clinlog__V1__AppendBatch *b, int internal,
                        cl_err *err) {
  if (!internal && cl_svc_draining(s))
    return cl_err_set(err, CL_EUNAVAILABLE, "server is shutting down");
  int code;
  if (s->policy && rc->principal[0] && (code = authz_append(s->policy, s->o.log, rc, b, err)) != 0)
    return code;
  if (s->bcma_strict && !internal && cl_svc_leader(s, NULL) &&
      (code = bcma_gate(s, rc, b, err)) != 0)
    return code; /* on a follower the leader checks the forwarded call */
  return 0;
}

/* 1 if rc's call is still to be recorded when it ends (the audit trail
 * on, not yet recorded, not a health check). */
static int record_due(const cl_svc *s, const cl_req_ctx *rc) {
  return s->audit && !rc->recorded && cl_method_kind(rc->method) != CL_MK_HEALTH;
}

/* 1 if rec's record goes with the batch (append_recorded): a call with
 * nothing recorded or appended yet, the audit trail on. */
static int rides_with(const cl_svc *s, const linked_rec *rec) {
  return rec && record_due(s, rec->rc) && !rec->rc->audit_count;
}

/* rec's record nb, made for a batch that ended with code (its own with
 * then_rc): wiped and freed; rec's call recorded if both committed. */
static void record_ridden(const linked_rec *rec, cl_node_batch *nb, int code, int then_rc) {
  sodium_memzero(nb->buf, nb->ev.len); /* the record names patients */
  cl_node_batch_free(nb);
  if (code == 0 && then_rc == 0)
    rec->rc->recorded = 1;
}

/* Through Raft: b (appended under rc, whose deadline holds) and rec's
 * audit record in one entry and one store write; rec->rc->recorded set if
 * the record committed. Without the record (it could not be made, or b
 * committed nothing new: a duplicate), cl_svc_record writes it
 * afterwards, as for any call. */
static int append_recorded(cl_svc *s, const cl_req_ctx *rc, const linked_rec *rec,
                           const Clinlog__V1__AppendBatch *b, cl_append_result *r, cl_err *err) {
  cl_node_batch nb;
  cl_err aerr;
  if (audit_linked(s->o.log, &s->node, rec->rc, rec->named, b->n_events, &nb, &aerr) != 0)
    return cl_repl_append(s->o.repl, b, rc->deadline_ms, r, err);
  int then_rc;
  int code = cl_repl_append_linked(s->o.repl, b, &nb.b, rc->deadline_ms, r, &then_rc, NULL, err);
  record_ridden(rec, &nb, code, then_rc);
  return code;
}

/* A write that Raft refused with code: CL_ENOTLEADER goes to the leader
 * (one hop only: a forwarded write that meets a node that does not lead,
 * leadership just moved, goes back to the client, never round again). */
static int append_routed(cl_svc *s, cl_req_ctx *rc, const Clinlog__V1__AppendBatch *b,
                         int allow_forward, int code, cl_append_result *r, cl_svc_route *route,
                         cl_err *err) {
  if (code != CL_ENOTLEADER)
    return code;
  cl_svc_leader(s, route);
  if (!allow_forward || s->o.no_forward || rc->forwarded || !s->o.forward ||
      !route->leader_api[0]) {
    if (route->leader_api[0])
      return cl_err_set(err, CL_ENOTLEADER, "not the leader; the leader is node %llu at %s",
                        (unsigned long long)route->leader_id, route->leader_api);
    return cl_err_set(err, CL_ENOTLEADER,
                      "not the leader; no leader is known (election in progress)");
  }
  svc_block(s, 1);
  code = s->o.forward(s->o.forward_ctx, route->leader_api, rc, b, r, err);
  svc_block(s, 0);
  if (code == 0)
    snprintf(route->forwarded_to, sizeof route->forwarded_to, "%s", route->leader_api);
  return code;
}

/* cl_svc_append; `internal`: the node's own records (the audit trail),
 * taken also while draining, for the calls still in flight; `rec`: a
 * call's audit record with b where it can (append_recorded), or NULL. */
static int svc_append(cl_svc *s, cl_req_ctx *rc, const Clinlog__V1__AppendBatch *b,
                      int allow_forward, int internal, const linked_rec *rec,
                      cl_append_result *r, cl_svc_route *route, cl_err *err) {
  cl_svc_route local;
  if (!route)
    route = &local;
  memset(route, 0, sizeof *route);
  memset(r, 0, sizeof *r);
  int code = append_admit(s, rc, b, internal, err);
  if (code)
    return code;
  svc_block(s, 1);
  if (!s->o.repl)
    code = cl_log_append(s->o.log, b, r, err);
  else
    code = rides_with(s, rec) ? append_recorded(s, rc, rec, b, r, err)
                              : cl_repl_append(s->o.repl, b, rc->deadline_ms, r, err);
  svc_block(s, 0);
  if (!s->o.repl)
    return code;
  return append_routed(s, rc, b, allow_forward, code, r, route, err);
}

/* What an append of rc's that ended with code names in rc's audit record. */
static void append_named(cl_req_ctx *rc, int code, const cl_append_result *r) {
  if (code == 0 && r->n > 0) {
    unsigned long long first = r->seq[0];
    if (rc->audit_count > 0 && !strncmp(rc->audit_what, "seq:", 4))
      first = strtoull(rc->audit_what + 4, NULL, 10); /* an earlier batch of the call */
    snprintf(rc->audit_what, sizeof rc->audit_what, "seq:%llu-%llu", first,
             (unsigned long long)r->seq[r->n - 1]);
    rc->audit_count += r->n;
  }
}

/* cl_svc_append, cl_svc_append_recorded and cl_svc_append_for. */
static int append_call(cl_svc *s, cl_req_ctx *rc, const Clinlog__V1__AppendBatch *b,
                       int allow_forward, const linked_rec *rec, cl_append_result *r,
                       cl_svc_route *route, cl_err *err) {
  int code = svc_append(s, rc, b, allow_forward, 0, rec, r, route, err);
  append_named(rc, code, r);
  return code;
}

/* An append in Raft's hands (cl_svc_append_start). */
struct cl_svc_job {
  cl_svc *s;
  cl_req_ctx *rc;
  const Clinlog__V1__AppendBatch *b;
  int allow_forward;
  int rides; /* nb, rc's record, goes with b */
  cl_node_batch nb;
  cl_repl_pending *p;
  void (*done)(void *ctx, int here);
  void *ctx;
};

/* The Raft loop: j's append ended. The caller may finish on the loop
 * (`here`) only if nothing it does next waits on Raft: the call's audit
 * record went with b (committed, as `here` says), or none is due. */
static void job_done(void *ctx, int here) {
  cl_svc_job *j = ctx;
  void (*done)(void *, int) = j->done;
  void *dctx = j->ctx; /* j may be freed once done has run */
  done(dctx, here && (j->rides || !record_due(j->s, j->rc)));
}

/* j's append ended with code (its record's: then_rc): the rest of
 * append_call, and j is freed. */
static int job_end(cl_svc_job *j, int code, int then_rc, cl_append_result *r, cl_svc_route *route,
                   cl_err *err) {
  linked_rec rec = {.rc = j->rc, .named = 0};
  cl_svc_route local;
  if (!route)
    route = &local;
  if (j->rides)
    record_ridden(&rec, &j->nb, code, then_rc);
  code = append_routed(j->s, j->rc, j->b, j->allow_forward, code, r, route, err);
  append_named(j->rc, code, r);
  free(j);
  return code;
}

int cl_svc_append_start(cl_svc *s, cl_req_ctx *rc, const Clinlog__V1__AppendBatch *b,
                        int allow_forward, void (*done)(void *ctx, int here), void *ctx,
                        cl_svc_job **job, cl_append_result *r, cl_svc_route *route, cl_err *err) {
  linked_rec rec = {.rc = rc, .named = 0};
  *job = NULL;
  cl_svc_job *j = s->o.repl ? calloc(1, sizeof *j) : NULL;
  if (!j) /* no Raft (or no memory): the store's append does not wait on another thread */
    return append_call(s, rc, b, allow_forward, &rec, r, route, err);
  if (route)
    memset(route, 0, sizeof *route);
  memset(r, 0, sizeof *r);
  int code = append_admit(s, rc, b, 0, err);
  if (code) {
    free(j);
    return code;
  }
  j->s = s;
  j->rc = rc;
  j->b = b;
  j->allow_forward = allow_forward;
  j->done = done;
  j->ctx = ctx;
  cl_err aerr;
  j->rides = rides_with(s, &rec) &&
             audit_linked(s->o.log, &s->node, rc, 0, b->n_events, &j->nb, &aerr) == 0;
  *job = j; /* before done can run */
  code = cl_repl_append_start(s->o.repl, b, j->rides ? &j->nb.b : NULL, job_done, j, &j->p, err);
  if (code == CL_REPL_PENDING)
    return CL_SVC_PENDING; /* j is the continuation's now */
  *job = NULL;
  return job_end(j, code, CL_EPRECOND, r, route, err);
}

int cl_svc_append_end(cl_svc_job *j, cl_append_result *r, cl_svc_route *route, cl_err *err) {
  if (route)
    memset(route, 0, sizeof *route);
  memset(r, 0, sizeof *r);
  int then_rc;
  int code = cl_repl_append_end(j->p, r, &then_rc, NULL, err);
  if (code == CL_REPL_PENDING)
    return CL_SVC_PENDING;
  return job_end(j, code, then_rc, r, route, err);
}

int cl_svc_append(cl_svc *s, cl_req_ctx *rc, const Clinlog__V1__AppendBatch *b, int allow_forward,
                  cl_append_result *r, cl_svc_route *route, cl_err *err) {
  return append_call(s, rc, b, allow_forward, NULL, r, route, err);
}

int cl_svc_append_recorded(cl_svc *s, cl_req_ctx *rc, const Clinlog__V1__AppendBatch *b,
                           int allow_forward, cl_append_result *r, cl_svc_route *route,
                           cl_err *err) {
  linked_rec rec = {.rc = rc, .named = 0};
  return append_call(s, rc, b, allow_forward, &rec, r, route, err);
}

int cl_svc_append_for(cl_svc *s, cl_req_ctx *rc, cl_req_ctx *call,
                      const Clinlog__V1__AppendBatch *b, int allow_forward, cl_append_result *r,
                      cl_svc_route *route, cl_err *err) {
  linked_rec rec = {.rc = call, .named = 1};
  return append_call(s, rc, b, allow_forward, call != rc ? &rec : NULL, r, route, err);
}

/* ----------------------------------------------------------- consistency */

int cl_svc_barrier(cl_svc *s, const cl_req_ctx *rc, cl_svc_route *route, cl_err *err) {
  if (route)
    memset(route, 0, sizeof *route);
  if (!s->o.repl)
    return 0; /* no cluster: every read is linearizable */
  int64_t cap = cl_feed_now_ms() + 10000;
  int64_t deadline = rc->deadline_ms && rc->deadline_ms < cap ? rc->deadline_ms : cap;
  svc_block(s, 1);
  int code = cl_repl_barrier(s->o.repl, deadline, err);
  svc_block(s, 0);
  if (code == CL_ENOTLEADER)
    cl_svc_leader(s, route);
  return code;
}

int cl_svc_reached(cl_svc *s, const char *projection, uint64_t seq, cl_err *err) {
  if (!projection)
    return cl_feed_size(cl_log_feed(s->o.log)) >= seq;
  cl_runner *r = cl_svc_runner(s, projection);
  if (!r)
    return cl_err_set(err, CL_ENOTFOUND, "no projection named %s", projection);
  if (cl_proj_position(cl_runner_proj(r)) >= seq)
    return 1;
  cl_runner_want(r, seq); /* the caller parks until it is */
  return 0;
}

static int svc_wait(cl_svc *s, const char *projection, uint64_t seq, int64_t deadline_ms,
                    cl_err *err) {
  if (!projection) {
    int code = cl_feed_wait(cl_log_feed(s->o.log), seq, deadline_ms, NULL, err);
    if (code == CL_ETIMEDOUT)
      cl_err_set(err, CL_ETIMEDOUT, "this node has applied %llu of the %llu events asked for",
                 (unsigned long long)cl_feed_size(cl_log_feed(s->o.log)), (unsigned long long)seq);
    return code;
  }
  cl_runner *r = cl_svc_runner(s, projection);
  if (!r)
    return cl_err_set(err, CL_ENOTFOUND, "no projection named %s", projection);
  return cl_runner_wait(r, seq, deadline_ms, err);
}

int cl_svc_wait(cl_svc *s, const char *projection, uint64_t seq, int64_t deadline_ms, cl_err *err) {
  svc_block(s, 1);
  int code = svc_wait(s, projection, seq, deadline_ms, err);
  svc_block(s, 0);
  return code;
}

size_t cl_svc_feeds(cl_svc *s, cl_feed **out, size_t cap) {
  size_t n = 0;
  if (n < cap)
    out[n++] = cl_log_feed(s->o.log);
  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; i < s->nrunners && n < cap; i++)
    out[n++] = cl_runner_feed(s->runners[i]);
  pthread_mutex_unlock(&s->mu);
  return n;
}

/* ----------------------------------------------------------- projections */

int cl_svc_add_projection(cl_svc *s, const cl_projection *def, const cl_runner_options *o,
                          cl_err *err) {
  if (cl_svc_runner(s, def->name))
    return cl_err_set(err, CL_EEXIST, "projection %s runs already", def->name);
  pthread_mutex_lock(&s->mu);
  int full = s->nrunners == MAX_PROJECTIONS;
  pthread_mutex_unlock(&s->mu);
  if (full)
    return cl_err_set(err, CL_EINVAL, "at most %d projections", MAX_PROJECTIONS);
  cl_runner *r;
  int code = cl_runner_start(s->o.log, def, o, &r, err);
  if (code)
    return code;
  pthread_mutex_lock(&s->mu);
  s->runners[s->nrunners++] = r;
  pthread_mutex_unlock(&s->mu);
  return 0;
}

cl_runner *cl_svc_runner(cl_svc *s, const char *name) {
  cl_runner *found = NULL;
  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; i < s->nrunners && !found; i++) {
    cl_runner_status st;
    cl_runner_get_status(s->runners[i], &st);
    if (!strcmp(st.name, name))
      found = s->runners[i];
  }
  pthread_mutex_unlock(&s->mu);
  return found;
}

size_t cl_svc_runners(cl_svc *s, cl_runner **out, size_t cap) {
  pthread_mutex_lock(&s->mu);
  size_t n = s->nrunners < cap ? s->nrunners : cap;
  memcpy(out, s->runners, n * sizeof *out);
  pthread_mutex_unlock(&s->mu);
  return n;
}

int cl_svc_open_exports(cl_svc *s, const char *dir, const cl_fhir_exports_options *o, cl_err *err) {
  cl_runner *fhir = cl_svc_runner(s, "fhir");
  if (fhir == NULL)
    return cl_err_set(err, CL_ENOTFOUND, "bulk export needs the fhir projection");
  return cl_fhir_exports_open(dir, fhir, s->o.log, o, &s->exports, err);
}

cl_fhir_exports *cl_svc_exports(cl_svc *s) { return s->exports; }

/* -------------------------------------------------------- authentication */

/* The authenticator's writer: the service's, as a call of its own. */
static int auth_append(void *ctx, const Clinlog__V1__AppendBatch *b, uint64_t *seq, cl_err *err) {
  cl_svc *s = ctx;
  cl_req_ctx rc;
  cl_req_ctx_init(&rc, M_AUTH_LOGIN, "internal");
  rc.deadline_ms = cl_feed_now_ms() + 10000;
  cl_append_result r;
  int code = cl_svc_append(s, &rc, b, 1, &r, NULL, err);
  if (code == 0)
    *seq = r.n ? r.seq[r.n - 1] : 0;
  if (code == 0 || code == CL_ECONFLICT)
    cl_append_result_free(&r);
  return code;
}

static int auth_wait(void *ctx, uint64_t seq, cl_err *err) {
  return cl_svc_wait(ctx, "auth", seq, cl_feed_now_ms() + 10000, err);
}

int cl_svc_enable_auth(cl_svc *s, const cl_authn_options *o, int require, cl_err *err) {
  cl_runner *r = cl_svc_runner(s, "auth");
  if (!r)
    return cl_err_set(err, CL_ENOTFOUND, "authentication needs the auth projection");
  cl_authn_options ao = *o;
  ao.log = s->o.log;
  ao.proj = cl_runner_proj(r);
  ao.append = auth_append;
  ao.wait = auth_wait;
  ao.ctx = s;
  int code = cl_authn_new(&ao, &s->authn, err);
  if (code == 0)
    s->require_auth = require;
  return code;
}

cl_authn *cl_svc_authn(cl_svc *s) { return s->authn; }

int cl_svc_subset(cl_svc *s, const cl_req_ctx *rc, char **body, size_t *len, int ndjson) {
  return s->policy && rc->principal[0] ? authz_subset(s->policy, rc, body, len, ndjson) : 0;
}

void cl_svc_set_policy(cl_svc *s, cl_policy *p) {
  cl_policy_free(s->policy);
  s->policy = p;
}
int cl_svc_auth_required(cl_svc *s) { return s->require_auth; }

void cl_svc_set_kb(cl_svc *s, cl_kb *kb) {
  cl_kb_free(s->kb);
  s->kb = kb;
}
const cl_kb *cl_svc_kb(cl_svc *s) { return s->kb; }

static int cds_leader(void *ctx) { return cl_svc_leader(ctx, NULL); }

/* The emitter's writer: the service's, as the node's own write, never
 * forwarded (only the leader emits; a node that lost the lead stops). */
static int cds_append(void *ctx, const Clinlog__V1__AppendBatch *b, uint64_t *seq, cl_err *err) {
  cl_svc *s = ctx;
  cl_req_ctx rc;
  cl_req_ctx_init(&rc, M_APPEND, "internal");
  rc.deadline_ms = cl_feed_now_ms() + 5000;
  cl_append_result r;
  int code = svc_append(s, &rc, b, 0, 0, NULL, &r, NULL, err);
  if (code == 0)
    *seq = r.n ? r.seq[0] : 0;
  if (code == 0 || code == CL_ECONFLICT)
    cl_append_result_free(&r);
  return code;
}

void cl_svc_stop_cds(cl_svc *s) {
  cds_emit_stop(s->cds_emit);
  s->cds_emit = NULL;
}

int cl_svc_enable_cds(cl_svc *s, const cl_runner_options *o, int emit, cl_err *err) {
  if (!s->kb)
    return cl_err_set(err, CL_EINVAL, "the cds projection needs a knowledge base");
  cl_cds_projection_init(&s->cds_def, s->kb);
  /* alerts are due within milliseconds of the order's commit: by default
   * the checker folds every commit at once (no linger) at the write path's
   * priority (not niced), where the other views trade lag for less work */
  cl_runner_options def;
  if (o == NULL) {
    cl_runner_options_init(&def);
    def.linger_ms = 0;
    def.nice = 0;
    o = &def;
  }
  int code = cl_svc_add_projection(s, &s->cds_def, o, err);
  if (code || !emit)
    return code;
  cds_emit_hooks h = {.leader = cds_leader, .append = cds_append, .ctx = s};
  return cds_emit_start(s->o.log, cl_svc_runner(s, CL_CDS_PROJ_NAME), &h, &s->cds_emit, err);
}

/* ---------------------------------------------------------- audit trail */

/* The recorder's writer: the service's, as a call of its own (never
 * recorded itself: it is the record). */
static int audit_append(void *ctx, const Clinlog__V1__AppendBatch *b, cl_err *err) {
  cl_svc *s = ctx;
  cl_req_ctx rc;
  cl_req_ctx_init(&rc, M_APPEND, "internal");
  /* a commit takes milliseconds; one stuck behind a stalled leader fails
   * its calls (they may retry) rather than hold every later call of this
   * node until a long deadline, after a new leader is already there */
  rc.deadline_ms = cl_feed_now_ms() + 3000;
  cl_append_result r;
  int code = svc_append(s, &rc, b, 1, 1, NULL, &r, NULL, err);
  if (code == 0 || code == CL_ECONFLICT)
    cl_append_result_free(&r);
  return code;
}

int cl_svc_enable_audit(cl_svc *s, const cl_svc_audit_options *o, cl_err *err) {
  cl_audit_options ao = {.log = s->o.log, .append = audit_append, .ctx = s};
  if (o) {
    ao.max_batch = o->max_batch;
    s->node.node_id = o->node_id;
    snprintf(s->node.server_address, sizeof s->node.server_address, "%s",
             o->server_address ? o->server_address : "");
  }
  return cl_audit_open(&ao, &s->audit, err);
}

/* What a call that could not be recorded is told (fail closed). */
static int unrecorded(const cl_err *why, cl_err *err) {
  char msg[CL_ERR_MSG_SIZE];
  snprintf(msg, sizeof msg, "%s", why->msg);
  return cl_err_set(err, CL_EUNAVAILABLE, "the access could not be recorded: %s", msg);
}

/* cl_svc_record: 1 when rc's call is to be recorded now (marked so). */
static int to_record(cl_svc *s, cl_req_ctx *rc) {
  if (!record_due(s, rc))
    return 0;
  rc->recorded = 1; /* once, also when it fails: the call then ends without its data */
  return 1;
}

int cl_svc_record(cl_svc *s, cl_req_ctx *rc, int code, const char *detail, cl_err *err) {
  if (!to_record(s, rc))
    return 0;
  cl_err why;
  svc_block(s, 1);
  int rcode = audit_record(s->audit, &s->node, rc, code, detail, &why);
  svc_block(s, 0);
  return rcode == 0 ? 0 : unrecorded(&why, err);
}

typedef struct record_then {
  cl_svc_recorded_fn fn;
  void *ctx;
} record_then;

static void recorded_async(void *ctx, const cl_err *why) {
  record_then rt = *(record_then *)ctx;
  free(ctx);
  cl_err err;
  cl_err_clear(&err);
  if (why->code)
    unrecorded(why, &err);
  rt.fn(rt.ctx, &err);
}

void cl_svc_record_then(cl_svc *s, cl_req_ctx *rc, int code, const char *detail,
                        cl_svc_recorded_fn fn, void *ctx) {
  cl_err err;
  cl_err_clear(&err);
  if (!to_record(s, rc)) {
    fn(ctx, &err);
    return;
  }
  cl_err why;
  record_then *rt = malloc(sizeof *rt);
  if (!rt) {
    cl_err_set(&why, CL_ENOMEM, "out of memory");
  } else {
    *rt = (record_then){fn, ctx};
    if (audit_record_async(s->audit, &s->node, rc, code, detail, recorded_async, rt, &why) == 0)
      return; /* rt is recorded_async's */
    free(rt);
  }
  unrecorded(&why, &err);
  fn(ctx, &err);
}

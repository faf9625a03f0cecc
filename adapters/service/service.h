/* The request layer: what every front door (gRPC today; HTTP, MLLP and CDS
 * Hooks next) is a thin codec over. It owns what every call needs, so no
 * front door re-implements it:
 *
 *  - the request context (cl_req_ctx): who is calling (principal, roles,
 *    how they authenticated), from where, the request id, the purpose of
 *    use; the codec fills it from its transport;
 *  - hooks run before any handler, for every method, the cluster-admin ones
 *    included: authorize (refuse the call) and audit (record the access;
 *    an audit that fails refuses the call: fail closed); and a notice when
 *    the call is over. Without hooks every call is allowed and nothing is
 *    recorded (the security work fills them in);
 *  - one writer over the local store or Raft, forwarding a write to the
 *    leader (one hop) through a transport the codec provides;
 *  - read consistency: linearizable (a Raft barrier) and read-your-writes
 *    (a sequence the log or a projection must have reached), waited for on
 *    the commit feed (store/feed.h) or a projection's progress feed, never by
 *    polling;
 *  - the projections the node runs (query/runner.h), started and stopped
 *    with the service, served to every front door.
 *
 * Thread-safety: every function may be called from any thread. */
#ifndef CL_ADAPTERS_SERVICE_SERVICE_H
#define CL_ADAPTERS_SERVICE_SERVICE_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "adapters/service/methods.h"
#include "clinlog/v1/api.pb-c.h"
#include "query/auth/authn.h"
#include "query/auth/policy.h"
#include "query/cds/kb.h"
#include "query/fhir/export.h"
#include "query/runner.h"
#include "replication/node.h"
#include "store/err.h"
#include "store/feed.h"
#include "store/log.h"

/* How the caller authenticated. */
enum cl_auth {
  CL_AUTH_NONE,  /* nothing checked (plaintext, --dev on loopback) */
  CL_AUTH_TLS,   /* TLS without a client certificate */
  CL_AUTH_MTLS,  /* a verified client certificate (cert_fingerprint) */
  CL_AUTH_TOKEN, /* a session or SMART token */
  CL_AUTH_NODE,  /* another node of this cluster */
  CL_AUTH_KEY    /* an adapter acting as the principal of a signing key this server holds
                    (the MLLP listener's --mllp-key): the codec sets principal and roles
                    from the keyring; never set from anything a caller sends */
};
const char *cl_auth_name(int auth);

#define CL_REQ_ID_MAX 64
#define CL_BEARER_MAX 2048

/* One call, as the codec saw it. Filled by the codec, read by hooks and
 * handlers; plain value, no pointers to free. */
typedef struct cl_req_ctx {
  int method;                     /* enum cl_method */
  const char *transport;          /* "grpc", "http", ... (static string) */
  char request_id[CL_REQ_ID_MAX]; /* the caller's (x-request-id), or a fresh UUID */
  char peer[128];                 /* transport address of the caller */
  int auth;                       /* enum cl_auth */
  char principal[128];            /* authenticated principal, "" if none */
  char roles[256];                /* its roles, comma-separated */
  char patient_id[128];           /* the patient it is (a portal user), "" if none */
  char cert_fingerprint[65];      /* SHA-256 of the client certificate (hex), mTLS only */
  char bearer[CL_BEARER_MAX];     /* the session token the caller sent, "" if none */
  char token_id[33];              /* the session's id once its token is checked */
  char scope[1024];               /* its SMART scopes (query/auth/scope.h), "" if none */
  int64_t token_expires;          /* its expiry, unix seconds */
  char purpose_of_use[64];        /* the caller's stated purpose (HL7 PurposeOfUse), "" if none */
  int break_glass;                /* emergency access asked for */
  int forwarded;                  /* arrived from another node (a forwarded write) */
  int64_t deadline_ms;            /* absolute CLOCK_REALTIME ms, 0 = none */
  /* what the audit trail records of the call: set from the request by
   * cl_svc_admit; a handler may add patients and the count */
  char audit_what[256];     /* the entity: "Observation/123", "stream:patient-7", ... */
  char audit_query[1024];   /* a search's query string */
  char audit_patients[16384]; /* the patients touched, comma-separated (a page of
                                 1000 search results' patients fits) */
  uint64_t audit_count;     /* events or resources returned or appended */
  int recorded;             /* its record is committed (or it needs none) */
} cl_req_ctx;

/* Zeroes rc and sets its method, transport and a fresh request id. */
void cl_req_ctx_init(cl_req_ctx *rc, int method, const char *transport);

/* The hooks. Each gets the request context and, for methods with a request
 * message, the decoded request (NULL for client-streaming methods). */
typedef struct cl_svc_hooks {
  /* May this caller make this call? 0, or an error (CL_EDENIED,
   * CL_EUNAUTH, ...) with err set: the call ends with it, no handler runs. */
  int (*authorize)(void *ctx, const cl_req_ctx *rc, const ProtobufCMessage *req, cl_err *err);
  /* Records the access before any data moves. 0, or an error: the call
   * ends with CL_EUNAVAILABLE (fail closed). */
  int (*audit)(void *ctx, const cl_req_ctx *rc, const ProtobufCMessage *req, cl_err *err);
  /* The call is over (also when authorize or audit refused it): code 0
   * or a CL_E* (or the codec's own failure as CL_EFAILED), detail a view
   * valid during the call. Cannot fail. */
  void (*finished)(void *ctx, const cl_req_ctx *rc, int code, const char *detail);
  void *ctx;
} cl_svc_hooks;

/* Sends a write to the leader at `leader_api` (the codec's transport).
 * Fills r as cl_log_append would (also on CL_ECONFLICT) and returns the
 * leader's answer as a CL_E* code. */
typedef int (*cl_svc_forward_fn)(void *ctx, const char *leader_api, const cl_req_ctx *rc,
                                 const Clinlog__V1__AppendBatch *b, cl_append_result *r,
                                 cl_err *err);

typedef struct cl_svc_options {
  cl_log *log;               /* borrowed; outlives the service */
  cl_repl *repl;             /* borrowed; NULL: writes go to the store directly */
  int no_forward;            /* followers refuse writes (CL_ENOTLEADER) */
  cl_svc_forward_fn forward; /* NULL: no forwarding */
  void *forward_ctx;
  cl_svc_hooks hooks;
} cl_svc_options;

typedef struct cl_svc cl_svc;

/* *out returned-owned (cl_svc_free). Errors: CL_EINVAL, CL_ENOMEM. */
int cl_svc_new(const cl_svc_options *o, cl_svc **out, cl_err *err);
/* Stops the projections and frees the service. */
void cl_svc_free(cl_svc *s);

cl_log *cl_svc_log(cl_svc *s);
cl_repl *cl_svc_repl(cl_svc *s); /* NULL on a node without replication */

/* While draining (at shutdown) writes are refused with CL_EUNAVAILABLE. */
void cl_svc_set_draining(cl_svc *s, int draining);
int cl_svc_draining(cl_svc *s);

/* ---- calls ---- */

/* Admits a call about to start: authenticates the caller when
 * authentication is on (below; fills rc's principal, roles, auth and
 * token), then runs the authorize and audit hooks. 0: go on; else the call
 * must end with the returned error. */
int cl_svc_admit(cl_svc *s, cl_req_ctx *rc, const ProtobufCMessage *req, cl_err *err);
/* Tells the finished hook the call is over. */
void cl_svc_finished(cl_svc *s, const cl_req_ctx *rc, int code, const char *detail);

/* ---- the audit trail ---- */

typedef struct cl_svc_audit_options {
  uint64_t node_id;           /* this node (0: single node) */
  const char *server_address; /* where it serves ("127.0.0.1:7525"); copied */
  size_t max_batch;           /* records per append; 0: the recorder's default */
} cl_svc_audit_options;

/* Turns the audit trail on (query/audit/recorder.h): from then on every
 * call but health checks must be recorded by cl_svc_record before its
 * answer leaves. Its records are written through the service's writer.
 * Errors: as cl_audit_open. */
int cl_svc_enable_audit(cl_svc *s, const cl_svc_audit_options *o, cl_err *err);

/* Records the call in the audit trail (one AccessRecorded: who, what, from
 * where, how it ended: `code` 0 or a CL_E*, `detail` its text) and returns
 * once it is committed. Exactly once per call: the codec calls it before
 * the first byte of its answer (data or error status) leaves; later calls
 * for the same rc return 0 at once, as do calls with the trail off and
 * health checks. 0, or CL_EUNAVAILABLE naming why: the answer must then be
 * that error, never the data (fail closed). */
int cl_svc_record(cl_svc *s, cl_req_ctx *rc, int code, const char *detail, cl_err *err);
/* The outcome of cl_svc_record_then: err->code 0 (recorded, or nothing to
 * record), else CL_EUNAVAILABLE naming why (fail closed, as above). */
typedef void (*cl_svc_recorded_fn)(void *ctx, const cl_err *err);
/* cl_svc_record without holding the thread while the record commits
 * (query/audit/recorder.h, cl_audit_record_async): fn(ctx, ...) runs exactly
 * once with the outcome, on this thread before the return (nothing to
 * record, a failure to queue it, or this thread led the record's batch)
 * or on the thread that commits the record's batch. rc is read before the
 * return only. For the gRPC face, whose workers would otherwise each wait
 * for their call's commit. */
void cl_svc_record_then(cl_svc *s, cl_req_ctx *rc, int code, const char *detail,
                        cl_svc_recorded_fn fn, void *ctx);
/* Adds a patient to what rc's record names (ignored past its room). */
void cl_req_ctx_add_patient(cl_req_ctx *rc, const char *patient_id);
/* Adds the patients whose data a FHIR answer (a resource or a Bundle, as
 * the engine writes it: compact JSON) holds: every Patient resource and
 * every reference to a Patient. A handler calls it before the answer is
 * recorded, so a search that named no patient still records whose data it
 * returned. */
void cl_req_ctx_patients_of(cl_req_ctx *rc, const char *json, size_t len);

/* ---- the writer ---- */

typedef struct cl_svc_route {
  uint64_t leader_id;                  /* 0: unknown */
  char leader_api[CL_REPL_ADDR_MAX];   /* "" if unknown */
  char forwarded_to[CL_REPL_ADDR_MAX]; /* the leader that took the write, "" if none */
} cl_svc_route;

/* Appends a signed batch: to the store, or through Raft on a cluster node;
 * on a follower, forwarded to the leader (one hop: never for a call that
 * was itself forwarded, nor with allow_forward 0, nor with no_forward).
 * r and errors as cl_log_append, plus CL_ENOTLEADER (route->leader_api
 * says where to go, when known), CL_EUNAVAILABLE (draining; leadership
 * lost mid-write: retrying with the same event ids is safe), CL_ETIMEDOUT.
 * `route` (optional) says who took the write. What it appended goes into
 * rc's audit_what ("seq:<first>-<last>", over every batch of the call) and
 * audit_count. */
CL_MUST_CHECK int cl_svc_append(cl_svc *s, cl_req_ctx *rc, const Clinlog__V1__AppendBatch *b,
                                int allow_forward, cl_append_result *r, cl_svc_route *route,
                                cl_err *err);

/* cl_svc_append of a call's only batch that also commits the call's audit
 * record (outcome success) with it where it can: on a Raft leader, with
 * the audit trail on and nothing recorded or appended for rc yet, the
 * record goes into the same Raft entry right after b and is applied in the
 * same store write, only if b commits new events (cl_repl_append_linked),
 * naming them as the `preceding` events (AccessRecorded.preceding). Sets
 * rc->recorded then: one commit per call instead of two, and no answer
 * without its record (both or neither are durable). Otherwise (a
 * duplicate, a follower forwarding, no Raft, a refusal) it is
 * cl_svc_append and cl_svc_record writes the record after, as before. */
CL_MUST_CHECK int cl_svc_append_recorded(cl_svc *s, cl_req_ctx *rc,
                                         const Clinlog__V1__AppendBatch *b, int allow_forward,
                                         cl_append_result *r, cl_svc_route *route, cl_err *err);

/* fn(ctx, 1) before the calling thread waits for another one (a commit, a
 * projection catching up, the leader a write is forwarded to, a barrier),
 * fn(ctx, 0) after: a face that runs few threads at a time (the gRPC
 * workers) lets another one run meanwhile. The face sets it before it
 * serves; fn must be cheap and callable from any thread. */
typedef void (*cl_svc_blocking_fn)(void *ctx, int on);
void cl_svc_set_blocking(cl_svc *s, cl_svc_blocking_fn fn, void *ctx);

/* An append in Raft's hands (cl_svc_append_start). */
typedef struct cl_svc_job cl_svc_job;
/* cl_svc_append_start's return while the append is in Raft's hands. */
#define CL_SVC_PENDING 1

/* cl_svc_append_recorded without holding the calling thread while Raft
 * commits b (replication/node.h, cl_repl_append_start): the checks run
 * here, then b goes to the Raft loop and this returns CL_SVC_PENDING with
 * *job (set before done can run). done(ctx, here) then runs exactly once
 * on the Raft loop when the append has ended, and must only hand the call
 * on to a thread that calls cl_svc_append_end (it must not block); or,
 * when `here` is 1 (b committed alone in its Raft entry, with the call's
 * audit record or with none due, so that ending the call waits on
 * nothing), it may call cl_svc_append_end and answer the call itself, on
 * the loop. rc and b must live until then, and the caller must not touch
 * them meanwhile. No deadline: the append ends by itself (node.h). Any
 * other return is the outcome, as cl_svc_append_recorded's (*job NULL,
 * done does not run): refusals, a follower's forwarded write (forwarding
 * waits here), and the store's own append on a node without Raft. For the
 * gRPC face, whose workers would otherwise each wait for their call's
 * commit. */
CL_MUST_CHECK int cl_svc_append_start(cl_svc *s, cl_req_ctx *rc, const Clinlog__V1__AppendBatch *b,
                                      int allow_forward, void (*done)(void *ctx, int here),
                                      void *ctx, cl_svc_job **job, cl_append_result *r,
                                      cl_svc_route *route, cl_err *err);
/* After job's done: the outcome as cl_svc_append_recorded's (r, route,
 * err; job is freed), or CL_SVC_PENDING again when b had to be prepared
 * again (done runs again). */
CL_MUST_CHECK int cl_svc_append_end(cl_svc_job *job, cl_append_result *r, cl_svc_route *route,
                                    cl_err *err);

/* cl_svc_append_recorded of a write the node makes itself for the call
 * `call` (borrowed; the FHIR REST face's: events signed by the node's log
 * key for the caller, whose right to write them was checked at admission):
 * b is appended under the write's own context rc (an internal one: its
 * seqs go into rc, not call), and call's record rides with it under the
 * same conditions (a Raft leader, the trail on, nothing recorded or
 * appended for call yet, b commits new events): the record cl_svc_record
 * would write for call (outcome success) as it stands now, but with
 * preceding = count = b's events, its resource call's audit_what (what
 * the call names: "Observation/7", "Bundle:transaction:3"), not the seqs.
 * Sets call->recorded then; otherwise the caller records call after, as
 * before. So call's record must say all it will (patients, what) before
 * this, and the call's answer must then be a success. call == rc: plain
 * cl_svc_append. */
CL_MUST_CHECK int cl_svc_append_for(cl_svc *s, cl_req_ctx *rc, cl_req_ctx *call,
                                    const Clinlog__V1__AppendBatch *b, int allow_forward,
                                    cl_append_result *r, cl_svc_route *route, cl_err *err);

/* The leader as last seen: 1 if this node leads (always, without
 * replication), else 0 with route->leader_* filled. */
int cl_svc_leader(cl_svc *s, cl_svc_route *route);

/* ---- read consistency ---- */

/* Linearizable reads: on the leader, returns once everything committed
 * before the call is applied here (a Raft barrier; waits up to the call's
 * deadline). CL_ENOTLEADER elsewhere (route filled); without replication
 * every read is linearizable already. */
int cl_svc_barrier(cl_svc *s, const cl_req_ctx *rc, cl_svc_route *route, cl_err *err);

/* Read-your-writes on the log (projection NULL) or on a projection: 1 if
 * it has reached `seq` (folded it, for a projection), else 0. CL_ENOTFOUND
 * for an unknown projection. Never blocks: an event-driven codec parks the
 * call and asks again when `cl_svc_feeds` wakes it. */
int cl_svc_reached(cl_svc *s, const char *projection, uint64_t seq, cl_err *err);
/* The same, blocking until the deadline (a thread-per-request codec).
 * Errors: CL_ETIMEDOUT (err says how far it got), CL_ENOTFOUND,
 * CL_EUNAVAILABLE. */
int cl_svc_wait(cl_svc *s, const char *projection, uint64_t seq, int64_t deadline_ms, cl_err *err);
/* The feeds whose growth may make cl_svc_reached true: the log's and each
 * projection's progress feed. Up to cap into out; returns the count. */
size_t cl_svc_feeds(cl_svc *s, cl_feed **out, size_t cap);

/* ---- projections ---- */

/* Starts a projection's runner (def borrowed: static). Add them before
 * serving. Errors: as cl_runner_start, CL_EEXIST. */
int cl_svc_add_projection(cl_svc *s, const cl_projection *def, const cl_runner_options *o,
                          cl_err *err);
/* The runner of a projection (a view valid until cl_svc_free), NULL if
 * none has that name. */
cl_runner *cl_svc_runner(cl_svc *s, const char *name);
/* Every runner, in the order added: up to cap into out; returns the count. */
size_t cl_svc_runners(cl_svc *s, cl_runner **out, size_t cap);

/* ---- authentication ---- */

/* Turns authentication on, over the `auth` projection (add it first; see
 * query/auth/authn.h). From then on cl_svc_admit checks, before the hooks,
 * the session token a call carries (rc->bearer: a bad one refuses the
 * call) or else a client certificate bound to a principal; with `require`,
 * a call that proves no principal is refused with CL_EUNAUTH, except health
 * checks, the FHIR CapabilityStatement and Auth.Login. `o` tunes it (lifetimes,
 * lockout; its log, projection, writer and wait are the service's).
 * Errors: CL_ENOTFOUND (no auth projection), as cl_authn_new. */
int cl_svc_enable_auth(cl_svc *s, const cl_authn_options *o, int require, cl_err *err);
/* The authenticator (a view valid until cl_svc_free), NULL if off. */
cl_authn *cl_svc_authn(cl_svc *s);
/* 1 if calls must authenticate. */
int cl_svc_auth_required(cl_svc *s);
/* Authorizes authenticated callers by policy p (returned-owned by the
 * service from here on; NULL: none), before the hooks: the method's kind,
 * the resource types a read returns, the event types and the signer of
 * every batch the writer takes (see adapters/service/authz.h). A refusal
 * is CL_EDENIED naming the method, the principal, its roles and what is
 * missing. Callers without a principal (authentication on, not required)
 * are not asked about. Set before serving. */
void cl_svc_set_policy(cl_svc *s, cl_policy *p);
/* 1 if the policy lets rc's caller append events of `type` (an Event
 * body field number), or when there is no policy or the caller has no
 * principal (not asked about, as above); else 0. For handlers whose node
 * writes the caller's events itself (device readings). */
int cl_svc_may_append(cl_svc *s, const cl_req_ctx *rc, uint32_t type);
/* Minimum necessary: a FHIR answer about to go to rc's caller (*body, a
 * resource or Bundle, or with `ndjson` export lines; malloc'd) keeps of
 * each resource only the elements the policy's `fields` rules let the
 * caller's roles read, tagged SUBSETTED; *body and *len are replaced when
 * it changes. Whole for roles without such rules, callers the policy is
 * not asked about, and under break-glass. Every face calls it on every
 * FHIR answer after cl_req_ctx_patients_of. 0, or CL_ENOMEM: the answer
 * must not be sent. */
int cl_svc_subset(cl_svc *s, const cl_req_ctx *rc, char **body, size_t *len, int ndjson);

/* ---- decision support ---- */

/* The knowledge base CDS Hooks and the cds projection answer from (kb
 * returned-owned by the service from here on; freed by cl_svc_free; NULL:
 * none). Set before serving, and before cl_svc_enable_cds. */
void cl_svc_set_kb(cl_svc *s, cl_kb *kb);
/* The knowledge base (a view valid until cl_svc_free), NULL if none. */
const cl_kb *cl_svc_kb(cl_svc *s);
/* Runs the cds projection (query/cds/proj.h) over the service's knowledge
 * base (set it first, and not again), with runner options o (NULL: the
 * runner's defaults but linger_ms 0 and nice 0: every commit is checked at
 * once, at the write path's priority); `emit`: also the emitter (adapters/service/cds_emit.h), which
 * appends its findings as IssueDetected events signed by the log key
 * while this node leads (only with a log key). Errors: CL_EINVAL (no
 * knowledge base), those of cl_svc_add_projection, CL_ENOMEM. */
int cl_svc_enable_cds(cl_svc *s, const cl_runner_options *o, int emit, cl_err *err);
/* Strict barcode medication administration (query/cds/gate.h; clinlogd
 * --bcma-strict): on the node that appends, a MedicationAdministered with a
 * scanned wristband or product that fails one of the five rights is
 * refused with CL_EPRECOND (FAILED_PRECONDITION) naming the right, and
 * nothing of its batch is written. Needs the cds projection
 * (cl_svc_enable_cds); without it such batches are refused with
 * CL_EUNAVAILABLE. Off by default (the administration is written and the
 * checker alerts). Set before serving. */
void cl_svc_set_bcma_strict(cl_svc *s, int on);
/* How far ahead of this node's clock a device reading's time may be
 * (adapters/device/submit.h; clinlogd --device-max-skew-s); 0: the
 * default, 5 minutes. Set before serving. */
void cl_svc_set_device_skew_ms(cl_svc *s, int64_t ms);
int64_t cl_svc_device_skew_ms(const cl_svc *s);
/* Stops the emitter (no more appends from it; the projection runs on), so
 * the writer below (Raft) may stop before cl_svc_free. Call it from one
 * thread, before cl_svc_free; a no-op without an emitter. */
void cl_svc_stop_cds(cl_svc *s);

/* ---- bulk export ---- */

/* Starts the FHIR Bulk Data export jobs (query/fhir/export.h) over the
 * `fhir` projection, their job files in `dir`; closed by cl_svc_free
 * before the runners stop. Errors: CL_ENOTFOUND (no fhir projection), as
 * cl_fhir_exports_open. */
int cl_svc_open_exports(cl_svc *s, const char *dir, const cl_fhir_exports_options *o, cl_err *err);
/* The export jobs (a view valid until cl_svc_free), NULL if not opened. */
cl_fhir_exports *cl_svc_exports(cl_svc *s);

#endif

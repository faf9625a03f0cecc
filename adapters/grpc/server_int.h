/* The engine's interface to method handlers: server.c (the engine) runs
 * calls, svc_*.c (the handlers) implement methods with the functions
 * below. The engine never names a handler: it gets them from the method
 * tables its caller hands to cl_server_start. Nothing outside adapters/grpc
 * includes this. */
#ifndef CL_ADAPTERS_GRPC_SERVER_INT_H
#define CL_ADAPTERS_GRPC_SERVER_INT_H

#include <grpc/grpc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>

#include "adapters/grpc/grpcutil.h"
#include "adapters/grpc/server.h"
#include "adapters/service/service.h"
#include "clinlog/v1/api.pb-c.h"

typedef struct srv_call srv_call;
typedef struct srv_worker srv_worker;

/* A step runs on a worker when the call's pending batch completes (ok is
 * its success flag) or when a waiting call is woken (ok = 1). */
typedef void (*step_fn)(srv_call *c, int ok);

/* One method of a service's table. */
struct cl_grpc_method_def {
  int method;                                /* enum cl_method (its path is "/" + its name) */
  const ProtobufCMessageDescriptor *request; /* unary and server-streaming: the request, decoded
                                                and admitted before `start` (c->req); NULL:
                                                client-streaming, admitted without a request,
                                                the handler reads it (srv_recv) */
  step_fn start;
};

#define SRV_MAX_METHODS 64
/* request metadata of an append one node forwards to another */
#define FORWARDED_MD "clinlog-forwarded"
#define SRV_MAX_FEEDS 17

enum tag_kind { TAG_NEW, TAG_OP, TAG_CLOSE, TAG_SHUTDOWN };

typedef struct srv_tag {
  srv_call *c;
  int kind;
} srv_tag;

struct srv_call {
  cl_server *srv;
  int slot;                      /* index in the server's method table, or -1 (unknown path) */
  const cl_grpc_method_def *def; /* NULL for an unknown path */
  void *svc_ctx;                 /* its service's state (cl_grpc_service.ctx_new) */
  cl_req_ctx rctx;               /* the request as the request layer sees it */
  ProtobufCMessage *req;         /* decoded request (def->request), freed with the call */
  int admitted;                  /* the request layer's hooks saw it: tell them when it ends */
  int st_wait_started;           /* srv_reached: the wait's end is fixed */
  int64_t wait_until_ms;
  int final_code;                /* CL_E* the call ends with (0: OK) */
  grpc_call *gc;
  gpr_timespec deadline;
  grpc_metadata_array req_md;
  grpc_call_details details;     /* unregistered methods only */
  grpc_byte_buffer *payload;     /* first request message (unary, server streaming) */
  grpc_byte_buffer *recv;        /* RECV_MESSAGE target */
  grpc_byte_buffer *send;        /* message of the batch in flight */
  int cancelled;                 /* set by RECV_CLOSE_ON_SERVER */
  atomic_int closed;             /* RECV_CLOSE_ON_SERVER has completed */
  atomic_int refs;               /* the flow + the close op */
  int sent_md;                   /* initial metadata sent */
  int finishing;                 /* status batch started */
  int inline_next;               /* the next step only sends what is buffered: run it
                                    on the CQ thread, without a hand-off to a worker */
  step_fn next;
  srv_tag t_new, t_op, t_close;
  grpc_metadata trailing[4];
  size_t ntrailing;
  grpc_slice status_details;
  grpc_status_code fin_status; /* srv_finish's status, sent once the call is recorded */
  grpc_byte_buffer *rec_send;  /* srv_send's message and next step, while recorded */
  step_fn rec_next;
  void *st;                      /* per-method state */
  void (*st_free)(void *);
  /* waiting for the log or a projection to grow, or for a timer */
  srv_call *wprev, *wnext;
  int waiting;
  int64_t wake_at_ms;
  uint64_t seen_gen;             /* the server's wake_gen when the current step began */
  /* held while another thread has its work (srv_hold) */
  step_fn held_next;
  cl_svc_job *job; /* Append's batch in Raft's hands (svc_log.c) */
  /* worker queue */
  srv_call *qnext;
  int qok;
  /* registry of live calls, for cancelling idle client streams at shutdown */
  srv_call *lprev, *lnext;
  atomic_int in_recv;            /* waiting for the client's next message */
};

struct cl_server {
  cl_server_config cfg;
  cl_svc *svc;
  grpc_server *gs;
  grpc_completion_queue *cq;
  const cl_grpc_service *services;
  size_t nservices;
  void **service_ctx;            /* per service */
  size_t nmethods;               /* registered methods (slots) */
  const cl_grpc_method_def *slot_def[SRV_MAX_METHODS];
  size_t slot_service[SRV_MAX_METHODS];
  void *registered[SRV_MAX_METHODS];
  pthread_t *cq_threads;
  srv_worker *workers;
  int n_cq_started, n_workers_started;
  pthread_t ticker;
  int ticker_started;
  atomic_int shutting_down;
  atomic_int live_calls;
  atomic_int held_calls;         /* srv_hold without srv_release: cl_server_stop waits */
  atomic_int serving;            /* health: 1 SERVING, 0 NOT_SERVING */
  cl_feed_watch watch[SRV_MAX_FEEDS]; /* wake waiting calls when the log or a projection grows */
  cl_feed *feeds[SRV_MAX_FEEDS];
  size_t nfeeds;

  pthread_mutex_t qmu;           /* worker queue: the calls no worker took yet, and */
  srv_call *qhead, *qtail;
  srv_worker *idle;              /* the workers waiting for one (last in, first out) */
  int running;                   /* workers not idle nor waiting in cl_svc_set_blocking's
                                    brackets, and */
  int run_max;                   /* how many may be (2 a CPU): more calls wait in the queue */
  int stop_workers;

  pthread_mutex_t wmu;           /* waiting calls */
  srv_call *waiters;
  atomic_uint_fast64_t wake_gen; /* counts wake-ups of the waiting calls: a step that
                                    looked before a wake-up and parks after it runs
                                    again at once (no lost wake-up) */
  int stop_ticker;
  pthread_cond_t wcv;

  pthread_mutex_t lmu;           /* live calls registry */
  srv_call *live;

  pthread_mutex_t smu;           /* shutdown notification */
  pthread_cond_t scv;
  int shutdown_done;
  srv_tag t_shutdown;
};

/* ---- engine (server.c), used by handlers ---- */

int64_t srv_now_ms(void);

/* Sends one message (with initial metadata the first time); `next` runs on
 * completion. Takes ownership of bb. */
void srv_send(srv_call *c, grpc_byte_buffer *bb, step_fn next);
/* As srv_send; `cheap_next` promises that `next` will not block (it only
 * sends a message already at hand), so it may run on the CQ thread. */
void srv_send_then(srv_call *c, grpc_byte_buffer *bb, step_fn next, int cheap_next);
void srv_send_msg(srv_call *c, const ProtobufCMessage *m, step_fn next);

/* Receives one message into c->recv (NULL at end of stream); sends initial
 * metadata first if not yet sent. */
void srv_recv(srv_call *c, step_fn next);

/* Ends the call: optional last message (borrowed), status, details and the
 * trailing metadata added with srv_trailer. Runs nothing afterwards. */
void srv_finish(srv_call *c, grpc_status_code code, const char *details,
                const ProtobufCMessage *last);
/* Finishes with the status of a store error (and clinlog-error metadata). */
void srv_finish_err(srv_call *c, const cl_err *err);
void srv_trailer(srv_call *c, const char *key, const char *value);

/* Parks the call until the log or a projection grows, the server stops,
 * the call is cancelled, or `wake_at_ms` (srv_now_ms time) passes (0: no
 * timer); then `next` runs. If they grew since the current step began (it
 * may have looked just before), `next` runs again at once. */
void srv_wait(srv_call *c, int64_t wake_at_ms, step_fn next);

/* The call's work goes to another thread (an append in Raft's hands):
 * `next` runs at each srv_resume(c, here), which that thread calls: on a
 * worker (here 0: the call is only queued), or on that thread itself
 * (here 1: when `next` cannot wait on it; it must not block), until the
 * call's step says srv_release. cl_server_stop waits for held calls
 * without a time limit, as it waits for its workers: their work ends by
 * itself. */
void srv_hold(srv_call *c, step_fn next);
void srv_resume(void *call, int here);
void srv_release(srv_call *c);

/* Brackets a step's wait for another thread or node (on 1 before, 0
 * after) that the request layer does not bracket itself
 * (cl_svc_set_blocking): a membership change, a log key rotation. Takes
 * the call's server (c->srv), not the call: a step that ends its call
 * inside the brackets may see it freed before it closes them. */
void srv_block(cl_server *s, int on);

/* 1 if the call should stop (client cancelled or deadline passed). */
int srv_cancelled(srv_call *c);

/* server_req.c: the first step of a registered method (request context,
 * decode, admission, then the handler); of a method no table has; of any
 * call once the server is shutting down. */
void srv_call_begin(srv_call *c, int ok);
void srv_unknown_start(srv_call *c, int ok);
void srv_unavailable_start(srv_call *c, int ok);
/* server.c, for server_ops.c: hands the call to a worker (its next step
 * with ok), drops a reference; server_ops.c, for server.c's CQ threads:
 * the step after the status batch (the call's end). */
void srv_enqueue(srv_call *c, int ok);
void srv_call_unref(srv_call *c);
void srv_finish_done(srv_call *c, int ok);

/* The request layer behind this server, its configuration, and whether
 * health says SERVING. */
cl_svc *srv_svc(srv_call *c);
const cl_server_config *srv_config(srv_call *c);
int srv_serving(srv_call *c);
int srv_shutting_down(srv_call *c);
/* The names of the services this server runs (for Health.Check). */
int srv_knows_service(srv_call *c, const char *name);

/* The call's deadline as CLOCK_REALTIME ms (0: none). */
int64_t srv_deadline_ms(srv_call *c);

/* Read-your-writes: 1 if the log (projection NULL) or the projection has
 * reached `seq`; else parks the call until it grows (`retry` then runs
 * again) and returns 0; past the call's deadline (at most 30 s) finishes it
 * with DEADLINE_EXCEEDED, and an unknown projection with NOT_FOUND, and
 * returns -1. */
int srv_reached(srv_call *c, const char *projection, uint64_t seq, step_fn retry);

/* Linearizable reads: the request layer's Raft barrier. 0 to go on, or
 * finishes the call (a follower answers UNAVAILABLE and "clinlog-leader")
 * and returns -1. */
int srv_barrier(srv_call *c);

/* Finishes with UNAVAILABLE and the leader's API address in
 * "clinlog-leader" (when known). */
void srv_finish_not_leader(srv_call *c, const cl_svc_route *route);

#endif

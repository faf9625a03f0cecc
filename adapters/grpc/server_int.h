/* Internals of clinlogd's server shared by server.c (the engine) and
 * svc_*.c (the method handlers). Nothing outside adapters/grpc includes it. */
#ifndef CL_ADAPTERS_GRPC_SERVER_INT_H
#define CL_ADAPTERS_GRPC_SERVER_INT_H

#include <grpc/grpc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>

#include "adapters/grpc/grpcutil.h"
#include "adapters/grpc/server.h"
#include "clinlog/v1/api.pb-c.h"

/* The methods are enum cl_grpc_method (grpcutil.h); M_UNKNOWN is any other path. */
#define M_UNKNOWN M_COUNT

typedef struct srv_call srv_call;
typedef struct srv_cache srv_cache;

/* The tail cache of recent events for Subscribe (svc_log.c). */
srv_cache *srv_cache_new(void);
void srv_cache_free(srv_cache *tc);

/* A step runs on a worker when the call's pending batch completes (ok is
 * its success flag) or when a waiting call is woken (ok = 1). */
typedef void (*step_fn)(srv_call *c, int ok);

enum tag_kind { TAG_NEW, TAG_OP, TAG_CLOSE, TAG_SHUTDOWN };

typedef struct srv_tag {
  srv_call *c;
  int kind;
} srv_tag;

struct srv_call {
  cl_server *srv;
  int method;
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
  void *st;                      /* per-method state */
  void (*st_free)(void *);
  /* waiting for the log to grow or for a timer (Subscribe, Health.Watch) */
  srv_call *wprev, *wnext;
  int waiting;
  int64_t wake_at_ms;
  /* worker queue */
  srv_call *qnext;
  int qok;
  /* registry of live calls, for cancelling idle client streams at shutdown */
  srv_call *lprev, *lnext;
  atomic_int in_recv;            /* waiting for the client's next message */
};

struct cl_server {
  cl_server_config cfg;
  cl_log *log;
  grpc_server *gs;
  grpc_completion_queue *cq;
  void *methods[M_COUNT];
  pthread_t *cq_threads;
  pthread_t *workers;
  pthread_t ticker;
  atomic_int shutting_down;
  atomic_int live_calls;
  atomic_int serving;            /* health: 1 SERVING, 0 NOT_SERVING */
  srv_cache *cache;              /* recent events, encoded once for all subscribers */
  cl_feed_watch watch;           /* wakes waiting calls when the log grows */

  pthread_mutex_t qmu;           /* worker queue */
  pthread_cond_t qcv;
  srv_call *qhead, *qtail;
  int stop_workers;

  pthread_mutex_t wmu;           /* waiting calls */
  srv_call *waiters;
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
/* Unpacks and checks the request message; on failure finishes the call
 * with INVALID_ARGUMENT and returns NULL. Returned-owned. */
ProtobufCMessage *srv_request(srv_call *c, const ProtobufCMessageDescriptor *d);
/* Finishes with the status of a store error (and clinlog-error metadata). */
void srv_finish_err(srv_call *c, const cl_err *err);
void srv_trailer(srv_call *c, const char *key, const char *value);

/* Parks the call until the log grows, the server stops, the call is
 * cancelled, or `wake_at_ms` passes (0: no timer); then `next` runs. */
void srv_wait(srv_call *c, int64_t wake_at_ms, step_fn next);

/* 1 if the call should stop (client cancelled or deadline passed). */
int srv_cancelled(srv_call *c);

/* ---- handlers (svc_*.c): called on a worker for a new call ---- */
void svc_append(srv_call *c, int ok);
void svc_append_stream(srv_call *c, int ok);
void svc_read(srv_call *c, int ok);
void svc_subscribe(srv_call *c, int ok);
void svc_get_checkpoint(srv_call *c, int ok);
void svc_prove_inclusion(srv_call *c, int ok);
void svc_prove_consistency(srv_call *c, int ok);
void svc_get_event(srv_call *c, int ok);
void svc_health_check(srv_call *c, int ok);
void svc_health_watch(srv_call *c, int ok);
void svc_cluster_status(srv_call *c, int ok);
void svc_add_node(srv_call *c, int ok);
void svc_remove_node(srv_call *c, int ok);
void svc_transfer_leadership(srv_call *c, int ok);
void svc_fetch_records(srv_call *c, int ok);

/* Replication (svc_cluster.c): a write or linearizable read on a node that
 * does not lead. Forwards an Append to the leader when forwarding is on and
 * the leader is known (returns 1: the call is finished), else answers
 * UNAVAILABLE with the leader's API address in "clinlog-leader". */
int srv_forward_append(srv_call *c, const Clinlog__V1__AppendBatch *b);
void srv_finish_not_leader(srv_call *c);
/* Waits (up to the call's deadline) for the consistency a read asks for;
 * returns 0 to go on, or finishes the call and returns -1. */
int srv_read_consistency(srv_call *c, const Clinlog__V1__Consistency *cons);
/* The call's deadline as CLOCK_REALTIME ms (0: none). */
int64_t srv_deadline_ms(srv_call *c);

#endif

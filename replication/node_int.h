/* Internals of replication/node.c shared with members.c (cluster
 * membership): the node, its operations and their completion. Not for
 * other modules. */
#ifndef CL_REPLICATION_NODE_INT_H
#define CL_REPLICATION_NODE_INT_H

#include <pthread.h>
#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "replication/fsm.h"
#include "replication/node.h"
#include "replication/transport.h"
#include "store/log.h"

/* ---- operations ---- */

enum op_kind { OP_APPEND, OP_BARRIER, OP_STATUS, OP_ADD, OP_REMOVE, OP_TRANSFER, OP_STOP };

typedef struct op op;
struct op {
  int kind;
  op *next;
  cl_repl *n;
  /* completion: guarded by the op's own mutex (a node-wide one had every
   * caller woken by a commit queue for it behind the Raft loop, which
   * completes the rest of the entry's ops under it) */
  pthread_mutex_t mu;
  pthread_cond_t cv; /* signalled when done: the caller alone waits on it */
  int done;
  int refs; /* the caller and the loop */
  /* an asynchronous caller (cl_repl_append_start): done_fn(done_ctx,
   * here) runs on completion instead of the signal, outside the mutex;
   * `here` is finish_here, set by the apply (fsm_done) */
  void (*done_fn)(void *, int);
  void *done_ctx;
  int finish_here;
  int rc;
  cl_err err;
  /* OP_APPEND */
  Clinlog__V1__PreparedBatch *pb;
  cl_prefixes *pre; /* its records, encoded by the caller's thread */
  size_t bytes;
  cl_append_result r;
  /* a batch linked to pb (cl_repl_append_linked): the next item of the
   * same entry, with_previous set; its outcome */
  Clinlog__V1__PreparedBatch *then_pb;
  cl_prefixes *then_pre;
  int then_rc;
  cl_err then_err;
  /* membership */
  uint64_t id;
  char address[2 * CL_REPL_ADDR_MAX + 2];
  int promote; /* OP_ADD: 0 no promotion, else 1 + attempts so far */
  cl_repl_status *status;
  union {
    struct raft_change change;
    struct raft_barrier barrier;
    struct raft_transfer transfer;
  } req;
};

/* Appends packed into one Raft entry. */
typedef struct group {
  struct raft_apply req;
  uint64_t id;
  op **ops;
  cl_apply_item *items; /* nitems: an op's linked batch is the item after its own */
  size_t n, nitems;
  int finished;
  struct group *next;
} group;

#define PROMOTE_TRIES 600 /* promotion attempts (each after a round of up to ~1 s) */

typedef struct promotion {
  op *o;
  struct promotion *next;
} promotion;

struct cl_repl {
  cl_repl_options o;
  char dir[4096];
  char self_address[2 * CL_REPL_ADDR_MAX + 2];
  char api_address[CL_REPL_ADDR_MAX];
  cl_log *log;

  uv_loop_t loop;
  uv_async_t async;
  uv_timer_t tick;
  struct raft_io io;
  cl_rtransport *tr; /* owned */
  struct raft raft;
  struct raft_fsm rfsm;
  cl_fsm fsm;
  pthread_t thread;
  int started;

  /* submissions (any thread -> loop) */
  pthread_mutex_t qmu;
  op *qhead, *qtail;
  int stopping;
  /* completions (loop -> callers): each op's own mutex (struct op) */

  /* loop-owned */
  op *pending_head, *pending_tail; /* appends waiting for a group */
  size_t pending_n;
  group *groups; /* entries in flight */
  unsigned inflight;
  uint64_t next_group;
  uint64_t origin;
  promotion *promotions;
  op *stop_op;
  int head_submitted;

  /* cached for other threads (routing) */
  pthread_mutex_t cmu;
  int is_leader;
  uint64_t leader_id;
  char leader_api[CL_REPL_ADDR_MAX];
};

/* ---- operations: node.c ---- */

/* A new operation of `kind` (refs 2: the caller and the loop), NULL when
 * out of memory. */
op *repl_op_new(int kind);
/* Drops one reference; the last frees o and what it holds. */
void repl_op_unref(cl_repl *n, op *o);
/* Loop: o is finished (rc, err and results set); wakes its caller. */
void repl_op_complete(cl_repl *n, op *o, int rc, const cl_err *err);
void repl_op_fail(cl_repl *n, op *o, int code, const char *fmt, ...) CL_PRINTF(4, 5);
/* Caller: hands o to the loop (which completes it). CL_EUNAVAILABLE when
 * the node is stopping: the loop's reference is dropped then, and o is
 * done without a completion. */
int repl_op_submit(cl_repl *n, op *o, cl_err *err);
/* Caller: hands o to the loop and waits for it (or for the deadline:
 * CL_ETIMEDOUT, absolute CLOCK_REALTIME ms, 0 none). */
int repl_op_run(cl_repl *n, op *o, int64_t deadline_ms, cl_err *err);
/* Caller: repl_op_run, then drops the caller's reference (o NULL:
 * CL_ENOMEM). */
int repl_simple_op(cl_repl *n, op *o, int64_t deadline_ms, cl_err *err);
/* Loop: the leader as other threads see it (cl_repl_leader). */
void repl_refresh_cache(cl_repl *n);

/* ---- membership: members.c ---- */

/* Loop: starts a membership change (OP_ADD, OP_REMOVE, OP_TRANSFER).
 * Returns a libraft error code to fail o with, 0 (started: its callback
 * completes o), or -1 (o is completed already). */
int repl_member_op(cl_repl *n, op *o);
/* Loop: promotes the standbys waiting to become voters that have caught up. */
void repl_check_promotions(cl_repl *n);
/* Loop: the node's view of the cluster. */
void repl_fill_status(cl_repl *n, cl_repl_status *st);

#endif

/* A clinlog cluster node: the store replicated with Raft (libraft 0.22 on
 * libuv). A single node is a one-member cluster; the code path is the same.
 * See docs/replication.md for the guarantees and the operations.
 *
 * Threads: Raft runs on its own loop thread. Any thread may call the
 * functions here; they hand work to the loop (a queue and uv_async_send)
 * and wait for its completion. The loop packs the appends queued while
 * earlier entries replicate into one Raft entry (group commit).
 *
 * libraft and libuv types stay inside replication/. */
#ifndef CL_REPLICATION_NODE_H
#define CL_REPLICATION_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "store/log.h"

typedef struct cl_repl cl_repl;

/* Catch-up transport (implemented by the adapters: gRPC FetchRecords):
 * brings `log` to `size` events whose root is `root`, from the node whose
 * API listens at `api_address`, feeding chunks to cl_log_ingest. */
typedef int (*cl_repl_fetch_fn)(void *ctx, cl_log *log, const char *api_address, uint64_t size,
                                const uint8_t root[32], cl_err *err);

#define CL_REPL_ADDR_MAX 128

typedef struct cl_repl_options {
  cl_log *log;                  /* borrowed; opened with sync = 0 (the Raft log is the WAL) */
  uint64_t id;                  /* this node's id, > 0, unique in the cluster */
  const char *dir;              /* Raft directory (segments, snapshots, metadata) */
  const char *raft_address;     /* host:port the Raft transport listens on */
  const char *api_address;      /* host:port of this node's gRPC API (told to peers) */
  int bootstrap;                /* no Raft state yet: start a new cluster of this node only;
                                   otherwise wait to be added by the leader */
  unsigned election_timeout_ms; /* default 1000 */
  unsigned heartbeat_ms;        /* default 100 */
  unsigned snapshot_threshold;  /* entries between snapshots; default 1024 */
  unsigned snapshot_trailing;   /* entries kept after a snapshot; default 4096 */
  size_t max_entry_bytes;       /* a group of appends closes here; default 256 KiB (the
                                   Raft log in memory stays under (threshold + trailing)
                                   x this) */
  unsigned max_inflight;        /* entries replicating at once; default 2 */
  cl_repl_fetch_fn fetch;       /* catch-up transport */
  void *fetch_ctx;
  /* The Raft transport's security (replication/tls.h): PEM files of this
   * node's certificate, its private key and the cluster CA (borrowed during
   * cl_repl_start). All three: mutual TLS with every peer, whose certificate
   * must chain to that CA and name the host of its Raft address. None:
   * plaintext, which only the caller can judge acceptable (clinlogd: --dev
   * on loopback), or, with `standalone`, no transport at all. */
  const char *tls_cert;
  const char *tls_key;
  const char *tls_ca;
  int standalone; /* no Raft listener, no connections: a one-node cluster that
                     cannot grow (cl_repl_add answers CL_EINVAL, and a start
                     whose configuration has other members fails) */
} cl_repl_options;

void cl_repl_options_init(cl_repl_options *o);

/* Starts the node (returned-owned in *out: cl_repl_stop). A bootstrapping
 * node starts its cluster from its store's current head. Errors: CL_EINVAL
 * (incomplete or unreadable TLS material, a standalone node whose
 * configuration has other members), CL_EIO (Raft directory, address in
 * use, a TLS file that cannot be read). */
int cl_repl_start(const cl_repl_options *o, cl_repl **out, cl_err *err);

/* Stops Raft and the loop thread; waiting calls fail with CL_EUNAVAILABLE.
 * Waits at most 10 s for Raft to close: if it does not, it says so on
 * stderr and returns without it, leaving the loop thread and n to the
 * process's exit (every acknowledged entry is durable already, as after a
 * crash). A safety net: the one known cause, a TLS handshake whose TCP
 * write failed and never answered libraft's connect request, is fixed
 * (replication/tls.c, sess_end). */
void cl_repl_stop(cl_repl *n);

/* Appends a signed batch through Raft: prepared here (in parallel with other
 * callers), committed by a majority, applied, then answered, as
 * cl_log_append. `deadline_ms` is absolute (CLOCK_REALTIME ms; 0: none).
 * Errors as cl_log_append, plus CL_ENOTLEADER (see cl_repl_leader),
 * CL_EUNAVAILABLE (leadership lost while the entry replicated: it may still
 * commit; retrying with the same event ids is safe), CL_ETIMEDOUT. */
CL_MUST_CHECK int cl_repl_append(cl_repl *n, const Clinlog__V1__AppendBatch *b,
                                 int64_t deadline_ms, cl_append_result *r, cl_err *err);

/* cl_repl_append of b with `then` linked to it (a call's audit record,
 * signed by this node's log key): both go into one Raft entry, then right
 * after b, and are applied in one store write; then is committed only if
 * b commits new events (not refused, not a duplicate: its records follow
 * b's at once), else refused alone and nothing of it is written. The
 * return value and r are b's, as cl_repl_append's; *then_rc (and
 * *then_err) then's: 0 committed, CL_EPRECOND (b committed nothing new,
 * or did not commit), or its own error. then may be NULL (cl_repl_append). */
CL_MUST_CHECK int cl_repl_append_linked(cl_repl *n, const Clinlog__V1__AppendBatch *b,
                                        const Clinlog__V1__AppendBatch *then, int64_t deadline_ms,
                                        cl_append_result *r, int *then_rc, cl_err *then_err,
                                        cl_err *err);

/* An append in flight (cl_repl_append_start). */
typedef struct cl_repl_pending cl_repl_pending;
/* cl_repl_append_start's return while the append is in Raft's hands. */
#define CL_REPL_PENDING 1

/* cl_repl_append_linked without holding the calling thread while Raft
 * commits: b (and then, or NULL) are prepared here and handed to the Raft
 * loop. Returns CL_REPL_PENDING with *out, set before done can run:
 * done(ctx, here) then runs exactly once, on the Raft loop (or on the
 * thread stopping the node), when the append has ended, and must only
 * hand the work on (not block, not call into n); the caller then collects
 * the outcome with cl_repl_append_end. `here` (1) says that b committed
 * (and then with it) alone in its Raft entry: with no other appends to
 * complete, done may collect the outcome and finish the caller's work
 * itself on the loop, saving a thread's wake-up, if that work never waits
 * (never on Raft: the loop would wait on itself). b and then stay the caller's and must
 * live until that. There is no deadline: every append ends by itself
 * (committed and applied, refused, leadership lost, which a leader cut
 * off from a majority meets within an election timeout, or the node
 * stopping). Any other return is the outcome (done does not run, *out is
 * NULL): CL_ENOTLEADER, CL_EUNAVAILABLE (stopping), CL_ENOMEM and
 * cl_log_prepare's errors. */
CL_MUST_CHECK int cl_repl_append_start(cl_repl *n, const Clinlog__V1__AppendBatch *b,
                                       const Clinlog__V1__AppendBatch *then,
                                       void (*done)(void *ctx, int here), void *ctx,
                                       cl_repl_pending **out, cl_err *err);
/* After p's done: the outcome as cl_repl_append_linked's (the return, r,
 * *then_rc and *then_err, each optional but r) and p is freed; or
 * CL_REPL_PENDING when b had to be prepared again (the stream's data key
 * or the log key changed meanwhile; five tries in all, as
 * cl_repl_append_linked): p stays, and done runs again. */
CL_MUST_CHECK int cl_repl_append_end(cl_repl_pending *p, cl_append_result *r, int *then_rc,
                                     cl_err *then_err, cl_err *err);

/* The leader as last seen: returns 1 if this node leads, else 0 with *id
 * (0: unknown) and its API address (empty if unknown). */
int cl_repl_leader(cl_repl *n, uint64_t *id, char *api_address, size_t cap);

/* Linearizable-read barrier: on the leader, returns once everything
 * committed before the call is applied here. CL_ENOTLEADER elsewhere. */
int cl_repl_barrier(cl_repl *n, int64_t deadline_ms, cl_err *err);

enum { CL_ROLE_STANDBY = 0, CL_ROLE_VOTER = 1, CL_ROLE_SPARE = 2 };

typedef struct cl_repl_member {
  uint64_t id;
  char raft_address[CL_REPL_ADDR_MAX];
  char api_address[CL_REPL_ADDR_MAX];
  int role;
  uint64_t match_index;         /* leader only */
} cl_repl_member;

#define CL_REPL_MAX_MEMBERS 16

typedef struct cl_repl_status {
  uint64_t id;
  const char *state;            /* "leader", "follower", "candidate", "unavailable" */
  uint64_t term;
  uint64_t leader_id;
  char leader_api[CL_REPL_ADDR_MAX];
  uint64_t commit_index, last_applied, last_index;
  uint64_t store_applied;       /* Raft index recorded with the store */
  size_t n;
  cl_repl_member members[CL_REPL_MAX_MEMBERS];
} cl_repl_status;

int cl_repl_get_status(cl_repl *n, cl_repl_status *st, int64_t deadline_ms, cl_err *err);

/* Membership (leader only, else CL_ENOTLEADER). add: the node joins as a
 * standby (non-voter), and with `promote` becomes a voter once it has
 * caught up; returns when that is done. */
int cl_repl_add(cl_repl *n, uint64_t id, const char *raft_address, const char *api_address,
                int promote, int64_t deadline_ms, cl_err *err);
int cl_repl_remove(cl_repl *n, uint64_t id, int64_t deadline_ms, cl_err *err);
/* id 0: the most up-to-date voter. Returns once this node no longer leads. */
int cl_repl_transfer(cl_repl *n, uint64_t id, int64_t deadline_ms, cl_err *err);

/* Role names ("voter", ...). */
const char *cl_repl_role_name(int role);

#endif

/* The projection runner: keeps one projection (a deterministic fold over
 * the committed log, see store/proj.h) up to date.
 *
 * A runner owns a thread. It reads committed events from the projection's
 * position on (cl_log_read_all: decrypted, or flagged erased), hands each
 * to the projection's fold inside a transaction, and commits the state
 * together with the new position in one write, a batch of events at a time.
 * When it has caught up it sleeps on the commit feed (store/feed.h) until
 * the log grows. It reports its position and lag, lets a reader wait until
 * a given event is folded (read-your-writes on projections), and rebuilds
 * from event 1 on request.
 *
 * Catching up (more than a batch behind), it pipelines: a batch is written
 * by the projection's writer thread (cl_proj_commit_start) while the next
 * one is folded over it. A fold reading through its transaction
 * (cl_proj_txn_get) sees every event folded before, also those of the
 * batch being written; the committed state (cl_proj_get, cl_proj_scan)
 * may lag that one batch behind, so a fold that reads it must cover the
 * batch in flight itself (state kept from the batch before).
 *
 * Folds must be deterministic: the state after folding events 1..N depends
 * only on those events, so a rebuild gives the live state byte for byte.
 * An erased event (ev->erased) must leave no trace: a projection
 * forgets a stream's data when it folds the stream's StreamErased, and a
 * rebuild meets that stream's events already erased.
 *
 * A fold error stops folding (the state stays at the last good batch); the
 * runner retries after a pause (1 s, doubling to 30 s), and the status
 * names the error. */
#ifndef CL_QUERY_RUNNER_H
#define CL_QUERY_RUNNER_H

#include <stddef.h>
#include <stdint.h>

#include "store/log.h"
#include "store/proj.h"

/* What a fold gets: the projection's state, the transaction of the batch
 * being folded, the log (for reads), and the projection's own per-runner
 * state (caches; see state_new). */
typedef struct cl_fold_ctx {
  cl_proj *proj;
  cl_proj_txn *txn;
  cl_log *log;
  void *state;
  const void *arg; /* the projection's argument (cl_projection.arg) */
} cl_fold_ctx;

/* What a projection provides. */
typedef struct cl_projection {
  const char *name; /* store/proj.h naming rules */
  uint32_t version; /* bump when the fold changes: the state is rebuilt */
  const char *const *families;
  size_t nfamilies;
  /* Folds one committed event (views valid during the call; ev->event is
   * the serialized Event, NULL if erased). Returns 0 or an error. */
  int (*fold)(cl_fold_ctx *f, const cl_event_view *ev, cl_err *err);
  /* 1: the fold needs the content of few events: they arrive undecrypted
   * (ev->event NULL, ev->erased set) and the fold decrypts those it needs
   * with cl_log_open_event. Saves a decryption per event. */
  int sealed_reads;
  /* Optional. State of the projection's own, one per runner (e.g. a cache
   * of what it committed, so a fold need not read it back): NULL when out
   * of memory. Freed with state_free when the runner stops. */
  void *(*state_new)(void);
  void (*state_free)(void *state);
  /* Optional. Called after the last fold of a batch, before it commits:
   * write what the batch accumulated in `state`. */
  int (*batch_end)(cl_fold_ctx *f, cl_err *err);
  /* Optional. The batch was not committed (nor, pipelined, the one before
   * it perhaps), or the state on disk was reset (rebuild): forget whatever
   * `state` holds that the disk does not. */
  void (*discard)(void *state);
  /* Optional. What the fold reads besides the log, e.g. a knowledge base
   * (borrowed: it must outlive the runner, and stay unchanged, for the
   * fold to stay deterministic): handed to every call as f->arg. */
  const void *arg;
} cl_projection;

typedef struct cl_runner cl_runner;

typedef struct cl_runner_options {
  size_t batch_events; /* events per transaction; default 2048 (catching up, the
                          writes of a bigger batch land closer together in the
                          memtables: cheaper inserts) */
  int nice;            /* the thread's nice value, default 10: when the CPUs are
                          busy the write path goes first and the projection lags,
                          catching up when they are not (0: the process's) */
  int linger_ms;       /* when live and less than a batch is new, wait this long
                          for more so one transaction folds them (under load far
                          less work per event); a waiting reader ends the wait
                          (cl_runner_wait, cl_runner_want). Default 10; 0: fold at
                          every commit */
  int start_paused;    /* tests: do not fold until cl_runner_resume */
} cl_runner_options;

void cl_runner_options_init(cl_runner_options *o);

/* Opens the projection's state and starts its thread. `def` and `log` are
 * borrowed (they must outlive the runner). *out returned-owned
 * (cl_runner_stop). Errors: as cl_proj_open, CL_ENOMEM. */
int cl_runner_start(cl_log *log, const cl_projection *def, const cl_runner_options *o,
                    cl_runner **out, cl_err *err);

/* Stops the thread (after the transaction in progress) and closes the
 * projection's state. */
void cl_runner_stop(cl_runner *r);

enum cl_runner_state {
  CL_RUNNER_CATCHING_UP, /* behind the log's head, folding */
  CL_RUNNER_LIVE,        /* at the head, following the feed */
  CL_RUNNER_REBUILDING,  /* reset, folding again from event 1 */
  CL_RUNNER_FAILED,      /* the last batch failed; retrying (see error) */
  CL_RUNNER_PAUSED
};
const char *cl_runner_state_name(int state);

typedef struct cl_runner_status {
  char name[CL_PROJ_NAME_MAX + 1];
  int state;
  uint64_t position; /* last event folded */
  uint64_t head;     /* the log's size */
  uint64_t lag;      /* head - position */
  uint64_t folded;   /* events folded since start */
  uint64_t rebuilds; /* rebuilds since start */
  cl_err error;      /* the last failure (code 0: none since the last good batch) */
} cl_runner_status;

void cl_runner_get_status(cl_runner *r, cl_runner_status *st);

/* The projection's state, for its read engine: a view valid until
 * cl_runner_stop. */
cl_proj *cl_runner_proj(cl_runner *r);

/* The runner's progress feed, for event-driven readers: its number is the
 * count of events folded since start (it grows with every committed batch,
 * also across rebuilds, when the position starts over); on a wake-up, read
 * the position (cl_proj_position). A view valid until cl_runner_stop. */
cl_feed *cl_runner_feed(cl_runner *r);

/* Blocks until the projection has folded event `seq` (deadline: absolute
 * CLOCK_REALTIME ms, 0 = none). Errors: CL_ETIMEDOUT (err says how far it
 * got), CL_EUNAVAILABLE (stopping). */
int cl_runner_wait(cl_runner *r, uint64_t seq, int64_t deadline_ms, cl_err *err);

/* Says a reader waits for event `seq` (without blocking): a runner lingering
 * for more events folds now. For readers parked on cl_runner_feed. */
void cl_runner_want(cl_runner *r, uint64_t seq);

/* Drops the projection's state and folds again from event 1. Returns once
 * the state is reset (the fold then runs in the background; cl_runner_wait
 * for the head to know when it is done). Errors: as cl_proj_reset. */
int cl_runner_rebuild(cl_runner *r, cl_err *err);

/* Tests: pause folding after the current batch, and resume. */
void cl_runner_pause(cl_runner *r);
void cl_runner_resume(cl_runner *r);

#endif

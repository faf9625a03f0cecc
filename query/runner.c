/* The projection runner; see runner.h.
 *
 * `mu` guards everything below it in the struct; `wake` tells the thread
 * the log grew, a rebuild or stop was asked for, or it was resumed;
 * `progress` tells waiters the position moved (or the runner stops). The
 * feed callback takes `mu`; the runner never calls the feed while holding
 * it (lock order: feed, then mu).
 *
 * Catching up, the runner pipelines: a batch is handed to the projection's
 * writer thread (cl_proj_commit_start) and the next one folded meanwhile,
 * over the one in flight (its reads see its writes). Before it sleeps,
 * pauses, rebuilds or stops, and after any failure, it waits for the write
 * in flight (settle), so the position on disk is then all there is. */
#include "query/runner.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "store/alloc.h"
#include "store/feed.h"

struct cl_runner {
  cl_log *log;
  const cl_projection *def;
  cl_runner_options o;
  cl_proj *proj;
  void *pstate;           /* the projection's own (def->state_new), runner thread only */
  uint64_t inflight_last; /* runner thread: last seq of the batch being written (0: none) */
  uint64_t durable;       /* runner thread: the position last published */
  pthread_t thread;
  cl_feed_watch watch;
  cl_feed *progress_feed; /* the position, for event-driven readers */

  pthread_mutex_t mu;
  pthread_cond_t wake;
  pthread_cond_t progress;
  uint64_t head; /* the log's size, as the feed said */
  int stop, paused;
  int rebuild_asked;     /* a rebuild is wanted */
  uint64_t rebuild_done; /* rebuilds completed (cl_runner_rebuild waits for its own) */
  int rebuild_rc;
  cl_err rebuild_err;
  int rebuilding; /* folding again after a reset, not yet at the head */
  int state;
  cl_err error;
  uint64_t folded, rebuilds;
  int64_t retry_at_ms; /* after a failure: when to try again */
  int64_t backoff_ms;
  int64_t linger_until_ms; /* live, few new events: folding them at this time... */
  uint64_t linger_goal;    /* ...or once the head reaches this (0: not lingering) */
  uint64_t wanted;         /* the highest seq a reader waits for (ends a linger) */
};

const char *cl_runner_state_name(int state) {
  switch (state) {
  case CL_RUNNER_CATCHING_UP:
    return "catching-up";
  case CL_RUNNER_LIVE:
    return "live";
  case CL_RUNNER_REBUILDING:
    return "rebuilding";
  case CL_RUNNER_FAILED:
    return "failed";
  case CL_RUNNER_PAUSED:
    return "paused";
  default:
    return "unknown";
  }
}

void cl_runner_options_init(cl_runner_options *o) {
  memset(o, 0, sizeof *o);
  o->batch_events = 2048;
  o->nice = 10;
  o->linger_ms = 10;
}

static void on_grow(void *ctx, uint64_t size) {
  cl_runner *r = ctx;
  pthread_mutex_lock(&r->mu);
  r->head = size;
  if (!r->linger_goal || size >= r->linger_goal) /* a lingering runner sleeps on */
    pthread_cond_signal(&r->wake);
  pthread_mutex_unlock(&r->mu);
}

/* ---------------------------------------------------------- folding */

typedef struct batch {
  cl_runner *r;
  cl_fold_ctx f;
  uint64_t last; /* last seq folded into the transaction */
} batch;

static int fold_one(void *ctx, const cl_event_view *ev, cl_err *err) {
  batch *b = ctx;
  int rc = b->r->def->fold(&b->f, ev, err);
  if (rc)
    return cl_err_prefix(err, "folding event %llu", (unsigned long long)ev->seq);
  b->last = ev->seq;
  return 0;
}

static void discard(cl_runner *r) {
  if (r->def->discard)
    r->def->discard(r->pstate);
}

/* Publishes what reached the disk since the last call (the position
 * moved on): `folded`, the progress feed, waiters; `ok`: a failure before
 * it is over. Called without `mu`, returns with it (so the loop decides
 * the state before a woken waiter can look). */
static void published(cl_runner *r, int ok) {
  uint64_t pos = cl_proj_position(r->proj);
  uint64_t done = pos > r->durable ? pos - r->durable : 0;
  r->durable = pos;
  pthread_mutex_lock(&r->mu);
  r->folded += done;
  uint64_t folded = r->folded;
  if (ok) {
    r->retry_at_ms = r->backoff_ms = 0;
    if (r->state == CL_RUNNER_FAILED) {
      cl_err_clear(&r->error);
      r->state = r->rebuilding ? CL_RUNNER_REBUILDING : CL_RUNNER_CATCHING_UP;
    }
    /* at the head: live before the feed says so, so a watcher woken by
     * this fold (the cds emitter) sees the state it reached, not the
     * catching-up of the fold in progress (it would sleep until the next
     * commit, or its poll) */
    if (pos >= r->head && r->state != CL_RUNNER_PAUSED && !r->rebuild_asked) {
      r->rebuilding = 0;
      r->state = CL_RUNNER_LIVE;
    }
  }
  if (done) {
    pthread_mutex_unlock(&r->mu);
    cl_feed_publish(r->progress_feed, folded); /* callbacks run outside our lock */
    pthread_mutex_lock(&r->mu);
  }
  if (done)
    pthread_cond_broadcast(&r->progress);
}

/* Waits for the batch in flight, if any. On error the projection's state
 * forgets the batches over it. Called without `mu`. */
static int settle(cl_runner *r, cl_err *err) {
  if (!r->inflight_last)
    return 0;
  r->inflight_last = 0;
  int rc = cl_proj_commit_wait(r->proj, err);
  if (rc)
    discard(r);
  return rc;
}

/* Folds events from..from+n-1 in one transaction and commits them with
 * their position: hands them to the writer (pipelined) or writes them
 * here. On error nothing of the batch is written, and nothing is in
 * flight. */
static int fold_batch(cl_runner *r, uint64_t from, uint64_t n, int pipelined, cl_err *err) {
  batch b = {r, {r->proj, NULL, r->log, r->pstate, r->def->arg}, from - 1};
  int rc = cl_proj_begin(r->proj, &b.f.txn, err);
  if (rc == 0) {
    rc = r->def->sealed_reads ? cl_log_scan(r->log, from, n, fold_one, &b, err)
                              : cl_log_read_all(r->log, from, n, fold_one, &b, err);
    if (rc == 0 && b.last < from) /* nothing readable (cannot happen below the head) */
      rc = cl_err_set(err, CL_ECORRUPT, "event %llu is missing", (unsigned long long)from);
    if (rc == 0 && r->def->batch_end && (rc = r->def->batch_end(&b.f, err)) != 0)
      cl_err_prefix(err, "ending the batch %llu..%llu", (unsigned long long)from,
                    (unsigned long long)b.last);
    if (rc)
      cl_proj_abort(b.f.txn);
    else if (pipelined)
      rc = cl_proj_commit_start(b.f.txn, b.last, err);
    else
      rc = cl_proj_commit(b.f.txn, b.last, err);
  }
  if (rc) {
    cl_err e2;
    (void)settle(r, &e2); /* the batch before may yet be written */
    r->inflight_last = 0;
    discard(r);
    return rc;
  }
  r->inflight_last = pipelined ? b.last : 0;
  return 0;
}

static int64_t now_ms(void) { return cl_feed_now_ms(); }

static void timed_wait(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t until_ms) {
  struct timespec ts = {(time_t)(until_ms / 1000), (long)(until_ms % 1000) * 1000000L};
  pthread_cond_timedwait(cv, mu, &ts);
}

/* A failure: retry after a pause. Called with `mu`. */
static void failed(cl_runner *r, const cl_err *e) {
  r->state = CL_RUNNER_FAILED;
  r->error = *e;
  r->backoff_ms = r->backoff_ms ? (r->backoff_ms * 2 > 30000 ? 30000 : r->backoff_ms * 2) : 1000;
  r->retry_at_ms = now_ms() + r->backoff_ms;
}

static void *runner_main(void *arg) {
  cl_runner *r = arg;
  if (r->o.nice) /* Linux: a thread's own nice value (best effort) */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), r->o.nice);
  char name[16]; /* for top -H, perf, gdb */
  snprintf(name, sizeof name, "proj:%s", r->def->name);
  (void)pthread_setname_np(pthread_self(), name);
  r->durable = cl_proj_position(r->proj);
  pthread_mutex_lock(&r->mu);
  while (!r->stop) {
    /* about to sleep, pause or reset: the batch in flight first */
    uint64_t pos = r->inflight_last ? r->inflight_last : cl_proj_position(r->proj), head = r->head;
    if (r->inflight_last && (r->rebuild_asked || r->paused || pos >= head)) {
      pthread_mutex_unlock(&r->mu);
      cl_err e;
      cl_err_clear(&e);
      int rc = settle(r, &e);
      published(r, rc == 0);
      if (rc)
        failed(r, &e);
      continue;
    }
    if (r->rebuild_asked) {
      r->rebuild_asked = 0;
      pthread_mutex_unlock(&r->mu);
      cl_err e;
      cl_err_clear(&e);
      int rc = cl_proj_reset(r->proj, &e);
      discard(r);
      r->durable = cl_proj_position(r->proj);
      pthread_mutex_lock(&r->mu);
      r->rebuild_rc = rc;
      r->rebuild_err = e;
      r->rebuild_done++;
      if (rc == 0) {
        r->rebuilds++;
        r->rebuilding = 1;
        cl_err_clear(&r->error);
        r->retry_at_ms = 0;
      }
      pthread_cond_broadcast(&r->progress);
      continue;
    }
    if (r->paused) {
      r->state = CL_RUNNER_PAUSED;
      pthread_cond_wait(&r->wake, &r->mu);
      continue;
    }
    if (r->retry_at_ms && now_ms() < r->retry_at_ms) {
      timed_wait(&r->wake, &r->mu, r->retry_at_ms);
      continue;
    }
    if (pos >= head) {
      r->rebuilding = 0;
      r->state = CL_RUNNER_LIVE;
      pthread_cond_wait(&r->wake, &r->mu);
      continue;
    }
    /* live, and less than a batch is new: wait a little for more, so one
     * transaction folds them (under load, far less work per event) */
    if (r->state == CL_RUNNER_LIVE && r->o.linger_ms && head - pos < r->o.batch_events &&
        r->wanted <= pos) {
      if (!r->linger_goal) {
        r->linger_goal = pos + r->o.batch_events;
        r->linger_until_ms = now_ms() + r->o.linger_ms;
      }
      if (now_ms() < r->linger_until_ms) {
        timed_wait(&r->wake, &r->mu, r->linger_until_ms);
        continue;
      }
    }
    r->linger_goal = 0;
    if (r->state != CL_RUNNER_FAILED)
      r->state = r->rebuilding ? CL_RUNNER_REBUILDING : CL_RUNNER_CATCHING_UP;
    uint64_t n = head - pos < r->o.batch_events ? head - pos : r->o.batch_events;
    /* more to fold after this batch: fold it while this one is written */
    int pipelined = head - pos > n;
    pthread_mutex_unlock(&r->mu);
    cl_err e;
    cl_err_clear(&e);
    int rc = fold_batch(r, pos + 1, n, pipelined, &e);
    published(r, rc == 0);
    if (rc)
      failed(r, &e);
  }
  pthread_mutex_unlock(&r->mu);
  cl_err e;
  (void)settle(r, &e); /* stopping: what is in flight is written (or not) before the close */
  published(r, 1);
  pthread_cond_broadcast(&r->progress);
  pthread_mutex_unlock(&r->mu);
  return NULL;
}

/* ------------------------------------------------------------- life */

int cl_runner_start(cl_log *log, const cl_projection *def, const cl_runner_options *o,
                    cl_runner **out, cl_err *err) {
  cl_runner *r = cl_calloc(1, sizeof *r);
  if (!r)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  r->log = log;
  r->def = def;
  if (o)
    r->o = *o;
  else
    cl_runner_options_init(&r->o);
  if (!r->o.batch_events)
    r->o.batch_events = 2048;
  r->paused = r->o.start_paused;
  if (def->state_new && !(r->pstate = def->state_new())) {
    cl_free(r);
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  }
  int rc = cl_proj_open(log, def->name, def->version, def->families, def->nfamilies, &r->proj, err);
  if (rc) {
    if (def->state_free)
      def->state_free(r->pstate);
    cl_free(r);
    return rc;
  }
  if (!(r->progress_feed = cl_feed_new(0))) {
    cl_proj_close(r->proj);
    if (def->state_free)
      def->state_free(r->pstate);
    cl_free(r);
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  }
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->wake, NULL);
  pthread_cond_init(&r->progress, NULL);
  r->state = CL_RUNNER_CATCHING_UP;
  r->head = cl_feed_add(cl_log_feed(log), &r->watch, on_grow, r);
  if (pthread_create(&r->thread, NULL, runner_main, r) != 0) {
    cl_feed_remove(cl_log_feed(log), &r->watch);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->wake);
    pthread_cond_destroy(&r->progress);
    cl_feed_free(r->progress_feed);
    cl_proj_close(r->proj);
    if (def->state_free)
      def->state_free(r->pstate);
    cl_free(r);
    return cl_err_set(err, CL_ENOMEM, "projection %s: cannot start its thread", def->name);
  }
  *out = r;
  return 0;
}

void cl_runner_stop(cl_runner *r) {
  if (!r)
    return;
  cl_feed_remove(cl_log_feed(r->log), &r->watch);
  pthread_mutex_lock(&r->mu);
  r->stop = 1;
  pthread_cond_broadcast(&r->wake);
  pthread_mutex_unlock(&r->mu);
  pthread_join(r->thread, NULL);
  cl_feed_free(r->progress_feed);
  cl_proj_close(r->proj);
  if (r->def->state_free)
    r->def->state_free(r->pstate);
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->wake);
  pthread_cond_destroy(&r->progress);
  cl_free(r);
}

cl_proj *cl_runner_proj(cl_runner *r) { return r->proj; }
cl_feed *cl_runner_feed(cl_runner *r) { return r->progress_feed; }

void cl_runner_get_status(cl_runner *r, cl_runner_status *st) {
  memset(st, 0, sizeof *st);
  snprintf(st->name, sizeof st->name, "%s", r->def->name);
  st->position = cl_proj_position(r->proj);
  pthread_mutex_lock(&r->mu);
  st->state = r->state;
  st->head = r->head;
  st->folded = r->folded;
  st->rebuilds = r->rebuilds;
  st->error = r->error;
  pthread_mutex_unlock(&r->mu);
  st->lag = st->head > st->position ? st->head - st->position : 0;
}

void cl_runner_want(cl_runner *r, uint64_t seq) {
  pthread_mutex_lock(&r->mu);
  if (seq > r->wanted) {
    r->wanted = seq;
    pthread_cond_signal(&r->wake);
  }
  pthread_mutex_unlock(&r->mu);
}

int cl_runner_wait(cl_runner *r, uint64_t seq, int64_t deadline_ms, cl_err *err) {
  cl_runner_want(r, seq);
  pthread_mutex_lock(&r->mu);
  uint64_t pos;
  while ((pos = cl_proj_position(r->proj)) < seq && !r->stop) {
    if (!deadline_ms) {
      pthread_cond_wait(&r->progress, &r->mu);
      continue;
    }
    if (now_ms() >= deadline_ms)
      break;
    timed_wait(&r->progress, &r->mu, deadline_ms);
  }
  int stopping = r->stop, failed = r->state == CL_RUNNER_FAILED;
  cl_err why = r->error;
  pthread_mutex_unlock(&r->mu);
  if (pos >= seq)
    return 0;
  if (stopping)
    return cl_err_set(err, CL_EUNAVAILABLE, "projection %s is stopping", r->def->name);
  return cl_err_set(err, CL_ETIMEDOUT,
                    "projection %s has folded %llu of the %llu events asked for%s%s", r->def->name,
                    (unsigned long long)pos, (unsigned long long)seq,
                    failed ? "; it is failing: " : "", failed ? why.msg : "");
}

int cl_runner_rebuild(cl_runner *r, cl_err *err) {
  pthread_mutex_lock(&r->mu);
  uint64_t want = r->rebuild_done + 1;
  r->rebuild_asked = 1;
  pthread_cond_broadcast(&r->wake);
  while (r->rebuild_done < want && !r->stop)
    pthread_cond_wait(&r->progress, &r->mu);
  int done = r->rebuild_done >= want, rc = r->rebuild_rc;
  cl_err e = r->rebuild_err;
  pthread_mutex_unlock(&r->mu);
  if (!done)
    return cl_err_set(err, CL_EUNAVAILABLE, "projection %s is stopping", r->def->name);
  if (rc && err)
    *err = e;
  return rc;
}

void cl_runner_pause(cl_runner *r) {
  pthread_mutex_lock(&r->mu);
  r->paused = 1;
  pthread_mutex_unlock(&r->mu);
}

void cl_runner_resume(cl_runner *r) {
  pthread_mutex_lock(&r->mu);
  r->paused = 0;
  pthread_cond_broadcast(&r->wake);
  pthread_mutex_unlock(&r->mu);
}

/* The decision-support emitter; see cds_emit.h.
 *
 * `mu` guards `stop` and `appended`; the thread reads the projection and
 * appends without it. */
#include "adapters/service/cds_emit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "query/cds/proj.h"
#include "store/feed.h"
#include "store/logkey.h"

#define POLL_MS 500        /* wakes this often to notice a leadership change */
#define ROUND_MAX 64       /* findings appended per round, then the fold catches up */
#define FOLD_WAIT_MS 10000 /* waits this long for the fold of what it appended */

struct cds_emitter {
  cl_log *log;
  cl_runner *r;
  cds_emit_hooks h;
  pthread_t thread;
  pthread_mutex_t mu;
  int stop;
  uint64_t appended;
  /* the round's, thread only */
  uint64_t last_seq;
  int notleader;
  char last_err[CL_ERR_MSG_SIZE];
};

static int stopping(cds_emitter *e) {
  pthread_mutex_lock(&e->mu);
  int s = e->stop;
  pthread_mutex_unlock(&e->mu);
  return s;
}

/* Says an error once (not once per round while it lasts). */
static void complain(cds_emitter *e, const cl_err *err) {
  if (strcmp(e->last_err, err->msg) == 0)
    return;
  snprintf(e->last_err, sizeof e->last_err, "%s", err->msg);
  fprintf(stderr, "clinlogd: cds: emitting a finding: %s (%s)\n", err->msg, cl_errname(err->code));
}

/* The wall clock, in ns since the epoch: the one input of device silence
 * that is not in the log (cds_emit.h). */
static int64_t wall_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int emit_one(void *ctx, const uint8_t key[16], const uint8_t *ev, size_t n, cl_err *err) {
  (void)key;
  cds_emitter *e = ctx;
  if (stopping(e))
    return 1;
  cl_node_batch nb;
  int rc = cl_log_node_batch_bytes(e->log, ev, n, &nb, err);
  if (rc)
    return rc; /* no log key (any more): nothing this node can emit */
  uint64_t seq = 0;
  rc = e->h.append(e->h.ctx, &nb.b, &seq, err);
  cl_node_batch_free(&nb);
  switch (rc) {
  case 0:
    if (seq > e->last_seq)
      e->last_seq = seq;
    pthread_mutex_lock(&e->mu);
    e->appended++;
    pthread_mutex_unlock(&e->mu);
    return 0;
  case CL_EERASED: /* the patient's stream was erased meanwhile: its StreamErased drops it */
    return 0;
  case CL_ENOTLEADER:
    e->notleader = 1;
    return 1;
  case CL_EDUPLICATE: /* other bytes under the key (made under another KB?): the key is taken */
    complain(e, err);
    return 0;
  default:
    return rc; /* said, and retried at the next wake-up */
  }
}

static void *run(void *arg) {
  cds_emitter *e = arg;
  (void)pthread_setname_np(pthread_self(), "cds:emit");
  cl_feed *feed = cl_runner_feed(e->r);
  cl_proj *proj = cl_runner_proj(e->r);
  uint64_t seen = 0;
  /* the projection's changes at the last look (cl_proj_changes) and when:
   * most folds change nothing it looks at (the audit trail's records), so
   * it looks again when the state changed, after a failed round, or
   * POLL_MS after its last look (a leadership change, silence deadlines) */
  uint64_t looked = 0;
  int64_t looked_at = 0;
  int again = 1;
  while (!stopping(e)) {
    cl_runner_status st;
    cl_runner_get_status(e->r, &st);
    uint64_t changes = cl_proj_changes(proj);
    int64_t now = cl_feed_now_ms();
    if (st.state == CL_RUNNER_LIVE && (again || changes != looked || now - looked_at >= POLL_MS) &&
        e->h.leader(e->h.ctx)) {
      cl_err err;
      cl_err_clear(&err);
      looked = changes;
      looked_at = now;
      e->last_seq = 0;
      e->notleader = 0;
      int rc = cl_cds_pending(proj, ROUND_MAX, emit_one, e, &err);
      if (rc >= 0 && !e->notleader) /* then the devices whose silence deadline has passed */
        rc = cl_cds_silent_due(proj, wall_ns(), ROUND_MAX, emit_one, e, &err);
      again = rc < 0 || e->notleader;
      if (rc < 0)
        complain(e, &err);
      else
        e->last_err[0] = '\0';
      if (e->last_seq) { /* let the fold see them before looking again */
        cl_err werr;
        (void)cl_runner_wait(e->r, e->last_seq, cl_feed_now_ms() + FOLD_WAIT_MS, &werr);
        again = 1;
        continue;
      }
    }
    cl_err werr;
    uint64_t size = seen;
    (void)cl_feed_wait(feed, seen + 1, cl_feed_now_ms() + POLL_MS, &size, &werr);
    seen = size > seen ? size : seen;
  }
  return NULL;
}

int cds_emit_start(cl_log *log, cl_runner *r, const cds_emit_hooks *h, cds_emitter **out,
                   cl_err *err) {
  cds_emitter *e = calloc(1, sizeof *e);
  if (!e)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  e->log = log;
  e->r = r;
  e->h = *h;
  pthread_mutex_init(&e->mu, NULL);
  if (pthread_create(&e->thread, NULL, run, e) != 0) {
    pthread_mutex_destroy(&e->mu);
    free(e);
    return cl_err_set(err, CL_ENOMEM, "cds: cannot start the emitter's thread");
  }
  *out = e;
  return 0;
}

void cds_emit_stop(cds_emitter *e) {
  if (!e)
    return;
  pthread_mutex_lock(&e->mu);
  e->stop = 1;
  pthread_mutex_unlock(&e->mu);
  pthread_join(e->thread, NULL);
  pthread_mutex_destroy(&e->mu);
  free(e);
}

uint64_t cds_emit_count(cds_emitter *e) {
  pthread_mutex_lock(&e->mu);
  uint64_t n = e->appended;
  pthread_mutex_unlock(&e->mu);
  return n;
}

/* The projection runner (query/runner.c) with the projection state of
 * store/proj.c, through the real `streams` projection (query/streams):
 * kill -9 during catch-up leaves a state equal to a fresh rebuild; a live
 * projection, erasures included, equals its rebuild byte for byte; values
 * and keys hold no plaintext on disk; erasure removes a stream from every
 * index; a changed fold version rebuilds; read-your-writes waits; a failing
 * fold is reported and retried. */
#include <criterion/criterion.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "query/runner.h"
#include "query/streams/streams.h"
#include "store/event.h"
#include "tests/support/testutil.h"

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int64_t in_ms(int64_t ms) { return cl_feed_now_ms() + ms; }

/* Appends `batches` batches of up to `per` events over streams
 * <prefix>-0 .. <prefix>-(nstreams - 1), round robin, leaving out stream
 * `skip` (-1: none; an erased stream takes no events). Batch-signed. */
static void fill(cl_log *log, const cl_signer *admin, int batches, int per, int nstreams,
                 const char *prefix, int skip) {
  for (int b = 0; b < batches; b++) {
    uint8_t *evs[128];
    size_t lens[128], n = 0;
    for (int i = 0; i < per; i++) {
      int s = (b * per + i) % nstreams;
      if (s == skip)
        continue;
      char stream[64];
      snprintf(stream, sizeof stream, "%s-%d", prefix, s);
      evs[n] = cl_test_event(stream, "admin", "CANARY-NOTE", NULL, &lens[n]);
      n++;
    }
    cl_append_result r;
    cl_err err;
    cr_assert_eq(cl_test_append(log, admin, evs, lens, n, 1, NULL, 0, 0, &r, &err), 0, "%s",
                 err.msg);
    cl_append_result_free(&r);
    for (size_t i = 0; i < n; i++)
      free(evs[i]);
  }
}

static uint64_t state_digest(cl_runner *r, uint8_t out[32]) {
  return cl_test_proj_digest(cl_runner_proj(r), out);
}

static void wait_head(cl_runner *r, cl_log *log) {
  uint64_t size;
  cl_log_head(log, &size, NULL);
  cl_err err;
  cr_assert_eq(cl_runner_wait(r, size, in_ms(120000), &err), 0, "%s", err.msg);
}

static cl_runner *start(cl_log *log, const cl_projection *def, size_t batch) {
  cl_runner_options o;
  cl_runner_options_init(&o);
  o.batch_events = batch;
  cl_runner *r;
  cl_err err;
  cr_assert_eq(cl_runner_start(log, def, &o, &r, &err), 0, "%s", err.msg);
  return r;
}

/* Rebuilds in place and checks the state is the same, byte for byte. */
static void assert_rebuild_equal(cl_runner *r, cl_log *log) {
  uint8_t live[32], rebuilt[32];
  uint64_t nl = state_digest(r, live);
  cl_err err;
  cr_assert_eq(cl_runner_rebuild(r, &err), 0, "%s", err.msg);
  wait_head(r, log);
  uint64_t nr = state_digest(r, rebuilt);
  cr_assert_eq(nr, nl, "rebuilt holds %llu entries, live %llu", (unsigned long long)nr,
               (unsigned long long)nl);
  cr_assert_arr_eq(rebuilt, live, 32, "rebuilt state differs from the live one");
  cl_runner_status st;
  cl_runner_get_status(r, &st);
  cr_assert_eq(st.rebuilds, 1);
}

/* Counts the streams a listing gives, by their number. */
typedef struct page {
  int *seen;
  int *total;
} page;

static int collect(void *ctx, Clinlog__V1__StreamInfo *info, cl_err *e) {
  (void)e;
  page *pg = ctx;
  const char *dash = strrchr(info->stream, '-');
  int i = dash ? atoi(dash + 1) : -1;
  if (i >= 0 && i < 10)
    pg->seen[i]++;
  (*pg->total)++;
  clinlog__v1__stream_info__free_unpacked(info, NULL);
  return 0;
}

/* ------------------------------------------------------------------ */

Test(runner, kill9_during_catch_up_equals_a_fresh_rebuild, .timeout = 600) {
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("runk", &dir, &admin, 1000);
  fill(log, &admin, 150, 100, 40, "patient", -1);
  cl_test_erase(log, &admin, "patient-7");
  fill(log, &admin, 50, 100, 40, "patient", 7);
  cl_test_erase(log, &admin, "patient-11");
  uint64_t size;
  cl_log_head(log, &size, NULL);
  cl_log_close(log);
  cl_test_kill9_catch_up(dir, &cl_streams_projection, size);
  log = cl_test_log_open(dir, 1000);
  cl_runner *r = start(log, &cl_streams_projection, 50);
  wait_head(r, log);
  assert_rebuild_equal(r, log);
  cl_err err;
  Clinlog__V1__StreamInfo *si;
  cr_assert_eq(cl_streams_get(cl_runner_proj(r), log, "patient-7", &si, &err), CL_ENOTFOUND);
  cr_assert_eq(cl_streams_get(cl_runner_proj(r), log, "patient-8", &si, &err), 0, "%s", err.msg);
  cr_assert_eq(si->version, 500);
  clinlog__v1__stream_info__free_unpacked(si, NULL);
  cl_runner_stop(r);
  cl_log_close(log);
  cl_signer_free(&admin);
  cl_test_rmtree(dir);
  free(dir);
}

Test(runner, live_equals_rebuilt_with_erasures_and_leaves_no_plaintext, .timeout = 300) {
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("runl", &dir, &admin, 1000);
  cl_runner *r = start(log, &cl_streams_projection, 64);
  fill(log, &admin, 10, 50, 10, "patient-CANARYSTREAM", -1);
  fill(log, &admin, 4, 25, 5, "device", -1);
  wait_head(r, log);                                    /* folded while readable... */
  cl_test_erase(log, &admin, "patient-CANARYSTREAM-3"); /* ...then erased */
  fill(log, &admin, 5, 20, 10, "patient-CANARYSTREAM", 3);
  wait_head(r, log);
  cl_err err;
  cl_proj *p = cl_runner_proj(r);

  /* what the index says */
  Clinlog__V1__StreamInfo *si;
  cr_assert_eq(cl_streams_get(p, log, "patient-CANARYSTREAM-3", &si, &err), CL_ENOTFOUND,
               "an erased stream vanishes");
  cr_assert_eq(cl_streams_get(p, log, "patient-CANARYSTREAM-4", &si, &err), 0, "%s", err.msg);
  cr_assert_str_eq(si->stream, "patient-CANARYSTREAM-4");
  cr_assert_str_eq(si->category, "patient");
  cr_assert_eq(si->version, 60);
  cr_assert_eq(si->n_counts, 1);
  cr_assert_eq(si->counts[0]->event_type, CLINLOG__V1__EVENT__BODY_OBSERVATION_RECORDED);
  cr_assert_str_eq(si->counts[0]->name, "ObservationRecorded");
  cr_assert_eq(si->counts[0]->count, 60);
  cr_assert_lt(si->first_seq, si->last_seq);
  clinlog__v1__stream_info__free_unpacked(si, NULL);

  /* the category lists every live patient stream once, in pages */
  int seen[10] = {0}, total = 0, more = 1;
  uint8_t after[32], next[32];
  const uint8_t *ap = NULL;
  while (more) {
    page pg = {seen, &total};
    cr_assert_eq(cl_streams_list(p, "patient", ap, 3, collect, &pg, next, &more, &err), 0, "%s",
                 err.msg);
    memcpy(after, next, 32);
    ap = after;
  }
  cr_assert_eq(total, 9, "nine patient streams remain (%d)", total);
  for (int i = 0; i < 10; i++)
    cr_assert_eq(seen[i], i == 3 ? 0 : 1, "patient stream %d listed %d times", i, seen[i]);

  /* the type index holds every remaining observation, and none of the erased stream */
  uint64_t seqs[4000], nf;
  size_t n;
  cr_assert_eq(cl_streams_by_type(p, CLINLOG__V1__EVENT__BODY_OBSERVATION_RECORDED, 1, 4000, seqs,
                                  &n, &nf, &err),
               0, "%s", err.msg);
  cr_assert_eq(n, 500 + 100 + 90 - 50, "observations indexed: %zu", n);
  cr_assert_eq(nf, 0);
  for (size_t i = 1; i < n; i++)
    cr_assert_gt(seqs[i], seqs[i - 1]);
  size_t n2;
  cr_assert_eq(cl_streams_by_type(p, CLINLOG__V1__EVENT__BODY_OBSERVATION_RECORDED, seqs[10], 5,
                                  seqs, &n2, &nf, &err),
               0);
  cr_assert_eq(n2, 5);
  cr_assert_gt(nf, seqs[4]);

  assert_rebuild_equal(r, log);
  cl_runner_stop(r);
  cl_log_close(log); /* flush every family to table files */
  cr_assert_not(cl_test_tree_contains(dir, "CANARYSTREAM", 12),
                "a stream name in plaintext on disk (projection keys or values?)");
  cr_assert_not(cl_test_tree_contains(dir, "CANARY-NOTE", 11), "event content on disk");
  cl_signer_free(&admin);
  cl_test_rmtree(dir);
  free(dir);
}

Test(runner, a_changed_fold_version_rebuilds, .timeout = 120) {
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("runv", &dir, &admin, 1000);
  fill(log, &admin, 4, 50, 7, "patient", -1);
  cl_runner *r = start(log, &cl_streams_projection, 64);
  wait_head(r, log);
  uint8_t v1[32], v2[32];
  uint64_t n1 = state_digest(r, v1);
  cl_runner_stop(r);
  /* the same fold under a new version number: the stored state is dropped */
  cl_projection next = cl_streams_projection;
  next.version = cl_streams_projection.version + 1;
  cl_runner_options o;
  cl_runner_options_init(&o);
  o.start_paused = 1;
  cl_err err;
  cr_assert_eq(cl_runner_start(log, &next, &o, &r, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_proj_position(cl_runner_proj(r)), 0, "a new version starts from event 1");
  cl_runner_resume(r);
  wait_head(r, log);
  uint64_t n2 = state_digest(r, v2);
  cr_assert_eq(n1, n2);
  cr_assert_arr_neq(v1, v2, 32, "the version is part of the state");
  cl_runner_stop(r);
  /* the same version again: resumes, nothing refolded */
  r = start(log, &next, 64);
  cl_runner_status st;
  cl_runner_get_status(r, &st);
  uint64_t size;
  cl_log_head(log, &size, NULL);
  cr_assert_eq(st.position, size);
  cl_runner_stop(r);
  cl_log_close(log);
  cl_signer_free(&admin);
  cl_test_rmtree(dir);
  free(dir);
}

Test(runner, read_your_writes_status_and_lag, .timeout = 120) {
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("runw", &dir, &admin, 1000);
  cl_runner *r = start(log, &cl_streams_projection, 64);
  cl_err err;
  for (int i = 0; i < 20; i++) {
    uint64_t seq;
    cr_assert_eq(cl_test_append1(log, &admin, "patient-ryw", "admin", NULL, &seq, &err), 0);
    cr_assert_eq(cl_runner_wait(r, seq, in_ms(10000), &err), 0, "%s", err.msg);
    Clinlog__V1__StreamInfo *si;
    cr_assert_eq(cl_streams_get(cl_runner_proj(r), log, "patient-ryw", &si, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(si->version, (uint64_t)i + 1, "the read sees the write it waited for");
    clinlog__v1__stream_info__free_unpacked(si, NULL);
  }
  cl_runner_status st;
  cl_runner_get_status(r, &st);
  cr_assert_eq(st.lag, 0);
  cr_assert_str_eq(cl_runner_state_name(st.state), "live");
  cl_runner_pause(r);
  sleep_ms(50);
  uint64_t seq;
  cr_assert_eq(cl_test_append1(log, &admin, "patient-ryw", "admin", NULL, &seq, &err), 0);
  cr_assert_eq(cl_runner_wait(r, seq, in_ms(200), &err), CL_ETIMEDOUT);
  cr_assert(strstr(err.msg, "folded"), "%s", err.msg);
  cl_runner_get_status(r, &st);
  cr_assert_eq(st.lag, 1);
  cr_assert_str_eq(cl_runner_state_name(st.state), "paused");
  cl_runner_resume(r);
  cr_assert_eq(cl_runner_wait(r, seq, in_ms(10000), &err), 0, "%s", err.msg);
  cl_runner_stop(r);
  cl_log_close(log);
  cl_signer_free(&admin);
  cl_test_rmtree(dir);
  free(dir);
}

Test(runner, a_live_runner_lingers_until_a_batch_fills_or_a_reader_waits, .timeout = 120) {
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("runz", &dir, &admin, 1000);
  cl_runner_options o;
  cl_runner_options_init(&o);
  o.batch_events = 100;
  o.linger_ms = 60000; /* nothing but a full batch or a reader ends it */
  cl_runner *r;
  cl_err err;
  cr_assert_eq(cl_runner_start(log, &cl_streams_projection, &o, &r, &err), 0, "%s", err.msg);
  uint64_t seq;
  cr_assert_eq(cl_test_append1(log, &admin, "patient-l", "admin", NULL, &seq, &err), 0);
  cr_assert_eq(cl_runner_wait(r, seq, in_ms(10000), &err), 0, "a reader does not wait: %s",
               err.msg);
  cl_runner_status st;
  for (int i = 0; i < 50; i++) { /* live again after that fold */
    cl_runner_get_status(r, &st);
    if (st.state == CL_RUNNER_LIVE && st.lag == 0)
      break;
    sleep_ms(10);
  }
  /* fewer than a batch, nobody waiting: the runner waits for more */
  cr_assert_eq(cl_test_append1(log, &admin, "patient-l", "admin", NULL, &seq, &err), 0);
  sleep_ms(300);
  cl_runner_get_status(r, &st);
  cr_assert_eq(st.lag, 1, "lingering with one event new (lag %llu)", (unsigned long long)st.lag);
  cr_assert_str_eq(cl_runner_state_name(st.state), "live");
  /* a parked reader says what it wants: folded at once */
  cl_runner_want(r, seq);
  for (int i = 0; i < 500 && cl_proj_position(cl_runner_proj(r)) < seq; i++)
    sleep_ms(10);
  cr_assert_eq(cl_proj_position(cl_runner_proj(r)), seq, "cl_runner_want ends the linger");
  /* a full batch ends it too */
  fill(log, &admin, 1, 100, 3, "patient-m", -1);
  uint64_t size;
  cl_log_head(log, &size, NULL);
  for (int i = 0; i < 500 && cl_proj_position(cl_runner_proj(r)) < size; i++)
    sleep_ms(10);
  cr_assert_eq(cl_proj_position(cl_runner_proj(r)), size, "a full batch is folded");
  cl_runner_stop(r);
  cl_log_close(log);
  cl_signer_free(&admin);
  cl_test_rmtree(dir);
  free(dir);
}

/* What a watcher of the runner's progress feed saw when told of `want`. */
typedef struct seen_state {
  cl_runner *r;
  uint64_t want;
  _Atomic int state; /* -1 until told */
} seen_state;

static void on_progress(void *ctx, uint64_t size) {
  seen_state *s = ctx;
  if (size < s->want || atomic_load(&s->state) != -1)
    return;
  cl_runner_status st;
  cl_runner_get_status(s->r, &st);
  atomic_store(&s->state, st.state);
}

/* The cds emitter sleeps on the progress feed and acts only when the
 * runner is live: the fold that reaches the head must read as live to the
 * watcher it wakes, or that watcher sleeps until the next commit (alerts
 * were late by up to the emitter's 500 ms poll). */
Test(runner, a_watcher_woken_by_the_fold_that_reaches_the_head_sees_it_live, .timeout = 120) {
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("runlive", &dir, &admin, 1000);
  cl_runner_options o;
  cl_runner_options_init(&o);
  o.linger_ms = 0;
  cl_runner *r;
  cl_err err;
  cr_assert_eq(cl_runner_start(log, &cl_streams_projection, &o, &r, &err), 0, "%s", err.msg);
  wait_head(r, log);
  for (int round = 0; round < 20; round++) {
    uint64_t size;
    cl_log_head(log, &size, NULL);
    seen_state s = {.r = r, .want = size + 1, .state = -1};
    cl_feed_watch w = {0};
    cl_feed_add(cl_runner_feed(r), &w, on_progress, &s);
    uint64_t seq;
    cr_assert_eq(cl_test_append1(log, &admin, "patient-live", "admin", NULL, &seq, &err), 0);
    cr_assert_eq(cl_runner_wait(r, seq, in_ms(10000), &err), 0, "%s", err.msg);
    /* the wait ends when the position is committed; the runner calls the
     * feed's watchers just after (runner.c, published): give it the time
     * (a sanitizer build's thread may be slow to get there) */
    for (int i = 0; i < 10000 && atomic_load(&s.state) == -1; i++)
      usleep(1000);
    cl_feed_remove(cl_runner_feed(r), &w);
    int seen = atomic_load(&s.state);
    cr_assert_eq(seen, CL_RUNNER_LIVE, "round %d: the watcher saw %s", round,
                 seen < 0 ? "nothing" : cl_runner_state_name(seen));
  }
  cl_runner_stop(r);
  cl_log_close(log);
  cl_signer_free(&admin);
  cl_test_rmtree(dir);
  free(dir);
}

/* A projection whose fold fails on one event until it is told not to. */
static volatile int fail_at;
static int flaky_fold(cl_fold_ctx *f, const cl_event_view *ev, cl_err *err) {
  if ((int)ev->seq == fail_at)
    return cl_err_set(err, CL_EINVAL, "cannot fold this one");
  uint8_t k[8];
  for (int i = 0; i < 8; i++)
    k[i] = (uint8_t)(ev->seq >> (56 - 8 * i));
  return cl_proj_put(f->txn, 0, k, 8, "", 0, err);
}

Test(runner, a_failing_fold_is_reported_and_retried, .timeout = 120) {
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("runf", &dir, &admin, 1000);
  fill(log, &admin, 2, 10, 3, "patient", -1);
  static const char *const fams[] = {"seen"};
  cl_projection flaky = {
      .name = "flaky", .version = 1, .families = fams, .nfamilies = 1, .fold = flaky_fold};
  fail_at = 12;
  cl_runner *r = start(log, &flaky, 4);
  cl_err err;
  cr_assert_eq(cl_runner_wait(r, 22, in_ms(1500), &err), CL_ETIMEDOUT);
  cr_assert(strstr(err.msg, "cannot fold this one"), "the wait says why: %s", err.msg);
  cl_runner_status st;
  cl_runner_get_status(r, &st);
  cr_assert_str_eq(cl_runner_state_name(st.state), "failed");
  cr_assert(strstr(st.error.msg, "folding event 12"), "%s", st.error.msg);
  cr_assert_eq(st.position, 8, "the state stays at the last good batch, 5..8 (%llu)",
               (unsigned long long)st.position);
  fail_at = 0; /* fixed: the retry goes through */
  cr_assert_eq(cl_runner_wait(r, 22, in_ms(10000), &err), 0, "%s", err.msg);
  cl_runner_get_status(r, &st);
  cr_assert_eq(st.error.code, 0);
  cl_runner_stop(r);
  cl_log_close(log);
  cl_signer_free(&admin);
  cl_test_rmtree(dir);
  free(dir);
}

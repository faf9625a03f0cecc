/* The load generator (bench/loadgen.h) every append benchmark and its
 * peers run through, on calls that sleep a known time: the window is
 * honoured, every thread runs, each counted call has its latency, the
 * warm-up and prep stay out of the figures, the open loop keeps its
 * schedule (and names its slowest calls with when they were due), and a
 * failing call stops the run with its thread and reason. */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bench/loadgen.h"

typedef struct tctx {
  atomic_size_t calls; /* calls made, counted or not */
  double call_s;       /* each call sleeps this long */
  double first_s;      /* > 0: the first call sleeps this long instead */
  double prep_s;       /* each prep sleeps this long */
  size_t fail_at;      /* > 0: the fail_at-th call fails */
  size_t stop_after;   /* > 0: nothing left after this many calls */
  size_t events;       /* what each call carries */
} tctx;

static void nap(double s) {
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  nanosleep(&ts, NULL);
}

static int t_prep(void *ctx, size_t *events, char *why, size_t whyn) {
  (void)events, (void)why, (void)whyn;
  tctx *c = ctx;
  if (c->prep_s > 0)
    nap(c->prep_s);
  return 0;
}

static int t_call(void *ctx, size_t *events, char *why, size_t whyn) {
  tctx *c = ctx;
  size_t n = atomic_fetch_add(&c->calls, 1) + 1;
  if (c->stop_after && n > c->stop_after)
    return 1;
  nap(n == 1 && c->first_s > 0 ? c->first_s : c->call_s);
  if (c->fail_at && n == c->fail_at) {
    snprintf(why, whyn, "disk on fire at call %zu", n);
    return -1;
  }
  *events = c->events;
  return 0;
}

static tctx ctxs[8];

static bench_load load(int threads, double seconds, double call_s) {
  memset(ctxs, 0, sizeof ctxs);
  for (int i = 0; i < 8; i++) {
    ctxs[i].call_s = call_s;
    ctxs[i].events = 3;
  }
  bench_load l = {.threads = threads,
                  .ctx = ctxs,
                  .ctx_size = sizeof ctxs[0],
                  .call = t_call,
                  .seconds = seconds};
  return l;
}

static size_t calls_made(int threads) {
  size_t n = 0;
  for (int i = 0; i < threads; i++)
    n += atomic_load(&ctxs[i].calls);
  return n;
}

Test(loadgen, window_threads_and_latencies) {
  bench_load l = load(4, 0.4, 0.002);
  bench_load_result r;
  cr_assert_eq(bench_load_run(&l, &r), 0, "%s", r.why);
  cr_assert(!r.failed);
  /* the window, plus the last call and the joins (a loaded machine's
   * wake-ups included) */
  cr_assert(r.elapsed >= 0.4 && r.elapsed < 0.4 + 0.2, "elapsed %.3f", r.elapsed);
  size_t sum = 0;
  for (int i = 0; i < 4; i++) {
    /* 2 ms calls for 0.4 s: near 200 each; a loaded machine slows them */
    cr_assert_gt(r.thread_ops[i], 40, "thread %d ran %zu calls", i, r.thread_ops[i]);
    cr_assert_leq(r.thread_ops[i], 200, "thread %d ran %zu calls", i, r.thread_ops[i]);
    sum += r.thread_ops[i];
  }
  cr_assert_eq(sum, r.ops);
  cr_assert_eq(calls_made(4), r.ops, "every call made is counted, no other");
  cr_assert_eq(r.events, 3 * r.ops);
  for (size_t i = 0; i < r.ops; i++) {
    cr_assert(r.lat[i] >= 0.002, "latency %zu: %g s under the call's 2 ms", i, r.lat[i]);
    cr_assert(i == 0 || r.lat[i - 1] <= r.lat[i], "sorted");
    cr_assert(r.sent[i] == r.lat[i] || r.sent[i] <= r.lat[i]);
  }
  bench_load_result_free(&r);
}

Test(loadgen, warmup_and_prep_stay_out) {
  bench_load l = load(2, 0.3, 0.001);
  l.warmup = 0.5;
  l.prep = t_prep;
  ctxs[0].prep_s = ctxs[1].prep_s = 0.01;
  bench_load_result r;
  cr_assert_eq(bench_load_run(&l, &r), 0, "%s", r.why);
  cr_assert(r.elapsed >= 0.3 && r.elapsed < 0.3 + 0.2, "elapsed %.3f: the warm-up is not in it",
            r.elapsed);
  cr_assert_gt(calls_made(2), r.ops + 2, "warm-up calls made (%zu) and not counted (%zu)",
               calls_made(2), r.ops);
  cr_assert_gt(r.ops, 10);
  /* 1 ms calls after 10 ms preps: the prep is outside the latencies (with
   * it, none would be under 11 ms) */
  cr_assert(r.lat[r.ops / 2] < 0.01, "median latency %g s holds the prep", r.lat[r.ops / 2]);
  cr_assert(r.lat[0] >= 0.001, "min latency %g s under the call's 1 ms", r.lat[0]);
  bench_load_result_free(&r);
}

Test(loadgen, a_failing_call_stops_the_run) {
  bench_load l = load(4, 10, 0.001);
  ctxs[2].fail_at = 5;
  bench_load_result r;
  cr_assert_eq(bench_load_run(&l, &r), -1);
  cr_assert(r.failed);
  cr_assert_str_eq(r.why, "thread 2: disk on fire at call 5");
  cr_assert(r.elapsed < 2, "every thread stopped (%.3f s of 10)", r.elapsed);
  cr_assert_eq(r.thread_ops[2], 4, "the calls before the failure are kept");
  bench_load_result_free(&r);
}

Test(loadgen, nothing_left_ends_a_thread) {
  bench_load l = load(3, 10, 0.0005);
  for (int i = 0; i < 3; i++)
    ctxs[i].stop_after = 7;
  bench_load_result r;
  cr_assert_eq(bench_load_run(&l, &r), 0, "%s", r.why);
  cr_assert_eq(r.ops, 21);
  cr_assert(r.elapsed < 2, "%.3f s", r.elapsed);
  bench_load_result_free(&r);
}

Test(loadgen, open_loop_keeps_its_schedule) {
  /* 2 threads, one call each every 50 ms for 0.6 s: 12 scheduled calls
   * each, all made, late or not */
  bench_load l = load(2, 0.6, 0.001);
  l.interval = 0.05;
  ctxs[0].first_s = 0.16; /* thread 0's calls due at 50, 100 and 150 ms start at 160 ms */
  bench_load_result r;
  cr_assert_eq(bench_load_run(&l, &r), 0, "%s", r.why);
  cr_assert_eq(r.ops, 24);
  cr_assert_eq(r.thread_ops[0], 12);
  cr_assert_eq(r.thread_ops[1], 12);
  cr_assert(r.elapsed >= 0.55 && r.elapsed < 0.6 + 0.2, "elapsed %.3f", r.elapsed);
  size_t late = 0, slow_sends = 0;
  for (size_t i = 0; i < r.ops; i++) {
    cr_assert(r.sent[i] <= r.lat[i], "from the schedule is never less than from the send");
    late += r.lat[i] > 0.04;
    slow_sends += r.sent[i] > 0.04;
  }
  /* the slow call, then at least two late ones counted from their
   * scheduled time (110 and 60 ms), not from their send */
  cr_assert_geq(late, slow_sends + 2,
                "%zu calls over 40 ms from their schedule, %zu from their send", late, slow_sends);
  /* the slowest calls, slowest first, are the latencies' top, with when
   * each was due: the slow call at 0 s, then the ones due at 50 and 100 ms */
  cr_assert_eq(r.nslowest, BENCH_LOAD_SLOWEST);
  for (size_t i = 0; i < r.nslowest; i++)
    cr_assert_eq(r.slowest[i].lat, r.lat[r.ops - 1 - i], "slowest %zu", i);
  cr_assert(r.slowest[0].at >= 0 && r.slowest[0].at < 0.01, "at %.3f", r.slowest[0].at);
  cr_assert_geq(r.slowest[0].lat, 0.16);
  cr_assert(r.slowest[1].at > 0.045 && r.slowest[1].at < 0.055, "at %.3f", r.slowest[1].at);
  cr_assert(r.slowest[2].at > 0.095 && r.slowest[2].at < 0.105, "at %.3f", r.slowest[2].at);
  bench_load_result_free(&r);
}

Test(loadgen, bad_arguments_are_named) {
  bench_load l = load(0, 1, 0.001);
  bench_load_result r;
  cr_assert_eq(bench_load_run(&l, &r), -1);
  cr_assert_str_eq(r.why, "bench_load_run: threads must be at least 1");
  bench_load_result_free(&r);
  l = load(1, 0, 0.001);
  cr_assert_eq(bench_load_run(&l, &r), -1);
  cr_assert_str_eq(r.why, "bench_load_run: seconds must be above 0");
  bench_load_result_free(&r);
  l = load(1, 1, 0.001);
  l.call = NULL;
  cr_assert_eq(bench_load_run(&l, &r), -1);
  cr_assert_str_eq(r.why, "bench_load_run: no call to measure");
  bench_load_result_free(&r);
}

/* clinlog-bench projection: how fast a projection folds the log, against
 * the raw limit of reading it.
 *
 *   clinlog-bench projection [--dir D] [--events N] [--quick] [--json]
 *
 * Fills a store with N events (the shared ~500-byte ObservationRecorded
 * over 5000 patient streams, in batch-signed batches of 1000, sync off),
 * then in the same run:
 *  - read: cl_log_read_all over every event with a callback that does
 *    nothing (each event decoded and decrypted: the floor of any fold);
 *  - catch-up: the `streams` projection from event 1 to the head (read,
 *    fold, sealed writes, one commit per 512 events);
 *  - rebuild: the same again after cl_runner_rebuild;
 *  - live: appends of batches of 64 while the projection follows, and the
 *    lag the appender sees (p50/p99 of the time from an append's return
 *    to its seq being folded).
 * Ratios are against the read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bench/benchutil.h"
#include "bench/popgen.h"
#include "bench/workload.h"
#include "query/runner.h"
#include "query/streams/streams.h"
#include "store/log.h"

int bench_proj_main(int argc, char **argv);

static int noop(void *ctx, const cl_event_view *v, cl_err *err) {
  (void)v, (void)err;
  (*(uint64_t *)ctx)++;
  return 0;
}

static double fold_all(cl_log *log, cl_runner *r, uint64_t head) {
  double t0 = bench_mono();
  cl_err err;
  if (cl_runner_wait(r, head, 0, &err)) {
    fprintf(stderr, "projection: %s\n", err.msg);
    exit(1);
  }
  (void)log;
  return bench_mono() - t0;
}

int bench_proj_main(int argc, char **argv) {
  const char *base = "/tmp/clinlog-bench";
  uint64_t events = 200000;
  int json = 0;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--dir") && i + 1 < argc)
      base = argv[++i];
    else if (!strcmp(argv[i], "--events") && i + 1 < argc)
      events = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--quick"))
      events = 50000;
    else if (!strcmp(argv[i], "--json"))
      json = 1;
    else {
      fprintf(stderr, "usage: clinlog-bench projection [--dir D] [--events N] [--quick] [--json]\n");
      return 2;
    }
  }
  events = (events + 999) / 1000 * 1000;
  cl_err err;
  if (cl_crypto_init(&err))
    return 1;
  char dir[4096];
  cl_signer admin;
  cl_log_options o;
  cl_log *log = bench_gen_log(base, "proj", &admin, &o, dir);
  unsigned seed = 4242;
  for (uint64_t done = 0; done < events; done += 1000) {
    bench_batch b;
    bench_batch_make(&b, 1000, &admin, &seed);
    cl_append_result r;
    if (cl_log_append(log, &b.b, &r, &err)) {
      fprintf(stderr, "append: %s\n", err.msg);
      return 1;
    }
    cl_append_result_free(&r);
    bench_batch_free(&b);
  }
  uint64_t head;
  cl_log_head(log, &head, NULL);

  /* the floor: read (decode, decrypt) everything */
  uint64_t n = 0;
  double t0 = bench_mono();
  if (cl_log_read_all(log, 1, 0, noop, &n, &err)) {
    fprintf(stderr, "read: %s\n", err.msg);
    return 1;
  }
  double t_read = bench_mono() - t0;

  cl_runner *r;
  if (cl_runner_start(log, &cl_streams_projection, NULL, &r, &err)) {
    fprintf(stderr, "projection: %s\n", err.msg);
    return 1;
  }
  double t_catch = fold_all(log, r, head);
  if (cl_runner_rebuild(r, &err)) {
    fprintf(stderr, "rebuild: %s\n", err.msg);
    return 1;
  }
  double t_rebuild = fold_all(log, r, head);

  /* live: append and see how long until the projection has it */
  size_t rounds = 300;
  double *lag = malloc(rounds * sizeof *lag);
  double t_live0 = bench_mono();
  for (size_t i = 0; i < rounds; i++) {
    bench_batch b;
    bench_batch_make(&b, 64, &admin, &seed);
    cl_append_result ar;
    if (cl_log_append(log, &b.b, &ar, &err)) {
      fprintf(stderr, "append: %s\n", err.msg);
      return 1;
    }
    double ta = bench_mono();
    uint64_t last = ar.seq[ar.n - 1];
    cl_append_result_free(&ar);
    bench_batch_free(&b);
    if (cl_runner_wait(r, last, 0, &err)) {
      fprintf(stderr, "live: %s\n", err.msg);
      return 1;
    }
    lag[i] = bench_mono() - ta;
  }
  double t_live = bench_mono() - t_live0;
  double p50, p99;
  bench_percentiles(lag, rounds, &p50, &p99);
  cl_runner_stop(r);
  cl_log_close(log);
  bench_rmrf(dir);
  cl_signer_free(&admin);
  free(lag);

  char machine[256];
  bench_machine(machine, sizeof machine);
  double read_eps = (double)n / t_read, catch_eps = (double)head / t_catch,
         rebuild_eps = (double)head / t_rebuild, live_eps = (double)(rounds * 64) / t_live;
  if (json) {
    printf("{\"machine\":\"%s\",\"events\":%llu,\"read_eps\":%.0f,\"catchup_eps\":%.0f,"
           "\"rebuild_eps\":%.0f,\"catchup_ratio\":%.3f,\"live_eps\":%.0f,\"live_lag_p50_ms\":%.3f,"
           "\"live_lag_p99_ms\":%.3f}\n",
           machine, (unsigned long long)head, read_eps, catch_eps, rebuild_eps,
           catch_eps / read_eps, live_eps, p50 * 1e3, p99 * 1e3);
    return 0;
  }
  printf("clinlog-bench projection — %s; the streams projection over %llu events\n\n", machine,
         (unsigned long long)head);
  printf("%-34s %12s %8s\n", "scenario", "events/s", "ratio");
  printf("%-34s %12.0f %8s\n", "read everything (decrypt), floor", read_eps, "1.00");
  printf("%-34s %12.0f %8.2f\n", "catch-up from event 1", catch_eps, catch_eps / read_eps);
  printf("%-34s %12.0f %8.2f\n", "rebuild", rebuild_eps, rebuild_eps / read_eps);
  printf("%-34s %12.0f %8s   lag p50 %.2f ms, p99 %.2f ms\n", "live (append 64, wait folded)",
         live_eps, "-", p50 * 1e3, p99 * 1e3);
  return 0;
}

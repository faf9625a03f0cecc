/* What the change-feed fan-out benchmarks share (clinlog's Subscribe in
 * bench_grpc.c, etcd's Watch in bench_peer_etcd_watch.c): the bookkeeping
 * of N readers following one writer, and the figures made of it.
 *
 * One writer sends batches of `bs` events, one call each, in order, and
 * notes each call's send time (bench_fan_sent) before sending it; every
 * reader sees every event in log order, so the k-th event a reader gets
 * belongs to batch k / bs, and its delivery latency from the send is its
 * arrival time minus that batch's send time. Same clock (CLOCK_REALTIME,
 * bench_wall_ns) in one process. */
#ifndef CL_BENCH_FANOUT_H
#define CL_BENCH_FANOUT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* The writer's send times, one per batch (written by the writer thread,
 * read by the readers). */
typedef struct bench_fan_clock {
  _Atomic int64_t *sent; /* wall ns; 0: not sent yet */
  size_t nbatches, bs;
} bench_fan_clock;

/* One reader. The reader's thread fills got, t_last, lat_*, err. */
typedef struct bench_fan_reader {
  pthread_t t;
  void *ctx;                    /* the benchmark's own (its client) */
  const bench_fan_clock *clock; /* borrowed */
  atomic_int *ready;            /* incremented once the reader follows the log */
  uint64_t want;                /* events to receive */
  uint64_t got;
  double t_last;      /* bench_mono() of the last delivery */
  double *lat_commit; /* per event: delivery - the server's commit time (s); may be unused */
  double *lat_sent;   /* per event: delivery - the batch's send time (s) */
  int has_commit;     /* lat_commit was filled */
  char err[300];      /* why it stopped early; "" */
} bench_fan_reader;

/* Per fan-out run. Latencies in ms; a rate is events/s. */
typedef struct bench_fanout {
  int readers;
  double writer_eps;                /* events written / the writer's time */
  double call_p50_ms, call_p99_ms;  /* the writer's calls */
  double sub_eps_min, sub_eps_mean; /* per reader, first send to its last delivery */
  double p50_ms, p99_ms;            /* commit to delivery (clinlog only; 0 otherwise) */
  double sent_p50_ms, sent_p99_ms;  /* the writer's send to delivery */
  double server_us;                 /* server CPU µs per event written; -1 unknown */
  int failed;
} bench_fanout;

/* Allocates the clock for nbatches of bs events. Aborts when out of memory. */
void bench_fan_clock_init(bench_fan_clock *c, size_t nbatches, size_t bs);
void bench_fan_clock_free(bench_fan_clock *c);
/* The writer: batch i is about to be sent. */
void bench_fan_sent(bench_fan_clock *c, size_t i);

/* n readers (calloc'd, returned-owned: bench_fan_readers_free), each wanting
 * every event, their latency arrays allocated. Aborts when out of memory. */
bench_fan_reader *bench_fan_readers_make(int n, const bench_fan_clock *c, atomic_int *ready,
                                         void *ctx);
void bench_fan_readers_free(bench_fan_reader *rs, int n);

/* A reader got its next event; committed_ns is the server's commit time in
 * wall ns, or 0 when the protocol has none. */
void bench_fan_note(bench_fan_reader *r, int64_t committed_ns);

/* Joins the n reader threads and fills f's reader figures (rates from t0,
 * the first send, in bench_mono() time), f->failed when one stopped early
 * (its err printed on stderr with `what`). */
void bench_fan_collect(bench_fan_reader *rs, int n, double t0, const char *what, bench_fanout *f);

/* Fills call_p50_ms/call_p99_ms from the writer's per-call latencies (s;
 * sorted in place). */
void bench_fan_calls(bench_fanout *f, double *call_s, size_t n);

#endif

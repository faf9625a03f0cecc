/* What the clinlogd benchmarks (bench_grpc.c, bench_cluster.c) share:
 * pre-signed batches, appends through the load generator (bench/loadgen.h)
 * and their latency percentiles, and the child processes they run
 * (clinlogd, clinlog init). */
#ifndef CL_BENCH_BENCHUTIL_H
#define CL_BENCH_BENCHUTIL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "adapters/grpc/client.h"
#include "adapters/grpc/server.h"
#include "bench/loadgen.h"
#include "store/keys.h"
#include "store/log.h"

/* ---- workload ---- */

typedef struct bench_batch { /* one batch signed by one batch signature */
  Clinlog__V1__AppendBatch b;
  ProtobufCBinaryData *ev;
  Clinlog__V1__Signature sig;
  uint8_t sigbytes[64];
} bench_batch;

/* n fresh events (bench_make_event), signed by `key`. Aborts when out of
 * memory. */
void bench_batch_make(bench_batch *g, size_t n, const cl_signer *key, unsigned *seed);
void bench_batch_free(bench_batch *g);
/* Signs the n events ev (borrowed: they must outlive g) with one batch
 * signature of `key` into g (g->ev stays NULL). Aborts when out of memory. */
void bench_batch_sign(bench_batch *g, const ProtobufCBinaryData *ev, size_t n,
                      const cl_signer *key);

/* ---- logs ---- */

/* A fresh log in dir (removed first) with `admin` as its genesis admin and
 * `principal` (role integration, display name `display`) registered with
 * the key of `feed`; *out open when out is not NULL (else closed). 0, or -1
 * after printing why. */
int bench_log_with_feed(const char *dir, const cl_signer *admin, const cl_signer *feed,
                        const char *principal, const char *display, cl_log **out);

/* Binds the client certificate whose SHA-256 fingerprint (of its DER,
 * lowercase hex) is `sha256` to `principal` in the log in dir (closed
 * again): a CertificateBound event signed by `admin`, as `clinlog auth
 * bind-cert` makes it. 0, or -1 after printing why. */
int bench_log_bind_cert(const char *dir, const cl_signer *admin, const char *principal,
                        const char *sha256, const char *subject);

/* What an ingest benchmark sets up under its directory `base`: an admin
 * key and a feed's key (saved to base/feed.key), a server's data directory
 * (base/server) and a store (base/store, open) each with the feed's
 * principal registered, base/clinlogd.log for the server's output, and
 * free loopback ports. */
typedef struct bench_feed {
  char sdir[4096], ldir[4096], keypath[4200], logpath[4200];
  cl_signer admin, feed;
  cl_log *store;
  int ports[4];
} bench_feed;
/* 0, or -1 after printing why ("clinlog-bench CMD: ..."); nports <= 4. */
int bench_feed_open(bench_feed *f, const char *cmd, const char *base, const char *principal,
                    const char *display, int nports);
void bench_feed_close(bench_feed *f);

/* ---- appends through the load generator (bench/loadgen.h) ---- */

/* Pre-signed batches of `bs` events a run's threads share, each taken once
 * in order (an event id is appended once per log). */
typedef struct bench_pool {
  bench_batch *b;
  size_t n, bs;
  atomic_size_t next; /* the next batch to take */
  atomic_size_t live; /* batches signed in the loop since the last rewind,
                         every one of the n being taken */
} bench_pool;

/* n batches of bs fresh events signed by key. Aborts when out of memory. */
void bench_pool_make(bench_pool *p, size_t n, size_t bs, const cl_signer *key, unsigned *seed);
/* The same batches from the first again (for another log), live reset. */
void bench_pool_rewind(bench_pool *p);
void bench_pool_free(bench_pool *p);

/* A latency CDF as the benches export it: the latency at BENCH_CDF_N fixed
 * quantiles (bench_cdf_q, 0.001 to 1, dense in the tail where systems
 * differ) instead of every sample. */
#define BENCH_CDF_N 24
extern const double bench_cdf_q[BENCH_CDF_N];

/* out[i] = the bench_cdf_q[i]-quantile of sorted[0..n) (ascending) times
 * `scale`; zeros when n is 0. */
void bench_cdf(const double *sorted, size_t n, double scale, double out[BENCH_CDF_N]);

/* Prints `,"cdf_ms":[[q,ms],...]` to stdout: the pairs of bench_cdf_q and
 * cdf_ms (from bench_cdf). */
void bench_cdf_print(const double cdf_ms[BENCH_CDF_N]);

typedef struct bench_result {
  double eps, p50_ms, p99_ms;
  double cdf_ms[BENCH_CDF_N];      /* the batches' latency CDF (bench_cdf) */
  double p90_ms, p999_ms;          /* the same batches' 90th and 99.9th percentiles */
  double sent_p50_ms, sent_p99_ms; /* from the actual send (open loop) */
  bench_load_call slowest[BENCH_LOAD_SLOWEST]; /* the load generator's (seconds) */
  size_t nslowest;
  size_t events;
  int failed;
} bench_result;

/* The figures of a load generator run (l: its latencies in seconds, sorted):
 * events/s over its elapsed time, percentiles and CDF in ms. */
bench_result bench_result_of(const bench_load_result *l);

/* Runs `threads` threads of `call` (after `prep`, may be NULL) with the
 * contexts ctx + i * ctx_size, closed loop for `seconds` (bench/loadgen.h),
 * into *r. 0, or -1 with why set ("thread N: ..."; *r keeps the calls done
 * before the failure). */
int bench_load_closed(int threads, void *ctx, size_t ctx_size, bench_load_fn prep,
                      bench_load_fn call, double seconds, bench_result *r, char *why, size_t whyn);

/* Appends batches of `pool` through `client` (gRPC) or `log` (store level)
 * on `threads` threads for `seconds` (interval > 0: open loop, one batch per
 * thread every `interval` seconds; bench/loadgen.h). When every batch of the
 * pool is taken, a thread signs its next batch with `key` before the call
 * (outside its latency, inside the run's time; pool->live counts them), or
 * stops when key is NULL (a fixed set of batches). A failure is printed
 * ("clinlog-bench: Append: thread N: why") and sets the result's failed. */
bench_result bench_append_run(bench_pool *pool, int threads, cl_client *client, cl_log *log,
                              double seconds, double interval, const cl_signer *key);

/* Appends x to the growing array *v (n used, cap allocated; both 0 and *v
 * NULL at first; the caller frees *v). 0, or -1 when out of memory (*v is
 * left as it was). */
int bench_lat_push(double **v, size_t *n, size_t *cap, double x);

/* Sorts v and picks its median and 99th percentile (0 when n is 0). */
void bench_percentiles(double *v, size_t n, double *p50, double *p99);

/* The q-quantile (0..1) of v[0..n), already sorted ascending: the value
 * at index floor(q*n), clamped to n-1 (0 when n is 0). */
double bench_pct(const double *sorted, size_t n, double q);

/* ---- CPU and memory from /proc ---- */

/* User + system CPU seconds of process `pid` (from /proc/PID/stat), or -1
 * when it cannot be read. */
double bench_proc_cpu_s(pid_t pid);
/* The same for a process tree one level deep: `root` itself, the children
 * it has reaped (cutime + cstime) and its live children. A child that exits
 * between two readings is counted in full by the second (it moves from the
 * live ones to the reaped ones). -1 when root cannot be read. */
double bench_proc_tree_cpu_s(pid_t root);
/* The parent of `pid`, or -1. */
pid_t bench_proc_ppid(pid_t pid);
/* User + system CPU seconds of this process's live threads whose name
 * (comm, digits dropped as by bench_threads_snap) starts with `prefix`,
 * or -1. */
double bench_threads_cpu_s(const char *prefix);
/* Where a process's CPU goes: its threads grouped by name (digits
 * dropped: "rocksdb:high0" and "rocksdb:high1" are "rocksdb:high"), each
 * group's CPU seconds (the scheduler's runtime from schedstat, to the
 * nanosecond; user + system clock ticks where the kernel has none) and
 * context switches (voluntary and not) from /proc/PID/task. Threads that
 * end between two snapshots take their CPU with them: for a server's
 * long-lived threads. */
#define BENCH_THR_NAME 20
#define BENCH_THR_GROUPS 32
typedef struct bench_thread_group {
  char name[BENCH_THR_NAME];
  double cpu_s, switches;
} bench_thread_group;
typedef struct bench_threads {
  bench_thread_group g[BENCH_THR_GROUPS];
  int n;
  double total_s; /* the process's CPU, threads that ended included */
} bench_threads;
/* 0, or -1 when pid's threads cannot be listed. */
int bench_threads_snap(pid_t pid, bench_threads *out);
/* out = b - a per group (a group new in b counts whole), busiest first;
 * the CPU of threads that ended between a and b (the process's total
 * beyond its live threads': an MLLP connection's thread, say) as a group
 * "ended" when over 1 % of it. */
void bench_threads_delta(const bench_threads *a, const bench_threads *b, bench_threads *out);
/* Prints t per unit of work on one line of stdout ("  server CPU by
 * thread, us a message (context switches): raft 170 (2.2), ..."; groups
 * under 1 % of the CPU summed as "other"); nothing when units or the CPU
 * is 0. */
void bench_threads_print(const bench_threads *t, double units, const char *unit);
/* The same as a JSON member to go inside an object:
 * ,"server_threads":[{"name":..,"cpu_us":..,"switches":..},...] per unit. */
void bench_threads_json(const bench_threads *t, double units);
/* User + system CPU seconds of this process (getrusage). */
double bench_self_cpu_s(void);
/* VmHWM (peak resident set) of `pid` in MiB, or -1. */
double bench_proc_hwm_mb(pid_t pid);
/* The proportional set size (Pss, shared pages divided among their users)
 * of `root` and its live children, in MiB, or -1: the memory of a
 * multi-process server without counting shared buffers once per process. */
double bench_proc_tree_pss_mb(pid_t root);

/* ---- time, machine ---- */

void bench_sleep_ms(int ms);
int64_t bench_wall_ns(void);
/* "Linux x86_64, 2 cores" */
void bench_machine(char *out, size_t n);

/* ---- processes ---- */

typedef struct bench_proc {
  pid_t pid;
  int port;        /* the API port the server reported */
  char target[64]; /* "127.0.0.1:port" */
} bench_proc;

/* Starts argv[0] (argv NULL-terminated) with stderr appended to `logpath`
 * and waits (up to 20 s) for its "listening on 127.0.0.1:PORT" line. */
int bench_proc_start(char *const argv[], const char *logpath, bench_proc *p);
/* A plaintext client of a benchmark's server at `target` (calls time out
 * after 120 s). 0, or -1 after saying why on stderr ("WHO: ..."). */
int bench_client_open(const char *target, const char *who, cl_client **out);
/* SIGTERM, then SIGKILL after 20 s; waits for the process. Returns 1 if it
 * had to be killed, else 0. */
int bench_proc_stop(bench_proc *p);
/* SIGKILL and wait. */
void bench_proc_kill(bench_proc *p);
/* Runs argv to completion with stdout and stderr appended to `logpath`;
 * returns its exit status (-1: could not run or killed). */
int bench_run(char *const argv[], const char *logpath);

/* `name` in the directory of this program (argv0 if /proc/self/exe cannot be
 * read). */
void bench_exe_beside(const char *argv0, const char *name, char *out, size_t n);
/* The program `name` (clinlogd, clinlog) a bench command runs: `opt` (its
 * --NAME flag) if given, else beside this program. 0, or -1 after printing
 * "clinlog-bench CMD: PATH: not found (give --NAME PATH)". */
int bench_find_exe(const char *cmd, const char *opt, const char *argv0, const char *name, char *out,
                   size_t n);
/* n distinct loopback TCP ports free right now. Returns 0 or -1. */
int bench_free_ports(int *ports, int n);

/* Serves `services` (n of them; borrowed, must outlive the server) over the
 * request layer svc on a free loopback port, plaintext as clinlogd --dev,
 * no drain at stop, and opens a client of it (*client, cl_client_close
 * before cl_server_stop). The channel connects at its first call. Returns
 * the server, or NULL with the reason in *err (nothing to free). */
struct cl_svc;
cl_server *bench_grpc_serve(struct cl_svc *svc, const cl_grpc_service *services, size_t n,
                            cl_client **client, cl_err *err);

#endif

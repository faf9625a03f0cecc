/* clinlog-bench etcd: etcd 3.4 (Debian's etcd-server), 3 members, the peer
 * that clinlog's 3-node figures (clinlog-bench cluster) are compared with.
 *
 *   clinlog-bench etcd [--etcd PATH] [--dir D] [--quick] [--json] [--seconds S]
 *
 * Starts three etcd processes on free loopback ports (client and peer URLs
 * plain http), data directories and logs under D (default
 * /tmp/clinlog-bench-etcd), a new cluster (--initial-cluster-state new).
 * Durability is etcd's default and cannot be turned down in 3.4: a Put is
 * answered once its Raft entry is committed, i.e. fsynced to the WAL of a
 * majority (the leader's own fsync included), as clinlog's Append on a
 * cluster returns once a majority has it synced.
 *
 * The load generator is the one clinlog's benchmarks use: the clinlog C
 * client (adapters/grpc/client.c, the gRPC C core), here calling
 * /etcdserverpb.KV/Put through cl_client_unary, with the subset of etcd's
 * messages in bench/etcd/rpc.proto. One channel to the leader (found with
 * Maintenance.Status, as clinlog-bench cluster appends to clinlog's
 * leader); `conc` threads share it, each with its own calls, closed loop,
 * for S seconds (5; --quick 1) per scenario, driven by the load generator
 * clinlog's scenarios use (bench/loadgen.h; the key is made before the
 * Put's clock starts). Each Put writes a new key
 * ("ev/" and 32 hex digits of a fresh random id: an append, nothing
 * overwritten) whose value is a serialized benchmark event
 * (bench_make_event, the bytes clinlog's benchmarks append; 256 per thread,
 * reused round robin). One event per call: concurrency 1, 16 and 64.
 *
 * Per scenario: Puts/s; latency p50/p90/p99/p99.9 of one Put (ms); server
 * CPU per Put (µs: utime + stime of the three etcd processes from /proc,
 * before and after); client CPU per Put (getrusage of this process); WAL
 * fsyncs per Put, summed over the three members
 * (etcd_disk_wal_fsync_duration_seconds_count from each member's /metrics,
 * before and after); and at the end each member's peak RSS (VmHWM).
 *
 * Everything is stopped (SIGTERM, SIGKILL after 10 s) and D's member
 * directories removed at the end; the logs too unless something failed. */
#include "bench/bench_peer_etcd.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/benchutil.h"
#include "bench/etcdpeer.h"
#include "bench/loadgen.h"
#include "bench/workload.h"

#define MEMBERS 3
#define MAX_CONC 64
#define BODIES 256 /* distinct values per thread, reused round robin */

/* ---------------------------------------------------------- load */

typedef struct worker {
  cl_client *c; /* shared: one channel to the leader */
  ProtobufCBinaryData body[BODIES];
  size_t b;            /* the next body */
  uint8_t key[3 + 32]; /* the next Put's key (new_key) */
} worker;

/* The load generator's prep: a new key ("ev/" and 32 hex digits of a fresh
 * random id), outside the Put's latency. */
static int new_key(void *ctx, size_t *events, char *why, size_t whyn) {
  (void)events, (void)why, (void)whyn;
  worker *w = ctx;
  static const char hex[] = "0123456789abcdef";
  uint8_t id[16];
  randombytes_buf(id, sizeof id);
  memcpy(w->key, "ev/", 3);
  for (int i = 0; i < 16; i++) {
    w->key[3 + 2 * i] = (uint8_t)hex[id[i] >> 4];
    w->key[4 + 2 * i] = (uint8_t)hex[id[i] & 15];
  }
  return 0;
}

/* The call measured: one Put. */
static int put(void *ctx, size_t *events, char *why, size_t whyn) {
  worker *w = ctx;
  const ProtobufCBinaryData *v = &w->body[w->b++ % BODIES];
  cl_err err;
  if (bench_etcd_put(w->c, w->key, sizeof w->key, v->data, v->len, 0, &err) != 0) {
    snprintf(why, whyn, "Put: %s", err.msg);
    return -1;
  }
  *events = 1;
  return 0;
}

typedef struct scen {
  int conc;
  bench_result r; /* Puts/s, latency of one Put */
  double server_us, client_us, fsyncs_per_put;
} scen;

static int measure(const bench_etcd *e, cl_client *c, worker *ws, scen *s, double seconds,
                   char *why, size_t wn) {
  double fs0 = bench_etcd_wal_fsyncs(e);
  double srv0 = bench_etcd_cpu_s(e), cli0 = bench_self_cpu_s();
  for (int i = 0; i < s->conc; i++)
    ws[i].c = c;
  int rc = bench_load_closed(s->conc, ws, sizeof *ws, new_key, put, seconds, &s->r, why, wn);
  double srv1 = bench_etcd_cpu_s(e), cli1 = bench_self_cpu_s();
  double fs1 = bench_etcd_wal_fsyncs(e);
  if (rc)
    return -1;
  double n = s->r.events ? (double)s->r.events : 1;
  s->server_us = srv0 >= 0 && srv1 >= 0 ? (srv1 - srv0) * 1e6 / n : -1;
  s->client_us = (cli1 - cli0) * 1e6 / n;
  s->fsyncs_per_put = fs0 >= 0 && fs1 >= 0 ? (fs1 - fs0) / n : -1;
  return 0;
}

/* ,"name":v with `prec` decimals, or null when v < 0 (could not be read). */
static void print_num(const char *name, double v, int prec) {
  if (v < 0)
    printf(",\"%s\":null", name);
  else
    printf(",\"%s\":%.*f", name, prec, v);
}

/* ---------------------------------------------------------- main */

static int usage(void) {
  fprintf(stderr, "usage: clinlog-bench etcd [--etcd PATH] [--dir D] [--quick] [--json] "
                  "[--seconds S]\n");
  return 2;
}

int bench_peer_etcd_main(int argc, char **argv) {
  const char *base = "/tmp/clinlog-bench-etcd", *etcd_opt = NULL;
  int quick = 0, json = 0;
  double seconds = 0;
  if (bench_etcd_args(argc, argv, &base, &etcd_opt, &quick, &json, &seconds) != 0)
    return usage();
  if (seconds <= 0)
    seconds = quick ? 1 : 5;
  char etcd[PATH_MAX];
  int prep = bench_etcd_prepare("clinlog-bench etcd", etcd_opt, base, etcd, sizeof etcd);
  if (prep != 0)
    return prep;

  int failed = 0;
  char why[4608] = ""; /* may name D */
  worker *ws = calloc(MAX_CONC, sizeof *ws);
  if (!ws)
    abort();
  unsigned seed = 77;
  size_t body_bytes = 0;
  for (int i = 0; i < MAX_CONC; i++)
    for (int k = 0; k < BODIES; k++) {
      bench_make_event(&ws[i].body[k], &seed);
      body_bytes += ws[i].body[k].len;
    }
  bench_etcd ec;
  if (bench_etcd_up(&ec, etcd, base, MEMBERS, "clinlog-bench etcd", json, why, sizeof why) != 0)
    failed = 1;
  const char *version = ec.version;
  int leader = ec.leader;
  cl_client *lead = ec.lead;
  const bench_etcd_member *ms = ec.ms;

  char machine[128];
  bench_machine(machine, sizeof machine);
  const int concs[3] = {1, 16, 64};
  scen sc[3];
  int nsc = 0;
  if (!failed && !json)
    printf("clinlog-bench etcd — %s; etcd %s, 3 members on loopback (durable: a Put\n"
           "returns once its Raft entry is fsynced by a majority); KV.Put through the\n"
           "leader on one gRPC channel (the clinlog C client), a new key per Put, value\n"
           "%zu bytes (a benchmark event); %.0f s per scenario\n\n"
           "%-4s | %9s %8s %8s %8s %8s | %9s %9s %8s\n",
           machine, version, body_bytes / (MAX_CONC * BODIES), seconds, "conc", "puts/s", "p50 ms",
           "p90 ms", "p99 ms", "p99.9", "srv µs/op", "cli µs/op", "fsync/op");
  for (int ci = 0; ci < 3 && !failed; ci++) {
    scen *s = &sc[nsc];
    memset(s, 0, sizeof *s);
    s->conc = concs[ci];
    if (measure(&ec, lead, ws, s, seconds, why, sizeof why) != 0) {
      failed = 1;
      break;
    }
    nsc++;
    if (!json) {
      printf("%-4d | %9.0f %8.2f %8.2f %8.2f %8.2f | %9.1f %9.1f %8.3f\n", s->conc, s->r.eps,
             s->r.p50_ms, s->r.p90_ms, s->r.p99_ms, s->r.p999_ms, s->server_us, s->client_us,
             s->fsyncs_per_put);
      fflush(stdout);
    } else {
      fprintf(stderr, "  etcd     batch  1 conc %2d: %8.0f ev/s p50 %7.2f ms p99 %7.2f ms\n",
              s->conc, s->r.eps, s->r.p50_ms, s->r.p99_ms);
    }
  }
  double hwm[MEMBERS];
  for (int i = 0; i < MEMBERS; i++)
    hwm[i] = ms[i].pid > 0 ? bench_proc_hwm_mb(ms[i].pid) : -1;
  if (json && nsc) {
    printf("{\"system\":\"etcd\",\"server_version\":\"%s\",\"members\":%d,\"driven\":\"leader\","
           "\"machine\":\"%s\",\"quick\":%s,\"seconds_per_scenario\":%.1f,\"value_bytes\":%zu,"
           "\"key_bytes\":35,\"durable\":true,\"scenarios\":[",
           version, MEMBERS, machine, quick ? "true" : "false", seconds,
           body_bytes / (MAX_CONC * BODIES));
    for (int i = 0; i < nsc; i++) {
      const scen *s = &sc[i];
      printf("%s{\"batch\":1,\"concurrency\":%d,\"events\":%zu,\"events_per_s\":%.0f,"
             "\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f",
             i ? "," : "", s->conc, s->r.events, s->r.eps, s->r.p50_ms, s->r.p90_ms, s->r.p99_ms,
             s->r.p999_ms);
      print_num("server_cpu_us_per_event", s->server_us, 1);
      print_num("client_cpu_us_per_event", s->client_us, 1);
      print_num("fsyncs_per_event", s->fsyncs_per_put, 4);
      bench_cdf_print(s->r.cdf_ms);
      printf("}");
    }
    printf("],\"member_peak_rss_mb\":[");
    for (int i = 0; i < MEMBERS; i++)
      printf(hwm[i] < 0 ? "%snull" : "%s%.1f", i ? "," : "", hwm[i]);
    printf("],\"ok\":%s}\n", failed ? "false" : "true");
  } else if (!json && nsc) {
    printf("\npeak RSS (VmHWM) MB: %s %.1f (leader), %s %.1f, %s %.1f\n", ms[leader].name,
           hwm[leader], ms[(leader + 1) % 3].name, hwm[(leader + 1) % 3], ms[(leader + 2) % 3].name,
           hwm[(leader + 2) % 3]);
  }
  if (failed)
    fprintf(stderr, "clinlog-bench etcd: %s\n", why);

  int hung = bench_etcd_down(&ec, failed);
  if (hung)
    fprintf(stderr, "clinlog-bench etcd: %d member(s) ignored SIGTERM for 10 s and were killed\n",
            hung);
  if (failed)
    fprintf(stderr, "clinlog-bench etcd: logs kept in %s\n", base);
  else
    rmdir(base);
  for (int i = 0; i < MAX_CONC; i++) {
    for (int k = 0; k < BODIES; k++)
      free(ws[i].body[k].data);
  }
  free(ws);
  return failed ? 1 : 0;
}

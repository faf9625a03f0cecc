/* clinlog-bench: the benchmark harness.
 *
 *   clinlog-bench store [--dir D] [--quick] [--json]
 *   clinlog-bench grpc ...   (bench_grpc.c: the same through clinlogd)
 *   clinlog-bench cluster ... (bench_cluster.c: a replicated cluster of clinlogd)
 *   clinlog-bench projection ... (bench_proj.c: folding the log into a projection)
 *   clinlog-bench fhir ...   (bench_fhir.c: the FHIR views on a generated population)
 *   clinlog-bench cds ...    (bench_cds.c: decision support: checker, catch-up, alerts, CDS Hooks)
 *   clinlog-bench ingest ... (bench_ingest.c: home-device readings vs the store and PostgreSQL)
 *   clinlog-bench ingest hl7 ... (bench_ingest_hl7.c: HL7 v2 over MLLP, ACK after commit)
 *   clinlog-bench ingest fhir ... (bench_ingest_fhir.c: FHIR transactions over REST, NDJSON)
 *   clinlog-bench proof ... (bench_proof.c: inclusion and consistency proofs, verify)
 *   clinlog-bench audit ...  (bench_audit.c: clinlogd --audit on vs off, reads and appends)
 *   clinlog-bench pg ...     (bench_peer_pg.c: PostgreSQL 15 as an event table, the peer)
 *   clinlog-bench etcd ...   (bench_peer_etcd.c: 3 etcd 3.4 members, KV.Put; the 3-node peer)
 *   clinlog-bench etcd-watch ... (bench_peer_etcd_watch.c: 1 etcd member, Watch fan-out; the
 *                            peer of Subscribe fan-out)
 *   clinlog-bench raw ...    (bench_raw.c: fsync latency, Ed25519 and SHA-256 rates)
 *
 * Store level: durable appends/s and p50/p99 latency of cl_log_append for
 * batch sizes 1, 64 and 1000, with 1 and 8 concurrent appenders, per-event
 * and batch signatures; in the same run, raw RocksDB synced WriteBatch
 * writes of the same byte volume and concurrency (the limit the store is
 * compared against), and `verify` throughput (hash-only and full).
 * Clients sign their batches before the clock starts: signing is the
 * client's cost, verification the server's. */
#include <math.h>
#include <pthread.h>
#include <rocksdb/c.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench_audit.h"
#include "bench/bench_cluster.h"
#include "bench/bench_grpc.h"
#include "bench/bench_ingest_hl7.h"
#include "bench/bench_peer_etcd.h"
#include "bench/bench_peer_etcd_watch.h"
#include "bench/bench_peer_pg.h"
#include "bench/bench_raw.h"

int bench_proj_main(int argc, char **argv); /* bench_proj.c */
int bench_fhir_main(int argc, char **argv); /* bench_fhir.c */
int bench_cds_main(int argc, char **argv);  /* bench_cds.c */
int bench_ingest_main(int argc, char **argv);      /* bench_ingest.c */
int bench_ingest_fhir_main(int argc, char **argv); /* bench_ingest_fhir.c */
int bench_proof_main(int argc, char **argv);       /* bench_proof.c */
int bench_floor_server_main(int argc, char **argv); /* grpcfloor.c */
#include "bench/workload.h"
#include "clinlog/v1/event.pb-c.h"
#include "clinlog/v1/record.pb-c.h"
#include "store/alloc.h"
#include "store/keys.h"
#include "store/log.h"
#include "store/verify.h"

#define now bench_mono

/* ---------------------------------------------------------- workload */

typedef struct sbatch { /* one pre-signed append */
  Clinlog__V1__AppendBatch b;
  ProtobufCBinaryData *events;
  Clinlog__V1__Signature *sv, **sp, bsig;
  uint8_t (*sigs)[64];
  size_t bytes;
} sbatch;

static void make_batch(sbatch *s, size_t n, int batch_sig, const cl_signer *key, unsigned *seed) {
  memset(s, 0, sizeof *s);
  clinlog__v1__append_batch__init(&s->b);
  s->events = calloc(n, sizeof *s->events);
  s->sigs = malloc(n * 64);
  uint8_t(*h)[32] = malloc(n * 32);
  for (size_t i = 0; i < n; i++) {
    bench_make_event(&s->events[i], seed);
    s->bytes += s->events[i].len;
    cl_event_hash(s->events[i].data, s->events[i].len, h[i]);
  }
  s->b.n_events = n;
  s->b.events = s->events;
  if (batch_sig) {
    cl_sign_batch(key, (const uint8_t(*)[32])h, n, s->sigs[0]);
    clinlog__v1__signature__init(&s->bsig);
    s->bsig.key_id = (ProtobufCBinaryData){32, (uint8_t *)key->pk};
    s->bsig.signature = (ProtobufCBinaryData){64, s->sigs[0]};
    s->b.batch_signature = &s->bsig;
  } else {
    s->sv = calloc(n, sizeof *s->sv);
    s->sp = calloc(n, sizeof *s->sp);
    for (size_t i = 0; i < n; i++) {
      clinlog__v1__signature__init(&s->sv[i]);
      cl_sign_event(key, h[i], s->sigs[i]);
      s->sv[i].key_id = (ProtobufCBinaryData){32, (uint8_t *)key->pk};
      s->sv[i].signature = (ProtobufCBinaryData){64, s->sigs[i]};
      s->sp[i] = &s->sv[i];
    }
    s->b.n_signatures = n;
    s->b.signatures = s->sp;
  }
  free(h);
}

static void free_batch(sbatch *s) {
  for (size_t i = 0; i < s->b.n_events; i++)
    free(s->events[i].data);
  free(s->events);
  free(s->sigs);
  free(s->sv);
  free(s->sp);
}

/* ---------------------------------------------------------- runners */

typedef struct worker {
  pthread_t t;
  cl_log *log;
  rocksdb_t *raw;
  rocksdb_column_family_handle_t **cfs; /* indexed raw: log, merkle, ids, streams */
  int indexed;
  uint64_t next_seq;
  rocksdb_writeoptions_t *wo;
  sbatch *batches;
  size_t nbatches;
  double *lat;
  size_t record_size;
  int failed;
  pthread_barrier_t *go;
} worker;

static void *run_store(void *arg) {
  worker *w = arg;
  pthread_barrier_wait(w->go);
  for (size_t i = 0; i < w->nbatches; i++) {
    cl_append_result r;
    cl_err err;
    double t0 = now();
    if (cl_log_append(w->log, &w->batches[i].b, &r, &err) != 0) {
      fprintf(stderr, "append: %s\n", err.msg);
      w->failed = 1;
      return NULL;
    }
    w->lat[i] = now() - t0;
    cl_append_result_free(&r);
  }
  return NULL;
}

static void *run_raw(void *arg) {
  worker *w = arg;
  /* same bytes either way: record + Merkle entry (~48) + id entry (16+48) +
   * stream entry (40+8), i.e. the record plus 160 bytes of index entries */
  size_t single = w->record_size + 160;
  char *val = malloc(single);
  randombytes_buf(val, single);
  pthread_barrier_wait(w->go);
  for (size_t i = 0; i < w->nbatches; i++) {
    double t0 = now();
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    size_t n = w->batches[i].b.n_events;
    if (w->indexed) /* the same four entries per event as the store */
      bench_raw_put4(wb, w->cfs, n, val, w->record_size, &w->next_seq);
    for (size_t k = 0; !w->indexed && k < n; k++) {
      uint8_t key[16];
      randombytes_buf(key, sizeof key);
      rocksdb_writebatch_put(wb, (const char *)key, 16, val, single);
    }
    char *e = NULL;
    rocksdb_write(w->raw, w->wo, wb, &e);
    rocksdb_writebatch_destroy(wb);
    if (e) {
      fprintf(stderr, "raw write: %s\n", e);
      w->failed = 1;
      break;
    }
    w->lat[i] = now() - t0;
  }
  free(val);
  return NULL;
}

typedef struct result {
  double events_per_s, p50_ms, p99_ms, mb_per_s;
} result;

static result drive(int raw, cl_log *log, rocksdb_t *rdb, rocksdb_writeoptions_t *wo, worker *ws,
                    int threads, rocksdb_column_family_handle_t **cfs) {
  pthread_barrier_t go;
  pthread_barrier_init(&go, NULL, (unsigned)threads + 1);
  size_t total_calls = 0, total_events = 0, total_bytes = 0;
  for (int i = 0; i < threads; i++) {
    ws[i].log = log;
    ws[i].raw = rdb;
    ws[i].wo = wo;
    ws[i].cfs = cfs;
    ws[i].indexed = cfs != NULL;
    ws[i].go = &go;
    ws[i].failed = 0;
    pthread_create(&ws[i].t, NULL, raw ? run_raw : run_store, &ws[i]);
    total_calls += ws[i].nbatches;
    for (size_t k = 0; k < ws[i].nbatches; k++) {
      total_events += ws[i].batches[k].b.n_events;
      total_bytes += ws[i].batches[k].bytes;
    }
  }
  pthread_barrier_wait(&go);
  double t0 = now();
  for (int i = 0; i < threads; i++)
    pthread_join(ws[i].t, NULL);
  double dt = now() - t0;
  pthread_barrier_destroy(&go);
  double *all = malloc(total_calls * sizeof *all);
  size_t n = 0;
  for (int i = 0; i < threads; i++) {
    memcpy(all + n, ws[i].lat, ws[i].nbatches * sizeof *all);
    n += ws[i].nbatches;
  }
  qsort(all, n, sizeof *all, bench_cmp_double);
  result r = {(double)total_events / dt, all[n / 2] * 1e3, all[(size_t)((double)n * 0.99)] * 1e3,
              (double)total_bytes / dt / 1e6};
  free(all);
  return r;
}

int main(int argc, char **argv) {
  cl_malloc_tune_exec(argv); /* store/alloc.h: as clinlogd runs */
  if (argc > 1 && !strcmp(argv[1], "grpc"))
    return bench_grpc_main(argc, argv);
  if (argc > 1 && !strcmp(argv[1], "floor-server")) /* clinlog-bench grpc's (grpcfloor.h) */
    return bench_floor_server_main(argc, argv);
  if (argc > 1 && !strcmp(argv[1], "cluster"))
    return bench_cluster_main(argc, argv);
  if (argc > 1 && !strcmp(argv[1], "projection"))
    return bench_proj_main(argc, argv);
  if (argc > 1 && !strcmp(argv[1], "fhir"))
    return bench_fhir_main(argc, argv);
  if (argc > 1 && !strcmp(argv[1], "cds"))
    return bench_cds_main(argc, argv);
  if (argc > 2 && !strcmp(argv[1], "ingest") && !strcmp(argv[2], "hl7"))
    return bench_ingest_hl7_main(argc, argv);
  if (argc > 2 && !strcmp(argv[1], "ingest") && !strcmp(argv[2], "fhir"))
    return bench_ingest_fhir_main(argc, argv);
  if (argc > 1 && !strcmp(argv[1], "ingest"))
    return bench_ingest_main(argc, argv);
  if (argc > 1 && !strcmp(argv[1], "proof"))
    return bench_proof_main(argc, argv);
  if (argc > 1 && !strcmp(argv[1], "audit"))
    return bench_audit_main(argc, argv);
  if (argc > 1 && !strcmp(argv[1], "pg"))
    return bench_peer_pg_main(argc, argv);
  if (argc > 1 && !strcmp(argv[1], "etcd"))
    return bench_peer_etcd_main(argc, argv);
  if (argc > 1 && !strcmp(argv[1], "etcd-watch"))
    return bench_peer_etcd_watch_main(argc, argv);
  if (argc > 1 && !strcmp(argv[1], "raw"))
    return bench_raw_main(argc, argv);
  const char *base = "/tmp/clinlog-bench";
  int quick = 0, json = 0, only_b = 0, only_t = 0, only_s = -1, no_raw = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--dir") && i + 1 < argc)
      base = argv[++i];
    else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
      char sn[16] = "";
      if (sscanf(argv[++i], "%d:%d:%15s", &only_b, &only_t, sn) < 2) {
        fprintf(stderr, "--only BATCH:THREADS[:batch|per-event]\n");
        return 2;
      }
      only_s = !strcmp(sn, "batch") ? 1 : !strcmp(sn, "per-event") ? 0 : -1;
    } else if (!strcmp(argv[i], "--no-raw"))
      no_raw = 1;
    else if (!strcmp(argv[i], "--quick"))
      quick = 1;
    else if (!strcmp(argv[i], "--json"))
      json = 1;
    else if (strcmp(argv[i], "store")) {
      fprintf(
          stderr,
          "usage: clinlog-bench store [--dir D] [--quick] [--json]\n"
          "                           [--only BATCH:THREADS[:batch|per-event]] [--no-raw]\n"
          "other commands: grpc, cluster, projection, fhir, cds, audit (clinlogd --audit on vs\n"
          "off: reads and appends per second, ratio on/off; clinlog-bench audit --help),\n"
          "pg (PostgreSQL 15 as an event table), etcd (3 etcd 3.4 members, KV.Put),\n"
          "etcd-watch (1 etcd 3.4 member, Watch fan-out: the peer of Subscribe fan-out),\n"
          "raw (fsync, Ed25519, SHA-256 rates), ingest [hl7|fhir] (issue 12's ingest\n"
          "bench), proof (RFC 9162 proofs, their verification, verify of a whole log),\n"
          "floor-server (the gRPC server of clinlog-bench grpc's floor rows)\n");
      return 2;
    }
  }
  cl_err err;
  if (cl_crypto_init(&err))
    return 1;
  mkdir(base, 0700);
  char dir[4096], rawdir[4096];
  snprintf(dir, sizeof dir, "%s/log", base);
  snprintf(rawdir, sizeof rawdir, "%s/raw", base);
  bench_rmrf(dir);
  bench_rmrf(rawdir);
  cl_signer admin;
  cl_signer_generate(&admin, &err);
  cl_log_options o;
  cl_log_options_init(&o);
  o.dir = dir;
  cl_log_genesis g = {.admin_principal = "admin", .admin = &admin};
  if (cl_log_create(&o, &g, &err)) {
    fprintf(stderr, "create: %s\n", err.msg);
    return 1;
  }
  cl_log *log;
  if (cl_log_open(&o, &log, &err)) {
    fprintf(stderr, "open: %s\n", err.msg);
    return 1;
  }
  rocksdb_options_t *ro = rocksdb_options_create();
  rocksdb_options_set_create_if_missing(ro, 1);
  rocksdb_options_set_create_missing_column_families(ro, 1);
  rocksdb_options_increase_parallelism(ro, 2);
  char *e = NULL;
  const char *cfnames[5] = {"default", "log", "merkle", "ids", "streams"};
  const rocksdb_options_t *cfo[5] = {ro, ro, ro, ro, ro};
  rocksdb_column_family_handle_t *rcf[5];
  rocksdb_t *raw = rocksdb_open_column_families(ro, rawdir, 5, cfnames, cfo, rcf, &e);
  if (e) {
    fprintf(stderr, "raw open: %s\n", e);
    return 1;
  }
  rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
  rocksdb_writeoptions_set_sync(wo, 1);

  struct utsname u;
  uname(&u);
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  if (!json)
    printf("clinlog-bench store — %s %s, %ld cores; durable (fsync) commits\n\n"
           "raw: one synced put per event of the same bytes; raw4: the same bytes as the\n"
           "store's four entries per event (record, Merkle entry, id index, stream index)\n\n"
           "%-5s %-3s %-9s %10s %7s %7s | %10s %7s %7s %6s | %10s %6s\n",
           u.sysname, u.machine, cores, "batch", "thr", "sigs", "store ev/s", "p50 ms", "p99 ms",
           "raw ev/s", "p50 ms", "p99 ms", "ratio", "raw4 ev/s", "ratio");

  const size_t batch_sizes[3] = {1, 64, 1000};
  const int thread_counts[2] = {1, 8};
  unsigned seed = 12345;
  int status = 0;
  if (json)
    printf("{\"machine\":\"%s %s, %ld cores\",\"scenarios\":[", u.sysname, u.machine, cores);
  int first = 1;
  for (int bi = 0; bi < 3; bi++) {
    for (int ti = 0; ti < 2; ti++) {
      for (int sig = 1; sig >= 0; sig--) {
        size_t bs = batch_sizes[bi];
        int threads = thread_counts[ti];
        if ((only_b && (size_t)only_b != bs) || (only_t && only_t != threads) ||
            (only_s >= 0 && only_s != sig))
          continue;
        /* total calls per scenario: about a second or two of work each */
        size_t calls = bs == 1 ? 1600 : bs == 64 ? 320 : 48;
        if (!sig && bs == 1000)
          calls = 16;
        if (quick)
          calls /= 4;
        size_t per = calls / (size_t)threads;
        if (per == 0)
          per = 1;
        worker ws[8];
        size_t bytes = 0, events = 0;
        for (int t = 0; t < threads; t++) {
          ws[t].batches = calloc(per, sizeof(sbatch));
          ws[t].nbatches = per;
          ws[t].lat = calloc(per, sizeof(double));
          for (size_t k = 0; k < per; k++) {
            make_batch(&ws[t].batches[k], bs, sig, &admin, &seed);
            bytes += ws[t].batches[k].bytes;
            events += bs;
          }
        }
        result st = drive(0, log, NULL, NULL, ws, threads, NULL);
        int failed = 0;
        for (int t = 0; t < threads; t++)
          failed |= ws[t].failed;
        if (failed) { /* a failed append would make the rate meaningless */
          fprintf(stderr, "clinlog-bench: appends failed in scenario batch %zu, %d threads\n", bs,
                  threads);
          status = 1;
        }
        /* raw: same number of puts per write, values the size of our records */
        uint64_t size;
        cl_log_head(log, &size, NULL);
        for (int t = 0; t < threads; t++)
          ws[t].record_size = bytes / events + 150; /* record header, nonce, tag, MAC, signature */
        result rw = {1, 0, 0, 0}, ri = {1, 0, 0, 0};
        if (!no_raw) {
          rw = drive(1, NULL, raw, wo, ws, threads, NULL);
          ri = drive(1, NULL, raw, wo, ws, threads, rcf + 1);
        }
        double ratio = st.events_per_s / rw.events_per_s;
        double iratio = st.events_per_s / ri.events_per_s;
        const char *sname = sig ? "batch" : "per-event";
        if (json) {
          printf(
              "%s{\"batch\":%zu,\"threads\":%d,\"signatures\":\"%s\",\"store_events_per_s\":%.0f,"
              "\"store_p50_ms\":%.3f,\"store_p99_ms\":%.3f,\"raw_events_per_s\":%.0f,"
              "\"raw_p50_ms\":%.3f,\"raw_p99_ms\":%.3f,\"ratio\":%.3f,"
              "\"raw4_events_per_s\":%.0f,\"raw4_ratio\":%.3f}",
              first ? "" : ",", bs, threads, sname, st.events_per_s, st.p50_ms, st.p99_ms,
              rw.events_per_s, rw.p50_ms, rw.p99_ms, ratio, ri.events_per_s, iratio);
          first = 0;
        } else {
          printf("%-5zu %-3d %-9s %10.0f %7.2f %7.2f | %10.0f %7.2f %7.2f %6.2f | %10.0f %6.2f\n",
                 bs, threads, sname, st.events_per_s, st.p50_ms, st.p99_ms, rw.events_per_s,
                 rw.p50_ms, rw.p99_ms, ratio, ri.events_per_s, iratio);
        }
        fflush(stdout);
        for (int t = 0; t < threads; t++) {
          for (size_t k = 0; k < per; k++)
            free_batch(&ws[t].batches[k]);
          free(ws[t].batches);
          free(ws[t].lat);
        }
      }
    }
  }
  uint64_t size;
  cl_log_head(log, &size, NULL);
  cl_log_close(log);
  /* verify throughput over everything written above */
  double vh = 0, vf = 0;
  for (int full = 0; full <= 1; full++) {
    cl_verify_options vo = {.dir = dir, .hashes_only = !full};
    cl_verify_report rep;
    if (cl_verify_dir(&vo, &rep, &err) || !rep.ok) {
      fprintf(stderr, "verify: %s %s\n", err.msg, rep.fail_what);
      status = 1;
    }
    double rate = rep.seconds > 0 ? (double)rep.events / rep.seconds : 0;
    if (full)
      vf = rate;
    else
      vh = rate;
  }
  if (json)
    printf("],\"verify\":{\"events\":%llu,\"hashes_only_events_per_s\":%.0f,\"full_events_per_s\":%"
           ".0f}}\n",
           (unsigned long long)size, vh, vf);
  else
    printf(
        "\nverify over %llu events: %.0f events/s hash checks (--hashes-only), %.0f events/s full "
        "(decrypt + signatures + keyring)\n",
        (unsigned long long)size, vh, vf);
  rocksdb_writeoptions_destroy(wo);
  for (int i = 0; i < 5; i++)
    rocksdb_column_family_handle_destroy(rcf[i]);
  rocksdb_close(raw);
  rocksdb_options_destroy(ro);
  cl_signer_free(&admin);
  bench_rmrf(dir);
  bench_rmrf(rawdir);

  return status;
}

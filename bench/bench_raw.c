/* clinlog-bench raw: the limits clinlog's figures are divided by.
 *
 *   clinlog-bench raw [--dir D] [--quick] [--json]
 *
 *  - fsync: pwrite of 4 KiB at the end of a file in D (put D on the disk
 *    the data directories use; default /tmp/clinlog-bench-raw) then
 *    fdatasync, N times (400; --quick 100): p50/p99/mean latency and the
 *    rate one writer gets. A durable commit cannot be faster than one of
 *    these, so it bounds single-writer appends without group commit.
 *    Twice: appending (the file grows, so each fdatasync also commits its
 *    new size and blocks to the file system's journal), and into written
 *    space (the file written whole and synced first, then the same writes
 *    over it: the data alone), which is how PostgreSQL's WAL and clinlog's
 *    Raft log write (replication/segfill.c) and the tighter bound.
 *  - Ed25519: cl_sign_event and cl_verify_event (libsodium underneath) over
 *    event hashes, exactly what clients and clinlogd do per signature, on 1
 *    and 2 threads, for about a second each (--quick: half).
 *  - SHA-256: cl_event_hash of benchmark events (bench_make_event, the
 *    bytes clinlog-bench appends): hashes/s and MB/s on one thread.
 *  - RocksDB: synced WriteBatches of the store's four entries per event
 *    (bench_raw_put4: the bytes `clinlog-bench store` calls raw4) in a
 *    fresh database in D, batch 1 and 64 at 1, 16 and 64 writer threads,
 *    the concurrencies of clinlog's single-node rows, so each has its raw
 *    limit at the same concurrency: events/s, p50/p99 per write. Always the
 *    full count (1,600 writes at batch 1, 320 at 64, about 1 s in all on
 *    an idle machine; shorter runs are too noisy to divide by), but no
 *    write starts after 2 s of a scenario.
 * `clinlog-bench store` sets the store in process beside raw RocksDB at 1
 * and 8 threads (its raw and raw4 columns); bench/run runs both. */
#include "bench/bench_raw.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/benchutil.h"
#include "bench/workload.h"
#include "store/keys.h"

typedef struct fsync_out {
  double p50_ms, p99_ms, mean_ms, per_s;
  int n;
} fsync_out;

/* written: the n blocks are written (zeros) and synced before the timed
 * writes go over them; else each timed write extends the file. */
static int measure_fsync(const char *dir, int n, int written, fsync_out *o) {
  char path[4200];
  snprintf(path, sizeof path, "%s/fsync.dat", dir);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) {
    fprintf(stderr, "clinlog-bench raw: %s: %s\n", path, strerror(errno));
    return -1;
  }
  char buf[4096];
  int rc = 0;
  if (written) {
    memset(buf, 0, sizeof buf);
    for (int i = 0; rc == 0 && i < n; i++)
      if (pwrite(fd, buf, sizeof buf, (off_t)i * (off_t)sizeof buf) != (ssize_t)sizeof buf)
        rc = -1;
    if (rc != 0 || fdatasync(fd) != 0) {
      fprintf(stderr, "clinlog-bench raw: %s: %s\n", path, strerror(errno));
      close(fd);
      unlink(path);
      return -1;
    }
  }
  memset(buf, 0x5a, sizeof buf);
  double *lat = malloc((size_t)n * sizeof *lat), sum = 0;
  if (!lat)
    abort();
  for (int i = 0; i < n; i++) {
    double t0 = bench_mono();
    if (pwrite(fd, buf, sizeof buf, (off_t)i * (off_t)sizeof buf) != (ssize_t)sizeof buf ||
        fdatasync(fd) != 0) {
      fprintf(stderr, "clinlog-bench raw: %s: %s\n", path, strerror(errno));
      rc = -1;
      break;
    }
    lat[i] = (bench_mono() - t0) * 1e3;
    sum += lat[i];
  }
  close(fd);
  unlink(path);
  if (!rc) {
    o->n = n;
    o->mean_ms = sum / n;
    o->per_s = sum > 0 ? 1e3 * n / sum : 0;
    qsort(lat, (size_t)n, sizeof *lat, bench_cmp_double);
    o->p50_ms = bench_pct(lat, (size_t)n, 0.5);
    o->p99_ms = bench_pct(lat, (size_t)n, 0.99);
  }
  free(lat);
  return rc;
}

/* ---------------------------------------------------------- RocksDB */

void bench_raw_put4(rocksdb_writebatch_t *wb, rocksdb_column_family_handle_t *const *cfs, size_t n,
                    const char *val, size_t record_size, uint64_t *next_seq) {
  for (size_t k = 0; k < n; k++) {
    uint8_t key[40], seq[8];
    randombytes_buf(key, sizeof key);
    uint64_t s = ++*next_seq;
    for (int b = 7; b >= 0; b--, s >>= 8)
      seq[b] = (uint8_t)s;
    rocksdb_writebatch_put_cf(wb, cfs[0], (const char *)seq, 8, val, record_size);
    rocksdb_writebatch_put_cf(wb, cfs[1], (const char *)seq, 8, val, 48);
    rocksdb_writebatch_put_cf(wb, cfs[2], (const char *)key, 16, val, 48);
    rocksdb_writebatch_put_cf(wb, cfs[3], (const char *)key, 40, val, 8);
  }
}

enum { RDB_SCENARIOS = 6, RDB_MAX_S = 2 }; /* scenarios; seconds a scenario starts writes */

typedef struct rworker {
  pthread_t t;
  rocksdb_t *db;
  rocksdb_column_family_handle_t *const *cfs;
  const rocksdb_writeoptions_t *wo;
  const char *val;
  size_t batch, record_size, writes, done;
  double deadline;   /* bench_mono() after which no new write starts */
  uint64_t next_seq; /* this writer's own sequence numbers (1 << 40 apart) */
  double *lat;       /* seconds per write */
  pthread_barrier_t *go;
  char *error; /* rocksdb_free'd by the caller */
} rworker;

static void *rocksdb_work(void *arg) {
  rworker *w = arg;
  pthread_barrier_wait(w->go);
  for (size_t i = 0; i < w->writes && !w->error; i++) {
    double t0 = bench_mono();
    if (t0 > w->deadline)
      break;
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    bench_raw_put4(wb, w->cfs, w->batch, w->val, w->record_size, &w->next_seq);
    rocksdb_write(w->db, w->wo, wb, &w->error);
    rocksdb_writebatch_destroy(wb);
    w->lat[i] = bench_mono() - t0;
    w->done = i + 1;
  }
  return NULL;
}

typedef struct rocksdb_out {
  size_t batch;
  int threads;
  double events_per_s, p50_ms, p99_ms;
} rocksdb_out;

/* `calls` synced writes of `batch` events split over `threads` writers
 * into `db`, or as many as start within RDB_MAX_S (a slow or busy disk
 * does not stretch the step). Returns 0, or -1 with the error on stderr. */
static int rocksdb_rate(rocksdb_t *db, rocksdb_column_family_handle_t *const *cfs,
                        const rocksdb_writeoptions_t *wo, const char *val, size_t record_size,
                        size_t batch, int threads, size_t calls, rocksdb_out *o) {
  size_t per = calls / (size_t)threads ? calls / (size_t)threads : 1, n = per * (size_t)threads;
  /* lat: the writers' own slices, then packed to the `done` of each */
  rworker *w = calloc((size_t)threads, sizeof *w);
  double *lat = malloc(n * sizeof *lat);
  if (!w || !lat)
    abort();
  pthread_barrier_t go;
  pthread_barrier_init(&go, NULL, (unsigned)threads + 1);
  for (int i = 0; i < threads; i++) {
    w[i] = (rworker){.db = db,
                     .cfs = cfs,
                     .wo = wo,
                     .val = val,
                     .batch = batch,
                     .record_size = record_size,
                     .writes = per,
                     .next_seq = ((uint64_t)i + 1) << 40,
                     .lat = lat + (size_t)i * per,
                     .go = &go};
    if (pthread_create(&w[i].t, NULL, rocksdb_work, &w[i]) != 0)
      abort();
  }
  double t0 = bench_mono();
  for (int i = 0; i < threads; i++)
    w[i].deadline = t0 + RDB_MAX_S;
  pthread_barrier_wait(&go);
  int rc = 0;
  size_t done = 0;
  for (int i = 0; i < threads; i++) {
    pthread_join(w[i].t, NULL);
    memmove(lat + done, w[i].lat, w[i].done * sizeof *lat);
    done += w[i].done;
    if (w[i].error) {
      if (!rc)
        fprintf(stderr, "clinlog-bench raw: RocksDB write: %s\n", w[i].error);
      rocksdb_free(w[i].error);
      rc = -1;
    }
  }
  double dt = bench_mono() - t0;
  pthread_barrier_destroy(&go);
  if (done == 0) {
    fprintf(stderr, "clinlog-bench raw: no RocksDB write done (batch %zu, %d threads)\n", batch,
            threads);
    rc = -1;
  } else {
    qsort(lat, done, sizeof *lat, bench_cmp_double);
    *o = (rocksdb_out){batch, threads, (double)(done * batch) / dt, bench_pct(lat, done, 0.5) * 1e3,
                       bench_pct(lat, done, 0.99) * 1e3};
  }
  free(lat);
  free(w);
  return rc;
}

/* The RocksDB scenarios (batch 1 and 64 at 1, 16, 64 writers) in a fresh
 * database D/rocksdb, removed after. Returns 0, or -1 with the error on
 * stderr. */
static int measure_rocksdb(const char *dir, size_t record_size, rocksdb_out out[RDB_SCENARIOS]) {
  char path[4200];
  snprintf(path, sizeof path, "%s/rocksdb", dir);
  bench_rmrf(path);
  rocksdb_options_t *ro = rocksdb_options_create();
  rocksdb_options_set_create_if_missing(ro, 1);
  rocksdb_options_set_create_missing_column_families(ro, 1);
  rocksdb_options_increase_parallelism(ro, 2); /* as `clinlog-bench store`'s raw database */
  const char *names[5] = {"default", "log", "merkle", "ids", "streams"};
  const rocksdb_options_t *cfo[5] = {ro, ro, ro, ro, ro};
  rocksdb_column_family_handle_t *cfs[5];
  char *e = NULL;
  rocksdb_t *db = rocksdb_open_column_families(ro, path, 5, names, cfo, cfs, &e);
  if (e) {
    fprintf(stderr, "clinlog-bench raw: RocksDB open %s: %s\n", path, e);
    rocksdb_free(e);
    rocksdb_options_destroy(ro);
    return -1;
  }
  rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
  rocksdb_writeoptions_set_sync(wo, 1);
  char *val = malloc(record_size);
  if (!val)
    abort();
  randombytes_buf(val, record_size);
  static const int threads[3] = {1, 16, 64};
  int rc = 0;
  for (int k = 0; k < RDB_SCENARIOS && !rc; k++) {
    size_t batch = k < 3 ? 1 : 64;
    rc = rocksdb_rate(db, cfs + 1, wo, val, record_size, batch, threads[k % 3],
                      batch == 1 ? 1600 : 320, &out[k]);
  }
  free(val);
  rocksdb_writeoptions_destroy(wo);
  for (int i = 0; i < 5; i++)
    rocksdb_column_family_handle_destroy(cfs[i]);
  rocksdb_close(db);
  rocksdb_options_destroy(ro);
  bench_rmrf(path);
  return rc;
}

/* ---------------------------------------------------------- crypto */

enum { OP_SIGN, OP_VERIFY, OP_SHA };

typedef struct cworker {
  pthread_t t;
  int op;
  const cl_signer *key;
  const ProtobufCBinaryData *ev;
  size_t nev;
  double seconds;
  uint64_t ops, bytes;
  int bad;
} cworker;

static void *crypto_work(void *arg) {
  cworker *w = arg;
  uint8_t h[32], sig[CL_SIG_SIZE];
  cl_event_hash(w->ev[0].data, w->ev[0].len, h);
  cl_sign_event(w->key, h, sig);
  double end = bench_mono() + w->seconds;
  for (uint64_t i = 0;; i++) {
    /* check the clock every 64 operations: a hash takes about a µs */
    if ((i & 63) == 0 && bench_mono() >= end)
      break;
    const ProtobufCBinaryData *e = &w->ev[i % w->nev];
    switch (w->op) {
    case OP_SIGN:
      h[0] = (uint8_t)i; /* a different message each time */
      cl_sign_event(w->key, h, sig);
      break;
    case OP_VERIFY:
      if (cl_verify_event(w->key->pk, h, sig) != 0)
        w->bad = 1;
      break;
    default:
      cl_event_hash(e->data, e->len, h);
      w->bytes += e->len;
    }
    w->ops++;
  }
  return NULL;
}

/* ops/s of `op` on `threads` threads for `seconds`; bytes/s into *bps. */
static double rate(int op, int threads, double seconds, const cl_signer *key,
                   const ProtobufCBinaryData *ev, size_t nev, double *bps, int *bad) {
  cworker w[2];
  memset(w, 0, sizeof w);
  double t0 = bench_mono();
  for (int i = 0; i < threads; i++) {
    w[i] = (cworker){.op = op, .key = key, .ev = ev, .nev = nev, .seconds = seconds};
    if (pthread_create(&w[i].t, NULL, crypto_work, &w[i]) != 0)
      abort();
  }
  uint64_t ops = 0, bytes = 0;
  for (int i = 0; i < threads; i++) {
    pthread_join(w[i].t, NULL);
    ops += w[i].ops;
    bytes += w[i].bytes;
    *bad |= w[i].bad;
  }
  double dt = bench_mono() - t0;
  if (bps)
    *bps = (double)bytes / dt;
  return (double)ops / dt;
}

int bench_raw_main(int argc, char **argv) {
  const char *dir = "/tmp/clinlog-bench-raw";
  int quick = 0, json = 0;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--dir") && i + 1 < argc)
      dir = argv[++i];
    else if (!strcmp(argv[i], "--quick"))
      quick = 1;
    else if (!strcmp(argv[i], "--json"))
      json = 1;
    else {
      fprintf(stderr, "usage: clinlog-bench raw [--dir D] [--quick] [--json]\n");
      return 2;
    }
  }
  cl_err err;
  if (cl_crypto_init(&err))
    return 1;
  mkdir(dir, 0700);
  fsync_out fs = {0}, fw = {0};
  if (measure_fsync(dir, quick ? 100 : 400, 0, &fs) != 0 ||
      measure_fsync(dir, quick ? 100 : 400, 1, &fw) != 0)
    return 1;
  cl_signer key;
  if (cl_signer_generate(&key, &err)) {
    fprintf(stderr, "clinlog-bench raw: %s\n", err.msg);
    return 1;
  }
  enum { NEV = 256 };
  ProtobufCBinaryData ev[NEV];
  unsigned seed = 7;
  size_t evbytes = 0;
  for (int i = 0; i < NEV; i++) {
    bench_make_event(&ev[i], &seed);
    evbytes += ev[i].len;
  }
  double secs = quick ? 0.5 : 1.0, sha_bps = 0;
  int bad = 0;
  double sign1 = rate(OP_SIGN, 1, secs, &key, ev, NEV, NULL, &bad);
  double sign2 = rate(OP_SIGN, 2, secs, &key, ev, NEV, NULL, &bad);
  double ver1 = rate(OP_VERIFY, 1, secs, &key, ev, NEV, NULL, &bad);
  double ver2 = rate(OP_VERIFY, 2, secs, &key, ev, NEV, NULL, &bad);
  double sha = rate(OP_SHA, 1, secs, &key, ev, NEV, &sha_bps, &bad);
  /* the record as `clinlog-bench store` sizes it: the event and 150 bytes of
   * header, nonce, tag, MAC and signature */
  size_t record_size = evbytes / NEV + 150;
  rocksdb_out rdb[RDB_SCENARIOS];
  if (measure_rocksdb(dir, record_size, rdb) != 0)
    return 1;
  char machine[128];
  bench_machine(machine, sizeof machine);
  if (json) {
    printf("{\"machine\":\"%s\",\"quick\":%s,\"dir\":\"%s\","
           "\"fsync\":{\"write_bytes\":4096,\"n\":%d,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
           "\"mean_ms\":%.3f,\"per_s\":%.0f},"
           "\"fsync_written\":{\"write_bytes\":4096,\"n\":%d,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
           "\"mean_ms\":%.3f,\"per_s\":%.0f},"
           "\"ed25519\":{\"sign_per_s_1\":%.0f,\"sign_per_s_2\":%.0f,"
           "\"verify_per_s_1\":%.0f,\"verify_per_s_2\":%.0f},"
           "\"sha256\":{\"event_bytes\":%zu,\"hashes_per_s\":%.0f,\"mb_per_s\":%.1f},"
           "\"rocksdb\":{\"record_bytes\":%zu,\"puts_per_event\":4,\"scenarios\":[",
           machine, quick ? "true" : "false", dir, fs.n, fs.p50_ms, fs.p99_ms, fs.mean_ms, fs.per_s,
           fw.n, fw.p50_ms, fw.p99_ms, fw.mean_ms, fw.per_s, sign1, sign2, ver1, ver2,
           evbytes / NEV, sha, sha_bps / 1e6, record_size);
    for (int k = 0; k < RDB_SCENARIOS; k++)
      printf("%s{\"batch\":%zu,\"threads\":%d,\"events_per_s\":%.0f,\"p50_ms\":%.3f,"
             "\"p99_ms\":%.3f}",
             k ? "," : "", rdb[k].batch, rdb[k].threads, rdb[k].events_per_s, rdb[k].p50_ms,
             rdb[k].p99_ms);
    printf("]}}\n");
  } else {
    printf("clinlog-bench raw — %s; data disk: %s\n\n"
           "fsync (pwrite 4 KiB + fdatasync, %d times): p50 %.3f ms, p99 %.3f ms, mean %.3f ms "
           "(%.0f/s)\n"
           "fsync into written space (the same over a written file): p50 %.3f ms, p99 %.3f ms, "
           "mean %.3f ms (%.0f/s)\n"
           "Ed25519 sign:   %8.0f/s (1 thread) %8.0f/s (2 threads)\n"
           "Ed25519 verify: %8.0f/s (1 thread) %8.0f/s (2 threads)\n"
           "SHA-256 of %zu-byte events: %.0f hashes/s, %.1f MB/s (1 thread)\n",
           machine, dir, fs.n, fs.p50_ms, fs.p99_ms, fs.mean_ms, fs.per_s, fw.p50_ms, fw.p99_ms,
           fw.mean_ms, fw.per_s, sign1, sign2, ver1, ver2, evbytes / NEV, sha, sha_bps / 1e6);
    printf("RocksDB synced writes, the store's 4 entries per event (%zu-byte records):\n",
           record_size);
    for (int k = 0; k < RDB_SCENARIOS; k++)
      printf("  batch %-3zu %2d threads: %8.0f events/s, p50 %.3f ms, p99 %.3f ms\n", rdb[k].batch,
             rdb[k].threads, rdb[k].events_per_s, rdb[k].p50_ms, rdb[k].p99_ms);
  }
  for (int i = 0; i < NEV; i++)
    free(ev[i].data);
  cl_signer_free(&key);
  if (bad)
    fprintf(stderr, "clinlog-bench raw: a signature did not verify\n");
  return bad;
}

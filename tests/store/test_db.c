/* The database's memory budget with many column families, when its
 * background work has caught up, and long scans kept out of its cache.
 *
 * Every projection adds families, and RocksDB's write buffer manager holds
 * all memtables together under one limit (store/db.c). A memtable's fixed
 * cost (its first arena block, a point family's memtable Bloom filter) is
 * counted against that limit from its first write, so enough families made
 * the limit trip on every write: each commit switched and flushed a
 * memtable (thousands of tiny table files a minute, appends 10x slower with
 * the projections running). Small writes into every family of a node
 * running the projections must not flush anything. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/db.h"
#include "store/log.h"
#include "store/log_int.h"
#include "store/proj.h"
#include "tests/support/testutil.h"

/* Table files in the database directory of the log at dir. */
static int count_sst(const char *dir) {
  char path[512];
  snprintf(path, sizeof path, "%s/db", dir);
  DIR *d = opendir(path);
  cr_assert_not_null(d, "no %s", path);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t l = strlen(e->d_name);
    if (l > 4 && strcmp(e->d_name + l - 4, ".sst") == 0)
      n++;
  }
  closedir(d);
  return n;
}

#define NPROJ 10 /* 40 families, with the log's own: twice what a node has today */
#define NFAM 4
#define ROUNDS 300

Test(db, small_writes_into_many_families_flush_nothing) {
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("dbmem", &dir, &admin, 1000);
  cl_err err;
  static const char *const fams[NFAM] = {"a", "b", "c", "d"};
  cl_proj *p[NPROJ];
  for (int i = 0; i < NPROJ; i++) {
    char name[16];
    snprintf(name, sizeof name, "mem%d", i);
    cr_assert_eq(cl_proj_open(log, name, 1, fams, NFAM, &p[i], &err), 0, "%s", err.msg);
  }
  int before = count_sst(dir);
  for (int r = 0; r < ROUNDS; r++) {
    uint64_t seq;
    cr_assert_eq(cl_test_append1(log, &admin, "patient-mem", "admin", NULL, &seq, &err), 0, "%s",
                 err.msg);
    for (int i = 0; i < NPROJ; i++) {
      cl_proj_txn *t;
      cr_assert_eq(cl_proj_begin(p[i], &t, &err), 0, "%s", err.msg);
      for (unsigned f = 0; f < NFAM; f++) {
        uint8_t key[8] = {(uint8_t)(r >> 8), (uint8_t)r, (uint8_t)f};
        cr_assert_eq(cl_proj_put(t, f, key, sizeof key, "v", 1, &err), 0, "%s", err.msg);
      }
      cr_assert_eq(cl_proj_commit(t, seq, &err), 0, "%s", err.msg);
    }
  }
  int after = count_sst(dir);
  cr_assert_eq(after, before,
               "%d table files written by %d rounds of tiny writes into %d families: memtables "
               "were flushed for memory, not size",
               after - before, ROUNDS, NPROJ * NFAM);
  for (int i = 0; i < NPROJ; i++)
    cl_proj_close(p[i]);
  cl_log_close(log);
  cl_signer_free(&admin);
  cl_test_rmtree(dir);
  free(dir);
}

/* cl_db_settled: true only once RocksDB's background work has caught up:
 * the fourth table file at level 0 of a family starts a compaction, which
 * has merged them by the time the database says it is settled. */
Test(db, settled_means_the_compactions_ran) {
  char *dir = cl_test_tmpdir("dbsettle");
  char path[512];
  snprintf(path, sizeof path, "%s/db", dir);
  cl_db *db;
  cl_err err;
  cr_assert_eq(cl_db_open(path, 1, 0, 0, &db, &err), 0, "%s", err.msg);
  cr_assert(cl_db_settled(db), "a new database has nothing to do");
  rocksdb_column_family_handle_t *h;
  cr_assert_eq(cl_db_cf_create(db, "t", &h, &err), 0, "%s", err.msg);
  rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
  rocksdb_flushoptions_set_wait(fo, 1);
  char val[1000];
  memset(val, 'v', sizeof val);
  for (int f = 0; f < 4; f++) { /* four overlapping table files at level 0 */
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    for (int i = 0; i < 20000; i++) {
      char key[16];
      snprintf(key, sizeof key, "%08d", (i * 7919 + f) % 20000);
      rocksdb_writebatch_put_cf(wb, h, key, 8, val, sizeof val);
    }
    cr_assert_eq(cl_db_write(db, wb, &err), 0, "%s", err.msg);
    rocksdb_writebatch_destroy(wb);
    char *rerr = NULL;
    rocksdb_flush_cf(db->db, fo, h, &rerr);
    cr_assert_null(rerr, "%s", rerr);
  }
  rocksdb_flushoptions_destroy(fo);
  int waited = 0;
  while (!cl_db_settled(db) && waited++ < 1000)
    usleep(10 * 1000);
  cr_assert_lt(waited, 1000, "settled within 10 s");
  char *l0 = rocksdb_property_value_cf(db->db, h, "rocksdb.num-files-at-level0");
  cr_assert_not_null(l0);
  cr_assert_lt(atoi(l0), 4, "%s files left at level 0: settled before the compaction ran", l0);
  rocksdb_free(l0);
  cl_db_close(db);
  cl_test_rmtree(dir);
  free(dir);
}

/* A scan far behind the head (a projection catching up, a replay) reads
 * each block once: its blocks bypass the block cache, so they do not evict
 * what point reads keep there (store/read.c, BULK_SCAN); a short scan near
 * the head still caches what it reads. */
static int count_ev(void *ctx, const cl_event_view *ev, cl_err *err) {
  (void)ev;
  (void)err;
  (*(uint64_t *)ctx)++;
  return 0;
}

static uint64_t cache_usage(cl_log *log) {
  uint64_t u = 0;
  cr_assert_eq(rocksdb_property_int(log->db->db, "rocksdb.block-cache-usage", &u), 0);
  return u;
}

Test(db, a_long_scan_leaves_the_block_cache_alone, .timeout = 300) {
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("dbbulk", &dir, &admin, 1000);
  cl_err err;
  enum { BATCH = 1000, BATCHES = 70 }; /* 70,000 events, over BULK_SCAN */
  for (int b = 0; b < BATCHES; b++) {
    uint8_t *evs[BATCH];
    size_t lens[BATCH];
    for (int i = 0; i < BATCH; i++)
      evs[i] = cl_test_event("patient-bulk", "admin", "a note of some length to fill blocks", NULL,
                             &lens[i]);
    cl_append_result r;
    cr_assert_eq(cl_test_append(log, &admin, evs, lens, BATCH, 1, NULL, 0, 0, &r, &err), 0, "%s",
                 err.msg);
    cl_append_result_free(&r);
    for (int i = 0; i < BATCH; i++)
      free(evs[i]);
  }
  cr_assert_eq(cl_db_flush_all(log->db, &err), 0, "%s", err.msg); /* read from table files */
  uint64_t before = cache_usage(log), n = 0;
  cr_assert_eq(cl_log_read_all(log, 1, 0, count_ev, &n, &err), 0, "%s", err.msg);
  cr_assert_geq(n, (uint64_t)BATCH * BATCHES);
  uint64_t after = cache_usage(log);
  cr_assert_lt(after, before + (1u << 20),
               "a scan of %llu events from the first cached %llu bytes of blocks",
               (unsigned long long)n, (unsigned long long)(after - before));
  uint64_t head = 0, m = 0;
  cl_log_head(log, &head, NULL);
  cr_assert_eq(cl_log_read_all(log, head - 2 * BATCH + 1, 0, count_ev, &m, &err), 0, "%s", err.msg);
  cr_assert_eq(m, 2 * BATCH);
  cr_assert_gt(cache_usage(log), after, "a short scan near the head fills the cache");
  cl_log_close(log);
  cl_signer_free(&admin);
  cl_test_rmtree(dir);
  free(dir);
}

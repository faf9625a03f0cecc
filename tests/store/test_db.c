/* The database's memory budget with many column families.
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
#include <stdio.h>
#include <string.h>

#include "store/log.h"
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

/* Projection state (store/proj.c): sealed values are kept as plaintext in
 * their transaction and sealed when written (on the writer thread when the
 * commit is pipelined). Reads in the transaction, and in a transaction
 * folded over one in flight, see the plaintext; the committed state holds
 * only the sealed form, under the stream's data key; a stream erased
 * between the put and the write leaves nothing of it. Projections keep
 * their state in a database of their own (<dir>/proj). A scan says how
 * many deleted entries it stepped over; a compaction drops them. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/db.h"
#include "store/proj.h"
#include "store/proj_int.h"
#include "tests/support/testutil.h"

static const char *const fams[] = {"val"};
static const char SECRET[] = "Ada Lovelace, MRN 0042";

typedef struct fixture {
  char *dir;
  cl_signer admin;
  cl_log *log;
  cl_proj *p;
  uint8_t tag[32], tag2[32];
} fixture;

static void setup(fixture *f) {
  cl_err err;
  f->log = cl_test_log_new("proj", &f->dir, &f->admin, 1000);
  cr_assert_eq(cl_test_append1(f->log, &f->admin, "patient-1", "admin", NULL, NULL, &err), 0, "%s",
               err.msg);
  cr_assert_eq(cl_test_append1(f->log, &f->admin, "patient-2", "admin", NULL, NULL, &err), 0, "%s",
               err.msg);
  cr_assert_eq(cl_log_stream_tag(f->log, "patient-1", f->tag, &err), 0);
  cr_assert_eq(cl_log_stream_tag(f->log, "patient-2", f->tag2, &err), 0);
  cr_assert_eq(cl_proj_open(f->log, "ptest", 1, fams, 1, &f->p, &err), 0, "%s", err.msg);
}

static void teardown(fixture *f) {
  cl_proj_close(f->p);
  cl_log_close(f->log);
  cl_signer_free(&f->admin);
  cl_test_rmtree(f->dir);
  free(f->dir);
}

static void key_of(const fixture *f, const char *ident, uint8_t k[32]) {
  cl_proj_hash(f->p, ident, strlen(ident), k);
}

static void assert_plain(uint8_t *v, size_t vl, const char *want) {
  cr_assert_eq(vl, strlen(want));
  cr_assert_eq(memcmp(v, want, vl), 0);
  free(v);
}

/* The committed value of key k reads back as `want`. */
static void assert_committed(cl_proj *p, const uint8_t k[32], const char *want) {
  cl_err err;
  uint8_t *v;
  size_t vl;
  cr_assert_eq(cl_proj_get_sealed(p, 0, k, 32, &v, &vl, &err), 0, "%s", err.msg);
  assert_plain(v, vl, want);
}

/* Commits SECRET, sealed under patient-1's key, as key k at position pos. */
static void commit_secret(fixture *f, const uint8_t k[32], uint64_t pos) {
  cl_err err;
  cl_proj_txn *t;
  cr_assert_eq(cl_proj_begin(f->p, &t, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_proj_put_sealed(t, 0, k, 32, f->tag, SECRET, strlen(SECRET), &err), 0, "%s",
               err.msg);
  cr_assert_eq(cl_proj_commit(t, pos, &err), 0, "%s", err.msg);
}

Test(proj, a_sealed_value_reads_back_before_and_after_its_commit) {
  fixture f;
  setup(&f);
  cl_err err;
  uint8_t k[32], *v;
  size_t vl;
  key_of(&f, "a", k);
  cl_proj_txn *t;
  cr_assert_eq(cl_proj_begin(f.p, &t, &err), 0);
  cr_assert_eq(cl_proj_put_sealed(t, 0, k, 32, f.tag, SECRET, strlen(SECRET), &err), 0, "%s",
               err.msg);
  cr_assert_eq(cl_proj_txn_get_sealed(t, 0, k, 32, &v, &vl, &err), 0, "%s", err.msg);
  assert_plain(v, vl, SECRET);
  /* the raw read gives the value as it will be stored: tag, then sealed */
  cr_assert_eq(cl_proj_txn_get(t, 0, k, 32, &v, &vl, &err), 0, "%s", err.msg);
  cr_assert_eq(vl, 32 + strlen(SECRET) + CL_VALUE_OVERHEAD);
  cr_assert_eq(memcmp(v, f.tag, 32), 0);
  cr_assert_null(memmem(v, vl, "Lovelace", 8), "sealed, not plaintext");
  uint8_t *plain;
  size_t pl;
  cr_assert_eq(cl_proj_open_sealed(f.p, 0, k, 32, v, vl, &plain, &pl, &err), 0, "%s", err.msg);
  assert_plain(plain, pl, SECRET);
  uint8_t *raw_in_txn = v;
  size_t raw_len = vl;
  cr_assert_eq(cl_proj_commit(t, 2, &err), 0, "%s", err.msg);

  cr_assert_eq(cl_proj_get(f.p, 0, k, 32, &v, &vl, &err), 0, "%s", err.msg);
  cr_assert_eq(vl, raw_len);
  cr_assert_eq(memcmp(v, raw_in_txn, vl), 0, "stored as the transaction said it would be");
  free(v);
  free(raw_in_txn);
  cr_assert_eq(cl_proj_get_sealed(f.p, 0, k, 32, &v, &vl, &err), 0, "%s", err.msg);
  assert_plain(v, vl, SECRET);
  teardown(&f);
}

Test(proj, a_transaction_over_one_in_flight_reads_its_plaintext) {
  fixture f;
  setup(&f);
  cl_err err;
  uint8_t k1[32], k2[32], *v;
  size_t vl;
  key_of(&f, "first", k1);
  key_of(&f, "second", k2);
  cl_proj_txn *t1, *t2;
  cr_assert_eq(cl_proj_begin(f.p, &t1, &err), 0);
  cr_assert_eq(cl_proj_put_sealed(t1, 0, k1, 32, f.tag, "one", 3, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_proj_commit_start(t1, 1, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_proj_begin(f.p, &t2, &err), 0);
  cr_assert_eq(cl_proj_txn_get_sealed(t2, 0, k1, 32, &v, &vl, &err), 0, "%s", err.msg);
  assert_plain(v, vl, "one");
  cr_assert_eq(cl_proj_put_sealed(t2, 0, k2, 32, f.tag2, "two", 3, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_proj_put_sealed(t2, 0, k1, 32, f.tag, "one, again", 10, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_proj_txn_get_sealed(t2, 0, k1, 32, &v, &vl, &err), 0, "%s", err.msg);
  assert_plain(v, vl, "one, again");
  cr_assert_eq(cl_proj_commit(t2, 2, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_proj_position(f.p), 2);
  cr_assert_eq(cl_proj_get_sealed(f.p, 0, k1, 32, &v, &vl, &err), 0, "%s", err.msg);
  assert_plain(v, vl, "one, again");
  cr_assert_eq(cl_proj_get_sealed(f.p, 0, k2, 32, &v, &vl, &err), 0, "%s", err.msg);
  assert_plain(v, vl, "two");
  teardown(&f);
}

Test(proj, a_stream_erased_before_the_write_leaves_nothing) {
  fixture f;
  setup(&f);
  cl_err err;
  uint8_t k1[32], k2[32], *v;
  size_t vl;
  key_of(&f, "kept", k1);
  key_of(&f, "erased", k2);
  cl_proj_txn *t;
  cr_assert_eq(cl_proj_begin(f.p, &t, &err), 0);
  cr_assert_eq(cl_proj_put_sealed(t, 0, k1, 32, f.tag, "kept", 4, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_proj_put_sealed(t, 0, k2, 32, f.tag2, SECRET, strlen(SECRET), &err), 0, "%s",
               err.msg);
  cl_test_erase(f.log, &f.admin, "patient-2");
  cr_assert_eq(cl_proj_commit(t, 3, &err), 0, "the rest is written: %s", err.msg);
  cr_assert_eq(cl_proj_get_sealed(f.p, 0, k1, 32, &v, &vl, &err), 0, "%s", err.msg);
  assert_plain(v, vl, "kept");
  cr_assert_eq(cl_proj_get(f.p, 0, k2, 32, &v, &vl, &err), CL_ENOTFOUND,
               "the erased stream's value is not written");

  /* and once erased, a put is refused at once, nothing kept */
  cr_assert_eq(cl_proj_begin(f.p, &t, &err), 0);
  cr_assert_eq(cl_proj_put_sealed(t, 0, k2, 32, f.tag2, SECRET, strlen(SECRET), &err), CL_EERASED);
  cr_assert_eq(cl_proj_txn_get(t, 0, k2, 32, &v, &vl, &err), CL_ENOTFOUND);
  cl_proj_abort(t);
  teardown(&f);
}

/* The names of the "proj." families of the log's database (<dir>/db). */
static size_t log_db_proj_families(const char *dir) {
  char path[4096];
  snprintf(path, sizeof path, "%s/db", dir);
  cl_db *db;
  cl_err err;
  cr_assert_eq(cl_db_open(path, 0, 1, 0, &db, &err), 0, "%s", err.msg);
  char **names;
  size_t n;
  cr_assert_eq(cl_db_cf_list(db, "proj.", &names, &n, &err), 0, "%s", err.msg);
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  free(names);
  cl_db_close(db);
  return n;
}

Test(proj, projections_live_in_a_database_of_their_own) {
  fixture f;
  setup(&f);
  cl_err err;
  uint8_t k[32];
  key_of(&f, "patient-1/name", k);
  commit_secret(&f, k, 2);
  cl_proj_close(f.p);
  cl_log_close(f.log);
  char path[4096];
  snprintf(path, sizeof path, "%s/proj/CURRENT", f.dir);
  cr_assert_eq(access(path, F_OK), 0, "the projections' database is <dir>/proj");
  cr_assert_eq(log_db_proj_families(f.dir), 0, "nothing of a projection in the log's database");

  /* a directory from before: projection families in the log's database,
   * dropped when a projection opens; the projections' own state stays */
  snprintf(path, sizeof path, "%s/db", f.dir);
  cl_db *db;
  cr_assert_eq(cl_db_open(path, 0, 0, 1, &db, &err), 0, "%s", err.msg);
  rocksdb_column_family_handle_t *h;
  cr_assert_eq(cl_db_cf_create(db, "proj.ptest", &h, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_db_cf_create(db, "proj.ptest.val", &h, &err), 0, "%s", err.msg);
  cl_db_close(db);
  cr_assert_eq(log_db_proj_families(f.dir), 2);
  f.log = cl_test_log_open(f.dir, 1000);
  cr_assert_eq(cl_proj_open(f.log, "ptest", 1, fams, 1, &f.p, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_proj_position(f.p), 2, "the state in <dir>/proj is kept");
  assert_committed(f.p, k, SECRET);
  cl_proj_close(f.p);
  cl_log_close(f.log);
  cr_assert_eq(log_db_proj_families(f.dir), 0, "the old families are dropped");
  f.log = cl_test_log_open(f.dir, 1000);
  cr_assert_eq(cl_proj_open(f.log, "ptest", 1, fams, 1, &f.p, &err), 0, "%s", err.msg);
  teardown(&f);
}

Test(proj, state_of_another_format_is_folded_again) {
  fixture f;
  setup(&f);
  cl_err err;
  uint8_t k[32];
  key_of(&f, "patient-1/name", k);
  commit_secret(&f, k, 2);
  cl_proj_close(f.p);
  cr_assert_eq(cl_proj_open(f.log, "ptest", 1, fams, 1, &f.p, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_proj_position(f.p), 2, "the same format and version: kept");
  cl_proj_close(f.p);

  /* state written before the format was recorded (format 1: values sealed
   * with XChaCha20-Poly1305), then state of a format this build does not
   * know: dropped, folded again from event 1 */
  static const char *const formats[] = {NULL, "\x09"};
  for (size_t i = 0; i < 2; i++) {
    cl_db *db = cl_log_proj_db(f.log, &err);
    cr_assert_not_null(db, "%s", err.msg);
    rocksdb_column_family_handle_t *meta;
    cr_assert_eq(cl_db_cf_create(db, "proj.ptest", &meta, &err), 0, "%s", err.msg);
    char *rerr = NULL;
    if (formats[i])
      rocksdb_put_cf(db->db, db->wo, meta, META_FORMAT, strlen(META_FORMAT), formats[i], 1, &rerr);
    else
      rocksdb_delete_cf(db->db, db->wo, meta, META_FORMAT, strlen(META_FORMAT), &rerr);
    cr_assert_null(rerr, "%s", rerr);
    cr_assert_eq(cl_proj_open(f.log, "ptest", 1, fams, 1, &f.p, &err), 0, "%s", err.msg);
    cr_assert_eq(cl_proj_position(f.p), 0, "format %s: from event 1", formats[i] ? "9" : "1");
    uint8_t *v;
    size_t vl;
    cr_assert_eq(cl_proj_get(f.p, 0, k, 32, &v, &vl, &err), CL_ENOTFOUND, "the old state is gone");
    commit_secret(&f, k, 2); /* folded again */
    cl_proj_close(f.p);
  }
  cr_assert_eq(cl_proj_open(f.log, "ptest", 1, fams, 1, &f.p, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_proj_position(f.p), 2, "kept: the reset recorded this build's format");
  assert_committed(f.p, k, SECRET);
  teardown(&f);
}

/* Commits of nothing at positions from..to, one each (a batch of events the
 * fold ignored). */
static void commit_empty(cl_proj *p, uint64_t from, uint64_t to) {
  cl_err err;
  for (uint64_t pos = from; pos <= to; pos++) {
    cl_proj_txn *t;
    cr_assert_eq(cl_proj_begin(p, &t, &err), 0, "%s", err.msg);
    cr_assert_eq(cl_proj_commit(t, pos, &err), 0, "%s", err.msg);
  }
}

/* In a child process: opens the log and the projection in f->dir, commits
 * nothing at positions from..to, checks the position in memory and dies as
 * kill -9 would (no close). The caller has closed its own handles. */
static void crash_after_empty_commits(fixture *f, uint64_t from, uint64_t to) {
  fflush(NULL);
  pid_t pid = fork();
  cr_assert_neq(pid, -1);
  if (pid == 0) {
    cl_err err;
    cl_log *log = cl_test_log_open(f->dir, 1000);
    cl_proj *p;
    if (!log || cl_proj_open(log, "ptest", 1, fams, 1, &p, &err) != 0)
      _exit(2);
    for (uint64_t pos = from; pos <= to; pos++) {
      cl_proj_txn *t;
      if (cl_proj_begin(p, &t, &err) || cl_proj_commit(t, pos, &err))
        _exit(3);
    }
    _exit(cl_proj_position(p) == to ? 0 : 4);
  }
  int st;
  cr_assert_eq(waitpid(pid, &st, 0), pid);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child failed (%d)", st);
}

static void reopen(fixture *f) {
  cl_err err;
  f->log = cl_test_log_open(f->dir, 1000);
  cr_assert_not_null(f->log);
  cr_assert_eq(cl_proj_open(f->log, "ptest", 1, fams, 1, &f->p, &err), 0, "%s", err.msg);
}

Test(proj, a_commit_of_nothing_moves_the_position_without_a_write) {
  fixture f;
  setup(&f);
  uint8_t k[32], d1[32], d2[32];
  key_of(&f, "patient-1/name", k);
  uint64_t c0 = cl_proj_changes(f.p);
  commit_secret(&f, k, 2);
  cr_assert_eq(cl_proj_changes(f.p), c0 + 1);
  commit_empty(f.p, 3, 50);
  cr_assert_eq(cl_proj_position(f.p), 50);
  cr_assert_eq(cl_proj_changes(f.p), c0 + 1, "commits of nothing change nothing");
  cl_test_proj_digest(f.p, d1);
  cl_proj_close(f.p); /* writes the position it kept in memory */
  cl_log_close(f.log);
  reopen(&f);
  cr_assert_eq(cl_proj_position(f.p), 50, "the close writes the position");
  cl_test_proj_digest(f.p, d2);
  cr_assert_eq(memcmp(d1, d2, 32), 0, "the dump gives the position in memory");
  cl_proj_close(f.p);
  cl_log_close(f.log);

  /* killed: the position on disk is the last one written */
  crash_after_empty_commits(&f, 51, 60);
  reopen(&f);
  cr_assert_eq(cl_proj_position(f.p), 50, "a commit of nothing is not written");
  assert_committed(f.p, k, SECRET);
  cl_proj_close(f.p);
  cl_log_close(f.log);

  /* ... until it is 16384 events behind (proj_int.h, LAZY_MAX) */
  crash_after_empty_commits(&f, 51, 50 + 16384);
  reopen(&f);
  cr_assert_eq(cl_proj_position(f.p), 50 + 16384, "a position 16384 behind is written");
  teardown(&f);
}

static int count_one(void *ctx, const uint8_t *key, size_t kl, const uint8_t *val, size_t vl,
                     cl_err *err) {
  (void)key, (void)kl, (void)val, (void)vl, (void)err;
  (*(size_t *)ctx)++;
  return 0;
}

/* Entry i of round r of a queue: r, then i, big-endian. */
static void queue_key(uint8_t k[8], int round, uint32_t i) {
  cl_be64(k, (uint64_t)round << 32 | i);
}

/* A family used as a queue: every entry put, then deleted. Scans step over
 * the deletions' markers, and say how many, until a compaction drops them. */
Test(proj, scans_count_the_deleted_entries_they_step_over_until_a_compaction) {
  fixture f;
  setup(&f);
  cl_err err;
  enum { N = 3000, KEPT = 5 };
  uint64_t pos = 2;
  for (int round = 0; round < 2; round++) { /* round 0 compacted, round 1 in the memtable */
    cl_proj_txn *t;
    cr_assert_eq(cl_proj_begin(f.p, &t, &err), 0, "%s", err.msg);
    for (uint32_t i = 0; i < N; i++) {
      uint8_t k[8];
      queue_key(k, round, i);
      cr_assert_eq(cl_proj_put(t, 0, k, sizeof k, "v", 1, &err), 0, "%s", err.msg);
    }
    cr_assert_eq(cl_proj_commit(t, ++pos, &err), 0, "%s", err.msg);
    cr_assert_eq(cl_proj_begin(f.p, &t, &err), 0, "%s", err.msg);
    for (uint32_t i = KEPT; i < N; i++) { /* all but the first KEPT */
      uint8_t k[8];
      queue_key(k, round, i);
      cr_assert_eq(cl_proj_del(t, 0, k, sizeof k, &err), 0, "%s", err.msg);
    }
    cr_assert_eq(cl_proj_commit(t, ++pos, &err), 0, "%s", err.msg);
    if (round == 0) /* its kept entries into a table file, its markers dropped */
      cr_assert_eq(cl_proj_compact(f.p, 0, &err), 0, "%s", err.msg);
  }
  size_t n = 0;
  uint64_t deleted = 0;
  cr_assert_eq(cl_proj_scan_deleted(f.p, 0, NULL, 0, NULL, 0, count_one, &n, &deleted, &err), 0,
               "%s", err.msg);
  cr_assert_eq(n, 2 * KEPT, "the entries left: %zu", n);
  cr_assert_geq(deleted, N - KEPT, "the second round's deletions stepped over: %llu",
                (unsigned long long)deleted);
  cr_assert_eq(cl_proj_compact(f.p, 0, &err), 0, "%s", err.msg);
  n = 0;
  cr_assert_eq(cl_proj_scan_deleted(f.p, 0, NULL, 0, NULL, 0, count_one, &n, &deleted, &err), 0,
               "%s", err.msg);
  cr_assert_eq(n, 2 * KEPT, "a compaction keeps what was not deleted");
  cr_assert_eq(deleted, 0, "and drops the markers: %llu left", (unsigned long long)deleted);
  cr_assert_eq(cl_proj_compact(f.p, 7, &err), CL_EINVAL, "a family the projection lacks");
  teardown(&f);
}

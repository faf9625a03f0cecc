/* Tamper suite for store/verify.c: a real data directory is edited through
 * RocksDB directly (as an attacker with disk access would), and verification
 * must detect each edit and name where. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/db.h"
#include "store/log.h"
#include "store/merkle.h"
#include "store/verify.h"
#include "tests/support/testutil.h"

#define EVENTS 100 /* plus 2 genesis events */

static char *dir;
static cl_signer admin;

static void setup(void) {
  cl_log *lg = cl_test_log_new("verify", &dir, &admin, 25);
  cr_assert_not_null(lg);
  /* a mix of per-event and batch-signed appends over a few streams */
  for (int i = 0; i < EVENTS;) {
    size_t n = (i % 3 == 0) ? 1 : 7;
    if (i + (int)n > EVENTS)
      n = (size_t)(EVENTS - i);
    uint8_t *evs[8];
    size_t lens[8];
    char stream[32];
    for (size_t k = 0; k < n; k++) {
      snprintf(stream, sizeof stream, "patient-%d", (i + (int)k) % 5);
      evs[k] = cl_test_event(stream, "admin", NULL, NULL, &lens[k]);
    }
    cl_append_result r;
    cl_err err;
    cr_assert_eq(cl_test_append(lg, &admin, evs, lens, n, n > 1, NULL, 0, 0, &r, &err), 0, "%s", err.msg);
    cl_append_result_free(&r);
    for (size_t k = 0; k < n; k++)
      free(evs[k]);
    i += (int)n;
  }
  cl_log_close(lg);
}

static void teardown(void) {
  cl_signer_free(&admin);
  cl_test_rmtree(dir);
  free(dir);
}

TestSuite(verify, .init = setup, .fini = teardown, .timeout = 60);

static cl_verify_report run(const char *checkpoint) {
  cl_verify_options o = {.dir = dir, .checkpoint = checkpoint,
                         .checkpoint_len = checkpoint ? strlen(checkpoint) : 0};
  cl_verify_report rep;
  cl_err err;
  cr_assert_eq(cl_verify_dir(&o, &rep, &err), 0, "%s", err.msg);
  return rep;
}

static cl_db *db_open(void) {
  char path[4096];
  snprintf(path, sizeof path, "%s/db", dir);
  cl_db *db;
  cl_err err;
  cr_assert_eq(cl_db_open(path, 0, 0, 1, &db, &err), 0, "%s", err.msg);
  return db;
}

static void put(cl_db *db, int cf, const void *k, size_t kl, const void *v, size_t vl) {
  char *e = NULL;
  rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
  rocksdb_put_cf(db->db, wo, db->cf[cf], k, kl, v, vl, &e);
  rocksdb_writeoptions_destroy(wo);
  cr_assert_null(e, "%s", e);
}

static void del(cl_db *db, int cf, const void *k, size_t kl) {
  char *e = NULL;
  rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
  rocksdb_delete_cf(db->db, wo, db->cf[cf], k, kl, &e);
  rocksdb_writeoptions_destroy(wo);
  cr_assert_null(e, "%s", e);
}

static char *get(cl_db *db, int cf, const void *k, size_t kl, size_t *vl) {
  char *v;
  cl_err err;
  cr_assert_eq(cl_db_get(db, cf, k, kl, &v, vl, &err), 0, "%s", err.msg);
  return v;
}

static char *record(cl_db *db, uint64_t seq, size_t *vl) {
  uint8_t k[8];
  cl_be64(k, seq);
  return get(db, CL_CF_LOG, k, 8, vl);
}

static void set_record(cl_db *db, uint64_t seq, const char *v, size_t vl) {
  uint8_t k[8];
  cl_be64(k, seq);
  put(db, CL_CF_LOG, k, 8, v, vl);
}

Test(verify, clean_log_verifies) {
  cl_verify_report rep = run(NULL);
  cr_assert(rep.ok, "%s", rep.fail_what);
  cr_assert_eq(rep.events, EVENTS + 2);
  cr_assert_eq(rep.decrypted, EVENTS + 2);
  cr_assert_geq(rep.checkpoints, 4, "checkpoints at 2 and every 25 events");
  cr_assert_gt(rep.signatures, 0);
}

Test(verify, flipped_byte_in_a_record) {
  cl_db *db = db_open();
  size_t vl;
  char *v = record(db, 50, &vl);
  v[vl / 2] ^= 0x01;
  set_record(db, 50, v, vl);
  rocksdb_free(v);
  cl_db_close(db);
  cl_verify_report rep = run(NULL);
  cr_assert_not(rep.ok);
  cr_assert_eq(rep.fail_seq, 50, "%s", rep.fail_what);
}

Test(verify, deleted_record) {
  cl_db *db = db_open();
  uint8_t k[8];
  cl_be64(k, 61);
  del(db, CL_CF_LOG, k, 8);
  cl_db_close(db);
  cl_verify_report rep = run(NULL);
  cr_assert_not(rep.ok);
  cr_assert_eq(rep.fail_seq, 61, "%s", rep.fail_what);
  cr_assert(strstr(rep.fail_what, "missing"), "%s", rep.fail_what);
}

Test(verify, swapped_records) {
  cl_db *db = db_open();
  size_t l40, l41;
  char *a = record(db, 40, &l40), *b = record(db, 41, &l41);
  set_record(db, 40, b, l41);
  set_record(db, 41, a, l40);
  rocksdb_free(a);
  rocksdb_free(b);
  cl_db_close(db);
  cl_verify_report rep = run(NULL);
  cr_assert_not(rep.ok);
  cr_assert_eq(rep.fail_seq, 40, "%s", rep.fail_what);
}

/* Sizes of the stored checkpoints, ascending. */
static size_t checkpoint_sizes(cl_db *db, uint64_t *out, size_t max) {
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(db->db, db->ro, db->cf[CL_CF_CHECKPOINTS]);
  size_t n = 0;
  for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it) && n < max; rocksdb_iter_next(it)) {
    size_t kl;
    out[n++] = cl_get_be64((const uint8_t *)rocksdb_iter_key(it, &kl));
  }
  rocksdb_iter_destroy(it);
  return n;
}

static void truncate_to(cl_db *db, uint64_t keep, int rewrite_head) {
  for (uint64_t s = keep + 1; s <= EVENTS + 2; s++) {
    uint8_t k[8];
    cl_be64(k, s);
    del(db, CL_CF_LOG, k, 8);
  }
  if (rewrite_head) {
    /* a careful attacker also rewrites the head and the stored tree */
    uint8_t sz[8];
    cl_be64(sz, keep);
    put(db, CL_CF_META, "tree_size", 9, sz, 8);
    cl_merkle_frontier f;
    cl_merkle_frontier_init(&f);
    cl_merkle_mem *mem = cl_merkle_mem_new();
    for (uint64_t s = 1; s <= keep; s++) {
      size_t vl;
      char *v = record(db, s, &vl);
      uint8_t leaf[32];
      cl_merkle_leaf_hash((const uint8_t *)v, vl, leaf);
      rocksdb_free(v);
      cl_err err;
      cr_assert_eq(cl_merkle_frontier_append(&f, leaf, cl_merkle_mem_put, mem, &err), 0);
    }
    cl_merkle_mem_free(mem);
    uint8_t root[32];
    cl_merkle_frontier_root(&f, root);
    put(db, CL_CF_META, "root", 4, root, 32);
  }
}

Test(verify, truncated_tail) {
  cl_db *db = db_open();
  truncate_to(db, 90, 0);
  cl_db_close(db);
  cl_verify_report rep = run(NULL);
  cr_assert_not(rep.ok);
  cr_assert(strstr(rep.fail_what, "truncated"), "%s", rep.fail_what);
  cr_assert_eq(rep.fail_seq, 91);
}

Test(verify, truncated_tail_with_rewritten_head_caught_by_checkpoint) {
  cl_db *db = db_open();
  truncate_to(db, 90, 1);
  cl_db_close(db);
  cl_verify_report rep = run(NULL);
  cr_assert_not(rep.ok);
  cr_assert(strstr(rep.fail_what, "checkpoint at size") && strstr(rep.fail_what, "truncated"), "%s",
            rep.fail_what);
}

Test(verify, truncation_with_checkpoints_deleted_caught_by_external_checkpoint) {
  /* the auditor kept the latest checkpoint */
  cl_db *db = db_open();
  uint64_t sizes[16];
  size_t ncp = checkpoint_sizes(db, sizes, 16);
  cr_assert_geq(ncp, 2);
  cr_assert_gt(sizes[ncp - 1], 85);
  uint8_t k[8];
  cl_be64(k, sizes[ncp - 1]);
  size_t nl;
  char *note = get(db, CL_CF_CHECKPOINTS, k, 8, &nl);
  char *saved = strndup(note, nl);
  rocksdb_free(note);
  truncate_to(db, 85, 1); /* 85 ends a batch (see setup) */
  for (uint64_t s = 86; s <= EVENTS + 2; s++) {
    cl_be64(k, s);
    del(db, CL_CF_CHECKPOINTS, k, 8);
  }
  cl_db_close(db);
  cl_verify_report rep = run(NULL);
  cr_assert(rep.ok, "without outside knowledge a consistent truncation looks valid: %s", rep.fail_what);
  rep = run(saved);
  cr_assert_not(rep.ok);
  cr_assert(strstr(rep.fail_what, "external checkpoint"), "%s", rep.fail_what);
  free(saved);
}

Test(verify, replaced_checkpoint) {
  cl_db *db = db_open();
  uint64_t sizes[16];
  cr_assert_geq(checkpoint_sizes(db, sizes, 16), 3);
  uint8_t k[8];
  cl_be64(k, sizes[1]);
  size_t nl;
  char *note = get(db, CL_CF_CHECKPOINTS, k, 8, &nl);
  /* swap in the root line of another checkpoint */
  uint8_t k2[8];
  cl_be64(k2, sizes[2]);
  size_t nl2;
  char *other = get(db, CL_CF_CHECKPOINTS, k2, 8, &nl2);
  cr_assert_eq(nl, nl2);
  char *l1 = strchr(strchr(note, '\n') + 1, '\n') + 1; /* the root line */
  char *l2 = strchr(strchr(other, '\n') + 1, '\n') + 1;
  memcpy(l1, l2, 44);
  put(db, CL_CF_CHECKPOINTS, k, 8, note, nl);
  rocksdb_free(note);
  rocksdb_free(other);
  cl_db_close(db);
  cl_verify_report rep = run(NULL);
  cr_assert_not(rep.ok);
  cr_assert_eq(rep.fail_seq, sizes[1], "%s", rep.fail_what);
  char want[64];
  snprintf(want, sizeof want, "checkpoint at size %llu", (unsigned long long)sizes[1]);
  cr_assert(strstr(rep.fail_what, want), "%s", rep.fail_what);
}

Test(verify, record_moved_to_another_stream_version) {
  /* re-encode a record with a different stream version: leaf changes too */
  cl_db *db = db_open();
  size_t vl;
  char *v = record(db, 30, &vl);
  Clinlog__V1__Record *r = clinlog__v1__record__unpack(NULL, vl, (const uint8_t *)v);
  rocksdb_free(v);
  r->stream_version += 1;
  size_t nl = clinlog__v1__record__get_packed_size(r);
  uint8_t *buf = malloc(nl);
  clinlog__v1__record__pack(r, buf);
  clinlog__v1__record__free_unpacked(r, NULL);
  set_record(db, 30, (char *)buf, nl);
  free(buf);
  cl_db_close(db);
  cl_verify_report rep = run(NULL);
  cr_assert_not(rep.ok);
  cr_assert_eq(rep.fail_seq, 30, "%s", rep.fail_what);
}

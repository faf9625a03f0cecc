/* Tests for store/log.c: append, idempotency, expected versions, errors
 * that change nothing, reads, encryption at rest, erasure, concurrency,
 * proofs, sealed scans. Principals, keys and system streams are in
 * test_log_keys.c; the shared fixture in log_fixture.h. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "store/checkpoint.h"
#include "store/event.h"
#include "store/keyring.h"
#include "store/log.h"
#include "store/logkey.h"
#include "store/merkle.h"
#include "store/verify.h"
#include "tests/store/log_fixture.h"
#include "tests/support/testutil.h"

TestSuite(log, .init = log_setup, .fini = log_teardown, .timeout = 120);

Test(log, genesis_and_reopen) {
  uint64_t size;
  uint8_t root[32];
  head(&size, root);
  cr_assert_eq(size, 2);
  char principal[64], roles[64];
  cr_assert_eq(
      cl_log_key_info(lg, admin.pk, principal, sizeof principal, roles, sizeof roles, NULL), 0);
  cr_assert_str_eq(principal, "admin");
  cr_assert_str_eq(roles, "admin");
  cl_log_close(lg);
  lg = cl_test_log_open(dir, 10000);
  cr_assert_not_null(lg);
  uint64_t size2;
  uint8_t root2[32];
  head(&size2, root2);
  cr_assert_eq(size2, 2);
  cr_assert_arr_eq(root, root2, 32);
  assert_verifies();
}

Test(log, append_and_read_back) {
  uint8_t id[16];
  size_t len;
  uint8_t *ev = cl_test_event("patient-1", "admin", "bp 120/80", id, &len);
  cl_append_result r;
  cl_err err;
  cr_assert_eq(cl_test_append(lg, &admin, &ev, &len, 1, 0, NULL, 0, 0, &r, &err), 0, "%s", err.msg);
  cr_assert_eq(r.n, 1);
  cr_assert_eq(r.seq[0], 3);
  cr_assert_eq(r.version[0], 1);
  cr_assert_eq(r.tree_size, 3);
  cr_assert_eq(r.duplicate, 0);
  cl_append_result_free(&r);

  collect c = {0};
  cr_assert_eq(cl_log_read_stream(lg, "patient-1", 1, 0, 0, collect_fn, &c, &err), 0, "%s",
               err.msg);
  cr_assert_eq(c.n, 1);
  cr_assert_eq(c.seq[0], 3);
  cr_assert_eq(c.len[0], len);
  cr_assert_arr_eq(c.ev[0], ev, len, "the exact signed bytes come back");
  collect_free(&c);

  collect g = {0};
  cr_assert_eq(cl_log_get_event(lg, id, collect_fn, &g, &err), 0, "%s", err.msg);
  cr_assert_eq(g.n, 1);
  cr_assert_eq(g.seq[0], 3);
  collect_free(&g);

  collect a = {0};
  cr_assert_eq(cl_log_read_all(lg, 1, 0, collect_fn, &a, &err), 0);
  cr_assert_eq(a.n, 3);
  for (size_t i = 0; i < a.n; i++)
    cr_assert_eq(a.seq[i], i + 1);
  collect_free(&a);

  uint64_t v;
  cr_assert_eq(cl_log_stream_version(lg, "patient-1", &v, &err), 0);
  cr_assert_eq(v, 1);
  cr_assert_eq(cl_log_stream_version(lg, "patient-none", &v, &err), 0);
  cr_assert_eq(v, 0);
  cr_assert_eq(cl_log_read_stream(lg, "patient-none", 1, 0, 0, collect_fn, &c, &err), CL_ENOTFOUND);
  free(ev);
  assert_verifies();
}

static void append_many(size_t n, int batch_sig, const char *stream, cl_append_result *r) {
  uint8_t *evs[1000];
  size_t lens[1000];
  cr_assert(n <= 1000);
  for (size_t i = 0; i < n; i++)
    evs[i] = cl_test_event(stream, "admin", NULL, NULL, &lens[i]);
  cl_err err;
  cr_assert_eq(cl_test_append(lg, &admin, evs, lens, n, batch_sig, NULL, 0, 0, r, &err), 0, "%s",
               err.msg);
  for (size_t i = 0; i < n; i++)
    free(evs[i]);
}

Test(log, batches_both_signature_kinds) {
  cl_append_result r;
  append_many(64, 1, "patient-b", &r);
  cr_assert_eq(r.seq[0], 3);
  cr_assert_eq(r.seq[63], 66);
  cr_assert_eq(r.version[63], 64);
  cl_append_result_free(&r);
  append_many(64, 0, "patient-b", &r);
  cr_assert_eq(r.version[0], 65);
  cl_append_result_free(&r);
  assert_verifies();
  /* reopen keeps stream heads */
  cl_log_close(lg);
  lg = cl_test_log_open(dir, 10000);
  append_many(1, 1, "patient-b", &r);
  cr_assert_eq(r.version[0], 129);
  cl_append_result_free(&r);
}

Test(log, idempotent_retry_returns_original_positions) {
  uint8_t *evs[3];
  size_t lens[3];
  for (int i = 0; i < 3; i++)
    evs[i] = cl_test_event(i == 1 ? "patient-x" : "patient-y", "admin", NULL, NULL, &lens[i]);
  cl_append_result r1, r2;
  cl_err err;
  cr_assert_eq(cl_test_append(lg, &admin, evs, lens, 3, 1, NULL, 0, 0, &r1, &err), 0);
  uint64_t size;
  uint8_t root[32], root2[32];
  head(&size, root);
  cr_assert_eq(cl_test_append(lg, &admin, evs, lens, 3, 0, NULL, 0, 0, &r2, &err), 0, "%s",
               err.msg);
  cr_assert_eq(r2.duplicate, 1);
  for (int i = 0; i < 3; i++) {
    cr_assert_eq(r2.seq[i], r1.seq[i]);
    cr_assert_eq(r2.version[i], r1.version[i]);
  }
  uint64_t size2;
  head(&size2, root2);
  cr_assert_eq(size2, size, "a retry appends nothing");
  cr_assert_arr_eq(root, root2, 32);
  cl_append_result_free(&r1);
  cl_append_result_free(&r2);

  /* part of a batch already committed: refused, nothing written */
  uint8_t *mix[2] = {evs[0], NULL};
  size_t mixl[2] = {lens[0], 0};
  mix[1] = cl_test_event("patient-x", "admin", NULL, NULL, &mixl[1]);
  cr_assert_eq(cl_test_append(lg, &admin, mix, mixl, 2, 1, NULL, 0, 0, &r2, &err), CL_EDUPLICATE);
  head(&size2, root2);
  cr_assert_eq(size2, size);
  free(mix[1]);
  for (int i = 0; i < 3; i++)
    free(evs[i]);
}

Test(log, same_id_other_content_is_refused) {
  uint8_t id[16];
  size_t l1, l2;
  uint8_t *e1 = cl_test_event("patient-z", "admin", "first", id, &l1);
  cl_append_result r;
  cl_err err;
  cr_assert_eq(cl_test_append(lg, &admin, &e1, &l1, 1, 0, NULL, 0, 0, &r, &err), 0);
  cl_append_result_free(&r);
  /* same id, different note */
  Clinlog__V1__Event *ev = clinlog__v1__event__unpack(NULL, l1, e1);
  char *orig = ev->observation_recorded->note;
  ev->observation_recorded->note = "second";
  uint8_t *e2 = cl_test_pack_event(ev, &l2);
  ev->observation_recorded->note = orig;
  clinlog__v1__event__free_unpacked(ev, NULL);
  cr_assert_eq(cl_test_append(lg, &admin, &e2, &l2, 1, 0, NULL, 0, 0, &r, &err), CL_EDUPLICATE);
  cr_assert(strstr(err.msg, "different content"), "%s", err.msg);
  free(e1);
  free(e2);
}

Test(log, expected_versions) {
  cl_err err;
  size_t len;
  uint8_t *ev = cl_test_event("patient-v", "admin", NULL, NULL, &len);
  cl_append_result r;
  cr_assert_eq(cl_test_append(lg, &admin, &ev, &len, 1, 0, "patient-v",
                              CLINLOG__V1__EXPECTED_VERSION__KIND__EXISTS, 0, &r, &err),
               CL_ECONFLICT);
  cr_assert_eq(r.conflict_current, 0);
  cr_assert_str_eq(r.conflict_stream, "patient-v");
  cl_append_result_free(&r);
  cr_assert_eq(cl_test_append(lg, &admin, &ev, &len, 1, 0, "patient-v",
                              CLINLOG__V1__EXPECTED_VERSION__KIND__NO_STREAM, 0, &r, &err),
               0, "%s", err.msg);
  cl_append_result_free(&r);
  free(ev);
  ev = cl_test_event("patient-v", "admin", NULL, NULL, &len);
  cr_assert_eq(cl_test_append(lg, &admin, &ev, &len, 1, 0, "patient-v",
                              CLINLOG__V1__EXPECTED_VERSION__KIND__NO_STREAM, 0, &r, &err),
               CL_ECONFLICT);
  cr_assert_eq(r.conflict_current, 1);
  cl_append_result_free(&r);
  cr_assert_eq(cl_test_append(lg, &admin, &ev, &len, 1, 0, "patient-v",
                              CLINLOG__V1__EXPECTED_VERSION__KIND__EXACT, 5, &r, &err),
               CL_ECONFLICT);
  cr_assert_eq(r.conflict_current, 1);
  cr_assert(strstr(err.msg, "version 1"), "%s", err.msg);
  cl_append_result_free(&r);
  cr_assert_eq(cl_test_append(lg, &admin, &ev, &len, 1, 0, "patient-v",
                              CLINLOG__V1__EXPECTED_VERSION__KIND__EXACT, 1, &r, &err),
               0);
  cr_assert_eq(r.version[0], 2);
  cl_append_result_free(&r);
  free(ev);
  /* expectation for a stream not in the batch */
  ev = cl_test_event("patient-v", "admin", NULL, NULL, &len);
  cr_assert_eq(cl_test_append(lg, &admin, &ev, &len, 1, 0, "patient-other",
                              CLINLOG__V1__EXPECTED_VERSION__KIND__ANY, 0, &r, &err),
               CL_EINVAL);
  free(ev);
}

/* ---- bad input: each error has its code and changes nothing ---- */

Test(log, bad_input_changes_nothing) {
  uint64_t size;
  uint8_t root[32];
  cl_err err;
  cl_append_result r;
  size_t len;
  head(&size, root);

  /* malformed protobuf */
  uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff};
  uint8_t *jp = junk;
  size_t jl = sizeof junk;
  expect_unchanged_after(CL_EMALFORMED,
                         cl_test_append(lg, &admin, &jp, &jl, 1, 0, NULL, 0, 0, &r, &err), root,
                         size, &err);

  /* bad signature: sign one event, submit another */
  uint8_t *ev = cl_test_event("patient-q", "admin", NULL, NULL, &len);
  uint8_t *ev2 = cl_test_event("patient-q", "admin", NULL, NULL, &len);
  {
    uint8_t h[32], sig[64];
    cl_event_hash(ev2, len, h);
    cl_sign_event(&admin, h, sig);
    Clinlog__V1__Signature s = CLINLOG__V1__SIGNATURE__INIT, *sp = &s;
    s.key_id = (ProtobufCBinaryData){32, admin.pk};
    s.signature = (ProtobufCBinaryData){64, sig};
    Clinlog__V1__AppendBatch b = CLINLOG__V1__APPEND_BATCH__INIT;
    ProtobufCBinaryData e = {len, ev};
    b.n_events = 1;
    b.events = &e;
    b.n_signatures = 1;
    b.signatures = &sp;
    expect_unchanged_after(CL_EBADSIG, cl_log_append(lg, &b, &r, &err), root, size, &err);
    /* no signature at all */
    b.n_signatures = 0;
    expect_unchanged_after(CL_EINVAL, cl_log_append(lg, &b, &r, &err), root, size, &err);
  }

  /* unknown key */
  cl_signer stranger;
  cr_assert_eq(cl_signer_generate(&stranger, &err), 0);
  expect_unchanged_after(CL_EUNKNOWNKEY,
                         cl_test_append(lg, &stranger, &ev, &len, 1, 0, NULL, 0, 0, &r, &err), root,
                         size, &err);
  cl_signer_free(&stranger);

  /* oversize event */
  char *big = malloc(2 << 20);
  memset(big, 'a', (2 << 20) - 1);
  big[(2 << 20) - 1] = 0;
  size_t bl;
  uint8_t *bev = cl_test_event("patient-q", "admin", big, NULL, &bl);
  expect_unchanged_after(CL_ETOOBIG,
                         cl_test_append(lg, &admin, &bev, &bl, 1, 0, NULL, 0, 0, &r, &err), root,
                         size, &err);
  free(big);
  free(bev);

  /* duplicate ids within one batch */
  uint8_t *dup[2] = {ev, ev};
  size_t dupl[2] = {len, len};
  expect_unchanged_after(CL_EINVAL,
                         cl_test_append(lg, &admin, dup, dupl, 2, 1, NULL, 0, 0, &r, &err), root,
                         size, &err);
  cr_assert(strstr(err.msg, "duplicate"), "%s", err.msg);

  /* invalid UTF-8 in a string, and in the stream name */
  uint8_t *bad = cl_test_event("patient-q", "admin", "caf\xc3", NULL, &bl);
  expect_unchanged_after(CL_EMALFORMED,
                         cl_test_append(lg, &admin, &bad, &bl, 1, 0, NULL, 0, 0, &r, &err), root,
                         size, &err);
  cr_assert(strstr(err.msg, "note"), "names the field: %s", err.msg);
  free(bad);
  bad = cl_test_event("patient-\xff", "admin", NULL, NULL, &bl);
  expect_unchanged_after(CL_EMALFORMED,
                         cl_test_append(lg, &admin, &bad, &bl, 1, 0, NULL, 0, 0, &r, &err), root,
                         size, &err);
  free(bad);

  /* an embedded NUL: protobuf-c would hand out "patient-a" for a stream the
   * client signed as "patient-a\0b" */
  bad = cl_test_event("patient-aXb", "admin", NULL, NULL, &bl);
  uint8_t *x = memmem(bad, bl, "patient-aXb", 11);
  cr_assert_not_null(x);
  x[9] = 0;
  expect_unchanged_after(CL_EMALFORMED,
                         cl_test_append(lg, &admin, &bad, &bl, 1, 0, NULL, 0, 0, &r, &err), root,
                         size, &err);
  cr_assert(strstr(err.msg, "NUL"), "%s", err.msg);
  free(bad);
  bad = cl_test_event("patient-q", "adminXevil", NULL, NULL, &bl);
  x = memmem(bad, bl, "adminXevil", 10);
  x[5] = 0;
  expect_unchanged_after(CL_EMALFORMED,
                         cl_test_append(lg, &admin, &bad, &bl, 1, 0, NULL, 0, 0, &r, &err), root,
                         size, &err);
  free(bad);

  /* events naming another principal than the key's */
  bad = cl_test_event("patient-q", "someone-else", NULL, NULL, &bl);
  expect_unchanged_after(CL_EDENIED,
                         cl_test_append(lg, &admin, &bad, &bl, 1, 0, NULL, 0, 0, &r, &err), root,
                         size, &err);
  free(bad);

  /* a batch with one bad event among good ones writes none of them */
  uint8_t *mixed[3];
  size_t ml[3];
  mixed[0] = cl_test_event("patient-q", "admin", NULL, NULL, &ml[0]);
  mixed[1] = cl_test_event("patient-q", "admin", "\xed\xa0\x80", NULL, &ml[1]); /* surrogate */
  mixed[2] = cl_test_event("patient-r", "admin", NULL, NULL, &ml[2]);
  expect_unchanged_after(CL_EMALFORMED,
                         cl_test_append(lg, &admin, mixed, ml, 3, 1, NULL, 0, 0, &r, &err), root,
                         size, &err);
  cr_assert(strstr(err.msg, "events[1]"), "names the event: %s", err.msg);
  for (int i = 0; i < 3; i++)
    free(mixed[i]);
  free(ev);
  free(ev2);
  assert_verifies();
}

Test(log, no_phi_on_disk_and_erasure) {
  const char *name = "Zelda Canarywhistle", *mrn = "MRN-CANARY-778899";
  char note[128];
  snprintf(note, sizeof note, "%s %s", name, mrn);
  cl_err err;
  uint64_t seq;
  for (int i = 0; i < 20; i++)
    cr_assert_eq(cl_test_append1(lg, &admin, "patient-CANARY-778899", "admin", note, &seq, &err),
                 0);
  cr_assert_eq(cl_test_append1(lg, &admin, "patient-keep", "admin", "kept", &seq, &err), 0);
  cl_log_close(lg); /* flush memtables and WAL to files */
  lg = cl_test_log_open(dir, 10000);
  cr_assert_not(cl_test_tree_contains(dir, name, strlen(name)));
  cr_assert_not(cl_test_tree_contains(dir, mrn, strlen(mrn)));
  cr_assert_not(cl_test_tree_contains(dir, "patient-CANARY", 14), "stream names are keyed hashes");

  collect c = {0};
  cr_assert_eq(cl_log_read_stream(lg, "patient-CANARY-778899", 1, 0, 0, collect_fn, &c, &err), 0);
  cr_assert_eq(c.n, 20);
  cr_assert_not(c.erased[0]);
  cr_assert(memmem(c.ev[0], c.len[0], name, strlen(name)), "readable before erasure");
  collect_free(&c);

  /* crypto-shred the stream */
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  Clinlog__V1__RecordedBy by = CLINLOG__V1__RECORDED_BY__INIT;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  Clinlog__V1__StreamErased se = CLINLOG__V1__STREAM_ERASED__INIT;
  uint8_t eid[16];
  randombytes_buf(eid, 16);
  by.principal_id = "admin";
  ev.event_id = (ProtobufCBinaryData){16, eid};
  ev.stream = "$erasures";
  ev.occurred_at = &ts;
  ev.recorded_by = &by;
  ev.body_case = CLINLOG__V1__EVENT__BODY_STREAM_ERASED;
  ev.stream_erased = &se;
  se.stream = "patient-CANARY-778899";
  se.reason = "GDPR art. 17 request #42";
  size_t len;
  uint8_t *buf = cl_test_pack_event(&ev, &len);
  uint8_t tag[32], wrapped[CL_WRAPPED_KEY_SIZE];
  size_t wl;
  cr_assert_eq(cl_log_stream_tag(lg, "patient-CANARY-778899", tag, &err), 0);
  cr_assert_eq(cl_log_wrapped_key(lg, tag, wrapped, sizeof wrapped, &wl, &err), 0);
  cr_assert_eq(wl, CL_WRAPPED_KEY_SIZE);
  cr_assert(cl_test_tree_contains(dir, wrapped, wl), "the key is on disk before the erasure");
  cl_append_result r;
  cr_assert_eq(cl_test_append(lg, &admin, &buf, &len, 1, 0, NULL, 0, 0, &r, &err), 0, "%s",
               err.msg);
  cl_append_result_free(&r);
  free(buf);
  /* the key is destroyed at the commit; its bytes leave the disk with the
   * background purge, while the log stays open */
  cr_assert_eq(cl_log_purge_wait(lg, 0, &err), 0, "%s", err.msg);
  cr_assert_not(cl_test_tree_contains(dir, wrapped, wl), "the erased key's bytes are purged");

  collect e = {0};
  cr_assert_eq(cl_log_read_stream(lg, "patient-CANARY-778899", 1, 0, 0, collect_fn, &e, &err), 0);
  cr_assert_eq(e.n, 20, "records stay in the log");
  for (size_t i = 0; i < e.n; i++) {
    cr_assert(e.erased[i]);
    cr_assert_null(e.ev[i], "content unreadable");
  }
  collect_free(&e);
  cr_assert_eq(cl_test_append1(lg, &admin, "patient-CANARY-778899", "admin", "x", &seq, &err),
               CL_EERASED);
  collect k = {0};
  cr_assert_eq(cl_log_read_stream(lg, "patient-keep", 1, 0, 0, collect_fn, &k, &err), 0);
  cr_assert_eq(k.n, 1);
  cr_assert_not_null(k.ev[0], "other streams unaffected");
  collect_free(&k);
  assert_verifies();
  cl_log_close(lg);
  lg = cl_test_log_open(dir, 10000);
  cr_assert_not(cl_test_tree_contains(dir, name, strlen(name)));
  assert_verifies();
}

/* ---- concurrency: one stream, many appenders with exact expected versions ---- */

#define WRITERS 8
#define PER_WRITER 40

typedef struct wctx {
  int wins;
  int conflicts;
} wctx;

static void *writer(void *arg) {
  wctx *w = arg;
  cl_err err;
  while (w->wins < PER_WRITER) {
    uint64_t v;
    if (cl_log_stream_version(lg, "patient-race", &v, &err) != 0)
      return NULL;
    size_t len;
    uint8_t *ev = cl_test_event("patient-race", "admin", NULL, NULL, &len);
    cl_append_result r;
    int rc = cl_test_append(lg, &admin, &ev, &len, 1, 0, "patient-race",
                            v ? CLINLOG__V1__EXPECTED_VERSION__KIND__EXACT
                              : CLINLOG__V1__EXPECTED_VERSION__KIND__NO_STREAM,
                            v, &r, &err);
    free(ev);
    if (rc == 0) {
      if (r.version[0] != v + 1)
        return NULL;
      w->wins++;
      cl_append_result_free(&r);
    } else if (rc == CL_ECONFLICT) {
      w->conflicts++;
      cl_append_result_free(&r);
    } else {
      return NULL;
    }
  }
  return arg;
}

static int count_version(void *ctx, const cl_event_view *v, cl_err *err) {
  (void)err;
  uint64_t *next = ctx;
  if (v->stream_version != *next)
    return cl_err_set(err, CL_ECORRUPT, "version %llu where %llu expected",
                      (unsigned long long)v->stream_version, (unsigned long long)*next);
  (*next)++;
  return 0;
}

Test(log, concurrent_appenders_one_winner_per_version) {
  pthread_t t[WRITERS];
  wctx w[WRITERS];
  memset(w, 0, sizeof w);
  for (int i = 0; i < WRITERS; i++)
    pthread_create(&t[i], NULL, writer, &w[i]);
  int conflicts = 0;
  for (int i = 0; i < WRITERS; i++) {
    void *ok;
    pthread_join(t[i], &ok);
    cr_assert_not_null(ok, "writer %d hit an unexpected error", i);
    conflicts += w[i].conflicts;
  }
  uint64_t v;
  cl_err err;
  cr_assert_eq(cl_log_stream_version(lg, "patient-race", &v, &err), 0);
  cr_assert_eq(v, WRITERS * PER_WRITER, "every win is exactly one version");
  uint64_t next = 1;
  cr_assert_eq(cl_log_read_stream(lg, "patient-race", 1, 0, 0, count_version, &next, &err), 0, "%s",
               err.msg);
  cr_assert_eq(next, WRITERS * PER_WRITER + 1, "no gaps");
  cr_log_info("%d conflicts refused", conflicts);
  assert_verifies();
}

/* Concurrent batches that all start new streams must agree on each
 * stream's data key instead of failing with CL_EAGAIN. */
static void *new_stream_writer(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  for (int b = 0; b < 15; b++) {
    uint8_t *evs[32];
    size_t lens[32];
    for (int i = 0; i < 32; i++) {
      char stream[32];
      snprintf(stream, sizeof stream, "patient-new-%u", rand_r(&seed) % 300);
      evs[i] = cl_test_event(stream, "admin", NULL, NULL, &lens[i]);
    }
    cl_append_result r;
    cl_err err;
    int rc = cl_test_append(lg, &admin, evs, lens, 32, 1, NULL, 0, 0, &r, &err);
    for (int i = 0; i < 32; i++)
      free(evs[i]);
    if (rc) {
      fprintf(stderr, "append: %s\n", err.msg);
      return NULL;
    }
    cl_append_result_free(&r);
  }
  return arg;
}

Test(log, concurrent_first_writes_to_new_streams) {
  pthread_t t[8];
  for (uintptr_t i = 0; i < 8; i++)
    pthread_create(&t[i], NULL, new_stream_writer, (void *)(i + 1));
  for (int i = 0; i < 8; i++) {
    void *ok;
    pthread_join(t[i], &ok);
    cr_assert_not_null(ok, "writer %d failed", i);
  }
  uint64_t size;
  head(&size, NULL);
  cr_assert_eq(size, 2 + 8 * 15 * 32);
  assert_verifies();
  /* and every event reads back (each stream has one key) */
  collect c = {0};
  cl_err err;
  cr_assert_eq(cl_log_read_all(lg, 3, 100, collect_fn, &c, &err), 0, "%s", err.msg);
  cr_assert_eq(c.n, 100);
  for (size_t i = 0; i < c.n; i++)
    cr_assert_not_null(c.ev[i]);
  collect_free(&c);
}

Test(log, proofs_and_checkpoints) {
  cl_log_close(lg);
  lg = cl_test_log_open(dir, 10);
  cl_append_result r;
  append_many(25, 1, "patient-p", &r);
  cl_append_result_free(&r);
  uint64_t size;
  uint8_t root[32];
  head(&size, root);
  cr_assert_eq(size, 27);
  cl_err err;
  for (uint64_t seq = 1; seq <= size; seq++) {
    uint8_t proof[64][32], leaf[32];
    size_t n;
    cr_assert_eq(cl_log_prove_inclusion(lg, seq, size, proof, &n, leaf, &err), 0, "%s", err.msg);
    cr_assert_eq(
        cl_merkle_verify_inclusion(leaf, seq - 1, size, (const uint8_t(*)[32])proof, n, root, &err),
        0);
  }
  for (uint64_t old = 1; old <= size; old++) {
    uint8_t proof[64][32], oroot[32];
    size_t n;
    cr_assert_eq(cl_log_prove_consistency(lg, old, size, proof, &n, &err), 0);
    cr_assert_eq(cl_log_root_at(lg, old, oroot, &err), 0);
    cr_assert_eq(
        cl_merkle_verify_consistency(old, size, oroot, root, (const uint8_t(*)[32])proof, n, &err),
        0);
  }
  /* the interval signs checkpoints at exactly 10 and 20, even inside a
   * batch (the same sizes on every replica however appends were grouped) */
  char *note;
  size_t len;
  cr_assert_eq(cl_log_get_checkpoint(lg, 0, &note, &len, &err), 0);
  cr_assert(strstr(note, "\n20\n") != NULL, "a batch crossing 20 checkpoints at 20: %s", note);
  cl_checkpoint cp;
  uint8_t r20[32];
  cr_assert_eq(cl_checkpoint_parse(note, len, &cp, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_log_root_at(lg, 20, r20, &err), 0);
  cr_assert(memcmp(cp.root, r20, 32) == 0, "the checkpoint at 20 signs the root at 20");
  free(note);
  cr_assert_eq(cl_log_get_checkpoint(lg, 19, &note, &len, &err), 0);
  cr_assert(strstr(note, "\n10\n") != NULL, "the one before is at 10: %s", note);
  free(note);
  cr_assert_eq(cl_log_checkpoint(lg, &note, &len, &err), 0);
  cr_assert(strstr(note, "\n27\n"));
  free(note);
  assert_verifies();
}

/* A sealed scan hands records without their content; cl_log_open_event
 * decrypts any of them, as cl_log_read_all would, until the stream is erased. */
typedef struct sealed {
  cl_log *log;
  size_t n, opened, erased;
  collect *plain; /* the same range, read decrypted */
} sealed;

static int sealed_fn(void *ctx, const cl_event_view *v, cl_err *err) {
  sealed *s = ctx;
  if (v->event || !v->ciphertext || !v->nonce)
    return cl_err_set(err, CL_EINVAL, "record %llu: a scan view carries content",
                      (unsigned long long)v->seq);
  if (v->erased != s->plain->erased[s->n])
    return cl_err_set(err, CL_EINVAL, "record %llu: erased flags differ",
                      (unsigned long long)v->seq);
  uint8_t *plain;
  size_t n;
  int rc = cl_log_open_event(s->log, v, &plain, &n, err);
  if (v->erased) {
    if (rc != CL_EERASED)
      return cl_err_set(err, CL_EINVAL, "record %llu: erased, yet opened (%d)",
                        (unsigned long long)v->seq, rc);
    s->erased++;
  } else {
    if (rc)
      return rc;
    int same = n == s->plain->len[s->n] && memcmp(plain, s->plain->ev[s->n], n) == 0;
    cl_log_event_free(plain, n);
    if (!same)
      return cl_err_set(err, CL_EINVAL, "record %llu opens to other bytes",
                        (unsigned long long)v->seq);
    s->opened++;
  }
  s->n++;
  return 0;
}

Test(log, sealed_scan_and_open_event) {
  cl_err err;
  uint64_t seq;
  for (int i = 0; i < 6; i++) {
    cr_assert_eq(cl_test_append1(lg, &admin, "patient-a", "admin", "a", &seq, &err), 0);
    cr_assert_eq(cl_test_append1(lg, &admin, "patient-b", "admin", "b", &seq, &err), 0);
  }
  size_t len;
  uint8_t *ev = cl_test_erasure_event("patient-b", &len);
  cl_append_result r;
  cr_assert_eq(cl_test_append(lg, &admin, &ev, &len, 1, 0, NULL, 0, 0, &r, &err), 0, "%s", err.msg);
  cl_append_result_free(&r);
  free(ev);
  collect c = {0};
  cr_assert_eq(cl_log_read_all(lg, 1, 0, collect_fn, &c, &err), 0, "%s", err.msg);
  sealed s = {.log = lg, .plain = &c};
  cr_assert_eq(cl_log_scan(lg, 1, 0, sealed_fn, &s, &err), 0, "%s", err.msg);
  cr_assert_eq(s.n, c.n);
  cr_assert_eq(s.erased, 6, "patient-b's events are erased");
  cr_assert_eq(s.opened, c.n - 6);
  /* a view that is not of a stored record is refused */
  cl_event_view v = {.seq = 1};
  uint8_t *plain;
  size_t n;
  cr_assert_eq(cl_log_open_event(lg, &v, &plain, &n, &err), CL_EINVAL);
  cr_assert_null(plain);
  collect_free(&c);
}

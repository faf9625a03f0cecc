/* Tests for store/log.c: append, idempotency, expected versions, errors
 * that change nothing, reads, encryption at rest, erasure, concurrency. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "store/checkpoint.h"
#include "store/event.h"
#include "store/keyring.h"
#include "store/logkey.h"
#include "store/log.h"
#include "store/merkle.h"
#include "store/verify.h"
#include "tests/support/testutil.h"

static char *dir;
static cl_log *lg;
static cl_signer admin;

static void setup(void) { lg = cl_test_log_new("log", &dir, &admin, 10000); }
static void teardown(void) {
  cl_log_close(lg);
  cl_signer_free(&admin);
  cl_test_rmtree(dir);
  free(dir);
}

TestSuite(log, .init = setup, .fini = teardown, .timeout = 120);

typedef struct collect {
  size_t n;
  uint64_t seq[256];
  uint64_t ver[256];
  uint8_t *ev[256];
  size_t len[256];
  int erased[256];
} collect;

static int collect_fn(void *ctx, const cl_event_view *v, cl_err *err) {
  (void)err;
  collect *c = ctx;
  if (c->n == 256)
    return 1;
  c->seq[c->n] = v->seq;
  c->ver[c->n] = v->stream_version;
  c->erased[c->n] = v->erased;
  c->len[c->n] = v->event_len;
  c->ev[c->n] = v->event ? malloc(v->event_len) : NULL;
  if (v->event)
    memcpy(c->ev[c->n], v->event, v->event_len);
  c->n++;
  return 0;
}

static void collect_free(collect *c) {
  for (size_t i = 0; i < c->n; i++)
    free(c->ev[i]);
}

static void head(uint64_t *size, uint8_t root[32]) { cl_log_head(lg, size, root); }

static void assert_verifies(void) {
  cl_verify_options o = {.dir = dir};
  cl_verify_report rep;
  cl_err err;
  /* verification opens the directory read-only next to the writer; the
   * writer's background purge (after an erasure) must not move data between
   * its WAL and table files while the read-only view opens */
  cr_assert_eq(cl_log_purge_wait(lg, 0, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_verify_dir(&o, &rep, &err), 0, "%s", err.msg);
  cr_assert(rep.ok, "verify failed at %llu: %s", (unsigned long long)rep.fail_seq, rep.fail_what);
}

Test(log, genesis_and_reopen) {
  uint64_t size;
  uint8_t root[32];
  head(&size, root);
  cr_assert_eq(size, 2);
  char principal[64], roles[64];
  cr_assert_eq(cl_log_key_info(lg, admin.pk, principal, sizeof principal, roles, sizeof roles, NULL), 0);
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
  cr_assert_eq(cl_log_read_stream(lg, "patient-1", 1, 0, 0, collect_fn, &c, &err), 0, "%s", err.msg);
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
  cr_assert_eq(cl_test_append(lg, &admin, evs, lens, 3, 0, NULL, 0, 0, &r2, &err), 0, "%s", err.msg);
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
                              CLINLOG__V1__EXPECTED_VERSION__KIND__NO_STREAM, 0, &r, &err), 0, "%s", err.msg);
  cl_append_result_free(&r);
  free(ev);
  ev = cl_test_event("patient-v", "admin", NULL, NULL, &len);
  cr_assert_eq(cl_test_append(lg, &admin, &ev, &len, 1, 0, "patient-v",
                              CLINLOG__V1__EXPECTED_VERSION__KIND__NO_STREAM, 0, &r, &err),
               CL_ECONFLICT);
  cr_assert_eq(r.conflict_current, 1);
  cl_append_result_free(&r);
  cr_assert_eq(cl_test_append(lg, &admin, &ev, &len, 1, 0, "patient-v",
                              CLINLOG__V1__EXPECTED_VERSION__KIND__EXACT, 5, &r, &err), CL_ECONFLICT);
  cr_assert_eq(r.conflict_current, 1);
  cr_assert(strstr(err.msg, "version 1"), "%s", err.msg);
  cl_append_result_free(&r);
  cr_assert_eq(cl_test_append(lg, &admin, &ev, &len, 1, 0, "patient-v",
                              CLINLOG__V1__EXPECTED_VERSION__KIND__EXACT, 1, &r, &err), 0);
  cr_assert_eq(r.version[0], 2);
  cl_append_result_free(&r);
  free(ev);
  /* expectation for a stream not in the batch */
  ev = cl_test_event("patient-v", "admin", NULL, NULL, &len);
  cr_assert_eq(cl_test_append(lg, &admin, &ev, &len, 1, 0, "patient-other",
                              CLINLOG__V1__EXPECTED_VERSION__KIND__ANY, 0, &r, &err), CL_EINVAL);
  free(ev);
}

/* ---- bad input: each error has its code and changes nothing ---- */

static void expect_unchanged_after(int want, int got, const uint8_t before[32], uint64_t size_before,
                                   const cl_err *err) {
  cr_assert_eq(got, want, "want %s got %s: %s", cl_errname(want), cl_errname(got), err->msg);
  cr_assert(err->msg[0], "an error says what was wrong");
  uint64_t size;
  uint8_t root[32];
  head(&size, root);
  cr_assert_eq(size, size_before);
  cr_assert_arr_eq(root, before, 32);
}

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
  expect_unchanged_after(CL_EMALFORMED, cl_test_append(lg, &admin, &jp, &jl, 1, 0, NULL, 0, 0, &r, &err),
                         root, size, &err);

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
  expect_unchanged_after(CL_ETOOBIG, cl_test_append(lg, &admin, &bev, &bl, 1, 0, NULL, 0, 0, &r, &err),
                         root, size, &err);
  free(big);
  free(bev);

  /* duplicate ids within one batch */
  uint8_t *dup[2] = {ev, ev};
  size_t dupl[2] = {len, len};
  expect_unchanged_after(CL_EINVAL, cl_test_append(lg, &admin, dup, dupl, 2, 1, NULL, 0, 0, &r, &err),
                         root, size, &err);
  cr_assert(strstr(err.msg, "duplicate"), "%s", err.msg);

  /* invalid UTF-8 in a string, and in the stream name */
  uint8_t *bad = cl_test_event("patient-q", "admin", "caf\xc3", NULL, &bl);
  expect_unchanged_after(CL_EMALFORMED, cl_test_append(lg, &admin, &bad, &bl, 1, 0, NULL, 0, 0, &r, &err),
                         root, size, &err);
  cr_assert(strstr(err.msg, "note"), "names the field: %s", err.msg);
  free(bad);
  bad = cl_test_event("patient-\xff", "admin", NULL, NULL, &bl);
  expect_unchanged_after(CL_EMALFORMED, cl_test_append(lg, &admin, &bad, &bl, 1, 0, NULL, 0, 0, &r, &err),
                         root, size, &err);
  free(bad);

  /* an embedded NUL: protobuf-c would hand out "patient-a" for a stream the
   * client signed as "patient-a\0b" */
  bad = cl_test_event("patient-aXb", "admin", NULL, NULL, &bl);
  uint8_t *x = memmem(bad, bl, "patient-aXb", 11);
  cr_assert_not_null(x);
  x[9] = 0;
  expect_unchanged_after(CL_EMALFORMED, cl_test_append(lg, &admin, &bad, &bl, 1, 0, NULL, 0, 0, &r, &err),
                         root, size, &err);
  cr_assert(strstr(err.msg, "NUL"), "%s", err.msg);
  free(bad);
  bad = cl_test_event("patient-q", "adminXevil", NULL, NULL, &bl);
  x = memmem(bad, bl, "adminXevil", 10);
  x[5] = 0;
  expect_unchanged_after(CL_EMALFORMED, cl_test_append(lg, &admin, &bad, &bl, 1, 0, NULL, 0, 0, &r, &err),
                         root, size, &err);
  free(bad);

  /* events naming another principal than the key's */
  bad = cl_test_event("patient-q", "someone-else", NULL, NULL, &bl);
  expect_unchanged_after(CL_EDENIED, cl_test_append(lg, &admin, &bad, &bl, 1, 0, NULL, 0, 0, &r, &err),
                         root, size, &err);
  free(bad);

  /* a batch with one bad event among good ones writes none of them */
  uint8_t *mixed[3];
  size_t ml[3];
  mixed[0] = cl_test_event("patient-q", "admin", NULL, NULL, &ml[0]);
  mixed[1] = cl_test_event("patient-q", "admin", "\xed\xa0\x80", NULL, &ml[1]); /* surrogate */
  mixed[2] = cl_test_event("patient-r", "admin", NULL, NULL, &ml[2]);
  expect_unchanged_after(CL_EMALFORMED, cl_test_append(lg, &admin, mixed, ml, 3, 1, NULL, 0, 0, &r, &err),
                         root, size, &err);
  cr_assert(strstr(err.msg, "events[1]"), "names the event: %s", err.msg);
  for (int i = 0; i < 3; i++)
    free(mixed[i]);
  free(ev);
  free(ev2);
  assert_verifies();
}

/* Registers principal `id` with `roles` and a new key, signed by admin. */
static void register_principal(const char *id, const char *role, cl_signer *key) {
  cl_err err;
  cr_assert_eq(cl_signer_generate(key, &err), 0);
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  Clinlog__V1__RecordedBy by = CLINLOG__V1__RECORDED_BY__INIT;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  Clinlog__V1__PrincipalRegistered pr = CLINLOG__V1__PRINCIPAL_REGISTERED__INIT;
  uint8_t eid[16];
  randombytes_buf(eid, 16);
  char stream[128];
  snprintf(stream, sizeof stream, "$principal-%s", id);
  char *roles[1] = {(char *)role};
  by.principal_id = "admin";
  ev.event_id = (ProtobufCBinaryData){16, eid};
  ev.stream = stream;
  ev.occurred_at = &ts;
  ev.recorded_by = &by;
  ev.body_case = CLINLOG__V1__EVENT__BODY_PRINCIPAL_REGISTERED;
  ev.principal_registered = &pr;
  pr.principal_id = (char *)id;
  pr.n_roles = 1;
  pr.roles = roles;
  pr.public_key = (ProtobufCBinaryData){32, key->pk};
  size_t len;
  uint8_t *buf = cl_test_pack_event(&ev, &len);
  cl_append_result r;
  cr_assert_eq(cl_test_append(lg, &admin, &buf, &len, 1, 0, NULL, 0, 0, &r, &err), 0, "%s", err.msg);
  cl_append_result_free(&r);
  free(buf);
}

Test(log, roles_and_revocation) {
  cl_signer nurse;
  register_principal("nurse-7", "nurse", &nurse);
  cl_err err;
  uint64_t seq;
  cr_assert_eq(cl_test_append1(lg, &nurse, "patient-n", "nurse-7", NULL, &seq, &err), 0, "%s", err.msg);

  /* a nurse may not register principals */
  cl_signer other;
  cr_assert_eq(cl_signer_generate(&other, &err), 0);
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  Clinlog__V1__RecordedBy by = CLINLOG__V1__RECORDED_BY__INIT;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  Clinlog__V1__PrincipalRegistered pr = CLINLOG__V1__PRINCIPAL_REGISTERED__INIT;
  uint8_t eid[16];
  randombytes_buf(eid, 16);
  char *roles[1] = {"admin"};
  by.principal_id = "nurse-7";
  ev.event_id = (ProtobufCBinaryData){16, eid};
  ev.stream = "$principal-evil";
  ev.occurred_at = &ts;
  ev.recorded_by = &by;
  ev.body_case = CLINLOG__V1__EVENT__BODY_PRINCIPAL_REGISTERED;
  ev.principal_registered = &pr;
  pr.principal_id = "evil";
  pr.n_roles = 1;
  pr.roles = roles;
  pr.public_key = (ProtobufCBinaryData){32, other.pk};
  size_t len;
  uint8_t *buf = cl_test_pack_event(&ev, &len);
  cl_append_result r;
  cr_assert_eq(cl_test_append(lg, &nurse, &buf, &len, 1, 0, NULL, 0, 0, &r, &err), CL_EDENIED);
  free(buf);
  cl_signer_free(&other);

  /* admin revokes the nurse's key; her next append is refused */
  Clinlog__V1__KeyRevoked kr = CLINLOG__V1__KEY_REVOKED__INIT;
  randombytes_buf(eid, 16);
  by.principal_id = "admin";
  ev.stream = "$principal-nurse-7";
  ev.body_case = CLINLOG__V1__EVENT__BODY_KEY_REVOKED;
  ev.key_revoked = &kr;
  kr.principal_id = "nurse-7";
  kr.public_key = (ProtobufCBinaryData){32, nurse.pk};
  kr.reason = "badge lost";
  buf = cl_test_pack_event(&ev, &len);
  cr_assert_eq(cl_test_append(lg, &admin, &buf, &len, 1, 0, NULL, 0, 0, &r, &err), 0, "%s", err.msg);
  cl_append_result_free(&r);
  free(buf);
  cr_assert_eq(cl_test_append1(lg, &nurse, "patient-n", "nurse-7", NULL, &seq, &err), CL_EREVOKED);
  /* the keyring survives a restart */
  cl_log_close(lg);
  lg = cl_test_log_open(dir, 10000);
  cr_assert_eq(cl_test_append1(lg, &nurse, "patient-n", "nurse-7", NULL, &seq, &err), CL_EREVOKED);
  cl_signer_free(&nurse);
  assert_verifies();
}

Test(log, no_phi_on_disk_and_erasure) {
  const char *name = "Zelda Canarywhistle", *mrn = "MRN-CANARY-778899";
  char note[128];
  snprintf(note, sizeof note, "%s %s", name, mrn);
  cl_err err;
  uint64_t seq;
  for (int i = 0; i < 20; i++)
    cr_assert_eq(cl_test_append1(lg, &admin, "patient-CANARY-778899", "admin", note, &seq, &err), 0);
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
  cr_assert_eq(cl_test_append(lg, &admin, &buf, &len, 1, 0, NULL, 0, 0, &r, &err), 0, "%s", err.msg);
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
  cr_assert_eq(cl_log_read_stream(lg, "patient-race", 1, 0, 0, count_version, &next, &err), 0,
               "%s", err.msg);
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
    cr_assert_eq(cl_merkle_verify_inclusion(leaf, seq - 1, size, (const uint8_t(*)[32])proof, n, root, &err), 0);
  }
  for (uint64_t old = 1; old <= size; old++) {
    uint8_t proof[64][32], oroot[32];
    size_t n;
    cr_assert_eq(cl_log_prove_consistency(lg, old, size, proof, &n, &err), 0);
    cr_assert_eq(cl_log_root_at(lg, old, oroot, &err), 0);
    cr_assert_eq(cl_merkle_verify_consistency(old, size, oroot, root, (const uint8_t(*)[32])proof, n, &err), 0);
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

/* ---- keyring changes inside one batch, and system-stream rules ---- */

static uint8_t *security_event(const char *stream, const char *by_principal, int type,
                               const char *principal, const uint8_t *pk, const char *role,
                               size_t *len) {
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  Clinlog__V1__RecordedBy by = CLINLOG__V1__RECORDED_BY__INIT;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  Clinlog__V1__PrincipalRegistered pr = CLINLOG__V1__PRINCIPAL_REGISTERED__INIT;
  Clinlog__V1__KeyRegistered kr = CLINLOG__V1__KEY_REGISTERED__INIT;
  Clinlog__V1__KeyRevoked kv = CLINLOG__V1__KEY_REVOKED__INIT;
  Clinlog__V1__StreamErased se = CLINLOG__V1__STREAM_ERASED__INIT;
  uint8_t eid[16];
  randombytes_buf(eid, 16);
  char *roles[1] = {(char *)role};
  by.principal_id = (char *)by_principal;
  ev.event_id = (ProtobufCBinaryData){16, eid};
  ev.stream = (char *)stream;
  ev.occurred_at = &ts;
  ev.recorded_by = &by;
  ev.body_case = type;
  switch (type) {
  case CLINLOG__V1__EVENT__BODY_PRINCIPAL_REGISTERED:
    ev.principal_registered = &pr;
    pr.principal_id = (char *)principal;
    pr.n_roles = 1;
    pr.roles = roles;
    pr.public_key = (ProtobufCBinaryData){32, (uint8_t *)pk};
    break;
  case CLINLOG__V1__EVENT__BODY_KEY_REGISTERED:
    ev.key_registered = &kr;
    kr.principal_id = (char *)principal;
    kr.public_key = (ProtobufCBinaryData){32, (uint8_t *)pk};
    break;
  case CLINLOG__V1__EVENT__BODY_KEY_REVOKED:
    ev.key_revoked = &kv;
    kv.principal_id = (char *)principal;
    kv.public_key = (ProtobufCBinaryData){32, (uint8_t *)pk};
    break;
  default:
    ev.stream_erased = &se;
    se.stream = (char *)principal; /* the stream to erase */
    se.reason = "test";
    break;
  }
  return cl_test_pack_event(&ev, len);
}

Test(log, keyring_changes_take_effect_after_their_batch) {
  cl_err err;
  cl_append_result r;
  /* register a principal and a second key for it in one batch */
  cl_signer k1, k2;
  cr_assert_eq(cl_signer_generate(&k1, &err), 0);
  cr_assert_eq(cl_signer_generate(&k2, &err), 0);
  uint8_t *evs[3];
  size_t lens[3];
  evs[0] = security_event("$principal-lab", "admin", CLINLOG__V1__EVENT__BODY_PRINCIPAL_REGISTERED,
                          "lab", k1.pk, "interface", &lens[0]);
  evs[1] = security_event("$principal-lab", "admin", CLINLOG__V1__EVENT__BODY_KEY_REGISTERED, "lab",
                          k2.pk, NULL, &lens[1]);
  cr_assert_eq(cl_test_append(lg, &admin, evs, lens, 2, 1, NULL, 0, 0, &r, &err), 0, "%s", err.msg);
  cl_append_result_free(&r);
  free(evs[0]);
  free(evs[1]);
  uint64_t seq;
  cr_assert_eq(cl_test_append1(lg, &k2, "patient-l", "lab", NULL, &seq, &err), 0, "%s", err.msg);
  char roles[64];
  cr_assert_eq(cl_log_key_info(lg, k2.pk, NULL, 0, roles, sizeof roles, NULL), 0);
  cr_assert_str_eq(roles, "interface", "a second key inherits the principal's roles");

  /* an admin revokes its own key and writes more in the same batch: the
   * revocation applies from the next batch on */
  evs[0] = security_event("$principal-admin", "admin", CLINLOG__V1__EVENT__BODY_KEY_REVOKED, "admin",
                          admin.pk, NULL, &lens[0]);
  evs[1] = cl_test_event("patient-l", "admin", "after revoke, same batch", NULL, &lens[1]);
  cr_assert_eq(cl_test_append(lg, &admin, evs, lens, 2, 1, NULL, 0, 0, &r, &err), 0, "%s", err.msg);
  cl_append_result_free(&r);
  free(evs[0]);
  free(evs[1]);
  cr_assert_eq(cl_test_append1(lg, &admin, "patient-l", "admin", NULL, &seq, &err), CL_EREVOKED);
  assert_verifies();
  cl_signer_free(&k1);
  cl_signer_free(&k2);
}

Test(log, system_streams_are_protected) {
  cl_err err;
  cl_append_result r;
  cl_signer nurse;
  register_principal("nurse-9", "nurse", &nurse);
  uint64_t seq;
  uint64_t size;
  uint8_t root[32];
  head(&size, root);
  /* only admin/system principals write $ streams */
  cr_assert_eq(cl_test_append1(lg, &nurse, "$log", "nurse-9", NULL, &seq, &err), CL_EDENIED);
  /* an admin gives "$log" no key (it would sign audit records and
   * checkpoints as the node), nor registers "$log" as a principal */
  size_t len;
  cl_signer forged;
  cr_assert_eq(cl_signer_generate(&forged, &err), 0);
  uint8_t *kr = security_event("$log", "admin", CLINLOG__V1__EVENT__BODY_KEY_REGISTERED, "$log",
                               forged.pk, NULL, &len);
  expect_unchanged_after(CL_EDENIED, cl_test_append(lg, &admin, &kr, &len, 1, 0, NULL, 0, 0, &r, &err),
                         root, size, &err);
  cr_assert(strstr(err.msg, "only the log key registers a key of $log"), "%s", err.msg);
  free(kr);
  kr = security_event("$log", "admin", CLINLOG__V1__EVENT__BODY_PRINCIPAL_REGISTERED, "$log",
                      forged.pk, "log", &len);
  expect_unchanged_after(CL_EDENIED, cl_test_append(lg, &admin, &kr, &len, 1, 0, NULL, 0, 0, &r, &err),
                         root, size, &err);
  free(kr);
  cl_signer_free(&forged);
  /* system streams cannot be crypto-shredded: the keyring must stay readable */
  uint8_t *ev = security_event("$erasures", "admin", CLINLOG__V1__EVENT__BODY_STREAM_ERASED,
                               "$principal-admin", NULL, NULL, &len);
  expect_unchanged_after(CL_EDENIED, cl_test_append(lg, &admin, &ev, &len, 1, 0, NULL, 0, 0, &r, &err),
                         root, size, &err);
  free(ev);
  /* a duplicate id error names the id */
  uint8_t id[16];
  size_t l[2];
  uint8_t *e[2];
  e[0] = cl_test_event("patient-d", "admin", "one", id, &l[0]);
  cr_assert_eq(cl_test_append(lg, &admin, e, l, 1, 0, NULL, 0, 0, &r, &err), 0);
  cl_append_result_free(&r);
  e[1] = cl_test_event("patient-d", "admin", "two", NULL, &l[1]);
  cr_assert_eq(cl_test_append(lg, &admin, e, l, 2, 1, NULL, 0, 0, &r, &err), CL_EDUPLICATE);
  char hex[33];
  cl_hex(id, 16, hex);
  cr_assert(strstr(err.msg, hex), "names %s: %s", hex, err.msg);
  free(e[0]);
  free(e[1]);
  cl_signer_free(&nurse);
}

/* A retried batch that registered a principal is a duplicate (its original
 * positions), not a second registration. */
Test(log, retrying_a_registration_is_a_duplicate) {
  cl_signer nurse;
  cl_err err;
  cr_assert_eq(cl_signer_generate(&nurse, &err), 0);
  size_t len;
  uint8_t *ev = cl_test_principal_event("nurse-retry", "nurse", &nurse, &len);
  cl_append_result r1, r2;
  cr_assert_eq(cl_test_append(lg, &admin, &ev, &len, 1, 1, NULL, 0, 0, &r1, &err), 0, "%s",
               err.msg);
  cr_assert_not(r1.duplicate);
  uint64_t size;
  head(&size, NULL);
  cr_assert_eq(cl_test_append(lg, &admin, &ev, &len, 1, 1, NULL, 0, 0, &r2, &err), 0,
               "the retry: %s", err.msg);
  cr_assert(r2.duplicate);
  cr_assert_eq(r2.seq[0], r1.seq[0]);
  uint64_t after;
  head(&after, NULL);
  cr_assert_eq(after, size, "nothing was written twice");
  cl_append_result_free(&r1);
  cl_append_result_free(&r2);
  free(ev);
  cl_signer_free(&nurse);
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

/* cl_log_sign_batch: the store takes the log key's own fresh signature
 * as verified only for exactly the hashes it signed, once; any other
 * batch under that signature, or a changed signature, is verified (and
 * refused, changing nothing). */
static uint8_t *audit_event(const char *rid, size_t *len) {
  Clinlog__V1__AccessRecorded r = CLINLOG__V1__ACCESS_RECORDED__INIT;
  r.request_id = (char *)rid;
  r.outcome = "0";
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  ev.body_case = CLINLOG__V1__EVENT__BODY_ACCESS_RECORDED;
  ev.access_recorded = &r;
  uint8_t *buf;
  cl_err err;
  cr_assert_eq(cl_event_pack_node(&ev, CL_AUDIT_STREAM, &buf, len, &err), 0, "%s", err.msg);
  return buf;
}

static int append_signed(uint8_t *ev, size_t len, const uint8_t sig[CL_SIG_SIZE], cl_err *err) {
  ProtobufCBinaryData e = {len, ev};
  Clinlog__V1__Signature bs = CLINLOG__V1__SIGNATURE__INIT;
  bs.key_id = (ProtobufCBinaryData){CL_PUBKEY_SIZE, (uint8_t *)cl_log_signer(lg)->pk};
  bs.signature = (ProtobufCBinaryData){CL_SIG_SIZE, (uint8_t *)sig};
  Clinlog__V1__AppendBatch b = CLINLOG__V1__APPEND_BATCH__INIT;
  b.n_events = 1;
  b.events = &e;
  b.batch_signature = &bs;
  cl_append_result r;
  int rc = cl_log_append(lg, &b, &r, err);
  if (rc == 0)
    cl_append_result_free(&r);
  return rc;
}

Test(log, own_batch_signature_counts_only_for_what_it_signed) {
  cl_err err;
  cr_assert_not_null(cl_log_signer(lg));
  size_t l1, l2;
  uint8_t *e1 = audit_event("req-1", &l1), *e2 = audit_event("req-2", &l2);
  uint8_t h1[1][32], sig[CL_SIG_SIZE], pk[CL_PUBKEY_SIZE];
  cl_event_hash(e1, l1, h1[0]);
  uint64_t size;
  uint8_t root[32];
  head(&size, root);
  /* e1's signature over e2: verified, refused */
  cr_assert_eq(cl_log_sign_batch(lg, (const uint8_t(*)[32])h1, 1, sig, pk, &err), 0);
  expect_unchanged_after(CL_EBADSIG, append_signed(e2, l2, sig, &err), root, size, &err);
  /* a changed signature over e1: verified, refused */
  cr_assert_eq(cl_log_sign_batch(lg, (const uint8_t(*)[32])h1, 1, sig, pk, &err), 0);
  sig[5] ^= 1;
  expect_unchanged_after(CL_EBADSIG, append_signed(e1, l1, sig, &err), root, size, &err);
  /* the signature as made, over what it signed: committed */
  cr_assert_eq(cl_log_sign_batch(lg, (const uint8_t(*)[32])h1, 1, sig, pk, &err), 0);
  cr_assert_eq(append_signed(e1, l1, sig, &err), 0, "%s", err.msg);
  assert_verifies();
  free(e1);
  free(e2);
}

/* The node's own findings (the cds emitter): the log key writes an
 * IssueDetected into a patient stream; the same bytes appended again
 * (another leader) return the first seq and add nothing; other bytes under
 * the same event id are refused; and the log key still writes nothing
 * into a $ system stream but what it wrote before. */
Test(log, log_key_writes_issue_detected_once) {
  cl_err err;
  Clinlog__V1__IssueDetected is = CLINLOG__V1__ISSUE_DETECTED__INIT;
  is.issue_id = "00112233445566778899aabbccddeeff";
  is.rule_id = "warfarin-nsaids";
  is.severity = CLINLOG__V1__ISSUE_SEVERITY__ISSUE_SEVERITY_HIGH;
  Clinlog__V1__RecordedBy by = CLINLOG__V1__RECORDED_BY__INIT;
  by.principal_id = CL_LOG_PRINCIPAL;
  by.role = CL_ROLE_LOG;
  Google__Protobuf__Timestamp at = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  at.seconds = 1767225600;
  uint8_t id[16] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                    0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  ev.event_id = (ProtobufCBinaryData){16, id};
  ev.stream = "patient-cds";
  ev.occurred_at = &at;
  ev.recorded_by = &by;
  ev.source_system = "clinlog-cds";
  ev.body_case = CLINLOG__V1__EVENT__BODY_ISSUE_DETECTED;
  ev.issue_detected = &is;
  size_t len;
  uint8_t *b = cl_test_pack_event(&ev, &len);
  uint64_t seq[2];
  for (int i = 0; i < 2; i++) {
    cl_node_batch nb;
    cr_assert_eq(cl_log_node_batch_bytes(lg, b, len, &nb, &err), 0, "%s", err.msg);
    cl_append_result r;
    cr_assert_eq(cl_log_append(lg, &nb.b, &r, &err), 0, "append %d: %s", i, err.msg);
    seq[i] = r.seq[0];
    cl_append_result_free(&r);
    cl_node_batch_free(&nb);
  }
  cr_assert_eq(seq[0], seq[1], "the second append is the first");
  uint64_t size;
  uint8_t root[32];
  head(&size, root);
  cr_assert_eq(size, seq[0], "one event");
  /* other bytes under that id: refused, nothing written */
  is.detail = "changed";
  uint8_t *b2 = cl_test_pack_event(&ev, &len);
  cl_node_batch nb;
  cr_assert_eq(cl_log_node_batch_bytes(lg, b2, len, &nb, &err), 0, "%s", err.msg);
  cl_append_result r;
  expect_unchanged_after(CL_EDUPLICATE, cl_log_append(lg, &nb.b, &r, &err), root, size, &err);
  cl_node_batch_free(&nb);
  free(b2);
  /* an IssueDetected in a system stream: not the log key's */
  uint8_t id2[16] = {1};
  ev.event_id = (ProtobufCBinaryData){16, id2};
  ev.stream = "$cds";
  b2 = cl_test_pack_event(&ev, &len);
  cr_assert_eq(cl_log_node_batch_bytes(lg, b2, len, &nb, &err), 0, "%s", err.msg);
  expect_unchanged_after(CL_EDENIED, cl_log_append(lg, &nb.b, &r, &err), root, size, &err);
  cl_node_batch_free(&nb);
  free(b2);
  free(b);
  assert_verifies();
}

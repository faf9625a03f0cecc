/* Tests for store/log.c, continued (log_fixture.h): principals and their
 * roles and keys, keyring changes inside one batch, the system streams' rules,
 * and what the log key's own signatures count for. */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "store/event.h"
#include "store/keyring.h"
#include "store/log.h"
#include "store/logkey.h"
#include "tests/store/log_fixture.h"
#include "tests/support/testutil.h"

TestSuite(log, .init = log_setup, .fini = log_teardown, .timeout = 120);

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
  cr_assert_eq(cl_test_append(lg, &admin, &buf, &len, 1, 0, NULL, 0, 0, &r, &err), 0, "%s",
               err.msg);
  cl_append_result_free(&r);
  free(buf);
}

Test(log, roles_and_revocation) {
  cl_signer nurse;
  register_principal("nurse-7", "nurse", &nurse);
  cl_err err;
  uint64_t seq;
  cr_assert_eq(cl_test_append1(lg, &nurse, "patient-n", "nurse-7", NULL, &seq, &err), 0, "%s",
               err.msg);

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
  cr_assert_eq(cl_test_append(lg, &admin, &buf, &len, 1, 0, NULL, 0, 0, &r, &err), 0, "%s",
               err.msg);
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
  evs[0] = security_event("$principal-admin", "admin", CLINLOG__V1__EVENT__BODY_KEY_REVOKED,
                          "admin", admin.pk, NULL, &lens[0]);
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
  expect_unchanged_after(CL_EDENIED,
                         cl_test_append(lg, &admin, &kr, &len, 1, 0, NULL, 0, 0, &r, &err), root,
                         size, &err);
  cr_assert(strstr(err.msg, "only the log key registers a key of $log"), "%s", err.msg);
  free(kr);
  kr = security_event("$log", "admin", CLINLOG__V1__EVENT__BODY_PRINCIPAL_REGISTERED, "$log",
                      forged.pk, "log", &len);
  expect_unchanged_after(CL_EDENIED,
                         cl_test_append(lg, &admin, &kr, &len, 1, 0, NULL, 0, 0, &r, &err), root,
                         size, &err);
  free(kr);
  cl_signer_free(&forged);
  /* system streams cannot be crypto-shredded: the keyring must stay readable */
  uint8_t *ev = security_event("$erasures", "admin", CLINLOG__V1__EVENT__BODY_STREAM_ERASED,
                               "$principal-admin", NULL, NULL, &len);
  expect_unchanged_after(CL_EDENIED,
                         cl_test_append(lg, &admin, &ev, &len, 1, 0, NULL, 0, 0, &r, &err), root,
                         size, &err);
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

/* Tests for a linked batch in a Raft entry (PreparedBatch.with_previous,
 * cl_log_apply: a call's audit record committed with the call's events in
 * one store write) and for a batch signature this process made with a key
 * it holds (cl_log_sign_batch_as): taken as verified only for exactly the
 * bytes it signed. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "store/event.h"
#include "store/keyring.h"
#include "store/log.h"
#include "store/logkey.h"
#include "tests/support/testutil.h"

static char *dir;
static cl_log *lg;
static cl_signer admin;

static void setup(void) { lg = cl_test_log_new("linked", &dir, &admin, 10000); }
static void teardown(void) {
  cl_log_close(lg);
  cl_signer_free(&admin);
  cl_test_rmtree(dir);
  free(dir);
}

TestSuite(linked, .init = setup, .fini = teardown, .timeout = 120);

/* An audit record of request rid, prepared as the leader does for a linked
 * batch: signed by the log key, with_previous set. Returned-owned. */
static Clinlog__V1__PreparedBatch *audit_pb(const char *rid, uint32_t preceding) {
  Clinlog__V1__AccessRecorded r = CLINLOG__V1__ACCESS_RECORDED__INIT;
  r.request_id = (char *)rid;
  r.outcome = "0";
  r.preceding = preceding;
  r.count = preceding;
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  ev.body_case = CLINLOG__V1__EVENT__BODY_ACCESS_RECORDED;
  ev.access_recorded = &r;
  cl_node_batch nb;
  cl_err err;
  cr_assert_eq(cl_log_node_batch(lg, &ev, CL_AUDIT_STREAM, &nb, &err), 0, "%s", err.msg);
  Clinlog__V1__PreparedBatch *pb = NULL;
  cr_assert_eq(cl_log_prepare(lg, &nb.b, &pb, &err), 0, "%s", err.msg);
  cl_node_batch_free(&nb);
  pb->with_previous = 1;
  return pb;
}

static uint64_t head(void) {
  uint64_t size;
  cl_log_head(lg, &size, NULL);
  return size;
}

/* The event type at seq (0: none). */
static int type_at_cb(void *ctx, const cl_event_view *ev, cl_err *err) {
  (void)err;
  *(uint32_t *)ctx = ev->event_type;
  return 0;
}
static uint32_t type_at(uint64_t seq) {
  uint32_t t = 0;
  cl_err err;
  cr_assert_eq(cl_log_read_seq(lg, seq, type_at_cb, &t, &err), 0, "%s", err.msg);
  return t;
}

Test(linked, committed_right_after_the_events_in_one_write) {
  Clinlog__V1__PreparedBatch *ev = cl_test_prepare1(lg, &admin, "patient-a"),
                             *au = audit_pb("req-1", 1);
  uint64_t before = head();
  cl_apply_item it[2] = {{.pb = ev, .want_result = 1}, {.pb = au, .want_result = 1}};
  cl_err err;
  cr_assert_eq(cl_log_apply(lg, 1, it, 2, &err), 0, "%s", err.msg);
  cr_assert_eq(it[0].rc, 0, "%s", it[0].err.msg);
  cr_assert_eq(it[1].rc, 0, "%s", it[1].err.msg);
  cr_assert_eq(it[1].r.seq[0], it[0].r.seq[0] + 1, "the record follows its events at once");
  cr_assert_eq(head(), before + 2);
  cr_assert_eq(type_at(it[1].r.seq[0]), CLINLOG__V1__EVENT__BODY_ACCESS_RECORDED);
  cr_assert_eq(type_at(it[0].r.seq[0]), CLINLOG__V1__EVENT__BODY_OBSERVATION_RECORDED);
  cl_append_result_free(&it[0].r);
  cl_append_result_free(&it[1].r);
  clinlog__v1__prepared_batch__free_unpacked(au, NULL);

  /* the same events again (a resend): a duplicate, and the new record
   * linked to it is refused alone, nothing written */
  au = audit_pb("req-2", 1);
  before = head();
  cl_apply_item again[2] = {{.pb = ev, .want_result = 1}, {.pb = au, .want_result = 1}};
  cr_assert_eq(cl_log_apply(lg, 2, again, 2, &err), 0, "%s", err.msg);
  cr_assert_eq(again[0].rc, 0);
  cr_assert(again[0].r.duplicate);
  cr_assert_eq(again[1].rc, CL_EPRECOND);
  cr_assert(strstr(again[1].err.msg, "with_previous"), "%s", again[1].err.msg);
  cr_assert_eq(head(), before, "a resend's linked record writes nothing");
  cr_assert_eq(cl_log_applied_index(lg), 2);
  cl_append_result_free(&again[0].r);
  clinlog__v1__prepared_batch__free_unpacked(ev, NULL);
  clinlog__v1__prepared_batch__free_unpacked(au, NULL);
}

Test(linked, refused_after_a_refused_batch_and_first_in_an_entry) {
  Clinlog__V1__PreparedBatch *ev = cl_test_prepare1(lg, &admin, "patient-b"),
                             *au = audit_pb("req-3", 1);
  /* the events batch refused (an id committed with other content) */
  Clinlog__V1__PreparedBatch *first = cl_test_prepare1(lg, &admin, "patient-b");
  memcpy(first->events[0]->event_id.data, ev->events[0]->event_id.data, 16);
  cl_err err;
  cl_apply_item one = {.pb = ev};
  cr_assert_eq(cl_log_apply(lg, 1, &one, 1, &err), 0, "%s", err.msg);
  cr_assert_eq(one.rc, 0);
  uint64_t before = head();
  cl_apply_item it[2] = {{.pb = first}, {.pb = au}};
  cr_assert_eq(cl_log_apply(lg, 2, it, 2, &err), 0, "%s", err.msg);
  cr_assert_eq(it[0].rc, CL_EDUPLICATE, "%s", it[0].err.msg);
  cr_assert_eq(it[1].rc, CL_EPRECOND);
  cr_assert_eq(head(), before);
  /* first in its entry: nothing before it */
  cl_apply_item alone = {.pb = au};
  cr_assert_eq(cl_log_apply(lg, 3, &alone, 1, &err), 0, "%s", err.msg);
  cr_assert_eq(alone.rc, CL_EPRECOND);
  cr_assert_eq(head(), before);
  /* outside a Raft entry (the commit queue mixes callers): refused */
  cl_append_result r;
  cr_assert_eq(cl_log_commit(lg, au, &r, &err), CL_EINVAL);
  cr_assert(strstr(err.msg, "with_previous"), "%s", err.msg);
  cr_assert_eq(head(), before);
  clinlog__v1__prepared_batch__free_unpacked(ev, NULL);
  clinlog__v1__prepared_batch__free_unpacked(first, NULL);
  clinlog__v1__prepared_batch__free_unpacked(au, NULL);
}

/* events (n of them, owned by the caller) as one AppendBatch under sig by
 * the admin key, appended; returns cl_log_append's code. */
static int append_batch(uint8_t **evs, const size_t *lens, size_t n, const uint8_t sig[64],
                        cl_err *err) {
  ProtobufCBinaryData e[4];
  for (size_t i = 0; i < n; i++)
    e[i] = (ProtobufCBinaryData){lens[i], evs[i]};
  Clinlog__V1__Signature bs = CLINLOG__V1__SIGNATURE__INIT;
  bs.key_id = (ProtobufCBinaryData){CL_PUBKEY_SIZE, admin.pk};
  bs.signature = (ProtobufCBinaryData){CL_SIG_SIZE, (uint8_t *)sig};
  Clinlog__V1__AppendBatch b = CLINLOG__V1__APPEND_BATCH__INIT;
  b.n_events = n;
  b.events = e;
  b.batch_signature = &bs;
  cl_append_result r;
  int rc = cl_log_append(lg, &b, &r, err);
  if (rc == 0)
    cl_append_result_free(&r);
  return rc;
}

Test(linked, own_adapter_signature_counts_only_for_what_it_signed) {
  size_t l[2];
  uint8_t *e[2] = {cl_test_event("patient-c", "admin", "one", NULL, &l[0]),
                   cl_test_event("patient-c", "admin", "two", NULL, &l[1])};
  uint8_t h[2][32], sig[64];
  cl_event_hash(e[0], l[0], h[0]);
  cl_event_hash(e[1], l[1], h[1]);
  cl_err err;
  uint64_t before = head();

  /* a signature changed after the fact: verified, refused */
  cl_log_sign_batch_as(lg, &admin, (const uint8_t(*)[32])h, 2, sig);
  sig[7] ^= 1;
  cr_assert_eq(append_batch(e, l, 2, sig, &err), CL_EBADSIG, "%s", err.msg);
  /* the signature of two events over one of them: verified, refused */
  cl_log_sign_batch_as(lg, &admin, (const uint8_t(*)[32])h, 2, sig);
  cr_assert_eq(append_batch(e, l, 1, sig, &err), CL_EBADSIG, "%s", err.msg);
  cr_assert_eq(head(), before, "nothing written");

  /* exactly what it signed, after the log key signed a record on the same
   * thread (both remembered): taken, and so is the record */
  cl_log_sign_batch_as(lg, &admin, (const uint8_t(*)[32])h, 2, sig);
  Clinlog__V1__PreparedBatch *au = audit_pb("req-4", 2);
  cr_assert_eq(append_batch(e, l, 2, sig, &err), 0, "%s", err.msg);
  cr_assert_eq(head(), before + 2);
  clinlog__v1__prepared_batch__free_unpacked(au, NULL);
  free(e[0]);
  free(e[1]);
}

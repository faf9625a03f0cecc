/* adapters/mllp/session.c over a real log and request layer (no socket):
 * frames split anywhere and several in one read give one ACK each, in
 * order; an ACK's AA means the events are in the log; a resend is AA
 * again with the same ACK and writes nothing; a frame over the limit is
 * AR and asks to close; every frame goes through the hooks as
 * clinlog.v1.Mllp/Message over "mllp", as the key's principal; a key not
 * registered gets AE and nothing is written. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/mllp/session.h"
#include "store/alloc.h"
#include "tests/support/testutil.h"

static struct {
  char *dir;
  cl_signer admin, feed;
  cl_log *log;
  cl_svc *svc;
  /* what the hooks saw */
  int admitted, finished, last_method, last_auth;
  char last_principal[128], last_transport[16];
  /* the ACKs sent */
  char acks[16][1024];
  int nacks;
  int fail_send;
} F;

static int h_authorize(void *ctx, const cl_req_ctx *rc, const ProtobufCMessage *req, cl_err *err) {
  (void)ctx, (void)req, (void)err;
  F.admitted++;
  F.last_method = rc->method;
  F.last_auth = rc->auth;
  snprintf(F.last_principal, sizeof F.last_principal, "%s", rc->principal);
  snprintf(F.last_transport, sizeof F.last_transport, "%s", rc->transport);
  return 0;
}

static void h_finished(void *ctx, const cl_req_ctx *rc, int code, const char *detail) {
  (void)ctx, (void)rc, (void)code, (void)detail;
  F.finished++;
}

static int on_send(void *ctx, const uint8_t *p, size_t n) {
  (void)ctx;
  if (F.fail_send)
    return -1;
  cr_assert_geq(n, 3);
  cr_assert_eq(p[0], 0x0B, "framed: VT first");
  cr_assert(p[n - 2] == 0x1C && p[n - 1] == 0x0D, "framed: FS CR last");
  cr_assert_lt(F.nacks, 16);
  snprintf(F.acks[F.nacks++], sizeof F.acks[0], "%.*s", (int)(n - 3), (const char *)p + 1);
  return 0;
}

static void setup(void) {
  memset(&F, 0, sizeof F);
  F.log = cl_test_log_new("mllp-session", &F.dir, &F.admin, 100);
  cl_err err;
  cr_assert_eq(cl_signer_generate(&F.feed, &err), 0, "%s", err.msg);
  cl_svc_options so = {.log = F.log, .hooks = {h_authorize, NULL, h_finished, NULL}};
  cr_assert_eq(cl_svc_new(&so, &F.svc, &err), 0, "%s", err.msg);
}

static void teardown(void) {
  cl_svc_free(F.svc);
  cl_log_close(F.log);
  cl_signer_free(&F.feed);
  cl_signer_free(&F.admin);
  cl_test_rmtree(F.dir);
  free(F.dir);
}

TestSuite(mllp_session, .init = setup, .fini = teardown);

static void register_feed(void) {
  size_t n;
  uint8_t *ev = cl_test_principal_event("hl7-mllp", "integration", &F.feed, &n);
  cl_append_result r;
  cl_err err;
  cr_assert_eq(cl_test_append(F.log, &F.admin, &ev, &n, 1, 0, NULL, 0, 0, &r, &err), 0, "%s",
               err.msg);
  cl_append_result_free(&r);
  free(ev);
}

static size_t message(char *out, size_t cap, const char *ctl, const char *patient) {
  int n = snprintf(out, cap,
                   "MSH|^~\\&|REG|NORTH|CLINLOG|HOSP|20261205083000||ADT^A28^ADT_A05|%s|P|2.5.1\r"
                   "EVN|A28|20261205082900\r"
                   "PID|1||%s^^^NORTH^MR||Doe^Jane||19700101|F\r",
                   ctl, patient);
  cr_assert(n > 0 && (size_t)n < cap);
  return (size_t)n;
}

/* VT msg FS CR into out; returns its length. */
static size_t framed(uint8_t *out, size_t cap, const char *msg, size_t n) {
  cr_assert_lt(n + 3, cap);
  out[0] = 0x0B;
  memcpy(out + 1, msg, n);
  out[n + 1] = 0x1C;
  out[n + 2] = 0x0D;
  return n + 3;
}

static cl_mllp_session *session(size_t max_frame) {
  cl_mllp_conf c = {.svc = F.svc, .signer = &F.feed, .max_frame = max_frame};
  cl_mllp_session *s;
  cl_err err;
  cr_assert_eq(cl_mllp_session_new(&c, "ipv4:127.0.0.1:5555", &s, &err), 0, "%s", err.msg);
  return s;
}

static uint64_t head(void) {
  uint64_t n;
  cl_log_head(F.log, &n, NULL);
  return n;
}

/* The MSA segment of an ACK ("MSA|AA|CTL"), NUL-terminated into out. */
static const char *msa(const char *ack, char *out, size_t cap) {
  const char *m = strstr(ack, "\rMSA|");
  cr_assert_not_null(m, "no MSA in %s", ack);
  m++;
  size_t k = strcspn(m, "\r");
  snprintf(out, cap, "%.*s", (int)k, m);
  return out;
}

static int count_one(void *ctx, const cl_event_view *ev, cl_err *e) {
  (void)ev, (void)e;
  ++*(int *)ctx;
  return 0;
}

static int count_stream(const char *stream) {
  int n = 0;
  cl_err err;
  return cl_log_read_stream(F.log, stream, 1, 0, 0, count_one, &n, &err) == 0 ? n : 0;
}

Test(mllp_session, byte_at_a_time_and_two_frames_in_one_read) {
  register_feed();
  cl_mllp_session *s = session(0);
  char m1[512], m2[512], a[128];
  uint8_t buf[1100];
  size_t n1 = message(m1, sizeof m1, "S0001", "P1");
  size_t n2 = message(m2, sizeof m2, "S0002", "P2");
  size_t k = framed(buf, sizeof buf, m1, n1);
  cl_err err;
  /* one byte at a time: the ACK comes with the last byte, not before */
  for (size_t i = 0; i < k; i++) {
    cr_assert_eq(F.nacks, 0, "an ACK before the frame was complete");
    cr_assert_eq(cl_mllp_session_feed(s, buf + i, 1, on_send, NULL, &err), 0, "%s", err.msg);
  }
  cr_assert_eq(F.nacks, 1);
  cr_assert_str_eq(msa(F.acks[0], a, sizeof a), "MSA|AA|S0001");
  cr_assert_eq(count_stream("patient-NORTH-P1"), 1, "AA: the event is in the log");
  /* two frames and half a third in one read */
  k = framed(buf, sizeof buf, m2, n2);
  size_t k2 = framed(buf + k, sizeof buf - k, m1, n1); /* a resend of S0001 */
  uint64_t before = head();
  cr_assert_eq(cl_mllp_session_feed(s, buf, k + k2 - 5, on_send, NULL, &err), 0);
  cr_assert_eq(F.nacks, 2);
  cr_assert(cl_mllp_session_pending(s));
  cr_assert_eq(cl_mllp_session_feed(s, buf + k + k2 - 5, 5, on_send, NULL, &err), 0);
  cr_assert_eq(F.nacks, 3);
  cr_assert_not(cl_mllp_session_pending(s));
  cr_assert_str_eq(msa(F.acks[1], a, sizeof a), "MSA|AA|S0002");
  cr_assert_str_eq(msa(F.acks[2], a, sizeof a), "MSA|AA|S0001");
  cr_assert_eq(head(), before + 1, "the resend wrote nothing");
  /* the resend's ACK is the first one's but for MSH-7 (the time) */
  const char *f0 = strchr(F.acks[0], '\r'), *f2 = strchr(F.acks[2], '\r');
  cr_assert_str_eq(f0, f2);
  const cl_mllp_counts *c = cl_mllp_session_counts(s);
  cr_assert_eq(c->messages, 3);
  cr_assert_eq(c->accepted, 2);
  cr_assert_eq(c->duplicates, 1);
  /* every frame through the hooks, as the key's principal */
  cr_assert_eq(F.admitted, 3);
  cr_assert_eq(F.finished, 3);
  cr_assert_eq(F.last_method, M_MLLP_MESSAGE);
  cr_assert_eq(F.last_auth, CL_AUTH_KEY);
  cr_assert_str_eq(F.last_principal, "hl7-mllp");
  cr_assert_str_eq(F.last_transport, "mllp");
  cl_mllp_session_free(s);
}

Test(mllp_session, oversized_frame_ar_and_close) {
  register_feed();
  cl_mllp_session *s = session(1024);
  static char big[3000];
  memset(big, 'X', sizeof big);
  size_t n = message(big, sizeof big, "S0003", "P3");
  big[n] = 'X'; /* a frame of 3000 bytes */
  static uint8_t buf[3100];
  size_t k = framed(buf, sizeof buf, big, sizeof big);
  uint64_t before = head();
  cl_err err;
  cr_assert_eq(cl_mllp_session_feed(s, buf, k, on_send, NULL, &err), 1, "asks to close");
  cr_assert_eq(F.nacks, 1);
  char a[128];
  cr_assert_str_eq(msa(F.acks[0], a, sizeof a), "MSA|AR|");
  cr_assert_not_null(strstr(F.acks[0], "exceeds 1024 bytes"), "%s", F.acks[0]);
  cr_assert_eq(head(), before);
  cr_assert_eq(cl_mllp_session_counts(s)->oversized, 1);
  cl_mllp_session_free(s);
}

Test(mllp_session, unregistered_key_ae_nothing_written) {
  cl_mllp_session *s = session(0);
  char m[512], a[128];
  uint8_t buf[600];
  size_t k = framed(buf, sizeof buf, m, message(m, sizeof m, "S0004", "P4"));
  uint64_t before = head();
  cl_err err;
  cr_assert_eq(cl_mllp_session_feed(s, buf, k, on_send, NULL, &err), 0);
  cr_assert_str_eq(msa(F.acks[0], a, sizeof a), "MSA|AE|S0004");
  cr_assert_not_null(strstr(F.acks[0], "not registered"), "%s", F.acks[0]);
  cr_assert_eq(head(), before);
  /* registered now: the resend is accepted */
  register_feed();
  cr_assert_eq(cl_mllp_session_feed(s, buf, k, on_send, NULL, &err), 0);
  cr_assert_str_eq(msa(F.acks[1], a, sizeof a), "MSA|AA|S0004");
  cl_mllp_session_free(s);
}

Test(mllp_session, ack_not_sent_closes) {
  register_feed();
  cl_mllp_session *s = session(0);
  char m[512];
  uint8_t buf[600];
  size_t k = framed(buf, sizeof buf, m, message(m, sizeof m, "S0005", "P5"));
  F.fail_send = 1;
  cl_err err;
  cr_assert_eq(cl_mllp_session_feed(s, buf, k, on_send, NULL, &err), 1);
  cr_assert_eq(count_stream("patient-NORTH-P5"), 1, "committed; the resend will be a no-op");
  cl_mllp_session_free(s);
}

/* adapters/hl7v2 MLLP framer and deframer: any chunking of a stream gives
 * the same frames; junk is skipped and counted; oversized frames are
 * refused and the next frame is still read. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/hl7v2/ack.h"
#include "adapters/hl7v2/hl7.h"
#include "adapters/hl7v2/mllp.h"
#include "hl7v2_fixture.h"
#include "store/alloc.h"

TestSuite(mllp, .timeout = 60);

#define MAXEV 8

typedef struct seen {
  int kind[MAXEV];
  char *frame[MAXEV];
  size_t len[MAXEV];
  uint64_t off[MAXEV];
  int n;
  int stop_after; /* stop the feed after this many events (0: never) */
} seen;

static int on_event(void *ctx, const cl_mllp_event *ev) {
  seen *s = ctx;
  cr_assert_lt(s->n, MAXEV);
  s->kind[s->n] = ev->kind;
  s->len[s->n] = ev->n;
  s->off[s->n] = ev->offset;
  s->frame[s->n] = NULL;
  if (ev->kind == CL_MLLP_FRAME) {
    s->frame[s->n] = malloc(ev->n + 1);
    memcpy(s->frame[s->n], ev->p, ev->n);
    s->frame[s->n][ev->n] = '\0';
  }
  s->n++;
  return s->stop_after && s->n >= s->stop_after ? 1 : 0;
}

static void clear(seen *s) {
  for (int i = 0; i < s->n; i++)
    free(s->frame[i]);
  memset(s, 0, sizeof *s);
}

static cl_mllp *new_deframer(size_t max) {
  cl_mllp *d = NULL;
  cl_err err;
  cr_assert_eq(cl_mllp_new(max, &d, &err), 0, "%s", err.msg);
  return d;
}

static void feed(cl_mllp *d, const uint8_t *p, size_t n, seen *s) {
  cl_err err;
  size_t used = 0;
  cr_assert_eq(cl_mllp_feed(d, p, n, on_event, s, &used, &err), 0, "%s", err.msg);
  cr_assert_eq(used, n);
}

/* Appends the MLLP frame of msg to buf at *n. */
static void put_frame(uint8_t *buf, size_t *n, const void *msg, size_t len) {
  uint8_t *f = NULL;
  size_t fn = 0;
  cl_err err;
  cr_assert_eq(cl_mllp_frame(msg, len, &f, &fn, &err), 0, "%s", err.msg);
  memcpy(buf + *n, f, fn);
  *n += fn;
  cl_free(f);
}

Test(mllp, every_split_point_of_two_messages) {
  size_t n1, n2;
  uint8_t *m1 = hl7t_read("adt_a01.hl7", &n1), *m2 = hl7t_read("oru_r01_lf.hl7", &n2);
  uint8_t *stream = malloc(n1 + n2 + 16);
  size_t n = 0;
  put_frame(stream, &n, m1, n1);
  put_frame(stream, &n, m2, n2);
  cr_assert_eq(n, n1 + n2 + 6);
  for (size_t k = 0; k <= n; k++) {
    cl_mllp *d = new_deframer(0);
    seen s = {0};
    feed(d, stream, k, &s);
    feed(d, stream + k, n - k, &s);
    cr_assert_eq(s.n, 2, "split at %zu", k);
    cr_assert_eq(s.len[0], n1);
    cr_assert(memcmp(s.frame[0], m1, n1) == 0, "split at %zu", k);
    cr_assert_eq(s.len[1], n2);
    cr_assert(memcmp(s.frame[1], m2, n2) == 0, "split at %zu", k);
    cr_assert_eq(s.off[1], n1 + 3);
    cr_assert(!cl_mllp_pending(d));
    cr_assert_eq(cl_mllp_stats_of(d)->junk, 0);
    clear(&s);
    cl_mllp_free(d);
  }
  /* one byte at a time */
  cl_mllp *d = new_deframer(0);
  seen s = {0};
  for (size_t i = 0; i < n; i++)
    feed(d, stream + i, 1, &s);
  cr_assert_eq(s.n, 2);
  cr_assert(memcmp(s.frame[1], m2, n2) == 0);
  cr_expect_eq(cl_mllp_stats_of(d)->frames, 2);
  clear(&s);
  cl_mllp_free(d);
  free(stream);
  free(m1);
  free(m2);
}

Test(mllp, junk_between_frames_is_skipped_and_counted) {
  const char *in = "\r\nhello\x0bMSH|a\x1c\r\n\x0bMSH|b\x1c\r";
  cl_mllp *d = new_deframer(0);
  seen s = {0};
  feed(d, (const uint8_t *)in, strlen(in), &s);
  cr_assert_eq(s.n, 2);
  cr_expect_str_eq(s.frame[0], "MSH|a");
  cr_expect_str_eq(s.frame[1], "MSH|b");
  cr_expect_eq(s.off[0], 7);
  cr_expect_eq(cl_mllp_stats_of(d)->junk, 8);
  clear(&s);
  cl_mllp_free(d);
}

Test(mllp, oversized_frame_refused_next_frame_read) {
  uint8_t big[300];
  memset(big, 'A', sizeof big);
  uint8_t stream[600];
  size_t n = 0;
  put_frame(stream, &n, big, sizeof big);
  put_frame(stream, &n, "MSH|ok", 6);
  for (size_t chunk = 1; chunk <= n; chunk += 37) {
    cl_mllp *d = new_deframer(100);
    seen s = {0};
    for (size_t i = 0; i < n; i += chunk)
      feed(d, stream + i, i + chunk > n ? n - i : chunk, &s);
    cr_assert_eq(s.n, 2, "chunk %zu", chunk);
    cr_expect_eq(s.kind[0], CL_MLLP_OVERSIZED);
    cr_expect_eq(s.off[0], 0);
    cr_expect_eq(s.len[0], 100);
    cr_expect_eq(s.kind[1], CL_MLLP_FRAME);
    cr_expect_str_eq(s.frame[1], "MSH|ok");
    cr_expect_eq(cl_mllp_stats_of(d)->oversized, 1);
    cr_expect_eq(cl_mllp_stats_of(d)->junk, 0);
    clear(&s);
    cl_mllp_free(d);
  }
  /* an oversized frame that never ends: the next VT resynchronises */
  n = 0;
  stream[n++] = CL_MLLP_VT;
  memset(stream + n, 'B', 200);
  n += 200;
  put_frame(stream, &n, "MSH|next", 8);
  cl_mllp *d = new_deframer(100);
  seen s = {0};
  feed(d, stream, n, &s);
  cr_assert_eq(s.n, 2);
  cr_expect_eq(s.kind[0], CL_MLLP_OVERSIZED);
  cr_expect_str_eq(s.frame[1], "MSH|next");
  clear(&s);
  cl_mllp_free(d);
}

Test(mllp, frame_of_exactly_max_is_accepted) {
  uint8_t msg[100], stream[110];
  memset(msg, 'x', sizeof msg);
  size_t n = 0;
  put_frame(stream, &n, msg, sizeof msg);
  cl_mllp *d = new_deframer(100);
  seen s = {0};
  feed(d, stream, n, &s);
  cr_assert_eq(s.n, 1);
  cr_expect_eq(s.kind[0], CL_MLLP_FRAME);
  cr_expect_eq(s.len[0], 100);
  clear(&s);
  cl_mllp_free(d);
}

Test(mllp, restart_missing_cr_and_truncation) {
  /* a VT inside a frame abandons it; FS without CR still ends a frame */
  const char *in = "\x0bMSH|cut\x0bMSH|one\x1c\x0bMSH|two\x1c\r\x0bMSH|tail";
  cl_mllp *d = new_deframer(0);
  seen s = {0};
  feed(d, (const uint8_t *)in, strlen(in), &s);
  cr_assert_eq(s.n, 2);
  cr_expect_str_eq(s.frame[0], "MSH|one");
  cr_expect_str_eq(s.frame[1], "MSH|two");
  const cl_mllp_stats *st = cl_mllp_stats_of(d);
  cr_expect_eq(st->abandoned, 1);
  cr_expect_eq(st->missing_cr, 1);
  cr_expect(cl_mllp_pending(d)); /* "MSH|tail" never ended */
  clear(&s);
  cl_mllp_free(d);
}

Test(mllp, callback_stops_the_feed) {
  const char *in = "\x0b"
                   "a\x1c\r\x0b"
                   "b\x1c\r";
  cl_mllp *d = new_deframer(0);
  seen s = {.stop_after = 1};
  size_t used = 0;
  cl_err err;
  cr_assert_eq(cl_mllp_feed(d, (const uint8_t *)in, strlen(in), on_event, &s, &used, &err), 1);
  cr_expect_eq(used, 4);
  s.stop_after = 0;
  feed(d, (const uint8_t *)in + used, strlen(in) - used, &s);
  cr_assert_eq(s.n, 2);
  cr_expect_str_eq(s.frame[1], "b");
  clear(&s);
  cl_mllp_free(d);
}

Test(mllp, framer_refuses_framing_bytes) {
  uint8_t *f = NULL;
  size_t fn;
  cl_err err;
  cr_expect_eq(cl_mllp_frame((const uint8_t *)"a\x1c"
                                              "b",
                             3, &f, &fn, &err),
               CL_EINVAL);
  cr_expect_eq(cl_mllp_frame((const uint8_t *)"a\x0b", 2, &f, &fn, &err), CL_EINVAL);
  cr_expect_null(f);
  cr_assert_eq(cl_mllp_frame((const uint8_t *)"", 0, &f, &fn, &err), 0);
  cr_expect_eq(fn, 3);
  cr_expect(memcmp(f, "\x0b\x1c\r", 3) == 0);
  cl_free(f);
}

/* What the listener will do, without the socket: deframe a stream, parse
 * each message, answer each with a framed ACK. */
typedef struct answers {
  char codes[4][3];
  char ctl[4][16];
  int n;
} answers;

static int answer(void *ctx, const cl_mllp_event *ev) {
  answers *a = ctx;
  cr_assert_eq(ev->kind, CL_MLLP_FRAME);
  cl_hl7_msg *m = NULL;
  cl_hl7_error e;
  cl_err err;
  cl_hl7_ack_params ap = {.control_id = "ACK1", .timestamp = "20261205"};
  char *ack = NULL;
  size_t n = 0;
  if (cl_hl7_parse(ev->p, ev->n, NULL, &m, &e, &err) == 0)
    cr_assert_eq(cl_hl7_ack(m, NULL, &ap, &ack, &n, &err), 0, "%s", err.msg);
  else
    cr_assert_eq(cl_hl7_ack_raw(ev->p, ev->n, &e, &ap, &ack, &n, &err), 0, "%s", err.msg);
  cl_hl7_free(m);
  uint8_t *framed = NULL;
  size_t fn = 0;
  cr_assert_eq(cl_mllp_frame((const uint8_t *)ack, n, &framed, &fn, &err), 0, "%s", err.msg);
  cr_assert_eq(fn, n + 3);
  cl_hl7_msg *am = hl7t_parse(ack);
  snprintf(a->codes[a->n], sizeof a->codes[0], "%s", cl_hl7_path(am, "MSA-1").s);
  snprintf(a->ctl[a->n], sizeof a->ctl[0], "%s", cl_hl7_path(am, "MSA-2").s);
  a->n++;
  cl_hl7_free(am);
  cl_free(framed);
  cl_free(ack);
  return 0;
}

Test(mllp, deframe_parse_and_acknowledge) {
  size_t n1, n2;
  uint8_t *m1 = hl7t_read("ras_o17.hl7", &n1), *m2 = hl7t_read("adt_a08_crlf.hl7", &n2);
  const char *bad = "MSH|^~\\&|A|B|C|D|1||ADT^A01|BAD7|P|2.9\r";
  uint8_t *stream = malloc(n1 + n2 + strlen(bad) + 16);
  size_t n = 0;
  put_frame(stream, &n, m1, n1);
  put_frame(stream, &n, bad, strlen(bad));
  put_frame(stream, &n, m2, n2);
  cl_mllp *d = new_deframer(0);
  answers a = {0};
  cl_err err;
  for (size_t i = 0; i < n; i += 7)
    cr_assert_eq(cl_mllp_feed(d, stream + i, i + 7 > n ? n - i : 7, answer, &a, NULL, &err), 0);
  cr_assert_eq(a.n, 3);
  cr_expect_str_eq(a.codes[0], "AA");
  cr_expect_str_eq(a.ctl[0], "BCMA300");
  cr_expect_str_eq(a.codes[1], "AR");
  cr_expect_str_eq(a.ctl[1], "BAD7");
  cr_expect_str_eq(a.codes[2], "AA");
  cr_expect_str_eq(a.ctl[2], "MSG00002");
  cl_mllp_free(d);
  free(stream);
  free(m1);
  free(m2);
}

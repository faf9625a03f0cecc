/* See pbjson_fixture.h. */
#include "tests/adapters/pbjson_fixture.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/pbjson/pbjson.h"
#include "clinlog/v1/record.pb-c.h"
#include "clinlog/v1/system.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "pbjson_test.pb-c.h"

ProtobufCMessage *parse_ok(const ProtobufCMessageDescriptor *d, const char *text) {
  ProtobufCMessage *m = NULL;
  cl_err err;
  cl_err_clear(&err);
  int rc = cl_pbjson_from_text(d, text, strlen(text), &m, &err);
  cr_assert_eq(rc, 0, "parse of %s failed: %s (%s)", text, err.msg, cl_errname(rc));
  cr_assert_not_null(m);
  return m;
}

/* Expects failure with `code`; if `msg` is not NULL, err.msg must equal it. */
void parse_fails(const ProtobufCMessageDescriptor *d, const char *text, int code, const char *msg) {
  ProtobufCMessage *m = (ProtobufCMessage *)0x1;
  cl_err err;
  cl_err_clear(&err);
  int rc = cl_pbjson_from_text(d, text, strlen(text), &m, &err);
  cr_assert_eq(rc, code, "parse of %s: got %s (%s), want %s", text, cl_errname(rc), err.msg,
               cl_errname(code));
  cr_assert_eq(err.code, code);
  cr_assert_eq(m, (ProtobufCMessage *)0x1, "*out touched on error");
  if (msg)
    cr_assert_str_eq(err.msg, msg, "parse of %s", text);
}

json_t *to_json_ok(const ProtobufCMessage *m) {
  json_t *j = NULL;
  cl_err err;
  cl_err_clear(&err);
  int rc = cl_pbjson_to_json(m, &j, &err);
  cr_assert_eq(rc, 0, "to_json failed: %s", err.msg);
  cr_assert_not_null(j);
  return j;
}

void assert_same_packed(const ProtobufCMessage *a, const ProtobufCMessage *b) {
  size_t na = protobuf_c_message_get_packed_size(a);
  size_t nb = protobuf_c_message_get_packed_size(b);
  cr_assert_eq(na, nb, "packed sizes differ: %zu vs %zu", na, nb);
  uint8_t *pa = malloc(na + 1), *pb = malloc(nb + 1);
  cr_assert(pa && pb);
  cr_assert_eq(protobuf_c_message_pack(a, pa), na);
  cr_assert_eq(protobuf_c_message_pack(b, pb), nb);
  cr_assert(memcmp(pa, pb, na) == 0, "packed bytes differ");
  free(pa);
  free(pb);
}

void assert_json_eq(json_t *got, const char *want_text) {
  json_error_t jerr;
  json_t *want = json_loads(want_text, JSON_DECODE_ANY, &jerr);
  cr_assert_not_null(want, "bad expected JSON %s: %s", want_text, jerr.text);
  if (!json_equal(got, want)) {
    char *g = json_dumps(got, JSON_SORT_KEYS | JSON_ENCODE_ANY);
    char *w = json_dumps(want, JSON_SORT_KEYS | JSON_ENCODE_ANY);
    cr_assert_fail("JSON differs:\n got %s\nwant %s", g, w);
  }
  json_decref(want);
}

/* Parses `in`, checks the emitted JSON equals `want`, parses that back and
 * checks both messages pack identically. Returns the first message (caller
 * frees) for further checks. */
ProtobufCMessage *round_trip(const ProtobufCMessageDescriptor *d, const char *in,
                             const char *want) {
  ProtobufCMessage *m = parse_ok(d, in);
  json_t *j = to_json_ok(m);
  assert_json_eq(j, want);
  ProtobufCMessage *m2 = NULL;
  cl_err err;
  int rc = cl_pbjson_from_json(d, j, &m2, &err);
  cr_assert_eq(rc, 0, "re-parse failed: %s", err.msg);
  assert_same_packed(m, m2);
  /* and once more through text, as the CLI does */
  char *text = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
  cr_assert_not_null(text);
  ProtobufCMessage *m3 = parse_ok(d, text);
  assert_same_packed(m, m3);
  free(text);
  protobuf_c_message_free_unpacked(m2, NULL);
  protobuf_c_message_free_unpacked(m3, NULL);
  json_decref(j);
  return m;
}

void to_json_fails(const ProtobufCMessage *m, int code, const char *msg) {
  json_t *j = (json_t *)0x1;
  cl_err err;
  cl_err_clear(&err);
  int rc = cl_pbjson_to_json(m, &j, &err);
  cr_assert_eq(rc, code, "to_json: got %s (%s)", cl_errname(rc), err.msg);
  cr_assert_eq(j, (json_t *)0x1);
  if (msg)
    cr_assert_str_eq(err.msg, msg);
}

/* Tests for adapters/pbjson: proto3 JSON mapping against real protoc-c
 * descriptors (clinlog record/system protos, google.protobuf.Timestamp and
 * the test schema tests/adapters/pbjson_test.proto, package cltest).
 *
 * Every round trip checks three things: the JSON we emit (structurally, with
 * json_equal), that parsing it back succeeds, and that both messages pack to
 * the same bytes. Fault loops fail the Nth allocation (ours and jansson's)
 * and expect a clean CL_ENOMEM; leaks are caught by LeakSanitizer. */
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

#define ALL (&cltest__all__descriptor)
#define INNER (&cltest__inner__descriptor)
#define BATCH (&clinlog__v1__append_batch__descriptor)

/* ---- helpers ---- */

static ProtobufCMessage *parse_ok(const ProtobufCMessageDescriptor *d,
                                  const char *text) {
  ProtobufCMessage *m = NULL;
  cl_err err;
  cl_err_clear(&err);
  int rc = cl_pbjson_from_text(d, text, strlen(text), &m, &err);
  cr_assert_eq(rc, 0, "parse of %s failed: %s (%s)", text, err.msg,
               cl_errname(rc));
  cr_assert_not_null(m);
  return m;
}

/* Expects failure with `code`; if `msg` is not NULL, err.msg must equal it. */
static void parse_fails(const ProtobufCMessageDescriptor *d, const char *text,
                        int code, const char *msg) {
  ProtobufCMessage *m = (ProtobufCMessage *)0x1;
  cl_err err;
  cl_err_clear(&err);
  int rc = cl_pbjson_from_text(d, text, strlen(text), &m, &err);
  cr_assert_eq(rc, code, "parse of %s: got %s (%s), want %s", text,
               cl_errname(rc), err.msg, cl_errname(code));
  cr_assert_eq(err.code, code);
  cr_assert_eq(m, (ProtobufCMessage *)0x1, "*out touched on error");
  if (msg)
    cr_assert_str_eq(err.msg, msg, "parse of %s", text);
}

static json_t *to_json_ok(const ProtobufCMessage *m) {
  json_t *j = NULL;
  cl_err err;
  cl_err_clear(&err);
  int rc = cl_pbjson_to_json(m, &j, &err);
  cr_assert_eq(rc, 0, "to_json failed: %s", err.msg);
  cr_assert_not_null(j);
  return j;
}

static void assert_same_packed(const ProtobufCMessage *a,
                               const ProtobufCMessage *b) {
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

static void assert_json_eq(json_t *got, const char *want_text) {
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
static ProtobufCMessage *round_trip(const ProtobufCMessageDescriptor *d,
                                    const char *in, const char *want) {
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

static void to_json_fails(const ProtobufCMessage *m, int code,
                          const char *msg) {
  json_t *j = (json_t *)0x1;
  cl_err err;
  cl_err_clear(&err);
  int rc = cl_pbjson_to_json(m, &j, &err);
  cr_assert_eq(rc, code, "to_json: got %s (%s)", cl_errname(rc), err.msg);
  cr_assert_eq(j, (json_t *)0x1);
  if (msg)
    cr_assert_str_eq(err.msg, msg);
}

/* ---- scalar types ---- */

Test(pbjson, all_scalars_round_trip) {
  Cltest__All *a = (Cltest__All *)round_trip(
      ALL,
      "{\"fInt32\":-5,\"fInt64\":\"-6\",\"fUint32\":7,\"fUint64\":\"8\","
      "\"fSint32\":-9,\"fSint64\":\"-10\",\"fFixed32\":11,\"fFixed64\":\"12\","
      "\"fSfixed32\":-13,\"fSfixed64\":\"-14\",\"fFloat\":1.5,"
      "\"fDouble\":-2.25,\"fBool\":true,\"fString\":\"h\\u00e9llo "
      "\\ud83d\\ude00\","
      "\"fBytes\":\"AAEC/w==\",\"fEnum\":\"GREEN\","
      "\"fInner\":{\"name\":\"in\",\"n\":3,\"child\":{\"n\":4}},"
      "\"fTs\":\"1972-01-01T10:00:20.021Z\"}",
      "{\"fInt32\":-5,\"fInt64\":\"-6\",\"fUint32\":7,\"fUint64\":\"8\","
      "\"fSint32\":-9,\"fSint64\":\"-10\",\"fFixed32\":11,\"fFixed64\":\"12\","
      "\"fSfixed32\":-13,\"fSfixed64\":\"-14\",\"fFloat\":1.5,"
      "\"fDouble\":-2.25,\"fBool\":true,\"fString\":\"h\\u00e9llo "
      "\\ud83d\\ude00\","
      "\"fBytes\":\"AAEC/w==\",\"fEnum\":\"GREEN\","
      "\"fInner\":{\"name\":\"in\",\"n\":3,\"child\":{\"n\":4}},"
      "\"fTs\":\"1972-01-01T10:00:20.021Z\"}");
  cr_assert_eq(a->f_int32, -5);
  cr_assert_eq(a->f_int64, -6);
  cr_assert_eq(a->f_uint32, 7u);
  cr_assert_eq(a->f_uint64, 8u);
  cr_assert_eq(a->f_sint32, -9);
  cr_assert_eq(a->f_sint64, -10);
  cr_assert_eq(a->f_fixed32, 11u);
  cr_assert_eq(a->f_fixed64, 12u);
  cr_assert_eq(a->f_sfixed32, -13);
  cr_assert_eq(a->f_sfixed64, -14);
  cr_assert_eq(a->f_float, 1.5f);
  cr_assert_eq(a->f_double, -2.25);
  cr_assert_eq(a->f_bool, 1);
  cr_assert_str_eq(a->f_string, "h\xc3\xa9llo \xf0\x9f\x98\x80");
  cr_assert_eq(a->f_bytes.len, 4u);
  cr_assert(memcmp(a->f_bytes.data, "\x00\x01\x02\xff", 4) == 0);
  cr_assert_eq(a->f_enum, CLTEST__COLOR__GREEN);
  cr_assert_str_eq(a->f_inner->name, "in");
  cr_assert_eq(a->f_inner->child->n, 4);
  cr_assert_null(a->f_inner->child->child);
  cr_assert_eq(a->f_ts->seconds, 63108020);
  cr_assert_eq(a->f_ts->nanos, 21000000);
  cr_assert_eq(a->choice_case, CLTEST__ALL__CHOICE__NOT_SET);
  protobuf_c_message_free_unpacked(&a->base, NULL);
}

Test(pbjson, repeated_round_trip) {
  ProtobufCMessage *m = round_trip(
      ALL,
      "{\"rInt32\":[1,-2,\"3\"],\"rInt64\":[\"-9223372036854775808\",5],"
      "\"rUint32\":[4294967295],\"rUint64\":[\"18446744073709551615\",\"0\"],"
      "\"rSint32\":[-2147483648],\"rSint64\":[\"9223372036854775807\"],"
      "\"rFixed32\":[0],\"rFixed64\":[\"1\"],\"rSfixed32\":[-1],"
      "\"rSfixed64\":[\"-1\"],\"rFloat\":[0.1,\"-Infinity\"],"
      "\"rDouble\":[-0.0,\"NaN\",1e300],\"rBool\":[false,true],"
      "\"rString\":[\"\",\"x\"],\"rBytes\":[\"\",\"AA\"],"
      "\"rEnum\":[\"RED\",2,\"BLUE\",0],\"rInner\":[{},{\"n\":1}],"
      "\"rTs\":[\"0001-01-01T00:00:00Z\",\"9999-12-31T23:59:59.999999999Z\"]}",
      "{\"rInt32\":[1,-2,3],\"rInt64\":[\"-9223372036854775808\",\"5\"],"
      "\"rUint32\":[4294967295],\"rUint64\":[\"18446744073709551615\",\"0\"],"
      "\"rSint32\":[-2147483648],\"rSint64\":[\"9223372036854775807\"],"
      "\"rFixed32\":[0],\"rFixed64\":[\"1\"],\"rSfixed32\":[-1],"
      "\"rSfixed64\":[\"-1\"],\"rFloat\":[0.1,\"-Infinity\"],"
      "\"rDouble\":[-0.0,\"NaN\",1e300],\"rBool\":[false,true],"
      "\"rString\":[\"\",\"x\"],\"rBytes\":[\"\",\"AA==\"],"
      "\"rEnum\":[\"RED\",\"GREEN\",\"BLUE\",\"COLOR_UNSPECIFIED\"],"
      "\"rInner\":[{},{\"n\":1}],"
      "\"rTs\":[\"0001-01-01T00:00:00Z\",\"9999-12-31T23:59:59.999999999Z\"]}");
  Cltest__All *a = (Cltest__All *)m;
  cr_assert_eq(a->n_r_int64, 2u);
  cr_assert_eq(a->r_int64[0], INT64_MIN);
  cr_assert_eq(a->r_uint64[0], UINT64_MAX);
  cr_assert_eq(a->r_sint64[0], INT64_MAX);
  cr_assert_eq(a->r_uint32[0], UINT32_MAX);
  cr_assert_eq(a->r_sint32[0], INT32_MIN);
  cr_assert(signbit(a->r_double[0]) && a->r_double[0] == 0.0);
  cr_assert(isnan(a->r_double[1]));
  cr_assert_eq(a->r_float[0], 0.1f);
  cr_assert(isinf(a->r_float[1]) && a->r_float[1] < 0);
  cr_assert_eq(a->r_enum[2], CLTEST__COLOR__BLUE);
  cr_assert_eq(a->r_ts[0]->seconds, INT64_C(-62135596800));
  cr_assert_eq(a->r_ts[1]->seconds, INT64_C(253402300799));
  cr_assert_eq(a->r_ts[1]->nanos, 999999999);
  protobuf_c_message_free_unpacked(m, NULL);
}

Test(pbjson, defaults_omitted_and_null_is_absent) {
  ProtobufCMessage *m = round_trip(
      ALL,
      "{\"fInt32\":0,\"fInt64\":\"0\",\"fFloat\":-0.0,\"fDouble\":0,"
      "\"fBool\":false,\"fString\":\"\",\"fBytes\":\"\","
      "\"fEnum\":\"COLOR_UNSPECIFIED\",\"rInt32\":[],\"fInner\":null,"
      "\"fUint64\":null,\"rString\":null,\"oString\":null}",
      "{}");
  Cltest__All *a = (Cltest__All *)m;
  cr_assert_null(a->f_inner);
  cr_assert_eq(a->choice_case, CLTEST__ALL__CHOICE__NOT_SET);
  protobuf_c_message_free_unpacked(m, NULL);
  /* an empty submessage is present and emitted as {} */
  m = round_trip(ALL, "{\"fInner\":{}}", "{\"fInner\":{}}");
  protobuf_c_message_free_unpacked(m, NULL);
  /* a default message built in C */
  Cltest__All init = CLTEST__ALL__INIT;
  json_t *j = to_json_ok(&init.base);
  assert_json_eq(j, "{}");
  json_decref(j);
}

/* ---- names ---- */

Test(pbjson, camel_case_emitted_both_names_accepted) {
  ProtobufCMessage *m = round_trip(
      BATCH,
      "{\"batch_signature\":{\"key_id\":\"AQ==\"},"
      "\"expectations\":[{\"stream\":\"s\",\"expected\":{\"kind\":\"EXACT\","
      "\"version\":7}}]}",
      "{\"batchSignature\":{\"keyId\":\"AQ==\"},"
      "\"expectations\":[{\"stream\":\"s\",\"expected\":{\"kind\":\"EXACT\","
      "\"version\":\"7\"}}]}");
  Clinlog__V1__AppendBatch *b = (Clinlog__V1__AppendBatch *)m;
  cr_assert_eq(b->batch_signature->key_id.len, 1u);
  cr_assert_eq(b->expectations[0]->expected->kind,
               CLINLOG__V1__EXPECTED_VERSION__KIND__EXACT);
  cr_assert_eq(b->expectations[0]->expected->version, 7u);
  protobuf_c_message_free_unpacked(m, NULL);

  m = parse_ok(BATCH, "{\"batchSignature\":{\"keyId\":\"AQ==\"}}");
  protobuf_c_message_free_unpacked(m, NULL);

  parse_fails(
      BATCH, "{\"batchSignature\":{\"keyId\":\"AQ==\",\"key_id\":\"AQ==\"}}",
      CL_EMALFORMED, "batchSignature.keyId: field also given as \"key_id\"");
  /* case matters */
  parse_fails(BATCH, "{\"BatchSignature\":{}}", CL_EMALFORMED,
              "BatchSignature: unknown field");
  parse_fails(BATCH, "{\"batchsignature\":{}}", CL_EMALFORMED,
              "batchsignature: unknown field");
}

Test(pbjson, record_and_system_messages) {
  ProtobufCMessage *m = round_trip(
      &clinlog__v1__prepared_batch__descriptor,
      "{\"events\":[{\"eventId\":\"AAAAAAAAAAAAAAAAAAAAAA==\",\"eventType\":12,"
      "\"signature\":{\"keyId\":\"AQID\",\"signature\":\"BAUG\"}},{}],"
      "\"preparedAtNs\":\"-1\",\"keyring\":[{\"kind\":\"REVOKE\","
      "\"roles\":[\"admin\",\"auditor\"]}],\"eraseStreamTags\":[\"AQ\",\"Ag=="
      "\"],"
      "\"signerPrincipal\":\"p\"}",
      "{\"events\":[{\"eventId\":\"AAAAAAAAAAAAAAAAAAAAAA==\",\"eventType\":12,"
      "\"signature\":{\"keyId\":\"AQID\",\"signature\":\"BAUG\"}},{}],"
      "\"preparedAtNs\":\"-1\",\"keyring\":[{\"kind\":\"REVOKE\","
      "\"roles\":[\"admin\",\"auditor\"]}],\"eraseStreamTags\":[\"AQ==\",\"Ag=="
      "\"],"
      "\"signerPrincipal\":\"p\"}");
  Clinlog__V1__PreparedBatch *p = (Clinlog__V1__PreparedBatch *)m;
  cr_assert_eq(p->n_events, 2u);
  cr_assert_eq(p->events[0]->event_id.len, 16u);
  cr_assert_eq(p->prepared_at_ns, -1);
  cr_assert_str_eq(p->keyring[0]->roles[1], "auditor");
  protobuf_c_message_free_unpacked(m, NULL);

  m = round_trip(&clinlog__v1__key_registered__descriptor,
                 "{\"principal_id\":\"dr-x\",\"not_after\":"
                 "\"2030-06-01T12:00:00+02:00\"}",
                 "{\"principalId\":\"dr-x\",\"notAfter\":"
                 "\"2030-06-01T10:00:00Z\"}");
  protobuf_c_message_free_unpacked(m, NULL);

  m = round_trip(&clinlog__v1__record__descriptor,
                 "{\"format\":1,\"seq\":\"18446744073709551615\","
                 "\"committedAtNs\":\"9223372036854775807\",\"batchSize\":3}",
                 "{\"format\":1,\"seq\":\"18446744073709551615\","
                 "\"committedAtNs\":\"9223372036854775807\",\"batchSize\":3}");
  protobuf_c_message_free_unpacked(m, NULL);
}

/* ---- integers ---- */

Test(pbjson, integers_accept_numbers_and_strings) {
  ProtobufCMessage *m =
      parse_ok(ALL, "{\"fInt32\":\"-2147483648\",\"fUint32\":\"4294967295\","
                    "\"fInt64\":9007199254740993,\"fUint64\":1e19,"
                    "\"fSint32\":1.0,\"fFixed32\":1e2,\"fSfixed64\":\"-0\"}");
  Cltest__All *a = (Cltest__All *)m;
  cr_assert_eq(a->f_int32, INT32_MIN);
  cr_assert_eq(a->f_uint32, UINT32_MAX);
  cr_assert_eq(a->f_int64, INT64_C(9007199254740993)); /* no double detour */
  cr_assert_eq(a->f_uint64, UINT64_C(10000000000000000000));
  cr_assert_eq(a->f_sint32, 1);
  cr_assert_eq(a->f_fixed32, 100u);
  cr_assert_eq(a->f_sfixed64, 0);
  protobuf_c_message_free_unpacked(m, NULL);
}

Test(pbjson, integer_range_and_syntax_errors) {
  parse_fails(ALL, "{\"fInt32\":2147483648}", CL_EMALFORMED,
              "fInt32: integer out of range");
  parse_fails(ALL, "{\"fInt32\":\"-2147483649\"}", CL_EMALFORMED,
              "fInt32: integer out of range");
  parse_fails(ALL, "{\"fUint32\":-1}", CL_EMALFORMED,
              "fUint32: integer out of range");
  parse_fails(ALL, "{\"fUint32\":4294967296}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fUint64\":\"18446744073709551616\"}", CL_EMALFORMED,
              "fUint64: integer out of range");
  parse_fails(ALL, "{\"fUint64\":\"-1\"}", CL_EMALFORMED,
              "fUint64: invalid integer string");
  parse_fails(ALL, "{\"fFixed64\":-1}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fInt64\":\"9223372036854775808\"}", CL_EMALFORMED,
              "fInt64: integer out of range");
  parse_fails(ALL, "{\"fInt64\":\"-9223372036854775809\"}", CL_EMALFORMED,
              NULL);
  parse_fails(ALL, "{\"fInt64\":1e19}", CL_EMALFORMED,
              "fInt64: integer out of range");
  parse_fails(ALL, "{\"fInt64\":9.223372036854775807e18}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fInt32\":1.5}", CL_EMALFORMED,
              "fInt32: expected integer, got fraction");
  parse_fails(ALL, "{\"fInt64\":\" 1\"}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fInt64\":\"1 \"}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fInt64\":\"+1\"}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fInt64\":\"0x10\"}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fInt64\":\"\"}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fInt64\":\"-\"}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fInt64\":\"1.0\"}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fInt32\":true}", CL_EMALFORMED,
              "fInt32: expected integer (number or string)");
  parse_fails(ALL, "{\"fInt32\":[1]}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"rInt32\":[1,null]}", CL_EMALFORMED,
              "rInt32[1]: null is not allowed in an array");
  parse_fails(ALL, "{\"rInt32\":1}", CL_EMALFORMED, "rInt32: expected array");
}

Test(pbjson, int64_emitted_as_string_at_extremes) {
  Cltest__All a = CLTEST__ALL__INIT;
  a.f_int64 = INT64_MIN;
  a.f_uint64 = UINT64_MAX;
  a.f_sint64 = INT64_MAX;
  a.f_fixed64 = UINT64_MAX;
  a.f_sfixed64 = INT64_MIN;
  a.f_int32 = INT32_MIN;
  a.f_uint32 = UINT32_MAX;
  json_t *j = to_json_ok(&a.base);
  assert_json_eq(j, "{\"fInt64\":\"-9223372036854775808\","
                    "\"fUint64\":\"18446744073709551615\","
                    "\"fSint64\":\"9223372036854775807\","
                    "\"fFixed64\":\"18446744073709551615\","
                    "\"fSfixed64\":\"-9223372036854775808\","
                    "\"fInt32\":-2147483648,\"fUint32\":4294967295}");
  ProtobufCMessage *m = NULL;
  cl_err err;
  cr_assert_eq(cl_pbjson_from_json(ALL, j, &m, &err), 0, "%s", err.msg);
  assert_same_packed(&a.base, m);
  protobuf_c_message_free_unpacked(m, NULL);
  json_decref(j);
}

/* ---- floating point ---- */

Test(pbjson, floats_and_doubles) {
  ProtobufCMessage *m = round_trip(
      ALL,
      "{\"fFloat\":\"NaN\",\"fDouble\":\"Infinity\",\"rFloat\":[3.4e38,"
      "1e-45,\"2.5\"],\"rDouble\":[\"-1e-300\",5e-324,1.7976931348623157e308]}",
      "{\"fFloat\":\"NaN\",\"fDouble\":\"Infinity\",\"rFloat\":[3.4e38,1e-45,2."
      "5],"
      "\"rDouble\":[-1e-300,5e-324,1.7976931348623157e308]}");
  Cltest__All *a = (Cltest__All *)m;
  cr_assert(isnan(a->f_float));
  cr_assert(isinf(a->f_double));
  cr_assert_eq(a->r_float[0], 3.4e38f);
  cr_assert_eq(a->r_float[1], 1e-45f);
  protobuf_c_message_free_unpacked(m, NULL);

  /* the float is written as its shortest decimal, not 0.10000000149... */
  Cltest__All b = CLTEST__ALL__INIT;
  b.f_float = 0.1f;
  b.f_double = -0.0; /* default: omitted, as protobuf-c omits it on the wire */
  json_t *j = to_json_ok(&b.base);
  assert_json_eq(j, "{\"fFloat\":0.1}");
  json_decref(j);

  parse_fails(ALL, "{\"fFloat\":3.5e38}", CL_EMALFORMED,
              "fFloat: number out of range for float");
  parse_fails(ALL, "{\"fDouble\":\"1e400\"}", CL_EMALFORMED,
              "fDouble: number out of range");
  parse_fails(ALL, "{\"fDouble\":\"01\"}", CL_EMALFORMED,
              "fDouble: invalid number string");
  parse_fails(ALL, "{\"fDouble\":\"1.\"}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fDouble\":\".5\"}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fDouble\":\"1e\"}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fDouble\":\"nan\"}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fDouble\":\"inf\"}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fDouble\":\"-infinity\"}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fDouble\":\"0x1p3\"}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fDouble\":\" 1\"}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fDouble\":\"1 \"}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fDouble\":\"1,5\"}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fDouble\":\"[1]\"}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fDouble\":true}", CL_EMALFORMED,
              "fDouble: expected number");
}

/* ---- bool, string, bytes ---- */

Test(pbjson, bool_strict) {
  parse_fails(ALL, "{\"fBool\":1}", CL_EMALFORMED,
              "fBool: expected true or false");
  parse_fails(ALL, "{\"fBool\":\"true\"}", CL_EMALFORMED, NULL);
}

Test(pbjson, bytes_base64_variants) {
  static const char *const ok[] = {
      "\"+/8=\"",
      "\"+/8\"",
      "\"-_8=\"",
      "\"-_8\"",
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    char text[64];
    snprintf(text, sizeof text, "{\"fBytes\":%s}", ok[i]);
    ProtobufCMessage *m = round_trip(ALL, text, "{\"fBytes\":\"+/8=\"}");
    Cltest__All *a = (Cltest__All *)m;
    cr_assert_eq(a->f_bytes.len, 2u);
    cr_assert(memcmp(a->f_bytes.data, "\xfb\xff", 2) == 0);
    protobuf_c_message_free_unpacked(m, NULL);
  }
  ProtobufCMessage *m =
      round_trip(ALL, "{\"fBytes\":\"YWJj\"}", "{\"fBytes\":\"YWJj\"}");
  protobuf_c_message_free_unpacked(m, NULL);
  m = round_trip(ALL, "{\"fBytes\":\"YQ\"}", "{\"fBytes\":\"YQ==\"}");
  protobuf_c_message_free_unpacked(m, NULL);

  parse_fails(ALL, "{\"fBytes\":\"+_8=\"}", CL_EMALFORMED,
              "fBytes: invalid base64");
  parse_fails(ALL, "{\"fBytes\":\"@@@@\"}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fBytes\":\"YQ=\"}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fBytes\":\"YQ===\"}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fBytes\":\"Y\"}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fBytes\":\"YQ== \"}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fBytes\":\"=\"}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fBytes\":\"YR==\"}", CL_EMALFORMED,
              NULL); /* stray bits */
  parse_fails(ALL, "{\"fBytes\":5}", CL_EMALFORMED,
              "fBytes: expected base64 string");
  parse_fails(ALL, "{\"rBytes\":[\"AA\",\"!\"]}", CL_EMALFORMED,
              "rBytes[1]: invalid base64");
}

Test(pbjson, strings_must_be_utf8) {
  /* from_json with jansson strings that bypassed its UTF-8 check */
  json_t *j = json_object();
  json_object_set_new(j, "fString", json_stringn_nocheck("a\xff", 2));
  ProtobufCMessage *m = NULL;
  cl_err err;
  cr_assert_eq(cl_pbjson_from_json(ALL, j, &m, &err), CL_EMALFORMED);
  cr_assert_str_eq(err.msg, "fString: invalid UTF-8 in string");
  json_object_set_new(j, "fString", json_stringn("a\0b", 3));
  cr_assert_eq(cl_pbjson_from_json(ALL, j, &m, &err), CL_EMALFORMED);
  cr_assert_str_eq(err.msg, "fString: string contains U+0000");
  json_decref(j);

  /* jansson rejects lone surrogates in text already */
  parse_fails(ALL, "{\"fString\":\"\\ud800\"}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fString\":\"\\u0000\"}", CL_EMALFORMED, NULL);

  static const char *const bad[] = {
      "\xff",
      "\xc0\xaf",
      "\xe0\x80\xaf",
      "\xed\xa0\x80",
      "\xf4\x90\x80\x80",
      "\xc3",
      "ok\xe2\x82",
      "\xf8\x88\x80\x80\x80",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    Cltest__All a = CLTEST__ALL__INIT;
    a.f_string = (char *)bad[i];
    to_json_fails(&a.base, CL_EMALFORMED, "fString: invalid UTF-8 in string");
    Cltest__All b = CLTEST__ALL__INIT;
    char *strs[] = {"fine", (char *)bad[i]};
    b.n_r_string = 2;
    b.r_string = strs;
    to_json_fails(&b.base, CL_EMALFORMED,
                  "rString[1]: invalid UTF-8 in string");
  }
  /* valid edge cases are kept */
  Cltest__All a = CLTEST__ALL__INIT;
  a.f_string = "\x7f\xc2\x80\xef\xbf\xbf\xf4\x8f\xbf\xbf\xe0\xa0\x80";
  j = to_json_ok(&a.base);
  cr_assert_str_eq(json_string_value(json_object_get(j, "fString")),
                   a.f_string);
  json_decref(j);
}

/* ---- enums ---- */

Test(pbjson, enums_by_name_and_number) {
  ProtobufCMessage *m =
      round_trip(ALL, "{\"fEnum\":-3,\"rEnum\":[1,\"GREEN\",7]}",
                 "{\"fEnum\":\"BLUE\","
                 "\"rEnum\":[\"RED\",\"GREEN\",7]}");
  Cltest__All *a = (Cltest__All *)m;
  cr_assert_eq(a->f_enum, CLTEST__COLOR__BLUE);
  cr_assert_eq((int)a->r_enum[2], 7); /* open enum: unknown numbers kept */
  protobuf_c_message_free_unpacked(m, NULL);

  parse_fails(ALL, "{\"fEnum\":\"PURPLE\"}", CL_EMALFORMED,
              "fEnum: unknown value name for enum cltest.Color");
  parse_fails(ALL, "{\"fEnum\":\"red\"}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fEnum\":\"1\"}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fEnum\":2147483648}", CL_EMALFORMED,
              "fEnum: enum number out of range");
  parse_fails(ALL, "{\"rEnum\":[\"RED\",true]}", CL_EMALFORMED,
              "rEnum[1]: expected enum value name or number");
  parse_fails(BATCH, "{\"expectations\":[{\"expected\":{\"kind\":\"ALL\"}}]}",
              CL_EMALFORMED,
              "expectations[0].expected.kind: unknown value name for enum "
              "clinlog.v1.ExpectedVersion.Kind");
}

/* ---- oneof ---- */

Test(pbjson, oneof_members) {
  ProtobufCMessage *m = round_trip(ALL, "{\"oInt64\":0}", "{\"oInt64\":\"0\"}");
  cr_assert_eq(((Cltest__All *)m)->choice_case, CLTEST__ALL__CHOICE_O_INT64);
  protobuf_c_message_free_unpacked(m, NULL);

  m = round_trip(ALL, "{\"o_string\":\"\"}", "{\"oString\":\"\"}");
  cr_assert_eq(((Cltest__All *)m)->choice_case, CLTEST__ALL__CHOICE_O_STRING);
  protobuf_c_message_free_unpacked(m, NULL);

  m = round_trip(ALL, "{\"oInner\":{\"name\":\"x\"},\"oBool\":null}",
                 "{\"oInner\":{\"name\":\"x\"}}");
  Cltest__All *a = (Cltest__All *)m;
  cr_assert_eq(a->choice_case, CLTEST__ALL__CHOICE_O_INNER);
  cr_assert_str_eq(a->o_inner->name, "x");
  protobuf_c_message_free_unpacked(m, NULL);

  static const char *const members[] = {
      "{\"oBytes\":\"\"}", "{\"oEnum\":\"COLOR_UNSPECIFIED\"}",
      "{\"oDouble\":0}",   "{\"oBool\":false}",
      "{\"oInner\":{}}",
  };
  static const char *const emitted[] = {
      "{\"oBytes\":\"\"}", "{\"oEnum\":\"COLOR_UNSPECIFIED\"}",
      "{\"oDouble\":0.0}", "{\"oBool\":false}",
      "{\"oInner\":{}}",
  };
  for (size_t i = 0; i < sizeof members / sizeof members[0]; i++) {
    m = round_trip(ALL, members[i], emitted[i]);
    cr_assert_neq(((Cltest__All *)m)->choice_case,
                  CLTEST__ALL__CHOICE__NOT_SET);
    protobuf_c_message_free_unpacked(m, NULL);
  }

  parse_fails(ALL, "{\"oString\":\"a\",\"oInt64\":1}", CL_EMALFORMED,
              "oInt64: only one field of a oneof may be set (\"oString\" is "
              "set too)");
  /* the first member's allocations are released on the conflict */
  parse_fails(ALL, "{\"oInner\":{\"name\":\"a\"},\"oBytes\":\"AA==\"}",
              CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"oBytes\":\"AA==\",\"oInner\":{\"name\":\"a\"}}",
              CL_EMALFORMED, NULL);
  /* an error inside a oneof member frees it cleanly */
  parse_fails(ALL, "{\"oInner\":{\"name\":\"a\",\"n\":\"x\"}}", CL_EMALFORMED,
              "oInner.n: invalid integer string");

  /* built in C: a set case with a NULL pointer is not on the wire, so not
   * in JSON either */
  Cltest__All b = CLTEST__ALL__INIT;
  b.choice_case = CLTEST__ALL__CHOICE_O_INNER;
  b.o_inner = NULL;
  json_t *j = to_json_ok(&b.base);
  assert_json_eq(j, "{}");
  json_decref(j);
}

/* ---- Timestamp ---- */

static void ts_case(const char *in, int64_t secs, int32_t nanos,
                    const char *out) {
  char text[128];
  snprintf(text, sizeof text, "{\"fTs\":\"%s\"}", in);
  char want[128];
  snprintf(want, sizeof want, "{\"fTs\":\"%s\"}", out);
  ProtobufCMessage *m = round_trip(ALL, text, want);
  Cltest__All *a = (Cltest__All *)m;
  cr_assert_eq(a->f_ts->seconds, secs, "%s: seconds %" PRId64, in,
               a->f_ts->seconds);
  cr_assert_eq(a->f_ts->nanos, nanos, "%s: nanos %d", in, a->f_ts->nanos);
  protobuf_c_message_free_unpacked(m, NULL);
}

Test(pbjson, timestamp_parse_and_format) {
  ts_case("1972-01-01T10:00:20.021Z", 63108020, 21000000,
          "1972-01-01T10:00:20.021Z");
  ts_case("1970-01-01T00:00:00Z", 0, 0, "1970-01-01T00:00:00Z");
  ts_case("1970-01-01T00:00:00.000Z", 0, 0, "1970-01-01T00:00:00Z");
  ts_case("1969-12-31T23:59:59.999999999Z", -1, 999999999,
          "1969-12-31T23:59:59.999999999Z");
  ts_case("2024-02-29T12:00:00.5Z", 1709208000, 500000000,
          "2024-02-29T12:00:00.500Z");
  ts_case("2024-02-29T12:00:00.000001Z", 1709208000, 1000,
          "2024-02-29T12:00:00.000001Z");
  ts_case("2024-02-29T12:00:00.1234Z", 1709208000, 123400000,
          "2024-02-29T12:00:00.123400Z");
  ts_case("2024-02-29T12:00:00.000000001Z", 1709208000, 1,
          "2024-02-29T12:00:00.000000001Z");
  ts_case("2024-03-01T01:30:00+02:00", 1709249400, 0, "2024-02-29T23:30:00Z");
  ts_case("2024-02-29T22:00:00-05:30", 1709263800, 0, "2024-03-01T03:30:00Z");
  ts_case("2000-01-01t00:00:00z", 946684800, 0, "2000-01-01T00:00:00Z");
  ts_case("0001-01-01T00:00:00Z", INT64_C(-62135596800), 0,
          "0001-01-01T00:00:00Z");
  ts_case("0001-01-01T01:00:00+01:00", INT64_C(-62135596800), 0,
          "0001-01-01T00:00:00Z");
  ts_case("9999-12-31T23:59:59.999999999Z", INT64_C(253402300799), 999999999,
          "9999-12-31T23:59:59.999999999Z");
  ts_case("1900-03-01T00:00:00Z", INT64_C(-2203891200), 0,
          "1900-03-01T00:00:00Z");

  /* the Timestamp type on its own maps to a JSON string */
  ProtobufCMessage *m = NULL;
  cl_err err;
  cr_assert_eq(cl_pbjson_from_text(&google__protobuf__timestamp__descriptor,
                                   "\"2026-01-02T03:04:05Z\"", 22, &m, &err),
               0, "%s", err.msg);
  json_t *j = to_json_ok(m);
  assert_json_eq(j, "\"2026-01-02T03:04:05Z\"");
  json_decref(j);
  protobuf_c_message_free_unpacked(m, NULL);
}

Test(pbjson, timestamp_invalid) {
  static const char *const bad[] = {
      "2026-02-30T00:00:00Z",
      "2023-02-29T00:00:00Z",
      "1900-02-29T00:00:00Z",
      "2026-04-31T00:00:00Z",
      "2026-13-01T00:00:00Z",
      "2026-00-01T00:00:00Z",
      "2026-01-00T00:00:00Z",
      "2026-01-01T24:00:00Z",
      "2026-01-01T00:60:00Z",
      "2016-12-31T23:59:60Z",
      "0000-12-31T00:00:00Z",
      "0001-01-01T00:00:00+00:01",
      "9999-12-31T23:59:59-00:01",
      "10000-01-01T00:00:00Z",
      "2026-01-01T00:00:00",
      "2026-01-01 00:00:00Z",
      "2026-01-01T00:00:00.Z",
      "2026-01-01T00:00:00.1234567890Z",
      "2026-01-01T00:00:00+2:00",
      "2026-01-01T00:00:00+02:60",
      "2026-01-01T00:00:00+24:00",
      "2026-01-01T00:00:00+0200",
      "2026-1-01T00:00:00Z",
      "2026-01-01T00:00:00Z ",
      " 2026-01-01T00:00:00Z",
      "2026-01-01",
      "",
      "+2026-01-01T00:00:00Z",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char text[128];
    snprintf(text, sizeof text, "{\"rTs\":[\"2026-01-01T00:00:00Z\",\"%s\"]}",
             bad[i]);
    parse_fails(ALL, text, CL_EMALFORMED,
                "rTs[1]: invalid RFC 3339 timestamp (or outside 0001-9999)");
  }
  parse_fails(ALL, "{\"fTs\":{\"seconds\":\"1\"}}", CL_EMALFORMED,
              "fTs: expected RFC 3339 timestamp string");
  parse_fails(ALL, "{\"fTs\":0}", CL_EMALFORMED, NULL);

  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  Cltest__All a = CLTEST__ALL__INIT;
  a.f_ts = &ts;
  ts.seconds = INT64_C(253402300800);
  to_json_fails(&a.base, CL_EMALFORMED, "fTs: timestamp out of range");
  ts.seconds = INT64_C(-62135596801);
  to_json_fails(&a.base, CL_EMALFORMED, NULL);
  ts.seconds = 0;
  ts.nanos = -1;
  to_json_fails(&a.base, CL_EMALFORMED, NULL);
  ts.nanos = 1000000000;
  to_json_fails(&a.base, CL_EMALFORMED, NULL);
  ts.seconds = INT64_MIN;
  ts.nanos = 0;
  to_json_fails(&a.base, CL_EMALFORMED, NULL);
}

/* ---- structure errors and paths ---- */

Test(pbjson, unknown_field_and_wrong_type_name_the_path) {
  parse_fails(BATCH, "{\"expectations\":[{\"stream\":\"a\"},{\"bogus\":1}]}",
              CL_EMALFORMED, "expectations[1].bogus: unknown field");
  parse_fails(BATCH, "{\"expectations\":[{\"expected\":{\"version\":true}}]}",
              CL_EMALFORMED,
              "expectations[0].expected.version: expected integer (number or "
              "string)");
  parse_fails(BATCH, "{\"expectations\":[{\"stream\":5}]}", CL_EMALFORMED,
              "expectations[0].stream: expected string");
  parse_fails(BATCH, "{\"batchSignature\":[]}", CL_EMALFORMED,
              "batchSignature: expected object for clinlog.v1.Signature");
  parse_fails(BATCH, "{\"expectations\":[[]]}", CL_EMALFORMED,
              "expectations[0]: expected object for "
              "clinlog.v1.StreamExpectation");
  parse_fails(BATCH, "[]", CL_EMALFORMED,
              "expected object for clinlog.v1.AppendBatch");
  parse_fails(BATCH, "\"x\"", CL_EMALFORMED, NULL);
  /* unprintable key bytes are masked in the message */
  parse_fails(BATCH, "{\"a\\u0001b\":1}", CL_EMALFORMED, "a?b: unknown field");
  /* a key with an embedded NUL does not match the field before it */
  json_t *j = json_object();
  json_object_setn_new_nocheck(j, "events\0x", 8, json_array());
  ProtobufCMessage *m = NULL;
  cl_err err;
  cr_assert_eq(cl_pbjson_from_json(BATCH, j, &m, &err), CL_EMALFORMED);
  json_decref(j);
}

Test(pbjson, bad_json_text) {
  ProtobufCMessage *m = NULL;
  cl_err err;
  const char *t = "{\n  \"events\": [,]\n}";
  cr_assert_eq(cl_pbjson_from_text(BATCH, t, strlen(t), &m, &err),
               CL_EMALFORMED);
  cr_assert(strstr(err.msg, "line 2, column") != NULL, "%s", err.msg);
  t = "{\"events\":[],\"events\":[]}";
  cr_assert_eq(cl_pbjson_from_text(BATCH, t, strlen(t), &m, &err),
               CL_EMALFORMED);
  cr_assert(strstr(err.msg, "duplicate") != NULL, "%s", err.msg);
  /* not NUL-terminated: only len bytes are read */
  t = "{}garbage";
  cr_assert_eq(cl_pbjson_from_text(BATCH, t, 2, &m, &err), 0, "%s", err.msg);
  protobuf_c_message_free_unpacked(m, NULL);
  cr_assert_eq(cl_pbjson_from_text(BATCH, "", 0, &m, &err), CL_EMALFORMED);
  cr_assert_eq(cl_pbjson_from_text(NULL, "{}", 2, &m, &err), CL_EINVAL);
  cr_assert_eq(cl_pbjson_from_text(BATCH, "{}", 2, NULL, &err), CL_EINVAL);
  cr_assert_eq(cl_pbjson_from_json(BATCH, NULL, &m, &err), CL_EINVAL);
  cr_assert_eq(cl_pbjson_to_json(NULL, NULL, &err), CL_EINVAL);
  /* NULL err is allowed */
  cr_assert_eq(cl_pbjson_from_text(BATCH, "[", 1, &m, NULL), CL_EMALFORMED);
}

/* Builds {"child":{"child":...}} with `levels` objects in all. */
static char *nested_inner(int levels) {
  size_t cap = (size_t)levels * 12 + 8;
  char *s = malloc(cap), *p = s;
  cr_assert_not_null(s);
  for (int i = 1; i < levels; i++)
    p += sprintf(p, "{\"child\":");
  p += sprintf(p, "{\"n\":1}");
  for (int i = 1; i < levels; i++)
    *p++ = '}';
  *p = '\0';
  return s;
}

Test(pbjson, depth_limit) {
  char *ok = nested_inner(CL_PBJSON_MAX_DEPTH);
  ProtobufCMessage *m = parse_ok(INNER, ok);
  json_t *j = to_json_ok(m);
  json_decref(j);
  protobuf_c_message_free_unpacked(m, NULL);
  free(ok);

  char *deep = nested_inner(CL_PBJSON_MAX_DEPTH + 1);
  m = (ProtobufCMessage *)0x1;
  cl_err err;
  cr_assert_eq(cl_pbjson_from_text(INNER, deep, strlen(deep), &m, &err),
               CL_EMALFORMED);
  cr_assert(strstr(err.msg, ": too deeply nested") != NULL, "%s", err.msg);
  cr_assert(strncmp(err.msg, "...", 3) == 0, "%s", err.msg);
  free(deep);

  /* the same limit when emitting; a cycle is caught by it too */
  Cltest__Inner nodes[CL_PBJSON_MAX_DEPTH + 1];
  for (int i = 0; i <= CL_PBJSON_MAX_DEPTH; i++) {
    cltest__inner__init(&nodes[i]);
    nodes[i].child = i < CL_PBJSON_MAX_DEPTH ? &nodes[i + 1] : NULL;
  }
  to_json_fails(&nodes[0].base, CL_EMALFORMED, NULL);
  j = to_json_ok(&nodes[1].base);
  json_decref(j);
  Cltest__Inner loop = CLTEST__INNER__INIT;
  loop.child = &loop;
  to_json_fails(&loop.base, CL_EMALFORMED, NULL);
}

Test(pbjson, malformed_messages_in_to_json) {
  Cltest__All a = CLTEST__ALL__INIT;
  Cltest__Inner *inners[2] = {NULL, NULL};
  a.n_r_inner = 2;
  a.r_inner = inners;
  to_json_fails(&a.base, CL_EMALFORMED, "rInner[0]: NULL message");
  Cltest__All b = CLTEST__ALL__INIT;
  b.f_bytes.len = 3;
  b.f_bytes.data = NULL;
  to_json_fails(&b.base, CL_EMALFORMED, NULL);
  Cltest__All c = CLTEST__ALL__INIT;
  c.n_r_int32 = 1;
  c.r_int32 = NULL;
  to_json_fails(&c.base, CL_EMALFORMED, NULL);
}

/* ---- fault injection: fail the Nth allocation, ours or jansson's ---- */

static long alloc_countdown = -1; /* < 0: never fail */
static long allocs_seen;

static void *counting_malloc(size_t n) {
  allocs_seen++;
  if (alloc_countdown >= 0 && alloc_countdown-- == 0)
    return NULL;
  return malloc(n);
}

static void fault_setup(void) {
  cl_pbjson_set_alloc_hook(counting_malloc);
  json_set_alloc_funcs(counting_malloc, free);
}

static void fault_teardown(void) {
  cl_pbjson_set_alloc_hook(NULL);
  json_set_alloc_funcs(malloc, free);
  alloc_countdown = -1;
}

static const char fault_doc[] =
    "{\"fInt32\":1,\"fInt64\":\"2\",\"fString\":\"str\",\"fBytes\":\"AAEC\","
    "\"fDouble\":\"1.5\",\"fFloat\":0.1,"
    "\"fInner\":{\"name\":\"in\",\"child\":{\"name\":\"c\"}},"
    "\"fTs\":\"2026-01-01T00:00:00.5Z\",\"rString\":[\"a\",\"b\"],"
    "\"rBytes\":[\"AA\",\"AQ\"],\"rInner\":[{\"name\":\"x\"},{\"n\":2}],"
    "\"rTs\":[\"2026-01-01T00:00:00Z\"],\"rEnum\":[\"RED\"],"
    "\"oInner\":{\"name\":\"o\"}}";

Test(pbjson, fault_loop_from_json, .init = fault_setup,
     .fini = fault_teardown) {
  json_error_t jerr;
  json_t *j = json_loads(fault_doc, 0, &jerr);
  cr_assert_not_null(j);
  for (long n = 0;; n++) {
    ProtobufCMessage *m = (ProtobufCMessage *)0x1;
    cl_err err;
    alloc_countdown = n;
    int rc = cl_pbjson_from_json(ALL, j, &m, &err);
    alloc_countdown = -1;
    if (rc == 0) {
      cr_assert_gt(n, 10);
      protobuf_c_message_free_unpacked(m, NULL);
      break;
    }
    cr_assert_eq(rc, CL_ENOMEM, "n=%ld: %s", n, err.msg);
    cr_assert_eq(m, (ProtobufCMessage *)0x1);
    cr_assert_lt(n, 10000);
  }
  json_decref(j);
}

Test(pbjson, fault_loop_to_json, .init = fault_setup, .fini = fault_teardown) {
  ProtobufCMessage *m = parse_ok(ALL, fault_doc);
  for (long n = 0;; n++) {
    json_t *j = (json_t *)0x1;
    cl_err err;
    alloc_countdown = n;
    int rc = cl_pbjson_to_json(m, &j, &err);
    alloc_countdown = -1;
    if (rc == 0) {
      cr_assert_gt(n, 10);
      json_decref(j);
      break;
    }
    cr_assert_eq(rc, CL_ENOMEM, "n=%ld: %s", n, err.msg);
    cr_assert_eq(j, (json_t *)0x1);
    cr_assert_lt(n, 10000);
  }
  protobuf_c_message_free_unpacked(m, NULL);
}

Test(pbjson, fault_loop_from_text, .init = fault_setup,
     .fini = fault_teardown) {
  for (long n = 0;; n++) {
    ProtobufCMessage *m = NULL;
    cl_err err;
    alloc_countdown = n;
    int rc =
        cl_pbjson_from_text(ALL, fault_doc, sizeof fault_doc - 1, &m, &err);
    alloc_countdown = -1;
    if (rc == 0) {
      protobuf_c_message_free_unpacked(m, NULL);
      break;
    }
    /* jansson's parser reports some allocation failures as syntax errors */
    cr_assert(rc == CL_ENOMEM || rc == CL_EMALFORMED, "n=%ld: %s", n, err.msg);
    cr_assert_lt(n, 10000);
  }
}

/* Tests for adapters/pbjson: proto3 JSON mapping against real protoc-c
 * descriptors (clinlog record/system protos, google.protobuf.Timestamp and
 * the test schema tests/adapters/pbjson_test.proto, package cltest), with
 * the helpers of pbjson_fixture.h: scalars, names, integers, floating
 * point, bool, string and bytes, enums, oneofs. Timestamps, structure
 * errors and their paths, and allocation failures are in
 * test_pbjson_errors.c.
 *
 * Every round trip checks three things: the JSON we emit (structurally, with
 * json_equal), that parsing it back succeeds, and that both messages pack to
 * the same bytes. */
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
#include "tests/adapters/pbjson_fixture.h"

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
  ProtobufCMessage *m =
      round_trip(ALL,
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
  ProtobufCMessage *m = round_trip(ALL,
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
  ProtobufCMessage *m =
      round_trip(BATCH,
                 "{\"batch_signature\":{\"key_id\":\"AQ==\"},"
                 "\"expectations\":[{\"stream\":\"s\",\"expected\":{\"kind\":\"EXACT\","
                 "\"version\":7}}]}",
                 "{\"batchSignature\":{\"keyId\":\"AQ==\"},"
                 "\"expectations\":[{\"stream\":\"s\",\"expected\":{\"kind\":\"EXACT\","
                 "\"version\":\"7\"}}]}");
  Clinlog__V1__AppendBatch *b = (Clinlog__V1__AppendBatch *)m;
  cr_assert_eq(b->batch_signature->key_id.len, 1u);
  cr_assert_eq(b->expectations[0]->expected->kind, CLINLOG__V1__EXPECTED_VERSION__KIND__EXACT);
  cr_assert_eq(b->expectations[0]->expected->version, 7u);
  protobuf_c_message_free_unpacked(m, NULL);

  m = parse_ok(BATCH, "{\"batchSignature\":{\"keyId\":\"AQ==\"}}");
  protobuf_c_message_free_unpacked(m, NULL);

  parse_fails(BATCH, "{\"batchSignature\":{\"keyId\":\"AQ==\",\"key_id\":\"AQ==\"}}", CL_EMALFORMED,
              "batchSignature.keyId: field also given as \"key_id\"");
  /* case matters */
  parse_fails(BATCH, "{\"BatchSignature\":{}}", CL_EMALFORMED, "BatchSignature: unknown field");
  parse_fails(BATCH, "{\"batchsignature\":{}}", CL_EMALFORMED, "batchsignature: unknown field");
}

Test(pbjson, record_and_system_messages) {
  ProtobufCMessage *m =
      round_trip(&clinlog__v1__prepared_batch__descriptor,
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
  ProtobufCMessage *m = parse_ok(ALL, "{\"fInt32\":\"-2147483648\",\"fUint32\":\"4294967295\","
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
  parse_fails(ALL, "{\"fInt32\":2147483648}", CL_EMALFORMED, "fInt32: integer out of range");
  parse_fails(ALL, "{\"fInt32\":\"-2147483649\"}", CL_EMALFORMED, "fInt32: integer out of range");
  parse_fails(ALL, "{\"fUint32\":-1}", CL_EMALFORMED, "fUint32: integer out of range");
  parse_fails(ALL, "{\"fUint32\":4294967296}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fUint64\":\"18446744073709551616\"}", CL_EMALFORMED,
              "fUint64: integer out of range");
  parse_fails(ALL, "{\"fUint64\":\"-1\"}", CL_EMALFORMED, "fUint64: invalid integer string");
  parse_fails(ALL, "{\"fFixed64\":-1}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fInt64\":\"9223372036854775808\"}", CL_EMALFORMED,
              "fInt64: integer out of range");
  parse_fails(ALL, "{\"fInt64\":\"-9223372036854775809\"}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fInt64\":1e19}", CL_EMALFORMED, "fInt64: integer out of range");
  parse_fails(ALL, "{\"fInt64\":9.223372036854775807e18}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fInt32\":1.5}", CL_EMALFORMED, "fInt32: expected integer, got fraction");
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
  ProtobufCMessage *m =
      round_trip(ALL,
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

  parse_fails(ALL, "{\"fFloat\":3.5e38}", CL_EMALFORMED, "fFloat: number out of range for float");
  parse_fails(ALL, "{\"fDouble\":\"1e400\"}", CL_EMALFORMED, "fDouble: number out of range");
  parse_fails(ALL, "{\"fDouble\":\"01\"}", CL_EMALFORMED, "fDouble: invalid number string");
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
  parse_fails(ALL, "{\"fDouble\":true}", CL_EMALFORMED, "fDouble: expected number");
}

/* ---- bool, string, bytes ---- */

Test(pbjson, bool_strict) {
  parse_fails(ALL, "{\"fBool\":1}", CL_EMALFORMED, "fBool: expected true or false");
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
  ProtobufCMessage *m = round_trip(ALL, "{\"fBytes\":\"YWJj\"}", "{\"fBytes\":\"YWJj\"}");
  protobuf_c_message_free_unpacked(m, NULL);
  m = round_trip(ALL, "{\"fBytes\":\"YQ\"}", "{\"fBytes\":\"YQ==\"}");
  protobuf_c_message_free_unpacked(m, NULL);

  parse_fails(ALL, "{\"fBytes\":\"+_8=\"}", CL_EMALFORMED, "fBytes: invalid base64");
  parse_fails(ALL, "{\"fBytes\":\"@@@@\"}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fBytes\":\"YQ=\"}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fBytes\":\"YQ===\"}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fBytes\":\"Y\"}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fBytes\":\"YQ== \"}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fBytes\":\"=\"}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"fBytes\":\"YR==\"}", CL_EMALFORMED, NULL); /* stray bits */
  parse_fails(ALL, "{\"fBytes\":5}", CL_EMALFORMED, "fBytes: expected base64 string");
  parse_fails(ALL, "{\"rBytes\":[\"AA\",\"!\"]}", CL_EMALFORMED, "rBytes[1]: invalid base64");
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
      "\xff", "\xc0\xaf",   "\xe0\x80\xaf",         "\xed\xa0\x80", "\xf4\x90\x80\x80",
      "\xc3", "ok\xe2\x82", "\xf8\x88\x80\x80\x80",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    Cltest__All a = CLTEST__ALL__INIT;
    a.f_string = (char *)bad[i];
    to_json_fails(&a.base, CL_EMALFORMED, "fString: invalid UTF-8 in string");
    Cltest__All b = CLTEST__ALL__INIT;
    char *strs[] = {"fine", (char *)bad[i]};
    b.n_r_string = 2;
    b.r_string = strs;
    to_json_fails(&b.base, CL_EMALFORMED, "rString[1]: invalid UTF-8 in string");
  }
  /* valid edge cases are kept */
  Cltest__All a = CLTEST__ALL__INIT;
  a.f_string = "\x7f\xc2\x80\xef\xbf\xbf\xf4\x8f\xbf\xbf\xe0\xa0\x80";
  j = to_json_ok(&a.base);
  cr_assert_str_eq(json_string_value(json_object_get(j, "fString")), a.f_string);
  json_decref(j);
}

/* ---- enums ---- */

Test(pbjson, enums_by_name_and_number) {
  ProtobufCMessage *m = round_trip(ALL, "{\"fEnum\":-3,\"rEnum\":[1,\"GREEN\",7]}",
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
  parse_fails(ALL, "{\"fEnum\":2147483648}", CL_EMALFORMED, "fEnum: enum number out of range");
  parse_fails(ALL, "{\"rEnum\":[\"RED\",true]}", CL_EMALFORMED,
              "rEnum[1]: expected enum value name or number");
  parse_fails(BATCH, "{\"expectations\":[{\"expected\":{\"kind\":\"ALL\"}}]}", CL_EMALFORMED,
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
    cr_assert_neq(((Cltest__All *)m)->choice_case, CLTEST__ALL__CHOICE__NOT_SET);
    protobuf_c_message_free_unpacked(m, NULL);
  }

  parse_fails(ALL, "{\"oString\":\"a\",\"oInt64\":1}", CL_EMALFORMED,
              "oInt64: only one field of a oneof may be set (\"oString\" is "
              "set too)");
  /* the first member's allocations are released on the conflict */
  parse_fails(ALL, "{\"oInner\":{\"name\":\"a\"},\"oBytes\":\"AA==\"}", CL_EMALFORMED, NULL);
  parse_fails(ALL, "{\"oBytes\":\"AA==\",\"oInner\":{\"name\":\"a\"}}", CL_EMALFORMED, NULL);
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

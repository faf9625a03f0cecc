/* Tests for adapters/pbjson, continued (pbjson_fixture.h):
 * google.protobuf.Timestamp's text form, structure errors that name their
 * element path, bad JSON text, the depth limit, malformed messages, and
 * fault loops that fail the Nth allocation (ours and jansson's) and expect
 * a clean CL_ENOMEM (leaks are caught by LeakSanitizer). */
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

/* ---- Timestamp ---- */

static void ts_case(const char *in, int64_t secs, int32_t nanos, const char *out) {
  char text[128];
  snprintf(text, sizeof text, "{\"fTs\":\"%s\"}", in);
  char want[128];
  snprintf(want, sizeof want, "{\"fTs\":\"%s\"}", out);
  ProtobufCMessage *m = round_trip(ALL, text, want);
  Cltest__All *a = (Cltest__All *)m;
  cr_assert_eq(a->f_ts->seconds, secs, "%s: seconds %" PRId64, in, a->f_ts->seconds);
  cr_assert_eq(a->f_ts->nanos, nanos, "%s: nanos %d", in, a->f_ts->nanos);
  protobuf_c_message_free_unpacked(m, NULL);
}

Test(pbjson, timestamp_parse_and_format) {
  ts_case("1972-01-01T10:00:20.021Z", 63108020, 21000000, "1972-01-01T10:00:20.021Z");
  ts_case("1970-01-01T00:00:00Z", 0, 0, "1970-01-01T00:00:00Z");
  ts_case("1970-01-01T00:00:00.000Z", 0, 0, "1970-01-01T00:00:00Z");
  ts_case("1969-12-31T23:59:59.999999999Z", -1, 999999999, "1969-12-31T23:59:59.999999999Z");
  ts_case("2024-02-29T12:00:00.5Z", 1709208000, 500000000, "2024-02-29T12:00:00.500Z");
  ts_case("2024-02-29T12:00:00.000001Z", 1709208000, 1000, "2024-02-29T12:00:00.000001Z");
  ts_case("2024-02-29T12:00:00.1234Z", 1709208000, 123400000, "2024-02-29T12:00:00.123400Z");
  ts_case("2024-02-29T12:00:00.000000001Z", 1709208000, 1, "2024-02-29T12:00:00.000000001Z");
  ts_case("2024-03-01T01:30:00+02:00", 1709249400, 0, "2024-02-29T23:30:00Z");
  ts_case("2024-02-29T22:00:00-05:30", 1709263800, 0, "2024-03-01T03:30:00Z");
  ts_case("2000-01-01t00:00:00z", 946684800, 0, "2000-01-01T00:00:00Z");
  ts_case("0001-01-01T00:00:00Z", INT64_C(-62135596800), 0, "0001-01-01T00:00:00Z");
  ts_case("0001-01-01T01:00:00+01:00", INT64_C(-62135596800), 0, "0001-01-01T00:00:00Z");
  ts_case("9999-12-31T23:59:59.999999999Z", INT64_C(253402300799), 999999999,
          "9999-12-31T23:59:59.999999999Z");
  ts_case("1900-03-01T00:00:00Z", INT64_C(-2203891200), 0, "1900-03-01T00:00:00Z");

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
    snprintf(text, sizeof text, "{\"rTs\":[\"2026-01-01T00:00:00Z\",\"%s\"]}", bad[i]);
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
  parse_fails(BATCH, "{\"expectations\":[{\"stream\":\"a\"},{\"bogus\":1}]}", CL_EMALFORMED,
              "expectations[1].bogus: unknown field");
  parse_fails(BATCH, "{\"expectations\":[{\"expected\":{\"version\":true}}]}", CL_EMALFORMED,
              "expectations[0].expected.version: expected integer (number or "
              "string)");
  parse_fails(BATCH, "{\"expectations\":[{\"stream\":5}]}", CL_EMALFORMED,
              "expectations[0].stream: expected string");
  parse_fails(BATCH, "{\"batchSignature\":[]}", CL_EMALFORMED,
              "batchSignature: expected object for clinlog.v1.Signature");
  parse_fails(BATCH, "{\"expectations\":[[]]}", CL_EMALFORMED,
              "expectations[0]: expected object for "
              "clinlog.v1.StreamExpectation");
  parse_fails(BATCH, "[]", CL_EMALFORMED, "expected object for clinlog.v1.AppendBatch");
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
  cr_assert_eq(cl_pbjson_from_text(BATCH, t, strlen(t), &m, &err), CL_EMALFORMED);
  cr_assert(strstr(err.msg, "line 2, column") != NULL, "%s", err.msg);
  t = "{\"events\":[],\"events\":[]}";
  cr_assert_eq(cl_pbjson_from_text(BATCH, t, strlen(t), &m, &err), CL_EMALFORMED);
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
  cr_assert_eq(cl_pbjson_from_text(INNER, deep, strlen(deep), &m, &err), CL_EMALFORMED);
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

Test(pbjson, fault_loop_from_json, .init = fault_setup, .fini = fault_teardown) {
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

Test(pbjson, fault_loop_from_text, .init = fault_setup, .fini = fault_teardown) {
  for (long n = 0;; n++) {
    ProtobufCMessage *m = NULL;
    cl_err err;
    alloc_countdown = n;
    int rc = cl_pbjson_from_text(ALL, fault_doc, sizeof fault_doc - 1, &m, &err);
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

/* adapters/fhir/fhirw_patch.c: JSON Patch (RFC 6902) over a resource as
 * cl_fhirw_parse makes it. Every operation and the pointer escapes apply as
 * the RFC's examples say, numbers keep their text, and every bad patch
 * (not JSON, not an array, an unknown op, a member missing or of the wrong
 * type, a bad pointer, an index out of range or with a leading zero, a
 * move into itself, a failing test) is refused with the operation's index
 * and member, the status and the issue code, leaving the document exactly
 * as it was. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/fhir/fhirw_patch.h"

TestSuite(fhirw_patch, .timeout = 30);

static const char *const DOC =
    "{\"resourceType\":\"Patient\",\"id\":\"p1\",\"name\":[{\"family\":\"Rivera\","
    "\"given\":[\"Lucia\",\"Ana\"]}],\"gender\":\"female\",\"a/b\":1,\"m~n\":2,"
    "\"valueQuantity\":{\"value\":7.10}}";

static json_t *doc(void) {
  json_t *d;
  cl_fhirw_error fe;
  cl_err err;
  cr_assert_eq(cl_fhirw_parse(DOC, strlen(DOC), &d, &fe, &err), 0);
  return d;
}

/* The document after `patch`, as JSON text (sorted members). */
static char *patched(const char *patch) {
  json_t *d = doc();
  cl_fhirw_error fe;
  cl_err err;
  int rc = cl_fhirw_patch(&d, patch, strlen(patch), &fe, &err);
  cr_assert_eq(rc, 0, "%s: %s", patch, err.msg);
  char *s = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(d);
  return s;
}

static void expect_member(const char *patch, const char *pointer_member, const char *want) {
  json_t *d = doc();
  cl_fhirw_error fe;
  cl_err err;
  cr_assert_eq(cl_fhirw_patch(&d, patch, strlen(patch), &fe, &err), 0, "%s: %s", patch, err.msg);
  json_t *m = json_object_get(d, pointer_member);
  char *got = m ? json_dumps(m, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
  cr_assert_str_eq(got ? got : "(absent)", want, "%s", patch);
  free(got);
  json_decref(d);
}

Test(fhirw_patch, operations) {
  expect_member("[{\"op\":\"replace\",\"path\":\"/gender\",\"value\":\"male\"}]", "gender",
                "\"male\"");
  expect_member("[{\"op\":\"add\",\"path\":\"/name/0/given/1\",\"value\":\"Maria\"}]", "name",
                "[{\"family\":\"Rivera\",\"given\":[\"Lucia\",\"Maria\",\"Ana\"]}]");
  expect_member("[{\"op\":\"add\",\"path\":\"/name/0/given/-\",\"value\":\"Eva\"}]", "name",
                "[{\"family\":\"Rivera\",\"given\":[\"Lucia\",\"Ana\",\"Eva\"]}]");
  expect_member("[{\"op\":\"remove\",\"path\":\"/name/0/given/0\"}]", "name",
                "[{\"family\":\"Rivera\",\"given\":[\"Ana\"]}]");
  expect_member("[{\"op\":\"move\",\"from\":\"/name/0/given/0\",\"path\":\"/name/0/given/-\"}]",
                "name", "[{\"family\":\"Rivera\",\"given\":[\"Ana\",\"Lucia\"]}]");
  expect_member("[{\"op\":\"copy\",\"from\":\"/gender\",\"path\":\"/sex\"}]", "sex", "\"female\"");
  expect_member("[{\"op\":\"move\",\"from\":\"/gender\",\"path\":\"/sex\"}]", "gender", "(absent)");
  /* ~1 is '/', ~0 is '~' (RFC 6901), in that order: ~01 is "~1" */
  expect_member("[{\"op\":\"replace\",\"path\":\"/a~1b\",\"value\":3}]", "a/b", "\"\\u00013\"");
  expect_member("[{\"op\":\"remove\",\"path\":\"/m~0n\"}]", "m~n", "(absent)");
  expect_member("[{\"op\":\"add\",\"path\":\"/~01\",\"value\":true}]", "~1", "true");
  /* add replaces an existing member; test passes on equal values, numbers by value */
  expect_member("[{\"op\":\"add\",\"path\":\"/gender\",\"value\":\"other\"}]", "gender",
                "\"other\"");
  expect_member("[{\"op\":\"test\",\"path\":\"/valueQuantity/value\",\"value\":7.1},"
                "{\"op\":\"test\",\"path\":\"/name/0\",\"value\":{\"given\":[\"Lucia\",\"Ana\"],"
                "\"family\":\"Rivera\"}}]",
                "gender", "\"female\"");
  /* numbers keep their text: 7.10 stays 7.10, a patched one is as written */
  expect_member("[{\"op\":\"replace\",\"path\":\"/valueQuantity/value\",\"value\":8.50}]",
                "valueQuantity", "{\"value\":\"\\u00018.50\"}");
  /* "" is the whole document; an empty patch changes nothing */
  char *s = patched("[{\"op\":\"replace\",\"path\":\"\",\"value\":{\"resourceType\":\"X\"}}]");
  cr_assert_str_eq(s, "{\"resourceType\":\"X\"}");
  free(s);
  json_t *d = doc();
  char *a = patched("[]"), *b = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
  cr_assert_str_eq(a, b);
  free(b);
  free(a);
  json_decref(d);
}

typedef struct bad {
  const char *patch;
  int status;
  const char *code;
  const char *expr;
  const char *says;
} bad;

Test(fhirw_patch, refusals_name_the_operation) {
  static const bad cases[] = {
      {"[not json", 400, "structure", "", "not JSON"},
      {"", 400, "structure", "", "not JSON"},
      {"{\"op\":\"remove\",\"path\":\"/gender\"}", 400, "structure", "patch", "array"},
      {"\"x\"", 400, "structure", "patch", "array"},
      {"[1]", 400, "structure", "patch[0]", "JSON object"},
      {"[{\"path\":\"/gender\"}]", 400, "required", "patch[0].op", "required"},
      {"[{\"op\":7,\"path\":\"/gender\"}]", 400, "structure", "patch[0].op", "a string"},
      {"[{\"op\":\"frob\",\"path\":\"/gender\"}]", 400, "invalid", "patch[0].op", "frob"},
      {"[{\"op\":\"Remove\",\"path\":\"/gender\"}]", 400, "invalid", "patch[0].op", "Remove"},
      {"[{\"op\":\"remove\"}]", 400, "required", "patch[0].path", "required"},
      {"[{\"op\":\"remove\",\"path\":[\"/gender\"]}]", 400, "structure", "patch[0].path", ""},
      {"[{\"op\":\"remove\",\"path\":1}]", 400, "structure", "patch[0].path", "a string"},
      {"[{\"op\":\"copy\",\"path\":\"/x\",\"from\":null}]", 400, "structure", "patch[0].from", ""},
      {"[{\"op\":\"remove\",\"path\":\"gender\"}]", 400, "invalid", "patch[0].path", "Pointer"},
      {"[{\"op\":\"remove\",\"path\":\"/a~2b\"}]", 400, "invalid", "patch[0].path", "Pointer"},
      {"[{\"op\":\"remove\",\"path\":\"/a~\"}]", 400, "invalid", "patch[0].path", "Pointer"},
      {"[{\"op\":\"add\",\"path\":\"/x\"}]", 400, "required", "patch[0].value", "add"},
      {"[{\"op\":\"replace\",\"path\":\"/gender\"}]", 400, "required", "patch[0].value", ""},
      {"[{\"op\":\"test\",\"path\":\"/gender\"}]", 400, "required", "patch[0].value", ""},
      {"[{\"op\":\"move\",\"path\":\"/x\"}]", 400, "required", "patch[0].from", ""},
      {"[{\"op\":\"copy\",\"path\":\"/x\",\"from\":\"gender\"}]", 400, "invalid", "patch[0].from",
       "Pointer"},
      /* well-formed, does not apply */
      {"[{\"op\":\"remove\",\"path\":\"/nope\"}]", 422, "processing", "patch[0].path", "nope"},
      {"[{\"op\":\"remove\",\"path\":\"/name/1\"}]", 422, "processing", "patch[0].path", ""},
      {"[{\"op\":\"remove\",\"path\":\"/name/-\"}]", 422, "processing", "patch[0].path", ""},
      {"[{\"op\":\"remove\",\"path\":\"/name/00\"}]", 422, "processing", "patch[0].path", ""},
      {"[{\"op\":\"add\",\"path\":\"/name/2\",\"value\":1}]", 422, "processing", "patch[0].path",
       "out of range"},
      {"[{\"op\":\"add\",\"path\":\"/name/01\",\"value\":1}]", 422, "processing", "patch[0].path",
       ""},
      {"[{\"op\":\"add\",\"path\":\"/name/-1\",\"value\":1}]", 422, "processing", "patch[0].path",
       ""},
      {"[{\"op\":\"add\",\"path\":\"/name/99999999999\",\"value\":1}]", 422, "processing",
       "patch[0].path", ""},
      {"[{\"op\":\"add\",\"path\":\"/gender/x\",\"value\":1}]", 422, "processing", "patch[0].path",
       "no object or array"},
      {"[{\"op\":\"add\",\"path\":\"/no/such\",\"value\":1}]", 422, "processing", "patch[0].path",
       ""},
      {"[{\"op\":\"replace\",\"path\":\"/nope\",\"value\":1}]", 422, "processing", "patch[0].path",
       "replace"},
      {"[{\"op\":\"remove\",\"path\":\"\"}]", 422, "processing", "patch[0].path", "whole"},
      {"[{\"op\":\"move\",\"from\":\"/name\",\"path\":\"/name/0/x\"}]", 422, "processing",
       "patch[0].from", "into itself"},
      {"[{\"op\":\"copy\",\"from\":\"/nope\",\"path\":\"/x\"}]", 422, "processing", "patch[0].from",
       ""},
      {"[{\"op\":\"test\",\"path\":\"/gender\",\"value\":\"male\"}]", 422, "conflict",
       "patch[0].value", "test failed"},
      {"[{\"op\":\"test\",\"path\":\"/valueQuantity/value\",\"value\":\"7.10\"}]", 422, "conflict",
       "patch[0].value", ""},
      {"[{\"op\":\"test\",\"path\":\"/name/0/given\",\"value\":[\"Lucia\"]}]", 422, "conflict",
       "patch[0].value", ""},
      {"[{\"op\":\"test\",\"path\":\"/nope\",\"value\":1}]", 422, "processing", "patch[0].path",
       ""},
      /* the second operation fails: the first's change is not kept */
      {"[{\"op\":\"remove\",\"path\":\"/gender\"},{\"op\":\"test\",\"path\":\"/gender\","
       "\"value\":\"female\"}]",
       422, "processing", "patch[1].path", ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const bad *c = &cases[i];
    json_t *d = doc(), *orig = d, *copy = json_deep_copy(d);
    cl_fhirw_error fe;
    cl_err err;
    int rc = cl_fhirw_patch(&d, c->patch, strlen(c->patch), &fe, &err);
    cr_assert_eq(rc, CL_EMALFORMED, "%s: %d", c->patch, rc);
    cr_assert_eq(fe.status, c->status, "%s: %d %s", c->patch, fe.status, fe.text);
    cr_assert_str_eq(fe.code, c->code, "%s: %s", c->patch, fe.text);
    cr_assert_str_eq(fe.expression, c->expr, "%s: %s", c->patch, fe.text);
    cr_assert(strstr(fe.text, c->says) != NULL, "%s: %s", c->patch, fe.text);
    cr_assert(d == orig && json_equal(d, copy), "%s: the document changed", c->patch);
    json_decref(copy);
    json_decref(d);
  }
}

Test(fhirw_patch, limits) {
  /* more operations than allowed; a pointer deeper than the walk takes */
  size_t n = (CL_FHIRW_PATCH_MAX_OPS + 1) * 40 + 2;
  char *p = malloc(n), *w = p;
  *w++ = '[';
  for (int i = 0; i <= CL_FHIRW_PATCH_MAX_OPS; i++)
    w += sprintf(w, "%s{\"op\":\"test\",\"path\":\"/id\",\"value\":\"p1\"}", i ? "," : "");
  *w++ = ']';
  json_t *d = doc();
  cl_fhirw_error fe;
  cl_err err;
  cr_assert_eq(cl_fhirw_patch(&d, p, (size_t)(w - p), &fe, &err), CL_EMALFORMED);
  cr_assert_str_eq(fe.code, "too-costly");
  free(p);
  char deep[600] = "[{\"op\":\"remove\",\"path\":\"";
  for (int i = 0; i < 70; i++)
    strcat(deep, "/a");
  strcat(deep, "\"}]");
  cr_assert_eq(cl_fhirw_patch(&d, deep, strlen(deep), &fe, &err), CL_EMALFORMED);
  cr_assert_str_eq(fe.expression, "patch[0].path");
  json_decref(d);
}

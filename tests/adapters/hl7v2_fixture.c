/* See hl7v2_fixture.h. */
#include "hl7v2_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/testutil.h"

uint8_t *hl7t_read(const char *name, size_t *n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/tests/adapters/hl7v2/%s", CL_SOURCE_DIR, name);
  uint8_t *p = cl_test_read_file(path, n);
  cr_assert_not_null(p, "cannot read %s", path);
  return p;
}

static cl_hl7_msg *parse_ok(const void *p, size_t n, const char *what) {
  cl_hl7_msg *m = NULL;
  cl_hl7_error e;
  cl_err err;
  int rc = cl_hl7_parse(p, n, NULL, &m, &e, &err);
  cr_assert_eq(rc, 0, "%s: %s", what, err.msg);
  return m;
}

cl_hl7_msg *hl7t_load(const char *name) {
  size_t n;
  uint8_t *p = hl7t_read(name, &n);
  cl_hl7_msg *m = parse_ok(p, n, name);
  free(p);
  return m;
}

cl_hl7_msg *hl7t_parse(const char *s) { return parse_ok(s, strlen(s), s); }

void hl7t_expect(const cl_hl7_msg *m, const char *path, const char *want) {
  cl_hl7_value v = cl_hl7_path(m, path);
  cr_expect_eq(v.state, CL_HL7_VALUED, "%s: state %d, want valued '%s'", path, v.state, want);
  cr_expect_str_eq(v.s, want, "%s", path);
  cr_expect_eq(v.n, strlen(want), "%s: length", path);
}

void hl7t_expect_all(const cl_hl7_msg *m, const hl7t_case *c, size_t n) {
  for (size_t i = 0; i < n; i++)
    hl7t_expect(m, c[i].path, c[i].want);
}

void hl7t_expect_state(const cl_hl7_msg *m, const char *path, int state) {
  cr_expect_eq(cl_hl7_path(m, path).state, state, "%s", path);
}

void hl7t_refused(const void *p, size_t n, const cl_hl7_limits *lim, int rc, cl_hl7_error *e) {
  cl_hl7_msg *m = NULL;
  cl_err err;
  cl_err_clear(&err);
  int got = cl_hl7_parse(p, n, lim, &m, e, &err);
  cr_assert_eq(got, rc, "parse gave %d (%s), want %d", got, err.msg, rc);
  cr_assert_null(m);
  cr_assert_eq(err.code, rc);
  cr_assert(err.msg[0] != '\0');
  cr_assert(e->reason[0] != '\0');
}

void hl7t_expect_loc(const cl_hl7_error *e, int code, const char *seg, uint32_t seg_index,
                     uint32_t field, size_t offset) {
  cr_expect_eq(e->code, code, "code %d, want %d (%s)", e->code, code, e->reason);
  cr_expect_str_eq(e->segment, seg, "segment (%s)", e->reason);
  cr_expect_eq(e->seg_index, seg_index, "segment index %u, want %u (%s)", e->seg_index, seg_index,
               e->reason);
  cr_expect_eq(e->field, field, "field %u, want %u (%s)", e->field, field, e->reason);
  cr_expect_eq(e->offset, offset, "offset %zu, want %zu (%s)", e->offset, offset, e->reason);
}

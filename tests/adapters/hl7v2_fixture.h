/* Helpers shared by the adapters/hl7v2 tests: the corpus in
 * tests/adapters/hl7v2/ and assertions on values at HL7 locations. */
#ifndef CL_TESTS_ADAPTERS_HL7V2_FIXTURE_H
#define CL_TESTS_ADAPTERS_HL7V2_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "adapters/hl7v2/hl7.h"

/* Reads tests/adapters/hl7v2/<name>; returns-owned (free()), fails the test
 * if it cannot. */
uint8_t *hl7t_read(const char *name, size_t *n);

/* Parses a corpus file / a string; fails the test unless it parses.
 * Returns-owned (cl_hl7_free). */
cl_hl7_msg *hl7t_load(const char *name);
cl_hl7_msg *hl7t_parse(const char *s);

/* Asserts the decoded value at `path` (cl_hl7_path) is VALUED and equals
 * `want`. */
void hl7t_expect(const cl_hl7_msg *m, const char *path, const char *want);
/* A table of expect() checks. */
typedef struct hl7t_case {
  const char *path, *want;
} hl7t_case;
void hl7t_expect_all(const cl_hl7_msg *m, const hl7t_case *c, size_t n);
/* Asserts the state at `path`. */
void hl7t_expect_state(const cl_hl7_msg *m, const char *path, int state);

/* Parses p[0..n) expecting refusal with `rc`; fills *e. */
void hl7t_refused(const void *p, size_t n, const cl_hl7_limits *lim, int rc, cl_hl7_error *e);

/* Asserts the location and code of e. */
void hl7t_expect_loc(const cl_hl7_error *e, int code, const char *seg, uint32_t seg_index,
                     uint32_t field, size_t offset);

#endif

/* The checker tests' shared set-up; see cds_fixture.h. */
#include "tests/query/cds_fixture.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

cds_fx cfx;

void cfx_setup_seed(void) {
  cl_err err = {0};
  cr_assert_eq(cl_kb_seed(&cfx.kb, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_cds_patient_new("P1", &cfx.st, &err), 0);
  cfx.F = calloc(1, sizeof *cfx.F);
  cr_assert_not_null(cfx.F);
  cfx.next_id = 1;
}

void cfx_teardown(void) {
  cl_cds_patient_free(cfx.st);
  cl_kb_free(cfx.kb);
  free(cfx.F);
  memset(&cfx, 0, sizeof cfx);
}

void cfx_use_kb(const char *text) {
  cl_err err = {0};
  cl_kb_free(cfx.kb);
  cfx.kb = NULL;
  cr_assert_eq(cl_kb_parse(text, strlen(text), "t.kb", &cfx.kb, &err), 0, "%s", err.msg);
}

void cfx_fresh(void) {
  cl_err err = {0};
  cl_cds_patient_free(cfx.st);
  cr_assert_eq(cl_cds_patient_new("P1", &cfx.st, &err), 0);
}

/* What the checker tests share (tests/query/test_cds_check.c and
 * test_cds_rpm.c): one knowledge base, the state of patient "P1" and a
 * findings buffer, set up per test. */
#ifndef CL_TESTS_QUERY_CDS_FIXTURE_H
#define CL_TESTS_QUERY_CDS_FIXTURE_H

#include "query/cds/check.h"

typedef struct cds_fx {
  cl_kb *kb;
  cl_cds_patient *st;
  cl_cds_findings *F;
  int next_id; /* the next event id a test hands out */
} cds_fx;

extern cds_fx cfx;

/* The seed KB, a new P1, F allocated, next_id 1 (a Criterion .init). */
void cfx_setup_seed(void);
/* Frees what cfx holds (a Criterion .fini). */
void cfx_teardown(void);
/* Replaces the KB by `text` parsed (it must parse). */
void cfx_use_kb(const char *text);
/* A new, empty P1. */
void cfx_fresh(void);

#endif

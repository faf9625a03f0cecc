/* The fixture of the store's log tests (test_log.c, test_log_keys.c): a
 * fresh log per test, genesis by `admin`, in a temporary directory (the
 * suite's .init and .fini), and the checks they share. Each helper fails
 * the running Criterion test on an error. */
#ifndef CL_TESTS_STORE_LOG_FIXTURE_H
#define CL_TESTS_STORE_LOG_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "store/log.h"
#include "tests/support/testutil.h"

/* The running test's log, its directory and its genesis admin's key. */
extern char *dir;
extern cl_log *lg;
extern cl_signer admin;

/* The suite's .init and .fini: make them, and remove them. */
void log_setup(void);
void log_teardown(void);

/* Up to 256 events of a read (cl_log_read_all and friends), copied. */
typedef struct collect {
  size_t n;
  uint64_t seq[256];
  uint64_t ver[256];
  uint8_t *ev[256];
  size_t len[256];
  int erased[256];
} collect;

/* The read callback filling a collect (ctx); stops after 256. */
int collect_fn(void *ctx, const cl_event_view *v, cl_err *err);
/* Frees the copies in c (not c). */
void collect_free(collect *c);

/* The log's head: its size and root. */
void head(uint64_t *size, uint8_t root[32]);

/* An auditor's replay of the directory (cl_verify_dir) passes. */
void assert_verifies(void);

/* A call refused with `want` (got, err) that says what was wrong and left
 * the log as it was (size_before, root `before`). */
void expect_unchanged_after(int want, int got, const uint8_t before[32], uint64_t size_before,
                            const cl_err *err);

#endif

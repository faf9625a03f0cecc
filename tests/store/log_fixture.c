/* See log_fixture.h. */
#include "tests/store/log_fixture.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "store/verify.h"

char *dir;
cl_log *lg;
cl_signer admin;

void log_setup(void) { lg = cl_test_log_new("log", &dir, &admin, 10000); }

void log_teardown(void) {
  cl_log_close(lg);
  cl_signer_free(&admin);
  cl_test_rmtree(dir);
  free(dir);
}

int collect_fn(void *ctx, const cl_event_view *v, cl_err *err) {
  (void)err;
  collect *c = ctx;
  if (c->n == 256)
    return 1;
  c->seq[c->n] = v->seq;
  c->ver[c->n] = v->stream_version;
  c->erased[c->n] = v->erased;
  c->len[c->n] = v->event_len;
  c->ev[c->n] = v->event ? malloc(v->event_len) : NULL;
  if (v->event)
    memcpy(c->ev[c->n], v->event, v->event_len);
  c->n++;
  return 0;
}

void collect_free(collect *c) {
  for (size_t i = 0; i < c->n; i++)
    free(c->ev[i]);
}

void head(uint64_t *size, uint8_t root[32]) { cl_log_head(lg, size, root); }

void assert_verifies(void) {
  cl_verify_options o = {.dir = dir};
  cl_verify_report rep;
  cl_err err;
  /* verification opens the directory read-only next to the writer; the
   * writer's background purge (after an erasure) must not move data between
   * its WAL and table files while the read-only view opens */
  cr_assert_eq(cl_log_purge_wait(lg, 0, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_verify_dir(&o, &rep, &err), 0, "%s", err.msg);
  cr_assert(rep.ok, "verify failed at %llu: %s", (unsigned long long)rep.fail_seq, rep.fail_what);
}

void expect_unchanged_after(int want, int got, const uint8_t before[32], uint64_t size_before,
                            const cl_err *err) {
  cr_assert_eq(got, want, "want %s got %s: %s", cl_errname(want), cl_errname(got), err->msg);
  cr_assert(err->msg[0], "an error says what was wrong");
  uint64_t size;
  uint8_t root[32];
  head(&size, root);
  cr_assert_eq(size, size_before);
  cr_assert_arr_eq(root, before, 32);
}

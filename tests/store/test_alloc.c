/* Fault injection on the write path: the Nth allocation the store makes
 * during an append fails, for every N until the append succeeds. Every
 * failure point must return an error (CL_ENOMEM, or CL_EFAILED when it hit
 * the commit itself), leave the published head unchanged, and leave a
 * directory that reopens and verifies. The batch exercises every part of
 * the write path: an existing stream, a new stream (a minted key), a
 * principal registration (the keyring) and an erasure (crypto-shredding). */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/alloc.h"
#include "store/log.h"
#include "store/verify.h"
#include "tests/support/testutil.h"

static long countdown; /* allocations left before the failing one */

static int fail_nth(void *ctx) {
  (void)ctx;
  return --countdown == 0;
}

/* A signed AppendBatch of n events (signed before any allocation fails:
 * signing is the client's part). Free with batch_free. */
typedef struct sbatch {
  Clinlog__V1__AppendBatch b;
  ProtobufCBinaryData ev[4];
  Clinlog__V1__Signature sig[4], *sigp[4], bsig;
  uint8_t raw[4][64];
} sbatch;

static void batch_make(sbatch *s, uint8_t **evs, const size_t *lens, size_t n, int batch_sig,
                       const cl_signer *key) {
  memset(s, 0, sizeof *s);
  clinlog__v1__append_batch__init(&s->b);
  uint8_t h[4][32];
  for (size_t i = 0; i < n; i++) {
    s->ev[i] = (ProtobufCBinaryData){lens[i], evs[i]};
    cl_event_hash(evs[i], lens[i], h[i]);
  }
  s->b.n_events = n;
  s->b.events = s->ev;
  if (batch_sig) {
    cl_sign_batch(key, (const uint8_t(*)[32])h, n, s->raw[0]);
    clinlog__v1__signature__init(&s->bsig);
    s->bsig.key_id = (ProtobufCBinaryData){32, (uint8_t *)key->pk};
    s->bsig.signature = (ProtobufCBinaryData){64, s->raw[0]};
    s->b.batch_signature = &s->bsig;
    return;
  }
  for (size_t i = 0; i < n; i++) {
    clinlog__v1__signature__init(&s->sig[i]);
    cl_sign_event(key, h[i], s->raw[i]);
    s->sig[i].key_id = (ProtobufCBinaryData){32, (uint8_t *)key->pk};
    s->sig[i].signature = (ProtobufCBinaryData){64, s->raw[i]};
    s->sigp[i] = &s->sig[i];
  }
  s->b.n_signatures = n;
  s->b.signatures = s->sigp;
}

static void assert_head(cl_log *log, uint64_t size, const uint8_t root[32], long n) {
  uint64_t s;
  uint8_t r[32];
  cl_log_head(log, &s, r);
  cr_assert_eq(s, size, "allocation %ld: the head moved", n);
  cr_assert_arr_eq(r, root, 32, "allocation %ld: the root changed", n);
}

Test(alloc, every_failure_point_of_an_append_is_clean, .timeout = 600) {
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("alloc", &dir, &admin, 5);
  cl_err err;
  uint64_t seq;
  cr_assert_eq(cl_test_append1(log, &admin, "patient-a", "admin", NULL, &seq, &err), 0);
  long n;
  for (n = 1;; n++) {
    char fresh[64], gone[64], principal[64];
    snprintf(fresh, sizeof fresh, "patient-new-%ld", n);
    snprintf(gone, sizeof gone, "patient-gone-%ld", n);
    snprintf(principal, sizeof principal, "nurse-%ld", n);
    cr_assert_eq(cl_test_append1(log, &admin, gone, "admin", NULL, &seq, &err), 0, "%s", err.msg);
    cl_signer nurse;
    cr_assert_eq(cl_signer_generate(&nurse, &err), 0);
    uint8_t *evs[4];
    size_t lens[4];
    evs[0] = cl_test_event("patient-a", "admin", NULL, NULL, &lens[0]);
    evs[1] = cl_test_event(fresh, "admin", NULL, NULL, &lens[1]);
    evs[2] = cl_test_principal_event(principal, "nurse", &nurse, &lens[2]);
    evs[3] = cl_test_erasure_event(gone, &lens[3]);
    uint64_t size;
    uint8_t root[32];
    cl_log_head(log, &size, root);

    sbatch sb;
    batch_make(&sb, evs, lens, 4, (int)(n & 1), &admin);
    countdown = n;
    cl_alloc_set_fail_hook(fail_nth, NULL);
    cl_append_result r;
    int rc = cl_log_append(log, &sb.b, &r, &err);
    cl_alloc_set_fail_hook(NULL, NULL);
    for (int i = 0; i < 4; i++)
      free(evs[i]);
    cl_signer_free(&nurse);
    if (rc == 0) { /* n is past the last allocation: the append went through */
      cr_assert_eq(r.n, 4);
      cr_assert_eq(r.seq[0], size + 1);
      cl_append_result_free(&r);
      break;
    }
    cr_assert(rc == CL_ENOMEM || rc == CL_EFAILED, "allocation %ld: %s (%s)", n, cl_errname(rc),
              err.msg);
    assert_head(log, size, root, n);
    cl_log_close(log);
    log = cl_test_log_open(dir, 5);
    cr_assert_not_null(log, "allocation %ld: the log does not reopen", n);
    assert_head(log, size, root, n);
    cl_verify_options o = {.dir = dir};
    cl_verify_report rep;
    cr_assert_eq(cl_verify_dir(&o, &rep, &err), 0, "%s", err.msg);
    cr_assert(rep.ok, "allocation %ld: verify failed at %llu: %s", n,
              (unsigned long long)rep.fail_seq, rep.fail_what);
    cr_assert_eq(rep.events, size);
  }
  cr_assert_gt(n, 40, "only %ld allocations on the write path?", n);
  cr_log_info("%ld allocation points failed cleanly", n - 1);
  /* the last append really happened and the log still works */
  cr_assert_eq(cl_test_append1(log, &admin, "patient-a", "admin", NULL, &seq, &err), 0, "%s",
               err.msg);
  cr_assert_eq(cl_log_purge_wait(log, 0, &err), 0, "%s", err.msg);
  cl_log_close(log);
  cl_verify_options o = {.dir = dir};
  cl_verify_report rep;
  cr_assert_eq(cl_verify_dir(&o, &rep, &err), 0, "%s", err.msg);
  cr_assert(rep.ok, "%s", rep.fail_what);
  cl_signer_free(&admin);
  cl_test_rmtree(dir);
  free(dir);
}

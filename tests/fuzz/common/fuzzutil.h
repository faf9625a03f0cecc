/* What the fuzz targets share (testutil is not linked into them: it pulls
 * in Criterion). */
#ifndef CL_TESTS_FUZZ_FUZZUTIL_H
#define CL_TESTS_FUZZ_FUZZUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "clinlog/v1/record.pb-c.h"
#include "store/err.h"
#include "store/keys.h"

#define FUZZ_MAX_BATCH 8

/* A wrong answer: prints "<who>: finding: ..." and aborts, so the fuzzer
 * keeps the input. */
void fuzz_finding(const char *who, const char *fmt, ...) CL_PRINTF(2, 3);

/* Removes a directory tree (best effort). */
void fuzz_rmtree(const char *dir);

/* An AppendBatch of n (<= FUZZ_MAX_BATCH) serialized events signed by s:
 * one batch signature or one per event. `b` points into the struct, which
 * borrows evs: both must outlive its use. */
typedef struct fuzz_batch {
  Clinlog__V1__AppendBatch b;
  ProtobufCBinaryData evb[FUZZ_MAX_BATCH];
  Clinlog__V1__Signature sig[FUZZ_MAX_BATCH], *sigp[FUZZ_MAX_BATCH], bsig;
  uint8_t h[FUZZ_MAX_BATCH][32], raw[FUZZ_MAX_BATCH][64];
} fuzz_batch;
void fuzz_sign_batch(const cl_signer *s, uint8_t *const *evs, const size_t *lens, size_t n,
                     int batch_sig, fuzz_batch *fb);

#endif

/* libFuzzer target for RFC 9162 proof verification (store/merkle.c).
 *
 * The first input byte picks a mode:
 *   0: cl_merkle_verify_inclusion on raw carved input (index, size, leaf,
 *      root, then any number of 32-byte proof hashes);
 *   1: cl_merkle_verify_consistency on raw carved input;
 *   2: differential: real proofs from a 512-leaf in-memory tree must verify,
 *      and the same proofs with one input-chosen change must not.
 * Verification must never crash or read past the proof; mode 2 aborts on a
 * wrong answer, which libFuzzer reports as a finding. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/err.h"
#include "store/merkle.h"

#define TREE 512

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads up to 8 bytes little-endian, consuming them. */
static uint64_t take_u64(const uint8_t **p, size_t *n) {
  uint64_t v = 0;
  for (unsigned i = 0; i < 8 && *n > 0; i++, (*p)++, (*n)--)
    v |= (uint64_t)**p << (8 * i);
  return v;
}

/* Copies 32 bytes (zero-padded), consuming them. */
static void take_hash(const uint8_t **p, size_t *n, uint8_t out[32]) {
  size_t k = *n < 32 ? *n : 32;
  memset(out, 0, 32);
  if (k)
    memcpy(out, *p, k);
  *p += k;
  *n -= k;
}

/* Small sizes reach the interesting branches far more often than random
 * 64-bit ones, so a flag bit folds them into a small range. */
static uint64_t shape(uint64_t v, int small) { return small ? v % 300 : v; }

static void raw_inclusion(const uint8_t *p, size_t n, int small) {
  uint64_t index = shape(take_u64(&p, &n), small);
  uint64_t tree = shape(take_u64(&p, &n), small);
  uint8_t leaf[32], root[32];
  take_hash(&p, &n, leaf);
  take_hash(&p, &n, root);
  /* The remaining bytes, read in place: the proof may be any length. */
  cl_err err;
  int rc = cl_merkle_verify_inclusion(leaf, index, tree, (const uint8_t(*)[32])p, n / 32, root,
                                      &err);
  if (rc != 0 && rc != CL_EVERIFY)
    abort();
}

static void raw_consistency(const uint8_t *p, size_t n, int small) {
  uint64_t o = shape(take_u64(&p, &n), small);
  uint64_t s = shape(take_u64(&p, &n), small);
  uint8_t ro[32], rs[32];
  take_hash(&p, &n, ro);
  take_hash(&p, &n, rs);
  cl_err err;
  int rc = cl_merkle_verify_consistency(o, s, ro, rs, (const uint8_t(*)[32])p, n / 32, &err);
  if (rc != 0 && rc != CL_EVERIFY)
    abort();
}

static cl_merkle_mem *g_mem;

static void build_tree(void) {
  if (g_mem)
    return;
  g_mem = cl_merkle_mem_new();
  if (!g_mem)
    abort();
  cl_merkle_frontier f;
  cl_merkle_frontier_init(&f);
  for (uint32_t i = 0; i < TREE; i++) {
    uint8_t d[4] = {(uint8_t)i, (uint8_t)(i >> 8), 0x5a, 0xa5}, lh[32];
    cl_merkle_leaf_hash(d, sizeof d, lh);
    cl_err err;
    if (cl_merkle_frontier_append(&f, lh, cl_merkle_mem_put, g_mem, &err) != 0)
      abort();
  }
}

static void differential(const uint8_t *p, size_t n) {
  build_tree();
  uint64_t s = 1 + take_u64(&p, &n) % TREE;
  uint64_t a = take_u64(&p, &n) % s; /* leaf index, or old size - 1 */
  uint64_t where = take_u64(&p, &n);
  uint8_t what = n ? p[0] : 1;
  cl_err err;
  uint8_t proof[CL_MERKLE_MAX_PROOF + 1][32], root[32], old_root[32], leaf[32];
  size_t len;
  if (cl_merkle_root(s, cl_merkle_mem_get, g_mem, root, &err) != 0)
    abort();

  if (where & 1) {
    if (cl_merkle_prove_inclusion(a, s, cl_merkle_mem_get, g_mem, proof, &len, &err) != 0)
      abort();
    if (cl_merkle_mem_get(g_mem, 0, a, leaf, &err) != 0)
      abort();
    if (cl_merkle_verify_inclusion(leaf, a, s, (const uint8_t(*)[32])proof, len, root, &err) != 0)
      abort();
    /* One change: flip a bit of a proof hash, the leaf or the root, or
     * claim another index. */
    size_t target = (size_t)(where >> 1) % (len + 3);
    uint8_t bit = (uint8_t)(1u << (what % 8));
    uint64_t idx = a;
    if (target < len)
      proof[target][what % 32] ^= bit;
    else if (target == len)
      leaf[what % 32] ^= bit;
    else if (target == len + 1)
      root[what % 32] ^= bit;
    else
      idx = (a + 1 + what) % s;
    if (idx != a || target <= len + 1)
      if (cl_merkle_verify_inclusion(leaf, idx, s, (const uint8_t(*)[32])proof, len, root,
                                     &err) == 0)
        abort();
  } else {
    uint64_t o = a + 1;
    if (cl_merkle_root(o, cl_merkle_mem_get, g_mem, old_root, &err) != 0)
      abort();
    if (cl_merkle_prove_consistency(o, s, cl_merkle_mem_get, g_mem, proof, &len, &err) != 0)
      abort();
    if (cl_merkle_verify_consistency(o, s, old_root, root, (const uint8_t(*)[32])proof, len,
                                     &err) != 0)
      abort();
    size_t target = (size_t)(where >> 1) % (len + 2);
    uint8_t bit = (uint8_t)(1u << (what % 8));
    if (target < len)
      proof[target][what % 32] ^= bit;
    else if (target == len)
      old_root[what % 32] ^= bit;
    else
      root[what % 32] ^= bit;
    if (cl_merkle_verify_consistency(o, s, old_root, root, (const uint8_t(*)[32])proof, len,
                                     &err) == 0)
      abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  uint8_t mode = data[0];
  int small = (mode & 0x80) != 0;
  data++;
  size--;
  switch (mode % 3) {
  case 0:
    raw_inclusion(data, size, small);
    break;
  case 1:
    raw_consistency(data, size, small);
    break;
  default:
    differential(data, size);
    break;
  }
  return 0;
}

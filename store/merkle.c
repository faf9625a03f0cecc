/* RFC 9162 Merkle tree over caller-stored perfect nodes; see merkle.h.
 *
 * Invariants this file keeps:
 * - Only perfect nodes (level L, index i) covering [i * 2^L, (i + 1) * 2^L)
 *   are ever read or written. Every range RFC 9162's recursion visits starts
 *   at a multiple of the largest power of two not above its length, so its
 *   MTH is a right-to-left fold of the perfect nodes given by the set bits
 *   of its length (range_hash); no leaf is ever read one by one.
 * - A proof for tree size n reads only nodes lying wholly inside [0, n), so
 *   it can be produced from a store that has grown since.
 * - Verification follows RFC 9162 2.1.3.2 and 2.1.4.2 step by step; it
 *   trusts nothing it is handed and never reads past proof[n - 1].
 * - Functions that fail leave caller-visible state (frontiers) untouched. */
#include "store/merkle.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "store/alloc.h"
#include "store/sha256.h"

void cl_merkle_leaf_hash(const uint8_t *data, size_t n, uint8_t out[CL_HASH_SIZE]) {
  static const uint8_t prefix = 0x00;
  cl_sha256_state st;
  cl_sha256_init(&st);
  cl_sha256_update(&st, &prefix, 1);
  if (n)
    cl_sha256_update(&st, data, n);
  cl_sha256_final(&st, out);
}

void cl_merkle_node_hash(const uint8_t l[CL_HASH_SIZE], const uint8_t r[CL_HASH_SIZE],
                         uint8_t out[CL_HASH_SIZE]) {
  static const uint8_t prefix = 0x01;
  cl_sha256_state st;
  cl_sha256_init(&st);
  cl_sha256_update(&st, &prefix, 1);
  cl_sha256_update(&st, l, CL_HASH_SIZE);
  cl_sha256_update(&st, r, CL_HASH_SIZE);
  /* Both inputs are consumed before out is written, so out may alias them. */
  cl_sha256_final(&st, out);
}

static void empty_root(uint8_t out[CL_HASH_SIZE]) { cl_sha256(out, (const unsigned char *)"", 0); }

/* Largest power of two <= x, for x >= 1. */
static uint64_t hibit(uint64_t x) {
  x |= x >> 1;
  x |= x >> 2;
  x |= x >> 4;
  x |= x >> 8;
  x |= x >> 16;
  x |= x >> 32;
  return x - (x >> 1);
}

/* log2 of a power of two. */
static unsigned log2p(uint64_t p) {
  unsigned l = 0;
  while (p > 1) {
    p >>= 1;
    l++;
  }
  return l;
}

/* Normalises a callback failure so *err always carries the code, then says
 * which node was involved. Returns the (negative) code. */
static int node_fail(int rc, const char *what, unsigned level, uint64_t index, cl_err *err) {
  if (rc > 0)
    rc = CL_EIO; /* callback broke its contract; never report success */
  if (err && err->code != rc)
    cl_err_set(err, rc, "%s", cl_strerror(rc));
  if (err)
    cl_err_prefix(err, "merkle: %s node (level %u, index %" PRIu64 ")", what, level, index);
  return rc;
}

static int get_node(cl_merkle_get_fn get, void *ctx, unsigned level, uint64_t index,
                    uint8_t out[CL_HASH_SIZE], cl_err *err) {
  int rc = get(ctx, level, index, out, err);
  return rc == 0 ? 0 : node_fail(rc, "get", level, index, err);
}

static int put_node(cl_merkle_put_fn put, void *ctx, unsigned level, uint64_t index,
                    const uint8_t hash[CL_HASH_SIZE], cl_err *err) {
  int rc = put(ctx, level, index, hash, err);
  return rc == 0 ? 0 : node_fail(rc, "put", level, index, err);
}

/* MTH of leaves [a, a + n) for n >= 1, where a is a multiple of hibit(n)
 * (true of every range the RFC recursion produces). The range is the
 * concatenation, left to right, of the perfect nodes for the set bits of n
 * from high to low; MTH splits at the highest bit each time, so folding the
 * pieces right to left gives exactly MTH. One get per set bit. */
static int range_hash(uint64_t a, uint64_t n, cl_merkle_get_fn get, void *ctx,
                      uint8_t out[CL_HASH_SIZE], cl_err *err) {
  bool have = false;
  for (unsigned l = 0; l < CL_MERKLE_LEVELS; l++) {
    if (!((n >> l) & 1))
      continue;
    uint64_t above = l == 63 ? 0 : (n >> (l + 1)) << (l + 1);
    uint64_t start = a + above;
    uint8_t h[CL_HASH_SIZE];
    int rc = get_node(get, ctx, l, start >> l, h, err);
    if (rc < 0)
      return rc;
    if (!have)
      memcpy(out, h, CL_HASH_SIZE);
    else
      cl_merkle_node_hash(h, out, out);
    have = true;
  }
  return 0;
}

static void reverse(uint8_t proof[][CL_HASH_SIZE], size_t n) {
  for (size_t i = 0, j = n ? n - 1 : 0; i < j; i++, j--) {
    uint8_t t[CL_HASH_SIZE];
    memcpy(t, proof[i], CL_HASH_SIZE);
    memcpy(proof[i], proof[j], CL_HASH_SIZE);
    memcpy(proof[j], t, CL_HASH_SIZE);
  }
}

/* ---- frontier ------------------------------------------------------------ */

void cl_merkle_frontier_init(cl_merkle_frontier *f) { memset(f, 0, sizeof *f); }

int cl_merkle_frontier_append(cl_merkle_frontier *f, const uint8_t leaf[CL_HASH_SIZE],
                              cl_merkle_put_fn put, void *ctx, cl_err *err) {
  uint64_t s = f->size;
  if (s == UINT64_MAX)
    return cl_err_set(err, CL_ETOOBIG, "merkle: tree already holds 2^64-1 leaves");
  /* Carry like a binary increment: each set low bit of s is a perfect node
   * the new leaf completes into its parent. s < UINT64_MAX has a clear bit,
   * so l stays <= 63. *f is only written once every put has succeeded. */
  uint8_t h[CL_HASH_SIZE];
  memcpy(h, leaf, CL_HASH_SIZE);
  unsigned l = 0;
  int rc = put_node(put, ctx, 0, s, h, err);
  if (rc < 0)
    return rc;
  while ((s >> l) & 1) {
    cl_merkle_node_hash(f->node[l], h, h);
    l++;
    rc = put_node(put, ctx, l, s >> l, h, err);
    if (rc < 0)
      return rc;
  }
  memcpy(f->node[l], h, CL_HASH_SIZE);
  /* Keep invalid slots zeroed so equal frontiers compare equal bytewise. */
  memset(f->node, 0, (size_t)l * CL_HASH_SIZE);
  f->size = s + 1;
  return 0;
}

void cl_merkle_frontier_root(const cl_merkle_frontier *f, uint8_t root[CL_HASH_SIZE]) {
  bool have = false;
  for (unsigned l = 0; l < CL_MERKLE_LEVELS; l++) {
    if (!((f->size >> l) & 1))
      continue;
    if (!have)
      memcpy(root, f->node[l], CL_HASH_SIZE);
    else
      cl_merkle_node_hash(f->node[l], root, root);
    have = true;
  }
  if (!have)
    empty_root(root);
}

int cl_merkle_frontier_load(cl_merkle_frontier *f, uint64_t size, cl_merkle_get_fn get,
                            void *ctx, cl_err *err) {
  cl_merkle_frontier t;
  memset(&t, 0, sizeof t);
  t.size = size;
  for (unsigned l = 0; l < CL_MERKLE_LEVELS; l++) {
    if (!((size >> l) & 1))
      continue;
    int rc = get_node(get, ctx, l, (size >> l) - 1, t.node[l], err);
    if (rc < 0)
      return rc;
  }
  *f = t;
  return 0;
}

/* ---- roots and proofs ---------------------------------------------------- */

int cl_merkle_root(uint64_t size, cl_merkle_get_fn get, void *ctx, uint8_t root[CL_HASH_SIZE],
                   cl_err *err) {
  if (size == 0) {
    empty_root(root);
    return 0;
  }
  return range_hash(0, size, get, ctx, root, err);
}

int cl_merkle_prove_inclusion(uint64_t index, uint64_t size, cl_merkle_get_fn get, void *ctx,
                              uint8_t proof[][CL_HASH_SIZE], size_t *n, cl_err *err) {
  if (index >= size)
    return cl_err_set(err, CL_EINVAL,
                      "merkle: inclusion proof for index %" PRIu64 " in tree of size %" PRIu64,
                      index, size);
  /* PATH(m, D[a:a+sz]) walked top-down; the RFC lists the hashes bottom-up,
   * so they are collected in visiting order and reversed at the end. The
   * depth of a leaf is at most 64, so the proof always fits. */
  uint64_t a = 0, m = index, sz = size;
  size_t cnt = 0;
  while (sz > 1) {
    uint64_t k = hibit(sz - 1);
    int rc;
    if (m < k) {
      rc = range_hash(a + k, sz - k, get, ctx, proof[cnt], err);
      sz = k;
    } else {
      rc = get_node(get, ctx, log2p(k), a >> log2p(k), proof[cnt], err);
      a += k;
      m -= k;
      sz -= k;
    }
    if (rc < 0) {
      cl_err_prefix(err, "inclusion proof");
      return rc;
    }
    cnt++;
  }
  reverse(proof, cnt);
  *n = cnt;
  return 0;
}

int cl_merkle_prove_consistency(uint64_t old_size, uint64_t new_size, cl_merkle_get_fn get,
                                void *ctx, uint8_t proof[][CL_HASH_SIZE], size_t *n, cl_err *err) {
  if (old_size == 0 || old_size > new_size)
    return cl_err_set(err, CL_EINVAL,
                      "merkle: consistency proof from size %" PRIu64 " to %" PRIu64
                      " (need 0 < old <= new)",
                      old_size, new_size);
  /* SUBPROOF(m, D[a:a+sz], b) walked top-down, then reversed (see above). */
  uint64_t a = 0, m = old_size, sz = new_size;
  bool b = true;
  size_t cnt = 0;
  while (m != sz) {
    if (cnt == CL_MERKLE_MAX_PROOF)
      goto too_long;
    uint64_t k = hibit(sz - 1);
    int rc;
    if (m <= k) {
      rc = range_hash(a + k, sz - k, get, ctx, proof[cnt], err);
      sz = k;
    } else {
      rc = get_node(get, ctx, log2p(k), a >> log2p(k), proof[cnt], err);
      a += k;
      m -= k;
      sz -= k;
      b = false;
    }
    if (rc < 0) {
      cl_err_prefix(err, "consistency proof");
      return rc;
    }
    cnt++;
  }
  if (!b) {
    if (cnt == CL_MERKLE_MAX_PROOF)
      goto too_long;
    int rc = range_hash(a, sz, get, ctx, proof[cnt], err);
    if (rc < 0) {
      cl_err_prefix(err, "consistency proof");
      return rc;
    }
    cnt++;
  }
  reverse(proof, cnt);
  *n = cnt;
  return 0;

too_long:
  return cl_err_set(err, CL_ETOOBIG,
                    "merkle: consistency proof from %" PRIu64 " to %" PRIu64
                    " needs more than %d hashes",
                    old_size, new_size, CL_MERKLE_MAX_PROOF);
}

/* ---- verification (RFC 9162 2.1.3.2, 2.1.4.2) ---------------------------- */

/* Element i of the consistency path after RFC step 2, which prepends
 * old_root when `pre`; done by index so the caller's proof is not copied. */
static const uint8_t *path_at(bool pre, const uint8_t old_root[CL_HASH_SIZE],
                              const uint8_t proof[][CL_HASH_SIZE], size_t i) {
  if (!pre)
    return proof[i];
  return i == 0 ? old_root : proof[i - 1];
}

int cl_merkle_verify_inclusion(const uint8_t leaf[CL_HASH_SIZE], uint64_t index, uint64_t size,
                               const uint8_t proof[][CL_HASH_SIZE], size_t n,
                               const uint8_t root[CL_HASH_SIZE], cl_err *err) {
  /* 1. */
  if (index >= size)
    return cl_err_set(err, CL_EVERIFY,
                      "merkle: inclusion: index %" PRIu64 " not below tree size %" PRIu64, index,
                      size);
  if (n > CL_MERKLE_MAX_PROOF)
    return cl_err_set(err, CL_EVERIFY, "merkle: inclusion: proof of %zu hashes is too long", n);
  /* 2., 3. */
  uint64_t fn = index, sn = size - 1;
  uint8_t r[CL_HASH_SIZE];
  memcpy(r, leaf, CL_HASH_SIZE);
  /* 4. */
  for (size_t i = 0; i < n; i++) {
    if (sn == 0) /* a. */
      return cl_err_set(err, CL_EVERIFY,
                        "merkle: inclusion: proof has %zu hashes, more than the path needs", n);
    if ((fn & 1) || fn == sn) { /* b. */
      cl_merkle_node_hash(proof[i], r, r);
      while (!(fn & 1) && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      cl_merkle_node_hash(r, proof[i], r);
    }
    fn >>= 1; /* c. */
    sn >>= 1;
  }
  /* 5. */
  if (sn != 0)
    return cl_err_set(err, CL_EVERIFY,
                      "merkle: inclusion: proof of %zu hashes is shorter than the path", n);
  if (memcmp(r, root, CL_HASH_SIZE) != 0)
    return cl_err_set(err, CL_EVERIFY,
                      "merkle: inclusion: computed root differs from the expected root");
  return 0;
}

int cl_merkle_verify_consistency(uint64_t old_size, uint64_t new_size,
                                 const uint8_t old_root[CL_HASH_SIZE],
                                 const uint8_t new_root[CL_HASH_SIZE],
                                 const uint8_t proof[][CL_HASH_SIZE], size_t n, cl_err *err) {
  if (old_size == 0)
    return cl_err_set(err, CL_EVERIFY, "merkle: consistency: no proof exists from the empty tree");
  if (old_size > new_size)
    return cl_err_set(err, CL_EVERIFY,
                      "merkle: consistency: old size %" PRIu64 " exceeds new size %" PRIu64,
                      old_size, new_size);
  if (old_size == new_size) {
    /* PROOF(m, D[m]) = SUBPROOF(m, D[m], true) = {}. */
    if (n != 0)
      return cl_err_set(err, CL_EVERIFY,
                        "merkle: consistency: sizes are equal but the proof is not empty");
    if (memcmp(old_root, new_root, CL_HASH_SIZE) != 0)
      return cl_err_set(err, CL_EVERIFY, "merkle: consistency: equal sizes, different roots");
    return 0;
  }
  /* 1. */
  if (n == 0)
    return cl_err_set(err, CL_EVERIFY, "merkle: consistency: empty proof");
  if (n > CL_MERKLE_MAX_PROOF)
    return cl_err_set(err, CL_EVERIFY, "merkle: consistency: proof of %zu hashes is too long",
                      n);
  /* 2. Prepending old_root is done virtually: see path_at. */
  bool pre = (old_size & (old_size - 1)) == 0;
  size_t total = n + (pre ? 1 : 0);
  /* 3. */
  uint64_t fn = old_size - 1, sn = new_size - 1;
  /* 4. */
  while (fn & 1) {
    fn >>= 1;
    sn >>= 1;
  }
  /* 5. */
  uint8_t fr[CL_HASH_SIZE], sr[CL_HASH_SIZE];
  memcpy(fr, path_at(pre, old_root, proof, 0), CL_HASH_SIZE);
  memcpy(sr, path_at(pre, old_root, proof, 0), CL_HASH_SIZE);
  /* 6. */
  for (size_t i = 1; i < total; i++) {
    const uint8_t *c = path_at(pre, old_root, proof, i);
    if (sn == 0) /* a. */
      return cl_err_set(err, CL_EVERIFY,
                        "merkle: consistency: proof has %zu hashes, more than the path needs", n);
    if ((fn & 1) || fn == sn) { /* b. */
      cl_merkle_node_hash(c, fr, fr);
      cl_merkle_node_hash(c, sr, sr);
      while (!(fn & 1) && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      cl_merkle_node_hash(sr, c, sr);
    }
    fn >>= 1; /* c. */
    sn >>= 1;
  }
  /* 7. */
  if (sn != 0)
    return cl_err_set(err, CL_EVERIFY,
                      "merkle: consistency: proof of %zu hashes is shorter than the path", n);
  if (memcmp(fr, old_root, CL_HASH_SIZE) != 0)
    return cl_err_set(err, CL_EVERIFY, "merkle: consistency: proof does not lead to the old root");
  if (memcmp(sr, new_root, CL_HASH_SIZE) != 0)
    return cl_err_set(err, CL_EVERIFY, "merkle: consistency: proof does not lead to the new root");
  return 0;
}

/* ---- in-memory node store ------------------------------------------------ */

/* Nodes of one level, indexed directly; have[i] says whether hash[i] is set. */
struct mem_level {
  uint8_t (*hash)[CL_HASH_SIZE]; /* cap entries */
  uint8_t *have;                 /* cap flags, 0 or 1 */
  uint64_t cap;                  /* allocated entries */
};

struct cl_merkle_mem {
  struct mem_level lv[CL_MERKLE_LEVELS]; /* one per level */
};

/* An index beyond this cannot be backed by a dense array anyway. */
#define MEM_MAX_INDEX ((uint64_t)1 << 40)

cl_merkle_mem *cl_merkle_mem_new(void) { return cl_calloc(1, sizeof(cl_merkle_mem)); }

void cl_merkle_mem_free(cl_merkle_mem *m) {
  if (!m)
    return;
  for (unsigned l = 0; l < CL_MERKLE_LEVELS; l++) {
    cl_free(m->lv[l].hash);
    cl_free(m->lv[l].have);
  }
  cl_free(m);
}

int cl_merkle_mem_get(void *ctx, unsigned level, uint64_t index, uint8_t out[CL_HASH_SIZE],
                      cl_err *err) {
  cl_merkle_mem *m = ctx;
  if (level >= CL_MERKLE_LEVELS || index >= m->lv[level].cap || !m->lv[level].have[index])
    return cl_err_set(err, CL_ENOTFOUND, "no node (level %u, index %" PRIu64 ")", level, index);
  memcpy(out, m->lv[level].hash[index], CL_HASH_SIZE);
  return 0;
}

static int mem_grow(struct mem_level *lv, uint64_t index, cl_err *err) {
  if (index >= MEM_MAX_INDEX || MEM_MAX_INDEX > SIZE_MAX / CL_HASH_SIZE)
    return cl_err_set(err, CL_ENOMEM, "in-memory node index %" PRIu64 " too large", index);
  uint64_t cap = lv->cap ? lv->cap : 16;
  while (cap <= index)
    cap *= 2;
  /* Each realloc keeps the old contents, so a failure half-way leaves the
   * store's contents as they were; cap is raised only when both succeed. */
  uint8_t(*hash)[CL_HASH_SIZE] = cl_realloc(lv->hash, (size_t)cap * CL_HASH_SIZE);
  if (!hash)
    return cl_err_set(err, CL_ENOMEM, "in-memory node store: out of memory");
  lv->hash = hash;
  uint8_t *have = cl_realloc(lv->have, (size_t)cap);
  if (!have)
    return cl_err_set(err, CL_ENOMEM, "in-memory node store: out of memory");
  memset(have + lv->cap, 0, (size_t)(cap - lv->cap));
  lv->have = have;
  lv->cap = cap;
  return 0;
}

int cl_merkle_mem_put(void *ctx, unsigned level, uint64_t index,
                      const uint8_t hash[CL_HASH_SIZE], cl_err *err) {
  cl_merkle_mem *m = ctx;
  if (level >= CL_MERKLE_LEVELS)
    return cl_err_set(err, CL_EINVAL, "node level %u out of range", level);
  struct mem_level *lv = &m->lv[level];
  if (index >= lv->cap) {
    int rc = mem_grow(lv, index, err);
    if (rc < 0)
      return rc;
  }
  if (lv->have[index]) {
    if (memcmp(lv->hash[index], hash, CL_HASH_SIZE) != 0)
      return cl_err_set(err, CL_ECORRUPT,
                        "node (level %u, index %" PRIu64 ") already holds a different hash",
                        level, index);
    return 0;
  }
  memcpy(lv->hash[index], hash, CL_HASH_SIZE);
  lv->have[index] = 1;
  return 0;
}

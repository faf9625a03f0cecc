/* Tests for store/merkle.c.
 *
 * The library is compared against a deliberately slow reference written
 * straight from the recursive definitions of RFC 9162 section 2.1 (MTH, PATH,
 * PROOF/SUBPROOF over an array of leaves), hashing with libsodium directly
 * rather than through cl_merkle_leaf_hash/cl_merkle_node_hash. Every proof is
 * produced through a "bounded" node source that refuses nodes outside the
 * tree size being proven, so the library is also checked never to read a
 * node a smaller tree would not have. */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "store/err.h"
#include "store/merkle.h"

#define N_ROOTS 140  /* tree sizes 1..N_ROOTS: roots and all inclusion proofs */
#define N_CONSIST 72 /* all consistency proofs with new size <= N_CONSIST */
#define REF_MAX 80   /* room in a reference proof */

/* ---- reference implementation (RFC 9162 2.1, recursive) ------------------ */

typedef struct ref_proof {
  uint8_t h[REF_MAX][32]; /* hashes in RFC order */
  size_t n;               /* how many */
} ref_proof;

static uint8_t leaf_data[N_ROOTS][16]; /* leaf i's data */
static size_t leaf_len[N_ROOTS];       /* its length (varies, 0 included) */
static uint8_t ref_leaf[N_ROOTS][32];  /* reference leaf hashes */

static void ref_sha(const uint8_t *p, size_t n, uint8_t out[32]) { crypto_hash_sha256(out, p, n); }

static void ref_leaf_hash(const uint8_t *d, size_t n, uint8_t out[32]) {
  uint8_t buf[1 + 16];
  buf[0] = 0x00;
  memcpy(buf + 1, d, n);
  ref_sha(buf, 1 + n, out);
}

static void ref_node(const uint8_t l[32], const uint8_t r[32], uint8_t out[32]) {
  uint8_t buf[65];
  buf[0] = 0x01;
  memcpy(buf + 1, l, 32);
  memcpy(buf + 33, r, 32);
  ref_sha(buf, sizeof buf, out);
}

/* Largest power of two strictly less than n (n > 1). */
static size_t ref_k(size_t n) {
  size_t k = 1;
  while (k * 2 < n)
    k *= 2;
  return k;
}

/* MTH(D[lo:hi]) */
static void ref_mth(size_t lo, size_t hi, uint8_t out[32]) {
  size_t n = hi - lo;
  if (n == 0) {
    ref_sha(NULL, 0, out);
    return;
  }
  if (n == 1) {
    memcpy(out, ref_leaf[lo], 32);
    return;
  }
  size_t k = ref_k(n);
  uint8_t l[32], r[32];
  ref_mth(lo, lo + k, l);
  ref_mth(lo + k, hi, r);
  ref_node(l, r, out);
}

static void ref_push(ref_proof *p, size_t lo, size_t hi) {
  cr_assert_lt(p->n, (size_t)REF_MAX);
  ref_mth(lo, hi, p->h[p->n++]);
}

/* PATH(m, D[lo:hi]) appended to p */
static void ref_path(size_t m, size_t lo, size_t hi, ref_proof *p) {
  size_t n = hi - lo;
  if (n == 1)
    return;
  size_t k = ref_k(n);
  if (m < k) {
    ref_path(m, lo, lo + k, p);
    ref_push(p, lo + k, hi);
  } else {
    ref_path(m - k, lo + k, hi, p);
    ref_push(p, lo, lo + k);
  }
}

/* SUBPROOF(m, D[lo:hi], b) appended to p */
static void ref_subproof(size_t m, size_t lo, size_t hi, bool b, ref_proof *p) {
  size_t n = hi - lo;
  if (m == n) {
    if (!b)
      ref_push(p, lo, hi);
    return;
  }
  size_t k = ref_k(n);
  if (m <= k) {
    ref_subproof(m, lo, lo + k, b, p);
    ref_push(p, lo + k, hi);
  } else {
    ref_subproof(m - k, lo + k, hi, false, p);
    ref_push(p, lo, lo + k);
  }
}

/* ---- fixtures ------------------------------------------------------------ */

/* Node source limited to the nodes a tree of `size` leaves has. */
typedef struct bounded {
  cl_merkle_mem *mem;   /* backing store (holds a larger tree) */
  uint64_t size;        /* pretend tree size */
  unsigned long gets;   /* gets answered */
  long fail_after;      /* >= 0: the get after this many fails with CL_EIO */
} bounded;

static int bounded_get(void *ctx, unsigned level, uint64_t index, uint8_t out[32], cl_err *err) {
  bounded *b = ctx;
  if (b->fail_after >= 0 && b->gets == (unsigned long)b->fail_after)
    return cl_err_set(err, CL_EIO, "disk on fire");
  cr_assert_lt(index, b->size >> level, "read node (%u, %llu) beyond tree size %llu", level,
               (unsigned long long)index, (unsigned long long)b->size);
  b->gets++;
  return cl_merkle_mem_get(b->mem, level, index, out, err);
}

static cl_merkle_mem *g_mem;            /* nodes of the N_ROOTS-leaf tree */
static cl_merkle_frontier g_front[N_ROOTS + 1]; /* frontier after each append */
static uint8_t g_root[N_ROOTS + 1][32]; /* reference MTH of each size */

static void setup_tree(void) {
  for (size_t i = 0; i < N_ROOTS; i++) {
    /* Lengths 0..16; every leaf distinct (the last byte is i < 256), which
     * the forgery tests rely on. */
    leaf_len[i] = i == 0 ? 0 : 1 + i % 16;
    for (size_t j = 0; j < leaf_len[i]; j++)
      leaf_data[i][j] = (uint8_t)(i * 31 + j * 7);
    if (leaf_len[i] > 0)
      leaf_data[i][leaf_len[i] - 1] = (uint8_t)i;
    ref_leaf_hash(leaf_data[i], leaf_len[i], ref_leaf[i]);
  }
  for (size_t s = 0; s <= N_ROOTS; s++)
    ref_mth(0, s, g_root[s]);

  g_mem = cl_merkle_mem_new();
  cr_assert_not_null(g_mem);
  cl_merkle_frontier f;
  cl_merkle_frontier_init(&f);
  g_front[0] = f;
  for (size_t i = 0; i < N_ROOTS; i++) {
    uint8_t lh[32];
    cl_merkle_leaf_hash(leaf_data[i], leaf_len[i], lh);
    cr_assert_arr_eq(lh, ref_leaf[i], 32, "leaf hash %zu", i);
    cl_err err = {0};
    int rc = cl_merkle_frontier_append(&f, lh, cl_merkle_mem_put, g_mem, &err);
    cr_assert_eq(rc, 0, "append %zu: %s", i, err.msg);
    cr_assert_eq(f.size, i + 1);
    g_front[i + 1] = f;
  }
}

static void teardown_tree(void) { cl_merkle_mem_free(g_mem); }

static bounded bound(uint64_t size) {
  bounded b = {.mem = g_mem, .size = size, .gets = 0, .fail_after = -1};
  return b;
}

static int popcount(uint64_t x) {
  int c = 0;
  for (; x; x &= x - 1)
    c++;
  return c;
}

static int hexval(char c) {
  return c <= '9' ? c - '0' : c - 'a' + 10;
}

static void unhex(const char *s, uint8_t out[32]) {
  for (size_t i = 0; i < 32; i++)
    out[i] = (uint8_t)(hexval(s[2 * i]) << 4 | hexval(s[2 * i + 1]));
}

/* ---- known answers ------------------------------------------------------- */

Test(merkle, empty_and_single_leaf_known_answers) {
  uint8_t want[32], got[32];
  cl_err err = {0};
  unhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", want);
  cl_merkle_frontier f;
  cl_merkle_frontier_init(&f);
  cl_merkle_frontier_root(&f, got);
  cr_assert_arr_eq(got, want, 32, "empty frontier root");
  cl_merkle_mem *m = cl_merkle_mem_new();
  cr_assert_eq(cl_merkle_root(0, cl_merkle_mem_get, m, got, &err), 0);
  cr_assert_arr_eq(got, want, 32, "empty stored root");

  /* One empty leaf: SHA-256(0x00). */
  unhex("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d", want);
  uint8_t lh[32];
  cl_merkle_leaf_hash(NULL, 0, lh);
  cr_assert_arr_eq(lh, want, 32);
  cr_assert_eq(cl_merkle_frontier_append(&f, lh, cl_merkle_mem_put, m, &err), 0, "%s", err.msg);
  cl_merkle_frontier_root(&f, got);
  cr_assert_arr_eq(got, want, 32, "1-leaf frontier root");
  cr_assert_eq(cl_merkle_root(1, cl_merkle_mem_get, m, got, &err), 0);
  cr_assert_arr_eq(got, want, 32, "1-leaf stored root");
  cl_merkle_mem_free(m);
}

/* The RFC 6962 / certificate-transparency test tree of 8 leaves. */
Test(merkle, ct_reference_vectors) {
  static const struct {
    const char *data;
    size_t len;
  } leaves[8] = {
      {"", 0},
      {"\x00", 1},
      {"\x10", 1},
      {"\x20\x21", 2},
      {"\x30\x31", 2},
      {"\x40\x41\x42\x43", 4},
      {"\x50\x51\x52\x53\x54\x55\x56\x57", 8},
      {"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f", 16},
  };
  static const char *roots[8] = {
      "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
      "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
      "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
      "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
      "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
      "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
      "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
  };
  cl_merkle_mem *m = cl_merkle_mem_new();
  cl_merkle_frontier f;
  cl_merkle_frontier_init(&f);
  cl_err err = {0};
  for (size_t i = 0; i < 8; i++) {
    uint8_t lh[32], want[32], got[32];
    cl_merkle_leaf_hash((const uint8_t *)leaves[i].data, leaves[i].len, lh);
    cr_assert_eq(cl_merkle_frontier_append(&f, lh, cl_merkle_mem_put, m, &err), 0);
    unhex(roots[i], want);
    cl_merkle_frontier_root(&f, got);
    cr_assert_arr_eq(got, want, 32, "frontier root of size %zu", i + 1);
    cr_assert_eq(cl_merkle_root(i + 1, cl_merkle_mem_get, m, got, &err), 0);
    cr_assert_arr_eq(got, want, 32, "stored root of size %zu", i + 1);
  }
  cl_merkle_mem_free(m);
}

/* ---- exhaustive comparison with the reference ---------------------------- */

Test(merkle, roots_match_reference, .init = setup_tree, .fini = teardown_tree) {
  for (uint64_t s = 0; s <= N_ROOTS; s++) {
    uint8_t got[32];
    cl_merkle_frontier_root(&g_front[s], got);
    cr_assert_arr_eq(got, g_root[s], 32, "frontier root, size %llu", (unsigned long long)s);
    bounded b = bound(s);
    cl_err err = {0};
    cr_assert_eq(cl_merkle_root(s, bounded_get, &b, got, &err), 0, "%s", err.msg);
    cr_assert_arr_eq(got, g_root[s], 32, "stored root, size %llu", (unsigned long long)s);
    cr_assert_eq(b.gets, (unsigned long)popcount(s), "root of %llu took %lu gets",
                 (unsigned long long)s, b.gets);
  }
}

Test(merkle, frontier_load_reproduces_frontier, .init = setup_tree, .fini = teardown_tree) {
  for (uint64_t s = 0; s <= N_ROOTS; s++) {
    cl_merkle_frontier f;
    memset(&f, 0xa5, sizeof f);
    bounded b = bound(s);
    cl_err err = {0};
    cr_assert_eq(cl_merkle_frontier_load(&f, s, bounded_get, &b, &err), 0, "%s", err.msg);
    cr_assert(memcmp(&f, &g_front[s], sizeof f) == 0, "loaded frontier differs at size %llu",
              (unsigned long long)s);
    cr_assert_eq(b.gets, (unsigned long)popcount(s));
    /* The loaded frontier keeps growing like the original. */
    if (s < N_ROOTS) {
      cl_merkle_mem *scratch = cl_merkle_mem_new();
      cr_assert_eq(cl_merkle_frontier_append(&f, ref_leaf[s], cl_merkle_mem_put, scratch, &err),
                   0);
      cr_assert(memcmp(&f, &g_front[s + 1], sizeof f) == 0);
      cl_merkle_mem_free(scratch);
    }
  }
}

Test(merkle, inclusion_proofs_match_reference, .init = setup_tree, .fini = teardown_tree) {
  for (uint64_t s = 1; s <= N_ROOTS; s++) {
    for (uint64_t i = 0; i < s; i++) {
      ref_proof want = {.n = 0};
      ref_path(i, 0, s, &want);
      uint8_t proof[CL_MERKLE_MAX_PROOF][32];
      size_t n = 999;
      bounded b = bound(s);
      cl_err err = {0};
      int rc = cl_merkle_prove_inclusion(i, s, bounded_get, &b, proof, &n, &err);
      cr_assert_eq(rc, 0, "prove %llu in %llu: %s", (unsigned long long)i,
                   (unsigned long long)s, err.msg);
      cr_assert_eq(n, want.n, "proof length for %llu in %llu", (unsigned long long)i,
                   (unsigned long long)s);
      for (size_t j = 0; j < n; j++)
        cr_assert_arr_eq(proof[j], want.h[j], 32, "hash %zu of proof %llu in %llu", j,
                         (unsigned long long)i, (unsigned long long)s);
      cr_assert_leq(b.gets, n + (unsigned long)popcount(s), "too many gets");
      rc = cl_merkle_verify_inclusion(ref_leaf[i], i, s, (const uint8_t(*)[32])proof, n, g_root[s],
                                      &err);
      cr_assert_eq(rc, 0, "verify %llu in %llu: %s", (unsigned long long)i,
                   (unsigned long long)s, err.msg);
    }
  }
}

Test(merkle, consistency_proofs_match_reference, .init = setup_tree, .fini = teardown_tree) {
  for (uint64_t s = 1; s <= N_CONSIST; s++) {
    for (uint64_t o = 1; o <= s; o++) {
      ref_proof want = {.n = 0};
      ref_subproof(o, 0, s, true, &want);
      uint8_t proof[CL_MERKLE_MAX_PROOF][32];
      size_t n = 999;
      bounded b = bound(s);
      cl_err err = {0};
      int rc = cl_merkle_prove_consistency(o, s, bounded_get, &b, proof, &n, &err);
      cr_assert_eq(rc, 0, "prove %llu -> %llu: %s", (unsigned long long)o,
                   (unsigned long long)s, err.msg);
      cr_assert_eq(n, want.n, "proof length %llu -> %llu", (unsigned long long)o,
                   (unsigned long long)s);
      for (size_t j = 0; j < n; j++)
        cr_assert_arr_eq(proof[j], want.h[j], 32, "hash %zu of proof %llu -> %llu", j,
                         (unsigned long long)o, (unsigned long long)s);
      cr_assert_leq(b.gets, n + (unsigned long)popcount(s));
      rc = cl_merkle_verify_consistency(o, s, g_root[o], g_root[s], (const uint8_t(*)[32])proof,
                                        n, &err);
      cr_assert_eq(rc, 0, "verify %llu -> %llu: %s", (unsigned long long)o,
                   (unsigned long long)s, err.msg);
    }
  }
}

/* ---- forgeries ----------------------------------------------------------- */

static void expect_bad_incl(const uint8_t leaf[32], uint64_t i, uint64_t s,
                            uint8_t proof[][32], size_t n, const uint8_t root[32],
                            const char *what) {
  cl_err err = {0};
  int rc = cl_merkle_verify_inclusion(leaf, i, s, (const uint8_t(*)[32])proof, n, root, &err);
  cr_assert_eq(rc, CL_EVERIFY, "%s accepted (index %llu, size %llu)", what,
               (unsigned long long)i, (unsigned long long)s);
  cr_assert_eq(err.code, CL_EVERIFY);
  cr_assert_neq(err.msg[0], '\0', "no reason given");
}

Test(merkle, forged_inclusion_rejected, .init = setup_tree, .fini = teardown_tree) {
  for (uint64_t s = 1; s <= 40; s++) {
    for (uint64_t i = 0; i < s; i++) {
      uint8_t proof[CL_MERKLE_MAX_PROOF + 1][32], bad[CL_MERKLE_MAX_PROOF + 1][32];
      size_t n;
      bounded b = bound(s);
      cl_err err = {0};
      cr_assert_eq(cl_merkle_prove_inclusion(i, s, bounded_get, &b, proof, &n, &err), 0);

      for (size_t j = 0; j < n; j++) {
        memcpy(bad, proof, sizeof proof);
        bad[j][(j * 7) % 32] ^= (uint8_t)(1u << (j % 8));
        expect_bad_incl(ref_leaf[i], i, s, bad, n, g_root[s], "flipped proof bit");
      }
      for (uint64_t wi = 0; wi < s + 3; wi++)
        if (wi != i)
          expect_bad_incl(ref_leaf[i], wi, s, proof, n, g_root[s], "wrong index");
      for (uint64_t ws = 1; ws <= s + 3 && ws <= N_ROOTS; ws++)
        if (ws != s)
          expect_bad_incl(ref_leaf[i], i, ws, proof, n, g_root[ws], "wrong size");
      expect_bad_incl(ref_leaf[i], i, 0, proof, n, g_root[s], "size 0");
      expect_bad_incl(ref_leaf[i], i, UINT64_MAX, proof, n, g_root[s], "huge size");
      if (n > 0)
        expect_bad_incl(ref_leaf[i], i, s, proof, n - 1, g_root[s], "truncated proof");
      memcpy(bad, proof, sizeof proof);
      memcpy(bad[n], g_root[s], 32);
      expect_bad_incl(ref_leaf[i], i, s, bad, n + 1, g_root[s], "extended proof");
      cl_err why = {0};
      cr_assert_eq(cl_merkle_verify_inclusion(ref_leaf[i], i, s, (const uint8_t(*)[32])bad,
                                              n + 1, g_root[s], &why),
                   CL_EVERIFY);
      cr_assert(strstr(why.msg, "more than the path needs"), "reason: %s", why.msg);
      if (n > 0) {
        memcpy(bad[n], proof[n - 1], 32);
        expect_bad_incl(ref_leaf[i], i, s, bad, n + 1, g_root[s], "duplicated last hash");
      }
      for (size_t j = 0; j + 1 < n; j++) {
        memcpy(bad, proof, sizeof proof);
        memcpy(bad[j], proof[j + 1], 32);
        memcpy(bad[j + 1], proof[j], 32);
        expect_bad_incl(ref_leaf[i], i, s, bad, n, g_root[s], "swapped hashes");
      }
      uint8_t root[32];
      memcpy(root, g_root[s], 32);
      root[31] ^= 1;
      expect_bad_incl(ref_leaf[i], i, s, proof, n, root, "wrong root");
      expect_bad_incl(ref_leaf[(i + 1) % N_ROOTS], i, s, proof, n, g_root[s], "wrong leaf");
    }
  }
}

static void expect_bad_cons(uint64_t o, uint64_t s, const uint8_t ro[32], const uint8_t rs[32],
                            uint8_t proof[][32], size_t n, const char *what) {
  cl_err err = {0};
  int rc = cl_merkle_verify_consistency(o, s, ro, rs, (const uint8_t(*)[32])proof, n, &err);
  cr_assert_eq(rc, CL_EVERIFY, "%s accepted (%llu -> %llu)", what, (unsigned long long)o,
               (unsigned long long)s);
  cr_assert_neq(err.msg[0], '\0', "no reason given");
}

Test(merkle, forged_consistency_rejected, .init = setup_tree, .fini = teardown_tree) {
  for (uint64_t s = 1; s <= 40; s++) {
    for (uint64_t o = 1; o <= s; o++) {
      uint8_t proof[CL_MERKLE_MAX_PROOF + 1][32], bad[CL_MERKLE_MAX_PROOF + 1][32];
      size_t n;
      bounded b = bound(s);
      cl_err err = {0};
      cr_assert_eq(cl_merkle_prove_consistency(o, s, bounded_get, &b, proof, &n, &err), 0);

      for (size_t j = 0; j < n; j++) {
        memcpy(bad, proof, sizeof proof);
        bad[j][(j * 5) % 32] ^= (uint8_t)(0x80u >> (j % 8));
        expect_bad_cons(o, s, g_root[o], g_root[s], bad, n, "flipped proof bit");
      }
      for (uint64_t wo = 0; wo <= s + 2 && wo <= N_ROOTS; wo++)
        if (wo != o)
          expect_bad_cons(wo, s, g_root[wo], g_root[s], proof, n, "wrong old size");
      for (uint64_t ws = 1; ws <= s + 3 && ws <= N_ROOTS; ws++)
        if (ws != s)
          expect_bad_cons(o, ws, g_root[o], g_root[ws], proof, n, "wrong new size");
      if (n > 0)
        expect_bad_cons(o, s, g_root[o], g_root[s], proof, n - 1, "truncated proof");
      memcpy(bad, proof, sizeof proof);
      memcpy(bad[n], g_root[o], 32);
      expect_bad_cons(o, s, g_root[o], g_root[s], bad, n + 1, "extended proof");
      if (o != s) {
        cl_err why = {0};
        cr_assert_eq(cl_merkle_verify_consistency(o, s, g_root[o], g_root[s],
                                                  (const uint8_t(*)[32])bad, n + 1, &why),
                     CL_EVERIFY);
        cr_assert(strstr(why.msg, "more than the path needs"), "reason: %s", why.msg);
      }
      for (size_t j = 0; j + 1 < n; j++) {
        memcpy(bad, proof, sizeof proof);
        memcpy(bad[j], proof[j + 1], 32);
        memcpy(bad[j + 1], proof[j], 32);
        expect_bad_cons(o, s, g_root[o], g_root[s], bad, n, "swapped hashes");
      }
      uint8_t r[32];
      memcpy(r, g_root[o], 32);
      r[0] ^= 1;
      expect_bad_cons(o, s, r, g_root[s], proof, n, "wrong old root");
      memcpy(r, g_root[s], 32);
      r[0] ^= 1;
      expect_bad_cons(o, s, g_root[o], r, proof, n, "wrong new root");
      if (o != s)
        expect_bad_cons(o, s, g_root[s], g_root[o], proof, n, "roots swapped");
    }
  }
}

Test(merkle, verify_argument_edges, .init = setup_tree, .fini = teardown_tree) {
  cl_err err = {0};
  uint8_t many[CL_MERKLE_MAX_PROOF + 1][32];
  memset(many, 0, sizeof many);
  /* Empty proof: only valid for a 1-leaf tree. */
  cr_assert_eq(cl_merkle_verify_inclusion(ref_leaf[0], 0, 1, NULL, 0, g_root[1], &err), 0);
  cr_assert_eq(cl_merkle_verify_inclusion(ref_leaf[0], 0, 2, NULL, 0, g_root[2], &err),
               CL_EVERIFY);
  cr_assert_eq(cl_merkle_verify_inclusion(ref_leaf[0], 0, 1, (const uint8_t(*)[32])many,
                                          CL_MERKLE_MAX_PROOF + 1, g_root[1], &err),
               CL_EVERIFY);
  cr_assert_eq(cl_merkle_verify_inclusion(ref_leaf[0], UINT64_MAX, UINT64_MAX,
                                          (const uint8_t(*)[32])many, 64, g_root[1], &err),
               CL_EVERIFY);
  /* Equal sizes: empty proof and equal roots. */
  cr_assert_eq(cl_merkle_verify_consistency(5, 5, g_root[5], g_root[5], NULL, 0, &err), 0);
  cr_assert_eq(cl_merkle_verify_consistency(5, 5, g_root[5], g_root[6], NULL, 0, &err),
               CL_EVERIFY);
  cr_assert_eq(cl_merkle_verify_consistency(5, 5, g_root[5], g_root[5],
                                            (const uint8_t(*)[32])many, 1, &err),
               CL_EVERIFY);
  cr_assert_eq(cl_merkle_verify_consistency(0, 5, g_root[0], g_root[5], NULL, 0, &err),
               CL_EVERIFY);
  cr_assert_eq(cl_merkle_verify_consistency(6, 5, g_root[6], g_root[5], NULL, 0, &err),
               CL_EVERIFY);
  cr_assert_eq(cl_merkle_verify_consistency(4, 5, g_root[4], g_root[5], NULL, 0, &err),
               CL_EVERIFY, "empty proof between different sizes");
  cr_assert_eq(cl_merkle_verify_consistency(1, UINT64_MAX, g_root[1], g_root[5],
                                            (const uint8_t(*)[32])many,
                                            CL_MERKLE_MAX_PROOF + 1, &err),
               CL_EVERIFY);

  /* Provers refuse bad arguments. */
  uint8_t proof[CL_MERKLE_MAX_PROOF][32];
  size_t n;
  bounded b = bound(10);
  cr_assert_eq(cl_merkle_prove_inclusion(10, 10, bounded_get, &b, proof, &n, &err), CL_EINVAL);
  cr_assert_eq(err.code, CL_EINVAL);
  cr_assert_eq(cl_merkle_prove_inclusion(0, 0, bounded_get, &b, proof, &n, &err), CL_EINVAL);
  cr_assert_eq(cl_merkle_prove_consistency(0, 10, bounded_get, &b, proof, &n, &err), CL_EINVAL);
  cr_assert_eq(cl_merkle_prove_consistency(11, 10, bounded_get, &b, proof, &n, &err),
               CL_EINVAL);
}

/* ---- node source and sink failures --------------------------------------- */

typedef struct failing_put {
  cl_merkle_mem *mem; /* where successful puts go */
  int calls;          /* puts seen */
  int fail_at;        /* the call (0-based) that fails; -1: never */
} failing_put;

static int fput(void *ctx, unsigned level, uint64_t index, const uint8_t h[32], cl_err *err) {
  failing_put *p = ctx;
  if (p->calls++ == p->fail_at)
    return cl_err_set(err, CL_EIO, "write failed");
  return cl_merkle_mem_put(p->mem, level, index, h, err);
}

Test(merkle, put_failure_leaves_frontier_unchanged, .init = setup_tree, .fini = teardown_tree) {
  /* Appending leaf 7 to a 7-leaf tree puts (0,7), (1,3), (2,1), (3,0). */
  for (int k = 0; k < 4; k++) {
    cl_merkle_frontier f = g_front[7];
    failing_put p = {.mem = cl_merkle_mem_new(), .calls = 0, .fail_at = k};
    cl_err err = {0};
    int rc = cl_merkle_frontier_append(&f, ref_leaf[7], fput, &p, &err);
    cr_assert_eq(rc, CL_EIO);
    cr_assert_eq(err.code, CL_EIO);
    cr_assert(strstr(err.msg, "write failed") != NULL, "msg: %s", err.msg);
    cr_assert(strstr(err.msg, "level") != NULL, "msg: %s", err.msg);
    cr_assert(memcmp(&f, &g_front[7], sizeof f) == 0, "frontier changed by failed put %d", k);
    cr_assert_eq(p.calls, k + 1);
    /* A retry completes and matches the undisturbed run. */
    p.fail_at = -1;
    p.calls = 0;
    cr_assert_eq(cl_merkle_frontier_append(&f, ref_leaf[7], fput, &p, &err), 0, "%s", err.msg);
    cr_assert_eq(p.calls, 4);
    cr_assert(memcmp(&f, &g_front[8], sizeof f) == 0);
    cl_merkle_mem_free(p.mem);
  }
  /* Failure with no cl_err to fill still returns the code. */
  cl_merkle_frontier f = g_front[3];
  failing_put p = {.mem = g_mem, .calls = 0, .fail_at = 1};
  cr_assert_eq(cl_merkle_frontier_append(&f, ref_leaf[3], fput, &p, NULL), CL_EIO);
  cr_assert(memcmp(&f, &g_front[3], sizeof f) == 0);
}

static int silent_fail_get(void *ctx, unsigned level, uint64_t index, uint8_t out[32],
                           cl_err *err) {
  (void)ctx, (void)level, (void)index, (void)out, (void)err;
  return CL_EIO;
}

Test(merkle, get_failures_propagate, .init = setup_tree, .fini = teardown_tree) {
  uint8_t proof[CL_MERKLE_MAX_PROOF][32], root[32];
  size_t n;
  for (long k = 0; k < 8; k++) {
    bounded b = bound(100);
    b.fail_after = k;
    cl_err err = {0};
    int rc = cl_merkle_prove_inclusion(37, 100, bounded_get, &b, proof, &n, &err);
    if (rc == 0) {
      cr_assert_leq(b.gets, (unsigned long)k, "get %ld was never made but proof succeeded", k);
      continue;
    }
    cr_assert_eq(rc, CL_EIO);
    cr_assert(strstr(err.msg, "disk on fire") && strstr(err.msg, "inclusion"), "%s", err.msg);
    b = bound(100);
    b.fail_after = k;
    rc = cl_merkle_prove_consistency(37, 100, bounded_get, &b, proof, &n, &err);
    cr_assert(rc == 0 || rc == CL_EIO);
  }
  cl_err err = {0};
  cr_assert_eq(cl_merkle_root(5, silent_fail_get, NULL, root, &err), CL_EIO);
  cr_assert_eq(err.code, CL_EIO, "code not filled in");
  cr_assert_neq(err.msg[0], '\0');
  cl_merkle_frontier f = g_front[9], before = g_front[9];
  cr_assert_eq(cl_merkle_frontier_load(&f, 5, silent_fail_get, NULL, &err), CL_EIO);
  cr_assert(memcmp(&f, &before, sizeof f) == 0);
  /* Nodes missing from the store surface as CL_ENOTFOUND. */
  cl_merkle_mem *empty = cl_merkle_mem_new();
  cr_assert_eq(cl_merkle_root(3, cl_merkle_mem_get, empty, root, &err), CL_ENOTFOUND);
  cl_merkle_mem_free(empty);
}

/* ---- huge trees: arithmetic at the top of uint64_t ------------------------ */

typedef struct synth {
  uint64_t size;      /* pretend tree size */
  unsigned long gets; /* gets answered */
} synth;

static int synth_get(void *ctx, unsigned level, uint64_t index, uint8_t out[32], cl_err *err) {
  synth *s = ctx;
  (void)err;
  cr_assert_lt(level, 64u);
  cr_assert_lt(index, s->size >> level, "node (%u, %llu) outside size %llu", level,
               (unsigned long long)index, (unsigned long long)s->size);
  s->gets++;
  memset(out, 0, 32);
  memcpy(out, &index, sizeof index);
  out[8] = (uint8_t)level;
  return 0;
}

Test(merkle, huge_sizes) {
  cl_err err = {0};
  uint8_t root[32], proof[CL_MERKLE_MAX_PROOF][32];
  size_t n;
  synth s = {.size = UINT64_MAX, .gets = 0};
  cr_assert_eq(cl_merkle_root(UINT64_MAX, synth_get, &s, root, &err), 0);
  cr_assert_eq(s.gets, 64ul);
  const uint64_t idx[] = {0, 1, UINT64_MAX / 2, (uint64_t)1 << 63, UINT64_MAX - 2,
                          UINT64_MAX - 1};
  for (size_t i = 0; i < sizeof idx / sizeof idx[0]; i++) {
    s.gets = 0;
    cr_assert_eq(cl_merkle_prove_inclusion(idx[i], UINT64_MAX, synth_get, &s, proof, &n, &err),
                 0, "%s", err.msg);
    cr_assert_leq(n, (size_t)CL_MERKLE_MAX_PROOF);
    cr_assert_leq(s.gets, 128ul);
  }
  s.gets = 0;
  cr_assert_eq(cl_merkle_prove_consistency(1, UINT64_MAX, synth_get, &s, proof, &n, &err), 0);
  /* Exactly 64 hashes: right of the first split, then down to a leaf. */
  s.size = ((uint64_t)1 << 63) - 1;
  cr_assert_eq(cl_merkle_prove_consistency(((uint64_t)1 << 61) + 1, s.size, synth_get, &s,
                                           proof, &n, &err),
               0, "%s", err.msg);
  cr_assert_eq(n, (size_t)64);
  /* Shapes that would need 65 hashes (only above 2^63 leaves). */
  s.size = UINT64_MAX;
  cr_assert_eq(cl_merkle_prove_consistency(((uint64_t)1 << 63) + 1, UINT64_MAX, synth_get, &s,
                                           proof, &n, &err),
               CL_ETOOBIG);
  cr_assert_eq(err.code, CL_ETOOBIG);
  s.size = UINT64_MAX - 1;
  cr_assert_eq(cl_merkle_prove_consistency(((uint64_t)1 << 62) + 1, UINT64_MAX - 1, synth_get,
                                           &s, proof, &n, &err),
               CL_ETOOBIG);

  cl_merkle_frontier f;
  cl_merkle_frontier_init(&f);
  f.size = UINT64_MAX;
  cl_merkle_frontier before = f;
  cr_assert_eq(cl_merkle_frontier_append(&f, root, cl_merkle_mem_put, NULL, &err), CL_ETOOBIG);
  cr_assert(memcmp(&f, &before, sizeof f) == 0);
}

/* ---- in-memory store ----------------------------------------------------- */

Test(merkle, mem_store) {
  cl_merkle_mem *m = cl_merkle_mem_new();
  cl_err err = {0};
  uint8_t a[32] = {1}, b[32] = {2}, out[32];
  cr_assert_eq(cl_merkle_mem_get(m, 0, 0, out, &err), CL_ENOTFOUND);
  cr_assert_eq(cl_merkle_mem_put(m, 3, 1000, a, &err), 0);
  cr_assert_eq(cl_merkle_mem_get(m, 3, 1000, out, &err), 0);
  cr_assert_arr_eq(out, a, 32);
  cr_assert_eq(cl_merkle_mem_get(m, 3, 999, out, &err), CL_ENOTFOUND);
  cr_assert_eq(cl_merkle_mem_put(m, 3, 1000, a, &err), 0, "same hash again is fine");
  cr_assert_eq(cl_merkle_mem_put(m, 3, 1000, b, &err), CL_ECORRUPT);
  cr_assert_eq(cl_merkle_mem_get(m, 3, 1000, out, &err), 0);
  cr_assert_arr_eq(out, a, 32, "conflicting put changed the store");
  cr_assert_eq(cl_merkle_mem_put(m, 64, 0, a, &err), CL_EINVAL);
  cr_assert_eq(cl_merkle_mem_get(m, 64, 0, out, &err), CL_ENOTFOUND);
  cr_assert_eq(cl_merkle_mem_put(m, 0, UINT64_MAX, a, &err), CL_ENOMEM);
  cl_merkle_mem_free(m);
  cl_merkle_mem_free(NULL);
}

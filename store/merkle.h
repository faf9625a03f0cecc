/* RFC 9162 Merkle tree hashing, proofs and verification, independent of any
 * database.
 *
 * Hashes (RFC 9162 section 2.1.1, SHA-256):
 *
 *   | what         | hash                                   |
 *   |--------------|----------------------------------------|
 *   | empty tree   | SHA-256("")                            |
 *   | leaf         | SHA-256(0x00 || data)                  |
 *   | interior     | SHA-256(0x01 || left || right)         |
 *
 * Storage model. A node (level L, index i) is the root of the PERFECT subtree
 * over leaves [i * 2^L, (i + 1) * 2^L); level 0 nodes are the leaf hashes. A
 * node exists once all its leaves exist and never changes afterwards. The
 * caller keeps nodes wherever it likes (RocksDB in the store, memory in
 * tests) and hands this module two callbacks: `cl_merkle_get_fn` to read a
 * node and `cl_merkle_put_fn` to write one. Hashes over ranges that are not
 * perfect (the right edge of a tree whose size is not a power of two) are
 * never stored; they are recomputed from the O(log n) perfect nodes that
 * cover the range.
 *
 * Tree sizes are uint64_t, so levels run 0..63. Proofs never hold more than
 * CL_MERKLE_MAX_PROOF hashes; the one case where RFC 9162 would need more
 * (a consistency proof of 65 hashes, possible only for new sizes above 2^63)
 * is refused with CL_ETOOBIG.
 *
 * Thread-safety: every function here is reentrant and keeps no global state;
 * the callbacks are called only from the calling thread. The in-memory node
 * store (cl_merkle_mem) is not thread-safe: lock around it if shared. */
#ifndef CL_STORE_MERKLE_H
#define CL_STORE_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#include "store/err.h"

#define CL_HASH_SIZE 32
#define CL_MERKLE_MAX_PROOF 64 /* max hashes in a proof */
#define CL_MERKLE_LEVELS 64    /* levels 0..63 cover every uint64_t size */

/* Leaf hash SHA-256(0x00 || data[0..n)); `data` borrowed (may be NULL when
 * n == 0). Cannot fail. */
void cl_merkle_leaf_hash(const uint8_t *data, size_t n, uint8_t out[CL_HASH_SIZE]);

/* Interior node hash SHA-256(0x01 || l || r); all borrowed; `out` may alias
 * `l` or `r`. Cannot fail. */
void cl_merkle_node_hash(const uint8_t l[CL_HASH_SIZE], const uint8_t r[CL_HASH_SIZE],
                         uint8_t out[CL_HASH_SIZE]);

/* Node source: returns 0 and fills `out` with node (level, index), returns
 * CL_ENOTFOUND if the node is absent, or another negative CL_E* (e.g. CL_EIO)
 * on failure; on failure it should fill *err (this module adds which node it
 * was asking for). `ctx` is the caller's, passed through untouched. */
typedef int (*cl_merkle_get_fn)(void *ctx, unsigned level, uint64_t index,
                                uint8_t out[CL_HASH_SIZE], cl_err *err);

/* Node sink: stores node (level, index) = hash (borrowed); returns 0 or a
 * negative CL_E* and fills *err. Must be idempotent for the same hash. */
typedef int (*cl_merkle_put_fn)(void *ctx, unsigned level, uint64_t index,
                                const uint8_t hash[CL_HASH_SIZE], cl_err *err);

/* The right frontier ("compact range") of a tree: roots of the perfect
 * subtrees that make up the first `size` leaves, one per set bit of size.
 * The subtree for bit L covers leaves [size with bits 0..L cleared, + 2^L),
 * i.e. it is node (L, (size >> L) - 1). Plain value, copyable. */
typedef struct cl_merkle_frontier {
  uint64_t size;                                  /* leaves in the tree */
  uint8_t node[CL_MERKLE_LEVELS][CL_HASH_SIZE];   /* node[L] valid iff bit L of size is set */
} cl_merkle_frontier;

/* Sets *f to the empty tree. Cannot fail. */
void cl_merkle_frontier_init(cl_merkle_frontier *f);

/* Appends one leaf hash (`leaf`, borrowed) to *f. Calls `put` for the new
 * level-0 node and then for every perfect node the append completes, lowest
 * level first. O(log n) hashing, no allocation. Errors: CL_ETOOBIG (tree
 * already holds UINT64_MAX leaves), or whatever `put` returns (its message
 * prefixed with the node). On error *f is unchanged; nodes already put stay
 * put, which is harmless because a retry puts the same hashes again. */
int cl_merkle_frontier_append(cl_merkle_frontier *f, const uint8_t leaf[CL_HASH_SIZE],
                              cl_merkle_put_fn put, void *ctx, cl_err *err);

/* Root hash (MTH) of the tree *f describes; SHA-256("") when empty. O(log n)
 * hashing. Cannot fail. */
void cl_merkle_frontier_root(const cl_merkle_frontier *f, uint8_t root[CL_HASH_SIZE]);

/* Rebuilds the frontier of a `size`-leaf tree from stored nodes: one `get`
 * per set bit of size. Errors: whatever `get` returns (CL_ENOTFOUND if the
 * store lacks a node the size implies). On error *f is unchanged. */
int cl_merkle_frontier_load(cl_merkle_frontier *f, uint64_t size, cl_merkle_get_fn get,
                            void *ctx, cl_err *err);

/* MTH of leaves [0, size) from stored perfect nodes: one `get` per set bit
 * of size; SHA-256("") for size 0. Errors: whatever `get` returns. On error
 * `root` is unspecified. */
int cl_merkle_root(uint64_t size, cl_merkle_get_fn get, void *ctx, uint8_t root[CL_HASH_SIZE],
                   cl_err *err);

/* RFC 9162 2.1.3.1 inclusion proof PATH(index, D[0:size]): writes *n hashes
 * (<= CL_MERKLE_MAX_PROOF), leaf-side first, into proof[0..*n); `proof` must
 * have room for CL_MERKLE_MAX_PROOF hashes. Reads only nodes that exist in a
 * tree of `size` leaves, O(log n) gets (at most one non-perfect sibling is
 * recomputed, from at most 64 perfect nodes). Errors: CL_EINVAL
 * (index >= size), whatever `get` returns. On error *n and proof are
 * unspecified. */
int cl_merkle_prove_inclusion(uint64_t index, uint64_t size, cl_merkle_get_fn get, void *ctx,
                              uint8_t proof[][CL_HASH_SIZE], size_t *n, cl_err *err);

/* RFC 9162 2.1.4.1 consistency proof PROOF(old_size, D[0:new_size]) for
 * 0 < old_size <= new_size; old_size == new_size gives an empty proof
 * (*n = 0). Same output conventions as cl_merkle_prove_inclusion. Errors:
 * CL_EINVAL (old_size == 0 or old_size > new_size), CL_ETOOBIG (the proof
 * would exceed CL_MERKLE_MAX_PROOF hashes; only possible above 2^63 leaves),
 * whatever `get` returns. */
int cl_merkle_prove_consistency(uint64_t old_size, uint64_t new_size, cl_merkle_get_fn get,
                                void *ctx, uint8_t proof[][CL_HASH_SIZE], size_t *n, cl_err *err);

/* RFC 9162 2.1.3.2: verifies that `leaf` (a leaf hash, borrowed) is leaf
 * `index` of the tree of `size` leaves whose root is `root`, given the n
 * hashes in proof (borrowed; may be NULL when n == 0). Returns 0 if valid,
 * CL_EVERIFY with the reason in *err if not (including n >
 * CL_MERKLE_MAX_PROOF). All inputs may be untrusted. */
CL_MUST_CHECK int cl_merkle_verify_inclusion(const uint8_t leaf[CL_HASH_SIZE], uint64_t index,
                                             uint64_t size, const uint8_t proof[][CL_HASH_SIZE],
                                             size_t n, const uint8_t root[CL_HASH_SIZE],
                                             cl_err *err);

/* RFC 9162 2.1.4.2: verifies that the tree of old_size leaves with root
 * old_root is a prefix of the tree of new_size leaves with root new_root.
 * As the RFC's definition of PROOF implies, old_size == new_size is valid
 * exactly when the proof is empty and the roots are equal (the RFC's
 * algorithm itself rejects an empty proof, so this case is checked first).
 * old_size == 0 is rejected: there is no RFC proof from the empty tree.
 * Returns 0 if valid, CL_EVERIFY with the reason in *err if not. All inputs
 * borrowed and may be untrusted. */
CL_MUST_CHECK int cl_merkle_verify_consistency(uint64_t old_size, uint64_t new_size,
                                               const uint8_t old_root[CL_HASH_SIZE],
                                               const uint8_t new_root[CL_HASH_SIZE],
                                               const uint8_t proof[][CL_HASH_SIZE], size_t n,
                                               cl_err *err);

/* ---- In-memory node store, for tests and tools ---------------------------
 * A growable array per level. Not thread-safe. */
typedef struct cl_merkle_mem cl_merkle_mem;

/* Creates an empty store; returned-owned (free with cl_merkle_mem_free).
 * Returns NULL when out of memory. */
cl_merkle_mem *cl_merkle_mem_new(void);

/* Frees the store; NULL is a no-op. */
void cl_merkle_mem_free(cl_merkle_mem *m);

/* cl_merkle_get_fn over a cl_merkle_mem (ctx). Errors: CL_ENOTFOUND. */
int cl_merkle_mem_get(void *ctx, unsigned level, uint64_t index, uint8_t out[CL_HASH_SIZE],
                      cl_err *err);

/* cl_merkle_put_fn over a cl_merkle_mem (ctx). Storing the same hash twice
 * is a no-op. Errors: CL_EINVAL (level >= 64), CL_ENOMEM, CL_ECORRUPT (the
 * node already holds a different hash; nodes are immutable). On error the
 * store is unchanged. */
int cl_merkle_mem_put(void *ctx, unsigned level, uint64_t index,
                      const uint8_t hash[CL_HASH_SIZE], cl_err *err);

#endif

/* The Merkle tree in RocksDB, checkpoints and proofs.
 *
 * The `merkle` family holds one entry per leaf i: the hashes of the nodes
 * leaf i completes, level 0 (the leaf) up to ctz(i + 1), 32 bytes each
 * (cl_merkle_node_leaf in db.h says where a node lives). So the write path
 * adds one Merkle entry per event. The frontier (the committer's, see
 * log_int.h) is rebuilt from these entries at open.
 *
 * Checkpoints are signed at exact multiples of the checkpoint interval as
 * the tree grows (they depend only on the log, not on how appends were
 * grouped, so every replica and every catch-up signs the same ones) and on
 * demand. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/alloc.h"
#include "store/checkpoint.h"
#include "store/log_int.h"

int cl_tree_get(void *ctx, unsigned level, uint64_t index, uint8_t out[32], cl_err *err) {
  cl_db *db = ctx;
  uint8_t k[8];
  cl_be64(k, cl_merkle_node_leaf(level, index));
  char *v;
  size_t vl;
  int rc = cl_db_get(db, CL_CF_MERKLE, k, sizeof k, &v, &vl, err);
  if (rc)
    return rc == CL_ENOTFOUND ? cl_err_set(err, CL_ECORRUPT, "merkle node (%u,%llu) missing", level,
                                           (unsigned long long)index)
                              : rc;
  if (vl < 32 * ((size_t)level + 1) || vl % 32) {
    rocksdb_free(v);
    return cl_err_set(err, CL_ECORRUPT, "merkle entry of leaf %llu has %zu bytes",
                      (unsigned long long)cl_merkle_node_leaf(level, index), vl);
  }
  memcpy(out, v + 32 * level, 32);
  rocksdb_free(v);
  return 0;
}

/* Collects the nodes one leaf append completes. */
typedef struct entry {
  uint64_t leaf;
  unsigned levels;
  uint8_t hashes[64][32];
} entry;

static int collect(void *ctx, unsigned level, uint64_t index, const uint8_t hash[32], cl_err *err) {
  entry *e = ctx;
  if (level >= 64)
    return cl_err_set(err, CL_EINVAL, "merkle level %u", level);
  if (level == 0)
    e->leaf = index;
  memcpy(e->hashes[level], hash, 32);
  if (level + 1 > e->levels)
    e->levels = level + 1;
  return 0;
}

int cl_tree_append(cl_log *log, rocksdb_writebatch_t *wb, const uint8_t leaf[32], cl_err *err) {
  entry e;
  e.levels = 0;
  e.leaf = 0;
  int rc = cl_merkle_frontier_append(&log->frontier, leaf, collect, &e, err);
  if (rc)
    return rc;
  uint8_t k[8];
  cl_be64(k, e.leaf);
  rocksdb_writebatch_put_cf(wb, log->db->cf[CL_CF_MERKLE], (const char *)k, 8,
                            (const char *)e.hashes, 32 * (size_t)e.levels);
  return 0;
}

int cl_tree_put_checkpoint(cl_log *log, rocksdb_writebatch_t *wb, uint64_t size,
                           const uint8_t root[32], cl_err *err) {
  cl_checkpoint cp;
  memset(&cp, 0, sizeof cp);
  snprintf(cp.origin, sizeof cp.origin, "%s", log->origin);
  cp.size = size;
  memcpy(cp.root, root, 32);
  char *note;
  size_t len;
  int rc = cl_checkpoint_sign(&cp, log->origin, log->log_signer.sk, &note, &len, err);
  if (rc)
    return rc;
  uint8_t k[8];
  cl_be64(k, size);
  rocksdb_writebatch_put_cf(wb, log->db->cf[CL_CF_CHECKPOINTS], (const char *)k, 8, note, len);
  free(note);
  return 0;
}

int cl_tree_maybe_checkpoint(cl_log *log, rocksdb_writebatch_t *wb, cl_err *err) {
  uint64_t iv = log->o.checkpoint_interval, size = log->frontier.size;
  cl_err e;
  if (!iv || !log->have_log_key || size % iv || cl_lk_may_sign(log, size, &e) != 0)
    return 0; /* a key the keyring does not make a log key at this size signs nothing */
  uint8_t root[32];
  cl_merkle_frontier_root(&log->frontier, root);
  int rc = cl_tree_put_checkpoint(log, wb, size, root, err);
  if (rc == 0)
    log->last_checkpoint = size;
  return rc;
}

int cl_tree_last_checkpoint(cl_log *log, uint64_t *size, cl_err *err) {
  rocksdb_iterator_t *it =
      rocksdb_create_iterator_cf(log->db->db, log->db->ro, log->db->cf[CL_CF_CHECKPOINTS]);
  *size = 0;
  rocksdb_iter_seek_to_last(it);
  if (rocksdb_iter_valid(it)) {
    size_t kl;
    const char *ck = rocksdb_iter_key(it, &kl);
    if (kl == 8)
      *size = cl_get_be64((const uint8_t *)ck);
  }
  int rc = cl_iter_error(it, err, "checkpoint scan");
  rocksdb_iter_destroy(it);
  return rc;
}

/* ------------------------------------------------------------- proofs */

int cl_log_root_at(cl_log *log, uint64_t size, uint8_t root[32], cl_err *err) {
  uint64_t cur;
  cl_log_head(log, &cur, NULL);
  if (size > cur)
    return cl_err_set(err, CL_EINVAL, "tree size %llu is beyond the log (%llu)",
                      (unsigned long long)size, (unsigned long long)cur);
  return cl_merkle_root(size, cl_tree_get, log->db, root, err);
}

int cl_log_prove_inclusion(cl_log *log, uint64_t seq, uint64_t size, uint8_t proof[][32], size_t *n,
                           uint8_t leaf[32], cl_err *err) {
  uint64_t cur;
  cl_log_head(log, &cur, NULL);
  if (size == 0)
    size = cur;
  if (seq == 0 || seq > size || size > cur)
    return cl_err_set(err, CL_EINVAL, "seq %llu not in a tree of size %llu (log has %llu)",
                      (unsigned long long)seq, (unsigned long long)size, (unsigned long long)cur);
  int rc = cl_tree_get(log->db, 0, cl_leaf_index(seq), leaf, err);
  if (rc)
    return rc;
  return cl_merkle_prove_inclusion(cl_leaf_index(seq), size, cl_tree_get, log->db, proof, n, err);
}

int cl_log_prove_consistency(cl_log *log, uint64_t old_size, uint64_t new_size, uint8_t proof[][32],
                             size_t *n, cl_err *err) {
  uint64_t cur;
  cl_log_head(log, &cur, NULL);
  if (new_size == 0)
    new_size = cur;
  if (old_size == 0 || old_size > new_size || new_size > cur)
    return cl_err_set(err, CL_EINVAL, "need 0 < old (%llu) <= new (%llu) <= %llu",
                      (unsigned long long)old_size, (unsigned long long)new_size,
                      (unsigned long long)cur);
  return cl_merkle_prove_consistency(old_size, new_size, cl_tree_get, log->db, proof, n, err);
}

/* -------------------------------------------------------- checkpoints */

int cl_log_get_checkpoint(cl_log *log, uint64_t max_size, char **note, size_t *len, cl_err *err) {
  rocksdb_iterator_t *it =
      rocksdb_create_iterator_cf(log->db->db, log->db->ro, log->db->cf[CL_CF_CHECKPOINTS]);
  uint8_t k[8];
  cl_be64(k, max_size ? max_size : UINT64_MAX);
  rocksdb_iter_seek_for_prev(it, (const char *)k, 8);
  int rc = 0;
  if (rocksdb_iter_valid(it)) {
    size_t vl;
    const char *v = rocksdb_iter_value(it, &vl);
    *note = cl_malloc(vl + 1);
    if (!*note) {
      rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    } else {
      memcpy(*note, v, vl);
      (*note)[vl] = '\0';
      *len = vl;
    }
  } else if ((rc = cl_iter_error(it, err, "checkpoint scan")) == 0) {
    rc = cl_err_set(err, CL_ENOTFOUND, "no checkpoint stored");
  }
  rocksdb_iter_destroy(it);
  return rc;
}

int cl_log_checkpoint(cl_log *log, char **note, size_t *len, cl_err *err) {
  if (!log->have_log_key)
    return cl_err_set(err, CL_EDENIED, "this node has no log key to sign checkpoints");
  /* the commit slot, so the head cannot move while we sign and store */
  int rc = cl_slot_acquire(log, err);
  if (rc)
    return rc;
  /* a node that could not follow a log key rotation tries again: the
   * operator may have placed the key since */
  cl_lk_retry(log);
  pthread_mutex_lock(&log->ls_mu);
  if (log->lk_err.code)
    rc = cl_err_set(err, CL_EREVOKED, "%s", log->lk_err.msg);
  pthread_mutex_unlock(&log->ls_mu);
  if (rc) {
    cl_slot_release(log);
    return rc;
  }
  uint64_t size;
  uint8_t root[32];
  cl_log_head(log, &size, root);
  if (size != log->last_checkpoint && (rc = cl_lk_may_sign(log, size, err)) == 0) {
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    rc = cl_tree_put_checkpoint(log, wb, size, root, err);
    if (rc == 0)
      rc = cl_db_write(log->db, wb, err);
    rocksdb_writebatch_destroy(wb);
    if (rc == 0)
      log->last_checkpoint = size;
  }
  cl_slot_release(log);
  if (rc)
    return rc;
  return cl_log_get_checkpoint(log, size, note, len, err);
}

/* Catch-up: appending records copied from another node's log (a new or
 * far-behind cluster member). Every record is checked against the state
 * before it (sequence, stream versions, ids, commit times, data keys), the
 * chunk is verified against the tree the node must reach (root equal, or
 * an RFC 9162 consistency proof), and only then derived state (keyring,
 * erasures: the same fold as the write path) is computed and the chunk is
 * written in one synced write. On any error nothing is written and the
 * committer's in-memory state is restored. Runs holding the commit slot,
 * and notifies the feed before releasing it. */
#include <sodium.h>
#include <string.h>

#include "clinlog/v1/event.pb-c.h"
#include "store/alloc.h"
#include "store/event.h"
#include "store/log_int.h"

/* The wrapped key a chunk brings for `tag`: 1 with *w and *wl (wl 0: erased),
 * or 0. */
static int chunk_key(const cl_ingest_key *keys, size_t nkeys, const uint8_t *tag, const uint8_t **w,
                     size_t *wl) {
  for (size_t j = 0; j < nkeys; j++)
    if (memcmp(keys[j].tag, tag, 32) == 0) {
      *w = keys[j].wrapped;
      *wl = keys[j].wrapped_len;
      return 1;
    }
  return 0;
}

/* The keyring and erasure effects of an ingested system record, derived by
 * the write path's fold (the record is decrypted with its stream's key:
 * system streams are never erased). `wrapped` is the chunk's copy of the
 * stream's key, or NULL to read it from the store. */
static int ingest_effects(cl_log *log, rocksdb_writebatch_t *wb, const Clinlog__V1__Record *rec,
                          const uint8_t *wrapped, size_t wl, int *erased, cl_err *err) {
  uint8_t *key = cl_secure_scratch(CL_SCRATCH_READ, 32);
  if (!key)
    return cl_err_set(err, CL_ENOMEM, "out of secure memory");
  char *dv = NULL;
  int rc = 0;
  if (!wrapped) {
    size_t dl;
    if ((rc = cl_db_get(log->db, CL_CF_KEYS, rec->stream_tag.data, 32, &dv, &dl, err)))
      return cl_err_prefix(err, "record %llu: stream key", (unsigned long long)rec->seq);
    wrapped = (const uint8_t *)dv;
    wl = dl;
  }
  uint8_t *plain = NULL;
  size_t pl = 0;
  Clinlog__V1__Event *ev = NULL;
  if (wl == 0) {
    rc = cl_err_set(err, CL_EVERIFY, "record %llu: a system stream without a data key",
                    (unsigned long long)rec->seq);
  } else if (cl_unwrap_key(log->wrap_key, rec->stream_tag.data, wrapped, wl, key)) {
    rc = cl_err_set(err, CL_ECRYPTO, "record %llu: data key does not unwrap",
                    (unsigned long long)rec->seq);
  } else if ((rc = cl_event_open(key, rec->stream_tag.data, rec->event_id.data, rec->nonce.data,
                                 rec->ciphertext.data, rec->ciphertext.len, &plain, &pl))) {
    rc = cl_err_set(err, rc, "record %llu does not decrypt", (unsigned long long)rec->seq);
  } else if ((rc = cl_event_decode(plain, pl, &ev, err))) {
    cl_err_prefix(err, "record %llu", (unsigned long long)rec->seq);
  }
  if (plain) {
    sodium_memzero(plain, pl);
    cl_free(plain);
  }
  sodium_memzero(key, 32);
  if (dv)
    rocksdb_free(dv);
  if (rc)
    return rc;
  /* effective after the record's signed batch, as verify replays it */
  uint64_t at = rec->batch_size ? rec->seq + (rec->batch_size - 1 - rec->batch_index) : rec->seq;
  cl_keyring_change c;
  rc = cl_keyring_change_of(ev, 0, &c, err);
  if (rc == 1) {
    pthread_mutex_lock(&log->kr_mu);
    rc = cl_keyring_check(log->keyring, &c, 0, err);
    pthread_mutex_unlock(&log->kr_mu);
    if (rc == 0) {
      rc = cl_keyring_write(log, wb, &c, at, err);
    } else {
      char why[CL_ERR_MSG_SIZE];
      memcpy(why, err->msg, sizeof why);
      rc = cl_err_set(err, CL_EVERIFY, "record %llu: keyring change refused: %s",
                      (unsigned long long)rec->seq, why);
    }
  }
  if (rc == 0 && ev->body_case == CLINLOG__V1__EVENT__BODY_STREAM_ERASED) {
    uint8_t tag[32];
    if ((rc = cl_erasure_target(log, ev, 0, tag, err)) == 0 &&
        (rc = cl_sk_erase(log, wb, tag, err)) == 0)
      *erased = 1;
  }
  clinlog__v1__event__free_unpacked(ev, NULL);
  return rc;
}

/* A data key a chunk brings for a stream's first record here must be the
 * stream's: it unwraps under this cluster's wrap key for this tag, and it
 * opens the record. (A key that is empty, erased, cannot be checked from one
 * chunk; see docs/replication.md.) */
static int check_key(cl_log *log, const Clinlog__V1__Record *rec, const uint8_t *w, size_t wl,
                     cl_err *err) {
  uint8_t *key = cl_secure_scratch(CL_SCRATCH_READ, 32);
  if (!key)
    return cl_err_set(err, CL_ENOMEM, "out of secure memory");
  int rc = 0;
  uint8_t *plain = NULL;
  size_t pl = 0;
  if (cl_unwrap_key(log->wrap_key, rec->stream_tag.data, w, wl, key) != 0)
    rc = cl_err_set(err, CL_EVERIFY, "record %llu: the stream's data key does not unwrap",
                    (unsigned long long)rec->seq);
  else if ((rc = cl_event_open(key, rec->stream_tag.data, rec->event_id.data, rec->nonce.data,
                               rec->ciphertext.data, rec->ciphertext.len, &plain, &pl)) != 0)
    rc = rc == CL_ENOMEM ? cl_err_set(err, rc, "out of memory")
                         : cl_err_set(err, CL_EVERIFY,
                                      "record %llu: the stream's data key does not open it",
                                      (unsigned long long)rec->seq);
  if (plain) {
    sodium_memzero(plain, pl);
    cl_free(plain);
  }
  sodium_memzero(key, 32);
  return rc;
}

/* Checks one ingested record against the state before it and adds it to wb. */
static int ingest_record(cl_log *log, rocksdb_writebatch_t *wb, const Clinlog__V1__Record *rec,
                         const uint8_t *bytes, size_t len, uint64_t seq, const cl_ingest_key *keys,
                         size_t nkeys, int64_t *last_at, cl_err *err) {
  if (rec->seq != seq)
    return cl_err_set(err, CL_EVERIFY, "record %llu: out of sequence (seq %llu)",
                      (unsigned long long)seq, (unsigned long long)rec->seq);
  if (seq == 1 && cl_mk_check_first(log, rec, err) != 0)
    return err->code; /* this node's keys would tag every stream anew */
  if (rec->committed_at_ns < *last_at)
    return cl_err_set(err, CL_EVERIFY, "record %llu: commit time goes backwards",
                      (unsigned long long)seq);
  *last_at = rec->committed_at_ns;
  cl_stream_state *st = cl_stream_get(log, rec->stream_tag.data, err);
  if (!st)
    return err->code;
  if (rec->stream_version != st->version + 1)
    return cl_err_set(err, CL_EVERIFY, "record %llu: stream version %llu after %llu",
                      (unsigned long long)seq, (unsigned long long)rec->stream_version,
                      (unsigned long long)st->version);
  if (cl_hmap_get(log->group_ids, rec->event_id.data))
    return cl_err_set(err, CL_EVERIFY, "record %llu: event id repeated", (unsigned long long)seq);
  char *v;
  size_t vl;
  int rc = cl_db_get(log->db, CL_CF_IDS, rec->event_id.data, 16, &v, &vl, err);
  if (rc == 0) {
    rocksdb_free(v);
    return cl_err_set(err, CL_EVERIFY, "record %llu: event id repeated", (unsigned long long)seq);
  }
  if (rc != CL_ENOTFOUND)
    return rc;
  cl_err_clear(err);
  uint8_t leaf[32];
  cl_merkle_leaf_hash(bytes, len, leaf);
  if ((rc = cl_tree_append(log, wb, leaf, err)) || (rc = cl_tree_maybe_checkpoint(log, wb, err)))
    return rc;
  uint8_t k[8];
  cl_be64(k, seq);
  rocksdb_writebatch_put_cf(wb, log->db->cf[CL_CF_LOG], (const char *)k, 8, (const char *)bytes,
                            len);
  cl_id_entry ie;
  cl_be64(ie.v, seq);
  cl_be64(ie.v + 8, rec->stream_version);
  memcpy(ie.v + 16, rec->event_hash.data, 32);
  if (!cl_hmap_put(log->group_ids, rec->event_id.data, &ie) ||
      cl_pend_stream(log, rec->stream_tag.data, rec->stream_version, seq))
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  st->version = rec->stream_version;
  if (st->key_state != KEY_UNKNOWN)
    return 0;
  const uint8_t *w;
  size_t wl;
  if (!chunk_key(keys, nkeys, rec->stream_tag.data, &w, &wl))
    return cl_err_set(err, CL_EVERIFY, "record %llu starts a stream but brings no data key",
                      (unsigned long long)seq);
  if (wl && (rc = check_key(log, rec, w, wl, err)))
    return rc;
  rocksdb_writebatch_put_cf(wb, log->db->cf[CL_CF_KEYS], (const char *)rec->stream_tag.data, 32,
                            (const char *)w, wl);
  st->key_state = wl ? KEY_PRESENT : KEY_ERASED;
  if (wl)
    memcpy(st->wk_nonce, w, 24);
  return 0;
}

/* Forgets what a refused chunk did in memory (nothing was written). */
static void ingest_rollback(cl_log *log, const cl_merkle_frontier *saved, uint64_t saved_cp) {
  log->frontier = *saved;
  log->last_checkpoint = saved_cp;
  cl_hmap_clear(log->streams);
  cl_err e2;
  pthread_mutex_lock(&log->kr_mu);
  int krc = cl_keyring_load(log, &e2);
  pthread_mutex_unlock(&log->kr_mu);
  if (krc != 0) {
    pthread_mutex_lock(&log->mu);
    log->failed = 1;
    pthread_mutex_unlock(&log->mu);
  }
}

int cl_log_ingest(cl_log *log, uint64_t first_seq, const cl_ingest_record *recs, size_t n,
                  const cl_ingest_key *keys, size_t nkeys, uint64_t target_size,
                  const uint8_t target_root[32], const uint8_t (*proof)[32], size_t nproof,
                  cl_err *err) {
  if (!log->have_keys)
    return cl_err_set(err, CL_EDENIED, "catch-up needs the master key");
  int rc = cl_slot_acquire(log, err);
  if (rc)
    return rc;
  log->lk_changed = 0;
  uint64_t last = first_seq + n - 1;
  if (n == 0 || first_seq != log->frontier.size + 1 || last < first_seq || last > target_size) {
    cl_slot_release(log);
    return cl_err_set(err, CL_EINVAL,
                      "catch-up chunk %llu..%llu does not follow %llu (target %llu)",
                      (unsigned long long)first_seq, (unsigned long long)last,
                      (unsigned long long)log->frontier.size, (unsigned long long)target_size);
  }
  cl_merkle_frontier saved = log->frontier;
  uint64_t saved_cp = log->last_checkpoint;
  int64_t last_at = log->last_committed_ns;
  int erased = 0;
  rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
  cl_hmap_clear(log->group_ids);
  log->pend_n = 0;
  Clinlog__V1__Record **parsed = cl_calloc(n, sizeof *parsed);
  if (!parsed)
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < n; i++) {
    if ((rc = cl_record_decode(recs[i].data, recs[i].len, &parsed[i], err)))
      rc = cl_err_set(err, rc == CL_ENOMEM ? rc : CL_EVERIFY, "record %llu does not decode",
                      (unsigned long long)(first_seq + i));
    else
      rc = ingest_record(log, wb, parsed[i], recs[i].data, recs[i].len, first_seq + i, keys, nkeys,
                         &last_at, err);
  }
  uint8_t root[32];
  cl_merkle_frontier_root(&log->frontier, root);
  if (rc == 0) {
    /* the chunk is part of the tree the snapshot (or base entry) names */
    if (last == target_size) {
      if (sodium_memcmp(root, target_root, 32) != 0)
        rc = cl_err_set(err, CL_EVERIFY, "root after %llu records does not match the target",
                        (unsigned long long)last);
    } else {
      rc = cl_merkle_verify_consistency(last, target_size, root, target_root, proof, nproof, err);
    }
  }
  /* derived state, only for verified records */
  for (size_t i = 0; rc == 0 && i < n; i++) {
    if (!cl_event_type_is_system(parsed[i]->event_type))
      continue;
    const uint8_t *w = NULL;
    size_t wl = 0;
    int found = chunk_key(keys, nkeys, parsed[i]->stream_tag.data, &w, &wl);
    rc = ingest_effects(log, wb, parsed[i], found ? (w ? w : (const uint8_t *)"") : NULL, wl,
                        &erased, err);
  }
  if (rc == 0 && cl_write_indexes(log, wb) != 0)
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
  if (rc == 0) {
    uint8_t sz[8];
    cl_be64(sz, last);
    cl_meta_put(wb, log->db, CL_META_TREE_SIZE, sz, 8);
    cl_meta_put(wb, log->db, CL_META_ROOT, root, 32);
    rc = cl_db_write(log->db, wb, err);
  }
  for (size_t i = 0; parsed && i < n; i++)
    if (parsed[i])
      clinlog__v1__record__free_unpacked(parsed[i], &cl_pb_allocator);
  cl_free(parsed);
  rocksdb_writebatch_destroy(wb);
  cl_hmap_clear(log->group_ids);
  log->pend_n = 0;
  if (rc) {
    log->lk_changed = 0;
    ingest_rollback(log, &saved, saved_cp);
    cl_slot_release(log);
    return cl_err_prefix(err, "catch-up chunk %llu..%llu", (unsigned long long)first_seq,
                         (unsigned long long)last);
  }
  log->last_committed_ns = last_at;
  if (erased) /* as the write path: no cached or stored copy of the key survives
               */
    cl_sk_erased(log);
  cl_publish(log, last, root); /* before the slot goes: feed order is commit order */
  cl_lk_follow(log);           /* a log key rotation among these records */
  cl_slot_release(log);
  return 0;
}

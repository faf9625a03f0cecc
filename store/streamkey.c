/* Per-stream data keys: the cache of unwrapped keys, keys minted for new
 * streams until their first commit, and erasure (crypto-shredding) with its
 * purge from disk.
 *
 * Invariants:
 *  - a key is cached only under the cache generation it was read in, and an
 *    erasure bumps the generation after its durable write, so a reader that
 *    fetched a key before the erasure cannot re-cache it afterwards;
 *  - every batch prepared for a stream that has no committed key carries the
 *    same wrapped key (the pending one), so whichever commits first, the
 *    others agree with it;
 *  - after an erasure commits, the purger flushes every column family (a
 *    WAL file is deleted only once every family it holds data for is
 *    flushed) and compacts `keys`, so no file keeps the old wrapped key. It
 *    runs off the commit path; its errors are kept for cl_log_purge_wait. */
#include <sodium.h>
#include <string.h>
#include <time.h>

#include "store/alloc.h"
#include "store/log_int.h"

typedef struct pending_key {
  uint8_t wrapped[CL_WRAPPED_KEY_SIZE];
} pending_key;

/* A key cache entry (kc_slab): the data key, then its value keys
 * (cl_value_keys), derived once when the key is cached. */
#define KC_ENTRY (32 + CL_VALUE_KEYS)

static void *purger_main(void *arg);

int cl_sk_init(cl_log *log, cl_err *err) {
  /* the locks whatever happens: cl_sk_free and the purger's stop take them */
  pthread_mutex_init(&log->pk_mu, NULL);
  pthread_mutex_init(&log->kc_mu, NULL);
  pthread_mutex_init(&log->pu_mu, NULL);
  pthread_cond_init(&log->pu_cv, NULL);
  log->pending_keys = cl_hmap_new(32, sizeof(pending_key));
  log->kc_idx = cl_hmap_new(32, sizeof(uint32_t));
  log->kc_slab = cl_sodium_malloc((size_t)log->o.key_cache * KC_ENTRY);
  log->kc_tags = cl_malloc((size_t)log->o.key_cache * 32);
  if (!log->pending_keys || !log->kc_idx || !log->kc_slab || !log->kc_tags)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  return 0;
}

void cl_sk_free(cl_log *log) {
  cl_hmap_free(log->pending_keys);
  cl_hmap_free(log->kc_idx);
  if (log->kc_slab)
    sodium_free(log->kc_slab);
  cl_free(log->kc_tags);
  pthread_mutex_destroy(&log->pk_mu);
  pthread_mutex_destroy(&log->kc_mu);
  pthread_mutex_destroy(&log->pu_mu);
  pthread_cond_destroy(&log->pu_cv);
}

/* ------------------------------------------------------------ key cache */

/* 1 and n bytes from offset `at` of the key's entry (KC_ENTRY: the data
 * key, then its value keys) on a hit; 0 and the generation on a miss. */
static int kc_get_at(cl_log *log, const uint8_t tag[32], size_t at, size_t n, uint8_t *out,
                     uint64_t *gen) {
  pthread_mutex_lock(&log->kc_mu);
  const uint32_t *slot = cl_hmap_get(log->kc_idx, tag);
  if (slot)
    memcpy(out, log->kc_slab + KC_ENTRY * (size_t)*slot + at, n);
  *gen = log->kc_gen;
  pthread_mutex_unlock(&log->kc_mu);
  return slot != NULL;
}

static int kc_get(cl_log *log, const uint8_t tag[32], uint8_t *key, uint64_t *gen) {
  return kc_get_at(log, tag, 0, 32, key, gen);
}

static void kc_put(cl_log *log, const uint8_t tag[32], const uint8_t *key, uint64_t gen) {
  pthread_mutex_lock(&log->kc_mu);
  if (gen == log->kc_gen && !cl_hmap_get(log->kc_idx, tag)) {
    uint32_t slot = log->kc_used;
    if (slot == log->o.key_cache) { /* full: replace one at random */
      slot = randombytes_uniform(log->o.key_cache);
      cl_hmap_del(log->kc_idx, log->kc_tags + 32 * (size_t)slot);
      sodium_memzero(log->kc_slab + KC_ENTRY * (size_t)slot, KC_ENTRY);
    }
    if (cl_hmap_put(log->kc_idx, tag, &slot)) { /* out of memory: just not cached */
      uint8_t *e = log->kc_slab + KC_ENTRY * (size_t)slot;
      memcpy(e, key, 32);
      cl_value_keys(key, e + 32);
      memcpy(log->kc_tags + 32 * (size_t)slot, tag, 32);
      if (slot == log->kc_used)
        log->kc_used++;
    }
  }
  pthread_mutex_unlock(&log->kc_mu);
}

static void kc_invalidate(cl_log *log) {
  pthread_mutex_lock(&log->kc_mu);
  cl_hmap_clear(log->kc_idx);
  sodium_memzero(log->kc_slab, (size_t)log->o.key_cache * KC_ENTRY);
  log->kc_used = 0;
  log->kc_gen++;
  pthread_mutex_unlock(&log->kc_mu);
}

/* ---------------------------------------------------------- lookups */

int cl_sk_for_prepare(cl_log *log, const uint8_t tag[32], uint8_t *key,
                      ProtobufCBinaryData *wrapped, cl_err *err) {
  uint64_t gen;
  wrapped->len = 0;
  wrapped->data = NULL;
  if (kc_get(log, tag, key, &gen))
    return 0;
  char *v;
  size_t vl;
  int rc = cl_db_get(log->db, CL_CF_KEYS, tag, 32, &v, &vl, err);
  if (rc == CL_ENOTFOUND) {
    /* a new stream: reuse the key another batch minted for it, if any */
    pending_key pk;
    pthread_mutex_lock(&log->pk_mu);
    const pending_key *found = cl_hmap_get(log->pending_keys, tag);
    if (found) {
      pk = *found;
    } else {
      randombytes_buf(key, 32);
      cl_wrap_key(log->wrap_key, tag, key, pk.wrapped);
      if (!cl_hmap_put(log->pending_keys, tag, &pk)) {
        pthread_mutex_unlock(&log->pk_mu);
        sodium_memzero(key, 32);
        return cl_err_set(err, CL_ENOMEM, "out of memory");
      }
    }
    pthread_mutex_unlock(&log->pk_mu);
    if (found && cl_unwrap_key(log->wrap_key, tag, pk.wrapped, sizeof pk.wrapped, key) != 0)
      return cl_err_set(err, CL_ECORRUPT, "pending data key does not unwrap");
    return cl_bytes_dup(wrapped, pk.wrapped, sizeof pk.wrapped)
               ? cl_err_set(err, CL_ENOMEM, "out of memory")
               : 0;
  }
  if (rc)
    return rc;
  if (vl == 0) {
    rocksdb_free(v);
    return cl_err_set(err, CL_EERASED, "stream was erased and takes no more events");
  }
  rc = cl_unwrap_key(log->wrap_key, tag, (const uint8_t *)v, vl, key);
  rocksdb_free(v);
  if (rc)
    return cl_err_set(err, CL_ECORRUPT, "stream data key does not unwrap (wrong master key?)");
  kc_put(log, tag, key, gen);
  return 0;
}

int cl_sk_for_read(cl_log *log, const uint8_t tag[32], uint8_t *key, int *erased, cl_err *err) {
  uint64_t gen;
  *erased = 0;
  if (kc_get(log, tag, key, &gen))
    return 0;
  /* not cached: the stream may be erased, or its key not yet unwrapped */
  char *w;
  size_t wl;
  int rc = cl_db_get(log->db, CL_CF_KEYS, tag, 32, &w, &wl, err);
  if (rc == CL_ENOTFOUND)
    return cl_err_set(err, CL_ECORRUPT, "stream has no data key");
  if (rc)
    return rc;
  if (wl == 0)
    *erased = 1;
  else if (cl_unwrap_key(log->wrap_key, tag, (const uint8_t *)w, wl, key))
    rc = cl_err_set(err, CL_ECRYPTO, "stream data key does not unwrap");
  else
    kc_put(log, tag, key, gen);
  rocksdb_free(w);
  return rc;
}

int cl_sk_value_keys(cl_log *log, const uint8_t tag[32], uint8_t keys[CL_VALUE_KEYS], int *erased,
                     cl_err *err) {
  uint64_t gen;
  *erased = 0;
  if (kc_get_at(log, tag, 32, CL_VALUE_KEYS, keys, &gen))
    return 0;
  /* not cached: the data key into the second half of keys (cl_sk_for_read
   * caches it and its value keys when it can), then its value keys over
   * it (cl_value_keys reads the key whole first) */
  int rc = cl_sk_for_read(log, tag, keys + 32, erased, err);
  if (rc == 0 && !*erased)
    cl_value_keys(keys + 32, keys);
  else
    sodium_memzero(keys, CL_VALUE_KEYS);
  return rc;
}

void cl_sk_retire_minted(cl_log *log) {
  pthread_mutex_lock(&log->pk_mu);
  for (size_t i = 0; i < log->n_minted; i++)
    cl_hmap_del(log->pending_keys, log->minted[i]);
  pthread_mutex_unlock(&log->pk_mu);
}

/* ------------------------------------------------------------ erasure */

int cl_sk_erase(cl_log *log, rocksdb_writebatch_t *wb, const uint8_t tag[32], cl_err *err) {
  cl_stream_state *st = cl_stream_get(log, tag, err);
  if (!st)
    return err->code;
  rocksdb_writebatch_put_cf(wb, log->db->cf[CL_CF_KEYS], (const char *)tag, 32, "", 0);
  st->key_state = KEY_ERASED;
  return 0;
}

static int purge(cl_log *log, cl_err *err);

void cl_sk_erased(cl_log *log) {
  kc_invalidate(log);
  pthread_mutex_lock(&log->pu_mu);
  uint64_t target = ++log->pu_asked;
  if (!log->pu_started && !log->pu_stop &&
      pthread_create(&log->pu_thread, NULL, purger_main, log) == 0)
    log->pu_started = 1;
  int inline_purge = !log->pu_started;
  pthread_cond_broadcast(&log->pu_cv);
  pthread_mutex_unlock(&log->pu_mu);
  if (inline_purge) { /* no thread to hand it to: purge here, as the commit
                         waits */
    cl_err e;
    cl_err_clear(&e);
    int rc = purge(log, &e);
    pthread_mutex_lock(&log->pu_mu);
    if (log->pu_done < target)
      log->pu_done = target;
    log->pu_err = rc ? e : (cl_err){0, ""};
    pthread_cond_broadcast(&log->pu_cv);
    pthread_mutex_unlock(&log->pu_mu);
  }
}

/* One purge: every family flushed, then `keys` compacted. 0 or CL_EIO. */
static int purge(cl_log *log, cl_err *err) {
  int rc = cl_db_flush_all(log->db, err);
  if (rc == 0)
    rc = cl_db_compact(log->db, CL_CF_KEYS, err);
  return rc;
}

static void *purger_main(void *arg) {
  cl_log *log = arg;
  (void)pthread_setname_np(pthread_self(), "store:purge");
  pthread_mutex_lock(&log->pu_mu);
  for (;;) {
    while (log->pu_done == log->pu_asked && !log->pu_stop)
      pthread_cond_wait(&log->pu_cv, &log->pu_mu);
    if (log->pu_done == log->pu_asked)
      break; /* stopping, nothing left */
    uint64_t target = log->pu_asked;
    pthread_mutex_unlock(&log->pu_mu);
    cl_err e;
    cl_err_clear(&e);
    int rc = purge(log, &e);
    pthread_mutex_lock(&log->pu_mu);
    log->pu_done = target;
    log->pu_err = rc ? e : (cl_err){0, ""};
    pthread_cond_broadcast(&log->pu_cv);
  }
  pthread_mutex_unlock(&log->pu_mu);
  return NULL;
}

void cl_sk_stop_purger(cl_log *log) {
  pthread_mutex_lock(&log->pu_mu);
  log->pu_stop = 1;
  pthread_cond_broadcast(&log->pu_cv);
  int started = log->pu_started;
  pthread_mutex_unlock(&log->pu_mu);
  if (started) { /* it finishes the purges asked for, then returns */
    pthread_join(log->pu_thread, NULL);
    log->pu_started = 0;
  }
}

int cl_log_purge_wait(cl_log *log, int64_t deadline_ms, cl_err *err) {
  pthread_mutex_lock(&log->pu_mu);
  while (log->pu_done != log->pu_asked) {
    if (!deadline_ms) {
      pthread_cond_wait(&log->pu_cv, &log->pu_mu);
      continue;
    }
    if (cl_feed_now_ms() >= deadline_ms)
      break;
    struct timespec ts = {(time_t)(deadline_ms / 1000), (long)(deadline_ms % 1000) * 1000000L};
    pthread_cond_timedwait(&log->pu_cv, &log->pu_mu, &ts);
  }
  int rc = 0;
  if (log->pu_done != log->pu_asked)
    rc = cl_err_set(err, CL_ETIMEDOUT, "%llu purge(s) still running",
                    (unsigned long long)(log->pu_asked - log->pu_done));
  else if (log->pu_err.code)
    rc = cl_err_set(err, log->pu_err.code, "purging erased keys: %s", log->pu_err.msg);
  pthread_mutex_unlock(&log->pu_mu);
  return rc;
}

/* The log's life cycle: open (with recovery), close, and accessors. The
 * rest of the log is split by subsystem (see log_int.h for who guards
 * what):
 *   genesis.c    creating a data directory and its first events
 *   prepare.c    validate, verify signatures, authorize, encrypt
 *   commit.c     the commit queue, group commit, replicated apply
 *   ingest.c     catch-up from another node's records
 *   read.c       reading events and records back
 *   tree.c       Merkle nodes, checkpoints, proofs
 *   streamkey.c  per-stream data keys, erasure and purge
 *   keyring.c    the keyring fold; crypt.c the ciphers; record.c records
 *   feed.c       commit notifications; proj.c projection state
 *
 * Invariants kept across them (checked here at open):
 *  - meta.tree_size == the highest seq in `log` == leaves in `merkle`, and
 *    meta.root is the root over them: everything a commit writes goes into
 *    one WriteBatch;
 *  - nothing exists in `log` past the tree head;
 *  - after a failed RocksDB write the log is marked failed: memory may be
 *    ahead of disk, so it accepts no more commits until reopened (reopening
 *    recovers from disk). */
#include "store/log.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "store/alloc.h"
#include "store/log_int.h"
#include "store/masterkey.h"

/* ---------------------------------------------------------------- helpers */

int64_t cl_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int cl_bytes_dup(ProtobufCBinaryData *b, const void *p, size_t n) {
  b->len = n;
  b->data = NULL;
  if (!n)
    return 0;
  b->data = cl_malloc(n);
  if (!b->data)
    return CL_ENOMEM;
  memcpy(b->data, p, n);
  return 0;
}

int cl_iter_error(rocksdb_iterator_t *it, cl_err *err, const char *what) {
  char *rerr = NULL;
  rocksdb_iter_get_error(it, &rerr);
  return rerr ? cl_db_error(rerr, err, what) : 0;
}

static void path_join(char *out, size_t n, const char *dir, const char *name) {
  snprintf(out, n, "%s/%s", dir, name);
}

void cl_log_options_init(cl_log_options *o) {
  memset(o, 0, sizeof *o);
  o->max_event_size = CL_DEFAULT_MAX_EVENT;
  o->checkpoint_interval = CL_DEFAULT_CHECKPOINT_INTERVAL;
  o->sync = 1;
  o->key_cache = CL_DEFAULT_KEY_CACHE;
}

void cl_append_result_free(cl_append_result *r) {
  if (!r)
    return;
  cl_free(r->seq);
  cl_free(r->version);
  cl_free(r->event_id);
  r->seq = r->version = NULL;
  r->event_id = NULL;
  r->n = 0;
}

int cl_meta_get(cl_db *db, const char *name, void *out, size_t n, size_t *got, cl_err *err) {
  char *v;
  size_t vl;
  int rc = cl_db_get(db, CL_CF_META, name, strlen(name), &v, &vl, err);
  if (rc)
    return rc;
  if (got) {
    *got = vl < n ? vl : n;
  } else if (vl != n) {
    rocksdb_free(v);
    return cl_err_set(err, CL_ECORRUPT, "meta %s: %zu bytes, expected %zu", name, vl, n);
  }
  memcpy(out, v, vl < n ? vl : n);
  rocksdb_free(v);
  return 0;
}

void cl_meta_put(rocksdb_writebatch_t *wb, cl_db *db, const char *name, const void *v, size_t n) {
  rocksdb_writebatch_put_cf(wb, db->cf[CL_CF_META], name, strlen(name), v, n);
}

int cl_keyring_load(cl_log *log, cl_err *err) {
  rocksdb_iterator_t *it =
      rocksdb_create_iterator_cf(log->db->db, log->db->ro, log->db->cf[CL_CF_KEYRING]);
  int rc = 0;
  cl_keyring_clear(log->keyring);
  for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
    size_t kl, vl;
    const char *k = rocksdb_iter_key(it, &kl);
    const char *v = rocksdb_iter_value(it, &vl);
    cl_keyring_entry e;
    if (kl != 32 || cl_keyring_entry_decode((const uint8_t *)v, vl, &e) != 0) {
      rc = cl_err_set(err, CL_ECORRUPT, "keyring: malformed entry");
      break;
    }
    if (cl_keyring_put(log->keyring, (const uint8_t *)k, &e) != 0) {
      rc = cl_err_set(err, CL_ENOMEM, "out of memory");
      break;
    }
  }
  if (rc == 0)
    rc = cl_iter_error(it, err, "keyring scan");
  rocksdb_iter_destroy(it);
  return rc;
}

/* ------------------------------------------------------------ open/close */

static void log_free(cl_log *log) {
  if (!log)
    return;
  cl_sk_stop_purger(log);
  cl_feed_free(log->feed);
  cl_db_close(log->pdb);
  cl_db_close(log->db);
  if (log->secrets)
    sodium_free(log->secrets);
  cl_signer_free(&log->log_signer);
  cl_hmap_free(log->streams);
  cl_hmap_free(log->group_ids);
  if (log->group_wb)
    rocksdb_writebatch_destroy(log->group_wb);
  cl_free(log->pend);
  cl_free(log->minted);
  cl_keyring_free(log->keyring);
  cl_sk_free(log);
  pthread_mutex_destroy(&log->mu);
  pthread_cond_destroy(&log->cv);
  pthread_mutex_destroy(&log->kr_mu);
  pthread_mutex_destroy(&log->ls_mu);
  pthread_mutex_destroy(&log->pdb_mu);
  cl_free(log->dir);
  cl_free(log);
}

static int load_secrets(cl_log *log, int required, cl_err *err) {
  char path[4096];
  const char *mk = log->o.master_key_path;
  if (!mk) {
    path_join(path, sizeof path, log->dir, "keys/master.key");
    mk = path;
  }
  log->secrets = cl_sodium_malloc(CL_MK_SIZE);
  if (!log->secrets)
    return cl_err_set(err, CL_ENOMEM, "out of secure memory");
  log->tag_key = log->secrets + CL_MK_TAG;
  log->wrap_key = log->secrets + CL_MK_WRAP;
  log->proj_key = log->secrets + CL_MK_PROJ;
  log->seal_key = log->secrets + CL_MK_SEAL;
  log->retired_wrap = log->secrets + CL_MK_RETIRED;
  /* the key check is compared with meta's there; a writable open finishes
   * a key file swap a crash interrupted */
  cl_masterkey_info info;
  int rc = cl_masterkey_load(log->db, mk, !log->o.read_only, log->secrets, &info, err);
  if (rc == CL_ENOTFOUND && !required)
    return 0;
  if (rc)
    return rc;
  memcpy(log->key_check, info.key_check, 16);
  log->n_retired = info.n_retired;
  log->have_keys = 1;

  const char *lk = log->o.log_key_path;
  if (!lk) {
    path_join(path, sizeof path, log->dir, "keys/log.key");
    lk = path;
  }
  rc = cl_signer_load(&log->log_signer, lk, err);
  if (rc == CL_ENOTFOUND)
    return 0; /* a node without the log key appends but signs no checkpoints */
  if (rc)
    return rc;
  log->have_log_key = 1;
  return 0;
}

static int log_alloc(const cl_log_options *o, cl_log **out, cl_err *err) {
  cl_log *log = cl_calloc(1, sizeof *log);
  if (!log)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  log->o = *o;
  if (!log->o.max_event_size)
    log->o.max_event_size = CL_DEFAULT_MAX_EVENT;
  if (!log->o.key_cache)
    log->o.key_cache = CL_DEFAULT_KEY_CACHE;
  pthread_mutex_init(&log->mu, NULL);
  pthread_cond_init(&log->cv, NULL);
  pthread_mutex_init(&log->kr_mu, NULL);
  pthread_mutex_init(&log->ls_mu, NULL);
  pthread_mutex_init(&log->pdb_mu, NULL);
  int rc = cl_sk_init(log, err); /* its locks first: log_free takes them */
  log->dir = cl_strdup(o->dir);
  log->streams = cl_hmap_new(32, sizeof(cl_stream_state));
  log->group_ids = cl_hmap_new(16, sizeof(cl_id_entry));
  log->keyring = cl_keyring_new();
  if (rc == 0 && (!log->dir || !log->streams || !log->group_ids || !log->keyring))
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
  if (rc) {
    log_free(log);
    return rc;
  }
  cl_merkle_frontier_init(&log->frontier);
  *out = log;
  return 0;
}

/* Checks that the tree matches the records after a restart: the frontier
 * rebuilt from stored nodes gives the stored root, and the last record's
 * leaf hash is the stored last leaf. */
static int recover(cl_log *log, cl_err *err) {
  uint8_t sz[8];
  int rc = cl_meta_get(log->db, CL_META_TREE_SIZE, sz, 8, NULL, err);
  if (rc == CL_ENOTFOUND)
    return cl_err_set(err, CL_ECORRUPT, "meta: tree_size missing (not a clinlog log?)");
  if (rc)
    return rc;
  log->size = cl_get_be64(sz);
  if ((rc = cl_meta_get(log->db, CL_META_ROOT, log->root, 32, NULL, err)))
    return rc;
  uint8_t ai[8];
  rc = cl_meta_get(log->db, CL_META_APPLIED, ai, 8, NULL, err);
  if (rc == 0)
    log->applied = cl_get_be64(ai);
  else if (rc != CL_ENOTFOUND)
    return rc;
  if ((rc = cl_merkle_frontier_load(&log->frontier, log->size, cl_tree_get, log->db, err)))
    return cl_err_prefix(err, "recovering Merkle frontier");
  uint8_t root[32];
  cl_merkle_frontier_root(&log->frontier, root);
  if (sodium_memcmp(root, log->root, 32) != 0)
    return cl_err_set(err, CL_ECORRUPT, "Merkle root of %llu leaves does not match meta.root",
                      (unsigned long long)log->size);
  if (log->size) {
    uint8_t k[8];
    cl_be64(k, log->size);
    char *v;
    size_t vl;
    if ((rc = cl_db_get(log->db, CL_CF_LOG, k, 8, &v, &vl, err)))
      return rc == CL_ENOTFOUND ? cl_err_set(err, CL_ECORRUPT, "record %llu (last) missing",
                                             (unsigned long long)log->size)
                                : rc;
    uint8_t leaf[32], stored[32];
    cl_merkle_leaf_hash((const uint8_t *)v, vl, leaf);
    Clinlog__V1__Record *last;
    rc = cl_record_decode((const uint8_t *)v, vl, &last, err);
    rocksdb_free(v);
    if (rc)
      return cl_err_prefix(err, "record %llu (last)", (unsigned long long)log->size);
    log->last_committed_ns = last->committed_at_ns;
    clinlog__v1__record__free_unpacked(last, &cl_pb_allocator);
    if ((rc = cl_tree_get(log->db, 0, log->size - 1, stored, err)))
      return rc;
    if (sodium_memcmp(leaf, stored, 32) != 0)
      return cl_err_set(err, CL_ECORRUPT, "record %llu does not match its Merkle leaf",
                        (unsigned long long)log->size);
    /* nothing may exist past the tree head */
    cl_be64(k, log->size + 1);
    rc = cl_db_get(log->db, CL_CF_LOG, k, 8, &v, &vl, err);
    if (rc == 0) {
      rocksdb_free(v);
      return cl_err_set(err, CL_ECORRUPT, "record %llu exists past the tree head",
                        (unsigned long long)log->size + 1);
    }
    if (rc != CL_ENOTFOUND)
      return rc;
  }
  if ((rc = cl_tree_last_checkpoint(log, &log->last_checkpoint, err)))
    return rc;
  cl_err_clear(err);
  return 0;
}

/* The tag key must be the one the log was created with (a master key
 * whose log was rotated, taken without its sealed fixed keys, would tag
 * streams anew): record 1, the genesis event of "$log", tells. */
static int check_tag_key(cl_log *log, cl_err *err) {
  if (!log->have_keys || log->size == 0)
    return 0;
  uint8_t k[8];
  cl_be64(k, 1);
  char *v;
  size_t vl;
  int rc = cl_db_get(log->db, CL_CF_LOG, k, 8, &v, &vl, err);
  if (rc)
    return rc == CL_ENOTFOUND ? cl_err_set(err, CL_ECORRUPT, "record 1 missing") : rc;
  Clinlog__V1__Record *r;
  rc = cl_record_decode((const uint8_t *)v, vl, &r, err);
  rocksdb_free(v);
  if (rc)
    return cl_err_prefix(err, "record 1");
  rc = cl_mk_check_first(log, r, err);
  clinlog__v1__record__free_unpacked(r, &cl_pb_allocator);
  return rc;
}

static int open_common(const cl_log_options *o, int create, cl_log **out, cl_err *err) {
  if (!o || !o->dir)
    return cl_err_set(err, CL_EINVAL, "options: dir required");
  int rc = cl_crypto_init(err);
  if (rc)
    return rc;
  struct stat st;
  if (!create && stat(o->dir, &st) != 0)
    return cl_err_set(err, CL_ENOTFOUND, "%s: no such data directory", o->dir);
  cl_log *log = NULL;
  if ((rc = log_alloc(o, &log, err)))
    return rc;
  char path[4096];
  path_join(path, sizeof path, log->dir, "db");
  if (!create && stat(path, &st) != 0) {
    log_free(log);
    return cl_err_set(err, CL_ENOTFOUND, "%s: not a clinlog data directory (no db/)", o->dir);
  }
  int sync = o->sync ? CL_DB_SYNCED : o->replayed ? CL_DB_BUFFERED : CL_DB_UNSYNCED;
  if ((rc = cl_db_open(path, create, o->read_only, sync, &log->db, err)))
    goto fail;
  if ((rc = load_secrets(log, !o->read_only, err)))
    goto fail;
  if (!create) {
    uint8_t fmt[4];
    if ((rc = cl_meta_get(log->db, CL_META_FORMAT, fmt, 4, NULL, err)))
      goto fail;
    uint32_t f = (uint32_t)fmt[0] << 24 | (uint32_t)fmt[1] << 16 | (uint32_t)fmt[2] << 8 | fmt[3];
    if (f != CL_FORMAT_VERSION) {
      rc = cl_err_set(err, CL_ECORRUPT, "format version %u, this build reads %d", f,
                      CL_FORMAT_VERSION);
      goto fail;
    }
    size_t got = 0;
    if ((rc = cl_meta_get(log->db, CL_META_ORIGIN, log->origin, sizeof log->origin - 1, &got, err)))
      goto fail;
    log->origin[got] = '\0';
    if ((rc = cl_meta_get(log->db, CL_META_LOG_PK, log->log_pk, 32, NULL, err)))
      goto fail;
    /* the key file must hold meta's log key (or, after a log key rotation
     * that stopped half-way, its successor: cl_lk_settle finishes it) */
    if ((rc = recover(log, err)) || (rc = cl_keyring_load(log, err)) ||
        (rc = check_tag_key(log, err)) || (rc = cl_lk_settle(log, err)))
      goto fail;
  }
  if (!(log->feed = cl_feed_new(log->size))) {
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    goto fail;
  }
  *out = log;
  return 0;
fail:
  cl_err_prefix(err, "%s", o->dir);
  log_free(log);
  return rc;
}

int cl_log_open(const cl_log_options *o, cl_log **out, cl_err *err) {
  return open_common(o, 0, out, err);
}

int cl_log_open_create(const cl_log_options *o, cl_log **out, cl_err *err) {
  return open_common(o, 1, out, err);
}

void cl_log_close(cl_log *log) {
  if (!log)
    return;
  pthread_mutex_lock(&log->mu);
  while (log->committing || log->queue)
    pthread_cond_wait(&log->cv, &log->mu);
  pthread_mutex_unlock(&log->mu);
  cl_feed_close(log->feed); /* wakes waiters; no watcher is called after this */
  log_free(log);
}

const char *cl_log_origin(const cl_log *log) { return log->origin; }

const cl_signer *cl_log_signer(const cl_log *log) {
  return log->have_log_key ? &log->log_signer : NULL;
}

const uint8_t *cl_log_public_key(const cl_log *log) { return log->log_pk; }
cl_feed *cl_log_feed(cl_log *log) { return log->feed; }

void cl_log_head(cl_log *log, uint64_t *size, uint8_t root[32]) {
  pthread_mutex_lock(&log->mu);
  if (size)
    *size = log->size;
  if (root)
    memcpy(root, log->root, 32);
  pthread_mutex_unlock(&log->mu);
}

uint64_t cl_log_foreign_keys(cl_log *log) {
  pthread_mutex_lock(&log->mu);
  uint64_t n = log->foreign_keys;
  pthread_mutex_unlock(&log->mu);
  return n;
}

uint64_t cl_log_applied_index(cl_log *log) {
  pthread_mutex_lock(&log->mu);
  uint64_t a = log->applied;
  pthread_mutex_unlock(&log->mu);
  return a;
}

int cl_log_stream_tag(cl_log *log, const char *stream, uint8_t tag[32], cl_err *err) {
  if (!log->have_keys)
    return cl_err_set(err, CL_EDENIED, "stream tags need the master key");
  cl_stream_tag(log->tag_key, stream, strlen(stream), tag);
  return 0;
}

int cl_log_key_info(cl_log *log, const uint8_t pk[32], char *principal, size_t plen, char *roles,
                    size_t rlen, int *revoked) {
  pthread_mutex_lock(&log->kr_mu);
  const cl_keyring_entry *f = cl_keyring_get(log->keyring, pk);
  cl_keyring_entry e;
  if (f)
    e = *f;
  pthread_mutex_unlock(&log->kr_mu);
  if (!f)
    return CL_EUNKNOWNKEY;
  if (principal)
    snprintf(principal, plen, "%s", e.principal);
  if (roles)
    snprintf(roles, rlen, "%s", e.roles);
  if (revoked)
    *revoked = e.revoked_seq != 0;
  return 0;
}

/* Until 2026-12 projections kept their families in the log's database,
 * where their large write batches queued in front of the log's commits
 * (one write queue per database). Their state is derived: the families
 * left there are dropped, and the projections fold again into their own. */
static int drop_old_proj_families(cl_log *log, cl_err *err) {
  char **names;
  size_t n;
  int rc = cl_db_cf_list(log->db, "proj.", &names, &n, err);
  if (rc)
    return rc;
  for (size_t i = 0; i < n; i++) { /* "proj.<name>" (meta) and "proj.<name>.<family>" */
    if (rc == 0)
      rc = cl_db_cf_drop(log->db, names[i], err);
    cl_free(names[i]);
  }
  cl_free(names);
  return rc;
}

cl_db *cl_log_proj_db(cl_log *log, cl_err *err) {
  pthread_mutex_lock(&log->pdb_mu);
  if (!log->pdb) {
    char path[4096];
    path_join(path, sizeof path, log->dir, "proj");
    cl_db *pdb = NULL;
    if (cl_db_open_proj(path, log->db, &pdb, err) == 0 && drop_old_proj_families(log, err) != 0) {
      cl_db_close(pdb);
      pdb = NULL;
    }
    log->pdb = pdb;
  }
  cl_db *r = log->pdb;
  pthread_mutex_unlock(&log->pdb_mu);
  return r;
}

int cl_log_sync(cl_log *log, cl_err *err) { return cl_db_flush_wal(log->db, 1, err); }

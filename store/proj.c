/* Projection state: opening a projection (its families and meta), its
 * transactions, and reads; see proj.h for the layout and guarantees and
 * proj_int.h for the state and its locking. Sealed values are in
 * proj_seal.c, commits and the writer thread in proj_commit.c. */
#include <stdio.h>
#include <string.h>

#include "store/alloc.h"
#include "store/proj_int.h"

static int name_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > CL_PROJ_NAME_MAX)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
      return 0;
  return 1;
}

static void fam_full_name(const cl_proj *p, size_t i, char *out, size_t n) {
  snprintf(out, n, "proj.%s.%s", p->name, p->fam_names[i]);
}

/* Creates (or finds) the meta family and every data family. Caller holds
 * lk exclusively (or nobody else can see p yet). */
static int open_families(cl_proj *p, cl_err *err) {
  char full[128];
  snprintf(full, sizeof full, "proj.%s", p->name);
  int rc = cl_db_cf_create(p->db, full, &p->meta, err);
  for (size_t i = 0; rc == 0 && i < p->nfam; i++) {
    fam_full_name(p, i, p->fam_full[i], sizeof p->fam_full[i]);
    p->fam_full_len[i] = strlen(p->fam_full[i]);
    rc = cl_db_cf_create(p->db, p->fam_full[i], &p->fam[i], err);
  }
  return rc;
}

/* Drops the meta family and every family under "proj.<name>." (also ones a
 * former version had). Caller holds lk exclusively. */
static int drop_families(cl_proj *p, cl_err *err) {
  char prefix[128];
  snprintf(prefix, sizeof prefix, "proj.%s.", p->name);
  char **names;
  size_t n;
  int rc = cl_db_cf_list(p->db, prefix, &names, &n, err);
  for (size_t i = 0; i < n; i++) {
    if (rc == 0)
      rc = cl_db_cf_drop(p->db, names[i], err);
    cl_free(names[i]);
  }
  cl_free(names);
  snprintf(prefix, sizeof prefix, "proj.%s", p->name);
  if (rc == 0)
    rc = cl_db_cf_drop(p->db, prefix, err);
  p->meta = NULL;
  memset(p->fam, 0, sizeof p->fam);
  return rc;
}

static int meta_get_u64(cl_proj *p, const char *k, uint64_t *v, size_t width, cl_err *err) {
  char *rerr = NULL;
  size_t vl;
  char *val = rocksdb_get_cf(p->db->db, p->db->ro, p->meta, k, strlen(k), &vl, &rerr);
  if (rerr)
    return cl_db_error(rerr, err, "projection meta");
  if (!val)
    return CL_ENOTFOUND;
  int rc = 0;
  if (vl != width)
    rc = cl_err_set(err, CL_ECORRUPT, "projection %s: meta %s of %zu bytes", p->name, k, vl);
  else {
    *v = 0;
    for (size_t i = 0; i < width; i++)
      *v = (*v << 8) | (uint8_t)val[i];
  }
  rocksdb_free(val);
  return rc;
}

/* Writes the version and position 0 of a fresh (or reset) projection. */
static int write_fresh_meta(cl_proj *p, cl_err *err) {
  rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
  uint8_t v[4] = {(uint8_t)(p->version >> 24), (uint8_t)(p->version >> 16),
                  (uint8_t)(p->version >> 8), (uint8_t)p->version};
  uint8_t pos[8] = {0};
  rocksdb_writebatch_put_cf(wb, p->meta, META_VERSION, strlen(META_VERSION), (const char *)v, 4);
  const char format = PROJ_FORMAT;
  rocksdb_writebatch_put_cf(wb, p->meta, META_FORMAT, strlen(META_FORMAT), &format, 1);
  rocksdb_writebatch_put_cf(wb, p->meta, META_POSITION, strlen(META_POSITION), (const char *)pos,
                            8);
  /* written out at once (cl_db_write): the families were just dropped, and
   * the old position must not outlive them */
  int rc = cl_db_write(p->db, wb, err);
  rocksdb_writebatch_destroy(wb);
  return rc ? cl_err_prefix(err, "projection meta") : 0;
}

static int reset_locked(cl_proj *p, cl_err *err) {
  int rc = drop_families(p, err);
  if (rc == 0)
    rc = open_families(p, err);
  if (rc == 0)
    rc = write_fresh_meta(p, err);
  if (rc == 0) {
    pthread_mutex_lock(&p->mu);
    p->position = 0;
    p->changes++;
    pthread_mutex_unlock(&p->mu);
    p->written = 0;
  }
  return rc;
}

void cl_proj_close(cl_proj *p) {
  if (!p)
    return;
  proj_writer_stop(p);
  if (p->meta && p->position > p->written) /* best effort: else refolded at the next open */
    (void)proj_write_position(p, p->position, NULL);
  pthread_mutex_destroy(&p->wmu);
  pthread_cond_destroy(&p->wcv);
  pthread_rwlock_destroy(&p->lk);
  pthread_mutex_destroy(&p->mu);
  if (p->hmac)
    sodium_free(p->hmac);
  cl_hmap_free(p->spare_idx);
  if (p->wb)
    rocksdb_writebatch_destroy(p->wb);
  cl_free(p);
}

int cl_proj_open(cl_log *log, const char *name, uint32_t version, const char *const *families,
                 size_t nfam, cl_proj **out, cl_err *err) {
  if (!name_ok(name))
    return cl_err_set(err, CL_EINVAL, "projection name \"%s\": 1..%d of [a-z0-9_]", name,
                      CL_PROJ_NAME_MAX);
  if (nfam > CL_PROJ_MAX_FAMILIES)
    return cl_err_set(err, CL_EINVAL, "projection %s: %zu families, at most %d", name, nfam,
                      CL_PROJ_MAX_FAMILIES);
  for (size_t i = 0; i < nfam; i++)
    if (!name_ok(families[i]))
      return cl_err_set(err, CL_EINVAL, "projection %s: family name \"%s\": 1..%d of [a-z0-9_]",
                        name, families[i], CL_PROJ_NAME_MAX);
  if (!log->have_keys || log->o.read_only)
    return cl_err_set(err, CL_EDENIED, "projections need a writable log with its master key");
  cl_proj *p = cl_calloc(1, sizeof *p);
  if (!p)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  p->log = log;
  snprintf(p->name, sizeof p->name, "%s", name);
  p->version = version;
  p->nfam = nfam;
  for (size_t i = 0; i < nfam; i++)
    snprintf(p->fam_names[i], sizeof p->fam_names[i], "%s", families[i]);
  pthread_rwlock_init(&p->lk, NULL);
  pthread_mutex_init(&p->mu, NULL);
  pthread_mutex_init(&p->wmu, NULL);
  pthread_cond_init(&p->wcv, NULL);
  randombytes_buf(p->wkey, sizeof p->wkey);
  if (!(p->hmac = cl_sodium_malloc(sizeof *p->hmac))) {
    cl_proj_close(p);
    return cl_err_set(err, CL_ENOMEM, "out of secure memory");
  }
  cl_hmac256_init(p->hmac, log->proj_key, 32);
  cl_hmac256_update(p->hmac, "proj.", 5);
  cl_hmac256_update(p->hmac, p->name, strlen(p->name) + 1);
  int rc = (p->db = cl_log_proj_db(log, err)) != NULL ? open_families(p, err) : err->code;
  uint64_t stored = 0, format = 0;
  if (rc == 0) {
    rc = meta_get_u64(p, META_VERSION, &stored, 4, err);
    if (rc == 0 && stored == version && (rc = meta_get_u64(p, META_FORMAT, &format, 1, err)) == 0 &&
        format != PROJ_FORMAT)
      rc = CL_ENOTFOUND;
    if (rc == CL_ENOTFOUND || (rc == 0 && stored != version))
      rc = reset_locked(p, err); /* new, its fold changed, or the store's format: from event 1 */
    else if (rc == 0)
      rc = meta_get_u64(p, META_POSITION, &p->position, 8, err);
    p->written = p->position;
  }
  if (rc) {
    cl_proj_close(p);
    return cl_err_prefix(err, "projection %s", name);
  }
  *out = p;
  return 0;
}

const char *cl_proj_name(const cl_proj *p) { return p->name; }

cl_log *cl_proj_log(const cl_proj *p) { return p->log; }

int cl_proj_settled(cl_proj *p) { return cl_db_settled(p->db); }

uint64_t cl_proj_position(cl_proj *p) {
  pthread_mutex_lock(&p->mu);
  uint64_t v = p->position;
  pthread_mutex_unlock(&p->mu);
  return v;
}

uint64_t cl_proj_changes(cl_proj *p) {
  pthread_mutex_lock(&p->mu);
  uint64_t v = p->changes;
  pthread_mutex_unlock(&p->mu);
  return v;
}

int cl_proj_reset(cl_proj *p, cl_err *err) {
  cl_err e;
  (void)cl_proj_commit_wait(p, &e); /* whatever it wrote goes too */
  pthread_rwlock_wrlock(&p->lk);
  int rc = reset_locked(p, err);
  pthread_rwlock_unlock(&p->lk);
  return rc ? cl_err_prefix(err, "resetting projection %s", p->name) : 0;
}

void cl_proj_hash(const cl_proj *p, const void *ident, size_t n, uint8_t out[32]) {
  /* HMAC(proj_key, "proj." || name || 0x00 || ident), continuing the state
   * kept after the prefix: two SHA-256 blocks fewer per hash */
  cl_hmac256_state st = *p->hmac;
  cl_hmac256_update(&st, ident, n);
  cl_hmac256_final(&st, out); /* wipes st */
}

/* ------------------------------------------------------- transactions */

int cl_proj_begin(cl_proj *p, cl_proj_txn **out, cl_err *err) {
  cl_proj_txn *t = cl_calloc(1, sizeof *t);
  if (t) { /* the index of a finished one, at its grown size */
    pthread_mutex_lock(&p->wmu);
    t->idx = p->spare_idx;
    p->spare_idx = NULL;
    pthread_mutex_unlock(&p->wmu);
  }
  if (!t || (!t->idx && !(t->idx = cl_hmap_new(16, sizeof(uint32_t))))) {
    cl_free(t);
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  }
  t->p = p;
  t->refs = 1;
  if ((t->base = p->inflight) != NULL)
    t->base->refs++;
  pthread_rwlock_rdlock(&p->lk);
  t->locked = 1;
  *out = t;
  return 0;
}

void proj_txn_release(cl_proj_txn *t) {
  if (--t->refs > 0)
    return;
  for (arena_block *b = t->arena, *next; b; b = next) {
    next = b->next;
    sodium_memzero(b->data, b->used);
    cl_free(b);
  }
  cl_free(t->w);
  cl_proj *p = t->p;
  pthread_mutex_lock(&p->wmu);
  if (!p->spare_idx && cl_hmap_count(t->idx) <= (1u << 20)) {
    cl_hmap_clear(t->idx);
    p->spare_idx = t->idx;
    t->idx = NULL;
  }
  pthread_mutex_unlock(&p->wmu);
  cl_hmap_free(t->idx);
  cl_free(t);
}

void proj_txn_end(cl_proj_txn *t) {
  if (t->locked) {
    pthread_rwlock_unlock(&t->p->lk);
    t->locked = 0;
  }
  if (t->base) {
    proj_txn_release(t->base);
    t->base = NULL;
  }
}

void cl_proj_abort(cl_proj_txn *t) {
  if (!t)
    return;
  proj_txn_end(t);
  proj_txn_release(t);
}

static int bad_fam(const cl_proj *p, unsigned fam, cl_err *err) {
  return fam >= p->nfam ? cl_err_set(err, CL_EINVAL, "projection %s has no family %u", p->name, fam)
                        : 0;
}

/* The index key of a write: SipHash-128 of family and key under the
 * projection's random key (cheaper than a BLAKE2b of a few dozen bytes,
 * and, keyed with a secret, as far from a chosen collision). */
static void write_hash(const cl_proj *p, unsigned fam, const void *key, size_t kl, uint8_t h[16]) {
  uint8_t buf[256];
  if (kl < sizeof buf) {
    buf[0] = (uint8_t)fam;
    memcpy(buf + 1, key, kl);
    crypto_shorthash_siphashx24(h, buf, kl + 1, p->wkey);
    return;
  }
  /* a long key: its BLAKE2b stands for it */
  crypto_generichash_state st;
  uint8_t f = (uint8_t)fam;
  crypto_generichash_init(&st, NULL, 0, 16);
  crypto_generichash_update(&st, &f, 1);
  crypto_generichash_update(&st, key, kl);
  crypto_generichash_final(&st, buf, 16);
  crypto_shorthash_siphashx24(h, buf, 16, p->wkey);
}

/* The transaction's latest write of (fam, key), or NULL. */
static const txn_write *txn_find(const cl_proj_txn *t, unsigned fam, const void *key, size_t kl) {
  uint8_t h[16];
  write_hash(t->p, fam, key, kl, h);
  const uint32_t *i = cl_hmap_get(t->idx, h);
  if (!i)
    return NULL;
  const txn_write *w = &t->w[*i];
  /* a 128-bit hash collision would need the same family and key anyway */
  return w->fam == fam && w->kl == kl && memcmp(w->kv, key, kl) == 0 ? w : NULL;
}

/* n bytes of the transaction's arena, NULL when out of memory. */
static uint8_t *arena_alloc(cl_proj_txn *t, size_t n) {
  arena_block *b = t->arena;
  if (!b || b->cap - b->used < n) {
    size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
    if (!(b = cl_malloc(sizeof *b + cap)))
      return NULL;
    b->used = 0;
    b->cap = cap;
    if (t->arena && n > ARENA_BLOCK) { /* an outsized one: the current block stays first */
      b->next = t->arena->next;
      t->arena->next = b;
    } else {
      b->next = t->arena;
      t->arena = b;
    }
  }
  uint8_t *r = b->data + b->used;
  b->used += n;
  return r;
}

/* Adds a write of (fam, key) with room for a value of vl bytes (at
 * (*out)->kv + kl; the caller fills it in before anything else touches the
 * transaction). */
static int txn_slot(cl_proj_txn *t, unsigned fam, const void *key, size_t kl, size_t vl, int del,
                    txn_write **out, cl_err *err) {
  int rc = bad_fam(t->p, fam, err);
  if (rc)
    return rc;
  if (t->n == t->cap) {
    size_t nc = t->cap ? t->cap * 2 : 256;
    txn_write *nw = cl_realloc(t->w, nc * sizeof *nw);
    if (!nw)
      return cl_err_set(err, CL_ENOMEM, "out of memory");
    t->w = nw;
    t->cap = nc;
  }
  txn_write *w = &t->w[t->n];
  if (!(w->kv = arena_alloc(t, kl + vl)))
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  memcpy(w->kv, key, kl);
  w->kl = kl;
  w->vl = vl;
  w->fam = fam;
  w->del = del;
  w->seal = 0;
  w->superseded = 0;
  uint8_t h[16];
  write_hash(t->p, fam, key, kl, h);
  int existed;
  uint32_t *at = cl_hmap_upsert(t->idx, h, &existed);
  if (!at)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  if (existed)
    t->w[*at].superseded = 1;
  *at = (uint32_t)t->n;
  t->n++;
  *out = w;
  return 0;
}

static int txn_add(cl_proj_txn *t, unsigned fam, const void *key, size_t kl, const void *val,
                   size_t vl, int del, cl_err *err) {
  txn_write *w;
  int rc = txn_slot(t, fam, key, kl, vl, del, &w, err);
  if (rc == 0 && vl)
    memcpy(w->kv + kl, val, vl);
  return rc;
}

int cl_proj_put(cl_proj_txn *t, unsigned fam, const void *key, size_t kl, const void *val,
                size_t vl, cl_err *err) {
  return txn_add(t, fam, key, kl, val, vl, 0, err);
}

int cl_proj_put_sealed(cl_proj_txn *t, unsigned fam, const void *key, size_t kl,
                       const uint8_t tag[32], const void *val, size_t vl, cl_err *err) {
  int rc = bad_fam(t->p, fam, err);
  uint8_t *dk = NULL;
  int erased = 0;
  if (rc == 0 && !(dk = cl_secure_scratch(CL_SCRATCH_PROJ, 32)))
    rc = cl_err_set(err, CL_ENOMEM, "out of secure memory");
  if (rc == 0 && (rc = cl_sk_for_read(t->p->log, tag, dk, &erased, err)) == 0 && erased)
    rc = cl_err_set(err, CL_EERASED, "stream was erased");
  if (dk)
    sodium_memzero(dk, 32);
  if (rc)
    return rc;
  /* kept as tag || plaintext and sealed when written (write_txn: on the
   * writer thread when pipelined, off the fold's); reads in the
   * transaction take the plaintext as it is */
  txn_write *w;
  rc = txn_slot(t, fam, key, kl, 32 + vl, 0, &w, err);
  if (rc == 0) {
    memcpy(w->kv + kl, tag, 32);
    if (vl)
      memcpy(w->kv + kl + 32, val, vl);
    w->seal = 1;
  }
  return rc;
}

int cl_proj_del(cl_proj_txn *t, unsigned fam, const void *key, size_t kl, cl_err *err) {
  return txn_add(t, fam, key, kl, NULL, 0, 1, err);
}

/* Copies a RocksDB value into the store's allocator. */
static int take_value(char *v, size_t vl, uint8_t **val, size_t *n, cl_err *err) {
  *val = cl_malloc(vl ? vl : 1);
  if (!*val) {
    rocksdb_free(v);
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  }
  memcpy(*val, v, vl);
  *n = vl;
  rocksdb_free(v);
  return 0;
}

int cl_proj_txn_get(cl_proj_txn *t, unsigned fam, const void *key, size_t kl, uint8_t **val,
                    size_t *vl, cl_err *err) {
  int rc = bad_fam(t->p, fam, err);
  if (rc)
    return rc;
  const txn_write *w = txn_find(t, fam, key, kl);
  if (!w && t->base) /* the transaction in flight (read-only now: safe beside the writer) */
    w = txn_find(t->base, fam, key, kl);
  if (!w) { /* the committed state (the transaction holds the read lock) */
    char *rerr = NULL;
    size_t n;
    char *v =
        rocksdb_get_cf(t->p->db->db, t->p->db->ro, t->p->fam[fam], key, kl, &n, &rerr);
    if (rerr)
      return cl_db_error(rerr, err, "projection read");
    if (!v)
      return cl_err_set(err, CL_ENOTFOUND, "not found");
    return take_value(v, n, val, vl, err);
  }
  if (w->del)
    return cl_err_set(err, CL_ENOTFOUND, "not found");
  if (w->seal) { /* as it will be stored */
    size_t cap = 0;
    *val = NULL;
    return proj_seal_write(t->p, w, val, &cap, vl, err);
  }
  if (!(*val = cl_malloc(w->vl ? w->vl : 1)))
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  memcpy(*val, w->kv + w->kl, w->vl);
  *vl = w->vl;
  return 0;
}

int cl_proj_txn_get_sealed(cl_proj_txn *t, unsigned fam, const void *key, size_t kl, uint8_t **val,
                           size_t *vl, cl_err *err) {
  const txn_write *w = bad_fam(t->p, fam, err) ? NULL : txn_find(t, fam, key, kl);
  if (!w && t->base)
    w = txn_find(t->base, fam, key, kl);
  if (w && w->seal) { /* not sealed yet: the plaintext as it is */
    size_t pl = w->vl - 32;
    if (!(*val = cl_malloc(pl ? pl : 1)))
      return cl_err_set(err, CL_ENOMEM, "out of memory");
    memcpy(*val, w->kv + w->kl + 32, pl);
    *vl = pl;
    return 0;
  }
  int rc = cl_proj_txn_get(t, fam, key, kl, val, vl, err);
  return rc ? rc : proj_open_in_place(t->p, fam, key, kl, val, vl, err);
}

/* ------------------------------------------------------------- reads */

int cl_proj_get(cl_proj *p, unsigned fam, const void *key, size_t kl, uint8_t **val, size_t *vl,
                cl_err *err) {
  int rc = bad_fam(p, fam, err);
  if (rc)
    return rc;
  pthread_rwlock_rdlock(&p->lk);
  char *rerr = NULL;
  size_t n;
  char *v = rocksdb_get_cf(p->db->db, p->db->ro, p->fam[fam], key, kl, &n, &rerr);
  pthread_rwlock_unlock(&p->lk);
  if (rerr)
    return cl_db_error(rerr, err, "projection read");
  if (!v)
    return cl_err_set(err, CL_ENOTFOUND, "not found");
  return take_value(v, n, val, vl, err);
}

int cl_proj_get_sealed(cl_proj *p, unsigned fam, const void *key, size_t kl, uint8_t **val,
                       size_t *vl, cl_err *err) {
  int rc = cl_proj_get(p, fam, key, kl, val, vl, err);
  return rc ? rc : proj_open_in_place(p, fam, key, kl, val, vl, err);
}

int cl_proj_get_many(cl_proj *p, unsigned fam, size_t n, const uint8_t *const *keys,
                     const size_t *kl, cl_proj_got_fn fn, void *ctx, cl_err *err) {
  int rc = bad_fam(p, fam, err);
  if (rc || n == 0)
    return rc;
  rocksdb_pinnableslice_t **vals = cl_calloc(n, sizeof *vals);
  char **errs = cl_calloc(n, sizeof *errs);
  if (!vals || !errs) {
    cl_free(vals);
    cl_free(errs);
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  }
  pthread_rwlock_rdlock(&p->lk);
  /* one batched read: a filter and an index probe per table file for all
   * the keys, blocks shared by neighbours read once */
  rocksdb_batched_multi_get_cf(p->db->db, p->db->ro, p->fam[fam], n, (const char *const *)keys, kl,
                               vals, errs, 1);
  for (size_t i = 0; i < n && rc == 0; i++) {
    if (errs[i]) {
      rc = cl_db_error(errs[i], err, "projection read");
      errs[i] = NULL;
      break;
    }
    size_t vl = 0;
    const char *v = vals[i] ? rocksdb_pinnableslice_value(vals[i], &vl) : NULL;
    rc = fn(ctx, i, (const uint8_t *)v, vl, err);
  }
  pthread_rwlock_unlock(&p->lk);
  for (size_t i = 0; i < n; i++) {
    if (vals[i])
      rocksdb_pinnableslice_destroy(vals[i]);
    if (errs[i])
      rocksdb_free(errs[i]);
  }
  cl_free(vals);
  cl_free(errs);
  return rc;
}

static int scan_cf(cl_proj *p, rocksdb_column_family_handle_t *h, const void *prefix, size_t pl,
                   const void *from, size_t fl, int tagged, uint8_t fam_byte, cl_proj_scan_fn fn,
                   void *ctx, cl_err *err) {
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(p->db->db, p->db->ro, h);
  if (from)
    rocksdb_iter_seek(it, from, fl);
  else
    rocksdb_iter_seek(it, prefix, pl);
  int rc = 0;
  uint8_t *kb = NULL;
  size_t kcap = 0;
  for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
    size_t kl, vl;
    const char *k = rocksdb_iter_key(it, &kl);
    if (kl < pl || memcmp(k, prefix, pl) != 0)
      break;
    const char *v = rocksdb_iter_value(it, &vl);
    if (tagged) { /* the dump: the family index byte, then the key */
      if (kcap < kl + 1) {
        uint8_t *nk = cl_realloc(kb, kl + 1);
        if (!nk) {
          rc = cl_err_set(err, CL_ENOMEM, "out of memory");
          break;
        }
        kb = nk;
        kcap = kl + 1;
      }
      kb[0] = fam_byte;
      memcpy(kb + 1, k, kl);
      rc = fn(ctx, kb, kl + 1, (const uint8_t *)v, vl, err);
    } else {
      rc = fn(ctx, (const uint8_t *)k, kl, (const uint8_t *)v, vl, err);
    }
    if (rc)
      break;
  }
  cl_free(kb);
  if (rc == 0)
    rc = cl_iter_error(it, err, "projection scan");
  rocksdb_iter_destroy(it);
  return rc < 0 ? rc : 0;
}

int cl_proj_scan(cl_proj *p, unsigned fam, const void *prefix, size_t pl, const void *from,
                 size_t fl, cl_proj_scan_fn fn, void *ctx, cl_err *err) {
  int rc = bad_fam(p, fam, err);
  if (rc)
    return rc;
  pthread_rwlock_rdlock(&p->lk);
  rc = scan_cf(p, p->fam[fam], prefix ? prefix : "", prefix ? pl : 0, from, fl, 0, 0, fn, ctx, err);
  pthread_rwlock_unlock(&p->lk);
  return rc;
}

int cl_proj_scan_deleted(cl_proj *p, unsigned fam, const void *prefix, size_t pl, const void *from,
                         size_t fl, cl_proj_scan_fn fn, void *ctx, uint64_t *deleted, cl_err *err) {
  *deleted = 0;
  /* RocksDB counts, per thread, the deletion markers its iterators step
   * over (perf context; counting is on at this level) */
  rocksdb_perfcontext_t *pc = rocksdb_perfcontext_create();
  if (!pc)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  rocksdb_set_perf_level(rocksdb_enable_count);
  rocksdb_perfcontext_reset(pc);
  int rc = cl_proj_scan(p, fam, prefix, pl, from, fl, fn, ctx, err);
  *deleted = rocksdb_perfcontext_metric(pc, rocksdb_internal_delete_skipped_count);
  rocksdb_perfcontext_destroy(pc);
  return rc;
}

int cl_proj_compact(cl_proj *p, unsigned fam, cl_err *err) {
  int rc = bad_fam(p, fam, err);
  if (rc)
    return rc;
  rocksdb_compactoptions_t *co = rocksdb_compactoptions_create();
  if (!co)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  /* rewrite the last level too: that is where deletion markers go */
  rocksdb_compactoptions_set_bottommost_level_compaction(co, 2 /* kForce */);
  pthread_rwlock_rdlock(&p->lk); /* the family's handle stays valid (a reset replaces it) */
  rocksdb_compact_range_cf_opt(p->db->db, p->fam[fam], co, NULL, 0, NULL, 0);
  pthread_rwlock_unlock(&p->lk);
  rocksdb_compactoptions_destroy(co);
  return 0;
}

/* The dump's meta family: the position in memory in place of the one on
 * disk, which may lag it by commits that wrote nothing (LAZY_MAX). */
typedef struct dump_meta {
  cl_proj_scan_fn fn;
  void *ctx;
  uint64_t position;
} dump_meta;

static int dump_meta_one(void *ctx, const uint8_t *key, size_t kl, const uint8_t *val, size_t vl,
                         cl_err *err) {
  dump_meta *d = ctx;
  uint8_t pos[8];
  if (kl == 1 + strlen(META_POSITION) && memcmp(key + 1, META_POSITION, kl - 1) == 0) {
    cl_be64(pos, d->position);
    val = pos;
    vl = sizeof pos;
  }
  return d->fn(d->ctx, key, kl, val, vl, err);
}

int cl_proj_dump(cl_proj *p, cl_proj_scan_fn fn, void *ctx, cl_err *err) {
  pthread_rwlock_rdlock(&p->lk);
  dump_meta d = {fn, ctx, cl_proj_position(p)};
  int rc = scan_cf(p, p->meta, "", 0, NULL, 0, 1, 0xff, dump_meta_one, &d, err);
  for (size_t i = 0; rc == 0 && i < p->nfam; i++)
    rc = scan_cf(p, p->fam[i], "", 0, NULL, 0, 1, (uint8_t)i, fn, ctx, err);
  pthread_rwlock_unlock(&p->lk);
  return rc;
}

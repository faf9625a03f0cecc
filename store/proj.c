/* Projection state; see proj.h for the layout and guarantees.
 *
 * Locking: `lk` (a reader-writer lock) guards the family handles: readers
 * and transactions (from begin to commit or abort; a pipelined one until
 * its write is waited for) hold it shared, cl_proj_reset exclusively (it
 * drops and recreates the families, which replaces the handles). `mu`
 * guards the position. `wmu` guards the writer thread's hand-over (the
 * job, its result) and the spare index. A transaction's reference count,
 * its `base` and `inflight` belong to the committing thread.
 *
 * A pipelined transaction is read by two threads at once, the writer
 * (building its write batch) and the committing thread (as a later
 * transaction's base): neither changes it after cl_proj_commit_start. */
#include "store/proj.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "store/alloc.h"
#include "store/hmap.h"
#include "store/log_int.h"

#define META_POSITION "position"
#define META_VERSION "version"

struct cl_proj {
  cl_log *log;
  char name[CL_PROJ_NAME_MAX + 1];
  uint32_t version;
  size_t nfam;
  char fam_names[CL_PROJ_MAX_FAMILIES][CL_PROJ_NAME_MAX + 1];
  /* "proj.<name>.<family>", each value's AD starts with it (ad_make) */
  char fam_full[CL_PROJ_MAX_FAMILIES][2 * CL_PROJ_NAME_MAX + 8];
  size_t fam_full_len[CL_PROJ_MAX_FAMILIES];
  pthread_rwlock_t lk; /* guards the handles below */
  rocksdb_column_family_handle_t *meta;
  rocksdb_column_family_handle_t *fam[CL_PROJ_MAX_FAMILIES];
  pthread_mutex_t mu; /* guards position */
  uint64_t position;
  /* HMAC state after "proj." || name || 0x00 under the projection key
   * (cl_proj_hash continues a copy); sodium_malloc'd: it is as secret as
   * the key. Set at open, read-only after. */
  crypto_auth_hmacsha256_state *hmac;
  uint8_t wkey[crypto_shorthash_siphashx24_KEYBYTES]; /* random: transaction write index */

  /* Pipelined commits (cl_proj_commit_start). The writer thread writes the
   * transaction in `job`; `wmu` guards job, done, rc and werr, and the
   * writer's life (started, stop). `inflight` (the transaction handed
   * over, until waited for) belongs to the thread that commits. */
  pthread_mutex_t wmu;
  pthread_cond_t wcv;
  pthread_t writer;
  int started, stop;
  cl_proj_txn *job;
  int done, rc;
  cl_err werr;
  cl_proj_txn *inflight;
  cl_hmap *spare_idx; /* a finished transaction's index, emptied, for the next one (wmu) */
};

/* A transaction's writes, kept until the commit: there they are written
 * in key order (sorted inserts reuse the memtable's search position, which
 * for random keys such as tags halves the insert cost), the last write of a
 * key winning. Reads in the transaction see them first (an index by a
 * hash of family and key). */
typedef struct txn_write {
  uint8_t *kv; /* key bytes, then value bytes (in the transaction's arena) */
  size_t kl, vl;
  unsigned fam;
  int del;
  int seal;       /* the value is tag[32] || plaintext, sealed when written (seal_write) */
  int superseded; /* a later write of the same key replaced it */
} txn_write;

/* The transaction's bytes come from blocks of at least ARENA_BLOCK bytes,
 * freed together: no allocation per write. They hold the plaintext of
 * values to seal: wiped when freed. */
#define ARENA_BLOCK (64u << 10)
typedef struct arena_block {
  struct arena_block *next;
  size_t used, cap;
  uint8_t data[];
} arena_block;

struct cl_proj_txn {
  cl_proj *p;
  txn_write *w;
  size_t n, cap;
  arena_block *arena; /* the block being filled first */
  cl_hmap *idx;       /* write_hash(fam, key)[16] -> uint32 index of the latest write */
  /* The transaction in flight when this one began (NULL: none): reads see
   * its writes after this one's, as they may not be on disk yet. */
  cl_proj_txn *base;
  /* Holders of the memory: the caller until it commits or aborts, the
   * writer while it is in flight, each transaction reading it as `base`
   * (all counted on the committing thread). */
  int refs;
  int locked;        /* the caller's read lock on p->lk is held for it */
  int failed;        /* its write failed: a transaction over it cannot commit */
  uint64_t position; /* the position it commits */
};

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
  int rc = cl_db_cf_create(p->log->db, full, &p->meta, err);
  for (size_t i = 0; rc == 0 && i < p->nfam; i++) {
    fam_full_name(p, i, p->fam_full[i], sizeof p->fam_full[i]);
    p->fam_full_len[i] = strlen(p->fam_full[i]);
    rc = cl_db_cf_create(p->log->db, p->fam_full[i], &p->fam[i], err);
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
  int rc = cl_db_cf_list(p->log->db, prefix, &names, &n, err);
  for (size_t i = 0; i < n; i++) {
    if (rc == 0)
      rc = cl_db_cf_drop(p->log->db, names[i], err);
    cl_free(names[i]);
  }
  cl_free(names);
  snprintf(prefix, sizeof prefix, "proj.%s", p->name);
  if (rc == 0)
    rc = cl_db_cf_drop(p->log->db, prefix, err);
  p->meta = NULL;
  memset(p->fam, 0, sizeof p->fam);
  return rc;
}

static int meta_get_u64(cl_proj *p, const char *k, uint64_t *v, size_t width, cl_err *err) {
  char *rerr = NULL;
  size_t vl;
  char *val = rocksdb_get_cf(p->log->db->db, p->log->db->ro, p->meta, k, strlen(k), &vl, &rerr);
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
  rocksdb_writebatch_put_cf(wb, p->meta, META_POSITION, strlen(META_POSITION), (const char *)pos,
                            8);
  char *rerr = NULL;
  rocksdb_write(p->log->db->db, p->log->db->wo_nosync, wb, &rerr);
  rocksdb_writebatch_destroy(wb);
  return rerr ? cl_db_error(rerr, err, "projection meta") : 0;
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
    pthread_mutex_unlock(&p->mu);
  }
  return rc;
}

void cl_proj_close(cl_proj *p) {
  if (!p)
    return;
  cl_err e;
  (void)cl_proj_commit_wait(p, &e);
  if (p->started) {
    pthread_mutex_lock(&p->wmu);
    p->stop = 1;
    pthread_cond_broadcast(&p->wcv);
    pthread_mutex_unlock(&p->wmu);
    pthread_join(p->writer, NULL);
  }
  pthread_mutex_destroy(&p->wmu);
  pthread_cond_destroy(&p->wcv);
  pthread_rwlock_destroy(&p->lk);
  pthread_mutex_destroy(&p->mu);
  if (p->hmac)
    sodium_free(p->hmac);
  cl_hmap_free(p->spare_idx);
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
  crypto_auth_hmacsha256_init(p->hmac, log->proj_key, 32);
  crypto_auth_hmacsha256_update(p->hmac, (const uint8_t *)"proj.", 5);
  crypto_auth_hmacsha256_update(p->hmac, (const uint8_t *)p->name, strlen(p->name) + 1);
  int rc = open_families(p, err);
  uint64_t stored = 0;
  if (rc == 0) {
    rc = meta_get_u64(p, META_VERSION, &stored, 4, err);
    if (rc == CL_ENOTFOUND || (rc == 0 && stored != version))
      rc = reset_locked(p, err); /* new, or its fold changed: from event 1 */
    else if (rc == 0)
      rc = meta_get_u64(p, META_POSITION, &p->position, 8, err);
  }
  if (rc) {
    cl_proj_close(p);
    return cl_err_prefix(err, "projection %s", name);
  }
  *out = p;
  return 0;
}

const char *cl_proj_name(const cl_proj *p) { return p->name; }

uint64_t cl_proj_position(cl_proj *p) {
  pthread_mutex_lock(&p->mu);
  uint64_t v = p->position;
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
  crypto_auth_hmacsha256_state st = *p->hmac;
  crypto_auth_hmacsha256_update(&st, ident, n);
  crypto_auth_hmacsha256_final(&st, out);
  sodium_memzero(&st, sizeof st);
}

/* ------------------------------------------------------------ sealing */

/* A value's AD: "proj.<name>.<family>" 0x00 || key, in `buf` (AD_BUF
 * bytes) when it fits, else allocated. */
#define AD_BUF 256
typedef struct value_ad {
  uint8_t buf[AD_BUF];
  uint8_t *p; /* buf, or cl_malloc'd */
  size_t n;
} value_ad;

static int ad_make(const cl_proj *p, unsigned fam, const void *key, size_t kl, value_ad *ad) {
  size_t fl = p->fam_full_len[fam] + 1;
  ad->n = fl + kl;
  ad->p = ad->n <= AD_BUF ? ad->buf : cl_malloc(ad->n);
  if (!ad->p)
    return CL_ENOMEM;
  memcpy(ad->p, p->fam_full[fam], fl);
  memcpy(ad->p + fl, key, kl);
  return 0;
}

static void ad_free(value_ad *ad) {
  if (ad->p != ad->buf)
    cl_free(ad->p);
  ad->p = NULL;
}

/* The data key of stream `tag` (into the thread's scratch, *dk) and the
 * value's AD (ad_free it). CL_EERASED if the stream was erased. On error
 * nothing needs freeing (the key is wiped). */
static int key_and_ad(cl_proj *p, unsigned fam, const void *key, size_t kl, const uint8_t tag[32],
                      uint8_t **dk, value_ad *ad, cl_err *err) {
  ad->p = NULL;
  if (!(*dk = cl_secure_scratch(CL_SCRATCH_PROJ, 32)))
    return cl_err_set(err, CL_ENOMEM, "out of secure memory");
  int erased;
  int rc = cl_sk_for_read(p->log, tag, *dk, &erased, err);
  if (rc == 0 && erased)
    rc = cl_err_set(err, CL_EERASED, "stream was erased");
  if (rc == 0 && ad_make(p, fam, key, kl, ad))
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
  if (rc)
    sodium_memzero(*dk, 32);
  return rc;
}

int cl_proj_open_sealed(cl_proj *p, unsigned fam, const void *key, size_t kl, const uint8_t *sealed,
                        size_t len, uint8_t **plain, size_t *n, cl_err *err) {
  *plain = NULL;
  *n = 0;
  if (fam >= p->nfam || len < 32 + CL_SEALED_OVERHEAD)
    return cl_err_set(err, CL_ECORRUPT, "projection %s: sealed value of %zu bytes", p->name, len);
  uint8_t *dk;
  value_ad ad;
  int rc = key_and_ad(p, fam, key, kl, sealed, &dk, &ad, err);
  if (rc)
    return rc;
  size_t pl = len - 32 - CL_SEALED_OVERHEAD;
  uint8_t *out = cl_malloc(pl ? pl : 1);
  if (!out)
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
  else if (cl_value_open(dk, ad.p, ad.n, sealed + 32, len - 32, out) != 0)
    rc = cl_err_set(err, CL_ECRYPTO, "projection %s: a sealed value does not open", p->name);
  sodium_memzero(dk, 32);
  ad_free(&ad);
  if (rc) {
    cl_free(out);
    return rc;
  }
  *plain = out;
  *n = pl;
  return 0;
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

/* Drops one holder of t's memory; the last frees it. */
static void txn_release(cl_proj_txn *t) {
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

/* The caller is done with t: its lock and its base go. */
static void txn_end(cl_proj_txn *t) {
  if (t->locked) {
    pthread_rwlock_unlock(&t->p->lk);
    t->locked = 0;
  }
  if (t->base) {
    txn_release(t->base);
    t->base = NULL;
  }
}

void cl_proj_abort(cl_proj_txn *t) {
  if (!t)
    return;
  txn_end(t);
  txn_release(t);
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

/* The stored form of a write to seal (w->seal): tag || the sealed value,
 * into *buf (grown as needed; *cap its size), *n bytes. CL_EERASED if the
 * stream was erased since the put. */
static int seal_write(cl_proj *p, const txn_write *w, uint8_t **buf, size_t *cap, size_t *n,
                      cl_err *err) {
  size_t pl = w->vl - 32, need = 32 + pl + CL_SEALED_OVERHEAD;
  if (*cap < need) {
    uint8_t *nb = cl_realloc(*buf, need);
    if (!nb)
      return cl_err_set(err, CL_ENOMEM, "out of memory");
    *buf = nb;
    *cap = need;
  }
  const uint8_t *tag = w->kv + w->kl;
  uint8_t *dk;
  value_ad ad;
  int rc = key_and_ad(p, w->fam, w->kv, w->kl, tag, &dk, &ad, err);
  if (rc)
    return rc;
  memcpy(*buf, tag, 32);
  cl_value_seal(dk, ad.p, ad.n, tag + 32, pl, *buf + 32);
  sodium_memzero(dk, 32);
  ad_free(&ad);
  *n = need;
  return 0;
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
        rocksdb_get_cf(t->p->log->db->db, t->p->log->db->ro, t->p->fam[fam], key, kl, &n, &rerr);
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
    return seal_write(t->p, w, val, &cap, vl, err);
  }
  if (!(*val = cl_malloc(w->vl ? w->vl : 1)))
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  memcpy(*val, w->kv + w->kl, w->vl);
  *vl = w->vl;
  return 0;
}

/* Opens a value read as `sealed` in place of the caller's result. */
static int open_in_place(cl_proj *p, unsigned fam, const void *key, size_t kl, uint8_t **val,
                         size_t *vl, cl_err *err) {
  uint8_t *plain;
  size_t n;
  int rc = cl_proj_open_sealed(p, fam, key, kl, *val, *vl, &plain, &n, err);
  cl_free(*val);
  *val = rc ? NULL : plain;
  *vl = rc ? 0 : n;
  return rc;
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
  return rc ? rc : open_in_place(t->p, fam, key, kl, val, vl, err);
}

static int cmp_write(const void *a, const void *b) {
  const txn_write *x = *(const txn_write *const *)a, *y = *(const txn_write *const *)b;
  if (x->fam != y->fam)
    return x->fam < y->fam ? -1 : 1;
  size_t m = x->kl < y->kl ? x->kl : y->kl;
  int c = memcmp(x->kv, y->kv, m);
  return c ? c : (x->kl > y->kl) - (x->kl < y->kl);
}

/* Writes t's changes and `position` in one RocksDB write (t itself is
 * only read: the committing thread may read it beside). */
static int write_txn(cl_proj_txn *t, uint64_t position, cl_err *err) {
  cl_proj *p = t->p;
  int rc = 0;
  const txn_write **order = cl_malloc((t->n ? t->n : 1) * sizeof *order);
  if (!order)
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
  if (rc == 0) {
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++)
      if (!t->w[i].superseded)
        order[n++] = &t->w[i];
    qsort(order, n, sizeof *order, cmp_write);
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    uint8_t *sealed = NULL;
    size_t cap = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
      const txn_write *w = order[i];
      size_t sl;
      if (w->del) {
        rocksdb_writebatch_delete_cf(wb, p->fam[w->fam], (const char *)w->kv, w->kl);
      } else if (!w->seal) {
        rocksdb_writebatch_put_cf(wb, p->fam[w->fam], (const char *)w->kv, w->kl,
                                  (const char *)w->kv + w->kl, w->vl);
      } else if ((rc = seal_write(p, w, &sealed, &cap, &sl, err)) == 0) {
        rocksdb_writebatch_put_cf(wb, p->fam[w->fam], (const char *)w->kv, w->kl,
                                  (const char *)sealed, sl);
      } else if (rc == CL_EERASED) { /* erased since the fold: its StreamErased forgets it */
        cl_err_clear(err);
        rc = 0;
      }
    }
    cl_free(sealed);
    uint8_t pos[8];
    cl_be64(pos, position);
    rocksdb_writebatch_put_cf(wb, p->meta, META_POSITION, strlen(META_POSITION), (const char *)pos,
                              8);
    char *rerr = NULL;
    if (rc == 0)
      rocksdb_write(p->log->db->db, p->log->db->wo_nosync, wb, &rerr);
    rocksdb_writebatch_destroy(wb);
    if (rerr)
      rc = cl_db_error(rerr, err, "projection commit");
  }
  cl_free(order);
  if (rc == 0) {
    pthread_mutex_lock(&p->mu);
    p->position = position;
    pthread_mutex_unlock(&p->mu);
  }
  return rc ? cl_err_prefix(err, "projection %s", p->name) : 0;
}

static void *writer_main(void *arg) {
  cl_proj *p = arg;
  char name[16];
  snprintf(name, sizeof name, "projw:%.9s", p->name);
  (void)pthread_setname_np(pthread_self(), name);
  pthread_mutex_lock(&p->wmu);
  for (;;) {
    while (!p->job && !p->stop)
      pthread_cond_wait(&p->wcv, &p->wmu);
    if (!p->job)
      break;
    cl_proj_txn *t = p->job;
    pthread_mutex_unlock(&p->wmu);
    cl_err e;
    cl_err_clear(&e);
    int rc = write_txn(t, t->position, &e);
    pthread_mutex_lock(&p->wmu);
    p->job = NULL;
    p->done = 1;
    p->rc = rc;
    p->werr = e;
    pthread_cond_broadcast(&p->wcv);
  }
  pthread_mutex_unlock(&p->wmu);
  return NULL;
}

int cl_proj_commit_wait(cl_proj *p, cl_err *err) {
  cl_proj_txn *t = p->inflight;
  if (!t)
    return 0;
  pthread_mutex_lock(&p->wmu);
  while (!p->done)
    pthread_cond_wait(&p->wcv, &p->wmu);
  int rc = p->rc;
  if (rc && err)
    *err = p->werr;
  p->done = 0;
  pthread_mutex_unlock(&p->wmu);
  p->inflight = NULL;
  t->failed = rc != 0;
  txn_end(t);
  txn_release(t);
  return rc;
}

/* What commit and commit_start check first: the transaction in flight is
 * written (else its error, and t is aborted) and the position moves on.
 * t no longer needs its base then. */
static int commit_ready(cl_proj_txn *t, uint64_t position, cl_err *err) {
  cl_proj *p = t->p;
  int rc = cl_proj_commit_wait(p, err);
  if (rc == 0 && t->base && t->base->failed)
    rc = cl_err_set(err, CL_EIO, "projection %s: the commit before this one failed", p->name);
  if (rc == 0 && position < cl_proj_position(p))
    rc = cl_err_set(err, CL_EINVAL, "projection %s: position %llu is behind %llu", p->name,
                    (unsigned long long)position, (unsigned long long)cl_proj_position(p));
  if (rc)
    cl_proj_abort(t);
  else if (t->base) {
    txn_release(t->base);
    t->base = NULL;
  }
  return rc;
}

int cl_proj_commit(cl_proj_txn *t, uint64_t position, cl_err *err) {
  int rc = commit_ready(t, position, err);
  if (rc)
    return rc;
  rc = write_txn(t, position, err);
  cl_proj_abort(t);
  return rc;
}

int cl_proj_commit_start(cl_proj_txn *t, uint64_t position, cl_err *err) {
  cl_proj *p = t->p;
  int rc = commit_ready(t, position, err);
  if (rc)
    return rc;
  if (!p->started) {
    if (pthread_create(&p->writer, NULL, writer_main, p) != 0) { /* write it here, then */
      rc = write_txn(t, position, err);
      cl_proj_abort(t);
      return rc;
    }
    p->started = 1;
  }
  t->position = position;
  t->refs++; /* the writer's */
  pthread_mutex_lock(&p->wmu);
  p->job = t;
  p->done = 0;
  pthread_cond_broadcast(&p->wcv);
  pthread_mutex_unlock(&p->wmu);
  p->inflight = t;
  txn_release(t); /* the caller's: t keeps its read lock until waited for */
  return 0;
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
  char *v = rocksdb_get_cf(p->log->db->db, p->log->db->ro, p->fam[fam], key, kl, &n, &rerr);
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
  return rc ? rc : open_in_place(p, fam, key, kl, val, vl, err);
}

static int scan_cf(cl_proj *p, rocksdb_column_family_handle_t *h, const void *prefix, size_t pl,
                   const void *from, size_t fl, int tagged, uint8_t fam_byte, cl_proj_scan_fn fn,
                   void *ctx, cl_err *err) {
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(p->log->db->db, p->log->db->ro, h);
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

int cl_proj_dump(cl_proj *p, cl_proj_scan_fn fn, void *ctx, cl_err *err) {
  pthread_rwlock_rdlock(&p->lk);
  int rc = scan_cf(p, p->meta, "", 0, NULL, 0, 1, 0xff, fn, ctx, err);
  for (size_t i = 0; rc == 0 && i < p->nfam; i++)
    rc = scan_cf(p, p->fam[i], "", 0, NULL, 0, 1, (uint8_t)i, fn, ctx, err);
  pthread_rwlock_unlock(&p->lk);
  return rc;
}

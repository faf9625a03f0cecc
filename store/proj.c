/* Projection state; see proj.h for the layout and guarantees.
 *
 * Locking: `lk` (a reader-writer lock) guards the family handles: readers
 * and transactions hold it shared, cl_proj_reset exclusively (it drops and
 * recreates the families, which replaces the handles). `mu` guards the
 * position. */
#include "store/proj.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "store/alloc.h"
#include "store/log_int.h"

#define META_POSITION "position"
#define META_VERSION "version"

struct cl_proj {
  cl_log *log;
  char name[CL_PROJ_NAME_MAX + 1];
  uint32_t version;
  size_t nfam;
  char fam_names[CL_PROJ_MAX_FAMILIES][CL_PROJ_NAME_MAX + 1];
  pthread_rwlock_t lk;            /* guards the handles below */
  rocksdb_column_family_handle_t *meta;
  rocksdb_column_family_handle_t *fam[CL_PROJ_MAX_FAMILIES];
  pthread_mutex_t mu;             /* guards position */
  uint64_t position;
};

struct cl_proj_txn {
  cl_proj *p;
  rocksdb_writebatch_wi_t *wb;
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
    fam_full_name(p, i, full, sizeof full);
    rc = cl_db_cf_create(p->log->db, full, &p->fam[i], err);
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
  pthread_rwlock_destroy(&p->lk);
  pthread_mutex_destroy(&p->mu);
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
  pthread_rwlock_wrlock(&p->lk);
  int rc = reset_locked(p, err);
  pthread_rwlock_unlock(&p->lk);
  return rc ? cl_err_prefix(err, "resetting projection %s", p->name) : 0;
}

void cl_proj_hash(const cl_proj *p, const void *ident, size_t n, uint8_t out[32]) {
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, p->log->proj_key, 32);
  crypto_auth_hmacsha256_update(&st, (const uint8_t *)"proj.", 5);
  crypto_auth_hmacsha256_update(&st, (const uint8_t *)p->name, strlen(p->name) + 1);
  crypto_auth_hmacsha256_update(&st, ident, n);
  crypto_auth_hmacsha256_final(&st, out);
}

/* ------------------------------------------------------------ sealing */

/* AD of a sealed value: "proj.<name>.<family>" 0x00 || key. *ad is
 * returned-owned (cl_free). */
static int value_ad(const cl_proj *p, unsigned fam, const void *key, size_t kl, uint8_t **ad,
                    size_t *adl) {
  char full[128];
  fam_full_name(p, fam, full, sizeof full);
  size_t fl = strlen(full) + 1;
  *adl = fl + kl;
  if (!(*ad = cl_malloc(*adl)))
    return CL_ENOMEM;
  memcpy(*ad, full, fl);
  memcpy(*ad + fl, key, kl);
  return 0;
}

/* The data key of stream `tag` (into the thread's scratch, *dk) and the
 * value's AD (*ad returned-owned: cl_free). CL_EERASED if the stream was
 * erased. On error nothing needs freeing (the key is wiped). */
static int key_and_ad(cl_proj *p, unsigned fam, const void *key, size_t kl, const uint8_t tag[32],
                      uint8_t **dk, uint8_t **ad, size_t *adl, cl_err *err) {
  *ad = NULL;
  if (!(*dk = cl_secure_scratch(CL_SCRATCH_PROJ, 32)))
    return cl_err_set(err, CL_ENOMEM, "out of secure memory");
  int erased;
  int rc = cl_sk_for_read(p->log, tag, *dk, &erased, err);
  if (rc == 0 && erased)
    rc = cl_err_set(err, CL_EERASED, "stream was erased");
  if (rc == 0 && value_ad(p, fam, key, kl, ad, adl))
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
  if (rc)
    sodium_memzero(*dk, 32);
  return rc;
}

static int seal(cl_proj *p, unsigned fam, const void *key, size_t kl, const uint8_t tag[32],
                const void *val, size_t vl, uint8_t **out, size_t *outl, cl_err *err) {
  uint8_t *dk, *ad;
  size_t adl;
  int rc = key_and_ad(p, fam, key, kl, tag, &dk, &ad, &adl, err);
  if (rc)
    return rc;
  *outl = 32 + vl + CL_SEALED_OVERHEAD;
  if (!(*out = cl_malloc(*outl))) {
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
  } else {
    memcpy(*out, tag, 32);
    cl_value_seal(dk, ad, adl, val, vl, *out + 32);
  }
  sodium_memzero(dk, 32);
  cl_free(ad);
  return rc;
}

int cl_proj_open_sealed(cl_proj *p, unsigned fam, const void *key, size_t kl, const uint8_t *sealed,
                        size_t len, uint8_t **plain, size_t *n, cl_err *err) {
  *plain = NULL;
  *n = 0;
  if (fam >= p->nfam || len < 32 + CL_SEALED_OVERHEAD)
    return cl_err_set(err, CL_ECORRUPT, "projection %s: sealed value of %zu bytes", p->name, len);
  uint8_t *dk, *ad;
  size_t adl;
  int rc = key_and_ad(p, fam, key, kl, sealed, &dk, &ad, &adl, err);
  if (rc)
    return rc;
  size_t pl = len - 32 - CL_SEALED_OVERHEAD;
  uint8_t *out = cl_malloc(pl ? pl : 1);
  if (!out)
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
  else if (cl_value_open(dk, ad, adl, sealed + 32, len - 32, out) != 0)
    rc = cl_err_set(err, CL_ECRYPTO, "projection %s: a sealed value does not open", p->name);
  sodium_memzero(dk, 32);
  cl_free(ad);
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
  cl_proj_txn *t = cl_malloc(sizeof *t);
  if (!t)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  t->p = p;
  t->wb = rocksdb_writebatch_wi_create(0, 1 /* later writes of a key replace earlier ones */);
  pthread_rwlock_rdlock(&p->lk);
  *out = t;
  return 0;
}

void cl_proj_abort(cl_proj_txn *t) {
  if (!t)
    return;
  pthread_rwlock_unlock(&t->p->lk);
  rocksdb_writebatch_wi_destroy(t->wb);
  cl_free(t);
}

static int bad_fam(const cl_proj *p, unsigned fam, cl_err *err) {
  return fam >= p->nfam ? cl_err_set(err, CL_EINVAL, "projection %s has no family %u", p->name, fam)
                        : 0;
}

int cl_proj_put(cl_proj_txn *t, unsigned fam, const void *key, size_t kl, const void *val,
                size_t vl, cl_err *err) {
  int rc = bad_fam(t->p, fam, err);
  if (rc)
    return rc;
  rocksdb_writebatch_wi_put_cf(t->wb, t->p->fam[fam], key, kl, val, vl);
  return 0;
}

int cl_proj_put_sealed(cl_proj_txn *t, unsigned fam, const void *key, size_t kl,
                       const uint8_t tag[32], const void *val, size_t vl, cl_err *err) {
  int rc = bad_fam(t->p, fam, err);
  uint8_t *s = NULL;
  size_t sl = 0;
  if (rc || (rc = seal(t->p, fam, key, kl, tag, val, vl, &s, &sl, err)))
    return rc;
  rocksdb_writebatch_wi_put_cf(t->wb, t->p->fam[fam], key, kl, (const char *)s, sl);
  cl_free(s);
  return 0;
}

int cl_proj_del(cl_proj_txn *t, unsigned fam, const void *key, size_t kl, cl_err *err) {
  int rc = bad_fam(t->p, fam, err);
  if (rc)
    return rc;
  rocksdb_writebatch_wi_delete_cf(t->wb, t->p->fam[fam], key, kl);
  return 0;
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
  char *rerr = NULL;
  size_t n;
  char *v = rocksdb_writebatch_wi_get_from_batch_and_db_cf(t->wb, t->p->log->db->db,
                                                          t->p->log->db->ro, t->p->fam[fam], key,
                                                          kl, &n, &rerr);
  if (rerr)
    return cl_db_error(rerr, err, "projection read");
  if (!v)
    return cl_err_set(err, CL_ENOTFOUND, "not found");
  return take_value(v, n, val, vl, err);
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

int cl_proj_txn_get_sealed(cl_proj_txn *t, unsigned fam, const void *key, size_t kl,
                           uint8_t **val, size_t *vl, cl_err *err) {
  int rc = cl_proj_txn_get(t, fam, key, kl, val, vl, err);
  return rc ? rc : open_in_place(t->p, fam, key, kl, val, vl, err);
}

int cl_proj_commit(cl_proj_txn *t, uint64_t position, cl_err *err) {
  cl_proj *p = t->p;
  int rc = 0;
  if (position < cl_proj_position(p))
    rc = cl_err_set(err, CL_EINVAL, "projection %s: position %llu is behind %llu", p->name,
                    (unsigned long long)position, (unsigned long long)cl_proj_position(p));
  if (rc == 0) {
    uint8_t pos[8];
    cl_be64(pos, position);
    rocksdb_writebatch_wi_put_cf(t->wb, p->meta, META_POSITION, strlen(META_POSITION),
                                 (const char *)pos, 8);
    char *rerr = NULL;
    rocksdb_write_writebatch_wi(p->log->db->db, p->log->db->wo_nosync, t->wb, &rerr);
    if (rerr)
      rc = cl_db_error(rerr, err, "projection commit");
  }
  if (rc == 0) {
    pthread_mutex_lock(&p->mu);
    p->position = position;
    pthread_mutex_unlock(&p->mu);
  }
  cl_proj_abort(t);
  return rc ? cl_err_prefix(err, "projection %s", p->name) : 0;
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
  rc = scan_cf(p, p->fam[fam], prefix ? prefix : "", prefix ? pl : 0, from, fl, 0, 0, fn, ctx,
               err);
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

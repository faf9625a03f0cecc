/* Sealed projection values: each value of a put_sealed is encrypted under
 * its stream's data key (so erasing the stream shreds it) with the family
 * name and the key as associated data, stored as tag || sealed. See proj.h
 * for the contract and proj_int.h for the state. */
#include <string.h>

#include "store/alloc.h"
#include "store/proj_int.h"

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

/* The value keys of stream `tag`'s data key (cl_value_keys; into the
 * thread's scratch, *keys) and the value's AD (ad_free it). CL_EERASED if
 * the stream was erased. On error nothing needs freeing (the keys are
 * wiped). */
static int keys_and_ad(cl_proj *p, unsigned fam, const void *key, size_t kl, const uint8_t tag[32],
                       uint8_t **keys, value_ad *ad, cl_err *err) {
  ad->p = NULL;
  if (!(*keys = cl_secure_scratch(CL_SCRATCH_PROJ, CL_VALUE_KEYS)))
    return cl_err_set(err, CL_ENOMEM, "out of secure memory");
  int erased;
  int rc = cl_sk_value_keys(p->log, tag, *keys, &erased, err);
  if (rc == 0 && erased)
    rc = cl_err_set(err, CL_EERASED, "stream was erased");
  if (rc == 0 && ad_make(p, fam, key, kl, ad))
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
  if (rc)
    sodium_memzero(*keys, CL_VALUE_KEYS);
  return rc;
}

int cl_proj_open_sealed(cl_proj *p, unsigned fam, const void *key, size_t kl, const uint8_t *sealed,
                        size_t len, uint8_t **plain, size_t *n, cl_err *err) {
  *plain = NULL;
  *n = 0;
  if (fam >= p->nfam || len < 32 + CL_VALUE_OVERHEAD)
    return cl_err_set(err, CL_ECORRUPT, "projection %s: sealed value of %zu bytes", p->name, len);
  uint8_t *keys;
  value_ad ad;
  int rc = keys_and_ad(p, fam, key, kl, sealed, &keys, &ad, err);
  if (rc)
    return rc;
  size_t pl = len - 32 - CL_VALUE_OVERHEAD;
  uint8_t *out = cl_malloc(pl ? pl : 1);
  if (!out)
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
  else if ((rc = cl_value_open_k(keys, ad.p, ad.n, sealed + 32, len - 32, out)) != 0)
    rc = rc == CL_ECRYPTO
             ? cl_err_set(err, rc, "projection %s: a sealed value does not open", p->name)
             : cl_err_set(err, rc, "projection %s: opening a value: %s", p->name, cl_strerror(rc));
  sodium_memzero(keys, CL_VALUE_KEYS);
  ad_free(&ad);
  if (rc) {
    cl_free(out);
    return rc;
  }
  *plain = out;
  *n = pl;
  return 0;
}

int proj_seal_write(cl_proj *p, const txn_write *w, uint8_t **buf, size_t *cap, size_t *n,
                    cl_err *err) {
  size_t pl = w->vl - 32, need = 32 + pl + CL_VALUE_OVERHEAD;
  if (*cap < need) {
    uint8_t *nb = cl_realloc(*buf, need);
    if (!nb)
      return cl_err_set(err, CL_ENOMEM, "out of memory");
    *buf = nb;
    *cap = need;
  }
  const uint8_t *tag = w->kv + w->kl;
  uint8_t *keys;
  value_ad ad;
  int rc = keys_and_ad(p, w->fam, w->kv, w->kl, tag, &keys, &ad, err);
  if (rc)
    return rc;
  memcpy(*buf, tag, 32);
  rc = cl_value_seal_k(keys, ad.p, ad.n, tag + 32, pl, *buf + 32);
  sodium_memzero(keys, CL_VALUE_KEYS);
  ad_free(&ad);
  if (rc)
    return cl_err_set(err, rc, "projection %s: sealing a value: %s", p->name, cl_strerror(rc));
  *n = need;
  return 0;
}

int proj_open_in_place(cl_proj *p, unsigned fam, const void *key, size_t kl, uint8_t **val,
                       size_t *vl, cl_err *err) {
  uint8_t *plain;
  size_t n;
  int rc = cl_proj_open_sealed(p, fam, key, kl, *val, *vl, &plain, &n, err);
  cl_free(*val);
  *val = rc ? NULL : plain;
  *vl = rc ? 0 : n;
  return rc;
}

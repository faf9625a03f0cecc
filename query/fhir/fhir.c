/* The `fhir` projection: storage and reads (fhir.h). The fold is in
 * fold.c; the storage format both share (families, keys, the
 * current-version record) in fhir_int.h. */
#include "query/fhir/fhir.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/fhir/fhir_int.h"
#include "query/fhir/fj.h"
#include "store/alloc.h"
#include "store/event.h"
#include "store/record.h"

/* ---- reads ---- */

void cl_fhir_resource_clear(cl_fhir_resource *r) {
  if (r->json != NULL) {
    sodium_memzero(r->json, r->len);
    free(r->json);
  }
  memset(r, 0, sizeof *r);
}

/* The committed cur record of h, without its index keys. */
static int load_cur(cl_proj *p, const uint8_t h[32], cur *c, cl_err *err) {
  uint8_t *v;
  size_t vl;
  int rc = cl_proj_get(p, FAM_CUR, h, 32, &v, &vl, err);
  if (rc)
    return rc;
  rc = cur_unpack(v, vl, c, err);
  cl_free(v);
  if (rc == 0)
    cur_free(c);
  return rc;
}

/* Version `version` (0: the current one) of the resource at h whose cur
 * record is c. */
static int read_version(cl_proj *p, const uint8_t h[32], const cur *c, uint32_t version, int flags,
                        cl_fhir_resource *out, cl_err *err) {
  memset(out, 0, sizeof *out);
  uint8_t *v;
  size_t vl;
  int rc;
  if (version == 0)
    version = c->version;
  if (version > c->version)
    return cl_err_set(err, CL_ENOTFOUND, "no version %u (the current one is %u)", version,
                      c->version);
  uint8_t vk[36];
  memcpy(vk, h, 32);
  be32(vk + 32, version);
  rc = cl_proj_get_sealed(p, FAM_VER, vk, sizeof vk, &v, &vl, err);
  if (rc == CL_EERASED)
    return cl_err_set(err, CL_ENOTFOUND, "erased");
  if (rc)
    return rc;
  if (vl < VER_HDR) {
    cl_free(v);
    return cl_err_set(err, CL_ECORRUPT, "fhir: short version value");
  }
  if (flags & CL_FHIR_STORED) {
    out->len = vl - VER_HDR;
    if ((out->json = malloc(out->len + 1)) != NULL) {
      memcpy(out->json, v + VER_HDR, out->len);
      out->json[out->len] = '\0';
    }
  } else {
    out->json = fj_finish((const char *)v + VER_HDR, vl - VER_HDR, &out->len);
  }
  out->type = c->type;
  out->version = version;
  out->current = c->version;
  memcpy(out->tag, c->tag, 32);
  out->seq = rd64(v);
  out->last_updated_ns = (int64_t)rd64(v + 8);
  memcpy(out->event_id, v + 16, 16);
  sodium_memzero(v, vl);
  cl_free(v);
  if (out->json == NULL)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  return 0;
}

static int read_hash(cl_proj *p, const uint8_t h[32], uint32_t version, int flags,
                     cl_fhir_resource *out, cl_err *err) {
  cur c;
  int rc = load_cur(p, h, &c, err);
  if (rc) {
    memset(out, 0, sizeof *out);
    return rc;
  }
  return read_version(p, h, &c, version, flags, out, err);
}

int cl_fhir_read(cl_proj *p, const char *type, const char *id, uint32_t version,
                 cl_fhir_resource *out, cl_err *err) {
  return cl_fhir_read_ex(p, type, id, version, 0, out, err);
}

int cl_fhir_read_ex(cl_proj *p, const char *type, const char *id, uint32_t version, int flags,
                    cl_fhir_resource *out, cl_err *err) {
  if (cl_fhir_type_of(type) == 0)
    return cl_err_set(err, CL_ENOTFOUND, "no resource type %s", type ? type : "(null)");
  if (id == NULL || id[0] == '\0' || strlen(id) >= CL_FHIR_ID_MAX)
    return cl_err_set(err, CL_ENOTFOUND, "no such id");
  uint8_t h[32];
  res_hash(p, type, id, h);
  int rc = read_hash(p, h, version, flags, out, err);
  if (rc == CL_ENOTFOUND && version == 0)
    cl_err_set(err, CL_ENOTFOUND, "%s/%s not found", type, id);
  return rc;
}

int cl_fhir_history(cl_proj *p, const char *type, const char *id, int flags, cl_fhir_fn fn,
                    void *ctx, cl_err *err) {
  cl_fhir_resource r;
  int rc = cl_fhir_read_ex(p, type, id, 0, flags, &r, err);
  if (rc)
    return rc;
  uint32_t v = r.current;
  for (;;) {
    rc = fn(ctx, &r, err);
    if (rc != 0 || --v == 0)
      return rc < 0 ? rc : 0;
    uint8_t h[32];
    res_hash(p, type, id, h);
    rc = read_hash(p, h, v, flags, &r, err);
    if (rc == CL_ENOTFOUND) /* sealed under an erased stream (a moved device) */
      return 0;
    if (rc)
      return rc;
  }
}

typedef struct each {
  cl_proj *p;
  int flags;
  size_t hoff; /* where the resource hash sits in the key */
  size_t klen;
  cl_fhir_fn fn;
  void *ctx;
  uint8_t *last;
} each;

static int each_key(void *ctx, const uint8_t *key, size_t kl, const uint8_t *val, size_t vl,
                    cl_err *err) {
  (void)val;
  (void)vl;
  each *e = ctx;
  if (kl != e->klen)
    return 0;
  cl_fhir_resource r;
  int rc = read_hash(e->p, key + e->hoff, 0, e->flags, &r, err);
  if (rc == CL_ENOTFOUND)
    return 0; /* changed meanwhile */
  if (rc)
    return rc;
  if (e->last)
    memcpy(e->last, key + e->hoff, 32);
  return e->fn(e->ctx, &r, err);
}

int cl_fhir_stream(cl_proj *p, const uint8_t tag[32], int type, int flags, cl_fhir_fn fn, void *ctx,
                   cl_err *err) {
  uint8_t prefix[33];
  memcpy(prefix, tag, 32);
  prefix[32] = (uint8_t)type;
  each e = {p, flags, 33, 65, fn, ctx, NULL};
  return cl_proj_scan(p, FAM_PAT, prefix, type ? 33 : 32, NULL, 0, each_key, &e, err);
}

int cl_fhir_scan_type(cl_proj *p, int type, const uint8_t *after, int flags, cl_fhir_fn fn,
                      void *ctx, uint8_t next[32], cl_err *err) {
  uint8_t prefix[1] = {(uint8_t)type}, from[34];
  size_t fl = 0;
  if (after != NULL) { /* the first key after `after` */
    from[0] = (uint8_t)type;
    memcpy(from + 1, after, 32);
    from[33] = 0;
    fl = 34;
  }
  each e = {p, flags, 1, 33, fn, ctx, next};
  return cl_proj_scan(p, FAM_TYP, prefix, 1, fl ? from : NULL, fl, each_key, &e, err);
}

int cl_fhir_provenance_of(cl_proj *p, const char *type, const char *id, int flags, cl_fhir_fn fn,
                          void *ctx, cl_err *err) {
  uint8_t h[32];
  res_hash(p, type, id, h);
  each e = {p, flags, 32, 64, fn, ctx, NULL};
  return cl_proj_scan(p, FAM_REF, h, 32, NULL, 0, each_key, &e, err);
}

/* ---- snapshots (bulk export) ---- */

/* The version of the resource at h that snapshot s sees, into *out (no
 * json under CL_FHIR_NO_BODY). CL_ENOTFOUND: not in the snapshot. */
static int read_as_of(cl_proj *p, const uint8_t h[32], const cl_fhir_snapshot *s, int flags,
                      cl_fhir_resource *out, cl_err *err) {
  memset(out, 0, sizeof *out);
  cur c;
  int rc = load_cur(p, h, &c, err);
  if (rc)
    return rc;
  if (s->tags != NULL && cl_hmap_get(s->tags, c.tag) == NULL)
    return cl_err_set(err, CL_ENOTFOUND, "another stream");
  if (c.seq <= s->as_of) { /* the current version (the common case) */
    if (c.last_updated_ns < s->since_ns)
      return cl_err_set(err, CL_ENOTFOUND, "not updated since");
    if (!(flags & CL_FHIR_NO_BODY))
      return read_version(p, h, &c, c.version, flags, out, err);
    out->type = c.type;
    out->version = out->current = c.version;
    out->seq = c.seq;
    out->last_updated_ns = c.last_updated_ns;
    memcpy(out->tag, c.tag, 32);
    return 0;
  }
  /* changed after the snapshot: the newest version made at or before it */
  for (uint32_t ver = c.version - 1; ver >= 1; ver--) {
    if ((rc = read_version(p, h, &c, ver, flags & CL_FHIR_STORED, out, err)) != 0)
      return rc;
    if (out->seq <= s->as_of) {
      if (out->last_updated_ns < s->since_ns) {
        cl_fhir_resource_clear(out);
        return cl_err_set(err, CL_ENOTFOUND, "not updated since");
      }
      if (flags & CL_FHIR_NO_BODY) {
        sodium_memzero(out->json, out->len);
        free(out->json);
        out->json = NULL;
        out->len = 0;
      }
      return 0;
    }
    cl_fhir_resource_clear(out);
  }
  return cl_err_set(err, CL_ENOTFOUND, "made after the snapshot");
}

typedef struct snap_scan {
  cl_proj *p;
  const cl_fhir_snapshot *s;
  const uint8_t *last;
  int flags;
  cl_fhir_fn fn;
  void *ctx;
  uint8_t *key;
} snap_scan;

static int snap_key(void *ctx, const uint8_t *key, size_t kl, const uint8_t *val, size_t vl,
                    cl_err *err) {
  (void)val;
  (void)vl;
  snap_scan *sc = ctx;
  if (kl != 33)
    return 0;
  if (sc->last != NULL && memcmp(key + 1, sc->last, 32) > 0)
    return 1;
  cl_fhir_resource r;
  int rc = read_as_of(sc->p, key + 1, sc->s, sc->flags, &r, err);
  if (rc == CL_ENOTFOUND)
    return 0;
  if (rc)
    return rc;
  memcpy(sc->key, key + 1, 32);
  return sc->fn(sc->ctx, &r, err);
}

int cl_fhir_scan_snapshot(cl_proj *p, int type, const cl_fhir_snapshot *s, const uint8_t *after,
                          const uint8_t *last, int flags, cl_fhir_fn fn, void *ctx, uint8_t key[32],
                          cl_err *err) {
  uint8_t prefix[1] = {(uint8_t)type}, from[34];
  if (after != NULL) { /* the first key after `after` */
    from[0] = (uint8_t)type;
    memcpy(from + 1, after, 32);
    from[33] = 0;
  }
  snap_scan sc = {p, s, last, flags, fn, ctx, key};
  return cl_proj_scan(p, FAM_TYP, prefix, 1, after ? from : NULL, after ? 34 : 0, snap_key, &sc,
                      err);
}

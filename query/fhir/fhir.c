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

/* The committed cur record of type/h, without its index keys. */
static int load_cur(cl_proj *p, int type, const uint8_t h[32], cur *c, cl_err *err) {
  uint8_t *v, k[CUR_KEY];
  size_t vl;
  cur_key(type, h, k);
  int rc = cl_proj_get(p, FAM_CUR, k, sizeof k, &v, &vl, err);
  if (rc)
    return rc;
  rc = cur_unpack_head(v, vl, c, err);
  cl_free(v);
  return rc;
}

/* *out from the opened version value v (vl bytes: header || stored JSON;
 * cl_malloc'd, taken: wiped and freed here, also on error) of version
 * `version` of the resource whose cur record is c; under CL_FHIR_NO_BODY
 * its header alone (json NULL). */
static int take_version(const cur *c, uint32_t version, uint8_t *v, size_t vl, int flags,
                        cl_fhir_resource *out, cl_err *err) {
  memset(out, 0, sizeof *out);
  fj_buf b = {0};
  const char *json = NULL;
  size_t n = 0;
  int rc = flags & CL_FHIR_NO_BODY ? (vl < VER_HDR ? cl_err_set(err, CL_ECORRUPT,
                                                                 "fhir: short version value")
                                                    : 0)
                                   : stored_json(c->type, v, vl, &b, &json, &n, err);
  if (rc) {
    fj_buf_free(&b);
    sodium_memzero(v, vl);
    cl_free(v);
    return rc;
  }
  if (flags & CL_FHIR_NO_BODY) {
    /* the header only */
  } else if (flags & CL_FHIR_STORED) {
    out->len = n;
    if ((out->json = malloc(out->len + 1)) != NULL) {
      memcpy(out->json, json, out->len);
      out->json[out->len] = '\0';
    }
  } else {
    out->json = fj_finish(json, n, &out->len);
  }
  fj_buf_free(&b);
  out->type = c->type;
  out->version = version;
  out->current = c->version;
  memcpy(out->tag, c->tag, 32);
  out->seq = rd64(v);
  out->last_updated_ns = (int64_t)rd64(v + 8);
  memcpy(out->event_id, v + 16, 16);
  sodium_memzero(v, vl);
  cl_free(v);
  if (out->json == NULL && !(flags & CL_FHIR_NO_BODY))
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  return 0;
}

/* Version `version` (0: the current one) of the resource at h whose cur
 * record is c. */
static int read_version(cl_proj *p, const uint8_t h[32], const cur *c, uint32_t version, int flags,
                        cl_fhir_resource *out, cl_err *err) {
  memset(out, 0, sizeof *out);
  uint8_t *v;
  size_t vl;
  if (version == 0)
    version = c->version;
  if (version > c->version)
    return cl_err_set(err, CL_ENOTFOUND, "no version %u (the current one is %u)", version,
                      c->version);
  uint8_t vk[VER_KEY];
  ver_key(c->type, h, version, vk);
  int rc = cl_proj_get_sealed(p, FAM_VER, vk, sizeof vk, &v, &vl, err);
  if (rc == CL_EERASED)
    return cl_err_set(err, CL_ENOTFOUND, "erased");
  if (rc)
    return rc;
  return take_version(c, version, v, vl, flags, out, err);
}

/* The Provenance sealed at `k` (its `ver` entry, fhir_int.h) opened into
 * *v (vl bytes, returned-owned: take_version takes it), with in *c the
 * record `cur` would hold: version 1, the tag it is sealed under (its
 * event's stream), the header's seq and time. */
static int open_prov(cl_proj *p, const uint8_t k[VER_KEY], const uint8_t *sealed, size_t sl, cur *c,
                     uint8_t **v, size_t *vl, cl_err *err) {
  memset(c, 0, sizeof *c);
  if (sl < 32)
    return cl_err_set(err, CL_ECORRUPT, "fhir: short sealed Provenance");
  int rc = cl_proj_open_sealed(p, FAM_VER, k, VER_KEY, sealed, sl, v, vl, err);
  if (rc)
    return rc;
  if (*vl < VER_HDR) {
    sodium_memzero(*v, *vl);
    cl_free(*v);
    return cl_err_set(err, CL_ECORRUPT, "fhir: short version value");
  }
  c->version = 1;
  c->type = CL_FHIR_Provenance;
  memcpy(c->tag, sealed, 32);
  c->seq = rd64(*v);
  c->last_updated_ns = (int64_t)rd64(*v + 8);
  return 0;
}

/* The Provenance whose `ver` key is k. */
static int read_prov(cl_proj *p, const uint8_t k[VER_KEY], uint32_t version, int flags,
                     cl_fhir_resource *out, cl_err *err) {
  memset(out, 0, sizeof *out);
  if (version > 1)
    return cl_err_set(err, CL_ENOTFOUND, "no version %u (the current one is 1)", version);
  uint8_t *sealed, *v;
  size_t sl, vl;
  int rc = cl_proj_get(p, FAM_VER, k, VER_KEY, &sealed, &sl, err);
  if (rc)
    return rc;
  cur c;
  rc = open_prov(p, k, sealed, sl, &c, &v, &vl, err);
  cl_free(sealed);
  if (rc == CL_EERASED)
    return cl_err_set(err, CL_ENOTFOUND, "erased");
  if (rc)
    return rc;
  return take_version(&c, 1, v, vl, flags, out, err);
}

static int read_hash(cl_proj *p, int type, const uint8_t h[32], uint32_t version, int flags,
                     cl_fhir_resource *out, cl_err *err) {
  if (type == CL_FHIR_Provenance) {
    uint8_t k[VER_KEY];
    ver_key(type, h, 1, k);
    return read_prov(p, k, version, flags, out, err);
  }
  cur c;
  int rc = load_cur(p, type, h, &c, err);
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
  int t = cl_fhir_type_of(type);
  if (t == 0)
    return cl_err_set(err, CL_ENOTFOUND, "no resource type %s", type ? type : "(null)");
  if (id == NULL || id[0] == '\0' || strlen(id) >= CL_FHIR_ID_MAX)
    return cl_err_set(err, CL_ENOTFOUND, "no such id");
  uint8_t h[32];
  int rc = 0;
  if (t == CL_FHIR_Provenance) /* named by its event (fhir_int.h) */
    rc = prov_h_of(cl_proj_log(p), id, h, err);
  else
    res_hash(p, type, id, h);
  if (rc == 0)
    rc = read_hash(p, t, h, version, flags, out, err);
  else
    memset(out, 0, sizeof *out);
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
  int t = r.type; /* fn clears r */
  for (;;) {
    rc = fn(ctx, &r, err);
    if (rc != 0 || --v == 0)
      return rc < 0 ? rc : 0;
    uint8_t h[32];
    res_hash(p, type, id, h);
    rc = read_hash(p, t, h, v, flags, &r, err);
    if (rc == CL_ENOTFOUND) /* sealed under an erased stream (a moved device) */
      return 0;
    if (rc)
      return rc;
  }
}

/* A stream's resources (cl_fhir_stream), read in batches of up to MANY:
 * the `pat` scan names them (tag[32] || type u8 || H[32] per resource,
 * in key order, so their `cur` and `ver` keys are in order too), then
 * one batched read of their `cur` records and one of their current
 * versions; a stream's Provenances, named by the log's index of its
 * events (ascending seqs, so their keys are in order), one batched read.
 * A resource that changed or went in between is given as it is then, or
 * not at all. */
#define PAT_KEY 65
#define MANY 256
typedef struct each {
  cl_proj *p;
  int flags;
  cl_fhir_fn fn;
  void *ctx;
  int stop; /* fn said 1 */
  size_t n;
  uint8_t k[MANY][VER_KEY]; /* `cur` keys (their first CUR_KEY bytes), then `ver` keys */
  cur c[MANY];              /* the heads of the `cur` records read */
  size_t at[MANY];          /* the resources whose `cur` was read: their index */
  size_t nat;
} each;

/* The tail of a batch's callback: rc is the opening of version `version`
 * (plain, n) of the resource headed by c. An erased one is skipped. */
static int give_one(each *e, int rc, const cur *c, uint32_t version, uint8_t *plain, size_t n,
                    cl_err *err) {
  if (rc == CL_EERASED) {
    cl_err_clear(err);
    return 0;
  }
  cl_fhir_resource res;
  if (rc == 0)
    rc = take_version(c, version, plain, n, e->flags, &res, err);
  if (rc == 0) {
    rc = e->fn(e->ctx, &res, err);
    e->stop = rc == 1;
  }
  return rc;
}

/* keys[j], kl[j] = the first len bytes of e->k[at ? at[j] : j], j < n. */
static void batch_keys(const each *e, const size_t *at, size_t n, size_t len,
                       const uint8_t *keys[MANY], size_t kl[MANY]) {
  for (size_t j = 0; j < n; j++) {
    keys[j] = e->k[at ? at[j] : j];
    kl[j] = len;
  }
}

/* The version the batch's `ver` read gave for resource e->at[i]. */
static int got_version(void *ctx, size_t i, const uint8_t *val, size_t vl, cl_err *err) {
  each *e = ctx;
  if (val == NULL)
    return 0; /* gone meanwhile */
  size_t r = e->at[i];
  uint8_t *plain;
  size_t n;
  int rc = cl_proj_open_sealed(e->p, FAM_VER, e->k[r], VER_KEY, val, vl, &plain, &n, err);
  return give_one(e, rc, &e->c[r], e->c[r].version, plain, n, err);
}

/* The head of the `cur` record of resource i: its current version's key. */
static int got_cur(void *ctx, size_t i, const uint8_t *val, size_t vl, cl_err *err) {
  each *e = ctx;
  if (val == NULL)
    return 0; /* gone meanwhile */
  int rc = cur_unpack_head(val, vl, &e->c[i], err);
  if (rc)
    return rc;
  be32(e->k[i] + CUR_KEY, e->c[i].version);
  e->at[e->nat++] = i;
  return 0;
}

/* Reads and gives the batch of resources named so far. */
static int give_batch(each *e, cl_err *err) {
  const uint8_t *keys[MANY];
  size_t kl[MANY];
  batch_keys(e, NULL, e->n, CUR_KEY, keys, kl);
  e->nat = 0;
  int rc = cl_proj_get_many(e->p, FAM_CUR, e->n, keys, kl, got_cur, e, err);
  batch_keys(e, e->at, e->nat, VER_KEY, keys, kl);
  if (rc == 0)
    rc = cl_proj_get_many(e->p, FAM_VER, e->nat, keys, kl, got_version, e, err);
  e->n = 0;
  return rc;
}

static int each_key(void *ctx, const uint8_t *key, size_t kl, const uint8_t *val, size_t vl,
                    cl_err *err) {
  (void)val;
  (void)vl;
  each *e = ctx;
  if (kl != PAT_KEY)
    return 0;
  memcpy(e->k[e->n++], key + 32, CUR_KEY); /* type u8 || H */
  return e->n == MANY ? give_batch(e, err) : 0;
}

/* The Provenance the batch's read gave for the event of e->k[i]. */
static int got_prov(void *ctx, size_t i, const uint8_t *val, size_t vl, cl_err *err) {
  each *e = ctx;
  if (val == NULL)
    return 0; /* no resource made, erased, or not folded yet */
  cur c;
  uint8_t *v;
  size_t n;
  int rc = open_prov(e->p, e->k[i], val, vl, &c, &v, &n, err);
  return give_one(e, rc, &c, 1, v, n, err);
}

static int give_provs(each *e, cl_err *err) {
  const uint8_t *keys[MANY];
  size_t kl[MANY];
  batch_keys(e, NULL, e->n, VER_KEY, keys, kl);
  int rc = cl_proj_get_many(e->p, FAM_VER, e->n, keys, kl, got_prov, e, err);
  e->n = 0;
  return rc;
}

/* An event of the stream: its Provenance, if it made one and is folded. */
static int each_event(void *ctx, uint64_t seq, cl_err *err) {
  each *e = ctx;
  prov_key(seq, e->k[e->n++]);
  return e->n == MANY ? give_provs(e, err) : 0;
}

int cl_fhir_stream(cl_proj *p, const uint8_t tag[32], int type, int flags, cl_fhir_fn fn, void *ctx,
                   cl_err *err) {
  uint8_t prefix[33];
  memcpy(prefix, tag, 32);
  prefix[32] = (uint8_t)type;
  each *e = cl_malloc(sizeof *e);
  if (e == NULL)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  e->p = p;
  e->flags = flags;
  e->fn = fn;
  e->ctx = ctx;
  e->stop = 0;
  e->n = 0;
  int rc = 0;
  if (type != CL_FHIR_Provenance) {
    rc = cl_proj_scan(p, FAM_PAT, prefix, type ? 33 : 32, NULL, 0, each_key, e, err);
    if (rc == 0 && !e->stop && e->n > 0)
      rc = give_batch(e, err);
  }
  /* the stream's Provenances have no `pat` key: its events name them */
  if (rc == 0 && !e->stop && (type == 0 || type == CL_FHIR_Provenance)) {
    e->n = 0;
    rc = cl_log_stream_seqs(cl_proj_log(p), tag, each_event, e, err);
    if (rc == 0 && !e->stop && e->n > 0)
      rc = give_provs(e, err);
  }
  cl_free(e);
  return rc < 0 ? rc : 0;
}

/* A Provenance is named by its event's id, and the header of each version
 * of a resource names the event that made it: so the versions of type/id
 * lead to every Provenance that targets it, newest first, with no index
 * entry per target. */
typedef struct prov_of {
  cl_proj *p;
  int flags;
  cl_fhir_fn fn;
  void *ctx;
  uint64_t last; /* the event of the version before (an event making two versions of one
                   resource has one Provenance) */
  int have_last;
} prov_of;

static int each_version(void *ctx, cl_fhir_resource *r, cl_err *err) {
  prov_of *po = ctx;
  uint64_t seq = r->seq;
  cl_fhir_resource_clear(r);
  if (po->have_last && seq == po->last)
    return 0;
  po->last = seq;
  po->have_last = 1;
  uint8_t h[32];
  prov_h(seq, h);
  cl_fhir_resource pr;
  int rc = read_hash(po->p, CL_FHIR_Provenance, h, 0, po->flags, &pr, err);
  if (rc == CL_ENOTFOUND) { /* erased, or not folded yet */
    cl_err_clear(err);
    return 0;
  }
  return rc ? rc : po->fn(po->ctx, &pr, err);
}

int cl_fhir_provenance_of(cl_proj *p, const char *type, const char *id, int flags, cl_fhir_fn fn,
                          void *ctx, cl_err *err) {
  prov_of po = {p, flags, fn, ctx, 0, 0};
  /* the versions' headers are enough: their JSON is not made */
  int rc = cl_fhir_history(p, type, id, CL_FHIR_NO_BODY, each_version, &po, err);
  if (rc == CL_ENOTFOUND) { /* no such resource: no Provenance either */
    cl_err_clear(err);
    return 0;
  }
  return rc;
}

/* ---- scans of a type, and snapshots (bulk export) ----
 *
 * A type's resources are one range of `cur` (type || H) and their versions
 * one range of `ver` (type || H || version), in the same order. A scan
 * reads `cur` in chunks, notes the version of each resource it will give,
 * then reads those versions with one pass over `ver` (a merge: no lookup
 * per resource), unless the chunk keeps few of the resources it read (a
 * Patient-level or Group export), when looking each one up reads less. */

/* Resources a chunk holds: about what one call of the export's file
 * reads gives (1 MiB of NDJSON). */
#define CHUNK 512

/* A resource a chunk gives. */
typedef struct want {
  uint8_t h[32];
  cur c;            /* its cur record (fixed part: keys NULL) */
  uint32_t version; /* the version to give; 0: the snapshot's is an older one, found by reads */
} want;

typedef struct snap_scan {
  cl_proj *p;
  int type;
  const cl_fhir_snapshot *s;
  const uint8_t *last;
  int flags;
  cl_fhir_fn fn;
  void *ctx;
  uint8_t *key;
  int stop; /* fn said 1 */
  /* the chunk */
  want *w;
  size_t n, i; /* wants, and the next one to give */
  size_t seen; /* cur records read */
  int full;    /* the cur scan stopped with the chunk full: more may follow */
  uint8_t resume[32];
} snap_scan;

/* Gives resource w (r returned-owned) to the caller. */
static int give(snap_scan *sc, const want *w, cl_fhir_resource *r, cl_err *err) {
  memcpy(sc->key, w->h, 32);
  int rc = sc->fn(sc->ctx, r, err);
  if (rc == 1)
    sc->stop = 1;
  return rc;
}

/* The version of w the snapshot sees, into *out (no json under
 * CL_FHIR_NO_BODY), by lookups. CL_ENOTFOUND: not in the snapshot. */
static int read_as_of(snap_scan *sc, const want *w, cl_fhir_resource *out, cl_err *err) {
  const cur *c = &w->c;
  int flags = sc->flags;
  memset(out, 0, sizeof *out);
  if (w->version != 0) { /* the current version (the common case) */
    if (!(flags & CL_FHIR_NO_BODY))
      return read_version(sc->p, w->h, c, w->version, flags, out, err);
    out->type = c->type;
    out->version = out->current = c->version;
    out->seq = c->seq;
    out->last_updated_ns = c->last_updated_ns;
    memcpy(out->tag, c->tag, 32);
    return 0;
  }
  /* changed after the snapshot: the newest version made at or before it */
  for (uint32_t ver = c->version - 1; ver >= 1; ver--) {
    int rc = read_version(sc->p, w->h, c, ver, flags & (CL_FHIR_STORED | CL_FHIR_NO_BODY), out,
                          err);
    if (rc)
      return rc;
    if (out->seq <= sc->s->as_of) {
      if (out->last_updated_ns < sc->s->since_ns) {
        cl_fhir_resource_clear(out);
        return cl_err_set(err, CL_ENOTFOUND, "not updated since");
      }
      return 0;
    }
    cl_fhir_resource_clear(out);
  }
  return cl_err_set(err, CL_ENOTFOUND, "made after the snapshot");
}

/* Gives w found by lookups; one that is not there (any more) is skipped. */
static int give_read(snap_scan *sc, const want *w, cl_err *err) {
  cl_fhir_resource r;
  int rc = read_as_of(sc, w, &r, err);
  if (rc == CL_ENOTFOUND)
    return 0;
  return rc ? rc : give(sc, w, &r, err);
}

/* A cur record of the type's range: into the chunk if the snapshot has
 * it (given at once under CL_FHIR_NO_BODY, which needs nothing more). */
static int collect_cur(void *ctx, const uint8_t *key, size_t kl, const uint8_t *val, size_t vl,
                       cl_err *err) {
  snap_scan *sc = ctx;
  if (kl != CUR_KEY)
    return 0;
  if (sc->last != NULL && memcmp(key + 1, sc->last, 32) > 0)
    return 1;
  want *w = &sc->w[sc->n];
  int rc = cur_unpack_head(val, vl, &w->c, err);
  if (rc)
    return rc;
  memcpy(sc->resume, key + 1, 32);
  sc->seen++;
  const cl_fhir_snapshot *s = sc->s;
  if (s->tags != NULL && cl_hmap_get(s->tags, w->c.tag) == NULL)
    return 0; /* another stream */
  if (w->c.seq <= s->as_of) {
    if (w->c.last_updated_ns < s->since_ns)
      return 0; /* not updated since */
    w->version = w->c.version;
  } else if (w->c.version > 1) {
    w->version = 0; /* an older version may be in the snapshot */
  } else {
    return 0; /* made after the snapshot */
  }
  memcpy(w->h, key + 1, 32);
  if (sc->flags & CL_FHIR_NO_BODY) {
    rc = give_read(sc, w, err);
    return rc != 0 ? rc : 0;
  }
  if (++sc->n < CHUNK)
    return 0;
  sc->full = 1;
  return 1;
}

/* A key of the type's `ver` range, merged with the chunk's wants (in the
 * same order): gives the version each one wants. */
static int merge_ver(void *ctx, const uint8_t *key, size_t kl, const uint8_t *val, size_t vl,
                     cl_err *err) {
  snap_scan *sc = ctx;
  if (kl != VER_KEY)
    return 0;
  while (sc->i < sc->n) {
    const want *w = &sc->w[sc->i];
    if (w->version == 0) { /* an older version: by lookups, in its turn */
      sc->i++;
      int rc = give_read(sc, w, err);
      if (rc)
        return rc;
      continue;
    }
    int c = memcmp(key + 1, w->h, 32);
    uint32_t v = rd32(key + 33);
    if (c < 0 || (c == 0 && v < w->version))
      return 0; /* a resource or a version not wanted: read on */
    sc->i++;
    if (c > 0 || v > w->version)
      continue; /* its version is gone (erased meanwhile) */
    uint8_t *plain;
    size_t n;
    int rc = cl_proj_open_sealed(sc->p, FAM_VER, key, kl, val, vl, &plain, &n, err);
    if (rc == CL_EERASED)
      return 0;
    cl_fhir_resource r;
    if (rc == 0)
      rc = take_version(&w->c, w->version, plain, n, sc->flags, &r, err);
    return rc ? rc : give(sc, w, &r, err);
  }
  return 1; /* the chunk is given */
}

/* Gives the chunk's wants, in order. */
static int give_chunk(snap_scan *sc, cl_err *err) {
  size_t fast = 0, first = sc->n;
  for (size_t k = 0; k < sc->n; k++)
    if (sc->w[k].version != 0) {
      fast++;
      if (first == sc->n)
        first = k;
    }
  sc->i = 0;
  int rc = 0;
  /* a merge reads every version of the chunk's range: worth it when the
   * chunk keeps most of what it read */
  int merge = fast >= 8 && fast * 2 >= sc->seen;
  if (merge) {
    uint8_t prefix[1] = {(uint8_t)sc->type}, from[VER_KEY];
    ver_key(sc->type, sc->w[first].h, 0, from);
    rc = cl_proj_scan(sc->p, FAM_VER, prefix, 1, from, sizeof from, merge_ver, sc, err);
    if (rc || sc->stop)
      return rc;
    /* the rest (from the first whose version is gone onwards; none usually): by lookups */
  }
  for (; rc == 0 && !sc->stop && sc->i < sc->n; sc->i++) {
    const want *w = &sc->w[sc->i];
    if (merge && w->version != 0)
      continue; /* the merge did not find it: gone */
    rc = give_read(sc, w, err);
  }
  return rc < 0 ? rc : 0;
}

/* A Provenance of the `ver` range (the type's only one, fhir_int.h): given
 * if the snapshot has it. */
static int scan_prov(void *ctx, const uint8_t *key, size_t kl, const uint8_t *val, size_t vl,
                     cl_err *err) {
  snap_scan *sc = ctx;
  if (kl != VER_KEY)
    return 0;
  if (sc->last != NULL && memcmp(key + 1, sc->last, 32) > 0)
    return 1;
  const cl_fhir_snapshot *s = sc->s;
  uint64_t seq = rd64(key + 1);
  if (seq > s->as_of)
    return 0; /* made after the snapshot (the key holds its event's seq) */
  if (vl < 32)
    return cl_err_set(err, CL_ECORRUPT, "fhir: short sealed Provenance");
  if (s->tags != NULL && cl_hmap_get(s->tags, val) == NULL)
    return 0; /* another stream (the sealed value leads with its tag) */
  cl_fhir_resource r;
  want w;
  memcpy(w.h, key + 1, 32);
  if ((sc->flags & CL_FHIR_NO_BODY) && s->since_ns <= 0) { /* the key says enough */
    memset(&r, 0, sizeof r);
    r.type = CL_FHIR_Provenance;
    r.version = r.current = 1;
    r.seq = seq;
    memcpy(r.tag, val, 32);
    return give(sc, &w, &r, err);
  }
  cur c;
  uint8_t *v;
  size_t n;
  int rc = open_prov(sc->p, key, val, vl, &c, &v, &n, err);
  if (rc == CL_EERASED) {
    cl_err_clear(err);
    return 0;
  }
  if (rc)
    return rc;
  if (c.last_updated_ns < s->since_ns) {
    sodium_memzero(v, n);
    cl_free(v);
    return 0; /* not updated since */
  }
  if ((rc = take_version(&c, 1, v, n, sc->flags, &r, err)) != 0)
    return rc;
  return give(sc, &w, &r, err);
}

/* The resources of `type` in snapshot s, from the first key >= from (NULL:
 * the type's first) up to `last`. */
static int scan_chunks(cl_proj *p, int type, const cl_fhir_snapshot *s, const uint8_t *after,
                       const uint8_t *last, int flags, cl_fhir_fn fn, void *ctx, uint8_t key[32],
                       cl_err *err) {
  snap_scan sc = {
      .p = p, .type = type, .s = s, .last = last, .flags = flags, .fn = fn, .ctx = ctx, .key = key};
  if (type == CL_FHIR_Provenance) { /* no `cur`: its versions, one each */
    uint8_t prefix[1] = {(uint8_t)type}, from[VER_KEY + 1];
    if (after != NULL) { /* the first key after every version of `after` */
      ver_key(type, after, UINT32_MAX, from);
      from[VER_KEY] = 0;
    }
    return cl_proj_scan(p, FAM_VER, prefix, 1, after ? from : NULL, after ? sizeof from : 0,
                        scan_prov, &sc, err);
  }
  if ((sc.w = malloc((flags & CL_FHIR_NO_BODY ? 1 : CHUNK) * sizeof *sc.w)) == NULL)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  uint8_t prefix[1] = {(uint8_t)type}, from[CUR_KEY + 1];
  int rc = 0, more = after != NULL;
  if (after != NULL)
    memcpy(sc.resume, after, 32);
  do {
    if (more) { /* the first key after resume */
      cur_key(type, sc.resume, from);
      from[CUR_KEY] = 0;
    }
    sc.n = sc.seen = 0;
    sc.full = 0;
    rc = cl_proj_scan(p, FAM_CUR, prefix, 1, more ? from : NULL, more ? sizeof from : 0,
                      collect_cur, &sc, err);
    if (rc == 0 && !sc.stop && sc.n > 0)
      rc = give_chunk(&sc, err);
    more = 1;
  } while (rc == 0 && !sc.stop && sc.full);
  free(sc.w);
  return rc;
}

int cl_fhir_scan_type(cl_proj *p, int type, const uint8_t *after, int flags, cl_fhir_fn fn,
                      void *ctx, uint8_t next[32], cl_err *err) {
  /* the current version of each: the snapshot of now */
  cl_fhir_snapshot now = {.as_of = UINT64_MAX};
  uint8_t scratch[32];
  return scan_chunks(p, type, &now, after, NULL, flags & ~CL_FHIR_NO_BODY, fn, ctx,
                     next ? next : scratch, err);
}

int cl_fhir_scan_snapshot(cl_proj *p, int type, const cl_fhir_snapshot *s, const uint8_t *after,
                          const uint8_t *last, int flags, cl_fhir_fn fn, void *ctx, uint8_t key[32],
                          cl_err *err) {
  return scan_chunks(p, type, s, after, last, flags, fn, ctx, key, err);
}

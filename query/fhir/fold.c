/* The `fhir` projection's fold (fhir.h): each event of a patient's or a
 * device's stream becomes new resource versions, the Provenance of the
 * event and their index keys, written in the runner's transaction.
 *
 * Invariants:
 *  - deterministic: what the fold writes depends only on the events folded
 *    and the state they were folded over (a rebuild equals the live state
 *    byte for byte). Nothing it caches changes what it writes;
 *  - resource JSON reaches the store only sealed (cl_proj_put_sealed), and
 *    the plaintext buffers it is written in are wiped after each use;
 *  - the cache of `cur` records (state.idx/ents) holds, for every resource
 *    it has an entry for, what `cur` holds in the transaction over the
 *    committed state: every `cur` write of the fold updates an entry it
 *    has. The runner commits the batch or discards it (and the cache);
 *  - the `known` filter, when kept, has every resource the state holds.
 *
 * Cost (docs/fhir.md, Performance): the fold writes the stored form itself
 * (fj.h's writer): a resource's members from the mapper's jansson tree with
 * meta spliced in, and the Provenance of every event straight from the
 * event, with no tree at all (provenance.c). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/fhir/fhir.h"
#include "query/fhir/fhir_int.h"
#include "query/fhir/fj.h"
#include "query/fhir/fj_parse.h"
#include "query/fhir/known.h"
#include "store/alloc.h"
#include "store/event.h"
#include "store/hmap.h"

static const char *const families[NFAM] = {"cur", "ver", "pat"};

/* The fold's version: bump when the mapping or the storage changes (3:
 * `cur` and `ver` keys led by the type, no `typ` family; 4: an
 * EARLY_WARNING IssueDetected no longer makes an Observation, the checker
 * stores NEWS2 scores as ObservationRecorded; 5: Provenances stored
 * packed; 6: no `ref` family: the versions of a target name the events
 * whose Provenances target it, cl_fhir_provenance_of; 7: a Provenance is
 * its `ver` entry alone, no `cur` or `pat` key: fhir_int.h; 8: `cur`
 * holds the content digest of an updated resource's version; 9: resource
 * JSON compressed before it is sealed, zj.h). */
#define FHIR_VERSION 9

/* Cache entries kept from one batch to the next; past this the cache
 * starts over at the end of a batch (memory stays bounded). */
#define CACHE_MAX 8192

/* The most memory the filter of known resources takes (then reads). */
#define KNOWN_MAX ((size_t)64 << 20)

/* ---- per-runner state ---- */

/* A resource this batch created (for erasure). */
typedef struct created {
  uint8_t tag[32];
  uint8_t h[32];
  int type;
} created;

/* A resource's `cur` as the transaction sees it: present, or known absent. */
typedef struct cached {
  int present;
  cur c; /* c.keys owned by the entry */
} cached;

typedef struct state {
  /* The new resources of this batch (c[prev..n)) and of the batch before
   * (c[0..prev)), which may still be in flight (runner.c pipelines): an
   * erasure finds those two through here, the rest on disk. */
  created *c;
  size_t prev, n, cap;
  cl_hmap *idx; /* H[32] -> uint32 index into ents */
  cached *ents;
  size_t nents, capents;
  fp_target *t; /* the event's versions (reset per event) */
  size_t nt, capt;
  fj_buf buf;  /* the version being written: header || JSON; wiped after each */
  fj_buf zbuf; /* the same as stored: header || body (zj.h); wiped after each */
  zj *zj;
  /* Every resource the state has held since it was empty (a superset of
   * what it holds: erasure, a discarded batch and a reset only take
   * away), when the runner folded from event 1: a new resource, which it
   * has not seen, needs no read of `cur`. NULL: not kept. */
  cl_fhir_known *known;
} state;

/* The state is empty (the fold starts at event 1): every resource it
 * makes from now on is new until `known` has seen it. */
static void known_reset(state *s) {
  cl_fhir_known_free(s->known);
  s->known = cl_fhir_known_new(KNOWN_MAX);
}

static void cache_clear(state *s) {
  for (size_t i = 0; i < s->nents; i++)
    cur_free(&s->ents[i].c);
  s->nents = 0;
  cl_hmap_clear(s->idx);
}

static void *state_new(void) {
  state *s = calloc(1, sizeof *s);
  if (s != NULL &&
      ((s->idx = cl_hmap_new(32, sizeof(uint32_t))) == NULL || (s->zj = zj_new()) == NULL)) {
    cl_hmap_free(s->idx);
    free(s);
    s = NULL;
  }
  return s;
}

static void state_free(void *v) {
  state *s = v;
  if (s == NULL)
    return;
  cache_clear(s);
  cl_hmap_free(s->idx);
  cl_fhir_known_free(s->known);
  free(s->ents);
  free(s->c);
  free(s->t);
  fj_buf_free(&s->buf);
  fj_buf_free(&s->zbuf);
  zj_free(s->zj);
  free(s);
}

/* The batch was not committed (or the state was reset): forget it all. */
static void discard(void *v) {
  state *s = v;
  s->prev = s->n = 0;
  s->nt = 0;
  cache_clear(s);
  fj_buf_wipe(&s->buf);
  fj_buf_wipe(&s->zbuf);
}

static int batch_end(cl_fold_ctx *f, cl_err *err) {
  (void)err;
  state *s = f->state;
  if (s->prev > 0)
    memmove(s->c, s->c + s->prev, (s->n - s->prev) * sizeof *s->c);
  s->n -= s->prev;
  s->prev = s->n;
  if (s->nents > CACHE_MAX)
    cache_clear(s);
  return 0;
}

static int note_created(state *s, const uint8_t tag[32], int type, const uint8_t h[32]) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 64;
    created *c = realloc(s->c, cap * sizeof *c);
    if (c == NULL)
      return -1;
    s->c = c;
    s->cap = cap;
  }
  memcpy(s->c[s->n].tag, tag, 32);
  memcpy(s->c[s->n].h, h, 32);
  s->c[s->n].type = type;
  s->n++;
  return 0;
}

/* Sets the entry of h: present with *c (its keys pass to the cache, also
 * on error, when they are freed), or absent (c NULL); *out (when not
 * NULL) the entry. `absent`: h has no entry (a miss just looked). */
static int cache_set_at(state *s, const uint8_t h[32], cur *c, int absent, cached **out,
                        cl_err *err) {
  uint32_t *i = absent ? NULL : cl_hmap_get(s->idx, h);
  cached *e;
  if (i != NULL) {
    e = &s->ents[*i];
    cur_free(&e->c);
  } else {
    if (s->nents == s->capents) {
      size_t cap = s->capents ? s->capents * 2 : 256;
      cached *ne = realloc(s->ents, cap * sizeof *ne);
      if (ne == NULL)
        goto oom;
      s->ents = ne;
      s->capents = cap;
    }
    uint32_t at = (uint32_t)s->nents;
    if (cl_hmap_put(s->idx, h, &at) == NULL)
      goto oom;
    e = &s->ents[s->nents++];
  }
  e->present = c != NULL;
  if (c != NULL)
    e->c = *c;
  else
    memset(&e->c, 0, sizeof e->c);
  if (out != NULL)
    *out = e;
  return 0;
oom:
  if (c != NULL)
    cur_free(c);
  return cl_err_set(err, CL_ENOMEM, "out of memory");
}

static int cache_set(state *s, const uint8_t h[32], cur *c, cl_err *err) {
  return cache_set_at(s, h, c, 0, NULL, err);
}

/* The `cur` of resource h (of `type`): *out a view (valid until the cache
 * changes), NULL if there is no such resource. */
static int cur_get(cl_fold_ctx *f, int type, const uint8_t h[32], const cur **out, cl_err *err) {
  state *s = f->state;
  uint32_t *i = cl_hmap_get(s->idx, h);
  if (i != NULL) {
    *out = s->ents[*i].present ? &s->ents[*i].c : NULL;
    return 0;
  }
  uint8_t *v, ck[CUR_KEY];
  size_t vl;
  cur c;
  cached *e = NULL;
  cur_key(type, h, ck);
  int rc = s->known != NULL && !cl_fhir_known_has(s->known, h)
               ? CL_ENOTFOUND
               : cl_proj_txn_get(f->txn, FAM_CUR, ck, sizeof ck, &v, &vl, err);
  if (rc == 0) {
    rc = cur_unpack(v, vl, &c, err);
    cl_free(v);
    if (rc == 0)
      rc = cache_set_at(s, h, &c, 1, &e, err);
  } else if (rc == CL_ENOTFOUND) {
    rc = cache_set_at(s, h, NULL, 1, &e, err);
  }
  if (rc)
    return rc;
  *out = e->present ? &e->c : NULL;
  return 0;
}

/* ---- one event being folded ---- */

typedef struct folding {
  cl_fold_ctx *f;
  const cl_event_view *ev;
} folding;

/* Version `version` of resource h (of `type`), parsed. */
static int txn_version(cl_proj_txn *t, int type, const uint8_t h[32], uint32_t version,
                       json_t **out, cl_err *err) {
  uint8_t k[VER_KEY], *v;
  size_t vl;
  ver_key(type, h, version, k);
  int rc = cl_proj_txn_get_sealed(t, FAM_VER, k, sizeof k, &v, &vl, err);
  if (rc == CL_EERASED)
    return cl_err_set(err, CL_ENOTFOUND, "erased");
  if (rc)
    return rc;
  fj_buf b = {0};
  const char *json = NULL;
  size_t n = 0;
  rc = stored_json(type, v, vl, &b, &json, &n, err);
  if (rc == 0) {
    json_error_t je;
    if ((*out = fj_parse(json, n, 0, &je)) == NULL)
      rc = cl_err_set(err, CL_ECORRUPT, "fhir: stored resource is not JSON: %s", je.text);
  }
  fj_buf_free(&b);
  sodium_memzero(v, vl);
  cl_free(v);
  return rc;
}

static int map_get(cl_fhir_map *m, const char *type, const char *id, json_t **out, cl_err *err) {
  folding *fo = m->impl;
  int t = cl_fhir_type_of(type);
  if (t == 0)
    return cl_err_set(err, CL_ENOTFOUND, "not found");
  uint8_t h[32];
  if (t == CL_FHIR_Provenance) { /* its version 1 alone, by its event's seq (fhir_int.h) */
    int rc = prov_h_of(fo->f->log, id, h, err);
    return rc ? rc : txn_version(fo->f->txn, t, h, 1, out, err);
  }
  res_hash(fo->f->proj, type, id, h);
  const cur *c;
  int rc = cur_get(fo->f, t, h, &c, err);
  if (rc)
    return rc;
  if (c == NULL)
    return cl_err_set(err, CL_ENOTFOUND, "not found");
  return txn_version(fo->f->txn, t, h, c->version, out, err);
}

/* json_equal of the two resources without their meta. */
static int same_but_meta(json_t *prev, json_t *res) {
  size_t np = json_object_size(prev) - (json_object_get(prev, "meta") != NULL);
  size_t nr = json_object_size(res) - (json_object_get(res, "meta") != NULL);
  if (np != nr)
    return 0;
  const char *k;
  json_t *v;
  json_object_foreach(res, k, v) {
    if (strcmp(k, "meta") == 0)
      continue;
    json_t *pv = json_object_get(prev, k);
    if (pv == NULL || !json_equal(v, pv))
      return 0;
  }
  return 1;
}

static int has_key(const ikey *keys, size_t n, const ikey *k) {
  for (size_t i = 0; i < n; i++)
    if (keys[i].fam == k->fam && keys[i].len == k->len && memcmp(keys[i].k, k->k, k->len) == 0)
      return 1;
  return 0;
}

/* The key every resource holds: pat (keys[0]; its type's index is `cur`
 * itself, whose keys lead with the type). */
#define BASE_KEYS 1
static void base_keys(const uint8_t tag[32], int type, const uint8_t h[32], ikey *keys) {
  keys[0].fam = FAM_PAT;
  keys[0].len = 65;
  memcpy(keys[0].k, tag, 32);
  keys[0].k[32] = (uint8_t)type;
  memcpy(keys[0].k + 33, h, 32);
}

/* Stores the version in the state's buffer (header and JSON, wiped here)
 * as version `version` of resource h, whose content digest is `digest`
 * (NULL: not kept), with index keys keys[0..n) (owned:
 * they pass to the cache, also on error), replacing `old` (NULL: a new
 * resource), and notes it as a target of the event's Provenance. */
static int store_version(folding *fo, int type, const char *id, const uint8_t h[32], const cur *old,
                         uint32_t version, const uint8_t *digest, ikey *keys, uint16_t n,
                         cl_err *err) {
  cl_fold_ctx *f = fo->f;
  const cl_event_view *ev = fo->ev;
  state *s = f->state;
  cur now = {.version = version,
             .type = (uint8_t)type,
             .seq = ev->seq,
             .last_updated_ns = ev->committed_at_ns,
             .nkeys = n,
             .keys = keys};
  memcpy(now.tag, ev->stream_tag, 32);
  if (digest != NULL) {
    now.has_digest = 1;
    memcpy(now.digest, digest, DIGEST);
  }
  if (!s->buf.oom) { /* the header, then the JSON compressed */
    fj_buf_raw(&s->zbuf, s->buf.p, VER_HDR);
    zj_pack(s->zj, s->buf.p + VER_HDR, s->buf.n - VER_HDR, &s->zbuf);
  }
  int rc = s->buf.oom || s->zbuf.oom ? cl_err_set(err, CL_ENOMEM, "out of memory") : 0;
  uint8_t vk[VER_KEY];
  ver_key(type, h, version, vk);
  if (rc == 0)
    rc = cl_proj_put_sealed(f->txn, FAM_VER, vk, sizeof vk, ev->stream_tag, s->zbuf.p, s->zbuf.n,
                            err);
  fj_buf_wipe(&s->buf);
  fj_buf_wipe(&s->zbuf);
  for (size_t i = 0; rc == 0 && old != NULL && i < old->nkeys; i++) /* keys it no longer has */
    if (!has_key(now.keys, now.nkeys, &old->keys[i]))
      rc = cl_proj_del(f->txn, old->keys[i].fam, old->keys[i].k, old->keys[i].len, err);
  for (size_t i = 0; rc == 0 && i < now.nkeys; i++)
    if (old == NULL || !has_key(old->keys, old->nkeys, &now.keys[i]))
      rc = cl_proj_put(f->txn, now.keys[i].fam, now.keys[i].k, now.keys[i].len, "", 0, err);
  if (rc == 0) {
    uint8_t small[512], *cv = small;
    size_t cl = cur_packed_size(&now);
    if (cl > sizeof small && (cv = cl_malloc(cl)) == NULL)
      rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    if (rc == 0) {
      uint8_t ck[CUR_KEY];
      cur_key(type, h, ck);
      cur_pack_into(&now, cv);
      rc = cl_proj_put(f->txn, FAM_CUR, ck, sizeof ck, cv, cl, err);
    }
    if (cv != small)
      cl_free(cv);
  }
  if (rc == 0 && old == NULL && note_created(s, ev->stream_tag, type, h))
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
  if (rc) {
    cur_free(&now);
    return rc;
  }
  if (old == NULL && s->known != NULL && cl_fhir_known_add(s->known, h) != 0) {
    cl_fhir_known_free(s->known); /* outgrown: reads instead */
    s->known = NULL;
  }
  /* `old` is a view into the cache: this ends it */
  if ((rc = cache_set(s, h, &now, err)) != 0)
    return rc;
  if (s->nt == s->capt) {
    size_t cap = s->capt ? s->capt * 2 : 16;
    fp_target *nt = realloc(s->t, cap * sizeof *nt);
    if (nt == NULL)
      return cl_err_set(err, CL_ENOMEM, "out of memory");
    s->t = nt;
    s->capt = cap;
  }
  fp_target *t = &s->t[s->nt++];
  t->type = type;
  t->version = version;
  memcpy(t->h, h, 32);
  snprintf(t->id, sizeof t->id, "%s", id);
  return 0;
}

static int cmp_key(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Feeds value v to h in a canonical form: a type byte, then strings and
 * keys with their lengths, numbers as 8 bytes, arrays in order, objects
 * with their keys sorted; so equal values (json_equal) feed equal bytes,
 * whatever the order of their members. 0, or -1 when out of memory. */
static int hash_value(crypto_generichash_state *h, const json_t *v) {
  uint8_t t = (uint8_t)json_typeof(v), n8[8];
  crypto_generichash_update(h, &t, 1);
  switch (json_typeof(v)) {
  case JSON_STRING: {
    size_t n = json_string_length(v);
    be64(n8, n);
    crypto_generichash_update(h, n8, 8);
    crypto_generichash_update(h, (const uint8_t *)json_string_value(v), n);
    return 0;
  }
  case JSON_INTEGER:
    be64(n8, (uint64_t)json_integer_value(v));
    crypto_generichash_update(h, n8, 8);
    return 0;
  case JSON_REAL: {
    double d = json_real_value(v);
    memcpy(n8, &d, 8);
    crypto_generichash_update(h, n8, 8);
    return 0;
  }
  case JSON_ARRAY: {
    size_t n = json_array_size(v);
    be64(n8, n);
    crypto_generichash_update(h, n8, 8);
    for (size_t i = 0; i < n; i++)
      if (hash_value(h, json_array_get(v, i)) != 0)
        return -1;
    return 0;
  }
  case JSON_OBJECT: {
    size_t n = json_object_size(v), i = 0;
    be64(n8, n);
    crypto_generichash_update(h, n8, 8);
    const char *small[16], **keys = n <= 16 ? small : malloc(n * sizeof *keys);
    if (keys == NULL)
      return -1;
    const char *k;
    json_t *m;
    json_object_foreach((json_t *)v, k, m) keys[i++] = k;
    qsort(keys, n, sizeof *keys, cmp_key);
    int rc = 0;
    for (i = 0; rc == 0 && i < n; i++) {
      size_t kl = strlen(keys[i]);
      be64(n8, kl);
      crypto_generichash_update(h, n8, 8);
      crypto_generichash_update(h, (const uint8_t *)keys[i], kl);
      rc = hash_value(h, json_object_get(v, keys[i]));
    }
    if (keys != small)
      free(keys);
    return rc;
  }
  default: /* true, false, null: the type says it all */
    return 0;
  }
}

/* The content digest of resource res (without meta): the projection's
 * keyed hash of a BLAKE2b of its canonical form (hash_value), so equal
 * content (json_equal) has an equal digest. */
static int content_digest(cl_proj *p, const json_t *res, uint8_t out[DIGEST], cl_err *err) {
  crypto_generichash_state h;
  uint8_t d[32];
  crypto_generichash_init(&h, NULL, 0, sizeof d);
  int rc = hash_value(&h, res);
  crypto_generichash_final(&h, d, sizeof d);
  sodium_memzero(&h, sizeof h);
  if (rc != 0)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  uint8_t k[32];
  cl_proj_hash(p, d, sizeof d, k); /* keyed: no guessing the content from cur */
  memcpy(out, k, DIGEST);
  return 0;
}

static int map_put(cl_fhir_map *m, json_t *res, cl_err *err) {
  folding *fo = m->impl;
  cl_fold_ctx *f = fo->f;
  state *s = f->state;
  json_t *jtype = json_object_get(res, "resourceType"), *jid = json_object_get(res, "id");
  const char *tname = json_string_value(jtype), *id = json_string_value(jid);
  int type = cl_fhir_type_of(tname);
  if (type == 0 || type == CL_FHIR_Provenance || id == NULL || id[0] == '\0' ||
      strlen(id) >= CL_FHIR_ID_MAX) {
    json_decref(res);
    return cl_err_set(err, CL_EINVAL,
                      "fhir: a mapper put a Provenance, or a resource without a type of ours or "
                      "an id");
  }
  uint8_t h[32];
  res_hash(f->proj, tname, id, h);
  const cur *old;
  uint8_t dg[DIGEST];
  int has_dg = 0;
  int rc = cur_get(f, type, h, &old, err);
  if (rc == 0 && old != NULL) {
    json_object_del(res, "meta"); /* replaced below; not content */
    int same = 0;
    if (old->has_digest && memcmp(old->tag, fo->ev->stream_tag, 32) == 0) {
      /* its digest is known, and it is sealed under this event's stream
       * (not erased): the current version need not be read */
      rc = content_digest(f->proj, res, dg, err);
      has_dg = rc == 0;
      same = rc == 0 && memcmp(dg, old->digest, DIGEST) == 0;
    } else {
      json_t *prev;
      rc = txn_version(f->txn, type, h, old->version, &prev, err);
      if (rc == 0) {
        same = same_but_meta(prev, res);
        json_decref(prev);
      } else if (rc == CL_ENOTFOUND) { /* an erased version: a new one follows it */
        rc = 0;
      }
      if (rc == 0 && !same && old->version >= 2) { /* a third version: keep its digest */
        rc = content_digest(f->proj, res, dg, err);
        has_dg = rc == 0;
      }
    }
    if (same) { /* the event changes nothing here: no version */
      json_decref(res);
      return 0;
    }
  }
  ikey *keys = rc == 0 ? cl_malloc(BASE_KEYS * sizeof *keys) : NULL;
  if (rc == 0 && keys == NULL)
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
  if (rc) {
    json_decref(res);
    return rc;
  }
  uint32_t version = old != NULL ? old->version + 1 : 1;
  uint16_t nkeys = BASE_KEYS;
  base_keys(fo->ev->stream_tag, type, h, keys);
  /* the stored form: resourceType, id, meta, then the other members in
   * their order (a meta the mapper read back is replaced) */
  fj_buf *b = &s->buf;
  fp_write_header(b, fo->ev);
  fj_buf_lit(b, "{\"resourceType\":");
  fj_buf_value(b, jtype);
  fj_buf_lit(b, ",\"id\":");
  fj_buf_value(b, jid);
  fp_write_meta(b, version, fo->ev->committed_at_ns);
  const char *k;
  json_t *v;
  json_object_foreach(res, k, v) {
    if (strcmp(k, "resourceType") == 0 || strcmp(k, "id") == 0 || strcmp(k, "meta") == 0)
      continue;
    fj_buf_lit(b, ",");
    fj_buf_cstr(b, k);
    fj_buf_lit(b, ":");
    fj_buf_value(b, v);
  }
  fj_buf_lit(b, "}");
  rc = store_version(fo, type, id, h, old, version, has_dg ? dg : NULL, keys, nkeys, err);
  json_decref(res);
  return rc;
}

static const cl_fhir_map_ops store_ops = {map_get, map_put};

/* ---- corrections ---- */

/* The status member and value that retract a resource of `type`. */
static void retract(json_t *r, int type) {
  switch (type) {
  case CL_FHIR_Patient:
    json_object_set_new(r, "active", json_false());
    break;
  case CL_FHIR_Condition:
  case CL_FHIR_AllergyIntolerance: {
    /* R4: no clinicalStatus when the verification status is entered-in-error */
    const char *sys = type == CL_FHIR_Condition
                          ? "http://terminology.hl7.org/CodeSystem/condition-ver-status"
                          : "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification";
    json_object_del(r, "clinicalStatus");
    /* con-4: an abatement needs a clinical status; a retracted condition has neither */
    static const char *const abatement[] = {"abatementDateTime", "abatementAge", "abatementPeriod",
                                            "abatementRange", "abatementString"};
    for (size_t i = 0; i < sizeof abatement / sizeof abatement[0]; i++)
      json_object_del(r, abatement[i]);
    json_object_set_new(r, "verificationStatus",
                        fj_concept_lit(sys, "entered-in-error", "Entered in Error"));
    break;
  }
  case CL_FHIR_Provenance:
    break;
  default:
    json_object_set_new(r, "status", json_string("entered-in-error"));
    break;
  }
}

/* Retracts every resource the event `eid` (of stream `tag`) changed, but
 * those in `keep` ("Type/id" strings). */
static int retract_event(cl_fhir_map *m, const ProtobufCBinaryData *eid, json_t *keep,
                         cl_err *err) {
  char uuid[37];
  if (!fj_uuid_text(eid, uuid))
    return 0; /* names no event: nothing to retract */
  json_t *prov;
  int rc = map_get(m, "Provenance", uuid, &prov, err);
  if (rc == CL_ENOTFOUND)
    return 0; /* the event made no resources (or is not in this view) */
  if (rc)
    return rc;
  json_t *targets = json_object_get(prov, "target");
  for (size_t i = 0; rc == 0 && i < json_array_size(targets); i++) {
    const char *ref = json_string_value(json_object_get(json_array_get(targets, i), "reference"));
    const char *slash = ref ? strchr(ref, '/') : NULL;
    const char *hist = ref ? strstr(ref, "/_history/") : NULL;
    if (slash == NULL || hist == NULL || hist <= slash)
      continue;
    char tname[64], id[CL_FHIR_ID_MAX];
    snprintf(tname, sizeof tname, "%.*s", (int)(slash - ref), ref);
    snprintf(id, sizeof id, "%.*s", (int)(hist - slash - 1), slash + 1);
    int skip = 0;
    for (size_t j = 0; j < json_array_size(keep); j++) {
      const char *k = json_string_value(json_array_get(keep, j));
      if (k != NULL && strncmp(k, ref, (size_t)(hist - ref)) == 0 && k[hist - ref] == '/')
        skip = 1;
    }
    if (skip)
      continue;
    json_t *r;
    if ((rc = map_get(m, tname, id, &r, err)) == CL_ENOTFOUND) {
      rc = 0;
      continue;
    }
    if (rc)
      break;
    json_object_del(r, "meta");
    retract(r, cl_fhir_type_of(tname));
    rc = map_put(m, r, err);
  }
  json_decref(prov);
  return rc;
}

static int correct(cl_fhir_map *m, cl_err *err) {
  const Clinlog__V1__Event *e = m->ev;
  if (e->body_case == CLINLOG__V1__EVENT__BODY_ENTERED_IN_ERROR)
    return retract_event(m, &e->entered_in_error->corrected_event_id, NULL, err);
  /* Amended: what the replacement rewrote stays as it wrote it */
  const Clinlog__V1__Amended *a = e->amended;
  char uuid[37];
  json_t *keep = json_array(), *prov = NULL;
  int rc = 0;
  if (fj_uuid_text(&a->replacement_event_id, uuid)) {
    rc = map_get(m, "Provenance", uuid, &prov, err);
    if (rc == CL_ENOTFOUND)
      rc = 0;
    json_t *targets = json_object_get(prov, "target");
    for (size_t i = 0; i < json_array_size(targets); i++)
      json_array_append(keep, json_object_get(json_array_get(targets, i), "reference"));
  }
  if (rc == 0)
    rc = retract_event(m, &a->amended_event_id, keep, err);
  json_decref(prov);
  json_decref(keep);
  return rc;
}

/* ---- Provenance ---- */

/* The Provenance of the event (provenance.c writes it): its `ver` entry
 * as version 1, and nothing else (fhir_int.h). Its targets find it by
 * their versions' headers, which name this event (cl_fhir_provenance_of);
 * its stream finds it by the log's index of the stream's events
 * (cl_fhir_stream, erase). A Provenance is always new: it is named by the
 * event's id, which the log holds once (ids are never reused) and a state
 * folds once, so there is no current version to read or compare with. */
static int provenance(folding *fo, cl_fhir_map *m, cl_err *err) {
  const cl_event_view *ev = fo->ev;
  state *s = fo->f->state;
  if (s->nt > PROV_MAX_TARGETS)
    return cl_err_set(err, CL_EINVAL, "fhir: an event changing over %d resources",
                      PROV_MAX_TARGETS);
  uint8_t vk[VER_KEY];
  prov_key(ev->seq, vk);
  fj_buf *b = &s->buf;
  fp_write_provenance(b, ev, m->ev, s->t, s->nt);
  int rc = b->oom ? cl_err_set(err, CL_ENOMEM, "out of memory")
                  : cl_proj_put_sealed(fo->f->txn, FAM_VER, vk, sizeof vk, ev->stream_tag, b->p,
                                       b->n, err);
  fj_buf_wipe(b);
  return rc;
}

/* ---- erasure ---- */

static int forget_resource(cl_fold_ctx *f, int type, const uint8_t h[32], cl_err *err) {
  const cur *c;
  int rc = cur_get(f, type, h, &c, err);
  if (rc || c == NULL)
    return rc; /* an error, or already forgotten */
  for (size_t i = 0; rc == 0 && i < c->nkeys; i++)
    rc = cl_proj_del(f->txn, c->keys[i].fam, c->keys[i].k, c->keys[i].len, err);
  for (uint32_t v = 1; rc == 0 && v <= c->version; v++) {
    uint8_t vk[VER_KEY];
    ver_key(type, h, v, vk);
    rc = cl_proj_del(f->txn, FAM_VER, vk, sizeof vk, err);
  }
  uint8_t ck[CUR_KEY];
  cur_key(type, h, ck);
  if (rc == 0)
    rc = cl_proj_del(f->txn, FAM_CUR, ck, sizeof ck, err);
  if (rc == 0)
    rc = cache_set(f->state, h, NULL, err);
  return rc;
}

/* The `cur` keys (type || H) of a stream's resources. */
typedef struct hlist {
  uint8_t (*k)[CUR_KEY];
  size_t n, cap;
} hlist;

static int collect(void *ctx, const uint8_t *key, size_t kl, const uint8_t *val, size_t vl,
                   cl_err *err) {
  (void)val;
  (void)vl;
  hlist *l = ctx;
  if (kl != 65)
    return 0;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    uint8_t(*k)[CUR_KEY] = realloc(l->k, cap * sizeof *k);
    if (k == NULL)
      return cl_err_set(err, CL_ENOMEM, "out of memory");
    l->k = k;
    l->cap = cap;
  }
  memcpy(l->k[l->n++], key + 32, CUR_KEY); /* pat: tag || type || H */
  return 0;
}

/* Deletes the Provenance of each event of the erased stream (listed by
 * the log's index of the stream). */
static int forget_provenance(void *ctx, uint64_t seq, cl_err *err) {
  cl_fold_ctx *f = ctx;
  uint8_t vk[VER_KEY];
  prov_key(seq, vk);
  return cl_proj_del(f->txn, FAM_VER, vk, sizeof vk, err);
}

/* Forgets every resource of the erased stream: those on disk (found
 * through `pat`) and those of this batch and the one in flight, and the
 * Provenances of its events. */
static int erase(cl_fold_ctx *f, const char *stream, cl_err *err) {
  uint8_t tag[32];
  int rc = cl_log_stream_tag(f->log, stream, tag, err);
  if (rc)
    return rc;
  hlist l = {0};
  rc = cl_proj_scan(f->proj, FAM_PAT, tag, 32, NULL, 0, collect, &l, err);
  for (size_t i = 0; rc == 0 && i < l.n; i++)
    rc = forget_resource(f, l.k[i][0], l.k[i] + 1, err);
  free(l.k);
  state *s = f->state;
  for (size_t i = 0; rc == 0 && i < s->n; i++)
    if (memcmp(s->c[i].tag, tag, 32) == 0)
      rc = forget_resource(f, s->c[i].type, s->c[i].h, err);
  if (rc == 0)
    rc = cl_log_stream_seqs(f->log, tag, forget_provenance, f, err);
  return rc;
}

/* ---- the fold ---- */

static int fold(cl_fold_ctx *f, const cl_event_view *ev, cl_err *err) {
  if (ev->seq == 1)
    known_reset(f->state);
  if (ev->erased)
    return 0; /* leaves no trace */
  uint32_t t = ev->event_type;
  if (t < 100 || (t >= 900 && t != CLINLOG__V1__EVENT__BODY_STREAM_ERASED))
    return 0; /* no resource: not even decrypted (the audit trail's records are many) */
  uint8_t *plain;
  size_t n;
  int rc = cl_log_open_event(f->log, ev, &plain, &n, err);
  if (rc == CL_EERASED)
    return 0;
  if (rc)
    return rc;
  Clinlog__V1__Event *e;
  rc = cl_event_decode(plain, n, &e, err);
  cl_log_event_free(plain, n);
  if (rc)
    return rc;
  if (e->body_case == CLINLOG__V1__EVENT__BODY_STREAM_ERASED) {
    rc = erase(f, e->stream_erased->stream, err);
    clinlog__v1__event__free_unpacked(e, NULL);
    return rc;
  }
  if ((rc = cl_fhir_sanitize(&e->base, err)) != 0) {
    clinlog__v1__event__free_unpacked(e, NULL);
    return rc;
  }
  const char *patient = NULL;
  if (strncmp(e->stream, "patient-", 8) == 0 && e->stream[8] != '\0')
    patient = e->stream + 8;
  else if (strncmp(e->stream, "device-", 7) != 0) {
    clinlog__v1__event__free_unpacked(e, NULL);
    return 0; /* not a clinical stream */
  }
  state *s = f->state;
  s->nt = 0;
  folding fo = {f, ev};
  cl_fhir_map m = {.ev = e,
                   .patient_id = patient,
                   .stream = e->stream,
                   .seq = ev->seq,
                   .committed_at_ns = ev->committed_at_ns,
                   .ops = &store_ops,
                   .impl = &fo};
  if (e->body_case == CLINLOG__V1__EVENT__BODY_ENTERED_IN_ERROR ||
      e->body_case == CLINLOG__V1__EVENT__BODY_AMENDED)
    rc = correct(&m, err);
  else
    rc = cl_fhir_map_event(&m, err);
  if (rc == 0 && s->nt > 0)
    rc = provenance(&fo, &m, err);
  if (rc)
    cl_err_prefix(err, "seq %llu (%s)", (unsigned long long)ev->seq, fp_body_name(e));
  s->nt = 0;
  clinlog__v1__event__free_unpacked(e, NULL);
  return rc;
}

const cl_projection cl_fhir_projection = {
    .name = "fhir",
    .version = FHIR_VERSION,
    .families = families,
    .nfamilies = NFAM,
    .fold = fold,
    .sealed_reads = 1, /* decrypts only the events that make resources */
    .state_new = state_new,
    .state_free = state_free,
    .batch_end = batch_end,
    .discard = discard,
};

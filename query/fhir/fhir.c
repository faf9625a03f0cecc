/* The `fhir` projection: fold, storage and reads (fhir.h). */
#include "query/fhir/fhir.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/fhir/fj.h"
#include "store/alloc.h"
#include "store/event.h"
#include "store/record.h"

enum { FAM_CUR, FAM_VER, FAM_PAT, FAM_TYP, FAM_REF, NFAM };
static const char *const families[NFAM] = {"cur", "ver", "pat", "typ", "ref"};

/* The fold's version: bump when the mapping or the storage changes. */
#define FHIR_VERSION 2

/* Sealed version value: seq u64 BE || committed_at ns i64 BE || event id[16] || JSON. */
#define VER_HDR 32
/* Most index keys one resource holds (pat, typ, and a Provenance's ref
 * entries: one per target; the count is stored as a u16). */
#define MAX_KEYS 65535
#define MAX_KEY 80

/* ---- keys and the current-version record ---- */

static void be64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8)
    p[i] = (uint8_t)v;
}
static uint64_t rd64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | p[i];
  return v;
}
static void be32(uint8_t *p, uint32_t v) {
  for (int i = 3; i >= 0; i--, v >>= 8)
    p[i] = (uint8_t)v;
}
static uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* H(type/id). */
static void res_hash(const cl_proj *p, const char *type, const char *id, uint8_t h[32]) {
  char buf[160];
  int n = snprintf(buf, sizeof buf, "%s/%s", type, id);
  cl_proj_hash(p, buf, (size_t)n, h);
}

typedef struct ikey {
  uint8_t fam;
  uint8_t len;
  uint8_t k[MAX_KEY];
} ikey;

/* What `cur` holds of a resource (plain: no identifiers). */
typedef struct cur {
  uint32_t version;
  uint8_t type;
  uint8_t tag[32];
  uint64_t seq;
  int64_t last_updated_ns;
  uint16_t nkeys;
  ikey *keys; /* cl_malloc'd */
} cur;

/* format: version u32 | type u8 | tag[32] | seq u64 | lastUpdated i64 |
 * nkeys u16 | per key: fam u8, len u8, bytes */
static uint8_t *cur_pack(const cur *c, size_t *n) {
  size_t sz = 4 + 1 + 32 + 8 + 8 + 2;
  for (size_t i = 0; i < c->nkeys; i++)
    sz += 2 + c->keys[i].len;
  uint8_t *b = cl_malloc(sz), *p = b;
  if (b == NULL)
    return NULL;
  be32(p, c->version);
  p += 4;
  *p++ = c->type;
  memcpy(p, c->tag, 32);
  p += 32;
  be64(p, c->seq);
  p += 8;
  be64(p, (uint64_t)c->last_updated_ns);
  p += 8;
  *p++ = (uint8_t)(c->nkeys >> 8);
  *p++ = (uint8_t)c->nkeys;
  for (size_t i = 0; i < c->nkeys; i++) {
    *p++ = c->keys[i].fam;
    *p++ = c->keys[i].len;
    memcpy(p, c->keys[i].k, c->keys[i].len);
    p += c->keys[i].len;
  }
  *n = sz;
  return b;
}

static int cur_unpack(const uint8_t *b, size_t n, cur *c, cl_err *err) {
  memset(c, 0, sizeof *c);
  if (n < 55)
    return cl_err_set(err, CL_ECORRUPT, "fhir: short current-version record");
  c->version = rd32(b);
  c->type = b[4];
  memcpy(c->tag, b + 5, 32);
  c->seq = rd64(b + 37);
  c->last_updated_ns = (int64_t)rd64(b + 45);
  c->nkeys = (uint16_t)(b[53] << 8 | b[54]);
  if (c->nkeys && !(c->keys = cl_malloc(c->nkeys * sizeof *c->keys)))
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  size_t o = 55;
  for (size_t i = 0; i < c->nkeys; i++) {
    if (o + 2 > n || b[o] >= NFAM || b[o + 1] > MAX_KEY || o + 2 + b[o + 1] > n) {
      cl_free(c->keys);
      c->keys = NULL;
      return cl_err_set(err, CL_ECORRUPT, "fhir: bad index key %zu", i);
    }
    c->keys[i].fam = b[o];
    c->keys[i].len = b[o + 1];
    memcpy(c->keys[i].k, b + o + 2, b[o + 1]);
    o += 2 + b[o + 1];
  }
  return 0;
}

static void cur_free(cur *c) {
  cl_free(c->keys);
  c->keys = NULL;
}

/* ---- per-runner state: what this batch created (for erasure) ---- */

typedef struct created {
  uint8_t tag[32];
  uint8_t h[32];
} created;

typedef struct state {
  created *c;
  size_t n, cap;
} state;

static void *state_new(void) { return calloc(1, sizeof(state)); }
static void state_free(void *s) {
  if (s != NULL)
    free(((state *)s)->c);
  free(s);
}
static void state_clear(void *s) { ((state *)s)->n = 0; }
static int batch_end(cl_fold_ctx *f, cl_err *err) {
  (void)err;
  state_clear(f->state);
  return 0;
}

static int note_created(state *s, const uint8_t tag[32], const uint8_t h[32]) {
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
  s->n++;
  return 0;
}

/* ---- one event being folded ---- */

typedef struct folding {
  cl_fold_ctx *f;
  const cl_event_view *ev;
  json_t *targets; /* "Type/id/_history/v" of every version made */
} folding;

static int txn_cur(cl_proj_txn *t, const uint8_t h[32], cur *c, cl_err *err) {
  uint8_t *v;
  size_t vl;
  int rc = cl_proj_txn_get(t, FAM_CUR, h, 32, &v, &vl, err);
  if (rc)
    return rc;
  rc = cur_unpack(v, vl, c, err);
  cl_free(v);
  return rc;
}

/* Parses a stored version value (after its header). */
static json_t *parse_stored(const uint8_t *v, size_t vl, cl_err *err) {
  if (vl < VER_HDR) {
    cl_err_set(err, CL_ECORRUPT, "fhir: short version value");
    return NULL;
  }
  json_error_t je;
  json_t *j = json_loadb((const char *)v + VER_HDR, vl - VER_HDR, 0, &je);
  if (j == NULL)
    cl_err_set(err, CL_ECORRUPT, "fhir: stored resource is not JSON: %s", je.text);
  return j;
}

static int txn_version(cl_proj_txn *t, const uint8_t h[32], uint32_t version, json_t **out,
                       cl_err *err) {
  uint8_t k[36], *v;
  size_t vl;
  memcpy(k, h, 32);
  be32(k + 32, version);
  int rc = cl_proj_txn_get_sealed(t, FAM_VER, k, sizeof k, &v, &vl, err);
  if (rc == CL_EERASED)
    return cl_err_set(err, CL_ENOTFOUND, "erased");
  if (rc)
    return rc;
  *out = parse_stored(v, vl, err);
  sodium_memzero(v, vl);
  cl_free(v);
  return *out ? 0 : err->code;
}

static int map_get(cl_fhir_map *m, const char *type, const char *id, json_t **out, cl_err *err) {
  folding *fo = m->impl;
  uint8_t h[32];
  res_hash(fo->f->proj, type, id, h);
  cur c;
  int rc = txn_cur(fo->f->txn, h, &c, err);
  if (rc)
    return rc;
  cur_free(&c);
  return txn_version(fo->f->txn, h, c.version, out, err);
}

/* The resource without its meta (what an event changes). */
static json_t *without_meta(json_t *r) {
  json_t *c = json_copy(r);
  json_object_del(c, "meta");
  return c;
}

static int has_key(const cur *c, const ikey *k) {
  for (size_t i = 0; i < c->nkeys; i++)
    if (c->keys[i].fam == k->fam && c->keys[i].len == k->len &&
        memcmp(c->keys[i].k, k->k, k->len) == 0)
      return 1;
  return 0;
}

/* The index keys of a resource version. */
/* How many index keys a resource version may need. */
static size_t keys_needed(int type, json_t *res) {
  return 2 + (type == CL_FHIR_Provenance ? json_array_size(json_object_get(res, "target")) : 0);
}

static int index_keys(folding *fo, int type, const uint8_t h[32], json_t *res, ikey *keys,
                      uint16_t *n, cl_err *err) {
  const uint8_t *tag = fo->ev->stream_tag;
  uint16_t k = 0;
  keys[k].fam = FAM_PAT;
  keys[k].len = 65;
  memcpy(keys[k].k, tag, 32);
  keys[k].k[32] = (uint8_t)type;
  memcpy(keys[k].k + 33, h, 32);
  k++;
  keys[k].fam = FAM_TYP;
  keys[k].len = 33;
  keys[k].k[0] = (uint8_t)type;
  memcpy(keys[k].k + 1, h, 32);
  k++;
  if (type == CL_FHIR_Provenance) {
    json_t *targets = json_object_get(res, "target");
    for (size_t i = 0; i < json_array_size(targets); i++) {
      const char *ref = json_string_value(json_object_get(json_array_get(targets, i), "reference"));
      if (ref == NULL)
        continue;
      const char *hist = strstr(ref, "/_history/");
      size_t rl = hist ? (size_t)(hist - ref) : strlen(ref);
      if (k == MAX_KEYS)
        return cl_err_set(err, CL_EINVAL, "fhir: a Provenance with over %d targets", MAX_KEYS);
      keys[k].fam = FAM_REF;
      keys[k].len = 64;
      cl_proj_hash(fo->f->proj, ref, rl, keys[k].k);
      memcpy(keys[k].k + 32, h, 32);
      if (!has_key(&(cur){.nkeys = k, .keys = keys}, &keys[k])) /* one per target resource */
        k++;
    }
  }
  *n = k;
  return 0;
}

/* meta first, after resourceType and id. */
static json_t *with_meta(json_t *res, uint32_t version, int64_t ns) {
  json_t *o = json_object();
  json_object_set(o, "resourceType", json_object_get(res, "resourceType"));
  json_object_set(o, "id", json_object_get(res, "id"));
  char v[16];
  snprintf(v, sizeof v, "%u", version);
  json_object_set_new(o, "meta",
                      json_pack("{s:s,s:o}", "versionId", v, "lastUpdated", fj_instant_ns(ns)));
  const char *k;
  json_t *val;
  json_object_foreach(res, k, val) {
    if (strcmp(k, "resourceType") != 0 && strcmp(k, "id") != 0 && strcmp(k, "meta") != 0)
      json_object_set(o, k, val);
  }
  return o;
}

static int map_put(cl_fhir_map *m, json_t *res, cl_err *err) {
  folding *fo = m->impl;
  cl_fold_ctx *f = fo->f;
  const cl_event_view *ev = fo->ev;
  const char *tname = json_string_value(json_object_get(res, "resourceType"));
  const char *id = json_string_value(json_object_get(res, "id"));
  int type = cl_fhir_type_of(tname);
  int rc = 0;
  if (type == 0 || id == NULL || id[0] == '\0' || strlen(id) >= CL_FHIR_ID_MAX) {
    json_decref(res);
    return cl_err_set(err, CL_EINVAL,
                      "fhir: a mapper put a resource without a type of ours or an id");
  }
  uint8_t h[32];
  res_hash(f->proj, tname, id, h);
  cur old = {0}, now = {0};
  int exists = 0;
  rc = txn_cur(f->txn, h, &old, err);
  if (rc == 0) {
    exists = 1;
    json_t *prev;
    rc = txn_version(f->txn, h, old.version, &prev, err);
    if (rc == 0) {
      json_t *a = without_meta(prev), *b = without_meta(res);
      int same = json_equal(a, b);
      json_decref(a);
      json_decref(b);
      json_decref(prev);
      if (same) { /* the event changes nothing here: no version */
        cur_free(&old);
        json_decref(res);
        return 0;
      }
    } else if (rc != CL_ENOTFOUND) {
      goto done;
    }
    rc = 0;
  } else if (rc != CL_ENOTFOUND) {
    json_decref(res);
    return rc;
  }
  rc = 0;
  now.version = exists ? old.version + 1 : 1;
  now.type = (uint8_t)type;
  memcpy(now.tag, ev->stream_tag, 32);
  now.seq = ev->seq;
  now.last_updated_ns = ev->committed_at_ns;
  json_t *out = with_meta(res, now.version, ev->committed_at_ns);
  size_t jl;
  char *js = fj_dump(out, &jl);
  json_decref(out);
  size_t need = keys_needed(type, res);
  if (need > MAX_KEYS) {
    free(js);
    rc = cl_err_set(err, CL_EINVAL, "fhir: an event changing over %d resources", MAX_KEYS - 2);
    goto done;
  }
  ikey *keys = cl_malloc(need * sizeof *keys);
  uint8_t *val = js ? cl_malloc(VER_HDR + jl) : NULL;
  if (js == NULL || keys == NULL || val == NULL) {
    free(js);
    cl_free(keys);
    cl_free(val);
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    goto done;
  }
  be64(val, ev->seq);
  be64(val + 8, (uint64_t)ev->committed_at_ns);
  memcpy(val + 16, ev->event_id, 16);
  memcpy(val + VER_HDR, js, jl);
  free(js);
  uint8_t vk[36];
  memcpy(vk, h, 32);
  be32(vk + 32, now.version);
  rc = cl_proj_put_sealed(f->txn, FAM_VER, vk, sizeof vk, ev->stream_tag, val, VER_HDR + jl, err);
  sodium_memzero(val, VER_HDR + jl);
  cl_free(val);
  now.keys = keys;
  if (rc == 0)
    rc = index_keys(fo, type, h, res, keys, &now.nkeys, err);
  for (size_t i = 0; rc == 0 && i < old.nkeys; i++) /* keys the resource no longer has */
    if (!has_key(&now, &old.keys[i]))
      rc = cl_proj_del(f->txn, old.keys[i].fam, old.keys[i].k, old.keys[i].len, err);
  for (size_t i = 0; rc == 0 && i < now.nkeys; i++)
    if (!has_key(&old, &now.keys[i]))
      rc = cl_proj_put(f->txn, now.keys[i].fam, now.keys[i].k, now.keys[i].len, "", 0, err);
  if (rc == 0) {
    size_t cl;
    uint8_t *cv = cur_pack(&now, &cl);
    rc = cv ? cl_proj_put(f->txn, FAM_CUR, h, 32, cv, cl, err)
            : cl_err_set(err, CL_ENOMEM, "out of memory");
    cl_free(cv);
  }
  if (rc == 0 && !exists && note_created(f->state, ev->stream_tag, h))
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
  if (rc == 0 && type != CL_FHIR_Provenance) {
    char t[CL_FHIR_ID_MAX + 64];
    snprintf(t, sizeof t, "%s/%s/_history/%u", tname, id, now.version);
    json_array_append_new(fo->targets, json_string(t));
  }
  cur_free(&now);
done:
  cur_free(&old);
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
static int retract_event(folding *fo, cl_fhir_map *m, const ProtobufCBinaryData *eid, json_t *keep,
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
  (void)fo;
  json_decref(prov);
  return rc;
}

static int correct(folding *fo, cl_fhir_map *m, cl_err *err) {
  const Clinlog__V1__Event *e = m->ev;
  if (e->body_case == CLINLOG__V1__EVENT__BODY_ENTERED_IN_ERROR)
    return retract_event(fo, m, &e->entered_in_error->corrected_event_id, NULL, err);
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
    rc = retract_event(fo, m, &a->amended_event_id, keep, err);
  json_decref(prov);
  json_decref(keep);
  return rc;
}

/* ---- Provenance ---- */

static json_t *principal_ref(const char *pid) {
  if (pid == NULL || pid[0] == '\0')
    return NULL;
  return json_pack("{s:{s:s,s:s}}", "identifier", "system", FJ_PRINCIPAL_SYSTEM, "value", pid);
}

static json_t *sub_ext(const char *url, const char *type, json_t *v) {
  if (v == NULL)
    return NULL;
  json_t *o = json_object();
  json_object_set_new(o, "url", json_string(url));
  json_object_set_new(o, type, v);
  return o;
}

static json_t *b64(const uint8_t *p, size_t n) {
  char *s = malloc(sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL));
  if (s == NULL)
    return NULL;
  sodium_bin2base64(s, sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL), p, n,
                    sodium_base64_VARIANT_ORIGINAL);
  json_t *j = json_string(s);
  free(s);
  return j;
}

static json_t *str_u64(uint64_t v) {
  char b[24];
  snprintf(b, sizeof b, "%llu", (unsigned long long)v);
  return json_string(b);
}

static const char *body_name(const Clinlog__V1__Event *e) {
  const ProtobufCFieldDescriptor *fd =
      protobuf_c_message_descriptor_get_field(&clinlog__v1__event__descriptor, e->body_case);
  return fd ? fd->name : "event";
}

static int provenance(folding *fo, cl_fhir_map *m, cl_err *err) {
  const cl_event_view *ev = fo->ev;
  const Clinlog__V1__Event *e = m->ev;
  char uuid[37];
  ProtobufCBinaryData eid = {16, (uint8_t *)ev->event_id};
  fj_uuid_text(&eid, uuid);
  json_t *p = cl_fhir_new("Provenance", uuid);
  json_t *targets = json_array();
  for (size_t i = 0; i < json_array_size(fo->targets); i++)
    json_array_append_new(targets, json_pack("{s:O}", "reference", json_array_get(fo->targets, i)));
  json_object_set_new(p, "target", targets);
  fj_set(p, "occurredDateTime", fj_instant(e->occurred_at));
  json_object_set_new(p, "recorded", fj_instant_ns(ev->committed_at_ns));
  char code[16];
  snprintf(code, sizeof code, "%u", ev->event_type);
  json_t *act = fj_concept_lit("https://clinlog.dev/fhir/CodeSystem/event-type", code, NULL);
  json_t *coding = json_array_get(json_object_get(act, "coding"), 0);
  /* the body's message name: patient_registered -> PatientRegistered */
  char disp[64];
  const char *bn = body_name(e);
  size_t o = 0;
  for (int up = 1; *bn && o + 1 < sizeof disp; bn++) {
    if (*bn == '_') {
      up = 1;
      continue;
    }
    disp[o++] = up && *bn >= 'a' && *bn <= 'z' ? (char)(*bn - 32) : *bn;
    up = 0;
  }
  disp[o] = '\0';
  json_object_set_new(coding, "display", json_string(disp));
  json_object_set_new(p, "activity", act);
  json_t *agents = json_array();
  const Clinlog__V1__RecordedBy *rb = e->recorded_by;
  json_t *who = principal_ref(rb ? rb->principal_id : NULL);
  json_t *agent = json_object();
  json_object_set_new(
      agent, "type",
      fj_concept_lit("http://terminology.hl7.org/CodeSystem/provenance-participant-type", "enterer",
                     "Enterer"));
  if (rb != NULL && rb->role != NULL && rb->role[0] != '\0')
    fj_set_one(agent, "role", json_pack("{s:s}", "text", rb->role));
  json_object_set_new(agent, "who", who ? who : json_pack("{s:s}", "display", "unknown principal"));
  fj_set(agent, "onBehalfOf", principal_ref(rb ? rb->on_behalf_of : NULL));
  json_array_append_new(agents, agent);
  if (rb != NULL && rb->device_id != NULL && rb->device_id[0] != '\0') {
    char did[CL_FHIR_ID_MAX];
    cl_fhir_id("Device", NULL, rb->device_id, did);
    json_t *dev = json_object();
    json_object_set_new(
        dev, "type",
        fj_concept_lit("http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                       "performer", "Performer"));
    json_object_set_new(dev, "who", fj_ref("Device", did));
    json_array_append_new(agents, dev);
  }
  json_object_set_new(p, "agent", agents);
  /* the event itself, with the coordinates of its proof */
  char urn[48];
  snprintf(urn, sizeof urn, "urn:uuid:%s", uuid);
  json_t *entry = json_array();
  fj_push(entry, sub_ext("seq", "valueString", str_u64(ev->seq)));
  fj_push(entry, sub_ext("streamVersion", "valueString", str_u64(ev->stream_version)));
  fj_push(entry, sub_ext("eventHash", "valueBase64Binary", b64(ev->event_hash, 32)));
  Clinlog__V1__Record *rec = NULL;
  cl_err rerr;
  if (ev->record != NULL && cl_record_decode(ev->record, ev->record_len, &rec, &rerr) == 0) {
    if (rec->batch_size > 0) {
      fj_push(entry, sub_ext("batchIndex", "valueUnsignedInt", json_integer(rec->batch_index)));
      fj_push(entry, sub_ext("batchSize", "valueUnsignedInt", json_integer(rec->batch_size)));
    }
  }
  if (e->source_system != NULL && e->source_system[0] != '\0')
    fj_push(entry, sub_ext("sourceSystem", "valueString", json_string(e->source_system)));
  if (e->source_message_id != NULL && e->source_message_id[0] != '\0')
    fj_push(entry, sub_ext("sourceMessageId", "valueString", json_string(e->source_message_id)));
  json_t *entity =
      json_pack("{s:[{s:s,s:o}],s:s,s:{s:{s:s,s:s},s:s}}", "extension", "url",
                CL_FHIR_LOG_ENTRY_EXT, "extension", entry, "role", "source", "what", "identifier",
                "system", "urn:ietf:rfc:3986", "value", urn, "display", disp);
  fj_set_one(p, "entity", entity);
  /* a per-event signature travels with the Provenance; a batch's is on the
   * batch's last record (batchIndex/batchSize say which) */
  if (rec != NULL && rec->batch_size == 0 && rec->signature != NULL &&
      rec->signature->signature.len > 0) {
    json_t *sig = json_object();
    fj_set_one(sig, "type",
               json_pack("{s:s,s:s,s:s}", "system", "urn:iso-astm:E1762-95:2013", "code",
                         "1.2.840.10065.1.12.1.1", "display", "Author's Signature"));
    json_object_set_new(sig, "when", fj_instant_ns(ev->committed_at_ns));
    json_t *sw = principal_ref(rb ? rb->principal_id : NULL);
    json_object_set_new(sig, "who", sw ? sw : json_pack("{s:s}", "display", "unknown principal"));
    json_object_set_new(sig, "sigFormat", json_string("application/octet-stream"));
    json_object_set_new(sig, "data",
                        b64(rec->signature->signature.data, rec->signature->signature.len));
    if (rec->signature->key_id.len > 0)
      fj_set_one(sig, "extension",
                 sub_ext(CL_FHIR_LOG_ENTRY_EXT "#keyId", "valueBase64Binary",
                         b64(rec->signature->key_id.data, rec->signature->key_id.len)));
    fj_set_one(p, "signature", sig);
  }
  if (rec != NULL)
    clinlog__v1__record__free_unpacked(rec, NULL);
  return map_put(m, p, err);
}

/* ---- erasure ---- */

static int forget_resource(cl_fold_ctx *f, const uint8_t h[32], cl_err *err) {
  cur c;
  int rc = txn_cur(f->txn, h, &c, err);
  if (rc == CL_ENOTFOUND)
    return 0; /* already forgotten */
  if (rc)
    return rc;
  for (size_t i = 0; rc == 0 && i < c.nkeys; i++)
    rc = cl_proj_del(f->txn, c.keys[i].fam, c.keys[i].k, c.keys[i].len, err);
  for (uint32_t v = 1; rc == 0 && v <= c.version; v++) {
    uint8_t vk[36];
    memcpy(vk, h, 32);
    be32(vk + 32, v);
    rc = cl_proj_del(f->txn, FAM_VER, vk, sizeof vk, err);
  }
  if (rc == 0)
    rc = cl_proj_del(f->txn, FAM_CUR, h, 32, err);
  cur_free(&c);
  return rc;
}

typedef struct hlist {
  uint8_t (*h)[32];
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
    uint8_t(*h)[32] = realloc(l->h, cap * sizeof *h);
    if (h == NULL)
      return cl_err_set(err, CL_ENOMEM, "out of memory");
    l->h = h;
    l->cap = cap;
  }
  memcpy(l->h[l->n++], key + 33, 32);
  return 0;
}

/* Forgets every resource of the erased stream: those committed (found
 * through `pat`) and those this batch made. */
static int erase(cl_fold_ctx *f, const char *stream, cl_err *err) {
  uint8_t tag[32];
  int rc = cl_log_stream_tag(f->log, stream, tag, err);
  if (rc)
    return rc;
  hlist l = {0};
  rc = cl_proj_scan(f->proj, FAM_PAT, tag, 32, NULL, 0, collect, &l, err);
  for (size_t i = 0; rc == 0 && i < l.n; i++)
    rc = forget_resource(f, l.h[i], err);
  free(l.h);
  state *s = f->state;
  for (size_t i = 0; rc == 0 && i < s->n; i++)
    if (memcmp(s->c[i].tag, tag, 32) == 0)
      rc = forget_resource(f, s->c[i].h, err);
  return rc;
}

/* ---- the fold ---- */

static int fold(cl_fold_ctx *f, const cl_event_view *ev, cl_err *err) {
  if (ev->erased || ev->event == NULL)
    return 0; /* leaves no trace */
  uint32_t t = ev->event_type;
  if (t < 100 || (t >= 900 && t != CLINLOG__V1__EVENT__BODY_STREAM_ERASED))
    return 0;
  Clinlog__V1__Event *e;
  int rc = cl_event_decode(ev->event, ev->event_len, &e, err);
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
  folding fo = {f, ev, json_array()};
  cl_fhir_map m = {.ev = e,
                   .patient_id = patient,
                   .stream = e->stream,
                   .seq = ev->seq,
                   .committed_at_ns = ev->committed_at_ns,
                   .ops = &store_ops,
                   .impl = &fo};
  if (e->body_case == CLINLOG__V1__EVENT__BODY_ENTERED_IN_ERROR ||
      e->body_case == CLINLOG__V1__EVENT__BODY_AMENDED)
    rc = correct(&fo, &m, err);
  else
    rc = cl_fhir_map_event(&m, err);
  if (rc == 0 && json_array_size(fo.targets) > 0)
    rc = provenance(&fo, &m, err);
  if (rc)
    cl_err_prefix(err, "seq %llu (%s)", (unsigned long long)ev->seq, body_name(e));
  json_decref(fo.targets);
  clinlog__v1__event__free_unpacked(e, NULL);
  return rc;
}

const cl_projection cl_fhir_projection = {
    .name = "fhir",
    .version = FHIR_VERSION,
    .families = families,
    .nfamilies = NFAM,
    .fold = fold,
    .state_new = state_new,
    .state_free = state_free,
    .batch_end = batch_end,
    .discard = state_clear,
};

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

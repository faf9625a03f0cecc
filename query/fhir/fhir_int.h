/* The `fhir` projection's storage format (fhir.h has the table): family
 * numbers, key layouts and the current-version record, shared by the fold
 * (fold.c, with the Provenance writer in provenance.c) and the reads
 * (fhir.c). Private to those files.
 *
 * The storage helpers are static inline so each file has its own copy;
 * the fp_* functions at the end are provenance.c's, for fold.c. */
#ifndef CL_QUERY_FHIR_FHIR_INT_H
#define CL_QUERY_FHIR_FHIR_INT_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "query/fhir/fj.h"
#include "query/fhir/map.h"
#include "query/fhir/zj.h"
#include "store/alloc.h"
#include "store/err.h"
#include "store/log.h"
#include "store/proj.h"

/* Family i of the projection (its name: fold.c's `families`). */
enum { FAM_CUR, FAM_VER, FAM_PAT, NFAM };

/* Sealed version value: seq u64 BE || committed_at ns i64 BE || event id[16]
 * || body: a resource's JSON, compressed or not (zj.h), or a Provenance's
 * packed form (PROV_FORMAT below). */
#define VER_HDR 32
/* Most index keys one resource holds (the count is stored as a u16; each
 * holds one today, its pat key). */
#define MAX_KEYS 65535
/* Most targets of a Provenance (the packed form's count is a u16). */
#define PROV_MAX_TARGETS 65535
#define MAX_KEY 80

/* Keys of `cur` (type u8 || H[32]) and `ver` (type u8 || H[32] || version
 * u32 BE): led by the type, so that a type's resources, and their
 * versions, are one range of each family, in the same order (H). */
#define CUR_KEY 33
#define VER_KEY 37

static inline void be64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8)
    p[i] = (uint8_t)v;
}
static inline uint64_t rd64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | p[i];
  return v;
}
static inline void be32(uint8_t *p, uint32_t v) {
  for (int i = 3; i >= 0; i--, v >>= 8)
    p[i] = (uint8_t)v;
}
static inline uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* H(type/id): the key of a resource. */
static inline void res_hash(const cl_proj *p, const char *type, const char *id, uint8_t h[32]) {
  char buf[160];
  int n = snprintf(buf, sizeof buf, "%s/%s", type, id);
  cl_proj_hash(p, buf, (size_t)n, h);
}

static inline void cur_key(int type, const uint8_t h[32], uint8_t k[CUR_KEY]) {
  k[0] = (uint8_t)type;
  memcpy(k + 1, h, 32);
}
static inline void ver_key(int type, const uint8_t h[32], uint32_t version, uint8_t k[VER_KEY]) {
  k[0] = (uint8_t)type;
  memcpy(k + 1, h, 32);
  be32(k + 33, version);
}

/* A Provenance is stored as its `ver` entry alone: version 1, sealed under
 * its event's stream, with no `cur` record and no `pat` key. It never
 * changes and its id is its event's; where a resource's key has H(type/id)
 * it has its event's seq (u64 BE, then 24 zero bytes), which the fold,
 * a version's header and the log's index of a stream's events give at
 * once, the log's index of ids gives for an id, and a scan of the type
 * reads (for a snapshot) without opening the value. */
static inline void prov_h(uint64_t seq, uint8_t h[32]) {
  be64(h, seq);
  memset(h + 8, 0, 24);
}
static inline void prov_key(uint64_t seq, uint8_t k[VER_KEY]) {
  uint8_t h[32];
  prov_h(seq, h);
  ver_key(CL_FHIR_Provenance, h, 1, k);
}
/* The h of Provenance `id` (its event's id in the canonical text form,
 * lower case). CL_ENOTFOUND if no committed event has that id. */
static inline int prov_h_of(cl_log *log, const char *id, uint8_t h[32], cl_err *err) {
  uint8_t b[16] = {0};
  size_t j = 0;
  for (size_t i = 0; id[i] != '\0'; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (id[i] != '-')
        return cl_err_set(err, CL_ENOTFOUND, "no Provenance %.40s", id);
      continue;
    }
    int c = id[i], v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (v < 0 || j == 32)
      return cl_err_set(err, CL_ENOTFOUND, "no Provenance %.40s", id);
    b[j / 2] |= (uint8_t)(j % 2 ? v : v << 4);
    j++;
  }
  if (j != 32 || strlen(id) != 36)
    return cl_err_set(err, CL_ENOTFOUND, "no Provenance %.40s", id);
  uint64_t seq;
  int rc = cl_log_seq_of(log, b, &seq, err);
  if (rc == 0)
    prov_h(seq, h);
  return rc;
}

/* An index key a resource holds. */
typedef struct ikey {
  uint8_t fam;
  uint8_t len;
  uint8_t k[MAX_KEY];
} ikey;

/* Bytes of a version's content digest. */
#define DIGEST 16

/* What `cur` holds of a resource (plain: no identifiers). */
typedef struct cur {
  uint32_t version;
  uint8_t type;
  uint8_t tag[32];
  uint64_t seq;
  int64_t last_updated_ns;
  uint16_t nkeys;
  ikey *keys; /* cl_malloc'd */
  /* the keyed hash of the current version's content (fold.c,
   * content_digest), when has_digest: equal for equal content, so an event
   * that changes nothing is seen without reading the version. Kept from a
   * resource's third version on (most resources never change, or once). */
  int has_digest;
  uint8_t digest[DIGEST];
} cur;

/* The record's size and layout: version u32 | type u8 | tag[32] | seq u64 |
 * lastUpdated i64 | nkeys u16 | per key: fam u8, len u8, bytes | [digest[16]] */
#define CUR_FIXED 55

static inline size_t cur_packed_size(const cur *c) {
  size_t sz = CUR_FIXED;
  for (size_t i = 0; i < c->nkeys; i++)
    sz += 2 + c->keys[i].len;
  return sz + (c->has_digest ? DIGEST : 0);
}

/* Writes the record (cur_packed_size bytes) at b. */
static inline void cur_pack_into(const cur *c, uint8_t *b) {
  uint8_t *p = b;
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
  if (c->has_digest)
    memcpy(p, c->digest, DIGEST);
}

/* Returned-owned (cl_free), NULL when out of memory. */
static inline uint8_t *cur_pack(const cur *c, size_t *n) {
  size_t sz = cur_packed_size(c);
  uint8_t *b = cl_malloc(sz);
  if (b == NULL)
    return NULL;
  cur_pack_into(c, b);
  *n = sz;
  return b;
}

/* Parses the fixed part of a record read from disk (untrusted:
 * CL_ECORRUPT): c->keys stays NULL (c->nkeys says how many there are). */
static inline int cur_unpack_head(const uint8_t *b, size_t n, cur *c, cl_err *err) {
  memset(c, 0, sizeof *c);
  if (n < CUR_FIXED)
    return cl_err_set(err, CL_ECORRUPT, "fhir: short current-version record");
  c->version = rd32(b);
  c->type = b[4];
  memcpy(c->tag, b + 5, 32);
  c->seq = rd64(b + 37);
  c->last_updated_ns = (int64_t)rd64(b + 45);
  c->nkeys = (uint16_t)(b[53] << 8 | b[54]);
  return 0;
}

/* Parses a record read from disk (untrusted: CL_ECORRUPT), c->keys
 * returned-owned (cur_free; also on error nothing needs freeing). */
static inline int cur_unpack(const uint8_t *b, size_t n, cur *c, cl_err *err) {
  int rc = cur_unpack_head(b, n, c, err);
  if (rc)
    return rc;
  if (c->nkeys && !(c->keys = cl_malloc(c->nkeys * sizeof *c->keys)))
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  size_t o = CUR_FIXED;
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
  if (o + DIGEST == n) {
    c->has_digest = 1;
    memcpy(c->digest, b + o, DIGEST);
  } else if (o != n) {
    cl_free(c->keys);
    c->keys = NULL;
    return cl_err_set(err, CL_ECORRUPT, "fhir: %zu stray bytes in a current-version record", n - o);
  }
  return 0;
}

static inline void cur_free(cur *c) {
  cl_free(c->keys);
  c->keys = NULL;
}

/* ---- the stored form the fold writes (provenance.c) ---- */

/* A version the event being folded made: a target of its Provenance. */
typedef struct fp_target {
  int type;
  uint32_t version;
  uint8_t h[32]; /* H(type/id) */
  char id[CL_FHIR_ID_MAX];
} fp_target;

/* The header of a stored version (VER_HDR bytes) made by event ev. */
void fp_write_header(fj_buf *b, const cl_event_view *ev);
/* ,"meta":{"versionId":"<version>","lastUpdated":"<instant of ns>"} */
void fp_write_meta(fj_buf *b, uint32_t version, int64_t ns);
/* A stored Provenance, after the header: PROV_FORMAT u8 || stream version
 * u64 || event type u32 || body case u32 || event hash[32] || flags u8
 * (1 occurred, 2 batch, 4 signature) || [occurred: seconds i64, nanos
 * i32] || [batch: index u32, size u32] || principal, on-behalf-of, role,
 * source system, source message id, device id (each u32 length with its
 * NUL, then the bytes and the NUL; 0: absent) || [signature: u32 length,
 * bytes; key id: u32 length, bytes] || target count u16 || per target:
 * type u8, version u32, id length u8, id. Integers big-endian. */
#define PROV_FORMAT 1
/* The stored Provenance (header and packed form) of event ev (e decoded)
 * whose versions are t[0..nt), appended to b (a failed allocation sets
 * b->oom). */
void fp_write_provenance(fj_buf *b, const cl_event_view *ev, const Clinlog__V1__Event *e,
                         const fp_target *t, size_t nt);
/* The JSON (stored form, meta included) of the stored Provenance v (vl
 * bytes, header included; untrusted: CL_ECORRUPT), appended to out.
 * Errors: CL_ECORRUPT, CL_ENOMEM. */
int fp_render_stored(const uint8_t *v, size_t vl, fj_buf *out, cl_err *err);

/* The stored JSON of version value v (vl bytes, header included) of a
 * resource of `type`: *json points into v, or into b, where it is
 * decompressed (zj.h) or, for a Provenance, rendered (the caller wipes b). */
static inline int stored_json(int type, const uint8_t *v, size_t vl, fj_buf *b, const char **json,
                              size_t *n, cl_err *err) {
  if (vl < VER_HDR)
    return cl_err_set(err, CL_ECORRUPT, "fhir: short version value");
  if (type == CL_FHIR_Provenance) {
    int rc = fp_render_stored(v, vl, b, err);
    *json = b->p;
    *n = b->n;
    return rc;
  }
  return zj_unpack(v + VER_HDR, vl - VER_HDR, b, json, n, err);
}

/* The name of e's body field ("patient_registered"), or "event". */
const char *fp_body_name(const Clinlog__V1__Event *e);

#endif

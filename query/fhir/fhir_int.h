/* The `fhir` projection's storage format (fhir.h has the table): family
 * numbers, key layouts and the current-version record, shared by the fold
 * (fold.c) and the reads (fhir.c). Private to those two files.
 *
 * The helpers are static inline so each file has its own copy and neither
 * exports a symbol. */
#ifndef CL_QUERY_FHIR_FHIR_INT_H
#define CL_QUERY_FHIR_FHIR_INT_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "query/fhir/map.h"
#include "store/alloc.h"
#include "store/err.h"
#include "store/proj.h"

/* Family i of the projection (its name: fold.c's `families`). */
enum { FAM_CUR, FAM_VER, FAM_PAT, FAM_TYP, FAM_REF, NFAM };

/* Sealed version value: seq u64 BE || committed_at ns i64 BE || event id[16] || JSON. */
#define VER_HDR 32
/* Most index keys one resource holds (pat, typ, and a Provenance's ref
 * entries: one per target; the count is stored as a u16). */
#define MAX_KEYS 65535
#define MAX_KEY 80

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

/* An index key a resource holds. */
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

/* The record's size and layout: version u32 | type u8 | tag[32] | seq u64 |
 * lastUpdated i64 | nkeys u16 | per key: fam u8, len u8, bytes */
#define CUR_FIXED 55

static inline size_t cur_packed_size(const cur *c) {
  size_t sz = CUR_FIXED;
  for (size_t i = 0; i < c->nkeys; i++)
    sz += 2 + c->keys[i].len;
  return sz;
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

/* Parses a record read from disk (untrusted: CL_ECORRUPT), c->keys
 * returned-owned (cur_free; also on error nothing needs freeing). */
static inline int cur_unpack(const uint8_t *b, size_t n, cur *c, cl_err *err) {
  memset(c, 0, sizeof *c);
  if (n < CUR_FIXED)
    return cl_err_set(err, CL_ECORRUPT, "fhir: short current-version record");
  c->version = rd32(b);
  c->type = b[4];
  memcpy(c->tag, b + 5, 32);
  c->seq = rd64(b + 37);
  c->last_updated_ns = (int64_t)rd64(b + 45);
  c->nkeys = (uint16_t)(b[53] << 8 | b[54]);
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
  return 0;
}

static inline void cur_free(cur *c) {
  cl_free(c->keys);
  c->keys = NULL;
}

/* Parses a stored version value (after its header): returned-owned, NULL
 * with err set (CL_ECORRUPT). */
static inline json_t *parse_stored(const uint8_t *v, size_t vl, cl_err *err) {
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

#endif

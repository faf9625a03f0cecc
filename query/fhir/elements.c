/* Element lookup and textual subsetting of FHIR JSON (elements.h). */
#include "query/fhir/elements.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "query/fhir/map.h"

#define MAX_MEMBERS 256 /* of one object: 64 elements, their "_" twins, more than enough */

static const char SUBSETTED[] =
    "{\"system\":\"http://terminology.hl7.org/CodeSystem/v3-ObservationValue\","
    "\"code\":\"SUBSETTED\",\"display\":\"Resource encoded in summary mode\"}";

static const cl_fhir_elements *elements_of(int type) {
  return type > 0 && type < CL_FHIR_NTYPES ? &cl_fhir_elements_table[type] : NULL;
}

int cl_fhir_element_index(int type, const char *name) {
  const cl_fhir_elements *e = elements_of(type);
  for (size_t i = 0; e && i < e->n; i++)
    if (!strcmp(e->names[i], name))
      return (int)i;
  return -1;
}

int cl_fhir_element_of_member(int type, const char *member, size_t len) {
  const cl_fhir_elements *e = elements_of(type);
  if (!e)
    return -1;
  if (len > 1 && member[0] == '_') { /* a primitive's id and extensions */
    member++;
    len--;
  }
  for (size_t i = 0; i < e->n; i++) {
    const char *name = e->names[i];
    size_t nl = strlen(name);
    if (nl == len && !memcmp(name, member, len))
      return (int)i;
    /* "onset[x]" is onsetDateTime, onsetPeriod...: the stem, then a type name */
    if (nl > 3 && !strcmp(name + nl - 3, "[x]") && len > nl - 3 && !memcmp(name, member, nl - 3) &&
        member[nl - 3] >= 'A' && member[nl - 3] <= 'Z')
      return (int)i;
  }
  return -1;
}

uint64_t cl_fhir_elements_kept(int type) {
  const cl_fhir_elements *e = elements_of(type);
  return e ? e->required | 3u : 0; /* 0 id, 1 meta */
}

/* ------------------------------------------------------------ JSON text */

typedef struct buf {
  char *p;
  size_t n, cap;
  int oom;
} buf;

static void put(buf *b, const char *s, size_t n) {
  if (b->oom)
    return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + n + 1)
      cap *= 2;
    char *p = malloc(cap); /* not realloc: the old copy (patient data) is wiped */
    if (!p) {
      b->oom = 1;
      return;
    }
    if (b->p) {
      memcpy(p, b->p, b->n);
      sodium_memzero(b->p, b->cap);
      free(b->p);
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

static void puts_(buf *b, const char *s) { put(b, s, strlen(s)); }

static size_t ws(const char *s, size_t i, size_t n) {
  while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
    i++;
  return i;
}

/* Past the string whose opening quote is at *i. */
static int skip_string(const char *s, size_t n, size_t *i) {
  size_t j = *i + 1;
  while (j < n && s[j] != '"')
    j += s[j] == '\\' ? 2 : 1;
  if (j >= n)
    return -1;
  *i = j + 1;
  return 0;
}

/* Past the value starting at *i. */
static int skip_value(const char *s, size_t n, size_t *i) {
  size_t j = *i;
  if (j >= n)
    return -1;
  if (s[j] == '"')
    return skip_string(s, n, i);
  if (s[j] == '{' || s[j] == '[') {
    int depth = 0;
    while (j < n) {
      if (s[j] == '"') {
        if (skip_string(s, n, &j) != 0)
          return -1;
        continue;
      }
      if (s[j] == '{' || s[j] == '[')
        depth++;
      else if ((s[j] == '}' || s[j] == ']') && --depth == 0) {
        *i = j + 1;
        return 0;
      }
      j++;
    }
    return -1;
  }
  while (j < n && !memchr(",}] \t\r\n", s[j], 8))
    j++;
  if (j == *i)
    return -1;
  *i = j;
  return 0;
}

typedef struct member {
  size_t ks, kl; /* the key, without its quotes */
  size_t vs, ve; /* the value */
} member;

/* The members of the object s[vs, ve). Returns their count, or -1. */
static int members(const char *s, size_t vs, size_t ve, member *m, int cap) {
  size_t i = ws(s, vs, ve);
  if (i >= ve || s[i] != '{')
    return -1;
  i = ws(s, i + 1, ve);
  int k = 0;
  if (i < ve && s[i] == '}')
    return 0;
  for (;;) {
    if (k == cap || i >= ve || s[i] != '"')
      return -1;
    m[k].ks = i + 1;
    if (skip_string(s, ve, &i) != 0)
      return -1;
    m[k].kl = i - 1 - m[k].ks;
    i = ws(s, i, ve);
    if (i >= ve || s[i] != ':')
      return -1;
    m[k].vs = i = ws(s, i + 1, ve);
    if (skip_value(s, ve, &i) != 0)
      return -1;
    m[k++].ve = i;
    i = ws(s, i, ve);
    if (i < ve && s[i] == ',') {
      i = ws(s, i + 1, ve);
      continue;
    }
    return i < ve && s[i] == '}' ? k : -1;
  }
}

static int key_is(const char *s, const member *m, const char *key) {
  return m->kl == strlen(key) && !memcmp(s + m->ks, key, m->kl);
}

static void put_key(buf *o, const char *s, const member *m) {
  put(o, s + m->ks - 1, m->kl + 2);
  put(o, ":", 1);
}

typedef struct sub {
  cl_fhir_mask_fn fn;
  void *ctx;
  int changed;
} sub;

static int resource(sub *x, const char *s, size_t vs, size_t ve, buf *o);

/* meta with SUBSETTED added to its tags (unless it has it). */
static int meta_tagged(const char *s, size_t vs, size_t ve, buf *o) {
  member m[64];
  int n = members(s, vs, ve, m, 64);
  if (n < 0)
    return -1;
  const char *has = memmem(s + vs, ve - vs, "\"SUBSETTED\"", 11);
  if (has) {
    put(o, s + vs, ve - vs);
    return 0;
  }
  for (int i = 0; i < n; i++)
    if (key_is(s, &m[i], "tag")) { /* an array: append to it */
      size_t close = m[i].ve - 1, open = ws(s, m[i].vs + 1, close);
      put(o, s + vs, close - vs);
      if (open < close)
        put(o, ",", 1);
      puts_(o, SUBSETTED);
      put(o, s + close, ve - close);
      return 0;
    }
  put(o, s + vs, ve - 1 - vs);
  if (n > 0)
    put(o, ",", 1);
  puts_(o, "\"tag\":[");
  puts_(o, SUBSETTED);
  puts_(o, "]}");
  return 0;
}

/* A Bundle: its entries' resources subsetted, the rest copied. */
static int bundle(sub *x, const char *s, const member *m, int n, buf *o) {
  put(o, "{", 1);
  for (int i = 0; i < n; i++) {
    if (i)
      put(o, ",", 1);
    put_key(o, s, &m[i]);
    if (!key_is(s, &m[i], "entry") || s[m[i].vs] != '[') {
      put(o, s + m[i].vs, m[i].ve - m[i].vs);
      continue;
    }
    put(o, "[", 1);
    size_t j = ws(s, m[i].vs + 1, m[i].ve);
    for (int first = 1; j < m[i].ve && s[j] != ']'; first = 0) {
      size_t es = j;
      if (skip_value(s, m[i].ve, &j) != 0)
        return -1;
      member e[16];
      int ne = members(s, es, j, e, 16);
      if (ne < 0)
        return -1;
      put(o, first ? "{" : ",{", first ? 1 : 2);
      for (int k = 0; k < ne; k++) {
        if (k)
          put(o, ",", 1);
        put_key(o, s, &e[k]);
        if (key_is(s, &e[k], "resource")) {
          if (resource(x, s, e[k].vs, e[k].ve, o) != 0)
            return -1;
        } else {
          put(o, s + e[k].vs, e[k].ve - e[k].vs);
        }
      }
      put(o, "}", 1);
      j = ws(s, j, m[i].ve);
      if (j < m[i].ve && s[j] == ',')
        j = ws(s, j + 1, m[i].ve);
    }
    put(o, "]", 1);
  }
  put(o, "}", 1);
  return 0;
}

static int resource(sub *x, const char *s, size_t vs, size_t ve, buf *o) {
  member m[MAX_MEMBERS];
  int n = members(s, vs, ve, m, MAX_MEMBERS);
  if (n < 0)
    return -1;
  char tname[64] = "";
  for (int i = 0; i < n; i++)
    if (key_is(s, &m[i], "resourceType") && s[m[i].vs] == '"' &&
        m[i].ve - m[i].vs - 2 < sizeof tname) {
      memcpy(tname, s + m[i].vs + 1, m[i].ve - m[i].vs - 2);
      tname[m[i].ve - m[i].vs - 2] = '\0';
    }
  if (!strcmp(tname, "Bundle"))
    return bundle(x, s, m, n, o);
  int type = cl_fhir_type_of(tname);
  uint64_t mask = 0;
  if (type <= 0 || x->fn(x->ctx, type, &mask) == 0) {
    put(o, s + vs, ve - vs);
    return 0;
  }
  mask |= cl_fhir_elements_kept(type);
  int keep[MAX_MEMBERS], dropped = 0, meta = -1;
  for (int i = 0; i < n; i++) {
    int e = cl_fhir_element_of_member(type, s + m[i].ks, m[i].kl);
    keep[i] = key_is(s, &m[i], "resourceType") || (e >= 0 && (mask >> e) & 1);
    dropped |= !keep[i];
    if (key_is(s, &m[i], "meta"))
      meta = i;
  }
  if (!dropped) {
    put(o, s + vs, ve - vs);
    return 0;
  }
  x->changed = 1;
  put(o, "{", 1);
  int first = 1;
  for (int i = 0; i < n; i++) {
    if (!keep[i])
      continue;
    if (!first)
      put(o, ",", 1);
    first = 0;
    put_key(o, s, &m[i]);
    if (i == meta) {
      if (meta_tagged(s, m[i].vs, m[i].ve, o) != 0)
        return -1;
    } else {
      put(o, s + m[i].vs, m[i].ve - m[i].vs);
    }
  }
  if (meta < 0) {
    puts_(o, first ? "\"meta\":{\"tag\":[" : ",\"meta\":{\"tag\":[");
    puts_(o, SUBSETTED);
    puts_(o, "]}");
  }
  put(o, "}", 1);
  return 0;
}

int cl_fhir_subset(const char *json, size_t len, int ndjson, cl_fhir_mask_fn fn, void *ctx,
                   char **out, size_t *outlen, int *changed) {
  sub x = {fn, ctx, 0};
  buf o = {0};
  int rc = 0;
  if (!ndjson) {
    size_t s = ws(json, 0, len), e = s;
    rc = skip_value(json, len, &e) != 0 || ws(json, e, len) != len ? -1
                                                                   : resource(&x, json, s, e, &o);
  } else {
    for (size_t i = 0; i < len && rc == 0;) {
      const char *nl = memchr(json + i, '\n', len - i);
      size_t end = nl ? (size_t)(nl - json) : len, s = ws(json, i, end);
      if (s < end) {
        size_t e = s;
        rc = skip_value(json, end, &e) != 0 || ws(json, e, end) != end
                 ? -1
                 : resource(&x, json, s, e, &o);
        put(&o, "\n", 1);
      }
      i = end + 1;
    }
  }
  put(&o, "", 0); /* a buffer also for an empty NDJSON piece */
  if (rc != 0 || o.oom) {
    if (o.p)
      sodium_memzero(o.p, o.cap);
    free(o.p);
    return -1;
  }
  *out = o.p;
  *outlen = o.n;
  *changed = x.changed;
  return 0;
}

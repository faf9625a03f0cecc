/* The CDS knowledge base's internals (kb.h), shared by the reader (kb.c)
 * and the questions (kb_query.c); no other module includes this. */
#ifndef CL_QUERY_CDS_KB_INT_H
#define CL_QUERY_CDS_KB_INT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/cds/kb.h"
#include "store/hmap.h"

#define LINE_MAX_LEN 4096
#define NAME_MAX_LEN 63      /* class, group, id and source key names */
#define MAX_PAIRS (1u << 22) /* expanded (ingredient pair, rule) entries */
#define MAX_FOUND 512        /* distinct rules one interaction query reports */

enum { K_CLASS = 1, K_GROUP = 2, K_RULE = 3, K_SOURCE = 4 }; /* name spaces */

typedef struct u32vec {
  uint32_t *v;
  size_t n, cap;
} u32vec;

typedef struct ing {
  uint32_t rxcui;
  const char *name;
  u32vec classes; /* indices into kb->classes */
  u32vec groups;  /* indices into kb->groups */
} ing;

typedef struct prod {
  uint32_t n;
  uint32_t ing[CL_KB_MAX_PRODUCT_ING]; /* RxCUIs */
} prod;

typedef struct set { /* a class or an allergy group */
  const char *name;
  u32vec members; /* ingredient indices */
  int duplicate;  /* a class marked `duplicate` */
} set;

typedef struct rule {
  const char *id, *mech, *mgmt;
  int sev;
  uint32_t src; /* index into kb->srcs */
} rule;

typedef struct source {
  const char *key, *text;
} source;

typedef struct dose {
  double single_mg, daily_mg; /* < 0: no such limit */
  int single_kg, daily_kg;
} dose;

typedef struct link {
  uint32_t rule, next; /* next: index + 1 into kb->links, 0 ends */
} link;

typedef struct chunk {
  struct chunk *next;
  size_t used, cap;
  char data[];
} chunk;

struct cl_kb {
  char *version;
  chunk *strings; /* every name and text, freed at once */
  ing *ings;
  size_t ning, cap_ing;
  prod *prods;
  size_t nprod, cap_prod;
  set *classes;
  size_t nclass, cap_class;
  set *groups;
  size_t ngroup, cap_group;
  rule *rules;
  size_t nrule, cap_rule;
  source *srcs;
  size_t nsrc, cap_src;
  dose *doses;
  size_t ndose, cap_dose;
  link *links;
  size_t nlink, cap_link;
  cl_hmap *ing_ix;  /* uint32 RxCUI -> uint32 index into ings */
  cl_hmap *prod_ix; /* uint64 product key -> uint32 index into prods */
  cl_hmap *names;   /* kind byte + name, NUL-padded -> uint32 index */
  cl_hmap *pairs;   /* uint64 (lo index << 32 | hi index) -> uint32 head link + 1 */
  cl_hmap *dose_ix; /* uint64 (ingredient index << 8 | route) -> uint32 index into doses */
  /* remote patient monitoring (kb_rpm.c): in file order; every string a view into strings */
  cl_kb_vital *vitals;
  size_t nvital, cap_vital;
  cl_kb_weight_gain *gains;
  size_t ngain, cap_gain;
  cl_kb_rpm_limit limits[CL_KB_RPM_NLIMITS]; /* .set = 0: the file has none */
};

/* The parser's context: reason filled on CL_EMALFORMED. */
typedef struct pctx {
  cl_kb *kb;
  char *why;
  size_t wn;
} pctx;

#define WHY(p, ...) (snprintf((p)->why, (p)->wn, __VA_ARGS__), CL_EMALFORMED)

/* kb.c's helpers, shared with kb_rpm.c. kb_grow: doubles *p (n elements
 * of size) when n has reached *cap; 0 or CL_ENOMEM. kb_str_dup: s[0..n)
 * copied into the KB's string chunks (NULL: out of memory).
 * kb_valid_name: [a-z][a-z0-9._-]* (capitals too unless lower_only). */
int kb_grow(void **p, size_t *cap, size_t n, size_t size);
const char *kb_str_dup(cl_kb *kb, const char *s, size_t n);
int kb_valid_name(const char *s, int lower_only);
/* kb_rpm.c: a vital, weight-gain, device-silent, device-battery or
 * adherence line, split into tok[0..n). 0, CL_EMALFORMED (p->why), CL_ENOMEM. */
int kb_st_rpm(pctx *p, char **tok, size_t n);

static inline int vec_has(const u32vec *v, uint32_t x) {
  for (size_t i = 0; i < v->n; i++)
    if (v->v[i] == x)
      return 1;
  return 0;
}

typedef struct namekey {
  char k[1 + NAME_MAX_LEN + 1];
} namekey;

static inline void name_key(namekey *nk, int kind, const char *name) {
  memset(nk, 0, sizeof *nk);
  nk->k[0] = (char)kind;
  size_t l = strlen(name);
  memcpy(nk->k + 1, name, l > NAME_MAX_LEN ? NAME_MAX_LEN : l);
}

/* Index of name in namespace kind, or -1. */
static inline long name_find(const cl_kb *kb, int kind, const char *name) {
  if (strlen(name) > NAME_MAX_LEN)
    return -1;
  namekey nk;
  name_key(&nk, kind, name);
  const uint32_t *v = cl_hmap_get(kb->names, &nk);
  return v ? (long)*v : -1;
}

static inline long ing_find(const cl_kb *kb, uint32_t rxcui) {
  const uint32_t *v = cl_hmap_get(kb->ing_ix, &rxcui);
  return v ? (long)*v : -1;
}

/* A decimal RxCUI: 1-10 digits, nonzero, below 2^32. */
static inline int parse_rxcui(const char *s, uint32_t *out) {
  size_t l = strlen(s);
  if (l == 0 || l > 10 || strspn(s, "0123456789") != l || s[0] == '0')
    return -1;
  unsigned long long v = strtoull(s, NULL, 10);
  if (v > UINT32_MAX)
    return -1;
  *out = (uint32_t)v;
  return 0;
}

static inline uint64_t prod_key_rxcui(uint32_t rxcui) { return rxcui; }

static inline uint64_t prod_key_ndc(const char ndc11[12]) {
  return (1ull << 62) | strtoull(ndc11, NULL, 10);
}

static inline int route_index(const char *r) {
  static const char *const ROUTES[] = {"oral",   "iv",          "im",      "sc",     "sublingual",
                                       "rectal", "transdermal", "inhaled", "topical"};
  for (size_t i = 0; i < sizeof ROUTES / sizeof ROUTES[0]; i++)
    if (!strcmp(ROUTES[i], r))
      return (int)i;
  return -1;
}

#endif

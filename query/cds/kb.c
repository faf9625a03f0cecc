/* The CDS knowledge base (kb.h): the reader (the questions are in
 * kb_query.c).
 *
 * Invariants once parsed: every reference (a product's ingredients, a
 * class's or group's members, an interaction's sides, a dose's ingredient,
 * an interaction's source) names something declared above it; every
 * ingredient's class and group lists are the inverse of the classes' and
 * groups' member lists; `pairs` maps each unordered pair of distinct
 * ingredients to the chain of rules that cover it, each rule at most once
 * per pair. Nothing changes after cl_kb_parse returns. */
#include "query/cds/kb.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/cds/kb_int.h"
#include "store/alloc.h"

static const char *const SEVERITIES[] = {NULL, "minor", "moderate", "major", "contraindicated"};

/* ------------------------------------------------------------ helpers */

int kb_grow(void **p, size_t *cap, size_t n, size_t size) {
  if (n < *cap)
    return 0;
  size_t nc = *cap ? *cap * 2 : 16;
  void *np = cl_realloc(*p, nc * size);
  if (!np)
    return CL_ENOMEM;
  *p = np;
  *cap = nc;
  return 0;
}

static int vec_push(u32vec *v, uint32_t x) {
  for (size_t i = 0; i < v->n; i++)
    if (v->v[i] == x)
      return 0; /* sets, not lists */
  if (kb_grow((void **)&v->v, &v->cap, v->n, sizeof *v->v))
    return CL_ENOMEM;
  v->v[v->n++] = x;
  return 0;
}

const char *kb_str_dup(cl_kb *kb, const char *s, size_t n) {
  chunk *c = kb->strings;
  if (!c || c->cap - c->used < n + 1) {
    size_t cap = n + 1 > 16384 ? n + 1 : 16384;
    chunk *nc = cl_malloc(sizeof *nc + cap);
    if (!nc)
      return NULL;
    nc->next = c;
    nc->used = 0;
    nc->cap = cap;
    kb->strings = c = nc;
  }
  char *d = c->data + c->used;
  memcpy(d, s, n);
  d[n] = '\0';
  c->used += n + 1;
  return d;
}

/* Class and group names: [a-z][a-z0-9._-]*; ids and source keys may also
 * hold capitals. */
int kb_valid_name(const char *s, int lower_only) {
  size_t l = strlen(s);
  if (l == 0 || l > NAME_MAX_LEN)
    return 0;
  if (!((s[0] >= 'a' && s[0] <= 'z') || (!lower_only && s[0] >= 'A' && s[0] <= 'Z')))
    return 0;
  for (size_t i = 0; i < l; i++) {
    char c = s[i];
    int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ||
             (!lower_only && c >= 'A' && c <= 'Z');
    if (!ok)
      return 0;
  }
  return 1;
}

int cl_kb_ndc11(const char *ndc, char out12[12]) {
  size_t l = strlen(ndc);
  if (l == 11 && strspn(ndc, "0123456789") == 11) {
    memcpy(out12, ndc, 12);
    return 0;
  }
  const char *h1 = strchr(ndc, '-');
  const char *h2 = h1 ? strchr(h1 + 1, '-') : NULL;
  if (!h1 || !h2 || strchr(h2 + 1, '-'))
    return CL_EINVAL;
  size_t a = (size_t)(h1 - ndc), b = (size_t)(h2 - h1 - 1), c = l - (size_t)(h2 - ndc) - 1;
  if (strspn(ndc, "0123456789") != a || strspn(h1 + 1, "0123456789") != b ||
      strspn(h2 + 1, "0123456789") != c)
    return CL_EINVAL;
  /* pad the short segment with a leading zero: 4-4-2, 5-3-2, 5-4-1 */
  size_t pa = 5 - a, pb = 4 - b, pc = 2 - c;
  if (a + b + c == 11 && a == 5 && b == 4 && c == 2)
    pa = pb = pc = 0;
  else if (a + b + c != 10 || a > 5 || b > 4 || c > 2 || a < 4 || b < 3 || c < 1)
    return CL_EINVAL;
  char *o = out12;
  for (size_t i = 0; i < pa; i++)
    *o++ = '0';
  memcpy(o, ndc, a), o += a;
  for (size_t i = 0; i < pb; i++)
    *o++ = '0';
  memcpy(o, h1 + 1, b), o += b;
  for (size_t i = 0; i < pc; i++)
    *o++ = '0';
  memcpy(o, h2 + 1, c), o += c;
  *o = '\0';
  return 0;
}

/* A quantity with unit: <number><mg|g|mcg>[/kg]. Returns 0 with the
 * amount in mg, or -1. */
static int parse_amount(const char *s, double *mg, int *per_kg) {
  size_t i = strspn(s, "0123456789");
  if (i == 0)
    return -1;
  if (s[i] == '.') {
    size_t f = strspn(s + i + 1, "0123456789");
    if (f == 0)
      return -1;
    i += 1 + f;
  }
  char num[32];
  if (i >= sizeof num)
    return -1;
  memcpy(num, s, i);
  num[i] = '\0';
  double q = strtod(num, NULL);
  const char *u = s + i;
  char unit[8];
  size_t ul = strcspn(u, "/");
  if (ul == 0 || ul >= sizeof unit)
    return -1;
  memcpy(unit, u, ul);
  unit[ul] = '\0';
  *per_kg = 0;
  if (u[ul] == '/') {
    if (strcmp(u + ul, "/kg") != 0)
      return -1;
    *per_kg = 1;
  }
  if (cl_kb_to_mg(q, unit, mg) != 0 || !(*mg > 0))
    return -1;
  return 0;
}

int cl_kb_to_mg(double qty, const char *unit, double *mg) {
  if (!isfinite(qty) || qty < 0)
    return CL_EINVAL;
  if (!strcmp(unit, "mg"))
    *mg = qty;
  else if (!strcmp(unit, "g"))
    *mg = qty * 1000.0;
  else if (!strcmp(unit, "mcg"))
    *mg = qty / 1000.0;
  else
    return CL_EINVAL;
  return 0;
}

/* ------------------------------------------------------------ parsing */

/* Splits s in place into at most max whitespace-separated tokens. */
static size_t split(char *s, char **tok, size_t max) {
  size_t n = 0;
  char *save = NULL;
  for (char *t = strtok_r(s, " \t\r", &save); t; t = strtok_r(NULL, " \t\r", &save)) {
    if (n == max)
      return max + 1;
    tok[n++] = t;
  }
  return n;
}

static int name_put(pctx *p, int kind, const char *name, uint32_t idx) {
  namekey nk;
  name_key(&nk, kind, name);
  return cl_hmap_put(p->kb->names, &nk, &idx) ? 0 : CL_ENOMEM;
}

/* A reference to ingredients: an RxCUI declared above, or a class name.
 * Sets *one (an ingredient index) or *cls (a class index). */
static int ref(pctx *p, const char *tok, long *one, long *cls) {
  uint32_t rx;
  *one = *cls = -1;
  if (tok[0] >= '0' && tok[0] <= '9') {
    if (parse_rxcui(tok, &rx))
      return WHY(p, "\"%s\" is not an RxCUI", tok);
    if ((*one = ing_find(p->kb, rx)) < 0)
      return WHY(p, "ingredient %s is not declared above (ingredient %s <name>)", tok, tok);
    return 0;
  }
  if ((*cls = name_find(p->kb, K_CLASS, tok)) < 0)
    return WHY(p, "\"%s\" is neither an ingredient RxCUI nor a class declared above", tok);
  return 0;
}

static int st_ingredient(pctx *p, char **tok, size_t n) {
  cl_kb *kb = p->kb;
  uint32_t rx;
  if (n < 3)
    return WHY(p, "an ingredient is: ingredient <rxcui> <name>");
  if (parse_rxcui(tok[1], &rx))
    return WHY(p, "\"%s\" is not an RxCUI", tok[1]);
  if (ing_find(kb, rx) >= 0)
    return WHY(p, "ingredient %s is declared twice", tok[1]);
  uint64_t pk = prod_key_rxcui(rx);
  if (cl_hmap_get(kb->prod_ix, &pk))
    return WHY(p, "RxCUI %s is already declared as a product", tok[1]);
  char name[LINE_MAX_LEN];
  size_t l = 0;
  for (size_t i = 2; i < n; i++) {
    size_t tl = strlen(tok[i]);
    if (l)
      name[l++] = ' ';
    memcpy(name + l, tok[i], tl);
    l += tl;
  }
  if (kb_grow((void **)&kb->ings, &kb->cap_ing, kb->ning, sizeof *kb->ings))
    return CL_ENOMEM;
  ing *g = &kb->ings[kb->ning];
  memset(g, 0, sizeof *g);
  g->rxcui = rx;
  if (!(g->name = kb_str_dup(kb, name, l)))
    return CL_ENOMEM;
  uint32_t idx = (uint32_t)kb->ning;
  if (!cl_hmap_put(kb->ing_ix, &rx, &idx))
    return CL_ENOMEM;
  kb->ning++;
  return 0;
}

static int st_product(pctx *p, char **tok, size_t n) {
  cl_kb *kb = p->kb;
  if (n < 3)
    return WHY(p, "a product is: product <rxcui>|ndc:<ndc> <ingredient rxcui>...");
  if (n - 2 > CL_KB_MAX_PRODUCT_ING)
    return WHY(p, "a product has at most %d ingredients", CL_KB_MAX_PRODUCT_ING);
  uint64_t key;
  if (!strncmp(tok[1], "ndc:", 4)) {
    char ndc[12];
    if (cl_kb_ndc11(tok[1] + 4, ndc))
      return WHY(p, "\"%s\" is not an NDC (11 digits, or hyphenated 5-4-2, 4-4-2, 5-3-2, 5-4-1)",
                 tok[1] + 4);
    key = prod_key_ndc(ndc);
  } else {
    uint32_t rx;
    if (parse_rxcui(tok[1], &rx))
      return WHY(p, "\"%s\" is not a product RxCUI or ndc:<ndc>", tok[1]);
    if (ing_find(kb, rx) >= 0)
      return WHY(p, "RxCUI %s is already declared as an ingredient", tok[1]);
    key = prod_key_rxcui(rx);
  }
  if (cl_hmap_get(kb->prod_ix, &key))
    return WHY(p, "product %s is declared twice", tok[1]);
  prod pr = {0};
  for (size_t i = 2; i < n; i++) {
    uint32_t rx;
    if (parse_rxcui(tok[i], &rx))
      return WHY(p, "\"%s\" is not an ingredient RxCUI", tok[i]);
    if (ing_find(kb, rx) < 0)
      return WHY(p, "ingredient %s is not declared above", tok[i]);
    for (uint32_t j = 0; j < pr.n; j++)
      if (pr.ing[j] == rx)
        return WHY(p, "ingredient %s is listed twice", tok[i]);
    pr.ing[pr.n++] = rx;
  }
  if (kb_grow((void **)&kb->prods, &kb->cap_prod, kb->nprod, sizeof *kb->prods))
    return CL_ENOMEM;
  kb->prods[kb->nprod] = pr;
  uint32_t idx = (uint32_t)kb->nprod;
  if (!cl_hmap_put(kb->prod_ix, &key, &idx))
    return CL_ENOMEM;
  kb->nprod++;
  return 0;
}

/* class and allergy-group: <name> <member>... */
static int st_set(pctx *p, char **tok, size_t n, int kind) {
  cl_kb *kb = p->kb;
  const char *what = kind == K_CLASS ? "class" : "allergy-group";
  if (n < 3)
    return WHY(p, "a %s is: %s <name> <ingredient rxcui or class>...", what, what);
  if (!kb_valid_name(tok[1], 1))
    return WHY(p, "\"%s\" is not a %s name ([a-z][a-z0-9._-]*, at most %d)", tok[1], what,
               NAME_MAX_LEN);
  if (name_find(kb, K_CLASS, tok[1]) >= 0 || name_find(kb, K_GROUP, tok[1]) >= 0)
    return WHY(p, "\"%s\" is already declared as a class or allergy group", tok[1]);
  set **arr = kind == K_CLASS ? &kb->classes : &kb->groups;
  size_t *cnt = kind == K_CLASS ? &kb->nclass : &kb->ngroup;
  size_t *cap = kind == K_CLASS ? &kb->cap_class : &kb->cap_group;
  if (kb_grow((void **)arr, cap, *cnt, sizeof **arr))
    return CL_ENOMEM;
  set *s = &(*arr)[*cnt];
  memset(s, 0, sizeof *s);
  uint32_t self = (uint32_t)*cnt;
  (*cnt)++; /* counted now, so cl_kb_free releases its members on error */
  if (!(s->name = kb_str_dup(kb, tok[1], strlen(tok[1]))))
    return CL_ENOMEM;
  for (size_t i = 2; i < n; i++) {
    long one, cls;
    int rc = ref(p, tok[i], &one, &cls);
    if (rc)
      return rc;
    uint32_t o32 = (uint32_t)one;
    const uint32_t *m = one >= 0 ? &o32 : kb->classes[cls].members.v;
    size_t mn = one >= 0 ? 1 : kb->classes[cls].members.n;
    for (size_t j = 0; j < mn; j++) {
      uint32_t gi = m[j];
      if (vec_push(&s->members, gi) ||
          vec_push(kind == K_CLASS ? &kb->ings[gi].classes : &kb->ings[gi].groups, self))
        return CL_ENOMEM;
    }
  }
  return name_put(p, kind, s->name, self);
}

static int st_source(pctx *p, char **tok, size_t n) {
  cl_kb *kb = p->kb;
  if (n < 3)
    return WHY(p, "a source is: source <key> <citation>");
  if (!kb_valid_name(tok[1], 0))
    return WHY(p, "\"%s\" is not a source key ([A-Za-z][A-Za-z0-9._-]*)", tok[1]);
  if (name_find(kb, K_SOURCE, tok[1]) >= 0)
    return WHY(p, "source %s is declared twice", tok[1]);
  char text[LINE_MAX_LEN];
  size_t l = 0;
  for (size_t i = 2; i < n; i++) {
    size_t tl = strlen(tok[i]);
    if (l)
      text[l++] = ' ';
    memcpy(text + l, tok[i], tl);
    l += tl;
  }
  if (kb_grow((void **)&kb->srcs, &kb->cap_src, kb->nsrc, sizeof *kb->srcs))
    return CL_ENOMEM;
  source *s = &kb->srcs[kb->nsrc];
  if (!(s->key = kb_str_dup(kb, tok[1], strlen(tok[1]))) || !(s->text = kb_str_dup(kb, text, l)))
    return CL_ENOMEM;
  if (name_put(p, K_SOURCE, s->key, (uint32_t)kb->nsrc))
    return CL_ENOMEM;
  kb->nsrc++;
  return 0;
}

static int add_pair(pctx *p, uint32_t x, uint32_t y, uint32_t r) {
  cl_kb *kb = p->kb;
  if (x == y)
    return 0;
  uint64_t key = x < y ? ((uint64_t)x << 32 | y) : ((uint64_t)y << 32 | x);
  uint32_t *head = cl_hmap_get(kb->pairs, &key), h = head ? *head : 0;
  for (uint32_t l = h; l; l = kb->links[l - 1].next)
    if (kb->links[l - 1].rule == r)
      return 0; /* two classes that overlap reach the same pair twice */
  if (kb->nlink >= MAX_PAIRS) {
    snprintf(p->why, p->wn, "class rules expand to more than %u ingredient pairs", MAX_PAIRS);
    return CL_ETOOBIG;
  }
  if (kb_grow((void **)&kb->links, &kb->cap_link, kb->nlink, sizeof *kb->links))
    return CL_ENOMEM;
  kb->links[kb->nlink] = (link){r, h};
  uint32_t nh = (uint32_t)++kb->nlink;
  return cl_hmap_put(kb->pairs, &key, &nh) ? 0 : CL_ENOMEM;
}

/* interaction <id> <a> <b> <severity> source=<key> | <mechanism> | <management> */
static int st_interaction(pctx *p, char *line) {
  cl_kb *kb = p->kb;
  char *bar1 = strchr(line, '|');
  char *bar2 = bar1 ? strchr(bar1 + 1, '|') : NULL;
  if (!bar1 || !bar2 || strchr(bar2 + 1, '|'))
    return WHY(p, "an interaction is: interaction <id> <a> <b> <severity> source=<key> | "
                  "<mechanism> | <management>");
  *bar1 = *bar2 = '\0';
  char *mech = bar1 + 1, *mgmt = bar2 + 1;
  while (*mech == ' ' || *mech == '\t')
    mech++;
  while (*mgmt == ' ' || *mgmt == '\t')
    mgmt++;
  size_t ml = strlen(mech), gl = strlen(mgmt);
  while (ml && (mech[ml - 1] == ' ' || mech[ml - 1] == '\t' || mech[ml - 1] == '\r'))
    ml--;
  while (gl && (mgmt[gl - 1] == ' ' || mgmt[gl - 1] == '\t' || mgmt[gl - 1] == '\r'))
    gl--;
  if (!ml || !gl)
    return WHY(p, "an interaction needs mechanism and management text after | and |");
  char *tok[8];
  size_t n = split(line, tok, 7);
  if (n != 6)
    return WHY(p, "an interaction is: interaction <id> <a> <b> <severity> source=<key> | "
                  "<mechanism> | <management>");
  if (!kb_valid_name(tok[1], 0))
    return WHY(p, "\"%s\" is not an interaction id ([A-Za-z][A-Za-z0-9._-]*)", tok[1]);
  if (name_find(kb, K_RULE, tok[1]) >= 0)
    return WHY(p, "interaction id %s is used twice", tok[1]);
  long a1, ac, b1, bc;
  int rc = ref(p, tok[2], &a1, &ac);
  if (!rc)
    rc = ref(p, tok[3], &b1, &bc);
  if (rc)
    return rc;
  int sev = 0;
  for (int s = CL_KB_MINOR; s <= CL_KB_CONTRAINDICATED; s++)
    if (!strcmp(SEVERITIES[s], tok[4]))
      sev = s;
  if (!sev)
    return WHY(p, "\"%s\" is not a severity (contraindicated, major, moderate, minor)", tok[4]);
  if (strncmp(tok[5], "source=", 7) != 0)
    return WHY(p, "\"%s\" should be source=<key>", tok[5]);
  long src = name_find(kb, K_SOURCE, tok[5] + 7);
  if (src < 0)
    return WHY(p, "source %s is not declared above (source <key> <citation>)", tok[5] + 7);
  if (kb_grow((void **)&kb->rules, &kb->cap_rule, kb->nrule, sizeof *kb->rules))
    return CL_ENOMEM;
  rule *r = &kb->rules[kb->nrule];
  r->sev = sev;
  r->src = (uint32_t)src;
  if (!(r->id = kb_str_dup(kb, tok[1], strlen(tok[1]))) || !(r->mech = kb_str_dup(kb, mech, ml)) ||
      !(r->mgmt = kb_str_dup(kb, mgmt, gl)))
    return CL_ENOMEM;
  uint32_t ri = (uint32_t)kb->nrule;
  if (name_put(p, K_RULE, r->id, ri))
    return CL_ENOMEM;
  kb->nrule++;
  uint32_t aone = (uint32_t)a1, bone = (uint32_t)b1;
  const uint32_t *av = a1 >= 0 ? &aone : kb->classes[ac].members.v;
  const uint32_t *bv = b1 >= 0 ? &bone : kb->classes[bc].members.v;
  size_t an = a1 >= 0 ? 1 : kb->classes[ac].members.n;
  size_t bn = b1 >= 0 ? 1 : kb->classes[bc].members.n;
  for (size_t i = 0; i < an; i++)
    for (size_t j = 0; j < bn; j++)
      if ((rc = add_pair(p, av[i], bv[j], ri)) != 0)
        return rc;
  return 0;
}

/* dose <ingredient> <route> single=<amount> daily=<amount> */
static int st_dose(pctx *p, char **tok, size_t n) {
  cl_kb *kb = p->kb;
  if (n < 4 || n > 6)
    return WHY(p, "a dose is: dose <ingredient rxcui> <route> single=<qty><unit>[/kg] "
                  "daily=<qty><unit>[/kg] (one or both) [source=<key>]");
  uint32_t rx;
  long gi;
  if (parse_rxcui(tok[1], &rx))
    return WHY(p, "\"%s\" is not an ingredient RxCUI", tok[1]);
  if ((gi = ing_find(kb, rx)) < 0)
    return WHY(p, "ingredient %s is not declared above", tok[1]);
  int route = route_index(tok[2]);
  if (route < 0)
    return WHY(p,
               "\"%s\" is not a route (oral iv im sc sublingual rectal transdermal inhaled "
               "topical)",
               tok[2]);
  uint64_t key = (uint64_t)gi << 8 | (uint64_t)route;
  if (cl_hmap_get(kb->dose_ix, &key))
    return WHY(p, "a dose for %s %s is declared twice", tok[1], tok[2]);
  dose d = {-1, -1, 0, 0};
  int have_src = 0;
  for (size_t i = 3; i < n; i++) {
    double *mg;
    int *kg;
    const char *v;
    if (!strncmp(tok[i], "source=", 7)) {
      if (have_src++)
        return WHY(p, "source= is given twice");
      if (name_find(kb, K_SOURCE, tok[i] + 7) < 0)
        return WHY(p, "source %s is not declared above (source <key> <citation>)", tok[i] + 7);
      continue;
    }
    if (!strncmp(tok[i], "single=", 7))
      mg = &d.single_mg, kg = &d.single_kg, v = tok[i] + 7;
    else if (!strncmp(tok[i], "daily=", 6))
      mg = &d.daily_mg, kg = &d.daily_kg, v = tok[i] + 6;
    else
      return WHY(p, "\"%s\" should be single=<qty><unit> or daily=<qty><unit>", tok[i]);
    if (*mg >= 0)
      return WHY(p, "\"%s\" is given twice", tok[i]);
    if (parse_amount(v, mg, kg))
      return WHY(p,
                 "\"%s\" is not a positive amount with a unit (mg, g, mcg), optionally /kg "
                 "(500mg, 4g, 15mg/kg)",
                 v);
  }
  if (d.single_mg < 0 && d.daily_mg < 0)
    return WHY(p, "a dose needs single=, daily= or both");
  if (kb_grow((void **)&kb->doses, &kb->cap_dose, kb->ndose, sizeof *kb->doses))
    return CL_ENOMEM;
  kb->doses[kb->ndose] = d;
  uint32_t idx = (uint32_t)kb->ndose;
  if (!cl_hmap_put(kb->dose_ix, &key, &idx))
    return CL_ENOMEM;
  kb->ndose++;
  return 0;
}

static int st_duplicate(pctx *p, char **tok, size_t n) {
  if (n != 2)
    return WHY(p, "a duplicate-therapy class is: duplicate <class>");
  long c = name_find(p->kb, K_CLASS, tok[1]);
  if (c < 0)
    return WHY(p, "class \"%s\" is not declared above", tok[1]);
  if (p->kb->classes[c].duplicate)
    return WHY(p, "class %s is marked duplicate twice", tok[1]);
  p->kb->classes[c].duplicate = 1;
  return 0;
}

/* Cuts a comment: # at the start of the line or after a blank. */
static void cut_comment(char *s) {
  for (char *h = s; (h = strchr(h, '#')) != NULL; h++)
    if (h == s || h[-1] == ' ' || h[-1] == '\t') {
      *h = '\0';
      return;
    }
}

/* One statement line (comment cut, not blank). state: 0 wants the header,
 * 1 the version, 2 statements. */
static int statement(pctx *p, char *line, int *state) {
  char copy[LINE_MAX_LEN + 1];
  strcpy(copy, line);
  char *tok[CL_KB_MAX_PRODUCT_ING + 64];
  size_t max = sizeof tok / sizeof tok[0] - 1;
  size_t n = split(copy, tok, max);
  if (n == 0)
    return 0; /* the caller skips blank lines; a line of only \r is blank too */
  if (*state == 0) {
    if (n != 2 || strcmp(tok[0], "clinlog-kb") != 0)
      return WHY(p, "the first line must be: clinlog-kb %d", CL_KB_FORMAT);
    if (strcmp(tok[1], "1") != 0)
      return WHY(p, "format version \"%s\" is not one this reader takes (%d)", tok[1],
                 CL_KB_FORMAT);
    *state = 1;
    return 0;
  }
  if (*state == 1) {
    /* a version may start with a digit (a date); otherwise as a name */
    char v[NAME_MAX_LEN + 2] = "v";
    if (n != 2 || strcmp(tok[0], "version") != 0 || strlen(tok[1]) >= NAME_MAX_LEN ||
        !kb_valid_name(strcat(v, tok[1]), 0))
      return WHY(p,
                 "the second line must be: version <kb-version> ([A-Za-z0-9][A-Za-z0-9._-]*, "
                 "at most %d)",
                 NAME_MAX_LEN - 1);
    if (!(p->kb->version = cl_strdup(tok[1])))
      return CL_ENOMEM;
    *state = 2;
    return 0;
  }
  if (!strcmp(tok[0], "interaction")) {
    strcpy(copy, line); /* split() cut the texts */
    return st_interaction(p, copy);
  }
  if (n > max)
    return WHY(p, "more than %zu words on a line", max);
  if (!strcmp(tok[0], "ingredient"))
    return st_ingredient(p, tok, n);
  if (!strcmp(tok[0], "product"))
    return st_product(p, tok, n);
  if (!strcmp(tok[0], "class"))
    return st_set(p, tok, n, K_CLASS);
  if (!strcmp(tok[0], "allergy-group"))
    return st_set(p, tok, n, K_GROUP);
  if (!strcmp(tok[0], "source"))
    return st_source(p, tok, n);
  if (!strcmp(tok[0], "dose"))
    return st_dose(p, tok, n);
  if (!strcmp(tok[0], "duplicate"))
    return st_duplicate(p, tok, n);
  if (!strcmp(tok[0], "vital") || !strcmp(tok[0], "weight-gain") ||
      !strcmp(tok[0], "device-silent") || !strcmp(tok[0], "device-battery") ||
      !strcmp(tok[0], "adherence") || !strcmp(tok[0], "news2"))
    return kb_st_rpm(p, tok, n);
  if (!strcmp(tok[0], "clinlog-kb") || !strcmp(tok[0], "version"))
    return WHY(p, "\"%s\" belongs on the first two lines only", tok[0]);
  return WHY(
      p,
      "\"%s\" is not a statement (ingredient product class interaction allergy-group "
      "dose duplicate source vital weight-gain device-silent device-battery adherence news2)",
      tok[0]);
}

void cl_kb_free(cl_kb *kb) {
  if (!kb)
    return;
  for (size_t i = 0; i < kb->ning; i++) {
    cl_free(kb->ings[i].classes.v);
    cl_free(kb->ings[i].groups.v);
  }
  for (size_t i = 0; i < kb->nclass; i++)
    cl_free(kb->classes[i].members.v);
  for (size_t i = 0; i < kb->ngroup; i++)
    cl_free(kb->groups[i].members.v);
  cl_free(kb->ings);
  cl_free(kb->prods);
  cl_free(kb->classes);
  cl_free(kb->groups);
  cl_free(kb->rules);
  cl_free(kb->srcs);
  cl_free(kb->doses);
  cl_free(kb->links);
  cl_free(kb->vitals);
  cl_free(kb->gains);
  cl_hmap_free(kb->ing_ix);
  cl_hmap_free(kb->prod_ix);
  cl_hmap_free(kb->names);
  cl_hmap_free(kb->pairs);
  cl_hmap_free(kb->dose_ix);
  for (chunk *c = kb->strings, *nx; c; c = nx) {
    nx = c->next;
    cl_free(c);
  }
  cl_free(kb->version);
  cl_free(kb);
}

int cl_kb_parse(const char *text, size_t len, const char *name, cl_kb **out, cl_err *err) {
  cl_kb *kb = cl_calloc(1, sizeof *kb);
  if (!kb)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  kb->ing_ix = cl_hmap_new(sizeof(uint32_t), sizeof(uint32_t));
  kb->prod_ix = cl_hmap_new(sizeof(uint64_t), sizeof(uint32_t));
  kb->names = cl_hmap_new(sizeof(namekey), sizeof(uint32_t));
  kb->pairs = cl_hmap_new(sizeof(uint64_t), sizeof(uint32_t));
  kb->dose_ix = cl_hmap_new(sizeof(uint64_t), sizeof(uint32_t));
  if (!kb->ing_ix || !kb->prod_ix || !kb->names || !kb->pairs || !kb->dose_ix) {
    cl_kb_free(kb);
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  }
  char why[200];
  pctx p = {kb, why, sizeof why};
  int state = 0, rc = 0;
  size_t lineno = 0, pos = 0;
  char line[LINE_MAX_LEN + 1];
  while (pos < len && rc == 0) {
    size_t end = pos;
    while (end < len && text[end] != '\n')
      end++;
    lineno++;
    size_t l = end - pos;
    if (l > LINE_MAX_LEN) {
      rc = cl_err_set(err, CL_EMALFORMED, "%s: line %zu: longer than %d bytes", name, lineno,
                      LINE_MAX_LEN);
      break;
    }
    memcpy(line, text + pos, l);
    line[l] = '\0';
    pos = end + 1;
    if (strlen(line) != l) {
      rc = cl_err_set(err, CL_EMALFORMED, "%s: line %zu: holds a NUL byte", name, lineno);
      break;
    }
    cut_comment(line);
    if (line[strspn(line, " \t\r")] == '\0')
      continue;
    int c = statement(&p, line, &state);
    if (c == CL_ENOMEM)
      rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    else if (c)
      rc = cl_err_set(err, c, "%s: line %zu: %s", name, lineno, why);
  }
  if (rc == 0 && state < 2)
    rc = cl_err_set(err, CL_EMALFORMED, "%s: line %zu: %s", name, lineno + (lineno == 0),
                    state == 0 ? "empty: the first line must be: clinlog-kb 1"
                               : "no version line after the header");
  if (rc) {
    cl_kb_free(kb);
    return rc;
  }
  *out = kb;
  return 0;
}

int cl_kb_load(const char *path, cl_kb **out, cl_err *err) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return cl_err_set(err, CL_EIO, "knowledge base %s: cannot open", path);
  size_t cap = 1 << 16, n = 0, got;
  char *buf = cl_malloc(cap);
  int rc = 0;
  while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
    if ((n += got) < cap)
      continue;
    char *nb = cl_realloc(buf, cap *= 2);
    if (!nb) {
      cl_free(buf);
      buf = NULL;
    } else {
      buf = nb;
    }
  }
  if (!buf)
    rc = cl_err_set(err, CL_ENOMEM, "knowledge base %s: out of memory", path);
  else if (ferror(f))
    rc = cl_err_set(err, CL_EIO, "knowledge base %s: cannot read", path);
  fclose(f);
  if (rc == 0)
    rc = cl_kb_parse(buf, n, path, out, err);
  cl_free(buf);
  return rc;
}

int cl_kb_seed(cl_kb **out, cl_err *err) {
  return cl_kb_parse(cl_kb_seed_text, strlen(cl_kb_seed_text), "seed.kb", out, err);
}

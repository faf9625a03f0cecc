/* The CDS knowledge base (kb.h): the questions, over what kb.c read. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "query/cds/kb_int.h"

const char *cl_kb_version(const cl_kb *kb) { return kb->version; }

const char *cl_kb_ingredient_name(const cl_kb *kb, uint32_t rxcui) {
  long i = ing_find(kb, rxcui);
  return i < 0 ? NULL : kb->ings[i].name;
}

int cl_kb_resolve(const cl_kb *kb, const char *system, const char *code, uint32_t *out, size_t max,
                  size_t *n) {
  uint64_t key;
  *n = 0;
  if (!system || !code)
    return CL_EINVAL;
  if (!strcmp(system, CL_KB_RXNORM)) {
    uint32_t rx;
    if (parse_rxcui(code, &rx))
      return CL_EINVAL;
    if (ing_find(kb, rx) >= 0) {
      if (max)
        out[0] = rx;
      *n = 1;
      return 0;
    }
    key = prod_key_rxcui(rx);
  } else if (!strcmp(system, CL_KB_NDC)) {
    char ndc[12];
    if (cl_kb_ndc11(code, ndc))
      return CL_EINVAL;
    key = prod_key_ndc(ndc);
  } else {
    return CL_EINVAL;
  }
  const uint32_t *pi = cl_hmap_get(kb->prod_ix, &key);
  if (!pi)
    return CL_ENOTFOUND;
  const prod *pr = &kb->prods[*pi];
  for (uint32_t i = 0; i < pr->n && i < max; i++)
    out[i] = pr->ing[i];
  *n = pr->n;
  return 0;
}

size_t cl_kb_classes(const cl_kb *kb, uint32_t rxcui, const char **names, size_t max) {
  long i = ing_find(kb, rxcui);
  if (i < 0)
    return 0;
  const u32vec *c = &kb->ings[i].classes;
  for (size_t j = 0; j < c->n && j < max; j++)
    names[j] = kb->classes[c->v[j]].name;
  return c->n;
}

int cl_kb_in_class(const cl_kb *kb, uint32_t rxcui, const char *name) {
  long i = ing_find(kb, rxcui), c = name_find(kb, K_CLASS, name);
  return i >= 0 && c >= 0 && vec_has(&kb->ings[i].classes, (uint32_t)c);
}

typedef struct found {
  uint32_t rule, a, b;
} found;

static int found_cmp(const void *x, const void *y) {
  const found *f = x, *g = y;
  return f->rule < g->rule ? -1 : f->rule > g->rule;
}

size_t cl_kb_interactions(const cl_kb *kb, const uint32_t *a, size_t na, const uint32_t *b,
                          size_t nb, cl_kb_interaction *out, size_t max) {
  found f[MAX_FOUND];
  size_t nf = 0;
  for (size_t i = 0; i < na; i++) {
    long x = ing_find(kb, a[i]);
    if (x < 0)
      continue;
    for (size_t j = 0; j < nb; j++) {
      long y = ing_find(kb, b[j]);
      if (y < 0 || x == y)
        continue;
      uint64_t key = x < y ? ((uint64_t)x << 32 | (uint64_t)y) : ((uint64_t)y << 32 | (uint64_t)x);
      const uint32_t *head = cl_hmap_get(kb->pairs, &key);
      for (uint32_t l = head ? *head : 0; l; l = kb->links[l - 1].next) {
        uint32_t r = kb->links[l - 1].rule;
        size_t k = 0;
        while (k < nf && f[k].rule != r)
          k++;
        if (k == nf && nf < MAX_FOUND)
          f[nf++] = (found){r, a[i], b[j]};
      }
    }
  }
  /* most severe first, then file order: sort by rule index within each
   * severity, emitting severities from the top */
  qsort(f, nf, sizeof f[0], found_cmp);
  size_t w = 0;
  for (int s = CL_KB_CONTRAINDICATED; s >= CL_KB_MINOR; s--)
    for (size_t k = 0; k < nf; k++) {
      const rule *r = &kb->rules[f[k].rule];
      if (r->sev != s)
        continue;
      if (w < max)
        out[w] = (cl_kb_interaction){r->id,
                                     r->sev,
                                     f[k].a,
                                     f[k].b,
                                     r->mech,
                                     r->mgmt,
                                     kb->srcs[r->src].key,
                                     kb->srcs[r->src].text};
      w++;
    }
  return w;
}

int cl_kb_allergy(const cl_kb *kb, uint32_t rxcui, const char *allergen, const char **via) {
  long x = ing_find(kb, rxcui);
  uint32_t rx;
  if (via)
    *via = NULL;
  if (!allergen)
    return CL_KB_ALLERGY_NONE;
  if (parse_rxcui(allergen, &rx) == 0) {
    if (rx == rxcui)
      return CL_KB_ALLERGY_SAME;
    long y = ing_find(kb, rx);
    if (x < 0 || y < 0)
      return CL_KB_ALLERGY_NONE;
    const u32vec *g = &kb->ings[x].groups;
    for (size_t i = 0; i < g->n; i++)
      if (vec_has(&kb->ings[y].groups, g->v[i])) {
        if (via)
          *via = kb->groups[g->v[i]].name;
        return CL_KB_ALLERGY_GROUP;
      }
    return CL_KB_ALLERGY_NONE;
  }
  if (x < 0)
    return CL_KB_ALLERGY_NONE;
  long g = name_find(kb, K_GROUP, allergen);
  if (g >= 0 && vec_has(&kb->ings[x].groups, (uint32_t)g)) {
    if (via)
      *via = kb->groups[g].name;
    return CL_KB_ALLERGY_MEMBER;
  }
  long c = name_find(kb, K_CLASS, allergen);
  if (c >= 0 && vec_has(&kb->ings[x].classes, (uint32_t)c)) {
    if (via)
      *via = kb->classes[c].name;
    return CL_KB_ALLERGY_MEMBER;
  }
  return CL_KB_ALLERGY_NONE;
}

int cl_kb_dose_check(const cl_kb *kb, uint32_t rxcui, const char *route, double qty,
                     const char *unit, double weight_kg, int daily, cl_kb_dose_result *res) {
  double mg;
  int rt = route ? route_index(route) : -1;
  if (rt < 0 || !unit || cl_kb_to_mg(qty, unit, &mg))
    return CL_EINVAL;
  cl_kb_dose_result r = {CL_KB_DOSE_NO_LIMIT, mg, 0, 0};
  long gi = ing_find(kb, rxcui);
  const uint32_t *di = NULL;
  if (gi >= 0) {
    uint64_t key = (uint64_t)gi << 8 | (uint64_t)rt;
    di = cl_hmap_get(kb->dose_ix, &key);
  }
  if (di) {
    const dose *d = &kb->doses[*di];
    double lim = daily ? d->daily_mg : d->single_mg;
    r.per_kg = daily ? d->daily_kg : d->single_kg;
    if (lim >= 0) {
      if (r.per_kg && !(weight_kg > 0 && isfinite(weight_kg))) {
        r.verdict = CL_KB_DOSE_NEED_WEIGHT;
        r.limit_mg = lim;
      } else {
        r.limit_mg = r.per_kg ? lim * weight_kg : lim;
        /* a relative tolerance, so 4 g and 4000 mg or 0.5 g and 500000 mcg
         * compare equal despite binary fractions */
        r.verdict = mg > r.limit_mg * (1 + 1e-9) ? CL_KB_DOSE_OVER : CL_KB_DOSE_OK;
      }
    }
  }
  *res = r;
  return 0;
}

int cl_kb_duplicate(const cl_kb *kb, const uint32_t *a, size_t na, const uint32_t *b, size_t nb,
                    const char **cls) {
  if (cls)
    *cls = NULL;
  for (size_t i = 0; i < na; i++) {
    long x = ing_find(kb, a[i]);
    if (x < 0)
      continue;
    const u32vec *c = &kb->ings[x].classes;
    for (size_t k = 0; k < c->n; k++) {
      if (!kb->classes[c->v[k]].duplicate)
        continue;
      for (size_t j = 0; j < nb; j++) {
        long y = ing_find(kb, b[j]);
        if (y >= 0 && vec_has(&kb->ings[y].classes, c->v[k])) {
          if (cls)
            *cls = kb->classes[c->v[k]].name;
          return 1;
        }
      }
    }
  }
  return 0;
}

void cl_kb_get_stats(const cl_kb *kb, cl_kb_stats *st) {
  *st = (cl_kb_stats){kb->ning,  kb->nprod, kb->nclass, kb->nrule, kb->nlink, kb->ngroup,
                      kb->ndose, kb->nsrc,  kb->nvital, kb->ngain, 0};
  for (int i = 0; i < CL_KB_RPM_NLIMITS; i++)
    st->rpm_limits += kb->limits[i].set ? 1u : 0u;
}

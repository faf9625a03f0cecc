/* The matching side of the FHIR query engine (engine_int.h): FHIR dates as
 * the ranges they cover, the values a search parameter reaches in a
 * resource, and a parsed criterion (params.c) matched against a resource.
 *
 * Semantics (FHIR R4 search): a date value, with its prefix, is compared as
 * the range its precision covers ("2026-11" is all of November, UTC unless
 * it has a zone) against the range the resource's element covers (a Period's
 * open end is unbounded); a quantity has the implicit precision of how it
 * was written; strings match case-insensitively from the start unless
 * :exact or :contains; tokens match [system]|code against codes, Codings,
 * CodeableConcepts, Identifiers, ContactPoints and booleans; a reference
 * matches by id, Type/id, or a URL ending in it. An OR list matches if any
 * of its values does; :not negates a token's whole list.
 *
 * Resources are in their stored form (decimals marked, fj.h). Nothing here
 * touches the store: a chained criterion gets its targets from the caller's
 * fe_chain_fn. Every function is reentrant and keeps no state. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "query/fhir/engine_int.h"
#include "query/fhir/fj.h"

/* ------------------------------------------------------------ dates */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = (unsigned)(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static int num(const char *s, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (!isdigit((unsigned char)s[i]))
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return 0;
}

static int days_in_month(int y, int m) {
  static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
    return 29;
  return d[m - 1];
}

int cl_fhir_date_range(const char *s, int64_t *lo, int64_t *hi) {
  int y, mo = 1, d = 1, h = 0, mi = 0, sec = 0, ms = 0;
  size_t n = strlen(s), i = 0;
  if (n < 4 || num(s, 4, &y))
    return -1;
  i = 4;
  int prec = 0; /* 0 year, 1 month, 2 day, 3 minute, 4 second, 5 ms */
  if (i < n && s[i] == '-') {
    if (num(s + i + 1, 2, &mo) || mo < 1 || mo > 12)
      return -1;
    i += 3;
    prec = 1;
    if (i < n && s[i] == '-') {
      if (num(s + i + 1, 2, &d) || d < 1 || d > days_in_month(y, mo))
        return -1;
      i += 3;
      prec = 2;
      if (i < n && s[i] == 'T') {
        if (num(s + i + 1, 2, &h) || s[i + 3] != ':' || num(s + i + 4, 2, &mi) || h > 23 || mi > 59)
          return -1;
        i += 6;
        prec = 3;
        if (i < n && s[i] == ':') {
          if (num(s + i + 1, 2, &sec) || sec > 60)
            return -1;
          i += 3;
          prec = 4;
          if (i < n && s[i] == '.') {
            i++;
            int digits = 0, frac = 0;
            while (i < n && isdigit((unsigned char)s[i])) {
              if (digits < 3)
                frac = frac * 10 + (s[i] - '0');
              digits++;
              i++;
            }
            if (digits == 0)
              return -1;
            for (int k = digits; k < 3; k++)
              frac *= 10;
            ms = frac;
            prec = 5;
          }
        }
      }
    }
  }
  int64_t off_min = 0;
  if (i < n) {
    if (prec < 3)
      return -1; /* a zone needs a time */
    if (s[i] == 'Z') {
      i++;
    } else if (s[i] == '+' || s[i] == '-') {
      int oh, om;
      if (num(s + i + 1, 2, &oh) || s[i + 3] != ':' || num(s + i + 4, 2, &om) || oh > 14 || om > 59)
        return -1;
      off_min = (s[i] == '-' ? -1 : 1) * (oh * 60 + om);
      i += 6;
    } else {
      return -1;
    }
    if (i != n)
      return -1;
  }
  int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
  int64_t t = ((days * 24 + h) * 60 + mi) * 60000 + (int64_t)sec * 1000 + ms - off_min * 60000;
  int64_t span;
  switch (prec) {
  case 0:
    span = (days_from_civil(y + 1, 1, 1) - days) * 86400000;
    break;
  case 1:
    span = (int64_t)days_in_month(y, mo) * 86400000;
    break;
  case 2:
    span = 86400000;
    break;
  case 3:
    span = 60000;
    break;
  case 4:
    span = 1000;
    break;
  default:
    span = 1;
  }
  *lo = t;
  *hi = t + span;
  return 0;
}

/* ------------------------------------------------------------ values of a resource */

static void walk(json_t *node, const char *path, json_t *out) {
  if (node == NULL)
    return;
  if (json_is_array(node)) {
    for (size_t i = 0; i < json_array_size(node); i++)
      walk(json_array_get(node, i), path, out);
    return;
  }
  if (*path == '\0') {
    json_array_append(out, node);
    return;
  }
  const char *dot = strchr(path, '.');
  size_t n = dot ? (size_t)(dot - path) : strlen(path);
  char key[64];
  if (n >= sizeof key || !json_is_object(node))
    return;
  memcpy(key, path, n);
  key[n] = '\0';
  walk(json_object_get(node, key), dot ? dot + 1 : "", out);
}

/* Every value a parameter's paths reach (a new array). */
json_t *fe_values_of(json_t *res, const pdef *d) {
  json_t *out = json_array();
  char buf[256];
  snprintf(buf, sizeof buf, "%s", d->paths);
  char *save = NULL;
  for (char *alt = strtok_r(buf, "|", &save); alt; alt = strtok_r(NULL, "|", &save))
    walk(res, alt, out);
  return out;
}

/* ------------------------------------------------------------ matching */

static int ieq(const char *a, const char *b) { return a && b && strcasecmp(a, b) == 0; }

/* Case-insensitive: does s start with / contain v? */
static int istarts(const char *s, const char *v) { return s && strncasecmp(s, v, strlen(v)) == 0; }
static int icontains(const char *s, const char *v) {
  if (s == NULL)
    return 0;
  size_t n = strlen(v);
  for (; *s; s++)
    if (strncasecmp(s, v, n) == 0)
      return 1;
  return n == 0;
}

/* token: [system]|[code], code, |code, system| against a code, Coding,
 * CodeableConcept, Identifier, ContactPoint or boolean. */
static int token_one(json_t *v, const char *sys, const char *code, int has_bar) {
  if (json_is_string(v) || json_is_boolean(v)) {
    const char *s = json_is_string(v) ? json_string_value(v) : json_is_true(v) ? "true" : "false";
    return (!has_bar || sys[0] == '\0') && code[0] && strcmp(s, code) == 0;
  }
  if (!json_is_object(v))
    return 0;
  json_t *coding = json_object_get(v, "coding");
  if (coding != NULL) {
    for (size_t i = 0; i < json_array_size(coding); i++)
      if (token_one(json_array_get(coding, i), sys, code, has_bar))
        return 1;
    return 0;
  }
  const char *vs = json_string_value(json_object_get(v, "system"));
  const char *vc = json_string_value(json_object_get(v, "code"));
  if (vc == NULL)
    vc = json_string_value(json_object_get(v, "value")); /* Identifier, ContactPoint */
  if (has_bar) {
    if (sys[0] == '\0' && vs != NULL)
      return 0; /* |code: no system */
    if (sys[0] != '\0' && (vs == NULL || strcmp(vs, sys) != 0))
      return 0;
    return code[0] == '\0' || (vc != NULL && strcmp(vc, code) == 0);
  }
  return vc != NULL && strcmp(vc, code) == 0;
}

static int token_text(json_t *v, const char *text) {
  if (!json_is_object(v))
    return 0;
  if (icontains(json_string_value(json_object_get(v, "text")), text) ||
      icontains(json_string_value(json_object_get(v, "display")), text))
    return 1;
  json_t *coding = json_object_get(v, "coding");
  for (size_t i = 0; i < json_array_size(coding); i++)
    if (icontains(json_string_value(json_object_get(json_array_get(coding, i), "display")), text))
      return 1;
  return 0;
}

/* The range an element of a resource covers. */
int fe_value_range(json_t *v, int64_t *lo, int64_t *hi) {
  if (json_is_string(v))
    return cl_fhir_date_range(json_string_value(v), lo, hi);
  if (json_is_object(v)) { /* Period: an open end is unbounded */
    const char *s = json_string_value(json_object_get(v, "start"));
    const char *e = json_string_value(json_object_get(v, "end"));
    int64_t a, b;
    *lo = INT64_MIN;
    *hi = INT64_MAX;
    if (s != NULL && cl_fhir_date_range(s, lo, &b) != 0)
      return -1;
    if (e != NULL && cl_fhir_date_range(e, &a, hi) != 0)
      return -1;
    return s || e ? 0 : -1;
  }
  return -1;
}

int fe_prefix_of(const char *v, char out[3]) {
  static const char *const p[] = {"eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"};
  for (size_t i = 0; i < 9; i++)
    if (strncmp(v, p[i], 2) == 0 && (isdigit((unsigned char)v[2]) || v[2] == '-')) {
      memcpy(out, p[i], 3);
      return 2;
    }
  memcpy(out, "eq", 3);
  return 0;
}

static int date_cmp(const char *pfx, int64_t tlo, int64_t thi, int64_t plo, int64_t phi,
                    int64_t now) {
  if (!strcmp(pfx, "eq"))
    return tlo >= plo && thi <= phi;
  if (!strcmp(pfx, "ne"))
    return !(tlo >= plo && thi <= phi);
  if (!strcmp(pfx, "gt"))
    return thi > phi;
  if (!strcmp(pfx, "lt"))
    return tlo < plo;
  if (!strcmp(pfx, "ge"))
    return thi > phi || (tlo >= plo && thi <= phi);
  if (!strcmp(pfx, "le"))
    return tlo < plo || (tlo >= plo && thi <= phi);
  if (!strcmp(pfx, "sa"))
    return tlo >= phi;
  if (!strcmp(pfx, "eb"))
    return thi <= plo;
  /* ap: within 10% of the distance to now (at least a day) of the value */
  int64_t mid = plo / 2 + phi / 2, gap = llabs(now - mid) / 10;
  if (gap < 86400000)
    gap = 86400000;
  return thi > plo - gap && tlo < phi + gap;
}

/* A number of the stored form: a marked decimal string, or a JSON number. */
static int number_of(json_t *v, double *out) {
  if (json_is_number(v)) {
    *out = json_number_value(v);
    return 0;
  }
  const char *s = json_string_value(v);
  if (s == NULL || s[0] != FJ_DECIMAL_MARK)
    return -1;
  char *end;
  *out = strtod(s + 1, &end);
  return *end == '\0' ? 0 : -1;
}

/* value-quantity: [prefix]number[|system|code] with the number's implicit
 * precision (5.4 means [5.35, 5.45)). */
static int quantity_match(json_t *v, const char *val, const char *pfx) {
  double tv;
  if (!json_is_object(v) || number_of(json_object_get(v, "value"), &tv))
    return 0;
  char num_s[64], sys[256] = "", code[128] = "";
  const char *bar = strchr(val, '|');
  snprintf(num_s, sizeof num_s, "%.*s", bar ? (int)(bar - val) : (int)strlen(val), val);
  if (bar != NULL) {
    const char *bar2 = strchr(bar + 1, '|');
    if (bar2 == NULL)
      return 0;
    snprintf(sys, sizeof sys, "%.*s", (int)(bar2 - bar - 1), bar + 1);
    snprintf(code, sizeof code, "%s", bar2 + 1);
  }
  if (sys[0] && !ieq(json_string_value(json_object_get(v, "system")), sys))
    return 0;
  const char *vcode = json_string_value(json_object_get(v, "code"));
  const char *vunit = json_string_value(json_object_get(v, "unit"));
  if (code[0] && !(vcode && !strcmp(code, vcode)) && !(vunit && !strcmp(code, vunit)))
    return 0;
  char *end;
  double pv = strtod(num_s, &end);
  if (end == num_s || *end != '\0')
    return 0;
  const char *dot = strchr(num_s, '.');
  int decimals = dot ? (int)strlen(dot + 1) : 0;
  double half = 0.5 * pow(10, -decimals);
  double lo = pv - half, hi = pv + half;
  if (!strcmp(pfx, "eq"))
    return tv >= lo && tv < hi;
  if (!strcmp(pfx, "ne"))
    return !(tv >= lo && tv < hi);
  if (!strcmp(pfx, "gt") || !strcmp(pfx, "sa"))
    return tv > pv;
  if (!strcmp(pfx, "lt") || !strcmp(pfx, "eb"))
    return tv < pv;
  if (!strcmp(pfx, "ge"))
    return tv >= pv;
  if (!strcmp(pfx, "le"))
    return tv <= pv;
  double gap = fabs(pv) * 0.1; /* ap */
  return tv >= pv - gap && tv <= pv + gap;
}

static int string_match(json_t *v, const char *val, const char *mod) {
  if (json_is_object(v)) { /* HumanName, Address: any of its parts */
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x) {
      if (strcmp(k, "use") == 0 || strcmp(k, "period") == 0)
        continue;
      if (string_match(x, val, mod))
        return 1;
    }
    return 0;
  }
  if (json_is_array(v)) {
    for (size_t i = 0; i < json_array_size(v); i++)
      if (string_match(json_array_get(v, i), val, mod))
        return 1;
    return 0;
  }
  const char *s = json_string_value(v);
  if (s == NULL)
    return 0;
  if (mod && !strcmp(mod, "exact"))
    return strcmp(s, val) == 0;
  if (mod && !strcmp(mod, "contains"))
    return icontains(s, val);
  return istarts(s, val);
}

/* reference: "123" (any type), "Patient/123", or a URL ending in it. */
static int ref_match(json_t *v, const char *val, const char *type_mod) {
  const char *r = json_string_value(json_object_get(v, "reference"));
  if (r == NULL)
    return 0;
  const char *h = strstr(r, "/_history/");
  size_t rl = h ? (size_t)(h - r) : strlen(r);
  const char *slash = memchr(r, '/', rl);
  if (slash == NULL)
    return 0;
  char rtype[64];
  snprintf(rtype, sizeof rtype, "%.*s", (int)(slash - r), r);
  const char *rid = slash + 1;
  size_t ridl = rl - (size_t)(rid - r);
  if (type_mod != NULL && strcmp(type_mod, rtype) != 0)
    return 0;
  const char *vs = strrchr(val, '/');
  if (vs == NULL) /* a bare id */
    return strlen(val) == ridl && strncmp(val, rid, ridl) == 0;
  /* Type/id, possibly the tail of an absolute URL */
  size_t vl = strlen(val);
  return vl >= rl && strncmp(val + vl - rl, r, rl) == 0 && (vl == rl || val[vl - rl - 1] == '/');
}

/* ------------------------------------------------------------ criteria */

int fe_crit_match(json_t *res, const crit *c, int64_t now, fe_chain_fn chain, void *ctx,
                  cl_err *err) {
  if (!strcmp(c->mod, "missing")) {
    json_t *vals = fe_values_of(res, c->d);
    int missing = json_array_size(vals) == 0;
    json_decref(vals);
    return (strcmp(c->value, "true") == 0) == missing;
  }
  char buf[1024], *alts[32];
  snprintf(buf, sizeof buf, "%s", c->value);
  size_t n = fe_split_or(buf, alts, 32);
  if (c->chain[0] != '\0') { /* subject:Patient.identifier=... */
    const char *rtype = c->mod[0] ? c->mod : "Patient";
    json_t *ids = json_array();
    for (size_t i = 0; i < n; i++)
      if (chain(ctx, rtype, c->chain, alts[i], ids, now, err) < 0) {
        json_decref(ids);
        return -1;
      }
    json_t *vals = fe_values_of(res, c->d);
    int hit = 0;
    for (size_t i = 0; !hit && i < json_array_size(vals); i++)
      for (size_t k = 0; !hit && k < json_array_size(ids); k++)
        hit = ref_match(json_array_get(vals, i), json_string_value(json_array_get(ids, k)), rtype);
    json_decref(vals);
    json_decref(ids);
    return hit;
  }
  int hit = 0;
  for (size_t i = 0; !hit && i < n; i++)
    hit = fe_crit_value(res, c, alts[i], now);
  if (!strcmp(c->mod, "not") && c->d->kind == K_TOKEN)
    return !hit;
  return hit;
}

/* A token's value [system|]code split at its first '|' (truncated to the
 * buffers); returns the '|' or NULL. */
static const char *token_parts(const char *val, char sys[512], char code[256]) {
  const char *bar = strchr(val, '|');
  sys[0] = '\0';
  if (bar) {
    snprintf(sys, 512, "%.*s", (int)(bar - val), val);
    snprintf(code, 256, "%s", bar + 1);
  } else {
    snprintf(code, 256, "%s", val);
  }
  return bar;
}

/* 1 if JSON writes s as it is (fj.h: only '"', '\\' and control
 * characters are escaped). */
static int verbatim(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == '"' || *s == '\\')
      return 0;
  return 1;
}

int fe_crit_may_match(const char *raw, size_t n, const crit *c) {
  if (raw == NULL || c->d->kind != K_TOKEN || c->mod[0] != '\0' || c->chain[0] != '\0')
    return 1;
  /* the values as fe_crit_match and fe_crit_value take them */
  char buf[1024], *alts[32];
  snprintf(buf, sizeof buf, "%s", c->value);
  size_t na = fe_split_or(buf, alts, 32);
  for (size_t i = 0; i < na; i++) {
    char sys[512], code[256];
    token_parts(alts[i], sys, code);
    /* token_one: a code, when there is one, equals a string of the
     * resource; "system|" needs a Coding of that system */
    const char *need = code[0] ? code : sys;
    if (need[0] == '\0' || !verbatim(need) || memmem(raw, n, need, strlen(need)) != NULL)
      return 1;
  }
  return 0;
}

int fe_crit_value(json_t *res, const crit *c, const char *val, int64_t now) {
  json_t *vals = fe_values_of(res, c->d);
  int hit = 0;
  const pdef *d = c->d;
  if (d->kind == K_TOKEN) {
    char sys[512], code[256];
    const char *bar = token_parts(val, sys, code);
    for (size_t i = 0; !hit && i < json_array_size(vals); i++)
      hit = !strcmp(c->mod, "text") ? token_text(json_array_get(vals, i), val)
                                    : token_one(json_array_get(vals, i), sys, code, bar != NULL);
  } else if (d->kind == K_DATE) {
    char pfx[3];
    int skip = fe_prefix_of(val, pfx);
    int64_t plo, phi, tlo, thi;
    if (cl_fhir_date_range(val + skip, &plo, &phi) == 0)
      for (size_t i = 0; !hit && i < json_array_size(vals); i++)
        if (fe_value_range(json_array_get(vals, i), &tlo, &thi) == 0)
          hit = date_cmp(pfx, tlo, thi, plo, phi, now);
  } else if (d->kind == K_STRING) {
    for (size_t i = 0; !hit && i < json_array_size(vals); i++)
      hit = string_match(json_array_get(vals, i), val, c->mod);
  } else if (d->kind == K_REFERENCE) {
    for (size_t i = 0; !hit && i < json_array_size(vals); i++)
      hit = ref_match(json_array_get(vals, i), val, c->mod[0] ? c->mod : NULL);
  } else if (d->kind == K_QUANTITY) {
    char pfx[3];
    int skip = fe_prefix_of(val, pfx);
    for (size_t i = 0; !hit && i < json_array_size(vals); i++)
      hit = quantity_match(json_array_get(vals, i), val + skip, pfx);
  }
  json_decref(vals);
  return hit;
}

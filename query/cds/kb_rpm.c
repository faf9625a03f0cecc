/* The knowledge base's remote-patient-monitoring statements (kb.h, "remote
 * patient monitoring"): their reader, the questions the RPM checker asks,
 * and the UCUM conversions a reading goes through before it is compared.
 *
 * Invariants once parsed: every rule names a source declared above it; a
 * vital's unit and a weight-gain's amount are in units cl_kb_ucum_convert
 * knows; (code, direction, value) of vitals and (code, days) of weight
 * gains are unique; device-silent, device-battery and adherence are set at
 * most once each. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/cds/kb_int.h"

#define GLUCOSE_MG_DL_PER_MMOL_L 18.016 /* glucose, 180.16 g/mol */

/* ------------------------------------------------------------ units */

/* The kind and scale of a unit: v_in_base = v * mul + add. */
typedef struct unit {
  const char *ucum;
  int kind;
  double mul, add;
} unit;

enum { U_MASS = 1, U_TEMP, U_PRESS, U_RATE, U_PCT, U_GLU_MASS, U_GLU_MOL };

static const unit UNITS[] = {
    {"kg", U_MASS, 1.0, 0},
    {"g", U_MASS, 0.001, 0},
    {"[lb_av]", U_MASS, 0.45359237, 0},
    {"Cel", U_TEMP, 1.0, 0},
    {"[degF]", U_TEMP, 5.0 / 9.0, -32.0 * 5.0 / 9.0},
    {"mm[Hg]", U_PRESS, 1.0, 0},
    {"kPa", U_PRESS, 7.50061683, 0},
    {"/min", U_RATE, 1.0, 0},
    {"{beats}/min", U_RATE, 1.0, 0},
    {"{breaths}/min", U_RATE, 1.0, 0},
    {"%", U_PCT, 1.0, 0},
    {"mg/dL", U_GLU_MASS, 1.0, 0},
    {"mmol/L", U_GLU_MOL, 1.0, 0},
};

static const unit *unit_find(const char *u) {
  if (!u)
    return NULL;
  for (size_t i = 0; i < sizeof UNITS / sizeof UNITS[0]; i++)
    if (!strcmp(UNITS[i].ucum, u))
      return &UNITS[i];
  return NULL;
}

/* LOINC glucose codes (serum/plasma, blood, capillary blood by meter,
 * in mass and molar units) for which mg/dL <-> mmol/L holds. */
static int glucose_code(const char *loinc) {
  static const char *const GLU[] = {"2339-0",  "2345-7",  "41653-7", "14743-9",
                                    "14749-6", "15074-8", "2340-8",  "32016-8"};
  for (size_t i = 0; loinc && i < sizeof GLU / sizeof GLU[0]; i++)
    if (!strcmp(GLU[i], loinc))
      return 1;
  return 0;
}

int cl_kb_ucum_convert(double v, const char *from, const char *to, const char *loinc, double *out) {
  if (!isfinite(v) || !from || !to)
    return -1;
  if (!strcmp(from, to)) {
    *out = v;
    return 0;
  }
  const unit *a = unit_find(from), *b = unit_find(to);
  if (!a || !b)
    return -1;
  if (a->kind == b->kind) {
    *out = (v * a->mul + a->add - b->add) / b->mul;
    return 0;
  }
  if (!glucose_code(loinc))
    return -1;
  if (a->kind == U_GLU_MOL && b->kind == U_GLU_MASS)
    *out = v * GLUCOSE_MG_DL_PER_MMOL_L;
  else if (a->kind == U_GLU_MASS && b->kind == U_GLU_MOL)
    *out = v / GLUCOSE_MG_DL_PER_MMOL_L;
  else
    return -1;
  return 0;
}

/* ------------------------------------------------------------ parsing */

/* A LOINC code: 1-7 digits, '-', one check digit (the check digit is not
 * verified: a KB may name codes this reader does not know). */
static int loinc_ok(const char *s) {
  size_t d = strspn(s, "0123456789");
  return d >= 1 && d <= 7 && s[d] == '-' && s[d + 1] >= '0' && s[d + 1] <= '9' && !s[d + 2];
}

/* A plain non-negative decimal (no sign, no exponent): 0 and *v, or -1. */
static int decimal(const char *s, double *v) {
  size_t i = strspn(s, "0123456789");
  if (i == 0 || i > 12)
    return -1;
  if (s[i] == '.') {
    size_t f = strspn(s + i + 1, "0123456789");
    if (f == 0 || f > 6)
      return -1;
    i += 1 + f;
  }
  if (s[i])
    return -1;
  *v = strtod(s, NULL);
  return 0;
}

static int not_loinc(pctx *p, const char *s) {
  return WHY(p, "\"%s\" is not a LOINC code (digits, '-', a check digit)", s);
}

static int severity(pctx *p, const char *s, int *sev) {
  static const char *const W[] = {NULL, "low", "moderate", "high"};
  for (int i = CL_KB_RPM_LOW; i <= CL_KB_RPM_HIGH; i++)
    if (!strcmp(W[i], s)) {
      *sev = i;
      return 0;
    }
  return WHY(p, "\"%s\" is not a severity (low, moderate, high)", s);
}

/* source=<key> declared above: its key and citation. */
static int source_ref(pctx *p, const char *s, const char **key, const char **cit) {
  if (strncmp(s, "source=", 7) != 0)
    return WHY(p, "\"%s\" should be source=<key>", s);
  long i = name_find(p->kb, K_SOURCE, s + 7);
  if (i < 0)
    return WHY(p, "source %s is not declared above (source <key> <citation>)", s + 7);
  *key = p->kb->srcs[i].key;
  *cit = p->kb->srcs[i].text;
  return 0;
}

/* tok[from..n) joined by single blanks, into the KB's strings. */
static const char *join(cl_kb *kb, char **tok, size_t from, size_t n) {
  char text[LINE_MAX_LEN];
  size_t l = 0;
  for (size_t i = from; i < n; i++) {
    size_t tl = strlen(tok[i]);
    if (l)
      text[l++] = ' ';
    memcpy(text + l, tok[i], tl);
    l += tl;
  }
  return kb_str_dup(kb, text, l);
}

/* "a:b:c:d" of the non-empty parts, into the KB's strings: a rule id. */
static const char *rule_id(cl_kb *kb, const char *a, const char *b, const char *c, const char *d) {
  char id[NAME_MAX_LEN * 4];
  int l = snprintf(id, sizeof id, "%s:%s%s%s%s%s", a, b, c[0] ? ":" : "", c, d[0] ? ":" : "", d);
  return kb_str_dup(kb, id, l < 0 ? 0 : (size_t)l < sizeof id ? (size_t)l : sizeof id - 1);
}

/* vital <loinc> low|high <value> <unit> <severity> source=<key> <text...> */
static int st_vital(pctx *p, char **tok, size_t n) {
  cl_kb *kb = p->kb;
  if (n < 8)
    return WHY(p, "a vital is: vital <loinc> low|high <value> <ucum unit> <low|moderate|high> "
                  "source=<key> <text>");
  cl_kb_vital v = {0};
  if (!loinc_ok(tok[1]))
    return not_loinc(p, tok[1]);
  if (strcmp(tok[2], "low") && strcmp(tok[2], "high"))
    return WHY(p, "\"%s\" should be low (alerts below) or high (alerts above)", tok[2]);
  v.high = tok[2][0] == 'h';
  if (decimal(tok[3], &v.value))
    return WHY(p, "\"%s\" is not a threshold (a plain decimal, e.g. 180 or 3.9)", tok[3]);
  if (!unit_find(tok[4]))
    return WHY(p,
               "\"%s\" is not a unit this reader converts (mm[Hg] kPa %% /min {beats}/min "
               "{breaths}/min mg/dL mmol/L kg g [lb_av] Cel [degF])",
               tok[4]);
  int rc = severity(p, tok[5], &v.severity);
  if (!rc)
    rc = source_ref(p, tok[6], &v.source, &v.citation);
  if (rc)
    return rc;
  for (size_t i = 0; i < kb->nvital; i++) {
    const cl_kb_vital *o = &kb->vitals[i];
    double same;
    if (!strcmp(o->loinc, tok[1]) && o->high == v.high &&
        cl_kb_ucum_convert(v.value, tok[4], o->unit, o->loinc, &same) == 0 &&
        fabs(same - o->value) <= 1e-9 * fmax(1, fabs(same)))
      return WHY(p, "a %s threshold of %s %s for %s is declared twice", tok[2], tok[3], tok[4],
                 tok[1]);
    if (!strcmp(o->loinc, tok[1]) && cl_kb_ucum_convert(1, tok[4], o->unit, o->loinc, &same))
      return WHY(p, "unit %s cannot be compared with %s, the unit of %s above", tok[4], o->unit,
                 tok[1]);
  }
  if (kb_grow((void **)&kb->vitals, &kb->cap_vital, kb->nvital, sizeof *kb->vitals))
    return CL_ENOMEM;
  if (!(v.loinc = kb_str_dup(kb, tok[1], strlen(tok[1]))) ||
      !(v.unit = kb_str_dup(kb, tok[4], strlen(tok[4]))) || !(v.text = join(kb, tok, 7, n)) ||
      !(v.rule_id = rule_id(kb, "vital", tok[1], tok[2], tok[3])))
    return CL_ENOMEM;
  kb->vitals[kb->nvital++] = v;
  return 0;
}

/* weight-gain <loinc> <amount> <unit> <days> <severity> source=<key> <text...> */
static int st_weight_gain(pctx *p, char **tok, size_t n) {
  cl_kb *kb = p->kb;
  if (n < 8)
    return WHY(p, "a weight-gain is: weight-gain <loinc> <amount> <kg|g|[lb_av]> <days> "
                  "<low|moderate|high> source=<key> <text>");
  cl_kb_weight_gain g = {0};
  double amount, days;
  if (!loinc_ok(tok[1]))
    return not_loinc(p, tok[1]);
  if (decimal(tok[2], &amount) || !(amount > 0))
    return WHY(p, "\"%s\" is not a positive amount", tok[2]);
  const unit *u = unit_find(tok[3]);
  if (!u || u->kind != U_MASS)
    return WHY(p, "\"%s\" is not a unit of weight (kg, g, [lb_av])", tok[3]);
  if (decimal(tok[4], &days) || days < 1 || days > 31 || days != floor(days))
    return WHY(p, "\"%s\" is not a number of days (1 to 31)", tok[4]);
  int rc = severity(p, tok[5], &g.severity);
  if (!rc)
    rc = source_ref(p, tok[6], &g.source, &g.citation);
  if (rc)
    return rc;
  g.amount_kg = amount * u->mul;
  g.days = (int)days;
  for (size_t i = 0; i < kb->ngain; i++)
    if (!strcmp(kb->gains[i].loinc, tok[1]) && kb->gains[i].days == g.days)
      return WHY(p, "a weight gain over %d days for %s is declared twice", g.days, tok[1]);
  if (kb_grow((void **)&kb->gains, &kb->cap_gain, kb->ngain, sizeof *kb->gains))
    return CL_ENOMEM;
  if (!(g.loinc = kb_str_dup(kb, tok[1], strlen(tok[1]))) || !(g.text = join(kb, tok, 7, n)) ||
      !(g.rule_id = rule_id(kb, "weight-gain", tok[1], tok[2], tok[4])))
    return CL_ENOMEM;
  kb->gains[kb->ngain++] = g;
  return 0;
}

/* device-silent <seconds> | device-battery <percent> | adherence <count>
 * <days>, then <severity> source=<key>. */
static int st_limit(pctx *p, char **tok, size_t n, int which) {
  static const char *const FORM[] = {
      "a device-silent is: device-silent <seconds> <low|moderate|high> source=<key>",
      "a device-battery is: device-battery <percent> <low|moderate|high> source=<key>",
      "an adherence is: adherence <missed doses> <days> <low|moderate|high> source=<key>",
      "a news2 is: news2 <window seconds> <low|moderate|high> source=<key>"};
  cl_kb *kb = p->kb;
  size_t want = which == CL_KB_RPM_ADHERENCE ? 5 : 4;
  if (n != want)
    return WHY(p, "%s", FORM[which]);
  cl_kb_rpm_limit l = {.set = 1};
  double days = 0;
  if (kb->limits[which].set)
    return WHY(p, "%s is declared twice", tok[0]);
  if (decimal(tok[1], &l.value) || l.value != floor(l.value) || l.value < 1 ||
      (which == CL_KB_RPM_BATTERY && l.value > 100) ||
      (which == CL_KB_RPM_SILENT && l.value > 366 * 86400.0) ||
      (which == CL_KB_RPM_ADHERENCE && l.value > 64) ||
      (which == CL_KB_RPM_NEWS2 && (l.value < 60 || l.value > 86400)))
    return WHY(p, "\"%s\" is not a whole number in range (%s)", tok[1],
               which == CL_KB_RPM_SILENT    ? "seconds, 1 to a year"
               : which == CL_KB_RPM_BATTERY ? "percent, 1 to 100"
               : which == CL_KB_RPM_NEWS2   ? "seconds, 60 to 86400"
                                            : "missed doses, 1 to 64");
  if (which == CL_KB_RPM_ADHERENCE &&
      (decimal(tok[2], &days) || days < 1 || days > 31 || days != floor(days)))
    return WHY(p, "\"%s\" is not a number of days (1 to 31)", tok[2]);
  l.days = (int)days;
  int rc = severity(p, tok[want - 2], &l.severity);
  if (!rc)
    rc = source_ref(p, tok[want - 1], &l.source, &l.citation);
  if (rc)
    return rc;
  if (!(l.rule_id = rule_id(kb, tok[0], tok[1], which == CL_KB_RPM_ADHERENCE ? tok[2] : "", "")))
    return CL_ENOMEM;
  kb->limits[which] = l;
  return 0;
}

int kb_st_rpm(pctx *p, char **tok, size_t n) {
  if (!strcmp(tok[0], "vital"))
    return st_vital(p, tok, n);
  if (!strcmp(tok[0], "weight-gain"))
    return st_weight_gain(p, tok, n);
  if (!strcmp(tok[0], "device-silent"))
    return st_limit(p, tok, n, CL_KB_RPM_SILENT);
  if (!strcmp(tok[0], "device-battery"))
    return st_limit(p, tok, n, CL_KB_RPM_BATTERY);
  if (!strcmp(tok[0], "news2"))
    return st_limit(p, tok, n, CL_KB_RPM_NEWS2);
  return st_limit(p, tok, n, CL_KB_RPM_ADHERENCE);
}

/* ------------------------------------------------------------ questions */

const cl_kb_vital *cl_kb_vitals(const cl_kb *kb, size_t *n) {
  *n = kb->nvital;
  return kb->vitals;
}

const cl_kb_weight_gain *cl_kb_weight_gains(const cl_kb *kb, size_t *n) {
  *n = kb->ngain;
  return kb->gains;
}

const cl_kb_rpm_limit *cl_kb_rpm_limit_get(const cl_kb *kb, int which) {
  static const cl_kb_rpm_limit none = {0};
  return which >= 0 && which < CL_KB_RPM_NLIMITS ? &kb->limits[which] : &none;
}

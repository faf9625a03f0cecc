/* The medication checker's shared helpers (check_int.h): codes, quantities,
 * routes and frequencies read from events, the finding a check adds and its
 * idempotency key, and the IssueDetected a finding becomes (check.h). */
#include <ctype.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/cds/check_int.h"

/* ------------------------------------------------------------ helpers */

char *cds_dupstr(const char *s) {
  size_t l = strlen(s) + 1;
  char *p = malloc(l);
  if (p)
    memcpy(p, s, l);
  return p;
}

/* Cuts a truncated UTF-8 sequence off the end of s. */
static void utf8_trim(char *s) {
  size_t l = strlen(s), i = l;
  while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
    i--;
  if (i == 0)
    return;
  unsigned char lead = (unsigned char)s[i - 1];
  size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  if (lead >= 0x80 && l - (i - 1) < need)
    s[i - 1] = '\0';
}

void cds_text(char *dst, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(dst, cap, fmt, ap);
  va_end(ap);
  if (n >= 0 && (size_t)n >= cap)
    utf8_trim(dst);
}

int64_t cds_ts(const Google__Protobuf__Timestamp *ts, int64_t fallback) {
  if (!ts || (ts->seconds == 0 && ts->nanos == 0))
    return fallback;
  if (ts->seconds > INT64_MAX / NS_PER_S - 1 || ts->seconds < INT64_MIN / NS_PER_S + 1)
    return fallback;
  return ts->seconds * NS_PER_S + ts->nanos;
}

int64_t cds_add_days(int64_t t, long long days) {
  if (days <= 0)
    return t;
  if (days > (T_OPEN - t) / NS_PER_DAY)
    return T_OPEN;
  return t + days * NS_PER_DAY;
}

void cds_resolve(const cl_kb *kb, const Clinlog__V1__CodeableConcept *cc, uint32_t *ing,
                 size_t *ning, char code[CODE_LEN]) {
  *ning = 0;
  code[0] = '\0';
  if (!cc)
    return;
  for (size_t i = 0; i < cc->n_coding; i++) {
    const Clinlog__V1__Code *c = cc->coding[i];
    size_t n = 0;
    if (!c || !c->system || !c->code)
      continue;
    if (!code[0])
      cds_text(code, CODE_LEN, "%s|%s", c->system, c->code);
    if (cl_kb_resolve(kb, c->system, c->code, ing, CL_KB_MAX_PRODUCT_ING, &n) == 0 && n) {
      *ning = n < CL_KB_MAX_PRODUCT_ING ? n : CL_KB_MAX_PRODUCT_ING;
      return;
    }
  }
}

/* A plain decimal quantity (no comparator) of 0 or more. */
int cds_qty(const Clinlog__V1__Quantity *q, double *v) {
  if (!q || !q->value || !q->value[0] || (q->comparator && q->comparator[0]))
    return -1;
  char *end;
  double d = strtod(q->value, &end);
  if (*end || !isfinite(d) || d < 0)
    return -1;
  *v = d;
  return 0;
}

const char *cds_mass_unit(const char *u) {
  if (!u)
    return NULL;
  if (!strcmp(u, "mg") || !strcmp(u, "g") || !strcmp(u, "mcg"))
    return u;
  if (!strcmp(u, "ug"))
    return "mcg";
  return NULL;
}

/* KB route names for HL7 v2 table 0162 and SNOMED CT route codes. */
const char *cds_route(const Clinlog__V1__Code *c) {
  static const char *const MAP[][2] = {
      {"oral", "oral"},
      {"PO", "oral"},
      {"26643006", "oral"},
      {"iv", "iv"},
      {"IV", "iv"},
      {"47625008", "iv"},
      {"im", "im"},
      {"IM", "im"},
      {"78421000", "im"},
      {"sc", "sc"},
      {"SC", "sc"},
      {"SQ", "sc"},
      {"34206005", "sc"},
      {"sublingual", "sublingual"},
      {"SL", "sublingual"},
      {"37839007", "sublingual"},
      {"rectal", "rectal"},
      {"PR", "rectal"},
      {"37161004", "rectal"},
      {"transdermal", "transdermal"},
      {"TD", "transdermal"},
      {"45890007", "transdermal"},
      {"inhaled", "inhaled"},
      {"IH", "inhaled"},
      {"447694001", "inhaled"},
      {"topical", "topical"},
      {"TP", "topical"},
      {"6064005", "topical"},
  };
  if (!c || !c->code)
    return NULL;
  for (size_t i = 0; i < sizeof MAP / sizeof MAP[0]; i++)
    if (!strcmp(MAP[i][0], c->code))
      return MAP[i][1];
  return NULL;
}

/* Administrations a day for a frequency as written: QD, BID, TID, QID,
 * daily, qNh / QNH / "every N hours"; 0 if not understood. */
static double per_day(const Clinlog__V1__Dosage *d) {
  const char *f = NULL;
  if (d->frequency_code && d->frequency_code->code && d->frequency_code->code[0])
    f = d->frequency_code->code;
  else if (d->frequency && d->frequency[0])
    f = d->frequency;
  if (!f)
    return 0;
  char s[32];
  size_t n = 0;
  for (; f[n] && n < sizeof s - 1; n++)
    s[n] = (char)toupper((unsigned char)f[n]);
  s[n] = '\0';
  if (!strcmp(s, "QD") || !strcmp(s, "DAILY") || !strcmp(s, "ONCE DAILY"))
    return 1;
  if (!strcmp(s, "BID"))
    return 2;
  if (!strcmp(s, "TID"))
    return 3;
  if (!strcmp(s, "QID"))
    return 4;
  unsigned h = 0;
  char tail[8];
  if ((sscanf(s, "Q%uH%7s", &h, tail) == 1 || sscanf(s, "EVERY %u HOURS%7s", &h, tail) == 1) &&
      h > 0 && h <= 24 && 24 % h == 0)
    return 24.0 / h;
  return 0;
}

void cds_read_dosage(const Clinlog__V1__Dosage *d, dosage *out) {
  memset(out, 0, sizeof *out);
  if (!d)
    return;
  if (d->dose && cds_qty(d->dose, &out->qty) == 0 && d->dose->unit && d->dose->unit[0]) {
    out->has_dose = 1;
    cds_text(out->unit, sizeof out->unit, "%s", d->dose->unit);
  }
  out->route = cds_route(d->route);
  if (d->route && d->route->code)
    cds_text(out->route_raw, sizeof out->route_raw, "%s", d->route->code);
  out->per_day = per_day(d);
}

const char *cds_ing_name(const cl_kb *kb, uint32_t rx, char buf[24]) {
  const char *n = cl_kb_ingredient_name(kb, rx);
  if (n)
    return n;
  snprintf(buf, 24, "RxCUI %u", rx);
  return buf;
}

int cds_has(const uint32_t *a, size_t n, uint32_t x) {
  for (size_t i = 0; i < n; i++)
    if (a[i] == x)
      return 1;
  return 0;
}

int cds_same_set(const uint32_t *a, size_t na, const uint32_t *b, size_t nb) {
  for (size_t i = 0; i < na; i++)
    if (!cds_has(b, nb, a[i]))
      return 0;
  for (size_t i = 0; i < nb; i++)
    if (!cds_has(a, na, b[i]))
      return 0;
  return na > 0 && nb > 0;
}

void cds_key(const uint8_t trigger[16], const char *rule, const uint8_t *other, uint8_t key[16]) {
  static const uint8_t zero[16];
  uint8_t h[crypto_generichash_BYTES];
  crypto_generichash_state s;
  crypto_generichash_init(&s, NULL, 0, sizeof h);
  crypto_generichash_update(&s, (const uint8_t *)"cds1", 4);
  crypto_generichash_update(&s, trigger, 16);
  crypto_generichash_update(&s, (const uint8_t *)rule, strlen(rule) + 1);
  crypto_generichash_update(&s, other ? other : zero, 16);
  crypto_generichash_final(&s, h, sizeof h);
  memcpy(key, h, 16);
}

cl_cds_finding *cds_add(const cl_kb *kb, cl_cds_findings *out, int kind, int severity,
                        const char *code, const char *source, const char *rule,
                        const uint8_t trigger[16], const uint8_t *other) {
  uint8_t key[16];
  cds_key(trigger, rule, other, key);
  for (size_t i = 0; i < out->n; i++)
    if (!memcmp(out->f[i].key, key, 16))
      return NULL;
  if (out->n == CL_CDS_MAX_FINDINGS) {
    out->truncated++;
    return NULL;
  }
  cl_cds_finding *f = &out->f[out->n++];
  memset(f, 0, sizeof *f);
  f->kind = kind;
  f->severity = severity;
  f->code = code;
  f->kb_version = cl_kb_version(kb);
  f->source = source;
  cds_text(f->rule_id, sizeof f->rule_id, "%s", rule);
  memcpy(f->implicated[0], trigger, 16);
  f->n_implicated = 1;
  if (other) {
    memcpy(f->implicated[1], other, 16);
    f->n_implicated = 2;
  }
  memcpy(f->key, key, 16);
  return f;
}

/* ------------------------------------------------------------ IssueDetected */

void cl_cds_issue_fill(const cl_cds_finding *f, const char *stream, int64_t at_ns,
                       cl_cds_issue *out) {
  static const char HEX[] = "0123456789abcdef";
  memset(out, 0, sizeof *out);
  for (int i = 0; i < 16; i++) {
    out->issue_id[2 * i] = HEX[f->key[i] >> 4];
    out->issue_id[2 * i + 1] = HEX[f->key[i] & 15];
  }
  clinlog__v1__issue_detected__init(&out->msg);
  clinlog__v1__code__init(&out->code);
  google__protobuf__timestamp__init(&out->detected_at);
  out->code.system = (char *)CL_CDS_ACTCODE;
  out->code.code = (char *)f->code;
  int64_t s = at_ns / NS_PER_S, ns = at_ns % NS_PER_S;
  if (ns < 0) {
    s--;
    ns += NS_PER_S;
  }
  out->detected_at.seconds = s;
  out->detected_at.nanos = (int32_t)ns;
  for (size_t i = 0; i < f->n_implicated && i < CL_CDS_MAX_IMPLICATED; i++) {
    clinlog__v1__reference__init(&out->refs[i]);
    out->refs[i].stream = (char *)(stream ? stream : "");
    out->refs[i].event_id.data = (uint8_t *)f->implicated[i];
    out->refs[i].event_id.len = 16;
    out->refp[i] = &out->refs[i];
  }
  out->msg.issue_id = out->issue_id;
  out->msg.kind = (Clinlog__V1__IssueKind)f->kind;
  out->msg.severity = (Clinlog__V1__IssueSeverity)f->severity;
  out->msg.n_implicated = f->n_implicated;
  out->msg.implicated = out->refp;
  out->msg.detail = (char *)f->detail;
  out->msg.rule_id = (char *)f->rule_id;
  out->msg.detected_at = &out->detected_at;
  out->msg.code = &out->code;
  out->msg.rule_version = (char *)(f->kb_version ? f->kb_version : "");
  out->msg.mitigation = (char *)f->mitigation;
}

void cl_cds_local_id(const char tag[4], size_t k, uint8_t id[16]) {
  memset(id, 0, 16);
  memcpy(id, tag, 4);
  id[12] = (uint8_t)(k >> 24);
  id[13] = (uint8_t)(k >> 16);
  id[14] = (uint8_t)(k >> 8);
  id[15] = (uint8_t)k;
}

long cl_cds_local_index(const char tag[4], const uint8_t id[16], size_t n) {
  static const uint8_t zero[8];
  if (memcmp(id, tag, 4) != 0 || memcmp(id + 4, zero, 8) != 0)
    return -1;
  size_t k = (size_t)id[12] << 24 | (size_t)id[13] << 16 | (size_t)id[14] << 8 | id[15];
  return k < n ? (long)k : -1;
}

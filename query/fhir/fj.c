/* FHIR R4 JSON building blocks (fj.h). */
#include "query/fhir/fj.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/keys.h"

static int empty(const json_t *v) {
  if (v == NULL)
    return 1;
  if (json_is_array(v))
    return json_array_size(v) == 0;
  if (json_is_object(v))
    return json_object_size(v) == 0;
  if (json_is_string(v))
    return json_string_length(v) == 0;
  return 0;
}

void fj_set(json_t *obj, const char *key, json_t *v) {
  if (empty(v)) {
    json_decref(v);
    return;
  }
  json_object_set_new(obj, key, v);
}

void fj_set_str(json_t *obj, const char *key, const char *s) {
  if (s != NULL && s[0] != '\0')
    json_object_set_new(obj, key, json_string(s));
}

void fj_push(json_t *arr, json_t *v) {
  if (empty(v)) {
    json_decref(v);
    return;
  }
  json_array_append_new(arr, v);
}

void fj_set_one(json_t *obj, const char *key, json_t *v) {
  if (empty(v)) {
    json_decref(v);
    return;
  }
  json_t *a = json_array();
  json_array_append_new(a, v);
  json_object_set_new(obj, key, a);
}

/* ---- primitives ---- */

json_t *fj_decimal(const char *s) {
  if (s == NULL)
    return NULL;
  while (isspace((unsigned char)*s))
    s++;
  size_t n = strlen(s);
  while (n > 0 && isspace((unsigned char)s[n - 1]))
    n--;
  if (n == 0 || n > 64)
    return NULL;
  char buf[72];
  size_t o = 0, i = 0;
  buf[o++] = FJ_DECIMAL_MARK;
  if (s[i] == '+' || s[i] == '-') {
    if (s[i] == '-')
      buf[o++] = '-';
    i++;
  }
  size_t int_start = i;
  while (i < n && isdigit((unsigned char)s[i]))
    i++;
  size_t int_len = i - int_start;
  const char *ip = s + int_start;
  while (int_len > 1 && ip[0] == '0') { /* "007" -> "7" */
    ip++;
    int_len--;
  }
  size_t frac_len = 0;
  const char *fp = NULL;
  if (i < n && s[i] == '.') {
    i++;
    fp = s + i;
    while (i < n && isdigit((unsigned char)s[i]))
      i++;
    frac_len = (size_t)(s + i - fp);
    if (frac_len == 0)
      fp = NULL; /* "5." -> "5" */
  }
  if (int_len == 0 && frac_len == 0)
    return NULL;
  if (int_len == 0)
    buf[o++] = '0';
  else {
    memcpy(buf + o, ip, int_len);
    o += int_len;
  }
  if (fp != NULL) {
    buf[o++] = '.';
    memcpy(buf + o, fp, frac_len);
    o += frac_len;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    buf[o++] = 'e';
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-'))
      buf[o++] = s[i++];
    size_t e0 = i;
    while (i < n && isdigit((unsigned char)s[i]))
      buf[o++] = s[i++];
    if (i == e0)
      return NULL;
  }
  if (i != n)
    return NULL;
  buf[o] = '\0';
  if (strcmp(buf + 1, "-0") == 0) /* keep "-0.0" as written, but plain -0 is 0 */
    return json_stringn("\x01"
                        "0",
                        2);
  return json_stringn(buf, o);
}

json_t *fj_decimal_minor(int64_t minor, int digits) {
  char buf[48];
  uint64_t mag = minor < 0 ? (uint64_t)0 - (uint64_t)minor : (uint64_t)minor;
  if (digits <= 0) {
    snprintf(buf, sizeof buf, "%s%llu", minor < 0 ? "-" : "", (unsigned long long)mag);
    return fj_decimal(buf);
  }
  if (digits > 9)
    digits = 9;
  uint64_t div = 1;
  for (int i = 0; i < digits; i++)
    div *= 10;
  char frac[16];
  uint64_t f = mag % div;
  for (int i = digits - 1; i >= 0; i--, f /= 10) /* zero-padded to `digits` */
    frac[i] = (char)('0' + f % 10);
  frac[digits] = '\0';
  snprintf(buf, sizeof buf, "%s%llu.%s", minor < 0 ? "-" : "", (unsigned long long)(mag / div),
           frac);
  return fj_decimal(buf);
}

/* Two digits of v (0..99) at p. */
static void two(char *p, unsigned v) {
  p[0] = (char)('0' + v / 10);
  p[1] = (char)('0' + v % 10);
}

/* "YYYY-MM-DDThh:mm:ss" of secs when its year has four digits (what
 * strftime's %Y then writes): 19, else 0. Civil from days: H. Hinnant's
 * algorithm (proleptic Gregorian, as gmtime). */
static size_t civil_text(int64_t secs, char *out) {
  if (secs < -30610224000LL || secs > 253402300799LL) /* 1000-01-01 .. 9999-12-31 */
    return 0;
  int64_t days = secs / 86400, sod = secs % 86400;
  if (sod < 0) {
    sod += 86400;
    days--;
  }
  int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
  unsigned doe = (unsigned)(z - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = (int64_t)yoe + era * 400;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
  unsigned d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
  if (y < 1000 || y > 9999)
    return 0;
  two(out, (unsigned)(y / 100));
  two(out + 2, (unsigned)(y % 100));
  out[4] = '-';
  two(out + 5, m);
  out[7] = '-';
  two(out + 8, d);
  out[10] = 'T';
  two(out + 11, (unsigned)(sod / 3600));
  out[13] = ':';
  two(out + 14, (unsigned)(sod / 60 % 60));
  out[16] = ':';
  two(out + 17, (unsigned)(sod % 60));
  return 19;
}

/* n decimal digits of v, zero-padded, at p. */
static void digits(char *p, unsigned v, int n) {
  for (int i = n - 1; i >= 0; i--, v /= 10)
    p[i] = (char)('0' + v % 10);
}

void fj_instant_text(int64_t secs, int32_t nanos, char out[40]) {
  size_t n = civil_text(secs, out);
  if (n == 0) { /* a year of other than four digits: as strftime writes it */
    time_t t = (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
  }
  if (nanos > 0 && nanos < 1000000000) {
    out[n++] = '.';
    if (nanos % 1000000 == 0) {
      digits(out + n, (unsigned)nanos / 1000000, 3);
      n += 3;
    } else if (nanos % 1000 == 0) {
      digits(out + n, (unsigned)nanos / 1000, 6);
      n += 6;
    } else {
      digits(out + n, (unsigned)nanos, 9);
      n += 9;
    }
  }
  out[n++] = 'Z';
  out[n] = '\0';
}

json_t *fj_instant(const Google__Protobuf__Timestamp *ts) {
  if (ts == NULL)
    return NULL;
  char buf[40];
  fj_instant_text(ts->seconds, ts->nanos, buf);
  return json_string(buf);
}

void fj_instant_ns_text(int64_t ns, char out[40]) {
  int64_t s = ns / 1000000000, r = ns % 1000000000;
  if (r < 0) {
    s--;
    r += 1000000000;
  }
  fj_instant_text(s, (int32_t)r, out);
}

json_t *fj_instant_ns(int64_t ns) {
  char buf[40];
  fj_instant_ns_text(ns, buf);
  return json_string(buf);
}

static int digits_at(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isdigit((unsigned char)s[i]))
      return 0;
  return 1;
}

json_t *fj_date(const char *s) {
  if (s == NULL)
    return NULL;
  size_t n = strlen(s);
  int ok = (n == 4 && digits_at(s, 4)) ||
           (n == 7 && digits_at(s, 4) && s[4] == '-' && digits_at(s + 5, 2)) ||
           (n == 10 && digits_at(s, 4) && s[4] == '-' && digits_at(s + 5, 2) && s[7] == '-' &&
            digits_at(s + 8, 2));
  if (!ok || strncmp(s, "0000", 4) == 0)
    return NULL;
  if (n >= 7) {
    int m = (s[5] - '0') * 10 + (s[6] - '0');
    if (m < 1 || m > 12)
      return NULL;
  }
  if (n == 10) {
    int d = (s[8] - '0') * 10 + (s[9] - '0');
    if (d < 1 || d > 31)
      return NULL;
  }
  return json_string(s);
}

/* ---- datatypes ---- */

json_t *fj_coding(const Clinlog__V1__Code *c) {
  if (c == NULL)
    return NULL;
  json_t *o = json_object();
  fj_set_str(o, "system", c->system);
  fj_set_str(o, "version", c->version);
  fj_set_str(o, "code", c->code);
  fj_set_str(o, "display", c->display);
  if (json_object_size(o) == 0) {
    json_decref(o);
    return NULL;
  }
  return o;
}

json_t *fj_concept(const Clinlog__V1__CodeableConcept *cc) {
  if (cc == NULL)
    return NULL;
  json_t *o = json_object();
  json_t *a = json_array();
  for (size_t i = 0; i < cc->n_coding; i++)
    fj_push(a, fj_coding(cc->coding[i]));
  fj_set(o, "coding", a);
  fj_set_str(o, "text", cc->text);
  if (json_object_size(o) == 0) {
    json_decref(o);
    return NULL;
  }
  return o;
}

json_t *fj_concept_code(const Clinlog__V1__Code *c) {
  if (c == NULL)
    return NULL;
  json_t *o = json_object();
  if (c->code != NULL && c->code[0] != '\0')
    fj_set_one(o, "coding", fj_coding(c));
  else
    fj_set_str(o, "text", c->display);
  if (json_object_size(o) == 0) {
    json_decref(o);
    return NULL;
  }
  return o;
}

json_t *fj_concept_lit(const char *system, const char *code, const char *display) {
  json_t *c = json_object();
  fj_set_str(c, "system", system);
  fj_set_str(c, "code", code);
  fj_set_str(c, "display", display);
  json_t *o = json_object();
  fj_set_one(o, "coding", c);
  return o;
}

json_t *fj_quantity(const Clinlog__V1__Quantity *q) {
  if (q == NULL)
    return NULL;
  json_t *o = json_object();
  fj_set(o, "value", fj_decimal(q->value));
  if (json_object_get(o, "value") != NULL) /* a comparator needs a value */
    fj_set_str(o, "comparator", q->comparator);
  const char *unit_display = q->unit_display && q->unit_display[0] ? q->unit_display : q->unit;
  fj_set_str(o, "unit", unit_display);
  if (q->unit != NULL && q->unit[0] != '\0') {
    fj_set_str(o, "system",
               q->unit_system && q->unit_system[0] ? q->unit_system : "http://unitsofmeasure.org");
    fj_set_str(o, "code", q->unit);
  }
  if (json_object_size(o) == 0) {
    json_decref(o);
    return NULL;
  }
  return o;
}

/* ISO 4217 minor-unit digits of the currencies that do not use 2. */
static int currency_digits(const char *cur) {
  static const char *const zero[] = {"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG",
                                     "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"};
  static const char *const three[] = {"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"};
  if (cur == NULL)
    return 2;
  for (size_t i = 0; i < sizeof zero / sizeof zero[0]; i++)
    if (strcmp(cur, zero[i]) == 0)
      return 0;
  for (size_t i = 0; i < sizeof three / sizeof three[0]; i++)
    if (strcmp(cur, three[i]) == 0)
      return 3;
  return 2;
}

json_t *fj_money(const Clinlog__V1__Money *m) {
  if (m == NULL)
    return NULL;
  json_t *o = json_object();
  fj_set(o, "value", fj_decimal_minor(m->minor_units, currency_digits(m->currency)));
  fj_set_str(o, "currency", m->currency);
  return o;
}

json_t *fj_period(const Clinlog__V1__Period *p) {
  if (p == NULL)
    return NULL;
  json_t *o = json_object();
  fj_set(o, "start", fj_instant(p->start));
  fj_set(o, "end", fj_instant(p->end));
  if (json_object_size(o) == 0) {
    json_decref(o);
    return NULL;
  }
  return o;
}

json_t *fj_identifier(const Clinlog__V1__Identifier *id) {
  if (id == NULL)
    return NULL;
  json_t *o = json_object();
  if (id->type != NULL && id->type[0] != '\0')
    fj_set(o, "type", fj_concept_lit(FJ_V2_0203, id->type, NULL));
  fj_set_str(o, "system", id->system);
  fj_set_str(o, "value", id->value);
  if (id->assigner != NULL && id->assigner[0] != '\0') {
    json_t *a = json_object();
    fj_set_str(a, "display", id->assigner);
    fj_set(o, "assigner", a);
  }
  if (json_object_size(o) == 0) {
    json_decref(o);
    return NULL;
  }
  return o;
}

static json_t *str_array(char **v, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++)
    if (v[i] != NULL && v[i][0] != '\0')
      json_array_append_new(a, json_string(v[i]));
  return a;
}

json_t *fj_name(const Clinlog__V1__HumanName *n) {
  if (n == NULL)
    return NULL;
  json_t *o = json_object();
  fj_set_str(o, "use", n->use);
  fj_set_str(o, "text", n->text);
  fj_set_str(o, "family", n->family);
  fj_set(o, "given", str_array(n->given, n->n_given));
  if (n->prefix != NULL && n->prefix[0] != '\0')
    fj_set_one(o, "prefix", json_string(n->prefix));
  if (n->suffix != NULL && n->suffix[0] != '\0')
    fj_set_one(o, "suffix", json_string(n->suffix));
  if (json_object_size(o) == 0) {
    json_decref(o);
    return NULL;
  }
  return o;
}

json_t *fj_address(const Clinlog__V1__Address *a) {
  if (a == NULL)
    return NULL;
  json_t *o = json_object();
  fj_set_str(o, "use", a->use);
  fj_set_str(o, "text", a->text);
  fj_set(o, "line", str_array(a->line, a->n_line));
  fj_set_str(o, "city", a->city);
  fj_set_str(o, "district", a->district);
  fj_set_str(o, "state", a->state);
  fj_set_str(o, "postalCode", a->postal_code);
  fj_set_str(o, "country", a->country);
  if (json_object_size(o) == 0) {
    json_decref(o);
    return NULL;
  }
  return o;
}

json_t *fj_contact_point(const Clinlog__V1__ContactPoint *c) {
  if (c == NULL)
    return NULL;
  json_t *o = json_object();
  fj_set_str(o, "system", c->system);
  fj_set_str(o, "value", c->value);
  fj_set_str(o, "use", c->use);
  if (json_object_size(o) == 0) {
    json_decref(o);
    return NULL;
  }
  return o;
}

int fj_uuid_text(const ProtobufCBinaryData *id, char out[37]) {
  if (id == NULL || id->len != 16)
    return 0;
  cl_uuid_text(id->data, out);
  return 1;
}

static json_t *ident_lit(const char *system, const char *value) {
  json_t *o = json_object();
  fj_set_str(o, "system", system);
  fj_set_str(o, "value", value);
  return o;
}

json_t *fj_reference(const Clinlog__V1__Reference *r) {
  if (r == NULL)
    return NULL;
  json_t *o = json_object();
  /* a literal reference must look like Type/id (or an absolute URL) */
  if (r->resource != NULL && strchr(r->resource, '/') != NULL)
    fj_set_str(o, "reference", r->resource);
  if (r->identifier != NULL)
    fj_set(o, "identifier", fj_identifier(r->identifier));
  if (json_object_get(o, "identifier") == NULL && json_object_get(o, "reference") == NULL) {
    char uuid[37], urn[46];
    if (r->principal_id != NULL && r->principal_id[0] != '\0')
      fj_set(o, "identifier", ident_lit(FJ_PRINCIPAL_SYSTEM, r->principal_id));
    else if (fj_uuid_text(&r->event_id, uuid)) {
      snprintf(urn, sizeof urn, "urn:uuid:%s", uuid);
      fj_set(o, "identifier", ident_lit("urn:ietf:rfc:3986", urn));
    }
  }
  fj_set_str(o, "display", r->display);
  if (json_object_size(o) == 0) {
    json_decref(o);
    return NULL;
  }
  return o;
}

json_t *fj_ref(const char *type, const char *id) {
  char buf[160];
  snprintf(buf, sizeof buf, "%s/%s", type, id);
  json_t *o = json_object();
  fj_set_str(o, "reference", buf);
  return o;
}

json_t *fj_reference_range(const Clinlog__V1__ReferenceRange *rr) {
  if (rr == NULL)
    return NULL;
  json_t *o = json_object();
  fj_set(o, "low", fj_quantity(rr->low));
  fj_set(o, "high", fj_quantity(rr->high));
  if (rr->applies_to != NULL)
    fj_set_one(o, "appliesTo", fj_concept_code(rr->applies_to));
  fj_set_str(o, "text", rr->text);
  if (json_object_size(o) == 0) {
    json_decref(o);
    return NULL;
  }
  return o;
}

json_t *fj_dosage(const Clinlog__V1__Dosage *d) {
  if (d == NULL)
    return NULL;
  json_t *o = json_object();
  fj_set_str(o, "text", d->text);
  json_t *timing = json_object();
  if (d->frequency_code != NULL)
    fj_set(timing, "code", fj_concept_code(d->frequency_code));
  if (d->frequency != NULL && d->frequency[0] != '\0') {
    json_t *code = json_object_get(timing, "code");
    if (code == NULL) {
      code = json_object();
      json_object_set_new(timing, "code", code);
    }
    if (json_object_get(code, "text") == NULL)
      fj_set_str(code, "text", d->frequency);
  }
  if (d->duration_days > 0) {
    json_t *rep = json_object();
    json_object_set_new(rep, "boundsDuration",
                        json_pack("{s:i,s:s,s:s,s:s}", "value", (json_int_t)d->duration_days,
                                  "unit", "days", "system", "http://unitsofmeasure.org", "code",
                                  "d"));
    json_object_set_new(timing, "repeat", rep);
  }
  fj_set(o, "timing", timing);
  json_t *prn = fj_concept(d->as_needed_reason);
  if (prn != NULL)
    fj_set(o, "asNeededCodeableConcept", prn);
  else if (d->as_needed)
    json_object_set_new(o, "asNeededBoolean", json_true());
  if (d->site != NULL)
    fj_set(o, "site", fj_concept_code(d->site));
  if (d->route != NULL)
    fj_set(o, "route", fj_concept_code(d->route));
  json_t *dr = json_object();
  fj_set(dr, "doseQuantity", fj_quantity(d->dose));
  fj_set(dr, "rateQuantity", fj_quantity(d->rate));
  fj_set_one(o, "doseAndRate", dr);
  if (json_object_size(o) == 0) {
    json_decref(o);
    return NULL;
  }
  return o;
}

json_t *fj_note(const char *text) {
  if (text == NULL || text[0] == '\0')
    return NULL;
  json_t *a = json_array();
  json_array_append_new(a, json_pack("{s:s}", "text", text));
  return a;
}

/* ---- forms the mappers share ---- */

json_t *fj_business_id(const char *bid) {
  return json_pack("{s:s,s:s}", "system", FJ_BUSINESS_ID_SYSTEM, "value", bid);
}

json_t *fj_identifier_typed(const Clinlog__V1__Identifier *id, const char *type,
                            const char *display) {
  json_t *o = fj_identifier(id);
  if (o == NULL || json_object_get(o, "type") != NULL)
    return o;
  json_t *t = json_pack("{s:o}", "type", fj_concept_lit(FJ_V2_0203, type, display));
  json_object_update(t, o); /* type first, as fj_identifier writes it */
  json_decref(o);
  return t;
}

json_t *fj_identifier_lit(const char *code, const char *display, const char *value) {
  if (!fj_has(value))
    return NULL;
  return json_pack("{s:o,s:s}", "type", fj_concept_lit(FJ_V2_0203, code, display), "value", value);
}

json_t *fj_identifier_text(const char *type_text, const char *value) {
  if (!fj_has(value))
    return NULL;
  return json_pack("{s:{s:s},s:s}", "type", "text", type_text, "value", value);
}

json_t *fj_concepts(Clinlog__V1__CodeableConcept *const *cc, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++)
    fj_push(a, fj_concept(cc[i]));
  return a;
}

json_t *fj_concepts_code(Clinlog__V1__Code *const *c, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++)
    fj_push(a, fj_concept_code(c[i]));
  return a;
}

json_t *fj_references(Clinlog__V1__Reference *const *r, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++)
    fj_push(a, fj_reference(r[i]));
  return a;
}

json_t *fj_concept_code_in(const Clinlog__V1__Code *c, const char *system, const char *const *codes,
                           size_t n) {
  json_t *cc = fj_concept_code(c);
  json_t *coding = json_array_get(json_object_get(cc, "coding"), 0);
  if (coding != NULL && json_object_get(coding, "system") == NULL)
    for (size_t i = 0; i < n; i++)
      if (strcmp(c->code, codes[i]) == 0) { /* a coding has a code */
        json_t *o = json_pack("{s:s}", "system", system);
        json_object_update(o, coding); /* system first, as in a Coding */
        json_array_set_new(json_object_get(cc, "coding"), 0, o);
        break;
      }
  return cc;
}

json_t *fj_unknown(void) {
  return json_pack("{s:[{s:s,s:s}]}", "extension", "url", FJ_DAR_EXT, "valueCode", "unknown");
}

json_t *fj_or_unknown(json_t *v) { return v != NULL ? v : fj_unknown(); }

json_t *fj_absent_reason_unknown(void) {
  return fj_concept_lit(FJ_DAR_SYSTEM, "unknown", "Unknown");
}

json_t *fj_location_ref(const Clinlog__V1__Location *l) {
  if (l == NULL)
    return NULL;
  json_t *r = fj_reference(l->reference);
  if (r == NULL)
    r = json_object();
  if (json_object_get(r, "display") == NULL) {
    char buf[512] = "";
    if (fj_has(l->display))
      snprintf(buf, sizeof buf, "%s", l->display);
    else {
      const char *parts[] = {l->facility, l->point_of_care, l->room, l->bed};
      size_t o = 0;
      for (size_t i = 0; i < 4; i++)
        if (fj_has(parts[i])) {
          int w = snprintf(buf + o, sizeof buf - o, "%s%s", o ? " " : "", parts[i]);
          if (w > 0 && (size_t)w < sizeof buf - o)
            o += (size_t)w;
        }
    }
    fj_set_str(r, "display", buf);
  }
  if (json_object_size(r) == 0) {
    json_decref(r);
    return NULL;
  }
  return r;
}

json_t *fj_simple_quantity(const Clinlog__V1__Quantity *q) {
  json_t *o = fj_quantity(q);
  if (o != NULL)
    json_object_del(o, "comparator");
  return o;
}

/* A RequestPriority in the two code systems it is bound to. */
typedef struct priority {
  const char *request;     /* FHIR request-priority */
  const char *act;         /* v3 ActPriority */
  const char *act_display; /* its display */
} priority;

static const priority *priority_of(Clinlog__V1__RequestPriority p) {
  static const priority routine = {"routine", "R", "routine"}, urgent = {"urgent", "UR", "urgent"},
                        asap = {"asap", "A", "ASAP"}, stat = {"stat", "S", "stat"};
  switch (p) {
  case CLINLOG__V1__REQUEST_PRIORITY__REQUEST_PRIORITY_ROUTINE:
    return &routine;
  case CLINLOG__V1__REQUEST_PRIORITY__REQUEST_PRIORITY_URGENT:
    return &urgent;
  case CLINLOG__V1__REQUEST_PRIORITY__REQUEST_PRIORITY_ASAP:
    return &asap;
  case CLINLOG__V1__REQUEST_PRIORITY__REQUEST_PRIORITY_STAT:
    return &stat;
  default:
    return NULL;
  }
}

const char *fj_request_priority(Clinlog__V1__RequestPriority p) {
  const priority *pr = priority_of(p);
  return pr != NULL ? pr->request : NULL;
}

json_t *fj_act_priority(Clinlog__V1__RequestPriority p) {
  const priority *pr = priority_of(p);
  if (pr == NULL)
    return NULL;
  return fj_concept_lit("http://terminology.hl7.org/CodeSystem/v3-ActPriority", pr->act,
                        pr->act_display);
}

json_t *fj_base64(const void *data, size_t n) {
  size_t bn = sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL);
  char *b64 = malloc(bn);
  if (b64 == NULL)
    return NULL;
  sodium_bin2base64(b64, bn, data, n, sodium_base64_VARIANT_ORIGINAL);
  json_t *v = json_string(b64);
  free(b64);
  return v;
}

json_t *fj_text_attachment(const char *text, const char *content_type, const char *title) {
  if (!fj_has(text))
    return NULL;
  json_t *data = fj_base64(text, strlen(text));
  if (data == NULL)
    return NULL;
  json_t *a = json_object();
  fj_set_str(a, "contentType", content_type);
  json_object_set_new(a, "data", data);
  fj_set_str(a, "title", title);
  return a;
}

/* ---- extensions ---- */

json_t *fj_ext(const char *url, const char *key, json_t *v) {
  if (v == NULL)
    return NULL;
  json_t *e = json_object();
  json_object_set_new(e, "url", json_string(url));
  json_object_set_new(e, key, v);
  return e;
}

void fj_ext_add(json_t *res, json_t *e) {
  if (e == NULL)
    return;
  json_t *ext = json_object_get(res, "extension");
  if (ext == NULL) {
    ext = json_array();
    json_object_set_new(res, "extension", ext);
  }
  json_array_append_new(ext, e);
}

void fj_ext_drop(json_t *res, const char *url) {
  json_t *ext = json_object_get(res, "extension");
  for (size_t i = json_array_size(ext); i-- > 0;) {
    const char *u = json_string_value(json_object_get(json_array_get(ext, i), "url"));
    if (u != NULL && strcmp(u, url) == 0)
      json_array_remove(ext, i);
  }
  if (ext != NULL && json_array_size(ext) == 0)
    json_object_del(res, "extension");
}

/* ---- member order ---- */

json_t *fj_in_order(json_t *obj, const char *const *order, size_t n) {
  json_t *o = json_object();
  for (size_t i = 0; i < n; i++) {
    json_t *v = json_object_get(obj, order[i]);
    if (v != NULL)
      json_object_set(o, order[i], v);
  }
  const char *k;
  json_t *v;
  json_object_foreach(obj, k, v) { /* anything else keeps its place at the end */
    if (json_object_get(o, k) == NULL)
      json_object_set(o, k, v);
  }
  json_decref(obj);
  return o;
}

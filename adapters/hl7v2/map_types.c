/* HL7 v2 data types to the catalog's value types (types.proto): TS/DTM to
 * UTC instants, DT to calendar dates, NM checked and kept as text, CWE/CE
 * to CodeableConcept with their coding systems as URIs, CX/EI to
 * Identifier, XPN/XCN/XAD/XTN/PL/XON to names, references, addresses,
 * contact points and locations. Each converter reads a parsed message
 * (views) and builds into the mapping's arena; a value that is not of its
 * type is refused with code 102 at its exact position. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/hl7v2/map_int.h"
#include "store/alloc.h"

/* ---- coding systems (HL7 table 0396) ---- */

static const struct {
  const char *id, *uri;
} SYSTEMS[] = {
    {"LN", "http://loinc.org"},
    {"LOINC", "http://loinc.org"},
    {"SCT", "http://snomed.info/sct"},
    {"SNOMED", "http://snomed.info/sct"},
    {"SNOMEDCT", "http://snomed.info/sct"},
    {"I10", "http://hl7.org/fhir/sid/icd-10-cm"},
    {"I10C", "http://hl7.org/fhir/sid/icd-10-cm"},
    {"ICD10CM", "http://hl7.org/fhir/sid/icd-10-cm"},
    {"I9C", "http://hl7.org/fhir/sid/icd-9-cm"},
    {"RXNORM", "http://www.nlm.nih.gov/research/umls/rxnorm"},
    {"RXN", "http://www.nlm.nih.gov/research/umls/rxnorm"},
    {"NDC", "http://hl7.org/fhir/sid/ndc"},
    {"CVX", "http://hl7.org/fhir/sid/cvx"},
    {"MVX", "http://hl7.org/fhir/sid/mvx"},
    {"CPT", "http://www.ama-assn.org/go/cpt"},
    {"C4", "http://www.ama-assn.org/go/cpt"},
    {"CPT4", "http://www.ama-assn.org/go/cpt"},
    {"HCPCS", "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"},
    {"HCPT", "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"},
    {"UCUM", "http://unitsofmeasure.org"},
    {"UNII", "http://fdasis.nlm.nih.gov"},
    {"CDCREC", "urn:oid:2.16.840.1.113883.6.238"},
    {"MDC", "urn:iso:std:iso:11073:10101"},
    {"DCM", "http://dicom.nema.org/resources/ontology/DCM"},
};

const char *cl_hl7_system_uri(const char *id) {
  if (!id || !*id)
    return NULL;
  for (size_t i = 0; i < sizeof SYSTEMS / sizeof SYSTEMS[0]; i++)
    if (!strcmp(id, SYSTEMS[i].id))
      return SYSTEMS[i].uri;
  return NULL;
}

/* The system of a CWE triplet: a known URI, HL7nnnn as the v2 table's
 * URI, else the sender's name (docs/events.md: never dropped). */
static char *system_of(mctx *c, const char *id) {
  const char *u = cl_hl7_system_uri(id);
  if (u)
    return (char *)u;
  if (id && strlen(id) == 7 && !strncmp(id, "HL7", 3) && strspn(id + 3, "0123456789") == 4)
    return map_printf(c, "http://terminology.hl7.org/CodeSystem/v2-%s", id + 3);
  return S(id);
}

/* ---- times ---- */

static int digits(const char *p, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9')
      return -1;
    v = v * 10 + (p[i] - '0');
  }
  *out = v;
  return 0;
}

static int leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }
static int mdays(int y, int m) {
  static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : d[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

typedef struct tsparts {
  int y, mo, d, h, mi, s, nanos, has_off, off_min, prec; /* prec: digits of the date/time part */
} tsparts;

/* Parses a TS/DTM; 0 or -1 with `why` set. */
static int parse_ts(const char *v, tsparts *t, const char **why) {
  memset(t, 0, sizeof *t);
  t->mo = t->d = 1;
  size_t n = strcspn(v, "+-");
  const char *z = v + n;
  size_t main = n, frac = 0;
  const char *dot = memchr(v, '.', n);
  if (dot) {
    main = (size_t)(dot - v);
    frac = n - main - 1;
  }
  if (!(main == 4 || main == 6 || main == 8 || main == 10 || main == 12 || main == 14)) {
    *why = "is not a date/time (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ])";
    return -1;
  }
  if (dot && (main != 14 || frac < 1 || frac > 4)) {
    *why = "has a fraction of a second without seconds, or more than 4 digits of it";
    return -1;
  }
  int f[6] = {0, 1, 1, 0, 0, 0};
  for (size_t i = 0; i < (main - 4) / 2; i++)
    if (digits(v + 4 + 2 * i, 2, &f[i + 1]))
      goto bad;
  if (digits(v, 4, &f[0]))
    goto bad;
  t->y = f[0], t->mo = f[1], t->d = f[2], t->h = f[3], t->mi = f[4], t->s = f[5];
  t->prec = (int)main;
  if (t->mo < 1 || t->mo > 12 || t->d < 1 || t->d > mdays(t->y, t->mo) || t->h > 23 || t->mi > 59 ||
      t->s > 59) {
    *why = "is not a valid date/time (a month, day, hour, minute or second out of range)";
    return -1;
  }
  if (dot) {
    int fr;
    if (digits(dot + 1, (int)frac, &fr))
      goto bad;
    for (size_t i = frac; i < 9; i++)
      fr *= 10;
    t->nanos = fr;
  }
  if (*z) {
    int hh, mm;
    if (strlen(z) != 5 || digits(z + 1, 2, &hh) || digits(z + 3, 2, &mm) || hh > 14 || mm > 59) {
      *why = "has a time zone offset that is not +/-HHMM";
      return -1;
    }
    t->has_off = 1;
    t->off_min = (z[0] == '-' ? -1 : 1) * (hh * 60 + mm);
  }
  return 0;
bad:
  *why = "is not a date/time (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ])";
  return -1;
}

int map_ts(mctx *c, const cl_hl7_seg *s, unsigned f, unsigned r, unsigned comp, unsigned sub,
           pb_ts **out) {
  *out = NULL;
  const char *v = hv(s, f, r, comp, sub);
  if (!v)
    return 0;
  tsparts t;
  const char *why;
  if (parse_ts(v, &t, &why))
    return map_fail(c, CL_HL7_DATA_TYPE, s, NULL, f, r, comp, sub, "TS '%.40s' %s", v, why);
  int off = t.has_off ? t.off_min : c->o->default_offset_min;
  int64_t secs = days_from_civil(t.y, t.mo, t.d) * 86400 + t.h * 3600 + t.mi * 60 + t.s;
  pb_ts *ts = map_alloc(c, sizeof *ts);
  if (!ts)
    return CL_ENOMEM;
  google__protobuf__timestamp__init(ts);
  ts->seconds = secs - (int64_t)off * 60;
  ts->nanos = t.nanos;
  *out = ts;
  return 0;
}

int map_date(mctx *c, const cl_hl7_seg *s, unsigned f, unsigned r, unsigned comp, unsigned sub,
             const char **out) {
  *out = NULL;
  const char *v = hv(s, f, r, comp, sub);
  if (!v)
    return 0;
  tsparts t;
  const char *why;
  if (parse_ts(v, &t, &why))
    return map_fail(c, CL_HL7_DATA_TYPE, s, NULL, f, r, comp, sub, "date '%.40s' %s", v, why);
  *out = t.prec == 4   ? map_printf(c, "%04d", t.y)
         : t.prec == 6 ? map_printf(c, "%04d-%02d", t.y, t.mo)
                       : map_printf(c, "%04d-%02d-%02d", t.y, t.mo, t.d);
  return *out ? 0 : CL_ENOMEM;
}

/* ---- numbers ---- */

static int is_decimal(const char *v) {
  const char *p = v + (*v == '+' || *v == '-');
  size_t a = strspn(p, "0123456789");
  p += a;
  size_t b = 0;
  if (*p == '.') {
    p++;
    b = strspn(p, "0123456789");
    p += b;
  }
  return *p == '\0' && a + b > 0;
}

int map_nm(mctx *c, const cl_hl7_seg *s, unsigned f, unsigned r, unsigned comp, unsigned sub,
           const char **out) {
  *out = NULL;
  const char *v = hv(s, f, r, comp, sub);
  if (!v)
    return 0;
  if (!is_decimal(v))
    return map_fail(c, CL_HL7_DATA_TYPE, s, NULL, f, r, comp, sub,
                    "NM value '%.40s' is not a number", v);
  *out = v + (*v == '+');
  return 0;
}

/* ---- codes ---- */

static pb_code *code_new(mctx *c, const char *code, const char *display, const char *sys,
                         const char *version) {
  pb_code *k = map_alloc(c, sizeof *k);
  if (!k)
    return NULL;
  clinlog__v1__code__init(k);
  k->code = S(code);
  k->display = S(display);
  k->system = system_of(c, sys);
  k->version = S(version);
  return k->system ? k : NULL;
}

pb_code *map_mkcode(mctx *c, const char *system, const char *code, const char *display) {
  pb_code *k = map_alloc(c, sizeof *k);
  if (!k)
    return NULL;
  clinlog__v1__code__init(k);
  k->system = (char *)system;
  k->code = S(code);
  k->display = S(display);
  return k;
}

int map_cwe(mctx *c, const cl_hl7_seg *s, unsigned f, unsigned r, pb_cc **out) {
  *out = NULL;
  const char *id1 = hv(s, f, r, 1, 1), *tx1 = hv(s, f, r, 2, 1), *id2 = hv(s, f, r, 4, 1),
             *tx2 = hv(s, f, r, 5, 1), *orig = hv(s, f, r, 9, 1);
  if (!id1 && !tx1 && !id2 && !tx2 && !orig)
    return 0;
  pb_cc *cc = map_alloc(c, sizeof *cc);
  pb_code **v = map_alloc(c, 2 * sizeof *v);
  if (!cc || !v)
    return CL_ENOMEM;
  clinlog__v1__codeable_concept__init(cc);
  cc->coding = v;
  if (id1 && !(v[cc->n_coding++] = code_new(c, id1, tx1, hv(s, f, r, 3, 1), hv(s, f, r, 7, 1))))
    return map_oom(c);
  if (id2 && !(v[cc->n_coding++] = code_new(c, id2, tx2, hv(s, f, r, 6, 1), hv(s, f, r, 8, 1))))
    return map_oom(c);
  /* the original text, else the text of a concept sent without a code */
  cc->text = S(orig ? orig : !id1 ? (tx1 ? tx1 : tx2) : NULL);
  *out = cc;
  return 0;
}

int map_cwe_list(mctx *c, const cl_hl7_seg *s, unsigned f, pb_cc ***out, size_t *n) {
  *out = NULL, *n = 0;
  size_t k = cl_hl7_nreps(s, f);
  if (!k)
    return 0;
  pb_cc **v = map_alloc(c, k * sizeof *v);
  if (!v)
    return CL_ENOMEM;
  for (unsigned r = 1; r <= k; r++) {
    pb_cc *cc;
    int rc = map_cwe(c, s, f, r, &cc);
    if (rc)
      return rc;
    if (cc)
      v[(*n)++] = cc;
  }
  *out = v;
  return 0;
}

int map_code(mctx *c, const cl_hl7_seg *s, unsigned f, unsigned r, pb_code **out) {
  *out = NULL;
  pb_cc *cc;
  int rc = map_cwe(c, s, f, r, &cc);
  if (rc || !cc)
    return rc;
  if (cc->n_coding)
    *out = cc->coding[0];
  else if (!(*out = code_new(c, NULL, cc->text, NULL, NULL)))
    return map_oom(c);
  return 0;
}

int map_table_code(mctx *c, const cl_hl7_seg *s, unsigned f, const char *table, pb_code **out) {
  int rc = map_code(c, s, f, 1, out);
  if (rc || !*out)
    return rc;
  if (!hf(s, f, 3)) /* an ID/IS, or no system: the table is the field's */
    (*out)->system = map_printf(c, "http://terminology.hl7.org/CodeSystem/v2-%s", table);
  return (*out)->system ? 0 : CL_ENOMEM;
}

int map_priority(const char *v) {
  if (!v)
    return CLINLOG__V1__REQUEST_PRIORITY__REQUEST_PRIORITY_UNSPECIFIED;
  if (!strcmp(v, "S"))
    return CLINLOG__V1__REQUEST_PRIORITY__REQUEST_PRIORITY_STAT;
  if (!strcmp(v, "A"))
    return CLINLOG__V1__REQUEST_PRIORITY__REQUEST_PRIORITY_ASAP;
  if (!strcmp(v, "R"))
    return CLINLOG__V1__REQUEST_PRIORITY__REQUEST_PRIORITY_ROUTINE;
  if (!strcmp(v, "U") || !strcmp(v, "T"))
    return CLINLOG__V1__REQUEST_PRIORITY__REQUEST_PRIORITY_URGENT;
  return CLINLOG__V1__REQUEST_PRIORITY__REQUEST_PRIORITY_UNSPECIFIED;
}

/* ---- identifiers, names, parties, places ---- */

/* An identifier's system: SSN and NPI by their FHIR URIs; an assigning
 * authority sent with an ISO OID or a URI as that; else empty (the
 * assigner names the namespace). */
static char *id_system(mctx *c, const char *type, const char *auth, const char *uid,
                       const char *uidtype) {
  if (type && !strcmp(type, "SS"))
    return "http://hl7.org/fhir/sid/us-ssn";
  if ((type && !strcmp(type, "NPI")) || (auth && !strcmp(auth, "NPI")))
    return "http://hl7.org/fhir/sid/us-npi";
  if (uid && uidtype && !strcmp(uidtype, "ISO"))
    return map_printf(c, "urn:oid:%s", uid);
  if (uid && uidtype && !strcmp(uidtype, "URI"))
    return (char *)uid;
  return "";
}

static Clinlog__V1__Identifier *ident(mctx *c, const char *value, const char *type,
                                      const char *auth, const char *uid, const char *uidtype) {
  Clinlog__V1__Identifier *i = map_alloc(c, sizeof *i);
  if (!i)
    return NULL;
  clinlog__v1__identifier__init(i);
  i->value = S(value);
  i->type = S(type);
  i->assigner = S(auth);
  i->system = id_system(c, type, auth, uid, uidtype);
  return i->system ? i : NULL;
}

int map_cx(mctx *c, const cl_hl7_seg *s, unsigned f, unsigned r, Clinlog__V1__Identifier **out) {
  *out = NULL;
  const char *v = hv(s, f, r, 1, 1);
  if (!v)
    return 0;
  *out = ident(c, v, hv(s, f, r, 5, 1), hv(s, f, r, 4, 1), hv(s, f, r, 4, 2), hv(s, f, r, 4, 3));
  return *out ? 0 : map_oom(c);
}

int map_ei(mctx *c, const cl_hl7_seg *s, unsigned f, unsigned r, Clinlog__V1__Identifier **out) {
  *out = NULL;
  const char *v = hv(s, f, r, 1, 1);
  if (!v)
    return 0;
  *out = ident(c, v, NULL, hv(s, f, r, 2, 1), hv(s, f, r, 3, 1), hv(s, f, r, 4, 1));
  return *out ? 0 : map_oom(c);
}

static const char *name_use(const char *v) {
  static const char *const U[][2] = {{"L", "official"}, {"D", "usual"},     {"M", "maiden"},
                                     {"N", "nickname"}, {"A", "anonymous"}, {"S", "anonymous"},
                                     {"C", "old"}};
  for (size_t i = 0; v && i < sizeof U / sizeof U[0]; i++)
    if (!strcmp(v, U[i][0]))
      return U[i][1];
  return "";
}

/* Names at components fam.. of s-f[r]: family, given, middle, suffix, prefix. */
static Clinlog__V1__HumanName *name_at(mctx *c, const cl_hl7_seg *s, unsigned f, unsigned r,
                                       unsigned fam) {
  const char *family = hv(s, f, r, fam, 1), *given = hv(s, f, r, fam + 1, 1),
             *middle = hv(s, f, r, fam + 2, 1);
  if (!family && !given)
    return (Clinlog__V1__HumanName *)c; /* "not valued": any non-NULL, non-name marker */
  Clinlog__V1__HumanName *n = map_alloc(c, sizeof *n);
  char **g = map_alloc(c, 2 * sizeof *g);
  if (!n || !g)
    return NULL;
  clinlog__v1__human_name__init(n);
  n->family = S(family);
  n->given = g;
  if (given)
    g[n->n_given++] = (char *)given;
  if (middle)
    g[n->n_given++] = (char *)middle;
  n->suffix = S(hv(s, f, r, fam + 3, 1));
  n->prefix = S(hv(s, f, r, fam + 4, 1));
  return n;
}

int map_xpn(mctx *c, const cl_hl7_seg *s, unsigned f, unsigned r, Clinlog__V1__HumanName **out) {
  *out = NULL;
  Clinlog__V1__HumanName *n = name_at(c, s, f, r, 1);
  if (!n)
    return map_oom(c);
  if ((void *)n == (void *)c)
    return 0;
  n->use = (char *)name_use(hv(s, f, r, 7, 1));
  *out = n;
  return 0;
}

static char *display_of(mctx *c, const Clinlog__V1__HumanName *n) {
  char buf[512];
  snprintf(buf, sizeof buf, "%s%s%s%s%s%s%s", n->prefix, *n->prefix ? " " : "",
           n->n_given ? n->given[0] : "", n->n_given ? " " : "", n->family, *n->suffix ? " " : "",
           n->suffix);
  return map_strdup(c, buf);
}

int map_xcn(mctx *c, const cl_hl7_seg *s, unsigned f, unsigned r, Clinlog__V1__Reference **out) {
  *out = NULL;
  const char *id = hv(s, f, r, 1, 1);
  Clinlog__V1__HumanName *n = name_at(c, s, f, r, 2);
  if (!n)
    return map_oom(c);
  int named = (void *)n != (void *)c;
  if (!id && !named)
    return 0;
  Clinlog__V1__Reference *ref = map_alloc(c, sizeof *ref);
  if (!ref)
    return CL_ENOMEM;
  clinlog__v1__reference__init(ref);
  if (id && !(ref->identifier = ident(c, id, hv(s, f, r, 13, 1), hv(s, f, r, 9, 1),
                                      hv(s, f, r, 9, 2), hv(s, f, r, 9, 3))))
    return map_oom(c);
  if (named && !(ref->display = display_of(c, n)))
    return map_oom(c);
  ref->display = S(ref->display);
  *out = ref;
  return 0;
}

int map_xon(mctx *c, const cl_hl7_seg *s, unsigned f, unsigned r, Clinlog__V1__Reference **out) {
  *out = NULL;
  const char *name = hv(s, f, r, 1, 1), *id = hv(s, f, r, 10, 1);
  if (!name && !id)
    return 0;
  Clinlog__V1__Reference *ref = map_alloc(c, sizeof *ref);
  if (!ref)
    return CL_ENOMEM;
  clinlog__v1__reference__init(ref);
  ref->display = S(name);
  if (id && !(ref->identifier = ident(c, id, hv(s, f, r, 7, 1), hv(s, f, r, 6, 1),
                                      hv(s, f, r, 6, 2), hv(s, f, r, 6, 3))))
    return map_oom(c);
  *out = ref;
  return 0;
}

int map_xad(mctx *c, const cl_hl7_seg *s, unsigned f, unsigned r, Clinlog__V1__Address **out) {
  *out = NULL;
  const char *l1 = hv(s, f, r, 1, 1), *l2 = hv(s, f, r, 2, 1), *city = hv(s, f, r, 3, 1),
             *zip = hv(s, f, r, 5, 1);
  if (!l1 && !l2 && !city && !zip)
    return 0;
  Clinlog__V1__Address *a = map_alloc(c, sizeof *a);
  char **lines = map_alloc(c, 2 * sizeof *lines);
  if (!a || !lines)
    return CL_ENOMEM;
  clinlog__v1__address__init(a);
  a->line = lines;
  if (l1)
    lines[a->n_line++] = (char *)l1;
  if (l2)
    lines[a->n_line++] = (char *)l2;
  a->city = S(city);
  a->state = S(hv(s, f, r, 4, 1));
  a->postal_code = S(zip);
  a->country = S(hv(s, f, r, 6, 1));
  const char *t = hv(s, f, r, 7, 1);
  a->use = !t                                      ? ""
           : !strcmp(t, "H") || !strcmp(t, "P")    ? "home"
           : !strcmp(t, "B") || !strcmp(t, "O")    ? "work"
           : !strcmp(t, "C") || !strcmp(t, "TEMP") ? "temp"
           : !strcmp(t, "BA")                      ? "billing"
                                                   : "";
  a->district = S(hv(s, f, r, 9, 1));
  *out = a;
  return 0;
}

int map_xtn(mctx *c, const cl_hl7_seg *s, unsigned f, unsigned r, const char *default_use,
            Clinlog__V1__ContactPoint **out) {
  *out = NULL;
  const char *use = hv(s, f, r, 2, 1), *eq = hv(s, f, r, 3, 1), *mail = hv(s, f, r, 4, 1),
             *cc = hv(s, f, r, 5, 1), *area = hv(s, f, r, 6, 1), *local = hv(s, f, r, 7, 1),
             *ext = hv(s, f, r, 8, 1), *formatted = hv(s, f, r, 1, 1);
  int email =
      (eq && (!strcmp(eq, "Internet") || !strcmp(eq, "X.400"))) || (use && !strcmp(use, "NET"));
  char *value;
  if (email && mail)
    value = (char *)mail;
  else if (local)
    value = map_printf(c, "%s%s%s%s%s%s%s", cc ? "+" : "", S(cc), cc ? " " : "", S(area),
                       area ? " " : "", local, ext ? "" : "");
  else
    value = (char *)formatted;
  if (!value)
    return 0;
  Clinlog__V1__ContactPoint *p = map_alloc(c, sizeof *p);
  if (!p)
    return CL_ENOMEM;
  clinlog__v1__contact_point__init(p);
  p->value = value;
  p->system = email                     ? "email"
              : eq && !strcmp(eq, "FX") ? "fax"
              : eq && !strcmp(eq, "BP") ? "pager"
                                        : "phone";
  p->use = use && !strcmp(use, "WPN")   ? "work"
           : use && !strcmp(use, "PRN") ? "home"
           : eq && !strcmp(eq, "CP")    ? "mobile"
                                        : S(email ? "" : default_use);
  *out = p;
  return 0;
}

int map_pl(mctx *c, const cl_hl7_seg *s, unsigned f, unsigned r, Clinlog__V1__Location **out) {
  *out = NULL;
  const char *poc = hv(s, f, r, 1, 1), *room = hv(s, f, r, 2, 1), *bed = hv(s, f, r, 3, 1),
             *fac = hv(s, f, r, 4, 1);
  if (!poc && !room && !bed && !fac)
    return 0;
  Clinlog__V1__Location *l = map_alloc(c, sizeof *l);
  if (!l)
    return CL_ENOMEM;
  clinlog__v1__location__init(l);
  l->point_of_care = S(poc);
  l->room = S(room);
  l->bed = S(bed);
  l->facility = S(fac);
  l->display = S(hv(s, f, r, 9, 1));
  *out = l;
  return 0;
}

int map_qty(mctx *c, const cl_hl7_seg *s, unsigned f, unsigned uf, Clinlog__V1__Quantity **out) {
  *out = NULL;
  const char *v;
  int rc = map_nm(c, s, f, 1, 1, 1, &v);
  if (rc || !v)
    return rc;
  Clinlog__V1__Quantity *q = map_alloc(c, sizeof *q);
  if (!q)
    return CL_ENOMEM;
  clinlog__v1__quantity__init(q);
  q->value = (char *)v;
  if (uf) {
    const char *sys = hv(s, uf, 1, 3, 1);
    q->unit = S(hv(s, uf, 1, 1, 1));
    q->unit_display = S(hv(s, uf, 1, 2, 1));
    /* UCUM is the default (empty unit_system); another system is kept */
    if (sys && strcmp(sys, "UCUM") && !(q->unit_system = system_of(c, sys)))
      return map_oom(c);
    q->unit_system = S(q->unit_system);
  }
  *out = q;
  return 0;
}

/* Appends raw[0..n) decoded (escapes, character set), as the parser does. */
static void put_decoded(mctx *c, hl7_buf *b, const char *raw, size_t n) {
  const char *out;
  size_t outn, bad;
  char why[64];
  if (!n)
    return;
  int rc = hl7_decode(&c->a, &c->h->enc, c->m->charset, raw, n, &out, &outn, &bad, why, sizeof why);
  if (rc == 0)
    hl7_buf_put(b, out, outn);
  else if (rc == CL_ENOMEM)
    b->oom = 1; /* map_text fails; other errors cannot happen on parsed text */
}

/* Appends the text of a raw (escaped) value with the formatting escapes of
 * FT/TX resolved: \.br\ and \.sp\ become newlines, the others (\H\ \N\
 * \.in\ \Cxxyy\ ...) are dropped. Read from the raw text, since a
 * decoded value cannot tell \E\ (a literal escape character) from a
 * formatting sequence. */
static void text_put(mctx *c, hl7_buf *b, const char *raw, size_t n) {
  const char esc = c->h->enc.esc;
  size_t start = 0, i = 0;
  while (i < n) {
    const char *end = raw[i] == esc && i + 1 < n ? memchr(raw + i + 1, esc, n - i - 1) : NULL;
    if (!end) {
      i++;
      continue;
    }
    size_t len = (size_t)(end - (raw + i)) + 1;
    if (strchr(".HNCMZ", raw[i + 1])) {
      put_decoded(c, b, raw + start, i - start);
      if (len >= 5 && (!strncmp(raw + i + 1, ".br", 3) || !strncmp(raw + i + 1, ".sp", 3)))
        hl7_buf_putc(b, '\n');
      start = i + len;
    }
    i += len;
  }
  put_decoded(c, b, raw + start, n - start);
}

char *map_text(mctx *c, const cl_hl7_seg *s, unsigned f) {
  hl7_buf b = {0};
  size_t k = cl_hl7_nreps(s, f);
  for (unsigned r = 1; r <= k; r++) {
    cl_hl7_value v = cl_hl7_raw(s, f, r, 0, 0);
    if (r > 1)
      hl7_buf_putc(&b, '\n');
    if (v.state == CL_HL7_VALUED)
      text_put(c, &b, v.s, v.n);
  }
  hl7_buf_putc(&b, '\0');
  char *out = b.oom ? NULL : map_strdup(c, b.p);
  cl_free(b.p);
  return out;
}

/* The FHIR query engine (engine.h).
 *
 * A search loads its candidates (a patient's compartment when the search
 * names one patient, else every resource of the type), keeps those every
 * criterion matches, sorts them by the sort key and id, and returns the page
 * after the cursor. Resources are handled in their stored form (decimals
 * marked, fj.h) and the whole answer goes through fj_finish once, so values
 * leave exactly as they were written. */
#include "query/fhir/engine.h"

#include <ctype.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "query/fhir/fj.h"

struct cl_fhir_engine {
  cl_proj *p;
  cl_log *log;
};

int cl_fhir_engine_new(cl_proj *p, cl_log *log, cl_fhir_engine **out, cl_err *err) {
  cl_fhir_engine *e = calloc(1, sizeof *e);
  if (e == NULL)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  e->p = p;
  e->log = log;
  *out = e;
  return 0;
}

void cl_fhir_engine_free(cl_fhir_engine *e) { free(e); }

void cl_fhir_resp_clear(cl_fhir_resp *rs) {
  free(rs->body);
  memset(rs, 0, sizeof *rs);
}

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

/* ------------------------------------------------------------ search parameters */

enum kind { K_TOKEN, K_DATE, K_STRING, K_REFERENCE, K_QUANTITY };
static const char *const kind_names[] = {"token", "date", "string", "reference", "quantity"};

typedef struct pdef {
  const char *type; /* NULL: every type */
  const char *name;
  int kind;
  const char *paths; /* alternatives separated by '|', each a dotted path */
} pdef;

/* The search parameters, by type (FHIR R4 names and meanings). */
static const pdef PARAMS[] = {
    {NULL, "_id", K_TOKEN, "id"},
    {NULL, "_lastUpdated", K_DATE, "meta.lastUpdated"},
    {"Patient", "identifier", K_TOKEN, "identifier"},
    {"Patient", "name", K_STRING, "name"},
    {"Patient", "family", K_STRING, "name.family"},
    {"Patient", "given", K_STRING, "name.given"},
    {"Patient", "birthdate", K_DATE, "birthDate"},
    {"Patient", "gender", K_TOKEN, "gender"},
    {"Patient", "active", K_TOKEN, "active"},
    {"Patient", "address-city", K_STRING, "address.city"},
    {"Patient", "address-postalcode", K_STRING, "address.postalCode"},
    {"Patient", "telecom", K_TOKEN, "telecom"},
    {"Encounter", "patient", K_REFERENCE, "subject"},
    {"Encounter", "subject", K_REFERENCE, "subject"},
    {"Encounter", "identifier", K_TOKEN, "identifier"},
    {"Encounter", "status", K_TOKEN, "status"},
    {"Encounter", "class", K_TOKEN, "class"},
    {"Encounter", "type", K_TOKEN, "type"},
    {"Encounter", "date", K_DATE, "period"},
    {"Encounter", "reason-code", K_TOKEN, "reasonCode"},
    {"Condition", "patient", K_REFERENCE, "subject"},
    {"Condition", "subject", K_REFERENCE, "subject"},
    {"Condition", "encounter", K_REFERENCE, "encounter"},
    {"Condition", "identifier", K_TOKEN, "identifier"},
    {"Condition", "code", K_TOKEN, "code"},
    {"Condition", "category", K_TOKEN, "category"},
    {"Condition", "clinical-status", K_TOKEN, "clinicalStatus"},
    {"Condition", "verification-status", K_TOKEN, "verificationStatus"},
    {"Condition", "severity", K_TOKEN, "severity"},
    {"Condition", "onset-date", K_DATE, "onsetDateTime|onsetPeriod"},
    {"Condition", "abatement-date", K_DATE, "abatementDateTime|abatementPeriod"},
    {"Condition", "recorded-date", K_DATE, "recordedDate"},
    {"AllergyIntolerance", "patient", K_REFERENCE, "patient"},
    {"AllergyIntolerance", "identifier", K_TOKEN, "identifier"},
    {"AllergyIntolerance", "code", K_TOKEN, "code"},
    {"AllergyIntolerance", "clinical-status", K_TOKEN, "clinicalStatus"},
    {"AllergyIntolerance", "verification-status", K_TOKEN, "verificationStatus"},
    {"AllergyIntolerance", "criticality", K_TOKEN, "criticality"},
    {"AllergyIntolerance", "type", K_TOKEN, "type"},
    {"AllergyIntolerance", "category", K_TOKEN, "category"},
    {"AllergyIntolerance", "date", K_DATE, "recordedDate"},
    {"Observation", "patient", K_REFERENCE, "subject"},
    {"Observation", "subject", K_REFERENCE, "subject"},
    {"Observation", "encounter", K_REFERENCE, "encounter"},
    {"Observation", "identifier", K_TOKEN, "identifier"},
    {"Observation", "code", K_TOKEN, "code"},
    {"Observation", "category", K_TOKEN, "category"},
    {"Observation", "status", K_TOKEN, "status"},
    {"Observation", "date", K_DATE, "effectiveDateTime|effectivePeriod|effectiveInstant"},
    {"Observation", "value-quantity", K_QUANTITY, "valueQuantity"},
    {"Observation", "component-code", K_TOKEN, "component.code"},
    {"Observation", "device", K_REFERENCE, "device"},
    {"Observation", "based-on", K_REFERENCE, "basedOn"},
    {"DiagnosticReport", "patient", K_REFERENCE, "subject"},
    {"DiagnosticReport", "subject", K_REFERENCE, "subject"},
    {"DiagnosticReport", "encounter", K_REFERENCE, "encounter"},
    {"DiagnosticReport", "identifier", K_TOKEN, "identifier"},
    {"DiagnosticReport", "code", K_TOKEN, "code"},
    {"DiagnosticReport", "category", K_TOKEN, "category"},
    {"DiagnosticReport", "status", K_TOKEN, "status"},
    {"DiagnosticReport", "date", K_DATE, "effectiveDateTime|effectivePeriod"},
    {"DiagnosticReport", "issued", K_DATE, "issued"},
    {"DiagnosticReport", "result", K_REFERENCE, "result"},
    {"DiagnosticReport", "based-on", K_REFERENCE, "basedOn"},
    {"Immunization", "patient", K_REFERENCE, "patient"},
    {"Immunization", "identifier", K_TOKEN, "identifier"},
    {"Immunization", "vaccine-code", K_TOKEN, "vaccineCode"},
    {"Immunization", "status", K_TOKEN, "status"},
    {"Immunization", "date", K_DATE, "occurrenceDateTime"},
    {"Immunization", "lot-number", K_STRING, "lotNumber"},
    {"ServiceRequest", "patient", K_REFERENCE, "subject"},
    {"ServiceRequest", "subject", K_REFERENCE, "subject"},
    {"ServiceRequest", "encounter", K_REFERENCE, "encounter"},
    {"ServiceRequest", "identifier", K_TOKEN, "identifier"},
    {"ServiceRequest", "code", K_TOKEN, "code"},
    {"ServiceRequest", "category", K_TOKEN, "category"},
    {"ServiceRequest", "status", K_TOKEN, "status"},
    {"ServiceRequest", "intent", K_TOKEN, "intent"},
    {"ServiceRequest", "priority", K_TOKEN, "priority"},
    {"ServiceRequest", "authored", K_DATE, "authoredOn"},
    {"MedicationRequest", "patient", K_REFERENCE, "subject"},
    {"MedicationRequest", "subject", K_REFERENCE, "subject"},
    {"MedicationRequest", "encounter", K_REFERENCE, "encounter"},
    {"MedicationRequest", "identifier", K_TOKEN, "identifier"},
    {"MedicationRequest", "code", K_TOKEN, "medicationCodeableConcept"},
    {"MedicationRequest", "status", K_TOKEN, "status"},
    {"MedicationRequest", "intent", K_TOKEN, "intent"},
    {"MedicationRequest", "category", K_TOKEN, "category"},
    {"MedicationRequest", "authoredon", K_DATE, "authoredOn"},
    {"MedicationDispense", "patient", K_REFERENCE, "subject"},
    {"MedicationDispense", "subject", K_REFERENCE, "subject"},
    {"MedicationDispense", "identifier", K_TOKEN, "identifier"},
    {"MedicationDispense", "code", K_TOKEN, "medicationCodeableConcept"},
    {"MedicationDispense", "status", K_TOKEN, "status"},
    {"MedicationDispense", "prescription", K_REFERENCE, "authorizingPrescription"},
    {"MedicationDispense", "whenhandedover", K_DATE, "whenHandedOver"},
    {"MedicationAdministration", "patient", K_REFERENCE, "subject"},
    {"MedicationAdministration", "subject", K_REFERENCE, "subject"},
    {"MedicationAdministration", "identifier", K_TOKEN, "identifier"},
    {"MedicationAdministration", "code", K_TOKEN, "medicationCodeableConcept"},
    {"MedicationAdministration", "status", K_TOKEN, "status"},
    {"MedicationAdministration", "request", K_REFERENCE, "request"},
    {"MedicationAdministration", "effective-time", K_DATE, "effectiveDateTime|effectivePeriod"},
    {"ImagingStudy", "patient", K_REFERENCE, "subject"},
    {"ImagingStudy", "subject", K_REFERENCE, "subject"},
    {"ImagingStudy", "identifier", K_TOKEN, "identifier"},
    {"ImagingStudy", "status", K_TOKEN, "status"},
    {"ImagingStudy", "modality", K_TOKEN, "series.modality"},
    {"ImagingStudy", "started", K_DATE, "started"},
    {"ImagingStudy", "basedon", K_REFERENCE, "basedOn"},
    {"DocumentReference", "patient", K_REFERENCE, "subject"},
    {"DocumentReference", "subject", K_REFERENCE, "subject"},
    {"DocumentReference", "identifier", K_TOKEN, "identifier"},
    {"DocumentReference", "type", K_TOKEN, "type"},
    {"DocumentReference", "category", K_TOKEN, "category"},
    {"DocumentReference", "status", K_TOKEN, "status"},
    {"DocumentReference", "date", K_DATE, "date"},
    {"DocumentReference", "encounter", K_REFERENCE, "context.encounter"},
    {"Appointment", "patient", K_REFERENCE, "participant.actor"},
    {"Appointment", "actor", K_REFERENCE, "participant.actor"},
    {"Appointment", "identifier", K_TOKEN, "identifier"},
    {"Appointment", "status", K_TOKEN, "status"},
    {"Appointment", "date", K_DATE, "start"},
    {"Appointment", "service-type", K_TOKEN, "serviceType"},
    {"Communication", "patient", K_REFERENCE, "subject"},
    {"Communication", "subject", K_REFERENCE, "subject"},
    {"Communication", "identifier", K_TOKEN, "identifier"},
    {"Communication", "status", K_TOKEN, "status"},
    {"Communication", "sent", K_DATE, "sent"},
    {"Task", "patient", K_REFERENCE, "for"},
    {"Task", "subject", K_REFERENCE, "for"},
    {"Task", "identifier", K_TOKEN, "identifier"},
    {"Task", "status", K_TOKEN, "status"},
    {"Task", "intent", K_TOKEN, "intent"},
    {"Task", "code", K_TOKEN, "code"},
    {"Task", "focus", K_REFERENCE, "focus"},
    {"Task", "authored-on", K_DATE, "authoredOn"},
    {"Device", "patient", K_REFERENCE, "patient"},
    {"Device", "identifier", K_TOKEN, "identifier"},
    {"Device", "type", K_TOKEN, "type"},
    {"Device", "manufacturer", K_STRING, "manufacturer"},
    {"Device", "model", K_STRING, "modelNumber"},
    {"Device", "udi-di", K_STRING, "udiCarrier.deviceIdentifier"},
    {"Coverage", "patient", K_REFERENCE, "beneficiary"},
    {"Coverage", "beneficiary", K_REFERENCE, "beneficiary"},
    {"Coverage", "identifier", K_TOKEN, "identifier"},
    {"Coverage", "status", K_TOKEN, "status"},
    {"Coverage", "payor", K_REFERENCE, "payor"},
    {"CoverageEligibilityRequest", "patient", K_REFERENCE, "patient"},
    {"CoverageEligibilityRequest", "identifier", K_TOKEN, "identifier"},
    {"CoverageEligibilityRequest", "status", K_TOKEN, "status"},
    {"CoverageEligibilityRequest", "created", K_DATE, "created"},
    {"CoverageEligibilityResponse", "patient", K_REFERENCE, "patient"},
    {"CoverageEligibilityResponse", "identifier", K_TOKEN, "identifier"},
    {"CoverageEligibilityResponse", "status", K_TOKEN, "status"},
    {"CoverageEligibilityResponse", "outcome", K_TOKEN, "outcome"},
    {"CoverageEligibilityResponse", "created", K_DATE, "created"},
    {"CoverageEligibilityResponse", "request", K_REFERENCE, "request"},
    {"ChargeItem", "patient", K_REFERENCE, "subject"},
    {"ChargeItem", "subject", K_REFERENCE, "subject"},
    {"ChargeItem", "identifier", K_TOKEN, "identifier"},
    {"ChargeItem", "code", K_TOKEN, "code"},
    {"ChargeItem", "occurrence", K_DATE, "occurrenceDateTime|occurrencePeriod"},
    {"ChargeItem", "entered-date", K_DATE, "enteredDate"},
    {"Claim", "patient", K_REFERENCE, "patient"},
    {"Claim", "identifier", K_TOKEN, "identifier"},
    {"Claim", "status", K_TOKEN, "status"},
    {"Claim", "use", K_TOKEN, "use"},
    {"Claim", "created", K_DATE, "created"},
    {"Claim", "provider", K_REFERENCE, "provider"},
    {"ClaimResponse", "patient", K_REFERENCE, "patient"},
    {"ClaimResponse", "identifier", K_TOKEN, "identifier"},
    {"ClaimResponse", "status", K_TOKEN, "status"},
    {"ClaimResponse", "outcome", K_TOKEN, "outcome"},
    {"ClaimResponse", "created", K_DATE, "created"},
    {"ClaimResponse", "request", K_REFERENCE, "request"},
    {"DetectedIssue", "patient", K_REFERENCE, "patient"},
    {"DetectedIssue", "identifier", K_TOKEN, "identifier"},
    {"DetectedIssue", "code", K_TOKEN, "code"},
    {"DetectedIssue", "identified", K_DATE, "identifiedDateTime|identifiedPeriod"},
    {"DetectedIssue", "implicated", K_REFERENCE, "implicated"},
    {"PaymentReconciliation", "identifier", K_TOKEN, "identifier"},
    {"PaymentReconciliation", "status", K_TOKEN, "status"},
    {"PaymentReconciliation", "created", K_DATE, "created"},
    {"PaymentReconciliation", "outcome", K_TOKEN, "outcome"},
    {"Provenance", "target", K_REFERENCE, "target"},
    {"Provenance", "patient", K_REFERENCE, "target"},
    {"Provenance", "recorded", K_DATE, "recorded"},
    {"Provenance", "agent", K_REFERENCE, "agent.who"},
    {"Provenance", "entity", K_REFERENCE, "entity.what"},
};
#define NPARAMS (sizeof PARAMS / sizeof PARAMS[0])

static const pdef *find_param(const char *type, const char *name, size_t nl) {
  for (size_t i = 0; i < NPARAMS; i++)
    if ((PARAMS[i].type == NULL || strcmp(PARAMS[i].type, type) == 0) &&
        strlen(PARAMS[i].name) == nl && strncmp(PARAMS[i].name, name, nl) == 0)
      return &PARAMS[i];
  return NULL;
}

/* The path of the date a type sorts by with _sort=date. */
static const pdef *date_param(const char *type) {
  static const char *const names[] = {"date",      "authoredon", "authored",       "issued",
                                      "started",   "sent",       "effective-time", "created",
                                      "recorded",  "occurrence", "whenhandedover", "identified",
                                      "birthdate", "onset-date", "authored-on"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    const pdef *d = find_param(type, names[i], strlen(names[i]));
    if (d != NULL && d->kind == K_DATE && d->type != NULL)
      return d;
  }
  return find_param(type, "_lastUpdated", 12);
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
static json_t *values_of(json_t *res, const pdef *d) {
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
static int value_range(json_t *v, int64_t *lo, int64_t *hi) {
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

static int prefix_of(const char *v, char out[3]) {
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

/* ------------------------------------------------------------ parsed searches */

typedef struct crit {
  const pdef *d;
  char mod[64];   /* modifier, "" if none ("not", "text", "exact", "contains", "missing", a
                     type for references) */
  char chain[64]; /* chained parameter of a reference (subject:Patient.identifier) */
  char *value;    /* OR-list, commas unescaped later */
} crit;

typedef struct query {
  const char *type;
  crit c[32];
  size_t nc;
  size_t count;      /* _count */
  int summary_count; /* _summary=count */
  char sort[64];     /* "", "date", "-date", "_lastUpdated", "-_lastUpdated" */
  const pdef *sort_d;
  int sort_desc;
  char elements[512]; /* _elements */
  int inc_patient;    /* _include=*:patient|subject */
  char inc_param[64];
  int rev_prov;     /* _revinclude=Provenance:target */
  char cursor[256]; /* _cursor */
  int64_t since;    /* $everything _since (ms), INT64_MIN if none */
  char types[512];  /* $everything _type */
  json_t *ignored;  /* names of ignored parameters */
} query;

/* Splits a comma-separated OR list (a "\," is a literal comma) in place. */
static size_t split_or(char *s, char **out, size_t cap) {
  size_t n = 0;
  char *w = s, *start = s;
  for (char *r = s;; r++) {
    if (*r == '\\' && r[1] == ',') {
      *w++ = ',';
      r++;
      continue;
    }
    if (*r == ',' || *r == '\0') {
      int end = *r == '\0';
      *w++ = '\0';
      if (n < cap)
        out[n++] = start;
      start = w;
      if (end)
        break;
      continue;
    }
    *w++ = *r;
  }
  return n;
}

static int crit_value(json_t *res, const crit *c, const char *val, int64_t now);

/* Resources of `type` whose `param` matches `value`: their "Type/id" in
 * ids (chained searches). */
static int chain_ids(cl_fhir_engine *e, const char *type, const char *param, const char *value,
                     json_t *ids, int64_t now, cl_err *err);

static int crit_match(cl_fhir_engine *e, json_t *res, crit *c, int64_t now, cl_err *err) {
  if (!strcmp(c->mod, "missing")) {
    json_t *vals = values_of(res, c->d);
    int missing = json_array_size(vals) == 0;
    json_decref(vals);
    return (strcmp(c->value, "true") == 0) == missing;
  }
  char buf[1024], *alts[32];
  snprintf(buf, sizeof buf, "%s", c->value);
  size_t n = split_or(buf, alts, 32);
  if (c->chain[0] != '\0') { /* subject:Patient.identifier=... */
    const char *rtype = c->mod[0] ? c->mod : "Patient";
    json_t *ids = json_array();
    for (size_t i = 0; i < n; i++)
      if (chain_ids(e, rtype, c->chain, alts[i], ids, now, err) < 0) {
        json_decref(ids);
        return -1;
      }
    json_t *vals = values_of(res, c->d);
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
    hit = crit_value(res, c, alts[i], now);
  if (!strcmp(c->mod, "not") && c->d->kind == K_TOKEN)
    return !hit;
  return hit;
}

static int crit_value(json_t *res, const crit *c, const char *val, int64_t now) {
  json_t *vals = values_of(res, c->d);
  int hit = 0;
  const pdef *d = c->d;
  if (d->kind == K_TOKEN) {
    char sys[512] = "", code[256] = "";
    const char *bar = strchr(val, '|');
    if (bar) {
      snprintf(sys, sizeof sys, "%.*s", (int)(bar - val), val);
      snprintf(code, sizeof code, "%s", bar + 1);
    } else {
      snprintf(code, sizeof code, "%s", val);
    }
    for (size_t i = 0; !hit && i < json_array_size(vals); i++)
      hit = !strcmp(c->mod, "text") ? token_text(json_array_get(vals, i), val)
                                    : token_one(json_array_get(vals, i), sys, code, bar != NULL);
  } else if (d->kind == K_DATE) {
    char pfx[3];
    int skip = prefix_of(val, pfx);
    int64_t plo, phi, tlo, thi;
    if (cl_fhir_date_range(val + skip, &plo, &phi) == 0)
      for (size_t i = 0; !hit && i < json_array_size(vals); i++)
        if (value_range(json_array_get(vals, i), &tlo, &thi) == 0)
          hit = date_cmp(pfx, tlo, thi, plo, phi, now);
  } else if (d->kind == K_STRING) {
    for (size_t i = 0; !hit && i < json_array_size(vals); i++)
      hit = string_match(json_array_get(vals, i), val, c->mod);
  } else if (d->kind == K_REFERENCE) {
    for (size_t i = 0; !hit && i < json_array_size(vals); i++)
      hit = ref_match(json_array_get(vals, i), val, c->mod[0] ? c->mod : NULL);
  } else if (d->kind == K_QUANTITY) {
    char pfx[3];
    int skip = prefix_of(val, pfx);
    for (size_t i = 0; !hit && i < json_array_size(vals); i++)
      hit = quantity_match(json_array_get(vals, i), val + skip, pfx);
  }
  json_decref(vals);
  return hit;
}

/* ------------------------------------------------------------ candidates */

typedef struct item {
  json_t *res;  /* stored form */
  char key[48]; /* sort key: a date as a fixed-width number, or "" */
  const char *id;
  int type;
} item;

typedef struct items {
  item *v;
  size_t n, cap;
} items;

static void items_free(items *it) {
  for (size_t i = 0; i < it->n; i++)
    json_decref(it->v[i].res);
  free(it->v);
  memset(it, 0, sizeof *it);
}

static int add_item(void *ctx, cl_fhir_resource *r, cl_err *err) {
  items *it = ctx;
  json_error_t je;
  json_t *j = json_loadb(r->json, r->len, 0, &je);
  int type = r->type;
  cl_fhir_resource_clear(r);
  if (j == NULL)
    return cl_err_set(err, CL_ECORRUPT, "fhir: stored resource is not JSON: %s", je.text);
  if (it->n == it->cap) {
    size_t cap = it->cap ? it->cap * 2 : 64;
    item *v = realloc(it->v, cap * sizeof *v);
    if (v == NULL) {
      json_decref(j);
      return cl_err_set(err, CL_ENOMEM, "out of memory");
    }
    it->v = v;
    it->cap = cap;
  }
  item *x = &it->v[it->n++];
  memset(x, 0, sizeof *x);
  x->res = j;
  x->id = json_string_value(json_object_get(j, "id"));
  x->type = type;
  return 0;
}

/* The patient id a criterion names, when the search is about one patient
 * (patient=123, patient=Patient/123, subject=Patient/123). */
static const char *one_patient(const query *q, char *buf, size_t n) {
  for (size_t i = 0; i < q->nc; i++) {
    const crit *c = &q->c[i];
    if (c->d->kind != K_REFERENCE || c->chain[0] || strchr(c->value, ','))
      continue;
    if (c->mod[0] && strcmp(c->mod, "Patient") != 0)
      continue;
    int is_patient_param = !strcmp(c->d->name, "patient");
    const char *v = c->value;
    if (!strncmp(v, "Patient/", 8))
      v += 8;
    else if (!is_patient_param || strchr(v, '/'))
      continue;
    snprintf(buf, n, "%s", v);
    return buf;
  }
  return NULL;
}

static int load_candidates(cl_fhir_engine *e, const char *type, const char *patient, items *it,
                           cl_err *err) {
  int t = cl_fhir_type_of(type);
  if (patient != NULL) {
    /* the compartment of a patient whose FHIR id is its clinlog id */
    char stream[CL_FHIR_ID_MAX + 16], id[CL_FHIR_ID_MAX];
    cl_fhir_id("Patient", NULL, patient, id);
    if (strcmp(id, patient) == 0) {
      uint8_t tag[32];
      snprintf(stream, sizeof stream, "patient-%s", patient);
      if (cl_log_stream_tag(e->log, stream, tag, err) == 0)
        return cl_fhir_stream(e->p, tag, t, CL_FHIR_STORED, add_item, it, err);
    }
  }
  uint8_t next[32];
  return cl_fhir_scan_type(e->p, t, NULL, CL_FHIR_STORED, add_item, it, next, err);
}

static int chain_ids(cl_fhir_engine *e, const char *type, const char *param, const char *value,
                     json_t *ids, int64_t now, cl_err *err) {
  const pdef *d = find_param(type, param, strlen(param));
  if (d == NULL)
    return 0;
  crit c = {.d = d, .value = (char *)value};
  items it = {0};
  int rc = load_candidates(e, type, NULL, &it, err);
  for (size_t i = 0; rc == 0 && i < it.n; i++)
    if (crit_value(it.v[i].res, &c, value, now)) {
      char r[160];
      snprintf(r, sizeof r, "%s/%s", type, it.v[i].id);
      json_array_append_new(ids, json_string(r));
    }
  items_free(&it);
  return rc < 0 ? -1 : 0;
}

/* ------------------------------------------------------------ responses */

static int outcome(cl_fhir_resp *rs, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static json_t *outcome_json(const char *severity, const char *code, const char *text,
                            const char *expr) {
  json_t *issue =
      json_pack("{s:s,s:s,s:s}", "severity", severity, "code", code, "diagnostics", text);
  if (expr != NULL)
    json_object_set_new(issue, "expression", json_pack("[s]", expr));
  return json_pack("{s:s,s:[o]}", "resourceType", "OperationOutcome", "issue", issue);
}

static int send_json(cl_fhir_resp *rs, int status, json_t *j) {
  rs->status = status;
  char *stored = fj_dump(j, NULL);
  json_decref(j);
  if (stored == NULL) {
    rs->status = 500;
    return CL_ENOMEM;
  }
  rs->body = fj_finish(stored, strlen(stored), &rs->len);
  free(stored);
  if (rs->body == NULL) {
    rs->status = 500;
    return CL_ENOMEM;
  }
  return 0;
}

/* Length of the valid UTF-8 sequence at s (0: invalid). */
static size_t utf8_len(const unsigned char *s) {
  if (s[0] < 0x80)
    return 1;
  size_t n = s[0] >= 0xF0 && s[0] <= 0xF4   ? 4
             : s[0] >= 0xE0 && s[0] <= 0xEF ? 3
             : s[0] >= 0xC2 && s[0] < 0xE0  ? 2
                                            : 0;
  for (size_t i = 1; i < n; i++)
    if ((s[i] & 0xC0) != 0x80)
      return 0;
  if (n == 3 && ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0)))
    return 0; /* overlong, surrogates */
  if (n == 4 && ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90)))
    return 0;
  return n;
}

static int utf8_valid(const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p;) {
    size_t n = utf8_len(p);
    if (n == 0)
      return 0;
    p += n;
  }
  return 1;
}

/* Replaces invalid UTF-8 (echoed from a request) with '?', in place. */
static void utf8_clean(char *s) {
  for (unsigned char *p = (unsigned char *)s; *p;) {
    size_t n = utf8_len(p);
    if (n == 0)
      *p++ = '?';
    else
      p += n;
  }
}

static int outcome(cl_fhir_resp *rs, int status, const char *code, const char *fmt, ...) {
  char text[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  utf8_clean(text); /* a truncated or echoed value may have cut a sequence */
  return send_json(rs, status, outcome_json("error", code, text, NULL));
}

static int from_err(cl_fhir_resp *rs, const cl_err *err) {
  switch (err->code) {
  case CL_ENOTFOUND:
    return outcome(rs, 404, "not-found", "%s", err->msg);
  case CL_EINVAL:
    return outcome(rs, 400, "invalid", "%s", err->msg);
  case CL_ENOMEM:
    return outcome(rs, 500, "exception", "out of memory");
  default:
    return outcome(rs, 500, "exception", "%s (%s)", err->msg, cl_errname(err->code));
  }
}

static void iso_now(int64_t now_ms, char out[40]) {
  fj_instant_text(now_ms / 1000, (int32_t)(now_ms % 1000) * 1000000, out);
}

static json_t *new_bundle(const char *btype, int64_t now_ms) {
  uint8_t id[16];
  randombytes_buf(id, sizeof id);
  char uuid[37], ts[40];
  ProtobufCBinaryData b = {16, id};
  fj_uuid_text(&b, uuid);
  iso_now(now_ms, ts);
  return json_pack("{s:s,s:s,s:{s:s},s:s}", "resourceType", "Bundle", "id", uuid, "meta",
                   "lastUpdated", ts, "type", btype);
}

static json_t *entry_of(const cl_fhir_req *rq, json_t *res, const char *mode) {
  char url[512];
  snprintf(url, sizeof url, "%s/%s/%s", rq->base ? rq->base : "",
           json_string_value(json_object_get(res, "resourceType")),
           json_string_value(json_object_get(res, "id")));
  json_t *e = json_pack("{s:s,s:O}", "fullUrl", url, "resource", res);
  if (mode != NULL)
    json_object_set_new(e, "search", json_pack("{s:s}", "mode", mode));
  return e;
}

/* ------------------------------------------------------------ read / vread */

static int do_read(cl_fhir_engine *e, const cl_fhir_req *rq, cl_fhir_resp *rs) {
  cl_fhir_resource r;
  cl_err err;
  cl_err_clear(&err);
  if (cl_fhir_type_of(rq->type) == 0)
    return outcome(rs, 404, "not-supported", "resource type %s is not served here",
                   rq->type ? rq->type : "");
  int rc = cl_fhir_read_ex(e->p, rq->type, rq->id,
                           rq->interaction == CL_FHIR_VREAD ? rq->version : 0, 0, &r, &err);
  if (rc == CL_ENOTFOUND) {
    if (rq->interaction == CL_FHIR_VREAD)
      return outcome(rs, 404, "not-found", "%s/%s has no version %u", rq->type, rq->id,
                     rq->version);
    return outcome(rs, 404, "not-found", "%s/%s is not known", rq->type, rq->id);
  }
  if (rc)
    return from_err(rs, &err);
  rs->status = 200;
  rs->body = r.json;
  rs->len = r.len;
  r.json = NULL;
  snprintf(rs->etag, sizeof rs->etag, "W/\"%u\"", r.version);
  rs->last_modified_ns = r.last_updated_ns;
  cl_fhir_resource_clear(&r);
  return 0;
}

/* ------------------------------------------------------------ history */

typedef struct hist {
  json_t *entries;
  const cl_fhir_req *rq;
  size_t max;
} hist;

static int hist_one(void *ctx, cl_fhir_resource *r, cl_err *err) {
  hist *h = ctx;
  json_t *j = json_loadb(r->json, r->len, 0, NULL);
  if (j == NULL) {
    cl_fhir_resource_clear(r);
    return cl_err_set(err, CL_ECORRUPT, "fhir: stored resource is not JSON");
  }
  char url[256], etag[24], lm[40];
  const char *type = json_string_value(json_object_get(j, "resourceType"));
  const char *id = json_string_value(json_object_get(j, "id"));
  if (r->version == 1)
    snprintf(url, sizeof url, "%s", type);
  else
    snprintf(url, sizeof url, "%s/%s", type, id);
  snprintf(etag, sizeof etag, "W/\"%u\"", r->version);
  fj_instant_text(r->last_updated_ns / 1000000000, (int32_t)(r->last_updated_ns % 1000000000), lm);
  json_t *e = entry_of(h->rq, j, NULL);
  json_object_set_new(
      e, "request", json_pack("{s:s,s:s}", "method", r->version == 1 ? "POST" : "PUT", "url", url));
  json_object_set_new(e, "response",
                      json_pack("{s:s,s:s,s:s}", "status",
                                r->version == 1 ? "201 Created" : "200 OK", "etag", etag,
                                "lastModified", lm));
  json_array_append_new(h->entries, e);
  json_decref(j);
  cl_fhir_resource_clear(r);
  return json_array_size(h->entries) >= h->max ? 1 : 0;
}

static int hist_type(void *ctx, cl_fhir_resource *r, cl_err *err);

typedef struct hist_all {
  hist *h;
  cl_proj *p;
} hist_all;

static int hist_type(void *ctx, cl_fhir_resource *r, cl_err *err) {
  hist_all *a = ctx;
  json_t *j = json_loadb(r->json, r->len, 0, NULL);
  char type[64] = "", id[CL_FHIR_ID_MAX] = "";
  if (j != NULL) {
    snprintf(type, sizeof type, "%s", json_string_value(json_object_get(j, "resourceType")));
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(j, "id")));
  }
  json_decref(j);
  cl_fhir_resource_clear(r);
  int rc = cl_fhir_history(a->p, type, id, CL_FHIR_STORED, hist_one, a->h, err);
  if (rc < 0)
    return rc;
  return json_array_size(a->h->entries) >= a->h->max ? 1 : 0;
}

static size_t count_param(const cl_fhir_req *rq, size_t dflt) {
  for (size_t i = 0; i < rq->nparams; i++)
    if (!strcmp(rq->params[i].name, "_count")) {
      long v = strtol(rq->params[i].value, NULL, 10);
      if (v >= 0 && v <= 1000)
        return (size_t)v;
    }
  return dflt;
}

static int do_history(cl_fhir_engine *e, const cl_fhir_req *rq, int64_t now, cl_fhir_resp *rs) {
  if (cl_fhir_type_of(rq->type) == 0)
    return outcome(rs, 404, "not-supported", "resource type %s is not served here",
                   rq->type ? rq->type : "");
  cl_err err;
  cl_err_clear(&err);
  hist h = {json_array(), rq, count_param(rq, 1000)};
  int rc;
  if (rq->interaction == CL_FHIR_HISTORY_INSTANCE) {
    rc = cl_fhir_history(e->p, rq->type, rq->id, CL_FHIR_STORED, hist_one, &h, &err);
  } else {
    hist_all a = {&h, e->p};
    uint8_t next[32];
    rc = cl_fhir_scan_type(e->p, cl_fhir_type_of(rq->type), NULL, CL_FHIR_STORED, hist_type, &a,
                           next, &err);
  }
  if (rc < 0) {
    json_decref(h.entries);
    if (rc == CL_ENOTFOUND)
      return outcome(rs, 404, "not-found", "%s/%s is not known", rq->type, rq->id);
    return from_err(rs, &err);
  }
  json_t *b = new_bundle("history", now);
  json_object_set_new(b, "total", json_integer((json_int_t)json_array_size(h.entries)));
  json_object_set_new(b, "entry", h.entries);
  if (json_array_size(h.entries) == 0)
    json_object_del(b, "entry");
  return send_json(rs, 200, b);
}

/* ------------------------------------------------------------ search */

static int parse_query(const cl_fhir_req *rq, const char *type, query *q, cl_fhir_resp *rs,
                       int everything) {
  memset(q, 0, sizeof *q);
  q->type = type;
  q->count = everything ? 1000 : 50;
  q->since = INT64_MIN;
  q->ignored = json_array();
  for (size_t i = 0; i < rq->nparams; i++) {
    const char *name = rq->params[i].name, *val = rq->params[i].value;
    if (!strcmp(name, "_count")) {
      char *end;
      long v = strtol(val, &end, 10);
      if (*end != '\0' || v < 0 || v > 1000)
        return outcome(rs, 400, "invalid", "_count: %s is not a number from 0 to 1000", val);
      q->count = (size_t)v;
      continue;
    }
    if (!strcmp(name, "_summary")) {
      if (!strcmp(val, "count"))
        q->summary_count = 1;
      else if (strcmp(val, "false") != 0)
        return outcome(rs, 400, "not-supported", "_summary=%s: only count and false are supported",
                       val);
      continue;
    }
    if (!strcmp(name, "_sort")) {
      snprintf(q->sort, sizeof q->sort, "%s", val);
      q->sort_desc = val[0] == '-';
      const char *sv = val + q->sort_desc;
      if (!strcmp(sv, "date"))
        q->sort_d = date_param(type);
      else if (!strcmp(sv, "_lastUpdated"))
        q->sort_d = find_param(type, "_lastUpdated", 12);
      else {
        const pdef *d = find_param(type, sv, strlen(sv));
        if (d == NULL || d->kind != K_DATE)
          return outcome(rs, 400, "not-supported",
                         "_sort=%s: sorting is by date, -date, _lastUpdated or another date "
                         "parameter of %s",
                         val, type);
        q->sort_d = d;
      }
      continue;
    }
    if (!strcmp(name, "_elements")) {
      snprintf(q->elements, sizeof q->elements, "%s", val);
      continue;
    }
    if (!strcmp(name, "_include")) {
      const char *colon = strchr(val, ':');
      if (colon == NULL || (strcmp(colon + 1, "patient") && strcmp(colon + 1, "subject")))
        return outcome(rs, 400, "not-supported",
                       "_include=%s: only [type]:patient and [type]:subject are supported", val);
      q->inc_patient = 1;
      snprintf(q->inc_param, sizeof q->inc_param, "%s", colon + 1);
      continue;
    }
    if (!strcmp(name, "_revinclude")) {
      if (strcmp(val, "Provenance:target") != 0)
        return outcome(rs, 400, "not-supported",
                       "_revinclude=%s: only Provenance:target is supported", val);
      q->rev_prov = 1;
      continue;
    }
    if (!strcmp(name, "_cursor")) {
      snprintf(q->cursor, sizeof q->cursor, "%s", val);
      continue;
    }
    if (!strcmp(name, "_format") || !strcmp(name, "_pretty"))
      continue;
    if (everything && !strcmp(name, "_since")) {
      int64_t lo, hi;
      if (cl_fhir_date_range(val, &lo, &hi) != 0)
        return outcome(rs, 400, "invalid", "_since: %s is not an instant", val);
      q->since = lo;
      continue;
    }
    if (everything && !strcmp(name, "_type")) {
      snprintf(q->types, sizeof q->types, "%s", val);
      continue;
    }
    if (everything) {
      json_array_append_new(q->ignored, json_string(name));
      continue;
    }
    /* name[:modifier][.chain] */
    const char *colon = strchr(name, ':');
    const char *dot = strchr(name, '.');
    size_t nl = colon ? (size_t)(colon - name) : dot ? (size_t)(dot - name) : strlen(name);
    const pdef *d = find_param(type, name, nl);
    if (d == NULL) {
      if (rq->strict)
        return outcome(rs, 400, "not-supported", "unknown search parameter %.*s for %s", (int)nl,
                       name, type);
      json_array_append_new(q->ignored, json_string(name));
      continue;
    }
    if (q->nc == sizeof q->c / sizeof q->c[0])
      return outcome(rs, 400, "too-costly", "at most 32 search criteria");
    crit *c = &q->c[q->nc];
    memset(c, 0, sizeof *c);
    c->d = d;
    if (colon != NULL) {
      const char *mend = dot && dot > colon ? dot : name + strlen(name);
      snprintf(c->mod, sizeof c->mod, "%.*s", (int)(mend - colon - 1), colon + 1);
    }
    if (dot != NULL)
      snprintf(c->chain, sizeof c->chain, "%s", dot + 1);
    int ok_mod =
        c->mod[0] == '\0' || !strcmp(c->mod, "missing") ||
        (d->kind == K_TOKEN && (!strcmp(c->mod, "not") || !strcmp(c->mod, "text"))) ||
        (d->kind == K_STRING && (!strcmp(c->mod, "exact") || !strcmp(c->mod, "contains"))) ||
        (d->kind == K_REFERENCE && cl_fhir_type_of(c->mod) != 0);
    if (!ok_mod)
      return outcome(rs, 400, "not-supported",
                     "%s: modifier :%s is not supported for a %s parameter", name, c->mod,
                     kind_names[d->kind]);
    if (c->chain[0] && d->kind != K_REFERENCE)
      return outcome(rs, 400, "invalid", "%s: only references can be chained", name);
    if (!strcmp(c->mod, "missing") && strcmp(val, "true") && strcmp(val, "false"))
      return outcome(rs, 400, "invalid", "%s: :missing takes true or false, not %s", name, val);
    if (d->kind == K_DATE && strcmp(c->mod, "missing")) { /* every OR value must be a date */
      char buf[1024], *alts[32];
      snprintf(buf, sizeof buf, "%s", val);
      size_t n = split_or(buf, alts, 32);
      for (size_t k = 0; k < n; k++) {
        char pfx[3];
        int64_t lo, hi;
        if (cl_fhir_date_range(alts[k] + prefix_of(alts[k], pfx), &lo, &hi) != 0)
          return outcome(rs, 400, "invalid", "%s: %s is not a FHIR date with an optional prefix",
                         name, alts[k]);
      }
    }
    c->value = (char *)val;
    q->nc++;
  }
  if (!q->sort_d && q->sort[0] == '\0')
    q->sort_d = find_param(type, "_lastUpdated", 12);
  return 0;
}

/* A date as a sortable fixed-width key; "" when the resource has none. */
static void sort_key(json_t *res, const pdef *d, int desc, char out[48]) {
  out[0] = '\0';
  if (d == NULL)
    return;
  json_t *vals = values_of(res, d);
  int64_t best = 0;
  int have = 0;
  for (size_t i = 0; i < json_array_size(vals); i++) {
    int64_t lo, hi;
    if (value_range(json_array_get(vals, i), &lo, &hi) == 0) {
      int64_t v = desc ? hi : lo;
      if (!have || (desc ? v > best : v < best))
        best = v;
      have = 1;
    }
  }
  json_decref(vals);
  if (have) /* offset so that negative times sort too */
    snprintf(out, 48, "%020llu", (unsigned long long)((uint64_t)best ^ 0x8000000000000000ULL));
}

static int cmp_asc(const void *a, const void *b) {
  const item *x = a, *y = b;
  /* resources without the value sort last */
  if (!x->key[0] != !y->key[0])
    return x->key[0] ? -1 : 1;
  int c = strcmp(x->key, y->key);
  if (c)
    return c;
  if (x->type != y->type)
    return x->type < y->type ? -1 : 1;
  return strcmp(x->id, y->id);
}

static int cmp_desc(const void *a, const void *b) {
  const item *x = a, *y = b;
  if (!x->key[0] != !y->key[0])
    return x->key[0] ? -1 : 1;
  int c = strcmp(y->key, x->key);
  if (c)
    return c;
  if (x->type != y->type)
    return x->type < y->type ? -1 : 1;
  return strcmp(x->id, y->id);
}

/* The cursor "key~type~id" of an item. */
static void cursor_of(const item *x, char out[256]) {
  snprintf(out, 256, "%s~%d~%s", x->key, x->type, x->id);
}

/* Is x after the cursor in the sort order? */
static int after_cursor(const item *x, const char *cursor, int desc) {
  char key[48] = "", id[CL_FHIR_ID_MAX] = "";
  int type = 0;
  const char *t1 = strchr(cursor, '~');
  const char *t2 = t1 ? strchr(t1 + 1, '~') : NULL;
  if (t1 == NULL || t2 == NULL)
    return 1;
  snprintf(key, sizeof key, "%.*s", (int)(t1 - cursor), cursor);
  type = atoi(t1 + 1);
  snprintf(id, sizeof id, "%s", t2 + 1);
  item c = {.res = NULL, .id = id, .type = type};
  memcpy(c.key, key, sizeof key);
  return (desc ? cmp_desc(x, &c) : cmp_asc(x, &c)) > 0;
}

/* Percent-encodes a query value. */
static void url_put(char **w, char *end, const char *s) {
  static const char hex[] = "0123456789ABCDEF";
  for (; *s && *w + 4 < end; s++) {
    unsigned char ch = (unsigned char)*s;
    if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~' || ch == ':' || ch == ',' ||
        ch == '|' || ch == '/') {
      *(*w)++ = (char)ch;
    } else {
      *(*w)++ = '%';
      *(*w)++ = hex[ch >> 4];
      *(*w)++ = hex[ch & 15];
    }
  }
  **w = '\0';
}

/* The URL of this search with the cursor `cursor` (NULL: the request's). */
static void page_url(const cl_fhir_req *rq, const char *path, const char *cursor, char *out,
                     size_t n) {
  char *w = out, *end = out + n;
  int k = snprintf(out, n, "%s/%s", rq->base ? rq->base : "", path);
  w += k > 0 && (size_t)k < n ? k : 0;
  char sep = '?';
  for (size_t i = 0; i < rq->nparams; i++) {
    if (!strcmp(rq->params[i].name, "_cursor"))
      continue;
    if (w + 2 >= end)
      break;
    *w++ = sep;
    sep = '&';
    url_put(&w, end, rq->params[i].name);
    if (w + 2 >= end)
      break;
    *w++ = '=';
    url_put(&w, end, rq->params[i].value);
  }
  if (cursor != NULL && w + 10 < end) {
    *w++ = sep;
    memcpy(w, "_cursor=", 8);
    w += 8;
    url_put(&w, end, cursor);
  }
  *w = '\0';
}

/* Keeps only the top-level elements listed in _elements (and the ones every
 * resource needs), marking the resource SUBSETTED. */
static json_t *subset(json_t *res, const char *elements) {
  json_t *o = json_object();
  const char *k;
  json_t *v;
  json_object_foreach(res, k, v) {
    int keep = !strcmp(k, "resourceType") || !strcmp(k, "id") || !strcmp(k, "meta");
    size_t kl = strlen(k);
    for (const char *p = elements; !keep && *p;) {
      const char *c = strchr(p, ',');
      size_t n = c ? (size_t)(c - p) : strlen(p);
      keep = n == kl && strncmp(p, k, n) == 0;
      p += n + (c != NULL);
    }
    if (keep)
      json_object_set(o, k, v);
  }
  json_t *meta = json_deep_copy(json_object_get(o, "meta"));
  if (meta == NULL)
    meta = json_object();
  json_object_set_new(meta, "tag",
                      json_pack("[{s:s,s:s,s:s}]", "system",
                                "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code",
                                "SUBSETTED", "display", "Resource encoded in summary mode"));
  json_object_set_new(o, "meta", meta);
  return o;
}

static int in_types(const char *types, const char *t) {
  if (types[0] == '\0')
    return 1;
  size_t tl = strlen(t);
  for (const char *p = types; *p;) {
    const char *c = strchr(p, ',');
    size_t n = c ? (size_t)(c - p) : strlen(p);
    if (n == tl && strncmp(p, t, n) == 0)
      return 1;
    p += n + (c != NULL);
  }
  return 0;
}

static int do_search(cl_fhir_engine *e, const cl_fhir_req *rq, int64_t now, cl_fhir_resp *rs) {
  int everything = rq->interaction == CL_FHIR_EVERYTHING;
  const char *type = everything ? "Patient" : rq->type;
  if (cl_fhir_type_of(type) == 0)
    return outcome(rs, 404, "not-supported", "resource type %s is not served here",
                   type ? type : "");
  query q;
  int rc = parse_query(rq, type, &q, rs, everything);
  if (rc != 0 || rs->status != 0) {
    json_decref(q.ignored);
    return rc;
  }
  cl_err err;
  cl_err_clear(&err);
  items it = {0};
  char pbuf[CL_FHIR_ID_MAX];
  if (everything) {
    /* the patient's compartment: every resource of their stream */
    cl_fhir_resource pr;
    if (cl_fhir_read(e->p, "Patient", rq->id, 0, &pr, &err) != 0) {
      json_decref(q.ignored);
      return outcome(rs, 404, "not-found", "Patient/%s is not known", rq->id);
    }
    cl_fhir_resource_clear(&pr);
    char stream[CL_FHIR_ID_MAX + 16];
    uint8_t tag[32];
    snprintf(stream, sizeof stream, "patient-%s", rq->id);
    rc = cl_log_stream_tag(e->log, stream, tag, &err);
    if (rc == 0)
      rc = cl_fhir_stream(e->p, tag, 0, CL_FHIR_STORED, add_item, &it, &err);
  } else {
    rc = load_candidates(e, type, one_patient(&q, pbuf, sizeof pbuf), &it, &err);
  }
  if (rc < 0) {
    items_free(&it);
    json_decref(q.ignored);
    return from_err(rs, &err);
  }
  /* filter */
  size_t kept = 0;
  for (size_t i = 0; i < it.n; i++) {
    item *x = &it.v[i];
    int ok = 1;
    if (everything) {
      const char *t = cl_fhir_type_name(x->type);
      ok = t != NULL && in_types(q.types, t);
      if (ok && q.since != INT64_MIN) {
        int64_t lo, hi;
        json_t *lu = json_object_get(json_object_get(x->res, "meta"), "lastUpdated");
        ok = value_range(lu, &lo, &hi) == 0 && lo >= q.since;
      }
    }
    for (size_t k = 0; ok && k < q.nc; k++) {
      int m = crit_match(e, x->res, &q.c[k], now, &err);
      if (m < 0) {
        items_free(&it);
        json_decref(q.ignored);
        return from_err(rs, &err);
      }
      ok = m;
    }
    if (ok) {
      it.v[kept++] = *x;
    } else {
      json_decref(x->res);
    }
  }
  it.n = kept;
  for (size_t i = 0; i < it.n; i++)
    sort_key(it.v[i].res, everything ? find_param("Patient", "_lastUpdated", 12) : q.sort_d,
             q.sort_desc, it.v[i].key);
  qsort(it.v, it.n, sizeof *it.v, q.sort_desc ? cmp_desc : cmp_asc);

  json_t *b = new_bundle("searchset", now);
  json_object_set_new(b, "total", json_integer((json_int_t)it.n));
  char path[160], url[4096];
  if (everything)
    snprintf(path, sizeof path, "Patient/%s/$everything", rq->id);
  else
    snprintf(path, sizeof path, "%s", type);
  page_url(rq, path, q.cursor[0] ? q.cursor : NULL, url, sizeof url);
  json_t *links = json_pack("[{s:s,s:s}]", "relation", "self", "url", url);
  json_t *entries = json_array();
  if (!q.summary_count) {
    size_t start = 0;
    if (q.cursor[0])
      while (start < it.n && !after_cursor(&it.v[start], q.cursor, q.sort_desc))
        start++;
    size_t end = start + q.count < it.n ? start + q.count : it.n;
    json_t *included = json_object(); /* "Type/id" already in the page */
    for (size_t i = start; i < end; i++) {
      json_t *res = q.elements[0] ? subset(it.v[i].res, q.elements) : json_incref(it.v[i].res);
      char key[160];
      snprintf(key, sizeof key, "%s/%s", cl_fhir_type_name(it.v[i].type), it.v[i].id);
      json_object_set_new(included, key, json_true());
      json_array_append_new(entries, entry_of(rq, res, "match"));
      json_decref(res);
    }
    for (size_t i = start; i < end; i++) {
      if (q.inc_patient) { /* the patient (or subject) each match refers to */
        const pdef *d = find_param(type, q.inc_param, strlen(q.inc_param));
        json_t *vals = d ? values_of(it.v[i].res, d) : json_array();
        for (size_t k = 0; k < json_array_size(vals); k++) {
          const char *ref =
              json_string_value(json_object_get(json_array_get(vals, k), "reference"));
          const char *slash = ref ? strchr(ref, '/') : NULL;
          if (slash == NULL || json_object_get(included, ref) != NULL)
            continue;
          char rtype[64];
          snprintf(rtype, sizeof rtype, "%.*s", (int)(slash - ref), ref);
          cl_fhir_resource r;
          if (cl_fhir_read_ex(e->p, rtype, slash + 1, 0, CL_FHIR_STORED, &r, &err) == 0) {
            json_t *j = json_loadb(r.json, r.len, 0, NULL);
            if (j != NULL)
              json_array_append_new(entries, entry_of(rq, j, "include"));
            json_decref(j);
            json_object_set_new(included, ref, json_true());
            cl_fhir_resource_clear(&r);
          }
        }
        json_decref(vals);
      }
      if (q.rev_prov) {
        items pv = {0};
        if (cl_fhir_provenance_of(e->p, cl_fhir_type_name(it.v[i].type), it.v[i].id, CL_FHIR_STORED,
                                  add_item, &pv, &err) == 0)
          for (size_t k = 0; k < pv.n; k++) {
            char key[160];
            snprintf(key, sizeof key, "Provenance/%s", pv.v[k].id);
            if (json_object_get(included, key) == NULL) {
              json_array_append_new(entries, entry_of(rq, pv.v[k].res, "include"));
              json_object_set_new(included, key, json_true());
            }
          }
        items_free(&pv);
      }
    }
    json_decref(included);
    if (end < it.n && end > start) {
      char cur[256];
      cursor_of(&it.v[end - 1], cur);
      page_url(rq, path, cur, url, sizeof url);
      json_array_append_new(links, json_pack("{s:s,s:s}", "relation", "next", "url", url));
    }
  }
  if (json_array_size(q.ignored) > 0) {
    char text[512] = "parameters ignored (not supported): ";
    for (size_t i = 0; i < json_array_size(q.ignored); i++) {
      size_t l = strlen(text);
      snprintf(text + l, sizeof text - l, "%s%s", i ? ", " : "",
               json_string_value(json_array_get(q.ignored, i)));
    }
    json_t *oo = outcome_json("warning", "not-supported", text, NULL);
    json_array_append_new(entries,
                          json_pack("{s:o,s:{s:s}}", "resource", oo, "search", "mode", "outcome"));
  }
  json_object_set_new(b, "link", links);
  if (json_array_size(entries) > 0)
    json_object_set_new(b, "entry", entries);
  else
    json_decref(entries);
  items_free(&it);
  json_decref(q.ignored);
  return send_json(rs, 200, b);
}

/* ------------------------------------------------------------ metadata */

static int do_capabilities(const cl_fhir_req *rq, int64_t now, cl_fhir_resp *rs) {
  char ts[40];
  iso_now(now, ts);
  json_t *resources = json_array();
  for (int t = 1; t < CL_FHIR_NTYPES; t++) {
    const char *name = cl_fhir_type_name(t);
    json_t *sp = json_array();
    for (size_t i = 0; i < NPARAMS; i++)
      if (PARAMS[i].type == NULL || !strcmp(PARAMS[i].type, name))
        json_array_append_new(
            sp, json_pack("{s:s,s:s}", "name", PARAMS[i].name, "type", kind_names[PARAMS[i].kind]));
    json_t *r = json_pack("{s:s,s:[{s:s},{s:s},{s:s},{s:s}],s:s,s:b,s:b,s:o}", "type", name,
                          "interaction", "code", "read", "code", "vread", "code",
                          "history-instance", "code", "search-type", "versioning", "versioned",
                          "readHistory", 1, "updateCreate", 0, "searchParam", sp);
    json_array_append_new(json_object_get(r, "interaction"),
                          json_pack("{s:s}", "code", "history-type"));
    json_object_set_new(r, "searchInclude", json_pack("[s,s]", "*:patient", "*:subject"));
    json_object_set_new(r, "searchRevInclude", json_pack("[s]", "Provenance:target"));
    if (t == CL_FHIR_Patient)
      json_object_set_new(r, "operation",
                          json_pack("[{s:s,s:s}]", "name", "everything", "definition",
                                    "http://hl7.org/fhir/OperationDefinition/Patient-everything"));
    json_array_append_new(resources, r);
  }
  json_t *cs = json_pack("{s:s,s:s,s:s,s:s,s:s,s:{s:s,s:s},s:{s:s,s:s},s:s,s:[s],s:[{s:s,s:o}]}",
                         "resourceType", "CapabilityStatement", "status", "active", "date", ts,
                         "kind", "instance", "publisher", "clinlog", "software", "name", "clinlog",
                         "version", "0.1", "implementation", "description",
                         "clinlog FHIR R4 views (read-only projections of the event log)", "url",
                         rq->base ? rq->base : "", "fhirVersion", "4.0.1", "format", "json", "rest",
                         "mode", "server", "resource", resources);
  if (!rq->base || !rq->base[0])
    json_object_del(json_object_get(cs, "implementation"), "url");
  return send_json(rs, 200, cs);
}

int cl_fhir_handle(cl_fhir_engine *e, const cl_fhir_req *rq, cl_fhir_resp *rs) {
  memset(rs, 0, sizeof *rs);
  int64_t now = rq->now_ms;
  if (now == 0) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  }
  /* what the client sent must be UTF-8 (it is echoed in links and errors) */
  if ((rq->type != NULL && !utf8_valid(rq->type)) || (rq->id != NULL && !utf8_valid(rq->id)))
    return outcome(rs, 404, "not-found", "the path is not valid UTF-8");
  for (size_t i = 0; i < rq->nparams; i++)
    if (!utf8_valid(rq->params[i].name) || !utf8_valid(rq->params[i].value))
      return outcome(rs, 400, "invalid", "parameter %zu (%s) is not valid UTF-8", i + 1,
                     rq->params[i].name);
  switch (rq->interaction) {
  case CL_FHIR_READ:
  case CL_FHIR_VREAD:
    return do_read(e, rq, rs);
  case CL_FHIR_HISTORY_INSTANCE:
  case CL_FHIR_HISTORY_TYPE:
    return do_history(e, rq, now, rs);
  case CL_FHIR_SEARCH:
  case CL_FHIR_EVERYTHING:
    return do_search(e, rq, now, rs);
  case CL_FHIR_CAPABILITIES:
    return do_capabilities(rq, now, rs);
  default:
    return outcome(rs, 400, "not-supported", "interaction %d is not supported", rq->interaction);
  }
}

/* The search side of the FHIR query engine (engine_int.h): the search
 * parameters each resource type supports, with their FHIR types and the
 * paths they read, and the parsing of a request's parameters into a
 * `query`: result parameters (_count, _sort, _summary, _elements,
 * _include, _revinclude, _cursor, $everything's _since and _type) and
 * criteria (name[:modifier][.chain]=value), each checked against its
 * parameter's type so the matcher (match.c) only ever sees modifiers it
 * supports, and dates it can parse.
 *
 * Unknown parameters are refused under strict handling and otherwise
 * collected in query.ignored (FHIR's lenient default). Nothing here touches
 * the store or builds a response; the table is constant and every function
 * reentrant. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/fhir/engine_int.h"

/* ------------------------------------------------------------ search parameters */

static const char *const kind_names[] = {"token", "date", "string", "reference", "quantity"};

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
    {"DeviceMetric", "identifier", K_TOKEN, "identifier"},
    {"DeviceMetric", "source", K_REFERENCE, "source"},
    {"DeviceMetric", "type", K_TOKEN, "type"},
    {"DeviceMetric", "category", K_TOKEN, "category"},
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
    {"Group", "identifier", K_TOKEN, "identifier"},
    {"Group", "name", K_STRING, "name"},
    {"Group", "member", K_REFERENCE, "member.entity"},
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
    {"RiskAssessment", "patient", K_REFERENCE, "subject"},
    {"RiskAssessment", "subject", K_REFERENCE, "subject"},
    {"RiskAssessment", "identifier", K_TOKEN, "identifier"},
    {"RiskAssessment", "method", K_TOKEN, "method"},
    {"RiskAssessment", "date", K_DATE, "occurrenceDateTime|occurrencePeriod"},
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

const pdef *fe_find_param(const char *type, const char *name, size_t nl) {
  for (size_t i = 0; i < NPARAMS; i++)
    if ((PARAMS[i].type == NULL || strcmp(PARAMS[i].type, type) == 0) &&
        strlen(PARAMS[i].name) == nl && strncmp(PARAMS[i].name, name, nl) == 0)
      return &PARAMS[i];
  return NULL;
}

const char *cl_fhir_search_param_path(const char *type, const char *name) {
  const pdef *d = fe_find_param(type, name, strlen(name));
  return d ? d->paths : NULL;
}

/* The path of the date a type sorts by with _sort=date. */
static const pdef *date_param(const char *type) {
  static const char *const names[] = {"date",      "authoredon", "authored",       "issued",
                                      "started",   "sent",       "effective-time", "created",
                                      "recorded",  "occurrence", "whenhandedover", "identified",
                                      "birthdate", "onset-date", "authored-on"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    const pdef *d = fe_find_param(type, names[i], strlen(names[i]));
    if (d != NULL && d->kind == K_DATE && d->type != NULL)
      return d;
  }
  return fe_find_param(type, "_lastUpdated", 12);
}

json_t *fe_param_list(const char *type) {
  json_t *sp = json_array();
  for (size_t i = 0; i < NPARAMS; i++)
    if (PARAMS[i].type == NULL || !strcmp(PARAMS[i].type, type))
      json_array_append_new(
          sp, json_pack("{s:s,s:s}", "name", PARAMS[i].name, "type", kind_names[PARAMS[i].kind]));
  return sp;
}

/* ------------------------------------------------------------ parsing a search */

/* Splits a comma-separated OR list (a "\," is a literal comma) in place. */
size_t fe_split_or(char *s, char **out, size_t cap) {
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

/* Fills *why and returns -1: how fe_parse_query refuses a request. */
static int refuse(fe_refusal *why, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int refuse(fe_refusal *why, const char *code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why->text, sizeof why->text, fmt, ap);
  va_end(ap);
  why->status = 400;
  why->code = code;
  return -1;
}

int fe_parse_query(const cl_fhir_req *rq, const char *type, int everything, query *q,
                   fe_refusal *why) {
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
        return refuse(why, "invalid", "_count: %s is not a number from 0 to 1000", val);
      q->count = (size_t)v;
      continue;
    }
    if (!strcmp(name, "_summary")) {
      if (!strcmp(val, "count"))
        q->summary_count = 1;
      else if (strcmp(val, "false") != 0)
        return refuse(why, "not-supported", "_summary=%s: only count and false are supported", val);
      continue;
    }
    if (!strcmp(name, "_sort")) {
      snprintf(q->sort, sizeof q->sort, "%s", val);
      q->sort_desc = val[0] == '-';
      const char *sv = val + q->sort_desc;
      if (!strcmp(sv, "date"))
        q->sort_d = date_param(type);
      else if (!strcmp(sv, "_lastUpdated"))
        q->sort_d = fe_find_param(type, "_lastUpdated", 12);
      else {
        const pdef *d = fe_find_param(type, sv, strlen(sv));
        if (d == NULL || d->kind != K_DATE)
          return refuse(why, "not-supported",
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
        return refuse(why, "not-supported",
                      "_include=%s: only [type]:patient and [type]:subject are supported", val);
      q->inc_patient = 1;
      snprintf(q->inc_param, sizeof q->inc_param, "%s", colon + 1);
      continue;
    }
    if (!strcmp(name, "_revinclude")) {
      if (strcmp(val, "Provenance:target") != 0)
        return refuse(why, "not-supported", "_revinclude=%s: only Provenance:target is supported",
                      val);
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
        return refuse(why, "invalid", "_since: %s is not an instant", val);
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
    const pdef *d = fe_find_param(type, name, nl);
    if (d == NULL) {
      if (rq->strict)
        return refuse(why, "not-supported", "unknown search parameter %.*s for %s", (int)nl, name,
                      type);
      json_array_append_new(q->ignored, json_string(name));
      continue;
    }
    if (q->nc == sizeof q->c / sizeof q->c[0])
      return refuse(why, "too-costly", "at most 32 search criteria");
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
      return refuse(why, "not-supported", "%s: modifier :%s is not supported for a %s parameter",
                    name, c->mod, kind_names[d->kind]);
    if (c->chain[0] && d->kind != K_REFERENCE)
      return refuse(why, "invalid", "%s: only references can be chained", name);
    if (!strcmp(c->mod, "missing") && strcmp(val, "true") && strcmp(val, "false"))
      return refuse(why, "invalid", "%s: :missing takes true or false, not %s", name, val);
    if (d->kind == K_DATE && strcmp(c->mod, "missing")) { /* every OR value must be a date */
      char buf[1024], *alts[32];
      snprintf(buf, sizeof buf, "%s", val);
      size_t n = fe_split_or(buf, alts, 32);
      for (size_t k = 0; k < n; k++) {
        char pfx[3];
        int64_t lo, hi;
        if (cl_fhir_date_range(alts[k] + fe_prefix_of(alts[k], pfx), &lo, &hi) != 0)
          return refuse(why, "invalid", "%s: %s is not a FHIR date with an optional prefix", name,
                        alts[k]);
      }
    }
    c->value = (char *)val;
    q->nc++;
  }
  if (!q->sort_d && q->sort[0] == '\0')
    q->sort_d = fe_find_param(type, "_lastUpdated", 12);
  return 0;
}

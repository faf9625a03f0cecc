/* Decision-support events (800-803) -> DetectedIssue, RiskAssessment.
 *
 *   IssueDetected    DetectedIssue, status final (a later IssueDetected with
 *                    the same issue_id restates it; mitigations recorded
 *                    so far are kept). The NEWS2 score behind an
 *                    EARLY_WARNING one is an Observation of its own: the
 *                    checker stores each complete score as an
 *                    ObservationRecorded (query/cds/rpm.h)
 *   AlertOverridden  the same DetectedIssue, a new version with one more
 *                    mitigation {action: the override reason, date, author}
 *   AlertAcknowledged likewise, action the note given, else "Alert
 *                    acknowledged"
 *   RiskScoreRecorded RiskAssessment (risk_score below)
 *
 * Element tables: docs/fhir-map-billing-device-decision.md. */
#include <ctype.h>
#include <string.h>

#include "query/fhir/fj.h"
#include "query/fhir/map.h"

#define ACT_CODE "http://terminology.hl7.org/CodeSystem/v3-ActCode"

/* The v3 ActCode (_ActDetectedIssueCode) of an issue kind. A barcode
 * (BCMA) mismatch, wrong patient, drug, dose, route or time, is FULFIL:
 * "the therapy being performed is in some way out of alignment with the
 * requested therapy". */
static const char *kind_code(Clinlog__V1__IssueKind k, const char **display) {
  switch (k) {
  case CLINLOG__V1__ISSUE_KIND__ISSUE_KIND_INTERACTION:
    *display = "Drug Interaction Alert";
    return "DRG";
  case CLINLOG__V1__ISSUE_KIND__ISSUE_KIND_ALLERGY:
    *display = "Allergy Alert";
    return "ALGY";
  case CLINLOG__V1__ISSUE_KIND__ISSUE_KIND_DOSE:
    *display = "Dosage problem";
    return "DOSE";
  case CLINLOG__V1__ISSUE_KIND__ISSUE_KIND_DUPLICATE_THERAPY:
    *display = "Duplicate Therapy Alert";
    return "DUPTHPY";
  case CLINLOG__V1__ISSUE_KIND__ISSUE_KIND_BCMA_MISMATCH:
    *display = "fulfillment alert";
    return "FULFIL";
  case CLINLOG__V1__ISSUE_KIND__ISSUE_KIND_ADHERENCE:
    *display = "Compliance Alert";
    return "COMPLY";
  default:
    return NULL;
  }
}

static const char *severity_code(Clinlog__V1__IssueSeverity s) {
  switch (s) {
  case CLINLOG__V1__ISSUE_SEVERITY__ISSUE_SEVERITY_LOW:
    return "low";
  case CLINLOG__V1__ISSUE_SEVERITY__ISSUE_SEVERITY_MODERATE:
    return "moderate";
  case CLINLOG__V1__ISSUE_SEVERITY__ISSUE_SEVERITY_HIGH:
    return "high";
  default:
    return NULL;
  }
}

/* DetectedIssue.code: the sender's code, and the kind's code when it is a
 * different one (the kind is the broader class, e.g. ALGY for a sent RALG;
 * FHIR allows codings of different granularity). */
static json_t *issue_code(const Clinlog__V1__IssueDetected *b) {
  json_t *codings = json_array();
  fj_push(codings, fj_has(b->code != NULL ? b->code->code : NULL) ? fj_coding(b->code) : NULL);
  const char *kd = NULL, *kc = kind_code(b->kind, &kd);
  if (kc != NULL && !(b->code != NULL && b->code->code != NULL && strcmp(b->code->code, kc) == 0 &&
                      b->code->system != NULL && strcmp(b->code->system, ACT_CODE) == 0))
    fj_push(codings, json_pack("{s:s,s:s,s:s}", "system", ACT_CODE, "code", kc, "display", kd));
  json_t *o = json_object();
  fj_set(o, "coding", codings);
  if (json_object_size(o) == 0 && b->code != NULL)
    fj_set_str(o, "text", b->code->display);
  if (json_object_size(o) == 0) {
    json_decref(o);
    return NULL;
  }
  return o;
}

/* A rule id that is already an absolute URI ("https://kb.example/r/1",
 * "urn:...") is DetectedIssue.reference as is. */
static int absolute_uri(const char *s) {
  if (!fj_has(s) || !isalpha((unsigned char)s[0]))
    return 0;
  size_t i = 1;
  while (isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.')
    i++;
  if (s[i] != ':' || s[i + 1] == '\0')
    return 0;
  for (; s[i] != '\0'; i++)
    if (isspace((unsigned char)s[i]))
      return 0;
  return 1;
}

static int issue_detected(cl_fhir_map *m, const Clinlog__V1__IssueDetected *b, cl_err *err) {
  if (!fj_has(b->issue_id))
    return 0;
  char id[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, "DetectedIssue", b->issue_id, id);
  json_t *cur = NULL;
  int rc = cl_fhir_map_get(m, "DetectedIssue", id, &cur, err);
  if (rc < 0 && rc != CL_ENOTFOUND)
    return rc;

  json_t *d = cl_fhir_new("DetectedIssue", id);
  json_t *exts = json_array();
  if (fj_has(b->rule_id) || fj_has(b->rule_version)) { /* the rule that fired, and its version */
    json_t *sub = json_array();
    if (fj_has(b->rule_id))
      json_array_append_new(sub, json_pack("{s:s,s:s}", "url", "id", "valueString", b->rule_id));
    if (fj_has(b->rule_version))
      json_array_append_new(
          sub, json_pack("{s:s,s:s}", "url", "version", "valueString", b->rule_version));
    json_array_append_new(exts, fj_ext(FJ_CLINLOG_EXT "detected-issue-rule", "extension", sub));
  }
  if (fj_has(b->mitigation)) /* suggested, not taken: R4 mitigation is what was done */
    json_array_append_new(exts, fj_ext(FJ_CLINLOG_EXT "suggested-mitigation", "valueString",
                                       json_string(b->mitigation)));
  fj_set(d, "extension", exts);
  fj_set_one(d, "identifier", fj_business_id(b->issue_id));
  json_object_set_new(d, "status", json_string("final"));
  fj_set(d, "code", issue_code(b));
  fj_set_str(d, "severity", severity_code(b->severity));
  fj_set(d, "patient", cl_fhir_patient_ref(m));
  json_object_set_new(d, "identifiedDateTime", cl_fhir_when(m, b->detected_at));
  fj_set(d, "implicated", fj_references(b->implicated, b->n_implicated));
  fj_set_str(d, "detail", b->detail);
  if (absolute_uri(b->rule_id))
    fj_set_str(d, "reference", b->rule_id);
  json_t *mit = json_object_get(cur, "mitigation");
  if (mit != NULL)
    json_object_set(d, "mitigation", mit);
  json_decref(cur);
  return cl_fhir_map_put(m, d, err);
}

/* AlertOverridden and AlertAcknowledged: one more mitigation of the issue
 * (`text` its action when no reason is given). */
static int alert_outcome(cl_fhir_map *m, const char *issue_id,
                         const Clinlog__V1__CodeableConcept *reason,
                         const Clinlog__V1__Reference *by, const char *text, cl_err *err) {
  if (!fj_has(issue_id))
    return 0; /* the issue is found by its issue_id only */
  char id[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, "DetectedIssue", issue_id, id);
  json_t *d;
  int rc = cl_fhir_map_get(m, "DetectedIssue", id, &d, err);
  if (rc == CL_ENOTFOUND) { /* overridden without the detection on record */
    d = cl_fhir_new("DetectedIssue", id);
    fj_set_one(d, "identifier", fj_business_id(issue_id));
    json_object_set_new(d, "status", json_string("final"));
    fj_set(d, "patient", cl_fhir_patient_ref(m));
  } else if (rc < 0) {
    return rc;
  }
  json_object_del(d, "meta");
  json_t *mit = json_object();
  json_t *action = fj_concept(reason);
  /* action is 1..1: an override with no reason given is still an override */
  json_object_set_new(mit, "action", action != NULL ? action : json_pack("{s:s}", "text", text));
  json_object_set_new(mit, "date", cl_fhir_when(m, NULL));
  fj_set(mit, "author", fj_reference(by));
  json_t *all = json_object_get(d, "mitigation");
  if (all == NULL) {
    all = json_array();
    json_object_set_new(d, "mitigation", all);
  }
  json_array_append_new(all, mit);
  return cl_fhir_map_put(m, d, err);
}

/* RiskScoreRecorded -> RiskAssessment: an outside model's prediction, with
 * the model as method (system urn:clinlog:risk-model, its version as the
 * coding's version), the score as prediction[0].probabilityDecimal, the
 * threshold as an extension, the input events as basis (logical
 * references by event id) and the explanation as note. */
static int risk_score(cl_fhir_map *m, const Clinlog__V1__RiskScoreRecorded *b, cl_err *err) {
  if (!fj_has(b->assessment_id))
    return 0;
  char id[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, "RiskAssessment", b->assessment_id, id);
  json_t *r = cl_fhir_new("RiskAssessment", id);
  json_t *thr = fj_decimal(b->threshold);
  if (thr != NULL)
    fj_set_one(r, "extension", fj_ext(FJ_CLINLOG_EXT "risk-threshold", "valueDecimal", thr));
  fj_set_one(r, "identifier", fj_business_id(b->assessment_id));
  json_object_set_new(r, "status", json_string("final"));
  if (fj_has(b->model_id)) {
    json_t *c = json_pack("{s:s}", "system", "urn:clinlog:risk-model");
    fj_set_str(c, "version", b->model_version);
    json_object_set_new(c, "code", json_string(b->model_id));
    json_object_set_new(r, "method", json_pack("{s:[o]}", "coding", c));
  }
  fj_set(r, "subject", cl_fhir_patient_ref(m));
  json_object_set_new(r, "occurrenceDateTime", cl_fhir_when(m, b->assessed_at));
  fj_set(r, "basis", fj_references(b->inputs, b->n_inputs));
  json_t *p = json_object();
  fj_set(p, "outcome", fj_concept(b->outcome));
  fj_set(p, "probabilityDecimal", fj_decimal(b->score));
  fj_set_one(r, "prediction", p);
  fj_set(r, "note", fj_note(b->explanation));
  return cl_fhir_map_put(m, r, err);
}

int cl_fhir_map_decision(cl_fhir_map *m, cl_err *err) {
  const Clinlog__V1__Event *ev = m->ev;
  switch (ev->body_case) {
  case CLINLOG__V1__EVENT__BODY_ISSUE_DETECTED:
    return issue_detected(m, ev->issue_detected, err);
  case CLINLOG__V1__EVENT__BODY_ALERT_OVERRIDDEN:
    return alert_outcome(m, ev->alert_overridden->issue_id, ev->alert_overridden->reason,
                         ev->alert_overridden->overridden_by, "Alert overridden", err);
  case CLINLOG__V1__EVENT__BODY_ALERT_ACKNOWLEDGED:
    return alert_outcome(m, ev->alert_acknowledged->issue_id, ev->alert_acknowledged->reason,
                         ev->alert_acknowledged->acknowledged_by, "Alert acknowledged", err);
  case CLINLOG__V1__EVENT__BODY_RISK_SCORE_RECORDED:
    return risk_score(m, ev->risk_score_recorded, err);
  default:
    return 0;
  }
}

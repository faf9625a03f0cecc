/* Clinical events (200-206) -> Condition, AllergyIntolerance, Observation,
 * DiagnosticReport, Immunization, DocumentReference, ServiceRequest
 * (docs/fhir-map-clinical.md has the table, element by element).
 *
 *   ConditionDiagnosed       Condition
 *   AllergyRecorded          AllergyIntolerance
 *   ObservationRecorded      Observation
 *   LabResultReported        one Observation per result line, then the
 *                            DiagnosticReport that lists them
 *   ImmunizationAdministered Immunization
 *   ClinicalNoteSigned       DocumentReference
 *   ServiceOrdered           ServiceRequest
 *
 * Invariants:
 *  - An event carries the whole state of what it records: a later event with
 *    the same business id makes the next version of the same resource and
 *    replaces it as a whole (a field the event leaves out is absent from the
 *    new version). Only recordedDate (Condition, AllergyIntolerance) is kept
 *    from the version on record: it is when the record was first made.
 *  - Logical ids are cl_fhir_pid of the business id; a lab result line's is
 *    derived from the report id and the line (see line_key), so every
 *    version of a report rewrites the same Observations. The first
 *    identifier of each resource is its business id (FJ_BUSINESS_ID_SYSTEM).
 *  - An event without its business id, or outside a patient's stream, maps
 *    to nothing (every resource here is about a patient, and most require
 *    one: Condition.subject, AllergyIntolerance.patient...).
 *  - Output is valid FHIR R4: a required element the event lacks gets the
 *    FHIR form of "unknown" (status "unknown" where the value set has it,
 *    a data-absent-reason extension on a required CodeableConcept,
 *    dataAbsentReason "unknown" on a result without a value), and the
 *    status invariants (con-4, con-5, ait-1, ait-2, obs-6) hold whatever
 *    the event states.
 *  - Specimens are contained Specimen resources (Specimen is not one of the
 *    view's types), referenced as "#specimen-<n>". */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/fhir/fj.h"
#include "query/fhir/map.h"

#define TERMINOLOGY "http://terminology.hl7.org/CodeSystem/"
#define CONDITION_CLINICAL TERMINOLOGY "condition-clinical"
#define CONDITION_VER TERMINOLOGY "condition-ver-status"
#define ALLERGY_CLINICAL TERMINOLOGY "allergyintolerance-clinical"
#define ALLERGY_VER TERMINOLOGY "allergyintolerance-verification"
#define OBS_CATEGORY TERMINOLOGY "observation-category"
#define V2_0074 TERMINOLOGY "v2-0074"
#define V2_0443 TERMINOLOGY "v2-0443"
/* R5 elements R4 lacks, as the cross-version extensions of FHIR R5. */
#define REPORT_NOTE_EXT FJ_R5_EXT "DiagnosticReport.note"
#define DOC_ATTESTER_EXT FJ_R5_EXT "DocumentReference.attester"
#define ATTESTATION_MODE "http://hl7.org/fhir/composition-attestation-mode"

/* ---- enums -> FHIR codes ---- */

/* Enum members by their short name: COND_CLINICAL(ACTIVE) is
 * CLINLOG__V1__CONDITION_CLINICAL_STATUS__CONDITION_CLINICAL_STATUS_ACTIVE. */
#define COND_CLINICAL(m) CLINLOG__V1__CONDITION_CLINICAL_STATUS__CONDITION_CLINICAL_STATUS_##m
#define COND_VER(m) CLINLOG__V1__CONDITION_VERIFICATION_STATUS__CONDITION_VERIFICATION_STATUS_##m
#define ALG_CLINICAL(m) CLINLOG__V1__ALLERGY_CLINICAL_STATUS__ALLERGY_CLINICAL_STATUS_##m
#define ALG_VER(m) CLINLOG__V1__ALLERGY_VERIFICATION_STATUS__ALLERGY_VERIFICATION_STATUS_##m
#define ALG_TYPE(m) CLINLOG__V1__ALLERGY_TYPE__ALLERGY_TYPE_##m
#define ALG_CATEGORY(m) CLINLOG__V1__ALLERGY_CATEGORY__ALLERGY_CATEGORY_##m
#define ALG_CRITICALITY(m) CLINLOG__V1__ALLERGY_CRITICALITY__ALLERGY_CRITICALITY_##m
#define SEVERITY(m) CLINLOG__V1__REACTION_SEVERITY__REACTION_SEVERITY_##m
#define OBS_STATUS(m) CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_##m
#define REPORT_STATUS(m) CLINLOG__V1__DIAGNOSTIC_REPORT_STATUS__DIAGNOSTIC_REPORT_STATUS_##m
#define IMM_STATUS(m) CLINLOG__V1__IMMUNIZATION_STATUS__IMMUNIZATION_STATUS_##m
#define NOTE_STATUS(m) CLINLOG__V1__NOTE_STATUS__NOTE_STATUS_##m

typedef struct fcode {
  const char *code;    /* the FHIR code; NULL: the member states nothing */
  const char *display; /* its display in the code system */
} fcode;

static const fcode condition_clinical[] = {
    [COND_CLINICAL(ACTIVE)] = {"active", "Active"},
    [COND_CLINICAL(RECURRENCE)] = {"recurrence", "Recurrence"},
    [COND_CLINICAL(RELAPSE)] = {"relapse", "Relapse"},
    [COND_CLINICAL(INACTIVE)] = {"inactive", "Inactive"},
    [COND_CLINICAL(REMISSION)] = {"remission", "Remission"},
    [COND_CLINICAL(RESOLVED)] = {"resolved", "Resolved"},
};

static const fcode condition_verification[] = {
    [COND_VER(UNCONFIRMED)] = {"unconfirmed", "Unconfirmed"},
    [COND_VER(PROVISIONAL)] = {"provisional", "Provisional"},
    [COND_VER(DIFFERENTIAL)] = {"differential", "Differential"},
    [COND_VER(CONFIRMED)] = {"confirmed", "Confirmed"},
    [COND_VER(REFUTED)] = {"refuted", "Refuted"},
    [COND_VER(ENTERED_IN_ERROR)] = {"entered-in-error", "Entered in Error"},
};

static const fcode allergy_clinical[] = {
    [ALG_CLINICAL(ACTIVE)] = {"active", "Active"},
    [ALG_CLINICAL(INACTIVE)] = {"inactive", "Inactive"},
    [ALG_CLINICAL(RESOLVED)] = {"resolved", "Resolved"},
};

static const fcode allergy_verification[] = {
    [ALG_VER(UNCONFIRMED)] = {"unconfirmed", "Unconfirmed"},
    [ALG_VER(CONFIRMED)] = {"confirmed", "Confirmed"},
    [ALG_VER(REFUTED)] = {"refuted", "Refuted"},
    [ALG_VER(ENTERED_IN_ERROR)] = {"entered-in-error", "Entered in Error"},
};

static const fcode allergy_type[] = {
    [ALG_TYPE(ALLERGY)] = {"allergy", NULL},
    [ALG_TYPE(INTOLERANCE)] = {"intolerance", NULL},
};

static const fcode allergy_category[] = {
    [ALG_CATEGORY(FOOD)] = {"food", NULL},
    [ALG_CATEGORY(MEDICATION)] = {"medication", NULL},
    [ALG_CATEGORY(ENVIRONMENT)] = {"environment", NULL},
    [ALG_CATEGORY(BIOLOGIC)] = {"biologic", NULL},
};

static const fcode allergy_criticality[] = {
    [ALG_CRITICALITY(LOW)] = {"low", NULL},
    [ALG_CRITICALITY(HIGH)] = {"high", NULL},
    [ALG_CRITICALITY(UNABLE_TO_ASSESS)] = {"unable-to-assess", NULL},
};

static const fcode reaction_severity[] = {
    [SEVERITY(MILD)] = {"mild", NULL},
    [SEVERITY(MODERATE)] = {"moderate", NULL},
    [SEVERITY(SEVERE)] = {"severe", NULL},
};

static const fcode observation_status[] = {
    [OBS_STATUS(REGISTERED)] = {"registered", NULL},
    [OBS_STATUS(PRELIMINARY)] = {"preliminary", NULL},
    [OBS_STATUS(FINAL)] = {"final", NULL},
    [OBS_STATUS(AMENDED)] = {"amended", NULL},
    [OBS_STATUS(CORRECTED)] = {"corrected", NULL},
    [OBS_STATUS(CANCELLED)] = {"cancelled", NULL},
    [OBS_STATUS(ENTERED_IN_ERROR)] = {"entered-in-error", NULL},
    [OBS_STATUS(UNKNOWN)] = {"unknown", NULL},
};

static const fcode report_status[] = {
    [REPORT_STATUS(REGISTERED)] = {"registered", NULL},
    [REPORT_STATUS(PARTIAL)] = {"partial", NULL},
    [REPORT_STATUS(PRELIMINARY)] = {"preliminary", NULL},
    [REPORT_STATUS(FINAL)] = {"final", NULL},
    [REPORT_STATUS(AMENDED)] = {"amended", NULL},
    [REPORT_STATUS(CORRECTED)] = {"corrected", NULL},
    [REPORT_STATUS(APPENDED)] = {"appended", NULL},
    [REPORT_STATUS(CANCELLED)] = {"cancelled", NULL},
    [REPORT_STATUS(ENTERED_IN_ERROR)] = {"entered-in-error", NULL},
    [REPORT_STATUS(UNKNOWN)] = {"unknown", NULL},
};

/* The observation-status of a result line that states none, from its
 * report's status: a partial report's lines may be unverified
 * ("preliminary"); "appended" is a kind of "amended" in
 * diagnostic-report-status, and observation-status has "amended". */
static const fcode report_line_status[] = {
    [REPORT_STATUS(REGISTERED)] = {"registered", NULL},
    [REPORT_STATUS(PARTIAL)] = {"preliminary", NULL},
    [REPORT_STATUS(PRELIMINARY)] = {"preliminary", NULL},
    [REPORT_STATUS(FINAL)] = {"final", NULL},
    [REPORT_STATUS(AMENDED)] = {"amended", NULL},
    [REPORT_STATUS(CORRECTED)] = {"corrected", NULL},
    [REPORT_STATUS(APPENDED)] = {"amended", NULL},
    [REPORT_STATUS(CANCELLED)] = {"cancelled", NULL},
    [REPORT_STATUS(ENTERED_IN_ERROR)] = {"entered-in-error", NULL},
    [REPORT_STATUS(UNKNOWN)] = {"unknown", NULL},
};

static const fcode immunization_status[] = {
    [IMM_STATUS(COMPLETED)] = {"completed", NULL},
    [IMM_STATUS(NOT_DONE)] = {"not-done", NULL},
    [IMM_STATUS(ENTERED_IN_ERROR)] = {"entered-in-error", NULL},
};

static const fcode note_status[] = {
    [NOTE_STATUS(PRELIMINARY)] = {"preliminary", NULL},
    [NOTE_STATUS(FINAL)] = {"final", NULL},
    [NOTE_STATUS(AMENDED)] = {"amended", NULL},
    [NOTE_STATUS(ENTERED_IN_ERROR)] = {"entered-in-error", NULL},
};

/* The entry of enum value v in tab (n entries); NULL for UNSPECIFIED (not
 * stated) and for a value this build does not know. */
static const fcode *pick(const fcode *tab, size_t n, int v) {
  return v > 0 && (size_t)v < n && tab[v].code != NULL ? &tab[v] : NULL;
}
#define PICK(tab, v) pick((tab), sizeof(tab) / sizeof((tab)[0]), (int)(v))

static const char *code_of(const fcode *c) { return c != NULL ? c->code : NULL; }

/* ---- helpers ---- */

/* A formatted string, returned-owned (free()); NULL when out of memory. */
__attribute__((format(printf, 1, 2))) static char *str_fmt(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    return NULL;
  char *s = malloc((size_t)n + 1);
  if (s == NULL)
    return NULL;
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return s;
}

/* Annotations, one per non-empty note. */
static json_t *annotations(char *const *notes, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++)
    if (fj_has(notes[i]))
      json_array_append_new(a, json_pack("{s:s}", "text", notes[i]));
  return a;
}

/* [json_t] (stolen), or NULL for NULL. */
static json_t *one(json_t *v) {
  if (v == NULL)
    return NULL;
  json_t *a = json_array();
  fj_push(a, v);
  return a;
}

/* referenceRange: SimpleQuantity bounds, and a range that states no low,
 * high or text is left out (obs-3). */
static json_t *ranges(Clinlog__V1__ReferenceRange *const *rr, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++) {
    json_t *r = fj_reference_range(rr[i]);
    if (r == NULL)
      continue;
    json_object_del(json_object_get(r, "low"), "comparator");
    json_object_del(json_object_get(r, "high"), "comparator");
    if (json_object_get(r, "low") == NULL && json_object_get(r, "high") == NULL &&
        json_object_get(r, "text") == NULL) {
      json_decref(r);
      continue;
    }
    json_array_append_new(a, r);
  }
  return a;
}

/* "#<cid>": a reference to a contained resource. */
static json_t *local_ref(const char *cid) {
  char buf[CL_FHIR_ID_MAX + 1];
  snprintf(buf, sizeof buf, "#%s", cid);
  return json_pack("{s:s}", "reference", buf);
}

/* A contained Specimen with id `cid`, or NULL if s states nothing. Its
 * accession number defaults to the report's (`accession`, may be NULL). */
static json_t *specimen(const cl_fhir_map *m, const Clinlog__V1__Specimen *s, const char *cid,
                        const char *accession) {
  if (s == NULL || (!fj_has(s->specimen_id) && s->type == NULL && s->collected_at == NULL &&
                    s->body_site == NULL && !fj_has(s->accession_number)))
    return NULL;
  json_t *o = cl_fhir_new("Specimen", cid);
  if (fj_has(s->specimen_id))
    fj_set_one(o, "identifier", json_pack("{s:s}", "value", s->specimen_id));
  const char *acc = fj_has(s->accession_number) ? s->accession_number : accession;
  if (fj_has(acc))
    json_object_set_new(o, "accessionIdentifier", json_pack("{s:s}", "value", acc));
  fj_set(o, "type", fj_concept_code(s->type));
  fj_set(o, "subject", cl_fhir_patient_ref(m));
  json_t *col = json_object();
  fj_set(col, "collectedDateTime", fj_instant(s->collected_at));
  fj_set(col, "bodySite", fj_concept_code(s->body_site));
  fj_set(o, "collection", col);
  return o;
}

/* The recordedDate of the version on record (returned-owned; NULL if there
 * is none): it stays when a later event makes a new version. */
static int recorded_date(cl_fhir_map *m, const char *type, const char *id, json_t **out,
                         cl_err *err) {
  *out = NULL;
  json_t *cur;
  int rc = cl_fhir_map_get(m, type, id, &cur, err);
  if (rc == CL_ENOTFOUND)
    return 0;
  if (rc < 0)
    return rc;
  json_t *d = json_object_get(cur, "recordedDate");
  if (d != NULL)
    *out = json_incref(d);
  json_decref(cur);
  return 0;
}

/* ---- result values (ObservationRecorded, LabResult) ---- */

enum { VAL_NONE, VAL_QUANTITY, VAL_STRING, VAL_CODE, VAL_BOOL, VAL_DATETIME };

typedef struct obs_value {
  int kind; /* VAL_* */
  const Clinlog__V1__Quantity *quantity;
  const char *string;
  const Clinlog__V1__Code *code;
  int boolean;
  const Google__Protobuf__Timestamp *datetime;
} obs_value;

static obs_value recorded_value(const Clinlog__V1__ObservationRecorded *b) {
  obs_value v = {.kind = VAL_NONE};
  switch (b->value_case) {
  case CLINLOG__V1__OBSERVATION_RECORDED__VALUE_QUANTITY:
    v.kind = VAL_QUANTITY;
    v.quantity = b->quantity;
    break;
  case CLINLOG__V1__OBSERVATION_RECORDED__VALUE_STRING_VALUE:
    v.kind = VAL_STRING;
    v.string = b->string_value;
    break;
  case CLINLOG__V1__OBSERVATION_RECORDED__VALUE_CODE_VALUE:
    v.kind = VAL_CODE;
    v.code = b->code_value;
    break;
  case CLINLOG__V1__OBSERVATION_RECORDED__VALUE_BOOL_VALUE:
    v.kind = VAL_BOOL;
    v.boolean = b->bool_value;
    break;
  case CLINLOG__V1__OBSERVATION_RECORDED__VALUE_DATETIME_VALUE:
    v.kind = VAL_DATETIME;
    v.datetime = b->datetime_value;
    break;
  default:
    break;
  }
  return v;
}

static obs_value lab_value(const Clinlog__V1__LabResult *r) {
  obs_value v = {.kind = VAL_NONE};
  switch (r->value_case) {
  case CLINLOG__V1__LAB_RESULT__VALUE_QUANTITY:
    v.kind = VAL_QUANTITY;
    v.quantity = r->quantity;
    break;
  case CLINLOG__V1__LAB_RESULT__VALUE_STRING_VALUE:
    v.kind = VAL_STRING;
    v.string = r->string_value;
    break;
  case CLINLOG__V1__LAB_RESULT__VALUE_CODE_VALUE:
    v.kind = VAL_CODE;
    v.code = r->code_value;
    break;
  case CLINLOG__V1__LAB_RESULT__VALUE_BOOL_VALUE:
    v.kind = VAL_BOOL;
    v.boolean = r->bool_value;
    break;
  case CLINLOG__V1__LAB_RESULT__VALUE_DATETIME_VALUE:
    v.kind = VAL_DATETIME;
    v.datetime = r->datetime_value;
    break;
  default:
    break;
  }
  return v;
}

/* Sets value[x] on o; 1 if the value states something (an empty string or
 * an empty Quantity is no value). */
static int set_value(json_t *o, const obs_value *v) {
  const char *key = NULL;
  json_t *val = NULL;
  switch (v->kind) {
  case VAL_QUANTITY:
    key = "valueQuantity";
    val = fj_quantity(v->quantity);
    break;
  case VAL_STRING:
    key = "valueString";
    val = fj_has(v->string) ? json_string(v->string) : NULL;
    break;
  case VAL_CODE:
    key = "valueCodeableConcept";
    val = fj_concept_code(v->code);
    break;
  case VAL_BOOL:
    key = "valueBoolean";
    val = json_boolean(v->boolean);
    break;
  case VAL_DATETIME:
    key = "valueDateTime";
    val = fj_instant(v->datetime);
    break;
  default:
    return 0;
  }
  if (val == NULL)
    return 0;
  json_object_set_new(o, key, val);
  return 1;
}

/* dataAbsentReason of a result with no value: the one the event states, or
 * "unknown" (none when `parts`: a panel's value is in its components). A
 * result with a value has none (obs-6). */
static void set_absent(json_t *o, int has_value, const Clinlog__V1__Code *reason, int parts) {
  if (has_value)
    return;
  json_t *r = fj_concept_code(reason);
  if (r == NULL && !parts)
    r = fj_absent_reason_unknown();
  fj_set(o, "dataAbsentReason", r);
}

/* ---- ConditionDiagnosed -> Condition ---- */

static int is_active(Clinlog__V1__ConditionClinicalStatus s) {
  return s == COND_CLINICAL(ACTIVE) || s == COND_CLINICAL(RECURRENCE) ||
         s == COND_CLINICAL(RELAPSE);
}

static int condition(cl_fhir_map *m, const Clinlog__V1__ConditionDiagnosed *b, cl_err *err) {
  if (!fj_has(b->condition_id) || m->patient_id == NULL)
    return 0;
  char id[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, "Condition", b->condition_id, id);
  json_t *recorded;
  int rc = recorded_date(m, "Condition", id, &recorded, err);
  if (rc < 0)
    return rc;
  const fcode *clin = PICK(condition_clinical, b->clinical_status);
  const fcode *ver = PICK(condition_verification, b->verification_status);
  const Google__Protobuf__Timestamp *abatement = b->abatement;
  if (b->verification_status == COND_VER(ENTERED_IN_ERROR)) {
    /* con-5: no clinicalStatus; con-4 then allows no abatement either */
    clin = NULL;
    abatement = NULL;
  } else if (abatement != NULL && clin == NULL) {
    /* con-4: an abated condition has an inactive status; "inactive" is the
     * one that says no more than the abatement does (remission and
     * resolved are kinds of it) */
    clin = &condition_clinical[COND_CLINICAL(INACTIVE)];
  } else if (abatement != NULL && is_active(b->clinical_status)) {
    abatement = NULL; /* con-4: active again, so no longer abated */
  }
  json_t *c = cl_fhir_new("Condition", id);
  fj_set_one(c, "identifier", fj_business_id(b->condition_id));
  if (clin != NULL)
    json_object_set_new(c, "clinicalStatus",
                        fj_concept_lit(CONDITION_CLINICAL, clin->code, clin->display));
  if (ver != NULL)
    json_object_set_new(c, "verificationStatus",
                        fj_concept_lit(CONDITION_VER, ver->code, ver->display));
  /* the v2 diagnosis type (DG1-6: admitting, working, final) classifies the
   * condition on an axis condition-category has no code for: a category of
   * its own (the binding is extensible) */
  json_t *cat = json_array();
  fj_push(cat, fj_concept_code(b->category));
  fj_push(cat, fj_concept_code(b->diagnosis_type));
  fj_set(c, "category", cat);
  fj_set(c, "severity", fj_concept_code(b->severity));
  fj_set(c, "code", fj_concept(b->code));
  fj_set(c, "bodySite", fj_concepts(b->body_site, b->n_body_site));
  fj_set(c, "subject", cl_fhir_patient_ref(m));
  fj_set(c, "encounter", cl_fhir_pref(m, "Encounter", b->encounter_id));
  if (b->onset != NULL) /* the time when known; the text only when it is all there is */
    fj_set(c, "onsetDateTime", fj_instant(b->onset));
  else
    fj_set_str(c, "onsetString", b->onset_text);
  fj_set(c, "abatementDateTime", fj_instant(abatement));
  fj_set(c, "recordedDate", recorded != NULL ? recorded : fj_instant(m->ev->occurred_at));
  fj_set(c, "asserter", fj_reference(b->asserter));
  fj_set(c, "note", fj_note(b->note));
  return cl_fhir_map_put(m, c, err);
}

/* ---- AllergyRecorded -> AllergyIntolerance ---- */

static json_t *reaction(const Clinlog__V1__AllergyReaction *r) {
  if (r == NULL)
    return NULL;
  json_t *subst = fj_concept(r->substance);
  json_t *man = fj_concepts(r->manifestation, r->n_manifestation);
  const fcode *sev = PICK(reaction_severity, r->severity);
  if (subst == NULL && json_array_size(man) == 0 && !fj_has(r->description) && r->onset == NULL &&
      sev == NULL) {
    json_decref(man);
    return NULL; /* states nothing */
  }
  if (json_array_size(man) == 0) /* manifestation is required (1..*) */
    json_array_append_new(man, fj_unknown());
  json_t *o = json_object();
  fj_set(o, "substance", subst);
  fj_set(o, "manifestation", man);
  fj_set_str(o, "description", r->description);
  fj_set(o, "onset", fj_instant(r->onset));
  fj_set_str(o, "severity", code_of(sev));
  return o;
}

static int allergy(cl_fhir_map *m, const Clinlog__V1__AllergyRecorded *b, cl_err *err) {
  if (!fj_has(b->allergy_id) || m->patient_id == NULL)
    return 0;
  char id[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, "AllergyIntolerance", b->allergy_id, id);
  json_t *recorded;
  int rc = recorded_date(m, "AllergyIntolerance", id, &recorded, err);
  if (rc < 0)
    return rc;
  const fcode *clin = PICK(allergy_clinical, b->clinical_status);
  const fcode *ver = PICK(allergy_verification, b->verification_status);
  json_t *a = cl_fhir_new("AllergyIntolerance", id);
  fj_set_one(a, "identifier", fj_business_id(b->allergy_id));
  if (b->verification_status == ALG_VER(ENTERED_IN_ERROR))
    ; /* ait-2: no clinicalStatus */
  else if (clin != NULL)
    json_object_set_new(a, "clinicalStatus",
                        fj_concept_lit(ALLERGY_CLINICAL, clin->code, clin->display));
  else /* ait-1: required unless entered-in-error, and not stated */
    json_object_set_new(a, "clinicalStatus", fj_unknown());
  if (ver != NULL)
    json_object_set_new(a, "verificationStatus",
                        fj_concept_lit(ALLERGY_VER, ver->code, ver->display));
  fj_set_str(a, "type", code_of(PICK(allergy_type, b->type)));
  const char *cat = code_of(PICK(allergy_category, b->category));
  if (cat != NULL)
    fj_set_one(a, "category", json_string(cat));
  fj_set_str(a, "criticality", code_of(PICK(allergy_criticality, b->criticality)));
  /* "no known allergy" (SNOMED 716186003) stays the code, as sent */
  fj_set(a, "code", fj_concept(b->substance));
  fj_set(a, "patient", cl_fhir_patient_ref(m));
  fj_set(a, "encounter", cl_fhir_pref(m, "Encounter", b->encounter_id));
  fj_set(a, "onsetDateTime", fj_instant(b->onset));
  fj_set(a, "recordedDate", recorded != NULL ? recorded : fj_instant(m->ev->occurred_at));
  fj_set(a, "asserter", fj_reference(b->asserter));
  fj_set(a, "note", fj_note(b->note));
  json_t *rs = json_array();
  for (size_t i = 0; i < b->n_reactions; i++)
    fj_push(rs, reaction(b->reactions[i]));
  fj_set(a, "reaction", rs);
  return cl_fhir_map_put(m, a, err);
}

/* ---- ObservationRecorded -> Observation ---- */

static json_t *component(const Clinlog__V1__Component *c) {
  if (c == NULL || (c->code == NULL && c->value == NULL && c->interpretation == NULL))
    return NULL;
  json_t *o = json_object();
  json_object_set_new(o, "code", fj_or_unknown(fj_concept_code(c->code)));
  json_t *v = fj_quantity(c->value);
  if (v != NULL)
    json_object_set_new(o, "valueQuantity", v);
  else
    json_object_set_new(o, "dataAbsentReason", fj_absent_reason_unknown());
  fj_set(o, "interpretation", one(fj_concept_code(c->interpretation)));
  return o;
}

static int observation(cl_fhir_map *m, const Clinlog__V1__ObservationRecorded *b, cl_err *err) {
  if (!fj_has(b->observation_id) || m->patient_id == NULL)
    return 0;
  char id[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, "Observation", b->observation_id, id);
  json_t *o = cl_fhir_new("Observation", id);
  json_t *spec = specimen(m, b->specimen, "specimen-1", NULL);
  fj_set(o, "contained", one(spec));
  fj_set_one(o, "identifier", fj_business_id(b->observation_id));
  const char *status = code_of(PICK(observation_status, b->status));
  json_object_set_new(o, "status", json_string(status != NULL ? status : "unknown"));
  fj_set(o, "category", fj_concepts_code(b->category, b->n_category));
  json_object_set_new(o, "code", fj_or_unknown(fj_concept(b->code)));
  fj_set(o, "subject", cl_fhir_patient_ref(m));
  fj_set(o, "encounter", cl_fhir_pref(m, "Encounter", b->encounter_id));
  fj_set(o, "effectiveDateTime",
         fj_instant(b->effective != NULL ? b->effective : m->ev->occurred_at));
  fj_set(o, "performer", fj_references(b->performers, b->n_performers));
  obs_value v = recorded_value(b);
  json_t *parts = json_array();
  for (size_t i = 0; i < b->n_components; i++)
    fj_push(parts, component(b->components[i]));
  set_absent(o, set_value(o, &v), b->data_absent_reason, json_array_size(parts) > 0);
  fj_set(o, "interpretation", fj_concepts_code(b->interpretation, b->n_interpretation));
  fj_set(o, "note", fj_note(b->note));
  fj_set(o, "bodySite", fj_concept_code(b->body_site));
  fj_set(o, "method", fj_concept_code(b->method));
  if (spec != NULL)
    json_object_set_new(o, "specimen", local_ref("specimen-1"));
  fj_set(o, "device", cl_fhir_device_ref(b->device_id));
  fj_set(o, "referenceRange", ranges(b->reference_range, b->n_reference_range));
  fj_set(o, "component", parts);
  return cl_fhir_map_put(m, o, err);
}

/* ---- LabResultReported -> Observations + DiagnosticReport ---- */

/* The key of result line i within its report, stable across the report's
 * versions: the line's own observation_id; else its test code (the first
 * coding with a code, system|code, with the OBX-4 sub-id that tells apart
 * repeats such as one organism's lines); else its position (OBX-1 set id,
 * or its index). A key a previous line of the report already has gets
 * "#<n>" (its n-th occurrence). Returned-owned; NULL when out of memory. */
static char *line_key(const Clinlog__V1__LabResult *r, size_t i, json_t *seen) {
  char *base = NULL;
  const Clinlog__V1__Code *c = NULL;
  for (size_t k = 0; r->code != NULL && k < r->code->n_coding && c == NULL; k++)
    if (r->code->coding[k] != NULL && fj_has(r->code->coding[k]->code))
      c = r->code->coding[k];
  const char *sub = fj_has(r->sub_id) ? r->sub_id : "";
  const char *sep = fj_has(r->sub_id) ? "/" : "";
  if (fj_has(r->observation_id))
    base = str_fmt("%s", r->observation_id);
  else if (c != NULL)
    base = str_fmt("%s|%s%s%s", c->system != NULL ? c->system : "", c->code, sep, sub);
  else if (fj_has(r->set_id))
    base = str_fmt("obx-%s%s%s", r->set_id, sep, sub);
  else
    base = str_fmt("line-%zu", i + 1);
  if (base == NULL)
    return NULL;
  json_int_t n = json_integer_value(json_object_get(seen, base)) + 1;
  json_object_set_new(seen, base, json_integer(n));
  if (n == 1)
    return base;
  char *key = str_fmt("%s#%lld", base, (long long)n);
  free(base);
  return key;
}

/* The ServiceRequest a report's placer order number names, if one is on
 * record: the view can look a resource up by id only, so this finds the
 * ServiceOrdered whose order_id is the placer order number (and checks
 * that it carries that placer number). *out: a Reference, or NULL. */
static int placer_order(cl_fhir_map *m, const Clinlog__V1__Identifier *placer, json_t **out,
                        cl_err *err) {
  *out = NULL;
  if (placer == NULL || !fj_has(placer->value))
    return 0;
  char id[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, "ServiceRequest", placer->value, id);
  json_t *sr;
  int rc = cl_fhir_map_get(m, "ServiceRequest", id, &sr, err);
  if (rc == CL_ENOTFOUND)
    return 0;
  if (rc < 0)
    return rc;
  json_t *ids = json_object_get(sr, "identifier");
  for (size_t i = 0; i < json_array_size(ids) && *out == NULL; i++) {
    json_t *ident = json_array_get(ids, i);
    json_t *coding = json_array_get(json_object_get(json_object_get(ident, "type"), "coding"), 0);
    const char *type = json_string_value(json_object_get(coding, "code"));
    const char *value = json_string_value(json_object_get(ident, "value"));
    const char *sys = json_string_value(json_object_get(ident, "system"));
    if (type == NULL || strcmp(type, "PLAC") != 0 || value == NULL ||
        strcmp(value, placer->value) != 0)
      continue;
    if (sys == NULL || !fj_has(placer->system) || strcmp(sys, placer->system) == 0)
      *out = fj_ref("ServiceRequest", id);
  }
  json_decref(sr);
  return 0;
}

/* The Observation of one result line: logical id `id`, business id `bid`;
 * line_status: the status of a line that states none. */
static json_t *lab_line(const cl_fhir_map *m, const Clinlog__V1__LabResultReported *b,
                        const Clinlog__V1__LabResult *r, const char *id, const char *bid,
                        const json_t *based_on, const char *line_status) {
  json_t *o = cl_fhir_new("Observation", id);
  fj_set_one(o, "identifier", fj_business_id(bid));
  if (based_on != NULL)
    fj_set_one(o, "basedOn", json_deep_copy(based_on));
  const char *status = code_of(PICK(observation_status, r->status));
  json_object_set_new(o, "status",
                      json_string(status != NULL        ? status
                                  : line_status != NULL ? line_status
                                                        : "unknown"));
  fj_set_one(o, "category", fj_concept_lit(OBS_CATEGORY, "laboratory", "Laboratory"));
  json_object_set_new(o, "code", fj_or_unknown(fj_concept(r->code)));
  fj_set(o, "subject", cl_fhir_patient_ref(m));
  fj_set(o, "encounter", cl_fhir_pref(m, "Encounter", b->encounter_id));
  fj_set(o, "effectiveDateTime", fj_instant(r->effective != NULL ? r->effective : b->effective));
  fj_set(o, "issued", fj_instant(b->issued != NULL ? b->issued : m->ev->occurred_at));
  fj_set(o, "performer", one(fj_reference(r->performer != NULL ? r->performer : b->performer)));
  obs_value v = lab_value(r);
  set_absent(o, set_value(o, &v), r->data_absent_reason, 0);
  fj_set(o, "interpretation", fj_concepts_code(r->interpretation, r->n_interpretation));
  fj_set(o, "note", annotations(r->notes, r->n_notes));
  fj_set(o, "method", fj_concept_code(r->method));
  fj_set(o, "referenceRange", ranges(r->reference_range, r->n_reference_range));
  return o;
}

/* The order a report fulfils when no ServiceRequest of the view is known:
 * a contained ServiceRequest holding what the report says of it (OBR-2/3,
 * OBR-4, OBR-16), or NULL if it says nothing. Its status is unknown (the
 * report does not say). */
static json_t *contained_order(const cl_fhir_map *m, const Clinlog__V1__LabResultReported *b) {
  json_t *ids = json_array();
  fj_push(ids, fj_identifier_typed(b->placer_order_number, "PLAC", "Placer Identifier"));
  fj_push(ids, fj_identifier_typed(b->filler_order_number, "FILL", "Filler Identifier"));
  json_t *req = fj_reference(b->ordering_provider);
  if (json_array_size(ids) == 0 && req == NULL) {
    json_decref(ids);
    return NULL;
  }
  json_t *o = cl_fhir_new("ServiceRequest", "order");
  fj_set(o, "identifier", ids);
  json_object_set_new(o, "status", json_string("unknown"));
  json_object_set_new(o, "intent", json_string("order"));
  fj_set(o, "code", fj_concept(b->code));
  fj_set(o, "subject", cl_fhir_patient_ref(m));
  fj_set(o, "requester", req);
  return o;
}

static int lab_report(cl_fhir_map *m, const Clinlog__V1__LabResultReported *b, cl_err *err) {
  if (!fj_has(b->report_id) || m->patient_id == NULL)
    return 0;
  /* the order it fulfils: the ServiceOrdered it names, else the one its
   * placer order number matches */
  json_t *based_on = cl_fhir_pref(m, "ServiceRequest", b->order_id);
  int rc = 0;
  if (based_on == NULL && (rc = placer_order(m, b->placer_order_number, &based_on, err)) < 0)
    return rc;
  const fcode *st = PICK(report_status, b->status);
  json_t *results = json_array(), *seen = json_object();
  for (size_t i = 0; rc == 0 && i < b->n_results; i++) {
    const Clinlog__V1__LabResult *r = b->results[i];
    if (r == NULL)
      continue;
    char *key = line_key(r, i, seen);
    char *bid = key != NULL ? str_fmt("%s/%s", b->report_id, key) : NULL;
    /* the business identifier: the line's own id, unless another line of
     * the report has it too (then the derived one) */
    int own = key != NULL && fj_has(r->observation_id) && strcmp(key, r->observation_id) == 0;
    free(key);
    if (bid == NULL) {
      rc = cl_err_set(err, CL_ENOMEM, "out of memory");
      break;
    }
    char id[CL_FHIR_ID_MAX];
    cl_fhir_pid(m, "Observation", bid, id);
    json_t *o = lab_line(m, b, r, id, own ? r->observation_id : bid, based_on,
                         code_of(PICK(report_line_status, b->status)));
    free(bid);
    json_array_append_new(results, fj_ref("Observation", id));
    rc = cl_fhir_map_put(m, o, err);
  }
  json_decref(seen);
  if (rc < 0) {
    json_decref(results);
    json_decref(based_on);
    return rc;
  }

  char id[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, "DiagnosticReport", b->report_id, id);
  json_t *d = cl_fhir_new("DiagnosticReport", id);
  json_t *contained = json_array(), *specs = json_array();
  json_t *order = based_on == NULL ? contained_order(m, b) : NULL;
  if (order != NULL) {
    json_array_append_new(contained, order);
    based_on = local_ref("order");
  }
  for (size_t i = 0; i < b->n_specimens; i++) {
    char cid[32];
    snprintf(cid, sizeof cid, "specimen-%zu", json_array_size(specs) + 1);
    json_t *s = specimen(m, b->specimens[i], cid, b->accession_number);
    if (s == NULL)
      continue;
    json_array_append_new(contained, s);
    json_array_append_new(specs, local_ref(cid));
  }
  fj_set(d, "contained", contained);
  /* R4 has no DiagnosticReport.note (R5 does): the report's comments */
  json_t *ext = json_array();
  for (size_t i = 0; i < b->n_notes; i++)
    if (fj_has(b->notes[i]))
      json_array_append_new(
          ext, fj_ext(REPORT_NOTE_EXT, "valueAnnotation", json_pack("{s:s}", "text", b->notes[i])));
  fj_set(d, "extension", ext);
  json_t *ids = json_array();
  fj_push(ids, fj_business_id(b->report_id));
  fj_push(ids, fj_identifier_typed(b->placer_order_number, "PLAC", "Placer Identifier"));
  fj_push(ids, fj_identifier_typed(b->filler_order_number, "FILL", "Filler Identifier"));
  fj_push(ids, fj_identifier_lit("ACSN", "Accession ID", b->accession_number));
  fj_set(d, "identifier", ids);
  fj_set(d, "basedOn", one(based_on));
  json_object_set_new(d, "status", json_string(st != NULL ? st->code : "unknown"));
  /* the v2 diagnostic section as sent, and LAB: every report here is a
   * laboratory's */
  json_t *cat = json_array();
  fj_push(cat, fj_concept_code(b->category));
  if (b->category == NULL || b->category->code == NULL || strcmp(b->category->code, "LAB") != 0)
    fj_push(cat, fj_concept_lit(V2_0074, "LAB", "Laboratory"));
  fj_set(d, "category", cat);
  json_object_set_new(d, "code", fj_or_unknown(fj_concept(b->code)));
  fj_set(d, "subject", cl_fhir_patient_ref(m));
  fj_set(d, "encounter", cl_fhir_pref(m, "Encounter", b->encounter_id));
  fj_set(d, "effectiveDateTime", fj_instant(b->effective));
  fj_set(d, "issued", fj_instant(b->issued != NULL ? b->issued : m->ev->occurred_at));
  fj_set(d, "performer", one(fj_reference(b->performer)));
  fj_set(d, "resultsInterpreter", one(fj_reference(b->results_interpreter)));
  fj_set(d, "specimen", specs);
  fj_set(d, "result", results);
  fj_set_str(d, "conclusion", b->conclusion);
  return cl_fhir_map_put(m, d, err);
}

/* ---- ImmunizationAdministered -> Immunization ---- */

/* doseNumber[x]: a positiveInt when the dose number is one, else the
 * string as sent. */
static void set_dose_number(json_t *o, const char *s) {
  char *end = NULL;
  long long n = strtoll(s, &end, 10);
  int digits = s[0] >= '0' && s[0] <= '9';
  if (digits && end != NULL && *end == '\0' && n > 0 && n <= 2147483647)
    json_object_set_new(o, "doseNumberPositiveInt", json_integer(n));
  else
    json_object_set_new(o, "doseNumberString", json_string(s));
}

static int immunization(cl_fhir_map *m, const Clinlog__V1__ImmunizationAdministered *b,
                        cl_err *err) {
  if (!fj_has(b->immunization_id) || m->patient_id == NULL)
    return 0;
  char id[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, "Immunization", b->immunization_id, id);
  /* status is required and has no "unknown": the event says a vaccine was
   * given, unless it gives a reason for not giving it */
  const char *status = code_of(PICK(immunization_status, b->status));
  json_t *reason = fj_concept(b->status_reason);
  if (status == NULL)
    status = reason != NULL ? "not-done" : "completed";
  json_t *o = cl_fhir_new("Immunization", id);
  fj_set_one(o, "identifier", fj_business_id(b->immunization_id));
  json_object_set_new(o, "status", json_string(status));
  if (strcmp(status, "not-done") == 0) /* statusReason: why it was not done */
    fj_set(o, "statusReason", reason);
  else
    json_decref(reason);
  json_object_set_new(o, "vaccineCode", fj_or_unknown(fj_concept(b->vaccine_code)));
  fj_set(o, "patient", cl_fhir_patient_ref(m));
  fj_set(o, "encounter", cl_fhir_pref(m, "Encounter", b->encounter_id));
  const Google__Protobuf__Timestamp *when =
      b->administered_at != NULL ? b->administered_at : m->ev->occurred_at;
  if (when != NULL)
    json_object_set_new(o, "occurrenceDateTime", fj_instant(when));
  else /* required: known to be unknown */
    json_object_set_new(o, "_occurrenceDateTime", fj_unknown());
  if (b->primary_source) /* false is also "not stated" (proto3) */
    json_object_set_new(o, "primarySource", json_true());
  fj_set(o, "location", fj_location_ref(b->location));
  if (b->manufacturer != NULL) { /* the MVX code identifies the Organization */
    json_t *mf = json_object();
    if (fj_has(b->manufacturer->code)) {
      json_t *ident = json_object();
      fj_set_str(ident, "system", b->manufacturer->system);
      fj_set_str(ident, "value", b->manufacturer->code);
      fj_set(mf, "identifier", ident);
    }
    fj_set_str(mf, "display", b->manufacturer->display);
    fj_set(o, "manufacturer", mf);
  }
  fj_set_str(o, "lotNumber", b->lot_number);
  fj_set(o, "expirationDate", fj_date(b->expiration_date));
  fj_set(o, "site", fj_concept_code(b->site));
  fj_set(o, "route", fj_concept_code(b->route));
  fj_set(o, "doseQuantity", fj_simple_quantity(b->dose));
  json_t *actor = fj_reference(b->performer);
  if (actor != NULL)
    fj_set_one(o, "performer",
               json_pack("{s:o,s:o}", "function",
                         fj_concept_lit(V2_0443, "AP", "Administering Provider"), "actor", actor));
  fj_set(o, "note", fj_note(b->note));
  fj_set(o, "programEligibility", one(fj_concept_code(b->funding_eligibility)));
  if (fj_has(b->dose_number)) {
    json_t *pa = json_object();
    set_dose_number(pa, b->dose_number);
    fj_set_one(o, "protocolApplied", pa);
  }
  return cl_fhir_map_put(m, o, err);
}

/* ---- ClinicalNoteSigned -> DocumentReference ---- */

static int note_signed(cl_fhir_map *m, const Clinlog__V1__ClinicalNoteSigned *b, cl_err *err) {
  if (!fj_has(b->note_id) || m->patient_id == NULL)
    return 0;
  char id[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, "DocumentReference", b->note_id, id);
  json_t *data = NULL;
  if (fj_has(b->text) && (data = fj_base64(b->text, strlen(b->text))) == NULL)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  json_t *o = cl_fhir_new("DocumentReference", id);
  /* co-signers: R4 has one authenticator; R5's attesters hold the others */
  json_t *ext = json_array();
  for (size_t i = 0; i < b->n_cosigners; i++) {
    json_t *party = fj_reference(b->cosigners[i]);
    if (party == NULL)
      continue;
    json_t *mode = fj_concept_lit(ATTESTATION_MODE, "professional", "Professional");
    json_array_append_new(ext, json_pack("{s:s,s:[{s:s,s:o},{s:s,s:o}]}", "url", DOC_ATTESTER_EXT,
                                         "extension", "url", "mode", "valueCodeableConcept", mode,
                                         "url", "party", "valueReference", party));
  }
  fj_set(o, "extension", ext);
  fj_set(o, "masterIdentifier", fj_identifier(b->document_identifier));
  fj_set_one(o, "identifier", fj_business_id(b->note_id));
  const fcode *ds = PICK(note_status, b->status);
  int eie = b->status == NOTE_STATUS(ENTERED_IN_ERROR);
  /* the reference is current (a later note_id version replaces it), unless
   * the document itself is entered-in-error */
  json_object_set_new(o, "status", json_string(eie ? "entered-in-error" : "current"));
  fj_set_str(o, "docStatus", code_of(ds));
  fj_set(o, "type", fj_concept(b->type));
  fj_set(o, "subject", cl_fhir_patient_ref(m));
  fj_set(o, "date", fj_instant(b->signed_at != NULL ? b->signed_at : m->ev->occurred_at));
  fj_set(o, "author", one(fj_reference(b->author)));
  /* signed_at is the legal authentication: by the author unless another
   * authenticator is named */
  if (b->authenticator != NULL)
    fj_set(o, "authenticator", fj_reference(b->authenticator));
  else if (b->signed_at != NULL)
    fj_set(o, "authenticator", fj_reference(b->author));
  fj_set_str(o, "description", b->title);
  json_t *att = json_object();
  /* contentType is required with data (att-1); text/plain is the default
   * the event defines. The data are the UTF-8 bytes of the text. */
  fj_set_str(att, "contentType", fj_has(b->mime_type) ? b->mime_type : "text/plain");
  fj_set_str(att, "language", b->language);
  fj_set(att, "data", data);
  fj_set_str(att, "title", b->title);
  fj_set_one(o, "content", json_pack("{s:o}", "attachment", att));
  json_t *ctx = json_object();
  fj_set(ctx, "encounter", one(cl_fhir_pref(m, "Encounter", b->encounter_id)));
  fj_set(ctx, "period", fj_period(b->service_period));
  fj_set(o, "context", ctx);
  return cl_fhir_map_put(m, o, err);
}

/* ---- ServiceOrdered -> ServiceRequest ---- */

static int service_ordered(cl_fhir_map *m, const Clinlog__V1__ServiceOrdered *b, cl_err *err) {
  if (!fj_has(b->order_id) || m->patient_id == NULL)
    return 0;
  char id[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, "ServiceRequest", b->order_id, id);
  json_t *o = cl_fhir_new("ServiceRequest", id);
  json_t *spec = specimen(m, b->specimen, "specimen-1", NULL);
  fj_set(o, "contained", one(spec));
  json_t *ids = json_array();
  fj_push(ids, fj_business_id(b->order_id));
  fj_push(ids, fj_identifier_typed(b->placer_order_number, "PLAC", "Placer Identifier"));
  fj_push(ids, fj_identifier_typed(b->filler_order_number, "FILL", "Filler Identifier"));
  fj_set(o, "identifier", ids);
  /* the event records that an order was placed: it is active (results,
   * cancellations and corrections are other events) */
  json_object_set_new(o, "status", json_string("active"));
  json_object_set_new(o, "intent", json_string("order"));
  fj_set(o, "category", fj_concepts_code(b->category, b->n_category));
  fj_set_str(o, "priority", fj_request_priority(b->priority));
  fj_set(o, "code", fj_concept(b->code));
  fj_set(o, "subject", cl_fhir_patient_ref(m));
  fj_set(o, "encounter", cl_fhir_pref(m, "Encounter", b->encounter_id));
  fj_set(o, "occurrenceDateTime", fj_instant(b->occurrence));
  fj_set(o, "authoredOn", fj_instant(m->ev->occurred_at));
  fj_set(o, "requester", fj_reference(b->requester));
  fj_set(o, "performer", one(fj_reference(b->performer)));
  fj_set(o, "reasonCode", fj_concepts(b->reason, b->n_reason));
  if (spec != NULL)
    fj_set_one(o, "specimen", local_ref("specimen-1"));
  fj_set(o, "note", fj_note(b->note));
  fj_set_str(o, "patientInstruction", b->patient_instructions);
  return cl_fhir_map_put(m, o, err);
}

int cl_fhir_map_clinical(cl_fhir_map *m, cl_err *err) {
  const Clinlog__V1__Event *ev = m->ev;
  switch (ev->body_case) {
  case CLINLOG__V1__EVENT__BODY_CONDITION_DIAGNOSED:
    return condition(m, ev->condition_diagnosed, err);
  case CLINLOG__V1__EVENT__BODY_ALLERGY_RECORDED:
    return allergy(m, ev->allergy_recorded, err);
  case CLINLOG__V1__EVENT__BODY_OBSERVATION_RECORDED:
    return observation(m, ev->observation_recorded, err);
  case CLINLOG__V1__EVENT__BODY_LAB_RESULT_REPORTED:
    return lab_report(m, ev->lab_result_reported, err);
  case CLINLOG__V1__EVENT__BODY_IMMUNIZATION_ADMINISTERED:
    return immunization(m, ev->immunization_administered, err);
  case CLINLOG__V1__EVENT__BODY_CLINICAL_NOTE_SIGNED:
    return note_signed(m, ev->clinical_note_signed, err);
  case CLINLOG__V1__EVENT__BODY_SERVICE_ORDERED:
    return service_ordered(m, ev->service_ordered, err);
  default:
    return 0;
  }
}

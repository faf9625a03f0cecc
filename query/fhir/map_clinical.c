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
 *    view's types), referenced as "#specimen-<n>".
 *
 * ObservationRecorded and LabResultReported are mapped in map_results.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/fhir/map_clinical_int.h"

#define CONDITION_CLINICAL TERMINOLOGY "condition-clinical"
#define CONDITION_VER TERMINOLOGY "condition-ver-status"
#define ALLERGY_CLINICAL TERMINOLOGY "allergyintolerance-clinical"
#define ALLERGY_VER TERMINOLOGY "allergyintolerance-verification"
#define V2_0443 TERMINOLOGY "v2-0443"
/* R5 elements R4 lacks, as the cross-version extensions of FHIR R5. */
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
#define IMM_STATUS(m) CLINLOG__V1__IMMUNIZATION_STATUS__IMMUNIZATION_STATUS_##m
#define NOTE_STATUS(m) CLINLOG__V1__NOTE_STATUS__NOTE_STATUS_##m

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

const fcode *mc_pick(const fcode *tab, size_t n, int v) {
  return v > 0 && (size_t)v < n && tab[v].code != NULL ? &tab[v] : NULL;
}

/* ---- helpers ---- */

json_t *mc_one(json_t *v) {
  if (v == NULL)
    return NULL;
  json_t *a = json_array();
  fj_push(a, v);
  return a;
}

json_t *mc_local_ref(const char *cid) {
  char buf[CL_FHIR_ID_MAX + 1];
  snprintf(buf, sizeof buf, "#%s", cid);
  return json_pack("{s:s}", "reference", buf);
}

json_t *mc_specimen(const cl_fhir_map *m, const Clinlog__V1__Specimen *s, const char *cid,
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
  fj_set(o, "programEligibility", mc_one(fj_concept_code(b->funding_eligibility)));
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
  fj_set(o, "author", mc_one(fj_reference(b->author)));
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
  fj_set(ctx, "encounter", mc_one(cl_fhir_pref(m, "Encounter", b->encounter_id)));
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
  json_t *spec = mc_specimen(m, b->specimen, "specimen-1", NULL);
  fj_set(o, "contained", mc_one(spec));
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
  fj_set(o, "performer", mc_one(fj_reference(b->performer)));
  fj_set(o, "reasonCode", fj_concepts(b->reason, b->n_reason));
  if (spec != NULL)
    fj_set_one(o, "specimen", mc_local_ref("specimen-1"));
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
    return mc_observation(m, ev->observation_recorded, err);
  case CLINLOG__V1__EVENT__BODY_LAB_RESULT_REPORTED:
    return mc_lab_report(m, ev->lab_result_reported, err);
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

/* The resource types FHIR writes take (fhirw.h), each the inverse of its
 * view's mapper: Patient (query/fhir/map_patient.c), Encounter (the same),
 * Condition and AllergyIntolerance (map_clinical.c), Observation
 * (map_results.c). Each reads every element the event holds and refuses
 * the rest (w_only), so the view derived from the event is the resource
 * that was written: same elements, same codes and systems, same decimals.
 *
 * Codes of FHIR's required value sets are checked here (422 code-invalid
 * naming the element); enum values are a code's index in its table + 1,
 * the catalog's enums being declared in the value sets' order. */
#include <stdio.h>
#include <string.h>

#include "adapters/fhir/fhirw_int.h"

#define TERMINOLOGY "http://terminology.hl7.org/CodeSystem/"
#define PARTICIPATION TERMINOLOGY "v3-ParticipationType"

/* Enum value from a code's index (-1 absent: 0, unspecified). */
static int ev(int idx) { return idx < 0 ? 0 : idx + 1; }

int business_only(wctx *c, const json_t *r, const char *path) {
  const json_t *ids = json_object_get(r, "identifier");
  for (size_t i = 0; i < json_array_size(ids); i++) {
    const char *sys = json_string_value(json_object_get(json_array_get(ids, i), "system"));
    if (sys == NULL || strcmp(sys, FJ_BUSINESS_ID_SYSTEM) != 0)
      return w_fail(c, 422, "not-supported",
                    w_path(c, w_path(c, path, "identifier", 0), NULL, (long)i),
                    "only the clinlog business id (system " FJ_BUSINESS_ID_SYSTEM
                    ") can be written as an identifier of a %s",
                    c->type);
  }
  return 0;
}

/* One Reference at o[key] (a single element, or an array of one). */
int w_one_ref(wctx *c, const json_t *o, const char *path, const char *key, int array,
              Clinlog__V1__Reference **out) {
  *out = NULL;
  const json_t *v = json_object_get(o, key);
  if (v == NULL)
    return 0;
  const char *p = w_path(c, path, key, 0);
  if (array) {
    if (!json_is_array(v) || json_array_size(v) != 1)
      return w_fail(c, json_is_array(v) ? 422 : 400,
                    json_is_array(v) ? "not-supported" : "structure", p,
                    "one reference can be written (an array of one)");
    v = json_array_get(v, 0);
    p = w_path(c, p, NULL, 0);
  }
  return w_reference(c, v, p, out);
}

int w_other_ids(wctx *c, const json_t *r, const char *path, const char *const *types,
                Clinlog__V1__Identifier **slots, const char *what) {
  const json_t *ids;
  size_t n;
  int rc = w_arr(c, r, path, "identifier", &ids, &n);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    const json_t *id = json_array_get(ids, i);
    const char *ip = w_path(c, w_path(c, path, "identifier", 0), NULL, (long)i);
    const char *sys = json_string_value(json_object_get(id, "system"));
    Clinlog__V1__Identifier *x;
    if (sys != NULL && !strcmp(sys, FJ_BUSINESS_ID_SYSTEM))
      continue;
    if ((rc = w_identifier(c, id, ip, &x)))
      return rc;
    size_t k = 0; /* one type: any identifier is it; several: its type says which */
    while (types[1] != NULL && types[k] != NULL && strcmp(types[k], x->type))
      k++;
    if (types[k] == NULL || slots[k] != NULL)
      return w_fail(c, 422, "not-supported", ip, "besides the business id: %s", what);
    if (!strcmp(x->type, types[k]))
      x->type = ""; /* the view types it so, with the type's display */
    slots[k] = x;
  }
  return rc;
}

/* ---- Patient ---- */

static const char *const genders[] = {"male", "female", "other", "unknown", NULL};
/* Every demographic field a PatientDemographicsUpdated carries (all but
 * patient_id and updated_fields), by its descriptor: a PUT replaces the
 * whole record, so every field is named as updated. In the arena. */
static int demo_fields(wctx *c, char ***out, size_t *n) {
  const ProtobufCMessageDescriptor *d = &clinlog__v1__patient_demographics_updated__descriptor;
  *out = w_alloc(c, d->n_fields * sizeof **out);
  if (*out == NULL)
    return CL_ENOMEM;
  *n = 0;
  for (unsigned i = 0; i < d->n_fields; i++)
    if (strcmp(d->fields[i].name, "patient_id") && strcmp(d->fields[i].name, "updated_fields"))
      (*out)[(*n)++] = (char *)d->fields[i].name;
  return 0;
}

int w_patient(wctx *c, const json_t *r, int exists) {
  static const char *const keys[] = {"identifier",
                                     "active",
                                     "name",
                                     "telecom",
                                     "gender",
                                     "birthDate",
                                     "deceasedBoolean",
                                     "deceasedDateTime",
                                     "address",
                                     "maritalStatus",
                                     "communication",
                                     "generalPractitioner",
                                     "managingOrganization",
                                     NULL};
  const char *p = c->root;
  Clinlog__V1__PatientRegistered *b = w_alloc(c, sizeof *b);
  if (b == NULL)
    return CL_ENOMEM;
  clinlog__v1__patient_registered__init(b);
  int rc, active, gender, dead;
  const json_t *comm;
  size_t ncomm;
  if ((rc = w_only(c, r, p, keys, 1)) || (rc = w_bool(c, r, p, "active", &active)) ||
      (rc = w_list(c, r, p, "identifier", (w_conv_fn)w_identifier, (void ***)&b->identifiers,
                   &b->n_identifiers)) ||
      (rc = w_list(c, r, p, "name", (w_conv_fn)w_name, (void ***)&b->names, &b->n_names)) ||
      (rc = w_list(c, r, p, "telecom", (w_conv_fn)w_contact_point, (void ***)&b->telecom,
                   &b->n_telecom)) ||
      (rc = w_list(c, r, p, "address", (w_conv_fn)w_address, (void ***)&b->addresses,
                   &b->n_addresses)) ||
      (rc = w_enum(c, r, p, "gender", genders, &gender)) ||
      (rc = w_date(c, r, p, "birthDate", (const char **)&b->birth_date)) ||
      (rc = w_bool(c, r, p, "deceasedBoolean", &dead)) ||
      (rc = w_instant(c, r, p, "deceasedDateTime", &b->deceased_at)) ||
      (rc = w_concept_code(c, r, p, "maritalStatus", &b->marital_status)) ||
      (rc = w_one_ref(c, r, p, "generalPractitioner", 1, &b->primary_care_provider)) ||
      (rc = w_one_ref(c, r, p, "managingOrganization", 0, &b->managing_organization)) ||
      (rc = w_arr(c, r, p, "communication", &comm, &ncomm)))
    return rc;
  if (active == 0)
    return w_fail(c, 422, "not-supported", w_path(c, p, "active", 0),
                  "a patient record is active from its registration (active: false cannot be "
                  "written)");
  if (dead == 0)
    dead = -1; /* deceasedBoolean false states what absence does */
  if (ncomm > 1)
    return w_fail(c, 422, "not-supported", w_path(c, w_path(c, p, "communication", 0), NULL, 1),
                  "one communication (the preferred language) can be written");
  if (ncomm == 1) {
    const json_t *cm = json_array_get(comm, 0);
    const char *cp = w_path(c, w_path(c, p, "communication", 0), NULL, 0);
    static const char *const ckeys[] = {"language", "preferred", NULL};
    int pref;
    if (!json_is_object(cm))
      return w_fail(c, 400, "structure", cp, "expected an object");
    if ((rc = w_only(c, cm, cp, ckeys, 0)) || (rc = w_bool(c, cm, cp, "preferred", &pref)) ||
        (rc = w_concept_code(c, cm, cp, "language", &b->preferred_language)))
      return rc;
    if (b->preferred_language == NULL || pref != 1)
      return w_fail(c, 422, "not-supported", cp,
                    "the communication written is the preferred language: language and "
                    "preferred true");
  }
  if (b->birth_date == NULL)
    b->birth_date = "";
  b->gender = (Clinlog__V1__AdministrativeGender)ev(gender);
  b->deceased = dead == 1 || b->deceased_at != NULL;
  b->patient_id = (char *)c->patient_id;
  if (!exists)
    return w_emit(c, CLINLOG__V1__EVENT__BODY_PATIENT_REGISTERED, b);
  Clinlog__V1__PatientDemographicsUpdated *u = w_alloc(c, sizeof *u);
  if (u == NULL)
    return CL_ENOMEM;
  clinlog__v1__patient_demographics_updated__init(u);
  u->patient_id = b->patient_id;
  if ((rc = demo_fields(c, &u->updated_fields, &u->n_updated_fields)) != 0)
    return rc;
  u->identifiers = b->identifiers, u->n_identifiers = b->n_identifiers;
  u->names = b->names, u->n_names = b->n_names;
  u->birth_date = b->birth_date, u->gender = b->gender;
  u->addresses = b->addresses, u->n_addresses = b->n_addresses;
  u->telecom = b->telecom, u->n_telecom = b->n_telecom;
  u->deceased = b->deceased, u->deceased_at = b->deceased_at;
  u->managing_organization = b->managing_organization;
  u->marital_status = b->marital_status;
  u->preferred_language = b->preferred_language;
  u->primary_care_provider = b->primary_care_provider;
  return w_emit(c, CLINLOG__V1__EVENT__BODY_PATIENT_DEMOGRAPHICS_UPDATED, u);
}

/* ---- Encounter ---- */

static const char *const enc_status[] = {"in-progress", "finished", "cancelled", NULL};
static const char *const participant_types[] = {"ATND", "REF", "ADM", NULL};

static int participant(wctx *c, const json_t *v, const char *path,
                       Clinlog__V1__EncounterStarted *b) {
  static const char *const keys[] = {"type", "individual", NULL};
  if (!json_is_object(v))
    return w_fail(c, 400, "structure", path, "expected an object");
  int rc, t;
  Clinlog__V1__Reference *who;
  const json_t *types = json_object_get(v, "type");
  if ((rc = w_only(c, v, path, keys, 0)))
    return rc;
  if (!json_is_array(types) || json_array_size(types) != 1)
    return w_fail(c, 422, "not-supported", w_path(c, path, "type", 0),
                  "a participant written has one type: ATND, REF or ADM of " PARTICIPATION);
  json_t *holder = json_pack("{s:O}", "type", json_array_get(types, 0));
  rc = holder ? w_concept_in(c, holder, path, "type", PARTICIPATION, participant_types, &t)
              : CL_ENOMEM;
  json_decref(holder);
  if (rc || (rc = w_one_ref(c, v, path, "individual", 0, &who)))
    return rc;
  if (t < 0 || who == NULL)
    return w_fail(c, 400, "required", path, "a participant needs its type and individual");
  Clinlog__V1__Reference **slot = t == 0 ? &b->attending : t == 1 ? &b->referring : &b->admitting;
  if (*slot != NULL)
    return w_fail(c, 422, "not-supported", path, "a second %s participant", participant_types[t]);
  *slot = who;
  return 0;
}

int w_encounter_res(wctx *c, const json_t *r) {
  static const char *const keys[] = {"identifier",  "status",          "class",           "type",
                                     "serviceType", "subject",         "participant",     "period",
                                     "reasonCode",  "hospitalization", "serviceProvider", NULL};
  const char *p = c->root;
  Clinlog__V1__EncounterStarted *b = w_alloc(c, sizeof *b);
  Clinlog__V1__EncounterEnded *e = w_alloc(c, sizeof *e);
  if (b == NULL || e == NULL)
    return CL_ENOMEM;
  clinlog__v1__encounter_started__init(b);
  clinlog__v1__encounter_ended__init(e);
  int rc, status;
  const json_t *cls, *period, *hosp, *parts;
  size_t nparts;
  if ((rc = w_only(c, r, p, keys, 1)) || (rc = w_subject(c, r, p, "subject")) ||
      (rc = w_business_id(c, r, p)) || (rc = w_enum(c, r, p, "status", enc_status, &status)) ||
      (rc = w_obj(c, r, p, "class", &cls)) ||
      (rc = w_concepts(c, r, p, "type", &b->type, &b->n_type)) ||
      (rc = w_concept_code(c, r, p, "serviceType", &b->hospital_service)) ||
      (rc = w_obj(c, r, p, "period", &period)) ||
      (rc = w_concepts(c, r, p, "reasonCode", &b->reason, &b->n_reason)) ||
      (rc = w_obj(c, r, p, "hospitalization", &hosp)) ||
      (rc = w_one_ref(c, r, p, "serviceProvider", 0, &b->service_provider)) ||
      (rc = w_arr(c, r, p, "participant", &parts, &nparts)))
    return rc;
  if (status < 0)
    return w_fail(c, 400, "required", w_path(c, p, "status", 0),
                  "required (in-progress, finished or cancelled)");
  if (cls == NULL)
    return w_fail(c, 400, "required", w_path(c, p, "class", 0), "required (a Coding)");
  if ((rc = w_coding(c, cls, w_path(c, p, "class", 0), &b->encounter_class)))
    return rc;
  if (!strcmp(b->encounter_class->code, "UNK") &&
      !strcmp(b->encounter_class->system, TERMINOLOGY "v3-NullFlavor"))
    b->encounter_class = NULL; /* the view's "class not stated" */
  static const char *const vn[] = {"VN", NULL};
  if ((rc = w_other_ids(c, r, p, vn, &b->visit_number, "one identifier (the visit number)")))
    return rc;
  for (size_t i = 0; i < nparts; i++)
    if ((rc = participant(c, json_array_get(parts, i),
                          w_path(c, w_path(c, p, "participant", 0), NULL, (long)i), b)))
      return rc;
  const char *pp = w_path(c, p, "period", 0);
  static const char *const pkeys[] = {"start", "end", NULL};
  if (period != NULL && ((rc = w_only(c, period, pp, pkeys, 0)) ||
                         (rc = w_instant(c, period, pp, "start", &b->start)) ||
                         (rc = w_instant(c, period, pp, "end", &e->end))))
    return rc;
  const char *hp = w_path(c, p, "hospitalization", 0);
  static const char *const hkeys[] = {"admitSource", "dischargeDisposition", NULL};
  if (hosp != NULL &&
      ((rc = w_only(c, hosp, hp, hkeys, 0)) ||
       (rc = w_concept_code(c, hosp, hp, "admitSource", &b->admit_source)) ||
       (rc = w_concept_code(c, hosp, hp, "dischargeDisposition", &e->discharge_disposition))))
    return rc;
  if (status == 0 && (e->end != NULL || e->discharge_disposition != NULL))
    return w_fail(c, 422, "invalid",
                  e->end ? w_path(c, pp, "end", 0) : w_path(c, hp, "dischargeDisposition", 0),
                  "an encounter in progress has not ended: status finished, or leave it out");
  if (status == 2 && (e->end != NULL || e->discharge_disposition != NULL))
    return w_fail(c, 422, "not-supported",
                  e->end ? w_path(c, pp, "end", 0) : w_path(c, hp, "dischargeDisposition", 0),
                  "a cancelled encounter is written without an end (cancel the discharge first)");
  if (status == 1 && e->end == NULL)
    return w_fail(c, 400, "required", w_path(c, pp, "end", 0),
                  "a finished encounter needs its end");
  b->encounter_id = (char *)c->bid;
  if (b->start != NULL)
    c->when = b->start;
  if ((rc = w_emit(c, CLINLOG__V1__EVENT__BODY_ENCOUNTER_STARTED, b)) != 0 || status == 0)
    return rc;
  if (status == 2) { /* as ADT^A11 makes it: started, then cancelled */
    Clinlog__V1__EncounterCancelled *x = w_alloc(c, sizeof *x);
    if (x == NULL)
      return CL_ENOMEM;
    clinlog__v1__encounter_cancelled__init(x);
    x->encounter_id = (char *)c->bid;
    return w_emit(c, CLINLOG__V1__EVENT__BODY_ENCOUNTER_CANCELLED, x);
  }
  e->encounter_id = (char *)c->bid;
  if ((rc = w_emit(c, CLINLOG__V1__EVENT__BODY_ENCOUNTER_ENDED, e)) == 0)
    c->ev[1]->occurred_at = e->end;
  return rc;
}

/* ---- Condition ---- */

static const char *const cond_clinical[] = {"active",    "recurrence", "relapse", "inactive",
                                            "remission", "resolved",   NULL};
static const char *const cond_ver[] = {
    "unconfirmed", "provisional", "differential", "confirmed", "refuted", "entered-in-error", NULL};

int w_condition(wctx *c, const json_t *r) {
  static const char *const keys[] = {"identifier",
                                     "clinicalStatus",
                                     "verificationStatus",
                                     "category",
                                     "severity",
                                     "code",
                                     "bodySite",
                                     "subject",
                                     "encounter",
                                     "onsetDateTime",
                                     "onsetString",
                                     "abatementDateTime",
                                     "recordedDate",
                                     "asserter",
                                     "note",
                                     NULL};
  const char *p = c->root;
  Clinlog__V1__ConditionDiagnosed *b = w_alloc(c, sizeof *b);
  if (b == NULL)
    return CL_ENOMEM;
  clinlog__v1__condition_diagnosed__init(b);
  int rc, clin, ver;
  pb_code **cats;
  size_t ncat;
  pb_ts *recorded;
  const json_t *asserter = json_object_get(r, "asserter");
  if ((rc = w_only(c, r, p, keys, 1)) || (rc = w_subject(c, r, p, "subject")) ||
      (rc = w_business_id(c, r, p)) || (rc = business_only(c, r, p)) ||
      (rc = w_concept_in(c, r, p, "clinicalStatus", TERMINOLOGY "condition-clinical", cond_clinical,
                         &clin)) ||
      (rc = w_concept_in(c, r, p, "verificationStatus", TERMINOLOGY "condition-ver-status",
                         cond_ver, &ver)) ||
      (rc = w_concepts_code(c, r, p, "category", &cats, &ncat)) ||
      (rc = w_concept_code(c, r, p, "severity", &b->severity)) ||
      (rc = w_concept(c, r, p, "code", &b->code)) ||
      (rc = w_concepts(c, r, p, "bodySite", &b->body_site, &b->n_body_site)) ||
      (rc = w_encounter(c, r, p, "encounter", (const char **)&b->encounter_id)) ||
      (rc = w_instant(c, r, p, "onsetDateTime", &b->onset)) ||
      (rc = w_str(c, r, p, "onsetString", (const char **)&b->onset_text)) ||
      (rc = w_instant(c, r, p, "abatementDateTime", &b->abatement)) ||
      (rc = w_instant(c, r, p, "recordedDate", &recorded)) ||
      (asserter && (rc = w_reference(c, asserter, w_path(c, p, "asserter", 0), &b->asserter))) ||
      (rc = w_note(c, r, p, (const char **)&b->note)))
    return rc;
  if (b->onset != NULL && b->onset_text != NULL)
    return w_fail(c, 400, "invalid", w_path(c, p, "onsetString", 0),
                  "one onset[x]: onsetDateTime or onsetString");
  if (ncat > 2)
    return w_fail(c, 422, "not-supported", w_path(c, w_path(c, p, "category", 0), NULL, 2),
                  "two categories can be written: the category and the diagnosis type");
  b->category = ncat > 0 ? cats[0] : NULL;
  b->diagnosis_type = ncat > 1 ? cats[1] : NULL;
  b->clinical_status = (Clinlog__V1__ConditionClinicalStatus)ev(clin);
  b->verification_status = (Clinlog__V1__ConditionVerificationStatus)ev(ver);
  if (b->encounter_id == NULL)
    b->encounter_id = "";
  if (b->onset_text == NULL)
    b->onset_text = "";
  if (b->note == NULL)
    b->note = "";
  /* con-3..5 as the view keeps them: what it would not show is refused */
  if (b->abatement != NULL && clin >= 0 && clin <= 2)
    return w_fail(c, 422, "invalid", w_path(c, p, "abatementDateTime", 0),
                  "an abated condition is not active, recurrent or relapsed (con-4)");
  if (ver == 5 && clin >= 0)
    return w_fail(c, 422, "invalid", w_path(c, p, "clinicalStatus", 0),
                  "an entered-in-error condition has no clinical status (con-5)");
  b->condition_id = (char *)c->bid;
  if (recorded != NULL)
    c->when = recorded;
  return w_emit(c, CLINLOG__V1__EVENT__BODY_CONDITION_DIAGNOSED, b);
}

/* ---- AllergyIntolerance ---- */

static const char *const alg_clinical[] = {"active", "inactive", "resolved", NULL};
static const char *const alg_ver[] = {"unconfirmed", "confirmed", "refuted", "entered-in-error",
                                      NULL};
static const char *const alg_type[] = {"allergy", "intolerance", NULL};
static const char *const alg_cat[] = {"food", "medication", "environment", "biologic", NULL};
static const char *const alg_crit[] = {"low", "high", "unable-to-assess", NULL};
static const char *const severities[] = {"mild", "moderate", "severe", NULL};

static int reaction(wctx *c, const json_t *v, const char *path, void **out) {
  static const char *const keys[] = {"substance", "manifestation", "description",
                                     "onset",     "severity",      NULL};
  if (!json_is_object(v))
    return w_fail(c, 400, "structure", path, "expected an object");
  Clinlog__V1__AllergyReaction *x = w_alloc(c, sizeof *x);
  if (x == NULL)
    return CL_ENOMEM;
  clinlog__v1__allergy_reaction__init(x);
  int rc, sev;
  if ((rc = w_only(c, v, path, keys, 0)) ||
      (rc = w_concept(c, v, path, "substance", &x->substance)) ||
      (rc = w_concepts(c, v, path, "manifestation", &x->manifestation, &x->n_manifestation)) ||
      (rc = w_str(c, v, path, "description", (const char **)&x->description)) ||
      (rc = w_instant(c, v, path, "onset", &x->onset)) ||
      (rc = w_enum(c, v, path, "severity", severities, &sev)))
    return rc;
  if (x->n_manifestation == 0)
    return w_fail(c, 400, "required", w_path(c, path, "manifestation", 0),
                  "required (at least one)");
  if (x->description == NULL)
    x->description = "";
  x->severity = (Clinlog__V1__ReactionSeverity)ev(sev);
  *out = x;
  return 0;
}

int w_allergy(wctx *c, const json_t *r) {
  static const char *const keys[] = {"identifier",    "clinicalStatus", "verificationStatus",
                                     "type",          "category",       "criticality",
                                     "code",          "patient",        "encounter",
                                     "onsetDateTime", "recordedDate",   "asserter",
                                     "note",          "reaction",       NULL};
  const char *p = c->root;
  Clinlog__V1__AllergyRecorded *b = w_alloc(c, sizeof *b);
  if (b == NULL)
    return CL_ENOMEM;
  clinlog__v1__allergy_recorded__init(b);
  int rc, clin, ver, type, crit, cat = -1;
  const json_t *cats;
  size_t ncat;
  pb_ts *recorded;
  const json_t *asserter = json_object_get(r, "asserter");
  if ((rc = w_only(c, r, p, keys, 1)) || (rc = w_subject(c, r, p, "patient")) ||
      (rc = w_business_id(c, r, p)) || (rc = business_only(c, r, p)) ||
      (rc = w_concept_in(c, r, p, "clinicalStatus", TERMINOLOGY "allergyintolerance-clinical",
                         alg_clinical, &clin)) ||
      (rc = w_concept_in(c, r, p, "verificationStatus",
                         TERMINOLOGY "allergyintolerance-verification", alg_ver, &ver)) ||
      (rc = w_enum(c, r, p, "type", alg_type, &type)) ||
      (rc = w_enum(c, r, p, "criticality", alg_crit, &crit)) ||
      (rc = w_arr(c, r, p, "category", &cats, &ncat)) ||
      (rc = w_concept(c, r, p, "code", &b->substance)) ||
      (rc = w_encounter(c, r, p, "encounter", (const char **)&b->encounter_id)) ||
      (rc = w_instant(c, r, p, "onsetDateTime", &b->onset)) ||
      (rc = w_instant(c, r, p, "recordedDate", &recorded)) ||
      (asserter && (rc = w_reference(c, asserter, w_path(c, p, "asserter", 0), &b->asserter))) ||
      (rc = w_note(c, r, p, (const char **)&b->note)) ||
      (rc = w_list(c, r, p, "reaction", reaction, (void ***)&b->reactions, &b->n_reactions)))
    return rc;
  if (ncat > 1)
    return w_fail(c, 422, "not-supported", w_path(c, w_path(c, p, "category", 0), NULL, 1),
                  "one category can be written");
  if (ncat == 1) {
    const char *cp = w_path(c, w_path(c, p, "category", 0), NULL, 0);
    const char *s = json_string_value(json_array_get(cats, 0));
    if (s == NULL || s[0] == FJ_DECIMAL_MARK)
      return w_fail(c, 400, "structure", cp, "expected a code (a string)");
    for (int i = 0; alg_cat[i] != NULL; i++)
      if (!strcmp(alg_cat[i], s))
        cat = i;
    if (cat < 0)
      return w_fail(c, 422, "code-invalid", cp,
                    "'%.64s' is not one of: food, medication, environment, biologic", s);
  }
  if (ver == 3 && clin >= 0)
    return w_fail(c, 422, "invalid", w_path(c, p, "clinicalStatus", 0),
                  "an entered-in-error allergy has no clinical status (ait-2)");
  if (ver != 3 && clin < 0)
    return w_fail(c, 400, "required", w_path(c, p, "clinicalStatus", 0),
                  "required unless entered-in-error (ait-1)");
  b->clinical_status = (Clinlog__V1__AllergyClinicalStatus)ev(clin);
  b->verification_status = (Clinlog__V1__AllergyVerificationStatus)ev(ver);
  b->type = (Clinlog__V1__AllergyType)ev(type);
  b->category = (Clinlog__V1__AllergyCategory)ev(cat);
  b->criticality = (Clinlog__V1__AllergyCriticality)ev(crit);
  if (b->encounter_id == NULL)
    b->encounter_id = "";
  if (b->note == NULL)
    b->note = "";
  b->allergy_id = (char *)c->bid;
  if (recorded != NULL)
    c->when = recorded;
  return w_emit(c, CLINLOG__V1__EVENT__BODY_ALLERGY_RECORDED, b);
}

/* ---- Observation ---- */

static const char *const obs_status[] = {"registered",       "preliminary", "final",
                                         "amended",          "corrected",   "cancelled",
                                         "entered-in-error", "unknown",     NULL};

static int range(wctx *c, const json_t *v, const char *path, void **out) {
  static const char *const keys[] = {"low", "high", "text", "appliesTo", NULL};
  if (!json_is_object(v))
    return w_fail(c, 400, "structure", path, "expected an object");
  Clinlog__V1__ReferenceRange *x = w_alloc(c, sizeof *x);
  if (x == NULL)
    return CL_ENOMEM;
  clinlog__v1__reference_range__init(x);
  const json_t *low = json_object_get(v, "low"), *high = json_object_get(v, "high");
  pb_code **applies;
  size_t napplies;
  int rc;
  if ((rc = w_only(c, v, path, keys, 0)) ||
      (low && (rc = w_quantity(c, low, w_path(c, path, "low", 0), &x->low))) ||
      (high && (rc = w_quantity(c, high, w_path(c, path, "high", 0), &x->high))) ||
      (rc = w_str(c, v, path, "text", (const char **)&x->text)) ||
      (rc = w_concepts_code(c, v, path, "appliesTo", &applies, &napplies)))
    return rc;
  if ((x->low && x->low->comparator[0]) || (x->high && x->high->comparator[0]))
    return w_fail(c, 400, "invalid", path, "range bounds are SimpleQuantity (no comparator)");
  if (napplies > 1)
    return w_fail(c, 422, "not-supported", w_path(c, path, "appliesTo", 0),
                  "one appliesTo can be written");
  x->applies_to = napplies ? applies[0] : NULL;
  if (x->text == NULL)
    x->text = "";
  *out = x;
  return 0;
}

static int component(wctx *c, const json_t *v, const char *path, void **out) {
  static const char *const keys[] = {"code", "valueQuantity", "interpretation", "dataAbsentReason",
                                     NULL};
  if (!json_is_object(v))
    return w_fail(c, 400, "structure", path, "expected an object");
  Clinlog__V1__Component *x = w_alloc(c, sizeof *x);
  if (x == NULL)
    return CL_ENOMEM;
  clinlog__v1__component__init(x);
  const json_t *q = json_object_get(v, "valueQuantity");
  pb_code **interp, *dar;
  size_t ninterp;
  int rc;
  if ((rc = w_only(c, v, path, keys, 0)) || (rc = w_concept_code(c, v, path, "code", &x->code)) ||
      (q && (rc = w_quantity(c, q, w_path(c, path, "valueQuantity", 0), &x->value))) ||
      (rc = w_concepts_code(c, v, path, "interpretation", &interp, &ninterp)) ||
      (rc = w_concept_code(c, v, path, "dataAbsentReason", &dar)))
    return rc;
  if (x->code == NULL)
    return w_fail(c, 400, "required", w_path(c, path, "code", 0), "required");
  if (ninterp > 1)
    return w_fail(c, 422, "not-supported", w_path(c, path, "interpretation", 0),
                  "one interpretation per component can be written");
  if (dar != NULL && (x->value != NULL || strcmp(dar->code, "unknown") != 0))
    return w_fail(c, 422, "not-supported", w_path(c, path, "dataAbsentReason", 0),
                  "a component without a value is written as data-absent-reason 'unknown' only");
  x->interpretation = ninterp ? interp[0] : NULL;
  *out = x;
  return 0;
}

/* value[x]: at most one of the forms the event holds. */
static int obs_value(wctx *c, const json_t *r, const char *p, Clinlog__V1__ObservationRecorded *b) {
  static const char *const forms[] = {"valueQuantity", "valueString",   "valueCodeableConcept",
                                      "valueBoolean",  "valueDateTime", NULL};
  int found = -1, rc = 0;
  for (int i = 0; forms[i] != NULL; i++)
    if (json_object_get(r, forms[i]) != NULL) {
      if (found >= 0)
        return w_fail(c, 400, "invalid", w_path(c, p, forms[i], 0),
                      "a second value[x] (%s is given)", forms[found]);
      found = i;
    }
  int boolv;
  switch (found) {
  case 0:
    b->value_case = CLINLOG__V1__OBSERVATION_RECORDED__VALUE_QUANTITY;
    rc = w_quantity(c, json_object_get(r, forms[0]), w_path(c, p, forms[0], 0), &b->quantity);
    break;
  case 1:
    b->value_case = CLINLOG__V1__OBSERVATION_RECORDED__VALUE_STRING_VALUE;
    rc = w_str(c, r, p, forms[1], (const char **)&b->string_value);
    break;
  case 2:
    b->value_case = CLINLOG__V1__OBSERVATION_RECORDED__VALUE_CODE_VALUE;
    rc = w_concept_code(c, r, p, forms[2], &b->code_value);
    break;
  case 3:
    b->value_case = CLINLOG__V1__OBSERVATION_RECORDED__VALUE_BOOL_VALUE;
    rc = w_bool(c, r, p, forms[3], &boolv);
    b->bool_value = boolv == 1;
    break;
  case 4:
    b->value_case = CLINLOG__V1__OBSERVATION_RECORDED__VALUE_DATETIME_VALUE;
    rc = w_instant(c, r, p, forms[4], &b->datetime_value);
    break;
  default:
    break;
  }
  return rc;
}

/* The members of an Observation written. */
static const char *const obs_keys[] = {"identifier",
                                       "status",
                                       "category",
                                       "code",
                                       "subject",
                                       "encounter",
                                       "effectiveDateTime",
                                       "performer",
                                       "valueQuantity",
                                       "valueString",
                                       "valueCodeableConcept",
                                       "valueBoolean",
                                       "valueDateTime",
                                       "dataAbsentReason",
                                       "interpretation",
                                       "note",
                                       "bodySite",
                                       "method",
                                       "referenceRange",
                                       "component",
                                       NULL};

int w_obs_read(wctx *c, const json_t *r, const char *p, Clinlog__V1__ObservationRecorded *b) {
  int rc, status;
  if ((rc = w_only(c, r, p, obs_keys, 1)) ||
      (rc = w_enum(c, r, p, "status", obs_status, &status)) ||
      (rc = w_concepts_code(c, r, p, "category", &b->category, &b->n_category)) ||
      (rc = w_concept(c, r, p, "code", &b->code)) ||
      (rc = w_encounter(c, r, p, "encounter", (const char **)&b->encounter_id)) ||
      (rc = w_instant(c, r, p, "effectiveDateTime", &b->effective)) ||
      (rc = w_list(c, r, p, "performer", (w_conv_fn)w_reference, (void ***)&b->performers,
                   &b->n_performers)) ||
      (rc = obs_value(c, r, p, b)) ||
      (rc = w_concept_code(c, r, p, "dataAbsentReason", &b->data_absent_reason)) ||
      (rc = w_concepts_code(c, r, p, "interpretation", &b->interpretation, &b->n_interpretation)) ||
      (rc = w_note(c, r, p, (const char **)&b->note)) ||
      (rc = w_concept_code(c, r, p, "bodySite", &b->body_site)) ||
      (rc = w_concept_code(c, r, p, "method", &b->method)) ||
      (rc = w_list(c, r, p, "referenceRange", range, (void ***)&b->reference_range,
                   &b->n_reference_range)) ||
      (rc = w_list(c, r, p, "component", component, (void ***)&b->components, &b->n_components)))
    return rc;
  if (status < 0)
    return w_fail(c, 400, "required", w_path(c, p, "status", 0), "required");
  if (b->code == NULL)
    return w_fail(c, 400, "required", w_path(c, p, "code", 0), "required");
  if (b->value_case != CLINLOG__V1__OBSERVATION_RECORDED__VALUE__NOT_SET &&
      b->data_absent_reason != NULL)
    return w_fail(c, 400, "invalid", w_path(c, p, "dataAbsentReason", 0),
                  "a value and a dataAbsentReason (obs-6)");
  b->status = (Clinlog__V1__ObservationStatus)ev(status);
  if (b->encounter_id == NULL)
    b->encounter_id = "";
  if (b->note == NULL)
    b->note = "";
  return 0;
}

int w_observation(wctx *c, const json_t *r) {
  const char *p = c->root;
  Clinlog__V1__ObservationRecorded *b = w_alloc(c, sizeof *b);
  if (b == NULL)
    return CL_ENOMEM;
  clinlog__v1__observation_recorded__init(b);
  int rc;
  if ((rc = w_only(c, r, p, obs_keys, 1)) || (rc = w_subject(c, r, p, "subject")) ||
      (rc = w_business_id(c, r, p)) || (rc = business_only(c, r, p)) ||
      (rc = w_obs_read(c, r, p, b)))
    return rc;
  b->observation_id = (char *)c->bid;
  if (b->effective != NULL)
    c->when = b->effective;
  return w_emit(c, CLINLOG__V1__EVENT__BODY_OBSERVATION_RECORDED, b);
}

/* ---- ServiceRequest -> ServiceOrdered (map_clinical.c) ---- */

int w_service_request(wctx *c, const json_t *r) {
  static const char *const keys[] = {"identifier", "status",    "intent",
                                     "category",   "priority",  "code",
                                     "subject",    "encounter", "occurrenceDateTime",
                                     "authoredOn", "requester", "performer",
                                     "reasonCode", "note",      "patientInstruction",
                                     NULL};
  static const char *const statuses[] = {"active", NULL};
  static const char *const intents[] = {"order", NULL};
  static const char *const priorities[] = {"routine", "urgent", "asap", "stat", NULL};
  const char *p = c->root;
  Clinlog__V1__ServiceOrdered *b = w_alloc(c, sizeof *b);
  if (b == NULL)
    return CL_ENOMEM;
  clinlog__v1__service_ordered__init(b);
  int rc, status, intent, prio;
  pb_ts *authored;
  const json_t *req = json_object_get(r, "requester");
  if ((rc = w_only(c, r, p, keys, 1)) || (rc = w_subject(c, r, p, "subject")) ||
      (rc = w_business_id(c, r, p)) || (rc = w_enum(c, r, p, "status", statuses, &status)) ||
      (rc = w_enum(c, r, p, "intent", intents, &intent)) ||
      (rc = w_enum(c, r, p, "priority", priorities, &prio)) ||
      (rc = w_concepts_code(c, r, p, "category", &b->category, &b->n_category)) ||
      (rc = w_concept(c, r, p, "code", &b->code)) ||
      (rc = w_encounter(c, r, p, "encounter", (const char **)&b->encounter_id)) ||
      (rc = w_instant(c, r, p, "occurrenceDateTime", &b->occurrence)) ||
      (rc = w_instant(c, r, p, "authoredOn", &authored)) ||
      (req && (rc = w_reference(c, req, w_path(c, p, "requester", 0), &b->requester))) ||
      (rc = w_one_ref(c, r, p, "performer", 1, &b->performer)) ||
      (rc = w_concepts(c, r, p, "reasonCode", &b->reason, &b->n_reason)) ||
      (rc = w_note(c, r, p, (const char **)&b->note)) ||
      (rc = w_str(c, r, p, "patientInstruction", (const char **)&b->patient_instructions)))
    return rc;
  if (status < 0 || intent < 0)
    return w_fail(c, 400, "required", w_path(c, p, status < 0 ? "status" : "intent", 0),
                  "required (an order placed: status active, intent order)");
  static const char *const orders[] = {"PLAC", "FILL", NULL};
  Clinlog__V1__Identifier *nums[2] = {NULL, NULL};
  if ((rc = w_other_ids(c, r, p, orders, nums, "one PLAC and one FILL identifier (v2-0203)")))
    return rc;
  b->placer_order_number = nums[0];
  b->filler_order_number = nums[1];
  b->priority = (Clinlog__V1__RequestPriority)(prio < 0 ? 0 : prio + 1);
  if (b->encounter_id == NULL)
    b->encounter_id = "";
  if (b->note == NULL)
    b->note = "";
  if (b->patient_instructions == NULL)
    b->patient_instructions = "";
  b->order_id = (char *)c->bid;
  if (authored != NULL)
    c->when = authored;
  return w_emit(c, CLINLOG__V1__EVENT__BODY_SERVICE_ORDERED, b);
}

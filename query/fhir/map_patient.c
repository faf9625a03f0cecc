/* Patient and encounter events (100-105) -> Patient, Encounter.
 *
 *   PatientRegistered          Patient (a new version if it exists)
 *   PatientDemographicsUpdated Patient: the fields named in updated_fields
 *                              replace the current values as a whole
 *   EncounterStarted           Encounter, status in-progress
 *   EncounterEnded             Encounter, status finished (period.end,
 *                              hospitalization.dischargeDisposition)
 *   EncounterCancelled         Encounter, status cancelled
 *   EncounterDischargeCancelled  Encounter, status in-progress again, without
 *                              period.end and the discharge's hospitalization
 *                              elements */
#include <stdio.h>
#include <string.h>

#include "query/fhir/fj.h"
#include "query/fhir/map.h"

#define US_CORE_RACE "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
#define US_CORE_ETHNICITY "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
#define CDC_RACE "urn:oid:2.16.840.1.113883.6.238"

static const char *gender_code(Clinlog__V1__AdministrativeGender g) {
  switch (g) {
  case CLINLOG__V1__ADMINISTRATIVE_GENDER__ADMINISTRATIVE_GENDER_MALE:
    return "male";
  case CLINLOG__V1__ADMINISTRATIVE_GENDER__ADMINISTRATIVE_GENDER_FEMALE:
    return "female";
  case CLINLOG__V1__ADMINISTRATIVE_GENDER__ADMINISTRATIVE_GENDER_OTHER:
    return "other";
  case CLINLOG__V1__ADMINISTRATIVE_GENDER__ADMINISTRATIVE_GENDER_UNKNOWN:
    return "unknown";
  default:
    return NULL;
  }
}

/* The OMB minimum categories of the CDC race code system (US Core: these
 * go in ombCategory, every other code in detailed). */
static int omb_race(const char *code) {
  static const char *const omb[] = {"1002-5", "2028-9", "2054-5", "2076-8",
                                    "2106-3", "UNK",    "ASKU"};
  for (size_t i = 0; i < sizeof omb / sizeof omb[0]; i++)
    if (code != NULL && strcmp(code, omb[i]) == 0)
      return 1;
  return 0;
}

static int omb_ethnicity(const char *code) {
  return code != NULL && (strcmp(code, "2135-2") == 0 || strcmp(code, "2186-5") == 0 ||
                          strcmp(code, "UNK") == 0 || strcmp(code, "ASKU") == 0);
}

/* A US Core race or ethnicity extension from codes: ombCategory/detailed
 * codings and the required text (the displays, or the codes). */
static json_t *us_core_ext(const char *url, Clinlog__V1__Code *const *codes, size_t n,
                           int (*omb)(const char *)) {
  json_t *sub = json_array();
  char text[512] = "";
  size_t tl = 0;
  for (size_t i = 0; i < n; i++) {
    const Clinlog__V1__Code *c = codes[i];
    if (c == NULL || c->code == NULL || c->code[0] == '\0')
      continue;
    json_t *coding = json_object();
    fj_set_str(coding, "system", c->system && c->system[0] ? c->system : CDC_RACE);
    fj_set_str(coding, "code", c->code);
    fj_set_str(coding, "display", c->display);
    json_array_append_new(sub,
                          json_pack("{s:s,s:o}", "url", omb(c->code) ? "ombCategory" : "detailed",
                                    "valueCoding", coding));
    const char *t = c->display && c->display[0] ? c->display : c->code;
    int w = snprintf(text + tl, sizeof text - tl, "%s%s", tl ? ", " : "", t);
    if (w > 0 && (size_t)w < sizeof text - tl)
      tl += (size_t)w;
  }
  if (json_array_size(sub) == 0) {
    json_decref(sub);
    return NULL;
  }
  json_array_append_new(sub, json_pack("{s:s,s:s}", "url", "text", "valueString", text));
  return fj_ext(url, "extension", sub);
}

static json_t *contact(const Clinlog__V1__Contact *c) {
  if (c == NULL)
    return NULL;
  json_t *o = json_object();
  if (c->relationship != NULL)
    fj_set_one(o, "relationship", fj_concept_code(c->relationship));
  fj_set(o, "name", fj_name(c->name));
  json_t *tel = json_array();
  for (size_t i = 0; i < c->n_telecom; i++)
    fj_push(tel, fj_contact_point(c->telecom[i]));
  fj_set(o, "telecom", tel);
  fj_set(o, "address", fj_address(c->address));
  return o;
}

/* The Patient members one demographic field sets (proto field name), from
 * the values of a PatientRegistered or PatientDemographicsUpdated: every
 * member the field owns is removed first, so an empty value clears it. */
typedef struct demo {
  Clinlog__V1__Identifier **identifiers;
  size_t n_identifiers;
  Clinlog__V1__HumanName **names;
  size_t n_names;
  const char *birth_date;
  Clinlog__V1__AdministrativeGender gender;
  Clinlog__V1__Address **addresses;
  size_t n_addresses;
  Clinlog__V1__ContactPoint **telecom;
  size_t n_telecom;
  int deceased;
  const Google__Protobuf__Timestamp *deceased_at;
  const Clinlog__V1__Reference *managing_organization;
  const Clinlog__V1__Code *marital_status;
  Clinlog__V1__Code **race;
  size_t n_race;
  const Clinlog__V1__Code *ethnicity;
  const Clinlog__V1__Code *preferred_language;
  const Clinlog__V1__Reference *primary_care_provider;
  Clinlog__V1__Contact **contacts;
  size_t n_contacts;
} demo;

/* The demo of a PatientRegistered or a PatientDemographicsUpdated `b`: the
 * two messages name these fields alike, but are different types (hence a
 * macro, not a function). */
#define DEMO_OF(b)                                                                                 \
  {                                                                                                \
    .identifiers = (b)->identifiers, .n_identifiers = (b)->n_identifiers, .names = (b)->names,     \
    .n_names = (b)->n_names, .birth_date = (b)->birth_date, .gender = (b)->gender,                 \
    .addresses = (b)->addresses, .n_addresses = (b)->n_addresses, .telecom = (b)->telecom,         \
    .n_telecom = (b)->n_telecom, .deceased = (b)->deceased, .deceased_at = (b)->deceased_at,       \
    .managing_organization = (b)->managing_organization, .marital_status = (b)->marital_status,    \
    .race = (b)->race, .n_race = (b)->n_race, .ethnicity = (b)->ethnicity,                         \
    .preferred_language = (b)->preferred_language,                                                 \
    .primary_care_provider = (b)->primary_care_provider, .contacts = (b)->contacts,                \
    .n_contacts = (b)->n_contacts                                                                  \
  }

static const char *const demo_fields[] = {"identifiers",
                                          "names",
                                          "telecom",
                                          "gender",
                                          "birth_date",
                                          "deceased",
                                          "deceased_at",
                                          "addresses",
                                          "marital_status",
                                          "contacts",
                                          "preferred_language",
                                          "primary_care_provider",
                                          "managing_organization",
                                          "race",
                                          "ethnicity"};

/* Sets the members of `field`; 0, or -1 for a field name we do not know. */
static int set_field(json_t *p, const demo *d, const char *field) {
  if (strcmp(field, "identifiers") == 0) {
    json_object_del(p, "identifier");
    json_t *a = json_array();
    for (size_t i = 0; i < d->n_identifiers; i++)
      fj_push(a, fj_identifier(d->identifiers[i]));
    fj_set(p, "identifier", a);
  } else if (strcmp(field, "names") == 0) {
    json_object_del(p, "name");
    json_t *a = json_array();
    for (size_t i = 0; i < d->n_names; i++)
      fj_push(a, fj_name(d->names[i]));
    fj_set(p, "name", a);
  } else if (strcmp(field, "telecom") == 0) {
    json_object_del(p, "telecom");
    json_t *a = json_array();
    for (size_t i = 0; i < d->n_telecom; i++)
      fj_push(a, fj_contact_point(d->telecom[i]));
    fj_set(p, "telecom", a);
  } else if (strcmp(field, "gender") == 0) {
    json_object_del(p, "gender");
    fj_set_str(p, "gender", gender_code(d->gender));
  } else if (strcmp(field, "birth_date") == 0) {
    json_object_del(p, "birthDate");
    fj_set(p, "birthDate", fj_date(d->birth_date));
  } else if (strcmp(field, "deceased") == 0 || strcmp(field, "deceased_at") == 0) {
    json_object_del(p, "deceasedBoolean");
    json_object_del(p, "deceasedDateTime");
    if (d->deceased_at != NULL)
      fj_set(p, "deceasedDateTime", fj_instant(d->deceased_at));
    else if (d->deceased)
      json_object_set_new(p, "deceasedBoolean", json_true());
  } else if (strcmp(field, "addresses") == 0) {
    json_object_del(p, "address");
    json_t *a = json_array();
    for (size_t i = 0; i < d->n_addresses; i++)
      fj_push(a, fj_address(d->addresses[i]));
    fj_set(p, "address", a);
  } else if (strcmp(field, "marital_status") == 0) {
    json_object_del(p, "maritalStatus");
    fj_set(p, "maritalStatus", fj_concept_code(d->marital_status));
  } else if (strcmp(field, "contacts") == 0) {
    json_object_del(p, "contact");
    json_t *a = json_array();
    for (size_t i = 0; i < d->n_contacts; i++)
      fj_push(a, contact(d->contacts[i]));
    fj_set(p, "contact", a);
  } else if (strcmp(field, "preferred_language") == 0) {
    json_object_del(p, "communication");
    json_t *lang = fj_concept_code(d->preferred_language);
    if (lang != NULL)
      fj_set_one(p, "communication", json_pack("{s:o,s:b}", "language", lang, "preferred", 1));
  } else if (strcmp(field, "primary_care_provider") == 0) {
    json_object_del(p, "generalPractitioner");
    fj_set_one(p, "generalPractitioner", fj_reference(d->primary_care_provider));
  } else if (strcmp(field, "managing_organization") == 0) {
    json_object_del(p, "managingOrganization");
    fj_set(p, "managingOrganization", fj_reference(d->managing_organization));
  } else if (strcmp(field, "race") == 0) {
    fj_ext_drop(p, US_CORE_RACE);
    fj_ext_add(p, us_core_ext(US_CORE_RACE, d->race, d->n_race, omb_race));
  } else if (strcmp(field, "ethnicity") == 0) {
    fj_ext_drop(p, US_CORE_ETHNICITY);
    Clinlog__V1__Code *one[1] = {(Clinlog__V1__Code *)d->ethnicity};
    fj_ext_add(p, us_core_ext(US_CORE_ETHNICITY, one, d->ethnicity != NULL, omb_ethnicity));
  } else {
    return -1;
  }
  return 0;
}

/* FHIR JSON member order of a Patient, so that an update reads like a
 * registration. */
static const char *const patient_order[] = {"resourceType",
                                            "id",
                                            "extension",
                                            "identifier",
                                            "active",
                                            "name",
                                            "telecom",
                                            "gender",
                                            "birthDate",
                                            "deceasedBoolean",
                                            "deceasedDateTime",
                                            "address",
                                            "maritalStatus",
                                            "contact",
                                            "communication",
                                            "generalPractitioner",
                                            "managingOrganization"};

static int patient_registered(cl_fhir_map *m, const Clinlog__V1__PatientRegistered *b,
                              cl_err *err) {
  const char *pid = m->patient_id != NULL ? m->patient_id : b->patient_id;
  if (pid == NULL || pid[0] == '\0')
    return 0; /* no patient to register */
  char id[CL_FHIR_ID_MAX];
  cl_fhir_id("Patient", NULL, pid, id);
  json_t *p = cl_fhir_new("Patient", id);
  demo d = DEMO_OF(b);
  json_object_set_new(p, "active", json_true());
  for (size_t i = 0; i < sizeof demo_fields / sizeof demo_fields[0]; i++)
    set_field(p, &d, demo_fields[i]);
  return cl_fhir_map_put(
      m, fj_in_order(p, patient_order, sizeof patient_order / sizeof patient_order[0]), err);
}

static int demographics_updated(cl_fhir_map *m, const Clinlog__V1__PatientDemographicsUpdated *b,
                                cl_err *err) {
  const char *pid = m->patient_id != NULL ? m->patient_id : b->patient_id;
  if (pid == NULL || pid[0] == '\0')
    return 0;
  char id[CL_FHIR_ID_MAX];
  cl_fhir_id("Patient", NULL, pid, id);
  json_t *p;
  int rc = cl_fhir_map_get(m, "Patient", id, &p, err);
  if (rc == CL_ENOTFOUND) { /* an update before the registration: start from nothing */
    p = cl_fhir_new("Patient", id);
    json_object_set_new(p, "active", json_true());
  } else if (rc < 0) {
    return rc;
  }
  json_object_del(p, "meta");
  demo d = DEMO_OF(b);
  for (size_t i = 0; i < b->n_updated_fields; i++)
    set_field(p, &d, b->updated_fields[i]); /* an unknown name changes nothing */
  return cl_fhir_map_put(
      m, fj_in_order(p, patient_order, sizeof patient_order / sizeof patient_order[0]), err);
}

static json_t *participant(const char *code, const char *display, const Clinlog__V1__Reference *r) {
  json_t *who = fj_reference(r);
  if (who == NULL)
    return NULL;
  json_t *o = json_object();
  fj_set_one(
      o, "type",
      fj_concept_lit("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", code, display));
  json_object_set_new(o, "individual", who);
  return o;
}

static json_t *unknown_class(void) {
  return json_pack("{s:s,s:s,s:s}", "system", "http://terminology.hl7.org/CodeSystem/v3-NullFlavor",
                   "code", "UNK", "display", "unknown");
}

static int encounter_started(cl_fhir_map *m, const Clinlog__V1__EncounterStarted *b, cl_err *err) {
  if (b->encounter_id == NULL || b->encounter_id[0] == '\0')
    return 0;
  char id[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, "Encounter", b->encounter_id, id);
  json_t *e = cl_fhir_new("Encounter", id);
  json_t *ids = json_array();
  fj_push(ids, fj_business_id(b->encounter_id));
  if (b->visit_number != NULL) {
    json_t *vn = fj_identifier(b->visit_number);
    if (vn != NULL && json_object_get(vn, "type") == NULL)
      json_object_set_new(vn, "type", fj_concept_lit(FJ_V2_0203, "VN", "Visit number"));
    fj_push(ids, vn);
  }
  fj_set(e, "identifier", ids);
  json_object_set_new(e, "status", json_string("in-progress"));
  json_t *cls = NULL;
  if (b->encounter_class != NULL && b->encounter_class->code != NULL &&
      b->encounter_class->code[0] != '\0') {
    cls = fj_coding(b->encounter_class);
    if (json_object_get(cls, "system") == NULL)
      json_object_set_new(cls, "system",
                          json_string("http://terminology.hl7.org/CodeSystem/v3-ActCode"));
  }
  json_object_set_new(e, "class", cls != NULL ? cls : unknown_class());
  fj_set(e, "type", fj_concepts(b->type, b->n_type));
  if (b->hospital_service != NULL)
    fj_set(e, "serviceType", fj_concept_code(b->hospital_service));
  fj_set(e, "priority", fj_act_priority(b->priority));
  fj_set(e, "subject", cl_fhir_patient_ref(m));
  json_t *parts = json_array();
  fj_push(parts, participant("ATND", "attender", b->attending));
  fj_push(parts, participant("REF", "referrer", b->referring));
  fj_push(parts, participant("ADM", "admitter", b->admitting));
  fj_set(e, "participant", parts);
  json_t *period = json_object();
  fj_set(period, "start", b->start != NULL ? fj_instant(b->start) : fj_instant(m->ev->occurred_at));
  fj_set(e, "period", period);
  fj_set(e, "reasonCode", fj_concepts(b->reason, b->n_reason));
  if (b->admit_source != NULL) {
    json_t *h = json_object();
    fj_set(h, "admitSource", fj_concept_code(b->admit_source));
    fj_set(e, "hospitalization", h);
  }
  json_t *loc = fj_location_ref(b->location);
  if (loc != NULL)
    fj_set_one(e, "location", json_pack("{s:o,s:s}", "location", loc, "status", "active"));
  fj_set(e, "serviceProvider", fj_reference(b->service_provider));
  return cl_fhir_map_put(m, e, err);
}

static const char *const encounter_order[] = {
    "resourceType", "id",          "identifier",      "status",   "class",
    "type",         "serviceType", "priority",        "subject",  "participant",
    "period",       "reasonCode",  "hospitalization", "location", "serviceProvider"};

/* The Encounter an event about an existing one changes: the current
 * version (meta dropped), or, for an encounter the log never started, a
 * new one with what the event says. NULL with *rc set on an error. */
static json_t *encounter_of(cl_fhir_map *m, const char *encounter_id, int *rc, cl_err *err) {
  char id[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, "Encounter", encounter_id, id);
  json_t *e;
  *rc = cl_fhir_map_get(m, "Encounter", id, &e, err);
  if (*rc == CL_ENOTFOUND) { /* no start on record */
    *rc = 0;
    e = cl_fhir_new("Encounter", id);
    fj_set_one(e, "identifier", fj_business_id(encounter_id));
    json_object_set_new(e, "class", unknown_class());
    fj_set(e, "subject", cl_fhir_patient_ref(m));
  } else if (*rc < 0) {
    return NULL;
  }
  json_object_del(e, "meta");
  return e;
}

static int encounter_put(cl_fhir_map *m, json_t *e, cl_err *err) {
  return cl_fhir_map_put(
      m, fj_in_order(e, encounter_order, sizeof encounter_order / sizeof encounter_order[0]), err);
}

/* The encounter's locations all in `status`. */
static void locations_are(json_t *e, const char *status) {
  json_t *locs = json_object_get(e, "location");
  for (size_t i = 0; i < json_array_size(locs); i++)
    json_object_set_new(json_array_get(locs, i), "status", json_string(status));
}

static int encounter_ended(cl_fhir_map *m, const Clinlog__V1__EncounterEnded *b, cl_err *err) {
  if (b->encounter_id == NULL || b->encounter_id[0] == '\0')
    return 0;
  int rc;
  json_t *e = encounter_of(m, b->encounter_id, &rc, err);
  if (e == NULL)
    return rc;
  json_object_set_new(e, "status", json_string("finished"));
  json_t *period = json_object_get(e, "period");
  if (period == NULL) {
    period = json_object();
    json_object_set_new(e, "period", period);
  }
  fj_set(period, "end", b->end != NULL ? fj_instant(b->end) : fj_instant(m->ev->occurred_at));
  json_t *h = json_object_get(e, "hospitalization");
  json_t *nh = h != NULL ? json_incref(h) : json_object();
  fj_set(nh, "destination", fj_location_ref(b->discharged_to));
  if (b->discharge_disposition != NULL)
    fj_set(nh, "dischargeDisposition", fj_concept_code(b->discharge_disposition));
  fj_set(e, "hospitalization", nh);
  locations_are(e, "completed"); /* where the patient was */
  return encounter_put(m, e, err);
}

/* ADT^A11, EncounterCancelled: cancelled; ADT^A13,
 * EncounterDischargeCancelled: in progress again, the end and where the
 * patient went gone (the v2-to-FHIR IG's map of table 0003). */
static int encounter_cancel(cl_fhir_map *m, const char *encounter_id, int discharge,
                            cl_err *err) {
  if (encounter_id == NULL || encounter_id[0] == '\0')
    return 0;
  int rc;
  json_t *e = encounter_of(m, encounter_id, &rc, err);
  if (e == NULL)
    return rc;
  json_object_set_new(e, "status", json_string(discharge ? "in-progress" : "cancelled"));
  locations_are(e, discharge ? "active" : "completed");
  if (discharge) {
    json_t *period = json_object_get(e, "period"), *h = json_object_get(e, "hospitalization");
    json_object_del(period, "end");
    if (period != NULL && json_object_size(period) == 0)
      json_object_del(e, "period");
    json_object_del(h, "destination");
    json_object_del(h, "dischargeDisposition");
    if (h != NULL && json_object_size(h) == 0)
      json_object_del(e, "hospitalization");
  }
  return encounter_put(m, e, err);
}

int cl_fhir_map_patient(cl_fhir_map *m, cl_err *err) {
  const Clinlog__V1__Event *ev = m->ev;
  switch (ev->body_case) {
  case CLINLOG__V1__EVENT__BODY_PATIENT_REGISTERED:
    return patient_registered(m, ev->patient_registered, err);
  case CLINLOG__V1__EVENT__BODY_PATIENT_DEMOGRAPHICS_UPDATED:
    return demographics_updated(m, ev->patient_demographics_updated, err);
  case CLINLOG__V1__EVENT__BODY_ENCOUNTER_STARTED:
    return encounter_started(m, ev->encounter_started, err);
  case CLINLOG__V1__EVENT__BODY_ENCOUNTER_ENDED:
    return encounter_ended(m, ev->encounter_ended, err);
  case CLINLOG__V1__EVENT__BODY_ENCOUNTER_CANCELLED:
    return encounter_cancel(m, ev->encounter_cancelled->encounter_id, 0, err);
  case CLINLOG__V1__EVENT__BODY_ENCOUNTER_DISCHARGE_CANCELLED:
    return encounter_cancel(m, ev->encounter_discharge_cancelled->encounter_id, 1, err);
  default:
    return 0;
  }
}

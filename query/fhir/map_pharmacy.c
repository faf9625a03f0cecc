/* Pharmacy events (300-303) -> MedicationRequest, MedicationDispense,
 * MedicationAdministration (docs/fhir-map-pharmacy-imaging-portal.md).
 *
 *   MedicationPrescribed   MedicationRequest (status active; a later one with
 *                          the same prescription_id replaces it as a whole)
 *   MedicationDiscontinued the same MedicationRequest, status stopped,
 *                          statusReason, and a note saying who stopped it
 *                          and when (a minimal one if none is on record)
 *   MedicationDispensed    MedicationDispense (status completed)
 *   MedicationAdministered MedicationAdministration
 *
 * Every resource's id is cl_fhir_pid of its business id (prescription_id,
 * dispense_id, administration_id); an event without one, or outside a
 * patient's stream (the catalog writes these to patient-<id> only, and
 * every resource here needs its subject), is not mapped.
 *
 * What FHIR R4 has no element for goes in clinlog extensions (FJ_CLINLOG_EXT):
 * the fill number of a dispense, the lot and expiry of the product
 * dispensed or given (mirroring Medication.batch, so medication[x] stays a
 * CodeableConcept whatever the event carries) and the barcodes a bedside
 * scan read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/fhir/fj.h"
#include "query/fhir/map.h"

#define EXT_FILL_NUMBER FJ_CLINLOG_EXT "fill-number"
#define EXT_BATCH FJ_CLINLOG_EXT "medication-batch"
#define EXT_SCANNED_WRISTBAND FJ_CLINLOG_EXT "scanned-wristband"
#define EXT_SCANNED_PRODUCT FJ_CLINLOG_EXT "scanned-product-barcode"
#define UCUM "http://unitsofmeasure.org"

/* ---- helpers ---- */

/* medicationCodeableConcept: the medication as sent, or (required by every
 * resource here) a CodeableConcept saying it is unknown. */
static json_t *medication(const Clinlog__V1__CodeableConcept *cc) {
  return fj_or_unknown(fj_concept(cc));
}

/* A number of days as a Duration / SimpleQuantity in UCUM "d". */
static json_t *days(int32_t n) {
  if (n <= 0)
    return NULL;
  return json_pack("{s:I,s:s,s:s,s:s}", "value", (json_int_t)n, "unit", "days", "system", UCUM,
                   "code", "d");
}

/* Dosage instructions in sequence (Dosage.sequence when there are several,
 * e.g. a taper); the amounts as SimpleQuantity. */
static json_t *dosages(Clinlog__V1__Dosage *const *d, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++) {
    json_t *one = fj_dosage(d[i]);
    if (one == NULL)
      continue;
    json_t *dr = json_object_get(one, "doseAndRate");
    for (size_t j = 0; j < json_array_size(dr); j++) {
      json_object_del(json_object_get(json_array_get(dr, j), "doseQuantity"), "comparator");
      json_object_del(json_object_get(json_array_get(dr, j), "rateQuantity"), "comparator");
    }
    if (n > 1) {
      json_t *seq = json_pack("{s:I}", "sequence", (json_int_t)(i + 1));
      json_object_update(seq, one);
      json_decref(one);
      one = seq;
    }
    fj_push(a, one);
  }
  return a;
}

/* FHIR medicationrequest-intent (a required binding): the event's intent
 * when it is one of its codes, else "order" (the catalog's default). */
static const char *request_intent(const char *s) {
  static const char *const codes[] = {"proposal",       "plan",         "order",
                                      "original-order", "reflex-order", "filler-order",
                                      "instance-order", "option"};
  for (size_t i = 0; s != NULL && i < sizeof codes / sizeof codes[0]; i++)
    if (strcmp(s, codes[i]) == 0)
      return codes[i];
  return "order";
}

/* MedicationRequest.category: the Code as sent; the FHIR system is filled
 * in for the medicationrequest-category codes sent without one. */
static json_t *mr_category(const Clinlog__V1__Code *c) {
  static const char *const codes[] = {"inpatient", "outpatient", "community", "discharge"};
  return fj_concept_code_in(c, "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
                            codes, sizeof codes / sizeof codes[0]);
}

/* The lot and expiry of a product (Medication.batch's elements). */
static json_t *batch_ext(const char *lot, const char *expiry) {
  json_t *sub = json_array();
  if (lot != NULL && lot[0] != '\0')
    json_array_append_new(sub, json_pack("{s:s,s:s}", "url", "lotNumber", "valueString", lot));
  json_t *d = fj_date(expiry);
  if (d != NULL)
    json_array_append_new(sub, json_pack("{s:s,s:o}", "url", "expirationDate", "valueDate", d));
  if (json_array_size(sub) == 0) {
    json_decref(sub);
    return NULL;
  }
  return fj_ext(EXT_BATCH, "extension", sub);
}

/* A barcode as scanned, in a valueString. FHIR strings hold no control
 * characters (but tab, CR, LF), and scans carry them (the GS1 FNC1
 * separator 0x1D, a scanner's CR suffix): every one becomes its Unicode
 * control picture (U+2400 + c, e.g. U+241D), which keeps the value
 * readable and reversible. */
static json_t *scan_ext(const char *url, const char *scan) {
  if (scan == NULL || scan[0] == '\0')
    return NULL;
  size_t n = strlen(scan);
  char *buf = malloc(3 * n + 1);
  if (buf == NULL)
    return NULL;
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)scan[i];
    if (c < 0x20 || c == 0x7f) {
      unsigned cp = c == 0x7f ? 0x2421 : 0x2400 + c;
      buf[o++] = (char)(0xe0 | (cp >> 12));
      buf[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
      buf[o++] = (char)(0x80 | (cp & 0x3f));
    } else {
      buf[o++] = (char)c;
    }
  }
  buf[o] = '\0';
  json_t *e = fj_ext(url, "valueString", json_string(buf));
  free(buf);
  return e;
}

/* The text of a concept: its text, else its first coding's display or code. */
static const char *concept_text(const Clinlog__V1__CodeableConcept *cc) {
  if (cc == NULL)
    return NULL;
  if (cc->text != NULL && cc->text[0] != '\0')
    return cc->text;
  for (size_t i = 0; i < cc->n_coding; i++) {
    const Clinlog__V1__Code *c = cc->coding[i];
    if (c == NULL)
      continue;
    if (c->display != NULL && c->display[0] != '\0')
      return c->display;
    if (c->code != NULL && c->code[0] != '\0')
      return c->code;
  }
  return NULL;
}

/* ---- MedicationRequest ---- */

/* FHIR JSON member order of a MedicationRequest (R4). */
static const char *const mr_order[] = {"resourceType",
                                       "id",
                                       "extension",
                                       "identifier",
                                       "status",
                                       "statusReason",
                                       "intent",
                                       "category",
                                       "priority",
                                       "medicationCodeableConcept",
                                       "subject",
                                       "encounter",
                                       "authoredOn",
                                       "requester",
                                       "reasonCode",
                                       "note",
                                       "dosageInstruction",
                                       "dispenseRequest",
                                       "substitution"};

static int prescribed(cl_fhir_map *m, const Clinlog__V1__MedicationPrescribed *b, cl_err *err) {
  if (b->prescription_id == NULL || b->prescription_id[0] == '\0' || m->patient_id == NULL)
    return 0;
  char id[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, "MedicationRequest", b->prescription_id, id);
  json_t *r = cl_fhir_new("MedicationRequest", id);
  json_t *ids = json_array();
  fj_push(ids, fj_business_id(b->prescription_id));
  fj_push(ids, fj_identifier_typed(b->placer_order_number, "PLAC", "Placer Identifier"));
  fj_set(r, "identifier", ids);
  json_object_set_new(r, "status", json_string("active"));
  json_object_set_new(r, "intent", json_string(request_intent(b->intent)));
  if (b->category != NULL)
    fj_set_one(r, "category", mr_category(b->category));
  fj_set_str(r, "priority", fj_request_priority(b->priority));
  json_object_set_new(r, "medicationCodeableConcept", medication(b->medication));
  fj_set(r, "subject", cl_fhir_patient_ref(m));
  fj_set(r, "encounter", cl_fhir_pref(m, "Encounter", b->encounter_id));
  fj_set(r, "authoredOn", fj_instant(m->ev->occurred_at));
  fj_set(r, "requester", fj_reference(b->prescriber));
  fj_set(r, "reasonCode", fj_concepts(b->reason, b->n_reason));
  fj_set(r, "note", fj_note(b->note_to_pharmacist));
  fj_set(r, "dosageInstruction", dosages(b->dosage, b->n_dosage));
  json_t *dr = json_object();
  fj_set(dr, "validityPeriod", fj_period(b->validity));
  if (b->refills > 0) /* 0 is "not stated" (proto3) */
    json_object_set_new(dr, "numberOfRepeatsAllowed", json_integer(b->refills));
  fj_set(dr, "quantity", fj_simple_quantity(b->quantity));
  fj_set(dr, "expectedSupplyDuration", days(b->days_supply));
  fj_set(dr, "performer", fj_reference(b->pharmacy));
  fj_set(r, "dispenseRequest", dr);
  /* DAW forbids generic substitution; its absence allows it (the catalog) */
  json_object_set_new(r, "substitution",
                      json_pack("{s:b}", "allowedBoolean", !b->dispense_as_written));
  return cl_fhir_map_put(m, r, err);
}

static int discontinued(cl_fhir_map *m, const Clinlog__V1__MedicationDiscontinued *b, cl_err *err) {
  if (b->prescription_id == NULL || b->prescription_id[0] == '\0' || m->patient_id == NULL)
    return 0;
  char id[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, "MedicationRequest", b->prescription_id, id);
  json_t *r;
  int rc = cl_fhir_map_get(m, "MedicationRequest", id, &r, err);
  if (rc == CL_ENOTFOUND) {
    /* stopped without a prescription on record: the least a valid
     * MedicationRequest holds, the medication unknown */
    r = cl_fhir_new("MedicationRequest", id);
    fj_set_one(r, "identifier", fj_business_id(b->prescription_id));
    json_object_set_new(r, "intent", json_string("order"));
    json_object_set_new(r, "medicationCodeableConcept", medication(NULL));
    fj_set(r, "subject", cl_fhir_patient_ref(m));
  } else if (rc < 0) {
    return rc;
  }
  json_object_del(r, "meta");
  json_object_set_new(r, "status", json_string("stopped"));
  json_object_del(r, "statusReason");
  fj_set(r, "statusReason", fj_concept(b->reason));
  /* R4 has no element for who stopped an order and from when: a note by
   * them, timed when the stop takes effect */
  const char *why = concept_text(b->reason);
  json_t *text = why != NULL ? json_sprintf("Discontinued: %s", why) : NULL;
  json_t *note = json_object();
  fj_set(note, "authorReference", fj_reference(b->discontinued_by));
  fj_set(note, "time", fj_instant(b->effective != NULL ? b->effective : m->ev->occurred_at));
  json_object_set_new(note, "text", text != NULL ? text : json_string("Discontinued"));
  json_t *notes = json_object_get(r, "note");
  if (notes == NULL) {
    notes = json_array();
    json_object_set_new(r, "note", notes);
  }
  json_array_append_new(notes, note);
  return cl_fhir_map_put(m, fj_in_order(r, mr_order, sizeof mr_order / sizeof mr_order[0]), err);
}

/* ---- MedicationDispense ---- */

static int dispensed(cl_fhir_map *m, const Clinlog__V1__MedicationDispensed *b, cl_err *err) {
  if (b->dispense_id == NULL || b->dispense_id[0] == '\0' || m->patient_id == NULL)
    return 0;
  char id[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, "MedicationDispense", b->dispense_id, id);
  json_t *r = cl_fhir_new("MedicationDispense", id);
  /* fill_number: 0 is the original fill (the field says so) */
  fj_ext_add(r, json_pack("{s:s,s:I}", "url", EXT_FILL_NUMBER, "valueUnsignedInt",
                          (json_int_t)(b->fill_number > 0 ? b->fill_number : 0)));
  fj_ext_add(r, batch_ext(b->lot_number, b->expiration_date));
  fj_set_one(r, "identifier", fj_business_id(b->dispense_id));
  json_object_set_new(r, "status", json_string("completed"));
  json_object_set_new(r, "medicationCodeableConcept", medication(b->medication));
  fj_set(r, "subject", cl_fhir_patient_ref(m));
  json_t *perf = json_array();
  json_t *pharmacy = fj_reference(b->pharmacy);
  if (pharmacy != NULL)
    fj_push(perf, json_pack("{s:o}", "actor", pharmacy));
  json_t *pharmacist = fj_reference(b->dispenser);
  if (pharmacist != NULL)
    fj_push(perf, json_pack("{s:o}", "actor", pharmacist));
  fj_set(r, "performer", perf);
  fj_set_one(r, "authorizingPrescription",
             cl_fhir_pref(m, "MedicationRequest", b->prescription_id));
  json_object_set_new(
      r, "type",
      b->fill_number > 0
          ? fj_concept_lit("http://terminology.hl7.org/CodeSystem/v3-ActCode", "RF", "Refill")
          : fj_concept_lit("http://terminology.hl7.org/CodeSystem/v3-ActCode", "FF", "First Fill"));
  fj_set(r, "quantity", fj_simple_quantity(b->quantity));
  fj_set(r, "daysSupply", days(b->days_supply));
  fj_set(r, "whenHandedOver",
         fj_instant(b->dispensed_at != NULL ? b->dispensed_at : m->ev->occurred_at));
  fj_set(r, "dosageInstruction", dosages(b->dosage, b->n_dosage));
  if (b->substituted) /* false is "not stated" as much as "the same product" */
    json_object_set_new(r, "substitution", json_pack("{s:b}", "wasSubstituted", 1));
  return cl_fhir_map_put(m, r, err);
}

/* ---- MedicationAdministration ---- */

/* FHIR medication-admin-status (required binding); UNSPECIFIED -> unknown. */
static const char *admin_status(Clinlog__V1__AdministrationStatus s) {
  switch (s) {
  case CLINLOG__V1__ADMINISTRATION_STATUS__ADMINISTRATION_STATUS_COMPLETED:
  case CLINLOG__V1__ADMINISTRATION_STATUS__ADMINISTRATION_STATUS_PARTIAL: /* + a note */
    return "completed";
  case CLINLOG__V1__ADMINISTRATION_STATUS__ADMINISTRATION_STATUS_NOT_DONE:
    return "not-done";
  case CLINLOG__V1__ADMINISTRATION_STATUS__ADMINISTRATION_STATUS_IN_PROGRESS:
    return "in-progress";
  case CLINLOG__V1__ADMINISTRATION_STATUS__ADMINISTRATION_STATUS_ON_HOLD:
    return "on-hold";
  case CLINLOG__V1__ADMINISTRATION_STATUS__ADMINISTRATION_STATUS_STOPPED:
    return "stopped";
  default:
    return "unknown";
  }
}

static json_t *admin_performer(const char *function, const char *display,
                               const Clinlog__V1__Reference *who) {
  json_t *actor = fj_reference(who);
  if (actor == NULL)
    return NULL;
  json_t *o = json_object();
  if (function != NULL)
    json_object_set_new(
        o, "function",
        fj_concept_lit("http://terminology.hl7.org/CodeSystem/med-admin-perform-function", function,
                       display));
  json_object_set_new(o, "actor", actor);
  return o;
}

static int administered(cl_fhir_map *m, const Clinlog__V1__MedicationAdministered *b, cl_err *err) {
  if (b->administration_id == NULL || b->administration_id[0] == '\0' || m->patient_id == NULL)
    return 0;
  char id[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, "MedicationAdministration", b->administration_id, id);
  json_t *r = cl_fhir_new("MedicationAdministration", id);
  fj_ext_add(r, scan_ext(EXT_SCANNED_WRISTBAND, b->scanned_wristband_id));
  fj_ext_add(r, scan_ext(EXT_SCANNED_PRODUCT, b->scanned_product_barcode));
  fj_ext_add(r, batch_ext(b->lot_number, NULL));
  fj_set_one(r, "identifier", fj_business_id(b->administration_id));
  json_object_set_new(r, "status", json_string(admin_status(b->status)));
  if (b->not_given_reason != NULL)
    fj_set_one(r, "statusReason", fj_concept(b->not_given_reason));
  json_object_set_new(r, "medicationCodeableConcept", medication(b->medication));
  fj_set(r, "subject", cl_fhir_patient_ref(m));
  fj_set(r, "context", cl_fhir_pref(m, "Encounter", b->encounter_id));
  const Google__Protobuf__Timestamp *start =
      b->administered_at != NULL ? b->administered_at : m->ev->occurred_at;
  if (b->ended_at != NULL) { /* an infusion: start and end */
    json_t *p = json_object();
    fj_set(p, "start", fj_instant(start));
    fj_set(p, "end", fj_instant(b->ended_at));
    json_object_set_new(r, "effectivePeriod", p);
  } else if (start != NULL) {
    json_object_set_new(r, "effectiveDateTime", fj_instant(start));
  } else { /* effective[x] is required: say the time is unknown */
    json_object_set_new(r, "_effectiveDateTime", fj_unknown());
  }
  json_t *perf = json_array();
  fj_push(perf, admin_performer(NULL, NULL, b->performer));
  /* the second nurse checks the dose and takes on accountability for it:
   * med-admin-perform-function "verifier" (a FHIR "witness" does nothing) */
  fj_push(perf, admin_performer("verifier", "Verifier", b->witness));
  fj_set(r, "performer", perf);
  fj_set(r, "request", cl_fhir_pref(m, "MedicationRequest", b->prescription_id));
  if (b->status == CLINLOG__V1__ADMINISTRATION_STATUS__ADMINISTRATION_STATUS_PARTIAL)
    fj_set(r, "note", fj_note("Partially administered"));
  /* dosage needs a dose or a rate (mad-1): route and site alone are left
   * out */
  json_t *dose = fj_simple_quantity(b->dose_given), *rate = fj_simple_quantity(b->rate);
  if (dose != NULL || rate != NULL) {
    json_t *d = json_object();
    if (b->site != NULL)
      fj_set(d, "site", fj_concept_code(b->site));
    if (b->route != NULL)
      fj_set(d, "route", fj_concept_code(b->route));
    fj_set(d, "dose", dose);
    fj_set(d, "rateQuantity", rate);
    json_object_set_new(r, "dosage", d);
  }
  return cl_fhir_map_put(m, r, err);
}

int cl_fhir_map_pharmacy(cl_fhir_map *m, cl_err *err) {
  const Clinlog__V1__Event *ev = m->ev;
  switch (ev->body_case) {
  case CLINLOG__V1__EVENT__BODY_MEDICATION_PRESCRIBED:
    return prescribed(m, ev->medication_prescribed, err);
  case CLINLOG__V1__EVENT__BODY_MEDICATION_DISCONTINUED:
    return discontinued(m, ev->medication_discontinued, err);
  case CLINLOG__V1__EVENT__BODY_MEDICATION_DISPENSED:
    return dispensed(m, ev->medication_dispensed, err);
  case CLINLOG__V1__EVENT__BODY_MEDICATION_ADMINISTERED:
    return administered(m, ev->medication_administered, err);
  default:
    return 0;
  }
}

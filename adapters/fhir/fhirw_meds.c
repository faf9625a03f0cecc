/* MedicationRequest to MedicationPrescribed, MedicationAdministration
 * to MedicationAdministered, MedicationDispense to MedicationDispensed and
 * Immunization to ImmunizationAdministered (fhirw.h): the inverse of
 * query/fhir/map_pharmacy.c's `prescribed`, `administered` and `dispensed`
 * and map_clinical.c's `immunization`, with the Dosage
 * datatype (fj.c's fj_dosage read backwards).
 *
 * The view writes every prescription as status active with a substitution
 * element (allowed unless dispense-as-written); a stopped prescription is
 * a MedicationDiscontinued of its own, which FHIR writes do not make yet:
 * any other status is refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/fhir/fhirw_int.h"

#define UCUM "http://unitsofmeasure.org"

/* A whole number of days as the view writes one ({value, unit days, UCUM d}). */
static int days_of(wctx *c, const json_t *o, const char *path, const char *key, int32_t *out) {
  *out = 0;
  const json_t *q;
  int rc = w_obj(c, o, path, key, &q);
  if (rc || q == NULL)
    return rc;
  const char *p = w_path(c, path, key, 0);
  Clinlog__V1__Quantity *v;
  if ((rc = w_quantity(c, q, p, &v)) != 0)
    return rc;
  char *end;
  long n = strtol(v->value, &end, 10);
  if (*end || n <= 0 || n > 100000 || strcmp(v->unit, "d") || v->unit_system[0] ||
      v->comparator[0] || (v->unit_display[0] && strcmp(v->unit_display, "days")))
    return w_fail(c, 422, "not-supported", p,
                  "a duration is written as whole days: {value, unit \"days\", system " UCUM
                  ", code \"d\"}");
  *out = (int32_t)n;
  return 0;
}

/* A positive integer (a JSON number) at o[key]; 0 if absent. */
static int count_of(wctx *c, const json_t *o, const char *path, const char *key, int32_t *out) {
  *out = 0;
  const json_t *v = json_object_get(o, key);
  if (v == NULL)
    return 0;
  const char *s = json_string_value(v);
  char *end = NULL;
  long n = s && s[0] == FJ_DECIMAL_MARK ? strtol(s + 1, &end, 10) : -1;
  if (end == NULL || *end || n < 0 || n > 100000)
    return w_fail(c, 400, "value", w_path(c, path, key, 0),
                  "expected a whole number (an unsignedInt)");
  if (n == 0)
    return w_fail(c, 422, "not-supported", w_path(c, path, key, 0),
                  "0 is written by leaving the element out");
  *out = (int32_t)n;
  return 0;
}

static int dosage(wctx *c, const json_t *v, const char *path, void **out) {
  static const char *const keys[] = {
      "sequence", "text",        "timing", "asNeededBoolean", "asNeededCodeableConcept", "site",
      "route",    "doseAndRate", NULL};
  if (!json_is_object(v))
    return w_fail(c, 400, "structure", path, "expected a Dosage (an object)");
  Clinlog__V1__Dosage *d = w_alloc(c, sizeof *d);
  if (d == NULL)
    return CL_ENOMEM;
  clinlog__v1__dosage__init(d);
  const json_t *timing, *dr;
  size_t ndr;
  int rc, prn;
  if ((rc = w_only(c, v, path, keys, 0)) ||
      (rc = w_str(c, v, path, "text", (const char **)&d->text)) ||
      (rc = w_obj(c, v, path, "timing", &timing)) ||
      (rc = w_bool(c, v, path, "asNeededBoolean", &prn)) ||
      (rc = w_concept(c, v, path, "asNeededCodeableConcept", &d->as_needed_reason)) ||
      (rc = w_concept_code(c, v, path, "site", &d->site)) ||
      (rc = w_concept_code(c, v, path, "route", &d->route)) ||
      (rc = w_arr(c, v, path, "doseAndRate", &dr, &ndr)))
    return rc;
  if (prn == 0 || (prn == 1 && d->as_needed_reason != NULL))
    return w_fail(c, 422, "not-supported", w_path(c, path, "asNeededBoolean", 0),
                  "as needed is asNeededBoolean true, or asNeededCodeableConcept alone");
  d->as_needed = prn == 1 || d->as_needed_reason != NULL;
  if (timing != NULL) {
    const char *tp = w_path(c, path, "timing", 0);
    static const char *const tkeys[] = {"code", "repeat", NULL};
    static const char *const rkeys[] = {"boundsDuration", NULL};
    const json_t *code, *rep;
    if ((rc = w_only(c, timing, tp, tkeys, 0)) || (rc = w_obj(c, timing, tp, "code", &code)) ||
        (rc = w_obj(c, timing, tp, "repeat", &rep)))
      return rc;
    const char *rp = w_path(c, tp, "repeat", 0);
    if (rep != NULL && ((rc = w_only(c, rep, rp, rkeys, 0)) ||
                        (rc = days_of(c, rep, rp, "boundsDuration", &d->duration_days))))
      return rc;
    pb_cc *cc = NULL;
    if (code != NULL && (rc = w_concept(c, timing, tp, "code", &cc)))
      return rc;
    if (cc != NULL && cc->n_coding > 1)
      return w_fail(c, 422, "not-supported", w_path(c, tp, "code", 0),
                    "a timing is written as one coding and its text");
    d->frequency_code = cc && cc->n_coding ? cc->coding[0] : NULL;
    d->frequency = cc ? cc->text : "";
  }
  if (ndr > 1)
    return w_fail(c, 422, "not-supported", w_path(c, path, "doseAndRate", 0),
                  "one doseAndRate can be written");
  if (ndr == 1) {
    const json_t *one = json_array_get(dr, 0);
    const char *dp = w_path(c, w_path(c, path, "doseAndRate", 0), NULL, 0);
    static const char *const dkeys[] = {"doseQuantity", "rateQuantity", NULL};
    const json_t *dose = json_object_get(one, "doseQuantity"),
                 *rate = json_object_get(one, "rateQuantity");
    if (!json_is_object(one))
      return w_fail(c, 400, "structure", dp, "expected an object");
    if ((rc = w_only(c, one, dp, dkeys, 0)) ||
        (dose && (rc = w_quantity(c, dose, w_path(c, dp, "doseQuantity", 0), &d->dose))) ||
        (rate && (rc = w_quantity(c, rate, w_path(c, dp, "rateQuantity", 0), &d->rate))))
      return rc;
    if ((d->dose && d->dose->comparator[0]) || (d->rate && d->rate->comparator[0]))
      return w_fail(c, 400, "invalid", dp, "doses and rates are SimpleQuantity (no comparator)");
  }
  if (d->text == NULL)
    d->text = "";
  *out = d;
  return 0;
}

static const char *const intents[] = {"proposal",       "plan",         "order",
                                      "original-order", "reflex-order", "filler-order",
                                      "instance-order", "option",       NULL};
static const char *const priorities[] = {"routine", "urgent", "asap", "stat", NULL};

int w_medication_request(wctx *c, const json_t *r) {
  static const char *const keys[] = {"identifier",
                                     "status",
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
                                     "substitution",
                                     NULL};
  static const char *const statuses[] = {"active", NULL};
  const char *p = c->root;
  Clinlog__V1__MedicationPrescribed *b = w_alloc(c, sizeof *b);
  if (b == NULL)
    return CL_ENOMEM;
  clinlog__v1__medication_prescribed__init(b);
  int rc, status, intent, prio, allowed = -1;
  const json_t *disp, *subst;
  size_t ncat;
  pb_code **cats;
  pb_ts *authored;
  const json_t *req = json_object_get(r, "requester");
  if ((rc = w_only(c, r, p, keys, 1)) || (rc = w_subject(c, r, p, "subject")) ||
      (rc = w_business_id(c, r, p)) || (rc = w_enum(c, r, p, "status", statuses, &status)) ||
      (rc = w_enum(c, r, p, "intent", intents, &intent)) ||
      (rc = w_enum(c, r, p, "priority", priorities, &prio)) ||
      (rc = w_concepts_code(c, r, p, "category", &cats, &ncat)) ||
      (rc = w_concept(c, r, p, "medicationCodeableConcept", &b->medication)) ||
      (rc = w_encounter(c, r, p, "encounter", (const char **)&b->encounter_id)) ||
      (rc = w_instant(c, r, p, "authoredOn", &authored)) ||
      (req && (rc = w_reference(c, req, w_path(c, p, "requester", 0), &b->prescriber))) ||
      (rc = w_concepts(c, r, p, "reasonCode", &b->reason, &b->n_reason)) ||
      (rc = w_note(c, r, p, (const char **)&b->note_to_pharmacist)) ||
      (rc = w_list(c, r, p, "dosageInstruction", dosage, (void ***)&b->dosage, &b->n_dosage)) ||
      (rc = w_obj(c, r, p, "dispenseRequest", &disp)) ||
      (rc = w_obj(c, r, p, "substitution", &subst)))
    return rc;
  if (status < 0)
    return w_fail(c, 400, "required", w_path(c, p, "status", 0),
                  "required (active: a stop is written as its own event)");
  if (intent < 0)
    return w_fail(c, 400, "required", w_path(c, p, "intent", 0), "required");
  if (b->medication == NULL)
    return w_fail(c, 400, "required", w_path(c, p, "medicationCodeableConcept", 0),
                  "required (medicationReference cannot be written)");
  if (ncat > 1)
    return w_fail(c, 422, "not-supported", w_path(c, w_path(c, p, "category", 0), NULL, 1),
                  "one category can be written");
  b->category = ncat ? cats[0] : NULL;
  static const char *const plac[] = {"PLAC", NULL};
  if ((rc = w_other_ids(c, r, p, plac, &b->placer_order_number,
                        "one identifier (the placer's order number)")))
    return rc;
  for (size_t i = 0; b->n_dosage > 1 && i < b->n_dosage; i++) { /* a taper: in sequence */
    const json_t *seq =
        json_object_get(json_array_get(json_object_get(r, "dosageInstruction"), i), "sequence");
    char want[24];
    snprintf(want, sizeof want, "%c%zu", FJ_DECIMAL_MARK, i + 1);
    if (seq == NULL || !json_is_string(seq) || strcmp(json_string_value(seq), want))
      return w_fail(
          c, 422, "not-supported",
          w_path(c, w_path(c, w_path(c, p, "dosageInstruction", 0), NULL, (long)i), "sequence", 0),
          "dosages are written in order: sequence %zu", i + 1);
  }
  if (b->n_dosage == 1 &&
      json_object_get(json_array_get(json_object_get(r, "dosageInstruction"), 0), "sequence"))
    return w_fail(c, 422, "not-supported", w_path(c, p, "dosageInstruction[0].sequence", 0),
                  "a single dosage has no sequence");
  if (disp != NULL) {
    const char *dp = w_path(c, p, "dispenseRequest", 0);
    static const char *const dkeys[] = {"validityPeriod", "numberOfRepeatsAllowed",
                                        "quantity",       "expectedSupplyDuration",
                                        "performer",      NULL};
    static const char *const vkeys[] = {"start", "end", NULL};
    const json_t *val, *q = json_object_get(disp, "quantity"),
                       *perf = json_object_get(disp, "performer");
    if ((rc = w_only(c, disp, dp, dkeys, 0)) || (rc = w_obj(c, disp, dp, "validityPeriod", &val)) ||
        (rc = count_of(c, disp, dp, "numberOfRepeatsAllowed", &b->refills)) ||
        (q && (rc = w_quantity(c, q, w_path(c, dp, "quantity", 0), &b->quantity))) ||
        (rc = days_of(c, disp, dp, "expectedSupplyDuration", &b->days_supply)) ||
        (perf && (rc = w_reference(c, perf, w_path(c, dp, "performer", 0), &b->pharmacy))))
      return rc;
    if (b->quantity && b->quantity->comparator[0])
      return w_fail(c, 400, "invalid", w_path(c, dp, "quantity", 0),
                    "a SimpleQuantity (no comparator)");
    if (val != NULL) {
      const char *vp = w_path(c, dp, "validityPeriod", 0);
      b->validity = w_alloc(c, sizeof *b->validity);
      if (b->validity == NULL)
        return CL_ENOMEM;
      clinlog__v1__period__init(b->validity);
      if ((rc = w_only(c, val, vp, vkeys, 0)) ||
          (rc = w_instant(c, val, vp, "start", &b->validity->start)) ||
          (rc = w_instant(c, val, vp, "end", &b->validity->end)))
        return rc;
    }
  }
  if (subst != NULL) {
    const char *sp = w_path(c, p, "substitution", 0);
    static const char *const skeys[] = {"allowedBoolean", NULL};
    if ((rc = w_only(c, subst, sp, skeys, 0)) ||
        (rc = w_bool(c, subst, sp, "allowedBoolean", &allowed)))
      return rc;
  }
  b->dispense_as_written = allowed == 0;
  b->intent = (char *)intents[intent];
  b->priority = (Clinlog__V1__RequestPriority)(prio < 0 ? 0 : prio + 1);
  if (b->encounter_id == NULL)
    b->encounter_id = "";
  if (b->note_to_pharmacist == NULL)
    b->note_to_pharmacist = "";
  b->prescription_id = (char *)c->bid;
  if (authored != NULL)
    c->when = authored;
  return w_emit(c, CLINLOG__V1__EVENT__BODY_MEDICATION_PRESCRIBED, b);
}

/* ---- MedicationAdministration -> MedicationAdministered ---- */

#define PERFORM_FUNCTION "http://terminology.hl7.org/CodeSystem/med-admin-perform-function"
/* what the view notes on a partial administration (map_pharmacy.c) */
#define PARTIAL_NOTE "Partially administered"

static int admin_performer(wctx *c, const json_t *v, const char *path,
                           Clinlog__V1__MedicationAdministered *b) {
  static const char *const keys[] = {"function", "actor", NULL};
  static const char *const functions[] = {"verifier", NULL};
  if (!json_is_object(v))
    return w_fail(c, 400, "structure", path, "expected an object");
  int rc, fn;
  Clinlog__V1__Reference *who = NULL;
  const json_t *actor = json_object_get(v, "actor");
  if ((rc = w_only(c, v, path, keys, 0)) ||
      (rc = w_concept_in(c, v, path, "function", PERFORM_FUNCTION, functions, &fn)) ||
      (actor && (rc = w_reference(c, actor, w_path(c, path, "actor", 0), &who))))
    return rc;
  if (who == NULL)
    return w_fail(c, 400, "required", w_path(c, path, "actor", 0), "required");
  Clinlog__V1__Reference **slot = fn == 0 ? &b->witness : &b->performer;
  if (*slot != NULL)
    return w_fail(c, 422, "not-supported", path, "one performer and one verifier can be written");
  *slot = who;
  return 0;
}

int w_medication_administration(wctx *c, const json_t *r) {
  static const char *const keys[] = {"identifier",
                                     "status",
                                     "statusReason",
                                     "medicationCodeableConcept",
                                     "subject",
                                     "context",
                                     "effectiveDateTime",
                                     "effectivePeriod",
                                     "performer",
                                     "request",
                                     "note",
                                     "dosage",
                                     NULL};
  /* by enum value - 1; "completed" with the view's note is PARTIAL (3) */
  static const char *const statuses[] = {"completed", "not-done", "",  "in-progress",
                                         "on-hold",   "stopped",  NULL};
  const char *p = c->root;
  Clinlog__V1__MedicationAdministered *b = w_alloc(c, sizeof *b);
  if (b == NULL)
    return CL_ENOMEM;
  clinlog__v1__medication_administered__init(b);
  int rc, status;
  const json_t *period, *perf, *dosage;
  size_t nperf;
  pb_cc **reasons;
  size_t nreasons;
  const char *note;
  if ((rc = w_only(c, r, p, keys, 1)) || (rc = w_subject(c, r, p, "subject")) ||
      (rc = w_business_id(c, r, p)) || (rc = business_only(c, r, p)) ||
      (rc = w_enum(c, r, p, "status", statuses, &status)) ||
      (rc = w_concepts(c, r, p, "statusReason", &reasons, &nreasons)) ||
      (rc = w_concept(c, r, p, "medicationCodeableConcept", &b->medication)) ||
      (rc = w_encounter(c, r, p, "context", (const char **)&b->encounter_id)) ||
      (rc = w_instant(c, r, p, "effectiveDateTime", &b->administered_at)) ||
      (rc = w_obj(c, r, p, "effectivePeriod", &period)) ||
      (rc = w_arr(c, r, p, "performer", &perf, &nperf)) ||
      (rc = w_ref_bid(c, r, p, "request", "MedicationRequest",
                      (const char **)&b->prescription_id)) ||
      (rc = w_note(c, r, p, &note)) || (rc = w_obj(c, r, p, "dosage", &dosage)))
    return rc;
  if (status < 0 || status == 2)
    return w_fail(c, status < 0 ? 400 : 422, status < 0 ? "required" : "code-invalid",
                  w_path(c, p, "status", 0),
                  "required: completed, not-done, in-progress, "
                  "on-hold or stopped");
  if (b->medication == NULL)
    return w_fail(c, 400, "required", w_path(c, p, "medicationCodeableConcept", 0),
                  "required (medicationReference cannot be written)");
  if (note != NULL && (status != 0 || strcmp(note, PARTIAL_NOTE) != 0))
    return w_fail(c, 422, "not-supported", w_path(c, p, "note", 0),
                  "the one note written is \"" PARTIAL_NOTE "\" on a completed administration");
  b->status = (Clinlog__V1__AdministrationStatus)(note != NULL ? 3 : status + 1);
  if (nreasons > 1)
    return w_fail(c, 422, "not-supported", w_path(c, p, "statusReason[1]", 0),
                  "one statusReason can be written");
  b->not_given_reason = nreasons ? reasons[0] : NULL;
  if (period != NULL) {
    const char *pp = w_path(c, p, "effectivePeriod", 0);
    static const char *const pkeys[] = {"start", "end", NULL};
    if (b->administered_at != NULL)
      return w_fail(c, 400, "invalid", pp, "one effective[x]");
    if ((rc = w_only(c, period, pp, pkeys, 0)) ||
        (rc = w_instant(c, period, pp, "start", &b->administered_at)) ||
        (rc = w_instant(c, period, pp, "end", &b->ended_at)))
      return rc;
    if (b->administered_at == NULL || b->ended_at == NULL)
      return w_fail(c, 422, "not-supported", pp,
                    "a period is written with its start and end (an infusion)");
  }
  if (b->administered_at == NULL)
    return w_fail(c, 400, "required", w_path(c, p, "effectiveDateTime", 0),
                  "required (effectiveDateTime or effectivePeriod)");
  for (size_t i = 0; i < nperf; i++)
    if ((rc = admin_performer(c, json_array_get(perf, i),
                              w_path(c, w_path(c, p, "performer", 0), NULL, (long)i), b)))
      return rc;
  if (dosage != NULL) {
    const char *dp = w_path(c, p, "dosage", 0);
    static const char *const dkeys[] = {"site", "route", "dose", "rateQuantity", NULL};
    const json_t *dose = json_object_get(dosage, "dose"),
                 *rate = json_object_get(dosage, "rateQuantity");
    if ((rc = w_only(c, dosage, dp, dkeys, 0)) ||
        (rc = w_concept_code(c, dosage, dp, "site", &b->site)) ||
        (rc = w_concept_code(c, dosage, dp, "route", &b->route)) ||
        (dose && (rc = w_quantity(c, dose, w_path(c, dp, "dose", 0), &b->dose_given))) ||
        (rate && (rc = w_quantity(c, rate, w_path(c, dp, "rateQuantity", 0), &b->rate))))
      return rc;
    if (b->dose_given == NULL && b->rate == NULL)
      return w_fail(c, 400, "required", dp, "a dose or a rate (mad-1)");
    if ((b->dose_given && b->dose_given->comparator[0]) || (b->rate && b->rate->comparator[0]))
      return w_fail(c, 400, "invalid", dp, "doses and rates are SimpleQuantity (no comparator)");
  }
  if (b->encounter_id == NULL)
    b->encounter_id = "";
  if (b->prescription_id == NULL)
    b->prescription_id = "";
  b->administration_id = (char *)c->bid;
  c->when = b->administered_at;
  return w_emit(c, CLINLOG__V1__EVENT__BODY_MEDICATION_ADMINISTERED, b);
}

/* ---- Immunization -> ImmunizationAdministered (map_clinical.c) ---- */

#define V2_0443 "http://terminology.hl7.org/CodeSystem/v2-0443"

int w_immunization(wctx *c, const json_t *r) {
  static const char *const keys[] = {"identifier",
                                     "status",
                                     "statusReason",
                                     "vaccineCode",
                                     "patient",
                                     "encounter",
                                     "occurrenceDateTime",
                                     "primarySource",
                                     "manufacturer",
                                     "lotNumber",
                                     "expirationDate",
                                     "site",
                                     "route",
                                     "doseQuantity",
                                     "performer",
                                     "note",
                                     "programEligibility",
                                     "protocolApplied",
                                     NULL};
  static const char *const statuses[] = {"completed", "not-done", "entered-in-error", NULL};
  static const char *const functions[] = {"AP", NULL};
  const char *p = c->root;
  Clinlog__V1__ImmunizationAdministered *b = w_alloc(c, sizeof *b);
  if (b == NULL)
    return CL_ENOMEM;
  clinlog__v1__immunization_administered__init(b);
  int rc, status, primary;
  const json_t *mf, *perf, *proto, *dose = json_object_get(r, "doseQuantity");
  size_t nperf, nprog, nproto;
  if ((rc = w_only(c, r, p, keys, 1)) || (rc = w_subject(c, r, p, "patient")) ||
      (rc = w_business_id(c, r, p)) || (rc = business_only(c, r, p)) ||
      (rc = w_enum(c, r, p, "status", statuses, &status)) ||
      (rc = w_concept(c, r, p, "statusReason", &b->status_reason)) ||
      (rc = w_concept(c, r, p, "vaccineCode", &b->vaccine_code)) ||
      (rc = w_encounter(c, r, p, "encounter", (const char **)&b->encounter_id)) ||
      (rc = w_instant(c, r, p, "occurrenceDateTime", &b->administered_at)) ||
      (rc = w_bool(c, r, p, "primarySource", &primary)) ||
      (rc = w_obj(c, r, p, "manufacturer", &mf)) ||
      (rc = w_str(c, r, p, "lotNumber", (const char **)&b->lot_number)) ||
      (rc = w_date(c, r, p, "expirationDate", (const char **)&b->expiration_date)) ||
      (rc = w_concept_code(c, r, p, "site", &b->site)) ||
      (rc = w_concept_code(c, r, p, "route", &b->route)) ||
      (dose && (rc = w_quantity(c, dose, w_path(c, p, "doseQuantity", 0), &b->dose))) ||
      (rc = w_arr(c, r, p, "performer", &perf, &nperf)) ||
      (rc = w_note(c, r, p, (const char **)&b->note)) ||
      (rc = w_arr(c, r, p, "protocolApplied", &proto, &nproto)))
    return rc;
  if (status < 0)
    return w_fail(c, 400, "required", w_path(c, p, "status", 0), "required");
  if (b->vaccine_code == NULL)
    return w_fail(c, 400, "required", w_path(c, p, "vaccineCode", 0), "required");
  if (b->administered_at == NULL)
    return w_fail(c, 400, "required", w_path(c, p, "occurrenceDateTime", 0),
                  "required (occurrenceString cannot be written)");
  if (b->status_reason != NULL && status != 1)
    return w_fail(c, 422, "invalid", w_path(c, p, "statusReason", 0),
                  "a statusReason says why it was not done: status not-done");
  if (primary == 0)
    return w_fail(c, 422, "not-supported", w_path(c, p, "primarySource", 0),
                  "a historical record (primarySource false) is written by leaving it out");
  if (b->dose && b->dose->comparator[0])
    return w_fail(c, 400, "invalid", w_path(c, p, "doseQuantity", 0),
                  "a SimpleQuantity (no comparator)");
  if (mf != NULL) { /* the MVX code as the Organization's identifier */
    const char *mp = w_path(c, p, "manufacturer", 0), *mip = w_path(c, mp, "identifier", 0);
    static const char *const mkeys[] = {"identifier", "display", NULL};
    static const char *const ikeys[] = {"system", "value", NULL};
    const json_t *ident;
    b->manufacturer = w_alloc(c, sizeof *b->manufacturer);
    if (b->manufacturer == NULL)
      return CL_ENOMEM;
    clinlog__v1__code__init(b->manufacturer);
    const char *sys = NULL, *val = NULL, *disp = NULL;
    if ((rc = w_only(c, mf, mp, mkeys, 0)) || (rc = w_obj(c, mf, mp, "identifier", &ident)) ||
        (rc = w_str(c, mf, mp, "display", &disp)) ||
        (ident &&
         ((rc = w_only(c, ident, mip, ikeys, 0)) || (rc = w_str(c, ident, mip, "system", &sys)) ||
          (rc = w_str(c, ident, mip, "value", &val)))))
      return rc;
    if (ident != NULL && val == NULL)
      return w_fail(c, 400, "required", w_path(c, mip, "value", 0), "the manufacturer's code");
    b->manufacturer->system = (char *)(sys ? sys : "");
    b->manufacturer->code = (char *)(val ? val : "");
    b->manufacturer->display = (char *)(disp ? disp : "");
  }
  if (nperf > 1)
    return w_fail(c, 422, "not-supported", w_path(c, p, "performer[1]", 0),
                  "one performer (the administering provider) can be written");
  if (nperf == 1) {
    const json_t *pf = json_array_get(perf, 0);
    const char *pp = w_path(c, p, "performer[0]", 0);
    static const char *const pkeys[] = {"function", "actor", NULL};
    const json_t *actor = json_object_get(pf, "actor");
    int fn;
    if (!json_is_object(pf))
      return w_fail(c, 400, "structure", pp, "expected an object");
    if ((rc = w_only(c, pf, pp, pkeys, 0)) ||
        (rc = w_concept_in(c, pf, pp, "function", V2_0443, functions, &fn)) ||
        (actor && (rc = w_reference(c, actor, w_path(c, pp, "actor", 0), &b->performer))))
      return rc;
    if (fn < 0 || b->performer == NULL)
      return w_fail(c, 422, "not-supported", pp,
                    "the performer written is the administering provider (function AP of " V2_0443
                    ") with its actor");
  }
  pb_code **elig;
  if ((rc = w_concepts_code(c, r, p, "programEligibility", &elig, &nprog)))
    return rc;
  if (nprog > 1)
    return w_fail(c, 422, "not-supported", w_path(c, p, "programEligibility[1]", 0),
                  "one programEligibility can be written");
  b->funding_eligibility = nprog ? elig[0] : NULL;
  if (nproto > 1)
    return w_fail(c, 422, "not-supported", w_path(c, p, "protocolApplied[1]", 0),
                  "one protocolApplied (the dose number) can be written");
  if (nproto == 1) {
    const json_t *pa = json_array_get(proto, 0);
    const char *pp = w_path(c, p, "protocolApplied[0]", 0);
    static const char *const akeys[] = {"doseNumberPositiveInt", "doseNumberString", NULL};
    const json_t *n = json_object_get(pa, "doseNumberPositiveInt");
    if (!json_is_object(pa))
      return w_fail(c, 400, "structure", pp, "expected an object");
    if ((rc = w_only(c, pa, pp, akeys, 0)) ||
        (rc = w_str(c, pa, pp, "doseNumberString", (const char **)&b->dose_number)))
      return rc;
    if (n != NULL) {
      const char *s = json_string_value(n);
      if (b->dose_number != NULL || s == NULL || s[0] != FJ_DECIMAL_MARK || s[1] < '1' ||
          s[1] > '9' || strspn(s + 1, "0123456789") != strlen(s + 1) || strlen(s + 1) > 9)
        return w_fail(c, 400, "value", w_path(c, pp, "doseNumberPositiveInt", 0),
                      "a positiveInt, and one doseNumber[x]");
      b->dose_number = (char *)s + 1;
    } else if (b->dose_number == NULL) {
      return w_fail(c, 400, "required", pp, "a doseNumber[x]");
    } else if (strspn(b->dose_number, "0123456789") == strlen(b->dose_number) &&
               b->dose_number[0] > '0' && strlen(b->dose_number) < 10) {
      return w_fail(c, 422, "not-supported", w_path(c, pp, "doseNumberString", 0),
                    "a whole dose number is written as doseNumberPositiveInt");
    }
  }
  b->status = (Clinlog__V1__ImmunizationStatus)(status + 1);
  b->primary_source = primary == 1;
  if (b->encounter_id == NULL)
    b->encounter_id = "";
  if (b->lot_number == NULL)
    b->lot_number = "";
  if (b->expiration_date == NULL)
    b->expiration_date = "";
  if (b->note == NULL)
    b->note = "";
  if (b->dose_number == NULL)
    b->dose_number = "";
  b->immunization_id = (char *)c->bid;
  c->when = b->administered_at;
  return w_emit(c, CLINLOG__V1__EVENT__BODY_IMMUNIZATION_ADMINISTERED, b);
}

/* ---- MedicationDispense -> MedicationDispensed (map_pharmacy.c) ---- */

#define EXT_FILL_NUMBER FJ_CLINLOG_EXT "fill-number"
#define EXT_BATCH FJ_CLINLOG_EXT "medication-batch"
#define ACT_CODE "http://terminology.hl7.org/CodeSystem/v3-ActCode"

/* The view's extensions of a dispense: the fill number (always) and the
 * product's lot and expiry. */
static int dispense_exts(wctx *c, const json_t *r, const char *p,
                         Clinlog__V1__MedicationDispensed *b, int *has_fill) {
  const json_t *exts;
  size_t n;
  int rc = w_arr(c, r, p, "extension", &exts, &n);
  *has_fill = 0;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    const json_t *e = json_array_get(exts, i);
    const char *ep = w_path(c, w_path(c, p, "extension", 0), NULL, (long)i), *url;
    if (!json_is_object(e))
      return w_fail(c, 400, "structure", ep, "expected an Extension (an object)");
    if ((rc = w_str(c, e, ep, "url", &url)) != 0)
      return rc;
    if (url && !strcmp(url, EXT_FILL_NUMBER) && !*has_fill) {
      static const char *const keys[] = {"url", "valueUnsignedInt", NULL};
      const char *v = json_string_value(json_object_get(e, "valueUnsignedInt"));
      char *end = NULL;
      long k = v && v[0] == FJ_DECIMAL_MARK ? strtol(v + 1, &end, 10) : -1;
      if ((rc = w_only(c, e, ep, keys, 0)) != 0)
        return rc;
      if (end == NULL || *end || k < 0 || k > 1000)
        return w_fail(c, 400, "value", w_path(c, ep, "valueUnsignedInt", 0),
                      "the fill number: a whole number (0: the original fill)");
      b->fill_number = (int32_t)k;
      *has_fill = 1;
    } else if (url && !strcmp(url, EXT_BATCH) && b->lot_number[0] == '\0' &&
               b->expiration_date[0] == '\0') {
      static const char *const keys[] = {"url", "extension", NULL};
      const json_t *subs;
      size_t ns;
      if ((rc = w_only(c, e, ep, keys, 0)) || (rc = w_arr(c, e, ep, "extension", &subs, &ns)))
        return rc;
      for (size_t j = 0; j < ns; j++) {
        const json_t *s = json_array_get(subs, j);
        const char *sp = w_path(c, w_path(c, ep, "extension", 0), NULL, (long)j), *su;
        if (!json_is_object(s))
          return w_fail(c, 400, "structure", sp, "expected an Extension (an object)");
        if ((rc = w_str(c, s, sp, "url", &su)) != 0)
          return rc;
        static const char *const lkeys[] = {"url", "valueString", NULL};
        static const char *const dkeys[] = {"url", "valueDate", NULL};
        if (su && !strcmp(su, "lotNumber")) {
          if ((rc = w_only(c, s, sp, lkeys, 0)) == 0)
            rc = w_str(c, s, sp, "valueString", (const char **)&b->lot_number);
        } else if (su && !strcmp(su, "expirationDate")) {
          if ((rc = w_only(c, s, sp, dkeys, 0)) == 0)
            rc = w_date(c, s, sp, "valueDate", (const char **)&b->expiration_date);
        } else {
          rc = w_fail(c, 422, "not-supported", w_path(c, sp, "url", 0),
                      "the batch extension holds lotNumber and expirationDate");
        }
        if (rc)
          return rc;
        if (b->lot_number == NULL)
          b->lot_number = "";
        if (b->expiration_date == NULL)
          b->expiration_date = "";
      }
    } else {
      return w_fail(c, 422, "not-supported", w_path(c, ep, "url", 0),
                    "extensions written: " EXT_FILL_NUMBER " and " EXT_BATCH " (once each)");
    }
  }
  return rc;
}

int w_medication_dispense(wctx *c, const json_t *r) {
  static const char *const keys[] = {"extension",
                                     "identifier",
                                     "status",
                                     "medicationCodeableConcept",
                                     "subject",
                                     "performer",
                                     "authorizingPrescription",
                                     "type",
                                     "quantity",
                                     "daysSupply",
                                     "whenHandedOver",
                                     "dosageInstruction",
                                     "substitution",
                                     NULL};
  static const char *const statuses[] = {"completed", NULL};
  static const char *const fills[] = {"FF", "RF", NULL};
  const char *p = c->root;
  Clinlog__V1__MedicationDispensed *b = w_alloc(c, sizeof *b);
  if (b == NULL)
    return CL_ENOMEM;
  clinlog__v1__medication_dispensed__init(b);
  int rc, status, fill, has_fill;
  const json_t *perf, *auth, *subst, *q = json_object_get(r, "quantity");
  size_t nperf, nauth;
  if ((rc = w_only(c, r, p, keys, 1)) || (rc = w_subject(c, r, p, "subject")) ||
      (rc = w_business_id(c, r, p)) || (rc = business_only(c, r, p)) ||
      (rc = dispense_exts(c, r, p, b, &has_fill)) ||
      (rc = w_enum(c, r, p, "status", statuses, &status)) ||
      (rc = w_concept(c, r, p, "medicationCodeableConcept", &b->medication)) ||
      (rc = w_arr(c, r, p, "performer", &perf, &nperf)) ||
      (rc = w_arr(c, r, p, "authorizingPrescription", &auth, &nauth)) ||
      (rc = w_concept_in(c, r, p, "type", ACT_CODE, fills, &fill)) ||
      (q && (rc = w_quantity(c, q, w_path(c, p, "quantity", 0), &b->quantity))) ||
      (rc = days_of(c, r, p, "daysSupply", &b->days_supply)) ||
      (rc = w_instant(c, r, p, "whenHandedOver", &b->dispensed_at)) ||
      (rc = w_list(c, r, p, "dosageInstruction", dosage, (void ***)&b->dosage, &b->n_dosage)) ||
      (rc = w_obj(c, r, p, "substitution", &subst)))
    return rc;
  if (status < 0)
    return w_fail(c, 400, "required", w_path(c, p, "status", 0), "required (completed)");
  if (b->medication == NULL)
    return w_fail(c, 400, "required", w_path(c, p, "medicationCodeableConcept", 0),
                  "required (medicationReference cannot be written)");
  if (b->dispensed_at == NULL)
    return w_fail(c, 400, "required", w_path(c, p, "whenHandedOver", 0), "required");
  if (fill >= 0 && fill != (b->fill_number > 0))
    return w_fail(c, 422, "invalid", w_path(c, p, "type", 0),
                  "the fill type says %s, the fill number %d", fills[fill], (int)b->fill_number);
  if (b->n_dosage > 1)
    return w_fail(c, 422, "not-supported", w_path(c, p, "dosageInstruction", 0),
                  "one dosage instruction (the label's) can be written");
  if (b->quantity && b->quantity->comparator[0])
    return w_fail(c, 400, "invalid", w_path(c, p, "quantity", 0),
                  "a SimpleQuantity (no comparator)");
  /* performers: the pharmacy, then the pharmacist (the view's order) */
  if (nperf > 2)
    return w_fail(c, 422, "not-supported", w_path(c, p, "performer[2]", 0),
                  "the pharmacy and the pharmacist can be written");
  for (size_t i = 0; i < nperf; i++) {
    const json_t *pf = json_array_get(perf, i), *actor;
    const char *pp = w_path(c, w_path(c, p, "performer", 0), NULL, (long)i);
    static const char *const pkeys[] = {"actor", NULL};
    if (!json_is_object(pf))
      return w_fail(c, 400, "structure", pp, "expected an object");
    if ((rc = w_only(c, pf, pp, pkeys, 0)) || (rc = w_obj(c, pf, pp, "actor", &actor)))
      return rc;
    if (actor == NULL)
      return w_fail(c, 400, "required", w_path(c, pp, "actor", 0), "required");
    if ((rc = w_reference(c, actor, w_path(c, pp, "actor", 0),
                          i == 0 ? &b->pharmacy : &b->dispenser)))
      return rc;
  }
  if (nauth > 1)
    return w_fail(c, 422, "not-supported", w_path(c, p, "authorizingPrescription[1]", 0),
                  "one prescription can be written");
  if (nauth == 1) {
    json_t *holder = json_pack("{s:O}", "authorizingPrescription", json_array_get(auth, 0));
    rc = holder ? w_ref_bid(c, holder, p, "authorizingPrescription", "MedicationRequest",
                            (const char **)&b->prescription_id)
                : CL_ENOMEM;
    if (rc == CL_EMALFORMED && c->fe) /* the element is the array's first */
      snprintf(c->fe->expression, sizeof c->fe->expression, "%s.authorizingPrescription[0]%s", p,
               strstr(c->fe->expression, ".reference") ? ".reference" : "");
    json_decref(holder);
    if (rc)
      return rc;
  }
  if (subst != NULL) {
    const char *sp = w_path(c, p, "substitution", 0);
    static const char *const skeys[] = {"wasSubstituted", NULL};
    int was;
    if ((rc = w_only(c, subst, sp, skeys, 0)) ||
        (rc = w_bool(c, subst, sp, "wasSubstituted", &was)))
      return rc;
    if (was != 1)
      return w_fail(c, 422, "not-supported", sp,
                    "written as wasSubstituted true, or left out (not substituted)");
    b->substituted = 1;
  }
  if (b->lot_number == NULL)
    b->lot_number = "";
  if (b->expiration_date == NULL)
    b->expiration_date = "";
  if (b->prescription_id == NULL)
    b->prescription_id = "";
  b->dispense_id = (char *)c->bid;
  c->when = b->dispensed_at;
  return w_emit(c, CLINLOG__V1__EVENT__BODY_MEDICATION_DISPENSED, b);
}

/* adapters/hl7v2/map.c, map_orders.c, map_results.c, map_types.c: every
 * message type of the corpus in tests/adapters/hl7v2/ becomes the exact
 * catalog events it means (type, stream, ids, codes with their systems,
 * values, units, times converted with their offsets), mapping is
 * deterministic (same bytes, same event ids: a resend is idempotent), and
 * every refusal names its segment, field, component and table 0357 code
 * with nothing produced. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/hl7v2/ack.h"
#include "adapters/hl7v2/map.h"
#include "clinlog/v1/event.pb-c.h"
#include "hl7v2_fixture.h"
#include "store/alloc.h"
#include "store/event.h"

TestSuite(hl7v2_map, .timeout = 60);

#define LOINC "http://loinc.org"
#define V3INT "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"

static const cl_hl7_map_opts OPTS = {.principal_id = "hl7-feed"};

typedef struct mapped {
  cl_hl7_mapped *r;
  Clinlog__V1__Event *ev[64];
  size_t n;
} mapped;

static void load(mapped *out, cl_hl7_msg *m) {
  cl_hl7_error e;
  cl_err err;
  int rc = cl_hl7_map(m, &OPTS, &out->r, &e, &err);
  cr_assert_eq(rc, 0, "map: %s", err.msg);
  cr_assert_leq(out->r->n, 64);
  out->n = out->r->n;
  for (size_t i = 0; i < out->n; i++) {
    Clinlog__V1__Event *ev;
    /* the store's own validation accepts every event */
    cr_assert_eq(cl_event_decode(out->r->ev[i].bytes, out->r->ev[i].len, &ev, &err), 0,
                 "event %zu: %s", i, err.msg);
    out->ev[i] = ev;
    cr_assert_eq(out->r->ev[i].type, (uint32_t)ev->body_case);
    cr_assert_str_eq(out->r->ev[i].stream, ev->stream);
    cr_assert_eq(memcmp(out->r->ev[i].event_id, ev->event_id.data, 16), 0);
  }
  cl_hl7_free(m);
}

static void map_file(mapped *out, const char *name) { load(out, hl7t_load(name)); }

static void done(mapped *m) {
  for (size_t i = 0; i < m->n; i++)
    clinlog__v1__event__free_unpacked(m->ev[i], NULL);
  cl_hl7_mapped_free(m->r);
}

/* The envelope every event of a message shares. */
static void envelope(const mapped *m, const char *stream, const char *app, const char *fac,
                     const char *ctl) {
  uint8_t corr[16];
  cl_hl7_event_id(app, fac, ctl, UINT32_MAX, corr);
  for (size_t i = 0; i < m->n; i++) {
    const Clinlog__V1__Event *e = m->ev[i];
    uint8_t id[16];
    cl_hl7_event_id(app, fac, ctl, (uint32_t)i, id);
    cr_assert_eq(memcmp(e->event_id.data, id, 16), 0, "event id %zu", i);
    cr_assert_eq(id[6] >> 4, 8, "a version 8 UUID");
    cr_assert_eq(id[8] >> 6, 2, "RFC 9562 variant");
    cr_assert_eq(e->correlation_id.len, 16);
    cr_assert_eq(memcmp(e->correlation_id.data, corr, 16), 0);
    cr_assert_str_eq(e->stream, stream);
    cr_assert_str_eq(e->source_system, app);
    cr_assert_str_eq(e->source_facility, fac);
    cr_assert_str_eq(e->source_message_id, ctl);
    cr_assert_str_eq(e->recorded_by->principal_id, "hl7-feed");
    cr_assert_str_eq(e->recorded_by->role, "integration");
    cr_assert_not_null(e->occurred_at);
  }
}

static void code_is(const Clinlog__V1__Code *k, const char *sys, const char *code,
                    const char *display) {
  cr_assert_not_null(k);
  cr_assert_str_eq(k->system, sys);
  cr_assert_str_eq(k->code, code);
  if (display)
    cr_assert_str_eq(k->display, display);
}

/* 2026-12-04T13:29:00Z and friends as seconds, computed independently. */
#define DAY_20261204 1796342400LL
static void ts_is(const Google__Protobuf__Timestamp *t, int64_t secs) {
  cr_assert_not_null(t);
  cr_assert_eq(t->seconds, secs, "got %lld want %lld", (long long)t->seconds, (long long)secs);
}

Test(hl7v2_map, adt_a01_registers_the_patient_starts_the_encounter_with_allergies_diagnoses) {
  mapped m;
  map_file(&m, "adt_a01.hl7");
  cr_assert_eq(m.n, 4);
  envelope(&m, "patient-STMARYS-123456", "EPIC", "STMARYS", "MSG00001");
  cr_assert_str_eq(m.r->patient_id, "STMARYS-123456");
  const Clinlog__V1__Event *e = m.ev[0];
  cr_assert_eq(e->body_case, CLINLOG__V1__EVENT__BODY_PATIENT_REGISTERED);
  ts_is(e->occurred_at, DAY_20261204 + 13 * 3600 + 29 * 60); /* EVN-2 08:29 -0500 */
  const Clinlog__V1__PatientRegistered *p = e->patient_registered;
  cr_assert_str_eq(p->patient_id, "STMARYS-123456");
  cr_assert_eq(p->n_identifiers, 2);
  cr_assert_str_eq(p->identifiers[0]->value, "123456");
  cr_assert_str_eq(p->identifiers[0]->type, "MR");
  cr_assert_str_eq(p->identifiers[0]->assigner, "STMARYS");
  cr_assert_str_eq(p->identifiers[1]->system, "http://hl7.org/fhir/sid/us-ssn");
  cr_assert_str_eq(p->names[0]->family, "O'Brien");
  cr_assert_eq(p->names[0]->n_given, 2);
  cr_assert_str_eq(p->names[0]->given[1], "Anne");
  cr_assert_str_eq(p->names[0]->prefix, "Mrs.");
  cr_assert_str_eq(p->birth_date, "1960-03-15");
  cr_assert_eq(p->gender, CLINLOG__V1__ADMINISTRATIVE_GENDER__ADMINISTRATIVE_GENDER_FEMALE);
  cr_assert_str_eq(p->addresses[0]->city, "Springfield");
  cr_assert_str_eq(p->addresses[0]->use, "home");
  cr_assert_eq(p->n_telecom, 2);
  cr_assert_str_eq(p->telecom[0]->value, "+1 217 5551234");
  cr_assert_str_eq(p->telecom[1]->system, "email");
  cr_assert_str_eq(p->telecom[1]->value, "mary@example.org");
  code_is(p->marital_status, "http://terminology.hl7.org/CodeSystem/v2-0002", "M", NULL);
  cr_assert_eq(p->n_contacts, 1);
  code_is(p->contacts[0]->relationship, "http://terminology.hl7.org/CodeSystem/v2-0063", "SPO",
          "Spouse");
  cr_assert_str_eq(p->contacts[0]->name->family, "Müller");
  e = m.ev[1];
  cr_assert_eq(e->body_case, CLINLOG__V1__EVENT__BODY_ENCOUNTER_STARTED);
  const Clinlog__V1__EncounterStarted *s = e->encounter_started;
  cr_assert_str_eq(s->encounter_id, "VN5566");
  code_is(s->encounter_class, "http://terminology.hl7.org/CodeSystem/v3-ActCode", "IMP", NULL);
  cr_assert_str_eq(s->location->point_of_care, "4WEST");
  cr_assert_str_eq(s->location->room, "412");
  cr_assert_str_eq(s->location->bed, "B");
  cr_assert_str_eq(s->location->facility, "STMARYS");
  cr_assert_str_eq(s->attending->identifier->value, "1234");
  cr_assert_str_eq(s->attending->display, "Dr. Marcus Welby");
  cr_assert_str_eq(s->visit_number->value, "VN5566");
  ts_is(s->start, DAY_20261204 + 8 * 3600 + 29 * 60); /* no offset: read as UTC */
  ts_is(e->occurred_at, s->start->seconds);
  code_is(s->hospital_service, "http://terminology.hl7.org/CodeSystem/v2-0069", "MED", NULL);
  /* AL1 and DG1 */
  cr_assert_eq(m.ev[2]->body_case, CLINLOG__V1__EVENT__BODY_ALLERGY_RECORDED);
  const Clinlog__V1__AllergyRecorded *al = m.ev[2]->allergy_recorded;
  cr_assert_str_eq(al->allergy_id, "70618");
  code_is(al->substance->coding[0], "http://www.nlm.nih.gov/research/umls/rxnorm", "70618",
          "Penicillin");
  cr_assert_eq(al->category, CLINLOG__V1__ALLERGY_CATEGORY__ALLERGY_CATEGORY_MEDICATION);
  cr_assert_eq(al->criticality, CLINLOG__V1__ALLERGY_CRITICALITY__ALLERGY_CRITICALITY_HIGH);
  cr_assert_eq(al->n_reactions, 1);
  cr_assert_eq(al->reactions[0]->severity,
               CLINLOG__V1__REACTION_SEVERITY__REACTION_SEVERITY_SEVERE);
  cr_assert_str_eq(al->reactions[0]->manifestation[0]->text, "Hives");
  cr_assert_str_eq(al->encounter_id, "VN5566");
  cr_assert_eq(m.ev[3]->body_case, CLINLOG__V1__EVENT__BODY_CONDITION_DIAGNOSED);
  const Clinlog__V1__ConditionDiagnosed *dg = m.ev[3]->condition_diagnosed;
  cr_assert_str_eq(dg->condition_id, "I10");
  code_is(dg->code->coding[0], "http://hl7.org/fhir/sid/icd-10-cm", "I10", NULL);
  code_is(dg->diagnosis_type, "http://terminology.hl7.org/CodeSystem/v2-0052", "A", NULL);
  cr_assert_eq(
      dg->verification_status,
      CLINLOG__V1__CONDITION_VERIFICATION_STATUS__CONDITION_VERIFICATION_STATUS_PROVISIONAL);
  code_is(dg->category, "http://terminology.hl7.org/CodeSystem/condition-category",
          "encounter-diagnosis", NULL);
  ts_is(m.ev[3]->occurred_at, DAY_20261204); /* DG1-5 */
  done(&m);
}

Test(hl7v2_map, a_default_offset_applies_to_times_sent_without_one) {
  cl_hl7_msg *msg = hl7t_load("adt_a01.hl7");
  cl_hl7_map_opts o = {.principal_id = "hl7-feed", .default_offset_min = -300};
  cl_hl7_mapped *r;
  cl_err err;
  cr_assert_eq(cl_hl7_map(msg, &o, &r, NULL, &err), 0, "%s", err.msg);
  Clinlog__V1__Event *e = clinlog__v1__event__unpack(NULL, r->ev[1].len, r->ev[1].bytes);
  ts_is(e->encounter_started->start, DAY_20261204 + 13 * 3600 + 29 * 60);
  clinlog__v1__event__free_unpacked(e, NULL);
  cl_hl7_mapped_free(r);
  cl_hl7_free(msg);
}

Test(hl7v2_map, adt_latin1_and_v27_messages_map_too) {
  mapped m;
  map_file(&m, "adt_a01_latin1.hl7");
  cr_assert_str_eq(m.ev[0]->stream, "patient-CLINIQUE-778899");
  cr_assert_str_eq(m.ev[0]->patient_registered->names[0]->given[0], "José");
  cr_assert_str_eq(m.ev[1]->encounter_started->encounter_id, "LAT1001"); /* no PV1-19: MSH-10 */
  done(&m);
  map_file(&m, "adt_a04_v27.hl7");
  cr_assert_eq(m.n, 2);
  code_is(m.ev[1]->encounter_started->encounter_class,
          "http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB", NULL);
  cr_assert_str_eq(m.ev[1]->encounter_started->location->room, "Suite #4");
  done(&m);
}

Test(hl7v2_map, adt_a03_ends_the_encounter) {
  mapped m;
  map_file(&m, "adt_a03.hl7");
  cr_assert_eq(m.n, 1);
  envelope(&m, "patient-STMARYS-123456", "EPIC", "STMARYS", "MSG00003");
  const Clinlog__V1__EncounterEnded *b = m.ev[0]->encounter_ended;
  cr_assert_eq(m.ev[0]->body_case, CLINLOG__V1__EVENT__BODY_ENCOUNTER_ENDED);
  cr_assert_str_eq(b->encounter_id, "VN5566");
  ts_is(b->end, DAY_20261204 + 2 * 86400 + 15 * 3600 + 45 * 60);
  code_is(b->discharge_disposition, "https://www.nubc.org/CodeSystem/PatDischargeStatus", "01",
          "Discharged to home");
  cr_assert_str_eq(b->discharged_to->facility, "HOMECARE");
  done(&m);
}

/* ADT^A11 and A13: the encounter by its visit number, as the v2-to-FHIR IG
 * maps table 0003 (A11 cancelled, A13 in-progress again) */
Test(hl7v2_map, adt_a11_and_a13_cancel_the_admission_or_the_discharge) {
  mapped m;
  map_file(&m, "adt_a11.hl7");
  cr_assert_eq(m.n, 1);
  envelope(&m, "patient-STMARYS-123456", "EPIC", "STMARYS", "MSG00011");
  cr_assert_eq(m.ev[0]->body_case, CLINLOG__V1__EVENT__BODY_ENCOUNTER_CANCELLED);
  const Clinlog__V1__EncounterCancelled *c = m.ev[0]->encounter_cancelled;
  cr_assert_str_eq(c->encounter_id, "VN5566");
  code_is(c->reason, "http://terminology.hl7.org/CodeSystem/v2-0062", "02",
          "Physician/health practitioner order");
  /* EVN-6, when it happened, 11:55 -0500 (not EVN-2, 11:59) */
  ts_is(m.ev[0]->occurred_at, DAY_20261204 + 2 * 86400 + 16 * 3600 + 55 * 60);
  done(&m);
  map_file(&m, "adt_a13.hl7");
  cr_assert_eq(m.n, 1);
  envelope(&m, "patient-STMARYS-123456", "EPIC", "STMARYS", "MSG00013");
  cr_assert_eq(m.ev[0]->body_case, CLINLOG__V1__EVENT__BODY_ENCOUNTER_DISCHARGE_CANCELLED);
  const Clinlog__V1__EncounterDischargeCancelled *d = m.ev[0]->encounter_discharge_cancelled;
  cr_assert_str_eq(d->encounter_id, "VN5566");
  code_is(d->reason, "http://terminology.hl7.org/CodeSystem/v2-0062", "01", "Patient request");
  ts_is(m.ev[0]->occurred_at, DAY_20261204 + 2 * 86400 + 17 * 3600 + 59 * 60); /* EVN-2 */
  done(&m);
}

Test(hl7v2_map, adt_a08_and_a31_update_only_what_was_sent) {
  mapped m;
  map_file(&m, "adt_a08_crlf.hl7");
  cr_assert_eq(m.n, 1);
  const Clinlog__V1__PatientDemographicsUpdated *u = m.ev[0]->patient_demographics_updated;
  cr_assert_eq(m.ev[0]->body_case, CLINLOG__V1__EVENT__BODY_PATIENT_DEMOGRAPHICS_UPDATED);
  const char *want[] = {"identifiers", "names", "birth_date", "gender", "telecom"};
  cr_assert_eq(u->n_updated_fields, 5);
  for (size_t i = 0; i < 5; i++)
    cr_assert_str_eq(u->updated_fields[i], want[i]);
  /* PID-13 "" clears the home phones; PID-14 is the work phone */
  cr_assert_eq(u->n_telecom, 1);
  cr_assert_str_eq(u->telecom[0]->use, "work");
  done(&m);
  map_file(&m, "adt_a31.hl7");
  u = m.ev[0]->patient_demographics_updated;
  cr_assert_str_eq(m.ev[0]->stream, "patient-STMARYS-AB-77"); /* no MR: the PI identifier */
  cr_assert_str_eq(u->names[1]->use, "nickname");
  cr_assert_str_eq(u->telecom[0]->use, "home");
  ts_is(m.ev[0]->occurred_at, DAY_20261204 + 2 * 86400 + 11 * 3600); /* 12:00 +0100 */
  done(&m);
}

Test(hl7v2_map, orm_o01_orders_a_service_and_a_medication) {
  mapped m;
  map_file(&m, "orm_o01.hl7");
  cr_assert_eq(m.n, 2);
  envelope(&m, "patient-STMARYS-123456", "CPOE", "STMARYS", "ORM1001");
  const Clinlog__V1__ServiceOrdered *s = m.ev[0]->service_ordered;
  cr_assert_eq(m.ev[0]->body_case, CLINLOG__V1__EVENT__BODY_SERVICE_ORDERED);
  cr_assert_str_eq(s->order_id, "ORD4411");
  code_is(s->code->coding[0], LOINC, "24323-8", "Comprehensive metabolic panel");
  cr_assert_eq(s->priority, CLINLOG__V1__REQUEST_PRIORITY__REQUEST_PRIORITY_STAT);
  code_is(s->reason[0]->coding[0], "http://hl7.org/fhir/sid/icd-10-cm", "I10", NULL);
  cr_assert_str_eq(s->requester->identifier->system, "http://hl7.org/fhir/sid/us-npi");
  cr_assert_str_eq(s->encounter_id, "VN5566");
  ts_is(m.ev[0]->occurred_at, DAY_20261204 + 14 * 3600);
  const Clinlog__V1__MedicationPrescribed *p = m.ev[1]->medication_prescribed;
  cr_assert_eq(m.ev[1]->body_case, CLINLOG__V1__EVENT__BODY_MEDICATION_PRESCRIBED);
  cr_assert_str_eq(p->prescription_id, "ORD4412");
  code_is(p->medication->coding[0], "http://www.nlm.nih.gov/research/umls/rxnorm", "197361", NULL);
  cr_assert_str_eq(p->dosage[0]->dose->value, "5");
  cr_assert_str_eq(p->dosage[0]->dose->unit, "mg");
  code_is(p->dosage[0]->route, "http://terminology.hl7.org/CodeSystem/v2-0162", "PO", "Oral");
  cr_assert_str_eq(p->dosage[0]->frequency, "QD");
  cr_assert_str_eq(p->quantity->value, "30");
  cr_assert_str_eq(p->quantity->unit_system, "http://terminology.hl7.org/CodeSystem/v2-0292");
  cr_assert_eq(p->refills, 1);
  cr_assert(p->dispense_as_written);
  ts_is(p->validity->start, DAY_20261204 + 17 * 3600);
  cr_assert_eq(p->priority, CLINLOG__V1__REQUEST_PRIORITY__REQUEST_PRIORITY_ROUTINE);
  done(&m);
}

Test(hl7v2_map, rde_o11_prescribes_and_dc_discontinues) {
  mapped m;
  map_file(&m, "rde_o11.hl7");
  cr_assert_eq(m.n, 1);
  const Clinlog__V1__MedicationPrescribed *p = m.ev[0]->medication_prescribed;
  cr_assert_str_eq(p->prescription_id, "ORD5501");
  cr_assert_str_eq(p->placer_order_number->value, "ORD5501");
  cr_assert_str_eq(p->placer_order_number->assigner, "EPIC");
  cr_assert_str_eq(p->dosage[0]->frequency, "Q8H");
  code_is(p->dosage[0]->frequency_code, "http://terminology.hl7.org/CodeSystem/v2-0335", "Q8H",
          "Every 8 hours");
  cr_assert_eq(p->refills, 2);
  cr_assert_str_eq(p->prescriber->display, "Marcus Welby");
  done(&m);
  map_file(&m, "rde_o11_dc.hl7");
  cr_assert_eq(m.n, 1);
  cr_assert_eq(m.ev[0]->body_case, CLINLOG__V1__EVENT__BODY_MEDICATION_DISCONTINUED);
  const Clinlog__V1__MedicationDiscontinued *d = m.ev[0]->medication_discontinued;
  cr_assert_str_eq(d->prescription_id, "ORD5501");
  code_is(d->reason->coding[0], "http://terminology.hl7.org/CodeSystem/v2-0119", "ADR", NULL);
  ts_is(d->effective, DAY_20261204 + 86400 + 8 * 3600);
  done(&m);
}

Test(hl7v2_map, ras_o17_records_the_administration_with_its_barcodes) {
  mapped m;
  map_file(&m, "ras_o17_bcma.hl7");
  cr_assert_eq(m.n, 1);
  envelope(&m, "patient-STMARYS-123456", "BCMA", "STMARYS", "BCMA301");
  const Clinlog__V1__MedicationAdministered *a = m.ev[0]->medication_administered;
  cr_assert_eq(m.ev[0]->body_case, CLINLOG__V1__EVENT__BODY_MEDICATION_ADMINISTERED);
  cr_assert_str_eq(a->prescription_id, "ORD5501");
  cr_assert_str_eq(a->scanned_wristband_id, "MRN123456-WB");
  cr_assert_str_eq(a->scanned_product_barcode, "(01)00300691530301(17)281231(10)LOT88A2");
  cr_assert_eq(a->medication->n_coding, 2);
  code_is(a->medication->coding[0], "http://hl7.org/fhir/sid/ndc", "00069-1530-30", NULL);
  code_is(a->medication->coding[1], "http://www.nlm.nih.gov/research/umls/rxnorm", "197361", NULL);
  cr_assert_str_eq(a->dose_given->value, "5");
  code_is(a->route, "http://terminology.hl7.org/CodeSystem/v2-0162", "PO", NULL);
  code_is(a->site, "http://terminology.hl7.org/CodeSystem/v2-0163", "LA", NULL);
  ts_is(a->administered_at, DAY_20261204 + 86400 + 1 * 3600 + 2 * 60); /* 20:02 -0500 */
  ts_is(a->ended_at, DAY_20261204 + 86400 + 1 * 3600 + 3 * 60);
  cr_assert_eq(a->status, CLINLOG__V1__ADMINISTRATION_STATUS__ADMINISTRATION_STATUS_COMPLETED);
  cr_assert_str_eq(a->lot_number, "LOT88A2");
  cr_assert_str_eq(a->performer->display, "Florence Nightingale");
  cr_assert_str_eq(a->encounter_id, "VN5566");
  cr_assert_str_eq(a->administration_id, "ORD5501-20261204200200-0500-1");
  done(&m);
  map_file(&m, "ras_o17.hl7"); /* v2.5.1, no barcodes */
  cr_assert_str_eq(m.ev[0]->medication_administered->scanned_product_barcode, "");
  done(&m);
}

Test(hl7v2_map, oru_r01_maps_every_obx_by_value_type) {
  mapped m;
  map_file(&m, "oru_r01_lf.hl7");
  cr_assert_eq(m.n, 1);
  envelope(&m, "patient-STMARYS-123456", "LAB", "STMARYS", "LAB7781");
  cr_assert_eq(m.ev[0]->body_case, CLINLOG__V1__EVENT__BODY_LAB_RESULT_REPORTED);
  const Clinlog__V1__LabResultReported *b = m.ev[0]->lab_result_reported;
  cr_assert_str_eq(b->report_id, "LAB7781");
  code_is(b->code->coding[0], LOINC, "24323-8", NULL);
  cr_assert_str_eq(b->placer_order_number->value, "ORD4411");
  cr_assert_str_eq(b->order_id, "ORD4411");
  ts_is(b->effective, DAY_20261204 + 9 * 3600 + 30 * 60);
  cr_assert_eq(b->n_results, 7);
  Clinlog__V1__LabResult *const *r = b->results;
  /* NM with UCUM unit, range, flag, time */
  cr_assert_str_eq(r[0]->observation_id, "LAB7781-1");
  code_is(r[0]->code->coding[0], LOINC, "2345-7", "Glucose");
  cr_assert_eq(r[0]->value_case, CLINLOG__V1__LAB_RESULT__VALUE_QUANTITY);
  cr_assert_str_eq(r[0]->quantity->value, "98");
  cr_assert_str_eq(r[0]->quantity->unit, "mg/dL");
  cr_assert_str_eq(r[0]->quantity->unit_system, ""); /* UCUM */
  cr_assert_str_eq(r[0]->reference_range[0]->low->value, "70");
  cr_assert_str_eq(r[0]->reference_range[0]->high->value, "99");
  cr_assert_str_eq(r[0]->reference_range[0]->text, "70-99");
  code_is(r[0]->interpretation[0], V3INT, "N", "Normal");
  cr_assert_eq(r[0]->status, CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_FINAL);
  ts_is(r[0]->effective, DAY_20261204 + 9 * 3600 + 45 * 60);
  code_is(r[1]->interpretation[0], V3INT, "H", "High");
  /* ST */
  cr_assert_eq(r[2]->value_case, CLINLOG__V1__LAB_RESULT__VALUE_STRING_VALUE);
  cr_assert_str_eq(r[2]->string_value, "Specimen slightly hemolyzed");
  /* CWE, SNOMED CT */
  cr_assert_eq(r[3]->value_case, CLINLOG__V1__LAB_RESULT__VALUE_CODE_VALUE);
  code_is(r[3]->code_value, "http://snomed.info/sct", "371244009", "Yellow color");
  /* SN with a comparator: a Quantity; a ratio: text */
  cr_assert_eq(r[4]->value_case, CLINLOG__V1__LAB_RESULT__VALUE_QUANTITY);
  cr_assert_str_eq(r[4]->quantity->comparator, "<");
  cr_assert_str_eq(r[4]->quantity->value, "0.5");
  cr_assert_eq(r[5]->value_case, CLINLOG__V1__LAB_RESULT__VALUE_STRING_VALUE);
  cr_assert_str_eq(r[5]->string_value, "1:128");
  code_is(r[5]->interpretation[0], V3INT, "A", NULL);
  /* TS with its offset */
  cr_assert_eq(r[6]->value_case, CLINLOG__V1__LAB_RESULT__VALUE_DATETIME_VALUE);
  ts_is(r[6]->datetime_value, DAY_20261204 + 14 * 3600 + 30 * 60);
  cr_assert_eq(r[6]->n_notes, 1);
  cr_assert_str_eq(r[6]->notes[0], "Repeat potassium recommended.");
  done(&m);
}

Test(hl7v2_map, oru_r01_text_coded_and_date_values_and_report_notes) {
  mapped m;
  map_file(&m, "oru_r01_path.hl7");
  const Clinlog__V1__LabResultReported *b = m.ev[0]->lab_result_reported;
  cr_assert_str_eq(b->report_id, "S26-1234");
  cr_assert_str_eq(b->filler_order_number->assigner, "PATH");
  ts_is(b->issued, DAY_20261204 + 86400 + 16 * 3600 + 10 * 60);
  cr_assert_eq(b->status, CLINLOG__V1__DIAGNOSTIC_REPORT_STATUS__DIAGNOSTIC_REPORT_STATUS_FINAL);
  code_is(b->category, "http://terminology.hl7.org/CodeSystem/v2-0074", "SP", NULL);
  cr_assert_eq(b->n_notes, 1);
  cr_assert_str_eq(b->notes[0], "Reviewed by Dr. Stone.");
  cr_assert_str_eq(b->results[0]->string_value, "Resection specimen.\nMargins clear."); /* TX */
  code_is(b->results[1]->code_value, "L", "T1N0", "T1 N0"); /* local system kept */
  cr_assert_eq(b->results[2]->value_case, CLINLOG__V1__LAB_RESULT__VALUE_STRING_VALUE);
  cr_assert_str_eq(b->results[2]->string_value, "2026-12-05"); /* DT: a calendar date */
  done(&m);
}

/* Each OBR group's notes are its own: an NTE after the first group's
 * second OBX is not the second group's. */
Test(hl7v2_map, oru_r01_notes_stay_with_their_group) {
  mapped m;
  load(&m, hl7t_parse("MSH|^~\\&|LAB|STMARYS|CLINLOG|HOSP|20261204101500||ORU^R01|L2|P|2.5.1\r"
                      "PID|1||123456^^^STMARYS^MR\r"
                      "OBR|1|ORD1|R1^LAB|24323-8^CMP^LN|||20261204093000\r"
                      "OBX|1|NM|2345-7^Glucose^LN||98|mg/dL^^UCUM|||||F\r"
                      "OBX|2|NM|2823-3^Potassium^LN||5.9|mmol/L^^UCUM|||||F\r"
                      "NTE|1|L|Repeat potassium.\r"
                      "OBR|2|ORD2|R2^LAB|24323-8^CMP^LN|||20261204093000\r"
                      "OBX|1|NM|2345-7^Glucose^LN||99|mg/dL^^UCUM|||||F\r"
                      "OBX|2|NM|2823-3^Potassium^LN||4.1|mmol/L^^UCUM|||||F\r"
                      "OBX|3|NM|2160-0^Creatinine^LN||0.9|mg/dL^^UCUM|||||F\r"));
  cr_assert_eq(m.n, 2);
  const Clinlog__V1__LabResultReported *a = m.ev[0]->lab_result_reported,
                                       *b = m.ev[1]->lab_result_reported;
  cr_assert_eq(a->n_results, 2);
  cr_assert_eq(a->results[0]->n_notes, 0);
  cr_assert_eq(a->results[1]->n_notes, 1);
  cr_assert_str_eq(a->results[1]->notes[0], "Repeat potassium.");
  cr_assert_eq(b->n_results, 3);
  for (size_t i = 0; i < 3; i++)
    cr_assert_eq(b->results[i]->n_notes, 0, "second group, result %zu", i);
  cr_assert_eq(b->n_notes, 0);
  done(&m);
}

Test(hl7v2_map, oru_r01_vital_signs_are_observations) {
  mapped m;
  map_file(&m, "oru_r01_vitals.hl7");
  cr_assert_eq(m.n, 2);
  for (size_t i = 0; i < 2; i++) {
    cr_assert_eq(m.ev[i]->body_case, CLINLOG__V1__EVENT__BODY_OBSERVATION_RECORDED);
    code_is(m.ev[i]->observation_recorded->category[0],
            "http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs", NULL);
  }
  const Clinlog__V1__ObservationRecorded *o = m.ev[0]->observation_recorded;
  code_is(o->code->coding[0], LOINC, "8867-4", "Heart rate");
  cr_assert_str_eq(o->quantity->value, "112");
  cr_assert_str_eq(o->quantity->unit, "/min");
  code_is(o->interpretation[0], V3INT, "H", "High");
  ts_is(o->effective, DAY_20261204 + 15 * 3600 + 14 * 60 + 30);
  ts_is(m.ev[0]->occurred_at, o->effective->seconds);
  cr_assert_str_eq(o->performers[0]->display, "Florence Nightingale");
  cr_assert_str_eq(o->encounter_id, "VN5566");
  o = m.ev[1]->observation_recorded;
  cr_assert_str_eq(o->quantity->value, "37.20"); /* precision kept */
  cr_assert_str_eq(o->quantity->unit, "Cel");
  cr_assert_str_eq(o->note, "Oral probe");
  done(&m);
}

Test(hl7v2_map, siu_dft_mdm) {
  mapped m;
  map_file(&m, "siu_s12.hl7");
  cr_assert_eq(m.n, 1);
  const Clinlog__V1__AppointmentBooked *a = m.ev[0]->appointment_booked;
  cr_assert_eq(m.ev[0]->body_case, CLINLOG__V1__EVENT__BODY_APPOINTMENT_BOOKED);
  cr_assert_str_eq(a->appointment_id, "APT7001");
  ts_is(a->start, DAY_20261204 + 6 * 86400 + 9 * 3600);
  ts_is(a->end, DAY_20261204 + 6 * 86400 + 9 * 3600 + 30 * 60);
  code_is(a->service_type->coding[0], "http://www.ama-assn.org/go/cpt", "99213", NULL);
  cr_assert_str_eq(a->practitioner->display, "Marcus Welby");
  cr_assert_eq(a->booked_via, CLINLOG__V1__BOOKING_CHANNEL__BOOKING_CHANNEL_INTERFACE);
  done(&m);

  map_file(&m, "dft_p03.hl7");
  const Clinlog__V1__ChargeCaptured *ch = m.ev[0]->charge_captured;
  cr_assert_eq(m.ev[0]->body_case, CLINLOG__V1__EVENT__BODY_CHARGE_CAPTURED);
  cr_assert_str_eq(ch->charge_id, "DFT9001-1");
  code_is(ch->procedure, "http://www.ama-assn.org/go/cpt", "99213", NULL);
  code_is(ch->diagnoses[0], "http://hl7.org/fhir/sid/icd-10-cm", "I10", NULL);
  cr_assert_eq(ch->amount->minor_units, 12500);
  cr_assert_str_eq(ch->amount->currency, "USD");
  cr_assert_str_eq(ch->units, "1");
  cr_assert_str_eq(ch->service_date, "2026-12-04");
  cr_assert_str_eq(ch->rendering_provider->identifier->value, "1234");
  done(&m);

  map_file(&m, "mdm_t02.hl7");
  const Clinlog__V1__ClinicalNoteSigned *n = m.ev[0]->clinical_note_signed;
  cr_assert_eq(m.ev[0]->body_case, CLINLOG__V1__EVENT__BODY_CLINICAL_NOTE_SIGNED);
  cr_assert_str_eq(n->note_id, "DOC4001");
  code_is(n->type->coding[0], "http://terminology.hl7.org/CodeSystem/v2-0270", "DS", NULL);
  code_is(n->type->coding[1], LOINC, "18842-5", NULL);
  cr_assert_eq(n->status, CLINLOG__V1__NOTE_STATUS__NOTE_STATUS_FINAL);
  cr_assert_str_eq(n->mime_type, "text/plain");
  cr_assert(strstr(n->text, "210/120 & HR 88") != NULL);
  cr_assert(strstr(n->text, "Welby^Cardiology in 2 weeks.\nSigned electronically.\n") != NULL, "%s",
            n->text);
  cr_assert_str_eq(n->author->display, "Marcus Welby");
  done(&m);
}

#define MSH_MDM                                                                                    \
  "MSH|^~\\&|TR|FAC|CLINLOG|HOSP|20261204101500||MDM^T02|T1|P|2.5.1\r"                             \
  "PID|1||123456^^^STMARYS^MR\r"

Test(hl7v2_map, formatted_text_keeps_escaped_escape_characters) {
  mapped m;
  load(&m, hl7t_parse(MSH_MDM "TXA|1|PN^Progress note^HL70270|TX\r"
                              "OBX|1|TX|11506-3^Progress note^LN||a \\E\\ b \\E\\ c\\.br\\d "
                              "\\H\\e\\N\\ f\\T\\g~second line||||||F\r"));
  cr_assert_str_eq(m.ev[0]->clinical_note_signed->text, "a \\ b \\ c\nd e f&g\nsecond line");
  done(&m);
}

Test(hl7v2_map, mapping_is_deterministic_and_ids_depend_on_sender_and_control_id) {
  cl_hl7_msg *a = hl7t_load("oru_r01_lf.hl7"), *b = hl7t_load("oru_r01_lf.hl7");
  cl_hl7_mapped *ra, *rb;
  cl_err err;
  cr_assert_eq(cl_hl7_map(a, &OPTS, &ra, NULL, &err), 0);
  cr_assert_eq(cl_hl7_map(b, &OPTS, &rb, NULL, &err), 0);
  cr_assert_eq(ra->n, rb->n);
  for (size_t i = 0; i < ra->n; i++) {
    cr_assert_eq(ra->ev[i].len, rb->ev[i].len);
    cr_assert_eq(memcmp(ra->ev[i].bytes, rb->ev[i].bytes, ra->ev[i].len), 0);
  }
  cl_hl7_mapped_free(ra);
  cl_hl7_mapped_free(rb);
  cl_hl7_free(a);
  cl_hl7_free(b);
  uint8_t x[16], y[16];
  cl_hl7_event_id("LAB", "STMARYS", "1", 0, x);
  cl_hl7_event_id("LAB", "STMARYS", "1", 1, y);
  cr_assert_neq(memcmp(x, y, 16), 0);
  cl_hl7_event_id("LABS", "TMARYS", "1", 0, y); /* parts are length-prefixed */
  cr_assert_neq(memcmp(x, y, 16), 0);
  cl_hl7_event_id("LAB", "STMARYS", "2", 0, y);
  cr_assert_neq(memcmp(x, y, 16), 0);
}

Test(hl7v2_map, coding_systems) {
  cr_assert_str_eq(cl_hl7_system_uri("LN"), "http://loinc.org");
  cr_assert_str_eq(cl_hl7_system_uri("SCT"), "http://snomed.info/sct");
  cr_assert_str_eq(cl_hl7_system_uri("I10"), "http://hl7.org/fhir/sid/icd-10-cm");
  cr_assert_str_eq(cl_hl7_system_uri("RXNORM"), "http://www.nlm.nih.gov/research/umls/rxnorm");
  cr_assert_str_eq(cl_hl7_system_uri("NDC"), "http://hl7.org/fhir/sid/ndc");
  cr_assert_str_eq(cl_hl7_system_uri("CVX"), "http://hl7.org/fhir/sid/cvx");
  cr_assert_str_eq(cl_hl7_system_uri("CPT"), "http://www.ama-assn.org/go/cpt");
  cr_assert_str_eq(cl_hl7_system_uri("UCUM"), "http://unitsofmeasure.org");
  cr_assert_null(cl_hl7_system_uri("99LOCAL"));
  cr_assert_null(cl_hl7_system_uri(""));
}

/* ---- refusals ---- */

#define MSH(type, ctl) "MSH|^~\\&|APP|FAC|CLINLOG|HOSP|20261204101500||" type "|" ctl "|P|2.5.1\r"
#define PID "PID|1||123456^^^STMARYS^MR||O'Brien^Mary\r"

typedef struct refusal {
  const char *in;
  int code;
  const char *seg;
  uint32_t seg_index, field, rep, comp;
  const char *reason;
} refusal;

static const refusal REFUSALS[] = {
    {MSH("QRY^A19", "R1") PID, 200, "MSH", 1, 9, 1, 1, "unsupported message type 'QRY'"},
    {MSH("ADT^A02^ADT_A02", "R2") PID, 201, "MSH", 1, 9, 1, 2, "unsupported trigger event 'A02'"},
    {MSH("ORU^R03", "R3") PID, 201, "MSH", 1, 9, 1, 2, "'R03' for ORU"},
    {MSH("ADT^A01", "R4") "EVN|A01\r", 100, "PID", 0, 0, 0, 0, "needs a PID segment"},
    {MSH("ADT^A01", "R5") "PID|1||123456^^^STMARYS^SS\r", 101, "PID", 2, 3, 0, 0,
     "no patient identifier of type MR, PI or PT"},
    {MSH("ADT^A01", "R6") "PID|1||12 34^^^STMARYS^MR\r", 102, "PID", 2, 3, 1, 1,
     "has characters other than"},
    {MSH("ADT^A01", "R7") PID "PV1|1|Z\r", 103, "PV1", 3, 2, 1, 1, "patient class 'Z'"},
    {MSH("ADT^A01", "R8") PID "PV1|1\r", 101, "PV1", 3, 2, 1, 1, "patient class is required"},
    {MSH("ADT^A03", "R9") PID "PV1|1|I\r", 101, "PV1", 3, 19, 1, 1, "visit number"},
    {MSH("ADT^A01", "R10") PID "PV1|1|I||||||||||||||||||||||||||||||||||||||||||2026130108\r", 102,
     "PV1", 3, 44, 1, 1, "not a valid date/time"},
    {MSH("ADT^A04", "R11") "PID|1||123456^^^STMARYS^MR||Doe^J||1960031|F\r", 102, "PID", 2, 7, 1, 1,
     "is not a date"},
    {MSH("ADT^A04", "R12") "PID|1||123456^^^STMARYS^MR||Doe^J||19600315|X\r", 103, "PID", 2, 8, 1,
     1, "administrative sex 'X'"},
    {"MSH|^~\\&|APP|FAC|CLINLOG|HOSP|||ADT^A04|R13|P|2.5.1\r" PID "PV1|1|O\r", 101, "MSH", 1, 7, 1,
     1, "message time"},
    {MSH("ORU^R01", "R14") PID
     "OBR|1||F1|24323-8^CMP^LN\rOBX|1|NM|2345-7^Glucose^LN||9x8|mg/dL|||||F\r",
     102, "OBX", 4, 5, 1, 1, "NM value '9x8' is not a number"},
    {MSH("ORU^R01", "R15") PID "OBR|1||F1|24323-8^CMP^LN\rOBX|1|NM|2345-7^Glucose^LN||98\r", 101,
     "OBX", 4, 11, 1, 1, "result status is required"},
    {MSH("ORU^R01", "R16") PID
     "OBR|1||F1|24323-8^CMP^LN\rOBX|1|TS|18750-0^Coll^LN||2026120425|||||F\r",
     102, "OBX", 4, 5, 1, 1, "TS '2026120425'"},
    {MSH("ORU^R01", "R17") PID "OBR|1||F1|24323-8^CMP^LN\rOBX|1|ED|1-1^Doc^LN||x|||||F\r", 103,
     "OBX", 4, 2, 1, 1, "value type 'ED'"},
    {MSH("ORU^R01", "R18") PID
     "OBR|1||F1|24323-8^CMP^LN\rOBX|1|SN|2160-0^Creat^LN||!!^0.5||||||F\r",
     102, "OBX", 4, 5, 1, 1, "SN comparator"},
    {MSH("ORU^R01", "R19") PID "OBR|1\rOBX|1|NM|2345-7^Glucose^LN||98|||||F\r", 101, "OBR", 3, 3, 1,
     1, "filler (OBR-3) or placer (OBR-2)"},
    {MSH("ORU^R01", "R20") PID
     "OBR|1||F1|24323-8^CMP^LN\rOBX|1|NM|2345-7^Glucose^LN||98||||||F|||20261204101500+2500\r",
     102, "OBX", 4, 14, 1, 1, "time zone offset"},
    {MSH("ORU^R01", "R21") PID "OBR|1||F1|24323-8^CMP^LN\rOBX|1|NM|2345-7^Glucose^LN||98||||||Q\r",
     103, "OBX", 4, 11, 1, 1, "status 'Q'"},
    {MSH("RDE^O11", "R22") PID "ORC|NW\rRXE|1|197361^Amlo^RXNORM\r", 101, "ORC", 3, 2, 1, 1,
     "placer (ORC-2) or filler (ORC-3)"},
    {MSH("RDE^O11", "R23") PID "ORC|ZZ|O1\rRXE|1|197361^Amlo^RXNORM\r", 103, "ORC", 3, 1, 1, 1,
     "order control 'ZZ'"},
    {MSH("RDE^O11", "R24") PID "ORC|NW|O1\rRXE|1||5\r", 101, "RXE", 4, 2, 1, 1, "medication"},
    {MSH("RDE^O11", "R25") PID "ORC|NW|O1\rRXE|1|197361^Amlo^RXNORM|five\r", 102, "RXE", 4, 3, 1, 1,
     "NM value 'five'"},
    {MSH("RAS^O17", "R26") PID "ORC|RE|O1\rRXA|0|1||||\r", 101, "RXA", 4, 3, 1, 1,
     "start of administration"},
    {MSH("RAS^O17", "R27") PID "ORC|RE|O1\rRXA|0|1|20261204|20261204|1^A^NDC|||||||||||||||XX\r",
     103, "RXA", 4, 20, 1, 1, "completion status 'XX'"},
    {MSH("DFT^P03", "R28") PID "FT1|1|||20261204||CG|99213^Visit^CPT|||1|12.345&USD\r", 102, "FT1",
     3, 11, 1, 1, "not a money amount"},
    {MSH("DFT^P03", "R29") PID "FT1|1|||20261204||PY|99213^Visit^CPT\r", 103, "FT1", 3, 6, 1, 1,
     "'PY' is not a charge"},
    {MSH("SIU^S12", "R30") PID, 100, "SCH", 0, 0, 0, 0, "needs an SCH segment"},
    {MSH("MDM^T02", "R31") PID "TXA|1|DS^Discharge^HL70270|TX||||||||||||||ZZ\r", 103, "TXA", 3, 17,
     1, 1, "completion status 'ZZ'"},
    {MSH("ORM^O01", "R32") PID "OBR|1|O1||24323-8^CMP^LN\r", 100, "OBR", 3, 0, 0, 0,
     "before any ORC"},
    {MSH("SIU^S12", "R33") "SCH|A1|A1\r" PID
                           "AIS|1|A|99213^Visit^CPT|20261210090000|||999999999|MIN\r",
     102, "AIS", 4, 7, 1, 1, "longer than a year"},
    {MSH("ADT^A08", "R34") PID "AL1|1|DA||SV\r", 101, "AL1", 3, 3, 1, 1, "allergen"},
    {MSH("ADT^A08", "R35") PID "DG1|1|||Hypertension\r", 101, "DG1", 3, 3, 1, 1, "diagnosis code"},
    {MSH("ADT^A11^ADT_A09", "R36") PID "PV1|1|I\r", 101, "PV1", 3, 19, 1, 1,
     "a cancellation needs the visit number"},
    {MSH("ADT^A13^ADT_A01", "R37") PID, 100, "PV1", 0, 0, 0, 0, "ADT^A13 needs a PV1 segment"},
};

Test(hl7v2_map, refusals_name_the_place_and_produce_nothing) {
  for (size_t i = 0; i < sizeof REFUSALS / sizeof REFUSALS[0]; i++) {
    const refusal *t = &REFUSALS[i];
    cl_hl7_msg *m = hl7t_parse(t->in);
    cl_hl7_mapped *r = (cl_hl7_mapped *)&r; /* must be reset to NULL */
    cl_hl7_error e;
    cl_err err;
    int rc = cl_hl7_map(m, &OPTS, &r, &e, &err);
    cr_assert_eq(rc, CL_EMALFORMED, "case %zu: rc %d", i, rc);
    cr_assert_null(r, "case %zu", i);
    cr_assert_eq(e.code, t->code, "case %zu: code %d (%s)", i, e.code, err.msg);
    cr_assert_str_eq(e.segment, t->seg, "case %zu", i);
    cr_assert_eq(e.seg_index, t->seg_index, "case %zu: index %u", i, e.seg_index);
    cr_assert_eq(e.field, t->field, "case %zu: field %u (%s)", i, e.field, err.msg);
    cr_assert_eq(e.rep, t->rep, "case %zu: rep %u", i, e.rep);
    cr_assert_eq(e.comp, t->comp, "case %zu: comp %u (%s)", i, e.comp, err.msg);
    cr_assert(strstr(e.reason, t->reason) != NULL, "case %zu: reason \"%s\"", i, e.reason);
    cr_assert(strstr(err.msg, t->reason) != NULL, "case %zu: message \"%s\"", i, err.msg);
    if (t->seg_index) { /* the byte offset is inside that segment */
      const char *seg = t->in;
      for (uint32_t k = 1; k < t->seg_index; k++)
        seg = strchr(seg, '\r') + 1;
      size_t start = (size_t)(seg - t->in), end = (size_t)(strchr(seg, '\r') - t->in);
      cr_assert(e.offset >= start && e.offset <= end, "case %zu: offset %zu not in [%zu, %zu]", i,
                e.offset, start, end);
    }
    /* the ACK: AR for 200/201 and MSH, AE for content errors, with the ERR location */
    char *ack;
    size_t n;
    cl_hl7_ack_params ap = {.control_id = "ACK1", .timestamp = "20261204101600"};
    cr_assert_eq(cl_hl7_ack(m, &e, &ap, &ack, &n, &err), 0);
    cr_assert(strstr(ack, t->code >= 200 || !strcmp(t->seg, "MSH") ? "MSA|AR|" : "MSA|AE|") != NULL,
              "case %zu: %s", i, ack);
    char loc[64];
    snprintf(loc, sizeof loc, "ERR||%s^", t->seg);
    cr_assert(strstr(ack, loc) != NULL, "case %zu: %s", i, ack);
    cl_free(ack);
    cl_hl7_free(m);
  }
}

Test(hl7v2_map, bad_arguments) {
  cl_hl7_msg *m = hl7t_load("adt_a01.hl7");
  cl_hl7_mapped *r;
  cl_err err;
  cl_hl7_map_opts none = {0};
  cr_assert_eq(cl_hl7_map(m, &none, &r, NULL, &err), CL_EINVAL);
  cr_assert_eq(cl_hl7_map(NULL, &OPTS, &r, NULL, &err), CL_EINVAL);
  cr_assert_eq(cl_hl7_map(m, &OPTS, NULL, NULL, &err), CL_EINVAL);
  cl_hl7_mapped_free(NULL);
  cl_hl7_free(m);
}

static int fail_at, calls;
static int fail_nth(void *ctx) {
  (void)ctx;
  return ++calls == fail_at;
}

Test(hl7v2_map, every_allocation_failure_is_clean) {
  static const char *const FILES[] = {"adt_a01.hl7", "oru_r01_lf.hl7", "mdm_t02.hl7", "orm_o01.hl7",
                                      "ras_o17_bcma.hl7"};
  for (size_t f = 0; f < sizeof FILES / sizeof FILES[0]; f++) {
    cl_hl7_msg *m = hl7t_load(FILES[f]);
    for (fail_at = 1;; fail_at++) {
      calls = 0;
      cl_hl7_mapped *r;
      cl_hl7_error e;
      cl_err err;
      cl_alloc_set_fail_hook(fail_nth, NULL);
      int rc = cl_hl7_map(m, &OPTS, &r, &e, &err);
      cl_alloc_set_fail_hook(NULL, NULL);
      if (rc == 0) {
        cl_hl7_mapped_free(r);
        break;
      }
      cr_assert_eq(rc, CL_ENOMEM, "%s, allocation %d: %d %s", FILES[f], fail_at, rc, err.msg);
      cr_assert_null(r);
      cr_assert_eq(e.code, CL_HL7_INTERNAL);
    }
    cl_hl7_free(m);
  }
}

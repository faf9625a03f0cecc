/* The medication checker (query/cds/check.h) against the seed knowledge
 * base and small inline ones: per rule kind, pairs that must alert with the
 * right severity and pairs that must not (unrelated drugs, a first drug
 * discontinued or expired); class members; product codes and NDCs; allergy
 * cross-reactivity; dose limits at the boundary with mg/g/mcg and per kg;
 * daily totals; duplicate therapy; each BCMA right broken in turn; and
 * byte-identical findings and keys on replay. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/cds/check.h"
#include "tests/query/cds_fixture.h"

#define H (3600ll * 1000000000ll)
#define DAY (24 * H)
#define T0 (1767225600ll * 1000000000ll) /* 2026-01-01T00:00:00Z */

#define KIND(x) CLINLOG__V1__ISSUE_KIND__ISSUE_KIND_##x
#define SEV(x) CLINLOG__V1__ISSUE_SEVERITY__ISSUE_SEVERITY_##x

/* the shared set-up's state, by the names these tests use */
#define kb (cfx.kb)
#define st (cfx.st)
#define F (cfx.F)
#define next_id (cfx.next_id)

/* ------------------------------------------------------------ builders
 * Everything is malloc'd so protobuf_c_message_free_unpacked frees it. */

static char *S(const char *s) { return strdup(s ? s : ""); }

static Google__Protobuf__Timestamp *ts(int64_t ns) {
  Google__Protobuf__Timestamp *t = malloc(sizeof *t);
  google__protobuf__timestamp__init(t);
  t->seconds = ns / 1000000000ll;
  t->nanos = (int32_t)(ns % 1000000000ll);
  return t;
}

static Clinlog__V1__Code *code(const char *system, const char *c) {
  Clinlog__V1__Code *x = malloc(sizeof *x);
  clinlog__v1__code__init(x);
  x->system = S(system);
  x->code = S(c);
  return x;
}

static Clinlog__V1__CodeableConcept *cc(const char *system, const char *c) {
  Clinlog__V1__CodeableConcept *x = malloc(sizeof *x);
  clinlog__v1__codeable_concept__init(x);
  x->n_coding = 1;
  x->coding = malloc(sizeof *x->coding);
  x->coding[0] = code(system, c);
  return x;
}

static Clinlog__V1__Quantity *qty(const char *v, const char *unit) {
  Clinlog__V1__Quantity *q = malloc(sizeof *q);
  clinlog__v1__quantity__init(q);
  q->value = S(v);
  q->unit = S(unit);
  return q;
}

static Clinlog__V1__Event *event(void) {
  Clinlog__V1__Event *e = malloc(sizeof *e);
  clinlog__v1__event__init(e);
  e->stream = S("patient-P1");
  return e;
}

#define RX CL_KB_RXNORM

/* An order: rxnorm code, optional dose "500 mg", route, frequency. */
typedef struct rx_opts {
  const char *system; /* default RxNorm */
  const char *dose, *unit, *route, *freq;
  int64_t start, end; /* 0: not stated */
  int days_supply, refills;
} rx_opts;

static Clinlog__V1__Event *prescribed(const char *id, const char *c, rx_opts o) {
  Clinlog__V1__Event *e = event();
  Clinlog__V1__MedicationPrescribed *p = malloc(sizeof *p);
  clinlog__v1__medication_prescribed__init(p);
  p->prescription_id = S(id);
  p->medication = cc(o.system ? o.system : RX, c);
  if (o.dose || o.route || o.freq) {
    Clinlog__V1__Dosage *d = malloc(sizeof *d);
    clinlog__v1__dosage__init(d);
    if (o.dose)
      d->dose = qty(o.dose, o.unit);
    if (o.route)
      d->route = code("http://terminology.hl7.org/CodeSystem/v2-0162", o.route);
    if (o.freq)
      d->frequency = S(o.freq);
    p->n_dosage = 1;
    p->dosage = malloc(sizeof *p->dosage);
    p->dosage[0] = d;
  }
  if (o.start || o.end) {
    p->validity = malloc(sizeof *p->validity);
    clinlog__v1__period__init(p->validity);
    if (o.start)
      p->validity->start = ts(o.start);
    if (o.end)
      p->validity->end = ts(o.end);
  }
  p->days_supply = o.days_supply;
  p->refills = o.refills;
  e->body_case = CLINLOG__V1__EVENT__BODY_MEDICATION_PRESCRIBED;
  e->medication_prescribed = p;
  return e;
}

static Clinlog__V1__Event *discontinued(const char *id) {
  Clinlog__V1__Event *e = event();
  Clinlog__V1__MedicationDiscontinued *d = malloc(sizeof *d);
  clinlog__v1__medication_discontinued__init(d);
  d->prescription_id = S(id);
  e->body_case = CLINLOG__V1__EVENT__BODY_MEDICATION_DISCONTINUED;
  e->medication_discontinued = d;
  return e;
}

static Clinlog__V1__Event *allergy(const char *id, const char *system, const char *c, int high) {
  Clinlog__V1__Event *e = event();
  Clinlog__V1__AllergyRecorded *a = malloc(sizeof *a);
  clinlog__v1__allergy_recorded__init(a);
  a->allergy_id = S(id);
  a->substance = cc(system, c);
  a->criticality = high ? CLINLOG__V1__ALLERGY_CRITICALITY__ALLERGY_CRITICALITY_HIGH
                        : CLINLOG__V1__ALLERGY_CRITICALITY__ALLERGY_CRITICALITY_LOW;
  e->body_case = CLINLOG__V1__EVENT__BODY_ALLERGY_RECORDED;
  e->allergy_recorded = a;
  return e;
}

typedef struct admin_opts {
  const char *rx;          /* order named, NULL: none */
  const char *wristband;   /* NULL: not scanned */
  const char *barcode;     /* NULL: not scanned */
  const char *med;         /* RxNorm code, NULL: none */
  const char *dose, *unit; /* dose given */
  const char *route;
  int64_t at; /* administered_at, 0: not stated */
} admin_opts;

static Clinlog__V1__Event *administered(admin_opts o) {
  Clinlog__V1__Event *e = event();
  Clinlog__V1__MedicationAdministered *a = malloc(sizeof *a);
  clinlog__v1__medication_administered__init(a);
  a->administration_id = S("a");
  a->prescription_id = S(o.rx);
  a->scanned_wristband_id = S(o.wristband);
  a->scanned_product_barcode = S(o.barcode);
  if (o.med)
    a->medication = cc(RX, o.med);
  if (o.dose)
    a->dose_given = qty(o.dose, o.unit);
  if (o.route)
    a->route = code("http://terminology.hl7.org/CodeSystem/v2-0162", o.route);
  if (o.at)
    a->administered_at = ts(o.at);
  a->status = CLINLOG__V1__ADMINISTRATION_STATUS__ADMINISTRATION_STATUS_COMPLETED;
  e->body_case = CLINLOG__V1__EVENT__BODY_MEDICATION_ADMINISTERED;
  e->medication_administered = a;
  return e;
}

static void idn(int n, uint8_t id[16]) {
  memset(id, 0, 16);
  id[0] = 0xE0;
  id[14] = (uint8_t)(n >> 8);
  id[15] = (uint8_t)n;
}

/* Applies e (freed) at time at with the next event id; returns the count. */
static size_t apply(Clinlog__V1__Event *e, int64_t at) {
  uint8_t id[16];
  cl_err err = {0};
  idn(next_id++, id);
  memset(F, 0xA5, sizeof *F);
  int rc = cl_cds_apply(kb, st, e, id, at, F, &err);
  protobuf_c_message_free_unpacked(&e->base, NULL);
  cr_assert_eq(rc, 0, "apply: %s", err.msg);
  for (size_t i = 0; i < F->n; i++)
    cr_assert(memcmp(F->f[i].implicated[0], id, 16) == 0, "trigger is not the event");
  return F->n;
}

static const cl_cds_finding *only(int kind, int sev, const char *rule) {
  cr_assert_eq(F->n, 1, "expected one finding (%s), got %zu%s%s", rule, F->n,
               F->n ? ": first " : "", F->n ? F->f[0].rule_id : "");
  const cl_cds_finding *f = &F->f[0];
  cr_assert_eq(f->kind, kind, "kind %d, expected %d (%s)", f->kind, kind, f->rule_id);
  cr_assert_eq(f->severity, sev, "severity %d, expected %d (%s)", f->severity, sev, f->rule_id);
  cr_assert_str_eq(f->rule_id, rule);
  return f;
}

static const cl_cds_finding *find(const char *rule) {
  for (size_t i = 0; i < F->n; i++)
    if (!strcmp(F->f[i].rule_id, rule))
      return &F->f[i];
  return NULL;
}

#define NONE ((rx_opts){0})
#define WARFARIN "11289"
#define IBUPROFEN "5640"

/* ------------------------------------------------------------ interactions */

TestSuite(cds_check, .init = cfx_setup_seed, .fini = cfx_teardown);

Test(cds_check, warfarin_then_ibuprofen_alerts_high) {
  cr_assert_eq(apply(prescribed("rx1", WARFARIN, NONE), T0), 0);
  apply(prescribed("rx2", IBUPROFEN, NONE), T0 + H);
  const cl_cds_finding *f = only(KIND(INTERACTION), SEV(HIGH), "warfarin-nsaids");
  cr_assert_str_eq(f->code, "DRG");
  cr_assert_str_eq(f->source, "fda-warfarin");
  cr_assert_str_eq(f->kb_version, "2026-12-05.2-seed");
  cr_assert_eq(f->n_implicated, 2);
  uint8_t w[16];
  idn(1, w);
  cr_assert(memcmp(f->implicated[1], w, 16) == 0, "the other is the warfarin order");
  cr_assert(strstr(f->detail, "warfarin") && strstr(f->detail, "ibuprofen"), "%s", f->detail);
  cr_assert(strstr(f->mitigation, "INR"), "%s", f->mitigation);
}

Test(cds_check, ibuprofen_then_warfarin_alerts_high) {
  cr_assert_eq(apply(prescribed("rx1", IBUPROFEN, NONE), T0), 0);
  apply(prescribed("rx2", WARFARIN, NONE), T0 + H);
  only(KIND(INTERACTION), SEV(HIGH), "warfarin-nsaids");
}

Test(cds_check, discontinued_first_drug_does_not_alert) {
  apply(prescribed("rx1", WARFARIN, NONE), T0);
  cr_assert_eq(apply(discontinued("rx1"), T0 + H), 0);
  cr_assert_eq(apply(prescribed("rx2", IBUPROFEN, NONE), T0 + 2 * H), 0);
}

Test(cds_check, expired_first_drug_does_not_alert) {
  /* by Period.end */
  apply(prescribed("rx1", WARFARIN, (rx_opts){.start = T0, .end = T0 + 10 * DAY}), T0);
  cr_assert_eq(apply(prescribed("rx2", IBUPROFEN, NONE), T0 + 11 * DAY), 0);
  /* by days_supply * (refills + 1): 30 * 2 days */
  cfx_fresh();
  apply(prescribed("rx1", WARFARIN, (rx_opts){.days_supply = 30, .refills = 1}), T0);
  apply(prescribed("rx2", IBUPROFEN, NONE), T0 + 59 * DAY);
  cr_assert_eq(F->n, 1, "still active on day 59");
  cfx_fresh();
  apply(prescribed("rx1", WARFARIN, (rx_opts){.days_supply = 30, .refills = 1}), T0);
  cr_assert_eq(apply(prescribed("rx2", IBUPROFEN, NONE), T0 + 61 * DAY), 0, "expired on day 61");
}

Test(cds_check, unrelated_drugs_do_not_alert) {
  apply(prescribed("rx1", "161", NONE), T0);                    /* acetaminophen */
  cr_assert_eq(apply(prescribed("rx2", "723", NONE), T0), 0);   /* amoxicillin */
  cr_assert_eq(apply(prescribed("rx3", "29046", NONE), T0), 0); /* lisinopril */
}

Test(cds_check, class_rules_reach_every_member) {
  const char *nsaids[] = {"5640", "7258", "3355", "140587", "4502"};
  for (size_t i = 0; i < 5; i++) {
    cfx_fresh();
    apply(prescribed("rx1", WARFARIN, NONE), T0);
    apply(prescribed("rx2", nsaids[i], NONE), T0);
    only(KIND(INTERACTION), SEV(HIGH), "warfarin-nsaids");
  }
  /* a class of classes: sertraline is serotonergic through ssris */
  cfx_fresh();
  apply(prescribed("rx1", "8123", NONE), T0); /* phenelzine */
  apply(prescribed("rx2", "36437", NONE), T0);
  only(KIND(INTERACTION), SEV(HIGH), "maoi-serotonergic");
  /* moderate maps to MODERATE */
  cfx_fresh();
  apply(prescribed("rx1", "36437", NONE), T0);
  apply(prescribed("rx2", "7258", NONE), T0);
  only(KIND(INTERACTION), SEV(MODERATE), "ssri-nsaids");
}

Test(cds_check, product_codes_and_ndcs_resolve) {
  apply(prescribed("rx1", "855288", NONE), T0); /* warfarin 1 MG Oral Tablet (SCD) */
  apply(prescribed("rx2", IBUPROFEN, NONE), T0);
  only(KIND(INTERACTION), SEV(HIGH), "warfarin-nsaids");
  cfx_fresh();
  apply(prescribed("rx1", "0093-1721-10", (rx_opts){.system = CL_KB_NDC}), T0);
  apply(prescribed("rx2", IBUPROFEN, NONE), T0);
  only(KIND(INTERACTION), SEV(HIGH), "warfarin-nsaids");
  cfx_fresh();
  apply(prescribed("rx1", "00093172110", (rx_opts){.system = CL_KB_NDC}), T0);
  apply(prescribed("rx2", "7258", NONE), T0);
  only(KIND(INTERACTION), SEV(HIGH), "warfarin-nsaids");
}

Test(cds_check, an_updated_order_does_not_alert_against_itself) {
  apply(prescribed("rx1", WARFARIN, NONE), T0);
  cr_assert_eq(apply(prescribed("rx1", WARFARIN, NONE), T0 + H), 0);
  size_t o, a, al, ad;
  cl_cds_patient_counts(st, T0 + H, &o, &a, &al, &ad);
  cr_assert_eq(o, 1);
}

Test(cds_check, dispense_and_administration_without_order_alert) {
  apply(prescribed("rx1", WARFARIN, NONE), T0);
  Clinlog__V1__Event *e = event();
  Clinlog__V1__MedicationDispensed *d = malloc(sizeof *d);
  clinlog__v1__medication_dispensed__init(d);
  d->dispense_id = S("d1");
  d->medication = cc(RX, IBUPROFEN);
  d->days_supply = 10;
  e->body_case = CLINLOG__V1__EVENT__BODY_MEDICATION_DISPENSED;
  e->medication_dispensed = d;
  apply(e, T0 + H);
  only(KIND(INTERACTION), SEV(HIGH), "warfarin-nsaids");
  /* the fill is now an active medication: naproxen duplicates it */
  apply(prescribed("rx3", "7258", NONE), T0 + 2 * H);
  cr_assert_not_null(find("dup:nsaids"));
  /* an administration matching an active order repeats nothing */
  cr_assert_eq(apply(administered((admin_opts){.med = WARFARIN}), T0 + 3 * H), 0);
  /* one with no order is checked like a new drug */
  cfx_fresh();
  apply(prescribed("rx1", WARFARIN, NONE), T0);
  apply(administered((admin_opts){.med = "1191"}), T0 + H); /* aspirin */
  only(KIND(INTERACTION), SEV(HIGH), "warfarin-antiplatelets");
}

/* ------------------------------------------------------------ allergies */

Test(cds_check, allergy_same_ingredient_both_orders) {
  cr_assert_eq(apply(allergy("al1", RX, "723", 0), T0), 0);
  apply(prescribed("rx1", "313797", NONE), T0 + H); /* amoxicillin suspension (SCD) */
  const cl_cds_finding *f = only(KIND(ALLERGY), SEV(HIGH), "allergy:723");
  cr_assert_str_eq(f->code, "ALGY");
  /* allergy recorded after the order: the allergy is the trigger */
  cfx_fresh();
  apply(prescribed("rx1", "723", NONE), T0);
  apply(allergy("al1", RX, "723", 0), T0 + H);
  f = only(KIND(ALLERGY), SEV(HIGH), "allergy:723");
  uint8_t o[16];
  idn(next_id - 2, o);
  cr_assert(memcmp(f->implicated[1], o, 16) == 0, "the other is the order");
}

Test(cds_check, allergy_cross_reactivity) {
  /* aspirin allergy, ibuprofen: both in nsaid-allergy */
  apply(allergy("al1", RX, "1191", 0), T0);
  apply(prescribed("rx1", IBUPROFEN, NONE), T0);
  only(KIND(ALLERGY), SEV(MODERATE), "allergy:nsaid-allergy");
  cfx_fresh();
  apply(allergy("al1", RX, "1191", 1), T0); /* criticality high */
  apply(prescribed("rx1", IBUPROFEN, NONE), T0);
  only(KIND(ALLERGY), SEV(HIGH), "allergy:nsaid-allergy");
  /* a group named as the allergen */
  cfx_fresh();
  apply(allergy("al1", CL_CDS_KB_NAME_SYSTEM, "penicillin-allergy", 0), T0);
  apply(prescribed("rx1", "723", NONE), T0);
  only(KIND(ALLERGY), SEV(HIGH), "allergy:penicillin-allergy");
  /* a penicillin group of two: ampicillin allergy, amoxicillin order */
  cfx_use_kb("clinlog-kb 1\nversion t-1\n"
             "ingredient 723 amoxicillin\ningredient 733 ampicillin\ningredient 161 acetaminophen\n"
             "class penicillins 723 733\nallergy-group penicillin-allergy penicillins\n");
  cfx_fresh();
  apply(allergy("al1", RX, "733", 0), T0);
  apply(prescribed("rx1", "723", NONE), T0);
  only(KIND(ALLERGY), SEV(MODERATE), "allergy:penicillin-allergy");
  cr_assert_eq(apply(prescribed("rx2", "161", NONE), T0), 0, "unrelated drug");
}

/* Sulfamethoxazole / trimethoprim ordered by its MIN code (10831): the
 * methotrexate rule reaches it through trimethoprim, a sulfonamide
 * allergy through sulfamethoxazole; a cephalosporin allergy reaches
 * another cephalosporin. */
Test(cds_check, combination_product_reaches_each_ingredient) {
  apply(prescribed("rx1", "6851", NONE), T0); /* methotrexate */
  apply(prescribed("rx2", "10831", NONE), T0 + H);
  only(KIND(INTERACTION), SEV(HIGH), "methotrexate-trimethoprim");
  cfx_fresh();
  apply(allergy("al1", RX, "10171", 0), T0); /* sulfadiazine */
  apply(prescribed("rx1", "10831", NONE), T0);
  only(KIND(ALLERGY), SEV(MODERATE), "allergy:sulfonamide-antibiotic-allergy");
  cfx_fresh();
  apply(allergy("al1", RX, "2180", 1), T0); /* cefazolin, high criticality */
  apply(prescribed("rx1", "2231", NONE), T0); /* cephalexin */
  only(KIND(ALLERGY), SEV(HIGH), "allergy:cephalosporin-allergy");
  cfx_fresh();
  apply(prescribed("rx1", "29046", NONE), T0); /* lisinopril */
  apply(prescribed("rx2", "8591", NONE), T0 + H); /* potassium chloride */
  only(KIND(INTERACTION), SEV(HIGH), "acei-potassium");
}

Test(cds_check, resolved_allergy_no_longer_alerts) {
  apply(allergy("al1", RX, "723", 0), T0);
  Clinlog__V1__Event *e = allergy("al1", RX, "723", 0);
  e->allergy_recorded->clinical_status =
      CLINLOG__V1__ALLERGY_CLINICAL_STATUS__ALLERGY_CLINICAL_STATUS_RESOLVED;
  apply(e, T0 + H);
  cr_assert_eq(apply(prescribed("rx1", "723", NONE), T0 + 2 * H), 0);
}

/* ------------------------------------------------------------ doses */

static size_t apap(const char *dose, const char *unit) {
  cfx_fresh();
  return apply(prescribed("rx1", "161", (rx_opts){.dose = dose, .unit = unit, .route = "PO"}), T0);
}

Test(cds_check, single_dose_at_the_boundary_with_units) {
  cr_assert_eq(apap("1000", "mg"), 0);
  cr_assert_eq(apap("1", "g"), 0);
  cr_assert_eq(apap("1000000", "mcg"), 0);
  cr_assert_eq(apap("1000000", "ug"), 0);
  apap("1001", "mg");
  const cl_cds_finding *f = only(KIND(DOSE), SEV(HIGH), "dose:161:oral:single");
  cr_assert_str_eq(f->code, "DOSEH");
  cr_assert(strstr(f->detail, "acetaminophen"), "%s", f->detail);
  apap("1.001", "g");
  only(KIND(DOSE), SEV(HIGH), "dose:161:oral:single");
  apap("1000001", "mcg");
  only(KIND(DOSE), SEV(HIGH), "dose:161:oral:single");
  /* a SNOMED CT route code (26643006 oral route) maps like PO */
  cfx_fresh();
  apply(prescribed("rx1", "161", (rx_opts){.dose = "1001", .unit = "mg", .route = "26643006"}), T0);
  only(KIND(DOSE), SEV(HIGH), "dose:161:oral:single");
  /* a unit that is not a mass is not checked */
  cr_assert_eq(apap("20", "mL"), 0);
}

Test(cds_check, prescribed_daily_dose_from_frequency) {
  apply(prescribed("rx1", IBUPROFEN,
                   (rx_opts){.dose = "800", .unit = "mg", .route = "PO", .freq = "QID"}),
        T0);
  cr_assert_eq(F->n, 0, "3200 mg a day is the limit");
  cfx_fresh();
  apply(prescribed("rx1", IBUPROFEN,
                   (rx_opts){.dose = "800", .unit = "mg", .route = "PO", .freq = "q4h"}),
        T0);
  only(KIND(DOSE), SEV(HIGH), "dose:5640:oral:daily");
}

Test(cds_check, administered_daily_total_over_24h) {
  admin_opts a = {.med = "161", .dose = "1", .unit = "g", .route = "PO"};
  for (int i = 0; i < 4; i++)
    cr_assert_eq(apply(administered(a), T0 + i * 6 * H), 0, "dose %d", i);
  /* a fifth gram within 24 h of the first: 5 g */
  apply(administered(a), T0 + 23 * H);
  only(KIND(DOSE), SEV(HIGH), "dose:161:oral:daily");
  /* a single dose above the limit at once */
  cfx_fresh();
  apply(administered((admin_opts){.med = "161", .dose = "1001", .unit = "mg", .route = "PO"}), T0);
  only(KIND(DOSE), SEV(HIGH), "dose:161:oral:single");
  /* 24 h later the first dose no longer counts: four doses over 24 h, exactly 4 g */
  cfx_fresh();
  for (int i = 0; i < 4; i++)
    apply(administered(a), T0 + i * 6 * H);
  cr_assert_eq(apply(administered(a), T0 + 24 * H), 0);
}

Test(cds_check, per_kg_limits_need_the_weight) {
  cfx_use_kb("clinlog-kb 1\nversion t-1\nsource s1 a source\n"
             "ingredient 100 alpha\ndose 100 oral single=10mg/kg source=s1\n");
  cfx_fresh();
  apply(prescribed("rx1", "100", (rx_opts){.dose = "500", .unit = "mg", .route = "PO"}), T0);
  const cl_cds_finding *f = only(KIND(DOSE), SEV(LOW), "dose:100:oral:single:weight");
  cr_assert_str_eq(f->code, "DOSE");
  cfx_fresh();
  cl_cds_patient_set_weight(st, 50);
  cr_assert_eq(
      apply(prescribed("rx1", "100", (rx_opts){.dose = "0.5", .unit = "g", .route = "PO"}), T0), 0);
  cfx_fresh();
  cl_cds_patient_set_weight(st, 50);
  apply(prescribed("rx1", "100", (rx_opts){.dose = "501", .unit = "mg", .route = "PO"}), T0);
  f = only(KIND(DOSE), SEV(HIGH), "dose:100:oral:single");
  cr_assert_str_eq(f->code, "DOSEHINDW");
}

/* A charted body weight, in pounds. */
static Clinlog__V1__Event *weight_obs(const char *v, const char *unit, int64_t at, int status) {
  Clinlog__V1__Event *e = event();
  Clinlog__V1__ObservationRecorded *o = malloc(sizeof *o);
  clinlog__v1__observation_recorded__init(o);
  o->observation_id = S("wt");
  o->code = cc("http://loinc.org", "29463-7");
  o->value_case = CLINLOG__V1__OBSERVATION_RECORDED__VALUE_QUANTITY;
  o->quantity = qty(v, unit);
  o->status = status ? status : CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_FINAL;
  o->effective = ts(at);
  e->body_case = CLINLOG__V1__EVENT__BODY_OBSERVATION_RECORDED;
  e->observation_recorded = o;
  return e;
}

/* The weight for per-kg limits comes from the log: the newest charted body
 * weight (converted from pounds), not a late older one nor one entered in
 * error. 10 mg/kg at 50 kg (110.231 lb) allows 500 mg. */
Test(cds_check, per_kg_limits_take_the_charted_weight) {
  cfx_use_kb("clinlog-kb 1\nversion t-1\nsource s1 a source\n"
             "ingredient 100 alpha\ndose 100 oral single=10mg/kg source=s1\n");
  cfx_fresh(); /* one order, restated: it never alerts against itself */
  cr_assert_eq(apply(weight_obs("110.2311", "[lb_av]", T0, 0), T0), 0);
  cr_assert_eq(
      apply(prescribed("rx1", "100", (rx_opts){.dose = "499", .unit = "mg", .route = "PO"}), T0), 0);
  apply(prescribed("rx1", "100", (rx_opts){.dose = "520", .unit = "mg", .route = "PO"}), T0);
  only(KIND(DOSE), SEV(HIGH), "dose:100:oral:single");
  /* a late upload of an older, lower weight changes nothing */
  cr_assert_eq(apply(weight_obs("30", "kg", T0 - DAY, 0), T0 + H), 0);
  cr_assert_eq(
      apply(prescribed("rx1", "100", (rx_opts){.dose = "499", .unit = "mg", .route = "PO"}), T0), 0);
  /* neither does a newer one entered in error */
  cr_assert_eq(apply(weight_obs("30", "kg", T0 + H,
                                CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_ENTERED_IN_ERROR),
                     T0 + H),
               0);
  cr_assert_eq(
      apply(prescribed("rx1", "100", (rx_opts){.dose = "499", .unit = "mg", .route = "PO"}), T0), 0);
  /* a newer one does: 30 kg allows 300 mg */
  cr_assert_eq(apply(weight_obs("30", "kg", T0 + 2 * H, 0), T0 + 2 * H), 0);
  apply(prescribed("rx1", "100", (rx_opts){.dose = "499", .unit = "mg", .route = "PO"}), T0 + 2 * H);
  only(KIND(DOSE), SEV(HIGH), "dose:100:oral:single");
}

/* ------------------------------------------------------------ duplicates */

Test(cds_check, duplicate_therapy) {
  apply(prescribed("rx1", "36437", NONE), T0); /* sertraline */
  apply(prescribed("rx2", "4493", NONE), T0);  /* fluoxetine */
  const cl_cds_finding *f = only(KIND(DUPLICATE_THERAPY), SEV(MODERATE), "dup:ssris");
  cr_assert_str_eq(f->code, "DUPTHPCLS");
  cfx_fresh();
  apply(prescribed("rx1", "36567", NONE), T0); /* simvastatin */
  apply(prescribed("rx2", "83367", NONE), T0); /* atorvastatin */
  only(KIND(DUPLICATE_THERAPY), SEV(MODERATE), "dup:statins");
  cfx_fresh();
  apply(prescribed("rx1", "161", NONE), T0);
  apply(prescribed("rx2", "161", NONE), T0);
  f = only(KIND(DUPLICATE_THERAPY), SEV(MODERATE), "dup:161");
  cr_assert_str_eq(f->code, "DUPTHPGEN");
  /* not a duplicate: a class not marked duplicate (nitrates), unrelated */
  cfx_fresh();
  apply(prescribed("rx1", "161", NONE), T0);
  cr_assert_eq(apply(prescribed("rx2", "36567", NONE), T0), 0);
}

/* ------------------------------------------------------------ BCMA */

static void order_apap(void) {
  cr_assert_eq(
      apply(prescribed(
                "rx1", "161",
                (rx_opts){
                    .dose = "500", .unit = "mg", .route = "PO", .start = T0, .end = T0 + 10 * DAY}),
            T0),
      0);
}

static admin_opts good(void) {
  return (admin_opts){.rx = "rx1",
                      .wristband = "P1",
                      .med = "161",
                      .dose = "500",
                      .unit = "mg",
                      .route = "PO",
                      .at = T0 + H};
}

Test(cds_check, bcma_correct_administration_raises_nothing) {
  order_apap();
  cr_assert_eq(apply(administered(good()), T0 + H), 0);
  admin_opts a = good();
  a.dose = "0.5";
  a.unit = "g";
  a.rx = NULL; /* matched by drug */
  cr_assert_eq(apply(administered(a), T0 + 7 * H), 0);
  /* an MRN on the wristband */
  cl_err err = {0};
  cr_assert_eq(cl_cds_patient_add_id(st, "MRN-77", &err), 0);
  a = good();
  a.wristband = "MRN-77";
  cr_assert_eq(apply(administered(a), T0 + 13 * H), 0);
  /* a scanned NDC of the ordered product */
  cfx_fresh();
  apply(prescribed("rx1", "855288", (rx_opts){.dose = "1", .unit = "mg", .route = "PO"}), T0);
  cr_assert_eq(apply(administered((admin_opts){.rx = "rx1",
                                               .wristband = "P1",
                                               .barcode = "0093-1721-10",
                                               .dose = "1",
                                               .unit = "mg",
                                               .route = "PO"}),
                     T0 + H),
               0);
}

Test(cds_check, bcma_wrong_patient) {
  order_apap();
  admin_opts a = good();
  a.wristband = "P2";
  apply(administered(a), T0 + H);
  const cl_cds_finding *f = only(KIND(BCMA_MISMATCH), SEV(HIGH), "bcma:patient");
  cr_assert_null(strstr(f->detail, "P2"), "the scanned id is not echoed");
}

static Clinlog__V1__Identifier *ident(const char *type, const char *value) {
  Clinlog__V1__Identifier *i = malloc(sizeof *i);
  clinlog__v1__identifier__init(i);
  i->type = S(type);
  i->value = S(value);
  return i;
}

/* The wristband ids come from the log: a registration's MRN matches, its
 * SSN never does, and a demographics update naming the identifiers
 * replaces them (one not naming them keeps them). */
Test(cds_check, bcma_wristband_ids_from_the_registration) {
  Clinlog__V1__Event *e = event();
  Clinlog__V1__PatientRegistered *r = malloc(sizeof *r);
  clinlog__v1__patient_registered__init(r);
  r->patient_id = S("P1");
  r->n_identifiers = 2;
  r->identifiers = malloc(2 * sizeof *r->identifiers);
  r->identifiers[0] = ident("MR", "MRN-55");
  r->identifiers[1] = ident("SS", "123-45-6789");
  e->body_case = CLINLOG__V1__EVENT__BODY_PATIENT_REGISTERED;
  e->patient_registered = r;
  cr_assert_eq(apply(e, T0), 0);
  order_apap();
  admin_opts a = good();
  a.wristband = "MRN-55";
  cr_assert_eq(apply(administered(a), T0 + H), 0, "the MRN identifies the patient");
  a.wristband = "123-45-6789";
  apply(administered(a), T0 + 7 * H);
  only(KIND(BCMA_MISMATCH), SEV(HIGH), "bcma:patient");

  e = event();
  Clinlog__V1__PatientDemographicsUpdated *d = malloc(sizeof *d);
  clinlog__v1__patient_demographics_updated__init(d);
  d->patient_id = S("P1");
  d->n_updated_fields = 1;
  d->updated_fields = malloc(sizeof *d->updated_fields);
  d->updated_fields[0] = S("names");
  e->body_case = CLINLOG__V1__EVENT__BODY_PATIENT_DEMOGRAPHICS_UPDATED;
  e->patient_demographics_updated = d;
  cr_assert_eq(apply(e, T0 + 8 * H), 0);
  a.wristband = "MRN-55";
  a.at = T0 + 13 * H;
  cr_assert_eq(apply(administered(a), T0 + 13 * H), 0, "a name change keeps the MRN");

  e = event();
  d = malloc(sizeof *d);
  clinlog__v1__patient_demographics_updated__init(d);
  d->patient_id = S("P1");
  d->n_updated_fields = 1;
  d->updated_fields = malloc(sizeof *d->updated_fields);
  d->updated_fields[0] = S("identifiers");
  d->n_identifiers = 1;
  d->identifiers = malloc(sizeof *d->identifiers);
  d->identifiers[0] = ident("MR", "MRN-56");
  e->body_case = CLINLOG__V1__EVENT__BODY_PATIENT_DEMOGRAPHICS_UPDATED;
  e->patient_demographics_updated = d;
  cr_assert_eq(apply(e, T0 + 14 * H), 0);
  a.at = T0 + 19 * H;
  apply(administered(a), T0 + 19 * H);
  only(KIND(BCMA_MISMATCH), SEV(HIGH), "bcma:patient");
  a.wristband = "MRN-56";
  a.at = T0 + 25 * H;
  cr_assert_eq(apply(administered(a), T0 + 25 * H), 0, "the new MRN identifies the patient");
}

Test(cds_check, bcma_wrong_drug) {
  order_apap();
  admin_opts a = good();
  a.med = "7258"; /* naproxen against the acetaminophen order */
  a.dose = "250";
  apply(administered(a), T0 + H);
  only(KIND(BCMA_MISMATCH), SEV(HIGH), "bcma:drug");
  /* no order named and none matches */
  a.rx = NULL;
  apply(administered(a), T0 + 2 * H);
  only(KIND(BCMA_MISMATCH), SEV(HIGH), "bcma:drug");
}

Test(cds_check, bcma_wrong_dose) {
  order_apap();
  admin_opts a = good();
  a.dose = "650";
  apply(administered(a), T0 + H);
  only(KIND(BCMA_MISMATCH), SEV(HIGH), "bcma:dose");
  a.dose = "500001";
  a.unit = "mcg";
  apply(administered(a), T0 + 2 * H);
  only(KIND(BCMA_MISMATCH), SEV(HIGH), "bcma:dose");
}

Test(cds_check, bcma_wrong_route) {
  order_apap();
  admin_opts a = good();
  a.route = "IV";
  apply(administered(a), T0 + H);
  only(KIND(BCMA_MISMATCH), SEV(HIGH), "bcma:route");
}

Test(cds_check, bcma_wrong_time) {
  order_apap();
  admin_opts a = good();
  a.at = T0 + 11 * DAY; /* after the order's end */
  apply(administered(a), a.at);
  only(KIND(BCMA_MISMATCH), SEV(MODERATE), "bcma:time");
  a.at = T0 - H; /* before its start */
  apply(administered(a), a.at);
  only(KIND(BCMA_MISMATCH), SEV(MODERATE), "bcma:time");
  /* after it was discontinued */
  apply(discontinued("rx1"), T0 + 2 * H);
  a.at = T0 + 3 * H;
  apply(administered(a), a.at);
  only(KIND(BCMA_MISMATCH), SEV(MODERATE), "bcma:time");
}

Test(cds_check, bcma_check_leaves_state_alone) {
  order_apap();
  admin_opts o = good();
  o.wristband = "P9";
  Clinlog__V1__Event *e = administered(o);
  uint8_t id[16];
  idn(99, id);
  F->n = 0;
  F->truncated = 0;
  cl_cds_bcma(kb, st, e->medication_administered, id, T0 + H, F);
  protobuf_c_message_free_unpacked(&e->base, NULL);
  only(KIND(BCMA_MISMATCH), SEV(HIGH), "bcma:patient");
  size_t n, a, al, ad;
  cl_cds_patient_counts(st, T0 + H, &n, &a, &al, &ad);
  cr_assert_eq(ad, 0, "nothing recorded");
}

/* ------------------------------------------------------------ replay */

static void run(cl_cds_finding *all, size_t *n) {
  *n = 0;
  next_id = 1;
  cfx_fresh();
  Clinlog__V1__Event *evs[] = {
      prescribed("rx1", WARFARIN, NONE),
      allergy("al1", RX, "1191", 0),
      prescribed("rx2", IBUPROFEN, (rx_opts){.dose = "900", .unit = "mg", .route = "PO"}),
      prescribed("rx3", "4493", NONE),
      prescribed("rx4", "36437", NONE),
      administered((admin_opts){
          .rx = "rx2", .wristband = "PX", .med = "7258", .dose = "1", .unit = "g", .route = "IV"}),
  };
  for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++) {
    apply(evs[i], T0 + (int64_t)i * H);
    for (size_t k = 0; k < F->n; k++)
      all[(*n)++] = F->f[k];
  }
}

Test(cds_check, replay_gives_identical_findings_and_keys) {
  static cl_cds_finding a[64], b[64];
  size_t na, nb;
  run(a, &na);
  run(b, &nb);
  cr_assert_gt(na, 6, "the sequence raises several findings (%zu)", na);
  cr_assert_eq(na, nb);
  cr_assert(memcmp(a, b, na * sizeof a[0]) == 0, "byte-identical");
  for (size_t i = 0; i < na; i++)
    for (size_t j = i + 1; j < na; j++)
      cr_assert(memcmp(a[i].key, a[j].key, 16) != 0, "keys %zu and %zu collide", i, j);
}

Test(cds_check, issue_detected_from_a_finding) {
  apply(prescribed("rx1", WARFARIN, NONE), T0);
  apply(prescribed("rx2", IBUPROFEN, NONE), T0 + H);
  cl_cds_issue is;
  cl_cds_issue_fill(&F->f[0], "patient-P1", T0 + H, &is);
  cr_assert_eq(strlen(is.msg.issue_id), 32);
  char hex[3];
  snprintf(hex, sizeof hex, "%02x", F->f[0].key[0]);
  cr_assert(strncmp(is.msg.issue_id, hex, 2) == 0);
  cr_assert_str_eq(is.msg.code->code, "DRG");
  cr_assert_str_eq(is.msg.code->system, CL_CDS_ACTCODE);
  cr_assert_str_eq(is.msg.rule_id, "warfarin-nsaids");
  cr_assert_str_eq(is.msg.rule_version, "2026-12-05.2-seed");
  cr_assert_eq(is.msg.n_implicated, 2);
  cr_assert_str_eq(is.msg.implicated[1]->stream, "patient-P1");
  cr_assert_eq(is.msg.detected_at->seconds, (T0 + H) / 1000000000ll);
  size_t len = clinlog__v1__issue_detected__get_packed_size(&is.msg);
  uint8_t *p1 = malloc(len), *p2 = malloc(len);
  clinlog__v1__issue_detected__pack(&is.msg, p1);
  cl_cds_issue is2;
  cl_cds_issue_fill(&F->f[0], "patient-P1", T0 + H, &is2);
  cr_assert_eq(clinlog__v1__issue_detected__pack(&is2.msg, p2), len);
  cr_assert(memcmp(p1, p2, len) == 0);
  free(p1);
  free(p2);
}

Test(cds_check, bad_arguments_and_limits) {
  cl_err err = {0};
  cl_cds_patient *p = NULL;
  cr_assert_eq(cl_cds_patient_new("", &p, &err), CL_EINVAL);
  Clinlog__V1__Event *e = prescribed("rx1", WARFARIN, NONE);
  cr_assert_eq(cl_cds_apply(kb, st, e, NULL, T0, F, &err), CL_EINVAL);
  protobuf_c_message_free_unpacked(&e->base, NULL);
  /* the order table is bounded; ended orders make room */
  char id[16];
  for (int i = 0; i < CL_CDS_MAX_ORDERS; i++) {
    snprintf(id, sizeof id, "o%d", i);
    apply(prescribed(id, "161", (rx_opts){.start = T0, .end = T0 + DAY}), T0);
  }
  e = prescribed("one-more", "161", NONE);
  uint8_t eid[16];
  idn(9999, eid);
  cr_assert_eq(cl_cds_apply(kb, st, e, eid, T0, F, &err), CL_ETOOBIG);
  cr_assert_eq(F->n, 0);
  cr_assert_eq(cl_cds_apply(kb, st, e, eid, T0 + 9 * DAY, F, &err), 0, "%s", err.msg);
  protobuf_c_message_free_unpacked(&e->base, NULL);
  size_t n, a, al, ad;
  cl_cds_patient_counts(st, T0 + 9 * DAY, &n, &a, &al, &ad);
  cr_assert_eq(n, 1);
  cr_assert_eq(a, 1);
}

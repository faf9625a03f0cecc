/* Remote patient monitoring (query/cds/rpm.c) through the checker's entry
 * point (cl_cds_apply), against the seed knowledge base and small inline
 * ones: every seed threshold at its boundary (at the limit nothing, one
 * step past an alert), unit conversion, the components of a blood
 * pressure, weight gain over 1 and 7 days, no flooding, battery,
 * adherence and its reset, an override closing an alert, device-silence
 * watches, the state's bytes, and byte-identical findings on replay. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/cds/check.h"
#include "query/cds/rpm.h"
#include "tests/query/cds_fixture.h"

#define NS 1000000000ll
#define H (3600ll * NS)
#define DAY (24 * H)
#define T0 (1767225600ll * NS) /* 2026-01-01T00:00:00Z */

#define KIND(x) CLINLOG__V1__ISSUE_KIND__ISSUE_KIND_##x
#define SEV(x) CLINLOG__V1__ISSUE_SEVERITY__ISSUE_SEVERITY_##x

/* the shared set-up's state, by the names these tests use */
#define kb (cfx.kb)
#define st (cfx.st)
#define F (cfx.F)
#define next_id (cfx.next_id)

static void fresh(void) {
  cfx_fresh();
  next_id = 1;
}

static void new_id(uint8_t id[16]) {
  memset(id, 0, 16);
  id[0] = 0xd0;
  id[12] = (uint8_t)(next_id >> 24);
  id[13] = (uint8_t)(next_id >> 16);
  id[14] = (uint8_t)(next_id >> 8);
  id[15] = (uint8_t)next_id;
  next_id++;
}

/* Applies ev at t; returns the number of findings (in F). */
static size_t apply(Clinlog__V1__Event *ev, int64_t t, uint8_t id_out[16]) {
  uint8_t id[16];
  new_id(id);
  if (id_out)
    memcpy(id_out, id, 16);
  cl_err err = {0};
  cr_assert_eq(cl_cds_apply(kb, st, ev, id, t, F, &err), 0, "%s", err.msg);
  return F->n;
}

/* ------------------------------------------------------------ builders:
 * everything on the caller's stack, valid during one apply */

typedef struct reading {
  Clinlog__V1__Event ev;
  Clinlog__V1__DeviceReadingRecorded r;
  Clinlog__V1__CodeableConcept cc;
  Clinlog__V1__Code code, *codep;
  Clinlog__V1__Quantity q;
  Clinlog__V1__Component comp[2], *compp[2];
  Clinlog__V1__Code ccode[2];
  Clinlog__V1__Quantity cq[2];
  char v[2][32];
} reading;

static Clinlog__V1__Event *single(reading *x, const char *loinc, const char *value,
                                  const char *unit) {
  memset(x, 0, sizeof *x);
  clinlog__v1__event__init(&x->ev);
  clinlog__v1__device_reading_recorded__init(&x->r);
  clinlog__v1__codeable_concept__init(&x->cc);
  clinlog__v1__code__init(&x->code);
  clinlog__v1__quantity__init(&x->q);
  x->ev.stream = "patient-P1";
  x->ev.body_case = CLINLOG__V1__EVENT__BODY_DEVICE_READING_RECORDED;
  x->ev.device_reading_recorded = &x->r;
  x->r.device_id = "dev-1";
  x->r.status = CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_FINAL;
  x->code.system = CL_LOINC;
  x->code.code = (char *)loinc;
  x->codep = &x->code;
  x->cc.n_coding = 1;
  x->cc.coding = &x->codep;
  x->r.code = &x->cc;
  if (value) {
    snprintf(x->v[0], sizeof x->v[0], "%s", value);
    x->q.value = x->v[0];
    x->q.unit = (char *)unit;
    x->r.value = &x->q;
  }
  return &x->ev;
}

/* A blood pressure panel (85354-9) with systolic and diastolic components. */
static Clinlog__V1__Event *bp(reading *x, const char *sys, const char *dia) {
  single(x, "85354-9", NULL, NULL);
  const char *codes[2] = {"8480-6", "8462-4"}, *vals[2] = {sys, dia};
  for (int i = 0; i < 2; i++) {
    clinlog__v1__component__init(&x->comp[i]);
    clinlog__v1__code__init(&x->ccode[i]);
    clinlog__v1__quantity__init(&x->cq[i]);
    x->ccode[i].system = CL_LOINC;
    x->ccode[i].code = (char *)codes[i];
    snprintf(x->v[i], sizeof x->v[i], "%s", vals[i]);
    x->cq[i].value = x->v[i];
    x->cq[i].unit = "mm[Hg]";
    x->comp[i].code = &x->ccode[i];
    x->comp[i].value = &x->cq[i];
    x->compp[i] = &x->comp[i];
  }
  x->r.n_components = 2;
  x->r.components = x->compp;
  return &x->ev;
}

typedef struct status {
  Clinlog__V1__Event ev;
  Clinlog__V1__DeviceStatusReported s;
  Clinlog__V1__Quantity battery;
  char v[32];
} status;

static Clinlog__V1__Event *battery(status *x, const char *device, const char *pct) {
  memset(x, 0, sizeof *x);
  clinlog__v1__event__init(&x->ev);
  clinlog__v1__device_status_reported__init(&x->s);
  clinlog__v1__quantity__init(&x->battery);
  x->ev.stream = "patient-P1";
  x->ev.body_case = CLINLOG__V1__EVENT__BODY_DEVICE_STATUS_REPORTED;
  x->ev.device_status_reported = &x->s;
  x->s.device_id = (char *)device;
  snprintf(x->v, sizeof x->v, "%s", pct);
  x->battery.value = x->v;
  x->battery.unit = "%";
  x->s.battery = &x->battery;
  return &x->ev;
}

typedef struct dispense {
  Clinlog__V1__Event ev;
  Clinlog__V1__DispenserEventRecorded d;
} dispense;

static Clinlog__V1__Event *dose(dispense *x, const char *rx, int outcome) {
  memset(x, 0, sizeof *x);
  clinlog__v1__event__init(&x->ev);
  clinlog__v1__dispenser_event_recorded__init(&x->d);
  x->ev.stream = "patient-P1";
  x->ev.body_case = CLINLOG__V1__EVENT__BODY_DISPENSER_EVENT_RECORDED;
  x->ev.dispenser_event_recorded = &x->d;
  x->d.device_id = "pillbox-1";
  x->d.prescription_id = (char *)rx;
  x->d.outcome = (Clinlog__V1__DispenserOutcome)outcome;
  return &x->ev;
}

#define MISSED CLINLOG__V1__DISPENSER_OUTCOME__DISPENSER_OUTCOME_MISSED
#define SKIPPED CLINLOG__V1__DISPENSER_OUTCOME__DISPENSER_OUTCOME_SKIPPED
#define TAKEN CLINLOG__V1__DISPENSER_OUTCOME__DISPENSER_OUTCOME_TAKEN

/* One value of `loinc` at t: the number of findings. */
static size_t one(const char *loinc, const char *value, const char *unit, int64_t t) {
  reading r;
  return apply(single(&r, loinc, value, unit), t, NULL);
}

/* Each threshold: the limit itself on a fresh state alerts nothing, one
 * step past it (on a fresh state) alerts with `rule`, `sev`. */
static void boundary(const char *loinc, const char *at, const char *past, const char *unit,
                     const char *rule, int sev) {
  fresh();
  cr_assert_eq(one(loinc, at, unit, T0), 0, "%s %s %s alerted", loinc, at, unit);
  fresh();
  cr_assert_eq(one(loinc, past, unit, T0), 1, "%s %s %s did not alert", loinc, past, unit);
  cr_assert_eq(F->f[0].kind, KIND(VITAL_SIGN));
  cr_assert_str_eq(F->f[0].rule_id, rule);
  cr_assert_eq(F->f[0].severity, sev, "%s", rule);
  cr_assert_eq(F->f[0].n_implicated, 1);
  cr_assert_str_eq(F->f[0].kb_version, cl_kb_version(kb));
  cr_assert_not_null(F->f[0].source);
  cr_assert(strstr(F->f[0].detail, "Source: ") != NULL, "%s", F->f[0].detail);
}

TestSuite(cds_rpm, .init = cfx_setup_seed, .fini = cfx_teardown);

Test(cds_rpm, seed_thresholds_at_the_boundary) {
  boundary("8480-6", "180", "181", "mm[Hg]", "vital:8480-6:high:180", SEV(HIGH));
  boundary("8462-4", "120", "120.1", "mm[Hg]", "vital:8462-4:high:120", SEV(HIGH));
  boundary("8480-6", "90", "89", "mm[Hg]", "vital:8480-6:low:90", SEV(MODERATE));
  boundary("59408-5", "92", "91", "%", "vital:59408-5:low:92", SEV(HIGH));
  boundary("2708-6", "92", "91.9", "%", "vital:2708-6:low:92", SEV(HIGH));
  boundary("2339-0", "70", "69", "mg/dL", "vital:2339-0:low:70", SEV(MODERATE));
  /* at 54 only level 1 is crossed; below it both are and the most extreme alerts */
  fresh();
  cr_assert_eq(one("2339-0", "54", "mg/dL", T0), 1);
  cr_assert_str_eq(F->f[0].rule_id, "vital:2339-0:low:70");
  fresh();
  cr_assert_eq(one("2339-0", "53", "mg/dL", T0), 1);
  cr_assert_str_eq(F->f[0].rule_id, "vital:2339-0:low:54");
  cr_assert_eq(F->f[0].severity, SEV(HIGH));
  boundary("41653-7", "70", "69.9", "mg/dL", "vital:41653-7:low:70", SEV(MODERATE));
  boundary("14743-9", "3.9", "3.8", "mmol/L", "vital:14743-9:low:3.9", SEV(MODERATE));
  boundary("8867-4", "40", "39", "{beats}/min", "vital:8867-4:low:40", SEV(HIGH));
  boundary("8867-4", "130", "131", "{beats}/min", "vital:8867-4:high:130", SEV(HIGH));
  /* in range, and codes without rules, raise nothing */
  fresh();
  cr_assert_eq(one("8480-6", "120", "mm[Hg]", T0), 0);
  cr_assert_eq(one("8310-5", "41", "Cel", T0), 0);
}

Test(cds_rpm, units_convert_or_are_counted) {
  /* glucose in mmol/L against a mg/dL rule: 3.9 mmol/L = 70.26 mg/dL, 3.8 = 68.46 */
  fresh();
  cr_assert_eq(one("2339-0", "3.9", "mmol/L", T0), 0);
  cr_assert_eq(one("2339-0", "3.8", "mmol/L", T0 + H), 1);
  cr_assert_str_eq(F->f[0].rule_id, "vital:2339-0:low:70");
  /* pressure in kPa: 24 kPa = 180.01 mm Hg, 23.9 = 179.3 */
  fresh();
  cr_assert_eq(one("8480-6", "23.9", "kPa", T0), 0);
  cr_assert_eq(one("8480-6", "24.1", "kPa", T0 + H), 1);
  /* a unit that cannot be converted raises nothing and is counted */
  fresh();
  cr_assert_eq(one("2339-0", "30", "g/L", T0), 0);
  cr_assert_eq(one("8480-6", "250", "mg/dL", T0), 0);
  cl_rpm_counts c;
  cl_rpm_get_counts(cl_rpm_of(st), &c);
  cr_assert_eq(c.unconverted, 2);
  /* temperature and weight through an inline KB */
  cfx_use_kb("clinlog-kb 1\nversion t\nsource s A source\n"
             "vital 8310-5 high 38.0 Cel moderate source=s Fever\n"
             "vital 29463-7 low 40 kg low source=s Low weight\n");
  fresh();
  cr_assert_eq(one("8310-5", "100.4", "[degF]", T0), 0); /* 38.0 Cel exactly */
  cr_assert_eq(one("8310-5", "100.6", "[degF]", T0 + H), 1);
  fresh();
  cr_assert_eq(one("29463-7", "88.2", "[lb_av]", T0), 0); /* 40.0068 kg */
  cr_assert_eq(one("29463-7", "40000", "g", T0 + H), 0);  /* at the limit */
  cr_assert_eq(one("29463-7", "39999", "g", T0 + 2 * H), 1);
}

/* Two thresholds of one code in different units: the most extreme is
 * chosen in one unit (54 mg/dL = 3.0 mmol/L is below 3.9 mmol/L). */
Test(cds_rpm, extreme_threshold_across_units) {
  cfx_use_kb("clinlog-kb 1\nversion t\nsource s A source\n"
             "vital 2339-0 low 3.9 mmol/L moderate source=s Level 1\n"
             "vital 2339-0 low 54 mg/dL high source=s Level 2\n");
  fresh();
  cr_assert_eq(one("2339-0", "50", "mg/dL", T0), 1);
  cr_assert_str_eq(F->f[0].rule_id, "vital:2339-0:low:54");
  cr_assert(cl_rpm_is_open(cl_rpm_of(st), "vital:2339-0:low:3.9"), "opened under its key");
  fresh();
  cr_assert_eq(one("2339-0", "3.5", "mmol/L", T0), 1);
  cr_assert_str_eq(F->f[0].rule_id, "vital:2339-0:low:3.9");
}

Test(cds_rpm, ucum_conversions) {
  double v;
  cr_assert_eq(cl_kb_ucum_convert(70, "mg/dL", "mmol/L", "2339-0", &v), 0);
  cr_assert_float_eq(v, 3.885, 1e-3);
  cr_assert_eq(cl_kb_ucum_convert(70, "mg/dL", "mmol/L", "2093-3", &v), -1, "not glucose");
  cr_assert_eq(cl_kb_ucum_convert(212, "[degF]", "Cel", NULL, &v), 0);
  cr_assert_float_eq(v, 100.0, 1e-9);
  cr_assert_eq(cl_kb_ucum_convert(1, "[lb_av]", "g", NULL, &v), 0);
  cr_assert_float_eq(v, 453.59237, 1e-9);
  cr_assert_eq(cl_kb_ucum_convert(1, "kg", "Cel", NULL, &v), -1);
  cr_assert_eq(cl_kb_ucum_convert(1, "furlong", "furlong", NULL, &v), 0, "same unit");
  cr_assert_eq(cl_kb_ucum_convert(1, "furlong", "kg", NULL, &v), -1);
}

Test(cds_rpm, blood_pressure_components) {
  reading r;
  cr_assert_eq(apply(bp(&r, "185", "125"), T0, NULL), 2);
  cr_assert_str_eq(F->f[0].rule_id, "vital:8480-6:high:180");
  cr_assert_str_eq(F->f[1].rule_id, "vital:8462-4:high:120");
  cr_assert_eq(apply(bp(&r, "186", "80"), T0 + H, NULL), 0, "both open or back in range");
  cr_assert(cl_rpm_is_open(cl_rpm_of(st), "vital:8480-6:high:180"));
  cr_assert(!cl_rpm_is_open(cl_rpm_of(st), "vital:8462-4:high:120"));
  cr_assert_eq(apply(bp(&r, "150", "121"), T0 + 2 * H, NULL), 1, "diastolic again");
  cr_assert_str_eq(F->f[0].rule_id, "vital:8462-4:high:120");
  /* entered in error: ignored */
  fresh();
  bp(&r, "200", "130");
  r.r.status = CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_ENTERED_IN_ERROR;
  cr_assert_eq(apply(&r.ev, T0, NULL), 0);
}

Test(cds_rpm, no_flooding_and_reopening) {
  for (int i = 0; i < 10; i++)
    cr_assert_eq(one("8480-6", "190", "mm[Hg]", T0 + i * H), i == 0 ? 1u : 0u, "reading %d", i);
  cr_assert_eq(one("8480-6", "150", "mm[Hg]", T0 + 11 * H), 0, "back in range closes");
  cr_assert(!cl_rpm_is_open(cl_rpm_of(st), "vital:8480-6:high:180"));
  cr_assert_eq(one("8480-6", "181", "mm[Hg]", T0 + 12 * H), 1, "a second excursion alerts");
  /* glucose escalation: level 1, then level 2, then drifting back to level 1 */
  fresh();
  cr_assert_eq(one("2339-0", "65", "mg/dL", T0), 1);
  cr_assert_str_eq(F->f[0].rule_id, "vital:2339-0:low:70");
  cr_assert_eq(one("2339-0", "50", "mg/dL", T0 + H), 1);
  cr_assert_str_eq(F->f[0].rule_id, "vital:2339-0:low:54");
  cr_assert_eq(one("2339-0", "60", "mg/dL", T0 + 2 * H), 0);
  cr_assert_eq(one("2339-0", "52", "mg/dL", T0 + 3 * H), 1, "level 2 again after it closed");
  /* straight to level 2 opens level 1 silently: back to 60 alerts nothing */
  fresh();
  cr_assert_eq(one("2339-0", "50", "mg/dL", T0), 1);
  cr_assert_eq(one("2339-0", "60", "mg/dL", T0 + H), 0);
  cr_assert_eq(one("2339-0", "80", "mg/dL", T0 + 2 * H), 0);
  cl_rpm_counts c;
  cl_rpm_get_counts(cl_rpm_of(st), &c);
  cr_assert_eq(c.open, 0, "back in range closes both");
}

/* Readings arrive late and out of order (a gateway that was offline): the
 * alert state follows the newest measurement of each code; an older
 * reading neither closes nor reopens it. */
Test(cds_rpm, late_readings_do_not_override_newer_ones) {
  cr_assert_eq(one("8480-6", "190", "mm[Hg]", T0 + 2 * H), 1, "the newest is high: alert");
  cr_assert_eq(one("8480-6", "130", "mm[Hg]", T0 + H), 0, "a late normal reading");
  cr_assert(cl_rpm_is_open(cl_rpm_of(st), "vital:8480-6:high:180"), "still open");
  cr_assert_eq(one("8480-6", "195", "mm[Hg]", T0 + 3 * H), 0, "no second alert: no flooding");
  cr_assert_eq(one("8480-6", "128", "mm[Hg]", T0 + 4 * H), 0, "a newer normal reading");
  cr_assert(!cl_rpm_is_open(cl_rpm_of(st), "vital:8480-6:high:180"), "closed");
  cr_assert_eq(one("8480-6", "200", "mm[Hg]", T0 + 30 * 60 * NS), 0, "a late high reading");
  cr_assert(!cl_rpm_is_open(cl_rpm_of(st), "vital:8480-6:high:180"), "stays closed");
  /* each code on its own: diastolic's first reading is older, yet counts */
  cr_assert_eq(one("8462-4", "125", "mm[Hg]", T0), 1);
  /* the state with the newest times round-trips */
  uint8_t *b;
  size_t n;
  cl_err err = {0};
  cr_assert_eq(cl_cds_patient_serialize(st, &b, &n, &err), 0, "%s", err.msg);
  cl_cds_patient *back;
  cr_assert_eq(cl_cds_patient_parse(b, n, &back, &err), 0, "%s", err.msg);
  uint8_t *b2;
  size_t n2;
  cr_assert_eq(cl_cds_patient_serialize(back, &b2, &n2, &err), 0);
  cr_assert_eq(n, n2);
  cr_assert_arr_eq(b, b2, n);
  free(b);
  free(b2);
  cl_cds_patient_free(back);
}

Test(cds_rpm, weight_gain_over_one_and_seven_days) {
  /* seed: more than 2 lb (0.90718474 kg) in a day, 5 lb (2.26796185 kg) in 7 */
  cr_assert_eq(one("29463-7", "80", "kg", T0), 0);
  cr_assert_eq(one("29463-7", "80.90718474", "kg", T0 + DAY), 0, "exactly 2 lb");
  fresh();
  cr_assert_eq(one("29463-7", "80", "kg", T0), 0);
  cr_assert_eq(one("29463-7", "80.9073", "kg", T0 + DAY + H), 1, "a step past 2 lb");
  cr_assert_str_eq(F->f[0].rule_id, "weight-gain:29463-7:2:1");
  cr_assert_eq(F->f[0].kind, KIND(VITAL_SIGN));
  cr_assert_eq(one("29463-7", "81.5", "kg", T0 + DAY + 2 * H), 0, "open: no flood");
  /* slow gain: no daily alert, the weekly one on day 7 */
  fresh();
  const char *kg[] = {"80", "80.5", "81.2", "82.0", "82.3"};
  const int day[] = {0, 2, 4, 6, 7};
  for (int i = 0; i < 5; i++) {
    size_t n = one("29463-7", kg[i], "kg", T0 + day[i] * DAY);
    cr_assert_eq(n, i == 4 ? 1u : 0u, "day %d", day[i]);
  }
  cr_assert_str_eq(F->f[0].rule_id, "weight-gain:29463-7:5:7");
  /* in pounds: 176.4 lb then 179 lb the next day (2.6 lb) */
  fresh();
  cr_assert_eq(one("29463-7", "176.4", "[lb_av]", T0), 0);
  cr_assert_eq(one("29463-7", "179", "[lb_av]", T0 + DAY), 1);
  /* a weight in a unit of no mass: counted, not kept */
  cr_assert_eq(one("29463-7", "3", "mm[Hg]", T0 + 2 * DAY), 0);
  cl_rpm_counts c;
  cl_rpm_get_counts(cl_rpm_of(st), &c);
  cr_assert_eq(c.unconverted, 1);
  cr_assert_eq(c.weights, 2);
}

Test(cds_rpm, battery_once_until_recharged) {
  status s;
  cr_assert_eq(apply(battery(&s, "dev-1", "20"), T0, NULL), 0, "at the limit");
  cr_assert_eq(apply(battery(&s, "dev-1", "19"), T0 + H, NULL), 1);
  cr_assert_eq(F->f[0].kind, KIND(DEVICE_STATUS));
  cr_assert_str_eq(F->f[0].rule_id, "device-battery:20");
  cr_assert(strstr(F->f[0].detail, "dev-1") == NULL, "no device id (an identifier) in the text");
  cr_assert_eq(apply(battery(&s, "dev-1", "12"), T0 + 2 * H, NULL), 0);
  cr_assert_eq(apply(battery(&s, "dev-2", "5"), T0 + 2 * H, NULL), 1, "another device");
  cr_assert_eq(apply(battery(&s, "dev-1", "25"), T0 + 3 * H, NULL), 0);
  cr_assert_eq(apply(battery(&s, "dev-1", "10"), T0 + 4 * H, NULL), 1, "again after recharge");
}

Test(cds_rpm, adherence_count_window_and_reset) {
  dispense d;
  cr_assert_eq(apply(dose(&d, "rx-1", MISSED), T0, NULL), 0);
  cr_assert_eq(apply(dose(&d, "rx-1", SKIPPED), T0 + DAY, NULL), 1, "2 in 7 days");
  cr_assert_eq(F->f[0].kind, KIND(ADHERENCE));
  cr_assert_str_eq(F->f[0].code, "COMPLY");
  cr_assert_str_eq(F->f[0].rule_id, "adherence:2:7");
  cr_assert_eq(apply(dose(&d, "rx-1", MISSED), T0 + 2 * DAY, NULL), 0, "open");
  cr_assert_eq(apply(dose(&d, "rx-2", MISSED), T0 + 2 * DAY, NULL), 0, "another prescription");
  cr_assert_eq(apply(dose(&d, "rx-1", TAKEN), T0 + 3 * DAY, NULL), 0);
  cr_assert(!cl_rpm_is_open(cl_rpm_of(st), "adherence:rx-1"));
  cr_assert_eq(apply(dose(&d, "rx-1", MISSED), T0 + 4 * DAY, NULL), 0, "reset: one miss");
  cr_assert_eq(apply(dose(&d, "rx-1", MISSED), T0 + 5 * DAY, NULL), 1);
  /* out of the window: a miss 8 days after the first does not count it */
  fresh();
  cr_assert_eq(apply(dose(&d, "rx-1", MISSED), T0, NULL), 0);
  cr_assert_eq(apply(dose(&d, "rx-1", MISSED), T0 + 8 * DAY, NULL), 0);
  cr_assert_eq(apply(dose(&d, "rx-1", MISSED), T0 + 9 * DAY, NULL), 1);
  /* a miss reported late (earlier than the last one) still counts with it */
  cfx_fresh();
  cr_assert_eq(apply(dose(&d, "rx-1", MISSED), T0 + 5 * DAY, NULL), 0);
  cr_assert_eq(apply(dose(&d, "rx-1", MISSED), T0 + 4 * DAY, NULL), 1);
  /* one older than the window ends nothing and counts for nothing */
  cfx_fresh();
  cr_assert_eq(apply(dose(&d, "rx-1", MISSED), T0 + 9 * DAY, NULL), 0);
  cr_assert_eq(apply(dose(&d, "rx-1", MISSED), T0, NULL), 0);
}

static Clinlog__V1__Event * override(Clinlog__V1__Event *ev, Clinlog__V1__AlertOverridden *o,
                                     const uint8_t key[16], char hex[33]) {
  clinlog__v1__event__init(ev);
  clinlog__v1__alert_overridden__init(o);
  ev->stream = "patient-P1";
  ev->body_case = CLINLOG__V1__EVENT__BODY_ALERT_OVERRIDDEN;
  ev->alert_overridden = o;
  if (hex) {
    for (int i = 0; i < 16; i++)
      snprintf(hex + 2 * i, 3, "%02x", key[i]);
    o->issue_id = hex;
  } else {
    o->issue_event_id.len = 16;
    o->issue_event_id.data = (uint8_t *)key;
  }
  return ev;
}

Test(cds_rpm, an_override_closes_the_alert) {
  Clinlog__V1__Event ev;
  Clinlog__V1__AlertOverridden o;
  cr_assert_eq(one("8480-6", "190", "mm[Hg]", T0), 1);
  uint8_t key[16];
  memcpy(key, F->f[0].key, 16);
  cr_assert_eq(one("8480-6", "190", "mm[Hg]", T0 + H), 0);
  cr_assert_eq(apply(override(&ev, &o, key, NULL), T0 + 2 * H, NULL), 0);
  cr_assert(!cl_rpm_is_open(cl_rpm_of(st), "vital:8480-6:high:180"));
  cr_assert_eq(one("8480-6", "190", "mm[Hg]", T0 + 3 * H), 1, "the next excursion alerts");
  /* by issue_id in hex */
  memcpy(key, F->f[0].key, 16);
  char hex[33];
  cr_assert_eq(apply(override(&ev, &o, key, hex), T0 + 4 * H, NULL), 0);
  cr_assert(!cl_rpm_is_open(cl_rpm_of(st), "vital:8480-6:high:180"));
  /* an override of something else closes nothing */
  cr_assert_eq(one("8480-6", "190", "mm[Hg]", T0 + 5 * H), 1);
  uint8_t other[16] = {1};
  cr_assert_eq(apply(override(&ev, &o, other, NULL), T0 + 6 * H, NULL), 0);
  cr_assert(cl_rpm_is_open(cl_rpm_of(st), "vital:8480-6:high:180"));
}

Test(cds_rpm, an_acknowledgement_closes_the_alert) {
  Clinlog__V1__Event ev;
  Clinlog__V1__AlertAcknowledged a;
  cr_assert_eq(one("8480-6", "190", "mm[Hg]", T0), 1);
  uint8_t key[16];
  memcpy(key, F->f[0].key, 16);
  /* of something else: still open */
  uint8_t other[16] = {2};
  clinlog__v1__event__init(&ev);
  clinlog__v1__alert_acknowledged__init(&a);
  ev.stream = "patient-P1";
  ev.body_case = CLINLOG__V1__EVENT__BODY_ALERT_ACKNOWLEDGED;
  ev.alert_acknowledged = &a;
  a.issue_event_id = (ProtobufCBinaryData){16, other};
  cr_assert_eq(apply(&ev, T0 + H, NULL), 0);
  cr_assert(cl_rpm_is_open(cl_rpm_of(st), "vital:8480-6:high:180"));
  cr_assert_eq(one("8480-6", "190", "mm[Hg]", T0 + 2 * H), 0, "still one open alert");
  /* of this alert: closed, and the next excursion alerts again */
  a.issue_event_id = (ProtobufCBinaryData){16, key};
  cr_assert_eq(apply(&ev, T0 + 3 * H, NULL), 0);
  cr_assert(!cl_rpm_is_open(cl_rpm_of(st), "vital:8480-6:high:180"));
  cr_assert_eq(one("8480-6", "190", "mm[Hg]", T0 + 4 * H), 1, "the next excursion alerts");
}

Test(cds_rpm, silence_watch) {
  reading r;
  uint8_t id1[16], id2[16];
  cr_assert_eq(apply(single(&r, "8867-4", "70", "{beats}/min"), T0, id1), 0);
  cl_rpm_watch w;
  cl_rpm_watch_get(cl_rpm_of(st), "dev-1", &w);
  cr_assert(w.armed);
  cr_assert_eq(w.deadline_ns, T0 + 86400 * NS);
  cl_rpm_silent_finding(kb, cl_rpm_of(st), "dev-1", F);
  cr_assert_eq(F->n, 1);
  cr_assert_eq(F->f[0].kind, KIND(DEVICE_SILENT));
  cr_assert_str_eq(F->f[0].rule_id, "device-silent:86400");
  cr_assert_arr_eq(F->f[0].key, w.key, 16);
  cr_assert_arr_eq(F->f[0].implicated[0], id1, 16, "the last contact");
  /* the received time, when given, is the contact */
  single(&r, "8867-4", "70", "{beats}/min");
  Google__Protobuf__Timestamp rt = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  rt.seconds = (T0 + 2 * H) / NS;
  r.r.received_at = &rt;
  cr_assert_eq(apply(&r.ev, T0 + H, id2), 0);
  cl_rpm_watch w2;
  cl_rpm_watch_get(cl_rpm_of(st), "dev-1", &w2);
  cr_assert_eq(w2.deadline_ns, T0 + 2 * H + 86400 * NS);
  cr_assert(memcmp(w2.key, w.key, 16) != 0, "a new contact, a new key");
  /* an older reading uploaded late does not move the contact back */
  cr_assert_eq(apply(single(&r, "8867-4", "70", "{beats}/min"), T0 - DAY, NULL), 0);
  cl_rpm_watch_get(cl_rpm_of(st), "dev-1", &w);
  cr_assert_eq(w.deadline_ns, w2.deadline_ns);
  cr_assert_arr_eq(w.key, w2.key, 16);
  /* the silence IssueDetected folded: silent, disarmed; a stale key does nothing */
  char dev[CL_RPM_ID_MAX];
  int64_t dl;
  uint8_t stale[16] = {9};
  cr_assert_eq(cl_rpm_silence_folded(cl_rpm_of(st), stale, dev, &dl), 0);
  cr_assert_eq(cl_rpm_silence_folded(cl_rpm_of(st), w2.key, dev, &dl), 1);
  cr_assert_str_eq(dev, "dev-1");
  cr_assert_eq(dl, w2.deadline_ns);
  cr_assert(cl_rpm_is_open(cl_rpm_of(st), "silent:dev-1"));
  cl_rpm_watch_get(cl_rpm_of(st), "dev-1", &w);
  cr_assert(!w.armed);
  /* a late backlog is no contact: still silent, not armed */
  cr_assert_eq(apply(single(&r, "8867-4", "70", "{beats}/min"), T0, NULL), 0);
  cr_assert(cl_rpm_is_open(cl_rpm_of(st), "silent:dev-1"));
  cl_rpm_watch_get(cl_rpm_of(st), "dev-1", &w);
  cr_assert(!w.armed);
  /* a status report is a contact: silence closes, the watch re-arms */
  status s;
  cr_assert_eq(apply(battery(&s, "dev-1", "90"), T0 + 3 * DAY, NULL), 0);
  cr_assert(!cl_rpm_is_open(cl_rpm_of(st), "silent:dev-1"));
  cl_rpm_watch_get(cl_rpm_of(st), "dev-1", &w);
  cr_assert(w.armed);
  cr_assert_eq(w.deadline_ns, T0 + 3 * DAY + 86400 * NS);
  /* no rule, no watch */
  cfx_use_kb("clinlog-kb 1\nversion t\n");
  fresh();
  cr_assert_eq(apply(single(&r, "8867-4", "70", "{beats}/min"), T0, NULL), 0);
  cl_rpm_watch_get(cl_rpm_of(st), "dev-1", &w);
  cr_assert(!w.armed);
}

/* A fixed sequence of everything; findings appended to `all`. */
static void script(cl_cds_findings *all) {
  reading r;
  status s;
  dispense d;
  all->n = 0;
#define STEP(e, t)                                                                                 \
  do {                                                                                             \
    apply((e), (t), NULL);                                                                         \
    for (size_t i_ = 0; i_ < F->n && all->n < CL_CDS_MAX_FINDINGS; i_++)                           \
      all->f[all->n++] = F->f[i_];                                                                 \
  } while (0)
  STEP(bp(&r, "185", "125"), T0);
  STEP(bp(&r, "190", "70"), T0 + H);
  STEP(single(&r, "2339-0", "50", "mg/dL"), T0 + 2 * H);
  STEP(single(&r, "29463-7", "80", "kg"), T0 + 3 * H);
  STEP(single(&r, "29463-7", "81.5", "kg"), T0 + DAY);
  STEP(battery(&s, "dev-1", "5"), T0 + DAY);
  STEP(dose(&d, "rx-1", MISSED), T0 + DAY);
  STEP(dose(&d, "rx-1", MISSED), T0 + 2 * DAY);
  STEP(bp(&r, "120", "80"), T0 + 3 * DAY);
  STEP(bp(&r, "181", "80"), T0 + 4 * DAY);
#undef STEP
}

/* Device i reads a pulse and reports a low battery, prescription i misses
 * a dose (on device 0), device 0 weighs: for i in [from, to), an hour
 * apart. */
static void fill(int from, int to) {
  for (int i = from; i < to; i++) {
    char dev[32], rx[32];
    snprintf(dev, sizeof dev, "dev-%d", i);
    snprintf(rx, sizeof rx, "rx-%d", i);
    reading r;
    status s;
    dispense d;
    int64_t t = T0 + i * H;
    single(&r, "8867-4", "72", "/min")->device_reading_recorded->device_id = dev;
    (void)apply(&r.ev, t, NULL);
    (void)apply(battery(&s, dev, "5"), t, NULL);
    dose(&d, rx, MISSED)->dispenser_event_recorded->device_id = "dev-0";
    (void)apply(&d.ev, t, NULL);
    single(&r, "29463-7", "80", "kg")->device_reading_recorded->device_id = "dev-0";
    (void)apply(&r.ev, t, NULL);
  }
}

static void counts_are(size_t open, size_t devices, size_t weights, size_t rx, uint64_t untracked) {
  cl_rpm_counts c;
  cl_rpm_get_counts(cl_rpm_of(st), &c);
  cr_assert_eq(c.open, open, "open %zu, not %zu", c.open, open);
  cr_assert_eq(c.devices, devices, "devices %zu, not %zu", c.devices, devices);
  cr_assert_eq(c.weights, weights, "weights %zu, not %zu", c.weights, weights);
  cr_assert_eq(c.rx, rx, "prescriptions %zu, not %zu", c.rx, rx);
  cr_assert_eq(c.untracked, untracked, "untracked %llu, not %llu", (unsigned long long)c.untracked,
               (unsigned long long)untracked);
}

/* The state through its bytes: parsed back (the lists then have just the
 * room they hold), serializing to the same bytes. */
static void round_trip(void) {
  cl_err err = {0};
  uint8_t *a, *b;
  size_t an, bn;
  cl_cds_patient *p;
  cr_assert_eq(cl_cds_patient_serialize(st, &a, &an, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_cds_patient_parse(a, an, &p, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_cds_patient_serialize(p, &b, &bn, &err), 0, "%s", err.msg);
  cr_assert_eq(bn, an);
  cr_assert_eq(memcmp(a, b, an), 0, "the same bytes after the parse");
  cl_cds_patient_free(st);
  st = p;
  free(a);
  free(b);
}

/* Every list of the state grows as it fills (a new state holds none), to
 * its bound in rpm.h and no further (counted), also when it resumes from
 * its bytes. */
Test(cds_rpm, lists_grow_to_their_bounds_across_round_trips) {
  fill(0, 3);
  counts_are(3, 3, 3, 3, 0);
  round_trip();
  counts_are(3, 3, 3, 3, 0);
  int n = CL_RPM_MAX_OPEN + 6; /* past every bound */
  fill(3, n);
  cr_assert(cl_rpm_is_open(cl_rpm_of(st), "battery:dev-63"));
  cr_assert(!cl_rpm_is_open(cl_rpm_of(st), "battery:dev-64"), "past the open set's bound");
  /* untracked: both contacts (reading, status) of each device past the
   * bound, each battery condition past the open set's, each prescription */
  counts_are(CL_RPM_MAX_OPEN, CL_RPM_MAX_DEVICES, CL_RPM_MAX_WEIGHTS, CL_RPM_MAX_RX,
             2 * (uint64_t)(n - CL_RPM_MAX_DEVICES) + (uint64_t)(n - CL_RPM_MAX_OPEN) +
                 (uint64_t)(n - CL_RPM_MAX_RX));
  round_trip();
  fill(n, n + 1); /* full, from the bytes: one more of each is counted, not kept */
  counts_are(CL_RPM_MAX_OPEN, CL_RPM_MAX_DEVICES, CL_RPM_MAX_WEIGHTS, CL_RPM_MAX_RX,
             2 * (uint64_t)(n + 1 - CL_RPM_MAX_DEVICES) + (uint64_t)(n + 1 - CL_RPM_MAX_OPEN) +
                 (uint64_t)(n + 1 - CL_RPM_MAX_RX));
  cl_cds_patient *kept = st; /* a second adherence miss of a kept prescription still alerts */
  dispense d;
  cr_assert_eq(apply(dose(&d, "rx-15", MISSED), T0 + (n + 1) * H, NULL), 1);
  cr_assert_eq(st, kept);
  cr_assert(cl_rpm_is_open(cl_rpm_of(st), "adherence:rx-15") == 0,
            "the open set is full: counted, not opened");
}

Test(cds_rpm, replay_is_byte_identical_and_state_round_trips) {
  cl_cds_findings *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
  script(a);
  cr_assert_eq(a->n, 7, "findings: %zu", a->n);
  cl_err err = {0};
  uint8_t *s1, *s2, *s3;
  size_t n1, n2, n3;
  cr_assert_eq(cl_cds_patient_serialize(st, &s1, &n1, &err), 0);
  fresh();
  script(b);
  cr_assert_eq(a->n, b->n);
  for (size_t i = 0; i < a->n; i++) {
    cr_assert_arr_eq(a->f[i].key, b->f[i].key, 16);
    cr_assert_str_eq(a->f[i].rule_id, b->f[i].rule_id);
    cr_assert_str_eq(a->f[i].detail, b->f[i].detail);
    cr_assert_eq(memcmp(&a->f[i], &b->f[i], sizeof a->f[i]), 0, "finding %zu", i);
  }
  cr_assert_eq(cl_cds_patient_serialize(st, &s2, &n2, &err), 0);
  cr_assert_eq(n1, n2);
  cr_assert_eq(memcmp(s1, s2, n1), 0, "the same state bytes");
  /* parse, then it behaves and serializes the same */
  cl_cds_patient *p;
  cr_assert_eq(cl_cds_patient_parse(s1, n1, &p, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_cds_patient_serialize(p, &s3, &n3, &err), 0);
  cr_assert_eq(n3, n1);
  cr_assert_eq(memcmp(s3, s1, n1), 0);
  cl_cds_patient_free(st);
  st = p;
  cr_assert_eq(one("8480-6", "190", "mm[Hg]", T0 + 5 * DAY), 0, "still open after the parse");
  cr_assert(cl_rpm_is_open(cl_rpm_of(st), "battery:dev-1"));
  /* every truncation of the bytes is refused cleanly */
  for (size_t cut = 0; cut < n1; cut += 7) {
    cl_cds_patient *q = NULL;
    cr_assert_neq(cl_cds_patient_parse(s1, cut, &q, &err), 0, "cut at %zu", cut);
    cr_assert_null(q);
  }
  free(s1);
  free(s2);
  free(s3);
  free(a);
  free(b);
}

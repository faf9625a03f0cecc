/* NEWS2 on the log (query/cds/rpm_news2.c) through the checker's entry
 * point (cl_cds_apply), over an inline KB with a news2 line (window 1 h):
 * a sequence of charted vitals reaching each RCP band, no flooding, a
 * lower score closing the band, an acknowledgement closing it, a stale
 * value not combined, SpO2 scale 2 when documented, temperature in
 * [degF], device readings (a BP panel's systolic), the state's bytes, and
 * byte-identical findings and keys on replay. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/cds/check.h"
#include "query/cds/rpm.h"
#include "tests/query/cds_fixture.h"

#define NS 1000000000ll
#define MIN (60ll * NS)
#define H (3600ll * NS)
#define T0 (1767225600ll * NS) /* 2026-01-01T00:00:00Z */

#define KIND(x) CLINLOG__V1__ISSUE_KIND__ISSUE_KIND_##x
#define SEV(x) CLINLOG__V1__ISSUE_SEVERITY__ISSUE_SEVERITY_##x

#define KB_TEXT "clinlog-kb 1\nversion t\nsource rcp RCP NEWS2 2017\nnews2 3600 high source=rcp\n"

#define kb (cfx.kb)
#define st (cfx.st)
#define F (cfx.F)

static void setup(void) {
  cfx_setup_seed();
  cfx_use_kb(KB_TEXT);
  cfx_fresh();
}

TestSuite(cds_news2_log, .init = setup, .fini = cfx_teardown);

/* A charted observation: LOINC code with a quantity, or a coded value. */
typedef struct obs {
  Clinlog__V1__Event ev;
  Clinlog__V1__ObservationRecorded o;
  Clinlog__V1__CodeableConcept cc;
  Clinlog__V1__Code code, *codep, value;
  Clinlog__V1__Quantity q;
  Clinlog__V1__Component comp, *compp;
  Clinlog__V1__Code ccode;
  Clinlog__V1__Quantity cq;
} obs;

static Clinlog__V1__Event *ob(obs *x, const char *system, const char *code, const char *v,
                              const char *unit) {
  memset(x, 0, sizeof *x);
  clinlog__v1__event__init(&x->ev);
  clinlog__v1__observation_recorded__init(&x->o);
  clinlog__v1__codeable_concept__init(&x->cc);
  clinlog__v1__code__init(&x->code);
  clinlog__v1__code__init(&x->value);
  clinlog__v1__quantity__init(&x->q);
  x->ev.stream = "patient-P1";
  x->ev.body_case = CLINLOG__V1__EVENT__BODY_OBSERVATION_RECORDED;
  x->ev.observation_recorded = &x->o;
  x->o.status = CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_FINAL;
  x->code.system = (char *)system;
  x->code.code = (char *)code;
  x->codep = &x->code;
  x->cc.n_coding = 1;
  x->cc.coding = &x->codep;
  x->o.code = &x->cc;
  if (unit) {
    x->q.value = (char *)v;
    x->q.unit = (char *)unit;
    x->o.value_case = CLINLOG__V1__OBSERVATION_RECORDED__VALUE_QUANTITY;
    x->o.quantity = &x->q;
  } else {
    x->value.system = "urn:clinlog:acvpu";
    x->value.code = (char *)v;
    x->o.value_case = CLINLOG__V1__OBSERVATION_RECORDED__VALUE_CODE_VALUE;
    x->o.code_value = &x->value;
  }
  return &x->ev;
}

static int next = 1;

/* One observation at t: the number of findings (in F); its id in id_out. */
static size_t vital(const char *code, const char *v, const char *unit, int64_t t,
                    uint8_t id_out[16]) {
  obs x;
  uint8_t id[16] = {0xe0};
  id[15] = (uint8_t)next;
  id[14] = (uint8_t)(next++ >> 8);
  if (id_out)
    memcpy(id_out, id, 16);
  cl_err err = {0};
  Clinlog__V1__Event *ev =
      ob(&x, code[0] >= '0' && code[0] <= '9' ? CL_LOINC : "urn:clinlog:news2", code, v, unit);
  cr_assert_eq(cl_cds_apply(kb, st, ev, id, t, F, &err), 0, "%s", err.msg);
  return F->n;
}

/* A full normal set at t (score 0): no finding. */
static void normal_set(int64_t t) {
  cr_assert_eq(vital("9279-1", "16", "/min", t, NULL), 0);
  cr_assert_eq(vital("59408-5", "97", "%", t, NULL), 0);
  cr_assert_eq(vital("3151-8", "0", "L/min", t, NULL), 0);
  cr_assert_eq(vital("8480-6", "120", "mm[Hg]", t, NULL), 0);
  cr_assert_eq(vital("8867-4", "70", "/min", t, NULL), 0);
  cr_assert_eq(vital("67775-7", "A", NULL, t, NULL), 0);
  cr_assert_eq(vital("8310-5", "37.0", "Cel", t, NULL), 0);
}

static int open_(const char *band) {
  char c[64];
  snprintf(c, sizeof c, "news2:%s", band);
  return cl_rpm_is_open(cl_rpm_of(st), c);
}

Test(cds_news2_log, each_band_once_and_a_lower_score_closes) {
  normal_set(T0);
  /* respiration 25 scores 3: a single 3, total 3 -> low-medium */
  cr_assert_eq(vital("9279-1", "25", "/min", T0 + MIN, NULL), 1);
  cr_assert_eq(F->f[0].kind, KIND(EARLY_WARNING));
  cr_assert_str_eq(F->f[0].rule_id, "news2:low-medium");
  cr_assert_eq(F->f[0].severity, SEV(LOW));
  cr_assert(strstr(F->f[0].detail, "NEWS2 3: low-medium clinical risk (a single 3), urgent "
                                   "ward-based response") == F->f[0].detail,
            "%s", F->f[0].detail);
  cr_assert(strstr(F->f[0].detail, "respiration rate 25 /min: 3") != NULL, "%s", F->f[0].detail);
  /* no flooding: the same band again raises nothing */
  cr_assert_eq(vital("9279-1", "26", "/min", T0 + 2 * MIN, NULL), 0);
  /* pulse 111 (2): total 5 -> medium, urgent response */
  cr_assert_eq(vital("8867-4", "111", "/min", T0 + 3 * MIN, NULL), 1);
  cr_assert_str_eq(F->f[0].rule_id, "news2:medium");
  cr_assert_eq(F->f[0].severity, SEV(MODERATE));
  cr_assert(strstr(F->f[0].detail, "NEWS2 5: medium") != NULL, "%s", F->f[0].detail);
  /* on oxygen (2): 7 -> high, emergency */
  cr_assert_eq(vital("3151-8", "2", "L/min", T0 + 4 * MIN, NULL), 1);
  cr_assert_str_eq(F->f[0].rule_id, "news2:high");
  cr_assert_eq(F->f[0].severity, SEV(HIGH));
  cr_assert(strstr(F->f[0].detail, "urgent or emergency response") != NULL, "%s", F->f[0].detail);
  cr_assert(strstr(F->f[0].detail, "air or oxygen oxygen: 2") != NULL, "%s", F->f[0].detail);
  cr_assert(open_("high") && open_("medium") && open_("low-medium"));
  /* back to 5: the high band closes, medium stays open (no new alert) */
  cr_assert_eq(vital("3151-8", "0", "L/min", T0 + 5 * MIN, NULL), 0);
  cr_assert(!open_("high") && open_("medium"));
  /* and up to 7 again alerts again */
  cr_assert_eq(vital("3151-8", "3", "L/min", T0 + 6 * MIN, NULL), 1);
  cr_assert_str_eq(F->f[0].rule_id, "news2:high");
  /* all normal: every band closes */
  normal_set(T0 + 7 * MIN);
  cr_assert(!open_("high") && !open_("medium") && !open_("low-medium"));
}

Test(cds_news2_log, an_acknowledgement_closes_the_band) {
  normal_set(T0);
  cr_assert_eq(vital("8480-6", "90", "mm[Hg]", T0 + MIN, NULL), 1);
  uint8_t issue[16];
  memcpy(issue, F->f[0].key, 16);
  cr_assert_eq(vital("8480-6", "89", "mm[Hg]", T0 + 2 * MIN, NULL), 0);
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  Clinlog__V1__AlertAcknowledged a = CLINLOG__V1__ALERT_ACKNOWLEDGED__INIT;
  ev.stream = "patient-P1";
  ev.body_case = CLINLOG__V1__EVENT__BODY_ALERT_ACKNOWLEDGED;
  ev.alert_acknowledged = &a;
  a.issue_event_id = (ProtobufCBinaryData){16, issue};
  uint8_t id[16] = {0xa0};
  cl_err err = {0};
  cr_assert_eq(cl_cds_apply(kb, st, &ev, id, T0 + 3 * MIN, F, &err), 0);
  cr_assert(!open_("low-medium"));
  /* still 3 on the next reading: a new alert */
  cr_assert_eq(vital("8480-6", "88", "mm[Hg]", T0 + 4 * MIN, NULL), 1);
  cr_assert_str_eq(F->f[0].rule_id, "news2:low-medium");
}

Test(cds_news2_log, a_stale_value_is_not_combined) {
  /* systolic 95 (2) and pulse 115 (2) two hours ago */
  cr_assert_eq(vital("8480-6", "95", "mm[Hg]", T0, NULL), 0);
  cr_assert_eq(vital("8867-4", "115", "/min", T0, NULL), 0);
  /* respiration 22 (2) now: with the stale ones it would be 6; alone it is 2 */
  cr_assert_eq(vital("9279-1", "22", "/min", T0 + 2 * H, NULL), 0);
  /* within the hour: 95 (2) + 22 (2) = 4, still nothing; then pulse 115: 6 */
  cr_assert_eq(vital("8480-6", "95", "mm[Hg]", T0 + 2 * H + MIN, NULL), 0);
  cr_assert_eq(vital("8867-4", "115", "/min", T0 + 2 * H + 2 * MIN, NULL), 1);
  cr_assert_str_eq(F->f[0].rule_id, "news2:medium");
  cr_assert(strstr(F->f[0].detail, "NEWS2 6 (incomplete, missing: ") != NULL, "%s", F->f[0].detail);
  /* a value measured before the one held changes nothing */
  cr_assert_eq(vital("9279-1", "30", "/min", T0 + H, NULL), 0);
}

Test(cds_news2_log, scale_2_when_documented) {
  normal_set(T0);
  cr_assert_eq(vital("59408-5", "88", "%", T0 + MIN, NULL), 1); /* scale 1: 88 scores 3 */
  cr_assert_str_eq(F->f[0].rule_id, "news2:low-medium");
  normal_set(T0 + 2 * MIN);
  /* documented on scale 2: 88 % is on target, 0 */
  cr_assert_eq(vital("spo2-scale", "2", "1", T0 + 3 * MIN, NULL), 0);
  cr_assert_eq(vital("59408-5", "88", "%", T0 + 4 * MIN, NULL), 0);
  /* on oxygen at 97 % on scale 2 scores 3 (and oxygen 2): 5 -> medium */
  cr_assert_eq(vital("3151-8", "2", "L/min", T0 + 5 * MIN, NULL), 0); /* 88 % on O2: 2 */
  cr_assert_eq(vital("59408-5", "97", "%", T0 + 6 * MIN, NULL), 1);
  cr_assert_str_eq(F->f[0].rule_id, "news2:medium");
  cr_assert(strstr(F->f[0].detail, "SpO2 (scale 2) 97 %: 3") != NULL, "%s", F->f[0].detail);
}

Test(cds_news2_log, fahrenheit_consciousness_and_refusals) {
  normal_set(T0);
  cr_assert_eq(vital("8310-5", "95.0", "[degF]", T0 + MIN, NULL), 1); /* 35.0 Cel: 3 */
  cr_assert(strstr(F->f[0].detail, "temperature 35.0 Cel: 3") != NULL, "%s", F->f[0].detail);
  cr_assert_eq(vital("8310-5", "37", "Cel", T0 + 2 * MIN, NULL), 0);
  cr_assert_eq(vital("67775-7", "V", NULL, T0 + 3 * MIN, NULL), 1);
  cr_assert(strstr(F->f[0].detail, "consciousness voice: 3") != NULL, "%s", F->f[0].detail);
  /* an impossible value is counted, not scored */
  cl_rpm_counts c;
  cl_rpm_get_counts(cl_rpm_of(st), &c);
  uint64_t before = c.unconverted;
  cr_assert_eq(vital("8867-4", "900", "/min", T0 + 4 * MIN, NULL), 0);
  cr_assert_eq(vital("67775-7", "X", NULL, T0 + 4 * MIN, NULL), 0);
  cl_rpm_get_counts(cl_rpm_of(st), &c);
  cr_assert_eq(c.unconverted, before + 2);
}

Test(cds_news2_log, without_the_kb_line_nothing) {
  cfx_use_kb("clinlog-kb 1\nversion t\n");
  cfx_fresh();
  cr_assert_eq(vital("9279-1", "30", "/min", T0, NULL), 0);
}

/* The same script on fresh states twice: the same findings (keys too), and
 * the state read back from its bytes scores the next event alike. */
static void script(cl_cds_findings *all) {
  all->n = 0;
  next = 1;
  const char *rr[] = {"16", "25", "26", "30", "12", "25"};
  normal_set(T0);
  for (size_t i = 0; i < sizeof rr / sizeof *rr; i++) {
    (void)vital("9279-1", rr[i], "/min", T0 + (int64_t)(i + 1) * MIN, NULL);
    for (size_t k = 0; k < F->n; k++)
      all->f[all->n++] = F->f[k];
    (void)vital("8867-4", i % 2 ? "120" : "80", "/min", T0 + (int64_t)(i + 1) * MIN, NULL);
    for (size_t k = 0; k < F->n; k++)
      all->f[all->n++] = F->f[k];
  }
}

Test(cds_news2_log, replay_is_byte_identical_and_state_round_trips) {
  cl_cds_findings *a = malloc(sizeof *a), *b = malloc(sizeof *b);
  cr_assert(a && b);
  script(a);
  uint8_t *s1;
  size_t n1;
  cl_err err = {0};
  cr_assert_eq(cl_cds_patient_serialize(st, &s1, &n1, &err), 0);
  cfx_fresh();
  script(b);
  cr_assert_gt(a->n, 2);
  cr_assert_eq(a->n, b->n);
  cr_assert_eq(memcmp(a->f, b->f, a->n * sizeof *a->f), 0);
  uint8_t *s2;
  size_t n2;
  cr_assert_eq(cl_cds_patient_serialize(st, &s2, &n2, &err), 0);
  cr_assert_eq(n1, n2);
  cr_assert_eq(memcmp(s1, s2, n1), 0);
  /* read back: same bytes, and the next event finds the same */
  cl_cds_patient *back;
  cr_assert_eq(cl_cds_patient_parse(s1, n1, &back, &err), 0, "%s", err.msg);
  uint8_t *s3;
  size_t n3;
  cr_assert_eq(cl_cds_patient_serialize(back, &s3, &n3, &err), 0);
  cr_assert(n3 == n1 && !memcmp(s1, s3, n1));
  (void)vital("3151-8", "4", "L/min", T0 + H / 2, NULL);
  size_t live = F->n;
  char rule[96];
  snprintf(rule, sizeof rule, "%s", live ? F->f[0].rule_id : "");
  cl_cds_patient_free(st);
  st = back;
  next--;
  (void)vital("3151-8", "4", "L/min", T0 + H / 2, NULL);
  cr_assert_eq(F->n, live);
  if (live)
    cr_assert_str_eq(F->f[0].rule_id, rule);
  free(s1);
  free(s2);
  free(s3);
  free(a);
  free(b);
}

/* A device reading's BP panel feeds systolic from its component. */
Test(cds_news2_log, device_panel_component) {
  normal_set(T0);
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  Clinlog__V1__DeviceReadingRecorded r = CLINLOG__V1__DEVICE_READING_RECORDED__INIT;
  Clinlog__V1__CodeableConcept cc = CLINLOG__V1__CODEABLE_CONCEPT__INIT;
  Clinlog__V1__Code code = CLINLOG__V1__CODE__INIT, *codep = &code;
  Clinlog__V1__Component comp = CLINLOG__V1__COMPONENT__INIT, *compp = &comp;
  Clinlog__V1__Code ccode = CLINLOG__V1__CODE__INIT;
  Clinlog__V1__Quantity q = CLINLOG__V1__QUANTITY__INIT;
  ev.stream = "patient-P1";
  ev.body_case = CLINLOG__V1__EVENT__BODY_DEVICE_READING_RECORDED;
  ev.device_reading_recorded = &r;
  r.device_id = "cuff";
  code.system = CL_LOINC;
  code.code = "85354-9";
  cc.n_coding = 1;
  cc.coding = &codep;
  r.code = &cc;
  ccode.system = CL_LOINC;
  ccode.code = "8480-6";
  q.value = "85";
  q.unit = "mm[Hg]";
  comp.code = &ccode;
  comp.value = &q;
  r.n_components = 1;
  r.components = &compp;
  uint8_t id[16] = {0xb0};
  cl_err err = {0};
  cr_assert_eq(cl_cds_apply(kb, st, &ev, id, T0 + MIN, F, &err), 0);
  cr_assert_eq(F->n, 1);
  cr_assert_str_eq(F->f[0].rule_id, "news2:low-medium");
  cr_assert(strstr(F->f[0].detail, "systolic blood pressure 85 mm[Hg]: 3") != NULL, "%s",
            F->f[0].detail);
}

/* The score stored as an ObservationRecorded (cl_cds_findings.news2,
 * cl_rpm_news2_fill): only complete sets, only when a component score
 * changes or a window has passed, with the total, the seven sub-scores and
 * a note giving each value. */
Test(cds_news2_log, complete_scores_are_stored_when_they_change) {
  static const char *const codes[] = {"9279-1", "59408-5", "3151-8", "8480-6",
                                      "8867-4", "67775-7", "8310-5"};
  static const char *const vals[] = {"16", "97", "0", "120", "70", "A", "37.0"};
  static const char *const units[] = {"/min", "%", "L/min", "mm[Hg]", "/min", NULL, "Cel"};
  uint8_t last[16];
  for (int p = 0; p < CL_NEWS2_NPARAMS; p++) {
    cr_assert_eq(vital(codes[p], vals[p], units[p], T0 + p * NS, last), 0);
    cr_assert_eq(F->news2.set, p == CL_NEWS2_NPARAMS - 1, "parameter %d", p); /* complete at 7 */
  }
  cr_assert(F->news2.r.complete && F->news2.r.total == 0);
  cr_assert_eq(F->news2.effective_ns, T0 + 6 * NS);
  cr_assert_eq(memcmp(F->news2.trigger, last, 16), 0);
  uint8_t k0[16];
  memcpy(k0, F->news2.key, 16);
  /* the same scores again: nothing stored */
  cr_assert_eq(vital("9279-1", "17", "/min", T0 + MIN, NULL), 0);
  cr_assert_eq(F->news2.set, 0);
  /* respiration 25 (3): stored with the alert, under another key */
  cr_assert_eq(vital("9279-1", "25", "/min", T0 + 2 * MIN, NULL), 1);
  cr_assert(F->news2.set);
  cr_assert_eq(F->news2.r.total, 3);
  cr_assert_eq(F->news2.r.score[CL_NEWS2_RESP_RATE], 3);
  cr_assert_neq(memcmp(F->news2.key, k0, 16), 0);
  cl_rpm_news2_obs *o = malloc(sizeof *o);
  cr_assert_not_null(o);
  cl_rpm_news2_fill(&F->news2, o);
  cr_assert(strncmp(o->msg.observation_id, "news2-", 6) == 0 && strlen(o->msg.observation_id) == 38);
  cr_assert_str_eq(o->msg.code->coding[0]->system, "http://snomed.info/sct");
  cr_assert_str_eq(o->msg.code->coding[0]->code, CL_SNOMED_NEWS2_TOTAL);
  cr_assert_str_eq(o->msg.category[0]->code, "survey");
  cr_assert_eq(o->msg.value_case, CLINLOG__V1__OBSERVATION_RECORDED__VALUE_QUANTITY);
  cr_assert_str_eq(o->msg.quantity->value, "3");
  cr_assert_str_eq(o->msg.quantity->unit, "{score}");
  cr_assert_eq(o->msg.status, CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_FINAL);
  cr_assert_eq(o->msg.effective->seconds, (T0 + 2 * MIN) / NS);
  cr_assert_eq(o->msg.n_components, CL_NEWS2_NPARAMS);
  for (int p = 0; p < CL_NEWS2_NPARAMS; p++) {
    cr_assert_str_eq(o->msg.components[p]->code->code,
                     cl_news2_component_snomed((cl_news2_param)p, 1));
    cr_assert_str_eq(o->msg.components[p]->value->value, p == CL_NEWS2_RESP_RATE ? "3" : "0");
  }
  cr_assert(strstr(o->msg.note, "NEWS2 3: low-medium clinical risk (a single 3)") == o->msg.note,
            "%s", o->msg.note);
  cr_assert(strstr(o->msg.note, "respiration rate 25 /min: 3; SpO2 (scale 1) 97 %: 0") != NULL,
            "%s", o->msg.note);
  free(o);
  /* 26 scores 3 as well: nothing; pulse 111 (2): 5, stored */
  cr_assert_eq(vital("9279-1", "26", "/min", T0 + 3 * MIN, NULL), 0);
  cr_assert_eq(F->news2.set, 0);
  cr_assert_eq(vital("8867-4", "111", "/min", T0 + 4 * MIN, NULL), 1);
  cr_assert(F->news2.set && F->news2.r.total == 5);
  /* the state keeps what was stored last: read back, the same scores store nothing */
  uint8_t *s;
  size_t n;
  cl_err err = {0};
  cl_cds_patient *back;
  cr_assert_eq(cl_cds_patient_serialize(st, &s, &n, &err), 0);
  cr_assert_eq(cl_cds_patient_parse(s, n, &back, &err), 0, "%s", err.msg);
  free(s);
  cl_cds_patient_free(st);
  st = back;
  cr_assert_eq(vital("8867-4", "112", "/min", T0 + 5 * MIN, NULL), 0);
  cr_assert_eq(F->news2.set, 0);
  /* two hours on, the same values again: each alone is incomplete (the rest
   * is stale), the seventh completes the set a window after the last one
   * stored: stored again with the same scores */
  static const char *const later[] = {"26", "97", "0", "120", "111", "A", "37.0"};
  for (int p = 0; p < CL_NEWS2_NPARAMS; p++) {
    (void)vital(codes[p], later[p], units[p], T0 + 2 * H + p * NS, NULL);
    cr_assert_eq(F->news2.set, p == CL_NEWS2_NPARAMS - 1, "parameter %d", p);
  }
  cr_assert_eq(F->news2.r.total, 5);
}

/* An incomplete set alerts on what it already reaches, but is never stored
 * as a NEWS2 (news2.h). */
Test(cds_news2_log, an_incomplete_set_is_not_stored) {
  cr_assert_eq(vital("9279-1", "30", "/min", T0, NULL), 1);
  cr_assert_str_eq(F->f[0].rule_id, "news2:low-medium");
  cr_assert_eq(F->news2.set, 0);
}

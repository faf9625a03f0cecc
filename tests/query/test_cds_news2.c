/* NEWS2 (query/cds/news2.h) against the RCP 2017 chart: every band edge of
 * every parameter on both sides, each row checked exhaustively over its
 * whole valid domain against the chart written out again here as ranges,
 * temperature in tenths however the double was made, SpO2 scale 2 on air
 * and on oxygen, the risk bands and the single-3 trigger, chart 4's
 * monitoring, worked patients with the reasoning per parameter, missing
 * parameters, and refusal of impossible values naming the field. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "query/cds/news2.h"

/* A complete patient scoring 0 everywhere; tests change one thing. */
static cl_news2_input normal(void) {
  cl_news2_input in = {
      .has_resp_rate = true,
      .resp_rate = 16,
      .has_spo2 = true,
      .spo2 = 98,
      .spo2_scale = 1,
      .has_oxygen = true,
      .on_oxygen = false,
      .has_systolic = true,
      .systolic = 120,
      .has_pulse = true,
      .pulse = 70,
      .has_consciousness = true,
      .consciousness = CL_ACVPU_ALERT,
      .has_temperature = true,
      .temperature_c = 37.0,
  };
  return in;
}

static cl_news2_result score(const cl_news2_input *in) {
  cl_news2_result r;
  cl_err err;
  cl_err_clear(&err);
  cr_assert_eq(cl_news2_score(in, &r, &err), 0, "refused: %s", err.msg);
  return r;
}

/* One parameter alone: its component score (the rest are missing). */
static int only(cl_news2_param p, const cl_news2_input *in) { return score(in).score[p]; }

static int rr(int v) {
  cl_news2_input in = {.has_resp_rate = true, .resp_rate = v};
  return only(CL_NEWS2_RESP_RATE, &in);
}
static int spo2(int v, int scale, bool oxygen) {
  cl_news2_input in = {
      .has_spo2 = true, .spo2 = v, .spo2_scale = scale, .has_oxygen = true, .on_oxygen = oxygen};
  return only(CL_NEWS2_SPO2, &in);
}
static int sbp(int v) {
  cl_news2_input in = {.has_systolic = true, .systolic = v};
  return only(CL_NEWS2_SYSTOLIC, &in);
}
static int pulse(int v) {
  cl_news2_input in = {.has_pulse = true, .pulse = v};
  return only(CL_NEWS2_PULSE, &in);
}
static int temp(double v) {
  cl_news2_input in = {.has_temperature = true, .temperature_c = v};
  return only(CL_NEWS2_TEMPERATURE, &in);
}

/* ---- every band edge, both sides ---- */

Test(news2_edges, respiration_rate) {
  cr_assert_eq(rr(0), 3);
  cr_assert_eq(rr(8), 3);
  cr_assert_eq(rr(9), 1);
  cr_assert_eq(rr(11), 1);
  cr_assert_eq(rr(12), 0);
  cr_assert_eq(rr(20), 0);
  cr_assert_eq(rr(21), 2);
  cr_assert_eq(rr(24), 2);
  cr_assert_eq(rr(25), 3);
  cr_assert_eq(rr(CL_NEWS2_RESP_RATE_MAX), 3);
}

Test(news2_edges, spo2_scale1) {
  for (int o = 0; o <= 1; o++) { /* scale 1 ignores oxygen: it scores separately */
    cr_assert_eq(spo2(0, 1, o), 3);
    cr_assert_eq(spo2(91, 1, o), 3);
    cr_assert_eq(spo2(92, 1, o), 2);
    cr_assert_eq(spo2(93, 1, o), 2);
    cr_assert_eq(spo2(94, 1, o), 1);
    cr_assert_eq(spo2(95, 1, o), 1);
    cr_assert_eq(spo2(96, 1, o), 0);
    cr_assert_eq(spo2(100, 1, o), 0);
  }
}

Test(news2_edges, spo2_scale2_below_93_ignores_oxygen) {
  for (int o = 0; o <= 1; o++) {
    cr_assert_eq(spo2(0, 2, o), 3);
    cr_assert_eq(spo2(83, 2, o), 3);
    cr_assert_eq(spo2(84, 2, o), 2);
    cr_assert_eq(spo2(85, 2, o), 2);
    cr_assert_eq(spo2(86, 2, o), 1);
    cr_assert_eq(spo2(87, 2, o), 1);
    cr_assert_eq(spo2(88, 2, o), 0);
    cr_assert_eq(spo2(92, 2, o), 0);
  }
}

Test(news2_edges, spo2_scale2_at_93_and_above_air_vs_oxygen) {
  /* on air: 0 from 93 to 100 */
  for (int s = 93; s <= 100; s++)
    cr_assert_eq(spo2(s, 2, false), 0, "scale 2 air %d", s);
  /* on oxygen: 93-94 -> 1, 95-96 -> 2, >= 97 -> 3 */
  cr_assert_eq(spo2(92, 2, true), 0);
  cr_assert_eq(spo2(93, 2, true), 1);
  cr_assert_eq(spo2(94, 2, true), 1);
  cr_assert_eq(spo2(95, 2, true), 2);
  cr_assert_eq(spo2(96, 2, true), 2);
  cr_assert_eq(spo2(97, 2, true), 3);
  cr_assert_eq(spo2(100, 2, true), 3);
}

Test(news2_edges, air_or_oxygen) {
  cl_news2_input in = {.has_oxygen = true, .on_oxygen = true};
  cr_assert_eq(only(CL_NEWS2_AIR_OXYGEN, &in), 2);
  in.on_oxygen = false;
  cr_assert_eq(only(CL_NEWS2_AIR_OXYGEN, &in), 0);
}

Test(news2_edges, systolic) {
  cr_assert_eq(sbp(0), 3);
  cr_assert_eq(sbp(90), 3);
  cr_assert_eq(sbp(91), 2);
  cr_assert_eq(sbp(100), 2);
  cr_assert_eq(sbp(101), 1);
  cr_assert_eq(sbp(110), 1);
  cr_assert_eq(sbp(111), 0);
  cr_assert_eq(sbp(219), 0);
  cr_assert_eq(sbp(220), 3);
  cr_assert_eq(sbp(CL_NEWS2_SYSTOLIC_MAX), 3);
}

Test(news2_edges, pulse) {
  cr_assert_eq(pulse(0), 3);
  cr_assert_eq(pulse(40), 3);
  cr_assert_eq(pulse(41), 1);
  cr_assert_eq(pulse(50), 1);
  cr_assert_eq(pulse(51), 0);
  cr_assert_eq(pulse(90), 0);
  cr_assert_eq(pulse(91), 1);
  cr_assert_eq(pulse(110), 1);
  cr_assert_eq(pulse(111), 2);
  cr_assert_eq(pulse(130), 2);
  cr_assert_eq(pulse(131), 3);
  cr_assert_eq(pulse(CL_NEWS2_PULSE_MAX), 3);
}

Test(news2_edges, consciousness_acvpu) {
  static const int want[] = {0, 3, 3, 3, 3}; /* A C V P U */
  for (int c = CL_ACVPU_ALERT; c <= CL_ACVPU_UNRESPONSIVE; c++) {
    cl_news2_input in = {.has_consciousness = true, .consciousness = (cl_news2_acvpu)c};
    cr_assert_eq(only(CL_NEWS2_CONSCIOUSNESS, &in), want[c], "%s",
                 cl_news2_acvpu_name((cl_news2_acvpu)c));
  }
}

Test(news2_edges, temperature_tenths) {
  cr_assert_eq(temp(25.0), 3);
  cr_assert_eq(temp(35.0), 3);
  cr_assert_eq(temp(35.1), 1);
  cr_assert_eq(temp(36.0), 1);
  cr_assert_eq(temp(36.1), 0);
  cr_assert_eq(temp(38.0), 0);
  cr_assert_eq(temp(38.1), 1);
  cr_assert_eq(temp(39.0), 1);
  cr_assert_eq(temp(39.1), 2);
  cr_assert_eq(temp(45.0), 2);
}

/* The same edges from doubles that are not the literal: arithmetic that
 * lands a hair either side of the decimal value must band as the decimal. */
Test(news2_edges, temperature_floating_point) {
  cr_assert_eq(temp(35.9 + 0.1), 1);  /* 36.0 (binary 35.99999...) */
  cr_assert_eq(temp(36.2 - 0.1), 0);  /* 36.1 */
  cr_assert_eq(temp(0.1 * 380), 0);   /* 38.0 */
  cr_assert_eq(temp(0.1 * 381), 1);   /* 38.1 (38.1000...01) */
  cr_assert_eq(temp(37.7 + 0.3), 0);  /* 38.0 */
  cr_assert_eq(temp(39.0 + 1e-9), 1); /* still 39.0 */
  cr_assert_eq(temp(39.1 - 1e-9), 2); /* still 39.1 */
  cr_assert_eq(temp(nextafter(35.0, 99.0)), 3);
  cr_assert_eq(temp(nextafter(35.1, 0.0)), 1);
  /* beyond one decimal: rounded to the nearest tenth first */
  cr_assert_eq(temp(38.04), 0); /* 38.0 */
  cr_assert_eq(temp(38.06), 1); /* 38.1 */
  cr_assert_eq(temp(35.04), 3); /* 35.0 */
  cr_assert_eq(temp(35.06), 1); /* 35.1 */
  /* every tenth from 25.0 to 45.0, three ways to make the double */
  double acc = 25.0;
  for (int k = 250; k <= 450; k++, acc += 0.1) {
    int want = k <= 350 ? 3 : k <= 360 ? 1 : k <= 380 ? 0 : k <= 390 ? 1 : 2;
    cr_assert_eq(temp(k / 10.0), want, "%d/10", k);
    cr_assert_eq(temp(k * 0.1), want, "%d*0.1", k);
    cr_assert_eq(temp(acc), want, "accumulated %.17g (%d)", acc, k);
  }
}

/* ---- each row over its whole domain, against the chart as ranges ---- */

typedef struct {
  int lo, hi, score;
} row;

/* The ranges must tile [0, max] with no gap or overlap, and every value in
 * them must score as the chart says. */
static void check_row(const char *name, const row *r, size_t n, int max, int (*f)(int)) {
  int next = 0;
  for (size_t i = 0; i < n; i++) {
    cr_assert_eq(r[i].lo, next, "%s: gap or overlap at %d", name, next);
    for (int v = r[i].lo; v <= r[i].hi; v++)
      cr_assert_eq(f(v), r[i].score, "%s %d: got %d, chart %d", name, v, f(v), r[i].score);
    next = r[i].hi + 1;
  }
  cr_assert_eq(next, max + 1, "%s: chart rows end at %d, domain at %d", name, next - 1, max);
}

static int spo2_s1(int v) { return spo2(v, 1, false); }
static int spo2_s2_air(int v) { return spo2(v, 2, false); }
static int spo2_s2_o2(int v) { return spo2(v, 2, true); }

Test(news2_rows, every_value) {
  static const row rr_rows[] = {{0, 8, 3}, {9, 11, 1}, {12, 20, 0}, {21, 24, 2}, {25, 100, 3}};
  static const row s1_rows[] = {{0, 91, 3}, {92, 93, 2}, {94, 95, 1}, {96, 100, 0}};
  static const row s2_air[] = {{0, 83, 3}, {84, 85, 2}, {86, 87, 1}, {88, 92, 0}, {93, 100, 0}};
  static const row s2_o2[] = {{0, 83, 3},  {84, 85, 2}, {86, 87, 1}, {88, 92, 0},
                              {93, 94, 1}, {95, 96, 2}, {97, 100, 3}};
  static const row sbp_rows[] = {
      {0, 90, 3}, {91, 100, 2}, {101, 110, 1}, {111, 219, 0}, {220, 300, 3}};
  static const row hr_rows[] = {{0, 40, 3},   {41, 50, 1},   {51, 90, 0},
                                {91, 110, 1}, {111, 130, 2}, {131, 300, 3}};
#define N(a) (sizeof(a) / sizeof((a)[0]))
  check_row("respiration", rr_rows, N(rr_rows), CL_NEWS2_RESP_RATE_MAX, rr);
  check_row("SpO2 scale 1", s1_rows, N(s1_rows), CL_NEWS2_SPO2_MAX, spo2_s1);
  check_row("SpO2 scale 2 air", s2_air, N(s2_air), CL_NEWS2_SPO2_MAX, spo2_s2_air);
  check_row("SpO2 scale 2 oxygen", s2_o2, N(s2_o2), CL_NEWS2_SPO2_MAX, spo2_s2_o2);
  check_row("systolic", sbp_rows, N(sbp_rows), CL_NEWS2_SYSTOLIC_MAX, sbp);
  check_row("pulse", hr_rows, N(hr_rows), CL_NEWS2_PULSE_MAX, pulse);
#undef N
}

/* ---- risk bands, the single-3 trigger, monitoring, texts ---- */

static void expect_band(const cl_news2_result *r, int total, bool red, cl_news2_risk risk,
                        cl_news2_monitoring mon) {
  cr_assert(r->complete);
  cr_assert_eq(r->missing, 0u);
  cr_assert_eq(r->total, total);
  cr_assert_eq(r->total_max, total);
  cr_assert_eq(r->single_red, red, "total %d", total);
  cr_assert_eq(r->risk, risk, "total %d: risk %s", total, cl_news2_risk_name(r->risk));
  cr_assert_eq(r->risk_max, risk);
  cr_assert_eq(r->monitoring, mon, "total %d: %s", total, cl_news2_monitoring_text(r->monitoring));
}

Test(news2_risk, totals_without_a_three) {
  /* Raise the total one point at a time using only 1s and 2s. */
  cl_news2_input in = normal();
  cl_news2_result r = score(&in);
  expect_band(&r, 0, false, CL_NEWS2_RISK_LOW, CL_NEWS2_MONITOR_12_HOURLY);
  in.pulse = 95; /* 1 */
  r = score(&in);
  expect_band(&r, 1, false, CL_NEWS2_RISK_LOW, CL_NEWS2_MONITOR_4_6_HOURLY);
  in.temperature_c = 38.5; /* +1 */
  r = score(&in);
  expect_band(&r, 2, false, CL_NEWS2_RISK_LOW, CL_NEWS2_MONITOR_4_6_HOURLY);
  in.resp_rate = 22; /* +2 */
  r = score(&in);
  expect_band(&r, 4, false, CL_NEWS2_RISK_LOW, CL_NEWS2_MONITOR_4_6_HOURLY);
  in.systolic = 105; /* +1 */
  r = score(&in);
  expect_band(&r, 5, false, CL_NEWS2_RISK_MEDIUM, CL_NEWS2_MONITOR_HOURLY);
  in.spo2 = 95; /* +1 */
  r = score(&in);
  expect_band(&r, 6, false, CL_NEWS2_RISK_MEDIUM, CL_NEWS2_MONITOR_HOURLY);
  in.spo2 = 93; /* 2 instead of 1 */
  r = score(&in);
  expect_band(&r, 7, false, CL_NEWS2_RISK_HIGH, CL_NEWS2_MONITOR_CONTINUOUS);
}

Test(news2_risk, single_three_triggers_below_five) {
  cl_news2_input in = normal();
  in.resp_rate = 25; /* 3 alone: total 3 */
  cl_news2_result r = score(&in);
  expect_band(&r, 3, true, CL_NEWS2_RISK_LOW_MEDIUM, CL_NEWS2_MONITOR_HOURLY);
  in.pulse = 91; /* +1: total 4, still low-medium, not low */
  r = score(&in);
  expect_band(&r, 4, true, CL_NEWS2_RISK_LOW_MEDIUM, CL_NEWS2_MONITOR_HOURLY);
  in.temperature_c = 38.1; /* +1: total 5 outranks the single 3 */
  r = score(&in);
  expect_band(&r, 5, true, CL_NEWS2_RISK_MEDIUM, CL_NEWS2_MONITOR_HOURLY);
  in.systolic = 100; /* +2: total 7 */
  r = score(&in);
  expect_band(&r, 7, true, CL_NEWS2_RISK_HIGH, CL_NEWS2_MONITOR_CONTINUOUS);
}

Test(news2_risk, each_parameter_can_be_the_single_three) {
  for (int p = 0; p < CL_NEWS2_NPARAMS; p++) {
    if (p == CL_NEWS2_AIR_OXYGEN)
      continue; /* scores at most 2 */
    cl_news2_input in = normal();
    switch (p) {
    case CL_NEWS2_RESP_RATE:
      in.resp_rate = 8;
      break;
    case CL_NEWS2_SPO2:
      in.spo2 = 91;
      break;
    case CL_NEWS2_SYSTOLIC:
      in.systolic = 220;
      break;
    case CL_NEWS2_PULSE:
      in.pulse = 131;
      break;
    case CL_NEWS2_CONSCIOUSNESS:
      in.consciousness = CL_ACVPU_CONFUSION;
      break;
    case CL_NEWS2_TEMPERATURE:
      in.temperature_c = 35.0;
      break;
    }
    cl_news2_result r = score(&in);
    cr_assert_eq(r.score[p], 3, "%s", cl_news2_param_name((cl_news2_param)p));
    expect_band(&r, 3, true, CL_NEWS2_RISK_LOW_MEDIUM, CL_NEWS2_MONITOR_HOURLY);
  }
}

Test(news2_risk, oxygen_alone_is_two_not_red) {
  cl_news2_input in = normal();
  in.on_oxygen = true;
  cl_news2_result r = score(&in);
  cr_assert_eq(r.score[CL_NEWS2_AIR_OXYGEN], 2);
  expect_band(&r, 2, false, CL_NEWS2_RISK_LOW, CL_NEWS2_MONITOR_4_6_HOURLY);
}

Test(news2_risk, texts) {
  cr_assert_str_eq(cl_news2_risk_name(CL_NEWS2_RISK_LOW), "low");
  cr_assert_str_eq(cl_news2_risk_name(CL_NEWS2_RISK_LOW_MEDIUM), "low-medium");
  cr_assert_str_eq(cl_news2_risk_name(CL_NEWS2_RISK_MEDIUM), "medium");
  cr_assert_str_eq(cl_news2_risk_name(CL_NEWS2_RISK_HIGH), "high");
  cr_assert_str_eq(cl_news2_response(CL_NEWS2_RISK_LOW), "ward-based response");
  cr_assert_str_eq(cl_news2_response(CL_NEWS2_RISK_LOW_MEDIUM), "urgent ward-based response");
  cr_assert_str_eq(cl_news2_response(CL_NEWS2_RISK_MEDIUM), "key threshold for urgent response");
  cr_assert_str_eq(cl_news2_response(CL_NEWS2_RISK_HIGH), "urgent or emergency response");
  cr_assert_str_eq(cl_news2_monitoring_text(CL_NEWS2_MONITOR_12_HOURLY), "minimum 12-hourly");
  cr_assert_str_eq(cl_news2_monitoring_text(CL_NEWS2_MONITOR_4_6_HOURLY), "minimum 4-6-hourly");
  cr_assert_str_eq(cl_news2_monitoring_text(CL_NEWS2_MONITOR_HOURLY), "minimum 1-hourly");
  cr_assert(strstr(cl_news2_monitoring_text(CL_NEWS2_MONITOR_CONTINUOUS), "continuous"));
  cr_assert(strstr(cl_news2_clinical_response(CL_NEWS2_RISK_LOW, 0), "routine"));
  cr_assert(strstr(cl_news2_clinical_response(CL_NEWS2_RISK_LOW, 3), "registered nurse"));
  cr_assert(strstr(cl_news2_clinical_response(CL_NEWS2_RISK_HIGH, 9), "critical-care"));
  cr_assert_str_eq(cl_news2_risk_name((cl_news2_risk)9), "?");
  cr_assert_str_eq(cl_news2_response((cl_news2_risk)-1), "?");
  cr_assert_str_eq(cl_news2_param_name(CL_NEWS2_NPARAMS), "?");
  cr_assert_str_eq(cl_news2_param_name(CL_NEWS2_SYSTOLIC), "systolic blood pressure");
  cr_assert_str_eq(cl_news2_acvpu_name(CL_ACVPU_CONFUSION), "new confusion");
}

/* ---- worked patients: per-parameter reasoning, then the total ---- */

Test(news2_worked, healthy_adult) {
  /* RR 14 -> 0 (12-20); SpO2 97 scale 1 -> 0 (>=96); air -> 0; SBP 128 ->
   * 0 (111-219); pulse 64 -> 0 (51-90); Alert -> 0; 36.6 -> 0 (36.1-38.0).
   * Total 0: low, ward-based, minimum 12-hourly. */
  cl_news2_input in = normal();
  in.resp_rate = 14, in.spo2 = 97, in.systolic = 128, in.pulse = 64, in.temperature_c = 36.6;
  cl_news2_result r = score(&in);
  expect_band(&r, 0, false, CL_NEWS2_RISK_LOW, CL_NEWS2_MONITOR_12_HOURLY);
}

Test(news2_worked, chest_infection_low) {
  /* RR 22 -> 2 (21-24); SpO2 95 scale 1 -> 1 (94-95); air -> 0; SBP 118 ->
   * 0; pulse 96 -> 1 (91-110); Alert -> 0; 37.8 -> 0 (36.1-38.0).
   * 2+1+0+0+1+0+0 = 4: low, minimum 4-6-hourly. */
  cl_news2_input in = normal();
  in.resp_rate = 22, in.spo2 = 95, in.systolic = 118, in.pulse = 96, in.temperature_c = 37.8;
  cl_news2_result r = score(&in);
  int want[] = {2, 1, 0, 0, 1, 0, 0};
  cr_assert_arr_eq(r.score, want, sizeof want);
  expect_band(&r, 4, false, CL_NEWS2_RISK_LOW, CL_NEWS2_MONITOR_4_6_HOURLY);
}

Test(news2_worked, new_confusion_alone) {
  /* All normal but new confusion -> 3: total 3 with a single red score:
   * low-medium, urgent ward-based response, minimum hourly. */
  cl_news2_input in = normal();
  in.consciousness = CL_ACVPU_CONFUSION;
  cl_news2_result r = score(&in);
  expect_band(&r, 3, true, CL_NEWS2_RISK_LOW_MEDIUM, CL_NEWS2_MONITOR_HOURLY);
  cr_assert_str_eq(cl_news2_response(r.risk), "urgent ward-based response");
}

Test(news2_worked, pneumonia_on_oxygen_medium) {
  /* RR 23 -> 2; SpO2 94 scale 1 -> 1 (94-95); oxygen -> 2; SBP 105 -> 1
   * (101-110); pulse 88 -> 0; Alert -> 0; 38.0 -> 0 (36.1-38.0, the edge).
   * 2+1+2+1+0+0+0 = 6: medium, key threshold for urgent response, hourly. */
  cl_news2_input in = normal();
  in.resp_rate = 23, in.spo2 = 94, in.on_oxygen = true, in.systolic = 105, in.pulse = 88,
  in.temperature_c = 38.0;
  cl_news2_result r = score(&in);
  int want[] = {2, 1, 2, 1, 0, 0, 0};
  cr_assert_arr_eq(r.score, want, sizeof want);
  expect_band(&r, 6, false, CL_NEWS2_RISK_MEDIUM, CL_NEWS2_MONITOR_HOURLY);
  cr_assert_str_eq(cl_news2_response(r.risk), "key threshold for urgent response");
}

Test(news2_worked, septic_shock_high) {
  /* RR 26 -> 3 (>=25); SpO2 91 scale 1 -> 3 (<=91); oxygen -> 2; SBP 88 ->
   * 3 (<=90); pulse 125 -> 2 (111-130); Voice -> 3; 39.4 -> 2 (>=39.1).
   * 3+3+2+3+2+3+2 = 18: high, urgent or emergency response, continuous. */
  cl_news2_input in = normal();
  in.resp_rate = 26, in.spo2 = 91, in.on_oxygen = true, in.systolic = 88, in.pulse = 125,
  in.consciousness = CL_ACVPU_VOICE, in.temperature_c = 39.4;
  cl_news2_result r = score(&in);
  int want[] = {3, 3, 2, 3, 2, 3, 2};
  cr_assert_arr_eq(r.score, want, sizeof want);
  expect_band(&r, 18, true, CL_NEWS2_RISK_HIGH, CL_NEWS2_MONITOR_CONTINUOUS);
  cr_assert_str_eq(cl_news2_response(r.risk), "urgent or emergency response");
}

Test(news2_worked, maximum_is_twenty) {
  /* RR 30 -> 3; SpO2 80 -> 3; oxygen -> 2; SBP 80 -> 3; pulse 150 -> 3;
   * Unresponsive -> 3; 34.0 -> 3. 3+3+2+3+3+3+3 = 20, the chart's maximum. */
  cl_news2_input in = normal();
  in.resp_rate = 30, in.spo2 = 80, in.on_oxygen = true, in.systolic = 80, in.pulse = 150,
  in.consciousness = CL_ACVPU_UNRESPONSIVE, in.temperature_c = 34.0;
  cl_news2_result r = score(&in);
  expect_band(&r, 20, true, CL_NEWS2_RISK_HIGH, CL_NEWS2_MONITOR_CONTINUOUS);
}

Test(news2_worked, copd_scale2) {
  /* Hypercapnic COPD, prescribed target 88-92 %: scale 2.
   * On oxygen at SpO2 96: RR 20 -> 0; SpO2 96 scale 2 on O2 -> 2 (95-96);
   * oxygen -> 2; SBP 140 -> 0; pulse 85 -> 0; Alert -> 0; 36.5 -> 0. Total 4,
   * low: the over-oxygenation is what scores. */
  cl_news2_input in = normal();
  in.resp_rate = 20, in.spo2 = 96, in.spo2_scale = 2, in.on_oxygen = true, in.systolic = 140,
  in.pulse = 85, in.temperature_c = 36.5;
  cl_news2_result r = score(&in);
  int want[] = {0, 2, 2, 0, 0, 0, 0};
  cr_assert_arr_eq(r.score, want, sizeof want);
  expect_band(&r, 4, false, CL_NEWS2_RISK_LOW, CL_NEWS2_MONITOR_4_6_HOURLY);
  /* The same readings on scale 1: SpO2 96 -> 0, total 2. */
  in.spo2_scale = 1;
  r = score(&in);
  expect_band(&r, 2, false, CL_NEWS2_RISK_LOW, CL_NEWS2_MONITOR_4_6_HOURLY);
  /* Scale 2 at 97 % on oxygen: SpO2 -> 3, total 5, a single red and medium. */
  in.spo2_scale = 2, in.spo2 = 97;
  r = score(&in);
  expect_band(&r, 5, true, CL_NEWS2_RISK_MEDIUM, CL_NEWS2_MONITOR_HOURLY);
  /* Scale 2 at 97 % on air: SpO2 -> 0, air -> 0, total 0. */
  in.on_oxygen = false;
  r = score(&in);
  expect_band(&r, 0, false, CL_NEWS2_RISK_LOW, CL_NEWS2_MONITOR_12_HOURLY);
  /* Scale 2 at 89 % on air is in target: 0. On scale 1 it would be 3. */
  in.spo2 = 89;
  r = score(&in);
  expect_band(&r, 0, false, CL_NEWS2_RISK_LOW, CL_NEWS2_MONITOR_12_HOURLY);
  in.spo2_scale = 1;
  r = score(&in);
  expect_band(&r, 3, true, CL_NEWS2_RISK_LOW_MEDIUM, CL_NEWS2_MONITOR_HOURLY);
}

Test(news2_worked, seven_without_a_three) {
  /* RR 24 -> 2 (21-24, top edge); SpO2 92 scale 1 -> 2 (92-93); air -> 0;
   * SBP 101 -> 1 (101-110, bottom edge); pulse 111 -> 2 (111-130, bottom
   * edge); Alert -> 0; 36.1 -> 0 (bottom edge of normal). 2+2+0+1+2+0+0 = 7:
   * high with no single parameter at 3. */
  cl_news2_input in = normal();
  in.resp_rate = 24, in.spo2 = 92, in.systolic = 101, in.pulse = 111, in.temperature_c = 36.1;
  cl_news2_result r = score(&in);
  int want[] = {2, 2, 0, 1, 2, 0, 0};
  cr_assert_arr_eq(r.score, want, sizeof want);
  expect_band(&r, 7, false, CL_NEWS2_RISK_HIGH, CL_NEWS2_MONITOR_CONTINUOUS);
}

/* ---- missing parameters ---- */

Test(news2_missing, nothing_measured) {
  cl_news2_input in = {0};
  cl_news2_result r = score(&in);
  cr_assert_not(r.complete);
  cr_assert_eq(r.missing, CL_NEWS2_ALL);
  for (int p = 0; p < CL_NEWS2_NPARAMS; p++)
    cr_assert_eq(r.score[p], -1);
  cr_assert_eq(r.total, 0);
  cr_assert_eq(r.total_max, 20);
  cr_assert_eq(r.risk, CL_NEWS2_RISK_LOW);
  cr_assert_eq(r.risk_max, CL_NEWS2_RISK_HIGH);
}

Test(news2_missing, each_one_missing) {
  for (int p = 0; p < CL_NEWS2_NPARAMS; p++) {
    cl_news2_input in = normal();
    bool *has[] = {&in.has_resp_rate, &in.has_spo2,          &in.has_oxygen,     &in.has_systolic,
                   &in.has_pulse,     &in.has_consciousness, &in.has_temperature};
    *has[p] = false;
    cl_news2_result r = score(&in);
    cr_assert_not(r.complete, "%s", cl_news2_param_name((cl_news2_param)p));
    cr_assert_eq(r.missing, CL_NEWS2_BIT(p));
    cr_assert_eq(r.score[p], -1);
    cr_assert_eq(r.total, 0);
    cr_assert_eq(r.risk, CL_NEWS2_RISK_LOW);
    if (p == CL_NEWS2_AIR_OXYGEN) {
      /* scale 1 SpO2 does not need it; at most 2 more: still certainly low */
      cr_assert_eq(r.total_max, 2);
      cr_assert_eq(r.risk_max, CL_NEWS2_RISK_LOW);
    } else {
      /* the missing one could be a 3 */
      cr_assert_eq(r.total_max, 3);
      cr_assert_eq(r.risk_max, CL_NEWS2_RISK_LOW_MEDIUM);
    }
  }
}

Test(news2_missing, trigger_reached_without_all_vitals) {
  /* RR 30 (3) is enough for an urgent ward-based response before the rest
   * are measured; the score is still not a NEWS2. */
  cl_news2_input in = {.has_resp_rate = true, .resp_rate = 30};
  cl_news2_result r = score(&in);
  cr_assert_not(r.complete);
  cr_assert_eq(r.missing, CL_NEWS2_ALL & ~CL_NEWS2_BIT(CL_NEWS2_RESP_RATE));
  cr_assert_eq(r.total, 3);
  cr_assert(r.single_red);
  cr_assert_eq(r.risk, CL_NEWS2_RISK_LOW_MEDIUM);
  cr_assert_eq(r.monitoring, CL_NEWS2_MONITOR_HOURLY);
  cr_assert_eq(r.risk_max, CL_NEWS2_RISK_HIGH);
  /* Seven without the temperature: high is certain though incomplete. */
  cl_news2_input h = normal();
  h.resp_rate = 26, h.systolic = 88, h.on_oxygen = true, h.has_temperature = false; /* 3+3+2 */
  r = score(&h);
  cr_assert_not(r.complete);
  cr_assert_eq(r.missing, CL_NEWS2_BIT(CL_NEWS2_TEMPERATURE));
  cr_assert_eq(r.total, 8);
  cr_assert_eq(r.total_max, 11);
  cr_assert_eq(r.risk, CL_NEWS2_RISK_HIGH);
  cr_assert_eq(r.risk_max, CL_NEWS2_RISK_HIGH);
  cr_assert_eq(r.monitoring, CL_NEWS2_MONITOR_CONTINUOUS);
}

Test(news2_missing, scale2_high_spo2_needs_air_or_oxygen) {
  /* Scale 2 at 95 %: 0 on air, 2 on oxygen; unknown which -> not scored. */
  cl_news2_input in = normal();
  in.spo2_scale = 2, in.spo2 = 95, in.has_oxygen = false;
  cl_news2_result r = score(&in);
  cr_assert_not(r.complete);
  cr_assert_eq(r.missing, CL_NEWS2_BIT(CL_NEWS2_SPO2) | CL_NEWS2_BIT(CL_NEWS2_AIR_OXYGEN));
  cr_assert_eq(r.score[CL_NEWS2_SPO2], -1);
  cr_assert_eq(r.total, 0);
  cr_assert_eq(r.total_max, 5);
  cr_assert_eq(r.risk_max, CL_NEWS2_RISK_MEDIUM);
  /* Below 93 % scale 2 scores without it. */
  in.spo2 = 92;
  r = score(&in);
  cr_assert_eq(r.missing, CL_NEWS2_BIT(CL_NEWS2_AIR_OXYGEN));
  cr_assert_eq(r.score[CL_NEWS2_SPO2], 0);
  in.spo2 = 85;
  r = score(&in);
  cr_assert_eq(r.score[CL_NEWS2_SPO2], 2);
  /* Scale 1 never needs it. */
  in.spo2_scale = 1, in.spo2 = 95;
  r = score(&in);
  cr_assert_eq(r.score[CL_NEWS2_SPO2], 1);
  cr_assert_eq(r.missing, CL_NEWS2_BIT(CL_NEWS2_AIR_OXYGEN));
}

Test(news2_missing, absent_values_are_not_validated) {
  /* A parameter not measured is not checked, whatever its field holds. */
  cl_news2_input in = {.resp_rate = -5,
                       .spo2 = 300,
                       .spo2_scale = 9,
                       .systolic = -1,
                       .pulse = 9999,
                       .consciousness = (cl_news2_acvpu)42,
                       .temperature_c = NAN};
  cl_news2_result r = score(&in);
  cr_assert_eq(r.missing, CL_NEWS2_ALL);
}

/* ---- refusals ---- */

static void refused(const cl_news2_input *in, const char *field) {
  cl_news2_result r, before; /* compared as bytes, never read as values */
  memset(&r, 0x5a, sizeof r);
  memcpy(&before, &r, sizeof r);
  cl_err err;
  cl_err_clear(&err);
  cr_assert_eq(cl_news2_score(in, &r, &err), CL_EINVAL, "accepted, want %s refused", field);
  cr_assert_eq(err.code, CL_EINVAL);
  cr_assert(strstr(err.msg, field), "message \"%s\" does not name %s", err.msg, field);
  cr_assert(memcmp(&r, &before, sizeof r) == 0, "result changed on error");
}

Test(news2_refuse, impossible_values_name_the_field) {
  cl_news2_input in;
#define BAD(field, assign)                                                                         \
  do {                                                                                             \
    in = normal();                                                                                 \
    assign;                                                                                        \
    refused(&in, field);                                                                           \
  } while (0)
  BAD("resp_rate", in.resp_rate = -1);
  BAD("resp_rate", in.resp_rate = CL_NEWS2_RESP_RATE_MAX + 1);
  BAD("spo2", in.spo2 = -1);
  BAD("spo2", in.spo2 = 101);
  BAD("spo2_scale", in.spo2_scale = 0);
  BAD("spo2_scale", in.spo2_scale = 3);
  BAD("systolic", in.systolic = -1);
  BAD("systolic", in.systolic = CL_NEWS2_SYSTOLIC_MAX + 1);
  BAD("pulse", in.pulse = -1);
  BAD("pulse", in.pulse = CL_NEWS2_PULSE_MAX + 1);
  BAD("consciousness", in.consciousness = (cl_news2_acvpu)5);
  BAD("consciousness", in.consciousness = (cl_news2_acvpu)-1);
  BAD("temperature_c", in.temperature_c = 24.9);
  BAD("temperature_c", in.temperature_c = 45.1);
  BAD("temperature_c", in.temperature_c = -37.0);
  BAD("temperature_c", in.temperature_c = 98.6); /* Fahrenheit */
  BAD("temperature_c", in.temperature_c = 1e300);
  BAD("temperature_c", in.temperature_c = NAN);
  BAD("temperature_c", in.temperature_c = INFINITY);
  BAD("temperature_c", in.temperature_c = -INFINITY);
#undef BAD
}

Test(news2_refuse, limits_are_inclusive) {
  cl_news2_input in = normal();
  in.resp_rate = 0, in.spo2 = 0, in.systolic = 0, in.pulse = 0, in.temperature_c = 25.0;
  cr_assert_eq(score(&in).total, 3 + 3 + 3 + 3 + 3);
  in.resp_rate = CL_NEWS2_RESP_RATE_MAX, in.spo2 = 100, in.systolic = CL_NEWS2_SYSTOLIC_MAX,
  in.pulse = CL_NEWS2_PULSE_MAX, in.temperature_c = 45.0;
  cr_assert_eq(score(&in).total, 3 + 0 + 3 + 3 + 2);
  /* 24.96 and 45.04 round onto the limits (249.6 -> 250, 450.4 -> 450). */
  in.temperature_c = 24.96;
  cr_assert_eq(score(&in).score[CL_NEWS2_TEMPERATURE], 3);
  in.temperature_c = 45.04;
  cr_assert_eq(score(&in).score[CL_NEWS2_TEMPERATURE], 2);
}

Test(news2_refuse, null_arguments) {
  cl_news2_input in = normal();
  cl_news2_result r;
  cl_err err;
  cr_assert_eq(cl_news2_score(NULL, &r, &err), CL_EINVAL);
  cr_assert(strstr(err.msg, "input"));
  cr_assert_eq(cl_news2_score(&in, NULL, &err), CL_EINVAL);
  cr_assert(strstr(err.msg, "result"));
  cr_assert_eq(cl_news2_score(&in, &r, NULL), 0); /* err may be NULL */
  in.pulse = -3;
  cr_assert_eq(cl_news2_score(&in, &r, NULL), CL_EINVAL);
}

/* ---- codes ---- */

Test(news2_codes, loinc_to_parameter) {
  cr_assert_eq(cl_news2_param_for_loinc("9279-1"), CL_NEWS2_RESP_RATE);
  cr_assert_eq(cl_news2_param_for_loinc("59408-5"), CL_NEWS2_SPO2);
  cr_assert_eq(cl_news2_param_for_loinc("2708-6"), CL_NEWS2_SPO2);
  cr_assert_eq(cl_news2_param_for_loinc("3151-8"), CL_NEWS2_AIR_OXYGEN);
  cr_assert_eq(cl_news2_param_for_loinc("3150-0"), CL_NEWS2_AIR_OXYGEN);
  cr_assert_eq(cl_news2_param_for_loinc("8480-6"), CL_NEWS2_SYSTOLIC);
  cr_assert_eq(cl_news2_param_for_loinc("8867-4"), CL_NEWS2_PULSE);
  cr_assert_eq(cl_news2_param_for_loinc("67775-7"), CL_NEWS2_CONSCIOUSNESS);
  cr_assert_eq(cl_news2_param_for_loinc("8310-5"), CL_NEWS2_TEMPERATURE);
  cr_assert_eq(cl_news2_param_for_loinc("8462-4"), -1); /* diastolic: not in NEWS2 */
  cr_assert_eq(cl_news2_param_for_loinc("9279-"), -1);
  cr_assert_eq(cl_news2_param_for_loinc("9279-1 "), -1);
  cr_assert_eq(cl_news2_param_for_loinc(""), -1);
  cr_assert_eq(cl_news2_param_for_loinc(NULL), -1);
}

Test(news2_codes, snomed_components) {
  cr_assert_str_eq(CL_SNOMED_NEWS2_TOTAL, "1104051000000101");
  cr_assert_str_eq(cl_news2_component_snomed(CL_NEWS2_RESP_RATE, 1), "1104301000000104");
  cr_assert_str_eq(cl_news2_component_snomed(CL_NEWS2_SPO2, 1), "1104311000000102");
  cr_assert_str_eq(cl_news2_component_snomed(CL_NEWS2_SPO2, 2), "1104321000000108");
  cr_assert_null(cl_news2_component_snomed(CL_NEWS2_SPO2, 3));
  cr_assert_str_eq(cl_news2_component_snomed(CL_NEWS2_AIR_OXYGEN, 0), "1104331000000105");
  cr_assert_str_eq(cl_news2_component_snomed(CL_NEWS2_SYSTOLIC, 0), "1104341000000101");
  cr_assert_str_eq(cl_news2_component_snomed(CL_NEWS2_PULSE, 0), "1104351000000103");
  cr_assert_str_eq(cl_news2_component_snomed(CL_NEWS2_CONSCIOUSNESS, 0), "1104361000000100");
  cr_assert_str_eq(cl_news2_component_snomed(CL_NEWS2_TEMPERATURE, 0), "1104371000000107");
  cr_assert_null(cl_news2_component_snomed(CL_NEWS2_NPARAMS, 1));
}

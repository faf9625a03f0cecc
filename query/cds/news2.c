/* NEWS2 (query/cds/news2.h): the RCP 2017 chart as code. Each band function
 * is the chart row read left to right, on whole numbers (temperature in
 * tenths), so an edge is one integer comparison that the tests pin on both
 * sides. Validation happens before any scoring, so a refused input leaves
 * *out untouched. */
#include "query/cds/news2.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

/* ---- chart 1, one function per row ---- */

static int band_resp_rate(int rr) {
  if (rr <= 8)
    return 3;
  if (rr <= 11)
    return 1;
  if (rr <= 20)
    return 0;
  if (rr <= 24)
    return 2;
  return 3;
}

static int band_spo2_scale1(int s) {
  if (s <= 91)
    return 3;
  if (s <= 93)
    return 2;
  if (s <= 95)
    return 1;
  return 0;
}

/* Scale 2 below 93 %: the same whatever the oxygen. */
static int band_spo2_scale2_low(int s) {
  if (s <= 83)
    return 3;
  if (s <= 85)
    return 2;
  if (s <= 87)
    return 1;
  return 0; /* 88-92 */
}

/* Scale 2 at 93 % or more: 0 on air; on oxygen 93-94 -> 1, 95-96 -> 2,
 * >= 97 -> 3 (over-oxygenation of a patient whose target is 88-92 %). */
static int band_spo2_scale2_high(int s, bool on_oxygen) {
  if (!on_oxygen)
    return 0;
  if (s <= 94)
    return 1;
  if (s <= 96)
    return 2;
  return 3;
}

static int band_systolic(int sbp) {
  if (sbp <= 90)
    return 3;
  if (sbp <= 100)
    return 2;
  if (sbp <= 110)
    return 1;
  if (sbp <= 219)
    return 0;
  return 3;
}

static int band_pulse(int p) {
  if (p <= 40)
    return 3;
  if (p <= 50)
    return 1;
  if (p <= 90)
    return 0;
  if (p <= 110)
    return 1;
  if (p <= 130)
    return 2;
  return 3;
}

static int band_temperature(long tenths) {
  if (tenths <= 350)
    return 3;
  if (tenths <= 360)
    return 1;
  if (tenths <= 380)
    return 0;
  if (tenths <= 390)
    return 1;
  return 2;
}

/* The most each component can score, for total_max. */
static const int component_max[CL_NEWS2_NPARAMS] = {3, 3, 2, 3, 3, 3, 3};

/* ---- chart 2 and chart 4 ---- */

static cl_news2_risk band_risk(int total, bool single_red) {
  if (total >= 7)
    return CL_NEWS2_RISK_HIGH;
  if (total >= 5)
    return CL_NEWS2_RISK_MEDIUM;
  if (single_red)
    return CL_NEWS2_RISK_LOW_MEDIUM;
  return CL_NEWS2_RISK_LOW;
}

static cl_news2_monitoring band_monitoring(int total, bool single_red) {
  if (total >= 7)
    return CL_NEWS2_MONITOR_CONTINUOUS;
  if (total >= 5 || single_red)
    return CL_NEWS2_MONITOR_HOURLY;
  if (total >= 1)
    return CL_NEWS2_MONITOR_4_6_HOURLY;
  return CL_NEWS2_MONITOR_12_HOURLY;
}

/* ---- validation ---- */

static int check_int(const char *field, int v, int lo, int hi, const char *unit, cl_err *err) {
  if (v < lo || v > hi)
    return cl_err_set(err, CL_EINVAL, "news2: %s %d out of range %d-%d %s", field, v, lo, hi, unit);
  return 0;
}

/* Temperature to whole tenths, or CL_EINVAL. The range check is on the
 * double first, so the conversion to long can never overflow. */
static int temperature_tenths(double t, long *tenths, cl_err *err) {
  if (!isfinite(t))
    return cl_err_set(err, CL_EINVAL, "news2: temperature_c is not a finite number");
  if (t < 0.0 || t > 100.0) /* far outside the range; keeps lround defined */
    return cl_err_set(err, CL_EINVAL, "news2: temperature_c %.2f out of range 25.0-45.0 degC", t);
  long v = lround(t * 10.0);
  if (v < CL_NEWS2_TEMP_MIN_TENTHS || v > CL_NEWS2_TEMP_MAX_TENTHS)
    return cl_err_set(err, CL_EINVAL, "news2: temperature_c %.2f out of range 25.0-45.0 degC", t);
  *tenths = v;
  return 0;
}

static int validate(const cl_news2_input *in, long *temp_tenths, cl_err *err) {
  int rc;
  if (in->has_resp_rate &&
      (rc = check_int("resp_rate", in->resp_rate, 0, CL_NEWS2_RESP_RATE_MAX, "/min", err)))
    return rc;
  if (in->has_spo2) {
    if ((rc = check_int("spo2", in->spo2, 0, CL_NEWS2_SPO2_MAX, "%", err)))
      return rc;
    if (in->spo2_scale != 1 && in->spo2_scale != 2)
      return cl_err_set(err, CL_EINVAL, "news2: spo2_scale %d is not 1 or 2", in->spo2_scale);
  }
  if (in->has_systolic &&
      (rc = check_int("systolic", in->systolic, 0, CL_NEWS2_SYSTOLIC_MAX, "mmHg", err)))
    return rc;
  if (in->has_pulse && (rc = check_int("pulse", in->pulse, 0, CL_NEWS2_PULSE_MAX, "/min", err)))
    return rc;
  if (in->has_consciousness &&
      ((int)in->consciousness < CL_ACVPU_ALERT || (int)in->consciousness > CL_ACVPU_UNRESPONSIVE))
    return cl_err_set(err, CL_EINVAL, "news2: consciousness %d is not an ACVPU level",
                      (int)in->consciousness);
  if (in->has_temperature && (rc = temperature_tenths(in->temperature_c, temp_tenths, err)))
    return rc;
  return 0;
}

int cl_news2_score(const cl_news2_input *in, cl_news2_result *out, cl_err *err) {
  if (in == NULL || out == NULL)
    return cl_err_set(err, CL_EINVAL, "news2: NULL %s", in == NULL ? "input" : "result");
  long temp_tenths = 0;
  int rc = validate(in, &temp_tenths, err);
  if (rc)
    return rc;

  cl_news2_result r;
  memset(&r, 0, sizeof r);
  for (int p = 0; p < CL_NEWS2_NPARAMS; p++)
    r.score[p] = -1;

  if (in->has_resp_rate)
    r.score[CL_NEWS2_RESP_RATE] = band_resp_rate(in->resp_rate);
  if (in->has_oxygen)
    r.score[CL_NEWS2_AIR_OXYGEN] = in->on_oxygen ? 2 : 0;
  if (in->has_spo2) {
    if (in->spo2_scale == 1)
      r.score[CL_NEWS2_SPO2] = band_spo2_scale1(in->spo2);
    else if (in->spo2 <= 92)
      r.score[CL_NEWS2_SPO2] = band_spo2_scale2_low(in->spo2);
    else if (in->has_oxygen)
      r.score[CL_NEWS2_SPO2] = band_spo2_scale2_high(in->spo2, in->on_oxygen);
    /* else: scale 2 at >= 93 % without air/oxygen cannot be scored */
  }
  if (in->has_systolic)
    r.score[CL_NEWS2_SYSTOLIC] = band_systolic(in->systolic);
  if (in->has_pulse)
    r.score[CL_NEWS2_PULSE] = band_pulse(in->pulse);
  if (in->has_consciousness)
    r.score[CL_NEWS2_CONSCIOUSNESS] = in->consciousness == CL_ACVPU_ALERT ? 0 : 3;
  if (in->has_temperature)
    r.score[CL_NEWS2_TEMPERATURE] = band_temperature(temp_tenths);

  bool could_red = false; /* a missing component could still score 3 */
  for (int p = 0; p < CL_NEWS2_NPARAMS; p++) {
    if (r.score[p] < 0) {
      r.missing |= CL_NEWS2_BIT(p);
      r.total_max += component_max[p];
      if (component_max[p] == 3)
        could_red = true;
      continue;
    }
    r.total += r.score[p];
    r.total_max += r.score[p];
    if (r.score[p] == 3)
      r.single_red = true;
  }
  r.complete = r.missing == 0;
  r.risk = band_risk(r.total, r.single_red);
  r.risk_max = band_risk(r.total_max, r.single_red || could_red);
  r.monitoring = band_monitoring(r.total, r.single_red);
  *out = r;
  return 0;
}

/* ---- names and texts ---- */

const char *cl_news2_param_name(cl_news2_param p) {
  static const char *const names[CL_NEWS2_NPARAMS] = {
      "respiration rate", "SpO2",       "air or oxygen", "systolic blood pressure", "pulse",
      "consciousness",    "temperature"};
  return (int)p >= 0 && p < CL_NEWS2_NPARAMS ? names[p] : "?";
}

const char *cl_news2_risk_name(cl_news2_risk r) {
  switch (r) {
  case CL_NEWS2_RISK_LOW:
    return "low";
  case CL_NEWS2_RISK_LOW_MEDIUM:
    return "low-medium";
  case CL_NEWS2_RISK_MEDIUM:
    return "medium";
  case CL_NEWS2_RISK_HIGH:
    return "high";
  }
  return "?";
}

const char *cl_news2_response(cl_news2_risk r) {
  switch (r) {
  case CL_NEWS2_RISK_LOW:
    return "ward-based response";
  case CL_NEWS2_RISK_LOW_MEDIUM:
    return "urgent ward-based response";
  case CL_NEWS2_RISK_MEDIUM:
    return "key threshold for urgent response";
  case CL_NEWS2_RISK_HIGH:
    return "urgent or emergency response";
  }
  return "?";
}

const char *cl_news2_monitoring_text(cl_news2_monitoring m) {
  switch (m) {
  case CL_NEWS2_MONITOR_12_HOURLY:
    return "minimum 12-hourly";
  case CL_NEWS2_MONITOR_4_6_HOURLY:
    return "minimum 4-6-hourly";
  case CL_NEWS2_MONITOR_HOURLY:
    return "minimum 1-hourly";
  case CL_NEWS2_MONITOR_CONTINUOUS:
    return "continuous monitoring of vital signs";
  }
  return "?";
}

const char *cl_news2_acvpu_name(cl_news2_acvpu c) {
  switch (c) {
  case CL_ACVPU_ALERT:
    return "alert";
  case CL_ACVPU_CONFUSION:
    return "new confusion";
  case CL_ACVPU_VOICE:
    return "voice";
  case CL_ACVPU_PAIN:
    return "pain";
  case CL_ACVPU_UNRESPONSIVE:
    return "unresponsive";
  }
  return "?";
}

const char *cl_news2_clinical_response(cl_news2_risk r, int total) {
  switch (r) {
  case CL_NEWS2_RISK_LOW:
    return total <= 0 ? "continue routine NEWS monitoring"
                      : "registered nurse assesses the patient and decides whether to monitor "
                        "more often or escalate care";
  case CL_NEWS2_RISK_LOW_MEDIUM:
    return "registered nurse informs the medical team caring for the patient, who review and "
           "decide whether to escalate care";
  case CL_NEWS2_RISK_MEDIUM:
    return "registered nurse immediately informs the medical team; urgent assessment by a "
           "clinician or team competent in acute illness; care in an environment with "
           "monitoring facilities";
  case CL_NEWS2_RISK_HIGH:
    return "registered nurse immediately informs the medical team (at least specialist "
           "registrar); emergency assessment by a team with critical-care competencies "
           "including advanced airway skills; consider transfer to level 2 or 3 care (HDU or "
           "ICU)";
  }
  return "?";
}

int cl_news2_param_for_loinc(const char *loinc) {
  static const struct {
    const char *code;
    cl_news2_param p;
  } map[] = {
      {CL_LOINC_RESP_RATE, CL_NEWS2_RESP_RATE},
      {CL_LOINC_SPO2_PULSE_OX, CL_NEWS2_SPO2},
      {CL_LOINC_SPO2, CL_NEWS2_SPO2},
      {CL_LOINC_O2_FLOW, CL_NEWS2_AIR_OXYGEN},
      {CL_LOINC_O2_CONCENTRATION, CL_NEWS2_AIR_OXYGEN},
      {CL_LOINC_SYSTOLIC, CL_NEWS2_SYSTOLIC},
      {CL_LOINC_HEART_RATE, CL_NEWS2_PULSE},
      {CL_LOINC_RESPONSIVENESS, CL_NEWS2_CONSCIOUSNESS},
      {CL_LOINC_BODY_TEMP, CL_NEWS2_TEMPERATURE},
  };
  if (loinc == NULL)
    return -1;
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (strcmp(loinc, map[i].code) == 0)
      return (int)map[i].p;
  return -1;
}

const char *cl_news2_component_snomed(cl_news2_param p, int spo2_scale) {
  switch (p) {
  case CL_NEWS2_RESP_RATE:
    return "1104301000000104";
  case CL_NEWS2_SPO2:
    return spo2_scale == 1 ? "1104311000000102" : spo2_scale == 2 ? "1104321000000108" : NULL;
  case CL_NEWS2_AIR_OXYGEN:
    return "1104331000000105";
  case CL_NEWS2_SYSTOLIC:
    return "1104341000000101";
  case CL_NEWS2_PULSE:
    return "1104351000000103";
  case CL_NEWS2_CONSCIOUSNESS:
    return "1104361000000100";
  case CL_NEWS2_TEMPERATURE:
    return "1104371000000107";
  case CL_NEWS2_NPARAMS:
    break;
  }
  return NULL;
}

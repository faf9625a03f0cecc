/* NEWS2, the National Early Warning Score 2 of the Royal College of
 * Physicians (RCP, "National Early Warning Score (NEWS) 2: Standardising the
 * assessment of acute-illness severity in the NHS", updated report of a
 * working party, December 2017): a pure function from one set of bedside
 * vitals to the score, its components, the clinical risk and the response
 * and monitoring frequency the chart gives. No I/O, no allocation, no
 * global state; a later slice calls it as vitals arrive and stores the
 * result as an Observation with its components.
 *
 * Chart 1 (the NEWS scoring system), transcribed and checked against the
 * RCP chart (O2: on supplemental oxygen; scale 2 at >= 93 % scores by air or
 * oxygen); every edge is tested on both sides (tests/query/test_cds_news2.c):
 *
 *   | parameter        | score 3       | score 2         | score 1              | score 0         |
 *   |------------------|---------------|-----------------|----------------------|-----------------|
 *   | respiration /min | <=8, >=25     | 21-24           | 9-11                 | 12-20           |
 *   | SpO2 scale 1 %   | <=91          | 92-93           | 94-95                | >=96            |
 *   | SpO2 scale 2 %   | <=83, >=97 O2 | 84-85, 95-96 O2 | 86-87, 93-94 O2      | 88-92, >=93 air |
 *   | air or oxygen    |               | oxygen          |                      | air             |
 *   | systolic mmHg    | <=90, >=220   | 91-100          | 101-110              | 111-219         |
 *   | pulse /min       | <=40, >=131   | 111-130         | 41-50, 91-110        | 51-90           |
 *   | consciousness    | C, V, P, U    |                 |                      | Alert           |
 *   | temperature degC | <=35.0        | >=39.1          | 35.1-36.0, 38.1-39.0 | 36.1-38.0       |
 *
 * Chart 2 (thresholds and triggers) and chart 4 (clinical response; the
 * monitoring frequencies are minimums):
 *
 *   | total or trigger   | risk       | response (chart 2)                | monitoring (chart 4) |
 *   |--------------------|------------|-----------------------------------|----------------------|
 *   | 0                  | low        | ward-based response               | 12-hourly            |
 *   | 1-4                | low        | ward-based response               | 4-6-hourly           |
 *   | 3 in one parameter | low-medium | urgent ward-based response        | 1-hourly             |
 *   | 5-6                | medium     | key threshold for urgent response | 1-hourly             |
 *   | 7 or more          | high       | urgent or emergency response      | continuous           |
 *
 * A single 3 only sets the band when the total is 0-4; a total of 5 or more
 * outranks it. SpO2 scale 2 is for patients with hypercapnic respiratory
 * failure whose prescribed target is 88-92 %, on a clinician's decision; the
 * caller says which scale applies, this module never guesses.
 *
 * Units and precision. Respiration rate, SpO2, systolic pressure and pulse
 * are whole numbers, as charted (the caller rounds device readings).
 * Temperature is a double in degrees Celsius, rounded to the nearest tenth
 * (half away from zero) and then banded as an integer count of tenths, so
 * 38.0 and 38.1 land on the side of the edge the chart puts them on however
 * the double was produced (0.1 * 381 and 38.1 both give 381 tenths). A value
 * exactly halfway between tenths in decimal (38.05) is not exactly a double
 * and may round either way: callers holding hundredths should round first.
 *
 * Missing parameters. NEWS2 is defined only on all seven components, so a
 * result with any component missing has complete == false and must not be
 * shown as a NEWS2. Every component scores 0 or more, so the total of the
 * components present is a lower bound on the full score, and any trigger it
 * already reaches (a single 3, a total of 5, of 7) the full score reaches
 * too. The module therefore computes the partial total, and `risk` is the
 * band that partial total certainly reaches: a patient breathing 30 times a
 * minute triggers an urgent ward-based response before anyone has taken the
 * temperature, and alerting on it never over-alerts. What an incomplete set
 * must not do is reassure: `risk_max` is the band the missing components
 * could still raise it to (each could score its maximum, 3, or 2 for air or
 * oxygen), and the caller shows "incomplete, missing: ..." rather than "low
 * risk" whenever complete is false. The response and monitoring frequency
 * follow `risk`: when incomplete they are the minimum the known components
 * already demand, and the missing vitals still have to be taken.
 *
 * SpO2 on scale 2 at 93 % or more scores by air or oxygen; without that
 * component it is not scored either (both are in `missing`). Below 93 % it
 * scores without it.
 *
 * Codes. LOINC codes a vitals feed carries for each parameter (see
 * cl_news2_param_for_loinc) and the SNOMED CT UK edition codes of the NEWS2
 * total and sub-scores, for the Observation a later slice stores. LOINC has
 * no code for the NEWS2 total (UK Core's Early Warning Total Score profile
 * says so and codes it in SNOMED CT).
 *
 * Thread-safety: every function is reentrant and keeps no state. */
#ifndef CL_QUERY_CDS_NEWS2_H
#define CL_QUERY_CDS_NEWS2_H

#include <stdbool.h>

#include "store/err.h"

/* ---- codes ----
 * LOINC (loinc.org; the FHIR R4 vital-signs profiles and US Core's pulse
 * oximetry profile use the same codes):
 *   9279-1  Respiratory rate
 *   59408-5 Oxygen saturation in Arterial blood by Pulse oximetry
 *   2708-6  Oxygen saturation in Arterial blood (FHIR core vital sign code)
 *   3151-8  Inhaled oxygen flow rate       } supplemental oxygen when the
 *   3150-0  Inhaled oxygen concentration   } flow is > 0 or FiO2 > 21 %
 *   8480-6  Systolic blood pressure (also a component of panel 85354-9)
 *   8867-4  Heart rate
 *   67775-7 Level of responsiveness (AVPU; it has no "new confusion" answer,
 *           so C comes from a local or SNOMED CT code, never from AVPU)
 *   8310-5  Body temperature
 * SNOMED CT UK edition (UK Core ValueSets UKCore-EarlyWarningTotalScores and
 * UKCore-EarlyWarningSubScore; NHS England FHIR NEWS2 guidance):
 *   1104051000000101 Royal College of Physicians NEWS2 (National Early
 *                    Warning Score 2) total score
 *   sub-scores: cl_news2_component_snomed (1104301000000104 respiration
 *   rate ... 1104371000000107 temperature; SpO2 has one code per scale). */
#define CL_LOINC_RESP_RATE "9279-1"
#define CL_LOINC_SPO2_PULSE_OX "59408-5"
#define CL_LOINC_SPO2 "2708-6"
#define CL_LOINC_O2_FLOW "3151-8"
#define CL_LOINC_O2_CONCENTRATION "3150-0"
#define CL_LOINC_SYSTOLIC "8480-6"
#define CL_LOINC_HEART_RATE "8867-4"
#define CL_LOINC_RESPONSIVENESS "67775-7"
#define CL_LOINC_BODY_TEMP "8310-5"
#define CL_SNOMED_NEWS2_TOTAL "1104051000000101"

/* ---- input limits ----
 * Values outside these are physiologically impossible (or a unit mistake:
 * Fahrenheit, a fraction for a percentage) and are refused, not scored.
 * The bounds are generous on purpose: an extreme but real value (a
 * respiratory rate of 0 in arrest, SpO2 of 60 %) must score 3, not vanish. */
#define CL_NEWS2_RESP_RATE_MAX 100   /* breaths/min, from 0 */
#define CL_NEWS2_SPO2_MAX 100        /* %, from 0 */
#define CL_NEWS2_SYSTOLIC_MAX 300    /* mmHg, from 0 */
#define CL_NEWS2_PULSE_MAX 300       /* beats/min, from 0 */
#define CL_NEWS2_TEMP_MIN_TENTHS 250 /* 25.0 degC */
#define CL_NEWS2_TEMP_MAX_TENTHS 450 /* 45.0 degC */

/* The seven components, in chart order; also bit positions in `missing`. */
typedef enum cl_news2_param {
  CL_NEWS2_RESP_RATE = 0,
  CL_NEWS2_SPO2 = 1,
  CL_NEWS2_AIR_OXYGEN = 2,
  CL_NEWS2_SYSTOLIC = 3,
  CL_NEWS2_PULSE = 4,
  CL_NEWS2_CONSCIOUSNESS = 5,
  CL_NEWS2_TEMPERATURE = 6,
  CL_NEWS2_NPARAMS = 7
} cl_news2_param;

#define CL_NEWS2_BIT(p) (1u << (unsigned)(p))
#define CL_NEWS2_ALL ((1u << CL_NEWS2_NPARAMS) - 1u)

/* ACVPU: Alert, new Confusion, Voice, Pain, Unresponsive. */
typedef enum cl_news2_acvpu {
  CL_ACVPU_ALERT = 0,
  CL_ACVPU_CONFUSION = 1, /* new-onset confusion, disorientation or agitation */
  CL_ACVPU_VOICE = 2,
  CL_ACVPU_PAIN = 3,
  CL_ACVPU_UNRESPONSIVE = 4
} cl_news2_acvpu;

/* One set of observations. Every parameter is optional: its has_* flag says
 * whether it was measured; the value is ignored (not validated) otherwise.
 * Plain value; zero-initialise (`cl_news2_input in = {0};`) and fill. */
typedef struct cl_news2_input {
  bool has_resp_rate;
  int resp_rate; /* breaths/min, 0..CL_NEWS2_RESP_RATE_MAX */
  bool has_spo2;
  int spo2;       /* %, 0..100 */
  int spo2_scale; /* 1 or 2 (2: hypercapnic respiratory failure, target 88-92 %) */
  bool has_oxygen;
  bool on_oxygen; /* supplemental oxygen (any device, any flow) */
  bool has_systolic;
  int systolic; /* mmHg, 0..CL_NEWS2_SYSTOLIC_MAX */
  bool has_pulse;
  int pulse; /* beats/min, 0..CL_NEWS2_PULSE_MAX */
  bool has_consciousness;
  cl_news2_acvpu consciousness;
  bool has_temperature;
  double temperature_c; /* degC, 25.0..45.0 after rounding to tenths */
} cl_news2_input;

/* Clinical risk (chart 2), ordered: a higher value is more urgent. */
typedef enum cl_news2_risk {
  CL_NEWS2_RISK_LOW = 0,        /* total 0-4, no single 3 */
  CL_NEWS2_RISK_LOW_MEDIUM = 1, /* a single parameter scores 3, total 0-4 */
  CL_NEWS2_RISK_MEDIUM = 2,     /* total 5-6 */
  CL_NEWS2_RISK_HIGH = 3        /* total 7 or more */
} cl_news2_risk;

/* Minimum frequency of monitoring (chart 4). */
typedef enum cl_news2_monitoring {
  CL_NEWS2_MONITOR_12_HOURLY = 0,  /* total 0 */
  CL_NEWS2_MONITOR_4_6_HOURLY = 1, /* total 1-4 */
  CL_NEWS2_MONITOR_HOURLY = 2,     /* a single 3, or total 5-6 */
  CL_NEWS2_MONITOR_CONTINUOUS = 3  /* total 7 or more */
} cl_news2_monitoring;

/* The score. Plain value. */
typedef struct cl_news2_result {
  int score[CL_NEWS2_NPARAMS];    /* per component 0..3; -1 when not scored */
  unsigned missing;               /* CL_NEWS2_BIT()s of the components not scored */
  bool complete;                  /* missing == 0: only then is `total` a NEWS2 */
  int total;                      /* sum of the scored components, 0..20 */
  int total_max;                  /* total if every missing component scored its
                                     maximum; == total when complete */
  bool single_red;                /* some scored component is 3 */
  cl_news2_risk risk;             /* band `total` and `single_red` reach (a lower
                                     bound when incomplete) */
  cl_news2_risk risk_max;         /* highest band the missing components could
                                     reach; == risk when complete */
  cl_news2_monitoring monitoring; /* chart 4 minimum, from total/single_red */
} cl_news2_result;

/* Scores `in` (borrowed) into *out. Errors: CL_EINVAL when in or out is
 * NULL, or a present parameter is impossible (err names the input field and
 * its allowed range: resp_rate, spo2, spo2_scale, systolic, pulse,
 * consciousness, temperature_c including NaN and infinities). On error *out
 * is unchanged. Missing parameters are not an error (see the file comment).
 * Reentrant. */
CL_MUST_CHECK int cl_news2_score(const cl_news2_input *in, cl_news2_result *out, cl_err *err);

/* Names and chart texts: static strings, valid for the life of the program;
 * "?" for a value outside the enum. */
const char *cl_news2_param_name(cl_news2_param p); /* "respiration rate" */
const char *cl_news2_risk_name(cl_news2_risk r);   /* "low-medium" */
const char *cl_news2_response(cl_news2_risk r);    /* chart 2: "urgent ward-based response" */
const char *cl_news2_monitoring_text(cl_news2_monitoring m); /* chart 4: "minimum 4-6-hourly" */
const char *cl_news2_acvpu_name(cl_news2_acvpu c);           /* "new confusion" */

/* Chart 4's clinical response for the band of `r` reached with `total`
 * (total 0 and total 1-4 differ within the low band), summarised: who is
 * told and who assesses. Static string. */
const char *cl_news2_clinical_response(cl_news2_risk r, int total);

/* Which component a LOINC code (e.g. "9279-1", borrowed, NUL-terminated)
 * feeds, or -1 if none. Inhaled oxygen flow and concentration both feed
 * CL_NEWS2_AIR_OXYGEN: the caller decides air (flow 0, FiO2 21 %) or
 * oxygen from the value. NULL gives -1. Reentrant. */
int cl_news2_param_for_loinc(const char *loinc);

/* SNOMED CT UK edition code of the sub-score Observation component for `p`
 * (SpO2 has one per scale: `spo2_scale` 1 or 2, ignored for the others), or
 * NULL for an invalid p or scale. Static string. */
const char *cl_news2_component_snomed(cl_news2_param p, int spo2_scale);

#endif

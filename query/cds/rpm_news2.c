/* NEWS2 on the log (rpm.h, docs/cds.md "NEWS2 on the log"): the latest
 * value of each NEWS2 parameter a patient's readings and observations
 * carry, scored with cl_news2_score (news2.h) whenever one changes, and
 * the early-warning alert at the RCP triggers.
 *
 * Invariants: findings depend only on the KB, the state and the event (no
 * clock); a value is replaced only by one measured at the same time or
 * later; values measured more than the KB's news2 window before the newest
 * are not combined with it (treated as missing: the partial score is a
 * lower bound, news2.h); at most one of "news2:low-medium", "news2:medium",
 * "news2:high" alerts per rise, the lower bands opening silently under the
 * alert's key, the higher ones closing. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "query/cds/check_int.h"
#include "query/cds/rpm_int.h"

#define K_EWS CLINLOG__V1__ISSUE_KIND__ISSUE_KIND_EARLY_WARNING
#define NEWS2_SYSTEM "urn:clinlog:news2"

/* The chart's unit of each numeric parameter (converted to with
 * cl_kb_ucum_convert; an empty unit is taken as the chart's). */
static const char *const UNIT[CL_NEWS2_NPARAMS] = {"/min", "%",  NULL, "mm[Hg]",
                                                   "/min", NULL, "Cel"};

/* ACVPU from a coded value: the letter (any system) or the name. */
static int acvpu(const Clinlog__V1__Code *c, double *v) {
  static const char *const L[] = {"A", "C", "V", "P", "U"};
  static const char *const N[] = {"alert", "confusion", "voice", "pain", "unresponsive"};
  if (!c || !c->code)
    return -1;
  for (int i = 0; i < 5; i++)
    if (!strcmp(c->code, L[i]) || !strcasecmp(c->code, N[i])) {
      *v = i;
      return 0;
    }
  return -1;
}

/* The value of parameter p in the chart's terms, from q or c: 0, or -1. */
static int chart_value(const char *loinc, int p, const Clinlog__V1__Quantity *q,
                       const Clinlog__V1__Code *c, double *v) {
  if (p == CL_NEWS2_CONSCIOUSNESS)
    return acvpu(c, v);
  double x;
  if (rpm_value_of(q, &x))
    return -1;
  const char *unit = q->unit ? q->unit : "";
  if (p == CL_NEWS2_AIR_OXYGEN) {
    /* flow in L/min: oxygen when above 0; FiO2 in %: above room air's 21 */
    *v = !strcmp(loinc, CL_LOINC_O2_FLOW) ? x > 0 : x > 21;
    return 0;
  }
  if (unit[0] && cl_kb_ucum_convert(x, unit, UNIT[p], loinc, &x))
    return -1;
  *v = p == CL_NEWS2_TEMPERATURE ? x : (double)lround(x);
  return 0;
}

static void set_input(cl_news2_input *in, int p, double v) {
  switch (p) {
  case CL_NEWS2_RESP_RATE:
    in->has_resp_rate = true;
    in->resp_rate = (int)v;
    break;
  case CL_NEWS2_SPO2:
    in->has_spo2 = true;
    in->spo2 = (int)v;
    break;
  case CL_NEWS2_AIR_OXYGEN:
    in->has_oxygen = true;
    in->on_oxygen = v != 0;
    break;
  case CL_NEWS2_SYSTOLIC:
    in->has_systolic = true;
    in->systolic = (int)v;
    break;
  case CL_NEWS2_PULSE:
    in->has_pulse = true;
    in->pulse = (int)v;
    break;
  case CL_NEWS2_CONSCIOUSNESS:
    in->has_consciousness = true;
    in->consciousness = (cl_news2_acvpu)(int)v;
    break;
  default:
    in->has_temperature = true;
    in->temperature_c = v;
    break;
  }
}

int rpm_news2_take(const cl_kb *kb, cl_rpm_patient *st, const char *system, const char *code,
                   const Clinlog__V1__Quantity *q, const Clinlog__V1__Code *c, int64_t t,
                   const uint8_t id[16]) {
  rpm_news2 *n = &st->news2;
  double v;
  if (!cl_kb_rpm_limit_get(kb, CL_KB_RPM_NEWS2)->set || !system || !code)
    return 0;
  if (!strcmp(system, NEWS2_SYSTEM) && !strcmp(code, "spo2-scale")) {
    /* a clinician documents the scale (news2.h: never guessed) */
    if (rpm_value_of(q, &v) || (v != 1 && v != 2))
      return 0;
    int changed = (n->scale ? n->scale : 1) != (int)v;
    n->scale = (int)v;
    return changed;
  }
  int p = strcmp(system, CL_LOINC) ? -1 : cl_news2_param_for_loinc(code);
  if (p < 0)
    return 0;
  cl_news2_input in = {.spo2_scale = 1};
  cl_news2_result r;
  cl_err e;
  if (chart_value(code, p, q, c, &v) || (set_input(&in, p, v), cl_news2_score(&in, &r, &e))) {
    st->unconverted++; /* an impossible value or a unit mistake: never scored */
    return 0;
  }
  if (t < n->t[p]) /* older than the value held: a late upload changes nothing */
    return 0;
  n->v[p] = v;
  n->t[p] = t;
  memcpy(n->ev[p], id, 16);
  return 1;
}

/* "respiration rate 26 (3), ..." of the scored components, into buf. */
static void components(const rpm_news2 *n, const cl_news2_input *in, const cl_news2_result *r,
                       char *buf, size_t cap) {
  size_t off = 0;
  buf[0] = 0;
  for (int p = 0; p < CL_NEWS2_NPARAMS && off < cap; p++) {
    if (r->score[p] < 0)
      continue;
    char val[32];
    if (p == CL_NEWS2_AIR_OXYGEN)
      snprintf(val, sizeof val, "%s", in->on_oxygen ? "oxygen" : "air");
    else if (p == CL_NEWS2_CONSCIOUSNESS)
      snprintf(val, sizeof val, "%s", cl_news2_acvpu_name(in->consciousness));
    else if (p == CL_NEWS2_TEMPERATURE)
      snprintf(val, sizeof val, "%.1f Cel", n->v[p]);
    else
      snprintf(val, sizeof val, "%.0f %s", n->v[p], UNIT[p]);
    int k = snprintf(buf + off, cap - off, "%s%s%s %s: %d", off ? "; " : "",
                     cl_news2_param_name((cl_news2_param)p),
                     p == CL_NEWS2_SPO2 ? (in->spo2_scale == 2 ? " (scale 2)" : " (scale 1)") : "",
                     val, r->score[p]);
    off = k < 0 ? cap : off + (size_t)k;
  }
}

/* The names of the missing components, into buf. */
static void missing(unsigned bits, char *buf, size_t cap) {
  size_t off = 0;
  buf[0] = 0;
  for (int p = 0; p < CL_NEWS2_NPARAMS && off < cap; p++)
    if (bits & CL_NEWS2_BIT(p)) {
      int k = snprintf(buf + off, cap - off, "%s%s", off ? ", " : "",
                       cl_news2_param_name((cl_news2_param)p));
      off = k < 0 ? cap : off + (size_t)k;
    }
}

void rpm_news2_eval(const cl_kb *kb, cl_rpm_patient *st, const uint8_t id[16],
                    cl_cds_findings *out) {
  const cl_kb_rpm_limit *l = cl_kb_rpm_limit_get(kb, CL_KB_RPM_NEWS2);
  const rpm_news2 *n = &st->news2;
  if (!l->set)
    return;
  int64_t newest = 0;
  for (int p = 0; p < CL_NEWS2_NPARAMS; p++)
    newest = n->t[p] > newest ? n->t[p] : newest;
  int64_t from = newest - (int64_t)l->value * NS_PER_S;
  cl_news2_input in = {.spo2_scale = n->scale ? n->scale : 1};
  for (int p = 0; p < CL_NEWS2_NPARAMS; p++)
    if (n->t[p] && n->t[p] >= from) /* a stale value is not combined */
      set_input(&in, p, n->v[p]);
  cl_news2_result r;
  cl_err e;
  if (cl_news2_score(&in, &r, &e))
    return; /* every value was validated when taken */
  uint8_t key[16] = {0};
  long oi = -1;
  for (int b = CL_NEWS2_RISK_HIGH; b > CL_NEWS2_RISK_LOW; b--) {
    char cond[RPM_COND_LEN];
    cds_text(cond, sizeof cond, "news2:%s", cl_news2_risk_name((cl_news2_risk)b));
    if (b > (int)r.risk) {
      rpm_open_close(st, cond); /* a lower score closes the higher bands */
      continue;
    }
    if (b < (int)r.risk) { /* the bands below open silently under the alert's key */
      (void)rpm_open_add(st, cond, key);
      continue;
    }
    if ((oi = rpm_open_find(st, cond)) >= 0) {
      memcpy(key, st->open[oi].key, 16);
      continue;
    }
    cds_key(id, cond, NULL, key);
    int sev = l->severity - (CL_NEWS2_RISK_HIGH - b);
    cl_cds_finding *f = cds_add(kb, out, K_EWS, sev < CL_KB_RPM_LOW ? CL_KB_RPM_LOW : sev, "ISSUE",
                                l->source, cond, id, NULL);
    if (f) {
      char comp[400], miss[160];
      components(n, &in, &r, comp, sizeof comp);
      missing(r.missing, miss, sizeof miss);
      cds_text(f->detail, sizeof f->detail,
               "NEWS2 %d%s%s%s: %s clinical risk%s, %s; %s. Components: %s. Source: %s", r.total,
               r.complete ? "" : " (incomplete, missing: ", miss, r.complete ? "" : ")",
               cl_news2_risk_name(r.risk), r.single_red && r.total < 5 ? " (a single 3)" : "",
               cl_news2_response(r.risk), cl_news2_monitoring_text(r.monitoring), comp,
               l->citation);
      cds_text(f->mitigation, sizeof f->mitigation, "%s",
               cl_news2_clinical_response(r.risk, r.total));
    }
    (void)rpm_open_add(st, cond, key);
  }
}

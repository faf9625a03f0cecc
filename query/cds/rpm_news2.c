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
static void components(const double v[CL_NEWS2_NPARAMS], const cl_news2_input *in,
                       const cl_news2_result *r, char *buf, size_t cap) {
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
      snprintf(val, sizeof val, "%.1f Cel", v[p]);
    else
      snprintf(val, sizeof val, "%.0f %s", v[p], UNIT[p]);
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

/* A complete set is stored when it scores differently from the last one
 * stored, or its newest value is a window or more after that one's: a
 * monitor sending a pulse a second stores a score when it matters, and at
 * least once a window while the set stays complete. */
static void record(cl_rpm_patient *st, const cl_news2_input *in, const cl_news2_result *r,
                   int64_t newest, double window_s, const uint8_t id[16], cl_cds_findings *out) {
  rpm_news2 *n = &st->news2;
  if (!r->complete)
    return; /* an incomplete total is not a NEWS2 (news2.h) */
  int same = n->rec_t != 0 && newest - n->rec_t < (int64_t)window_s * NS_PER_S;
  for (int p = 0; same && p < CL_NEWS2_NPARAMS; p++)
    same = n->rec_score[p] == r->score[p];
  if (same)
    return;
  cl_cds_news2_rec *rec = &out->news2;
  memset(rec, 0, sizeof *rec);
  rec->set = 1;
  cds_key(id, "news2:score", NULL, rec->key);
  memcpy(rec->trigger, id, 16);
  memcpy(rec->from, n->ev, sizeof rec->from);
  memcpy(rec->value, n->v, sizeof rec->value);
  rec->effective_ns = newest;
  rec->in = *in;
  rec->r = *r;
  n->rec_t = newest;
  for (int p = 0; p < CL_NEWS2_NPARAMS; p++)
    n->rec_score[p] = (int8_t)r->score[p];
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
  record(st, &in, &r, newest, l->value, id, out);
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
      components(n->v, &in, &r, comp, sizeof comp);
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

/* ---- the score as an ObservationRecorded ---- */

#define SCT "http://snomed.info/sct"

static void hex16(const uint8_t k[16], char *out) {
  static const char HEX[] = "0123456789abcdef";
  for (int i = 0; i < 16; i++) {
    out[2 * i] = HEX[k[i] >> 4];
    out[2 * i + 1] = HEX[k[i] & 15];
  }
  out[32] = 0;
}

static void score_qty(Clinlog__V1__Quantity *q, char *buf, int v) {
  clinlog__v1__quantity__init(q);
  snprintf(buf, 4, "%d", v);
  q->value = buf;
  q->unit = (char *)"{score}";
}

void cl_rpm_news2_fill(const cl_cds_news2_rec *rec, cl_rpm_news2_obs *out) {
  memset(out, 0, sizeof *out);
  clinlog__v1__observation_recorded__init(&out->msg);
  clinlog__v1__codeable_concept__init(&out->code);
  clinlog__v1__code__init(&out->coding);
  clinlog__v1__code__init(&out->category);
  google__protobuf__timestamp__init(&out->effective);
  memcpy(out->observation_id, "news2-", 6);
  hex16(rec->key, out->observation_id + 6);
  out->coding.system = (char *)SCT;
  out->coding.code = (char *)CL_SNOMED_NEWS2_TOTAL;
  out->codingp = &out->coding;
  out->code.coding = &out->codingp;
  out->code.n_coding = 1;
  out->code.text = (char *)"NEWS2 total score";
  out->category.system = (char *)"http://terminology.hl7.org/CodeSystem/observation-category";
  out->category.code = (char *)"survey";
  out->categoryp = &out->category;
  score_qty(&out->total, out->total_value, rec->r.total);
  int64_t s = rec->effective_ns / NS_PER_S, ns = rec->effective_ns % NS_PER_S;
  if (ns < 0) {
    s--;
    ns += NS_PER_S;
  }
  out->effective.seconds = s;
  out->effective.nanos = (int32_t)ns;
  for (int p = 0; p < CL_NEWS2_NPARAMS; p++) {
    clinlog__v1__component__init(&out->comp[p]);
    clinlog__v1__code__init(&out->comp_code[p]);
    out->comp_code[p].system = (char *)SCT;
    out->comp_code[p].code =
        (char *)cl_news2_component_snomed((cl_news2_param)p, rec->in.spo2_scale);
    score_qty(&out->comp_value[p], out->values[p], rec->r.score[p]);
    out->comp[p].code = &out->comp_code[p];
    out->comp[p].value = &out->comp_value[p];
    out->compp[p] = &out->comp[p];
  }
  char comp[400];
  components(rec->value, &rec->in, &rec->r, comp, sizeof comp);
  cds_text(out->note, sizeof out->note, "NEWS2 %d: %s clinical risk%s, %s; %s. Components: %s.",
           rec->r.total, cl_news2_risk_name(rec->r.risk),
           rec->r.single_red && rec->r.total < 5 ? " (a single 3)" : "",
           cl_news2_response(rec->r.risk), cl_news2_monitoring_text(rec->r.monitoring), comp);
  out->msg.observation_id = out->observation_id;
  out->msg.code = &out->code;
  out->msg.category = &out->categoryp;
  out->msg.n_category = 1;
  out->msg.value_case = CLINLOG__V1__OBSERVATION_RECORDED__VALUE_QUANTITY;
  out->msg.quantity = &out->total;
  out->msg.status = CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_FINAL;
  out->msg.effective = &out->effective;
  out->msg.components = out->compp;
  out->msg.n_components = CL_NEWS2_NPARAMS;
  out->msg.note = out->note;
}

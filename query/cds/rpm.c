/* Remote patient monitoring (rpm.h): thresholds, weight gain, battery,
 * adherence and device-silence watches over one patient's state.
 *
 * Invariants: findings depend only on the KB, the state and the event (no
 * clock); each condition is open at most once; a device's watch is armed
 * only while the KB has a device-silent rule and "silent:<device>" is not
 * open, and its key is the finding cl_rpm_silent_finding would add. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/cds/check_int.h"
#include "query/cds/rpm_int.h"

#define K_VITAL CLINLOG__V1__ISSUE_KIND__ISSUE_KIND_VITAL_SIGN
#define K_SILENT CLINLOG__V1__ISSUE_KIND__ISSUE_KIND_DEVICE_SILENT
#define K_ADHERENCE CLINLOG__V1__ISSUE_KIND__ISSUE_KIND_ADHERENCE
#define K_STATUS CLINLOG__V1__ISSUE_KIND__ISSUE_KIND_DEVICE_STATUS
#define WEIGHT_KEEP (31 * NS_PER_DAY + NS_PER_DAY / 2) /* the longest window + slack */
#define WINDOW_SLACK (NS_PER_DAY / 2) /* "in a day": yesterday's morning weight counts */
#define EPS 1e-9

/* ------------------------------------------------------------ state */

int cl_rpm_patient_new(cl_rpm_patient **out, cl_err *err) {
  cl_rpm_patient *st = calloc(1, sizeof *st);
  if (!st)
    return cl_err_set(err, CL_ENOMEM, "cds: out of memory");
  *out = st;
  return 0;
}

void cl_rpm_patient_free(cl_rpm_patient *st) {
  if (!st)
    return;
  free(st->open);
  free(st->w);
  free(st->dev);
  free(st->rx);
  free(st->vlast);
  free(st);
}

void *rpm_grow(cl_rpm_patient *st, void *list, size_t *cap, size_t size, size_t max) {
  size_t n = *cap ? *cap * 2 : 4;
  if (n > max)
    n = max;
  void *p = n > *cap ? realloc(list, n * size) : NULL;
  if (!p) {
    st->oom = 1;
    return list;
  }
  *cap = n;
  return p;
}

void cl_rpm_set(cl_cds_patient *pt, cl_rpm_patient *st) {
  if (pt->rpm != st)
    cl_rpm_patient_free(pt->rpm);
  pt->rpm = st;
}

cl_rpm_patient *cl_rpm_of(const cl_cds_patient *pt) { return pt->rpm; }

void cl_rpm_get_counts(const cl_rpm_patient *st, cl_rpm_counts *c) {
  *c = (cl_rpm_counts){st->nopen, st->ndev, st->nw, st->nrx, st->unconverted, st->untracked};
}

long rpm_open_find(const cl_rpm_patient *st, const char *cond) {
  for (size_t i = 0; i < st->nopen; i++)
    if (!strcmp(st->open[i].cond, cond))
      return (long)i;
  return -1;
}

int cl_rpm_is_open(const cl_rpm_patient *st, const char *cond) {
  return rpm_open_find(st, cond) >= 0;
}

static void open_del(cl_rpm_patient *st, size_t i) {
  memmove(st->open + i, st->open + i + 1, (st->nopen - i - 1) * sizeof *st->open);
  st->nopen--;
}

/* Opens cond under key; 0, or -1 when the open set is full (counted: the
 * condition then alerts again next time rather than being lost). */
int rpm_open_add(cl_rpm_patient *st, const char *cond, const uint8_t key[16]) {
  if (rpm_open_find(st, cond) >= 0)
    return 0;
  if (st->nopen == CL_RPM_MAX_OPEN) {
    st->untracked++;
    return -1;
  }
  if (!RPM_ROOM(st, st->open, st->nopen, st->cap_open, CL_RPM_MAX_OPEN))
    return -1;
  rpm_open *o = &st->open[st->nopen++];
  cds_text(o->cond, sizeof o->cond, "%s", cond);
  memcpy(o->key, key, 16);
  return 0;
}

void rpm_open_close(cl_rpm_patient *st, const char *cond) {
  long i = rpm_open_find(st, cond);
  if (i >= 0)
    open_del(st, (size_t)i);
}

/* ------------------------------------------------------------ devices */

static rpm_device *dev_find(const cl_rpm_patient *st, const char *id) {
  for (size_t i = 0; i < st->ndev; i++)
    if (!strcmp(st->dev[i].id, id))
      return (rpm_device *)&st->dev[i];
  return NULL;
}

static int id_ok(const char *id) { return id && id[0] && strlen(id) < CL_RPM_ID_MAX; }

/* The DEVICE_SILENT finding of device d (its watch key), added to out. */
static cl_cds_finding *silent_add(const cl_kb *kb, const rpm_device *d, cl_cds_findings *out) {
  const cl_kb_rpm_limit *l = cl_kb_rpm_limit_get(kb, CL_KB_RPM_SILENT);
  if (!l->set)
    return NULL;
  cl_cds_finding *f =
      cds_add(kb, out, K_SILENT, l->severity, "ISSUE", l->source, l->rule_id, d->ev, NULL);
  if (!f)
    return NULL;
  cds_text(f->detail, sizeof f->detail,
           "Device silent: a monitoring device has sent nothing for more than %.0f seconds "
           "(the implicated event, its last contact, names it). Source: %s",
           l->value, l->citation);
  cds_text(f->mitigation, sizeof f->mitigation,
           "Contact the patient: check the device's power, connection and use.");
  return f;
}

/* A contact from device `id` at t (event ev): unless older than its last
 * contact, closes its silence and re-arms its watch. */
static void contact(const cl_kb *kb, cl_rpm_patient *st, const char *id, int64_t t,
                    const uint8_t ev[16]) {
  if (!id_ok(id)) {
    st->untracked += id && id[0];
    return;
  }
  rpm_device *d = dev_find(st, id);
  if (!d) {
    if (st->ndev == CL_RPM_MAX_DEVICES) {
      st->untracked++;
      return;
    }
    if (!RPM_ROOM(st, st->dev, st->ndev, st->cap_dev, CL_RPM_MAX_DEVICES))
      return;
    d = &st->dev[st->ndev++];
    memset(d, 0, sizeof *d);
    cds_text(d->id, sizeof d->id, "%s", id);
    d->last = INT64_MIN;
  }
  if (t < d->last) /* a backlog uploaded late is not a new contact: it moves nothing */
    return;
  char cond[RPM_COND_LEN];
  cds_text(cond, sizeof cond, "silent:%s", id);
  rpm_open_close(st, cond);
  d->last = t;
  memcpy(d->ev, ev, 16);
  d->deadline = 0;
  const cl_kb_rpm_limit *l = cl_kb_rpm_limit_get(kb, CL_KB_RPM_SILENT);
  if (!l->set)
    return;
  int64_t s = (int64_t)l->value * NS_PER_S;
  d->deadline = t > INT64_MAX - s ? INT64_MAX : t + s;
  cds_key(d->ev, l->rule_id, NULL, d->wkey); /* the key silent_add's finding gets */
}

void cl_rpm_watch_get(const cl_rpm_patient *st, const char *device_id, cl_rpm_watch *w) {
  memset(w, 0, sizeof *w);
  const rpm_device *d = st && device_id ? dev_find(st, device_id) : NULL;
  if (!d || !d->deadline)
    return;
  w->armed = 1;
  w->deadline_ns = d->deadline;
  memcpy(w->key, d->wkey, 16);
}

void cl_rpm_silent_finding(const cl_kb *kb, const cl_rpm_patient *st, const char *device_id,
                           cl_cds_findings *out) {
  const rpm_device *d = dev_find(st, device_id);
  if (d && d->deadline)
    (void)silent_add(kb, d, out);
}

int cl_rpm_silence_folded(cl_rpm_patient *st, const uint8_t key[16], char device[CL_RPM_ID_MAX],
                          int64_t *deadline_ns) {
  for (size_t i = 0; i < st->ndev; i++) {
    rpm_device *d = &st->dev[i];
    if (!d->deadline || memcmp(d->wkey, key, 16) != 0)
      continue;
    char cond[RPM_COND_LEN];
    cds_text(cond, sizeof cond, "silent:%s", d->id);
    (void)rpm_open_add(st, cond, key);
    if (st->oom)
      return -1;
    memcpy(device, d->id, CL_RPM_ID_MAX);
    *deadline_ns = d->deadline;
    d->deadline = 0;
    return 1;
  }
  return 0;
}

const char *cl_rpm_event_device(const Clinlog__V1__Event *ev) {
  switch (ev->body_case) {
  case CLINLOG__V1__EVENT__BODY_DEVICE_READING_RECORDED:
    return ev->device_reading_recorded->device_id;
  case CLINLOG__V1__EVENT__BODY_DEVICE_STATUS_REPORTED:
    return ev->device_status_reported->device_id;
  case CLINLOG__V1__EVENT__BODY_DISPENSER_EVENT_RECORDED:
    return ev->dispenser_event_recorded->device_id;
  default:
    return NULL;
  }
}

/* ------------------------------------------------------------ readings */

/* A quantity's value: plain decimal, any sign (a temperature may be
 * negative in no real patient, but parse it as written). */
int rpm_value_of(const Clinlog__V1__Quantity *q, double *v) {
  if (!q || !q->value || !q->value[0] || (q->comparator && q->comparator[0]))
    return -1;
  char *end;
  double d = strtod(q->value, &end);
  if (*end || !isfinite(d))
    return -1;
  *v = d;
  return 0;
}

static int past(const cl_kb_vital *r, double v) {
  double tol = EPS * fmax(1, fabs(r->value));
  return r->high ? v - r->value > tol : r->value - v > tol;
}

/* 1 if a value of `loinc` measured at t is older than the newest one seen
 * (a late reading: it must not reopen or close what a newer one decided);
 * else 0, and t becomes the newest. Codes past the bound, or longer than
 * the slot, are not tracked (every value counts, as before). */
static int stale(cl_rpm_patient *st, const char *loinc, int64_t t) {
  if (strlen(loinc) >= sizeof st->vlast[0].loinc)
    return 0;
  for (size_t i = 0; i < st->nvlast; i++)
    if (!strcmp(st->vlast[i].loinc, loinc)) {
      if (t < st->vlast[i].t)
        return 1;
      st->vlast[i].t = t;
      return 0;
    }
  if (st->nvlast < CL_RPM_MAX_CODES &&
      RPM_ROOM(st, st->vlast, st->nvlast, st->cap_vlast, CL_RPM_MAX_CODES)) {
    snprintf(st->vlast[st->nvlast].loinc, sizeof st->vlast[0].loinc, "%s", loinc);
    st->vlast[st->nvlast++].t = t;
  }
  return 0;
}

/* One LOINC value measured at t against the vital rules of its code. */
static void vitals(const cl_kb *kb, cl_rpm_patient *st, const char *loinc, double v,
                   const char *unit, int64_t t, const uint8_t id[16], cl_cds_findings *out) {
  size_t n;
  const cl_kb_vital *r = cl_kb_vitals(kb, &n);
  int any_rule = 0;
  for (size_t i = 0; i < n && !any_rule; i++)
    any_rule = !strcmp(r[i].loinc, loinc);
  if (!any_rule || stale(st, loinc, t))
    return;
  for (int high = 0; high <= 1; high++) {
    const cl_kb_vital *worst = NULL;
    double worst_v = 0, worst_t = 0;
    int any = 0, conv_failed = 0;
    for (size_t i = 0; i < n; i++) {
      double x, thr; /* the reading in the rule's unit; the threshold in the reading's */
      if (r[i].high != high || strcmp(r[i].loinc, loinc))
        continue;
      any = 1;
      if (cl_kb_ucum_convert(v, unit, r[i].unit, loinc, &x) ||
          cl_kb_ucum_convert(r[i].value, r[i].unit, unit, loinc, &thr)) {
        conv_failed = 1;
        break;
      }
      /* the most extreme crossed threshold, compared in one unit (rules of
       * one code may be written in different units) */
      if (past(&r[i], x) && (!worst || (high ? thr > worst_t : thr < worst_t))) {
        worst = &r[i];
        worst_v = x;
        worst_t = thr;
      }
    }
    if (!any)
      continue;
    if (conv_failed) {
      st->unconverted++;
      return;
    }
    /* open the most extreme crossed rule (alerting unless open), the
     * other crossed ones under its key; close the rest */
    uint8_t key[16] = {0};
    if (worst) {
      long oi = rpm_open_find(st, worst->rule_id);
      if (oi >= 0) {
        memcpy(key, st->open[oi].key, 16);
      } else {
        cds_key(id, worst->rule_id, NULL, key);
        cl_cds_finding *f = cds_add(kb, out, K_VITAL, worst->severity, "ISSUE", worst->source,
                                    worst->rule_id, id, NULL);
        if (f) {
          cds_text(f->detail, sizeof f->detail,
                   "Remote monitoring: %s. Reading %g %s, threshold %s %g %s (LOINC %s). Source: "
                   "%s",
                   worst->text, worst_v, worst->unit, high ? "above" : "below", worst->value,
                   worst->unit, loinc, worst->citation);
          cds_text(f->mitigation, sizeof f->mitigation,
                   "Contact the patient and act on the reading per the monitoring program's "
                   "protocol; confirm with a repeat measurement.");
        }
      }
    }
    for (size_t i = 0; i < n; i++) {
      double x;
      if (r[i].high != high || strcmp(r[i].loinc, loinc) ||
          cl_kb_ucum_convert(v, unit, r[i].unit, loinc, &x))
        continue;
      if (past(&r[i], x) && worst)
        (void)rpm_open_add(st, r[i].rule_id, key);
      else
        rpm_open_close(st, r[i].rule_id);
    }
  }
}

/* A body weight against the weight-gain rules of its code; then kept. */
static void weight(const cl_kb *kb, cl_rpm_patient *st, const char *loinc, double v,
                   const char *unit, int64_t t, const uint8_t id[16], cl_cds_findings *out) {
  size_t n;
  const cl_kb_weight_gain *g = cl_kb_weight_gains(kb, &n);
  int any = 0;
  double kg;
  for (size_t i = 0; i < n && !any; i++)
    any = !strcmp(g[i].loinc, loinc);
  if (!any)
    return;
  if (cl_kb_ucum_convert(v, unit, "kg", NULL, &kg)) {
    st->unconverted++;
    return;
  }
  for (size_t i = 0; i < n; i++) {
    if (strcmp(g[i].loinc, loinc))
      continue;
    int64_t from = t - (int64_t)g[i].days * NS_PER_DAY - WINDOW_SLACK;
    double low = INFINITY;
    for (size_t j = 0; j < st->nw; j++)
      if (st->w[j].t >= from && st->w[j].t < t && st->w[j].kg < low)
        low = st->w[j].kg;
    double gain = kg - low;
    if (!(gain - g[i].amount_kg > EPS)) {
      rpm_open_close(st, g[i].rule_id);
      continue;
    }
    if (rpm_open_find(st, g[i].rule_id) >= 0)
      continue;
    cl_cds_finding *f =
        cds_add(kb, out, K_VITAL, g[i].severity, "ISSUE", g[i].source, g[i].rule_id, id, NULL);
    if (f) {
      cds_text(f->detail, sizeof f->detail,
               "Remote monitoring: %s. Gain %.2f kg over %d day(s), limit %.2f kg (LOINC %s). "
               "Source: %s",
               g[i].text, gain, g[i].days, g[i].amount_kg, loinc, g[i].citation);
      cds_text(f->mitigation, sizeof f->mitigation,
               "Contact the patient: assess for fluid retention (symptoms, diuretic use) per the "
               "heart-failure program's protocol.");
    }
    uint8_t key[16];
    cds_key(id, g[i].rule_id, NULL, key);
    (void)rpm_open_add(st, g[i].rule_id, key);
  }
  /* keep: drop what is older than the longest window, then the oldest */
  size_t w = 0;
  for (size_t j = 0; j < st->nw; j++)
    if (st->w[j].t >= t - WEIGHT_KEEP)
      st->w[w++] = st->w[j];
  st->nw = w;
  if (st->nw == CL_RPM_MAX_WEIGHTS) {
    size_t old = 0;
    for (size_t j = 1; j < st->nw; j++)
      if (st->w[j].t < st->w[old].t)
        old = j;
    memmove(st->w + old, st->w + old + 1, (st->nw - old - 1) * sizeof *st->w);
    st->nw--;
  }
  if (RPM_ROOM(st, st->w, st->nw, st->cap_w, CL_RPM_MAX_WEIGHTS))
    st->w[st->nw++] = (rpm_weight){t, kg};
}

/* The first LOINC coding of cc (NULL if none). */
static const char *loinc_of(const Clinlog__V1__Code *const *c, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (c[i] && c[i]->system && c[i]->code && c[i]->code[0] && !strcmp(c[i]->system, CL_LOINC))
      return c[i]->code;
  return NULL;
}

/* The codings of cc that feed NEWS2; 1 if a parameter changed. */
static int news2_cc(const cl_kb *kb, cl_rpm_patient *st, const Clinlog__V1__CodeableConcept *cc,
                    const Clinlog__V1__Quantity *q, const Clinlog__V1__Code *c, int64_t t,
                    const uint8_t id[16]) {
  int changed = 0;
  for (size_t i = 0; i < cc->n_coding; i++)
    if (cc->coding[i])
      changed |= rpm_news2_take(kb, st, cc->coding[i]->system, cc->coding[i]->code, q, c, t, id);
  return changed;
}

static int news2_parts(const cl_kb *kb, cl_rpm_patient *st, Clinlog__V1__Component *const *cs,
                       size_t n, int64_t t, const uint8_t id[16]) {
  int changed = 0;
  for (size_t i = 0; i < n; i++)
    if (cs[i] && cs[i]->code)
      changed |=
          rpm_news2_take(kb, st, cs[i]->code->system, cs[i]->code->code, cs[i]->value, NULL, t, id);
  return changed;
}

static void value(const cl_kb *kb, cl_rpm_patient *st, const char *loinc,
                  const Clinlog__V1__Quantity *q, int64_t t, const uint8_t id[16],
                  cl_cds_findings *out) {
  double v;
  if (!loinc || rpm_value_of(q, &v))
    return;
  const char *unit = q->unit ? q->unit : "";
  vitals(kb, st, loinc, v, unit, t, id, out);
  weight(kb, st, loinc, v, unit, t, id, out);
}

static void on_reading(const cl_kb *kb, cl_rpm_patient *st,
                       const Clinlog__V1__DeviceReadingRecorded *r, const uint8_t id[16],
                       int64_t at, cl_cds_findings *out) {
  if (r->status == CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_ENTERED_IN_ERROR ||
      r->status == CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_CANCELLED)
    return;
  int64_t t = cds_ts(r->measured_at, at);
  int ews = 0;
  if (r->value && r->code) {
    value(kb, st, loinc_of((const Clinlog__V1__Code *const *)r->code->coding, r->code->n_coding),
          r->value, t, id, out);
    ews |= news2_cc(kb, st, r->code, r->value, NULL, t, id);
  }
  ews |= news2_parts(kb, st, r->components, r->n_components, t, id);
  for (size_t i = 0; i < r->n_components; i++) {
    const Clinlog__V1__Component *c = r->components[i];
    if (c && c->code)
      value(kb, st, loinc_of((const Clinlog__V1__Code *const *)&c->code, 1), c->value, t, id, out);
  }
  contact(kb, st, r->device_id, cds_ts(r->received_at, at), id);
  if (ews)
    rpm_news2_eval(kb, st, id, out);
}

/* A charted observation feeds NEWS2 only (the vital thresholds are for
 * readings from home devices). */
static void on_observation(const cl_kb *kb, cl_rpm_patient *st,
                           const Clinlog__V1__ObservationRecorded *o, const uint8_t id[16],
                           int64_t at, cl_cds_findings *out) {
  if (o->status == CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_ENTERED_IN_ERROR ||
      o->status == CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_CANCELLED)
    return;
  int64_t t = cds_ts(o->effective, at);
  const Clinlog__V1__Quantity *q =
      o->value_case == CLINLOG__V1__OBSERVATION_RECORDED__VALUE_QUANTITY ? o->quantity : NULL;
  const Clinlog__V1__Code *c =
      o->value_case == CLINLOG__V1__OBSERVATION_RECORDED__VALUE_CODE_VALUE ? o->code_value : NULL;
  int ews = o->code ? news2_cc(kb, st, o->code, q, c, t, id) : 0;
  ews |= news2_parts(kb, st, o->components, o->n_components, t, id);
  if (ews)
    rpm_news2_eval(kb, st, id, out);
}

static void on_status(const cl_kb *kb, cl_rpm_patient *st,
                      const Clinlog__V1__DeviceStatusReported *s, const uint8_t id[16], int64_t at,
                      cl_cds_findings *out) {
  const cl_kb_rpm_limit *l = cl_kb_rpm_limit_get(kb, CL_KB_RPM_BATTERY);
  double pct;
  if (l->set && id_ok(s->device_id) && s->battery && s->battery->unit &&
      !strcmp(s->battery->unit, "%") && rpm_value_of(s->battery, &pct) == 0) {
    char cond[RPM_COND_LEN];
    cds_text(cond, sizeof cond, "battery:%s", s->device_id);
    if (pct >= l->value) {
      rpm_open_close(st, cond);
    } else if (rpm_open_find(st, cond) < 0) {
      cl_cds_finding *f =
          cds_add(kb, out, K_STATUS, l->severity, "ISSUE", l->source, l->rule_id, id, NULL);
      if (f) {
        cds_text(f->detail, sizeof f->detail,
                 "Device battery low: a device reports %g %%, below %.0f %% (the implicated "
                 "event names it). Source: %s",
                 pct, l->value, l->citation);
        cds_text(f->mitigation, sizeof f->mitigation,
                 "Ask the patient to charge or replace the device's battery.");
      }
      uint8_t key[16];
      cds_key(id, l->rule_id, NULL, key);
      (void)rpm_open_add(st, cond, key);
    }
  }
  contact(kb, st, s->device_id, cds_ts(s->received_at, cds_ts(s->reported_at, at)), id);
}

static void on_dispenser(const cl_kb *kb, cl_rpm_patient *st,
                         const Clinlog__V1__DispenserEventRecorded *d, const uint8_t id[16],
                         int64_t at, cl_cds_findings *out) {
  contact(kb, st, d->device_id, cds_ts(d->event_at, at), id);
  const cl_kb_rpm_limit *l = cl_kb_rpm_limit_get(kb, CL_KB_RPM_ADHERENCE);
  char rxid[CL_RPM_ID_MAX + 8];
  if (d->prescription_id && d->prescription_id[0])
    cds_text(rxid, sizeof rxid, "%s", d->prescription_id);
  else if (d->device_id && d->device_id[0])
    cds_text(rxid, sizeof rxid, "device:%s", d->device_id);
  else
    return;
  int miss = d->outcome == CLINLOG__V1__DISPENSER_OUTCOME__DISPENSER_OUTCOME_MISSED ||
             d->outcome == CLINLOG__V1__DISPENSER_OUTCOME__DISPENSER_OUTCOME_SKIPPED;
  int taken = d->outcome == CLINLOG__V1__DISPENSER_OUTCOME__DISPENSER_OUTCOME_TAKEN ||
              d->outcome == CLINLOG__V1__DISPENSER_OUTCOME__DISPENSER_OUTCOME_LATE;
  if (!l->set || (!miss && !taken))
    return;
  if (strlen(rxid) >= CL_RPM_ID_MAX) {
    st->untracked++;
    return;
  }
  char cond[RPM_COND_LEN];
  cds_text(cond, sizeof cond, "adherence:%s", rxid);
  rpm_rx *x = NULL;
  for (size_t i = 0; i < st->nrx && !x; i++)
    if (!strcmp(st->rx[i].id, rxid))
      x = &st->rx[i];
  if (taken) {
    if (x)
      x->nmiss = 0;
    rpm_open_close(st, cond);
    return;
  }
  if (!x) {
    if (st->nrx == CL_RPM_MAX_RX) {
      st->untracked++;
      return;
    }
    if (!RPM_ROOM(st, st->rx, st->nrx, st->cap_rx, CL_RPM_MAX_RX))
      return;
    x = &st->rx[st->nrx++];
    memset(x, 0, sizeof *x);
    cds_text(x->id, sizeof x->id, "%s", rxid);
  }
  /* the window ends at the latest miss known, so one reported late (a
   * dispenser's backlog) drops none of the newer ones */
  int64_t t = cds_ts(d->scheduled_at, cds_ts(d->event_at, at)), newest = t;
  for (size_t i = 0; i < x->nmiss; i++)
    newest = x->miss[i] > newest ? x->miss[i] : newest;
  int64_t from = newest - (int64_t)l->days * NS_PER_DAY;
  size_t w = 0;
  for (size_t i = 0; i < x->nmiss; i++)
    if (x->miss[i] > from)
      x->miss[w++] = x->miss[i];
  x->nmiss = w;
  if (x->nmiss == CL_RPM_MAX_MISSES) {
    memmove(x->miss, x->miss + 1, (x->nmiss - 1) * sizeof *x->miss);
    x->nmiss--;
  }
  if (t > from)
    x->miss[x->nmiss++] = t;
  if ((double)x->nmiss < l->value || rpm_open_find(st, cond) >= 0)
    return;
  cl_cds_finding *f =
      cds_add(kb, out, K_ADHERENCE, l->severity, "COMPLY", l->source, l->rule_id, id, NULL);
  if (f) {
    cds_text(f->detail, sizeof f->detail,
             "Adherence: %zu doses missed or skipped in %d day(s) at the pill dispenser (limit "
             "%.0f). Source: %s",
             x->nmiss, l->days, l->value, l->citation);
    cds_text(f->mitigation, sizeof f->mitigation,
             "Contact the patient about the missed doses (side effects, cost, understanding, "
             "device problems).");
  }
  uint8_t key[16];
  cds_key(id, l->rule_id, NULL, key);
  (void)rpm_open_add(st, cond, key);
}

size_t cl_rpm_close(cl_rpm_patient *st, const uint8_t issue[16]) {
  size_t n = 0;
  for (size_t i = st->nopen; i-- > 0;)
    if (!memcmp(st->open[i].key, issue, 16)) {
      open_del(st, i);
      n++;
    }
  return n;
}

/* The issue an AlertOverridden or AlertAcknowledged names: its
 * issue_event_id, else its issue_id as 32 hex digits. */
static int named_issue(const ProtobufCBinaryData *issue_event_id, const char *issue_id,
                       uint8_t key[16]) {
  if (issue_event_id->len == 16) {
    memcpy(key, issue_event_id->data, 16);
    return 0;
  }
  const char *h = issue_id;
  if (!h || strlen(h) != 32)
    return -1;
  for (int i = 0; i < 16; i++) {
    unsigned b;
    char two[3] = {h[2 * i], h[2 * i + 1], 0};
    if (strspn(two, "0123456789abcdefABCDEF") != 2 || sscanf(two, "%2x", &b) != 1)
      return -1;
    key[i] = (uint8_t)b;
  }
  return 0;
}

int cl_rpm_apply(const cl_kb *kb, cl_rpm_patient *st, const Clinlog__V1__Event *ev,
                 const uint8_t event_id[16], int64_t at_ns, cl_cds_findings *out, cl_err *err) {
  uint8_t key[16];
  if (st->oom) /* it already misses something: folding on would hide it */
    return cl_err_set(err, CL_ENOMEM, "cds: out of memory");
  switch (ev->body_case) {
  case CLINLOG__V1__EVENT__BODY_DEVICE_READING_RECORDED:
    on_reading(kb, st, ev->device_reading_recorded, event_id, at_ns, out);
    break;
  case CLINLOG__V1__EVENT__BODY_OBSERVATION_RECORDED:
    on_observation(kb, st, ev->observation_recorded, event_id, at_ns, out);
    break;
  case CLINLOG__V1__EVENT__BODY_RISK_SCORE_RECORDED:
    rpm_risk_apply(kb, st, ev->risk_score_recorded, event_id, out);
    break;
  case CLINLOG__V1__EVENT__BODY_DEVICE_STATUS_REPORTED:
    on_status(kb, st, ev->device_status_reported, event_id, at_ns, out);
    break;
  case CLINLOG__V1__EVENT__BODY_DISPENSER_EVENT_RECORDED:
    on_dispenser(kb, st, ev->dispenser_event_recorded, event_id, at_ns, out);
    break;
  case CLINLOG__V1__EVENT__BODY_ALERT_OVERRIDDEN:
    if (named_issue(&ev->alert_overridden->issue_event_id, ev->alert_overridden->issue_id, key) ==
        0)
      (void)cl_rpm_close(st, key);
    break;
  case CLINLOG__V1__EVENT__BODY_ALERT_ACKNOWLEDGED:
    if (named_issue(&ev->alert_acknowledged->issue_event_id, ev->alert_acknowledged->issue_id,
                    key) == 0)
      (void)cl_rpm_close(st, key);
    break;
  default:
    break;
  }
  return st->oom ? cl_err_set(err, CL_ENOMEM, "cds: out of memory") : 0;
}

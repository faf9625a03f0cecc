/* The medication checker (check.h): the patient state and the checks each
 * event runs against it (interactions, duplicates, allergies, doses). The
 * barcode rights are in check_bcma.c; the helpers and the IssueDetected a
 * finding becomes in check_util.c. Invariants: the state is changed only
 * after every check of an event has run and every allocation it needs has
 * succeeded (pruning ended orders aside, which changes no finding);
 * findings depend on nothing but the KB, the state and the event. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/cds/check_int.h"

#define SEV_LOW CLINLOG__V1__ISSUE_SEVERITY__ISSUE_SEVERITY_LOW
#define SEV_MOD CLINLOG__V1__ISSUE_SEVERITY__ISSUE_SEVERITY_MODERATE
#define SEV_HIGH CLINLOG__V1__ISSUE_SEVERITY__ISSUE_SEVERITY_HIGH
#define K_INTER CLINLOG__V1__ISSUE_KIND__ISSUE_KIND_INTERACTION
#define K_ALLERGY CLINLOG__V1__ISSUE_KIND__ISSUE_KIND_ALLERGY
#define K_DOSE CLINLOG__V1__ISSUE_KIND__ISSUE_KIND_DOSE
#define K_DUP CLINLOG__V1__ISSUE_KIND__ISSUE_KIND_DUPLICATE_THERAPY
#define MAX_RULES 16 /* interaction rules reported per pair of drugs */
#define KEEP_ENDED (7 * NS_PER_DAY)

/* ------------------------------------------------------------ state */

int cl_cds_patient_new(const char *patient_id, cl_cds_patient **out, cl_err *err) {
  if (!patient_id || !patient_id[0] || !out)
    return cl_err_set(err, CL_EINVAL, "cds: patient id required");
  cl_cds_patient *st = calloc(1, sizeof *st);
  if (!st || !(st->patient_id = cds_dupstr(patient_id))) {
    free(st);
    return cl_err_set(err, CL_ENOMEM, "cds: out of memory");
  }
  *out = st;
  return 0;
}

void cl_cds_patient_free(cl_cds_patient *st) {
  if (!st)
    return;
  for (size_t i = 0; i < st->norder; i++)
    free(st->orders[i].id);
  for (size_t i = 0; i < st->nallergy; i++)
    free(st->allergies[i].id);
  for (size_t i = 0; i < st->nids; i++)
    free(st->ids[i]);
  free(st->orders);
  free(st->allergies);
  free(st->admins);
  cl_rpm_patient_free(st->rpm);
  free(st->patient_id);
  free(st);
}

void cl_cds_patient_set_weight(cl_cds_patient *st, double kg) {
  st->weight_kg = kg > 0 && isfinite(kg) ? kg : 0;
  st->weight_t = 0;
}

/* Body weight, LOINC 29463-7 (body weight) and 3141-9 (measured), for the
 * per-kg dose limits: the newest measurement wins (a late upload of an
 * older one changes nothing); entered-in-error and cancelled values, values
 * in a unit that is not a mass, and impossible ones (not 0.1-700 kg) are
 * ignored. */
static void take_weight(cl_cds_patient *st, const Clinlog__V1__CodeableConcept *code,
                        const Clinlog__V1__Quantity *q, int status, int64_t t) {
  if (status == CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_ENTERED_IN_ERROR ||
      status == CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_CANCELLED || !code || !q ||
      !q->value || (q->comparator && q->comparator[0]))
    return;
  int weight = 0;
  for (size_t i = 0; i < code->n_coding && !weight; i++) {
    const Clinlog__V1__Code *c = code->coding[i];
    weight = c && c->system && c->code && !strcmp(c->system, "http://loinc.org") &&
             (!strcmp(c->code, "29463-7") || !strcmp(c->code, "3141-9"));
  }
  char *end;
  double v = strtod(q->value, &end), kg;
  if (!weight || end == q->value || *end || !isfinite(v) ||
      cl_kb_ucum_convert(v, q->unit && q->unit[0] ? q->unit : "kg", "kg", NULL, &kg) || kg < 0.1 ||
      kg > 700 || (st->weight_t && t < st->weight_t))
    return;
  st->weight_kg = kg;
  st->weight_t = t;
}

int cl_cds_patient_add_id(cl_cds_patient *st, const char *id, cl_err *err) {
  if (!id || !id[0])
    return cl_err_set(err, CL_EINVAL, "cds: empty identifier");
  if (st->nids == CL_CDS_MAX_IDS)
    return cl_err_set(err, CL_ETOOBIG, "cds: more than %d identifiers", CL_CDS_MAX_IDS);
  char *c = cds_dupstr(id);
  if (!c)
    return cl_err_set(err, CL_ENOMEM, "cds: out of memory");
  st->ids[st->nids++] = c;
  return 0;
}

/* Identifier types a wristband may carry (HL7 table 0203): medical record
 * and patient numbers, account and visit numbers, and identifiers sent
 * without a type. Never SSNs, licences, passports or insurance ids. */
static int wristband_type(const char *t) {
  static const char *const ok[] = {"MR", "MRT", "PI", "PT", "AN", "VN"};
  if (!t || !t[0])
    return 1;
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
    if (!strcmp(t, ok[i]))
      return 1;
  return 0;
}

/* The patient's identifiers a wristband may carry, from a registration or a
 * demographics update naming them: they replace the ones kept (the first
 * CL_CDS_MAX_IDS; longer lists are cut, not refused). */
static int on_identifiers(cl_cds_patient *st, Clinlog__V1__Identifier *const *ids, size_t n,
                          cl_err *err) {
  for (size_t i = 0; i < st->nids; i++)
    free(st->ids[i]);
  st->nids = 0;
  for (size_t i = 0; i < n && st->nids < CL_CDS_MAX_IDS; i++) {
    const Clinlog__V1__Identifier *id = ids[i];
    if (!id || !id->value || !id->value[0] || !wristband_type(id->type) ||
        !strcmp(id->value, st->patient_id))
      continue;
    int rc = cl_cds_patient_add_id(st, id->value, err);
    if (rc)
      return rc;
  }
  return 0;
}

static int names_identifiers(const Clinlog__V1__PatientDemographicsUpdated *u) {
  if (u->n_updated_fields == 0)
    return u->n_identifiers > 0; /* a full restatement */
  for (size_t i = 0; i < u->n_updated_fields; i++)
    if (u->updated_fields[i] && !strcmp(u->updated_fields[i], "identifiers"))
      return 1;
  return 0;
}

void cl_cds_patient_counts(const cl_cds_patient *st, int64_t t_ns, size_t *orders, size_t *active,
                           size_t *allergies, size_t *admins) {
  size_t a = 0;
  for (size_t i = 0; i < st->norder; i++)
    a += order_active(&st->orders[i], t_ns) ? 1u : 0u;
  *orders = st->norder;
  *active = a;
  *allergies = st->nallergy;
  *admins = st->nadmin;
}

static long find_order(const cl_cds_patient *st, const char *id) {
  if (!id || !id[0])
    return -1;
  for (size_t i = 0; i < st->norder; i++)
    if (!strcmp(st->orders[i].id, id))
      return (long)i;
  return -1;
}

/* Drops orders ended more than KEEP_ENDED before t, keeping the order of
 * the rest. */
static void prune_orders(cl_cds_patient *st, int64_t t) {
  size_t w = 0;
  for (size_t i = 0; i < st->norder; i++) {
    order *o = &st->orders[i];
    int64_t end = o->disc < o->end ? o->disc : o->end;
    if (end != T_OPEN && end < t && t - end > KEEP_ENDED) {
      free(o->id);
      continue;
    }
    st->orders[w++] = *o;
  }
  st->norder = w;
}

/* Makes room for one more order; CL_ETOOBIG / CL_ENOMEM leave st as is
 * (apart from pruning ended orders, which changes no finding). */
static int order_room(cl_cds_patient *st, int64_t t, cl_err *err) {
  if (st->norder < st->cap_order)
    return 0;
  prune_orders(st, t);
  if (st->norder < st->cap_order)
    return 0;
  if (st->norder == CL_CDS_MAX_ORDERS)
    return cl_err_set(err, CL_ETOOBIG, "cds: more than %d orders", CL_CDS_MAX_ORDERS);
  size_t cap = st->cap_order ? st->cap_order * 2 : 8;
  if (cap > CL_CDS_MAX_ORDERS)
    cap = CL_CDS_MAX_ORDERS;
  order *n = realloc(st->orders, cap * sizeof *n);
  if (!n)
    return cl_err_set(err, CL_ENOMEM, "cds: out of memory");
  st->orders = n;
  st->cap_order = cap;
  return 0;
}

/* ------------------------------------------------------------ checks */

static const char *sev_word(int s) {
  return s == CL_KB_CONTRAINDICATED ? "contraindicated"
         : s == CL_KB_MAJOR         ? "major"
         : s == CL_KB_MODERATE      ? "moderate"
                                    : "minor";
}

static int sev_map(int s) {
  return s >= CL_KB_MAJOR ? SEV_HIGH : s == CL_KB_MODERATE ? SEV_MOD : SEV_LOW;
}

/* A new drug (ing, trigger) against one active order: interactions and
 * duplicate therapy. */
static void check_pair(const cl_kb *kb, const uint32_t *ing, size_t ning, const order *o,
                       const uint8_t trigger[16], cl_cds_findings *out) {
  cl_kb_interaction r[MAX_RULES];
  size_t n = cl_kb_interactions(kb, ing, ning, o->ing, o->ning, r, MAX_RULES);
  char b1[24], b2[24];
  for (size_t i = 0; i < n && i < MAX_RULES; i++) {
    cl_cds_finding *f = cds_add(kb, out, K_INTER, sev_map(r[i].severity), "DRG", r[i].source,
                                r[i].id, trigger, o->ev);
    if (!f)
      continue;
    cds_text(f->detail, sizeof f->detail,
             "Drug interaction (%s): %s with %s (active order). %s Source: %s",
             sev_word(r[i].severity), cds_ing_name(kb, r[i].a, b1), cds_ing_name(kb, r[i].b, b2),
             r[i].mechanism, r[i].citation);
    cds_text(f->mitigation, sizeof f->mitigation, "%s", r[i].management);
  }
  /* the same ingredient twice, else a shared duplicate-therapy class */
  for (size_t i = 0; i < ning; i++)
    if (cds_has(o->ing, o->ning, ing[i])) {
      char rule[48];
      snprintf(rule, sizeof rule, "dup:%u", ing[i]);
      cl_cds_finding *f = cds_add(kb, out, K_DUP, SEV_MOD, "DUPTHPGEN", "kb", rule, trigger, o->ev);
      if (f) {
        cds_text(f->detail, sizeof f->detail,
                 "Duplicate therapy: %s is already in an active order.",
                 cds_ing_name(kb, ing[i], b1));
        cds_text(f->mitigation, sizeof f->mitigation,
                 "Confirm both orders are intended; otherwise discontinue one.");
      }
      return;
    }
  const char *cls;
  if (cl_kb_duplicate(kb, ing, ning, o->ing, o->ning, &cls)) {
    char rule[96];
    snprintf(rule, sizeof rule, "dup:%s", cls);
    cl_cds_finding *f = cds_add(kb, out, K_DUP, SEV_MOD, "DUPTHPCLS", "kb", rule, trigger, o->ev);
    if (f) {
      cds_text(f->detail, sizeof f->detail,
               "Duplicate therapy: two active orders in the class %s (%s and %s).", cls,
               cds_ing_name(kb, ing[0], b1), cds_ing_name(kb, o->ing[0], b2));
      cds_text(f->mitigation, sizeof f->mitigation,
               "Confirm both orders are intended; otherwise discontinue one.");
    }
  }
}

/* Ingredients against one allergy. trigger is the newer event, other the
 * older (the allergy when a drug arrives, the order when an allergy does). */
static void check_allergy(const cl_kb *kb, const uint32_t *ing, size_t ning, const allergy *al,
                          const uint8_t trigger[16], const uint8_t other[16],
                          cl_cds_findings *out) {
  for (size_t i = 0; i < ning; i++)
    for (size_t j = 0; j < al->n; j++) {
      const char *via = NULL;
      int v = cl_kb_allergy(kb, ing[i], al->allergen[j], &via);
      if (v == CL_KB_ALLERGY_NONE)
        continue;
      char rule[96], b1[24];
      snprintf(rule, sizeof rule, "allergy:%s", via ? via : al->allergen[j]);
      int sev = v == CL_KB_ALLERGY_GROUP && !al->high ? SEV_MOD : SEV_HIGH;
      cl_cds_finding *f = cds_add(kb, out, K_ALLERGY, sev, "ALGY", "kb", rule, trigger, other);
      if (!f)
        continue;
      const char *name = cds_ing_name(kb, ing[i], b1);
      if (v == CL_KB_ALLERGY_SAME)
        cds_text(f->detail, sizeof f->detail, "Allergy: the patient is allergic to %s.", name);
      else if (v == CL_KB_ALLERGY_MEMBER)
        cds_text(f->detail, sizeof f->detail,
                 "Allergy: %s belongs to %s, to which the patient is allergic.", name, via);
      else
        cds_text(f->detail, sizeof f->detail,
                 "Allergy cross-reactivity (%s): %s may cross-react with a recorded allergen.", via,
                 name);
      cds_text(f->mitigation, sizeof f->mitigation,
               "Choose an alternative outside the allergy group, or confirm tolerance and "
               "document the override.");
    }
}

/* A new drug against every active order (except `self`) and allergy. */
static void check_new_drug(const cl_kb *kb, const cl_cds_patient *st, const uint32_t *ing,
                           size_t ning, const char *self, int64_t t, const uint8_t trigger[16],
                           cl_cds_findings *out) {
  if (!ning)
    return;
  for (size_t i = 0; i < st->norder; i++) {
    const order *o = &st->orders[i];
    if (!order_active(o, t) || !o->ning || (self && !strcmp(o->id, self)))
      continue;
    check_pair(kb, ing, ning, o, trigger, out);
  }
  for (size_t i = 0; i < st->nallergy; i++)
    check_allergy(kb, ing, ning, &st->allergies[i], trigger, st->allergies[i].ev, out);
}

/* One dose (qty unit) of a single-ingredient drug by route against the
 * single (daily = 0) or daily maximum. */
static void check_dose(const cl_kb *kb, const cl_cds_patient *st, uint32_t rx, const char *route,
                       double qty, const char *unit, int daily, const uint8_t trigger[16],
                       cl_cds_findings *out) {
  cl_kb_dose_result r;
  const char *u = cds_mass_unit(unit);
  if (!route || !u || cl_kb_dose_check(kb, rx, route, qty, u, st->weight_kg, daily, &r))
    return;
  if (r.verdict == CL_KB_DOSE_OK || r.verdict == CL_KB_DOSE_NO_LIMIT)
    return;
  char rule[96], b1[24];
  const char *which = daily ? "daily" : "single";
  const char *name = cds_ing_name(kb, rx, b1);
  cl_cds_finding *f;
  if (r.verdict == CL_KB_DOSE_NEED_WEIGHT) {
    snprintf(rule, sizeof rule, "dose:%u:%s:%s:weight", rx, route, which);
    f = cds_add(kb, out, K_DOSE, SEV_LOW, "DOSE", "kb", rule, trigger, NULL);
    if (f) {
      cds_text(f->detail, sizeof f->detail,
               "Dose not checked: the %s limit of %s (%s) is per kg and the patient's weight is "
               "unknown.",
               which, name, route);
      cds_text(f->mitigation, sizeof f->mitigation,
               "Record the patient's weight and verify the dose.");
    }
    return;
  }
  snprintf(rule, sizeof rule, "dose:%u:%s:%s", rx, route, which);
  f = cds_add(kb, out, K_DOSE, SEV_HIGH, r.per_kg ? "DOSEHINDW" : "DOSEH", "kb", rule, trigger,
              NULL);
  if (f) {
    cds_text(f->detail, sizeof f->detail, "Dose above the %s maximum: %s %s %g mg (limit %g mg%s).",
             which, name, route, r.dose_mg, r.limit_mg, r.per_kg ? ", by weight" : "");
    cds_text(f->mitigation, sizeof f->mitigation, "Reduce the dose to at most %g mg%s.", r.limit_mg,
             daily ? " a day" : "");
  }
}

/* ------------------------------------------------------------ events */

static int on_prescribed(const cl_kb *kb, cl_cds_patient *st,
                         const Clinlog__V1__MedicationPrescribed *p, const uint8_t id[16],
                         int64_t at, cl_cds_findings *out, cl_err *err) {
  if (!p->prescription_id || !p->prescription_id[0])
    return 0;
  order o = {0};
  cds_resolve(kb, p->medication, o.ing, &o.ning, o.code);
  memcpy(o.ev, id, 16);
  o.start = cds_ts(p->validity ? p->validity->start : NULL, at);
  o.end = cds_ts(p->validity ? p->validity->end : NULL, T_OPEN);
  o.disc = T_OPEN;
  if (o.end == T_OPEN && p->days_supply > 0)
    o.end =
        cds_add_days(o.start, (long long)p->days_supply * ((p->refills > 0 ? p->refills : 0) + 1));
  if (o.end == T_OPEN) {
    int dur = 0;
    for (size_t i = 0; i < p->n_dosage; i++)
      if (p->dosage[i] && p->dosage[i]->duration_days > dur)
        dur = p->dosage[i]->duration_days;
    if (dur > 0)
      o.end = cds_add_days(o.start, dur);
  }
  cds_read_dosage(p->n_dosage ? p->dosage[0] : NULL, &o.dose);

  check_new_drug(kb, st, o.ing, o.ning, p->prescription_id, at, id, out);
  if (o.ning == 1 && o.dose.has_dose) {
    check_dose(kb, st, o.ing[0], o.dose.route, o.dose.qty, o.dose.unit, 0, id, out);
    if (o.dose.per_day > 0)
      check_dose(kb, st, o.ing[0], o.dose.route, o.dose.qty * o.dose.per_day, o.dose.unit, 1, id,
                 out);
  }

  long i = find_order(st, p->prescription_id);
  if (i >= 0) { /* a new version of the order replaces it in place */
    o.id = st->orders[i].id;
    st->orders[i] = o;
    return 0;
  }
  int rc = order_room(st, at, err);
  if (rc)
    return rc;
  if (!(o.id = cds_dupstr(p->prescription_id)))
    return cl_err_set(err, CL_ENOMEM, "cds: out of memory");
  st->orders[st->norder++] = o;
  return 0;
}

static void on_discontinued(cl_cds_patient *st, const Clinlog__V1__MedicationDiscontinued *d,
                            int64_t at) {
  long i = find_order(st, d->prescription_id);
  if (i >= 0) {
    int64_t t = cds_ts(d->effective, at);
    if (t < st->orders[i].disc)
      st->orders[i].disc = t;
  }
}

/* Is there an active order at t with exactly these ingredients? */
static int covered(const cl_cds_patient *st, const uint32_t *ing, size_t ning, const char *named,
                   int64_t t) {
  for (size_t i = 0; i < st->norder; i++) {
    const order *o = &st->orders[i];
    if (named && named[0] && strcmp(o->id, named))
      continue;
    if (order_active(o, t) && cds_same_set(ing, ning, o->ing, o->ning))
      return 1;
  }
  return 0;
}

static int on_dispensed(const cl_kb *kb, cl_cds_patient *st,
                        const Clinlog__V1__MedicationDispensed *d, const uint8_t id[16], int64_t at,
                        cl_cds_findings *out, cl_err *err) {
  order o = {0};
  cds_resolve(kb, d->medication, o.ing, &o.ning, o.code);
  int64_t t = cds_ts(d->dispensed_at, at);
  if (covered(st, o.ing, o.ning, d->prescription_id, t))
    return 0;
  check_new_drug(kb, st, o.ing, o.ning, d->prescription_id, t, id, out);
  /* a fill with no known order is a medication the patient now takes */
  if (find_order(st, d->prescription_id) >= 0 || d->days_supply <= 0 || !o.ning ||
      !d->dispense_id || !d->dispense_id[0])
    return 0;
  char name[96];
  cds_text(name, sizeof name, "dispense:%s", d->dispense_id);
  if (find_order(st, name) >= 0)
    return 0;
  memcpy(o.ev, id, 16);
  o.start = t;
  o.end = cds_add_days(t, d->days_supply);
  o.disc = T_OPEN;
  cds_read_dosage(d->n_dosage ? d->dosage[0] : NULL, &o.dose);
  int rc = order_room(st, t, err);
  if (rc)
    return rc;
  if (!(o.id = cds_dupstr(name)))
    return cl_err_set(err, CL_ENOMEM, "cds: out of memory");
  st->orders[st->norder++] = o;
  return 0;
}

static int on_administered(const cl_kb *kb, cl_cds_patient *st,
                           const Clinlog__V1__MedicationAdministered *a, const uint8_t id[16],
                           int64_t at, cl_cds_findings *out, cl_err *err) {
  if (a->status == CLINLOG__V1__ADMINISTRATION_STATUS__ADMINISTRATION_STATUS_NOT_DONE)
    return 0;
  int64_t t = cds_ts(a->administered_at, at);
  if ((a->scanned_wristband_id && a->scanned_wristband_id[0]) ||
      (a->scanned_product_barcode && a->scanned_product_barcode[0]))
    cl_cds_bcma(kb, st, a, id, at, out);
  uint32_t ing[CL_KB_MAX_PRODUCT_ING];
  size_t ning;
  char code[CODE_LEN];
  cds_resolve(kb, a->medication, ing, &ning, code);
  if (!ning && a->scanned_product_barcode && a->scanned_product_barcode[0]) {
    size_t n = 0;
    if (cl_kb_resolve(kb, CL_KB_NDC, a->scanned_product_barcode, ing, CL_KB_MAX_PRODUCT_ING, &n) ==
        0)
      ning = n < CL_KB_MAX_PRODUCT_ING ? n : CL_KB_MAX_PRODUCT_ING;
  }
  if (!covered(st, ing, ning, NULL, t))
    check_new_drug(kb, st, ing, ning, NULL, t, id, out);
  double qty, mg;
  const char *route = cds_route(a->route);
  const char *u = a->dose_given ? cds_mass_unit(a->dose_given->unit) : NULL;
  if (ning != 1 || !u || cds_qty(a->dose_given, &qty) || cl_kb_to_mg(qty, u, &mg))
    return 0;
  check_dose(kb, st, ing[0], route, qty, u, 0, id, out);
  double total = mg;
  for (size_t i = 0; i < st->nadmin; i++) {
    const admin *x = &st->admins[i];
    if (x->ing == ing[0] && x->at <= t && t - x->at < NS_PER_DAY)
      total += x->mg;
  }
  check_dose(kb, st, ing[0], route, total, "mg", 1, id, out);

  /* keep it for later daily totals: drop what is 24 h old, then the oldest */
  size_t w = 0;
  for (size_t i = 0; i < st->nadmin; i++)
    if (t - st->admins[i].at < NS_PER_DAY)
      st->admins[w++] = st->admins[i];
  st->nadmin = w;
  if (st->nadmin == st->cap_admin) {
    if (st->cap_admin == CL_CDS_MAX_ADMINS) {
      memmove(st->admins, st->admins + 1, (st->nadmin - 1) * sizeof *st->admins);
      st->nadmin--;
    } else {
      size_t cap = st->cap_admin ? st->cap_admin * 2 : 16;
      if (cap > CL_CDS_MAX_ADMINS)
        cap = CL_CDS_MAX_ADMINS;
      admin *n = realloc(st->admins, cap * sizeof *n);
      if (!n)
        return cl_err_set(err, CL_ENOMEM, "cds: out of memory");
      st->admins = n;
      st->cap_admin = cap;
    }
  }
  st->admins[st->nadmin++] = (admin){ing[0], mg, t};
  return 0;
}

static int on_allergy(const cl_kb *kb, cl_cds_patient *st, const Clinlog__V1__AllergyRecorded *r,
                      const uint8_t id[16], int64_t at, cl_cds_findings *out, cl_err *err) {
  if (!r->allergy_id || !r->allergy_id[0])
    return 0;
  allergy al = {0};
  memcpy(al.ev, id, 16);
  al.high = r->criticality == CLINLOG__V1__ALLERGY_CRITICALITY__ALLERGY_CRITICALITY_HIGH;
  int gone =
      r->clinical_status ==
          CLINLOG__V1__ALLERGY_CLINICAL_STATUS__ALLERGY_CLINICAL_STATUS_INACTIVE ||
      r->clinical_status ==
          CLINLOG__V1__ALLERGY_CLINICAL_STATUS__ALLERGY_CLINICAL_STATUS_RESOLVED ||
      r->verification_status ==
          CLINLOG__V1__ALLERGY_VERIFICATION_STATUS__ALLERGY_VERIFICATION_STATUS_REFUTED ||
      r->verification_status ==
          CLINLOG__V1__ALLERGY_VERIFICATION_STATUS__ALLERGY_VERIFICATION_STATUS_ENTERED_IN_ERROR;
  const Clinlog__V1__CodeableConcept *cc = r->substance;
  for (size_t i = 0; !gone && cc && i < cc->n_coding; i++) {
    const Clinlog__V1__Code *c = cc->coding[i];
    if (!c || !c->system || !c->code || !c->code[0])
      continue;
    if (!strcmp(c->system, CL_CDS_KB_NAME_SYSTEM)) {
      if (al.n < CL_CDS_MAX_ALLERGENS && strlen(c->code) < sizeof al.allergen[0])
        cds_text(al.allergen[al.n++], sizeof al.allergen[0], "%s", c->code);
      continue;
    }
    uint32_t ing[CL_KB_MAX_PRODUCT_ING];
    size_t n = 0;
    int rc = cl_kb_resolve(kb, c->system, c->code, ing, CL_KB_MAX_PRODUCT_ING, &n);
    if (rc == CL_ENOTFOUND && !strcmp(c->system, CL_KB_RXNORM)) {
      ing[0] = (uint32_t)strtoul(c->code, NULL, 10); /* an ingredient the KB lacks */
      n = 1;
    } else if (rc) {
      continue;
    }
    for (size_t k = 0; k < n && k < CL_KB_MAX_PRODUCT_ING && al.n < CL_CDS_MAX_ALLERGENS; k++)
      snprintf(al.allergen[al.n++], sizeof al.allergen[0], "%u", ing[k]);
  }
  if (!gone) {
    for (size_t i = 0; i < st->norder; i++) {
      const order *o = &st->orders[i];
      if (order_active(o, at))
        check_allergy(kb, o->ing, o->ning, &al, id, o->ev, out);
    }
  }

  size_t i = 0;
  while (i < st->nallergy && strcmp(st->allergies[i].id, r->allergy_id))
    i++;
  if (i < st->nallergy) {
    if (gone) {
      free(st->allergies[i].id);
      memmove(st->allergies + i, st->allergies + i + 1,
              (st->nallergy - i - 1) * sizeof *st->allergies);
      st->nallergy--;
    } else {
      al.id = st->allergies[i].id;
      st->allergies[i] = al;
    }
    return 0;
  }
  if (gone)
    return 0;
  if (st->nallergy == st->cap_allergy) {
    if (st->nallergy == CL_CDS_MAX_ALLERGIES)
      return cl_err_set(err, CL_ETOOBIG, "cds: more than %d allergies", CL_CDS_MAX_ALLERGIES);
    size_t cap = st->cap_allergy ? st->cap_allergy * 2 : 4;
    if (cap > CL_CDS_MAX_ALLERGIES)
      cap = CL_CDS_MAX_ALLERGIES;
    allergy *n = realloc(st->allergies, cap * sizeof *n);
    if (!n)
      return cl_err_set(err, CL_ENOMEM, "cds: out of memory");
    st->allergies = n;
    st->cap_allergy = cap;
  }
  if (!(al.id = cds_dupstr(r->allergy_id)))
    return cl_err_set(err, CL_ENOMEM, "cds: out of memory");
  st->allergies[st->nallergy++] = al;
  return 0;
}

int cl_cds_apply(const cl_kb *kb, cl_cds_patient *st, const Clinlog__V1__Event *ev,
                 const uint8_t event_id[16], int64_t at_ns, cl_cds_findings *out, cl_err *err) {
  if (!kb || !st || !ev || !event_id || !out)
    return cl_err_set(err, CL_EINVAL, "cds: NULL argument");
  out->n = 0;
  out->truncated = 0;
  out->news2.set = 0;
  int rc = 0;
  switch (ev->body_case) {
  case CLINLOG__V1__EVENT__BODY_MEDICATION_PRESCRIBED:
    rc = on_prescribed(kb, st, ev->medication_prescribed, event_id, at_ns, out, err);
    break;
  case CLINLOG__V1__EVENT__BODY_MEDICATION_DISCONTINUED:
    on_discontinued(st, ev->medication_discontinued, at_ns);
    break;
  case CLINLOG__V1__EVENT__BODY_MEDICATION_DISPENSED:
    rc = on_dispensed(kb, st, ev->medication_dispensed, event_id, at_ns, out, err);
    break;
  case CLINLOG__V1__EVENT__BODY_MEDICATION_ADMINISTERED:
    rc = on_administered(kb, st, ev->medication_administered, event_id, at_ns, out, err);
    break;
  case CLINLOG__V1__EVENT__BODY_ALLERGY_RECORDED:
    rc = on_allergy(kb, st, ev->allergy_recorded, event_id, at_ns, out, err);
    break;
  case CLINLOG__V1__EVENT__BODY_PATIENT_REGISTERED:
    rc = on_identifiers(st, ev->patient_registered->identifiers,
                        ev->patient_registered->n_identifiers, err);
    break;
  case CLINLOG__V1__EVENT__BODY_PATIENT_DEMOGRAPHICS_UPDATED:
    if (names_identifiers(ev->patient_demographics_updated))
      rc = on_identifiers(st, ev->patient_demographics_updated->identifiers,
                          ev->patient_demographics_updated->n_identifiers, err);
    break;
  case CLINLOG__V1__EVENT__BODY_DEVICE_READING_RECORDED:
  case CLINLOG__V1__EVENT__BODY_OBSERVATION_RECORDED:
  case CLINLOG__V1__EVENT__BODY_RISK_SCORE_RECORDED:
  case CLINLOG__V1__EVENT__BODY_DEVICE_STATUS_REPORTED:
  case CLINLOG__V1__EVENT__BODY_DISPENSER_EVENT_RECORDED:
  case CLINLOG__V1__EVENT__BODY_ALERT_OVERRIDDEN:
  case CLINLOG__V1__EVENT__BODY_ALERT_ACKNOWLEDGED:
    if (!st->rpm && ev->body_case != CLINLOG__V1__EVENT__BODY_ALERT_OVERRIDDEN &&
        ev->body_case != CLINLOG__V1__EVENT__BODY_ALERT_ACKNOWLEDGED &&
        (rc = cl_rpm_patient_new(&st->rpm, err)) != 0)
      break;
    if (st->rpm)
      rc = cl_rpm_apply(kb, st->rpm, ev, event_id, at_ns, out, err);
    break;
  default:
    break;
  }
  if (rc) {
    out->n = 0;
    out->truncated = 0;
    out->news2.set = 0;
    return rc;
  }
  if (ev->body_case == CLINLOG__V1__EVENT__BODY_OBSERVATION_RECORDED) {
    const Clinlog__V1__ObservationRecorded *o = ev->observation_recorded;
    take_weight(st, o->code,
                o->value_case == CLINLOG__V1__OBSERVATION_RECORDED__VALUE_QUANTITY ? o->quantity
                                                                                   : NULL,
                o->status, cds_ts(o->effective, at_ns));
  } else if (ev->body_case == CLINLOG__V1__EVENT__BODY_DEVICE_READING_RECORDED) {
    const Clinlog__V1__DeviceReadingRecorded *r = ev->device_reading_recorded;
    take_weight(st, r->code, r->value, r->status, cds_ts(r->measured_at, at_ns));
  }
  return 0;
}

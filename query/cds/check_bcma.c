/* Barcode medication administration (check.h, cl_cds_bcma): the five
 * rights of one administration against the patient's orders. Reads the
 * state, never changes it, so a strict mode can refuse an administration on
 * these findings before it is recorded. */
#include <math.h>
#include <string.h>

#include "query/cds/check_int.h"

#define SEV_MOD CLINLOG__V1__ISSUE_SEVERITY__ISSUE_SEVERITY_MODERATE
#define SEV_HIGH CLINLOG__V1__ISSUE_SEVERITY__ISSUE_SEVERITY_HIGH
#define K_BCMA CLINLOG__V1__ISSUE_KIND__ISSUE_KIND_BCMA_MISMATCH
#define SOURCE "clinlog-bcma"

static cl_cds_finding *bad(const cl_kb *kb, cl_cds_findings *out, const char *right, int sev,
                           const uint8_t trigger[16], const uint8_t *other) {
  char rule[32];
  cds_text(rule, sizeof rule, "bcma:%s", right);
  return cds_add(kb, out, K_BCMA, sev, "ISSUE", SOURCE, rule, trigger, other);
}

static int near(double a, double b) { return fabs(a - b) <= 1e-6 * fmax(fabs(a), fabs(b)); }

static int to_mg(double q, const char *unit, double *mg) {
  const char *u = cds_mass_unit(unit);
  return u ? cl_kb_to_mg(q, u, mg) : -1;
}

static void names(const cl_kb *kb, const uint32_t *ing, size_t n, char *dst, size_t cap) {
  char b[24];
  dst[0] = '\0';
  if (!n) {
    cds_text(dst, cap, "a drug the knowledge base does not know");
    return;
  }
  for (size_t i = 0; i < n; i++) {
    size_t l = strlen(dst);
    cds_text(dst + l, cap - l, "%s%s", i ? " + " : "", cds_ing_name(kb, ing[i], b));
  }
}

static int same_drug(const uint32_t *ing, size_t ning, const char *code, const order *o) {
  if (ning && o->ning)
    return cds_same_set(ing, ning, o->ing, o->ning);
  return !ning && !o->ning && code[0] && !strcmp(code, o->code);
}

void cl_cds_bcma(const cl_kb *kb, const cl_cds_patient *st,
                 const Clinlog__V1__MedicationAdministered *a, const uint8_t event_id[16],
                 int64_t at_ns, cl_cds_findings *out) {
  int64_t t = cds_ts(a->administered_at, at_ns);
  cl_cds_finding *f;

  /* right patient */
  const char *w = a->scanned_wristband_id;
  int ok = 0;
  if (w && w[0]) {
    ok = !strcmp(w, st->patient_id);
    for (size_t i = 0; !ok && i < st->nids; i++)
      ok = !strcmp(w, st->ids[i]);
  }
  if (!ok && (f = bad(kb, out, "patient", SEV_HIGH, event_id, NULL)) != NULL) {
    cds_text(f->detail, sizeof f->detail, "Wrong patient: %s",
             w && w[0] ? "the scanned wristband does not identify this patient."
                       : "no wristband was scanned.");
    cds_text(f->mitigation, sizeof f->mitigation,
             "Stop. Scan the wristband of the patient in front of you before giving anything.");
  }

  /* what was given: the scanned product, else the coded medication */
  uint32_t ing[CL_KB_MAX_PRODUCT_ING];
  size_t ning = 0;
  char code[CODE_LEN] = "";
  const char *bc = a->scanned_product_barcode;
  if (bc && bc[0]) {
    cds_text(code, sizeof code, "%s|%s", CL_KB_NDC, bc);
    if (cl_kb_resolve(kb, CL_KB_NDC, bc, ing, CL_KB_MAX_PRODUCT_ING, &ning) || !ning)
      ning = 0;
    else if (ning > CL_KB_MAX_PRODUCT_ING)
      ning = CL_KB_MAX_PRODUCT_ING;
  }
  if (!ning) {
    char c2[CODE_LEN];
    cds_resolve(kb, a->medication, ing, &ning, c2);
    if (ning || !code[0])
      memcpy(code, c2, sizeof code);
  }
  char given[160];
  names(kb, ing, ning, given, sizeof given);

  /* the order it is given against */
  const order *o = NULL;
  const char *named = a->prescription_id;
  for (size_t i = 0; i < st->norder && !o; i++) {
    const order *c = &st->orders[i];
    if (named && named[0]) {
      if (!strcmp(c->id, named))
        o = c;
    } else if (c->start <= t && order_active(c, t) && same_drug(ing, ning, code, c)) {
      o = c;
    }
  }
  if (!o) {
    if ((f = bad(kb, out, "drug", SEV_HIGH, event_id, NULL)) != NULL) {
      cds_text(f->detail, sizeof f->detail, "Wrong drug: %s %s.", given,
               named && named[0] ? "was given against an order this patient does not have"
                                 : "matches no active order of this patient");
      cds_text(f->mitigation, sizeof f->mitigation,
               "Do not give. Check the order and the product with the pharmacy.");
    }
    return;
  }

  /* right drug */
  int drug_ok = same_drug(ing, ning, code, o);
  if (!drug_ok && (f = bad(kb, out, "drug", SEV_HIGH, event_id, o->ev)) != NULL) {
    char want[160];
    names(kb, o->ing, o->ning, want, sizeof want);
    cds_text(f->detail, sizeof f->detail,
             "Wrong drug: the product scanned is %s; the order is for %s.", given, want);
    cds_text(f->mitigation, sizeof f->mitigation,
             "Do not give. Fetch the ordered product and scan it.");
  }

  /* right dose (meaningless against another drug's order) */
  if (drug_ok && o->dose.has_dose) {
    double q, mg_given, mg_order;
    const Clinlog__V1__Quantity *g = a->dose_given;
    int have = g && cds_qty(g, &q) == 0 && g->unit && g->unit[0];
    int same = 0;
    if (have) {
      if (to_mg(q, g->unit, &mg_given) == 0 && to_mg(o->dose.qty, o->dose.unit, &mg_order) == 0)
        same = near(mg_given, mg_order);
      else
        same = !strcmp(g->unit, o->dose.unit) && near(q, o->dose.qty);
    }
    if (!same && (f = bad(kb, out, "dose", SEV_HIGH, event_id, o->ev)) != NULL) {
      if (have)
        cds_text(f->detail, sizeof f->detail, "Wrong dose of %s: %g %s given, %g %s ordered.",
                 given, q, g->unit, o->dose.qty, o->dose.unit);
      else
        cds_text(f->detail, sizeof f->detail, "Dose of %s not recorded; %g %s ordered.", given,
                 o->dose.qty, o->dose.unit);
      cds_text(f->mitigation, sizeof f->mitigation,
               "Verify the dose against the order before giving.");
    }
  }

  /* right route */
  if (o->dose.route_raw[0]) {
    const char *r = cds_route(a->route);
    int same;
    if (o->dose.route && r)
      same = !strcmp(o->dose.route, r);
    else
      same = a->route && a->route->code && !strcmp(a->route->code, o->dose.route_raw);
    if (!same && (f = bad(kb, out, "route", SEV_HIGH, event_id, o->ev)) != NULL) {
      cds_text(f->detail, sizeof f->detail, "Wrong route for %s: %s given, %s ordered.", given,
               r ? r : (a->route && a->route->code && a->route->code[0] ? a->route->code : "none"),
               o->dose.route ? o->dose.route : o->dose.route_raw);
      cds_text(f->mitigation, sizeof f->mitigation, "Give by the ordered route only.");
    }
  }

  /* right time: within the order's period */
  const char *why = t < o->start   ? "before the order starts"
                    : t >= o->disc ? "after the order was discontinued"
                    : t > o->end   ? "after the order ended"
                                   : NULL;
  if (why && (f = bad(kb, out, "time", SEV_MOD, event_id, o->ev)) != NULL) {
    cds_text(f->detail, sizeof f->detail, "Wrong time: %s given %s.", given, why);
    cds_text(f->mitigation, sizeof f->mitigation,
             "Check the order is current and the dose is due.");
  }
}

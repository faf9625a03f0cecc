/* Cds.CheckOrder's checking; see order.h. Drafts become checker events on
 * the heap of one call (every string a view into the request), are applied
 * to the caller's state, and the findings an order raises are packed as a
 * CheckOrderResponse whose strings point into the findings kept. */
#include "query/cds/order.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/cds/check_int.h"
#include "query/cds/hooks.h"
#include "store/keys.h"

#define PATIENT_ID_MAX 100

/* Units a dose may be stated in besides the mass units the checker checks. */
static const char *const OTHER_UNITS[] = {"mL",   "tablet", "capsule", "puff",
                                          "unit", "[iU]",   "{tbl}",   "{cap}"};

static int bad(cl_err *err, const char *list, size_t i, const char *field, const char *what) {
  return cl_err_set(err, CL_EINVAL, "%s[%zu].%s: %s", list, i, field, what);
}

static int unit_known(const char *u) {
  if (cds_mass_unit(u))
    return 1;
  for (size_t i = 0; i < sizeof OTHER_UNITS / sizeof OTHER_UNITS[0]; i++)
    if (!strcmp(u, OTHER_UNITS[i]))
      return 1;
  return 0;
}

static int draft_ok(const Clinlog__V1__DraftOrder *d, const char *list, size_t i, cl_err *err) {
  if (strlen(d->order_id) > CL_CDS_ORDER_ID_MAX)
    return bad(err, list, i, "order_id", "longer than 64 bytes");
  if (!d->drug || !d->drug->code[0])
    return bad(err, list, i, "drug.code", "required (an RxNorm RxCUI or an NDC)");
  if (strcmp(d->drug->system, CL_KB_RXNORM) && strcmp(d->drug->system, CL_KB_NDC))
    return bad(err, list, i, "drug.system", "must be " CL_KB_RXNORM " or " CL_KB_NDC);
  if (d->dose_value[0] && !d->dose_unit[0])
    return bad(err, list, i, "dose_unit", "required with dose_value");
  if (d->dose_unit[0] && !d->dose_value[0])
    return bad(err, list, i, "dose_value", "required with dose_unit");
  if (d->dose_value[0]) {
    Clinlog__V1__Quantity q = CLINLOG__V1__QUANTITY__INIT;
    q.value = d->dose_value;
    double v;
    if (cds_qty(&q, &v) != 0 || v <= 0)
      return bad(err, list, i, "dose_value", "not a positive decimal");
    if (!unit_known(d->dose_unit)) {
      char what[200];
      snprintf(what, sizeof what,
               "unknown unit \"%.40s\" (mg, g, mcg, ug, mL, tablet, capsule, puff, unit, [iU])",
               d->dose_unit);
      return bad(err, list, i, "dose_unit", what);
    }
  }
  if (d->route[0]) {
    Clinlog__V1__Code rc = CLINLOG__V1__CODE__INIT;
    rc.code = d->route;
    if (!cds_route(&rc))
      return bad(err, list, i, "route",
                 "unknown route (oral iv im sc sublingual rectal transdermal inhaled topical, "
                 "an HL7 v2 table 0162 or SNOMED CT route code)");
  }
  if (d->per_day && d->frequency[0])
    return bad(err, list, i, "per_day", "not with frequency");
  if (d->per_day > 24 || (d->per_day > 4 && 24 % d->per_day))
    return bad(err, list, i, "per_day", "1 to 4, or 6, 8, 12 or 24");
  return 0;
}

/* The order_id a draft goes by ("draft-<n>" when the caller gave none). */
static void draft_id(const Clinlog__V1__DraftOrder *d, size_t k,
                     char out[CL_CDS_ORDER_ID_MAX + 1]) {
  if (d->order_id[0])
    snprintf(out, CL_CDS_ORDER_ID_MAX + 1, "%s", d->order_id);
  else
    snprintf(out, CL_CDS_ORDER_ID_MAX + 1, "draft-%zu", k + 1);
}

/* Draft k of the request: orders first, then other_drafts. */
static const Clinlog__V1__DraftOrder *draft_at(const Clinlog__V1__CheckOrderRequest *req,
                                               size_t k) {
  return k < req->n_orders ? req->orders[k] : req->other_drafts[k - req->n_orders];
}

int cl_cds_order_validate(const Clinlog__V1__CheckOrderRequest *req, cl_err *err) {
  size_t pl = strlen(req->patient_id);
  if (pl == 0)
    return cl_err_set(err, CL_EINVAL, "patient_id: required");
  if (pl > PATIENT_ID_MAX || strchr(req->patient_id, '/'))
    return cl_err_set(err, CL_EINVAL, "patient_id: at most %d bytes, without '/'", PATIENT_ID_MAX);
  if (req->n_orders == 0)
    return cl_err_set(err, CL_EINVAL, "orders: at least one draft order is required");
  size_t total = req->n_orders + req->n_other_drafts;
  if (total > CL_CDS_ORDER_MAX_DRAFTS)
    return cl_err_set(err, CL_ETOOBIG, "orders: more than %d drafts (with other_drafts)",
                      CL_CDS_ORDER_MAX_DRAFTS);
  if (!isfinite(req->weight_kg) || req->weight_kg < 0 ||
      (req->weight_kg > 0 && (req->weight_kg < 0.1 || req->weight_kg > 700)))
    return cl_err_set(err, CL_EINVAL, "weight_kg: 0 (unknown) or 0.1 to 700 kg");
  for (size_t k = 0; k < total; k++) {
    const char *list = k < req->n_orders ? "orders" : "other_drafts";
    size_t i = k < req->n_orders ? k : k - req->n_orders;
    int rc = draft_ok(draft_at(req, k), list, i, err);
    if (rc)
      return rc;
    char a[CL_CDS_ORDER_ID_MAX + 1], b[CL_CDS_ORDER_ID_MAX + 1];
    draft_id(draft_at(req, k), k, a);
    for (size_t j = 0; j < k; j++) {
      draft_id(draft_at(req, j), j, b);
      if (!strcmp(a, b))
        return bad(err, list, i, "order_id", "the same as an earlier draft's");
    }
  }
  return 0;
}

/* ------------------------------------------------------------ drafts as events */

/* One draft as a MedicationPrescribed: pointers into this struct or the request. */
typedef struct draft_ev {
  Clinlog__V1__Event ev;
  Clinlog__V1__MedicationPrescribed rx;
  Clinlog__V1__CodeableConcept cc;
  Clinlog__V1__Code *codep;
  Clinlog__V1__Dosage dos, *dosp;
  Clinlog__V1__Quantity qty;
  Clinlog__V1__Code route;
  char id[CL_CDS_ORDER_ID_MAX + 1];
  char freq[8];
} draft_ev;

static void draft_event(draft_ev *b, const Clinlog__V1__DraftOrder *d, size_t k, char *stream) {
  memset(b, 0, sizeof *b);
  clinlog__v1__event__init(&b->ev);
  clinlog__v1__medication_prescribed__init(&b->rx);
  clinlog__v1__codeable_concept__init(&b->cc);
  clinlog__v1__dosage__init(&b->dos);
  draft_id(d, k, b->id);
  b->codep = d->drug;
  b->cc.n_coding = 1;
  b->cc.coding = &b->codep;
  b->rx.prescription_id = b->id;
  b->rx.medication = &b->cc;
  if (d->dose_value[0]) {
    clinlog__v1__quantity__init(&b->qty);
    b->qty.value = d->dose_value;
    b->qty.unit = d->dose_unit;
    b->dos.dose = &b->qty;
  }
  if (d->route[0]) {
    clinlog__v1__code__init(&b->route);
    b->route.code = d->route;
    b->dos.route = &b->route;
  }
  static const char *const PER_DAY[] = {"", "QD", "BID", "TID", "QID"};
  if (d->per_day >= 1 && d->per_day <= 4)
    snprintf(b->freq, sizeof b->freq, "%s", PER_DAY[d->per_day]);
  else if (d->per_day > 4)
    snprintf(b->freq, sizeof b->freq, "Q%uH", 24u / d->per_day);
  b->dos.frequency = b->freq[0] ? b->freq : d->frequency;
  b->dos.as_needed = d->as_needed;
  b->dosp = &b->dos;
  b->rx.n_dosage = 1;
  b->rx.dosage = &b->dosp;
  b->ev.stream = stream;
  b->ev.body_case = CLINLOG__V1__EVENT__BODY_MEDICATION_PRESCRIBED;
  b->ev.medication_prescribed = &b->rx;
}

/* A draft's name for people: the code's display, else the KB's name of its
 * one ingredient, else "RxNorm <code>" / "NDC <code>". */
static void draft_name(const cl_kb *kb, const Clinlog__V1__DraftOrder *d, char *out, size_t cap) {
  uint32_t ing[CL_KB_MAX_PRODUCT_ING];
  size_t n = 0;
  char buf[24];
  if (d->drug->display[0])
    snprintf(out, cap, "%s", d->drug->display);
  else if (cl_kb_resolve(kb, d->drug->system, d->drug->code, ing, CL_KB_MAX_PRODUCT_ING, &n) == 0 &&
           n == 1)
    snprintf(out, cap, "%s", cds_ing_name(kb, ing[0], buf));
  else
    snprintf(out, cap, "%s %s", strcmp(d->drug->system, CL_KB_NDC) ? "RxNorm" : "NDC",
             d->drug->code);
}

/* ------------------------------------------------------------ the answer */

/* A finding kept for the answer, with the draft that raised it. */
typedef struct kept {
  cl_cds_finding f;
  size_t draft;
  char summary[160];
  char issue[33];
} kept;

typedef struct answer {
  kept *k;
  size_t n, cap;
} answer;

static int keep(answer *a, const cl_cds_finding *f, size_t draft, cl_err *err) {
  if (a->n == a->cap) {
    size_t cap = a->cap ? 2 * a->cap : 8;
    kept *p = realloc(a->k, cap * sizeof *p);
    if (!p)
      return cl_err_set(err, CL_ENOMEM, "out of memory");
    a->k = p;
    a->cap = cap;
  }
  a->k[a->n].f = *f;
  a->k[a->n].draft = draft;
  a->n++;
  return 0;
}

/* Packs the response; every string is a view into a, req or names. */
static int pack(const cl_kb *kb, const Clinlog__V1__CheckOrderRequest *req, answer *a,
                const char *stream, draft_ev *evs, uint64_t as_of_seq, uint8_t **out, size_t *n,
                cl_err *err) {
  size_t total = req->n_orders + req->n_other_drafts;
  Clinlog__V1__CdsFinding *fs = calloc(a->n ? a->n : 1, sizeof *fs);
  Clinlog__V1__CdsFinding **fp = calloc(a->n ? a->n : 1, sizeof *fp);
  Clinlog__V1__Implicated *im = calloc(a->n ? a->n * CL_CDS_MAX_IMPLICATED : 1, sizeof *im);
  Clinlog__V1__Implicated **ip = calloc(a->n ? a->n * CL_CDS_MAX_IMPLICATED : 1, sizeof *ip);
  Clinlog__V1__Code *codes = calloc(a->n ? a->n : 1, sizeof *codes);
  int rc = 0;
  if (!fs || !fp || !im || !ip || !codes) {
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < a->n; i++) {
    kept *k = &a->k[i];
    cl_cds_finding *f = &k->f;
    Clinlog__V1__CdsFinding *o = &fs[i];
    clinlog__v1__cds_finding__init(o);
    o->severity = f->severity;
    o->kind = f->kind;
    o->rule_id = f->rule_id;
    o->source = (char *)(f->source ? f->source : "");
    o->kb_version = (char *)(f->kb_version ? f->kb_version : "");
    o->detail = f->detail;
    o->mitigation = f->mitigation;
    clinlog__v1__code__init(&codes[i]);
    codes[i].system = CL_CDS_ACTCODE;
    codes[i].code = (char *)(f->code ? f->code : "");
    o->code = &codes[i];
    o->order_id = evs[k->draft].id;
    cl_hex(f->key, 16, k->issue);
    o->issue_id = k->issue;
    char name[128], other[128] = "";
    draft_name(kb, draft_at(req, k->draft), name, sizeof name);
    o->implicated = &ip[i * CL_CDS_MAX_IMPLICATED];
    for (size_t j = 0; j < f->n_implicated && j < CL_CDS_MAX_IMPLICATED; j++) {
      Clinlog__V1__Implicated *m = &im[i * CL_CDS_MAX_IMPLICATED + j];
      clinlog__v1__implicated__init(m);
      long d = cl_cds_local_index("ordr", f->implicated[j], total);
      if (d >= 0) {
        m->order_id = evs[d].id;
        m->drug = draft_at(req, (size_t)d)->drug;
        if (j == 1 && f->kind != CLINLOG__V1__ISSUE_KIND__ISSUE_KIND_ALLERGY)
          draft_name(kb, draft_at(req, (size_t)d), other, sizeof other);
      } else {
        m->stream = (char *)stream;
        m->event_id = (ProtobufCBinaryData){16, f->implicated[j]};
      }
      o->implicated[o->n_implicated++] = m;
    }
    cl_cds_summary(f->kind, name, other, k->summary, sizeof k->summary);
    o->summary = k->summary;
    fp[i] = o;
  }
  Clinlog__V1__CheckOrderResponse resp = CLINLOG__V1__CHECK_ORDER_RESPONSE__INIT;
  resp.n_findings = a->n;
  resp.findings = fp;
  resp.as_of_seq = as_of_seq;
  resp.kb_version = (char *)cl_kb_version(kb);
  *n = clinlog__v1__check_order_response__get_packed_size(&resp);
  if (!(*out = malloc(*n ? *n : 1))) {
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    goto done;
  }
  clinlog__v1__check_order_response__pack(&resp, *out);
done:
  free(codes);
  free(ip);
  free(im);
  free(fp);
  free(fs);
  return rc;
}

int cl_cds_order_check(const cl_kb *kb, cl_cds_patient *st,
                       const Clinlog__V1__CheckOrderRequest *req, int64_t now_ns,
                       uint64_t as_of_seq, uint8_t **out, size_t *n, size_t *nfindings,
                       cl_err *err) {
  if (!kb || !st || !req || !out || !n)
    return cl_err_set(err, CL_EINVAL, "cl_cds_order_check: a NULL argument");
  int rc = cl_cds_order_validate(req, err);
  if (rc)
    return rc;
  size_t total = req->n_orders + req->n_other_drafts;
  char stream[16 + PATIENT_ID_MAX];
  snprintf(stream, sizeof stream, "patient-%s", req->patient_id);
  draft_ev *evs = calloc(total, sizeof *evs);
  cl_cds_findings *F = malloc(sizeof *F);
  answer a = {0};
  if (!evs || !F) {
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    goto done;
  }
  if (req->weight_kg > 0)
    cl_cds_patient_set_weight(st, req->weight_kg);
  /* the other drafts first (context), then each order in turn */
  for (size_t step = 0; step < total; step++) {
    size_t k = step < req->n_other_drafts ? req->n_orders + step : step - req->n_other_drafts;
    draft_event(&evs[k], draft_at(req, k), k, stream);
    uint8_t id[16];
    cl_cds_local_id("ordr", k, id);
    if ((rc = cl_cds_apply(kb, st, &evs[k].ev, id, now_ns, F, err)) != 0) {
      cl_err_prefix(err, "%s[%zu]", k < req->n_orders ? "orders" : "other_drafts",
                    k < req->n_orders ? k : k - req->n_orders);
      goto done;
    }
    for (size_t i = 0; k < req->n_orders && i < F->n; i++)
      if ((rc = keep(&a, &F->f[i], k, err)) != 0)
        goto done;
  }
  if ((rc = pack(kb, req, &a, stream, evs, as_of_seq, out, n, err)) == 0 && nfindings)
    *nfindings = a.n;
done:
  free(a.k);
  free(F);
  free(evs);
  return rc;
}

/* ChargeItem -> ChargeCaptured (fhirw.h): the inverse of charge_captured
 * (query/fhir/map_billing.c), one billable service line.
 *
 *   extension       clinlog procedure-modifier (valueCoding, in order),
 *                   revenue-code, place-of-service (valueCoding),
 *                   drug-quantity (valueQuantity in X12 355 units)
 *   status          billable
 *   code            procedure (CPT/HCPCS; one coding)
 *   context         encounter_id
 *   occurrenceDateTime (a date) or occurrencePeriod (start and end dates)
 *   performer (one: actor)   rendering_provider
 *   quantity        units (the decimal as written), unit_basis (X12 355)
 *   priceOverride   amount (Money: the currency's digits exactly)
 *   enteredDate     occurred_at
 *   reason[]        diagnoses, in pointer order
 *   productCodeableConcept   ndc
 *   supportingInformation (one ServiceRequest)   order_id */
#include <stdlib.h>
#include <string.h>

#include "adapters/fhir/fhirw_int.h"

#define EXT_MODIFIER FJ_CLINLOG_EXT "procedure-modifier"
#define EXT_REVENUE FJ_CLINLOG_EXT "revenue-code"
#define EXT_POS FJ_CLINLOG_EXT "place-of-service"
#define EXT_DRUG_QTY FJ_CLINLOG_EXT "drug-quantity"
#define X12_UNITS "https://codesystem.x12.org/005010/355"

/* A Quantity in X12 355 units: its value text and unit code. */
static int x12_quantity(wctx *c, const json_t *v, const char *path, char **value, char **unit) {
  Clinlog__V1__Quantity *q;
  int rc = w_quantity(c, v, path, &q);
  if (rc)
    return rc;
  if (!q->value[0] || q->comparator[0] || (q->unit[0] && strcmp(q->unit_system, X12_UNITS) != 0))
    return w_fail(c, 422, "not-supported", path,
                  "a value, and a unit as a code of " X12_UNITS " (UN, MJ, ML, GR, F2, ME)");
  *value = q->value;
  *unit = q->unit;
  return 0;
}

static int charge_ext(wctx *c, const json_t *e, const char *ep, const char *url, void *ctx) {
  Clinlog__V1__ChargeCaptured *b = ctx;
  static const char *const ckeys[] = {"url", "valueCoding", NULL};
  static const char *const qkeys[] = {"url", "valueQuantity", NULL};
  int qty = !strcmp(url, EXT_DRUG_QTY), rc;
  if (strcmp(url, EXT_MODIFIER) && strcmp(url, EXT_REVENUE) && strcmp(url, EXT_POS) && !qty)
    return w_fail(c, 422, "not-supported", w_path(c, ep, "url", 0),
                  "the extensions written are " EXT_MODIFIER ", " EXT_REVENUE ", " EXT_POS
                  " and " EXT_DRUG_QTY);
  const char *key = qty ? "valueQuantity" : "valueCoding", *vp = w_path(c, ep, key, 0);
  const json_t *v;
  if ((rc = w_only(c, e, ep, qty ? qkeys : ckeys, 0)) || (rc = w_obj(c, e, ep, key, &v)))
    return rc;
  if (v == NULL)
    return w_fail(c, 400, "required", vp, "required");
  if (qty) {
    if (b->ndc_quantity[0])
      return w_fail(c, 422, "not-supported", ep, "one drug quantity can be written");
    return x12_quantity(c, v, vp, &b->ndc_quantity, &b->ndc_unit);
  }
  pb_code *code;
  if ((rc = w_coding(c, v, vp, &code)))
    return rc;
  if (!strcmp(url, EXT_MODIFIER)) {
    char **more = w_alloc(c, (b->n_modifiers + 1) * sizeof *more);
    if (more == NULL)
      return CL_ENOMEM;
    if (b->n_modifiers)
      memcpy(more, b->modifiers, b->n_modifiers * sizeof *more);
    more[b->n_modifiers++] = code->code;
    b->modifiers = more;
    return 0;
  }
  pb_code **slot = !strcmp(url, EXT_REVENUE) ? &b->revenue_code : &b->place_of_service;
  if (*slot != NULL)
    return w_fail(c, 422, "not-supported", ep, "one %s can be written", url);
  *slot = code;
  return 0;
}

int w_money(wctx *c, const json_t *r, const char *p, const char *key, Clinlog__V1__Money **out) {
  static const char *const keys[] = {"value", "currency", NULL};
  const json_t *o;
  const char *cur;
  *out = NULL;
  int rc = w_obj(c, r, p, key, &o);
  if (rc || o == NULL)
    return rc;
  const char *mp = w_path(c, p, key, 0);
  const char *v = json_string_value(json_object_get(o, "value"));
  if ((rc = w_only(c, o, mp, keys, 0)) || (rc = w_str(c, o, mp, "currency", &cur)))
    return rc;
  if (cur == NULL || strlen(cur) != 3 || strspn(cur, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 3)
    return w_fail(c, 400, "required", w_path(c, mp, "currency", 0), "an ISO 4217 currency code");
  Clinlog__V1__Money *m = w_alloc(c, sizeof *m);
  if (m == NULL)
    return CL_ENOMEM;
  clinlog__v1__money__init(m);
  m->currency = (char *)cur;
  /* the currency's digits: those the view writes for it */
  json_t *zero = fj_money(m);
  const char *zs = json_string_value(json_object_get(zero, "value")),
             *zdot = zs ? strchr(zs, '.') : NULL;
  size_t want = zdot ? strlen(zdot + 1) : 0;
  json_decref(zero);
  const char *t = v && v[0] == FJ_DECIMAL_MARK ? v + 1 : NULL;
  const char *dot = t ? strchr(t, '.') : NULL;
  size_t got = dot ? strlen(dot + 1) : 0;
  char digits[32];
  size_t n = 0;
  for (const char *s = t; s != NULL && *s && n + 1 < sizeof digits; s++)
    if (*s != '.')
      digits[n++] = *s;
  digits[n] = '\0';
  char *end = NULL;
  long long minor = t ? strtoll(digits, &end, 10) : 0;
  if (t == NULL || got != want || end == NULL || *end || n == 0 || n > 17 ||
      strspn(t + (t[0] == '-'), "0123456789.") != strlen(t + (t[0] == '-')))
    return w_fail(c, 400, "value", w_path(c, mp, "value", 0),
                  "an amount with the %zu decimals of %s (a JSON number)", want, cur);
  m->minor_units = minor;
  *out = m;
  return 0;
}

int w_charge_item(wctx *c, const json_t *r) {
  static const char *const keys[] = {"extension",
                                     "identifier",
                                     "status",
                                     "code",
                                     "subject",
                                     "context",
                                     "occurrenceDateTime",
                                     "occurrencePeriod",
                                     "performer",
                                     "quantity",
                                     "priceOverride",
                                     "enteredDate",
                                     "reason",
                                     "productCodeableConcept",
                                     "supportingInformation",
                                     NULL};
  static const char *const statuses[] = {"billable", NULL};
  const char *p = c->root;
  Clinlog__V1__ChargeCaptured *b = w_alloc(c, sizeof *b);
  if (b == NULL)
    return CL_ENOMEM;
  clinlog__v1__charge_captured__init(b);
  const json_t *per, *perf, *qty = json_object_get(r, "quantity");
  size_t nperf;
  pb_ts *entered;
  int rc, status;
  if ((rc = w_only(c, r, p, keys, 1)) || (rc = w_subject(c, r, p, "subject")) ||
      (rc = w_business_id(c, r, p)) || (rc = business_only(c, r, p)) ||
      (rc = w_enum(c, r, p, "status", statuses, &status)) ||
      (rc = w_concept_code(c, r, p, "code", &b->procedure)) ||
      (rc = w_encounter(c, r, p, "context", (const char **)&b->encounter_id)) ||
      (rc = w_date(c, r, p, "occurrenceDateTime", (const char **)&b->service_date)) ||
      (rc = w_obj(c, r, p, "occurrencePeriod", &per)) ||
      (rc = w_arr(c, r, p, "performer", &perf, &nperf)) ||
      (qty &&
       (rc = x12_quantity(c, qty, w_path(c, p, "quantity", 0), &b->units, &b->unit_basis))) ||
      (rc = w_money(c, r, p, "priceOverride", &b->amount)) ||
      (rc = w_instant(c, r, p, "enteredDate", &entered)) ||
      (rc = w_concepts_code(c, r, p, "reason", &b->diagnoses, &b->n_diagnoses)) ||
      (rc = w_concept_code(c, r, p, "productCodeableConcept", &b->ndc)) ||
      (rc = w_ref_bid_first(c, r, p, "supportingInformation", "ServiceRequest",
                            (const char **)&b->order_id)) ||
      (rc = w_each_ext(c, r, p, charge_ext, b)))
    return rc;
  if (status < 0 || b->procedure == NULL)
    return w_fail(c, 400, "required", w_path(c, p, status < 0 ? "status" : "code", 0),
                  "required (a charge: status billable, the procedure code)");
  if (per != NULL) {
    static const char *const pkeys[] = {"start", "end", NULL};
    const char *pp = w_path(c, p, "occurrencePeriod", 0);
    if (b->service_date != NULL)
      return w_fail(c, 400, "invalid", pp, "one occurrence[x]");
    if ((rc = w_only(c, per, pp, pkeys, 0)) ||
        (rc = w_date(c, per, pp, "start", (const char **)&b->service_date)) ||
        (rc = w_date(c, per, pp, "end", (const char **)&b->service_date_end)))
      return rc;
    if (b->service_date_end == NULL)
      return w_fail(c, 400, "required", w_path(c, pp, "end", 0),
                    "a period has its end (one date is occurrenceDateTime)");
  }
  if (nperf > 1)
    return w_fail(c, 422, "not-supported", w_path(c, w_path(c, p, "performer", 0), NULL, 1),
                  "one performer (the rendering provider) can be written");
  if (nperf == 1) {
    static const char *const akeys[] = {"actor", NULL};
    const json_t *pf = json_array_get(perf, 0), *actor;
    const char *fp = w_path(c, w_path(c, p, "performer", 0), NULL, 0);
    if (!json_is_object(pf))
      return w_fail(c, 400, "structure", fp, "expected an object");
    if ((rc = w_only(c, pf, fp, akeys, 0)) || (rc = w_obj(c, pf, fp, "actor", &actor)))
      return rc;
    if (actor == NULL)
      return w_fail(c, 400, "required", w_path(c, fp, "actor", 0), "required");
    if ((rc = w_reference(c, actor, w_path(c, fp, "actor", 0), &b->rendering_provider)))
      return rc;
  }
  char **strs[] = {&b->encounter_id,     &b->units,   &b->service_date, &b->unit_basis,
                   &b->service_date_end, &b->order_id};
  for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
    if (*strs[i] == NULL)
      *strs[i] = "";
  b->charge_id = (char *)c->bid;
  if (entered != NULL)
    c->when = entered;
  return w_emit(c, CLINLOG__V1__EVENT__BODY_CHARGE_CAPTURED, b);
}

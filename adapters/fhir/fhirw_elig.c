/* CoverageEligibilityResponse with its CoverageEligibilityRequest -> one
 * EligibilityChecked (fhirw.h): the inverse of eligibility_checked
 * (query/fhir/map_billing.c), which makes both resources (and a new
 * version of the Coverage of payer + member) of one event.
 *
 * The pair is one write: the Request's service types and encounter are in
 * no element of the Response, so the Response takes its Request along, as
 * a DiagnosticReport takes its result lines: the Request of the same input
 * that its `request` references (cl_fhirw_opts.line: "CoverageEligibility
 * Request/<id>" or a fullUrl), else the Request the views hold (w_fetch:
 * an earlier EligibilityChecked made it; the write is then a new version of
 * that check, which must leave the Request as the views show it). A Request
 * alone is refused (w_elig_request).
 *
 *   CoverageEligibilityResponse
 *     identifier      business id (check_id); typed by text: TRN02
 *                     (trace_number)
 *     patient         the patient (the stream)
 *     created         occurred_at
 *     outcome         complete, or error: a rejected check (reject_reason)
 *     disposition     coverage_details
 *     insurer         payer (identifier), payer_name (display)
 *     insurance[0]    coverage: the Coverage of payer + member (member_id;
 *                     its relationship, period and class restated:
 *                     subscriber_relationship, coverage_period, group_number,
 *                     plan); inforce: eligible; benefitPeriod:
 *                     coverage_period; item[]: benefits, one each
 *     error[0].code   reject_reason
 *   CoverageEligibilityRequest (request.resolve())
 *     item[].category service_types
 *     supportingInfo[0].information  encounter_id
 * status, purpose, request and the rest: as the views derive them. Both
 * resources are checked against what the views make of the event
 * (w_as_view), the Request's refusals at `<Response>.request.resolve().<element>`. */
#include <stdio.h>
#include <string.h>

#include "adapters/fhir/fhirw_int.h"

#define REQUEST "CoverageEligibilityRequest"
#define X12_1207 "https://codesystem.x12.org/005010/1207"
#define X12_615 "https://codesystem.x12.org/005010/615"

/* The code of concept o[key] in `system` among its codings, or NULL. */
static const char *code_in(const json_t *o, const char *key, const char *system) {
  const json_t *cd = json_object_get(json_object_get(o, key), "coding");
  for (size_t i = 0; i < json_array_size(cd); i++) {
    const char *s = json_string_value(json_object_get(json_array_get(cd, i), "system"));
    if (s != NULL && !strcmp(s, system))
      return json_string_value(json_object_get(json_array_get(cd, i), "code"));
  }
  return NULL;
}

/* it[key], a concept the views write with its X12 code (in `system`), into
 * *out; 422 for one without it. */
static int x12_of(wctx *c, const json_t *it, const char *ip, const char *key, const char *system,
                  char **out) {
  const json_t *o;
  int rc = w_obj(c, it, ip, key, &o);
  if (rc || o == NULL)
    return rc;
  const char *code = code_in(it, key, system);
  if (code == NULL || !code[0])
    return w_fail(c, 422, "not-supported", w_path(c, ip, key, 0),
                  "written with its X12 code (a coding in %s): the event holds that code", system);
  *out = (char *)code;
  return 0;
}

/* A percent as the views write EB08 (20, or "12.5%") back to the fraction
 * ("0.2", "0.125"), in the arena; NULL when pct is no decimal. */
static char *fraction_of(wctx *c, const char *pct) {
  char all[48];
  size_t n = 0, whole = 0, i = 0, len = strlen(pct);
  for (; i < len && pct[i] >= '0' && pct[i] <= '9' && n < 20; i++, whole++)
    all[n++] = pct[i];
  if (i < len && pct[i] == '.')
    for (i++; i < len && pct[i] >= '0' && pct[i] <= '9' && n < 40; i++)
      all[n++] = pct[i];
  if (i != len || whole == 0)
    return NULL;
  char out[64];
  size_t w = 0, k = 0;
  long point = (long)whole - 2; /* the fraction's point: two places left */
  if (point <= 0) {
    out[w++] = '0';
    out[w++] = '.';
    for (long z = point; z < 0; z++)
      out[w++] = '0';
  } else {
    while (k + 1 < (size_t)point && all[k] == '0') /* no leading zeros */
      k++;
    for (; k < (size_t)point; k++)
      out[w++] = all[k];
    out[w++] = '.';
  }
  for (; k < n; k++)
    out[w++] = all[k];
  while (out[w - 1] == '0') /* no trailing ones after the point */
    w--;
  if (out[w - 1] == '.')
    w--;
  out[w] = '\0';
  return w_printf(c, "%s", out);
}

/* One benefit of an item: its allowed amount or percent into e. */
static int benefit_value(wctx *c, const json_t *bn, const char *bp,
                         Clinlog__V1__EligibilityBenefit *e) {
  static const char *const keys[] = {"type", "allowedMoney", "allowedUnsignedInt", "allowedString",
                                     NULL};
  const json_t *ui = json_object_get(bn, "allowedUnsignedInt");
  const char *s;
  int rc;
  if (!json_is_object(bn))
    return w_fail(c, 400, "structure", bp, "expected an object");
  if ((rc = w_only(c, bn, bp, keys, 0)) || (rc = w_str(c, bn, bp, "allowedString", &s)))
    return rc;
  if (json_object_get(bn, "allowedMoney") != NULL) {
    if (e->amount != NULL)
      return w_fail(c, 422, "not-supported", w_path(c, bp, "allowedMoney", 0),
                    "one amount (EB07) an item can be written with");
    return w_money(c, bn, bp, "allowedMoney", &e->amount);
  }
  char num[32] = "";
  if (json_is_integer(ui))
    snprintf(num, sizeof num, "%lld", (long long)json_integer_value(ui));
  else if (json_string_value(ui) && json_string_value(ui)[0] == FJ_DECIMAL_MARK)
    snprintf(num, sizeof num, "%s", json_string_value(ui) + 1);
  else if (ui != NULL)
    return w_fail(c, 400, "value", w_path(c, bp, "allowedUnsignedInt", 0),
                  "expected an unsignedInt");
  const char *pct = ui != NULL ? num : s;
  const char *pp = w_path(c, bp, ui != NULL ? "allowedUnsignedInt" : "allowedString", 0);
  if (pct == NULL)
    return w_fail(c, 400, "required", bp, "required: allowedMoney, or a percent");
  size_t pl = strlen(pct);
  char *f = ui != NULL || (pl > 1 && pct[pl - 1] == '%')
                ? fraction_of(c, ui != NULL ? pct : w_printf(c, "%.*s", (int)pl - 1, pct))
                : NULL;
  if (f == NULL)
    return w_fail(c, 422, "value", pp, "a percent (EB08): a whole number, or a string \"12.5%%\"");
  if (e->percent[0])
    return w_fail(c, 422, "not-supported", pp, "one percent (EB08) an item can be written with");
  e->percent = f;
  return 0;
}

/* insurance[0].item[i] -> one EligibilityBenefit (an EB line). */
static int benefit_of(wctx *c, const json_t *v, const char *ip, void **out) {
  static const char *const keys[] = {"category", "excluded", "name",    "description", "network",
                                     "unit",     "term",     "benefit", NULL};
  static const char *const nets[] = {"in", "out", NULL};
  Clinlog__V1__EligibilityBenefit *e = w_alloc(c, sizeof *e);
  pb_code **cat = w_alloc(c, sizeof *cat);
  const json_t *bs;
  const char *name;
  size_t nb;
  int rc, excluded, net;
  if (e == NULL || cat == NULL)
    return CL_ENOMEM;
  clinlog__v1__eligibility_benefit__init(e);
  if (!json_is_object(v))
    return w_fail(c, 400, "structure", ip, "expected an object");
  if ((rc = w_only(c, v, ip, keys, 0)) || (rc = w_concept_code(c, v, ip, "category", cat)) ||
      (rc = w_bool(c, v, ip, "excluded", &excluded)) || (rc = w_str(c, v, ip, "name", &name)) ||
      (rc = w_str(c, v, ip, "description", (const char **)&e->text)) ||
      (rc = w_concept_in(c, v, ip, "network",
                         "http://terminology.hl7.org/CodeSystem/benefit-network", nets, &net)) ||
      (rc = x12_of(c, v, ip, "unit", X12_1207, &e->coverage_level)) ||
      (rc = x12_of(c, v, ip, "term", X12_615, &e->time_period)) ||
      (rc = w_arr(c, v, ip, "benefit", &bs, &nb)))
    return rc;
  if (*cat != NULL)
    e->service_types = cat, e->n_service_types = 1;
  if (e->text == NULL)
    e->text = "";
  if (name != NULL) { /* EB01: the display the views write of a code they know, else the code */
    const char *code = cl_fhir_x12_eb01_code(name);
    e->info_code = (char *)(code != NULL ? code : name);
  }
  if (net >= 0)
    e->in_network = net == 0 ? "Y" : "N";
  for (size_t i = 0; rc == 0 && i < nb; i++)
    rc = benefit_value(c, json_array_get(bs, i),
                       w_path(c, w_path(c, ip, "benefit", 0), NULL, (long)i), e);
  (void)excluded; /* EB01 I (Non-Covered): stated by the name, checked against the view */
  *out = e;
  return rc;
}

/* 1 if two instants (NULL: absent) are the same. */
static int same_ts(const pb_ts *a, const pb_ts *b) {
  if (a == NULL || b == NULL)
    return a == b;
  return a->seconds == b->seconds && a->nanos == b->nanos;
}

/* insurance[0]: the Coverage (and what it restates), inforce, benefitPeriod
 * and the benefit lines. */
static int insurance_of(wctx *c, const json_t *ins, const char *ip,
                        Clinlog__V1__EligibilityChecked *b) {
  static const char *const keys[] = {"coverage", "inforce", "benefitPeriod", "item", NULL};
  const char *payer = b->payer && b->payer->value ? b->payer->value : "";
  json_t *cov = NULL; /* kept with the arena: b points into it */
  Clinlog__V1__Period *bp;
  int rc, inforce;
  if ((rc = w_only(c, ins, ip, keys, 0)) || (rc = w_member_of(c, ins, ip, payer, &b->member_id)) ||
      (rc = w_bool(c, ins, ip, "inforce", &inforce)) ||
      (rc = w_period(c, ins, ip, "benefitPeriod", &bp)) ||
      (rc = w_list(c, ins, ip, "item", benefit_of, (void ***)&b->benefits, &b->n_benefits)))
    return rc;
  b->eligible = inforce == 1;
  const char *cp = w_path(c, ip, "coverage", 0);
  if (json_object_get(json_object_get(ins, "coverage"), "reference") != NULL) {
    /* the Coverage of payer + member: the event restates its terms */
    char id[CL_FHIR_ID_MAX];
    const char *bid = w_printf(c, "%s|%s", payer, b->member_id);
    if (bid == NULL)
      return CL_ENOMEM;
    cl_fhir_id("Coverage", c->patient_id, bid, id);
    if ((rc = w_fetch(c, "Coverage", id, &cov)) == CL_ENOTFOUND)
      return w_fail(c, 422, "not-found", w_path(c, cp, "reference", 0),
                    "no Coverage of this payer and member to restate: write it first");
    if (rc || (rc = w_keep(c, cov)) ||
        (rc = w_coverage_terms(c, cov, w_printf(c, "%s.resolve()", cp), b)))
      return rc;
  }
  if (bp != NULL && b->coverage_period != NULL &&
      (!same_ts(bp->start, b->coverage_period->start) ||
       !same_ts(bp->end, b->coverage_period->end)))
    return w_fail(c, 422, "value", w_path(c, ip, "benefitPeriod", 0),
                  "the Coverage's period is the check's (one element of the event): write them "
                  "alike");
  if (bp != NULL)
    b->coverage_period = bp;
  return 0;
}

/* The Request's elements the Response does not state (at qp). */
static int request_of(wctx *c, const json_t *q, const char *qp,
                      Clinlog__V1__EligibilityChecked *b) {
  const json_t *items, *si;
  const char *sip;
  size_t n;
  int rc;
  if (!json_is_object(q))
    return w_fail(c, 400, "structure", qp, "expected a resource");
  if ((rc = w_arr(c, q, qp, "item", &items, &n)) ||
      (rc = w_only_one(c, q, qp, "supportingInfo", &si, &sip)))
    return rc;
  if ((b->service_types = w_alloc(c, (n ? n : 1) * sizeof *b->service_types)) == NULL)
    return CL_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    static const char *const ikeys[] = {"category", NULL};
    const json_t *it = json_array_get(items, i);
    const char *itp = w_path(c, w_path(c, qp, "item", 0), NULL, (long)i);
    pb_code *k;
    if (!json_is_object(it))
      return w_fail(c, 400, "structure", itp, "expected an object");
    if ((rc = w_only(c, it, itp, ikeys, 0)) || (rc = w_concept_code(c, it, itp, "category", &k)))
      return rc;
    if (k == NULL)
      return w_fail(c, 400, "required", w_path(c, itp, "category", 0),
                    "required: the service type asked about (EQ01)");
    b->service_types[b->n_service_types++] = k;
  }
  if (si != NULL) { /* the visit it was checked for */
    static const char *const skeys[] = {"sequence", "information", "appliesToAll", NULL};
    if ((rc = w_only(c, si, sip, skeys, 0)) ||
        (rc = w_encounter(c, si, sip, "information", (const char **)&b->encounter_id)))
      return rc;
    if (b->encounter_id == NULL)
      b->encounter_id = "";
  }
  return 0;
}

/* The Request the Response's request references into *q (borrowed from the
 * input, or the views' in *held, kept with the arena: w_keep) and the id it
 * has. */
static int find_request(wctx *c, const json_t *r, const char *p, const json_t **q, json_t **held,
                        const char **qid) {
  static const char *const keys[] = {"reference", NULL};
  const json_t *rq;
  const char *ref, *rp = w_path(c, p, "request", 0);
  int rc;
  *q = NULL, *held = NULL, *qid = NULL;
  if ((rc = w_obj(c, r, p, "request", &rq)) || rq == NULL)
    return rc ? rc
              : w_fail(c, 400, "required", rp,
                       "required: the " REQUEST " this answers (in the same Bundle or input)");
  if ((rc = w_only(c, rq, rp, keys, 0)) || (rc = w_str(c, rq, rp, "reference", &ref)))
    return rc;
  if (ref == NULL)
    return w_fail(c, 400, "required", w_path(c, rp, "reference", 0), "required");
  if (c->o->line != NULL && c->o->line(c->o->ctx, ref, q) == 0) {
    *qid = json_string_value(json_object_get(*q, "id"));
    return 0;
  }
  size_t tl = strlen(REQUEST);
  if (!strncmp(ref, REQUEST "/", tl + 1)) { /* an earlier check's: a new version of it */
    rc = w_fetch(c, REQUEST, ref + tl + 1, held);
    if (rc == 0 && (rc = w_keep(c, *held)) == 0) { /* the event points into it */
      *q = *held;
      *qid = ref + tl + 1;
      return 0;
    }
    if (rc != CL_ENOTFOUND)
      return rc;
  }
  return w_fail(c, 422, "not-found", w_path(c, rp, "reference", 0),
                "'%.64s' is no " REQUEST " of this input or the views: write the response "
                "with its " REQUEST " in one Bundle (one EligibilityChecked makes both)",
                ref);
}

int w_elig_response(wctx *c, const json_t *r) {
  static const char *const keys[] = {"identifier", "status",    "purpose", "patient",
                                     "created",    "request",   "outcome", "disposition",
                                     "insurer",    "insurance", "error",   NULL};
  static const char *const outcomes[] = {"complete", "error", NULL};
  static const char *const ids[] = {"Trace number (TRN02)", NULL};
  const char *p = c->root, *qp = w_printf(c, "%s.request.resolve()", c->root), *insp = NULL,
             *errp = NULL, *name = NULL, *qid_own;
  Clinlog__V1__EligibilityChecked *b = w_alloc(c, sizeof *b);
  const json_t *ins, *er, *q;
  json_t *held, *copy = NULL;
  pb_ts *created;
  int rc, outcome;
  if (b == NULL || qp == NULL)
    return CL_ENOMEM;
  clinlog__v1__eligibility_checked__init(b);
  char **const slots[] = {&b->trace_number};
  if ((rc = w_only(c, r, p, keys, 1)) || (rc = w_subject(c, r, p, "patient")) ||
      (rc = w_business_id(c, r, p)) || (rc = w_text_ids(c, r, p, ids, slots)) ||
      (rc = w_instant(c, r, p, "created", &created)) ||
      (rc = w_enum(c, r, p, "outcome", outcomes, &outcome)) ||
      (rc = w_str(c, r, p, "disposition", (const char **)&b->coverage_details)) ||
      (rc = w_payer_of(c, r, p, "insurer", &b->payer, &name)) ||
      (rc = w_only_one(c, r, p, "insurance", &ins, &insp)) ||
      (rc = w_only_one(c, r, p, "error", &er, &errp)))
    return rc;
  if (outcome < 0)
    return w_fail(c, 400, "required", w_path(c, p, "outcome", 0), "required");
  if (created != NULL)
    c->when = created;
  if (name != NULL && (b->payer != NULL || strcmp(name, "unknown") != 0)) /* "unknown": none */
    b->payer_name = (char *)name;
  if (b->coverage_details == NULL)
    b->coverage_details = "";
  b->member_id = "";
  if (ins != NULL && (rc = insurance_of(c, ins, insp, b)))
    goto done;
  if (outcome == 1) { /* error: the request was rejected (AAA) */
    if ((b->reject_reason = w_alloc(c, sizeof *b->reject_reason)) == NULL) {
      rc = CL_ENOMEM;
      goto done;
    }
    clinlog__v1__code__init(b->reject_reason);
    static const char *const ekeys[] = {"code", NULL};
    const json_t *code = er != NULL ? json_object_get(er, "code") : NULL;
    pb_code *k = NULL;
    if ((er != NULL && (rc = w_only(c, er, errp, ekeys, 0))) ||
        /* the data-absent form is the view's for a reason not stated */
        (json_object_get(code, "extension") == NULL && er != NULL &&
         (rc = w_concept_code(c, er, errp, "code", &k))))
      goto done;
    if (k != NULL)
      b->reject_reason = k;
  }
  b->check_id = (char *)c->bid;
  if ((rc = find_request(c, r, p, &q, &held, &qid_own)) || (rc = request_of(c, q, qp, b)) ||
      (rc = w_emit(c, CLINLOG__V1__EVENT__BODY_ELIGIBILITY_CHECKED, b)))
    goto done;
  char qid[CL_FHIR_ID_MAX];
  cl_fhir_id(REQUEST, c->patient_id, c->bid, qid);
  if (qid_own != NULL && strcmp(qid_own, qid) != 0) {
    rc = w_fail(c, 422, "value", w_path(c, w_path(c, p, "request", 0), "reference", 0),
                "the views make " REQUEST "/%s of this check's request (the response's business "
                "id decides it), not " REQUEST "/%.64s: one check is one request and its response",
                qid, qid_own);
    goto done;
  }
  /* the Response's request as the views write it: the Request was found */
  const char *vref = w_printf(c, REQUEST "/%s", qid);
  if (vref == NULL || (copy = json_deep_copy(r)) == NULL ||
      json_object_set_new(copy, "request", json_pack("{s:s}", "reference", vref))) {
    rc = cl_err_set(c->err, CL_ENOMEM, "out of memory");
    goto done;
  }
  if ((rc = w_as_view(c, copy)) == 0)
    rc = w_other_as_view(c, REQUEST, qid, q, qp);
done:
  json_decref(copy);
  return rc;
}

int w_elig_request(wctx *c, const json_t *r) {
  (void)r;
  return w_fail(c, 422, "not-supported", c->root,
                "a " REQUEST " is written with its CoverageEligibilityResponse (whose request "
                "references it) in one Bundle or input: one EligibilityChecked makes both, and "
                "a request without its response states no check");
}

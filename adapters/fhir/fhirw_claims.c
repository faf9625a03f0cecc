/* Claim -> ClaimSubmitted and ClaimResponse -> ClaimAdjudicated (fhirw.h):
 * the inverses of mb_claim_submitted and mb_claim_adjudicated
 * (query/fhir/map_claims.c).
 *
 * A Claim's view reads more than its event holds: each item is the
 * ChargeItem it bills (the event holds the charge ids), careTeam gathers
 * their performers, diagnosis gains the reasons they add. A ClaimResponse
 * takes its type, insurer display, insurance and item sequences from its
 * Claim. So each element the event holds is read from the resource, and
 * then the whole resource is checked against what the views make of the
 * event (w_as_view): a Claim is written with the items and care team its
 * ChargeItems give, as the views show it, or not at all.
 *
 *   Claim
 *     extension     clinlog claim-facility-code (facility_type),
 *                   claim-frequency (claim_frequency_code, X12 1325)
 *     identifier    business id (claim_id); typed by text: CLM01
 *                   (patient_control_number), ISA13, ST02
 *     status        active, or cancelled for a void (frequency 8)
 *     type          claim-type professional | institutional | oral
 *     patient, created (submitted_at and occurred_at)
 *     insurer       payer (identifier), payer_name (display)
 *     provider      billing_provider
 *     related[0].reference   payer_claim_control_number (REF*F8)
 *     diagnosis[].diagnosisCodeableConcept   diagnoses, in order
 *     insurance[0].coverage  the Coverage of payer + member: member_id
 *     item[].extension Claim.item.traceNumber   charge_ids, in order
 *     total         total
 *     use, priority, careTeam, item[] otherwise: as the views derive them
 *
 *   ClaimResponse: see w_claim_response. */
#include <stdlib.h>
#include <string.h>

#include "adapters/fhir/fhirw_int.h"

#define CLAIM_TYPE "http://terminology.hl7.org/CodeSystem/claim-type"
#define TRACE_EXT FJ_R5_EXT "Claim.item.traceNumber"
#define X12_1325 "https://codesystem.x12.org/005010/1325"
#define PCCN "Payer claim control number (REF*F8)"

/* ---- shared ---- */

/* The payer as the views write it: {identifier, display} (no literal
 * reference: the payer is no resource of this server). */
int w_payer_of(wctx *c, const json_t *r, const char *p, const char *key,
               Clinlog__V1__Identifier **payer, const char **name) {
  static const char *const keys[] = {"identifier", "display", NULL};
  const json_t *o, *id;
  int rc = w_obj(c, r, p, key, &o);
  if (rc || o == NULL)
    return rc;
  const char *op = w_path(c, p, key, 0);
  if ((rc = w_only(c, o, op, keys, 0)) || (rc = w_obj(c, o, op, "identifier", &id)) ||
      (rc = w_str(c, o, op, "display", name)))
    return rc;
  if (id != NULL)
    return w_identifier(c, id, w_path(c, op, "identifier", 0), payer);
  return 0;
}

/* The member id of the Coverage r[key] references (its business id is
 * "<payer id>|<member id>", payer_id the insurer's); "" when it is the
 * payer named only. */
int w_member_of(wctx *c, const json_t *ins, const char *ip, const char *payer_id, char **member) {
  const json_t *cov = json_object_get(ins, "coverage");
  const char *bid;
  *member = "";
  if (json_object_get(cov, "reference") == NULL)
    return 0; /* the payer by name: checked against the view */
  int rc = w_ref_bid(c, ins, ip, "coverage", "Coverage", &bid);
  if (rc)
    return rc;
  size_t n = strlen(payer_id);
  if (strncmp(bid, payer_id, n) != 0 || bid[n] != '|')
    return w_fail(c, 422, "invalid", w_path(c, w_path(c, ip, "coverage", 0), "reference", 0),
                  "a Coverage of another payer than the insurer's");
  *member = (char *)bid + n + 1;
  return 0;
}

/* ---- Claim ---- */

static int claim_ext(wctx *c, const json_t *e, const char *ep, const char *url, void *ctx) {
  Clinlog__V1__ClaimSubmitted *b = ctx;
  static const char *const keys[] = {"url", "valueCoding", NULL};
  int freq = !strcmp(url, FJ_CLINLOG_EXT "claim-frequency"), rc;
  if (!freq && strcmp(url, FJ_CLINLOG_EXT "claim-facility-code"))
    return w_fail(c, 422, "not-supported", w_path(c, ep, "url", 0),
                  "the extensions written are " FJ_CLINLOG_EXT "claim-facility-code and "
                  "claim-frequency");
  const json_t *v;
  const char *vp = w_path(c, ep, "valueCoding", 0);
  if ((rc = w_only(c, e, ep, keys, 0)) || (rc = w_obj(c, e, ep, "valueCoding", &v)))
    return rc;
  if (v == NULL)
    return w_fail(c, 400, "required", vp, "required");
  pb_code *code;
  if ((rc = w_coding(c, v, vp, &code)))
    return rc;
  if (freq ? b->claim_frequency_code[0] != '\0' : b->facility_type != NULL)
    return w_fail(c, 422, "not-supported", ep, "one %s can be written", url);
  if (!freq) {
    b->facility_type = code;
    return 0;
  }
  if (strcmp(code->system, X12_1325) || !code->code[0])
    return w_fail(c, 422, "code-invalid", w_path(c, vp, "system", 0),
                  "a claim frequency is a code of " X12_1325);
  b->claim_frequency_code = code->code;
  return 0;
}

/* diagnosis[]: the concepts, in sequence order. */
static int claim_diagnoses(wctx *c, const json_t *r, const char *p,
                           Clinlog__V1__ClaimSubmitted *b) {
  static const char *const keys[] = {"sequence", "diagnosisCodeableConcept", "type", NULL};
  const json_t *a;
  size_t n;
  int rc = w_arr(c, r, p, "diagnosis", &a, &n);
  if (rc || n == 0)
    return rc;
  if ((b->diagnoses = w_alloc(c, n * sizeof *b->diagnoses)) == NULL)
    return CL_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    const json_t *d = json_array_get(a, i);
    const char *dp = w_path(c, w_path(c, p, "diagnosis", 0), NULL, (long)i);
    if (!json_is_object(d))
      return w_fail(c, 400, "structure", dp, "expected an object");
    if ((rc = w_only(c, d, dp, keys, 0)) ||
        (rc = w_concept_code(c, d, dp, "diagnosisCodeableConcept", &b->diagnoses[i])))
      return rc;
    if (b->diagnoses[i] == NULL)
      return w_fail(c, 400, "required", w_path(c, dp, "diagnosisCodeableConcept", 0),
                    "required (a diagnosis is written as a code)");
    b->n_diagnoses = i + 1;
  }
  return 0;
}

/* item[]: the charge each bills (its Claim.item.traceNumber). */
static int claim_items(wctx *c, const json_t *r, const char *p, Clinlog__V1__ClaimSubmitted *b) {
  const json_t *a;
  size_t n;
  int rc = w_arr(c, r, p, "item", &a, &n);
  if (rc || n == 0)
    return rc;
  if ((b->charge_ids = w_alloc(c, n * sizeof *b->charge_ids)) == NULL)
    return CL_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    const json_t *it = json_array_get(a, i), *ext;
    const char *ip = w_path(c, w_path(c, p, "item", 0), NULL, (long)i), *ep = NULL, *url;
    if (!json_is_object(it))
      return w_fail(c, 400, "structure", ip, "expected an object");
    if ((rc = w_only_one(c, it, ip, "extension", &ext, &ep)))
      return rc;
    if (ext == NULL)
      return w_fail(c, 400, "required", w_path(c, ip, "extension", 0),
                    "required: the charge the line bills (extension " TRACE_EXT
                    ", valueIdentifier in " FJ_BUSINESS_ID_SYSTEM ")");
    static const char *const keys[] = {"url", "valueIdentifier", NULL};
    const json_t *v;
    if ((rc = w_only(c, ext, ep, keys, 0)) || (rc = w_str(c, ext, ep, "url", &url)) ||
        (rc = w_obj(c, ext, ep, "valueIdentifier", &v)))
      return rc;
    if (url == NULL || strcmp(url, TRACE_EXT) != 0)
      return w_fail(c, 422, "not-supported", w_path(c, ep, "url", 0),
                    "the extension of a line is " TRACE_EXT);
    Clinlog__V1__Identifier *x = NULL;
    const char *vp = w_path(c, ep, "valueIdentifier", 0);
    if (v == NULL || (rc = w_identifier(c, v, vp, &x)) ||
        strcmp(x->system, FJ_BUSINESS_ID_SYSTEM) || !x->value[0] || x->type[0] || x->assigner[0])
      return rc ? rc
                : w_fail(c, 400, "value", vp,
                         "the charge's business id (system " FJ_BUSINESS_ID_SYSTEM ")");
    b->charge_ids[i] = x->value;
    b->n_charge_ids = i + 1;
  }
  return 0;
}

int w_claim(wctx *c, const json_t *r) {
  static const char *const keys[] = {
      "extension", "identifier", "status",   "type",     "use",     "patient",
      "created",   "insurer",    "provider", "priority", "related", "careTeam",
      "diagnosis", "insurance",  "item",     "total",    NULL};
  static const char *const statuses[] = {"active", "cancelled", NULL};
  static const char *const uses[] = {"claim", NULL};
  static const char *const types[] = {"professional", "institutional", "oral", NULL};
  static const char *const ids[] = {"Patient control number (CLM01)",
                                    "Interchange control number (ISA13)",
                                    "Transaction set control number (ST02)", NULL};
  const char *p = c->root;
  Clinlog__V1__ClaimSubmitted *b = w_alloc(c, sizeof *b);
  if (b == NULL)
    return CL_ENOMEM;
  clinlog__v1__claim_submitted__init(b);
  char **const slots[] = {&b->patient_control_number, &b->interchange_control_number,
                          &b->transaction_set_control_number};
  const json_t *type = json_object_get(r, "type"), *prov = json_object_get(r, "provider"), *rel,
               *ins;
  const char *relp = NULL, *insp = NULL;
  int rc, status, use, t = -1;
  if ((rc = w_only(c, r, p, keys, 1)) || (rc = w_subject(c, r, p, "patient")) ||
      (rc = w_business_id(c, r, p)) || (rc = w_text_ids(c, r, p, ids, slots)) ||
      (rc = w_enum(c, r, p, "status", statuses, &status)) ||
      (rc = w_enum(c, r, p, "use", uses, &use)) ||
      (json_object_get(type, "coding") != NULL &&
       (rc = w_concept_in(c, r, p, "type", CLAIM_TYPE, types, &t))) ||
      (rc = w_instant(c, r, p, "created", &b->submitted_at)) ||
      (rc = w_payer_of(c, r, p, "insurer", &b->payer, (const char **)&b->payer_name)) ||
      (rc = w_only_one(c, r, p, "related", &rel, &relp)) || (rc = claim_diagnoses(c, r, p, b)) ||
      (rc = w_only_one(c, r, p, "insurance", &ins, &insp)) || (rc = claim_items(c, r, p, b)) ||
      (rc = w_money(c, r, p, "total", &b->total)) || (rc = w_each_ext(c, r, p, claim_ext, b)))
    return rc;
  const char *missing = status < 0                ? "status"
                        : use < 0                 ? "use"
                        : type == NULL            ? "type"
                        : b->submitted_at == NULL ? "created"
                        : prov == NULL            ? "provider"
                        : ins == NULL             ? "insurance"
                                                  : NULL;
  if (missing != NULL)
    return w_fail(c, 400, "required", w_path(c, p, missing, 0), "required");
  b->type = (Clinlog__V1__ClaimType)(t + 1);
  /* provider is 1..1: "unknown" is the view's for none */
  const char *pd = json_string_value(json_object_get(prov, "display"));
  if (json_object_size(prov) != 1 || pd == NULL || strcmp(pd, "unknown") != 0)
    if ((rc = w_reference(c, prov, w_path(c, p, "provider", 0), &b->billing_provider)))
      return rc;
  if (rel != NULL) { /* the claim a replacement or void is for (REF*F8) */
    static const char *const rkeys[] = {"relationship", "reference", NULL};
    static const char *const ikeys[] = {"type", "value", NULL};
    const json_t *ref, *rt;
    const char *rp = w_path(c, relp, "reference", 0), *text = NULL;
    if ((rc = w_only(c, rel, relp, rkeys, 0)) || (rc = w_obj(c, rel, relp, "reference", &ref)))
      return rc;
    if (ref == NULL)
      return w_fail(c, 400, "required", rp,
                    "required: the payer claim control number of the claim replaced");
    if ((rc = w_only(c, ref, rp, ikeys, 0)) || (rc = w_obj(c, ref, rp, "type", &rt)) ||
        (rc = w_str(c, ref, rp, "value", (const char **)&b->payer_claim_control_number)))
      return rc;
    if (rt != NULL)
      text = json_string_value(json_object_get(rt, "text"));
    if (text == NULL || strcmp(text, PCCN) != 0 || json_object_size(rt) != 1)
      return w_fail(c, 422, "not-supported", w_path(c, rp, "type", 0),
                    "the claim replaced is named by its payer claim control number (type.text "
                    "\"" PCCN "\")");
    if (b->payer_claim_control_number == NULL)
      return w_fail(c, 400, "required", w_path(c, rp, "value", 0), "required");
  }
  if ((rc = w_member_of(c, ins, insp, b->payer ? b->payer->value : "", &b->member_id)))
    return rc;
  b->claim_id = (char *)c->bid;
  c->when = b->submitted_at;
  if ((rc = w_emit(c, CLINLOG__V1__EVENT__BODY_CLAIM_SUBMITTED, b)))
    return rc;
  return w_as_view(c, r);
}

/* ---- ClaimResponse ----
 *
 *   ClaimResponse
 *     extension     ClaimResponse.decision (R5): claim-decision approved |
 *                   denied | partial | pending (status paid, denied,
 *                   partial, pended), X12 1029 (claim_status_code)
 *     identifier    business id "<claim id>|<CLP07>" (as the views key the
 *                   response; derived); typed by text: CLP07
 *                   (payer_claim_control_number), ISA13
 *     status        active, or cancelled for a reversal (status reversed)
 *     patient, created (adjudicated_at and occurred_at)
 *     insurer.identifier   payer
 *     request       the Claim (claim_id)
 *     item[]        the lines of the Claim's items: traceNumber (REF*6R),
 *                   itemSequence (the charge of that Claim item), noteNumber
 *                   (remarks), adjudication (submitted, eligible, benefit
 *                   amounts; allowedunits; CAS triplets: X12 1033 group,
 *                   CARC reason, amount, and the units as a value entry)
 *     addItem[]     lines the Claim has not: productOrService, modifier,
 *                   servicedDate and the same
 *     adjudication  claim-level CAS triplets
 *     total         submitted (billed), eligible (allowed), benefit (paid),
 *                   memberliability (patient_responsibility)
 *     payment.identifier   trace_number (TRN02)
 *     processNote   remarks: those no line introduces are the claim's
 *     type, use, outcome, disposition, insurance, the payment's type, date
 *     and amount, total deductible/coinsurance/copay: as the views derive
 *     them */

#define X12_1033 "https://codesystem.x12.org/005010/1033"
#define X12_1029 "https://codesystem.x12.org/005010/1029"
#define ADJUDICATION "http://terminology.hl7.org/CodeSystem/adjudication"
#define C4BB "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudication"
#define C4BB_DISCRIMINATOR                                                                         \
  "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudicationDiscriminator"
#define RESP_TRACE_EXT FJ_R5_EXT "ClaimResponse.item.traceNumber"
#define DECISION_EXT FJ_R5_EXT "ClaimResponse.decision"

/* What an adjudication array states: the amounts and the CAS triplets. */
typedef struct adj_read {
  Clinlog__V1__Money *billed, *allowed, *paid, *member;
  const char *units;
  Clinlog__V1__Adjustment **adj;
  size_t n_adj;
} adj_read;

/* The text of a decimal o[key] (NULL if absent). */
static int decimal_text(wctx *c, const json_t *o, const char *p, const char *key,
                        const char **out) {
  const json_t *v = json_object_get(o, key);
  const char *s = json_string_value(v);
  *out = NULL;
  if (v == NULL)
    return 0;
  if (s == NULL || s[0] != FJ_DECIMAL_MARK)
    return w_fail(c, 400, "structure", w_path(c, p, key, 0), "expected a decimal (a JSON number)");
  *out = s + 1;
  return 0;
}

/* One CAS triplet from entry e (category in X12 1033, or unknown). */
static int cas_entry(wctx *c, const json_t *e, const char *ep, const pb_code *cat, adj_read *a) {
  static const char *const groups[] = {"CO", "PR", "OA", "PI", "CR", NULL};
  pb_code *reason;
  Clinlog__V1__Money *amount;
  const char *qty;
  int rc, g = -1;
  if ((rc = w_concept_code(c, e, ep, "reason", &reason)) ||
      (rc = w_money(c, e, ep, "amount", &amount)) || (rc = decimal_text(c, e, ep, "value", &qty)))
    return rc;
  for (int i = 0; cat != NULL && groups[i] != NULL; i++)
    if (!strcmp(cat->code, groups[i]))
      g = i;
  if (cat != NULL && g < 0)
    return w_fail(c, 422, "code-invalid", w_path(c, ep, "category", 0),
                  "'%.16s' is not a CAS group (CO, PR, OA, PI, CR)", cat->code);
  if (qty != NULL && amount != NULL)
    return w_fail(c, 400, "invalid", w_path(c, ep, "value", 0),
                  "an adjustment's units are an entry of their own (amount and value exclude "
                  "each other)");
  /* the units of the triplet just read: the entry after it, same group and reason */
  Clinlog__V1__Adjustment *last = a->n_adj ? a->adj[a->n_adj - 1] : NULL;
  const char *lr = last && last->reason ? last->reason->code : "", *r = reason ? reason->code : "";
  if (qty != NULL && last != NULL && !last->quantity[0] && (int)last->group == g + 1 &&
      !strcmp(lr, r)) {
    last->quantity = (char *)qty;
    return 0;
  }
  if (qty == NULL && amount == NULL && reason == NULL && cat == NULL)
    return 0; /* {category unknown}: a line nothing was reported for */
  Clinlog__V1__Adjustment *x = w_alloc(c, sizeof *x),
                          **more = w_alloc(c, (a->n_adj + 1) * sizeof *more);
  if (x == NULL || more == NULL)
    return CL_ENOMEM;
  clinlog__v1__adjustment__init(x);
  x->group = (Clinlog__V1__AdjustmentGroup)(g + 1);
  x->reason = reason;
  x->amount = amount;
  x->quantity = (char *)(qty ? qty : "");
  if (a->n_adj)
    memcpy(more, a->adj, a->n_adj * sizeof *more);
  more[a->n_adj++] = x;
  a->adj = more;
  return 0;
}

/* o[key], an adjudication (or total) array, into a. `amounts`: the
 * categories of amounts it may hold (NULL-terminated: submitted, eligible,
 * benefit, allowedunits, memberliability); deductible, coinsurance and
 * copay totals are sums the views make (checked against them). */
static int adjudications(wctx *c, const json_t *o, const char *p, const char *key,
                         const char *const *amounts, adj_read *a) {
  static const char *const keys[] = {"category", "reason", "amount", "value", NULL};
  const json_t *arr;
  size_t n;
  int rc = w_arr(c, o, p, key, &arr, &n);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    const json_t *e = json_array_get(arr, i), *cat = json_object_get(e, "category");
    const char *ep = w_path(c, w_path(c, p, key, 0), NULL, (long)i);
    pb_code *k = NULL;
    if (!json_is_object(e))
      return w_fail(c, 400, "structure", ep, "expected an object");
    if ((rc = w_only(c, e, ep, keys, 0)))
      return rc;
    if (cat == NULL)
      return w_fail(c, 400, "required", w_path(c, ep, "category", 0), "required");
    if (json_object_get(cat, "coding") != NULL && (rc = w_concept_code(c, e, ep, "category", &k)))
      return rc;
    if (k == NULL || !strcmp(k->system, X12_1033)) {
      rc = cas_entry(c, e, ep, k, a);
      continue;
    }
    size_t j = 0;
    while (amounts[j] != NULL && strcmp(amounts[j], k->code) != 0)
      j++;
    int ours = amounts[j] != NULL &&
               !strcmp(k->system, !strcmp(k->code, "allowedunits")      ? C4BB_DISCRIMINATOR
                                  : !strcmp(k->code, "memberliability") ? C4BB
                                                                        : ADJUDICATION);
    if (!ours && (!strcmp(k->code, "deductible") || !strcmp(k->code, "coinsurance") ||
                  !strcmp(k->code, "copay")))
      continue; /* the sums of the PR triplets: the views check them */
    if (!ours)
      return w_fail(c, 422, "not-supported", w_path(c, ep, "category", 0),
                    "the entries written are CAS triplets (X12 1033) and the amounts the event "
                    "holds");
    if (!strcmp(k->code, "allowedunits")) {
      rc = decimal_text(c, e, ep, "value", &a->units);
      continue;
    }
    Clinlog__V1__Money **slot = !strcmp(k->code, "submitted")  ? &a->billed
                                : !strcmp(k->code, "eligible") ? &a->allowed
                                : !strcmp(k->code, "benefit")  ? &a->paid
                                                               : &a->member;
    if (*slot != NULL)
      return w_fail(c, 422, "not-supported", ep, "one %s amount can be written", k->code);
    rc = w_money(c, e, ep, "amount", slot);
  }
  return rc;
}

/* processNote[]: the remark of each (its remark-code extension). */
static int remarks(wctx *c, const json_t *r, const char *p, pb_code ***out, size_t *n) {
  static const char *const keys[] = {"extension", "number", "type", "text", NULL};
  const json_t *a;
  int rc = w_arr(c, r, p, "processNote", &a, n);
  if (rc || *n == 0)
    return rc;
  if ((*out = w_alloc(c, *n * sizeof **out)) == NULL)
    return CL_ENOMEM;
  for (size_t i = 0; i < *n; i++) {
    const json_t *note = json_array_get(a, i), *ext, *v;
    const char *np = w_path(c, w_path(c, p, "processNote", 0), NULL, (long)i), *ep = NULL, *url;
    if (!json_is_object(note))
      return w_fail(c, 400, "structure", np, "expected an object");
    if ((rc = w_only(c, note, np, keys, 0)) ||
        (rc = w_only_one(c, note, np, "extension", &ext, &ep)))
      return rc;
    if (ext == NULL || (url = json_string_value(json_object_get(ext, "url"))) == NULL ||
        strcmp(url, FJ_CLINLOG_EXT "remark-code") != 0 ||
        (v = json_object_get(ext, "valueCoding")) == NULL)
      return w_fail(c, 400, "required", w_path(c, np, "extension", 0),
                    "required: the remark (extension " FJ_CLINLOG_EXT "remark-code, valueCoding)");
    if ((rc = w_coding(c, v, w_path(c, ep, "valueCoding", 0), &(*out)[i])))
      return rc;
  }
  return 0;
}

/* An integer as parsed (marked text) or as the views' mapper holds it; 0
 * for anything else. */
static long int_of(const json_t *v) {
  const char *s = json_string_value(v);
  if (json_is_integer(v))
    return (long)json_integer_value(v);
  return s && s[0] == FJ_DECIMAL_MARK ? strtol(s + 1, NULL, 10) : 0;
}

/* The line's remarks: noteNumber[] into processNote (notes). */
static int note_numbers(wctx *c, const json_t *it, const char *ip, pb_code **notes, size_t nnotes,
                        unsigned char *used, Clinlog__V1__LineAdjudication *l) {
  const json_t *a;
  size_t n;
  int rc = w_arr(c, it, ip, "noteNumber", &a, &n);
  if (rc || n == 0)
    return rc;
  if ((l->remarks = w_alloc(c, n * sizeof *l->remarks)) == NULL)
    return CL_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    long k = int_of(json_array_get(a, i));
    if (k < 1 || (size_t)k > nnotes)
      return w_fail(c, 400, "value", w_path(c, w_path(c, ip, "noteNumber", 0), NULL, (long)i),
                    "the number of a processNote");
    l->remarks[l->n_remarks++] = notes[k - 1];
    used[k - 1] = 1;
  }
  return 0;
}

/* The charge billed by item `seq` of the Claim claim_id (fetched), or "". */
static int charge_of(wctx *c, const char *claim_id, long seq, const char *sp, char **out) {
  char id[CL_FHIR_ID_MAX];
  json_t *claim = NULL;
  cl_fhir_id("Claim", c->patient_id, claim_id, id);
  *out = "";
  int rc = w_fetch(c, "Claim", id, &claim);
  if (rc == CL_ENOTFOUND)
    return 0; /* none known: the line control number matches (or the view differs) */
  if (rc)
    return rc;
  const json_t *items = json_object_get(claim, "item"), *it = NULL;
  for (size_t i = 0; i < json_array_size(items); i++)
    if (int_of(json_object_get(json_array_get(items, i), "sequence")) == seq)
      it = json_array_get(items, i);
  const json_t *ext = json_array_get(json_object_get(it, "extension"), 0);
  const char *v =
      json_string_value(json_object_get(json_object_get(ext, "valueIdentifier"), "value"));
  if (v != NULL && (*out = w_printf(c, "%s", v)) == NULL)
    rc = CL_ENOMEM;
  json_decref(claim);
  if (rc == 0 && v == NULL)
    return w_fail(c, 422, "value", sp, "the Claim has no line %ld", seq);
  return rc;
}

/* item[] (add 0) or addItem[] (add 1) into b->lines. */
static int lines(wctx *c, const json_t *r, const char *p, int add, pb_code **notes, size_t nnotes,
                 unsigned char *used, Clinlog__V1__ClaimAdjudicated *b) {
  static const char *const ikeys[] = {"extension", "itemSequence", "noteNumber", "adjudication",
                                      NULL};
  static const char *const akeys[] = {"extension",  "productOrService", "modifier", "servicedDate",
                                      "noteNumber", "adjudication",     NULL};
  static const char *const amounts[] = {"submitted", "eligible", "benefit", "allowedunits", NULL};
  const char *key = add ? "addItem" : "item";
  const json_t *a;
  size_t n;
  int rc = w_arr(c, r, p, key, &a, &n);
  if (rc || n == 0)
    return rc;
  Clinlog__V1__LineAdjudication **more = w_alloc(c, (b->n_lines + n) * sizeof *more);
  if (more == NULL)
    return CL_ENOMEM;
  if (b->n_lines)
    memcpy(more, b->lines, b->n_lines * sizeof *more);
  b->lines = more;
  for (size_t i = 0; i < n; i++) {
    const json_t *it = json_array_get(a, i), *ext, *v;
    const char *ip = w_path(c, w_path(c, p, key, 0), NULL, (long)i), *ep = NULL;
    Clinlog__V1__LineAdjudication *l = w_alloc(c, sizeof *l);
    if (l == NULL)
      return CL_ENOMEM;
    clinlog__v1__line_adjudication__init(l);
    if (!json_is_object(it))
      return w_fail(c, 400, "structure", ip, "expected an object");
    adj_read ar = {0};
    if ((rc = w_only(c, it, ip, add ? akeys : ikeys, 0)) ||
        (rc = w_only_one(c, it, ip, "extension", &ext, &ep)) ||
        (rc = note_numbers(c, it, ip, notes, nnotes, used, l)) ||
        (rc = adjudications(c, it, ip, "adjudication", amounts, &ar)))
      return rc;
    if (ext != NULL) { /* REF*6R as returned */
      static const char *const keys[] = {"url", "valueIdentifier", NULL};
      static const char *const vkeys[] = {"value", NULL};
      const char *url = json_string_value(json_object_get(ext, "url")), *vp;
      if ((rc = w_only(c, ext, ep, keys, 0)))
        return rc;
      if (url == NULL || strcmp(url, RESP_TRACE_EXT) != 0)
        return w_fail(c, 422, "not-supported", w_path(c, ep, "url", 0),
                      "the extension of a line is " RESP_TRACE_EXT);
      vp = w_path(c, ep, "valueIdentifier", 0);
      if ((v = json_object_get(ext, "valueIdentifier")) == NULL ||
          (rc = w_only(c, v, vp, vkeys, 0)) ||
          (rc = w_str(c, v, vp, "value", (const char **)&l->line_control_number)) ||
          l->line_control_number == NULL)
        return rc ? rc : w_fail(c, 400, "required", vp, "required: the line control number");
    }
    l->billed = ar.billed;
    l->allowed = ar.allowed;
    l->paid = ar.paid;
    l->units_paid = (char *)(ar.units ? ar.units : "");
    l->adjustments = ar.adj;
    l->n_adjustments = ar.n_adj;
    if (add) {
      const json_t *mods;
      size_t nm;
      const json_t *ps = json_object_get(it, "productOrService");
      if ((ps != NULL && json_object_get(ps, "coding") != NULL &&
           (rc = w_concept_code(c, it, ip, "productOrService", &l->procedure))) ||
          (rc = w_date(c, it, ip, "servicedDate", (const char **)&l->service_date)) ||
          (rc = w_arr(c, it, ip, "modifier", &mods, &nm)))
        return rc;
      if (nm && (l->modifiers = w_alloc(c, nm * sizeof *l->modifiers)) == NULL)
        return CL_ENOMEM;
      for (size_t k = 0; k < nm; k++) {
        pb_code *mc;
        json_t *wrap = json_pack("{s:O}", "m", json_array_get(mods, k));
        char name[32];
        snprintf(name, sizeof name, "modifier[%zu]", k);
        rc = wrap == NULL ? cl_err_set(c->err, CL_ENOMEM, "out of memory")
                          : w_concept_code(c, wrap, ip, "m", &mc);
        json_decref(wrap);
        if (rc == CL_EMALFORMED) /* say it of the modifier */
          return w_fail(c, c->fe ? c->fe->status : 400, "value", w_path(c, ip, name, 0),
                        "a modifier is one coding");
        if (rc)
          return rc;
        l->modifiers[l->n_modifiers++] = mc ? mc->code : "";
      }
      if (l->service_date == NULL)
        l->service_date = "";
    } else {
      long seq = int_of(json_object_get(it, "itemSequence"));
      const char *sp = w_path(c, ip, "itemSequence", 0);
      if (seq < 1)
        return w_fail(c, 400, "required", sp, "required: the sequence of the Claim's line");
      if ((rc = charge_of(c, b->claim_id, seq, sp, &l->charge_id)))
        return rc;
    }
    if (l->line_control_number == NULL)
      l->line_control_number = "";
    b->lines[b->n_lines++] = l;
  }
  return 0;
}

static int decision_ext(wctx *c, const json_t *e, const char *ep, const char *url, void *ctx) {
  static const char *const keys[] = {"url", "valueCodeableConcept", NULL};
  static const char *const ckeys[] = {"coding", NULL};
  static const char *const decisions[] = {"approved", "denied", "partial", "pending", NULL};
  const char **out = ctx; /* [0] the decision, [1] CLP02 */
  const json_t *v, *codings;
  size_t n;
  int rc;
  if (strcmp(url, DECISION_EXT) != 0)
    return w_fail(c, 422, "not-supported", w_path(c, ep, "url", 0),
                  "the extension written is " DECISION_EXT);
  const char *vp = w_path(c, ep, "valueCodeableConcept", 0);
  if ((rc = w_only(c, e, ep, keys, 0)) || (rc = w_obj(c, e, ep, "valueCodeableConcept", &v)))
    return rc;
  if (v == NULL)
    return w_fail(c, 400, "required", vp, "required");
  if ((rc = w_only(c, v, vp, ckeys, 0)) || (rc = w_arr(c, v, vp, "coding", &codings, &n)))
    return rc;
  for (size_t i = 0; i < n; i++) {
    const char *cp = w_path(c, w_path(c, vp, "coding", 0), NULL, (long)i);
    pb_code *k;
    if ((rc = w_coding(c, json_array_get(codings, i), cp, &k)))
      return rc;
    int d = -1;
    for (int j = 0; decisions[j] != NULL; j++)
      if (!strcmp(k->code, decisions[j]))
        d = j;
    if (!strcmp(k->system, "http://hl7.org/fhir/claim-decision") && d >= 0 && out[0] == NULL)
      out[0] = decisions[d];
    else if (!strcmp(k->system, X12_1029) && k->code[0] && out[1] == NULL)
      out[1] = k->code;
    else
      return w_fail(c, 422, "code-invalid", cp,
                    "a decision is a code of http://hl7.org/fhir/claim-decision (approved, "
                    "denied, partial, pending) and CLP02 one of " X12_1029);
  }
  return 0;
}

int w_claim_response(wctx *c, const json_t *r) {
  static const char *const keys[] = {
      "extension", "identifier", "status",      "type",        "use",  "patient", "created",
      "insurer",   "request",    "outcome",     "disposition", "item", "addItem", "adjudication",
      "total",     "payment",    "processNote", "insurance",   NULL};
  static const char *const statuses[] = {"active", "cancelled", NULL};
  static const char *const ids[] = {"Payer claim control number (CLP07)",
                                    "Interchange control number (ISA13)", NULL};
  static const char *const totals[] = {"submitted", "eligible", "benefit", "memberliability", NULL};
  const char *p = c->root, *dec[2] = {NULL, NULL}, *insurer_name = NULL;
  Clinlog__V1__ClaimAdjudicated *b = w_alloc(c, sizeof *b);
  if (b == NULL)
    return CL_ENOMEM;
  clinlog__v1__claim_adjudicated__init(b);
  char **const slots[] = {&b->payer_claim_control_number, &b->interchange_control_number};
  pb_code **notes = NULL;
  size_t nnotes = 0;
  const json_t *pay;
  adj_read tot = {0}, adj = {0};
  int rc, status;
  if ((rc = w_only(c, r, p, keys, 1)) || (rc = w_subject(c, r, p, "patient")) ||
      (rc = w_text_ids(c, r, p, ids, slots)) ||
      (rc = w_enum(c, r, p, "status", statuses, &status)) ||
      (rc = w_instant(c, r, p, "created", &b->adjudicated_at)) ||
      (rc = w_payer_of(c, r, p, "insurer", &b->payer, &insurer_name)) ||
      (rc = w_ref_bid(c, r, p, "request", "Claim", (const char **)&b->claim_id)) ||
      (rc = w_each_ext(c, r, p, decision_ext, dec)))
    return rc;
  if (status < 0 || b->adjudicated_at == NULL || b->claim_id == NULL)
    return w_fail(c, 400, "required",
                  w_path(c, p,
                         status < 0          ? "status"
                         : b->adjudicated_at ? "request"
                                             : "created",
                         0),
                  "required");
  if ((rc = remarks(c, r, p, &notes, &nnotes)))
    return rc;
  unsigned char *used = w_alloc(c, nnotes + 1);
  if (used == NULL || (rc = lines(c, r, p, 0, notes, nnotes, used, b)) ||
      (rc = lines(c, r, p, 1, notes, nnotes, used, b)) ||
      (rc = adjudications(c, r, p, "adjudication", totals, &adj)) ||
      (rc = adjudications(c, r, p, "total", totals, &tot)) ||
      (rc = w_obj(c, r, p, "payment", &pay)))
    return used == NULL ? CL_ENOMEM : rc;
  /* the claim's remarks: all the notes up to the last no line introduces */
  size_t k = nnotes;
  while (k > 0 && used[k - 1])
    k--;
  b->remarks = notes;
  b->n_remarks = k;
  b->adjustments = adj.adj;
  b->n_adjustments = adj.n_adj;
  if (adj.billed || adj.allowed || adj.paid || adj.member)
    return w_fail(c, 422, "not-supported", w_path(c, p, "adjudication", 0),
                  "the claim's amounts are written in total; adjudication holds CAS triplets");
  b->billed = tot.billed;
  b->allowed = tot.allowed;
  b->paid = tot.paid;
  b->patient_responsibility = tot.member;
  if (tot.n_adj)
    return w_fail(c, 422, "not-supported", w_path(c, p, "total", 0),
                  "CAS triplets are written in adjudication");
  if (status == 1) {
    b->status = CLINLOG__V1__CLAIM_STATUS__CLAIM_STATUS_REVERSED;
  } else if (dec[0] != NULL) {
    b->status = !strcmp(dec[0], "approved")  ? CLINLOG__V1__CLAIM_STATUS__CLAIM_STATUS_PAID
                : !strcmp(dec[0], "denied")  ? CLINLOG__V1__CLAIM_STATUS__CLAIM_STATUS_DENIED
                : !strcmp(dec[0], "partial") ? CLINLOG__V1__CLAIM_STATUS__CLAIM_STATUS_PARTIAL
                                             : CLINLOG__V1__CLAIM_STATUS__CLAIM_STATUS_PENDED;
  }
  b->claim_status_code = (char *)(dec[1] ? dec[1] : "");
  b->trace_number = "";
  (void)insurer_name; /* the Claim's display: checked against the view */
  if (pay != NULL) {  /* payment.identifier: the trace number */
    static const char *const pkeys[] = {"type", "date", "amount", "identifier", NULL};
    static const char *const ikeys[] = {"type", "value", NULL};
    const json_t *pid;
    const char *pp = w_path(c, p, "payment", 0), *ip = w_path(c, pp, "identifier", 0), *text;
    if ((rc = w_only(c, pay, pp, pkeys, 0)) || (rc = w_obj(c, pay, pp, "identifier", &pid)))
      return rc;
    if (pid != NULL) {
      if ((rc = w_only(c, pid, ip, ikeys, 0)) ||
          (rc = w_str(c, pid, ip, "value", (const char **)&b->trace_number)))
        return rc;
      text = json_string_value(json_object_get(json_object_get(pid, "type"), "text"));
      if (text == NULL || strcmp(text, "Check or EFT trace number (TRN02)") != 0 ||
          b->trace_number == NULL)
        return w_fail(c, 422, "not-supported", ip,
                      "the payment's identifier is the trace number (type.text \"Check or EFT "
                      "trace number (TRN02)\", value)");
    }
  }
  /* the business id: the views key a response by claim and CLP07 */
  const char *bid = b->payer_claim_control_number[0]
                        ? w_printf(c, "%s|%s", b->claim_id, b->payer_claim_control_number)
                        : b->claim_id;
  if (bid == NULL)
    return CL_ENOMEM;
  if (strlen(bid) >= sizeof((cl_fhirw_mapped *)0)->bid)
    return w_fail(c, 422, "not-supported", p, "a claim id and CLP07 of 128 bytes at most");
  const json_t *idents = json_object_get(r, "identifier");
  for (size_t i = 0; i < json_array_size(idents); i++) {
    const json_t *x = json_array_get(idents, i);
    const char *sys = json_string_value(json_object_get(x, "system")),
               *val = json_string_value(json_object_get(x, "value"));
    if (sys != NULL && !strcmp(sys, FJ_BUSINESS_ID_SYSTEM) && (val == NULL || strcmp(val, bid)))
      return w_fail(c, 422, "invalid",
                    w_path(c, w_path(c, w_path(c, p, "identifier", 0), NULL, (long)i), "value", 0),
                    "a response's business id is its claim's and CLP07: %.140s", bid);
  }
  c->bid = bid;
  c->when = b->adjudicated_at;
  if ((rc = w_emit(c, CLINLOG__V1__EVENT__BODY_CLAIM_ADJUDICATED, b)))
    return rc;
  return w_as_view(c, r);
}

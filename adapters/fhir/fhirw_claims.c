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

/* One of a, which must be an array of one object, at p[0]: *e (NULL if
 * the array is absent). */
static int only_one(wctx *c, const json_t *r, const char *p, const char *key, const json_t **e,
                    const char **ep) {
  const json_t *a;
  size_t n;
  int rc = w_arr(c, r, p, key, &a, &n);
  *e = NULL;
  if (rc || n == 0)
    return rc;
  const char *kp = w_path(c, p, key, 0);
  if (n > 1)
    return w_fail(c, 422, "not-supported", w_path(c, kp, NULL, 1), "one %s can be written", key);
  *ep = w_path(c, kp, NULL, 0);
  *e = json_array_get(a, 0);
  if (!json_is_object(*e))
    return w_fail(c, 400, "structure", *ep, "expected an object");
  return 0;
}

/* The payer as the views write it: {identifier, display} (no literal
 * reference: the payer is no resource of this server). */
static int payer_of(wctx *c, const json_t *r, const char *p, const char *key,
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
static int member_of(wctx *c, const json_t *ins, const char *ip, const char *payer_id,
                     char **member) {
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
    if ((rc = only_one(c, it, ip, "extension", &ext, &ep)))
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
      (rc = payer_of(c, r, p, "insurer", &b->payer, (const char **)&b->payer_name)) ||
      (rc = only_one(c, r, p, "related", &rel, &relp)) || (rc = claim_diagnoses(c, r, p, b)) ||
      (rc = only_one(c, r, p, "insurance", &ins, &insp)) || (rc = claim_items(c, r, p, b)) ||
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
  if ((rc = member_of(c, ins, insp, b->payer ? b->payer->value : "", &b->member_id)))
    return rc;
  b->claim_id = (char *)c->bid;
  c->when = b->submitted_at;
  if ((rc = w_emit(c, CLINLOG__V1__EVENT__BODY_CLAIM_SUBMITTED, b)))
    return rc;
  return w_as_view(c, r);
}

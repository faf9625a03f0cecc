/* Claims and remittances -> FHIR R4 (the claim half of the billing
 * mappings; map_billing.c has the overview, the builders and Coverage):
 *
 *   ClaimSubmitted      Claim (837P/I/D); its items are read from the
 *                       ChargeItems of its charge_ids, in line order; the
 *                       Coverage it names is made if none exists yet
 *   ClaimAdjudicated    ClaimResponse (835 CLP/CAS/SVC), one per claim and
 *                       payer claim control number (CLP07): a reversal
 *                       (CLP02 22) makes a new version of the response it
 *                       reverses, status cancelled
 *   ClaimAppealed       Task (intent order, code claim-appeal, focus Claim)
 *   PaymentPosted       PaymentReconciliation, one per remittance (payer +
 *                       TRN02 trace number) of the patient, a detail per
 *                       posting; patient payments stand alone */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/fhir/map_billing_int.h"

/* X12 code lists the claim events use (005010 implementation guides). */
static const lookup cas01[] = {/* 1033 Claim Adjustment Group Code */
                               {"CO", "Contractual Obligations"},
                               {"CR", "Correction and Reversals"},
                               {"OA", "Other adjustments"},
                               {"PI", "Payor Initiated Reductions"},
                               {"PR", "Patient Responsibility"}};

static const lookup clp02[] = {/* 1029 Claim Status Code */
                               {"1", "Processed as Primary"},
                               {"2", "Processed as Secondary"},
                               {"3", "Processed as Tertiary"},
                               {"4", "Denied"},
                               {"19", "Processed as Primary, Forwarded to Additional Payer(s)"},
                               {"20", "Processed as Secondary, Forwarded to Additional Payer(s)"},
                               {"21", "Processed as Tertiary, Forwarded to Additional Payer(s)"},
                               {"22", "Reversal of Previous Payment"},
                               {"23", "Not Our Claim, Forwarded to Additional Payer(s)"},
                               {"25", "Predetermination Pricing Only - No Payment"}};

static const lookup bpr04[] = {/* 591 Payment Method Code */
                               {"ACH", "Automated Clearing House (ACH)"},
                               {"BOP", "Financial Institution Option"},
                               {"CHK", "Check"},
                               {"FWT", "Federal Reserve Funds/Wire Transfer - Nonrepetitive"},
                               {"NON", "Non-Payment Data"}};

static const lookup clm05_3[] = {/* 1325 Claim Frequency Type Code */
                                 {"1", "Original claim"},
                                 {"7", "Replacement of prior claim"},
                                 {"8", "Void/cancel of prior claim"}};

/* ---- ClaimSubmitted ---- */

/* The first value under `key` of the extension `url` of `res` (borrowed). */
static json_t *ext_value(json_t *res, const char *url, const char *key) {
  json_t *exts = json_object_get(res, "extension");
  for (size_t i = 0; i < json_array_size(exts); i++) {
    json_t *e = json_array_get(exts, i);
    const char *u = json_string_value(json_object_get(e, "url"));
    if (u != NULL && strcmp(u, url) == 0)
      return json_object_get(e, key);
  }
  return NULL;
}

static const char *str_at(json_t *o, const char *a, const char *b) {
  json_t *v = json_object_get(o, a);
  if (json_is_array(v))
    v = json_array_get(v, 0);
  return json_string_value(b != NULL ? json_object_get(v, b) : v);
}

static int same_str(const char *a, const char *b) {
  return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Two CodeableConcepts name the same diagnosis: first codings with the
 * same system and code (or, uncoded, the same text). */
static int same_concept(json_t *a, json_t *b) {
  const char *ca = str_at(a, "coding", "code"), *cb = str_at(b, "coding", "code");
  if (ca != NULL || cb != NULL)
    return same_str(ca, cb) &&
           same_str(str_at(a, "coding", "system"), str_at(b, "coding", "system"));
  return same_str(json_string_value(json_object_get(a, "text")),
                  json_string_value(json_object_get(b, "text")));
}

/* The sequence of `dx` in Claim.diagnosis, appending it if absent (a line
 * points only at claim diagnoses, as SV107 points into HI). */
static json_int_t diagnosis_seq(json_t *diags, json_t *dx) {
  for (size_t i = 0; i < json_array_size(diags); i++) {
    json_t *d = json_array_get(diags, i);
    if (same_concept(json_object_get(d, "diagnosisCodeableConcept"), dx))
      return json_integer_value(json_object_get(d, "sequence"));
  }
  json_int_t seq = (json_int_t)json_array_size(diags) + 1;
  json_array_append_new(diags,
                        json_pack("{s:I,s:O}", "sequence", seq, "diagnosisCodeableConcept", dx));
  return seq;
}

static json_int_t care_team_seq(json_t *team, json_t *provider) {
  for (size_t i = 0; i < json_array_size(team); i++) {
    json_t *t = json_array_get(team, i);
    if (json_equal(json_object_get(t, "provider"), provider))
      return json_integer_value(json_object_get(t, "sequence"));
  }
  json_int_t seq = (json_int_t)json_array_size(team) + 1;
  json_array_append_new(
      team, json_pack("{s:I,s:O,s:o}", "sequence", seq, "provider", provider, "role",
                      fj_concept_lit("http://terminology.hl7.org/CodeSystem/claimcareteamrole",
                                     "primary", "Primary provider")));
  return seq;
}

/* Claim.item `seq` from the ChargeItem of charge `charge_id` (ci: NULL if
 * there is none). */
static json_t *claim_item(json_int_t seq, const char *charge_id, json_t *ci, json_t *diags,
                          json_t *team, json_t *claim_encounter) {
  json_t *it = json_object();
  /* Claim.item.traceNumber (R5): the charge the line bills (REF*6R) */
  fj_set_one(
      it, "extension",
      fj_ext(FJ_R5_EXT "Claim.item.traceNumber", "valueIdentifier", fj_business_id(charge_id)));
  json_object_set_new(it, "sequence", json_integer(seq));
  json_t *perf = json_object_get(json_array_get(json_object_get(ci, "performer"), 0), "actor");
  if (perf != NULL)
    json_object_set_new(it, "careTeamSequence", json_pack("[I]", care_team_seq(team, perf)));
  json_t *reasons = json_object_get(ci, "reason"), *ptrs = json_array();
  for (size_t i = 0; i < json_array_size(reasons); i++)
    json_array_append_new(ptrs, json_integer(diagnosis_seq(diags, json_array_get(reasons, i))));
  fj_set(it, "diagnosisSequence", ptrs);
  json_t *rev = ext_value(ci, FJ_CLINLOG_EXT "revenue-code", "valueCoding");
  if (rev != NULL)
    json_object_set_new(it, "revenue", json_pack("{s:[O]}", "coding", rev));
  /* productOrService is 1..1: a charge not on record is unknown */
  json_t *code = json_object_get(ci, "code");
  json_object_set_new(it, "productOrService", code != NULL ? json_deep_copy(code) : fj_unknown());
  json_t *mods = json_array(), *exts = json_object_get(ci, "extension");
  for (size_t i = 0; i < json_array_size(exts); i++) {
    json_t *e = json_array_get(exts, i);
    if (same_str(json_string_value(json_object_get(e, "url")), FJ_CLINLOG_EXT "procedure-modifier"))
      json_array_append_new(mods,
                            json_pack("{s:[O]}", "coding", json_object_get(e, "valueCoding")));
  }
  fj_set(it, "modifier", mods);
  json_t *occ = json_object_get(ci, "occurrenceDateTime"),
         *per = json_object_get(ci, "occurrencePeriod");
  if (occ != NULL)
    json_object_set(it, "servicedDate", occ);
  else if (per != NULL)
    json_object_set(it, "servicedPeriod", per);
  json_t *pos = ext_value(ci, FJ_CLINLOG_EXT "place-of-service", "valueCoding");
  if (pos != NULL)
    json_object_set_new(it, "locationCodeableConcept", json_pack("{s:[O]}", "coding", pos));
  json_t *qty = json_object_get(ci, "quantity"), *net = json_object_get(ci, "priceOverride");
  if (qty != NULL)
    json_object_set(it, "quantity", qty);
  /* unitPrice only when the line charge divides exactly by whole units
   * (net = quantity x unitPrice) */
  int64_t minor, units;
  int digits, ud;
  if (net != NULL && qty != NULL && mb_money_minor(net, &minor, &digits) &&
      mb_money_minor(qty, &units, &ud) && ud == 0 && units > 0 && minor % units == 0)
    json_object_set_new(
        it, "unitPrice",
        mb_money(minor / units, json_string_value(json_object_get(net, "currency"))));
  if (net != NULL)
    json_object_set(it, "net", net);
  json_t *enc = json_object_get(ci, "context");
  if (enc == NULL)
    enc = claim_encounter;
  if (enc != NULL)
    json_object_set_new(it, "encounter", json_pack("[O]", enc));
  json_t *ndc = json_object_get(ci, "productCodeableConcept");
  if (ndc != NULL) { /* the drug of a drug line (LIN*N4 / CTP) */
    json_t *d = json_pack("{s:i,s:O}", "sequence", 1, "productOrService", ndc);
    json_t *dq = ext_value(ci, FJ_CLINLOG_EXT "drug-quantity", "valueQuantity");
    if (dq != NULL)
      json_object_set(d, "quantity", dq);
    json_object_set_new(it, "detail", json_pack("[o]", d));
  }
  return it;
}

static json_t *claim_type(Clinlog__V1__ClaimType t) {
  const char *code, *display;
  switch (t) {
  case CLINLOG__V1__CLAIM_TYPE__CLAIM_TYPE_PROFESSIONAL:
    code = "professional";
    display = "Professional";
    break;
  case CLINLOG__V1__CLAIM_TYPE__CLAIM_TYPE_INSTITUTIONAL:
    code = "institutional";
    display = "Institutional";
    break;
  case CLINLOG__V1__CLAIM_TYPE__CLAIM_TYPE_DENTAL:
    code = "oral";
    display = "Oral";
    break;
  default:
    return NULL;
  }
  return fj_concept_lit("http://terminology.hl7.org/CodeSystem/claim-type", code, display);
}

int mb_claim_submitted(cl_fhir_map *m, const Clinlog__V1__ClaimSubmitted *b, cl_err *err) {
  if (!fj_has(b->claim_id))
    return 0;
  /* the membership billed: the Coverage eligibility made, or a new one
   * (the provider's record of it) */
  coverage_in in = {b->payer, b->payer_name, b->member_id, "active", NULL, NULL, NULL, NULL};
  json_t *cov;
  int rc = mb_coverage_put(m, &in, 1, &cov, err);
  if (rc < 0)
    return rc;
  if (cov == NULL) /* insurance.coverage is 1..1: the payer by name */
    cov = mb_or_unknown_ref(mb_payer_ref(NULL, b->payer_name));

  json_t *diags = json_array(), *team = json_array(), *items = json_array();
  for (size_t i = 0; i < b->n_diagnoses; i++) {
    json_t *dx = fj_concept_code(b->diagnoses[i]);
    if (dx == NULL)
      continue;
    json_t *d = json_pack("{s:I,s:o}", "sequence", (json_int_t)json_array_size(diags) + 1,
                          "diagnosisCodeableConcept", dx);
    if (json_array_size(diags) == 0) /* HI ABK: the principal one first */
      json_object_set_new(
          d, "type",
          json_pack("[o]", fj_concept_lit("http://terminology.hl7.org/CodeSystem/ex-diagnosistype",
                                          "principal", "Principal Diagnosis")));
    json_array_append_new(diags, d);
  }
  json_t *claim_enc = cl_fhir_pref(m, "Encounter", b->encounter_id);
  for (size_t i = 0; i < b->n_charge_ids; i++) {
    if (!fj_has(b->charge_ids[i]))
      continue;
    char cid[CL_FHIR_ID_MAX];
    cl_fhir_pid(m, "ChargeItem", b->charge_ids[i], cid);
    json_t *ci = NULL;
    rc = cl_fhir_map_get(m, "ChargeItem", cid, &ci, err);
    if (rc < 0 && rc != CL_ENOTFOUND)
      goto fail;
    rc = 0;
    json_array_append_new(items, claim_item((json_int_t)json_array_size(items) + 1,
                                            b->charge_ids[i], ci, diags, team, claim_enc));
    json_decref(ci);
  }

  char id[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, "Claim", b->claim_id, id);
  json_t *c = cl_fhir_new("Claim", id);
  json_t *exts = json_array();
  fj_push(exts,
          fj_ext(FJ_CLINLOG_EXT "claim-facility-code", "valueCoding", fj_coding(b->facility_type)));
  fj_push(exts, fj_ext(FJ_CLINLOG_EXT "claim-frequency", "valueCoding",
                       X12("1325", clm05_3, b->claim_frequency_code)));
  fj_set(c, "extension", exts);
  json_t *ids = json_array();
  fj_push(ids, fj_business_id(b->claim_id));
  fj_push(ids, fj_identifier_text("Patient control number (CLM01)", b->patient_control_number));
  fj_push(ids,
          fj_identifier_text("Interchange control number (ISA13)", b->interchange_control_number));
  fj_push(ids, fj_identifier_text("Transaction set control number (ST02)",
                                  b->transaction_set_control_number));
  fj_set(c, "identifier", ids);
  /* a void (CLM05-3 8) cancels the claim it is sent for */
  int is_void = fj_has(b->claim_frequency_code) && strcmp(b->claim_frequency_code, "8") == 0;
  json_object_set_new(c, "status", json_string(is_void ? "cancelled" : "active"));
  json_object_set_new(c, "type", fj_or_unknown(claim_type(b->type)));
  json_object_set_new(c, "use", json_string("claim"));
  json_object_set_new(c, "patient", mb_patient(m));
  json_object_set_new(c, "created", cl_fhir_when(m, b->submitted_at));
  fj_set(c, "insurer", mb_payer_ref(b->payer, b->payer_name));
  /* provider is 1..1: the billing provider (2010AA) */
  json_object_set_new(c, "provider", mb_or_unknown_ref(fj_reference(b->billing_provider)));
  json_object_set_new(
      c, "priority",
      fj_concept_lit("http://terminology.hl7.org/CodeSystem/processpriority", "normal", "Normal"));
  if (fj_has(b->payer_claim_control_number)) /* REF*F8: the claim a 7 or 8 replaces */
    fj_set_one(c, "related",
               json_pack("{s:o,s:o}", "relationship",
                         fj_concept_lit(
                             "http://terminology.hl7.org/CodeSystem/ex-relatedclaimrelationship",
                             "prior", "Prior Claim"),
                         "reference",
                         fj_identifier_text("Payer claim control number (REF*F8)",
                                            b->payer_claim_control_number)));
  fj_set(c, "careTeam", team);
  fj_set(c, "diagnosis", diags);
  json_object_set_new(c, "insurance",
                      json_pack("[{s:i,s:b,s:o}]", "sequence", 1, "focal", 1, "coverage", cov));
  fj_set(c, "item", items);
  fj_set(c, "total", fj_money(b->total));
  json_decref(claim_enc);
  return cl_fhir_map_put(m, c, err);
fail:
  json_decref(claim_enc);
  json_decref(items);
  json_decref(team);
  json_decref(diags);
  json_decref(cov);
  return rc;
}

/* ---- ClaimAdjudicated ---- */

static json_t *adj_entry(const char *system, const char *code, const char *display,
                         json_t *amount) {
  return json_pack("{s:o,s:o}", "category", fj_concept_lit(system, code, display), "amount",
                   amount);
}

/* CAS triplets as adjudication entries: category the CAS group, reason the
 * CARC, amount; the adjusted units (CAS04) as an entry of their own, since
 * amount and value are mutually exclusive. */
static void push_adjustments(json_t *adj, Clinlog__V1__Adjustment *const *a, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const char *g = NULL;
    switch (a[i]->group) {
    case CLINLOG__V1__ADJUSTMENT_GROUP__ADJUSTMENT_GROUP_CO:
      g = "CO";
      break;
    case CLINLOG__V1__ADJUSTMENT_GROUP__ADJUSTMENT_GROUP_PR:
      g = "PR";
      break;
    case CLINLOG__V1__ADJUSTMENT_GROUP__ADJUSTMENT_GROUP_OA:
      g = "OA";
      break;
    case CLINLOG__V1__ADJUSTMENT_GROUP__ADJUSTMENT_GROUP_PI:
      g = "PI";
      break;
    case CLINLOG__V1__ADJUSTMENT_GROUP__ADJUSTMENT_GROUP_CR:
      g = "CR";
      break;
    default:
      break;
    }
    /* category is 1..1: a triplet without its group is an adjustment of
     * unknown kind */
    json_t *cat = fj_or_unknown(mb_concept2(X12("1033", cas01, g), NULL));
    json_t *reason = mb_code_default(a[i]->reason, X12_CARC);
    json_t *e = json_object();
    json_object_set(e, "category", cat);
    if (reason != NULL)
      json_object_set(e, "reason", reason);
    fj_set(e, "amount", fj_money(a[i]->amount));
    json_t *v = fj_decimal(a[i]->quantity);
    if (json_object_size(e) > 1 || v == NULL)
      json_array_append_new(adj, e);
    else
      json_decref(e);
    if (v != NULL) {
      json_t *q = json_object();
      json_object_set(q, "category", cat);
      if (reason != NULL)
        json_object_set(q, "reason", reason);
      json_object_set_new(q, "value", v);
      json_array_append_new(adj, q);
    }
    json_decref(cat);
    json_decref(reason);
  }
}

/* Sum of the PR adjustments with CARC `carc` (claim and lines). */
static json_t *pr_sum(const Clinlog__V1__ClaimAdjudicated *b, const char *carc) {
  int64_t sum = 0;
  const char *cur = NULL;
  for (size_t l = 0; l <= b->n_lines; l++) {
    Clinlog__V1__Adjustment *const *a = l == 0 ? b->adjustments : b->lines[l - 1]->adjustments;
    size_t n = l == 0 ? b->n_adjustments : b->lines[l - 1]->n_adjustments;
    for (size_t i = 0; i < n; i++) {
      const Clinlog__V1__Code *r = a[i]->reason;
      if (a[i]->group != CLINLOG__V1__ADJUSTMENT_GROUP__ADJUSTMENT_GROUP_PR || r == NULL ||
          a[i]->amount == NULL || !same_str(r->code, carc) ||
          (fj_has(r->system) && strcmp(r->system, X12_CARC) != 0))
        continue;
      sum += a[i]->amount->minor_units;
      cur = a[i]->amount->currency;
    }
  }
  return cur != NULL ? mb_money(sum, cur) : NULL;
}

/* processNote number of a remark (RARC), appending it if new. */
static json_int_t note_number(json_t *notes, const Clinlog__V1__Code *c) {
  for (size_t i = 0; i < json_array_size(notes); i++) {
    json_t *n = json_array_get(notes, i);
    json_t *rc = json_object_get(json_array_get(json_object_get(n, "extension"), 0), "valueCoding");
    json_t *want = mb_code_default(c, X12_RARC);
    int same = same_str(json_string_value(json_object_get(rc, "code")), c->code) &&
               same_str(json_string_value(json_object_get(rc, "system")),
                        str_at(want, "coding", "system"));
    json_decref(want);
    if (same)
      return json_integer_value(json_object_get(n, "number"));
  }
  json_int_t num = (json_int_t)json_array_size(notes) + 1;
  char text[512];
  snprintf(text, sizeof text, "%s%s%s", c->code, fj_has(c->display) ? ": " : "",
           fj_has(c->display) ? c->display : "");
  json_t *cc = mb_code_default(c, X12_RARC);
  json_t *cd = json_deep_copy(json_array_get(json_object_get(cc, "coding"), 0));
  json_decref(cc);
  json_array_append_new(notes, json_pack("{s:[o],s:I,s:s,s:s}", "extension",
                                         fj_ext(FJ_CLINLOG_EXT "remark-code", "valueCoding", cd),
                                         "number", num, "type", "display", "text", text));
  return num;
}

/* An integer of a resource read back: a JSON integer as stored, or the
 * marked text a FHIR write parses it into (fj.h), when a write is checked
 * against its view (adapters/fhir/fhirw_view.c); 0 for anything else. */
static json_int_t int_value(const json_t *v) {
  const char *s = json_string_value(v);
  if (s != NULL && s[0] == FJ_DECIMAL_MARK)
    return strtoll(s + 1, NULL, 10);
  return json_integer_value(v);
}

/* The sequence of the Claim item billing charge `charge` or line control
 * number `lcn`; 0 if none. */
static json_int_t claim_item_seq(json_t *claim, const char *charge, const char *lcn) {
  json_t *items = json_object_get(claim, "item");
  for (size_t i = 0; i < json_array_size(items); i++) {
    json_t *it = json_array_get(items, i);
    json_t *tn = ext_value(it, FJ_R5_EXT "Claim.item.traceNumber", "valueIdentifier");
    const char *v = json_string_value(json_object_get(tn, "value"));
    if (v != NULL &&
        ((fj_has(charge) && strcmp(v, charge) == 0) || (fj_has(lcn) && strcmp(v, lcn) == 0)))
      return int_value(json_object_get(it, "sequence"));
  }
  return 0;
}

/* One SVC loop: an item of the Claim line it adjudicates, or, for a line
 * the Claim does not hold, an addItem carrying the procedure. */
static void line_adjudication(json_t *items, json_t *add, json_t *notes, json_t *claim,
                              const Clinlog__V1__LineAdjudication *l) {
  json_t *adj = json_array();
  if (l->billed != NULL)
    json_array_append_new(
        adj, adj_entry(ADJUDICATION, "submitted", "Submitted Amount", fj_money(l->billed)));
  if (l->allowed != NULL)
    json_array_append_new(
        adj, adj_entry(ADJUDICATION, "eligible", "Eligible Amount", fj_money(l->allowed)));
  if (l->paid != NULL)
    json_array_append_new(adj,
                          adj_entry(ADJUDICATION, "benefit", "Benefit Amount", fj_money(l->paid)));
  json_t *units = fj_decimal(l->units_paid);
  if (units != NULL)
    json_array_append_new(
        adj, json_pack("{s:o,s:o}", "category",
                       fj_concept_lit(C4BB_DISCRIMINATOR, "allowedunits", "allowed units"), "value",
                       units));
  push_adjustments(adj, l->adjustments, l->n_adjustments);
  if (json_array_size(adj) == 0) /* adjudication is 1..*: nothing was reported */
    json_array_append_new(adj, json_pack("{s:o}", "category", fj_unknown()));
  json_t *nn = json_array();
  for (size_t i = 0; i < l->n_remarks; i++)
    if (l->remarks[i] != NULL && fj_has(l->remarks[i]->code))
      json_array_append_new(nn, json_integer(note_number(notes, l->remarks[i])));

  json_t *it = json_object();
  /* ClaimResponse.item.traceNumber (R5): REF*6R as returned */
  json_t *lcn =
      fj_has(l->line_control_number) ? json_pack("{s:s}", "value", l->line_control_number) : NULL;
  fj_set_one(it, "extension",
             fj_ext(FJ_R5_EXT "ClaimResponse.item.traceNumber", "valueIdentifier", lcn));
  json_int_t seq = claim_item_seq(claim, l->charge_id, l->line_control_number);
  if (seq > 0) {
    json_object_set_new(it, "itemSequence", json_integer(seq));
    fj_set(it, "noteNumber", nn);
    json_object_set_new(it, "adjudication", adj);
    json_array_append_new(items, it);
    return;
  }
  /* productOrService is 1..1 */
  json_object_set_new(it, "productOrService", fj_or_unknown(fj_concept_code(l->procedure)));
  json_t *mods = json_array();
  for (size_t i = 0; i < l->n_modifiers; i++)
    if (fj_has(l->modifiers[i]))
      json_array_append_new(
          mods, json_pack("{s:[o]}", "coding",
                          mb_coding(mb_modifier_system(l->modifiers[i]), l->modifiers[i], NULL)));
  fj_set(it, "modifier", mods);
  fj_set(it, "servicedDate", fj_date(l->service_date));
  fj_set(it, "noteNumber", nn);
  json_object_set_new(it, "adjudication", adj);
  json_array_append_new(add, it);
}

int mb_claim_adjudicated(cl_fhir_map *m, const Clinlog__V1__ClaimAdjudicated *b, cl_err *err) {
  if (!fj_has(b->claim_id))
    return 0;
  char bid[BID_MAX];
  if (fj_has(b->payer_claim_control_number)
          ? !mb_join(bid, b->claim_id, b->payer_claim_control_number)
          : snprintf(bid, sizeof bid, "%s", b->claim_id) >= BID_MAX)
    return 0;
  char cid[CL_FHIR_ID_MAX], id[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, "Claim", b->claim_id, cid);
  json_t *claim = NULL;
  int rc = cl_fhir_map_get(m, "Claim", cid, &claim, err);
  if (rc < 0 && rc != CL_ENOTFOUND)
    return rc;
  cl_fhir_pid(m, "ClaimResponse", bid, id);

  const char *decision = NULL, *dd = NULL, *disp;
  switch (b->status) {
  case CLINLOG__V1__CLAIM_STATUS__CLAIM_STATUS_PAID:
    decision = "approved";
    dd = "Approved";
    disp = "Claim paid";
    break;
  case CLINLOG__V1__CLAIM_STATUS__CLAIM_STATUS_DENIED:
    decision = "denied";
    dd = "Denied";
    disp = "Claim denied";
    break;
  case CLINLOG__V1__CLAIM_STATUS__CLAIM_STATUS_PARTIAL:
    decision = "partial";
    dd = "Partial";
    disp = "Claim paid in part";
    break;
  case CLINLOG__V1__CLAIM_STATUS__CLAIM_STATUS_PENDED:
    decision = "pending";
    dd = "Pending";
    disp = "Claim pended";
    break;
  case CLINLOG__V1__CLAIM_STATUS__CLAIM_STATUS_REVERSED:
    disp = "Earlier payment reversed";
    break;
  default:
    disp = NULL;
    break;
  }
  int reversed = b->status == CLINLOG__V1__CLAIM_STATUS__CLAIM_STATUS_REVERSED;

  json_t *r = cl_fhir_new("ClaimResponse", id);
  /* ClaimResponse.decision (R5): the result, apart from outcome (the
   * processing); with CLP02 as received */
  fj_set_one(r, "extension",
             fj_ext(FJ_R5_EXT "ClaimResponse.decision", "valueCodeableConcept",
                    mb_concept2(decision != NULL
                                    ? mb_coding("http://hl7.org/fhir/claim-decision", decision, dd)
                                    : NULL,
                                X12("1029", clp02, b->claim_status_code))));
  json_t *ids = json_array();
  fj_push(ids, fj_business_id(bid));
  fj_push(ids,
          fj_identifier_text("Payer claim control number (CLP07)", b->payer_claim_control_number));
  fj_push(ids,
          fj_identifier_text("Interchange control number (ISA13)", b->interchange_control_number));
  fj_set(r, "identifier", ids);
  json_object_set_new(r, "status", json_string(reversed ? "cancelled" : "active"));
  /* type is 1..1: the Claim's */
  json_t *type = json_object_get(claim, "type");
  json_object_set_new(r, "type", type != NULL ? json_deep_copy(type) : fj_unknown());
  json_object_set_new(r, "use", json_string("claim"));
  json_object_set_new(r, "patient", mb_patient(m));
  json_object_set_new(r, "created", cl_fhir_when(m, b->adjudicated_at));
  /* insurer is 1..1: the payer of the 835, else the Claim's */
  json_t *insurer = mb_payer_ref(b->payer, NULL), *cins = json_object_get(claim, "insurer");
  if (insurer == NULL && cins != NULL)
    insurer = json_deep_copy(cins);
  else if (insurer != NULL && same_str(mb_payer_id(b->payer),
                                       str_at(json_object_get(cins, "identifier"), "value", NULL)))
    fj_set_str(insurer, "display", json_string_value(json_object_get(cins, "display")));
  json_object_set_new(r, "insurer", mb_or_unknown_ref(insurer));
  json_object_set_new(r, "request", fj_ref("Claim", cid));
  /* outcome is the processing: a pended claim is queued, every other
   * adjudication (denials included: the result is in decision) complete */
  json_object_set_new(r, "outcome",
                      json_string(b->status == CLINLOG__V1__CLAIM_STATUS__CLAIM_STATUS_PENDED
                                      ? "queued"
                                      : "complete"));
  char dtext[256];
  const char *clp = FIND(clp02, b->claim_status_code);
  if (fj_has(b->claim_status_code))
    snprintf(dtext, sizeof dtext, "%s%sCLP02 %s%s%s%s", disp != NULL ? disp : "",
             disp != NULL ? " (" : "", b->claim_status_code, clp != NULL ? ": " : "",
             clp != NULL ? clp : "", disp != NULL ? ")" : "");
  else
    snprintf(dtext, sizeof dtext, "%s", disp != NULL ? disp : "");
  fj_set_str(r, "disposition", dtext);

  json_t *items = json_array(), *add = json_array(), *notes = json_array();
  for (size_t i = 0; i < b->n_remarks; i++)
    if (b->remarks[i] != NULL && fj_has(b->remarks[i]->code))
      note_number(notes, b->remarks[i]);
  for (size_t i = 0; i < b->n_lines; i++)
    line_adjudication(items, add, notes, claim, b->lines[i]);
  fj_set(r, "item", items);
  fj_set(r, "addItem", add);
  json_t *adj = json_array();
  push_adjustments(adj, b->adjustments, b->n_adjustments);
  fj_set(r, "adjudication", adj);

  json_t *total = json_array();
  if (b->billed != NULL)
    json_array_append_new(
        total, adj_entry(ADJUDICATION, "submitted", "Submitted Amount", fj_money(b->billed)));
  if (b->allowed != NULL)
    json_array_append_new(
        total, adj_entry(ADJUDICATION, "eligible", "Eligible Amount", fj_money(b->allowed)));
  if (b->paid != NULL)
    json_array_append_new(total,
                          adj_entry(ADJUDICATION, "benefit", "Benefit Amount", fj_money(b->paid)));
  json_t *sum;
  if ((sum = pr_sum(b, "1")) != NULL)
    json_array_append_new(total, adj_entry(ADJUDICATION, "deductible", "Deductible", sum));
  if ((sum = pr_sum(b, "2")) != NULL)
    json_array_append_new(total, adj_entry(C4BB_ADJUDICATION, "coinsurance", "Co-insurance", sum));
  if ((sum = pr_sum(b, "3")) != NULL)
    json_array_append_new(total, adj_entry(ADJUDICATION, "copay", "CoPay", sum));
  if (b->patient_responsibility != NULL)
    json_array_append_new(total, adj_entry(C4BB_ADJUDICATION, "memberliability", "Member liability",
                                           fj_money(b->patient_responsibility)));
  fj_set(r, "total", total);

  if (b->paid != NULL) {
    json_t *p = json_object();
    int partial = b->status == CLINLOG__V1__CLAIM_STATUS__CLAIM_STATUS_PARTIAL;
    json_object_set_new(p, "type",
                        fj_concept_lit("http://terminology.hl7.org/CodeSystem/ex-paymenttype",
                                       partial ? "partial" : "complete",
                                       partial ? "Partial" : "Complete"));
    json_object_set_new(p, "date", mb_date_of(cl_fhir_when(m, b->adjudicated_at)));
    json_object_set_new(p, "amount", fj_money(b->paid));
    fj_set(p, "identifier",
           fj_identifier_text("Check or EFT trace number (TRN02)", b->trace_number));
    json_object_set_new(r, "payment", p);
  }
  fj_set(r, "processNote", notes);
  json_t *cov = json_object_get(json_array_get(json_object_get(claim, "insurance"), 0), "coverage");
  if (cov != NULL)
    json_object_set_new(r, "insurance",
                        json_pack("[{s:i,s:b,s:O}]", "sequence", 1, "focal", 1, "coverage", cov));
  json_decref(claim);
  return cl_fhir_map_put(m, r, err);
}

/* ---- ClaimAppealed ---- */

static json_t *task_input(const char *code, const char *display, const char *key, json_t *v) {
  if (v == NULL)
    return NULL;
  json_t *in = json_object();
  json_object_set_new(in, "type", fj_concept_lit(CLINLOG_CS "task-input", code, display));
  json_object_set_new(in, key, v);
  return in;
}

int mb_claim_appealed(cl_fhir_map *m, const Clinlog__V1__ClaimAppealed *b, cl_err *err) {
  if (!fj_has(b->appeal_id))
    return 0;
  json_t *claim = NULL, *resp = NULL;
  char cid[CL_FHIR_ID_MAX], rid[CL_FHIR_ID_MAX], bid[BID_MAX];
  int rc = 0;
  if (fj_has(b->claim_id)) {
    cl_fhir_pid(m, "Claim", b->claim_id, cid);
    rc = cl_fhir_map_get(m, "Claim", cid, &claim, err);
    if (rc < 0 && rc != CL_ENOTFOUND)
      return rc;
    /* the response appealed: by claim + payer claim number, else claim */
    for (int k = 0; k < 2 && resp == NULL; k++) {
      if (k == 0 ? !fj_has(b->payer_claim_control_number) ||
                       !mb_join(bid, b->claim_id, b->payer_claim_control_number)
                 : snprintf(bid, sizeof bid, "%s", b->claim_id) >= BID_MAX)
        continue;
      cl_fhir_pid(m, "ClaimResponse", bid, rid);
      rc = cl_fhir_map_get(m, "ClaimResponse", rid, &resp, err);
      if (rc < 0 && rc != CL_ENOTFOUND) {
        json_decref(claim);
        return rc;
      }
    }
  }
  char id[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, "Task", b->appeal_id, id);
  json_t *t = cl_fhir_new("Task", id);
  fj_set_one(t, "identifier", fj_business_id(b->appeal_id));
  json_object_set_new(t, "status", json_string("requested"));
  json_object_set_new(t, "intent", json_string("order"));
  json_object_set_new(t, "code",
                      fj_concept_lit(CLINLOG_CS "task-code", "claim-appeal", "Claim appeal"));
  fj_set_str(t, "description", b->reason);
  fj_set(t, "focus", cl_fhir_pref(m, "Claim", b->claim_id));
  fj_set(t, "for", cl_fhir_patient_ref(m));
  json_object_set_new(t, "authoredOn", cl_fhir_when(m, b->submitted_at));
  fj_set(t, "requester", fj_reference(b->submitted_by));
  json_t *owner = json_object_get(claim, "insurer"); /* the payer reconsiders */
  if (owner != NULL)
    json_object_set(t, "owner", owner);
  json_t *codes = json_array();
  for (size_t i = 0; i < b->n_reason_codes; i++)
    fj_push(codes, fj_coding(b->reason_codes[i]));
  if (json_array_size(codes) > 0) /* the CARC/RARC contested */
    json_object_set_new(t, "reasonCode", json_pack("{s:o}", "coding", codes));
  else
    json_decref(codes);
  if (resp != NULL)
    json_object_set_new(t, "reasonReference", fj_ref("ClaimResponse", rid));
  json_t *inputs = json_array();
  if (b->level > 0)
    fj_push(inputs,
            task_input("appeal-level", "Appeal level", "valuePositiveInt", json_integer(b->level)));
  fj_push(inputs,
          task_input("payer-claim-control-number", "Payer claim control number", "valueIdentifier",
                     fj_identifier_text("Payer claim control number (CLP07)",
                                        b->payer_claim_control_number)));
  fj_push(inputs, task_input("amount-disputed", "Amount disputed", "valueMoney",
                             fj_money(b->amount_disputed)));
  for (size_t i = 0; i < b->n_attachments; i++)
    fj_push(inputs, task_input("attachment", "Supporting document", "valueReference",
                               fj_reference(b->attachments[i])));
  fj_set(t, "input", inputs);
  json_decref(resp);
  json_decref(claim);
  return cl_fhir_map_put(m, t, err);
}

/* ---- PaymentPosted ---- */

static json_t *payment_method(Clinlog__V1__PaymentMethod method) {
  switch (method) {
  case CLINLOG__V1__PAYMENT_METHOD__PAYMENT_METHOD_EFT:
    return mb_concept2(X12("591", bpr04, "ACH"), NULL);
  case CLINLOG__V1__PAYMENT_METHOD__PAYMENT_METHOD_CHECK:
    return mb_concept2(mb_coding(V2_0570, "CHCK", "Check"), X12("591", bpr04, "CHK"));
  case CLINLOG__V1__PAYMENT_METHOD__PAYMENT_METHOD_WIRE:
    return mb_concept2(X12("591", bpr04, "FWT"), NULL);
  case CLINLOG__V1__PAYMENT_METHOD__PAYMENT_METHOD_NONE:
    return mb_concept2(X12("591", bpr04, "NON"), NULL);
  case CLINLOG__V1__PAYMENT_METHOD__PAYMENT_METHOD_CARD: /* credit or debit: not said */
    return mb_text_concept("Card");
  case CLINLOG__V1__PAYMENT_METHOD__PAYMENT_METHOD_CASH:
    return mb_concept2(mb_coding(V2_0570, "CASH", "Cash"), NULL);
  case CLINLOG__V1__PAYMENT_METHOD__PAYMENT_METHOD_BOP:
    return mb_concept2(X12("591", bpr04, "BOP"), NULL);
  default:
    return NULL;
  }
}

int mb_payment_posted(cl_fhir_map *m, const Clinlog__V1__PaymentPosted *b, cl_err *err) {
  if (!fj_has(b->payment_id))
    return 0;
  /* one remittance (BPR/TRN) of a payer pays several claims: its postings
   * share one PaymentReconciliation; anything else stands alone */
  char bid[BID_MAX];
  if (fj_has(b->trace_number) && mb_payer_id(b->payer) != NULL) {
    if (!mb_join(bid, mb_payer_id(b->payer), b->trace_number))
      return 0;
  } else if (snprintf(bid, sizeof bid, "%s", b->payment_id) >= BID_MAX) {
    return 0;
  }
  char id[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, "PaymentReconciliation", bid, id);
  json_t *cur = NULL;
  int rc = cl_fhir_map_get(m, "PaymentReconciliation", id, &cur, err);
  if (rc < 0 && rc != CL_ENOTFOUND)
    return rc;

  json_t *pdate = fj_date(b->payment_date);
  if (pdate == NULL) /* paymentDate is 1..1: the posting's date */
    pdate = mb_date_of(cl_fhir_when(m, b->posted_at));
  int neg = b->amount != NULL && b->amount->minor_units < 0;
  json_t *d = json_object();
  json_object_set_new(d, "identifier", fj_business_id(b->payment_id));
  /* a negative posting takes money back (a recoupment) */
  json_object_set_new(d, "type",
                      fj_concept_lit("http://terminology.hl7.org/CodeSystem/payment-type",
                                     neg ? "adjustment" : "payment",
                                     neg ? "Adjustment" : "Payment"));
  fj_set(d, "request", cl_fhir_pref(m, "Claim", b->claim_id));
  fj_set(d, "date", json_deep_copy(pdate));
  fj_set(d, "amount", fj_money(b->amount));

  /* this posting replaces its own detail, the others stay in order */
  json_t *details = json_array(), *old = json_object_get(cur, "detail");
  int placed = 0;
  for (size_t i = 0; i < json_array_size(old); i++) {
    json_t *o = json_array_get(old, i);
    if (same_str(json_string_value(json_object_get(json_object_get(o, "identifier"), "value")),
                 b->payment_id)) {
      json_array_append(details, d);
      placed = 1;
    } else {
      json_array_append(details, o);
    }
  }
  if (!placed)
    json_array_append(details, d);
  json_decref(d);
  json_decref(cur);

  json_t *p = cl_fhir_new("PaymentReconciliation", id);
  json_t *exts = json_array();
  /* R4 has no payment method, enterer, or non-Organization issuer: the R5
   * elements */
  fj_push(exts, fj_ext(FJ_R5_EXT "PaymentReconciliation.method", "valueCodeableConcept",
                       payment_method(b->method)));
  fj_push(exts, fj_ext(FJ_R5_EXT "PaymentReconciliation.enterer", "valueReference",
                       fj_reference(b->posted_by)));
  if (b->payer == NULL) { /* a patient payment: the patient paid */
    json_t *pr = cl_fhir_patient_ref(m);
    if (pr != NULL)
      fj_set_str(pr, "display", b->payer_name);
    fj_push(exts, fj_ext(FJ_R5_EXT "PaymentReconciliation.paymentIssuer", "valueReference", pr));
  }
  fj_set(p, "extension", exts);
  fj_set_one(p, "identifier", fj_business_id(bid));
  json_object_set_new(p, "status", json_string("active"));
  json_object_set_new(p, "created", cl_fhir_when(m, b->posted_at));
  if (b->payer != NULL)
    fj_set(p, "paymentIssuer", mb_payer_ref(b->payer, b->payer_name));
  json_object_set_new(p, "paymentDate", pdate);
  /* paymentAmount is 1..1: the remittance total (BPR02), else what was
   * posted from it */
  json_t *amount = fj_money(b->total_payment);
  if (amount == NULL) {
    int64_t sum = 0, v;
    int digits, dg = -1;
    const char *currency = NULL;
    for (size_t i = 0; i < json_array_size(details); i++) {
      json_t *a = json_object_get(json_array_get(details, i), "amount");
      if (!mb_money_minor(a, &v, &digits) || (dg >= 0 && digits != dg))
        continue;
      dg = digits;
      sum += v;
      currency = json_string_value(json_object_get(a, "currency"));
    }
    /* nothing stated an amount: absent, with its reason */
    amount = dg >= 0 ? mb_money(sum, currency) : fj_unknown();
  }
  json_object_set_new(p, "paymentAmount", amount);
  fj_set(p, "paymentIdentifier",
         fj_identifier_text(b->payer != NULL ? "Check or EFT trace number (TRN02)"
                                             : "Payment reference number",
                            b->trace_number));
  fj_set(p, "detail", details);
  return cl_fhir_map_put(m, p, err);
}

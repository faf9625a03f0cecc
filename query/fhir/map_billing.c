/* Billing and revenue-cycle events (500-505) -> FHIR R4 financial resources
 * (X12 005010 semantics; element tables in docs/fhir-map-billing-device-decision.md).
 *
 *   EligibilityChecked  Coverage (one per payer + member: repeated checks make
 *                       versions), CoverageEligibilityRequest and
 *                       CoverageEligibilityResponse (270/271); without a
 *                       check id (a Coverage written through FHIR) the
 *                       Coverage alone
 *   ChargeCaptured      ChargeItem, status billable (an 837 service line)
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
 *                       posting; patient payments stand alone
 *
 * Invariants: every resource carries its business id first in identifier
 * (system urn:clinlog:id; the value is the string its logical id is derived
 * from); a required element the event does not state gets FHIR's absent
 * form (a Reference with display "unknown", a CodeableConcept holding the
 * data-absent-reason extension) and is marked where it is set; codes keep
 * the system they were sent with (an X12 code list without a published FHIR
 * system uses https://codesystem.x12.org/005010/<element>, as Da Vinci PAS
 * does); what R4 has no element for uses the R5 element as a cross-version
 * extension (http://hl7.org/fhir/5.0/StructureDefinition/extension-<path>)
 * or, failing that, a clinlog extension
 * (https://clinlog.dev/fhir/StructureDefinition/). */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/fhir/map_billing_int.h"

/* ---- small builders ---- */

json_t *mb_coding(const char *system, const char *code, const char *display) {
  json_t *c = json_object();
  fj_set_str(c, "system", system);
  fj_set_str(c, "code", code);
  fj_set_str(c, "display", display);
  return c;
}

/* {coding: [a, b]} (NULLs skipped; a and b stolen). */
json_t *mb_concept2(json_t *a, json_t *b) {
  json_t *arr = json_array();
  fj_push(arr, a);
  fj_push(arr, b);
  json_t *o = json_object();
  fj_set(o, "coding", arr);
  if (json_object_size(o) == 0) {
    json_decref(o);
    return NULL;
  }
  return o;
}

json_t *mb_text_concept(const char *text) { return json_pack("{s:s}", "text", text); }

/* A required Reference the event does not state. */
static json_t *unknown_ref(void) { return json_pack("{s:s}", "display", "unknown"); }

json_t *mb_or_unknown_ref(json_t *r) { return r != NULL ? r : unknown_ref(); }

/* The CodeableConcept of a Code, its system defaulted when the sender left
 * it empty (CARC, RARC: the .proto names the system). */
json_t *mb_code_default(const Clinlog__V1__Code *c, const char *system) {
  if (c == NULL)
    return NULL;
  if (fj_has(c->system) || !fj_has(c->code))
    return fj_concept_code(c);
  Clinlog__V1__Code d = *c;
  d.system = (char *)system;
  return fj_concept_code(&d);
}

/* The date (YYYY-MM-DD) of an instant (stolen). */
json_t *mb_date_of(json_t *instant) {
  const char *s = json_string_value(instant);
  json_t *d = s != NULL && strlen(s) >= 10 ? json_stringn(s, 10) : NULL;
  json_decref(instant);
  return d;
}

/* Patient references are required (1..1) everywhere here; billing events
 * are in the patient's stream, so "unknown" only shows outside one. */
json_t *mb_patient(const cl_fhir_map *m) { return mb_or_unknown_ref(cl_fhir_patient_ref(m)); }

/* The payer as a Reference(Organization): {identifier, display}. */
json_t *mb_payer_ref(const Clinlog__V1__Identifier *payer, const char *name) {
  json_t *r = json_object();
  fj_set(r, "identifier", fj_identifier(payer));
  fj_set_str(r, "display", name);
  if (json_object_size(r) == 0) {
    json_decref(r);
    return NULL;
  }
  return r;
}

const char *mb_payer_id(const Clinlog__V1__Identifier *payer) {
  return payer != NULL && fj_has(payer->value) ? payer->value : NULL;
}

/* "a|b" into out; 0 if it does not fit. */
int mb_join(char out[BID_MAX], const char *a, const char *b) {
  int w = snprintf(out, BID_MAX, "%s|%s", a != NULL ? a : "", b != NULL ? b : "");
  return w > 0 && w < BID_MAX;
}

/* The Coverage business id: payer id + member id, so that every check and
 * claim for one membership names one Coverage. 0 if neither is known. */
static int coverage_bid(const Clinlog__V1__Identifier *payer, const char *member,
                        char out[BID_MAX]) {
  if (mb_payer_id(payer) == NULL && !fj_has(member))
    return 0;
  return mb_join(out, mb_payer_id(payer), member);
}

const char *mb_find(const lookup *t, size_t n, const char *code) {
  for (size_t i = 0; code != NULL && i < n; i++)
    if (strcmp(t[i].code, code) == 0)
      return t[i].display;
  return NULL;
}

/* A coding of an X12 005010 element's code list (display from the table
 * when the code is one we know). */
json_t *mb_x12_coding(const char *element, const lookup *t, size_t n, const char *code) {
  if (!fj_has(code))
    return NULL;
  char system[64];
  snprintf(system, sizeof system, X12_ELEMENT "%s", element);
  return mb_coding(system, code, mb_find(t, n, code));
}

/* X12 code lists (005010 implementation guides). */
static const lookup eb01[] = {/* 1390 Eligibility or Benefit Information Code */
                              {"1", "Active Coverage"},
                              {"2", "Active - Full Risk Capitation"},
                              {"3", "Active - Services Capitated"},
                              {"4", "Active - Services Capitated to Primary Care Physician"},
                              {"5", "Active - Pending Investigation"},
                              {"6", "Inactive"},
                              {"7", "Inactive - Pending Eligibility Update"},
                              {"8", "Inactive - Pending Investigation"},
                              {"A", "Co-Insurance"},
                              {"AA", "Patient Reimbursement"},
                              {"AB", "Co-payment Maximum"},
                              {"AC", "Co-insurance Maximum"},
                              {"B", "Co-Payment"},
                              {"C", "Deductible"},
                              {"CB", "Coverage Basis"},
                              {"D", "Benefit Description"},
                              {"E", "Exclusions"},
                              {"F", "Limitations"},
                              {"G", "Out of Pocket (Stop Loss)"},
                              {"H", "Unlimited"},
                              {"I", "Non-Covered"},
                              {"J", "Cost Containment"},
                              {"K", "Reserve"},
                              {"L", "Primary Care Provider"},
                              {"M", "Pre-existing Condition"},
                              {"MC", "Managed Care Coordinator"},
                              {"N", "Services Restricted to Following Provider"},
                              {"O", "Not Deemed a Medical Necessity"},
                              {"P", "Benefit Disclaimer"},
                              {"Q", "Second Surgical Opinion Required"},
                              {"R", "Other or Additional Payor"},
                              {"S", "Prior Year(s) History"},
                              {"T", "Card(s) Reported Lost/Stolen"},
                              {"U",
                               "Contact Following Entity for Eligibility or Benefit Information"},
                              {"V", "Cannot Process"},
                              {"W", "Other Source of Data"},
                              {"WV", "Waiver"},
                              {"X", "Health Care Facility"},
                              {"Y", "Spend Down"}};

static const lookup eb02[] =
    {/* 1207 Coverage Level Code */
     {"CHD", "Children Only"}, {"DEP", "Dependents Only"},     {"ECH", "Employee and Children"},
     {"EMP", "Employee Only"}, {"ESP", "Employee and Spouse"}, {"FAM", "Family"},
     {"IND", "Individual"},    {"SPC", "Spouse and Children"}, {"SPO", "Spouse Only"}};

static const lookup eb06[] = {/* 615 Time Period Qualifier */
                              {"6", "Hour"},          {"7", "Day"},
                              {"13", "24 Hours"},     {"21", "Years"},
                              {"22", "Service Year"}, {"23", "Calendar Year"},
                              {"24", "Year to Date"}, {"25", "Contract"},
                              {"26", "Episode"},      {"27", "Visit"},
                              {"28", "Outlier"},      {"29", "Remaining"},
                              {"30", "Exceeded"},     {"31", "Not Exceeded"},
                              {"32", "Lifetime"},     {"33", "Lifetime Remaining"},
                              {"34", "Month"},        {"35", "Week"},
                              {"36", "Admission"}};

static const lookup units355[] = {/* 355 Unit or Basis for Measurement Code (SV103, CTP05) */
                                  {"F2", "International Unit"}, {"GR", "Gram"},
                                  {"ME", "Milligram"},          {"MJ", "Minutes"},
                                  {"ML", "Milliliter"},         {"UN", "Unit"}};

const char *cl_fhir_x12_eb01_code(const char *name) {
  for (size_t i = 0; name != NULL && i < sizeof eb01 / sizeof eb01[0]; i++)
    if (strcmp(eb01[i].display, name) == 0)
      return eb01[i].code;
  return NULL;
}

/* ---- Money held in a built resource ---- */

/* A Money built by fj_money back to integer minor units and its digits. */
int mb_money_minor(const json_t *money, int64_t *minor, int *digits) {
  const char *s = json_string_value(json_object_get(money, "value"));
  if (s == NULL || s[0] != FJ_DECIMAL_MARK)
    return 0;
  s++;
  int neg = *s == '-', frac = 0, d = 0;
  if (neg)
    s++;
  int64_t v = 0;
  for (; *s != '\0'; s++) {
    if (*s == '.' && !frac) {
      frac = 1;
      continue;
    }
    if (!isdigit((unsigned char)*s) || v > (INT64_MAX - 9) / 10)
      return 0;
    v = v * 10 + (*s - '0');
    d += frac;
  }
  *minor = neg ? -v : v;
  *digits = d;
  return 1;
}

json_t *mb_money(int64_t minor, const char *currency) {
  Clinlog__V1__Money mo = CLINLOG__V1__MONEY__INIT;
  mo.minor_units = minor;
  mo.currency = (char *)(currency != NULL ? currency : "");
  return fj_money(&mo);
}

/* ---- Coverage ---- */

static json_t *coverage_new(const cl_fhir_map *m, const char *id, const char *bid,
                            const coverage_in *in) {
  json_t *c = cl_fhir_new("Coverage", id);
  json_t *ids = json_array();
  fj_push(ids, fj_business_id(bid));
  if (fj_has(in->member_id)) {
    json_t *mb = fj_identifier_lit("MB", "Member Number", in->member_id);
    if (fj_has(in->payer_name))
      json_object_set_new(mb, "assigner", json_pack("{s:s}", "display", in->payer_name));
    fj_push(ids, mb);
  }
  fj_set(c, "identifier", ids);
  json_object_set_new(c, "status", json_string(in->status));
  fj_set_str(c, "subscriberId", in->member_id);
  json_object_set_new(c, "beneficiary", mb_patient(m));
  fj_set(c, "relationship", fj_concept_code(in->relationship));
  fj_set(c, "period", fj_period(in->period));
  /* payor is 1..*: the payer as far as it is known */
  fj_set_one(c, "payor", mb_or_unknown_ref(mb_payer_ref(in->payer, in->payer_name)));
  json_t *cls = json_array();
  if (fj_has(in->group_number))
    fj_push(cls, json_pack("{s:o,s:s}", "type",
                           fj_concept_lit("http://terminology.hl7.org/CodeSystem/coverage-class",
                                          "group", "Group"),
                           "value", in->group_number));
  if (fj_has(in->plan))
    fj_push(cls, json_pack("{s:o,s:s}", "type",
                           fj_concept_lit("http://terminology.hl7.org/CodeSystem/coverage-class",
                                          "plan", "Plan"),
                           "value", in->plan));
  fj_set(c, "class", cls);
  return c;
}

/* The Coverage of payer + member: puts `fresh` (stolen) unless keep_current
 * and one exists. *ref gets Reference(Coverage), or NULL when neither payer
 * nor member is known (fresh is dropped). */
int mb_coverage_put(cl_fhir_map *m, const coverage_in *in, int keep_current, json_t **ref,
                    cl_err *err) {
  *ref = NULL;
  char bid[BID_MAX], id[CL_FHIR_ID_MAX];
  if (!coverage_bid(in->payer, in->member_id, bid))
    return 0;
  cl_fhir_pid(m, "Coverage", bid, id);
  if (keep_current) {
    json_t *cur = NULL;
    int rc = cl_fhir_map_get(m, "Coverage", id, &cur, err);
    json_decref(cur);
    if (rc == 0) {
      *ref = fj_ref("Coverage", id);
      return 0;
    }
    if (rc != CL_ENOTFOUND)
      return rc;
  }
  int rc = cl_fhir_map_put(m, coverage_new(m, id, bid, in), err);
  if (rc < 0)
    return rc;
  *ref = fj_ref("Coverage", id);
  return 0;
}

/* ---- EligibilityChecked ---- */

/* EB08 (a fraction, "0.2") as a percent: allowedUnsignedInt 20, or
 * allowedString "12.5%" when it is not whole. */
static void set_percent(json_t *benefit, const char *p) {
  char ip[24], fp[24];
  size_t il = 0, fl = 0, i = 0, n = strlen(p);
  for (; i < n && isdigit((unsigned char)p[i]); i++)
    if (il < sizeof ip - 1)
      ip[il++] = p[i];
  if (i < n && p[i] == '.')
    for (i++; i < n && isdigit((unsigned char)p[i]); i++)
      if (fl < sizeof fp - 1)
        fp[fl++] = p[i];
  if (i != n || il + fl == 0 || il > 16 || fl > 16)
    return; /* not a plain decimal fraction */
  char whole[48], frac[24];
  size_t w = 0, f = 0;
  memcpy(whole, ip, il);
  w = il;
  for (size_t k = 0; k < 2; k++) /* move the point two places */
    whole[w++] = k < fl ? fp[k] : '0';
  for (size_t k = 2; k < fl; k++)
    frac[f++] = fp[k];
  while (f > 0 && frac[f - 1] == '0')
    f--;
  size_t lead = 0;
  while (lead + 1 < w && whole[lead] == '0')
    lead++;
  whole[w] = '\0';
  frac[f] = '\0';
  if (f == 0 && w - lead <= 9) {
    json_object_set_new(benefit, "allowedUnsignedInt",
                        json_integer(strtoll(whole + lead, NULL, 10)));
    return;
  }
  char s[80];
  snprintf(s, sizeof s, "%s%s%s%%", whole + lead, f ? "." : "", frac);
  json_object_set_new(benefit, "allowedString", json_string(s));
}

/* benefit.type from EB01: the FHIR benefit-type it is, plus the X12 code. */
static json_t *benefit_type(const char *info, int percent) {
  const char *code = "benefit", *display = "Benefit";
  if (info != NULL && (strcmp(info, "A") == 0 || (percent && strcmp(info, "B") == 0))) {
    code = "copay-percent";
    display = "Copayment Percent per service";
  } else if (info != NULL && strcmp(info, "B") == 0) {
    code = "copay";
    display = "Copayment per service";
  } else if (info != NULL && strcmp(info, "C") == 0) {
    code = "deductible";
    display = "Deductible";
  } else if (info != NULL && strcmp(info, "AB") == 0) {
    code = "copay-maximum";
    display = "Copayment maximum per service";
  }
  return mb_concept2(mb_coding("http://terminology.hl7.org/CodeSystem/benefit-type", code, display),
                     X12("1390", eb01, info));
}

/* insurance.item entries of one EB line: one per service type (EB03
 * repeats; ces-1 wants a category, so a line without one is for "30",
 * health benefit plan coverage, as in the 271). */
static void benefit_items(json_t *items, const Clinlog__V1__EligibilityBenefit *e) {
  if (e == NULL)
    return;
  size_t n = e->n_service_types > 0 ? e->n_service_types : 1;
  for (size_t i = 0; i < n; i++) {
    json_t *it = json_object();
    json_t *cat = e->n_service_types > 0 ? fj_concept_code(e->service_types[i]) : NULL;
    json_object_set_new(
        it, "category",
        cat != NULL ? cat : fj_concept_lit(X12_SERVICE_TYPE, "30", "Health Benefit Plan Coverage"));
    if (fj_has(e->info_code) && strcmp(e->info_code, "I") == 0)
      json_object_set_new(it, "excluded", json_true());
    const char *name = FIND(eb01, e->info_code);
    fj_set_str(it, "name", name != NULL ? name : e->info_code);
    fj_set_str(it, "description", e->text);
    if (fj_has(e->in_network) && strcmp(e->in_network, "W") != 0) { /* W: not applicable */
      int in = strcmp(e->in_network, "Y") == 0, out = strcmp(e->in_network, "N") == 0;
      if (in || out)
        json_object_set_new(it, "network",
                            fj_concept_lit("http://terminology.hl7.org/CodeSystem/benefit-network",
                                           in ? "in" : "out",
                                           in ? "In Network" : "Out of Network"));
    }
    if (fj_has(e->coverage_level)) {
      int ind = strcmp(e->coverage_level, "IND") == 0, fam = strcmp(e->coverage_level, "FAM") == 0;
      json_t *u = ind || fam
                      ? mb_coding("http://terminology.hl7.org/CodeSystem/benefit-unit",
                                  ind ? "individual" : "family", ind ? "Individual" : "Family")
                      : NULL;
      fj_set(it, "unit", mb_concept2(u, X12("1207", eb02, e->coverage_level)));
    }
    if (fj_has(e->time_period)) {
      const char *t = e->time_period, *term = NULL, *td = NULL;
      if (strcmp(t, "22") == 0 || strcmp(t, "23") == 0) {
        term = "annual";
        td = "Annual";
      } else if (strcmp(t, "7") == 0) {
        term = "day";
        td = "Day";
      } else if (strcmp(t, "32") == 0) {
        term = "lifetime";
        td = "Lifetime";
      }
      json_t *tc = term != NULL
                       ? mb_coding("http://terminology.hl7.org/CodeSystem/benefit-term", term, td)
                       : NULL;
      fj_set(it, "term", mb_concept2(tc, X12("615", eb06, t)));
    }
    json_t *benefits = json_array();
    if (e->amount != NULL) {
      json_t *bn = json_object();
      json_object_set_new(bn, "type", benefit_type(e->info_code, 0));
      json_object_set_new(bn, "allowedMoney", fj_money(e->amount));
      fj_push(benefits, bn);
    }
    if (fj_has(e->percent)) {
      json_t *bn = json_object();
      json_object_set_new(bn, "type", benefit_type(e->info_code, 1));
      set_percent(bn, e->percent);
      if (json_object_size(bn) == 1)
        json_object_del(bn, "type"); /* a percent we cannot read: no entry */
      fj_push(benefits, bn);
    }
    fj_set(it, "benefit", benefits);
    json_array_append_new(items, it);
  }
}

static json_t *purposes(void) { return json_pack("[s,s]", "validation", "benefits"); }

static int eligibility_checked(cl_fhir_map *m, const Clinlog__V1__EligibilityChecked *b,
                               cl_err *err) {
  int rejected = b->reject_reason != NULL;
  /* A 271 that answered states the coverage: a new Coverage version. A
   * rejected request (AAA) states nothing about it: the current version
   * stays, and only when there is none is one made, as a draft. */
  coverage_in in = {b->payer,
                    b->payer_name,
                    b->member_id,
                    rejected      ? "draft"
                    : b->eligible ? "active"
                                  : "cancelled",
                    b->plan,
                    b->group_number,
                    b->subscriber_relationship,
                    b->coverage_period};
  json_t *cov;
  int rc = mb_coverage_put(m, &in, rejected, &cov, err);
  if (rc < 0 || !fj_has(b->check_id)) { /* no check: a Coverage stated alone (a FHIR write) */
    json_decref(cov);
    return rc;
  }

  char qid[CL_FHIR_ID_MAX], sid[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, "CoverageEligibilityRequest", b->check_id, qid);
  cl_fhir_pid(m, "CoverageEligibilityResponse", b->check_id, sid);
  json_t *trace = fj_identifier_text("Trace number (TRN02)", b->trace_number), *s = NULL;

  json_t *q = cl_fhir_new("CoverageEligibilityRequest", qid);
  json_t *ids = json_array();
  fj_push(ids, fj_business_id(b->check_id));
  fj_push(ids, json_deep_copy(trace));
  fj_set(q, "identifier", ids);
  json_object_set_new(q, "status", json_string("active"));
  json_object_set_new(q, "purpose", purposes());
  json_object_set_new(q, "patient", mb_patient(m));
  json_object_set_new(q, "created", cl_fhir_when(m, NULL));
  /* insurer is 1..1 */
  json_t *insurer = mb_or_unknown_ref(mb_payer_ref(b->payer, b->payer_name));
  json_object_set_new(q, "insurer", json_deep_copy(insurer)); /* no node shared by two resources */
  if (fj_has(b->encounter_id)) /* R4 has no encounter here: the visit it was checked for */
    fj_set_one(q, "supportingInfo",
               json_pack("{s:i,s:o,s:b}", "sequence", 1, "information",
                         cl_fhir_pref(m, "Encounter", b->encounter_id), "appliesToAll", 1));
  if (cov != NULL)
    fj_set_one(q, "insurance", json_pack("{s:b,s:o}", "focal", 1, "coverage", json_deep_copy(cov)));
  json_t *items = json_array();
  for (size_t i = 0; i < b->n_service_types; i++) {
    json_t *cat = fj_concept_code(b->service_types[i]);
    if (cat != NULL)
      json_array_append_new(items, json_pack("{s:o}", "category", cat));
  }
  fj_set(q, "item", items);
  rc = cl_fhir_map_put(m, q, err);
  if (rc < 0)
    goto done;

  s = cl_fhir_new("CoverageEligibilityResponse", sid);
  ids = json_array();
  fj_push(ids, fj_business_id(b->check_id));
  fj_push(ids, json_incref(trace));
  fj_set(s, "identifier", ids);
  json_object_set_new(s, "status", json_string("active"));
  json_object_set_new(s, "purpose", purposes());
  json_object_set_new(s, "patient", mb_patient(m));
  json_object_set_new(s, "created", cl_fhir_when(m, NULL));
  json_object_set_new(s, "request", fj_ref("CoverageEligibilityRequest", qid));
  json_object_set_new(s, "outcome", json_string(rejected ? "error" : "complete"));
  if (fj_has(b->coverage_details))
    fj_set_str(s, "disposition", b->coverage_details);
  else if (rejected)
    fj_set_str(s, "disposition",
               fj_has(b->reject_reason->display) ? b->reject_reason->display : "Request rejected");
  json_object_set(s, "insurer", insurer);
  json_t *ins = json_object();
  /* coverage is 1..1: without payer and member, a Reference by name */
  json_object_set_new(ins, "coverage",
                      cov != NULL ? json_incref(cov)
                                  : mb_or_unknown_ref(mb_payer_ref(NULL, b->payer_name)));
  if (!rejected)
    json_object_set_new(ins, "inforce", json_boolean(b->eligible));
  fj_set(ins, "benefitPeriod", fj_period(b->coverage_period));
  json_t *bitems = json_array();
  for (size_t i = 0; i < b->n_benefits; i++)
    benefit_items(bitems, b->benefits[i]);
  fj_set(ins, "item", bitems);
  if (cov != NULL || json_object_size(ins) > 1)
    fj_set_one(s, "insurance", ins);
  else
    json_decref(ins);
  if (rejected)
    fj_set_one(s, "error",
               json_pack("{s:o}", "code", fj_or_unknown(fj_concept_code(b->reject_reason))));
  rc = cl_fhir_map_put(m, s, err);
done:
  json_decref(insurer);
  json_decref(trace);
  json_decref(cov);
  return rc;
}

/* ---- ChargeCaptured ---- */

/* CPT modifiers are two digits (and the Category II 1P, 2P, 3P, 8P); every
 * other modifier is a HCPCS Level II one. */
const char *mb_modifier_system(const char *mod) {
  size_t n = strlen(mod), digits = 0;
  for (size_t i = 0; i < n; i++)
    digits += isdigit((unsigned char)mod[i]) != 0;
  if (digits == n)
    return CPT;
  if (n == 2 && mod[1] == 'P' && strchr("1238", mod[0]) != NULL)
    return CPT;
  return HCPCS;
}

/* A quantity in X12 units (SV103 / CTP05): the unit code kept in its X12
 * code list. */
static json_t *x12_quantity(const char *value, const char *unit) {
  json_t *v = fj_decimal(value);
  if (v == NULL)
    return NULL;
  json_t *q = json_object();
  json_object_set_new(q, "value", v);
  if (fj_has(unit)) {
    const char *d = FIND(units355, unit);
    fj_set_str(q, "unit", d != NULL ? d : unit);
    fj_set_str(q, "system", X12_ELEMENT "355");
    fj_set_str(q, "code", unit);
  }
  return q;
}

static int charge_captured(cl_fhir_map *m, const Clinlog__V1__ChargeCaptured *b, cl_err *err) {
  if (!fj_has(b->charge_id))
    return 0;
  char id[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, "ChargeItem", b->charge_id, id);
  json_t *c = cl_fhir_new("ChargeItem", id);
  /* R4 ChargeItem has no element for these (Claim.item has: modifier,
   * revenue, location, detail) */
  json_t *exts = json_array();
  for (size_t i = 0; i < b->n_modifiers; i++)
    if (fj_has(b->modifiers[i]))
      fj_push(exts, fj_ext(FJ_CLINLOG_EXT "procedure-modifier", "valueCoding",
                           mb_coding(mb_modifier_system(b->modifiers[i]), b->modifiers[i], NULL)));
  fj_push(exts, fj_ext(FJ_CLINLOG_EXT "revenue-code", "valueCoding", fj_coding(b->revenue_code)));
  fj_push(exts,
          fj_ext(FJ_CLINLOG_EXT "place-of-service", "valueCoding", fj_coding(b->place_of_service)));
  fj_push(exts, fj_ext(FJ_CLINLOG_EXT "drug-quantity", "valueQuantity",
                       x12_quantity(b->ndc_quantity, b->ndc_unit)));
  fj_set(c, "extension", exts);
  fj_set_one(c, "identifier", fj_business_id(b->charge_id));
  json_object_set_new(c, "status", json_string("billable"));
  json_object_set_new(c, "code", fj_or_unknown(fj_concept_code(b->procedure)));
  json_object_set_new(c, "subject", mb_patient(m));
  fj_set(c, "context", cl_fhir_pref(m, "Encounter", b->encounter_id));
  json_t *start = fj_date(b->service_date), *end = fj_date(b->service_date_end);
  if (end != NULL) {
    json_t *p = json_object();
    fj_set(p, "start", start);
    json_object_set_new(p, "end", end);
    json_object_set_new(c, "occurrencePeriod", p);
  } else {
    fj_set(c, "occurrenceDateTime", start);
  }
  json_t *actor = fj_reference(b->rendering_provider);
  if (actor != NULL)
    fj_set_one(c, "performer", json_pack("{s:o}", "actor", actor));
  fj_set(c, "quantity", x12_quantity(b->units, b->unit_basis));
  fj_set(c, "priceOverride", fj_money(b->amount));
  json_object_set_new(c, "enteredDate", cl_fhir_when(m, NULL));
  fj_set(c, "reason", fj_concepts_code(b->diagnoses, b->n_diagnoses));
  fj_set(c, "productCodeableConcept", fj_concept_code(b->ndc));
  fj_set_one(c, "supportingInformation", cl_fhir_pref(m, "ServiceRequest", b->order_id));
  return cl_fhir_map_put(m, c, err);
}

int cl_fhir_map_billing(cl_fhir_map *m, cl_err *err) {
  const Clinlog__V1__Event *ev = m->ev;
  switch (ev->body_case) {
  case CLINLOG__V1__EVENT__BODY_ELIGIBILITY_CHECKED:
    return eligibility_checked(m, ev->eligibility_checked, err);
  case CLINLOG__V1__EVENT__BODY_CHARGE_CAPTURED:
    return charge_captured(m, ev->charge_captured, err);
  case CLINLOG__V1__EVENT__BODY_CLAIM_SUBMITTED:
    return mb_claim_submitted(m, ev->claim_submitted, err);
  case CLINLOG__V1__EVENT__BODY_CLAIM_ADJUDICATED:
    return mb_claim_adjudicated(m, ev->claim_adjudicated, err);
  case CLINLOG__V1__EVENT__BODY_CLAIM_APPEALED:
    return mb_claim_appealed(m, ev->claim_appealed, err);
  case CLINLOG__V1__EVENT__BODY_PAYMENT_POSTED:
    return mb_payment_posted(m, ev->payment_posted, err);
  default:
    return 0;
  }
}

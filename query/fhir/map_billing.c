/* Billing and revenue-cycle events (500-505) -> FHIR R4 financial resources
 * (X12 005010 semantics; element tables in docs/fhir-map-billing-device-decision.md).
 *
 *   EligibilityChecked  Coverage (one per payer + member: repeated checks make
 *                       versions), CoverageEligibilityRequest and
 *                       CoverageEligibilityResponse (270/271)
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

#include "query/fhir/fj.h"
#include "query/fhir/map.h"

#define CLINLOG_CS "https://clinlog.dev/fhir/CodeSystem/"
#define X12_ELEMENT "https://codesystem.x12.org/005010/"
#define X12_CARC "https://x12.org/codes/claim-adjustment-reason-codes"
#define X12_RARC "https://x12.org/codes/remittance-advice-remark-codes"
#define X12_SERVICE_TYPE "https://x12.org/codes/service-type-codes"
#define ADJUDICATION "http://terminology.hl7.org/CodeSystem/adjudication"
#define C4BB_ADJUDICATION "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudication"
#define C4BB_DISCRIMINATOR                                                                         \
  "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudicationDiscriminator"
#define CPT "http://www.ama-assn.org/go/cpt"
#define HCPCS "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
#define V2_0570 "http://terminology.hl7.org/CodeSystem/v2-0570"

/* Business ids joined with '|' (payer|member, claim|ICN...) fit here; a
 * longer one is not derived (the resource is left out). */
#define BID_MAX 512

/* ---- small builders ---- */

static json_t *coding(const char *system, const char *code, const char *display) {
  json_t *c = json_object();
  fj_set_str(c, "system", system);
  fj_set_str(c, "code", code);
  fj_set_str(c, "display", display);
  return c;
}

/* {coding: [a, b]} (NULLs skipped; a and b stolen). */
static json_t *concept2(json_t *a, json_t *b) {
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

static json_t *text_concept(const char *text) { return json_pack("{s:s}", "text", text); }

/* A required Reference the event does not state. */
static json_t *unknown_ref(void) { return json_pack("{s:s}", "display", "unknown"); }

static json_t *or_unknown_ref(json_t *r) { return r != NULL ? r : unknown_ref(); }

/* The CodeableConcept of a Code, its system defaulted when the sender left
 * it empty (CARC, RARC: the .proto names the system). */
static json_t *code_default(const Clinlog__V1__Code *c, const char *system) {
  if (c == NULL)
    return NULL;
  if (fj_has(c->system) || !fj_has(c->code))
    return fj_concept_code(c);
  Clinlog__V1__Code d = *c;
  d.system = (char *)system;
  return fj_concept_code(&d);
}

/* The date (YYYY-MM-DD) of an instant (stolen). */
static json_t *date_of(json_t *instant) {
  const char *s = json_string_value(instant);
  json_t *d = s != NULL && strlen(s) >= 10 ? json_stringn(s, 10) : NULL;
  json_decref(instant);
  return d;
}

/* Patient references are required (1..1) everywhere here; billing events
 * are in the patient's stream, so "unknown" only shows outside one. */
static json_t *patient(const cl_fhir_map *m) { return or_unknown_ref(cl_fhir_patient_ref(m)); }

/* The payer as a Reference(Organization): {identifier, display}. */
static json_t *payer_ref(const Clinlog__V1__Identifier *payer, const char *name) {
  json_t *r = json_object();
  fj_set(r, "identifier", fj_identifier(payer));
  fj_set_str(r, "display", name);
  if (json_object_size(r) == 0) {
    json_decref(r);
    return NULL;
  }
  return r;
}

static const char *payer_id(const Clinlog__V1__Identifier *payer) {
  return payer != NULL && fj_has(payer->value) ? payer->value : NULL;
}

/* "a|b" into out; 0 if it does not fit. */
static int join(char out[BID_MAX], const char *a, const char *b) {
  int w = snprintf(out, BID_MAX, "%s|%s", a != NULL ? a : "", b != NULL ? b : "");
  return w > 0 && w < BID_MAX;
}

/* The Coverage business id: payer id + member id, so that every check and
 * claim for one membership names one Coverage. 0 if neither is known. */
static int coverage_bid(const Clinlog__V1__Identifier *payer, const char *member,
                        char out[BID_MAX]) {
  if (payer_id(payer) == NULL && !fj_has(member))
    return 0;
  return join(out, payer_id(payer), member);
}

typedef struct lookup {
  const char *code, *display;
} lookup;

static const char *find(const lookup *t, size_t n, const char *code) {
  for (size_t i = 0; code != NULL && i < n; i++)
    if (strcmp(t[i].code, code) == 0)
      return t[i].display;
  return NULL;
}
#define FIND(t, code) find((t), sizeof(t) / sizeof((t)[0]), (code))

/* A coding of an X12 005010 element's code list (display from the table
 * when the code is one we know). */
static json_t *x12_coding(const char *element, const lookup *t, size_t n, const char *code) {
  if (!fj_has(code))
    return NULL;
  char system[64];
  snprintf(system, sizeof system, X12_ELEMENT "%s", element);
  return coding(system, code, find(t, n, code));
}
#define X12(element, t, code) x12_coding((element), (t), sizeof(t) / sizeof((t)[0]), (code))

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

static const lookup units355[] = {/* 355 Unit or Basis for Measurement Code (SV103, CTP05) */
                                  {"F2", "International Unit"}, {"GR", "Gram"},
                                  {"ME", "Milligram"},          {"MJ", "Minutes"},
                                  {"ML", "Milliliter"},         {"UN", "Unit"}};

static const lookup clm05_3[] = {/* 1325 Claim Frequency Type Code */
                                 {"1", "Original claim"},
                                 {"7", "Replacement of prior claim"},
                                 {"8", "Void/cancel of prior claim"}};

/* ---- Money held in a built resource ---- */

/* A Money built by fj_money back to integer minor units and its digits. */
static int money_minor(const json_t *money, int64_t *minor, int *digits) {
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

static json_t *money(int64_t minor, const char *currency) {
  Clinlog__V1__Money mo = CLINLOG__V1__MONEY__INIT;
  mo.minor_units = minor;
  mo.currency = (char *)(currency != NULL ? currency : "");
  return fj_money(&mo);
}

/* ---- Coverage ---- */

/* A Coverage as of an eligibility response or a claim. status: active /
 * cancelled (the 271 said so), draft (nothing confirmed it yet). */
typedef struct coverage_in {
  const Clinlog__V1__Identifier *payer;
  const char *payer_name, *member_id, *status, *plan, *group_number;
  const Clinlog__V1__Code *relationship;
  const Clinlog__V1__Period *period;
} coverage_in;

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
  json_object_set_new(c, "beneficiary", patient(m));
  fj_set(c, "relationship", fj_concept_code(in->relationship));
  fj_set(c, "period", fj_period(in->period));
  /* payor is 1..*: the payer as far as it is known */
  fj_set_one(c, "payor", or_unknown_ref(payer_ref(in->payer, in->payer_name)));
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
static int coverage_put(cl_fhir_map *m, const coverage_in *in, int keep_current, json_t **ref,
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
  return concept2(coding("http://terminology.hl7.org/CodeSystem/benefit-type", code, display),
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
      json_t *u = ind || fam ? coding("http://terminology.hl7.org/CodeSystem/benefit-unit",
                                      ind ? "individual" : "family", ind ? "Individual" : "Family")
                             : NULL;
      fj_set(it, "unit", concept2(u, X12("1207", eb02, e->coverage_level)));
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
                       ? coding("http://terminology.hl7.org/CodeSystem/benefit-term", term, td)
                       : NULL;
      fj_set(it, "term", concept2(tc, X12("615", eb06, t)));
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
  if (!fj_has(b->check_id))
    return 0;
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
  int rc = coverage_put(m, &in, rejected, &cov, err);
  if (rc < 0)
    return rc;

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
  json_object_set_new(q, "patient", patient(m));
  json_object_set_new(q, "created", cl_fhir_when(m, NULL));
  /* insurer is 1..1 */
  json_t *insurer = or_unknown_ref(payer_ref(b->payer, b->payer_name));
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
  json_object_set_new(s, "patient", patient(m));
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
                                  : or_unknown_ref(payer_ref(NULL, b->payer_name)));
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
static const char *modifier_system(const char *mod) {
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
                           coding(modifier_system(b->modifiers[i]), b->modifiers[i], NULL)));
  fj_push(exts, fj_ext(FJ_CLINLOG_EXT "revenue-code", "valueCoding", fj_coding(b->revenue_code)));
  fj_push(exts,
          fj_ext(FJ_CLINLOG_EXT "place-of-service", "valueCoding", fj_coding(b->place_of_service)));
  fj_push(exts, fj_ext(FJ_CLINLOG_EXT "drug-quantity", "valueQuantity",
                       x12_quantity(b->ndc_quantity, b->ndc_unit)));
  fj_set(c, "extension", exts);
  fj_set_one(c, "identifier", fj_business_id(b->charge_id));
  json_object_set_new(c, "status", json_string("billable"));
  json_object_set_new(c, "code", fj_or_unknown(fj_concept_code(b->procedure)));
  json_object_set_new(c, "subject", patient(m));
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
  if (net != NULL && qty != NULL && money_minor(net, &minor, &digits) &&
      money_minor(qty, &units, &ud) && ud == 0 && units > 0 && minor % units == 0)
    json_object_set_new(it, "unitPrice",
                        money(minor / units, json_string_value(json_object_get(net, "currency"))));
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

static int claim_submitted(cl_fhir_map *m, const Clinlog__V1__ClaimSubmitted *b, cl_err *err) {
  if (!fj_has(b->claim_id))
    return 0;
  /* the membership billed: the Coverage eligibility made, or a new one
   * (the provider's record of it) */
  coverage_in in = {b->payer, b->payer_name, b->member_id, "active", NULL, NULL, NULL, NULL};
  json_t *cov;
  int rc = coverage_put(m, &in, 1, &cov, err);
  if (rc < 0)
    return rc;
  if (cov == NULL) /* insurance.coverage is 1..1: the payer by name */
    cov = or_unknown_ref(payer_ref(NULL, b->payer_name));

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
  json_object_set_new(c, "patient", patient(m));
  json_object_set_new(c, "created", cl_fhir_when(m, b->submitted_at));
  fj_set(c, "insurer", payer_ref(b->payer, b->payer_name));
  /* provider is 1..1: the billing provider (2010AA) */
  json_object_set_new(c, "provider", or_unknown_ref(fj_reference(b->billing_provider)));
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
    json_t *cat = fj_or_unknown(concept2(X12("1033", cas01, g), NULL));
    json_t *reason = code_default(a[i]->reason, X12_CARC);
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
  return cur != NULL ? money(sum, cur) : NULL;
}

/* processNote number of a remark (RARC), appending it if new. */
static json_int_t note_number(json_t *notes, const Clinlog__V1__Code *c) {
  for (size_t i = 0; i < json_array_size(notes); i++) {
    json_t *n = json_array_get(notes, i);
    json_t *rc = json_object_get(json_array_get(json_object_get(n, "extension"), 0), "valueCoding");
    json_t *want = code_default(c, X12_RARC);
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
  json_t *cc = code_default(c, X12_RARC);
  json_t *cd = json_deep_copy(json_array_get(json_object_get(cc, "coding"), 0));
  json_decref(cc);
  json_array_append_new(notes, json_pack("{s:[o],s:I,s:s,s:s}", "extension",
                                         fj_ext(FJ_CLINLOG_EXT "remark-code", "valueCoding", cd),
                                         "number", num, "type", "display", "text", text));
  return num;
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
      return json_integer_value(json_object_get(it, "sequence"));
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
                          coding(modifier_system(l->modifiers[i]), l->modifiers[i], NULL)));
  fj_set(it, "modifier", mods);
  fj_set(it, "servicedDate", fj_date(l->service_date));
  fj_set(it, "noteNumber", nn);
  json_object_set_new(it, "adjudication", adj);
  json_array_append_new(add, it);
}

static int claim_adjudicated(cl_fhir_map *m, const Clinlog__V1__ClaimAdjudicated *b, cl_err *err) {
  if (!fj_has(b->claim_id))
    return 0;
  char bid[BID_MAX];
  if (fj_has(b->payer_claim_control_number)
          ? !join(bid, b->claim_id, b->payer_claim_control_number)
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
  fj_set_one(
      r, "extension",
      fj_ext(FJ_R5_EXT "ClaimResponse.decision", "valueCodeableConcept",
             concept2(decision != NULL ? coding("http://hl7.org/fhir/claim-decision", decision, dd)
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
  json_object_set_new(r, "patient", patient(m));
  json_object_set_new(r, "created", cl_fhir_when(m, b->adjudicated_at));
  /* insurer is 1..1: the payer of the 835, else the Claim's */
  json_t *insurer = payer_ref(b->payer, NULL), *cins = json_object_get(claim, "insurer");
  if (insurer == NULL && cins != NULL)
    insurer = json_deep_copy(cins);
  else if (insurer != NULL &&
           same_str(payer_id(b->payer), str_at(json_object_get(cins, "identifier"), "value", NULL)))
    fj_set_str(insurer, "display", json_string_value(json_object_get(cins, "display")));
  json_object_set_new(r, "insurer", or_unknown_ref(insurer));
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
    json_object_set_new(p, "date", date_of(cl_fhir_when(m, b->adjudicated_at)));
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

static int claim_appealed(cl_fhir_map *m, const Clinlog__V1__ClaimAppealed *b, cl_err *err) {
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
                       !join(bid, b->claim_id, b->payer_claim_control_number)
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
    return concept2(X12("591", bpr04, "ACH"), NULL);
  case CLINLOG__V1__PAYMENT_METHOD__PAYMENT_METHOD_CHECK:
    return concept2(coding(V2_0570, "CHCK", "Check"), X12("591", bpr04, "CHK"));
  case CLINLOG__V1__PAYMENT_METHOD__PAYMENT_METHOD_WIRE:
    return concept2(X12("591", bpr04, "FWT"), NULL);
  case CLINLOG__V1__PAYMENT_METHOD__PAYMENT_METHOD_NONE:
    return concept2(X12("591", bpr04, "NON"), NULL);
  case CLINLOG__V1__PAYMENT_METHOD__PAYMENT_METHOD_CARD: /* credit or debit: not said */
    return text_concept("Card");
  case CLINLOG__V1__PAYMENT_METHOD__PAYMENT_METHOD_CASH:
    return concept2(coding(V2_0570, "CASH", "Cash"), NULL);
  case CLINLOG__V1__PAYMENT_METHOD__PAYMENT_METHOD_BOP:
    return concept2(X12("591", bpr04, "BOP"), NULL);
  default:
    return NULL;
  }
}

static int payment_posted(cl_fhir_map *m, const Clinlog__V1__PaymentPosted *b, cl_err *err) {
  if (!fj_has(b->payment_id))
    return 0;
  /* one remittance (BPR/TRN) of a payer pays several claims: its postings
   * share one PaymentReconciliation; anything else stands alone */
  char bid[BID_MAX];
  if (fj_has(b->trace_number) && payer_id(b->payer) != NULL) {
    if (!join(bid, payer_id(b->payer), b->trace_number))
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
    pdate = date_of(cl_fhir_when(m, b->posted_at));
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
    fj_set(p, "paymentIssuer", payer_ref(b->payer, b->payer_name));
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
      if (!money_minor(a, &v, &digits) || (dg >= 0 && digits != dg))
        continue;
      dg = digits;
      sum += v;
      currency = json_string_value(json_object_get(a, "currency"));
    }
    /* nothing stated an amount: absent, with its reason */
    amount = dg >= 0 ? money(sum, currency) : fj_unknown();
  }
  json_object_set_new(p, "paymentAmount", amount);
  fj_set(p, "paymentIdentifier",
         fj_identifier_text(b->payer != NULL ? "Check or EFT trace number (TRN02)"
                                             : "Payment reference number",
                            b->trace_number));
  fj_set(p, "detail", details);
  return cl_fhir_map_put(m, p, err);
}

int cl_fhir_map_billing(cl_fhir_map *m, cl_err *err) {
  const Clinlog__V1__Event *ev = m->ev;
  switch (ev->body_case) {
  case CLINLOG__V1__EVENT__BODY_ELIGIBILITY_CHECKED:
    return eligibility_checked(m, ev->eligibility_checked, err);
  case CLINLOG__V1__EVENT__BODY_CHARGE_CAPTURED:
    return charge_captured(m, ev->charge_captured, err);
  case CLINLOG__V1__EVENT__BODY_CLAIM_SUBMITTED:
    return claim_submitted(m, ev->claim_submitted, err);
  case CLINLOG__V1__EVENT__BODY_CLAIM_ADJUDICATED:
    return claim_adjudicated(m, ev->claim_adjudicated, err);
  case CLINLOG__V1__EVENT__BODY_CLAIM_APPEALED:
    return claim_appealed(m, ev->claim_appealed, err);
  case CLINLOG__V1__EVENT__BODY_PAYMENT_POSTED:
    return payment_posted(m, ev->payment_posted, err);
  default:
    return 0;
  }
}

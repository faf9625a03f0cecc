/* Billing and revenue-cycle mappings (map_billing.c, map_claims.c): what
 * the two files share. Private to them.
 *
 * map_billing.c has the builders below, Coverage, EligibilityChecked and
 * ChargeCaptured, and the dispatcher; map_claims.c has ClaimSubmitted,
 * ClaimAdjudicated, ClaimAppealed and PaymentPosted. */
#ifndef CL_QUERY_FHIR_MAP_BILLING_INT_H
#define CL_QUERY_FHIR_MAP_BILLING_INT_H

#include <stddef.h>
#include <stdint.h>

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

/* An X12 code list: code -> display. */
typedef struct lookup {
  const char *code, *display;
} lookup;

/* The display of code in t[0..n) (NULL: unknown, or code NULL). */
const char *mb_find(const lookup *t, size_t n, const char *code);
#define FIND(t, code) mb_find((t), sizeof(t) / sizeof((t)[0]), (code))

/* A coding of an X12 005010 element's code list (display from t[0..n)
 * when the code is one we know); NULL when code is empty. */
json_t *mb_x12_coding(const char *element, const lookup *t, size_t n, const char *code);
#define X12(element, t, code) mb_x12_coding((element), (t), sizeof(t) / sizeof((t)[0]), (code))

/* ---- small builders (returned-owned; NULL inputs give NULL unless said) ---- */

/* A Coding (display optional). */
json_t *mb_coding(const char *system, const char *code, const char *display);
/* {coding: [a, b]} (NULLs skipped; a and b stolen). */
json_t *mb_concept2(json_t *a, json_t *b);
/* {text}. */
json_t *mb_text_concept(const char *text);
/* r, or the Reference {display: "unknown"} of a required element the event
 * does not state. */
json_t *mb_or_unknown_ref(json_t *r);
/* The CodeableConcept of a Code, its system defaulted when the sender left
 * it empty (CARC, RARC: the .proto names the system). */
json_t *mb_code_default(const Clinlog__V1__Code *c, const char *system);
/* The date (YYYY-MM-DD) of an instant (stolen). */
json_t *mb_date_of(json_t *instant);
/* The Reference(Patient) of the event's stream (required everywhere here:
 * "unknown" only outside a patient's stream). */
json_t *mb_patient(const cl_fhir_map *m);
/* The payer as a Reference(Organization): {identifier, display}. */
json_t *mb_payer_ref(const Clinlog__V1__Identifier *payer, const char *name);
/* The payer's identifier value, or NULL when none. */
const char *mb_payer_id(const Clinlog__V1__Identifier *payer);
/* "a|b" into out; 0 if it does not fit. */
int mb_join(char out[BID_MAX], const char *a, const char *b);
/* A Money built by fj_money back to integer minor units and its digits;
 * 0 if money is not one. */
int mb_money_minor(const json_t *money, int64_t *minor, int *digits);
/* A Money (fj_money) of integer minor units in currency (NULL: none). */
json_t *mb_money(int64_t minor, const char *currency);
/* CPT modifiers are two digits (and the Category II 1P, 2P, 3P, 8P); every
 * other modifier is a HCPCS Level II one: the system of mod. */
const char *mb_modifier_system(const char *mod);

/* A Coverage as of an eligibility response or a claim. status: active /
 * cancelled (the 271 said so), draft (nothing confirmed it yet). */
typedef struct coverage_in {
  const Clinlog__V1__Identifier *payer;
  const char *payer_name, *member_id, *status, *plan, *group_number;
  const Clinlog__V1__Code *relationship;
  const Clinlog__V1__Period *period;
} coverage_in;

/* The Coverage of payer + member: puts a fresh one unless keep_current and
 * one exists. *ref gets Reference(Coverage), or NULL when neither payer nor
 * member is known. Errors: as cl_fhir_map_put. */
int mb_coverage_put(cl_fhir_map *m, const coverage_in *in, int keep_current, json_t **ref,
                    cl_err *err);

/* ---- the claim events (map_claims.c): 0, or an error as cl_fhir_map_put ---- */

int mb_claim_submitted(cl_fhir_map *m, const Clinlog__V1__ClaimSubmitted *b, cl_err *err);
int mb_claim_adjudicated(cl_fhir_map *m, const Clinlog__V1__ClaimAdjudicated *b, cl_err *err);
int mb_claim_appealed(cl_fhir_map *m, const Clinlog__V1__ClaimAppealed *b, cl_err *err);
int mb_payment_posted(cl_fhir_map *m, const Clinlog__V1__PaymentPosted *b, cl_err *err);

#endif

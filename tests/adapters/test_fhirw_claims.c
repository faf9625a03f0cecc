/* adapters/fhir/fhirw_claims.c and fhirw_view.c: a Claim (and a
 * ClaimResponse) maps to the event its view derives from, reads back the
 * same through the views' mapper with the ChargeItems and Coverage the
 * views hold, and every bad input is refused with its FHIRPath element path
 * (ChargeItem itself: test_fhirw_billing.c). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clinlog/v1/event.pb-c.h"
#include "fhirw_fixture.h"

#define P1 "{\"reference\":\"Patient/p1\"}"
#define EXT "https://clinlog.dev/fhir/StructureDefinition/"
#define BID "urn:clinlog:id"
#define CPT "http://www.ama-assn.org/go/cpt"
#define X12_355 "https://codesystem.x12.org/005010/355"
#define I10 "{\"coding\":[{\"system\":\"http://hl7.org/fhir/sid/icd-10-cm\",\"code\":\"I10\"}]}"
#define E11 "{\"coding\":[{\"system\":\"http://hl7.org/fhir/sid/icd-10-cm\",\"code\":\"E11.9\"}]}"
#define USD(v) "{\"value\":" v ",\"currency\":\"USD\"}"

/* The charge billed: CPT 99213 with modifier 25, by npi1, for I10. */
#define CHARGE                                                                                     \
  "{\"resourceType\":\"ChargeItem\",\"extension\":[{\"url\":\"" EXT "procedure-modifier\","        \
  "\"valueCoding\":{\"system\":\"" CPT "\",\"code\":\"25\"}}],\"identifier\":[{\"system\":\"" BID  \
  "\",\"value\":\"ch-1\"}],\"status\":\"billable\",\"code\":{\"coding\":[{\"system\":\"" CPT       \
  "\",\"code\":\"99213\"}]},\"subject\":" P1 ",\"occurrenceDateTime\":\"2026-03-01\","             \
  "\"performer\":[{\"actor\":{\"reference\":\"Practitioner/npi1\"}}],\"quantity\":{\"value\":1,"   \
  "\"unit\":\"Unit\",\"system\":\"" X12_355 "\",\"code\":\"UN\"},\"priceOverride\":" USD(          \
      "125.50") ",\"enteredDate\":\"2026-03-01T12:00:00Z\",\"reason\":[" I10 "]}"

/* The Claim line the views make of CHARGE. */
#define ITEM                                                                                       \
  "{\"extension\":[{\"url\":\"http://hl7.org/fhir/5.0/StructureDefinition/extension-Claim.item."   \
  "traceNumber\",\"valueIdentifier\":{\"system\":\"" BID                                           \
  "\",\"value\":\"ch-1\"}}],\"sequence\":1,"                                                       \
  "\"careTeamSequence\":[1],\"diagnosisSequence\":[1],\"productOrService\":{\"coding\":[{"         \
  "\"system\":\"" CPT "\",\"code\":\"99213\"}]},\"modifier\":[{\"coding\":[{\"system\":\"" CPT     \
  "\",\"code\":\"25\"}]}],\"servicedDate\":\"2026-03-01\",\"quantity\":{\"value\":1,\"unit\":"     \
  "\"Unit\",\"system\":\"" X12_355                                                                 \
  "\",\"code\":\"UN\"},\"unitPrice\":" USD("125.50") ",\"net\":" USD("125.50") "}"

#define CARE_TEAM                                                                                  \
  "\"careTeam\":[{\"sequence\":1,\"provider\":{\"reference\":\"Practitioner/npi1\"},\"role\":{"    \
  "\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/claimcareteamrole\",\"code\":"  \
  "\"primary\",\"display\":\"Primary provider\"}]}}]"
#define PRINCIPAL                                                                                  \
  "\"type\":[{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/ex-diagnosistype\"," \
  "\"code\":\"principal\",\"display\":\"Principal Diagnosis\"}]}]"
#define PRIORITY                                                                                   \
  "\"priority\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/"                 \
  "processpriority\","                                                                             \
  "\"code\":\"normal\",\"display\":\"Normal\"}]}"
#define PROFESSIONAL                                                                               \
  "\"type\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/claim-type\","        \
  "\"code\":\"professional\",\"display\":\"Professional\"}]}"
#define FREQ(code, display)                                                                        \
  "{\"url\":\"" EXT "claim-frequency\",\"valueCoding\":{\"system\":\"https://codesystem.x12.org/"  \
  "005010/1325\",\"code\":\"" code "\",\"display\":\"" display "\"}}"

/* A Claim of the payer by name only (no Coverage: the views make none). */
#define HEAD "{\"resourceType\":\"Claim\","
#define BODY(status, more)                                                                         \
  "\"identifier\":[{\"system\":\"" BID "\",\"value\":\"clm-2\"}],\"status\":\"" status             \
  "\"," PROFESSIONAL ",\"use\":\"claim\",\"patient\":" P1 ",\"created\":\"2026-03-02T09:00:00Z\"," \
  "\"insurer\":{\"display\":\"Acme "                                                               \
  "Health\"},\"provider\":{\"reference\":\"Organization/b1\"}," PRIORITY "," CARE_TEAM             \
  ",\"diagnosis\":[{\"sequence\":1,\"diagnosisCodeableConcept\":" I10 "," PRINCIPAL                \
  "}],\"insurance\":[{\"sequence\":1,\"focal\":true,\"coverage\":{\"display\":"                    \
  "\"Acme Health\"}}],\"item\":[" ITEM "],\"total\":" USD("125.50") more "}"
#define CLAIM BODY("active", "")

static char cov_id[CL_FHIR_ID_MAX];

/* The views hold CHARGE (as they make it) and the Coverage PAYER1|M123. */
static void world(void) {
  fw_world = json_object();
  cl_fhirw_mapped *m = fw_map_ok(CHARGE);
  json_object_set_new(fw_world, m->id, fw_view_of(m));
  cl_fhirw_mapped_free(m);
  cl_fhir_id("Coverage", "p1", "PAYER1|M123", cov_id);
  json_object_set_new(fw_world, cov_id,
                      json_pack("{s:s,s:s,s:[{s:s,s:s}],s:s}", "resourceType", "Coverage", "id",
                                cov_id, "identifier", "system", BID, "value", "PAYER1|M123",
                                "status", "active"));
}

static void unworld(void) {
  json_decref(fw_world);
  fw_world = NULL;
}

TestSuite(fhirw_claims, .timeout = 60, .init = world, .fini = unworld);

Test(fhirw_claims, claim_round_trips_with_its_charges_and_coverage) {
  char text[8192];
  snprintf(
      text, sizeof text,
      HEAD
      "\"extension\":[{\"url\":\"" EXT "claim-facility-code\",\"valueCoding\":{"
      "\"system\":\"https://www.cms.gov/Medicare/Coding/place-of-service-codes/"
      "Place_of_Service_Code_Set\",\"code\":\"11\"}}," FREQ(
          "7",
          "Replacement of prior "
          "claim") "],"
                   "\"identifier\":[{\"system\":\"" BID
                   "\",\"value\":\"clm-1\"},{\"type\":{\"text\":"
                   "\"Patient control number (CLM01)\"},\"value\":\"PCN1\"},{\"type\":{\"text\":"
                   "\"Interchange control number (ISA13)\"},\"value\":\"000000001\"},{\"type\":{"
                   "\"text\":\"Transaction set control number (ST02)\"},\"value\":\"0001\"}],"
                   "\"status\":\"active\"," PROFESSIONAL ",\"use\":\"claim\",\"patient\":" P1 ","
                   "\"created\":\"2026-03-02T09:00:00Z\",\"insurer\":{\"identifier\":{\"value\":"
                   "\"PAYER1\"},\"display\":\"Acme "
                   "Health\"},\"provider\":{\"identifier\":{\"system\":"
                   "\"http://hl7.org/fhir/sid/"
                   "us-npi\",\"value\":\"1234567893\"},\"display\":\"Main "
                   "Clinic\"}," PRIORITY ",\"related\":[{\"relationship\":{\"coding\":[{\"system\":"
                   "\"http://terminology.hl7.org/CodeSystem/ex-relatedclaimrelationship\",\"code\":"
                   "\"prior\",\"display\":\"Prior Claim\"}]},\"reference\":{\"type\":{\"text\":"
                   "\"Payer claim control number (REF*F8)\"},\"value\":\"ICN-9\"}}]," CARE_TEAM ","
                   "\"diagnosis\":[{\"sequence\":1,\"diagnosisCodeableConcept\":" E11 "," PRINCIPAL
                   "},{\"sequence\":2,\"diagnosisCodeableConcept\":" I10 "}],\"insurance\":[{"
                   "\"sequence\":1,\"focal\":true,\"coverage\":{\"reference\":\"Coverage/%s\"}}],"
                   "\"item\":[%s],\"total\":" USD("125.50") "}",
      cov_id, ITEM);
  /* the line points at the claim's second diagnosis */
  char *two = strstr(text, "\"diagnosisSequence\":[1]");
  cr_assert_not_null(two);
  two[21] = '2';
  fw_round_trip(text);
  cl_fhirw_mapped *m = fw_map_ok(text);
  Clinlog__V1__Event *ev = fw_only_event(m, CLINLOG__V1__EVENT__BODY_CLAIM_SUBMITTED);
  const Clinlog__V1__ClaimSubmitted *b = ev->claim_submitted;
  cr_assert_str_eq(b->claim_id, "clm-1");
  cr_assert_str_eq(m->bid, "clm-1");
  cr_assert_str_eq(b->patient_control_number, "PCN1");
  cr_assert_str_eq(b->interchange_control_number, "000000001");
  cr_assert_str_eq(b->transaction_set_control_number, "0001");
  cr_assert_str_eq(b->claim_frequency_code, "7");
  cr_assert_str_eq(b->payer_claim_control_number, "ICN-9");
  cr_assert_str_eq(b->payer->value, "PAYER1");
  cr_assert_str_eq(b->payer_name, "Acme Health");
  cr_assert_str_eq(b->member_id, "M123");
  cr_assert_eq(b->type, CLINLOG__V1__CLAIM_TYPE__CLAIM_TYPE_PROFESSIONAL);
  cr_assert_eq(b->n_charge_ids, 1);
  cr_assert_str_eq(b->charge_ids[0], "ch-1");
  cr_assert_eq(b->n_diagnoses, 2);
  cr_assert_str_eq(b->diagnoses[0]->code, "E11.9");
  cr_assert_eq(b->total->minor_units, 12550);
  cr_assert_str_eq(b->billing_provider->identifier->value, "1234567893");
  cr_assert_eq(ev->occurred_at->seconds, 1772442000); /* created */
  clinlog__v1__event__free_unpacked(ev, NULL);
  cl_fhirw_mapped_free(m);
  /* the payer by name, no member: no Coverage */
  fw_round_trip(HEAD CLAIM);
  /* a void cancels the claim */
  fw_round_trip(
      HEAD "\"extension\":[" FREQ("8", "Void/cancel of prior claim") "]," BODY("cancelled", ""));
}

Test(fhirw_claims, a_claim_of_unknown_type_and_provider_round_trips) {
  /* what the views write for a claim that states neither */
  const char *unknown = "{\"extension\":[{\"url\":\"http://hl7.org/fhir/StructureDefinition/"
                        "data-absent-reason\",\"valueCode\":\"unknown\"}]}";
  char text[8192];
  snprintf(text, sizeof text, "%s", HEAD CLAIM);
  char *t = strstr(text, PROFESSIONAL), *pv = NULL;
  cr_assert_not_null(t);
  char out[8192];
  snprintf(out, sizeof out, "%.*s\"type\":%s%s", (int)(t - text), text, unknown,
           t + strlen(PROFESSIONAL));
  pv = strstr(out, "{\"reference\":\"Organization/b1\"}");
  cr_assert_not_null(pv);
  snprintf(text, sizeof text, "%.*s{\"display\":\"unknown\"}%s", (int)(pv - out), out,
           pv + strlen("{\"reference\":\"Organization/b1\"}"));
  fw_round_trip(text);
  cl_fhirw_mapped *m = fw_map_ok(text);
  Clinlog__V1__Event *ev = fw_only_event(m, CLINLOG__V1__EVENT__BODY_CLAIM_SUBMITTED);
  cr_assert_eq(ev->claim_submitted->type, CLINLOG__V1__CLAIM_TYPE__CLAIM_TYPE_UNSPECIFIED);
  cr_assert_null(ev->claim_submitted->billing_provider);
  clinlog__v1__event__free_unpacked(ev, NULL);
  cl_fhirw_mapped_free(m);
}

#define PRIORITY_AT "," PRIORITY
static const fw_bad BAD_CLAIM[] = {
    {"{\"resourceType\":\"Claim\",\"patient\":" P1 ",\"use\":\"claim\"}", 400, "Claim.status",
     "required"},
    {HEAD BODY("draft", ""), 422, "Claim.status", "code-invalid"},
    {HEAD BODY("cancelled", ""), 422, "Claim.status", "value"},
    {HEAD "\"billablePeriod\":{\"start\":\"2026-03-01\"}," CLAIM, 400, "Claim.billablePeriod",
     "not-supported"},
    {HEAD "\"extension\":[{\"url\":\"" EXT "other\",\"valueCoding\":{\"code\":\"1\"}}]," CLAIM, 422,
     "Claim.extension[0].url", "not-supported"},
    {HEAD "\"extension\":[{\"url\":\"" EXT "claim-frequency\",\"valueCoding\":{\"system\":"
          "\"urn:x\",\"code\":\"1\"}}]," CLAIM,
     422, "Claim.extension[0].valueCoding.system", "code-invalid"},
    {HEAD "\"extension\":[{\"url\":\"" EXT "claim-frequency\",\"valueString\":\"1\"}]," CLAIM, 400,
     "Claim.extension[0].valueString", "not-supported"},
    {HEAD "\"extension\":[" FREQ("1", "Original claim") "," FREQ("1", "Original claim") "]," CLAIM,
     422, "Claim.extension[1]", "not-supported"},
    {HEAD "\"identifier\":[{\"type\":{\"coding\":[{\"code\":\"MR\"}]},\"value\":\"1\"}],"
          "\"patient\":" P1 "}",
     400, "Claim.identifier[0].type.coding", "not-supported"},
    {HEAD "\"identifier\":[{\"type\":{\"text\":\"Check number\"},\"value\":\"1\"}],\"patient\":" P1
          "}",
     422, "Claim.identifier[0].type.text", "not-supported"},
    {HEAD "\"identifier\":[{\"type\":{\"text\":\"Patient control number (CLM01)\"}}],"
          "\"patient\":" P1 "}",
     400, "Claim.identifier[0].value", "required"},
    {HEAD "\"patient\":{\"reference\":\"Patient/nobody\"}}", 422, "Claim.patient.reference",
     "not-found"},
    {HEAD "\"status\":\"active\",\"patient\":" P1 "}", 400, "Claim.use", "required"},
    {HEAD "\"status\":\"active\",\"use\":\"claim\",\"patient\":" P1 "}", 400, "Claim.type",
     "required"},
    {HEAD "\"status\":\"active\",\"use\":\"preauthorization\",\"patient\":" P1 "}", 422,
     "Claim.use", "code-invalid"},
    {HEAD "\"status\":\"active\",\"use\":\"claim\",\"patient\":" P1 ",\"type\":{\"coding\":[{"
          "\"system\":\"http://terminology.hl7.org/CodeSystem/claim-type\",\"code\":\"pharmacy\"}"
          "]}}",
     422, "Claim.type.coding[0].code", "code-invalid"},
    {HEAD "\"status\":\"active\",\"use\":\"claim\",\"patient\":" P1 "," PROFESSIONAL "}", 400,
     "Claim.created", "required"},
    {HEAD "\"status\":\"active\",\"use\":\"claim\",\"patient\":" P1 "," PROFESSIONAL ",\"created\":"
          "\"2026-03-02T09:00:00Z\"}",
     400, "Claim.provider", "required"},
    {HEAD "\"status\":\"active\",\"use\":\"claim\",\"patient\":" P1 "," PROFESSIONAL ",\"created\":"
          "\"2026-03-02T09:00:00Z\",\"provider\":{\"display\":\"x\"}}",
     400, "Claim.insurance", "required"},
    {HEAD "\"created\":\"2026-03-02\",\"patient\":" P1 "}", 400, "Claim.created", "value"},
    {HEAD "\"insurer\":{\"reference\":\"Organization/o1\"},\"patient\":" P1 "}", 400,
     "Claim.insurer.reference", "not-supported"},
    {HEAD "\"insurance\":[{\"coverage\":{\"display\":\"a\"}},{\"coverage\":{\"display\":\"b\"}}],"
          "\"patient\":" P1 "}",
     422, "Claim.insurance[1]", "not-supported"},
    {HEAD "\"insurance\":[{\"coverage\":{\"reference\":\"Coverage/unknown\"}}],\"status\":"
          "\"active\",\"use\":\"claim\",\"patient\":" P1 "," PROFESSIONAL ",\"created\":"
          "\"2026-03-02T09:00:00Z\",\"provider\":{\"display\":\"x\"}}",
     422, "Claim.insurance[0].coverage.reference", "not-found"},
    {HEAD "\"insurance\":[{\"coverage\":{\"reference\":\"Encounter/x\"}}],\"status\":"
          "\"active\",\"use\":\"claim\",\"patient\":" P1 "," PROFESSIONAL ",\"created\":"
          "\"2026-03-02T09:00:00Z\",\"provider\":{\"display\":\"x\"}}",
     422, "Claim.insurance[0].coverage", "invalid"},
    {HEAD "\"related\":[{\"reference\":{\"value\":\"ICN\"}}]," CLAIM, 422,
     "Claim.related[0].reference.type", "not-supported"},
    {HEAD "\"related\":[{\"reference\":{\"type\":{\"text\":\"Payer claim control number "
          "(REF*F8)\"}}}]," CLAIM,
     400, "Claim.related[0].reference.value", "required"},
    {HEAD "\"related\":[{\"claim\":{\"reference\":\"Claim/x\"}}]," CLAIM, 400,
     "Claim.related[0].claim", "not-supported"},
    {HEAD "\"diagnosis\":[{\"sequence\":1}],\"patient\":" P1 "}", 400,
     "Claim.diagnosis[0].diagnosisCodeableConcept", "required"},
    {HEAD "\"diagnosis\":[{\"sequence\":1,\"diagnosisReference\":{\"reference\":\"Condition/c\"}}"
          "],\"patient\":" P1 "}",
     400, "Claim.diagnosis[0].diagnosisReference", "not-supported"},
    {HEAD "\"item\":[{\"sequence\":1}],\"patient\":" P1 "}", 400, "Claim.item[0].extension",
     "required"},
    {HEAD "\"item\":[{\"extension\":[{\"url\":\"" EXT "x\"}]}],\"patient\":" P1 "}", 422,
     "Claim.item[0].extension[0].url", "not-supported"},
    {HEAD "\"item\":[{\"extension\":[{\"url\":\"http://hl7.org/fhir/5.0/StructureDefinition/"
          "extension-Claim.item.traceNumber\",\"valueIdentifier\":{\"value\":\"ch-1\"}}]}],"
          "\"patient\":" P1 "}",
     400, "Claim.item[0].extension[0].valueIdentifier", "value"},
    {HEAD "\"total\":" USD("125.5") ",\"patient\":" P1 "}", 400, "Claim.total.value", "value"},
    /* what the views derive differs from what was written */
    {HEAD "\"identifier\":[{\"system\":\"" BID
          "\",\"value\":\"clm-3\"}],\"status\":\"active\"," PROFESSIONAL
          ",\"use\":\"claim\",\"patient\":" P1 ",\"created\":"
          "\"2026-03-02T09:00:00Z\",\"provider\":{\"display\":\"x\"},\"insurance\":[{"
          "\"sequence\":1,\"focal\":true,\"coverage\":{\"display\":\"unknown\"}}]}",
     400, "Claim.priority", "required"},
    {HEAD "\"identifier\":[{\"system\":\"" BID
          "\",\"value\":\"clm-3\"}],\"status\":\"active\"," PROFESSIONAL
          ",\"use\":\"claim\",\"patient\":" P1 ",\"created\":"
          "\"2026-03-02T09:00:00Z\",\"provider\":{\"display\":\"x\"},\"insurance\":[{"
          "\"coverage\":{\"display\":\"unknown\"}}]" PRIORITY_AT "}",
     400, "Claim.insurance[0].sequence", "required"},
};

Test(fhirw_claims, every_bad_claim_is_refused_naming_the_element) {
  fw_refused_all(BAD_CLAIM, sizeof BAD_CLAIM / sizeof BAD_CLAIM[0]);
}

/* A Claim written with its ChargeItem in one input (a Bundle, a load): the
 * line is checked against the ChargeItem the input wrote. */
Test(fhirw_claims, a_claim_reads_its_charges_from_the_same_input) {
  json_decref(fw_world);
  fw_world = NULL; /* the views hold nothing */
  cl_fhirw_opts o = fw_opts();
  json_t *refs = json_object(), *charge = fw_parse(CHARGE), *claim = fw_parse(HEAD CLAIM);
  o.refs = refs;
  cl_fhirw_mapped *m = NULL, *cm = NULL;
  cl_fhirw_error fe;
  cl_err err;
  /* before the ChargeItem: its line is unknown to the views */
  cr_assert_eq(cl_fhirw_map(claim, NULL, NULL, "", &o, &cm, &fe, &err), CL_EMALFORMED);
  cr_assert_str_eq(fe.expression, "Claim.careTeam", "%s", err.msg);
  cr_assert_eq(cl_fhirw_map(charge, NULL, NULL, "", &o, &m, &fe, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_fhirw_refs_add(refs, m, "urn:uuid:c1"), 0);
  cr_assert_eq(cl_fhirw_refs_keep(refs, m, charge), 0);
  cr_assert_eq(cl_fhirw_map(claim, NULL, NULL, "", &o, &cm, &fe, &err), 0, "%s", err.msg);
  cr_assert_eq(cm->ev[0].type, CLINLOG__V1__EVENT__BODY_CLAIM_SUBMITTED);
  cl_fhirw_mapped_free(cm);
  cl_fhirw_mapped_free(m);
  json_decref(claim);
  json_decref(charge);
  json_decref(refs);
}

/* A Claim whose lines say other than their ChargeItems. */
Test(fhirw_claims, a_claim_line_other_than_its_charge_is_refused) {
  struct {
    const char *from, *to, *expr, *code;
  } cases[] = {
      {"\"code\":\"99213\"}]},\"modifier\"", "\"code\":\"99214\"}]},\"modifier\"",
       "Claim.item[0].productOrService.coding[0].code", "value"},
      {"\"servicedDate\":", "\"factor\":2,\"servicedDate\":", "Claim.item[0].factor",
       "not-supported"},
      {"\"careTeam\":[{", "\"careTeamX\":[{", "Claim.careTeamX", "not-supported"},
      {"\"value\":\"ch-1\"}}],\"sequence\"", "\"value\":\"ch-9\"}}],\"sequence\"", "Claim.careTeam",
       "not-supported"},
      {"\"diagnosisSequence\":[1],", "", "Claim.item[0].diagnosisSequence", "required"},
  };
  cl_fhirw_opts o = fw_opts();
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *base = HEAD CLAIM, *at = strstr(base, cases[i].from);
    cr_assert_not_null(at, "case %zu", i);
    char text[8192];
    snprintf(text, sizeof text, "%.*s%s%s", (int)(at - base), base, cases[i].to,
             at + strlen(cases[i].from));
    cl_fhirw_error fe;
    cl_err err;
    fw_map_refused(text, &o, i, &fe, &err);
    cr_assert_str_eq(fe.expression, cases[i].expr, "case %zu: %s", i, err.msg);
    cr_assert_str_eq(fe.code, cases[i].code, "case %zu: %s", i, err.msg);
  }
}

/* ---- ClaimResponse -> ClaimAdjudicated ---- */

#define X12_EL "https://codesystem.x12.org/005010/"
#define CARC "https://x12.org/codes/claim-adjustment-reason-codes"
#define RARC "https://x12.org/codes/remittance-advice-remark-codes"
#define ADJ "http://terminology.hl7.org/CodeSystem/adjudication"
#define C4BB "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudication"
#define AMOUNT(code, display, v)                                                                   \
  "{\"category\":{\"coding\":[{\"system\":\"" ADJ "\",\"code\":\"" code                            \
  "\",\"display\":\"" display "\"}]},\"amount\":" USD(v) "}"
#define CAS(group, display, carc, v)                                                               \
  "{\"category\":{\"coding\":[{\"system\":\"" X12_EL "1033\",\"code\":\"" group "\",\"display\":"  \
  "\"" display "\"}]},\"reason\":{\"coding\":[{\"system\":\"" CARC "\",\"code\":\"" carc "\"}]},"  \
  "\"amount\":" USD(v) "}"
#define NOTE(n, code, text)                                                                        \
  "{\"extension\":[{\"url\":\"" EXT "remark-code\",\"valueCoding\":{\"system\":\"" RARC "\","      \
  "\"code\":\"" code "\"}}],\"number\":" n ",\"type\":\"display\",\"text\":\"" text "\"}"
#define RESP_TRACE                                                                                 \
  "http://hl7.org/fhir/5.0/StructureDefinition/extension-ClaimResponse.item.traceNumber"

/* A partial payment of the clm-2 line (its Claim: fw_world, claim_id). */
#define RESPONSE_HEAD                                                                              \
  "{\"resourceType\":\"ClaimResponse\",\"extension\":[{\"url\":\"http://hl7.org/fhir/5.0/"         \
  "StructureDefinition/extension-ClaimResponse.decision\",\"valueCodeableConcept\":{\"coding\":[{" \
  "\"system\":\"http://hl7.org/fhir/claim-decision\",\"code\":\"partial\",\"display\":"            \
  "\"Partial\"},{\"system\":\"" X12_EL "1029\",\"code\":\"1\",\"display\":\"Processed as "         \
  "Primary\"}]}}],\"identifier\":[{\"system\":\"" BID "\",\"value\":\"clm-2|ICN-1\"},{\"type\":{"  \
  "\"text\":\"Payer claim control number (CLP07)\"},\"value\":\"ICN-1\"},{\"type\":{\"text\":"     \
  "\"Interchange control number "                                                                  \
  "(ISA13)\"},\"value\":\"000000002\"}],\"status\":\"active\"," PROFESSIONAL                       \
  ",\"use\":\"claim\",\"patient\":" P1 ",\"created\":\"2026-03-10T00:00:00Z\","                    \
  "\"insurer\":{\"identifier\":{\"value\":\"PAYER1\"}},\"request\":{\"reference\":\"Claim/%s\"},"  \
  "\"outcome\":\"complete\",\"disposition\":\"Claim paid in part (CLP02 1: Processed as "          \
  "Primary)\","
#define RESPONSE_LINES                                                                             \
  "\"item\":[{\"extension\":[{\"url\":\"" RESP_TRACE "\",\"valueIdentifier\":{\"value\":"          \
  "\"ch-1\"}}],\"itemSequence\":1,\"noteNumber\":[2],\"adjudication\":[" AMOUNT(                   \
      "submitted", "Submitted Amount",                                                             \
      "125.50") "," AMOUNT("eligible", "Eligible Amount",                                          \
                           "100.00") "," AMOUNT("benefit", "Benefit Amount",                       \
                                                "80.00") ","                                       \
                                                         "{\"category\":{\"coding\":[{\"system\":" \
                                                         "\"http://hl7.org/fhir/us/carin-bb/"      \
                                                         "CodeSystem/"                             \
                                                         "C4BBAdjudicationDiscriminator\","        \
                                                         "\"code\":\"allowedunits\",\"display\":"  \
                                                         "\"allowed units\"}]},"                   \
                                                         "\"value\":1}," CAS(                      \
                                                             "PR", "Patient Responsibility", "2",  \
                                                             "20.00") "," CAS("CO",                \
                                                                              "Contractual "       \
                                                                              "Obligations",       \
                                                                              "45",                \
                                                                              "25.50") ",{"        \
                                                                                       "\"categor" \
                                                                                       "y\":{"     \
                                                                                       "\"coding"  \
                                                                                       "\":[{"     \
                                                                                       "\"system"  \
                                                                                       "\":"       \
                                                                                       "\"" X12_EL \
                                                                                       "1033\","   \
                                                                                       "\"code\":" \
                                                                                       "\"CO\","   \
                                                                                       "\"display" \
                                                                                       "\":"       \
                                                                                       "\"Contrac" \
                                                                                       "tual "     \
                                                                                       "Obligatio" \
                                                                                       "ns\"}]},"  \
                                                                                       "\"reason"  \
                                                                                       "\":{"      \
                                                                                       "\"coding"  \
                                                                                       "\":[{"     \
                                                                                       "\"system"  \
                                                                                       "\":"       \
                                                                                       "\"" CARC   \
                                                                                       "\","       \
                                                                                       "\"code\":" \
                                                                                       "\"45\"}]}" \
                                                                                       ",\"value"  \
                                                                                       "\":1}]}],"
#define RESPONSE_TAIL                                                                                                                                                     \
  "\"adjudication\":[" CAS("OA", "Other adjustments", "23", "0.00") "],\"total\":[" AMOUNT(                                                                               \
      "submitted", "Submitted Amount",                                                                                                                                    \
      "125.50") "," AMOUNT("eligible", "Eligible Amount",                                                                                                                 \
                           "100.00") "," AMOUNT("benefit", "Benefit Amount",                                                                                              \
                                                "80.00") ","                                                                                                              \
                                                         "{\"category\":{\"coding\":[{\"system\":"                                                                        \
                                                         "\"" C4BB "\",\"code\":\"coinsurance\","                                                                         \
                                                         "\"display\":"                                                                                                   \
                                                         "\"Co-insurance\"}]},\"amount\":" USD(                                                                           \
                                                             "20.00") "},{\"category\":{"                                                                                 \
                                                                      "\"coding\":[{\"system\":"                                                                          \
                                                                      "\"" C4BB "\",\"code\":"                                                                            \
                                                                      "\"memberliability\","                                                                              \
                                                                      "\"display\":\"Member "                                                                             \
                                                                      "liability\"}]},"                                                                                   \
                                                                      "\"amount\":" USD(                                                                                  \
                                                                          "20.00") "}],"                                                                                  \
                                                                                   "\"payment\":{"                                                                        \
                                                                                   "\"type\":{"                                                                           \
                                                                                   "\"coding\":[{"                                                                        \
                                                                                   "\"system\":"                                                                          \
                                                                                   "\"http://"                                                                            \
                                                                                   "terminology."                                                                         \
                                                                                   "hl7.org/"                                                                             \
                                                                                   "CodeSystem/"                                                                          \
                                                                                   "ex-"                                                                                  \
                                                                                   "paymenttype\""                                                                        \
                                                                                   ",\"code\":"                                                                           \
                                                                                   "\"partial\","                                                                         \
                                                                                   "\"display\":"                                                                         \
                                                                                   "\"Partial\"}]"                                                                        \
                                                                                   "},"                                                                                   \
                                                                                   "\"date\":"                                                                            \
                                                                                   "\"2026-03-"                                                                           \
                                                                                   "10\","                                                                                \
                                                                                   "\"amount\""                                                                           \
                                                                                   ":" USD(                                                                               \
                                                                                       "80.00") ",\"identifier\":{\"type\":{"                                             \
                                                                                                "\"text\":\"Check or EFT trace number (TRN02)\"},\"value\":\"TRN-77\"}}," \
                                                                                                "\"processNote\":[" NOTE(                                                 \
                                                                                                    "1",                                                                  \
                                                                                                    "MA01",                                                               \
                                                                                                    "MA01") "," NOTE("2",                                                 \
                                                                                                                     "N130",                                              \
                                                                                                                     "N130") "],\"insurance\":[{"                         \
                                                                                                                             "\"sequence\":1,\"focal\":true,\"coverage\":{\"display\":\"Acme Health\"}}]}"

static char claim_id[CL_FHIR_ID_MAX];

/* The views hold the claim clm-2 too. */
static void claim_world(void) {
  world();
  cl_fhirw_mapped *m = fw_map_ok(HEAD CLAIM);
  snprintf(claim_id, sizeof claim_id, "%s", m->id);
  json_t *views = fw_views_of(m);
  json_object_update(fw_world, views);
  json_decref(views);
  cl_fhirw_mapped_free(m);
}

TestSuite(fhirw_claim_response, .timeout = 60, .init = claim_world, .fini = unworld);

/* text with the Claim's id for its one %s (static storage). */
#define response(fmt) (snprintf(resp_text, sizeof resp_text, fmt, claim_id), resp_text)
static char resp_text[16384];

Test(fhirw_claim_response, a_partial_payment_round_trips) {
  char text[16384];
  snprintf(text, sizeof text, RESPONSE_HEAD "%s%s", claim_id, RESPONSE_LINES, RESPONSE_TAIL);
  fw_round_trip(text);
  cl_fhirw_mapped *m = fw_map_ok(text);
  cr_assert_str_eq(m->bid, "clm-2|ICN-1");
  Clinlog__V1__Event *ev = fw_only_event(m, CLINLOG__V1__EVENT__BODY_CLAIM_ADJUDICATED);
  const Clinlog__V1__ClaimAdjudicated *b = ev->claim_adjudicated;
  cr_assert_str_eq(b->claim_id, "clm-2");
  cr_assert_str_eq(b->payer_claim_control_number, "ICN-1");
  cr_assert_eq(b->status, CLINLOG__V1__CLAIM_STATUS__CLAIM_STATUS_PARTIAL);
  cr_assert_str_eq(b->claim_status_code, "1");
  cr_assert_eq(b->paid->minor_units, 8000);
  cr_assert_eq(b->patient_responsibility->minor_units, 2000);
  cr_assert_str_eq(b->trace_number, "TRN-77");
  cr_assert_eq(b->n_adjustments, 1);
  cr_assert_eq(b->adjustments[0]->group, CLINLOG__V1__ADJUSTMENT_GROUP__ADJUSTMENT_GROUP_OA);
  cr_assert_eq(b->n_remarks, 1);
  cr_assert_str_eq(b->remarks[0]->code, "MA01");
  cr_assert_eq(b->n_lines, 1);
  const Clinlog__V1__LineAdjudication *l = b->lines[0];
  cr_assert_str_eq(l->charge_id, "ch-1");
  cr_assert_str_eq(l->line_control_number, "ch-1");
  cr_assert_str_eq(l->units_paid, "1");
  cr_assert_eq(l->n_adjustments, 2);
  cr_assert_str_eq(l->adjustments[1]->quantity, "1");
  cr_assert_eq(l->adjustments[1]->amount->minor_units, 2550);
  cr_assert_eq(l->n_remarks, 1);
  cr_assert_str_eq(l->remarks[0]->code, "N130");
  cr_assert_eq(ev->occurred_at->seconds, 1773100800);
  clinlog__v1__event__free_unpacked(ev, NULL);
  cl_fhirw_mapped_free(m);
}

/* A denial of a line the Claim does not hold (an addItem), and a
 * reversal. */
Test(fhirw_claim_response, a_denial_and_a_reversal_round_trip) {
  fw_round_trip(response(
      "{\"resourceType\":\"ClaimResponse\",\"extension\":[{\"url\":\"http://hl7.org/fhir/5.0/"
      "StructureDefinition/extension-ClaimResponse.decision\",\"valueCodeableConcept\":{"
      "\"coding\":[{\"system\":\"http://hl7.org/fhir/claim-decision\",\"code\":\"denied\","
      "\"display\":\"Denied\"},{\"system\":\"" X12_EL "1029\",\"code\":\"4\",\"display\":"
      "\"Denied\"}]}}],\"identifier\":[{\"system\":\"" BID "\",\"value\":\"clm-2\"}],\"status\":"
      "\"active\"," PROFESSIONAL ",\"use\":\"claim\",\"patient\":" P1 ",\"created\":"
      "\"2026-03-11T00:00:00Z\",\"insurer\":{\"display\":\"Acme Health\"},\"request\":{"
      "\"reference\":\"Claim/%s\"},\"outcome\":\"complete\",\"disposition\":\"Claim denied "
      "(CLP02 4: Denied)\",\"addItem\":[{\"productOrService\":{\"coding\":[{\"system\":\"" CPT
      "\",\"code\":\"99999\"}]},\"modifier\":[{\"coding\":[{\"system\":\"http://www.cms.gov/"
      "Medicare/Coding/HCPCSReleaseCodeSets\",\"code\":\"GT\"}]}],\"servicedDate\":"
      "\"2026-03-01\",\"adjudication\":[{\"category\":{\"extension\":[{\"url\":\"http://hl7.org/"
      "fhir/StructureDefinition/data-absent-reason\",\"valueCode\":\"unknown\"}]}}]}],"
      "\"insurance\":[{\"sequence\":1,\"focal\":true,\"coverage\":{\"display\":\"Acme "
      "Health\"}}]}"));
  fw_round_trip(response(
      "{\"resourceType\":\"ClaimResponse\",\"extension\":[{\"url\":\"http://hl7.org/fhir/5.0/"
      "StructureDefinition/extension-ClaimResponse.decision\",\"valueCodeableConcept\":{"
      "\"coding\":[{\"system\":\"" X12_EL "1029\",\"code\":\"22\",\"display\":\"Reversal of "
      "Previous Payment\"}]}}],\"identifier\":[{\"system\":\"" BID "\",\"value\":\"clm-2|ICN-1\"},"
      "{\"type\":{\"text\":\"Payer claim control number (CLP07)\"},\"value\":\"ICN-1\"}],"
      "\"status\":\"cancelled\"," PROFESSIONAL ",\"use\":\"claim\",\"patient\":" P1 ","
      "\"created\":\"2026-03-12T00:00:00Z\",\"insurer\":{\"display\":\"Acme Health\"},"
      "\"request\":{\"reference\":\"Claim/%s\"},\"outcome\":\"complete\",\"disposition\":"
      "\"Earlier payment reversed (CLP02 22: Reversal of Previous Payment)\",\"insurance\":[{"
      "\"sequence\":1,\"focal\":true,\"coverage\":{\"display\":\"Acme Health\"}}]}"));
}

#define CR "{\"resourceType\":\"ClaimResponse\",\"patient\":" P1 ","
#define CR_OK                                                                                      \
  CR "\"status\":\"active\",\"created\":\"2026-03-10T00:00:00Z\",\"request\":{\"reference\":"      \
     "\"Claim/%s\"}"

Test(fhirw_claim_response, every_bad_response_is_refused_naming_the_element) {
  static const fw_bad fixed[] = {
      {CR "\"use\":\"claim\"}", 400, "ClaimResponse.status", "required"},
      {CR "\"status\":\"draft\"}", 422, "ClaimResponse.status", "code-invalid"},
      {CR "\"status\":\"active\"}", 400, "ClaimResponse.created", "required"},
      {CR "\"status\":\"active\",\"created\":\"2026-03-10T00:00:00Z\"}", 400,
       "ClaimResponse.request", "required"},
      {CR "\"request\":{\"reference\":\"Claim/unknown\"}}", 422, "ClaimResponse.request.reference",
       "not-found"},
      {CR "\"request\":{\"reference\":\"Encounter/x\"}}", 422, "ClaimResponse.request", "invalid"},
      {CR "\"preAuthRef\":\"x\"}", 400, "ClaimResponse.preAuthRef", "not-supported"},
      {CR "\"insurer\":{\"reference\":\"Organization/o\"}}", 400, "ClaimResponse.insurer.reference",
       "not-supported"},
      {CR "\"identifier\":[{\"type\":{\"text\":\"Patient control number (CLM01)\"},\"value\":"
          "\"x\"}]}",
       422, "ClaimResponse.identifier[0].type.text", "not-supported"},
      {CR "\"extension\":[{\"url\":\"" EXT "x\"}]}", 422, "ClaimResponse.extension[0].url",
       "not-supported"},
  };
  fw_refused_all(fixed, sizeof fixed / sizeof fixed[0]);
  /* with the Claim known */
  static const struct {
    const char *more;
    int status;
    const char *expr, *code;
  } more[] = {
      {",\"extension\":[{\"url\":\"http://hl7.org/fhir/5.0/StructureDefinition/extension-"
       "ClaimResponse.decision\",\"valueCodeableConcept\":{\"coding\":[{\"system\":\"urn:x\","
       "\"code\":\"ok\"}]}}]",
       422, "ClaimResponse.extension[0].valueCodeableConcept.coding[0]", "code-invalid"},
      {",\"identifier\":[{\"system\":\"" BID "\",\"value\":\"other\"}]", 422,
       "ClaimResponse.identifier[0].value", "invalid"},
      {",\"item\":[{\"itemSequence\":7,\"adjudication\":[]}]", 400,
       "ClaimResponse.item[0].adjudication", "value"},
      {",\"item\":[{\"itemSequence\":7}]", 422, "ClaimResponse.item[0].itemSequence", "value"},
      {",\"item\":[{\"adjudication\":[" AMOUNT("benefit", "Benefit Amount", "1.00") "]}]", 400,
       "ClaimResponse.item[0].itemSequence", "required"},
      {",\"item\":[{\"itemSequence\":1,\"noteNumber\":[3]}]", 400,
       "ClaimResponse.item[0].noteNumber[0]", "value"},
      {",\"item\":[{\"itemSequence\":1,\"extension\":[{\"url\":\"" EXT "x\"}]}]", 422,
       "ClaimResponse.item[0].extension[0].url", "not-supported"},
      {",\"item\":[{\"itemSequence\":1,\"adjudication\":[{\"amount\":" USD("1.00") "}]}]", 400,
       "ClaimResponse.item[0].adjudication[0].category", "required"},
      {",\"item\":[{\"itemSequence\":1,\"adjudication\":[{\"category\":{\"coding\":[{\"system\":"
       "\"" X12_EL "1033\",\"code\":\"ZZ\"}]},\"amount\":" USD("1.00") "}]}]",
       422, "ClaimResponse.item[0].adjudication[0].category", "code-invalid"},
      {",\"item\":[{\"itemSequence\":1,\"adjudication\":[{\"category\":{\"coding\":[{\"system\":"
       "\"" ADJ "\",\"code\":\"tax\"}]},\"amount\":" USD("1.00") "}]}]",
       422, "ClaimResponse.item[0].adjudication[0].category", "not-supported"},
      {",\"item\":[{\"itemSequence\":1,\"adjudication\":[" AMOUNT(
           "benefit", "B", "1.00") "," AMOUNT("benefit", "B", "2.00") "]}]",
       422, "ClaimResponse.item[0].adjudication[1]", "not-supported"},
      {",\"item\":[{\"itemSequence\":1,\"adjudication\":[{\"category\":{\"coding\":[{\"system\":"
       "\"" X12_EL "1033\",\"code\":\"CO\"}]},\"amount\":" USD("1.00") ",\"value\":1}]}]",
       400, "ClaimResponse.item[0].adjudication[0].value", "invalid"},
      {",\"addItem\":[{\"productOrService\":{\"text\":\"x\"},\"detailSequence\":[1]}]", 400,
       "ClaimResponse.addItem[0].detailSequence", "not-supported"},
      {",\"adjudication\":[" AMOUNT("benefit", "Benefit Amount", "1.00") "]", 422,
       "ClaimResponse.adjudication", "not-supported"},
      {",\"total\":[" CAS("CO", "Contractual Obligations", "45", "1.00") "]", 422,
       "ClaimResponse.total", "not-supported"},
      {",\"total\":[" AMOUNT("submitted", "Submitted Amount", "1.5") "]", 400,
       "ClaimResponse.total[0].amount.value", "value"},
      {",\"processNote\":[{\"text\":\"x\"}]", 400, "ClaimResponse.processNote[0].extension",
       "required"},
      {",\"payment\":{\"identifier\":{\"value\":\"T\"}}", 422, "ClaimResponse.payment.identifier",
       "not-supported"},
      {",\"payment\":[]", 400, "ClaimResponse.payment", "structure"},
      /* against the view */
      {"", 400, "ClaimResponse.identifier", "required"},
      {",\"identifier\":[{\"system\":\"" BID "\",\"value\":\"clm-2\"}],\"outcome\":\"queued\"", 422,
       "ClaimResponse.outcome", "value"},
  };
  cl_fhirw_opts o = fw_opts();
  for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) {
    char text[4096];
    snprintf(text, sizeof text, CR_OK "%s}", claim_id, more[i].more);
    cl_fhirw_error fe;
    cl_err err;
    fw_map_refused(text, &o, i, &fe, &err);
    cr_assert_eq(fe.status, more[i].status, "case %zu: %d %s", i, fe.status, err.msg);
    cr_assert_str_eq(fe.expression, more[i].expr, "case %zu: %s", i, err.msg);
    cr_assert_str_eq(fe.code, more[i].code, "case %zu: %s", i, err.msg);
  }
}

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
    json_t *j = fw_parse(text);
    cl_fhirw_mapped *m = NULL;
    cl_fhirw_error fe;
    cl_err err;
    int rc = cl_fhirw_map(j, NULL, NULL, "", &o, &m, &fe, &err);
    json_decref(j);
    cr_assert_eq(rc, CL_EMALFORMED, "case %zu: rc %d", i, rc);
    cr_assert_null(m);
    cr_assert_str_eq(fe.expression, cases[i].expr, "case %zu: %s", i, err.msg);
    cr_assert_str_eq(fe.code, cases[i].code, "case %zu: %s", i, err.msg);
  }
}

/* adapters/fhir/fhirw*.c: each resource type becomes the catalog event its
 * view is derived from, and the view's own mapper (query/fhir/map_*.c) run
 * over that event gives back the resource that was written (member for
 * member, decimals as written); mapping is deterministic (same input, same
 * bytes); and every bad input is refused with the FHIRPath of the element,
 * the issue code and the HTTP status, with nothing produced. An update to
 * entered-in-error (cl_fhirw_retract) is the EnteredInError of the version
 * it replaces, and refused when it changes anything but the status. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/fhir/fhirw.h"
#include "clinlog/v1/event.pb-c.h"
#include "query/fhir/fj.h"
#include "store/event.h"

TestSuite(fhirw, .timeout = 60);

#include "fhirw_fixture.h"

/* The fixture's helpers (fhirw_fixture.h) by their short names here. */
static const char *const enc_id = fw_enc_id, *const rx_id = fw_rx_id;
static cl_fhirw_opts opts(void) { return fw_opts(); }
static json_t *parse(const char *text) { return fw_parse(text); }
static cl_fhirw_mapped *map_ok(const char *text) { return fw_map_ok(text); }
static void round_trip(const char *text) { fw_round_trip(text); }

Test(fhirw, patient_round_trips) {
  round_trip("{\"resourceType\":\"Patient\",\"id\":\"p9\",\"active\":true,"
             "\"identifier\":[{\"type\":{\"coding\":[{\"system\":\"" FJ_V2_0203 "\","
             "\"code\":\"MR\"}]},\"system\":\"urn:oid:1.2.3\",\"value\":\"M-1\","
             "\"assigner\":{\"display\":\"General\"}}],"
             "\"name\":[{\"use\":\"official\",\"family\":\"Okafor\",\"given\":[\"Ada\",\"N\"],"
             "\"prefix\":[\"Mrs.\"]}],"
             "\"telecom\":[{\"system\":\"phone\",\"value\":\"+1-555\",\"use\":\"mobile\"}],"
             "\"gender\":\"female\",\"birthDate\":\"1958-03\","
             "\"deceasedDateTime\":\"2026-02-03T04:05:06Z\","
             "\"address\":[{\"use\":\"home\",\"line\":[\"41 Elm\"],\"city\":\"Somerville\","
             "\"state\":\"MA\",\"postalCode\":\"02144\",\"country\":\"US\"}],"
             "\"maritalStatus\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/"
             "CodeSystem/v3-MaritalStatus\",\"code\":\"M\"}]},"
             "\"communication\":[{\"language\":{\"coding\":[{\"system\":\"urn:ietf:bcp:47\","
             "\"code\":\"en\"}]},\"preferred\":true}],"
             "\"generalPractitioner\":[{\"reference\":\"Practitioner/7\",\"display\":\"Dr R\"}],"
             "\"managingOrganization\":{\"reference\":\"Organization/o1\"}}");
}

Test(fhirw, a_known_patient_is_updated_as_a_whole) {
  cl_fhirw_opts o = opts();
  o.bulk = 0; /* the REST face: p1 exists, so a PUT updates every demographic field */
  json_t *j = parse("{\"resourceType\":\"Patient\",\"id\":\"p1\",\"gender\":\"male\"}");
  cl_fhirw_mapped *m;
  cl_fhirw_error fe;
  cl_err err;
  cr_assert_eq(cl_fhirw_map(j, NULL, "p1", "3", &o, &m, &fe, &err), 0, "%s", err.msg);
  cr_assert_eq(m->n, 1);
  cr_assert_eq(m->ev[0].type, 101);
  Clinlog__V1__Event *ev;
  cr_assert_eq(cl_event_decode(m->ev[0].bytes, m->ev[0].len, &ev, &err), 0, "%s", err.msg);
  const Clinlog__V1__PatientDemographicsUpdated *u = ev->patient_demographics_updated;
  cr_assert_eq(u->n_updated_fields, 15, "every field but patient_id and updated_fields");
  cr_assert_eq(u->gender, CLINLOG__V1__ADMINISTRATIVE_GENDER__ADMINISTRATIVE_GENDER_MALE);
  cr_assert_eq(u->n_names, 0, "a name left out is cleared");
  clinlog__v1__event__free_unpacked(ev, NULL);
  cl_fhirw_mapped_free(m);
  json_decref(j);
}

/* a cancelled encounter (what the views make of ADT^A11) is written as the
 * start and the cancellation, and reads back the same */
Test(fhirw, encounter_cancelled_round_trips_as_start_and_cancellation) {
  const char *text =
      "{\"resourceType\":\"Encounter\",\"identifier\":[{\"system\":\"urn:clinlog:id\","
      "\"value\":\"e-8\"}],\"status\":\"cancelled\","
      "\"class\":{\"system\":\"http://terminology.hl7.org/CodeSystem/v3-ActCode\","
      "\"code\":\"IMP\"},\"subject\":{\"reference\":\"Patient/p1\"},"
      "\"period\":{\"start\":\"2026-01-02T03:04:05Z\"}}";
  cl_fhirw_mapped *m = map_ok(text);
  cr_assert_eq(m->n, 2);
  cr_assert_eq(m->ev[0].type, 102);
  cr_assert_eq(m->ev[1].type, 104);
  cl_fhirw_mapped_free(m);
  fw_round_trip(text);
}

Test(fhirw, encounter_finished_round_trips_as_two_events) {
  const char *text =
      "{\"resourceType\":\"Encounter\",\"identifier\":[{\"system\":\"urn:clinlog:id\","
      "\"value\":\"e-7\"},{\"type\":{\"coding\":[{\"system\":\"" FJ_V2_0203 "\",\"code\":\"VN\","
      "\"display\":\"Visit number\"}]},\"value\":\"V1\"}],\"status\":\"finished\","
      "\"class\":{\"system\":\"http://terminology.hl7.org/CodeSystem/v3-ActCode\","
      "\"code\":\"IMP\"},\"type\":[{\"text\":\"admission\"}],"
      "\"serviceType\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/"
      "v2-0069\",\"code\":\"MED\"}]},\"subject\":{\"reference\":\"Patient/p1\"},"
      "\"participant\":[{\"type\":[{\"coding\":[{\"system\":\"http://terminology.hl7.org/"
      "CodeSystem/v3-ParticipationType\",\"code\":\"ATND\",\"display\":\"attender\"}]}],"
      "\"individual\":{\"reference\":\"Practitioner/9\"}}],"
      "\"period\":{\"start\":\"2026-01-02T03:04:05Z\",\"end\":\"2026-01-05T10:00:00Z\"},"
      "\"hospitalization\":{\"admitSource\":{\"coding\":[{\"system\":\"s\",\"code\":\"7\"}]},"
      "\"dischargeDisposition\":{\"coding\":[{\"system\":\"d\",\"code\":\"01\"}]}},"
      "\"serviceProvider\":{\"display\":\"General\"}}";
  cl_fhirw_mapped *m = map_ok(text);
  cr_assert_eq(m->n, 2);
  cr_assert_eq(m->ev[0].type, 102);
  cr_assert_eq(m->ev[1].type, 103);
  cr_assert_str_eq(m->bid, "e-7");
  cl_fhirw_mapped_free(m);
  round_trip(text);
}

Test(fhirw, condition_allergy_observation_round_trip) {
  char enc[200];
  opts();
  snprintf(enc, sizeof enc, "{\"reference\":\"Encounter/%s\"}", enc_id);
  char text[4096];
  snprintf(text, sizeof text,
           "{\"resourceType\":\"Condition\",\"identifier\":[{\"system\":\"urn:clinlog:id\","
           "\"value\":\"c1\"}],\"clinicalStatus\":{\"coding\":[{\"system\":\"http://"
           "terminology.hl7.org/CodeSystem/condition-clinical\",\"code\":\"resolved\","
           "\"display\":\"Resolved\"}]},\"category\":[{\"coding\":[{\"system\":\"x\",\"code\":"
           "\"problem-list-item\"}]},{\"coding\":[{\"system\":\"y\",\"code\":\"F\"}]}],"
           "\"code\":{\"coding\":[{\"system\":\"http://hl7.org/fhir/sid/icd-10-cm\",\"code\":"
           "\"I10\"},{\"system\":\"http://snomed.info/sct\",\"code\":\"59621000\"}],\"text\":"
           "\"HTN\"},\"subject\":{\"reference\":\"Patient/p1\"},\"encounter\":%s,"
           "\"onsetString\":\"childhood\",\"abatementDateTime\":\"2025-01-01T00:00:00Z\","
           "\"recordedDate\":\"2024-05-06T07:08:09.123Z\",\"note\":[{\"text\":\"n\"}]}",
           enc);
  round_trip(text);
  round_trip("{\"resourceType\":\"AllergyIntolerance\",\"identifier\":[{\"system\":"
             "\"urn:clinlog:id\",\"value\":\"a1\"}],\"clinicalStatus\":{\"coding\":[{\"system\":"
             "\"http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical\",\"code\":"
             "\"active\",\"display\":\"Active\"}]},\"type\":\"intolerance\",\"category\":"
             "[\"food\"],\"criticality\":\"low\",\"code\":{\"text\":\"peanuts\"},\"patient\":"
             "{\"reference\":\"Patient/p1\"},\"recordedDate\":\"2024-01-01T00:00:00Z\","
             "\"asserter\":{\"identifier\":{\"system\":\"" FJ_PRINCIPAL_SYSTEM
             "\",\"value\":\"nurse-1\"}},\"reaction\":[{\"manifestation\":[{\"text\":\"rash\"}],"
             "\"severity\":\"mild\",\"onset\":\"2023-01-01T08:00:00Z\"}]}");
  snprintf(text, sizeof text,
           "{\"resourceType\":\"Observation\",\"identifier\":[{\"system\":\"urn:clinlog:id\","
           "\"value\":\"o1\"}],\"status\":\"final\",\"category\":[{\"coding\":[{\"system\":"
           "\"http://terminology.hl7.org/CodeSystem/observation-category\",\"code\":"
           "\"laboratory\"}]}],\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":"
           "\"4548-4\"}]},\"subject\":{\"reference\":\"Patient/p1\"},\"encounter\":%s,"
           "\"effectiveDateTime\":\"2026-03-11T10:20:00Z\",\"performer\":[{\"display\":\"Lab\"}],"
           "\"valueQuantity\":{\"value\":7.10,\"comparator\":\">\",\"unit\":\"percent\","
           "\"system\":\"http://unitsofmeasure.org\",\"code\":\"%%\"},\"interpretation\":"
           "[{\"coding\":[{\"system\":\"i\",\"code\":\"H\"}]}],\"note\":[{\"text\":\"fasting\"}],"
           "\"bodySite\":{\"text\":\"arm\"},\"method\":{\"coding\":[{\"system\":\"m\","
           "\"code\":\"1\"}]},\"referenceRange\":[{\"low\":{\"value\":4.0,\"unit\":\"%%\","
           "\"system\":\"http://unitsofmeasure.org\",\"code\":\"%%\"},\"text\":\"4.0-5.6\"}],"
           "\"component\":[{\"code\":{\"coding\":[{\"system\":\"c\",\"code\":\"1\"}]},"
           "\"valueQuantity\":{\"value\":1e2,\"unit\":\"g\",\"system\":\"http://unitsofmeasure."
           "org\",\"code\":\"g\"}}]}",
           enc);
  round_trip(text);
  /* the other value[x] forms */
  round_trip("{\"resourceType\":\"Observation\",\"identifier\":[{\"system\":\"urn:clinlog:id\","
             "\"value\":\"o2\"}],\"status\":\"amended\",\"code\":{\"text\":\"note\"},\"subject\":"
             "{\"reference\":\"Patient/p1\"},\"effectiveDateTime\":\"2026-01-01T00:00:00Z\","
             "\"valueString\":\"clear\"}");
  round_trip("{\"resourceType\":\"Observation\",\"identifier\":[{\"system\":\"urn:clinlog:id\","
             "\"value\":\"o3\"}],\"status\":\"final\",\"code\":{\"text\":\"x\"},\"subject\":"
             "{\"reference\":\"Patient/p1\"},\"effectiveDateTime\":\"2026-01-01T00:00:00Z\","
             "\"valueBoolean\":false}");
  round_trip("{\"resourceType\":\"Observation\",\"identifier\":[{\"system\":\"urn:clinlog:id\","
             "\"value\":\"o4\"}],\"status\":\"final\",\"code\":{\"text\":\"x\"},\"subject\":"
             "{\"reference\":\"Patient/p1\"},\"effectiveDateTime\":\"2026-01-01T00:00:00Z\","
             "\"dataAbsentReason\":{\"coding\":[{\"system\":\"" FJ_DAR_SYSTEM "\",\"code\":"
             "\"unknown\",\"display\":\"Unknown\"}]}}");
}

Test(fhirw, medication_request_round_trips) {
  round_trip(
      "{\"resourceType\":\"MedicationRequest\",\"identifier\":[{\"system\":\"urn:clinlog:id\","
      "\"value\":\"rx-1\"},{\"type\":{\"coding\":[{\"system\":\"" FJ_V2_0203 "\",\"code\":"
      "\"PLAC\",\"display\":\"Placer Identifier\"}]},\"system\":\"urn:oid:9\",\"value\":\"O-7\"}],"
      "\"status\":\"active\",\"intent\":\"order\",\"category\":[{\"coding\":[{\"system\":"
      "\"http://terminology.hl7.org/CodeSystem/medicationrequest-category\",\"code\":"
      "\"outpatient\"}]}],\"priority\":\"stat\",\"medicationCodeableConcept\":{\"coding\":"
      "[{\"system\":\"http://www.nlm.nih.gov/research/umls/rxnorm\",\"code\":\"860975\","
      "\"display\":\"metformin 500 MG\"}]},\"subject\":{\"reference\":\"Patient/p1\"},"
      "\"authoredOn\":\"2026-03-11T10:00:00Z\",\"requester\":{\"reference\":"
      "\"Practitioner/9\"},\"reasonCode\":[{\"coding\":[{\"system\":\"http://hl7.org/fhir/sid/"
      "icd-10-cm\",\"code\":\"E11.9\"}]}],\"note\":[{\"text\":\"with meals\"}],"
      "\"dosageInstruction\":[{\"sequence\":1,\"text\":\"1 tab BID\",\"timing\":{\"code\":"
      "{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation\","
      "\"code\":\"BID\"}],\"text\":\"twice a day\"},\"repeat\":{\"boundsDuration\":{\"value\":"
      "10,\"unit\":\"days\",\"system\":\"http://unitsofmeasure.org\",\"code\":\"d\"}}},"
      "\"route\":{\"coding\":[{\"system\":\"http://snomed.info/sct\",\"code\":\"26643006\"}]},"
      "\"doseAndRate\":[{\"doseQuantity\":{\"value\":500,\"unit\":\"mg\",\"system\":"
      "\"http://unitsofmeasure.org\",\"code\":\"mg\"}}]},{\"sequence\":2,\"text\":\"then PRN\","
      "\"asNeededBoolean\":true}],\"dispenseRequest\":{\"validityPeriod\":{\"start\":"
      "\"2026-03-11T00:00:00Z\"},\"numberOfRepeatsAllowed\":3,\"quantity\":{\"value\":60,"
      "\"unit\":\"tablet\",\"system\":\"http://terminology.hl7.org/CodeSystem/"
      "v3-orderableDrugForm\","
      "\"code\":\"TAB\"},\"expectedSupplyDuration\":{\"value\":30,\"unit\":\"days\",\"system\":"
      "\"http://unitsofmeasure.org\",\"code\":\"d\"},\"performer\":{\"display\":\"Main St "
      "Pharmacy\"}},\"substitution\":{\"allowedBoolean\":false}}");
}

Test(fhirw, medication_administration_round_trips) {
  opts();
  char text[2048];
  snprintf(text, sizeof text,
           "{\"resourceType\":\"MedicationAdministration\",\"identifier\":[{\"system\":"
           "\"urn:clinlog:id\",\"value\":\"ma-1\"}],\"status\":\"completed\","
           "\"medicationCodeableConcept\":{\"coding\":[{\"system\":\"http://www.nlm.nih.gov/"
           "research/umls/rxnorm\",\"code\":\"861007\"}]},\"subject\":{\"reference\":"
           "\"Patient/p1\"},\"context\":{\"reference\":\"Encounter/%s\"},"
           "\"effectiveDateTime\":\"2026-03-11T12:00:00Z\",\"performer\":[{\"actor\":"
           "{\"reference\":\"Practitioner/n1\"}},{\"function\":{\"coding\":[{\"system\":"
           "\"http://terminology.hl7.org/CodeSystem/med-admin-perform-function\",\"code\":"
           "\"verifier\",\"display\":\"Verifier\"}]},\"actor\":{\"display\":\"RN Two\"}}],"
           "\"request\":{\"reference\":\"MedicationRequest/%s\"},\"dosage\":{\"route\":"
           "{\"coding\":[{\"system\":\"http://snomed.info/sct\",\"code\":\"26643006\"}]},"
           "\"dose\":{\"value\":500,\"unit\":\"mg\",\"system\":\"http://unitsofmeasure.org\","
           "\"code\":\"mg\"}}}",
           enc_id, rx_id);
  round_trip(text);
  round_trip("{\"resourceType\":\"MedicationAdministration\",\"identifier\":[{\"system\":"
             "\"urn:clinlog:id\",\"value\":\"ma-2\"}],\"status\":\"completed\","
             "\"medicationCodeableConcept\":{\"text\":\"heparin\"},\"subject\":{\"reference\":"
             "\"Patient/p1\"},\"effectivePeriod\":{\"start\":\"2026-03-11T12:00:00Z\",\"end\":"
             "\"2026-03-11T14:00:00Z\"},\"note\":[{\"text\":\"Partially administered\"}],"
             "\"dosage\":{\"rateQuantity\":{\"value\":12.5,\"unit\":\"mL/h\",\"system\":"
             "\"http://unitsofmeasure.org\",\"code\":\"mL/h\"}}}");
  round_trip("{\"resourceType\":\"MedicationAdministration\",\"identifier\":[{\"system\":"
             "\"urn:clinlog:id\",\"value\":\"ma-3\"}],\"status\":\"not-done\","
             "\"statusReason\":[{\"text\":\"patient refused\"}],\"medicationCodeableConcept\":"
             "{\"text\":\"x\"},\"subject\":{\"reference\":\"Patient/p1\"},"
             "\"effectiveDateTime\":\"2026-03-11T12:00:00Z\"}");
}

Test(fhirw, medication_dispense_round_trips) {
  opts();
  char text[2048];
  snprintf(text, sizeof text,
           "{\"resourceType\":\"MedicationDispense\",\"extension\":[{\"url\":\"" FJ_CLINLOG_EXT
           "fill-number\",\"valueUnsignedInt\":1},{\"url\":\"" FJ_CLINLOG_EXT
           "medication-batch\",\"extension\":[{\"url\":\"lotNumber\",\"valueString\":\"L9\"},"
           "{\"url\":\"expirationDate\",\"valueDate\":\"2027-01-31\"}]}],\"identifier\":"
           "[{\"system\":\"urn:clinlog:id\",\"value\":\"md-1\"}],\"status\":\"completed\","
           "\"medicationCodeableConcept\":{\"coding\":[{\"system\":\"http://hl7.org/fhir/sid/"
           "ndc\",\"code\":\"00093-1048-01\"}]},\"subject\":{\"reference\":\"Patient/p1\"},"
           "\"performer\":[{\"actor\":{\"display\":\"Main St Pharmacy\"}},{\"actor\":"
           "{\"reference\":\"Practitioner/rph\"}}],\"authorizingPrescription\":[{\"reference\":"
           "\"MedicationRequest/%s\"}],\"type\":{\"coding\":[{\"system\":\"http://"
           "terminology.hl7.org/CodeSystem/v3-ActCode\",\"code\":\"RF\",\"display\":"
           "\"Refill\"}]},\"quantity\":{\"value\":60,\"unit\":\"tablet\",\"system\":\"x\","
           "\"code\":\"TAB\"},\"daysSupply\":{\"value\":30,\"unit\":\"days\",\"system\":"
           "\"http://unitsofmeasure.org\",\"code\":\"d\"},\"whenHandedOver\":"
           "\"2026-03-12T15:00:00Z\",\"dosageInstruction\":[{\"text\":\"1 tab BID\"}],"
           "\"substitution\":{\"wasSubstituted\":true}}",
           rx_id);
  round_trip(text);
}

Test(fhirw, service_request_round_trips) {
  round_trip(
      "{\"resourceType\":\"ServiceRequest\",\"identifier\":[{\"system\":\"urn:clinlog:id\","
      "\"value\":\"sr-1\"},{\"type\":{\"coding\":[{\"system\":\"" FJ_V2_0203 "\",\"code\":"
      "\"PLAC\",\"display\":\"Placer Identifier\"}]},\"value\":\"P1\"},{\"type\":{\"coding\":"
      "[{\"system\":\"" FJ_V2_0203 "\",\"code\":\"FILL\",\"display\":\"Filler Identifier\"}]},"
      "\"value\":\"F1\"}],\"status\":\"active\",\"intent\":\"order\",\"category\":"
      "[{\"coding\":[{\"system\":\"http://snomed.info/sct\",\"code\":\"108252007\"}]}],"
      "\"priority\":\"urgent\",\"code\":{\"coding\":[{\"system\":\"http://loinc.org\","
      "\"code\":\"4548-4\"}]},\"subject\":{\"reference\":\"Patient/p1\"},"
      "\"occurrenceDateTime\":\"2026-06-11T09:00:00Z\",\"authoredOn\":"
      "\"2026-03-11T10:00:00Z\",\"requester\":{\"display\":\"Dr R\"},\"performer\":"
      "[{\"reference\":\"Organization/lab\"}],\"reasonCode\":[{\"text\":\"T2DM\"}],"
      "\"note\":[{\"text\":\"fasting\"}],\"patientInstruction\":\"no food after "
      "midnight\"}");
}

Test(fhirw, immunization_round_trips) {
  round_trip("{\"resourceType\":\"Immunization\",\"identifier\":[{\"system\":\"urn:clinlog:id\","
             "\"value\":\"imm-1\"}],\"status\":\"completed\",\"vaccineCode\":{\"coding\":"
             "[{\"system\":\"http://hl7.org/fhir/sid/cvx\",\"code\":\"208\"}]},\"patient\":"
             "{\"reference\":\"Patient/p1\"},\"occurrenceDateTime\":\"2026-01-05T09:00:00Z\","
             "\"primarySource\":true,\"manufacturer\":{\"identifier\":{\"system\":"
             "\"http://hl7.org/fhir/sid/mvx\",\"value\":\"PFR\"},\"display\":\"Pfizer\"},"
             "\"lotNumber\":\"EW0182\",\"expirationDate\":\"2026-12-31\",\"site\":{\"coding\":"
             "[{\"system\":\"http://terminology.hl7.org/CodeSystem/v2-0163\",\"code\":\"LD\"}]},"
             "\"doseQuantity\":{\"value\":0.3,\"unit\":\"mL\",\"system\":"
             "\"http://unitsofmeasure.org\",\"code\":\"mL\"},\"performer\":[{\"function\":"
             "{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/v2-0443\","
             "\"code\":\"AP\",\"display\":\"Administering Provider\"}]},\"actor\":"
             "{\"display\":\"RN\"}}],\"programEligibility\":[{\"coding\":[{\"system\":"
             "\"http://terminology.hl7.org/CodeSystem/v2-0064\",\"code\":\"V01\"}]}],"
             "\"protocolApplied\":[{\"doseNumberPositiveInt\":2}]}");
  round_trip("{\"resourceType\":\"Immunization\",\"identifier\":[{\"system\":\"urn:clinlog:id\","
             "\"value\":\"imm-2\"}],\"status\":\"not-done\",\"statusReason\":{\"text\":"
             "\"refused\"},\"vaccineCode\":{\"text\":\"flu\"},\"patient\":{\"reference\":"
             "\"Patient/p1\"},\"occurrenceDateTime\":\"2026-01-05T09:00:00Z\","
             "\"protocolApplied\":[{\"doseNumberString\":\"booster\"}]}");
}

Test(fhirw, ids_are_derived_and_stable) {
  const char *obs = "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":"
                    "\"x\"},\"subject\":{\"reference\":\"Patient/p1\"},\"valueString\":\"a\"}";
  cl_fhirw_mapped *a = map_ok(obs), *b = map_ok(obs);
  cr_assert_str_eq(a->bid, b->bid);
  cr_assert_eq(strncmp(a->bid, "fhir-", 5), 0);
  cr_assert_str_eq(a->stream, "patient-p1");
  char id[CL_FHIR_ID_MAX];
  cl_fhir_id("Observation", "p1", a->bid, id);
  cr_assert_str_eq(a->id, id);
  cr_assert_eq(memcmp(a->ev[0].event_id, b->ev[0].event_id, 16), 0);
  cr_assert_eq(a->ev[0].event_id[6] >> 4, 8, "an RFC 9562 version 8 UUID");
  cl_fhirw_mapped_free(a);
  cl_fhirw_mapped_free(b);
  /* a base version makes another event (an update of the same content) */
  json_t *j = parse(obs);
  cl_fhirw_opts o = opts();
  cl_fhirw_mapped *c, *d;
  cl_fhirw_error fe;
  cl_err err;
  cr_assert_eq(cl_fhirw_map(j, NULL, NULL, "", &o, &c, &fe, &err), 0);
  cr_assert_eq(cl_fhirw_map(j, NULL, NULL, "3", &o, &d, &fe, &err), 0);
  cr_assert_neq(memcmp(c->ev[0].event_id, d->ev[0].event_id, 16), 0);
  cl_fhirw_mapped_free(c);
  cl_fhirw_mapped_free(d);
  json_decref(j);
}

/* ---- refusals ---- */

typedef fw_bad bad;

#define SUBJ "\"subject\":{\"reference\":\"Patient/p1\"}"
#define OBS "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"}," SUBJ

static const bad BAD[] = {
    {"[1,2]", 400, "", "structure"},
    {"{\"resourceType\":", 400, "", "structure"},
    {"{\"id\":\"x\"}", 400, "", "required"},
    {"{\"resourceType\":\"Spaceship\"}", 400, "Spaceship.resourceType", "not-supported"},
    {"{\"resourceType\":\"PaymentReconciliation\"}", 422, "PaymentReconciliation.resourceType",
     "not-supported"},
    {"{\"resourceType\":7}", 400, "", "required"},
    {OBS ",\"valueQuantity\":{\"value\":\"7\"}}", 400, "Observation.valueQuantity.value",
     "structure"},
    {OBS ",\"valueQuantity\":{\"value\":7,\"unit\":\"kg\"}}", 422, "Observation.valueQuantity.unit",
     "not-supported"},
    {OBS ",\"valueQuantity\":{\"code\":\"kg\"}}", 400, "Observation.valueQuantity.system",
     "required"},
    {OBS ",\"valueQuantity\":{\"comparator\":\"~\",\"value\":1}}", 422,
     "Observation.valueQuantity.comparator", "code-invalid"},
    {OBS ",\"valueQuantity\":{\"comparator\":\"<\"}}", 400, "Observation.valueQuantity.value",
     "required"},
    {OBS ",\"valueString\":\"a\",\"valueBoolean\":true}", 400, "Observation.valueBoolean",
     "invalid"},
    {OBS ",\"valueString\":\"\"}", 400, "Observation.valueString", "value"},
    {OBS ",\"valueString\":\"a\\u0001b\"}", 400, "Observation.valueString", "value"},
    {OBS ",\"valueBoolean\":\"yes\"}", 400, "Observation.valueBoolean", "structure"},
    {OBS ",\"valueDateTime\":\"2026-01-01T10:00:00\"}", 400, "Observation.valueDateTime", "value"},
    {OBS ",\"effectiveDateTime\":\"2026\"}", 400, "Observation.effectiveDateTime", "value"},
    {OBS ",\"effectiveDateTime\":\"2026-02-30T00:00:00Z\"}", 400, "Observation.effectiveDateTime",
     "value"},
    {OBS ",\"valueString\":\"a\",\"dataAbsentReason\":{\"text\":\"x\"}}", 400,
     "Observation.dataAbsentReason", "invalid"},
    {OBS ",\"focus\":[]}", 400, "Observation.focus", "not-supported"},
    {OBS ",\"_status\":{}}", 400, "Observation._status", "not-supported"},
    {OBS ",\"category\":[]}", 400, "Observation.category", "value"},
    {OBS ",\"category\":{}}", 400, "Observation.category", "structure"},
    {OBS ",\"category\":[{\"coding\":[{\"system\":\"s\"}]}]}", 400,
     "Observation.category[0].coding[0].code", "required"},
    {OBS ",\"category\":[{\"coding\":[{\"code\":\"a\"},{\"code\":\"b\"}]}]}", 422,
     "Observation.category[0]", "not-supported"},
    {OBS ",\"method\":{\"coding\":[{\"code\":\"a\",\"userSelected\":true}]}}", 400,
     "Observation.method.coding[0].userSelected", "not-supported"},
    {OBS ",\"interpretation\":[{}]}", 400, "Observation.interpretation[0]", "required"},
    {OBS ",\"identifier\":[{\"system\":\"urn:other\",\"value\":\"1\"}]}", 422,
     "Observation.identifier[0]", "not-supported"},
    {OBS ",\"identifier\":[{\"system\":\"urn:clinlog:id\",\"value\":\"a b\"}]}", 400,
     "Observation.identifier[0].value", "value"},
    {OBS ",\"encounter\":{\"reference\":\"Encounter/nope\"}}", 422,
     "Observation.encounter.reference", "not-found"},
    {OBS ",\"encounter\":{\"reference\":\"Patient/p1\"}}", 422, "Observation.encounter", "invalid"},
    {OBS ",\"note\":[{\"text\":\"a\"},{\"text\":\"b\"}]}", 422, "Observation.note[1]",
     "not-supported"},
    {OBS ",\"referenceRange\":[{\"low\":{\"value\":1,\"comparator\":\"<\"}}]}", 400,
     "Observation.referenceRange[0]", "invalid"},
    {OBS ",\"component\":[{\"valueQuantity\":{\"value\":1}}]}", 400,
     "Observation.component[0].code", "required"},
    {OBS ",\"performer\":[{\"reference\":\"nope\"}]}", 400, "Observation.performer[0].reference",
     "value"},
    {"{\"resourceType\":\"Observation\",\"code\":{\"text\":\"x\"}," SUBJ "}", 400,
     "Observation.status", "required"},
    {"{\"resourceType\":\"Observation\",\"status\":\"final\"," SUBJ "}", 400, "Observation.code",
     "required"},
    {"{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"}}", 400,
     "Observation.subject", "required"},
    {"{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
     "\"subject\":{\"reference\":\"Patient/ghost\"}}",
     422, "Observation.subject.reference", "not-found"},
    {"{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
     "\"subject\":{\"display\":\"someone\"}}",
     400, "Observation.subject.reference", "required"},
    {"{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
     "\"subject\":{\"reference\":\"Group/g\"}}",
     422, "Observation.subject", "invalid"},
    {"{\"resourceType\":\"Patient\",\"gender\":\"F\"}", 422, "Patient.gender", "code-invalid"},
    {"{\"resourceType\":\"Patient\",\"birthDate\":\"1990-02-30\"}", 400, "Patient.birthDate",
     "value"},
    {"{\"resourceType\":\"Patient\",\"id\":\"bad id\"}", 400, "Patient.id", "value"},
    {"{\"resourceType\":\"Patient\",\"active\":false}", 422, "Patient.active", "not-supported"},
    {"{\"resourceType\":\"Patient\",\"name\":[{\"given\":[\"\"]}]}", 400,
     "Patient.name[0].given[0]", "value"},
    {"{\"resourceType\":\"Patient\",\"name\":[{\"prefix\":[\"a\",\"b\"]}]}", 422,
     "Patient.name[0].prefix", "not-supported"},
    {"{\"resourceType\":\"Patient\",\"telecom\":[{\"value\":\"1\"}]}", 400,
     "Patient.telecom[0].system", "required"},
    {"{\"resourceType\":\"Patient\",\"address\":[{\"use\":\"moon\"}]}", 422,
     "Patient.address[0].use", "code-invalid"},
    {"{\"resourceType\":\"Patient\",\"communication\":[{\"language\":{\"text\":\"en\"}}]}", 422,
     "Patient.communication[0]", "not-supported"},
    {"{\"resourceType\":\"Patient\",\"identifier\":[{\"type\":{\"coding\":[{\"system\":\"x\","
     "\"code\":\"MR\"}]}}]}",
     422, "Patient.identifier[0].type", "code-invalid"},
    {"{\"resourceType\":\"Patient\",\"photo\":[{}]}", 400, "Patient.photo", "not-supported"},
    {"{\"resourceType\":\"Encounter\",\"status\":\"planned\"," SUBJ "}", 422, "Encounter.status",
     "code-invalid"},
    {"{\"resourceType\":\"Encounter\",\"status\":\"in-progress\"," SUBJ "}", 400, "Encounter.class",
     "required"},
    {"{\"resourceType\":\"Encounter\",\"status\":\"in-progress\",\"class\":{\"code\":\"AMB\"}," SUBJ
     ",\"period\":{\"end\":\"2026-01-01T00:00:00Z\"}}",
     422, "Encounter.period.end", "invalid"},
    {"{\"resourceType\":\"Encounter\",\"status\":\"cancelled\",\"class\":{\"code\":\"AMB\"}," SUBJ
     ",\"period\":{\"start\":\"2026-01-01T00:00:00Z\",\"end\":\"2026-01-02T00:00:00Z\"}}",
     422, "Encounter.period.end", "not-supported"},
    {"{\"resourceType\":\"Encounter\",\"status\":\"in-progress\",\"class\":{\"code\":\"AMB\"}," SUBJ
     ",\"participant\":[{\"type\":[{\"coding\":[{\"system\":\"x\",\"code\":\"ATND\"}]}]}]}",
     422, "Encounter.participant[0].type.coding[0].system", "code-invalid"},
    {"{\"resourceType\":\"Condition\"," SUBJ ",\"verificationStatus\":{\"coding\":[{\"system\":"
     "\"http://terminology.hl7.org/CodeSystem/condition-ver-status\",\"code\":\"maybe\"}]}}",
     422, "Condition.verificationStatus.coding[0].code", "code-invalid"},
    {"{\"resourceType\":\"Condition\"," SUBJ ",\"onsetDateTime\":\"2020-01-01T00:00:00Z\","
     "\"onsetString\":\"x\"}",
     400, "Condition.onsetString", "invalid"},
    {"{\"resourceType\":\"Condition\"," SUBJ ",\"clinicalStatus\":{\"coding\":[{\"system\":"
     "\"http://terminology.hl7.org/CodeSystem/condition-clinical\",\"code\":\"active\"}]},"
     "\"abatementDateTime\":\"2020-01-01T00:00:00Z\"}",
     422, "Condition.abatementDateTime", "invalid"},
    {"{\"resourceType\":\"MedicationRequest\",\"status\":\"on-hold\"," SUBJ "}", 422,
     "MedicationRequest.status", "code-invalid"},
    {"{\"resourceType\":\"MedicationRequest\",\"status\":\"active\",\"intent\":\"order\"," SUBJ
     ",\"medicationReference\":{\"reference\":\"Medication/m\"}}",
     400, "MedicationRequest.medicationReference", "not-supported"},
    {"{\"resourceType\":\"MedicationRequest\",\"status\":\"active\",\"intent\":\"order\"," SUBJ
     ",\"medicationCodeableConcept\":{\"text\":\"x\"},\"dispenseRequest\":{"
     "\"numberOfRepeatsAllowed\":1.5}}",
     400, "MedicationRequest.dispenseRequest.numberOfRepeatsAllowed", "value"},
    {"{\"resourceType\":\"MedicationRequest\",\"status\":\"active\",\"intent\":\"order\"," SUBJ
     ",\"medicationCodeableConcept\":{\"text\":\"x\"},\"dosageInstruction\":[{\"timing\":"
     "{\"repeat\":{\"boundsDuration\":{\"value\":2,\"unit\":\"wk\",\"system\":"
     "\"http://unitsofmeasure.org\",\"code\":\"wk\"}}}}]}",
     422, "MedicationRequest.dosageInstruction[0].timing.repeat.boundsDuration", "not-supported"},
    {"{\"resourceType\":\"MedicationAdministration\",\"status\":\"completed\"," SUBJ
     ",\"medicationCodeableConcept\":{\"text\":\"x\"},\"effectiveDateTime\":"
     "\"2026-01-01T00:00:00Z\",\"request\":{\"reference\":\"MedicationRequest/none\"}}",
     422, "MedicationAdministration.request.reference", "not-found"},
    {"{\"resourceType\":\"MedicationAdministration\",\"status\":\"completed\"," SUBJ
     ",\"medicationCodeableConcept\":{\"text\":\"x\"}}",
     400, "MedicationAdministration.effectiveDateTime", "required"},
    {"{\"resourceType\":\"MedicationAdministration\",\"status\":\"completed\"," SUBJ
     ",\"medicationCodeableConcept\":{\"text\":\"x\"},\"effectiveDateTime\":"
     "\"2026-01-01T00:00:00Z\",\"dosage\":{\"route\":{\"text\":\"PO\"}}}",
     400, "MedicationAdministration.dosage", "required"},
    {"{\"resourceType\":\"Immunization\",\"status\":\"completed\",\"vaccineCode\":{\"text\":"
     "\"x\"},\"patient\":{\"reference\":\"Patient/p1\"},\"occurrenceDateTime\":"
     "\"2026-01-01T00:00:00Z\",\"protocolApplied\":[{\"doseNumberString\":\"2\"}]}",
     422, "Immunization.protocolApplied[0].doseNumberString", "not-supported"},
    {"{\"resourceType\":\"Immunization\",\"status\":\"completed\",\"vaccineCode\":{\"text\":"
     "\"x\"},\"patient\":{\"reference\":\"Patient/p1\"},\"occurrenceString\":\"last year\"}",
     400, "Immunization.occurrenceString", "not-supported"},
    {"{\"resourceType\":\"MedicationDispense\",\"status\":\"completed\"," SUBJ
     ",\"medicationCodeableConcept\":{\"text\":\"x\"},\"whenHandedOver\":"
     "\"2026-01-01T00:00:00Z\",\"type\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/"
     "CodeSystem/v3-ActCode\",\"code\":\"RF\"}]}}",
     422, "MedicationDispense.type", "invalid"},
    {"{\"resourceType\":\"MedicationDispense\",\"status\":\"completed\"," SUBJ
     ",\"extension\":[{\"url\":\"http://example.org/x\",\"valueString\":\"y\"}]}",
     422, "MedicationDispense.extension[0].url", "not-supported"},
    {"{\"resourceType\":\"AllergyIntolerance\",\"patient\":{\"reference\":\"Patient/p1\"}}", 400,
     "AllergyIntolerance.clinicalStatus", "required"},
    {"{\"resourceType\":\"AllergyIntolerance\",\"patient\":{\"reference\":\"Patient/p1\"},"
     "\"verificationStatus\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/"
     "allergyintolerance-verification\",\"code\":\"entered-in-error\"}]},\"reaction\":[{}]}",
     400, "AllergyIntolerance.reaction[0].manifestation", "required"},
    {"{\"resourceType\":\"AllergyIntolerance\",\"patient\":{\"reference\":\"Patient/p1\"},"
     "\"category\":[\"food\",\"biologic\"]}",
     422, "AllergyIntolerance.category[1]", "not-supported"},
};

Test(fhirw, every_bad_input_is_refused_naming_the_element) {
  fw_refused_all(BAD, sizeof BAD / sizeof BAD[0]);
}

Test(fhirw, a_put_names_the_resource_and_bundle_paths_prefix) {
  cl_fhirw_opts o = opts();
  json_t *j = parse(OBS ",\"id\":\"a\"}");
  cl_fhirw_mapped *m;
  cl_fhirw_error fe;
  cl_err err;
  cr_assert_eq(cl_fhirw_map(j, NULL, "b", "", &o, &m, &fe, &err), CL_EMALFORMED);
  cr_assert_str_eq(fe.expression, "Observation.id");
  cr_assert_eq(cl_fhirw_map(j, NULL, "a", "", &o, &m, &fe, &err), CL_EMALFORMED,
               "a new Observation cannot take a client's id");
  cr_assert_eq(fe.status, 422);
  json_decref(j);
  j = parse(OBS ",\"valueQuantity\":{\"value\":true}}");
  cr_assert_eq(cl_fhirw_map(j, "Bundle.entry[3].resource", NULL, "", &o, &m, &fe, &err),
               CL_EMALFORMED);
  cr_assert_str_eq(fe.expression, "Bundle.entry[3].resource.valueQuantity.value");
  json_decref(j);
  /* references the input defines resolve without the views */
  json_t *refs = json_object();
  cl_fhirw_mapped pm = {.n = 0};
  snprintf(pm.type, sizeof pm.type, "Patient");
  snprintf(pm.id, sizeof pm.id, "new1");
  snprintf(pm.bid, sizeof pm.bid, "new1");
  snprintf(pm.patient_id, sizeof pm.patient_id, "new1");
  cr_assert_eq(cl_fhirw_refs_add(refs, &pm, "urn:uuid:1"), 0);
  o.refs = refs;
  j = parse("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
            "\"subject\":{\"reference\":\"urn:uuid:1\"}}");
  cr_assert_eq(cl_fhirw_map(j, NULL, NULL, "", &o, &m, &fe, &err), 0, "%s", err.msg);
  cr_assert_str_eq(m->patient_id, "new1");
  cl_fhirw_mapped_free(m);
  json_decref(j);
  json_decref(refs);
}

/* ---- entered-in-error: an update to it is a retraction ---- */

/* The resource as the REST face reads it from the views, at version 3. */
static const char *const EIE_OBS =
    "{\"resourceType\":\"Observation\",\"id\":\"o-1\",\"meta\":{\"versionId\":\"3\"},"
    "\"identifier\":[{\"system\":\"urn:clinlog:id\",\"value\":\"obs-1\"}],\"status\":\"final\","
    "\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"8867-4\"}]},"
    "\"subject\":{\"reference\":\"Patient/p1\"},\"valueQuantity\":{\"value\":72.50}}";

static const uint8_t CORRECTED[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

static cl_fhirw_opts rest_opts(void) {
  cl_fhirw_opts o = {.principal_id = "$log",
                     .role = "log",
                     .on_behalf_of = "dr1",
                     .source_system = "fhir-rest",
                     .now_ns = 1767225600LL * 1000000000LL};
  return o;
}

/* cur updated to entered-in-error (no meta), with a statusReason when `reason`. */
static json_t *eie_of(const json_t *cur, const char *reason) {
  json_t *r = json_deep_copy(cur);
  json_object_set_new(r, "status", json_string("entered-in-error"));
  json_object_del(r, "meta");
  if (reason)
    json_object_set_new(r, "statusReason", json_pack("{s:s}", "text", reason));
  return r;
}

Test(fhirw, which_resources_say_entered_in_error) {
  static const struct {
    const char *res;
    int eie;
  } cases[] = {
      {"{\"resourceType\":\"Observation\",\"status\":\"entered-in-error\"}", 1},
      {"{\"resourceType\":\"Observation\",\"status\":\"final\"}", 0},
      {"{\"resourceType\":\"MedicationRequest\",\"status\":\"entered-in-error\"}", 1},
      {"{\"resourceType\":\"Condition\",\"verificationStatus\":{\"coding\":[{\"code\":\"x\"},"
       "{\"code\":\"entered-in-error\"}]}}",
       1},
      {"{\"resourceType\":\"Condition\",\"status\":\"entered-in-error\"}", 0},
      {"{\"resourceType\":\"AllergyIntolerance\",\"verificationStatus\":{\"coding\":[{"
       "\"code\":\"confirmed\"}]}}",
       0},
      {"{\"resourceType\":\"Patient\",\"status\":\"entered-in-error\"}", 0},
      {"{\"resourceType\":\"Observation\",\"status\":7}", 0},
      {"{\"status\":\"entered-in-error\"}", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    json_t *r = parse(cases[i].res);
    cr_assert_eq(cl_fhirw_entered_in_error(r), cases[i].eie, "%s", cases[i].res);
    json_decref(r);
  }
}

Test(fhirw, the_event_retracts_the_version) {
  json_t *cur = parse(EIE_OBS), *res = eie_of(cur, "wrong patient");
  cl_fhirw_opts o = rest_opts();
  cl_fhirw_mapped *m, *again, *other;
  cl_fhirw_error fe;
  cl_err err;
  cr_assert_eq(cl_fhirw_retract(res, cur, CORRECTED, NULL, "3", &o, &m, &fe, &err), 0, "%s",
               err.msg);
  cr_assert_eq(m->n, 1);
  cr_assert_eq(m->ev[0].type, CLINLOG__V1__EVENT__BODY_ENTERED_IN_ERROR);
  cr_assert_str_eq(m->type, "Observation");
  cr_assert_str_eq(m->bid, "obs-1");
  cr_assert_str_eq(m->patient_id, "p1");
  cr_assert_str_eq(m->stream, "patient-p1");
  Clinlog__V1__Event *e = clinlog__v1__event__unpack(NULL, m->ev[0].len, m->ev[0].bytes);
  cr_assert_not_null(e);
  const Clinlog__V1__EnteredInError *b = e->entered_in_error;
  cr_assert_eq(b->corrected_event_id.len, 16);
  cr_assert_arr_eq(b->corrected_event_id.data, CORRECTED, 16);
  cr_assert_str_eq(b->corrected_stream, "patient-p1");
  cr_assert_str_eq(b->reason, "wrong patient");
  cr_assert_str_eq(e->stream, "patient-p1");
  cr_assert_str_eq(e->recorded_by->principal_id, "$log");
  cr_assert_str_eq(e->recorded_by->on_behalf_of, "dr1");
  cr_assert_str_eq(e->source_system, "fhir-rest");
  cr_assert_arr_eq(e->event_id.data, m->ev[0].event_id, 16);
  clinlog__v1__event__free_unpacked(e, NULL);
  /* the same update: the same event; based on another version: another */
  cr_assert_eq(cl_fhirw_retract(res, cur, CORRECTED, NULL, "3", &o, &again, &fe, &err), 0);
  cr_assert_eq(cl_fhirw_retract(res, cur, CORRECTED, NULL, "4", &o, &other, &fe, &err), 0);
  cr_assert_arr_eq(again->ev[0].event_id, m->ev[0].event_id, 16);
  cr_assert(memcmp(other->ev[0].event_id, m->ev[0].event_id, 16) != 0);
  cl_fhirw_mapped_free(m);
  cl_fhirw_mapped_free(again);
  cl_fhirw_mapped_free(other);
  /* no statusReason: a reason that says where it came from */
  json_decref(res);
  res = eie_of(cur, NULL);
  cr_assert_eq(cl_fhirw_retract(res, cur, CORRECTED, NULL, "3", &o, &m, &fe, &err), 0);
  e = clinlog__v1__event__unpack(NULL, m->ev[0].len, m->ev[0].bytes);
  cr_assert(strstr(e->entered_in_error->reason, "entered-in-error") != NULL);
  clinlog__v1__event__free_unpacked(e, NULL);
  cl_fhirw_mapped_free(m);
  json_decref(res);
  json_decref(cur);
}

Test(fhirw, only_the_status_may_change) {
  json_t *cur = parse(EIE_OBS);
  cl_fhirw_opts o = rest_opts();
  cl_fhirw_error fe;
  cl_err err;
  static const char *const edits[] = {"valueQuantity", "code", "note", NULL};
  for (size_t i = 0; edits[i]; i++) {
    json_t *res = eie_of(cur, NULL);
    json_object_set_new(res, edits[i], json_pack("{s:s}", "text", "changed"));
    cl_fhirw_mapped *m = (cl_fhirw_mapped *)1;
    cr_assert_eq(
        cl_fhirw_retract(res, cur, CORRECTED, "Bundle.entry[1].resource", "3", &o, &m, &fe, &err),
        CL_EMALFORMED, "%s", edits[i]);
    cr_assert_null(m);
    cr_assert_eq(fe.status, 422);
    cr_assert_str_eq(fe.code, "business-rule");
    cr_assert_str_eq(fe.expression, "Bundle.entry[1].resource");
    cr_assert(strstr(fe.text, "version 3") != NULL, "%s", fe.text);
    json_decref(res);
  }
  /* retracted already: the same update writes nothing, another is refused */
  json_t *gone = eie_of(cur, NULL), *same = eie_of(cur, "again");
  cl_fhirw_mapped *none = (cl_fhirw_mapped *)1;
  cr_assert_eq(cl_fhirw_retract(same, gone, NULL, NULL, "4", &o, &none, &fe, &err), 0);
  cr_assert_null(none);
  json_object_set_new(same, "note", json_pack("[{s:s}]", "text", "late"));
  cr_assert_eq(cl_fhirw_retract(same, gone, NULL, NULL, "4", &o, &none, &fe, &err), CL_EMALFORMED);
  cr_assert_str_eq(fe.code, "business-rule");
  json_decref(same);
  json_decref(gone);
  /* a resource that names no patient or business id cannot be retracted so */
  json_t *bare = json_deep_copy(cur);
  json_object_del(bare, "subject");
  json_t *res = eie_of(bare, NULL);
  cl_fhirw_mapped *m;
  cr_assert_eq(cl_fhirw_retract(res, bare, CORRECTED, NULL, "3", &o, &m, &fe, &err), CL_EMALFORMED);
  cr_assert_eq(fe.status, 422);
  cr_assert_str_eq(fe.expression, "Observation");
  json_decref(res);
  json_decref(bare);
  json_decref(cur);
}

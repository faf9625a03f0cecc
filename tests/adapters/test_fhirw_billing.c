/* adapters/fhir/fhirw_imaging.c and fhirw_billing.c: ImagingStudy and
 * ChargeItem map to the events their views derive from, read back the same
 * through the views' mappers, and every bad input is refused with its
 * FHIRPath element path (the other types: test_fhirw.c, test_fhirw_types.c). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "clinlog/v1/event.pb-c.h"
#include "fhirw_fixture.h"

TestSuite(fhirw_billing, .timeout = 60);

#define V2_0203 FJ_V2_0203
#define P1 "\"subject\":{\"reference\":\"Patient/p1\"}"
#define EXT "https://clinlog.dev/fhir/StructureDefinition/"

/* ---- ImagingStudy -> ImagingStudyRecorded (fhirw_imaging.c) ---- */

#define DCM "http://dicom.nema.org/resources/ontology/DCM"
#define STUDY_UID "1.2.840.113619.2.55.3.604688119.969.1268071029.320"
#define STUDY                                                                                      \
  "{\"resourceType\":\"ImagingStudy\",\"contained\":[{\"resourceType\":\"Endpoint\",\"id\":"       \
  "\"wado-rs\",\"status\":\"active\",\"connectionType\":{\"system\":\"http://terminology.hl7.org/" \
  "CodeSystem/endpoint-connection-type\",\"code\":\"dicom-wado-rs\",\"display\":\"DICOM "          \
  "WADO-RS\"},\"payloadType\":[{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/"  \
  "endpoint-payload-type\",\"code\":\"any\",\"display\":\"Any\"}]}],\"payloadMimeType\":["         \
  "\"application/dicom\"],\"address\":\"https://pacs.example/dicomweb\"}],"                        \
  "\"identifier\":[{\"system\":\"urn:clinlog:id\",\"value\":\"" STUDY_UID "\"},{\"system\":"       \
  "\"urn:dicom:uid\",\"value\":\"urn:oid:" STUDY_UID "\"},{\"type\":{\"coding\":[{\"system\":"     \
  "\"" V2_0203 "\",\"code\":\"ACSN\",\"display\":\"Accession ID\"}]},\"value\":\"ACC-77\"},"       \
  "{\"type\":{\"text\":\"Study ID\"},\"value\":\"S1\"}],\"status\":\"available\",\"modality\":["   \
  "{\"system\":\"" DCM "\",\"code\":\"CT\"}]," P1 ",\"started\":\"2026-03-07T10:00:00Z\","         \
  "\"basedOn\":[{\"type\":\"ServiceRequest\",\"identifier\":{\"type\":{\"coding\":[{\"system\":"   \
  "\"" V2_0203 "\",\"code\":\"ACSN\",\"display\":\"Accession ID\"}]},\"value\":\"ACC-77\"}}],"     \
  "\"referrer\":{\"display\":\"Dr Ref\"},\"endpoint\":[{\"reference\":\"#wado-rs\"}],"             \
  "\"numberOfSeries\":1,\"numberOfInstances\":2,\"procedureCode\":[{\"coding\":[{\"system\":"      \
  "\"http://loinc.org\",\"code\":\"24627-2\"}]}],\"location\":{\"reference\":\"Location/ct1\","    \
  "\"display\":\"CT 1\"},\"description\":\"CT chest\",\"series\":[{\"uid\":\"1.2.3.4\","           \
  "\"number\":3,\"modality\":{\"system\":\"" DCM "\",\"code\":\"CT\"},\"description\":\"axial\","  \
  "\"numberOfInstances\":2,\"bodySite\":{\"system\":\"http://snomed.info/sct\",\"code\":"          \
  "\"51185008\",\"display\":\"Thorax\"},\"laterality\":{\"system\":\"http://snomed.info/sct\","    \
  "\"code\":\"51440002\"},\"started\":\"2026-03-07T10:01:00Z\",\"instance\":[{\"uid\":"            \
  "\"1.2.3.4.1\",\"sopClass\":{\"system\":\"urn:ietf:rfc:3986\",\"code\":\"urn:oid:1.2.840."       \
  "10008.5.1.4.1.1.2\"},\"number\":1},{\"uid\":\"1.2.3.4.2\",\"sopClass\":{\"system\":"            \
  "\"urn:ietf:rfc:3986\",\"code\":\"urn:oid:1.2.840.10008.5.1.4.1.1.88.22\"},\"number\":2,"        \
  "\"title\":\"dose report\"}]}]"

Test(fhirw_billing, imaging_study_round_trips) {
  fw_round_trip(STUDY "}");
  cl_fhirw_mapped *m = fw_map_ok(STUDY "}");
  Clinlog__V1__Event *ev = fw_only_event(m, CLINLOG__V1__EVENT__BODY_IMAGING_STUDY_RECORDED);
  const Clinlog__V1__ImagingStudyRecorded *b = ev->imaging_study_recorded;
  cr_assert_str_eq(b->study_instance_uid, STUDY_UID);
  cr_assert_str_eq(m->bid, STUDY_UID);
  cr_assert_str_eq(b->accession_number, "ACC-77");
  cr_assert_str_eq(b->study_id, "S1");
  cr_assert_str_eq(b->endpoint, "https://pacs.example/dicomweb");
  cr_assert_eq(b->number_of_instances, 2);
  cr_assert_eq(b->n_series, 1);
  cr_assert_eq(b->series[0]->n_instances, 2);
  cr_assert_str_eq(b->series[0]->instances[1]->sop_class_uid, "1.2.840.10008.5.1.4.1.1.88.22");
  cr_assert_str_eq(b->series[0]->laterality->code, "51440002");
  clinlog__v1__event__free_unpacked(ev, NULL);
  cl_fhirw_mapped_free(m);
  /* based on an order of the views */
  char text[1024];
  fw_opts();
  snprintf(text, sizeof text,
           "{\"resourceType\":\"ImagingStudy\",\"identifier\":[{\"system\":\"urn:clinlog:id\","
           "\"value\":\"1.9\"},{\"system\":\"urn:dicom:uid\",\"value\":\"urn:oid:1.9\"}],"
           "\"status\":\"available\"," P1 ",\"basedOn\":[{\"reference\":\"ServiceRequest/%s\"}]}",
           fw_sr_id);
  fw_round_trip(text);
}

#define IS "{\"resourceType\":\"ImagingStudy\",\"status\":\"available\"," P1
#define UID ",\"identifier\":[{\"system\":\"urn:dicom:uid\",\"value\":\"urn:oid:1.9\"}]"

static const fw_bad BAD_IMAGING[] = {
    {IS "}", 400, "ImagingStudy.identifier", "required"},
    {"{\"resourceType\":\"ImagingStudy\"," P1 UID "}", 400, "ImagingStudy.status", "required"},
    {"{\"resourceType\":\"ImagingStudy\",\"status\":\"registered\"," P1 UID "}", 422,
     "ImagingStudy.status", "code-invalid"},
    {IS ",\"identifier\":[{\"system\":\"urn:dicom:uid\",\"value\":\"1.9\"}]}", 400,
     "ImagingStudy.identifier[0].value", "value"},
    {IS ",\"identifier\":[{\"system\":\"urn:clinlog:id\",\"value\":\"x\"},{\"system\":"
        "\"urn:dicom:uid\",\"value\":\"urn:oid:1.9\"}]}",
     422, "ImagingStudy.identifier", "invalid"},
    {IS ",\"identifier\":[{\"system\":\"urn:other\",\"value\":\"1\"}]}", 422,
     "ImagingStudy.identifier[0]", "not-supported"},
    {IS UID ",\"numberOfSeries\":0}", 400, "ImagingStudy.numberOfSeries", "value"},
    {IS UID ",\"numberOfSeries\":\"2\"}", 400, "ImagingStudy.numberOfSeries", "value"},
    {IS UID ",\"series\":[{\"uid\":\"1.2\"}]}", 400, "ImagingStudy.series[0].modality", "required"},
    {IS UID ",\"series\":[{\"modality\":{\"code\":\"CT\"}}]}", 400, "ImagingStudy.series[0].uid",
     "required"},
    {IS UID ",\"series\":[{\"uid\":\"1.2\",\"modality\":{\"code\":\"CT\"},\"instance\":[{\"uid\":"
            "\"1.2.1\"}]}]}",
     400, "ImagingStudy.series[0].instance[0].sopClass", "required"},
    {IS UID ",\"series\":[{\"uid\":\"1.2\",\"modality\":{\"code\":\"CT\"},\"instance\":[{\"uid\":"
            "\"1.2.1\",\"sopClass\":{\"system\":\"urn:x\",\"code\":\"urn:oid:1.2\"}}]}]}",
     400, "ImagingStudy.series[0].instance[0].sopClass", "value"},
    {IS UID ",\"series\":[{\"uid\":\"1.2\",\"modality\":{\"code\":\"CT\"},\"performer\":[]}]}", 400,
     "ImagingStudy.series[0].performer", "not-supported"},
    {IS UID ",\"endpoint\":[{\"reference\":\"Endpoint/e1\"}]}", 422, "ImagingStudy.endpoint",
     "not-supported"},
    {IS UID ",\"contained\":[{\"resourceType\":\"Endpoint\",\"id\":\"wado-rs\",\"connectionType\":"
            "{\"code\":\"hl7-fhir-rest\"},\"address\":\"https://x\"}],\"endpoint\":[{"
            "\"reference\":\"#wado-rs\"}]}",
     422, "ImagingStudy.contained[0]", "not-supported"},
    {IS UID ",\"basedOn\":[{\"reference\":\"ServiceRequest/unknown\"}]}", 422,
     "ImagingStudy.basedOn[0].reference", "not-found"},
    {IS UID ",\"basedOn\":[{\"type\":\"ServiceRequest\",\"identifier\":{\"value\":\"A\"}}]}", 422,
     "ImagingStudy.basedOn[0]", "not-supported"},
    {IS UID ",\"modality\":[{\"text\":\"CT\"}]}", 400, "ImagingStudy.modality[0].text",
     "not-supported"},
    {IS UID ",\"interpreter\":[]}", 400, "ImagingStudy.interpreter", "not-supported"},
};

Test(fhirw_billing, every_bad_imaging_study_is_refused_naming_the_element) {
  fw_refused_all(BAD_IMAGING, sizeof BAD_IMAGING / sizeof BAD_IMAGING[0]);
}

/* ---- ChargeItem -> ChargeCaptured (fhirw_billing.c) ---- */

#define X12_355 "https://codesystem.x12.org/005010/355"
#define CHARGE_EXT                                                                                 \
  "\"extension\":[{\"url\":\"" EXT "procedure-modifier\",\"valueCoding\":{\"system\":"             \
  "\"http://www.ama-assn.org/go/cpt\",\"code\":\"25\"}},{\"url\":\"" EXT "procedure-modifier\","   \
  "\"valueCoding\":{\"system\":\"http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets\","       \
  "\"code\":\"LT\"}},{\"url\":\"" EXT "revenue-code\",\"valueCoding\":{\"system\":\"https://"      \
  "www.nubc.org/CodeSystem/RevenueCodes\",\"code\":\"0450\"}},{\"url\":\"" EXT "place-of-service"  \
  "\",\"valueCoding\":{\"system\":\"https://www.cms.gov/Medicare/Coding/place-of-service-codes/"   \
  "Place_of_Service_Code_Set\",\"code\":\"11\"}},{\"url\":\"" EXT "drug-quantity\","               \
  "\"valueQuantity\":{\"value\":2.5,\"unit\":\"Milliliter\",\"system\":\"" X12_355 "\","           \
  "\"code\":\"ML\"}}]"

Test(fhirw_billing, charge_item_round_trips) {
  char text[4096];
  fw_opts();
  snprintf(text, sizeof text,
           "{\"resourceType\":\"ChargeItem\"," CHARGE_EXT ",\"identifier\":[{\"system\":"
           "\"urn:clinlog:id\",\"value\":\"ch-1\"}],\"status\":\"billable\",\"code\":{\"coding\":"
           "[{\"system\":\"http://www.ama-assn.org/go/cpt\",\"code\":\"99213\"}]}," P1 ","
           "\"context\":{\"reference\":\"Encounter/%s\"},\"occurrenceDateTime\":\"2026-03-01\","
           "\"performer\":[{\"actor\":{\"reference\":\"Practitioner/npi1\"}}],\"quantity\":{"
           "\"value\":1,\"unit\":\"Unit\",\"system\":\"" X12_355 "\",\"code\":\"UN\"},"
           "\"priceOverride\":{\"value\":125.50,\"currency\":\"USD\"},\"enteredDate\":"
           "\"2026-03-01T12:00:00Z\",\"reason\":[{\"coding\":[{\"system\":\"http://hl7.org/fhir/"
           "sid/icd-10-cm\",\"code\":\"I10\"}]}],\"productCodeableConcept\":{\"coding\":[{"
           "\"system\":\"http://hl7.org/fhir/sid/ndc\",\"code\":\"0002-8215-01\"}]},"
           "\"supportingInformation\":[{\"reference\":\"ServiceRequest/%s\"}]}",
           fw_enc_id, fw_sr_id);
  fw_round_trip(text);
  cl_fhirw_mapped *m = fw_map_ok(text);
  Clinlog__V1__Event *ev = fw_only_event(m, CLINLOG__V1__EVENT__BODY_CHARGE_CAPTURED);
  const Clinlog__V1__ChargeCaptured *b = ev->charge_captured;
  cr_assert_str_eq(b->charge_id, "ch-1");
  cr_assert_eq(b->amount->minor_units, 12550);
  cr_assert_str_eq(b->amount->currency, "USD");
  cr_assert_eq(b->n_modifiers, 2);
  cr_assert_str_eq(b->modifiers[1], "LT");
  cr_assert_str_eq(b->units, "1");
  cr_assert_str_eq(b->unit_basis, "UN");
  cr_assert_str_eq(b->ndc_quantity, "2.5");
  cr_assert_str_eq(b->ndc_unit, "ML");
  cr_assert_str_eq(b->order_id, "sr-1");
  cr_assert_str_eq(b->encounter_id, "enc-1");
  cr_assert_str_eq(b->service_date, "2026-03-01");
  clinlog__v1__event__free_unpacked(ev, NULL);
  cl_fhirw_mapped_free(m);
  /* a multi-day service; a currency without minor units */
  fw_round_trip("{\"resourceType\":\"ChargeItem\",\"identifier\":[{\"system\":\"urn:clinlog:id\","
                "\"value\":\"ch-2\"}],\"status\":\"billable\",\"code\":{\"coding\":[{\"system\":"
                "\"x\",\"code\":\"J1100\"}]}," P1 ",\"occurrencePeriod\":{\"start\":\"2026-03-01\","
                "\"end\":\"2026-03-03\"},\"priceOverride\":{\"value\":1200,\"currency\":\"JPY\"},"
                "\"enteredDate\":\"2026-03-03T12:00:00Z\"}");
}

#define CI                                                                                         \
  "{\"resourceType\":\"ChargeItem\",\"status\":\"billable\",\"code\":{\"coding\":[{\"system\":"    \
  "\"x\",\"code\":\"99213\"}]}," P1

static const fw_bad BAD_CHARGE[] = {
    {"{\"resourceType\":\"ChargeItem\"," P1 ",\"code\":{\"text\":\"x\"}}", 400, "ChargeItem.status",
     "required"},
    {"{\"resourceType\":\"ChargeItem\",\"status\":\"billable\"," P1 "}", 400, "ChargeItem.code",
     "required"},
    {"{\"resourceType\":\"ChargeItem\",\"status\":\"billed\",\"code\":{\"text\":\"x\"}," P1 "}",
     422, "ChargeItem.status", "code-invalid"},
    {CI ",\"priceOverride\":{\"value\":125.5,\"currency\":\"USD\"}}", 400,
     "ChargeItem.priceOverride.value", "value"},
    {CI ",\"priceOverride\":{\"value\":125.50}}", 400, "ChargeItem.priceOverride.currency",
     "required"},
    {CI ",\"priceOverride\":{\"value\":\"1.00\",\"currency\":\"USD\"}}", 400,
     "ChargeItem.priceOverride.value", "value"},
    {CI ",\"quantity\":{\"value\":1,\"unit\":\"mL\",\"system\":\"http://unitsofmeasure.org\","
        "\"code\":\"mL\"}}",
     422, "ChargeItem.quantity", "not-supported"},
    {CI ",\"occurrenceDateTime\":\"2026-13-01\"}", 400, "ChargeItem.occurrenceDateTime", "value"},
    {CI ",\"occurrencePeriod\":{\"start\":\"2026-03-01\"}}", 400, "ChargeItem.occurrencePeriod.end",
     "required"},
    {CI ",\"performer\":[{\"function\":{\"text\":\"x\"},\"actor\":{\"display\":\"a\"}}]}", 400,
     "ChargeItem.performer[0].function", "not-supported"},
    {CI ",\"performer\":[{}]}", 400, "ChargeItem.performer[0].actor", "required"},
    {CI ",\"supportingInformation\":[{\"reference\":\"ServiceRequest/unknown\"}]}", 422,
     "ChargeItem.supportingInformation[0].reference", "not-found"},
    {CI ",\"extension\":[{\"url\":\"" EXT "procedure-modifier\",\"valueString\":\"25\"}]}", 400,
     "ChargeItem.extension[0].valueString", "not-supported"},
    {CI ",\"extension\":[{\"url\":\"" EXT "revenue-code\",\"valueCoding\":{\"code\":\"1\"}},{"
        "\"url\":\"" EXT "revenue-code\",\"valueCoding\":{\"code\":\"2\"}}]}",
     422, "ChargeItem.extension[1]", "not-supported"},
    {CI ",\"extension\":[{\"url\":\"" EXT "other\"}]}", 422, "ChargeItem.extension[0].url",
     "not-supported"},
    {CI ",\"context\":{\"reference\":\"Encounter/unknown\"}}", 422, "ChargeItem.context.reference",
     "not-found"},
    {CI ",\"definitionUri\":[]}", 400, "ChargeItem.definitionUri", "not-supported"},
};

Test(fhirw_billing, every_bad_charge_is_refused_naming_the_element) {
  fw_refused_all(BAD_CHARGE, sizeof BAD_CHARGE / sizeof BAD_CHARGE[0]);
}

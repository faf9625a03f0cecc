/* adapters/fhir/fhirw_report.c and the other types added after the first
 * ten: each resource maps to the event its view derives from, the view's
 * mapper gives it back, and every bad input is refused with its FHIRPath
 * element path (test_fhirw.c covers the first ten types). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clinlog/v1/event.pb-c.h"
#include "fhirw_fixture.h"
#include "store/event.h"

TestSuite(fhirw_types, .timeout = 60);

/* Every member of want (but id) is in got with the same value, and got has
 * no member want lacks but those in `extra` (NULL-terminated). */
static void same_members(json_t *want, json_t *got, const char *const *extra) {
  want = fw_ints(json_deep_copy(want));
  got = fw_ints(json_deep_copy(got));
  json_object_del(want, "id");
  json_object_del(got, "id");
  for (size_t i = 0; extra[i] != NULL; i++)
    if (json_object_get(want, extra[i]) == NULL)
      json_object_del(got, extra[i]);
  fw_assert_same(want, got);
}

/* ---- DiagnosticReport -> LabResultReported ---- */

#define LOINC "http://loinc.org"
#define V2_0203 FJ_V2_0203
#define LAB_CAT                                                                                    \
  "\"category\":[{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/"                \
  "observation-category\",\"code\":\"laboratory\",\"display\":\"Laboratory\"}]}]"
#define P1 "\"subject\":{\"reference\":\"Patient/p1\"}"
#define ISSUED "\"issued\":\"2026-03-04T10:00:00Z\""
#define UCUM "\"system\":\"http://unitsofmeasure.org\",\"code\":\"mmol/L\""
/* the section every report of the views has */
#define LAB_SECTION                                                                                \
  "\"category\":[{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/v2-0074\","      \
  "\"code\":\"LAB\",\"display\":\"Laboratory\"}]}]"

/* A report in the form the view writes it, with its two result lines
 * contained (as a client sends them) and its order contained. */
static const char *report_text(char *buf, size_t n) {
  fw_opts();
  snprintf(
      buf, n,
      "{\"resourceType\":\"DiagnosticReport\","
      "\"contained\":["
      "{\"resourceType\":\"Observation\",\"id\":\"k\",\"identifier\":[{\"system\":"
      "\"urn:clinlog:id\",\"value\":\"line-k\"}],\"status\":\"final\"," LAB_CAT ","
      "\"code\":{\"coding\":[{\"system\":\"" LOINC "\",\"code\":\"2823-3\",\"display\":"
      "\"Potassium\"}]}," P1 ",\"encounter\":{\"reference\":\"Encounter/%s\"},"
      "\"effectiveDateTime\":\"2026-03-04T08:00:00Z\"," ISSUED ","
      "\"performer\":[{\"display\":\"Main Lab\"}],"
      "\"valueQuantity\":{\"value\":5.90,\"unit\":\"mmol/L\",\"system\":\"http://unitsofmeasure"
      ".org\",\"code\":\"mmol/L\"},\"interpretation\":[{\"coding\":[{\"system\":\"http://"
      "terminology.hl7.org/CodeSystem/v3-ObservationInterpretation\",\"code\":\"H\"}]}],"
      "\"note\":[{\"text\":\"hemolyzed\"}],\"referenceRange\":[{\"low\":{\"value\":3.5,\"unit\":"
      "\"mmol/L\"," UCUM "},\"high\":{\"value\":5.1,\"unit\":\"mmol/L\"," UCUM "}}]},"
      "{\"resourceType\":\"Observation\",\"id\":\"g\",\"status\":\"preliminary\","
      "\"code\":{\"coding\":[{\"system\":\"" LOINC "\",\"code\":\"2345-7\"}],\"text\":\"Glucose\"},"
      "\"valueString\":\"pending review\",\"method\":{\"coding\":[{\"system\":\"m\",\"code\":"
      "\"hexokinase\"}]}},"
      "{\"resourceType\":\"ServiceRequest\",\"id\":\"order\",\"identifier\":[{\"type\":{"
      "\"coding\":[{\"system\":\"" V2_0203 "\",\"code\":\"PLAC\",\"display\":\"Placer Identifier"
      "\"}]},\"system\":\"urn:oid:9.1\",\"value\":\"PO-7\"},{\"type\":{\"coding\":[{\"system\":"
      "\"" V2_0203 "\",\"code\":\"FILL\",\"display\":\"Filler Identifier\"}]},\"value\":\"FO-7\"}],"
      "\"status\":\"unknown\",\"intent\":\"order\",\"code\":{\"coding\":[{\"system\":\"" LOINC
      "\",\"code\":\"24323-8\"}]}," P1 ",\"requester\":{\"reference\":\"Practitioner/dr1\","
      "\"display\":\"Dr One\"}}],"
      "\"extension\":[{\"url\":\"http://hl7.org/fhir/5.0/StructureDefinition/extension-"
      "DiagnosticReport.note\",\"valueAnnotation\":{\"text\":\"called to ward\"}}],"
      "\"identifier\":[{\"system\":\"urn:clinlog:id\",\"value\":\"rep-1\"},{\"type\":{"
      "\"coding\":[{\"system\":\"" V2_0203 "\",\"code\":\"PLAC\",\"display\":\"Placer Identifier"
      "\"}]},\"system\":\"urn:oid:9.1\",\"value\":\"PO-7\"},{\"type\":{\"coding\":[{\"system\":"
      "\"" V2_0203 "\",\"code\":\"FILL\",\"display\":\"Filler Identifier\"}]},\"value\":\"FO-7\"},"
      "{\"type\":{\"coding\":[{\"system\":\"" V2_0203 "\",\"code\":\"ACSN\",\"display\":"
      "\"Accession ID\"}]},\"value\":\"AC-1\"}],"
      "\"basedOn\":[{\"reference\":\"#order\"}],\"status\":\"final\","
      "\"category\":[{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/v2-0074\","
      "\"code\":\"CH\"}]},{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/"
      "v2-0074\",\"code\":\"LAB\",\"display\":\"Laboratory\"}]}],"
      "\"code\":{\"coding\":[{\"system\":\"" LOINC "\",\"code\":\"24323-8\"}]}," P1 ","
      "\"encounter\":{\"reference\":\"Encounter/%s\"},"
      "\"effectiveDateTime\":\"2026-03-04T07:30:00Z\"," ISSUED ","
      "\"performer\":[{\"display\":\"Main Lab\"}],"
      "\"resultsInterpreter\":[{\"reference\":\"Practitioner/path1\"}],"
      "\"result\":[{\"reference\":\"#k\"},{\"reference\":\"#g\"}],"
      "\"conclusion\":\"hyperkalemia\"}",
      fw_enc_id, fw_enc_id);
  return buf;
}

Test(fhirw_types, diagnostic_report_maps_to_one_lab_result_reported) {
  char text[8192];
  cl_fhirw_mapped *m = fw_map_ok(report_text(text, sizeof text));
  Clinlog__V1__Event *ev = fw_only_event(m, CLINLOG__V1__EVENT__BODY_LAB_RESULT_REPORTED);
  const Clinlog__V1__LabResultReported *b = ev->lab_result_reported;
  cr_assert_str_eq(b->report_id, "rep-1");
  cr_assert_str_eq(m->bid, "rep-1");
  cr_assert_eq(b->status, CLINLOG__V1__DIAGNOSTIC_REPORT_STATUS__DIAGNOSTIC_REPORT_STATUS_FINAL);
  cr_assert_str_eq(b->code->coding[0]->code, "24323-8");
  cr_assert_str_eq(b->code->coding[0]->system, LOINC);
  cr_assert_str_eq(b->category->code, "CH");
  cr_assert_str_eq(b->placer_order_number->value, "PO-7");
  cr_assert_str_eq(b->placer_order_number->system, "urn:oid:9.1");
  cr_assert_str_eq(b->filler_order_number->value, "FO-7");
  cr_assert_str_eq(b->accession_number, "AC-1");
  cr_assert_str_eq(b->encounter_id, "enc-1");
  cr_assert_str_eq(b->ordering_provider->resource, "Practitioner/dr1");
  cr_assert_str_eq(b->results_interpreter->resource, "Practitioner/path1");
  cr_assert_str_eq(b->conclusion, "hyperkalemia");
  cr_assert_eq(b->n_notes, 1);
  cr_assert_str_eq(b->notes[0], "called to ward");
  cr_assert_str_eq(b->order_id, "");
  cr_assert_eq(b->issued->seconds, ev->occurred_at->seconds, "occurred_at is issued");
  cr_assert_eq(b->n_results, 2, "one line per result, in result order");
  const Clinlog__V1__LabResult *k = b->results[0], *g = b->results[1];
  cr_assert_str_eq(k->observation_id, "line-k");
  cr_assert_str_eq(k->code->coding[0]->code, "2823-3");
  cr_assert_eq(k->value_case, CLINLOG__V1__LAB_RESULT__VALUE_QUANTITY);
  cr_assert_str_eq(k->quantity->value, "5.90", "the decimal as written");
  cr_assert_eq(k->n_reference_range, 1);
  cr_assert_str_eq(k->interpretation[0]->code, "H");
  cr_assert_eq(k->n_notes, 1);
  cr_assert_str_eq(g->observation_id, "");
  cr_assert_eq(g->value_case, CLINLOG__V1__LAB_RESULT__VALUE_STRING_VALUE);
  cr_assert_str_eq(g->string_value, "pending review");
  cr_assert_eq(g->status, CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_PRELIMINARY);
  cr_assert_str_eq(g->method->code, "hexokinase");
  clinlog__v1__event__free_unpacked(ev, NULL);
  cl_fhirw_mapped_free(m);
}

Test(fhirw_types, diagnostic_report_reads_back_with_its_lines) {
  char text[8192];
  json_t *in = fw_parse(report_text(text, sizeof text));
  cl_fhirw_mapped *m = fw_map_ok(text);
  json_t *store = fw_views_of(m);
  json_t *rep = json_object_get(store, m->id);
  cr_assert_not_null(rep);
  cr_assert_eq(json_object_size(store), 3, "the report and its two lines");
  /* the report: as written, its results now the lines' own Observations */
  json_t *want = json_deep_copy(in), *cont = json_object_get(want, "contained");
  json_t *lines[2] = {json_incref(json_array_get(cont, 0)), json_incref(json_array_get(cont, 1))};
  json_array_remove(cont, 0);
  json_array_remove(cont, 0);
  json_t *res = json_object_get(rep, "result");
  cr_assert_eq(json_array_size(res), 2);
  json_object_set(want, "result", res);
  static const char *const none[] = {NULL};
  same_members(want, rep, none);
  /* each line: what was written, plus what the view fills in from the
   * report (subject, category, issued, performer, effective) */
  static const char *const from_report[] = {
      "subject",           "category",  "issued",     "performer",
      "effectiveDateTime", "encounter", "identifier", NULL};
  for (int i = 0; i < 2; i++) {
    const char *ref =
        json_string_value(json_object_get(json_array_get(res, (size_t)i), "reference"));
    cr_assert(ref != NULL && !strncmp(ref, "Observation/", 12));
    json_t *got = json_object_get(store, ref + 12);
    cr_assert_not_null(got, "%s", ref);
    same_members(lines[i], got, from_report);
    json_decref(lines[i]);
  }
  /* the line with a business id keeps it; the other gets one derived
   * from the report's */
  json_t *g = json_object_get(
      store, json_string_value(json_object_get(json_array_get(res, 1), "reference")) + 12);
  const char *gid = json_string_value(
      json_object_get(json_array_get(json_object_get(g, "identifier"), 0), "value"));
  cr_assert(gid != NULL && !strncmp(gid, "rep-1/", 6), "%s", gid ? gid : "(none)");
  json_decref(want);
  json_decref(store);
  json_decref(in);
  cl_fhirw_mapped_free(m);
}

Test(fhirw_types, a_report_on_a_known_order_and_a_minimal_one) {
  /* basedOn a ServiceRequest of the views: its order id */
  fw_round_trip("{\"resourceType\":\"DiagnosticReport\",\"identifier\":[{\"system\":"
                "\"urn:clinlog:id\",\"value\":\"rep-2\"}],\"status\":\"partial\","
                "\"category\":[{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/"
                "v2-0074\",\"code\":\"LAB\",\"display\":\"Laboratory\"}]}],"
                "\"code\":{\"text\":\"panel\"}," P1 "," ISSUED "}");
  char text[1024];
  cl_fhirw_opts o = fw_opts();
  snprintf(text, sizeof text,
           "{\"resourceType\":\"DiagnosticReport\",\"identifier\":[{\"system\":"
           "\"urn:clinlog:id\",\"value\":\"rep-3\"}],\"basedOn\":[{\"reference\":"
           "\"ServiceRequest/%s\"}],\"status\":\"final\"," LAB_SECTION ",\"code\":{\"text\":"
           "\"x\"}," P1 "," ISSUED "}",
           fw_sr_id);
  fw_round_trip(text);
  cl_fhirw_mapped *m = fw_map_ok(text);
  Clinlog__V1__Event *ev = fw_only_event(m, CLINLOG__V1__EVENT__BODY_LAB_RESULT_REPORTED);
  cr_assert_str_eq(ev->lab_result_reported->order_id, "sr-1");
  clinlog__v1__event__free_unpacked(ev, NULL);
  cl_fhirw_mapped_free(m);
  /* an order of another type */
  snprintf(text, sizeof text,
           "{\"resourceType\":\"DiagnosticReport\",\"status\":\"final\",\"code\":{\"text\":"
           "\"x\"}," P1 ",\"basedOn\":[{\"reference\":\"MedicationRequest/%s\"}]}",
           fw_rx_id);
  json_t *j = fw_parse(text);
  cl_fhirw_error fe;
  cl_err err;
  cr_assert_eq(cl_fhirw_map(j, NULL, NULL, "", &o, &m, &fe, &err), CL_EMALFORMED);
  cr_assert_str_eq(fe.expression, "DiagnosticReport.basedOn[0]");
  cr_assert_eq(fe.status, 422);
  json_decref(j);
}

#define DR                                                                                         \
  "{\"resourceType\":\"DiagnosticReport\",\"status\":\"final\",\"code\":{\"text\":\"x\"}," P1
#define OBS_C                                                                                      \
  "{\"resourceType\":\"Observation\",\"id\":\"a\",\"status\":\"final\",\"code\":{\"text\":\"k\"}"
#define WITH_A ",\"result\":[{\"reference\":\"#a\"}]"

static const fw_bad BAD[] = {
    {"{\"resourceType\":\"DiagnosticReport\",\"code\":{\"text\":\"x\"}," P1 "}", 400,
     "DiagnosticReport.status", "required"},
    {"{\"resourceType\":\"DiagnosticReport\",\"status\":\"final\"," P1 "}", 400,
     "DiagnosticReport.code", "required"},
    {"{\"resourceType\":\"DiagnosticReport\",\"status\":\"final\",\"code\":{\"text\":\"x\"}}", 400,
     "DiagnosticReport.subject", "required"},
    {DR ",\"subject\":7}", 400, "", "structure"}, /* a duplicate member */
    {"{\"resourceType\":\"DiagnosticReport\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
     "\"subject\":{\"reference\":\"Patient/nobody\"}}",
     422, "DiagnosticReport.subject.reference", "not-found"},
    {DR ",\"status\":\"done\"}", 400, "", "structure"},
    {"{\"resourceType\":\"DiagnosticReport\",\"status\":\"done\",\"code\":{\"text\":\"x\"}," P1 "}",
     422, "DiagnosticReport.status", "code-invalid"},
    {"{\"resourceType\":\"DiagnosticReport\",\"status\":\"entered-in-error\",\"code\":{\"text\":"
     "\"x\"}," P1 "}",
     422, "DiagnosticReport.status", "not-supported"},
    {DR ",\"issued\":20260101}", 400, "DiagnosticReport.issued", "structure"},
    {DR ",\"presentedForm\":[]}", 400, "DiagnosticReport.presentedForm", "not-supported"},
    {DR ",\"result\":[{\"reference\":\"Observation/o1\"}]}", 422, "DiagnosticReport.result[0]",
     "not-supported"},
    {DR ",\"result\":[{\"reference\":\"urn:uuid:0b0e\"}]}", 422, "DiagnosticReport.result[0]",
     "not-supported"},
    {DR ",\"contained\":[" OBS_C "}],\"result\":[{\"reference\":\"#a\"},{\"reference\":\"#b\"}]}",
     422, "DiagnosticReport.result[1]", "not-supported"},
    {DR ",\"contained\":[" OBS_C "}],\"result\":[{\"reference\":\"#a\"},{\"reference\":\"#a\"}]}",
     422, "DiagnosticReport.result[1]", "not-supported"},
    {DR ",\"result\":[\"#a\"]}", 400, "DiagnosticReport.result[0]", "structure"},
    {DR
     ",\"contained\":[{\"resourceType\":\"Observation\",\"id\":\"a\",\"status\":\"final\"}]" WITH_A
     "}",
     400, "DiagnosticReport.contained[0].code", "required"},
    {DR ",\"contained\":[{\"resourceType\":\"Observation\",\"id\":\"a\",\"code\":{\"text\":\"k\"}}"
        "]" WITH_A "}",
     400, "DiagnosticReport.contained[0].status", "required"},
    {DR ",\"contained\":[" OBS_C ",\"valueQuantity\":{\"value\":\"high\"}}]" WITH_A "}", 400,
     "DiagnosticReport.contained[0].valueQuantity.value", "structure"},
    {DR ",\"contained\":[" OBS_C ",\"component\":[{\"code\":{\"text\":\"c\"}}]}]" WITH_A "}", 422,
     "DiagnosticReport.contained[0].component", "not-supported"},
    {DR ",\"contained\":[" OBS_C ",\"bodySite\":{\"text\":\"arm\"}}]" WITH_A "}", 422,
     "DiagnosticReport.contained[0].bodySite", "not-supported"},
    {DR ",\"contained\":[" OBS_C ",\"device\":{\"display\":\"x\"}}]" WITH_A "}", 400,
     "DiagnosticReport.contained[0].device", "not-supported"},
    {DR ",\"contained\":[" OBS_C ",\"subject\":{\"reference\":\"Patient/nobody\"}}]" WITH_A "}",
     422, "DiagnosticReport.contained[0].subject.reference", "not-found"},
    {DR ",\"contained\":[" OBS_C ",\"category\":[{\"coding\":[{\"system\":\"http://terminology."
        "hl7.org/CodeSystem/observation-category\",\"code\":\"vital-signs\"}]}]}]" WITH_A "}",
     422, "DiagnosticReport.contained[0].category", "not-supported"},
    {DR ",\"contained\":[" OBS_C ",\"issued\":\"2026-01-01T00:00:00Z\"}]" WITH_A "}", 422,
     "DiagnosticReport.contained[0].issued", "not-supported"},
    {DR ",\"contained\":[" OBS_C ",\"performer\":[{\"display\":\"a\"},{\"display\":\"b\"}]}]" WITH_A
        "}",
     422, "DiagnosticReport.contained[0].performer[1]", "not-supported"},
    {DR ",\"contained\":[" OBS_C ",\"identifier\":[{\"system\":\"urn:x\",\"value\":\"1\"}]}]" WITH_A
        "}",
     422, "DiagnosticReport.contained[0].identifier[0]", "not-supported"},
    {DR ",\"contained\":[" OBS_C ",\"basedOn\":[{\"reference\":\"ServiceRequest/s\"}]}]" WITH_A "}",
     422, "DiagnosticReport.contained[0].basedOn", "not-supported"},
    {DR ",\"contained\":[" OBS_C "},{\"resourceType\":\"Specimen\",\"id\":\"s\"}]" WITH_A
        ",\"specimen\":[{\"reference\":\"#s\"}]}",
     400, "DiagnosticReport.specimen", "not-supported"},
    {DR ",\"contained\":[" OBS_C "},{\"resourceType\":\"Specimen\",\"id\":\"s\"}]" WITH_A "}", 422,
     "DiagnosticReport.contained[1]", "not-supported"},
    {DR ",\"category\":[{\"text\":\"a\"},{\"text\":\"b\"}]}", 422, "DiagnosticReport.category",
     "not-supported"},
    {DR ",\"extension\":[{\"url\":\"http://x\",\"valueString\":\"a\"}]}", 400,
     "DiagnosticReport.extension[0].valueString", "not-supported"},
    {DR ",\"extension\":[{\"url\":\"http://x\"}]}", 422, "DiagnosticReport.extension[0].url",
     "not-supported"},
    {DR ",\"basedOn\":[{\"reference\":\"ServiceRequest/a\"},{\"reference\":\"ServiceRequest/b\"}]}",
     422, "DiagnosticReport.basedOn[1]", "not-supported"},
    {DR ",\"basedOn\":[{\"reference\":\"ServiceRequest/unknown\"}]}", 422,
     "DiagnosticReport.basedOn[0].reference", "not-found"},
    {DR ",\"basedOn\":[{\"reference\":\"#order\"}]}", 422, "DiagnosticReport.basedOn[0].reference",
     "not-supported"},
    {DR ",\"contained\":[{\"resourceType\":\"ServiceRequest\",\"id\":\"order\",\"status\":"
        "\"unknown\",\"intent\":\"order\"}],\"basedOn\":[{\"reference\":\"#order\"}]}",
     422, "DiagnosticReport.contained[0].requester", "not-supported"},
    {DR ",\"contained\":[{\"resourceType\":\"ServiceRequest\",\"id\":\"order\",\"status\":"
        "\"active\",\"intent\":\"order\"}],\"basedOn\":[{\"reference\":\"#order\"}]}",
     422, "DiagnosticReport.contained[0].status", "code-invalid"},
    {DR ",\"contained\":[{\"resourceType\":\"ServiceRequest\",\"id\":\"order\",\"status\":"
        "\"unknown\",\"intent\":\"order\",\"identifier\":[{\"type\":{\"coding\":[{\"system\":"
        "\"" V2_0203
        "\",\"code\":\"PLAC\"}]},\"value\":\"P\"}],\"requester\":{\"display\":\"d\"}}],"
        "\"basedOn\":[{\"reference\":\"#order\"}]}",
     422, "DiagnosticReport.contained[0].identifier", "not-supported"},
    {DR ",\"identifier\":[{\"type\":{\"coding\":[{\"system\":\"" V2_0203 "\",\"code\":\"ACSN\"}]},"
        "\"system\":\"urn:x\",\"value\":\"A\"}]}",
     422, "DiagnosticReport.identifier", "not-supported"},
    {DR ",\"identifier\":[{\"type\":{\"coding\":[{\"system\":\"" V2_0203 "\",\"code\":\"MR\"}]},"
        "\"value\":\"A\"}]}",
     422, "DiagnosticReport.identifier[0]", "not-supported"},
};

Test(fhirw_types, every_bad_report_is_refused_naming_the_element) {
  fw_refused_all(BAD, sizeof BAD / sizeof BAD[0]);
}

/* ---- Appointment, Communication, Task (fhirw_portal.c) ---- */

#define EXT "https://clinlog.dev/fhir/StructureDefinition/"
#define APPT_BODY                                                                                  \
  "\"identifier\":[{\"system\":\"urn:clinlog:id\",\"value\":\"ap-1\"},{\"type\":{\"coding\":[{"    \
  "\"system\":\"" V2_0203 "\",\"code\":\"PLAC\",\"display\":\"Placer Identifier\"}]},"             \
  "\"value\":\"S-1\"}],"                                                                           \
  "\"serviceType\":[{\"coding\":[{\"system\":\"http://snomed.info/"                                \
  "sct\",\"code\":\"394802001\"}]}],"                                                              \
  "\"appointmentType\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/"          \
  "v2-0276\",\"code\":\"FOLLOWUP\"}]},\"reasonCode\":[{\"text\":\"BP check\"}],"                   \
  "\"start\":\"2026-04-01T09:00:00Z\",\"end\":\"2026-04-01T09:20:00Z\","                           \
  "\"created\":\"2026-03-20T12:00:00Z\",\"comment\":\"bring meds\","                               \
  "\"participant\":[{\"actor\":{\"reference\":\"Patient/p1\"},\"status\":\"accepted\"},"           \
  "{\"type\":[{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/"                   \
  "v3-ParticipationType\",\"code\":\"ATND\",\"display\":\"attender\"}]}],\"actor\":{"              \
  "\"reference\":\"Practitioner/dr1\",\"display\":\"Dr One\"},\"status\":\"accepted\"},"           \
  "{\"actor\":{\"reference\":\"Location/l1\",\"display\":\"Clinic 2\"},\"status\":\"accepted\"}]"
#define APPT_EXT                                                                                   \
  "{\"url\":\"" EXT "booking-channel\",\"valueCoding\":{\"system\":\"https://clinlog.dev/fhir/"    \
  "CodeSystem/booking-channel\",\"code\":\"portal\",\"display\":\"Patient portal or app\"}},"      \
  "{\"url\":\"" EXT "booked-by\",\"valueReference\":{\"reference\":\"Patient/p1\"}}"

Test(fhirw_types, appointment_booked_and_cancelled_round_trip) {
  const char *booked = "{\"resourceType\":\"Appointment\",\"extension\":[" APPT_EXT
                       "],\"status\":\"booked\"," APPT_BODY "}";
  fw_round_trip(booked);
  cl_fhirw_mapped *m = fw_map_ok(booked);
  Clinlog__V1__Event *ev = fw_only_event(m, CLINLOG__V1__EVENT__BODY_APPOINTMENT_BOOKED);
  const Clinlog__V1__AppointmentBooked *b = ev->appointment_booked;
  cr_assert_str_eq(b->appointment_id, "ap-1");
  cr_assert_eq(b->booked_via, CLINLOG__V1__BOOKING_CHANNEL__BOOKING_CHANNEL_PORTAL);
  cr_assert_str_eq(b->practitioner->resource, "Practitioner/dr1");
  cr_assert_str_eq(b->location->reference->resource, "Location/l1");
  cr_assert_str_eq(b->placer_appointment_id->value, "S-1");
  cr_assert_str_eq(b->appointment_type->code, "FOLLOWUP");
  cr_assert_eq(ev->occurred_at->seconds, 1774008000, "occurred_at is created");
  clinlog__v1__event__free_unpacked(ev, NULL);
  cl_fhirw_mapped_free(m);
  /* cancelled: the booking and its cancellation, one append */
  const char *cancelled =
      "{\"resourceType\":\"Appointment\",\"extension\":[" APPT_EXT ",{\"url\":\"" EXT
      "cancelled-by\",\"valueReference\":{\"display\":\"front desk\"}}],\"status\":\"noshow\","
      "\"cancelationReason\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/"
      "appointment-cancellation-reason\",\"code\":\"pat\"}]}," APPT_BODY "}";
  fw_round_trip(cancelled);
  m = fw_map_ok(cancelled);
  cr_assert_eq(m->n, 2);
  cr_assert_eq(m->ev[0].type, CLINLOG__V1__EVENT__BODY_APPOINTMENT_BOOKED);
  cr_assert_eq(m->ev[1].type, CLINLOG__V1__EVENT__BODY_APPOINTMENT_CANCELLED);
  cl_err err;
  cr_assert_eq(cl_event_decode(m->ev[1].bytes, m->ev[1].len, &ev, &err), 0, "%s", err.msg);
  cr_assert(ev->appointment_cancelled->no_show);
  cr_assert_str_eq(ev->appointment_cancelled->appointment_id, "ap-1");
  cr_assert_str_eq(ev->appointment_cancelled->reason->coding[0]->code, "pat");
  clinlog__v1__event__free_unpacked(ev, NULL);
  cl_fhirw_mapped_free(m);
}

Test(fhirw_types, communication_and_task_round_trip) {
  const char *msg =
      "{\"resourceType\":\"Communication\",\"identifier\":[{\"system\":\"urn:clinlog:id\","
      "\"value\":\"m-2\"},{\"system\":\"urn:clinlog:thread\",\"value\":\"t-1\"}],"
      "\"status\":\"completed\",\"category\":[{\"coding\":[{\"system\":\"urn:x\",\"code\":"
      "\"medical-advice\"}]}]," P1 ",\"topic\":{\"text\":\"Question\"},"
      "\"sent\":\"2026-04-02T08:00:00Z\",\"recipient\":[{\"reference\":\"Practitioner/dr1\"},"
      "{\"display\":\"Nurse pool\"}],\"sender\":{\"reference\":\"Patient/p1\"},"
      "\"payload\":[{\"contentString\":\"Is 5.9 high?\"},{\"contentReference\":{\"reference\":"
      "\"DiagnosticReport/r1\"}}]}";
  fw_round_trip(msg);
  cl_fhirw_mapped *m = fw_map_ok(msg);
  Clinlog__V1__Event *ev = fw_only_event(m, CLINLOG__V1__EVENT__BODY_MESSAGE_SENT);
  const Clinlog__V1__MessageSent *b = ev->message_sent;
  cr_assert_str_eq(b->message_id, "m-2");
  cr_assert_str_eq(b->thread_id, "t-1");
  cr_assert_str_eq(b->subject, "Question");
  cr_assert_str_eq(b->body, "Is 5.9 high?");
  cr_assert_eq(b->n_recipients, 2);
  cr_assert_eq(b->n_attachments, 1);
  clinlog__v1__event__free_unpacked(ev, NULL);
  cl_fhirw_mapped_free(m);

  char task[2048];
  fw_opts();
  snprintf(task, sizeof task,
           "{\"resourceType\":\"Task\",\"identifier\":[{\"system\":\"urn:clinlog:id\",\"value\":"
           "\"rf-1\"}],\"status\":\"requested\",\"intent\":\"order\",\"code\":{\"coding\":[{"
           "\"system\":\"http://hl7.org/fhir/CodeSystem/task-code\",\"code\":\"fulfill\","
           "\"display\":\"Fulfill the focal request\"}],\"text\":\"Medication refill request\"},"
           "\"focus\":{\"reference\":\"MedicationRequest/%s\"},\"for\":{\"reference\":"
           "\"Patient/p1\"},\"authoredOn\":\"2026-04-03T07:00:00Z\",\"requester\":{\"reference\":"
           "\"Patient/p1\"},\"owner\":{\"display\":\"Main St Pharmacy\"},\"note\":[{\"text\":"
           "\"3 days left\"}],\"input\":[{\"type\":{\"text\":\"medication\"},"
           "\"valueCodeableConcept\":{\"text\":\"lisinopril 10 mg\"}}]}",
           fw_rx_id);
  fw_round_trip(task);
  m = fw_map_ok(task);
  ev = fw_only_event(m, CLINLOG__V1__EVENT__BODY_REFILL_REQUESTED);
  cr_assert_str_eq(ev->refill_requested->prescription_id, "rx-1");
  cr_assert_str_eq(ev->refill_requested->pharmacy->display, "Main St Pharmacy");
  cr_assert_str_eq(ev->refill_requested->medication->text, "lisinopril 10 mg");
  clinlog__v1__event__free_unpacked(ev, NULL);
  cl_fhirw_mapped_free(m);
}

#define APPT                                                                                       \
  "{\"resourceType\":\"Appointment\",\"participant\":[{\"actor\":{\"reference\":"                  \
  "\"Patient/p1\"},\"status\":\"accepted\"}]"
#define TIMES ",\"start\":\"2026-04-01T09:00:00Z\",\"end\":\"2026-04-01T09:20:00Z\""
#define MSG "{\"resourceType\":\"Communication\",\"status\":\"completed\"," P1
#define TASK                                                                                       \
  "{\"resourceType\":\"Task\",\"status\":\"requested\",\"intent\":\"order\","                      \
  "\"code\":{\"coding\":[{\"system\":\"http://hl7.org/fhir/CodeSystem/task-code\","                \
  "\"code\":\"fulfill\"}]},\"for\":{\"reference\":\"Patient/p1\"}"

static const fw_bad BAD_PORTAL[] = {
    {APPT TIMES "}", 400, "Appointment.status", "required"},
    {APPT ",\"status\":\"booked\"}", 400, "Appointment.start", "required"},
    {APPT ",\"status\":\"booked\",\"start\":\"2026-04-01T09:00:00Z\"}", 400, "Appointment.end",
     "required"},
    {APPT ",\"status\":\"proposed\"" TIMES "}", 422, "Appointment.status", "code-invalid"},
    {APPT ",\"status\":\"booked\",\"slot\":[]" TIMES "}", 400, "Appointment.slot", "not-supported"},
    {"{\"resourceType\":\"Appointment\",\"status\":\"booked\"" TIMES "}", 400,
     "Appointment.participant", "required"},
    {"{\"resourceType\":\"Appointment\",\"status\":\"booked\",\"participant\":[{\"actor\":{"
     "\"reference\":\"Patient/p1\"}}]" TIMES "}",
     400, "Appointment.participant[0].status", "required"},
    {"{\"resourceType\":\"Appointment\",\"status\":\"booked\",\"participant\":[{\"actor\":{"
     "\"reference\":\"Patient/nobody\"},\"status\":\"accepted\"}]" TIMES "}",
     422, "Appointment.participant[0].actor.reference", "not-found"},
    {"{\"resourceType\":\"Appointment\",\"status\":\"booked\",\"participant\":[{\"actor\":{"
     "\"reference\":\"Patient/p1\"},\"status\":\"accepted\",\"type\":[{\"coding\":[{\"system\":"
     "\"http://terminology.hl7.org/CodeSystem/v3-ParticipationType\",\"code\":\"PPRF\"}]}]}]" TIMES
     "}",
     422, "Appointment.participant[0].type[0].coding[0].code", "code-invalid"},
    {APPT ",\"status\":\"booked\",\"cancelationReason\":{\"text\":\"x\"}" TIMES "}", 422,
     "Appointment.cancelationReason", "invalid"},
    {APPT ",\"status\":\"booked\",\"extension\":[{\"url\":\"" EXT "cancelled-by\","
          "\"valueReference\":{\"display\":\"x\"}}]" TIMES "}",
     422, "Appointment.extension[0].url", "not-supported"},
    {APPT ",\"status\":\"booked\",\"extension\":[{\"url\":\"" EXT "booking-channel\","
          "\"valueCoding\":{\"system\":\"https://clinlog.dev/fhir/CodeSystem/booking-channel\","
          "\"code\":\"fax\"}}]" TIMES "}",
     422, "Appointment.extension[0].valueCoding.code", "code-invalid"},
    {APPT ",\"status\":\"booked\",\"serviceType\":[{\"text\":\"a\"},{\"text\":\"b\"}]" TIMES "}",
     422, "Appointment.serviceType[1]", "not-supported"},
    {APPT ",\"status\":\"booked\",\"start\":\"2026-04-01\",\"end\":\"2026-04-02\"}", 400,
     "Appointment.start", "value"},
    {"{\"resourceType\":\"Communication\"," P1 "}", 400, "Communication.status", "required"},
    {MSG ",\"status\":\"in-progress\"}", 400, "", "structure"},
    {"{\"resourceType\":\"Communication\",\"status\":\"in-progress\"," P1 "}", 422,
     "Communication.status", "code-invalid"},
    {"{\"resourceType\":\"Communication\",\"status\":\"completed\"}", 400, "Communication.subject",
     "required"},
    {MSG ",\"payload\":[{\"contentAttachment\":{\"contentType\":\"text/html\"}}]}", 400,
     "Communication.payload[0].contentAttachment", "not-supported"},
    {MSG ",\"payload\":[{\"contentReference\":{\"reference\":\"Binary/b\"}},{\"contentString\":"
         "\"late\"}]}",
     422, "Communication.payload[1].contentString", "not-supported"},
    {MSG ",\"payload\":[{}]}", 400, "Communication.payload[0]", "required"},
    {MSG ",\"identifier\":[{\"system\":\"urn:other\",\"value\":\"1\"}]}", 422,
     "Communication.identifier[0]", "not-supported"},
    {MSG ",\"inResponseTo\":[{\"reference\":\"Communication/unknown\"}]}", 422,
     "Communication.inResponseTo[0].reference", "not-found"},
    {MSG ",\"topic\":{\"coding\":[]}}", 400, "Communication.topic.coding", "not-supported"},
    {MSG ",\"sent\":7}", 400, "Communication.sent", "structure"},
    {"{\"resourceType\":\"Task\",\"intent\":\"order\",\"for\":{\"reference\":\"Patient/p1\"}}", 400,
     "Task.status", "required"},
    {"{\"resourceType\":\"Task\",\"status\":\"requested\",\"intent\":\"order\",\"for\":{"
     "\"reference\":\"Patient/p1\"}}",
     400, "Task.code", "required"},
    {"{\"resourceType\":\"Task\",\"status\":\"requested\",\"intent\":\"order\",\"code\":{"
     "\"coding\":[{\"system\":\"http://hl7.org/fhir/CodeSystem/task-code\",\"code\":\"approve\""
     "}]},\"for\":{\"reference\":\"Patient/p1\"}}",
     422, "Task.code.coding[0].code", "code-invalid"},
    {"{\"resourceType\":\"Task\",\"status\":\"completed\",\"intent\":\"order\",\"for\":{"
     "\"reference\":\"Patient/p1\"}}",
     422, "Task.status", "code-invalid"},
    {TASK ",\"focus\":{\"reference\":\"MedicationRequest/unknown\"}}", 422, "Task.focus.reference",
     "not-found"},
    {TASK ",\"focus\":{\"reference\":\"ServiceRequest/s\"}}", 422, "Task.focus", "invalid"},
    {TASK ",\"input\":[{\"type\":{\"text\":\"dose\"},\"valueCodeableConcept\":{\"text\":\"x\"}}]}",
     422, "Task.input[0]", "not-supported"},
    {TASK ",\"input\":[{\"type\":{\"text\":\"medication\"},\"valueString\":\"x\"}]}", 400,
     "Task.input[0].valueString", "not-supported"},
    {TASK ",\"businessStatus\":{\"text\":\"x\"}}", 400, "Task.businessStatus", "not-supported"},
    {"{\"resourceType\":\"Task\",\"status\":\"requested\",\"intent\":\"order\"}", 400, "Task.for",
     "required"},
};

Test(fhirw_types, every_bad_portal_resource_is_refused_naming_the_element) {
  fw_refused_all(BAD_PORTAL, sizeof BAD_PORTAL / sizeof BAD_PORTAL[0]);
}

/* ---- DocumentReference -> ClinicalNoteSigned (fhirw_docs.c) ---- */

#define ATTESTER                                                                                   \
  "{\"url\":\"http://hl7.org/fhir/5.0/StructureDefinition/extension-DocumentReference.attester\"," \
  "\"extension\":[{\"url\":\"mode\",\"valueCodeableConcept\":{\"coding\":[{\"system\":\"http://"   \
  "hl7.org/fhir/composition-attestation-mode\",\"code\":\"professional\",\"display\":"             \
  "\"Professional\"}]}},{\"url\":\"party\",\"valueReference\":{\"reference\":"                     \
  "\"Practitioner/dr2\"}}]}"
#define NOTE_B64 "UGF0aWVudCBkb2luZyB3ZWxsLg==" /* "Patient doing well." */

Test(fhirw_types, document_reference_round_trips) {
  char text[4096];
  fw_opts();
  snprintf(text, sizeof text,
           "{\"resourceType\":\"DocumentReference\",\"extension\":[" ATTESTER "],"
           "\"masterIdentifier\":{\"system\":\"urn:oid:1.2.3\",\"value\":\"DOC-9\"},"
           "\"identifier\":[{\"system\":\"urn:clinlog:id\",\"value\":\"note-1\"}],"
           "\"status\":\"current\",\"docStatus\":\"final\",\"type\":{\"coding\":[{\"system\":"
           "\"" LOINC "\",\"code\":\"11506-3\",\"display\":\"Progress note\"}]}," P1 ","
           "\"date\":\"2026-03-05T16:00:00Z\",\"author\":[{\"reference\":\"Practitioner/dr1\"}],"
           "\"authenticator\":{\"reference\":\"Practitioner/dr1\"},\"description\":\"Progress "
           "note\",\"content\":[{\"attachment\":{\"contentType\":\"text/plain\",\"language\":"
           "\"en-US\",\"data\":\"" NOTE_B64 "\",\"title\":\"Progress note\"}}],\"context\":{"
           "\"encounter\":[{\"reference\":\"Encounter/%s\"}],\"period\":{\"start\":"
           "\"2026-03-05T09:00:00Z\",\"end\":\"2026-03-05T10:00:00Z\"}}}",
           fw_enc_id);
  fw_round_trip(text);
  cl_fhirw_mapped *m = fw_map_ok(text);
  Clinlog__V1__Event *ev = fw_only_event(m, CLINLOG__V1__EVENT__BODY_CLINICAL_NOTE_SIGNED);
  const Clinlog__V1__ClinicalNoteSigned *b = ev->clinical_note_signed;
  cr_assert_str_eq(b->note_id, "note-1");
  cr_assert_str_eq(b->text, "Patient doing well.");
  cr_assert_str_eq(b->title, "Progress note");
  cr_assert_str_eq(b->mime_type, "text/plain");
  cr_assert_null(b->authenticator, "the author authenticates: not repeated");
  cr_assert_eq(b->n_cosigners, 1);
  cr_assert_str_eq(b->cosigners[0]->resource, "Practitioner/dr2");
  cr_assert_str_eq(b->encounter_id, "enc-1");
  cr_assert_eq(b->status, CLINLOG__V1__NOTE_STATUS__NOTE_STATUS_FINAL);
  cr_assert_str_eq(b->document_identifier->value, "DOC-9");
  clinlog__v1__event__free_unpacked(ev, NULL);
  cl_fhirw_mapped_free(m);
  /* another authenticator, markdown, no date: kept as written */
  fw_round_trip("{\"resourceType\":\"DocumentReference\",\"identifier\":[{\"system\":"
                "\"urn:clinlog:id\",\"value\":\"note-2\"}],\"status\":\"current\"," P1 ","
                "\"date\":\"2026-03-06T16:00:00Z\",\"author\":[{\"display\":\"Dr A\"}],"
                "\"authenticator\":{\"display\":\"Dr B\"},\"content\":[{\"attachment\":{"
                "\"contentType\":\"text/markdown\",\"data\":\"" NOTE_B64 "\"}}]}");
}

#define DOC "{\"resourceType\":\"DocumentReference\",\"status\":\"current\"," P1
#define ATT(x) ",\"content\":[{\"attachment\":{" x "}}]"
#define PLAIN "\"contentType\":\"text/plain\",\"data\":\"" NOTE_B64 "\""

static const fw_bad BAD_DOC[] = {
    {"{\"resourceType\":\"DocumentReference\"," P1 ATT(PLAIN) "}", 400, "DocumentReference.status",
     "required"},
    {"{\"resourceType\":\"DocumentReference\",\"status\":\"entered-in-error\"," P1 ATT(PLAIN) "}",
     422, "DocumentReference.status", "code-invalid"},
    {"{\"resourceType\":\"DocumentReference\",\"status\":\"current\"" ATT(PLAIN) "}", 400,
     "DocumentReference.subject", "required"},
    {DOC "}", 400, "DocumentReference.content", "required"},
    {DOC ",\"docStatus\":\"draft\"" ATT(PLAIN) "}", 422, "DocumentReference.docStatus",
     "code-invalid"},
    {DOC ATT("\"contentType\":\"text/plain\"") "}", 400,
     "DocumentReference.content[0].attachment.data", "required"},
    {DOC ATT("\"data\":\"" NOTE_B64 "\"") "}", 400,
     "DocumentReference.content[0].attachment.contentType", "required"},
    {DOC ATT("\"contentType\":\"text/plain\",\"data\":\"%%%\"") "}", 400,
     "DocumentReference.content[0].attachment.data", "value"},
    {DOC ATT("\"contentType\":\"text/plain\",\"data\":\"//4=\"") "}", 422,
     "DocumentReference.content[0].attachment.data", "not-supported"},
    {DOC ATT("\"contentType\":\"text/plain\",\"data\":\"YQBi\"") "}", 422,
     "DocumentReference.content[0].attachment.data", "not-supported"},
    {DOC ATT(PLAIN ",\"url\":\"http://x\"") "}", 400, "DocumentReference.content[0].attachment.url",
     "not-supported"},
    {DOC ",\"content\":[{\"attachment\":{" PLAIN "}},{\"attachment\":{" PLAIN "}}]}", 422,
     "DocumentReference.content[1]", "not-supported"},
    {DOC ",\"description\":\"a\"" ATT(PLAIN ",\"title\":\"b\"") "}", 422,
     "DocumentReference.description", "not-supported"},
    {DOC ",\"author\":[{\"display\":\"a\"},{\"display\":\"b\"}]" ATT(PLAIN) "}", 422,
     "DocumentReference.author", "not-supported"},
    {DOC ",\"context\":{\"encounter\":[{\"reference\":\"Encounter/unknown\"}]}" ATT(PLAIN) "}", 422,
     "DocumentReference.context.encounter[0].reference", "not-found"},
    {DOC ",\"context\":{\"facilityType\":{\"text\":\"x\"}}" ATT(PLAIN) "}", 400,
     "DocumentReference.context.facilityType", "not-supported"},
    {DOC ",\"context\":{\"period\":{\"start\":\"2026\"}}" ATT(PLAIN) "}", 400,
     "DocumentReference.context.period.start", "value"},
    {DOC ",\"extension\":[{\"url\":\"http://x\"}]" ATT(PLAIN) "}", 422,
     "DocumentReference.extension[0].url", "not-supported"},
    {DOC ",\"extension\":[{\"url\":\"http://hl7.org/fhir/5.0/StructureDefinition/extension-"
         "DocumentReference.attester\",\"extension\":[{\"url\":\"party\",\"valueReference\":{"
         "\"display\":\"x\"}}]}]" ATT(PLAIN) "}",
     400, "DocumentReference.extension[0]", "required"},
    {DOC ",\"identifier\":[{\"system\":\"urn:x\",\"value\":\"1\"}]" ATT(PLAIN) "}", 422,
     "DocumentReference.identifier[0]", "not-supported"},
    {DOC ",\"relatesTo\":[]" ATT(PLAIN) "}", 400, "DocumentReference.relatesTo", "not-supported"},
    {DR ",\"category\":[{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/v2-0074\","
        "\"code\":\"RAD\"}]}]}",
     422, "DiagnosticReport.category", "not-supported"},
};

Test(fhirw_types, every_bad_document_is_refused_naming_the_element) {
  fw_refused_all(BAD_DOC, sizeof BAD_DOC / sizeof BAD_DOC[0]);
}

/* ---- Device -> DeviceRegistered (fhirw_device.c) ---- */

#define MDC_SYS "urn:iso:std:iso:11073:10101"
#define DEVICE                                                                                     \
  "{\"resourceType\":\"Device\",\"extension\":[{\"url\":\"" EXT "device-assigned-at\","            \
  "\"valueDateTime\":\"2026-02-01T00:00:00Z\"}],\"identifier\":[{\"system\":\"urn:clinlog:id\","   \
  "\"value\":\"bp-cuff-7\"},{\"system\":\"urn:clinlog:principal\",\"value\":\"gw-1\"}],"           \
  "\"udiCarrier\":[{\"deviceIdentifier\":\"00643169007222\",\"issuer\":\"http://hl7.org/fhir/"     \
  "NamingSystem/gs1-di\",\"carrierHRF\":\"(01)00643169007222(17)270101(10)A1\"}],"                 \
  "\"status\":\"active\",\"manufacturer\":\"Acme\",\"lotNumber\":\"L1\",\"serialNumber\":"         \
  "\"SN9\",\"modelNumber\":\"BP-700\",\"type\":{\"coding\":[{\"system\":\"" MDC_SYS "\","          \
  "\"code\":\"528391\",\"display\":\"MDC_DEV_SYS_PM_BP\"}]},\"version\":[{\"type\":{\"coding\":"   \
  "[{\"system\":\"" MDC_SYS "\",\"code\":\"531976\",\"display\":\"MDC_ID_PROD_SPEC_FW\"}]},"       \
  "\"value\":\"2.1.0\"}],\"patient\":{\"reference\":\"Patient/p1\"}"

Test(fhirw_types, device_round_trips_with_a_log_wide_id) {
  fw_round_trip(DEVICE "}");
  cl_fhirw_mapped *m = fw_map_ok(DEVICE "}");
  char want[CL_FHIR_ID_MAX];
  cl_fhir_id("Device", NULL, "bp-cuff-7", want);
  cr_assert_str_eq(m->id, want, "a device's id is the same from any stream");
  cr_assert_str_eq(m->stream, "patient-p1");
  Clinlog__V1__Event *ev = fw_only_event(m, CLINLOG__V1__EVENT__BODY_DEVICE_REGISTERED);
  const Clinlog__V1__DeviceRegistered *b = ev->device_registered;
  cr_assert_str_eq(b->device_id, "bp-cuff-7");
  cr_assert_str_eq(b->patient_id, "p1");
  cr_assert_str_eq(b->principal_id, "gw-1");
  cr_assert_str_eq(b->udi_carrier, "(01)00643169007222(17)270101(10)A1");
  cr_assert_str_eq(b->firmware_version, "2.1.0");
  cr_assert_str_eq(b->model, "BP-700");
  cr_assert_eq(b->assigned_at->seconds, ev->occurred_at->seconds);
  clinlog__v1__event__free_unpacked(ev, NULL);
  cl_fhirw_mapped_free(m);
  /* a minimal one */
  fw_round_trip("{\"resourceType\":\"Device\",\"identifier\":[{\"system\":\"urn:clinlog:id\","
                "\"value\":\"d-2\"}],\"status\":\"active\",\"patient\":{\"reference\":"
                "\"Patient/p1\"},\"udiCarrier\":[{\"deviceIdentifier\":\"0123\"}]}");
}

#define DEV                                                                                        \
  "{\"resourceType\":\"Device\",\"status\":\"active\",\"patient\":{\"reference\":\"Patient/p1\"}"

static const fw_bad BAD_DEVICE[] = {
    {"{\"resourceType\":\"Device\",\"status\":\"active\"}", 400, "Device.patient", "required"},
    {"{\"resourceType\":\"Device\",\"patient\":{\"reference\":\"Patient/p1\"}}", 400,
     "Device.status", "required"},
    {"{\"resourceType\":\"Device\",\"status\":\"inactive\",\"patient\":{\"reference\":"
     "\"Patient/p1\"}}",
     422, "Device.status", "code-invalid"},
    {"{\"resourceType\":\"Device\",\"status\":\"active\",\"patient\":{\"reference\":"
     "\"Patient/nobody\"}}",
     422, "Device.patient.reference", "not-found"},
    {DEV ",\"udiCarrier\":[{\"carrierAIDC\":\"AAA=\"}]}", 400, "Device.udiCarrier[0].carrierAIDC",
     "not-supported"},
    {DEV ",\"udiCarrier\":[{\"carrierHRF\":\"0100643\",\"issuer\":\"x\"}]}", 422,
     "Device.udiCarrier[0].carrierHRF", "not-supported"},
    {DEV ",\"udiCarrier\":[{\"carrierHRF\":\"+H123\",\"issuer\":\"http://hl7.org/fhir/"
         "NamingSystem/gs1-di\"}]}",
     422, "Device.udiCarrier[0].issuer", "not-supported"},
    {DEV ",\"udiCarrier\":[{\"carrierHRF\":\"+H123\"}]}", 400, "Device.udiCarrier[0].issuer",
     "required"},
    {DEV ",\"udiCarrier\":[{}]}", 400, "Device.udiCarrier[0]", "required"},
    {DEV ",\"udiCarrier\":[{\"deviceIdentifier\":\"1\"},{\"deviceIdentifier\":\"2\"}]}", 422,
     "Device.udiCarrier[1]", "not-supported"},
    {DEV ",\"version\":[{\"value\":\"1\"}]}", 400, "Device.version[0].type", "required"},
    {DEV ",\"version\":[{\"type\":{\"coding\":[{\"system\":\"" MDC_SYS "\",\"code\":\"1\"}]},"
         "\"value\":\"1\"}]}",
     422, "Device.version[0].type.coding[0].code", "code-invalid"},
    {DEV ",\"identifier\":[{\"system\":\"urn:x\",\"value\":\"1\"}]}", 422, "Device.identifier[0]",
     "not-supported"},
    {DEV ",\"extension\":[{\"url\":\"" EXT "device-assigned-at\",\"valueDateTime\":\"2026\"}]}",
     400, "Device.extension[0].valueDateTime", "value"},
    {DEV ",\"extension\":[{\"url\":\"" EXT "other\",\"valueString\":\"x\"}]}", 400,
     "Device.extension[0].valueString", "not-supported"},
    {DEV ",\"owner\":{\"display\":\"x\"}}", 400, "Device.owner", "not-supported"},
    {DEV ",\"serialNumber\":7}", 400, "Device.serialNumber", "structure"},
};

Test(fhirw_types, every_bad_device_is_refused_naming_the_element) {
  fw_refused_all(BAD_DEVICE, sizeof BAD_DEVICE / sizeof BAD_DEVICE[0]);
}

/* ---- MedicationRequest stopped -> MedicationDiscontinued (fhirw_stop.c) ---- */

#define RX_BODY                                                                                    \
  "\"intent\":\"order\",\"medicationCodeableConcept\":{\"coding\":[{\"system\":\"http://"          \
  "www.nlm.nih.gov/research/umls/rxnorm\",\"code\":\"197361\"}]}," P1 ",\"authoredOn\":"           \
  "\"2026-01-05T10:00:00Z\",\"substitution\":{\"allowedBoolean\":true}"
#define STOP_NOTE                                                                                  \
  "{\"authorReference\":{\"reference\":\"Practitioner/dr1\"},\"time\":\"2026-02-01T09:00:00Z\","   \
  "\"text\":\"Discontinued: rash\"}"

Test(fhirw_types, a_stopped_prescription_round_trips_as_two_events) {
  const char *text =
      "{\"resourceType\":\"MedicationRequest\",\"identifier\":[{\"system\":\"urn:clinlog:id\","
      "\"value\":\"rx-9\"}],\"status\":\"stopped\",\"statusReason\":{\"text\":\"rash\"}," RX_BODY
      ",\"note\":[{\"text\":\"call if no stock\"}," STOP_NOTE "]}";
  fw_round_trip(text);
  cl_fhirw_mapped *m = fw_map_ok(text);
  cr_assert_eq(m->n, 2);
  cr_assert_eq(m->ev[0].type, CLINLOG__V1__EVENT__BODY_MEDICATION_PRESCRIBED);
  cr_assert_eq(m->ev[1].type, CLINLOG__V1__EVENT__BODY_MEDICATION_DISCONTINUED);
  Clinlog__V1__Event *ev;
  cl_err err;
  cr_assert_eq(cl_event_decode(m->ev[1].bytes, m->ev[1].len, &ev, &err), 0, "%s", err.msg);
  const Clinlog__V1__MedicationDiscontinued *d = ev->medication_discontinued;
  cr_assert_str_eq(d->prescription_id, "rx-9");
  cr_assert_str_eq(d->reason->text, "rash");
  cr_assert_str_eq(d->discontinued_by->resource, "Practitioner/dr1");
  cr_assert_eq(d->effective->seconds, ev->occurred_at->seconds, "occurred_at is the stop");
  clinlog__v1__event__free_unpacked(ev, NULL);
  cr_assert_eq(cl_event_decode(m->ev[0].bytes, m->ev[0].len, &ev, &err), 0, "%s", err.msg);
  cr_assert_str_eq(ev->medication_prescribed->note_to_pharmacist, "call if no stock");
  clinlog__v1__event__free_unpacked(ev, NULL);
  cl_fhirw_mapped_free(m);
  /* no reason, no other note: the note is the stop alone */
  fw_round_trip("{\"resourceType\":\"MedicationRequest\",\"identifier\":[{\"system\":"
                "\"urn:clinlog:id\",\"value\":\"rx-10\"}],\"status\":\"stopped\"," RX_BODY
                ",\"note\":[{\"time\":\"2026-02-01T09:00:00Z\",\"text\":\"Discontinued\"}]}");
}

#define STOPPED "{\"resourceType\":\"MedicationRequest\",\"status\":\"stopped\"," RX_BODY

static const fw_bad BAD_STOP[] = {
    {STOPPED "}", 400, "MedicationRequest.note", "required"},
    {STOPPED ",\"note\":[{\"text\":\"Discontinued\"}]}", 422, "MedicationRequest.note[0]",
     "not-supported"},
    {STOPPED ",\"note\":[{\"time\":\"2026-02-01T09:00:00Z\",\"text\":\"stopped it\"}]}", 422,
     "MedicationRequest.note[0]", "not-supported"},
    {STOPPED ",\"statusReason\":{\"text\":\"rash\"},\"note\":[{\"time\":\"2026-02-01T09:00:00Z\","
             "\"text\":\"Discontinued\"}]}",
     422, "MedicationRequest.note[0]", "not-supported"},
    {STOPPED ",\"note\":[{\"time\":\"2026-02-01\",\"text\":\"Discontinued\"}]}", 400,
     "MedicationRequest.note[0].time", "value"},
    {STOPPED ",\"note\":[{\"authorString\":\"x\",\"time\":\"2026-02-01T09:00:00Z\",\"text\":"
             "\"Discontinued\"}]}",
     400, "MedicationRequest.note[0].authorString", "not-supported"},
    {STOPPED
     ",\"statusReason\":{\"text\":\"rash\"},\"note\":[{\"text\":\"a\"},{\"text\":\"b\"}," STOP_NOTE
     "]}",
     422, "MedicationRequest.note[1]", "not-supported"},
    {STOPPED ",\"statusReason\":[],\"note\":[" STOP_NOTE "]}", 400,
     "MedicationRequest.statusReason", "structure"},
    {"{\"resourceType\":\"MedicationRequest\",\"status\":\"cancelled\"," P1 ",\"note\":["
     "{\"time\":\"2026-02-01T09:00:00Z\",\"text\":\"Discontinued\"}]}",
     400, "MedicationRequest.intent", "required"},
};

Test(fhirw_types, every_bad_stop_is_refused_naming_the_element) {
  fw_refused_all(BAD_STOP, sizeof BAD_STOP / sizeof BAD_STOP[0]);
}

/* ---- a transaction's report lines given as entries (cl_fhirw_bundle_lines) ---- */

Test(fhirw_types, bundle_lines_move_into_their_report) {
  json_t *es =
      fw_parse("{\"e\":[{\"fullUrl\":\"urn:uuid:a\",\"resource\":" OBS_C "}},"
               "{\"resource\":{\"resourceType\":\"DiagnosticReport\",\"result\":[{\"reference\":"
               "\"urn:uuid:a\"},{\"reference\":\"urn:uuid:p\"},{\"reference\":\"urn:uuid:b\"}]}},"
               "{\"fullUrl\":\"urn:uuid:p\",\"resource\":{\"resourceType\":\"Patient\"}},"
               "{\"fullUrl\":\"urn:uuid:b\",\"resource\":" OBS_C ",\"valueString\":\"b\"}},"
               "{\"resource\":{\"resourceType\":\"DiagnosticReport\",\"result\":[{\"reference\":"
               "\"urn:uuid:b\"}]}}]}");
  json_t *e = json_object_get(es, "e");
  long of[5], at[5];
  cr_assert_eq(cl_fhirw_bundle_lines(e, of, at), 0);
  long want_of[5] = {1, -1, -1, 1, -1}, want_at[5] = {0, -1, -1, 2, -1};
  for (int i = 0; i < 5; i++) {
    cr_assert_eq(of[i], want_of[i], "entry %d", i);
    cr_assert_eq(at[i], want_at[i], "entry %d", i);
  }
  json_t *rep = json_object_get(json_array_get(e, 1), "resource");
  json_t *res = json_object_get(rep, "result"), *cs = json_object_get(rep, "contained");
  cr_assert_str_eq(json_string_value(json_object_get(json_array_get(res, 0), "reference")),
                   "#bundle-line-0");
  cr_assert_str_eq(json_string_value(json_object_get(json_array_get(res, 1), "reference")),
                   "urn:uuid:p", "not an Observation: left for the mapping to refuse");
  cr_assert_str_eq(json_string_value(json_object_get(json_array_get(res, 2), "reference")),
                   "#bundle-line-2");
  cr_assert_eq(json_array_size(cs), 2);
  cr_assert_str_eq(json_string_value(json_object_get(json_array_get(cs, 1), "id")),
                   "bundle-line-2");
  cr_assert_str_eq(json_string_value(json_object_get(json_array_get(cs, 1), "valueString")), "b");
  /* the second report's reference to a line the first took stays as it was */
  json_t *rep2 = json_object_get(json_array_get(e, 4), "resource");
  cr_assert_str_eq(json_string_value(json_object_get(
                       json_array_get(json_object_get(rep2, "result"), 0), "reference")),
                   "urn:uuid:b");
  /* the entries themselves are not changed */
  cr_assert_null(json_object_get(json_object_get(json_array_get(e, 0), "resource"), "contained"));
  json_decref(es);
}

/* adapters/fhir/fhirw_coverage.c: a Coverage maps to the EligibilityChecked
 * without a check id its view derives from, reads back the same through the
 * views' mapper, and every bad input is refused with its FHIRPath element
 * path. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "clinlog/v1/event.pb-c.h"
#include "fhirw_fixture.h"

#define P1 "{\"reference\":\"Patient/p1\"}"
#define BID "urn:clinlog:id"
#define CLASS(code, display, v)                                                                    \
  "{\"type\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/coverage-class\","   \
  "\"code\":\"" code "\",\"display\":\"" display "\"}]},\"value\":\"" v "\"}"
#define MB(v, payer)                                                                               \
  "{\"type\":{\"coding\":[{\"system\":\"" FJ_V2_0203 "\",\"code\":\"MB\",\"display\":\"Member "    \
  "Number\"}]},\"value\":\"" v "\",\"assigner\":{\"display\":\"" payer "\"}}"
#define COVERAGE(status)                                                                           \
  "{\"resourceType\":\"Coverage\",\"identifier\":[{\"system\":\"" BID "\",\"value\":"              \
  "\"PAYER1|M123\"}," MB(                                                                          \
      "M123", "Acme Health") "],\"status\":\"" status "\",\"subscriberId\":"                       \
                             "\"M123\",\"beneficiary\":" P1                                        \
                             ",\"relationship\":{\"coding\":[{\"system\":\"http://"                \
                             "terminology.hl7.org/CodeSystem/"                                     \
                             "subscriber-relationship\",\"code\":\"self\"}]},\"period\":{"         \
                             "\"start\":\"2026-01-01T00:00:00Z\",\"end\":\"2026-12-31T00:00:"      \
                             "00Z\"},\"payor\":[{"                                                 \
                             "\"identifier\":{\"value\":\"PAYER1\"},\"display\":\"Acme "           \
                             "Health\"}],\"class\":[" CLASS("group", "Group", "G-77") "," CLASS(   \
                                 "plan", "Plan", "Gold PPO") "]}"

static void unworld(void) {
  json_decref(fw_world);
  fw_world = NULL;
}

TestSuite(fhirw_coverage, .timeout = 60, .fini = unworld);

Test(fhirw_coverage, coverage_round_trips) {
  fw_round_trip(COVERAGE("active"));
  fw_round_trip(COVERAGE("cancelled"));
  fw_round_trip(COVERAGE("draft")); /* none held yet: the draft is made */
  cl_fhirw_mapped *m = fw_map_ok(COVERAGE("active"));
  cr_assert_str_eq(m->bid, "PAYER1|M123");
  char id[CL_FHIR_ID_MAX];
  cl_fhir_id("Coverage", "p1", "PAYER1|M123", id);
  cr_assert_str_eq(m->id, id);
  Clinlog__V1__Event *ev = fw_only_event(m, CLINLOG__V1__EVENT__BODY_ELIGIBILITY_CHECKED);
  const Clinlog__V1__EligibilityChecked *b = ev->eligibility_checked;
  cr_assert_str_eq(b->check_id, "");
  cr_assert(b->eligible);
  cr_assert_null(b->reject_reason);
  cr_assert_str_eq(b->member_id, "M123");
  cr_assert_str_eq(b->payer->value, "PAYER1");
  cr_assert_str_eq(b->payer_name, "Acme Health");
  cr_assert_str_eq(b->group_number, "G-77");
  cr_assert_str_eq(b->plan, "Gold PPO");
  cr_assert_str_eq(b->subscriber_relationship->code, "self");
  cr_assert_eq(b->coverage_period->start->seconds, 1767225600);
  clinlog__v1__event__free_unpacked(ev, NULL);
  /* only the Coverage: no eligibility request nor response */
  json_t *views = fw_views_of(m);
  cr_assert_eq(json_object_size(views), 1);
  json_decref(views);
  cl_fhirw_mapped_free(m);
  /* a member of a payer known by name only; a payer's membership without a member id */
  fw_round_trip("{\"resourceType\":\"Coverage\",\"identifier\":[{\"system\":\"" BID "\","
                "\"value\":\"|M9\"},{\"type\":{\"coding\":[{\"system\":\"" FJ_V2_0203 "\","
                "\"code\":\"MB\",\"display\":\"Member Number\"}]},\"value\":\"M9\"}],\"status\":"
                "\"active\",\"subscriberId\":\"M9\",\"beneficiary\":" P1 ",\"payor\":[{"
                "\"display\":\"unknown\"}]}");
  fw_round_trip("{\"resourceType\":\"Coverage\",\"identifier\":[{\"system\":\"" BID "\","
                "\"value\":\"PAYER2|\"}],\"status\":\"active\",\"beneficiary\":" P1 ",\"payor\":"
                "[{\"identifier\":{\"system\":\"urn:oid:2.16.840.1.113883.3.221.5\",\"value\":"
                "\"PAYER2\"}}]}");
}

Test(fhirw_coverage, a_draft_over_a_coverage_held_is_refused) {
  /* the views keep a confirmed Coverage over an unconfirmed one */
  fw_world = json_object();
  cl_fhirw_mapped *m = fw_map_ok(COVERAGE("active"));
  json_object_set_new(fw_world, m->id, fw_view_of(m));
  cl_fhirw_mapped_free(m);
  static const fw_bad cases[] = {{COVERAGE("draft"), 422, "Coverage.status", "value"}};
  fw_refused_all(cases, 1);
  fw_round_trip(COVERAGE("cancelled")); /* an answer replaces it */
}

#define CV "{\"resourceType\":\"Coverage\",\"beneficiary\":" P1 ","
#define CV_OK CV "\"status\":\"active\",\"subscriberId\":\"M1\","

static const fw_bad BAD_COVERAGE[] = {
    {CV "\"subscriberId\":\"M1\"}", 400, "Coverage.status", "required"},
    {CV "\"status\":\"balanced\"}", 422, "Coverage.status", "code-invalid"},
    {"{\"resourceType\":\"Coverage\",\"status\":\"active\"}", 400, "Coverage.beneficiary",
     "required"},
    {"{\"resourceType\":\"Coverage\",\"beneficiary\":{\"reference\":\"Patient/nobody\"}}", 422,
     "Coverage.beneficiary.reference", "not-found"},
    {CV "\"status\":\"active\",\"payor\":[{\"display\":\"Acme\"}]}", 400, "Coverage.subscriberId",
     "required"},
    {CV_OK "\"payor\":[]}", 400, "Coverage.payor", "value"},
    {CV_OK "\"dependent\":\"01\"}", 400, "Coverage.dependent", "not-supported"},
    {CV_OK "\"payor\":[{\"display\":\"a\"},{\"display\":\"b\"}]}", 422, "Coverage.payor[1]",
     "not-supported"},
    {CV_OK "\"payor\":[{\"reference\":\"Organization/o1\"}]}", 400, "Coverage.payor[0].reference",
     "not-supported"},
    {CV_OK "\"payor\":[\"x\"]}", 400, "Coverage.payor[0]", "structure"},
    {CV_OK "\"class\":[{\"type\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/"
           "CodeSystem/coverage-class\",\"code\":\"rxbin\"}]},\"value\":\"1\"}]}",
     422, "Coverage.class[0].type.coding[0].code", "code-invalid"},
    {CV_OK "\"class\":[{\"type\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/"
           "CodeSystem/coverage-class\",\"code\":\"group\"}]}}]}",
     400, "Coverage.class[0].value", "required"},
    {CV_OK "\"class\":[" CLASS("group", "Group", "1") "," CLASS("group", "Group", "2") "]}", 422,
     "Coverage.class[1]", "not-supported"},
    {CV_OK "\"class\":[{\"value\":\"1\",\"name\":\"x\"}]}", 400, "Coverage.class[0].name",
     "not-supported"},
    {CV_OK "\"period\":{\"start\":\"2026-01-01\"}}", 400, "Coverage.period.start", "value"},
    {CV_OK "\"identifier\":[{\"system\":\"" BID "\",\"value\":\"x\"}]}", 422,
     "Coverage.identifier[0].value", "invalid"},
    {CV_OK "\"identifier\":[" MB("M1", "a") "," MB("M1", "a") "]}", 422, "Coverage.identifier[1]",
     "not-supported"},
    /* against the view */
    {CV_OK "\"payor\":[{\"display\":\"unknown\"}]}", 400, "Coverage.identifier", "required"},
    {CV_OK "\"identifier\":[{\"system\":\"" BID
           "\",\"value\":\"|M1\"}," MB("M2", "x") "],"
                                                  "\"payor\":[{\"display\":\"unknown\"}]}",
     422, "Coverage.identifier[1].value", "value"},
    {CV_OK "\"identifier\":[{\"system\":\"" BID "\",\"value\":\"|M1\"}," MB("M1", "x") "]}", 422,
     "Coverage.identifier[1].assigner", "not-supported"},
    {CV_OK "\"identifier\":[{\"system\":\"" BID "\",\"value\":\"|M1\"},{\"type\":{\"coding\":[{"
           "\"system\":\"" FJ_V2_0203 "\",\"code\":\"MB\",\"display\":\"Member Number\"}]},"
           "\"value\":\"M1\"}]}",
     400, "Coverage.payor", "required"},
};

Test(fhirw_coverage, every_bad_coverage_is_refused_naming_the_element) {
  fw_refused_all(BAD_COVERAGE, sizeof BAD_COVERAGE / sizeof BAD_COVERAGE[0]);
}

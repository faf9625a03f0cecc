/* CDS Hooks over the medication checker (query/cds/hooks.h) with the seed
 * knowledge base: an NSAID draft against active warfarin gives a critical
 * card with a delete suggestion, from prefetch and from server-read
 * resources alike; an unrelated draft gives none; allergy cards; NDC-coded
 * drafts; drafts against each other; order-select's selections;
 * patient-view; request validation naming the field; feedback parsing;
 * discovery. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/cds/hooks.h"

#define NOW (1780000000ll * 1000000000ll) /* 2026-05-28 */
#define RXN "http://www.nlm.nih.gov/research/umls/rxnorm"

static cl_kb *kb;

static void setup(void) {
  cl_err err = {0};
  cr_assert_eq(cl_kb_seed(&kb, &err), 0, "%s", err.msg);
}
static void teardown(void) { cl_kb_free(kb); }

TestSuite(cds_hooks, .init = setup, .fini = teardown);

static const char *WARFARIN =
    "{\"resourceType\":\"MedicationRequest\",\"id\":\"rx-warf\",\"status\":\"active\","
    "\"intent\":\"order\",\"subject\":{\"reference\":\"Patient/p1\"},"
    "\"authoredOn\":\"2026-05-01T10:00:00Z\",\"medicationCodeableConcept\":{\"coding\":[{"
    "\"system\":\"" RXN "\",\"code\":\"855318\",\"display\":\"warfarin 3 MG Oral Tablet\"}]}}";

static char *draft_bundle(const char *id, const char *system, const char *code, const char *display,
                          const char *dose) {
  char *s = malloc(2048);
  snprintf(s, 2048,
           "{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[{\"resource\":{"
           "\"resourceType\":\"MedicationRequest\",\"id\":\"%s\",\"status\":\"draft\","
           "\"intent\":\"order\",\"subject\":{\"reference\":\"Patient/p1\"},"
           "\"medicationCodeableConcept\":{\"coding\":[{\"system\":\"%s\",\"code\":\"%s\","
           "\"display\":\"%s\"}]}%s}}]}",
           id, system, code, display, dose ? dose : "");
  return s;
}

/* A request: hook, drafts (a Bundle or NULL), prefetch (an object or NULL). */
static char *request(const char *hook, const char *drafts, const char *prefetch) {
  char *s = malloc(16384);
  snprintf(s, 16384,
           "{\"hook\":\"%s\",\"hookInstance\":\"d1577c69-dfbe-44ad-ba6d-3e05e953b2ea\","
           "\"context\":{\"userId\":\"Practitioner/1\",\"patientId\":\"p1\"%s%s}%s%s}",
           hook, drafts ? ",\"draftOrders\":" : "", drafts ? drafts : "",
           prefetch ? ",\"prefetch\":" : "", prefetch ? prefetch : "");
  return s;
}

static json_t *run(const char *service, const char *req, const char *const *extra, size_t n) {
  cl_err err = {0};
  cl_cds_hooks_req *r = NULL;
  cr_assert_eq(cl_cds_hooks_parse(service, req, strlen(req), &r, &err), 0, "%s", err.msg);
  size_t lens[8];
  for (size_t i = 0; i < n; i++)
    lens[i] = strlen(extra[i]);
  char *out = NULL;
  size_t len = 0, nc = 0;
  cr_assert_eq(cl_cds_hooks_evaluate(kb, r, extra, lens, n, NOW, &out, &len, &nc, &err), 0, "%s",
               err.msg);
  json_error_t je;
  json_t *j = json_loadb(out, len, 0, &je);
  cr_assert_not_null(j, "%s", out);
  cr_assert_eq(json_array_size(json_object_get(j, "cards")), nc);
  free(out);
  cl_cds_hooks_req_free(r);
  return j;
}

static const char *S(json_t *o, const char *path1, const char *path2) {
  json_t *v = json_object_get(o, path1);
  if (path2)
    v = json_object_get(v, path2);
  return json_string_value(v);
}

static void assert_nsaid_card(json_t *cards, const char *draft_id) {
  cr_assert_eq(json_array_size(cards), 1, "%s", json_dumps(cards, 0));
  json_t *c = json_array_get(cards, 0);
  cr_assert_str_eq(S(c, "indicator", NULL), "critical");
  cr_assert_lt(strlen(S(c, "summary", NULL)), 140);
  cr_assert_not_null(strstr(S(c, "summary", NULL), "Interaction"));
  cr_assert_str_eq(S(c, "source", "label"), "clinlog knowledge base 2026-12-05.2-seed");
  cr_assert_str_eq(S(json_object_get(c, "source"), "topic", "code"), "warfarin-nsaids");
  cr_assert_eq(strlen(S(c, "uuid", NULL)), 36);
  cr_assert_str_eq(S(c, "selectionBehavior", NULL), "at-most-one");
  cr_assert_eq(strlen(S(c, "extension", "clinlog-issue-id")), 32);
  cr_assert_geq(json_array_size(json_object_get(c, "overrideReasons")), 1);
  json_t *act = json_array_get(
      json_object_get(json_array_get(json_object_get(c, "suggestions"), 0), "actions"), 0);
  cr_assert_str_eq(S(act, "type", NULL), "delete");
  char ref[128];
  snprintf(ref, sizeof ref, "MedicationRequest/%s", draft_id);
  cr_assert_str_eq(S(act, "resourceId", NULL), ref);
}

Test(cds_hooks, nsaid_draft_against_prefetched_warfarin_is_critical) {
  char *d = draft_bundle("draft-ibu", RXN, "5640", "ibuprofen", NULL);
  char pre[4096];
  snprintf(pre, sizeof pre,
           "{\"medications\":{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"entry\":[{"
           "\"resource\":%s}]},\"allergies\":{\"resourceType\":\"Bundle\",\"type\":"
           "\"searchset\"}}",
           WARFARIN);
  char *req = request("order-sign", d, pre);
  json_t *j = run("clinlog-medication-sign", req, NULL, 0);
  assert_nsaid_card(json_object_get(j, "cards"), "draft-ibu");
  json_decref(j);
  free(req);
  free(d);
}

Test(cds_hooks, same_answer_from_server_read_resources) {
  char *d = draft_bundle("draft-ibu", RXN, "5640", "ibuprofen", NULL);
  char *req = request("order-sign", d, NULL);
  char bundle[4096];
  snprintf(bundle, sizeof bundle,
           "{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"entry\":[{\"resource\":%s}]}",
           WARFARIN);
  const char *extra[] = {bundle};
  json_t *j = run("clinlog-medication-sign", req, extra, 1);
  assert_nsaid_card(json_object_get(j, "cards"), "draft-ibu");
  /* the same request answers the same card uuids */
  json_t *j2 = run("clinlog-medication-sign", req, extra, 1);
  cr_assert_str_eq(S(json_array_get(json_object_get(j, "cards"), 0), "uuid", NULL),
                   S(json_array_get(json_object_get(j2, "cards"), 0), "uuid", NULL));
  json_decref(j2);
  json_decref(j);
  free(req);
  free(d);
}

Test(cds_hooks, prefetch_without_medications_gives_no_card_without_server_data) {
  char *d = draft_bundle("draft-ibu", RXN, "5640", "ibuprofen", NULL);
  char *req = request("order-sign", d, NULL);
  cl_err err = {0};
  cl_cds_hooks_req *r;
  cr_assert_eq(cl_cds_hooks_parse("clinlog-medication-sign", req, strlen(req), &r, &err), 0);
  int m, a;
  cl_cds_hooks_needs(r, &m, &a);
  cr_assert(m && a);
  cl_cds_hooks_req_free(r);
  json_t *j = run("clinlog-medication-sign", req, NULL, 0);
  cr_assert_eq(json_array_size(json_object_get(j, "cards")), 0);
  json_decref(j);
  free(req);
  free(d);
}

Test(cds_hooks, unrelated_draft_gives_no_card) {
  char *d = draft_bundle("draft-amox", RXN, "723", "amoxicillin", NULL);
  char pre[4096];
  snprintf(pre, sizeof pre,
           "{\"medications\":%s,\"allergies\":{\"resourceType\":\"Bundle\",\"type\":"
           "\"searchset\"}}",
           WARFARIN);
  char *req = request("order-sign", d, pre);
  json_t *j = run("clinlog-medication-sign", req, NULL, 0);
  cr_assert_eq(json_array_size(json_object_get(j, "cards")), 0);
  json_decref(j);
  free(req);
  free(d);
}

Test(cds_hooks, allergy_card) {
  char *d = draft_bundle("draft-amox", RXN, "723", "amoxicillin", NULL);
  const char *pre =
      "{\"medications\":{\"resourceType\":\"Bundle\",\"type\":\"searchset\"},\"allergies\":{"
      "\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"entry\":[{\"resource\":{"
      "\"resourceType\":\"AllergyIntolerance\",\"id\":\"al1\",\"patient\":{\"reference\":"
      "\"Patient/p1\"},\"criticality\":\"high\",\"code\":{\"coding\":[{\"system\":"
      "\"urn:clinlog:cds-kb\",\"code\":\"penicillin-allergy\"}]}}},{\"resource\":{"
      "\"resourceType\":\"AllergyIntolerance\",\"id\":\"al2\",\"patient\":{\"reference\":"
      "\"Patient/p1\"},\"clinicalStatus\":{\"coding\":[{\"code\":\"resolved\"}]},\"code\":{"
      "\"coding\":[{\"system\":\"" RXN "\",\"code\":\"723\"}]}}}]}}";
  char *req = request("order-select", d, pre);
  json_t *j = run("clinlog-medication-select", req, NULL, 0);
  json_t *cards = json_object_get(j, "cards");
  cr_assert_eq(json_array_size(cards), 1, "%s", json_dumps(j, 0));
  json_t *c = json_array_get(cards, 0);
  cr_assert_str_eq(S(c, "indicator", NULL), "critical");
  cr_assert_not_null(strstr(S(c, "summary", NULL), "Allergy"));
  cr_assert_not_null(strstr(S(json_object_get(c, "source"), "topic", "code"), "allergy:"));
  json_decref(j);
  free(req);
  free(d);
}

Test(cds_hooks, ndc_coded_warfarin_draft_against_active_ibuprofen) {
  char *d = draft_bundle("draft-warf", "http://hl7.org/fhir/sid/ndc", "0093-1721-10",
                         "warfarin sodium tablets", NULL);
  const char *pre =
      "{\"medications\":{\"resourceType\":\"MedicationRequest\",\"id\":\"rx-ibu\",\"status\":"
      "\"active\",\"subject\":{\"reference\":\"Patient/p1\"},\"medicationCodeableConcept\":{"
      "\"coding\":[{\"system\":\"" RXN "\",\"code\":\"5640\"}]}},\"allergies\":{"
      "\"resourceType\":\"Bundle\",\"type\":\"searchset\"}}";
  char *req = request("order-sign", d, pre);
  json_t *j = run("clinlog-medication-sign", req, NULL, 0);
  assert_nsaid_card(json_object_get(j, "cards"), "draft-warf");
  json_decref(j);
  free(req);
  free(d);
}

Test(cds_hooks, drafts_against_each_other_and_inactive_or_other_patients_ignored) {
  const char *drafts =
      "{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":["
      "{\"resource\":{\"resourceType\":\"MedicationRequest\",\"id\":\"d1\",\"status\":\"draft\","
      "\"medicationCodeableConcept\":{\"coding\":[{\"system\":\"" RXN "\",\"code\":\"11289\"}]}}},"
      "{\"resource\":{\"resourceType\":\"ServiceRequest\",\"id\":\"lab1\"}},"
      "{\"resource\":{\"resourceType\":\"MedicationRequest\",\"id\":\"d2\",\"status\":\"draft\","
      "\"medicationCodeableConcept\":{\"coding\":[{\"system\":\"" RXN "\",\"code\":\"5640\"}]}}}]}";
  /* a stopped NSAID, and an active one of another patient: neither counts */
  const char *pre =
      "{\"medications\":{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"entry\":["
      "{\"resource\":{\"resourceType\":\"MedicationRequest\",\"id\":\"old\",\"status\":"
      "\"stopped\",\"medicationCodeableConcept\":{\"coding\":[{\"system\":\"" RXN
      "\",\"code\":\"7258\"}]}}},{\"resource\":{\"resourceType\":\"MedicationRequest\",\"id\":"
      "\"x\",\"status\":\"active\",\"subject\":{\"reference\":\"Patient/p2\"},"
      "\"medicationCodeableConcept\":{\"coding\":[{\"system\":\"" RXN
      "\",\"code\":\"7258\"}]}}}]},\"allergies\":{\"resourceType\":\"Bundle\",\"type\":"
      "\"searchset\"}}";
  char *req = request("order-sign", drafts, pre);
  json_t *j = run("clinlog-medication-sign", req, NULL, 0);
  /* d2 (ibuprofen) meets the earlier draft d1 (warfarin): one card, removing d2 */
  assert_nsaid_card(json_object_get(j, "cards"), "d2");
  json_decref(j);
  free(req);
  /* order-select with only d1 selected: d2 is context, the card is d1's */
  char sel[8192];
  snprintf(sel, sizeof sel,
           "{\"hook\":\"order-select\",\"hookInstance\":\"i2\",\"context\":{\"patientId\":\"p1\","
           "\"selections\":[\"MedicationRequest/d1\"],\"draftOrders\":%s},\"prefetch\":%s}",
           drafts, pre);
  j = run("clinlog-medication-select", sel, NULL, 0);
  assert_nsaid_card(json_object_get(j, "cards"), "d1");
  json_decref(j);
}

Test(cds_hooks, dose_over_the_limit_is_a_card) {
  char *d = draft_bundle(
      "draft-ibu", RXN, "5640", "ibuprofen",
      ",\"dosageInstruction\":[{\"route\":{\"coding\":[{\"system\":\"http://snomed.info/sct\","
      "\"code\":\"26643006\"}]},\"timing\":{\"repeat\":{\"frequency\":3,\"period\":1,"
      "\"periodUnit\":\"d\"}},\"doseAndRate\":[{\"doseQuantity\":{\"value\":1200,\"unit\":\"mg\","
      "\"system\":\"http://unitsofmeasure.org\",\"code\":\"mg\"}}]}]");
  char *req = request("order-sign", d, "{\"medications\":null}");
  json_t *j = run("clinlog-medication-sign", req, NULL, 0);
  json_t *cards = json_object_get(j, "cards");
  cr_assert_geq(json_array_size(cards), 1, "%s", json_dumps(j, 0));
  int dose = 0;
  size_t i;
  json_t *c;
  json_array_foreach(cards, i, c) dose |=
      !strncmp(S(json_object_get(c, "source"), "topic", "code"), "dose:", 5);
  cr_assert(dose, "%s", json_dumps(j, 0));
  json_decref(j);
  free(req);
  free(d);
}

Test(cds_hooks, patient_view_checks_active_medications) {
  char pre[4096];
  snprintf(pre, sizeof pre,
           "{\"medications\":{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"entry\":[{"
           "\"resource\":%s},{\"resource\":{\"resourceType\":\"MedicationRequest\",\"id\":"
           "\"rx-ibu\",\"status\":\"active\",\"medicationCodeableConcept\":{\"coding\":[{"
           "\"system\":\"" RXN "\",\"code\":\"5640\"}]}}}]},\"allergies\":{\"resourceType\":"
           "\"Bundle\",\"type\":\"searchset\"}}",
           WARFARIN);
  char *req = request("patient-view", NULL, pre);
  json_t *j = run("clinlog-medication-review", req, NULL, 0);
  json_t *cards = json_object_get(j, "cards");
  cr_assert_eq(json_array_size(cards), 1, "%s", json_dumps(j, 0));
  cr_assert_str_eq(S(json_array_get(cards, 0), "indicator", NULL), "critical");
  cr_assert_null(json_object_get(json_array_get(cards, 0), "suggestions"));
  json_decref(j);
  free(req);
}

static void refused(const char *service, const char *body, int code, const char *needle) {
  cl_err err = {0};
  cl_cds_hooks_req *r = NULL;
  cr_assert_eq(cl_cds_hooks_parse(service, body, strlen(body), &r, &err), code, "%s: %s", body,
               err.msg);
  cr_assert_null(r);
  cr_assert_not_null(strstr(err.msg, needle), "%s lacks %s", err.msg, needle);
}

Test(cds_hooks, bad_requests_name_the_field) {
  refused("nope", "{}", CL_ENOTFOUND, "no CDS service");
  refused("clinlog-medication-sign", "{not json", CL_EINVAL, "not JSON");
  refused("clinlog-medication-sign", "[]", CL_EINVAL, "request");
  refused("clinlog-medication-sign", "{\"hook\":\"patient-view\"}", CL_EINVAL, "hook");
  refused("clinlog-medication-sign", "{\"hook\":\"order-sign\",\"context\":{}}", CL_EINVAL,
          "hookInstance");
  refused("clinlog-medication-sign",
          "{\"hook\":\"order-sign\",\"hookInstance\":\"x\",\"context\":{}}", CL_EINVAL,
          "context.patientId");
  refused("clinlog-medication-sign",
          "{\"hook\":\"order-sign\",\"hookInstance\":\"x\",\"context\":{\"patientId\":\"p\"}}",
          CL_EINVAL, "context.draftOrders");
  refused("clinlog-medication-sign",
          "{\"hook\":\"order-sign\",\"hookInstance\":\"x\",\"context\":{\"patientId\":\"p\","
          "\"draftOrders\":{\"resourceType\":\"Bundle\",\"entry\":[{\"resource\":{"
          "\"resourceType\":\"MedicationRequest\"}}]}}}",
          CL_EINVAL, "without an id");
  refused("clinlog-medication-review",
          "{\"hook\":\"patient-view\",\"hookInstance\":\"x\",\"context\":{\"patientId\":\"p\"},"
          "\"prefetch\":[]}",
          CL_EINVAL, "prefetch");
}

Test(cds_hooks, feedback) {
  cl_cds_feedback fb[4];
  size_t n = 0;
  cl_err err = {0};
  const char *ok =
      "{\"feedback\":[{\"card\":\"9368d37b-283f-44a0-93ea-547cebab93ed\",\"outcome\":"
      "\"overridden\",\"overrideReason\":{\"reason\":{\"code\":\"will-monitor\",\"system\":"
      "\"" CL_CDS_HOOKS_OVERRIDE "\",\"display\":\"Will monitor\"},\"userComment\":\"INR "
      "weekly\"},\"outcomeTimestamp\":\"2026-05-28T10:00:00Z\"},{\"card\":\"c2\",\"outcome\":"
      "\"accepted\",\"acceptedSuggestions\":[{\"id\":\"s1\"}],\"outcomeTimestamp\":"
      "\"2026-05-28T10:00:01Z\"}]}";
  cr_assert_eq(cl_cds_hooks_feedback_parse(ok, strlen(ok), fb, 4, &n, &err), 0, "%s", err.msg);
  cr_assert_eq(n, 2);
  cr_assert(fb[0].overridden);
  cr_assert_str_eq(fb[0].reason_code, "will-monitor");
  cr_assert_str_eq(fb[0].comment, "INR weekly");
  cr_assert_not(fb[1].overridden);
  cr_assert_str_eq(fb[1].accepted, "s1");
  const char *bad = "{\"feedback\":[{\"card\":\"c\",\"outcome\":\"ignored\","
                    "\"outcomeTimestamp\":\"2026-05-28T10:00:00Z\"}]}";
  cr_assert_eq(cl_cds_hooks_feedback_parse(bad, strlen(bad), fb, 4, &n, &err), CL_EINVAL);
  cr_assert_not_null(strstr(err.msg, "outcome"));
  const char *nots = "{\"feedback\":[{\"card\":\"c\",\"outcome\":\"accepted\"}]}";
  cr_assert_eq(cl_cds_hooks_feedback_parse(nots, strlen(nots), fb, 4, &n, &err), CL_EINVAL);
  cr_assert_not_null(strstr(err.msg, "outcomeTimestamp"));
}

Test(cds_hooks, discovery) {
  char *d = cl_cds_hooks_discovery();
  json_t *j = json_loads(d, 0, NULL);
  json_t *svcs = json_object_get(j, "services");
  cr_assert_eq(json_array_size(svcs), 3);
  size_t i;
  json_t *s;
  json_array_foreach(svcs, i, s) {
    cr_assert_eq(cl_cds_hooks_service(S(s, "id", NULL)) != 0, 1);
    cr_assert_not_null(S(s, "prefetch", "medications"));
  }
  json_decref(j);
  free(d);
}

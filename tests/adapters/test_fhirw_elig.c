/* adapters/fhir/fhirw_elig.c: a CoverageEligibilityResponse written with
 * its CoverageEligibilityRequest (cl_fhirw_opts.line) is one
 * EligibilityChecked; the pair the views make of a check (answered and
 * rejected), written back, makes the same views; every bad pair is refused
 * by the element's path, nothing mapped; a Request alone is refused, a
 * Response alone is a new version of a check the views hold. The pairing
 * of the two entries of an input is tested with cl_fhirw_pair_lines here,
 * end to end in tests/interop/test_fhir_write_types.py. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clinlog/v1/event.pb-c.h"
#include "fhirw_fixture.h"

#define REQ "CoverageEligibilityRequest"
#define RESP "CoverageEligibilityResponse"
#define X12_ST "https://x12.org/codes/service-type-codes"

static void unworld(void) {
  json_decref(fw_world);
  fw_world = NULL;
}

TestSuite(fhirw_elig, .timeout = 60, .fini = unworld);

/* ---- the check the views make the pair of ---- */

static Clinlog__V1__Code *code(const char *system, const char *c, const char *display) {
  Clinlog__V1__Code *k = calloc(1, sizeof *k);
  clinlog__v1__code__init(k);
  k->system = (char *)system, k->code = (char *)c, k->display = (char *)display;
  return k;
}

static Clinlog__V1__EligibilityBenefit *benefit(const char *info, Clinlog__V1__Code *st,
                                                const char *level, const char *period,
                                                int64_t minor, const char *pct, const char *net,
                                                const char *text) {
  Clinlog__V1__EligibilityBenefit *e = calloc(1, sizeof *e);
  clinlog__v1__eligibility_benefit__init(e);
  e->info_code = (char *)info;
  if (st != NULL) {
    e->service_types = calloc(1, sizeof *e->service_types);
    e->service_types[0] = st;
    e->n_service_types = 1;
  }
  e->coverage_level = (char *)level, e->time_period = (char *)period;
  if (minor > 0) {
    e->amount = calloc(1, sizeof *e->amount);
    clinlog__v1__money__init(e->amount);
    e->amount->minor_units = minor, e->amount->currency = "USD";
  }
  e->percent = (char *)pct, e->in_network = (char *)net, e->text = (char *)text;
  return e;
}

static Google__Protobuf__Timestamp *ts(int64_t s) {
  Google__Protobuf__Timestamp *t = calloc(1, sizeof *t);
  google__protobuf__timestamp__init(t);
  t->seconds = s;
  return t;
}

static void free_check(Clinlog__V1__EligibilityChecked *b) {
  for (size_t i = 0; i < b->n_benefits; i++) {
    Clinlog__V1__EligibilityBenefit *e = b->benefits[i];
    for (size_t k = 0; k < e->n_service_types; k++)
      free(e->service_types[k]);
    free(e->service_types), free(e->amount), free(e);
  }
  for (size_t k = 0; k < b->n_service_types; k++)
    free(b->service_types[k]);
  free(b->benefits), free(b->service_types), free(b->payer), free(b->reject_reason);
  free(b->subscriber_relationship);
  if (b->coverage_period)
    free(b->coverage_period->start), free(b->coverage_period->end);
  free(b->coverage_period);
}

/* A 271 for check chk-1 of p1 at enc-1: answered (eligible, four EB
 * lines), or rejected (AAA 72). */
static void check_of(Clinlog__V1__EligibilityChecked *b, int rejected) {
  clinlog__v1__eligibility_checked__init(b);
  b->check_id = "chk-1";
  b->payer = calloc(1, sizeof *b->payer);
  clinlog__v1__identifier__init(b->payer);
  b->payer->value = "PAYER1";
  b->payer_name = "Acme Health";
  b->member_id = "M123";
  b->plan = "Gold PPO";
  b->group_number = "G-77";
  b->trace_number = "TRN-991";
  b->encounter_id = "enc-1";
  b->service_types = calloc(2, sizeof *b->service_types);
  b->service_types[b->n_service_types++] = code(X12_ST, "30", "Health Benefit Plan Coverage");
  b->service_types[b->n_service_types++] = code(X12_ST, "98", "Professional (Physician) Visit");
  b->subscriber_relationship =
      code("http://terminology.hl7.org/CodeSystem/subscriber-relationship", "self", "Self");
  b->coverage_period = calloc(1, sizeof *b->coverage_period);
  clinlog__v1__period__init(b->coverage_period);
  b->coverage_period->start = ts(1767225600); /* 2026 */
  b->coverage_period->end = ts(1798675200);
  if (rejected) {
    b->reject_reason = code("https://codesystem.x12.org/005010/901", "72",
                            "Invalid/Missing Subscriber/Insured ID");
    return;
  }
  b->eligible = 1;
  b->coverage_details = "Active coverage: Gold PPO";
  b->benefits = calloc(5, sizeof *b->benefits);
  b->benefits[b->n_benefits++] = benefit("1", code(X12_ST, "30", "Health Benefit Plan Coverage"),
                                         "IND", "", 0, "", "", "Gold PPO");
  b->benefits[b->n_benefits++] = benefit("B", code(X12_ST, "98", "Professional (Physician) Visit"),
                                         "IND", "27", 2500, "", "Y", "");
  b->benefits[b->n_benefits++] = benefit("A", NULL, "", "", 0, "0.125", "N", "");
  b->benefits[b->n_benefits++] = benefit("C", NULL, "FAM", "23", 150000, "", "W", "");
  b->benefits[b->n_benefits++] = benefit("I", code(X12_ST, "UC", "Urgent Care"), "", "", 0, "0.2",
                                         "", "not covered out of state");
}

/* The views of the check (answered or rejected) as an export serves them. */
static json_t *views_of_check(int rejected, cl_fhirw_mapped *m) {
  Clinlog__V1__EligibilityChecked b;
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  check_of(&b, rejected);
  Clinlog__V1__RecordedBy by = CLINLOG__V1__RECORDED_BY__INIT;
  by.principal_id = "x12-feed";
  by.role = "integration";
  ev.recorded_by = &by;
  ev.stream = "patient-p1";
  uint8_t id[16] = {rejected ? 2 : 1};
  ev.event_id.data = id, ev.event_id.len = 16;
  ev.occurred_at = ts(1772611200); /* 2026-03-04 */
  ev.body_case = CLINLOG__V1__EVENT__BODY_ELIGIBILITY_CHECKED;
  ev.eligibility_checked = &b;
  memset(m, 0, sizeof *m);
  m->ev = calloc(1, sizeof *m->ev);
  m->n = 1;
  m->ev[0].len = clinlog__v1__event__get_packed_size(&ev);
  m->ev[0].bytes = malloc(m->ev[0].len);
  clinlog__v1__event__pack(&ev, m->ev[0].bytes);
  memcpy(m->ev[0].event_id, id, 16);
  m->ev[0].type = CLINLOG__V1__EVENT__BODY_ELIGIBILITY_CHECKED;
  snprintf(m->patient_id, sizeof m->patient_id, "p1");
  snprintf(m->stream, sizeof m->stream, "patient-p1");
  free(ev.occurred_at);
  free_check(&b);
  json_t *views = fw_views_of(m);
  free(m->ev[0].bytes);
  free(m->ev);
  /* as a client reads them (wire form), parsed back */
  json_t *read = json_object();
  const char *k;
  json_t *v;
  json_object_foreach(views, k, v) {
    size_t n, wn;
    char *stored = fj_dump(v, &n), *wire = stored ? fj_finish(stored, n, &wn) : NULL;
    cr_assert_not_null(wire);
    json_object_set_new(read, k, fw_parse(wire));
    free(stored), free(wire);
  }
  json_decref(views);
  return read;
}

/* The resource of `type` among views (borrowed). */
static json_t *of_type(json_t *views, const char *type) {
  const char *k;
  json_t *v;
  json_object_foreach(views, k, v) {
    if (!strcmp(json_string_value(json_object_get(v, "resourceType")), type))
      return v;
  }
  cr_assert_fail("no %s in the views", type);
  return NULL;
}

/* The Requests the mapper is handed (reference -> resource). */
static json_t *requests;

static int request_of(void *ctx, const char *ref, const json_t **out) {
  (void)ctx;
  *out = json_object_get(requests, ref);
  return *out ? 0 : CL_ENOTFOUND;
}

/* resp mapped with `requests`: 0 with *out, or the refusal in fe. */
static int map_pair(const json_t *resp, cl_fhirw_mapped **out, cl_fhirw_error *fe) {
  cl_fhirw_opts o = fw_opts();
  o.line = request_of;
  cl_err err;
  return cl_fhirw_map(resp, NULL, NULL, "", &o, out, fe, &err);
}

/* The check's views; fw_world holds its Coverage (which a pair restates),
 * `requests` its Request by its reference; *resp the Response. */
static json_t *setup(int rejected, json_t **resp) {
  cl_fhirw_mapped m;
  unworld();
  json_t *views = views_of_check(rejected, &m);
  json_t *cov = of_type(views, "Coverage"), *q = of_type(views, REQ);
  fw_world = json_object();
  json_object_set(fw_world, json_string_value(json_object_get(cov, "id")), cov);
  requests = json_object();
  char ref[160];
  snprintf(ref, sizeof ref, REQ "/%s", json_string_value(json_object_get(q, "id")));
  json_object_set_new(requests, ref, json_deep_copy(q));
  *resp = json_deep_copy(of_type(views, RESP));
  return views;
}

static void teardown(json_t *views, json_t *resp) {
  json_decref(views);
  json_decref(resp);
  json_decref(requests);
  requests = NULL;
}

/* The views of m are those of `views`: the Request and the Response, and
 * the Coverage unless the views keep the one they hold (a rejected check). */
static void same_views(const cl_fhirw_mapped *m, json_t *views) {
  json_t *again = fw_views_of(m);
  cr_assert_geq(json_object_size(again), 2);
  const char *k;
  json_t *v;
  json_object_foreach(again, k, v) {
    json_t *want = json_deep_copy(json_object_get(views, k));
    cr_assert_not_null(want, "%s is not in the views of the check", k);
    json_object_del(want, "meta");
    fw_assert_same(fw_ints(want), fw_ints(json_incref(v)));
  }
  json_decref(again);
}

Test(fhirw_elig, the_pair_the_views_make_written_back_makes_the_same_views) {
  for (int rejected = 0; rejected <= 1; rejected++) {
    json_t *resp, *views = setup(rejected, &resp);
    cl_fhirw_mapped *m;
    cl_fhirw_error fe;
    cr_assert_eq(map_pair(resp, &m, &fe), 0, "%s: %s", fe.expression, fe.text);
    cr_assert_str_eq(m->type, RESP);
    cr_assert_str_eq(m->bid, "chk-1");
    cr_assert_str_eq(m->id, json_string_value(json_object_get(resp, "id")));
    Clinlog__V1__Event *ev = fw_only_event(m, CLINLOG__V1__EVENT__BODY_ELIGIBILITY_CHECKED);
    const Clinlog__V1__EligibilityChecked *b = ev->eligibility_checked;
    cr_assert_str_eq(b->check_id, "chk-1");
    cr_assert_str_eq(b->member_id, "M123");
    cr_assert_str_eq(b->payer->value, "PAYER1");
    cr_assert_str_eq(b->plan, "Gold PPO");
    cr_assert_str_eq(b->group_number, "G-77");
    cr_assert_str_eq(b->trace_number, "TRN-991");
    cr_assert_str_eq(b->encounter_id, "enc-1", "the Request's supportingInfo");
    cr_assert_eq(b->n_service_types, 2, "the Request's items");
    cr_assert_str_eq(b->service_types[1]->code, "98");
    cr_assert_eq(ev->occurred_at->seconds, 1772611200);
    if (rejected) {
      cr_assert_not_null(b->reject_reason);
      cr_assert_str_eq(b->reject_reason->code, "72");
      cr_assert(!b->eligible);
    } else {
      cr_assert_null(b->reject_reason);
      cr_assert(b->eligible);
      cr_assert_eq(b->n_benefits, 5);
      cr_assert_str_eq(b->benefits[0]->info_code, "1", "from the name the views write");
      cr_assert_str_eq(b->benefits[1]->info_code, "B");
      cr_assert_eq(b->benefits[1]->amount->minor_units, 2500);
      cr_assert_str_eq(b->benefits[1]->in_network, "Y");
      cr_assert_str_eq(b->benefits[1]->time_period, "27");
      cr_assert_str_eq(b->benefits[2]->percent, "0.125");
      cr_assert_str_eq(b->benefits[3]->coverage_level, "FAM");
      cr_assert_str_eq(b->benefits[4]->percent, "0.2");
      cr_assert_str_eq(b->benefits[4]->info_code, "I");
    }
    same_views(m, views);
    clinlog__v1__event__free_unpacked(ev, NULL);
    cl_fhirw_mapped_free(m);
    teardown(views, resp);
  }
}

Test(fhirw_elig, the_request_by_fullurl_and_without_its_id) {
  json_t *resp, *views = setup(0, &resp);
  json_t *q = json_deep_copy(json_object_iter_value(json_object_iter(requests)));
  json_object_del(q, "id");
  json_object_clear(requests);
  json_object_set_new(requests, "urn:uuid:9b1c1b4e-0000-4000-8000-000000000001", q);
  json_object_set_new(json_object_get(resp, "request"), "reference",
                      json_string("urn:uuid:9b1c1b4e-0000-4000-8000-000000000001"));
  json_object_del(resp, "id");
  cl_fhirw_mapped *m;
  cl_fhirw_error fe;
  cr_assert_eq(map_pair(resp, &m, &fe), 0, "%s: %s", fe.expression, fe.text);
  same_views(m, views);
  cl_fhirw_mapped_free(m);
  teardown(views, resp);
}

Test(fhirw_elig, a_response_alone_updates_a_check_the_views_hold) {
  json_t *resp, *views = setup(0, &resp);
  /* no Request in the input: the views' (an earlier EligibilityChecked) */
  const char *k;
  json_t *v;
  json_object_foreach(views, k, v) json_object_set(fw_world, k, v);
  json_object_clear(requests);
  json_object_set_new(resp, "disposition", json_string("Active coverage, corrected"));
  cl_fhirw_mapped *m;
  cl_fhirw_error fe;
  cr_assert_eq(map_pair(resp, &m, &fe), 0, "%s: %s", fe.expression, fe.text);
  json_t *again = fw_views_of(m);
  json_t *r2 = json_object_get(again, json_string_value(json_object_get(resp, "id")));
  cr_assert_str_eq(json_string_value(json_object_get(r2, "disposition")),
                   "Active coverage, corrected");
  json_decref(again);
  cl_fhirw_mapped_free(m);
  /* ... which must leave the Request as the views hold it */
  json_object_set_new(resp, "created", json_string("2026-03-05T00:00:00Z"));
  cr_assert_eq(map_pair(resp, &m, &fe), CL_EMALFORMED);
  cr_assert_str_eq(fe.expression, RESP ".request.resolve().created", "%s", fe.text);
  teardown(views, resp);
}

/* ---- refusals ---- */

typedef void (*edit_fn)(json_t *resp, json_t *req);

/* One bad pair: the answered check's Response (or, `req`, its Request)
 * with the member at `at` ("insurance.0.item.1.name": members and array
 * indexes) set to the JSON `value` (NULL: removed), or changed by `edit`;
 * refused at expr. */
typedef struct bad_pair {
  int req;
  const char *at, *value;
  edit_fn edit;
  int status;
  const char *expr, *code;
} bad_pair;

/* Sets (value NULL: removes) the member at `at` under r. */
static void set_at(json_t *r, const char *at, const char *value) {
  char path[160], *save = NULL;
  snprintf(path, sizeof path, "%s", at);
  char *k = strtok_r(path, ".", &save), *next;
  for (; (next = strtok_r(NULL, ".", &save)) != NULL; k = next)
    r = json_is_array(r) ? json_array_get(r, strtoul(k, NULL, 10)) : json_object_get(r, k);
  cr_assert_not_null(r, "%s", at);
  if (value == NULL) {
    json_object_del(r, k);
    return;
  }
  json_t *v = json_loads(value, JSON_DECODE_ANY, NULL);
  cr_assert_not_null(v, "%s", value);
  json_object_set_new(r, k, v);
}

/* The Requests' only entry (borrowed). */
static json_t *the_request(void) { return json_object_iter_value(json_object_iter(requests)); }

static void refused(const bad_pair *c) {
  json_t *resp, *views = setup(0, &resp);
  cl_fhirw_mapped *m = NULL;
  cl_fhirw_error fe;
  if (c->edit != NULL)
    c->edit(resp, the_request());
  else
    set_at(c->req ? the_request() : resp, c->at, c->value);
  cr_assert_eq(map_pair(resp, &m, &fe), CL_EMALFORMED, "%s: mapped", c->expr);
  cr_assert_null(m);
  cr_assert_eq(fe.status, c->status, "%s: %d %s", c->expr, fe.status, fe.text);
  cr_assert_str_eq(fe.expression, c->expr, "%s", fe.text);
  cr_assert_str_eq(fe.code, c->code, "%s: %s", c->expr, fe.text);
  teardown(views, resp);
}

static void request_another_id(json_t *resp, json_t *req) {
  json_object_set_new(req, "id", json_string("someone-else"));
  json_object_set_new(json_object_get(resp, "request"), "reference",
                      json_string(REQ "/someone-else"));
  json_object_set_new(requests, REQ "/someone-else", json_incref(req));
}
/* a[0] of r's member at `at` once more */
static void twice(json_t *r, const char *at) {
  char path[160], *save = NULL;
  snprintf(path, sizeof path, "%s", at);
  for (char *k = strtok_r(path, ".", &save); k != NULL; k = strtok_r(NULL, ".", &save))
    r = json_is_array(r) ? json_array_get(r, strtoul(k, NULL, 10)) : json_object_get(r, k);
  json_array_append_new(r, json_deep_copy(json_array_get(r, 0)));
}
static void two_infos(json_t *resp, json_t *req) {
  (void)resp;
  twice(req, "supportingInfo");
}
static void two_insurances(json_t *resp, json_t *req) {
  (void)req;
  twice(resp, "insurance");
}
static void two_amounts(json_t *resp, json_t *req) {
  (void)req;
  twice(resp, "insurance.0.item.1.benefit");
}

#define NET "{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/benefit-network\","
#define I0 "insurance.0."
#define IR RESP ".insurance[0]."
#define QR RESP ".request.resolve()."

static const bad_pair BAD[] = {
    {0, "request", NULL, NULL, 400, RESP ".request", "required"},
    {0, "request.reference", "\"" REQ "/nothing-here\"", NULL, 422, RESP ".request.reference",
     "not-found"},
    {1, "patient", "{\"reference\":\"Patient/p2\"}", NULL, 422, QR "patient.reference", "value"},
    {0, "identifier.0.value", "\"chk-2\"", NULL, 422, RESP ".request.reference", "value"},
    {1, "created", "\"2026-03-05T00:00:00Z\"", NULL, 422, QR "created", "value"},
    {1, "insurer.display", "\"Other Health\"", NULL, 422, QR "insurer.display", "value"},
    {1, "item.1.category", NULL, NULL, 400, QR "item[1].category", "required"},
    {1, "item.0.productOrService", "{\"text\":\"x\"}", NULL, 400, QR "item[0].productOrService",
     "not-supported"},
    {1, "insurance.0.coverage.reference", "\"Coverage/another\"", NULL, 422,
     QR "insurance[0].coverage.reference", "value"},
    {1, "provider", "{\"display\":\"Dr X\"}", NULL, 422, QR "provider", "not-supported"},
    {1, "supportingInfo.0.information", "{\"reference\":\"Encounter/nope\"}", NULL, 422,
     QR "supportingInfo[0].information.reference", "not-found"},
    {1, NULL, NULL, two_infos, 422, QR "supportingInfo[1]", "not-supported"},
    {1, NULL, NULL, request_another_id, 422, RESP ".request.reference", "value"},
    {1, "identifier.1.value", "\"TRN-000\"", NULL, 422, QR "identifier[1].value", "value"},
    {0, "outcome", NULL, NULL, 400, RESP ".outcome", "required"},
    {0, "outcome", "\"queued\"", NULL, 422, RESP ".outcome", "code-invalid"},
    {0, "outcome", "\"error\"", NULL, 422, IR "inforce", "not-supported"},
    {0, I0 "inforce", NULL, NULL, 400, IR "inforce", "required"},
    {0, "insurer.identifier.value", "\"PAYER9\"", NULL, 422, IR "coverage.reference", "invalid"},
    {0, I0 "coverage.reference", "\"Coverage/none\"", NULL, 422, IR "coverage.reference",
     "not-found"},
    {0, NULL, NULL, two_insurances, 422, RESP ".insurance[1]", "not-supported"},
    {0, I0 "benefitPeriod.start", "\"2026-02-01T00:00:00Z\"", NULL, 422, IR "benefitPeriod",
     "value"},
    {0, I0 "item.0.authorizationRequired", "true", NULL, 400, IR "item[0].authorizationRequired",
     "not-supported"},
    {0, I0 "item.0.unit",
     "{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/benefit-unit\","
     "\"code\":\"individual\"}]}",
     NULL, 422, IR "item[0].unit", "not-supported"},
    {0, I0 "item.1.network", NET "\"code\":\"maybe\"}]}", NULL, 422,
     IR "item[1].network.coding[0].code", "code-invalid"},
    {0, NULL, NULL, two_amounts, 422, IR "item[1].benefit[1].allowedMoney", "not-supported"},
    {0, I0 "item.2.benefit.0.allowedString", "\"a lot\"", NULL, 422,
     IR "item[2].benefit[0].allowedString", "value"},
    {0, I0 "item.1.benefit.0.allowedMoney", NULL, NULL, 400, IR "item[1].benefit[0]", "required"},
    {0, I0 "item.1.name", "\"Co-Insurance\"", NULL, 422,
     IR "item[1].benefit[0].type.coding[0].code", "value"},
    {0, "requestor", "{\"display\":\"Front desk\"}", NULL, 400, RESP ".requestor", "not-supported"},
    {0, "patient", NULL, NULL, 400, RESP ".patient", "required"},
    {0, "error", "[{\"code\":{\"text\":\"Invalid member id\"}}]", NULL, 422, RESP ".error",
     "not-supported"},
};

Test(fhirw_elig, every_bad_pair_is_refused_naming_the_element) {
  for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++)
    refused(&BAD[i]);
}

Test(fhirw_elig, a_request_alone_is_refused) {
  json_t *resp, *views = setup(0, &resp);
  json_t *q = the_request();
  cl_fhirw_mapped *m = NULL;
  cl_fhirw_error fe;
  cr_assert_eq(map_pair(q, &m, &fe), CL_EMALFORMED);
  cr_assert_null(m);
  cr_assert_eq(fe.status, 422);
  cr_assert_str_eq(fe.expression, REQ);
  cr_assert_str_eq(fe.code, "not-supported");
  cr_assert(strstr(fe.text, "with its CoverageEligibilityResponse") != NULL, "%s", fe.text);
  /* and a response whose request is neither in the input nor the views */
  json_object_clear(requests);
  cr_assert_eq(map_pair(resp, &m, &fe), CL_EMALFORMED);
  cr_assert_str_eq(fe.expression, RESP ".request.reference");
  cr_assert(strstr(fe.text, "in one Bundle") != NULL, "%s", fe.text);
  teardown(views, resp);
}

/* ---- pairing the entries of an input (cl_fhirw_pair_lines) ---- */

Test(fhirw_elig, a_response_takes_the_request_it_references_and_only_one) {
  json_t *resp, *views = setup(0, &resp);
  json_t *q = json_object_iter_value(json_object_iter(requests));
  const char *qref = json_object_iter_key(json_object_iter(requests));
  json_t *resp2 = json_deep_copy(resp), *stray = json_deep_copy(q);
  json_object_set_new(stray, "id", json_string("stray"));
  /* a second response on the same request; a request nobody references; a
   * response ahead of its request */
  const json_t *res[] = {resp, stray, q, resp2, NULL};
  const char *urls[] = {NULL, NULL, "urn:uuid:q", NULL, NULL};
  long of[5], at[5], shared[5];
  json_t *lines;
  cr_assert_eq(cl_fhirw_pair_lines(res, urls, 5, of, at, shared, &lines), 0);
  cr_assert_eq(of[2], 0, "the request goes to the first response");
  cr_assert_eq(at[2], 0);
  cr_assert_eq(of[1], -1, "a request no response references is its own (refused)");
  cr_assert_eq(of[0], -1);
  cr_assert_eq(shared[3], 0, "the second response on it is refused");
  cr_assert_eq(shared[0], -1);
  cr_assert(json_object_get(lines, qref) == q);
  cr_assert(json_object_get(lines, "urn:uuid:q") == q);
  cl_fhirw_error fe;
  cl_fhirw_pair_refusal(resp2, shared[3], "Bundle.entry[3].resource", &fe);
  cr_assert_str_eq(fe.expression, "Bundle.entry[3].resource.request");
  cr_assert_eq(fe.status, 422);
  json_decref(lines);
  json_decref(resp2);
  json_decref(stray);
  teardown(views, resp);
}

/* The FHIR query engine (query/fhir/engine.c) over a real projection:
 * read, vread, history, search with FHIR's parameter semantics (tokens,
 * dates with every prefix, partial dates and zones, strings, references,
 * chains), paging by cursor that neither skips nor repeats while writers
 * append, _include/_revinclude, _summary, _elements, lenient and strict
 * handling, $everything and the CapabilityStatement. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/pbjson/pbjson.h"
#include "query/fhir/engine.h"
#include "query/fhir/engine_int.h"
#include "query/runner.h"
#include "tests/query/fhir_fixture.h"
#include "tests/support/testutil.h"

static int64_t in_ms(int64_t ms) { return cl_feed_now_ms() + ms; }

static char *dir;
static cl_signer admin;
static cl_log *log_;
static cl_runner *runner;
static cl_fhir_engine *engine;

static void append_json(const char *stream, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void append_json(const char *stream, const char *fmt, ...) {
  char body[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(body, sizeof body, fmt, ap);
  va_end(ap);
  json_error_t je;
  json_t *t = json_loads(body, 0, &je);
  cr_assert_not_null(t, "%s: %s", body, je.text);
  json_t *j = fx_copy_event(t, stream, NULL);
  json_decref(t);
  if (json_object_get(j, "occurredAt") == NULL)
    json_object_set_new(j, "occurredAt", json_string("2026-11-02T10:00:00Z"));
  json_object_set_new(j, "recordedBy",
                      json_pack("{s:s,s:s}", "principalId", "admin", "role", "nurse"));
  ProtobufCMessage *msg;
  cl_err err = {0};
  cr_assert_eq(cl_pbjson_from_json(&clinlog__v1__event__descriptor, j, &msg, &err), 0, "%s",
               err.msg);
  json_decref(j);
  size_t len;
  uint8_t *buf = cl_test_pack_event((Clinlog__V1__Event *)msg, &len);
  protobuf_c_message_free_unpacked(msg, NULL);
  cl_append_result r;
  cr_assert_eq(cl_test_append(log_, &admin, &buf, &len, 1, 0, NULL, 0, 0, &r, &err), 0, "%s",
               err.msg);
  cl_append_result_free(&r);
  free(buf);
}

static void register_patient(const char *pid, const char *family, const char *given,
                             const char *birth, const char *mrn) {
  char stream[64];
  snprintf(stream, sizeof stream, "patient-%s", pid);
  append_json(stream,
              "{\"patientRegistered\": {\"patientId\": \"%s\", \"names\": [{\"family\": \"%s\", "
              "\"given\": [\"%s\"]}], \"birthDate\": \"%s\", \"gender\": "
              "\"ADMINISTRATIVE_GENDER_FEMALE\", \"identifiers\": [{\"system\": "
              "\"urn:oid:1.2.3\", \"value\": \"%s\", \"type\": \"MR\"}]}}",
              pid, family, given, birth, mrn);
}

/* An encounter of class `cls` from start to end ("" = still open). */
static void encounter(const char *pid, const char *eid, const char *cls, const char *start,
                      const char *end) {
  char stream[64];
  snprintf(stream, sizeof stream, "patient-%s", pid);
  append_json(stream,
              "{\"encounterStarted\": {\"encounterId\": \"%s\", \"encounterClass\": {\"system\": "
              "\"http://terminology.hl7.org/CodeSystem/v3-ActCode\", \"code\": \"%s\", "
              "\"display\": \"%s visit\"}, \"start\": \"%s\", \"reason\": [{\"coding\": "
              "[{\"system\": \"http://hl7.org/fhir/sid/icd-10-cm\", \"code\": \"J18.9\"}], "
              "\"text\": \"Pneumonia\"}]}}",
              eid, cls, cls, start);
  if (end[0])
    append_json(stream, "{\"encounterEnded\": {\"encounterId\": \"%s\", \"end\": \"%s\"}}", eid,
                end);
}

static void catch_up(void) {
  uint64_t size;
  cl_log_head(log_, &size, NULL);
  cl_err err;
  cr_assert_eq(cl_runner_wait(runner, size, in_ms(60000), &err), 0, "%s", err.msg);
}

static void setup(void) {
  log_ = cl_test_log_new("fhire", &dir, &admin, 1000);
  register_patient("1001", "Okafor", "Amara", "1984-07-19", "MRN-1");
  register_patient("2002", "Okamoto", "Ken", "1990-01-05", "MRN-2");
  register_patient("3003", "Smith", "Jo", "1984-12-31", "MRN-3");
  encounter("1001", "e1", "AMB", "2026-11-01T23:30:00Z", "2026-11-02T00:30:00Z");
  encounter("1001", "e2", "IMP", "2026-11-02T10:00:00Z", "2026-11-05T12:00:00Z");
  encounter("1001", "e3", "EMER", "2026-11-10T08:00:00Z", "");
  encounter("2002", "e1", "AMB", "2026-10-15T09:00:00Z", "2026-10-15T09:30:00Z");
  encounter("3003", "e9", "AMB", "2025-03-01T09:00:00Z", "2025-03-01T10:00:00Z");
  cl_runner_options o;
  cl_runner_options_init(&o);
  o.linger_ms = 0;
  cl_err err;
  cr_assert_eq(cl_runner_start(log_, &cl_fhir_projection, &o, &runner, &err), 0, "%s", err.msg);
  catch_up();
  cr_assert_eq(cl_fhir_engine_new(cl_runner_proj(runner), log_, &engine, &err), 0);
}

static void teardown(void) {
  cl_fhir_engine_free(engine);
  cl_runner_stop(runner);
  cl_log_close(log_);
  cl_signer_free(&admin);
  cl_test_rmtree(dir);
  free(dir);
}

TestSuite(fhir_engine, .init = setup, .fini = teardown, .timeout = 120);

/* Runs an interaction with params "a=1&b=2" (no URL encoding); returns
 * the parsed body and the status. */
static json_t *call(int interaction, const char *type, const char *id, uint32_t version,
                    const char *qs, int strict, int *status) {
  cl_fhir_kv kv[32];
  size_t n = 0;
  char buf[2048];
  snprintf(buf, sizeof buf, "%s", qs ? qs : "");
  char *save = NULL;
  for (char *p = strtok_r(buf, "&", &save); p && n < 32; p = strtok_r(NULL, "&", &save)) {
    char *eq = strchr(p, '=');
    cr_assert_not_null(eq);
    *eq = '\0';
    kv[n].name = p;
    kv[n].value = eq + 1;
    n++;
  }
  cl_fhir_req rq = {.interaction = interaction,
                    .type = type,
                    .id = id,
                    .version = version,
                    .params = kv,
                    .nparams = n,
                    .strict = strict,
                    .base = "https://fhir.test/fhir/R4"};
  cl_fhir_resp rs;
  cr_assert_eq(cl_fhir_handle(engine, &rq, &rs), 0);
  *status = rs.status;
  json_error_t je;
  json_t *j = json_loadb(rs.body, rs.len, 0, &je);
  cr_assert_not_null(j, "%.*s: %s", (int)rs.len, rs.body, je.text);
  cl_fhir_resp_clear(&rs);
  return j;
}

/* Does the JSON text of j contain `needle`? */
static int mentions(json_t *j, const char *needle) {
  char *s = json_dumps(j, 0);
  int hit = s != NULL && strstr(s, needle) != NULL;
  free(s);
  return hit;
}

static json_t *search(const char *type, const char *qs) {
  int st;
  json_t *b = call(CL_FHIR_SEARCH, type, NULL, 0, qs, 0, &st);
  cr_assert_eq(st, 200, "%s?%s: %d %s", type, qs, st, json_dumps(b, 0));
  cr_assert_str_eq(json_string_value(json_object_get(b, "type")), "searchset");
  return b;
}

/* The ids of the match entries of a Bundle, sorted, comma-separated. */
static char *match_ids(json_t *b, const char *field) {
  json_t *e = json_object_get(b, "entry");
  char *ids[256];
  size_t n = 0;
  for (size_t i = 0; i < json_array_size(e) && n < 256; i++) {
    json_t *en = json_array_get(e, i);
    const char *mode = json_string_value(json_object_get(json_object_get(en, "search"), "mode"));
    if (mode && strcmp(mode, "match") != 0)
      continue;
    json_t *r = json_object_get(en, "resource");
    json_t *v = json_object_get(r, field);
    if (json_is_object(v)) /* class.code */
      v = json_object_get(v, "code");
    ids[n++] = strdup(json_string_value(v) ? json_string_value(v) : "?");
  }
  for (size_t i = 0; i < n; i++)
    for (size_t k = i + 1; k < n; k++)
      if (strcmp(ids[k], ids[i]) < 0) {
        char *t = ids[i];
        ids[i] = ids[k];
        ids[k] = t;
      }
  char *out = calloc(1, 4096);
  for (size_t i = 0; i < n; i++) {
    if (i)
      strcat(out, ",");
    strncat(out, ids[i], 4000 - strlen(out));
    free(ids[i]);
  }
  return out;
}

static void expect(const char *type, const char *qs, const char *field, const char *want) {
  json_t *b = search(type, qs);
  char *got = match_ids(b, field);
  cr_expect_str_eq(got, want, "%s?%s: got [%s], want [%s]", type, qs, got, want);
  free(got);
  json_decref(b);
}

Test(fhir_engine, read_vread_and_errors) {
  int st;
  json_t *p = call(CL_FHIR_READ, "Patient", "1001", 0, NULL, 0, &st);
  cr_assert_eq(st, 200);
  cr_assert_str_eq(json_string_value(json_object_get(p, "id")), "1001");
  json_decref(p);
  json_t *oo = call(CL_FHIR_READ, "Patient", "nobody", 0, NULL, 0, &st);
  cr_assert_eq(st, 404);
  cr_assert_str_eq(json_string_value(json_object_get(oo, "resourceType")), "OperationOutcome");
  json_decref(oo);
  oo = call(CL_FHIR_READ, "Basic", "x", 0, NULL, 0, &st);
  cr_assert_eq(st, 404, "a type not served");
  json_decref(oo);
  oo = call(CL_FHIR_VREAD, "Patient", "1001", 2, NULL, 0, &st);
  cr_assert_eq(st, 404, "no version 2");
  json_decref(oo);
  json_t *h = call(CL_FHIR_HISTORY_INSTANCE, "Patient", "1001", 0, NULL, 0, &st);
  cr_assert_eq(st, 200);
  cr_assert_str_eq(json_string_value(json_object_get(h, "type")), "history");
  cr_assert_eq(json_integer_value(json_object_get(h, "total")), 1);
  json_decref(h);
}

Test(fhir_engine, tokens) {
  expect("Encounter", "class=AMB", "class", "AMB,AMB,AMB");
  expect("Encounter", "class=http://terminology.hl7.org/CodeSystem/v3-ActCode|IMP", "class", "IMP");
  expect("Encounter", "class=http://other|IMP", "class", "");
  expect("Encounter", "class=|IMP", "class", ""); /* |code: no system; ours has one */
  expect("Encounter", "class:not=AMB", "class", "EMER,IMP");
  expect("Encounter", "class=IMP,EMER", "class", "EMER,IMP"); /* OR */
  expect("Encounter", "reason-code=http://hl7.org/fhir/sid/icd-10-cm|", "class",
         "AMB,AMB,AMB,EMER,IMP");
  expect("Encounter", "reason-code:text=pneu", "class", "AMB,AMB,AMB,EMER,IMP");
  expect("Encounter", "status=in-progress", "class", "EMER");
  expect("Encounter", "status=finished&class=AMB&patient=1001", "class", "AMB"); /* AND */
  expect("Patient", "identifier=urn:oid:1.2.3|MRN-2", "id", "2002");
  expect("Patient", "gender=female", "id", "1001,2002,3003");
  expect("Patient", "_id=1001,3003", "id", "1001,3003");
}

/* fe_crit_may_match on bytes: 0 only when a token's code (or, for
 * "system|", its system) is in no byte of the resource. */
Test(fhir_engine, a_code_in_no_byte_rules_a_resource_out) {
  const char *raw = "{\"resourceType\":\"Observation\",\"id\":\"o1\",\"status\":\"final\","
                    "\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"8867-4\"}]},"
                    "\"valueBoolean\":true,\"note\":[{\"text\":\"a \\\"b\\\" \\\\c\"}]}";
  size_t n = strlen(raw);
  crit c = {.d = fe_find_param("Observation", "code", 4)};
  cr_assert_not_null(c.d);
  static const struct {
    const char *value;
    int may;
  } cases[] = {
      {"http://loinc.org|8867-4", 1},
      {"8867-4", 1},
      {"|8867-4", 1},
      {"http://loinc.org|8480-6", 0},
      {"8480-6", 0},
      {"8480-6,8867-4", 1}, /* OR */
      {"8480-6,29463-7", 0},
      {"http://loinc.org|", 1},
      {"http://snomed.info/sct|", 0},
      {"|", 1},
      {"true", 1},
      {"a \"b\"", 1}, /* escaped in the bytes: no telling */
      {"c\\d", 1},
      {"8867-\\,4", 0}, /* "8867-,4" (an escaped comma) */
  };
  char v[64];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    snprintf(v, sizeof v, "%s", cases[i].value);
    c.value = v;
    cr_assert_eq(fe_crit_may_match(raw, n, &c), cases[i].may, "code=%s", cases[i].value);
  }
  snprintf(v, sizeof v, "8480-6");
  snprintf(c.mod, sizeof c.mod, "not"); /* negated: no telling from bytes */
  cr_assert_eq(fe_crit_may_match(raw, n, &c), 1);
  snprintf(c.mod, sizeof c.mod, "text");
  cr_assert_eq(fe_crit_may_match(raw, n, &c), 1);
  c.mod[0] = '\0';
  cr_assert_eq(fe_crit_may_match(NULL, 0, &c), 1);
  crit d = {.d = fe_find_param("Observation", "date", 4), .value = v};
  cr_assert_eq(fe_crit_may_match(raw, n, &d), 1, "not a token");
}

/* What fe_crit_may_match rules out, fe_crit_match never matches: every
 * stored resource of the fixture against token criteria naming codes
 * they have and codes they lack. */
typedef struct ruled {
  const char *type;
  size_t seen, out;
} ruled;

static int check_ruled(void *ctx, cl_fhir_resource *r, cl_err *err) {
  (void)err;
  ruled *rl = ctx;
  static const char *const params[][2] = {{"Encounter", "class"}, {"Encounter", "status"},
                                          {"Patient", "gender"},  {"Patient", "identifier"},
                                          {"Encounter", "_id"},   {"Patient", "_id"}};
  static const char *const values[] = {
      "AMB",    "IMP,EMER", "http://terminology.hl7.org/CodeSystem/v3-ActCode|",
      "female", "male",     "urn:oid:1.2.3|MRN-2",
      "MRN-9",  "finished", "in-progress,cancelled",
      "1001",   "nope",     "http://other|AMB"};
  json_t *res = json_loadb(r->json, r->len, 0, NULL);
  cr_assert_not_null(res);
  for (size_t p = 0; p < sizeof params / sizeof params[0]; p++) {
    if (strcmp(params[p][0], rl->type) != 0)
      continue;
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
      char v[128];
      snprintf(v, sizeof v, "%s", values[i]);
      crit c = {.d = fe_find_param(rl->type, params[p][1], strlen(params[p][1])), .value = v};
      cr_assert_not_null(c.d);
      int may = fe_crit_may_match(r->json, r->len, &c);
      snprintf(v, sizeof v, "%s", values[i]); /* fe_crit_match splits its own copy */
      int match = fe_crit_match(res, &c, 0, NULL, NULL, err);
      cr_assert(may || !match, "%s?%s=%s: ruled out, but it matches", rl->type, params[p][1],
                values[i]);
      rl->seen++;
      rl->out += !may;
    }
  }
  json_decref(res);
  cl_fhir_resource_clear(r);
  return 0;
}

Test(fhir_engine, what_the_bytes_rule_out_never_matches) {
  ruled rl = {0};
  uint8_t next[32];
  cl_err err;
  static const char *const types[] = {"Encounter", "Patient"};
  for (size_t t = 0; t < 2; t++) {
    rl.type = types[t];
    cr_assert_eq(cl_fhir_scan_type(cl_runner_proj(runner), cl_fhir_type_of(types[t]), NULL,
                                   CL_FHIR_STORED, check_ruled, &rl, next, &err),
                 0, "%s", err.msg);
  }
  cr_assert_gt(rl.seen, 100);
  cr_assert_gt(rl.out, 20, "some ruled out (%zu of %zu)", rl.out, rl.seen);
  cr_assert_lt(rl.out, rl.seen, "not all");
}

Test(fhir_engine, dates_prefixes_partial_and_zones) {
  /* e1: 2026-11-01T23:30Z .. 2026-11-02T00:30Z; e2: 11-02T10:00 .. 11-05T12:00;
   * e3: 11-10T08:00 .. open; 2002: 10-15 09:00..09:30; 3003: 2025-03-01 */
  expect("Encounter", "date=2026-10-15", "class", "AMB");               /* eq: within the day */
  expect("Encounter", "date=2026-11-02&patient=1001", "class", "");     /* none lies within it */
  expect("Encounter", "date=2026-11&patient=1001", "class", "AMB,IMP"); /* partial: the month */
  expect("Encounter", "date=2026", "class", "AMB,AMB,IMP");
  /* ge/gt: the range above the value overlaps the target (or, for ge, the
   * value contains it): e2 ends on the 5th, so it is neither */
  expect("Encounter", "date=ge2026-11-05", "class", "EMER");
  expect("Encounter", "date=gt2026-11-05", "class", "EMER");
  expect("Encounter", "date=ge2026-11-05T11:00:00Z", "class", "EMER,IMP");
  expect("Encounter", "date=lt2026-10-16", "class", "AMB,AMB");
  expect("Encounter", "date=le2026-10-15", "class", "AMB,AMB");
  expect("Encounter", "date=sa2026-11-06", "class", "EMER");
  expect("Encounter", "date=eb2026-01-01", "class", "AMB");
  expect("Encounter", "date=ne2026-11", "class", "AMB,AMB,EMER"); /* e3 open-ended: not within */
  /* zones: the day 2026-11-02 in +01:00 starts at 11-01T23:00Z, so e1 falls in it */
  expect("Encounter", "date=ge2026-11-02T00:00:00+01:00&date=le2026-11-02T01:30:00+01:00", "class",
         "AMB");
  expect("Encounter", "date=ge2026-11-01T23:00:00Z&date=le2026-11-02T00:30:00Z", "class", "AMB");
  expect("Encounter", "date=ap2025-03-01", "class", "AMB");
  expect("Patient", "birthdate=1984", "id", "1001,3003");
  expect("Patient", "birthdate=1984-07", "id", "1001");
  expect("Patient", "birthdate=lt1985-01-01&birthdate=gt1984-07-19", "id", "3003");
  int st;
  json_t *oo = call(CL_FHIR_SEARCH, "Encounter", NULL, 0, "date=2026-13", 0, &st);
  cr_assert_eq(st, 400, "a month 13 is an error, not an empty result");
  cr_assert(mentions(oo, "date"), "the error names the parameter");
  json_decref(oo);
  int64_t lo, hi;
  cr_assert_eq(cl_fhir_date_range("2026-11-02T10:15:30.25-05:00", &lo, &hi), 0);
  cr_assert_eq(hi - lo, 1, "ms precision");
  int64_t zlo, zhi;
  cr_assert_eq(cl_fhir_date_range("2026-11-02T15:15:30.250Z", &zlo, &zhi), 0);
  cr_assert_eq(lo, zlo, "the zone is applied");
  cr_assert_neq(cl_fhir_date_range("2026-02-30", &lo, &hi), 0);
  cr_assert_neq(cl_fhir_date_range("2026-11-02+01:00", &lo, &hi), 0, "a zone needs a time");
  cr_assert_eq(cl_fhir_date_range("2024-02", &lo, &hi), 0);
  cr_assert_eq(hi - lo, 29LL * 86400000, "a leap February");
}

Test(fhir_engine, strings_references_and_chains) {
  expect("Patient", "name=oka", "id", "1001,2002"); /* starts-with, any case */
  expect("Patient", "family:exact=Okafor", "id", "1001");
  expect("Patient", "family:exact=okafor", "id", "");
  expect("Patient", "name:contains=AMO", "id", "2002");
  expect("Patient", "given=jo", "id", "3003");
  expect("Encounter", "patient=1001", "class", "AMB,EMER,IMP");
  expect("Encounter", "subject=Patient/2002", "class", "AMB");
  expect("Encounter", "subject:Patient=2002", "class", "AMB");
  expect("Encounter", "patient=https://elsewhere.example/fhir/Patient/3003", "class", "AMB");
  expect("Encounter", "subject:Patient.identifier=urn:oid:1.2.3|MRN-2", "class", "AMB");
  expect("Encounter", "subject:Patient.family=okafor", "class", "AMB,EMER,IMP");
  expect("Encounter", "subject:missing=false&patient=2002", "class", "AMB");
}

Test(fhir_engine, paging_is_stable_while_writers_append) {
  for (int i = 0; i < 12; i++) {
    char eid[16], start[32];
    snprintf(eid, sizeof eid, "p%02d", i);
    snprintf(start, sizeof start, "2026-09-%02dT08:00:00Z", i + 1);
    encounter("2002", eid, "AMB", start, "");
  }
  catch_up();
  json_t *seen = json_object();
  char qs[2048] = "patient=2002&_count=5&_sort=date";
  int pages = 0, appended = 0;
  size_t total0 = 0;
  for (;;) {
    json_t *b = search("Encounter", qs);
    if (pages == 0)
      total0 = (size_t)json_integer_value(json_object_get(b, "total"));
    json_t *e = json_object_get(b, "entry");
    for (size_t i = 0; i < json_array_size(e); i++) {
      const char *id = json_string_value(
          json_object_get(json_object_get(json_array_get(e, i), "resource"), "id"));
      cr_assert_null(json_object_get(seen, id), "%s repeated on page %d", id, pages);
      json_object_set_new(seen, id, json_true());
    }
    pages++;
    if (!appended) { /* writers append between pages: later starts and earlier ones */
      encounter("2002", "late", "AMB", "2026-12-01T08:00:00Z", "");
      encounter("2002", "early", "AMB", "2026-01-01T08:00:00Z", "");
      catch_up();
      appended = 1;
    }
    const char *next = NULL;
    json_t *links = json_object_get(b, "link");
    for (size_t i = 0; i < json_array_size(links); i++)
      if (!strcmp(json_string_value(json_object_get(json_array_get(links, i), "relation")), "next"))
        next = json_string_value(json_object_get(json_array_get(links, i), "url"));
    if (next == NULL) {
      json_decref(b);
      break;
    }
    const char *cur = strstr(next, "_cursor=");
    cr_assert_not_null(cur);
    char decoded[512];
    size_t o = 0;
    for (const char *p = cur + 8; *p && o + 1 < sizeof decoded; p++) {
      if (*p == '%' && p[1] && p[2]) {
        char hx[3] = {p[1], p[2], 0};
        decoded[o++] = (char)strtol(hx, NULL, 16);
        p += 2;
      } else {
        decoded[o++] = *p;
      }
    }
    decoded[o] = '\0';
    snprintf(qs, sizeof qs, "patient=2002&_count=5&_sort=date&_cursor=%s", decoded);
    json_decref(b);
    cr_assert_lt(pages, 10);
  }
  cr_assert_eq(total0, 13);
  /* every resource there at the first page was seen once; the late one
   * sorts after the cursor and is seen too; the early one sorts before it */
  cr_assert_eq(json_object_size(seen), 14, "%zu seen", json_object_size(seen));
  json_decref(seen);
}

Test(fhir_engine, includes_summary_elements_and_handling) {
  json_t *b =
      search("Encounter", "patient=2002&_include=Encounter:patient&_revinclude=Provenance:target");
  json_t *e = json_object_get(b, "entry");
  int patients = 0, provs = 0, matches = 0;
  for (size_t i = 0; i < json_array_size(e); i++) {
    json_t *en = json_array_get(e, i);
    const char *rt =
        json_string_value(json_object_get(json_object_get(en, "resource"), "resourceType"));
    const char *mode = json_string_value(json_object_get(json_object_get(en, "search"), "mode"));
    if (!strcmp(rt, "Patient")) {
      patients++;
      cr_assert_str_eq(mode, "include");
    } else if (!strcmp(rt, "Provenance")) {
      provs++;
      cr_assert_str_eq(mode, "include");
    } else {
      matches++;
    }
  }
  cr_assert_eq(matches, 1);
  cr_assert_eq(patients, 1, "the patient once");
  cr_assert_eq(provs, 2, "the start and the end");
  json_decref(b);

  b = search("Encounter", "_summary=count");
  cr_assert_eq(json_integer_value(json_object_get(b, "total")), 5);
  cr_assert_null(json_object_get(b, "entry"));
  json_decref(b);

  b = search("Patient", "_id=1001&_elements=birthDate");
  json_t *r = json_object_get(json_array_get(json_object_get(b, "entry"), 0), "resource");
  cr_assert_not_null(json_object_get(r, "birthDate"));
  cr_assert_null(json_object_get(r, "name"));
  cr_assert_str_eq(
      json_string_value(json_object_get(
          json_array_get(json_object_get(json_object_get(r, "meta"), "tag"), 0), "code")),
      "SUBSETTED");
  json_decref(b);

  /* lenient (the default): an unknown parameter is ignored and reported */
  b = search("Patient", "_id=1001&shoe-size=42");
  char *ids = match_ids(b, "id");
  cr_assert_str_eq(ids, "1001");
  free(ids);
  cr_assert(mentions(b, "shoe-size"), "the Bundle's OperationOutcome names it");
  json_decref(b);
  int st;
  json_t *oo = call(CL_FHIR_SEARCH, "Patient", NULL, 0, "_id=1001&shoe-size=42", 1, &st);
  cr_assert_eq(st, 400, "strict: refused");
  cr_assert(mentions(oo, "shoe-size"));
  json_decref(oo);
  oo = call(CL_FHIR_SEARCH, "Patient", NULL, 0, "family:below=x", 0, &st);
  cr_assert_eq(st, 400, "an unsupported modifier");
  json_decref(oo);
}

Test(fhir_engine, everything_and_capabilities) {
  int st;
  json_t *b = call(CL_FHIR_EVERYTHING, "Patient", "1001", 0, NULL, 0, &st);
  cr_assert_eq(st, 200);
  /* Patient, 3 Encounters, Provenances of 6 events */
  cr_assert_eq(json_integer_value(json_object_get(b, "total")), 1 + 3 + 6);
  json_decref(b);
  b = call(CL_FHIR_EVERYTHING, "Patient", "1001", 0, "_type=Encounter", 0, &st);
  cr_assert_eq(json_integer_value(json_object_get(b, "total")), 3);
  json_decref(b);
  b = call(CL_FHIR_EVERYTHING, "Patient", "1001", 0, "_since=2999-01-01T00:00:00Z", 0, &st);
  cr_assert_eq(json_integer_value(json_object_get(b, "total")), 0);
  json_decref(b);
  b = call(CL_FHIR_EVERYTHING, "Patient", "nobody", 0, NULL, 0, &st);
  cr_assert_eq(st, 404);
  json_decref(b);
  json_t *cs = call(CL_FHIR_CAPABILITIES, NULL, NULL, 0, NULL, 0, &st);
  cr_assert_eq(st, 200);
  cr_assert_str_eq(json_string_value(json_object_get(cs, "fhirVersion")), "4.0.1");
  json_t *res = json_object_get(json_array_get(json_object_get(cs, "rest"), 0), "resource");
  cr_assert_geq(json_array_size(res), 25);
  json_decref(cs);
}

/* libFuzzer target for what a FHIR client sends (adapters/http/route.c and
 * query/fhir/engine.c): the path under /fhir/R4, the query string or form
 * body, and every search parameter, modifier, prefix, date and chain the
 * engine parses, run against a real fhir projection.
 *
 * Set up once per process, in a temporary directory: a log with two
 * patients, encounters, observations (codes, quantities, dates) and a
 * condition, folded by the fhir projection's runner; an engine over it.
 *
 * Input: byte 0 holds flags (bits 0-1: the verb, GET POST DELETE; bit 2: Prefer handling=strict);
 * then the path up to the first '\n', then the query string (or form body).
 * Findings (abort, after one line on stderr): a response that is not JSON,
 * a status other than 200, 400 and 404, a 200 read whose resourceType is
 * not the type asked for, a date range that is empty or reversed. */
#include <jansson.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "adapters/http/route.h"
#include "adapters/pbjson/pbjson.h"
#include "common/fuzzutil.h"
#include "query/audit/search.h"
#include "query/fhir/engine.h"
#include "query/fhir/export.h"
#include "query/fhir/fhir.h"
#include "query/runner.h"
#include "store/log.h"
#include "store/keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define finding(...) fuzz_finding("fuzz_fhir_request", __VA_ARGS__)

static char g_root[4096];
static cl_signer g_admin;
static cl_log *g_log;
static cl_runner *g_runner;
static cl_fhir_engine *g_engine;
static cl_fhir_exports *g_exports;

static const char *const EVENTS[] = {
    "{\"stream\":\"patient-1001\",\"patientRegistered\":{\"patientId\":\"1001\",\"names\":[{"
    "\"family\":\"Okafor\",\"given\":[\"Amara\"]}],\"birthDate\":\"1984-07-19\",\"gender\":"
    "\"ADMINISTRATIVE_GENDER_FEMALE\",\"identifiers\":[{\"system\":\"urn:oid:1.2\",\"value\":"
    "\"MRN-1\"}]}}",
    "{\"stream\":\"patient-2002\",\"patientRegistered\":{\"patientId\":\"2002\",\"names\":[{"
    "\"family\":\"Smith\"}],\"birthDate\":\"1990\"}}",
    "{\"stream\":\"patient-1001\",\"encounterStarted\":{\"encounterId\":\"e1\",\"encounterClass\":"
    "{\"code\":\"AMB\"},\"start\":\"2026-11-01T23:30:00Z\"}}",
    "{\"stream\":\"patient-1001\",\"encounterEnded\":{\"encounterId\":\"e1\",\"end\":"
    "\"2026-11-02T00:30:00Z\"}}",
    "{\"stream\":\"patient-1001\",\"observationRecorded\":{\"observationId\":\"o1\",\"code\":{"
    "\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"8867-4\"}],\"text\":\"Pulse\"},"
    "\"quantity\":{\"value\":\"112.0\",\"unit\":\"/min\"},\"effective\":\"2026-11-02T10:14:30Z\","
    "\"encounterId\":\"e1\",\"status\":\"OBSERVATION_STATUS_FINAL\"}}",
    "{\"stream\":\"patient-2002\",\"observationRecorded\":{\"observationId\":\"o2\",\"code\":{"
    "\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"2823-3\"}]},\"quantity\":{\"value\":"
    "\"5.9\",\"unit\":\"mmol/"
    "L\",\"comparator\":\">\"},\"effective\":\"2025-02-28T23:59:59.5+01:00\"}}",
    "{\"stream\":\"patient-2002\",\"conditionDiagnosed\":{\"conditionId\":\"c1\",\"code\":{"
    "\"coding\":[{\"system\":\"http://hl7.org/fhir/sid/icd-10-cm\",\"code\":\"E11.9\"}]},"
    "\"clinicalStatus\":\"CONDITION_CLINICAL_STATUS_ACTIVE\",\"onset\":\"2019-05-01T00:00:00Z\"}}",
};

static void fail_setup(const char *what, const cl_err *err) {
  fprintf(stderr, "fuzz_fhir_request: setup: %s: %s\n", what, err ? err->msg : "");
  abort();
}

static void teardown(void) {
  cl_fhir_exports_close(g_exports);
  cl_fhir_engine_free(g_engine);
  cl_runner_stop(g_runner);
  cl_log_close(g_log);
  fuzz_rmtree(g_root);
}

static void setup(void) {
  if (g_engine)
    return;
  cl_err err;
  const char *base = getenv("TMPDIR");
  snprintf(g_root, sizeof g_root, "%s/cl-fuzzfhir-XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(g_root) || cl_crypto_init(&err) || cl_signer_generate(&g_admin, &err))
    abort();
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/log", g_root);
  cl_log_options o;
  cl_log_options_init(&o);
  o.dir = dir;
  o.sync = 0;
  cl_log_genesis g = {.admin_principal = "admin", .admin = &g_admin, .organization = "Fuzz"};
  if (cl_log_create(&o, &g, &err) != 0 || cl_log_open(&o, &g_log, &err) != 0)
    fail_setup("log", &err);
  for (size_t i = 0; i < sizeof EVENTS / sizeof EVENTS[0]; i++) {
    json_t *j = json_loads(EVENTS[i], 0, NULL);
    uint8_t id[16];
    memset(id, 0x42, sizeof id);
    id[0] = (uint8_t)i;
    char b64[32];
    sodium_bin2base64(b64, sizeof b64, id, 16, sodium_base64_VARIANT_ORIGINAL);
    json_object_set_new(j, "eventId", json_string(b64));
    json_object_set_new(j, "occurredAt", json_string("2026-11-02T10:00:00Z"));
    json_object_set_new(j, "recordedBy", json_pack("{s:s}", "principalId", "admin"));
    ProtobufCMessage *msg;
    if (cl_pbjson_from_json(&clinlog__v1__event__descriptor, j, &msg, &err) != 0)
      fail_setup("event", &err);
    json_decref(j);
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(len);
    protobuf_c_message_pack(msg, buf);
    protobuf_c_message_free_unpacked(msg, NULL);
    fuzz_batch fb;
    fuzz_sign_batch(&g_admin, &buf, &len, 1, 0, &fb);
    cl_append_result r;
    if (cl_log_append(g_log, &fb.b, &r, &err) != 0)
      fail_setup("append", &err);
    cl_append_result_free(&r);
    free(buf);
  }
  cl_runner_options ro;
  cl_runner_options_init(&ro);
  ro.linger_ms = 0;
  uint64_t head;
  cl_log_head(g_log, &head, NULL);
  if (cl_runner_start(g_log, &cl_fhir_projection, &ro, &g_runner, &err) != 0 ||
      cl_runner_wait(g_runner, head, cl_feed_now_ms() + 60000, &err) != 0 ||
      cl_fhir_engine_new(cl_runner_proj(g_runner), g_log, &g_engine, &err) != 0)
    fail_setup("projection", &err);
  snprintf(dir, sizeof dir, "%s/exports", g_root);
  if (cl_fhir_exports_open(dir, g_runner, g_log, NULL, &g_exports, &err) != 0)
    fail_setup("exports", &err);
  atexit(teardown);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  setup();
  if (size < 1 || size > 4096)
    return 0;
  int verb = (data[0] & 3) % 3, strict = (data[0] >> 2) & 1;
  char *text = malloc(size);
  memcpy(text, data + 1, size - 1);
  text[size - 1] = '\0';
  /* a date range is never empty or reversed */
  int64_t lo, hi;
  if (cl_fhir_date_range(text, &lo, &hi) == 0 && hi <= lo)
    finding("date %s: range [%lld, %lld)", text, (long long)lo, (long long)hi);
  char *nl = strchr(text, '\n');
  char *query = nl ? nl + 1 : (char *)"";
  if (nl)
    *nl = '\0';
  cl_http_route rt;
  if (cl_http_route_of(text, verb, &rt) == 0 && rt.op == CL_HTTP_AUDIT) {
    /* the audit trail: a UUID that reads back as itself, parameters
     * taken or refused with a reason (query/audit/search.h) */
    uint8_t id[16];
    char back[37];
    if (rt.interaction == CL_FHIR_READ && cl_http_uuid(rt.id, id) == 0) {
      cl_uuid_text(id, back);
      if (strcasecmp(back, rt.id) != 0)
        finding("uuid %s reads back as %s", rt.id, back);
    }
    cl_http_params p = {.n = 0};
    cl_http_form_add(&p, query);
    cl_audit_params ap;
    cl_err err;
    cl_err_clear(&err);
    int rc = cl_audit_params_of(p.kv, p.n, &ap, &err);
    if (rc != 0 && (rc != CL_EINVAL || !err.msg[0]))
      finding("AuditEvent?%s: error %d without a reason", query, rc);
    if (rc == 0 && ap.f.since_ns && ap.f.until_ns && ap.f.since_ns >= ap.f.until_ns)
      finding("AuditEvent?%s: an empty window taken", query);
  } else if (cl_http_route_of(text, verb, &rt) == 0 && rt.op != CL_HTTP_ENGINE) {
    /* a Bulk Data route: a job id of 32 hex digits, a file number from 1 */
    if ((rt.op != CL_HTTP_EXPORT_KICKOFF && strspn(rt.job, "0123456789abcdef") != 32) ||
        (rt.op == CL_HTTP_EXPORT_FILE && rt.version == 0))
      finding("export route %s: job \"%s\" file %u", text, rt.job, rt.version);
    if (rt.op == CL_HTTP_EXPORT_KICKOFF) { /* its parameters: a job, or an error saying why */
      cl_http_params p = {.n = 0};
      cl_http_form_add(&p, query);
      cl_fhir_export_req rq = {
          .level = rt.level, .group = rt.id, .params = p.kv, .nparams = p.n, .strict = strict};
      char id[33];
      cl_err err;
      cl_err_clear(&err);
      int rc = cl_fhir_export_start(g_exports, &rq, id, &err);
      if (rc == 0 && cl_fhir_export_cancel(g_exports, id, &err) != 0)
        finding("export %s: started but cannot be cancelled: %s", text, err.msg);
      if (rc != 0 && (err.msg[0] == '\0' || (rc != CL_EINVAL && rc != CL_ENOTFOUND)))
        finding("export %s: error %d without a reason: \"%s\"", text, rc, err.msg);
    }
  } else if (cl_http_route_of(text, verb, &rt) == 0) {
    cl_http_params p = {.n = 0};
    cl_http_form_add(&p, query);
    cl_fhir_req rq = {.interaction = rt.interaction,
                      .type = rt.type,
                      .id = rt.id,
                      .version = rt.version,
                      .params = p.kv,
                      .nparams = p.n,
                      .strict = strict,
                      .base = "https://fuzz/fhir/R4",
                      .now_ms = 1795000000000};
    cl_fhir_resp rs;
    if (cl_fhir_handle(g_engine, &rq, &rs) != 0)
      finding("out of memory?");
    if (rs.status != 200 && rs.status != 400 && rs.status != 404)
      finding("status %d for %s?%s", rs.status, text, query);
    json_error_t je;
    json_t *j = json_loadb(rs.body, rs.len, 0, &je);
    if (j == NULL)
      finding("not JSON (%s): %.*s", je.text, (int)rs.len, rs.body);
    const char *want =
        rt.interaction == CL_FHIR_READ || rt.interaction == CL_FHIR_VREAD ? rt.type : NULL;
    const char *got = json_string_value(json_object_get(j, "resourceType"));
    if (rs.status == 200 && want != NULL && (got == NULL || strcmp(got, want) != 0))
      finding("read of %s gave %s", want, got ? got : "(none)");
    json_decref(j);
    cl_fhir_resp_clear(&rs);
  }
  free(text);
  return 0;
}

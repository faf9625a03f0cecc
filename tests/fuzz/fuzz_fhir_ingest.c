/* libFuzzer target for the FHIR writes mapper (adapters/fhir/fhirw.h):
 * arbitrary bytes parsed as FHIR JSON and, when they parse, mapped to
 * catalog events as `clinlog ingest fhir` and the REST face do (a known
 * patient p1 and its encounter enc-1, a ChargeItem, Coverage and Claim a
 * Claim and a ClaimResponse are checked against; a reference table with one
 * Bundle fullUrl), plainly and as the resource of a Bundle entry; an input with
 * an entry array also goes through cl_fhirw_pair_lines (an export's or a
 * batch's report lines, and an eligibility response's request: each report
 * or response entry then mapped with the lines or request it took) and cl_fhirw_bundle_lines (a
 * transaction's report lines), and its entries are mapped.
 *
 * Mapped: one or two events, each passing the store's own validation
 * (cl_event_decode: ids, stream name, UTF-8, a known body) in the
 * patient's stream with the id in the result; mapping again gives the same
 * bytes. Refused: a status of 400 or 422, an issue code, a reason, an
 * expression under the path asked for, and no result. Any violation aborts
 * (fuzz_finding). */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/fhir/fhirw.h"
#include "store/event.h"
#include "tests/fuzz/common/fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const who = "fuzz_fhir_ingest";
static char enc_id[CL_FHIR_ID_MAX];

/* What the views hold besides: the ChargeItem ch-1, the Coverage
 * PAYER1|M1 and the Claim clm-1 billing ch-1 (as the REST face reads them:
 * cl_fhirw_parse's form), by logical id; what a Claim and a ClaimResponse
 * are checked against. */
static json_t *world;

static const char charge_text[] =
    "{\"resourceType\":\"ChargeItem\",\"id\":\"@ID\",\"identifier\":[{\"system\":\"urn:clinlog:"
    "id\",\"value\":\"ch-1\"}],\"status\":\"billable\",\"code\":{\"coding\":[{\"system\":\"http:/"
    "/www.ama-assn.org/go/cpt\",\"code\":\"99213\"}]},\"subject\":{\"reference\":\"Patient/p1\"},"
    "\"occurrenceDateTime\":\"2026-03-01\",\"priceOverride\":{\"value\":12000,\"currency\":"
    "\"JPY\"},\"enteredDate\":\"2026-03-01T12:00:00Z\"}";
static const char coverage_text[] =
    "{\"resourceType\":\"Coverage\",\"id\":\"@ID\",\"identifier\":[{\"system\":\"urn:clinlog:id\","
    "\"value\":\"PAYER1|M1\"}],\"status\":\"active\",\"subscriberId\":\"M1\",\"beneficiary\":{"
    "\"reference\":\"Patient/p1\"},\"payor\":[{\"identifier\":{\"value\":\"PAYER1\"},\"display\":"
    "\"Acme\"}]}";
static const char claim_text[] =
    "{\"resourceType\":\"Claim\",\"id\":\"@ID\",\"identifier\":[{\"system\":\"urn:clinlog:id\","
    "\"value\":\"clm-1\"}],\"status\":\"active\",\"type\":{\"coding\":[{\"system\":\"http://"
    "terminology.hl7.org/CodeSystem/claim-type\",\"code\":\"professional\",\"display\":"
    "\"Professional\"}]},\"use\":\"claim\",\"patient\":{\"reference\":\"Patient/p1\"},\"created\":"
    "\"2026-03-02T09:00:00Z\",\"insurer\":{\"identifier\":{\"value\":\"PAYER1\"},\"display\":"
    "\"Acme\"},\"provider\":{\"display\":\"unknown\"},\"insurance\":[{\"sequence\":1,\"focal\":"
    "true,\"coverage\":{\"reference\":\"Coverage/@COV\"}}],\"item\":[{\"extension\":[{\"url\":"
    "\"http://hl7.org/fhir/5.0/StructureDefinition/extension-Claim.item.traceNumber\","
    "\"valueIdentifier\":{\"system\":\"urn:clinlog:id\",\"value\":\"ch-1\"}}],\"sequence\":1}]}";

/* text with @ID its logical id and @COV the Coverage's, parsed into world. */
static void world_add(const char *text, const char *type, const char *bid, const char *cov) {
  char id[CL_FHIR_ID_MAX], out[2048], *w = out;
  cl_fhir_id(type, "p1", bid, id);
  for (const char *s = text; *s && w < out + sizeof out - CL_FHIR_ID_MAX - 1;) {
    const char *v = !strncmp(s, "@ID", 3) ? id : !strncmp(s, "@COV", 4) ? cov : NULL;
    if (v == NULL) {
      *w++ = *s++;
      continue;
    }
    s += v == id ? 3 : 4;
    w += snprintf(w, CL_FHIR_ID_MAX, "%s", v);
  }
  *w = '\0';
  json_t *r;
  cl_fhirw_error fe;
  cl_err err;
  if (cl_fhirw_parse(out, strlen(out), &r, &fe, &err) != 0)
    fuzz_finding(who, "the world's %s does not parse: %s", type, err.msg);
  json_object_set_new(world, id, r);
}

static void world_init(void) {
  if (world != NULL)
    return;
  char cov[CL_FHIR_ID_MAX];
  cl_fhir_id("Coverage", "p1", "PAYER1|M1", cov);
  world = json_object();
  world_add(charge_text, "ChargeItem", "ch-1", "");
  world_add(coverage_text, "Coverage", "PAYER1|M1", "");
  world_add(claim_text, "Claim", "clm-1", cov);
}

static int fetch(void *ctx, const char *type, const char *id, json_t **out, cl_err *err) {
  (void)ctx, (void)err;
  json_t *r = json_object_get(world, id);
  const char *t = json_string_value(json_object_get(r, "resourceType"));
  *out = t && !strcmp(t, type) ? json_deep_copy(r) : NULL;
  return *out ? 0 : CL_ENOTFOUND;
}

static int resolve(void *ctx, const char *type, const char *id, char *bid, size_t bidn,
                   cl_err *err) {
  (void)ctx, (void)err;
  if (!strcmp(type, "Patient") && !strcmp(id, "p1"))
    return snprintf(bid, bidn, "p1") < 0;
  if (!strcmp(type, "Encounter") && !strcmp(id, enc_id))
    return snprintf(bid, bidn, "enc-1") < 0;
  json_t *r;
  if (fetch(ctx, type, id, &r, err) != 0)
    return CL_ENOTFOUND;
  int rc = cl_fhirw_bid_of(r, bid, bidn);
  json_decref(r);
  return rc;
}

/* cl_fhirw_line_fn over the lines cl_fhirw_pair_lines gave (ctx unused). */
static json_t *lines;
static int line_of(void *ctx, const char *ref, const json_t **out) {
  (void)ctx;
  *out = json_object_get(lines, ref);
  return *out ? 0 : CL_ENOTFOUND;
}

static void check(const json_t *res, const char *expr, const cl_fhirw_opts *o) {
  cl_fhirw_mapped *m = (cl_fhirw_mapped *)1, *again = NULL;
  cl_fhirw_error fe;
  cl_err err;
  memset(&fe, 0, sizeof fe);
  int rc = cl_fhirw_map(res, expr, NULL, "", o, &m, &fe, &err);
  if (rc == CL_ENOMEM)
    return;
  if (rc != 0) {
    if (rc != CL_EMALFORMED || m != NULL)
      fuzz_finding(who, "refusal %d with a result", rc);
    if ((fe.status != 400 && fe.status != 422) || !fe.code[0] || !fe.text[0])
      fuzz_finding(who, "refusal without status, code or reason: %d %s", fe.status, err.msg);
    if (expr && fe.expression[0] && strncmp(fe.expression, expr, strlen(expr)) != 0)
      fuzz_finding(who, "expression '%s' outside '%s'", fe.expression, expr);
    json_t *oo = cl_fhirw_outcome(&fe);
    if (oo == NULL)
      fuzz_finding(who, "no OperationOutcome for a refusal");
    json_decref(oo);
    return;
  }
  if (m->n < 1 || m->n > 2)
    fuzz_finding(who, "%zu events", m->n);
  char stream[160];
  snprintf(stream, sizeof stream, "patient-%s", m->patient_id);
  for (size_t i = 0; i < m->n; i++) {
    Clinlog__V1__Event *ev;
    if (cl_event_decode(m->ev[i].bytes, m->ev[i].len, &ev, &err) != 0)
      fuzz_finding(who, "event %zu is not valid: %s", i, err.msg);
    if (strcmp(ev->stream, stream) || strcmp(m->stream, stream))
      fuzz_finding(who, "event %zu in stream '%s', not '%s'", i, ev->stream, stream);
    if (memcmp(ev->event_id.data, m->ev[i].event_id, 16) ||
        (uint32_t)ev->body_case != m->ev[i].type || ev->occurred_at == NULL)
      fuzz_finding(who, "event %zu: id, type or time", i);
    clinlog__v1__event__free_unpacked(ev, NULL);
  }
  if (cl_fhirw_map(res, expr, NULL, "", o, &again, &fe, &err) != 0 || again->n != m->n)
    fuzz_finding(who, "mapping again gave another result");
  for (size_t i = 0; i < m->n; i++)
    if (again->ev[i].len != m->ev[i].len ||
        memcmp(again->ev[i].bytes, m->ev[i].bytes, m->ev[i].len) != 0)
      fuzz_finding(who, "mapping again gave other bytes for event %zu", i);
  cl_fhirw_mapped_free(again);
  cl_fhirw_mapped_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cl_fhir_id("Encounter", "p1", "enc-1", enc_id);
  world_init();
  json_t *res;
  cl_fhirw_error fe;
  cl_err err;
  memset(&fe, 0, sizeof fe);
  if (cl_fhirw_parse((const char *)data, size, &res, &fe, &err) != 0) {
    if (err.code != CL_ENOMEM && (fe.status != 400 || !fe.text[0]))
      fuzz_finding(who, "parse refusal without a reason");
    return 0;
  }
  json_t *refs = json_pack("{s:{s:s,s:s,s:s}}", "urn:uuid:p2", "type", "Patient", "bid", "p2",
                           "patient", "p2");
  cl_fhirw_opts o = {.principal_id = "fuzz-feed",
                     .now_ns = 1767225600LL * 1000000000LL,
                     .refs = refs,
                     .resolve = resolve,
                     .fetch = fetch};
  check(res, NULL, &o);
  check(res, "Bundle.entry[0].resource", &o);
  o.bulk = 1;
  check(res, NULL, &o);
  /* an object with an entry array: a transaction's report lines move into
   * their reports, then each entry maps as on the REST face */
  json_t *es = json_object_get(res, "entry");
  size_t n = json_array_size(es);
  if (n > 0 && n <= 64) { /* an export's or a batch's report lines: Observations of their own */
    const json_t *rs[64];
    const char *urls[64];
    long of[64], at[64], shared[64];
    for (size_t i = 0; i < n; i++) {
      rs[i] = json_object_get(json_array_get(es, i), "resource");
      urls[i] = json_string_value(json_object_get(json_array_get(es, i), "fullUrl"));
    }
    if (cl_fhirw_pair_lines(rs, urls, n, of, at, shared, &lines) == 0) {
      for (size_t i = 0; i < n; i++) {
        if ((of[i] >= 0) != (at[i] >= 0) || of[i] >= (long)n || of[i] == (long)i ||
            (of[i] >= 0 && shared[i] >= 0))
          fuzz_finding(who, "a line taken by no report, by itself, or a line that is a report");
        const char *tt =
            of[i] >= 0 ? json_string_value(json_object_get(rs[of[i]], "resourceType")) : NULL;
        int elig = tt != NULL && !strcmp(tt, "CoverageEligibilityResponse");
        if (of[i] >= 0 && !elig &&
            json_array_size(json_object_get(rs[of[i]], "result")) <= (size_t)at[i])
          fuzz_finding(who, "a line taken at a result its report does not have");
        if (elig && (at[i] != 0 || json_object_get(rs[of[i]], "request") == NULL))
          fuzz_finding(who, "a request taken by a response that does not reference it");
        if (shared[i] >= 0) { /* refused by the path of what it shares */
          cl_fhirw_error pe;
          cl_fhirw_pair_refusal(rs[i], shared[i], "Bundle.entry[0].resource", &pe);
          if (pe.status != 422 || strncmp(pe.expression, "Bundle.entry[0].resource.", 25))
            fuzz_finding(who, "a shared line or request refused without its path");
        }
      }
      o.line = line_of;
      for (size_t i = 0; i < n; i++)
        if (of[i] < 0 && shared[i] < 0)
          check(rs[i], "Bundle.entry[0].resource", &o);
      o.line = NULL;
      json_decref(lines);
      lines = NULL;
    }
  }
  if (n > 0 && n <= 64) {
    long of[64], at[64];
    if (cl_fhirw_bundle_lines(es, of, at) == 0)
      for (size_t i = 0; i < n; i++) {
        if ((of[i] >= 0) != (at[i] >= 0) || of[i] >= (long)n || of[i] == (long)i)
          fuzz_finding(who, "a line taken by no report, or by itself");
        if (of[i] < 0)
          check(json_object_get(json_array_get(es, i), "resource"), "Bundle.entry[0].resource", &o);
      }
  }
  json_decref(refs);
  json_decref(res);
  return 0;
}

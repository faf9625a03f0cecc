/* libFuzzer target for the FHIR writes mapper (adapters/fhir/fhirw.h):
 * arbitrary bytes parsed as FHIR JSON and, when they parse, mapped to
 * catalog events as `clinlog ingest fhir` and the REST face do (a known
 * patient p1 and its encounter enc-1; a reference table with one Bundle
 * fullUrl), plainly and as the resource of a Bundle entry; an input with
 * an entry array also goes through cl_fhirw_bundle_lines (a transaction's
 * report lines) and its entries are mapped.
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

static int resolve(void *ctx, const char *type, const char *id, char *bid, size_t bidn,
                   cl_err *err) {
  (void)ctx, (void)err;
  if (!strcmp(type, "Patient") && !strcmp(id, "p1"))
    return snprintf(bid, bidn, "p1") < 0;
  if (!strcmp(type, "Encounter") && !strcmp(id, enc_id))
    return snprintf(bid, bidn, "enc-1") < 0;
  return CL_ENOTFOUND;
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
                     .resolve = resolve};
  check(res, NULL, &o);
  check(res, "Bundle.entry[0].resource", &o);
  o.bulk = 1;
  check(res, NULL, &o);
  /* an object with an entry array: a transaction's report lines move into
   * their reports, then each entry maps as on the REST face */
  json_t *es = json_object_get(res, "entry");
  size_t n = json_array_size(es);
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

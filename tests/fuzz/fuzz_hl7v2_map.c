/* libFuzzer target for the HL7 v2 mapping (adapters/hl7v2/map.h):
 * arbitrary bytes parsed as one message and, when they parse, mapped to
 * catalog events.
 *
 * Mapped: every event must pass the store's own validation
 * (cl_event_decode: ids, stream name, UTF-8, a known body), carry the id
 * cl_hl7_event_id derives for its index and be in the patient's stream;
 * mapping the same message again must give the same bytes (resends are
 * idempotent). Refused: a table 0357 code, a reason, an offset within the
 * input, no result, and an ACK that builds. Any violation aborts
 * (fuzz_finding). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/hl7v2/ack.h"
#include "adapters/hl7v2/hl7.h"
#include "adapters/hl7v2/map.h"
#include "store/alloc.h"
#include "store/event.h"
#include "tests/fuzz/common/fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const who = "fuzz_hl7v2_map";

static void check_events(const cl_hl7_msg *m, const cl_hl7_mapped *r) {
  const cl_hl7_header *h = cl_hl7_header_of(m);
  char stream[100];
  snprintf(stream, sizeof stream, "patient-%s", r->patient_id);
  if (r->n == 0)
    fuzz_finding(who, "mapped to no events");
  for (size_t i = 0; i < r->n; i++) {
    Clinlog__V1__Event *ev;
    cl_err err;
    if (cl_event_decode(r->ev[i].bytes, r->ev[i].len, &ev, &err) != 0)
      fuzz_finding(who, "event %zu is not valid: %s", i, err.msg);
    uint8_t id[16];
    cl_hl7_event_id(h->sending_app, h->sending_facility, h->control_id, (uint32_t)i, id);
    if (memcmp(id, ev->event_id.data, 16) || memcmp(id, r->ev[i].event_id, 16))
      fuzz_finding(who, "event %zu has another id than the derived one", i);
    if (strcmp(ev->stream, stream) || strcmp(r->ev[i].stream, stream))
      fuzz_finding(who, "event %zu is in stream '%s', not '%s'", i, ev->stream, stream);
    if ((uint32_t)ev->body_case != r->ev[i].type || !ev->occurred_at)
      fuzz_finding(who, "event %zu: type or time", i);
    clinlog__v1__event__free_unpacked(ev, NULL);
  }
}

static void refused(const cl_hl7_msg *m, size_t size, const cl_hl7_error *e, const cl_err *err) {
  if (cl_hl7_code_text(e->code)[0] == '\0' || e->code == 0 || !e->reason[0] || !err->msg[0])
    fuzz_finding(who, "refusal without code or reason: %d %s", e->code, err->msg);
  if (e->offset > size)
    fuzz_finding(who, "error offset %zu beyond the input (%zu)", e->offset, size);
  if (strlen(e->segment) > 3)
    fuzz_finding(who, "segment id '%s'", e->segment);
  cl_hl7_ack_params ap = {.control_id = "FUZZ1", .timestamp = "20260101000000"};
  char *ack = NULL;
  size_t n;
  cl_err aerr;
  if (cl_hl7_ack(m, e, &ap, &ack, &n, &aerr) != 0)
    fuzz_finding(who, "ACK failed: %s", aerr.msg);
  char ae[8], ar[8]; /* in the message's own field separator */
  char fs = cl_hl7_header_of(m)->enc.field;
  snprintf(ae, sizeof ae, "MSA%cAE%c", fs, fs);
  snprintf(ar, sizeof ar, "MSA%cAR%c", fs, fs);
  if (!strstr(ack, ae) && !strstr(ack, ar))
    fuzz_finding(who, "the refusal ACK is not AE or AR");
  cl_free(ack);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cl_hl7_msg *m = NULL;
  cl_hl7_error e;
  cl_err err;
  if (cl_hl7_parse(data, size, NULL, &m, &e, &err) != 0)
    return 0; /* the parser's own target checks refusals */
  cl_hl7_map_opts o = {.principal_id = "fuzz-feed", .default_offset_min = size % 2 ? -300 : 0};
  cl_hl7_mapped *r = NULL, *r2 = NULL;
  int rc = cl_hl7_map(m, &o, &r, &e, &err);
  if (rc == 0) {
    check_events(m, r);
    if (cl_hl7_map(m, &o, &r2, NULL, &err) != 0 || r2->n != r->n)
      fuzz_finding(who, "a second mapping differs");
    for (size_t i = 0; i < r->n; i++)
      if (r->ev[i].len != r2->ev[i].len || memcmp(r->ev[i].bytes, r2->ev[i].bytes, r->ev[i].len))
        fuzz_finding(who, "a second mapping gives other bytes for event %zu", i);
  } else if (rc == CL_EMALFORMED) {
    if (r)
      fuzz_finding(who, "refused but returned a result");
    refused(m, size, &e, &err);
  } else {
    fuzz_finding(who, "unexpected error %s: %s", cl_errname(rc), err.msg);
  }
  cl_hl7_mapped_free(r);
  cl_hl7_mapped_free(r2);
  cl_hl7_free(m);
  return 0;
}

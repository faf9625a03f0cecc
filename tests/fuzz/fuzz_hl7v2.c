/* libFuzzer target for adapters/hl7v2: arbitrary bytes as one HL7 v2
 * message, then an ACK for whatever came of it.
 *
 * Parsed: every node is walked (decoded values must be as long as they say
 * and hold no NUL), the ACK is built and must itself parse strictly, be AA,
 * echo MSH-10 in MSA-2 and swap the applications. Refused: the error must
 * carry a table 0357 code, a reason and an offset within the input; the
 * ACK built from the raw bytes must parse at least leniently (its MSH) and
 * say AE or AR. Any violation aborts (fuzz_finding). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/hl7v2/ack.h"
#include "adapters/hl7v2/hl7.h"
#include "store/alloc.h"
#include "tests/fuzz/common/fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const who = "fuzz_hl7v2";

static void check_value(cl_hl7_value v) {
  if (!v.s || strlen(v.s) != v.n)
    fuzz_finding(who, "value length %zu differs from its string", v.n);
  if (v.state != CL_HL7_VALUED && v.n != 0)
    fuzz_finding(who, "a value that is not VALUED has %zu bytes", v.n);
}

static void walk(const cl_hl7_msg *m) {
  for (size_t i = 1; i <= cl_hl7_nsegments(m); i++) {
    const cl_hl7_seg *s = cl_hl7_segment_at(m, i);
    if (strlen(cl_hl7_seg_id(s)) != 3)
      fuzz_finding(who, "segment %zu has id '%s'", i, cl_hl7_seg_id(s));
    for (unsigned f = 1; f <= cl_hl7_nfields(s); f++)
      for (unsigned r = 1; r <= cl_hl7_nreps(s, f); r++)
        for (unsigned c = 1; c <= cl_hl7_ncomps(s, f, r); c++)
          for (unsigned u = 1; u <= cl_hl7_nsubs(s, f, r, c); u++)
            check_value(cl_hl7_get(s, f, r, c, u));
  }
}

static char *ack_of(const cl_hl7_msg *m, const uint8_t *data, size_t size, const cl_hl7_error *e,
                    size_t *n) {
  cl_hl7_ack_params ap = {.control_id = "FUZZ1", .timestamp = "20260101000000"};
  char *ack = NULL;
  cl_err err;
  int rc =
      m ? cl_hl7_ack(m, e, &ap, &ack, n, &err) : cl_hl7_ack_raw(data, size, e, &ap, &ack, n, &err);
  if (rc != 0)
    fuzz_finding(who, "ACK failed: %s", err.msg);
  if (strlen(ack) != *n)
    fuzz_finding(who, "ACK length");
  return ack;
}

static void accepted(const cl_hl7_msg *m, const uint8_t *data, size_t size) {
  walk(m);
  size_t n;
  char *ack = ack_of(m, data, size, NULL, &n);
  cl_hl7_msg *a = NULL;
  cl_hl7_error e;
  cl_err err;
  if (cl_hl7_parse((const uint8_t *)ack, n, NULL, &a, &e, &err) != 0)
    fuzz_finding(who, "the ACK of a parsed message does not parse: %s", err.msg);
  const cl_hl7_header *h = cl_hl7_header_of(m), *ha = cl_hl7_header_of(a);
  if (strcmp(cl_hl7_path(a, "MSA-1").s, "AA") != 0 ||
      strcmp(cl_hl7_path(a, "MSA-2").s, h->control_id) != 0 ||
      strcmp(ha->sending_app, h->receiving_app) != 0 ||
      strcmp(ha->receiving_facility, h->sending_facility) != 0 ||
      strcmp(ha->version, h->version) != 0 || strcmp(ha->control_id, "FUZZ1") != 0)
    fuzz_finding(who, "the ACK does not answer the message");
  cl_hl7_free(a);
  cl_free(ack);
}

static void refused(const uint8_t *data, size_t size, const cl_hl7_error *e, const cl_err *err) {
  if (cl_hl7_code_text(e->code)[0] == '\0' || e->code == 0 || !e->reason[0] || !err->msg[0])
    fuzz_finding(who, "refusal without code or reason: %d %s", e->code, err->msg);
  if (e->offset > size)
    fuzz_finding(who, "error offset %zu beyond the input (%zu)", e->offset, size);
  size_t n;
  char *ack = ack_of(NULL, data, size, e, &n);
  cl_hl7_msg *a = NULL;
  cl_err aerr;
  if (cl_hl7_parse_msh((const uint8_t *)ack, n, NULL, &a, &aerr) != 0)
    fuzz_finding(who, "the refusal ACK has no usable MSH: %s", aerr.msg);
  cl_hl7_free(a);
  if (!strstr(ack, "MSA") || (!strstr(ack, "AE") && !strstr(ack, "AR")))
    fuzz_finding(who, "the refusal ACK is not AE or AR");
  cl_free(ack);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cl_hl7_msg *m = NULL;
  cl_hl7_error e;
  cl_err err;
  int rc = cl_hl7_parse(data, size, NULL, &m, &e, &err);
  if (rc == 0) {
    accepted(m, data, size);
    cl_hl7_free(m);
  } else if (rc == CL_EMALFORMED || rc == CL_ETOOBIG) {
    if (m)
      fuzz_finding(who, "refused but returned a message");
    refused(data, size, &e, &err);
  } else {
    fuzz_finding(who, "unexpected error %s: %s", cl_errname(rc), err.msg);
  }
  return 0;
}

/* libFuzzer target for home-device reading lines (adapters/device/reading.h):
 * arbitrary bytes mapped as one line, against a small registry (bp-1 and
 * glu-1 assigned to P1, loose-1 unassigned).
 *
 * Mapped: 1 or 2 events, each passing the store's own validation
 * (cl_event_decode), in stream "patient-<patient>", with the id
 * cl_dev_event_id derives, of type 701 or 702, the device and the reading
 * as the mapping says; mapping again gives the same bytes (a resend is
 * idempotent). Refused: no events, a message that starts with the member
 * it names. Any violation aborts (fuzz_finding). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "adapters/device/reading.h"
#include "clinlog/v1/event.pb-c.h"
#include "store/event.h"
#include "tests/fuzz/common/fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const who = "fuzz_device_json";

static int lookup(void *ctx, const char *id, const char *patient, cl_dev_registration *out,
                  cl_err *err) {
  (void)ctx, (void)err;
  if (!strcmp(id, "loose-1"))
    return 0;
  if (strcmp(id, "bp-1") && strcmp(id, "glu-1"))
    return CL_ENOTFOUND;
  out->assigned = !strcmp(patient, "P1") ? CL_DEV_TO_PATIENT : CL_DEV_TO_OTHER;
  snprintf(out->principal_id, sizeof out->principal_id, "dev-bp-1");
  return 0;
}

static void check(const cl_dev_mapped *m, const cl_dev_mapped *again) {
  if (m->n < 1 || m->n > 2)
    fuzz_finding(who, "%zu events", m->n);
  if (again->n != m->n)
    fuzz_finding(who, "mapping again gave %zu events, not %zu", again->n, m->n);
  char stream[CL_DEV_ID_MAX + 8];
  snprintf(stream, sizeof stream, "patient-%s", m->patient_id);
  for (size_t i = 0; i < m->n; i++) {
    if (again->ev[i].len != m->ev[i].len ||
        memcmp(again->ev[i].bytes, m->ev[i].bytes, m->ev[i].len))
      fuzz_finding(who, "event %zu differs when mapped again", i);
    Clinlog__V1__Event *e;
    cl_err err;
    if (cl_event_decode(m->ev[i].bytes, m->ev[i].len, &e, &err))
      fuzz_finding(who, "event %zu is not valid: %s", i, err.msg);
    uint8_t id[16];
    cl_dev_event_id(m->device_id, m->reading_id, (uint32_t)(m->ev[i].type - 701), id);
    if (memcmp(id, e->event_id.data, 16) || memcmp(id, m->ev[i].event_id, 16))
      fuzz_finding(who, "event %zu has another id than the derived one", i);
    if (strcmp(e->stream, stream) || strcmp(m->stream, stream))
      fuzz_finding(who, "event %zu is in stream '%s', not '%s'", i, e->stream, stream);
    if ((uint32_t)e->body_case != m->ev[i].type || (m->ev[i].type != 701 && m->ev[i].type != 702))
      fuzz_finding(who, "event %zu has type %u", i, m->ev[i].type);
    clinlog__v1__event__free_unpacked(e, NULL);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cl_dev_opts o = {.principal_id = "dev-bp-1",
                   .now_ms = 1796450400000LL, /* 2026-12-05T06:00:00Z */
                   .lookup = lookup};
  o.gateway = size && (data[0] & 1);
  cl_dev_mapped m, again;
  char field[64];
  cl_err err;
  cl_err_clear(&err);
  int rc = cl_dev_map_line((const char *)data, size, &o, &m, field, &err);
  if (rc == 0) {
    if (cl_dev_map_line((const char *)data, size, &o, &again, NULL, &err))
      fuzz_finding(who, "mapped once, refused the second time: %s", err.msg);
    check(&m, &again);
    cl_dev_mapped_clear(&again);
    cl_dev_mapped_clear(&m);
  } else {
    if (m.n)
      fuzz_finding(who, "refused with %zu events", m.n);
    if (rc != CL_EMALFORMED && rc != CL_EDENIED)
      fuzz_finding(who, "refused with code %d: %s", rc, err.msg);
    if (!err.msg[0] || strncmp(err.msg, field, strlen(field)))
      fuzz_finding(who, "message '%s' does not start with the member '%s'", err.msg, field);
  }
  return 0;
}

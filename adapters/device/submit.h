/* Home-device readings through the request layer: what the gRPC
 * Devices.SubmitReadings stream, the HTTP face's POST /device/readings
 * (JSON lines) and `clinlog ingest readings` (over gRPC) share.
 *
 * For an admitted call (cl_svc_admit ran: authenticated, authorized,
 * audited) and a batch of reading lines (reading.h), each line is mapped
 * against the device registry and the accepted ones are appended; each
 * line gets its own outcome.
 *
 *  - The caller must be an authenticated principal (CL_EUNAUTH otherwise)
 *    whose roles may append DeviceReadingRecorded and DeviceStatusReported
 *    (the policy's `append` rules; CL_EDENIED). A caller with the
 *    `integration` role is a gateway and may submit for any registered
 *    device; any other caller only for the devices registered with its
 *    principal (DeviceRegistered.principal_id).
 *  - The registry is the FHIR Device view (query/fhir/map_device.c): a
 *    device is registered when its Device exists, assigned to the patient
 *    its Patient reference names, and speaks as the principal its
 *    urn:clinlog:principal identifier names. The view's keys are keyed
 *    hashes, never the ids. An answer that would refuse a reading is
 *    asked again after the view has folded the log as it was when the call
 *    began (waiting up to the call's deadline), so a registration or
 *    reassignment committed before the call is always seen; readings of
 *    registered devices never wait for the view to fold other readings.
 *    (A reading for a device's previous patient, sent just after a
 *    reassignment the view has not folded yet, is accepted.)
 *  - The node writes the events itself, signed by its log key (as the
 *    audit trail and alert outcomes): recorded_by "$log" (the store holds
 *    a signer to the principal its events name) on_behalf_of the caller,
 *    and the device; the caller's right was checked above. All
 *    accepted lines of a batch go in one append; if that one is refused as
 *    a partial duplicate (some readings were sent before), each line is
 *    appended on its own, so a resend is "duplicate", never an error.
 *
 * Thread-safety: any thread; calls share nothing. */
#ifndef CL_ADAPTERS_DEVICE_SUBMIT_H
#define CL_ADAPTERS_DEVICE_SUBMIT_H

#include <stddef.h>
#include <stdint.h>

#include "adapters/device/reading.h"
#include "adapters/service/service.h"

enum cl_dev_status {
  CL_DEV_ACCEPTED = 1,  /* written */
  CL_DEV_DUPLICATE = 2, /* sent before with the same content: nothing written */
  CL_DEV_REFUSED = 3,   /* the line is wrong (field, reason): nothing written */
  CL_DEV_FAILED = 4     /* the server could not write it (reason): retry */
};

/* "accepted", "duplicate", "refused", "failed" (static). */
const char *cl_dev_status_name(int status);

/* One line's outcome. Plain value. */
typedef struct cl_dev_outcome {
  int status;                    /* enum cl_dev_status */
  int code;                      /* 0 or the CL_E* of a refusal or failure */
  char device_id[CL_DEV_ID_MAX]; /* as the line gave it, when it did */
  char reading_id[CL_DEV_ID_MAX];
  char field[64];   /* refused: the member at fault ("" the line) */
  char reason[320]; /* refused or failed: why */
  uint64_t seq;     /* accepted or duplicate: the first event's sequence number */
  size_t events;    /* accepted or duplicate: how many events the line has */
} cl_dev_outcome;

typedef struct cl_dev_submit_opts {
  int64_t max_skew_ms; /* 0: the service's (cl_svc_set_device_skew_ms), else 5 minutes */
} cl_dev_submit_opts;

/* One line of input: a view. */
typedef struct cl_dev_line {
  const char *p;
  size_t n;
} cl_dev_line;

/* Submits n lines (borrowed) for the admitted call rc; out (n entries,
 * the caller's) gets each line's outcome. Returns 0 when every line has
 * an outcome (some may be refused or failed), or an error that ends the
 * whole call with nothing written: CL_EUNAUTH, CL_EDENIED (the caller's
 * roles), CL_EUNAVAILABLE (no FHIR view or no log key on this node; the
 * view did not catch up by the deadline), CL_ENOMEM. What it wrote goes
 * into rc's audit record (its seqs and the patients). */
CL_MUST_CHECK int cl_dev_submit(cl_svc *s, cl_req_ctx *rc, const cl_dev_line *lines, size_t n,
                                const cl_dev_submit_opts *o, cl_dev_outcome *out, cl_err *err);

#endif

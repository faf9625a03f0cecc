/* Home-device readings (JSON, one reading per line) to catalog events
 * (docs/adapters.md, "Home-device feeds", has the format and examples).
 *
 * One line is one JSON object from a device or its gateway:
 *
 *   | member       | type          | meaning                                          |
 *   |--------------|---------------|--------------------------------------------------|
 *   | device       | string        | DeviceRegistered.device_id (required)            |
 *   | patient      | string        | the patient the device is assigned to (required) |
 *   | reading      | string/int    | the device's reading sequence or id (required)   |
 *   | time         | string        | device time, RFC 3339 with seconds and a zone    |
 *   |              |               | (required)                                       |
 *   | system       | string        | "loinc" (default) or "mdc" (IEEE 11073 10101)    |
 *   | code         | string        | what was measured                                |
 *   | display      | string        | its text, optional                               |
 *   | value        | number        | a single value ...                               |
 *   | unit         | string        | ... and its UCUM unit                            |
 *   | components   | array         | ... or parts: {code, [system], value, unit}      |
 *   | received     | string        | when the gateway received it (RFC 3339), optional|
 *   | status       | object        | {battery (%), signal (dBm), connectivity         |
 *   |              |               |  "online"/"offline"/"intermittent"}, optional    |
 *
 * A line with code gives a DeviceReadingRecorded, one with status a
 * DeviceStatusReported (both: both, reading first); a line needs at least
 * one. Unknown members are refused (a misspelt "untis" is a mistake, not a
 * quirk). Each event is in the stream "patient-<patient>", recorded by the
 * caller's principal (or by the signing node on behalf of the caller),
 * with recorded_by.device_id the device, occurred_at the device time, and
 * has an event id
 * derived from (device, reading, its index in the line): mapping the same
 * line twice gives the same bytes, so a gateway that resends is a no-op at
 * the store (event-id idempotency). The mapping is a pure function of the
 * line, the options and what the lookup answers.
 *
 * Refusals (CL_EMALFORMED, or CL_EDENIED for the device checks) name the
 * member in `field` and say why in err->msg, e.g. "unit: \"mmHg\" is not a
 * UCUM unit of home vitals (mm[Hg] kPa ...)":
 *   bad JSON (field "" and the column), a missing or mistyped member, an
 *   unknown member, a time that is not an RFC 3339 instant or is more than
 *   max_skew past `now`, a unit not in the table below or not of the code's
 *   dimension (a blood pressure in kg), a non-finite value, battery outside
 *   0..100; an unregistered device, a device assigned to another patient
 *   (or to none), a caller that is neither the device's registered
 *   principal nor a gateway (cl_dev_opts.gateway).
 *
 * Thread-safety: no shared state; the lookup is called on the caller's
 * thread. */
#ifndef CL_ADAPTERS_DEVICE_READING_H
#define CL_ADAPTERS_DEVICE_READING_H

#include <stddef.h>
#include <stdint.h>

#include "store/err.h"

#define CL_DEV_ID_MAX 128     /* device, patient and reading ids, bytes with the NUL */
#define CL_DEV_MAX_LINE 65536 /* a longer line is refused */

/* Where a device is assigned, as the registry knows it. */
enum cl_dev_assigned {
  CL_DEV_UNASSIGNED = 0, /* to no patient */
  CL_DEV_TO_PATIENT = 1, /* to the patient asked about */
  CL_DEV_TO_OTHER = 2    /* to another patient */
};

/* What the device registry knows of a device (its latest DeviceRegistered). */
typedef struct cl_dev_registration {
  int assigned;                     /* enum cl_dev_assigned */
  char principal_id[CL_DEV_ID_MAX]; /* the principal it (or its gateway) signs as; "" none */
} cl_dev_registration;

/* Looks device `device_id` up and says whether it is assigned to
 * `patient_id` (both borrowed): 0 with *out filled, CL_ENOTFOUND when it
 * was never registered, another error (err set) when the registry cannot
 * answer. (The registry may keep only keyed hashes of patient ids: it is
 * asked about one patient, never to name one.) */
typedef int (*cl_dev_lookup_fn)(void *ctx, const char *device_id, const char *patient_id,
                                cl_dev_registration *out, cl_err *err);

typedef struct cl_dev_opts {
  const char *principal_id; /* the caller (required), borrowed: recorded_by.principal_id, or
                               recorded_by.on_behalf_of when the node signs (signer) */
  const char *role;         /* the caller's recorded_by.role; NULL: "device" */
  const char *signer;       /* the principal that signs the events when not the caller (the
                               node: "$log"); NULL: the caller signs */
  const char *signer_role;  /* its role (with signer) */
  int gateway;              /* the caller may act for any registered device (role
                               integration); else it must be the device's principal */
  int64_t now_ms;           /* the receiver's clock (ms since the epoch) */
  int64_t max_skew_ms;      /* how far past now a device time may be; 0: 5 minutes */
  cl_dev_lookup_fn lookup;  /* required */
  void *lookup_ctx;
} cl_dev_opts;

/* One mapped event: the exact bytes to sign. */
typedef struct cl_dev_event {
  uint8_t *bytes; /* serialized clinlog.v1.Event, cl_malloc'd */
  size_t len;
  uint32_t type;        /* Event.body field number (701 or 702) */
  uint8_t event_id[16]; /* as in the bytes */
} cl_dev_event;

typedef struct cl_dev_mapped {
  cl_dev_event ev[2]; /* reading, then status (n of them) */
  size_t n;
  char device_id[CL_DEV_ID_MAX];
  char patient_id[CL_DEV_ID_MAX];
  char reading_id[CL_DEV_ID_MAX];
  char stream[CL_DEV_ID_MAX + 8]; /* "patient-<patient>" */
  int64_t measured_ms;            /* the device time */
} cl_dev_mapped;

/* Maps one line (p, n borrowed; a trailing CR/LF is allowed) with options
 * o (borrowed). On success *out holds 1 or 2 events (release with
 * cl_dev_mapped_clear). On error *out holds none, `field` (may be NULL,
 * at least 64 bytes) names the member ("" for the line as a whole) and
 * err->msg says why, starting with the member. Errors: CL_EINVAL (NULL
 * arguments, no principal or lookup), CL_EMALFORMED (the line), CL_EDENIED
 * (the device checks), CL_ENOMEM, and the lookup's. */
CL_MUST_CHECK int cl_dev_map_line(const char *p, size_t n, const cl_dev_opts *o, cl_dev_mapped *out,
                                  char *field, cl_err *err);

/* Frees the events' bytes; *m then holds none. */
void cl_dev_mapped_clear(cl_dev_mapped *m);

/* The event id of event `index` of reading `reading_id` of `device_id`:
 * 16 bytes, an RFC 9562 version 8 UUID. */
void cl_dev_event_id(const char *device_id, const char *reading_id, uint32_t index,
                     uint8_t out[16]);

/* The dimension of a UCUM unit of home vitals ("mm[Hg]" -> "pressure"),
 * NULL for a unit the table does not hold. Static storage. */
const char *cl_dev_unit_dimension(const char *ucum);

#endif

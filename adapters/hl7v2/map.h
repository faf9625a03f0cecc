/* HL7 v2 messages to catalog events (docs/adapters.md, "Mapping to
 * events", has the tables; docs/events.md the events).
 *
 * One parsed message (hl7.h) becomes the list of clinlog.v1.Event it means,
 * serialized and ready to sign and append as one atomic batch:
 *   ADT^A01/A04/A28  PatientRegistered (+ EncounterStarted for A01/A04)
 *   ADT^A08/A31      PatientDemographicsUpdated
 *   ADT^A03          EncounterEnded
 *   ADT^A11, A13     EncounterCancelled, EncounterDischargeCancelled
 *   (ADT, any)       AllergyRecorded per AL1, ConditionDiagnosed per DG1
 *   ORM^O01, RDE^O11 per order: MedicationPrescribed (RXO/RXE), or
 *                    MedicationDiscontinued (ORC-1 DC, CA, OD, OC);
 *                    ORM^O01 without RXO: ServiceOrdered (OBR)
 *   RAS^O17          MedicationAdministered per RXA (barcodes: RXA-25, ZBC)
 *   ORU^R01          LabResultReported per OBR (every OBX a result), or
 *                    ObservationRecorded per OBX for a vital-signs group
 *   SIU^S12          AppointmentBooked
 *   DFT^P03          ChargeCaptured per FT1
 *   MDM^T02          ClinicalNoteSigned
 * Anything else is refused: code 200 (message type, MSH-9.1) or 201
 * (trigger, MSH-9.2), which the ACK builder answers with AR.
 *
 * Every event is in the stream "patient-<patient id>" of the patient of
 * PID-3 (the MR identifier, docs/adapters.md "Identifiers and streams"),
 * records the sender (source_system MSH-3.1, source_facility MSH-4.1,
 * source_message_id MSH-10), is recorded by the adapter's principal, and
 * has an event id derived from (MSH-3.1, MSH-4.1, MSH-10, its index in the
 * message): mapping the same message twice gives the same bytes, so the
 * store's event-id idempotency makes a resent message a no-op. The mapping
 * is a pure function of the message and the options (no clock, no
 * randomness).
 *
 * Refusals fill a cl_hl7_error exactly like the parser's (segment,
 * occurrence, field, repetition, component, subcomponent, byte offset,
 * table 0357 code, reason): 100 a required segment is missing, 101 a
 * required field is missing, 102 a value is not of its data type (an NM
 * that is not a number, a TS that is not a date), 103 a value is not in its
 * table, 200/201 unsupported message type / trigger.
 *
 * Thread-safety: no shared state; a message may be mapped by several
 * threads at once (it is immutable). */
#ifndef CL_ADAPTERS_HL7V2_MAP_H
#define CL_ADAPTERS_HL7V2_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "adapters/hl7v2/hl7.h"
#include "clinlog/v1/api.pb-c.h"
#include "store/err.h"
#include "store/keys.h"
#include "store/log.h"

typedef struct cl_hl7_map_opts {
  const char *principal_id; /* recorded_by.principal_id (required), borrowed */
  const char *role;         /* recorded_by.role; NULL: "integration" */
  int default_offset_min;   /* offset of TS values sent without one, in minutes east of
                               UTC (e.g. -300 for -0500); 0: read them as UTC */
} cl_hl7_map_opts;

/* One mapped event: the exact bytes to sign. */
typedef struct cl_hl7_event {
  uint8_t *bytes; /* serialized clinlog.v1.Event */
  size_t len;
  uint32_t type;        /* event type code (Event.body field number) */
  uint8_t event_id[16]; /* as in the bytes */
  char stream[272];     /* as in the bytes */
} cl_hl7_event;

typedef struct cl_hl7_mapped {
  cl_hl7_event *ev; /* n events in message order */
  size_t n;
  uint8_t correlation_id[16]; /* Event.correlation_id of every event: the message's id */
  char patient_id[80];        /* the patient of PID-3 */
} cl_hl7_mapped;

/* Maps `m` (borrowed) with options `o` (borrowed). On success *out is
 * returned-owned (cl_hl7_mapped_free) and holds at least one event. On
 * error *out is NULL, `herr` (may be NULL) says where and why (table 0357
 * code) and err->msg the same in one line, e.g. "OBX[2]-5 (segment 5, byte
 * 301): NM value 'abc' is not a number". Errors: CL_EINVAL (NULL
 * arguments, no principal), CL_EMALFORMED (a refusal above), CL_ENOMEM
 * (code 207). */
CL_MUST_CHECK int cl_hl7_map(const cl_hl7_msg *m, const cl_hl7_map_opts *o, cl_hl7_mapped **out,
                             cl_hl7_error *herr, cl_err *err);

/* Releases a mapping. NULL is a no-op. */
void cl_hl7_mapped_free(cl_hl7_mapped *r);

/* A mapping's events as one AppendBatch with one batch signature (every
 * event's hash, signed by the adapter's key): what `clinlog ingest hl7`
 * sends and the MLLP listener appends. `batch` points into this struct
 * and into the mapping: do not move the struct, and keep the mapping,
 * until the batch is no longer used. */
typedef struct cl_hl7_signed {
  Clinlog__V1__AppendBatch batch;
  Clinlog__V1__Signature sig;
  ProtobufCBinaryData *events; /* malloc'd views of the mapping's bytes */
  uint8_t pk[32], sigbytes[64];
} cl_hl7_signed;

/* Signs mapping r (borrowed) with s (borrowed) into *out (caller's storage;
 * release with cl_hl7_signed_free). Errors: CL_EINVAL (no events),
 * CL_ENOMEM; on error *out holds nothing to free. */
CL_MUST_CHECK int cl_hl7_sign(const cl_hl7_mapped *r, const cl_signer *s, cl_hl7_signed *out,
                              cl_err *err);
/* cl_hl7_sign for an append in this process to `log` from this thread:
 * the store then takes this batch signature as verified instead of
 * verifying it again (cl_log_sign_batch_as). */
CL_MUST_CHECK int cl_hl7_sign_for(const cl_hl7_mapped *r, const cl_signer *s, cl_log *log,
                                  cl_hl7_signed *out, cl_err *err);
void cl_hl7_signed_free(cl_hl7_signed *b);

/* The refusal of a message whose derived event ids are already committed
 * with other content (CL_EDUPLICATE from the store: the sender reused a
 * control id for a different message): table 0357 code 205 at MSH-10 into
 * *e, and the one-line reason into why (whyn bytes). h borrowed. */
void cl_hl7_error_reused_id(const cl_hl7_header *h, cl_hl7_error *e, char *why, size_t whyn);

/* The event id of event `index` (0-based) of the message with this sending
 * application, facility and control id (the rule above): 16 bytes, an RFC
 * 9562 version 8 UUID. index UINT32_MAX gives the message's correlation id. */
void cl_hl7_event_id(const char *app, const char *facility, const char *control_id, uint32_t index,
                     uint8_t out[16]);

/* The URI of an HL7 v2 coding system id (table 0396: "LN", "SCT", "I10",
 * "RXNORM", "HL70078"...); NULL when there is none and the sender's name
 * is kept. Static storage. */
const char *cl_hl7_system_uri(const char *hl7_system);

#endif

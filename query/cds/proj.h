/* The `cds` projection: the medication checker (check.h) and remote
 * patient monitoring (rpm.h) run over the committed log, and the findings
 * it has not yet seen appended.
 *
 * The fold keeps each patient's checker state and applies every
 * MedicationPrescribed, MedicationDiscontinued, MedicationDispensed,
 * MedicationAdministered, AllergyRecorded, DeviceReadingRecorded,
 * DeviceStatusReported, DispenserEventRecorded, AlertOverridden and
 * AlertAcknowledged of a "patient-<id>" stream to it, in log order. Each finding becomes a *pending* IssueDetected: the
 * whole event, ready to sign (event id = the finding's key, causation id
 * = the trigger, occurred_at and detected_at = the trigger's time,
 * recorded by "$log" in role log, source system "clinlog-cds"), so every
 * node, and every rebuild, holds the same bytes. A NEWS2 score to store
 * (rpm.h) becomes a pending ObservationRecorded the same way (event id =
 * its key, occurred_at = its newest value's time). Folding an
 * IssueDetected (any, by its event id), or an ObservationRecorded by "$log"
 * from "clinlog-cds", marks that key *emitted* and drops it from pending; a
 * finding whose key is emitted is not pending again. So
 * pending = findings not yet in the log, identical on every node; the
 * request layer's emitter (adapters/service/cds_emit.c) appends them on
 * the leader, and the store's event-id idempotency makes a second append
 * of the same bytes a no-op.
 *
 *   | family  | key                              | value                       |
 *   |---------|----------------------------------|-----------------------------|
 *   | patient | stream tag (32)                  | sealed cl_cds_patient bytes |
 *   | pending | stream tag (32) || key (16)      | sealed packed Event         |
 *   | emitted | stream tag (32) || key (16)      | empty                       |
 *   | silence | deadline (u64 BE, ns) || stream  | sealed packed Event: the    |
 *   |         | tag (32) || device hash (16)     | DEVICE_SILENT IssueDetected |
 *
 * The stream tag is the store's keyed hash of the stream name, the device
 * hash the store's keyed hash of "rpm-device:<device id>": no identifier in
 * plaintext.
 *
 * Device silence (rpm.h) is the one finding the fold cannot raise: it is
 * the absence of events. The fold keeps `silence` equal to the set of
 * armed watches (each device's last contact + device-silent seconds),
 * each entry holding the IssueDetected that the deadline passing raises
 * (event id = the watch key, derived from the last-contact event and the
 * rule; occurred_at and detected_at = the deadline), built the same on
 * every node. The leader's emitter (cl_cds_silent_due) appends the entries
 * whose deadline its wall clock has passed; folding that IssueDetected
 * opens the device's silence and drops the entry; a later contact closes
 * it and re-arms. Only *when* it is appended depends on a clock, never
 * what is appended, so a leader change or a rebuild appends nothing twice. StreamErased of a
 * patient stream forgets its state, pending and emitted entries (a rebuild meets its events
 * erased).
 *
 * The fold reads the knowledge base given at init: the state depends on
 * it, so one projection must always run with the same KB for a rebuild to
 * equal the live state (a different KB applies from the event folded
 * next; bump CL_CDS_PROJ_VERSION only with care: a rebuild under a new KB
 * may find new problems in old events, and the emitter appends those). */
#ifndef CL_QUERY_CDS_PROJ_H
#define CL_QUERY_CDS_PROJ_H

#include <stddef.h>
#include <stdint.h>

#include "query/cds/check.h"
#include "query/cds/kb.h"
#include "query/runner.h"
#include "store/err.h"
#include "store/proj.h"

#define CL_CDS_PROJ_NAME "cds"
#define CL_CDS_PROJ_VERSION 4
#define CL_CDS_SOURCE_SYSTEM "clinlog-cds"

/* Fills *def with the cds projection over `kb` (borrowed: it must outlive
 * every runner of def). */
void cl_cds_projection_init(cl_projection *def, const cl_kb *kb);

/* One pending finding: its key (the event id) and the packed Event to
 * append (views valid during the call). Return 0 to go on, 1 to stop, or a
 * negative error. */
typedef int (*cl_cds_pending_fn)(void *ctx, const uint8_t key[16], const uint8_t *event, size_t n,
                                 cl_err *err);

/* Calls fn for each pending finding of the committed state of `p` (the cds
 * projection's), in key order, at most `max` (0: all). Entries of a stream
 * erased meanwhile are skipped (the fold forgets them). Errors: those of
 * the scan, CL_ECRYPTO / CL_ECORRUPT (a tampered value), fn's. */
int cl_cds_pending(cl_proj *p, size_t max, cl_cds_pending_fn fn, void *ctx, cl_err *err);

/* The checker state of patient `patient_id` (borrowed) as the committed
 * state of `p` (the cds projection's, over `log`) holds it, or a new, empty
 * one if the patient has none, and in *position (may be NULL) the
 * projection's position read just before it: the state reflects at least
 * the log up to that seq. For Cds.CheckOrder, which applies drafts to it
 * and throws it away. *out returned-owned (cl_cds_patient_free). Errors:
 * CL_EINVAL (an empty id), CL_EERASED (the patient's stream is erased),
 * CL_ECRYPTO / CL_ECORRUPT (a tampered value), CL_EIO, CL_ENOMEM. */
CL_MUST_CHECK int cl_cds_patient_load(cl_proj *p, cl_log *log, const char *patient_id,
                                      cl_cds_patient **out, uint64_t *position, cl_err *err);

/* Device silence (rpm.h): calls fn for each armed watch whose deadline is
 * before now_ns (the caller's wall clock: the leader's), in deadline order,
 * at most max (0: all), with the DEVICE_SILENT IssueDetected to append
 * (key = its event id). Errors as cl_cds_pending. */
int cl_cds_silent_due(cl_proj *p, int64_t now_ns, size_t max, cl_cds_pending_fn fn, void *ctx,
                      cl_err *err);

/* One entry of the silence index (tests, status). */
typedef struct cl_cds_silence {
  uint64_t deadline_ns;
  uint8_t tag[32]; /* the patient stream's tag */
} cl_cds_silence;
/* Writes up to max entries of the committed silence index, in deadline
 * order, to out[]; *n = how many there are. Errors: the scan's. */
int cl_cds_silence_index(cl_proj *p, cl_cds_silence *out, size_t max, size_t *n, cl_err *err);

/* The number of pending and emitted entries (tests, status). */
int cl_cds_counts(cl_proj *p, uint64_t *pending, uint64_t *emitted, cl_err *err);

#endif

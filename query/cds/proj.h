/* The `cds` projection: the medication checker (check.h) run over the
 * committed log, and the findings it has not yet seen appended.
 *
 * The fold keeps each patient's checker state and applies every
 * MedicationPrescribed, MedicationDiscontinued, MedicationDispensed,
 * MedicationAdministered and AllergyRecorded of a "patient-<id>" stream to
 * it, in log order. Each finding becomes a *pending* IssueDetected: the
 * whole event, ready to sign (event id = the finding's key, causation id
 * = the trigger, occurred_at and detected_at = the trigger's time,
 * recorded by "$log" in role log, source system "clinlog-cds"), so every
 * node, and every rebuild, holds the same bytes. Folding an IssueDetected
 * (any, by its event id) marks that key *emitted* and drops it from
 * pending; a finding whose key is emitted is not pending again. So
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
 *
 * The stream tag is the store's keyed hash of the stream name: no
 * identifier in plaintext. StreamErased of a patient stream forgets its
 * state, pending and emitted entries (a rebuild meets its events erased).
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
#define CL_CDS_PROJ_VERSION 1
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

/* The number of pending and emitted entries (tests, status). */
int cl_cds_counts(cl_proj *p, uint64_t *pending, uint64_t *emitted, cl_err *err);

#endif

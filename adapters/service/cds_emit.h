/* The decision-support emitter: appends the cds projection's pending
 * findings (query/cds/proj.h) as IssueDetected events, on the leader only.
 *
 * A thread sleeps on the projection's progress feed (and wakes every
 * 500 ms to notice a leadership change). When this node leads and the
 * projection is live (not rebuilding nor catching up: what it holds
 * pending then may already be in the log), it reads the pending findings
 * and appends each one as its own batch: the packed event the fold made
 * (event id = the finding's key), signed by the node's log key. Then it
 * waits for the projection to fold what it appended before looking again.
 * A second append of the same bytes, by this node or a new leader that
 * saw them pending too, returns the first one's seq and adds nothing (the
 * store's event-id idempotency); so a leader change duplicates nothing,
 * and a finding committed-but-not-emitted when a leader dies is emitted
 * by the next one.
 *
 * Then, in the same round, the devices whose silence deadline (last
 * contact + the KB's device-silent seconds, query/cds/proj.h) is before
 * this node's wall clock: each gets the DEVICE_SILENT IssueDetected the
 * fold prepared (event id derived from the last-contact event and the
 * rule), appended the same way. Silence is the absence of events, so no
 * fold can see it: it is the one finding timed by a clock, the leader's.
 * What is appended does not depend on the clock, only when: a new leader
 * whose clock runs differently appends the same bytes (a no-op if they
 * are in the log), a little earlier or later. A device that reports
 * again before the fold sees the silence finding simply re-arms.
 *
 * Internal to adapters/service: service.c starts and stops it
 * (cl_svc_enable_cds). */
#ifndef CL_ADAPTERS_SERVICE_CDS_EMIT_H
#define CL_ADAPTERS_SERVICE_CDS_EMIT_H

#include <stdint.h>

#include "clinlog/v1/api.pb-c.h"
#include "query/runner.h"
#include "store/err.h"
#include "store/log.h"

typedef struct cds_emitter cds_emitter;

typedef struct cds_emit_hooks {
  /* 1 if this node leads (may write) now */
  int (*leader)(void *ctx);
  /* appends b (borrowed) without forwarding: 0 and *seq, or an error */
  int (*append)(void *ctx, const Clinlog__V1__AppendBatch *b, uint64_t *seq, cl_err *err);
  void *ctx;
} cds_emit_hooks;

/* Starts the thread over runner r (the cds projection's) and log (with its
 * log key), both borrowed (they outlive the emitter). *out returned-owned
 * (cds_emit_stop). Errors: CL_ENOMEM. */
int cds_emit_start(cl_log *log, cl_runner *r, const cds_emit_hooks *h, cds_emitter **out,
                   cl_err *err);
/* Stops the thread (within about 500 ms) and frees e. NULL is fine. */
void cds_emit_stop(cds_emitter *e);
/* Findings appended (first time or again) since start. */
uint64_t cds_emit_count(cds_emitter *e);

#endif

/* The audit recorder: writes the audit trail's AccessRecorded events
 * (proto/clinlog/v1/system.proto) into the stream "$audit", signed by this
 * node's log key, and returns only once they are committed, so a call's
 * answer never leaves before its record is in the log (fail closed).
 *
 * Group commit: a caller hands its record over and, if fewer than
 * `writers` batches are in flight, leads one itself: it takes every record
 * waiting (up to max_batch, its own among them) into one batch, signs it
 * with one batch signature and commits it through the `append` function it
 * was given (the request layer's writer: the store, or Raft on a cluster);
 * else it waits until a leader has committed its record or it is woken to
 * lead the next batch. Concurrent calls share an append, so auditing costs
 * one commit per batch, not per call, and no thread hand-off: the caller's
 * own thread appends. `writers` batches in flight at most (a commit's
 * latency does not bound the throughput); records of different batches
 * may commit in either order. A failed append fails every record of its
 * batch.
 *
 * Thread-safety: cl_audit_record may be called from any thread;
 * cl_audit_close must not race with it (stop the front doors first). */
#ifndef CL_QUERY_AUDIT_RECORDER_H
#define CL_QUERY_AUDIT_RECORDER_H

#include <stddef.h>
#include <stdint.h>

#include "clinlog/v1/api.pb-c.h"
#include "clinlog/v1/system.pb-c.h"
#include "store/err.h"
#include "store/log.h"

/* Commits a signed batch; blocks until it is committed (or failed).
 * Returns 0 or a CL_E* code with err set. */
typedef int (*cl_audit_append_fn)(void *ctx, const Clinlog__V1__AppendBatch *b, cl_err *err);

typedef struct cl_audit_options {
  cl_log *log;               /* borrowed: its log key signs the records */
  cl_audit_append_fn append; /* required */
  void *ctx;                 /* append's */
  size_t max_batch;          /* records per append; 0: 256 */
  size_t writers;            /* batches in flight at most; 0: 2 (at most 16) */
} cl_audit_options;

typedef struct cl_audit cl_audit;

/* *out returned-owned (cl_audit_close). Errors: CL_EINVAL (no log key on
 * this node, no append), CL_ENOMEM. */
int cl_audit_open(const cl_audit_options *o, cl_audit **out, cl_err *err);

/* Refuses new records (CL_EUNAVAILABLE), waits for the batches in flight
 * and the records handed over (their callers commit them), and frees.
 * NULL is a no-op. */
void cl_audit_close(cl_audit *a);

/* Records r (borrowed; the recorder sets nothing in it) as an
 * AccessRecorded event of "$audit" occurring now, and returns once it is
 * committed. 0, or: CL_EUNAVAILABLE (closing), CL_ENOMEM, or the append's
 * error for the batch it was in (err says which). */
int cl_audit_record(cl_audit *a, const Clinlog__V1__AccessRecorded *r, cl_err *err);

/* The outcome of an asynchronous record: err->code 0 (committed), or as
 * cl_audit_record's errors. err is valid during the call. */
typedef void (*cl_audit_done_fn)(void *ctx, const cl_err *err);

/* As cl_audit_record without waiting for the commit: packs r (borrowed,
 * not kept) and queues it; when fewer than `writers` batches are in
 * flight, this thread leads the next batch itself and so returns after its
 * commit. Returns 0 when queued: done(ctx, ...) then runs exactly once,
 * from the thread that committed the record's batch (perhaps this one,
 * before the return), after the record's outcome is known and without the
 * recorder's lock (it may record again). Else CL_EUNAVAILABLE (closing) or
 * CL_ENOMEM, and done never runs. For a caller that must not hold a thread
 * while its record commits (the gRPC face: a worker per call in flight). */
int cl_audit_record_async(cl_audit *a, const Clinlog__V1__AccessRecorded *r, cl_audit_done_fn done,
                          void *ctx, cl_err *err);

typedef struct cl_audit_stats {
  uint64_t records;  /* committed */
  uint64_t batches;  /* appends that committed */
  uint64_t failed;   /* records whose append failed */
  uint64_t max_seen; /* the largest batch so far */
} cl_audit_stats;

void cl_audit_get_stats(cl_audit *a, cl_audit_stats *st);

#endif

/* The `audit` projection: indexes of the audit trail, the AccessRecorded
 * events a node writes into stream "$audit" for every call it serves
 * (query/audit/recorder.h), so an auditor can ask who touched a patient's
 * data, what a principal did, and what happened in a window of time (an
 * accounting of disclosures), without reading the whole log.
 *
 *   | family    | key                                        | value                    |
 *   |-----------|--------------------------------------------|--------------------------|
 *   | time      | at u64 BE || seq u64 BE                    | summary, sealed under    |
 *   | patient   | hash("p:" patient id)[32] || at || seq     | the data key of "$audit" |
 *   | principal | hash("u:" principal id)[32] || at || seq   | (the same in all three)  |
 *   | seq       | seq u64 BE                                 | at u64 BE (plain)        |
 *
 * `at` is the event's occurred_at (the time the recorder stamped on the
 * call) in nanoseconds since the epoch, 0 for a time before it; `seq` the
 * event's position in the log. The summary is 1 byte of format (1), the
 * keyed hash of the principal id [32] (of "" when the call proved none) and
 * the outcome code ("0", "4", "8", "12"; at most 15 bytes): what the
 * queries filter on without reading the log. `seq` maps a record's seq to
 * its `at`, for resuming after a record (cl_audit_filter.after_seq).
 *
 * Keys hold no plaintext identifiers: patient and principal ids appear only
 * as keyed hashes (cl_proj_hash, one domain letter per kind of id so equal
 * strings of two kinds never share a key); times and seqs are what every
 * record's plaintext header says already (its seq and commit time).
 *
 * The audit trail outlives what it is about: erasing a patient's stream
 * (StreamErased, crypto-shredding) does not remove the audit records that
 * name the patient, nor their index entries. Those are sealed under the
 * data key of "$audit", a system stream that is never erased, because an
 * accounting of disclosures must stay answerable after the data is gone
 * (HIPAA keeps it six years); the records themselves name the patient in
 * "$audit", which the store never shreds either.
 *
 * Folded: AccessRecorded events of "$audit" only (the store lets no other
 * event into "$audit", and AccessRecorded into no other stream; both are
 * checked again here). The fold reads events sealed (cl_projection's
 * sealed_reads) and decrypts only the AccessRecorded ones.
 *
 * Thread-safety: queries may run from any number of threads beside the
 * projection's runner; they read the committed state, which may lag the
 * log (cl_runner_wait for a seq first, to read what was just recorded). */
#ifndef CL_QUERY_AUDIT_VIEW_H
#define CL_QUERY_AUDIT_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include "clinlog/v1/event.pb-c.h"
#include "query/runner.h"

/* The projection definition, for cl_runner_start. */
extern const cl_projection cl_audit_view_projection;

/* What to list. Every member is optional (NULL, "" or 0: no condition);
 * the conditions given must all hold. */
typedef struct cl_audit_filter {
  const char *patient;   /* records naming this patient among `patients` */
  const char *principal; /* records whose principal_id is this */
  int64_t since_ns;      /* occurred_at >= since_ns (unix ns; 0: no lower bound) */
  int64_t until_ns;      /* occurred_at < until_ns (unix ns; 0: no upper bound) */
  const char *outcome;   /* AuditEvent outcome code: "0", "4", "8", "12" */
  uint64_t after_seq;    /* resume: records after the one at this seq, in the order
                            below (the *next_after of the page before; 0: from the
                            first). It must be a record this projection folded. */
  size_t limit;          /* at most this many records (0: no limit) */
} cl_audit_filter;

/* A record found: `ev` the decoded Event (ev->body_case is
 * CLINLOG__V1__EVENT__BODY_ACCESS_RECORDED; its event_id, occurred_at and
 * access_recorded are set) at log position `seq`. `ev` is a view valid
 * during the call. Return 0 to go on, 1 to stop (the query then returns 0
 * and *next_after names this record), or a negative CL_E* with err set to
 * end the query with that error. */
typedef int (*cl_audit_fn)(void *ctx, uint64_t seq, const Clinlog__V1__Event *ev, cl_err *err);

/* Lists the audit records matching f (borrowed), oldest first: in order of
 * occurred_at, then of seq (records of the same nanosecond in log order).
 * On one node the log's order is the recorder's clock's order, so this is
 * log order; across nodes a skewed clock moves a record to its stated time.
 * Each match is read back from `log` (decrypted, decoded) and handed to fn.
 *
 * Paging: *next_after (may be NULL) gets the seq of the last record handed
 * to fn when more may follow (f->limit reached with another match behind
 * it, or fn returned 1), and 0 when the matches ran out: pass it back as
 * f->after_seq for the next page. Records folded between two pages that
 * sort after the cursor appear on a later page; the rest do not move it.
 *
 * Cost: one index scan (the patient's, else the principal's, else the time
 * index) bounded by the time window; the other conditions are checked on
 * the sealed summaries, so only matches are read from the log.
 *
 * Errors: CL_EINVAL (f NULL, since_ns > until_ns, after_seq not a folded
 * audit record), CL_ECORRUPT (an index entry of the wrong shape, or one
 * pointing at something other than an AccessRecorded of "$audit"),
 * CL_ECRYPTO (a sealed summary tampered with), CL_EIO, CL_ENOMEM, and fn's
 * own errors. Records handed to fn before an error stay handed. */
int cl_audit_query(cl_proj *p, cl_log *log, const cl_audit_filter *f, cl_audit_fn fn, void *ctx,
                   uint64_t *next_after, cl_err *err);

#endif

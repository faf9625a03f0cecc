/* Strict barcode medication administration (docs/cds.md, "Strict mode"):
 * the five rights (cl_cds_bcma) checked before a MedicationAdministered is
 * written, so a wrong-patient, wrong-drug, wrong-dose, wrong-route or
 * wrong-time scan is refused instead of recorded (and then alerted on).
 *
 * The request layer calls it on the node that appends (the leader), with
 * the cds projection caught up to the log's head, when clinlogd runs with
 * --bcma-strict. Reads the projection; writes nothing.
 *
 * Thread-safety: as the projection's reads (any thread); the KB is shared
 * read-only. */
#ifndef CL_QUERY_CDS_GATE_H
#define CL_QUERY_CDS_GATE_H

#include <stdint.h>

#include "clinlog/v1/api.pb-c.h"
#include "query/cds/kb.h"
#include "store/err.h"
#include "store/log.h"
#include "store/proj.h"

/* 1 if batch b (borrowed) holds an event the gate checks: a
 * MedicationAdministered in a "patient-<id>" stream, not NOT_DONE, with a
 * scanned wristband or product barcode. Events that do not decode are
 * left to the store (which refuses them). */
int cl_cds_gate_wants(const Clinlog__V1__AppendBatch *b);

/* Checks each such event of b against its patient's state in p (the cds
 * projection's, over `log`) with the batch's earlier events of the same
 * stream applied first (an order and its administration in one batch),
 * at the event's occurred_at (else now_ns). 0: every right holds.
 * CL_EPRECOND with err->msg naming the event and the right that failed:
 * "events[1]: barcode administration refused, wrong patient (bcma:
 * patient): <the finding's detail>". Other errors: those of loading the
 * state (CL_EERASED, CL_ECRYPTO, CL_EIO, CL_ENOMEM). */
CL_MUST_CHECK int cl_cds_gate_check(cl_proj *p, cl_log *log, const cl_kb *kb,
                                    const Clinlog__V1__AppendBatch *b, int64_t now_ns,
                                    cl_err *err);

#endif

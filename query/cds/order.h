/* Cds.CheckOrder's checking (proto/clinlog/v1/cds.proto): draft medication
 * orders of a CheckOrderRequest checked by the medication checker
 * (check.h) against one patient's state, without writing anything. Pure:
 * no I/O, no clock (the caller passes the time), no global state. The gRPC
 * face (adapters/grpc/svc_cds.c) loads the state from the cds projection
 * (cl_cds_patient_load), authorizes, records and answers.
 *
 * Each draft becomes a MedicationPrescribed (prescription_id = its
 * order_id, medication = its drug, dosage[0] = dose, route and frequency,
 * per_day as QD/BID/TID/QID or Q<24/n>H) applied at `now_ns`: first the
 * other_drafts (context: their findings are not reported), then the
 * orders in turn, so each order is checked against the patient's active
 * medications and allergies, the other drafts and the orders before it.
 * A draft's checker event id is "ordr" followed by its index (big-endian,
 * bytes 12..15), so an implicated id leads back to the draft; any other
 * implicated id is an event of the patient's stream in the log.
 *
 * Thread-safety: none needed (no state); the KB is shared read-only. */
#ifndef CL_QUERY_CDS_ORDER_H
#define CL_QUERY_CDS_ORDER_H

#include <stddef.h>
#include <stdint.h>

#include "clinlog/v1/cds.pb-c.h"
#include "query/cds/check.h"
#include "query/cds/kb.h"
#include "store/err.h"

#define CL_CDS_ORDER_MAX_DRAFTS 64 /* orders + other_drafts of one request */
#define CL_CDS_ORDER_ID_MAX 64     /* bytes of an order_id */

/* Checks req (borrowed) before anything is read: patient_id present (at
 * most 100 bytes, no '/'), at least one order, at most
 * CL_CDS_ORDER_MAX_DRAFTS drafts with distinct order_ids, each with a drug
 * code in RxNorm or NDC, dose_value and dose_unit together (a positive
 * decimal, a known unit), a known route, per_day 0-24 (dividing 24 above
 * 4) and not with frequency; weight_kg 0 or 0.1-700. Errors: CL_EINVAL
 * with err->msg naming the field ("orders[1].dose_unit: ..."), CL_ETOOBIG
 * (too many drafts). */
CL_MUST_CHECK int cl_cds_order_validate(const Clinlog__V1__CheckOrderRequest *req, cl_err *err);

/* Applies req's drafts (validate it first) to st (borrowed, changed:
 * pass a state loaded for this call) at now_ns and packs the
 * CheckOrderResponse: the findings each order raises (as_of_seq and
 * kb_version set as given). On success *out (*n bytes) is returned-owned
 * (free()) and *nfindings (may be NULL) their count. Errors: CL_EINVAL
 * (req not validated), CL_ETOOBIG (the patient keeps too many orders),
 * CL_ENOMEM. On error nothing is returned; st may hold some drafts. */
CL_MUST_CHECK int cl_cds_order_check(const cl_kb *kb, cl_cds_patient *st,
                                     const Clinlog__V1__CheckOrderRequest *req, int64_t now_ns,
                                     uint64_t as_of_seq, uint8_t **out, size_t *n,
                                     size_t *nfindings, cl_err *err);

#endif

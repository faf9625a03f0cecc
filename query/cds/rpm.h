/* Remote patient monitoring: a pure, deterministic function from one
 * patient's monitoring state and one event to the alerts it raises, over
 * the knowledge base's RPM rules (kb.h, "remote patient monitoring"). No
 * I/O, no clock: the same events in the same order on fresh states give
 * byte-identical findings with the same keys (check.h's key derivation:
 * trigger event id and rule id), so a rebuild appends nothing twice. The
 * medication checker's state (check.h) holds one of these per patient,
 * created at the patient's first RPM event, and cl_cds_apply hands it the
 * events below.
 *
 *   | event                  | does                                              |
 *   |------------------------|---------------------------------------------------|
 *   | DeviceReadingRecorded  | each LOINC value (the code's value, each          |
 *   |                        | component's) against the vital rules of its code, |
 *   |                        | converted to the rule's unit; body weight against |
 *   |                        | the weight-gain rules; last contact               |
 *   | DeviceStatusReported   | battery against device-battery; last contact      |
 *   | DispenserEventRecorded | missed/skipped doses of a prescription in the     |
 *   |                        | window against adherence (taken/late resets);     |
 *   |                        | last contact                                      |
 *   | ObservationRecorded    | NEWS2 parameters (with DeviceReadingRecorded):    |
 *   |                        | EARLY_WARNING at the RCP triggers (rpm_news2.c,   |
 *   |                        | when the KB has a news2 line), and the score to   |
 *   |                        | store (cl_cds_findings.news2) when a complete set |
 *   |                        | scores differently from the last one stored, or a |
 *   |                        | news2 window after it                             |
 *   | RiskScoreRecorded      | RISK_SCORE over its threshold (risk.c)            |
 *   | AlertOverridden,       | closes the open alert it names (cl_rpm_close)     |
 *   | AlertAcknowledged      |                                                   |
 *
 * A vital value measured before the newest value of its code already
 * folded (a late, out-of-order reading) neither opens nor closes its
 * conditions: they follow the newest measurement (rpm_int.h, rpm_vlast).
 * Readings with status entered-in-error or cancelled are ignored; a value
 * in a unit that cannot be converted to the rule's raises nothing and is
 * counted (cl_rpm_counts). A value equal to a threshold does not alert.
 *
 * No flooding: each alert opens a *condition* (a key per patient: the vital
 * or weight-gain rule id, "battery:<device>", "adherence:<prescription>",
 * "silent:<device>", "news2:<band>", "risk:<model>"); while it is open the same condition raises nothing.
 * It closes when a reading is back in range (battery at or above the
 * limit, a taken dose, a contact from a silent device) or when the alert is
 * overridden (and, once it lands, acknowledged). Of several rules of one
 * code and direction crossed at once (glucose < 70 and < 54), only the most
 * extreme alerts; the others open silently under its key (so the reading
 * drifting back from 50 to 60 does not alert again).
 *
 * Device silence is the absence of events, which no fold can see: the
 * state keeps, per device, a *watch* (deadline = last contact +
 * device-silent seconds, and the key of the DEVICE_SILENT finding it
 * would raise), and the projection indexes the watches so the leader's
 * emitter can raise them when its clock passes a deadline (proj.h).
 * Folding that IssueDetected (cl_rpm_silence_folded) opens "silent:<dev>"
 * and disarms the watch; the device's next contact closes it and re-arms.
 *
 * Bounds: CL_RPM_MAX_OPEN conditions, CL_RPM_MAX_DEVICES devices,
 * CL_RPM_MAX_WEIGHTS weights in the last 31.5 days, CL_RPM_MAX_RX
 * prescriptions with CL_RPM_MAX_MISSES misses each. Past a bound the
 * oldest entry is dropped (a weight, a miss) or the event is not tracked
 * (a device or prescription beyond the bound; a device id or prescription
 * id longer than CL_RPM_ID_MAX - 1): counted, never an error.
 *
 * Thread-safety: a cl_rpm_patient belongs to one thread at a time. */
#ifndef CL_QUERY_CDS_RPM_H
#define CL_QUERY_CDS_RPM_H

#include <stddef.h>
#include <stdint.h>

#include "clinlog/v1/event.pb-c.h"
#include "query/cds/check.h"
#include "query/cds/kb.h"
#include "store/err.h"

#define CL_RPM_MAX_OPEN 64
#define CL_RPM_MAX_DEVICES 16
#define CL_RPM_MAX_WEIGHTS 64
#define CL_RPM_MAX_RX 16
#define CL_RPM_MAX_MISSES 64
#define CL_RPM_MAX_CODES 32 /* vital codes whose latest measurement time is kept */
#define CL_RPM_ID_MAX 64 /* device and prescription ids, with the NUL */
#define CL_LOINC "http://loinc.org"

typedef struct cl_rpm_patient cl_rpm_patient;

/* A new, empty state. *out returned-owned (cl_rpm_patient_free). Errors:
 * CL_ENOMEM. */
CL_MUST_CHECK int cl_rpm_patient_new(cl_rpm_patient **out, cl_err *err);
void cl_rpm_patient_free(cl_rpm_patient *st);

/* Applies event `ev` (borrowed; bodies other than the table's are ignored)
 * with id event_id at at_ns (Event.occurred_at) to st, appending findings
 * to out (not reset). Every bound is handled by dropping or not tracking
 * (counted). Errors: CL_ENOMEM (a list could not grow): st misses what it
 * should hold and every later apply fails too; free it. */
CL_MUST_CHECK int cl_rpm_apply(const cl_kb *kb, cl_rpm_patient *st, const Clinlog__V1__Event *ev,
                               const uint8_t event_id[16], int64_t at_ns, cl_cds_findings *out,
                               cl_err *err);

/* Closes the open condition(s) whose alert has key `issue` (the
 * IssueDetected's event id). Returns how many closed. The one place an
 * alert is closed by a person (AlertOverridden, AlertAcknowledged). */
size_t cl_rpm_close(cl_rpm_patient *st, const uint8_t issue[16]);

/* A device's silence watch. */
typedef struct cl_rpm_watch {
  int armed;           /* 0: no deadline (never seen, silent already, or no rule) */
  int64_t deadline_ns; /* last contact + device-silent seconds */
  uint8_t key[16];     /* the DEVICE_SILENT finding's key */
} cl_rpm_watch;

/* The watch of `device_id` (borrowed) in st (not armed if unknown). */
void cl_rpm_watch_get(const cl_rpm_patient *st, const char *device_id, cl_rpm_watch *w);
/* The device id of the event's body (view into ev), or NULL: the device a
 * watch may change for when ev is applied. */
const char *cl_rpm_event_device(const Clinlog__V1__Event *ev);
/* Appends to out the DEVICE_SILENT finding the watch of `device_id` will
 * raise (trigger = the last contact's event id; key = its watch key;
 * nothing if not armed). */
void cl_rpm_silent_finding(const cl_kb *kb, const cl_rpm_patient *st, const char *device_id,
                           cl_cds_findings *out);
/* An IssueDetected with event id `key` was folded: if it is the finding
 * of a device's armed watch, that device goes silent (condition
 * "silent:<device>" opens under the key, the watch disarms), its id is
 * copied to device (CL_RPM_ID_MAX bytes) and *deadline_ns is the disarmed
 * deadline; returns 1. Else 0 and nothing changes. -1: out of memory (as
 * cl_rpm_apply's CL_ENOMEM). */
int cl_rpm_silence_folded(cl_rpm_patient *st, const uint8_t key[16], char device[CL_RPM_ID_MAX],
                          int64_t *deadline_ns);

/* The NEWS2 score to store, as an ObservationRecorded and the storage it
 * points into (cl_rpm_news2_fill). */
typedef struct cl_rpm_news2_obs {
  Clinlog__V1__ObservationRecorded msg;
  Clinlog__V1__CodeableConcept code;
  Clinlog__V1__Code coding, category, *codingp, *categoryp;
  Clinlog__V1__Quantity total;
  Google__Protobuf__Timestamp effective;
  Clinlog__V1__Component comp[CL_NEWS2_NPARAMS], *compp[CL_NEWS2_NPARAMS];
  Clinlog__V1__Code comp_code[CL_NEWS2_NPARAMS];
  Clinlog__V1__Quantity comp_value[CL_NEWS2_NPARAMS];
  char observation_id[40];    /* "news2-" + hex of the key */
  char values[CL_NEWS2_NPARAMS][4], total_value[4];
  char note[640];
} cl_rpm_news2_obs;

/* Fills out->msg from rec (a complete score, set by cl_rpm_apply):
 * observation_id "news2-<hex key>", code SNOMED CT 1104051000000101 (RCP
 * NEWS2 total score), category survey, value the total in "{score}",
 * status final, effective the newest value's time, one component per
 * parameter (its SNOMED CT sub-score code, per SpO2 scale, and its score
 * in "{score}"), and a note giving each parameter's value and score, the
 * clinical risk, the response and the monitoring frequency (RCP charts 2
 * and 4). out->msg points into rec and out: valid while both live
 * unchanged. Cannot fail. */
void cl_rpm_news2_fill(const cl_cds_news2_rec *rec, cl_rpm_news2_obs *out);

/* Counts, for tests and status. */
typedef struct cl_rpm_counts {
  size_t open, devices, weights, rx;
  uint64_t unconverted; /* readings whose unit could not be converted */
  uint64_t untracked;   /* events past a bound (device, prescription, open set) */
} cl_rpm_counts;
void cl_rpm_get_counts(const cl_rpm_patient *st, cl_rpm_counts *c);
/* 1 if condition `cond` ("vital:8480-6:high:180", "silent:<dev>"...) is open. */
int cl_rpm_is_open(const cl_rpm_patient *st, const char *cond);

/* Serialization: the state travels inside the patient's checker state
 * (check.h, cl_cds_patient_serialize; format in check_state.c). */
void cl_rpm_set(cl_cds_patient *pt, cl_rpm_patient *st); /* transfers st; frees any old one */
cl_rpm_patient *cl_rpm_of(const cl_cds_patient *pt);     /* view, NULL until the first RPM event */

#endif

/* The medication checker: a pure, deterministic function from one patient's
 * medication state and one event to the problems that event raises, over
 * a knowledge base (query/cds/kb.h). No I/O, no clock, no global state: the
 * same events applied in the same order to a fresh state give byte-identical
 * findings with the same idempotency keys, so a replay or a leader change
 * never duplicates an IssueDetected. The cds projection (proj.h) feeds it
 * the committed events of each patient stream, and its emitter appends
 * each finding as an IssueDetected (cl_cds_issue_fill), using the
 * finding's key as the event id.
 *
 * State kept per patient (cl_cds_patient), all bounded:
 *
 *   | what                | from                                  | limit                      |
 *   |---------------------|---------------------------------------|----------------------------|
 *   | medication orders   | MedicationPrescribed (and dispenses   | CL_CDS_MAX_ORDERS; ended   |
 *   |                     | naming no known order), by            | orders dropped 7 days after|
 *   |                     | prescription_id; ingredients resolved | their end                  |
 *   |                     | through the KB, period, first dosage  |                            |
 *   | allergies           | AllergyRecorded, by allergy_id        | CL_CDS_MAX_ALLERGIES,      |
 *   |                     | (a later event replaces the state)    | CL_CDS_MAX_ALLERGENS each  |
 *   | administrations     | MedicationAdministered (given, single | CL_CDS_MAX_ADMINS, last    |
 *   |                     | ingredient, mass dose): for daily sums| 24 h; oldest dropped first |
 *   | weight, identifiers | cl_cds_patient_set_weight / _add_id   | CL_CDS_MAX_IDS             |
 *
 * An order is active at time t when it is not discontinued at t and t is not
 * after its end. Its start is Period.start, else the time it was applied;
 * its end is Period.end, else start + days_supply * (refills + 1) days,
 * else start + the longest Dosage.duration_days, else open.
 * MedicationDiscontinued ends it at `effective`, else at the time applied.
 * An order whose start is still ahead is active for interactions (it will be
 * taken) but not for barcode administration (right time).
 *
 * What each event is checked for (each check against the state BEFORE the
 * event; the state is updated after):
 *
 *   | event                  | checks                                          |
 *   |------------------------|-------------------------------------------------|
 *   | MedicationPrescribed   | interactions and duplicate therapy against every|
 *   |                        | other active order; allergies; single dose and  |
 *   |                        | (frequency known) daily dose of Dosage[0]       |
 *   | MedicationDispensed,   | interactions, duplicates and allergies only if  |
 *   | MedicationAdministered | no active order holds the same ingredients (an  |
 *   |                        | order was checked when placed and when an       |
 *   |                        | allergy arrived: checking each fill and dose    |
 *   |                        | again would repeat its alerts)                  |
 *   | MedicationAdministered | BCMA five rights (cl_cds_bcma) if a wristband or|
 *   |                        | product was scanned; dose given against the     |
 *   |                        | single maximum; the last 24 h total against the |
 *   |                        | daily maximum. Status NOT_DONE checks nothing.  |
 *   | AllergyRecorded        | every active order against the new allergy      |
 *   | MedicationDiscontinued | nothing (state only)                            |
 *   | DeviceReadingRecorded, | remote patient monitoring, NEWS2 and outside    |
 *   | ObservationRecorded,   | risk scores (rpm.h), on the patient's monitoring|
 *   | DeviceStatusReported,  | state, created at its first such event          |
 *   | DispenserEventRecorded,|                                                 |
 *   | RiskScoreRecorded,     |                                                 |
 *   | AlertOverridden,       |                                                 |
 *   | AlertAcknowledged      |                                                 |
 *
 * Rules, codes (HL7 v3 ActCode, checked against the THO value sets
 * ActDetectedIssueCode / DosageProblemDetectedIssueCode) and severities:
 *
 *   | kind        | rule_id                          | code      | severity                  |
 *   |-------------|----------------------------------|-----------|---------------------------|
 *   | interaction | the KB interaction id            | DRG       | contraindicated, major:   |
 *   |             |                                  |           | HIGH; moderate: MODERATE; |
 *   |             |                                  |           | minor: LOW                |
 *   | allergy     | allergy:<group/class or RxCUI>   | ALGY      | same ingredient or member |
 *   |             |                                  |           | of the allergen class:    |
 *   |             |                                  |           | HIGH; cross-reactive group|
 *   |             |                                  |           | member: MODERATE, HIGH if |
 *   |             |                                  |           | criticality is high       |
 *   | duplicate   | dup:<class> / dup:<RxCUI>        | DUPTHPCLS | MODERATE                  |
 *   |             |                                  | DUPTHPGEN |                           |
 *   | dose        | dose:<RxCUI>:<route>:single|daily| DOSEH     | HIGH                      |
 *   |             | (per-kg limit, weight known)     | DOSEHINDW | HIGH                      |
 *   |             | ...:weight (per-kg, no weight)   | DOSE      | LOW: the limit could not  |
 *   |             |                                  |           | be checked                |
 *   | BCMA        | bcma:patient|drug|dose|route|time| ISSUE     | HIGH; time MODERATE       |
 *
 * (v3 has no barcode-mismatch code: BCMA findings carry the root "ISSUE"
 * and the kind ISSUE_KIND_BCMA_MISMATCH says what they are.)
 *
 * Dose units: mg, g, mcg (and UCUM "ug"); other units (mL, tablets) are not
 * checked. Dose checks apply only to single-ingredient drugs (the quantity
 * of a combination product is not an amount of one ingredient) and to routes
 * the KB names (HL7 v2 table 0162 and SNOMED CT route codes are mapped). The
 * daily total adds every route's administrations of the ingredient in
 * (t - 24 h, t] and compares it with this route's daily maximum.
 *
 * The idempotency key of a finding is the first 16 bytes of BLAKE2b-256
 * ("cds1" || trigger event id || rule_id || NUL || other event id or 16
 * zero bytes): the same event checked against the same state always gets
 * the same key, and two findings of one event differ in rule or partner.
 * Findings of one event are unique by key.
 *
 * Thread-safety: a cl_cds_patient belongs to one thread at a time; the KB
 * may be shared (it is immutable). */
#ifndef CL_QUERY_CDS_CHECK_H
#define CL_QUERY_CDS_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "clinlog/v1/event.pb-c.h"
#include "query/cds/kb.h"
#include "query/cds/news2.h"
#include "store/err.h"

#define CL_CDS_MAX_ORDERS 256   /* orders kept per patient (active or recently ended) */
#define CL_CDS_MAX_ALLERGIES 64 /* allergies kept per patient */
#define CL_CDS_MAX_ALLERGENS 8  /* allergen codes kept per allergy */
#define CL_CDS_MAX_ADMINS 512   /* administrations kept (the last 24 h) */
#define CL_CDS_MAX_IDS 8        /* wristband identifiers besides the patient id */
#define CL_CDS_MAX_FINDINGS 32  /* findings one event reports; more are counted */
#define CL_CDS_MAX_IMPLICATED 2 /* the trigger and the other order or allergy */

/* A coding of AllergyRecorded.substance in this system names a KB
 * allergy-group or class ("penicillin-allergy", "nsaids"). */
#define CL_CDS_KB_NAME_SYSTEM "urn:clinlog:cds-kb"
#define CL_CDS_ACTCODE "http://terminology.hl7.org/CodeSystem/v3-ActCode"

typedef struct cl_cds_patient cl_cds_patient;

/* One problem found. Every string is a NUL-terminated array inside the
 * struct (possibly truncated, never split inside a UTF-8 sequence) or, for
 * `code`, `kb_version` and `source`, a view valid until cl_kb_free of the KB
 * used (or static). */
typedef struct cl_cds_finding {
  int kind;               /* Clinlog__V1__IssueKind */
  int severity;           /* Clinlog__V1__IssueSeverity */
  const char *code;       /* v3 ActCode (static) */
  const char *kb_version; /* cl_kb_version (view) */
  const char *source;     /* KB source key, or "clinlog-bcma" / "kb" (view) */
  char rule_id[96];       /* see the table above */
  char detail[768];       /* for the clinician: drugs by KB name, no PHI */
  char mitigation[384];   /* suggested action */
  uint8_t implicated[CL_CDS_MAX_IMPLICATED][16]; /* [0] trigger, [1] other */
  size_t n_implicated;                           /* 1 or 2 */
  uint8_t key[16];                               /* idempotency key: the IssueDetected's event id */
} cl_cds_finding;

/* A NEWS2 score to store as an ObservationRecorded (rpm.h, "NEWS2 on the
 * log"; cl_rpm_news2_fill builds it): a complete set of the seven
 * parameters that scores differently from the last one stored, or whose
 * newest value is a news2 window or more after it. */
typedef struct cl_cds_news2_rec {
  int set;                     /* 0: nothing to store for this event */
  uint8_t key[16];             /* the ObservationRecorded's event id */
  uint8_t trigger[16];         /* the event that completed or changed the set */
  uint8_t from[CL_NEWS2_NPARAMS][16]; /* the event that gave each value */
  double value[CL_NEWS2_NPARAMS];     /* each value in the chart's unit */
  int64_t effective_ns;        /* when the newest value was measured */
  cl_news2_input in;
  cl_news2_result r;
} cl_cds_news2_rec;

/* The findings of one event, caller-allocated (about 40 KB: allocate it,
 * do not put it on a small stack). */
typedef struct cl_cds_findings {
  size_t n;         /* findings in f[] */
  size_t truncated; /* further findings not kept */
  cl_cds_finding f[CL_CDS_MAX_FINDINGS];
  cl_cds_news2_rec news2; /* a score to store, besides the findings */
} cl_cds_findings;

/* A new, empty state for patient `patient_id` (borrowed; copied; the
 * wristband matches it). On success *out is returned-owned
 * (cl_cds_patient_free). Errors: CL_EINVAL (NULL or empty id), CL_ENOMEM. */
CL_MUST_CHECK int cl_cds_patient_new(const char *patient_id, cl_cds_patient **out, cl_err *err);
void cl_cds_patient_free(cl_cds_patient *st);
/* The patient's weight in kg, for per-kg dose limits; <= 0 or non-finite:
 * unknown (the default). */
void cl_cds_patient_set_weight(cl_cds_patient *st, double kg);
/* Another identifier a scanned wristband may carry (an MRN), borrowed and
 * copied. Errors: CL_EINVAL (empty), CL_ETOOBIG (CL_CDS_MAX_IDS already),
 * CL_ENOMEM. On error the state is unchanged. */
CL_MUST_CHECK int cl_cds_patient_add_id(cl_cds_patient *st, const char *id, cl_err *err);
/* Counts, for tests: orders kept, of them active at t, allergies, and
 * administrations kept. */
void cl_cds_patient_counts(const cl_cds_patient *st, int64_t t_ns, size_t *orders, size_t *active,
                           size_t *allergies, size_t *admins);

/* Checks event `ev` (borrowed; its body decides, other bodies are ignored)
 * with id `event_id` (16 bytes) against `st`, then applies it to `st`.
 * `at_ns` is the event's time in ns since the epoch (the caller passes
 * Event.occurred_at); body times (Period.start, administered_at, effective,
 * dispensed_at) take precedence where set. out is reset and filled (may be
 * empty). Errors: CL_EINVAL (a NULL argument), CL_ETOOBIG (the patient
 * already keeps CL_CDS_MAX_ORDERS orders or CL_CDS_MAX_ALLERGIES allergies
 * and none has ended), CL_ENOMEM. On error the state is unchanged and out
 * is empty. Not thread-safe for one st. */
CL_MUST_CHECK int cl_cds_apply(const cl_kb *kb, cl_cds_patient *st, const Clinlog__V1__Event *ev,
                               const uint8_t event_id[16], int64_t at_ns, cl_cds_findings *out,
                               cl_err *err);

/* A checker event id for the k-th of the things a caller checks that are
 * not in the log (CDS Hooks' resources, Cds.CheckOrder's drafts): the
 * 4-byte `tag`, zeros, and k big-endian in bytes 12..15, so an implicated
 * id in a finding leads back to the thing. Cannot fail. */
void cl_cds_local_id(const char tag[4], size_t k, uint8_t id[16]);
/* The k of such an id with `tag`, if below n; else -1 (an event of the log). */
long cl_cds_local_index(const char tag[4], const uint8_t id[16], size_t n);

/* The five rights of one administration `a` (borrowed) with id event_id,
 * given at a->administered_at or else at_ns, against st, without changing
 * st. Appends to out (not reset). Checks, each failing as one finding:
 *   patient  scanned_wristband_id equals the patient id or an added id;
 *   drug     the scanned product barcode (an NDC) or else the medication's
 *            first resolvable RxNorm/NDC coding has the same ingredient set
 *            as the order: the order named by prescription_id (it must
 *            exist), else any order active at the time with those
 *            ingredients; codes the KB cannot resolve must be equal;
 *   dose     dose_given equals the order's Dosage[0].dose, after mg/g/mcg
 *            conversion (relative tolerance 1e-6), or in the same unit;
 *            not checked when the order states no dose or the drug is wrong;
 *   route    the route equals the order's (after v2/SNOMED mapping); not
 *            checked when the order states none;
 *   time     the time is within the order's start and end and before any
 *            discontinuation. Due times within the day (BID at 09:00 and
 *            21:00) are not checked: orders carry no schedule.
 * With no order to compare with, only patient and drug are checked. Cannot
 * fail. Not thread-safe for one st. */
void cl_cds_bcma(const cl_kb *kb, const cl_cds_patient *st,
                 const Clinlog__V1__MedicationAdministered *a, const uint8_t event_id[16],
                 int64_t at_ns, cl_cds_findings *out);

/* The state as bytes (format in check_state.c, versioned), for a
 * projection to store: *out returned-owned (free()). The bytes hold the
 * patient id and medication codes: seal them. Errors: CL_ENOMEM (nothing
 * to free then). Not thread-safe for one st. */
CL_MUST_CHECK int cl_cds_patient_serialize(const cl_cds_patient *st, uint8_t **out, size_t *n,
                                           cl_err *err);
/* The state `p` (n bytes, borrowed) holds: it checks every later event as
 * the serialized state would, and serializes to the same bytes. *out
 * returned-owned (cl_cds_patient_free). Errors: CL_ECORRUPT (not a state
 * of a known format, a bound exceeded, trailing bytes), CL_ENOMEM. */
CL_MUST_CHECK int cl_cds_patient_parse(const uint8_t *p, size_t n, cl_cds_patient **out,
                                       cl_err *err);

/* An IssueDetected and the storage it points into. */
typedef struct cl_cds_issue {
  Clinlog__V1__IssueDetected msg;
  Clinlog__V1__Code code;
  Google__Protobuf__Timestamp detected_at;
  Clinlog__V1__Reference refs[CL_CDS_MAX_IMPLICATED];
  Clinlog__V1__Reference *refp[CL_CDS_MAX_IMPLICATED];
  char issue_id[33]; /* hex of the key */
} cl_cds_issue;

/* Fills out->msg from f: issue_id = hex of the key, kind, severity, code,
 * rule_id, rule_version = the KB version, detail, mitigation, implicated =
 * (stream, event id) of each implicated event, detected_at = at_ns.
 * out->msg points into f, `stream` and out: it is a view valid while all
 * three live unchanged. Cannot fail. */
void cl_cds_issue_fill(const cl_cds_finding *f, const char *stream, int64_t at_ns,
                       cl_cds_issue *out);

#endif

/* FHIR R4 JSON resources to catalog events: the write side of the FHIR
 * views (query/fhir/map_*.c), their mapping read backwards
 * (docs/adapters.md, "FHIR writes", has the table element by element).
 *
 *   Patient             PatientRegistered (a new patient) or
 *                       PatientDemographicsUpdated (every demographic field,
 *                       for a patient the resolver knows)
 *   Encounter           EncounterStarted, and EncounterEnded when its
 *                       status is finished
 *   Condition           ConditionDiagnosed
 *   AllergyIntolerance  AllergyRecorded
 *   Observation         ObservationRecorded
 *   MedicationRequest   MedicationPrescribed (status active)
 *   MedicationAdministration  MedicationAdministered
 *   MedicationDispense  MedicationDispensed
 *   Immunization        ImmunizationAdministered
 *   ServiceRequest      ServiceOrdered (status active, intent order)
 * Any other resourceType is refused (not-supported), as is any element the
 * event cannot hold exactly (so reading the resource back from the views
 * gives what was written, codes with their systems).
 *
 * Every event goes to the stream "patient-<patient id>" of the patient the
 * resource references (for a Patient: its own id). The business id of the
 * resource (condition_id, encounter_id...) is the value of its identifier
 * in system urn:clinlog:id when it has one (the views write it there, so an
 * export comes back with the same logical ids), else derived from the
 * resource's content; the view's logical id is cl_fhir_id of it.
 *
 * Event ids are derived (BLAKE2b-128 over the type, the business id, the
 * version the write is based on and the resource's canonical JSON): the
 * same write made twice is the same event id, which the store's idempotency
 * turns into a no-op. occurred_at is the resource's own clinical time
 * (effectiveDateTime, recordedDate, period.start...) or the options' now.
 * The mapping is otherwise a pure function of its inputs.
 *
 * Refusals fill a cl_fhirw_error: the FHIRPath of the element
 * (`Observation.valueQuantity.value`, `Bundle.entry[2].resource.subject`),
 * an OperationOutcome issue code and the reason, and the HTTP status a
 * FHIR server answers with (400: not JSON, not a resource, an element of
 * the wrong type or unknown; 422: a rule of the content, such as a code
 * outside its value set or a reference to an unknown patient).
 *
 * Memory: the mapper allocates from one arena per resource, released at
 * once after the events are packed; the packed events are returned-owned.
 * Thread-safety: no shared state. */
#ifndef CL_ADAPTERS_FHIR_FHIRW_H
#define CL_ADAPTERS_FHIR_FHIRW_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "query/fhir/map.h"
#include "store/err.h"

/* The resource types written, NULL-terminated (the CapabilityStatement's). */
extern const char *const cl_fhirw_types[];

/* Why a resource was refused. Plain value. */
typedef struct cl_fhirw_error {
  char expression[256]; /* FHIRPath of the element, "" for the input as a whole */
  char code[24];        /* OperationOutcome issue.code: structure, required, value,
                           code-invalid, not-supported, not-found, processing */
  char text[512];       /* the reason (no patient data beyond the offending value) */
  int status;           /* 400 or 422 */
} cl_fhirw_error;

/* Resolves a literal reference `ref` ("Patient/p1", "Encounter/<id>")
 * whose type is `type` to the business id of its target in the views
 * (for a Patient: its patient id) into bid (bidn bytes). 0, CL_ENOTFOUND
 * when there is no such resource, or another error (err set). */
typedef int (*cl_fhirw_resolve_fn)(void *ctx, const char *type, const char *id, char *bid,
                                   size_t bidn, cl_err *err);

/* The resource `type`/`id` as the views hold it now, parsed as
 * cl_fhirw_parse parses (numbers marked), into *out (returned-owned). 0,
 * CL_ENOTFOUND, or another error (err set). */
typedef int (*cl_fhirw_fetch_fn)(void *ctx, const char *type, const char *id, json_t **out,
                                 cl_err *err);

/* The Observation of this input that a DiagnosticReport's result
 * references by `ref` ("Observation/<id>", as an export writes a report's
 * lines; or a fullUrl) into *out (borrowed: valid during the mapping). The
 * caller has set it aside for that report (it is not written on its own),
 * and the report takes it as a result line, as if contained. The same for
 * the CoverageEligibilityRequest a CoverageEligibilityResponse's request
 * references ("CoverageEligibilityRequest/<id>" or a fullUrl): the pair is
 * one EligibilityChecked. 0, or CL_ENOTFOUND when the input holds no such
 * resource. */
typedef int (*cl_fhirw_line_fn)(void *ctx, const char *ref, const json_t **out);

typedef struct cl_fhirw_opts {
  const char *principal_id;  /* recorded_by.principal_id: the signer's principal (required) */
  const char *role;          /* recorded_by.role; NULL: "integration" */
  const char *on_behalf_of;  /* recorded_by.on_behalf_of (the caller a node writes for), or NULL */
  const char *source_system; /* Event.source_system; NULL: "fhir" */
  int64_t now_ns;            /* occurred_at of a resource that states no time of its own */
  const json_t *refs;        /* references this input defines (cl_fhirw_refs_add), or NULL */
  cl_fhirw_resolve_fn resolve; /* the views' resources, or NULL: none known */
  cl_fhirw_fetch_fn fetch; /* the views' resources whole (what a Claim's items are read from), or
                              NULL: none known */
  cl_fhirw_line_fn line;   /* a report's result lines given as Observations of the input (clinlog
                              ingest), and a response's request, or NULL: the lines must be
                              contained, a response's request on the server */
  int bulk; /* a load (clinlog ingest): a Patient is always a PatientRegistered (which the view
               takes as the whole record), so the same input gives the same events */
  void *ctx;
} cl_fhirw_opts;

/* One mapped event: the exact bytes to sign. */
typedef struct cl_fhirw_event {
  uint8_t *bytes; /* serialized clinlog.v1.Event */
  size_t len;
  uint32_t type;        /* event type code (Event.body field number) */
  uint8_t event_id[16]; /* as in the bytes */
} cl_fhirw_event;

typedef struct cl_fhirw_mapped {
  cl_fhirw_event *ev; /* n events (1 or 2), in order */
  size_t n;
  char type[40];           /* the resourceType */
  char id[CL_FHIR_ID_MAX]; /* the logical id the views give it */
  char bid[128];           /* its business id (a Patient: the patient id) */
  char patient_id[128];    /* the patient whose stream holds it */
  char stream[160];        /* "patient-<patient_id>" */
} cl_fhirw_mapped;

/* Parses FHIR JSON text (n bytes, borrowed) into *out (returned-owned:
 * json_decref), numbers kept as the exact text they were written in
 * (decimals: the fj.h FJ_DECIMAL_MARK form). 0, or CL_EMALFORMED with fe
 * (status 400, code structure) saying where, or CL_ENOMEM. */
CL_MUST_CHECK int cl_fhirw_parse(const char *text, size_t n, json_t **out, cl_fhirw_error *fe,
                                 cl_err *err);

/* The same for any JSON text (a JSON Patch is an array), marked alike. */
CL_MUST_CHECK int cl_fhirw_parse_json(const char *text, size_t n, json_t **out, cl_fhirw_error *fe,
                                      cl_err *err);

/* Maps one resource `res` (borrowed, as cl_fhirw_parse made it) with
 * options `o` (borrowed). `expr` (may be NULL) prefixes the element paths
 * of errors ("Bundle.entry[2].resource"; NULL: the resourceType). `put_id`
 * (may be NULL): the id of a PUT [type]/[id], which the resource's id must
 * match and the mapped logical id must equal (an existing resource, or a
 * Patient). `base_version` ("" or NULL on create): the version the write
 * replaces, folded into the event ids. On success *out is returned-owned
 * (cl_fhirw_mapped_free). On error *out is NULL and fe says why. Errors:
 * CL_EINVAL (no principal), CL_EMALFORMED (refused: fe), CL_ENOMEM, and
 * the resolver's. */
CL_MUST_CHECK int cl_fhirw_map(const json_t *res, const char *expr, const char *put_id,
                               const char *base_version, const cl_fhirw_opts *o,
                               cl_fhirw_mapped **out, cl_fhirw_error *fe, cl_err *err);

void cl_fhirw_mapped_free(cl_fhirw_mapped *m);

/* 1 if `res` (borrowed) says it was entered in error: `status`
 * entered-in-error, or for a Condition or AllergyIntolerance a
 * `verificationStatus` coding entered-in-error (never for a Patient). */
int cl_fhirw_entered_in_error(const json_t *res);

/* An update of the existing resource `cur` (borrowed, as the views serve
 * it at version base_version, parsed by cl_fhirw_parse) to entered-in-error
 * (`res`, borrowed): the EnteredInError event retracting `corrected` (16
 * bytes: the event that made cur's version), in cur's patient stream, its
 * reason res's statusReason.text if any. res must be cur apart from meta,
 * text, id, status, statusReason, verificationStatus and clinicalStatus
 * (else 422 business-rule: the retraction takes the resource as it is; a
 * changed value is a new resource). `corrected` NULL: cur is
 * entered-in-error already; the same check, and *out stays NULL (nothing
 * to write). `expr` as cl_fhirw_map's. On success *out is returned-owned
 * (cl_fhirw_mapped_free) or NULL. Errors: CL_EMALFORMED (fe), CL_ENOMEM. */
CL_MUST_CHECK int cl_fhirw_retract(const json_t *res, const json_t *cur,
                                   const uint8_t corrected[16], const char *expr,
                                   const char *base_version, const cl_fhirw_opts *o,
                                   cl_fhirw_mapped **out, cl_fhirw_error *fe, cl_err *err);

/* Records in `refs` (a JSON object) what a mapped resource may be
 * referenced as: "<type>/<logical id>" and, in a Bundle, its fullUrl
 * (may be NULL), each naming {type, bid, patient}. 0 or CL_ENOMEM. */
int cl_fhirw_refs_add(json_t *refs, const cl_fhirw_mapped *m, const char *full_url);

/* For the types other resources' views read (ChargeItem and Coverage for
 * a Claim, a Claim for its ClaimResponse): keeps a copy of `res`
 * (borrowed; its id set to m's) in the entry cl_fhirw_refs_add made for m,
 * so a later resource of the same input is checked against it as the
 * views will hold it. Other types, or no such entry: nothing. 0 or
 * CL_ENOMEM. */
int cl_fhirw_refs_keep(json_t *refs, const cl_fhirw_mapped *m, const json_t *res);

/* The business id of a resource as the views hold it (a Patient: its id;
 * else its identifier in urn:clinlog:id) into bid: 0, or CL_ENOTFOUND. */
int cl_fhirw_bid_of(const json_t *res, char *bid, size_t n);

/* The order resources of one input are mapped in, so that what others
 * reference comes first: Patient 0, Encounter 1, MedicationRequest,
 * Coverage (a Claim's) and ServiceRequest (a DiagnosticReport's order) 2,
 * anything else 3 (CL_FHIRW_RANKS ranks). */
#define CL_FHIRW_RANKS 4
int cl_fhirw_rank(const json_t *res);

/* A transaction Bundle's DiagnosticReports take their result lines along:
 * each Observation entry of `entries` (the Bundle's entry array, n
 * entries, changed in place) that a DiagnosticReport entry's result[j]
 * references by its fullUrl is copied into that report's contained
 * (id "bundle-line-<j>") and result[j] rewritten to reference it, as the
 * event holds the lines inline (fhirw_report.c). line_of[k] (n, caller's)
 * gets the index of the report entry that took entry k, and line_at[k] its
 * j; -1 for an entry no report took (an Observation referenced by two
 * reports goes to the first). 0, or CL_ENOMEM (entries then unchanged
 * or partly rewritten: refuse the Bundle). */
int cl_fhirw_bundle_lines(json_t *entries, long *line_of, long *line_at);

/* An export's (or a batch's) DiagnosticReports take their result lines
 * given as Observations of their own, and each CoverageEligibilityResponse
 * the CoverageEligibilityRequest its `request` references (by
 * "CoverageEligibilityRequest/<id>" or fullUrl: one EligibilityChecked
 * makes the pair; line_at 0, a second response on it refused with
 * shared_at 0), in the same way: among the n resources res[] (any may
 * be NULL) with their fullUrls full_url[] (any NULL), each Observation a
 * DiagnosticReport's result[j] references by "Observation/<id>" or by its
 * fullUrl goes to that report, line_of[k] (caller's, n) getting the
 * report's index and line_at[k] its j, -1 for a resource no report takes.
 * A report referencing a line an earlier one took gets shared_at[i] the
 * first such result index (refuse it: a line belongs to one report; its
 * other lines are still its, so none is written alone), else -1. *lines
 * (returned-owned: json_decref) maps the references of the lines taken
 * ("Observation/<id>", fullUrl) to them (references to res[k], which must
 * outlive it). The reports are then mapped with cl_fhirw_opts.line
 * answering from *lines; the lines are not written on their own. 0, or
 * CL_ENOMEM (*lines NULL). */
int cl_fhirw_pair_lines(const json_t *const *res, const char *const *full_url, size_t n,
                        long *line_of, long *line_at, long *shared_at, json_t **lines);

/* The refusal of `taker` (a DiagnosticReport or CoverageEligibilityResponse
 * that cl_fhirw_pair_lines gave shared_at `at`) into fe: its result[at] or
 * request is another's. `expr` prefixes the path as cl_fhirw_map's. */
void cl_fhirw_pair_refusal(const json_t *taker, long at, const char *expr, cl_fhirw_error *fe);

/* Fills fe (status, code, expression, printf-style text); returns
 * CL_EMALFORMED after setting err to "<expression>: <text>". */
int cl_fhirw_fail(cl_fhirw_error *fe, cl_err *err, int status, const char *code, const char *expr,
                  const char *fmt, ...) CL_PRINTF(6, 7);

/* An OperationOutcome (returned-owned) with one error issue from fe. */
json_t *cl_fhirw_outcome(const cl_fhirw_error *fe);

#endif

/* CDS Hooks 2.0 (https://cds-hooks.hl7.org/2.0/) over the medication
 * checker (check.h): the discovery document, a hook request parsed and
 * checked, the patient's FHIR resources (from the request's prefetch or
 * from the server's own views) and the draft orders turned into checker
 * events, findings turned into cards, and feedback parsed. Pure: JSON text
 * in, JSON text out, no I/O, no clock (the caller passes the time), no
 * global state; nothing here writes anything. The HTTP face
 * (adapters/http/http_cds.c) does the routing, the request layer's hooks,
 * the reads and the recording.
 *
 * Services (one per hook):
 *
 *   | id                        | hook         | checks                                   |
 *   |---------------------------|--------------|------------------------------------------|
 *   | clinlog-medication-select | order-select | the selected drafts (context.selections, |
 *   |                           |              | else all) against the active medications,|
 *   |                           |              | the allergies and the other drafts       |
 *   | clinlog-medication-sign   | order-sign   | every draft, in order, against the active|
 *   |                           |              | medications, allergies and earlier drafts|
 *   | clinlog-medication-review | patient-view | the active medications against each other|
 *   |                           |              | and the allergies                        |
 *
 * FHIR R4 JSON read (anything else in a resource is ignored):
 *   MedicationRequest: id, status (only "active" ones count; a draft counts
 *     whatever its status), medicationCodeableConcept.coding (RxNorm, NDC),
 *     authoredOn, dosageInstruction[].doseAndRate[0].doseQuantity
 *     (value, code or unit), .route.coding[0], .timing.code.coding[0].code
 *     (BID...) or .timing.repeat (frequency per period of 1 d, or every
 *     N h), dispenseRequest.validityPeriod, .expectedSupplyDuration (days),
 *     .numberOfRepeatsAllowed; subject.reference.
 *   AllergyIntolerance: id, clinicalStatus / verificationStatus codings
 *     (inactive, resolved, refuted, entered-in-error drop it), criticality,
 *     code.coding (RxNorm ingredient or product, NDC, or a KB group or class
 *     name in urn:clinlog:cds-kb), patient.reference.
 *   A resource whose subject or patient names another patient is ignored.
 *
 * Cards: one per finding whose trigger is a draft (patient-view: an active
 * medication), summary under 140 characters, detail (markdown), indicator
 * from the finding's severity (HIGH critical, MODERATE warning, LOW info),
 * source {label "clinlog knowledge base <version>", topic: the rule as a
 * Coding in urn:clinlog:cds-rule}, overrideReasons (CL_CDS_HOOKS_OVERRIDE),
 * and for a draft a suggestion deleting it (selectionBehavior
 * "at-most-one"), and extension {"clinlog-issue-id": the finding's
 * idempotency key in hex, the IssueDetected issue_id the checker's
 * projection gives the same finding}. A card's uuid is derived from the hookInstance and the
 * finding's idempotency key (the same request answers the same uuids). */
#ifndef CL_QUERY_CDS_HOOKS_H
#define CL_QUERY_CDS_HOOKS_H

#include <stddef.h>
#include <stdint.h>

#include "query/cds/kb.h"
#include "store/err.h"

#define CL_CDS_HOOKS_RULE_SYSTEM "urn:clinlog:cds-rule"
#define CL_CDS_HOOKS_OVERRIDE "urn:clinlog:cds-override-reason"
#define CL_CDS_HOOKS_MAX_DRAFTS 64     /* draft orders one request may carry */
#define CL_CDS_HOOKS_MAX_RESOURCES 512 /* medications + allergies considered */

enum cl_cds_hook {
  CL_CDS_HOOK_PATIENT_VIEW = 1,
  CL_CDS_HOOK_ORDER_SELECT = 2,
  CL_CDS_HOOK_ORDER_SIGN = 3,
};

/* The hook a service id answers (enum cl_cds_hook), 0 for an unknown id. */
int cl_cds_hooks_service(const char *id);
/* The discovery document (GET /cds-services), returned-owned (free()),
 * NULL when out of memory. */
char *cl_cds_hooks_discovery(void);

typedef struct cl_cds_hooks_req cl_cds_hooks_req;

/* Parses and checks a hook request for service `service_id` (body: len
 * bytes of JSON, borrowed). On success *out is returned-owned
 * (cl_cds_hooks_req_free). Errors: CL_ENOTFOUND (unknown service id),
 * CL_EINVAL with err->msg naming the field (not JSON, hook not the
 * service's, hookInstance, context.patientId, context.draftOrders not a
 * Bundle, a draft that is not a MedicationRequest with an id, too many
 * drafts, prefetch not an object), CL_ENOMEM. */
CL_MUST_CHECK int cl_cds_hooks_parse(const char *service_id, const char *body, size_t len,
                                     cl_cds_hooks_req **out, cl_err *err);
void cl_cds_hooks_req_free(cl_cds_hooks_req *r);
/* Views valid until cl_cds_hooks_req_free. */
const char *cl_cds_hooks_patient(const cl_cds_hooks_req *r);
const char *cl_cds_hooks_instance(const cl_cds_hooks_req *r);
int cl_cds_hooks_hook(const cl_cds_hooks_req *r);
/* What the prefetch lacks, which the caller reads from its own views:
 * *meds 1 if prefetch has no "medications" (a Bundle or resource), *allergies
 * likewise for "allergies". */
void cl_cds_hooks_needs(const cl_cds_hooks_req *r, int *meds, int *allergies);

/* Evaluates r with kb at now_ns. extra[i] (extra_len[i] bytes, borrowed)
 * are FHIR JSON resources or Bundles the caller read for what the prefetch
 * lacked (n_extra may be 0); unparseable ones are CL_EINVAL. On success
 * *out (returned-owned, free()) is the CDS Hooks response {"cards": [...]}
 * and *out_len its length; *n_cards (may be NULL) the number of cards.
 * Errors: CL_EINVAL, CL_ETOOBIG (more than CL_CDS_HOOKS_MAX_RESOURCES
 * resources), CL_ENOMEM. */
CL_MUST_CHECK int cl_cds_hooks_evaluate(const cl_kb *kb, const cl_cds_hooks_req *r,
                                        const char *const *extra, const size_t *extra_len,
                                        size_t n_extra, int64_t now_ns, char **out, size_t *out_len,
                                        size_t *n_cards, cl_err *err);

/* A finding's one line for people, as a card's summary: "<Kind>: <name>"
 * or "<Kind>: <name> with <other>" (other NULL or "": none; Kind from the
 * IssueKind: Interaction, Allergy, Duplicate therapy, Dose), cut to at most
 * 139 bytes on a UTF-8 boundary ending in "..." (out: cap bytes, at least
 * 140 for the whole line). Cannot fail. */
void cl_cds_summary(int kind, const char *name, const char *other, char *out, size_t cap);

/* One item of a feedback request (POST /cds-services/{id}/feedback). */
typedef struct cl_cds_feedback {
  char card[64];           /* the card's uuid */
  int overridden;          /* 1 overridden, 0 accepted */
  char reason_system[256]; /* overrideReason.reason, "" if none */
  char reason_code[64];
  char reason_display[160];
  char comment[512];  /* overrideReason.userComment */
  char timestamp[40]; /* outcomeTimestamp as sent */
  char accepted[64];  /* the first acceptedSuggestions[].id, "" if none */
} cl_cds_feedback;

/* Parses a feedback body {"feedback": [...]}: up to max items into out[]
 * (caller-allocated), their count into *n. Errors: CL_EINVAL naming the
 * field (not JSON, no feedback array, card, outcome not accepted or
 * overridden, outcomeTimestamp), CL_ETOOBIG (more than max). */
CL_MUST_CHECK int cl_cds_hooks_feedback_parse(const char *body, size_t len, cl_cds_feedback *out,
                                              size_t max, size_t *n, cl_err *err);

#endif

/* Internals of the FHIR writes mapper (fhirw.h), shared by fhirw.c (entry,
 * parsing, envelope, ids, arena), fhirw_types.c (FHIR datatypes to the
 * catalog's value types) and fhirw_res.c (the resource types). Only
 * adapters/fhir/fhirw*.c include this file.
 *
 * Every protobuf-c structure built for a resource lives in the context's
 * arena and is released at once after packing; strings point into the
 * parsed JSON (valid while it lives) or into the arena. Helpers that can
 * fail return 0 or CL_EMALFORMED/CL_ENOMEM after filling the context's
 * error. Element paths are built as the walk goes down: each helper gets
 * the path of the element it reads. */
#ifndef CL_ADAPTERS_FHIR_FHIRW_INT_H
#define CL_ADAPTERS_FHIR_FHIRW_INT_H

#include "adapters/fhir/fhirw.h"
#include "clinlog/v1/event.pb-c.h"
#include "query/fhir/fj.h"

typedef Google__Protobuf__Timestamp pb_ts;
typedef Clinlog__V1__Code pb_code;
typedef Clinlog__V1__CodeableConcept pb_cc;

typedef struct wblock wblock; /* an arena allocation (fhirw.c) */

typedef struct wctx {
  const cl_fhirw_opts *o;
  cl_fhirw_error *fe;
  cl_err *err;
  wblock *arena;
  const char *type;       /* resourceType */
  char root[200];         /* the resource's path: "Observation" or a prefix */
  const char *patient_id; /* the patient, once known */
  const char *bid;        /* the business id */
  const char *put_id;     /* the id of a PUT, or NULL */
  pb_ts *when;            /* occurred_at */
  Clinlog__V1__Event *ev[2];
  size_t nev;
  json_t *keep; /* JSON the events point into besides the input (w_keep), or NULL */
} wctx;

/* ---- arena, errors (fhirw.c) ---- */
void *w_alloc(wctx *c, size_t n); /* zeroed; NULL: out of memory (error set) */
char *w_printf(wctx *c, const char *fmt, ...) CL_PRINTF(2, 3);
/* Keeps j (transferred, also on error; NULL: nothing) alive as long as the
 * arena: for resources read besides the input (w_fetch) that the events
 * point into. 0 or CL_ENOMEM. */
int w_keep(wctx *c, json_t *j);
/* path + "." + key (or path + "[i]" when key is NULL), in the arena */
char *w_path(wctx *c, const char *path, const char *key, long i);
int w_fail(wctx *c, int status, const char *code, const char *path, const char *fmt, ...)
    CL_PRINTF(5, 6);

/* ---- reading members (fhirw_types.c); path is the object's ---- */

/* Refuses any member of o not in `keys` (NULL-terminated); "resourceType",
 * "id", "meta" and "text" are always allowed at the resource root (`root`). */
int w_only(wctx *c, const json_t *o, const char *path, const char *const *keys, int root);
/* o[key] as a string (NULL if absent): 400 if not a string or empty. */
int w_str(wctx *c, const json_t *o, const char *path, const char *key, const char **out);
/* o[key] as an array (NULL, 0 if absent): 400 if not a non-empty array. */
int w_arr(wctx *c, const json_t *o, const char *path, const char *key, const json_t **out,
          size_t *n);
/* Converts one array element v at path into *out. */
typedef int (*w_conv_fn)(wctx *c, const json_t *v, const char *path, void **out);
/* o[key] (an array) converted element by element into *out (arena). */
int w_list(wctx *c, const json_t *o, const char *path, const char *key, w_conv_fn conv, void ***out,
           size_t *n);
/* o[key] as an object (NULL if absent). */
int w_obj(wctx *c, const json_t *o, const char *path, const char *key, const json_t **out);
/* o[key] as a boolean (-1 if absent). */
int w_bool(wctx *c, const json_t *o, const char *path, const char *key, int *out);
/* o[key] as a code of `codes` (NULL-terminated): *idx its index, -1 if absent. */
int w_enum(wctx *c, const json_t *o, const char *path, const char *key, const char *const *codes,
           int *idx);

/* ---- datatypes (NULL out when absent) ---- */
int w_instant(wctx *c, const json_t *o, const char *path, const char *key, pb_ts **out);
int w_date(wctx *c, const json_t *o, const char *path, const char *key, const char **out);
int w_coding(wctx *c, const json_t *v, const char *path, pb_code **out);
int w_concept(wctx *c, const json_t *o, const char *path, const char *key, pb_cc **out);
int w_concepts(wctx *c, const json_t *o, const char *path, const char *key, pb_cc ***out,
               size_t *n);
/* A CodeableConcept the event holds as one Code: one coding (or only text,
 * held as the display). */
int w_concept_code(wctx *c, const json_t *o, const char *path, const char *key, pb_code **out);
/* The same for an array of such (category, interpretation). */
int w_concepts_code(wctx *c, const json_t *o, const char *path, const char *key, pb_code ***out,
                    size_t *n);
/* A CodeableConcept of one coding in `system` with a code of `codes`:
 * *idx its index (-1 absent). */
int w_concept_in(wctx *c, const json_t *o, const char *path, const char *key, const char *system,
                 const char *const *codes, int *idx);
int w_quantity(wctx *c, const json_t *v, const char *path, Clinlog__V1__Quantity **out);
int w_identifier(wctx *c, const json_t *v, const char *path, Clinlog__V1__Identifier **out);
int w_name(wctx *c, const json_t *v, const char *path, Clinlog__V1__HumanName **out);
int w_address(wctx *c, const json_t *v, const char *path, Clinlog__V1__Address **out);
int w_contact_point(wctx *c, const json_t *v, const char *path, Clinlog__V1__ContactPoint **out);
/* A Reference to someone outside the views (Practitioner, Organization...). */
int w_reference(wctx *c, const json_t *v, const char *path, Clinlog__V1__Reference **out);
/* One Reference (w_reference) at o[key]: a single element, or with
 * `array` an array of one (422 for more). NULL out when absent. */
int w_one_ref(wctx *c, const json_t *o, const char *path, const char *key, int array,
              Clinlog__V1__Reference **out);
/* A single Annotation array (note): its one text. */
int w_note(wctx *c, const json_t *o, const char *path, const char **out);

/* ---- references into the views (fhirw.c) ---- */

/* The patient of o[key] (a Reference to a Patient), required: sets
 * c->patient_id. 422 for a patient neither this input nor the views know. */
int w_subject(wctx *c, const json_t *o, const char *path, const char *key);
/* The business id of the `type` resource o[key] references (NULL if
 * absent); 422 if unknown or of another patient. */
int w_ref_bid(wctx *c, const json_t *o, const char *path, const char *key, const char *type,
              const char **out);
/* The same for an Encounter. */
int w_encounter(wctx *c, const json_t *o, const char *path, const char *key, const char **out);
/* The business id: the identifier in urn:clinlog:id, else derived from
 * the content. Also checks the identifiers' shape. */
int w_business_id(wctx *c, const json_t *res, const char *path);

/* Refuses identifiers other than the business id (the event has no room). */
int business_only(wctx *c, const json_t *r, const char *path);
/* The identifiers of r besides the business id into slots: with one type
 * in `types` (NULL-terminated, v2-0203 codes), one identifier of any type;
 * with several, one of each, told by its type. A type equal to its slot's
 * is dropped (the view writes it back, with its display). `what` says what
 * may be written, for the refusal. */
int w_other_ids(wctx *c, const json_t *r, const char *path, const char *const *types,
                Clinlog__V1__Identifier **slots, const char *what);

/* ---- output ---- */

/* Appends an event with body `body` (Event.body case `body_case`). */
int w_emit(wctx *c, unsigned body_case, void *body);

/* ---- resource types (fhirw_res.c, fhirw_meds.c) ---- */
int w_patient(wctx *c, const json_t *r, int exists);
int w_encounter_res(wctx *c, const json_t *r);
int w_condition(wctx *c, const json_t *r);
int w_allergy(wctx *c, const json_t *r);
int w_observation(wctx *c, const json_t *r);
/* The elements of an Observation an ObservationRecorded holds (all but
 * subject and identifier) into b, refusing any other member; status and
 * code required. Shared with the result lines of a DiagnosticReport. */
int w_obs_read(wctx *c, const json_t *r, const char *p, Clinlog__V1__ObservationRecorded *b);
int w_diagnostic_report(wctx *c, const json_t *r); /* fhirw_report.c */
int w_appointment(wctx *c, const json_t *r);       /* fhirw_portal.c */
int w_communication(wctx *c, const json_t *r);     /* fhirw_portal.c */
int w_task(wctx *c, const json_t *r);              /* fhirw_portal.c */
int w_document_reference(wctx *c, const json_t *r); /* fhirw_docs.c */
int w_device(wctx *c, const json_t *r);             /* fhirw_device.c */
int w_imaging_study(wctx *c, const json_t *r);      /* fhirw_imaging.c */
int w_charge_item(wctx *c, const json_t *r);        /* fhirw_billing.c */
/* A MedicationRequest: stopped or cancelled, its prescription and its
 * MedicationDiscontinued; else w_medication_request (fhirw_stop.c). */
int w_medication_stop(wctx *c, const json_t *r);

/* One extension e (at path ep, its url checked present) for w_each_ext. */
typedef int (*w_ext_fn)(wctx *c, const json_t *e, const char *ep, const char *url, void *ctx);
/* ---- shared by the later types (fhirw_util.c) ---- */

/* Calls fn on each element of r.extension. */
int w_each_ext(wctx *c, const json_t *r, const char *p, w_ext_fn fn, void *ctx);
/* w_ref_bid of one element `elem` of an array, named `name` ("basedOn[0]")
 * under p. */
int w_ref_bid_elem(wctx *c, const json_t *elem, const char *p, const char *name, const char *type,
                   const char **out);
/* w_ref_bid of r[key], an array of at most one (422 for more). */
int w_ref_bid_first(wctx *c, const json_t *r, const char *p, const char *key, const char *type,
                    const char **out);
/* The one identifier in `system` besides the business id into *out (which
 * holds "" on entry); any other identifier is refused, `what` saying what
 * may be written. */
int w_system_id(wctx *c, const json_t *r, const char *p, const char *system, char **out,
                const char *what);
int w_service_request(wctx *c, const json_t *r);
/* o[key], a Money with the currency's number of decimals as the views
 * write it back (fhirw_billing.c). NULL out when absent. */
int w_money(wctx *c, const json_t *o, const char *path, const char *key, Clinlog__V1__Money **out);

/* ---- writes checked against their view (fhirw_view.c) ---- */

/* Maps the events emitted so far as the fold will (the views' current
 * resources through o->fetch) and refuses the first element of r that
 * differs from the resource of c->type and c->bid they make: 422
 * not-supported (written, not in the view), 400 required (in the view,
 * not written) or 422 value. */
int w_as_view(wctx *c, const json_t *r);
/* A DiagnosticReport's result lines given as Observations of the input
 * (lines[i], NULL for a contained line; n the report's results): maps the
 * events as the fold will, and refuses result[i] when the view gives its
 * line another id than the Observation's (422 value), else the first
 * element of the Observation that differs from the view's, at
 * `<root>.result[i].resolve().<element>`. */
int w_lines_as_view(wctx *c, const json_t *const *lines, size_t n);
/* The resource type/id as the views will hold it: one this input wrote
 * (cl_fhirw_refs_keep), else the views' (o->fetch). *out returned-owned.
 * 0, CL_ENOTFOUND, or the fetch's error. */
int w_fetch(wctx *c, const char *type, const char *id, json_t **out);
/* The identifiers of r besides the business id, each typed by text with
 * one of `names` (NULL-terminated), as the views write X12 control numbers:
 * the value of names[k] into *slots[k] (which holds "" on entry). */
int w_text_ids(wctx *c, const json_t *r, const char *p, const char *const *names,
               char **const *slots);
int w_claim(wctx *c, const json_t *r);          /* fhirw_claims.c */
int w_claim_response(wctx *c, const json_t *r); /* fhirw_claims.c */
int w_coverage(wctx *c, const json_t *r);       /* fhirw_coverage.c */
/* o[key], a Period of instants (NULL out when absent; fhirw_coverage.c). */
int w_period(wctx *c, const json_t *o, const char *path, const char *key,
             Clinlog__V1__Period **out);
/* The terms of the Coverage r (at path p) an EligibilityChecked restates
 * besides payer and member: relationship, period and class (group, plan)
 * into b (fhirw_coverage.c). */
int w_coverage_terms(wctx *c, const json_t *r, const char *p, Clinlog__V1__EligibilityChecked *b);
/* r[key], an array of at most one object (422 for more): *e the object
 * (NULL when absent) and *ep its path (fhirw_util.c). */
int w_only_one(wctx *c, const json_t *r, const char *p, const char *key, const json_t **e,
               const char **ep);
/* r[key], the payer as the views write it ({identifier, display}: no
 * literal reference) into *payer and *name (fhirw_claims.c). */
int w_payer_of(wctx *c, const json_t *r, const char *p, const char *key,
               Clinlog__V1__Identifier **payer, const char **name);
/* The member id of the Coverage ins.coverage references (its business id
 * "<payer id>|<member id>"), "" for a payer named only; 422 for another
 * payer's (fhirw_claims.c). */
int w_member_of(wctx *c, const json_t *ins, const char *ip, const char *payer_id, char **member);
/* CoverageEligibilityResponse with its CoverageEligibilityRequest
 * (cl_fhirw_opts.line) -> EligibilityChecked; a Request alone is refused
 * (fhirw_elig.c). */
int w_elig_response(wctx *c, const json_t *r);
int w_elig_request(wctx *c, const json_t *r);
/* w_as_view for a resource `r` of `type` other than c->type that the
 * events make too (its logical id `id`), its refusals under `path`. */
int w_other_as_view(wctx *c, const char *type, const char *id, const json_t *r, const char *path);

int w_medication_request(wctx *c, const json_t *r);        /* fhirw_meds.c */
int w_medication_administration(wctx *c, const json_t *r); /* fhirw_meds.c */
int w_immunization(wctx *c, const json_t *r);              /* fhirw_meds.c */
int w_medication_dispense(wctx *c, const json_t *r);       /* fhirw_meds.c */

#endif

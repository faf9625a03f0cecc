/* DiagnosticReport -> LabResultReported (fhirw.h): the inverse of
 * mc_lab_report (query/fhir/map_results.c), a laboratory report and its
 * result lines in one event.
 *
 * The event holds its result lines inline (LabResult), so the
 * Observations a report lists must come with it: as `contained`
 * Observations that `result` references ("#<id>"), each becoming one
 * LabResult in `result` order. The view then serves each line as an
 * Observation of its own (logical id derived from the report's business
 * id and the line), and the report's `result` references those. With
 * cl_fhirw_opts.line (a load of an export), a result may also reference
 * such an Observation of the same input ("Observation/<id>"): it is read
 * as a contained line (its identifier, when it is the one the view
 * derived, is no id of its own), and once the event is made the view's
 * mapper runs over it and each such line must be the Observation the view
 * makes (its id too), else it is refused by its path
 * (`DiagnosticReport.result[i].resolve().<element>`). A result
 * referencing anything else (an Observation already on the server, a
 * Bundle entry) is refused naming DiagnosticReport.result[i]: an
 * ObservationRecorded cannot become a line of a report.
 *
 * What the view writes for a report is read back exactly:
 *   identifier  business id, PLAC, FILL, ACSN (accession)
 *   basedOn     a ServiceRequest of the views (order_id), or "#order": the
 *               contained ServiceRequest that holds the ordering provider
 *               (status unknown, intent order, the report's code and
 *               order numbers)
 *   category    the v2-0074 section; the LAB the view adds is dropped
 *   extension   R5 DiagnosticReport.note annotations (notes)
 *   status, code, subject, encounter, effectiveDateTime, issued,
 *   performer, resultsInterpreter, result, conclusion
 * Specimens (contained Specimen) are not written yet: refused.
 * Status entered-in-error is a correction, not a report: refused here. */
#include <string.h>

#include "adapters/fhir/fhirw_int.h"

#define OBS_CATEGORY "http://terminology.hl7.org/CodeSystem/observation-category"
#define V2_0074 "http://terminology.hl7.org/CodeSystem/v2-0074"
#define REPORT_NOTE_EXT FJ_R5_EXT "DiagnosticReport.note"
#define ELIG_REQUEST "CoverageEligibilityRequest"
#define ELIG_RESPONSE "CoverageEligibilityResponse"

static const char *const report_status[] = {
    "registered", "partial",   "preliminary",      "final",   "amended", "corrected",
    "appended",   "cancelled", "entered-in-error", "unknown", NULL};

typedef struct report {
  const json_t *r;          /* the DiagnosticReport */
  const char *p;            /* its path */
  const json_t *based_on;   /* basedOn[0], or NULL */
  int local_order;          /* basedOn[0] is the contained order */
  const pb_ts *issued;      /* issued, or NULL */
  const char *encounter_id; /* "" when none */
  Clinlog__V1__LabResultReported *b;
  const json_t **taken; /* per result: the input's Observation it references, or NULL */
} report;

/* The contained resource whose id is `ref` without its '#': *k its index
 * in contained, -1 if none. */
static const json_t *contained(const json_t *r, const char *ref, long *k) {
  const json_t *cs = json_object_get(r, "contained");
  *k = -1;
  for (size_t i = 0; ref[0] == '#' && i < json_array_size(cs); i++) {
    const char *id = json_string_value(json_object_get(json_array_get(cs, i), "id"));
    if (id != NULL && !strcmp(id, ref + 1)) {
      *k = (long)i;
      return json_array_get(cs, i);
    }
  }
  return NULL;
}

/* A contained resource's subject, if it states one, must be the report's. */
static int same_subject(wctx *c, const json_t *o, const char *path) {
  if (json_object_get(o, "subject") == NULL)
    return 0;
  const char *mine = c->patient_id;
  int rc = w_subject(c, o, path, "subject");
  const char *theirs = c->patient_id;
  c->patient_id = mine;
  if (rc == 0 && strcmp(theirs, mine) != 0)
    rc = w_fail(c, 422, "invalid", w_path(c, path, "subject", 0),
                "not the patient of the DiagnosticReport");
  return rc;
}

static int same_ts(const pb_ts *a, const pb_ts *b) {
  return a != NULL && b != NULL && a->seconds == b->seconds && a->nanos == b->nanos;
}

/* ---- one result line: a contained Observation ---- */

/* The line's own id: its identifier in urn:clinlog:id, if any. */
static int line_id(wctx *c, const json_t *o, const char *p, char **out) {
  const json_t *ids;
  size_t n;
  int rc = w_arr(c, o, p, "identifier", &ids, &n);
  if (rc || (rc = business_only(c, o, p)))
    return rc;
  if (n > 1)
    return w_fail(c, 422, "not-supported", w_path(c, w_path(c, p, "identifier", 0), NULL, 1),
                  "a result line has one business id");
  const char *ip = w_path(c, w_path(c, p, "identifier", 0), NULL, 0), *v = NULL;
  if (n == 1 && (rc = w_str(c, json_array_get(ids, 0), ip, "value", &v)))
    return rc;
  if (n == 1 && v == NULL)
    return w_fail(c, 400, "required", w_path(c, ip, "value", 0), "required");
  *out = (char *)(v ? v : "");
  return 0;
}

static int line(wctx *c, const report *rp, const json_t *o, const char *p,
                Clinlog__V1__LabResult **out) {
  Clinlog__V1__ObservationRecorded *ob = w_alloc(c, sizeof *ob);
  Clinlog__V1__LabResult *x = w_alloc(c, sizeof *x);
  if (ob == NULL || x == NULL)
    return CL_ENOMEM;
  clinlog__v1__observation_recorded__init(ob);
  clinlog__v1__lab_result__init(x);
  pb_ts *issued;
  /* an Observation's members, and the two the view writes from the report */
  json_t *rest = json_copy((json_t *)o);
  if (rest == NULL)
    return cl_err_set(c->err, CL_ENOMEM, "out of memory");
  json_object_del(rest, "basedOn");
  json_object_del(rest, "issued");
  int rc = w_obs_read(c, rest, p, ob);
  json_decref(rest);
  if (rc || (rc = same_subject(c, o, p)) || (rc = line_id(c, o, p, &x->observation_id)) ||
      (rc = w_instant(c, o, p, "issued", &issued)))
    return rc;
  if (ob->body_site != NULL || ob->n_components)
    return w_fail(c, 422, "not-supported",
                  w_path(c, p, ob->body_site ? "bodySite" : "component", 0),
                  "a lab result line has no %s", ob->body_site ? "bodySite" : "component");
  const json_t *bo = json_object_get(o, "basedOn");
  if (bo != NULL && (rp->based_on == NULL || rp->local_order || json_array_size(bo) != 1 ||
                     !json_equal(json_array_get(bo, 0), (json_t *)rp->based_on)))
    return w_fail(c, 422, "not-supported", w_path(c, p, "basedOn", 0),
                  "a result line is based on its report's order: the report's basedOn (a "
                  "ServiceRequest on record) or none");
  if (ob->n_category > 1 ||
      (ob->n_category == 1 && (strcmp(ob->category[0]->system, OBS_CATEGORY) != 0 ||
                               strcmp(ob->category[0]->code, "laboratory") != 0)))
    return w_fail(c, 422, "not-supported", w_path(c, p, "category", 0),
                  "a report's result line is in category laboratory (" OBS_CATEGORY ") only");
  if (ob->encounter_id[0] && strcmp(ob->encounter_id, rp->encounter_id) != 0)
    return w_fail(c, 422, "not-supported", w_path(c, p, "encounter", 0),
                  "a result line is in its report's encounter");
  if (issued != NULL && !same_ts(issued, rp->issued))
    return w_fail(c, 422, "not-supported", w_path(c, p, "issued", 0),
                  "a result line is issued with its report (the report's issued or none)");
  if (ob->n_performers > 1)
    return w_fail(c, 422, "not-supported", w_path(c, w_path(c, p, "performer", 0), NULL, 1),
                  "one performer per result line can be written");
  x->code = ob->code;
  x->status = ob->status;
  x->effective = ob->effective;
  x->method = ob->method;
  x->performer = ob->n_performers ? ob->performers[0] : NULL;
  x->data_absent_reason = ob->data_absent_reason;
  x->interpretation = ob->interpretation, x->n_interpretation = ob->n_interpretation;
  x->reference_range = ob->reference_range, x->n_reference_range = ob->n_reference_range;
  if (ob->note[0]) {
    if ((x->notes = w_alloc(c, sizeof *x->notes)) == NULL)
      return CL_ENOMEM;
    x->notes[0] = ob->note, x->n_notes = 1;
  }
  switch (ob->value_case) {
  case CLINLOG__V1__OBSERVATION_RECORDED__VALUE_QUANTITY:
    x->value_case = CLINLOG__V1__LAB_RESULT__VALUE_QUANTITY, x->quantity = ob->quantity;
    break;
  case CLINLOG__V1__OBSERVATION_RECORDED__VALUE_STRING_VALUE:
    x->value_case = CLINLOG__V1__LAB_RESULT__VALUE_STRING_VALUE, x->string_value = ob->string_value;
    break;
  case CLINLOG__V1__OBSERVATION_RECORDED__VALUE_CODE_VALUE:
    x->value_case = CLINLOG__V1__LAB_RESULT__VALUE_CODE_VALUE, x->code_value = ob->code_value;
    break;
  case CLINLOG__V1__OBSERVATION_RECORDED__VALUE_BOOL_VALUE:
    x->value_case = CLINLOG__V1__LAB_RESULT__VALUE_BOOL_VALUE, x->bool_value = ob->bool_value;
    break;
  case CLINLOG__V1__OBSERVATION_RECORDED__VALUE_DATETIME_VALUE:
    x->value_case = CLINLOG__V1__LAB_RESULT__VALUE_DATETIME_VALUE;
    x->datetime_value = ob->datetime_value;
    break;
  default:
    break;
  }
  *out = x;
  return 0;
}

/* ---- the order: a ServiceRequest of the views, or the contained one ---- */

/* The contained order ("#order"): what the view writes when the report
 * names no ServiceRequest on record. Only its requester is new. */
static int contained_order(wctx *c, report *rp, const json_t *o, const char *p) {
  static const char *const keys[] = {"identifier", "status",    "intent", "code",
                                     "subject",    "requester", NULL};
  static const char *const st[] = {"unknown", NULL}, *const intents[] = {"order", NULL};
  static const char *const nums[] = {"PLAC", "FILL", NULL};
  Clinlog__V1__Identifier *ids[2] = {NULL, NULL};
  const Clinlog__V1__Identifier *mine[2] = {rp->b->placer_order_number, rp->b->filler_order_number};
  const json_t *req = json_object_get(o, "requester");
  int rc, status, intent;
  if ((rc = w_only(c, o, p, keys, 1)) || (rc = w_enum(c, o, p, "status", st, &status)) ||
      (rc = w_enum(c, o, p, "intent", intents, &intent)) || (rc = same_subject(c, o, p)) ||
      (rc = w_other_ids(c, o, p, nums, ids, "the report's PLAC and FILL identifiers")) ||
      (req && (rc = w_reference(c, req, w_path(c, p, "requester", 0), &rp->b->ordering_provider))))
    return rc;
  if (status < 0 || intent < 0)
    return w_fail(c, 400, "required", w_path(c, p, status < 0 ? "status" : "intent", 0),
                  "required (the contained order: status unknown, intent order)");
  const json_t *code = json_object_get(o, "code");
  if (code != NULL && !json_equal((json_t *)code, json_object_get(rp->r, "code")))
    return w_fail(c, 422, "not-supported", w_path(c, p, "code", 0),
                  "the contained order's code is the report's");
  for (int i = 0; i < 2; i++) {
    const Clinlog__V1__Identifier *a = ids[i], *m = mine[i];
    if ((a == NULL) != (m == NULL) ||
        (a != NULL && (strcmp(a->system, m->system) || strcmp(a->value, m->value))))
      return w_fail(c, 422, "not-supported", w_path(c, p, "identifier", 0),
                    "the contained order's %s identifier is the report's", nums[i]);
  }
  if (rp->b->ordering_provider == NULL)
    return w_fail(c, 422, "not-supported", w_path(c, p, "requester", 0),
                  "required: a contained order holds who ordered the report");
  return 0;
}

static int based_on(wctx *c, report *rp, int *used_order) {
  const json_t *a;
  size_t n;
  int rc = w_arr(c, rp->r, rp->p, "basedOn", &a, &n);
  if (rc || n == 0)
    return rc;
  if (n > 1)
    return w_fail(c, 422, "not-supported", w_path(c, w_path(c, rp->p, "basedOn", 0), NULL, 1),
                  "one order (basedOn) can be written");
  rp->based_on = json_array_get(a, 0);
  const char *ref = json_string_value(json_object_get(rp->based_on, "reference"));
  if (ref != NULL && ref[0] == '#') {
    long k;
    const json_t *o = contained(rp->r, ref, &k);
    const char *t = json_string_value(json_object_get(o, "resourceType"));
    const char *rpath = w_path(c, w_path(c, rp->p, "basedOn", 0), NULL, 0);
    if (o == NULL || t == NULL || strcmp(t, "ServiceRequest") || strcmp(ref, "#order"))
      return w_fail(c, 422, "not-supported", w_path(c, rpath, "reference", 0),
                    "a contained order is the ServiceRequest with id 'order'");
    *used_order = rp->local_order = 1;
    return contained_order(c, rp, o, w_path(c, w_path(c, rp->p, "contained", 0), NULL, k));
  }
  return w_ref_bid_elem(c, rp->based_on, rp->p, "basedOn[0]", "ServiceRequest",
                        (const char **)&rp->b->order_id);
}

/* ---- the report ---- */

/* 1 if the line o's identifier is the business id the view derives for a
 * line without one of its own ("<report id>/<key>"): its logical id is
 * then that identifier's (a line with an id of its own gets the id of
 * "<report id>/<its id>"). */
static int derived_line_id(wctx *c, const json_t *o) {
  const json_t *ids = json_object_get(o, "identifier");
  const char *id = json_string_value(json_object_get(o, "id"));
  const char *v = json_string_value(json_object_get(json_array_get(ids, 0), "value"));
  char mine[CL_FHIR_ID_MAX];
  if (id == NULL || v == NULL || json_array_size(ids) != 1)
    return 0;
  cl_fhir_id("Observation", c->patient_id, v, mine);
  return strcmp(mine, id) == 0;
}

/* The line result[i] (at ip) references as ref: a contained Observation
 * (*k its index), or one of the input (rp->taken[i]). */
static int find_line(wctx *c, report *rp, size_t i, const char *ip, const char *ref,
                     const json_t **o, long *k) {
  *o = NULL;
  *k = -1;
  if (ref != NULL && ref[0] == '#') {
    *o = contained(rp->r, ref, k);
  } else if (ref != NULL && c->o->line != NULL) {
    int rc = c->o->line(c->o->ctx, ref, o);
    if (rc == CL_ENOTFOUND)
      return w_fail(c, 422, "not-found", ip,
                    "%.80s: no such Observation in this input (a report's result lines come "
                    "with it: contained, or as Observations of the same input); an "
                    "Observation on record cannot become a line of it",
                    ref);
    if (rc)
      return rc;
    for (size_t j = 0; j < i; j++)
      if (rp->taken[j] == *o)
        return w_fail(c, 422, "not-supported", ip, "the same result line twice");
    rp->taken[i] = *o;
  }
  const char *t = json_string_value(json_object_get(*o, "resourceType"));
  if (*o == NULL || t == NULL || strcmp(t, "Observation") != 0)
    return w_fail(c, 422, "not-supported", ip,
                  "a result is written with its report: a contained Observation (\"#<id>\"); "
                  "an Observation on record or elsewhere cannot become a line of it");
  return 0;
}

static int results(wctx *c, report *rp, unsigned char *used) {
  const json_t *a;
  size_t n;
  int rc = w_arr(c, rp->r, rp->p, "result", &a, &n);
  if (rc)
    return rc;
  if (n && ((rp->b->results = w_alloc(c, n * sizeof *rp->b->results)) == NULL ||
            (rp->taken = w_alloc(c, n * sizeof *rp->taken)) == NULL))
    return CL_ENOMEM;
  const char *rs = w_path(c, rp->p, "result", 0);
  for (size_t i = 0; i < n; i++) {
    const json_t *v = json_array_get(a, i), *o;
    const char *ip = w_path(c, rs, NULL, (long)i);
    static const char *const rkeys[] = {"reference", "display", NULL};
    const char *ref;
    long k;
    if (!json_is_object(v))
      return w_fail(c, 400, "structure", ip, "expected a Reference (an object)");
    if ((rc = w_only(c, v, ip, rkeys, 0)) || (rc = w_str(c, v, ip, "reference", &ref)) ||
        (rc = find_line(c, rp, i, ip, ref, &o, &k)))
      return rc;
    if (k >= 0 && used[k])
      return w_fail(c, 422, "not-supported", ip, "the same result line twice");
    if (k >= 0)
      used[k] = 1;
    const char *op = k >= 0 ? w_path(c, w_path(c, rp->p, "contained", 0), NULL, k)
                            : w_printf(c, "%s.resolve()", ip);
    if ((rc = line(c, rp, o, op, &rp->b->results[i])))
      return rc;
    if (k < 0 && derived_line_id(c, o)) /* the view's own id for it, not the line's */
      rp->b->results[i]->observation_id = "";
    rp->b->n_results = i + 1;
  }
  return 0;
}

/* category: the v2-0074 section, then the LAB the view adds after it. */
static int category(wctx *c, report *rp) {
  pb_code **cat;
  size_t n;
  int rc = w_concepts_code(c, rp->r, rp->p, "category", &cat, &n);
  if (rc)
    return rc;
  int lab_last = n == 2 && !strcmp(cat[1]->code, "LAB") && !strcmp(cat[1]->system, V2_0074);
  if (n > 2 || (n == 2 && (!lab_last || !strcmp(cat[0]->code, "LAB"))))
    return w_fail(c, 422, "not-supported", w_path(c, rp->p, "category", 0),
                  "one diagnostic section (v2-0074) can be written, followed by LAB");
  if (n && !strcmp(cat[0]->code, "RAD") && !strcmp(cat[0]->system, V2_0074))
    return w_fail(c, 422, "not-supported", w_path(c, rp->p, "category", 0),
                  "an imaging report (RAD) is an ImagingReportSigned, not written yet");
  rp->b->category = n ? cat[0] : NULL;
  return 0;
}

/* extension: the R5 DiagnosticReport.note annotations. */
static int note_ext(wctx *c, const json_t *e, const char *ep, const char *url, void *ctx) {
  Clinlog__V1__LabResultReported *b = ctx;
  static const char *const keys[] = {"url", "valueAnnotation", NULL};
  static const char *const akeys[] = {"text", NULL};
  const json_t *ann;
  const char *text, *ap = w_path(c, ep, "valueAnnotation", 0);
  int rc;
  if ((rc = w_only(c, e, ep, keys, 0)))
    return rc;
  if (strcmp(url, REPORT_NOTE_EXT) != 0)
    return w_fail(c, 422, "not-supported", w_path(c, ep, "url", 0),
                  "the extension written is " REPORT_NOTE_EXT);
  if ((rc = w_obj(c, e, ep, "valueAnnotation", &ann)))
    return rc;
  if (ann == NULL)
    return w_fail(c, 400, "required", ap, "required");
  if ((rc = w_only(c, ann, ap, akeys, 0)) || (rc = w_str(c, ann, ap, "text", &text)))
    return rc;
  if (text == NULL)
    return w_fail(c, 400, "required", w_path(c, ap, "text", 0), "required");
  char **more = w_alloc(c, (b->n_notes + 1) * sizeof *more);
  if (more == NULL)
    return CL_ENOMEM;
  if (b->n_notes)
    memcpy(more, b->notes, b->n_notes * sizeof *more);
  more[b->n_notes++] = (char *)text;
  b->notes = more;
  return 0;
}

int w_diagnostic_report(wctx *c, const json_t *r) {
  static const char *const keys[] = {"contained",
                                     "extension",
                                     "identifier",
                                     "basedOn",
                                     "status",
                                     "category",
                                     "code",
                                     "subject",
                                     "encounter",
                                     "effectiveDateTime",
                                     "issued",
                                     "performer",
                                     "resultsInterpreter",
                                     "result",
                                     "conclusion",
                                     NULL};
  static const char *const nums[] = {"PLAC", "FILL", "ACSN", NULL};
  Clinlog__V1__LabResultReported *b = w_alloc(c, sizeof *b);
  if (b == NULL)
    return CL_ENOMEM;
  clinlog__v1__lab_result_reported__init(b);
  report rp = {.r = r, .p = c->root, .b = b};
  const char *p = rp.p;
  Clinlog__V1__Identifier *ids[3] = {NULL, NULL, NULL};
  const json_t *cs;
  size_t ncs;
  pb_ts *issued;
  int rc, status, used_order = 0;
  if ((rc = w_only(c, r, p, keys, 1)) || (rc = w_subject(c, r, p, "subject")) ||
      (rc = w_business_id(c, r, p)) ||
      (rc = w_other_ids(c, r, p, nums, ids, "one PLAC, one FILL and one ACSN identifier")) ||
      (rc = w_enum(c, r, p, "status", report_status, &status)) || (rc = category(c, &rp)) ||
      (rc = w_concept(c, r, p, "code", &b->code)) ||
      (rc = w_encounter(c, r, p, "encounter", (const char **)&b->encounter_id)) ||
      (rc = w_instant(c, r, p, "effectiveDateTime", &b->effective)) ||
      (rc = w_instant(c, r, p, "issued", &issued)) ||
      (rc = w_one_ref(c, r, p, "performer", 1, &b->performer)) ||
      (rc = w_one_ref(c, r, p, "resultsInterpreter", 1, &b->results_interpreter)) ||
      (rc = w_str(c, r, p, "conclusion", (const char **)&b->conclusion)) ||
      (rc = w_each_ext(c, r, p, note_ext, b)) || (rc = w_arr(c, r, p, "contained", &cs, &ncs)))
    return rc;
  if (status < 0)
    return w_fail(c, 400, "required", w_path(c, p, "status", 0), "required");
  if (!strcmp(report_status[status], "entered-in-error"))
    return w_fail(c, 422, "not-supported", w_path(c, p, "status", 0),
                  "entered-in-error is a correction of a report on record, not a report");
  if (b->code == NULL)
    return w_fail(c, 400, "required", w_path(c, p, "code", 0), "required");
  b->placer_order_number = ids[0], b->filler_order_number = ids[1];
  b->accession_number = ids[2] ? ids[2]->value : "";
  if (ids[2] != NULL && (ids[2]->system[0] || ids[2]->assigner[0]))
    return w_fail(c, 422, "not-supported", w_path(c, p, "identifier", 0),
                  "the accession number (ACSN) is a value alone");
  if (b->encounter_id == NULL)
    b->encounter_id = "";
  rp.encounter_id = b->encounter_id;
  rp.issued = issued;
  unsigned char *used = w_alloc(c, ncs + 1);
  if (used == NULL)
    return CL_ENOMEM;
  if ((rc = based_on(c, &rp, &used_order)) || (rc = results(c, &rp, used)))
    return rc;
  for (size_t k = 0; k < ncs; k++) {
    const json_t *o = json_array_get(cs, k);
    const char *id = json_string_value(json_object_get(o, "id"));
    int is_order = used_order && id != NULL && !strcmp(id, "order");
    if (!used[k] && !is_order)
      return w_fail(c, 422, "not-supported", w_path(c, w_path(c, p, "contained", 0), NULL, (long)k),
                    "a contained resource is a result line (Observation, referenced from "
                    "result) or the order (ServiceRequest 'order', from basedOn)");
  }
  b->status = (Clinlog__V1__DiagnosticReportStatus)(status + 1);
  b->report_id = (char *)c->bid;
  b->issued = issued;
  if (b->conclusion == NULL)
    b->conclusion = "";
  if (b->order_id == NULL)
    b->order_id = "";
  c->when = issued ? issued : b->effective ? b->effective : c->when;
  if ((rc = w_emit(c, CLINLOG__V1__EVENT__BODY_LAB_RESULT_REPORTED, b)))
    return rc;
  for (size_t i = 0; i < b->n_results; i++)
    if (rp.taken[i] != NULL) /* lines of the input: each as the view makes it */
      return w_lines_as_view(c, rp.taken, b->n_results);
  return 0;
}

/* ---- a transaction's report lines given as entries ---- */

/* The entry of `entries` whose fullUrl is url and resource an Observation:
 * its index, or -1. */
static long line_entry(const json_t *entries, const char *url) {
  for (size_t k = 0; url != NULL && k < json_array_size(entries); k++) {
    const json_t *e = json_array_get(entries, k);
    const char *fu = json_string_value(json_object_get(e, "fullUrl"));
    const char *t =
        json_string_value(json_object_get(json_object_get(e, "resource"), "resourceType"));
    if (fu != NULL && !strcmp(fu, url) && t != NULL && !strcmp(t, "Observation"))
      return (long)k;
  }
  return -1;
}

int cl_fhirw_bundle_lines(json_t *entries, long *line_of, long *line_at) {
  size_t n = json_array_size(entries);
  for (size_t k = 0; k < n; k++)
    line_of[k] = line_at[k] = -1;
  for (size_t i = 0; i < n; i++) {
    json_t *rep = json_object_get(json_array_get(entries, i), "resource");
    const char *t = json_string_value(json_object_get(rep, "resourceType"));
    json_t *results = json_object_get(rep, "result");
    if (t == NULL || strcmp(t, "DiagnosticReport") != 0 || !json_is_array(results))
      continue;
    for (size_t j = 0; j < json_array_size(results); j++) {
      json_t *ref = json_array_get(results, j);
      long k = line_entry(entries, json_string_value(json_object_get(ref, "reference")));
      if (k < 0 || line_of[k] >= 0)
        continue;
      json_t *cs = json_object_get(rep, "contained");
      if (cs != NULL && !json_is_array(cs))
        break; /* the mapping refuses the report */
      if (cs == NULL && json_object_set_new(rep, "contained", cs = json_array()) != 0)
        return CL_ENOMEM;
      char id[48], hash[49];
      snprintf(id, sizeof id, "bundle-line-%zu", j);
      snprintf(hash, sizeof hash, "#%s", id);
      json_t *line =
          json_deep_copy(json_object_get(json_array_get(entries, (size_t)k), "resource"));
      if (line == NULL || json_object_set_new(line, "id", json_string(id)) != 0 ||
          json_array_append_new(cs, line) != 0 ||
          json_object_set_new(ref, "reference", json_string(hash)) != 0)
        return CL_ENOMEM;
      line_of[k] = (long)i;
      line_at[k] = (long)j;
    }
  }
  return 0;
}

/* ---- an export's report lines: Observations of their own ---- */

static int is_type(const json_t *res, const char *type) {
  const char *t = json_string_value(json_object_get(res, "resourceType"));
  return t != NULL && !strcmp(t, type);
}

int cl_fhirw_pair_lines(const json_t *const *res, const char *const *full_url, size_t n,
                        long *line_of, long *line_at, long *shared_at, json_t **lines) {
  json_t *cand = json_object(); /* "Observation/<id>" and fullUrl -> index */
  *lines = json_object();
  int rc = cand && *lines ? 0 : CL_ENOMEM;
  for (size_t k = 0; k < n; k++) {
    const char *id = json_string_value(json_object_get(res[k], "id"));
    char key[CL_FHIR_ID_MAX + 40];
    line_of[k] = line_at[k] = shared_at[k] = -1;
    const char *t = is_type(res[k], "Observation")  ? "Observation"
                    : is_type(res[k], ELIG_REQUEST) ? ELIG_REQUEST
                                                    : NULL;
    if (rc || t == NULL)
      continue;
    snprintf(key, sizeof key, "%s/%.64s", t, id ? id : "");
    if ((id && json_object_set_new(cand, key, json_integer((json_int_t)k))) ||
        (full_url[k] && json_object_set_new(cand, full_url[k], json_integer((json_int_t)k))))
      rc = CL_ENOMEM;
  }
  for (size_t i = 0; rc == 0 && i < n; i++) {
    /* a report's result[j] take Observations; a response's request its Request */
    int rep = is_type(res[i], "DiagnosticReport"), elig = is_type(res[i], ELIG_RESPONSE);
    const json_t *rs = rep    ? json_object_get(res[i], "result")
                       : elig ? json_pack("[O]", json_object_get(res[i], "request"))
                              : NULL;
    for (size_t j = 0; (rep || elig) && j < json_array_size(rs); j++) {
      const char *ref = json_string_value(json_object_get(json_array_get(rs, j), "reference"));
      const json_t *at = ref ? json_object_get(cand, ref) : NULL;
      size_t k = (size_t)json_integer_value(at);
      if (at == NULL || line_of[k] == (long)i ||
          !is_type(res[k], rep ? "Observation" : ELIG_REQUEST))
        continue;
      if (line_of[k] >= 0) { /* (its other lines are still its: none is written alone) */
        shared_at[i] = shared_at[i] < 0 ? (long)j : shared_at[i];
        continue;
      }
      line_of[k] = (long)i;
      line_at[k] = (long)j;
    }
    if (elig)
      json_decref((json_t *)rs);
  }
  const char *key;
  json_t *at;
  json_object_foreach(cand, key, at) {
    size_t k = (size_t)json_integer_value(at);
    if (rc == 0 && line_of[k] >= 0 && json_object_set(*lines, key, (json_t *)res[k]))
      rc = CL_ENOMEM;
  }
  json_decref(cand);
  if (rc) {
    json_decref(*lines);
    *lines = NULL;
  }
  return rc;
}

void cl_fhirw_pair_refusal(const json_t *taker, long at, const char *expr, cl_fhirw_error *fe) {
  cl_err err;
  if (is_type(taker, ELIG_RESPONSE)) {
    char p[300];
    snprintf(p, sizeof p, "%.280s.request", expr ? expr : ELIG_RESPONSE);
    cl_fhirw_fail(fe, &err, 422, "not-supported", p,
                  "the request of another CoverageEligibilityResponse of this input too: one "
                  "request has one response (one EligibilityChecked makes both)");
    return;
  }
  const char *ref = json_string_value(
      json_object_get(json_array_get(json_object_get(taker, "result"), (size_t)at), "reference"));
  char p[300];
  snprintf(p, sizeof p, "%.260s.result[%ld]", expr ? expr : "DiagnosticReport", at);
  cl_fhirw_fail(fe, &err, 422, "not-supported", p,
                "%.80s is a result line of another DiagnosticReport of this input too: a line "
                "belongs to one report",
                ref ? ref : "?");
}

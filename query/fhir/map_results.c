/* Results (docs/fhir-map-clinical.md has the table, element by element):
 *
 *   ObservationRecorded      Observation
 *   LabResultReported        one Observation per result line, then the
 *                            DiagnosticReport that lists them
 *
 * The invariants of the clinical mappings (map_clinical.c) hold here too;
 * a lab result line's logical id is derived from the report id and the
 * line (line_key), so every version of a report rewrites the same
 * Observations. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/fhir/map_clinical_int.h"

#define OBS_CATEGORY TERMINOLOGY "observation-category"
#define V2_0074 TERMINOLOGY "v2-0074"
/* R5 elements R4 lacks, as the cross-version extensions of FHIR R5. */
#define REPORT_NOTE_EXT FJ_R5_EXT "DiagnosticReport.note"
#define OBS_STATUS(m) CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_##m
#define REPORT_STATUS(m) CLINLOG__V1__DIAGNOSTIC_REPORT_STATUS__DIAGNOSTIC_REPORT_STATUS_##m

static const fcode observation_status[] = {
    [OBS_STATUS(REGISTERED)] = {"registered", NULL},
    [OBS_STATUS(PRELIMINARY)] = {"preliminary", NULL},
    [OBS_STATUS(FINAL)] = {"final", NULL},
    [OBS_STATUS(AMENDED)] = {"amended", NULL},
    [OBS_STATUS(CORRECTED)] = {"corrected", NULL},
    [OBS_STATUS(CANCELLED)] = {"cancelled", NULL},
    [OBS_STATUS(ENTERED_IN_ERROR)] = {"entered-in-error", NULL},
    [OBS_STATUS(UNKNOWN)] = {"unknown", NULL},
};

static const fcode report_status[] = {
    [REPORT_STATUS(REGISTERED)] = {"registered", NULL},
    [REPORT_STATUS(PARTIAL)] = {"partial", NULL},
    [REPORT_STATUS(PRELIMINARY)] = {"preliminary", NULL},
    [REPORT_STATUS(FINAL)] = {"final", NULL},
    [REPORT_STATUS(AMENDED)] = {"amended", NULL},
    [REPORT_STATUS(CORRECTED)] = {"corrected", NULL},
    [REPORT_STATUS(APPENDED)] = {"appended", NULL},
    [REPORT_STATUS(CANCELLED)] = {"cancelled", NULL},
    [REPORT_STATUS(ENTERED_IN_ERROR)] = {"entered-in-error", NULL},
    [REPORT_STATUS(UNKNOWN)] = {"unknown", NULL},
};

/* The observation-status of a result line that states none, from its
 * report's status: a partial report's lines may be unverified
 * ("preliminary"); "appended" is a kind of "amended" in
 * diagnostic-report-status, and observation-status has "amended". */
static const fcode report_line_status[] = {
    [REPORT_STATUS(REGISTERED)] = {"registered", NULL},
    [REPORT_STATUS(PARTIAL)] = {"preliminary", NULL},
    [REPORT_STATUS(PRELIMINARY)] = {"preliminary", NULL},
    [REPORT_STATUS(FINAL)] = {"final", NULL},
    [REPORT_STATUS(AMENDED)] = {"amended", NULL},
    [REPORT_STATUS(CORRECTED)] = {"corrected", NULL},
    [REPORT_STATUS(APPENDED)] = {"amended", NULL},
    [REPORT_STATUS(CANCELLED)] = {"cancelled", NULL},
    [REPORT_STATUS(ENTERED_IN_ERROR)] = {"entered-in-error", NULL},
    [REPORT_STATUS(UNKNOWN)] = {"unknown", NULL},
};

/* A formatted string, returned-owned (free()); NULL when out of memory. */
__attribute__((format(printf, 1, 2))) static char *str_fmt(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    return NULL;
  char *s = malloc((size_t)n + 1);
  if (s == NULL)
    return NULL;
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return s;
}

/* Annotations, one per non-empty note. */
static json_t *annotations(char *const *notes, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++)
    if (fj_has(notes[i]))
      json_array_append_new(a, json_pack("{s:s}", "text", notes[i]));
  return a;
}

/* referenceRange: SimpleQuantity bounds, and a range that states no low,
 * high or text is left out (obs-3). */
static json_t *ranges(Clinlog__V1__ReferenceRange *const *rr, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++) {
    json_t *r = fj_reference_range(rr[i]);
    if (r == NULL)
      continue;
    json_object_del(json_object_get(r, "low"), "comparator");
    json_object_del(json_object_get(r, "high"), "comparator");
    if (json_object_get(r, "low") == NULL && json_object_get(r, "high") == NULL &&
        json_object_get(r, "text") == NULL) {
      json_decref(r);
      continue;
    }
    json_array_append_new(a, r);
  }
  return a;
}

/* ---- result values (ObservationRecorded, LabResult) ---- */

enum { VAL_NONE, VAL_QUANTITY, VAL_STRING, VAL_CODE, VAL_BOOL, VAL_DATETIME };

typedef struct obs_value {
  int kind; /* VAL_* */
  const Clinlog__V1__Quantity *quantity;
  const char *string;
  const Clinlog__V1__Code *code;
  int boolean;
  const Google__Protobuf__Timestamp *datetime;
} obs_value;

static obs_value recorded_value(const Clinlog__V1__ObservationRecorded *b) {
  obs_value v = {.kind = VAL_NONE};
  switch (b->value_case) {
  case CLINLOG__V1__OBSERVATION_RECORDED__VALUE_QUANTITY:
    v.kind = VAL_QUANTITY;
    v.quantity = b->quantity;
    break;
  case CLINLOG__V1__OBSERVATION_RECORDED__VALUE_STRING_VALUE:
    v.kind = VAL_STRING;
    v.string = b->string_value;
    break;
  case CLINLOG__V1__OBSERVATION_RECORDED__VALUE_CODE_VALUE:
    v.kind = VAL_CODE;
    v.code = b->code_value;
    break;
  case CLINLOG__V1__OBSERVATION_RECORDED__VALUE_BOOL_VALUE:
    v.kind = VAL_BOOL;
    v.boolean = b->bool_value;
    break;
  case CLINLOG__V1__OBSERVATION_RECORDED__VALUE_DATETIME_VALUE:
    v.kind = VAL_DATETIME;
    v.datetime = b->datetime_value;
    break;
  default:
    break;
  }
  return v;
}

static obs_value lab_value(const Clinlog__V1__LabResult *r) {
  obs_value v = {.kind = VAL_NONE};
  switch (r->value_case) {
  case CLINLOG__V1__LAB_RESULT__VALUE_QUANTITY:
    v.kind = VAL_QUANTITY;
    v.quantity = r->quantity;
    break;
  case CLINLOG__V1__LAB_RESULT__VALUE_STRING_VALUE:
    v.kind = VAL_STRING;
    v.string = r->string_value;
    break;
  case CLINLOG__V1__LAB_RESULT__VALUE_CODE_VALUE:
    v.kind = VAL_CODE;
    v.code = r->code_value;
    break;
  case CLINLOG__V1__LAB_RESULT__VALUE_BOOL_VALUE:
    v.kind = VAL_BOOL;
    v.boolean = r->bool_value;
    break;
  case CLINLOG__V1__LAB_RESULT__VALUE_DATETIME_VALUE:
    v.kind = VAL_DATETIME;
    v.datetime = r->datetime_value;
    break;
  default:
    break;
  }
  return v;
}

/* Sets value[x] on o; 1 if the value states something (an empty string or
 * an empty Quantity is no value). */
static int set_value(json_t *o, const obs_value *v) {
  const char *key = NULL;
  json_t *val = NULL;
  switch (v->kind) {
  case VAL_QUANTITY:
    key = "valueQuantity";
    val = fj_quantity(v->quantity);
    break;
  case VAL_STRING:
    key = "valueString";
    val = fj_has(v->string) ? json_string(v->string) : NULL;
    break;
  case VAL_CODE:
    key = "valueCodeableConcept";
    val = fj_concept_code(v->code);
    break;
  case VAL_BOOL:
    key = "valueBoolean";
    val = json_boolean(v->boolean);
    break;
  case VAL_DATETIME:
    key = "valueDateTime";
    val = fj_instant(v->datetime);
    break;
  default:
    return 0;
  }
  if (val == NULL)
    return 0;
  json_object_set_new(o, key, val);
  return 1;
}

/* dataAbsentReason of a result with no value: the one the event states, or
 * "unknown" (none when `parts`: a panel's value is in its components). A
 * result with a value has none (obs-6). */
static void set_absent(json_t *o, int has_value, const Clinlog__V1__Code *reason, int parts) {
  if (has_value)
    return;
  json_t *r = fj_concept_code(reason);
  if (r == NULL && !parts)
    r = fj_absent_reason_unknown();
  fj_set(o, "dataAbsentReason", r);
}

/* ---- ObservationRecorded -> Observation ---- */

static json_t *component(const Clinlog__V1__Component *c) {
  if (c == NULL || (c->code == NULL && c->value == NULL && c->interpretation == NULL))
    return NULL;
  json_t *o = json_object();
  json_object_set_new(o, "code", fj_or_unknown(fj_concept_code(c->code)));
  json_t *v = fj_quantity(c->value);
  if (v != NULL)
    json_object_set_new(o, "valueQuantity", v);
  else
    json_object_set_new(o, "dataAbsentReason", fj_absent_reason_unknown());
  fj_set(o, "interpretation", mc_one(fj_concept_code(c->interpretation)));
  return o;
}

int mc_observation(cl_fhir_map *m, const Clinlog__V1__ObservationRecorded *b, cl_err *err) {
  if (!fj_has(b->observation_id) || m->patient_id == NULL)
    return 0;
  char id[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, "Observation", b->observation_id, id);
  json_t *o = cl_fhir_new("Observation", id);
  json_t *spec = mc_specimen(m, b->specimen, "specimen-1", NULL);
  fj_set(o, "contained", mc_one(spec));
  fj_set_one(o, "identifier", fj_business_id(b->observation_id));
  const char *status = code_of(PICK(observation_status, b->status));
  json_object_set_new(o, "status", json_string(status != NULL ? status : "unknown"));
  fj_set(o, "category", fj_concepts_code(b->category, b->n_category));
  json_object_set_new(o, "code", fj_or_unknown(fj_concept(b->code)));
  fj_set(o, "subject", cl_fhir_patient_ref(m));
  fj_set(o, "encounter", cl_fhir_pref(m, "Encounter", b->encounter_id));
  fj_set(o, "effectiveDateTime",
         fj_instant(b->effective != NULL ? b->effective : m->ev->occurred_at));
  fj_set(o, "performer", fj_references(b->performers, b->n_performers));
  obs_value v = recorded_value(b);
  json_t *parts = json_array();
  for (size_t i = 0; i < b->n_components; i++)
    fj_push(parts, component(b->components[i]));
  set_absent(o, set_value(o, &v), b->data_absent_reason, json_array_size(parts) > 0);
  fj_set(o, "interpretation", fj_concepts_code(b->interpretation, b->n_interpretation));
  fj_set(o, "note", fj_note(b->note));
  fj_set(o, "bodySite", fj_concept_code(b->body_site));
  fj_set(o, "method", fj_concept_code(b->method));
  if (spec != NULL)
    json_object_set_new(o, "specimen", mc_local_ref("specimen-1"));
  fj_set(o, "device", cl_fhir_device_ref(b->device_id));
  fj_set(o, "referenceRange", ranges(b->reference_range, b->n_reference_range));
  fj_set(o, "component", parts);
  return cl_fhir_map_put(m, o, err);
}

/* ---- LabResultReported -> Observations + DiagnosticReport ---- */

/* The key of result line i within its report, stable across the report's
 * versions: the line's own observation_id; else its test code (the first
 * coding with a code, system|code, with the OBX-4 sub-id that tells apart
 * repeats such as one organism's lines); else its position (OBX-1 set id,
 * or its index). A key a previous line of the report already has gets
 * "#<n>" (its n-th occurrence). Returned-owned; NULL when out of memory. */
static char *line_key(const Clinlog__V1__LabResult *r, size_t i, json_t *seen) {
  char *base = NULL;
  const Clinlog__V1__Code *c = NULL;
  for (size_t k = 0; r->code != NULL && k < r->code->n_coding && c == NULL; k++)
    if (r->code->coding[k] != NULL && fj_has(r->code->coding[k]->code))
      c = r->code->coding[k];
  const char *sub = fj_has(r->sub_id) ? r->sub_id : "";
  const char *sep = fj_has(r->sub_id) ? "/" : "";
  if (fj_has(r->observation_id))
    base = str_fmt("%s", r->observation_id);
  else if (c != NULL)
    base = str_fmt("%s|%s%s%s", c->system != NULL ? c->system : "", c->code, sep, sub);
  else if (fj_has(r->set_id))
    base = str_fmt("obx-%s%s%s", r->set_id, sep, sub);
  else
    base = str_fmt("line-%zu", i + 1);
  if (base == NULL)
    return NULL;
  json_int_t n = json_integer_value(json_object_get(seen, base)) + 1;
  json_object_set_new(seen, base, json_integer(n));
  if (n == 1)
    return base;
  char *key = str_fmt("%s#%lld", base, (long long)n);
  free(base);
  return key;
}

/* The ServiceRequest a report's placer order number names, if one is on
 * record: the view can look a resource up by id only, so this finds the
 * ServiceOrdered whose order_id is the placer order number (and checks
 * that it carries that placer number). *out: a Reference, or NULL. */
static int placer_order(cl_fhir_map *m, const Clinlog__V1__Identifier *placer, json_t **out,
                        cl_err *err) {
  *out = NULL;
  if (placer == NULL || !fj_has(placer->value))
    return 0;
  char id[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, "ServiceRequest", placer->value, id);
  json_t *sr;
  int rc = cl_fhir_map_get(m, "ServiceRequest", id, &sr, err);
  if (rc == CL_ENOTFOUND)
    return 0;
  if (rc < 0)
    return rc;
  json_t *ids = json_object_get(sr, "identifier");
  for (size_t i = 0; i < json_array_size(ids) && *out == NULL; i++) {
    json_t *ident = json_array_get(ids, i);
    json_t *coding = json_array_get(json_object_get(json_object_get(ident, "type"), "coding"), 0);
    const char *type = json_string_value(json_object_get(coding, "code"));
    const char *value = json_string_value(json_object_get(ident, "value"));
    const char *sys = json_string_value(json_object_get(ident, "system"));
    if (type == NULL || strcmp(type, "PLAC") != 0 || value == NULL ||
        strcmp(value, placer->value) != 0)
      continue;
    if (sys == NULL || !fj_has(placer->system) || strcmp(sys, placer->system) == 0)
      *out = fj_ref("ServiceRequest", id);
  }
  json_decref(sr);
  return 0;
}

/* The Observation of one result line: logical id `id`, business id `bid`;
 * line_status: the status of a line that states none. */
static json_t *lab_line(const cl_fhir_map *m, const Clinlog__V1__LabResultReported *b,
                        const Clinlog__V1__LabResult *r, const char *id, const char *bid,
                        const json_t *based_on, const char *line_status) {
  json_t *o = cl_fhir_new("Observation", id);
  fj_set_one(o, "identifier", fj_business_id(bid));
  if (based_on != NULL)
    fj_set_one(o, "basedOn", json_deep_copy(based_on));
  const char *status = code_of(PICK(observation_status, r->status));
  json_object_set_new(o, "status",
                      json_string(status != NULL        ? status
                                  : line_status != NULL ? line_status
                                                        : "unknown"));
  fj_set_one(o, "category", fj_concept_lit(OBS_CATEGORY, "laboratory", "Laboratory"));
  json_object_set_new(o, "code", fj_or_unknown(fj_concept(r->code)));
  fj_set(o, "subject", cl_fhir_patient_ref(m));
  fj_set(o, "encounter", cl_fhir_pref(m, "Encounter", b->encounter_id));
  fj_set(o, "effectiveDateTime", fj_instant(r->effective != NULL ? r->effective : b->effective));
  fj_set(o, "issued", fj_instant(b->issued != NULL ? b->issued : m->ev->occurred_at));
  fj_set(o, "performer", mc_one(fj_reference(r->performer != NULL ? r->performer : b->performer)));
  obs_value v = lab_value(r);
  set_absent(o, set_value(o, &v), r->data_absent_reason, 0);
  fj_set(o, "interpretation", fj_concepts_code(r->interpretation, r->n_interpretation));
  fj_set(o, "note", annotations(r->notes, r->n_notes));
  fj_set(o, "method", fj_concept_code(r->method));
  fj_set(o, "referenceRange", ranges(r->reference_range, r->n_reference_range));
  return o;
}

/* The order a report fulfils when no ServiceRequest of the view is known:
 * a contained ServiceRequest holding what the report says of it (OBR-2/3,
 * OBR-4, OBR-16), or NULL if it says nothing. Its status is unknown (the
 * report does not say). */
static json_t *contained_order(const cl_fhir_map *m, const Clinlog__V1__LabResultReported *b) {
  json_t *ids = json_array();
  fj_push(ids, fj_identifier_typed(b->placer_order_number, "PLAC", "Placer Identifier"));
  fj_push(ids, fj_identifier_typed(b->filler_order_number, "FILL", "Filler Identifier"));
  json_t *req = fj_reference(b->ordering_provider);
  if (json_array_size(ids) == 0 && req == NULL) {
    json_decref(ids);
    return NULL;
  }
  json_t *o = cl_fhir_new("ServiceRequest", "order");
  fj_set(o, "identifier", ids);
  json_object_set_new(o, "status", json_string("unknown"));
  json_object_set_new(o, "intent", json_string("order"));
  fj_set(o, "code", fj_concept(b->code));
  fj_set(o, "subject", cl_fhir_patient_ref(m));
  fj_set(o, "requester", req);
  return o;
}

int mc_lab_report(cl_fhir_map *m, const Clinlog__V1__LabResultReported *b, cl_err *err) {
  if (!fj_has(b->report_id) || m->patient_id == NULL)
    return 0;
  /* the order it fulfils: the ServiceOrdered it names, else the one its
   * placer order number matches */
  json_t *based_on = cl_fhir_pref(m, "ServiceRequest", b->order_id);
  int rc = 0;
  if (based_on == NULL && (rc = placer_order(m, b->placer_order_number, &based_on, err)) < 0)
    return rc;
  const fcode *st = PICK(report_status, b->status);
  json_t *results = json_array(), *seen = json_object();
  for (size_t i = 0; rc == 0 && i < b->n_results; i++) {
    const Clinlog__V1__LabResult *r = b->results[i];
    if (r == NULL)
      continue;
    char *key = line_key(r, i, seen);
    char *bid = key != NULL ? str_fmt("%s/%s", b->report_id, key) : NULL;
    /* the business identifier: the line's own id, unless another line of
     * the report has it too (then the derived one) */
    int own = key != NULL && fj_has(r->observation_id) && strcmp(key, r->observation_id) == 0;
    free(key);
    if (bid == NULL) {
      rc = cl_err_set(err, CL_ENOMEM, "out of memory");
      break;
    }
    char id[CL_FHIR_ID_MAX];
    cl_fhir_pid(m, "Observation", bid, id);
    json_t *o = lab_line(m, b, r, id, own ? r->observation_id : bid, based_on,
                         code_of(PICK(report_line_status, b->status)));
    free(bid);
    json_array_append_new(results, fj_ref("Observation", id));
    rc = cl_fhir_map_put(m, o, err);
  }
  json_decref(seen);
  if (rc < 0) {
    json_decref(results);
    json_decref(based_on);
    return rc;
  }

  char id[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, "DiagnosticReport", b->report_id, id);
  json_t *d = cl_fhir_new("DiagnosticReport", id);
  json_t *contained = json_array(), *specs = json_array();
  json_t *order = based_on == NULL ? contained_order(m, b) : NULL;
  if (order != NULL) {
    json_array_append_new(contained, order);
    based_on = mc_local_ref("order");
  }
  for (size_t i = 0; i < b->n_specimens; i++) {
    char cid[32];
    snprintf(cid, sizeof cid, "specimen-%zu", json_array_size(specs) + 1);
    json_t *s = mc_specimen(m, b->specimens[i], cid, b->accession_number);
    if (s == NULL)
      continue;
    json_array_append_new(contained, s);
    json_array_append_new(specs, mc_local_ref(cid));
  }
  fj_set(d, "contained", contained);
  /* R4 has no DiagnosticReport.note (R5 does): the report's comments */
  json_t *ext = json_array();
  for (size_t i = 0; i < b->n_notes; i++)
    if (fj_has(b->notes[i]))
      json_array_append_new(
          ext, fj_ext(REPORT_NOTE_EXT, "valueAnnotation", json_pack("{s:s}", "text", b->notes[i])));
  fj_set(d, "extension", ext);
  json_t *ids = json_array();
  fj_push(ids, fj_business_id(b->report_id));
  fj_push(ids, fj_identifier_typed(b->placer_order_number, "PLAC", "Placer Identifier"));
  fj_push(ids, fj_identifier_typed(b->filler_order_number, "FILL", "Filler Identifier"));
  fj_push(ids, fj_identifier_lit("ACSN", "Accession ID", b->accession_number));
  fj_set(d, "identifier", ids);
  fj_set(d, "basedOn", mc_one(based_on));
  json_object_set_new(d, "status", json_string(st != NULL ? st->code : "unknown"));
  /* the v2 diagnostic section as sent, and LAB: every report here is a
   * laboratory's */
  json_t *cat = json_array();
  fj_push(cat, fj_concept_code(b->category));
  if (b->category == NULL || b->category->code == NULL || strcmp(b->category->code, "LAB") != 0)
    fj_push(cat, fj_concept_lit(V2_0074, "LAB", "Laboratory"));
  fj_set(d, "category", cat);
  json_object_set_new(d, "code", fj_or_unknown(fj_concept(b->code)));
  fj_set(d, "subject", cl_fhir_patient_ref(m));
  fj_set(d, "encounter", cl_fhir_pref(m, "Encounter", b->encounter_id));
  fj_set(d, "effectiveDateTime", fj_instant(b->effective));
  fj_set(d, "issued", fj_instant(b->issued != NULL ? b->issued : m->ev->occurred_at));
  fj_set(d, "performer", mc_one(fj_reference(b->performer)));
  fj_set(d, "resultsInterpreter", mc_one(fj_reference(b->results_interpreter)));
  fj_set(d, "specimen", specs);
  fj_set(d, "result", results);
  fj_set_str(d, "conclusion", b->conclusion);
  return cl_fhir_map_put(m, d, err);
}

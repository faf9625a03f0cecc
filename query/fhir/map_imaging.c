/* Imaging events (400-402) -> ServiceRequest, ImagingStudy, DiagnosticReport
 * (docs/fhir-map-pharmacy-imaging-portal.md).
 *
 *   ImagingOrdered       ServiceRequest (status active, intent order,
 *                        category Imaging), id from order_id
 *   ImagingStudyRecorded ImagingStudy (status available), id from the Study
 *                        Instance UID; the DICOMweb endpoint is a contained
 *                        Endpoint
 *   ImagingReportSigned  DiagnosticReport (category RAD), id from report_id
 *
 * A later event with the same business id replaces the resource as a whole
 * (a rescheduled order, a study with more series, an addendum). An event
 * without its business id, or outside a patient's stream (every resource
 * here is about a patient), is not mapped.
 *
 * The study and the report point at their order by order_id when they know
 * it (a literal reference), else by the accession number (a logical
 * reference: Reference.identifier of type ACSN, the identifier the order
 * carries too). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/fhir/fj.h"
#include "query/fhir/map.h"

#define DCM "http://dicom.nema.org/resources/ontology/DCM"

/* ---- helpers ---- */

/* The order a study or report is based on: by order_id, else by accession
 * number. */
static json_t *order_ref(const cl_fhir_map *m, const char *order_id, const char *acsn) {
  json_t *r = cl_fhir_pref(m, "ServiceRequest", order_id);
  if (r != NULL)
    return r;
  json_t *id = fj_identifier_lit("ACSN", "Accession ID", acsn);
  if (id == NULL)
    return NULL;
  return json_pack("{s:s,s:o}", "type", "ServiceRequest", "identifier", id);
}

/* A modality Coding: the Code as sent, in DICOM's system when it came with
 * none (CID 29 codes are DCM codes). */
static json_t *modality(const Clinlog__V1__Code *c) {
  json_t *o = fj_coding(c);
  if (o != NULL && json_object_get(o, "system") == NULL && json_object_get(o, "code") != NULL) {
    json_t *s = json_pack("{s:s}", "system", DCM);
    json_object_update(s, o);
    json_decref(o);
    o = s;
  }
  return o;
}

/* ---- ServiceRequest ---- */

static int ordered(cl_fhir_map *m, const Clinlog__V1__ImagingOrdered *b, cl_err *err) {
  if (b->order_id == NULL || b->order_id[0] == '\0' || m->patient_id == NULL)
    return 0;
  char id[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, "ServiceRequest", b->order_id, id);
  json_t *r = cl_fhir_new("ServiceRequest", id);
  json_t *ids = json_array();
  fj_push(ids, fj_business_id(b->order_id));
  fj_push(ids, fj_identifier_lit("ACSN", "Accession ID", b->accession_number));
  fj_push(ids, fj_identifier_typed(b->placer_order_number, "PLAC", "Placer Identifier"));
  fj_push(ids, fj_identifier_text("Requested Procedure ID", b->requested_procedure_id));
  fj_set(r, "identifier", ids);
  json_object_set_new(r, "status", json_string("active"));
  json_object_set_new(r, "intent", json_string("order"));
  fj_set_one(r, "category", fj_concept_lit("http://snomed.info/sct", "363679005", "Imaging"));
  fj_set_str(r, "priority", fj_request_priority(b->priority));
  /* the procedure is the code and the modality a detail of it; orderDetail
   * needs a code (prr-1), so with no procedure the modality is the code */
  json_t *code = fj_concept(b->procedure);
  json_t *mod = modality(b->modality);
  json_t *modcc = NULL;
  if (mod != NULL) {
    modcc = json_object();
    fj_set_one(modcc, "coding", mod);
  }
  if (code != NULL) {
    fj_set(r, "code", code);
    fj_set_one(r, "orderDetail", modcc);
  } else {
    fj_set(r, "code", modcc);
  }
  fj_set(r, "subject", cl_fhir_patient_ref(m));
  fj_set(r, "encounter", cl_fhir_pref(m, "Encounter", b->encounter_id));
  fj_set(r, "occurrenceDateTime", fj_instant(b->scheduled_at));
  fj_set(r, "authoredOn", fj_instant(m->ev->occurred_at));
  fj_set(r, "requester", fj_reference(b->requester));
  fj_set_one(r, "locationReference", fj_location_ref(b->location));
  fj_set(r, "reasonCode", fj_concepts(b->reason, b->n_reason));
  if (b->body_site != NULL)
    fj_set_one(r, "bodySite", fj_concept_code(b->body_site));
  fj_set(r, "note", fj_note(b->clinical_history));
  return cl_fhir_map_put(m, r, err);
}

/* ---- ImagingStudy ---- */

/* The id of the contained Endpoint. */
#define ENDPOINT_ID "wado-rs"

static json_t *endpoint(const char *address) {
  if (address == NULL || address[0] == '\0')
    return NULL;
  return json_pack("{s:s,s:s,s:s,s:{s:s,s:s,s:s},s:[{s:[{s:s,s:s,s:s}]}],s:[s],s:s}",
                   "resourceType", "Endpoint", "id", ENDPOINT_ID, "status", "active",
                   "connectionType", "system",
                   "http://terminology.hl7.org/CodeSystem/endpoint-connection-type", "code",
                   "dicom-wado-rs", "display", "DICOM WADO-RS", "payloadType", "coding", "system",
                   "http://terminology.hl7.org/CodeSystem/endpoint-payload-type", "code", "any",
                   "display", "Any", "payloadMimeType", "application/dicom", "address", address);
}

/* urn:oid:<uid>, the FHIR form of a DICOM UID (NULL if empty). */
static json_t *oid_urn(const char *uid) {
  if (uid == NULL || uid[0] == '\0')
    return NULL;
  size_t n = strlen(uid) + 9;
  char *s = malloc(n);
  if (s == NULL)
    return NULL;
  snprintf(s, n, "urn:oid:%s", uid);
  json_t *j = json_string(s);
  free(s);
  return j;
}

static json_t *instance(const Clinlog__V1__ImagingInstance *in) {
  if (in == NULL || in->sop_instance_uid == NULL || in->sop_instance_uid[0] == '\0')
    return NULL; /* uid is required and the only key of an instance */
  json_t *o = json_pack("{s:s}", "uid", in->sop_instance_uid);
  json_t *cls = oid_urn(in->sop_class_uid);
  if (cls != NULL) /* a SOP Class UID is a URI: system urn:ietf:rfc:3986 */
    json_object_set_new(o, "sopClass",
                        json_pack("{s:s,s:o}", "system", "urn:ietf:rfc:3986", "code", cls));
  else /* required */
    json_object_set_new(o, "sopClass", fj_unknown());
  if (in->number > 0)
    json_object_set_new(o, "number", json_integer(in->number));
  fj_set_str(o, "title", in->title);
  return o;
}

static json_t *series(const Clinlog__V1__ImagingSeries *s) {
  if (s == NULL || s->series_instance_uid == NULL || s->series_instance_uid[0] == '\0')
    return NULL; /* uid is required and the only key of a series */
  json_t *o = json_pack("{s:s}", "uid", s->series_instance_uid);
  if (s->number > 0)
    json_object_set_new(o, "number", json_integer(s->number));
  json_t *mod = modality(s->modality);
  json_object_set_new(o, "modality", fj_or_unknown(mod));
  fj_set_str(o, "description", s->description);
  if (s->number_of_instances > 0)
    json_object_set_new(o, "numberOfInstances", json_integer(s->number_of_instances));
  fj_set(o, "bodySite", fj_coding(s->body_site));
  fj_set(o, "laterality", fj_coding(s->laterality));
  fj_set(o, "started", fj_instant(s->started));
  json_t *inst = json_array();
  for (size_t i = 0; i < s->n_instances; i++)
    fj_push(inst, instance(s->instances[i]));
  fj_set(o, "instance", inst);
  return o;
}

static int study_recorded(cl_fhir_map *m, const Clinlog__V1__ImagingStudyRecorded *b, cl_err *err) {
  if (b->study_instance_uid == NULL || b->study_instance_uid[0] == '\0' || m->patient_id == NULL)
    return 0;
  char id[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, "ImagingStudy", b->study_instance_uid, id);
  json_t *r = cl_fhir_new("ImagingStudy", id);
  json_t *ep = endpoint(b->endpoint);
  if (ep != NULL)
    fj_set_one(r, "contained", ep);
  json_t *ids = json_array();
  fj_push(ids, fj_business_id(b->study_instance_uid));
  json_t *uid = oid_urn(b->study_instance_uid);
  fj_push(ids, json_pack("{s:s,s:o}", "system", "urn:dicom:uid", "value", uid));
  fj_push(ids, fj_identifier_lit("ACSN", "Accession ID", b->accession_number));
  fj_push(ids, fj_identifier_text("Study ID", b->study_id));
  fj_set(r, "identifier", ids);
  json_object_set_new(r, "status", json_string("available"));
  json_t *mods = json_array();
  for (size_t i = 0; i < b->n_modalities; i++)
    fj_push(mods, modality(b->modalities[i]));
  fj_set(r, "modality", mods);
  fj_set(r, "subject", cl_fhir_patient_ref(m));
  fj_set(r, "encounter", cl_fhir_pref(m, "Encounter", b->encounter_id));
  fj_set(r, "started", fj_instant(b->started));
  fj_set_one(r, "basedOn", order_ref(m, b->order_id, b->accession_number));
  fj_set(r, "referrer", fj_reference(b->referring_physician));
  if (ep != NULL)
    fj_set_one(r, "endpoint", json_pack("{s:s}", "reference", "#" ENDPOINT_ID));
  if (b->number_of_series > 0) /* 0 is "not stated" (proto3) */
    json_object_set_new(r, "numberOfSeries", json_integer(b->number_of_series));
  if (b->number_of_instances > 0)
    json_object_set_new(r, "numberOfInstances", json_integer(b->number_of_instances));
  if (b->procedure != NULL)
    fj_set_one(r, "procedureCode", fj_concept(b->procedure));
  fj_set(r, "location", fj_location_ref(b->location));
  fj_set_str(r, "description", b->description);
  json_t *ser = json_array();
  for (size_t i = 0; i < b->n_series; i++)
    fj_push(ser, series(b->series[i]));
  fj_set(r, "series", ser);
  return cl_fhir_map_put(m, r, err);
}

/* ---- DiagnosticReport ---- */

/* FHIR diagnostic-report-status (required binding); UNSPECIFIED ->
 * unknown. */
static const char *report_status(Clinlog__V1__DiagnosticReportStatus s) {
  switch (s) {
  case CLINLOG__V1__DIAGNOSTIC_REPORT_STATUS__DIAGNOSTIC_REPORT_STATUS_REGISTERED:
    return "registered";
  case CLINLOG__V1__DIAGNOSTIC_REPORT_STATUS__DIAGNOSTIC_REPORT_STATUS_PARTIAL:
    return "partial";
  case CLINLOG__V1__DIAGNOSTIC_REPORT_STATUS__DIAGNOSTIC_REPORT_STATUS_PRELIMINARY:
    return "preliminary";
  case CLINLOG__V1__DIAGNOSTIC_REPORT_STATUS__DIAGNOSTIC_REPORT_STATUS_FINAL:
    return "final";
  case CLINLOG__V1__DIAGNOSTIC_REPORT_STATUS__DIAGNOSTIC_REPORT_STATUS_AMENDED:
    return "amended";
  case CLINLOG__V1__DIAGNOSTIC_REPORT_STATUS__DIAGNOSTIC_REPORT_STATUS_CORRECTED:
    return "corrected";
  case CLINLOG__V1__DIAGNOSTIC_REPORT_STATUS__DIAGNOSTIC_REPORT_STATUS_APPENDED:
    return "appended";
  case CLINLOG__V1__DIAGNOSTIC_REPORT_STATUS__DIAGNOSTIC_REPORT_STATUS_CANCELLED:
    return "cancelled";
  case CLINLOG__V1__DIAGNOSTIC_REPORT_STATUS__DIAGNOSTIC_REPORT_STATUS_ENTERED_IN_ERROR:
    return "entered-in-error";
  case CLINLOG__V1__DIAGNOSTIC_REPORT_STATUS__DIAGNOSTIC_REPORT_STATUS_UNKNOWN:
  default:
    return "unknown";
  }
}

static int report_signed(cl_fhir_map *m, const Clinlog__V1__ImagingReportSigned *b, cl_err *err) {
  if (b->report_id == NULL || b->report_id[0] == '\0' || m->patient_id == NULL)
    return 0;
  char id[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, "DiagnosticReport", b->report_id, id);
  json_t *r = cl_fhir_new("DiagnosticReport", id);
  json_t *ids = json_array();
  fj_push(ids, fj_business_id(b->report_id));
  fj_push(ids, fj_identifier_lit("ACSN", "Accession ID", b->accession_number));
  fj_set(r, "identifier", ids);
  fj_set_one(r, "basedOn", order_ref(m, b->order_id, b->accession_number));
  json_object_set_new(r, "status", json_string(report_status(b->status)));
  fj_set_one(r, "category",
             fj_concept_lit("http://terminology.hl7.org/CodeSystem/v2-0074", "RAD", "Radiology"));
  /* code is required: the procedure reported, else LOINC's generic
   * "Diagnostic imaging study" report */
  json_t *code = fj_concept(b->procedure);
  json_object_set_new(
      r, "code",
      code != NULL ? code
                   : fj_concept_lit("http://loinc.org", "18748-4", "Diagnostic imaging study"));
  fj_set(r, "subject", cl_fhir_patient_ref(m));
  fj_set(r, "encounter", cl_fhir_pref(m, "Encounter", b->encounter_id));
  fj_set(r, "issued", fj_instant(b->signed_at != NULL ? b->signed_at : m->ev->occurred_at));
  json_t *interp = json_array(); /* the signing radiologist first */
  fj_push(interp, fj_reference(b->radiologist));
  fj_push(interp, fj_reference(b->resident));
  fj_set(r, "resultsInterpreter", interp);
  fj_set_one(r, "imagingStudy", cl_fhir_pref(m, "ImagingStudy", b->study_instance_uid));
  fj_set_str(r, "conclusion", b->conclusion);
  json_t *codes = fj_concepts(b->conclusion_codes, b->n_conclusion_codes);
  /* a critical-result flag (ACR actionable-finding category...) is a coded
   * conclusion of the report too */
  if (b->critical_result != NULL)
    fj_push(codes, fj_concept_code(b->critical_result));
  fj_set(r, "conclusionCode", codes);
  fj_set_one(r, "presentedForm",
             fj_text_attachment(b->findings, "text/plain; charset=utf-8", "Findings"));
  return cl_fhir_map_put(m, r, err);
}

int cl_fhir_map_imaging(cl_fhir_map *m, cl_err *err) {
  const Clinlog__V1__Event *ev = m->ev;
  switch (ev->body_case) {
  case CLINLOG__V1__EVENT__BODY_IMAGING_ORDERED:
    return ordered(m, ev->imaging_ordered, err);
  case CLINLOG__V1__EVENT__BODY_IMAGING_STUDY_RECORDED:
    return study_recorded(m, ev->imaging_study_recorded, err);
  case CLINLOG__V1__EVENT__BODY_IMAGING_REPORT_SIGNED:
    return report_signed(m, ev->imaging_report_signed, err);
  default:
    return 0;
  }
}

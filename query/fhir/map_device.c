/* Device events (700-703) -> Device, Observation, DeviceMetric,
 * MedicationAdministration.
 *
 *   DeviceRegistered       Device. Devices are unique in the whole log: the
 *                          id is cl_fhir_id("Device", NULL, device_id), the
 *                          same from the device-<id> stream (unassigned) and
 *                          from a patient's stream (assigned). A later
 *                          registration is a new version: the fields it
 *                          states replace the current ones, the others stay;
 *                          the patient is always restated (the stream's, or
 *                          none in a device stream without patient_id).
 *   DeviceReadingRecorded  Observation with device. A reading id may be the
 *                          device's own sequence number, so the business id
 *                          is device_id|reading_id (no clash with another
 *                          device's readings or with ObservationRecorded).
 *   DeviceStatusReported   DeviceMetric of the device's status (one per
 *                          device, a version per report: operationalStatus
 *                          from connectivity, type the status codes, source
 *                          the Device) and an Observation of the report
 *                          (business id device_id|status|<event id>;
 *                          subject and device the Device; a component each
 *                          for battery, signal strength and connectivity).
 *   DispenserEventRecorded MedicationAdministration of the dose (business
 *                          id dispenser|device_id|dispenser_event_id):
 *                          completed (taken, late) or not-done (missed,
 *                          skipped, with statusReason), device the
 *                          dispenser, request the MedicationRequest.
 *
 * Element tables: docs/fhir-map-billing-device-decision.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/fhir/fj.h"
#include "query/fhir/map.h"

#define ASSIGNED_AT_EXT FJ_CLINLOG_EXT "device-assigned-at"
#define MDC "urn:iso:std:iso:11073:10101"
#define LOINC "http://loinc.org"

/* ---- DeviceRegistered ---- */

/* A control picture (U+2400..U+241F, U+2421) at s: the control character it
 * stands for (cl_fhir_sanitize made it), else -1. */
static int control_of(const unsigned char *s) {
  if (s[0] != 0xE2 || s[1] != 0x90)
    return -1;
  if (s[2] >= 0x80 && s[2] <= 0x9F)
    return s[2] - 0x80;
  return s[2] == 0xA1 ? 0x7F : -1;
}

/* The UDI carrier as scanned or printed. The human-readable forms start
 * with their issuer's mark: "(" GS1 application identifiers, "+" HIBCC,
 * "=" ICCBBA. Anything else, or a carrier holding control characters (the
 * GS1 group separator of a scan, which arrives as its control picture), is
 * the AIDC form: FHIR wants its bytes base64-encoded, so the separators are
 * put back first. */
static json_t *udi_carrier(const char *carrier, const char *di) {
  json_t *u = json_object();
  fj_set_str(u, "deviceIdentifier", di);
  if (fj_has(carrier)) {
    const unsigned char *c = (const unsigned char *)carrier;
    size_t n = strlen(carrier), controls = 0;
    for (size_t i = 0; i + 2 < n; i++)
      controls += control_of(c + i) >= 0;
    int hrf = controls == 0 && (c[0] == '(' || c[0] == '+' || c[0] == '=');
    const char *issuer = NULL;
    if (c[0] == '(' || (c[0] >= '0' && c[0] <= '9'))
      issuer = "http://hl7.org/fhir/NamingSystem/gs1-di";
    else if (c[0] == '+')
      issuer = "http://hl7.org/fhir/NamingSystem/hibcc-dI";
    else if (c[0] == '=')
      issuer = "http://hl7.org/fhir/NamingSystem/iccbba-other-di";
    fj_set_str(u, "issuer", issuer);
    if (hrf) {
      fj_set_str(u, "carrierHRF", carrier);
    } else {
      unsigned char *raw = malloc(n + 1);
      size_t rn = 0;
      for (size_t i = 0; raw != NULL && i < n;) {
        int cc = i + 2 < n ? control_of(c + i) : -1;
        raw[rn++] = cc >= 0 ? (unsigned char)cc : c[i];
        i += cc >= 0 ? 3 : 1;
      }
      if (raw != NULL)
        fj_set(u, "carrierAIDC", fj_base64(raw, rn));
      free(raw);
    }
  }
  if (json_object_size(u) == 0) {
    json_decref(u);
    return NULL;
  }
  return u;
}

/* FHIR member order of a Device, so that an update reads like a
 * registration. */
static const char *const device_order[] = {
    "resourceType", "id",           "extension", "identifier",   "udiCarrier",
    "status",       "manufacturer", "lotNumber", "serialNumber", "modelNumber",
    "type",         "version",      "patient"};

/* Sets obj[key] = s when the event states it; keeps the current value
 * otherwise. */
static void restate(json_t *obj, const char *key, const char *s) {
  if (fj_has(s))
    json_object_set_new(obj, key, json_string(s));
}

static int device_registered(cl_fhir_map *m, const Clinlog__V1__DeviceRegistered *b, cl_err *err) {
  if (!fj_has(b->device_id))
    return 0;
  char id[CL_FHIR_ID_MAX];
  cl_fhir_id("Device", NULL, b->device_id, id);
  json_t *d;
  int rc = cl_fhir_map_get(m, "Device", id, &d, err);
  if (rc == CL_ENOTFOUND)
    d = cl_fhir_new("Device", id);
  else if (rc < 0)
    return rc;
  json_object_del(d, "meta");

  /* identifier: the device id, then the principal it signs as (restated or
   * kept) */
  json_t *ids = json_array(), *old = json_object_get(d, "identifier");
  json_array_append_new(ids, fj_business_id(b->device_id));
  if (fj_has(b->principal_id)) {
    json_array_append_new(
        ids, json_pack("{s:s,s:s}", "system", FJ_PRINCIPAL_SYSTEM, "value", b->principal_id));
  } else {
    for (size_t i = 0; i < json_array_size(old); i++) {
      json_t *o = json_array_get(old, i);
      const char *sys = json_string_value(json_object_get(o, "system"));
      if (sys != NULL && strcmp(sys, FJ_PRINCIPAL_SYSTEM) == 0)
        json_array_append(ids, o);
    }
  }
  json_object_set_new(d, "identifier", ids);
  json_t *udi = udi_carrier(b->udi_carrier, b->udi_device_identifier);
  if (udi != NULL)
    json_object_set_new(d, "udiCarrier", json_pack("[o]", udi));
  json_object_set_new(d, "status", json_string("active"));
  restate(d, "manufacturer", b->manufacturer);
  restate(d, "lotNumber", b->lot_number);
  restate(d, "serialNumber", b->serial_number);
  restate(d, "modelNumber", b->model);
  json_t *type = fj_concept(b->kind);
  if (type != NULL)
    json_object_set_new(d, "type", type);
  if (fj_has(b->firmware_version))
    json_object_set_new(d, "version",
                        json_pack("[{s:o,s:s}]", "type",
                                  fj_concept_lit(MDC, "531976", "MDC_ID_PROD_SPEC_FW"), "value",
                                  b->firmware_version));

  /* the assignment is restated by every registration */
  json_object_del(d, "patient");
  fj_ext_drop(d, ASSIGNED_AT_EXT);
  const char *pid = m->patient_id != NULL ? m->patient_id : b->patient_id;
  if (fj_has(pid)) {
    char p[CL_FHIR_ID_MAX];
    cl_fhir_id("Patient", NULL, pid, p);
    json_object_set_new(d, "patient", fj_ref("Patient", p));
    if (b->assigned_at != NULL) /* R4 Device has no assignment period */
      fj_ext_add(d, fj_ext(ASSIGNED_AT_EXT, "valueDateTime", fj_instant(b->assigned_at)));
  }
  return cl_fhir_map_put(
      m, fj_in_order(d, device_order, sizeof device_order / sizeof device_order[0]), err);
}

/* ---- DeviceReadingRecorded ---- */

static const char *obs_status(Clinlog__V1__ObservationStatus s) {
  switch (s) {
  case CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_REGISTERED:
    return "registered";
  case CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_PRELIMINARY:
    return "preliminary";
  case CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_FINAL:
    return "final";
  case CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_AMENDED:
    return "amended";
  case CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_CORRECTED:
    return "corrected";
  case CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_CANCELLED:
    return "cancelled";
  case CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_ENTERED_IN_ERROR:
    return "entered-in-error";
  default: /* status is 1..1: not stated is unknown */
    return "unknown";
  }
}

/* The LOINC codes of the FHIR R4 vital signs profiles
 * (observation-vitalsignresult), plus US Core's pulse oximetry 59408-5. */
static int vital_sign(const Clinlog__V1__CodeableConcept *cc) {
  static const char *const vs[] = {"85353-1", "9279-1", "8867-4", "2708-6",  "59408-5",
                                   "8310-5",  "8302-2", "9843-4", "29463-7", "39156-5",
                                   "85354-9", "8480-6", "8462-4", "8478-0"};
  for (size_t i = 0; cc != NULL && i < cc->n_coding; i++) {
    const Clinlog__V1__Code *c = cc->coding[i];
    if (c == NULL || c->system == NULL || c->code == NULL || strcmp(c->system, LOINC) != 0)
      continue;
    for (size_t k = 0; k < sizeof vs / sizeof vs[0]; k++)
      if (strcmp(c->code, vs[k]) == 0)
        return 1;
  }
  return 0;
}

static int reading_recorded(cl_fhir_map *m, const Clinlog__V1__DeviceReadingRecorded *b,
                            cl_err *err) {
  if (!fj_has(b->reading_id))
    return 0;
  char bid[512];
  int w = snprintf(bid, sizeof bid, "%s|%s", b->device_id, b->reading_id);
  if (w < 0 || (size_t)w >= sizeof bid)
    return 0; /* ids this long are not ids */
  char id[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, "Observation", bid, id);
  json_t *o = cl_fhir_new("Observation", id);
  fj_set_one(o, "identifier", fj_business_id(bid));
  json_object_set_new(o, "status", json_string(obs_status(b->status)));
  if (vital_sign(b->code))
    fj_set_one(o, "category",
               fj_concept_lit("http://terminology.hl7.org/CodeSystem/observation-category",
                              "vital-signs", "Vital Signs"));
  json_object_set_new(o, "code", fj_or_unknown(fj_concept(b->code))); /* 1..1 */
  fj_set(o, "subject", cl_fhir_patient_ref(m));
  if (b->measured_at != NULL)
    json_object_set_new(o, "effectiveDateTime", fj_instant(b->measured_at));
  else if (m->ev->occurred_at != NULL)
    json_object_set_new(o, "effectiveDateTime", fj_instant(m->ev->occurred_at));
  fj_set(o, "issued", fj_instant(b->received_at));
  json_t *value = fj_quantity(b->value);
  if (value != NULL)
    json_object_set_new(o, "valueQuantity", value);
  else if (b->n_components == 0)
    json_object_set_new(o, "dataAbsentReason", fj_absent_reason_unknown());
  fj_set(o, "interpretation", fj_concepts_code(b->interpretation, b->n_interpretation));
  fj_set(o, "device", cl_fhir_device_ref(b->device_id));
  json_t *comps = json_array();
  for (size_t i = 0; i < b->n_components; i++) {
    const Clinlog__V1__Component *c = b->components[i];
    json_t *cj = json_object();
    json_object_set_new(cj, "code", fj_or_unknown(fj_concept_code(c->code))); /* 1..1 */
    json_t *cv = fj_quantity(c->value);
    if (cv != NULL)
      json_object_set_new(cj, "valueQuantity", cv);
    else
      json_object_set_new(cj, "dataAbsentReason", fj_absent_reason_unknown());
    Clinlog__V1__Code *one[1] = {c->interpretation};
    fj_set(cj, "interpretation", fj_concepts_code(one, c->interpretation != NULL));
    json_array_append_new(comps, cj);
  }
  fj_set(o, "component", comps);
  return cl_fhir_map_put(m, o, err);
}

/* ---- DeviceStatusReported ---- */

/* The event's id as 32 hex digits. */
static void event_hex(const cl_fhir_map *m, char out[33]) {
  static const char HEX[] = "0123456789abcdef";
  const ProtobufCBinaryData *e = &m->ev->event_id;
  size_t i = 0;
  for (; i < 16 && i < e->len; i++) {
    out[2 * i] = HEX[e->data[i] >> 4];
    out[2 * i + 1] = HEX[e->data[i] & 15];
  }
  out[2 * i] = 0;
}

static const char *connectivity(Clinlog__V1__DeviceConnectivity c) {
  switch (c) {
  case CLINLOG__V1__DEVICE_CONNECTIVITY__DEVICE_CONNECTIVITY_ONLINE:
    return "online";
  case CLINLOG__V1__DEVICE_CONNECTIVITY__DEVICE_CONNECTIVITY_OFFLINE:
    return "offline";
  case CLINLOG__V1__DEVICE_CONNECTIVITY__DEVICE_CONNECTIVITY_INTERMITTENT:
    return "intermittent";
  default:
    return NULL;
  }
}

/* A component {code: text, valueQuantity} of a status value, or NULL. */
static json_t *status_component(const char *text, const Clinlog__V1__Quantity *q) {
  json_t *v = fj_quantity(q);
  if (v == NULL)
    return NULL;
  return json_pack("{s:{s:s},s:o}", "code", "text", text, "valueQuantity", v);
}

static int status_reported(cl_fhir_map *m, const Clinlog__V1__DeviceStatusReported *b,
                           cl_err *err) {
  if (!fj_has(b->device_id))
    return 0;
  const char *conn = connectivity(b->connectivity);
  const Google__Protobuf__Timestamp *at = b->reported_at ? b->reported_at : m->ev->occurred_at;

  /* DeviceMetric: the device's operational status, a version per report */
  char bid[512], id[CL_FHIR_ID_MAX];
  int w = snprintf(bid, sizeof bid, "%s|status", b->device_id);
  if (w < 0 || (size_t)w >= sizeof bid)
    return 0; /* ids this long are not ids */
  cl_fhir_id("DeviceMetric", NULL, bid, id);
  json_t *dm = cl_fhir_new("DeviceMetric", id);
  fj_set_one(dm, "identifier", fj_business_id(bid));
  json_t *type = fj_concept(b->status);
  json_object_set_new(dm, "type",
                      type != NULL ? type : json_pack("{s:s}", "text", "device status"));
  fj_set(dm, "source", cl_fhir_device_ref(b->device_id));
  /* online or intermittent: on (it reports); offline: off */
  if (conn != NULL)
    json_object_set_new(dm, "operationalStatus",
                        json_string(strcmp(conn, "offline") ? "on" : "off"));
  json_object_set_new(dm, "category", json_string("setting"));
  int rc = cl_fhir_map_put(m, dm, err);
  if (rc)
    return rc;

  /* Observation: the report's values */
  char hex[33];
  event_hex(m, hex);
  w = snprintf(bid, sizeof bid, "%s|status|%s", b->device_id, hex);
  if (w < 0 || (size_t)w >= sizeof bid)
    return 0;
  cl_fhir_pid(m, "Observation", bid, id);
  json_t *o = cl_fhir_new("Observation", id);
  fj_set_one(o, "identifier", fj_business_id(bid));
  json_object_set_new(o, "status", json_string("final"));
  json_object_set_new(o, "code", json_pack("{s:s}", "text", "device status report"));
  fj_set(o, "subject", cl_fhir_device_ref(b->device_id));
  fj_set(o, "effectiveDateTime", cl_fhir_when(m, at));
  fj_set(o, "issued", fj_instant(b->received_at));
  fj_set(o, "device", cl_fhir_device_ref(b->device_id));
  json_t *comps = json_array();
  fj_push(comps, status_component("battery charge (MDC_ATTR_VAL_BATT_CHARGE)", b->battery));
  fj_push(comps, status_component("signal strength", b->signal_strength));
  if (conn != NULL)
    json_array_append_new(comps, json_pack("{s:{s:s},s:{s:s}}", "code", "text", "connectivity",
                                           "valueCodeableConcept", "text", conn));
  json_t *codes = fj_concept(b->status);
  if (codes != NULL)
    json_array_append_new(comps, json_pack("{s:{s:s},s:o}", "code", "text", "device status",
                                           "valueCodeableConcept", codes));
  if (json_array_size(comps) == 0)
    json_object_set_new(o, "dataAbsentReason", fj_absent_reason_unknown());
  fj_set(o, "component", comps);
  return cl_fhir_map_put(m, o, err);
}

/* ---- DispenserEventRecorded ---- */

static int dispenser_event(cl_fhir_map *m, const Clinlog__V1__DispenserEventRecorded *b,
                           cl_err *err) {
  if (!fj_has(b->device_id) || m->patient_id == NULL)
    return 0;
  char hex[33], bid[512], id[CL_FHIR_ID_MAX];
  event_hex(m, hex);
  int w = snprintf(bid, sizeof bid, "dispenser|%s|%s", b->device_id,
                   fj_has(b->dispenser_event_id) ? b->dispenser_event_id : hex);
  if (w < 0 || (size_t)w >= sizeof bid)
    return 0;
  cl_fhir_pid(m, "MedicationAdministration", bid, id);
  json_t *r = cl_fhir_new("MedicationAdministration", id);
  fj_set_one(r, "identifier", fj_business_id(bid));
  const char *status = "unknown", *reason = NULL, *note = NULL;
  switch (b->outcome) {
  case CLINLOG__V1__DISPENSER_OUTCOME__DISPENSER_OUTCOME_TAKEN:
    status = "completed";
    break;
  case CLINLOG__V1__DISPENSER_OUTCOME__DISPENSER_OUTCOME_LATE:
    status = "completed";
    note = "Taken late: removed from the dispenser after the dose window";
    break;
  case CLINLOG__V1__DISPENSER_OUTCOME__DISPENSER_OUTCOME_MISSED:
    status = "not-done";
    reason = "Missed: not removed from the dispenser in the dose window";
    break;
  case CLINLOG__V1__DISPENSER_OUTCOME__DISPENSER_OUTCOME_SKIPPED:
    status = "not-done";
    reason = "Skipped or refused by the patient";
    break;
  default:
    break;
  }
  json_object_set_new(r, "status", json_string(status));
  if (reason != NULL)
    fj_set_one(r, "statusReason", json_pack("{s:s}", "text", reason));
  json_object_set_new(r, "medicationCodeableConcept", fj_or_unknown(fj_concept(b->medication)));
  fj_set(r, "subject", cl_fhir_patient_ref(m));
  fj_set(r, "effectiveDateTime",
         cl_fhir_when(m, b->event_at != NULL ? b->event_at : b->scheduled_at));
  fj_set_one(r, "device", cl_fhir_device_ref(b->device_id));
  fj_set(r, "request", cl_fhir_pref(m, "MedicationRequest", b->prescription_id));
  if (note != NULL)
    fj_set(r, "note", fj_note(note));
  return cl_fhir_map_put(m, r, err);
}

int cl_fhir_map_device(cl_fhir_map *m, cl_err *err) {
  const Clinlog__V1__Event *ev = m->ev;
  switch (ev->body_case) {
  case CLINLOG__V1__EVENT__BODY_DEVICE_REGISTERED:
    return device_registered(m, ev->device_registered, err);
  case CLINLOG__V1__EVENT__BODY_DEVICE_READING_RECORDED:
    return reading_recorded(m, ev->device_reading_recorded, err);
  case CLINLOG__V1__EVENT__BODY_DEVICE_STATUS_REPORTED:
    return status_reported(m, ev->device_status_reported, err);
  case CLINLOG__V1__EVENT__BODY_DISPENSER_EVENT_RECORDED:
    return dispenser_event(m, ev->dispenser_event_recorded, err);
  default:
    return 0;
  }
}

/* Device -> DeviceRegistered (fhirw.h): the inverse of device_registered
 * (query/fhir/map_device.c), for a device assigned to a patient (the
 * event goes to the patient's stream; an unassigned device is registered
 * through the device adapter, docs/adapters.md "Home-device feeds").
 *
 *   identifier          device_id (urn:clinlog:id), principal_id
 *                       (urn:clinlog:principal)
 *   udiCarrier (one)    udi_device_identifier, udi_carrier: the
 *                       human-readable form (carrierHRF), its issuer the
 *                       one its first character names; the AIDC form is
 *                       not written yet
 *   manufacturer, lotNumber, serialNumber, modelNumber, type
 *   version (one)       firmware_version (type MDC_ID_PROD_SPEC_FW)
 *   patient (required)  the stream; extension device-assigned-at: when
 * The view's id of a Device is cl_fhir_id of the device id alone (devices
 * are unique in the whole log); fhirw.c's finish() gives it so. */
#include <string.h>

#include "adapters/fhir/fhirw_int.h"

#define ASSIGNED_AT_EXT FJ_CLINLOG_EXT "device-assigned-at"
#define MDC "urn:iso:std:iso:11073:10101"

static int assigned_at(wctx *c, const json_t *e, const char *ep, const char *url, void *ctx) {
  static const char *const keys[] = {"url", "valueDateTime", NULL};
  int rc;
  if ((rc = w_only(c, e, ep, keys, 0)))
    return rc;
  if (strcmp(url, ASSIGNED_AT_EXT) != 0)
    return w_fail(c, 422, "not-supported", w_path(c, ep, "url", 0),
                  "the extension written is " ASSIGNED_AT_EXT);
  Clinlog__V1__DeviceRegistered *b = ctx;
  if ((rc = w_instant(c, e, ep, "valueDateTime", &b->assigned_at)))
    return rc;
  if (b->assigned_at == NULL)
    return w_fail(c, 400, "required", w_path(c, ep, "valueDateTime", 0), "required");
  return 0;
}

static int udi(wctx *c, const json_t *r, const char *p, Clinlog__V1__DeviceRegistered *b) {
  static const char *const keys[] = {"deviceIdentifier", "issuer", "carrierHRF", NULL};
  const json_t *a;
  size_t n;
  int rc = w_arr(c, r, p, "udiCarrier", &a, &n);
  if (rc || n == 0)
    return rc;
  const char *up = w_path(c, p, "udiCarrier", 0), *ip = w_path(c, up, NULL, 0), *issuer;
  const json_t *u = json_array_get(a, 0);
  if (n > 1)
    return w_fail(c, 422, "not-supported", w_path(c, up, NULL, 1), "one UDI can be written");
  if (!json_is_object(u))
    return w_fail(c, 400, "structure", ip, "expected an object");
  if ((rc = w_only(c, u, ip, keys, 0)) ||
      (rc = w_str(c, u, ip, "deviceIdentifier", (const char **)&b->udi_device_identifier)) ||
      (rc = w_str(c, u, ip, "issuer", &issuer)) ||
      (rc = w_str(c, u, ip, "carrierHRF", (const char **)&b->udi_carrier)))
    return rc;
  /* the issuer the view names from the carrier's first character */
  static const char *const marks = "(+=";
  static const char *const issuers[] = {"http://hl7.org/fhir/NamingSystem/gs1-di",
                                        "http://hl7.org/fhir/NamingSystem/hibcc-dI",
                                        "http://hl7.org/fhir/NamingSystem/iccbba-other-di"};
  const char *mark = b->udi_carrier ? strchr(marks, b->udi_carrier[0]) : NULL;
  if (b->udi_carrier != NULL && (mark == NULL || b->udi_carrier[0] == '\0'))
    return w_fail(c, 422, "not-supported", w_path(c, ip, "carrierHRF", 0),
                  "a human-readable UDI starts with its issuer's mark: ( GS1, + HIBCC, = ICCBBA");
  const char *want = mark ? issuers[mark - marks] : NULL;
  if (issuer != NULL && (want == NULL || strcmp(issuer, want) != 0))
    return w_fail(c, 422, "not-supported", w_path(c, ip, "issuer", 0),
                  "the issuer is the one the carrier's mark names (%s)", want ? want : "none");
  if (b->udi_carrier != NULL && issuer == NULL)
    return w_fail(c, 400, "required", w_path(c, ip, "issuer", 0), "required with the carrier: %s",
                  want);
  if (b->udi_device_identifier == NULL && b->udi_carrier == NULL)
    return w_fail(c, 400, "required", ip, "a deviceIdentifier or a carrierHRF");
  return 0;
}

/* version: the firmware, type MDC_ID_PROD_SPEC_FW. */
static int firmware(wctx *c, const json_t *r, const char *p, Clinlog__V1__DeviceRegistered *b) {
  static const char *const keys[] = {"type", "value", NULL};
  static const char *const fw[] = {"531976", NULL};
  const json_t *a;
  size_t n;
  int rc = w_arr(c, r, p, "version", &a, &n), t;
  if (rc || n == 0)
    return rc;
  const char *vp = w_path(c, p, "version", 0), *ip = w_path(c, vp, NULL, 0);
  const json_t *v = json_array_get(a, 0);
  if (n > 1)
    return w_fail(c, 422, "not-supported", w_path(c, vp, NULL, 1),
                  "one version (the firmware) can be written");
  if (!json_is_object(v))
    return w_fail(c, 400, "structure", ip, "expected an object");
  if ((rc = w_only(c, v, ip, keys, 0)) || (rc = w_concept_in(c, v, ip, "type", MDC, fw, &t)) ||
      (rc = w_str(c, v, ip, "value", (const char **)&b->firmware_version)))
    return rc;
  if (t < 0 || b->firmware_version == NULL)
    return w_fail(c, 400, "required", w_path(c, ip, t < 0 ? "type" : "value", 0),
                  "required (the firmware version: type 531976 of " MDC ")");
  return 0;
}

int w_device(wctx *c, const json_t *r) {
  static const char *const keys[] = {"extension",    "identifier", "udiCarrier",   "status",
                                     "manufacturer", "lotNumber",  "serialNumber", "modelNumber",
                                     "type",         "version",    "patient",      NULL};
  static const char *const statuses[] = {"active", NULL};
  const char *p = c->root;
  Clinlog__V1__DeviceRegistered *b = w_alloc(c, sizeof *b);
  if (b == NULL)
    return CL_ENOMEM;
  clinlog__v1__device_registered__init(b);
  int rc, status;
  if ((rc = w_only(c, r, p, keys, 1)))
    return rc;
  if (json_object_get(r, "patient") == NULL)
    return w_fail(c, 400, "required", w_path(c, p, "patient", 0),
                  "required: a device written here is assigned to a patient (an unassigned one "
                  "is registered through the device adapter)");
  if ((rc = w_subject(c, r, p, "patient")) || (rc = w_business_id(c, r, p)) ||
      (rc = w_system_id(c, r, p, FJ_PRINCIPAL_SYSTEM, &b->principal_id,
                        "the principal it signs as")) ||
      (rc = w_enum(c, r, p, "status", statuses, &status)) || (rc = udi(c, r, p, b)) ||
      (rc = w_str(c, r, p, "manufacturer", (const char **)&b->manufacturer)) ||
      (rc = w_str(c, r, p, "lotNumber", (const char **)&b->lot_number)) ||
      (rc = w_str(c, r, p, "serialNumber", (const char **)&b->serial_number)) ||
      (rc = w_str(c, r, p, "modelNumber", (const char **)&b->model)) ||
      (rc = w_concept(c, r, p, "type", &b->kind)) || (rc = firmware(c, r, p, b)) ||
      (rc = w_each_ext(c, r, p, assigned_at, b)))
    return rc;
  if (status < 0)
    return w_fail(c, 400, "required", w_path(c, p, "status", 0), "required (active)");
  const char **strs[] = {(const char **)&b->manufacturer,         (const char **)&b->lot_number,
                         (const char **)&b->serial_number,        (const char **)&b->model,
                         (const char **)&b->firmware_version,     (const char **)&b->udi_carrier,
                         (const char **)&b->udi_device_identifier};
  for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
    if (*strs[i] == NULL)
      *strs[i] = "";
  b->device_id = (char *)c->bid;
  b->patient_id = (char *)c->patient_id;
  if (b->assigned_at != NULL)
    c->when = b->assigned_at;
  return w_emit(c, CLINLOG__V1__EVENT__BODY_DEVICE_REGISTERED, b);
}

/* ImagingStudy -> ImagingStudyRecorded (fhirw.h): the inverse of
 * study_recorded (query/fhir/map_imaging.c).
 *
 *   identifier     urn:dicom:uid urn:oid:<Study Instance UID> (required:
 *                  the business id, as the view keys a study), ACSN (the
 *                  accession number), type text "Study ID"
 *   status         available
 *   modality[]     modalities (Codings)
 *   basedOn (one)  a ServiceRequest of this server or the input (order_id),
 *                  or the logical reference by the accession number the view
 *                  writes when it knows no order
 *   endpoint       "#wado-rs": the contained Endpoint, whose address is the
 *                  DICOMweb base URL
 *   series[]       uid, number, modality, description, numberOfInstances,
 *                  bodySite, laterality, started, instance[] (uid, sopClass
 *                  urn:ietf:rfc:3986 urn:oid:<SOP Class UID>, number, title)
 *   subject, encounter, started, referrer, numberOfSeries,
 *   numberOfInstances, procedureCode (one), location, description */
#include <stdlib.h>
#include <string.h>

#include "adapters/fhir/fhirw_int.h"

#define DICOM_UID_SYSTEM "urn:dicom:uid"
#define URI_SYSTEM "urn:ietf:rfc:3986"
#define ENDPOINT_ID "wado-rs"

/* o[key], a positiveInt (the view writes only counts above 0). */
static int count(wctx *c, const json_t *o, const char *path, const char *key, int32_t *out) {
  const json_t *v = json_object_get(o, key);
  if (v == NULL)
    return 0;
  const char *s = json_string_value(v);
  char *end = NULL;
  long k = s && s[0] == FJ_DECIMAL_MARK ? strtol(s + 1, &end, 10) : 0;
  if (end == NULL || *end || k < 1 || k > 0x7fffffff)
    return w_fail(c, 400, "value", w_path(c, path, key, 0), "a positiveInt");
  *out = (int32_t)k;
  return 0;
}

/* A DICOM UID written as urn:oid:<uid> in o[key]: the uid. */
static int oid(wctx *c, const json_t *o, const char *path, const char *key, const char **uid) {
  const char *s;
  int rc = w_str(c, o, path, key, &s);
  if (rc || s == NULL)
    return rc;
  if (strncmp(s, "urn:oid:", 8) != 0 || s[8] == '\0' ||
      strspn(s + 8, "0123456789.") != strlen(s + 8))
    return w_fail(c, 400, "value", w_path(c, path, key, 0), "a DICOM UID as urn:oid:<uid>");
  *uid = s + 8;
  return 0;
}

/* The identifiers: the study uid, the accession number, the Study ID. */
static int study_ids(wctx *c, const json_t *r, const char *p,
                     Clinlog__V1__ImagingStudyRecorded *b) {
  const json_t *ids;
  size_t n;
  int rc = w_arr(c, r, p, "identifier", &ids, &n);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    static const char *const keys[] = {"type", "system", "value", NULL};
    const json_t *id = json_array_get(ids, i), *type;
    const char *ip = w_path(c, w_path(c, p, "identifier", 0), NULL, (long)i), *sys, *val;
    if (!json_is_object(id))
      return w_fail(c, 400, "structure", ip, "expected an Identifier (an object)");
    if ((rc = w_only(c, id, ip, keys, 0)) || (rc = w_str(c, id, ip, "system", &sys)) ||
        (rc = w_obj(c, id, ip, "type", &type)))
      return rc;
    if (sys != NULL && !strcmp(sys, FJ_BUSINESS_ID_SYSTEM))
      continue;
    if (sys != NULL && !strcmp(sys, DICOM_UID_SYSTEM) && type == NULL &&
        !b->study_instance_uid[0]) {
      if ((rc = oid(c, id, ip, "value", (const char **)&b->study_instance_uid)))
        return rc;
      continue;
    }
    const char *text = json_string_value(json_object_get(type, "text"));
    if ((rc = w_str(c, id, ip, "value", &val)))
      return rc;
    if (sys == NULL && val != NULL && type != NULL && json_object_size(type) == 1 && text &&
        !strcmp(text, "Study ID") && !b->study_id[0]) {
      b->study_id = (char *)val;
      continue;
    }
    static const char *const acsn[] = {"ACSN", NULL};
    int k = -1;
    if (sys == NULL && val != NULL && type != NULL &&
        (rc = w_concept_in(c, id, ip, "type", FJ_V2_0203, acsn, &k)))
      return rc;
    if (k < 0 || b->accession_number[0])
      return w_fail(c, 422, "not-supported", ip,
                    "besides the business id: the study uid (" DICOM_UID_SYSTEM
                    "), one accession number (type ACSN) and one Study ID (type text)");
    b->accession_number = (char *)val;
  }
  if (rc == 0 && !b->study_instance_uid[0])
    return w_fail(c, 400, "required", w_path(c, p, "identifier", 0),
                  "required: the Study Instance UID (system " DICOM_UID_SYSTEM ")");
  return rc;
}

static int instance(wctx *c, const json_t *v, const char *path, void **out) {
  static const char *const keys[] = {"uid", "sopClass", "number", "title", NULL};
  static const char *const ckeys[] = {"system", "code", NULL};
  if (!json_is_object(v))
    return w_fail(c, 400, "structure", path, "expected an object");
  Clinlog__V1__ImagingInstance *x = w_alloc(c, sizeof *x);
  if (x == NULL)
    return CL_ENOMEM;
  clinlog__v1__imaging_instance__init(x);
  const json_t *cls;
  const char *sys = NULL;
  int rc;
  if ((rc = w_only(c, v, path, keys, 0)) ||
      (rc = w_str(c, v, path, "uid", (const char **)&x->sop_instance_uid)) ||
      (rc = w_obj(c, v, path, "sopClass", &cls)) ||
      (rc = count(c, v, path, "number", &x->number)) ||
      (rc = w_str(c, v, path, "title", (const char **)&x->title)))
    return rc;
  const char *cp = w_path(c, path, "sopClass", 0);
  if (x->sop_instance_uid == NULL || cls == NULL)
    return w_fail(c, 400, "required", w_path(c, path, x->sop_instance_uid ? "sopClass" : "uid", 0),
                  "required");
  if ((rc = w_only(c, cls, cp, ckeys, 0)) || (rc = w_str(c, cls, cp, "system", &sys)) ||
      (rc = oid(c, cls, cp, "code", (const char **)&x->sop_class_uid)))
    return rc;
  if (sys == NULL || strcmp(sys, URI_SYSTEM) != 0 || x->sop_class_uid[0] == '\0')
    return w_fail(c, 400, "value", cp,
                  "the SOP Class UID: system " URI_SYSTEM ", code urn:oid:<uid>");
  if (x->title == NULL)
    x->title = "";
  *out = x;
  return 0;
}

static int series(wctx *c, const json_t *v, const char *path, void **out) {
  static const char *const keys[] = {
      "uid",      "number",     "modality", "description", "numberOfInstances",
      "bodySite", "laterality", "started",  "instance",    NULL};
  if (!json_is_object(v))
    return w_fail(c, 400, "structure", path, "expected an object");
  Clinlog__V1__ImagingSeries *x = w_alloc(c, sizeof *x);
  if (x == NULL)
    return CL_ENOMEM;
  clinlog__v1__imaging_series__init(x);
  const json_t *mod = json_object_get(v, "modality"), *site = json_object_get(v, "bodySite");
  const json_t *lat = json_object_get(v, "laterality");
  int rc;
  if ((rc = w_only(c, v, path, keys, 0)) ||
      (rc = w_str(c, v, path, "uid", (const char **)&x->series_instance_uid)) ||
      (rc = count(c, v, path, "number", &x->number)) ||
      (mod && (rc = w_coding(c, mod, w_path(c, path, "modality", 0), &x->modality))) ||
      (rc = w_str(c, v, path, "description", (const char **)&x->description)) ||
      (rc = count(c, v, path, "numberOfInstances", &x->number_of_instances)) ||
      (site && (rc = w_coding(c, site, w_path(c, path, "bodySite", 0), &x->body_site))) ||
      (lat && (rc = w_coding(c, lat, w_path(c, path, "laterality", 0), &x->laterality))) ||
      (rc = w_instant(c, v, path, "started", &x->started)) ||
      (rc = w_list(c, v, path, "instance", instance, (void ***)&x->instances, &x->n_instances)))
    return rc;
  if (x->series_instance_uid == NULL || x->modality == NULL)
    return w_fail(c, 400, "required",
                  w_path(c, path, x->series_instance_uid ? "modality" : "uid", 0), "required");
  if (x->description == NULL)
    x->description = "";
  *out = x;
  return 0;
}

/* endpoint ["#wado-rs"] and its contained Endpoint: the DICOMweb address. */
static int endpoint(wctx *c, const json_t *r, const char *p, Clinlog__V1__ImagingStudyRecorded *b) {
  static const char *const keys[] = {"status",          "connectionType", "payloadType",
                                     "payloadMimeType", "address",        NULL};
  const json_t *eps, *cs;
  size_t ne, nc;
  int rc;
  if ((rc = w_arr(c, r, p, "endpoint", &eps, &ne)) || (rc = w_arr(c, r, p, "contained", &cs, &nc)))
    return rc;
  const char *ref = json_string_value(json_object_get(json_array_get(eps, 0), "reference"));
  const json_t *e = json_array_get(cs, 0);
  const char *id = json_string_value(json_object_get(e, "id"));
  const char *t = json_string_value(json_object_get(e, "resourceType"));
  if (ne == 0 && nc == 0)
    return 0;
  int bad_ref = ne != 1 || ref == NULL || strcmp(ref, "#" ENDPOINT_ID) != 0;
  if (bad_ref || nc != 1 || id == NULL || strcmp(id, ENDPOINT_ID) || t == NULL ||
      strcmp(t, "Endpoint"))
    return w_fail(c, 422, "not-supported", w_path(c, p, bad_ref ? "endpoint" : "contained", 0),
                  "the endpoint written is the contained Endpoint 'wado-rs' (a DICOMweb "
                  "WADO-RS base URL), referenced as #wado-rs");
  const char *ep = w_path(c, w_path(c, p, "contained", 0), NULL, 0);
  if ((rc = w_only(c, e, ep, keys, 1)) ||
      (rc = w_str(c, e, ep, "address", (const char **)&b->endpoint)))
    return rc;
  /* connectionType is a Coding in R4 */
  const char *ct = json_string_value(json_object_get(json_object_get(e, "connectionType"), "code"));
  if (b->endpoint == NULL || ct == NULL || strcmp(ct, "dicom-wado-rs") != 0)
    return w_fail(c, 422, "not-supported", ep,
                  "a DICOMweb endpoint: connectionType dicom-wado-rs and its address");
  return 0;
}

/* basedOn: the order (order_id), or the logical reference by accession
 * number the view writes when it knows none. */
static int order(wctx *c, const json_t *r, const char *p, Clinlog__V1__ImagingStudyRecorded *b) {
  const json_t *a;
  size_t n;
  int rc = w_arr(c, r, p, "basedOn", &a, &n);
  if (rc || n == 0)
    return rc;
  const char *bp = w_path(c, p, "basedOn", 0);
  if (n > 1)
    return w_fail(c, 422, "not-supported", w_path(c, bp, NULL, 1), "one order can be written");
  const json_t *one = json_array_get(a, 0);
  if (json_object_get(one, "identifier") != NULL) {
    const char *v = json_string_value(json_object_get(json_object_get(one, "identifier"), "value"));
    if (v == NULL || strcmp(v, b->accession_number) != 0)
      return w_fail(c, 422, "not-supported", w_path(c, bp, NULL, 0),
                    "an order by identifier is the study's accession number (type ACSN)");
    return 0;
  }
  return w_ref_bid_elem(c, one, p, "basedOn[0]", "ServiceRequest", (const char **)&b->order_id);
}

int w_imaging_study(wctx *c, const json_t *r) {
  static const char *const keys[] = {"contained",
                                     "identifier",
                                     "status",
                                     "modality",
                                     "subject",
                                     "encounter",
                                     "started",
                                     "basedOn",
                                     "referrer",
                                     "endpoint",
                                     "numberOfSeries",
                                     "numberOfInstances",
                                     "procedureCode",
                                     "location",
                                     "description",
                                     "series",
                                     NULL};
  static const char *const statuses[] = {"available", NULL};
  const char *p = c->root;
  Clinlog__V1__ImagingStudyRecorded *b = w_alloc(c, sizeof *b);
  if (b == NULL)
    return CL_ENOMEM;
  clinlog__v1__imaging_study_recorded__init(b);
  const json_t *mods, *ref = json_object_get(r, "referrer"), *loc = json_object_get(r, "location");
  pb_cc **proc;
  size_t nmods, nproc;
  int rc, status;
  if ((rc = w_only(c, r, p, keys, 1)) || (rc = w_subject(c, r, p, "subject")) ||
      (rc = w_business_id(c, r, p)) || (rc = study_ids(c, r, p, b)))
    return rc;
  if (strcmp(c->bid, b->study_instance_uid) != 0 && cl_fhirw_bid_of(r, (char[128]){0}, 128) == 0)
    return w_fail(c, 422, "invalid", w_path(c, p, "identifier", 0),
                  "a study's business id is its Study Instance UID");
  c->bid = b->study_instance_uid;
  if ((rc = w_enum(c, r, p, "status", statuses, &status)) ||
      (rc = w_arr(c, r, p, "modality", &mods, &nmods)) ||
      (rc = w_encounter(c, r, p, "encounter", (const char **)&b->encounter_id)) ||
      (rc = w_instant(c, r, p, "started", &b->started)) || (rc = order(c, r, p, b)) ||
      (ref && (rc = w_reference(c, ref, w_path(c, p, "referrer", 0), &b->referring_physician))) ||
      (rc = endpoint(c, r, p, b)) ||
      (rc = count(c, r, p, "numberOfSeries", &b->number_of_series)) ||
      (rc = count(c, r, p, "numberOfInstances", &b->number_of_instances)) ||
      (rc = w_concepts(c, r, p, "procedureCode", &proc, &nproc)) ||
      (rc = w_str(c, r, p, "description", (const char **)&b->description)) ||
      (rc = w_list(c, r, p, "series", series, (void ***)&b->series, &b->n_series)))
    return rc;
  if (status < 0)
    return w_fail(c, 400, "required", w_path(c, p, "status", 0), "required (available)");
  if (nproc > 1)
    return w_fail(c, 422, "not-supported", w_path(c, w_path(c, p, "procedureCode", 0), NULL, 1),
                  "one procedureCode can be written");
  b->procedure = nproc ? proc[0] : NULL;
  if (nmods && (b->modalities = w_alloc(c, nmods * sizeof *b->modalities)) == NULL)
    return CL_ENOMEM;
  for (size_t i = 0; i < nmods; i++, b->n_modalities++)
    if ((rc = w_coding(c, json_array_get(mods, i),
                       w_path(c, w_path(c, p, "modality", 0), NULL, (long)i), &b->modalities[i])))
      return rc;
  if (loc != NULL) {
    Clinlog__V1__Location *l = w_alloc(c, sizeof *l);
    if (l == NULL)
      return CL_ENOMEM;
    clinlog__v1__location__init(l);
    if ((rc = w_reference(c, loc, w_path(c, p, "location", 0), &l->reference)))
      return rc;
    b->location = l;
  }
  if (b->encounter_id == NULL)
    b->encounter_id = "";
  if (b->order_id == NULL)
    b->order_id = "";
  if (b->description == NULL)
    b->description = "";
  if (b->endpoint == NULL)
    b->endpoint = "";
  if (b->started != NULL)
    c->when = b->started;
  return w_emit(c, CLINLOG__V1__EVENT__BODY_IMAGING_STUDY_RECORDED, b);
}

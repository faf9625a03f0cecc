/* FHIR resources to catalog events (fhirw.h): parsing with exact numbers,
 * the per-resource arena, refusals, references into the input and the
 * views, business and event ids, the envelope, and the dispatch on
 * resourceType. The resource types are in fhirw_res.c and
 * fhirw_patient.c, the datatypes in fhirw_types.c.
 *
 * Invariant: the events depend only on the resource, the options and what
 * the resolver answers, so the same write gives the same bytes. */
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/fhir/fhirw_int.h"
#include "store/alloc.h"
#include "store/idhash.h"

/* ---- arena: every allocation chained, all freed at once ---- */

struct wblock {
  wblock *next;
  max_align_t data[];
};

void *w_alloc(wctx *c, size_t n) {
  wblock *b = cl_calloc(1, sizeof *b + (n ? n : 1));
  if (b == NULL) {
    cl_err_set(c->err, CL_ENOMEM, "out of memory mapping the resource");
    return NULL;
  }
  b->next = c->arena;
  c->arena = b;
  return b->data;
}

static void arena_free(wctx *c) {
  json_decref(c->keep);
  c->keep = NULL;
  while (c->arena != NULL) {
    wblock *n = c->arena->next;
    cl_free(c->arena);
    c->arena = n;
  }
}

int w_keep(wctx *c, json_t *j) {
  if (j == NULL)
    return 0;
  if ((c->keep == NULL && (c->keep = json_array()) == NULL) || json_array_append_new(c->keep, j))
    return cl_err_set(c->err, CL_ENOMEM, "out of memory");
  return 0;
}

char *w_printf(wctx *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *s = n < 0 ? NULL : w_alloc(c, (size_t)n + 1);
  if (s == NULL)
    return NULL;
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return s;
}

char *w_path(wctx *c, const char *path, const char *key, long i) {
  return key ? w_printf(c, "%s.%s", path, key) : w_printf(c, "%s[%ld]", path, i);
}

/* ---- refusals ---- */

static int vfail(cl_fhirw_error *fe, cl_err *err, int status, const char *code, const char *expr,
                 const char *fmt, va_list ap) CL_PRINTF(6, 0);
static int vfail(cl_fhirw_error *fe, cl_err *err, int status, const char *code, const char *expr,
                 const char *fmt, va_list ap) {
  cl_fhirw_error local;
  if (fe == NULL)
    fe = &local;
  memset(fe, 0, sizeof *fe);
  fe->status = status;
  snprintf(fe->code, sizeof fe->code, "%s", code);
  snprintf(fe->expression, sizeof fe->expression, "%s", expr ? expr : "");
  vsnprintf(fe->text, sizeof fe->text, fmt, ap);
  if (fe->expression[0])
    return cl_err_set(err, CL_EMALFORMED, "%s: %s", fe->expression, fe->text);
  return cl_err_set(err, CL_EMALFORMED, "%s", fe->text);
}

int cl_fhirw_fail(cl_fhirw_error *fe, cl_err *err, int status, const char *code, const char *expr,
                  const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = vfail(fe, err, status, code, expr, fmt, ap);
  va_end(ap);
  return rc;
}

int w_fail(wctx *c, int status, const char *code, const char *path, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = vfail(c->fe, c->err, status, code, path, fmt, ap);
  va_end(ap);
  return rc;
}

json_t *cl_fhirw_outcome(const cl_fhirw_error *fe) {
  json_t *issue = json_pack("{s:s,s:s,s:{s:s}}", "severity", "error", "code",
                            fe->code[0] ? fe->code : "processing", "details", "text", fe->text);
  if (issue != NULL && fe->expression[0]) {
    json_object_set_new(issue, "expression", json_pack("[s]", fe->expression));
    json_object_set_new(issue, "location", json_pack("[s]", fe->expression));
  }
  return json_pack("{s:s,s:[o]}", "resourceType", "OperationOutcome", "issue", issue);
}

/* ---- parsing: numbers keep the text they were written in ---- */

/* The text with every number outside strings rewritten as the string
 * FJ_DECIMAL_MARK + its text (jansson would turn 7.10 into 7.1). The input
 * is valid JSON already (parsed once), so the walk only tracks strings. */
static char *mark_numbers(const char *s, size_t n, size_t *outn) {
  char *o = cl_malloc(n * 9 / 2 + 16), *w = o; /* "1" -> "\u00011" at worst */
  if (o == NULL)
    return NULL;
  for (size_t i = 0; i < n;) {
    char ch = s[i];
    if (ch == '"') {
      *w++ = s[i++];
      while (i < n && s[i] != '"') {
        if (s[i] == '\\' && i + 1 < n)
          *w++ = s[i++];
        *w++ = s[i++];
      }
      if (i < n)
        *w++ = s[i++];
    } else if (ch == '-' || (ch >= '0' && ch <= '9')) {
      memcpy(w, "\"\\u0001", 7);
      w += 7;
      while (i < n && strchr("+-.eE0123456789", s[i]) != NULL)
        *w++ = s[i++];
      *w++ = '"';
    } else {
      *w++ = s[i++];
    }
  }
  *w = '\0';
  *outn = (size_t)(w - o);
  return o;
}

/* Parses JSON text with its numbers marked; an object only when `object`. */
static int parse(const char *text, size_t n, int object, json_t **out, cl_fhirw_error *fe,
                 cl_err *err) {
  *out = NULL;
  json_error_t je;
  size_t flags = JSON_REJECT_DUPLICATES | (object ? 0 : JSON_DECODE_ANY);
  json_t *plain = json_loadb(text, n, flags, &je);
  if (plain == NULL)
    return cl_fhirw_fail(fe, err, 400, "structure", "", "not JSON: %s (line %d, column %d)",
                         je.text, je.line, je.column);
  int is_obj = json_is_object(plain);
  json_decref(plain);
  if (object && !is_obj)
    return cl_fhirw_fail(fe, err, 400, "structure", "", "not a FHIR resource (a JSON object)");
  size_t mn;
  char *marked = mark_numbers(text, n, &mn);
  if (marked == NULL)
    return cl_err_set(err, CL_ENOMEM, "out of memory parsing the resource");
  *out = json_loadb(marked, mn, flags, &je);
  cl_free(marked);
  if (*out == NULL)
    return cl_err_set(err, CL_ENOMEM, "out of memory parsing the resource");
  return 0;
}

int cl_fhirw_parse(const char *text, size_t n, json_t **out, cl_fhirw_error *fe, cl_err *err) {
  return parse(text, n, 1, out, fe, err);
}

int cl_fhirw_parse_json(const char *text, size_t n, json_t **out, cl_fhirw_error *fe, cl_err *err) {
  return parse(text, n, 0, out, fe, err);
}

/* ---- references ---- */

/* "Type/id" of a literal reference (relative, or absolute ending so). */
static int split_ref(const char *ref, char *type, size_t tn, char *id, size_t idn) {
  const char *slash = strrchr(ref, '/');
  if (slash == NULL || slash == ref || slash[1] == '\0')
    return -1;
  const char *t = slash - 1;
  while (t > ref && t[-1] != '/')
    t--;
  if ((size_t)(slash - t) >= tn || strlen(slash + 1) >= idn)
    return -1;
  memcpy(type, t, (size_t)(slash - t));
  type[slash - t] = '\0';
  snprintf(id, idn, "%s", slash + 1);
  return 0;
}

/* What `ref` (of a `type` element) names: its business id and patient.
 * 0, CL_ENOTFOUND, or an error (a refusal for a reference of another type). */
static int resolve(wctx *c, const char *path, const char *want, const char *ref, const char **bid,
                   const char **patient) {
  *patient = NULL;
  const json_t *known = c->o->refs ? json_object_get(c->o->refs, ref) : NULL;
  if (known != NULL) {
    const char *t = json_string_value(json_object_get(known, "type"));
    if (t == NULL || strcmp(t, want) != 0)
      return w_fail(c, 422, "invalid", path, "%s is a %s, not a %s", ref, t ? t : "?", want);
    *bid = json_string_value(json_object_get(known, "bid"));
    *patient = json_string_value(json_object_get(known, "patient"));
    return 0;
  }
  char type[64], id[CL_FHIR_ID_MAX + 64];
  if (split_ref(ref, type, sizeof type, id, sizeof id) != 0)
    return w_fail(c, 400, "value", path,
                  "'%.64s' is not a literal reference (<type>/<id>) nor a Bundle entry's fullUrl",
                  ref);
  if (strcmp(type, want) != 0)
    return w_fail(c, 422, "invalid", path, "expected a reference to a %s, got one to a %s", want,
                  type);
  if (c->o->resolve == NULL)
    return CL_ENOTFOUND;
  char b[128];
  int rc = c->o->resolve(c->o->ctx, type, id, b, sizeof b, c->err);
  if (rc)
    return rc;
  *bid = w_printf(c, "%s", b);
  if (*bid == NULL)
    return CL_ENOMEM;
  if (!strcmp(want, "Patient")) {
    *patient = *bid;
  } else if (c->patient_id != NULL) { /* the views' id says whose it is */
    char mine[CL_FHIR_ID_MAX];
    cl_fhir_id(want, c->patient_id, *bid, mine);
    *patient = strcmp(mine, id) == 0 ? c->patient_id : "";
  }
  return 0;
}

/* The reference string of o[key] (which must be a Reference with one). */
static int ref_of(wctx *c, const json_t *o, const char *path, const char *key, const char **ref,
                  const char **rpath) {
  const json_t *r;
  int rc = w_obj(c, o, path, key, &r);
  if (rc || r == NULL)
    return rc;
  *rpath = w_path(c, path, key, 0);
  if (*rpath == NULL)
    return CL_ENOMEM;
  static const char *const keys[] = {"reference", "display", "type", NULL};
  if ((rc = w_only(c, r, *rpath, keys, 0)) != 0 || (rc = w_str(c, r, *rpath, "reference", ref)))
    return rc;
  if (*ref == NULL)
    return w_fail(c, 400, "required", w_path(c, *rpath, "reference", 0),
                  "a reference into this server is required");
  return 0;
}

int w_subject(wctx *c, const json_t *o, const char *path, const char *key) {
  const char *ref = NULL, *rpath = NULL, *bid = NULL, *patient = NULL;
  int rc = ref_of(c, o, path, key, &ref, &rpath);
  if (rc)
    return rc;
  if (ref == NULL)
    return w_fail(c, 400, "required", w_path(c, path, key, 0), "required: the patient");
  rc = resolve(c, rpath, "Patient", ref, &bid, &patient);
  if (rc == CL_ENOTFOUND)
    return w_fail(c, 422, "not-found", w_path(c, rpath, "reference", 0),
                  "%.80s: no such patient (neither on this server nor in this input)", ref);
  if (rc)
    return rc;
  c->patient_id = bid;
  return 0;
}

int w_ref_bid(wctx *c, const json_t *o, const char *path, const char *key, const char *type,
              const char **out) {
  *out = NULL;
  const char *ref = NULL, *rpath = NULL, *patient = NULL;
  int rc = ref_of(c, o, path, key, &ref, &rpath);
  if (rc || ref == NULL)
    return rc;
  rc = resolve(c, rpath, type, ref, out, &patient);
  if (rc == CL_ENOTFOUND)
    return w_fail(c, 422, "not-found", w_path(c, rpath, "reference", 0),
                  "%.80s: no such %s (neither on this server nor in this input)", ref, type);
  if (rc)
    return rc;
  if (patient == NULL || c->patient_id == NULL || strcmp(patient, c->patient_id) != 0)
    return w_fail(c, 422, "invalid", w_path(c, rpath, "reference", 0),
                  "%.80s is a %s of another patient", ref, type);
  return 0;
}

int w_encounter(wctx *c, const json_t *o, const char *path, const char *key, const char **out) {
  return w_ref_bid(c, o, path, key, "Encounter", out);
}

/* ---- ids ---- */

/* BLAKE2b-128 of the domain and the parts, each length-prefixed (idhash.h). */
static void derive(const char *domain, const char *a, const char *b, const char *d, const char *e,
                   uint8_t out[16]) {
  cl_idhash h;
  cl_idhash_init(&h);
  cl_idhash_str(&h, domain);
  cl_idhash_str(&h, a);
  cl_idhash_str(&h, b);
  cl_idhash_str(&h, d);
  cl_idhash_str(&h, e);
  cl_idhash_final(&h, out);
}

/* The resource as canonical text (sorted members, no meta, text or id),
 * in the arena. */
static char *canonical(wctx *c, const json_t *res) {
  json_t *copy = json_copy((json_t *)res);
  if (copy == NULL)
    return NULL;
  json_object_del(copy, "meta");
  json_object_del(copy, "text");
  json_object_del(copy, "id");
  char *s = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(copy);
  char *a = s ? w_printf(c, "%s", s) : NULL;
  free(s);
  return a;
}

static int valid_bid(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 100)
    return 0;
  for (const char *p = s; *p; p++)
    if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
          strchr("-._:", *p)))
      return 0;
  return 1;
}

int w_business_id(wctx *c, const json_t *res, const char *path) {
  const json_t *ids;
  size_t n;
  int rc = w_arr(c, res, path, "identifier", &ids, &n);
  if (rc)
    return rc;
  c->bid = NULL;
  for (size_t i = 0; i < n; i++) {
    const json_t *id = json_array_get(ids, i);
    const char *ipath = w_path(c, w_path(c, path, "identifier", 0), NULL, (long)i), *sys, *val;
    if (!json_is_object(id))
      return w_fail(c, 400, "structure", ipath, "expected an Identifier (an object)");
    if ((rc = w_str(c, id, ipath, "system", &sys)) || (rc = w_str(c, id, ipath, "value", &val)))
      return rc;
    if (sys == NULL || strcmp(sys, FJ_BUSINESS_ID_SYSTEM) != 0)
      continue;
    if (val == NULL || !valid_bid(val))
      return w_fail(c, 400, "value", w_path(c, ipath, "value", 0),
                    "a clinlog business id is 1 to 100 of [A-Za-z0-9-._:]");
    if (c->bid != NULL)
      return w_fail(c, 400, "value", ipath, "a second identifier in " FJ_BUSINESS_ID_SYSTEM);
    c->bid = val;
  }
  if (c->bid == NULL && c->put_id != NULL && c->o->resolve != NULL) { /* an update */
    char b[128];
    rc = c->o->resolve(c->o->ctx, c->type, c->put_id, b, sizeof b, c->err);
    if (rc != 0 && rc != CL_ENOTFOUND)
      return rc;
    if (rc == 0 && (c->bid = w_printf(c, "%s", b)) == NULL)
      return CL_ENOMEM;
  }
  if (c->bid == NULL) { /* derived from what the resource says */
    char *canon = canonical(c, res);
    if (canon == NULL)
      return cl_err_set(c->err, CL_ENOMEM, "out of memory");
    uint8_t h[16];
    derive("clinlog-fhir-business-id-v1", c->type, c->patient_id, canon, "", h);
    char hex[33];
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    c->bid = w_printf(c, "fhir-%s", hex);
    if (c->bid == NULL)
      return CL_ENOMEM;
  }
  return 0;
}

/* ---- envelope ---- */

int w_emit(wctx *c, unsigned body_case, void *body) {
  Clinlog__V1__Event *e = w_alloc(c, sizeof *e);
  Clinlog__V1__RecordedBy *by = w_alloc(c, sizeof *by);
  if (e == NULL || by == NULL || c->nev >= 2)
    return CL_ENOMEM;
  clinlog__v1__event__init(e);
  clinlog__v1__recorded_by__init(by);
  by->principal_id = (char *)c->o->principal_id;
  by->role = (char *)(c->o->role ? c->o->role : "integration");
  by->on_behalf_of = (char *)(c->o->on_behalf_of ? c->o->on_behalf_of : "");
  e->recorded_by = by;
  e->occurred_at = c->when;
  e->source_system = (char *)(c->o->source_system ? c->o->source_system : "fhir");
  const ProtobufCFieldDescriptor *fd =
      protobuf_c_message_descriptor_get_field(&clinlog__v1__event__descriptor, body_case);
  if (fd == NULL)
    return cl_err_set(c->err, CL_EINVAL, "no Event body with field number %u", body_case);
  e->body_case = (Clinlog__V1__Event__BodyCase)body_case;
  memcpy((char *)e + fd->offset, &body, sizeof body);
  c->ev[c->nev++] = e;
  return 0;
}

/* ---- the entry ---- */

const char *const cl_fhirw_types[] = {"Patient",
                                      "Encounter",
                                      "Condition",
                                      "AllergyIntolerance",
                                      "Observation",
                                      "MedicationRequest",
                                      "MedicationAdministration",
                                      "MedicationDispense",
                                      "Immunization",
                                      "ServiceRequest",
                                      "DiagnosticReport",
                                      "Appointment",
                                      "Communication",
                                      "Task",
                                      "DocumentReference",
                                      "Device",
                                      "ImagingStudy",
                                      "ChargeItem",
                                      "Claim",
                                      "ClaimResponse",
                                      "Coverage",
                                      "CoverageEligibilityResponse", /* with its request */
                                      NULL};

int cl_fhirw_rank(const json_t *res) {
  const char *t = json_string_value(json_object_get(res, "resourceType"));
  if (t && !strcmp(t, "Patient"))
    return 0;
  if (t && !strcmp(t, "Encounter"))
    return 1;
  if (t &&
      (!strcmp(t, "MedicationRequest") || !strcmp(t, "Coverage") || !strcmp(t, "ServiceRequest")))
    return 2; /* a Coverage: what Claims reference; a ServiceRequest: a report's order */
  return 3;
}

/* Packs the events with their derived ids into *out. */
static int finish(wctx *c, const json_t *res, const char *base_version, cl_fhirw_mapped *m) {
  char *canon = canonical(c, res);
  if (canon == NULL)
    return cl_err_set(c->err, CL_ENOMEM, "out of memory");
  m->ev = cl_calloc(c->nev, sizeof *m->ev);
  if (m->ev == NULL)
    return cl_err_set(c->err, CL_ENOMEM, "out of memory");
  char stream[160];
  snprintf(stream, sizeof stream, "patient-%s", c->patient_id);
  for (size_t i = 0; i < c->nev; i++) {
    Clinlog__V1__Event *e = c->ev[i];
    derive("clinlog-fhir-event-id-v1", c->type, c->bid, base_version, canon, m->ev[i].event_id);
    /* the index apart: two events of one resource differ in it alone */
    m->ev[i].event_id[15] ^= (uint8_t)i;
    e->event_id = (ProtobufCBinaryData){16, m->ev[i].event_id};
    e->stream = stream;
    m->ev[i].len = clinlog__v1__event__get_packed_size(e);
    m->ev[i].bytes = cl_malloc(m->ev[i].len ? m->ev[i].len : 1);
    if (m->ev[i].bytes == NULL)
      return cl_err_set(c->err, CL_ENOMEM, "out of memory");
    clinlog__v1__event__pack(e, m->ev[i].bytes);
    m->ev[i].type = (uint32_t)e->body_case;
    m->n = i + 1;
  }
  snprintf(m->type, sizeof m->type, "%s", c->type);
  snprintf(m->bid, sizeof m->bid, "%s", c->bid);
  snprintf(m->patient_id, sizeof m->patient_id, "%s", c->patient_id);
  snprintf(m->stream, sizeof m->stream, "%s", stream);
  if (!strcmp(c->type, "Patient"))
    cl_fhir_id("Patient", NULL, c->patient_id, m->id);
  else if (!strcmp(c->type, "Device")) /* unique in the whole log */
    cl_fhir_id("Device", NULL, c->bid, m->id);
  else
    cl_fhir_id(c->type, c->patient_id, c->bid, m->id);
  return 0;
}

/* occurred_at: the options' now, until the resource states its own time. */
static int now_of(wctx *c) {
  pb_ts *now = w_alloc(c, sizeof *now);
  if (now == NULL)
    return CL_ENOMEM;
  google__protobuf__timestamp__init(now);
  now->seconds = c->o->now_ns / 1000000000;
  now->nanos = (int32_t)(c->o->now_ns % 1000000000);
  c->when = now;
  return 0;
}

/* The patient id of a Patient: the PUT's id, else its own id, else derived. */
static int patient_id_of(wctx *c, const json_t *res, const char *put_id, int *exists) {
  const char *own;
  int rc = w_str(c, res, c->root, "id", &own);
  if (rc)
    return rc;
  c->patient_id = put_id ? put_id : own;
  if (c->patient_id == NULL) {
    if ((rc = w_business_id(c, res, c->root)) != 0)
      return rc;
    c->patient_id = c->bid;
  }
  char check[CL_FHIR_ID_MAX];
  cl_fhir_id("Patient", NULL, c->patient_id, check);
  if (strcmp(check, c->patient_id) != 0 || !valid_bid(c->patient_id))
    return w_fail(c, 400, "value", w_path(c, c->root, "id", 0),
                  "'%.64s' is not a FHIR id ([A-Za-z0-9-.]{1,64})", c->patient_id);
  c->bid = c->patient_id;
  *exists = 0;
  const json_t *known = c->o->refs ? json_object_get(c->o->refs, c->patient_id) : NULL;
  if (known == NULL && c->o->resolve != NULL && !c->o->bulk) {
    char b[128];
    rc = c->o->resolve(c->o->ctx, "Patient", c->patient_id, b, sizeof b, c->err);
    if (rc == 0)
      *exists = 1;
    else if (rc != CL_ENOTFOUND)
      return rc;
  }
  return 0;
}

int cl_fhirw_map(const json_t *res, const char *expr, const char *put_id, const char *base_version,
                 const cl_fhirw_opts *o, cl_fhirw_mapped **out, cl_fhirw_error *fe, cl_err *err) {
  *out = NULL;
  if (o == NULL || o->principal_id == NULL || !o->principal_id[0])
    return cl_err_set(err, CL_EINVAL, "FHIR writes need the principal that signs");
  if (!json_is_object(res))
    return cl_fhirw_fail(fe, err, 400, "structure", expr, "not a FHIR resource (a JSON object)");
  wctx c = {.o = o, .fe = fe, .err = err, .put_id = put_id};
  const char *type = json_string_value(json_object_get(res, "resourceType"));
  if (type == NULL || type[0] == FJ_DECIMAL_MARK || type[0] == '\0')
    return cl_fhirw_fail(fe, err, 400, "required", expr, "resourceType: required (a string)");
  snprintf(c.root, sizeof c.root, "%s", expr ? expr : type);
  c.type = type;
  int rc = 0, exists = 0;
  const char *own = NULL;
  if ((rc = w_str(&c, res, c.root, "id", &own)) != 0)
    goto done;
  if (put_id != NULL && own != NULL && strcmp(own, put_id) != 0) {
    rc = w_fail(&c, 400, "invalid", w_path(&c, c.root, "id", 0),
                "'%.64s' is not the id of the URL (%.64s)", own, put_id);
    goto done;
  }
  if ((rc = now_of(&c)) != 0)
    goto done;
  if (!strcmp(type, "Patient")) {
    if ((rc = patient_id_of(&c, res, put_id, &exists)) == 0)
      rc = w_patient(&c, res, exists);
  } else if (!strcmp(type, "Encounter")) {
    rc = w_encounter_res(&c, res);
  } else if (!strcmp(type, "Condition")) {
    rc = w_condition(&c, res);
  } else if (!strcmp(type, "AllergyIntolerance")) {
    rc = w_allergy(&c, res);
  } else if (!strcmp(type, "Observation")) {
    rc = w_observation(&c, res);
  } else if (!strcmp(type, "MedicationRequest")) {
    rc = w_medication_stop(&c, res); /* active: w_medication_request */
  } else if (!strcmp(type, "MedicationAdministration")) {
    rc = w_medication_administration(&c, res);
  } else if (!strcmp(type, "Immunization")) {
    rc = w_immunization(&c, res);
  } else if (!strcmp(type, "MedicationDispense")) {
    rc = w_medication_dispense(&c, res);
  } else if (!strcmp(type, "ServiceRequest")) {
    rc = w_service_request(&c, res);
  } else if (!strcmp(type, "DiagnosticReport")) {
    rc = w_diagnostic_report(&c, res);
  } else if (!strcmp(type, "Appointment")) {
    rc = w_appointment(&c, res);
  } else if (!strcmp(type, "Communication")) {
    rc = w_communication(&c, res);
  } else if (!strcmp(type, "Task")) {
    rc = w_task(&c, res);
  } else if (!strcmp(type, "DocumentReference")) {
    rc = w_document_reference(&c, res);
  } else if (!strcmp(type, "Device")) {
    rc = w_device(&c, res);
  } else if (!strcmp(type, "ImagingStudy")) {
    rc = w_imaging_study(&c, res);
  } else if (!strcmp(type, "ChargeItem")) {
    rc = w_charge_item(&c, res);
  } else if (!strcmp(type, "Claim")) {
    rc = w_claim(&c, res);
  } else if (!strcmp(type, "ClaimResponse")) {
    rc = w_claim_response(&c, res);
  } else if (!strcmp(type, "Coverage")) {
    rc = w_coverage(&c, res);
  } else if (!strcmp(type, "CoverageEligibilityResponse")) {
    rc = w_elig_response(&c, res);
  } else if (!strcmp(type, "CoverageEligibilityRequest")) {
    rc = w_elig_request(&c, res);
  } else {
    rc = cl_fhirw_fail(fe, err, cl_fhir_type_of(type) ? 422 : 400, "not-supported",
                       w_path(&c, c.root, "resourceType", 0),
                       cl_fhir_type_of(type)
                           ? "%.64s cannot be written yet (writes take Patient, Encounter, "
                             "Condition, AllergyIntolerance, Observation, MedicationRequest, "
                             "MedicationAdministration, MedicationDispense, Immunization, "
                             "ServiceRequest, DiagnosticReport, Appointment, Communication, Task, "
                             "DocumentReference, Device, ImagingStudy, ChargeItem, Claim, "
                             "ClaimResponse, Coverage, "
                             "CoverageEligibilityResponse with its CoverageEligibilityRequest)"
                           : "'%.64s' is not a resource type of this server",
                       type);
  }
  if (rc)
    goto done;
  cl_fhirw_mapped *m = cl_calloc(1, sizeof *m);
  if (m == NULL) {
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    goto done;
  }
  if ((rc = finish(&c, res, base_version ? base_version : "", m)) != 0) {
    cl_fhirw_mapped_free(m);
    goto done;
  }
  if (put_id != NULL && strcmp(m->id, put_id) != 0) {
    rc = w_fail(&c, 422, "not-supported", w_path(&c, c.root, "id", 0),
                "%s/%.64s does not exist, and the ids of new %s resources are derived from their "
                "business id (identifier in " FJ_BUSINESS_ID_SYSTEM "): create it with POST",
                type, put_id, type);
    cl_fhirw_mapped_free(m);
    goto done;
  }
  *out = m;
done:
  arena_free(&c);
  return rc;
}

/* ---- entered-in-error: a retraction ---- */

int cl_fhirw_entered_in_error(const json_t *res) {
  const char *t = json_string_value(json_object_get(res, "resourceType"));
  if (t && (!strcmp(t, "Condition") || !strcmp(t, "AllergyIntolerance"))) {
    json_t *cs = json_object_get(json_object_get(res, "verificationStatus"), "coding");
    for (size_t i = 0; i < json_array_size(cs); i++) {
      const char *code = json_string_value(json_object_get(json_array_get(cs, i), "code"));
      if (code && !strcmp(code, "entered-in-error"))
        return 1;
    }
    return 0;
  }
  const char *st = json_string_value(json_object_get(res, "status"));
  return t && strcmp(t, "Patient") != 0 && st && !strcmp(st, "entered-in-error");
}

/* res without what an update to entered-in-error may change. */
static json_t *sans_status(const json_t *res) {
  /* con-4, con-5: no clinical status nor abatement once entered-in-error */
  static const char *const drop[] = {"meta",
                                     "text",
                                     "id",
                                     "status",
                                     "statusReason",
                                     "verificationStatus",
                                     "clinicalStatus",
                                     "abatementDateTime",
                                     "abatementAge",
                                     "abatementPeriod",
                                     "abatementRange",
                                     "abatementString",
                                     NULL};
  json_t *r = json_deep_copy(res);
  for (size_t i = 0; r && drop[i]; i++)
    json_object_del(r, drop[i]);
  return r;
}

int cl_fhirw_retract(const json_t *res, const json_t *cur, const uint8_t corrected[16],
                     const char *expr, const char *base_version, const cl_fhirw_opts *o,
                     cl_fhirw_mapped **out, cl_fhirw_error *fe, cl_err *err) {
  *out = NULL;
  const char *type = json_string_value(json_object_get(cur, "resourceType"));
  wctx c = {.o = o, .fe = fe, .err = err, .type = type};
  snprintf(c.root, sizeof c.root, "%s", expr ? expr : type ? type : "");
  json_t *a = sans_status(res), *b = sans_status(cur);
  const char *ref = json_string_value(json_object_get(
      json_object_get(cur, type && !strcmp(type, "AllergyIntolerance") ? "patient" : "subject"),
      "reference"));
  char bid[128];
  int rc = 0;
  if (a == NULL || b == NULL) {
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
  } else if (!json_equal(a, b)) {
    rc = w_fail(&c, 422, "business-rule", c.root,
                "an update to entered-in-error retracts the resource as it is now (version %s): "
                "change its status alone (and statusReason), then write any correction as a new "
                "resource",
                base_version);
  } else if (ref == NULL || strncmp(ref, "Patient/", 8) != 0 ||
             cl_fhirw_bid_of(cur, bid, sizeof bid) != 0) {
    rc = w_fail(&c, 422, "not-supported", c.root, "the resource names no patient or business id");
  }
  json_decref(a);
  json_decref(b);
  if (rc || corrected == NULL) /* refused, or retracted already: nothing to write */
    goto done;
  c.patient_id = ref + 8;
  c.bid = bid;
  Clinlog__V1__EnteredInError *e = w_alloc(&c, sizeof *e);
  if (e == NULL || (rc = now_of(&c)) != 0) {
    rc = CL_ENOMEM;
    goto done;
  }
  clinlog__v1__entered_in_error__init(e);
  uint8_t *id = w_alloc(&c, 16);
  const char *why =
      json_string_value(json_object_get(json_object_get(res, "statusReason"), "text"));
  e->reason = why ? (char *)why : "entered in error (a FHIR update to entered-in-error)";
  e->corrected_stream = w_printf(&c, "patient-%s", c.patient_id);
  if (id == NULL || e->corrected_stream == NULL) {
    rc = CL_ENOMEM;
    goto done;
  }
  memcpy(id, corrected, 16);
  e->corrected_event_id = (ProtobufCBinaryData){16, id};
  if ((rc = w_emit(&c, CLINLOG__V1__EVENT__BODY_ENTERED_IN_ERROR, e)) != 0)
    goto done;
  cl_fhirw_mapped *m = cl_calloc(1, sizeof *m);
  if (m == NULL) {
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    goto done;
  }
  if ((rc = finish(&c, res, base_version, m)) != 0) {
    cl_fhirw_mapped_free(m);
    goto done;
  }
  *out = m;
done:
  arena_free(&c);
  return rc;
}

void cl_fhirw_mapped_free(cl_fhirw_mapped *m) {
  if (m == NULL)
    return;
  for (size_t i = 0; i < m->n; i++)
    cl_free(m->ev[i].bytes);
  cl_free(m->ev);
  cl_free(m);
}

int cl_fhirw_refs_add(json_t *refs, const cl_fhirw_mapped *m, const char *full_url) {
  char key[CL_FHIR_ID_MAX + 48];
  snprintf(key, sizeof key, "%s/%s", m->type, m->id);
  json_t *v = json_pack("{s:s,s:s,s:s}", "type", m->type, "bid", m->bid, "patient", m->patient_id);
  if (v == NULL)
    return CL_ENOMEM;
  int rc = json_object_set(refs, key, v);
  if (rc == 0 && full_url != NULL && full_url[0])
    rc = json_object_set(refs, full_url, v);
  if (rc == 0 && !strcmp(m->type, "Patient")) /* a PUT's own id: bare */
    rc = json_object_set(refs, m->id, v);
  json_decref(v);
  return rc ? CL_ENOMEM : 0;
}

int cl_fhirw_bid_of(const json_t *res, char *bid, size_t n) {
  const char *type = json_string_value(json_object_get(res, "resourceType"));
  const char *b =
      type && !strcmp(type, "Patient") ? json_string_value(json_object_get(res, "id")) : NULL;
  json_t *ids = json_object_get(res, "identifier");
  for (size_t i = 0; b == NULL && i < json_array_size(ids); i++) {
    const char *sys = json_string_value(json_object_get(json_array_get(ids, i), "system"));
    if (sys && !strcmp(sys, FJ_BUSINESS_ID_SYSTEM))
      b = json_string_value(json_object_get(json_array_get(ids, i), "value"));
  }
  if (b == NULL)
    return CL_ENOTFOUND;
  snprintf(bid, n, "%s", b);
  return 0;
}

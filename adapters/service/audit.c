/* The request layer's audit trail: what a call's AccessRecorded says (from
 * the request context, its request and how it ended) and its recording
 * through query/audit/recorder.h before the answer leaves. See service.h
 * (cl_svc_record) and docs/security.md. */
#include "adapters/service/audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clinlog/v1/audit.pb-c.h"
#include "clinlog/v1/auth.pb-c.h"
#include "clinlog/v1/cds.pb-c.h"
#include "clinlog/v1/cluster.pb-c.h"
#include "clinlog/v1/fhir.pb-c.h"
#include "clinlog/v1/query.pb-c.h"
#include "store/keyring.h"
#include "store/keys.h"

void cl_req_ctx_add_patient(cl_req_ctx *rc, const char *patient_id) {
  if (!patient_id || !patient_id[0] || strchr(patient_id, ','))
    return;
  size_t have = strlen(rc->audit_patients), l = strlen(patient_id);
  /* already named? */
  for (const char *p = rc->audit_patients; *p;) {
    size_t n = strcspn(p, ",");
    if (n == l && !strncmp(p, patient_id, l))
      return;
    p += n + (p[n] == ',');
  }
  if (have + (have > 0) + l + 1 > sizeof rc->audit_patients)
    return;
  if (have)
    rc->audit_patients[have++] = ',';
  memcpy(rc->audit_patients + have, patient_id, l + 1);
}

/* Adds the id that starts at p (up to a quote or a slash) as a patient. */
static void add_id_at(cl_req_ctx *rc, const char *p, const char *end) {
  char id[128];
  size_t n = 0;
  while (p + n < end && p[n] != '"' && p[n] != '/' && p[n] != '\\' && n < sizeof id - 1)
    n++;
  if (p + n == end || (p[n] != '"' && p[n] != '/'))
    return; /* cut short, escaped or too long: not an id the engine writes */
  memcpy(id, p, n);
  id[n] = '\0';
  cl_req_ctx_add_patient(rc, id);
}

void cl_req_ctx_patients_of(cl_req_ctx *rc, const char *json, size_t len) {
  static const char *const pats[] = {"\"reference\":\"Patient/",
                                     "\"resourceType\":\"Patient\",\"id\":\""};
  const char *end = json + len;
  for (size_t k = 0; k < 2; k++) {
    size_t pl = strlen(pats[k]);
    for (const char *p = json; p && p < end;) {
      p = memmem(p, (size_t)(end - p), pats[k], pl);
      if (p) {
        p += pl;
        add_id_at(rc, p, end);
      }
    }
  }
}

/* The patient a FHIR reference or id names: "Patient/7" or "7". */
static void add_patient_ref(cl_req_ctx *rc, const char *v) {
  if (!strncmp(v, "Patient/", 8))
    v += 8;
  else if (strchr(v, '/'))
    return; /* a reference to something else */
  char one[128];
  for (const char *p = v; *p;) { /* a comma is an OR of several */
    size_t n = strcspn(p, ",");
    snprintf(one, sizeof one, "%.*s", (int)(n < sizeof one ? n : sizeof one - 1), p);
    cl_req_ctx_add_patient(rc, one);
    p += n + (p[n] == ',');
  }
}

/* The patient whose stream a stream name is ("patient-7"), if it is one. */
static void add_patient_stream(cl_req_ctx *rc, const char *stream) {
  if (!strncmp(stream, "patient-", 8))
    cl_req_ctx_add_patient(rc, stream + 8);
}

/* A FHIR query's parameters as a query string, and the patients they
 * name (patient=, subject=, and _id on Patient). */
static void fhir_params(cl_req_ctx *rc, const char *type, Clinlog__V1__FhirParam **params,
                        size_t n) {
  size_t at = strlen(rc->audit_query);
  for (size_t i = 0; i < n; i++) {
    const char *k = params[i]->name, *v = params[i]->value;
    int w =
        snprintf(rc->audit_query + at, sizeof rc->audit_query - at, "%s%s=%s", at ? "&" : "", k, v);
    if (w > 0 && (size_t)w < sizeof rc->audit_query - at)
      at += (size_t)w;
    else
      rc->audit_query[at] = '\0'; /* what does not fit is left out, whole */
    /* patient=, subject= (also :Patient): ids; chains and :identifier are
     * not (the answer's patients are added from it) */
    if (!strcmp(k, "patient") || !strcmp(k, "subject") || !strcmp(k, "patient:Patient") ||
        !strcmp(k, "subject:Patient"))
      add_patient_ref(rc, v);
    else if (type && !strcmp(type, "Patient") && !strcmp(k, "_id"))
      add_patient_ref(rc, v);
  }
}

void audit_subject(cl_req_ctx *rc, const ProtobufCMessage *req) {
  rc->audit_what[0] = rc->audit_query[0] = rc->audit_patients[0] = '\0';
  rc->audit_count = 0;
  char *w = rc->audit_what;
  size_t wn = sizeof rc->audit_what;
  if (!req)
    return;
  switch (rc->method) {
  case M_READ: {
    const Clinlog__V1__ReadRequest *r = (const void *)req;
    if (r->stream[0]) {
      snprintf(w, wn, "stream:%s", r->stream);
      add_patient_stream(rc, r->stream);
    } else {
      snprintf(w, wn, "log");
    }
    snprintf(rc->audit_query, sizeof rc->audit_query, "from=%llu&max_count=%llu",
             (unsigned long long)r->from, (unsigned long long)r->max_count);
    break;
  }
  case M_SUBSCRIBE: {
    const Clinlog__V1__SubscribeRequest *r = (const void *)req;
    snprintf(w, wn, "log");
    snprintf(rc->audit_query, sizeof rc->audit_query, "from_seq=%llu%s",
             (unsigned long long)r->from_seq, r->from_end ? "&from_end=true" : "");
    break;
  }
  case M_GET_EVENT: {
    const Clinlog__V1__GetEventRequest *r = (const void *)req;
    char hex[33] = "";
    if (r->event_id.len == 16)
      cl_hex(r->event_id.data, 16, hex);
    snprintf(w, wn, "event:%s", hex);
    break;
  }
  case M_PROVE_INCLUSION:
    snprintf(w, wn, "seq:%llu",
             (unsigned long long)((const Clinlog__V1__ProveInclusionRequest *)req)->seq);
    break;
  case M_FETCH_RECORDS: {
    const Clinlog__V1__FetchRecordsRequest *r = (const void *)req;
    snprintf(w, wn, "seq:%llu-%llu", (unsigned long long)r->from_seq,
             (unsigned long long)r->to_seq);
    break;
  }
  case M_GET_STREAM: {
    const Clinlog__V1__GetStreamRequest *r = (const void *)req;
    snprintf(w, wn, "stream:%s", r->stream);
    add_patient_stream(rc, r->stream);
    break;
  }
  case M_LIST_STREAMS:
    snprintf(w, wn, "streams");
    snprintf(rc->audit_query, sizeof rc->audit_query, "category=%s",
             ((const Clinlog__V1__ListStreamsRequest *)req)->category);
    break;
  case M_LIST_EVENTS_BY_TYPE: {
    const Clinlog__V1__ListEventsByTypeRequest *r = (const void *)req;
    snprintf(w, wn, "events");
    snprintf(rc->audit_query, sizeof rc->audit_query, "event_type=%u&from_seq=%llu", r->event_type,
             (unsigned long long)r->from_seq);
    break;
  }
  case M_FHIR_READ: {
    const Clinlog__V1__FhirReadRequest *r = (const void *)req;
    if (r->version_id)
      snprintf(w, wn, "%s/%s/_history/%u", r->type, r->id, r->version_id);
    else
      snprintf(w, wn, "%s/%s", r->type, r->id);
    if (!strcmp(r->type, "Patient"))
      cl_req_ctx_add_patient(rc, r->id);
    break;
  }
  case M_FHIR_HISTORY: {
    const Clinlog__V1__FhirHistoryRequest *r = (const void *)req;
    snprintf(w, wn, "%s%s%s", r->type, r->id[0] ? "/" : "", r->id);
    if (!strcmp(r->type, "Patient"))
      cl_req_ctx_add_patient(rc, r->id);
    break;
  }
  case M_FHIR_SEARCH: {
    const Clinlog__V1__FhirSearchRequest *r = (const void *)req;
    snprintf(w, wn, "%s", r->type);
    fhir_params(rc, r->type, r->params, r->n_params);
    break;
  }
  case M_FHIR_EVERYTHING: {
    const Clinlog__V1__FhirEverythingRequest *r = (const void *)req;
    snprintf(w, wn, "Patient/%s/$everything", r->patient_id);
    cl_req_ctx_add_patient(rc, r->patient_id);
    fhir_params(rc, NULL, r->params, r->n_params);
    break;
  }
  case M_CDS_HOOK:
  case M_CDS_FEEDBACK: {
    /* CDS Hooks (adapters/http/http_cds.c): the patient's id as an
     * everything request; the service and hookInstance come from the handler */
    const Clinlog__V1__FhirEverythingRequest *r = (const void *)req;
    snprintf(w, wn, "%s", rc->method == M_CDS_HOOK ? "cds-services" : "cds-services/feedback");
    cl_req_ctx_add_patient(rc, r->patient_id);
    break;
  }
  case M_CDS_CHECK_ORDER: {
    const Clinlog__V1__CheckOrderRequest *r = (const void *)req;
    snprintf(w, wn, "Patient/%s/cds-check-order", r->patient_id);
    cl_req_ctx_add_patient(rc, r->patient_id);
    snprintf(rc->audit_query, sizeof rc->audit_query, "orders=%zu&other_drafts=%zu", r->n_orders,
             r->n_other_drafts);
    break;
  }
  case M_CDS_ALERTS: {
    /* the patients filtered on; without a filter, every patient's alerts */
    const Clinlog__V1__AlertsRequest *r = (const void *)req;
    snprintf(w, wn, "%s", r->n_patient_ids ? "cds-alerts" : "cds-alerts:all-patients");
    for (size_t i = 0; i < r->n_patient_ids; i++)
      cl_req_ctx_add_patient(rc, r->patient_ids[i]);
    snprintf(rc->audit_query, sizeof rc->audit_query, "after_seq=%llu&min_severity=%d&kinds=%zu",
             (unsigned long long)r->after_seq, (int)r->min_severity, r->n_kinds);
    break;
  }
  case M_CDS_ACKNOWLEDGE:
  case M_CDS_OVERRIDE: {
    /* the patient is the alert's: the handler adds it once it has found it */
    const char *id = rc->method == M_CDS_ACKNOWLEDGE
                         ? ((const Clinlog__V1__AcknowledgeAlertRequest *)req)->alert_id
                         : ((const Clinlog__V1__OverrideAlertRequest *)req)->alert_id;
    snprintf(w, wn, "DetectedIssue/%.64s", id);
    break;
  }
  case M_FHIR_EXPORT: {
    const Clinlog__V1__FhirExportRequest *r = (const void *)req;
    if (!strcmp(r->level, "group"))
      snprintf(w, wn, "Group/%s/$export", r->group_id);
    else if (!strcmp(r->level, "patient"))
      snprintf(w, wn, "Patient/$export");
    else
      snprintf(w, wn, "$export");
    fhir_params(rc, NULL, r->params, r->n_params);
    break;
  }
  case M_FHIR_EXPORT_STATUS:
  case M_FHIR_EXPORT_CANCEL:
    snprintf(w, wn, "export:%s", ((const Clinlog__V1__FhirExportJobRequest *)req)->job_id);
    break;
  case M_FHIR_EXPORT_READ: {
    const Clinlog__V1__FhirExportReadRequest *r = (const void *)req;
    snprintf(w, wn, "export:%s/file:%u", r->job_id, r->file);
    break;
  }
  case M_AUTH_LOGIN:
    snprintf(w, wn, "principal:%s", ((const Clinlog__V1__LoginRequest *)req)->principal_id);
    snprintf(rc->audit_query, sizeof rc->audit_query, "scope=%s",
             ((const Clinlog__V1__LoginRequest *)req)->scope);
    break;
  case M_AUTH_TOKEN: {
    const Clinlog__V1__TokenRequest *r = (const void *)req;
    snprintf(w, wn, "token:%s", r->grant_type);
    snprintf(rc->audit_query, sizeof rc->audit_query, "scope=%s", r->scope);
    break;
  }
  case M_AUTH_BREAK_GLASS: {
    const Clinlog__V1__BreakGlassRequest *r = (const void *)req;
    snprintf(w, wn, "Patient/%s", r->patient_id);
    snprintf(rc->audit_query, sizeof rc->audit_query, "reason=%s", r->reason);
    cl_req_ctx_add_patient(rc, r->patient_id);
    break;
  }
  case M_AUDIT_QUERY: {
    const Clinlog__V1__AuditQueryRequest *r = (const void *)req;
    if (r->event_id.len == 16) {
      char id[37];
      cl_uuid_text(r->event_id.data, id);
      snprintf(w, wn, "AuditEvent/%s", id);
      break;
    }
    snprintf(w, wn, "AuditEvent");
    snprintf(rc->audit_query, sizeof rc->audit_query, "patient=%s&agent=%s&outcome=%s&after=%llu",
             r->patient, r->principal, r->outcome, (unsigned long long)r->after_seq);
    cl_req_ctx_add_patient(rc, r->patient);
    break;
  }
  default:
    break;
  }
}

/* AuditEvent.action of a method (BALP: a search is an Execute). */
static const char *action_of(const cl_req_ctx *rc) {
  int method = rc->method;
  if (method == M_AUDIT_QUERY && strchr(rc->audit_what, '/'))
    return "R"; /* one record by id */
  switch (method) {
  case M_FHIR_SEARCH:
  case M_LIST_STREAMS:
  case M_LIST_EVENTS_BY_TYPE:
  case M_FHIR_EXPORT:
  case M_FHIR_EVERYTHING:
  case M_AUDIT_QUERY:
    return "E";
  default:
    break;
  }
  switch (cl_method_kind(method)) {
  case CL_MK_WRITE:
    return "C";
  case CL_MK_ADMIN:
  case CL_MK_AUTH:
    return "E";
  default:
    return "R";
  }
}

/* AuditEvent.subtype: a FHIR restful-interaction, a DICOM code for logins,
 * else "" (the renderer names the method). */
static const char *subtype_of(const cl_req_ctx *rc) {
  switch (rc->method) {
  case M_FHIR_READ:
    return strstr(rc->audit_what, "/_history/") ? "vread" : "read";
  case M_FHIR_HISTORY:
    return strchr(rc->audit_what, '/') ? "history-instance" : "history-type";
  case M_FHIR_SEARCH:
    return "search-type";
  case M_AUDIT_QUERY:
    return strchr(rc->audit_what, '/') ? "read" : "search-type";
  case M_FHIR_EVERYTHING:
  case M_FHIR_EXPORT:
    return "operation";
  case M_APPEND:
  case M_APPEND_STREAM:
    return "create";
  case M_AUTH_LOGIN:
  case M_AUTH_TOKEN:
    return "110122"; /* DCM Login */
  case M_AUTH_LOGOUT:
    return "110123"; /* DCM Logout */
  default:
    return "";
  }
}

/* AuditEvent.outcome: 0 success, 4 the caller's failure, 8 the server's. */
static const char *outcome_of(int code) {
  switch (code) {
  case 0:
    return "0";
  case CL_EINVAL:
  case CL_ENOTFOUND:
  case CL_ECONFLICT:
  case CL_EMALFORMED:
  case CL_EBADSIG:
  case CL_EUNKNOWNKEY:
  case CL_EREVOKED:
  case CL_ETOOBIG:
  case CL_EDENIED:
  case CL_EDUPLICATE:
  case CL_EERASED:
  case CL_EEXIST:
  case CL_ENOTLEADER:
  case CL_EUNAUTH:
  case CL_ELIMITED:
    return "4";
  default:
    return "8";
  }
}

/* Splits a comma-separated list in place into at most cap views. */
static size_t split_list(char *s, char **out, size_t cap) {
  size_t n = 0;
  for (char *p = s; *p && n < cap;) {
    out[n++] = p;
    char *c = strchr(p, ',');
    if (!c)
      break;
    *c = '\0';
    p = c + 1;
  }
  return n;
}

/* What a call's AccessRecorded says: m->r, its lists in m's buffers. */
typedef struct audit_msg {
  Clinlog__V1__AccessRecorded r;
  char roles[sizeof((cl_req_ctx *)0)->roles], *role_v[32];
  char *patients, **patient_v;
} audit_msg;

static void audit_msg_free(audit_msg *m) {
  free(m->patients);
  free(m->patient_v);
}

static int audit_build(const audit_node *node, const cl_req_ctx *rc, int code, const char *detail,
                       audit_msg *m, cl_err *err) {
  memcpy(m->roles, rc->roles, sizeof m->roles);
  size_t np = rc->audit_patients[0] != '\0';
  for (const char *c = rc->audit_patients; *c; c++)
    np += *c == ',';
  size_t len = strnlen(rc->audit_patients, sizeof rc->audit_patients - 1) + 1;
  m->patients = malloc(len); /* the list's length, not the field's 16 KiB */
  m->patient_v = malloc((np + 1) * sizeof *m->patient_v);
  if (!m->patients || !m->patient_v) {
    audit_msg_free(m);
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  }
  memcpy(m->patients, rc->audit_patients, len - 1);
  m->patients[len - 1] = '\0';
  Clinlog__V1__AccessRecorded *r = &m->r;
  clinlog__v1__access_recorded__init(r);
  r->principal_id = (char *)rc->principal;
  r->action = (char *)action_of(rc);
  r->resource = (char *)rc->audit_what;
  r->purpose_of_use = (char *)(rc->purpose_of_use[0] ? rc->purpose_of_use : "");
  r->client_address = (char *)rc->peer;
  r->outcome = (char *)outcome_of(code);
  r->count = rc->audit_count;
  r->method = (char *)cl_method_name(rc->method);
  r->transport = (char *)(rc->transport ? rc->transport : "");
  r->subtype = (char *)subtype_of(rc);
  r->request_id = (char *)rc->request_id;
  r->n_roles = split_list(m->roles, m->role_v, 32);
  r->roles = m->role_v;
  r->auth = (char *)cl_auth_name(rc->auth);
  r->token_id = (char *)rc->token_id;
  r->node_id = node->node_id;
  r->n_patients = split_list(m->patients, m->patient_v, np);
  r->patients = m->patient_v;
  r->query = (char *)rc->audit_query;
  r->error = (char *)(code ? cl_errname(code) : "");
  r->detail = (char *)(code && detail ? detail : "");
  r->break_glass = rc->break_glass != 0;
  r->server_address = (char *)node->server_address;
  return 0;
}

int audit_record(cl_audit *a, const audit_node *node, const cl_req_ctx *rc, int code,
                 const char *detail, cl_err *err) {
  audit_msg m;
  int rcode = audit_build(node, rc, code, detail, &m, err);
  if (rcode)
    return rcode;
  rcode = cl_audit_record(a, &m.r, err);
  audit_msg_free(&m);
  return rcode;
}

int audit_record_async(cl_audit *a, const audit_node *node, const cl_req_ctx *rc, int code,
                       const char *detail, cl_audit_done_fn done, void *ctx, cl_err *err) {
  audit_msg m;
  int rcode = audit_build(node, rc, code, detail, &m, err);
  if (rcode)
    return rcode;
  rcode = cl_audit_record_async(a, &m.r, done, ctx, err);
  audit_msg_free(&m);
  return rcode;
}

int audit_linked(cl_log *log, const audit_node *node, const cl_req_ctx *rc, int named,
                 size_t n_events, cl_node_batch *nb, cl_err *err) {
  audit_msg m;
  int rcode = audit_build(node, rc, 0, NULL, &m, err);
  if (rcode)
    return rcode;
  if (!named)
    m.r.resource = ""; /* the events right before the record: read as "seq:<first>-<last>" */
  m.r.count = n_events;
  m.r.preceding = (uint32_t)n_events;
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  ev.body_case = CLINLOG__V1__EVENT__BODY_ACCESS_RECORDED;
  ev.access_recorded = &m.r;
  rcode = cl_log_node_batch(log, &ev, CL_AUDIT_STREAM, nb, err);
  audit_msg_free(&m);
  return rcode;
}

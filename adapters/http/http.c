/* The HTTP face (http.h): the daemon, routing, request context, hooks, the
 * engine call and the HTTP semantics around it (conditional reads, content
 * negotiation, errors as OperationOutcome). Export, AuditEvent, login and
 * logout are http_ops.c's; CDS Hooks (/cds-services) http_cds.c's. */
#include "adapters/http/http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "adapters/fhir/fhirw.h"
#include "adapters/http/http_int.h"
#include "adapters/http/route.h"
#include "adapters/service/listen.h"
#include "adapters/service/methods.h"
#include "clinlog/v1/audit.pb-c.h"
#include "clinlog/v1/fhir.pb-c.h"
#include "query/fhir/engine.h"

#define BASE_PATH CL_HTTP_BASE_PATH
#define MAX_BODY (1 << 20) /* a _search form body */

void cl_http_config_init(cl_http_config *c) {
  memset(c, 0, sizeof *c);
  c->listen = "127.0.0.1:7528";
  c->max_connections = 256;
  c->timeout_s = 60;
  c->wait_ms = 30000;
}

/* ------------------------------------------------------------ one request */

static void *req_new(void) { return calloc(1, sizeof(req)); }

static void req_done(void *cls, struct MHD_Connection *c, void **con_cls,
                     enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)c;
  (void)toe;
  req *r = *con_cls;
  if (r != NULL) {
    free(r->body);
    free(r);
  }
  *con_cls = NULL;
}

/* ------------------------------------------------------------ responses */

enum MHD_Result http_send_body(struct MHD_Connection *c, int status, char *body, size_t len,
                               const char *request_id, const cl_fhir_resp *rs) {
  return http_send_located(c, status, body, len, request_id, rs, NULL, 0);
}

enum MHD_Result http_send_located(struct MHD_Connection *c, int status, char *body, size_t len,
                                  const char *request_id, const cl_fhir_resp *rs,
                                  const char *location, uint64_t seq) {
  struct MHD_Response *resp = MHD_create_response_from_buffer(
      len, body ? body : (char *)"", body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
  if (resp == NULL) {
    free(body);
    return MHD_NO;
  }
  if (len > 0)
    MHD_add_response_header(resp, "Content-Type", "application/fhir+json; charset=utf-8");
  if (request_id != NULL && request_id[0])
    MHD_add_response_header(resp, "X-Request-Id", request_id);
  if (rs != NULL && rs->etag[0])
    MHD_add_response_header(resp, "ETag", rs->etag);
  if (rs != NULL && rs->last_modified_ns > 0) {
    char lm[64];
    time_t t = (time_t)(rs->last_modified_ns / 1000000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(lm, sizeof lm, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    MHD_add_response_header(resp, "Last-Modified", lm);
  }
  if (location != NULL)
    MHD_add_response_header(resp, "Location", location);
  if (seq > 0) { /* a write's last log sequence: the next request's X-Clinlog-Min-Sequence */
    char sq[24];
    snprintf(sq, sizeof sq, "%llu", (unsigned long long)seq);
    MHD_add_response_header(resp, "X-Clinlog-Sequence", sq);
  }
  if (status == 405)
    MHD_add_response_header(resp, "Allow", "GET, HEAD, POST, PUT, PATCH");
  if (status == 401) /* RFC 6750 */
    MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"clinlog\"");
  enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
  MHD_destroy_response(resp);
  return ret;
}

static void json_escape(const char *s, char *out, size_t n) {
  size_t o = 0;
  for (; *s && o + 7 < n; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\') {
      out[o++] = '\\';
      out[o++] = (char)ch;
    } else if (ch < 0x20) {
      o += (size_t)snprintf(out + o, n - o, "\\u%04x", ch);
    } else {
      out[o++] = (char)ch;
    }
  }
  out[o] = '\0';
}

enum MHD_Result http_send_outcome(struct MHD_Connection *c, int status, const char *code,
                                  const char *request_id, const char *text) {
  char esc[1024];
  json_escape(text, esc, sizeof esc);
  char *body = malloc(1400);
  if (body == NULL)
    return MHD_NO;
  int n = snprintf(body, 1400,
                   "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"error\","
                   "\"code\":\"%s\",\"diagnostics\":\"%s\"}]}",
                   code, esc);
  return http_send_body(c, status, body, (size_t)n, request_id, NULL);
}

/* The call's record in the audit trail, committed before its answer
 * (cl_svc_record), then the finished hook. 0, or the record failed: the
 * answer must be http_unrecorded()'s, never the data (fail closed). */
int http_done(cl_http *h, cl_req_ctx *rc, int code, const char *detail, cl_err *aerr) {
  int r = cl_svc_record(h->svc, rc, code, detail, aerr);
  cl_svc_finished(h->svc, rc, r ? aerr->code : code, r ? aerr->msg : detail);
  return r;
}

enum MHD_Result http_unrecorded(struct MHD_Connection *c, const cl_req_ctx *rc,
                                const cl_err *aerr) {
  return http_send_outcome(c, 503, "transient", rc->request_id, aerr->msg);
}

/* ------------------------------------------------------------ parsing */

int64_t http_prefer_wait_ms(const char *prefer, int64_t max_ms) {
  const char *w = prefer ? strstr(prefer, "wait=") : NULL;
  if (w != NULL) {
    long s = strtol(w + 5, NULL, 10);
    if (s >= 0 && (int64_t)s * 1000 < max_ms)
      return (int64_t)s * 1000;
  }
  return max_ms;
}

enum MHD_Result http_add_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                             const char *value) {
  (void)kind;
  cl_http_params *p = cls;
  cl_http_param_add(p, key, value);
  return p->overflow ? MHD_NO : MHD_YES;
}

/* Does the client accept FHIR JSON? (no Accept, or one naming JSON or a
 * wildcard; _format=json/xml overrides) */
static int accepts_json(struct MHD_Connection *c, const cl_http_params *p) {
  for (size_t i = 0; i < p->n; i++)
    if (!strcmp(p->kv[i].name, "_format")) {
      const char *f = p->kv[i].value;
      return !strcmp(f, "json") || strstr(f, "json") != NULL;
    }
  const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept");
  if (a == NULL || a[0] == '\0')
    return 1;
  return strstr(a, "json") != NULL || strstr(a, "*/*") != NULL ||
         strstr(a, "application/*") != NULL;
}

/* ------------------------------------------------------------ the caller */

void http_peer_of(struct MHD_Connection *c, char *out, size_t n) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  cl_listen_peer(ci ? ci->client_addr : NULL, out, n);
}

/* ------------------------------------------------------------ the handler (routes: route.c) */

static enum MHD_Result serve(cl_http *h, struct MHD_Connection *c, const char *url,
                             const char *method, req *r) {
  const char *rid_in = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-Id");
  int is_get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
  int is_post = !strcmp(method, "POST");
  int is_delete = !strcmp(method, "DELETE");
  if (!strcmp(url, "/auth/login") || !strcmp(url, "/auth/logout") ||
      !strcmp(url, "/auth/break-glass"))
    return http_serve_auth(h, c, url, method, r);
  if (!strcmp(url, "/auth/token"))
    return http_serve_token(h, c, method, r);
  if (!strcmp(url, "/cds-services") || !strncmp(url, "/cds-services/", 14))
    return http_serve_cds(h, c, url, method, r);
  if (!strcmp(url, "/device/readings"))
    return http_serve_device(h, c, method, r);
  if (is_get && (!strcmp(url, BASE_PATH "/.well-known/smart-configuration") ||
                 !strcmp(url, "/.well-known/smart-configuration")))
    return http_serve_smart_config(h, c);
  if (strncmp(url, BASE_PATH, strlen(BASE_PATH)) != 0 ||
      (url[strlen(BASE_PATH)] != '/' && url[strlen(BASE_PATH)] != '\0'))
    return http_send_outcome(c, 404, "not-found", rid_in,
                             "no such endpoint: the FHIR API is at " BASE_PATH);
  if (http_write_route(url + strlen(BASE_PATH), method))
    return http_serve_write(h, c, url + strlen(BASE_PATH), method, r);
  if (is_delete && url[strlen(BASE_PATH)] == '/' && url[strlen(BASE_PATH) + 1] >= 'A' &&
      url[strlen(BASE_PATH) + 1] <= 'Z') /* [type]/[id], [type]?[search]: docs/fhir.md#delete */
    return http_send_outcome(
        c, 405, "not-supported", rid_in,
        "DELETE is not supported: the record is append-only and keeps every version. To retract "
        "a resource recorded in error, update it (PUT or PATCH) with status entered-in-error "
        "(Condition and AllergyIntolerance: verificationStatus entered-in-error); a changed fact "
        "is an update with the new values. Every version stays readable in _history.");
  if (!is_get && !is_post && !is_delete)
    return http_send_outcome(c, 405, "not-supported", rid_in,
                             "not a FHIR interaction of this server (writes are POST [type], PUT "
                             "[type]/[id], PUT [type]?[search], PATCH [type]/[id] and POST [base] "
                             "with a Bundle)");
  cl_http_route rt;
  if (cl_http_route_of(url + strlen(BASE_PATH),
                       is_post     ? CL_HTTP_POST
                       : is_delete ? CL_HTTP_DELETE
                                   : CL_HTTP_GET,
                       &rt) != 0)
    return http_send_outcome(c, is_get ? 404 : 405, is_get ? "not-found" : "not-supported", rid_in,
                             is_post     ? "POST is [type], [type]/_search or [base] (a Bundle)"
                             : is_delete ? "DELETE is only $export-status/[job] (cancel an export)"
                                         : "no such FHIR route");
  cl_http_params p = {.n = 0};
  MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, http_add_arg, &p);
  if (is_post) {
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    if (r->too_big)
      return http_send_outcome(c, 413, "too-costly", rid_in, "the search form is over 1 MiB");
    if (r->len > 0 && (ct == NULL || strncmp(ct, "application/x-www-form-urlencoded", 33) != 0))
      return http_send_outcome(c, 415, "not-supported", rid_in,
                               "POST _search takes application/x-www-form-urlencoded");
    if (r->body != NULL)
      cl_http_form_add(&p, r->body);
  }
  if (p.overflow)
    return http_send_outcome(c, 400, "too-costly", rid_in, "more than 128 parameters");
  if (!accepts_json(c, &p))
    return http_send_outcome(c, 406, "not-supported", rid_in,
                             "only application/fhir+json is served (no XML)");

  /* the request layer: context, hooks */
  cl_req_ctx rc;
  cl_req_ctx_init(&rc, rt.method, "http");
  if (rid_in != NULL && rid_in[0])
    snprintf(rc.request_id, sizeof rc.request_id, "%s", rid_in);
  http_peer_of(c, rc.peer, sizeof rc.peer);
  rc.auth = h->tls ? CL_AUTH_TLS : CL_AUTH_NONE;
  const char *authz = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
  if (authz && !strncasecmp(authz, "Bearer ", 7))
    snprintf(rc.bearer, sizeof rc.bearer, "%s", authz + 7);
  /* how long read-your-writes may wait: the server's bound, or less with
   * RFC 7240's Prefer: wait=<seconds> */
  const char *prefer = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Prefer");
  rc.deadline_ms = cl_feed_now_ms() + http_prefer_wait_ms(prefer, h->wait_ms);
  cl_err err, aerr;
  cl_err_clear(&err);
  /* the hooks see the request as the gRPC face's message of the same
   * interaction: one policy for both faces */
  Clinlog__V1__FhirParam pstore[CL_HTTP_MAX_PARAMS], *pptr[CL_HTTP_MAX_PARAMS];
  for (size_t i = 0; i < p.n; i++) {
    clinlog__v1__fhir_param__init(&pstore[i]);
    pstore[i].name = (char *)p.kv[i].name;
    pstore[i].value = (char *)p.kv[i].value;
    pptr[i] = &pstore[i];
  }
  Clinlog__V1__FhirReadRequest read_req = CLINLOG__V1__FHIR_READ_REQUEST__INIT;
  Clinlog__V1__FhirHistoryRequest hist_req = CLINLOG__V1__FHIR_HISTORY_REQUEST__INIT;
  Clinlog__V1__FhirSearchRequest search_req = CLINLOG__V1__FHIR_SEARCH_REQUEST__INIT;
  Clinlog__V1__FhirEverythingRequest every_req = CLINLOG__V1__FHIR_EVERYTHING_REQUEST__INIT;
  Clinlog__V1__FhirCapabilitiesRequest caps_req = CLINLOG__V1__FHIR_CAPABILITIES_REQUEST__INIT;
  Clinlog__V1__FhirExportRequest export_req = CLINLOG__V1__FHIR_EXPORT_REQUEST__INIT;
  Clinlog__V1__FhirExportJobRequest job_req = CLINLOG__V1__FHIR_EXPORT_JOB_REQUEST__INIT;
  Clinlog__V1__FhirExportReadRequest file_req = CLINLOG__V1__FHIR_EXPORT_READ_REQUEST__INIT;
  Clinlog__V1__AuditQueryRequest audit_req = CLINLOG__V1__AUDIT_QUERY_REQUEST__INIT;
  uint8_t audit_id[16];
  const ProtobufCMessage *as_grpc = &caps_req.base;
  switch (rt.method) {
  case M_FHIR_EXPORT:
    export_req.level = rt.level == CL_FHIR_EXPORT_PATIENT ? "patient"
                       : rt.level == CL_FHIR_EXPORT_GROUP ? "group"
                                                          : "system";
    export_req.group_id = rt.id;
    export_req.n_params = p.n;
    export_req.params = pptr;
    as_grpc = &export_req.base;
    break;
  case M_FHIR_EXPORT_STATUS:
  case M_FHIR_EXPORT_CANCEL:
    job_req.job_id = rt.job;
    as_grpc = &job_req.base;
    break;
  case M_FHIR_EXPORT_READ:
    file_req.job_id = rt.job;
    file_req.file = rt.version;
    as_grpc = &file_req.base;
    break;
  case M_FHIR_READ:
    read_req.type = rt.type;
    read_req.id = rt.id;
    read_req.version_id = rt.version;
    as_grpc = &read_req.base;
    break;
  case M_FHIR_HISTORY:
    hist_req.type = rt.type;
    hist_req.id = rt.id;
    as_grpc = &hist_req.base;
    break;
  case M_FHIR_SEARCH:
    search_req.type = rt.type;
    search_req.n_params = p.n;
    search_req.params = pptr;
    as_grpc = &search_req.base;
    break;
  case M_FHIR_EVERYTHING:
    every_req.patient_id = rt.id;
    every_req.n_params = p.n;
    every_req.params = pptr;
    as_grpc = &every_req.base;
    break;
  case M_AUDIT_QUERY:
    for (size_t i = 0; i < p.n; i++) /* what the hooks and the trail see of it */
      if (!strcmp(p.kv[i].name, "patient"))
        audit_req.patient =
            (char *)(strncmp(p.kv[i].value, "Patient/", 8) ? p.kv[i].value : p.kv[i].value + 8);
      else if (!strncmp(p.kv[i].name, "agent", 5))
        audit_req.principal = (char *)p.kv[i].value;
      else if (!strcmp(p.kv[i].name, "outcome"))
        audit_req.outcome = (char *)p.kv[i].value;
    if (rt.interaction == CL_FHIR_READ && cl_http_uuid(rt.id, audit_id) == 0)
      audit_req.event_id = (ProtobufCBinaryData){16, audit_id};
    as_grpc = &audit_req.base;
    break;
  default:
    break;
  }
  if (cl_svc_admit(h->svc, &rc, as_grpc, &err) != 0) {
    if (http_done(h, &rc, err.code, err.msg, &aerr))
      return http_unrecorded(c, &rc, &aerr);
    int st = err.code == CL_EDENIED    ? 403
             : err.code == CL_EUNAUTH  ? 401
             : err.code == CL_ELIMITED ? 429
                                       : 503;
    return http_send_outcome(c, st, st == 503 ? "transient" : "security", rc.request_id, err.msg);
  }
  const char *proj = rt.op == CL_HTTP_AUDIT ? "audit" : "fhir";
  cl_runner *runner = cl_svc_runner(h->svc, proj);
  if (runner == NULL) {
    if (http_done(h, &rc, CL_EUNAVAILABLE, "no such projection", &aerr))
      return http_unrecorded(c, &rc, &aerr);
    return http_send_outcome(c, 503, "transient", rc.request_id,
                             rt.op == CL_HTTP_AUDIT ? "this node does not run the audit projection"
                                                    : "this node does not run the fhir projection");
  }
  const char *ms = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Clinlog-Min-Sequence");
  if (ms != NULL) {
    char *end;
    unsigned long long seq = strtoull(ms, &end, 10);
    if (*end != '\0' || end == ms) {
      if (http_done(h, &rc, CL_EINVAL, "bad X-Clinlog-Min-Sequence", &aerr))
        return http_unrecorded(c, &rc, &aerr);
      return http_send_outcome(c, 400, "invalid", rc.request_id,
                               "X-Clinlog-Min-Sequence: expected a log sequence number");
    }
    if (seq > 0 && cl_svc_wait(h->svc, proj, seq, rc.deadline_ms, &err) != 0) {
      if (http_done(h, &rc, err.code, err.msg, &aerr))
        return http_unrecorded(c, &rc, &aerr);
      return http_send_outcome(c, err.code == CL_ETIMEDOUT ? 504 : 503, "timeout", rc.request_id,
                               err.msg);
    }
  }
  const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
  char base[384];
  snprintf(base, sizeof base, "%s://%s%s", h->tls ? "https" : "http", host ? host : "localhost",
           BASE_PATH);
  if (rt.op == CL_HTTP_AUDIT)
    return http_serve_audit(h, c, &rt, &p, &rc, cl_runner_proj(runner), base);
  if (rt.op != CL_HTTP_ENGINE)
    return http_serve_export(h, c, &rt, &p, &rc, prefer, base);
  cl_fhir_req rq = {.interaction = rt.interaction,
                    .type = rt.type,
                    .id = rt.id,
                    .version = rt.version,
                    .params = p.kv,
                    .nparams = p.n,
                    .strict = prefer != NULL && strstr(prefer, "handling=strict") != NULL,
                    .base = base,
                    .writable = cl_fhirw_types};
  cl_fhir_engine *e;
  if (cl_fhir_engine_new(cl_runner_proj(runner), cl_svc_log(h->svc), &e, &err) != 0) {
    if (http_done(h, &rc, err.code, err.msg, &aerr))
      return http_unrecorded(c, &rc, &aerr);
    return http_send_outcome(c, 500, "exception", rc.request_id, err.msg);
  }
  cl_fhir_resp rs;
  cl_fhir_handle(e, &rq, &rs);
  cl_fhir_engine_free(e);
  if (rs.status == 200 && rs.body) { /* whose data it returns, for the trail */
    cl_req_ctx_patients_of(&rc, rs.body, rs.len);
    if (cl_svc_subset(h->svc, &rc, &rs.body, &rs.len, 0) != 0) { /* minimum necessary */
      cl_fhir_resp_clear(&rs);
      rs.status = 500;
    }
  }
  if (http_done(h, &rc,
                rs.status == 200   ? 0
                : rs.status == 404 ? CL_ENOTFOUND
                : rs.status == 500 ? CL_EFAILED
                                   : CL_EINVAL,
                "", &aerr)) {
    free(rs.body);
    return http_unrecorded(c, &rc, &aerr);
  }
  if (rs.status == 500 && rs.body == NULL)
    return http_send_outcome(c, 500, "exception", rc.request_id, "out of memory");
  /* a conditional read: the client has this version */
  const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-None-Match");
  if (rs.status == 200 && rs.etag[0] && inm != NULL &&
      (strcmp(inm, rs.etag) == 0 || strcmp(inm, rs.etag + 2) == 0 || strcmp(inm, "*") == 0)) {
    free(rs.body);
    rs.body = NULL;
    return http_send_body(c, 304, NULL, 0, rc.request_id, &rs);
  }
  char *body = rs.body;
  size_t len = rs.len;
  rs.body = NULL;
  if (!strcmp(method, "HEAD")) { /* the headers of the GET, no body */
    free(body);
    body = NULL;
    len = 0;
  }
  return http_send_body(c, rs.status, body, len, rc.request_id, &rs);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
  (void)version;
  cl_http *h = cls;
  if (*con_cls == NULL) { /* headers are in: the body (if any) comes next */
    req *r = req_new();
    if (r == NULL)
      return MHD_NO;
    *con_cls = r;
    return MHD_YES;
  }
  req *r = *con_cls;
  if (*upload_data_size > 0) {
    if (r->len + *upload_data_size > MAX_BODY) {
      r->too_big = 1;
    } else {
      char *b = realloc(r->body, r->len + *upload_data_size + 1);
      if (b == NULL)
        return MHD_NO;
      memcpy(b + r->len, upload_data, *upload_data_size);
      r->len += *upload_data_size;
      b[r->len] = '\0';
      r->body = b;
    }
    *upload_data_size = 0;
    return MHD_YES;
  }
  return serve(h, c, url, method, r);
}

/* ------------------------------------------------------------ lifecycle */

/* A PEM file's text; a key (secret) goes to sodium_malloc memory. */
static char *read_pem(const char *path, int secret, cl_err *err) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    cl_err_set(err, CL_EIO, "cannot read %s", path);
    return NULL;
  }
  char *buf = secret ? sodium_malloc(1 << 20) : malloc(1 << 20);
  size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
  fclose(f);
  if (buf == NULL) {
    cl_err_set(err, CL_ENOMEM, "out of memory");
    return NULL;
  }
  buf[n] = '\0';
  return buf;
}

int cl_http_start(const cl_http_config *cfg, cl_svc *svc, cl_http **out, int *port, cl_err *err) {
  struct sockaddr_storage ss;
  int loopback = 0;
  int rc = cl_listen_parse(cfg->listen, "http listen", &ss, &loopback, err);
  if (rc)
    return rc;
  int tls = cfg->tls_cert != NULL && cfg->tls_key != NULL;
  if (!tls && !(cfg->dev && loopback))
    return cl_err_set(err, CL_EINVAL,
                      "http %s: TLS needs --tls-cert and --tls-key (plaintext only with --dev on "
                      "a loopback address)",
                      cfg->listen);
  if (tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
    return cl_err_set(err, CL_EIO, "http: this libmicrohttpd has no TLS");
  cl_http *h = calloc(1, sizeof *h);
  if (h == NULL)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  h->svc = svc;
  h->tls = tls;
  h->wait_ms = cfg->wait_ms > 0 ? cfg->wait_ms : 30000;
  if (tls && ((h->cert = read_pem(cfg->tls_cert, 0, err)) == NULL ||
              (h->key = read_pem(cfg->tls_key, 1, err)) == NULL)) {
    free(h->cert);
    free(h);
    return err->code;
  }
  http_cds_init(h);
  unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                   MHD_USE_ERROR_LOG | (tls ? MHD_USE_TLS : 0) |
                   (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
  struct MHD_OptionItem tls_opts[] = {
      {MHD_OPTION_HTTPS_MEM_KEY, 0, h->key},
      {MHD_OPTION_HTTPS_MEM_CERT, 0, h->cert},
      {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"},
      {MHD_OPTION_END, 0, NULL}};
  h->d = MHD_start_daemon(
      flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
      MHD_OPTION_CONNECTION_LIMIT, (unsigned)(cfg->max_connections ? cfg->max_connections : 256),
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(cfg->timeout_s ? cfg->timeout_s : 60),
      MHD_OPTION_NOTIFY_COMPLETED, req_done, NULL, MHD_OPTION_ARRAY, tls ? tls_opts : &tls_opts[3],
      MHD_OPTION_END);
  if (h->d == NULL) {
    http_cds_free(h);
    free(h->cert);
    sodium_free(h->key);
    free(h);
    return cl_err_set(err, CL_EIO, "http: cannot serve on %s (address in use, or bad TLS files)",
                      cfg->listen);
  }
  const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
  if (port != NULL)
    *port = di ? di->port : 0;
  *out = h;
  return 0;
}

void cl_http_stop(cl_http *h) {
  if (h == NULL)
    return;
  MHD_stop_daemon(h->d);
  http_cds_free(h);
  free(h->cert);
  sodium_free(h->key);
  free(h);
}

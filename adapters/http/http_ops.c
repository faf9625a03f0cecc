/* The HTTP face's routes besides the FHIR engine's (http_int.h): Bulk Data
 * export (query/fhir/export.h), the audit trail's AuditEvent
 * (query/audit/search.h), and login and logout (query/auth/authn.h), each
 * after the request layer admitted the call, recorded before its answer. */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "adapters/http/http_int.h"
#include "adapters/service/methods.h"
#include "clinlog/v1/audit.pb-c.h"
#include "clinlog/v1/auth.pb-c.h"
#include "query/audit/search.h"

/* ----------------------------------------------------- Bulk Data export */

/* Queues resp with the request id and the given headers (name, value
 * pairs, NULL-terminated), and drops it. */
static enum MHD_Result queue(struct MHD_Connection *c, int status, struct MHD_Response *resp,
                             const char *request_id, const char *const *headers) {
  if (resp == NULL)
    return MHD_NO;
  if (request_id != NULL && request_id[0])
    MHD_add_response_header(resp, "X-Request-Id", request_id);
  for (size_t i = 0; headers != NULL && headers[i] != NULL; i += 2)
    MHD_add_response_header(resp, headers[i], headers[i + 1]);
  enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
  MHD_destroy_response(resp);
  return ret;
}

static struct MHD_Response *text_response(char *body, size_t len) {
  struct MHD_Response *r = MHD_create_response_from_buffer(
      len, body ? body : (char *)"", body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
  if (r == NULL)
    free(body);
  return r;
}

/* An NDJSON file being sent: pieces of cl_fhir_export_read, one after
 * another, as libmicrohttpd asks for bytes. */
typedef struct file_stream {
  cl_http *h;
  cl_req_ctx rc;
  char job[33];
  uint32_t file;
  uint8_t cursor[32];
  int more;
  char *buf;
  size_t len, off;
  int code; /* a failure after the headers went out */
} file_stream;

#define EXPORT_PIECE (256 * 1024)

static int fs_fill(file_stream *f, cl_err *err) {
  if (f->buf != NULL) {
    sodium_memzero(f->buf, f->len);
    free(f->buf);
  }
  f->buf = NULL;
  f->len = f->off = 0;
  uint8_t next[32];
  int rc =
      cl_fhir_export_read(cl_svc_exports(f->h->svc), f->job, f->file, f->more ? f->cursor : NULL,
                          EXPORT_PIECE, &f->buf, &f->len, next, &f->more, err);
  memcpy(f->cursor, next, 32);
  if (rc == 0 && cl_svc_subset(f->h->svc, &f->rc, &f->buf, &f->len, 1) != 0) /* minimum necessary */
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
  return rc;
}

/* Names in rc, for the call's record, the patients whose data the whole
 * file holds (the record is committed before the first byte, the file
 * streams after it): the pieces after the first one, read once more here,
 * until the file ends or rc holds as many patients as a record takes. */
static int fs_patients(file_stream *f, cl_req_ctx *rc, cl_err *err) {
  cl_req_ctx_patients_of(rc, f->buf, f->len);
  uint8_t cur[32];
  memcpy(cur, f->cursor, 32);
  int more = f->more, code = 0;
  while (more && code == 0 && strlen(rc->audit_patients) + 128 < sizeof rc->audit_patients) {
    char *buf;
    size_t len;
    uint8_t next[32];
    code = cl_fhir_export_read(cl_svc_exports(f->h->svc), f->job, f->file, cur, EXPORT_PIECE, &buf,
                               &len, next, &more, err);
    if (code == 0) {
      cl_req_ctx_patients_of(rc, buf, len);
      sodium_memzero(buf, len);
      free(buf);
      memcpy(cur, next, 32);
    }
  }
  return code;
}

static ssize_t fs_read(void *cls, uint64_t pos, char *out, size_t max) {
  (void)pos;
  file_stream *f = cls;
  while (f->off == f->len) {
    if (!f->more)
      return MHD_CONTENT_READER_END_OF_STREAM;
    cl_err err;
    if ((f->code = fs_fill(f, &err)) != 0) {
      fprintf(stderr, "clinlogd: http: export file %s/%u: %s\n", f->job, f->file, err.msg);
      return MHD_CONTENT_READER_END_WITH_ERROR;
    }
  }
  size_t n = f->len - f->off < max ? f->len - f->off : max;
  memcpy(out, f->buf + f->off, n);
  f->off += n;
  return (ssize_t)n;
}

static void fs_free(void *cls) {
  file_stream *f = cls;
  cl_svc_finished(f->h->svc, &f->rc, f->code, f->code ? "export file cut short" : "");
  if (f->buf != NULL) {
    sodium_memzero(f->buf, f->len);
    free(f->buf);
  }
  free(f);
}

static int status_of_error(int code) {
  return code == CL_ENOTFOUND || code == CL_EAGAIN ? 404
         : code == CL_EINVAL                       ? 400
         : code == CL_EUNAVAILABLE                 ? 429
                                                   : 500;
}

/* The export routes (after the request layer admitted the call). */
enum MHD_Result http_serve_export(cl_http *h, struct MHD_Connection *c, const cl_http_route *rt,
                                  const cl_http_params *p, cl_req_ctx *rc, const char *prefer,
                                  const char *base) {
  cl_fhir_exports *x = cl_svc_exports(h->svc);
  cl_err err, aerr;
  cl_err_clear(&err);
  if (x == NULL) {
    if (http_done(h, rc, CL_EUNAVAILABLE, "no bulk export", &aerr))
      return http_unrecorded(c, rc, &aerr);
    return http_send_outcome(c, 503, "transient", rc->request_id,
                             "this node does not run bulk export");
  }
  if (rt->op != CL_HTTP_EXPORT_KICKOFF && cl_fhir_export_owned(x, rt->job, rc->principal, &err)) {
    if (http_done(h, rc, CL_ENOTFOUND, err.msg, &aerr))
      return http_unrecorded(c, rc, &aerr); /* another's job: as if none */
    return http_send_outcome(c, 404, "not-found", rc->request_id, err.msg);
  }
  char loc[600];
  switch (rt->op) {
  case CL_HTTP_EXPORT_KICKOFF: {
    if (prefer == NULL || strstr(prefer, "respond-async") == NULL) {
      if (http_done(h, rc, CL_EINVAL, "no Prefer: respond-async", &aerr))
        return http_unrecorded(c, rc, &aerr);
      return http_send_outcome(c, 400, "invalid", rc->request_id,
                               "$export is asynchronous: send Prefer: respond-async");
    }
    cl_fhir_export_req rq = {.level = rt->level,
                             .group = rt->id,
                             .params = p->kv,
                             .nparams = p->n,
                             .strict = strstr(prefer, "handling=strict") != NULL,
                             .owner = rc->principal};
    char id[33];
    int code = cl_fhir_export_start(x, &rq, id, &err);
    if (http_done(h, rc, code, code ? err.msg : "", &aerr))
      return http_unrecorded(c, rc, &aerr);
    if (code != 0) {
      int st = status_of_error(code);
      if (st == 429) {
        const char *hdrs[] = {"Retry-After", "10", NULL};
        return queue(c, 429, text_response(NULL, 0), rc->request_id, hdrs);
      }
      return http_send_outcome(c, st, st == 404 ? "not-found" : "invalid", rc->request_id, err.msg);
    }
    snprintf(loc, sizeof loc, "%s/$export-status/%s", base, id);
    const char *hdrs[] = {"Content-Location", loc, NULL};
    return queue(c, 202, text_response(NULL, 0), rc->request_id, hdrs);
  }
  case CL_HTTP_EXPORT_STATUS: {
    if (rt->method == M_FHIR_EXPORT_CANCEL) {
      int code = cl_fhir_export_cancel(x, rt->job, &err);
      if (http_done(h, rc, code, code ? err.msg : "", &aerr))
        return http_unrecorded(c, rc, &aerr);
      if (code != 0)
        return http_send_outcome(c, 404, "not-found", rc->request_id, err.msg);
      return queue(c, 202, text_response(NULL, 0), rc->request_id, NULL);
    }
    cl_fhir_export_status st;
    int code = cl_fhir_export_get(x, rt->job, &st, &err);
    if (http_done(h, rc, code, code ? err.msg : "", &aerr))
      return http_unrecorded(c, rc, &aerr);
    if (code != 0)
      return http_send_outcome(c, status_of_error(code), "not-found", rc->request_id, err.msg);
    int state = st.state;
    char progress[160], why[256];
    snprintf(progress, sizeof progress, "%s", st.progress);
    snprintf(why, sizeof why, "%s", st.error);
    cl_fhir_export_status_clear(&st);
    if (state == CL_FHIR_EXPORT_RUNNING) {
      const char *hdrs[] = {"X-Progress", progress, "Retry-After", "1", NULL};
      return queue(c, 202, text_response(NULL, 0), rc->request_id, hdrs);
    }
    if (state == CL_FHIR_EXPORT_FAILED)
      return http_send_outcome(c, 500, "exception", rc->request_id, why);
    char *m;
    size_t mlen;
    if ((code = cl_fhir_export_manifest(x, rt->job, base, &m, &mlen, &err)) != 0)
      return http_send_outcome(c, status_of_error(code), "exception", rc->request_id, err.msg);
    const char *hdrs[] = {"Content-Type", "application/json", NULL};
    return queue(c, 200, text_response(m, mlen), rc->request_id, hdrs);
  }
  default: { /* CL_HTTP_EXPORT_FILE */
    file_stream *f = calloc(1, sizeof *f);
    if (f == NULL) {
      if (http_done(h, rc, CL_ENOMEM, "out of memory", &aerr))
        return http_unrecorded(c, rc, &aerr);
      return MHD_NO;
    }
    f->h = h;
    f->rc = *rc;
    memcpy(f->job, rt->job, sizeof f->job);
    f->file = rt->version;
    int code = fs_fill(f, &err); /* the first piece: a failure still gets its status */
    if (code == 0)
      code = fs_patients(f, rc, &err);
    f->rc = *rc;
    if (code != 0) {
      if (f->buf != NULL) {
        sodium_memzero(f->buf, f->len);
        free(f->buf);
      }
      free(f);
      if (http_done(h, rc, code, err.msg, &aerr))
        return http_unrecorded(c, rc, &aerr);
      return http_send_outcome(c, status_of_error(code), "not-found", rc->request_id, err.msg);
    }
    if (cl_svc_record(h->svc, rc, 0, "", &aerr) != 0) { /* fs_free tells the finished hook */
      f->code = aerr.code;
      fs_free(f);
      return http_unrecorded(c, rc, &aerr);
    }
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, fs_read, f, fs_free);
    if (resp == NULL) {
      fs_free(f);
      return MHD_NO;
    }
    const char *hdrs[] = {"Content-Type", "application/fhir+ndjson", NULL};
    return queue(c, 200, resp, rc->request_id, hdrs);
  }
  }
}

/* --------------------------------------------------------- audit trail */

/* The query string of a search's parameters, without _cursor, into out. */
static void query_without_cursor(const cl_http_params *p, char *out, size_t n) {
  size_t at = 0;
  out[0] = '\0';
  for (size_t i = 0; i < p->n; i++) {
    if (!strcmp(p->kv[i].name, "_cursor"))
      continue;
    int w = snprintf(out + at, n - at, "%s%s=%s", at ? "&" : "", p->kv[i].name, p->kv[i].value);
    if (w < 0 || (size_t)w >= n - at) {
      out[at] = '\0';
      return;
    }
    at += (size_t)w;
  }
}

/* GET AuditEvent?... (a searchset Bundle) and GET AuditEvent/[id], after
 * the request layer admitted the call (the policy's `audit` kind). */
enum MHD_Result http_serve_audit(cl_http *h, struct MHD_Connection *c, const cl_http_route *rt,
                                 const cl_http_params *p, cl_req_ctx *rc, cl_proj *proj,
                                 const char *base) {
  cl_err err, aerr;
  cl_err_clear(&err);
  cl_log *log = cl_svc_log(h->svc);
  char *body = NULL;
  size_t len = 0;
  int code;
  if (rt->interaction == CL_FHIR_READ) {
    uint8_t id[16];
    json_t *one = NULL;
    code = cl_http_uuid(rt->id, id) != 0
               ? cl_err_set(&err, CL_ENOTFOUND, "AuditEvent/%s: no such audit record", rt->id)
               : cl_audit_get(log, id, cl_log_origin(log), &one, NULL, &err);
    if (code == 0 && !(body = json_dumps(one, JSON_COMPACT | JSON_PRESERVE_ORDER)))
      code = cl_err_set(&err, CL_ENOMEM, "out of memory");
    json_decref(one);
    rc->audit_count = code == 0;
  } else {
    cl_audit_params ap;
    cl_audit_page pg;
    code = cl_audit_params_of(p->kv, p->n, &ap, &err);
    if (code == 0)
      code = cl_audit_page_get(proj, log, &ap.f, cl_log_origin(log), &pg, &err);
    if (code == 0) {
      char q[2048];
      query_without_cursor(p, q, sizeof q);
      if (!(body = cl_audit_bundle(&pg, base, q, &len)))
        code = cl_err_set(&err, CL_ENOMEM, "out of memory");
      rc->audit_count = pg.n;
      cl_audit_page_clear(&pg);
    }
  }
  if (http_done(h, rc, code, code ? err.msg : "", &aerr)) {
    free(body);
    return http_unrecorded(c, rc, &aerr);
  }
  if (code != 0)
    return http_send_outcome(c,
                             code == CL_ENOTFOUND ? 404
                             : code == CL_EINVAL  ? 400
                                                  : 500,
                             code == CL_ENOTFOUND ? "not-found"
                             : code == CL_EINVAL  ? "invalid"
                                                  : "exception",
                             rc->request_id, err.msg);
  return http_send_body(c, 200, body, body ? strlen(body) : 0, rc->request_id, NULL);
}

/* ------------------------------------------------------- login, logout */

/* A JSON answer that no cache keeps (RFC 6749 section 5.1). */
enum MHD_Result http_send_json(struct MHD_Connection *c, int status, json_t *j,
                               const char *request_id) {
  char *body = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  if (body == NULL)
    return MHD_NO;
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
  if (resp == NULL) {
    free(body);
    return MHD_NO;
  }
  MHD_add_response_header(resp, "Content-Type", "application/json");
  MHD_add_response_header(resp, "Cache-Control", "no-store");
  if (request_id[0])
    MHD_add_response_header(resp, "X-Request-Id", request_id);
  if (status == 401)
    MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"clinlog\"");
  enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
  MHD_destroy_response(resp);
  return ret;
}

static enum MHD_Result auth_error(struct MHD_Connection *c, const cl_err *err,
                                  const char *request_id) {
  int st = err->code == CL_EUNAUTH    ? 401
           : err->code == CL_EDENIED  ? 403
           : err->code == CL_ELIMITED ? 429
           : err->code == CL_EINVAL   ? 400
                                      : 503;
  return http_send_json(c, st,
                        json_pack("{s:s, s:s}", "error",
                                  st == 401   ? "invalid_grant"
                                  : st == 403 ? "access_denied"
                                  : st == 400 ? "invalid_request"
                                  : st == 429 ? "slow_down"
                                              : "temporarily_unavailable",
                                  "error_description", err->msg),
                        request_id);
}

/* POST /auth/login (a form: principal, password, code, optional scope),
 * POST /auth/logout and POST /auth/break-glass (a form: patient, reason,
 * optional seconds; both with Authorization: Bearer): Auth.Login,
 * Auth.Logout and Auth.BreakGlass of the gRPC face, through the same
 * request layer. A login answers as an OAuth 2.0 token response
 * (access_token, token_type, expires_in); errors as {"error",
 * "error_description"}. */
enum MHD_Result http_serve_auth(cl_http *h, struct MHD_Connection *c, const char *url,
                                const char *method, req *r) {
  int login = !strcmp(url, "/auth/login"), glass = !strcmp(url, "/auth/break-glass");
  cl_req_ctx rc;
  cl_req_ctx_init(&rc, login ? M_AUTH_LOGIN : glass ? M_AUTH_BREAK_GLASS : M_AUTH_LOGOUT, "http");
  http_peer_of(c, rc.peer, sizeof rc.peer);
  rc.auth = h->tls ? CL_AUTH_TLS : CL_AUTH_NONE;
  const char *authz = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
  if (authz && !strncasecmp(authz, "Bearer ", 7))
    snprintf(rc.bearer, sizeof rc.bearer, "%s", authz + 7);
  cl_err err, aerr;
  cl_err_clear(&err);
  if (strcmp(method, "POST") != 0) {
    cl_err_set(&err, CL_EINVAL, "%s takes POST", url);
    if (cl_svc_record(h->svc, &rc, err.code, err.msg, &aerr)) /* not admitted: no hooks */
      return http_unrecorded(c, &rc, &aerr);
    return auth_error(c, &err, rc.request_id);
  }
  cl_http_params p = {.n = 0};
  const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
  if ((login || glass) && (r->too_big || !r->body || !ct ||
                           strncmp(ct, "application/x-www-form-urlencoded", 33) != 0)) {
    cl_err_set(&err, CL_EINVAL, "POST %s takes an application/x-www-form-urlencoded form: %s", url,
               login ? "principal, password, code" : "patient, reason, seconds");
    if (cl_svc_record(h->svc, &rc, err.code, err.msg, &aerr)) /* not admitted: no hooks */
      return http_unrecorded(c, &rc, &aerr);
    return auth_error(c, &err, rc.request_id);
  }
  if (login || glass)
    cl_http_form_add(&p, r->body);
  Clinlog__V1__LoginRequest lr = CLINLOG__V1__LOGIN_REQUEST__INIT;
  Clinlog__V1__LogoutRequest lo = CLINLOG__V1__LOGOUT_REQUEST__INIT;
  Clinlog__V1__BreakGlassRequest bg = CLINLOG__V1__BREAK_GLASS_REQUEST__INIT;
  for (size_t i = 0; i < p.n; i++) {
    if (!strcmp(p.kv[i].name, "patient"))
      bg.patient_id = (char *)p.kv[i].value;
    else if (!strcmp(p.kv[i].name, "reason"))
      bg.reason = (char *)p.kv[i].value;
    else if (!strcmp(p.kv[i].name, "seconds"))
      bg.seconds = (uint32_t)strtoul(p.kv[i].value, NULL, 10);
    else if (!strcmp(p.kv[i].name, "principal"))
      lr.principal_id = (char *)p.kv[i].value;
    else if (!strcmp(p.kv[i].name, "password"))
      lr.password = (char *)p.kv[i].value;
    else if (!strcmp(p.kv[i].name, "code"))
      lr.totp_code = (char *)p.kv[i].value;
    else if (!strcmp(p.kv[i].name, "scope"))
      lr.scope = (char *)p.kv[i].value;
  }
  cl_authn *a = cl_svc_authn(h->svc);
  if (a == NULL) {
    cl_err_set(&err, CL_EINVAL, "authentication is not enabled on this server (clinlogd --auth)");
    if (cl_svc_record(h->svc, &rc, err.code, err.msg, &aerr)) /* not admitted: no hooks */
      return http_unrecorded(c, &rc, &aerr);
    return auth_error(c, &err, rc.request_id);
  }
  if (cl_svc_admit(h->svc, &rc, login ? &lr.base : glass ? &bg.base : &lo.base, &err) != 0) {
    if (http_done(h, &rc, err.code, err.msg, &aerr))
      return http_unrecorded(c, &rc, &aerr);
    return auth_error(c, &err, rc.request_id);
  }
  /* the outcome first, then its record, then the answer */
  cl_login l = {0};
  uint64_t seq = 0;
  int64_t until = 0;
  int code;
  if (login) {
    code = cl_authn_login(a, lr.principal_id, lr.password, lr.totp_code, lr.scope, rc.peer, &l,
                          &err);
  } else if (rc.auth != CL_AUTH_TOKEN) {
    code = cl_err_set(&err, CL_EUNAUTH, "%s: send the session's token (Authorization: Bearer)",
                      glass ? "break-glass" : "logout");
  } else {
    cl_identity id = {0};
    snprintf(id.principal, sizeof id.principal, "%s", rc.principal);
    memcpy(id.token_id, rc.token_id, sizeof id.token_id);
    id.expires_at = rc.token_expires;
    code = glass ? cl_authn_break_glass(a, &id, bg.patient_id, bg.reason, bg.seconds, &until, &seq,
                                        &err)
                 : cl_authn_logout(a, &id, &seq, &err);
  }
  enum MHD_Result ret;
  if (http_done(h, &rc, code, code ? err.msg : "", &aerr)) {
    ret = http_unrecorded(c, &rc, &aerr);
  } else if (code) {
    ret = auth_error(c, &err, rc.request_id);
  } else if (login) {
    int64_t ttl = l.id.expires_at - (int64_t)time(NULL);
    ret = http_send_json(c, 200,
                    json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:I, s:s}", "access_token", l.token,
                              "token_type", "Bearer", "expires_in", (json_int_t)(ttl > 0 ? ttl : 0),
                              "principal", l.id.principal, "roles", l.id.roles, "token_id",
                              l.id.token_id, "session_seq", (json_int_t)l.seq, "scope", l.id.scope),
                    rc.request_id);
  } else {
    ret = http_send_json(c, 200,
                         glass ? json_pack("{s:I, s:I}", "expires_at", (json_int_t)until, "seq",
                                           (json_int_t)seq)
                               : json_pack("{s:b, s:I}", "logged_out", 1, "seq", (json_int_t)seq),
                         rc.request_id);
  }
  if (l.token) {
    sodium_memzero(l.token, strlen(l.token));
    free(l.token);
  }
  if (r->body) /* the password was in it */
    sodium_memzero(r->body, r->len);
  return ret;
}

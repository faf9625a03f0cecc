/* SMART on FHIR on the HTTP face: the discovery document and the token
 * endpoint of SMART Backend Services (http_int.h). The token endpoint is
 * Auth.Token of the gRPC face, through the same request layer, answering
 * as RFC 6749 section 5 says. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "adapters/http/http_int.h"
#include "clinlog/v1/auth.pb-c.h"
#include "query/auth/authn.h"

void http_origin(cl_http *h, struct MHD_Connection *c, char *out, size_t n) {
  const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
  snprintf(out, n, "%s://%s", h->tls ? "https" : "http", host ? host : "localhost");
}

enum MHD_Result http_serve_smart_config(cl_http *h, struct MHD_Connection *c) {
  char origin[320], token[352];
  http_origin(h, c, origin, sizeof origin);
  snprintf(token, sizeof token, "%s/auth/token", origin);
  json_t *j = json_pack(
      "{s:s, s:[s], s:[s,s,s,s], s:[s], s:[s,s,s,s,s,s,s,s], s:[s,s,s,s,s], s:[s]}",
      "token_endpoint", token, "token_endpoint_auth_methods_supported", "private_key_jwt",
      "token_endpoint_auth_signing_alg_values_supported", "RS384", "ES384", "RS256", "ES256",
      "grant_types_supported", "client_credentials", "scopes_supported", "system/*.rs",
      "system/*.read", "user/*.rs", "user/*.read", "patient/*.rs", "patient/*.read",
      "system/AuditEvent.rs", "user/AuditEvent.rs", "capabilities",
      "client-confidential-asymmetric", "permission-v1", "permission-v2", "permission-patient",
      "permission-user", "code_challenge_methods_supported", "S256");
  if (!j)
    return http_send_outcome(c, 500, "exception", "", "out of memory");
  return http_send_json(c, 200, j, "");
}

/* RFC 6749 5.2's error for a refused token request. */
static enum MHD_Result token_error(struct MHD_Connection *c, const cl_err *err,
                                   const char *request_id) {
  const char *e = "temporarily_unavailable";
  int st = 503;
  if (err->code == CL_EUNAUTH) {
    st = 401, e = "invalid_client";
  } else if (err->code == CL_ELIMITED) {
    st = 429, e = "slow_down";
  } else if (err->code == CL_EINVAL || err->code == CL_EDENIED) {
    st = 400;
    e = !strncmp(err->msg, "scope", 5)         ? "invalid_scope"
        : !strncmp(err->msg, "grant_type", 10) ? "unsupported_grant_type"
                                               : "invalid_request";
  }
  return http_send_json(c, st, json_pack("{s:s, s:s}", "error", e, "error_description", err->msg),
                        request_id);
}

enum MHD_Result http_serve_token(cl_http *h, struct MHD_Connection *c, const char *method, req *r) {
  cl_req_ctx rc;
  cl_req_ctx_init(&rc, M_AUTH_TOKEN, "http");
  http_peer_of(c, rc.peer, sizeof rc.peer);
  rc.auth = h->tls ? CL_AUTH_TLS : CL_AUTH_NONE;
  cl_err err, aerr;
  cl_err_clear(&err);
  const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
  cl_authn *a = cl_svc_authn(h->svc);
  if (strcmp(method, "POST") != 0 || r->too_big || !r->body || !ct ||
      strncmp(ct, "application/x-www-form-urlencoded", 33) != 0)
    cl_err_set(&err, CL_EINVAL,
               "POST /auth/token takes an application/x-www-form-urlencoded form: grant_type, "
               "client_assertion_type, client_assertion, scope");
  else if (a == NULL)
    cl_err_set(&err, CL_EINVAL, "authentication is not enabled on this server (clinlogd --auth)");
  if (err.code) {
    if (cl_svc_record(h->svc, &rc, err.code, err.msg, &aerr)) /* not admitted: no hooks */
      return http_unrecorded(c, &rc, &aerr);
    return token_error(c, &err, rc.request_id);
  }
  cl_http_params p = {.n = 0};
  cl_http_form_add(&p, r->body);
  Clinlog__V1__TokenRequest tr = CLINLOG__V1__TOKEN_REQUEST__INIT;
  for (size_t i = 0; i < p.n; i++) {
    const char *n = p.kv[i].name, *v = p.kv[i].value;
    if (!strcmp(n, "grant_type"))
      tr.grant_type = (char *)v;
    else if (!strcmp(n, "client_assertion_type"))
      tr.client_assertion_type = (char *)v;
    else if (!strcmp(n, "client_assertion"))
      tr.client_assertion = (char *)v;
    else if (!strcmp(n, "scope"))
      tr.scope = (char *)v;
    else if (!strcmp(n, "client_id"))
      tr.client_id = (char *)v;
  }
  char url[400];
  http_origin(h, c, url, sizeof url - 16);
  strcat(url, "/auth/token"); /* the audience an assertion must name */
  tr.token_url = url;
  cl_login l = {0};
  int code = cl_svc_admit(h->svc, &rc, &tr.base, &err);
  if (code == 0 &&
      (code = cl_authn_grant_check(tr.grant_type, tr.client_assertion_type, &err)) == 0)
    code = cl_authn_client_token(a, tr.client_id, tr.client_assertion, tr.scope, url, rc.peer, &l,
                                 &err);
  if (code == 0)
    snprintf(rc.audit_what, sizeof rc.audit_what, "client:%s", l.id.principal);
  enum MHD_Result ret;
  if (http_done(h, &rc, code, code ? err.msg : "", &aerr)) {
    ret = http_unrecorded(c, &rc, &aerr);
  } else if (code) {
    ret = token_error(c, &err, rc.request_id);
  } else {
    int64_t ttl = l.id.expires_at - (int64_t)time(NULL);
    ret = http_send_json(c, 200,
                         json_pack("{s:s, s:s, s:I, s:s}", "access_token", l.token, "token_type",
                                   "bearer", "expires_in", (json_int_t)(ttl > 0 ? ttl : 0), "scope",
                                   l.id.scope),
                         rc.request_id);
  }
  if (l.token) {
    sodium_memzero(l.token, strlen(l.token));
    free(l.token);
  }
  return ret;
}

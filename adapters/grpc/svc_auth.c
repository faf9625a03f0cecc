/* clinlog.v1.Auth: login, logout and who-am-i over the request layer's
 * authenticator (query/auth/authn.h). Login blocks its worker for the
 * password hash (argon2id) and the session's commit and fold. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapters/grpc/server_int.h"
#include "adapters/grpc/services.h"
#include "clinlog/v1/auth.pb-c.h"

/* The authenticator, or the call ends UNIMPLEMENTED-like (CL_EINVAL). */
static cl_authn *authn_of(srv_call *c) {
  cl_authn *a = cl_svc_authn(srv_svc(c));
  if (!a) {
    cl_err err;
    cl_err_set(&err, CL_EINVAL, "authentication is not enabled on this server (clinlogd --auth)");
    srv_finish_err(c, &err);
  }
  return a;
}

/* Splits comma-separated roles into r (pointers into buf). */
static size_t split_roles(char *buf, char **r, size_t cap) {
  size_t n = 0;
  for (char *save = NULL, *t = strtok_r(buf, ",", &save); t && n < cap;
       t = strtok_r(NULL, ",", &save))
    r[n++] = t;
  return n;
}

static void svc_login(srv_call *c, int ok) {
  (void)ok;
  const Clinlog__V1__LoginRequest *req = (const Clinlog__V1__LoginRequest *)c->req;
  cl_authn *a = authn_of(c);
  if (!a)
    return;
  cl_err err;
  cl_err_clear(&err);
  cl_login l;
  if (cl_authn_login(a, req->principal_id, req->password, req->totp_code, req->scope, c->rctx.peer,
                     &l, &err) != 0) {
    srv_finish_err(c, &err);
    return;
  }
  Clinlog__V1__LoginResponse resp = CLINLOG__V1__LOGIN_RESPONSE__INIT;
  Google__Protobuf__Timestamp exp = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  char roles[CL_ROLES_MAX], *rv[32];
  snprintf(roles, sizeof roles, "%s", l.id.roles);
  exp.seconds = l.id.expires_at;
  resp.token = l.token;
  resp.token_id = l.id.token_id;
  resp.expires_at = &exp;
  resp.n_roles = split_roles(roles, rv, 32);
  resp.roles = rv;
  resp.session_seq = l.seq;
  resp.scope = l.id.scope;
  srv_finish(c, GRPC_STATUS_OK, "", &resp.base);
  sodium_memzero(l.token, strlen(l.token));
  free(l.token);
}

/* The token endpoint of SMART Backend Services (POST /auth/token on the
 * FHIR REST face): checks the grant, then the client's assertion. */
static void svc_token(srv_call *c, int ok) {
  (void)ok;
  const Clinlog__V1__TokenRequest *req = (const Clinlog__V1__TokenRequest *)c->req;
  cl_authn *a = authn_of(c);
  if (!a)
    return;
  cl_err err;
  cl_err_clear(&err);
  cl_login l;
  if (cl_authn_grant_check(req->grant_type, req->client_assertion_type, &err) != 0 ||
      cl_authn_client_token(a, req->client_id, req->client_assertion, req->scope, req->token_url,
                            c->rctx.peer, &l, &err) != 0) {
    srv_finish_err(c, &err);
    return;
  }
  Clinlog__V1__TokenResponse resp = CLINLOG__V1__TOKEN_RESPONSE__INIT;
  resp.access_token = l.token;
  resp.token_type = "bearer";
  resp.expires_in = l.id.expires_at - (int64_t)time(NULL);
  resp.scope = l.id.scope;
  resp.token_id = l.id.token_id;
  resp.session_seq = l.seq;
  snprintf(c->rctx.audit_what, sizeof c->rctx.audit_what, "client:%s", l.id.principal);
  srv_finish(c, GRPC_STATUS_OK, "", &resp.base);
  sodium_memzero(l.token, strlen(l.token));
  free(l.token);
}

/* The caller's session identity, from the request context. */
static void identity_of(const cl_req_ctx *rc, cl_identity *id) {
  memset(id, 0, sizeof *id);
  snprintf(id->principal, sizeof id->principal, "%s", rc->principal);
  snprintf(id->roles, sizeof id->roles, "%s", rc->roles);
  memcpy(id->token_id, rc->token_id, sizeof id->token_id);
  id->expires_at = rc->token_expires;
}

/* The authenticator and the caller's session for a call that needs one
 * (`what` names it in the error), or NULL after finishing the call. */
static cl_authn *session_of(srv_call *c, const char *what, cl_identity *id) {
  cl_authn *a = authn_of(c);
  if (!a)
    return NULL;
  if (c->rctx.auth != CL_AUTH_TOKEN) {
    cl_err err;
    cl_err_set(&err, CL_EUNAUTH, "%s: send the session's token (authorization: Bearer)", what);
    srv_finish_err(c, &err);
    return NULL;
  }
  identity_of(&c->rctx, id);
  return a;
}

static void svc_logout(srv_call *c, int ok) {
  (void)ok;
  cl_identity id;
  cl_authn *a = session_of(c, "logout", &id);
  if (!a)
    return;
  cl_err err;
  cl_err_clear(&err);
  Clinlog__V1__LogoutResponse resp = CLINLOG__V1__LOGOUT_RESPONSE__INIT;
  if (cl_authn_logout(a, &id, &resp.seq, &err) != 0) {
    srv_finish_err(c, &err);
    return;
  }
  srv_finish(c, GRPC_STATUS_OK, "", &resp.base);
}

static void svc_whoami(srv_call *c, int ok) {
  (void)ok;
  Clinlog__V1__WhoamiResponse resp = CLINLOG__V1__WHOAMI_RESPONSE__INIT;
  Google__Protobuf__Timestamp exp = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  char roles[CL_ROLES_MAX], *rv[32];
  snprintf(roles, sizeof roles, "%s", c->rctx.roles);
  resp.principal_id = c->rctx.principal;
  resp.n_roles = split_roles(roles, rv, 32);
  resp.roles = rv;
  resp.auth = (char *)cl_auth_name(c->rctx.auth);
  resp.token_id = c->rctx.token_id;
  resp.scope = c->rctx.scope;
  if (c->rctx.token_expires) {
    exp.seconds = c->rctx.token_expires;
    resp.expires_at = &exp;
  }
  srv_finish(c, GRPC_STATUS_OK, "", &resp.base);
}

static void svc_break_glass(srv_call *c, int ok) {
  (void)ok;
  const Clinlog__V1__BreakGlassRequest *req = (const Clinlog__V1__BreakGlassRequest *)c->req;
  cl_identity id;
  cl_authn *a = session_of(c, "break-glass", &id);
  if (!a)
    return;
  cl_err err;
  cl_err_clear(&err);
  Clinlog__V1__BreakGlassResponse resp = CLINLOG__V1__BREAK_GLASS_RESPONSE__INIT;
  Google__Protobuf__Timestamp exp = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  if (cl_authn_break_glass(a, &id, req->patient_id, req->reason, req->seconds, &exp.seconds,
                           &resp.seq, &err) != 0) {
    srv_finish_err(c, &err);
    return;
  }
  resp.expires_at = &exp;
  srv_finish(c, GRPC_STATUS_OK, "", &resp.base);
}

static const cl_grpc_method_def AUTH_METHODS[] = {
    {M_AUTH_LOGIN, &clinlog__v1__login_request__descriptor, svc_login},
    {M_AUTH_LOGOUT, &clinlog__v1__logout_request__descriptor, svc_logout},
    {M_AUTH_WHOAMI, &clinlog__v1__whoami_request__descriptor, svc_whoami},
    {M_AUTH_BREAK_GLASS, &clinlog__v1__break_glass_request__descriptor, svc_break_glass},
    {M_AUTH_TOKEN, &clinlog__v1__token_request__descriptor, svc_token},
};

const cl_grpc_service cl_grpc_auth_service = {
    "clinlog.v1.Auth", AUTH_METHODS, sizeof AUTH_METHODS / sizeof AUTH_METHODS[0], NULL, NULL};

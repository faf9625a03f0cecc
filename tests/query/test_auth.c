/* Authentication (query/auth/principals, authn) through the request layer,
 * in process: a real log, the auth projection's runner, the service. People
 * log in with an argon2id password and an RFC 6238 code and get a session
 * token; tokens are refused once tampered with, ended, idle or disabled; a
 * code is used once; repeated failures lock the principal out; client
 * certificates bound in the log authenticate; with authentication
 * required, calls without credentials are refused before any hook. The
 * store refuses authentication events from the wrong signer or stream. */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/service/service.h"
#include "clinlog/v1/auth.pb-c.h"
#include "query/auth/cred.h"
#include "query/auth/principals.h"
#include "tests/support/testutil.h"

static const uint8_t SECRET[20] = "12345678901234567890"; /* RFC 6238's SHA-1 seed */

/* the clock the authenticator reads: tests move it */
static _Atomic int64_t NOW = 1793000000;
static int64_t test_now(void) { return atomic_load(&NOW); }

typedef struct fx {
  char *dir;
  cl_signer admin;
  cl_log *log;
  cl_svc *svc;
  int hooks_ran;
} fx;

static int count_authorize(void *ctx, const cl_req_ctx *rc, const ProtobufCMessage *req,
                           cl_err *err) {
  (void)rc, (void)req, (void)err;
  ((fx *)ctx)->hooks_ran++;
  return 0;
}

/* Appends one admin-signed system event; returns the rc. */
static int append_admin(fx *f, Clinlog__V1__Event *ev, const char *stream, cl_err *err) {
  Clinlog__V1__RecordedBy by = CLINLOG__V1__RECORDED_BY__INIT;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  uint8_t id[16];
  randombytes_buf(id, 16);
  by.principal_id = "admin";
  by.role = "admin";
  ts.seconds = 1793000000;
  ev->event_id = (ProtobufCBinaryData){16, id};
  ev->stream = (char *)stream;
  ev->occurred_at = &ts;
  ev->recorded_by = &by;
  size_t len;
  uint8_t *b = cl_test_pack_event(ev, &len);
  cl_append_result r;
  int rc = cl_test_append(f->log, &f->admin, &b, &len, 1, 1, NULL, 0, 0, &r, err);
  if (rc == 0)
    cl_append_result_free(&r);
  free(b);
  return rc;
}

static void register_person(fx *f, const char *pid, const char *role, const char *password) {
  char stream[160];
  snprintf(stream, sizeof stream, "$principal-%s", pid);
  cl_signer k;
  cl_err err;
  cr_assert_eq(cl_signer_generate(&k, &err), 0);
  size_t len;
  uint8_t *b = cl_test_principal_event(pid, role, &k, &len);
  cl_append_result r;
  cr_assert_eq(cl_test_append(f->log, &f->admin, &b, &len, 1, 1, NULL, 0, 0, &r, &err), 0, "%s",
               err.msg);
  cl_append_result_free(&r);
  free(b);
  cl_signer_free(&k);

  char hash[CL_PW_HASH_MAX];
  cr_assert_eq(cl_pw_hash(password, strlen(password), 1, 8192, hash, &err), 0);
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  Clinlog__V1__CredentialEnrolled ce = CLINLOG__V1__CREDENTIAL_ENROLLED__INIT;
  Clinlog__V1__TotpEnrollment te = CLINLOG__V1__TOTP_ENROLLMENT__INIT;
  te.algorithm = "SHA1";
  te.secret = (ProtobufCBinaryData){sizeof SECRET, (uint8_t *)SECRET};
  te.digits = 6;
  ce.principal_id = (char *)pid;
  ce.password_hash = hash;
  ce.totp = &te;
  ev.body_case = CLINLOG__V1__EVENT__BODY_CREDENTIAL_ENROLLED;
  ev.credential_enrolled = &ce;
  cr_assert_eq(append_admin(f, &ev, stream, &err), 0, "%s", err.msg);
}

static void code_at(int64_t t, char out[9]) {
  cl_totp tt = {CL_TOTP_SHA1, SECRET, sizeof SECRET, 6, 30};
  cl_totp_code(&tt, t, out);
}

/* Waits until the auth projection has folded the whole log. */
static void folded(fx *f) {
  cl_err err;
  cr_assert_eq(
      cl_runner_wait(cl_svc_runner(f->svc, "auth"), cl_feed_size(cl_log_feed(f->log)), 0, &err), 0,
      "%s", err.msg);
}

static void setup(fx *f, int require, int idle_s) {
  memset(f, 0, sizeof *f);
  atomic_store(&NOW, 1793000000);
  f->log = cl_test_log_new("auth", &f->dir, &f->admin, 0);
  cl_svc_options so = {.log = f->log};
  so.hooks.authorize = count_authorize;
  so.hooks.ctx = f;
  cl_err err;
  cr_assert_eq(cl_svc_new(&so, &f->svc, &err), 0);
  cl_runner_options ro;
  cl_runner_options_init(&ro);
  ro.linger_ms = 0;
  cr_assert_eq(cl_svc_add_projection(f->svc, &cl_auth_projection, &ro, &err), 0, "%s", err.msg);
  cl_authn_options ao;
  cl_authn_options_init(&ao);
  ao.now = test_now;
  ao.idle_s = idle_s;
  ao.max_failures = 3;
  ao.lockout_s = 60;
  cr_assert_eq(cl_svc_enable_auth(f->svc, &ao, require, &err), 0, "%s", err.msg);
  register_person(f, "nurse1", "nurse", "correct horse battery staple");
  folded(f);
}

static void teardown(fx *f) {
  cl_svc_free(f->svc);
  cl_log_close(f->log);
  cl_signer_free(&f->admin);
  cl_test_rmtree(f->dir);
  free(f->dir);
}

static int login(fx *f, const char *pid, const char *pw, int64_t code_time, cl_login *l,
                 cl_err *err) {
  char code[9];
  code_at(code_time, code);
  return cl_authn_login(cl_svc_authn(f->svc), pid, pw, code, NULL, "ipv4:127.0.0.1:5555", l, err);
}

/* Admits a call of method m with token (NULL: none); rc gets the context. */
static int admit(fx *f, int m, const char *token, cl_req_ctx *rc, cl_err *err) {
  cl_req_ctx_init(rc, m, "test");
  if (token)
    snprintf(rc->bearer, sizeof rc->bearer, "%s", token);
  cl_err_clear(err);
  return cl_svc_admit(f->svc, rc, NULL, err);
}

/* Admits a read over mutual TLS with a client certificate of fingerprint fp. */
static int admit_cert(fx *f, const char *fp, cl_req_ctx *rc, cl_err *err) {
  cl_req_ctx_init(rc, M_READ, "test");
  rc->auth = CL_AUTH_MTLS;
  snprintf(rc->cert_fingerprint, sizeof rc->cert_fingerprint, "%s", fp);
  cl_err_clear(err);
  return cl_svc_admit(f->svc, rc, NULL, err);
}

Test(auth, login_gives_a_token_every_call_is_checked_with) {
  fx f;
  setup(&f, 1, 900);
  cl_login l;
  cl_err err;
  cr_assert_eq(login(&f, "nurse1", "correct horse battery staple", NOW, &l, &err), 0, "%s",
               err.msg);
  cr_assert_str_eq(l.id.principal, "nurse1");
  cr_assert_str_eq(l.id.roles, "nurse");
  cr_assert_eq(l.id.expires_at, NOW + 900);
  cr_assert(l.seq > 0);

  /* the session is an event of the log, in the principal's stream */
  Clinlog__V1__PrincipalState *st;
  cr_assert_eq(cl_auth_principal(cl_runner_proj(cl_svc_runner(f.svc, "auth")), "nurse1", &st, &err),
               0);
  cr_assert_str_eq(st->totp_last_token, l.id.token_id);
  cr_assert_eq(st->totp_last_step, (uint64_t)NOW / 30);
  clinlog__v1__principal_state__free_unpacked(st, NULL);

  cl_req_ctx rc;
  cr_assert_eq(admit(&f, M_READ, l.token, &rc, &err), 0, "%s", err.msg);
  cr_assert_str_eq(rc.principal, "nurse1");
  cr_assert_str_eq(rc.roles, "nurse");
  cr_assert_eq(rc.auth, CL_AUTH_TOKEN);
  cr_assert_str_eq(rc.token_id, l.id.token_id);
  cr_assert_eq(f.hooks_ran, 1);

  /* required: nothing, a tampered token, a token of another log key */
  cr_assert_eq(admit(&f, M_READ, NULL, &rc, &err), CL_EUNAUTH);
  cr_assert(strstr(err.msg, "authentication required"), "%s", err.msg);
  char *bad = strdup(l.token);
  char *flip = bad + strlen(bad) - 10; /* inside the signature: every bit of a char counts */
  *flip = *flip == 'A' ? 'B' : 'A';
  cr_assert_eq(admit(&f, M_READ, bad, &rc, &err), CL_EUNAUTH);
  cr_assert(strstr(err.msg, "signature"), "%s", err.msg);
  free(bad);
  cl_signer other;
  cr_assert_eq(cl_signer_generate(&other, &err), 0);
  json_t *claims = json_pack("{s:s, s:s}", "sub", "nurse1", "roles", "admin");
  char *forged, jti[33];
  cr_assert_eq(cl_token_issue(&other, "x", "x", claims, NOW, 600, &forged, jti, &err), 0);
  cr_assert_eq(admit(&f, M_READ, forged, &rc, &err), CL_EUNAUTH);
  free(forged);
  json_decref(claims);
  cl_signer_free(&other);
  cr_assert_eq(f.hooks_ran, 1, "refused calls reach no hook");

  /* health and login need no credentials */
  cr_assert_eq(admit(&f, M_HEALTH_CHECK, NULL, &rc, &err), 0);
  cr_assert_eq(admit(&f, M_AUTH_LOGIN, NULL, &rc, &err), 0);
  cr_assert_str_eq(rc.principal, "");

  /* expiry */
  atomic_fetch_add(&NOW, 901);
  cr_assert_eq(admit(&f, M_READ, l.token, &rc, &err), CL_EUNAUTH);
  cr_assert(strstr(err.msg, "expired"), "%s", err.msg);
  free(l.token);
  teardown(&f);
}

Test(auth, a_code_is_used_once_and_failures_lock_out) {
  fx f;
  setup(&f, 0, 900);
  cl_login l, l2;
  cl_err err;
  const char *pw = "correct horse battery staple";
  cr_assert_eq(login(&f, "nurse1", pw, NOW, &l, &err), 0, "%s", err.msg);
  /* the same code again, and an older one: refused, with the one message */
  cr_assert_eq(login(&f, "nurse1", pw, NOW, &l2, &err), CL_EUNAUTH);
  cr_assert(strstr(err.msg, "login failed"), "%s", err.msg);
  cr_assert_eq(login(&f, "nurse1", pw, NOW - 30, &l2, &err), CL_EUNAUTH);
  /* the next step's code is fine (after a failure count reset by success) */
  atomic_fetch_add(&NOW, 30);
  cr_assert_eq(login(&f, "nurse1", pw, NOW, &l2, &err), 0, "%s", err.msg);
  free(l2.token);

  /* wrong password, unknown principal, wrong code: the same answer */
  char m1[CL_ERR_MSG_SIZE], m2[CL_ERR_MSG_SIZE];
  atomic_fetch_add(&NOW, 30);
  cr_assert_eq(login(&f, "nurse1", "wrong", NOW, &l2, &err), CL_EUNAUTH);
  snprintf(m1, sizeof m1, "%s", err.msg);
  cr_assert_eq(login(&f, "nobody", pw, NOW, &l2, &err), CL_EUNAUTH);
  snprintf(m2, sizeof m2, "%s", err.msg);
  cr_assert_str_eq(m1, m2);
  cr_assert_eq(login(&f, "nurse1", pw, NOW + 300, &l2, &err), CL_EUNAUTH); /* a far code */
  cr_assert_eq(login(&f, "nurse1", "wrong again", NOW, &l2, &err), CL_EUNAUTH);
  /* three failures in a row: locked out, even with the right credentials */
  cr_assert_eq(login(&f, "nurse1", pw, NOW, &l2, &err), CL_ELIMITED);
  cr_assert(strstr(err.msg, "try again in 60 s"), "%s", err.msg);
  atomic_fetch_add(&NOW, 61);
  cr_assert_eq(login(&f, "nurse1", pw, NOW, &l2, &err), 0, "%s", err.msg);
  free(l2.token);
  free(l.token);
  teardown(&f);
}

Test(auth, logout_idle_and_disabled_end_a_token) {
  fx f;
  setup(&f, 0, 120);
  cl_login l;
  cl_err err;
  cl_req_ctx rc;
  const char *pw = "correct horse battery staple";
  cr_assert_eq(login(&f, "nurse1", pw, NOW, &l, &err), 0, "%s", err.msg);
  cr_assert_eq(admit(&f, M_READ, l.token, &rc, &err), 0, "%s", err.msg);
  /* idle logoff: 100 s is fine, then 121 s without a call is not */
  atomic_fetch_add(&NOW, 100);
  cr_assert_eq(admit(&f, M_READ, l.token, &rc, &err), 0, "%s", err.msg);
  atomic_fetch_add(&NOW, 121);
  cr_assert_eq(admit(&f, M_READ, l.token, &rc, &err), CL_EUNAUTH);
  cr_assert(strstr(err.msg, "idle"), "%s", err.msg);
  free(l.token);

  /* logout: the token is refused from then on (it is in the log) */
  atomic_fetch_add(&NOW, 30);
  cr_assert_eq(login(&f, "nurse1", pw, NOW, &l, &err), 0, "%s", err.msg);
  cr_assert_eq(admit(&f, M_AUTH_LOGOUT, l.token, &rc, &err), 0);
  cl_identity id = {0};
  snprintf(id.principal, sizeof id.principal, "%s", rc.principal);
  memcpy(id.token_id, rc.token_id, 33);
  id.expires_at = rc.token_expires;
  uint64_t seq;
  cr_assert_eq(cl_authn_logout(cl_svc_authn(f.svc), &id, &seq, &err), 0, "%s", err.msg);
  cr_assert_eq(admit(&f, M_READ, l.token, &rc, &err), CL_EUNAUTH);
  cr_assert(strstr(err.msg, "ended"), "%s", err.msg);
  free(l.token);

  /* a principal whose roles are taken away: its token stops working */
  atomic_fetch_add(&NOW, 30);
  cr_assert_eq(login(&f, "nurse1", pw, NOW, &l, &err), 0, "%s", err.msg);
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  Clinlog__V1__RolesChanged ch = CLINLOG__V1__ROLES_CHANGED__INIT;
  ch.principal_id = "nurse1";
  ev.body_case = CLINLOG__V1__EVENT__BODY_ROLES_CHANGED;
  ev.roles_changed = &ch;
  cr_assert_eq(append_admin(&f, &ev, "$principal-nurse1", &err), 0, "%s", err.msg);
  folded(&f);
  cr_assert_eq(admit(&f, M_READ, l.token, &rc, &err), CL_EUNAUTH);
  cr_assert(strstr(err.msg, "disabled"), "%s", err.msg);
  free(l.token);
  atomic_fetch_add(&NOW, 30);
  cr_assert_eq(login(&f, "nurse1", pw, NOW, &l, &err), CL_EUNAUTH);
  teardown(&f);
}

Test(auth, bound_certificates_authenticate_until_revoked) {
  fx f;
  setup(&f, 1, 900);
  cl_err err;
  cl_req_ctx rc;
  const char *fp = "3f5a0c1e2d4b6a798877665544332211ffeeddccbbaa99887766554433221100";
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  Clinlog__V1__CertificateBound cb = CLINLOG__V1__CERTIFICATE_BOUND__INIT;
  cb.principal_id = "nurse1";
  cb.sha256 = (char *)fp;
  ev.body_case = CLINLOG__V1__EVENT__BODY_CERTIFICATE_BOUND;
  ev.certificate_bound = &cb;
  cr_assert_eq(append_admin(&f, &ev, "$principal-nurse1", &err), 0, "%s", err.msg);
  folded(&f);

  cr_assert_eq(admit_cert(&f, fp, &rc, &err), 0, "%s", err.msg);
  cr_assert_str_eq(rc.principal, "nurse1");
  cr_assert_str_eq(rc.roles, "nurse");

  /* another certificate, however valid its chain, proves nothing */
  char other[65];
  snprintf(other, sizeof other, "%064d", 7);
  cr_assert_eq(admit_cert(&f, other, &rc, &err), CL_EUNAUTH);

  Clinlog__V1__CertificateRevoked cr = CLINLOG__V1__CERTIFICATE_REVOKED__INIT;
  cr.principal_id = "nurse1";
  cr.sha256 = (char *)fp;
  ev.body_case = CLINLOG__V1__EVENT__BODY_CERTIFICATE_REVOKED;
  ev.certificate_revoked = &cr;
  cr_assert_eq(append_admin(&f, &ev, "$principal-nurse1", &err), 0, "%s", err.msg);
  folded(&f);
  cr_assert_eq(admit_cert(&f, fp, &rc, &err), CL_EUNAUTH);
  teardown(&f);
}

Test(auth, the_store_checks_who_writes_authentication_events) {
  fx f;
  setup(&f, 0, 900);
  cl_err err;
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  Clinlog__V1__RolesChanged ch = CLINLOG__V1__ROLES_CHANGED__INIT;
  char *roles[] = {"admin"};
  ch.principal_id = "nurse1";
  ch.roles = roles;
  ch.n_roles = 1;
  ev.body_case = CLINLOG__V1__EVENT__BODY_ROLES_CHANGED;
  ev.roles_changed = &ch;
  /* another principal's stream */
  cr_assert_eq(append_admin(&f, &ev, "$principal-admin", &err), CL_EMALFORMED);
  cr_assert(strstr(err.msg, "belongs in $principal-nurse1"), "%s", err.msg);

  /* a non-admin may not grant itself roles, nor start sessions */
  cl_signer k;
  cr_assert_eq(cl_signer_generate(&k, &err), 0);
  size_t len;
  uint8_t *b = cl_test_principal_event("clerk", "registrar", &k, &len);
  cl_append_result r;
  cr_assert_eq(cl_test_append(f.log, &f.admin, &b, &len, 1, 1, NULL, 0, 0, &r, &err), 0);
  cl_append_result_free(&r);
  free(b);
  Clinlog__V1__RecordedBy by = CLINLOG__V1__RECORDED_BY__INIT;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  uint8_t id[16];
  randombytes_buf(id, 16);
  by.principal_id = "clerk";
  ev.event_id = (ProtobufCBinaryData){16, id};
  ev.stream = "$principal-nurse1";
  ev.occurred_at = &ts;
  ev.recorded_by = &by;
  b = cl_test_pack_event(&ev, &len);
  cr_assert_eq(cl_test_append(f.log, &k, &b, &len, 1, 1, NULL, 0, 0, &r, &err), CL_EDENIED);
  cr_assert(strstr(err.msg, "needs the admin role"), "%s", err.msg);
  free(b);
  Clinlog__V1__SessionStarted ss = CLINLOG__V1__SESSION_STARTED__INIT;
  ss.principal_id = "nurse1";
  ss.token_id = "0123456789abcdef0123456789abcdef";
  ev.body_case = CLINLOG__V1__EVENT__BODY_SESSION_STARTED;
  ev.session_started = &ss;
  b = cl_test_pack_event(&ev, &len);
  cr_assert_eq(cl_test_append(f.log, &k, &b, &len, 1, 1, NULL, 0, 0, &r, &err), CL_EDENIED);
  cr_assert(strstr(err.msg, "written by a node"), "%s", err.msg);
  free(b);
  cl_signer_free(&k);
  teardown(&f);
}

Test(auth, rebuilt_equals_live_and_nothing_is_on_disk_in_plaintext) {
  fx f;
  setup(&f, 0, 900);
  cl_login l;
  cl_err err;
  cr_assert_eq(login(&f, "nurse1", "correct horse battery staple", NOW, &l, &err), 0, "%s",
               err.msg);
  cl_runner *r = cl_svc_runner(f.svc, "auth");
  uint64_t head = cl_feed_size(cl_log_feed(f.log));
  cr_assert_eq(cl_runner_wait(r, head, 0, &err), 0);
  uint8_t live[32], rebuilt[32];
  uint64_t n = cl_test_proj_digest(cl_runner_proj(r), live);
  cr_assert(n >= 3, "principal entries, position, version");
  cr_assert_eq(cl_runner_rebuild(r, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_runner_wait(r, head, 0, &err), 0);
  cr_assert_eq(cl_test_proj_digest(cl_runner_proj(r), rebuilt), n);
  cr_assert_eq(memcmp(live, rebuilt, 32), 0, "rebuilt differs from live");

  /* the token still checks out against the rebuilt state */
  cl_req_ctx rc;
  cr_assert_eq(admit(&f, M_READ, l.token, &rc, &err), 0, "%s", err.msg);

  /* secrets: nowhere in plaintext (log and projections). Principal ids are
   * not secret: the store's keyring keeps them with their keys (verify needs
   * them); the auth projection's keys are keyed hashes. */
  cl_svc_free(f.svc);
  f.svc = NULL;
  cl_log_close(f.log);
  f.log = NULL;
  cr_assert(!cl_test_tree_contains(f.dir, SECRET, sizeof SECRET), "the TOTP secret on disk");
  cr_assert(!cl_test_tree_contains(f.dir, "$argon2id", 9), "a password hash on disk");
  cr_assert(!cl_test_tree_contains(f.dir, l.id.token_id, 32), "a token id on disk");
  free(l.token);
  cl_signer_free(&f.admin);
  cl_test_rmtree(f.dir);
  free(f.dir);
}

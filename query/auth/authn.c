/* Authentication (authn.h): logins, session tokens, client certificates.
 *
 * a->mu guards the two per-node maps: failed logins per principal (for the
 * lockout) and the last call seen per session (for idle logoff). Nothing
 * else here is shared: the projection and the log are thread-safe. */
#include "query/auth/authn.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clinlog/v1/event.pb-c.h"
#include "query/auth/cred.h"
#include "query/auth/jwt.h"
#include "query/auth/principals.h"
#include "store/alloc.h"
#include "store/event.h"
#include "store/hmap.h"
#include "store/logkey.h"

typedef struct failures {
  int count;
  int64_t locked_until;
} failures;

struct cl_authn {
  cl_authn_options o;
  pthread_mutex_t mu;
  cl_hmap *fails;                  /* hash(principal)[32] -> failures */
  cl_hmap *seen;                   /* hash(token id)[32] -> int64_t last call (unix s) */
  char dummy_hash[CL_PW_HASH_MAX]; /* checked for unknown principals: the same work */
};

static int64_t now_default(void) { return (int64_t)time(NULL); }

void cl_authn_options_init(cl_authn_options *o) {
  memset(o, 0, sizeof *o);
  o->token_ttl_s = CL_TOKEN_MAX_TTL;
  o->idle_s = 900;
  o->totp_window = 1;
  o->max_failures = 5;
  o->lockout_s = 300;
  o->now = now_default;
}

int cl_authn_new(const cl_authn_options *o, cl_authn **out, cl_err *err) {
  if (!o->log || !o->proj || !o->append || !o->wait)
    return cl_err_set(err, CL_EINVAL, "authn: log, projection, writer and wait are required");
  const cl_signer *s = cl_log_signer(o->log);
  if (!s)
    return cl_err_set(err, CL_EINVAL, "authn: this node has no log key to sign sessions with");
  cl_authn *a = cl_calloc(1, sizeof *a);
  if (!a)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  a->o = *o;
  if (a->o.token_ttl_s <= 0 || a->o.token_ttl_s > CL_TOKEN_MAX_TTL)
    a->o.token_ttl_s = CL_TOKEN_MAX_TTL;
  if (!a->o.now)
    a->o.now = now_default;
  pthread_mutex_init(&a->mu, NULL);
  a->fails = cl_hmap_new(32, sizeof(failures));
  a->seen = cl_hmap_new(32, sizeof(int64_t));
  if (!a->fails || !a->seen) {
    cl_authn_free(a);
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  }
  *out = a;
  return 0;
}

void cl_authn_free(cl_authn *a) {
  if (!a)
    return;
  cl_hmap_free(a->fails);
  cl_hmap_free(a->seen);
  pthread_mutex_destroy(&a->mu);
  cl_free(a);
}

static void hash_id(const char *s, uint8_t out[32]) {
  crypto_generichash(out, 32, (const uint8_t *)s, strlen(s), NULL, 0);
}

/* ------------------------------------------------------------ lockout */

/* 0, or CL_ELIMITED while principal is locked out. */
static int check_locked(cl_authn *a, const char *principal, int64_t now, cl_err *err) {
  uint8_t k[32];
  hash_id(principal, k);
  pthread_mutex_lock(&a->mu);
  const failures *f = cl_hmap_get(a->fails, k);
  int64_t until = f ? f->locked_until : 0;
  pthread_mutex_unlock(&a->mu);
  if (until > now)
    return cl_err_set(err, CL_ELIMITED, "too many failed logins: try again in %lld s",
                      (long long)(until - now));
  return 0;
}

static void note_outcome(cl_authn *a, const char *principal, int ok, int64_t now) {
  uint8_t k[32];
  hash_id(principal, k);
  pthread_mutex_lock(&a->mu);
  if (ok) {
    cl_hmap_del(a->fails, k);
  } else {
    failures *f = cl_hmap_get(a->fails, k), z = {0, 0};
    if (!f)
      f = cl_hmap_put(a->fails, k, &z);
    if (f && f->locked_until && f->locked_until <= now)
      *f = z; /* a lockout served: count afresh */
    if (f && ++f->count >= a->o.max_failures)
      f->locked_until = now + a->o.lockout_s;
  }
  pthread_mutex_unlock(&a->mu);
}

/* ------------------------------------------------------- session events */

/* A SessionStarted or SessionEnded of principal in its stream, signed by
 * the log key, appended; *seq its sequence number. */
static int append_session(cl_authn *a, Clinlog__V1__Event *ev, const char *principal, uint64_t *seq,
                          cl_err *err) {
  char stream[CL_PRINCIPAL_MAX + 16];
  snprintf(stream, sizeof stream, "$principal-%s", principal);
  cl_node_batch nb;
  int rc = cl_log_node_batch(a->o.log, ev, stream, &nb, err);
  if (rc)
    return rc;
  rc = a->o.append(a->o.ctx, &nb.b, seq, err);
  if (rc == 0)
    rc = a->o.wait(a->o.ctx, *seq, err);
  cl_node_batch_free(&nb);
  return rc;
}

/* --------------------------------------------------------------- login */

static int totp_of(const Clinlog__V1__PrincipalState *st, cl_totp *t) {
  if (!strcmp(st->totp_algorithm, "SHA1"))
    t->alg = CL_TOTP_SHA1;
  else if (!strcmp(st->totp_algorithm, "SHA256"))
    t->alg = CL_TOTP_SHA256;
  else if (!strcmp(st->totp_algorithm, "SHA512"))
    t->alg = CL_TOTP_SHA512;
  else
    return -1;
  t->secret = st->totp_secret.data;
  t->len = st->totp_secret.len;
  t->digits = st->totp_digits ? st->totp_digits : 6;
  t->period = st->totp_period;
  return 0;
}

static int join_roles(char **roles, size_t n, char out[CL_ROLES_MAX]) {
  cl_err e;
  if (n == 0)
    return -1;
  return cl_roles_join(roles, n, out, CL_ROLES_MAX, &e) ? -1 : 0;
}

/* The credentials of st against password and code at now: 0 with *step the
 * matched TOTP step, or -1. */
static int check_credentials(cl_authn *a, const Clinlog__V1__PrincipalState *st,
                             const char *password, const char *code, int64_t now, uint64_t *step) {
  cl_err e;
  cl_totp t;
  int pw_ok =
      st->password_hash[0] && cl_pw_verify(st->password_hash, password, strlen(password), &e) == 0;
  if (!pw_ok || totp_of(st, &t) != 0)
    return -1;
  uint64_t last = st->totp_last_step;
  if (cl_totp_verify(&t, now, code, a->o.totp_window, &last, &e) != 0)
    return -1;
  *step = last;
  return 0;
}

/* Issues the token of a session and commits its SessionStarted (jti
 * `assertion_jti` or TOTP `step`); fills l. */
static int start_session(cl_authn *a, const char *principal, const char *roles, const char *scope,
                         uint64_t step, const char *assertion_jti, int64_t ttl, const char *peer,
                         int64_t now, cl_login *l, cl_err *err) {
  json_t *claims = json_pack("{s:s, s:s}", "sub", principal, "roles", roles);
  char jti[33];
  if (!claims || (scope[0] && json_object_set_new(claims, "scope", json_string(scope)) != 0)) {
    json_decref(claims);
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  }
  /* the log key as it is now (a log key rotation may switch it; tokens
   * signed by a retired key no longer verify) */
  cl_signer s;
  int rc = cl_log_signer_copy(a->o.log, &s, err);
  if (rc) {
    json_decref(claims);
    return rc;
  }
  char kid[17];
  cl_hex(s.pk, 8, kid);
  rc = cl_token_issue(&s, kid, cl_log_origin(a->o.log), claims, now, ttl, &l->token, jti, err);
  cl_signer_free(&s);
  json_decref(claims);
  if (rc)
    return rc;
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  Clinlog__V1__SessionStarted ss = CLINLOG__V1__SESSION_STARTED__INIT;
  Google__Protobuf__Timestamp exp = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  exp.seconds = now + ttl;
  ss.principal_id = (char *)principal;
  ss.token_id = jti;
  ss.expires_at = &exp;
  ss.totp_step = step;
  ss.client_address = (char *)(peer ? peer : "");
  ss.node_id = a->o.node_id;
  ss.scope = (char *)scope;
  ss.assertion_jti = (char *)(assertion_jti ? assertion_jti : "");
  ev.body_case = CLINLOG__V1__EVENT__BODY_SESSION_STARTED;
  ev.session_started = &ss;
  if ((rc = append_session(a, &ev, principal, &l->seq, err)) != 0) {
    free(l->token);
    l->token = NULL;
    return rc;
  }
  snprintf(l->id.principal, sizeof l->id.principal, "%s", principal);
  snprintf(l->id.roles, sizeof l->id.roles, "%s", roles);
  snprintf(l->id.scope, sizeof l->id.scope, "%s", scope);
  memcpy(l->id.token_id, jti, sizeof jti);
  l->id.expires_at = exp.seconds;
  return 0;
}

static void drop_token(cl_login *l) {
  if (l->token) {
    sodium_memzero(l->token, strlen(l->token));
    free(l->token);
  }
  l->token = NULL;
}

int cl_authn_login(cl_authn *a, const char *principal, const char *password, const char *code,
                   const char *scope, const char *peer, cl_login *l, cl_err *err) {
  static const char failed[] = "login failed: unknown principal, wrong password or wrong code";
  memset(l, 0, sizeof *l);
  cl_scopes sc;
  char granted[CL_SCOPE_TEXT_MAX];
  int rc = cl_scopes_parse(scope, CL_SCOPE_USER | CL_SCOPE_PATIENT, &sc, granted, err);
  if (rc)
    return rc;
  int64_t now = a->o.now();
  if ((rc = check_locked(a, principal, now, err)) != 0)
    return rc;
  Clinlog__V1__PrincipalState *st = NULL;
  cl_err e;
  rc = cl_auth_principal(a->o.proj, principal, &st, &e);
  if (rc && rc != CL_ENOTFOUND)
    return cl_err_set(err, rc, "login: %s", e.msg);
  uint64_t step = 0;
  char roles[CL_ROLES_MAX];
  if (!st) {
    /* the same argon2id work as for a known principal: timing tells nothing */
    pthread_mutex_lock(&a->mu);
    if (!a->dummy_hash[0])
      cl_pw_hash("x", 1, 0, 0, a->dummy_hash, &e);
    pthread_mutex_unlock(&a->mu);
    cl_pw_verify(a->dummy_hash, password, strlen(password), &e);
    rc = -1;
  } else {
    rc = check_credentials(a, st, password, code, now, &step);
    if (rc == 0 && join_roles(st->roles, st->n_roles, roles) != 0)
      rc = -1; /* disabled */
  }
  int patient_ctx = !rc && st->patient_id[0];
  if (st)
    clinlog__v1__principal_state__free_unpacked(st, NULL);
  st = NULL;
  if (rc) {
    note_outcome(a, principal, 0, now);
    return cl_err_set(err, CL_EUNAUTH, failed);
  }
  if (!patient_ctx && cl_scopes_allow_context(&sc, CL_SCOPE_PATIENT))
    return cl_err_set(err, CL_EINVAL,
                      "scope: patient/ scopes need a patient context, and %s is linked to no "
                      "patient (ask for user/ scopes)",
                      principal);
  rc = start_session(a, principal, roles, granted, step, NULL, a->o.token_ttl_s, peer, now, l,
                     err);
  /* the session holds the step only if no other took it first (principals.h) */
  if (rc == 0 && (rc = cl_auth_principal(a->o.proj, principal, &st, err)) == 0 &&
      strcmp(st->totp_last_token, l->id.token_id) != 0) {
    note_outcome(a, principal, 0, now);
    rc = cl_err_set(err, CL_EUNAUTH, failed);
  }
  if (st)
    clinlog__v1__principal_state__free_unpacked(st, NULL);
  if (rc) {
    drop_token(l);
    return rc;
  }
  note_outcome(a, principal, 1, now);
  return 0;
}

/* The iss of a JWT's payload, unverified: which client's keys to check it
 * with. 0, or -1 if it has none. */
static int assertion_issuer(const char *jwt, char *out, size_t n) {
  const char *p = strchr(jwt, '.'), *q = p ? strchr(p + 1, '.') : NULL;
  if (!q || (size_t)(q - p - 1) > 16384)
    return -1;
  uint8_t buf[12288];
  size_t len;
  if (sodium_base642bin(buf, sizeof buf, p + 1, (size_t)(q - p - 1), NULL, &len, NULL,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
    return -1;
  json_t *j = json_loadb((const char *)buf, len, 0, NULL);
  const char *iss = json_string_value(json_object_get(j, "iss"));
  int rc = iss && strlen(iss) < n && iss[0] ? 0 : -1;
  if (rc == 0)
    snprintf(out, n, "%s", iss);
  json_decref(j);
  return rc;
}

int cl_authn_grant_check(const char *grant_type, const char *assertion_type, cl_err *err) {
  if (!grant_type || strcmp(grant_type, "client_credentials") != 0)
    return cl_err_set(err, CL_EINVAL,
                      "grant_type: \"%s\" is not supported (client_credentials, SMART Backend "
                      "Services)",
                      grant_type ? grant_type : "");
  if (!assertion_type ||
      strcmp(assertion_type, "urn:ietf:params:oauth:client-assertion-type:jwt-bearer") != 0)
    return cl_err_set(err, CL_EINVAL,
                      "client_assertion_type: must be "
                      "urn:ietf:params:oauth:client-assertion-type:jwt-bearer (a signed JWT; "
                      "clinlog has no client secrets)");
  return 0;
}

int cl_authn_client_token(cl_authn *a, const char *client_id, const char *assertion,
                          const char *scope, const char *token_url, const char *peer, cl_login *l,
                          cl_err *err) {
  memset(l, 0, sizeof *l);
  cl_scopes sc;
  char granted[CL_SCOPE_TEXT_MAX], client[CL_PRINCIPAL_MAX], roles[CL_ROLES_MAX];
  int rc = cl_scopes_parse(scope, CL_SCOPE_SYSTEM, &sc, granted, err);
  if (rc)
    return rc;
  if (sc.n == 0)
    return cl_err_set(err, CL_EINVAL, "scope: ask for the system/ scopes the client needs "
                                      "(e.g. system/*.rs)");
  if (!assertion || assertion_issuer(assertion, client, sizeof client) != 0)
    return cl_err_set(err, CL_EUNAUTH, "client assertion: not a JWT with an iss (the client id)");
  if (client_id && client_id[0] && strcmp(client_id, client) != 0)
    return cl_err_set(err, CL_EUNAUTH, "client_id \"%s\" is not the assertion's iss \"%s\"",
                      client_id, client);
  int64_t now = a->o.now();
  if ((rc = check_locked(a, client, now, err)) != 0)
    return rc;
  Clinlog__V1__PrincipalState *st = NULL;
  cl_jwks *keys = NULL;
  cl_jwt_claims claims;
  cl_err e;
  rc = cl_auth_principal(a->o.proj, client, &st, &e);
  if (rc == CL_ENOTFOUND)
    rc = cl_err_set(err, CL_EUNAUTH, "client assertion: no client %s is registered", client);
  else if (rc)
    rc = cl_err_set(err, rc, "client token: %s", e.msg);
  else if (!st->jwks[0])
    rc = cl_err_set(err, CL_EUNAUTH,
                    "client assertion: client %s has no registered keys (ClientKeysRegistered)",
                    client);
  else if (cl_jwks_parse(st->jwks, strlen(st->jwks), &keys, &e) != 0)
    rc = cl_err_set(err, CL_EUNAUTH, "client assertion: client %s's registered keys: %s", client,
                    e.msg);
  else if (join_roles(st->roles, st->n_roles, roles) != 0)
    rc = cl_err_set(err, CL_EUNAUTH, "client %s is disabled (no roles)", client);
  else if ((rc = cl_jwt_verify_assertion(assertion, strlen(assertion), keys, client, token_url,
                                         now, &claims, err)) != 0)
    rc = rc == CL_EMALFORMED ? CL_EUNAUTH : rc;
  if (st)
    clinlog__v1__principal_state__free_unpacked(st, NULL);
  cl_jwks_free(keys);
  if (rc) {
    if (rc == CL_EUNAUTH)
      note_outcome(a, client, 0, now);
    return rc;
  }
  int64_t ttl = a->o.token_ttl_s < CL_CLIENT_TOKEN_TTL ? a->o.token_ttl_s : CL_CLIENT_TOKEN_TTL;
  rc = start_session(a, client, roles, granted, 0, claims.jti, ttl, peer, now, l, err);
  if (rc == 0) { /* the jti is used once: a session that named it second is ended */
    int ended = cl_auth_session_ended(a->o.proj, l->id.token_id, err);
    if (ended > 0) {
      note_outcome(a, client, 0, now);
      rc = cl_err_set(err, CL_EUNAUTH, "client assertion: its jti was used before");
    } else if (ended < 0) {
      rc = ended;
    }
  }
  if (rc) {
    drop_token(l);
    return rc;
  }
  note_outcome(a, client, 1, now);
  return 0;
}

int cl_authn_logout(cl_authn *a, const cl_identity *id, uint64_t *seq, cl_err *err) {
  if (!id->token_id[0])
    return cl_err_set(err, CL_EINVAL, "logout: the caller has no session (not a token)");
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  Clinlog__V1__SessionEnded se = CLINLOG__V1__SESSION_ENDED__INIT;
  Google__Protobuf__Timestamp exp = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  exp.seconds = id->expires_at;
  se.principal_id = (char *)id->principal;
  se.token_id = (char *)id->token_id;
  se.expires_at = &exp;
  se.reason = "logout";
  ev.body_case = CLINLOG__V1__EVENT__BODY_SESSION_ENDED;
  ev.session_ended = &se;
  return append_session(a, &ev, id->principal, seq, err);
}

int cl_authn_break_glass(cl_authn *a, const cl_identity *id, const char *patient_id,
                         const char *reason, uint32_t seconds, int64_t *expires_at, uint64_t *seq,
                         cl_err *err) {
  if (!id->token_id[0])
    return cl_err_set(err, CL_EINVAL, "break-glass: the caller has no session (log in first)");
  if (!patient_id || !patient_id[0])
    return cl_err_set(err, CL_EINVAL, "break-glass: patient_id: required");
  if (!reason || strlen(reason) < 8)
    return cl_err_set(err, CL_EINVAL, "break-glass: reason: say why, in 8 characters or more");
  if (seconds > CL_BREAK_GLASS_MAX_S)
    return cl_err_set(err, CL_EINVAL, "break-glass: seconds: at most %d", CL_BREAK_GLASS_MAX_S);
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  Clinlog__V1__BreakGlassDeclared bg = CLINLOG__V1__BREAK_GLASS_DECLARED__INIT;
  Google__Protobuf__Timestamp exp = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  exp.seconds = (int64_t)time(NULL) + (seconds ? seconds : 3600);
  bg.principal_id = (char *)id->principal;
  bg.token_id = (char *)id->token_id;
  bg.patient_id = (char *)patient_id;
  bg.reason = (char *)reason;
  bg.expires_at = &exp;
  bg.node_id = a->o.node_id;
  ev.body_case = CLINLOG__V1__EVENT__BODY_BREAK_GLASS_DECLARED;
  ev.break_glass_declared = &bg;
  int rc = append_session(a, &ev, id->principal, seq, err);
  if (rc == 0)
    *expires_at = exp.seconds;
  return rc;
}

int cl_authn_glass(cl_authn *a, const char *token_id, char *out, size_t n, cl_err *err) {
  int64_t exp;
  int rc = cl_auth_break_glass(a->o.proj, token_id, out, n, &exp, err);
  if (rc == 1 && exp <= (int64_t)time(NULL))
    rc = 0; /* expired */
  return rc;
}

/* ------------------------------------------------------------- checks */

/* The principal's current roles and patient into id (CL_EUNAUTH if
 * disabled). */
static int current_roles(const Clinlog__V1__PrincipalState *st, cl_identity *id, cl_err *err) {
  if (join_roles(st->roles, st->n_roles, id->roles) != 0)
    return cl_err_set(err, CL_EUNAUTH, "principal %s is disabled (no roles)", st->principal_id);
  snprintf(id->patient_id, sizeof id->patient_id, "%s", st->patient_id);
  return 0;
}

/* Idle logoff: the session's last call on this node, now. Expired
 * sessions are dropped from the map as it grows. */
static int touch_session(cl_authn *a, const char *jti, int64_t now, cl_err *err) {
  uint8_t k[32];
  hash_id(jti, k);
  int rc = 0;
  pthread_mutex_lock(&a->mu);
  int64_t *last = cl_hmap_get(a->seen, k);
  if (last && now - *last > a->o.idle_s) {
    rc = cl_err_set(err, CL_EUNAUTH, "session idle for more than %d s: log in again", a->o.idle_s);
  } else if (last) {
    *last = now;
  } else {
    if (cl_hmap_count(a->seen) >= 4096) { /* drop the sessions that have expired by now */
      size_t pos = 0;
      const void *key;
      void *val;
      int64_t cutoff = now - CL_TOKEN_MAX_TTL - 60;
      while (cl_hmap_next(a->seen, &pos, &key, &val))
        if (*(int64_t *)val < cutoff && cl_hmap_del(a->seen, key) == 0)
          pos = 0;
    }
    if (!cl_hmap_put(a->seen, k, &now))
      rc = cl_err_set(err, CL_ENOMEM, "out of memory");
  }
  pthread_mutex_unlock(&a->mu);
  return rc;
}

int cl_authn_token(cl_authn *a, const char *token, cl_identity *id, cl_err *err) {
  memset(id, 0, sizeof *id);
  int64_t now = a->o.now();
  json_t *claims;
  uint8_t pk[32];
  cl_log_signer_pk(a->o.log, pk);
  int rc = cl_token_verify(pk, token, now, &claims, err);
  if (rc)
    return rc;
  const char *sub = json_string_value(json_object_get(claims, "sub"));
  const char *jti = json_string_value(json_object_get(claims, "jti"));
  json_int_t exp = json_integer_value(json_object_get(claims, "exp"));
  if (!sub || !jti || strlen(jti) != 32 || strlen(sub) >= sizeof id->principal) {
    json_decref(claims);
    return cl_err_set(err, CL_EUNAUTH, "token: sub and jti required");
  }
  snprintf(id->principal, sizeof id->principal, "%s", sub);
  memcpy(id->token_id, jti, 33);
  id->expires_at = exp;
  const char *scope = json_string_value(json_object_get(claims, "scope"));
  if (scope && strlen(scope) >= sizeof id->scope) {
    json_decref(claims);
    return cl_err_set(err, CL_EUNAUTH, "token: scope too long");
  }
  snprintf(id->scope, sizeof id->scope, "%s", scope ? scope : "");
  json_decref(claims);
  cl_err e;
  int ended = cl_auth_session_ended(a->o.proj, id->token_id, &e);
  if (ended < 0)
    return cl_err_set(err, ended, "token: %s", e.msg);
  if (ended)
    return cl_err_set(err, CL_EUNAUTH, "token: the session has ended (logout or revocation)");
  Clinlog__V1__PrincipalState *st;
  if ((rc = cl_auth_principal(a->o.proj, id->principal, &st, &e)) != 0)
    return cl_err_set(err, rc == CL_ENOTFOUND ? CL_EUNAUTH : rc, "token: %s", e.msg);
  rc = current_roles(st, id, err);
  clinlog__v1__principal_state__free_unpacked(st, NULL);
  if (rc == 0)
    rc = touch_session(a, id->token_id, now, err);
  return rc;
}

int cl_authn_cert(cl_authn *a, const char *sha256_hex, cl_identity *id, cl_err *err) {
  memset(id, 0, sizeof *id);
  Clinlog__V1__PrincipalState *st;
  cl_err e;
  int rc = cl_auth_principal_by_cert(a->o.proj, sha256_hex, &st, &e);
  if (rc)
    return cl_err_set(err, rc == CL_ENOTFOUND ? CL_EUNAUTH : rc, "client certificate: %s", e.msg);
  snprintf(id->principal, sizeof id->principal, "%s", st->principal_id);
  rc = current_roles(st, id, err);
  clinlog__v1__principal_state__free_unpacked(st, NULL);
  return rc;
}

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
#include "query/auth/principals.h"
#include "store/alloc.h"
#include "store/event.h"
#include "store/hmap.h"

typedef struct failures {
  int count;
  int64_t locked_until;
} failures;

struct cl_authn {
  cl_authn_options o;
  const cl_signer *signer; /* the log key */
  char kid[17];            /* the key id tokens name: the log key's first 8 bytes, hex */
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
  a->signer = s;
  cl_hex(s->pk, 8, a->kid);
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
  uint8_t hash[32], sig[64], *buf;
  size_t n;
  snprintf(stream, sizeof stream, "$principal-%s", principal);
  int rc = cl_event_pack_node(ev, stream, &buf, &n, err);
  if (rc)
    return rc;
  cl_event_hash(buf, n, hash);
  cl_sign_batch(a->signer, (const uint8_t(*)[32])hash, 1, sig);
  ProtobufCBinaryData evb = {n, buf};
  Clinlog__V1__Signature bs = CLINLOG__V1__SIGNATURE__INIT;
  bs.key_id = (ProtobufCBinaryData){32, (uint8_t *)a->signer->pk};
  bs.signature = (ProtobufCBinaryData){64, sig};
  Clinlog__V1__AppendBatch b = CLINLOG__V1__APPEND_BATCH__INIT;
  b.n_events = 1;
  b.events = &evb;
  b.batch_signature = &bs;
  rc = a->o.append(a->o.ctx, &b, seq, err);
  if (rc == 0)
    rc = a->o.wait(a->o.ctx, *seq, err);
  cl_free(buf);
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

int cl_authn_login(cl_authn *a, const char *principal, const char *password, const char *code,
                   const char *peer, cl_login *l, cl_err *err) {
  static const char failed[] = "login failed: unknown principal, wrong password or wrong code";
  memset(l, 0, sizeof *l);
  int64_t now = a->o.now();
  int rc = check_locked(a, principal, now, err);
  if (rc)
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
  if (rc) {
    if (st)
      clinlog__v1__principal_state__free_unpacked(st, NULL);
    note_outcome(a, principal, 0, now);
    return cl_err_set(err, CL_EUNAUTH, failed);
  }
  clinlog__v1__principal_state__free_unpacked(st, NULL);
  st = NULL;

  json_t *claims = json_pack("{s:s, s:s}", "sub", principal, "roles", roles);
  char jti[33];
  if (!claims)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  rc = cl_token_issue(a->signer, a->kid, cl_log_origin(a->o.log), claims, now, a->o.token_ttl_s,
                      &l->token, jti, err);
  json_decref(claims);
  if (rc)
    return rc;

  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  Clinlog__V1__SessionStarted ss = CLINLOG__V1__SESSION_STARTED__INIT;
  Google__Protobuf__Timestamp exp = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  exp.seconds = now + a->o.token_ttl_s;
  ss.principal_id = (char *)principal;
  ss.token_id = jti;
  ss.expires_at = &exp;
  ss.totp_step = step;
  ss.client_address = (char *)(peer ? peer : "");
  ss.node_id = a->o.node_id;
  ev.body_case = CLINLOG__V1__EVENT__BODY_SESSION_STARTED;
  ev.session_started = &ss;
  rc = append_session(a, &ev, principal, &l->seq, err);
  /* the session holds the step only if no other took it first (principals.h) */
  if (rc == 0 && (rc = cl_auth_principal(a->o.proj, principal, &st, err)) == 0 &&
      strcmp(st->totp_last_token, jti) != 0) {
    note_outcome(a, principal, 0, now);
    rc = cl_err_set(err, CL_EUNAUTH, failed);
  }
  if (st)
    clinlog__v1__principal_state__free_unpacked(st, NULL);
  if (rc) {
    free(l->token);
    l->token = NULL;
    return rc;
  }
  note_outcome(a, principal, 1, now);
  snprintf(l->id.principal, sizeof l->id.principal, "%s", principal);
  snprintf(l->id.roles, sizeof l->id.roles, "%s", roles);
  memcpy(l->id.token_id, jti, sizeof jti);
  l->id.expires_at = exp.seconds;
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
  int rc = cl_token_verify(a->signer->pk, token, now, &claims, err);
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

/* The auth projection; see principals.h. */
#include "query/auth/principals.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "clinlog/v1/event.pb-c.h"
#include "store/alloc.h"
#include "store/keyring.h"
#include "store/db.h"
#include "store/event.h"

enum { FAM_PRINCIPAL, FAM_CERT, FAM_ENDED };
static const char *const FAMILIES[] = {"principal", "cert", "ended"};

/* hash(kind ":" ident): one keyed hash per kind of identifier, so a
 * principal id and a token id that happen to be equal never share a key. */
static void hkey(cl_proj *p, char kind, const char *ident, uint8_t out[32]) {
  char buf[512];
  int n = snprintf(buf, sizeof buf, "%c:%s", kind, ident);
  cl_proj_hash(p, buf, n < (int)sizeof buf ? (size_t)n : sizeof buf - 1, out);
}

static int unpack_state(const uint8_t *v, size_t n, Clinlog__V1__PrincipalState **out,
                        cl_err *err) {
  int oom;
  *out = (Clinlog__V1__PrincipalState *)cl_pb_unpack(&clinlog__v1__principal_state__descriptor, v,
                                                     n, &oom);
  if (!*out)
    return oom ? cl_err_set(err, CL_ENOMEM, "out of memory")
               : cl_err_set(err, CL_ECORRUPT, "auth: a stored principal does not decode");
  return 0;
}

/* ----------------------------------------------------------- the fold */

static int folded_type(uint32_t t) {
  return (t >= CLINLOG__V1__EVENT__BODY_PRINCIPAL_REGISTERED &&
          t <= CLINLOG__V1__EVENT__BODY_KEY_REVOKED) ||
         (t >= CLINLOG__V1__EVENT__BODY_CREDENTIAL_ENROLLED &&
          t <= CLINLOG__V1__EVENT__BODY_CLIENT_KEYS_REGISTERED);
}

/* Appends a copy of s to a repeated string field. */
static int push_str(char ***arr, size_t *n, const char *s) {
  char **na = cl_realloc(*arr, (*n + 1) * sizeof *na);
  if (!na)
    return CL_ENOMEM;
  *arr = na;
  size_t l = strlen(s);
  if (!(na[*n] = cl_malloc(l + 1)))
    return CL_ENOMEM;
  memcpy(na[*n], s, l + 1);
  (*n)++;
  return 0;
}

static void remove_at(void **arr, size_t *n, size_t i) {
  cl_free(arr[i]);
  memmove(&arr[i], &arr[i + 1], (*n - i - 1) * sizeof *arr);
  (*n)--;
}

static ssize_t find_str(char **arr, size_t n, const char *s) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(arr[i], s))
      return (ssize_t)i;
  return -1;
}

static ssize_t find_key(const ProtobufCBinaryData *arr, size_t n, ProtobufCBinaryData k) {
  for (size_t i = 0; i < n; i++)
    if (arr[i].len == k.len && !memcmp(arr[i].data, k.data, k.len))
      return (ssize_t)i;
  return -1;
}

static int set_str(char **dst, const char *s) {
  size_t l = strlen(s);
  char *c = cl_malloc(l + 1);
  if (!c)
    return CL_ENOMEM;
  memcpy(c, s, l + 1);
  if (*dst && *dst != protobuf_c_empty_string)
    cl_free(*dst);
  *dst = c;
  return 0;
}

static int set_roles(Clinlog__V1__PrincipalState *st, char **roles, size_t n) {
  for (size_t i = 0; i < st->n_roles; i++)
    cl_free(st->roles[i]);
  st->n_roles = 0;
  for (size_t i = 0; i < n; i++)
    if (push_str(&st->roles, &st->n_roles, roles[i]))
      return CL_ENOMEM;
  return 0;
}

static int add_key(Clinlog__V1__PrincipalState *st, ProtobufCBinaryData k) {
  if (find_key(st->keys, st->n_keys, k) >= 0)
    return 0;
  ProtobufCBinaryData *nk = cl_realloc(st->keys, (st->n_keys + 1) * sizeof *nk);
  if (!nk)
    return CL_ENOMEM;
  st->keys = nk;
  if (!(nk[st->n_keys].data = cl_malloc(k.len ? k.len : 1)))
    return CL_ENOMEM;
  memcpy(nk[st->n_keys].data, k.data, k.len);
  nk[st->n_keys++].len = k.len;
  return 0;
}

static int put_ended(cl_fold_ctx *f, const char *token_id, const Google__Protobuf__Timestamp *exp,
                     cl_err *err) {
  uint8_t k[32], v[8];
  hkey(f->proj, 's', token_id, k);
  cl_be64(v, exp && exp->seconds > 0 ? (uint64_t)exp->seconds : 0);
  return cl_proj_put(f->txn, FAM_ENDED, k, 32, v, 8, err);
}

/* A client assertion's jti (RFC 7523 3: used once): a session naming one
 * another session named first is folded as ended. 1 if it did, else 0 or a
 * negative error. */
static int assertion_replayed(cl_fold_ctx *f, const Clinlog__V1__SessionStarted *s, cl_err *err) {
  char ident[CL_PRINCIPAL_MAX + 260];
  uint8_t k[32], *v, exp[8];
  size_t vl;
  snprintf(ident, sizeof ident, "%s\n%s", s->principal_id, s->assertion_jti);
  hkey(f->proj, 'j', ident, k);
  int rc = cl_proj_txn_get(f->txn, FAM_ENDED, k, 32, &v, &vl, err);
  if (rc == 0) {
    cl_free(v);
    rc = put_ended(f, s->token_id, s->expires_at, err);
    return rc ? rc : 1;
  }
  if (rc != CL_ENOTFOUND)
    return rc;
  cl_be64(exp, s->expires_at && s->expires_at->seconds > 0 ? (uint64_t)s->expires_at->seconds : 0);
  return cl_proj_put(f->txn, FAM_ENDED, k, 32, exp, 8, err);
}

/* Applies event e to st (a new state for PrincipalRegistered). `pkey` is
 * the principal's key in FAM_PRINCIPAL. Returns 0, 1 (nothing changed) or
 * a negative error. */
static int apply(cl_fold_ctx *f, const cl_event_view *ev, const Clinlog__V1__Event *e,
                 Clinlog__V1__PrincipalState *st, const uint8_t pkey[32], cl_err *err) {
  int rc = 0;
  uint8_t ck[32];
  switch (e->body_case) {
  case CLINLOG__V1__EVENT__BODY_PRINCIPAL_REGISTERED: {
    const Clinlog__V1__PrincipalRegistered *r = e->principal_registered;
    if (st->registered_seq)
      return 1; /* registered once (the store refuses a second) */
    st->registered_seq = ev->seq;
    if (set_str(&st->principal_id, r->principal_id) ||
        set_str(&st->display_name, r->display_name) || set_str(&st->kind, r->kind) ||
        set_str(&st->patient_id, r->patient_id) || set_roles(st, r->roles, r->n_roles) ||
        (r->public_key.len && add_key(st, r->public_key)))
      rc = CL_ENOMEM;
    break;
  }
  case CLINLOG__V1__EVENT__BODY_KEY_REGISTERED:
    rc = add_key(st, e->key_registered->public_key);
    break;
  case CLINLOG__V1__EVENT__BODY_KEY_REVOKED: {
    ssize_t i = find_key(st->keys, st->n_keys, e->key_revoked->public_key);
    if (i < 0)
      return 1;
    cl_free(st->keys[i].data);
    memmove(&st->keys[i], &st->keys[i + 1], (st->n_keys - (size_t)i - 1) * sizeof *st->keys);
    st->n_keys--;
    break;
  }
  case CLINLOG__V1__EVENT__BODY_CREDENTIAL_ENROLLED: {
    const Clinlog__V1__CredentialEnrolled *c = e->credential_enrolled;
    if (c->password_hash[0] && set_str(&st->password_hash, c->password_hash))
      return CL_ENOMEM;
    if (c->totp) {
      if (set_str(&st->totp_algorithm, c->totp->algorithm))
        return CL_ENOMEM;
      cl_free(st->totp_secret.data);
      st->totp_secret.len = 0;
      if (!(st->totp_secret.data = cl_malloc(c->totp->secret.len ? c->totp->secret.len : 1)))
        return CL_ENOMEM;
      memcpy(st->totp_secret.data, c->totp->secret.data, c->totp->secret.len);
      st->totp_secret.len = c->totp->secret.len;
      st->totp_digits = c->totp->digits;
      st->totp_period = c->totp->period;
      /* totp_last_step stays: time only moves forward, a new secret too */
    }
    break;
  }
  case CLINLOG__V1__EVENT__BODY_CERTIFICATE_BOUND: {
    const char *fp = e->certificate_bound->sha256;
    if (find_str(st->certificates, st->n_certificates, fp) < 0 &&
        push_str(&st->certificates, &st->n_certificates, fp))
      return CL_ENOMEM;
    hkey(f->proj, 'c', fp, ck);
    rc = cl_proj_put(f->txn, FAM_CERT, ck, 32, pkey, 32, err);
    break;
  }
  case CLINLOG__V1__EVENT__BODY_CERTIFICATE_REVOKED: {
    ssize_t i = find_str(st->certificates, st->n_certificates, e->certificate_revoked->sha256);
    if (i < 0)
      return 1;
    remove_at((void **)st->certificates, &st->n_certificates, (size_t)i);
    hkey(f->proj, 'c', e->certificate_revoked->sha256, ck);
    rc = cl_proj_del(f->txn, FAM_CERT, ck, 32, err);
    break;
  }
  case CLINLOG__V1__EVENT__BODY_ROLES_CHANGED:
    rc = set_roles(st, e->roles_changed->roles, e->roles_changed->n_roles);
    break;
  case CLINLOG__V1__EVENT__BODY_CLIENT_KEYS_REGISTERED:
    rc = set_str(&st->jwks, e->client_keys_registered->jwks);
    break;
  case CLINLOG__V1__EVENT__BODY_SESSION_STARTED: {
    const Clinlog__V1__SessionStarted *s = e->session_started;
    if (s->assertion_jti[0] && (rc = assertion_replayed(f, s, err)) != 0)
      return rc < 0 ? rc : 1;
    if (s->totp_step == 0)
      return 1;
    if (s->totp_step <= st->totp_last_step) { /* the step was used first by another session */
      rc = put_ended(f, s->token_id, s->expires_at, err);
      return rc ? rc : 1;
    }
    st->totp_last_step = s->totp_step;
    rc = set_str(&st->totp_last_token, s->token_id);
    break;
  }
  case CLINLOG__V1__EVENT__BODY_SESSION_ENDED:
    rc = put_ended(f, e->session_ended->token_id, e->session_ended->expires_at, err);
    return rc ? rc : 1;
  case CLINLOG__V1__EVENT__BODY_BREAK_GLASS_DECLARED: {
    /* the session's grant: expiry (8 bytes BE) and the patient, sealed */
    const Clinlog__V1__BreakGlassDeclared *g = e->break_glass_declared;
    size_t pl = strlen(g->patient_id);
    uint8_t *gv = cl_malloc(8 + pl);
    if (!gv)
      return cl_err_set(err, CL_ENOMEM, "out of memory");
    cl_be64(gv, g->expires_at && g->expires_at->seconds > 0 ? (uint64_t)g->expires_at->seconds : 0);
    memcpy(gv + 8, g->patient_id, pl);
    hkey(f->proj, 'g', g->token_id, ck);
    rc = cl_proj_put_sealed(f->txn, FAM_PRINCIPAL, ck, 32, ev->stream_tag, gv, 8 + pl, err);
    sodium_memzero(gv, 8 + pl);
    cl_free(gv);
    return rc ? rc : 1;
  }
  default:
    return 1;
  }
  if (rc == CL_ENOMEM)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  return rc;
}

static int fold(cl_fold_ctx *f, const cl_event_view *ev, cl_err *err) {
  if (ev->erased || !folded_type(ev->event_type))
    return 0;
  uint8_t *plain;
  size_t n;
  int rc = cl_log_open_event(f->log, ev, &plain, &n, err);
  if (rc)
    return rc;
  Clinlog__V1__Event *e;
  rc = cl_event_decode(plain, n, &e, err);
  cl_log_event_free(plain, n);
  if (rc)
    return rc;
  const char *pid = cl_event_principal(e);
  Clinlog__V1__PrincipalState *st = NULL;
  uint8_t key[32], *v = NULL;
  size_t vl;
  if (!pid || !pid[0])
    goto done;
  hkey(f->proj, 'p', pid, key);
  rc = cl_proj_txn_get_sealed(f->txn, FAM_PRINCIPAL, key, 32, &v, &vl, err);
  if (rc == 0) {
    rc = unpack_state(v, vl, &st, err);
    sodium_memzero(v, vl);
    cl_free(v);
    if (rc)
      goto done;
  } else if (rc == CL_ENOTFOUND && e->body_case == CLINLOG__V1__EVENT__BODY_PRINCIPAL_REGISTERED) {
    if (!(st = cl_malloc(sizeof *st))) {
      rc = cl_err_set(err, CL_ENOMEM, "out of memory");
      goto done;
    }
    clinlog__v1__principal_state__init(st);
  } else if (rc == CL_ENOTFOUND) {
    rc = 0; /* about a principal never registered: nothing to change */
    goto done;
  } else {
    goto done;
  }
  rc = apply(f, ev, e, st, key, err);
  if (rc == 1) {
    rc = 0;
  } else if (rc == 0) {
    st->changed_seq = ev->seq;
    size_t pl = clinlog__v1__principal_state__get_packed_size(st);
    uint8_t *packed = cl_malloc(pl ? pl : 1);
    if (!packed) {
      rc = cl_err_set(err, CL_ENOMEM, "out of memory");
      goto done;
    }
    clinlog__v1__principal_state__pack(st, packed);
    rc = cl_proj_put_sealed(f->txn, FAM_PRINCIPAL, key, 32, ev->stream_tag, packed, pl, err);
    sodium_memzero(packed, pl);
    cl_free(packed);
  }
done:
  if (st)
    clinlog__v1__principal_state__free_unpacked(st, NULL);
  clinlog__v1__event__free_unpacked(e, NULL);
  return rc;
}

const cl_projection cl_auth_projection = {
    .name = "auth",
    .version = 4, /* 2: the principal's patient; 3: break-glass grants; 4: client keys, jti */
    .families = FAMILIES,
    .nfamilies = sizeof FAMILIES / sizeof FAMILIES[0],
    .fold = fold,
    .sealed_reads = 1,
};

/* ------------------------------------------------------------- reads */

static int principal_at(cl_proj *p, const uint8_t key[32], Clinlog__V1__PrincipalState **out,
                        cl_err *err) {
  uint8_t *v;
  size_t vl;
  int rc = cl_proj_get_sealed(p, FAM_PRINCIPAL, key, 32, &v, &vl, err);
  if (rc)
    return rc;
  rc = unpack_state(v, vl, out, err);
  sodium_memzero(v, vl);
  cl_free(v);
  return rc;
}

int cl_auth_principal(cl_proj *p, const char *principal, Clinlog__V1__PrincipalState **out,
                      cl_err *err) {
  uint8_t key[32];
  hkey(p, 'p', principal, key);
  int rc = principal_at(p, key, out, err);
  if (rc == CL_ENOTFOUND)
    cl_err_set(err, CL_ENOTFOUND, "no such principal");
  return rc;
}

int cl_auth_principal_by_cert(cl_proj *p, const char *sha256_hex, Clinlog__V1__PrincipalState **out,
                              cl_err *err) {
  uint8_t ck[32], *v;
  size_t vl;
  hkey(p, 'c', sha256_hex, ck);
  int rc = cl_proj_get(p, FAM_CERT, ck, 32, &v, &vl, err);
  if (rc == CL_ENOTFOUND)
    return cl_err_set(err, CL_ENOTFOUND, "the certificate is bound to no principal");
  if (rc)
    return rc;
  if (vl != 32) {
    cl_free(v);
    return cl_err_set(err, CL_ECORRUPT, "auth: a certificate entry is %zu bytes", vl);
  }
  rc = principal_at(p, v, out, err);
  cl_free(v);
  return rc;
}

int cl_auth_session_ended(cl_proj *p, const char *token_id, cl_err *err) {
  uint8_t k[32], *v;
  size_t vl;
  hkey(p, 's', token_id, k);
  int rc = cl_proj_get(p, FAM_ENDED, k, 32, &v, &vl, err);
  if (rc == CL_ENOTFOUND)
    return 0;
  if (rc)
    return rc;
  cl_free(v);
  return 1;
}

int cl_auth_break_glass(cl_proj *p, const char *token_id, char *patient, size_t n,
                        int64_t *expires_at, cl_err *err) {
  uint8_t k[32], *v;
  size_t vl;
  hkey(p, 'g', token_id, k);
  int rc = cl_proj_get_sealed(p, FAM_PRINCIPAL, k, 32, &v, &vl, err);
  if (rc == CL_ENOTFOUND)
    return 0;
  if (rc)
    return rc;
  if (vl < 8 || vl - 8 >= n) {
    cl_free(v);
    return cl_err_set(err, CL_ECORRUPT, "auth: a break-glass entry of %zu bytes", vl);
  }
  *expires_at = (int64_t)cl_get_be64(v);
  memcpy(patient, v + 8, vl - 8);
  patient[vl - 8] = '\0';
  sodium_memzero(v, vl);
  cl_free(v);
  return 1;
}

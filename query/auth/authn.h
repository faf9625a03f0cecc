/* Authentication: who a caller is, checked against the auth projection
 * (principals.h) with the credential functions (cred.h).
 *
 *  - People log in with a password (argon2id) and a TOTP code (RFC 6238)
 *    and get a session token (an EdDSA JWT signed with the log key, so every
 *    node of the cluster checks it; at most 15 minutes). The session is
 *    written to the log (SessionStarted, signed by the log key) and folded
 *    before the token is handed out: a TOTP step is used once cluster-wide,
 *    and the log records every session.
 *  - A token is refused once its session ended (SessionEnded: logout or
 *    revocation, on every node once folded), once it expired, after
 *    `idle_s` without a call on this node, and when its principal has no
 *    roles left (RolesChanged). The roles a call acts with are the
 *    principal's current ones, not those at login.
 *  - Systems, devices and nodes authenticate with a TLS client certificate
 *    bound to them by its SHA-256 fingerprint (CertificateBound).
 *  - Throttling: after `max_failures` failed logins in a row a principal
 *    is locked out of login for `lockout_s` (per node; each node counts
 *    the attempts it sees).
 *
 * The writer and the wait are the request layer's (this module does not
 * know whether writes go to the store or through Raft).
 *
 * Thread-safety: every function may be called from any thread. */
#ifndef CL_QUERY_AUTH_AUTHN_H
#define CL_QUERY_AUTH_AUTHN_H

#include <stdint.h>

#include "clinlog/v1/api.pb-c.h"
#include "query/auth/scope.h"
#include "store/keyring.h"
#include "store/log.h"
#include "store/proj.h"

typedef struct cl_authn_options {
  cl_log *log;   /* borrowed; its log key signs tokens and sessions */
  cl_proj *proj; /* borrowed: the auth projection's state */
  /* Appends a signed batch (the request layer's writer): the seq of its
   * last event into *seq. */
  int (*append)(void *ctx, const Clinlog__V1__AppendBatch *b, uint64_t *seq, cl_err *err);
  /* Returns once the auth projection has folded event seq. */
  int (*wait)(void *ctx, uint64_t seq, cl_err *err);
  void *ctx;
  uint64_t node_id;     /* recorded in SessionStarted (0: a single node) */
  int token_ttl_s;      /* default and at most 900 */
  int idle_s;           /* idle logoff; default 900 */
  unsigned totp_window; /* steps accepted either side of now; default 1 */
  int max_failures;     /* default 5 */
  int lockout_s;        /* default 300 */
  int64_t (*now)(void); /* unix seconds; tests may move time; default time() */
} cl_authn_options;

void cl_authn_options_init(cl_authn_options *o);

/* Who a caller is. */
typedef struct cl_identity {
  char principal[CL_PRINCIPAL_MAX];
  char roles[CL_ROLES_MAX]; /* comma-separated, current */
  char token_id[33];        /* the session's jti, "" for a certificate */
  int64_t expires_at;       /* unix seconds; 0 for a certificate */
  char patient_id[128];     /* the patient it is (PrincipalRegistered.patient_id), "" if none */
  char scope[CL_SCOPE_TEXT_MAX]; /* the token's SMART scopes (scope.h), "" if none: the
                                    roles' reach */
} cl_identity;

typedef struct cl_authn cl_authn;

/* *out returned-owned (cl_authn_free). Errors: CL_EINVAL (no log key on
 * this node, missing options), CL_ENOMEM. */
int cl_authn_new(const cl_authn_options *o, cl_authn **out, cl_err *err);
void cl_authn_free(cl_authn *a);

typedef struct cl_login {
  char *token; /* returned-owned (free) */
  cl_identity id;
  uint64_t seq; /* of the SessionStarted */
} cl_login;

/* Checks principal's password and TOTP code and starts a session. On
 * success l->token is the caller's. `scope` (NULL or "": none) limits the
 * token to SMART user/ and patient/ scopes (patient/ only for a principal
 * linked to a patient: its compartment); l->id.scope has those granted.
 * Errors: CL_EINVAL (a scope, checked first: err names it), CL_EUNAUTH (one
 * message for an unknown principal, a wrong password or code, a reused
 * code, a principal without credentials or roles: the caller learns
 * nothing about which), CL_ELIMITED when locked out after repeated
 * failures (err says for how long), and the writer's errors. `peer` is
 * recorded in the session. */
int cl_authn_login(cl_authn *a, const char *principal, const char *password, const char *code,
                   const char *scope, const char *peer, cl_login *l, cl_err *err);

/* SMART Backend Services (OAuth 2.0 client_credentials with a JWT client
 * assertion, RFC 7523): the assertion's issuer is the client id, a
 * principal with a registered JWK Set (ClientKeysRegistered); the
 * `client_id` (NULL or "": not sent) must be that issuer; the
 * assertion must verify with one of its keys, name `token_url` as its
 * audience and carry a jti no session used before (cluster-wide: the
 * session is committed and folded before the token is handed out). The
 * token carries `scope` (system/ scopes, at least one), lives at most 300 s
 * and acts with the principal's roles. Errors: CL_EINVAL (scope: err names
 * it), CL_EUNAUTH (the client, its keys or the assertion: err says what;
 * a failure counts toward the lockout as for logins), CL_ELIMITED, the
 * writer's. */
#define CL_CLIENT_TOKEN_TTL 300
/* The grant of a token request: grant_type client_credentials with
 * client_assertion_type jwt-bearer (RFC 7523 2.2). 0, or CL_EINVAL naming
 * the parameter (the OAuth error is unsupported_grant_type or
 * invalid_request). */
int cl_authn_grant_check(const char *grant_type, const char *assertion_type, cl_err *err);
int cl_authn_client_token(cl_authn *a, const char *client_id, const char *assertion,
                          const char *scope, const char *token_url, const char *peer, cl_login *l,
                          cl_err *err);

/* Ends the session of id (a token identity): SessionEnded, folded before
 * this returns; *seq gets its sequence number. Errors: CL_EINVAL (not a
 * session), the writer's. */
int cl_authn_logout(cl_authn *a, const cl_identity *id, uint64_t *seq, cl_err *err);

/* Break-glass (BreakGlassDeclared): session id may read patient_id's data
 * for `seconds` (0: 3600; at most 14400) for `reason` (at least 8
 * characters), folded before this returns; *expires_at (unix seconds) and
 * *seq. Errors: CL_EINVAL (not a session, no patient, a short reason, too
 * long), the writer's. */
#define CL_BREAK_GLASS_MAX_S 14400
int cl_authn_break_glass(cl_authn *a, const cl_identity *id, const char *patient_id,
                         const char *reason, uint32_t seconds, int64_t *expires_at, uint64_t *seq,
                         cl_err *err);
/* The patient session `token_id` may read under break-glass now, into out
 * (n bytes): 1, or 0 if none (never declared, or expired); negative CL_E*
 * on a read error. */
int cl_authn_glass(cl_authn *a, const char *token_id, char *out, size_t n, cl_err *err);

/* Checks a session token (see the header comment). Errors: CL_EUNAUTH with
 * err saying why (malformed, signature, expired, ended, idle, disabled,
 * unknown principal). */
int cl_authn_token(cl_authn *a, const char *token, cl_identity *id, cl_err *err);

/* The principal a client certificate (SHA-256 fingerprint, hex) is bound
 * to. Errors: CL_EUNAUTH (bound to none, or a principal without roles). */
int cl_authn_cert(cl_authn *a, const char *sha256_hex, cl_identity *id, cl_err *err);

#endif

/* Credentials: what a person or a system proves itself with, as pure
 * functions (the principals, their enrolled credentials and revocations
 * are events in the log and a projection over them; the request layer
 * checks a caller with these).
 *
 *  - Passwords: argon2id (libsodium's crypto_pwhash_str), the parameters
 *    and the salt stored in the hash string itself
 *    ("$argon2id$v=19$m=65536,t=3,p=1$<salt>$<hash>"), so a policy can
 *    raise them and rehash at the next login.
 *  - One-time codes: TOTP (RFC 6238) over HOTP (RFC 4226), HMAC-SHA-1,
 *    HMAC-SHA-256 or HMAC-SHA-512, 6 to 8 digits, a 30 s step by default;
 *    a code is accepted within +-window steps and never twice (the caller
 *    keeps the last step used per enrollment, in the log).
 *  - Session tokens: a JWT (RFC 7519) in JWS compact serialization signed
 *    with EdDSA/Ed25519 (RFC 7515, RFC 8037) by the cluster's key: header
 *    {"alg":"EdDSA","typ":"JWT","kid":...}, claims iss, sub, iat, exp, jti
 *    and whatever the caller adds (roles, scope). At most 15 minutes long.
 *
 * Secrets given to these functions (passwords, TOTP secrets) are not
 * copied except into stack buffers that are wiped. */
#ifndef CL_QUERY_AUTH_CRED_H
#define CL_QUERY_AUTH_CRED_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "store/err.h"
#include "store/keys.h"

/* ---- passwords ---- */

#define CL_PW_HASH_MAX 128 /* crypto_pwhash_STRBYTES, the NUL included */
#define CL_PW_OPS 3        /* argon2id time cost (passes) */
#define CL_PW_MEM (64u << 20)

/* Hashes password pw (len bytes) with argon2id at ops passes over mem
 * bytes (0, 0: CL_PW_OPS, CL_PW_MEM) into out. Errors: CL_EINVAL (below
 * libsodium's minimums), CL_ENOMEM. */
int cl_pw_hash(const char *pw, size_t len, unsigned long long ops, size_t mem,
               char out[CL_PW_HASH_MAX], cl_err *err);
/* 0 if pw matches hash; CL_EDENIED if not; CL_EMALFORMED if hash is not an
 * argon2id hash string. */
int cl_pw_verify(const char *hash, const char *pw, size_t len, cl_err *err);
/* 1 if hash was made with parameters other than ops/mem (rehash it at the
 * next good login), 0 if not, -1 if it is not an argon2id hash. */
int cl_pw_needs_rehash(const char *hash, unsigned long long ops, size_t mem);

/* ---- TOTP ---- */

enum cl_totp_alg { CL_TOTP_SHA1, CL_TOTP_SHA256, CL_TOTP_SHA512 };

typedef struct cl_totp {
  int alg;               /* enum cl_totp_alg */
  const uint8_t *secret; /* borrowed */
  size_t len;            /* 1..64 bytes */
  unsigned digits;       /* 6, 7 or 8 */
  unsigned period;       /* seconds a step lasts; 0: 30 */
} cl_totp;

/* HOTP(secret, counter): the dynamically truncated HMAC mod 10^digits. */
uint32_t cl_hotp(const cl_totp *t, uint64_t counter);
/* The code at unix time `now` (zero-padded to t->digits). */
void cl_totp_code(const cl_totp *t, int64_t now, char out[9]);
/* Checks code at unix time now, accepting the steps now-window..now+window
 * that are after *last_step (a step used once is never accepted again);
 * on success *last_step = the matched step. 0, or CL_EDENIED (wrong,
 * reused, or not digits) with err saying which; CL_EINVAL (a bad t). */
int cl_totp_verify(const cl_totp *t, int64_t now, const char *code, unsigned window,
                   uint64_t *last_step, cl_err *err);
/* The otpauth:// URI an authenticator app enrolls from (Google's Key URI
 * format: base32 secret, issuer, algorithm, digits, period). *out
 * returned-owned (free). CL_ENOMEM, CL_EINVAL. */
int cl_totp_uri(const cl_totp *t, const char *issuer, const char *account, char **out, cl_err *err);

/* ---- session tokens ---- */

#define CL_TOKEN_MAX_TTL 900 /* seconds */

/* A token for claims (borrowed; must hold "sub"; iss, iat, exp and jti are
 * set here: exp = now + ttl, ttl clamped to 1..CL_TOKEN_MAX_TTL), signed by
 * s with key id kid. *out returned-owned (free); jti gets the token id (32
 * hex digits) when not NULL. Errors: CL_EINVAL (no sub), CL_ENOMEM. */
int cl_token_issue(const cl_signer *s, const char *kid, const char *issuer, json_t *claims,
                   int64_t now, int64_t ttl, char **out, char jti[33], cl_err *err);
/* Checks a token against public key pk at unix time now (60 s of clock
 * skew allowed on iat): its form, alg EdDSA, the signature, exp > now,
 * exp - iat <= CL_TOKEN_MAX_TTL. *claims returned-owned. Errors:
 * CL_EUNAUTH with err saying what was wrong (malformed, alg, signature,
 * expired, not yet valid, too long-lived). */
int cl_token_verify(const uint8_t pk[CL_PUBKEY_SIZE], const char *token, int64_t now,
                    json_t **claims, cl_err *err);

/* ---- building blocks (exposed for tests) ---- */

/* SHA-1 (FIPS 180-4): only for HMAC-SHA-1 in TOTP, which RFC 6238's
 * deployed authenticators default to; nothing else in clinlog uses it. */
void cl_sha1(const uint8_t *m, size_t n, uint8_t out[20]);
void cl_hmac_sha1(const uint8_t *key, size_t klen, const uint8_t *m, size_t n, uint8_t out[20]);

#endif

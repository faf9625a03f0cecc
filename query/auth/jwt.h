/* SMART Backend Services client assertions: verifying the signed JWT a
 * backend client sends to the token endpoint (client_credentials grant,
 * client_assertion_type urn:ietf:params:oauth:client-assertion-type:
 * jwt-bearer) against the JWK Set of public keys it registered.
 *
 * Standards: RFC 7515 (JWS, compact serialization only), RFC 7517 (JWK,
 * JWK Set), RFC 7518 (RS256, RS384, ES256, ES384), RFC 7519 (JWT claims),
 * RFC 7523 section 3 (JWT client authentication), as
 * https://hl7.org/fhir/smart-app-launch/backend-services.html profiles them.
 * The cryptography is OpenSSL 3's libcrypto (EVP, provider keys only).
 *
 * What is accepted:
 *
 *   | where          | rule                                                  |
 *   |----------------|-------------------------------------------------------|
 *   | JWK Set        | JSON object, at most CL_JWKS_MAX_LEN bytes, "keys": 1 |
 *   |                | to CL_JWKS_MAX_KEYS public keys; other members of the |
 *   |                | set, and unknown members of a key (x5c, x5t...), are  |
 *   |                | ignored                                               |
 *   | every key      | no private member (d p q dp dq qi oth k); "kid" a     |
 *   |                | string of 1..127 bytes, unique in the set; "use"      |
 *   |                | "sig" if present; "key_ops" (if present) strings,     |
 *   |                | without repeats, one of them "verify"; "alg" (if      |
 *   |                | present) one of the four below and fitting the key    |
 *   | kty "RSA"      | n, e big-endian without leading zero octets (RFC 7518 |
 *   |                | 6.3.1); n odd, 2048..8192 bits; e odd, 65537 <= e <   |
 *   |                | 2^256 (NIST SP 800-56B)                               |
 *   | kty "EC"       | crv "P-256" or "P-384"; x, y exactly 32 / 48 octets   |
 *   |                | (RFC 7518 6.2.1.2); (x, y) a point of the curve       |
 *   |                | (OpenSSL's full public key check)                     |
 *   | JWS            | at most CL_JWT_MAX_LEN bytes; header.payload.signature|
 *   |                | each strict base64url (below); header and payload     |
 *   |                | JSON objects without repeated member names            |
 *   | header         | alg RS256 RS384 ES256 ES384 (RS384 and ES384 are what |
 *   |                | SMART requires servers to support); kid naming a key  |
 *   |                | of the set whose kind fits alg (RS*: RSA; ES256:      |
 *   |                | P-256; ES384: P-384) and whose "alg", if registered,  |
 *   |                | is this alg; typ, if present, "JWT" or                |
 *   |                | "application/jwt" (case-insensitive, RFC 7515 4.1.9); |
 *   |                | no "crit", no "cty". jku, jwk, x5u, x5c are ignored:  |
 *   |                | keys come only from the registered set                |
 *   | signature      | RS*: RSASSA-PKCS1-v1_5, exactly the modulus' length;  |
 *   |                | ES*: raw r || s, exactly 64 / 96 octets (RFC 7518 3.4;|
 *   |                | a DER-encoded ECDSA signature is refused)             |
 *   | claims         | iss == sub == client_id (strings of 1..255 bytes);    |
 *   |                | aud == audience, or an array of strings holding it;   |
 *   |                | exp an integer, now - skew < exp <= now + 300 + skew  |
 *   |                | (SMART: at most five minutes ahead); nbf and iat, if  |
 *   |                | present, integers not after now + skew; jti a string  |
 *   |                | of 1..255 bytes. Skew: CL_JWT_SKEW seconds. Numeric   |
 *   |                | dates must be JSON integers (SMART's "Integer")       |
 *
 * Base64url (RFC 7515 section 2) is strict: the URL-safe alphabet only, no
 * '=' padding (refused, not tolerated), no whitespace or line breaks, unused
 * trailing bits zero, so every value has exactly one encoding.
 *
 * What is the caller's: replay. SMART requires the server to refuse a jti it
 * has seen for the same client before the assertion expires; keep (iss, jti)
 * until exp + CL_JWT_SKEW and refuse repeats. Also the caller's: which
 * client_id to check (the one the request names) and the audience, which
 * must be the token endpoint's URL exactly as clients are told it (compared
 * byte for byte, RFC 7519 4.1.3). An ECDSA signature (r, n - s) verifies as
 * well as (r, s): never use the signature bytes as an identifier.
 *
 * Thread-safety: no global state. A cl_jwks is immutable once parsed; any
 * number of threads may verify against the same one concurrently. OpenSSL's
 * error queue is left as it was found (ERR_set_mark / ERR_pop_to_mark). */
#ifndef CL_QUERY_AUTH_JWT_H
#define CL_QUERY_AUTH_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "store/err.h"

#define CL_JWKS_MAX_LEN (64 * 1024) /* bytes of JWK Set text */
#define CL_JWKS_MAX_KEYS 32
#define CL_JWT_MAX_LEN (16 * 1024) /* bytes of compact JWS */
#define CL_JWT_SKEW 60             /* seconds of clock skew allowed */
#define CL_JWT_MAX_AHEAD 300       /* exp at most this far after now (+ skew) */

typedef struct cl_jwks cl_jwks;

/* Parses a JWK Set (RFC 7517 section 5), the JSON text json[0..len) (need
 * not be NUL-terminated), of the public keys a client registered, under
 * the rules in the table above. A key with private members is refused: a
 * client must never send its private key. On success *out is
 * returned-owned (cl_jwks_free). Errors: CL_EINVAL (NULL argument);
 * CL_EMALFORMED, err naming the place, e.g. "keys[1].crv: \"P-521\" is not
 * supported (P-256, P-384)", "keys[0].n: RSA modulus of 1024 bits, at
 * least 2048 required", "keys[2].d: a private key member; register the
 * public key only"; CL_ENOMEM. On error *out is NULL and nothing stays
 * allocated. Thread-safe. */
CL_MUST_CHECK int cl_jwks_parse(const char *json, size_t len, cl_jwks **out, cl_err *err);

/* Frees k; NULL is a no-op. */
void cl_jwks_free(cl_jwks *k);

/* The number of keys in k (1..CL_JWKS_MAX_KEYS). */
size_t cl_jwks_count(const cl_jwks *k);

/* The kid of key i (< cl_jwks_count(k)), in the set's order: a view valid
 * until cl_jwks_free(k). */
const char *cl_jwks_kid(const cl_jwks *k, size_t i);

/* What a verified assertion said. Strings are NUL-terminated; the sizes
 * bound what verification accepts. */
typedef struct cl_jwt_claims {
  char iss[256]; /* == sub == the client_id checked */
  char sub[256];
  char jti[256]; /* 1..255 bytes: the caller's replay check keys on it */
  char kid[128]; /* the registered key that verified the signature */
  char alg[8];   /* "RS256", "RS384", "ES256" or "ES384" */
  int64_t exp;   /* seconds since the epoch */
  int64_t iat;   /* seconds since the epoch; 0 when absent */
  int64_t nbf;   /* seconds since the epoch; 0 when absent */
} cl_jwt_claims;

/* Verifies the compact-serialized JWS client assertion jwt[0..len) (need
 * not be NUL-terminated; no surrounding whitespace) against `keys`, for
 * client `client_id` at token endpoint URL `audience`, at time `now`
 * (seconds since the epoch: time(NULL) in production, anything in tests),
 * under the rules in the table above. Checks run in this order: form,
 * header, signature, claims; claims are only looked at once the signature
 * verified. All arguments borrowed. On success *out (may be NULL) is
 * filled. Each refusal has its own message, prefixed "client assertion: ",
 * e.g. "client assertion: signature does not verify with key \"k1\"",
 * "client assertion: expired at 2026-12-04T10:00:00Z (now
 * 2026-12-04T10:05:00Z, 60 s of skew allowed)", "client assertion: aud
 * \"x\" is not this server's token URL"; strings from the token are quoted
 * with control characters escaped and cut to 48 bytes.
 * Errors: CL_EINVAL (NULL argument); CL_EMALFORMED (not a JWS: longer than
 * CL_JWT_MAX_LEN, not three segments, not strict base64url, header or
 * payload not a JSON object); CL_EUNAUTH (anything else: alg, typ, crit,
 * kid, key kind, signature, claims); CL_ENOMEM. On error *out is zeroed.
 * Both refusals are an invalid client assertion: OAuth error
 * "invalid_client" (RFC 7521 section 4.2.1). Thread-safe. */
CL_MUST_CHECK int cl_jwt_verify_assertion(const char *jwt, size_t len, const cl_jwks *keys,
                                          const char *client_id, const char *audience, int64_t now,
                                          cl_jwt_claims *out, cl_err *err);

/* ---- for tests only ---- */

/* The JWS layer of cl_jwt_verify_assertion alone, with the key named by
 * `kid` instead of by the header: the form, the header's alg (one of the
 * four, fitting the key), no crit, and the signature. The header's kid and
 * typ and every claim are ignored. Exposed for the RFC 7515 Appendix A
 * known-answer vectors, whose headers name no key; it authenticates
 * nothing: never use it outside tests. Errors as cl_jwt_verify_assertion. */
CL_MUST_CHECK int cl_jwt_verify_signature_only(const char *jwt, size_t len, const cl_jwks *keys,
                                               const char *kid, cl_err *err);

#endif

/* The fixture of the SMART client-assertion tests (test_jwt.c,
 * test_jwt_format.c): an independent signer. Keys are generated here with
 * OpenSSL, their public JWKs written out here (base64url of n, e, x, y), and
 * tokens signed here with EVP_DigestSign (ECDSA's DER turned into raw
 * r || s here), then checked by query/auth/jwt.c. Helpers fail the running
 * Criterion test on an error. */
#ifndef CL_TESTS_QUERY_JWT_FIXTURE_H
#define CL_TESTS_QUERY_JWT_FIXTURE_H

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <stddef.h>

#include "query/auth/jwt.h"

#define NOW 1796378400 /* 2026-12-04T10:00:00Z */
#define CID "backend-service-42"
#define AUD "https://ehr.example.org/auth/token"
#define B64URL sodium_base64_VARIANT_URLSAFE_NO_PADDING

/* The suite's keys (jwt_setup), and KEYS: their JWK Set, kids "rsa",
 * "p256", "p384". */
extern EVP_PKEY *RSA2048, *P256, *P384;
extern cl_jwks *KEYS;

/* The base64url (no padding) of p[0..n), malloc'd. */
char *b64(const void *p, size_t n);

/* Sets member name of j to the base64url of bn, left-padded to pad bytes
 * (0: its minimal length). */
void set_bn(json_t *j, const char *name, const BIGNUM *bn, int pad);

/* pk's BIGNUM parameter `name` (OSSL_PKEY_PARAM_*), to free. */
BIGNUM *bn_param(EVP_PKEY *pk, const char *name);

/* The public JWK of pk, with kid. */
json_t *jwk(EVP_PKEY *pk, const char *kid);

/* JWK Set text of the JWKs given (stolen), NULL-terminated. */
char *jwks_text(json_t *first, ...);

/* A new key: RSA of rsa_bits when type is "RSA", else EC on `curve`. */
EVP_PKEY *keygen(const char *type, size_t rsa_bits, const char *curve);

/* header.payload.signature over the JSON texts given, signed with pk and
 * alg's digest; ECDSA signatures raw r || s unless der. */
char *sign(EVP_PKEY *pk, const char *alg, const char *header, const char *payload, int der);

/* The claims of a good assertion for CID at AUD, NOW. */
json_t *claims(void);

/* A token with header and payload given (both stolen). */
char *token_hp(EVP_PKEY *pk, const char *alg, json_t *header, json_t *payload, int der);

/* A token with header {alg, typ JWT, kid} and payload c (stolen). */
char *token(EVP_PKEY *pk, const char *alg, const char *kid, json_t *c);

/* cl_jwt_verify_assertion of t for CID at AUD at NOW against KEYS. */
int verify(const char *t, cl_jwt_claims *c, cl_err *err);

/* t (freed) verifies, with CID as its issuer. */
void accepted(char *t);

/* t (freed) is refused with code and a message holding `what`. */
void refused(char *t, int code, const char *what);

/* A token with the claims changed: member name set to v (stolen; NULL
 * deletes it), signed ES256 with "p256". */
char *with_claim(const char *name, json_t *v);

/* The suite's .init: the three keys and KEYS, their JWK Set; .fini frees
 * them. */
void jwt_setup(void);

void jwt_teardown(void);

#endif

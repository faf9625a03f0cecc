/* See jwt_fixture.h. */
#include "tests/query/jwt_fixture.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/alloc.h"

EVP_PKEY *RSA2048, *P256, *P384;
cl_jwks *KEYS; /* "rsa", "p256", "p384" */

/* ------------------------------------------------------------ helpers */

char *b64(const void *p, size_t n) {
  size_t cap = sodium_base64_ENCODED_LEN(n, B64URL);
  char *s = malloc(cap);
  cr_assert_not_null(s);
  sodium_bin2base64(s, cap, p, n, B64URL);
  return s;
}

/* Sets member name of j to the base64url of bn, left-padded to pad bytes
 * (0: its minimal length). */
void set_bn(json_t *j, const char *name, const BIGNUM *bn, int pad) {
  uint8_t buf[1024];
  int n = pad ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
  cr_assert_gt(n, 0);
  char *s = b64(buf, (size_t)n);
  json_object_set_new(j, name, json_string(s));
  free(s);
}

BIGNUM *bn_param(EVP_PKEY *pk, const char *name) {
  BIGNUM *bn = NULL;
  cr_assert_eq(EVP_PKEY_get_bn_param(pk, name, &bn), 1, "%s", name);
  return bn;
}

/* The public JWK of pk, with kid. */
json_t *jwk(EVP_PKEY *pk, const char *kid) {
  json_t *j = json_pack("{s:s}", "kid", kid);
  const char *names[2];
  int pad = 0;
  if (EVP_PKEY_is_a(pk, "RSA")) {
    json_object_set_new(j, "kty", json_string("RSA"));
    names[0] = OSSL_PKEY_PARAM_RSA_N, names[1] = OSSL_PKEY_PARAM_RSA_E;
  } else {
    pad = EVP_PKEY_get_bits(pk) / 8;
    json_object_set_new(j, "kty", json_string("EC"));
    json_object_set_new(j, "crv", json_string(pad == 32 ? "P-256" : "P-384"));
    names[0] = OSSL_PKEY_PARAM_EC_PUB_X, names[1] = OSSL_PKEY_PARAM_EC_PUB_Y;
  }
  for (int i = 0; i < 2; i++) {
    BIGNUM *bn = bn_param(pk, names[i]);
    set_bn(j, pad ? (i ? "y" : "x") : (i ? "e" : "n"), bn, pad);
    BN_free(bn);
  }
  return j;
}

/* JWK Set text of the JWKs given (stolen), NULL-terminated. */
char *jwks_text(json_t *first, ...) {
  json_t *keys = json_array();
  va_list ap;
  va_start(ap, first);
  for (json_t *k = first; k != NULL; k = va_arg(ap, json_t *))
    json_array_append_new(keys, k);
  va_end(ap);
  json_t *set = json_pack("{s:o}", "keys", keys);
  char *s = json_dumps(set, JSON_COMPACT);
  json_decref(set);
  return s;
}

EVP_PKEY *keygen(const char *type, size_t rsa_bits, const char *curve) {
  EVP_PKEY *pk = curve ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve)
                       : EVP_PKEY_Q_keygen(NULL, NULL, type, rsa_bits);
  cr_assert_not_null(pk);
  return pk;
}

/* header.payload.signature over the JSON texts given, signed with pk and
 * alg's digest; ECDSA signatures raw r || s unless der. */
char *sign(EVP_PKEY *pk, const char *alg, const char *header, const char *payload, int der) {
  char *h = b64(header, strlen(header)), *p = b64(payload, strlen(payload));
  size_t n = strlen(h) + 1 + strlen(p);
  char *in = malloc(n + 1);
  snprintf(in, n + 1, "%s.%s", h, p);
  free(h);
  free(p);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  size_t sl = 0;
  cr_assert_eq(EVP_DigestSignInit_ex(md, NULL, strstr(alg, "256") ? "SHA256" : "SHA384", NULL, NULL,
                                     pk, NULL),
               1);
  cr_assert_eq(EVP_DigestSign(md, NULL, &sl, (const uint8_t *)in, n), 1);
  uint8_t *sig = malloc(sl);
  cr_assert_eq(EVP_DigestSign(md, sig, &sl, (const uint8_t *)in, n), 1);
  EVP_MD_CTX_free(md);
  if (alg[0] == 'E' && !der) {
    const uint8_t *q = sig;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)sl);
    cr_assert_not_null(es);
    int half = EVP_PKEY_get_bits(pk) / 8;
    cr_assert_eq(BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, half), half);
    cr_assert_eq(BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + half, half), half);
    sl = 2 * (size_t)half;
    ECDSA_SIG_free(es);
  }
  char *s = b64(sig, sl);
  free(sig);
  char *t = malloc(n + 1 + strlen(s) + 1);
  snprintf(t, n + 1 + strlen(s) + 1, "%s.%s", in, s);
  free(in);
  free(s);
  return t;
}

/* The claims of a good assertion for CID at AUD, NOW. */
json_t *claims(void) {
  return json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "iss", CID, "sub", CID, "aud", AUD, "exp",
                   (json_int_t)NOW + 240, "iat", (json_int_t)NOW, "jti",
                   "3c9d6ab4-1f0e-4f7e-9a51-7d2c80e6b1aa");
}

/* A token with header and payload given (both stolen). */
char *token_hp(EVP_PKEY *pk, const char *alg, json_t *header, json_t *payload, int der) {
  char *h = json_dumps(header, JSON_COMPACT), *p = json_dumps(payload, JSON_COMPACT);
  char *t = sign(pk, alg, h, p, der);
  free(h);
  free(p);
  json_decref(header);
  json_decref(payload);
  return t;
}

/* A token with header {alg, typ JWT, kid} and payload c (stolen). */
char *token(EVP_PKEY *pk, const char *alg, const char *kid, json_t *c) {
  return token_hp(pk, alg, json_pack("{s:s, s:s, s:s}", "alg", alg, "typ", "JWT", "kid", kid), c,
                  0);
}

int verify(const char *t, cl_jwt_claims *c, cl_err *err) {
  return cl_jwt_verify_assertion(t, strlen(t), KEYS, CID, AUD, NOW, c, err);
}

void accepted(char *t) {
  cl_jwt_claims c;
  cl_err err;
  int rc = verify(t, &c, &err);
  cr_assert_eq(rc, 0, "%s (%s)", err.msg, t);
  cr_assert_str_eq(c.iss, CID);
  free(t);
}

/* t (freed) is refused with code and a message holding `what`. */
void refused(char *t, int code, const char *what) {
  cl_jwt_claims c;
  cl_err err;
  memset(&c, 'x', sizeof c);
  int rc = verify(t, &c, &err);
  cr_assert_eq(rc, code, "want %s for \"%s\", got %s (%s)", cl_errname(code), what, cl_errname(rc),
               rc ? err.msg : "");
  cr_assert(strstr(err.msg, what) != NULL, "message \"%s\" lacks \"%s\"", err.msg, what);
  cr_assert(strncmp(err.msg, "client assertion: ", 18) == 0, "%s", err.msg);
  cr_assert_eq(c.iss[0], '\0', "claims not zeroed on error");
  cr_assert_eq(c.exp, 0);
  cr_assert_eq(ERR_peek_error(), 0, "OpenSSL error queue left dirty");
  free(t);
}

/* A token with the claims changed: member name set to v (stolen; NULL
 * deletes it), signed ES256 with "p256". */
char *with_claim(const char *name, json_t *v) {
  json_t *c = claims();
  if (v)
    json_object_set_new(c, name, v);
  else
    json_object_del(c, name);
  return token(P256, "ES256", "p256", c);
}

void jwt_setup(void) {
  RSA2048 = keygen("RSA", 2048, NULL);
  P256 = keygen(NULL, 0, "P-256");
  P384 = keygen(NULL, 0, "P-384");
  char *s = jwks_text(jwk(RSA2048, "rsa"), jwk(P256, "p256"), jwk(P384, "p384"), NULL);
  cl_err err;
  cr_assert_eq(cl_jwks_parse(s, strlen(s), &KEYS, &err), 0, "%s", err.msg);
  free(s);
}

void jwt_teardown(void) {
  cl_jwks_free(KEYS);
  EVP_PKEY_free(RSA2048);
  EVP_PKEY_free(P256);
  EVP_PKEY_free(P384);
}

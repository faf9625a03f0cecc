/* Tests of query/auth/jwt.c, continued (jwt_fixture.h): what is not a JWS
 * (malformed compact serializations, a header or payload that is not a JSON
 * object, the size limit, null arguments), and the RFC 7515 Appendix A.2
 * (RS256) and A.3 (ES256) vectors, which check both the module and the
 * fixture's signer against the RFC. */
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

#include "query/auth/jwt.h"
#include "store/alloc.h"
#include "tests/query/jwt_fixture.h"

TestSuite(jwt, .init = jwt_setup, .fini = jwt_teardown, .timeout = 60);

/* ------------------------------------------------------------ not a JWS */

/* t with text inserted at offset at. */
static char *insert(char *t, size_t at, const char *text) {
  char *r = malloc(strlen(t) + strlen(text) + 1);
  sprintf(r, "%.*s%s%s", (int)at, t, text, t + at);
  free(t);
  return r;
}

Test(jwt, malformed_jws) {
  char *t = token(P256, "ES256", "p256", claims());
  *strrchr(t, '.') = '\0';
  refused(t, CL_EMALFORMED, "2 segments, a JWS has 3");
  t = token(P256, "ES256", "p256", claims());
  refused(insert(t, strlen(t), ".x"), CL_EMALFORMED, "4 segments");
  t = token(P256, "ES256", "p256", claims());
  refused(insert(t, 0, "a.b."), CL_EMALFORMED,
          "5 segments, a JWS has 3 (header.payload."
          "signature); an encrypted JWT (JWE) is not");
  refused(strdup(""), CL_EMALFORMED, "1 segment, a JWS has 3");
  /* base64url: standard alphabet, padding, whitespace, non-canonical bits */
  t = token(P256, "ES256", "p256", claims());
  t[3] = '+';
  refused(t, CL_EMALFORMED, "header is not base64url");
  t = token(P256, "ES256", "p256", claims());
  refused(insert(t, strchr(t, '.') - t, "="), CL_EMALFORMED, "header is not base64url");
  t = token(P256, "ES256", "p256", claims());
  refused(insert(t, strlen(t), "=="), CL_EMALFORMED, "signature is not base64url");
  t = token(P256, "ES256", "p256", claims());
  refused(insert(t, strchr(t, '.') - t + 5, "\n"), CL_EMALFORMED, "payload is not base64url");
  t = token(P256, "ES256", "p256", claims());
  refused(insert(t, 0, " "), CL_EMALFORMED, "header is not base64url");
  /* 64 bytes are 86 characters whose last holds 4 unused bits: set one */
  t = token(P256, "ES256", "p256", claims());
  char *last = t + strlen(t) - 1;
  cr_assert_eq(strlen(strrchr(t, '.') + 1), 86);
  *last = *last == 'A' ? 'B' : (char)(*last + 1);
  refused(t, CL_EMALFORMED, "signature is not base64url");
}

Test(jwt, header_or_payload_not_a_json_object) {
  char *t = sign(P256, "ES256", "not json", "{}", 0);
  refused(t, CL_EMALFORMED, "client assertion: header: not JSON");
  t = sign(P256, "ES256", "[\"alg\",\"ES256\"]", "{}", 0);
  refused(t, CL_EMALFORMED, "header: not a JSON object");
  t = sign(P256, "ES256", "{\"alg\":\"ES256\",\"kid\":\"p256\",\"alg\":\"none\"}", "{}", 0);
  refused(t, CL_EMALFORMED, "header: not JSON: duplicate object key");
  t = sign(P256, "ES256", "{\"alg\":\"ES256\",\"kid\":\"p256\"}", "", 0);
  refused(t, CL_EMALFORMED, "payload: not JSON");
  t = sign(P256, "ES256", "{\"alg\":\"ES256\",\"kid\":\"p256\"}", "{\"iss\":1} trailing", 0);
  refused(t, CL_EMALFORMED, "payload: not JSON");
  t = sign(P256, "ES256", "{\"alg\":\"ES256\",\"kid\":\"p256\"}",
           "{\"iss\":\"a\",\"iss\":\"" CID "\"}", 0);
  refused(t, CL_EMALFORMED, "payload: not JSON: duplicate object key");
}

Test(jwt, size_limit) {
  char pad[CL_JWT_MAX_LEN];
  memset(pad, 'p', sizeof pad - 1);
  pad[sizeof pad - 1] = '\0';
  refused(with_claim("pad", json_string(pad)), CL_EMALFORMED, "bytes, at most 16384");
  /* just under the limit is fine */
  memset(pad, '\0', sizeof pad);
  memset(pad, 'p', 11000);
  accepted(with_claim("pad", json_string(pad)));
}

Test(jwt, null_arguments) {
  cl_err err;
  char *t = token(P256, "ES256", "p256", claims());
  cr_assert_eq(cl_jwt_verify_assertion(NULL, 0, KEYS, CID, AUD, NOW, NULL, &err), CL_EINVAL);
  cr_assert_eq(cl_jwt_verify_assertion(t, strlen(t), NULL, CID, AUD, NOW, NULL, &err), CL_EINVAL);
  cr_assert_eq(cl_jwt_verify_assertion(t, strlen(t), KEYS, NULL, AUD, NOW, NULL, &err), CL_EINVAL);
  cr_assert_eq(cl_jwt_verify_assertion(t, strlen(t), KEYS, CID, NULL, NOW, NULL, &err), CL_EINVAL);
  cl_jwks *k;
  cr_assert_eq(cl_jwks_parse(NULL, 0, &k, &err), CL_EINVAL);
  cr_assert_null(k);
  free(t);
}

/* ------------------------------------------------------------ RFC 7515 */

/* RFC 7515 Appendix A.2 (RS256) and A.3 (ES256): the public keys (as
 * JWKs, with a kid added) and the complete JWSs. */
#define RFC_PAYLOAD                                                                                \
  "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVl"   \
  "fQ"
#define A2_N                                                                                       \
  "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d"  \
  "4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexM"  \
  "dbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvU"  \
  "K-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"
#define A2_JWS                                                                                     \
  "eyJhbGciOiJSUzI1NiJ9." RFC_PAYLOAD                                                              \
  ".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5"  \
  "jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1"  \
  "L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYE"  \
  "UipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw"
#define A3_X "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"
#define A3_Y "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
#define A3_D "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"
#define A3_JWS                                                                                     \
  "eyJhbGciOiJFUzI1NiJ9." RFC_PAYLOAD                                                              \
  ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"
#define RFC_JWKS                                                                                   \
  "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"a2\",\"n\":\"" A2_N "\",\"e\":\"AQAB\"},"                 \
  "{\"kty\":\"EC\",\"kid\":\"a3\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\"}]}"

Test(jwt, rfc7515_known_answers) {
  cl_jwks *k;
  cl_err err;
  cr_assert_eq(cl_jwks_parse(RFC_JWKS, strlen(RFC_JWKS), &k, &err), 0, "%s", err.msg);
  const char *jws[] = {A2_JWS, A3_JWS}, *kid[] = {"a2", "a3"};
  for (int i = 0; i < 2; i++) {
    size_t n = strlen(jws[i]);
    cr_assert_eq(cl_jwt_verify_signature_only(jws[i], n, k, kid[i], &err), 0, "%s: %s", kid[i],
                 err.msg);
    /* the other key does not verify it (wrong kind) */
    cr_assert_eq(cl_jwt_verify_signature_only(jws[i], n, k, kid[1 - i], &err), CL_EUNAUTH);
    cr_assert(strstr(err.msg, "needs an"), "%s", err.msg);
    /* one bit of the last signature byte flipped */
    char *t = strdup(jws[i]);
    /* the last character holds 2 bits: Rw -> Rg, 1Q -> 1A stay canonical */
    t[n - 1] = t[n - 1] == 'w' ? 'g' : 'A';
    cr_assert_eq(cl_jwt_verify_signature_only(t, n, k, kid[i], &err), CL_EUNAUTH, "%s", kid[i]);
    cr_assert(strstr(err.msg, "signature does not verify"), "%s", err.msg);
    free(t);
    /* as a client assertion it names no key (and expired in 2011) */
    cr_assert_eq(cl_jwt_verify_assertion(jws[i], n, k, "joe", AUD, 1300819000, NULL, &err),
                 CL_EUNAUTH);
    cr_assert(strstr(err.msg, "header has no kid"), "%s", err.msg);
  }
  cl_jwks_free(k);
}

/* ------------------------------------------------------------ JWK Set */

/* The JWK Set text holding key j (stolen) is refused with `what`. */
static void jwks_refused(const char *text, const char *what) {
  cl_jwks *k = (cl_jwks *)1;
  cl_err err;
  int rc = cl_jwks_parse(text, strlen(text), &k, &err);
  cr_assert_eq(rc, CL_EMALFORMED, "want CL_EMALFORMED for \"%s\", got %s", what, cl_errname(rc));
  cr_assert_null(k);
  cr_assert(strstr(err.msg, what) == err.msg, "message \"%s\" does not start \"%s\"", err.msg,
            what);
  cr_assert_eq(ERR_peek_error(), 0, "OpenSSL error queue left dirty");
}

static void key_refused(json_t *j, const char *what) {
  char *s = jwks_text(jwk(P256, "fine"), j, NULL);
  jwks_refused(s, what);
  free(s);
}

/* jwk(pk, kid) with member name set to v (stolen; NULL deletes). */
static json_t *jwk_with(EVP_PKEY *pk, const char *name, json_t *v) {
  json_t *j = jwk(pk, "k1");
  if (v)
    json_object_set_new(j, name, v);
  else
    json_object_del(j, name);
  return j;
}

Test(jwt, jwks_private_members_refused) {
  static const char *priv[] = {"d", "p", "q", "dp", "dq", "qi", "oth"};
  for (size_t i = 0; i < sizeof priv / sizeof priv[0]; i++)
    key_refused(jwk_with(RSA2048, priv[i], json_string("AQAB")), "keys[1].");
  key_refused(jwk_with(RSA2048, "d", json_string("AQAB")),
              "keys[1].d: a private key member; register the public key only");
  /* the RFC 7515 A.3 key as published, with its d */
  jwks_refused("{\"keys\":[{\"kty\":\"EC\",\"kid\":\"a3\",\"crv\":\"P-256\",\"x\":\"" A3_X
               "\",\"y\":\"" A3_Y "\",\"d\":\"" A3_D "\"}]}",
               "keys[0].d: a private key member");
  key_refused(json_pack("{s:s, s:s, s:s}", "kty", "oct", "kid", "k", "k", "c2VjcmV0"),
              "keys[1].k: a private key member");
}

Test(jwt, jwks_rsa_rules) {
  EVP_PKEY *small = keygen("RSA", 1024, NULL);
  key_refused(jwk(small, "old"), "keys[1].n: RSA modulus of 1024 bits, at least 2048 required");
  EVP_PKEY_free(small);
  key_refused(jwk_with(RSA2048, "e", json_string("Aw")),
              "keys[1].e: the public exponent must be odd, at least 65537");
  key_refused(jwk_with(RSA2048, "e", json_string("AQAA")), "keys[1].e: the public exponent");
  key_refused(jwk_with(RSA2048, "e", json_string("AAEAAQ")), "keys[1].e: has a leading zero");
  key_refused(jwk_with(RSA2048, "e", NULL), "keys[1].e: missing");
  key_refused(jwk_with(RSA2048, "n", json_integer(3)), "keys[1].n: not a string");
  /* a leading zero octet in n */
  json_t *j = jwk(RSA2048, "z");
  BIGNUM *n = bn_param(RSA2048, OSSL_PKEY_PARAM_RSA_N);
  set_bn(j, "n", n, 257);
  BN_free(n);
  key_refused(j, "keys[1].n: has a leading zero octet");
  /* an even modulus */
  uint8_t even[256];
  memset(even, 0xA5, sizeof even);
  even[255] = 0x10;
  char *e = b64(even, sizeof even);
  key_refused(jwk_with(RSA2048, "n", json_string(e)), "keys[1].n: even");
  free(e);
  /* an ES256 alg on an RSA key */
  key_refused(jwk_with(RSA2048, "alg", json_string("ES256")),
              "keys[1].alg: ES256 does not fit an RSA key");
  key_refused(jwk_with(RSA2048, "alg", json_string("PS256")),
              "keys[1].alg: \"PS256\" is not supported (RS256, RS384)");
}

Test(jwt, jwks_ec_rules) {
  key_refused(json_pack("{s:s, s:s, s:s, s:s, s:s}", "kty", "EC", "kid", "k", "crv", "P-521", "x",
                        "AA", "y", "AA"),
              "keys[1].crv: \"P-521\" is not supported (P-256, P-384)");
  key_refused(jwk_with(P256, "crv", NULL), "keys[1].crv: missing");
  key_refused(jwk_with(P256, "crv", json_string("P-384")), "keys[1].x: 32 octets; P-384 "
                                                           "coordinates are 48");
  /* the RFC's point with y changed: off the curve */
  jwks_refused("{\"keys\":[{\"kty\":\"EC\",\"kid\":\"a3\",\"crv\":\"P-256\",\"x\":\"" A3_X
               "\",\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5aA\"}]}",
               "keys[0].x,y: not a point of P-256");
  /* the point (0, 0) */
  char *zero = b64((uint8_t[48]){0}, 48);
  key_refused(json_pack("{s:s, s:s, s:s, s:s, s:s}", "kty", "EC", "kid", "k", "crv", "P-384", "x",
                        zero, "y", zero),
              "keys[1].x,y: not a point of P-384");
  free(zero);
  /* x with padding, in the standard alphabet, with a line break */
  json_t *j = jwk(P256, "k1");
  char x[128];
  snprintf(x, sizeof x, "%s=", json_string_value(json_object_get(j, "x")));
  json_decref(j);
  key_refused(jwk_with(P256, "x", json_string(x)), "keys[1].x: not base64url");
  key_refused(jwk_with(P256, "y", json_string("ab+/")), "keys[1].y: not base64url");
  key_refused(jwk_with(P256, "y", json_string("ab\ncd")), "keys[1].y: not base64url");
  key_refused(jwk_with(P256, "alg", json_string("ES384")),
              "keys[1].alg: ES384 does not fit an EC P-256 key");
}

Test(jwt, jwks_kid_use_key_ops) {
  key_refused(jwk_with(P384, "kid", NULL), "keys[1].kid: missing");
  key_refused(jwk_with(P384, "kid", json_string("")), "keys[1].kid: not a string of 1 to 127");
  key_refused(jwk_with(P384, "kid", json_string("fine")), "keys[1].kid: \"fine\" also names "
                                                          "keys[0]");
  key_refused(jwk_with(P384, "use", json_string("enc")), "keys[1].use: \"enc\", only \"sig\"");
  key_refused(jwk_with(P384, "key_ops", json_pack("[s]", "sign")),
              "keys[1].key_ops: does not allow \"verify\"");
  key_refused(jwk_with(P384, "key_ops", json_pack("[s, s]", "verify", "verify")),
              "keys[1].key_ops: \"verify\" repeated");
  key_refused(jwk_with(P384, "key_ops", json_string("verify")), "keys[1].key_ops: not an array");
  key_refused(jwk_with(P384, "kty", json_string("OKP")),
              "keys[1].kty: \"OKP\" is not supported (RSA, EC)");
  key_refused(jwk_with(P384, "kty", NULL), "keys[1].kty: missing");
  key_refused(json_string("key"), "keys[1]: not a JSON object");
}

Test(jwt, jwks_set_rules) {
  jwks_refused("{\"keys\":[]}", "keys: 0 keys, a client registers 1 to 32");
  jwks_refused("{\"key\":[]}", "keys: missing");
  jwks_refused("{\"keys\":{}}", "keys: not an array");
  jwks_refused("[]", "JWK Set: not a JSON object");
  jwks_refused("{\"keys\":[}", "JWK Set: not JSON");
  jwks_refused("{\"keys\":[],\"keys\":[]}", "JWK Set: not JSON: duplicate object key");
  json_t *keys = json_array();
  for (int i = 0; i < CL_JWKS_MAX_KEYS + 1; i++) {
    char kid[16];
    snprintf(kid, sizeof kid, "k%d", i);
    json_array_append_new(keys, jwk(P256, kid));
  }
  json_t *set = json_pack("{s:o}", "keys", keys);
  char *s = json_dumps(set, JSON_COMPACT);
  jwks_refused(s, "keys: 33 keys");
  /* 32 are fine */
  json_array_remove(keys, 0);
  free(s);
  s = json_dumps(set, JSON_COMPACT);
  cl_jwks *k;
  cl_err err;
  cr_assert_eq(cl_jwks_parse(s, strlen(s), &k, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_jwks_count(k), 32);
  cl_jwks_free(k);
  free(s);
  json_decref(set);
  char *big = malloc(CL_JWKS_MAX_LEN + 2);
  memset(big, ' ', CL_JWKS_MAX_LEN + 1);
  big[CL_JWKS_MAX_LEN + 1] = '\0';
  jwks_refused(big, "JWK Set: 65537 bytes, at most 65536");
  free(big);
}

/* ------------------------------------------------------------ resources */

static long countdown;
static int fail_nth(void *ctx) {
  (void)ctx;
  return --countdown == 0;
}

Test(jwt, allocation_failures_are_clean) {
  char *s = jwks_text(jwk(RSA2048, "rsa"), jwk(P256, "p256"), jwk(P384, "p384"), NULL);
  char *t = token(RSA2048, "RS384", "rsa", claims());
  for (long n = 1;; n++) {
    cl_jwks *k = NULL;
    cl_err err;
    countdown = n;
    cl_alloc_set_fail_hook(fail_nth, NULL);
    int rc = cl_jwks_parse(s, strlen(s), &k, &err);
    cl_alloc_set_fail_hook(NULL, NULL);
    if (rc == 0) {
      cl_jwks_free(k);
      cr_assert_gt(n, 5, "every key takes allocations");
      break;
    }
    cr_assert_eq(rc, CL_ENOMEM, "allocation %ld: %s", n, err.msg);
    cr_assert_null(k);
  }
  for (long n = 1;; n++) {
    cl_err err;
    cl_jwt_claims c;
    countdown = n;
    cl_alloc_set_fail_hook(fail_nth, NULL);
    int rc = verify(t, &c, &err);
    cl_alloc_set_fail_hook(NULL, NULL);
    if (rc == 0)
      break;
    cr_assert_eq(rc, CL_ENOMEM, "allocation %ld: %s", n, err.msg);
  }
  free(t);
  free(s);
}

typedef struct worker {
  char *tok[4];
  int bad;
} worker;

static void *work(void *arg) {
  worker *w = arg;
  for (int r = 0; r < 25; r++)
    for (int i = 0; i < 4; i++) {
      cl_jwt_claims c;
      cl_err err;
      if (verify(w->tok[i], &c, &err) != 0 || strcmp(c.iss, CID) != 0)
        w->bad++;
    }
  return NULL;
}

Test(jwt, one_jwks_many_threads) {
  worker w[4];
  pthread_t th[4];
  for (int i = 0; i < 4; i++) {
    w[i].bad = 0;
    w[i].tok[0] = token(RSA2048, "RS256", "rsa", claims());
    w[i].tok[1] = token(RSA2048, "RS384", "rsa", claims());
    w[i].tok[2] = token(P256, "ES256", "p256", claims());
    w[i].tok[3] = token(P384, "ES384", "p384", claims());
    cr_assert_eq(pthread_create(&th[i], NULL, work, &w[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    cr_assert_eq(w[i].bad, 0);
    for (int j = 0; j < 4; j++)
      free(w[i].tok[j]);
  }
}

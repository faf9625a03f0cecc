/* Tests of query/auth/jwt.c, SMART Backend Services client assertions
 * (jwt_fixture.h: an independent OpenSSL signer): what is accepted, tampered
 * tokens, the header, the signature and the claims. Malformed JWS and the
 * RFC 7515 vectors are in test_jwt_format.c. */
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

/* ------------------------------------------------------------ accepted */

Test(jwt, each_alg_accepted) {
  static const struct {
    const char *alg, *kid;
  } cases[] = {{"RS256", "rsa"}, {"RS384", "rsa"}, {"ES256", "p256"}, {"ES384", "p384"}};
  EVP_PKEY *pk[] = {RSA2048, RSA2048, P256, P384};
  for (size_t i = 0; i < 4; i++) {
    char *t = token(pk[i], cases[i].alg, cases[i].kid, claims());
    cl_jwt_claims c;
    cl_err err;
    cr_assert_eq(verify(t, &c, &err), 0, "%s: %s", cases[i].alg, err.msg);
    cr_assert_str_eq(c.iss, CID);
    cr_assert_str_eq(c.sub, CID);
    cr_assert_str_eq(c.jti, "3c9d6ab4-1f0e-4f7e-9a51-7d2c80e6b1aa");
    cr_assert_str_eq(c.kid, cases[i].kid);
    cr_assert_str_eq(c.alg, cases[i].alg);
    cr_assert_eq(c.exp, NOW + 240);
    cr_assert_eq(c.iat, NOW);
    cr_assert_eq(c.nbf, 0);
    /* out may be NULL */
    cr_assert_eq(cl_jwt_verify_assertion(t, strlen(t), KEYS, CID, AUD, NOW, NULL, &err), 0);
    free(t);
  }
}

Test(jwt, jwks_as_registered) {
  cr_assert_eq(cl_jwks_count(KEYS), 3);
  cr_assert_str_eq(cl_jwks_kid(KEYS, 0), "rsa");
  cr_assert_str_eq(cl_jwks_kid(KEYS, 2), "p384");
  cr_assert_null(cl_jwks_kid(KEYS, 3));
  /* use, key_ops and alg that fit; unknown members and set members ignored */
  json_t *r = jwk(RSA2048, "r"), *e = jwk(P384, "e");
  json_object_set_new(r, "use", json_string("sig"));
  json_object_set_new(r, "alg", json_string("RS384"));
  json_object_set_new(r, "x5t#S256", json_string("ignored"));
  json_object_set_new(e, "key_ops", json_pack("[s, s]", "sign", "verify"));
  json_object_set_new(e, "alg", json_string("ES384"));
  char *s = jwks_text(r, e, NULL);
  char *t = malloc(strlen(s) + 32);
  sprintf(t, "{\"issuer\":\"x\",%s", s + 1);
  cl_jwks *k;
  cl_err err;
  cr_assert_eq(cl_jwks_parse(t, strlen(t), &k, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_jwks_count(k), 2);
  char *tok = token(RSA2048, "RS384", "r", claims());
  cr_assert_eq(cl_jwt_verify_assertion(tok, strlen(tok), k, CID, AUD, NOW, NULL, &err), 0, "%s",
               err.msg);
  free(tok);
  /* the key is registered for RS384: RS256 with it is refused */
  tok = token(RSA2048, "RS256", "r", claims());
  cr_assert_eq(cl_jwt_verify_assertion(tok, strlen(tok), k, CID, AUD, NOW, NULL, &err), CL_EUNAUTH);
  cr_assert(strstr(err.msg, "key \"r\" is registered for RS384, not RS256"), "%s", err.msg);
  free(tok);
  cl_jwks_free(k);
  free(t);
  free(s);
}

Test(jwt, aud_array_holding_the_token_url) {
  accepted(with_claim("aud", json_pack("[s, s]", "https://other.example/", AUD)));
}

Test(jwt, typ_variants_and_ignored_header_members) {
  accepted(token_hp(P256, "ES256",
                    json_pack("{s:s, s:s, s:s, s:s}", "alg", "ES256", "typ", "jwt", "kid", "p256",
                              "jku", "https://attacker.example/jwks"),
                    claims(), 0));
  accepted(token_hp(
      P256, "ES256",
      json_pack("{s:s, s:s, s:s}", "alg", "ES256", "typ", "application/JWT", "kid", "p256"),
      claims(), 0));
  accepted(
      token_hp(P256, "ES256", json_pack("{s:s, s:s}", "alg", "ES256", "kid", "p256"), claims(), 0));
}

Test(jwt, clock_edges) {
  accepted(with_claim("exp", json_integer(NOW - CL_JWT_SKEW + 1)));
  accepted(with_claim("exp", json_integer(NOW + CL_JWT_MAX_AHEAD + CL_JWT_SKEW)));
  accepted(with_claim("nbf", json_integer(NOW + CL_JWT_SKEW)));
  accepted(with_claim("iat", json_integer(NOW + CL_JWT_SKEW)));
  accepted(with_claim("jti", json_string("j")));
  char jti[256];
  memset(jti, 'j', 255);
  jti[255] = '\0';
  accepted(with_claim("jti", json_string(jti)));
}

/* ------------------------------------------------------------ tampering */

/* t with one bit of decoded segment seg (0 header, 1 payload, 2 signature)
 * flipped at byte `at` (from the end when negative), re-encoded. */
static char *flip(char *t, int seg, long at, uint8_t bit) {
  char *d1 = strchr(t, '.'), *d2 = strchr(d1 + 1, '.');
  const char *start[3] = {t, d1 + 1, d2 + 1};
  size_t len[3] = {(size_t)(d1 - t), (size_t)(d2 - d1 - 1), strlen(d2 + 1)};
  uint8_t buf[2048];
  size_t n;
  cr_assert_eq(sodium_base642bin(buf, sizeof buf, start[seg], len[seg], NULL, &n, NULL, B64URL), 0);
  buf[at < 0 ? (long)n + at : at] ^= bit;
  char *e = b64(buf, n), *parts[3] = {NULL, NULL, NULL};
  for (int i = 0; i < 3; i++)
    parts[i] = i == seg ? e : strndup(start[i], len[i]);
  size_t tl = strlen(parts[0]) + strlen(parts[1]) + strlen(parts[2]) + 3;
  char *r = malloc(tl);
  snprintf(r, tl, "%s.%s.%s", parts[0], parts[1], parts[2]);
  for (int i = 0; i < 3; i++)
    free(parts[i]);
  free(t);
  return r;
}

Test(jwt, flipped_bit_in_header_payload_or_signature) {
  static const char *algs[] = {"RS256", "ES384"};
  EVP_PKEY *pk[] = {RSA2048, P384};
  const char *kid[] = {"rsa", "p384"};
  for (int i = 0; i < 2; i++) {
    /* a header member no check looks at, so only the signature notices */
    json_t *h = json_pack("{s:s, s:s, s:s}", "alg", algs[i], "kid", kid[i], "note", "aaaa");
    refused(flip(token_hp(pk[i], algs[i], h, claims(), 0), 0, -3, 0x02), CL_EUNAUTH,
            "signature does not verify with key");
    /* a byte of the jti */
    refused(flip(token(pk[i], algs[i], kid[i], claims()), 1, -5, 0x01), CL_EUNAUTH,
            "signature does not verify with key");
    refused(flip(token(pk[i], algs[i], kid[i], claims()), 2, 7, 0x80), CL_EUNAUTH,
            "signature does not verify with key");
    refused(flip(token(pk[i], algs[i], kid[i], claims()), 2, -1, 0x01), CL_EUNAUTH,
            "signature does not verify with key");
  }
}

Test(jwt, every_character_changed_is_refused) {
  char *t = token(P256, "ES256", "p256", claims());
  size_t n = strlen(t);
  for (size_t i = 0; i < n; i++) {
    for (uint8_t bit = 1; bit != 0 && bit <= 0x20; bit <<= 1) {
      char saved = t[i];
      t[i] = (char)(saved ^ bit);
      cl_err err;
      int rc = verify(t, NULL, &err);
      cr_assert(rc == CL_EUNAUTH || rc == CL_EMALFORMED, "position %zu bit %u: %s", i, bit,
                cl_errname(rc));
      t[i] = saved;
    }
  }
  free(t);
}

/* ------------------------------------------------------------ header */

Test(jwt, alg_none_refused) {
  const char *none = "{\"alg\":\"none\",\"kid\":\"rsa\"}";
  char *h = b64(none, strlen(none));
  json_t *c = claims();
  char *cj = json_dumps(c, JSON_COMPACT), *p = b64(cj, strlen(cj));
  char *t = malloc(strlen(h) + strlen(p) + 3);
  sprintf(t, "%s.%s.", h, p);
  refused(t, CL_EUNAUTH, "alg \"none\" is refused (an unsigned JWS)");
  /* a real signature does not make it acceptable */
  char *real = token(RSA2048, "RS256", "rsa", json_incref(c));
  t = malloc(strlen(real) + strlen(h) + 1);
  sprintf(t, "%s%s", h, strchr(real, '.'));
  refused(t, CL_EUNAUTH, "alg \"none\" is refused");
  free(real);
  free(h);
  free(p);
  free(cj);
  json_decref(c);
}

Test(jwt, hs256_refused) {
  /* the classic confusion: an HMAC keyed with the server's copy of the
   * public key */
  const char *header = "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"rsa\"}";
  json_t *c = claims();
  char *cj = json_dumps(c, JSON_COMPACT);
  char *h = b64(header, strlen(header)), *p = b64(cj, strlen(cj));
  char in[2048];
  snprintf(in, sizeof in, "%s.%s", h, p);
  char *keytext = jwks_text(jwk(RSA2048, "rsa"), NULL);
  uint8_t mac[32];
  size_t ml;
  cr_assert_not_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, keytext, strlen(keytext),
                               (const uint8_t *)in, strlen(in), mac, sizeof mac, &ml));
  char *m = b64(mac, ml), *t = malloc(strlen(in) + strlen(m) + 2);
  sprintf(t, "%s.%s", in, m);
  refused(t, CL_EUNAUTH, "alg \"HS256\" is refused (a shared-secret MAC");
  free(m);
  free(keytext);
  free(h);
  free(p);
  free(cj);
  json_decref(c);
}

Test(jwt, other_algs_refused) {
  static const char *algs[] = {"PS256", "RS512", "ES512", "EdDSA", "rs256", ""};
  for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
    json_t *h = json_pack("{s:s, s:s}", "alg", algs[i], "kid", "rsa");
    refused(token_hp(RSA2048, "RS256", h, claims(), 0), CL_EUNAUTH, "is refused (supported: ");
  }
  refused(token_hp(RSA2048, "RS256", json_pack("{s:s}", "kid", "rsa"), claims(), 0), CL_EUNAUTH,
          "header has no alg");
  refused(token_hp(RSA2048, "RS256", json_pack("{s:i, s:s}", "alg", 1, "kid", "rsa"), claims(), 0),
          CL_EUNAUTH, "alg is not a string");
}

Test(jwt, alg_and_key_kind_mismatch) {
  /* an ES384 token naming an RSA key */
  refused(token(P384, "ES384", "rsa", claims()), CL_EUNAUTH,
          "alg ES384 needs an EC P-384 key; key \"rsa\" is RSA");
  /* an ES256 token naming a P-384 key */
  refused(token(P256, "ES256", "p384", claims()), CL_EUNAUTH,
          "alg ES256 needs an EC P-256 key; key \"p384\" is EC P-384");
  /* an RS256 token naming an EC key */
  refused(token(RSA2048, "RS256", "p256", claims()), CL_EUNAUTH,
          "alg RS256 needs an RSA key; key \"p256\" is EC P-256");
  /* ES384 signed with the P-384 key but over SHA-256 (alg says 384) */
  refused(
      token_hp(P384, "ES256", json_pack("{s:s, s:s}", "alg", "ES384", "kid", "p384"), claims(), 0),
      CL_EUNAUTH, "signature does not verify with key \"p384\"");
}

Test(jwt, kid_unknown_or_missing) {
  refused(token(P256, "ES256", "p257", claims()), CL_EUNAUTH,
          "kid \"p257\" names no key the client registered");
  refused(
      token_hp(P256, "ES256", json_pack("{s:s, s:s}", "alg", "ES256", "typ", "JWT"), claims(), 0),
      CL_EUNAUTH, "header has no kid");
  refused(token_hp(P256, "ES256", json_pack("{s:s, s:i}", "alg", "ES256", "kid", 7), claims(), 0),
          CL_EUNAUTH, "kid is not a string");
  /* control characters from the token are escaped in the message */
  refused(token(P256, "ES256", "a\nb\"", claims()), CL_EUNAUTH, "kid \"a\\x0ab\\\"\" names no key");
}

Test(jwt, typ_crit_cty) {
  refused(token_hp(P256, "ES256",
                   json_pack("{s:s, s:s, s:s}", "alg", "ES256", "kid", "p256", "typ", "at+jwt"),
                   claims(), 0),
          CL_EUNAUTH, "typ \"at+jwt\" is not JWT");
  refused(token_hp(P256, "ES256",
                   json_pack("{s:s, s:s, s:[s]}", "alg", "ES256", "kid", "p256", "crit", "exp"),
                   claims(), 0),
          CL_EUNAUTH, "header has crit");
  refused(token_hp(P256, "ES256",
                   json_pack("{s:s, s:s, s:s}", "alg", "ES256", "kid", "p256", "cty", "JWT"),
                   claims(), 0),
          CL_EUNAUTH, "header has cty");
}

/* ------------------------------------------------------------ signature */

Test(jwt, der_ecdsa_signature_refused) {
  refused(
      token_hp(P256, "ES256", json_pack("{s:s, s:s}", "alg", "ES256", "kid", "p256"), claims(), 1),
      CL_EUNAUTH, "(raw r || s, RFC 7518 3.4; not DER)");
  refused(
      token_hp(P384, "ES384", json_pack("{s:s, s:s}", "alg", "ES384", "kid", "p384"), claims(), 1),
      CL_EUNAUTH, "key \"p384\" takes 96");
}

/* t (freed) with its signature segment replaced by base64url(sig[0..n)). */
static char *resig(char *t, const uint8_t *sig, size_t n) {
  char *s = b64(sig, n);
  *strrchr(t, '.') = '\0';
  char *r = malloc(strlen(t) + strlen(s) + 2);
  sprintf(r, "%s.%s", t, s);
  free(s);
  free(t);
  return r;
}

Test(jwt, wrong_length_signatures_refused) {
  char *t = token(RSA2048, "RS256", "rsa", claims());
  const char *s = strrchr(t, '.') + 1;
  uint8_t sig[256];
  size_t n;
  cr_assert_eq(sodium_base642bin(sig, sizeof sig, s, strlen(s), NULL, &n, NULL, B64URL), 0);
  cr_assert_eq(n, 256);
  refused(resig(t, sig, 253), CL_EUNAUTH, "RS256 signature of 253 bytes, key \"rsa\" takes 256");
  refused(resig(token(P256, "ES256", "p256", claims()), sig, 0), CL_EUNAUTH,
          "ES256 signature of 0 bytes");
  /* r || s of zeros: the right length, never a valid signature */
  memset(sig, 0, sizeof sig);
  refused(resig(token(P256, "ES256", "p256", claims()), sig, 64), CL_EUNAUTH,
          "signature does not verify");
}

/* ------------------------------------------------------------ claims */

Test(jwt, iss_sub_client_id) {
  refused(with_claim("sub", json_string("someone-else")), CL_EUNAUTH,
          "iss \"" CID "\" and sub \"someone-else\" differ");
  json_t *c = claims();
  json_object_set_new(c, "iss", json_string("other-client"));
  json_object_set_new(c, "sub", json_string("other-client"));
  refused(token(P256, "ES256", "p256", c), CL_EUNAUTH,
          "iss \"other-client\" is not the client_id \"" CID "\"");
  refused(with_claim("iss", NULL), CL_EUNAUTH, "no iss");
  refused(with_claim("sub", NULL), CL_EUNAUTH, "no sub");
  refused(with_claim("iss", json_integer(42)), CL_EUNAUTH, "iss is not a string");
}

Test(jwt, aud) {
  refused(with_claim("aud", json_string("https://ehr.example.org/auth/token/")), CL_EUNAUTH,
          "aud \"https://ehr.example.org/auth/token/\" is not this server's token URL");
  refused(with_claim("aud", json_pack("[s, s]", "https://a.example/", "https://b.example/")),
          CL_EUNAUTH, "aud (2 values) does not hold this server's token URL");
  refused(with_claim("aud", json_array()), CL_EUNAUTH, "aud (0 values)");
  refused(with_claim("aud", json_pack("[s, i]", AUD, 3)), CL_EUNAUTH, "aud[1] is not a string");
  refused(with_claim("aud", NULL), CL_EUNAUTH, "no aud");
  refused(with_claim("aud", json_true()), CL_EUNAUTH, "aud is neither a string nor an array");
}

Test(jwt, exp) {
  refused(with_claim("exp", NULL), CL_EUNAUTH, "no exp");
  refused(with_claim("exp", json_integer(NOW - CL_JWT_SKEW)), CL_EUNAUTH,
          "expired at 2026-12-04T09:59:00Z (now 2026-12-04T10:00:00Z, 60 s of skew allowed)");
  refused(with_claim("exp", json_integer(NOW - 86400)), CL_EUNAUTH,
          "expired at 2026-12-03T10:00:00Z");
  refused(with_claim("exp", json_integer(NOW + CL_JWT_MAX_AHEAD + CL_JWT_SKEW + 1)), CL_EUNAUTH,
          "exp 2026-12-04T10:06:01Z is more than 300 s after now");
  refused(with_claim("exp", json_integer(INT64_MAX)), CL_EUNAUTH, "is more than 300 s after now");
  refused(with_claim("exp", json_real(NOW + 100.5)), CL_EUNAUTH,
          "exp is not an integer NumericDate");
  refused(with_claim("exp", json_string("1796378500")), CL_EUNAUTH, "exp is not an integer");
}

Test(jwt, nbf_iat_in_the_future) {
  refused(with_claim("nbf", json_integer(NOW + CL_JWT_SKEW + 1)), CL_EUNAUTH,
          "not valid before 2026-12-04T10:01:01Z");
  refused(with_claim("iat", json_integer(NOW + 3600)), CL_EUNAUTH,
          "issued in the future, at 2026-12-04T11:00:00Z");
  refused(with_claim("iat", json_string("now")), CL_EUNAUTH, "iat is not an integer");
}

Test(jwt, jti) {
  refused(with_claim("jti", NULL), CL_EUNAUTH, "no jti");
  refused(with_claim("jti", json_string("")), CL_EUNAUTH, "jti is not a string of 1 to 255 bytes");
  char jti[257];
  memset(jti, 'j', 256);
  jti[256] = '\0';
  refused(with_claim("jti", json_string(jti)), CL_EUNAUTH,
          "jti is not a string of 1 to 255 bytes (256)");
  refused(with_claim("jti", json_integer(5)), CL_EUNAUTH, "jti is not a string");
}

Test(jwt, clock_given_by_the_caller) {
  char *t = token(P256, "ES256", "p256", claims());
  cl_err err;
  cr_assert_eq(cl_jwt_verify_assertion(t, strlen(t), KEYS, CID, AUD, NOW + 299, NULL, &err), 0);
  cr_assert_eq(cl_jwt_verify_assertion(t, strlen(t), KEYS, CID, AUD, NOW + 300, NULL, &err),
               CL_EUNAUTH);
  cr_assert(strstr(err.msg, "expired"), "%s", err.msg);
  cr_assert_eq(cl_jwt_verify_assertion(t, strlen(t), KEYS, CID, AUD, NOW - 3600, NULL, &err),
               CL_EUNAUTH);
  cr_assert(strstr(err.msg, "more than 300 s after now"), "%s", err.msg);
  free(t);
}

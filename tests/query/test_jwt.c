/* Tests of query/auth/jwt.c, SMART Backend Services client assertions.
 *
 * The module is checked against an independent signer: keys are generated
 * here with OpenSSL, their public JWKs written out here (base64url of n, e,
 * x, y), and tokens signed here with EVP_DigestSign (ECDSA's DER turned into
 * raw r || s here). The RFC 7515 Appendix A.2 (RS256) and A.3 (ES256)
 * vectors check both against the RFC. */
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

#define NOW 1796378400 /* 2026-12-04T10:00:00Z */
#define CID "backend-service-42"
#define AUD "https://ehr.example.org/auth/token"
#define B64URL sodium_base64_VARIANT_URLSAFE_NO_PADDING

static EVP_PKEY *RSA2048, *P256, *P384;
static cl_jwks *KEYS; /* "rsa", "p256", "p384" */

/* ------------------------------------------------------------ helpers */

static char *b64(const void *p, size_t n) {
  size_t cap = sodium_base64_ENCODED_LEN(n, B64URL);
  char *s = malloc(cap);
  cr_assert_not_null(s);
  sodium_bin2base64(s, cap, p, n, B64URL);
  return s;
}

/* Sets member name of j to the base64url of bn, left-padded to pad bytes
 * (0: its minimal length). */
static void set_bn(json_t *j, const char *name, const BIGNUM *bn, int pad) {
  uint8_t buf[1024];
  int n = pad ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
  cr_assert_gt(n, 0);
  char *s = b64(buf, (size_t)n);
  json_object_set_new(j, name, json_string(s));
  free(s);
}

static BIGNUM *bn_param(EVP_PKEY *pk, const char *name) {
  BIGNUM *bn = NULL;
  cr_assert_eq(EVP_PKEY_get_bn_param(pk, name, &bn), 1, "%s", name);
  return bn;
}

/* The public JWK of pk, with kid. */
static json_t *jwk(EVP_PKEY *pk, const char *kid) {
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
static char *jwks_text(json_t *first, ...) {
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

static EVP_PKEY *keygen(const char *type, size_t rsa_bits, const char *curve) {
  EVP_PKEY *pk = curve ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve)
                       : EVP_PKEY_Q_keygen(NULL, NULL, type, rsa_bits);
  cr_assert_not_null(pk);
  return pk;
}

/* header.payload.signature over the JSON texts given, signed with pk and
 * alg's digest; ECDSA signatures raw r || s unless der. */
static char *sign(EVP_PKEY *pk, const char *alg, const char *header, const char *payload, int der) {
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
static json_t *claims(void) {
  return json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "iss", CID, "sub", CID, "aud", AUD, "exp",
                   (json_int_t)NOW + 240, "iat", (json_int_t)NOW, "jti",
                   "3c9d6ab4-1f0e-4f7e-9a51-7d2c80e6b1aa");
}

/* A token with header and payload given (both stolen). */
static char *token_hp(EVP_PKEY *pk, const char *alg, json_t *header, json_t *payload, int der) {
  char *h = json_dumps(header, JSON_COMPACT), *p = json_dumps(payload, JSON_COMPACT);
  char *t = sign(pk, alg, h, p, der);
  free(h);
  free(p);
  json_decref(header);
  json_decref(payload);
  return t;
}

/* A token with header {alg, typ JWT, kid} and payload c (stolen). */
static char *token(EVP_PKEY *pk, const char *alg, const char *kid, json_t *c) {
  return token_hp(pk, alg, json_pack("{s:s, s:s, s:s}", "alg", alg, "typ", "JWT", "kid", kid), c,
                  0);
}

static int verify(const char *t, cl_jwt_claims *c, cl_err *err) {
  return cl_jwt_verify_assertion(t, strlen(t), KEYS, CID, AUD, NOW, c, err);
}

static void accepted(char *t) {
  cl_jwt_claims c;
  cl_err err;
  int rc = verify(t, &c, &err);
  cr_assert_eq(rc, 0, "%s (%s)", err.msg, t);
  cr_assert_str_eq(c.iss, CID);
  free(t);
}

/* t (freed) is refused with code and a message holding `what`. */
static void refused(char *t, int code, const char *what) {
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
static char *with_claim(const char *name, json_t *v) {
  json_t *c = claims();
  if (v)
    json_object_set_new(c, name, v);
  else
    json_object_del(c, name);
  return token(P256, "ES256", "p256", c);
}

static void setup(void) {
  RSA2048 = keygen("RSA", 2048, NULL);
  P256 = keygen(NULL, 0, "P-256");
  P384 = keygen(NULL, 0, "P-384");
  char *s = jwks_text(jwk(RSA2048, "rsa"), jwk(P256, "p256"), jwk(P384, "p384"), NULL);
  cl_err err;
  cr_assert_eq(cl_jwks_parse(s, strlen(s), &KEYS, &err), 0, "%s", err.msg);
  free(s);
}

static void teardown(void) {
  cl_jwks_free(KEYS);
  EVP_PKEY_free(RSA2048);
  EVP_PKEY_free(P256);
  EVP_PKEY_free(P384);
}

TestSuite(jwt, .init = setup, .fini = teardown, .timeout = 60);

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

/* libFuzzer target for SMART Backend Services client assertions
 * (query/auth/jwt.c): the JWK Set a client registers and the assertion it
 * sends to the token endpoint are both outside bytes.
 *
 * The first input byte picks a mode:
 *   0: the rest split at its first NUL into a JWK Set and a JWT: the set
 *      is parsed and, if it parses, the JWT verified against it;
 *   1: the rest, verbatim, as a JWT against a fixed set of real keys
 *      (RSA 2048, P-256, P-384) whose private halves only this target
 *      holds: it must be refused;
 *   2: differential: bytes 1-4 choose the signing key and algorithm, a
 *      position and a bit mask; the rest split at its first NUL into a
 *      header and a payload (any bytes), which are signed here with the
 *      fixed key: the token is verified, and again with the chosen byte
 *      changed, which must be refused (base64url is strict, so a changed
 *      character changes what was signed or breaks the form).
 * Every answer must keep the contract: a code jwt.h lists, claims zeroed
 * on error and, on success, claims that say what verification promises.
 * A wrong answer aborts, which libFuzzer reports as a finding. */
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/auth/jwt.h"
#include "tests/fuzz/common/fuzzutil.h"

#define NOW 1796378400
#define CID "c"
#define AUD "https://t/token"
#define B64URL sodium_base64_VARIANT_URLSAFE_NO_PADDING

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The fixed keys, in the order mode 2's selector names them. */
static const struct {
  const char *kid, *alg;
  int key; /* index into KEY */
} SIGNER[] = {{"rsa", "RS256", 0}, {"rsa", "RS384", 0}, {"p256", "ES256", 1}, {"p384", "ES384", 2}};
static EVP_PKEY *KEY[3];
static cl_jwks *FIXED;

/* Appends ,"name":"<base64url of bn, padded to pad bytes>" to buf. */
static void put_b64(char *buf, size_t cap, const char *name, EVP_PKEY *pk, const char *param,
                    int pad) {
  BIGNUM *bn = NULL;
  uint8_t bin[512];
  char text[700];
  if (EVP_PKEY_get_bn_param(pk, param, &bn) != 1)
    abort();
  int n = pad ? BN_bn2binpad(bn, bin, pad) : BN_bn2bin(bn, bin);
  BN_free(bn);
  sodium_bin2base64(text, sizeof text, bin, (size_t)n, B64URL);
  size_t at = strlen(buf);
  snprintf(buf + at, cap - at, ",\"%s\":\"%s\"", name, text);
}

static void init_keys(void) {
  if (FIXED != NULL)
    return;
  KEY[0] = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
  KEY[1] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  KEY[2] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
  if (!KEY[0] || !KEY[1] || !KEY[2])
    abort();
  char set[4096] = "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"rsa\"";
  put_b64(set, sizeof set, "n", KEY[0], OSSL_PKEY_PARAM_RSA_N, 0);
  put_b64(set, sizeof set, "e", KEY[0], OSSL_PKEY_PARAM_RSA_E, 0);
  for (int i = 1; i < 3; i++) {
    size_t at = strlen(set);
    snprintf(set + at, sizeof set - at, "},{\"kty\":\"EC\",\"kid\":\"%s\",\"crv\":\"%s\"",
             i == 1 ? "p256" : "p384", i == 1 ? "P-256" : "P-384");
    put_b64(set, sizeof set, "x", KEY[i], OSSL_PKEY_PARAM_EC_PUB_X, i == 1 ? 32 : 48);
    put_b64(set, sizeof set, "y", KEY[i], OSSL_PKEY_PARAM_EC_PUB_Y, i == 1 ? 32 : 48);
  }
  strcat(set, "}]}");
  cl_err err;
  if (cl_jwks_parse(set, strlen(set), &FIXED, &err) != 0)
    fuzz_finding("fuzz_jwt", "the fixed set does not parse: %s", err.msg);
}

/* Checks one answer of cl_jwt_verify_assertion against the contract. */
static void check(int rc, const cl_jwt_claims *c, const cl_jwks *keys, const cl_err *err) {
  static const cl_jwt_claims zero;
  if (ERR_peek_error() != 0)
    fuzz_finding("fuzz_jwt", "OpenSSL error queue left dirty");
  if (rc != 0) {
    if (rc != CL_EMALFORMED && rc != CL_EUNAUTH && rc != CL_ENOMEM)
      fuzz_finding("fuzz_jwt", "code %s (%s)", cl_errname(rc), err->msg);
    if (memcmp(c, &zero, sizeof zero) != 0)
      fuzz_finding("fuzz_jwt", "claims not zeroed after %s", err->msg);
    if (strncmp(err->msg, "client assertion: ", 18) != 0)
      fuzz_finding("fuzz_jwt", "message without its prefix: %s", err->msg);
    return;
  }
  int kid_known = 0;
  for (size_t i = 0; i < cl_jwks_count(keys); i++)
    kid_known |= strcmp(cl_jwks_kid(keys, i), c->kid) == 0;
  if (strcmp(c->iss, CID) != 0 || strcmp(c->sub, CID) != 0 || !kid_known ||
      c->exp <= NOW - CL_JWT_SKEW || c->exp > NOW + CL_JWT_MAX_AHEAD + CL_JWT_SKEW ||
      c->iat > NOW + CL_JWT_SKEW || c->nbf > NOW + CL_JWT_SKEW || c->jti[0] == '\0')
    fuzz_finding("fuzz_jwt", "accepted claims out of bounds (iss %s, exp %lld, kid %s)", c->iss,
                 (long long)c->exp, c->kid);
}

static int verify(const char *t, size_t n, const cl_jwks *keys, cl_jwt_claims *c) {
  cl_err err;
  int rc = cl_jwt_verify_assertion(t, n, keys, CID, AUD, NOW, c, &err);
  check(rc, c, keys, &err);
  return rc;
}

/* mode 0 */
static void pair(const uint8_t *p, size_t n) {
  const uint8_t *nul = memchr(p, 0, n);
  size_t sl = nul ? (size_t)(nul - p) : n;
  cl_jwks *keys = NULL;
  cl_err err;
  int rc = cl_jwks_parse((const char *)p, sl, &keys, &err);
  if (ERR_peek_error() != 0)
    fuzz_finding("fuzz_jwt", "OpenSSL error queue left dirty");
  if (rc != 0) {
    if (keys != NULL || (rc != CL_EMALFORMED && rc != CL_ENOMEM))
      fuzz_finding("fuzz_jwt", "cl_jwks_parse: %s (%s)", cl_errname(rc), err.msg);
    return;
  }
  size_t count = cl_jwks_count(keys);
  if (count < 1 || count > CL_JWKS_MAX_KEYS)
    fuzz_finding("fuzz_jwt", "a set of %zu keys", count);
  for (size_t i = 0; i < count; i++)
    if (cl_jwks_kid(keys, i)[0] == '\0' || strlen(cl_jwks_kid(keys, i)) > 127)
      fuzz_finding("fuzz_jwt", "key %zu has a kid of %zu bytes", i, strlen(cl_jwks_kid(keys, i)));
  if (nul != NULL) {
    cl_jwt_claims c;
    verify((const char *)nul + 1, n - sl - 1, keys, &c);
  }
  cl_jwks_free(keys);
}

/* mode 1 */
static void forged(const uint8_t *p, size_t n) {
  cl_jwt_claims c;
  if (verify((const char *)p, n, FIXED, &c) == 0)
    fuzz_finding("fuzz_jwt", "a token not signed here was accepted (kid %s)", c.kid);
}

#define SIG_TEXT sodium_base64_ENCODED_LEN(256, B64URL) /* the longest: RSA 2048 */

/* base64url(h).base64url(p).base64url(signature by SIGNER[s]), malloc'd. */
static char *sign(int s, const uint8_t *h, size_t hl, const uint8_t *p, size_t pl) {
  size_t hc = sodium_base64_ENCODED_LEN(hl, B64URL), pc = sodium_base64_ENCODED_LEN(pl, B64URL);
  char *t = malloc(hc + pc + SIG_TEXT);
  if (t == NULL)
    abort();
  sodium_bin2base64(t, hc, h, hl, B64URL);
  size_t at = strlen(t);
  t[at++] = '.';
  sodium_bin2base64(t + at, pc, p, pl, B64URL);
  at += strlen(t + at);
  EVP_PKEY *pk = KEY[SIGNER[s].key];
  uint8_t sig[256];
  size_t sl = sizeof sig;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  const char *dg = strstr(SIGNER[s].alg, "256") ? "SHA256" : "SHA384";
  if (md == NULL || EVP_DigestSignInit_ex(md, NULL, dg, NULL, NULL, pk, NULL) != 1 ||
      EVP_DigestSign(md, sig, &sl, (const uint8_t *)t, at) != 1)
    abort();
  EVP_MD_CTX_free(md);
  if (SIGNER[s].alg[0] == 'E') { /* DER to raw r || s (RFC 7518 3.4) */
    const uint8_t *q = sig;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)sl);
    int half = s == 2 ? 32 : 48;
    if (es == NULL || BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, half) != half ||
        BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + half, half) != half)
      abort();
    ECDSA_SIG_free(es);
    sl = 2 * (size_t)half;
  }
  t[at++] = '.';
  sodium_bin2base64(t + at, SIG_TEXT, sig, sl, B64URL);
  return t;
}

/* mode 2 */
static void differential(const uint8_t *p, size_t n) {
  if (n < 4)
    return;
  int s = p[0] % 4;
  size_t pos = (size_t)p[1] << 8 | p[2];
  uint8_t bit = p[3] ? p[3] : 1;
  p += 4, n -= 4;
  const uint8_t *nul = memchr(p, 0, n);
  size_t hl = nul ? (size_t)(nul - p) : n;
  char *t = sign(s, p, hl, nul ? nul + 1 : p + n, nul ? n - hl - 1 : 0);
  size_t tl = strlen(t);
  cl_jwt_claims c;
  if (verify(t, tl, FIXED, &c) == 0 &&
      (strcmp(c.alg, SIGNER[s].alg) != 0 || strcmp(c.kid, SIGNER[s].kid) != 0))
    fuzz_finding("fuzz_jwt", "signed %s with %s, accepted as %s with %s", SIGNER[s].alg,
                 SIGNER[s].kid, c.alg, c.kid);
  t[pos % tl] = (char)(t[pos % tl] ^ bit);
  if (verify(t, tl, FIXED, &c) == 0)
    fuzz_finding("fuzz_jwt", "accepted with byte %zu changed: %s", pos % tl, t);
  free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  init_keys();
  if (size == 0)
    return 0;
  switch (data[0] % 3) {
  case 0:
    pair(data + 1, size - 1);
    break;
  case 1:
    forged(data + 1, size - 1);
    break;
  default:
    differential(data + 1, size - 1);
  }
  return 0;
}

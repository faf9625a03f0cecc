/* Credentials (query/auth/cred.c) against their standards' test vectors:
 * SHA-1 (FIPS 180 examples), HMAC-SHA-1 (RFC 2202), HOTP (RFC 4226
 * appendix D), TOTP with SHA-1, SHA-256 and SHA-512 (RFC 6238 appendix B);
 * TOTP windows and replay; argon2id passwords; EdDSA session tokens
 * (round trip, expiry, tampering, another key, alg none, lifetime). */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "query/auth/cred.h"

static void hex_eq(const uint8_t *b, size_t n, const char *want) {
  char h[256];
  sodium_bin2hex(h, sizeof h, b, n);
  cr_assert_str_eq(h, want);
}

Test(cred, sha1_fips_examples) {
  uint8_t d[20];
  cl_sha1((const uint8_t *)"abc", 3, d);
  hex_eq(d, 20, "a9993e364706816aba3e25717850c26c9cd0d89d");
  cl_sha1((const uint8_t *)"", 0, d);
  hex_eq(d, 20, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 448 bits */
  cl_sha1((const uint8_t *)two, strlen(two), d);
  hex_eq(d, 20, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  uint8_t *a = malloc(1000000);
  memset(a, 'a', 1000000);
  cl_sha1(a, 1000000, d);
  free(a);
  hex_eq(d, 20, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

Test(cred, hmac_sha1_rfc2202) {
  uint8_t k[80], d[20];
  memset(k, 0x0b, 20);
  cl_hmac_sha1(k, 20, (const uint8_t *)"Hi There", 8, d);
  hex_eq(d, 20, "b617318655057264e28bc0b6fb378c8ef146be00");
  cl_hmac_sha1((const uint8_t *)"Jefe", 4, (const uint8_t *)"what do ya want for nothing?", 28, d);
  hex_eq(d, 20, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
  memset(k, 0xaa, 80); /* a key longer than the block is hashed first */
  const char *m = "Test Using Larger Than Block-Size Key - Hash Key First";
  cl_hmac_sha1(k, 80, (const uint8_t *)m, strlen(m), d);
  hex_eq(d, 20, "aa4ae5e15272d00e95705637ce8a3b55ed402112");
}

Test(cred, hotp_rfc4226_appendix_d) {
  static const uint32_t want[] = {755224, 287082, 359152, 969429, 338314,
                                  254676, 287922, 162583, 399871, 520489};
  cl_totp t = {CL_TOTP_SHA1, (const uint8_t *)"12345678901234567890", 20, 6, 30};
  for (uint64_t c = 0; c < 10; c++)
    cr_assert_eq(cl_hotp(&t, c), want[c], "counter %llu", (unsigned long long)c);
}

Test(cred, totp_rfc6238_appendix_b) {
  static const int64_t times[] = {59, 1111111109, 1111111111, 1234567890, 2000000000, 20000000000};
  static const char *const want[3][6] = {
      {"94287082", "07081804", "14050471", "89005924", "69279037", "65353130"},
      {"46119246", "68084774", "67062674", "91819424", "90698825", "77737706"},
      {"90693936", "25091201", "99943326", "93441116", "38618901", "47863826"}};
  static const char *const seeds[3] = {
      "12345678901234567890", "12345678901234567890123456789012",
      "1234567890123456789012345678901234567890123456789012345678901234"};
  for (int a = 0; a < 3; a++) {
    cl_totp t = {a, (const uint8_t *)seeds[a], strlen(seeds[a]), 8, 30};
    for (int i = 0; i < 6; i++) {
      char code[9];
      cl_totp_code(&t, times[i], code);
      cr_assert_str_eq(code, want[a][i], "alg %d time %lld", a, (long long)times[i]);
    }
  }
}

Test(cred, totp_window_and_replay) {
  uint8_t secret[20];
  randombytes_buf(secret, sizeof secret);
  cl_totp t = {CL_TOTP_SHA256, secret, sizeof secret, 6, 30};
  int64_t now = 1800000000;
  char prev[9], cur[9], next[9], far[9];
  cl_totp_code(&t, now - 30, prev);
  cl_totp_code(&t, now, cur);
  cl_totp_code(&t, now + 30, next);
  cl_totp_code(&t, now - 60, far);
  uint64_t last = 0;
  cl_err err;
  cr_assert_eq(cl_totp_verify(&t, now, prev, 1, &last, &err), 0, "one step behind: %s", err.msg);
  cr_assert_eq(cl_totp_verify(&t, now, prev, 1, &last, &err), CL_EDENIED);
  cr_assert(strstr(err.msg, "already used"), "%s", err.msg);
  cr_assert_eq(cl_totp_verify(&t, now, cur, 1, &last, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_totp_verify(&t, now, cur, 1, &last, &err), CL_EDENIED, "a code is used once");
  cr_assert_eq(cl_totp_verify(&t, now, next, 1, &last, &err), 0, "one step ahead: %s", err.msg);
  last = 0;
  if (strcmp(far, cur) && strcmp(far, prev) && strcmp(far, next))
    cr_assert_eq(cl_totp_verify(&t, now, far, 1, &last, &err), CL_EDENIED, "two steps away");
  cr_assert_eq(cl_totp_verify(&t, now, "12a456", 1, &last, &err), CL_EDENIED);
  cr_assert_eq(cl_totp_verify(&t, now, "1234567", 1, &last, &err), CL_EDENIED);
  cr_assert(strstr(err.msg, "6 digits"), "%s", err.msg);
  char *uri;
  cr_assert_eq(cl_totp_uri(&t, "clinlog General", "rn.jones@example.org", &uri, &err), 0);
  cr_assert(strstr(uri, "otpauth://totp/clinlog%20General:rn.jones@example.org?secret=") == uri,
            "%s", uri);
  cr_assert(strstr(uri, "&algorithm=SHA256&digits=6&period=30"), "%s", uri);
  free(uri);
}

Test(cred, argon2id_passwords) {
  char h[CL_PW_HASH_MAX];
  cl_err err;
  const char *pw = "correct horse battery staple";
  cr_assert_eq(cl_pw_hash(pw, strlen(pw), 1, 4096, h, &err), CL_EINVAL, "below the minimums");
  cr_assert_eq(
      cl_pw_hash(pw, strlen(pw), crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN, h, &err),
      0, "%s", err.msg);
  cr_assert(strncmp(h, "$argon2id$v=19$m=", 17) == 0, "the parameters are in the hash: %s", h);
  cr_assert_eq(cl_pw_verify(h, pw, strlen(pw), &err), 0, "%s", err.msg);
  cr_assert_eq(cl_pw_verify(h, "Correct horse battery staple", strlen(pw), &err), CL_EDENIED);
  cr_assert_eq(cl_pw_verify("$2b$12$bcrypt", pw, strlen(pw), &err), CL_EMALFORMED);
  cr_assert_eq(cl_pw_needs_rehash(h, crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN), 0);
  cr_assert_eq(cl_pw_needs_rehash(h, 0, 0), 1, "weaker than the default: rehash");
  char h2[CL_PW_HASH_MAX];
  cl_pw_hash(pw, strlen(pw), crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN, h2, &err);
  cr_assert_str_neq(h, h2, "a fresh salt each time");
}

Test(cred, eddsa_session_tokens) {
  cl_err err;
  cr_assert_eq(cl_crypto_init(&err), 0);
  cl_signer node, other;
  cl_signer_generate(&node, &err);
  cl_signer_generate(&other, &err);
  json_t *c =
      json_pack("{s:s,s:[s],s:s}", "sub", "rn.jones", "roles", "nurse", "scope", "user/*.rs");
  char *tok, jti[33];
  int64_t now = 1800000000;
  cr_assert_eq(cl_token_issue(&node, "node-1", "clinlog.local", c, now, 3600, &tok, jti, &err), 0);
  json_t *got;
  cr_assert_eq(cl_token_verify(node.pk, tok, now + 10, &got, &err), 0, "%s", err.msg);
  cr_assert_str_eq(json_string_value(json_object_get(got, "sub")), "rn.jones");
  cr_assert_str_eq(json_string_value(json_object_get(got, "jti")), jti);
  cr_assert_eq(json_integer_value(json_object_get(got, "exp")) - now, CL_TOKEN_MAX_TTL,
               "an hour asked, 15 minutes given");
  json_decref(got);
  cr_assert_eq(cl_token_verify(node.pk, tok, now + CL_TOKEN_MAX_TTL, &got, &err), CL_EUNAUTH);
  cr_assert(strstr(err.msg, "expired"), "%s", err.msg);
  cr_assert_eq(cl_token_verify(other.pk, tok, now, &got, &err), CL_EUNAUTH, "another key");
  cr_assert(strstr(err.msg, "signature"), "%s", err.msg);
  /* a tampered payload: roles raised to admin, the old signature kept */
  char *d1 = strchr(tok, '.'), *d2 = strchr(d1 + 1, '.');
  json_t *forged = json_pack("{s:s,s:[s],s:I,s:I}", "sub", "rn.jones", "roles", "admin", "iat",
                             (json_int_t)now, "exp", (json_int_t)now + 600);
  char *fj = json_dumps(forged, JSON_COMPACT), fb[512], bad[2048];
  sodium_bin2base64(fb, sizeof fb, (const unsigned char *)fj, strlen(fj),
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  snprintf(bad, sizeof bad, "%.*s.%s%s", (int)(d1 - tok), tok, fb, d2);
  cr_assert_eq(cl_token_verify(node.pk, bad, now, &got, &err), CL_EUNAUTH, "tampered");
  /* alg none */
  snprintf(bad, sizeof bad, "eyJhbGciOiJub25lIn0.%s.", fb);
  cr_assert_eq(cl_token_verify(node.pk, bad, now, &got, &err), CL_EUNAUTH);
  cr_assert_eq(cl_token_verify(node.pk, "not-a-token", now, &got, &err), CL_EUNAUTH);
  cr_assert(strstr(err.msg, "malformed"), "%s", err.msg);
  json_t *nosub = json_pack("{s:s}", "role", "x");
  char *none;
  cr_assert_eq(cl_token_issue(&node, "k", NULL, nosub, now, 60, &none, NULL, &err), CL_EINVAL);
  cr_assert_null(none);
  free(fj);
  json_decref(forged);
  json_decref(nosub);
  json_decref(c);
  free(tok);
  cl_signer_free(&node);
  cl_signer_free(&other);
}

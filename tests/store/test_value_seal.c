/* Sealed projection values (store/crypt.c, cl_value_seal / cl_value_open):
 * AES-256-GCM under a value key derived from the stream's data key, with a
 * synthetic nonce (crypt.h, (2)). A value opens only with its key and AD
 * and unaltered; sealing is deterministic and the nonce follows the value;
 * the bytes are the documented construction, recomputed here with other
 * code (libsodium's HMAC-SHA-256, OpenSSL's AES-GCM called directly); and
 * the two AES-GCM paths (libsodium's where the CPU has AES-NI, OpenSSL's
 * where not) make the same bytes and open each other's. */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "store/crypt.h"

static void init(void) { cr_assert_geq(sodium_init(), 0); }
static void fini(void) { cl_value_use_openssl(0); }

TestSuite(value_seal, .init = init, .fini = fini);

static const size_t SIZES[] = {0, 1, 15, 16, 17, 63, 64, 65, 500, 5000};
static const uint8_t AD[] = "proj.fhir.ver\0key-bytes";

static void fill(uint8_t *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 8));
}

/* seal, check the length, open, compare; returns the sealed bytes */
static uint8_t *seal_ok(const uint8_t key[32], const uint8_t *ad, size_t adl, const uint8_t *v,
                        size_t n) {
  uint8_t *s = malloc(n + CL_VALUE_OVERHEAD), *back = malloc(n + 1);
  cr_assert(s && back);
  cr_assert_eq(cl_value_seal(key, ad, adl, v, n, s), 0);
  cr_assert_eq(cl_value_open(key, ad, adl, s, n + CL_VALUE_OVERHEAD, back), 0, "%zu bytes", n);
  cr_assert(n == 0 || memcmp(back, v, n) == 0, "%zu bytes round-trip", n);
  cr_assert(n < 8 || !memmem(s, n + CL_VALUE_OVERHEAD, v, 8), "no plaintext in the sealed form");
  free(back);
  return s;
}

static void opens_and_refuses(void) {
  uint8_t key[32], other[32], v[5000], back[5000];
  randombytes_buf(key, sizeof key);
  randombytes_buf(other, sizeof other);
  for (size_t i = 0; i < sizeof SIZES / sizeof *SIZES; i++) {
    size_t n = SIZES[i], len = n + CL_VALUE_OVERHEAD;
    fill(v, n, (unsigned)i);
    uint8_t *s = seal_ok(key, AD, sizeof AD, v, n);
    cr_assert_eq(cl_value_open(other, AD, sizeof AD, s, len, back), CL_ECRYPTO, "other key");
    cr_assert_eq(cl_value_open(key, AD, sizeof AD - 1, s, len, back), CL_ECRYPTO, "other AD");
    /* any flipped bit, in the nonce, the ciphertext or the tag */
    size_t at[] = {0, CL_VALUE_NONCE_SIZE - 1, CL_VALUE_NONCE_SIZE, len - 17, len - 1};
    for (size_t j = 0; j < sizeof at / sizeof *at; j++) {
      if (at[j] >= len || (n == 0 && at[j] == CL_VALUE_NONCE_SIZE))
        continue;
      s[at[j]] ^= 0x10;
      memset(back, 0xAA, sizeof back);
      cr_assert_eq(cl_value_open(key, AD, sizeof AD, s, len, back), CL_ECRYPTO, "byte %zu of %zu",
                   at[j], len);
      for (size_t k = 0; k < n; k++)
        cr_assert_eq(back[k], 0, "what does not open is wiped (byte %zu)", k);
      s[at[j]] ^= 0x10;
    }
    cr_assert_eq(cl_value_open(key, AD, sizeof AD, s, CL_VALUE_OVERHEAD - 1, back), CL_ECORRUPT);
    free(s);
  }
}

Test(value_seal, a_value_opens_with_its_key_and_ad_only) { opens_and_refuses(); }

Test(value_seal, the_openssl_path_opens_and_refuses_alike) {
  cl_value_use_openssl(1);
  opens_and_refuses();
}

Test(value_seal, sealing_is_deterministic_and_the_nonce_follows_the_value) {
  uint8_t key[32], v[500];
  randombytes_buf(key, sizeof key);
  fill(v, sizeof v, 1);
  uint8_t *a = seal_ok(key, AD, sizeof AD, v, sizeof v);
  uint8_t *b = seal_ok(key, AD, sizeof AD, v, sizeof v);
  cr_assert_arr_eq(a, b, sizeof v + CL_VALUE_OVERHEAD, "the same value, the same bytes");
  v[499] ^= 1;
  uint8_t *c = seal_ok(key, AD, sizeof AD, v, sizeof v);
  cr_assert_arr_neq(a, c, CL_VALUE_NONCE_SIZE, "another value, another nonce");
  v[499] ^= 1;
  uint8_t *d = seal_ok(key, AD, sizeof AD - 1, v, sizeof v);
  cr_assert_arr_neq(a, d, CL_VALUE_NONCE_SIZE, "another AD, another nonce");
  free(a);
  free(b);
  free(c);
  free(d);
}

/* HMAC-SHA-256 by libsodium (store/sha256.c uses OpenSSL's) */
static void hmac(uint8_t out[32], const uint8_t key[32], const uint8_t *a, size_t an,
                 const uint8_t *b, size_t bn, const uint8_t *c, size_t cn) {
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, key, 32);
  crypto_auth_hmacsha256_update(&st, a, an);
  crypto_auth_hmacsha256_update(&st, b, bn);
  crypto_auth_hmacsha256_update(&st, c, cn);
  crypto_auth_hmacsha256_final(&st, out);
}

/* The construction as crypt.h and docs/format.md write it down. */
static void expected(const uint8_t dk[32], const uint8_t *ad, size_t adl, const uint8_t *v,
                     size_t n, uint8_t *out) {
  static const char KL[] = "clinlog-pv-v2 key", NL[] = "clinlog-pv-v2 nonce";
  uint8_t vk[32], nk[32], mac[32], len[8];
  hmac(vk, dk, (const uint8_t *)KL, sizeof KL, NULL, 0, NULL, 0);
  hmac(nk, dk, (const uint8_t *)NL, sizeof NL, NULL, 0, NULL, 0);
  for (int i = 0; i < 8; i++)
    len[i] = (uint8_t)((uint64_t)adl >> (8 * i));
  hmac(mac, nk, len, 8, ad, adl, v, n);
  memcpy(out, mac, 12);
  EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
  int l;
  cr_assert_eq(EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, vk, out), 1);
  cr_assert_eq(EVP_EncryptUpdate(c, NULL, &l, ad, (int)adl), 1);
  cr_assert_eq(EVP_EncryptUpdate(c, out + 12, &l, v, (int)n), 1);
  cr_assert_eq(EVP_EncryptFinal_ex(c, out + 12 + l, &l), 1);
  cr_assert_eq(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, out + 12 + n), 1);
  EVP_CIPHER_CTX_free(c);
}

Test(value_seal, the_bytes_are_the_documented_construction_on_both_paths) {
  uint8_t key[32], v[5000], want[5000 + CL_VALUE_OVERHEAD], back[5000];
  randombytes_buf(key, sizeof key);
  for (size_t i = 0; i < sizeof SIZES / sizeof *SIZES; i++) {
    size_t n = SIZES[i], len = n + CL_VALUE_OVERHEAD;
    fill(v, n, (unsigned)i + 7);
    expected(key, AD, sizeof AD, v, n, want);
    cl_value_use_openssl(0);
    uint8_t *by_cpu = seal_ok(key, AD, sizeof AD, v, n);
    cl_value_use_openssl(1);
    uint8_t *by_openssl = seal_ok(key, AD, sizeof AD, v, n);
    cr_assert_arr_eq(by_cpu, want, len, "%zu bytes: the chosen path", n);
    cr_assert_arr_eq(by_openssl, want, len, "%zu bytes: OpenSSL's path", n);
    /* each opens the other's */
    cr_assert_eq(cl_value_open(key, AD, sizeof AD, by_cpu, len, back), 0);
    cl_value_use_openssl(0);
    cr_assert_eq(cl_value_open(key, AD, sizeof AD, by_openssl, len, back), 0);
    cr_assert(n == 0 || memcmp(back, v, n) == 0);
    free(by_cpu);
    free(by_openssl);
  }
}

/* The value keys (cl_value_keys), derived once and kept by the key cache:
 * sealing and opening with them is sealing and opening with the data key,
 * byte for byte, on both paths; derived over the key itself (the cache's
 * miss path) they are the same. */
Test(value_seal, value_keys_seal_and_open_as_the_data_key_does) {
  for (int path = 0; path < 2; path++) {
    cl_value_use_openssl(path);
    uint8_t key[32], keys[CL_VALUE_KEYS], over[CL_VALUE_KEYS], v[5000], back[5000];
    randombytes_buf(key, sizeof key);
    cl_value_keys(key, keys);
    memcpy(over + 32, key, 32);
    cl_value_keys(over + 32, over);
    cr_assert_arr_eq(over, keys, sizeof keys, "derived over the key itself");
    for (size_t i = 0; i < sizeof SIZES / sizeof *SIZES; i++) {
      size_t n = SIZES[i], len = n + CL_VALUE_OVERHEAD;
      fill(v, n, (unsigned)i + 40);
      uint8_t *s = seal_ok(key, AD, sizeof AD, v, n), *sk = malloc(len);
      cr_assert_not_null(sk);
      cr_assert_eq(cl_value_seal_k(keys, AD, sizeof AD, v, n, sk), 0);
      cr_assert_arr_eq(sk, s, len, "%zu bytes: the same bytes", n);
      cr_assert_eq(cl_value_open_k(keys, AD, sizeof AD, s, len, back), 0);
      cr_assert(n == 0 || memcmp(back, v, n) == 0);
      sk[len - 1] ^= 1;
      cr_assert_eq(cl_value_open_k(keys, AD, sizeof AD, sk, len, back), CL_ECRYPTO, "tampered");
      keys[0] ^= 1;
      cr_assert_eq(cl_value_open_k(keys, AD, sizeof AD, s, len, back), CL_ECRYPTO, "other keys");
      keys[0] ^= 1;
      cr_assert_eq(cl_value_open_k(keys, AD, sizeof AD, s, CL_VALUE_OVERHEAD - 1, back),
                   CL_ECORRUPT);
      free(s);
      free(sk);
    }
  }
}

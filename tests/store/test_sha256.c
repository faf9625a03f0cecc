/* Tests for store/sha256.c: the published vectors (FIPS 180-2 appendix B
 * for SHA-256, RFC 4231 section 4 for HMAC-SHA-256), and agreement with
 * libsodium's independent implementation for every length across the
 * block boundaries, fed whole and in random pieces. */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "store/sha256.h"

static void hex(const char *h, uint8_t *out, size_t n) {
  size_t got = 0;
  cr_assert_eq(sodium_hex2bin(out, n, h, strlen(h), NULL, &got, NULL), 0);
  cr_assert_eq(got, n);
}

static void init(void) { cr_assert_geq(sodium_init(), 0); }

TestSuite(sha256, .init = init);

Test(sha256, fips_180_2_vectors) {
  static const struct {
    const char *msg;
    const char *digest;
  } v[] = {
      {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
  };
  for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
    uint8_t want[32], got[32];
    hex(v[i].digest, want, 32);
    cl_sha256(got, v[i].msg, strlen(v[i].msg));
    cr_assert_arr_eq(got, want, 32, "vector %zu", i);
  }
  /* one million 'a', fed in pieces of 1,000 */
  uint8_t a[1000], want[32], got[32];
  memset(a, 'a', sizeof a);
  cl_sha256_state s;
  cl_sha256_init(&s);
  for (int i = 0; i < 1000; i++)
    cl_sha256_update(&s, a, sizeof a);
  cl_sha256_final(&s, got);
  hex("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", want, 32);
  cr_assert_arr_eq(got, want, 32);
}

Test(sha256, rfc_4231_hmac_vectors) {
  uint8_t key[131], data[160], want[32], got[32];
  /* 4.2: key 0x0b x 20, "Hi There" */
  memset(key, 0x0b, 20);
  hex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", want, 32);
  cl_hmac256(got, "Hi There", 8, key, 20);
  cr_assert_arr_eq(got, want, 32, "4.2");
  /* 4.3: key "Jefe" */
  hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", want, 32);
  cl_hmac256(got, "what do ya want for nothing?", 28, (const uint8_t *)"Jefe", 4);
  cr_assert_arr_eq(got, want, 32, "4.3");
  /* 4.4: key 0xaa x 20, data 0xdd x 50 */
  memset(key, 0xaa, 20);
  memset(data, 0xdd, 50);
  hex("773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe", want, 32);
  cl_hmac256(got, data, 50, key, 20);
  cr_assert_arr_eq(got, want, 32, "4.4");
  /* 4.7: a key longer than a block (0xaa x 131), hashed first */
  memset(key, 0xaa, 131);
  static const char m7[] = "This is a test using a larger than block-size key and a larger than "
                           "block-size data. The key needs to be hashed before being used by the "
                           "HMAC algorithm.";
  hex("9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2", want, 32);
  cl_hmac256_state h;
  cl_hmac256_init(&h, key, sizeof key);
  cl_hmac256_update(&h, m7, 50); /* in two pieces */
  cl_hmac256_update(&h, m7 + 50, sizeof m7 - 1 - 50);
  cl_hmac256_final(&h, got);
  cr_assert_arr_eq(got, want, 32, "4.7");
}

Test(sha256, agrees_with_libsodium_at_every_length_and_split) {
  uint8_t buf[600], key[32], a[32], b[32];
  randombytes_buf(buf, sizeof buf);
  randombytes_buf(key, sizeof key);
  for (size_t n = 0; n <= sizeof buf; n++) {
    crypto_hash_sha256(a, buf, n);
    cl_sha256(b, buf, n);
    cr_assert_arr_eq(a, b, 32, "SHA-256 of %zu bytes", n);
    /* the same bytes in random pieces */
    cl_sha256_state s;
    cl_sha256_init(&s);
    for (size_t at = 0; at < n;) {
      size_t k = 1 + randombytes_uniform(130);
      if (k > n - at)
        k = n - at;
      cl_sha256_update(&s, buf + at, k);
      at += k;
    }
    cl_sha256_final(&s, b);
    cr_assert_arr_eq(a, b, 32, "SHA-256 of %zu bytes in pieces", n);
    crypto_auth_hmacsha256(a, buf, n, key);
    cl_hmac256(b, buf, n, key, sizeof key);
    cr_assert_arr_eq(a, b, 32, "HMAC of %zu bytes", n);
  }
}

Test(sha256, a_copied_state_continues_its_prefix_and_final_wipes) {
  uint8_t key[32], a[32], b[32];
  randombytes_buf(key, sizeof key);
  cl_hmac256_state prefix;
  cl_hmac256_init(&prefix, key, sizeof key);
  cl_hmac256_update(&prefix, "proj.fhir", 10);
  for (int i = 0; i < 3; i++) {
    char ident[8];
    snprintf(ident, sizeof ident, "id-%d", i);
    cl_hmac256_state st = prefix;
    cl_hmac256_update(&st, ident, strlen(ident));
    cl_hmac256_final(&st, a);
    uint8_t whole[20];
    memcpy(whole, "proj.fhir", 10);
    memcpy(whole + 10, ident, strlen(ident));
    crypto_auth_hmacsha256(b, whole, 10 + strlen(ident), key);
    cr_assert_arr_eq(a, b, 32, "ident %d", i);
    static const cl_hmac256_state zero;
    cr_assert_arr_eq(&st, &zero, sizeof st, "final left the state");
  }
}

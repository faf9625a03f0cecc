/* SHA-256 and HMAC-SHA-256 through libcrypto; see sha256.h.
 *
 * OpenSSL 3 marks SHA256_Init/Update/Final deprecated in favour of EVP,
 * but keeps them, and they are what reaches the accelerated block function
 * without EVP's per-call dispatch (0.03 µs a hash, a third of a Merkle
 * node's cost here) or a heap-allocated context. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "store/sha256.h"

#include <openssl/sha.h>
#include <sodium.h>
#include <string.h>

_Static_assert(sizeof(SHA256_CTX) <= sizeof(((cl_sha256_state *)0)->opaque),
               "cl_sha256_state too small for SHA256_CTX");
_Static_assert(_Alignof(SHA256_CTX) <= 8, "cl_sha256_state under-aligned for SHA256_CTX");

#define CTX(s) ((SHA256_CTX *)(void *)(s)->opaque)
#define BLOCK 64

void cl_sha256_init(cl_sha256_state *s) { SHA256_Init(CTX(s)); }

void cl_sha256_update(cl_sha256_state *s, const void *p, size_t n) {
  if (n)
    SHA256_Update(CTX(s), p, n);
}

void cl_sha256_final(cl_sha256_state *s, uint8_t out[CL_SHA256_BYTES]) {
  SHA256_Final(out, CTX(s));
  sodium_memzero(s, sizeof *s);
}

void cl_sha256(uint8_t out[CL_SHA256_BYTES], const void *p, size_t n) {
  cl_sha256_state s;
  cl_sha256_init(&s);
  cl_sha256_update(&s, p, n);
  cl_sha256_final(&s, out);
}

void cl_hmac256_init(cl_hmac256_state *h, const uint8_t *key, size_t keylen) {
  uint8_t k[BLOCK] = {0}, pad[BLOCK];
  if (keylen > BLOCK)
    cl_sha256(k, key, keylen);
  else if (keylen)
    memcpy(k, key, keylen);
  for (int i = 0; i < BLOCK; i++)
    pad[i] = k[i] ^ 0x36;
  cl_sha256_init(&h->in);
  cl_sha256_update(&h->in, pad, BLOCK);
  for (int i = 0; i < BLOCK; i++)
    pad[i] = k[i] ^ 0x5c;
  cl_sha256_init(&h->out);
  cl_sha256_update(&h->out, pad, BLOCK);
  sodium_memzero(k, sizeof k);
  sodium_memzero(pad, sizeof pad);
}

void cl_hmac256_update(cl_hmac256_state *h, const void *p, size_t n) { cl_sha256_update(&h->in, p, n); }

void cl_hmac256_final(cl_hmac256_state *h, uint8_t out[CL_SHA256_BYTES]) {
  uint8_t ih[CL_SHA256_BYTES];
  cl_sha256_final(&h->in, ih);
  cl_sha256_update(&h->out, ih, sizeof ih);
  cl_sha256_final(&h->out, out);
  sodium_memzero(ih, sizeof ih);
}

void cl_hmac256(uint8_t out[CL_SHA256_BYTES], const void *p, size_t n, const uint8_t *key,
                size_t keylen) {
  cl_hmac256_state h;
  cl_hmac256_init(&h, key, keylen);
  cl_hmac256_update(&h, p, n);
  cl_hmac256_final(&h, out);
}

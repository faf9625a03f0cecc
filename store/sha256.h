/* SHA-256 (FIPS 180-4) and HMAC-SHA-256 (RFC 2104), for every hash the
 * store and the views compute per event: RFC 9162 leaf and node hashes,
 * the hash an event's signature covers, keyed index keys, stream tags,
 * logical ids.
 *
 * Computed by OpenSSL's libcrypto, which uses the CPU's SHA extensions
 * where it has them (x86 SHA-NI, ARMv8 SHA2) and tuned assembly where not.
 * libsodium's SHA-256 is portable C: on the development VM (AMD EPYC with
 * SHA-NI) it took 0.35 µs for a Merkle node (65 bytes), 1.3 µs for 500
 * bytes and 0.76 µs for an HMAC of 32 bytes, this 0.10, 0.31 and about
 * 0.15. The digests are the same bytes (tests/store/test_sha256.c checks
 * both against each other and against FIPS 180-2's and RFC 4231's
 * vectors), so nothing on disk or on the wire changes.
 *
 * The states are plain values: copy one to continue a common prefix more
 * than once (cl_proj_hash, a record's leaf). A final wipes its state;
 * a copy made of an HMAC state holds key material (its padded-key blocks
 * are hashed into it), so keep long-lived ones in sodium_malloc memory
 * and wipe copies (sodium_memzero) once done. Reentrant; no global state. */
#ifndef CL_STORE_SHA256_H
#define CL_STORE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define CL_SHA256_BYTES 32

/* Room for OpenSSL's SHA256_CTX (112 bytes in 3.0; checked at build). */
typedef struct cl_sha256_state {
  _Alignas(8) uint8_t opaque[128];
} cl_sha256_state;

typedef struct cl_hmac256_state {
  cl_sha256_state in, out; /* after the key's inner and outer pad blocks */
} cl_hmac256_state;

void cl_sha256_init(cl_sha256_state *s);
void cl_sha256_update(cl_sha256_state *s, const void *p, size_t n);
/* Writes the digest and wipes s (init it again to reuse it). */
void cl_sha256_final(cl_sha256_state *s, uint8_t out[CL_SHA256_BYTES]);
/* SHA-256 of p[0..n). */
void cl_sha256(uint8_t out[CL_SHA256_BYTES], const void *p, size_t n);

/* HMAC-SHA-256 under key[0..keylen) (any length: longer than a block is
 * hashed first, as RFC 2104 says). */
void cl_hmac256_init(cl_hmac256_state *h, const uint8_t *key, size_t keylen);
void cl_hmac256_update(cl_hmac256_state *h, const void *p, size_t n);
/* Writes the MAC and wipes h. */
void cl_hmac256_final(cl_hmac256_state *h, uint8_t out[CL_SHA256_BYTES]);
void cl_hmac256(uint8_t out[CL_SHA256_BYTES], const void *p, size_t n, const uint8_t *key,
                size_t keylen);

#endif

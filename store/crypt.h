/* Encryption at rest: key derivation from the master key, stream tags,
 * wrapping of per-stream data keys, and sealing/opening event payloads and
 * projection values. Pure functions over caller-provided keys (the log
 * keeps the keys; see log_int.h, streamkey.c and masterkey.h).
 *
 * Keys derived from the master key (crypto_kdf, context "cl-...1"):
 *   | id | context  | use                                                  |
 *   |----|----------|------------------------------------------------------|
 *   |  1 | cl-stag1 | tag key: HMAC-SHA-256 stream tags (fixed, below)     |
 *   |  2 | cl-wrap1 | wrap key: XChaCha20-Poly1305 over data keys          |
 *   |  3 | cl-kchk1 | key check (16 bytes in meta; identifies the key)     |
 *   |  4 | cl-ptag1 | projection key: keyed hashes in projection keys      |
 *   |    |          | (fixed, below)                                       |
 *   |  5 | cl-fkey1 | fixed-keys key: seals the two fixed keys in meta     |
 *
 * The tag key and the projection key are fixed for the life of a log:
 * stream tags are RocksDB keys and sit in every record header (under the
 * Merkle tree), projection keys in every projection index. They are derived
 * from the master key the log was created with. A master key rotation
 * (masterkey.h) keeps them: it seals both under the new master key's key 5
 * into meta ("fixed_keys"), and from then on they are unsealed from there;
 * only the wrap key and the key check follow the current master key.
 *
 * Ciphertexts (XChaCha20-Poly1305 IETF, 24-byte nonce, 16-byte tag; but
 * projection values: AES-256-GCM, 12-byte nonce, 16-byte tag):
 *   | what              | key            | associated data                  | nonce          |
 *   |-------------------|----------------|----------------------------------|----------------|
 *   | wrapped data key  | wrap key       | "clinlog-dk-v1\0" || tag[32]     | random (1)     |
 *   | event payload     | data key       | tag[32] || event id[16]          | random         |
 *   | projection value  | value key (2)  | caller's AD                      | synthetic (2)  |
 *   | fixed keys (meta) | fixed-keys key | "clinlog-fixed-keys-v1\0"        | random         |
 *   | retired wrap keys | fixed-keys key | "clinlog-retired-wrap-keys-v1\0" | random         |
 *
 * (1) Drawn when the data key is minted and kept when a rotation rewraps it
 * under a new wrap key (cl_rewrap_key): the committer identifies a
 * stream's committed key by that nonce (log_int.h, wk_nonce), so apply
 * stays deterministic across a rotation. Under any one wrap key a nonce
 * still seals one plaintext only: a stream's data key never changes.
 * (2) Projection values are sealed with AES-256-GCM under the value key,
 * HMAC-SHA-256(data key, "clinlog-pv-v2 key" 0x00), with a synthetic nonce:
 * the first 12 bytes of HMAC-SHA-256(nonce key, AD length u64 LE || AD ||
 * value), the nonce key being HMAC-SHA-256(data key, "clinlog-pv-v2 nonce"
 * 0x00). Deterministic, so a rebuilt projection is byte-identical to the
 * live one; it reveals only that two values under the same key, AD and
 * plaintext are equal. Distinct values get independent nonces: with q
 * values ever sealed under one stream's key, two share a nonce with
 * probability below q^2 / 2^97 (NIST SP 800-38D's bound for random GCM
 * nonces holds to 2^32 values a key; a stream seals far fewer). Until
 * 2026-12-07: XChaCha20-Poly1305 under the data key with a keyed-BLAKE2b
 * nonce, 2.4x slower to seal and 2.9x to open (docs/format.md). */
#ifndef CL_STORE_CRYPT_H
#define CL_STORE_CRYPT_H

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>

#include "store/err.h"

#define CL_TAG_SIZE 32
#define CL_DATA_KEY_SIZE 32
#define CL_NONCE_SIZE 24
#define CL_AEAD_ABYTES crypto_aead_xchacha20poly1305_ietf_ABYTES
#define CL_WRAPPED_KEY_SIZE (24 + 32 + 16) /* nonce, key, tag */
/* a sealed secret in meta: nonce || ciphertext (plaintext + 16) */
#define CL_SEALED_OVERHEAD (CL_NONCE_SIZE + CL_AEAD_ABYTES)
/* a sealed projection value: nonce[12] || ciphertext || tag[16] */
#define CL_VALUE_NONCE_SIZE 12
#define CL_VALUE_OVERHEAD (CL_VALUE_NONCE_SIZE + 16)

/* The tag key and the wrap key (32 bytes each) of a master key. */
void cl_derive_tag_key(const uint8_t *master, uint8_t *tag_key);
void cl_derive_wrap_key(const uint8_t *master, uint8_t *wrap_key);
/* The projection key (32 bytes) for keyed hashes in projection keys. */
void cl_derive_proj_key(const uint8_t *master, uint8_t *proj_key);
/* The key check value stored in meta: 16 bytes of a subkey that no other
 * derivation uses, so it identifies the master key without revealing it. */
void cl_key_check(const uint8_t *master, uint8_t out[16]);

/* The fixed-keys key (32 bytes): seals the tag and projection keys. */
void cl_derive_fixed_seal_key(const uint8_t *master, uint8_t *seal_key);

/* Secrets kept in meta, sealed under the fixed-keys key with a fresh
 * nonce: nonce || ciphertext (n + CL_SEALED_OVERHEAD bytes); `what`, with
 * its NUL, is the associated data naming them. */
#define CL_AD_FIXED_KEYS "clinlog-fixed-keys-v1"          /* tag key || projection key */
#define CL_AD_RETIRED_WRAP "clinlog-retired-wrap-keys-v1" /* wrap keys of retired master keys */
#define CL_FIXED_KEYS_SEALED_SIZE (64 + CL_SEALED_OVERHEAD)
#define CL_RETIRED_WRAP_MAX 4 /* wrap keys of retired master keys kept (masterkey.h) */
void cl_secret_seal(const uint8_t *seal_key, const char *what, const uint8_t *plain, size_t n,
                    uint8_t *out);
/* Opens into plain (len - CL_SEALED_OVERHEAD bytes). Returns 0, or
 * CL_ECORRUPT (shorter than the overhead), CL_ECRYPTO (wrong master key,
 * tampered, another `what`). */
CL_MUST_CHECK int cl_secret_open(const uint8_t *seal_key, const char *what, const uint8_t *sealed,
                                 size_t len, uint8_t *plain);

/* Keyed stream tag: HMAC-SHA-256(tag key, stream name). */
void cl_stream_tag(const uint8_t *tag_key, const char *stream, size_t len, uint8_t tag[32]);

/* Wraps a data key for the stream `tag` under the wrap key (fresh nonce). */
void cl_wrap_key(const uint8_t *wrap_key, const uint8_t tag[32], const uint8_t *key,
                 uint8_t out[CL_WRAPPED_KEY_SIZE]);
/* Unwraps into key[32]. Returns 0, or CL_ECRYPTO (wrong size, wrong key,
 * wrong stream, tampered). */
CL_MUST_CHECK int cl_unwrap_key(const uint8_t *wrap_key, const uint8_t tag[32],
                                const uint8_t *wrapped, size_t n, uint8_t *key);
/* Rewraps a wrapped data key from old_wk to new_wk keeping its nonce (see
 * the header comment); `scratch` (32 bytes, secure memory) holds the data
 * key meanwhile and is wiped. Returns 0, or CL_ECRYPTO (does not unwrap
 * under old_wk). */
CL_MUST_CHECK int cl_rewrap_key(const uint8_t *old_wk, const uint8_t *new_wk, const uint8_t tag[32],
                                const uint8_t *wrapped, size_t n, uint8_t *scratch,
                                uint8_t out[CL_WRAPPED_KEY_SIZE]);

/* AEAD associated data of an event payload: tag || event id. */
void cl_event_ad(const uint8_t tag[32], const uint8_t id[16], uint8_t ad[48]);

/* Encrypts a serialized event under its stream's data key with a fresh
 * nonce: ct gets n + CL_AEAD_ABYTES bytes. */
void cl_event_seal(const uint8_t *key, const uint8_t tag[32], const uint8_t id[16],
                   const uint8_t *plain, size_t n, uint8_t nonce[CL_NONCE_SIZE], uint8_t *ct);

/* Decrypts an event payload (all inputs borrowed). On success *plain is
 * returned-owned: wipe it with sodium_memzero(*plain, *n) and cl_free it.
 * Errors: CL_ECRYPTO (does not decrypt: wrong key or tampered),
 * CL_ECORRUPT (ciphertext shorter than its tag), CL_ENOMEM. */
CL_MUST_CHECK int cl_event_open(const uint8_t *key, const uint8_t tag[32], const uint8_t id[16],
                                const uint8_t nonce[CL_NONCE_SIZE], const uint8_t *ct, size_t ctlen,
                                uint8_t **plain, size_t *n);

/* Seals a projection value deterministically under the data key `key`
 * (see the header comment, (2)): out gets n + CL_VALUE_OVERHEAD bytes.
 * libsodium's AES-GCM where the CPU has AES-NI and PCLMUL (the expanded
 * key in secure memory, wiped after), OpenSSL's otherwise (its context
 * cleansed when freed): the same bytes. Returns 0, or CL_ENOMEM (no
 * secure memory, or OpenSSL's context), CL_ETOOBIG (n or adlen over
 * INT_MAX, OpenSSL's limit), CL_ECRYPTO (OpenSSL failed). */
CL_MUST_CHECK int cl_value_seal(const uint8_t *key, const uint8_t *ad, size_t adlen,
                                const uint8_t *plain, size_t n, uint8_t *out);
/* Opens a sealed value into out (len - CL_VALUE_OVERHEAD bytes; wiped
 * when it does not open). Errors: CL_ECORRUPT (too short), CL_ECRYPTO
 * (wrong key or AD, tampered), CL_ENOMEM, CL_ETOOBIG as above. */
CL_MUST_CHECK int cl_value_open(const uint8_t *key, const uint8_t *ad, size_t adlen,
                                const uint8_t *sealed, size_t len, uint8_t *out);
/* The value keys of data key `key` (CL_VALUE_KEYS bytes: the value key,
 * then the nonce key; see the header comment, (2)), which cl_value_seal_k
 * and cl_value_open_k take instead of the data key: a cache of data keys
 * keeps them beside each key (store/streamkey.c), so a value sealed or
 * opened costs no derivation. keys may hold `key` itself (read whole
 * first). */
#define CL_VALUE_KEYS 64
void cl_value_keys(const uint8_t *key, uint8_t keys[CL_VALUE_KEYS]);
/* As cl_value_seal and cl_value_open, with the data key's value keys. */
CL_MUST_CHECK int cl_value_seal_k(const uint8_t keys[CL_VALUE_KEYS], const uint8_t *ad,
                                  size_t adlen, const uint8_t *plain, size_t n, uint8_t *out);
CL_MUST_CHECK int cl_value_open_k(const uint8_t keys[CL_VALUE_KEYS], const uint8_t *ad,
                                  size_t adlen, const uint8_t *sealed, size_t len, uint8_t *out);
/* Tests only: 1 makes cl_value_seal/open use OpenSSL's AES-GCM even where
 * libsodium's runs, 0 goes back to the choice by CPU. Not thread-safe. */
void cl_value_use_openssl(int on);

/* Per-thread scratch in sodium_malloc memory for data keys in use, so the
 * hot paths (every read, every batch) do not pay sodium_malloc's mmap,
 * mprotect and mlock each time. One slot per use, so a read inside a
 * prepare cannot clobber the prepare's keys. At least n bytes, or NULL (out
 * of memory). Valid until the thread exits or the slot is asked for more;
 * callers wipe what they put in it. */
enum {
  CL_SCRATCH_PREPARE,
  CL_SCRATCH_READ,
  CL_SCRATCH_PROJ,
  CL_SCRATCH_COMMIT, /* the committer's check of minted keys (commit.c) */
  CL_SCRATCH_VALUE,  /* a projection value's keys (cl_value_seal, cl_value_open) */
  CL_SCRATCH_SLOTS
};
uint8_t *cl_secure_scratch(int slot, size_t n);

/* Fills out with n random bytes, like randombytes_buf, for what lives in
 * ordinary memory: nonces and ids (stored or sent in the clear next to what
 * they belong to) and a hash map's seed (hmap.h). Taken from a per-thread
 * buffer of the kernel's random bytes (randombytes_buf, 4 KiB at a time),
 * so it costs no syscall: a single-event append made four to five
 * getrandom calls before (nonces, an id, two hash maps' seeds), and a
 * syscall is dear on a VM (docs/bench.md, syscalls per event). The
 * buffer's page is wiped in a forked child (MADV_WIPEONFORK), which then
 * refills it, so parent and child never hand out the same bytes; where
 * that is not available, and for n > 256, every call asks the kernel.
 * Handed-out bytes are erased from the buffer. Never for keys kept in
 * sodium_malloc memory (data keys, the master key): those come from
 * randombytes_buf straight into it. */
void cl_random_buf(uint8_t *out, size_t n);

#endif

/* Key material: Ed25519 signing keys and the master key, their 0600 files,
 * and the signatures clinlog defines. Secrets live only in sodium_malloc
 * memory (guarded, locked, wiped on free).
 *
 * Key file formats (binary, 40 bytes, mode 0600):
 *   | offset | size | field                                    |
 *   |      0 |    8 | magic: "clkeyed1" (Ed25519) / "clkeymk1" |
 *   |      8 |   32 | Ed25519 seed / master key                |
 * Public key files (".pub") are text: "ed25519:<base64 public key>\n".
 *
 * Signed messages (Ed25519, detached, over the exact bytes):
 *   event: "clinlog-event-v1" 0x00 || SHA-256(serialized Event)
 *   batch: "clinlog-batch-v1" 0x00 || u32 BE count || hash_1 || ... || hash_n
 * Signing hashes rather than the event lets an auditor check signatures
 * from the stored records alone, also after a stream was crypto-shredded. */
#ifndef CL_STORE_KEYS_H
#define CL_STORE_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "store/err.h"

#define CL_PUBKEY_SIZE 32
#define CL_SIG_SIZE 64
#define CL_MASTER_KEY_SIZE 32

/* An Ed25519 key pair; `sk` (64 bytes, libsodium layout) is sodium_malloc'd. */
typedef struct cl_signer {
  uint8_t pk[CL_PUBKEY_SIZE];
  uint8_t *sk;
} cl_signer;

/* The master key, in sodium_malloc'd memory. */
typedef struct cl_master_key {
  uint8_t *key;  /* CL_MASTER_KEY_SIZE bytes */
} cl_master_key;

/* Must be called once before any other function (idempotent, thread-safe). */
int cl_crypto_init(cl_err *err);

/* Generates a new key pair. On success the caller owns *s (cl_signer_free). */
int cl_signer_generate(cl_signer *s, cl_err *err);
void cl_signer_free(cl_signer *s);

/* Writes the secret key to `path` (created 0600, must not exist) and the
 * public key to "<path>.pub". Errors: CL_EEXIST, CL_EIO. */
int cl_signer_save(const cl_signer *s, const char *path, cl_err *err);

/* Loads a secret key file. Refuses files readable by group/other.
 * Errors: CL_ENOTFOUND, CL_EIO, CL_EMALFORMED, CL_EDENIED (permissions). */
int cl_signer_load(cl_signer *s, const char *path, cl_err *err);

/* Reads a public key from the first line holding "ed25519:<base64>" (a
 * ".pub" file, or the data directory's log.pub). */
int cl_pubkey_load(uint8_t pk[CL_PUBKEY_SIZE], const char *path, cl_err *err);

int cl_master_key_generate(cl_master_key *k, cl_err *err);
int cl_master_key_save(const cl_master_key *k, const char *path, cl_err *err);
int cl_master_key_load(cl_master_key *k, const char *path, cl_err *err);
void cl_master_key_free(cl_master_key *k);

/* SHA-256 of a serialized Event. */
void cl_event_hash(const uint8_t *event, size_t len, uint8_t out[32]);

/* Signatures over event hashes (see the header comment). */
void cl_sign_event(const cl_signer *s, const uint8_t hash[32], uint8_t sig[CL_SIG_SIZE]);
void cl_sign_batch(const cl_signer *s, const uint8_t (*hashes)[32], size_t n,
                   uint8_t sig[CL_SIG_SIZE]);
CL_MUST_CHECK int cl_verify_event(const uint8_t pk[CL_PUBKEY_SIZE], const uint8_t hash[32],
                                  const uint8_t sig[CL_SIG_SIZE]);
CL_MUST_CHECK int cl_verify_batch(const uint8_t pk[CL_PUBKEY_SIZE], const uint8_t (*hashes)[32],
                                  size_t n, const uint8_t sig[CL_SIG_SIZE]);

/* Lowercase hex of `n` bytes into out (2n+1 bytes). */
void cl_hex(const uint8_t *p, size_t n, char *out);
/* A fresh random (version 4) UUID, of cl_random_buf's bytes (not secret). */
void cl_uuid_v4(uint8_t id[16]);
/* A 16-byte id as UUID text, "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (lowercase). */
void cl_uuid_text(const uint8_t id[16], char out[37]);

#endif

/* Internals of the log shared by log.c and verify.c. No other module
 * includes this. */
#ifndef CL_STORE_LOG_INT_H
#define CL_STORE_LOG_INT_H

#include <stddef.h>
#include <stdint.h>

#include "store/err.h"
#include "store/log.h"

/* Meta keys (meta column family). */
#define CL_META_FORMAT "format"           /* u32 BE */
#define CL_META_TREE_SIZE "tree_size"     /* u64 BE */
#define CL_META_ROOT "root"               /* 32 bytes */
#define CL_META_ORIGIN "origin"           /* text */
#define CL_META_LOG_PK "log_public_key"   /* 32 bytes */
#define CL_META_APPLIED "applied_index"   /* u64 BE, replication */
#define CL_META_KEY_CHECK "key_check"     /* 16 bytes: proves which master key the log uses */

#define CL_TAG_SIZE 32

/* Roles with special meaning to the store. */
#define CL_ROLE_ADMIN "admin"
#define CL_ROLE_LOG "log"
#define CL_ROLE_SYSTEM "system"  /* interface engines and the server itself: may write $ streams */
#define CL_LOG_PRINCIPAL "$log"

/* One keyring entry (value of the keyring family and of the in-memory map). */
typedef struct cl_keyring_entry {
  uint64_t registered_seq;
  uint64_t revoked_seq;     /* 0: not revoked */
  char principal[128];
  char roles[256];          /* comma-separated */
} cl_keyring_entry;

/* Serialized form: u64 BE registered, u64 BE revoked, u16 BE len + principal,
 * u16 BE len + roles. Returns bytes written (buffer of >= 8+8+2+128+2+256). */
size_t cl_keyring_entry_encode(const cl_keyring_entry *e, uint8_t *buf);
int cl_keyring_entry_decode(const uint8_t *p, size_t n, cl_keyring_entry *e);
int cl_roles_has(const char *roles, const char *role);

/* Leaf index of a sequence number: leaves are 0-based, seqs 1-based. */
static inline uint64_t cl_leaf_index(uint64_t seq) { return seq - 1; }

/* AEAD associated data of an event ciphertext: tag || event id. */
void cl_event_ad(const uint8_t tag[32], const uint8_t id[16], uint8_t ad[48]);

/* Unwraps a stream data key (CL_WRAPPED_KEY_SIZE bytes) into key[32].
 * Returns 0, or CL_ECRYPTO. */
int cl_unwrap_key(const uint8_t *wrap_key, const uint8_t tag[32], const uint8_t *wrapped,
                  size_t n, uint8_t *key);

/* Derives the stream-tag and key-wrapping keys from the master key. */
void cl_derive_keys(const uint8_t *master, uint8_t *tag_key, uint8_t *wrap_key);
/* The key check value stored in meta: 16 bytes of a subkey that no other
 * derivation uses, so it identifies the master key without revealing it. */
void cl_key_check(const uint8_t *master, uint8_t out[16]);
void cl_stream_tag(const uint8_t *tag_key, const char *stream, size_t len, uint8_t tag[32]);

#endif

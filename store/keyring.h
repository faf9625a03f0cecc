/* The keyring: which Ed25519 key belongs to which principal, with which
 * roles, since and until which sequence number. It is a projection of the
 * security events in the log (LogCreated, PrincipalRegistered,
 * KeyRegistered, KeyRevoked), and this module is its one fold: the write
 * path (prepare and commit), catch-up (ingest) and the auditor's replay
 * (verify) derive, check and apply keyring changes with the same functions,
 * so they cannot disagree about who could sign what.
 *
 * Rules the fold keeps:
 *  - a change takes effect after its batch: with a batch signature it is
 *    stamped with the batch's last seq, with per-event signatures with its
 *    own event's seq; the signer of a batch is checked against the keyring
 *    as it stood before the batch;
 *  - a key is registered once; a principal is registered (with roles) once,
 *    and later keys of it (KeyRegistered) carry the roles of its first key;
 *  - only a registered, unrevoked key of the principal revokes;
 *  - the genesis: seq 1 is LogCreated signed by the log key it names,
 *    seq 2 the self-signed PrincipalRegistered of an admin.
 *
 * Serialized entry (value of the keyring column family):
 *   | offset | size | field                        |
 *   |      0 |    8 | registered_seq, u64 BE       |
 *   |      8 |    8 | revoked_seq, u64 BE (0: no)  |
 *   |     16 |    2 | principal length, u16 BE     |
 *   |     18 |    p | principal (UTF-8)            |
 *   |   18+p |    2 | roles length, u16 BE         |
 *   |   20+p |    r | roles, comma-separated       |
 *
 * A cl_keyring is not thread-safe: its owner's lock guards it. */
#ifndef CL_STORE_KEYRING_H
#define CL_STORE_KEYRING_H

#include <stddef.h>
#include <stdint.h>

#include "clinlog/v1/event.pb-c.h"
#include "clinlog/v1/record.pb-c.h"
#include "store/err.h"

/* Roles with special meaning to the store. */
#define CL_ROLE_ADMIN "admin"
#define CL_ROLE_LOG "log"
#define CL_ROLE_SYSTEM "system" /* interface engines and the server itself: may write $ streams */
#define CL_LOG_PRINCIPAL "$log"
/* The audit trail's stream: AccessRecorded events only, signed by the log key. */
#define CL_AUDIT_STREAM "$audit"

#define CL_PRINCIPAL_MAX 128 /* bytes, with the NUL */
#define CL_ROLES_MAX 256

typedef struct cl_keyring_entry {
  uint64_t registered_seq;
  uint64_t revoked_seq; /* 0: not revoked */
  char principal[CL_PRINCIPAL_MAX];
  char roles[CL_ROLES_MAX]; /* comma-separated */
} cl_keyring_entry;

#define CL_KEYRING_ENTRY_MAX (8 + 8 + 2 + CL_PRINCIPAL_MAX + 2 + CL_ROLES_MAX)

/* Encodes into buf (at least CL_KEYRING_ENTRY_MAX bytes); returns the length.
 */
size_t cl_keyring_entry_encode(const cl_keyring_entry *e, uint8_t *buf);
/* Decodes untrusted bytes. Errors: CL_ECORRUPT. */
int cl_keyring_entry_decode(const uint8_t *p, size_t n, cl_keyring_entry *e);

/* 1 if the comma-separated `roles` hold `role`. */
int cl_roles_has(const char *roles, const char *role);
/* Joins roles with ','. Errors: CL_EMALFORMED (an empty role, a ',' in one,
 * longer than outn - 1). */
int cl_roles_join(char *const *roles, size_t n, char *out, size_t outn, cl_err *err);

typedef struct cl_keyring cl_keyring;

/* Returns-owned (cl_keyring_free), NULL when out of memory. */
cl_keyring *cl_keyring_new(void);
void cl_keyring_free(cl_keyring *kr);
void cl_keyring_clear(cl_keyring *kr);

/* The entry of a key: a view valid until the next put/clear, or NULL. */
const cl_keyring_entry *cl_keyring_get(const cl_keyring *kr, const uint8_t pk[32]);
/* Inserts or replaces. Errors: CL_ENOMEM (the keyring is unchanged). */
int cl_keyring_put(cl_keyring *kr, const uint8_t pk[32], const cl_keyring_entry *e);
/* Iterates the keyring: start with *pos = 0; returns 1 with *pk and *e
 * (views valid until the next put/clear), 0 at the end. */
int cl_keyring_next(const cl_keyring *kr, size_t *pos, const uint8_t **pk,
                    const cl_keyring_entry **e);
/* Roles of a principal: those of its first registered key. Returns 1 and
 * copies them (truncated to n), or 0 if the principal is unknown. */
int cl_keyring_roles_of(const cl_keyring *kr, const char *principal, char *roles, size_t n);

/* One keyring change (the effect of one security event). */
typedef struct cl_keyring_change {
  int revoke; /* 0: register `key`, 1: revoke it */
  uint8_t key[32];
  char principal[CL_PRINCIPAL_MAX];
  int has_roles; /* register: 1 for a new principal (roles below), 0 for a
                    further key of a registered one */
  char roles[CL_ROLES_MAX];
  uint32_t event_index; /* the event of the batch that makes it */
} cl_keyring_change;

/* The change event `ev` (event `idx` of its batch) makes: returns 1 with *c
 * filled, 0 if the event changes no key, or CL_EMALFORMED (err names
 * "events[idx]" and the field). */
int cl_keyring_change_of(const Clinlog__V1__Event *ev, size_t idx, cl_keyring_change *c,
                         cl_err *err);

/* The PreparedBatch form (what Raft entries carry). from_pb checks the
 * shape of untrusted input (CL_EMALFORMED); to_pb allocates with the
 * store's allocator (*out returned-owned:
 * clinlog__v1__keyring_change__free_unpacked(*out, NULL); CL_ENOMEM). */
int cl_keyring_change_from_pb(const Clinlog__V1__KeyringChange *kc, cl_keyring_change *c,
                              cl_err *err);
int cl_keyring_change_to_pb(const cl_keyring_change *c, Clinlog__V1__KeyringChange **out);

/* Checks change cs[j] against the keyring and the changes cs[0..j) of the
 * same batch (a batch may register a principal and add a key to it).
 * Errors: CL_EEXIST (key or principal already registered), CL_ENOTFOUND
 * (principal not registered; revoking a key the principal does not have),
 * CL_EINVAL (already revoked, or revoked earlier in the batch). */
int cl_keyring_check(const cl_keyring *kr, const cl_keyring_change *cs, size_t j, cl_err *err);

/* Applies a checked change, effective after `at_seq`: registration records
 * the principal and its roles (for a further key, its principal's roles),
 * revocation stamps the key. *out (optional) gets the entry as stored.
 * Errors: CL_ENOMEM (unchanged), CL_ENOTFOUND (revoking an unknown key). */
int cl_keyring_apply(cl_keyring *kr, const cl_keyring_change *c, uint64_t at_seq,
                     cl_keyring_entry *out, cl_err *err);

/* May `pk` sign events of `principal` (NULL: any) at `seq`? On 0, *out
 * (optional) gets its entry. Errors: CL_EUNKNOWNKEY, CL_EREVOKED (revoked at
 * or before seq - 1), CL_EDENIED (another principal's key). */
int cl_keyring_check_signer(const cl_keyring *kr, const uint8_t pk[32], const char *principal,
                            uint64_t seq, cl_keyring_entry *out, cl_err *err);

/* 1 if a single-event batch of type `type` whose keyring changes are
 * cs[0..n) is the genesis step of a log holding `size` events, signed by
 * `pk`: LogCreated registering pk at size 0, or the PrincipalRegistered of
 * an admin registering pk (self-signed) at size 1. */
int cl_keyring_genesis_step(uint64_t size, uint32_t type, const cl_keyring_change *cs, size_t n,
                            const uint8_t pk[32]);

#endif

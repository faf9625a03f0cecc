/* A data directory's master key: the keys it gives the log, finishing a
 * key file swap that a crash interrupted, and rotation.
 *
 * Which keys come from where (crypt.h has the derivations):
 *   | key            | never rotated            | after a rotation                 |
 *   |----------------|--------------------------|----------------------------------|
 *   | tag key        | derived from the master  | unsealed from meta "fixed_keys"  |
 *   | projection key | derived from the master  | unsealed from meta "fixed_keys"  |
 *   | wrap key       | derived from the master  | derived from the (new) master    |
 *   | key check      | derived from the master  | derived from the (new) master    |
 *   | retired wrap   | none                     | unsealed from meta               |
 *   | keys           |                          | "retired_wrap_keys"              |
 *
 * The retired wrap keys (of the last CL_RETIRED_WRAP_MAX master keys
 * retired) are for Raft entries prepared before a rotation: each carries
 * the data keys it mints wrapped under the key of its time, and such an
 * entry can still be applied after the rotation, by a node that had not
 * applied it or by a member that joins later and replays the leader's Raft
 * log. The committer rewraps such a key under the current wrap key (same
 * nonce) before storing it (cl_mk_minted_key), so every node applies every
 * entry the same way. Nothing else uses them.
 *
 * Rotation (cl_masterkey_rotate), offline on a log nothing else uses:
 *   1. the new key is written to "<key file>.new" (0600, fsync'd, and the
 *      directory fsync'd);
 *   2. ONE synced RocksDB write: every stored data key rewrapped under the
 *      new wrap key (erased streams keep their empty entry), the new key
 *      check, the fixed keys and the retired wrap keys (the old one first)
 *      sealed under the new key, the old key check added to
 *      "retired_key_checks". Records, the Merkle tree, stream tags and
 *      projections are untouched;
 *   3. "<key file>.new" is renamed over the key file (directory fsync'd).
 * A crash before 2 leaves the old key in force (a stale .new is ignored and
 * removed by the next rotation); after 2 and before 3, the key file no
 * longer matches meta but .new does: the next open that may write renames
 * it (cl_masterkey_load with `finish`), a read-only open uses it as it is.
 * Either way the directory opens with exactly one of the two keys.
 *
 * What a rotation does not do: re-encrypt records (data keys stay the same,
 * so a copy of the old key and an old backup still read that backup), or
 * touch copies of wrapped keys outside `keys` (the Raft log's prepared
 * batches, above). A minted key that no key of the log unwraps (a member
 * whose master key is not the cluster's, an entry more than
 * CL_RETIRED_WRAP_MAX rotations old) is stored as it came, as on every
 * other node, and counted (cl_log_foreign_keys; the node warns): its stream
 * cannot be read there. See docs/operations.md, "Rotating the master
 * key". */
#ifndef CL_STORE_MASTERKEY_H
#define CL_STORE_MASTERKEY_H

#include <stddef.h>
#include <stdint.h>

#include "store/crypt.h"
#include "store/db.h"
#include "store/err.h"
#include "store/keys.h"
#include "store/log.h"

/* Layout of the keys an open log holds (one sodium_malloc'd block). */
enum {
  CL_MK_TAG = 0,       /* tag key (fixed) */
  CL_MK_PROJ = 32,     /* projection key (fixed); right after the tag key, as sealed */
  CL_MK_WRAP = 64,     /* wrap key */
  CL_MK_SEAL = 96,     /* fixed-keys key */
  CL_MK_RETIRED = 128, /* up to CL_RETIRED_WRAP_MAX retired wrap keys, newest first */
  CL_MK_SIZE = CL_MK_RETIRED + 32 * CL_RETIRED_WRAP_MAX
};

/* How cl_masterkey_load found the key. */
typedef struct cl_masterkey_info {
  uint8_t key_check[16];
  int rotated;        /* the fixed keys came from meta */
  unsigned n_retired; /* retired wrap keys at CL_MK_RETIRED */
  int from_new;       /* the key was "<path>.new": a swap a crash interrupted */
  int swapped;        /* ... and it was renamed over <path> (finish) */
} cl_masterkey_info;

/* Loads the master key file `path` (borrowed) for the log whose database is
 * `db` and fills keys (CL_MK_SIZE bytes of the caller's secure memory, laid
 * out as above). If the key's check does not match meta's but
 * "<path>.new"'s does, that key is used, and with `finish` renamed over
 * `path` first. A log without a stored key check takes any key (as before
 * key checks existed). Errors: CL_ENOTFOUND (no key file; keys untouched),
 * CL_EDENIED (neither key belongs to this log; a key retired by a rotation
 * is named as such), CL_ECORRUPT (sealed fixed keys that do not open),
 * CL_EMALFORMED, CL_EIO, CL_ENOMEM. On error keys hold nothing. Not
 * thread-safe with a rotation of the same directory. */
CL_MUST_CHECK int cl_masterkey_load(cl_db *db, const char *path, int finish, uint8_t *keys,
                                    cl_masterkey_info *info, cl_err *err);

/* Steps of a rotation, for cl_rotate_options.after_step. */
enum { CL_ROTATE_KEY_WRITTEN = 1, CL_ROTATE_COMMITTED = 2, CL_ROTATE_SWAPPED = 3 };

typedef struct cl_rotate_options {
  const cl_master_key *new_key; /* borrowed; NULL: a new random key */
  /* streams rewrapped so far of `total`: every 1024 streams and at the end */
  void (*progress)(void *ctx, uint64_t done, uint64_t total);
  void *progress_ctx;
  /* test hook, called after each step (CL_ROTATE_*): the crash tests kill
   * the process there */
  void (*after_step)(void *ctx, int step);
  void *step_ctx;
} cl_rotate_options;

typedef struct cl_rotate_report {
  uint64_t streams;      /* data keys rewrapped */
  uint64_t erased;       /* erased streams (left erased) */
  uint8_t old_check[16]; /* key checks of the old and the new master key */
  uint8_t new_check[16];
  char key_path[4096]; /* the key file now holding the new key */
  double seconds;
} cl_rotate_report;

/* Rotates the master key of `log` (see the header comment): opened
 * writable with its current key, and used by nothing else (the RocksDB lock
 * keeps other processes out; in this process no appends may run). The data
 * keys are rewrapped in one write batch, so memory grows with the number
 * of streams (about 150 bytes each). On success the log goes on with the
 * new key and *rep is filled. Errors: CL_EINVAL (the new key is the
 * current one), CL_EDENIED (no master key, read-only), CL_ECORRUPT (a
 * stored data key does not unwrap: nothing written), CL_EFAILED, CL_EIO,
 * CL_ENOMEM. On an error before the commit nothing changed; an error after
 * it (renaming the key file) says so: the log is rotated and its next open
 * finishes the swap. */
CL_MUST_CHECK int cl_masterkey_rotate(cl_log *log, const cl_rotate_options *o,
                                      cl_rotate_report *rep, cl_err *err);

/* The log's sealed keys as stored, for a new cluster member's store
 * (cl_log_genesis.sealed_keys): the sealed fixed keys, then the sealed
 * retired wrap keys. *n = 0 if the log was never rotated. Only a holder of
 * the current master key opens them. Errors: CL_EIO, CL_ECORRUPT. */
#define CL_SEALED_KEYS_MAX                                                                         \
  (CL_FIXED_KEYS_SEALED_SIZE + 32 * CL_RETIRED_WRAP_MAX + CL_SEALED_OVERHEAD)
int cl_masterkey_sealed_keys(cl_log *log, uint8_t out[CL_SEALED_KEYS_MAX], size_t *n, cl_err *err);

#endif

/* The log signing key: its history, log.pub, and rotation.
 *
 * The log key (principal "$log", role log) signs checkpoints and the events
 * a node writes itself. Its history is the keyring's: LogCreated registers
 * the first key at seq 1; a rotation registers the next one (KeyRegistered
 * of "$log") and revokes the old one (KeyRevoked), both in "$log" and signed
 * by the old key, in one batch. So the same rule decides which key may sign
 * an event and which may sign a checkpoint:
 *
 *   a log key registered at seq F and revoked at seq T (0: not revoked)
 *   signs checkpoints of tree sizes F..T (F.. if not revoked).
 *
 * At the rotation's seq R both keys are valid, and the rotation stores one
 * checkpoint of that size signed by both (a C2SP note may carry several
 * signatures): whoever holds either key can check the handover. The
 * checkpoint origin never changes with the key.
 *
 * meta "log_public_key" is the key this node signs with now (its key file
 * must hold it); the keyring (and so every node, through Raft) holds the
 * history. log.pub, for auditors, names the origin and the current key
 * ("key:" line, as before any rotation) and, once rotated, every log key
 * with its tree sizes:
 *
 *   origin: <origin>
 *   key: ed25519:<current key, base64>
 *   log-key: ed25519:<first key> 1-<R>
 *   log-key: ed25519:<current key> <R>-
 *
 * Rotation: the new key is first "<key file>.new" (0600) on every node:
 * written by cl_logkey_rotate (offline, one node), or staged by the
 * operator on every member before the online call (a cluster, or a running
 * single node: the batch goes through Raft). Then:
 *   1. the batch [KeyRegistered new, KeyRevoked old], signed by the old key
 *      (cl_logkey_rotation_batch), is committed (seqs R-1, R);
 *   2. every node, right after the durable write of the group that applied
 *      it (commit, Raft apply or catch-up: cl_lk_follow, with the commit
 *      slot held, so nothing signs meanwhile), switches: the key in
 *      "<key file>.new" must be the new one;
 *   3. one synced write: meta log_public_key = new, and the handover
 *      checkpoint of the head signed by the new and the old key;
 *   4. "<key file>.new" (and its .pub) renamed over the key file;
 *   5. log.pub rewritten (a temporary file renamed over it).
 * A node without the new key in "<key file>.new" applies the batch like
 * every other (same records, same keyring) but cannot switch: it records
 * why (cl_logkey_status.error), signs no checkpoint (the keyring refuses
 * its old key past R) and no record of its own (cl_log_sign_batch), and
 * switches once the key is there (cl_log_logkey_retry, or the next open).
 * A crash before 2 leaves the old key in force (a stale .new is ignored,
 * and removed by the next rotation). After 2 the keyring says the old key
 * is revoked: the next open takes the newest unrevoked log key as meta's,
 * finds it in "<key file>.new" and (if it may write) finishes 3-5; a
 * read-only open uses .new as it is. Either way the directory opens with
 * exactly one key, and nothing committed is lost. */
#ifndef CL_STORE_LOGKEY_H
#define CL_STORE_LOGKEY_H

#include <stddef.h>
#include <stdint.h>

#include "clinlog/v1/api.pb-c.h"
#include "clinlog/v1/event.pb-c.h"
#include "store/checkpoint.h"
#include "store/db.h"
#include "store/err.h"
#include "store/keyring.h"
#include "store/keys.h"
#include "store/log.h"

#define CL_LOGKEYS_MAX 64 /* log keys a history holds (rotations + 1) */

/* One log key and the tree sizes whose checkpoints it signs. */
typedef struct cl_logkey {
  uint8_t pk[32];
  uint64_t from; /* the seq that registered it (1: the genesis key) */
  uint64_t to;   /* the seq that revoked it; 0: in use */
} cl_logkey;

/* A log key history, ordered by `from`. A plain value. */
typedef struct cl_logkeys {
  size_t n;
  cl_logkey k[CL_LOGKEYS_MAX];
} cl_logkeys;

/* 1 if `k` signs checkpoints of tree size `size`. */
int cl_logkey_valid_at(const cl_logkey *k, uint64_t size);
/* The entry of `pk` in ks (a view into ks), or NULL. */
const cl_logkey *cl_logkeys_find(const cl_logkeys *ks, const uint8_t pk[32]);
/* The key in use: the newest unrevoked one (a view into ks), or NULL. */
const cl_logkey *cl_logkeys_current(const cl_logkeys *ks);

/* The "$log" keys of a keyring. Errors: CL_ETOOBIG (more than
 * CL_LOGKEYS_MAX). */
int cl_logkeys_of_keyring(const cl_keyring *kr, cl_logkeys *out, cl_err *err);
/* The "$log" keys of a database's stored keyring family (for verify,
 * which opens the database alone). Errors: CL_ECORRUPT, CL_EIO,
 * CL_ETOOBIG. */
int cl_logkeys_of_db(cl_db *db, cl_logkeys *out, cl_err *err);

/* Parses log.pub text (format above; a file with one "key:" line and no
 * "log-key:" lines gives that key for sizes 1..). A plain ".pub" file
 * ("ed25519:<base64>") is read the same way. origin (optional, 256 bytes)
 * gets the "origin:" line, or "". Errors: CL_EMALFORMED. */
int cl_logkeys_parse_pub(const char *text, size_t len, cl_logkeys *out, char *origin, cl_err *err);
/* Reads and parses a log.pub file. Errors: CL_ENOTFOUND, CL_EIO,
 * CL_EMALFORMED. */
int cl_logkeys_load_pub(const char *path, cl_logkeys *out, char *origin, cl_err *err);
/* Formats log.pub into out (n bytes); returns the length, or 0 if it does
 * not fit. `current` is the "key:" line. */
size_t cl_logkeys_format_pub(const char *origin, const uint8_t current[32], const cl_logkeys *ks,
                             char *out, size_t n);

/* Verifies a checkpoint note for key name `origin`: some key of ks valid
 * at the note's tree size must have signed it. signer (optional) gets that
 * key. Errors: those of cl_checkpoint_verify; CL_EUNKNOWNKEY names the
 * size and how many keys were tried. */
int cl_checkpoint_verify_logkeys(const char *note, size_t len, const char *origin,
                                 const cl_logkeys *ks, cl_checkpoint *out, uint8_t signer[32],
                                 cl_err *err);

/* Adds a signature by `sk` (key name `name`) to a signed note: *out is
 * returned-owned (free()). Errors: CL_EMALFORMED, CL_ENOMEM. */
int cl_checkpoint_cosign(const char *note, size_t len, const char *name, const uint8_t sk[64],
                         char **out, size_t *out_len, cl_err *err);

/* Steps of a rotation, for cl_logkey_rotate_options.after_step. */
enum {
  CL_LOGKEY_KEY_WRITTEN = 1,
  CL_LOGKEY_COMMITTED = 2,
  CL_LOGKEY_META = 3,
  CL_LOGKEY_SWAPPED = 4,
  CL_LOGKEY_PUB = 5
};

typedef struct cl_logkey_rotate_options {
  const cl_signer *new_key; /* borrowed; NULL: a new random key */
  const char *reason;       /* KeyRevoked.reason; default "log key rotation" */
  /* test hook, called after each step (CL_LOGKEY_*): crash tests kill the
   * process there */
  void (*after_step)(void *ctx, int step);
  void *step_ctx;
} cl_logkey_rotate_options;

typedef struct cl_logkey_rotate_report {
  uint8_t old_pk[32];
  uint8_t new_pk[32];
  uint64_t seq;        /* R: the KeyRevoked's seq, where the old key's sizes end */
  uint64_t tree_size;  /* the handover checkpoint's size (R on a log nothing else writes) */
  char key_path[4096]; /* the key file now holding the new key */
  char pub_path[4096]; /* log.pub, rewritten */
  double seconds;
} cl_logkey_rotate_report;

/* Rotates the log key of `log` offline (see the header comment): opened writable
 * with its log key, used by nothing else (no appends in this process; the
 * RocksDB lock keeps other processes out). On success the log signs with
 * the new key and *rep is filled. Errors: CL_EDENIED (no log key,
 * read-only), CL_EEXIST (the new key is registered already), CL_ETOOBIG
 * (CL_LOGKEYS_MAX keys), the append's errors, CL_EIO, CL_ENOMEM. An error
 * before the commit changes nothing; one after it says so: the rotation
 * is committed and the next open finishes it. */
CL_MUST_CHECK int cl_logkey_rotate(cl_log *log, const cl_logkey_rotate_options *o,
                                   cl_logkey_rotate_report *rep, cl_err *err);

/* The log keys of an open log, from its keyring (under its lock). */
int cl_log_logkeys(cl_log *log, cl_logkeys *out, cl_err *err);

/* The rotation batch [KeyRegistered new_pk, KeyRevoked <this node's key>]
 * in "$log", batch-signed by this node's log key: out->b is ready for
 * cl_log_append or Raft (cl_repl_append). out holds its memory
 * (cl_logkey_batch_free). Errors: CL_EDENIED (no log key; this node's key
 * is not the log's current one, or it could not follow a rotation),
 * CL_EEXIST (new_pk is registered already), CL_ETOOBIG, CL_EAGAIN (the key
 * switched meanwhile), CL_ENOMEM. Thread-safe. */
typedef struct cl_logkey_batch {
  Clinlog__V1__AppendBatch b;
  Clinlog__V1__Signature bs;
  ProtobufCBinaryData evs[2];
  uint8_t *ev[2];
  uint8_t sig[64], old_pk[32], new_pk[32];
} cl_logkey_batch;
CL_MUST_CHECK int cl_logkey_rotation_batch(cl_log *log, const uint8_t new_pk[32],
                                           const char *reason, cl_logkey_batch *out, cl_err *err);
void cl_logkey_batch_free(cl_logkey_batch *b);

/* The public key of the staged key "<key file>.new" into pk; path
 * (optional, pn bytes) gets that file's name. Errors: CL_ENOTFOUND (none
 * staged), CL_EDENIED (readable by group/other), CL_EMALFORMED, CL_EIO. */
int cl_logkey_staged(cl_log *log, uint8_t pk[32], char *path, size_t pn, cl_err *err);

/* What a node knows of its log key. A plain value. */
typedef struct cl_logkey_status {
  int have_key;          /* the node has a log key file */
  uint8_t signer_pk[32]; /* the key it holds */
  uint8_t log_pk[32];    /* the log's current key (the keyring's newest unrevoked) */
  int staged;            /* "<key file>.new" loads */
  uint8_t staged_pk[32];
  cl_err staged_err; /* why not (CL_ENOTFOUND: none) */
  cl_err error;      /* code 0, or why the node cannot sign as the log (a
                        rotation it could not follow) */
  uint64_t events;   /* switches and failed switches since open */
} cl_logkey_status;
void cl_log_logkey_status(cl_log *log, cl_logkey_status *st);
/* Cheap (no file access): how many switches and failed switches the log
 * has made since open; err (optional) gets the last one's error (code 0:
 * the node signs with the log's key). Thread-safe. */
uint64_t cl_log_logkey_events(cl_log *log, cl_err *err);
/* Retries a switch the node could not make (the key was missing): takes
 * the commit slot. 0 (st.error then says whether it worked), or the
 * slot's errors. */
int cl_log_logkey_retry(cl_log *log, cl_err *err);

/* Signs a batch of event hashes with the log key, as it is now (a rotation
 * may switch it at any time: pk gets the key that signed), for a batch the
 * node writes itself, and remembers on this thread that it did: the next
 * cl_log_prepare on this thread of a batch whose batch signature is exactly
 * `sig` by `pk` over exactly these hashes takes it as verified (the node
 * just made it) instead of verifying it again; any other batch is verified
 * as always. Errors: CL_EDENIED (no log key), CL_EREVOKED (the node could
 * not follow a rotation: the message says why). Thread-safe. */
int cl_log_sign_batch(cl_log *log, const uint8_t (*hashes)[32], size_t n, uint8_t sig[64],
                      uint8_t pk[32], cl_err *err);
/* Signs a batch of event hashes with s, a key this process holds (an
 * adapter's, e.g. the MLLP listener's --mllp-key), into sig, and remembers
 * on this thread that it did, as cl_log_sign_batch does for the log key: a
 * cl_log_prepare on this thread of a batch whose batch signature is exactly
 * `sig` by s->pk over exactly these hashes (recomputed there from the
 * events' bytes) takes it as verified; anything else is verified as
 * always. Whether s's key may write is checked there as for any batch.
 * Thread-safe. */
void cl_log_sign_batch_as(cl_log *log, const cl_signer *s, const uint8_t (*hashes)[32], size_t n,
                          uint8_t sig[64]);
/* One event the node writes itself (a session, an override it records):
 * packed into `stream` (cl_event_pack_node), signed by the log key as a
 * batch of one (cl_log_sign_batch); nb->b is then ready to append. nb owns
 * its buffers and points into itself: keep it where it is until
 * cl_node_batch_free. Errors: as cl_event_pack_node and cl_log_sign_batch
 * (nothing to free then). */
typedef struct cl_node_batch {
  Clinlog__V1__AppendBatch b;
  Clinlog__V1__Signature bs;
  ProtobufCBinaryData ev;
  uint8_t sig[64], pk[32];
  uint8_t *buf; /* the packed event */
} cl_node_batch;
int cl_log_node_batch(cl_log *log, Clinlog__V1__Event *ev, const char *stream, cl_node_batch *nb,
                      cl_err *err);
void cl_node_batch_free(cl_node_batch *nb);
/* The same for an event the node packed already (`ev`, n bytes, borrowed
 * and copied: its event id, recorded_by "$log" and the rest are the
 * caller's, e.g. the decision-support checker's findings, whose bytes
 * every node derives alike so a second append is a no-op). Errors:
 * CL_ENOMEM, those of cl_log_sign_batch (nothing to free then). */
int cl_log_node_batch_bytes(cl_log *log, const uint8_t *ev, size_t n, cl_node_batch *nb,
                            cl_err *err);

/* A copy of the log key as it is now (*out returned-owned: cl_signer_free).
 * Errors: as cl_log_sign_batch, CL_ENOMEM. Thread-safe. */
int cl_log_signer_copy(cl_log *log, cl_signer *out, cl_err *err);
/* The log key's public half as it is now. Thread-safe. */
void cl_log_signer_pk(cl_log *log, uint8_t pk[32]);

#endif

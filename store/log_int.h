/* Internals of the log, shared by the files that implement it (log.c,
 * genesis.c, prepare.c, commit.c, ingest.c, read.c, tree.c, streamkey.c,
 * proj.c). No module outside store/ includes this.
 *
 * How the log's state is guarded:
 *  - set at open and immutable after: options, dir, db, keys, origin (a
 *    master key rotation, which runs alone holding the commit slot, changes
 *    the wrap key and key check: masterkey.c);
 *  - `mu` guards the commit queue, the commit slot (`committing`), `failed`,
 *    the published head (`size`, `root`), `applied`;
 *  - the committer (the one thread holding the commit slot) alone owns the
 *    Merkle frontier, stream states, the group scratch (ids, stream index
 *    entries, minted keys), last_checkpoint and last_committed_ns; the slot
 *    is taken by the group commit, replicated apply, catch-up ingest and an
 *    on-demand checkpoint, so these never run at once;
 *  - `kr_mu` guards the keyring (prepare reads it, the committer writes it);
 *  - `pk_mu` guards pending data keys (prepare mints, the committer retires);
 *  - `kc_mu` guards the key cache (readers and prepare fill it, erasure
 *    empties it);
 *  - `ls_mu` guards the log signer's key pair and the log key's switch
 *    state against the threads that sign with it (cl_log_sign_batch,
 *    cl_log_signer_copy); the switch itself runs holding the commit slot;
 *  - the feed and the purger have their own locks (feed.c, streamkey.c).
 * Lock order, where two are held: mu before kr_mu/pk_mu/kc_mu; the feed's
 * lock is taken with none of these held. */
#ifndef CL_STORE_LOG_INT_H
#define CL_STORE_LOG_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "store/crypt.h"
#include "store/db.h"
#include "store/err.h"
#include "store/feed.h"
#include "store/hmap.h"
#include "store/keyring.h"
#include "store/keys.h"
#include "store/log.h"
#include "store/merkle.h"
#include "store/record.h"

/* Leaf index of a sequence number: leaves are 0-based, seqs 1-based. */
static inline uint64_t cl_leaf_index(uint64_t seq) { return seq - 1; }

enum { KEY_UNKNOWN = 0, KEY_PRESENT = 1, KEY_ERASED = 2 };

/* What the committer knows of a stream (read through from disk). */
typedef struct cl_stream_state {
  uint64_t version;
  uint8_t key_state;
  uint8_t wk_nonce[24]; /* KEY_PRESENT: nonce of the committed wrapped key
                           (identifies it) */
} cl_stream_state;

/* ids family value: seq u64 BE || version u64 BE || event hash[32]. */
typedef struct cl_id_entry {
  uint8_t v[8 + 8 + 32];
} cl_id_entry;

typedef struct commit_req commit_req;

struct cl_log {
  /* immutable after open */
  cl_log_options o;
  char *dir;
  cl_db *db;
  /* the projections' database (<dir>/proj), opened by the first
   * projection (cl_log_proj_db) and closed with the log; pdb_mu guards it */
  pthread_mutex_t pdb_mu;
  cl_db *pdb;
  int have_keys;
  uint8_t *secrets; /* sodium_malloc, CL_MK_SIZE bytes laid out as masterkey.h's CL_MK_* */
  uint8_t *tag_key;  /* fixed for the life of the log (crypt.h) */
  uint8_t *wrap_key; /* these two and key_check change only in a rotation */
  uint8_t *proj_key; /* fixed */
  uint8_t *seal_key; /* seals the fixed keys */
  uint8_t *retired_wrap; /* n_retired wrap keys of retired master keys, newest first */
  unsigned n_retired;
  uint8_t key_check[16];
  cl_signer log_signer; /* these three change only in a log key rotation's
                           switch, which runs holding the commit slot
                           (logkey.c); log_signer is written under ls_mu,
                           log_pk under kr_mu */
  int have_log_key;
  uint8_t log_pk[32];
  char origin[256];

  /* guarded by mu */
  pthread_mutex_t mu;
  pthread_cond_t cv; /* the slot was released, a group finished */
  commit_req *queue, *queue_tail;
  int committing; /* the commit slot is taken */
  int failed;     /* a write failed: memory may be ahead of disk, no more commits */
  uint64_t size;  /* published head: readers see records 1..size */
  uint8_t root[32];
  uint64_t applied; /* Raft index of the last entry applied (replication) */
  uint64_t foreign_keys; /* minted keys stored that no key of this log unwraps */

  /* committer-owned */
  cl_merkle_frontier frontier;
  cl_hmap *streams;    /* tag -> cl_stream_state */
  cl_hmap *group_ids;  /* event id -> cl_id_entry, ids written by the current group */
  /* the group's RocksDB batch, cleared and kept between groups (its buffer
   * grown once, not per commit); NULL until the first group */
  rocksdb_writebatch_t *group_wb;
  uint8_t (*pend)[48]; /* stream index entries of the current group */
  size_t pend_n, pend_cap;
  uint8_t (*minted)[32]; /* tags whose new data key the current group writes */
  size_t n_minted, cap_minted;
  uint64_t n_foreign; /* of them, keys no key of this log unwraps (cl_mk_minted_key) */
  uint64_t last_checkpoint;
  int64_t last_committed_ns; /* commit times never go backwards */

  /* guarded by kr_mu */
  pthread_mutex_t kr_mu;
  cl_keyring *keyring;

  /* guarded by pk_mu: data keys minted for streams that have none yet,
   * shared by every batch prepared for that stream until one commits it,
   * so concurrent first writes agree on the key (stored wrapped only) */
  pthread_mutex_t pk_mu;
  cl_hmap *pending_keys; /* tag -> wrapped key[CL_WRAPPED_KEY_SIZE] */

  /* guarded by kc_mu: unwrapped data keys of committed streams, in
   * sodium_malloc memory, so prepare and reads do not unwrap a stream's
   * key every time; an erasure empties the cache and bumps kc_gen so a key
   * read before the erasure is never cached after it. Full, a new key
   * replaces one chosen at random: a scan over more streams than the cache
   * holds still hits in proportion (clearing, or evicting the oldest,
   * would hit never) */
  pthread_mutex_t kc_mu;
  cl_hmap *kc_idx;  /* tag -> uint32 slot */
  uint8_t *kc_slab; /* o.key_cache entries of 96 bytes: a data key, then its value keys */
  uint8_t *kc_tags; /* o.key_cache * 32 bytes: the tag of each slot */
  uint32_t kc_used;
  uint64_t kc_gen;

  /* the log key's switch (logkey.c) */
  pthread_mutex_t ls_mu;
  int lk_changed;       /* committer-owned: the current write changed a "$log" key */
  uint64_t lk_handover; /* committer-owned: size of the last handover checkpoint */
  void (*lk_step)(void *ctx, int step); /* committer-owned test hook (cl_logkey_rotate) */
  void *lk_step_ctx;
  cl_err lk_err;      /* guarded by ls_mu: why this node cannot sign as the log
                         (a rotation it could not follow); code 0: it can */
  uint64_t lk_events; /* guarded by ls_mu: switches and failed switches */

  cl_feed *feed; /* commit notifications (feed.c) */

  /* the purger (streamkey.c): flushes and compacts after erasures, off the
   * commit path; guarded by pu_mu */
  pthread_mutex_t pu_mu;
  pthread_cond_t pu_cv;
  pthread_t pu_thread;
  int pu_started, pu_stop;
  uint64_t pu_asked, pu_done; /* purges requested / completed */
  cl_err pu_err;              /* the last purge's error (code 0: none) */
};

/* ---- log.c ---- */
/* Opens a new, empty database in o->dir (genesis.c writes its meta). */
int cl_log_open_create(const cl_log_options *o, cl_log **out, cl_err *err);
int cl_meta_get(cl_db *db, const char *name, void *out, size_t n, size_t *got, cl_err *err);
void cl_meta_put(rocksdb_writebatch_t *wb, cl_db *db, const char *name, const void *v, size_t n);
/* Reloads the keyring family into log->keyring (caller holds kr_mu). */
int cl_keyring_load(cl_log *log, cl_err *err);
/* Checks an iterator after a scan: 0, or CL_EIO with err set. */
int cl_iter_error(rocksdb_iterator_t *it, cl_err *err, const char *what);
int64_t cl_now_ns(void);
int cl_bytes_dup(ProtobufCBinaryData *b, const void *p, size_t n);

/* ---- prepare.c ---- */
/* Remembers on this thread that the key pk (the log key, or a key of this
 * process: cl_log_sign_batch_as) just signed hashes as sig: a prepare on
 * the thread takes exactly that batch as verified (the last two so
 * remembered, each once). */
void cl_prepare_own_signed(const cl_log *log, const uint8_t (*hashes)[32], size_t n,
                           const uint8_t sig[CL_SIG_SIZE], const uint8_t pk[CL_PUBKEY_SIZE]);

/* ---- commit.c: the commit slot and committer-owned state ---- */
/* Takes the slot for a caller outside the commit queue (apply, ingest,
 * checkpoint). Errors: CL_EFAILED, CL_EDENIED (read-only). */
int cl_slot_acquire(cl_log *log, cl_err *err);
void cl_slot_release(cl_log *log);
/* Publishes a new head (caller holds the slot) and notifies the feed, so
 * notifications follow commit order. */
void cl_publish(cl_log *log, uint64_t size, const uint8_t root[32]);
cl_stream_state *cl_stream_get(cl_log *log, const uint8_t tag[32], cl_err *err);
int cl_pend_stream(cl_log *log, const uint8_t tag[32], uint64_t version, uint64_t seq);
int cl_write_indexes(cl_log *log, rocksdb_writebatch_t *wb);
/* Writes a keyring change, effective after at_seq, to wb and the keyring. */
int cl_keyring_write(cl_log *log, rocksdb_writebatch_t *wb, const cl_keyring_change *c,
                     uint64_t at_seq, cl_err *err);

/* ---- tree.c: Merkle nodes in RocksDB and checkpoints ---- */
/* cl_merkle_get_fn over the merkle family (ctx: cl_db *). */
int cl_tree_get(void *ctx, unsigned level, uint64_t index, uint8_t out[32], cl_err *err);
/* Appends one leaf to the frontier, its completed nodes into wb. */
int cl_tree_append(cl_log *log, rocksdb_writebatch_t *wb, const uint8_t leaf[32], cl_err *err);
/* Signs a checkpoint into wb when the tree just reached a multiple of the
 * checkpoint interval. */
int cl_tree_maybe_checkpoint(cl_log *log, rocksdb_writebatch_t *wb, cl_err *err);
int cl_tree_put_checkpoint(cl_log *log, rocksdb_writebatch_t *wb, uint64_t size,
                           const uint8_t root[32], cl_err *err);
/* Size of the latest stored checkpoint (0: none), for recovery. */
int cl_tree_last_checkpoint(cl_log *log, uint64_t *size, cl_err *err);

/* ---- prepare.c ---- */
/* The stream tag a StreamErased event erases (checked: a valid, non-system
 * stream). */
int cl_erasure_target(cl_log *log, const Clinlog__V1__Event *ev, size_t idx, uint8_t tag[32],
                      cl_err *err);

/* ---- masterkey.c ---- */
/* fsyncs the directory holding `path`, so a created or renamed entry
 * lasts. Errors: CL_EIO. */
int cl_sync_dir_of(const char *path, cl_err *err);
/* Replaces `path` by `from` atomically and durably. Errors: CL_EIO. */
int cl_swap_in(const char *from, const char *path, cl_err *err);
/* A new member's store takes the cluster's sealed keys (genesis.c,
 * cl_masterkey_sealed_keys): opens them under the log's master key into its
 * tag, projection and retired wrap keys and puts them into wb. Errors:
 * CL_EDENIED (not sealed under this key), CL_EINVAL (malformed). */
int cl_mk_adopt_sealed(cl_log *log, rocksdb_writebatch_t *wb, const uint8_t *sealed, size_t n,
                       cl_err *err);
/* The data key a Raft entry mints for a new stream, as this log stores it:
 * `wrapped` itself when it unwraps under the wrap key, else rewrapped (same
 * nonce) from the retired wrap key it unwraps under, into out. Returns 0
 * with *use pointing at wrapped or out; 1 with *use = wrapped when no key
 * of this log unwraps it (stored as it came, as every other node stores
 * it: cl_log_foreign_keys); CL_ENOMEM. */
int cl_mk_minted_key(cl_log *log, const uint8_t tag[32], const uint8_t *wrapped, size_t n,
                     uint8_t out[CL_WRAPPED_KEY_SIZE], const uint8_t **use, cl_err *err);
/* Record 1 is the genesis LogCreated in "$log": its tag proves the log's
 * tag key is the one the log was created with. CL_EDENIED if not. */
int cl_mk_check_first(cl_log *log, const Clinlog__V1__Record *rec, cl_err *err);

/* ---- log.c ---- */
/* The projections' database (<dir>/proj, cl_db_open_proj), opened by the
 * first call (which also drops the families projections had in the log's
 * database before they had their own); NULL with err set if it cannot be
 * opened. Closed with the log: close every projection first. */
cl_db *cl_log_proj_db(cl_log *log, cl_err *err);

/* ---- logkey.c: the log key (logkey.h) ---- */
/* At open, after the keyring is loaded: settles which log key is in use
 * (meta's, or after a rotation that committed but did not finish, the
 * newest unrevoked "$log" key), takes it from "<key file>.new" if the key
 * file does not hold it (a writable open renames it, fixes meta and
 * log.pub), and refuses a key file with another key (CL_EDENIED, naming a
 * key retired by a rotation as such). */
int cl_lk_settle(cl_log *log, cl_err *err);
/* May the log signer sign a checkpoint of `size`? 0, or CL_EREVOKED /
 * CL_EUNKNOWNKEY (the keyring does not make it a log key at that size:
 * revoked before it, or registered after it, e.g. a new member catching
 * up on the records before the rotation that registered its key). */
int cl_lk_may_sign(cl_log *log, uint64_t size, cl_err *err);
/* After a durable write (commit group, replicated apply, catch-up ingest)
 * that changed a "$log" key (lk_changed; caller holds the slot): when the
 * keyring now revokes the key this node signs with, switches to its
 * successor, taken from "<key file>.new" (handover checkpoint and meta in
 * one write, the key files renamed, log.pub rewritten); refreshes log.pub
 * otherwise. Cannot fail the write: a node without the successor's key
 * keeps the same log, records why in lk_err (cl_log_logkey_status) and
 * signs nothing more (the keyring refuses its old key). */
void cl_lk_follow(cl_log *log);
/* Retries a switch that failed (lk_err set), e.g. once the operator placed
 * the key; caller holds the slot. */
void cl_lk_retry(cl_log *log);

/* ---- streamkey.c: data keys ---- */
int cl_sk_init(cl_log *log, cl_err *err);
void cl_sk_free(cl_log *log);
/* Data key for a new batch to `tag`: unwrapped if the stream has one,
 * minted (wrapped copy into *wrapped, returned-owned) if not. CL_EERASED. */
int cl_sk_for_prepare(cl_log *log, const uint8_t tag[32], uint8_t *key,
                      ProtobufCBinaryData *wrapped, cl_err *err);
/* Data key of a committed stream for reading: 0 with the key, 0 with
 * *erased = 1, or CL_ECORRUPT (no key), CL_ECRYPTO, CL_EIO. */
int cl_sk_for_read(cl_log *log, const uint8_t tag[32], uint8_t *key, int *erased, cl_err *err);
/* As cl_sk_for_read, the value keys of the stream's data key
 * (cl_value_keys; kept in the key cache beside the key) into keys (secure
 * memory; wiped on error or erasure). */
int cl_sk_value_keys(cl_log *log, const uint8_t tag[32], uint8_t keys[CL_VALUE_KEYS], int *erased,
                     cl_err *err);
/* After a durable commit: the group's minted keys are no longer pending. */
void cl_sk_retire_minted(cl_log *log);
/* Marks a stream's key destroyed in wb and in the committer's state. */
int cl_sk_erase(cl_log *log, rocksdb_writebatch_t *wb, const uint8_t tag[32], cl_err *err);
/* After a durable write that erased keys: empties the key cache and asks
 * the purger to remove the old keys from disk. */
void cl_sk_erased(cl_log *log);
/* Stops the purger after its last purge. */
void cl_sk_stop_purger(cl_log *log);

#endif

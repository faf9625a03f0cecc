/* The clinlog log: a signed, encrypted, Merkle-verified, append-only event
 * log in RocksDB. See docs/format.md for the on-disk layout.
 *
 * Write path: cl_log_append = cl_log_prepare (validate, verify signatures,
 * encrypt; parallel across callers) + cl_log_commit (order, check expected
 * versions and ids, append Merkle leaves, one synced RocksDB WriteBatch;
 * serialized and group-committed). The PreparedBatch between them is what
 * the Raft log will carry.
 *
 * Thread-safety: a cl_log may be used from any number of threads. */
#ifndef CL_STORE_LOG_H
#define CL_STORE_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "clinlog/v1/record.pb-c.h"
#include "store/crypt.h"
#include "store/err.h"
#include "store/feed.h"
#include "store/keys.h"
#include "store/record.h"

#define CL_MAX_BATCH 10000
#define CL_DEFAULT_MAX_EVENT (1u << 20)
#define CL_DEFAULT_CHECKPOINT_INTERVAL 10000

typedef struct cl_log cl_log;

typedef struct cl_log_options {
  const char *dir;               /* data directory (required) */
  const char *master_key_path;   /* default <dir>/keys/master.key */
  const char *log_key_path;      /* default <dir>/keys/log.key */
  size_t max_event_size;         /* bytes of one serialized Event; default 1 MiB */
  uint64_t checkpoint_interval;  /* events between automatic checkpoints; 0 = off */
  int sync;                      /* fsync every commit (default 1) */
  int replayed;                  /* with sync 0: the caller replays the commits of
                                    cl_log_apply a crash may lose (a Raft member: its
                                    log holds every entry since the last snapshot, and
                                    the snapshot calls cl_log_sync first), so their
                                    WAL records may stay in memory until a later
                                    write, cl_log_sync or close writes them out: a
                                    process that dies loses a tail of applied
                                    entries, as a machine's crash does without it
                                    (docs/replication.md, "Entries, group
                                    commit, the applied index") */
  int read_only;                 /* open for reading only (no keys needed for hashes) */
  uint32_t key_cache;            /* streams whose unwrapped data key is kept, with its
                                    value keys (96 bytes each, locked memory); default
                                    CL_DEFAULT_KEY_CACHE */
} cl_log_options;

/* Enough for every patient of a large hospital's active set: scans in key
 * order (catch-up, bulk export) then unwrap each stream's key once. */
#define CL_DEFAULT_KEY_CACHE 65536

void cl_log_options_init(cl_log_options *o);

/* Parameters of a new log (cl_log_create). */
typedef struct cl_log_genesis {
  const char *origin;            /* checkpoint origin, default "clinlog.local/<log key hex>" */
  const char *organization;
  const char *admin_principal;   /* principal id of the first admin (required) */
  const char *admin_name;
  const cl_signer *admin;        /* borrowed: signs the genesis PrincipalRegistered */
  int replica;                   /* a cluster member's empty store: the cluster's key files
                                    (options) and origin, no genesis events (they come
                                    through replication) */
  const uint8_t *sealed_keys;    /* replica of a cluster whose master key was rotated: its
                                    sealed keys (cl_masterkey_sealed_keys of a member), or
                                    NULL */
  size_t sealed_keys_len;
} cl_log_genesis;

/* Creates a data directory: keys/master.key and keys/log.key (0600, unless
 * the paths in `o` name existing key files), log.pub, the RocksDB database,
 * and the genesis events (1: LogCreated signed by the log key,
 * 2: PrincipalRegistered of the admin, self-signed). Errors: CL_EEXIST if
 * the directory already holds a log, CL_EIO, CL_EINVAL. */
int cl_log_create(const cl_log_options *o, const cl_log_genesis *g, cl_err *err);

/* Opens an existing log, recovering to the last durable commit and checking
 * that the Merkle tree matches the last record. On success *out is
 * returned-owned (cl_log_close). Errors: CL_ENOTFOUND, CL_EIO, CL_ECORRUPT. */
int cl_log_open(const cl_log_options *o, cl_log **out, cl_err *err);

/* Flushes and closes. Waits for commits in flight and for the erasure
 * purges asked for; wakes cl_feed_wait callers (CL_EUNAVAILABLE) and
 * detaches every feed watcher. */
void cl_log_close(cl_log *log);

/* Outcome of an append. Arrays have `n` entries (one per event, in batch
 * order); free with cl_append_result_free. */
typedef struct cl_append_result {
  size_t n;
  uint64_t *seq;
  uint64_t *version;
  uint8_t (*event_id)[16];
  uint64_t tree_size;          /* tree size right after the commit */
  int duplicate;               /* 1: the whole batch was already committed */
  /* On CL_ECONFLICT: the offending stream and its current version. The
   * commit knows the stream only as its index in the prepared batch
   * (conflict_index); cl_log_append (and cl_log_name_conflict, for callers of
   * cl_log_commit) fill in its name. */
  char conflict_stream[CL_ERR_MSG_SIZE];
  size_t conflict_index;
  uint64_t conflict_current;
} cl_append_result;

void cl_append_result_free(cl_append_result *r);

/* Appends a signed batch atomically (all or nothing). Idempotent by event id:
 * a batch whose events are all committed already returns their original
 * positions with r->duplicate = 1 and writes nothing. Errors:
 * CL_EINVAL (batch shape), CL_EMALFORMED (an event), CL_ETOOBIG,
 * CL_EBADSIG, CL_EUNKNOWNKEY, CL_EREVOKED, CL_EDENIED (role),
 * CL_ECONFLICT (expected version; r->conflict_*), CL_EDUPLICATE (an id
 * committed with other content, or part of the batch committed),
 * CL_EERASED, CL_EIO, CL_EFAILED. On error nothing is written. `r` is
 * filled on success and CL_ECONFLICT (free it in both cases). */
CL_MUST_CHECK int cl_log_append(cl_log *log, const Clinlog__V1__AppendBatch *batch,
                                cl_append_result *r, cl_err *err);

/* The two halves of cl_log_append, for replication. *out is returned-owned
 * (clinlog__v1__prepared_batch__free_unpacked(*out, NULL) works: it is
 * allocated with malloc in the unpacked layout). */
CL_MUST_CHECK int cl_log_prepare(cl_log *log, const Clinlog__V1__AppendBatch *batch,
                                 Clinlog__V1__PreparedBatch **out, cl_err *err);
CL_MUST_CHECK int cl_log_commit(cl_log *log, const Clinlog__V1__PreparedBatch *pb,
                                cl_append_result *r, cl_err *err);
/* After cl_log_commit's CL_ECONFLICT: names the stream at r->conflict_index
 * of pb in r->conflict_stream and in err, from b's expectations. */
void cl_log_name_conflict(cl_log *log, const Clinlog__V1__AppendBatch *b,
                          const Clinlog__V1__PreparedBatch *pb, cl_append_result *r, cl_err *err);

/* A committed event as read back. All pointers are views valid only during
 * the callback. `event` is the decrypted serialized Event, or NULL when the
 * stream was erased (`erased` = 1) or the log was opened without keys. */
typedef struct cl_event_view {
  uint64_t seq;
  uint64_t stream_version;
  uint32_t event_type;
  int64_t committed_at_ns;
  const uint8_t *event_id;     /* 16 bytes */
  const uint8_t *stream_tag;   /* 32 bytes */
  const uint8_t *event_hash;   /* 32 bytes */
  const uint8_t *event;
  size_t event_len;
  const uint8_t *record;       /* stored record bytes (the Merkle leaf data) */
  size_t record_len;
  int erased;
  const uint8_t *nonce;        /* 24 bytes, and the ciphertext: for cl_log_open_event */
  const uint8_t *ciphertext;
  size_t ciphertext_len;
} cl_event_view;

/* Read callback: return 0 to continue, 1 to stop, or a negative CL_E* error
 * (with err set) to abort the read with that error. */
typedef int (*cl_event_fn)(void *ctx, const cl_event_view *ev, cl_err *err);

/* Reads the whole log forwards from `from_seq` (1-based), at most `max`
 * events (0 = no limit). */
int cl_log_read_all(cl_log *log, uint64_t from_seq, uint64_t max, cl_event_fn fn, void *ctx,
                    cl_err *err);

/* As cl_log_read_all, without decrypting: ev->event is NULL, ev->erased
 * tells whether the stream was erased. For readers that need the content
 * of few events (decrypt those with cl_log_open_event). */
int cl_log_scan(cl_log *log, uint64_t from_seq, uint64_t max, cl_event_fn fn, void *ctx,
                cl_err *err);

/* Decrypts the event of a view from cl_log_scan (or any read). On success
 * *plain (*n bytes) is returned-owned: cl_log_event_free. Errors: CL_EERASED,
 * CL_ECRYPTO, CL_EDENIED (no master key), CL_ENOMEM. */
int cl_log_open_event(cl_log *log, const cl_event_view *ev, uint8_t **plain, size_t *n,
                      cl_err *err);
/* Wipes and frees a decrypted event. */
void cl_log_event_free(uint8_t *plain, size_t n);

/* Reads one stream from `from_version` (1-based; backwards: 0 = from the
 * end), at most `max` events. CL_ENOTFOUND if the stream has no events. */
int cl_log_read_stream(cl_log *log, const char *stream, uint64_t from_version, int backwards,
                       uint64_t max, cl_event_fn fn, void *ctx, cl_err *err);

/* Seq callback: return 0 to continue, 1 to stop, or a negative CL_E*
 * error (with err set) to abort with it. */
typedef int (*cl_seq_fn)(void *ctx, uint64_t seq, cl_err *err);
/* The seqs of the published events of the stream with tag `tag`, in stream
 * order, from its index alone (no record is read). A stream with no events
 * gives none (no error). */
int cl_log_stream_seqs(cl_log *log, const uint8_t tag[32], cl_seq_fn fn, void *ctx, cl_err *err);

/* Reads the event at `seq`. CL_ENOTFOUND beyond the published head. */
int cl_log_read_seq(cl_log *log, uint64_t seq, cl_event_fn fn, void *ctx, cl_err *err);

/* Current version of the stream with tag `tag` (0: none). */
int cl_log_tag_version(cl_log *log, const uint8_t tag[32], uint64_t *version, cl_err *err);

/* Reads one event by id. CL_ENOTFOUND if absent. */
int cl_log_get_event(cl_log *log, const uint8_t id[16], cl_event_fn fn, void *ctx, cl_err *err);
/* The seq of the event with id `id` (16 bytes), without reading it.
 * CL_ENOTFOUND if absent (or not yet published). */
int cl_log_seq_of(cl_log *log, const uint8_t id[16], uint64_t *seq, cl_err *err);

/* Current version (event count) of a stream; 0 if it has none. */
int cl_log_stream_version(cl_log *log, const char *stream, uint64_t *version, cl_err *err);

/* Tree size and root of the committed log. */
void cl_log_head(cl_log *log, uint64_t *size, uint8_t root[32]);

/* Signs and stores a checkpoint of the current tree head (unless one at that
 * size exists) and returns it: *note returned-owned (free()). */
int cl_log_checkpoint(cl_log *log, char **note, size_t *len, cl_err *err);

/* Latest stored checkpoint with size <= max_size (0 = latest). */
int cl_log_get_checkpoint(cl_log *log, uint64_t max_size, char **note, size_t *len, cl_err *err);

/* Checkpoint origin / key name and the log's public key. Views valid until close. */
const char *cl_log_origin(const cl_log *log);
/* The log key (signs checkpoints; a node signs what it writes itself, such
 * as sessions, with it): a view valid until cl_log_close, NULL on a node
 * opened without it. */
const cl_signer *cl_log_signer(const cl_log *log);
const uint8_t *cl_log_public_key(const cl_log *log);


/* RFC 9162 proofs over the committed tree; `proof` holds up to 64 hashes. */
int cl_log_prove_inclusion(cl_log *log, uint64_t seq, uint64_t size, uint8_t proof[][32],
                           size_t *n, uint8_t leaf[32], cl_err *err);
int cl_log_prove_consistency(cl_log *log, uint64_t old_size, uint64_t new_size,
                             uint8_t proof[][32], size_t *n, cl_err *err);
int cl_log_root_at(cl_log *log, uint64_t size, uint8_t root[32], cl_err *err);

/* The log's commit feed (feed.h): follow it to learn that the log grew.
 * A view valid until cl_log_close; watchers still attached at close are
 * detached and never called again. */
cl_feed *cl_log_feed(cl_log *log);

/* Erasures destroy a stream's data key at once (nothing decrypts it after
 * the commit); removing the old key's bytes from disk (flushing every
 * family, compacting `keys`) runs in the background. Waits until every
 * purge asked for so far is done (deadline: CLOCK_REALTIME ms, 0 = none)
 * and reports the last one's error. Errors: CL_ETIMEDOUT, CL_EIO. */
int cl_log_purge_wait(cl_log *log, int64_t deadline_ms, cl_err *err);

/* Principal and roles a public key is registered to (as of the committed
 * head). Errors: CL_EUNKNOWNKEY. `principal`/`roles` get NUL-terminated
 * copies, truncated to their sizes; *revoked is set to 1 if revoked. */
int cl_log_key_info(cl_log *log, const uint8_t pk[32], char *principal, size_t plen, char *roles,
                    size_t rlen, int *revoked);

/* Keyed stream tag (32 bytes) of a stream name; needs the master key. */
int cl_log_stream_tag(cl_log *log, const char *stream, uint8_t tag[32], cl_err *err);

/* ---- replication (replication/) ----
 * A cluster node commits through Raft: the leader prepares (cl_log_prepare),
 * the Raft log carries the PreparedBatch, and every node applies the same
 * entries in the same order with cl_log_apply. See docs/replication.md. */

/* The records of a prepared batch encoded and their leaf hashes started,
 * ahead of the commit (which then only adds each record's 28-byte tail):
 * computed by the thread that prepared the batch, in parallel with others. */
typedef struct cl_prefixes cl_prefixes;
cl_prefixes *cl_log_prefixes(const Clinlog__V1__PreparedBatch *pb); /* NULL: out of memory */
void cl_log_prefixes_free(cl_prefixes *p);

/* One prepared batch of a Raft entry and its outcome. */
typedef struct cl_apply_item {
  const Clinlog__V1__PreparedBatch *pb;  /* borrowed */
  cl_prefixes *pre;      /* optional, borrowed: cl_log_prefixes of a batch with this content */
  int want_result;       /* fill r (the node that serves the client) */
  int rc;                /* out: 0 or the batch's own error (CL_ECONFLICT, CL_EDUPLICATE, ...) */
  cl_err err;            /* out */
  cl_append_result r;    /* out, with want_result: on rc 0 or CL_ECONFLICT (free it) */
} cl_apply_item;

/* Applies Raft entry `index`: its batches in order, each checked against
 * everything before it, all in one store write that also records `index`
 * as applied (n may be 0: only the index is recorded). A batch that fails
 * its checks is rejected alone (items[i].rc); the outcome is the same on
 * every node. Returns 0, 1 if the entry was applied before (index <= the
 * applied index: nothing changes), or an error after which the log is
 * failed (CL_EIO, CL_ENOMEM, CL_EFAILED): the node must stop. A batch with
 * with_previous set is committed only if the batch right before it wrote
 * new events (its records then follow that batch's at once), else refused
 * alone with CL_EPRECOND; cl_log_append and cl_log_commit refuse it
 * (CL_EINVAL). */
CL_MUST_CHECK int cl_log_apply(cl_log *log, uint64_t index, cl_apply_item *items, size_t n,
                               cl_err *err);

/* Raft index of the last applied entry (0: none). */
uint64_t cl_log_applied_index(cl_log *log);

/* Data keys minted by applied entries that no key of this log unwraps,
 * since open: stored as they came (every node stores the same), so the
 * streams they start cannot be read here. Nonzero means this node's master
 * key is not the cluster's (store/masterkey.h). Thread-safe. */
uint64_t cl_log_foreign_keys(cl_log *log);

/* Makes every write so far durable (fsyncs RocksDB's WAL); for logs opened
 * with sync = 0, whose durability comes from the Raft log until then. */
int cl_log_sync(cl_log *log, cl_err *err);

/* The stored (wrapped) data key of a stream: *n = 0 if it was erased.
 * CL_ENOTFOUND if the stream has no key. */
int cl_log_wrapped_key(cl_log *log, const uint8_t tag[32], uint8_t *out, size_t cap, size_t *n,
                       cl_err *err);

/* Raw stored records from_seq..to_seq (inclusive, within the tree), in
 * order. The bytes are valid during the callback only. */
typedef int (*cl_record_fn)(void *ctx, uint64_t seq, const uint8_t *rec, size_t len, cl_err *err);
int cl_log_read_records(cl_log *log, uint64_t from_seq, uint64_t to_seq, cl_record_fn fn,
                        void *ctx, cl_err *err);

/* Catch-up: appends records copied from another node's log (first_seq must
 * follow this log's head), with the wrapped keys of the streams they start.
 * Every record is checked (sequence, stream versions, ids, commit times) and
 * the chunk is verified against the tree the node must reach: the root after
 * the chunk must be consistent (RFC 9162 proof) with target_root at
 * target_size, or equal it when the chunk ends there. Only then is it
 * written (one synced write); on any error nothing is written. Keyring and
 * erasure state are derived from the system events, as on the write path.
 * All inputs are borrowed and untrusted. Errors: CL_EINVAL, CL_EVERIFY,
 * CL_ECRYPTO, CL_EIO, CL_EDENIED (no master key). */
typedef struct cl_ingest_record {
  const uint8_t *data;
  size_t len;
} cl_ingest_record;
typedef struct cl_ingest_key {
  const uint8_t *tag;      /* 32 bytes */
  const uint8_t *wrapped;  /* CL_WRAPPED_KEY_SIZE bytes, or wrapped_len 0: erased */
  size_t wrapped_len;
} cl_ingest_key;
CL_MUST_CHECK int cl_log_ingest(cl_log *log, uint64_t first_seq, const cl_ingest_record *recs,
                                size_t n, const cl_ingest_key *keys, size_t nkeys,
                                uint64_t target_size, const uint8_t target_root[32],
                                const uint8_t (*proof)[32], size_t nproof, cl_err *err);

#endif

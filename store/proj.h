/* Projection state: the store side of a projection (query/). A projection
 * is a deterministic fold over the committed log; its state lives in
 * column families of its own in the log's RocksDB instance:
 *
 *   | family                | key                  | value                          |
 *   |-----------------------|----------------------|--------------------------------|
 *   | proj.<name>           | "position"           | last seq folded, u64 BE        |
 *   |                       | "version"            | the fold's version, u32 BE     |
 *   | proj.<name>.<family>  | the projection's own | plaintext (no patient data) or |
 *   |                       | (no plaintext ids)   | sealed (below)                 |
 *
 * Every change a fold makes is written with the new position in one
 * RocksDB write (cl_proj_commit, or cl_proj_commit_start on a writer
 * thread), so a crash never half-applies an event:
 * after a restart the projection resumes from a position its state matches.
 * A commit that changes nothing (a batch of events the fold ignores) moves
 * the position in memory alone while the position on disk is less than
 * 16384 events behind (proj_int.h, LAZY_MAX; cl_proj_close writes it): the
 * state is the same at both, and a restart refolds those events again.
 * Projection writes are not synced (the state is derived: whatever a crash
 * loses is refolded from the log).
 *
 * At rest:
 *  - values holding patient data are sealed under the data key of the
 *    stream they come from: tag[32] || nonce[24] || XChaCha20-Poly1305
 *    ciphertext, associated data "proj.<name>.<family>" 0x00 || key. Erasing
 *    the stream shreds them with the stream (they then read as CL_EERASED).
 *    The nonce is synthetic (crypt.h), so a rebuilt projection is byte-for-
 *    byte the live one;
 *  - keys hold no plaintext identifiers or codes: cl_proj_hash gives keyed
 *    hashes (HMAC-SHA-256 under a key derived from the master key, domain
 *    "proj.<name>"), as stream tags are for stream names.
 *
 * Names (projection and family) are 1..48 characters of [a-z0-9_].
 * Opening a projection whose stored version differs from the caller's
 * resets it (its families are dropped and recreated empty, position 0): a
 * changed fold rebuilds from event 1.
 *
 * Thread-safety: one writer (the projection's runner) and any number of
 * readers. cl_proj_reset waits for readers and transactions to finish. */
#ifndef CL_STORE_PROJ_H
#define CL_STORE_PROJ_H

#include <stddef.h>
#include <stdint.h>

#include "store/err.h"
#include "store/log.h"

#define CL_PROJ_NAME_MAX 48
#define CL_PROJ_MAX_FAMILIES 16

typedef struct cl_proj cl_proj;
typedef struct cl_proj_txn cl_proj_txn;

/* Opens projection `name` of `log` with `nfam` families (borrowed names),
 * creating what is missing; resets it when the stored version differs.
 * Family i is addressed as `fam` = i below. *out returned-owned
 * (cl_proj_close; before the log closes). Errors: CL_EINVAL (names),
 * CL_EDENIED (a log without its master key, or read-only), CL_EIO,
 * CL_ECORRUPT, CL_ENOMEM. */
int cl_proj_open(cl_log *log, const char *name, uint32_t version, const char *const *families,
                 size_t nfam, cl_proj **out, cl_err *err);
void cl_proj_close(cl_proj *p);

const char *cl_proj_name(const cl_proj *p);
/* The log the projection folds (a view, valid until cl_proj_close). */
cl_log *cl_proj_log(const cl_proj *p);
/* 1 when the projections' database (every projection's) has no flush or
 * compaction running or waiting, else 0 (cl_db_settled): a projection
 * that caught up may leave RocksDB work behind it. */
int cl_proj_settled(cl_proj *p);
/* The last seq folded into the committed state (0: none). */
uint64_t cl_proj_position(cl_proj *p);
/* How many commits since the open changed the state (wrote or deleted a
 * key): a reader that only needs to look again when the state changed
 * compares it with the value it last saw. */
uint64_t cl_proj_changes(cl_proj *p);

/* Drops every family and the position (the projection restarts from event
 * 1). Waits for readers and open transactions. Errors: CL_EIO. */
int cl_proj_reset(cl_proj *p, cl_err *err);

/* Keyed hash of an identifier, for keys (see the header comment). */
void cl_proj_hash(const cl_proj *p, const void *ident, size_t n, uint8_t out[32]);

/* ---- writing: one transaction per batch of folded events ---- */

/* Starts a transaction (*out returned-owned: cl_proj_commit or
 * cl_proj_abort). Errors: CL_ENOMEM. */
int cl_proj_begin(cl_proj *p, cl_proj_txn **out, cl_err *err);
/* Plaintext value: only for data that is not patient data (counts, tags,
 * sequence numbers, type codes). */
int cl_proj_put(cl_proj_txn *t, unsigned fam, const void *key, size_t kl, const void *val,
                size_t vl, cl_err *err);
/* A value sealed under the data key of stream `tag`. CL_EERASED if that
 * stream is erased (nothing is written), CL_ECORRUPT, CL_ENOMEM. The
 * transaction keeps the plaintext (wiped when it ends) and seals it when
 * the commit writes it, on the writer thread when pipelined: reads in the
 * transaction take the plaintext as it is. A stream erased between the put
 * and the write: the value is left out of the write (the fold of its
 * StreamErased forgets the rest). */
int cl_proj_put_sealed(cl_proj_txn *t, unsigned fam, const void *key, size_t kl,
                       const uint8_t tag[32], const void *val, size_t vl, cl_err *err);
int cl_proj_del(cl_proj_txn *t, unsigned fam, const void *key, size_t kl, cl_err *err);
/* Reads through the transaction (its own writes first, then the committed
 * state). *val returned-owned (cl_free); CL_ENOTFOUND. _sealed opens the
 * value: CL_EERASED if its stream was erased, CL_ECRYPTO if it was tampered
 * with or moved. */
int cl_proj_txn_get(cl_proj_txn *t, unsigned fam, const void *key, size_t kl, uint8_t **val,
                    size_t *vl, cl_err *err);
int cl_proj_txn_get_sealed(cl_proj_txn *t, unsigned fam, const void *key, size_t kl, uint8_t **val,
                           size_t *vl, cl_err *err);
/* Writes the transaction's changes and `position` in one write, then frees
 * it (also on error). A commit in flight (below) is waited for first.
 * Errors: CL_EINVAL (position goes backwards), CL_EIO, and those of the
 * commit in flight (t is then not written). */
int cl_proj_commit(cl_proj_txn *t, uint64_t position, cl_err *err);
void cl_proj_abort(cl_proj_txn *t);

/* Pipelined commits, for a writer that folds the next batch while this
 * one is written: cl_proj_commit_start waits for the commit in flight (as
 * cl_proj_commit_wait), then hands t to the projection's writer thread and
 * returns; t is the projection's from then on (also on error, when it is
 * freed). A transaction begun while t is in flight reads t's writes after
 * its own. The position moves when the write is done. Errors: as
 * cl_proj_commit, of the previous commit or this one's checks (on error
 * nothing of t is written). One commit in flight at a time.
 *
 * cl_proj_commit_wait waits for the commit in flight (0 if none) and
 * returns its result: 0, or its error, in which case neither it nor any
 * transaction begun over it is written (they fail to commit) and the
 * position stays where it was.
 *
 * Both, and cl_proj_begin, cl_proj_reset and cl_proj_close while a commit
 * is in flight, are called from one thread: the one that began the
 * transaction in flight (the runner's). */
int cl_proj_commit_start(cl_proj_txn *t, uint64_t position, cl_err *err);
int cl_proj_commit_wait(cl_proj *p, cl_err *err);

/* ---- reading committed state (query engines) ---- */

/* As cl_proj_txn_get(_sealed), on the committed state. */
int cl_proj_get(cl_proj *p, unsigned fam, const void *key, size_t kl, uint8_t **val, size_t *vl,
                cl_err *err);
int cl_proj_get_sealed(cl_proj *p, unsigned fam, const void *key, size_t kl, uint8_t **val,
                       size_t *vl, cl_err *err);
/* Opens a sealed value found by a scan. *plain returned-owned (cl_free). */
int cl_proj_open_sealed(cl_proj *p, unsigned fam, const void *key, size_t kl, const uint8_t *sealed,
                        size_t len, uint8_t **plain, size_t *n, cl_err *err);

/* Scan callback: views valid during the call. Return 0 to go on, 1 to
 * stop, or a negative error (with err set) to abort the scan with it. */
/* The committed values of n keys of family `fam` (key i: keys[i], kl[i]
 * bytes), read in one batch (keys in ascending order read best), each
 * given to fn in turn: i, the value (a view valid during the call; NULL
 * when the key is absent). A nonzero return of fn stops and is returned;
 * else 0, CL_EIO or CL_ENOMEM. */
typedef int (*cl_proj_got_fn)(void *ctx, size_t i, const uint8_t *val, size_t vl, cl_err *err);
int cl_proj_get_many(cl_proj *p, unsigned fam, size_t n, const uint8_t *const *keys,
                     const size_t *kl, cl_proj_got_fn fn, void *ctx, cl_err *err);

typedef int (*cl_proj_scan_fn)(void *ctx, const uint8_t *key, size_t kl, const uint8_t *val,
                               size_t vl, cl_err *err);
/* Keys of family `fam` starting with `prefix`, in order, from the first key
 * >= `from` (NULL: the prefix itself). */
int cl_proj_scan(cl_proj *p, unsigned fam, const void *prefix, size_t pl, const void *from,
                 size_t fl, cl_proj_scan_fn fn, void *ctx, cl_err *err);

/* As cl_proj_scan, and *deleted is how many deleted entries the scan
 * stepped over: deletions leave markers that every read of their range
 * steps over until a compaction drops them, so a family used as a queue
 * (entries put, then deleted once handled) and scanned from its start
 * gets slower with every entry it has handled (cl_proj_compact). */
int cl_proj_scan_deleted(cl_proj *p, unsigned fam, const void *prefix, size_t pl, const void *from,
                         size_t fl, cl_proj_scan_fn fn, void *ctx, uint64_t *deleted, cl_err *err);

/* Flushes family `fam`'s memtable and compacts the family whole, dropping
 * the markers its deletions left (and the values they deleted). Blocks for
 * the compaction; the family stays readable and writable meanwhile. 0,
 * CL_EINVAL (no such family) or CL_ENOMEM. */
int cl_proj_compact(cl_proj *p, unsigned fam, cl_err *err);

/* Every key and value of every family and the position, in a fixed order,
 * to `fn` (key prefixed with the family index byte): what "rebuilt equals
 * live, byte for byte" compares. */
int cl_proj_dump(cl_proj *p, cl_proj_scan_fn fn, void *ctx, cl_err *err);

#endif

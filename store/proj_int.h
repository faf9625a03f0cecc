/* Projection state, private to store/proj*.c: the projection, its
 * transactions and the functions the three files share. proj.c: opening,
 * transactions, reads; proj_seal.c: sealed values; proj_commit.c: the
 * commit, pipelined on a writer thread.
 *
 * Locking: `lk` (a reader-writer lock) guards the family handles: readers
 * and transactions (from begin to commit or abort; a pipelined one until
 * its write is waited for) hold it shared, cl_proj_reset exclusively (it
 * drops and recreates the families, which replaces the handles). `mu`
 * guards the position. `wmu` guards the writer thread's hand-over (the
 * job, its result) and the spare index. A transaction's reference count,
 * its `base` and `inflight` belong to the committing thread.
 *
 * A pipelined transaction is read by two threads at once, the writer
 * (building its write batch) and the committing thread (as a later
 * transaction's base): neither changes it after cl_proj_commit_start. */
#ifndef CLINLOG_STORE_PROJ_INT_H
#define CLINLOG_STORE_PROJ_INT_H

#include <pthread.h>

#include "store/hmap.h"
#include "store/log_int.h"
#include "store/proj.h"
#include "store/sha256.h"

#define META_POSITION "position"
#define META_VERSION "version"
/* How the store lays out every projection's state, beside each fold's own
 * version: state of another format (or of none: format 1, before this key)
 * is dropped at open and folded again from event 1. 2: values sealed with
 * AES-256-GCM (crypt.h), 2026-12-07; 1: XChaCha20-Poly1305. */
#define META_FORMAT "format"
#define PROJ_FORMAT 2

/* A commit that writes nothing moves the position in memory only, until the
 * position on disk is this many events behind (then it is written): a
 * batch of events a projection ignores (the audit trail's records, for
 * most) costs no RocksDB write, and a restart refolds at most this many
 * events that change nothing. */
#define LAZY_MAX 16384

struct cl_proj {
  cl_log *log;
  cl_db *db; /* the log's projections' database (cl_log_proj_db) */
  char name[CL_PROJ_NAME_MAX + 1];
  uint32_t version;
  size_t nfam;
  char fam_names[CL_PROJ_MAX_FAMILIES][CL_PROJ_NAME_MAX + 1];
  /* "proj.<name>.<family>", each value's AD starts with it (ad_make) */
  char fam_full[CL_PROJ_MAX_FAMILIES][2 * CL_PROJ_NAME_MAX + 8];
  size_t fam_full_len[CL_PROJ_MAX_FAMILIES];
  pthread_rwlock_t lk; /* guards the handles below */
  rocksdb_column_family_handle_t *meta;
  rocksdb_column_family_handle_t *fam[CL_PROJ_MAX_FAMILIES];
  pthread_mutex_t mu; /* guards position and changes */
  uint64_t position;
  /* The position on disk: behind `position` by the commits that wrote
   * nothing (at most LAZY_MAX events; see cl_proj_commit). Belongs to the
   * committing thread (the writer's write_txn sets it while it owns the
   * commit in flight, waited for before the next commit looks). */
  uint64_t written;
  uint64_t changes; /* commits that wrote state since the open */
  /* HMAC state after "proj." || name || 0x00 under the projection key
   * (cl_proj_hash continues a copy); sodium_malloc'd: it is as secret as
   * the key. Set at open, read-only after. */
  cl_hmac256_state *hmac;
  uint8_t wkey[crypto_shorthash_siphashx24_KEYBYTES]; /* random: transaction write index */

  /* Pipelined commits (cl_proj_commit_start). The writer thread writes the
   * transaction in `job`; `wmu` guards job, done, rc and werr, and the
   * writer's life (started, stop). `inflight` (the transaction handed
   * over, until waited for) belongs to the thread that commits. */
  pthread_mutex_t wmu;
  pthread_cond_t wcv;
  pthread_t writer;
  int started, stop;
  cl_proj_txn *job;
  int done, rc;
  cl_err werr;
  cl_proj_txn *inflight;
  cl_hmap *spare_idx; /* a finished transaction's index, emptied, for the next one (wmu) */
  /* The last commit's write batch, cleared, for the next (write_txn's:
   * commits never overlap). It holds only what was written: keys (hashes)
   * and sealed or plain values, never patient data in plaintext. */
  rocksdb_writebatch_t *wb;
};

/* A transaction's writes, kept until the commit: there they are written
 * in key order (sorted inserts reuse the memtable's search position, which
 * for random keys such as tags halves the insert cost), the last write of a
 * key winning. Reads in the transaction see them first (an index by a
 * hash of family and key). */
typedef struct txn_write {
  uint8_t *kv; /* key bytes, then value bytes (in the transaction's arena) */
  size_t kl, vl;
  unsigned fam;
  int del;
  int seal;       /* the value is tag[32] || plaintext, sealed when written (seal_write) */
  int superseded; /* a later write of the same key replaced it */
} txn_write;

/* The transaction's bytes come from blocks of at least ARENA_BLOCK bytes,
 * freed together: no allocation per write. They hold the plaintext of
 * values to seal: wiped when freed. */
#define ARENA_BLOCK (64u << 10)
typedef struct arena_block {
  struct arena_block *next;
  size_t used, cap;
  uint8_t data[];
} arena_block;

struct cl_proj_txn {
  cl_proj *p;
  txn_write *w;
  size_t n, cap;
  arena_block *arena; /* the block being filled first */
  cl_hmap *idx;       /* write_hash(fam, key)[16] -> uint32 index of the latest write */
  /* The transaction in flight when this one began (NULL: none): reads see
   * its writes after this one's, as they may not be on disk yet. */
  cl_proj_txn *base;
  /* Holders of the memory: the caller until it commits or aborts, the
   * writer while it is in flight, each transaction reading it as `base`
   * (all counted on the committing thread). */
  int refs;
  int locked;        /* the caller's read lock on p->lk is held for it */
  int failed;        /* its write failed: a transaction over it cannot commit */
  uint64_t position; /* the position it commits */
};

/* proj.c: drops one holder of t's memory (the last frees it); the
 * caller is done with t (its lock and its base go). */
void proj_txn_release(cl_proj_txn *t);
void proj_txn_end(cl_proj_txn *t);

/* proj_seal.c: the stored form of a write to seal (w->seal): tag || the
 * sealed value, into *buf (grown as needed; *cap its size), *n bytes.
 * CL_EERASED if the stream was erased since the put. */
int proj_seal_write(cl_proj *p, const txn_write *w, uint8_t **buf, size_t *cap, size_t *n,
                    cl_err *err);
/* proj_seal.c: opens a value read as `sealed` in place of the caller's
 * result (*val freed either way). */
int proj_open_in_place(cl_proj *p, unsigned fam, const void *key, size_t kl, uint8_t **val,
                       size_t *vl, cl_err *err);

/* proj_commit.c: writes `position` alone as the position on disk (err
 * may be NULL). */
int proj_write_position(cl_proj *p, uint64_t position, cl_err *err);

/* proj_commit.c: waits for the commit in flight and stops the writer
 * thread (at close). */
void proj_writer_stop(cl_proj *p);

#endif

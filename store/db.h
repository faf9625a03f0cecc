/* The RocksDB instances under a data directory and the few helpers
 * log.c, proj.c and verify.c share. rocksdb_* types stay inside store/.
 *
 * The log's database (<dir>/db) has these fixed families:
 *
 *   family       key                           value
 *   log          seq u64 BE                    Record (protobuf, record.proto)
 *   streams      tag[32] || version u64 BE     seq u64 BE
 *   ids          event id[16]                  seq u64 BE || version u64 BE || hash[32]
 *   merkle       leaf index u64 BE             hashes of the nodes leaf i completes:
 *                                              level 0 (the leaf), 1, ..., ctz(i+1)
 *   meta         name (ASCII)                  see log.c (tree_size, root, format...)
 *   keys         tag[32]                       wrapped data key (nonce[24] || ct[48]);
 *                                              empty = erased
 *   keyring      public key[32]                KeyringEntry (see log.c)
 *   checkpoints  tree size u64 BE              signed note text
 *
 * The projections' database (<dir>/proj, cl_db_open_proj) has only
 * "default" and the families projections create and drop at run time
 * (proj.c, cl_db_cf_*): proj.<name> (position, version) and
 * proj.<name>.<family> (the projection's keys; values sealed, see proj.h).
 * Either opens every family it finds (docs/format.md).
 */
#ifndef CL_STORE_DB_H
#define CL_STORE_DB_H

#include <pthread.h>
#include <rocksdb/c.h>
#include <stddef.h>
#include <stdint.h>

#include "store/err.h"

enum cl_cf {
  CL_CF_DEFAULT,
  CL_CF_LOG,
  CL_CF_STREAMS,
  CL_CF_IDS,
  CL_CF_MERKLE,
  CL_CF_META,
  CL_CF_KEYS,
  CL_CF_KEYRING,
  CL_CF_CHECKPOINTS,
  CL_CF_COUNT
};

/* A family beyond the fixed ones (a projection's). */
typedef struct cl_db_family {
  char *name;
  rocksdb_column_family_handle_t *h;
} cl_db_family;

typedef struct cl_db {
  rocksdb_t *db;
  rocksdb_column_family_handle_t *cf[CL_CF_COUNT];
  pthread_mutex_t fam_mu; /* guards fam, nfam, capfam */
  cl_db_family *fam;
  size_t nfam, capfam;
  rocksdb_options_t *opts;
  rocksdb_options_t *point_opts; /* keys, keyring: memtable bloom for point misses */
  rocksdb_options_t *ids_opts;   /* ids: hash-linked-list memtable, whole-key lookups only */
  rocksdb_block_based_table_options_t *bbto;
  rocksdb_cache_t *cache; /* NULL: another database's (cl_db_open_proj) */
  rocksdb_readoptions_t *ro;
  rocksdb_readoptions_t *ro_bulk;    /* long scans: their blocks bypass the block cache */
  rocksdb_writeoptions_t *wo;        /* sync per cl_db_open's `sync` */
  rocksdb_writeoptions_t *wo_nosync; /* projection state: derived, rebuilt on loss */
  int read_only;
  int buffered; /* opened CL_DB_BUFFERED */
} cl_db;

/* cl_db_open's `sync`: every write fsync'd (CL_DB_SYNCED), or not, each
 * written to the WAL file as it is made (CL_DB_UNSYNCED: a process that
 * dies loses nothing written; the machine's crash loses the unsynced
 * tail), or not, RocksDB's manual WAL flush (CL_DB_BUFFERED: the WAL
 * records of cl_db_write_buffered stay in RocksDB's buffer of a megabyte
 * until a later cl_db_write, cl_db_flush_wal, a memtable switch, a full
 * buffer or close writes them out, so a process that dies loses those of
 * them not yet written, always a tail: what is on disk is a prefix of the
 * writes, as after a machine's crash). */
enum { CL_DB_UNSYNCED = 0, CL_DB_SYNCED = 1, CL_DB_BUFFERED = 2 };

/* Opens <path> (the "db" directory). create: make it if missing; read_only:
 * open without taking the lock (for verify); sync: as above. On success
 * *out is returned-owned (cl_db_close). */
int cl_db_open(const char *path, int create, int read_only, int sync, cl_db **out, cl_err *err);
/* Opens (creating it if missing) the projections' database at <path> (the
 * data directory's "proj"): no fixed families but "default" (cf[i] NULL
 * for the others), only the families projections create, its own WAL and
 * write queue, CL_DB_BUFFERED (projection state is derived: a lost tail
 * is folded again). Its blocks share log_db's cache: close it first. Each
 * database keeps its memtables under 64 MiB. */
int cl_db_open_proj(const char *path, cl_db *log_db, cl_db **out, cl_err *err);
void cl_db_close(cl_db *db);

/* Point read. On 0, *val is returned-owned (rocksdb_free) and may be NULL
 * only on CL_ENOTFOUND. */
int cl_db_get(cl_db *db, int cf, const void *key, size_t klen, char **val, size_t *vlen,
              cl_err *err);

/* Writes a batch: synced on a CL_DB_SYNCED database, with the WAL's buffer
 * written out on a CL_DB_BUFFERED one. */
int cl_db_write(cl_db *db, rocksdb_writebatch_t *wb, cl_err *err);
/* As cl_db_write, but on a CL_DB_BUFFERED database the write's WAL record
 * stays in RocksDB's buffer (see cl_db_open): only for writes whose loss
 * the caller makes good (a Raft entry's apply, replayed from the Raft log
 * after a restart). Elsewhere the same as cl_db_write. */
int cl_db_write_buffered(cl_db *db, rocksdb_writebatch_t *wb, cl_err *err);
/* Writes the WAL's buffer out, and fsyncs the WAL if `sync`. 0 or CL_EIO. */
int cl_db_flush_wal(cl_db *db, int sync, cl_err *err);

/* Flushes the memtables of every family (waits). 0 or CL_EIO. */
int cl_db_flush_all(cl_db *db, cl_err *err);
/* Compacts a whole fixed family. 0 or CL_EIO. */
int cl_db_compact(cl_db *db, int cf, cl_err *err);

/* 1 when no flush or compaction runs or waits in any family (RocksDB's
 * background work has caught up with the writes), else 0. */
int cl_db_settled(cl_db *db);

/* Families beyond the fixed ones. find: the handle (a view valid until the
 * family is dropped or the db closed) or NULL. create: creates it unless it
 * exists; *h as find. drop: drops it and its data (no-op if absent). Names
 * are bytes without NUL, at most 200. Errors: CL_EINVAL, CL_EIO, CL_ENOMEM.
 * Thread-safe; callers must not use a handle concurrently with dropping it. */
rocksdb_column_family_handle_t *cl_db_cf_find(cl_db *db, const char *name);
int cl_db_cf_create(cl_db *db, const char *name, rocksdb_column_family_handle_t **h, cl_err *err);
int cl_db_cf_drop(cl_db *db, const char *name, cl_err *err);
/* Names of the extra families whose name starts with `prefix`, as a
 * returned-owned array of returned-owned strings (free each, then the
 * array); *n gets the count. CL_ENOMEM. */
int cl_db_cf_list(cl_db *db, const char *prefix, char ***names, size_t *n, cl_err *err);

/* 1 if another process holds the lock of the database under the data
 * directory `dir` (a running node), else 0. */
int cl_db_in_use(const char *dir);

/* Translates and frees a RocksDB error string; returns CL_EIO. */
int cl_db_error(char *rerr, cl_err *err, const char *what);

/* Meta keys (meta column family). */
#define CL_META_FORMAT "format"         /* u32 BE */
#define CL_META_TREE_SIZE "tree_size"   /* u64 BE */
#define CL_META_ROOT "root"             /* 32 bytes */
#define CL_META_ORIGIN "origin"         /* text */
#define CL_META_LOG_PK "log_public_key" /* 32 bytes */
#define CL_META_APPLIED "applied_index" /* u64 BE, replication */
#define CL_META_KEY_CHECK "key_check"   /* 16 bytes: proves which master key the log uses */
/* after a master key rotation (masterkey.h): the tag and projection keys
 * and the wrap keys of the last retired master keys, sealed under the
 * current master key (crypt.h); the key checks of the master keys retired
 * so far, each with when (check[16] || unix s u64 BE) */
#define CL_META_FIXED_KEYS "fixed_keys"
#define CL_META_RETIRED_WRAP "retired_wrap_keys"
#define CL_META_RETIRED_KEYS "retired_key_checks"

static inline void cl_be64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--) {
    p[i] = (uint8_t)v;
    v >>= 8;
  }
}
static inline uint64_t cl_get_be64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = (v << 8) | p[i];
  return v;
}

/* Where the Merkle node (level, index) is stored: under the leaf that
 * completed it, ((index + 1) << level) - 1, at hash position `level`. One
 * key per leaf keeps the write path at one Merkle put per event. */
static inline uint64_t cl_merkle_node_leaf(unsigned level, uint64_t index) {
  return ((index + 1) << level) - 1;
}

#endif

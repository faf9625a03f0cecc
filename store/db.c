/* RocksDB set-up for a clinlog data directory; see db.h. */
#include "store/db.h"

#include <stdlib.h>
#include <string.h>

static const char *const CF_NAMES[CL_CF_COUNT] = {
    "default", "log", "streams", "ids", "merkle", "meta", "keys", "keyring", "checkpoints"};

int cl_db_error(char *rerr, cl_err *err, const char *what) {
  cl_err_set(err, CL_EIO, "rocksdb %s: %s", what, rerr ? rerr : "unknown error");
  if (rerr)
    rocksdb_free(rerr);
  return CL_EIO;
}

int cl_db_open(const char *path, int create, int read_only, int sync, cl_db **out, cl_err *err) {
  cl_db *db = calloc(1, sizeof *db);
  if (!db)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  db->read_only = read_only;
  db->opts = rocksdb_options_create();
  rocksdb_options_set_create_if_missing(db->opts, create);
  rocksdb_options_set_create_missing_column_families(db->opts, create);
  rocksdb_options_set_paranoid_checks(db->opts, 1);
  rocksdb_options_increase_parallelism(db->opts, 2);
  rocksdb_options_set_max_open_files(db->opts, 512);
  /* all memtables together (every family) stay under this: memory does not
   * grow with the log, also while a new replica ingests millions of events */
  rocksdb_options_set_db_write_buffer_size(db->opts, 128u << 20);
  /* unsynced writes (a cluster member: the Raft log is the WAL) are synced
   * in the background a megabyte at a time, so the fsync before a snapshot
   * (cl_log_sync) does not stall the Raft loop on tens of megabytes */
  rocksdb_options_set_wal_bytes_per_sync(db->opts, 1u << 20);
  rocksdb_options_set_bytes_per_sync(db->opts, 1u << 20);
  db->cache = rocksdb_cache_create_lru(64 << 20);
  db->bbto = rocksdb_block_based_options_create();
  rocksdb_block_based_options_set_block_cache(db->bbto, db->cache);
  rocksdb_block_based_options_set_filter_policy(db->bbto, rocksdb_filterpolicy_create_bloom(10));
  /* index and filter blocks live in the block cache too (they would
   * otherwise grow with the number of SST files, i.e. with the log) */
  rocksdb_block_based_options_set_cache_index_and_filter_blocks(db->bbto, 1);
  rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(db->bbto, 1);
  rocksdb_options_set_block_based_table_factory(db->opts, db->bbto);

  /* Most appends look up ids that do not exist yet: a whole-key bloom
   * filter on the memtable answers those misses without a skiplist search. */
  db->point_opts = rocksdb_options_create_copy(db->opts);
  rocksdb_options_set_memtable_prefix_bloom_size_ratio(db->point_opts, 0.1);
  rocksdb_options_set_memtable_whole_key_filtering(db->point_opts, 1);
  /* ids are only ever looked up whole (never iterated): a hash-linked-list
   * memtable inserts a random 16-byte id in O(1) instead of a skiplist
   * search. Non-skiplist memtables need single-threaded memtable writes,
   * which the log's group commit does anyway. */
  rocksdb_options_set_allow_concurrent_memtable_write(db->opts, 0);
  rocksdb_options_set_allow_concurrent_memtable_write(db->point_opts, 0);
  db->ids_opts = rocksdb_options_create_copy(db->point_opts);
  rocksdb_options_set_prefix_extractor(db->ids_opts, rocksdb_slicetransform_create_fixed_prefix(16));
  rocksdb_options_set_hash_link_list_rep(db->ids_opts, 1 << 20);
  const rocksdb_options_t *cfopts[CL_CF_COUNT];
  for (int i = 0; i < CL_CF_COUNT; i++)
    cfopts[i] = i == CL_CF_IDS ? db->ids_opts
                : (i == CL_CF_KEYS || i == CL_CF_KEYRING) ? db->point_opts
                                                           : db->opts;
  char *rerr = NULL;
  if (read_only)
    db->db = rocksdb_open_for_read_only_column_families(db->opts, path, CL_CF_COUNT, CF_NAMES,
                                                        cfopts, db->cf, 0, &rerr);
  else
    db->db = rocksdb_open_column_families(db->opts, path, CL_CF_COUNT, CF_NAMES, cfopts, db->cf,
                                          &rerr);
  if (rerr || !db->db) {
    int rc = cl_db_error(rerr, err, "open");
    rocksdb_options_destroy(db->opts);
    rocksdb_options_destroy(db->point_opts);
    rocksdb_options_destroy(db->ids_opts);
    rocksdb_block_based_options_destroy(db->bbto);
    rocksdb_cache_destroy(db->cache);
    free(db);
    return cl_err_prefix(err, "%s", path), rc;
  }
  db->ro = rocksdb_readoptions_create();
  rocksdb_readoptions_set_verify_checksums(db->ro, 1);
  db->wo = rocksdb_writeoptions_create();
  rocksdb_writeoptions_set_sync(db->wo, sync ? 1 : 0);
  *out = db;
  return 0;
}

void cl_db_close(cl_db *db) {
  if (!db)
    return;
  if (!db->read_only) {
    /* flush memtables so the next open (and a read-only verify) need not
     * replay the whole WAL */
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(fo, 1);
    for (int i = 0; i < CL_CF_COUNT; i++) {
      char *rerr = NULL;
      rocksdb_flush_cf(db->db, fo, db->cf[i], &rerr);
      if (rerr)
        rocksdb_free(rerr); /* the WAL still has it: nothing is lost */
    }
    rocksdb_flushoptions_destroy(fo);
  }
  for (int i = 0; i < CL_CF_COUNT; i++)
    if (db->cf[i])
      rocksdb_column_family_handle_destroy(db->cf[i]);
  rocksdb_close(db->db);
  rocksdb_readoptions_destroy(db->ro);
  rocksdb_writeoptions_destroy(db->wo);
  rocksdb_options_destroy(db->opts);
  rocksdb_options_destroy(db->point_opts);
  rocksdb_options_destroy(db->ids_opts);
  rocksdb_block_based_options_destroy(db->bbto);
  rocksdb_cache_destroy(db->cache);
  free(db);
}

int cl_db_get(cl_db *db, int cf, const void *key, size_t klen, char **val, size_t *vlen,
              cl_err *err) {
  char *rerr = NULL;
  *val = rocksdb_get_cf(db->db, db->ro, db->cf[cf], key, klen, vlen, &rerr);
  if (rerr)
    return cl_db_error(rerr, err, "get");
  if (!*val) { /* a common, expected answer: no formatting on this path */
    if (err)
      err->code = CL_ENOTFOUND, strcpy(err->msg, "not found");
    return CL_ENOTFOUND;
  }
  return 0;
}

int cl_db_write(cl_db *db, rocksdb_writebatch_t *wb, cl_err *err) {
  char *rerr = NULL;
  rocksdb_write(db->db, db->wo, wb, &rerr);
  if (rerr)
    return cl_db_error(rerr, err, "write");
  return 0;
}

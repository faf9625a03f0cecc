/* RocksDB set-up for a clinlog data directory; see db.h. */
#include "store/db.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/alloc.h"

static const char *const CF_NAMES[CL_CF_COUNT] = {
    "default", "log", "streams", "ids", "merkle", "meta", "keys", "keyring", "checkpoints"};

int cl_db_error(char *rerr, cl_err *err, const char *what) {
  cl_err_set(err, CL_EIO, "rocksdb %s: %s", what, rerr ? rerr : "unknown error");
  if (rerr)
    rocksdb_free(rerr);
  return CL_EIO;
}

static int fixed_index(const char *name, int nfixed) {
  for (int i = 0; i < nfixed; i++)
    if (!strcmp(CF_NAMES[i], name))
      return i;
  return -1;
}

static void db_free_options(cl_db *db);

/* A database whose first nfixed families of CF_NAMES are its fixed ones
 * (the log's: all of them; projections': "default" alone), all memtables
 * together under 64 MiB, its blocks in `cache` (another database's, which
 * must outlive it) or, NULL, in a 64 MiB cache of its own. */
static int db_open(const char *path, int create, int read_only, int sync, int nfixed,
                   rocksdb_cache_t *cache, cl_db **out, cl_err *err) {
  cl_db *db = cl_calloc(1, sizeof *db);
  if (!db)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  db->read_only = read_only;
  db->opts = rocksdb_options_create();
  rocksdb_options_set_create_if_missing(db->opts, create);
  rocksdb_options_set_create_missing_column_families(db->opts, create);
  rocksdb_options_set_paranoid_checks(db->opts, 1);
  rocksdb_options_increase_parallelism(db->opts, 2);
  /* a read-only open (verify, next to a running server) opens every table
   * file up front: the server's compactions may delete them later, and an
   * open descriptor keeps them readable */
  rocksdb_options_set_max_open_files(db->opts, read_only ? -1 : 512);
  /* all memtables together (every family) stay under this: memory does not
   * grow with the log, also while a new replica ingests millions of events
   * (the log's and the projections' databases: 128 MiB together) */
  rocksdb_options_set_db_write_buffer_size(db->opts, 64u << 20);
  /* That limit counts what every memtable has allocated, and a memtable
   * allocates a whole arena block (by default an eighth of its 64 MiB
   * write buffer) with its first write. With a few dozen families (every
   * projection adds some) those first blocks alone exceeded the limit, and
   * every write then switched and flushed a memtable: thousands of tiny
   * table files a minute, appends ten times slower with the projections
   * running (tests/store/test_db.c). Small blocks keep a family's fixed
   * cost near half a megabyte. */
  rocksdb_options_set_arena_block_size(db->opts, 512u << 10);
  /* unsynced writes (a cluster member: the Raft log is the WAL) are synced
   * in the background a megabyte at a time, so the fsync before a snapshot
   * (cl_log_sync) does not stall the Raft loop on tens of megabytes */
  rocksdb_options_set_wal_bytes_per_sync(db->opts, 1u << 20);
  rocksdb_options_set_bytes_per_sync(db->opts, 1u << 20);
  /* writes whose loss is made good elsewhere keep their WAL records in
   * memory: no write syscall and page-cache copy per write (docs/bench.md,
   * "The store's WAL buffered on a cluster member") */
  db->buffered = !read_only && sync == CL_DB_BUFFERED;
  rocksdb_options_set_manual_wal_flush(db->opts, db->buffered);
  if (!cache)
    db->cache = rocksdb_cache_create_lru(64 << 20);
  db->bbto = rocksdb_block_based_options_create();
  rocksdb_block_based_options_set_block_cache(db->bbto, cache ? cache : db->cache);
  rocksdb_block_based_options_set_filter_policy(db->bbto, rocksdb_filterpolicy_create_bloom(10));
  /* index and filter blocks live in the block cache too (they would
   * otherwise grow with the number of SST files, i.e. with the log) */
  rocksdb_block_based_options_set_cache_index_and_filter_blocks(db->bbto, 1);
  rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(db->bbto, 1);
  rocksdb_options_set_block_based_table_factory(db->opts, db->bbto);

  /* Most appends look up ids that do not exist yet: a whole-key bloom
   * filter on the memtable answers those misses without a skiplist search. */
  db->point_opts = rocksdb_options_create_copy(db->opts);
  /* The filter is allocated whole with the memtable: 2 % of the 64 MiB
   * write buffer is 1.3 MiB, about 10 bits a key for a full memtable of
   * ids (its size counts against the limit above, once per family). */
  rocksdb_options_set_memtable_prefix_bloom_size_ratio(db->point_opts, 0.02);
  rocksdb_options_set_memtable_whole_key_filtering(db->point_opts, 1);
  /* ids are only ever looked up whole (never iterated): a hash-linked-list
   * memtable inserts a random 16-byte id in O(1) instead of a skiplist
   * search. Non-skiplist memtables need single-threaded memtable writes,
   * which the log's group commit does anyway. Its bucket array is
   * allocated and zeroed whole with every new memtable, on the writing
   * thread (the Raft loop): 1M buckets were 8 MiB faulted in at each switch,
   * a 30 ms stall of every commit under load; 128K buckets (1 MiB) hold
   * at most about 8 ids each in a full 64 MiB memtable (docs/bench.md,
   * "What stalls the half load"). */
  rocksdb_options_set_allow_concurrent_memtable_write(db->opts, 0);
  rocksdb_options_set_allow_concurrent_memtable_write(db->point_opts, 0);
  db->ids_opts = rocksdb_options_create_copy(db->point_opts);
  rocksdb_options_set_prefix_extractor(db->ids_opts,
                                       rocksdb_slicetransform_create_fixed_prefix(16));
  rocksdb_options_set_hash_link_list_rep(db->ids_opts, 1 << 17);
  pthread_mutex_init(&db->fam_mu, NULL);
  /* every family the database has: the fixed ones, then projections' */
  char **names = NULL;
  size_t nnames = 0;
  char *rerr = NULL;
  char current[4096];
  snprintf(current, sizeof current, "%s/CURRENT", path);
  if (!create || access(current, F_OK) == 0) { /* an existing database */
    names = rocksdb_list_column_families(db->opts, path, &nnames, &rerr);
    if (rerr) {
      int rc = cl_db_error(rerr, err, "listing column families");
      db_free_options(db);
      return cl_err_prefix(err, "%s", path), rc;
    }
  }
  size_t extra = 0;
  for (size_t i = 0; i < nnames; i++)
    extra += fixed_index(names[i], nfixed) < 0;
  size_t total = (size_t)nfixed + extra;
  const char **cfnames = cl_calloc(total, sizeof *cfnames);
  const rocksdb_options_t **cfopts = cl_calloc(total, sizeof *cfopts);
  rocksdb_column_family_handle_t **handles = cl_calloc(total, sizeof *handles);
  db->fam = extra ? cl_calloc(extra, sizeof *db->fam) : NULL;
  int rc = 0;
  if (!cfnames || !cfopts || !handles || (extra && !db->fam)) {
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    goto fail;
  }
  db->capfam = extra;
  for (int i = 0; i < nfixed; i++) {
    cfnames[i] = CF_NAMES[i];
    cfopts[i] = i == CL_CF_IDS                            ? db->ids_opts
                : (i == CL_CF_KEYS || i == CL_CF_KEYRING) ? db->point_opts
                                                          : db->opts;
  }
  size_t k = (size_t)nfixed;
  for (size_t i = 0; i < nnames; i++)
    if (fixed_index(names[i], nfixed) < 0) {
      cfnames[k] = names[i];
      cfopts[k++] = db->point_opts; /* projections': folds look up keys that are not there */
    }
  if (read_only) {
    /* a compaction of the live database may delete a file between reading
     * the manifest and opening the file: read the manifest again */
    for (int attempt = 0; attempt < 50; attempt++) {
      db->db = rocksdb_open_for_read_only_column_families(db->opts, path, (int)total, cfnames,
                                                          cfopts, handles, 0, &rerr);
      if (!rerr || !strstr(rerr, "No such file"))
        break;
      rocksdb_free(rerr);
      rerr = NULL;
      struct timespec ts = {0, 20 * 1000000};
      nanosleep(&ts, NULL);
    }
  } else
    db->db =
        rocksdb_open_column_families(db->opts, path, (int)total, cfnames, cfopts, handles, &rerr);
  if (rerr || !db->db) {
    rc = cl_db_error(rerr, err, "open");
    goto fail;
  }
  memcpy(db->cf, handles, (size_t)nfixed * sizeof *handles);
  for (size_t i = (size_t)nfixed; i < total; i++) {
    db->fam[db->nfam].h = handles[i];
    if (!(db->fam[db->nfam].name = cl_strdup(cfnames[i]))) {
      rocksdb_column_family_handle_destroy(handles[i]);
      rc = cl_err_set(err, CL_ENOMEM, "out of memory");
      continue;
    }
    db->nfam++;
  }
fail:
  cl_free(cfnames);
  cl_free(cfopts);
  cl_free(handles);
  if (names)
    rocksdb_list_column_families_destroy(names, nnames);
  if (rc) {
    if (db->db)
      cl_db_close(db);
    else {
      cl_free(db->fam);
      pthread_mutex_destroy(&db->fam_mu);
      db_free_options(db);
    }
    return cl_err_prefix(err, "%s", path), rc;
  }
  db->ro = rocksdb_readoptions_create();
  rocksdb_readoptions_set_verify_checksums(db->ro, 1);
  /* a scan far behind the head (a projection catching up, a replay) reads
   * each block once: kept out of the cache, it does not evict what point
   * reads use */
  db->ro_bulk = rocksdb_readoptions_create();
  rocksdb_readoptions_set_verify_checksums(db->ro_bulk, 1);
  rocksdb_readoptions_set_fill_cache(db->ro_bulk, 0);
  db->wo = rocksdb_writeoptions_create();
  rocksdb_writeoptions_set_sync(db->wo, sync == CL_DB_SYNCED);
  db->wo_nosync = rocksdb_writeoptions_create();
  *out = db;
  return 0;
}

int cl_db_open(const char *path, int create, int read_only, int sync, cl_db **out, cl_err *err) {
  return db_open(path, create, read_only, sync, CL_CF_COUNT, NULL, out, err);
}

int cl_db_open_proj(const char *path, cl_db *log_db, cl_db **out, cl_err *err) {
  return db_open(path, 1, 0, CL_DB_BUFFERED, 1, log_db->cache, out, err);
}

static void db_free_options(cl_db *db) {
  rocksdb_options_destroy(db->opts);
  rocksdb_options_destroy(db->point_opts);
  rocksdb_options_destroy(db->ids_opts);
  rocksdb_block_based_options_destroy(db->bbto);
  if (db->cache)
    rocksdb_cache_destroy(db->cache);
  cl_free(db);
}

void cl_db_close(cl_db *db) {
  if (!db)
    return;
  if (!db->read_only) {
    cl_err e;
    if (db->buffered) /* the WAL's buffer first, should the flush below fail */
      (void)cl_db_flush_wal(db, 1, &e);
    /* flush memtables so the next open (and a read-only verify) need not
     * replay the whole WAL; on error the WAL still has it: nothing is lost */
    cl_db_flush_all(db, &e);
  }
  for (int i = 0; i < CL_CF_COUNT; i++)
    if (db->cf[i])
      rocksdb_column_family_handle_destroy(db->cf[i]);
  for (size_t i = 0; i < db->nfam; i++) {
    rocksdb_column_family_handle_destroy(db->fam[i].h);
    cl_free(db->fam[i].name);
  }
  cl_free(db->fam);
  pthread_mutex_destroy(&db->fam_mu);
  rocksdb_close(db->db);
  if (db->ro)
    rocksdb_readoptions_destroy(db->ro);
  if (db->ro_bulk)
    rocksdb_readoptions_destroy(db->ro_bulk);
  if (db->wo)
    rocksdb_writeoptions_destroy(db->wo);
  if (db->wo_nosync)
    rocksdb_writeoptions_destroy(db->wo_nosync);
  db_free_options(db);
}

int cl_db_flush_all(cl_db *db, cl_err *err) {
  rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
  rocksdb_flushoptions_set_wait(fo, 1);
  int rc = 0;
  for (int i = 0; i < CL_CF_COUNT && db->cf[i]; i++) {
    char *rerr = NULL;
    rocksdb_flush_cf(db->db, fo, db->cf[i], &rerr);
    if (rerr && !rc)
      rc = cl_db_error(rerr, err, "flush");
    else if (rerr)
      rocksdb_free(rerr);
  }
  pthread_mutex_lock(&db->fam_mu);
  for (size_t i = 0; i < db->nfam; i++) {
    char *rerr = NULL;
    rocksdb_flush_cf(db->db, fo, db->fam[i].h, &rerr);
    if (rerr && !rc)
      rc = cl_db_error(rerr, err, "flush");
    else if (rerr)
      rocksdb_free(rerr);
  }
  pthread_mutex_unlock(&db->fam_mu);
  rocksdb_flushoptions_destroy(fo);
  return rc;
}

int cl_db_compact(cl_db *db, int cf, cl_err *err) {
  /* every file of the family rewritten, also at the bottommost level */
  rocksdb_compactoptions_t *co = rocksdb_compactoptions_create();
  rocksdb_compactoptions_set_bottommost_level_compaction(co, 2 /* kForce */);
  rocksdb_compactoptions_set_exclusive_manual_compaction(co, 0);
  rocksdb_compact_range_cf_opt(db->db, db->cf[cf], co, NULL, 0, NULL, 0);
  rocksdb_compactoptions_destroy(co);
  /* the files the compaction made obsolete are deleted by a background
   * job; turning deletions off and on again deletes them here and now */
  char *rerr = NULL;
  rocksdb_disable_file_deletions(db->db, &rerr);
  if (rerr)
    return cl_db_error(rerr, err, "disabling file deletions");
  rocksdb_enable_file_deletions(db->db, 1, &rerr);
  return rerr ? cl_db_error(rerr, err, "deleting obsolete files") : 0;
}

/* 1 if family h has a flush or a compaction waiting (or cannot say). */
static int cf_pending(cl_db *db, rocksdb_column_family_handle_t *h) {
  uint64_t c = 1, f = 1;
  rocksdb_property_int_cf(db->db, h, "rocksdb.compaction-pending", &c);
  rocksdb_property_int_cf(db->db, h, "rocksdb.mem-table-flush-pending", &f);
  return c != 0 || f != 0;
}

int cl_db_settled(cl_db *db) {
  uint64_t running = 1;
  if (rocksdb_property_int(db->db, "rocksdb.num-running-compactions", &running) != 0 || running)
    return 0;
  if (rocksdb_property_int(db->db, "rocksdb.num-running-flushes", &running) != 0 || running)
    return 0;
  int pending = 0;
  for (int i = 0; i < CL_CF_COUNT && !pending; i++)
    pending = db->cf[i] != NULL && cf_pending(db, db->cf[i]);
  pthread_mutex_lock(&db->fam_mu);
  for (size_t i = 0; i < db->nfam && !pending; i++)
    pending = cf_pending(db, db->fam[i].h);
  pthread_mutex_unlock(&db->fam_mu);
  return !pending;
}

rocksdb_column_family_handle_t *cl_db_cf_find(cl_db *db, const char *name) {
  rocksdb_column_family_handle_t *h = NULL;
  pthread_mutex_lock(&db->fam_mu);
  for (size_t i = 0; i < db->nfam && !h; i++)
    if (!strcmp(db->fam[i].name, name))
      h = db->fam[i].h;
  pthread_mutex_unlock(&db->fam_mu);
  return h;
}

int cl_db_cf_create(cl_db *db, const char *name, rocksdb_column_family_handle_t **h, cl_err *err) {
  if (!name[0] || strlen(name) > 200 || fixed_index(name, CL_CF_COUNT) >= 0)
    return cl_err_set(err, CL_EINVAL, "column family name \"%s\": empty, too long or reserved",
                      name);
  if (db->read_only)
    return cl_err_set(err, CL_EDENIED, "database is open read-only");
  pthread_mutex_lock(&db->fam_mu);
  int rc = 0;
  for (size_t i = 0; i < db->nfam; i++)
    if (!strcmp(db->fam[i].name, name)) {
      *h = db->fam[i].h;
      goto out;
    }
  if (db->nfam == db->capfam) {
    size_t nc = db->capfam ? db->capfam * 2 : 8;
    cl_db_family *nf = cl_realloc(db->fam, nc * sizeof *nf);
    if (!nf) {
      rc = cl_err_set(err, CL_ENOMEM, "out of memory");
      goto out;
    }
    db->fam = nf;
    db->capfam = nc;
  }
  char *copy = cl_strdup(name);
  if (!copy) {
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    goto out;
  }
  char *rerr = NULL;
  rocksdb_column_family_handle_t *nh =
      rocksdb_create_column_family(db->db, db->point_opts, name, &rerr);
  if (rerr || !nh) {
    cl_free(copy);
    rc = cl_db_error(rerr, err, "creating a column family");
    goto out;
  }
  db->fam[db->nfam].name = copy;
  db->fam[db->nfam].h = nh;
  db->nfam++;
  *h = nh;
out:
  pthread_mutex_unlock(&db->fam_mu);
  return rc;
}

int cl_db_cf_drop(cl_db *db, const char *name, cl_err *err) {
  pthread_mutex_lock(&db->fam_mu);
  int rc = 0;
  for (size_t i = 0; i < db->nfam; i++) {
    if (strcmp(db->fam[i].name, name) != 0)
      continue;
    char *rerr = NULL;
    rocksdb_drop_column_family(db->db, db->fam[i].h, &rerr);
    if (rerr) {
      rc = cl_db_error(rerr, err, "dropping a column family");
      break;
    }
    rocksdb_column_family_handle_destroy(db->fam[i].h);
    cl_free(db->fam[i].name);
    db->fam[i] = db->fam[--db->nfam];
    break;
  }
  pthread_mutex_unlock(&db->fam_mu);
  return rc;
}

int cl_db_cf_list(cl_db *db, const char *prefix, char ***names, size_t *n, cl_err *err) {
  size_t pl = strlen(prefix);
  *names = NULL;
  *n = 0;
  pthread_mutex_lock(&db->fam_mu);
  char **out = cl_calloc(db->nfam ? db->nfam : 1, sizeof *out);
  int rc = out ? 0 : cl_err_set(err, CL_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < db->nfam; i++)
    if (!strncmp(db->fam[i].name, prefix, pl)) {
      if (!(out[*n] = cl_strdup(db->fam[i].name)))
        rc = cl_err_set(err, CL_ENOMEM, "out of memory");
      else
        (*n)++;
    }
  pthread_mutex_unlock(&db->fam_mu);
  if (rc) {
    for (size_t i = 0; i < *n; i++)
      cl_free(out ? out[i] : NULL);
    cl_free(out);
    *n = 0;
    return rc;
  }
  *names = out;
  return 0;
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

int cl_db_write_buffered(cl_db *db, rocksdb_writebatch_t *wb, cl_err *err) {
  char *rerr = NULL;
  rocksdb_write(db->db, db->wo, wb, &rerr);
  if (rerr)
    return cl_db_error(rerr, err, "write");
  return 0;
}

int cl_db_flush_wal(cl_db *db, int sync, cl_err *err) {
  char *rerr = NULL;
  rocksdb_flush_wal(db->db, sync ? 1 : 0, &rerr);
  return rerr ? cl_db_error(rerr, err, sync ? "syncing the WAL" : "writing the WAL") : 0;
}

int cl_db_write(cl_db *db, rocksdb_writebatch_t *wb, cl_err *err) {
  int rc = cl_db_write_buffered(db, wb, err);
  return rc == 0 && db->buffered ? cl_db_flush_wal(db, 0, err) : rc;
}

/* See db.h. */
int cl_db_in_use(const char *dir) {
  char path[4096];
  snprintf(path, sizeof path, "%s/db/LOCK", dir);
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return 0;
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  int busy = fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
  close(fd);
  return busy;
}

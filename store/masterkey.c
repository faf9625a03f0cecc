/* The master key of a data directory: loading the log's keys, finishing an
 * interrupted key file swap, rotation; see masterkey.h.
 *
 * Invariants:
 *  - meta "key_check" names the one master key that unwraps every stored
 *    data key; a rotation changes both in one write batch;
 *  - the tag and projection keys never change: unsealed from meta
 *    "fixed_keys" when it exists, else derived from the master key (a log
 *    never rotated, whose master key is still the one it was created with);
 *  - at every moment the key file or "<key file>.new" matches meta;
 *  - the retired wrap keys are the wrap keys of the master keys retired
 *    last, newest first, never the current one. */
#include "store/masterkey.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/alloc.h"
#include "store/log_int.h"

#define RETIRED_ENTRY 24 /* key check[16] || retired at, unix s u64 BE */
#define RETIRED_MAX 64   /* the latest rotations kept */

/* ------------------------------------------------------------ helpers */

int cl_sync_dir_of(const char *path, cl_err *err) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  const char *dir = dirname(buf);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return cl_err_set(err, CL_EIO, "%s: %s", dir, strerror(errno));
  int rc = fsync(fd) == 0 ? 0 : cl_err_set(err, CL_EIO, "%s: fsync: %s", dir, strerror(errno));
  close(fd);
  return rc;
}

int cl_swap_in(const char *from, const char *path, cl_err *err) {
  if (rename(from, path) != 0)
    return cl_err_set(err, CL_EIO, "renaming %s over %s: %s", from, path, strerror(errno));
  return cl_sync_dir_of(path, err);
}

static void new_path(char *out, size_t n, const char *path) { snprintf(out, n, "%s.new", path); }

/* 1 if `check` is among meta's retired key checks, with when in *at. */
static int retired_at(cl_db *db, const uint8_t check[16], uint64_t *at) {
  char *v;
  size_t vl;
  cl_err e;
  if (cl_db_get(db, CL_CF_META, CL_META_RETIRED_KEYS, strlen(CL_META_RETIRED_KEYS), &v, &vl, &e))
    return 0;
  int found = 0;
  for (size_t i = 0; i + RETIRED_ENTRY <= vl; i += RETIRED_ENTRY)
    if (sodium_memcmp(v + i, check, 16) == 0) {
      *at = cl_get_be64((const uint8_t *)v + i + 16);
      found = 1;
    }
  rocksdb_free(v);
  return found;
}

/* The refusal of a key that is not the log's, naming a retired one. */
static int not_this_log(cl_db *db, const char *path, const uint8_t check[16],
                        const uint8_t stored[16], cl_err *err) {
  uint64_t at;
  char now[33];
  cl_hex(stored, 16, now);
  if (!retired_at(db, check, &at))
    return cl_err_set(err, CL_EDENIED, "%s: the master key does not belong to this log", path);
  time_t t = (time_t)at;
  struct tm tm;
  char when[32] = "?";
  if (gmtime_r(&t, &tm))
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return cl_err_set(err, CL_EDENIED,
                    "%s: this master key was retired by a key rotation at %s; the log opens "
                    "only with its current key (key check %s)",
                    path, when, now);
}

/* ---------------------------------------------------------------- load */

/* The retired wrap keys in meta, opened into keys + CL_MK_RETIRED. */
static int load_retired(cl_db *db, uint8_t *keys, unsigned *n, cl_err *err) {
  *n = 0;
  char *v;
  size_t vl;
  int rc =
      cl_db_get(db, CL_CF_META, CL_META_RETIRED_WRAP, strlen(CL_META_RETIRED_WRAP), &v, &vl, err);
  if (rc == CL_ENOTFOUND) {
    cl_err_clear(err);
    return 0;
  }
  if (rc)
    return rc;
  size_t pl = vl >= CL_SEALED_OVERHEAD ? vl - CL_SEALED_OVERHEAD : 1;
  if (pl % 32 || pl / 32 > CL_RETIRED_WRAP_MAX ||
      cl_secret_open(keys + CL_MK_SEAL, CL_AD_RETIRED_WRAP, (const uint8_t *)v, vl,
                     keys + CL_MK_RETIRED) != 0)
    rc = cl_err_set(err, CL_ECORRUPT,
                    "meta retired_wrap_keys: the sealed wrap keys of retired master keys do not "
                    "open under the master key");
  else
    *n = (unsigned)(pl / 32);
  rocksdb_free(v);
  return rc;
}

int cl_masterkey_load(cl_db *db, const char *path, int finish, uint8_t *keys,
                      cl_masterkey_info *info, cl_err *err) {
  memset(info, 0, sizeof *info);
  cl_master_key k = {0};
  int rc = cl_master_key_load(&k, path, err);
  if (rc)
    return rc;
  uint8_t stored[16];
  int have_check = 0;
  rc = cl_meta_get(db, CL_META_KEY_CHECK, stored, 16, NULL, err);
  if (rc == 0)
    have_check = 1;
  else if (rc != CL_ENOTFOUND)
    goto out;
  cl_key_check(k.key, info->key_check);
  if (have_check && sodium_memcmp(stored, info->key_check, 16) != 0) {
    /* a rotation that committed but did not rename its key file? */
    char np[4096];
    new_path(np, sizeof np, path);
    cl_master_key nk = {0};
    cl_err ne;
    uint8_t nc[16];
    if (cl_master_key_load(&nk, np, &ne) == 0) {
      cl_key_check(nk.key, nc);
      if (sodium_memcmp(stored, nc, 16) == 0) {
        cl_master_key_free(&k);
        k = nk;
        memcpy(info->key_check, nc, 16);
        info->from_new = 1;
      } else {
        cl_master_key_free(&nk);
      }
    }
    if (!info->from_new) {
      rc = not_this_log(db, path, info->key_check, stored, err);
      goto out;
    }
    if (finish) {
      if ((rc = cl_swap_in(np, path, err)))
        goto out;
      info->swapped = 1;
    }
  }
  cl_derive_wrap_key(k.key, keys + CL_MK_WRAP);
  cl_derive_fixed_seal_key(k.key, keys + CL_MK_SEAL);
  char *v;
  size_t vl;
  rc = cl_db_get(db, CL_CF_META, CL_META_FIXED_KEYS, strlen(CL_META_FIXED_KEYS), &v, &vl, err);
  if (rc == 0) {
    int orc = vl == CL_FIXED_KEYS_SEALED_SIZE
                  ? cl_secret_open(keys + CL_MK_SEAL, CL_AD_FIXED_KEYS, (const uint8_t *)v, vl,
                                   keys + CL_MK_TAG)
                  : CL_ECORRUPT;
    rocksdb_free(v);
    if (orc) {
      rc = cl_err_set(err, CL_ECORRUPT,
                      "meta fixed_keys: the sealed stream tag and projection keys do not open "
                      "under the master key");
      goto out;
    }
    info->rotated = 1;
    if ((rc = load_retired(db, keys, &info->n_retired, err)))
      goto out;
  } else if (rc == CL_ENOTFOUND) {
    cl_derive_tag_key(k.key, keys + CL_MK_TAG); /* never rotated: the creation key's */
    cl_derive_proj_key(k.key, keys + CL_MK_PROJ);
    rc = 0;
  } else {
    goto out;
  }
  cl_err_clear(err);
out:
  cl_master_key_free(&k);
  if (rc)
    sodium_memzero(keys, CL_MK_SIZE);
  return rc;
}

/* -------------------------------------------------------------- rotate */

/* meta's retired list with `old` added at `now` and `cur` (the key coming
 * back, if it was retired before) removed; the oldest beyond RETIRED_MAX
 * dropped. *out returned-owned (cl_free). */
static int retired_list(cl_db *db, const uint8_t old[16], const uint8_t cur[16], uint8_t **out,
                        size_t *n, cl_err *err) {
  char *v = NULL;
  size_t vl = 0;
  int rc =
      cl_db_get(db, CL_CF_META, CL_META_RETIRED_KEYS, strlen(CL_META_RETIRED_KEYS), &v, &vl, err);
  if (rc && rc != CL_ENOTFOUND)
    return rc;
  uint8_t *l = cl_malloc(vl - vl % RETIRED_ENTRY + RETIRED_ENTRY);
  if (!l) {
    if (v)
      rocksdb_free(v);
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  }
  size_t m = 0;
  for (size_t i = 0; i + RETIRED_ENTRY <= vl; i += RETIRED_ENTRY)
    if (memcmp(v + i, cur, 16) != 0 && memcmp(v + i, old, 16) != 0) {
      memcpy(l + m, v + i, RETIRED_ENTRY);
      m += RETIRED_ENTRY;
    }
  if (v)
    rocksdb_free(v);
  memcpy(l + m, old, 16);
  cl_be64(l + m + 16, (uint64_t)time(NULL));
  m += RETIRED_ENTRY;
  if (m > RETIRED_MAX * RETIRED_ENTRY) {
    size_t drop = m - RETIRED_MAX * RETIRED_ENTRY;
    memmove(l, l + drop, m - drop);
    m -= drop;
  }
  *out = l;
  *n = m;
  cl_err_clear(err);
  return 0;
}

/* The retired wrap keys after a rotation to new_wk, into out: the log's
 * wrap key first, then those it kept, without new_wk (a key coming back),
 * at most CL_RETIRED_WRAP_MAX. Returns how many. */
static size_t retired_wrap(cl_log *log, const uint8_t *new_wk, uint8_t *out) {
  size_t n = 0;
  memcpy(out, log->wrap_key, 32);
  n++;
  for (unsigned i = 0; i < log->n_retired && n < CL_RETIRED_WRAP_MAX; i++) {
    const uint8_t *k = log->retired_wrap + 32 * (size_t)i;
    if (sodium_memcmp(k, new_wk, 32) != 0)
      memcpy(out + 32 * n++, k, 32);
  }
  return n;
}

static void progress(const cl_rotate_options *o, uint64_t done, uint64_t total) {
  if (o && o->progress)
    o->progress(o->progress_ctx, done, total);
}

static void step(const cl_rotate_options *o, int s) {
  if (o && o->after_step)
    o->after_step(o->step_ctx, s);
}

/* Streams with a stored key entry (erased ones too). */
static int count_keys(cl_log *log, uint64_t *total, cl_err *err) {
  rocksdb_iterator_t *it =
      rocksdb_create_iterator_cf(log->db->db, log->db->ro, log->db->cf[CL_CF_KEYS]);
  uint64_t n = 0;
  for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it))
    n++;
  int rc = cl_iter_error(it, err, "keys scan");
  rocksdb_iter_destroy(it);
  *total = n;
  return rc;
}

/* Step 2's write batch: every stored data key rewrapped from the log's wrap
 * key to nk's. */
static int rewrap_all(cl_log *log, rocksdb_writebatch_t *wb, const uint8_t *nk, uint8_t *scratch,
                      const cl_rotate_options *o, uint64_t total, cl_rotate_report *rep,
                      cl_err *err) {
  rocksdb_iterator_t *it =
      rocksdb_create_iterator_cf(log->db->db, log->db->ro, log->db->cf[CL_CF_KEYS]);
  int rc = 0;
  uint64_t done = 0;
  for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
    size_t kl, vl;
    const char *k = rocksdb_iter_key(it, &kl);
    const char *v = rocksdb_iter_value(it, &vl);
    if (kl != 32) {
      rc = cl_err_set(err, CL_ECORRUPT, "keys: an entry of %zu bytes is no stream tag", kl);
      break;
    }
    if (vl == 0) { /* erased: stays erased */
      rep->erased++;
    } else {
      uint8_t out[CL_WRAPPED_KEY_SIZE];
      if (cl_rewrap_key(log->wrap_key, nk, (const uint8_t *)k, (const uint8_t *)v, vl, scratch,
                        out) != 0) {
        char hex[17];
        cl_hex((const uint8_t *)k, 8, hex);
        rc = cl_err_set(err, CL_ECORRUPT,
                        "stream %s...: its data key does not unwrap under the current master key",
                        hex);
        break;
      }
      rocksdb_writebatch_put_cf(wb, log->db->cf[CL_CF_KEYS], k, 32, (const char *)out, sizeof out);
      rep->streams++;
    }
    if ((++done & 1023) == 0)
      progress(o, done, total);
  }
  if (rc == 0)
    rc = cl_iter_error(it, err, "keys scan");
  rocksdb_iter_destroy(it);
  return rc;
}

int cl_masterkey_rotate(cl_log *log, const cl_rotate_options *o, cl_rotate_report *rep,
                        cl_err *err) {
  memset(rep, 0, sizeof *rep);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  if (!log->have_keys)
    return cl_err_set(err, CL_EDENIED, "rotation needs the log's current master key");
  int rc = cl_slot_acquire(log, err);
  if (rc)
    return rc;
  char np[4096 + 8];
  if (log->o.master_key_path)
    snprintf(rep->key_path, sizeof rep->key_path, "%s", log->o.master_key_path);
  else
    snprintf(rep->key_path, sizeof rep->key_path, "%s/keys/master.key", log->dir);
  new_path(np, sizeof np, rep->key_path);
  memcpy(rep->old_check, log->key_check, 16);

  /* the new key, and what it derives: wrap key, fixed-keys key, scratch */
  cl_master_key gen = {0};
  const cl_master_key *k = o ? o->new_key : NULL;
  /* nk: new wrap key, new fixed-keys key, data key scratch, then the
   * retired wrap keys to keep (the old wrap key first) */
  uint8_t *nk = cl_sodium_malloc(96 + 32 * CL_RETIRED_WRAP_MAX);
  rocksdb_writebatch_t *wb = NULL;
  uint8_t *retired = NULL, sealed[CL_FIXED_KEYS_SEALED_SIZE];
  uint8_t sealed_wrap[32 * CL_RETIRED_WRAP_MAX + CL_SEALED_OVERHEAD];
  uint64_t total = 0;
  size_t nretired = 0, nwrap = 0;
  if (!nk) {
    rc = cl_err_set(err, CL_ENOMEM, "out of secure memory");
    goto done;
  }
  if (!k) {
    if ((rc = cl_master_key_generate(&gen, err)))
      goto done;
    k = &gen;
  }
  cl_key_check(k->key, rep->new_check);
  if (sodium_memcmp(rep->new_check, log->key_check, 16) == 0) {
    rc = cl_err_set(err, CL_EINVAL, "the new master key is the current one");
    goto done;
  }
  cl_derive_wrap_key(k->key, nk);
  cl_derive_fixed_seal_key(k->key, nk + 32);

  /* 1: the new key file beside the old one (a stale one from a rotation
   * that never committed goes first: the log opened with the key file) */
  if (unlink(np) != 0 && errno != ENOENT) {
    rc = cl_err_set(err, CL_EIO, "%s: %s", np, strerror(errno));
    goto done;
  }
  if ((rc = cl_master_key_save(k, np, err)) || (rc = cl_sync_dir_of(np, err)))
    goto fail_file;
  step(o, CL_ROTATE_KEY_WRITTEN);

  /* 2: one write: the data keys rewrapped, the new key check, the fixed
   * keys sealed under the new key, the old key check retired */
  if ((rc = count_keys(log, &total, err)))
    goto fail_file;
  progress(o, 0, total);
  wb = rocksdb_writebatch_create();
  if ((rc = rewrap_all(log, wb, nk, nk + 64, o, total, rep, err)))
    goto fail_file;
  cl_secret_seal(nk + 32, CL_AD_FIXED_KEYS, log->tag_key, 64, sealed); /* tag || projection */
  nwrap = retired_wrap(log, nk, nk + 96);
  cl_secret_seal(nk + 32, CL_AD_RETIRED_WRAP, nk + 96, 32 * nwrap, sealed_wrap);
  if ((rc = retired_list(log->db, log->key_check, rep->new_check, &retired, &nretired, err)))
    goto fail_file;
  cl_meta_put(wb, log->db, CL_META_KEY_CHECK, rep->new_check, 16);
  cl_meta_put(wb, log->db, CL_META_FIXED_KEYS, sealed, sizeof sealed);
  cl_meta_put(wb, log->db, CL_META_RETIRED_WRAP, sealed_wrap, 32 * nwrap + CL_SEALED_OVERHEAD);
  cl_meta_put(wb, log->db, CL_META_RETIRED_KEYS, retired, nretired);
  if ((rc = cl_db_write(log->db, wb, err)) || (!log->o.sync && (rc = cl_log_sync(log, err))))
    goto fail_file;
  progress(o, total, total);
  step(o, CL_ROTATE_COMMITTED);

  /* the log goes on with the new key: the tag and projection keys and the
   * data keys in the cache are unchanged; no key is pending offline */
  memcpy(log->wrap_key, nk, 32);
  memcpy(log->seal_key, nk + 32, 32);
  memcpy(log->retired_wrap, nk + 96, 32 * nwrap);
  log->n_retired = (unsigned)nwrap;
  memcpy(log->key_check, rep->new_check, 16);
  pthread_mutex_lock(&log->pk_mu);
  cl_hmap_clear(log->pending_keys);
  pthread_mutex_unlock(&log->pk_mu);

  /* 3: the new key file takes the old one's place */
  if ((rc = cl_swap_in(np, rep->key_path, err))) {
    cl_err_prefix(err, "the rotation is committed but the key file was not replaced (the next "
                       "open of the log finishes it)");
    goto done;
  }
  step(o, CL_ROTATE_SWAPPED);
  goto done;

fail_file: /* before the commit: the old key stays in force */
  unlink(np);
done:
  if (wb)
    rocksdb_writebatch_destroy(wb);
  cl_free(retired);
  cl_master_key_free(&gen);
  if (nk)
    sodium_free(nk);
  cl_slot_release(log);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  rep->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  return rc;
}

/* Appends meta `name` (at most cap bytes) to out at *n. */
static int append_meta(cl_log *log, const char *name, size_t cap, uint8_t *out, size_t *n,
                       cl_err *err) {
  char *v;
  size_t vl;
  int rc = cl_db_get(log->db, CL_CF_META, name, strlen(name), &v, &vl, err);
  if (rc)
    return rc;
  if (vl > cap) {
    rocksdb_free(v);
    return cl_err_set(err, CL_ECORRUPT, "meta %s: %zu bytes", name, vl);
  }
  memcpy(out + *n, v, vl);
  *n += vl;
  rocksdb_free(v);
  return 0;
}

int cl_masterkey_sealed_keys(cl_log *log, uint8_t out[CL_SEALED_KEYS_MAX], size_t *n, cl_err *err) {
  *n = 0;
  int rc = append_meta(log, CL_META_FIXED_KEYS, CL_FIXED_KEYS_SEALED_SIZE, out, n, err);
  if (rc == 0 && *n != CL_FIXED_KEYS_SEALED_SIZE)
    rc = cl_err_set(err, CL_ECORRUPT, "meta fixed_keys: %zu bytes", *n);
  if (rc == 0)
    rc = append_meta(log, CL_META_RETIRED_WRAP, CL_SEALED_KEYS_MAX - CL_FIXED_KEYS_SEALED_SIZE, out,
                     n, err);
  if (rc == CL_ENOTFOUND) { /* never rotated (or rotated before retired keys were kept) */
    cl_err_clear(err);
    rc = 0;
  }
  if (rc)
    *n = 0;
  return rc;
}

/* ------------------------------------------------- store-internal helpers */

int cl_mk_adopt_sealed(cl_log *log, rocksdb_writebatch_t *wb, const uint8_t *sealed, size_t n,
                       cl_err *err) {
  size_t rest = n > CL_FIXED_KEYS_SEALED_SIZE ? n - CL_FIXED_KEYS_SEALED_SIZE : 0;
  size_t pl = rest >= CL_SEALED_OVERHEAD ? rest - CL_SEALED_OVERHEAD : 0;
  if (n < CL_FIXED_KEYS_SEALED_SIZE ||
      (rest && (rest < CL_SEALED_OVERHEAD || pl % 32 || pl / 32 > CL_RETIRED_WRAP_MAX)))
    return cl_err_set(err, CL_EINVAL, "sealed keys of %zu bytes", n);
  if (cl_secret_open(log->seal_key, CL_AD_FIXED_KEYS, sealed, CL_FIXED_KEYS_SEALED_SIZE,
                     log->tag_key) != 0 ||
      (rest && cl_secret_open(log->seal_key, CL_AD_RETIRED_WRAP, sealed + CL_FIXED_KEYS_SEALED_SIZE,
                              rest, log->retired_wrap) != 0))
    return cl_err_set(err, CL_EDENIED,
                      "the cluster's sealed keys do not open under this master key");
  log->n_retired = (unsigned)(pl / 32);
  cl_meta_put(wb, log->db, CL_META_FIXED_KEYS, sealed, CL_FIXED_KEYS_SEALED_SIZE);
  if (rest)
    cl_meta_put(wb, log->db, CL_META_RETIRED_WRAP, sealed + CL_FIXED_KEYS_SEALED_SIZE, rest);
  return 0;
}

int cl_mk_minted_key(cl_log *log, const uint8_t tag[32], const uint8_t *wrapped, size_t n,
                     uint8_t out[CL_WRAPPED_KEY_SIZE], const uint8_t **use, cl_err *err) {
  uint8_t *dk = cl_secure_scratch(CL_SCRATCH_COMMIT, 32);
  if (!dk)
    return cl_err_set(err, CL_ENOMEM, "out of secure memory");
  *use = wrapped;
  if (cl_unwrap_key(log->wrap_key, tag, wrapped, n, dk) == 0) {
    sodium_memzero(dk, 32);
    return 0;
  }
  /* prepared before a rotation: rewrapped under the current key */
  for (unsigned i = 0; i < log->n_retired; i++)
    if (cl_rewrap_key(log->retired_wrap + 32 * (size_t)i, log->wrap_key, tag, wrapped, n, dk,
                      out) == 0) {
      *use = out;
      return 0;
    }
  return 1;
}

int cl_mk_check_first(cl_log *log, const Clinlog__V1__Record *rec, cl_err *err) {
  uint8_t tag[32];
  cl_stream_tag(log->tag_key, "$log", 4, tag);
  if (rec->stream_tag.len != 32 || sodium_memcmp(tag, rec->stream_tag.data, 32) != 0)
    return cl_err_set(err, CL_EDENIED,
                      "record 1 was not tagged with this node's stream tag key: the master key "
                      "came without the log's sealed keys (after a key rotation, create members "
                      "with `clinlog init --replica-of` or --sealed-keys)");
  return 0;
}

/* The log: prepare (validate, verify, encrypt) and group commit (order,
 * check, Merkle, one synced WriteBatch). See log.h and docs/format.md.
 *
 * Invariants:
 *  - meta.tree_size == the highest seq in `log` == leaves in `merkle`;
 *    everything a commit writes goes into one WriteBatch.
 *  - Only the thread holding `committing` touches frontier, streams,
 *    group_ids and the write-side of the keyring.
 *  - After a failed RocksDB write the log is marked failed: the in-memory
 *    state may be ahead of disk, so it accepts no more commits until
 *    reopened (reopening recovers from disk). */
#include "store/log.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clinlog/v1/event.pb-c.h"
#include "store/checkpoint.h"
#include "store/db.h"
#include "store/event.h"
#include "store/hmap.h"
#include "store/log_int.h"
#include "store/merkle.h"

enum { KEY_UNKNOWN = 0, KEY_PRESENT = 1, KEY_ERASED = 2 };

typedef struct stream_state {
  uint64_t version;
  uint8_t key_state;
  uint8_t wk_nonce[24]; /* KEY_PRESENT: nonce of the committed wrapped key (identifies it) */
} stream_state;

/* A data key minted for a stream that has none yet, shared by every batch
 * prepared for that stream until one of them commits it, so concurrent
 * first writes to a new stream agree on its key (stored wrapped only). */
typedef struct pending_key {
  uint8_t wrapped[CL_WRAPPED_KEY_SIZE];
} pending_key;

typedef struct id_entry { /* ids family value */
  uint8_t v[8 + 8 + 32];
} id_entry;

typedef struct rec_prefix rec_prefix;

typedef struct commit_req {
  const Clinlog__V1__PreparedBatch *pb;
  rec_prefix *pre; /* precomputed record prefixes, or NULL */
  cl_append_result *r;
  cl_err err;
  int rc;
  int done;
  struct commit_req *next;
} commit_req;

struct cl_log {
  cl_log_options o;
  char *dir;
  cl_db *db;
  int have_keys;
  uint8_t *secrets;   /* sodium_malloc: tag_key[32] || wrap_key[32] */
  uint8_t key_check[16];
  uint8_t *tag_key;
  uint8_t *wrap_key;
  cl_signer log_signer;
  int have_log_key;
  uint8_t log_pk[32];
  char origin[256];

  pthread_mutex_t mu;  /* guards queue, committing, failed, size, root */
  pthread_cond_t cv;
  commit_req *queue, *queue_tail;
  int committing;
  int failed;
  uint64_t size;
  uint8_t root[32];
  uint64_t applied;    /* Raft index of the last entry applied (replication) */

  /* committer-owned */
  cl_merkle_frontier frontier;
  cl_hmap *streams;   /* tag -> stream_state */
  cl_hmap *group_ids; /* event id -> id_entry, ids written by the current group */
  uint8_t (*pend)[48]; /* stream index entries of the current group */
  size_t pend_n, pend_cap;
  uint8_t (*minted)[32]; /* tags whose new data key the current group writes */
  size_t n_minted, cap_minted;
  uint64_t last_checkpoint;

  pthread_mutex_t kr_mu; /* guards keyring (read by prepare, written by commit) */
  cl_hmap *keyring;      /* public key -> cl_keyring_entry */

  /* Unwrapped data keys of committed streams, so prepare does not read and
   * unwrap a stream's key for every batch. Keys live in sodium_malloc
   * memory; an erasure empties the cache and bumps kc_gen so a key read
   * before the erasure is never cached after it. */
  cl_commit_fn hook;
  void *hook_ctx;

  pthread_mutex_t pk_mu; /* guards pending_keys (prepare inserts, commit removes) */
  cl_hmap *pending_keys; /* tag -> pending_key */
  int64_t last_committed_ns; /* committer-owned: commit times never go backwards */

  pthread_mutex_t kc_mu;
  cl_hmap *kc_idx;   /* tag -> uint32 slot */
  uint8_t *kc_slab;  /* KC_CAP * 32 bytes */
  uint32_t kc_used;
  uint64_t kc_gen;
};

#define KC_CAP 8192

/* ---------------------------------------------------------------- helpers */

/* A per-thread buffer in sodium_malloc memory for data keys in use, so the
 * hot paths (every read, every batch) do not pay sodium_malloc's mmap,
 * mprotect and mlock each time. Callers wipe what they put in it. */
enum { SCRATCH_PREPARE, SCRATCH_READ, SCRATCH_SLOTS };

typedef struct scratch {
  uint8_t *p[SCRATCH_SLOTS];
  size_t cap[SCRATCH_SLOTS];
} scratch;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *v) {
  scratch *s = v;
  for (int i = 0; i < SCRATCH_SLOTS; i++)
    if (s->p[i])
      sodium_free(s->p[i]);
  free(s);
}

static void scratch_init(void) { pthread_key_create(&scratch_key, scratch_free); }

/* At least n bytes of this thread's secure scratch slot, or NULL (out of
 * memory). One slot per use so a read inside a prepare cannot clobber it. */
static uint8_t *secure_scratch(int slot, size_t n) {
  pthread_once(&scratch_once, scratch_init);
  scratch *s = pthread_getspecific(scratch_key);
  if (!s) {
    if (!(s = calloc(1, sizeof *s)))
      return NULL;
    pthread_setspecific(scratch_key, s);
  }
  if (s->cap[slot] < n) {
    size_t cap = n < 4096 ? 4096 : n;
    uint8_t *p = sodium_malloc(cap);
    if (!p)
      return NULL;
    if (s->p[slot])
      sodium_free(s->p[slot]);
    s->p[slot] = p;
    s->cap[slot] = cap;
  }
  return s->p[slot];
}

void cl_derive_keys(const uint8_t *master, uint8_t *tag_key, uint8_t *wrap_key) {
  crypto_kdf_derive_from_key(tag_key, 32, 1, "cl-stag1", master);
  crypto_kdf_derive_from_key(wrap_key, 32, 2, "cl-wrap1", master);
}

void cl_key_check(const uint8_t *master, uint8_t out[16]) {
  crypto_kdf_derive_from_key(out, 16, 3, "cl-kchk1", master);
}

void cl_stream_tag(const uint8_t *tag_key, const char *stream, size_t len, uint8_t tag[32]) {
  crypto_auth_hmacsha256(tag, (const uint8_t *)stream, len, tag_key);
}

void cl_event_ad(const uint8_t tag[32], const uint8_t id[16], uint8_t ad[48]) {
  memcpy(ad, tag, 32);
  memcpy(ad + 32, id, 16);
}

static const char WRAP_AD[] = "clinlog-dk-v1";

static void wrap_key(const uint8_t *wk, const uint8_t tag[32], const uint8_t *key,
                     uint8_t out[CL_WRAPPED_KEY_SIZE]) {
  uint8_t ad[sizeof WRAP_AD + 32];
  memcpy(ad, WRAP_AD, sizeof WRAP_AD);
  memcpy(ad + sizeof WRAP_AD, tag, 32);
  randombytes_buf(out, 24);
  crypto_aead_xchacha20poly1305_ietf_encrypt(out + 24, NULL, key, 32, ad, sizeof ad, NULL, out,
                                             wk);
}

int cl_unwrap_key(const uint8_t *wk, const uint8_t tag[32], const uint8_t *wrapped, size_t n,
                  uint8_t *key) {
  if (n != CL_WRAPPED_KEY_SIZE)
    return CL_ECRYPTO;
  uint8_t ad[sizeof WRAP_AD + 32];
  memcpy(ad, WRAP_AD, sizeof WRAP_AD);
  memcpy(ad + sizeof WRAP_AD, tag, 32);
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(key, NULL, NULL, wrapped + 24, n - 24, ad,
                                                 sizeof ad, wrapped, wk) != 0)
    return CL_ECRYPTO;
  return 0;
}

size_t cl_keyring_entry_encode(const cl_keyring_entry *e, uint8_t *buf) {
  size_t pl = strnlen(e->principal, sizeof e->principal - 1);
  size_t rl = strnlen(e->roles, sizeof e->roles - 1);
  cl_be64(buf, e->registered_seq);
  cl_be64(buf + 8, e->revoked_seq);
  uint8_t *p = buf + 16;
  p[0] = (uint8_t)(pl >> 8), p[1] = (uint8_t)pl;
  memcpy(p + 2, e->principal, pl);
  p += 2 + pl;
  p[0] = (uint8_t)(rl >> 8), p[1] = (uint8_t)rl;
  memcpy(p + 2, e->roles, rl);
  return (size_t)(p + 2 + rl - buf);
}

int cl_keyring_entry_decode(const uint8_t *p, size_t n, cl_keyring_entry *e) {
  memset(e, 0, sizeof *e);
  if (n < 18)
    return CL_ECORRUPT;
  e->registered_seq = cl_get_be64(p);
  e->revoked_seq = cl_get_be64(p + 8);
  size_t pl = ((size_t)p[16] << 8) | p[17];
  if (pl >= sizeof e->principal || 18 + pl + 2 > n)
    return CL_ECORRUPT;
  memcpy(e->principal, p + 18, pl);
  const uint8_t *q = p + 18 + pl;
  size_t rl = ((size_t)q[0] << 8) | q[1];
  if (rl >= sizeof e->roles || 18 + pl + 2 + rl != n)
    return CL_ECORRUPT;
  memcpy(e->roles, q + 2, rl);
  return 0;
}

int cl_roles_has(const char *roles, const char *role) {
  size_t rl = strlen(role);
  for (const char *p = roles; *p;) {
    size_t n = strcspn(p, ",");
    if (n == rl && memcmp(p, role, n) == 0)
      return 1;
    p += n;
    if (*p == ',')
      p++;
  }
  return 0;
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static char *xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p)
    memcpy(p, s, n);
  return p;
}

static int bytes_dup(ProtobufCBinaryData *b, const void *p, size_t n) {
  b->len = n;
  b->data = NULL;
  if (!n)
    return 0;
  b->data = malloc(n);
  if (!b->data)
    return CL_ENOMEM;
  memcpy(b->data, p, n);
  return 0;
}

void cl_log_options_init(cl_log_options *o) {
  memset(o, 0, sizeof *o);
  o->max_event_size = CL_DEFAULT_MAX_EVENT;
  o->checkpoint_interval = CL_DEFAULT_CHECKPOINT_INTERVAL;
  o->sync = 1;
}

void cl_append_result_free(cl_append_result *r) {
  if (!r)
    return;
  free(r->seq);
  free(r->version);
  free(r->event_id);
  r->seq = r->version = NULL;
  r->event_id = NULL;
  r->n = 0;
}

static int result_alloc(cl_append_result *r, size_t n) {
  memset(r, 0, sizeof *r);
  r->seq = calloc(n ? n : 1, sizeof *r->seq);
  r->version = calloc(n ? n : 1, sizeof *r->version);
  r->event_id = calloc(n ? n : 1, sizeof *r->event_id);
  if (!r->seq || !r->version || !r->event_id) {
    cl_append_result_free(r);
    return CL_ENOMEM;
  }
  r->n = n;
  return 0;
}

static void path_join(char *out, size_t n, const char *dir, const char *name) {
  snprintf(out, n, "%s/%s", dir, name);
}

/* ------------------------------------------------------- keyring & state */

/* Copies the keyring entry for `pk` into *e. 0 or CL_EUNKNOWNKEY. */
static int keyring_lookup(cl_log *log, const uint8_t pk[32], cl_keyring_entry *e) {
  pthread_mutex_lock(&log->kr_mu);
  const cl_keyring_entry *found = cl_hmap_get(log->keyring, pk);
  if (found)
    *e = *found;
  pthread_mutex_unlock(&log->kr_mu);
  return found ? 0 : CL_EUNKNOWNKEY;
}

/* Roles of a principal: those of its first registered key. */
static int principal_roles(cl_log *log, const char *principal, char *roles, size_t n) {
  int found = 0;
  pthread_mutex_lock(&log->kr_mu);
  size_t pos = 0;
  const void *k;
  void *v;
  uint64_t best = UINT64_MAX;
  while (cl_hmap_next(log->keyring, &pos, &k, &v)) {
    const cl_keyring_entry *e = v;
    if (strcmp(e->principal, principal) == 0 && e->registered_seq < best) {
      best = e->registered_seq;
      snprintf(roles, n, "%s", e->roles);
      found = 1;
    }
  }
  pthread_mutex_unlock(&log->kr_mu);
  return found;
}

int cl_log_key_info(cl_log *log, const uint8_t pk[32], char *principal, size_t plen, char *roles,
                    size_t rlen, int *revoked) {
  cl_keyring_entry e;
  if (keyring_lookup(log, pk, &e) != 0)
    return CL_EUNKNOWNKEY;
  if (principal)
    snprintf(principal, plen, "%s", e.principal);
  if (roles)
    snprintf(roles, rlen, "%s", e.roles);
  if (revoked)
    *revoked = e.revoked_seq != 0;
  return 0;
}

static int load_keyring(cl_log *log, cl_err *err) {
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(log->db->db, log->db->ro,
                                                      log->db->cf[CL_CF_KEYRING]);
  int rc = 0;
  for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
    size_t kl, vl;
    const char *k = rocksdb_iter_key(it, &kl);
    const char *v = rocksdb_iter_value(it, &vl);
    cl_keyring_entry e;
    if (kl != 32 || cl_keyring_entry_decode((const uint8_t *)v, vl, &e) != 0) {
      rc = cl_err_set(err, CL_ECORRUPT, "keyring: malformed entry");
      break;
    }
    if (!cl_hmap_put(log->keyring, k, &e)) {
      rc = cl_err_set(err, CL_ENOMEM, "out of memory");
      break;
    }
  }
  char *rerr = NULL;
  rocksdb_iter_get_error(it, &rerr);
  if (rerr && !rc)
    rc = cl_db_error(rerr, err, "keyring scan");
  else if (rerr)
    rocksdb_free(rerr);
  rocksdb_iter_destroy(it);
  return rc;
}

/* Committer only: the state of a stream, read through from disk. */
static stream_state *stream_get(cl_log *log, const uint8_t tag[32], cl_err *err) {
  stream_state *s = cl_hmap_get(log->streams, tag);
  if (s)
    return s;
  stream_state st = {0, KEY_UNKNOWN, {0}};
  uint8_t key[40];
  memcpy(key, tag, 32);
  memset(key + 32, 0xff, 8);
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(log->db->db, log->db->ro,
                                                      log->db->cf[CL_CF_STREAMS]);
  rocksdb_iter_seek_for_prev(it, (const char *)key, sizeof key);
  if (rocksdb_iter_valid(it)) {
    size_t kl;
    const char *k = rocksdb_iter_key(it, &kl);
    if (kl == 40 && memcmp(k, tag, 32) == 0)
      st.version = cl_get_be64((const uint8_t *)k + 32);
  }
  char *rerr = NULL;
  rocksdb_iter_get_error(it, &rerr);
  rocksdb_iter_destroy(it);
  if (rerr) {
    cl_db_error(rerr, err, "stream head");
    return NULL;
  }
  char *v;
  size_t vl;
  int rc = cl_db_get(log->db, CL_CF_KEYS, tag, 32, &v, &vl, err);
  if (rc == 0) {
    st.key_state = vl == 0 ? KEY_ERASED : KEY_PRESENT;
    if (vl >= 24)
      memcpy(st.wk_nonce, v, 24);
    rocksdb_free(v);
  } else if (rc != CL_ENOTFOUND) {
    return NULL;
  }
  s = cl_hmap_put(log->streams, tag, &st);
  if (!s)
    cl_err_set(err, CL_ENOMEM, "out of memory");
  return s;
}

/* Merkle node access through RocksDB (reads) and a WriteBatch (writes);
 * see cl_merkle_node_leaf for the layout. */
static int db_merkle_get(void *ctx, unsigned level, uint64_t index, uint8_t out[32],
                         cl_err *err) {
  cl_db *db = ctx;
  uint8_t k[8];
  cl_be64(k, cl_merkle_node_leaf(level, index));
  char *v;
  size_t vl;
  int rc = cl_db_get(db, CL_CF_MERKLE, k, sizeof k, &v, &vl, err);
  if (rc)
    return rc == CL_ENOTFOUND
               ? cl_err_set(err, CL_ECORRUPT, "merkle node (%u,%llu) missing", level,
                            (unsigned long long)index)
               : rc;
  if (vl < 32 * ((size_t)level + 1) || vl % 32) {
    rocksdb_free(v);
    return cl_err_set(err, CL_ECORRUPT, "merkle entry of leaf %llu has %zu bytes",
                      (unsigned long long)cl_merkle_node_leaf(level, index), vl);
  }
  memcpy(out, v + 32 * level, 32);
  rocksdb_free(v);
  return 0;
}

/* Collects the nodes one leaf append completes, then writes them as one
 * merkle entry. */
typedef struct wb_ctx {
  cl_db *db;
  rocksdb_writebatch_t *wb;
  uint64_t leaf;
  unsigned levels;
  uint8_t hashes[64][32];
} wb_ctx;

static int wb_merkle_put(void *ctx, unsigned level, uint64_t index, const uint8_t hash[32],
                         cl_err *err) {
  wb_ctx *c = ctx;
  if (level >= 64)
    return cl_err_set(err, CL_EINVAL, "merkle level %u", level);
  if (level == 0) {
    c->leaf = index;
    c->levels = 0;
  }
  memcpy(c->hashes[level], hash, 32);
  if (level + 1 > c->levels)
    c->levels = level + 1;
  return 0;
}

static void wb_merkle_flush(wb_ctx *c) {
  uint8_t k[8];
  cl_be64(k, c->leaf);
  rocksdb_writebatch_put_cf(c->wb, c->db->cf[CL_CF_MERKLE], (const char *)k, 8,
                            (const char *)c->hashes, 32 * (size_t)c->levels);
}

static int meta_get(cl_db *db, const char *name, void *out, size_t n, size_t *got, cl_err *err) {
  char *v;
  size_t vl;
  int rc = cl_db_get(db, CL_CF_META, name, strlen(name), &v, &vl, err);
  if (rc)
    return rc;
  if (got) {
    *got = vl < n ? vl : n;
  } else if (vl != n) {
    rocksdb_free(v);
    return cl_err_set(err, CL_ECORRUPT, "meta %s: %zu bytes, expected %zu", name, vl, n);
  }
  memcpy(out, v, vl < n ? vl : n);
  rocksdb_free(v);
  return 0;
}

static void meta_put(rocksdb_writebatch_t *wb, cl_db *db, const char *name, const void *v,
                     size_t n) {
  rocksdb_writebatch_put_cf(wb, db->cf[CL_CF_META], name, strlen(name), v, n);
}

/* ------------------------------------------------------------ open/close */

static void log_free(cl_log *log) {
  if (!log)
    return;
  cl_db_close(log->db);
  if (log->secrets)
    sodium_free(log->secrets);
  cl_signer_free(&log->log_signer);
  cl_hmap_free(log->streams);
  cl_hmap_free(log->group_ids);
  free(log->pend);
  free(log->minted);
  cl_hmap_free(log->keyring);
  pthread_mutex_destroy(&log->mu);
  pthread_cond_destroy(&log->cv);
  pthread_mutex_destroy(&log->kr_mu);
  pthread_mutex_destroy(&log->kc_mu);
  pthread_mutex_destroy(&log->pk_mu);
  cl_hmap_free(log->pending_keys);
  cl_hmap_free(log->kc_idx);
  if (log->kc_slab)
    sodium_free(log->kc_slab);
  free(log->dir);
  free(log);
}

static int load_secrets(cl_log *log, int required, cl_err *err) {
  char path[4096];
  const char *mk = log->o.master_key_path;
  if (!mk) {
    path_join(path, sizeof path, log->dir, "keys/master.key");
    mk = path;
  }
  cl_master_key k = {0};
  int rc = cl_master_key_load(&k, mk, err);
  if (rc == CL_ENOTFOUND && !required)
    return 0;
  if (rc)
    return rc;
  log->secrets = sodium_malloc(64);
  if (!log->secrets) {
    cl_master_key_free(&k);
    return cl_err_set(err, CL_ENOMEM, "out of secure memory");
  }
  log->tag_key = log->secrets;
  log->wrap_key = log->secrets + 32;
  cl_derive_keys(k.key, log->tag_key, log->wrap_key);
  cl_key_check(k.key, log->key_check);
  cl_master_key_free(&k);
  log->have_keys = 1;

  const char *lk = log->o.log_key_path;
  if (!lk) {
    path_join(path, sizeof path, log->dir, "keys/log.key");
    lk = path;
  }
  rc = cl_signer_load(&log->log_signer, lk, err);
  if (rc == CL_ENOTFOUND)
    return 0; /* a node without the log key appends but signs no checkpoints */
  if (rc)
    return rc;
  log->have_log_key = 1;
  return 0;
}

static int log_alloc(const cl_log_options *o, cl_log **out, cl_err *err) {
  cl_log *log = calloc(1, sizeof *log);
  if (!log)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  log->o = *o;
  if (!log->o.max_event_size)
    log->o.max_event_size = CL_DEFAULT_MAX_EVENT;
  log->dir = xstrdup(o->dir);
  log->streams = cl_hmap_new(32, sizeof(stream_state));
  log->group_ids = cl_hmap_new(16, sizeof(id_entry));
  log->keyring = cl_hmap_new(32, sizeof(cl_keyring_entry));
  pthread_mutex_init(&log->mu, NULL);
  pthread_cond_init(&log->cv, NULL);
  pthread_mutex_init(&log->kr_mu, NULL);
  pthread_mutex_init(&log->kc_mu, NULL);
  pthread_mutex_init(&log->pk_mu, NULL);
  log->pending_keys = cl_hmap_new(32, sizeof(pending_key));
  log->kc_idx = cl_hmap_new(32, sizeof(uint32_t));
  log->kc_slab = sodium_malloc((size_t)KC_CAP * 32);
  if (!log->dir || !log->streams || !log->group_ids || !log->keyring || !log->kc_idx ||
      !log->kc_slab || !log->pending_keys) {
    log_free(log);
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  }
  cl_merkle_frontier_init(&log->frontier);
  *out = log;
  return 0;
}

/* Checks that the tree matches the records after a restart: the frontier
 * rebuilt from stored nodes gives the stored root, and the last record's
 * leaf hash is the stored last leaf. */
static int recover(cl_log *log, cl_err *err) {
  uint8_t sz[8];
  int rc = meta_get(log->db, CL_META_TREE_SIZE, sz, 8, NULL, err);
  if (rc == CL_ENOTFOUND)
    return cl_err_set(err, CL_ECORRUPT, "meta: tree_size missing (not a clinlog log?)");
  if (rc)
    return rc;
  log->size = cl_get_be64(sz);
  if ((rc = meta_get(log->db, CL_META_ROOT, log->root, 32, NULL, err)))
    return rc;
  uint8_t ai[8];
  rc = meta_get(log->db, CL_META_APPLIED, ai, 8, NULL, err);
  if (rc == 0)
    log->applied = cl_get_be64(ai);
  else if (rc != CL_ENOTFOUND)
    return rc;
  if ((rc = cl_merkle_frontier_load(&log->frontier, log->size, db_merkle_get, log->db, err)))
    return cl_err_prefix(err, "recovering Merkle frontier");
  uint8_t root[32];
  cl_merkle_frontier_root(&log->frontier, root);
  if (sodium_memcmp(root, log->root, 32) != 0)
    return cl_err_set(err, CL_ECORRUPT, "Merkle root of %llu leaves does not match meta.root",
                      (unsigned long long)log->size);
  if (log->size) {
    uint8_t k[8];
    cl_be64(k, log->size);
    char *v;
    size_t vl;
    if ((rc = cl_db_get(log->db, CL_CF_LOG, k, 8, &v, &vl, err)))
      return rc == CL_ENOTFOUND ? cl_err_set(err, CL_ECORRUPT, "record %llu (last) missing",
                                             (unsigned long long)log->size)
                                : rc;
    uint8_t leaf[32], stored[32];
    cl_merkle_leaf_hash((const uint8_t *)v, vl, leaf);
    Clinlog__V1__Record *last = clinlog__v1__record__unpack(NULL, vl, (const uint8_t *)v);
    rocksdb_free(v);
    if (!last)
      return cl_err_set(err, CL_ECORRUPT, "record %llu (last) does not decode",
                        (unsigned long long)log->size);
    log->last_committed_ns = last->committed_at_ns;
    clinlog__v1__record__free_unpacked(last, NULL);
    if ((rc = db_merkle_get(log->db, 0, log->size - 1, stored, err)))
      return rc;
    if (sodium_memcmp(leaf, stored, 32) != 0)
      return cl_err_set(err, CL_ECORRUPT, "record %llu does not match its Merkle leaf",
                        (unsigned long long)log->size);
    /* nothing may exist past the tree head */
    cl_be64(k, log->size + 1);
    if (cl_db_get(log->db, CL_CF_LOG, k, 8, &v, &vl, err) == 0) {
      rocksdb_free(v);
      return cl_err_set(err, CL_ECORRUPT, "record %llu exists past the tree head",
                        (unsigned long long)log->size + 1);
    }
  }
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(log->db->db, log->db->ro,
                                                      log->db->cf[CL_CF_CHECKPOINTS]);
  rocksdb_iter_seek_to_last(it);
  if (rocksdb_iter_valid(it)) {
    size_t kl;
    const char *ck = rocksdb_iter_key(it, &kl);
    if (kl == 8)
      log->last_checkpoint = cl_get_be64((const uint8_t *)ck);
  }
  rocksdb_iter_destroy(it);
  cl_err_clear(err);
  return 0;
}

static int open_common(const cl_log_options *o, int create, cl_log **out, cl_err *err) {
  if (!o || !o->dir)
    return cl_err_set(err, CL_EINVAL, "options: dir required");
  int rc = cl_crypto_init(err);
  if (rc)
    return rc;
  struct stat st;
  if (!create && stat(o->dir, &st) != 0)
    return cl_err_set(err, CL_ENOTFOUND, "%s: no such data directory", o->dir);
  cl_log *log = NULL;
  if ((rc = log_alloc(o, &log, err)))
    return rc;
  char path[4096];
  path_join(path, sizeof path, log->dir, "db");
  if (!create && stat(path, &st) != 0) {
    log_free(log);
    return cl_err_set(err, CL_ENOTFOUND, "%s: not a clinlog data directory (no db/)", o->dir);
  }
  if ((rc = cl_db_open(path, create, o->read_only, o->sync, &log->db, err)))
    goto fail;
  if ((rc = load_secrets(log, !o->read_only, err)))
    goto fail;
  if (!create) {
    uint8_t fmt[4];
    if ((rc = meta_get(log->db, CL_META_FORMAT, fmt, 4, NULL, err)))
      goto fail;
    uint32_t f = (uint32_t)fmt[0] << 24 | (uint32_t)fmt[1] << 16 | (uint32_t)fmt[2] << 8 | fmt[3];
    if (f != CL_FORMAT_VERSION) {
      rc = cl_err_set(err, CL_ECORRUPT, "format version %u, this build reads %d", f,
                      CL_FORMAT_VERSION);
      goto fail;
    }
    size_t got = 0;
    if ((rc = meta_get(log->db, CL_META_ORIGIN, log->origin, sizeof log->origin - 1, &got, err)))
      goto fail;
    log->origin[got] = '\0';
    if ((rc = meta_get(log->db, CL_META_LOG_PK, log->log_pk, 32, NULL, err)))
      goto fail;
    /* keys that belong to another log would write data nobody can read */
    uint8_t kc[16];
    if (log->have_keys && meta_get(log->db, CL_META_KEY_CHECK, kc, 16, NULL, err) == 0 &&
        sodium_memcmp(kc, log->key_check, 16) != 0) {
      rc = cl_err_set(err, CL_EDENIED, "the master key does not belong to this log");
      goto fail;
    }
    if (log->have_log_key && memcmp(log->log_signer.pk, log->log_pk, 32) != 0) {
      rc = cl_err_set(err, CL_EDENIED, "the log key does not belong to this log");
      goto fail;
    }
    if ((rc = recover(log, err)) || (rc = load_keyring(log, err)))
      goto fail;
  }
  *out = log;
  return 0;
fail:
  cl_err_prefix(err, "%s", o->dir);
  log_free(log);
  return rc;
}

int cl_log_open(const cl_log_options *o, cl_log **out, cl_err *err) {
  return open_common(o, 0, out, err);
}

void cl_log_close(cl_log *log) {
  if (!log)
    return;
  pthread_mutex_lock(&log->mu);
  while (log->committing || log->queue)
    pthread_cond_wait(&log->cv, &log->mu);
  pthread_mutex_unlock(&log->mu);
  log_free(log);
}

const char *cl_log_origin(const cl_log *log) { return log->origin; }
const uint8_t *cl_log_public_key(const cl_log *log) { return log->log_pk; }

void cl_log_head(cl_log *log, uint64_t *size, uint8_t root[32]) {
  pthread_mutex_lock(&log->mu);
  if (size)
    *size = log->size;
  if (root)
    memcpy(root, log->root, 32);
  pthread_mutex_unlock(&log->mu);
}

int cl_log_stream_tag(cl_log *log, const char *stream, uint8_t tag[32], cl_err *err) {
  if (!log->have_keys)
    return cl_err_set(err, CL_EDENIED, "stream tags need the master key");
  cl_stream_tag(log->tag_key, stream, strlen(stream), tag);
  return 0;
}

/* --------------------------------------------------------------- prepare */

typedef struct prep {
  Clinlog__V1__Event **evs;
  size_t n;
  uint8_t (*hashes)[32];
  uint8_t *dkeys; /* thread's secure scratch: 32 bytes per distinct stream */
  size_t dkeys_len;
  size_t n_streams;
  cl_hmap *tags;  /* tag -> u64 stream index */
  cl_hmap *ids;
} prep;

static void prep_free(prep *p) {
  if (p->evs)
    for (size_t i = 0; i < p->n; i++)
      if (p->evs[i])
        clinlog__v1__event__free_unpacked(p->evs[i], NULL);
  free(p->evs);
  free(p->hashes);
  if (p->dkeys)
    sodium_memzero(p->dkeys, p->dkeys_len);
  cl_hmap_free(p->tags);
  cl_hmap_free(p->ids);
}

/* Is this single-event batch the genesis step for a log of `size` events? */
static int genesis_step(uint64_t size, const Clinlog__V1__Event *ev, const uint8_t pk[32]) {
  if (size == 0 && ev->body_case == CLINLOG__V1__EVENT__BODY_LOG_CREATED)
    return ev->log_created->log_public_key.len == 32 &&
           memcmp(ev->log_created->log_public_key.data, pk, 32) == 0;
  if (size == 1 && ev->body_case == CLINLOG__V1__EVENT__BODY_PRINCIPAL_REGISTERED) {
    const Clinlog__V1__PrincipalRegistered *pr = ev->principal_registered;
    int admin = 0;
    for (size_t i = 0; i < pr->n_roles; i++)
      admin |= strcmp(pr->roles[i], CL_ROLE_ADMIN) == 0;
    return admin && pr->public_key.len == 32 && memcmp(pr->public_key.data, pk, 32) == 0;
  }
  return 0;
}

static int join_roles(char **roles, size_t n, char *out, size_t outn, cl_err *err) {
  size_t len = 0;
  out[0] = '\0';
  for (size_t i = 0; i < n; i++) {
    size_t rl = strlen(roles[i]);
    if (rl == 0 || strchr(roles[i], ','))
      return cl_err_set(err, CL_EMALFORMED, "roles[%zu]: empty or contains ','", i);
    if (len + rl + 2 > outn)
      return cl_err_set(err, CL_EMALFORMED, "roles: longer than %zu bytes", outn - 1);
    if (len)
      out[len++] = ',';
    memcpy(out + len, roles[i], rl + 1);
    len += rl;
  }
  return 0;
}

static int add_keyring_change(Clinlog__V1__PreparedBatch *pb, int kind, ProtobufCBinaryData key,
                              const char *principal, char **roles, size_t n_roles, size_t idx,
                              cl_err *err) {
  if (key.len != 32)
    return cl_err_set(err, CL_EMALFORMED, "events[%zu]: public_key must be 32 bytes, got %zu",
                      idx, key.len);
  if (!principal[0] || strlen(principal) >= sizeof(((cl_keyring_entry *)0)->principal))
    return cl_err_set(err, CL_EMALFORMED, "events[%zu]: principal_id empty or too long", idx);
  char joined[256];
  int rc = join_roles(roles, n_roles, joined, sizeof joined, err);
  if (rc)
    return rc;
  Clinlog__V1__KeyringChange *kc = malloc(sizeof *kc);
  if (!kc)
    return CL_ENOMEM;
  clinlog__v1__keyring_change__init(kc);
  pb->keyring[pb->n_keyring++] = kc;
  kc->kind = kind;
  kc->event_index = (uint32_t)idx;
  kc->principal_id = xstrdup(principal);
  if (!kc->principal_id || bytes_dup(&kc->key_id, key.data, 32))
    return CL_ENOMEM;
  if (n_roles) {
    kc->roles = calloc(n_roles, sizeof(char *));
    if (!kc->roles)
      return CL_ENOMEM;
    for (size_t i = 0; i < n_roles; i++) {
      if (!(kc->roles[i] = xstrdup(roles[i])))
        return CL_ENOMEM;
      kc->n_roles++;
    }
  }
  return 0;
}

/* Authorization of event i for a signer with `roles`. */
static int authorize(const Clinlog__V1__Event *ev, size_t i, const char *roles, int genesis,
                     cl_err *err) {
  switch (ev->body_case) {
  case CLINLOG__V1__EVENT__BODY_LOG_CREATED:
    if (!genesis)
      return cl_err_set(err, CL_EDENIED, "events[%zu]: LogCreated only as the first event", i);
    return 0;
  case CLINLOG__V1__EVENT__BODY_PRINCIPAL_REGISTERED:
  case CLINLOG__V1__EVENT__BODY_KEY_REGISTERED:
  case CLINLOG__V1__EVENT__BODY_KEY_REVOKED:
  case CLINLOG__V1__EVENT__BODY_STREAM_ERASED:
    if (!genesis && !cl_roles_has(roles, CL_ROLE_ADMIN))
      return cl_err_set(err, CL_EDENIED, "events[%zu]: %s needs the admin role", i,
                        cl_event_type_name(ev->body_case));
    if (ev->stream[0] != '$')
      return cl_err_set(err, CL_EMALFORMED, "events[%zu].stream: %s belongs in a $ system stream",
                        i, cl_event_type_name(ev->body_case));
    return 0;
  default:
    /* system streams hold what the store and its operators write */
    if (ev->stream[0] == '$' && !genesis && !cl_roles_has(roles, CL_ROLE_ADMIN) &&
        !cl_roles_has(roles, CL_ROLE_SYSTEM))
      return cl_err_set(err, CL_EDENIED, "events[%zu].stream: $ streams need the admin or system role",
                        i);
    return 0;
  }
}

static int prepare_effects(cl_log *log, Clinlog__V1__PreparedBatch *pb, prep *p, cl_err *err) {
  size_t nk = 0, ne = 0;
  for (size_t i = 0; i < p->n; i++) {
    int t = p->evs[i]->body_case;
    nk += t == CLINLOG__V1__EVENT__BODY_PRINCIPAL_REGISTERED ||
          t == CLINLOG__V1__EVENT__BODY_KEY_REGISTERED || t == CLINLOG__V1__EVENT__BODY_KEY_REVOKED ||
          t == CLINLOG__V1__EVENT__BODY_LOG_CREATED;
    ne += t == CLINLOG__V1__EVENT__BODY_STREAM_ERASED;
  }
  if (nk && !(pb->keyring = calloc(nk, sizeof *pb->keyring)))
    return CL_ENOMEM;
  if (ne && !(pb->erase_stream_tags = calloc(ne, sizeof *pb->erase_stream_tags)))
    return CL_ENOMEM;
  int rc = 0;
  for (size_t i = 0; i < p->n && !rc; i++) {
    const Clinlog__V1__Event *ev = p->evs[i];
    switch (ev->body_case) {
    case CLINLOG__V1__EVENT__BODY_LOG_CREATED: {
      char *role = CL_ROLE_LOG;
      rc = add_keyring_change(pb, CLINLOG__V1__KEYRING_CHANGE__KIND__REGISTER,
                              ev->log_created->log_public_key, CL_LOG_PRINCIPAL, &role, 1, i, err);
      break;
    }
    case CLINLOG__V1__EVENT__BODY_PRINCIPAL_REGISTERED: {
      const Clinlog__V1__PrincipalRegistered *pr = ev->principal_registered;
      if (pr->n_roles == 0)
        return cl_err_set(err, CL_EMALFORMED, "events[%zu].principal_registered.roles: required", i);
      rc = add_keyring_change(pb, CLINLOG__V1__KEYRING_CHANGE__KIND__REGISTER, pr->public_key,
                              pr->principal_id, pr->roles, pr->n_roles, i, err);
      break;
    }
    case CLINLOG__V1__EVENT__BODY_KEY_REGISTERED:
      rc = add_keyring_change(pb, CLINLOG__V1__KEYRING_CHANGE__KIND__REGISTER,
                              ev->key_registered->public_key, ev->key_registered->principal_id,
                              NULL, 0, i, err);
      break;
    case CLINLOG__V1__EVENT__BODY_KEY_REVOKED:
      rc = add_keyring_change(pb, CLINLOG__V1__KEYRING_CHANGE__KIND__REVOKE,
                              ev->key_revoked->public_key, ev->key_revoked->principal_id, NULL, 0,
                              i, err);
      break;
    case CLINLOG__V1__EVENT__BODY_STREAM_ERASED: {
      const char *s = ev->stream_erased->stream;
      if ((rc = cl_stream_name_check(s, strlen(s), err)))
        return cl_err_prefix(err, "events[%zu].stream_erased", i);
      if (s[0] == '$') /* the keyring and the log's own history stay readable */
        return cl_err_set(err, CL_EDENIED, "events[%zu].stream_erased.stream: system streams cannot be erased", i);
      uint8_t tag[32];
      cl_stream_tag(log->tag_key, s, strlen(s), tag);
      rc = bytes_dup(&pb->erase_stream_tags[pb->n_erase_stream_tags++], tag, 32);
      break;
    }
    default:
      break;
    }
  }
  return rc;
}

/* Verifies shape, signatures and authorization of `b`; decodes into p. */
static int prepare_check(cl_log *log, const Clinlog__V1__AppendBatch *b, prep *p,
                         uint8_t signer[32], char *principal, size_t plen, cl_err *err) {
  size_t n = b->n_events;
  if (n == 0)
    return cl_err_set(err, CL_EINVAL, "events: empty batch");
  if (n > CL_MAX_BATCH)
    return cl_err_set(err, CL_ETOOBIG, "events: %zu in one batch, limit %d", n, CL_MAX_BATCH);
  int batch_signed = b->batch_signature != NULL;
  if (batch_signed ? b->n_signatures != 0 : b->n_signatures != n)
    return cl_err_set(err, CL_EINVAL,
                      "signatures: need one per event (got %zu for %zu events) or one batch_signature",
                      b->n_signatures, n);
  const Clinlog__V1__Signature *s0 = batch_signed ? b->batch_signature : b->signatures[0];
  if (!s0 || s0->key_id.len != 32)
    return cl_err_set(err, CL_EINVAL, "signature.key_id: must be a 32-byte Ed25519 public key");
  memcpy(signer, s0->key_id.data, 32);
  for (size_t i = 0; i < b->n_signatures; i++) {
    const Clinlog__V1__Signature *s = b->signatures[i];
    if (s->key_id.len != 32 || memcmp(s->key_id.data, signer, 32) != 0)
      return cl_err_set(err, CL_EINVAL, "signatures[%zu]: every event of a batch must be signed by one key", i);
    if (s->signature.len != CL_SIG_SIZE)
      return cl_err_set(err, CL_EINVAL, "signatures[%zu].signature: must be 64 bytes", i);
  }
  if (batch_signed && b->batch_signature->signature.len != CL_SIG_SIZE)
    return cl_err_set(err, CL_EINVAL, "batch_signature.signature: must be 64 bytes");

  p->n = n;
  p->evs = calloc(n, sizeof *p->evs);
  p->hashes = malloc(n * 32);
  p->ids = cl_hmap_new(16, 1);
  if (!p->evs || !p->hashes || !p->ids)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  int rc;
  for (size_t i = 0; i < n; i++) {
    ProtobufCBinaryData e = b->events[i];
    if (e.len > log->o.max_event_size)
      return cl_err_set(err, CL_ETOOBIG, "events[%zu]: %zu bytes, limit %zu", i, e.len,
                        log->o.max_event_size);
    if ((rc = cl_event_decode(e.data, e.len, &p->evs[i], err)))
      return cl_err_prefix(err, "events[%zu]", i);
    cl_event_hash(e.data, e.len, p->hashes[i]);
    const char *pr = p->evs[i]->recorded_by->principal_id;
    if (i == 0)
      snprintf(principal, plen, "%s", pr);
    else if (strcmp(pr, principal) != 0)
      return cl_err_set(err, CL_EINVAL, "events[%zu].recorded_by.principal_id: a batch has one signer (%s), not %s",
                        i, principal, pr);
    uint8_t one = 1;
    if (cl_hmap_get(p->ids, p->evs[i]->event_id.data))
      return cl_err_set(err, CL_EINVAL, "events[%zu].event_id: duplicate within the batch", i);
    if (!cl_hmap_put(p->ids, p->evs[i]->event_id.data, &one))
      return cl_err_set(err, CL_ENOMEM, "out of memory");
  }

  /* who signed, and may they? */
  cl_keyring_entry ke;
  int genesis = 0;
  uint64_t size;
  cl_log_head(log, &size, NULL);
  if (keyring_lookup(log, signer, &ke) == 0) {
    if (ke.revoked_seq)
      return cl_err_set(err, CL_EREVOKED, "signing key of %s was revoked at seq %llu", ke.principal,
                        (unsigned long long)ke.revoked_seq);
    if (strcmp(ke.principal, principal) != 0)
      return cl_err_set(err, CL_EDENIED, "signing key belongs to %s, events name %s", ke.principal,
                        principal);
  } else if (n == 1 && genesis_step(size, p->evs[0], signer)) {
    genesis = 1;
    ke.roles[0] = '\0';
  } else {
    char hex[65];
    cl_hex(signer, 32, hex);
    return cl_err_set(err, CL_EUNKNOWNKEY, "signing key %s is not registered", hex);
  }
  if (batch_signed) {
    if (cl_verify_batch(signer, (const uint8_t(*)[32])p->hashes, n,
                        b->batch_signature->signature.data) != 0)
      return cl_err_set(err, CL_EBADSIG, "batch_signature: does not verify over the %zu event hashes", n);
  } else {
    for (size_t i = 0; i < n; i++)
      if (cl_verify_event(signer, p->hashes[i], b->signatures[i]->signature.data) != 0)
        return cl_err_set(err, CL_EBADSIG, "signatures[%zu]: does not verify", i);
  }
  for (size_t i = 0; i < n; i++)
    if ((rc = authorize(p->evs[i], i, ke.roles, genesis, err)))
      return rc;
  return 0;
}

/* Key cache lookup: 1 and the key on a hit; 0 and the generation on a miss. */
static int kc_get(cl_log *log, const uint8_t tag[32], uint8_t *key, uint64_t *gen) {
  pthread_mutex_lock(&log->kc_mu);
  const uint32_t *slot = cl_hmap_get(log->kc_idx, tag);
  if (slot)
    memcpy(key, log->kc_slab + 32 * (size_t)*slot, 32);
  *gen = log->kc_gen;
  pthread_mutex_unlock(&log->kc_mu);
  return slot != NULL;
}

static void kc_put(cl_log *log, const uint8_t tag[32], const uint8_t *key, uint64_t gen) {
  pthread_mutex_lock(&log->kc_mu);
  if (gen == log->kc_gen && !cl_hmap_get(log->kc_idx, tag)) {
    if (log->kc_used == KC_CAP) { /* full: start over (cheap, rare) */
      cl_hmap_clear(log->kc_idx);
      sodium_memzero(log->kc_slab, (size_t)KC_CAP * 32);
      log->kc_used = 0;
    }
    uint32_t slot = log->kc_used;
    if (cl_hmap_put(log->kc_idx, tag, &slot)) {
      memcpy(log->kc_slab + 32 * (size_t)slot, key, 32);
      log->kc_used++;
    }
  }
  pthread_mutex_unlock(&log->kc_mu);
}

static void kc_invalidate(cl_log *log) {
  pthread_mutex_lock(&log->kc_mu);
  cl_hmap_clear(log->kc_idx);
  sodium_memzero(log->kc_slab, (size_t)KC_CAP * 32);
  log->kc_used = 0;
  log->kc_gen++;
  pthread_mutex_unlock(&log->kc_mu);
}

/* Data key of a stream for a new batch: unwrapped if the stream has one,
 * minted (and wrapped into ps) if not. */
static int stream_key(cl_log *log, Clinlog__V1__PreparedStream *ps, uint8_t *key, cl_err *err) {
  uint64_t gen;
  if (kc_get(log, ps->stream_tag.data, key, &gen))
    return 0;
  char *v;
  size_t vl;
  int rc = cl_db_get(log->db, CL_CF_KEYS, ps->stream_tag.data, 32, &v, &vl, err);
  if (rc == CL_ENOTFOUND) {
    /* a new stream: reuse the key another batch minted for it, if any */
    pending_key pk;
    pthread_mutex_lock(&log->pk_mu);
    const pending_key *found = cl_hmap_get(log->pending_keys, ps->stream_tag.data);
    if (found) {
      pk = *found;
    } else {
      randombytes_buf(key, 32);
      wrap_key(log->wrap_key, ps->stream_tag.data, key, pk.wrapped);
      if (!cl_hmap_put(log->pending_keys, ps->stream_tag.data, &pk)) {
        pthread_mutex_unlock(&log->pk_mu);
        return cl_err_set(err, CL_ENOMEM, "out of memory");
      }
    }
    pthread_mutex_unlock(&log->pk_mu);
    if (found && cl_unwrap_key(log->wrap_key, ps->stream_tag.data, pk.wrapped, sizeof pk.wrapped,
                               key) != 0)
      return cl_err_set(err, CL_ECORRUPT, "pending data key does not unwrap");
    return bytes_dup(&ps->wrapped_key, pk.wrapped, sizeof pk.wrapped);
  }
  if (rc)
    return rc;
  if (vl == 0) {
    rocksdb_free(v);
    return cl_err_set(err, CL_EERASED, "stream was erased and takes no more events");
  }
  rc = cl_unwrap_key(log->wrap_key, ps->stream_tag.data, (const uint8_t *)v, vl, key);
  rocksdb_free(v);
  if (rc)
    return cl_err_set(err, CL_ECORRUPT, "stream data key does not unwrap (wrong master key?)");
  kc_put(log, ps->stream_tag.data, key, gen);
  return 0;
}

static int prepare_build(cl_log *log, const Clinlog__V1__AppendBatch *b, prep *p,
                         const uint8_t signer[32], const char *principal,
                         Clinlog__V1__PreparedBatch *pb, cl_err *err) {
  size_t n = p->n;
  int rc;
  p->tags = cl_hmap_new(32, sizeof(uint64_t));
  pb->events = calloc(n, sizeof *pb->events);
  pb->streams = calloc(n, sizeof *pb->streams);
  p->dkeys = secure_scratch(SCRATCH_PREPARE, 32 * n);
  p->dkeys_len = 32 * n;
  if (!p->tags || !pb->events || !pb->streams || !p->dkeys)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  if ((rc = bytes_dup(&pb->signer_key_id, signer, 32)) ||
      !(pb->signer_principal = xstrdup(principal)))
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  /* distinct streams, in order of first appearance */
  uint64_t *sidx = malloc(n * sizeof *sidx);
  if (!sidx)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  for (size_t i = 0; i < n; i++) {
    uint8_t tag[32];
    const char *s = p->evs[i]->stream;
    cl_stream_tag(log->tag_key, s, strlen(s), tag);
    uint64_t *k = cl_hmap_get(p->tags, tag);
    if (k) {
      sidx[i] = *k;
      continue;
    }
    uint64_t idx = pb->n_streams;
    Clinlog__V1__PreparedStream *ps = malloc(sizeof *ps);
    if (!ps || !cl_hmap_put(p->tags, tag, &idx)) {
      free(ps);
      free(sidx);
      return cl_err_set(err, CL_ENOMEM, "out of memory");
    }
    clinlog__v1__prepared_stream__init(ps);
    pb->streams[pb->n_streams++] = ps;
    sidx[i] = idx;
    if ((rc = bytes_dup(&ps->stream_tag, tag, 32)) ||
        (rc = stream_key(log, ps, p->dkeys + 32 * idx, err))) {
      free(sidx);
      return rc == CL_ENOMEM ? cl_err_set(err, rc, "out of memory")
                             : cl_err_prefix(err, "events[%zu].stream", i);
    }
  }
  /* expected versions */
  for (size_t j = 0; j < b->n_expectations; j++) {
    const Clinlog__V1__StreamExpectation *x = b->expectations[j];
    if ((rc = cl_stream_name_check(x->stream, strlen(x->stream), err))) {
      free(sidx);
      return cl_err_prefix(err, "expectations[%zu]", j);
    }
    uint8_t tag[32];
    cl_stream_tag(log->tag_key, x->stream, strlen(x->stream), tag);
    uint64_t *k = cl_hmap_get(p->tags, tag);
    int kind = x->expected ? (int)x->expected->kind : 0;
    const char *why = NULL;
    if (!k)
      why = "names a stream with no event in the batch";
    else if (kind < 0 || kind > CLINLOG__V1__EXPECTED_VERSION__KIND__EXACT)
      why = "expected.kind: unknown value";
    else if (pb->streams[*k]->expected)
      why = "a second expectation for the same stream";
    if (why) {
      free(sidx);
      return cl_err_set(err, CL_EINVAL, "expectations[%zu] (%s): %s", j, x->stream, why);
    }
    Clinlog__V1__ExpectedVersion *ev = malloc(sizeof *ev);
    if (!ev) {
      free(sidx);
      return cl_err_set(err, CL_ENOMEM, "out of memory");
    }
    clinlog__v1__expected_version__init(ev);
    ev->kind = kind;
    ev->version = x->expected ? x->expected->version : 0;
    pb->streams[*k]->expected = ev;
  }
  /* encrypt */
  for (size_t i = 0; i < n; i++) {
    Clinlog__V1__PreparedEvent *pe = malloc(sizeof *pe);
    if (!pe) {
      free(sidx);
      return cl_err_set(err, CL_ENOMEM, "out of memory");
    }
    clinlog__v1__prepared_event__init(pe);
    pb->events[pb->n_events++] = pe;
    const Clinlog__V1__Event *ev = p->evs[i];
    const uint8_t *tag = pb->streams[sidx[i]]->stream_tag.data;
    ProtobufCBinaryData plain = b->events[i];
    uint8_t nonce[24], ad[48];
    randombytes_buf(nonce, sizeof nonce);
    cl_event_ad(tag, ev->event_id.data, ad);
    pe->event_type = ev->body_case;
    pe->ciphertext.len = plain.len + crypto_aead_xchacha20poly1305_ietf_ABYTES;
    pe->ciphertext.data = malloc(pe->ciphertext.len);
    if (!pe->ciphertext.data || bytes_dup(&pe->event_id, ev->event_id.data, 16) ||
        bytes_dup(&pe->stream_tag, tag, 32) || bytes_dup(&pe->event_hash, p->hashes[i], 32) ||
        bytes_dup(&pe->nonce, nonce, 24)) {
      free(sidx);
      return cl_err_set(err, CL_ENOMEM, "out of memory");
    }
    crypto_aead_xchacha20poly1305_ietf_encrypt(pe->ciphertext.data, NULL, plain.data, plain.len,
                                               ad, sizeof ad, NULL, nonce,
                                               p->dkeys + 32 * sidx[i]);
    if (b->n_signatures) {
      Clinlog__V1__Signature *sg = malloc(sizeof *sg);
      if (!sg) {
        free(sidx);
        return cl_err_set(err, CL_ENOMEM, "out of memory");
      }
      clinlog__v1__signature__init(sg);
      pe->signature = sg;
      if (bytes_dup(&sg->key_id, signer, 32) ||
          bytes_dup(&sg->signature, b->signatures[i]->signature.data, CL_SIG_SIZE)) {
        free(sidx);
        return cl_err_set(err, CL_ENOMEM, "out of memory");
      }
    }
  }
  free(sidx);
  if (b->batch_signature) {
    Clinlog__V1__Signature *sg = malloc(sizeof *sg);
    if (!sg)
      return cl_err_set(err, CL_ENOMEM, "out of memory");
    clinlog__v1__signature__init(sg);
    pb->batch_signature = sg;
    if (bytes_dup(&sg->key_id, signer, 32) ||
        bytes_dup(&sg->signature, b->batch_signature->signature.data, CL_SIG_SIZE))
      return cl_err_set(err, CL_ENOMEM, "out of memory");
  }
  if ((rc = prepare_effects(log, pb, p, err)))
    return rc == CL_ENOMEM ? cl_err_set(err, rc, "out of memory") : rc;
  pb->prepared_at_ns = now_ns();
  return 0;
}

int cl_log_prepare(cl_log *log, const Clinlog__V1__AppendBatch *b,
                   Clinlog__V1__PreparedBatch **out, cl_err *err) {
  if (!log->have_keys)
    return cl_err_set(err, CL_EDENIED, "log opened without keys cannot append");
  prep p = {0};
  uint8_t signer[32];
  char principal[128];
  Clinlog__V1__PreparedBatch *pb = NULL;
  int rc = prepare_check(log, b, &p, signer, principal, sizeof principal, err);
  if (rc)
    goto done;
  pb = malloc(sizeof *pb);
  if (!pb) {
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    goto done;
  }
  clinlog__v1__prepared_batch__init(pb);
  if ((rc = prepare_build(log, b, &p, signer, principal, pb, err))) {
    clinlog__v1__prepared_batch__free_unpacked(pb, NULL);
    pb = NULL;
    goto done;
  }
  *out = pb;
done:
  prep_free(&p);
  return rc;
}

/* ---------------------------------------------------------------- commit */

/* Checks keyring change j of pb against the keyring and the changes before
 * it in the same batch (a batch may register a principal and add a key). */
static int keyring_change_check(cl_log *log, const Clinlog__V1__PreparedBatch *pb, size_t j,
                                cl_err *err) {
  const Clinlog__V1__KeyringChange *kc = pb->keyring[j];
  cl_keyring_entry e;
  int exists = keyring_lookup(log, kc->key_id.data, &e) == 0;
  int principal_in_batch = 0;
  for (size_t k = 0; k < j; k++) {
    const Clinlog__V1__KeyringChange *o = pb->keyring[k];
    if (memcmp(o->key_id.data, kc->key_id.data, 32) == 0) {
      if (o->kind == CLINLOG__V1__KEYRING_CHANGE__KIND__REVOKE)
        return cl_err_set(err, CL_EINVAL, "key of %s is revoked earlier in this batch", o->principal_id);
      exists = 1;
      memset(&e, 0, sizeof e);
      snprintf(e.principal, sizeof e.principal, "%s", o->principal_id);
    }
    if (o->kind == CLINLOG__V1__KEYRING_CHANGE__KIND__REGISTER && o->n_roles &&
        !strcmp(o->principal_id, kc->principal_id))
      principal_in_batch = 1;
  }
  char roles[256];
  if (kc->kind == CLINLOG__V1__KEYRING_CHANGE__KIND__REGISTER) {
    if (exists)
      return cl_err_set(err, CL_EEXIST, "key is already registered (to %s)", e.principal);
    int principal_exists =
        principal_in_batch || principal_roles(log, kc->principal_id, roles, sizeof roles);
    if (kc->n_roles && principal_exists)
      return cl_err_set(err, CL_EEXIST, "principal %s is already registered", kc->principal_id);
    if (!kc->n_roles && !principal_exists)
      return cl_err_set(err, CL_ENOTFOUND, "principal %s is not registered", kc->principal_id);
    return 0;
  }
  if (!exists || strcmp(e.principal, kc->principal_id) != 0)
    return cl_err_set(err, CL_ENOTFOUND, "key to revoke is not a key of %s", kc->principal_id);
  if (e.revoked_seq)
    return cl_err_set(err, CL_EINVAL, "key of %s is already revoked", kc->principal_id);
  return 0;
}

/* Checks one prepared batch against the state left by everything ordered
 * before it. Returns 0 (go), 1 (whole batch already committed: r filled),
 * or an error. Touches no state except read-through caches. */
static int commit_check(cl_log *log, const Clinlog__V1__PreparedBatch *pb, cl_append_result *r,
                        cl_err *err) {
  size_t n = pb->n_events;
  uint64_t size = log->frontier.size;
  if (pb->signer_key_id.len != 32 || !pb->signer_principal)
    return cl_err_set(err, CL_EINVAL, "prepared batch without signer");
  cl_keyring_entry ke;
  if (keyring_lookup(log, pb->signer_key_id.data, &ke) == 0) {
    if (ke.revoked_seq)
      return cl_err_set(err, CL_EREVOKED, "signing key of %s was revoked at seq %llu",
                        ke.principal, (unsigned long long)ke.revoked_seq);
    if (strcmp(ke.principal, pb->signer_principal) != 0)
      return cl_err_set(err, CL_EDENIED, "signing key belongs to %s", ke.principal);
    for (size_t i = 0; i < n; i++)
      if (pb->events[i]->event_type == CLINLOG__V1__EVENT__BODY_LOG_CREATED)
        return cl_err_set(err, CL_EDENIED, "LogCreated only as the first event");
  } else {
    int ok = n == 1 && ((size == 0 && pb->events[0]->event_type ==
                                          CLINLOG__V1__EVENT__BODY_LOG_CREATED) ||
                        (size == 1 && pb->events[0]->event_type ==
                                          CLINLOG__V1__EVENT__BODY_PRINCIPAL_REGISTERED &&
                         pb->n_keyring == 1 &&
                         memcmp(pb->keyring[0]->key_id.data, pb->signer_key_id.data, 32) == 0));
    if (!ok)
      return cl_err_set(err, CL_EUNKNOWNKEY, "signing key is not registered");
  }

  /* idempotency */
  size_t found = 0, same = 0;
  for (size_t i = 0; i < n; i++) {
    const Clinlog__V1__PreparedEvent *pe = pb->events[i];
    const id_entry *ie = cl_hmap_get(log->group_ids, pe->event_id.data);
    id_entry disk;
    if (!ie) {
      char *v;
      size_t vl;
      int rc = cl_db_get(log->db, CL_CF_IDS, pe->event_id.data, 16, &v, &vl, err);
      if (rc == CL_ENOTFOUND)
        continue;
      if (rc)
        return rc;
      if (vl != sizeof disk.v) {
        rocksdb_free(v);
        return cl_err_set(err, CL_ECORRUPT, "ids entry of %zu bytes", vl);
      }
      memcpy(disk.v, v, vl);
      rocksdb_free(v);
      ie = &disk;
    }
    found++;
    if (memcmp(ie->v + 16, pe->event_hash.data, 32) == 0) {
      same++;
      if (r) {
        r->seq[i] = cl_get_be64(ie->v);
        r->version[i] = cl_get_be64(ie->v + 8);
      }
    }
  }
  if (found) {
    if (same == n)
      return 1;
    char hex[33] = "";
    for (size_t i = 0; i < n && !hex[0]; i++) {
      char *v = NULL;
      size_t vl;
      cl_err e2;
      if (cl_hmap_get(log->group_ids, pb->events[i]->event_id.data) ||
          cl_db_get(log->db, CL_CF_IDS, pb->events[i]->event_id.data, 16, &v, &vl, &e2) == 0)
        cl_hex(pb->events[i]->event_id.data, 16, hex);
      if (v)
        rocksdb_free(v);
    }
    return cl_err_set(err, CL_EDUPLICATE,
                      "%zu of %zu event ids are already committed%s%s%s (a retry must resend the same events)",
                      found, n, same < found ? " with different content" : "",
                      hex[0] ? ", e.g. " : "", hex);
  }

  /* streams: erasure, keys, expected versions */
  for (size_t j = 0; j < pb->n_streams; j++) {
    const Clinlog__V1__PreparedStream *ps = pb->streams[j];
    if (ps->stream_tag.len != 32)
      return cl_err_set(err, CL_EINVAL, "prepared stream without tag");
    stream_state *st = stream_get(log, ps->stream_tag.data, err);
    if (!st)
      return err->code;
    if (st->key_state == KEY_ERASED)
      return cl_err_set(err, CL_EERASED, "stream was erased and takes no more events");
    /* a batch minting the stream's key must carry the key that is (or will
     * be) committed; batches prepared concurrently share one pending key */
    if (ps->wrapped_key.len
            ? st->key_state == KEY_PRESENT &&
                  (ps->wrapped_key.len < 24 || memcmp(st->wk_nonce, ps->wrapped_key.data, 24) != 0)
            : st->key_state != KEY_PRESENT)
      return cl_err_set(err, CL_EAGAIN, "stream data key changed since prepare");
    if (ps->expected) {
      uint64_t v = st->version, want = ps->expected->version;
      int ok = 1;
      switch (ps->expected->kind) {
      case CLINLOG__V1__EXPECTED_VERSION__KIND__NO_STREAM: ok = v == 0; break;
      case CLINLOG__V1__EXPECTED_VERSION__KIND__EXISTS: ok = v > 0; break;
      case CLINLOG__V1__EXPECTED_VERSION__KIND__EXACT: ok = v == want; break;
      default: break;
      }
      if (!ok) {
        if (r) {
          r->conflict_current = v;
          snprintf(r->conflict_stream, sizeof r->conflict_stream, "#%zu", j);
        }
        char want_s[32];
        snprintf(want_s, sizeof want_s, "%llu", (unsigned long long)want);
        return cl_err_set(err, CL_ECONFLICT, "stream is at version %llu, expected %s",
                          (unsigned long long)v,
                          ps->expected->kind == CLINLOG__V1__EXPECTED_VERSION__KIND__NO_STREAM
                              ? "no stream"
                          : ps->expected->kind == CLINLOG__V1__EXPECTED_VERSION__KIND__EXISTS
                              ? "an existing stream"
                              : want_s);
      }
    }
  }
  for (size_t j = 0; j < pb->n_keyring; j++) {
    int rc = keyring_change_check(log, pb, j, err);
    if (rc)
      return rc;
  }
  return 0;
}

/* Stream index entries of the current group: tag || version BE || seq BE. */
static int pend_stream(cl_log *log, const uint8_t tag[32], uint64_t version, uint64_t seq) {
  if (log->pend_n == log->pend_cap) {
    size_t nc = log->pend_cap ? log->pend_cap * 2 : 1024;
    uint8_t(*n)[48] = realloc(log->pend, nc * 48);
    if (!n)
      return CL_ENOMEM;
    log->pend = n;
    log->pend_cap = nc;
  }
  memcpy(log->pend[log->pend_n], tag, 32);
  cl_be64(log->pend[log->pend_n] + 32, version);
  cl_be64(log->pend[log->pend_n] + 40, seq);
  log->pend_n++;
  return 0;
}

static int cmp16(const void *a, const void *b) {
  return memcmp(*(const uint8_t *const *)a, *(const uint8_t *const *)b, 16);
}

static int cmp40(const void *a, const void *b) { return memcmp(a, b, 40); }

/* Adds the group's id and stream index entries in key order: sorted
 * inserts reuse the memtable skiplist's search position, which for random
 * keys (ids, stream tags) roughly halves the insert cost. */
static int write_indexes(cl_log *log, rocksdb_writebatch_t *wb) {
  size_t n = cl_hmap_count(log->group_ids), pos = 0, i = 0;
  const uint8_t **keys = malloc((n ? n : 1) * sizeof *keys);
  if (!keys)
    return CL_ENOMEM;
  const void *k;
  void *v;
  while (cl_hmap_next(log->group_ids, &pos, &k, &v))
    keys[i++] = k;
  qsort(keys, n, sizeof *keys, cmp16);
  for (i = 0; i < n; i++) {
    const id_entry *ie = cl_hmap_get(log->group_ids, keys[i]);
    rocksdb_writebatch_put_cf(wb, log->db->cf[CL_CF_IDS], (const char *)keys[i], 16,
                              (const char *)ie->v, sizeof ie->v);
  }
  free(keys);
  qsort(log->pend, log->pend_n, 48, cmp40);
  for (i = 0; i < log->pend_n; i++)
    rocksdb_writebatch_put_cf(wb, log->db->cf[CL_CF_STREAMS], (const char *)log->pend[i], 40,
                              (const char *)log->pend[i] + 40, 8);
  log->pend_n = 0;
  return 0;
}

static int stream_index(const Clinlog__V1__PreparedBatch *pb, const uint8_t *tag) {
  for (size_t j = 0; j < pb->n_streams; j++)
    if (memcmp(pb->streams[j]->stream_tag.data, tag, 32) == 0)
      return (int)j;
  return -1;
}

/* A record is its prefix (everything known at prepare, protobuf-encoded)
 * followed by the 28-byte tail of fields assigned at commit (seq, stream
 * version, commit time; fixed-width, highest field numbers). The prefix and
 * the SHA-256 state after 0x00 || prefix can be computed in parallel by the
 * appending threads, leaving the serialized commit 28 bytes to hash. */
#define TAIL_LEN 28

struct rec_prefix {
  uint8_t *buf;  /* prefix, with TAIL_LEN bytes of room after it */
  size_t len;
  crypto_hash_sha256_state st;
};

static int make_prefix(const Clinlog__V1__PreparedBatch *pb, size_t i, rec_prefix *out) {
  const Clinlog__V1__PreparedEvent *pe = pb->events[i];
  Clinlog__V1__Record rec = CLINLOG__V1__RECORD__INIT;
  rec.format = CL_FORMAT_VERSION;
  rec.stream_tag = pe->stream_tag;
  rec.event_id = pe->event_id;
  rec.event_type = pe->event_type;
  rec.event_hash = pe->event_hash;
  rec.nonce = pe->nonce;
  rec.ciphertext = pe->ciphertext;
  size_t n = pb->n_events;
  if (pb->batch_signature) {
    rec.batch_index = (uint32_t)i;
    rec.batch_size = (uint32_t)n;
    if (i == n - 1)
      rec.signature = pb->batch_signature;
  } else {
    rec.signature = pe->signature;
  }
  out->len = clinlog__v1__record__get_packed_size(&rec);
  if (!(out->buf = malloc(out->len + TAIL_LEN)))
    return CL_ENOMEM;
  clinlog__v1__record__pack(&rec, out->buf);
  static const uint8_t leaf_prefix = 0x00; /* RFC 9162 leaf */
  crypto_hash_sha256_init(&out->st);
  crypto_hash_sha256_update(&out->st, &leaf_prefix, 1);
  crypto_hash_sha256_update(&out->st, out->buf, out->len);
  return 0;
}

static void free_prefixes(rec_prefix *p, size_t n) {
  if (!p)
    return;
  for (size_t i = 0; i < n; i++)
    free(p[i].buf);
  free(p);
}

/* Prefixes of every event of pb; NULL when out of memory. */
static rec_prefix *make_prefixes(const Clinlog__V1__PreparedBatch *pb) {
  rec_prefix *p = calloc(pb->n_events ? pb->n_events : 1, sizeof *p);
  for (size_t i = 0; p && i < pb->n_events; i++)
    if (make_prefix(pb, i, &p[i])) {
      free_prefixes(p, pb->n_events);
      return NULL;
    }
  return p;
}

static void put_le64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++, v >>= 8)
    p[i] = (uint8_t)v;
}

/* Completes record i: writes the tail after the prefix and finishes its
 * leaf hash. The record is p->buf, p->len + TAIL_LEN bytes. */
static void finish_record(rec_prefix *p, uint64_t seq, uint64_t version, int64_t at,
                          uint8_t leaf[32]) {
  uint8_t *t = p->buf + p->len;
  t[0] = (14 << 3) | 1; /* fixed64 seq */
  put_le64(t + 1, seq);
  t[9] = (15 << 3) | 1; /* fixed64 stream_version */
  put_le64(t + 10, version);
  t[18] = 0x81; /* sfixed64 committed_at_ns: key 129 as a varint */
  t[19] = 0x01;
  put_le64(t + 20, (uint64_t)at);
  crypto_hash_sha256_state st = p->st;
  crypto_hash_sha256_update(&st, t, TAIL_LEN);
  crypto_hash_sha256_final(&st, leaf);
}

static int put_checkpoint(cl_log *log, rocksdb_writebatch_t *wb, uint64_t size,
                          const uint8_t root[32], cl_err *err) {
  cl_checkpoint cp;
  memset(&cp, 0, sizeof cp);
  snprintf(cp.origin, sizeof cp.origin, "%s", log->origin);
  cp.size = size;
  memcpy(cp.root, root, 32);
  char *note;
  size_t len;
  int rc = cl_checkpoint_sign(&cp, log->origin, log->log_signer.sk, &note, &len, err);
  if (rc)
    return rc;
  uint8_t k[8];
  cl_be64(k, size);
  rocksdb_writebatch_put_cf(wb, log->db->cf[CL_CF_CHECKPOINTS], (const char *)k, 8, note, len);
  free(note);
  return 0;
}

/* Signs a checkpoint when the tree has just reached a multiple of the
 * checkpoint interval: checkpoint sizes depend only on the log, not on how
 * appends were grouped, so every replica and every catch-up signs the same. */
static int maybe_checkpoint(cl_log *log, rocksdb_writebatch_t *wb, cl_err *err) {
  uint64_t iv = log->o.checkpoint_interval, size = log->frontier.size;
  if (!iv || !log->have_log_key || size % iv)
    return 0;
  uint8_t root[32];
  cl_merkle_frontier_root(&log->frontier, root);
  int rc = put_checkpoint(log, wb, size, root, err);
  if (rc == 0)
    log->last_checkpoint = size;
  return rc;
}

/* Writes one keyring change, effective after `seq`, to wb and the keyring. */
static int apply_keyring_change(cl_log *log, rocksdb_writebatch_t *wb,
                                const Clinlog__V1__KeyringChange *kc, uint64_t seq, cl_err *err) {
  cl_keyring_entry e;
  if (kc->kind == CLINLOG__V1__KEYRING_CHANGE__KIND__REGISTER) {
    memset(&e, 0, sizeof e);
    e.registered_seq = seq;
    snprintf(e.principal, sizeof e.principal, "%s", kc->principal_id);
    if (kc->n_roles)
      join_roles(kc->roles, kc->n_roles, e.roles, sizeof e.roles, err);
    else /* applied in order, so a principal registered earlier in the batch is known */
      principal_roles(log, kc->principal_id, e.roles, sizeof e.roles);
  } else {
    keyring_lookup(log, kc->key_id.data, &e);
    e.revoked_seq = seq;
  }
  uint8_t v[8 + 8 + 2 + 128 + 2 + 256];
  size_t vl = cl_keyring_entry_encode(&e, v);
  rocksdb_writebatch_put_cf(wb, log->db->cf[CL_CF_KEYRING], (const char *)kc->key_id.data, 32,
                            (const char *)v, vl);
  pthread_mutex_lock(&log->kr_mu);
  void *ok = cl_hmap_put(log->keyring, kc->key_id.data, &e);
  pthread_mutex_unlock(&log->kr_mu);
  return ok ? 0 : cl_err_set(err, CL_ENOMEM, "out of memory");
}

/* Destroys a stream's data key (crypto-shredding), in wb and in memory. */
static int apply_erasure(cl_log *log, rocksdb_writebatch_t *wb, const uint8_t tag[32],
                         cl_err *err) {
  stream_state *st = stream_get(log, tag, err);
  if (!st)
    return err->code;
  rocksdb_writebatch_put_cf(wb, log->db->cf[CL_CF_KEYS], (const char *)tag, 32, "", 0);
  st->key_state = KEY_ERASED;
  return 0;
}

/* Applies a checked batch to the WriteBatch and the in-memory state.
 * Fails only when out of memory (the caller then fails the log). */
static int commit_apply(cl_log *log, rocksdb_writebatch_t *wb,
                        const Clinlog__V1__PreparedBatch *pb, rec_prefix *pre,
                        cl_append_result *r, int *erased, cl_err *err) {
  cl_db *db = log->db;
  wb_ctx wc = {.db = db, .wb = wb};
  size_t n = pb->n_events;
  rec_prefix *own = NULL;
  if (!pre && !(pre = own = make_prefixes(pb)))
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  uint8_t *buf;
  /* the leader's clock, but never before an earlier commit (deterministic:
   * depends only on the entries applied so far) */
  int64_t committed_at = pb->prepared_at_ns > log->last_committed_ns ? pb->prepared_at_ns
                                                                      : log->last_committed_ns;
  log->last_committed_ns = committed_at;
  for (size_t i = 0; i < n; i++) {
    const Clinlog__V1__PreparedEvent *pe = pb->events[i];
    int j = stream_index(pb, pe->stream_tag.data);
    if (j < 0) {
      free_prefixes(own, n);
      return cl_err_set(err, CL_EINVAL, "prepared event %zu has no stream entry", i);
    }
    stream_state *st = stream_get(log, pe->stream_tag.data, err);
    if (!st) {
      free_prefixes(own, n);
      return err->code;
    }
    uint64_t seq = log->frontier.size + 1;
    uint64_t version = st->version + 1;

    uint8_t leaf[32];
    finish_record(&pre[i], seq, version, committed_at, leaf);
    buf = pre[i].buf;
    size_t len = pre[i].len + TAIL_LEN;
    int rc = cl_merkle_frontier_append(&log->frontier, leaf, wb_merkle_put, &wc, err);
    if (rc) {
      free_prefixes(own, n);
      return rc;
    }
    wb_merkle_flush(&wc);
    if ((rc = maybe_checkpoint(log, wb, err))) {
      free_prefixes(own, n);
      return rc;
    }
    uint8_t k[8];
    cl_be64(k, seq);
    rocksdb_writebatch_put_cf(wb, db->cf[CL_CF_LOG], (const char *)k, 8, (const char *)buf, len);
    /* index entries are written sorted at the end of the group (write_indexes) */
    id_entry ie;
    cl_be64(ie.v, seq);
    cl_be64(ie.v + 8, version);
    memcpy(ie.v + 16, pe->event_hash.data, 32);
    if (!cl_hmap_put(log->group_ids, pe->event_id.data, &ie) ||
        pend_stream(log, pe->stream_tag.data, version, seq)) {
      free_prefixes(own, n);
      return cl_err_set(err, CL_ENOMEM, "out of memory");
    }
    st->version = version;
    if (r) {
      r->seq[i] = seq;
      r->version[i] = version;
    }
  }
  free_prefixes(own, n);
  for (size_t j = 0; j < pb->n_streams; j++) {
    const Clinlog__V1__PreparedStream *ps = pb->streams[j];
    if (!ps->wrapped_key.len)
      continue;
    stream_state *st = cl_hmap_get(log->streams, ps->stream_tag.data);
    if (st->key_state == KEY_PRESENT) /* an earlier batch committed this same key */
      continue;
    rocksdb_writebatch_put_cf(wb, db->cf[CL_CF_KEYS], (const char *)ps->stream_tag.data, 32,
                              (const char *)ps->wrapped_key.data, ps->wrapped_key.len);
    st->key_state = KEY_PRESENT;
    memcpy(st->wk_nonce, ps->wrapped_key.data, 24);
    if (log->n_minted == log->cap_minted) {
      size_t nc = log->cap_minted ? log->cap_minted * 2 : 64;
      uint8_t(*m)[32] = realloc(log->minted, nc * 32);
      if (!m)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
      log->minted = m;
      log->cap_minted = nc;
    }
    memcpy(log->minted[log->n_minted++], ps->stream_tag.data, 32);
  }
  /* a change is stamped with the seq it takes effect after: the batch's
   * last for a batch signature, else its own event's (as verify does) */
  uint64_t last_seq = log->frontier.size, first_seq = last_seq - n + 1;
  for (size_t j = 0; j < pb->n_keyring; j++) {
    const Clinlog__V1__KeyringChange *kc = pb->keyring[j];
    uint64_t at = pb->batch_signature || kc->event_index >= n ? last_seq
                                                             : first_seq + kc->event_index;
    int rc = apply_keyring_change(log, wb, kc, at, err);
    if (rc)
      return rc;
  }
  for (size_t j = 0; j < pb->n_erase_stream_tags; j++) {
    int rc = apply_erasure(log, wb, pb->erase_stream_tags[j].data, err);
    if (rc)
      return rc;
    *erased = 1;
  }
  if (r)
    r->tree_size = log->frontier.size;
  return 0;
}

/* Purges destroyed data keys from disk so crypto-shredding leaves nothing
 * recoverable: every family is flushed (a WAL file is deleted only once all
 * families it holds data for are flushed), then the keys family is compacted
 * so no SST file keeps the old wrapped key. */
static void purge_erased_keys(cl_log *log) {
  rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
  rocksdb_flushoptions_set_wait(fo, 1);
  for (int i = 0; i < CL_CF_COUNT; i++) {
    char *rerr = NULL;
    rocksdb_flush_cf(log->db->db, fo, log->db->cf[i], &rerr);
    if (rerr) {
      fprintf(stderr, "clinlog: flushing after an erasure: %s\n", rerr);
      rocksdb_free(rerr);
    }
  }
  rocksdb_flushoptions_destroy(fo);
  rocksdb_compact_range_cf(log->db->db, log->db->cf[CL_CF_KEYS], NULL, 0, NULL, 0);
}

/* Runs one commit group. Called by exactly one thread at a time. With
 * `applied` (replication), the group is Raft entry `applied` and that index
 * is written with it. */
static void commit_group(cl_log *log, commit_req *reqs, uint64_t applied) {
  rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
  cl_hmap_clear(log->group_ids);
  log->pend_n = 0;
  log->n_minted = 0;
  int wrote = 0, erased = 0, fatal = 0;
  cl_err ferr;
  cl_err_clear(&ferr);
  for (commit_req *q = reqs; q; q = q->next) {
    if (fatal) {
      q->rc = cl_err_set(&q->err, CL_EFAILED, "%s", ferr.msg);
      continue;
    }
    int rc = commit_check(log, q->pb, q->r, &q->err);
    if (rc == 1) {
      if (q->r) {
        q->r->duplicate = 1;
        q->r->tree_size = log->frontier.size;
      }
      q->rc = 0;
      continue;
    }
    if (rc) {
      q->rc = rc;
      continue;
    }
    if ((rc = commit_apply(log, wb, q->pb, q->pre, q->r, &erased, &q->err))) {
      fatal = 1;
      ferr = q->err;
      q->rc = rc;
      continue;
    }
    q->rc = 0;
    wrote = 1;
  }
  uint8_t root[32];
  cl_merkle_frontier_root(&log->frontier, root);
  if (wrote && !fatal && write_indexes(log, wb) != 0) {
    fatal = 1;
    cl_err_set(&ferr, CL_ENOMEM, "out of memory");
  }
  if (wrote && !fatal) {
    uint64_t size = log->frontier.size;
    uint8_t sz[8];
    cl_be64(sz, size);
    meta_put(wb, log->db, CL_META_TREE_SIZE, sz, 8);
    meta_put(wb, log->db, CL_META_ROOT, root, 32);
  }
  if (applied && !fatal) {
    uint8_t ai[8];
    cl_be64(ai, applied);
    meta_put(wb, log->db, CL_META_APPLIED, ai, 8);
  }
  if ((wrote || applied) && !fatal && cl_db_write(log->db, wb, &ferr) != 0)
    fatal = 1;
  rocksdb_writebatch_destroy(wb);
  if (fatal) {
    /* in-memory state may now be ahead of disk: refuse further commits */
    for (commit_req *q = reqs; q; q = q->next)
      if (q->rc == 0 || q->rc == CL_EFAILED)
        q->rc = cl_err_set(&q->err, CL_EFAILED, "commit failed, log needs reopening: %s",
                           ferr.msg);
  } else {
    /* keys now durable: later prepares find them on disk */
    pthread_mutex_lock(&log->pk_mu);
    for (size_t i = 0; i < log->n_minted; i++)
      cl_hmap_del(log->pending_keys, log->minted[i]);
    pthread_mutex_unlock(&log->pk_mu);
    if (erased) {
      /* after the durable write: a reader that fetched the key before it
       * holds an older generation and cannot re-cache it */
      kc_invalidate(log);
      purge_erased_keys(log);
    }
  }
  pthread_mutex_lock(&log->mu);
  if (fatal)
    log->failed = 1;
  else if (wrote) {
    log->size = log->frontier.size;
    memcpy(log->root, root, 32);
  }
  if (!fatal && applied)
    log->applied = applied;
  pthread_mutex_unlock(&log->mu);
  if (wrote && !fatal && log->hook)
    log->hook(log->hook_ctx, log->frontier.size);
}

void cl_log_set_commit_hook(cl_log *log, cl_commit_fn fn, void *ctx) {
  log->hook = fn;
  log->hook_ctx = ctx;
}

static int commit_with(cl_log *log, const Clinlog__V1__PreparedBatch *pb, rec_prefix *pre,
                       cl_append_result *r, cl_err *err);

int cl_log_commit(cl_log *log, const Clinlog__V1__PreparedBatch *pb, cl_append_result *r,
                  cl_err *err) {
  return commit_with(log, pb, NULL, r, err);
}

/* Allocates r for pb's events and fills in their ids. */
static int result_for(cl_append_result *r, const Clinlog__V1__PreparedBatch *pb, cl_err *err) {
  if (result_alloc(r, pb->n_events))
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  for (size_t i = 0; i < pb->n_events; i++)
    if (pb->events[i]->event_id.len == 16)
      memcpy(r->event_id[i], pb->events[i]->event_id.data, 16);
  return 0;
}

static int commit_with(cl_log *log, const Clinlog__V1__PreparedBatch *pb, rec_prefix *pre,
                       cl_append_result *r, cl_err *err) {
  if (r && result_for(r, pb, err))
    return err->code;
  commit_req req = {.pb = pb, .pre = pre, .r = r};
  pthread_mutex_lock(&log->mu);
  if (log->failed) {
    pthread_mutex_unlock(&log->mu);
    return cl_err_set(err, CL_EFAILED, "log failed after a write error; reopen it");
  }
  if (log->o.read_only) {
    pthread_mutex_unlock(&log->mu);
    return cl_err_set(err, CL_EDENIED, "log is open read-only");
  }
  if (log->queue_tail)
    log->queue_tail->next = &req;
  else
    log->queue = &req;
  log->queue_tail = &req;
  while (!req.done) {
    if (!log->committing) {
      commit_req *group = log->queue;
      log->queue = log->queue_tail = NULL;
      log->committing = 1;
      pthread_mutex_unlock(&log->mu);
      commit_group(log, group, 0);
      pthread_mutex_lock(&log->mu);
      log->committing = 0;
      for (commit_req *q = group; q; q = q->next)
        q->done = 1;
      pthread_cond_broadcast(&log->cv);
    } else {
      pthread_cond_wait(&log->cv, &log->mu);
    }
  }
  pthread_mutex_unlock(&log->mu);
  if (req.rc && err)
    *err = req.err;
  if (req.rc && req.rc != CL_ECONFLICT && r)
    cl_append_result_free(r);
  return req.rc;
}

void cl_log_name_conflict(cl_log *log, const Clinlog__V1__AppendBatch *b,
                          const Clinlog__V1__PreparedBatch *pb, cl_append_result *r, cl_err *err) {
  if (r->conflict_stream[0] != '#')
    return;
  size_t j = (size_t)strtoull(r->conflict_stream + 1, NULL, 10);
  for (size_t x = 0; x < b->n_expectations; x++) {
    uint8_t tag[32];
    cl_stream_tag(log->tag_key, b->expectations[x]->stream, strlen(b->expectations[x]->stream),
                  tag);
    if (j < pb->n_streams && memcmp(tag, pb->streams[j]->stream_tag.data, 32) == 0) {
      snprintf(r->conflict_stream, sizeof r->conflict_stream, "%s", b->expectations[x]->stream);
      cl_err_prefix(err, "%s", r->conflict_stream);
      return;
    }
  }
}

int cl_log_append(cl_log *log, const Clinlog__V1__AppendBatch *b, cl_append_result *r,
                  cl_err *err) {
  int rc = CL_EAGAIN;
  for (int attempt = 0; attempt < 5 && rc == CL_EAGAIN; attempt++) {
    Clinlog__V1__PreparedBatch *pb;
    if ((rc = cl_log_prepare(log, b, &pb, err)))
      return rc;
    /* encode and start hashing the records here, in parallel with other
     * appenders, so the serialized commit only adds each record's tail */
    rec_prefix *pre = make_prefixes(pb);
    rc = commit_with(log, pb, pre, r, err);
    free_prefixes(pre, pb->n_events);
    if (rc == CL_ECONFLICT && r)
      cl_log_name_conflict(log, b, pb, r, err);
    clinlog__v1__prepared_batch__free_unpacked(pb, NULL);
  }
  return rc;
}

/* ------------------------------------------------------------ replication */

struct cl_prefixes {
  size_t n;
  rec_prefix *p;
};

cl_prefixes *cl_log_prefixes(const Clinlog__V1__PreparedBatch *pb) {
  cl_prefixes *x = malloc(sizeof *x);
  if (!x)
    return NULL;
  x->n = pb->n_events;
  if (!(x->p = make_prefixes(pb))) {
    free(x);
    return NULL;
  }
  return x;
}

void cl_log_prefixes_free(cl_prefixes *x) {
  if (!x)
    return;
  free_prefixes(x->p, x->n);
  free(x);
}

/* Takes the committer's slot for a caller that is not in the commit queue
 * (replicated apply, catch-up). */
static int iter_error(rocksdb_iterator_t *it, cl_err *err);

static int slot_acquire(cl_log *log, cl_err *err) {
  pthread_mutex_lock(&log->mu);
  while (log->committing)
    pthread_cond_wait(&log->cv, &log->mu);
  int rc = 0;
  if (log->failed)
    rc = cl_err_set(err, CL_EFAILED, "log failed after a write error; reopen it");
  else if (log->o.read_only)
    rc = cl_err_set(err, CL_EDENIED, "log is open read-only");
  else
    log->committing = 1;
  pthread_mutex_unlock(&log->mu);
  return rc;
}

static void slot_release(cl_log *log) {
  pthread_mutex_lock(&log->mu);
  log->committing = 0;
  pthread_cond_broadcast(&log->cv);
  pthread_mutex_unlock(&log->mu);
}

uint64_t cl_log_applied_index(cl_log *log) {
  pthread_mutex_lock(&log->mu);
  uint64_t a = log->applied;
  pthread_mutex_unlock(&log->mu);
  return a;
}

int cl_log_apply(cl_log *log, uint64_t index, cl_apply_item *items, size_t n, cl_err *err) {
  if (index == 0)
    return cl_err_set(err, CL_EINVAL, "raft index 0");
  int rc = slot_acquire(log, err);
  if (rc)
    return rc;
  if (index <= log->applied) { /* applied before a restart */
    slot_release(log);
    return 1;
  }
  commit_req *reqs = n ? calloc(n, sizeof *reqs) : NULL;
  if (n && !reqs) {
    slot_release(log);
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < n; i++) {
    reqs[i].pb = items[i].pb;
    if (items[i].want_result && result_for(&items[i].r, items[i].pb, err)) {
      for (size_t j = 0; j < i; j++)
        if (items[j].want_result)
          cl_append_result_free(&items[j].r);
      free(reqs);
      slot_release(log);
      return err->code;
    }
    reqs[i].r = items[i].want_result ? &items[i].r : NULL;
    if (items[i].pre && items[i].pre->n == items[i].pb->n_events)
      reqs[i].pre = items[i].pre->p;
    reqs[i].next = i + 1 < n ? &reqs[i + 1] : NULL;
  }
  commit_group(log, n ? reqs : NULL, index);
  for (size_t i = 0; i < n; i++) {
    items[i].rc = reqs[i].rc;
    items[i].err = reqs[i].err;
    if (reqs[i].rc && reqs[i].rc != CL_ECONFLICT && items[i].want_result)
      cl_append_result_free(&items[i].r);
  }
  free(reqs);
  pthread_mutex_lock(&log->mu);
  int failed = log->failed;
  pthread_mutex_unlock(&log->mu);
  slot_release(log);
  if (failed)
    return cl_err_set(err, CL_EFAILED, "applying raft entry %llu: %s", (unsigned long long)index,
                      n ? items[0].err.msg : "write failed");
  return 0;
}

int cl_log_sync(cl_log *log, cl_err *err) {
  char *rerr = NULL;
  rocksdb_flush_wal(log->db->db, 1, &rerr);
  return rerr ? cl_db_error(rerr, err, "syncing the WAL") : 0;
}

int cl_log_wrapped_key(cl_log *log, const uint8_t tag[32], uint8_t *out, size_t cap, size_t *n,
                       cl_err *err) {
  char *v;
  size_t vl;
  int rc = cl_db_get(log->db, CL_CF_KEYS, tag, 32, &v, &vl, err);
  if (rc)
    return rc;
  if (vl > cap) {
    rocksdb_free(v);
    return cl_err_set(err, CL_ECORRUPT, "wrapped key of %zu bytes", vl);
  }
  memcpy(out, v, vl);
  *n = vl;
  rocksdb_free(v);
  return 0;
}

int cl_log_read_records(cl_log *log, uint64_t from_seq, uint64_t to_seq, cl_record_fn fn,
                        void *ctx, cl_err *err) {
  uint64_t size;
  cl_log_head(log, &size, NULL);
  if (from_seq == 0 || to_seq > size || from_seq > to_seq)
    return cl_err_set(err, CL_EINVAL, "records %llu..%llu: the log holds 1..%llu",
                      (unsigned long long)from_seq, (unsigned long long)to_seq,
                      (unsigned long long)size);
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(log->db->db, log->db->ro,
                                                      log->db->cf[CL_CF_LOG]);
  uint8_t k[8];
  cl_be64(k, from_seq);
  uint64_t want = from_seq;
  int rc = 0;
  for (rocksdb_iter_seek(it, (const char *)k, 8); rocksdb_iter_valid(it) && want <= to_seq;
       rocksdb_iter_next(it), want++) {
    size_t kl, vl;
    const char *key = rocksdb_iter_key(it, &kl);
    if (kl != 8 || cl_get_be64((const uint8_t *)key) != want) {
      rc = cl_err_set(err, CL_ECORRUPT, "record %llu missing", (unsigned long long)want);
      break;
    }
    const char *val = rocksdb_iter_value(it, &vl);
    if ((rc = fn(ctx, want, (const uint8_t *)val, vl, err)) != 0)
      break;
  }
  if (rc == 0 && (rc = iter_error(it, err)) == 0 && want <= to_seq)
    rc = cl_err_set(err, CL_ECORRUPT, "record %llu missing", (unsigned long long)want);
  rocksdb_iter_destroy(it);
  return rc < 0 ? rc : 0;
}

/* Catch-up: the keyring and erasure effects of an ingested system record,
 * derived the way prepare derives them (the record is decrypted with its
 * stream's key: system streams are never erased). */
static int ingest_effects(cl_log *log, rocksdb_writebatch_t *wb, const Clinlog__V1__Record *rec,
                          const uint8_t *wrapped, size_t wl, int *erased, cl_err *err) {
  uint8_t *key = secure_scratch(SCRATCH_READ, 32);
  if (!key)
    return cl_err_set(err, CL_ENOMEM, "out of secure memory");
  char *dv = NULL;
  int rc = 0;
  if (!wrapped) {
    size_t dl;
    if ((rc = cl_db_get(log->db, CL_CF_KEYS, rec->stream_tag.data, 32, &dv, &dl, err)))
      return cl_err_prefix(err, "record %llu: stream key", (unsigned long long)rec->seq);
    wrapped = (const uint8_t *)dv;
    wl = dl;
  }
  size_t ab = crypto_aead_xchacha20poly1305_ietf_ABYTES;
  uint8_t *plain = NULL;
  Clinlog__V1__Event *ev = NULL;
  if (wl == 0 || rec->ciphertext.len < ab) {
    rc = cl_err_set(err, CL_ECORRUPT, "record %llu: system event without a key",
                    (unsigned long long)rec->seq);
  } else if (cl_unwrap_key(log->wrap_key, rec->stream_tag.data, wrapped, wl, key)) {
    rc = cl_err_set(err, CL_ECRYPTO, "record %llu: data key does not unwrap",
                    (unsigned long long)rec->seq);
  } else {
    size_t pl = rec->ciphertext.len - ab;
    uint8_t ad[48];
    cl_event_ad(rec->stream_tag.data, rec->event_id.data, ad);
    if (!(plain = malloc(pl ? pl : 1)))
      rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    else if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, NULL, NULL, rec->ciphertext.data,
                                                        rec->ciphertext.len, ad, sizeof ad,
                                                        rec->nonce.data, key) != 0)
      rc = cl_err_set(err, CL_ECRYPTO, "record %llu does not decrypt", (unsigned long long)rec->seq);
    else if ((rc = cl_event_decode(plain, pl, &ev, err)))
      cl_err_prefix(err, "record %llu", (unsigned long long)rec->seq);
    if (plain) {
      sodium_memzero(plain, pl);
      free(plain);
    }
  }
  sodium_memzero(key, 32);
  if (dv)
    rocksdb_free(dv);
  if (rc)
    return rc;
  Clinlog__V1__PreparedBatch pb = CLINLOG__V1__PREPARED_BATCH__INIT;
  prep p = {.evs = &ev, .n = 1};
  rc = prepare_effects(log, &pb, &p, err);
  /* effective after the record's signed batch, as verify replays it */
  uint64_t at = rec->batch_size ? rec->seq + (rec->batch_size - 1 - rec->batch_index) : rec->seq;
  for (size_t j = 0; rc == 0 && j < pb.n_keyring; j++)
    rc = apply_keyring_change(log, wb, pb.keyring[j], at, err);
  for (size_t j = 0; rc == 0 && j < pb.n_erase_stream_tags; j++) {
    rc = apply_erasure(log, wb, pb.erase_stream_tags[j].data, err);
    *erased = 1;
  }
  for (size_t j = 0; j < pb.n_keyring; j++)
    clinlog__v1__keyring_change__free_unpacked(pb.keyring[j], NULL);
  free(pb.keyring);
  for (size_t j = 0; j < pb.n_erase_stream_tags; j++)
    free(pb.erase_stream_tags[j].data);
  free(pb.erase_stream_tags);
  clinlog__v1__event__free_unpacked(ev, NULL);
  return rc;
}

static int is_system_type(uint32_t t) {
  return t == CLINLOG__V1__EVENT__BODY_LOG_CREATED ||
         t == CLINLOG__V1__EVENT__BODY_PRINCIPAL_REGISTERED ||
         t == CLINLOG__V1__EVENT__BODY_KEY_REGISTERED ||
         t == CLINLOG__V1__EVENT__BODY_KEY_REVOKED || t == CLINLOG__V1__EVENT__BODY_STREAM_ERASED;
}

/* Checks one ingested record against the state before it and adds it to wb. */
static int ingest_record(cl_log *log, rocksdb_writebatch_t *wb, const Clinlog__V1__Record *rec,
                         const uint8_t *bytes, size_t len, uint64_t seq,
                         const cl_ingest_key *keys, size_t nkeys, int64_t *last_at,
                         cl_err *err) {
  if (rec->format != CL_FORMAT_VERSION || rec->seq != seq || rec->stream_tag.len != 32 ||
      rec->event_id.len != 16 || rec->event_hash.len != 32 || rec->nonce.len != 24)
    return cl_err_set(err, CL_EVERIFY, "record %llu: malformed or out of sequence (seq %llu)",
                      (unsigned long long)seq, (unsigned long long)rec->seq);
  if (rec->committed_at_ns < *last_at)
    return cl_err_set(err, CL_EVERIFY, "record %llu: commit time goes backwards",
                      (unsigned long long)seq);
  *last_at = rec->committed_at_ns;
  stream_state *st = stream_get(log, rec->stream_tag.data, err);
  if (!st)
    return err->code;
  if (rec->stream_version != st->version + 1)
    return cl_err_set(err, CL_EVERIFY, "record %llu: stream version %llu after %llu",
                      (unsigned long long)seq, (unsigned long long)rec->stream_version,
                      (unsigned long long)st->version);
  if (cl_hmap_get(log->group_ids, rec->event_id.data))
    return cl_err_set(err, CL_EVERIFY, "record %llu: event id repeated", (unsigned long long)seq);
  char *v;
  size_t vl;
  int rc = cl_db_get(log->db, CL_CF_IDS, rec->event_id.data, 16, &v, &vl, err);
  if (rc == 0) {
    rocksdb_free(v);
    return cl_err_set(err, CL_EVERIFY, "record %llu: event id repeated", (unsigned long long)seq);
  }
  if (rc != CL_ENOTFOUND)
    return rc;
  cl_err_clear(err);
  wb_ctx wc = {.db = log->db, .wb = wb};
  uint8_t leaf[32];
  cl_merkle_leaf_hash(bytes, len, leaf);
  if ((rc = cl_merkle_frontier_append(&log->frontier, leaf, wb_merkle_put, &wc, err)))
    return rc;
  wb_merkle_flush(&wc);
  if ((rc = maybe_checkpoint(log, wb, err)))
    return rc;
  uint8_t k[8];
  cl_be64(k, seq);
  rocksdb_writebatch_put_cf(wb, log->db->cf[CL_CF_LOG], (const char *)k, 8, (const char *)bytes,
                            len);
  id_entry ie;
  cl_be64(ie.v, seq);
  cl_be64(ie.v + 8, rec->stream_version);
  memcpy(ie.v + 16, rec->event_hash.data, 32);
  if (!cl_hmap_put(log->group_ids, rec->event_id.data, &ie) ||
      pend_stream(log, rec->stream_tag.data, rec->stream_version, seq))
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  st->version = rec->stream_version;
  if (st->key_state == KEY_UNKNOWN) {
    for (size_t j = 0; j < nkeys; j++) {
      if (memcmp(keys[j].tag, rec->stream_tag.data, 32) != 0)
        continue;
      if (keys[j].wrapped_len && keys[j].wrapped_len != CL_WRAPPED_KEY_SIZE)
        return cl_err_set(err, CL_EVERIFY, "record %llu: wrapped key of %zu bytes",
                          (unsigned long long)seq, keys[j].wrapped_len);
      rocksdb_writebatch_put_cf(wb, log->db->cf[CL_CF_KEYS], (const char *)keys[j].tag, 32,
                                (const char *)keys[j].wrapped, keys[j].wrapped_len);
      st->key_state = keys[j].wrapped_len ? KEY_PRESENT : KEY_ERASED;
      if (keys[j].wrapped_len)
        memcpy(st->wk_nonce, keys[j].wrapped, 24);
      break;
    }
    if (st->key_state == KEY_UNKNOWN)
      return cl_err_set(err, CL_EVERIFY, "record %llu starts a stream but brings no data key",
                        (unsigned long long)seq);
  }
  return 0;
}

int cl_log_ingest(cl_log *log, uint64_t first_seq, const cl_ingest_record *recs, size_t n,
                  const cl_ingest_key *keys, size_t nkeys, uint64_t target_size,
                  const uint8_t target_root[32], const uint8_t (*proof)[32], size_t nproof,
                  cl_err *err) {
  if (!log->have_keys)
    return cl_err_set(err, CL_EDENIED, "catch-up needs the master key");
  int rc = slot_acquire(log, err);
  if (rc)
    return rc;
  uint64_t last = first_seq + n - 1;
  if (n == 0 || first_seq != log->frontier.size + 1 || last > target_size) {
    slot_release(log);
    return cl_err_set(err, CL_EINVAL, "catch-up chunk %llu..%llu does not follow %llu (target %llu)",
                      (unsigned long long)first_seq, (unsigned long long)last,
                      (unsigned long long)log->frontier.size, (unsigned long long)target_size);
  }
  cl_merkle_frontier saved = log->frontier;
  uint64_t saved_cp = log->last_checkpoint;
  int64_t last_at = log->last_committed_ns;
  int erased = 0;
  rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
  cl_hmap_clear(log->group_ids);
  log->pend_n = 0;
  Clinlog__V1__Record **parsed = calloc(n, sizeof *parsed);
  if (!parsed)
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < n; i++) {
    if (!(parsed[i] = clinlog__v1__record__unpack(NULL, recs[i].len, recs[i].data)))
      rc = cl_err_set(err, CL_EVERIFY, "record %llu does not decode",
                      (unsigned long long)(first_seq + i));
    else
      rc = ingest_record(log, wb, parsed[i], recs[i].data, recs[i].len, first_seq + i, keys,
                         nkeys, &last_at, err);
  }
  uint8_t root[32];
  cl_merkle_frontier_root(&log->frontier, root);
  if (rc == 0) {
    /* the chunk is part of the tree the snapshot (or base entry) names */
    if (last == target_size) {
      if (sodium_memcmp(root, target_root, 32) != 0)
        rc = cl_err_set(err, CL_EVERIFY, "root after %llu records does not match the target",
                        (unsigned long long)last);
    } else {
      rc = cl_merkle_verify_consistency(last, target_size, root, target_root, proof, nproof, err);
    }
  }
  /* derived state, only for verified records */
  for (size_t i = 0; rc == 0 && i < n; i++) {
    if (!is_system_type(parsed[i]->event_type))
      continue;
    const uint8_t *w = NULL;
    size_t wl = 0;
    int found = 0;
    for (size_t j = 0; j < nkeys && !found; j++)
      if (memcmp(keys[j].tag, parsed[i]->stream_tag.data, 32) == 0) {
        w = keys[j].wrapped;
        wl = keys[j].wrapped_len;
        found = 1;
      }
    rc = ingest_effects(log, wb, parsed[i], found ? (w ? w : (const uint8_t *)"") : NULL, wl,
                        &erased, err);
  }
  if (rc == 0 && write_indexes(log, wb) != 0)
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
  if (rc == 0) {
    uint8_t sz[8];
    cl_be64(sz, last);
    meta_put(wb, log->db, CL_META_TREE_SIZE, sz, 8);
    meta_put(wb, log->db, CL_META_ROOT, root, 32);
    rc = cl_db_write(log->db, wb, err);
  }
  for (size_t i = 0; parsed && i < n; i++)
    if (parsed[i])
      clinlog__v1__record__free_unpacked(parsed[i], NULL);
  free(parsed);
  rocksdb_writebatch_destroy(wb);
  cl_hmap_clear(log->group_ids);
  log->pend_n = 0;
  if (rc) {
    /* nothing was written: forget what the chunk did in memory */
    log->frontier = saved;
    log->last_checkpoint = saved_cp;
    cl_hmap_clear(log->streams);
    cl_err e2;
    pthread_mutex_lock(&log->kr_mu);
    cl_hmap_clear(log->keyring);
    int krc = load_keyring(log, &e2);
    pthread_mutex_unlock(&log->kr_mu);
    if (krc != 0) {
      pthread_mutex_lock(&log->mu);
      log->failed = 1;
      pthread_mutex_unlock(&log->mu);
    }
    slot_release(log);
    return cl_err_prefix(err, "catch-up chunk %llu..%llu", (unsigned long long)first_seq,
                         (unsigned long long)last);
  }
  log->last_committed_ns = last_at;
  if (erased) { /* as commit_group: no cached or stored copy of the key survives */
    kc_invalidate(log);
    purge_erased_keys(log);
  }
  pthread_mutex_lock(&log->mu);
  log->size = last;
  memcpy(log->root, root, 32);
  pthread_mutex_unlock(&log->mu);
  slot_release(log);
  if (log->hook)
    log->hook(log->hook_ctx, last);
  return 0;
}

/* ----------------------------------------------------------------- reads */

/* Decodes a stored record and hands it (decrypted when possible) to fn. */
static int emit(cl_log *log, const char *val, size_t vl, cl_event_fn fn, void *ctx,
                cl_err *err) {
  Clinlog__V1__Record *rec = clinlog__v1__record__unpack(NULL, vl, (const uint8_t *)val);
  if (!rec || rec->event_id.len != 16 || rec->stream_tag.len != 32 || rec->event_hash.len != 32 ||
      rec->nonce.len != 24) {
    if (rec)
      clinlog__v1__record__free_unpacked(rec, NULL);
    return cl_err_set(err, CL_ECORRUPT, "record does not decode");
  }
  cl_event_view v = {
      .seq = rec->seq,
      .stream_version = rec->stream_version,
      .event_type = rec->event_type,
      .committed_at_ns = rec->committed_at_ns,
      .event_id = rec->event_id.data,
      .stream_tag = rec->stream_tag.data,
      .event_hash = rec->event_hash.data,
      .record = (const uint8_t *)val,
      .record_len = vl,
  };
  uint8_t *plain = NULL;
  int rc = 0;
  if (log->have_keys && rec->ciphertext.len >= crypto_aead_xchacha20poly1305_ietf_ABYTES) {
    uint8_t *key = secure_scratch(SCRATCH_READ, 32);
    uint64_t gen = 0;
    if (!key) {
      rc = cl_err_set(err, CL_ENOMEM, "out of secure memory");
    } else if (!kc_get(log, rec->stream_tag.data, key, &gen)) {
      /* not cached: the stream may be erased, or its key not yet unwrapped */
      char *w;
      size_t wl;
      rc = cl_db_get(log->db, CL_CF_KEYS, rec->stream_tag.data, 32, &w, &wl, err);
      if (rc == CL_ENOTFOUND) {
        rc = cl_err_set(err, CL_ECORRUPT, "record %llu: stream has no data key",
                        (unsigned long long)rec->seq);
      } else if (rc == 0) {
        if (wl == 0)
          v.erased = 1;
        else if (cl_unwrap_key(log->wrap_key, rec->stream_tag.data, (const uint8_t *)w, wl, key))
          rc = cl_err_set(err, CL_ECRYPTO, "record %llu: stream data key does not unwrap",
                          (unsigned long long)rec->seq);
        else
          kc_put(log, rec->stream_tag.data, key, gen);
        rocksdb_free(w);
      }
    }
    if (rc == 0 && !v.erased) {
      size_t pl = rec->ciphertext.len - crypto_aead_xchacha20poly1305_ietf_ABYTES;
      plain = malloc(pl ? pl : 1);
      uint8_t ad[48];
      cl_event_ad(rec->stream_tag.data, rec->event_id.data, ad);
      if (!plain)
        rc = cl_err_set(err, CL_ENOMEM, "out of memory");
      else if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, NULL, NULL, rec->ciphertext.data,
                                                          rec->ciphertext.len, ad, sizeof ad,
                                                          rec->nonce.data, key) != 0)
        rc = cl_err_set(err, CL_ECRYPTO, "record %llu does not decrypt",
                        (unsigned long long)rec->seq);
      else {
        v.event = plain;
        v.event_len = pl;
      }
    }
    if (key)
      sodium_memzero(key, 32);
  }
  if (rc == 0)
    rc = fn(ctx, &v, err);
  if (plain) {
    sodium_memzero(plain, v.event_len);
    free(plain);
  }
  clinlog__v1__record__free_unpacked(rec, NULL);
  return rc;
}

static int iter_error(rocksdb_iterator_t *it, cl_err *err) {
  char *rerr = NULL;
  rocksdb_iter_get_error(it, &rerr);
  return rerr ? cl_db_error(rerr, err, "scan") : 0;
}

int cl_log_read_all(cl_log *log, uint64_t from_seq, uint64_t max, cl_event_fn fn, void *ctx,
                    cl_err *err) {
  uint64_t size;
  cl_log_head(log, &size, NULL);
  if (from_seq == 0)
    from_seq = 1;
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(log->db->db, log->db->ro,
                                                      log->db->cf[CL_CF_LOG]);
  uint8_t k[8];
  cl_be64(k, from_seq);
  uint64_t count = 0;
  int rc = 0;
  for (rocksdb_iter_seek(it, (const char *)k, 8); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
    size_t kl, vl;
    const char *key = rocksdb_iter_key(it, &kl);
    if (kl != 8 || cl_get_be64((const uint8_t *)key) > size)
      break; /* not yet published */
    const char *val = rocksdb_iter_value(it, &vl);
    if ((rc = emit(log, val, vl, fn, ctx, err)) != 0)
      break;
    if (max && ++count >= max)
      break;
  }
  if (rc == 0)
    rc = iter_error(it, err);
  rocksdb_iter_destroy(it);
  return rc < 0 ? rc : 0;
}

static int emit_seq(cl_log *log, uint64_t seq, cl_event_fn fn, void *ctx, cl_err *err) {
  uint8_t k[8];
  cl_be64(k, seq);
  char *v;
  size_t vl;
  int rc = cl_db_get(log->db, CL_CF_LOG, k, 8, &v, &vl, err);
  if (rc)
    return rc == CL_ENOTFOUND
               ? cl_err_set(err, CL_ECORRUPT, "record %llu missing", (unsigned long long)seq)
               : rc;
  rc = emit(log, v, vl, fn, ctx, err);
  rocksdb_free(v);
  return rc;
}

int cl_log_read_stream(cl_log *log, const char *stream, uint64_t from_version, int backwards,
                       uint64_t max, cl_event_fn fn, void *ctx, cl_err *err) {
  uint8_t tag[32];
  int rc = cl_log_stream_tag(log, stream, tag, err);
  if (rc)
    return rc;
  uint64_t size;
  cl_log_head(log, &size, NULL);
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(log->db->db, log->db->ro,
                                                      log->db->cf[CL_CF_STREAMS]);
  uint8_t k[40];
  memcpy(k, tag, 32);
  if (backwards) {
    cl_be64(k + 32, from_version ? from_version : UINT64_MAX);
    rocksdb_iter_seek_for_prev(it, (const char *)k, 40);
  } else {
    cl_be64(k + 32, from_version ? from_version : 1);
    rocksdb_iter_seek(it, (const char *)k, 40);
  }
  uint64_t count = 0;
  int any = 0;
  for (; rocksdb_iter_valid(it); backwards ? rocksdb_iter_prev(it) : rocksdb_iter_next(it)) {
    size_t kl, vl;
    const char *key = rocksdb_iter_key(it, &kl);
    if (kl != 40 || memcmp(key, tag, 32) != 0)
      break;
    const char *val = rocksdb_iter_value(it, &vl);
    if (vl != 8) {
      rc = cl_err_set(err, CL_ECORRUPT, "stream index entry of %zu bytes", vl);
      break;
    }
    uint64_t seq = cl_get_be64((const uint8_t *)val);
    if (seq > size) {
      if (backwards)
        continue;
      break;
    }
    any = 1;
    if ((rc = emit_seq(log, seq, fn, ctx, err)) != 0)
      break;
    if (max && ++count >= max)
      break;
  }
  if (rc == 0)
    rc = iter_error(it, err);
  rocksdb_iter_destroy(it);
  if (rc < 0)
    return rc;
  if (!any && rc == 0) {
    uint64_t ver;
    if (cl_log_stream_version(log, stream, &ver, err) == 0 && ver == 0)
      return cl_err_set(err, CL_ENOTFOUND, "stream %s has no events", stream);
  }
  return 0;
}

int cl_log_get_event(cl_log *log, const uint8_t id[16], cl_event_fn fn, void *ctx, cl_err *err) {
  char *v;
  size_t vl;
  int rc = cl_db_get(log->db, CL_CF_IDS, id, 16, &v, &vl, err);
  if (rc == CL_ENOTFOUND) {
    char hex[33];
    cl_hex(id, 16, hex);
    return cl_err_set(err, CL_ENOTFOUND, "no event with id %s", hex);
  }
  if (rc)
    return rc;
  uint64_t seq = vl >= 8 ? cl_get_be64((const uint8_t *)v) : 0;
  rocksdb_free(v);
  uint64_t size;
  cl_log_head(log, &size, NULL);
  if (seq == 0 || seq > size)
    return cl_err_set(err, CL_ENOTFOUND, "event not committed");
  rc = emit_seq(log, seq, fn, ctx, err);
  return rc < 0 ? rc : 0;
}

int cl_log_stream_version(cl_log *log, const char *stream, uint64_t *version, cl_err *err) {
  uint8_t tag[32];
  int rc = cl_log_stream_tag(log, stream, tag, err);
  if (rc)
    return rc;
  uint8_t k[40];
  memcpy(k, tag, 32);
  memset(k + 32, 0xff, 8);
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(log->db->db, log->db->ro,
                                                      log->db->cf[CL_CF_STREAMS]);
  rocksdb_iter_seek_for_prev(it, (const char *)k, 40);
  *version = 0;
  if (rocksdb_iter_valid(it)) {
    size_t kl;
    const char *key = rocksdb_iter_key(it, &kl);
    if (kl == 40 && memcmp(key, tag, 32) == 0)
      *version = cl_get_be64((const uint8_t *)key + 32);
  }
  rc = iter_error(it, err);
  rocksdb_iter_destroy(it);
  return rc;
}

/* ------------------------------------------------- proofs & checkpoints */

int cl_log_root_at(cl_log *log, uint64_t size, uint8_t root[32], cl_err *err) {
  uint64_t cur;
  cl_log_head(log, &cur, NULL);
  if (size > cur)
    return cl_err_set(err, CL_EINVAL, "tree size %llu is beyond the log (%llu)",
                      (unsigned long long)size, (unsigned long long)cur);
  return cl_merkle_root(size, db_merkle_get, log->db, root, err);
}

int cl_log_prove_inclusion(cl_log *log, uint64_t seq, uint64_t size, uint8_t proof[][32],
                           size_t *n, uint8_t leaf[32], cl_err *err) {
  uint64_t cur;
  cl_log_head(log, &cur, NULL);
  if (size == 0)
    size = cur;
  if (seq == 0 || seq > size || size > cur)
    return cl_err_set(err, CL_EINVAL, "seq %llu not in a tree of size %llu (log has %llu)",
                      (unsigned long long)seq, (unsigned long long)size, (unsigned long long)cur);
  int rc = db_merkle_get(log->db, 0, cl_leaf_index(seq), leaf, err);
  if (rc)
    return rc;
  return cl_merkle_prove_inclusion(cl_leaf_index(seq), size, db_merkle_get, log->db, proof, n,
                                   err);
}

int cl_log_prove_consistency(cl_log *log, uint64_t old_size, uint64_t new_size,
                             uint8_t proof[][32], size_t *n, cl_err *err) {
  uint64_t cur;
  cl_log_head(log, &cur, NULL);
  if (new_size == 0)
    new_size = cur;
  if (old_size == 0 || old_size > new_size || new_size > cur)
    return cl_err_set(err, CL_EINVAL, "need 0 < old (%llu) <= new (%llu) <= %llu",
                      (unsigned long long)old_size, (unsigned long long)new_size,
                      (unsigned long long)cur);
  return cl_merkle_prove_consistency(old_size, new_size, db_merkle_get, log->db, proof, n, err);
}

int cl_log_get_checkpoint(cl_log *log, uint64_t max_size, char **note, size_t *len,
                          cl_err *err) {
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(log->db->db, log->db->ro,
                                                      log->db->cf[CL_CF_CHECKPOINTS]);
  uint8_t k[8];
  cl_be64(k, max_size ? max_size : UINT64_MAX);
  rocksdb_iter_seek_for_prev(it, (const char *)k, 8);
  int rc = 0;
  if (rocksdb_iter_valid(it)) {
    size_t vl;
    const char *v = rocksdb_iter_value(it, &vl);
    *note = malloc(vl + 1);
    if (!*note) {
      rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    } else {
      memcpy(*note, v, vl);
      (*note)[vl] = '\0';
      *len = vl;
    }
  } else if ((rc = iter_error(it, err)) == 0) {
    rc = cl_err_set(err, CL_ENOTFOUND, "no checkpoint stored");
  }
  rocksdb_iter_destroy(it);
  return rc;
}

int cl_log_checkpoint(cl_log *log, char **note, size_t *len, cl_err *err) {
  if (!log->have_log_key)
    return cl_err_set(err, CL_EDENIED, "this node has no log key to sign checkpoints");
  if (log->o.read_only)
    return cl_err_set(err, CL_EDENIED, "log is open read-only");
  /* take the commit slot so the head cannot move while we sign and store */
  pthread_mutex_lock(&log->mu);
  while (log->committing)
    pthread_cond_wait(&log->cv, &log->mu);
  log->committing = 1;
  uint64_t size = log->size;
  uint8_t root[32];
  memcpy(root, log->root, 32);
  pthread_mutex_unlock(&log->mu);
  int rc = 0;
  if (size != log->last_checkpoint) {
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    rc = put_checkpoint(log, wb, size, root, err);
    if (rc == 0)
      rc = cl_db_write(log->db, wb, err);
    rocksdb_writebatch_destroy(wb);
    if (rc == 0)
      log->last_checkpoint = size;
  }
  pthread_mutex_lock(&log->mu);
  log->committing = 0;
  pthread_cond_broadcast(&log->cv);
  pthread_mutex_unlock(&log->mu);
  if (rc)
    return rc;
  return cl_log_get_checkpoint(log, size, note, len, err);
}

/* ---------------------------------------------------------------- create */

/* Packs `ev` with a fresh id and appends it, signed by `s`. */
static int append_one(cl_log *log, Clinlog__V1__Event *ev, const cl_signer *s, cl_err *err) {
  uint8_t id[16];
  randombytes_buf(id, sizeof id);
  id[6] = (id[6] & 0x0f) | 0x40; /* UUIDv4 */
  id[8] = (id[8] & 0x3f) | 0x80;
  ev->event_id.data = id;
  ev->event_id.len = 16;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  int64_t ns = now_ns();
  ts.seconds = ns / 1000000000;
  ts.nanos = (int32_t)(ns % 1000000000);
  ev->occurred_at = &ts;
  size_t len = clinlog__v1__event__get_packed_size(ev);
  uint8_t *buf = malloc(len);
  if (!buf)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  clinlog__v1__event__pack(ev, buf);
  uint8_t hash[32];
  cl_event_hash(buf, len, hash);
  Clinlog__V1__Signature sig = CLINLOG__V1__SIGNATURE__INIT, *sigs[1] = {&sig};
  uint8_t sigbytes[CL_SIG_SIZE];
  cl_sign_event(s, hash, sigbytes);
  sig.key_id.data = (uint8_t *)s->pk;
  sig.key_id.len = 32;
  sig.signature.data = sigbytes;
  sig.signature.len = CL_SIG_SIZE;
  ProtobufCBinaryData evb = {len, buf};
  Clinlog__V1__StreamExpectation x = CLINLOG__V1__STREAM_EXPECTATION__INIT, *xs[1] = {&x};
  Clinlog__V1__ExpectedVersion ex = CLINLOG__V1__EXPECTED_VERSION__INIT;
  ex.kind = CLINLOG__V1__EXPECTED_VERSION__KIND__NO_STREAM;
  x.stream = ev->stream;
  x.expected = &ex;
  Clinlog__V1__AppendBatch b = CLINLOG__V1__APPEND_BATCH__INIT;
  b.n_events = 1;
  b.events = &evb;
  b.n_signatures = 1;
  b.signatures = sigs;
  b.n_expectations = 1;
  b.expectations = xs;
  cl_append_result r;
  int rc = cl_log_append(log, &b, &r, err);
  if (rc == 0 || rc == CL_ECONFLICT)
    cl_append_result_free(&r);
  free(buf);
  return rc;
}

int cl_log_create(const cl_log_options *o, const cl_log_genesis *g, cl_err *err) {
  if (!o || !o->dir || !g || (!g->replica && (!g->admin_principal || !g->admin)))
    return cl_err_set(err, CL_EINVAL, "create: dir, admin principal and admin key required");
  if (g->replica && (!o->master_key_path || !o->log_key_path || !g->origin))
    return cl_err_set(err, CL_EINVAL, "create replica: the cluster's key files and origin required");
  int rc = cl_crypto_init(err);
  if (rc)
    return rc;
  char path[4096], db[4096];
  path_join(db, sizeof db, o->dir, "db");
  struct stat st;
  if (stat(db, &st) == 0)
    return cl_err_set(err, CL_EEXIST, "%s: already holds a clinlog log", o->dir);
  if (mkdir(o->dir, 0700) != 0 && errno != EEXIST)
    return cl_err_set(err, CL_EIO, "%s: %s", o->dir, strerror(errno));
  path_join(path, sizeof path, o->dir, "keys");
  if (mkdir(path, 0700) != 0 && errno != EEXIST)
    return cl_err_set(err, CL_EIO, "%s: %s", path, strerror(errno));

  /* keys: generate unless the options name existing files */
  cl_signer logkey = {0};
  cl_master_key mk = {0};
  const char *mkp = o->master_key_path, *lkp = o->log_key_path;
  char mkbuf[4096], lkbuf[4096];
  if (!mkp) {
    path_join(mkbuf, sizeof mkbuf, o->dir, "keys/master.key");
    mkp = mkbuf;
  }
  if (!lkp) {
    path_join(lkbuf, sizeof lkbuf, o->dir, "keys/log.key");
    lkp = lkbuf;
  }
  if (stat(mkp, &st) != 0) {
    if ((rc = cl_master_key_generate(&mk, err)) || (rc = cl_master_key_save(&mk, mkp, err)))
      goto fail_keys;
  }
  if (stat(lkp, &st) != 0) {
    if ((rc = cl_signer_generate(&logkey, err)) || (rc = cl_signer_save(&logkey, lkp, err)))
      goto fail_keys;
  } else if ((rc = cl_signer_load(&logkey, lkp, err))) {
    goto fail_keys;
  }

  cl_log *log = NULL;
  if ((rc = open_common(o, 1, &log, err)))
    goto fail_keys;
  char hex[65];
  cl_hex(logkey.pk, 32, hex);
  if (g->origin && strlen(g->origin) >= sizeof log->origin) {
    rc = cl_err_set(err, CL_EINVAL, "origin: longer than %zu bytes", sizeof log->origin - 1);
    goto fail_log;
  }
  if (g->origin && g->origin[0])
    snprintf(log->origin, sizeof log->origin, "%s", g->origin);
  else
    snprintf(log->origin, sizeof log->origin, "clinlog.local/%.16s", hex);
  if (strpbrk(log->origin, " \n+") || !log->origin[0]) {
    rc = cl_err_set(err, CL_EINVAL, "origin: must be non-empty without spaces, '+' or newlines");
    goto fail_log;
  }
  memcpy(log->log_pk, logkey.pk, 32);
  rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
  uint8_t fmt[4] = {0, 0, 0, CL_FORMAT_VERSION}, zero[8] = {0}, root[32];
  cl_merkle_frontier_root(&log->frontier, root);
  meta_put(wb, log->db, CL_META_FORMAT, fmt, 4);
  meta_put(wb, log->db, CL_META_ORIGIN, log->origin, strlen(log->origin));
  meta_put(wb, log->db, CL_META_LOG_PK, log->log_pk, 32);
  meta_put(wb, log->db, CL_META_TREE_SIZE, zero, 8);
  meta_put(wb, log->db, CL_META_ROOT, root, 32);
  meta_put(wb, log->db, CL_META_KEY_CHECK, log->key_check, 16);
  rc = cl_db_write(log->db, wb, err);
  rocksdb_writebatch_destroy(wb);
  if (rc)
    goto fail_log;
  memcpy(log->root, root, 32);
  if (g->replica) /* the events come from the cluster */
    goto fail_log; /* (rc is 0: closes and returns success) */

  Clinlog__V1__RecordedBy by = CLINLOG__V1__RECORDED_BY__INIT;
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  Clinlog__V1__LogCreated lc = CLINLOG__V1__LOG_CREATED__INIT;
  by.principal_id = CL_LOG_PRINCIPAL;
  by.role = CL_ROLE_LOG;
  ev.stream = "$log";
  ev.recorded_by = &by;
  ev.body_case = CLINLOG__V1__EVENT__BODY_LOG_CREATED;
  ev.log_created = &lc;
  lc.origin = log->origin;
  lc.log_public_key.data = logkey.pk;
  lc.log_public_key.len = 32;
  lc.format = CL_FORMAT_VERSION;
  lc.organization = (char *)(g->organization ? g->organization : "");
  if ((rc = append_one(log, &ev, &logkey, err)))
    goto fail_log;

  Clinlog__V1__PrincipalRegistered pr = CLINLOG__V1__PRINCIPAL_REGISTERED__INIT;
  char stream[CL_STREAM_MAX + 1];
  snprintf(stream, sizeof stream, "$principal-%s", g->admin_principal);
  char *roles[1] = {CL_ROLE_ADMIN};
  pr.principal_id = (char *)g->admin_principal;
  pr.display_name = (char *)(g->admin_name ? g->admin_name : g->admin_principal);
  pr.n_roles = 1;
  pr.roles = roles;
  pr.public_key.data = (uint8_t *)g->admin->pk;
  pr.public_key.len = 32;
  pr.kind = "person";
  by.principal_id = (char *)g->admin_principal;
  by.role = CL_ROLE_ADMIN;
  ev.stream = stream;
  ev.body_case = CLINLOG__V1__EVENT__BODY_PRINCIPAL_REGISTERED;
  ev.principal_registered = &pr;
  if ((rc = append_one(log, &ev, g->admin, err)))
    goto fail_log;
  char *note;
  size_t nl;
  if ((rc = cl_log_checkpoint(log, &note, &nl, err)))
    goto fail_log;
  free(note);

  /* log.pub: what an auditor needs to check checkpoints */
  path_join(path, sizeof path, o->dir, "log.pub");
  FILE *f = fopen(path, "w");
  if (!f) {
    rc = cl_err_set(err, CL_EIO, "%s: %s", path, strerror(errno));
    goto fail_log;
  }
  char b64[64];
  sodium_bin2base64(b64, sizeof b64, logkey.pk, 32, sodium_base64_VARIANT_ORIGINAL);
  fprintf(f, "origin: %s\nkey: ed25519:%s\n", log->origin, b64);
  fclose(f);
  rc = 0;
fail_log:
  cl_log_close(log);
fail_keys:
  cl_signer_free(&logkey);
  cl_master_key_free(&mk);
  if (rc)
    cl_err_prefix(err, "create %s", o->dir);
  return rc;
}

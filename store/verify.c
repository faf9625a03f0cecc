/* Replay verification; see verify.h. Independent of log.c's write path: it
 * recomputes everything from the records and compares with what is stored. */
#include "store/verify.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "clinlog/v1/event.pb-c.h"
#include "clinlog/v1/record.pb-c.h"
#include "store/alloc.h"
#include "store/checkpoint.h"
#include "store/crypt.h"
#include "store/db.h"
#include "store/event.h"
#include "store/hmap.h"
#include "store/keyring.h"
#include "store/keys.h"
#include "store/logkey.h"
#include "store/masterkey.h"
#include "store/merkle.h"
#include "store/record.h"

typedef struct vstate {
  const cl_verify_options *o;
  cl_verify_report *rep;
  cl_db *db;
  uint8_t *secrets; /* the keys (masterkey.h CL_MK_*), then a data key scratch[32] */
  int content;
  cl_logkeys trusted; /* the log keys trusted, with the tree sizes each signs */
  char origin[256];
  cl_merkle_frontier f;
  cl_hmap *streams;    /* tag -> u64 last version */
  cl_hmap *ids;        /* event id -> u64 seq */
  cl_keyring *keyring; /* as replayed, with the write path's fold (keyring.h) */
  /* pending batch */
  uint8_t (*bhashes)[32];
  uint32_t bsize, bcount;
  /* checkpoints, sorted by size */
  struct cp {
    uint64_t size;
    char *note;
    size_t len;
  } * cps;
  size_t ncps, next_cp;
  cl_checkpoint ext;
  int have_ext;
  /* keyring changes of the batch being replayed: like the write path, they
   * are checked against the keyring before the batch and take effect after
   * it, stamped with its last seq */
  cl_keyring_change *pend;
  size_t npend, cappend;
} vstate;

static int fail(vstate *v, uint64_t seq, const char *fmt, ...) CL_PRINTF(3, 4);

static int pend_push(vstate *v, const cl_keyring_change *c) {
  if (v->npend == v->cappend) {
    size_t nc = v->cappend ? v->cappend * 2 : 8;
    cl_keyring_change *n = cl_realloc(v->pend, nc * sizeof *n);
    if (!n)
      return -1;
    v->pend = n;
    v->cappend = nc;
  }
  v->pend[v->npend++] = *c;
  return 0;
}

static int pend_apply(vstate *v, uint64_t last_seq) {
  cl_err e;
  for (size_t j = 0; j < v->npend; j++)
    if (cl_keyring_check(v->keyring, v->pend, j, &e) != 0)
      return fail(v, last_seq, "record %llu: keyring change refused: %s",
                  (unsigned long long)last_seq, e.msg);
  for (size_t j = 0; j < v->npend; j++)
    if (cl_keyring_apply(v->keyring, &v->pend[j], last_seq, NULL, &e) != 0)
      return fail(v, last_seq, "record %llu: %s", (unsigned long long)last_seq, e.msg);
  v->npend = 0;
  return 0;
}

static int fail(vstate *v, uint64_t seq, const char *fmt, ...) {
  if (!v->rep->ok)
    return 1;
  v->rep->ok = 0;
  v->rep->fail_seq = seq;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(v->rep->fail_what, sizeof v->rep->fail_what, fmt, ap);
  va_end(ap);
  return 1;
}

static int load_checkpoints(vstate *v, cl_err *err) {
  rocksdb_iterator_t *it =
      rocksdb_create_iterator_cf(v->db->db, v->db->ro, v->db->cf[CL_CF_CHECKPOINTS]);
  size_t cap = 0;
  int rc = 0;
  for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
    size_t kl, vl;
    const char *k = rocksdb_iter_key(it, &kl);
    const char *val = rocksdb_iter_value(it, &vl);
    if (v->ncps == cap) {
      cap = cap ? cap * 2 : 64;
      struct cp *n = cl_realloc(v->cps, cap * sizeof *n);
      if (!n) {
        rc = cl_err_set(err, CL_ENOMEM, "out of memory");
        break;
      }
      v->cps = n;
    }
    struct cp *c = &v->cps[v->ncps];
    c->size = kl == 8 ? cl_get_be64((const uint8_t *)k) : UINT64_MAX;
    c->note = cl_malloc(vl + 1);
    if (!c->note) {
      rc = cl_err_set(err, CL_ENOMEM, "out of memory");
      break;
    }
    memcpy(c->note, val, vl);
    c->note[vl] = '\0';
    c->len = vl;
    v->ncps++;
  }
  char *rerr = NULL;
  rocksdb_iter_get_error(it, &rerr);
  rocksdb_iter_destroy(it);
  if (rerr)
    return cl_db_error(rerr, err, "checkpoint scan");
  return rc;
}

/* 1 if the keyring replayed so far makes pk a log key at tree size `size`
 * (logkey.h: registered at or before it, revoked at or after it). */
static int replayed_log_key_at(vstate *v, const uint8_t pk[32], uint64_t size) {
  const cl_keyring_entry *e = cl_keyring_get(v->keyring, pk);
  return e && !strcmp(e->principal, CL_LOG_PRINCIPAL) && e->registered_seq <= size &&
         (!e->revoked_seq || size <= e->revoked_seq);
}

/* 1 if the auditor trusts pk as the log key at tree size `size`. */
static int trusted_at(vstate *v, const uint8_t pk[32], uint64_t size) {
  const cl_logkey *k = cl_logkeys_find(&v->trusted, pk);
  return k && cl_logkey_valid_at(k, size);
}

/* Checks every stored checkpoint of size `size` against `root`. */
static int check_checkpoints_at(vstate *v, uint64_t size, const uint8_t root[32]) {
  while (v->next_cp < v->ncps && v->cps[v->next_cp].size <= size) {
    struct cp *c = &v->cps[v->next_cp++];
    cl_checkpoint cp;
    cl_err e;
    uint8_t signer[32];
    if (cl_checkpoint_verify_logkeys(c->note, c->len, v->origin, &v->trusted, &cp, signer, &e) !=
        0)
      return fail(v, c->size, "checkpoint at size %llu: %s%s", (unsigned long long)c->size, e.msg,
                  e.code == CL_EUNKNOWNKEY ? " (was the log key rotated? the log's log.pub lists "
                                             "every log key)"
                                           : "");
    if (v->content && !replayed_log_key_at(v, signer, c->size))
      return fail(v, c->size,
                  "checkpoint at size %llu: signed by %02x%02x%02x%02x..., which the log's own "
                  "keyring history does not make a log key at that size",
                  (unsigned long long)c->size, signer[0], signer[1], signer[2], signer[3]);
    if (strcmp(cp.origin, v->origin) != 0)
      return fail(v, c->size, "checkpoint at size %llu names origin \"%s\", the log is \"%s\"",
                  (unsigned long long)c->size, cp.origin, v->origin);
    if (cp.size != c->size)
      return fail(v, c->size, "checkpoint stored under size %llu says size %llu",
                  (unsigned long long)c->size, (unsigned long long)cp.size);
    if (c->size != size || sodium_memcmp(cp.root, root, 32) != 0)
      return fail(v, c->size, "checkpoint at size %llu: root does not match the records",
                  (unsigned long long)c->size);
    v->rep->checkpoints++;
  }
  if (v->have_ext && v->ext.size == size) {
    if (sodium_memcmp(v->ext.root, root, 32) != 0)
      return fail(v, size, "external checkpoint at size %llu: root does not match the records",
                  (unsigned long long)size);
    v->rep->checkpoints++;
  }
  return 0;
}

static int verify_signatures(vstate *v, const Clinlog__V1__Record *r) {
  if (r->batch_size == 0) {
    if (!r->signature || r->signature->key_id.len != 32 || r->signature->signature.len != 64)
      return fail(v, r->seq, "record %llu: missing or malformed signature",
                  (unsigned long long)r->seq);
    if (cl_verify_event(r->signature->key_id.data, r->event_hash.data,
                        r->signature->signature.data) != 0)
      return fail(v, r->seq, "record %llu: signature does not verify", (unsigned long long)r->seq);
    v->rep->signatures++;
    return 0;
  }
  if (r->batch_index != v->bcount || (v->bcount && r->batch_size != v->bsize))
    return fail(v, r->seq, "record %llu: batch position %u/%u out of order",
                (unsigned long long)r->seq, r->batch_index, r->batch_size);
  if (v->bcount == 0) {
    cl_free(v->bhashes);
    v->bhashes = cl_malloc((size_t)r->batch_size * 32);
    if (!v->bhashes)
      return fail(v, r->seq, "out of memory");
    v->bsize = r->batch_size;
  }
  memcpy(v->bhashes[v->bcount++], r->event_hash.data, 32);
  if (v->bcount < v->bsize) {
    if (r->signature)
      return fail(v, r->seq, "record %llu: signature before the end of its batch",
                  (unsigned long long)r->seq);
    return 0;
  }
  v->bcount = 0;
  if (!r->signature || r->signature->key_id.len != 32 || r->signature->signature.len != 64)
    return fail(v, r->seq, "record %llu: batch signature missing", (unsigned long long)r->seq);
  if (cl_verify_batch(r->signature->key_id.data, (const uint8_t(*)[32])v->bhashes, v->bsize,
                      r->signature->signature.data) != 0)
    return fail(v, r->seq, "records %llu-%llu: batch signature does not verify",
                (unsigned long long)(r->seq - v->bsize + 1), (unsigned long long)r->seq);
  v->rep->signatures++;
  return 0;
}

/* The nodes one leaf completes, as log.c stores them. */
typedef struct entry {
  unsigned levels;
  uint8_t hashes[64][32];
} entry;

static int collect_put(void *ctx, unsigned level, uint64_t index, const uint8_t hash[32],
                       cl_err *err) {
  (void)index, (void)err;
  entry *e = ctx;
  if (level >= 64)
    return CL_EINVAL;
  memcpy(e->hashes[level], hash, 32);
  if (level + 1 > e->levels)
    e->levels = level + 1;
  return 0;
}

static const uint8_t *signer_of(vstate *v, const Clinlog__V1__Record *r) {
  (void)v;
  return r->signature ? r->signature->key_id.data : NULL;
}

/* Decrypts a record and replays its keyring effect (keyring.h: the same
 * fold the write path uses). */
static int check_content(vstate *v, const Clinlog__V1__Record *r, uint8_t *batch_signer) {
  char *w;
  size_t wl;
  cl_err e;
  int rc = cl_db_get(v->db, CL_CF_KEYS, r->stream_tag.data, 32, &w, &wl, &e);
  if (rc == CL_ENOTFOUND)
    return fail(v, r->seq, "record %llu: its stream has no data key", (unsigned long long)r->seq);
  if (rc)
    return fail(v, r->seq, "record %llu: %s", (unsigned long long)r->seq, e.msg);
  if (wl == 0) {
    rocksdb_free(w);
    v->rep->erased++;
    return 0;
  }
  uint8_t *dk = v->secrets + CL_MK_SIZE;
  rc = cl_unwrap_key(v->secrets + CL_MK_WRAP, r->stream_tag.data, (const uint8_t *)w, wl, dk);
  rocksdb_free(w);
  if (rc)
    return fail(v, r->seq, "record %llu: stream data key does not unwrap",
                (unsigned long long)r->seq);
  uint8_t *plain;
  size_t pl;
  rc = cl_event_open(dk, r->stream_tag.data, r->event_id.data, r->nonce.data, r->ciphertext.data,
                     r->ciphertext.len, &plain, &pl);
  if (rc == CL_ENOMEM)
    return fail(v, r->seq, "out of memory");
  if (rc)
    return fail(v, r->seq, "record %llu: does not decrypt", (unsigned long long)r->seq);
  uint8_t hash[32];
  cl_event_hash(plain, pl, hash);
  Clinlog__V1__Event *ev = NULL;
  int out = 0;
  if (sodium_memcmp(hash, r->event_hash.data, 32) != 0) {
    out = fail(v, r->seq, "record %llu: event does not match its hash", (unsigned long long)r->seq);
    goto done;
  }
  if (cl_event_decode(plain, pl, &ev, &e) != 0) {
    out = fail(v, r->seq, "record %llu: %s", (unsigned long long)r->seq, e.msg);
    goto done;
  }
  uint8_t tag[32];
  cl_stream_tag(v->secrets + CL_MK_TAG, ev->stream, strlen(ev->stream), tag);
  if (memcmp(tag, r->stream_tag.data, 32) != 0 || memcmp(ev->event_id.data, r->event_id.data, 16) ||
      (uint32_t)ev->body_case != r->event_type) {
    out = fail(v, r->seq, "record %llu: header does not match the event (stream, id or type)",
               (unsigned long long)r->seq);
    goto done;
  }
  v->rep->decrypted++;
  cl_keyring_change c;
  int has_change = cl_keyring_change_of(ev, 0, &c, &e);
  if (has_change < 0) {
    out = fail(v, r->seq, "record %llu: %s", (unsigned long long)r->seq, e.msg);
    goto done;
  }
  const uint8_t *pk = batch_signer;
  if (r->seq <= 2) {
    /* the genesis: LogCreated signed by the log key it names, then the
     * self-signed registration of an admin */
    int genesis = pk && has_change &&
                  cl_keyring_genesis_step(r->seq - 1, ev->body_case, &c, 1, pk) &&
                  (r->seq == 2 || trusted_at(v, pk, 1));
    if (!genesis) {
      out = fail(v, r->seq,
                 r->seq == 1 ? "record 1: LogCreated is not signed by the log key"
                             : "record 2: not the self-signed registration of an admin");
      goto done;
    }
  } else if (!pk) {
    out = fail(v, r->seq, "record %llu: signed by no key", (unsigned long long)r->seq);
    goto done;
  } else if (cl_keyring_check_signer(v->keyring, pk, ev->recorded_by->principal_id, r->seq, NULL,
                                     &e) != 0) {
    out = fail(v, r->seq, "record %llu: %s", (unsigned long long)r->seq,
               e.code == CL_EUNKNOWNKEY ? "signed by a key not registered at that point" : e.msg);
    goto done;
  }
  if (has_change && pend_push(v, &c))
    out = fail(v, r->seq, "out of memory");
done:
  if (ev)
    clinlog__v1__event__free_unpacked(ev, NULL);
  sodium_memzero(plain, pl);
  cl_free(plain);
  return out;
}

static int replay(vstate *v, cl_err *err) {
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(v->db->db, v->db->ro, v->db->cf[CL_CF_LOG]);
  rocksdb_iterator_t *mt =
      rocksdb_create_iterator_cf(v->db->db, v->db->ro, v->db->cf[CL_CF_MERKLE]);
  rocksdb_iter_seek_to_first(mt);
  uint64_t expect = 1;
  int stop = 0;
  /* content checks need every record of a batch to know its signer, which
   * only the batch's last record carries: hold the batch's records. */
  Clinlog__V1__Record **held = NULL;
  size_t nheld = 0, capheld = 0;
  uint8_t root[32];
  rocksdb_iter_seek_to_first(it);
  for (; !stop && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
    size_t kl, vl;
    const char *k = rocksdb_iter_key(it, &kl);
    const char *val = rocksdb_iter_value(it, &vl);
    if (kl != 8) {
      stop = fail(v, expect, "log key of %zu bytes after record %llu", kl,
                  (unsigned long long)(expect - 1));
      break;
    }
    uint64_t seq = cl_get_be64((const uint8_t *)k);
    if (seq != expect) {
      stop = fail(v, expect, seq > expect ? "record %llu is missing" : "record %llu out of order",
                  (unsigned long long)expect);
      break;
    }
    Clinlog__V1__Record *r = clinlog__v1__record__unpack(NULL, vl, (const uint8_t *)val);
    if (!r) {
      stop = fail(v, seq, "record %llu does not decode", (unsigned long long)seq);
      break;
    }
    int keep = 0;
    if (r->seq != seq || r->format != 1 || r->stream_tag.len != 32 || r->event_id.len != 16 ||
        r->event_hash.len != 32 || r->nonce.len != 24) {
      stop = fail(v, seq,
                  r->seq != seq ? "record stored at %llu says seq %llu"
                                : "record %llu: malformed header (%llu)",
                  (unsigned long long)seq, (unsigned long long)r->seq);
      goto next;
    }
    uint8_t leaf[32];
    cl_merkle_leaf_hash((const uint8_t *)val, vl, leaf);
    /* the stored tree: the entry of this leaf holds the leaf and every node
     * it completed; recompute them all */
    size_t mkl, mvl;
    const char *mkey = rocksdb_iter_valid(mt) ? rocksdb_iter_key(mt, &mkl) : NULL;
    if (!mkey || mkl != 8 || cl_get_be64((const uint8_t *)mkey) != seq - 1) {
      stop = fail(v, seq, "Merkle entry for record %llu is missing", (unsigned long long)seq);
      goto next;
    }
    const char *mval = rocksdb_iter_value(mt, &mvl);
    if (mvl < 32 || sodium_memcmp(mval, leaf, 32) != 0) {
      stop = fail(v, seq, "record %llu does not match its stored Merkle leaf (record altered)",
                  (unsigned long long)seq);
      goto next;
    }
    entry ent;
    ent.levels = 0;
    cl_err e;
    cl_merkle_frontier_append(&v->f, leaf, collect_put, &ent, &e);
    if (mvl != 32 * (size_t)ent.levels || sodium_memcmp(mval, ent.hashes, mvl) != 0) {
      stop = fail(v, seq,
                  "stored Merkle nodes completed by record %llu differ from "
                  "the records",
                  (unsigned long long)seq);
      goto next;
    }
    rocksdb_iter_next(mt);
    /* stream versions are gap-free, ids unique */
    uint64_t *last = cl_hmap_get(v->streams, r->stream_tag.data);
    uint64_t prev = last ? *last : 0;
    if (r->stream_version != prev + 1) {
      stop = fail(v, seq, "record %llu: stream version %llu follows %llu", (unsigned long long)seq,
                  (unsigned long long)r->stream_version, (unsigned long long)prev);
      goto next;
    }
    uint64_t ver = r->stream_version;
    if (!cl_hmap_put(v->streams, r->stream_tag.data, &ver) ||
        cl_hmap_get(v->ids, r->event_id.data)) {
      stop = fail(v, seq, "record %llu: event id used twice", (unsigned long long)seq);
      goto next;
    }
    cl_hmap_put(v->ids, r->event_id.data, &seq);
    if (!v->o->hashes_only) {
      if ((stop = verify_signatures(v, r)))
        goto next;
      if (v->content) {
        if (capheld == nheld) {
          capheld = capheld ? capheld * 2 : 64;
          Clinlog__V1__Record **nh = cl_realloc(held, capheld * sizeof *nh);
          if (!nh) {
            stop = fail(v, seq, "out of memory");
            goto next;
          }
          held = nh;
        }
        held[nheld++] = r;
        keep = 1;
        if (r->batch_size == 0 || r->batch_index + 1 == r->batch_size) {
          uint8_t signer[32];
          const uint8_t *s = signer_of(v, r);
          if (s)
            memcpy(signer, s, 32);
          for (size_t i = 0; i < nheld && !stop; i++)
            stop = check_content(v, held[i], s ? signer : NULL);
          if (!stop)
            stop = pend_apply(v, r->seq);
          for (size_t i = 0; i < nheld; i++)
            clinlog__v1__record__free_unpacked(held[i], NULL);
          nheld = 0;
        }
        if (stop)
          goto next;
      }
    }
    /* the root only where a checkpoint needs it: it costs log2(n) hashes */
    if ((v->next_cp < v->ncps && v->cps[v->next_cp].size <= seq) ||
        (v->have_ext && v->ext.size == seq)) {
      cl_merkle_frontier_root(&v->f, root);
      stop = check_checkpoints_at(v, seq, root);
    }
    v->rep->events = seq;
    expect = seq + 1;
    if (v->o->progress && (seq & 8191) == 0)
      v->o->progress(v->o->progress_ctx, seq, v->rep->tree_size);
  next:
    if (!keep)
      clinlog__v1__record__free_unpacked(r, NULL);
  }
  for (size_t i = 0; i < nheld; i++)
    clinlog__v1__record__free_unpacked(held[i], NULL);
  cl_free(held);
  int rc = 0;
  char *rerr = NULL;
  rocksdb_iter_get_error(it, &rerr);
  if (rerr)
    rc = cl_db_error(rerr, err, "log scan");
  rocksdb_iter_destroy(it);
  rocksdb_iter_destroy(mt);
  return rc;
}

static int verify_once(const cl_verify_options *o, cl_verify_report *rep, cl_err *err) {
  memset(rep, 0, sizeof *rep);
  rep->ok = 1;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int rc = cl_crypto_init(err);
  if (rc)
    return rc;
  vstate v;
  memset(&v, 0, sizeof v);
  v.o = o;
  v.rep = rep;
  char path[4096];
  struct stat st;
  snprintf(path, sizeof path, "%s/db", o->dir);
  if (stat(path, &st) != 0)
    return cl_err_set(err, CL_ENOTFOUND, "%s: not a clinlog data directory (no db/)", o->dir);
  if ((rc = cl_db_open(path, 0, 1, 0, &v.db, err)))
    return rc;
  v.streams = cl_hmap_new(32, 8);
  v.ids = cl_hmap_new(16, 8);
  v.keyring = cl_keyring_new();
  v.secrets = sodium_malloc(CL_MK_SIZE + 32);
  if (!v.streams || !v.ids || !v.keyring || !v.secrets) {
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    goto out;
  }
  cl_merkle_frontier_init(&v.f);
  /* meta */
  char *val;
  size_t vl;
  if ((rc = cl_db_get(v.db, CL_CF_META, CL_META_TREE_SIZE, strlen(CL_META_TREE_SIZE), &val, &vl,
                      err)) == 0) {
    rep->tree_size = vl == 8 ? cl_get_be64((const uint8_t *)val) : 0;
    rocksdb_free(val);
  } else {
    fail(&v, 0, "meta: tree_size missing");
  }
  if (cl_db_get(v.db, CL_CF_META, CL_META_ORIGIN, strlen(CL_META_ORIGIN), &val, &vl, err) == 0) {
    snprintf(v.origin, sizeof v.origin, "%.*s", (int)vl, val);
    rocksdb_free(val);
  }
  /* the log keys: the auditor's, else the log's own history (its stored
   * keyring; before any rotation that is meta's one key) */
  if (o->log_keys) {
    v.trusted = *o->log_keys;
  } else if (o->log_public_key) {
    v.trusted.n = 1;
    memcpy(v.trusted.k[0].pk, o->log_public_key, 32);
    v.trusted.k[0].from = 1;
  } else if ((rc = cl_logkeys_of_db(v.db, &v.trusted, err))) {
    goto out;
  }
  if (!v.trusted.n &&
      cl_db_get(v.db, CL_CF_META, CL_META_LOG_PK, strlen(CL_META_LOG_PK), &val, &vl, err) == 0) {
    if (vl == 32) {
      v.trusted.n = 1;
      memcpy(v.trusted.k[0].pk, val, 32);
      v.trusted.k[0].from = 1;
    }
    rocksdb_free(val);
  }
  if (o->checkpoint) {
    cl_err e;
    if (cl_checkpoint_verify_logkeys(o->checkpoint, o->checkpoint_len, v.origin, &v.trusted,
                                     &v.ext, NULL, &e) != 0)
      fail(&v, 0, "external checkpoint: %s", e.msg);
    else if (strcmp(v.ext.origin, v.origin) != 0)
      fail(&v, 0, "external checkpoint is for origin \"%s\", this log is \"%s\"", v.ext.origin,
           v.origin);
    else
      v.have_ext = 1;
  }
  /* keys, when the auditor has them */
  if (!o->hashes_only) {
    char mkp[4096];
    const char *p = o->master_key_path;
    if (!p) {
      snprintf(mkp, sizeof mkp, "%s/keys/master.key", o->dir);
      p = mkp;
    }
    /* a read-only look: a key file swap a crash interrupted is used, not
     * finished (masterkey.h) */
    cl_masterkey_info info;
    cl_err e;
    int lrc = cl_masterkey_load(v.db, p, 0, v.secrets, &info, &e);
    if (lrc == 0) {
      v.content = 1;
    } else if (o->master_key_path || lrc != CL_ENOTFOUND) {
      /* a key that is there but unusable (another log's, retired by a
       * rotation) must not silently skip the checks */
      rc = cl_err_set(err, e.code, "%s", e.msg);
      goto out;
    }
  }
  rep->content_checked = v.content;
  if ((rc = load_checkpoints(&v, err)))
    goto out;
  rc = 0;
  if (rep->ok && (rc = replay(&v, err)))
    goto out;
  cl_merkle_frontier_root(&v.f, rep->root);
  if (rep->ok) {
    uint64_t n = v.f.size;
    if (n != rep->tree_size)
      fail(&v, n + 1, "log holds %llu records but its head says %llu%s", (unsigned long long)n,
           (unsigned long long)rep->tree_size, n < rep->tree_size ? " (truncated)" : "");
    else if (v.next_cp < v.ncps)
      fail(&v, v.cps[v.next_cp].size,
           "checkpoint at size %llu is beyond the %llu records (log truncated)",
           (unsigned long long)v.cps[v.next_cp].size, (unsigned long long)n);
    else if (v.have_ext && v.ext.size > n)
      fail(&v, n + 1,
           "external checkpoint at size %llu is beyond the %llu records (log "
           "truncated)",
           (unsigned long long)v.ext.size, (unsigned long long)n);
    else if (v.bcount)
      fail(&v, n, "last batch is incomplete (%u of %u records)", v.bcount, v.bsize);
  }
  if (rep->ok &&
      cl_db_get(v.db, CL_CF_META, CL_META_ROOT, strlen(CL_META_ROOT), &val, &vl, err) == 0) {
    if (vl != 32 || sodium_memcmp(val, rep->root, 32) != 0)
      fail(&v, 0, "stored root does not match the recomputed root");
    rocksdb_free(val);
  }
  if (o->progress)
    o->progress(o->progress_ctx, rep->events, rep->tree_size);
  cl_err_clear(err);
  rc = 0;
out:
  for (size_t i = 0; i < v.ncps; i++)
    cl_free(v.cps[i].note);
  cl_free(v.cps);
  cl_free(v.bhashes);
  cl_free(v.pend);
  cl_hmap_free(v.streams);
  cl_hmap_free(v.ids);
  cl_keyring_free(v.keyring);
  if (v.secrets)
    sodium_free(v.secrets);
  cl_db_close(v.db);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  rep->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  return rc;
}

int cl_verify_dir(const cl_verify_options *o, cl_verify_report *rep, cl_err *err) {
  /* Next to a running server, the read-only view can miss data the server
   * moves between its write-ahead log and table files while the view
   * opens (a flush or compaction, e.g. the purge after an erasure). Such a
   * miss looks like a divergence, so on a live directory a divergence is
   * confirmed by replaying again before it is reported. */
  int rc = 0;
  for (int attempt = 0; attempt < 3; attempt++) {
    rc = verify_once(o, rep, err);
    if (rc || rep->ok || !cl_db_in_use(o->dir))
      break;
    struct timespec ts = {0, 200 * 1000000};
    nanosleep(&ts, NULL);
  }
  return rc;
}

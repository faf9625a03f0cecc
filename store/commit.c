/* Commit: the serialized half of an append. Prepared batches queue up; the
 * first waiting thread takes the commit slot and commits everything queued
 * as one group: each batch is checked against the state left by everything
 * ordered before it (keyring, idempotency, erasure, data keys, expected
 * versions), gets its sequence numbers, stream versions and Merkle leaves,
 * and the whole group is written in one synced RocksDB WriteBatch together
 * with the new tree head (and, for replicated apply, the Raft index).
 * Only then is the head published and the feed notified, still holding the
 * slot, so notifications follow commit order.
 *
 * Invariants: the slot holder alone touches the committer-owned state (see
 * log_int.h); a batch that fails its checks is rejected alone and changes
 * nothing; an allocation or write failure fails the whole log (memory may be
 * ahead of disk) until it is reopened. Apply is deterministic: the same
 * entries give byte-identical stores on every node. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clinlog/v1/event.pb-c.h"
#include "store/alloc.h"
#include "store/log_int.h"

struct commit_req {
  const Clinlog__V1__PreparedBatch *pb;
  cl_record_prefix *pre; /* precomputed record prefixes, or NULL */
  cl_append_result *r;
  cl_err err;
  int rc;
  int done;
  struct commit_req *next;
};

/* ------------------------------------------------------------- the slot */

int cl_slot_acquire(cl_log *log, cl_err *err) {
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

void cl_slot_release(cl_log *log) {
  pthread_mutex_lock(&log->mu);
  log->committing = 0;
  pthread_cond_broadcast(&log->cv);
  pthread_mutex_unlock(&log->mu);
}

void cl_publish(cl_log *log, uint64_t size, const uint8_t root[32]) {
  pthread_mutex_lock(&log->mu);
  log->size = size;
  memcpy(log->root, root, 32);
  pthread_mutex_unlock(&log->mu);
  cl_feed_publish(log->feed, size);
}

/* ------------------------------------------------- committer-owned state */

cl_stream_state *cl_stream_get(cl_log *log, const uint8_t tag[32], cl_err *err) {
  cl_stream_state *s = cl_hmap_get(log->streams, tag);
  if (s)
    return s;
  cl_stream_state st = {0, KEY_UNKNOWN, {0}};
  uint8_t key[40];
  memcpy(key, tag, 32);
  memset(key + 32, 0xff, 8);
  rocksdb_iterator_t *it =
      rocksdb_create_iterator_cf(log->db->db, log->db->ro, log->db->cf[CL_CF_STREAMS]);
  rocksdb_iter_seek_for_prev(it, (const char *)key, sizeof key);
  if (rocksdb_iter_valid(it)) {
    size_t kl;
    const char *k = rocksdb_iter_key(it, &kl);
    if (kl == 40 && memcmp(k, tag, 32) == 0)
      st.version = cl_get_be64((const uint8_t *)k + 32);
  }
  int rc = cl_iter_error(it, err, "stream head");
  rocksdb_iter_destroy(it);
  if (rc)
    return NULL;
  char *v;
  size_t vl;
  rc = cl_db_get(log->db, CL_CF_KEYS, tag, 32, &v, &vl, err);
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

/* Stream index entries of the current group: tag || version BE || seq BE. */
int cl_pend_stream(cl_log *log, const uint8_t tag[32], uint64_t version, uint64_t seq) {
  if (log->pend_n == log->pend_cap) {
    size_t nc = log->pend_cap ? log->pend_cap * 2 : 1024;
    uint8_t(*n)[48] = cl_realloc(log->pend, nc * 48);
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
int cl_write_indexes(cl_log *log, rocksdb_writebatch_t *wb) {
  size_t n = cl_hmap_count(log->group_ids), pos = 0, i = 0;
  const uint8_t **keys = cl_malloc((n ? n : 1) * sizeof *keys);
  if (!keys)
    return CL_ENOMEM;
  const void *k;
  void *v;
  while (cl_hmap_next(log->group_ids, &pos, &k, &v))
    keys[i++] = k;
  qsort(keys, n, sizeof *keys, cmp16);
  for (i = 0; i < n; i++) {
    const cl_id_entry *ie = cl_hmap_get(log->group_ids, keys[i]);
    rocksdb_writebatch_put_cf(wb, log->db->cf[CL_CF_IDS], (const char *)keys[i], 16,
                              (const char *)ie->v, sizeof ie->v);
  }
  cl_free(keys);
  if (log->pend_n > 1)
    qsort(log->pend, log->pend_n, 48, cmp40);
  for (i = 0; i < log->pend_n; i++)
    rocksdb_writebatch_put_cf(wb, log->db->cf[CL_CF_STREAMS], (const char *)log->pend[i], 40,
                              (const char *)log->pend[i] + 40, 8);
  log->pend_n = 0;
  return 0;
}

int cl_keyring_write(cl_log *log, rocksdb_writebatch_t *wb, const cl_keyring_change *c,
                     uint64_t at_seq, cl_err *err) {
  cl_keyring_entry e;
  pthread_mutex_lock(&log->kr_mu);
  int rc = cl_keyring_apply(log->keyring, c, at_seq, &e, err);
  pthread_mutex_unlock(&log->kr_mu);
  if (rc)
    return rc;
  if (!strcmp(c->principal, CL_LOG_PRINCIPAL))
    log->lk_changed = 1; /* cl_lk_follow after the write */
  uint8_t v[CL_KEYRING_ENTRY_MAX];
  size_t vl = cl_keyring_entry_encode(&e, v);
  rocksdb_writebatch_put_cf(wb, log->db->cf[CL_CF_KEYRING], (const char *)c->key, 32,
                            (const char *)v, vl);
  return 0;
}

/* The keyring changes a prepared batch carries, checked for shape (Raft
 * entries are input too). *out returned-owned (cl_free), NULL when none. */
static int batch_changes(const Clinlog__V1__PreparedBatch *pb, cl_keyring_change **out,
                         cl_err *err) {
  *out = NULL;
  if (!pb->n_keyring)
    return 0;
  cl_keyring_change *cs = cl_calloc(pb->n_keyring, sizeof *cs);
  if (!cs)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  for (size_t j = 0; j < pb->n_keyring; j++) {
    int rc = cl_keyring_change_from_pb(pb->keyring[j], &cs[j], err);
    if (rc == 0 && cs[j].event_index >= pb->n_events)
      rc = cl_err_set(err, CL_EINVAL, "keyring change of event %u in a batch of %zu",
                      cs[j].event_index, pb->n_events);
    if (rc) {
      cl_free(cs);
      return rc == CL_EMALFORMED ? CL_EINVAL : rc;
    }
  }
  *out = cs;
  return 0;
}

/* ---------------------------------------------------------------- check */

static int stream_index(const Clinlog__V1__PreparedBatch *pb, const uint8_t *tag);

/* A prepared batch is input too (a Raft entry from the leader): one that is
 * malformed is rejected alone, the same way on every node, never applied. */
static int check_shape(const Clinlog__V1__PreparedBatch *pb, cl_err *err) {
  if (pb->n_events == 0 || pb->n_events > CL_MAX_BATCH)
    return cl_err_set(err, CL_EINVAL, "prepared batch of %zu events", pb->n_events);
  for (size_t j = 0; j < pb->n_streams; j++) {
    const Clinlog__V1__PreparedStream *ps = pb->streams[j];
    if (ps->stream_tag.len != 32 ||
        (ps->wrapped_key.len && ps->wrapped_key.len != CL_WRAPPED_KEY_SIZE))
      return cl_err_set(err, CL_EINVAL, "prepared stream %zu is malformed", j);
  }
  for (size_t i = 0; i < pb->n_events; i++) {
    const Clinlog__V1__PreparedEvent *pe = pb->events[i];
    if (pe->stream_tag.len != 32 || pe->event_id.len != 16 || pe->event_hash.len != 32 ||
        pe->nonce.len != CL_NONCE_SIZE || pe->ciphertext.len < CL_AEAD_ABYTES ||
        stream_index(pb, pe->stream_tag.data) < 0 ||
        (pb->batch_signature ? pe->signature != NULL : pe->signature == NULL))
      return cl_err_set(err, CL_EINVAL, "prepared event %zu is malformed or has no stream entry",
                        i);
  }
  for (size_t j = 0; j < pb->n_erase_stream_tags; j++)
    if (pb->erase_stream_tags[j].len != 32)
      return cl_err_set(err, CL_EINVAL, "erasure target %zu is not a stream tag", j);
  return 0;
}

/* The keyring checks of a batch against the keyring as it stands: the
 * signer (changes 0), or the batch's keyring changes (changes 1). */
static int check_keyring(cl_log *log, const Clinlog__V1__PreparedBatch *pb, int changes,
                         cl_err *err) {
  size_t n = pb->n_events;
  if (pb->signer_key_id.len != 32 || !pb->signer_principal)
    return cl_err_set(err, CL_EINVAL, "prepared batch without signer");
  cl_keyring_change *cs;
  int rc = batch_changes(pb, &cs, err);
  if (rc)
    return rc;
  uint64_t size = log->frontier.size;
  pthread_mutex_lock(&log->kr_mu);
  if (!changes) {
    rc = cl_keyring_check_signer(log->keyring, pb->signer_key_id.data, pb->signer_principal,
                                 size + 1, NULL, err);
    if (rc == 0) {
      for (size_t i = 0; i < n && rc == 0; i++)
        if (pb->events[i]->event_type == CLINLOG__V1__EVENT__BODY_LOG_CREATED)
          rc = cl_err_set(err, CL_EDENIED, "LogCreated only as the first event");
    } else if (rc == CL_EUNKNOWNKEY && n == 1 &&
               cl_keyring_genesis_step(size, pb->events[0]->event_type, cs, pb->n_keyring,
                                       pb->signer_key_id.data)) {
      rc = 0;
    }
  }
  for (size_t j = 0; changes && rc == 0 && j < pb->n_keyring; j++)
    rc = cl_keyring_check(log->keyring, cs, j, err);
  pthread_mutex_unlock(&log->kr_mu);
  cl_free(cs);
  return rc;
}

/* 1 if the batch's ids are all committed with the same content (r gets
 * their positions), 0 if none is, else CL_EDUPLICATE. */
static int check_ids(cl_log *log, const Clinlog__V1__PreparedBatch *pb, cl_append_result *r,
                     cl_err *err) {
  size_t n = pb->n_events, found = 0, same = 0;
  for (size_t i = 0; i < n; i++) {
    const Clinlog__V1__PreparedEvent *pe = pb->events[i];
    const cl_id_entry *ie = cl_hmap_get(log->group_ids, pe->event_id.data);
    cl_id_entry disk;
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
  if (!found)
    return 0;
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
                    "%zu of %zu event ids are already committed%s%s%s (a retry "
                    "must resend the same events)",
                    found, n, same < found ? " with different content" : "",
                    hex[0] ? ", e.g. " : "", hex);
}

/* Streams: erasure, data keys, expected versions. */
static int check_streams(cl_log *log, const Clinlog__V1__PreparedBatch *pb, cl_append_result *r,
                         cl_err *err) {
  for (size_t j = 0; j < pb->n_streams; j++) {
    const Clinlog__V1__PreparedStream *ps = pb->streams[j];
    if (ps->stream_tag.len != 32)
      return cl_err_set(err, CL_EINVAL, "prepared stream without tag");
    cl_stream_state *st = cl_stream_get(log, ps->stream_tag.data, err);
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
    if (!ps->expected)
      continue;
    uint64_t v = st->version, want = ps->expected->version;
    int ok = 1;
    switch (ps->expected->kind) {
    case CLINLOG__V1__EXPECTED_VERSION__KIND__NO_STREAM:
      ok = v == 0;
      break;
    case CLINLOG__V1__EXPECTED_VERSION__KIND__EXISTS:
      ok = v > 0;
      break;
    case CLINLOG__V1__EXPECTED_VERSION__KIND__EXACT:
      ok = v == want;
      break;
    default:
      break;
    }
    if (ok)
      continue;
    if (r) {
      r->conflict_current = v;
      r->conflict_index = j;
      r->conflict_stream[0] = '\0';
    }
    char want_s[32];
    snprintf(want_s, sizeof want_s, "%llu", (unsigned long long)want);
    return cl_err_set(
        err, CL_ECONFLICT, "stream is at version %llu, expected %s", (unsigned long long)v,
        ps->expected->kind == CLINLOG__V1__EXPECTED_VERSION__KIND__NO_STREAM ? "no stream"
        : ps->expected->kind == CLINLOG__V1__EXPECTED_VERSION__KIND__EXISTS  ? "an existing stream"
                                                                             : want_s);
  }
  return 0;
}

/* Checks one prepared batch against the state left by everything ordered
 * before it. Returns 0 (go), 1 (whole batch already committed: r filled),
 * or an error. Touches no state except read-through caches. */
static int check_shape(const Clinlog__V1__PreparedBatch *pb, cl_err *err);

static int commit_check(cl_log *log, const Clinlog__V1__PreparedBatch *pb, cl_append_result *r,
                        cl_err *err) {
  /* in the order of docs/format.md "Commit rules": the signer, then
   * idempotency (so a retried batch that registered a key is a duplicate,
   * not a second registration), the streams, the keyring changes */
  int rc = check_shape(pb, err);
  if (rc == 0)
    rc = check_keyring(log, pb, 0, err);
  if (rc == 0 && (rc = check_ids(log, pb, r, err)) == 0 && (rc = check_streams(log, pb, r, err)) == 0)
    rc = check_keyring(log, pb, 1, err);
  return rc;
}

/* ---------------------------------------------------------------- apply */

static int stream_index(const Clinlog__V1__PreparedBatch *pb, const uint8_t *tag) {
  for (size_t j = 0; j < pb->n_streams; j++)
    if (memcmp(pb->streams[j]->stream_tag.data, tag, 32) == 0)
      return (int)j;
  return -1;
}

/* The batch's events as records: seq, version, leaf, record, index entries. */
static int apply_events(cl_log *log, rocksdb_writebatch_t *wb, const Clinlog__V1__PreparedBatch *pb,
                        cl_record_prefix *pre, cl_append_result *r, cl_err *err) {
  /* the leader's clock, but never before an earlier commit (deterministic:
   * depends only on the entries applied so far) */
  int64_t committed_at =
      pb->prepared_at_ns > log->last_committed_ns ? pb->prepared_at_ns : log->last_committed_ns;
  log->last_committed_ns = committed_at;
  for (size_t i = 0; i < pb->n_events; i++) {
    const Clinlog__V1__PreparedEvent *pe = pb->events[i];
    cl_stream_state *st = cl_stream_get(log, pe->stream_tag.data, err);
    if (!st)
      return err->code;
    uint64_t seq = log->frontier.size + 1;
    uint64_t version = st->version + 1;
    uint8_t leaf[32];
    cl_record_finish(&pre[i], seq, version, committed_at, leaf);
    int rc = cl_tree_append(log, wb, leaf, err);
    if (rc || (rc = cl_tree_maybe_checkpoint(log, wb, err)))
      return rc;
    uint8_t k[8];
    cl_be64(k, seq);
    rocksdb_writebatch_put_cf(wb, log->db->cf[CL_CF_LOG], (const char *)k, 8,
                              (const char *)pre[i].buf, pre[i].len + CL_RECORD_TAIL_LEN);
    /* index entries are written sorted at the end of the group
     * (cl_write_indexes) */
    cl_id_entry ie;
    cl_be64(ie.v, seq);
    cl_be64(ie.v + 8, version);
    memcpy(ie.v + 16, pe->event_hash.data, 32);
    if (!cl_hmap_put(log->group_ids, pe->event_id.data, &ie) ||
        cl_pend_stream(log, pe->stream_tag.data, version, seq))
      return cl_err_set(err, CL_ENOMEM, "out of memory");
    st->version = version;
    if (r) {
      r->seq[i] = seq;
      r->version[i] = version;
    }
  }
  return 0;
}

/* Data keys the batch mints. */
static int apply_keys(cl_log *log, rocksdb_writebatch_t *wb, const Clinlog__V1__PreparedBatch *pb,
                      cl_err *err) {
  for (size_t j = 0; j < pb->n_streams; j++) {
    const Clinlog__V1__PreparedStream *ps = pb->streams[j];
    if (!ps->wrapped_key.len)
      continue;
    cl_stream_state *st = cl_hmap_get(log->streams, ps->stream_tag.data);
    if (!st || st->key_state == KEY_PRESENT) /* an earlier batch committed this same key */
      continue;
    /* A Raft entry prepared before a master key rotation carries the key
     * wrapped under the old key: it is stored rewrapped under the current
     * one. A key no key of this log unwraps (a member whose master key is
     * not the cluster's, or a corrupt entry) is stored as it came, as every
     * other node stores it, and counted (cl_log_foreign_keys): refusing the
     * batch here would make this node's log differ from the others', and
     * failing the log would let a peer's entry stop the node. */
    uint8_t rewrapped[CL_WRAPPED_KEY_SIZE];
    const uint8_t *w;
    int rc = cl_mk_minted_key(log, ps->stream_tag.data, ps->wrapped_key.data, ps->wrapped_key.len,
                              rewrapped, &w, err);
    if (rc < 0)
      return rc;
    log->n_foreign += (uint64_t)rc;
    if (log->n_minted == log->cap_minted) {
      size_t nc = log->cap_minted ? log->cap_minted * 2 : 64;
      uint8_t(*m)[32] = cl_realloc(log->minted, nc * 32);
      if (!m)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
      log->minted = m;
      log->cap_minted = nc;
    }
    rocksdb_writebatch_put_cf(wb, log->db->cf[CL_CF_KEYS], (const char *)ps->stream_tag.data, 32,
                              (const char *)w, ps->wrapped_key.len); /* copied by RocksDB */
    st->key_state = KEY_PRESENT;
    memcpy(st->wk_nonce, ps->wrapped_key.data, 24);
    memcpy(log->minted[log->n_minted++], ps->stream_tag.data, 32);
  }
  return 0;
}

/* Applies a checked batch to the WriteBatch and the in-memory state. An
 * error here fails the log (the caller's job): memory may be half-applied. */
static int commit_apply(cl_log *log, rocksdb_writebatch_t *wb, const Clinlog__V1__PreparedBatch *pb,
                        cl_record_prefix *pre, cl_append_result *r, int *erased, cl_err *err) {
  size_t n = pb->n_events;
  cl_record_prefix *own = NULL;
  if (!pre && !(pre = own = cl_record_prefixes(pb)))
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  int rc = apply_events(log, wb, pb, pre, r, err);
  cl_record_prefixes_free(own, n);
  if (rc || (rc = apply_keys(log, wb, pb, err)))
    return rc;
  /* a change is stamped with the seq it takes effect after: the batch's
   * last for a batch signature, else its own event's (as verify does) */
  uint64_t last_seq = log->frontier.size, first_seq = last_seq - n + 1;
  cl_keyring_change *cs;
  if ((rc = batch_changes(pb, &cs, err)))
    return rc;
  for (size_t j = 0; rc == 0 && j < pb->n_keyring; j++) {
    uint64_t at = pb->batch_signature ? last_seq : first_seq + cs[j].event_index;
    rc = cl_keyring_write(log, wb, &cs[j], at, err);
  }
  cl_free(cs);
  for (size_t j = 0; rc == 0 && j < pb->n_erase_stream_tags; j++) {
    rc = cl_sk_erase(log, wb, pb->erase_stream_tags[j].data, err);
    *erased = 1;
  }
  if (rc == 0 && r)
    r->tree_size = log->frontier.size;
  return rc;
}

/* ---------------------------------------------------------------- group */

/* A group's batch bigger than this is not kept for the next one. */
#define GROUP_WB_KEEP (4u << 20)

/* Runs one commit group. Called by the slot holder. With `applied`
 * (replication), the group is Raft entry `applied` and that index is
 * written with it. */
static void commit_group(cl_log *log, commit_req *reqs, uint64_t applied) {
  if (!log->group_wb)
    log->group_wb = rocksdb_writebatch_create();
  rocksdb_writebatch_t *wb = log->group_wb;
  cl_hmap_clear(log->group_ids);
  log->pend_n = 0;
  log->n_minted = 0;
  log->n_foreign = 0;
  log->lk_changed = 0;
  int wrote = 0, erased = 0, fatal = 0;
  cl_err ferr;
  cl_err_clear(&ferr);
  int prev_new = 0; /* the batch before q wrote new events (with_previous) */
  for (commit_req *q = reqs; q; q = q->next) {
    int linked_ok = prev_new;
    prev_new = 0;
    if (fatal) {
      q->rc = cl_err_set(&q->err, CL_EFAILED, "%s", ferr.msg);
      continue;
    }
    if (q->pb->with_previous && !applied) {
      q->rc = cl_err_set(&q->err, CL_EINVAL, "with_previous: only in a Raft entry");
      continue;
    }
    if (q->pb->with_previous && !linked_ok) {
      q->rc = cl_err_set(&q->err, CL_EPRECOND,
                         "with_previous: the batch before it committed nothing new");
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
    prev_new = 1;
  }
  uint8_t root[32];
  cl_merkle_frontier_root(&log->frontier, root);
  if (wrote && !fatal && cl_write_indexes(log, wb) != 0) {
    fatal = 1;
    cl_err_set(&ferr, CL_ENOMEM, "out of memory");
  }
  if (wrote && !fatal) {
    uint8_t sz[8];
    cl_be64(sz, log->frontier.size);
    cl_meta_put(wb, log->db, CL_META_TREE_SIZE, sz, 8);
    cl_meta_put(wb, log->db, CL_META_ROOT, root, 32);
  }
  if (applied && !fatal) {
    uint8_t ai[8];
    cl_be64(ai, applied);
    cl_meta_put(wb, log->db, CL_META_APPLIED, ai, 8);
  }
  /* a Raft entry's apply is made again from the Raft log if a crash loses
   * it: its WAL record may stay buffered (cl_log_options.replayed) */
  if ((wrote || applied) && !fatal &&
      (applied ? cl_db_write_buffered : cl_db_write)(log->db, wb, &ferr) != 0)
    fatal = 1;
  size_t wbl;
  (void)rocksdb_writebatch_data(wb, &wbl);
  if (wbl > GROUP_WB_KEEP) { /* a bulk group: its memory goes back */
    rocksdb_writebatch_destroy(wb);
    log->group_wb = NULL;
  } else {
    rocksdb_writebatch_clear(wb); /* keeps its buffer */
  }
  if (fatal) {
    /* in-memory state may now be ahead of disk: refuse further commits */
    for (commit_req *q = reqs; q; q = q->next)
      if (q->rc == 0 || q->rc == CL_EFAILED)
        q->rc = cl_err_set(&q->err, CL_EFAILED, "commit failed, log needs reopening: %s", ferr.msg);
    pthread_mutex_lock(&log->mu);
    log->failed = 1;
    pthread_mutex_unlock(&log->mu);
    return;
  }
  cl_sk_retire_minted(log); /* keys now durable: later prepares find them on disk */
  if (erased)               /* after the durable write: see streamkey.c */
    cl_sk_erased(log);
  pthread_mutex_lock(&log->mu);
  if (applied)
    log->applied = applied;
  log->foreign_keys += log->n_foreign;
  pthread_mutex_unlock(&log->mu);
  if (wrote)
    cl_publish(log, log->frontier.size, root);
  cl_lk_follow(log); /* a log key rotation this group committed */
}

/* Allocates r for pb's events and fills in their ids. */
static int result_for(cl_append_result *r, const Clinlog__V1__PreparedBatch *pb, cl_err *err) {
  size_t n = pb->n_events;
  memset(r, 0, sizeof *r);
  r->seq = cl_calloc(n ? n : 1, sizeof *r->seq);
  r->version = cl_calloc(n ? n : 1, sizeof *r->version);
  r->event_id = cl_calloc(n ? n : 1, sizeof *r->event_id);
  if (!r->seq || !r->version || !r->event_id) {
    cl_append_result_free(r);
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  }
  r->n = n;
  for (size_t i = 0; i < n; i++)
    if (pb->events[i]->event_id.len == 16)
      memcpy(r->event_id[i], pb->events[i]->event_id.data, 16);
  return 0;
}

static int commit_with(cl_log *log, const Clinlog__V1__PreparedBatch *pb, cl_record_prefix *pre,
                       cl_append_result *r, cl_err *err) {
  if (r && result_for(r, pb, err))
    return err->code;
  commit_req req = {.pb = pb, .pre = pre, .r = r};
  pthread_mutex_lock(&log->mu);
  if (log->failed || log->o.read_only) {
    int ro = !log->failed;
    pthread_mutex_unlock(&log->mu);
    if (r)
      cl_append_result_free(r);
    return ro ? cl_err_set(err, CL_EDENIED, "log is open read-only")
              : cl_err_set(err, CL_EFAILED, "log failed after a write error; reopen it");
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

int cl_log_commit(cl_log *log, const Clinlog__V1__PreparedBatch *pb, cl_append_result *r,
                  cl_err *err) {
  return commit_with(log, pb, NULL, r, err);
}

void cl_log_name_conflict(cl_log *log, const Clinlog__V1__AppendBatch *b,
                          const Clinlog__V1__PreparedBatch *pb, cl_append_result *r, cl_err *err) {
  size_t j = r->conflict_index;
  if (r->conflict_stream[0] || j >= pb->n_streams || pb->streams[j]->stream_tag.len != 32)
    return;
  for (size_t x = 0; x < b->n_expectations; x++) {
    uint8_t tag[32];
    const char *s = b->expectations[x]->stream;
    cl_stream_tag(log->tag_key, s, strlen(s), tag);
    if (memcmp(tag, pb->streams[j]->stream_tag.data, 32) == 0) {
      snprintf(r->conflict_stream, sizeof r->conflict_stream, "%s", s);
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
    cl_record_prefix *pre = cl_record_prefixes(pb);
    rc = commit_with(log, pb, pre, r, err);
    cl_record_prefixes_free(pre, pb->n_events);
    if (rc == CL_ECONFLICT && r)
      cl_log_name_conflict(log, b, pb, r, err);
    clinlog__v1__prepared_batch__free_unpacked(pb, NULL);
  }
  return rc;
}

/* ------------------------------------------------------------ replication */

struct cl_prefixes {
  size_t n;
  cl_record_prefix *p;
};

cl_prefixes *cl_log_prefixes(const Clinlog__V1__PreparedBatch *pb) {
  cl_prefixes *x = cl_malloc(sizeof *x);
  if (!x)
    return NULL;
  x->n = pb->n_events;
  if (!(x->p = cl_record_prefixes(pb))) {
    cl_free(x);
    return NULL;
  }
  return x;
}

void cl_log_prefixes_free(cl_prefixes *x) {
  if (!x)
    return;
  cl_record_prefixes_free(x->p, x->n);
  cl_free(x);
}

int cl_log_apply(cl_log *log, uint64_t index, cl_apply_item *items, size_t n, cl_err *err) {
  if (index == 0)
    return cl_err_set(err, CL_EINVAL, "raft index 0");
  int rc = cl_slot_acquire(log, err);
  if (rc)
    return rc;
  if (index <= log->applied) { /* applied before a restart */
    cl_slot_release(log);
    return 1;
  }
  commit_req *reqs = n ? cl_calloc(n, sizeof *reqs) : NULL;
  if (n && !reqs) {
    cl_slot_release(log);
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < n; i++) {
    reqs[i].pb = items[i].pb;
    if (items[i].want_result && result_for(&items[i].r, items[i].pb, err)) {
      for (size_t j = 0; j < i; j++)
        if (items[j].want_result)
          cl_append_result_free(&items[j].r);
      cl_free(reqs);
      cl_slot_release(log);
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
  cl_free(reqs);
  pthread_mutex_lock(&log->mu);
  int failed = log->failed;
  pthread_mutex_unlock(&log->mu);
  cl_slot_release(log);
  if (failed)
    return cl_err_set(err, CL_EFAILED, "applying raft entry %llu: %s", (unsigned long long)index,
                      n ? items[0].err.msg : "write failed");
  return 0;
}

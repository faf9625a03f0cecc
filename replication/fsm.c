/* clinlog's Raft state machine; see fsm.h. */
#include "replication/fsm.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/logkey.h"

int cl_fsm_encode(const Clinlog__V1__RaftEntry *e, struct raft_buffer *out, cl_err *err) {
  size_t n = clinlog__v1__raft_entry__get_packed_size(e);
  if (n > UINT32_MAX - 16)
    return cl_err_set(err, CL_ETOOBIG, "raft entry of %zu bytes", n);
  size_t len = (4 + n + 7) & ~(size_t)7;
  uint8_t *p = raft_malloc(len);
  if (!p)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  p[0] = (uint8_t)n;
  p[1] = (uint8_t)(n >> 8);
  p[2] = (uint8_t)(n >> 16);
  p[3] = (uint8_t)(n >> 24);
  clinlog__v1__raft_entry__pack(e, p + 4);
  memset(p + 4 + n, 0, len - 4 - n);
  out->base = p;
  out->len = len;
  return 0;
}

Clinlog__V1__RaftEntry *cl_fsm_decode(const void *buf, size_t len) {
  const uint8_t *p = buf;
  if (len < 8 || len % 8)
    return NULL;
  size_t n = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
  if (n > len - 4 || len - 4 - n >= 8)
    return NULL;
  return clinlog__v1__raft_entry__unpack(NULL, n, p + 4);
}

static void fatal(cl_fsm *f, const char *fmt, ...) CL_PRINTF(2, 3);
static void fatal(cl_fsm *f, const char *fmt, ...) {
  char msg[CL_ERR_MSG_SIZE + 128];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (f->fatal) {
    f->fatal(f->ctx, msg);
    return;
  }
  fprintf(stderr, "clinlog: replication: %s; stopping\n", msg);
  fflush(stderr);
  _Exit(70);
}

/* Brings the store to the tree head (size, root): checks it when the store
 * already holds that many events, else catches up. Returns 0 or an error. */
static int reach_head(cl_fsm *f, const Clinlog__V1__TreeHead *h, cl_err *err) {
  if (h->root_hash.len != 32)
    return cl_err_set(err, CL_EMALFORMED, "tree head without a root");
  uint64_t size;
  cl_log_head(f->log, &size, NULL);
  if (size < h->tree_size) {
    if (!f->fetch)
      return cl_err_set(err, CL_EUNAVAILABLE,
                        "the store has %llu events, the cluster %llu, and no catch-up source",
                        (unsigned long long)size, (unsigned long long)h->tree_size);
    int rc = f->fetch(f->ctx, h->api_address, h->tree_size, h->root_hash.data, err);
    if (rc)
      return cl_err_prefix(err, "catching up to %llu events", (unsigned long long)h->tree_size);
    cl_log_head(f->log, &size, NULL);
    if (size < h->tree_size)
      return cl_err_set(err, CL_EUNAVAILABLE, "catch-up stopped at %llu of %llu events",
                        (unsigned long long)size, (unsigned long long)h->tree_size);
  }
  if (h->tree_size == 0)
    return 0;
  uint8_t root[32];
  int rc = cl_log_root_at(f->log, h->tree_size, root, err);
  if (rc)
    return rc;
  if (memcmp(root, h->root_hash.data, 32) != 0)
    return cl_err_set(err, CL_EVERIFY,
                      "this store's root at %llu events differs from the cluster's: the logs diverged",
                      (unsigned long long)h->tree_size);
  return 0;
}

/* Byte-based snapshots (see fsm.h): lowers libraft's entry threshold so the
 * next step snapshots when the entries since the last one grew too big. */
static void account(cl_fsm *f, size_t len) {
  f->bytes_since += len;
  f->entries_since++;
  if (f->snapshot_bytes && f->bytes_since >= f->snapshot_bytes && f->raft)
    raft_set_snapshot_threshold(f->raft, f->entries_since > 8 ? (unsigned)f->entries_since : 8);
}

/* A log key rotation applied since `before` (cl_log_logkey_events): says
 * on stderr whether this node switched, and if not why (it then signs
 * nothing until the key is placed: docs/operations.md). */
static void lk_report(cl_fsm *f, uint64_t before, uint64_t index) {
  cl_err e;
  if (cl_log_logkey_events(f->log, &e) == before)
    return;
  if (e.code) {
    fprintf(stderr, "clinlog: replication: raft entry %llu: log key rotation: %s\n",
            (unsigned long long)index, e.msg);
  } else {
    char hex[65];
    cl_hex(cl_log_public_key(f->log), 32, hex);
    fprintf(stderr, "clinlog: replication: raft entry %llu: switched to the log key %.16s\n",
            (unsigned long long)index, hex);
  }
  fflush(stderr);
}

static int fsm_apply(struct raft_fsm *rf, const struct raft_buffer *buf, void **result) {
  cl_fsm *f = rf->data;
  *result = NULL;
  account(f, buf->len);
  /* libraft applies entry last_applied + 1 (it sets last_applied after
   * this returns); the store keeps its own applied index to skip entries
   * replayed after a restart */
  uint64_t index = raft_last_applied(f->raft) + 1;
  Clinlog__V1__RaftEntry *e = cl_fsm_decode(buf->base, buf->len);
  if (!e) {
    fatal(f, "raft entry %llu does not decode", (unsigned long long)index);
    return RAFT_MALFORMED;
  }
  cl_err err;
  cl_err_clear(&err);
  int rc;
  if (e->head) {
    if (index <= cl_log_applied_index(f->log)) {
      f->skipped_entries++;
      clinlog__v1__raft_entry__free_unpacked(e, NULL);
      return 0;
    }
    uint64_t lk = cl_log_logkey_events(f->log, NULL);
    rc = reach_head(f, e->head, &err);
    lk_report(f, lk, index);
    if (rc == 0)
      rc = cl_log_apply(f->log, index, NULL, 0, &err);
    if (rc < 0) {
      fatal(f, "raft entry %llu (tree head %llu): %s", (unsigned long long)index,
            (unsigned long long)e->head->tree_size, err.msg);
      clinlog__v1__raft_entry__free_unpacked(e, NULL);
      return RAFT_IOERR;
    }
    f->applied_entries++;
    clinlog__v1__raft_entry__free_unpacked(e, NULL);
    return 0;
  }
  size_t n = e->n_batches, claimed = 0;
  cl_apply_item *items = NULL, *mine = NULL;
  if (f->claim && e->origin == f->origin)
    mine = f->claim(f->ctx, e->group, &claimed);
  if (mine && claimed == n) {
    items = mine;
  } else {
    mine = NULL;
    items = n ? calloc(n, sizeof *items) : NULL;
    if (n && !items) {
      fatal(f, "raft entry %llu: out of memory", (unsigned long long)index);
      clinlog__v1__raft_entry__free_unpacked(e, NULL);
      return RAFT_NOMEM;
    }
  }
  for (size_t i = 0; i < n; i++)
    items[i].pb = e->batches[i];
  uint64_t foreign = cl_log_foreign_keys(f->log);
  uint64_t lk = cl_log_logkey_events(f->log, NULL);
  rc = cl_log_apply(f->log, index, items, n, &err);
  lk_report(f, lk, index);
  if (rc == 0 && cl_log_foreign_keys(f->log) > foreign) {
    /* applied as on every node, but this node cannot read those streams */
    fprintf(stderr,
            "clinlog: replication: raft entry %llu: %llu new stream data key(s) that this "
            "node's master key does not unwrap: those streams cannot be read here (is this "
            "node's master key the cluster's? docs/operations.md, \"Rotating the master key\")\n",
            (unsigned long long)index,
            (unsigned long long)(cl_log_foreign_keys(f->log) - foreign));
    fflush(stderr);
  }
  if (rc < 0) {
    fatal(f, "raft entry %llu: %s", (unsigned long long)index, err.msg);
    clinlog__v1__raft_entry__free_unpacked(e, NULL);
    return RAFT_IOERR;
  }
  if (rc == 1)
    f->skipped_entries++;
  else
    f->applied_entries++;
  if (mine) {
    for (size_t i = 0; i < n; i++)
      items[i].pb = NULL; /* freed below with the entry */
    f->done(f->ctx, e->group, rc == 1 ? CL_EUNAVAILABLE : 0, &err);
  } else {
    free(items);
  }
  clinlog__v1__raft_entry__free_unpacked(e, NULL);
  return 0;
}

static int fsm_snapshot(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs) {
  cl_fsm *f = rf->data;
  cl_err err;
  if (f->snapshot_bytes && f->raft && f->entries_since) {
    /* keep about trailing_bytes of entries after this snapshot, and go back
     * to the entry threshold */
    uint64_t avg = f->bytes_since / f->entries_since;
    uint64_t keep = avg ? f->trailing_bytes / avg : f->trailing;
    if (keep > f->trailing)
      keep = f->trailing;
    if (keep < 8)
      keep = 8;
    raft_set_snapshot_trailing(f->raft, (unsigned)keep);
    raft_set_snapshot_threshold(f->raft, f->threshold);
  }
  f->bytes_since = 0;
  f->entries_since = 0;
  /* the Raft log before this snapshot may now be deleted: what it brought
   * to the store must be durable first */
  if (cl_log_sync(f->log, &err) != 0) {
    fprintf(stderr, "clinlog: replication: snapshot: %s\n", err.msg);
    return RAFT_IOERR;
  }
  uint64_t size;
  uint8_t root[32];
  cl_log_head(f->log, &size, root);
  Clinlog__V1__TreeHead h = CLINLOG__V1__TREE_HEAD__INIT;
  h.tree_size = size;
  h.root_hash = (ProtobufCBinaryData){32, root};
  h.api_address = (char *)(f->api_address ? f->api_address : "");
  h.applied_index = raft_last_applied(f->raft);
  Clinlog__V1__RaftEntry e = CLINLOG__V1__RAFT_ENTRY__INIT;
  e.head = &h;
  struct raft_buffer *b = raft_malloc(sizeof *b);
  if (!b)
    return RAFT_NOMEM;
  if (cl_fsm_encode(&e, b, &err) != 0) {
    raft_free(b);
    return RAFT_NOMEM;
  }
  *bufs = b;
  *n_bufs = 1;
  return 0;
}

static int fsm_restore(struct raft_fsm *rf, struct raft_buffer *buf) {
  cl_fsm *f = rf->data;
  Clinlog__V1__RaftEntry *e = cl_fsm_decode(buf->base, buf->len);
  if (!e || !e->head) {
    if (e)
      clinlog__v1__raft_entry__free_unpacked(e, NULL);
    fatal(f, "snapshot of %zu bytes does not decode", buf->len);
    return RAFT_MALFORMED;
  }
  cl_err err;
  cl_err_clear(&err);
  uint64_t lk = cl_log_logkey_events(f->log, NULL);
  int rc = reach_head(f, e->head, &err);
  lk_report(f, lk, e->head->applied_index);
  /* the entries up to the snapshot's index are now in the store */
  if (rc == 0 && e->head->applied_index > cl_log_applied_index(f->log))
    rc = cl_log_apply(f->log, e->head->applied_index, NULL, 0, &err);
  if (rc < 0) {
    fatal(f, "restoring snapshot at raft index %llu (%llu events): %s",
          (unsigned long long)e->head->applied_index, (unsigned long long)e->head->tree_size,
          err.msg);
    clinlog__v1__raft_entry__free_unpacked(e, NULL);
    return RAFT_IOERR;
  }
  clinlog__v1__raft_entry__free_unpacked(e, NULL);
  raft_free(buf->base);
  return 0;
}

void cl_fsm_init(cl_fsm *f, struct raft_fsm *rf) {
  memset(rf, 0, sizeof *rf);
  rf->version = 1;
  rf->data = f;
  rf->apply = fsm_apply;
  rf->snapshot = fsm_snapshot;
  rf->restore = fsm_restore;
}

/* Projection commits: a transaction's writes and its position in one
 * RocksDB write, either on the folding thread (cl_proj_commit) or on the
 * projection's writer thread while the fold goes on (cl_proj_commit_start,
 * one in flight at a time). See proj.h for the contract and proj_int.h for
 * the state and its locking. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/alloc.h"
#include "store/proj_int.h"

/* A write in the commit's order: family, then key bytes. `pre` holds
 * the family and the key's first 7 bytes (big-endian, zero-padded), so
 * most comparisons of the sort are one integer compare (keys are mostly
 * hashes); equal prefixes fall back to the whole key. */
typedef struct ordered {
  uint64_t pre;
  const txn_write *w;
} ordered;

static uint64_t order_prefix(const txn_write *w) {
  uint64_t v = (uint64_t)(w->fam & 0xff) << 56;
  for (size_t i = 0; i < 7 && i < w->kl; i++)
    v |= (uint64_t)w->kv[i] << (48 - 8 * i);
  return v;
}

static int cmp_write(const void *a, const void *b) {
  const ordered *oa = a, *ob = b;
  if (oa->pre != ob->pre)
    return oa->pre < ob->pre ? -1 : 1;
  const txn_write *x = oa->w, *y = ob->w;
  size_t m = x->kl < y->kl ? x->kl : y->kl;
  int c = memcmp(x->kv, y->kv, m);
  return c ? c : (x->kl > y->kl) - (x->kl < y->kl);
}

/* A write batch past this many bytes is freed after its commit; a smaller
 * one is kept for the next (cl_proj.wb): a batch grows by doubling, and
 * each new buffer is fresh pages to fault in (a catch-up's batches are
 * megabytes). */
#define WB_KEEP_MAX ((size_t)8 << 20)

/* Writes t's changes and `position` in one RocksDB write (t itself is
 * only read: the committing thread may read it beside). */
static int write_txn(cl_proj_txn *t, uint64_t position, cl_err *err) {
  cl_proj *p = t->p;
  int rc = 0;
  ordered *order = cl_malloc((t->n ? t->n : 1) * sizeof *order);
  if (!order)
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
  if (rc == 0) {
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++)
      if (!t->w[i].superseded)
        order[n++] = (ordered){order_prefix(&t->w[i]), &t->w[i]};
    qsort(order, n, sizeof *order, cmp_write);
    rocksdb_writebatch_t *wb = p->wb ? p->wb : rocksdb_writebatch_create();
    p->wb = NULL;
    uint8_t *sealed = NULL;
    size_t cap = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
      const txn_write *w = order[i].w;
      size_t sl;
      if (w->del) {
        rocksdb_writebatch_delete_cf(wb, p->fam[w->fam], (const char *)w->kv, w->kl);
      } else if (!w->seal) {
        rocksdb_writebatch_put_cf(wb, p->fam[w->fam], (const char *)w->kv, w->kl,
                                  (const char *)w->kv + w->kl, w->vl);
      } else if ((rc = proj_seal_write(p, w, &sealed, &cap, &sl, err)) == 0) {
        rocksdb_writebatch_put_cf(wb, p->fam[w->fam], (const char *)w->kv, w->kl,
                                  (const char *)sealed, sl);
      } else if (rc == CL_EERASED) { /* erased since the fold: its StreamErased forgets it */
        cl_err_clear(err);
        rc = 0;
      }
    }
    cl_free(sealed);
    uint8_t pos[8];
    cl_be64(pos, position);
    rocksdb_writebatch_put_cf(wb, p->meta, META_POSITION, strlen(META_POSITION), (const char *)pos,
                              8);
    char *rerr = NULL;
    if (rc == 0)
      rocksdb_write(p->db->db, p->db->wo_nosync, wb, &rerr);
    /* a position alone (commit_lazily's bound) is written out at once, as
     * proj_write_position does */
    if (rc == 0 && !rerr && n == 0 && p->db->buffered)
      rc = cl_db_flush_wal(p->db, 0, err);
    size_t used;
    (void)rocksdb_writebatch_data(wb, &used);
    if (used <= WB_KEEP_MAX) {
      rocksdb_writebatch_clear(wb); /* keeps its buffer */
      p->wb = wb;
    } else {
      rocksdb_writebatch_destroy(wb);
    }
    if (rerr)
      rc = cl_db_error(rerr, err, "projection commit");
  }
  cl_free(order);
  if (rc == 0) {
    pthread_mutex_lock(&p->mu);
    p->position = position;
    p->changes += t->n > 0;
    pthread_mutex_unlock(&p->mu);
    p->written = position;
  }
  return rc ? cl_err_prefix(err, "projection %s", p->name) : 0;
}

int proj_write_position(cl_proj *p, uint64_t position, cl_err *err) {
  uint8_t pos[8];
  cl_be64(pos, position);
  rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
  rocksdb_writebatch_put_cf(wb, p->meta, META_POSITION, strlen(META_POSITION), (const char *)pos,
                            8);
  /* written out at once (cl_db_write, the WAL's buffer with it): a process
   * that dies then refolds at most LAZY_MAX events that changed nothing */
  cl_err e;
  int rc = cl_db_write(p->db, wb, err ? err : &e);
  rocksdb_writebatch_destroy(wb);
  if (rc)
    return cl_err_prefix(err ? err : &e, "projection position");
  p->written = position;
  return 0;
}

/* A commit that writes nothing (a batch of events the fold ignored) moves
 * the position in memory only, while the one on disk is less than LAZY_MAX
 * behind: the state on disk is the state at either position, so a restart
 * from the older one refolds events that change nothing. 1 if t was
 * committed so (and freed). */
static int commit_lazily(cl_proj_txn *t, uint64_t position) {
  cl_proj *p = t->p;
  if (t->n || position - p->written >= LAZY_MAX)
    return 0;
  pthread_mutex_lock(&p->mu);
  p->position = position;
  pthread_mutex_unlock(&p->mu);
  cl_proj_abort(t);
  return 1;
}

static void *writer_main(void *arg) {
  cl_proj *p = arg;
  char name[16];
  snprintf(name, sizeof name, "projw:%.9s", p->name);
  (void)pthread_setname_np(pthread_self(), name);
  pthread_mutex_lock(&p->wmu);
  for (;;) {
    while (!p->job && !p->stop)
      pthread_cond_wait(&p->wcv, &p->wmu);
    if (!p->job)
      break;
    cl_proj_txn *t = p->job;
    pthread_mutex_unlock(&p->wmu);
    cl_err e;
    cl_err_clear(&e);
    int rc = write_txn(t, t->position, &e);
    pthread_mutex_lock(&p->wmu);
    p->job = NULL;
    p->done = 1;
    p->rc = rc;
    p->werr = e;
    pthread_cond_broadcast(&p->wcv);
  }
  pthread_mutex_unlock(&p->wmu);
  return NULL;
}

int cl_proj_commit_wait(cl_proj *p, cl_err *err) {
  cl_proj_txn *t = p->inflight;
  if (!t)
    return 0;
  pthread_mutex_lock(&p->wmu);
  while (!p->done)
    pthread_cond_wait(&p->wcv, &p->wmu);
  int rc = p->rc;
  if (rc && err)
    *err = p->werr;
  p->done = 0;
  pthread_mutex_unlock(&p->wmu);
  p->inflight = NULL;
  t->failed = rc != 0;
  proj_txn_end(t);
  proj_txn_release(t);
  return rc;
}

/* What commit and commit_start check first: the transaction in flight is
 * written (else its error, and t is aborted) and the position moves on.
 * t no longer needs its base then. */
static int commit_ready(cl_proj_txn *t, uint64_t position, cl_err *err) {
  cl_proj *p = t->p;
  int rc = cl_proj_commit_wait(p, err);
  if (rc == 0 && t->base && t->base->failed)
    rc = cl_err_set(err, CL_EIO, "projection %s: the commit before this one failed", p->name);
  if (rc == 0 && position < cl_proj_position(p))
    rc = cl_err_set(err, CL_EINVAL, "projection %s: position %llu is behind %llu", p->name,
                    (unsigned long long)position, (unsigned long long)cl_proj_position(p));
  if (rc)
    cl_proj_abort(t);
  else if (t->base) {
    proj_txn_release(t->base);
    t->base = NULL;
  }
  return rc;
}

int cl_proj_commit(cl_proj_txn *t, uint64_t position, cl_err *err) {
  int rc = commit_ready(t, position, err);
  if (rc || commit_lazily(t, position))
    return rc;
  rc = write_txn(t, position, err);
  cl_proj_abort(t);
  return rc;
}

int cl_proj_commit_start(cl_proj_txn *t, uint64_t position, cl_err *err) {
  cl_proj *p = t->p;
  int rc = commit_ready(t, position, err);
  if (rc || commit_lazily(t, position))
    return rc;
  if (!p->started) {
    if (pthread_create(&p->writer, NULL, writer_main, p) != 0) { /* write it here, then */
      rc = write_txn(t, position, err);
      cl_proj_abort(t);
      return rc;
    }
    p->started = 1;
  }
  t->position = position;
  t->refs++; /* the writer's */
  pthread_mutex_lock(&p->wmu);
  p->job = t;
  p->done = 0;
  pthread_cond_broadcast(&p->wcv);
  pthread_mutex_unlock(&p->wmu);
  p->inflight = t;
  proj_txn_release(t); /* the caller's: t keeps its read lock until waited for */
  return 0;
}

void proj_writer_stop(cl_proj *p) {
  cl_err e;
  (void)cl_proj_commit_wait(p, &e);
  if (!p->started)
    return;
  pthread_mutex_lock(&p->wmu);
  p->stop = 1;
  pthread_cond_broadcast(&p->wcv);
  pthread_mutex_unlock(&p->wmu);
  pthread_join(p->writer, NULL);
  p->started = 0;
}

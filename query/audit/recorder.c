/* The audit recorder; see recorder.h.
 *
 * Leader/follower group commit, as RocksDB's write thread and SQLite's WAL
 * do it: a caller packs and hashes its event on its own thread, queues a
 * ticket that lives on its stack and, if fewer than `writers` batches are
 * in flight, leads one itself: it takes the whole queue (up to max_batch,
 * its own ticket among them), signs and appends without the mutex, then
 * marks and signals the batch's tickets. Otherwise it waits on its
 * ticket's own condition variable (one wake-up per caller, not a broadcast)
 * until a leader marks it done or, when a batch ends and tickets are still
 * queued, it is woken to lead the next one. No thread of its own: at
 * concurrency 1 a record costs its append and no hand-off.
 *
 * An asynchronous record (cl_audit_record_async) has no caller waiting: its
 * ticket is on the heap and carries a callback, run by the thread that
 * committed its batch after it let go of the mutex; and when such a ticket
 * heads the queue as a batch ends, no caller will wake to lead it, so the
 * thread that ended the batch leads the next one itself (lead). */
#include "query/audit/recorder.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clinlog/v1/event.pb-c.h"
#include "store/alloc.h"
#include "store/event.h"
#include "store/keyring.h"
#include "store/keys.h"
#include "store/logkey.h"

#define DEFAULT_MAX_BATCH 256
/* Two: with 64 concurrent reads, 8 batches in flight carried about 3
 * records each, 2 carry about 9 (every Raft entry packs what is queued
 * anyway): 20 % less CPU a read and half the p99 (docs/security.md) */
#define DEFAULT_WRITERS 2
#define MAX_WRITERS 16

typedef struct ticket {
  struct ticket *next;
  cl_audit_done_fn cb; /* async: run once the batch ended (the ticket is the heap's) */
  void *cb_ctx;
  struct ticket *cb_next; /* the batch's async tickets, as commit_batch calls them */
  uint8_t *buf; /* the packed Event */
  size_t len;
  uint8_t hash[32];
  int done;
  pthread_cond_t cv; /* signalled when done */
  cl_err err;        /* the batch's outcome */
} ticket;

struct cl_audit {
  cl_audit_options o;
  pthread_mutex_t mu;
  pthread_cond_t idle_cv; /* the last batch in flight ended (close waits) */
  ticket *head, *tail;    /* queued, no batch yet */
  size_t active;          /* batches in flight (leaders) */
  int closing;
  cl_audit_stats st;
};

/* Wipes and frees a ticket's packed record (it names patients). */
static void ticket_wipe(ticket *t) {
  sodium_memzero(t->buf, t->len);
  cl_free(t->buf);
  t->buf = NULL;
}

/* One batch: sign the tickets' hashes, append, tell each ticket. */
static void commit_batch(cl_audit *a, ticket *first, size_t n) {
  uint8_t(*hashes)[32] = malloc(n * sizeof *hashes);
  ProtobufCBinaryData *evs = malloc(n * sizeof *evs);
  cl_err err;
  cl_err_clear(&err);
  int code;
  if (!hashes || !evs) {
    code = cl_err_set(&err, CL_ENOMEM, "out of memory");
  } else {
    size_t i = 0;
    for (ticket *t = first; i < n; t = t->next, i++) {
      memcpy(hashes[i], t->hash, 32);
      evs[i] = (ProtobufCBinaryData){t->len, t->buf};
    }
    uint8_t sig[CL_SIG_SIZE], pk[CL_PUBKEY_SIZE];
    /* the log key as it is now (a log key rotation may switch it); the
     * append prepares on this thread, where the store knows this signature
     * as its own and does not verify it again */
    code = cl_log_sign_batch(a->o.log, (const uint8_t(*)[32])hashes, n, sig, pk, &err);
    Clinlog__V1__Signature bs = CLINLOG__V1__SIGNATURE__INIT;
    bs.key_id = (ProtobufCBinaryData){CL_PUBKEY_SIZE, pk};
    bs.signature = (ProtobufCBinaryData){CL_SIG_SIZE, sig};
    Clinlog__V1__AppendBatch b = CLINLOG__V1__APPEND_BATCH__INIT;
    b.n_events = n;
    b.events = evs;
    b.batch_signature = &bs;
    if (code == 0)
      code = a->o.append(a->o.ctx, &b, &err);
    if (code == 0)
      cl_err_clear(&err); /* what the append left in err on success means nothing */
    else if (err.code != code || !err.msg[0])
      cl_err_set(&err, code, "the audit trail's append failed (%s)", cl_errname(code));
  }
  free(hashes);
  free(evs);
  pthread_mutex_lock(&a->mu);
  ticket *cbs = NULL, **cb_tail = &cbs;
  size_t i = 0;
  for (ticket *t = first; i < n; i++) {
    ticket *next = t->next;
    t->err = err;
    t->done = 1;
    if (t->cb) {
      *cb_tail = t;
      cb_tail = &t->cb_next;
    } else {
      pthread_cond_signal(&t->cv); /* t may be gone once mu is released */
    }
    t = next;
  }
  if (code) {
    a->st.failed += n;
  } else {
    a->st.records += n;
    a->st.batches++;
  }
  if (n > a->st.max_seen)
    a->st.max_seen = n;
  a->active--;
  if (a->head && !a->head->cb)
    pthread_cond_signal(&a->head->cv); /* its caller leads the next batch */
  else if (!a->head && !a->active)
    pthread_cond_broadcast(&a->idle_cv);
  pthread_mutex_unlock(&a->mu);
  while (cbs) { /* an async ticket heading the queue is led by this thread's caller (lead) */
    ticket *t = cbs;
    cbs = t->cb_next;
    t->cb(t->cb_ctx, &t->err);
    ticket_wipe(t);
    free(t);
  }
}

/* mu held: takes up to max_batch queued tickets as a batch in flight. */
static ticket *take_batch(cl_audit *a, size_t *n) {
  ticket *first = a->head, *t = first;
  *n = 1;
  while (t->next && *n < a->o.max_batch) {
    t = t->next;
    (*n)++;
  }
  a->head = t->next;
  if (!a->head)
    a->tail = NULL;
  a->active++;
  return first;
}

/* mu held (released while appending): lead_one leads the next batch;
 * lead leads batches while tickets are
 * queued and fewer than `writers` are in flight. The queue's head may be
 * an async ticket that no caller will wake up to lead. */
static void lead_one(cl_audit *a) {
  size_t n;
  ticket *first = take_batch(a, &n);
  pthread_mutex_unlock(&a->mu);
  commit_batch(a, first, n);
  pthread_mutex_lock(&a->mu);
}

static void lead(cl_audit *a) {
  while (a->head && a->active < a->o.writers)
    lead_one(a);
}

int cl_audit_open(const cl_audit_options *o, cl_audit **out, cl_err *err) {
  if (!o || !o->log || !o->append)
    return cl_err_set(err, CL_EINVAL, "audit: a log and an append function are required");
  const cl_signer *s = cl_log_signer(o->log);
  if (!s)
    return cl_err_set(err, CL_EINVAL, "audit: this node has no log key to sign records with");
  cl_audit *a = calloc(1, sizeof *a);
  if (!a)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  a->o = *o;
  if (!a->o.max_batch)
    a->o.max_batch = DEFAULT_MAX_BATCH;
  if (!a->o.writers)
    a->o.writers = DEFAULT_WRITERS;
  if (a->o.writers > MAX_WRITERS)
    a->o.writers = MAX_WRITERS;
  pthread_mutex_init(&a->mu, NULL);
  pthread_cond_init(&a->idle_cv, NULL);
  *out = a;
  return 0;
}

void cl_audit_close(cl_audit *a) {
  if (!a)
    return;
  pthread_mutex_lock(&a->mu);
  a->closing = 1;
  while (a->active || a->head) /* none by contract; a late caller's batch ends first */
    pthread_cond_wait(&a->idle_cv, &a->mu);
  pthread_mutex_unlock(&a->mu);
  pthread_cond_destroy(&a->idle_cv);
  pthread_mutex_destroy(&a->mu);
  free(a);
}

/* r as the packed Event of "$audit" it becomes; *buf from cl_malloc. */
static int pack_event(const Clinlog__V1__AccessRecorded *r, uint8_t **buf, size_t *len,
                      cl_err *err) {
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  ev.body_case = CLINLOG__V1__EVENT__BODY_ACCESS_RECORDED;
  ev.access_recorded = (Clinlog__V1__AccessRecorded *)r;
  return cl_event_pack_node(&ev, CL_AUDIT_STREAM, buf, len, err);
}

/* t's record packed and hashed (t zeroed otherwise): 0 or pack's error. */
static int ticket_fill(ticket *t, const Clinlog__V1__AccessRecorded *r, cl_err *err) {
  int code = pack_event(r, &t->buf, &t->len, err);
  if (code == 0)
    cl_event_hash(t->buf, t->len, t->hash);
  return code;
}

/* Takes a's mutex and queues t, or refuses it (closing: the mutex is
 * released, CL_EUNAVAILABLE). */
static int enqueue(cl_audit *a, ticket *t, cl_err *err) {
  pthread_mutex_lock(&a->mu);
  if (a->closing) {
    pthread_mutex_unlock(&a->mu);
    return cl_err_set(err, CL_EUNAVAILABLE, "the audit trail is closing");
  }
  if (a->tail)
    a->tail->next = t;
  else
    a->head = t;
  a->tail = t;
  return 0;
}

int cl_audit_record(cl_audit *a, const Clinlog__V1__AccessRecorded *r, cl_err *err) {
  ticket t;
  memset(&t, 0, sizeof t);
  int code = ticket_fill(&t, r, err);
  if (code)
    return code;
  pthread_cond_init(&t.cv, NULL);
  if ((code = enqueue(a, &t, err)) != 0) {
    pthread_cond_destroy(&t.cv);
    ticket_wipe(&t);
    return code;
  }
  while (!t.done) {
    if (a->head && a->active < a->o.writers) /* lead a batch from the queue's head */
      lead_one(a);
    else
      pthread_cond_wait(&t.cv, &a->mu);
  }
  if (a->head && a->head->cb) /* async records behind, no caller to lead them */
    lead(a);
  pthread_mutex_unlock(&a->mu);
  pthread_cond_destroy(&t.cv);
  ticket_wipe(&t);
  if (t.err.code) {
    *err = t.err;
    return t.err.code;
  }
  return 0;
}

int cl_audit_record_async(cl_audit *a, const Clinlog__V1__AccessRecorded *r, cl_audit_done_fn done,
                          void *ctx, cl_err *err) {
  ticket *t = calloc(1, sizeof *t);
  if (!t)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  t->cb = done;
  t->cb_ctx = ctx;
  int code = ticket_fill(t, r, err);
  if (code == 0 && (code = enqueue(a, t, err)) != 0)
    ticket_wipe(t);
  if (code) {
    free(t);
    return code;
  }
  lead(a); /* t is not to be touched from here: its batch may have ended */
  pthread_mutex_unlock(&a->mu);
  return 0;
}

void cl_audit_get_stats(cl_audit *a, cl_audit_stats *st) {
  pthread_mutex_lock(&a->mu);
  *st = a->st;
  pthread_mutex_unlock(&a->mu);
}

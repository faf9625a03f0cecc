/* The audit recorder; see recorder.h.
 *
 * A caller packs and hashes its event on its own thread (the work that
 * scales with callers), queues a ticket that lives on its stack, and waits
 * on the ticket's own condition variable until the writer marks it done
 * (one wake-up per caller, not a broadcast to every waiter). A writer
 * takes the whole queue (up to max_batch) under `mu`, signs and appends
 * without it, then marks and signals the batch's tickets. Several writers
 * keep several batches in flight: while one waits for its commit, the
 * next forms and goes out, so throughput is not one batch per commit
 * latency. */
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
#define DEFAULT_WRITERS 4
#define MAX_WRITERS 16

typedef struct ticket {
  struct ticket *next;
  uint8_t *buf; /* the packed Event */
  size_t len;
  uint8_t hash[32];
  int done;
  pthread_cond_t cv; /* signalled when done */
  cl_err err;        /* the batch's outcome */
} ticket;

struct cl_audit {
  cl_audit_options o;
  pthread_t writers[MAX_WRITERS];
  size_t nwriters;
  pthread_mutex_t mu;
  pthread_cond_t work_cv; /* the queue grew, or closing */
  ticket *head, *tail;
  int closing;
  cl_audit_stats st;
};

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
    /* the log key as it is now: a log key rotation may switch it */
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
      cl_err_clear(&err); /* what a writer left in err on success means nothing */
    else if (err.code != code || !err.msg[0])
      cl_err_set(&err, code, "the audit trail's append failed (%s)", cl_errname(code));
  }
  free(hashes);
  free(evs);
  pthread_mutex_lock(&a->mu);
  size_t i = 0;
  for (ticket *t = first; i < n; i++) {
    ticket *next = t->next;
    t->err = err;
    t->done = 1;
    pthread_cond_signal(&t->cv); /* t may be gone once mu is released */
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
  pthread_mutex_unlock(&a->mu);
}

static void *writer_main(void *arg) {
  cl_audit *a = arg;
  pthread_mutex_lock(&a->mu);
  for (;;) {
    while (!a->head && !a->closing)
      pthread_cond_wait(&a->work_cv, &a->mu);
    if (!a->head)
      break; /* closing, nothing left */
    ticket *first = a->head, *t = first;
    size_t n = 1;
    while (t->next && n < a->o.max_batch) {
      t = t->next;
      n++;
    }
    a->head = t->next;
    if (!a->head)
      a->tail = NULL;
    pthread_mutex_unlock(&a->mu);
    commit_batch(a, first, n);
    pthread_mutex_lock(&a->mu);
  }
  pthread_mutex_unlock(&a->mu);
  return NULL;
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
  pthread_cond_init(&a->work_cv, NULL);
  for (; a->nwriters < a->o.writers; a->nwriters++)
    if (pthread_create(&a->writers[a->nwriters], NULL, writer_main, a) != 0) {
      cl_audit_close(a);
      return cl_err_set(err, CL_EFAILED, "audit: cannot start the writer threads");
    }
  *out = a;
  return 0;
}

void cl_audit_close(cl_audit *a) {
  if (!a)
    return;
  pthread_mutex_lock(&a->mu);
  a->closing = 1;
  pthread_cond_broadcast(&a->work_cv);
  pthread_mutex_unlock(&a->mu);
  for (size_t i = 0; i < a->nwriters; i++)
    pthread_join(a->writers[i], NULL);
  pthread_cond_destroy(&a->work_cv);
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

int cl_audit_record(cl_audit *a, const Clinlog__V1__AccessRecorded *r, cl_err *err) {
  ticket t;
  memset(&t, 0, sizeof t);
  int code = pack_event(r, &t.buf, &t.len, err);
  if (code)
    return code;
  cl_event_hash(t.buf, t.len, t.hash);
  pthread_cond_init(&t.cv, NULL);
  pthread_mutex_lock(&a->mu);
  if (a->closing) {
    pthread_mutex_unlock(&a->mu);
    pthread_cond_destroy(&t.cv);
    sodium_memzero(t.buf, t.len);
    cl_free(t.buf);
    return cl_err_set(err, CL_EUNAVAILABLE, "the audit trail is closing");
  }
  if (a->tail)
    a->tail->next = &t;
  else
    a->head = &t;
  a->tail = &t;
  pthread_cond_signal(&a->work_cv);
  while (!t.done)
    pthread_cond_wait(&t.cv, &a->mu);
  pthread_mutex_unlock(&a->mu);
  pthread_cond_destroy(&t.cv);
  sodium_memzero(t.buf, t.len); /* it names patients */
  cl_free(t.buf);
  if (t.err.code) {
    *err = t.err;
    return t.err.code;
  }
  return 0;
}

void cl_audit_get_stats(cl_audit *a, cl_audit_stats *st) {
  pthread_mutex_lock(&a->mu);
  *st = a->st;
  pthread_mutex_unlock(&a->mu);
}

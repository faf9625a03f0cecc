/* A node's appends, the callers' side (node.h): each batch prepared on the
 * calling thread, in parallel with other callers, then handed to the Raft
 * loop (node.c), which packs waiting batches into entries; the caller
 * either waits for its op (cl_repl_append_linked) or is called back when
 * it ends (cl_repl_append_start). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "replication/node.h"
#include "replication/node_int.h"

/* The op of b (and of `then`, linked to it, if not NULL): both prepared
 * here, in parallel with other callers. */
static int append_op(cl_repl *n, const Clinlog__V1__AppendBatch *b,
                     const Clinlog__V1__AppendBatch *then, op **out, cl_err *err) {
  Clinlog__V1__PreparedBatch *pb, *tpb = NULL;
  int rc;
  /* the linked batch first: a batch this thread signed with the log key
   * (cl_log_sign_batch) is then still the one its prepare remembers */
  if (then && (rc = cl_log_prepare(n->log, then, &tpb, err)))
    return rc;
  if ((rc = cl_log_prepare(n->log, b, &pb, err))) {
    if (tpb)
      clinlog__v1__prepared_batch__free_unpacked(tpb, NULL);
    return rc;
  }
  op *o = repl_op_new(OP_APPEND);
  if (!o) {
    clinlog__v1__prepared_batch__free_unpacked(pb, NULL);
    if (tpb)
      clinlog__v1__prepared_batch__free_unpacked(tpb, NULL);
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  }
  o->pb = pb;
  o->bytes = clinlog__v1__prepared_batch__get_packed_size(pb);
  /* encoded here, in parallel with other callers, so the leader's apply on
   * the Raft thread only finishes each record (NULL: it encodes them) */
  o->pre = cl_log_prefixes(pb);
  if (tpb) {
    tpb->with_previous = 1;
    o->then_pb = tpb;
    o->then_rc = cl_err_set(&o->then_err, CL_EPRECOND, "with_previous: not applied");
    o->then_pre = cl_log_prefixes(tpb);
    o->bytes += clinlog__v1__prepared_batch__get_packed_size(tpb);
  }
  *out = o;
  return 0;
}

/* The outcome of o, finished with rc (then: the batch linked to b, or
 * NULL), into r, *then_rc and *then_err (each optional but r); drops the
 * caller's reference. */
static void append_collect(cl_repl *n, op *o, int rc, const Clinlog__V1__AppendBatch *b,
                           const Clinlog__V1__AppendBatch *then, cl_append_result *r, int *then_rc,
                           cl_err *then_err, cl_err *err) {
  if (rc == 0 || rc == CL_ECONFLICT) {
    pthread_mutex_lock(&o->mu);
    *r = o->r;
    memset(&o->r, 0, sizeof o->r);
    if (then && then_rc)
      *then_rc = o->then_rc;
    if (then && then_err)
      *then_err = o->then_err;
    pthread_mutex_unlock(&o->mu);
    if (rc == CL_ECONFLICT)
      cl_log_name_conflict(n->log, b, o->pb, r, err); /* pb: still held by o */
  }
  repl_op_unref(n, o);
}

static void then_unknown(int *then_rc, cl_err *then_err) {
  if (then_rc)
    *then_rc = CL_EPRECOND;
  if (then_err)
    cl_err_set(then_err, CL_EPRECOND, "with_previous: the batch before it was not committed");
}

int cl_repl_append_linked(cl_repl *n, const Clinlog__V1__AppendBatch *b,
                          const Clinlog__V1__AppendBatch *then, int64_t deadline_ms,
                          cl_append_result *r, int *then_rc, cl_err *then_err, cl_err *err) {
  int rc = CL_EAGAIN;
  then_unknown(then_rc, then_err);
  for (int attempt = 0; attempt < 5 && rc == CL_EAGAIN; attempt++) {
    if (!cl_repl_leader(n, NULL, NULL, 0))
      return cl_err_set(err, CL_ENOTLEADER, "not the leader");
    op *o = NULL;
    if ((rc = append_op(n, b, then, &o, err)))
      return rc;
    rc = repl_op_run(n, o, deadline_ms, err);
    append_collect(n, o, rc, b, then, r, then_rc, then_err, err);
  }
  return rc;
}

int cl_repl_append(cl_repl *n, const Clinlog__V1__AppendBatch *b, int64_t deadline_ms,
                   cl_append_result *r, cl_err *err) {
  return cl_repl_append_linked(n, b, NULL, deadline_ms, r, NULL, NULL, err);
}

struct cl_repl_pending {
  cl_repl *n;
  const Clinlog__V1__AppendBatch *b, *then;
  void (*done)(void *, int);
  void *ctx;
  op *o;
  int attempts;
};

/* One try of p: CL_REPL_PENDING once its op is with the loop, else the
 * error (no op left). */
static int pending_try(cl_repl_pending *p, cl_err *err) {
  if (!cl_repl_leader(p->n, NULL, NULL, 0))
    return cl_err_set(err, CL_ENOTLEADER, "not the leader");
  op *o = NULL;
  int rc = append_op(p->n, p->b, p->then, &o, err);
  if (rc)
    return rc;
  p->attempts++;
  o->done_fn = p->done;
  o->done_ctx = p->ctx;
  p->o = o;
  if ((rc = repl_op_submit(p->n, o, err))) {
    repl_op_unref(p->n, o);
    p->o = NULL;
    return rc;
  }
  return CL_REPL_PENDING;
}

int cl_repl_append_start(cl_repl *n, const Clinlog__V1__AppendBatch *b,
                         const Clinlog__V1__AppendBatch *then, void (*done)(void *ctx, int here),
                         void *ctx, cl_repl_pending **out, cl_err *err) {
  cl_repl_pending *p = calloc(1, sizeof *p);
  *out = p;
  if (!p)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  p->n = n;
  p->b = b;
  p->then = then;
  p->done = done;
  p->ctx = ctx;
  int rc = pending_try(p, err);
  if (rc != CL_REPL_PENDING) {
    free(p);
    *out = NULL;
  }
  return rc;
}

int cl_repl_append_end(cl_repl_pending *p, cl_append_result *r, int *then_rc, cl_err *then_err,
                       cl_err *err) {
  op *o = p->o;
  then_unknown(then_rc, then_err);
  pthread_mutex_lock(&o->mu);
  int rc = o->rc;
  if (rc && err)
    *err = o->err;
  pthread_mutex_unlock(&o->mu);
  p->o = NULL;
  append_collect(p->n, o, rc, p->b, p->then, r, then_rc, then_err, err);
  if (rc == CL_EAGAIN && p->attempts < 5 && (rc = pending_try(p, err)) == CL_REPL_PENDING)
    return rc;
  free(p);
  return rc;
}

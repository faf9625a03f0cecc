/* The server engine's batch operations on a call (srv_send, srv_recv,
 * srv_finish and their kin; server_int.h): each answer's audit record is
 * committed before the answer leaves (record_then), without holding the
 * worker while it commits. The engine itself (threads, queues, life of a
 * call) is server.c. */
#include <grpc/support/alloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/grpc/client.h"
#include "adapters/grpc/server_int.h"

/* ------------------------------------------------------ batch operations */

static void start(srv_call *c, grpc_op *ops, size_t n, step_fn next) {
  c->next = next;
  grpc_call_error e = grpc_call_start_batch(c->gc, ops, n, &c->t_op, NULL);
  if (e != GRPC_CALL_OK) {
    fprintf(stderr, "clinlogd: grpc_call_start_batch: error %d\n", (int)e);
    if (c->send) {
      grpc_byte_buffer_destroy(c->send);
      c->send = NULL;
    }
    srv_enqueue(c, 0);
  }
}

static size_t add_md(srv_call *c, grpc_op *ops) {
  if (c->sent_md)
    return 0;
  c->sent_md = 1;
  memset(ops, 0, sizeof *ops);
  ops->op = GRPC_OP_SEND_INITIAL_METADATA;
  return 1;
}

void srv_send_then(srv_call *c, grpc_byte_buffer *bb, step_fn next, int cheap_next) {
  c->inline_next = cheap_next;
  srv_send(c, bb, next);
}

/* The audit trail's record of the call, committed before the first byte
 * of its answer leaves (once; see cl_svc_record_then), then `then` (with
 * the outcome: err->code 0, or the call must end with that error and
 * without its data), on this thread or the one that commits the record:
 * the worker goes on to other calls meanwhile. Calls that never got a
 * request context (unknown paths, refused while draining) have none. */
static void record_then(srv_call *c, int code, const char *detail, cl_svc_recorded_fn then) {
  if (!c->def || !c->rctx.transport) {
    cl_err ok;
    cl_err_clear(&ok);
    then(c, &ok);
    return;
  }
  cl_svc_record_then(c->srv->svc, &c->rctx, code, detail, then, c);
}

static void send_start(srv_call *c, grpc_byte_buffer *bb, step_fn next) {
  grpc_op ops[2];
  size_t n = add_md(c, ops);
  memset(&ops[n], 0, sizeof ops[n]);
  ops[n].op = GRPC_OP_SEND_MESSAGE;
  ops[n].data.send_message.send_message = bb;
  c->send = bb;
  start(c, ops, n + 1, next);
}

static void send_recorded(void *ctx, const cl_err *err) {
  srv_call *c = ctx;
  grpc_byte_buffer *bb = c->rec_send;
  step_fn next = c->rec_next;
  c->rec_send = NULL;
  c->rec_next = NULL;
  if (err->code) { /* no record, no data */
    grpc_byte_buffer_destroy(bb);
    srv_finish_err(c, err);
    return;
  }
  send_start(c, bb, next);
}

void srv_send(srv_call *c, grpc_byte_buffer *bb, step_fn next) {
  if (c->rctx.recorded) {
    send_start(c, bb, next);
    return;
  }
  c->rec_send = bb;
  c->rec_next = next;
  record_then(c, 0, "", send_recorded);
}

void srv_send_msg(srv_call *c, const ProtobufCMessage *m, step_fn next) {
  grpc_byte_buffer *bb = cl_grpc_pack(m);
  if (!bb) {
    srv_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
    return;
  }
  srv_send(c, bb, next);
}

void srv_recv(srv_call *c, step_fn next) {
  grpc_op ops[2];
  size_t n = add_md(c, ops);
  if (c->recv) {
    grpc_byte_buffer_destroy(c->recv);
    c->recv = NULL;
  }
  memset(&ops[n], 0, sizeof ops[n]);
  ops[n].op = GRPC_OP_RECV_MESSAGE;
  ops[n].data.recv_message.recv_message = &c->recv;
  atomic_store(&c->in_recv, 1);
  start(c, ops, n + 1, next);
}

void srv_trailer(srv_call *c, const char *key, const char *value) {
  if (c->ntrailing == sizeof c->trailing / sizeof c->trailing[0])
    return;
  c->trailing[c->ntrailing].key = grpc_slice_from_copied_string(key);
  c->trailing[c->ntrailing].value = grpc_slice_from_copied_string(value);
  c->ntrailing++;
}

void srv_finish_done(srv_call *c, int ok) {
  (void)ok;
  if (c->admitted) {
    char *d = grpc_slice_to_c_string(c->status_details);
    cl_svc_finished(c->srv->svc, &c->rctx, c->final_code, d);
    gpr_free(d);
  }
  for (size_t i = 0; i < c->ntrailing; i++) {
    grpc_slice_unref(c->trailing[i].key);
    grpc_slice_unref(c->trailing[i].value);
  }
  grpc_slice_unref(c->status_details);
  srv_call_unref(c); /* the flow's reference */
}

/* The status batch of srv_finish: c->send (the last message, or NULL),
 * c->fin_status and c->status_details. */
static void finish_start(srv_call *c) {
  grpc_op ops[3];
  size_t n = add_md(c, ops);
  if (c->send) {
    memset(&ops[n], 0, sizeof ops[n]);
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n].data.send_message.send_message = c->send;
    n++;
  }
  c->finishing = 1;
  if (c->fin_status != GRPC_STATUS_OK && c->final_code == 0) /* a status the handler gave */
    c->final_code = cl_client_errcode_of_status((int)c->fin_status);
  memset(&ops[n], 0, sizeof ops[n]);
  ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[n].data.send_status_from_server.status = c->fin_status;
  ops[n].data.send_status_from_server.status_details = &c->status_details;
  ops[n].data.send_status_from_server.trailing_metadata_count = c->ntrailing;
  ops[n].data.send_status_from_server.trailing_metadata = c->trailing;
  n++;
  c->next = srv_finish_done;
  if (grpc_call_start_batch(c->gc, ops, n, &c->t_op, NULL) != GRPC_CALL_OK) {
    if (c->send) {
      grpc_byte_buffer_destroy(c->send);
      c->send = NULL;
    }
    srv_finish_done(c, 0);
  }
}

static void finish_recorded(void *ctx, const cl_err *err) {
  srv_call *c = ctx;
  if (err->code) { /* no record, no data: the call ends with the recorder's error instead */
    if (c->send) {
      grpc_byte_buffer_destroy(c->send);
      c->send = NULL;
    }
    c->final_code = err->code;
    for (size_t i = 0; i < c->ntrailing; i++) { /* what the handler meant to say goes too */
      grpc_slice_unref(c->trailing[i].key);
      grpc_slice_unref(c->trailing[i].value);
    }
    c->ntrailing = 0;
    srv_trailer(c, "clinlog-error", cl_errname(err->code));
    c->fin_status = cl_grpc_status_of(err->code);
    grpc_slice_unref(c->status_details);
    c->status_details = grpc_slice_from_copied_string(err->msg);
  }
  finish_start(c);
}

void srv_finish(srv_call *c, grpc_status_code code, const char *details,
                const ProtobufCMessage *last) {
  /* the answer is made here (last is the caller's), recorded, then sent */
  if (last && !srv_cancelled(c))
    c->send = cl_grpc_pack(last);
  c->fin_status = code;
  c->status_details = grpc_slice_from_copied_string(details ? details : "");
  if (c->rctx.recorded) {
    finish_start(c);
    return;
  }
  int cl_code = c->final_code;
  if (code != GRPC_STATUS_OK && cl_code == 0)
    cl_code = cl_client_errcode_of_status((int)code);
  record_then(c, code == GRPC_STATUS_OK ? 0 : cl_code, details ? details : "", finish_recorded);
}

void srv_finish_err(srv_call *c, const cl_err *err) {
  c->final_code = err->code ? err->code : CL_EFAILED;
  srv_trailer(c, "clinlog-error", cl_errname(err->code));
  srv_finish(c, cl_grpc_status_of(err->code), err->msg[0] ? err->msg : cl_strerror(err->code),
             NULL);
}

int srv_cancelled(srv_call *c) {
  if (atomic_load(&c->closed) && c->cancelled)
    return 1;
  gpr_timespec now = gpr_now(c->deadline.clock_type);
  return c->def && gpr_time_cmp(c->deadline, now) < 0;
}


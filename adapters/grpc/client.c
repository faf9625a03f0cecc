/* The clinlog C client over the gRPC C core; see client.h.
 *
 * Every call owns a pluck completion queue and plucks each batch it starts
 * by that batch's tag before returning, so no completion ever outlives the
 * function that started it, with one exception: a streaming call's
 * RECV_STATUS_ON_CLIENT batch is started when the call starts and plucked
 * when the call ends (end of stream, error, cancel or free). A call is torn
 * down only after every batch it started has been plucked; then the call is
 * unreferenced and its queue shut down and destroyed.
 *
 * Every call has a deadline: options.timeout_ms for unary calls, and
 * options.stream_timeout_ms (default: none, keepalive pings find dead
 * peers) for the streaming ones. */
#include "adapters/grpc/client.h"

#include <errno.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/grpc/grpcutil.h"

_Static_assert((int)CL_GRPC_UNAVAILABLE == (int)GRPC_STATUS_UNAVAILABLE, "status numbering");
_Static_assert((int)CL_GRPC_FAILED_PRECONDITION == (int)GRPC_STATUS_FAILED_PRECONDITION,
               "status numbering");
_Static_assert((int)CL_GRPC_UNAUTHENTICATED == (int)GRPC_STATUS_UNAUTHENTICATED,
               "status numbering");

struct cl_client {
  grpc_channel *ch;      /* thread-safe; the only shared state */
  grpc_metadata md;      /* sent with every call when md_n is 1 */
  size_t md_n;
  char *target;          /* owned copy */
  int timeout_ms;        /* unary calls */
  int stream_timeout_ms; /* streaming calls; 0 = no deadline */
  void *reg[M_COUNT];    /* registered-call handles, owned by the channel */
};

/* ------------------------------------------------------------- helpers */

int cl_client_errcode(const char *name) {
  static const struct {
    const char *name;
    int code;
  } T[] = {
#define CL_ERR_ROW(n, v, d) {#n, (v)},
      CL_ERRORS(CL_ERR_ROW)
#undef CL_ERR_ROW
  };
  if (!name)
    return 0;
  for (size_t i = 0; i < sizeof T / sizeof T[0]; i++)
    if (!strcmp(T[i].name, name))
      return T[i].code;
  return 0;
}

int cl_client_errcode_of_status(int code) {
  switch (code) {
  case CL_GRPC_OK:
    return 0;
  case CL_GRPC_CANCELLED:
  case CL_GRPC_DEADLINE_EXCEEDED:
  case CL_GRPC_UNAVAILABLE:
  case CL_GRPC_ABORTED:
    return CL_EAGAIN;
  case CL_GRPC_INVALID_ARGUMENT:
  case CL_GRPC_OUT_OF_RANGE:
  case CL_GRPC_UNIMPLEMENTED:
    return CL_EINVAL;
  case CL_GRPC_NOT_FOUND:
    return CL_ENOTFOUND;
  case CL_GRPC_ALREADY_EXISTS:
    return CL_EEXIST;
  case CL_GRPC_PERMISSION_DENIED:
    return CL_EDENIED;
  case CL_GRPC_UNAUTHENTICATED:
    return CL_EUNAUTH;
  case CL_GRPC_RESOURCE_EXHAUSTED:
    return CL_ETOOBIG;
  case CL_GRPC_FAILED_PRECONDITION:
    return CL_ECONFLICT;
  case CL_GRPC_DATA_LOSS:
    return CL_ECORRUPT;
  default:
    return CL_EIO;
  }
}

const char *cl_client_status_name(int code) { return cl_grpc_status_name((grpc_status_code)code); }

void cl_client_options_init(cl_client_options *o) {
  memset(o, 0, sizeof *o);
  o->timeout_ms = 30000;
  o->keepalive_ms = 30000;
}

static gpr_timespec deadline_after(int ms) {
  if (ms <= 0)
    return gpr_inf_future(GPR_CLOCK_MONOTONIC);
  return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

/* Reads a PEM file into a NUL-terminated malloc'd string. */
static char *read_pem(const char *path, cl_err *err) {
  FILE *f = fopen(path, "r");
  if (!f) {
    cl_err_set(err, CL_EIO, "%s: %s", path, strerror(errno));
    return NULL;
  }
  size_t cap = 1 << 20;
  char *buf = malloc(cap);
  size_t n = buf ? fread(buf, 1, cap - 1, f) : 0;
  fclose(f);
  if (!buf) {
    cl_err_set(err, CL_ENOMEM, "out of memory");
    return NULL;
  }
  if (n == 0) {
    free(buf);
    cl_err_set(err, CL_EIO, "%s: empty or unreadable", path);
    return NULL;
  }
  buf[n] = '\0';
  return buf;
}

static void wipe_free(char *s) {
  if (s) {
    volatile char *p = s;
    while (*p)
      *p++ = 0;
    free(s);
  }
}

/* ---------------------------------------------------------- open/close */

static grpc_channel_credentials *make_creds(const cl_client_options *o, cl_err *err) {
  if (o->plaintext)
    return grpc_insecure_credentials_create();
  if (!o->cert_pem_file != !o->key_pem_file) {
    cl_err_set(err, CL_EINVAL, "mutual TLS needs both a certificate and a key");
    return NULL;
  }
  char *ca = NULL, *cert = NULL, *key = NULL;
  grpc_channel_credentials *cr = NULL;
  if (o->ca_pem_file && !(ca = read_pem(o->ca_pem_file, err)))
    goto out;
  if (o->cert_pem_file &&
      (!(cert = read_pem(o->cert_pem_file, err)) || !(key = read_pem(o->key_pem_file, err))))
    goto out;
  grpc_ssl_pem_key_cert_pair pair = {key, cert};
  cr = grpc_ssl_credentials_create(ca, cert ? &pair : NULL, NULL, NULL);
  if (!cr)
    cl_err_set(err, CL_EINVAL, "TLS credentials rejected (check the PEM files)");
out:
  wipe_free(key);
  free(cert);
  free(ca);
  return cr;
}

int cl_client_open(const cl_client_options *o, cl_client **out, cl_err *err) {
  if (!o || !o->target || !o->target[0])
    return cl_err_set(err, CL_EINVAL, "client: no server address");
  cl_client *c = calloc(1, sizeof *c);
  if (!c)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  c->target = strdup(o->target);
  if (!c->target) {
    free(c);
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  }
  c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 30000;
  c->stream_timeout_ms = o->stream_timeout_ms > 0 ? o->stream_timeout_ms : 0;
  grpc_init();
  grpc_channel_credentials *creds = make_creds(o, err);
  if (!creds) {
    grpc_shutdown();
    free(c->target);
    free(c);
    return err && err->code ? err->code : CL_EINVAL;
  }
  grpc_arg args[12];
  size_t n = 0;
  args[n++] =
      (grpc_arg){GRPC_ARG_INTEGER, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, {.integer = 64 << 20}};
  args[n++] = (grpc_arg){GRPC_ARG_INTEGER, GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, {.integer = -1}};
  args[n++] = (grpc_arg){GRPC_ARG_INTEGER,
                         GRPC_ARG_KEEPALIVE_TIME_MS,
                         {.integer = o->keepalive_ms > 0 ? o->keepalive_ms : 30000}};
  args[n++] = (grpc_arg){GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_TIMEOUT_MS, {.integer = 20000}};
  /* idle Subscribe streams carry no data for long stretches: keep pinging */
  args[n++] = (grpc_arg){GRPC_ARG_INTEGER, GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, {.integer = 0}};
  /* reconnect soon after a server restart (gRPC's default backoff grows to
   * two minutes, during which fail-fast calls fail at once). Not
   * GRPC_ARG_MIN_RECONNECT_BACKOFF_MS: gRPC core takes it as the time a
   * connection attempt has to finish its TCP and HTTP/2 handshake too (20 s
   * by default), and at 250 ms a busy server's first answer came too late:
   * the attempt failed and so did the calls waiting on it */
  args[n++] = (grpc_arg){GRPC_ARG_INTEGER, GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, {.integer = 250}};
  args[n++] = (grpc_arg){GRPC_ARG_INTEGER, GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, {.integer = 5000}};
  if (o->server_name && !o->plaintext)
    args[n++] = (grpc_arg){
        GRPC_ARG_STRING, GRPC_SSL_TARGET_NAME_OVERRIDE_ARG, {.string = (char *)o->server_name}};
  grpc_channel_args ca = {n, args};
  c->ch = grpc_channel_create(o->target, creds, &ca);
  grpc_channel_credentials_release(creds);
  if (!c->ch) {
    grpc_shutdown();
    free(c->target);
    free(c);
    return cl_err_set(err, CL_EINVAL, "client: cannot create a channel to %s", o->target);
  }
  for (int m = 0; m < M_COUNT; m++)
    c->reg[m] = grpc_channel_register_call(c->ch, cl_grpc_method_path[m], NULL, NULL);
  if (o->md_key && o->md_value) {
    c->md.key = grpc_slice_from_copied_string(o->md_key);
    c->md.value = grpc_slice_from_copied_string(o->md_value);
    c->md_n = 1;
  }
  *out = c;
  return 0;
}

void cl_client_close(cl_client *c) {
  if (!c)
    return;
  grpc_channel_destroy(c->ch);
  if (c->md_n) {
    grpc_slice_unref(c->md.key);
    grpc_slice_unref(c->md.value);
  }
  free(c->target);
  free(c);
  grpc_shutdown();
}

const char *cl_client_target(const cl_client *c) { return c->target; }

/* ------------------------------------------------------------ one call */

typedef struct call {
  grpc_completion_queue *cq;
  grpc_call *gc;
  grpc_metadata_array md_init, md_trail;
  grpc_status_code status;
  grpc_slice details;
  const char *error_string; /* gpr_malloc'd by the core, or NULL */
  grpc_byte_buffer *recv;   /* last received message, or NULL */
} call;

/* Creates the call of method m (registered) or `path` (m == M_COUNT). */
static int call_start(cl_client *c, int m, const char *path, int timeout_ms, call *k, cl_err *err) {
  memset(k, 0, sizeof *k);
  grpc_metadata_array_init(&k->md_init);
  grpc_metadata_array_init(&k->md_trail);
  k->status = GRPC_STATUS_UNKNOWN;
  k->details = grpc_empty_slice();
  k->cq = grpc_completion_queue_create_for_pluck(NULL);
  if (!k->cq)
    return cl_err_set(err, CL_ENOMEM, "client: cannot create a completion queue");
  gpr_timespec dl = deadline_after(timeout_ms);
  if (m < M_COUNT) {
    k->gc = grpc_channel_create_registered_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, k->cq,
                                                c->reg[m], dl, NULL);
  } else {
    grpc_slice method = grpc_slice_from_copied_string(path);
    k->gc = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, k->cq, method, NULL, dl,
                                     NULL);
    grpc_slice_unref(method);
  }
  if (!k->gc) {
    grpc_completion_queue_destroy(k->cq);
    k->cq = NULL;
    return cl_err_set(err, CL_EAGAIN, "client: cannot create a call to %s", c->target);
  }
  return 0;
}

/* Frees everything of a call whose batches have all been plucked. */
static void call_end(call *k) {
  if (k->gc)
    grpc_call_unref(k->gc);
  if (k->cq) {
    grpc_completion_queue_shutdown(k->cq);
    grpc_completion_queue_destroy(k->cq);
  }
  if (k->recv)
    grpc_byte_buffer_destroy(k->recv);
  grpc_metadata_array_destroy(&k->md_init);
  grpc_metadata_array_destroy(&k->md_trail);
  grpc_slice_unref(k->details);
  if (k->error_string)
    gpr_free((void *)k->error_string);
  memset(k, 0, sizeof *k);
}

static int start_batch(call *k, const grpc_op *ops, size_t n, void *tag, cl_err *err) {
  grpc_call_error e = grpc_call_start_batch(k->gc, ops, n, tag, NULL);
  if (e != GRPC_CALL_OK)
    return cl_err_set(err, CL_EIO, "client: grpc_call_start_batch failed (error %d)", (int)e);
  return 0;
}

/* Waits for batch `tag`; returns its success flag. `timeout_ms` 0 polls, < 0
 * waits for ever (every call has a deadline or is cancelled, so a batch
 * always completes). Returns -1 if a poll found it not yet complete. */
static int pluck(call *k, void *tag, int timeout_ms) {
  gpr_timespec dl = timeout_ms < 0    ? gpr_inf_future(GPR_CLOCK_REALTIME)
                    : timeout_ms == 0 ? gpr_time_0(GPR_CLOCK_REALTIME)
                                      : deadline_after(timeout_ms);
  for (;;) {
    grpc_event ev = grpc_completion_queue_pluck(k->cq, tag, dl, NULL);
    if (ev.type == GRPC_OP_COMPLETE)
      return ev.success;
    if (ev.type == GRPC_QUEUE_TIMEOUT && timeout_ms >= 0)
      return -1;
    /* spurious timeout of an infinite wait, or shutdown (not ours): retry */
  }
}

static void fill_recv_status(grpc_op *op, call *k) {
  memset(op, 0, sizeof *op);
  op->op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  op->data.recv_status_on_client.trailing_metadata = &k->md_trail;
  op->data.recv_status_on_client.status = &k->status;
  op->data.recv_status_on_client.status_details = &k->details;
  op->data.recv_status_on_client.error_string = &k->error_string;
}

static int md_is(const grpc_metadata *m, const char *key) {
  return grpc_slice_str_cmp(m->key, key) == 0;
}

static void md_copy(const grpc_metadata *m, char *out, size_t size) {
  size_t n = GRPC_SLICE_LENGTH(m->value);
  if (n >= size)
    n = size - 1;
  memcpy(out, GRPC_SLICE_START_PTR(m->value), n);
  out[n] = '\0';
}

static uint64_t md_u64(const grpc_metadata *m) {
  char buf[32];
  md_copy(m, buf, sizeof buf);
  return strtoull(buf, NULL, 10);
}

/* Translates the call's final status into *st (may be NULL) and, when it is
 * not OK, into the returned CL_E* code and *err. */
static int finish_status(const call *k, cl_client_status *st, cl_err *err) {
  cl_client_status local;
  if (!st)
    st = &local;
  memset(st, 0, sizeof *st);
  st->code = (int)k->status;
  size_t n = GRPC_SLICE_LENGTH(k->details);
  if (n) {
    if (n >= sizeof st->details)
      n = sizeof st->details - 1;
    memcpy(st->details, GRPC_SLICE_START_PTR(k->details), n);
    st->details[n] = '\0';
  } else if (k->status != GRPC_STATUS_OK && k->error_string) {
    snprintf(st->details, sizeof st->details, "%s", k->error_string);
  }
  for (size_t i = 0; i < k->md_trail.count; i++) {
    const grpc_metadata *m = &k->md_trail.metadata[i];
    if (md_is(m, "clinlog-error")) {
      md_copy(m, st->error_name, sizeof st->error_name);
      st->error = cl_client_errcode(st->error_name);
    } else if (md_is(m, "clinlog-stream")) {
      md_copy(m, st->stream, sizeof st->stream);
    } else if (md_is(m, "clinlog-current-version")) {
      st->has_current_version = 1;
      st->current_version = md_u64(m);
    } else if (md_is(m, "clinlog-committed-batches")) {
      st->has_committed_batches = 1;
      st->committed_batches = md_u64(m);
    }
  }
  if (st->code == CL_GRPC_OK)
    return 0;
  int code = st->error ? st->error : cl_client_errcode_of_status(st->code);
  return cl_err_set(err, code, "%s: %s", cl_client_status_name(st->code),
                    st->details[0] ? st->details : "(no details)");
}

static int oom(cl_err *err) { return cl_err_set(err, CL_ENOMEM, "out of memory"); }

/* ------------------------------------------------------------ unary */

/* Copies the value of the first entry named `key` in `a` to out; 0 if none. */
static int md_find(const grpc_metadata_array *a, const char *key, char *out, size_t size) {
  for (size_t i = 0; i < a->count; i++)
    if (md_is(&a->metadata[i], key)) {
      md_copy(&a->metadata[i], out, size);
      return 1;
    }
  return 0;
}

/* One unary call of method m (registered) or `path` (m == M_COUNT), with a
 * deadline (timeout_ms; 0: the client's) and, with md_key, the value of one
 * response metadata entry (trailing first, then initial) copied out. */
static int unary(cl_client *c, int m, const char *path, const ProtobufCMessage *req,
                 const ProtobufCMessageDescriptor *rd, int timeout_ms, const char *request_id,
                 const char *md_key, char *md_value, size_t md_size, ProtobufCMessage **out,
                 cl_client_status *st, cl_err *err) {
  *out = NULL;
  if (st)
    memset(st, 0, sizeof *st);
  int want_md = md_key && md_value && md_size > 0;
  if (want_md)
    md_value[0] = '\0';
  grpc_byte_buffer *send = cl_grpc_pack(req);
  if (!send)
    return oom(err);
  call k;
  int rc = call_start(c, m, path, timeout_ms > 0 ? timeout_ms : c->timeout_ms, &k, err);
  if (rc) {
    grpc_byte_buffer_destroy(send);
    if (st)
      st->code = CL_GRPC_UNAVAILABLE;
    return rc;
  }
  grpc_metadata md[2];
  size_t nmd = 0;
  int own_rid = 0; /* md[nmd-1].value is ours to release */
  if (c->md_n)
    md[nmd++] = c->md;
  if (request_id && request_id[0]) { /* the caller's, so both ends' records join */
    memset(&md[nmd], 0, sizeof md[nmd]);
    md[nmd].key = grpc_slice_from_static_string("x-request-id");
    md[nmd++].value = grpc_slice_from_copied_string(request_id);
    own_rid = 1;
  }
  grpc_op ops[6];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].data.send_initial_metadata.count = nmd;
  ops[0].data.send_initial_metadata.metadata = md;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = send;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &k.md_init;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &k.recv;
  fill_recv_status(&ops[5], &k);
  if ((rc = start_batch(&k, ops, 6, &k, err)) == 0) {
    pluck(&k, &k, -1);
    if (want_md && !md_find(&k.md_trail, md_key, md_value, md_size))
      md_find(&k.md_init, md_key, md_value, md_size);
    rc = finish_status(&k, st, err);
    if (rc == 0) {
      *out = cl_grpc_unpack(k.recv, rd);
      if (!*out)
        rc = cl_err_set(err, CL_EMALFORMED, "%s: response is not a valid %s",
                        path ? path : cl_grpc_method_path[m], rd->name);
    }
  }
  grpc_byte_buffer_destroy(send);
  call_end(&k);
  if (own_rid) /* (not c->md_n: another thread may have closed c meanwhile) */
    grpc_slice_unref(md[nmd - 1].value);
  return rc;
}

/* The registered method of a path, or M_COUNT. */
static int method_of(const char *path) {
  for (int m = 0; m < M_COUNT; m++)
    if (!strcmp(path, cl_grpc_method_path[m]))
      return m;
  return M_COUNT;
}

int cl_client_unary(cl_client *c, const char *method, const ProtobufCMessage *req,
                    const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **out,
                    cl_client_status *st, cl_err *err) {
  int m = method_of(method);
  return unary(c, m, m < M_COUNT ? NULL : method, req, resp_desc, 0, NULL, NULL, NULL, 0, out, st,
               err);
}

#define UNARY(fn, M, Req, Resp, desc)                                                              \
  int fn(cl_client *c, const Req *req, Resp **out, cl_client_status *st, cl_err *err) {            \
    return unary(c, (M), NULL, &req->base, &(desc), 0, NULL, NULL, NULL, 0,                       \
                 (ProtobufCMessage **)out, \
                 st, err);                                                                        \
  }

UNARY(cl_client_append, M_APPEND, Clinlog__V1__AppendBatch, Clinlog__V1__AppendResponse,
      clinlog__v1__append_response__descriptor)
UNARY(cl_client_get_checkpoint, M_GET_CHECKPOINT, Clinlog__V1__GetCheckpointRequest,
      Clinlog__V1__Checkpoint, clinlog__v1__checkpoint__descriptor)
UNARY(cl_client_prove_inclusion, M_PROVE_INCLUSION, Clinlog__V1__ProveInclusionRequest,
      Clinlog__V1__InclusionProof, clinlog__v1__inclusion_proof__descriptor)
UNARY(cl_client_prove_consistency, M_PROVE_CONSISTENCY, Clinlog__V1__ProveConsistencyRequest,
      Clinlog__V1__ConsistencyProof, clinlog__v1__consistency_proof__descriptor)
UNARY(cl_client_get_event, M_GET_EVENT, Clinlog__V1__GetEventRequest, Clinlog__V1__RecordedEvent,
      clinlog__v1__recorded_event__descriptor)
UNARY(cl_client_health_check, M_HEALTH_CHECK, Grpc__Health__V1__HealthCheckRequest,
      Grpc__Health__V1__HealthCheckResponse, grpc__health__v1__health_check_response__descriptor)

#undef UNARY

/* ---------------------------------------------------- server streams */

struct cl_client_stream {
  call k;
  const ProtobufCMessageDescriptor *desc; /* message type of the stream */
  int got_md;                             /* RECV_INITIAL_METADATA done */
  int ended;                              /* the status batch has been plucked */
  int rc;                                 /* once ended: 0 or the error */
  cl_err final;                           /* once ended with an error: its context */
  cl_client_status st;                    /* once ended */
  char t_send, t_recv, t_status;          /* tags: their addresses */
};

/* Starts method m (registered) or `path` (m == M_COUNT). */
static int stream_open(cl_client *c, int m, const char *path, const ProtobufCMessage *req,
                       const ProtobufCMessageDescriptor *desc, cl_client_stream **out,
                       cl_err *err) {
  cl_client_stream *s = calloc(1, sizeof *s);
  if (!s)
    return oom(err);
  s->desc = desc;
  grpc_byte_buffer *send = cl_grpc_pack(req);
  if (!send) {
    free(s);
    return oom(err);
  }
  int rc = call_start(c, m, path, c->stream_timeout_ms, &s->k, err);
  if (rc) {
    grpc_byte_buffer_destroy(send);
    free(s);
    return rc;
  }
  grpc_op ops[3];
  memset(ops, 0, sizeof ops);
  fill_recv_status(&ops[0], &s->k);
  if ((rc = start_batch(&s->k, ops, 1, &s->t_status, err)) != 0) {
    grpc_byte_buffer_destroy(send);
    call_end(&s->k);
    free(s);
    return rc;
  }
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].data.send_initial_metadata.count = c->md_n;
  ops[0].data.send_initial_metadata.metadata = &c->md;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = send;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  if (start_batch(&s->k, ops, 3, &s->t_send, err) == 0)
    pluck(&s->k, &s->t_send, -1); /* a failure shows in the status */
  else
    grpc_call_cancel(s->k.gc, NULL);
  grpc_byte_buffer_destroy(send);
  *out = s;
  return 0;
}

int cl_client_read(cl_client *c, const Clinlog__V1__ReadRequest *req, cl_client_stream **out,
                   cl_err *err) {
  return stream_open(c, M_READ, NULL, &req->base, &clinlog__v1__recorded_event__descriptor, out,
                     err);
}

int cl_client_subscribe(cl_client *c, const Clinlog__V1__SubscribeRequest *req,
                        cl_client_stream **out, cl_err *err) {
  return stream_open(c, M_SUBSCRIBE, NULL, &req->base, &clinlog__v1__subscribe_response__descriptor,
                     out, err);
}

int cl_client_server_stream(cl_client *c, const char *method, const ProtobufCMessage *req,
                            const ProtobufCMessageDescriptor *desc, cl_client_stream **out,
                            cl_err *err) {
  int m = method_of(method);
  return stream_open(c, m, m < M_COUNT ? NULL : method, req, desc, out, err);
}

int cl_client_cds_alerts(cl_client *c, const Clinlog__V1__AlertsRequest *req,
                         cl_client_stream **out, cl_err *err) {
  return stream_open(c, M_CDS_ALERTS, NULL, &req->base, &clinlog__v1__alert__descriptor, out, err);
}

int cl_client_health_watch(cl_client *c, const Grpc__Health__V1__HealthCheckRequest *req,
                           cl_client_stream **out, cl_err *err) {
  return stream_open(c, M_HEALTH_WATCH, NULL, &req->base,
                     &grpc__health__v1__health_check_response__descriptor, out, err);
}

int cl_client_fetch_records(cl_client *c, const Clinlog__V1__FetchRecordsRequest *req,
                            cl_client_stream **out, cl_err *err) {
  return stream_open(c, M_FETCH_RECORDS, NULL, &req->base, &clinlog__v1__record_chunk__descriptor,
                     out, err);
}

/* Plucks the status batch and records how the stream ended. */
static int stream_end(cl_client_stream *s, int rc, cl_err *err) {
  pluck(&s->k, &s->t_status, -1);
  s->ended = 1;
  cl_err_clear(&s->final);
  int src = finish_status(&s->k, &s->st, &s->final);
  if (rc == 0)
    rc = src;
  else if (err) /* our own error (bad message) wins over the CANCELLED it caused
                 */
    s->final = *err;
  s->rc = rc;
  if (err && rc)
    *err = s->final;
  return rc;
}

int cl_client_stream_next(cl_client_stream *s, ProtobufCMessage **msg, cl_err *err) {
  *msg = NULL;
  if (s->ended) {
    if (err && s->rc)
      *err = s->final;
    return s->rc;
  }
  grpc_op ops[2];
  size_t n = 0;
  memset(ops, 0, sizeof ops);
  if (!s->got_md) {
    ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[n++].data.recv_initial_metadata.recv_initial_metadata = &s->k.md_init;
    s->got_md = 1;
  }
  ops[n].op = GRPC_OP_RECV_MESSAGE;
  ops[n++].data.recv_message.recv_message = &s->k.recv;
  if (start_batch(&s->k, ops, n, &s->t_recv, err) != 0) {
    grpc_call_cancel(s->k.gc, NULL);
    return stream_end(s, err ? err->code : CL_EIO, err);
  }
  pluck(&s->k, &s->t_recv, -1);
  if (!s->k.recv)
    return stream_end(s, 0, err);
  ProtobufCMessage *m = cl_grpc_unpack(s->k.recv, s->desc);
  grpc_byte_buffer_destroy(s->k.recv);
  s->k.recv = NULL;
  if (!m) {
    cl_err tmp;
    cl_err_set(&tmp, CL_EMALFORMED, "stream message is not a valid %s", s->desc->name);
    grpc_call_cancel_with_status(s->k.gc, GRPC_STATUS_INTERNAL, "client: undecodable message",
                                 NULL);
    int rc = stream_end(s, CL_EMALFORMED, &tmp);
    if (err)
      *err = tmp;
    return rc;
  }
  *msg = m;
  return 1;
}

void cl_client_stream_cancel(cl_client_stream *s) {
  if (s)
    grpc_call_cancel(s->k.gc, NULL);
}

const cl_client_status *cl_client_stream_status(const cl_client_stream *s) { return &s->st; }

void cl_client_stream_free(cl_client_stream *s) {
  if (!s)
    return;
  if (!s->ended) {
    grpc_call_cancel(s->k.gc, NULL);
    pluck(&s->k, &s->t_status, -1);
  }
  call_end(&s->k);
  free(s);
}

/* ------------------------------------- client streaming (AppendStream, SubmitReadings) */

struct cl_client_cstream {
  call k;
  int method; /* enum cl_method */
  int ended;  /* the status batch has been plucked */
  int rc;     /* once ended: the status as a CL_E* code */
  cl_err final;
  cl_client_status st;
  char t_md, t_send, t_close, t_status; /* tags */
};

/* "AppendStream" of "clinlog.v1.Log/AppendStream", for messages. */
static const char *short_name(int method) {
  const char *n = cl_grpc_method_path[method], *sl = strrchr(n, '/');
  return sl ? sl + 1 : n;
}

int cl_client_cstream_open(cl_client *c, int method, cl_client_cstream **out, cl_err *err) {
  cl_client_cstream *a = calloc(1, sizeof *a);
  if (!a)
    return oom(err);
  a->method = method;
  int rc = call_start(c, method, NULL, c->stream_timeout_ms, &a->k, err);
  if (rc) {
    free(a);
    return rc;
  }
  /* the response side runs from the start, so a server that ends the call
   * early (a failed batch) is noticed by the next send */
  grpc_op ops[3];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[0].data.recv_initial_metadata.recv_initial_metadata = &a->k.md_init;
  ops[1].op = GRPC_OP_RECV_MESSAGE;
  ops[1].data.recv_message.recv_message = &a->k.recv;
  fill_recv_status(&ops[2], &a->k);
  if ((rc = start_batch(&a->k, ops, 3, &a->t_status, err)) != 0) {
    call_end(&a->k);
    free(a);
    return rc;
  }
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].data.send_initial_metadata.count = c->md_n;
  ops[0].data.send_initial_metadata.metadata = &c->md;
  if (start_batch(&a->k, ops, 1, &a->t_md, err) == 0)
    pluck(&a->k, &a->t_md, -1);
  else
    grpc_call_cancel(a->k.gc, NULL);
  *out = a;
  return 0;
}

static void cs_ended(cl_client_cstream *a) {
  a->ended = 1;
  cl_err_clear(&a->final);
  a->rc = finish_status(&a->k, &a->st, &a->final);
}

int cl_client_cstream_send(cl_client_cstream *a, const ProtobufCMessage *m, cl_err *err) {
  if (!a->ended && pluck(&a->k, &a->t_status, 0) >= 0)
    cs_ended(a);
  if (a->ended) {
    if (a->rc) {
      if (err)
        *err = a->final;
      return a->rc;
    }
    return cl_err_set(err, CL_EIO, "%s: the server ended the call early", short_name(a->method));
  }
  grpc_byte_buffer *bb = cl_grpc_pack(m);
  if (!bb)
    return oom(err);
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_SEND_MESSAGE;
  op.data.send_message.send_message = bb;
  int rc = start_batch(&a->k, &op, 1, &a->t_send, err);
  int ok = rc == 0 && pluck(&a->k, &a->t_send, -1) == 1;
  grpc_byte_buffer_destroy(bb);
  if (ok)
    return 0;
  /* the call is over: its status says why */
  grpc_call_cancel(a->k.gc, NULL);
  pluck(&a->k, &a->t_status, -1);
  cs_ended(a);
  if (a->rc) {
    if (err)
      *err = a->final;
    return a->rc;
  }
  return cl_err_set(err, CL_EIO, "%s: send failed", short_name(a->method));
}

int cl_client_cstream_finish(cl_client_cstream *a, const ProtobufCMessageDescriptor *d,
                             ProtobufCMessage **out, cl_client_status *st, cl_err *err) {
  if (out)
    *out = NULL;
  if (!a->ended) {
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    if (start_batch(&a->k, &op, 1, &a->t_close, NULL) == 0)
      pluck(&a->k, &a->t_close, -1);
    else
      grpc_call_cancel(a->k.gc, NULL);
    pluck(&a->k, &a->t_status, -1);
    cs_ended(a);
  }
  int rc = a->rc;
  if (rc && err)
    *err = a->final;
  if (st)
    *st = a->st;
  if (rc == 0) {
    ProtobufCMessage *m = cl_grpc_unpack(a->k.recv, d);
    if (!m)
      rc = cl_err_set(err, CL_EMALFORMED, "%s: the summary is not a valid %s",
                      short_name(a->method), d->short_name);
    else if (out)
      *out = m;
    else
      protobuf_c_message_free_unpacked(m, NULL);
  }
  call_end(&a->k);
  free(a);
  return rc;
}

void cl_client_cstream_abort(cl_client_cstream *a) {
  if (!a)
    return;
  if (!a->ended) {
    grpc_call_cancel(a->k.gc, NULL);
    pluck(&a->k, &a->t_status, -1);
  }
  call_end(&a->k);
  free(a);
}

/* AppendStream over the generic client stream. */
int cl_client_append_stream_open(cl_client *c, cl_client_append_stream **out, cl_err *err) {
  return cl_client_cstream_open(c, M_APPEND_STREAM, (cl_client_cstream **)out, err);
}

int cl_client_append_stream_send(cl_client_append_stream *a, const Clinlog__V1__AppendBatch *batch,
                                 cl_err *err) {
  return cl_client_cstream_send((cl_client_cstream *)a, &batch->base, err);
}

int cl_client_append_stream_finish(cl_client_append_stream *a,
                                   Clinlog__V1__AppendStreamSummary **summary, cl_client_status *st,
                                   cl_err *err) {
  return cl_client_cstream_finish((cl_client_cstream *)a,
                                  &clinlog__v1__append_stream_summary__descriptor,
                                  (ProtobufCMessage **)summary, st, err);
}

void cl_client_append_stream_abort(cl_client_append_stream *a) {
  cl_client_cstream_abort((cl_client_cstream *)a);
}

/* ------------------------------------------- unary with metadata out */

/* unary() with a per-call deadline and one metadata value copied out before
 * the call's metadata is released. */
int cl_client_unary_md(cl_client *c, const char *method, const ProtobufCMessage *req,
                       const ProtobufCMessageDescriptor *resp_desc, int timeout_ms,
                       const char *request_id, const char *md_key, char *md_value, size_t md_size,
                       ProtobufCMessage **out, cl_client_status *st, cl_err *err) {
  if (!method || !method[0] || !req || !resp_desc) {
    *out = NULL;
    return cl_err_set(err, CL_EINVAL, "client: method, request and response type required");
  }
  int m = method_of(method);
  return unary(c, m, m < M_COUNT ? NULL : method, req, resp_desc, timeout_ms, request_id, md_key,
               md_value, md_size, out, st, err);
}

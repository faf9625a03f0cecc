/* The Raft transport of a clinlog node: libraft's TCP transport with the
 * Raft part of each address, and mutual TLS on every stream; see
 * transport.h for the contract it keeps with libraft.
 *
 * `pub` is what libraft calls; `tcp` is libraft's own TCP transport, which
 * calls back into wt_accept / wt_connected / wt_closed with a pointer to
 * `tcp`, hence the container_of arithmetic. Closing has two parts, the TCP
 * transport and the TLS sessions; `closing` counts those still open and
 * the last one to finish calls libraft back. */
#include "replication/transport.h"

#include <pthread.h>
#include <raft.h>
#include <raft/uv.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cl_rtransport {
  struct raft_uv_transport pub;
  struct raft_uv_transport tcp;
  raft_uv_accept_cb accept_cb;
  raft_uv_transport_close_cb close_cb;
  char address[CL_RTRANSPORT_ADDR_MAX]; /* the TCP transport keeps a pointer to it */
  /* mutual TLS on every stream (replication/tls.h); NULL: plaintext */
  cl_rtls *tls;
  uv_loop_t *loop;
  int standalone; /* no listener, no connections */
  int closing;    /* parts (TCP transport, TLS sessions) still closing */
};
typedef struct cl_rtransport wtransport;

void cl_rtransport_raft_part(const char *address, char *out, size_t cap) {
  const char *sep = strchr(address, CL_RTRANSPORT_ADDR_SEP);
  size_t n = sep ? (size_t)(sep - address) : strlen(address);
  if (n >= cap)
    n = cap - 1;
  memcpy(out, address, n);
  out[n] = '\0';
}

void cl_rtransport_api_part(const char *address, char *out, size_t cap) {
  const char *sep = strchr(address, CL_RTRANSPORT_ADDR_SEP);
  snprintf(out, cap, "%s", sep ? sep + 1 : "");
}

static int wt_init(struct raft_uv_transport *t, raft_id id, const char *address) {
  wtransport *w = (wtransport *)t;
  cl_rtransport_raft_part(address, w->address, sizeof w->address);
  int rv = w->tcp.init(&w->tcp, id, w->address);
  if (rv)
    snprintf(t->errmsg, sizeof t->errmsg, "%s", w->tcp.errmsg);
  return rv;
}

/* Raft messages are small and latency-bound: no Nagle delay on either side. */
static void nodelay(struct uv_stream_s *stream) {
  if (stream && stream->type == UV_TCP)
    uv_tcp_nodelay((uv_tcp_t *)stream, 1);
}

static void free_stream(uv_handle_t *h) { raft_free(h); }

/* An accepted stream in its TLS handshake: what raft's accept callback
 * needs once the peer is verified. */
typedef struct incoming {
  wtransport *w;
  raft_id id;
  char address[CL_RTRANSPORT_ADDR_MAX];
} incoming;

static void wt_accepted_tls(void *arg, uv_stream_t *stream, int status) {
  incoming *in = arg;
  if (status == 0)
    in->w->accept_cb(&in->w->pub, in->id, in->address, stream);
  free(in);
}

static void wt_accept(struct raft_uv_transport *t, raft_id id, const char *address,
                      struct uv_stream_s *stream) {
  wtransport *w = (wtransport *)((char *)t - offsetof(wtransport, tcp));
  nodelay(stream);
  if (!w->tls) {
    w->accept_cb(&w->pub, id, address, stream);
    return;
  }
  /* the peer claimed `address` in libraft's preamble: its certificate must
   * name that host */
  incoming *in = calloc(1, sizeof *in);
  if (!in) {
    uv_close((uv_handle_t *)stream, free_stream);
    return;
  }
  in->w = w;
  in->id = id;
  snprintf(in->address, sizeof in->address, "%s", address);
  if (cl_rtls_wrap(w->tls, w->loop, stream, 1, in->address, wt_accepted_tls, in) != 0)
    free(in); /* the stream is closed */
}

static int wt_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb) {
  wtransport *w = (wtransport *)t;
  w->accept_cb = cb;
  w->tcp.data = t->data;
  if (w->standalone)
    return 0;
  int rv = w->tcp.listen(&w->tcp, wt_accept);
  if (rv)
    snprintf(t->errmsg, sizeof t->errmsg, "%s", w->tcp.errmsg);
  return rv;
}

/* raft_uv's connect callback: always the same function, and the request
 * carries no pointer back to our transport, so it is kept here. */
static _Atomic(raft_uv_connect_cb) raft_connect_cb;

/* Connects in flight over TLS transports, found again by their request
 * (the TCP transport calls back with the request only). Guarded by
 * `outgoing_mu` (each node's loop thread may touch it). */
typedef struct outgoing {
  struct raft_uv_connect *req;
  wtransport *w;
  char address[CL_RTRANSPORT_ADDR_MAX];
  struct outgoing *next;
} outgoing;
static pthread_mutex_t outgoing_mu = PTHREAD_MUTEX_INITIALIZER;
static outgoing *outgoing_list;

static outgoing *outgoing_take(struct raft_uv_connect *req) {
  pthread_mutex_lock(&outgoing_mu);
  outgoing **pp = &outgoing_list, *o;
  while ((o = *pp) && o->req != req)
    pp = &o->next;
  if (o)
    *pp = o->next;
  pthread_mutex_unlock(&outgoing_mu);
  return o;
}

static void wt_connected_tls(void *arg, uv_stream_t *stream, int status) {
  outgoing *o = arg;
  struct raft_uv_connect *req = o->req;
  free(o);
  /* a refused handshake is a failed connection to raft: it retries */
  atomic_load (&raft_connect_cb)(req, stream,
                                 status == 0                 ? 0
                                 : status == CL_EUNAVAILABLE ? RAFT_CANCELED
                                                             : RAFT_NOCONNECTION);
}

static void wt_connected(struct raft_uv_connect *req, struct uv_stream_s *stream, int status) {
  outgoing *o = outgoing_take(req);
  if (status == 0)
    nodelay(stream);
  if (!o || status != 0) {
    free(o);
    atomic_load (&raft_connect_cb)(req, stream, status);
    return;
  }
  if (cl_rtls_wrap(o->w->tls, o->w->loop, stream, 0, o->address, wt_connected_tls, o) != 0) {
    free(o); /* the stream is closed */
    atomic_load (&raft_connect_cb)(req, NULL, RAFT_NOCONNECTION);
  }
}

static int wt_connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
                      const char *address, raft_uv_connect_cb cb) {
  wtransport *w = (wtransport *)t;
  if (w->standalone) {
    snprintf(t->errmsg, sizeof t->errmsg, "this node has no Raft transport");
    return RAFT_NOCONNECTION;
  }
  char a[CL_RTRANSPORT_ADDR_MAX];
  cl_rtransport_raft_part(address, a, sizeof a);
  w->tcp.data = t->data;
  atomic_store(&raft_connect_cb, cb);
  outgoing *o = NULL;
  if (w->tls) {
    if (!(o = calloc(1, sizeof *o)))
      return RAFT_NOMEM;
    o->req = req;
    o->w = w;
    snprintf(o->address, sizeof o->address, "%s", a);
    pthread_mutex_lock(&outgoing_mu);
    o->next = outgoing_list;
    outgoing_list = o;
    pthread_mutex_unlock(&outgoing_mu);
  }
  int rv = w->tcp.connect(&w->tcp, req, id, a, wt_connected);
  if (rv) {
    free(outgoing_take(req));
    snprintf(t->errmsg, sizeof t->errmsg, "%s", w->tcp.errmsg);
  }
  return rv;
}

static void wt_part_closed(wtransport *w) {
  if (--w->closing == 0 && w->close_cb)
    w->close_cb(&w->pub);
}

static void wt_closed(struct raft_uv_transport *t) {
  wt_part_closed((wtransport *)((char *)t - offsetof(wtransport, tcp)));
}

static void wt_tls_closed(void *arg) { wt_part_closed(arg); }

static void wt_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb) {
  wtransport *w = (wtransport *)t;
  w->close_cb = cb;
  w->closing = w->tls ? 2 : 1;
  w->tcp.close(&w->tcp, wt_closed);
  if (w->tls)
    cl_rtls_close(w->tls, wt_tls_closed, w);
}

/* ------------------------------------------------------------ lifetime */

int cl_rtransport_new(uv_loop_t *loop, const cl_rtls_options *tls, int standalone,
                      cl_rtransport **out, cl_err *err) {
  wtransport *w = calloc(1, sizeof *w);
  if (!w)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  int rv;
  w->tcp.version = 1; /* required before init */
  if ((rv = raft_uv_tcp_init(&w->tcp, loop))) {
    cl_err_set(err, CL_EIO, "raft transport: %s", raft_strerror(rv));
    goto fail_w;
  }
  if (tls && (rv = cl_rtls_new(tls, &w->tls, err)) != 0)
    goto fail_tcp;
  w->loop = loop;
  w->standalone = standalone;
  w->pub.version = 1;
  w->pub.init = wt_init;
  w->pub.listen = wt_listen;
  w->pub.connect = wt_connect;
  w->pub.close = wt_close;
  *out = w;
  return 0;
fail_tcp:
  raft_uv_tcp_close(&w->tcp);
fail_w:
  free(w);
  return err->code;
}

struct raft_uv_transport *cl_rtransport_raft(cl_rtransport *t) {
  return &t->pub;
}

void cl_rtransport_free(cl_rtransport *t) {
  if (!t)
    return;
  raft_uv_tcp_close(&t->tcp);
  cl_rtls_free(t->tls);
  free(t);
}

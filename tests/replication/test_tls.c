/* Tests for replication/tls.c: the mutual-TLS wrapper of Raft streams,
 * driven on a private libuv loop over real loopback TCP connections.
 *
 * The contract under test (tls.h): every cl_rtls_wrap that returns 0 runs
 * its `done` callback exactly once, whatever ends the handshake (success, a
 * refused peer, a TCP stream that fails under it, cl_rtls_close), and
 * cl_rtls_close calls back once every session's handles are closed. node.c
 * turns `done` into libraft's connect callback; libraft's uv transport
 * contract (raft/uv.h) needs that callback for every connect request, also
 * when the transport closes, or raft_close never completes (a clinlogd that
 * hung on SIGTERM after a partition: docs/replication.md).
 *
 * The certificate is made by net_fixture.c (EC P-256, self-signed, SAN IP
 * 127.0.0.1, serving as its own CA), so the tests need no files. */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <raft.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "replication/tls.h"
#include "tests/replication/net_fixture.h"

static cl_rtls *new_tls(void) {
  cl_rtls_options o;
  nx_tls_options(&o);
  cl_rtls *t = NULL;
  cl_err err = {0};
  cr_assert_eq(cl_rtls_new(&o, &t, &err), 0, "%s", err.msg);
  return t;
}

/* What a `done` callback saw. */
typedef struct done_rec {
  int calls;
  int status;
  uv_stream_t *stream;
} done_rec;

static void on_done(void *arg, uv_stream_t *stream, int status) {
  done_rec *d = arg;
  d->calls++;
  d->status = status;
  d->stream = stream;
}

static void on_closed(void *arg) { (*(int *)arg)++; }

static void free_pipe(uv_handle_t *h) { raft_free(h); }

TestSuite(rtls, .init = nx_setup, .timeout = 60);

/* ------------------------------------------------------------- tests */

/* The peer resets the connection before the ClientHello goes out, as the
 * cluster's link proxy does when it cannot reach the dialed node: the write
 * of the first TLS flight fails under the handshake. `done` must still run,
 * once, with CL_EIO; before the fix the session ended silently and libraft's
 * connect request was never answered. */
Test(rtls, client_handshake_write_fails_calls_done_once) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  cl_rtls *t = new_tls();
  int port, peer;
  int lfd = nx_listener(&port);
  uv_tcp_t *c = nx_connect_tcp(&loop, lfd, port, &peer);

  nx_reset(peer);
  uv_os_fd_t cfd;
  cr_assert_eq(uv_fileno((uv_handle_t *)c, &cfd), 0);
  nx_await_reset(cfd);

  done_rec d = {0};
  cr_assert_eq(cl_rtls_wrap(t, &loop, (uv_stream_t *)c, 0, "127.0.0.1:1", on_done, &d), 0);
  cr_assert_eq(d.calls, 0, "done ran from inside cl_rtls_wrap");
  nx_run_until(&loop, &d.calls, 2000);
  nx_run_for(&loop, 50); /* a second call would show up here */
  cr_assert_eq(d.calls, 1, "done ran %d times for a handshake whose TCP write failed", d.calls);
  cr_assert_eq(d.status, CL_EIO);
  cr_assert_null(d.stream);
  cr_assert_eq(cl_rtls_sessions(t), 0);

  int closed = 0;
  cl_rtls_close(t, on_closed, &closed);
  nx_run_until(&loop, &closed, 2000);
  cr_assert_eq(closed, 1);
  cr_assert_eq(d.calls, 1);
  cl_rtls_free(t);
  close(lfd);
  nx_close_loop(&loop);
}

/* The peer goes quiet in the middle of the handshake (a partition): the
 * handshake waits; cl_rtls_close ends it with CL_EUNAVAILABLE, once, and
 * calls back after the TCP handle has closed. Both roles. */
Test(rtls, close_during_handshake_calls_done_once) {
  for (int server = 0; server <= 1; server++) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    cl_rtls *t = new_tls();
    int port, peer;
    int lfd = nx_listener(&port);
    uv_tcp_t *c = nx_connect_tcp(&loop, lfd, port, &peer);
    done_rec d = {0};
    cr_assert_eq(cl_rtls_wrap(t, &loop, (uv_stream_t *)c, server, "127.0.0.1:1", on_done, &d), 0);
    nx_run_for(&loop, 50); /* the ClientHello leaves (client); nothing arrives */
    cr_assert_eq(d.calls, 0);
    cr_assert_eq(cl_rtls_sessions(t), 1);

    int closed = 0;
    cl_rtls_close(t, on_closed, &closed);
    cr_assert_eq(d.calls, 1, "server %d: done not run by cl_rtls_close", server);
    cr_assert_eq(d.status, CL_EUNAVAILABLE);
    nx_run_until(&loop, &closed, 2000);
    nx_run_for(&loop, 20);
    cr_assert_eq(closed, 1, "server %d: close did not call back once", server);
    cr_assert_eq(d.calls, 1);
    cr_assert_eq(cl_rtls_sessions(t), 0);

    /* after close, a new stream is refused and closed, and done never runs */
    uv_tcp_t *late = nx_connect_tcp(&loop, lfd, port, &peer);
    done_rec d2 = {0};
    cr_assert_eq(cl_rtls_wrap(t, &loop, (uv_stream_t *)late, server, NULL, on_done, &d2),
                 CL_EUNAVAILABLE);
    nx_run_for(&loop, 20);
    cr_assert_eq(d2.calls, 0);
    close(peer);
    cl_rtls_free(t);
    close(lfd);
    nx_close_loop(&loop);
  }
}

/* The peer hangs up (FIN) after the ClientHello: the read side sees EOF
 * under the handshake; done runs once with CL_EIO and nothing is logged. */
Test(rtls, peer_hangs_up_during_handshake) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  cl_rtls *t = new_tls();
  int port, peer;
  int lfd = nx_listener(&port);
  uv_tcp_t *c = nx_connect_tcp(&loop, lfd, port, &peer);
  done_rec d = {0};
  cr_assert_eq(cl_rtls_wrap(t, &loop, (uv_stream_t *)c, 0, "127.0.0.1:1", on_done, &d), 0);
  nx_run_for(&loop, 50);
  char buf[4096];
  cr_assert(read(peer, buf, sizeof buf) > 0, "no ClientHello");
  shutdown(peer, SHUT_RDWR);
  nx_run_until(&loop, &d.calls, 2000);
  nx_run_for(&loop, 50);
  cr_assert_eq(d.calls, 1);
  cr_assert_eq(d.status, CL_EIO);
  cr_assert_eq(nx_nlog, 0, "logged: %s", nx_log[0]);
  close(peer);
  int closed = 0;
  cl_rtls_close(t, on_closed, &closed);
  nx_run_until(&loop, &closed, 2000);
  cr_assert_eq(closed, 1);
  cl_rtls_free(t);
  close(lfd);
  nx_close_loop(&loop);
}

/* A full handshake between two sessions of one context over loopback
 * (client and server on the same loop): both report success with raft's
 * end of a bridge, bytes cross it, and cl_rtls_close ends the bridges so
 * that raft's ends read EOF. */
typedef struct pipe_rx {
  char buf[64];
  size_t n;
  int eof;
} pipe_rx;

static void rx_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  (void)s;
  pipe_rx *r = h->data;
  *b = uv_buf_init(r->buf + r->n, (unsigned)(sizeof r->buf - r->n));
}

static void rx_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  (void)b;
  pipe_rx *r = st->data;
  if (n > 0)
    r->n += (size_t)n;
  else if (n < 0)
    r->eof = 1;
}

typedef struct accepted {
  uv_tcp_t *tcp;
  int n;
} accepted;

static void on_accept(uv_stream_t *server, int status) {
  cr_assert_eq(status, 0);
  accepted *out = server->data;
  uv_tcp_t *s = raft_malloc(sizeof *s);
  uv_tcp_init(server->loop, s);
  cr_assert_eq(uv_accept(server, (uv_stream_t *)s), 0);
  out->tcp = s;
  out->n++;
}

static void on_connect(uv_connect_t *req, int status) { *(int *)req->data = status == 0 ? 1 : -1; }

static void on_written(uv_write_t *w, int status) { *(int *)w->data = status == 0 ? 1 : -1; }

Test(rtls, handshake_and_bridge) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  cl_rtls *t = new_tls();
  uv_tcp_t lst;
  accepted acc = {0};
  uv_tcp_init(&loop, &lst);
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  cr_assert_eq(uv_tcp_bind(&lst, (struct sockaddr *)&a, 0), 0);
  lst.data = &acc;
  cr_assert_eq(uv_listen((uv_stream_t *)&lst, 8, on_accept), 0);
  int alen = sizeof a;
  uv_tcp_getsockname(&lst, (struct sockaddr *)&a, &alen);
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(a.sin_port));

  uv_tcp_t *c = raft_malloc(sizeof *c);
  uv_tcp_init(&loop, c);
  uv_connect_t creq;
  int connected = 0;
  creq.data = &connected;
  cr_assert_eq(uv_tcp_connect(&creq, c, (struct sockaddr *)&a, on_connect), 0);
  nx_run_until(&loop, &connected, 5000);
  cr_assert_eq(connected, 1);
  nx_run_until(&loop, &acc.n, 5000);
  cr_assert_eq(acc.n, 1);

  done_rec dc = {0}, ds = {0};
  cr_assert_eq(cl_rtls_wrap(t, &loop, (uv_stream_t *)acc.tcp, 1, "127.0.0.1:1", on_done, &ds), 0);
  cr_assert_eq(cl_rtls_wrap(t, &loop, (uv_stream_t *)c, 0, addr, on_done, &dc), 0);
  uint64_t end = uv_hrtime() + 5000000000u;
  while ((!dc.calls || !ds.calls) && uv_hrtime() < end)
    uv_run(&loop, UV_RUN_NOWAIT);
  cr_assert_eq(dc.calls, 1);
  cr_assert_eq(ds.calls, 1);
  cr_assert_eq(dc.status, 0, "client: %d (%s)", dc.status, nx_nlog ? nx_log[0] : "");
  cr_assert_eq(ds.status, 0, "server: %d (%s)", ds.status, nx_nlog ? nx_log[0] : "");
  cr_assert_eq(cl_rtls_sessions(t), 2);

  pipe_rx rx = {0};
  ds.stream->data = &rx;
  cr_assert_eq(uv_read_start(ds.stream, rx_alloc, rx_read), 0);
  uv_write_t w;
  int written = 0;
  w.data = &written;
  uv_buf_t b = uv_buf_init("raft bytes", 10);
  cr_assert_eq(uv_write(&w, dc.stream, &b, 1, on_written), 0);
  end = uv_hrtime() + 5000000000u;
  while (rx.n < 10 && uv_hrtime() < end)
    uv_run(&loop, UV_RUN_NOWAIT);
  cr_assert_eq(written, 1);
  cr_assert_eq(rx.n, 10);
  cr_assert_arr_eq(rx.buf, "raft bytes", 10);

  int closed = 0;
  cl_rtls_close(t, on_closed, &closed);
  nx_run_until(&loop, &rx.eof, 2000);
  cr_assert(rx.eof, "raft's end did not read EOF after cl_rtls_close");
  nx_run_until(&loop, &closed, 2000);
  cr_assert_eq(closed, 1);
  cr_assert_eq(dc.calls, 1);
  cr_assert_eq(ds.calls, 1);
  uv_close((uv_handle_t *)dc.stream, free_pipe);
  uv_close((uv_handle_t *)ds.stream, free_pipe);
  uv_close((uv_handle_t *)&lst, NULL);
  cl_rtls_free(t);
  nx_close_loop(&loop);
}

/* Tests for replication/transport.c: the node's Raft transport driven the
 * way libraft's uv backend drives it (raft/uv.h: init, connect, close), on
 * a private loop, with plain loopback sockets playing the peer.
 *
 * What libraft needs (transport.h): every connect it made gets exactly one
 * callback, also when the transport closes or the TLS handshake dies under
 * it, and close calls back once. A connect callback that never comes makes
 * raft_close wait forever: a clinlogd that hung on SIGTERM after a
 * partition (cluster test_partition, seed 856945187) had lost one when the
 * peer reset the connection before the ClientHello was written (see
 * test_tls.c for that exact interleaving). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <raft.h>
#include <raft/uv.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "replication/transport.h"
#include "tests/replication/net_fixture.h"

/* What libraft would see. */
typedef struct fake_raft {
  int connects; /* connect callbacks */
  int status;   /* the last one's status */
  int closes;   /* close callbacks */
  int connects_at_close;
} fake_raft;

static void free_stream(uv_handle_t *h) { raft_free(h); }

static void on_connect(struct raft_uv_connect *req, struct uv_stream_s *stream, int status) {
  fake_raft *f = req->data;
  f->connects++;
  f->status = status;
  if (stream) /* raft owns it */
    uv_close((uv_handle_t *)stream, free_stream);
}

static void on_close(struct raft_uv_transport *t) {
  fake_raft *f = t->data;
  f->closes++;
  f->connects_at_close = f->connects;
}

/* A TLS transport for node 1 on `loop`, initialized as libraft does. */
static cl_rtransport *new_transport(uv_loop_t *loop, fake_raft *f) {
  cl_rtls_options o;
  nx_tls_options(&o);
  cl_rtransport *tr = NULL;
  cl_err err = {0};
  cr_assert_eq(cl_rtransport_new(loop, &o, 0, &tr, &err), 0, "%s", err.msg);
  struct raft_uv_transport *t = cl_rtransport_raft(tr);
  t->data = f;
  cr_assert_eq(t->init(t, 1, "127.0.0.1:1|127.0.0.1:2"), 0, "%s", t->errmsg);
  return tr;
}

/* Closes the transport as libraft does and checks it calls back once. */
static void close_transport(uv_loop_t *loop, cl_rtransport *tr, fake_raft *f) {
  struct raft_uv_transport *t = cl_rtransport_raft(tr);
  t->close(t, on_close);
  nx_run_until(loop, &f->closes, 2000);
  nx_run_for(loop, 20);
  cr_assert_eq(f->closes, 1, "the transport's close called back %d times", f->closes);
}

/* Has libraft's preamble (24 bytes and the address) reached `lfd`'s
 * pending connection? Accepts it on the way (*peer). */
static int preamble_arrived(int lfd, int *peer) {
  if (*peer < 0) {
    *peer = accept(lfd, NULL, NULL);
    if (*peer < 0)
      return 0;
  }
  char buf[64];
  ssize_t n = recv(*peer, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
  return n >= 24;
}

TestSuite(transport, .init = nx_setup, .timeout = 60);

/* The transport closes while the TLS handshake of a connect waits for a
 * silent peer: the connect callback runs once, RAFT_CANCELED, before the
 * close callback. */
Test(transport, close_cancels_a_connect_in_its_handshake) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  fake_raft f = {0};
  cl_rtransport *tr = new_transport(&loop, &f);
  int port;
  int lfd = nx_listener(&port);
  cr_assert_eq(fcntl(lfd, F_SETFL, O_NONBLOCK), 0);
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%d|127.0.0.1:9", port);
  struct raft_uv_connect req = {.data = &f};
  struct raft_uv_transport *t = cl_rtransport_raft(tr);
  cr_assert_eq(t->connect(t, &req, 2, addr, on_connect), 0, "%s", t->errmsg);
  cr_assert_eq(f.connects, 0, "connect called back from inside the call");
  /* the peer accepts, reads nothing and says nothing */
  int peer = -1;
  uint64_t end = uv_hrtime() + 5000000000u;
  while (!preamble_arrived(lfd, &peer) && uv_hrtime() < end)
    nx_run_for(&loop, 1);
  cr_assert(peer >= 0, "no connection");
  nx_run_for(&loop, 100);
  cr_assert_eq(f.connects, 0);

  close_transport(&loop, tr, &f);
  cr_assert_eq(f.connects, 1, "connect called back %d times", f.connects);
  cr_assert_eq(f.status, RAFT_CANCELED);
  cr_assert_eq(f.connects_at_close, 1, "close called back before the connect");
  cl_rtransport_free(tr);
  close(peer);
  close(lfd);
  nx_close_loop(&loop);
}

/* The peer resets the connection as soon as libraft's preamble has
 * arrived (the cluster's link proxy does this when the dialed node is
 * down): the connect still gets exactly one callback, RAFT_NOCONNECTION (so
 * raft retries), and the close then completes. On this loop the TLS
 * client's first flight is usually written before the reset lands, so the
 * handshake dies on a read; the rarer order, where that first write itself
 * fails (the one that lost the callback before the fix), is forced
 * deterministically one layer down, in test_tls.c
 * (client_handshake_write_fails_calls_done_once). */
Test(transport, connect_answered_once_when_the_peer_resets_after_the_preamble) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  fake_raft f = {0};
  cl_rtransport *tr = new_transport(&loop, &f);
  int port;
  int lfd = nx_listener(&port);
  cr_assert_eq(fcntl(lfd, F_SETFL, O_NONBLOCK), 0);
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%d|127.0.0.1:9", port);
  struct raft_uv_connect req = {.data = &f};
  struct raft_uv_transport *t = cl_rtransport_raft(tr);
  cr_assert_eq(t->connect(t, &req, 2, addr, on_connect), 0, "%s", t->errmsg);

  /* one loop iteration at a time: reset as soon as the preamble is there */
  int peer = -1;
  uint64_t end = uv_hrtime() + 5000000000u;
  while (!preamble_arrived(lfd, &peer) && uv_hrtime() < end) {
    uv_run(&loop, UV_RUN_NOWAIT);
    if (!preamble_arrived(lfd, &peer))
      usleep(200);
  }
  cr_assert(peer >= 0, "no connection");
  cr_assert_eq(f.connects, 0, "connect finished before the reset");
  nx_reset(peer);

  nx_run_until(&loop, &f.connects, 2000);
  nx_run_for(&loop, 50);
  cr_assert_eq(f.connects, 1, "connect called back %d times", f.connects);
  cr_assert_eq(f.status, RAFT_NOCONNECTION);

  close_transport(&loop, tr, &f);
  cr_assert_eq(f.connects, 1);
  cl_rtransport_free(tr);
  close(lfd);
  nx_close_loop(&loop);
}

/* A standalone transport refuses connects at once, and closes. */
Test(transport, standalone_refuses_connects) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  fake_raft f = {0};
  cl_rtransport *tr = NULL;
  cl_err err = {0};
  cr_assert_eq(cl_rtransport_new(&loop, NULL, 1, &tr, &err), 0, "%s", err.msg);
  struct raft_uv_transport *t = cl_rtransport_raft(tr);
  t->data = &f;
  cr_assert_eq(t->init(t, 1, "127.0.0.1:1|127.0.0.1:2"), 0);
  struct raft_uv_connect req = {.data = &f};
  cr_assert_eq(t->connect(t, &req, 2, "127.0.0.1:3|127.0.0.1:4", on_connect), RAFT_NOCONNECTION);
  close_transport(&loop, tr, &f);
  cr_assert_eq(f.connects, 0);
  cl_rtransport_free(tr);
  nx_close_loop(&loop);
}

/* The address helpers. */
Test(transport, address_parts) {
  char r[16], a[16];
  cl_rtransport_raft_part("10.0.0.1:7000|10.0.0.1:7443", r, sizeof r);
  cl_rtransport_api_part("10.0.0.1:7000|10.0.0.1:7443", a, sizeof a);
  cr_assert_str_eq(r, "10.0.0.1:7000");
  cr_assert_str_eq(a, "10.0.0.1:7443");
  cl_rtransport_raft_part("h:1", r, sizeof r);
  cl_rtransport_api_part("h:1", a, sizeof a);
  cr_assert_str_eq(r, "h:1");
  cr_assert_str_eq(a, "");
  cl_rtransport_raft_part("a-very-long-host-name:7000|x", r, 8);
  cr_assert_str_eq(r, "a-very-");
}

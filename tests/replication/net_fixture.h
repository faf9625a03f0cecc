/* Fixtures of the Raft network tests (test_tls.c, test_transport.c): a
 * throwaway certificate, a private libuv loop driven step by step, and
 * plain loopback sockets to play the peer. They fail the running Criterion
 * test on any error. */
#ifndef CL_TESTS_REPLICATION_NET_FIXTURE_H
#define CL_TESTS_REPLICATION_NET_FIXTURE_H

#include <uv.h>

#include "replication/tls.h"

/* TLS options for a self-signed certificate naming IP 127.0.0.1 that is
 * also the CA (made once per process; the PEM stays valid until exit).
 * Refusals are logged into nx_log[] (nx_nlog lines). */
void nx_tls_options(cl_rtls_options *o);
extern char nx_log[16][512];
extern int nx_nlog;

/* Ignores SIGPIPE (libuv writes to sockets with write(2)), clears nx_log. */
void nx_setup(void);

/* Runs `loop` one non-blocking iteration at a time until *flag is nonzero
 * or `ms` have passed. */
void nx_run_until(uv_loop_t *loop, const int *flag, int ms);
/* Runs `loop` for `ms`, whatever happens. */
void nx_run_for(uv_loop_t *loop, int ms);
/* Runs the loop until nothing is left on it and closes it (fails the test
 * if a handle stays open). */
void nx_close_loop(uv_loop_t *loop);

/* A listening plain socket on 127.0.0.1 (its port in *port). */
int nx_listener(int *port);
/* A raft_malloc'd uv_tcp_t connected to `port` on `loop`, and in *peer the
 * plain socket accepted from `lfd` at the other end. */
uv_tcp_t *nx_connect_tcp(uv_loop_t *loop, int lfd, int port, int *peer);
/* Resets the connection of `fd` (SO_LINGER 0, close). */
void nx_reset(int fd);
/* Waits until `fd` has seen its peer reset the connection. */
void nx_await_reset(int fd);

#endif

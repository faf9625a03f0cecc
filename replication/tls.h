/* Mutual TLS under the Raft transport (OpenSSL libssl over libuv).
 *
 * libraft's TCP transport connects, accepts and exchanges its own preamble
 * (protocol version, the sender's id and Raft address); node.c then hands
 * each such TCP stream to cl_rtls_wrap, which runs a TLS handshake on it
 * (client side on connect, server side on accept) with memory BIOs fed by
 * libuv reads and drained by libuv writes. Both sides require a peer
 * certificate that chains to the cluster CA (TLS 1.2 minimum, 1.3
 * preferred) and, with `verify_name`, that names the host of the peer's Raft
 * address (a SAN IP or DNS name; the CN when there is no SAN). Only then does
 * raft get a stream: one end of a fresh AF_UNIX socketpair as a uv_pipe_t,
 * whose other end this module bridges to the TLS connection (decrypted
 * bytes -> the pair; bytes raft writes into the pair -> encrypted -> TCP).
 *
 * Invariants:
 *  - raft never sees a byte that did not come out of a verified TLS session,
 *    and nothing raft writes leaves the process unencrypted;
 *  - closing either side closes the other: EOF or an error on the pair
 *    closes the TCP stream (after a TLS close_notify), EOF, an alert or an
 *    error on TCP closes our end of the pair, so raft reads EOF;
 *  - a handshake that fails closes the TCP stream and writes one line to the
 *    log naming the peer address and the reason;
 *  - memory queued towards either side stays bounded: a side whose writes
 *    are pending above CL_RTLS_HIGH_WATER stops the reads that feed it until
 *    they drain.
 *
 * Threads: cl_rtls_new and cl_rtls_free on any thread; everything else on
 * the thread that runs the loop passed to cl_rtls_wrap (the node's Raft
 * loop), never concurrently. The only shared state is the SSL_CTX, which
 * OpenSSL makes safe to use from several threads.
 *
 * What stays in the clear: libraft's TCP preamble, sent before TLS starts
 * (the protocol version, the sender's Raft id and its Raft host:port). Every
 * Raft message, entry, snapshot and configuration travels inside TLS. */
#ifndef CL_REPLICATION_TLS_H
#define CL_REPLICATION_TLS_H

#include <stddef.h>
#include <uv.h>

#include "store/err.h"

typedef struct cl_rtls cl_rtls;

/* Bytes queued towards one side above which the other side's reads stop. */
#define CL_RTLS_HIGH_WATER (4u << 20)

typedef struct cl_rtls_options {
  /* PEM: this node's certificate (chain), its private key and the cluster
   * CA certificate(s) that every peer's certificate must chain to. Each is
   * given as a file path or as bytes (`*_pem`, `*_pem_len`; the bytes win
   * when both are set). Borrowed during cl_rtls_new only. Key bytes read
   * from a file are wiped (OPENSSL_cleanse) once OpenSSL has parsed them;
   * the parsed key lives in OpenSSL's memory, which clears private key
   * components when the context is freed. */
  const char *cert_file, *key_file, *ca_file;
  const char *cert_pem, *key_pem, *ca_pem;
  size_t cert_pem_len, key_pem_len, ca_pem_len;
  int verify_name; /* 1: the peer's certificate must name its Raft host */
  /* Where refusals are reported, one line each, without a trailing
   * newline; NULL: "clinlogd: raft: <line>\n" on stderr. */
  void (*log)(void *ctx, const char *line);
  void *log_ctx;
} cl_rtls_options;

/* Zeroes `o` and sets verify_name = 1. */
void cl_rtls_options_init(cl_rtls_options *o);

/* Loads the certificate, the key (which must match it) and the CA into a
 * new TLS context (returned-owned in *out: cl_rtls_free). Errors: CL_EINVAL
 * (a missing item, or PEM that does not parse, or a key that does not
 * match the certificate; the message names which), CL_EIO (a file cannot
 * be read), CL_ENOMEM. On error *out is untouched. */
CL_MUST_CHECK int cl_rtls_new(const cl_rtls_options *o, cl_rtls **out, cl_err *err);

/* Called exactly once per cl_rtls_wrap that returned 0, whatever ends the
 * handshake (node.c makes it libraft's connect callback, which libraft's
 * close waits for). status 0: the handshake succeeded and the
 * peer is verified; `stream` is raft's end of the bridge, a uv_pipe_t on the
 * wrap's loop allocated with raft_malloc (returned-owned: uv_close it, then
 * raft_free it in the close callback, as libraft does with its TCP
 * streams). Otherwise `stream` is NULL and status is CL_EDENIED (the
 * handshake or the verification failed: logged), CL_EIO (a read or a write
 * on the TCP stream failed, or it closed, first) or CL_EUNAVAILABLE
 * (cl_rtls_close ran first). */
typedef void (*cl_rtls_done_fn)(void *arg, uv_stream_t *stream, int status);

/* Starts a TLS handshake on `tcp`, a connected uv_tcp_t allocated with
 * raft_malloc (transferred: this module closes and raft_frees it, on
 * success too, when the bridge ends). `server`: 1 on an accepted stream, 0
 * on a connected one. `peer_address` (borrowed) is the peer's Raft
 * host:port: its host is what the certificate must name with verify_name
 * (on a server, the address the peer claimed in its preamble). `done` runs
 * later, on the loop, exactly once, never from inside this call. Errors:
 * CL_ENOMEM, CL_EUNAVAILABLE (closing), CL_EIO (the stream cannot be read);
 * on error `tcp` is closed and freed and `done` never runs. */
int cl_rtls_wrap(cl_rtls *t, uv_loop_t *loop, uv_stream_t *tcp, int server,
                 const char *peer_address, cl_rtls_done_fn done, void *arg);

/* Ends every handshake (their `done` runs with CL_EUNAVAILABLE) and every
 * bridge (raft's end then reads EOF), then runs `cb(arg)` on the loop once
 * all of their handles are closed (possibly before this returns when there
 * is nothing to close). Later cl_rtls_wrap calls fail with
 * CL_EUNAVAILABLE. Loop thread. */
void cl_rtls_close(cl_rtls *t, void (*cb)(void *arg), void *arg);

/* Number of live handshakes and bridges (tests). Loop thread. */
size_t cl_rtls_sessions(const cl_rtls *t);

/* Frees the context: after cl_rtls_close has called back, or if no
 * cl_rtls_wrap was ever made. NULL is a no-op. */
void cl_rtls_free(cl_rtls *t);

#endif

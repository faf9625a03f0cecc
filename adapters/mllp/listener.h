/* The MLLP listener: HL7 v2 over TCP (MLLP framing) into the log, started
 * by `clinlogd --mllp-listen HOST:PORT` (docs/adapters.md, "MLLP
 * listener"; docs/operations.md).
 *
 * Threads: one acceptor, and one thread per connection (a bounded pool:
 * at most max_conns at once; a connection over the limit is closed at
 * once with a log line). A connection's thread reads with poll, so a slow
 * or stuck sender (half a frame, then silence) holds only its own thread
 * until the idle timeout closes it; it never delays another connection's
 * ACKs. Each connection runs a session (session.h): one ACK per frame, in
 * order, AA only after the commit.
 *
 * Memory per connection: a 64 KiB read buffer, the deframer's buffer (at
 * most max_frame) and one message in flight.
 *
 * Transport: TLS (tls.h) with tls_cert and tls_key, client certificates
 * asked for with client_ca (required with require_client_cert) and bound
 * to the sending system's principal by the request layer; else plaintext
 * TCP, allowed on a loopback address with dev, or anywhere with
 * allow_plaintext (an operator's explicit choice, e.g. on an isolated
 * interface network). */
#ifndef CL_ADAPTERS_MLLP_LISTENER_H
#define CL_ADAPTERS_MLLP_LISTENER_H

#include "adapters/mllp/session.h"
#include "store/err.h"

#define CL_MLLP_DEFAULT_MAX_CONNS 256
#define CL_MLLP_DEFAULT_IDLE_S 300

typedef struct cl_mllp_listen_config {
  const char *listen;   /* "127.0.0.1:2575" (IPv4 or [IPv6]:port; port 0: any) */
  cl_mllp_conf conf;    /* what every session gets (service, key, limits) */
  const char *key_path; /* the adapter's key file (0600), loaded into sodium_malloc'd memory
                           and used as conf.signer; NULL: conf.signer as given */
  int max_conns;        /* connections at once; 0: CL_MLLP_DEFAULT_MAX_CONNS */
  int idle_s;           /* a connection silent this long is closed; 0: CL_MLLP_DEFAULT_IDLE_S */
  const char *tls_cert, *tls_key; /* PEM files: TLS on this port */
  const char *client_ca;          /* PEM: ask for client certificates of this CA */
  int require_client_cert;        /* refuse a TLS client without one */
  int dev;                        /* plaintext allowed on loopback */
  int allow_plaintext;            /* plaintext allowed on any address */
} cl_mllp_listen_config;

typedef struct cl_mllp_listener cl_mllp_listener;

/* Loads the key (key_path), binds and starts accepting (c borrowed; what it points to outlives the
 * listener). *out returned-owned (cl_mllp_stop); *port (may be NULL) gets
 * the bound port. Errors: CL_EINVAL (the address, no key, plaintext not
 * allowed there, TLS files that do not load), those of cl_signer_load (CL_ENOTFOUND, CL_EDENIED for
 * a key file others may read, ...), CL_EIO (cannot bind), CL_ENOMEM. On error nothing runs. */
CL_MUST_CHECK int cl_mllp_start(const cl_mllp_listen_config *c, cl_mllp_listener **out, int *port,
                                cl_err *err);

/* Stops accepting, closes every connection (a message being committed
 * finishes first: its ACK is sent if the peer is still there), joins the
 * threads and frees l. NULL is a no-op. */
void cl_mllp_stop(cl_mllp_listener *l);

/* Connections open now. */
int cl_mllp_connections(cl_mllp_listener *l);

#endif

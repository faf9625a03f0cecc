/* The Raft transport of a clinlog node: libraft's uv TCP transport
 * (raft_uv_tcp_init), wrapped so that
 *
 *  - peers' addresses may carry the API address after the Raft one, and
 *    only the Raft part reaches TCP;
 *  - with TLS options, every stream raft gets, connected or accepted, has
 *    passed a mutual-TLS handshake first (replication/tls.h): raft's stream
 *    is one end of a socketpair bridged to the TLS connection;
 *  - a standalone transport neither listens nor connects (a node without
 *    Raft TLS material, which must stay a one-member cluster).
 *
 * Addresses. A member's address in the Raft configuration is
 *
 *   | part        | example          | used by                           |
 *   |-------------|------------------|-----------------------------------|
 *   | Raft part   | `10.0.0.1:7000`  | TCP connect/listen, TLS name check |
 *   | separator   | `|`              | (CL_RTRANSPORT_ADDR_SEP)          |
 *   | API part    | `10.0.0.1:7443`  | forwarding and catch-up (node.c)  |
 *
 * and a bare `host:port` (no separator) is a Raft part with an empty API
 * part. Neither part may contain the separator.
 *
 * The contract with libraft 0.22 (raft/uv.h, struct raft_uv_transport),
 * which this wrapper keeps over both the TCP transport and tls.c:
 *
 *  - connect: its callback runs exactly once per request that the call
 *    accepted (returned 0), later, on the loop, never from inside the call:
 *    status 0 with a verified stream; RAFT_NOCONNECTION when TCP, the
 *    preamble or the TLS handshake failed (a refused certificate too: raft
 *    retries); RAFT_CANCELED when the transport closed first. libraft's
 *    close waits for every outstanding connect callback, so a callback that
 *    never comes hangs raft_close (tls.c's handshake write failure did:
 *    tests/replication/test_tls.c).
 *  - accept: raft's accept callback runs only for streams whose handshake
 *    succeeded, never after close begins; a failed or cancelled handshake
 *    is closed here and raft never hears of it.
 *  - close: cancels pending connects (their callbacks run with
 *    RAFT_CANCELED), ends every handshake and bridge (raft's ends read
 *    EOF), stops listening, and calls back once both the TCP transport and
 *    the TLS sessions have closed all their handles.
 *  - raft owns the streams it is given: uv_close, then raft_free.
 *
 * Threads: cl_rtransport_new and cl_rtransport_free on any thread (the
 * loop not running); everything else runs on the loop thread, called by
 * libraft. The only state shared between transports is the table of
 * connects in flight (libraft's connect request carries no pointer to its
 * transport), guarded by a mutex, so several nodes may share a process
 * (tests). */
#ifndef CL_REPLICATION_TRANSPORT_H
#define CL_REPLICATION_TRANSPORT_H

#include <stddef.h>
#include <uv.h>

#include "replication/tls.h"
#include "store/err.h"

struct raft_uv_transport;

typedef struct cl_rtransport cl_rtransport;

/* Separates the Raft part of an address from its API part. */
#define CL_RTRANSPORT_ADDR_SEP '|'

/* Longest address part kept, with its NUL (node.h's CL_REPL_ADDR_MAX). */
#define CL_RTRANSPORT_ADDR_MAX 128

/* Copies the Raft part of `address` (borrowed) into `out` (cap > 0),
 * truncated to cap - 1 bytes. Cannot fail. */
void cl_rtransport_raft_part(const char *address, char *out, size_t cap);

/* Copies the API part of `address` (borrowed; "" when it has none) into
 * `out` (cap > 0), truncated. Cannot fail. */
void cl_rtransport_api_part(const char *address, char *out, size_t cap);

/* Creates a transport on `loop` (borrowed; must outlive the transport).
 * `tls` (borrowed during the call; NULL: plaintext streams) is passed to
 * cl_rtls_new. `standalone`: listen and connect do nothing (connect fails
 * with RAFT_NOCONNECTION). On success *out is returned-owned
 * (cl_rtransport_free). Errors: CL_EIO (libraft's TCP transport cannot be
 * initialized), and cl_rtls_new's (CL_EINVAL, CL_EIO, CL_ENOMEM); on error
 * *out is untouched and nothing is left on the loop. */
CL_MUST_CHECK int cl_rtransport_new(uv_loop_t *loop, const cl_rtls_options *tls, int standalone,
                                    cl_rtransport **out, cl_err *err);

/* The raft_uv_transport to hand raft_uv_init (view: valid until
 * cl_rtransport_free). */
struct raft_uv_transport *cl_rtransport_raft(cl_rtransport *t);

/* Frees the transport: after libraft has closed it (raft_close called
 * back), or if it was never given to raft_uv_init; the loop may be closed
 * already. NULL is a no-op. */
void cl_rtransport_free(cl_rtransport *t);

#endif

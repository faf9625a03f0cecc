/* TLS for the MLLP listener (OpenSSL libssl, kept inside tls.c: no
 * OpenSSL type crosses this header). One server context per listener; one
 * blocking TLS connection per accepted socket, used by that connection's
 * thread alone. A sender's side too (cl_mllp_tls_client_new,
 * cl_mllp_tls_connect: clinlog-bench's MLLP over TLS senders), whose
 * connections read, write and close with the same functions.
 *
 * TLS 1.2 minimum. With a client CA, a client certificate is asked for and
 * must chain to it; with require_client_cert a client without one is
 * refused at the handshake. The client certificate's SHA-256 fingerprint
 * (of its DER bytes, lowercase hex, as the gRPC face computes it) is what
 * the request layer binds to the sending system's principal
 * (CertificateBound, docs/security.md).
 *
 * Thread-safety: the context may be shared by every connection thread
 * (OpenSSL makes SSL_CTX use thread-safe); a connection is one thread's. */
#ifndef CL_ADAPTERS_MLLP_TLS_H
#define CL_ADAPTERS_MLLP_TLS_H

#include <stddef.h>
#include <sys/types.h>

#include "store/err.h"

typedef struct cl_mllp_tls cl_mllp_tls;           /* the server context */
typedef struct cl_mllp_tls_conn cl_mllp_tls_conn; /* one connection */

/* Loads the server certificate (chain) and key, and the client CA (NULL:
 * no client certificates asked for). Paths borrowed. *out returned-owned
 * (cl_mllp_tls_free). Errors: CL_EINVAL (require_client_cert without a CA,
 * PEM that does not load, a key that does not match; the message names
 * the file), CL_ENOMEM. */
CL_MUST_CHECK int cl_mllp_tls_new(const char *cert, const char *key, const char *client_ca,
                                  int require_client_cert, cl_mllp_tls **out, cl_err *err);
void cl_mllp_tls_free(cl_mllp_tls *t); /* NULL is a no-op */

/* A sender's context: TLS 1.2 minimum, trusting only the CA in `ca` for
 * the server's certificate, presenting `cert` with `key` (paths borrowed).
 * *out returned-owned (cl_mllp_tls_free). Errors: CL_EINVAL (a path
 * missing, PEM that does not load, a key that does not match; the message
 * names the file), CL_ENOMEM. */
CL_MUST_CHECK int cl_mllp_tls_client_new(const char *ca, const char *cert, const char *key,
                                         cl_mllp_tls **out, cl_err *err);

/* Runs a sender's handshake on the connected socket fd (borrowed: never
 * closed here; blocking) with a server named `host` (borrowed): its
 * certificate must chain to the context's CA and name host. On success
 * *out is returned-owned (cl_mllp_tls_close). Errors: CL_EDENIED (the
 * server's certificate is not trusted: err says why and names the CA file;
 * or the handshake failed otherwise, err says how), CL_ENOMEM. */
CL_MUST_CHECK int cl_mllp_tls_connect(cl_mllp_tls *t, int fd, const char *host,
                                      cl_mllp_tls_conn **out, cl_err *err);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384": the connection's protocol and cipher. */
void cl_mllp_tls_describe(const cl_mllp_tls_conn *c, char *out, size_t n);

/* Runs the server handshake on the connected socket fd (borrowed: never
 * closed here; blocking, with its receive timeout already set by the
 * caller). On success *out is returned-owned (cl_mllp_tls_close) and fp
 * holds the client certificate's fingerprint, "" when none was sent.
 * Errors: CL_EDENIED (the handshake failed: no or a bad client
 * certificate, not TLS, a timeout; err says which), CL_ENOMEM. */
CL_MUST_CHECK int cl_mllp_tls_accept(cl_mllp_tls *t, int fd, cl_mllp_tls_conn **out, char fp[65],
                                     cl_err *err);

/* Reads up to n bytes, waiting at most timeout_ms for the first: > 0 bytes
 * read, 0 the peer closed, -1 an error, -2 the timeout passed. */
ssize_t cl_mllp_tls_read(cl_mllp_tls_conn *c, void *buf, size_t n, int timeout_ms);

/* Writes all of p (borrowed): 0, or -1 (the peer left, or the socket's
 * send timeout). */
int cl_mllp_tls_write(cl_mllp_tls_conn *c, const void *p, size_t n);

/* Sends close_notify (best effort) and frees c; the socket stays open. */
void cl_mllp_tls_close(cl_mllp_tls_conn *c);

#endif

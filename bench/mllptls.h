/* MLLP over TLS for clinlog-bench ingest hl7 (bench_ingest_hl7.c): a
 * throwaway PKI made at bench time and the sender's side of the TLS
 * connection (OpenSSL libssl, kept inside mllptls.c: no OpenSSL type
 * crosses this header).
 *
 * The PKI: a CA, a server certificate for localhost and 127.0.0.1
 * (serverAuth) and a client certificate (clientAuth), all EC P-256 signed
 * with SHA-256, valid for 7 days, written as PEM into one directory; the
 * keys are created 0600.
 *
 * The client: TLS 1.2 minimum, the server's certificate verified against
 * one CA file and its name (localhost) checked, the client certificate
 * presented. A connection is one thread's; the context may be shared by
 * every connection thread. */
#ifndef CL_BENCH_MLLPTLS_H
#define CL_BENCH_MLLPTLS_H

#include <stddef.h>
#include <sys/types.h>

#include "store/err.h"

typedef struct bench_pki { /* the files of bench_pki_make, and the client's fingerprint */
  char ca[4200], server_cert[4200], server_key[4200], client_cert[4200], client_key[4200];
  char client_sha256[65]; /* of the client certificate's DER, lowercase hex */
} bench_pki;

/* Makes the CA, server and client certificates and keys in dir (which
 * must exist; files of the same names are replaced) and fills *p. The
 * CA's common name is `ca_name`. Errors: CL_EIO (a file cannot be
 * written; the message names it), CL_ENOMEM (or OpenSSL failed; says
 * which step). */
CL_MUST_CHECK int bench_pki_make(const char *dir, const char *ca_name, bench_pki *p, cl_err *err);

typedef struct bench_tls bench_tls;           /* the client context */
typedef struct bench_tls_conn bench_tls_conn; /* one connection */

/* A client context trusting only the CA in `ca` and presenting `cert`
 * with `key` (paths borrowed). *out returned-owned (bench_tls_free).
 * Errors: CL_EINVAL (a file that does not load or a key that does not
 * match its certificate; the message names the file), CL_ENOMEM. */
CL_MUST_CHECK int bench_tls_new(const char *ca, const char *cert, const char *key, bench_tls **out,
                                cl_err *err);
void bench_tls_free(bench_tls *t); /* NULL is a no-op */

/* The client handshake on the connected socket fd (borrowed; closed by
 * bench_tls_close), the server named "localhost". *out returned-owned
 * (bench_tls_close). Errors: CL_EDENIED (the server's certificate is not
 * trusted: the message says why and names the CA file; or the handshake
 * failed otherwise, the message says how), CL_ENOMEM. On error fd is
 * left open. */
CL_MUST_CHECK int bench_tls_connect(bench_tls *t, int fd, bench_tls_conn **out, cl_err *err);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384": the connection's protocol and cipher
 * (view: valid until bench_tls_close). */
void bench_tls_describe(const bench_tls_conn *c, char *out, size_t n);

/* Reads up to n bytes: > 0 read, 0 the peer closed, -1 an error. */
ssize_t bench_tls_read(bench_tls_conn *c, void *buf, size_t n);

/* Writes all of p (borrowed): 0, or -1. */
int bench_tls_write(bench_tls_conn *c, const void *p, size_t n);

/* Sends close_notify (best effort), closes the socket and frees c. NULL
 * is a no-op. */
void bench_tls_close(bench_tls_conn *c);

#endif

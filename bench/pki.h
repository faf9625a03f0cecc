/* A throwaway PKI made at bench time for clinlog-bench ingest hl7's MLLP
 * over TLS (bench_ingest_hl7.c; the connections themselves are the MLLP
 * adapter's, adapters/mllp/tls.h): a CA, a server certificate for
 * localhost and 127.0.0.1 (serverAuth) and a client certificate
 * (clientAuth), all EC P-256 signed with SHA-256, valid for 7 days,
 * written as PEM into one directory; the keys are created 0600. OpenSSL's
 * libcrypto stays inside pki.c. */
#ifndef CL_BENCH_PKI_H
#define CL_BENCH_PKI_H

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

#endif

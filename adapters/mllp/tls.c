/* TLS for the MLLP listener (tls.h): OpenSSL over blocking sockets, one
 * connection per thread; and a sender's side of it. Invariant: no message
 * byte is read from or written to a TLS connection before its handshake
 * (and, with a client CA, the client certificate's verification; on a
 * sender's side, the server certificate's) succeeded. */
#include "adapters/mllp/tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cl_mllp_tls {
  SSL_CTX *ctx;
  char *ca; /* a sender's: the CA file it trusts, named when a server is not trusted */
};

struct cl_mllp_tls_conn {
  SSL *ssl;
  int fd;
};

/* The first OpenSSL error as text (drains the queue). */
static const char *ossl_why(char *buf, size_t n) {
  unsigned long e = ERR_get_error();
  if (!e)
    snprintf(buf, n, "no detail");
  else
    ERR_error_string_n(e, buf, n);
  ERR_clear_error();
  return buf;
}

/* Loads the certificate (chain) and its key into ctx; `who` ("" or
 * "client ") goes before "certificate" and "key" in the messages. */
static int load_pair(SSL_CTX *ctx, const char *cert, const char *key, const char *who,
                     cl_err *err) {
  char why[256];
  if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
    return cl_err_set(err, CL_EINVAL, "mllp tls: %scertificate %s: %s", who, cert,
                      ossl_why(why, sizeof why));
  if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1)
    return cl_err_set(err, CL_EINVAL, "mllp tls: %skey %s: %s", who, key,
                      ossl_why(why, sizeof why));
  return 0;
}

int cl_mllp_tls_new(const char *cert, const char *key, const char *client_ca,
                    int require_client_cert, cl_mllp_tls **out, cl_err *err) {
  char why[256];
  if (!cert || !key)
    return cl_err_set(err, CL_EINVAL, "mllp tls: --mllp-tls-cert and --mllp-tls-key go together");
  if (require_client_cert && !client_ca)
    return cl_err_set(err, CL_EINVAL,
                      "mllp tls: --mllp-require-client-cert needs --mllp-client-ca");
  cl_mllp_tls *t = calloc(1, sizeof *t);
  if (!t || !(t->ctx = SSL_CTX_new(TLS_server_method()))) {
    free(t);
    return cl_err_set(err, CL_ENOMEM, "mllp tls: out of memory");
  }
  int code = 0;
  SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
  if ((code = load_pair(t->ctx, cert, key, "", err)) != 0)
    goto fail_ctx;
  if (client_ca) {
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(client_ca);
    if (!names || SSL_CTX_load_verify_locations(t->ctx, client_ca, NULL) != 1) {
      sk_X509_NAME_pop_free(names, X509_NAME_free);
      code = cl_err_set(err, CL_EINVAL, "mllp tls: client CA %s: %s", client_ca,
                        ossl_why(why, sizeof why));
      goto fail_ctx;
    }
    SSL_CTX_set_client_CA_list(t->ctx, names);
    SSL_CTX_set_verify(
        t->ctx, SSL_VERIFY_PEER | (require_client_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
        NULL);
  }
  *out = t;
  return 0;
fail_ctx:
  SSL_CTX_free(t->ctx);
  free(t);
  return code;
}

int cl_mllp_tls_client_new(const char *ca, const char *cert, const char *key, cl_mllp_tls **out,
                           cl_err *err) {
  char why[256];
  if (!ca || !cert || !key)
    return cl_err_set(err, CL_EINVAL, "mllp tls: a sender needs a CA, a certificate and a key");
  cl_mllp_tls *t = calloc(1, sizeof *t);
  if (!t || !(t->ca = strdup(ca)) || !(t->ctx = SSL_CTX_new(TLS_client_method()))) {
    if (t)
      free(t->ca);
    free(t);
    return cl_err_set(err, CL_ENOMEM, "mllp tls: out of memory");
  }
  int code = 0;
  SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
  if (SSL_CTX_load_verify_locations(t->ctx, ca, NULL) != 1) {
    code = cl_err_set(err, CL_EINVAL, "mllp tls: CA %s: %s", ca, ossl_why(why, sizeof why));
    goto fail_ctx;
  }
  if ((code = load_pair(t->ctx, cert, key, "client ", err)) != 0)
    goto fail_ctx;
  *out = t;
  return 0;
fail_ctx:
  SSL_CTX_free(t->ctx);
  free(t->ca);
  free(t);
  return code;
}

void cl_mllp_tls_free(cl_mllp_tls *t) {
  if (!t)
    return;
  SSL_CTX_free(t->ctx);
  free(t->ca);
  free(t);
}

/* Says in err why c's handshake failed and frees c; CL_EDENIED. e: errno
 * right after it; gone: what a peer that left without a word did; ca: a
 * sender's CA file (the server's certificate's verification is asked
 * about), NULL on the listener's side. */
static int handshake_failed(cl_mllp_tls_conn *c, int e, const char *gone, const char *ca,
                            cl_err *err) {
  char why[256];
  long v = ca ? SSL_get_verify_result(c->ssl) : X509_V_OK;
  const char *w = ossl_why(why, sizeof why);
  if (v != X509_V_OK)
    cl_err_set(err, CL_EDENIED,
               "TLS handshake failed: the server's certificate is not trusted: %s (verified "
               "against the CA %s)",
               X509_verify_cert_error_string(v), ca);
  else
    cl_err_set(err, CL_EDENIED, "TLS handshake failed: %s",
               strcmp(w, "no detail") ? w
               : e                    ? strerror(e)
                                      : gone);
  SSL_free(c->ssl);
  free(c);
  return CL_EDENIED;
}

int cl_mllp_tls_accept(cl_mllp_tls *t, int fd, cl_mllp_tls_conn **out, char fp[65], cl_err *err) {
  fp[0] = '\0';
  cl_mllp_tls_conn *c = calloc(1, sizeof *c);
  if (!c || !(c->ssl = SSL_new(t->ctx))) {
    free(c);
    return cl_err_set(err, CL_ENOMEM, "mllp tls: out of memory");
  }
  c->fd = fd;
  if (SSL_set_fd(c->ssl, fd) != 1 || SSL_accept(c->ssl) != 1)
    return handshake_failed(c, errno, "the peer left", NULL, err);
  X509 *peer = SSL_get1_peer_certificate(c->ssl);
  if (peer) {
    unsigned char *der = NULL;
    int n = i2d_X509(peer, &der);
    if (n > 0) {
      uint8_t h[32];
      crypto_hash_sha256(h, der, (unsigned long long)n);
      static const char hex[] = "0123456789abcdef";
      for (int i = 0; i < 32; i++) {
        fp[2 * i] = hex[h[i] >> 4];
        fp[2 * i + 1] = hex[h[i] & 15];
      }
      fp[64] = '\0';
    }
    OPENSSL_free(der);
    X509_free(peer);
  }
  *out = c;
  return 0;
}

int cl_mllp_tls_connect(cl_mllp_tls *t, int fd, const char *host, cl_mllp_tls_conn **out,
                        cl_err *err) {
  cl_mllp_tls_conn *c = calloc(1, sizeof *c);
  if (!c || !(c->ssl = SSL_new(t->ctx))) {
    free(c);
    return cl_err_set(err, CL_ENOMEM, "mllp tls: out of memory");
  }
  c->fd = fd;
  if (SSL_set_fd(c->ssl, fd) != 1 || SSL_set1_host(c->ssl, host) != 1 ||
      SSL_set_tlsext_host_name(c->ssl, host) != 1 || SSL_connect(c->ssl) != 1)
    return handshake_failed(c, errno, "the server closed the connection", t->ca, err);
  *out = c;
  return 0;
}

void cl_mllp_tls_describe(const cl_mllp_tls_conn *c, char *out, size_t n) {
  snprintf(out, n, "%s %s", SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl));
}

ssize_t cl_mllp_tls_read(cl_mllp_tls_conn *c, void *buf, size_t n, int timeout_ms) {
  if (SSL_pending(c->ssl) == 0) {
    struct pollfd pf = {.fd = c->fd, .events = POLLIN};
    int pr;
    do
      pr = poll(&pf, 1, timeout_ms);
    while (pr < 0 && errno == EINTR);
    if (pr == 0)
      return -2;
    if (pr < 0)
      return -1;
  }
  int r = SSL_read(c->ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n);
  if (r > 0)
    return r;
  int e = SSL_get_error(c->ssl, r);
  ERR_clear_error();
  if (e == SSL_ERROR_ZERO_RETURN)
    return 0;
  if (e == SSL_ERROR_WANT_READ) /* a record only partly arrived within the socket timeout */
    return -2;
  return e == SSL_ERROR_SYSCALL && r == 0 ? 0 : -1;
}

int cl_mllp_tls_write(cl_mllp_tls_conn *c, const void *p, size_t n) {
  const unsigned char *b = p;
  while (n > 0) {
    int w = SSL_write(c->ssl, b, n > INT32_MAX ? INT32_MAX : (int)n);
    if (w <= 0) {
      ERR_clear_error();
      return -1;
    }
    b += w;
    n -= (size_t)w;
  }
  return 0;
}

void cl_mllp_tls_close(cl_mllp_tls_conn *c) {
  if (!c)
    return;
  SSL_shutdown(c->ssl);
  ERR_clear_error();
  SSL_free(c->ssl);
  free(c);
}

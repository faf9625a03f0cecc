/* See mllptls.h. Invariant: a connection carries no message byte before
 * its handshake succeeded with the server's certificate verified against
 * the one CA the context trusts (SSL_VERIFY_PEER, the host name checked). */
#include "bench/mllptls.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SERVER_NAME "localhost"

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

/* ---------------------------------------------------------- the PKI */

enum { K_CA, K_SERVER, K_CLIENT };

/* The X.509 v3 extensions of each kind of certificate (name, value). */
static const char *const EXTS[3][5][2] = {
    [K_CA] = {{"basicConstraints", "critical,CA:TRUE"},
              {"keyUsage", "critical,keyCertSign,cRLSign"},
              {"subjectKeyIdentifier", "hash"}},
    [K_SERVER] = {{"basicConstraints", "critical,CA:FALSE"},
                  {"keyUsage", "critical,digitalSignature"},
                  {"extendedKeyUsage", "serverAuth"},
                  {"subjectAltName", "DNS:" SERVER_NAME ",IP:127.0.0.1"}},
    [K_CLIENT] = {{"basicConstraints", "critical,CA:FALSE"},
                  {"keyUsage", "critical,digitalSignature"},
                  {"extendedKeyUsage", "clientAuth"}},
};

/* A certificate of `kind` for key, named cn, signed by issuer's key
 * (itself when issuer is NULL: the CA). NULL when OpenSSL fails. */
static X509 *make_cert(int kind, EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *ikey,
                       long serial) {
  X509 *x = X509_new();
  if (!x)
    return NULL;
  X509_NAME *name = X509_get_subject_name(x);
  int ok =
      X509_set_version(x, 2) && ASN1_INTEGER_set(X509_get_serialNumber(x), serial) &&
      X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
      X509_gmtime_adj(X509_getm_notAfter(x), 7L * 86400) && X509_set_pubkey(x, key) &&
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0) &&
      X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
  X509V3_CTX v;
  X509V3_set_ctx_nodb(&v);
  X509V3_set_ctx(&v, issuer ? issuer : x, x, NULL, NULL, 0);
  for (int i = 0; ok && i < 5 && EXTS[kind][i][0]; i++) {
    X509_EXTENSION *e = X509V3_EXT_conf(NULL, &v, EXTS[kind][i][0], EXTS[kind][i][1]);
    ok = e && X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
  }
  if (!ok || !X509_sign(x, ikey ? ikey : key, EVP_sha256())) {
    X509_free(x);
    return NULL;
  }
  return x;
}

/* Writes the certificate (0644) or the key (0600) to path. */
static int write_pem(const char *path, X509 *x, EVP_PKEY *key, cl_err *err) {
  unlink(path); /* a key file made by an earlier run keeps its mode otherwise */
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, key ? 0600 : 0644);
  FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
  if (!f) {
    int e = errno;
    if (fd >= 0)
      close(fd);
    return cl_err_set(err, CL_EIO, "%s: %s", path, strerror(e));
  }
  int ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(f, x);
  if (fclose(f) != 0 || !ok)
    return cl_err_set(err, CL_EIO, "%s: cannot be written", path);
  return 0;
}

int bench_pki_make(const char *dir, const char *ca_name, bench_pki *p, cl_err *err) {
  static const char *const CN[3] = {NULL, SERVER_NAME, "clinlog-bench-sender"};
  char *const certs[3] = {p->ca, p->server_cert, p->client_cert};
  char *const keys[3] = {NULL, p->server_key, p->client_key};
  static const char *const FILES[3] = {"ca", "server", "client"};
  EVP_PKEY *k[3] = {NULL, NULL, NULL};
  X509 *x[3] = {NULL, NULL, NULL};
  char why[256], keyfile[4200];
  int code = 0;
  memset(p, 0, sizeof *p);
  for (int i = 0; i < 3; i++) {
    snprintf(certs[i], sizeof p->ca, "%s/%s.pem", dir, FILES[i]);
    if (!(k[i] = EVP_EC_gen("P-256")) ||
        !(x[i] = make_cert(i, k[i], i ? CN[i] : ca_name, i ? x[K_CA] : NULL, i ? k[K_CA] : NULL,
                           1000 + i))) {
      code = cl_err_set(err, CL_ENOMEM, "bench pki: the %s certificate: %s", FILES[i],
                        ossl_why(why, sizeof why));
      goto done;
    }
    /* the CA's key is written too (0600): a run's certificates can be re-issued by hand */
    snprintf(keyfile, sizeof keyfile, "%s/%s.key", dir, FILES[i]);
    if ((code = write_pem(certs[i], x[i], NULL, err)) != 0 ||
        (code = write_pem(keyfile, NULL, k[i], err)) != 0)
      goto done;
    if (keys[i])
      snprintf(keys[i], sizeof p->server_key, "%s", keyfile);
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned mdn = 0;
  if (!X509_digest(x[K_CLIENT], EVP_sha256(), md, &mdn) || mdn != 32) {
    code = cl_err_set(err, CL_ENOMEM, "bench pki: the client certificate's fingerprint: %s",
                      ossl_why(why, sizeof why));
    goto done;
  }
  for (unsigned i = 0; i < 32; i++)
    snprintf(p->client_sha256 + 2 * i, 3, "%02x", md[i]);
done:
  for (int i = 0; i < 3; i++) {
    X509_free(x[i]);
    EVP_PKEY_free(k[i]);
  }
  return code;
}

/* ---------------------------------------------------------- the client */

struct bench_tls {
  SSL_CTX *ctx;
  char ca[4200]; /* named in a verification error */
};

struct bench_tls_conn {
  SSL *ssl;
  int fd;
};

int bench_tls_new(const char *ca, const char *cert, const char *key, bench_tls **out, cl_err *err) {
  char why[256];
  bench_tls *t = calloc(1, sizeof *t);
  if (!t || !(t->ctx = SSL_CTX_new(TLS_client_method()))) {
    free(t);
    return cl_err_set(err, CL_ENOMEM, "bench tls: out of memory");
  }
  snprintf(t->ca, sizeof t->ca, "%s", ca);
  int code = 0;
  SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
  if (SSL_CTX_load_verify_locations(t->ctx, ca, NULL) != 1) {
    code = cl_err_set(err, CL_EINVAL, "bench tls: CA %s: %s", ca, ossl_why(why, sizeof why));
    goto fail_ctx;
  }
  if (SSL_CTX_use_certificate_chain_file(t->ctx, cert) != 1) {
    code = cl_err_set(err, CL_EINVAL, "bench tls: client certificate %s: %s", cert,
                      ossl_why(why, sizeof why));
    goto fail_ctx;
  }
  if (SSL_CTX_use_PrivateKey_file(t->ctx, key, SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(t->ctx) != 1) {
    code =
        cl_err_set(err, CL_EINVAL, "bench tls: client key %s: %s", key, ossl_why(why, sizeof why));
    goto fail_ctx;
  }
  *out = t;
  return 0;
fail_ctx:
  SSL_CTX_free(t->ctx);
  free(t);
  return code;
}

void bench_tls_free(bench_tls *t) {
  if (!t)
    return;
  SSL_CTX_free(t->ctx);
  free(t);
}

int bench_tls_connect(bench_tls *t, int fd, bench_tls_conn **out, cl_err *err) {
  char why[256];
  bench_tls_conn *c = calloc(1, sizeof *c);
  if (!c || !(c->ssl = SSL_new(t->ctx))) {
    free(c);
    return cl_err_set(err, CL_ENOMEM, "bench tls: out of memory");
  }
  c->fd = fd;
  if (SSL_set_fd(c->ssl, fd) != 1 || SSL_set1_host(c->ssl, SERVER_NAME) != 1 ||
      SSL_set_tlsext_host_name(c->ssl, SERVER_NAME) != 1 || SSL_connect(c->ssl) != 1) {
    int e = errno;
    long v = SSL_get_verify_result(c->ssl);
    const char *w = ossl_why(why, sizeof why);
    if (v != X509_V_OK)
      cl_err_set(err, CL_EDENIED,
                 "TLS handshake failed: the server's certificate is not trusted: %s (verified "
                 "against the CA %s)",
                 X509_verify_cert_error_string(v), t->ca);
    else
      cl_err_set(err, CL_EDENIED, "TLS handshake failed: %s",
                 strcmp(w, "no detail") ? w
                 : e                    ? strerror(e)
                                        : "the server closed the connection");
    SSL_free(c->ssl);
    free(c);
    return CL_EDENIED;
  }
  *out = c;
  return 0;
}

void bench_tls_describe(const bench_tls_conn *c, char *out, size_t n) {
  snprintf(out, n, "%s %s", SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl));
}

ssize_t bench_tls_read(bench_tls_conn *c, void *buf, size_t n) {
  size_t got = 0;
  int r = SSL_read_ex(c->ssl, buf, n, &got);
  if (r == 1)
    return (ssize_t)got;
  int e = SSL_get_error(c->ssl, r);
  ERR_clear_error();
  return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
}

int bench_tls_write(bench_tls_conn *c, const void *p, size_t n) {
  size_t done = 0;
  /* without SSL_MODE_ENABLE_PARTIAL_WRITE a blocking write sends all of p or fails */
  if (SSL_write_ex(c->ssl, p, n, &done) != 1 || done != n) {
    ERR_clear_error();
    return -1;
  }
  return 0;
}

void bench_tls_close(bench_tls_conn *c) {
  if (!c)
    return;
  SSL_shutdown(c->ssl);
  SSL_free(c->ssl);
  close(c->fd);
  free(c);
}

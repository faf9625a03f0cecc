/* See pki.h. */
#include "bench/pki.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SERVER_NAME "localhost" /* what the senders check (bench_ingest_hl7.c) */

/* The first OpenSSL error's reason (drains the queue). */
static const char *ossl_why(void) {
  unsigned long e = ERR_get_error();
  const char *r = e ? ERR_reason_error_string(e) : NULL;
  ERR_clear_error();
  return r ? r : "no detail";
}

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
  char keyfile[4200];
  int code = 0;
  memset(p, 0, sizeof *p);
  for (int i = 0; i < 3; i++) {
    snprintf(certs[i], sizeof p->ca, "%s/%s.pem", dir, FILES[i]);
    if (!(k[i] = EVP_EC_gen("P-256")) ||
        !(x[i] = make_cert(i, k[i], i ? CN[i] : ca_name, i ? x[K_CA] : NULL, i ? k[K_CA] : NULL,
                           1000 + i))) {
      code = cl_err_set(err, CL_ENOMEM, "bench pki: the %s certificate: %s", FILES[i], ossl_why());
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
                      ossl_why());
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

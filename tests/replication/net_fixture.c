/* See net_fixture.h. */
#include "tests/replication/net_fixture.h"

#include <criterion/criterion.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <raft.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

char nx_log[16][512];
int nx_nlog;

static char *g_cert, *g_key;

static char *pem_of_bio(BIO *b) {
  char *p;
  long n = BIO_get_mem_data(b, &p);
  char *out = malloc((size_t)n + 1);
  cr_assert(out);
  memcpy(out, p, (size_t)n);
  out[n] = '\0';
  BIO_free(b);
  return out;
}

/* A self-signed certificate for 127.0.0.1 and its key, as PEM (malloc'd). */
static void make_identity(char **cert_pem, char **key_pem) {
  EVP_PKEY *k = EVP_EC_gen("P-256");
  cr_assert(k);
  X509 *x = X509_new();
  cr_assert(x);
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_NAME *name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"raft-test", -1, -1,
                             0);
  X509_set_issuer_name(x, name);
  X509_set_pubkey(x, k);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
  const char *exts[][2] = {{"basicConstraints", "critical,CA:TRUE"},
                           {"keyUsage", "critical,digitalSignature,keyCertSign"},
                           {"extendedKeyUsage", "serverAuth,clientAuth"},
                           {"subjectAltName", "IP:127.0.0.1"}};
  for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
    X509_EXTENSION *e = X509V3_EXT_conf(NULL, &v3, exts[i][0], exts[i][1]);
    cr_assert(e, "extension %s", exts[i][0]);
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
  }
  cr_assert(X509_sign(x, k, EVP_sha256()) > 0);
  BIO *b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, x);
  *cert_pem = pem_of_bio(b);
  b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
  *key_pem = pem_of_bio(b);
  X509_free(x);
  EVP_PKEY_free(k);
}

static void capture_log(void *ctx, const char *line) {
  (void)ctx;
  if (nx_nlog < 16)
    snprintf(nx_log[nx_nlog++], sizeof nx_log[0], "%s", line);
}

void nx_tls_options(cl_rtls_options *o) {
  if (!g_cert)
    make_identity(&g_cert, &g_key);
  cl_rtls_options_init(o);
  o->cert_pem = g_cert;
  o->key_pem = g_key;
  o->ca_pem = g_cert;
  o->log = capture_log;
}

void nx_setup(void) {
  signal(SIGPIPE, SIG_IGN);
  nx_nlog = 0;
}

void nx_run_until(uv_loop_t *loop, const int *flag, int ms) {
  uint64_t end = uv_hrtime() + (uint64_t)ms * 1000000u;
  while (!*flag && uv_hrtime() < end) {
    uv_run(loop, UV_RUN_NOWAIT);
    if (!*flag)
      usleep(1000);
  }
}

void nx_run_for(uv_loop_t *loop, int ms) {
  int never = 0;
  nx_run_until(loop, &never, ms);
}

void nx_close_loop(uv_loop_t *loop) {
  nx_run_for(loop, 20);
  cr_assert_eq(uv_run(loop, UV_RUN_DEFAULT), 0);
  cr_assert_eq(uv_loop_close(loop), 0, "handles left open on the loop");
}

int nx_listener(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  cr_assert_eq(listen(fd, 8), 0);
  cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
  *port = ntohs(a.sin_port);
  return fd;
}

static void on_connect(uv_connect_t *req, int status) { *(int *)req->data = status == 0 ? 1 : -1; }

uv_tcp_t *nx_connect_tcp(uv_loop_t *loop, int lfd, int port, int *peer) {
  uv_tcp_t *c = raft_malloc(sizeof *c);
  cr_assert(c);
  cr_assert_eq(uv_tcp_init(loop, c), 0);
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", port, &a);
  uv_connect_t req;
  int connected = 0;
  req.data = &connected;
  cr_assert_eq(uv_tcp_connect(&req, c, (struct sockaddr *)&a, on_connect), 0);
  nx_run_until(loop, &connected, 5000);
  cr_assert_eq(connected, 1, "loopback connect failed");
  *peer = accept(lfd, NULL, NULL);
  cr_assert(*peer >= 0);
  return c;
}

void nx_reset(int fd) {
  struct linger lg = {.l_onoff = 1, .l_linger = 0};
  cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  close(fd);
}

void nx_await_reset(int fd) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  for (int i = 0; i < 200; i++) {
    if (poll(&p, 1, 10) == 1 && (p.revents & (POLLERR | POLLHUP)))
      return;
  }
  cr_assert_fail("no reset seen on the connection");
}

/* Mutual TLS under the Raft transport: see tls.h for the contract.
 *
 * One session per TCP stream. A session is in the handshake until OpenSSL
 * finishes it, then a bridge between the TLS connection and our end of a
 * socketpair whose other end raft reads and writes. Bytes flow:
 *   TCP read  -> rbio -> SSL_read  -> write to our pipe end -> raft
 *   raft      -> our pipe end read -> SSL_write -> wbio -> TCP write
 * A session's memory is freed once every handle it opened has closed (libuv
 * runs pending write callbacks, with UV_ECANCELED, before a close callback),
 * so no callback ever sees a freed session. */
#include "replication/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <raft.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LOW_WATER (CL_RTLS_HIGH_WATER / 4)
#define NET_BUF (64u << 10)
#define PLAIN_BUF (16u << 10)
#define PEER_MAX 160

enum { S_HANDSHAKE, S_OPEN, S_CLOSING };

typedef struct sess sess;

/* Guarded by nothing: the context's list and counters belong to the loop
 * thread (tls.h). */
struct cl_rtls {
  SSL_CTX *ctx;
  int verify_name;
  void (*log)(void *ctx, const char *line);
  void *log_ctx;
  sess *sessions; /* live handshakes and bridges */
  size_t n;
  int closing;
  void (*closed_cb)(void *arg);
  void *closed_arg;
};

struct sess {
  cl_rtls *t;
  sess *prev, *next;
  uv_loop_t *loop;
  uv_stream_t *tcp; /* raft_malloc'd uv_tcp_t, owned */
  uv_pipe_t pipe;   /* our end of the pair; valid when pipe_open */
  uv_shutdown_t shut;
  SSL *ssl;
  BIO *rbio, *wbio; /* network -> SSL, SSL -> network (owned by ssl) */
  int state, server;
  int pipe_open, tcp_closing, shutting;
  int tcp_paused, pipe_paused; /* reads stopped for back-pressure */
  unsigned handles;            /* handles whose close callback is due */
  size_t tcp_queued, pipe_queued;
  cl_rtls_done_fn done;
  void *arg;
  char peer[PEER_MAX];
  char netbuf[NET_BUF];
  char pipebuf[NET_BUF];
  char plain[PLAIN_BUF];
};

static void resume_pipe(sess *s);
static void resume_tcp(sess *s);
static void free_handle(uv_handle_t *h) { raft_free(h); }

typedef struct wreq {
  uv_write_t req;
  sess *s;
  int to_tcp;
  size_t n;
  char data[];
} wreq;

static void logf_(cl_rtls *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(cl_rtls *t, const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (t->log) {
    t->log(t->log_ctx, line);
  } else {
    fprintf(stderr, "clinlogd: raft: %s\n", line);
    fflush(stderr);
  }
}

/* ------------------------------------------------------------- context */

void cl_rtls_options_init(cl_rtls_options *o) {
  memset(o, 0, sizeof *o);
  o->verify_name = 1;
}

/* Reads a whole file into malloc'd memory (the caller cleanses and frees). */
static int slurp(const char *what, const char *path, char **out, size_t *len, cl_err *err) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return cl_err_set(err, CL_EIO, "raft TLS %s %s: %s", what, path, strerror(errno));
  size_t cap = 4096, n = 0;
  char *b = malloc(cap);
  while (b) {
    n += fread(b + n, 1, cap - n, f);
    if (n < cap)
      break;
    char *nb = cap < (16u << 20) ? malloc(cap * 2) : NULL;
    if (nb)
      memcpy(nb, b, n);
    OPENSSL_cleanse(b, n);
    free(b);
    b = nb;
    cap *= 2;
  }
  int bad = ferror(f);
  fclose(f);
  if (!b)
    return cl_err_set(err, CL_ENOMEM, "raft TLS %s %s: out of memory or too large", what, path);
  if (bad) {
    OPENSSL_cleanse(b, n);
    free(b);
    return cl_err_set(err, CL_EIO, "raft TLS %s %s: read error", what, path);
  }
  *out = b;
  *len = n;
  return 0;
}

/* Gets one PEM item as bytes: `pem` if given, else the file. *owned: the
 * caller must cleanse and free *p. */
static int pem_of(const char *what, const char *pem, size_t pem_len, const char *file,
                  const char **p, size_t *n, char **owned, cl_err *err) {
  *owned = NULL;
  if (pem) {
    *p = pem;
    *n = pem_len ? pem_len : strlen(pem);
    return 0;
  }
  if (!file)
    return cl_err_set(err, CL_EINVAL, "raft TLS: no %s", what);
  int rc = slurp(what, file, owned, n, err);
  *p = *owned;
  return rc;
}

static void drop(char *owned, size_t n) {
  if (owned) {
    OPENSSL_cleanse(owned, n);
    free(owned);
  }
}

static const char *ossl_reason(void) {
  unsigned long e = ERR_peek_last_error();
  const char *r = e ? ERR_reason_error_string(e) : NULL;
  return r ? r : "unknown error";
}

int cl_rtls_new(const cl_rtls_options *o, cl_rtls **out, cl_err *err) {
  const char *p;
  size_t n;
  char *owned = NULL;
  int rc;
  ERR_clear_error();
  cl_rtls *t = calloc(1, sizeof *t);
  if (!t)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  t->verify_name = o->verify_name;
  t->log = o->log;
  t->log_ctx = o->log_ctx;
  if (!(t->ctx = SSL_CTX_new(TLS_method()))) {
    rc = cl_err_set(err, CL_ENOMEM, "raft TLS: %s", ossl_reason());
    goto fail_t;
  }
  SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
  /* no resumption (every connection proves its certificate), no
   * renegotiation, no compression */
  SSL_CTX_set_options(t->ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                  SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_num_tickets(t->ctx, 0);
  SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);

  /* certificate (and its chain) */
  if ((rc = pem_of("certificate", o->cert_pem, o->cert_pem_len, o->cert_file, &p, &n, &owned, err)))
    goto fail_ctx;
  BIO *b = BIO_new_mem_buf(p, (int)n);
  X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
  if (!x || SSL_CTX_use_certificate(t->ctx, x) != 1) {
    rc = cl_err_set(err, CL_EINVAL, "raft TLS certificate%s%s: no PEM certificate (%s)",
                    o->cert_pem ? "" : " ", o->cert_pem ? "" : o->cert_file, ossl_reason());
    X509_free(x);
    BIO_free(b);
    drop(owned, n);
    goto fail_ctx;
  }
  X509_free(x);
  X509 *extra;
  while ((extra = PEM_read_bio_X509(b, NULL, NULL, NULL)))
    if (SSL_CTX_add0_chain_cert(t->ctx, extra) != 1)
      X509_free(extra);
  BIO_free(b);
  drop(owned, n);

  /* private key: parsed from memory that is wiped right after */
  if ((rc = pem_of("key", o->key_pem, o->key_pem_len, o->key_file, &p, &n, &owned, err)))
    goto fail_ctx;
  ERR_clear_error();
  b = BIO_new_mem_buf(p, (int)n);
  EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
  BIO_free(b);
  drop(owned, n);
  if (!k || SSL_CTX_use_PrivateKey(t->ctx, k) != 1 || SSL_CTX_check_private_key(t->ctx) != 1) {
    rc = cl_err_set(err, CL_EINVAL, "raft TLS key%s%s: %s", o->key_pem ? "" : " ",
                    o->key_pem ? "" : o->key_file,
                    k ? "does not match the certificate" : "no PEM private key");
    EVP_PKEY_free(k);
    goto fail_ctx;
  }
  EVP_PKEY_free(k);

  /* the cluster CA: the only roots a peer may chain to */
  if ((rc = pem_of("CA", o->ca_pem, o->ca_pem_len, o->ca_file, &p, &n, &owned, err)))
    goto fail_ctx;
  b = BIO_new_mem_buf(p, (int)n);
  X509_STORE *st = SSL_CTX_get_cert_store(t->ctx);
  int cas = 0;
  while (b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
    cas += X509_STORE_add_cert(st, x) == 1;
    X509_free(x);
  }
  BIO_free(b);
  drop(owned, n);
  ERR_clear_error();
  if (!cas) {
    rc = cl_err_set(err, CL_EINVAL, "raft TLS CA%s%s: no PEM certificate", o->ca_pem ? "" : " ",
                    o->ca_pem ? "" : o->ca_file);
    goto fail_ctx;
  }
  *out = t;
  return 0;
fail_ctx:
  SSL_CTX_free(t->ctx);
fail_t:
  free(t);
  ERR_clear_error();
  return rc;
}

void cl_rtls_free(cl_rtls *t) {
  if (!t)
    return;
  SSL_CTX_free(t->ctx);
  free(t);
}

size_t cl_rtls_sessions(const cl_rtls *t) { return t->n; }

/* ------------------------------------------------------------- sessions */

static void sess_unref(sess *s) {
  if (--s->handles)
    return;
  cl_rtls *t = s->t;
  if (s->prev)
    s->prev->next = s->next;
  else
    t->sessions = s->next;
  if (s->next)
    s->next->prev = s->prev;
  t->n--;
  SSL_free(s->ssl);
  free(s);
  if (t->closing && !t->sessions && t->closed_cb) {
    void (*cb)(void *) = t->closed_cb;
    t->closed_cb = NULL;
    cb(t->closed_arg);
  }
}

static void tcp_closed(uv_handle_t *h) {
  sess *s = h->data;
  raft_free(h);
  sess_unref(s);
}

static void pipe_closed(uv_handle_t *h) { sess_unref(h->data); }

static void close_tcp_now(sess *s) {
  if (!s->tcp_closing) {
    s->tcp_closing = 1;
    uv_close((uv_handle_t *)s->tcp, tcp_closed);
  }
}

static void shut_done(uv_shutdown_t *r, int status) {
  (void)status;
  close_tcp_now(r->data);
}

/* Ends the session. graceful: what is queued towards TCP (a close_notify,
 * an alert) is written before the TCP stream closes. A handshake callback
 * still due runs here, last, with CL_EIO: whatever ends a handshake (a
 * failed TCP write, too), `done` runs exactly once (tls.h), and node.c
 * turns it into libraft's connect callback, which raft_close waits for.
 * Callers that report another status (fail_handshake, cl_rtls_close) take
 * `done` first. The session stays allocated until its close callbacks run,
 * so `done` may do anything but free it. */
static void sess_end(sess *s, int graceful) {
  if (s->state == S_CLOSING) {
    if (!graceful)
      close_tcp_now(s);
    return;
  }
  s->state = S_CLOSING;
  if (s->pipe_open) {
    s->pipe_open = 0;
    uv_close((uv_handle_t *)&s->pipe, pipe_closed);
  }
  int draining = 0;
  if (graceful && !s->tcp_closing) {
    s->shut.data = s;
    uv_read_stop(s->tcp);
    draining = uv_shutdown(&s->shut, s->tcp, shut_done) == 0;
  }
  if (!draining)
    close_tcp_now(s);
  cl_rtls_done_fn done = s->done;
  if (done) {
    s->done = NULL;
    done(s->arg, NULL, CL_EIO);
  }
}

static void write_done(uv_write_t *r, int status) {
  wreq *w = (wreq *)r;
  sess *s = w->s;
  if (w->to_tcp) {
    s->tcp_queued -= w->n;
    if (s->state == S_OPEN)
      resume_pipe(s);
  } else {
    s->pipe_queued -= w->n;
    if (s->state == S_OPEN)
      resume_tcp(s);
  }
  free(w);
  if (status < 0 && s->state != S_CLOSING)
    sess_end(s, 0);
}

static int put(sess *s, int to_tcp, const void *p, size_t n) {
  wreq *w = malloc(sizeof *w + n);
  if (!w)
    return -1;
  w->s = s;
  w->to_tcp = to_tcp;
  w->n = n;
  memcpy(w->data, p, n);
  uv_buf_t buf = uv_buf_init(w->data, (unsigned)n);
  uv_stream_t *st = to_tcp ? s->tcp : (uv_stream_t *)&s->pipe;
  if (uv_write(&w->req, st, &buf, 1, write_done) != 0) {
    free(w);
    return -1;
  }
  if (to_tcp)
    s->tcp_queued += n;
  else
    s->pipe_queued += n;
  return 0;
}

/* Sends what OpenSSL has queued for the network. */
static int flush_tls(sess *s) {
  size_t n = BIO_ctrl_pending(s->wbio);
  if (!n || s->tcp_closing)
    return 0;
  wreq *w = malloc(sizeof *w + n);
  if (!w)
    return -1;
  int got = BIO_read(s->wbio, w->data, (int)n);
  w->s = s;
  w->to_tcp = 1;
  w->n = got > 0 ? (size_t)got : 0;
  uv_buf_t buf = uv_buf_init(w->data, (unsigned)w->n);
  if (got <= 0 || uv_write(&w->req, s->tcp, &buf, 1, write_done) != 0) {
    free(w);
    return -1;
  }
  s->tcp_queued += w->n;
  return 0;
}

static void alloc_net(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  (void)suggested;
  sess *s = h->data;
  *b = uv_buf_init(s->netbuf, sizeof s->netbuf);
}

static void alloc_pipe(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  (void)suggested;
  sess *s = h->data;
  *b = uv_buf_init(s->pipebuf, sizeof s->pipebuf);
}

static void pipe_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b);

static void resume_pipe(sess *s) {
  if (s->pipe_paused && s->tcp_queued < LOW_WATER) {
    s->pipe_paused = 0;
    uv_read_start((uv_stream_t *)&s->pipe, alloc_pipe, pipe_read);
  }
}

static void tcp_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b);

static void resume_tcp(sess *s) {
  if (s->tcp_paused && s->pipe_queued < LOW_WATER) {
    s->tcp_paused = 0;
    uv_read_start(s->tcp, alloc_net, tcp_read);
  }
}

/* The reason a handshake failed, for the log. Clears OpenSSL's queue. */
static void why(sess *s, int ssl_err, ssize_t nread, char *out, size_t cap) {
  long vr = SSL_get_verify_result(s->ssl);
  unsigned long e = ERR_peek_last_error();
  if (vr != X509_V_OK)
    snprintf(out, cap, "certificate verify failed: %s", X509_verify_cert_error_string(vr));
  else if (e && ERR_GET_LIB(e) == ERR_LIB_SSL &&
           ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
    snprintf(out, cap, "no client certificate");
  else if (e)
    snprintf(out, cap, "%s", ossl_reason());
  else if (nread == UV_EOF || ssl_err == SSL_ERROR_ZERO_RETURN)
    snprintf(out, cap, "connection closed during the TLS handshake");
  else if (nread < 0)
    snprintf(out, cap, "%s", uv_strerror((int)nread));
  else
    snprintf(out, cap, "TLS handshake failed");
  ERR_clear_error();
}

static void fail_handshake(sess *s, int status, const char *reason) {
  if (status == CL_EDENIED)
    logf_(s->t, "%s %s: %s", s->server ? "refused" : "cannot connect to", s->peer, reason);
  cl_rtls_done_fn done = s->done;
  s->done = NULL;
  sess_end(s, 1);
  done(s->arg, NULL, status);
}

/* Decrypts what has arrived and passes it to raft. */
static void pump_in(sess *s) {
  while (s->state == S_OPEN) {
    ERR_clear_error();
    int r = SSL_read(s->ssl, s->plain, sizeof s->plain);
    if (r > 0) {
      if (put(s, 0, s->plain, (size_t)r) != 0) {
        sess_end(s, 0);
        return;
      }
      continue;
    }
    int e = SSL_get_error(s->ssl, r);
    flush_tls(s);
    if (e == SSL_ERROR_WANT_READ)
      break;
    if (e == SSL_ERROR_SSL)
      logf_(s->t, "closed %s: %s", s->peer, ossl_reason());
    ERR_clear_error();
    sess_end(s, 1);
    return;
  }
  if (s->state != S_OPEN)
    return;
  if (flush_tls(s) != 0) {
    sess_end(s, 0);
    return;
  }
  if (!s->tcp_paused && s->pipe_queued > CL_RTLS_HIGH_WATER) {
    s->tcp_paused = 1;
    uv_read_stop(s->tcp);
  }
}

/* The handshake is done and the peer verified: open the bridge. */
static void open_bridge(sess *s) {
  char reason[160];
  if (SSL_get_verify_result(s->ssl) != X509_V_OK || !SSL_get0_peer_certificate(s->ssl)) {
    why(s, 0, 0, reason, sizeof reason);
    fail_handshake(s, CL_EDENIED, reason);
    return;
  }
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    snprintf(reason, sizeof reason, "socketpair: %s", strerror(errno));
    fail_handshake(s, CL_EIO, reason);
    return;
  }
  uv_pipe_t *rp = raft_malloc(sizeof *rp);
  if (!rp) {
    close(fds[0]);
    close(fds[1]);
    fail_handshake(s, CL_EIO, "out of memory");
    return;
  }
  uv_pipe_init(s->loop, rp, 0);
  uv_pipe_init(s->loop, &s->pipe, 0);
  s->pipe.data = s;
  s->pipe_open = 1;
  s->handles++;
  /* an fd uv_pipe_open refused is not the handle's: closed by hand */
  int rv = uv_pipe_open(rp, fds[0]);
  if (rv != 0) {
    close(fds[0]);
    close(fds[1]);
  } else if ((rv = uv_pipe_open(&s->pipe, fds[1])) != 0) {
    close(fds[1]);
  } else {
    rv = uv_read_start((uv_stream_t *)&s->pipe, alloc_pipe, pipe_read);
  }
  if (rv != 0) {
    uv_close((uv_handle_t *)rp, free_handle);
    fail_handshake(s, CL_EIO, uv_strerror(rv));
    return;
  }
  s->state = S_OPEN;
  cl_rtls_done_fn done = s->done;
  s->done = NULL;
  done(s->arg, (uv_stream_t *)rp, 0);
  pump_in(s); /* application data that came with the last handshake flight */
}

static void handshake_step(sess *s, ssize_t nread) {
  ERR_clear_error();
  int r = SSL_do_handshake(s->ssl);
  int e = r == 1 ? 0 : SSL_get_error(s->ssl, r);
  if (flush_tls(s) != 0) { /* also sends an alert on failure */
    fail_handshake(s, CL_EIO, "out of memory");
    return;
  }
  if (r == 1) {
    open_bridge(s);
    return;
  }
  if (e == SSL_ERROR_WANT_READ && nread >= 0)
    return;
  char reason[160];
  why(s, e, nread, reason, sizeof reason);
  fail_handshake(s, CL_EDENIED, reason);
}

static void tcp_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b) {
  sess *s = st->data;
  if (s->state == S_CLOSING || nread == 0)
    return;
  if (nread < 0) {
    if (s->state == S_HANDSHAKE) {
      char reason[160];
      why(s, 0, nread, reason, sizeof reason);
      /* a peer that hangs up before saying anything is not worth a line */
      fail_handshake(s, CL_EIO, reason);
    } else {
      sess_end(s, 0);
    }
    return;
  }
  BIO_write(s->rbio, b->base, (int)nread);
  if (s->state == S_HANDSHAKE)
    handshake_step(s, nread);
  else
    pump_in(s);
}

static void pipe_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b) {
  sess *s = st->data;
  if (s->state != S_OPEN || nread == 0)
    return;
  if (nread < 0) { /* raft closed its end */
    SSL_shutdown(s->ssl);
    flush_tls(s);
    ERR_clear_error();
    sess_end(s, 1);
    return;
  }
  ERR_clear_error();
  int r = SSL_write(s->ssl, b->base, (int)nread);
  if (r != (int)nread || flush_tls(s) != 0) {
    ERR_clear_error();
    sess_end(s, 0);
    return;
  }
  if (!s->pipe_paused && s->tcp_queued > CL_RTLS_HIGH_WATER) {
    s->pipe_paused = 1;
    uv_read_stop((uv_stream_t *)&s->pipe);
  }
}

/* Host part of "host:port" or "[v6]:port". */
static void host_of(const char *address, char *out, size_t cap) {
  const char *p = address, *end;
  if (*p == '[') {
    p++;
    end = strchr(p, ']');
  } else {
    end = strrchr(p, ':');
  }
  size_t n = end ? (size_t)(end - p) : strlen(p);
  if (n >= cap)
    n = cap - 1;
  memcpy(out, p, n);
  out[n] = '\0';
}

static int wait_write(sess *s);

int cl_rtls_wrap(cl_rtls *t, uv_loop_t *loop, uv_stream_t *tcp, int server,
                 const char *peer_address, cl_rtls_done_fn done, void *arg) {
  int rc = CL_ENOMEM;
  if (t->closing) {
    rc = CL_EUNAVAILABLE;
    goto fail_tcp;
  }
  sess *s = calloc(1, sizeof *s);
  if (!s)
    goto fail_tcp;
  s->t = t;
  s->loop = loop;
  s->tcp = tcp;
  s->server = server;
  s->done = done;
  s->arg = arg;
  s->handles = 1; /* tcp */
  tcp->data = s;
  /* the log names the address the connection really comes from */
  struct sockaddr_storage sa;
  int salen = sizeof sa;
  char ip[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (tcp->type == UV_TCP &&
      uv_tcp_getpeername((uv_tcp_t *)tcp, (struct sockaddr *)&sa, &salen) == 0) {
    if (sa.ss_family == AF_INET) {
      uv_ip4_name((struct sockaddr_in *)&sa, ip, sizeof ip);
      port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
    } else if (sa.ss_family == AF_INET6) {
      uv_ip6_name((struct sockaddr_in6 *)&sa, ip, sizeof ip);
      port = ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
    }
  }
  if (server || !peer_address)
    snprintf(s->peer, sizeof s->peer, "%s:%d", ip, port);
  else
    snprintf(s->peer, sizeof s->peer, "%s", peer_address);
  ERR_clear_error();
  if (!(s->ssl = SSL_new(t->ctx)) || !(s->rbio = BIO_new(BIO_s_mem())) ||
      !(s->wbio = BIO_new(BIO_s_mem()))) {
    BIO_free(s->rbio);
    goto fail_sess;
  }
  SSL_set_bio(s->ssl, s->rbio, s->wbio);
  if (server)
    SSL_set_accept_state(s->ssl);
  else
    SSL_set_connect_state(s->ssl);
  if (t->verify_name && peer_address) {
    char host[256];
    host_of(peer_address, host, sizeof host);
    unsigned char bin[16];
    X509_VERIFY_PARAM *vp = SSL_get0_param(s->ssl);
    int ip_literal = inet_pton(AF_INET, host, bin) == 1 || inet_pton(AF_INET6, host, bin) == 1;
    if (ip_literal) {
      if (X509_VERIFY_PARAM_set1_ip_asc(vp, host) != 1)
        goto fail_sess;
    } else {
      X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      if (X509_VERIFY_PARAM_set1_host(vp, host, 0) != 1)
        goto fail_sess;
      if (!server)
        SSL_set_tlsext_host_name(s->ssl, host);
    }
  }
  if (uv_read_start(tcp, alloc_net, tcp_read) != 0) {
    rc = CL_EIO;
    goto fail_sess;
  }
  /* the ClientHello goes out from the loop, not from here; a write that
   * cannot even be queued fails the wrap rather than leave a handshake
   * waiting for an answer to nothing */
  if (!server && wait_write(s) != 0) {
    rc = CL_EIO;
    goto fail_sess;
  }
  s->next = t->sessions;
  if (t->sessions)
    t->sessions->prev = s;
  t->sessions = s;
  t->n++;
  return 0;
fail_sess:
  SSL_free(s->ssl);
  free(s);
fail_tcp:
  ERR_clear_error();
  tcp->data = NULL;
  uv_close((uv_handle_t *)tcp, free_handle);
  return rc;
}

/* The client speaks first. Its first flight is produced now and queued
 * (uv_write completes later, and a failure there ends the session through
 * write_done); `done` can only run from a later callback. -1: nothing could
 * be queued. */
static int wait_write(sess *s) {
  ERR_clear_error();
  int r = SSL_do_handshake(s->ssl);
  (void)r;
  int rc = flush_tls(s);
  ERR_clear_error();
  return rc;
}

void cl_rtls_close(cl_rtls *t, void (*cb)(void *arg), void *arg) {
  t->closing = 1;
  t->closed_cb = cb;
  t->closed_arg = arg;
  if (!t->sessions) {
    t->closed_cb = NULL;
    if (cb)
      cb(arg);
    return;
  }
  for (sess *s = t->sessions; s; s = s->next) {
    cl_rtls_done_fn done = s->done;
    s->done = NULL;
    sess_end(s, 0);
    if (done)
      done(s->arg, NULL, CL_EUNAVAILABLE);
  }
}

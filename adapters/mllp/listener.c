/* The MLLP listener (listener.h): an acceptor thread and one thread per
 * connection, each running a session over its socket.
 *
 * Locking: `mu` guards the list of open connections, its count ; a connection's own fields are its
 * thread's alone (stop only shuts its socket down for reading, which wakes the thread). A
 * connection unlinks itself under `mu` before it closes its socket, so stop never touches a closed
 * descriptor. */
#include "adapters/mllp/listener.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "adapters/mllp/tls.h"
#include "adapters/service/listen.h"

#define READ_BUF (64u * 1024)

typedef struct conn {
  struct conn *next, *prev;
  struct cl_mllp_listener *l;
  int fd;
  cl_mllp_tls_conn *tls; /* NULL: plaintext */
  char peer[128];
} conn;

struct cl_mllp_listener {
  cl_mllp_listen_config c;
  cl_signer signer; /* loaded from key_path (its secret in sodium_malloc'd memory) */
  int own_signer;
  cl_mllp_tls *tls; /* NULL: plaintext */
  char listen[256];
  int fd;      /* the listening socket */
  int wake[2]; /* a pipe: stop wakes the acceptor's poll */
  pthread_t acceptor;
  pthread_mutex_t mu;
  pthread_cond_t gone; /* a connection ended */
  conn *conns;         /* open connections */
  int nconns;
};

/* ---- one connection ---- */

static int send_all(void *ctx, const uint8_t *p, size_t n) {
  conn *k = ctx;
  if (k->tls)
    return cl_mllp_tls_write(k->tls, p, n);
  while (n > 0) {
    ssize_t w = send(k->fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1; /* the peer left, or SO_SNDTIMEO: it stopped reading */
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static void unlink_conn(cl_mllp_listener *l, conn *k) {
  pthread_mutex_lock(&l->mu);
  if (k->prev)
    k->prev->next = k->next;
  else
    l->conns = k->next;
  if (k->next)
    k->next->prev = k->prev;
  l->nconns--;
  pthread_cond_broadcast(&l->gone);
  pthread_mutex_unlock(&l->mu);
}

static void *conn_main(void *arg) {
  conn *k = arg;
  (void)pthread_setname_np(pthread_self(), "mllp:conn");
  cl_mllp_listener *l = k->l;
  cl_mllp_session *s = NULL;
  uint8_t *buf = malloc(READ_BUF);
  cl_err err;
  cl_err_clear(&err);
  const char *why = "closed by the peer";
  char whybuf[CL_ERR_MSG_SIZE + 32];
  if (!buf || cl_mllp_session_new(&l->c.conf, k->peer, &s, &err) != 0) {
    why = "out of memory";
    goto done;
  }
  if (l->tls) {
    char fp[65];
    if (cl_mllp_tls_accept(l->tls, k->fd, &k->tls, fp, &err) != 0) {
      snprintf(whybuf, sizeof whybuf, "%s", err.msg);
      why = whybuf;
      goto done;
    }
    cl_mllp_session_set_cert(s, fp);
  }
  for (;;) {
    ssize_t r;
    if (k->tls) {
      r = cl_mllp_tls_read(k->tls, buf, READ_BUF, l->c.idle_s * 1000);
    } else {
      struct pollfd pf = {.fd = k->fd, .events = POLLIN};
      int pr = poll(&pf, 1, l->c.idle_s * 1000);
      if (pr < 0 && errno == EINTR)
        continue;
      r = pr == 0 ? -2 : pr < 0 ? -1 : recv(k->fd, buf, READ_BUF, 0);
      if (r < 0 && r != -2 && errno == EINTR)
        continue;
    }
    if (r == -2) {
      snprintf(whybuf, sizeof whybuf, "idle for %d s%s", l->c.idle_s,
               cl_mllp_session_pending(s) ? " inside a frame (truncated message dropped)" : "");
      why = whybuf;
      break;
    }
    if (r <= 0) {
      if (cl_mllp_session_pending(s))
        why = "closed by the peer inside a frame (truncated message dropped)";
      break;
    }
    int rc = cl_mllp_session_feed(s, buf, (size_t)r, send_all, k, &err);
    if (rc < 0) {
      snprintf(whybuf, sizeof whybuf, "error: %s", err.msg);
      why = whybuf;
      break;
    }
    if (rc > 0) {
      why = cl_mllp_session_counts(s)->oversized ? "closed after an oversized frame"
                                                 : "closed: an ACK could not be sent";
      break;
    }
  }
done:
  if (s) {
    const cl_mllp_counts *n = cl_mllp_session_counts(s);
    fprintf(stderr,
            "clinlogd: mllp %s: %s; %llu messages: %llu accepted, %llu duplicates, %llu "
            "rejected (AR), %llu errors (AE)\n",
            k->peer, why, (unsigned long long)n->messages, (unsigned long long)n->accepted,
            (unsigned long long)n->duplicates, (unsigned long long)n->rejected,
            (unsigned long long)n->errors);
  } else {
    fprintf(stderr, "clinlogd: mllp %s: %s\n", k->peer, why);
  }
  cl_mllp_session_free(s);
  cl_mllp_tls_close(k->tls);
  free(buf);
  unlink_conn(l, k);
  close(k->fd);
  free(k);
  return NULL;
}

/* ---- accepting ---- */

static void start_conn(cl_mllp_listener *l, int fd, const struct sockaddr *sa) {
  conn *k = calloc(1, sizeof *k);
  char peer[128];
  cl_listen_peer(sa, peer, sizeof peer);
  pthread_mutex_lock(&l->mu);
  int full = l->nconns >= l->c.max_conns;
  pthread_mutex_unlock(&l->mu);
  if (!k || full) {
    fprintf(stderr, "clinlogd: mllp %s: refused: %s\n", peer,
            k ? "the connection limit (--mllp-max-connections) is reached" : "out of memory");
    free(k);
    close(fd);
    return;
  }
  k->l = l;
  k->fd = fd;
  snprintf(k->peer, sizeof k->peer, "%s", peer);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  /* an ACK that cannot be written within the idle time: the peer stopped
   * reading; a TLS handshake or record that stalls as long: gone too */
  struct timeval tv = {.tv_sec = l->c.idle_s};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  pthread_mutex_lock(&l->mu);
  k->next = l->conns;
  if (l->conns)
    l->conns->prev = k;
  l->conns = k;
  l->nconns++;
  pthread_mutex_unlock(&l->mu);
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  pthread_t t;
  int rc = pthread_create(&t, &at, conn_main, k);
  pthread_attr_destroy(&at);
  if (rc != 0) {
    fprintf(stderr, "clinlogd: mllp %s: refused: no thread (%s)\n", peer, strerror(rc));
    unlink_conn(l, k);
    close(fd);
    free(k);
  }
}

static void *accept_main(void *arg) {
  cl_mllp_listener *l = arg;
  (void)pthread_setname_np(pthread_self(), "mllp:accept");
  for (;;) {
    struct pollfd pf[2] = {{.fd = l->fd, .events = POLLIN}, {.fd = l->wake[0], .events = POLLIN}};
    int pr = poll(pf, 2, -1);
    if (pr < 0 && errno == EINTR)
      continue;
    if (pr < 0 || pf[1].revents)
      break;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
        poll(NULL, 0, 100); /* out of descriptors: let connections end */
      continue;
    }
    start_conn(l, fd, (struct sockaddr *)&ss);
  }
  return NULL;
}

int cl_mllp_start(const cl_mllp_listen_config *c, cl_mllp_listener **out, int *port, cl_err *err) {
  if (!c || !c->listen || !c->conf.svc || (!c->conf.signer && !c->key_path) || !out)
    return cl_err_set(err, CL_EINVAL, "mllp: no address, service or key (--mllp-key)");
  struct sockaddr_storage ss;
  int loopback = 0, code;
  if ((code = cl_listen_parse(c->listen, "mllp listen", &ss, &loopback, err)) != 0)
    return code;
  if (!c->tls_cert && !c->allow_plaintext && !(c->dev && loopback))
    return cl_err_set(err, CL_EINVAL,
                      "mllp listen %s: plaintext MLLP is allowed with --dev on a loopback "
                      "address, or with --mllp-plaintext; else give --mllp-tls-cert and "
                      "--mllp-tls-key",
                      c->listen);
  cl_mllp_listener *l = calloc(1, sizeof *l);
  if (!l)
    return cl_err_set(err, CL_ENOMEM, "mllp: out of memory");
  l->c = *c;
  snprintf(l->listen, sizeof l->listen, "%s", c->listen);
  l->c.listen = l->listen;
  if (l->c.max_conns <= 0)
    l->c.max_conns = CL_MLLP_DEFAULT_MAX_CONNS;
  if (l->c.idle_s <= 0)
    l->c.idle_s = CL_MLLP_DEFAULT_IDLE_S;
  l->wake[0] = l->wake[1] = -1;
  l->fd = -1;
  if (c->key_path) {
    if ((code = cl_crypto_init(err)) != 0 ||
        (code = cl_signer_load(&l->signer, c->key_path, err)) != 0) {
      cl_err_prefix(err, "mllp key");
      free(l);
      return code;
    }
    l->own_signer = 1;
    l->c.conf.signer = &l->signer;
  }
  if ((c->tls_cert || c->tls_key) &&
      (code = cl_mllp_tls_new(c->tls_cert, c->tls_key, c->client_ca, c->require_client_cert,
                              &l->tls, err)) != 0)
    goto fail_socket;
  l->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  socklen_t sl =
      ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  if (l->fd < 0 || setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(l->fd, (struct sockaddr *)&ss, sl) != 0 || listen(l->fd, 128) != 0) {
    code = cl_err_set(err, CL_EIO, "mllp listen %s: %s", c->listen, strerror(errno));
    goto fail_socket;
  }
  if (pipe2(l->wake, O_CLOEXEC) != 0) {
    code = cl_err_set(err, CL_EIO, "mllp: pipe: %s", strerror(errno));
    goto fail_socket;
  }
  struct sockaddr_storage bound;
  sl = sizeof bound;
  if (port) {
    *port = 0;
    if (getsockname(l->fd, (struct sockaddr *)&bound, &sl) == 0)
      *port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
  }
  pthread_mutex_init(&l->mu, NULL);
  pthread_cond_init(&l->gone, NULL);
  int rc = pthread_create(&l->acceptor, NULL, accept_main, l);
  if (rc != 0) {
    code = cl_err_set(err, CL_ENOMEM, "mllp: no thread: %s", strerror(rc));
    goto fail_sync;
  }
  *out = l;
  return 0;
fail_sync:
  pthread_cond_destroy(&l->gone);
  pthread_mutex_destroy(&l->mu);
  close(l->wake[0]);
  close(l->wake[1]);
fail_socket:
  if (l->fd >= 0)
    close(l->fd);
  cl_mllp_tls_free(l->tls);
  if (l->own_signer)
    cl_signer_free(&l->signer);
  free(l);
  return code;
}

void cl_mllp_stop(cl_mllp_listener *l) {
  if (!l)
    return;
  ssize_t w;
  do
    w = write(l->wake[1], "x", 1);
  while (w < 0 && errno == EINTR);
  pthread_join(l->acceptor, NULL);
  close(l->fd);
  pthread_mutex_lock(&l->mu);
  /* reading ends: a message in progress is committed and acknowledged first */
  for (conn *k = l->conns; k; k = k->next)
    shutdown(k->fd, SHUT_RD);
  while (l->nconns > 0)
    pthread_cond_wait(&l->gone, &l->mu);
  pthread_mutex_unlock(&l->mu);
  pthread_cond_destroy(&l->gone);
  pthread_mutex_destroy(&l->mu);
  close(l->wake[0]);
  close(l->wake[1]);
  cl_mllp_tls_free(l->tls);
  if (l->own_signer)
    cl_signer_free(&l->signer);
  free(l);
}

int cl_mllp_connections(cl_mllp_listener *l) {
  pthread_mutex_lock(&l->mu);
  int n = l->nconns;
  pthread_mutex_unlock(&l->mu);
  return n;
}

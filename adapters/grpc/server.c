/* The server engine: listeners, completion-queue threads, the worker pool,
 * per-call lifecycle (decode, admission by the request layer, the handler,
 * the end; its batch operations and the audit record before an answer are
 * server_ops.c), waiting calls, graceful shutdown. Method handlers come from
 * the method tables the caller hands over (svc_*.c for clinlogd). See
 * server.h for the threading model. */
#include <arpa/inet.h>
#include <errno.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "adapters/grpc/client.h"
#include "adapters/grpc/server_int.h"

#define REQUESTS_PER_METHOD 8

void cl_server_config_init(cl_server_config *c) {
  memset(c, 0, sizeof *c);
  c->listen = "127.0.0.1:7525";
  c->max_message_bytes = 16u << 20;
  c->keepalive_time_ms = 60000;
  c->keepalive_timeout_ms = 20000;
  c->min_client_ping_ms = 10000;
  c->cq_threads = 2;
  c->workers = 64;
  c->drain_ms = 1000;
  c->shutdown_grace_ms = 10000;
}

int64_t srv_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------ call life */


static srv_call *call_new(cl_server *s, int slot) {
  srv_call *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->srv = s;
  c->slot = slot;
  if (slot >= 0) {
    c->def = s->slot_def[slot];
    c->svc_ctx = s->service_ctx[s->slot_service[slot]];
  }
  c->t_new = (srv_tag){c, TAG_NEW};
  c->t_op = (srv_tag){c, TAG_OP};
  c->t_close = (srv_tag){c, TAG_CLOSE};
  grpc_metadata_array_init(&c->req_md);
  if (slot < 0)
    grpc_call_details_init(&c->details);
  atomic_store(&c->refs, 2);
  atomic_fetch_add(&s->live_calls, 1);
  pthread_mutex_lock(&s->lmu);
  c->lnext = s->live;
  if (s->live)
    s->live->lprev = c;
  s->live = c;
  pthread_mutex_unlock(&s->lmu);
  return c;
}

static void call_free(srv_call *c) {
  cl_server *s = c->srv;
  pthread_mutex_lock(&s->lmu);
  if (c->lprev)
    c->lprev->lnext = c->lnext;
  else
    s->live = c->lnext;
  if (c->lnext)
    c->lnext->lprev = c->lprev;
  pthread_mutex_unlock(&s->lmu);
  if (c->st_free && c->st)
    c->st_free(c->st);
  if (c->req)
    protobuf_c_message_free_unpacked(c->req, NULL);
  if (c->payload)
    grpc_byte_buffer_destroy(c->payload);
  if (c->recv)
    grpc_byte_buffer_destroy(c->recv);
  if (c->send)
    grpc_byte_buffer_destroy(c->send);
  grpc_metadata_array_destroy(&c->req_md);
  if (c->slot < 0)
    grpc_call_details_destroy(&c->details);
  if (c->gc)
    grpc_call_unref(c->gc);
  free(c);
  atomic_fetch_sub(&s->live_calls, 1);
  pthread_mutex_lock(&s->smu);
  pthread_cond_broadcast(&s->scv);
  pthread_mutex_unlock(&s->smu);
}

void srv_call_unref(srv_call *c) {
  if (atomic_fetch_sub(&c->refs, 1) == 1)
    call_free(c);
}

/* Posts a request for the next incoming call of `method`. Requests stay
 * posted while the server drains, so late calls get UNAVAILABLE from their
 * handler; grpc_server_shutdown_and_notify completes the remaining ones
 * unsuccessfully. */
static void request_call(cl_server *s, int slot) {
  srv_call *c = call_new(s, slot);
  if (!c)
    return;
  grpc_call_error e;
  if (slot < 0)
    e = grpc_server_request_call(s->gs, &c->gc, &c->details, &c->req_md, s->cq, s->cq, &c->t_new);
  else
    e = grpc_server_request_registered_call(s->gs, s->registered[slot], &c->gc, &c->deadline,
                                            &c->req_md, c->def->request ? &c->payload : NULL,
                                            s->cq, s->cq, &c->t_new);
  if (e != GRPC_CALL_OK) {
    atomic_store(&c->refs, 1);
    srv_call_unref(c);
  }
}

/* ---------------------------------------------------------------- workers */

/* A worker thread. An idle one waits on its own semaphore and is handed
 * its next call directly (`c`), so a new call wakes exactly one worker,
 * which starts it without touching the queue's lock again. One shared
 * condition variable had each woken worker queue for the lock behind the
 * CQ threads and the other workers: futex waits and context switches a
 * call. */
struct srv_worker {
  cl_server *s;
  pthread_t thread;
  sem_t wake;
  srv_call *c; /* the call handed over; NULL when woken to stop */
  srv_worker *next_idle;
};

/* The worker running on this thread, NULL on other threads. */
static _Thread_local srv_worker *tl_worker;

/* An idle worker to hand a call to (taken off the idle list and counted
 * as running), or NULL: none idle, or as many running as the CPUs can
 * serve (the call waits in the queue for the next worker to finish its
 * step; waking a thread a call costs more than the queue). Holds qmu. */
static srv_worker *idle_worker(cl_server *s) {
  srv_worker *w = s->running < s->run_max ? s->idle : NULL;
  if (w) {
    s->idle = w->next_idle;
    s->running++;
  }
  return w;
}

void srv_enqueue(srv_call *c, int ok) {
  cl_server *s = c->srv;
  c->qok = ok;
  c->qnext = NULL;
  pthread_mutex_lock(&s->qmu);
  srv_worker *w = idle_worker(s);
  if (w) {
    w->c = c;
  } else {
    if (s->qtail)
      s->qtail->qnext = c;
    else
      s->qhead = c;
    s->qtail = c;
  }
  pthread_mutex_unlock(&s->qmu);
  if (w)
    sem_post(&w->wake);
}

/* The worker's next call: from the queue, or handed over once it has
 * waited idle; NULL when the server stops. */
static srv_call *next_call(srv_worker *w) {
  cl_server *s = w->s;
  pthread_mutex_lock(&s->qmu);
  srv_call *c = s->qhead;
  if (c) {
    s->qhead = c->qnext;
    if (!s->qhead)
      s->qtail = NULL;
    pthread_mutex_unlock(&s->qmu);
    return c;
  }
  s->running--;
  if (s->stop_workers) {
    pthread_mutex_unlock(&s->qmu);
    return NULL;
  }
  w->c = NULL;
  w->next_idle = s->idle;
  s->idle = w;
  pthread_mutex_unlock(&s->qmu);
  while (sem_wait(&w->wake) != 0)
    ; /* EINTR */
  return w->c;
}

/* cl_svc_set_blocking's hook: a worker about to wait for another thread
 * (a commit, a forwarded write) stops counting as running, and a queued
 * call goes to an idle worker meanwhile; back from the wait, it counts
 * again. Other threads (the HTTP face's, the node's own) pass through. */
static void srv_blocking(void *ctx, int on) {
  cl_server *s = ctx;
  srv_worker *w = tl_worker;
  if (!w || w->s != s)
    return;
  pthread_mutex_lock(&s->qmu);
  if (!on) {
    s->running++;
    pthread_mutex_unlock(&s->qmu);
    return;
  }
  s->running--;
  srv_call *c = s->qhead;
  srv_worker *o = c ? idle_worker(s) : NULL;
  if (o) {
    s->qhead = c->qnext;
    if (!s->qhead)
      s->qtail = NULL;
    o->c = c;
  }
  pthread_mutex_unlock(&s->qmu);
  if (o)
    sem_post(&o->wake);
}

void srv_block(cl_server *s, int on) { srv_blocking(s, on); }

static void *worker_main(void *arg) {
  srv_worker *w = arg;
  cl_server *s = w->s;
  tl_worker = w;
  (void)pthread_setname_np(pthread_self(), "api:worker");
  srv_call *c;
  while ((c = next_call(w)) != NULL) {
    step_fn f = c->next;
    c->next = NULL;
    c->seen_gen = atomic_load(&s->wake_gen);
    if (f)
      f(c, c->qok);
  }
  return NULL;
}

void srv_hold(srv_call *c, step_fn next) {
  atomic_fetch_add(&c->srv->held_calls, 1);
  c->held_next = next;
}

void srv_resume(void *call, int here) {
  srv_call *c = call;
  if (here) { /* on this thread, as a worker would run it */
    c->seen_gen = atomic_load(&c->srv->wake_gen);
    c->held_next(c, 1);
    return;
  }
  c->next = c->held_next;
  srv_enqueue(c, 1);
}

void srv_release(srv_call *c) {
  c->held_next = NULL;
  atomic_fetch_sub(&c->srv->held_calls, 1);
}

/* Takes a parked call off the waiting list. Caller holds wmu. */
static void waiter_unlink(cl_server *s, srv_call *c) {
  if (c->wprev)
    c->wprev->wnext = c->wnext;
  else
    s->waiters = c->wnext;
  if (c->wnext)
    c->wnext->wprev = c->wprev;
  c->waiting = 0;
}

/* ------------------------------------------------------------- CQ threads */

static void *cq_main(void *arg) {
  cl_server *s = arg;
  (void)pthread_setname_np(pthread_self(), "grpc:cq");
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN)
      return NULL;
    if (ev.type != GRPC_OP_COMPLETE)
      continue;
    srv_tag *t = ev.tag;
    srv_call *c = t->c;
    switch (t->kind) {
    case TAG_SHUTDOWN:
      pthread_mutex_lock(&s->smu);
      s->shutdown_done = 1;
      pthread_cond_broadcast(&s->scv);
      pthread_mutex_unlock(&s->smu);
      break;
    case TAG_NEW: {
      if (!ev.success) { /* server shutting down: the request is void */
        atomic_store(&c->refs, 1);
        srv_call_unref(c);
        break;
      }
      request_call(s, c->slot); /* keep a request posted for the next one */
      grpc_op op;
      memset(&op, 0, sizeof op);
      op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
      op.data.recv_close_on_server.cancelled = &c->cancelled;
      if (grpc_call_start_batch(c->gc, &op, 1, &c->t_close, NULL) != GRPC_CALL_OK) {
        atomic_store(&c->refs, 1);
        srv_call_unref(c);
        break;
      }
      /* while draining, only health answers (NOT_SERVING); the rest is told
       * to go elsewhere */
      if (atomic_load(&s->shutting_down) && c->def && c->def->method != M_HEALTH_CHECK &&
          c->def->method != M_HEALTH_WATCH)
        c->next = srv_unavailable_start;
      else
        c->next = c->def ? srv_call_begin : srv_unknown_start;
      srv_enqueue(c, 1);
      break;
    }
    case TAG_OP:
      atomic_store(&c->in_recv, 0);
      if (c->send) {
        grpc_byte_buffer_destroy(c->send);
        c->send = NULL;
      }
      if (c->next == srv_finish_done || c->inline_next) { /* cheap: no hand-off */
        c->inline_next = 0;
        step_fn f = c->next;
        c->next = NULL;
        f(c, ev.success);
      } else {
        srv_enqueue(c, ev.success);
      }
      break;
    case TAG_CLOSE:
      atomic_store(&c->closed, 1);
      /* a parked call must learn it is gone */
      pthread_mutex_lock(&s->wmu);
      if (c->waiting) {
        waiter_unlink(s, c);
        pthread_mutex_unlock(&s->wmu);
        srv_enqueue(c, 1);
      } else {
        pthread_mutex_unlock(&s->wmu);
      }
      srv_call_unref(c);
      break;
    }
  }
}

/* ----------------------------------------------------------- waiting */

void srv_wait(srv_call *c, int64_t wake_at_ms, step_fn next) {
  cl_server *s = c->srv;
  c->next = next;
  pthread_mutex_lock(&s->wmu);
  if (atomic_load(&c->closed) || atomic_load(&s->shutting_down) ||
      atomic_load(&s->wake_gen) != c->seen_gen) { /* closed, or woken since it looked */
    pthread_mutex_unlock(&s->wmu);
    srv_enqueue(c, 1);
    return;
  }
  c->wake_at_ms = wake_at_ms;
  c->waiting = 1;
  c->wprev = NULL;
  c->wnext = s->waiters;
  if (s->waiters)
    s->waiters->wprev = c;
  s->waiters = c;
  pthread_mutex_unlock(&s->wmu);
}

/* Wakes waiting calls: all of them (log grew, shutdown), or those whose
 * timer passed. Caller holds wmu. */
static void wake_locked(cl_server *s, int all, int64_t now) {
  srv_call *c = s->waiters;
  while (c) {
    srv_call *nx = c->wnext;
    if (all || (c->wake_at_ms && c->wake_at_ms <= now)) {
      waiter_unlink(s, c);
      srv_enqueue(c, 1);
    }
    c = nx;
  }
}

static void on_commit(void *ctx, uint64_t size) {
  (void)size;
  cl_server *s = ctx;
  pthread_mutex_lock(&s->wmu);
  atomic_fetch_add(&s->wake_gen, 1);
  wake_locked(s, 1, 0);
  pthread_mutex_unlock(&s->wmu);
}

static void *ticker_main(void *arg) {
  cl_server *s = arg;
  (void)pthread_setname_np(pthread_self(), "api:ticker");
  pthread_mutex_lock(&s->wmu);
  while (!s->stop_ticker) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 50 * 1000000;
    if (ts.tv_nsec >= 1000000000) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&s->wcv, &s->wmu, &ts);
    wake_locked(s, atomic_load(&s->shutting_down), srv_now_ms());
  }
  pthread_mutex_unlock(&s->wmu);
  return NULL;
}

/* ---------------------------------------------------------- start/stop */

static char *read_pem(const char *path, cl_err *err) {
  FILE *f = fopen(path, "r");
  if (!f) {
    cl_err_set(err, CL_EIO, "%s: %s", path, strerror(errno));
    return NULL;
  }
  char *buf = malloc(1 << 20);
  size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
  fclose(f);
  if (!buf || n == 0) {
    free(buf);
    cl_err_set(err, CL_EIO, "%s: empty or unreadable", path);
    return NULL;
  }
  buf[n] = '\0';
  return buf;
}

int cl_server_is_loopback(const char *listen) {
  char host[256];
  const char *colon = strrchr(listen, ':');
  size_t n = colon ? (size_t)(colon - listen) : strlen(listen);
  if (n >= sizeof host)
    return 0;
  memcpy(host, listen, n);
  host[n] = '\0';
  if (!strcmp(host, "localhost") || !strcmp(host, "[::1]") || !strcmp(host, "::1"))
    return 1;
  struct in_addr a;
  return inet_pton(AF_INET, host, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

static grpc_server_credentials *make_creds(const cl_server_config *c, cl_err *err) {
  if (!c->tls_cert && !c->tls_key) {
    if (!c->dev) {
      cl_err_set(err, CL_EINVAL, "TLS is required (give --tls-cert and --tls-key, or --dev for "
                                 "plaintext on loopback)");
      return NULL;
    }
    if (!cl_server_is_loopback(c->listen)) {
      cl_err_set(err, CL_EINVAL, "plaintext is only allowed on a loopback address, not %s",
                 c->listen);
      return NULL;
    }
    return grpc_insecure_server_credentials_create();
  }
  if (!c->tls_cert || !c->tls_key) {
    cl_err_set(err, CL_EINVAL, "TLS needs both a certificate and a key");
    return NULL;
  }
  if (c->require_client_cert && !c->client_ca) {
    cl_err_set(err, CL_EINVAL, "--require-client-cert needs --client-ca");
    return NULL;
  }
  char *cert = read_pem(c->tls_cert, err), *key = cert ? read_pem(c->tls_key, err) : NULL;
  char *ca = key && c->client_ca ? read_pem(c->client_ca, err) : NULL;
  grpc_server_credentials *cr = NULL;
  if (cert && key && (!c->client_ca || ca)) {
    grpc_ssl_pem_key_cert_pair pair = {key, cert};
    grpc_ssl_client_certificate_request_type req =
        !c->client_ca ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
        : c->require_client_cert ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                 : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY;
    cr = grpc_ssl_server_credentials_create_ex(ca, &pair, 1, req, NULL);
    if (!cr)
      cl_err_set(err, CL_EINVAL, "TLS credentials rejected (check the PEM files)");
  }
  if (key) {
    memset(key, 0, strlen(key));
    free(key);
  }
  free(cert);
  free(ca);
  return cr;
}

static int wait_until(cl_server *s, int64_t deadline_ms, int (*done)(cl_server *));
static int shutdown_done(cl_server *s);

/* Frees what cl_server_start made, in reverse order; safe at any point of
 * a failed start (fields not made yet are NULL or zero). */
static void server_free(cl_server *s) {
  for (size_t i = 0; i < s->nfeeds; i++)
    cl_feed_remove(s->feeds[i], &s->watch[i]);
  if (s->ticker_started) {
    pthread_mutex_lock(&s->wmu);
    s->stop_ticker = 1;
    pthread_cond_broadcast(&s->wcv);
    pthread_mutex_unlock(&s->wmu);
    pthread_join(s->ticker, NULL);
  }
  if (s->cq) {
    grpc_completion_queue_shutdown(s->cq);
    for (int i = 0; i < s->n_cq_started; i++)
      pthread_join(s->cq_threads[i], NULL);
    if (!s->n_cq_started) /* nobody polls it: drain it here */
      while (grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
             GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(s->cq);
  }
  pthread_mutex_lock(&s->qmu);
  s->stop_workers = 1;
  srv_worker *idle = s->idle;
  s->idle = NULL;
  pthread_mutex_unlock(&s->qmu);
  for (srv_worker *w = idle, *nx; w; w = nx) { /* each wakes with no call: it ends */
    nx = w->next_idle;
    sem_post(&w->wake);
  }
  for (int i = 0; i < s->n_workers_started; i++) {
    pthread_join(s->workers[i].thread, NULL);
    sem_destroy(&s->workers[i].wake);
  }
  for (size_t i = 0; i < s->nservices && s->service_ctx; i++)
    if (s->service_ctx[i] && s->services[i].ctx_free)
      s->services[i].ctx_free(s->service_ctx[i]);
  free(s->service_ctx);
  free(s->workers);
  free(s->cq_threads);
  pthread_mutex_destroy(&s->qmu);
  pthread_mutex_destroy(&s->wmu);
  pthread_cond_destroy(&s->wcv);
  pthread_mutex_destroy(&s->smu);
  pthread_cond_destroy(&s->scv);
  pthread_mutex_destroy(&s->lmu);
  free(s);
}

/* The method slots: every method of every service, checked for duplicates. */
static int build_slots(cl_server *s, cl_err *err) {
  for (size_t i = 0; i < s->nservices; i++) {
    const cl_grpc_service *sv = &s->services[i];
    for (size_t j = 0; j < sv->nmethods; j++) {
      const cl_grpc_method_def *d = &sv->methods[j];
      if (d->method < 0 || d->method >= M_COUNT || !d->start)
        return cl_err_set(err, CL_EINVAL, "service %s: method %zu is not valid", sv->name, j);
      for (size_t k = 0; k < s->nmethods; k++)
        if (s->slot_def[k]->method == d->method)
          return cl_err_set(err, CL_EINVAL, "method %s served twice", cl_method_name(d->method));
      if (s->nmethods == SRV_MAX_METHODS)
        return cl_err_set(err, CL_EINVAL, "more than %d methods", SRV_MAX_METHODS);
      s->slot_def[s->nmethods] = d;
      s->slot_service[s->nmethods++] = i;
    }
  }
  return 0;
}

int cl_server_start(const cl_server_config *cfg, cl_svc *svc, const cl_grpc_service *services,
                    size_t nservices, cl_server **out, int *port, cl_err *err) {
  cl_server *s = calloc(1, sizeof *s);
  if (!s)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  s->cfg = *cfg;
  s->svc = svc;
  s->services = services;
  s->nservices = nservices;
  if (s->cfg.cq_threads < 1)
    s->cfg.cq_threads = 1;
  if (s->cfg.workers < 1)
    s->cfg.workers = 1;
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  s->run_max = 2 * (int)(ncpu > 0 ? ncpu : 1);
  if (s->run_max > s->cfg.workers)
    s->run_max = s->cfg.workers;
  pthread_mutex_init(&s->qmu, NULL);
  pthread_mutex_init(&s->wmu, NULL);
  pthread_cond_init(&s->wcv, NULL);
  pthread_mutex_init(&s->smu, NULL);
  pthread_cond_init(&s->scv, NULL);
  pthread_mutex_init(&s->lmu, NULL);
  s->t_shutdown = (srv_tag){NULL, TAG_SHUTDOWN};
  int rc = build_slots(s, err);
  if (rc) {
    server_free(s);
    return rc;
  }
  s->service_ctx = calloc(nservices ? nservices : 1, sizeof *s->service_ctx);
  s->workers = calloc((size_t)s->cfg.workers, sizeof *s->workers);
  s->cq_threads = calloc((size_t)s->cfg.cq_threads, sizeof *s->cq_threads);
  if (!s->service_ctx || !s->workers || !s->cq_threads) {
    server_free(s);
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < nservices; i++)
    if (services[i].ctx_new && !(s->service_ctx[i] = services[i].ctx_new())) {
      server_free(s);
      return cl_err_set(err, CL_ENOMEM, "out of memory (service %s)", services[i].name);
    }

  grpc_server_credentials *creds = make_creds(cfg, err);
  if (!creds) {
    server_free(s);
    return err->code ? err->code : CL_EINVAL;
  }
  grpc_init();
  grpc_arg args[] = {
      {GRPC_ARG_INTEGER, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, {.integer = (int)cfg->max_message_bytes}},
      {GRPC_ARG_INTEGER, GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, {.integer = -1}},
      {GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_TIME_MS, {.integer = cfg->keepalive_time_ms}},
      {GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_TIMEOUT_MS, {.integer = cfg->keepalive_timeout_ms}},
      {GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, {.integer = 1}},
      /* clients may ping as often as this, also without data, so long
       * Subscribe streams behind NATs survive */
      {GRPC_ARG_INTEGER, GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
       {.integer = cfg->min_client_ping_ms}},
      {GRPC_ARG_INTEGER, GRPC_ARG_HTTP2_MAX_PING_STRIKES, {.integer = 0}},
  };
  grpc_channel_args ca = {sizeof args / sizeof args[0], args};
  s->gs = grpc_server_create(&ca, NULL);
  s->cq = grpc_completion_queue_create_for_next(NULL);
  grpc_server_register_completion_queue(s->gs, s->cq, NULL);
  for (size_t k = 0; k < s->nmethods; k++)
    s->registered[k] = grpc_server_register_method(
        s->gs, cl_grpc_method_path[s->slot_def[k]->method], NULL,
        s->slot_def[k]->request ? GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER
                                : GRPC_SRM_PAYLOAD_NONE,
        0);
  int p = grpc_server_add_http2_port(s->gs, cfg->listen, creds);
  grpc_server_credentials_release(creds);
  if (p == 0) {
    grpc_server_destroy(s->gs);
    server_free(s);
    grpc_shutdown();
    return cl_err_set(err, CL_EIO,
                      "cannot listen on %s (address in use or not local, or the TLS certificate "
                      "and key were rejected)", cfg->listen);
  }
  if (port)
    *port = p;
  grpc_server_start(s->gs);
  atomic_store(&s->serving, 1);
  /* parked calls wake when the log or a projection grows */
  cl_feed *feeds[SRV_MAX_FEEDS];
  size_t nf = cl_svc_feeds(svc, feeds, SRV_MAX_FEEDS);
  for (size_t i = 0; i < nf; i++) {
    s->feeds[i] = feeds[i];
    cl_feed_add(feeds[i], &s->watch[i], on_commit, s);
    s->nfeeds++;
  }
  cl_svc_set_blocking(svc, srv_blocking, s);
  for (int i = 0; i < s->cfg.workers && rc == 0; i++) {
    srv_worker *w = &s->workers[i];
    w->s = s;
    if (sem_init(&w->wake, 0, 0) != 0) {
      rc = cl_err_set(err, CL_ENOMEM, "cannot start worker threads");
      break;
    }
    pthread_mutex_lock(&s->qmu);
    s->running++; /* until its first look at the queue */
    pthread_mutex_unlock(&s->qmu);
    if (pthread_create(&w->thread, NULL, worker_main, w) == 0) {
      s->n_workers_started++;
    } else {
      pthread_mutex_lock(&s->qmu);
      s->running--;
      pthread_mutex_unlock(&s->qmu);
      sem_destroy(&w->wake);
      rc = cl_err_set(err, CL_ENOMEM, "cannot start worker threads");
    }
  }
  for (int i = 0; i < s->cfg.cq_threads && rc == 0; i++)
    if (pthread_create(&s->cq_threads[i], NULL, cq_main, s) == 0)
      s->n_cq_started++;
    else
      rc = cl_err_set(err, CL_ENOMEM, "cannot start completion-queue threads");
  if (rc == 0) {
    if (pthread_create(&s->ticker, NULL, ticker_main, s) == 0)
      s->ticker_started = 1;
    else
      rc = cl_err_set(err, CL_ENOMEM, "cannot start the ticker thread");
  }
  if (rc) {
    grpc_server_shutdown_and_notify(s->gs, s->cq, &s->t_shutdown);
    grpc_server_cancel_all_calls(s->gs);
    if (s->n_cq_started)
      wait_until(s, srv_now_ms() + 10000, shutdown_done);
    grpc_server_destroy(s->gs);
    server_free(s);
    grpc_shutdown();
    return rc;
  }
  for (int k = -1; k < (int)s->nmethods; k++)
    for (int r = 0; r < REQUESTS_PER_METHOD; r++)
      request_call(s, k);
  *out = s;
  return 0;
}

static int wait_until(cl_server *s, int64_t deadline_ms, int (*done)(cl_server *)) {
  pthread_mutex_lock(&s->smu);
  while (!done(s)) {
    int64_t left = deadline_ms - srv_now_ms();
    if (left <= 0)
      break;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t step = left < 100 ? left : 100;
    ts.tv_nsec += step * 1000000;
    ts.tv_sec += ts.tv_nsec / 1000000000;
    ts.tv_nsec %= 1000000000;
    pthread_cond_timedwait(&s->scv, &s->smu, &ts);
  }
  int ok = done(s);
  pthread_mutex_unlock(&s->smu);
  return ok;
}

static int shutdown_done(cl_server *s) { return s->shutdown_done; }
static int never(cl_server *s) {
  (void)s;
  return 0;
}
static int no_calls(cl_server *s) { return atomic_load(&s->live_calls) == 0; }
static int none_held(cl_server *s) { return atomic_load(&s->held_calls) == 0; }

void cl_server_stop(cl_server *s) {
  if (!s)
    return;
  atomic_store(&s->serving, 0);
  atomic_store(&s->shutting_down, 1);
  cl_svc_set_draining(s->svc, 1);
  /* wake parked streams: they end with UNAVAILABLE (Watch first reports
   * NOT_SERVING) */
  pthread_mutex_lock(&s->wmu);
  wake_locked(s, 1, 0);
  pthread_mutex_unlock(&s->wmu);
  /* drain: health says NOT_SERVING, new work gets UNAVAILABLE */
  if (s->cfg.drain_ms > 0)
    wait_until(s, srv_now_ms() + s->cfg.drain_ms, never);
  /* a client stream waiting for its next message would hold us until the
   * grace period: end it now (what it sent so far is committed) */
  pthread_mutex_lock(&s->lmu);
  for (srv_call *c = s->live; c; c = c->lnext)
    if (c->def && (c->def->method == M_APPEND_STREAM || c->def->method == M_DEVICE_SUBMIT) &&
        atomic_load(&c->in_recv) && c->gc)
      grpc_call_cancel_with_status(c->gc, GRPC_STATUS_UNAVAILABLE,
                                   "server is shutting down; what was received so far is committed",
                                   NULL);
  pthread_mutex_unlock(&s->lmu);
  grpc_server_shutdown_and_notify(s->gs, s->cq, &s->t_shutdown);
  if (!wait_until(s, srv_now_ms() + s->cfg.shutdown_grace_ms, shutdown_done)) {
    fprintf(stderr, "clinlogd: grace period over, cancelling %d calls\n",
            atomic_load(&s->live_calls));
    grpc_server_cancel_all_calls(s->gs);
    wait_until(s, srv_now_ms() + 60000, shutdown_done);
  }
  wait_until(s, srv_now_ms() + 10000, no_calls);
  /* a call whose work another thread has (srv_hold) comes back to a
   * worker: as the join of a busy worker would, wait for it */
  wait_until(s, INT64_MAX, none_held);
  /* no call is parked any more: nothing to wake after this */
  for (size_t i = 0; i < s->nfeeds; i++)
    cl_feed_remove(s->feeds[i], &s->watch[i]);
  s->nfeeds = 0;
  grpc_server_destroy(s->gs);
  server_free(s);
  grpc_shutdown();
}

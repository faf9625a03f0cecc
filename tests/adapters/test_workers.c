/* The gRPC engine's workers (adapters/grpc/server.c): at most two a CPU run
 * calls at once, and a further call waits in the queue for the next one to
 * finish its step (a thread woken a call costs more than the queue); but a
 * worker waiting for another thread inside the request layer's brackets
 * (cl_svc_set_blocking, srv_block: a commit, a forwarded write, a
 * membership change) does not count, so calls behind it still run. A test
 * service's GetEvent holds its worker at a gate, with or without the
 * brackets, while Health.Check is asked. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "adapters/grpc/client.h"
#include "adapters/grpc/server_int.h"
#include "adapters/grpc/services.h"
#include "clinlog/v1/query.pb-c.h"
#include "tests/support/testutil.h"

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int open;      /* the gate */
  int in;        /* calls at the gate now */
  int bracketed; /* the held calls wait inside srv_block's brackets */
} G = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};

static void hold_at_gate(srv_call *c, int ok) {
  (void)ok;
  int bracketed = G.bracketed;
  if (bracketed)
    srv_block(c->srv, 1);
  pthread_mutex_lock(&G.mu);
  G.in++;
  pthread_cond_broadcast(&G.cv);
  while (!G.open)
    pthread_cond_wait(&G.cv, &G.mu);
  G.in--;
  pthread_mutex_unlock(&G.mu);
  if (bracketed)
    srv_block(c->srv, 0);
  Clinlog__V1__GetEventRequest empty = CLINLOG__V1__GET_EVENT_REQUEST__INIT;
  srv_finish(c, GRPC_STATUS_OK, "", &empty.base);
}

static const cl_grpc_method_def GATE_METHODS[] = {
    {M_GET_EVENT, &clinlog__v1__get_event_request__descriptor, hold_at_gate},
};
static const cl_grpc_service GATE_SERVICE = {"clinlog.v1.Log", GATE_METHODS, 1, NULL, NULL};

static struct {
  char *dir;
  cl_signer admin;
  cl_log *log;
  cl_svc *svc;
  cl_server *srv;
  cl_client *c;
  int run_max;
} W;

static void setup(void) {
  W.log = cl_test_log_new("workers", &W.dir, &W.admin, 0);
  cr_assert_not_null(W.log);
  cl_svc_options so = {.log = W.log};
  cl_err err;
  cr_assert_eq(cl_svc_new(&so, &W.svc, &err), 0, "%s", err.msg);
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  W.run_max = 2 * (int)(ncpu > 0 ? ncpu : 1); /* as server.c: two a CPU */
  cl_server_config cfg;
  cl_server_config_init(&cfg);
  cfg.dev = 1;
  cfg.listen = "127.0.0.1:0";
  cfg.workers = W.run_max + 4; /* idle workers are there: only the limit holds calls back */
  cfg.drain_ms = 0;
  static cl_grpc_service table[2];
  table[0] = GATE_SERVICE;
  table[1] = cl_grpc_health_service;
  int port;
  cr_assert_eq(cl_server_start(&cfg, W.svc, table, 2, &W.srv, &port, &err), 0, "%s", err.msg);
  char target[64];
  snprintf(target, sizeof target, "127.0.0.1:%d", port);
  cl_client_options co;
  cl_client_options_init(&co);
  co.target = target;
  co.plaintext = 1;
  cr_assert_eq(cl_client_open(&co, &W.c, &err), 0, "%s", err.msg);
}

static void open_gate(int open) {
  pthread_mutex_lock(&G.mu);
  G.open = open;
  pthread_cond_broadcast(&G.cv);
  pthread_mutex_unlock(&G.mu);
}

static void teardown(void) {
  open_gate(1);
  cl_client_close(W.c);
  cl_server_stop(W.srv);
  cl_svc_free(W.svc);
  cl_log_close(W.log);
  cl_signer_free(&W.admin);
  cl_test_rmtree(W.dir);
  free(W.dir);
}

TestSuite(workers, .init = setup, .fini = teardown, .timeout = 60);

/* One GetEvent (held at the gate); its status code. */
static void *held_call(void *arg) {
  int *code = arg;
  Clinlog__V1__GetEventRequest req = CLINLOG__V1__GET_EVENT_REQUEST__INIT;
  ProtobufCMessage *resp = NULL;
  cl_client_status st;
  cl_err err;
  if (cl_client_unary_md(W.c, cl_grpc_method_path[M_GET_EVENT], &req.base,
                         &clinlog__v1__get_event_request__descriptor, 20000, NULL, NULL, NULL, 0,
                         &resp, &st, &err) == 0)
    protobuf_c_message_free_unpacked(resp, NULL);
  *code = st.code;
  return NULL;
}

/* Health.Check with a deadline of ms; its status code. */
static int health(int ms) {
  Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  ProtobufCMessage *resp = NULL;
  cl_client_status st;
  cl_err err;
  if (cl_client_unary_md(W.c, cl_grpc_method_path[M_HEALTH_CHECK], &req.base,
                         &grpc__health__v1__health_check_response__descriptor, ms, NULL, NULL, NULL,
                         0, &resp, &st, &err) == 0)
    protobuf_c_message_free_unpacked(resp, NULL);
  return st.code;
}

/* Waits until `n` calls are at the gate (5 s at most); returns how many are. */
static int at_gate(int n) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 5;
  pthread_mutex_lock(&G.mu);
  while (G.in < n && pthread_cond_timedwait(&G.cv, &G.mu, &until) == 0)
    ;
  int in = G.in;
  pthread_mutex_unlock(&G.mu);
  return in;
}

/* The held calls: threads and their status codes. */
static pthread_t T[256];
static int CODES[256];

/* The gate closed, then run_max + 1 held calls (bracketed or not), each on
 * its own thread; returns how many. */
static int hold(int bracketed) {
  int k = W.run_max + 1;
  cr_assert_leq(k, 256);
  G.bracketed = bracketed;
  open_gate(0);
  for (int i = 0; i < k; i++)
    cr_assert_eq(pthread_create(&T[i], NULL, held_call, &CODES[i]), 0);
  return k;
}

/* The gate opened: each of the k held calls answers OK. */
static void release(int k) {
  open_gate(1);
  for (int i = 0; i < k; i++) {
    pthread_join(T[i], NULL);
    cr_assert_eq(CODES[i], CL_GRPC_OK, "held call %d: status %d", i, CODES[i]);
  }
}

Test(workers, calls_waiting_inside_the_brackets_leave_the_workers_to_others) {
  int k = hold(1);
  /* all of them run at once, more than the limit: none counts */
  cr_assert_eq(at_gate(k), k, "only %d of %d bracketed calls got a worker", at_gate(0), k);
  cr_assert_eq(health(5000), CL_GRPC_OK, "a call behind the waiting ones got no worker");
  release(k);
}

Test(workers, calls_beyond_the_limit_wait_for_a_running_one) {
  int k = hold(0);
  cr_assert_eq(at_gate(W.run_max), W.run_max);
  struct timespec ts = {0, 300 * 1000000L};
  nanosleep(&ts, NULL);
  /* the last one (and a health check) wait in the queue, idle workers or not */
  cr_assert_eq(at_gate(0), W.run_max, "more calls ran than two a CPU");
  cr_assert_eq(health(300), CL_GRPC_DEADLINE_EXCEEDED);
  release(k);
  cr_assert_eq(health(5000), CL_GRPC_OK);
}

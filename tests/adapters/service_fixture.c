/* The request-layer tests' fixture (service_fixture.h). */
#include "tests/adapters/service_fixture.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clinlog/v1/auth.pb-c.h"
#include "query/audit/view.h"
#include "query/auth/principals.h"
#include "query/fhir/fhir.h"
#include "query/streams/streams.h"
#include "store/event.h"
#include "tests/support/testutil.h"

/* ------------------------------------------------------------- hooks */

svct_rec svct_R;

static int h_authorize(void *ctx, const cl_req_ctx *rc, const ProtobufCMessage *req, cl_err *err) {
  svct_rec *r = ctx;
  pthread_mutex_lock(&r->mu);
  r->authorized[rc->method]++;
  r->last[rc->method] = *rc;
  if (rc->method == M_AUTH_LOGIN && req) {
    const Clinlog__V1__LoginRequest *l = (const Clinlog__V1__LoginRequest *)req;
    snprintf(r->login_seen, sizeof r->login_seen, "%s/%s/%s", l->principal_id, l->password,
             l->totp_code);
  }
  if (rc->method == M_AUTH_TOKEN && req) {
    const Clinlog__V1__TokenRequest *t = (const Clinlog__V1__TokenRequest *)req;
    snprintf(r->token_seen, sizeof r->token_seen, "%s/%s/%s", t->grant_type, t->client_assertion,
             t->scope);
  }
  int deny = r->deny[rc->method];
  pthread_mutex_unlock(&r->mu);
  /* requests arrive decoded, except for the client-streaming AppendStream
   * and SubmitReadings */
  if ((req == NULL) != (rc->method == M_APPEND_STREAM || rc->method == M_DEVICE_SUBMIT))
    return cl_err_set(err, CL_EINVAL, "request missing or unexpected");
  return deny
             ? cl_err_set(err, CL_EDENIED, "the test policy refuses %s", cl_method_name(rc->method))
             : 0;
}

static int h_audit(void *ctx, const cl_req_ctx *rc, const ProtobufCMessage *req, cl_err *err) {
  (void)req;
  svct_rec *r = ctx;
  pthread_mutex_lock(&r->mu);
  if (r->audited[rc->method] >= r->authorized[rc->method])
    r->order_ok = 0;
  r->audited[rc->method]++;
  int fail = r->audit_fails;
  pthread_mutex_unlock(&r->mu);
  return fail ? cl_err_set(err, CL_EIO, "audit store unreachable") : 0;
}

static void h_finished(void *ctx, const cl_req_ctx *rc, int code, const char *detail) {
  (void)detail;
  svct_rec *r = ctx;
  pthread_mutex_lock(&r->mu);
  r->finished[rc->method]++;
  r->finished_code[rc->method] = code;
  pthread_mutex_unlock(&r->mu);
}

static void rec_reset(void) {
  pthread_mutex_lock(&svct_R.mu);
  memset(svct_R.authorized, 0, sizeof svct_R.authorized);
  memset(svct_R.audited, 0, sizeof svct_R.audited);
  memset(svct_R.finished, 0, sizeof svct_R.finished);
  memset(svct_R.deny, 0, sizeof svct_R.deny);
  svct_R.audit_fails = 0;
  svct_R.order_ok = 1;
  pthread_mutex_unlock(&svct_R.mu);
}

int svct_count(int *a, int m) {
  pthread_mutex_lock(&svct_R.mu);
  int v = a[m];
  pthread_mutex_unlock(&svct_R.mu);
  return v;
}

/* ------------------------------------------------------------ fixture */

struct svct_fixture svct_F;

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

void svct_setup(void) {
  pthread_mutex_init(&svct_R.mu, NULL);
  rec_reset();
  cl_log *l = cl_test_log_new("svc", &svct_F.dir, &svct_F.admin, 100);
  cl_log_close(l);
  cl_log_options o;
  cl_log_options_init(&o);
  o.dir = svct_F.dir;
  o.sync = 0; /* as clinlogd: the Raft log is the WAL */
  cl_err err;
  cr_assert_eq(cl_log_open(&o, &svct_F.log, &err), 0, "%s", err.msg);

  snprintf(svct_F.raft_addr, sizeof svct_F.raft_addr, "127.0.0.1:%d", cl_test_free_port());
  snprintf(svct_F.raft_dir, sizeof svct_F.raft_dir, "%s/raft", svct_F.dir);
  cl_server_config_init(&svct_F.cfg);
  svct_F.cfg.dev = 1;
  svct_F.cfg.listen = "127.0.0.1:0";
  svct_F.cfg.workers = 8;
  svct_F.cfg.drain_ms = 0;
  cl_repl_options ro;
  cl_repl_options_init(&ro);
  ro.log = svct_F.log;
  ro.id = 1;
  ro.dir = svct_F.raft_dir;
  ro.raft_address = svct_F.raft_addr;
  ro.api_address = "127.0.0.1:1"; /* never called: one node */
  ro.bootstrap = 1;
  ro.fetch = cl_grpc_catchup;
  svct_F.peer.plaintext = 1;
  ro.fetch_ctx = &svct_F.peer;
  cr_assert_eq(cl_repl_start(&ro, &svct_F.repl, &err), 0, "%s", err.msg);

  cl_svc_options so = {.log = svct_F.log,
                       .repl = svct_F.repl,
                       .forward = cl_grpc_forward,
                       .forward_ctx = &svct_F.peer,
                       .hooks = {h_authorize, h_audit, h_finished, &svct_R}};
  cr_assert_eq(cl_svc_new(&so, &svct_F.svc, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_svc_add_projection(svct_F.svc, &cl_streams_projection, NULL, &err), 0, "%s",
               err.msg);
  cr_assert_eq(cl_svc_add_projection(svct_F.svc, &cl_fhir_projection, NULL, &err), 0, "%s",
               err.msg);
  cr_assert_eq(cl_svc_add_projection(svct_F.svc, &cl_auth_projection, NULL, &err), 0, "%s",
               err.msg);
  cr_assert_eq(cl_svc_add_projection(svct_F.svc, &cl_audit_view_projection, NULL, &err), 0, "%s",
               err.msg);
  cl_authn_options ao;
  cl_authn_options_init(&ao);
  cr_assert_eq(cl_svc_enable_auth(svct_F.svc, &ao, 0, &err), 0, "%s", err.msg);
  cl_svc_audit_options auo = {.node_id = 1, .server_address = "127.0.0.1:7525"};
  cr_assert_eq(cl_svc_enable_audit(svct_F.svc, &auo, &err), 0, "%s", err.msg);
  char xdir[4200];
  snprintf(xdir, sizeof xdir, "%s/exports", svct_F.dir);
  cr_assert_eq(cl_svc_open_exports(svct_F.svc, xdir, NULL, &err), 0, "%s", err.msg);
  cl_grpc_service services[] = {cl_grpc_log_service,         cl_grpc_health_service,
                                cl_grpc_cluster_service,     cl_grpc_streams_service,
                                cl_grpc_projections_service, cl_grpc_fhir_service,
                                cl_grpc_auth_service,        cl_grpc_audit_service,
                                cl_grpc_cds_service,         cl_grpc_devices_service};
  static cl_grpc_service table[10];
  memcpy(table, services, sizeof table);
  int port;
  cr_assert_eq(cl_server_start(&svct_F.cfg, svct_F.svc, table, 10, &svct_F.srv, &port, &err), 0,
               "%s", err.msg);
  snprintf(svct_F.target, sizeof svct_F.target, "127.0.0.1:%d", port);
  cl_client_options co;
  cl_client_options_init(&co);
  co.target = svct_F.target;
  co.plaintext = 1;
  co.md_key = "x-request-id";
  co.md_value = "req-test-42";
  cr_assert_eq(cl_client_open(&co, &svct_F.c, &err), 0, "%s", err.msg);
  /* wait for the node to lead its one-node cluster */
  for (int i = 0; i < 200 && !cl_svc_leader(svct_F.svc, NULL); i++)
    sleep_ms(20);
  cr_assert(cl_svc_leader(svct_F.svc, NULL), "the node did not become leader");
}

void svct_teardown(void) {
  cl_client_close(svct_F.c);
  cl_server_stop(svct_F.srv);
  cl_repl_stop(svct_F.repl);
  cl_svc_free(svct_F.svc);
  cl_grpc_forward_close();
  cl_log_close(svct_F.log);
  cl_signer_free(&svct_F.admin);
  cl_test_rmtree(svct_F.dir);
  free(svct_F.dir);
}

/* ------------------------------------------------------------ calls */

void svct_batch_make(svct_batch *x, const char *stream) {
  memset(x, 0, sizeof *x);
  clinlog__v1__append_batch__init(&x->b);
  x->ev.data = cl_test_event(stream, "admin", NULL, NULL, &x->ev.len);
  uint8_t h[32];
  cl_event_hash(x->ev.data, x->ev.len, h);
  cl_sign_event(&svct_F.admin, h, x->raw);
  clinlog__v1__signature__init(&x->sig);
  x->sig.key_id = (ProtobufCBinaryData){32, svct_F.admin.pk};
  x->sig.signature = (ProtobufCBinaryData){64, x->raw};
  x->sp = &x->sig;
  x->b.n_events = 1;
  x->b.events = &x->ev;
  x->b.n_signatures = 1;
  x->b.signatures = &x->sp;
}

void svct_batch_free(svct_batch *x) { free(x->ev.data); }

/* Appends one event; returns its seq (asserts success). */
uint64_t svct_append_one(const char *stream) {
  svct_batch x;
  svct_batch_make(&x, stream);
  Clinlog__V1__AppendResponse *resp;
  cl_err err;
  cr_assert_eq(cl_client_append(svct_F.c, &x.b, &resp, NULL, &err), 0, "%s", err.msg);
  uint64_t seq = resp->positions[0]->seq;
  clinlog__v1__append_response__free_unpacked(resp, NULL);
  svct_batch_free(&x);
  return seq;
}

/* Runs a unary call by path; returns the client's result code. */
int svct_unary(int m, const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_d,
               ProtobufCMessage **out, cl_client_status *st) {
  cl_err err;
  ProtobufCMessage *o = NULL;
  int rc = cl_client_unary(svct_F.c, cl_grpc_method_path[m], req, resp_d, &o, st, &err);
  if (out)
    *out = o;
  else if (o)
    protobuf_c_message_free_unpacked(o, NULL);
  return rc;
}

/* Drains a server stream; returns how it ended. */
int svct_drain(cl_client_stream *s, int max) {
  cl_err err;
  ProtobufCMessage *m;
  int rc, n = 0;
  while ((rc = cl_client_stream_next(s, &m, &err)) == 1) {
    protobuf_c_message_free_unpacked(m, NULL);
    if (++n == max) {
      cl_client_stream_cancel(s);
      rc = 0;
      break;
    }
  }
  cl_client_stream_free(s);
  return rc;
}

void svct_wait_finished(int m, int n) {
  for (int i = 0; i < 200 && svct_count(svct_R.finished, m) < n; i++)
    sleep_ms(10);
}

/* One HTTP/1.1 GET on loopback; returns the status. */
int svct_http_get(int port, const char *path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  char req[512], resp[4096];
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: req-http-7\r\n"
                   "Connection: close\r\n\r\n",
                   path);
  cr_assert_eq(write(fd, req, (size_t)n), n);
  ssize_t got = read(fd, resp, sizeof resp - 1);
  close(fd);
  cr_assert_gt(got, 12);
  resp[got] = '\0';
  return atoi(resp + 9);
}

/* The FHIR REST face over the fixture's service, plaintext on loopback. */
cl_http *svct_http_start(int *port) {
  cl_http_config hc;
  cl_http_config_init(&hc);
  hc.listen = "127.0.0.1:0";
  hc.dev = 1;
  cl_http *h;
  cl_err err;
  cr_assert_eq(cl_http_start(&hc, svct_F.svc, &h, port, &err), 0, "%s", err.msg);
  return h;
}

/* The request layer (adapters/service) under the real gRPC server, in
 * process: a one-node Raft cluster, the service with recording hooks, the
 * engine with clinlogd's services, and the C client. Every method passes
 * the authorization and audit hooks before its handler (the cluster-admin
 * methods included); a refusal or a failed audit stops the call before any
 * data moves; the request context carries what the transport knows; reads
 * of a projection wait for read-your-writes on its progress feed. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "adapters/grpc/client.h"
#include "adapters/grpc/grpcutil.h"
#include "adapters/grpc/services.h"
#include "adapters/http/http.h"
#include "adapters/service/service.h"
#include "clinlog/v1/audit.pb-c.h"
#include "clinlog/v1/auth.pb-c.h"
#include "clinlog/v1/device.pb-c.h"
#include "clinlog/v1/fhir.pb-c.h"
#include "clinlog/v1/query.pb-c.h"
#include "query/audit/view.h"
#include "query/auth/principals.h"
#include "query/fhir/fhir.h"
#include "query/streams/streams.h"
#include "store/event.h"
#include "tests/support/testutil.h"

/* ------------------------------------------------------------- hooks */

typedef struct rec {
  pthread_mutex_t mu;
  int authorized[M_COUNT], audited[M_COUNT], finished[M_COUNT];
  int finished_code[M_COUNT];
  int deny[M_COUNT];
  int audit_fails;
  cl_req_ctx last[M_COUNT];
  int order_ok;         /* every audit came after its authorization */
  char login_seen[256]; /* principal/password/code of the Login request the hooks got */
  char token_seen[256]; /* grant/assertion/scope of the Token request the hooks got */
} rec;

static rec R;

static int h_authorize(void *ctx, const cl_req_ctx *rc, const ProtobufCMessage *req, cl_err *err) {
  rec *r = ctx;
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
  rec *r = ctx;
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
  rec *r = ctx;
  pthread_mutex_lock(&r->mu);
  r->finished[rc->method]++;
  r->finished_code[rc->method] = code;
  pthread_mutex_unlock(&r->mu);
}

static void rec_reset(void) {
  pthread_mutex_lock(&R.mu);
  memset(R.authorized, 0, sizeof R.authorized);
  memset(R.audited, 0, sizeof R.audited);
  memset(R.finished, 0, sizeof R.finished);
  memset(R.deny, 0, sizeof R.deny);
  R.audit_fails = 0;
  R.order_ok = 1;
  pthread_mutex_unlock(&R.mu);
}

static int count(int *a, int m) {
  pthread_mutex_lock(&R.mu);
  int v = a[m];
  pthread_mutex_unlock(&R.mu);
  return v;
}

/* ------------------------------------------------------------ fixture */

static struct {
  char *dir;
  cl_signer admin;
  cl_log *log;
  cl_repl *repl;
  cl_svc *svc;
  cl_server *srv;
  cl_server_config cfg;
  cl_grpc_peer_config peer;
  char target[64];
  char raft_addr[64], raft_dir[4096];
  cl_client *c;
} F;

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t l = sizeof a;
  cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &l), 0);
  int port = ntohs(a.sin_port);
  close(fd);
  return port;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void setup(void) {
  pthread_mutex_init(&R.mu, NULL);
  rec_reset();
  cl_log *l = cl_test_log_new("svc", &F.dir, &F.admin, 100);
  cl_log_close(l);
  cl_log_options o;
  cl_log_options_init(&o);
  o.dir = F.dir;
  o.sync = 0; /* as clinlogd: the Raft log is the WAL */
  cl_err err;
  cr_assert_eq(cl_log_open(&o, &F.log, &err), 0, "%s", err.msg);

  snprintf(F.raft_addr, sizeof F.raft_addr, "127.0.0.1:%d", free_port());
  snprintf(F.raft_dir, sizeof F.raft_dir, "%s/raft", F.dir);
  cl_server_config_init(&F.cfg);
  F.cfg.dev = 1;
  F.cfg.listen = "127.0.0.1:0";
  F.cfg.workers = 8;
  F.cfg.drain_ms = 0;
  cl_repl_options ro;
  cl_repl_options_init(&ro);
  ro.log = F.log;
  ro.id = 1;
  ro.dir = F.raft_dir;
  ro.raft_address = F.raft_addr;
  ro.api_address = "127.0.0.1:1"; /* never called: one node */
  ro.bootstrap = 1;
  ro.fetch = cl_grpc_catchup;
  F.peer.plaintext = 1;
  ro.fetch_ctx = &F.peer;
  cr_assert_eq(cl_repl_start(&ro, &F.repl, &err), 0, "%s", err.msg);

  cl_svc_options so = {.log = F.log,
                       .repl = F.repl,
                       .forward = cl_grpc_forward,
                       .forward_ctx = &F.peer,
                       .hooks = {h_authorize, h_audit, h_finished, &R}};
  cr_assert_eq(cl_svc_new(&so, &F.svc, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_svc_add_projection(F.svc, &cl_streams_projection, NULL, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_svc_add_projection(F.svc, &cl_fhir_projection, NULL, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_svc_add_projection(F.svc, &cl_auth_projection, NULL, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_svc_add_projection(F.svc, &cl_audit_view_projection, NULL, &err), 0, "%s",
               err.msg);
  cl_authn_options ao;
  cl_authn_options_init(&ao);
  cr_assert_eq(cl_svc_enable_auth(F.svc, &ao, 0, &err), 0, "%s", err.msg);
  cl_svc_audit_options auo = {.node_id = 1, .server_address = "127.0.0.1:7525"};
  cr_assert_eq(cl_svc_enable_audit(F.svc, &auo, &err), 0, "%s", err.msg);
  char xdir[4200];
  snprintf(xdir, sizeof xdir, "%s/exports", F.dir);
  cr_assert_eq(cl_svc_open_exports(F.svc, xdir, NULL, &err), 0, "%s", err.msg);
  cl_grpc_service services[] = {
      cl_grpc_log_service,     cl_grpc_health_service,      cl_grpc_cluster_service,
      cl_grpc_streams_service, cl_grpc_projections_service, cl_grpc_fhir_service,
      cl_grpc_auth_service,    cl_grpc_audit_service,       cl_grpc_cds_service,
      cl_grpc_devices_service};
  static cl_grpc_service table[10];
  memcpy(table, services, sizeof table);
  int port;
  cr_assert_eq(cl_server_start(&F.cfg, F.svc, table, 10, &F.srv, &port, &err), 0, "%s", err.msg);
  snprintf(F.target, sizeof F.target, "127.0.0.1:%d", port);
  cl_client_options co;
  cl_client_options_init(&co);
  co.target = F.target;
  co.plaintext = 1;
  co.md_key = "x-request-id";
  co.md_value = "req-test-42";
  cr_assert_eq(cl_client_open(&co, &F.c, &err), 0, "%s", err.msg);
  /* wait for the node to lead its one-node cluster */
  for (int i = 0; i < 200 && !cl_svc_leader(F.svc, NULL); i++)
    sleep_ms(20);
  cr_assert(cl_svc_leader(F.svc, NULL), "the node did not become leader");
}

static void teardown(void) {
  cl_client_close(F.c);
  cl_server_stop(F.srv);
  cl_repl_stop(F.repl);
  cl_svc_free(F.svc);
  cl_grpc_forward_close();
  cl_log_close(F.log);
  cl_signer_free(&F.admin);
  cl_test_rmtree(F.dir);
  free(F.dir);
}

TestSuite(service, .init = setup, .fini = teardown, .timeout = 120);

/* ------------------------------------------------------------ calls */

/* A signed one-event batch for `stream`. Free with batch_free. */
typedef struct batch {
  Clinlog__V1__AppendBatch b;
  ProtobufCBinaryData ev;
  Clinlog__V1__Signature sig, *sp;
  uint8_t raw[64];
} batch;

static void batch_make(batch *x, const char *stream) {
  memset(x, 0, sizeof *x);
  clinlog__v1__append_batch__init(&x->b);
  x->ev.data = cl_test_event(stream, "admin", NULL, NULL, &x->ev.len);
  uint8_t h[32];
  cl_event_hash(x->ev.data, x->ev.len, h);
  cl_sign_event(&F.admin, h, x->raw);
  clinlog__v1__signature__init(&x->sig);
  x->sig.key_id = (ProtobufCBinaryData){32, F.admin.pk};
  x->sig.signature = (ProtobufCBinaryData){64, x->raw};
  x->sp = &x->sig;
  x->b.n_events = 1;
  x->b.events = &x->ev;
  x->b.n_signatures = 1;
  x->b.signatures = &x->sp;
}

static void batch_free(batch *x) { free(x->ev.data); }

/* Appends one event; returns its seq (asserts success). */
static uint64_t append_one(const char *stream) {
  batch x;
  batch_make(&x, stream);
  Clinlog__V1__AppendResponse *resp;
  cl_err err;
  cr_assert_eq(cl_client_append(F.c, &x.b, &resp, NULL, &err), 0, "%s", err.msg);
  uint64_t seq = resp->positions[0]->seq;
  clinlog__v1__append_response__free_unpacked(resp, NULL);
  batch_free(&x);
  return seq;
}

/* Runs a unary call by path; returns the client's result code. */
static int unary(int m, const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_d,
                 ProtobufCMessage **out, cl_client_status *st) {
  cl_err err;
  ProtobufCMessage *o = NULL;
  int rc = cl_client_unary(F.c, cl_grpc_method_path[m], req, resp_d, &o, st, &err);
  if (out)
    *out = o;
  else if (o)
    protobuf_c_message_free_unpacked(o, NULL);
  return rc;
}

/* Drains a server stream; returns how it ended. */
static int drain(cl_client_stream *s, int max) {
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

static void wait_finished(int m, int n) {
  for (int i = 0; i < 200 && count(R.finished, m) < n; i++)
    sleep_ms(10);
}

Test(service, every_method_passes_the_hooks_before_its_handler) {
  cl_err err;
  /* the membership calls would change the cluster: the policy refuses
   * them, which still shows the hooks run for them first */
  R.deny[M_ADD_NODE] = R.deny[M_REMOVE_NODE] = R.deny[M_TRANSFER_LEADERSHIP] = 1;
  R.deny[M_ROTATE_LOG_KEY] = 1;
  uint64_t seq = append_one("patient-hooks");

  cl_client_append_stream *as;
  cr_assert_eq(cl_client_append_stream_open(F.c, &as, &err), 0);
  batch x;
  batch_make(&x, "patient-hooks");
  cr_assert_eq(cl_client_append_stream_send(as, &x.b, &err), 0, "%s", err.msg);
  Clinlog__V1__AppendStreamSummary *sum;
  cr_assert_eq(cl_client_append_stream_finish(as, &sum, NULL, &err), 0, "%s", err.msg);
  clinlog__v1__append_stream_summary__free_unpacked(sum, NULL);
  batch_free(&x);

  /* device readings need an authenticated device or gateway: the hooks
   * still run, and the call ends unauthenticated */
  cl_client_cstream *ds;
  cr_assert_eq(cl_client_cstream_open(F.c, M_DEVICE_SUBMIT, &ds, &err), 0);
  Clinlog__V1__DeviceReadingBatch drb = CLINLOG__V1__DEVICE_READING_BATCH__INIT;
  char *reading = "{}";
  drb.n_readings = 1;
  drb.readings = &reading;
  int drc = cl_client_cstream_send(ds, &drb.base, &err);
  cr_assert(drc == 0 || drc == CL_EUNAUTH, "%s", err.msg);
  cr_assert_eq(cl_client_cstream_finish(ds, &clinlog__v1__device_reading_summary__descriptor, NULL,
                                        NULL, &err),
               CL_EUNAUTH, "%s", err.msg);

  Clinlog__V1__ReadRequest rr = CLINLOG__V1__READ_REQUEST__INIT;
  cl_client_stream *s;
  cr_assert_eq(cl_client_read(F.c, &rr, &s, &err), 0);
  cr_assert_eq(drain(s, 0), 0);
  Clinlog__V1__SubscribeRequest sr = CLINLOG__V1__SUBSCRIBE_REQUEST__INIT;
  cr_assert_eq(cl_client_subscribe(F.c, &sr, &s, &err), 0);
  drain(s, 2);
  Clinlog__V1__GetCheckpointRequest gc = CLINLOG__V1__GET_CHECKPOINT_REQUEST__INIT;
  gc.fresh = 1;
  cr_assert_eq(unary(M_GET_CHECKPOINT, &gc.base, &clinlog__v1__checkpoint__descriptor, NULL, NULL),
               0);
  Clinlog__V1__ProveInclusionRequest pi = CLINLOG__V1__PROVE_INCLUSION_REQUEST__INIT;
  pi.seq = seq;
  cr_assert_eq(
      unary(M_PROVE_INCLUSION, &pi.base, &clinlog__v1__inclusion_proof__descriptor, NULL, NULL), 0);
  Clinlog__V1__ProveConsistencyRequest pc = CLINLOG__V1__PROVE_CONSISTENCY_REQUEST__INIT;
  pc.old_size = 1;
  cr_assert_eq(
      unary(M_PROVE_CONSISTENCY, &pc.base, &clinlog__v1__consistency_proof__descriptor, NULL, NULL),
      0);
  Clinlog__V1__GetEventRequest ge = CLINLOG__V1__GET_EVENT_REQUEST__INIT;
  uint8_t unknown[16] = {1};
  ge.event_id = (ProtobufCBinaryData){16, unknown};
  cr_assert_eq(unary(M_GET_EVENT, &ge.base, &clinlog__v1__recorded_event__descriptor, NULL, NULL),
               CL_ENOTFOUND);
  Grpc__Health__V1__HealthCheckRequest hc = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  cr_assert_eq(unary(M_HEALTH_CHECK, &hc.base, &grpc__health__v1__health_check_response__descriptor,
                     NULL, NULL),
               0);
  cr_assert_eq(cl_client_health_watch(F.c, &hc, &s, &err), 0);
  drain(s, 1);
  Clinlog__V1__ClusterStatusRequest cs = CLINLOG__V1__CLUSTER_STATUS_REQUEST__INIT;
  Clinlog__V1__ClusterStatus *status;
  cr_assert_eq(unary(M_CLUSTER_STATUS, &cs.base, &clinlog__v1__cluster_status__descriptor,
                     (ProtobufCMessage **)&status, NULL),
               0);
  cr_assert_eq(status->n_nodes, 1);
  clinlog__v1__cluster_status__free_unpacked(status, NULL);
  Clinlog__V1__AddNodeRequest an = CLINLOG__V1__ADD_NODE_REQUEST__INIT;
  an.id = 9;
  an.raft_address = "127.0.0.1:9";
  an.api_address = "127.0.0.1:10";
  cl_client_status st;
  cr_assert_eq(unary(M_ADD_NODE, &an.base, &clinlog__v1__cluster_status__descriptor, NULL, &st),
               CL_EDENIED);
  cr_assert_eq(st.code, CL_GRPC_PERMISSION_DENIED);
  cr_assert(strstr(st.details, "the test policy refuses clinlog.v1.Cluster/AddNode"), "%s",
            st.details);
  Clinlog__V1__RemoveNodeRequest rn = CLINLOG__V1__REMOVE_NODE_REQUEST__INIT;
  rn.id = 1;
  cr_assert_eq(unary(M_REMOVE_NODE, &rn.base, &clinlog__v1__cluster_status__descriptor, NULL, NULL),
               CL_EDENIED);
  Clinlog__V1__TransferLeadershipRequest tl = CLINLOG__V1__TRANSFER_LEADERSHIP_REQUEST__INIT;
  cr_assert_eq(
      unary(M_TRANSFER_LEADERSHIP, &tl.base, &clinlog__v1__cluster_status__descriptor, NULL, NULL),
      CL_EDENIED);
  /* the log key rotation: refused by the hooks before its handler (nothing
   * committed); a node's log key status answers */
  Clinlog__V1__RotateLogKeyRequest rk = CLINLOG__V1__ROTATE_LOG_KEY_REQUEST__INIT;
  cr_assert_eq(unary(M_ROTATE_LOG_KEY, &rk.base, &clinlog__v1__rotate_log_key_response__descriptor,
                     NULL, &st),
               CL_EDENIED);
  cr_assert_eq(st.code, CL_GRPC_PERMISSION_DENIED);
  cr_assert(strstr(st.details, "the test policy refuses clinlog.v1.Cluster/RotateLogKey"), "%s",
            st.details);
  Clinlog__V1__LogKeyStatusRequest lks = CLINLOG__V1__LOG_KEY_STATUS_REQUEST__INIT;
  Clinlog__V1__NodeLogKey *nlk;
  cr_assert_eq(unary(M_LOG_KEY_STATUS, &lks.base, &clinlog__v1__node_log_key__descriptor,
                     (ProtobufCMessage **)&nlk, NULL),
               0);
  cr_assert_eq(nlk->log_key.len, 32);
  cr_assert_eq(nlk->staged_key.len, 0);
  cr_assert_str_eq(nlk->error, "");
  clinlog__v1__node_log_key__free_unpacked(nlk, NULL);
  Clinlog__V1__FetchRecordsRequest fr = CLINLOG__V1__FETCH_RECORDS_REQUEST__INIT;
  fr.from_seq = 1;
  fr.to_seq = seq;
  cr_assert_eq(cl_client_fetch_records(F.c, &fr, &s, &err), 0);
  cr_assert_eq(drain(s, 0), 0);
  Clinlog__V1__GetStreamRequest gs = CLINLOG__V1__GET_STREAM_REQUEST__INIT;
  Clinlog__V1__Consistency cons = CLINLOG__V1__CONSISTENCY__INIT;
  cons.min_sequence = seq + 1;
  gs.stream = "patient-hooks";
  gs.consistency = &cons;
  Clinlog__V1__StreamInfo *si;
  cr_assert_eq(unary(M_GET_STREAM, &gs.base, &clinlog__v1__stream_info__descriptor,
                     (ProtobufCMessage **)&si, NULL),
               0);
  cr_assert_eq(si->version, 2);
  clinlog__v1__stream_info__free_unpacked(si, NULL);
  Clinlog__V1__ListStreamsRequest ls = CLINLOG__V1__LIST_STREAMS_REQUEST__INIT;
  ls.category = "patient";
  cr_assert_eq(
      unary(M_LIST_STREAMS, &ls.base, &clinlog__v1__list_streams_response__descriptor, NULL, NULL),
      0);
  Clinlog__V1__ListEventsByTypeRequest lt = CLINLOG__V1__LIST_EVENTS_BY_TYPE_REQUEST__INIT;
  lt.event_type = CLINLOG__V1__EVENT__BODY_OBSERVATION_RECORDED;
  cr_assert_eq(unary(M_LIST_EVENTS_BY_TYPE, &lt.base,
                     &clinlog__v1__list_events_by_type_response__descriptor, NULL, NULL),
               0);
  Clinlog__V1__ListProjectionsRequest lp = CLINLOG__V1__LIST_PROJECTIONS_REQUEST__INIT;
  cr_assert_eq(unary(M_LIST_PROJECTIONS, &lp.base,
                     &clinlog__v1__list_projections_response__descriptor, NULL, NULL),
               0);
  Clinlog__V1__RebuildProjectionRequest rb = CLINLOG__V1__REBUILD_PROJECTION_REQUEST__INIT;
  rb.name = "streams";
  cr_assert_eq(unary(M_REBUILD_PROJECTION, &rb.base, &clinlog__v1__projection_status__descriptor,
                     NULL, NULL),
               0);

  Clinlog__V1__FhirReadRequest fread = CLINLOG__V1__FHIR_READ_REQUEST__INIT;
  fread.type = "Patient";
  fread.id = "hooks";
  cr_assert_eq(unary(M_FHIR_READ, &fread.base, &clinlog__v1__fhir_response__descriptor, NULL, NULL),
               CL_ENOTFOUND);
  Clinlog__V1__FhirHistoryRequest fhist = CLINLOG__V1__FHIR_HISTORY_REQUEST__INIT;
  fhist.type = "Observation";
  cr_assert_eq(
      unary(M_FHIR_HISTORY, &fhist.base, &clinlog__v1__fhir_response__descriptor, NULL, NULL), 0);
  Clinlog__V1__FhirSearchRequest fs = CLINLOG__V1__FHIR_SEARCH_REQUEST__INIT;
  fs.type = "Observation";
  cr_assert_eq(unary(M_FHIR_SEARCH, &fs.base, &clinlog__v1__fhir_response__descriptor, NULL, NULL),
               0);
  Clinlog__V1__FhirEverythingRequest fe = CLINLOG__V1__FHIR_EVERYTHING_REQUEST__INIT;
  fe.patient_id = "hooks";
  cr_assert_eq(
      unary(M_FHIR_EVERYTHING, &fe.base, &clinlog__v1__fhir_response__descriptor, NULL, NULL),
      CL_ENOTFOUND);
  Clinlog__V1__FhirCapabilitiesRequest fc = CLINLOG__V1__FHIR_CAPABILITIES_REQUEST__INIT;
  cr_assert_eq(
      unary(M_FHIR_CAPABILITIES, &fc.base, &clinlog__v1__fhir_response__descriptor, NULL, NULL), 0);

  Clinlog__V1__FhirExportRequest fx = CLINLOG__V1__FHIR_EXPORT_REQUEST__INIT;
  Clinlog__V1__FhirExportJob *job;
  cr_assert_eq(unary(M_FHIR_EXPORT, &fx.base, &clinlog__v1__fhir_export_job__descriptor,
                     (ProtobufCMessage **)&job, NULL),
               0);
  Clinlog__V1__FhirExportJobRequest fxs = CLINLOG__V1__FHIR_EXPORT_JOB_REQUEST__INIT;
  fxs.job_id = job->job_id;
  cr_assert_eq(
      unary(M_FHIR_EXPORT_STATUS, &fxs.base, &clinlog__v1__fhir_export_job__descriptor, NULL, NULL),
      0);
  Clinlog__V1__FhirExportReadRequest fxr = CLINLOG__V1__FHIR_EXPORT_READ_REQUEST__INIT;
  fxr.job_id = "00000000000000000000000000000000";
  fxr.file = 1;
  cr_assert_eq(
      unary(M_FHIR_EXPORT_READ, &fxr.base, &clinlog__v1__fhir_export_chunk__descriptor, NULL, NULL),
      CL_ENOTFOUND);
  cr_assert_eq(
      unary(M_FHIR_EXPORT_CANCEL, &fxs.base, &clinlog__v1__fhir_export_job__descriptor, NULL, NULL),
      0);
  clinlog__v1__fhir_export_job__free_unpacked(job, NULL);

  /* Auth: a login that fails, a logout without a session, who am I */
  Clinlog__V1__LoginRequest li = CLINLOG__V1__LOGIN_REQUEST__INIT;
  li.principal_id = "nobody";
  li.password = "secret-password";
  li.totp_code = "123456";
  cr_assert_eq(unary(M_AUTH_LOGIN, &li.base, &clinlog__v1__login_response__descriptor, NULL, &st),
               CL_EUNAUTH);
  cr_assert_eq(st.code, CL_GRPC_UNAUTHENTICATED);
  Clinlog__V1__LogoutRequest lo = CLINLOG__V1__LOGOUT_REQUEST__INIT;
  cr_assert_eq(
      unary(M_AUTH_LOGOUT, &lo.base, &clinlog__v1__logout_response__descriptor, NULL, NULL),
      CL_EUNAUTH);
  Clinlog__V1__WhoamiRequest wi = CLINLOG__V1__WHOAMI_REQUEST__INIT;
  Clinlog__V1__WhoamiResponse *who;
  cr_assert_eq(unary(M_AUTH_WHOAMI, &wi.base, &clinlog__v1__whoami_response__descriptor,
                     (ProtobufCMessage **)&who, NULL),
               0);
  cr_assert_str_eq(who->principal_id, "");
  cr_assert_str_eq(who->auth, "none");
  clinlog__v1__whoami_response__free_unpacked(who, NULL);
  /* the hooks never see a login's password or code */
  cr_assert_str_eq(R.login_seen, "nobody//");
  /* SMART Backend Services: an unsigned assertion is refused; the hooks
   * see the grant and the scope, not the assertion */
  Clinlog__V1__TokenRequest tk = CLINLOG__V1__TOKEN_REQUEST__INIT;
  tk.grant_type = "client_credentials";
  tk.client_assertion_type = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
  tk.client_assertion = "eyJhbGciOiJub25lIn0.eyJpc3MiOiJub2JvZHkifQ.";
  tk.scope = "system/*.rs";
  tk.token_url = "https://clinlog.test/auth/token";
  cr_assert_eq(unary(M_AUTH_TOKEN, &tk.base, &clinlog__v1__token_response__descriptor, NULL, &st),
               CL_EUNAUTH);
  cr_assert(strstr(st.details, "no client nobody is registered"), "%s", st.details);
  cr_assert_str_eq(R.token_seen, "client_credentials//system/*.rs");
  Clinlog__V1__BreakGlassRequest bg = CLINLOG__V1__BREAK_GLASS_REQUEST__INIT;
  bg.patient_id = "hooks";
  bg.reason = "a test emergency";
  cr_assert_eq(unary(M_AUTH_BREAK_GLASS, &bg.base, &clinlog__v1__break_glass_response__descriptor,
                     NULL, NULL),
               CL_EUNAUTH, "break-glass needs a session");
  Clinlog__V1__AuditQueryRequest aq = CLINLOG__V1__AUDIT_QUERY_REQUEST__INIT;
  aq.patient = "hooks";
  cr_assert_eq(
      unary(M_AUDIT_QUERY, &aq.base, &clinlog__v1__audit_query_response__descriptor, NULL, NULL),
      0);

  /* Cds over gRPC: this node runs no cds projection; no alert is known */
  Clinlog__V1__CheckOrderRequest co = CLINLOG__V1__CHECK_ORDER_REQUEST__INIT;
  Clinlog__V1__DraftOrder dr = CLINLOG__V1__DRAFT_ORDER__INIT, *drp = &dr;
  Clinlog__V1__Code drug = CLINLOG__V1__CODE__INIT;
  drug.system = "http://www.nlm.nih.gov/research/umls/rxnorm";
  drug.code = "5640";
  dr.drug = &drug;
  co.patient_id = "hooks";
  co.n_orders = 1;
  co.orders = &drp;
  cr_assert_eq(unary(M_CDS_CHECK_ORDER, &co.base, &clinlog__v1__check_order_response__descriptor,
                     NULL, NULL),
               CL_EUNAVAILABLE);
  Clinlog__V1__AlertsRequest alr = CLINLOG__V1__ALERTS_REQUEST__INIT;
  alr.after_seq = 1000000; /* beyond the end: the call ends at once */
  cr_assert_eq(cl_client_cds_alerts(F.c, &alr, &s, &err), 0);
  cr_assert_lt(drain(s, 0), 0);
  Clinlog__V1__AcknowledgeAlertRequest ack = CLINLOG__V1__ACKNOWLEDGE_ALERT_REQUEST__INIT;
  ack.alert_id = "0123456789abcdef0123456789abcdef";
  cr_assert_eq(unary(M_CDS_ACKNOWLEDGE, &ack.base, &clinlog__v1__alert_action_response__descriptor,
                     NULL, NULL),
               CL_ENOTFOUND);
  Clinlog__V1__OverrideAlertRequest ovr = CLINLOG__V1__OVERRIDE_ALERT_REQUEST__INIT;
  ovr.alert_id = ack.alert_id;
  cr_assert_eq(
      unary(M_CDS_OVERRIDE, &ovr.base, &clinlog__v1__alert_action_response__descriptor, NULL, NULL),
      CL_EINVAL, "an override needs a reason");

  for (int m = 0; m < M_COUNT; m++) {
    if (m == M_CDS_DISCOVERY || m == M_CDS_HOOK || m == M_CDS_FEEDBACK)
      continue; /* CDS Hooks: the HTTP face's only (tests/interop/test_cds_hooks.py) */
    if (m == M_MLLP_MESSAGE)
      continue; /* the MLLP listener's (tests/adapters/test_mllp_session.c) */
    if (m == M_FHIR_WRITE)
      continue; /* FHIR writes: the HTTP face's only (tests/interop/test_fhir_write.py) */
    wait_finished(m, 1);
    int denied = m == M_ADD_NODE || m == M_REMOVE_NODE || m == M_TRANSFER_LEADERSHIP ||
                 m == M_ROTATE_LOG_KEY;
    cr_assert_geq(count(R.authorized, m), 1, "%s was never authorized", cl_method_name(m));
    cr_assert_eq(count(R.audited, m), denied ? 0 : count(R.authorized, m), "%s: audited %d times",
                 cl_method_name(m), count(R.audited, m));
    cr_assert_eq(count(R.finished, m), count(R.authorized, m), "%s: finished %d times",
                 cl_method_name(m), count(R.finished, m));
    if (denied)
      cr_assert_eq(R.finished_code[m], CL_EDENIED);
    cr_assert_str_eq(R.last[m].transport, "grpc");
    cr_assert_str_eq(R.last[m].request_id, "req-test-42", "%s", cl_method_name(m));
    cr_assert(strstr(R.last[m].peer, "127.0.0.1"), "%s: peer %s", cl_method_name(m),
              R.last[m].peer);
    cr_assert_eq(R.last[m].auth, CL_AUTH_NONE);
  }
  cr_assert(R.order_ok, "an audit ran before its authorization");
  cr_assert_eq(R.finished_code[M_GET_EVENT], CL_ENOTFOUND);
  /* the refused membership change did not happen */
  cr_assert_eq(unary(M_CLUSTER_STATUS, &cs.base, &clinlog__v1__cluster_status__descriptor,
                     (ProtobufCMessage **)&status, NULL),
               0);
  cr_assert_eq(status->n_nodes, 1);
  clinlog__v1__cluster_status__free_unpacked(status, NULL);
}

Test(service, a_refused_append_writes_nothing) {
  uint64_t before, after;
  cl_log_head(F.log, &before, NULL);
  R.deny[M_APPEND] = 1;
  batch x;
  batch_make(&x, "patient-denied");
  Clinlog__V1__AppendResponse *resp;
  cl_client_status st;
  cl_err err;
  cr_assert_eq(cl_client_append(F.c, &x.b, &resp, &st, &err), CL_EDENIED);
  cr_assert_eq(st.code, CL_GRPC_PERMISSION_DENIED);
  cr_assert_str_eq(st.error_name, "CL_EDENIED");
  batch_free(&x);
  cl_log_head(F.log, &after, NULL);
  cr_assert_eq(after, before + 1, "only the refusal's audit record");
  uint64_t v;
  cr_assert_eq(cl_log_stream_version(F.log, "$audit", &v, &err), 0);
  cr_assert_gt(v, 0);
  cr_assert_eq(cl_log_stream_version(F.log, "patient-denied", &v, &err), 0);
  cr_assert_eq(v, 0);
}

Test(service, a_failed_audit_fails_closed) {
  append_one("patient-audit");
  R.audit_fails = 1;
  Clinlog__V1__ReadRequest rr = CLINLOG__V1__READ_REQUEST__INIT;
  rr.stream = "patient-audit";
  cl_client_stream *s;
  cl_err err;
  cr_assert_eq(cl_client_read(F.c, &rr, &s, &err), 0);
  ProtobufCMessage *m = NULL;
  cr_assert_eq(cl_client_stream_next(s, &m, &err), CL_EUNAVAILABLE, "no event leaves: %s", err.msg);
  cr_assert_null(m);
  cr_assert(strstr(cl_client_stream_status(s)->details, "could not be recorded"), "%s",
            cl_client_stream_status(s)->details);
  cl_client_stream_free(s);
}

Test(service, projection_reads_wait_for_your_writes) {
  /* a read that asks for a sequence the log will reach soon waits for the
   * projection to fold it (parked on its feed, not polling) */
  uint64_t seq = append_one("patient-ryw");
  Clinlog__V1__GetStreamRequest gs = CLINLOG__V1__GET_STREAM_REQUEST__INIT;
  Clinlog__V1__Consistency cons = CLINLOG__V1__CONSISTENCY__INIT;
  gs.stream = "patient-ryw";
  gs.consistency = &cons;
  for (int i = 0; i < 20; i++) {
    seq = append_one("patient-ryw");
    cons.min_sequence = seq;
    Clinlog__V1__StreamInfo *si;
    cr_assert_eq(unary(M_GET_STREAM, &gs.base, &clinlog__v1__stream_info__descriptor,
                       (ProtobufCMessage **)&si, NULL),
                 0);
    cr_assert_eq(si->version, (uint64_t)i + 2, "read-your-writes: version %llu",
                 (unsigned long long)si->version);
    cr_assert_eq(si->counts[0]->count, (uint64_t)i + 2);
    cr_assert_str_eq(si->counts[0]->name, "ObservationRecorded");
    clinlog__v1__stream_info__free_unpacked(si, NULL);
  }
  /* a sequence never reached: DEADLINE_EXCEEDED at the call's deadline */
  cons.min_sequence = seq + 1000;
  cl_client_status st;
  cl_err err;
  ProtobufCMessage *o;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int rc =
      cl_client_unary_md(F.c, cl_grpc_method_path[M_GET_STREAM], &gs.base,
                         &clinlog__v1__stream_info__descriptor, 500, NULL, NULL, NULL, 0, &o, &st,
                         &err);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  cr_assert_neq(rc, 0);
  cr_assert_eq(st.code, CL_GRPC_DEADLINE_EXCEEDED, "%s", st.details);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  cr_assert_lt(secs, 5.0, "the wait ended at the deadline (%.2f s)", secs);
}

/* One HTTP/1.1 GET on loopback; returns the status. */
static int http_get(int port, const char *path) {
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
static cl_http *http_start(int *port) {
  cl_http_config hc;
  cl_http_config_init(&hc);
  hc.listen = "127.0.0.1:0";
  hc.dev = 1;
  cl_http *h;
  cl_err err;
  cr_assert_eq(cl_http_start(&hc, F.svc, &h, port, &err), 0, "%s", err.msg);
  return h;
}

/* The HTTP face goes through the same hooks, as the Fhir method of the
 * same interaction, transport "http"; a refusal is a 403 with no audit. */
Test(service, the_http_face_passes_the_same_hooks) {
  int port;
  cl_http *h = http_start(&port);
  cr_assert_eq(http_get(port, "/fhir/R4/Patient/nobody"), 404);
  wait_finished(M_FHIR_READ, 1);
  cr_assert_eq(count(R.authorized, M_FHIR_READ), 1);
  cr_assert_eq(count(R.audited, M_FHIR_READ), 1);
  cr_assert_str_eq(R.last[M_FHIR_READ].transport, "http");
  cr_assert_str_eq(R.last[M_FHIR_READ].request_id, "req-http-7");
  cr_assert(strstr(R.last[M_FHIR_READ].peer, "127.0.0.1"), "%s", R.last[M_FHIR_READ].peer);
  R.deny[M_FHIR_SEARCH] = 1;
  cr_assert_eq(http_get(port, "/fhir/R4/Observation?code=x"), 403);
  wait_finished(M_FHIR_SEARCH, 1);
  cr_assert_eq(count(R.authorized, M_FHIR_SEARCH), 1);
  cr_assert_eq(count(R.audited, M_FHIR_SEARCH), 0, "refused before any data moved");
  cr_assert_eq(R.finished_code[M_FHIR_SEARCH], CL_EDENIED);
  cl_http_stop(h);
}

/* ------------------------------------------------------- audit trail */

/* The audit trail's records of one method, as the log has them now. */
typedef struct audit_seen {
  const char *method;
  int n;
  Clinlog__V1__Event *last; /* the newest, decoded */
  int bad_signer;           /* a record not recorded by the log key */
} audit_seen;

static int audit_ev(void *ctx, const cl_event_view *v, cl_err *err) {
  audit_seen *a = ctx;
  Clinlog__V1__Event *ev;
  cr_assert_eq(cl_event_decode(v->event, v->event_len, &ev, err), 0, "%s", err->msg);
  cr_assert_eq(ev->body_case, CLINLOG__V1__EVENT__BODY_ACCESS_RECORDED);
  if (strcmp(ev->recorded_by->principal_id, "$log") != 0)
    a->bad_signer++;
  if (strcmp(ev->access_recorded->method, a->method) != 0) {
    clinlog__v1__event__free_unpacked(ev, NULL);
    return 0;
  }
  a->n++;
  if (a->last)
    clinlog__v1__event__free_unpacked(a->last, NULL);
  a->last = ev;
  return 0;
}

static audit_seen audit_of(int m) {
  audit_seen a = {.method = cl_method_name(m)};
  cl_err err;
  int code = cl_log_read_stream(F.log, "$audit", 1, 0, 0, audit_ev, &a, &err);
  cr_assert(code == 0 || code == CL_ENOTFOUND, "%s", err.msg); /* not found: no record yet */
  cr_assert_eq(a.bad_signer, 0, "every record is the node's");
  return a;
}

static void audit_done(audit_seen *a) {
  if (a->last)
    clinlog__v1__event__free_unpacked(a->last, NULL);
}

/* A call's record is in the log when its answer arrives: the count of the
 * method's records grew by exactly one. */
static const Clinlog__V1__AccessRecorded *one_more(audit_seen *before, int m) {
  audit_seen now = audit_of(m);
  cr_assert_eq(now.n, before->n + 1, "%s: %d records, want %d", cl_method_name(m), now.n,
               before->n + 1);
  audit_done(before);
  *before = now;
  return now.last->access_recorded;
}

Test(service, every_call_is_recorded_once_before_its_answer) {
  cl_err err;
  audit_seen ap = audit_of(M_APPEND), rd = audit_of(M_READ), ge = audit_of(M_GET_EVENT),
             fs = audit_of(M_FHIR_SEARCH), hc = audit_of(M_HEALTH_CHECK);
  uint64_t seq = append_one("patient-audited");
  const Clinlog__V1__AccessRecorded *r = one_more(&ap, M_APPEND);
  cr_assert_str_eq(r->action, "C");
  cr_assert_str_eq(r->outcome, "0");
  cr_assert_str_eq(r->subtype, "create");
  cr_assert_eq(r->count, 1);
  char what[64];
  snprintf(what, sizeof what, "seq:%llu-%llu", (unsigned long long)seq, (unsigned long long)seq);
  cr_assert_str_eq(r->resource, what);
  cr_assert_str_eq(r->transport, "grpc");
  cr_assert_str_eq(r->request_id, "req-test-42");
  cr_assert(strstr(r->client_address, "127.0.0.1"), "%s", r->client_address);
  cr_assert_str_eq(r->server_address, "127.0.0.1:7525");
  cr_assert_eq(r->node_id, 1);
  cr_assert_str_eq(r->auth, "none");
  cr_assert_str_eq(r->error, "");

  /* a read: recorded before its first event left */
  Clinlog__V1__ReadRequest rr = CLINLOG__V1__READ_REQUEST__INIT;
  rr.stream = "patient-audited";
  cl_client_stream *s;
  cr_assert_eq(cl_client_read(F.c, &rr, &s, &err), 0);
  cr_assert_eq(drain(s, 0), 0);
  r = one_more(&rd, M_READ);
  cr_assert_str_eq(r->action, "R");
  cr_assert_str_eq(r->resource, "stream:patient-audited");
  cr_assert_eq(r->n_patients, 1);
  cr_assert_str_eq(r->patients[0], "audited");

  /* a failure is recorded too, as the caller's (outcome 4) */
  Clinlog__V1__GetEventRequest gr = CLINLOG__V1__GET_EVENT_REQUEST__INIT;
  uint8_t id[16] = {1, 2, 3};
  gr.event_id = (ProtobufCBinaryData){16, id};
  cl_client_status st;
  cr_assert_eq(unary(M_GET_EVENT, &gr.base, &clinlog__v1__recorded_event__descriptor, NULL, &st),
               CL_ENOTFOUND);
  r = one_more(&ge, M_GET_EVENT);
  cr_assert_str_eq(r->outcome, "4");
  cr_assert_str_eq(r->error, "CL_ENOTFOUND");
  cr_assert_str_eq(r->resource, "event:01020300000000000000000000000000");

  /* a search names its query and the patients it asks about */
  Clinlog__V1__FhirParam p1 = CLINLOG__V1__FHIR_PARAM__INIT, p2 = CLINLOG__V1__FHIR_PARAM__INIT;
  p1.name = "patient";
  p1.value = "Patient/audited,other";
  p2.name = "code";
  p2.value = "http://loinc.org|8867-4";
  Clinlog__V1__FhirParam *pp[] = {&p1, &p2};
  Clinlog__V1__FhirSearchRequest sq = CLINLOG__V1__FHIR_SEARCH_REQUEST__INIT;
  sq.type = "Observation";
  sq.n_params = 2;
  sq.params = pp;
  cr_assert_eq(unary(M_FHIR_SEARCH, &sq.base, &clinlog__v1__fhir_response__descriptor, NULL, NULL),
               0);
  r = one_more(&fs, M_FHIR_SEARCH);
  cr_assert_str_eq(r->action, "E");
  cr_assert_str_eq(r->subtype, "search-type");
  cr_assert_str_eq(r->resource, "Observation");
  cr_assert_str_eq(r->query, "patient=Patient/audited,other&code=http://loinc.org|8867-4");
  cr_assert_eq(r->n_patients, 2);
  cr_assert_str_eq(r->patients[0], "audited");
  cr_assert_str_eq(r->patients[1], "other");

  /* a refusal: recorded, and no handler ran */
  R.deny[M_FHIR_SEARCH] = 1;
  cr_assert_eq(unary(M_FHIR_SEARCH, &sq.base, &clinlog__v1__fhir_response__descriptor, NULL, &st),
               CL_EDENIED);
  r = one_more(&fs, M_FHIR_SEARCH);
  cr_assert_str_eq(r->outcome, "4");
  cr_assert_str_eq(r->error, "CL_EDENIED");
  cr_assert(strstr(r->detail, "test policy"), "%s", r->detail);

  /* health checks are not: probes would flood the trail, and they read nothing */
  Grpc__Health__V1__HealthCheckRequest hr = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  cr_assert_eq(unary(M_HEALTH_CHECK, &hr.base, &grpc__health__v1__health_check_response__descriptor,
                     NULL, NULL),
               0);
  audit_seen hc2 = audit_of(M_HEALTH_CHECK);
  cr_assert_eq(hc2.n, hc.n);
  audit_done(&hc2);

  /* the accounting of disclosures of the patient: the read and the two
   * searches that named it, as AuditEvents, oldest first */
  uint64_t head;
  cl_log_head(F.log, &head, NULL);
  Clinlog__V1__Consistency cons = CLINLOG__V1__CONSISTENCY__INIT;
  cons.min_sequence = head;
  Clinlog__V1__AuditQueryRequest aq = CLINLOG__V1__AUDIT_QUERY_REQUEST__INIT;
  aq.patient = "audited";
  aq.consistency = &cons;
  Clinlog__V1__AuditQueryResponse *ar;
  cr_assert_eq(unary(M_AUDIT_QUERY, &aq.base, &clinlog__v1__audit_query_response__descriptor,
                     (ProtobufCMessage **)&ar, NULL),
               0);
  cr_assert_eq(ar->n_audit_events, 3);
  const char *want[] = {"clinlog.v1.Log/Read", "search-type", "search-type"};
  for (size_t i = 0; i < 3; i++) {
    json_t *ae =
        json_loadb((const char *)ar->audit_events[i].data, ar->audit_events[i].len, 0, NULL);
    cr_assert_not_null(ae);
    cr_assert_str_eq(json_string_value(json_object_get(ae, "resourceType")), "AuditEvent");
    const char *sub = json_string_value(
        json_object_get(json_array_get(json_object_get(ae, "subtype"), 0), "code"));
    cr_assert_str_eq(sub, want[i], "record %zu: %s", i, sub);
    cr_assert(strstr((const char *)ar->audit_events[i].data, "Patient/"), "names the patient");
    if (i > 0)
      cr_assert_gt(ar->seqs[i], ar->seqs[i - 1]);
    json_decref(ae);
  }
  cr_assert_eq(ar->next_after, 0);
  clinlog__v1__audit_query_response__free_unpacked(ar, NULL);
  audit_done(&ap);
  audit_done(&rd);
  audit_done(&ge);
  audit_done(&fs);
  audit_done(&hc);
}

Test(service, an_http_call_is_recorded_before_its_answer) {
  int port;
  cl_http *h = http_start(&port);
  audit_seen fr = audit_of(M_FHIR_READ);
  cr_assert_eq(http_get(port, "/fhir/R4/Patient/nobody"), 404);
  const Clinlog__V1__AccessRecorded *r = one_more(&fr, M_FHIR_READ);
  cr_assert_str_eq(r->transport, "http");
  cr_assert_str_eq(r->request_id, "req-http-7");
  cr_assert_str_eq(r->resource, "Patient/nobody");
  cr_assert_str_eq(r->subtype, "read");
  cr_assert_str_eq(r->outcome, "4");
  cr_assert_eq(r->n_patients, 1);
  cr_assert_str_eq(r->patients[0], "nobody");
  audit_done(&fr);
  cl_http_stop(h);
}

/* The trail holds nothing but the node's records: another event in
 * $audit is refused (and that refusal is recorded). */
Test(service, nobody_but_the_node_writes_the_trail) {
  uint64_t before, after;
  cl_log_head(F.log, &before, NULL);
  batch x;
  batch_make(&x, "$audit");
  Clinlog__V1__AppendResponse *resp;
  cl_client_status st;
  cl_err err;
  cr_assert_eq(cl_client_append(F.c, &x.b, &resp, &st, &err), CL_EMALFORMED);
  cr_assert(strstr(st.details, "$audit holds AccessRecorded only"), "%s", st.details);
  batch_free(&x);
  cl_log_head(F.log, &after, NULL);
  /* the refused call has its own record, nothing else was written */
  cr_assert_eq(after, before + 1);
}

/* The request layer (adapters/service) under the real gRPC server, in
 * process: a one-node Raft cluster, the service with recording hooks, the
 * engine with clinlogd's services, and the C client. Every method passes
 * the authorization and audit hooks before its handler (the cluster-admin
 * methods included); a refusal or a failed audit stops the call before any
 * data moves; the request context carries what the transport knows; reads
 * of a projection wait for read-your-writes on its progress feed. The audit
 * trail's own tests are in test_service_audit.c, the fixture in
 * service_fixture.c. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clinlog/v1/audit.pb-c.h"
#include "clinlog/v1/auth.pb-c.h"
#include "clinlog/v1/device.pb-c.h"
#include "clinlog/v1/fhir.pb-c.h"
#include "clinlog/v1/query.pb-c.h"
#include "store/event.h"
#include "tests/adapters/service_fixture.h"
#include "tests/support/testutil.h"

TestSuite(service, .init = svct_setup, .fini = svct_teardown, .timeout = 120);

Test(service, every_method_passes_the_hooks_before_its_handler) {
  cl_err err;
  /* the membership calls would change the cluster: the policy refuses
   * them, which still shows the hooks run for them first */
  svct_R.deny[M_ADD_NODE] = svct_R.deny[M_REMOVE_NODE] = svct_R.deny[M_TRANSFER_LEADERSHIP] = 1;
  svct_R.deny[M_ROTATE_LOG_KEY] = 1;
  uint64_t seq = svct_append_one("patient-hooks");

  cl_client_append_stream *as;
  cr_assert_eq(cl_client_append_stream_open(svct_F.c, &as, &err), 0);
  svct_batch x;
  svct_batch_make(&x, "patient-hooks");
  cr_assert_eq(cl_client_append_stream_send(as, &x.b, &err), 0, "%s", err.msg);
  Clinlog__V1__AppendStreamSummary *sum;
  cr_assert_eq(cl_client_append_stream_finish(as, &sum, NULL, &err), 0, "%s", err.msg);
  clinlog__v1__append_stream_summary__free_unpacked(sum, NULL);
  svct_batch_free(&x);

  /* device readings need an authenticated device or gateway: the hooks
   * still run, and the call ends unauthenticated */
  cl_client_cstream *ds;
  cr_assert_eq(cl_client_cstream_open(svct_F.c, M_DEVICE_SUBMIT, &ds, &err), 0);
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
  cr_assert_eq(cl_client_read(svct_F.c, &rr, &s, &err), 0);
  cr_assert_eq(svct_drain(s, 0), 0);
  Clinlog__V1__SubscribeRequest sr = CLINLOG__V1__SUBSCRIBE_REQUEST__INIT;
  cr_assert_eq(cl_client_subscribe(svct_F.c, &sr, &s, &err), 0);
  svct_drain(s, 2);
  Clinlog__V1__GetCheckpointRequest gc = CLINLOG__V1__GET_CHECKPOINT_REQUEST__INIT;
  gc.fresh = 1;
  cr_assert_eq(
      svct_unary(M_GET_CHECKPOINT, &gc.base, &clinlog__v1__checkpoint__descriptor, NULL, NULL), 0);
  Clinlog__V1__ProveInclusionRequest pi = CLINLOG__V1__PROVE_INCLUSION_REQUEST__INIT;
  pi.seq = seq;
  cr_assert_eq(svct_unary(M_PROVE_INCLUSION, &pi.base, &clinlog__v1__inclusion_proof__descriptor,
                          NULL, NULL),
               0);
  Clinlog__V1__ProveConsistencyRequest pc = CLINLOG__V1__PROVE_CONSISTENCY_REQUEST__INIT;
  pc.old_size = 1;
  cr_assert_eq(svct_unary(M_PROVE_CONSISTENCY, &pc.base,
                          &clinlog__v1__consistency_proof__descriptor, NULL, NULL),
               0);
  Clinlog__V1__GetEventRequest ge = CLINLOG__V1__GET_EVENT_REQUEST__INIT;
  uint8_t unknown[16] = {1};
  ge.event_id = (ProtobufCBinaryData){16, unknown};
  cr_assert_eq(
      svct_unary(M_GET_EVENT, &ge.base, &clinlog__v1__recorded_event__descriptor, NULL, NULL),
      CL_ENOTFOUND);
  Grpc__Health__V1__HealthCheckRequest hc = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  cr_assert_eq(svct_unary(M_HEALTH_CHECK, &hc.base,
                          &grpc__health__v1__health_check_response__descriptor, NULL, NULL),
               0);
  cr_assert_eq(cl_client_health_watch(svct_F.c, &hc, &s, &err), 0);
  svct_drain(s, 1);
  Clinlog__V1__ClusterStatusRequest cs = CLINLOG__V1__CLUSTER_STATUS_REQUEST__INIT;
  Clinlog__V1__ClusterStatus *status;
  cr_assert_eq(svct_unary(M_CLUSTER_STATUS, &cs.base, &clinlog__v1__cluster_status__descriptor,
                          (ProtobufCMessage **)&status, NULL),
               0);
  cr_assert_eq(status->n_nodes, 1);
  clinlog__v1__cluster_status__free_unpacked(status, NULL);
  Clinlog__V1__AddNodeRequest an = CLINLOG__V1__ADD_NODE_REQUEST__INIT;
  an.id = 9;
  an.raft_address = "127.0.0.1:9";
  an.api_address = "127.0.0.1:10";
  cl_client_status st;
  cr_assert_eq(
      svct_unary(M_ADD_NODE, &an.base, &clinlog__v1__cluster_status__descriptor, NULL, &st),
      CL_EDENIED);
  cr_assert_eq(st.code, CL_GRPC_PERMISSION_DENIED);
  cr_assert(strstr(st.details, "the test policy refuses clinlog.v1.Cluster/AddNode"), "%s",
            st.details);
  Clinlog__V1__RemoveNodeRequest rn = CLINLOG__V1__REMOVE_NODE_REQUEST__INIT;
  rn.id = 1;
  cr_assert_eq(
      svct_unary(M_REMOVE_NODE, &rn.base, &clinlog__v1__cluster_status__descriptor, NULL, NULL),
      CL_EDENIED);
  Clinlog__V1__TransferLeadershipRequest tl = CLINLOG__V1__TRANSFER_LEADERSHIP_REQUEST__INIT;
  cr_assert_eq(svct_unary(M_TRANSFER_LEADERSHIP, &tl.base, &clinlog__v1__cluster_status__descriptor,
                          NULL, NULL),
               CL_EDENIED);
  /* the log key rotation: refused by the hooks before its handler (nothing
   * committed); a node's log key status answers */
  Clinlog__V1__RotateLogKeyRequest rk = CLINLOG__V1__ROTATE_LOG_KEY_REQUEST__INIT;
  cr_assert_eq(svct_unary(M_ROTATE_LOG_KEY, &rk.base,
                          &clinlog__v1__rotate_log_key_response__descriptor, NULL, &st),
               CL_EDENIED);
  cr_assert_eq(st.code, CL_GRPC_PERMISSION_DENIED);
  cr_assert(strstr(st.details, "the test policy refuses clinlog.v1.Cluster/RotateLogKey"), "%s",
            st.details);
  Clinlog__V1__LogKeyStatusRequest lks = CLINLOG__V1__LOG_KEY_STATUS_REQUEST__INIT;
  Clinlog__V1__NodeLogKey *nlk;
  cr_assert_eq(svct_unary(M_LOG_KEY_STATUS, &lks.base, &clinlog__v1__node_log_key__descriptor,
                          (ProtobufCMessage **)&nlk, NULL),
               0);
  cr_assert_eq(nlk->log_key.len, 32);
  cr_assert_eq(nlk->staged_key.len, 0);
  cr_assert_str_eq(nlk->error, "");
  clinlog__v1__node_log_key__free_unpacked(nlk, NULL);
  Clinlog__V1__FetchRecordsRequest fr = CLINLOG__V1__FETCH_RECORDS_REQUEST__INIT;
  fr.from_seq = 1;
  fr.to_seq = seq;
  cr_assert_eq(cl_client_fetch_records(svct_F.c, &fr, &s, &err), 0);
  cr_assert_eq(svct_drain(s, 0), 0);
  Clinlog__V1__GetStreamRequest gs = CLINLOG__V1__GET_STREAM_REQUEST__INIT;
  Clinlog__V1__Consistency cons = CLINLOG__V1__CONSISTENCY__INIT;
  cons.min_sequence = seq + 1;
  gs.stream = "patient-hooks";
  gs.consistency = &cons;
  Clinlog__V1__StreamInfo *si;
  cr_assert_eq(svct_unary(M_GET_STREAM, &gs.base, &clinlog__v1__stream_info__descriptor,
                          (ProtobufCMessage **)&si, NULL),
               0);
  cr_assert_eq(si->version, 2);
  clinlog__v1__stream_info__free_unpacked(si, NULL);
  Clinlog__V1__ListStreamsRequest ls = CLINLOG__V1__LIST_STREAMS_REQUEST__INIT;
  ls.category = "patient";
  cr_assert_eq(svct_unary(M_LIST_STREAMS, &ls.base, &clinlog__v1__list_streams_response__descriptor,
                          NULL, NULL),
               0);
  Clinlog__V1__ListEventsByTypeRequest lt = CLINLOG__V1__LIST_EVENTS_BY_TYPE_REQUEST__INIT;
  lt.event_type = CLINLOG__V1__EVENT__BODY_OBSERVATION_RECORDED;
  cr_assert_eq(svct_unary(M_LIST_EVENTS_BY_TYPE, &lt.base,
                          &clinlog__v1__list_events_by_type_response__descriptor, NULL, NULL),
               0);
  Clinlog__V1__ListProjectionsRequest lp = CLINLOG__V1__LIST_PROJECTIONS_REQUEST__INIT;
  cr_assert_eq(svct_unary(M_LIST_PROJECTIONS, &lp.base,
                          &clinlog__v1__list_projections_response__descriptor, NULL, NULL),
               0);
  Clinlog__V1__RebuildProjectionRequest rb = CLINLOG__V1__REBUILD_PROJECTION_REQUEST__INIT;
  rb.name = "streams";
  cr_assert_eq(svct_unary(M_REBUILD_PROJECTION, &rb.base,
                          &clinlog__v1__projection_status__descriptor, NULL, NULL),
               0);

  Clinlog__V1__FhirReadRequest fread = CLINLOG__V1__FHIR_READ_REQUEST__INIT;
  fread.type = "Patient";
  fread.id = "hooks";
  cr_assert_eq(
      svct_unary(M_FHIR_READ, &fread.base, &clinlog__v1__fhir_response__descriptor, NULL, NULL),
      CL_ENOTFOUND);
  Clinlog__V1__FhirHistoryRequest fhist = CLINLOG__V1__FHIR_HISTORY_REQUEST__INIT;
  fhist.type = "Observation";
  cr_assert_eq(
      svct_unary(M_FHIR_HISTORY, &fhist.base, &clinlog__v1__fhir_response__descriptor, NULL, NULL),
      0);
  Clinlog__V1__FhirSearchRequest fs = CLINLOG__V1__FHIR_SEARCH_REQUEST__INIT;
  fs.type = "Observation";
  cr_assert_eq(
      svct_unary(M_FHIR_SEARCH, &fs.base, &clinlog__v1__fhir_response__descriptor, NULL, NULL), 0);
  Clinlog__V1__FhirEverythingRequest fe = CLINLOG__V1__FHIR_EVERYTHING_REQUEST__INIT;
  fe.patient_id = "hooks";
  cr_assert_eq(
      svct_unary(M_FHIR_EVERYTHING, &fe.base, &clinlog__v1__fhir_response__descriptor, NULL, NULL),
      CL_ENOTFOUND);
  Clinlog__V1__FhirCapabilitiesRequest fc = CLINLOG__V1__FHIR_CAPABILITIES_REQUEST__INIT;
  cr_assert_eq(svct_unary(M_FHIR_CAPABILITIES, &fc.base, &clinlog__v1__fhir_response__descriptor,
                          NULL, NULL),
               0);

  Clinlog__V1__FhirExportRequest fx = CLINLOG__V1__FHIR_EXPORT_REQUEST__INIT;
  Clinlog__V1__FhirExportJob *job;
  cr_assert_eq(svct_unary(M_FHIR_EXPORT, &fx.base, &clinlog__v1__fhir_export_job__descriptor,
                          (ProtobufCMessage **)&job, NULL),
               0);
  Clinlog__V1__FhirExportJobRequest fxs = CLINLOG__V1__FHIR_EXPORT_JOB_REQUEST__INIT;
  fxs.job_id = job->job_id;
  cr_assert_eq(svct_unary(M_FHIR_EXPORT_STATUS, &fxs.base,
                          &clinlog__v1__fhir_export_job__descriptor, NULL, NULL),
               0);
  Clinlog__V1__FhirExportReadRequest fxr = CLINLOG__V1__FHIR_EXPORT_READ_REQUEST__INIT;
  fxr.job_id = "00000000000000000000000000000000";
  fxr.file = 1;
  cr_assert_eq(svct_unary(M_FHIR_EXPORT_READ, &fxr.base,
                          &clinlog__v1__fhir_export_chunk__descriptor, NULL, NULL),
               CL_ENOTFOUND);
  cr_assert_eq(svct_unary(M_FHIR_EXPORT_CANCEL, &fxs.base,
                          &clinlog__v1__fhir_export_job__descriptor, NULL, NULL),
               0);
  clinlog__v1__fhir_export_job__free_unpacked(job, NULL);

  /* Auth: a login that fails, a logout without a session, who am I */
  Clinlog__V1__LoginRequest li = CLINLOG__V1__LOGIN_REQUEST__INIT;
  li.principal_id = "nobody";
  li.password = "secret-password";
  li.totp_code = "123456";
  cr_assert_eq(
      svct_unary(M_AUTH_LOGIN, &li.base, &clinlog__v1__login_response__descriptor, NULL, &st),
      CL_EUNAUTH);
  cr_assert_eq(st.code, CL_GRPC_UNAUTHENTICATED);
  Clinlog__V1__LogoutRequest lo = CLINLOG__V1__LOGOUT_REQUEST__INIT;
  cr_assert_eq(
      svct_unary(M_AUTH_LOGOUT, &lo.base, &clinlog__v1__logout_response__descriptor, NULL, NULL),
      CL_EUNAUTH);
  Clinlog__V1__WhoamiRequest wi = CLINLOG__V1__WHOAMI_REQUEST__INIT;
  Clinlog__V1__WhoamiResponse *who;
  cr_assert_eq(svct_unary(M_AUTH_WHOAMI, &wi.base, &clinlog__v1__whoami_response__descriptor,
                          (ProtobufCMessage **)&who, NULL),
               0);
  cr_assert_str_eq(who->principal_id, "");
  cr_assert_str_eq(who->auth, "none");
  clinlog__v1__whoami_response__free_unpacked(who, NULL);
  /* the hooks never see a login's password or code */
  cr_assert_str_eq(svct_R.login_seen, "nobody//");
  /* SMART Backend Services: an unsigned assertion is refused; the hooks
   * see the grant and the scope, not the assertion */
  Clinlog__V1__TokenRequest tk = CLINLOG__V1__TOKEN_REQUEST__INIT;
  tk.grant_type = "client_credentials";
  tk.client_assertion_type = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
  tk.client_assertion = "eyJhbGciOiJub25lIn0.eyJpc3MiOiJub2JvZHkifQ.";
  tk.scope = "system/*.rs";
  tk.token_url = "https://clinlog.test/auth/token";
  cr_assert_eq(
      svct_unary(M_AUTH_TOKEN, &tk.base, &clinlog__v1__token_response__descriptor, NULL, &st),
      CL_EUNAUTH);
  cr_assert(strstr(st.details, "no client nobody is registered"), "%s", st.details);
  cr_assert_str_eq(svct_R.token_seen, "client_credentials//system/*.rs");
  Clinlog__V1__BreakGlassRequest bg = CLINLOG__V1__BREAK_GLASS_REQUEST__INIT;
  bg.patient_id = "hooks";
  bg.reason = "a test emergency";
  cr_assert_eq(svct_unary(M_AUTH_BREAK_GLASS, &bg.base,
                          &clinlog__v1__break_glass_response__descriptor, NULL, NULL),
               CL_EUNAUTH, "break-glass needs a session");
  Clinlog__V1__AuditQueryRequest aq = CLINLOG__V1__AUDIT_QUERY_REQUEST__INIT;
  aq.patient = "hooks";
  cr_assert_eq(svct_unary(M_AUDIT_QUERY, &aq.base, &clinlog__v1__audit_query_response__descriptor,
                          NULL, NULL),
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
  cr_assert_eq(svct_unary(M_CDS_CHECK_ORDER, &co.base,
                          &clinlog__v1__check_order_response__descriptor, NULL, NULL),
               CL_EUNAVAILABLE);
  Clinlog__V1__AlertsRequest alr = CLINLOG__V1__ALERTS_REQUEST__INIT;
  alr.after_seq = 1000000; /* beyond the end: the call ends at once */
  cr_assert_eq(cl_client_cds_alerts(svct_F.c, &alr, &s, &err), 0);
  cr_assert_lt(svct_drain(s, 0), 0);
  Clinlog__V1__AcknowledgeAlertRequest ack = CLINLOG__V1__ACKNOWLEDGE_ALERT_REQUEST__INIT;
  ack.alert_id = "0123456789abcdef0123456789abcdef";
  cr_assert_eq(svct_unary(M_CDS_ACKNOWLEDGE, &ack.base,
                          &clinlog__v1__alert_action_response__descriptor, NULL, NULL),
               CL_ENOTFOUND);
  Clinlog__V1__OverrideAlertRequest ovr = CLINLOG__V1__OVERRIDE_ALERT_REQUEST__INIT;
  ovr.alert_id = ack.alert_id;
  cr_assert_eq(svct_unary(M_CDS_OVERRIDE, &ovr.base,
                          &clinlog__v1__alert_action_response__descriptor, NULL, NULL),
               CL_EINVAL, "an override needs a reason");

  for (int m = 0; m < M_COUNT; m++) {
    if (m == M_CDS_DISCOVERY || m == M_CDS_HOOK || m == M_CDS_FEEDBACK)
      continue; /* CDS Hooks: the HTTP face's only (tests/interop/test_cds_hooks.py) */
    if (m == M_MLLP_MESSAGE)
      continue; /* the MLLP listener's (tests/adapters/test_mllp_session.c) */
    if (m == M_FHIR_WRITE)
      continue; /* FHIR writes: the HTTP face's only (tests/interop/test_fhir_write.py) */
    svct_wait_finished(m, 1);
    int denied = m == M_ADD_NODE || m == M_REMOVE_NODE || m == M_TRANSFER_LEADERSHIP ||
                 m == M_ROTATE_LOG_KEY;
    cr_assert_geq(svct_count(svct_R.authorized, m), 1, "%s was never authorized",
                  cl_method_name(m));
    cr_assert_eq(svct_count(svct_R.audited, m), denied ? 0 : svct_count(svct_R.authorized, m),
                 "%s: audited %d times", cl_method_name(m), svct_count(svct_R.audited, m));
    cr_assert_eq(svct_count(svct_R.finished, m), svct_count(svct_R.authorized, m),
                 "%s: finished %d times", cl_method_name(m), svct_count(svct_R.finished, m));
    if (denied)
      cr_assert_eq(svct_R.finished_code[m], CL_EDENIED);
    cr_assert_str_eq(svct_R.last[m].transport, "grpc");
    cr_assert_str_eq(svct_R.last[m].request_id, "req-test-42", "%s", cl_method_name(m));
    cr_assert(strstr(svct_R.last[m].peer, "127.0.0.1"), "%s: peer %s", cl_method_name(m),
              svct_R.last[m].peer);
    cr_assert_eq(svct_R.last[m].auth, CL_AUTH_NONE);
  }
  cr_assert(svct_R.order_ok, "an audit ran before its authorization");
  cr_assert_eq(svct_R.finished_code[M_GET_EVENT], CL_ENOTFOUND);
  /* the refused membership change did not happen */
  cr_assert_eq(svct_unary(M_CLUSTER_STATUS, &cs.base, &clinlog__v1__cluster_status__descriptor,
                          (ProtobufCMessage **)&status, NULL),
               0);
  cr_assert_eq(status->n_nodes, 1);
  clinlog__v1__cluster_status__free_unpacked(status, NULL);
}

Test(service, a_refused_append_writes_nothing) {
  uint64_t before, after;
  cl_log_head(svct_F.log, &before, NULL);
  svct_R.deny[M_APPEND] = 1;
  svct_batch x;
  svct_batch_make(&x, "patient-denied");
  Clinlog__V1__AppendResponse *resp;
  cl_client_status st;
  cl_err err;
  cr_assert_eq(cl_client_append(svct_F.c, &x.b, &resp, &st, &err), CL_EDENIED);
  cr_assert_eq(st.code, CL_GRPC_PERMISSION_DENIED);
  cr_assert_str_eq(st.error_name, "CL_EDENIED");
  svct_batch_free(&x);
  cl_log_head(svct_F.log, &after, NULL);
  cr_assert_eq(after, before + 1, "only the refusal's audit record");
  uint64_t v;
  cr_assert_eq(cl_log_stream_version(svct_F.log, "$audit", &v, &err), 0);
  cr_assert_gt(v, 0);
  cr_assert_eq(cl_log_stream_version(svct_F.log, "patient-denied", &v, &err), 0);
  cr_assert_eq(v, 0);
}

Test(service, a_failed_audit_fails_closed) {
  svct_append_one("patient-audit");
  svct_R.audit_fails = 1;
  Clinlog__V1__ReadRequest rr = CLINLOG__V1__READ_REQUEST__INIT;
  rr.stream = "patient-audit";
  cl_client_stream *s;
  cl_err err;
  cr_assert_eq(cl_client_read(svct_F.c, &rr, &s, &err), 0);
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
  uint64_t seq = svct_append_one("patient-ryw");
  Clinlog__V1__GetStreamRequest gs = CLINLOG__V1__GET_STREAM_REQUEST__INIT;
  Clinlog__V1__Consistency cons = CLINLOG__V1__CONSISTENCY__INIT;
  gs.stream = "patient-ryw";
  gs.consistency = &cons;
  for (int i = 0; i < 20; i++) {
    seq = svct_append_one("patient-ryw");
    cons.min_sequence = seq;
    Clinlog__V1__StreamInfo *si;
    cr_assert_eq(svct_unary(M_GET_STREAM, &gs.base, &clinlog__v1__stream_info__descriptor,
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
  int rc = cl_client_unary_md(svct_F.c, cl_grpc_method_path[M_GET_STREAM], &gs.base,
                              &clinlog__v1__stream_info__descriptor, 500, NULL, NULL, NULL, 0, &o,
                              &st, &err);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  cr_assert_neq(rc, 0);
  cr_assert_eq(st.code, CL_GRPC_DEADLINE_EXCEEDED, "%s", st.details);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  cr_assert_lt(secs, 5.0, "the wait ended at the deadline (%.2f s)", secs);
}

/* The HTTP face goes through the same hooks, as the Fhir method of the
 * same interaction, transport "http"; a refusal is a 403 with no audit. */
Test(service, the_http_face_passes_the_same_hooks) {
  int port;
  cl_http *h = svct_http_start(&port);
  cr_assert_eq(svct_http_get(port, "/fhir/R4/Patient/nobody"), 404);
  svct_wait_finished(M_FHIR_READ, 1);
  cr_assert_eq(svct_count(svct_R.authorized, M_FHIR_READ), 1);
  cr_assert_eq(svct_count(svct_R.audited, M_FHIR_READ), 1);
  cr_assert_str_eq(svct_R.last[M_FHIR_READ].transport, "http");
  cr_assert_str_eq(svct_R.last[M_FHIR_READ].request_id, "req-http-7");
  cr_assert(strstr(svct_R.last[M_FHIR_READ].peer, "127.0.0.1"), "%s",
            svct_R.last[M_FHIR_READ].peer);
  svct_R.deny[M_FHIR_SEARCH] = 1;
  cr_assert_eq(svct_http_get(port, "/fhir/R4/Observation?code=x"), 403);
  svct_wait_finished(M_FHIR_SEARCH, 1);
  cr_assert_eq(svct_count(svct_R.authorized, M_FHIR_SEARCH), 1);
  cr_assert_eq(svct_count(svct_R.audited, M_FHIR_SEARCH), 0, "refused before any data moved");
  cr_assert_eq(svct_R.finished_code[M_FHIR_SEARCH], CL_EDENIED);
  cl_http_stop(h);
}

/* More calls at once than the server has workers (the fixture runs 8):
 * the calls no worker is free for wait in the queue, the rest are handed
 * to idle workers, and every one is answered. A lost hand-off would leave
 * a call unanswered (the test would time out). */
#define BUSY_THREADS 24
#define BUSY_EACH 5

typedef struct busy {
  int idx;
  int failures;
  char first_error[256];
  uint64_t seq[BUSY_EACH];
} busy;

static void *busy_main(void *arg) {
  busy *b = arg;
  for (int i = 0; i < BUSY_EACH; i++) {
    char stream[64];
    snprintf(stream, sizeof stream, "patient-busy-%d-%d", b->idx, i);
    svct_batch x;
    svct_batch_make(&x, stream);
    Clinlog__V1__AppendResponse *resp = NULL;
    cl_err err;
    if (cl_client_append(svct_F.c, &x.b, &resp, NULL, &err) != 0 || resp->n_positions != 1) {
      if (b->failures++ == 0)
        snprintf(b->first_error, sizeof b->first_error, "%s", resp ? "not one position" : err.msg);
    } else {
      b->seq[i] = resp->positions[0]->seq;
    }
    if (resp)
      clinlog__v1__append_response__free_unpacked(resp, NULL);
    svct_batch_free(&x);
  }
  return NULL;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

Test(service, more_calls_at_once_than_workers_are_all_answered) {
  cr_assert_lt(svct_F.cfg.workers, BUSY_THREADS);
  static busy b[BUSY_THREADS];
  pthread_t t[BUSY_THREADS];
  for (int i = 0; i < BUSY_THREADS; i++) {
    memset(&b[i], 0, sizeof b[i]);
    b[i].idx = i;
    cr_assert_eq(pthread_create(&t[i], NULL, busy_main, &b[i]), 0);
  }
  for (int i = 0; i < BUSY_THREADS; i++)
    pthread_join(t[i], NULL);
  static uint64_t all[BUSY_THREADS * BUSY_EACH];
  for (int i = 0; i < BUSY_THREADS; i++) {
    cr_assert_eq(b[i].failures, 0, "thread %d: %s", i, b[i].first_error);
    memcpy(all + i * BUSY_EACH, b[i].seq, sizeof b[i].seq);
  }
  qsort(all, BUSY_THREADS * BUSY_EACH, sizeof all[0], cmp_u64);
  for (int i = 0; i < BUSY_THREADS * BUSY_EACH; i++) {
    cr_assert_gt(all[i], 0);
    if (i > 0)
      cr_assert_neq(all[i], all[i - 1], "two appends answered with seq %llu",
                    (unsigned long long)all[i]);
  }
  svct_wait_finished(M_APPEND, BUSY_THREADS * BUSY_EACH);
  cr_assert_eq(svct_count(svct_R.finished, M_APPEND), BUSY_THREADS * BUSY_EACH);
  svct_append_one("patient-after-the-rush"); /* the workers are still there */
}

/* An append whose deadline passes while it replicates returns
 * CL_ETIMEDOUT, yet its entry may still commit: here every one does. The
 * Raft loop then finishes the operation its caller let go of (run under
 * the sanitizers, a use after free or a leak there fails the test). */
Test(service, an_append_past_its_deadline_still_commits) {
  enum { N = 20 };
  int timeouts = 0;
  char stream[N][64];
  for (int i = 0; i < N; i++) {
    snprintf(stream[i], sizeof stream[i], "patient-deadline-%d", i);
    svct_batch x;
    svct_batch_make(&x, stream[i]);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t past = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 - 1;
    cl_append_result r;
    cl_err err;
    int rc = cl_repl_append(svct_F.repl, &x.b, past, &r, &err);
    if (rc == 0)
      cl_append_result_free(&r);
    else {
      cr_assert_eq(rc, CL_ETIMEDOUT, "%s", err.msg);
      cr_assert(strstr(err.msg, "deadline"), "%s", err.msg);
      timeouts++;
    }
    svct_batch_free(&x);
  }
  cr_assert_gt(timeouts, 0, "a deadline already past never timed out");
  for (int i = 0; i < N; i++) {
    uint64_t v = 0;
    cl_err err;
    for (int tries = 0; tries < 200 && v == 0; tries++) {
      if (cl_log_stream_version(svct_F.log, stream[i], &v, &err) != 0)
        v = 0;
      if (v == 0) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
      }
    }
    cr_assert_eq(v, 1, "%s: not committed after its caller gave up", stream[i]);
  }
}

/* cl_repl_append_start: one thread puts many appends in Raft's hands
 * without waiting for any (the gRPC face's Append, whose workers no longer
 * wait for the commit); each one's done runs exactly once, on another
 * thread, and cl_repl_append_end then gives what cl_repl_append would: a
 * new position each, and a wrong expected version named as a conflict.
 * `here` (the caller may finish on the loop) only for an append that
 * committed alone in its entry: not for the conflict, yes for the last
 * append, alone. */
enum { ASYNC_N = 32 };
typedef struct async_slot {
  int calls, here;
  pthread_t thread;
} async_slot;
static pthread_mutex_t async_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t async_cv = PTHREAD_COND_INITIALIZER;
static int async_total;

static void async_done(void *ctx, int here) {
  async_slot *sl = ctx;
  pthread_mutex_lock(&async_mu);
  sl->calls++;
  sl->here = here;
  sl->thread = pthread_self();
  async_total++;
  pthread_cond_broadcast(&async_cv);
  pthread_mutex_unlock(&async_mu);
}

/* Waits until async_total reaches n (10 s at most); returns it. */
static int async_wait(int n) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 10;
  pthread_mutex_lock(&async_mu);
  while (async_total < n && pthread_cond_timedwait(&async_cv, &async_mu, &until) == 0)
    ;
  int got = async_total;
  pthread_mutex_unlock(&async_mu);
  return got;
}

Test(service, appends_in_raft_hands_answer_each_once_without_a_waiting_thread) {
  static svct_batch x[ASYNC_N + 2];
  static async_slot slot[ASYNC_N + 2];
  cl_repl_pending *p[ASYNC_N + 2];
  async_total = 0;
  memset(slot, 0, sizeof slot);
  for (int i = 0; i < ASYNC_N; i++) {
    char stream[64];
    snprintf(stream, sizeof stream, "patient-async-%d", i);
    svct_batch_make(&x[i], stream);
    cl_err err;
    cr_assert_eq(
        cl_repl_append_start(svct_F.repl, &x[i].b, NULL, async_done, &slot[i], &p[i], &err),
        CL_REPL_PENDING, "%s", err.msg);
  }
  /* a stream that exists, expected not to: refused as a conflict */
  svct_batch_make(&x[ASYNC_N], "patient-async-0");
  Clinlog__V1__StreamExpectation xe = CLINLOG__V1__STREAM_EXPECTATION__INIT, *xep = &xe;
  Clinlog__V1__ExpectedVersion xv = CLINLOG__V1__EXPECTED_VERSION__INIT;
  xv.kind = CLINLOG__V1__EXPECTED_VERSION__KIND__NO_STREAM;
  xe.stream = "patient-async-0";
  xe.expected = &xv;
  x[ASYNC_N].b.n_expectations = 1;
  x[ASYNC_N].b.expectations = &xep;
  cr_assert_eq(async_wait(ASYNC_N), ASYNC_N, "the first appends ended");
  cl_err err;
  cr_assert_eq(cl_repl_append_start(svct_F.repl, &x[ASYNC_N].b, NULL, async_done, &slot[ASYNC_N],
                                    &p[ASYNC_N], &err),
               CL_REPL_PENDING, "%s", err.msg);
  cr_assert_eq(async_wait(ASYNC_N + 1), ASYNC_N + 1, "the conflicting append ended");
  static uint64_t seqs[ASYNC_N];
  for (int i = 0; i < ASYNC_N; i++) {
    cr_assert_eq(slot[i].calls, 1, "append %d: done ran %d times", i, slot[i].calls);
    cr_assert(!pthread_equal(slot[i].thread, pthread_self()), "append %d: done on the caller", i);
    cl_append_result r;
    cr_assert_eq(cl_repl_append_end(p[i], &r, NULL, NULL, &err), 0, "append %d: %s", i, err.msg);
    cr_assert_eq(r.n, 1);
    cr_assert_eq(r.version[0], 1, "append %d: a new stream's first event", i);
    seqs[i] = r.seq[0];
    cl_append_result_free(&r);
  }
  qsort(seqs, ASYNC_N, sizeof seqs[0], cmp_u64);
  for (int i = 1; i < ASYNC_N; i++)
    cr_assert_neq(seqs[i], seqs[i - 1], "two appends at seq %llu", (unsigned long long)seqs[i]);
  cl_append_result r;
  cr_assert_eq(cl_repl_append_end(p[ASYNC_N], &r, NULL, NULL, &err), CL_ECONFLICT, "%s", err.msg);
  cr_assert_str_eq(r.conflict_stream, "patient-async-0");
  cr_assert_eq(r.conflict_current, 1);
  cl_append_result_free(&r);
  cr_assert_eq(slot[ASYNC_N].here, 0, "a refused append is not to be finished on the loop");
  /* one append alone: committed by itself, finished where done runs */
  svct_batch_make(&x[ASYNC_N + 1], "patient-async-alone");
  cr_assert_eq(cl_repl_append_start(svct_F.repl, &x[ASYNC_N + 1].b, NULL, async_done,
                                    &slot[ASYNC_N + 1], &p[ASYNC_N + 1], &err),
               CL_REPL_PENDING, "%s", err.msg);
  cr_assert_eq(async_wait(ASYNC_N + 2), ASYNC_N + 2, "the lone append ended");
  cr_assert_eq(slot[ASYNC_N + 1].here, 1, "a lone committed append may finish on the loop");
  cr_assert_eq(cl_repl_append_end(p[ASYNC_N + 1], &r, NULL, NULL, &err), 0, "%s", err.msg);
  cr_assert_eq(r.n, 1);
  cl_append_result_free(&r);
  /* nothing runs twice, later */
  struct timespec ts = {0, 100 * 1000000L};
  nanosleep(&ts, NULL);
  cr_assert_eq(async_wait(0), ASYNC_N + 2);
  for (int i = 0; i <= ASYNC_N + 1; i++)
    svct_batch_free(&x[i]);
}

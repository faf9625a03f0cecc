/* The audit trail of the request layer (adapters/service), under the real
 * gRPC server in process (service_fixture.h): every call, gRPC or HTTP, is
 * recorded once in the log before its answer leaves, by the node's own key;
 * nobody else can write to the trail. */
#include <criterion/criterion.h>
#include <jansson.h>
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
#include "query/audit/auditevent.h"
#include "store/event.h"
#include "tests/adapters/service_fixture.h"
#include "tests/support/testutil.h"

TestSuite(service_audit, .init = svct_setup, .fini = svct_teardown, .timeout = 120);

/* ------------------------------------------------------- audit trail */

/* The audit trail's records of one method, as the log has them now. */
typedef struct audit_seen {
  const char *method;
  int n;
  Clinlog__V1__Event *last; /* the newest, decoded */
  uint64_t last_seq;        /* its seq */
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
  a->last_seq = v->seq;
  return 0;
}

static audit_seen audit_of(int m) {
  audit_seen a = {.method = cl_method_name(m)};
  cl_err err;
  int code = cl_log_read_stream(svct_F.log, "$audit", 1, 0, 0, audit_ev, &a, &err);
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

Test(service_audit, every_call_is_recorded_once_before_its_answer) {
  cl_err err;
  audit_seen ap = audit_of(M_APPEND), rd = audit_of(M_READ), ge = audit_of(M_GET_EVENT),
             fs = audit_of(M_FHIR_SEARCH), hc = audit_of(M_HEALTH_CHECK);
  uint64_t seq = svct_append_one("patient-audited");
  const Clinlog__V1__AccessRecorded *r = one_more(&ap, M_APPEND);
  cr_assert_str_eq(r->action, "C");
  cr_assert_str_eq(r->outcome, "0");
  cr_assert_str_eq(r->subtype, "create");
  cr_assert_eq(r->count, 1);
  char what[64];
  snprintf(what, sizeof what, "seq:%llu-%llu", (unsigned long long)seq, (unsigned long long)seq);
  /* an append's record rides in its commit, right after its events, and
   * names them by position (preceding); readers see the seqs */
  char res[64];
  cr_assert_eq(r->preceding, 1, "the record follows its one event");
  cr_assert_eq(ap.last_seq, seq + 1);
  cr_assert_str_eq(cl_audit_resource(r, ap.last_seq, res, sizeof res), what);
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
  cr_assert_eq(cl_client_read(svct_F.c, &rr, &s, &err), 0);
  cr_assert_eq(svct_drain(s, 0), 0);
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
  cr_assert_eq(
      svct_unary(M_GET_EVENT, &gr.base, &clinlog__v1__recorded_event__descriptor, NULL, &st),
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
  cr_assert_eq(
      svct_unary(M_FHIR_SEARCH, &sq.base, &clinlog__v1__fhir_response__descriptor, NULL, NULL), 0);
  r = one_more(&fs, M_FHIR_SEARCH);
  cr_assert_str_eq(r->action, "E");
  cr_assert_str_eq(r->subtype, "search-type");
  cr_assert_str_eq(r->resource, "Observation");
  cr_assert_str_eq(r->query, "patient=Patient/audited,other&code=http://loinc.org|8867-4");
  cr_assert_eq(r->n_patients, 2);
  cr_assert_str_eq(r->patients[0], "audited");
  cr_assert_str_eq(r->patients[1], "other");

  /* a refusal: recorded, and no handler ran */
  svct_R.deny[M_FHIR_SEARCH] = 1;
  cr_assert_eq(
      svct_unary(M_FHIR_SEARCH, &sq.base, &clinlog__v1__fhir_response__descriptor, NULL, &st),
      CL_EDENIED);
  r = one_more(&fs, M_FHIR_SEARCH);
  cr_assert_str_eq(r->outcome, "4");
  cr_assert_str_eq(r->error, "CL_EDENIED");
  cr_assert(strstr(r->detail, "test policy"), "%s", r->detail);

  /* health checks are not: probes would flood the trail, and they read nothing */
  Grpc__Health__V1__HealthCheckRequest hr = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  cr_assert_eq(svct_unary(M_HEALTH_CHECK, &hr.base,
                          &grpc__health__v1__health_check_response__descriptor, NULL, NULL),
               0);
  audit_seen hc2 = audit_of(M_HEALTH_CHECK);
  cr_assert_eq(hc2.n, hc.n);
  audit_done(&hc2);

  /* the accounting of disclosures of the patient: the read and the two
   * searches that named it, as AuditEvents, oldest first */
  uint64_t head;
  cl_log_head(svct_F.log, &head, NULL);
  Clinlog__V1__Consistency cons = CLINLOG__V1__CONSISTENCY__INIT;
  cons.min_sequence = head;
  Clinlog__V1__AuditQueryRequest aq = CLINLOG__V1__AUDIT_QUERY_REQUEST__INIT;
  aq.patient = "audited";
  aq.consistency = &cons;
  Clinlog__V1__AuditQueryResponse *ar;
  cr_assert_eq(svct_unary(M_AUDIT_QUERY, &aq.base, &clinlog__v1__audit_query_response__descriptor,
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

Test(service_audit, an_http_call_is_recorded_before_its_answer) {
  int port;
  cl_http *h = svct_http_start(&port);
  audit_seen fr = audit_of(M_FHIR_READ);
  cr_assert_eq(svct_http_get(port, "/fhir/R4/Patient/nobody"), 404);
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

/* A write the node makes for a call under its own context (the FHIR REST
 * face's, cl_svc_append_for) carries the call's record in its commit,
 * right after its event, naming what the call names (not the seqs, which
 * go to the write's context); the same write again is a duplicate, which
 * carries nothing: its call is recorded after, as before. */
Test(service_audit, a_write_made_for_a_call_carries_its_record) {
  audit_seen fw = audit_of(M_FHIR_WRITE);
  cl_req_ctx call, wrc;
  cl_req_ctx_init(&call, M_FHIR_WRITE, "http");
  snprintf(call.request_id, sizeof call.request_id, "req-for-9");
  snprintf(call.audit_what, sizeof call.audit_what, "Observation/o-9");
  cl_req_ctx_add_patient(&call, "p-9");
  call.deadline_ms = cl_feed_now_ms() + 5000;
  cl_req_ctx_init(&wrc, M_FHIR_WRITE, "internal");
  wrc.deadline_ms = call.deadline_ms;
  svct_batch x;
  svct_batch_make(&x, "patient-p-9");
  cl_append_result r;
  cl_err err;
  cr_assert_eq(cl_svc_append_for(svct_F.svc, &wrc, &call, &x.b, 1, &r, NULL, &err), 0, "%s",
               err.msg);
  uint64_t seq = r.seq[0];
  cl_append_result_free(&r);
  cr_assert(call.recorded, "recorded with the write");
  cr_assert_str_eq(call.audit_what, "Observation/o-9");
  char want[64], res[64];
  snprintf(want, sizeof want, "seq:%llu-%llu", (unsigned long long)seq, (unsigned long long)seq);
  cr_assert_str_eq(wrc.audit_what, want, "the write's seqs are its own context's");
  const Clinlog__V1__AccessRecorded *a = one_more(&fw, M_FHIR_WRITE);
  cr_assert_eq(fw.last_seq, seq + 1, "right after the event");
  cr_assert_eq(a->preceding, 1);
  cr_assert_eq(a->count, 1);
  cr_assert_str_eq(a->resource, "Observation/o-9");
  cr_assert_str_eq(cl_audit_resource(a, fw.last_seq, res, sizeof res), "Observation/o-9");
  cr_assert_eq(a->n_patients, 1);
  cr_assert_str_eq(a->patients[0], "p-9");
  cr_assert_str_eq(a->outcome, "0");
  cr_assert_str_eq(a->transport, "http");
  cr_assert_str_eq(a->request_id, "req-for-9");
  /* recording the call again (the codec does, after its handler) is a no-op */
  cr_assert_eq(cl_svc_record(svct_F.svc, &call, 0, "", &err), 0);

  /* the same write again: nothing new, so no record with it */
  cl_req_ctx again;
  cl_req_ctx_init(&again, M_FHIR_WRITE, "http");
  snprintf(again.audit_what, sizeof again.audit_what, "Observation/o-9");
  again.deadline_ms = cl_feed_now_ms() + 5000;
  int code = cl_svc_append_for(svct_F.svc, &wrc, &again, &x.b, 1, &r, NULL, &err);
  cr_assert(code == 0 || code == CL_EDUPLICATE, "%s", err.msg);
  if (code == 0) {
    cr_assert(r.duplicate);
    cl_append_result_free(&r);
  }
  cr_assert(!again.recorded);
  audit_seen none = audit_of(M_FHIR_WRITE);
  cr_assert_eq(none.n, fw.n, "a duplicate carries no record");
  audit_done(&none);
  cr_assert_eq(cl_svc_record(svct_F.svc, &again, 0, "", &err), 0, "%s", err.msg);
  a = one_more(&fw, M_FHIR_WRITE);
  cr_assert_eq(a->preceding, 0, "written after");
  cr_assert_str_eq(a->resource, "Observation/o-9");
  svct_batch_free(&x);
  audit_done(&fw);
}

/* The trail holds nothing but the node's records: another event in
 * $audit is refused (and that refusal is recorded). */
Test(service_audit, nobody_but_the_node_writes_the_trail) {
  uint64_t before, after;
  cl_log_head(svct_F.log, &before, NULL);
  svct_batch x;
  svct_batch_make(&x, "$audit");
  Clinlog__V1__AppendResponse *resp;
  cl_client_status st;
  cl_err err;
  cr_assert_eq(cl_client_append(svct_F.c, &x.b, &resp, &st, &err), CL_EMALFORMED);
  cr_assert(strstr(st.details, "$audit holds AccessRecorded only"), "%s", st.details);
  svct_batch_free(&x);
  cl_log_head(svct_F.log, &after, NULL);
  /* the refused call has its own record, nothing else was written */
  cr_assert_eq(after, before + 1);
}

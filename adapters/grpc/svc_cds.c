/* Handlers of clinlog.v1.Cds (proto/clinlog/v1/cds.proto, docs/cds.md):
 *
 *   CheckOrder   draft orders checked against the patient's state in the
 *                cds projection (query/cds/order.h); writes nothing
 *   Alerts       the IssueDetected events of the log from after_seq on
 *                (with include_outcomes, their AlertAcknowledged and
 *                AlertOverridden too): catch-up, then live, woken by the
 *                commit feed (srv_wait) as Log.Subscribe is; only those
 *                records are decrypted, and a patient filter compares
 *                stream tags first
 *   Acknowledge  an AlertAcknowledged / AlertOverridden in the alert's
 *   Override     patient stream, written by the node for the caller
 *                (adapters/service/cds_outcome.h), through the writer
 *
 * Each runs on a worker after the request layer admitted the call (the
 * policy, the audit record naming the patients; the record is committed
 * before the first byte of an answer leaves). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapters/grpc/server_int.h"
#include "adapters/grpc/services.h"
#include "adapters/grpc/svc_int.h"
#include "adapters/service/cds_outcome.h"
#include "clinlog/v1/cds.pb-c.h"
#include "clinlog/v1/event.pb-c.h"
#include "query/cds/order.h"
#include "query/cds/proj.h"

#define ALERT_BATCH 64     /* alerts buffered per step */
#define SCAN_EVENTS 4096   /* log records scanned per step */
#define MAX_PATIENT_IDS 64 /* patient filters of one Alerts call */
#define SCAN_SLICE_MS 200  /* scanning without an alert to send: then yield the worker */

static cl_log *log_of(srv_call *c) { return cl_svc_log(srv_svc(c)); }

static void finish_invalid(srv_call *c, const char *msg) {
  cl_err err;
  cl_err_set(&err, CL_EINVAL, "%s", msg);
  srv_finish_err(c, &err);
}

/* ----------------------------------------------------------- CheckOrder */

static void check_order_step(srv_call *c, int ok) {
  const Clinlog__V1__CheckOrderRequest *req = (const Clinlog__V1__CheckOrderRequest *)c->req;
  cl_proj *p = svc_proj_ready(c, CL_CDS_PROJ_NAME, ok, req->consistency, check_order_step);
  if (!p)
    return;
  cl_err err;
  cl_err_clear(&err);
  const cl_kb *kb = cl_svc_kb(srv_svc(c));
  if (!kb) {
    cl_err_set(&err, CL_EUNAVAILABLE, "this node has no decision-support knowledge base");
    srv_finish_err(c, &err);
    return;
  }
  cl_cds_patient *st = NULL;
  uint64_t pos = 0;
  uint8_t *buf = NULL;
  size_t n = 0, nf = 0;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t now = (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
  int rc = cl_cds_patient_load(p, log_of(c), req->patient_id, &st, &pos, &err);
  if (rc == 0)
    rc = cl_cds_order_check(kb, st, req, now, pos, &buf, &n, &nf, &err);
  cl_cds_patient_free(st);
  if (rc) {
    srv_finish_err(c, &err);
    return;
  }
  c->rctx.audit_count = nf;
  Clinlog__V1__CheckOrderResponse *resp = clinlog__v1__check_order_response__unpack(NULL, n, buf);
  free(buf);
  if (!resp) {
    srv_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
    return;
  }
  srv_finish(c, GRPC_STATUS_OK, "", &resp->base); /* packs before returning */
  clinlog__v1__check_order_response__free_unpacked(resp, NULL);
}

static void svc_check_order(srv_call *c, int ok) {
  (void)ok;
  cl_err err;
  cl_err_clear(&err);
  /* bad input is refused before anything is read */
  if (cl_cds_order_validate((const Clinlog__V1__CheckOrderRequest *)c->req, &err) != 0) {
    srv_finish_err(c, &err);
    return;
  }
  if (svc_proj_begin(c) == 0)
    check_order_step(c, 1);
}

/* --------------------------------------------------------------- Alerts */

typedef struct alerts {
  const Clinlog__V1__AlertsRequest *req; /* the call's (c->req) */
  uint8_t (*tags)[32];                   /* the patient filters' stream tags */
  size_t ntags;
  uint64_t next; /* next seq to scan */
  grpc_byte_buffer *bb[ALERT_BATCH];
  size_t n, pos;
  cl_log *log;
} alerts;

static void alerts_clear(alerts *a) {
  for (size_t i = a->pos; i < a->n; i++)
    grpc_byte_buffer_destroy(a->bb[i]);
  a->n = a->pos = 0;
}

static void alerts_free(void *p) {
  alerts *a = p;
  alerts_clear(a);
  free(a->tags);
  free(a);
}

static int wanted(const alerts *a, const Clinlog__V1__IssueDetected *is) {
  if (a->req->min_severity && (int)is->severity < (int)a->req->min_severity)
    return 0;
  if (!a->req->n_kinds)
    return 1;
  for (size_t i = 0; i < a->req->n_kinds; i++)
    if ((int)a->req->kinds[i] == (int)is->kind)
      return 1;
  return 0;
}

/* Fills *o (its strings views into the event) and returns it. */
static Clinlog__V1__AlertOutcome *outcome_set(Clinlog__V1__AlertOutcome *o, int action,
                                              char *issue_id, const Clinlog__V1__Reference *by,
                                              Clinlog__V1__CodeableConcept *reason) {
  o->action = action;
  o->issue_id = issue_id;
  o->by = by ? by->principal_id : "";
  o->reason = reason;
  return o;
}

/* Packs the Alert of one IssueDetected, AlertAcknowledged or
 * AlertOverridden (ev) at view v into the buffer. 0, or CL_ENOMEM (the
 * stream must end: skipping the alert would leave a gap). */
static int alert_add(alerts *a, const cl_event_view *v, const Clinlog__V1__Event *ev, cl_err *err) {
  Clinlog__V1__Alert al = CLINLOG__V1__ALERT__INIT;
  Clinlog__V1__AlertOutcome out = CLINLOG__V1__ALERT_OUTCOME__INIT;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  ProtobufCBinaryData ids[CL_CDS_MAX_IMPLICATED * 4];
  const Clinlog__V1__IssueDetected *is = NULL;
  size_t nid = 0;
  if (ev->body_case == CLINLOG__V1__EVENT__BODY_ISSUE_DETECTED) {
    is = ev->issue_detected;
    for (size_t i = 0; i < is->n_implicated && nid < sizeof ids / sizeof ids[0]; i++)
      if (is->implicated[i]->event_id.len == 16)
        ids[nid++] = is->implicated[i]->event_id;
  } else if (ev->body_case == CLINLOG__V1__EVENT__BODY_ALERT_ACKNOWLEDGED) {
    const Clinlog__V1__AlertAcknowledged *k = ev->alert_acknowledged;
    al.outcome = outcome_set(&out, CLINLOG__V1__ALERT_ACTION__ALERT_ACTION_ACKNOWLEDGED,
                             k->issue_id, k->acknowledged_by, k->reason);
  } else {
    const Clinlog__V1__AlertOverridden *o = ev->alert_overridden;
    al.outcome = outcome_set(&out, CLINLOG__V1__ALERT_ACTION__ALERT_ACTION_OVERRIDDEN, o->issue_id,
                             o->overridden_by, o->reason);
  }
  ts.seconds = v->committed_at_ns / 1000000000;
  ts.nanos = (int32_t)(v->committed_at_ns % 1000000000);
  al.seq = v->seq;
  al.event_id = (ProtobufCBinaryData){16, (uint8_t *)v->event_id};
  al.stream = ev->stream;
  al.patient_id = ev->stream + (strncmp(ev->stream, "patient-", 8) ? 0 : 8);
  al.committed_at = &ts;
  al.issue = (Clinlog__V1__IssueDetected *)is;
  al.n_implicated_event_ids = nid;
  al.implicated_event_ids = ids;
  grpc_byte_buffer *bb = cl_grpc_pack(&al.base);
  if (!bb)
    return cl_err_set(err, CL_ENOMEM, "out of memory packing the alert at seq %llu",
                      (unsigned long long)v->seq);
  a->bb[a->n++] = bb;
  return 0;
}

/* Is an event of this type sent (before its patient and content are known)? */
static int type_wanted(const alerts *a, uint32_t type) {
  return type == CLINLOG__V1__EVENT__BODY_ISSUE_DETECTED ||
         (a->req->include_outcomes && (type == CLINLOG__V1__EVENT__BODY_ALERT_ACKNOWLEDGED ||
                                       type == CLINLOG__V1__EVENT__BODY_ALERT_OVERRIDDEN));
}

static int alerts_cb(void *ctx, const cl_event_view *v, cl_err *err) {
  alerts *a = ctx;
  a->next = v->seq + 1;
  if (v->erased || !type_wanted(a, v->event_type))
    return 0;
  if (a->ntags) {
    size_t i = 0;
    while (i < a->ntags && memcmp(a->tags[i], v->stream_tag, 32))
      i++;
    if (i == a->ntags)
      return 0;
  }
  uint8_t *plain;
  size_t n;
  int rc = cl_log_open_event(a->log, v, &plain, &n, err);
  if (rc == CL_EERASED)
    return 0;
  if (rc)
    return rc;
  Clinlog__V1__Event *ev = clinlog__v1__event__unpack(NULL, n, plain);
  cl_log_event_free(plain, n);
  if (!ev) /* never skipped: a resume must not find a gap */
    return cl_err_set(err, CL_ECORRUPT, "the event at seq %llu does not decode",
                      (unsigned long long)v->seq);
  rc = 0;
  if (type_wanted(a, (uint32_t)ev->body_case) &&
      (ev->body_case != CLINLOG__V1__EVENT__BODY_ISSUE_DETECTED || wanted(a, ev->issue_detected)))
    rc = alert_add(a, v, ev, err);
  clinlog__v1__event__free_unpacked(ev, NULL);
  return rc ? rc : a->n == ALERT_BATCH;
}

static void alerts_step(srv_call *c, int ok) {
  alerts *a = c->st;
  if (!ok || srv_cancelled(c)) {
    srv_finish(c, GRPC_STATUS_CANCELLED, "cancelled", NULL);
    return;
  }
  if (srv_shutting_down(c)) {
    char msg[160];
    snprintf(msg, sizeof msg,
             "server is shutting down; resume with after_seq = the last Alert.seq received "
             "(scanned up to %" PRIu64 ")",
             a->next - 1);
    srv_finish(c, GRPC_STATUS_UNAVAILABLE, msg, NULL);
    return;
  }
  int64_t began = srv_now_ms();
  for (;;) {
    if (a->pos < a->n) {
      grpc_byte_buffer *bb = a->bb[a->pos++];
      srv_send_then(c, bb, alerts_step, a->pos < a->n);
      return;
    }
    alerts_clear(a);
    uint64_t size;
    cl_log_head(a->log, &size, NULL);
    if (a->next > size) { /* caught up: wait for the next commit */
      srv_wait(c, srv_now_ms() + 1000, alerts_step);
      return;
    }
    cl_err err;
    cl_err_clear(&err);
    uint64_t before = a->next;
    if (cl_log_scan(a->log, a->next, SCAN_EVENTS, alerts_cb, a, &err) < 0) {
      srv_finish_err(c, &err);
      return;
    }
    if (a->next == before) { /* nothing readable yet */
      srv_wait(c, srv_now_ms() + 1000, alerts_step);
      return;
    }
    if (!a->n && srv_cancelled(c)) { /* a long catch-up without alerts */
      srv_finish(c, GRPC_STATUS_CANCELLED, "cancelled", NULL);
      return;
    }
    if (!a->n && srv_now_ms() - began >= SCAN_SLICE_MS) {
      /* a long catch-up without alerts: leave the worker to other calls
       * for a tick (the ticker or the next commit runs this again) */
      srv_wait(c, srv_now_ms(), alerts_step);
      return;
    }
  }
}

static int alerts_request_ok(srv_call *c, const Clinlog__V1__AlertsRequest *req) {
  char msg[200];
  if ((int)req->min_severity < 0 ||
      (int)req->min_severity > CLINLOG__V1__ISSUE_SEVERITY__ISSUE_SEVERITY_HIGH) {
    finish_invalid(c, "min_severity: unknown value");
    return 0;
  }
  for (size_t i = 0; i < req->n_kinds; i++)
    if ((int)req->kinds[i] <= 0 ||
        (int)req->kinds[i] > CLINLOG__V1__ISSUE_KIND__ISSUE_KIND_BCMA_MISMATCH) {
      snprintf(msg, sizeof msg, "kinds[%zu]: unknown value %d", i, (int)req->kinds[i]);
      finish_invalid(c, msg);
      return 0;
    }
  if (req->n_patient_ids > MAX_PATIENT_IDS) {
    finish_invalid(c, "patient_ids: more than 64");
    return 0;
  }
  for (size_t i = 0; i < req->n_patient_ids; i++)
    if (!req->patient_ids[i][0] || strlen(req->patient_ids[i]) > 100) {
      snprintf(msg, sizeof msg, "patient_ids[%zu]: empty or longer than 100 bytes", i);
      finish_invalid(c, msg);
      return 0;
    }
  return 1;
}

static void svc_alerts(srv_call *c, int ok) {
  (void)ok;
  const Clinlog__V1__AlertsRequest *req = (const Clinlog__V1__AlertsRequest *)c->req;
  if (!alerts_request_ok(c, req))
    return;
  uint64_t size;
  cl_log_head(log_of(c), &size, NULL);
  if (req->after_seq > size) {
    char msg[160];
    snprintf(msg, sizeof msg,
             "after_seq %" PRIu64 " is beyond the end of the log (%" PRIu64 " events)",
             req->after_seq, size);
    srv_finish(c, GRPC_STATUS_OUT_OF_RANGE, msg, NULL);
    return;
  }
  alerts *a = calloc(1, sizeof *a);
  if (!a || (req->n_patient_ids && !(a->tags = calloc(req->n_patient_ids, sizeof *a->tags)))) {
    free(a);
    srv_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
    return;
  }
  a->req = req;
  a->log = log_of(c);
  a->next = req->after_seq + 1;
  c->st = a;
  c->st_free = alerts_free;
  for (size_t i = 0; i < req->n_patient_ids; i++) {
    char stream[128];
    cl_err err;
    snprintf(stream, sizeof stream, "patient-%s", req->patient_ids[i]);
    if (cl_log_stream_tag(a->log, stream, a->tags[a->ntags], &err) != 0) {
      srv_finish_err(c, &err);
      return;
    }
    a->ntags++;
  }
  alerts_step(c, 1);
}

/* ------------------------------------------------- Acknowledge, Override */

static void alert_action(srv_call *c, const char *alert_id,
                         const Clinlog__V1__CodeableConcept *reason, int action) {
  cl_err err;
  cl_err_clear(&err);
  cl_cds_alert_ref a;
  int rc = cl_svc_cds_alert(srv_svc(c), "alert_id", alert_id, &a, &err);
  if (rc) {
    srv_finish_err(c, &err);
    return;
  }
  const char *patient = a.stream + (strncmp(a.stream, "patient-", 8) ? 0 : 8);
  cl_req_ctx_add_patient(&c->rctx, patient);
  cl_cds_outcome out;
  rc = cl_svc_cds_record(srv_svc(c), &c->rctx, c->rctx.method, &a, action, reason, &out, &err);
  if (rc) { /* CL_ENOTLEADER included: a follower that cannot forward */
    srv_finish_err(c, &err);
    return;
  }
  if (out.seq)
    snprintf(c->rctx.audit_what, sizeof c->rctx.audit_what, "DetectedIssue/%s seq:%" PRIu64,
             a.issue_id, out.seq);
  c->rctx.audit_count = out.duplicate ? 0 : 1;
  Clinlog__V1__AlertActionResponse resp = CLINLOG__V1__ALERT_ACTION_RESPONSE__INIT;
  resp.seq = out.seq;
  resp.event_id = (ProtobufCBinaryData){16, out.event_id};
  resp.duplicate = out.duplicate;
  resp.patient_id = (char *)patient;
  srv_finish(c, GRPC_STATUS_OK, "", &resp.base);
}

/* A reason with something in it: a coding with a code, or text. */
static int reason_given(const Clinlog__V1__CodeableConcept *r) {
  if (!r)
    return 0;
  if (r->text[0])
    return 1;
  for (size_t i = 0; i < r->n_coding; i++)
    if (r->coding[i]->code[0])
      return 1;
  return 0;
}

static void svc_acknowledge(srv_call *c, int ok) {
  (void)ok;
  const Clinlog__V1__AcknowledgeAlertRequest *req =
      (const Clinlog__V1__AcknowledgeAlertRequest *)c->req;
  alert_action(c, req->alert_id, reason_given(req->reason) ? req->reason : NULL,
               CL_CDS_ACKNOWLEDGE);
}

static void svc_override(srv_call *c, int ok) {
  (void)ok;
  const Clinlog__V1__OverrideAlertRequest *req = (const Clinlog__V1__OverrideAlertRequest *)c->req;
  if (!reason_given(req->reason)) {
    finish_invalid(c, "reason: required (a coded reason or text)");
    return;
  }
  alert_action(c, req->alert_id, req->reason, CL_CDS_OVERRIDE);
}

/* ------------------------------------------------------------ table */

static const cl_grpc_method_def CDS_METHODS[] = {
    {M_CDS_CHECK_ORDER, &clinlog__v1__check_order_request__descriptor, svc_check_order},
    {M_CDS_ALERTS, &clinlog__v1__alerts_request__descriptor, svc_alerts},
    {M_CDS_ACKNOWLEDGE, &clinlog__v1__acknowledge_alert_request__descriptor, svc_acknowledge},
    {M_CDS_OVERRIDE, &clinlog__v1__override_alert_request__descriptor, svc_override},
};

const cl_grpc_service cl_grpc_cds_service = {
    "clinlog.v1.Cds", CDS_METHODS, sizeof CDS_METHODS / sizeof CDS_METHODS[0], NULL, NULL};

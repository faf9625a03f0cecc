/* Alert outcomes recorded in the patient's stream; see cds_outcome.h. */
#include "adapters/service/cds_outcome.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "clinlog/v1/event.pb-c.h"
#include "store/event.h"
#include "store/keys.h"
#include "store/logkey.h"

static int unhex(const char *s, uint8_t out[16]) {
  if (strlen(s) != 32)
    return -1;
  for (size_t i = 0; i < 16; i++) {
    unsigned v = 0;
    for (size_t j = 0; j < 2; j++) {
      char c = s[2 * i + j];
      unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                   : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                   : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                          : 16u;
      if (d == 16)
        return -1;
      v = v * 16 + d;
    }
    out[i] = (uint8_t)v;
  }
  return 0;
}

int cl_cds_alert_ref_init(cl_cds_alert_ref *out, const char *issue_id, const char *stream,
                          int in_log) {
  memset(out, 0, sizeof *out);
  if (!issue_id || unhex(issue_id, out->event_id) != 0 || strlen(stream) >= sizeof out->stream)
    return -1;
  cl_hex(out->event_id, 16, out->issue_id);
  snprintf(out->stream, sizeof out->stream, "%s", stream);
  out->in_log = in_log;
  return 0;
}

typedef struct found {
  cl_cds_alert_ref *ref;
  int ok;
} found;

static int alert_cb(void *ctx, const cl_event_view *v, cl_err *err) {
  (void)err;
  found *f = ctx;
  if (v->erased || !v->event || v->event_type != CLINLOG__V1__EVENT__BODY_ISSUE_DETECTED)
    return 1;
  Clinlog__V1__Event *ev = clinlog__v1__event__unpack(NULL, v->event_len, v->event);
  if (ev && ev->body_case == CLINLOG__V1__EVENT__BODY_ISSUE_DETECTED) {
    snprintf(f->ref->stream, sizeof f->ref->stream, "%s", ev->stream);
    f->ok = 1;
  }
  if (ev)
    clinlog__v1__event__free_unpacked(ev, NULL);
  return 1;
}

int cl_svc_cds_alert(cl_svc *s, const char *field, const char *alert_id, cl_cds_alert_ref *out,
                     cl_err *err) {
  if (cl_cds_alert_ref_init(out, alert_id, "", 1) != 0)
    return cl_err_set(err, CL_EINVAL, "%s: an alert's issue id is 32 hex digits", field);
  found f = {out, 0};
  int rc = cl_log_get_event(cl_svc_log(s), out->event_id, alert_cb, &f, err);
  if (rc && rc != CL_ENOTFOUND)
    return rc;
  if (rc == CL_ENOTFOUND || !f.ok)
    return cl_err_set(err, CL_ENOTFOUND, "%s: no alert %s (no IssueDetected with that id)", field,
                      out->issue_id);
  return 0;
}

/* The outcome's event id: the same alert, caller and action give the same id. */
static void outcome_id(const cl_cds_alert_ref *a, int action, const char *principal,
                       uint8_t id[16]) {
  crypto_generichash_state h;
  uint8_t act = (uint8_t)action;
  crypto_generichash_init(&h, (const uint8_t *)"cds-outcome1", 12, 16);
  crypto_generichash_update(&h, a->event_id, 16);
  crypto_generichash_update(&h, &act, 1);
  crypto_generichash_update(&h, (const uint8_t *)principal, strlen(principal) + 1);
  crypto_generichash_final(&h, id, 16);
}

typedef struct seq_of {
  uint64_t seq;
} seq_of;

static int seq_cb(void *ctx, const cl_event_view *v, cl_err *err) {
  (void)err;
  ((seq_of *)ctx)->seq = v->seq;
  return 1;
}

/* 1 and *seq if the event is in this node's log already. */
static int recorded(cl_svc *s, const uint8_t id[16], uint64_t *seq) {
  seq_of so = {0};
  cl_err e;
  cl_err_clear(&e);
  if (cl_log_get_event(cl_svc_log(s), id, seq_cb, &so, &e) != 0)
    return 0;
  *seq = so.seq;
  return 1;
}

int cl_svc_cds_record(cl_svc *s, const cl_req_ctx *caller, int method, const cl_cds_alert_ref *a,
                      int action, const Clinlog__V1__CodeableConcept *reason, cl_cds_outcome *out,
                      cl_err *err) {
  memset(out, 0, sizeof *out);
  outcome_id(a, action, caller->principal, out->event_id);
  if (recorded(s, out->event_id, &out->seq)) {
    out->duplicate = 1;
    return 0;
  }
  Clinlog__V1__Reference by = CLINLOG__V1__REFERENCE__INIT;
  by.principal_id = (char *)caller->principal;
  Clinlog__V1__AlertAcknowledged ack = CLINLOG__V1__ALERT_ACKNOWLEDGED__INIT;
  Clinlog__V1__AlertOverridden ovr = CLINLOG__V1__ALERT_OVERRIDDEN__INIT;
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  ProtobufCBinaryData issue_ev = {a->in_log ? 16 : 0, a->in_log ? (uint8_t *)a->event_id : NULL};
  if (action == CL_CDS_ACKNOWLEDGE) {
    ack.issue_id = (char *)a->issue_id;
    ack.reason = (Clinlog__V1__CodeableConcept *)reason;
    ack.acknowledged_by = &by;
    ack.issue_event_id = issue_ev;
    ev.body_case = CLINLOG__V1__EVENT__BODY_ALERT_ACKNOWLEDGED;
    ev.alert_acknowledged = &ack;
  } else {
    ovr.issue_id = (char *)a->issue_id;
    ovr.reason = (Clinlog__V1__CodeableConcept *)reason;
    ovr.overridden_by = &by;
    ovr.issue_event_id = issue_ev;
    ev.body_case = CLINLOG__V1__EVENT__BODY_ALERT_OVERRIDDEN;
    ev.alert_overridden = &ovr;
  }
  ev.event_id = (ProtobufCBinaryData){16, out->event_id};
  ev.causation_id = issue_ev;
  cl_node_batch nb;
  int rc = cl_log_node_batch(cl_svc_log(s), &ev, a->stream, &nb, err);
  if (rc)
    return rc;
  /* the node's own write (signed by the log key, not the caller's): the
   * caller's right to report was checked when its call was admitted */
  cl_req_ctx wrc;
  cl_req_ctx_init(&wrc, method, "internal");
  wrc.deadline_ms = caller->deadline_ms;
  cl_append_result ar;
  rc = cl_svc_append(s, &wrc, &nb.b, 1, &ar, NULL, err);
  if (rc == 0) {
    out->seq = ar.n ? ar.seq[0] : 0;
    out->duplicate = ar.duplicate;
    cl_append_result_free(&ar);
  } else if (rc == CL_ECONFLICT) {
    cl_append_result_free(&ar);
  } else if (rc == CL_EDUPLICATE) {
    /* the same report, made meanwhile with other bytes (another time) */
    out->duplicate = 1;
    if (!recorded(s, out->event_id, &out->seq))
      out->seq = 0;
    rc = 0;
  }
  cl_node_batch_free(&nb);
  return rc;
}

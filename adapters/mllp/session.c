/* One MLLP connection's protocol (session.h): frames to messages, each
 * through the request layer and the writer, each answered by its ACK.
 *
 * Invariant: exactly one ACK per frame, in frame order, and an AA only
 * after cl_svc_append returned the batch committed (or committed before:
 * a duplicate) and its audit record is committed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/hl7v2/ack.h"
#include "adapters/hl7v2/map.h"
#include "adapters/hl7v2/mllp.h"
#include "adapters/mllp/session.h"
#include "store/alloc.h"
#include "store/feed.h"

struct cl_mllp_session {
  cl_mllp_conf c;
  char peer[128];
  char cert[65]; /* the peer's client certificate fingerprint, "" if none */
  cl_mllp *d;
  cl_mllp_counts n;
  cl_req_ctx rc; /* the current message's (large: kept off the stack) */
  /* during cl_mllp_session_feed */
  cl_mllp_send_fn send;
  void *send_ctx;
  int close;
  int fail;
  cl_err *err;
};

int cl_mllp_session_new(const cl_mllp_conf *c, const char *peer, cl_mllp_session **out,
                        cl_err *err) {
  if (!c || !c->svc || !c->signer || !out)
    return cl_err_set(err, CL_EINVAL, "mllp session: no service or key");
  cl_mllp_session *s = calloc(1, sizeof *s);
  if (!s)
    return cl_err_set(err, CL_ENOMEM, "mllp session: out of memory");
  s->c = *c;
  if (!s->c.max_frame)
    s->c.max_frame = CL_MLLP_LISTEN_DEFAULT_MAX_FRAME;
  if (s->c.commit_ms <= 0)
    s->c.commit_ms = CL_MLLP_DEFAULT_COMMIT_MS;
  snprintf(s->peer, sizeof s->peer, "%s", peer ? peer : "");
  int code = cl_mllp_new(s->c.max_frame, &s->d, err);
  if (code) {
    free(s);
    return code;
  }
  *out = s;
  return 0;
}

void cl_mllp_session_free(cl_mllp_session *s) {
  if (!s)
    return;
  cl_mllp_free(s->d);
  free(s);
}

void cl_mllp_session_set_cert(cl_mllp_session *s, const char *fingerprint) {
  snprintf(s->cert, sizeof s->cert, "%s", fingerprint ? fingerprint : "");
}

int cl_mllp_session_pending(const cl_mllp_session *s) { return cl_mllp_pending(s->d); }

const cl_mllp_counts *cl_mllp_session_counts(const cl_mllp_session *s) { return &s->n; }

/* ---- one message ---- */

/* What happened to one frame. */
typedef struct outcome {
  int code;  /* 0 or the CL_E* the call ended with */
  int has_e; /* e is the ERR to send */
  cl_hl7_error e;
  const char *ack_code; /* NULL: as the ACK builder decides from e */
  int duplicate;
  char detail[CL_ERR_MSG_SIZE]; /* for the audit record and the finished hook */
} outcome;

static void fail_with(outcome *o, int code, int hl7, const char *ack_code, const char *reason) {
  o->code = code;
  o->has_e = 1;
  memset(&o->e, 0, sizeof o->e);
  o->e.code = hl7;
  snprintf(o->e.reason, sizeof o->e.reason, "%.*s", (int)sizeof o->e.reason - 1, reason);
  o->ack_code = ack_code;
  snprintf(o->detail, sizeof o->detail, "%.*s", (int)sizeof o->detail - 1, reason);
}

/* Printable ASCII of s, at most 40 characters (a control id in a log line). */
static void safe(const char *s, char *out, size_t outn) {
  size_t k = 0;
  for (; s && *s && k + 1 < outn && k < 40; s++)
    out[k++] = *s > 0x20 && *s < 0x7f ? *s : '?';
  out[k] = '\0';
  if (!k)
    snprintf(out, outn, "-");
}

/* The adapter's principal (principal, pn bytes) and roles (roles, rn),
 * from the keyring as of now. */
static int identity(cl_mllp_session *s, char *principal, size_t pn, char *roles, size_t rn,
                    outcome *o) {
  int revoked = 0;
  if (cl_log_key_info(cl_svc_log(s->c.svc), s->c.signer->pk, principal, pn, roles, rn, &revoked) !=
      0) {
    principal[0] = roles[0] = '\0';
    fail_with(o, CL_EUNKNOWNKEY, CL_HL7_INTERNAL, "AE",
              "the receiver's signing key (--mllp-key) is not registered to a principal yet");
    return -1;
  }
  if (revoked) {
    principal[0] = roles[0] = '\0';
    fail_with(o, CL_EDENIED, CL_HL7_INTERNAL, "AE",
              "the receiver's signing key (--mllp-key) is revoked");
    return -1;
  }
  return 0;
}

/* Signs and appends the mapping through the writer; fills o. */
static void commit(cl_mllp_session *s, const cl_hl7_msg *m, const cl_hl7_mapped *r, outcome *o) {
  cl_hl7_signed sb;
  cl_err err;
  cl_err_clear(&err);
  int code = cl_hl7_sign_for(r, s->c.signer, cl_svc_log(s->c.svc), &sb, &err);
  if (code) {
    fail_with(o, code, CL_HL7_INTERNAL, "AE", "out of memory signing the events; resend later");
    return;
  }
  cl_append_result ar;
  cl_svc_route route;
  code = cl_svc_append_recorded(s->c.svc, &s->rc, &sb.batch, 1, &ar, &route, &err);
  cl_hl7_signed_free(&sb);
  if (code == 0) {
    o->duplicate = ar.duplicate;
    cl_append_result_free(&ar);
    return;
  }
  char why[300];
  if (code == CL_EDUPLICATE) {
    cl_hl7_error_reused_id(cl_hl7_header_of(m), &o->e, why, sizeof why);
    o->code = code;
    o->has_e = 1;
    o->ack_code = "AR";
    snprintf(o->detail, sizeof o->detail, "%s", o->e.reason);
    return;
  }
  if (code == CL_ECONFLICT)
    cl_append_result_free(&ar);
  /* err.msg may name a stream (a patient): not for the ACK nor the log */
  if (code == CL_EDENIED || code == CL_EUNAUTH) {
    snprintf(why, sizeof why, "not allowed: %s", err.msg);
    fail_with(o, code, CL_HL7_INTERNAL, "AR", why);
    return;
  }
  snprintf(why, sizeof why, "not committed (%s%s%s); nothing was written, resend later",
           cl_errname(code), route.leader_api[0] ? ", leader " : "", route.leader_api);
  fail_with(o, code, CL_HL7_INTERNAL, "AE", why);
}

/* MSA-1 of an ACK the builder made ("AA", "AE", "AR"). */
static const char *ack_code_of(const char *ack) {
  const char *msa = strstr(ack, "\rMSA");
  if (msa && msa[4] && !strncmp(msa + 5, "AA", 2))
    return "AA";
  if (msa && msa[4] && !strncmp(msa + 5, "AE", 2))
    return "AE";
  return "AR";
}

/* Handles one frame (p, n; oversized: p empty, n the limit, at offset). */
static int handle(cl_mllp_session *s, const uint8_t *p, size_t n, int oversized, uint64_t offset) {
  outcome o = {0};
  cl_hl7_msg *m = NULL, *hm = NULL;
  cl_hl7_mapped *r = NULL;
  cl_err err;
  cl_err_clear(&err);
  cl_req_ctx *rc = &s->rc;
  cl_req_ctx_init(rc, M_MLLP_MESSAGE, "mllp");
  snprintf(rc->peer, sizeof rc->peer, "%s", s->peer);
  rc->deadline_ms = cl_feed_now_ms() + s->c.commit_ms;
  s->n.messages++;
  char adapter[128];
  int known = identity(s, adapter, sizeof adapter, rc->roles, sizeof rc->roles, &o) == 0;
  if (s->cert[0]) { /* the sending system, by its certificate: the request layer says who */
    rc->auth = CL_AUTH_MTLS;
    memcpy(rc->cert_fingerprint, s->cert, sizeof rc->cert_fingerprint);
    rc->roles[0] = '\0';
  } else { /* the adapter, as its key's principal */
    rc->auth = CL_AUTH_KEY;
    snprintf(rc->principal, sizeof rc->principal, "%s", adapter);
  }
  if (oversized) {
    char why[160];
    snprintf(why, sizeof why, "MLLP frame at byte %llu exceeds %zu bytes; connection closed",
             (unsigned long long)offset, n);
    fail_with(&o, CL_ETOOBIG, CL_HL7_INTERNAL, "AR", why);
    p = (const uint8_t *)"";
    n = 0;
  } else if (cl_hl7_parse(p, n, NULL, &m, &o.e, &err) != 0) {
    o.code = err.code;
    o.has_e = 1;
    o.ack_code = NULL; /* the ACK builder's rule: AR for MSH, AE otherwise */
    snprintf(o.detail, sizeof o.detail, "%s", o.e.reason);
  } else if (known) {
    cl_hl7_map_opts mo = {.principal_id = adapter, .default_offset_min = s->c.default_offset_min};
    if (cl_hl7_map(m, &mo, &r, &o.e, &err) != 0) {
      o.code = err.code;
      o.has_e = 1;
      snprintf(o.detail, sizeof o.detail, "%s", o.e.reason);
    }
  }
  /* every frame is a call: admitted (authorize, audit) and recorded */
  cl_err aerr;
  cl_err_clear(&aerr);
  int acode = cl_svc_admit(s->c.svc, rc, NULL, &aerr);
  hm = m;
  if (!hm && cl_hl7_parse_msh(p, n, NULL, &hm, &err) != 0)
    hm = NULL;
  const cl_hl7_header *h = hm ? cl_hl7_header_of(hm) : NULL;
  if (h)
    snprintf(rc->audit_what, sizeof rc->audit_what, "hl7:%s/%s/%s", h->sending_app,
             h->sending_facility, h->control_id);
  if (r)
    cl_req_ctx_add_patient(rc, r->patient_id);
  if (acode && !o.code) {
    char why[300];
    snprintf(why, sizeof why, "not allowed: %s", aerr.msg);
    fail_with(&o, acode, CL_HL7_INTERNAL, acode == CL_EDENIED || acode == CL_EUNAUTH ? "AR" : "AE",
              why);
  }
  if (!o.code && r)
    commit(s, m, r, &o);
  /* the record (also of a refused call) is committed before the answer
   * leaves (fail closed) */
  if (cl_svc_record(s->c.svc, rc, o.code, o.detail, &aerr) != 0 && !o.code)
    fail_with(&o, CL_EUNAVAILABLE, CL_HL7_INTERNAL, "AE",
              "the message was committed but its audit record was not; resend it");
  cl_svc_finished(s->c.svc, rc, o.code, o.detail);

  /* the ACK: its control id derived from the message's, so a resend gets it again */
  uint8_t id[16];
  cl_hl7_event_id(h ? h->sending_app : "", h ? h->sending_facility : "", h ? h->control_id : "",
                  UINT32_MAX, id);
  char ctl[24];
  cl_hex(id, 10, ctl);
  cl_hl7_ack_params ap = {.control_id = ctl, .ack_code = o.code ? o.ack_code : "AA"};
  char *ack = NULL;
  size_t ackn = 0;
  int bcode = hm ? cl_hl7_ack(hm, o.has_e ? &o.e : NULL, &ap, &ack, &ackn, &err)
                 : cl_hl7_ack_raw(p, n, &o.e, &ap, &ack, &ackn, &err);
  const char *sent = bcode ? "none" : ack_code_of(ack);
  if (!o.code)
    o.duplicate ? s->n.duplicates++ : s->n.accepted++;
  else if (!strcmp(sent, "AE"))
    s->n.errors++;
  else
    s->n.rejected++;
  if (oversized)
    s->n.oversized++;
  if (o.code) {
    char c[48];
    safe(h ? h->control_id : NULL, c, sizeof c);
    /* positions and codes only: no value of the message */
    fprintf(stderr,
            "clinlogd: mllp %s: message %s: %s, code %d (%s) at %s[%u] field %u offset %zu; "
            "%s\n",
            s->peer, c, sent, o.e.code, cl_hl7_code_text(o.e.code),
            o.e.segment[0] ? o.e.segment : "-", o.e.seg_seq, o.e.field, o.e.offset,
            oversized ? "oversized frame refused" : cl_errname(o.code));
  }
  cl_hl7_mapped_free(r);
  if (hm != m)
    cl_hl7_free(hm);
  cl_hl7_free(m);
  if (bcode)
    return cl_err_set(s->err, bcode, "mllp: building the ACK: %s", err.msg);
  uint8_t *framed = NULL;
  size_t fn = 0;
  bcode = cl_mllp_frame((const uint8_t *)ack, ackn, &framed, &fn, &err);
  cl_free(ack);
  if (bcode)
    return cl_err_set(s->err, bcode, "mllp: framing the ACK: %s", err.msg);
  if (s->send(s->send_ctx, framed, fn) != 0)
    s->close = 1;
  cl_free(framed);
  if (oversized)
    s->close = 1;
  return s->close;
}

static int on_event(void *ctx, const cl_mllp_event *ev) {
  cl_mllp_session *s = ctx;
  int rc = handle(s, ev->p, ev->n, ev->kind == CL_MLLP_OVERSIZED, ev->offset);
  if (rc < 0)
    s->fail = rc;
  return rc; /* nonzero stops the feed: close */
}

int cl_mllp_session_feed(cl_mllp_session *s, const uint8_t *p, size_t n, cl_mllp_send_fn send,
                         void *ctx, cl_err *err) {
  s->send = send;
  s->send_ctx = ctx;
  s->err = err;
  s->fail = 0;
  int rc = cl_mllp_feed(s->d, p, n, on_event, s, NULL, err);
  if (s->fail)
    return s->fail;
  if (s->close)
    return 1;
  return rc < 0 ? rc : 0;
}

/* CDS Hooks 2.0 on the HTTP face (http_int.h), at the server root:
 *
 *   GET  /cds-services                 discovery (open, like the
 *                                      CapabilityStatement: Cds.Discovery is a
 *                                      health-kind method, not recorded)
 *   POST /cds-services/{id}            a hook call (Cds.Hook): cards
 *   POST /cds-services/{id}/feedback   outcomes (Cds.Feedback): an override
 *                                      becomes an AlertOverridden in the
 *                                      patient's stream
 *
 * Every call is admitted by the request layer (authentication, policy,
 * audit hooks) as Cds.Hook / Cds.Feedback with the patient named, and
 * recorded once before its answer leaves (fail closed). The checking itself
 * is query/cds/hooks.c's and writes nothing; the patient's medications and
 * allergies come from the request's prefetch or, for what it lacks, from
 * the fhir projection through the FHIR engine (a read the policy must let
 * the caller make: _type=MedicationRequest,AllergyIntolerance).
 *
 * Feedback names only a card's uuid, so the face remembers the cards it
 * answered (the last CDS_CARDS, in memory: patient, issue id, rule); feedback
 * about a card it does not remember (older, or answered before a restart or
 * by another node) is refused with 400 and recorded as such. */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "adapters/http/http_int.h"
#include "adapters/service/cds_outcome.h"
#include "clinlog/v1/fhir.pb-c.h"
#include "query/cds/hooks.h"
#include "query/fhir/engine.h"

#define CDS_PREFIX "/cds-services"
#define CDS_MAX_FEEDBACK 16

/* ------------------------------------------------------------ the cards answered */

struct http_cds_card {
  char uuid[37];
  char patient[72];
  char issue[33];
  char rule[96];
};

void http_cds_init(cl_http *h) {
  pthread_mutex_init(&h->cds_mu, NULL);
  h->cds_cards = NULL;
  h->cds_next = 0;
}

void http_cds_free(cl_http *h) {
  free(h->cds_cards);
  pthread_mutex_destroy(&h->cds_mu);
}

static void remember(cl_http *h, const char *patient, const char *cards_json, size_t len) {
  json_t *j = json_loadb(cards_json, len, 0, NULL);
  size_t i;
  json_t *c;
  pthread_mutex_lock(&h->cds_mu);
  if (h->cds_cards == NULL)
    h->cds_cards = calloc(HTTP_CDS_CARDS, sizeof *h->cds_cards);
  json_array_foreach(json_object_get(j, "cards"), i, c) {
    if (h->cds_cards == NULL)
      break;
    http_cds_card *k = &h->cds_cards[h->cds_next++ % HTTP_CDS_CARDS];
    const char *u = json_string_value(json_object_get(c, "uuid"));
    const char *is =
        json_string_value(json_object_get(json_object_get(c, "extension"), "clinlog-issue-id"));
    const char *rule = json_string_value(
        json_object_get(json_object_get(json_object_get(c, "source"), "topic"), "code"));
    snprintf(k->uuid, sizeof k->uuid, "%s", u ? u : "");
    snprintf(k->patient, sizeof k->patient, "%s", patient);
    snprintf(k->issue, sizeof k->issue, "%s", is ? is : "");
    snprintf(k->rule, sizeof k->rule, "%s", rule ? rule : "");
  }
  pthread_mutex_unlock(&h->cds_mu);
  json_decref(j);
}

/* The card answered with this uuid into *out; 0 found, -1 not. */
static int recall(cl_http *h, const char *uuid, http_cds_card *out) {
  int rc = -1;
  pthread_mutex_lock(&h->cds_mu);
  for (size_t i = 0; h->cds_cards && i < HTTP_CDS_CARDS; i++)
    if (h->cds_cards[i].uuid[0] && !strcmp(h->cds_cards[i].uuid, uuid)) {
      *out = h->cds_cards[i];
      rc = 0;
      break;
    }
  pthread_mutex_unlock(&h->cds_mu);
  return rc;
}

/* ------------------------------------------------------------ helpers */

static int status_of(int code) {
  switch (code) {
  case CL_EINVAL:
  case CL_ETOOBIG:
    return 400;
  case CL_ENOTFOUND:
    return 404;
  case CL_EDENIED:
    return 403;
  case CL_EUNAUTH:
    return 401;
  case CL_ELIMITED:
    return 429;
  default:
    return 503;
  }
}

enum MHD_Result http_refuse(struct MHD_Connection *c, const cl_req_ctx *rc, const cl_err *err) {
  int st = status_of(err->code);
  return http_send_outcome(c, st,
                           st == 400   ? "invalid"
                           : st == 404 ? "not-found"
                           : st == 503 ? "transient"
                                       : "security",
                           rc->request_id, err->msg);
}

void http_ctx_init(cl_http *h, struct MHD_Connection *c, cl_req_ctx *rc, int method) {
  cl_req_ctx_init(rc, method, "http");
  const char *rid = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-Id");
  if (rid != NULL && rid[0])
    snprintf(rc->request_id, sizeof rc->request_id, "%s", rid);
  http_peer_of(c, rc->peer, sizeof rc->peer);
  rc->auth = h->tls ? CL_AUTH_TLS : CL_AUTH_NONE;
  const char *authz = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
  if (authz && !strncasecmp(authz, "Bearer ", 7))
    snprintf(rc->bearer, sizeof rc->bearer, "%s", authz + 7);
  rc->deadline_ms = cl_feed_now_ms() + h->wait_ms;
}

static int json_body(struct MHD_Connection *c, const req *r, cl_err *err) {
  const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
  if (r->too_big)
    return cl_err_set(err, CL_ETOOBIG, "the request is over 1 MiB");
  if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0)
    return cl_err_set(err, CL_EINVAL, "Content-Type: CDS Hooks takes application/json");
  if (r->body == NULL || r->len == 0)
    return cl_err_set(err, CL_EINVAL, "request: an empty body (expected a JSON object)");
  return 0;
}

/* A search of the fhir projection for the patient: its Bundle into *out. */
static int search(cl_http *h, cl_runner *runner, const char *type, const char *patient,
                  const char *status, const char *base, char **out, size_t *len, cl_err *err) {
  cl_fhir_kv kv[3] = {{"patient", patient}, {"_count", "1000"}, {"status", status}};
  cl_fhir_req rq = {.interaction = CL_FHIR_SEARCH,
                    .type = type,
                    .params = kv,
                    .nparams = status ? 3 : 2,
                    .base = base};
  cl_fhir_engine *e;
  int code = cl_fhir_engine_new(cl_runner_proj(runner), cl_svc_log(h->svc), &e, err);
  if (code)
    return code;
  cl_fhir_resp rs;
  cl_fhir_handle(e, &rq, &rs);
  cl_fhir_engine_free(e);
  if (rs.status != 200 || rs.body == NULL) {
    int st = rs.status;
    cl_fhir_resp_clear(&rs);
    return cl_err_set(err, st == 400 ? CL_EINVAL : CL_EFAILED, "reading %s of the patient: %d",
                      type, st);
  }
  *out = rs.body;
  *len = rs.len;
  rs.body = NULL;
  cl_fhir_resp_clear(&rs);
  return 0;
}

/* ------------------------------------------------------------ discovery */

static enum MHD_Result discovery(cl_http *h, struct MHD_Connection *c) {
  cl_req_ctx rc;
  cl_err err, aerr;
  cl_err_clear(&err);
  http_ctx_init(h, c, &rc, M_CDS_DISCOVERY);
  if (cl_svc_admit(h->svc, &rc, NULL, &err) != 0) {
    if (http_done(h, &rc, err.code, err.msg, &aerr))
      return http_unrecorded(c, &rc, &aerr);
    return http_refuse(c, &rc, &err);
  }
  char *doc = cl_cds_hooks_discovery();
  if (http_done(h, &rc, doc ? 0 : CL_ENOMEM, "", &aerr)) {
    free(doc);
    return http_unrecorded(c, &rc, &aerr);
  }
  if (doc == NULL)
    return http_send_outcome(c, 500, "exception", rc.request_id, "out of memory");
  json_t *j = json_loads(doc, 0, NULL);
  free(doc);
  if (j == NULL)
    return http_send_outcome(c, 500, "exception", rc.request_id, "out of memory");
  return http_send_json(c, 200, j, rc.request_id);
}

/* ------------------------------------------------------------ a hook */

static enum MHD_Result hook(cl_http *h, struct MHD_Connection *c, const char *service, req *r) {
  cl_req_ctx rc;
  cl_err err, aerr;
  cl_err_clear(&err);
  http_ctx_init(h, c, &rc, M_CDS_HOOK);
  cl_cds_hooks_req *q = NULL;
  int code = json_body(c, r, &err);
  if (code == 0)
    code = cl_cds_hooks_parse(service, r->body, r->len, &q, &err);
  /* what the hooks see: the patient, and the views the server must read */
  int need_meds = 0, need_allergies = 0;
  if (q)
    cl_cds_hooks_needs(q, &need_meds, &need_allergies);
  char types[64];
  snprintf(types, sizeof types, "%s%s%s", need_meds ? "MedicationRequest" : "",
           need_meds && need_allergies ? "," : "", need_allergies ? "AllergyIntolerance" : "");
  Clinlog__V1__FhirParam tp = CLINLOG__V1__FHIR_PARAM__INIT, *tpp = &tp;
  tp.name = "_type";
  tp.value = types;
  Clinlog__V1__FhirEverythingRequest ev = CLINLOG__V1__FHIR_EVERYTHING_REQUEST__INIT;
  ev.patient_id = q ? (char *)cl_cds_hooks_patient(q) : "";
  ev.n_params = types[0] ? 1 : 0;
  ev.params = &tpp;
  cl_err perr = err; /* the parse error waits for admission: 401/403 first */
  cl_err_clear(&err);
  if (cl_svc_admit(h->svc, &rc, &ev.base, &err) != 0) {
    cl_cds_hooks_req_free(q);
    if (http_done(h, &rc, err.code, err.msg, &aerr))
      return http_unrecorded(c, &rc, &aerr);
    return http_refuse(c, &rc, &err);
  }
  snprintf(rc.audit_what, sizeof rc.audit_what, "cds-services/%.200s", service);
  if (code) {
    if (http_done(h, &rc, perr.code, perr.msg, &aerr))
      return http_unrecorded(c, &rc, &aerr);
    return http_refuse(c, &rc, &perr);
  }
  snprintf(rc.audit_query, sizeof rc.audit_query, "hook=%s&hookInstance=%.200s&prefetch=%s",
           service, cl_cds_hooks_instance(q), types[0] ? "partial" : "complete");
  char *docs[2] = {NULL, NULL};
  size_t lens[2] = {0, 0}, ndocs = 0;
  const cl_kb *kb = cl_svc_kb(h->svc);
  if (kb == NULL)
    code = cl_err_set(&err, CL_EUNAVAILABLE, "this node has no decision-support knowledge base");
  if (code == 0 && types[0]) {
    cl_runner *runner = cl_svc_runner(h->svc, "fhir");
    char base[384];
    http_origin(h, c, base, sizeof base - 16);
    strcat(base, CL_HTTP_BASE_PATH);
    if (runner == NULL)
      code = cl_err_set(&err, CL_EUNAVAILABLE,
                        "this node does not run the fhir projection: send the prefetch");
    if (code == 0 && need_meds &&
        (code = search(h, runner, "MedicationRequest", cl_cds_hooks_patient(q), "active", base,
                       &docs[ndocs], &lens[ndocs], &err)) == 0)
      ndocs++;
    if (code == 0 && need_allergies &&
        (code = search(h, runner, "AllergyIntolerance", cl_cds_hooks_patient(q), NULL, base,
                       &docs[ndocs], &lens[ndocs], &err)) == 0)
      ndocs++;
  }
  char *out = NULL;
  size_t out_len = 0, ncards = 0;
  if (code == 0)
    code = cl_cds_hooks_evaluate(kb, q, (const char *const *)docs, lens, ndocs,
                                 (int64_t)time(NULL) * 1000000000ll, &out, &out_len, &ncards, &err);
  free(docs[0]);
  free(docs[1]);
  rc.audit_count = ncards;
  if (http_done(h, &rc, code, code ? err.msg : "", &aerr)) {
    free(out);
    cl_cds_hooks_req_free(q);
    return http_unrecorded(c, &rc, &aerr);
  }
  if (code) {
    cl_cds_hooks_req_free(q);
    return http_refuse(c, &rc, &err);
  }
  remember(h, cl_cds_hooks_patient(q), out, out_len);
  cl_cds_hooks_req_free(q);
  json_t *j = json_loadb(out, out_len, 0, NULL);
  free(out);
  if (j == NULL)
    return http_send_outcome(c, 500, "exception", rc.request_id, "out of memory");
  return http_send_json(c, 200, j, rc.request_id);
}

/* ------------------------------------------------------------ feedback */

/* An AlertOverridden for card k, by the caller, in the patient's stream
 * (adapters/service/cds_outcome.h: signed by the log key as the node writes
 * its own events; the same override again appends nothing). The card's
 * finding is about a draft, not an IssueDetected in the log. */
static int record_override(cl_http *h, const cl_req_ctx *caller, const http_cds_card *k,
                           const cl_cds_feedback *f, uint64_t *seq, cl_err *err) {
  Clinlog__V1__Code rcode = CLINLOG__V1__CODE__INIT, *rcp = &rcode;
  rcode.system = (char *)f->reason_system;
  rcode.code = (char *)f->reason_code;
  rcode.display = (char *)f->reason_display;
  Clinlog__V1__CodeableConcept reason = CLINLOG__V1__CODEABLE_CONCEPT__INIT;
  reason.n_coding = f->reason_code[0] ? 1 : 0;
  reason.coding = &rcp;
  reason.text = (char *)f->comment;
  char stream[96];
  snprintf(stream, sizeof stream, "patient-%s", k->patient);
  cl_cds_alert_ref a;
  if (cl_cds_alert_ref_init(&a, k->issue, stream, 0) != 0)
    return cl_err_set(err, CL_EINVAL, "card %s: no issue id", k->uuid);
  cl_cds_outcome out;
  int rc =
      cl_svc_cds_record(h->svc, caller, M_CDS_FEEDBACK, &a, CL_CDS_OVERRIDE, &reason, &out, err);
  if (rc == 0)
    *seq = out.seq;
  return rc;
}

static enum MHD_Result feedback(cl_http *h, struct MHD_Connection *c, const char *service, req *r) {
  cl_req_ctx rc;
  cl_err err, aerr;
  cl_err_clear(&err);
  http_ctx_init(h, c, &rc, M_CDS_FEEDBACK);
  cl_cds_feedback *fb = calloc(CDS_MAX_FEEDBACK, sizeof *fb);
  http_cds_card *cards = calloc(CDS_MAX_FEEDBACK, sizeof *cards);
  size_t n = 0;
  int code = fb && cards ? 0 : cl_err_set(&err, CL_ENOMEM, "out of memory");
  if (code == 0 && cl_cds_hooks_service(service) == 0)
    code = cl_err_set(&err, CL_ENOTFOUND, "no CDS service %.64s", service);
  if (code == 0)
    code = json_body(c, r, &err);
  if (code == 0)
    code = cl_cds_hooks_feedback_parse(r->body, r->len, fb, CDS_MAX_FEEDBACK, &n, &err);
  for (size_t i = 0; code == 0 && i < n; i++)
    if (recall(h, fb[i].card, &cards[i]) != 0)
      code = cl_err_set(&err, CL_EINVAL,
                        "feedback[%zu].card: %s is not a card this server answered recently "
                        "(cards are remembered in memory, per node)",
                        i, fb[i].card);
  Clinlog__V1__FhirEverythingRequest ev = CLINLOG__V1__FHIR_EVERYTHING_REQUEST__INIT;
  ev.patient_id = code == 0 && n > 0 ? cards[0].patient : "";
  cl_err perr = err;
  cl_err_clear(&err);
  enum MHD_Result ret;
  if (cl_svc_admit(h->svc, &rc, &ev.base, &err) != 0) {
    ret = http_done(h, &rc, err.code, err.msg, &aerr) ? http_unrecorded(c, &rc, &aerr)
                                                      : http_refuse(c, &rc, &err);
    goto out;
  }
  snprintf(rc.audit_what, sizeof rc.audit_what, "cds-services/%.200s/feedback", service);
  if (code) {
    ret = http_done(h, &rc, perr.code, perr.msg, &aerr) ? http_unrecorded(c, &rc, &aerr)
                                                        : http_refuse(c, &rc, &perr);
    goto out;
  }
  /* the record says what was reported: card, outcome, reason */
  size_t qn = 0;
  for (size_t i = 0; i < n && qn < sizeof rc.audit_query - 1; i++) {
    cl_req_ctx_add_patient(&rc, cards[i].patient);
    int w = snprintf(rc.audit_query + qn, sizeof rc.audit_query - qn,
                     "%scard=%s&outcome=%s&rule=%s%s%s", i ? "&" : "", fb[i].card,
                     fb[i].overridden ? "overridden" : "accepted", cards[i].rule,
                     fb[i].reason_code[0] ? "&reason=" : "", fb[i].reason_code);
    qn += w > 0 ? (size_t)w : 0;
  }
  uint64_t seq = 0, first = 0;
  for (size_t i = 0; code == 0 && i < n; i++)
    if (fb[i].overridden && (code = record_override(h, &rc, &cards[i], &fb[i], &seq, &err)) == 0) {
      first = first ? first : seq;
      rc.audit_count++;
    }
  if (first)
    snprintf(rc.audit_what, sizeof rc.audit_what, "cds-services/%.200s/feedback seq:%llu-%llu",
             service, (unsigned long long)first, (unsigned long long)seq);
  if (http_done(h, &rc, code, code ? err.msg : "", &aerr)) {
    ret = http_unrecorded(c, &rc, &aerr);
    goto out;
  }
  if (code) {
    ret = http_refuse(c, &rc, &err);
    goto out;
  }
  /* CDS Hooks 2.0: 200 and an empty body */
  ret = http_send_json(c, 200, json_object(), rc.request_id);
out:
  free(fb);
  free(cards);
  return ret;
}

/* ------------------------------------------------------------ routing */

enum MHD_Result http_serve_cds(cl_http *h, struct MHD_Connection *c, const char *url,
                               const char *method, req *r) {
  const char *rest = url + strlen(CDS_PREFIX);
  int is_get = !strcmp(method, "GET"), is_post = !strcmp(method, "POST");
  if (rest[0] == '\0' || !strcmp(rest, "/")) {
    if (!is_get)
      return http_send_outcome(c, 405, "not-supported", "", "GET /cds-services (discovery)");
    return discovery(h, c);
  }
  char id[96];
  const char *slash = strchr(rest + 1, '/');
  size_t idn = slash ? (size_t)(slash - rest - 1) : strlen(rest + 1);
  if (idn == 0 || idn >= sizeof id)
    return http_send_outcome(c, 404, "not-found", "", "no such CDS service");
  memcpy(id, rest + 1, idn);
  id[idn] = '\0';
  int fb = slash != NULL && !strcmp(slash, "/feedback");
  if (slash != NULL && !fb)
    return http_send_outcome(c, 404, "not-found", "",
                             "no such endpoint: /cds-services/{id} or /cds-services/{id}/feedback");
  if (!is_post)
    return http_send_outcome(c, 405, "not-supported", "",
                             "a CDS service takes POST (application/json)");
  return fb ? feedback(h, c, id, r) : hook(h, c, id, r);
}

/* Handlers of clinlog.v1.Streams (the `streams` projection's read engine,
 * query/streams), clinlog.v1.Fhir (the `fhir` projection's query engine,
 * query/fhir/engine.h, which the HTTP FHIR API shares), clinlog.v1.Audit
 * (the `audit` projection's search, query/audit/search.h, shared with the
 * HTTP AuditEvent) and clinlog.v1.Projections (status and rebuild of every
 * projection the request layer runs). Reads may ask for read-your-writes: they wait,
 * parked, until the projection has folded the sequence asked for. */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/grpc/server_int.h"
#include "adapters/grpc/services.h"
#include "adapters/grpc/svc_int.h"
#include "clinlog/v1/audit.pb-c.h"
#include "clinlog/v1/fhir.pb-c.h"
#include "clinlog/v1/query.pb-c.h"
#include "query/audit/search.h"
#include "query/fhir/engine.h"
#include "query/streams/streams.h"
#include "store/event.h"

#define STREAMS "streams"
#define FHIR "fhir"
#define AUDIT "audit"

/* A projection, or NULL after finishing the call. */
static cl_proj *proj_of(srv_call *c, const char *name) {
  cl_runner *r = cl_svc_runner(srv_svc(c), name);
  if (r)
    return cl_runner_proj(r);
  cl_err err;
  cl_err_set(&err, CL_EUNAVAILABLE, "this node does not run the %s projection", name);
  srv_finish_err(c, &err);
  return NULL;
}

/* min_sequence of a projection read: wait until the projection folded it.
 * 1 to go on; 0: parked or finished. Linearizable reads first take the
 * Raft barrier (then wait for the projection to fold up to the head). */
static int folded(srv_call *c, const char *name, const Clinlog__V1__Consistency *cons,
                  step_fn retry) {
  if (!cons)
    return 1;
  uint64_t want = cons->min_sequence;
  if (cons->linearizable) {
    int *state = c->st; /* the barrier was taken */
    if (!*state) {
      if (srv_barrier(c) != 0)
        return 0;
      uint64_t head;
      cl_log_head(cl_svc_log(srv_svc(c)), &head, NULL);
      *state = 1;
      if (head > want)
        want = head;
    }
  }
  return !want || srv_reached(c, name, want, retry) == 1;
}

int svc_proj_begin(srv_call *c) {
  if (!(c->st = calloc(1, sizeof(int)))) {
    srv_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
    return -1;
  }
  c->st_free = free;
  return 0;
}

/* The common start of a projection read step: the call is still wanted,
 * its consistency is met (else it is parked to run `retry` again, or
 * finished), and the node runs the projection. NULL: nothing more to do. */
cl_proj *svc_proj_ready(srv_call *c, const char *name, int ok, const Clinlog__V1__Consistency *cons,
                        step_fn retry) {
  if (!ok || srv_cancelled(c)) {
    srv_finish(c, GRPC_STATUS_CANCELLED, "cancelled", NULL);
    return NULL;
  }
  return folded(c, name, cons, retry) ? proj_of(c, name) : NULL;
}

static cl_proj *ready(srv_call *c, int ok, const Clinlog__V1__Consistency *cons, step_fn retry) {
  return svc_proj_ready(c, STREAMS, ok, cons, retry);
}

/* ------------------------------------------------------------ GetStream */

static void get_stream_step(srv_call *c, int ok) {
  const Clinlog__V1__GetStreamRequest *req = (const Clinlog__V1__GetStreamRequest *)c->req;
  cl_proj *p = ready(c, ok, req->consistency, get_stream_step);
  if (!p)
    return;
  cl_err err;
  cl_err_clear(&err);
  if (cl_stream_name_check(req->stream, strlen(req->stream), &err) != 0) {
    cl_err_prefix(&err, "GetStreamRequest.stream");
    srv_finish_err(c, &err);
    return;
  }
  Clinlog__V1__StreamInfo *si;
  if (cl_streams_get(p, cl_svc_log(srv_svc(c)), req->stream, &si, &err) != 0) {
    srv_finish_err(c, &err);
    return;
  }
  srv_finish(c, GRPC_STATUS_OK, "", &si->base);
  clinlog__v1__stream_info__free_unpacked(si, NULL);
}

static void svc_get_stream(srv_call *c, int ok) {
  (void)ok;
  if (svc_proj_begin(c) == 0)
    get_stream_step(c, 1);
}

/* ---------------------------------------------------------- ListStreams */

typedef struct page {
  Clinlog__V1__StreamInfo **items;
  size_t n, cap;
} page;

static int add_info(void *ctx, Clinlog__V1__StreamInfo *info, cl_err *err) {
  page *pg = ctx;
  if (pg->n == pg->cap) {
    clinlog__v1__stream_info__free_unpacked(info, NULL);
    return cl_err_set(err, CL_EINVAL, "page overflow");
  }
  pg->items[pg->n++] = info;
  return 0;
}

static void list_streams_step(srv_call *c, int ok) {
  const Clinlog__V1__ListStreamsRequest *req = (const Clinlog__V1__ListStreamsRequest *)c->req;
  cl_proj *p = ready(c, ok, req->consistency, list_streams_step);
  if (!p)
    return;
  cl_err err;
  cl_err_clear(&err);
  size_t limit = req->page_size ? req->page_size : 100;
  if (!req->category[0] || limit > 1000 || (req->page_token.len && req->page_token.len != 32)) {
    cl_err_set(&err, CL_EINVAL,
               !req->category[0] ? "ListStreamsRequest.category: required"
               : limit > 1000    ? "ListStreamsRequest.page_size: at most 1000"
                                 : "ListStreamsRequest.page_token: not a token this API gave");
    srv_finish_err(c, &err);
    return;
  }
  page pg = {calloc(limit, sizeof *pg.items), 0, limit};
  if (!pg.items) {
    srv_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
    return;
  }
  uint8_t next[32];
  int more = 0;
  int rc = cl_streams_list(p, req->category, req->page_token.len ? req->page_token.data : NULL,
                           limit, add_info, &pg, next, &more, &err);
  if (rc == 0) {
    Clinlog__V1__ListStreamsResponse resp = CLINLOG__V1__LIST_STREAMS_RESPONSE__INIT;
    resp.n_streams = pg.n;
    resp.streams = pg.items;
    if (more)
      resp.next_page_token = (ProtobufCBinaryData){32, next};
    srv_finish(c, GRPC_STATUS_OK, "", &resp.base);
  } else {
    srv_finish_err(c, &err);
  }
  for (size_t i = 0; i < pg.n; i++)
    clinlog__v1__stream_info__free_unpacked(pg.items[i], NULL);
  free(pg.items);
}

static void svc_list_streams(srv_call *c, int ok) {
  (void)ok;
  if (svc_proj_begin(c) == 0)
    list_streams_step(c, 1);
}

/* ----------------------------------------------------- ListEventsByType */

static void by_type_step(srv_call *c, int ok) {
  const Clinlog__V1__ListEventsByTypeRequest *req =
      (const Clinlog__V1__ListEventsByTypeRequest *)c->req;
  cl_proj *p = ready(c, ok, req->consistency, by_type_step);
  if (!p)
    return;
  cl_err err;
  cl_err_clear(&err);
  size_t limit = req->page_size ? req->page_size : 100;
  if (!cl_event_type_name(req->event_type) || limit > 10000) {
    cl_err_set(&err, CL_EINVAL,
               limit > 10000 ? "ListEventsByTypeRequest.page_size: at most 10000"
                             : "ListEventsByTypeRequest.event_type: unknown type %u",
               req->event_type);
    srv_finish_err(c, &err);
    return;
  }
  uint64_t *seqs = malloc(limit * sizeof *seqs), next = 0;
  size_t n = 0;
  if (!seqs) {
    srv_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
    return;
  }
  if (cl_streams_by_type(p, req->event_type, req->from_seq, limit, seqs, &n, &next, &err) != 0) {
    free(seqs);
    srv_finish_err(c, &err);
    return;
  }
  Clinlog__V1__ListEventsByTypeResponse resp = CLINLOG__V1__LIST_EVENTS_BY_TYPE_RESPONSE__INIT;
  resp.n_seqs = n;
  resp.seqs = seqs;
  resp.next_from_seq = next;
  srv_finish(c, GRPC_STATUS_OK, "", &resp.base);
  free(seqs);
}

static void svc_list_events_by_type(srv_call *c, int ok) {
  (void)ok;
  if (svc_proj_begin(c) == 0)
    by_type_step(c, 1);
}

/* ----------------------------------------------------------------- Fhir */

#define FHIR_BASE "urn:clinlog:fhir"
#define MAX_FHIR_PARAMS 64

/* Runs one engine interaction and finishes the call with its answer: a
 * FhirResponse, or the gRPC status of the HTTP one with the
 * OperationOutcome's diagnostics. */
static void fhir_run(srv_call *c, cl_proj *p, cl_fhir_req *rq) {
  cl_err err;
  cl_err_clear(&err);
  cl_fhir_engine *e;
  if (cl_fhir_engine_new(p, cl_svc_log(srv_svc(c)), &e, &err) != 0) {
    srv_finish_err(c, &err);
    return;
  }
  cl_fhir_resp rs;
  cl_fhir_handle(e, rq, &rs);
  cl_fhir_engine_free(e);
  if (rs.status == 200) {
    cl_req_ctx_patients_of(&c->rctx, rs.body, rs.len); /* whose data it returns, for the trail */
    if (cl_svc_subset(srv_svc(c), &c->rctx, &rs.body, &rs.len, 0) != 0) { /* minimum necessary */
      cl_fhir_resp_clear(&rs);
      srv_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
      return;
    }
    Clinlog__V1__FhirResponse resp = CLINLOG__V1__FHIR_RESPONSE__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    resp.json = (ProtobufCBinaryData){rs.len, (uint8_t *)rs.body};
    if (rs.etag[0])
      resp.version_id = (uint32_t)strtoul(rs.etag + 3, NULL, 10); /* W/"n" */
    if (rs.last_modified_ns) {
      ts.seconds = rs.last_modified_ns / 1000000000;
      ts.nanos = (int32_t)(rs.last_modified_ns % 1000000000);
      resp.last_updated = &ts;
    }
    srv_finish(c, GRPC_STATUS_OK, "", &resp.base);
  } else {
    char msg[512] = "";
    json_t *oo = rs.body ? json_loadb(rs.body, rs.len, 0, NULL) : NULL;
    const char *d = json_string_value(
        json_object_get(json_array_get(json_object_get(oo, "issue"), 0), "diagnostics"));
    snprintf(msg, sizeof msg, "%s", d ? d : "FHIR request failed");
    json_decref(oo);
    grpc_status_code code = rs.status == 404   ? GRPC_STATUS_NOT_FOUND
                            : rs.status == 400 ? GRPC_STATUS_INVALID_ARGUMENT
                                               : GRPC_STATUS_INTERNAL;
    srv_finish(c, code, msg, NULL);
  }
  cl_fhir_resp_clear(&rs);
}

/* FhirParam list -> engine params (views into the request). */
static size_t fhir_params(Clinlog__V1__FhirParam **in, size_t n, cl_fhir_kv *out) {
  size_t k = 0;
  for (size_t i = 0; i < n && k < MAX_FHIR_PARAMS; i++)
    out[k++] = (cl_fhir_kv){in[i]->name, in[i]->value};
  return k;
}

static void fhir_read_step(srv_call *c, int ok) {
  const Clinlog__V1__FhirReadRequest *req = (const Clinlog__V1__FhirReadRequest *)c->req;
  cl_proj *p = svc_proj_ready(c, FHIR, ok, req->consistency, fhir_read_step);
  if (!p)
    return;
  cl_fhir_req rq = {.interaction = req->version_id ? CL_FHIR_VREAD : CL_FHIR_READ,
                    .type = req->type,
                    .id = req->id,
                    .version = req->version_id,
                    .base = FHIR_BASE};
  fhir_run(c, p, &rq);
}

static void svc_fhir_read(srv_call *c, int ok) {
  (void)ok;
  if (svc_proj_begin(c) == 0)
    fhir_read_step(c, 1);
}

static void fhir_history_step(srv_call *c, int ok) {
  const Clinlog__V1__FhirHistoryRequest *req = (const Clinlog__V1__FhirHistoryRequest *)c->req;
  cl_proj *p = svc_proj_ready(c, FHIR, ok, req->consistency, fhir_history_step);
  if (!p)
    return;
  char count[16];
  snprintf(count, sizeof count, "%u", req->count ? req->count : 1000);
  cl_fhir_kv kv = {"_count", count};
  cl_fhir_req rq = {.interaction = req->id[0] ? CL_FHIR_HISTORY_INSTANCE : CL_FHIR_HISTORY_TYPE,
                    .type = req->type,
                    .id = req->id,
                    .params = &kv,
                    .nparams = 1,
                    .base = FHIR_BASE};
  fhir_run(c, p, &rq);
}

static void svc_fhir_history(srv_call *c, int ok) {
  (void)ok;
  if (svc_proj_begin(c) == 0)
    fhir_history_step(c, 1);
}

static void fhir_search_step(srv_call *c, int ok) {
  const Clinlog__V1__FhirSearchRequest *req = (const Clinlog__V1__FhirSearchRequest *)c->req;
  cl_proj *p = svc_proj_ready(c, FHIR, ok, req->consistency, fhir_search_step);
  if (!p)
    return;
  cl_fhir_kv kv[MAX_FHIR_PARAMS];
  cl_fhir_req rq = {.interaction = CL_FHIR_SEARCH,
                    .type = req->type,
                    .params = kv,
                    .nparams = fhir_params(req->params, req->n_params, kv),
                    .strict = req->strict,
                    .base = req->base_url[0] ? req->base_url : FHIR_BASE};
  fhir_run(c, p, &rq);
}

static void svc_fhir_search(srv_call *c, int ok) {
  (void)ok;
  if (svc_proj_begin(c) == 0)
    fhir_search_step(c, 1);
}

static void fhir_everything_step(srv_call *c, int ok) {
  const Clinlog__V1__FhirEverythingRequest *req =
      (const Clinlog__V1__FhirEverythingRequest *)c->req;
  cl_proj *p = svc_proj_ready(c, FHIR, ok, req->consistency, fhir_everything_step);
  if (!p)
    return;
  cl_fhir_kv kv[MAX_FHIR_PARAMS];
  cl_fhir_req rq = {.interaction = CL_FHIR_EVERYTHING,
                    .type = "Patient",
                    .id = req->patient_id,
                    .params = kv,
                    .nparams = fhir_params(req->params, req->n_params, kv),
                    .base = req->base_url[0] ? req->base_url : FHIR_BASE};
  fhir_run(c, p, &rq);
}

static void svc_fhir_everything(srv_call *c, int ok) {
  (void)ok;
  if (svc_proj_begin(c) == 0)
    fhir_everything_step(c, 1);
}

static void svc_fhir_capabilities(srv_call *c, int ok) {
  cl_proj *p = svc_proj_ready(c, FHIR, ok, NULL, NULL);
  if (!p)
    return;
  cl_fhir_req rq = {.interaction = CL_FHIR_CAPABILITIES, .base = FHIR_BASE};
  fhir_run(c, p, &rq);
}

/* ------------------------------------------------------------ Fhir export */

static cl_fhir_exports *exports_of(srv_call *c) {
  cl_fhir_exports *x = cl_svc_exports(srv_svc(c));
  if (x == NULL)
    srv_finish(c, GRPC_STATUS_UNAVAILABLE, "this node does not run bulk export", NULL);
  return x;
}

/* The exports, if the caller kicked off job `id` (else finishes the call:
 * NOT_FOUND, as for a job that does not exist). */
static cl_fhir_exports *own_job(srv_call *c, const char *id) {
  cl_fhir_exports *x = exports_of(c);
  cl_err err;
  cl_err_clear(&err);
  if (x != NULL && cl_fhir_export_owned(x, id, c->rctx.principal, &err) != 0) {
    srv_finish_err(c, &err);
    return NULL;
  }
  return x;
}

static const char *job_state_name(int state) {
  return state == CL_FHIR_EXPORT_COMPLETE ? "complete"
         : state == CL_FHIR_EXPORT_FAILED ? "failed"
                                          : "in-progress";
}

/* Finishes the call with job `id` as a FhirExportJob. */
static void finish_job(srv_call *c, cl_fhir_exports *x, const char *id, const char *base) {
  cl_err err;
  cl_err_clear(&err);
  cl_fhir_export_status st;
  if (cl_fhir_export_get(x, id, &st, &err) != 0) {
    srv_finish_err(c, &err);
    return;
  }
  char *manifest = NULL;
  size_t mlen = 0;
  Clinlog__V1__FhirExportFile *fs = calloc(st.nfiles + 1, sizeof *fs);
  Clinlog__V1__FhirExportFile **fp = calloc(st.nfiles + 1, sizeof *fp);
  if (fs == NULL || fp == NULL ||
      (st.state == CL_FHIR_EXPORT_COMPLETE &&
       cl_fhir_export_manifest(x, id, base[0] ? base : FHIR_BASE, &manifest, &mlen, &err) != 0)) {
    if (fs == NULL || fp == NULL)
      cl_err_set(&err, CL_ENOMEM, "out of memory");
    srv_finish_err(c, &err);
  } else {
    Clinlog__V1__FhirExportJob j = CLINLOG__V1__FHIR_EXPORT_JOB__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    j.job_id = (char *)id;
    j.state = (char *)job_state_name(st.state);
    j.progress = st.progress;
    j.error = st.error;
    ts.seconds = st.transaction_ns / 1000000000;
    ts.nanos = (int32_t)(st.transaction_ns % 1000000000);
    j.transaction_time = &ts;
    j.as_of_sequence = st.as_of;
    for (size_t i = 0; i < st.nfiles; i++) {
      clinlog__v1__fhir_export_file__init(&fs[i]);
      fs[i].file = (uint32_t)i + 1;
      fs[i].type = (char *)cl_fhir_type_name(st.files[i].type);
      fs[i].count = st.files[i].count;
      fp[i] = &fs[i];
    }
    j.n_files = st.nfiles;
    j.files = fp;
    j.manifest = (ProtobufCBinaryData){mlen, (uint8_t *)manifest};
    srv_finish(c, GRPC_STATUS_OK, "", &j.base);
  }
  free(manifest);
  free(fs);
  free(fp);
  cl_fhir_export_status_clear(&st);
}

static void svc_fhir_export(srv_call *c, int ok) {
  (void)ok;
  const Clinlog__V1__FhirExportRequest *req = (const Clinlog__V1__FhirExportRequest *)c->req;
  cl_fhir_exports *x = exports_of(c);
  if (x == NULL)
    return;
  cl_err err;
  cl_err_clear(&err);
  cl_fhir_kv kv[MAX_FHIR_PARAMS];
  cl_fhir_export_req rq = {.group = req->group_id,
                           .params = kv,
                           .nparams = fhir_params(req->params, req->n_params, kv),
                           .strict = req->strict,
                           .owner = c->rctx.principal};
  if (!strcmp(req->level, "patient"))
    rq.level = CL_FHIR_EXPORT_PATIENT;
  else if (!strcmp(req->level, "group"))
    rq.level = CL_FHIR_EXPORT_GROUP;
  else if (req->level[0] && strcmp(req->level, "system") != 0) {
    srv_finish(c, GRPC_STATUS_INVALID_ARGUMENT,
               "FhirExportRequest.level: expected system, patient or group", NULL);
    return;
  }
  char id[33];
  if (cl_fhir_export_start(x, &rq, id, &err) != 0) {
    srv_finish_err(c, &err);
    return;
  }
  finish_job(c, x, id, "");
}

static void svc_fhir_export_status(srv_call *c, int ok) {
  (void)ok;
  const Clinlog__V1__FhirExportJobRequest *req = (const Clinlog__V1__FhirExportJobRequest *)c->req;
  cl_fhir_exports *x = own_job(c, req->job_id);
  if (x != NULL)
    finish_job(c, x, req->job_id, req->base_url);
}

static void svc_fhir_export_cancel(srv_call *c, int ok) {
  (void)ok;
  const Clinlog__V1__FhirExportJobRequest *req = (const Clinlog__V1__FhirExportJobRequest *)c->req;
  cl_fhir_exports *x = own_job(c, req->job_id);
  if (x == NULL)
    return;
  cl_err err;
  cl_err_clear(&err);
  if (cl_fhir_export_cancel(x, req->job_id, &err) != 0) {
    srv_finish_err(c, &err);
    return;
  }
  Clinlog__V1__FhirExportJob j = CLINLOG__V1__FHIR_EXPORT_JOB__INIT;
  j.job_id = req->job_id;
  j.state = "cancelled";
  srv_finish(c, GRPC_STATUS_OK, "", &j.base);
}

#define EXPORT_CHUNK_MAX (3u << 20)

static void svc_fhir_export_read(srv_call *c, int ok) {
  (void)ok;
  const Clinlog__V1__FhirExportReadRequest *req =
      (const Clinlog__V1__FhirExportReadRequest *)c->req;
  cl_fhir_exports *x = own_job(c, req->job_id);
  if (x == NULL)
    return;
  if (req->cursor.len != 0 && req->cursor.len != 32) {
    srv_finish(c, GRPC_STATUS_INVALID_ARGUMENT,
               "FhirExportReadRequest.cursor: not a cursor this server gave", NULL);
    return;
  }
  size_t max = req->max_bytes ? req->max_bytes : 1u << 20;
  if (max > EXPORT_CHUNK_MAX)
    max = EXPORT_CHUNK_MAX;
  cl_err err;
  cl_err_clear(&err);
  char *buf;
  size_t len;
  uint8_t next[32];
  int more;
  if (cl_fhir_export_read(x, req->job_id, req->file, req->cursor.len ? req->cursor.data : NULL, max,
                          &buf, &len, next, &more, &err) != 0) {
    srv_finish_err(c, &err);
    return;
  }
  if (cl_svc_subset(srv_svc(c), &c->rctx, &buf, &len, 1) != 0) { /* minimum necessary */
    sodium_memzero(buf, len);
    free(buf);
    srv_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
    return;
  }
  cl_req_ctx_patients_of(&c->rctx, buf, len); /* whose data the chunk holds, for the trail */
  Clinlog__V1__FhirExportChunk ch = CLINLOG__V1__FHIR_EXPORT_CHUNK__INIT;
  ch.ndjson = (ProtobufCBinaryData){len, (uint8_t *)buf};
  if (more)
    ch.next_cursor = (ProtobufCBinaryData){32, next};
  srv_finish(c, GRPC_STATUS_OK, "", &ch.base);
  if (buf != NULL) {
    sodium_memzero(buf, len);
    free(buf);
  }
}

/* ---------------------------------------------------------- Projections */

/* Strings of a status live in `st`; the message points into it. */
static void fill_status(Clinlog__V1__ProjectionStatus *ps, cl_runner_status *st) {
  clinlog__v1__projection_status__init(ps);
  ps->name = st->name;
  ps->state = (char *)cl_runner_state_name(st->state);
  ps->position = st->position;
  ps->head = st->head;
  ps->lag = st->lag;
  ps->folded = st->folded;
  ps->rebuilds = st->rebuilds;
  ps->error = st->error.code ? st->error.msg : "";
}

#define MAX_RUNNERS 16

static void svc_list_projections(srv_call *c, int ok) {
  (void)ok;
  cl_runner *rs[MAX_RUNNERS];
  size_t n = cl_svc_runners(srv_svc(c), rs, MAX_RUNNERS);
  cl_runner_status st[MAX_RUNNERS];
  Clinlog__V1__ProjectionStatus ps[MAX_RUNNERS], *pp[MAX_RUNNERS];
  for (size_t i = 0; i < n; i++) {
    cl_runner_get_status(rs[i], &st[i]);
    fill_status(&ps[i], &st[i]);
    pp[i] = &ps[i];
  }
  Clinlog__V1__ListProjectionsResponse resp = CLINLOG__V1__LIST_PROJECTIONS_RESPONSE__INIT;
  resp.n_projections = n;
  resp.projections = pp;
  srv_finish(c, GRPC_STATUS_OK, "", &resp.base);
}

static void svc_rebuild_projection(srv_call *c, int ok) {
  (void)ok;
  const Clinlog__V1__RebuildProjectionRequest *req =
      (const Clinlog__V1__RebuildProjectionRequest *)c->req;
  cl_err err;
  cl_err_clear(&err);
  cl_runner *r = cl_svc_runner(srv_svc(c), req->name);
  if (!r) {
    cl_err_set(&err, CL_ENOTFOUND, "no projection named %s", req->name);
    srv_finish_err(c, &err);
    return;
  }
  if (cl_runner_rebuild(r, &err) != 0) {
    srv_finish_err(c, &err);
    return;
  }
  cl_runner_status st;
  cl_runner_get_status(r, &st);
  Clinlog__V1__ProjectionStatus ps;
  fill_status(&ps, &st);
  srv_finish(c, GRPC_STATUS_OK, "", &ps.base);
}

/* ------------------------------------------------------------ tables */

static const cl_grpc_method_def STREAMS_METHODS[] = {
    {M_GET_STREAM, &clinlog__v1__get_stream_request__descriptor, svc_get_stream},
    {M_LIST_STREAMS, &clinlog__v1__list_streams_request__descriptor, svc_list_streams},
    {M_LIST_EVENTS_BY_TYPE, &clinlog__v1__list_events_by_type_request__descriptor,
     svc_list_events_by_type},
};

const cl_grpc_service cl_grpc_streams_service = {"clinlog.v1.Streams", STREAMS_METHODS,
                                                 sizeof STREAMS_METHODS / sizeof STREAMS_METHODS[0],
                                                 NULL, NULL};

static const cl_grpc_method_def FHIR_METHODS[] = {
    {M_FHIR_READ, &clinlog__v1__fhir_read_request__descriptor, svc_fhir_read},
    {M_FHIR_HISTORY, &clinlog__v1__fhir_history_request__descriptor, svc_fhir_history},
    {M_FHIR_SEARCH, &clinlog__v1__fhir_search_request__descriptor, svc_fhir_search},
    {M_FHIR_EVERYTHING, &clinlog__v1__fhir_everything_request__descriptor, svc_fhir_everything},
    {M_FHIR_CAPABILITIES, &clinlog__v1__fhir_capabilities_request__descriptor,
     svc_fhir_capabilities},
    {M_FHIR_EXPORT, &clinlog__v1__fhir_export_request__descriptor, svc_fhir_export},
    {M_FHIR_EXPORT_STATUS, &clinlog__v1__fhir_export_job_request__descriptor,
     svc_fhir_export_status},
    {M_FHIR_EXPORT_CANCEL, &clinlog__v1__fhir_export_job_request__descriptor,
     svc_fhir_export_cancel},
    {M_FHIR_EXPORT_READ, &clinlog__v1__fhir_export_read_request__descriptor, svc_fhir_export_read},
};

const cl_grpc_service cl_grpc_fhir_service = {
    "clinlog.v1.Fhir", FHIR_METHODS, sizeof FHIR_METHODS / sizeof FHIR_METHODS[0], NULL, NULL};

/* ------------------------------------------------------------- audit */

static int64_t ts_ns(const Google__Protobuf__Timestamp *t) {
  return t ? (int64_t)t->seconds * 1000000000 + t->nanos : 0;
}

static void audit_query_step(srv_call *c, int ok) {
  const Clinlog__V1__AuditQueryRequest *req = (const Clinlog__V1__AuditQueryRequest *)c->req;
  cl_proj *p = svc_proj_ready(c, AUDIT, ok, req->consistency, audit_query_step);
  if (!p)
    return;
  cl_err err;
  cl_err_clear(&err);
  cl_log *log = cl_svc_log(srv_svc(c));
  Clinlog__V1__AuditQueryResponse resp = CLINLOG__V1__AUDIT_QUERY_RESPONSE__INIT;
  cl_audit_page pg = {0};
  json_t *one = NULL;
  uint64_t one_seq = 0;
  int code;
  if (req->event_id.len) {
    if (req->event_id.len != 16 || req->patient[0] || req->principal[0] || req->outcome[0] ||
        req->since || req->until || req->after_seq)
      code = cl_err_set(&err, CL_EINVAL, "event_id: 16 bytes, and no other condition beside it");
    else
      code = cl_audit_get(log, req->event_id.data, cl_log_origin(log), &one, &one_seq, &err);
    if (code == 0) {
      pg.events = &one;
      pg.seqs = &one_seq;
      pg.n = 1;
    }
  } else {
    cl_audit_filter f = {.patient = req->patient,
                         .principal = req->principal,
                         .since_ns = ts_ns(req->since),
                         .until_ns = ts_ns(req->until),
                         .outcome = req->outcome,
                         .after_seq = req->after_seq,
                         .limit = req->limit};
    code = cl_audit_page_get(p, log, &f, cl_log_origin(log), &pg, &err);
  }
  ProtobufCBinaryData *bodies = code ? NULL : calloc(pg.n ? pg.n : 1, sizeof *bodies);
  if (!code && !bodies)
    code = cl_err_set(&err, CL_ENOMEM, "out of memory");
  for (size_t i = 0; !code && i < pg.n; i++) {
    char *j = json_dumps(pg.events[i], JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!j)
      code = cl_err_set(&err, CL_ENOMEM, "out of memory");
    else
      bodies[i] = (ProtobufCBinaryData){strlen(j), (uint8_t *)j};
  }
  if (code) {
    srv_finish_err(c, &err);
  } else {
    resp.n_audit_events = pg.n;
    resp.audit_events = bodies;
    resp.n_seqs = pg.n;
    resp.seqs = pg.seqs;
    resp.next_after = pg.next_after;
    c->rctx.audit_count = pg.n;
    srv_finish(c, GRPC_STATUS_OK, "", &resp.base);
  }
  for (size_t i = 0; bodies && i < pg.n; i++)
    free(bodies[i].data);
  free(bodies);
  if (one)
    json_decref(one);
  else
    cl_audit_page_clear(&pg);
}

static void svc_audit_query(srv_call *c, int ok) {
  (void)ok;
  if (svc_proj_begin(c) == 0)
    audit_query_step(c, 1);
}

static const cl_grpc_method_def AUDIT_METHODS[] = {
    {M_AUDIT_QUERY, &clinlog__v1__audit_query_request__descriptor, svc_audit_query},
};

const cl_grpc_service cl_grpc_audit_service = {
    "clinlog.v1.Audit", AUDIT_METHODS, sizeof AUDIT_METHODS / sizeof AUDIT_METHODS[0], NULL, NULL};

static const cl_grpc_method_def PROJECTIONS_METHODS[] = {
    {M_LIST_PROJECTIONS, &clinlog__v1__list_projections_request__descriptor, svc_list_projections},
    {M_REBUILD_PROJECTION, &clinlog__v1__rebuild_projection_request__descriptor,
     svc_rebuild_projection},
};

const cl_grpc_service cl_grpc_projections_service = {
    "clinlog.v1.Projections", PROJECTIONS_METHODS,
    sizeof PROJECTIONS_METHODS / sizeof PROJECTIONS_METHODS[0], NULL, NULL};

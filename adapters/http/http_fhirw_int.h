/* What the FHIR writes of the REST face share between http_fhirw.c (the
 * route, one resource: create, update, conditional create and update,
 * PATCH, the retraction of an update to entered-in-error) and
 * http_fhirw_bundle.c (transaction and batch Bundles). Nothing outside
 * these two files includes this. A wstate lives for one request, on the
 * stack of http_serve_write; nothing here is shared between requests. */
#ifndef CL_ADAPTERS_HTTP_HTTP_FHIRW_INT_H
#define CL_ADAPTERS_HTTP_HTTP_FHIRW_INT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "adapters/fhir/fhirw.h"
#include "adapters/http/http_int.h"
#include "query/fhir/engine.h"

#define MAX_ENTRIES 1000 /* entries of one Bundle */

typedef struct wstate {
  cl_http *h;
  cl_req_ctx *rc;
  cl_fhir_engine *e;
  char base[384];
  int representation; /* Prefer: return=representation (the default) */
  uint64_t seq;       /* the last log sequence the request appended, 0: none */
  int64_t views_deadline_ms; /* how long waits for the views may take (Prefer: wait) */
  int unfolded; /* the last append committed, but the views had not folded it in time */
  json_t *lines;      /* a batch: "Observation/<id>" and fullUrl -> an entry's Observation a
                         report takes as its line (http_fhirw_bundle.c), or NULL */
} wstate;

/* The answer, built before the call's record is committed, sent after. */
typedef struct wans {
  int status;
  char *body; /* malloc'd, or NULL */
  size_t len;
  cl_fhir_resp hdr; /* ETag, Last-Modified (no body) */
  char location[640];
  int code; /* 0 or CL_E*, for the record */
} wans;

/* ---- answers (a: the request's; j taken) ---- */

int fw_ans_json(wans *a, int status, json_t *j, int code);
/* fe's OperationOutcome with its status (400 when none). */
int fw_ans_refusal(wans *a, const cl_fhirw_error *fe);
/* 202 Accepted: the write committed at w->seq, the views had not folded
 * it in time (w->unfolded); Location [base]/type/id when type is not NULL. */
int fw_ans_accepted(wstate *w, wans *a, const char *type, const char *id);
/* An OperationOutcome with one issue. */
int fw_ans_outcome(wans *a, int status, const char *issue, int code, const char *expr,
                   const char *text);

/* ---- the views ---- */

/* type/id as the views hold it now: *out returned-owned, headers into hdr
 * (optional). CL_ENOTFOUND, CL_EFAILED. */
int fw_read_res(wstate *w, const char *type, const char *id, json_t **out, cl_fhir_resp *hdr);
/* cl_fhirw_resolve_fn over the views (ctx: the wstate). */
int fw_resolve(void *ctx, const char *type, const char *id, char *bid, size_t bidn, cl_err *err);
/* The versionId of type/id now ("" when there is none). */
void fw_version_of(wstate *w, const char *type, const char *id, char out[24]);
/* The resources a search query string of `type` matches: 0, 1 (*id
 * filled), 2 (several), -1 (not a search the server takes). */
int fw_matches_text(wstate *w, const char *type, const char *query, char id[CL_FHIR_ID_MAX]);
/* A conditional update's target into id ("" : a create); 0 or
 * CL_EMALFORMED (fe: 400, 412 several match), `where` naming the search. */
int fw_cond_target(wstate *w, const char *type, const cl_http_params *p, const json_t *res,
                   const char *where, char id[CL_FHIR_ID_MAX], cl_fhirw_error *fe, cl_err *err);

/* ---- writing ---- */

/* An If-Match ETag against the current versionId ("" : none): 0, or
 * CL_EPRECOND with fe (400 not an ETag, 412 another version). */
int fw_if_match(const char *etag, const char *current, const char *where, cl_fhirw_error *fe,
                cl_err *err);
/* Signs the n mappings' events with the log key and appends them as one
 * batch, then waits for the views; *written 0 when all were there.
 * `whole`: the call's only append, so its audit record may ride in the
 * same commit (cl_svc_append_for): everything the record names (what,
 * patients: fw_patients_of) is set before. Once the events committed it
 * returns 0: if the views do not fold them by views_deadline_ms,
 * w->unfolded says so, and the answer is fw_ans_accepted's (the write
 * succeeded, as its record says), never an error. */
int fw_append(wstate *w, cl_fhirw_mapped *const *ms, size_t n, int whole, int *written,
              cl_err *err);
/* Adds to the call's record the patients a resource about to be written
 * names (every reference to a Patient), as its answer will. */
void fw_patients_of(wstate *w, const json_t *res);
/* The OperationOutcome of a write that committed at log sequence seq but
 * that the views had not folded when the wait ended (returned-owned). */
json_t *fw_unfolded_outcome(uint64_t seq);
/* The HTTP status of a CL_E* code from the writer. */
int fw_status_of(int code);
/* Mapping options for the caller the node writes for. */
void fw_opts_of(wstate *w, const json_t *refs, cl_fhirw_opts *o);
/* [base]/type/id/_history/<the version of hdr's ETag> into out. */
void fw_location_of(wstate *w, const char *type, const char *id, const cl_fhir_resp *hdr, char *out,
                    size_t n);
/* An update of type/id at base_version to entered-in-error: its
 * EnteredInError event into *m (NULL: entered-in-error already). 0, or
 * CL_EMALFORMED (fe: 403, 422), CL_ENOMEM. */
int fw_retraction(wstate *w, const char *type, const char *id, const json_t *res,
                  const char *base_version, const char *expr, cl_fhirw_mapped **m,
                  cl_fhirw_error *fe, cl_err *err);

/* ---- Bundles (http_fhirw_bundle.c) ---- */

/* POST [base]: a transaction (all or nothing, one atomic append) or batch
 * Bundle b (borrowed; its entries' resources are changed in place: ids of
 * creates dropped); the answer into a. Returns 0. */
int fw_bundle(wstate *w, json_t *b, wans *a);

#endif

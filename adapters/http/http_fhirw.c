/* FHIR writes on the REST face (docs/fhir.md, "Writes"): create (POST
 * [base]/[type]), update (PUT [base]/[type]/[id], If-Match), conditional
 * create (If-None-Exist) and update (PUT [base]/[type]?[search]), PATCH
 * with a JSON Patch (applied to the resource as the views serve it, written
 * as an update), an update to entered-in-error as an EnteredInError
 * retraction (docs/fhir.md#delete; DELETE itself is refused in http.c), and
 * Bundles (POST [base], http_fhirw_bundle.c) of type transaction (all or
 * nothing: every entry's events in one atomic append) and batch (each
 * entry on its own, with its own status).
 *
 * Resources become catalog events through adapters/fhir (fhirw.h). The
 * REST face holds no key of its callers, so the node writes the events
 * itself, signed by its log key (recorded_by $log, role log) with the
 * caller in recorded_by.on_behalf_of and source_system "fhir-rest": the
 * caller's right to write them is the policy's, checked at admission on
 * the events' types (clinlog.v1.Fhir/Write, kind write), as for the
 * decision-support outcomes a node records for a clinician. A caller that
 * must sign its own events writes them through clinlog.v1.Log or `clinlog
 * ingest fhir` with its own key.
 *
 * Every answer waits until the fhir projection has folded the write, so
 * it carries the resource as the views now hold it (Location with the
 * version, ETag W/"<versionId>", Last-Modified), and the next request sees
 * it (a reference to the patient just created resolves); it names the
 * write's log sequence (X-Clinlog-Sequence), and a write sent with
 * X-Clinlog-Min-Sequence first waits for the views to fold that one, so a
 * write on a cluster follower reads state at least as fresh as the client
 * saw through another node. Invalid input is a 400, 412 or 422
 * OperationOutcome whose issue.expression names the element; then nothing
 * is written.
 *
 * The call's audit record: a write of one append (a resource, a
 * transaction) on the Raft leader commits it in the same entry and store
 * write as its events (cl_svc_append_for), so everything it names (the
 * resource, the patients) is set before the append; a duplicate, a
 * follower's forwarded write, a batch (an append per entry) or a refusal
 * is recorded after, as any call (http_done). Either way a write whose
 * events committed is answered as a success, as its record says: if the
 * views have not folded it when the wait ends (the server's, or less with
 * Prefer: wait), a 202 naming its log sequence, never a 504. */
#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "adapters/fhir/fhirw.h"
#include "adapters/fhir/fhirw_patch.h"
#include "adapters/http/http_fhirw_int.h"
#include "adapters/service/methods.h"
#include "clinlog/v1/api.pb-c.h"
#include "query/fhir/engine.h"
#include "query/fhir/fj.h"
#include "store/keyring.h"
#include "store/keys.h"
#include "store/logkey.h"

int http_write_route(const char *rest, const char *method) {
  if (!strcmp(method, "PUT") || !strcmp(method, "PATCH"))
    return 1;
  if (strcmp(method, "POST") != 0)
    return 0;
  if (rest[0] == '\0' || !strcmp(rest, "/"))
    return 1; /* a Bundle */
  /* POST [type]: one segment naming a type (not _search, not an operation) */
  return rest[0] == '/' && rest[1] >= 'A' && rest[1] <= 'Z' && strchr(rest + 1, '/') == NULL;
}

/* ---- answers ---- */

int fw_ans_json(wans *a, int status, json_t *j, int code) {
  a->status = status;
  a->code = code;
  a->body = j ? json_dumps(j, JSON_COMPACT) : NULL;
  a->len = a->body ? strlen(a->body) : 0;
  json_decref(j);
  if (j != NULL && a->body == NULL)
    a->status = 500;
  return 0;
}

int fw_ans_refusal(wans *a, const cl_fhirw_error *fe) {
  return fw_ans_json(a, fe->status ? fe->status : 400, cl_fhirw_outcome(fe), CL_EINVAL);
}

json_t *fw_unfolded_outcome(uint64_t seq) {
  char text[300];
  snprintf(text, sizeof text,
           "the write is committed (log sequence %llu) but the views had not folded it when the "
           "wait ended: read it with X-Clinlog-Min-Sequence: %llu",
           (unsigned long long)seq, (unsigned long long)seq);
  return json_pack("{s:s,s:[{s:s,s:s,s:s}]}", "resourceType", "OperationOutcome", "issue",
                   "severity", "warning", "code", "timeout", "diagnostics", text);
}

int fw_ans_accepted(wstate *w, wans *a, const char *type, const char *id) {
  if (type != NULL)
    snprintf(a->location, sizeof a->location, "%s/%s/%s", w->base, type, id);
  return fw_ans_json(a, 202, fw_unfolded_outcome(w->seq), 0);
}

/* An OperationOutcome with one issue. */
int fw_ans_outcome(wans *a, int status, const char *issue, int code, const char *expr,
                   const char *text) {
  cl_fhirw_error fe;
  cl_err e;
  cl_fhirw_fail(&fe, &e, status, issue, expr, "%s", text);
  return fw_ans_json(a, status, cl_fhirw_outcome(&fe), code);
}

/* ---- the views ---- */

/* The resource type/id as the views hold it now: *out (returned-owned;
 * `marked`: numbers as written, cl_fhirw_parse's form) and the headers
 * into hdr (optional). CL_ENOTFOUND, CL_EFAILED. */
static int read_as(wstate *w, const char *type, const char *id, int marked, json_t **out,
                   cl_fhir_resp *hdr) {
  cl_fhir_req rq = {.interaction = CL_FHIR_READ, .type = type, .id = id, .base = w->base};
  cl_fhir_resp rs;
  cl_fhir_handle(w->e, &rq, &rs);
  cl_fhirw_error fe;
  cl_err err;
  *out = NULL;
  if (rs.status == 200 && rs.body && marked && cl_fhirw_parse(rs.body, rs.len, out, &fe, &err))
    *out = NULL;
  else if (rs.status == 200 && rs.body && !marked)
    *out = json_loadb(rs.body, rs.len, 0, NULL);
  int st = rs.status;
  if (hdr != NULL) {
    free(rs.body);
    rs.body = NULL;
    *hdr = rs;
  } else {
    cl_fhir_resp_clear(&rs);
  }
  if (st == 404 || st == 410)
    return CL_ENOTFOUND;
  return *out ? 0 : CL_EFAILED;
}

int fw_read_res(wstate *w, const char *type, const char *id, json_t **out, cl_fhir_resp *hdr) {
  return read_as(w, type, id, 0, out, hdr);
}

/* cl_fhirw_fetch_fn over the views (what a Claim's items are read from). */
static int fw_fetch(void *ctx, const char *type, const char *id, json_t **out, cl_err *err) {
  int rc = read_as(ctx, type, id, 1, out, NULL);
  if (rc == CL_EFAILED)
    return cl_err_set(err, CL_EFAILED, "reading %s/%s from the views failed", type, id);
  return rc;
}

/* cl_fhirw_resolve_fn over the views: a Patient's id is its patient id,
 * another resource's business id its identifier in urn:clinlog:id. */
int fw_resolve(void *ctx, const char *type, const char *id, char *bid, size_t bidn, cl_err *err) {
  wstate *w = ctx;
  json_t *res;
  int rc = fw_read_res(w, type, id, &res, NULL);
  if (rc == CL_EFAILED)
    return cl_err_set(err, CL_EFAILED, "reading %s/%s from the views failed", type, id);
  if (rc)
    return rc;
  rc = cl_fhirw_bid_of(res, bid, bidn);
  json_decref(res);
  return rc;
}

/* The versionId of type/id now ("" when there is none). */
void fw_version_of(wstate *w, const char *type, const char *id, char out[24]) {
  json_t *res;
  out[0] = '\0';
  if (fw_read_res(w, type, id, &res, NULL) == 0) {
    const char *v = json_string_value(json_object_get(json_object_get(res, "meta"), "versionId"));
    snprintf(out, 24, "%s", v ? v : "");
    json_decref(res);
  }
}

/* An If-Match precondition (W/"<versionId>", or "<versionId>") against the
 * versionId the resource has now ("" when it does not exist): 0 it holds,
 * else fills fe (400 not an ETag, 412 another version) and returns
 * CL_EPRECOND. `where` names the header or element in the outcome. */
int fw_if_match(const char *etag, const char *current, const char *where, cl_fhirw_error *fe,
                cl_err *err) {
  const char *q = !strncmp(etag, "W/", 2) ? etag + 2 : etag;
  size_t n = strlen(q);
  if (n < 3 || q[0] != '"' || q[n - 1] != '"' || strspn(q + 1, "0123456789") != n - 2) {
    cl_fhirw_fail(fe, err, 400, "invalid", where, "%s: expected W/\"<versionId>\"", where);
    return CL_EPRECOND;
  }
  if (strlen(current) == n - 2 && !strncmp(q + 1, current, n - 2))
    return 0;
  if (current[0] == '\0')
    cl_fhirw_fail(fe, err, 412, "conflict", where, "%s: the resource does not exist", where);
  else
    cl_fhirw_fail(fe, err, 412, "conflict", where,
                  "%s: the resource is at version %s, not %.*s (read it again, then update)", where,
                  current, (int)(n - 2), q + 1);
  return CL_EPRECOND;
}

/* ---- writing ---- */

void fw_patients_of(wstate *w, const json_t *res) {
  char *text = json_dumps(res, JSON_COMPACT); /* the form cl_req_ctx_patients_of reads */
  if (text != NULL)
    cl_req_ctx_patients_of(w->rc, text, strlen(text));
  free(text);
}

/* Signs the events of the n mappings with the log key and appends them as
 * one batch (the node's own write, with the call's record where it can:
 * `whole`), then waits for the views to fold it. *written: 0 when every
 * event was in the log already. */
int fw_append(wstate *w, cl_fhirw_mapped *const *ms, size_t n, int whole, int *written,
              cl_err *err) {
  size_t k = 0, at = 0;
  for (size_t i = 0; i < n; i++)
    k += ms[i] ? ms[i]->n : 0;
  *written = 0;
  if (k == 0)
    return 0;
  ProtobufCBinaryData *evs = calloc(k, sizeof *evs);
  uint8_t(*hashes)[32] = calloc(k, 32);
  int code = cl_err_set(err, CL_ENOMEM, "out of memory");
  if (evs == NULL || hashes == NULL)
    goto done;
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; ms[i] && j < ms[i]->n; j++, at++) {
      evs[at] = (ProtobufCBinaryData){ms[i]->ev[j].len, ms[i]->ev[j].bytes};
      cl_event_hash(ms[i]->ev[j].bytes, ms[i]->ev[j].len, hashes[at]);
    }
  uint8_t sig[64], pk[32];
  if ((code = cl_log_sign_batch(cl_svc_log(w->h->svc), (const uint8_t(*)[32])hashes, k, sig, pk,
                                err)) != 0)
    goto done;
  Clinlog__V1__Signature bs = CLINLOG__V1__SIGNATURE__INIT;
  bs.key_id = (ProtobufCBinaryData){32, pk};
  bs.signature = (ProtobufCBinaryData){64, sig};
  Clinlog__V1__AppendBatch ab = CLINLOG__V1__APPEND_BATCH__INIT;
  ab.n_events = k;
  ab.events = evs;
  ab.batch_signature = &bs;
  /* the node's own write: the caller's right was checked at admission */
  cl_req_ctx wrc;
  cl_req_ctx_init(&wrc, w->rc->method, "internal");
  wrc.deadline_ms = w->rc->deadline_ms;
  cl_append_result ar;
  w->unfolded = 0;
  /* whole: the call's record in the same Raft entry and store write where
   * it can (on the leader, new events); else written after the answer is
   * made, as any call's */
  code = cl_svc_append_for(w->h->svc, &wrc, whole ? w->rc : &wrc, &ab, 1, &ar, NULL, err);
  if (code == CL_EDUPLICATE) { /* the same write, made before at another time */
    code = 0;
  } else if (code == 0) {
    *written = !ar.duplicate;
    uint64_t last = ar.n ? ar.seq[ar.n - 1] : 0;
    cl_append_result_free(&ar);
    w->seq = last > w->seq ? last : w->seq;
    w->rc->audit_count += k;
    /* committed: the call succeeded (and its record may say so already);
     * views that lag past the wait make it a 202, not an error */
    cl_err werr;
    if (last && cl_svc_wait(w->h->svc, "fhir", last, w->views_deadline_ms, &werr) != 0)
      w->unfolded = 1;
  } else if (code == CL_ECONFLICT) {
    cl_append_result_free(&ar);
  }
done:
  free(evs);
  free(hashes);
  return code;
}

int fw_status_of(int code) {
  return code == CL_ETIMEDOUT                               ? 504
         : code == CL_ENOTLEADER || code == CL_EUNAVAILABLE ? 503
         : code == CL_EDENIED                               ? 403
                                                            : 500;
}

/* Mapping options for the caller (the node writes for it). */
void fw_opts_of(wstate *w, const json_t *refs, cl_fhirw_opts *o) {
  memset(o, 0, sizeof *o);
  o->principal_id = CL_LOG_PRINCIPAL;
  o->role = CL_ROLE_LOG;
  o->on_behalf_of = w->rc->principal;
  o->source_system = "fhir-rest";
  o->now_ns = cl_feed_now_ms() * 1000000;
  o->refs = refs;
  o->resolve = fw_resolve;
  o->fetch = fw_fetch;
  o->ctx = w;
}

/* The location of type/id at the version of hdr's ETag (W/"<n>"). */
void fw_location_of(wstate *w, const char *type, const char *id, const cl_fhir_resp *hdr, char *out,
                    size_t n) {
  const char *vid = hdr->etag[0] ? hdr->etag + 3 : "1\"";
  snprintf(out, n, "%s/%s/%s/_history/%.*s", w->base, type, id, (int)strlen(vid) - 1, vid);
}

/* The answer to a create or update: the resource as the views hold it.
 * `wrote`: the call wrote it (a 202 if the views do not hold it yet). */
static int ans_resource(wstate *w, wans *a, const char *type, const char *id, int created,
                        int wrote) {
  json_t *res;
  if (wrote && w->unfolded)
    return fw_ans_accepted(w, a, type, id);
  int rc = fw_read_res(w, type, id, &res, &a->hdr);
  if (rc && wrote) /* committed (its record may say so already): a success */
    return fw_ans_accepted(w, a, type, id);
  if (rc)
    return fw_ans_outcome(a, 500, "exception", CL_EFAILED, "", "the write is not in the views");
  fw_location_of(w, type, id, &a->hdr, a->location, sizeof a->location);
  if (!w->representation) {
    json_decref(res);
    res = NULL;
  }
  return fw_ans_json(a, created ? 201 : 200, res, 0);
}

/* ---- one resource: create, conditional create, update ---- */

/* A strict search of the views: the searchset Bundle (returned-owned), or
 * NULL when the search is refused (an unknown parameter) or fails. */
static json_t *search(wstate *w, const char *type, const cl_fhir_kv *kv, size_t n) {
  cl_fhir_req rq = {.interaction = CL_FHIR_SEARCH,
                    .type = type,
                    .params = kv,
                    .nparams = n,
                    .strict = 1,
                    .base = w->base};
  cl_fhir_resp rs;
  cl_fhir_handle(w->e, &rq, &rs);
  json_t *b = rs.status == 200 && rs.body ? json_loadb(rs.body, rs.len, 0, NULL) : NULL;
  cl_fhir_resp_clear(&rs);
  return b;
}

/* The resources the search `p` of `type` matches (If-None-Exist, a
 * conditional update): 0, 1 (*id filled), 2 (several), or -1 (not a
 * search the server takes). */
static int matches(wstate *w, const char *type, const cl_http_params *p, char id[CL_FHIR_ID_MAX]) {
  if (p->n == 0 || p->overflow)
    return -1;
  cl_fhir_kv kv[CL_HTTP_MAX_PARAMS + 1];
  memcpy(kv, p->kv, p->n * sizeof kv[0]);
  kv[p->n] = (cl_fhir_kv){"_count", "2"};
  json_t *b = search(w, type, kv, p->n + 1);
  if (b == NULL)
    return -1;
  json_t *entries = json_object_get(b, "entry");
  int n = 0;
  for (size_t i = 0; i < json_array_size(entries); i++) {
    json_t *res = json_object_get(json_array_get(entries, i), "resource");
    const char *rt = json_string_value(json_object_get(res, "resourceType"));
    const char *rid = json_string_value(json_object_get(res, "id"));
    if (rt && rid && !strcmp(rt, type) && n++ == 0)
      snprintf(id, CL_FHIR_ID_MAX, "%s", rid);
  }
  json_decref(b);
  return n > 1 ? 2 : n;
}

/* The same for a query string ("identifier=sys|val&..."). */
int fw_matches_text(wstate *w, const char *type, const char *query, char id[CL_FHIR_ID_MAX]) {
  char *q = strdup(query);
  if (q == NULL)
    return -1;
  cl_http_params p = {.n = 0};
  cl_http_form_add(&p, q);
  int n = matches(w, type, &p, id);
  free(q);
  return n;
}

/* A conditional update's target (FHIR R4 http.html#cond-update): the one
 * resource the search `p` matches (the body's id, if any, must be it),
 * else the body's id (an update as create) or "" (a create). 0 with id
 * filled, or CL_EMALFORMED and fe: 400 not a search the server takes or
 * the body's id is another resource's, 412 several match. */
int fw_cond_target(wstate *w, const char *type, const cl_http_params *p, const json_t *res,
                   const char *where, char id[CL_FHIR_ID_MAX], cl_fhirw_error *fe, cl_err *err) {
  const char *body_id = json_string_value(json_object_get(res, "id"));
  int n = matches(w, type, p, id);
  if (n < 0)
    return cl_fhirw_fail(fe, err, 400, "invalid", where, "%s: not a search of %s the server takes",
                         where, type);
  if (n == 2)
    return cl_fhirw_fail(fe, err, 412, "multiple-matches", where, "%s: more than one %s matches",
                         where, type);
  if (n == 1 && body_id != NULL && strcmp(body_id, id) != 0)
    return cl_fhirw_fail(fe, err, 400, "invalid", where,
                         "%s: the search matches %s/%s, the body's id is another", where, type, id);
  if (n == 0)
    snprintf(id, CL_FHIR_ID_MAX, "%s", body_id && strlen(body_id) < CL_FHIR_ID_MAX ? body_id : "");
  return 0;
}

static int write_one(wstate *w, const char *id, json_t *res, const char *base_version, int patched,
                     wans *a);

/* ---- entered-in-error: a retraction (docs/fhir.md#delete) ---- */

/* The event that made version vid of type/id (its Provenance's id) into
 * ev: 0; 1 when that event made other resources too; -1 none found. */
static int event_of(wstate *w, const char *type, const char *id, const char *vid, uint8_t ev[16]) {
  char target[CL_FHIR_ID_MAX + 72], want[CL_FHIR_ID_MAX + 104];
  snprintf(target, sizeof target, "%s/%s", type, id);
  snprintf(want, sizeof want, "/%s/_history/%s", target, vid);
  cl_fhir_kv kv[2] = {{"target", target}, {"_count", "1000"}};
  json_t *b = search(w, "Provenance", kv, 2);
  json_t *entries = json_object_get(b, "entry");
  int found = -1;
  size_t wl = strlen(want);
  for (size_t i = 0; found < 0 && i < json_array_size(entries); i++) {
    json_t *prov = json_object_get(json_array_get(entries, i), "resource");
    json_t *ts = json_object_get(prov, "target");
    const char *pid = json_string_value(json_object_get(prov, "id"));
    for (size_t j = 0; found < 0 && j < json_array_size(ts); j++) {
      const char *ref = json_string_value(json_object_get(json_array_get(ts, j), "reference"));
      size_t rl = ref ? strlen(ref) : 0;
      /* relative ("Type/id/_history/n") or absolute: the same ending */
      if (ref && pid &&
          ((rl + 1 == wl && !strcmp(ref, want + 1)) || (rl > wl && !strcmp(ref + rl - wl, want))) &&
          cl_http_uuid(pid, ev) == 0)
        found = json_array_size(ts) == 1 ? 0 : 1;
    }
  }
  json_decref(b);
  return found;
}

/* An update of type/id (at base_version) to entered-in-error: the
 * EnteredInError event retracting the event that made that version, into
 * *m (NULL: the resource is entered-in-error already, nothing to write).
 * 0, or CL_EMALFORMED (fe: 403 without the right to append
 * EnteredInError, 422 what cannot be retracted so), CL_ENOMEM. */
int fw_retraction(wstate *w, const char *type, const char *id, const json_t *res,
                  const char *base_version, const char *expr, cl_fhirw_mapped **m,
                  cl_fhirw_error *fe, cl_err *err) {
  const char *at = expr ? expr : type;
  *m = NULL;
  if (!cl_svc_may_append(w->h->svc, w->rc, CLINLOG__V1__EVENT__BODY_ENTERED_IN_ERROR))
    return cl_fhirw_fail(fe, err, 403, "forbidden", at,
                         "an update to entered-in-error appends EnteredInError, which the "
                         "caller's roles may not");
  json_t *cur;
  if (read_as(w, type, id, 1, &cur, NULL) != 0)
    return cl_fhirw_fail(fe, err, 500, "exception", at, "reading %s/%s failed", type, id);
  uint8_t ev[16];
  int rc = 0, k = 0, already = cl_fhirw_entered_in_error(cur);
  if (!already && (k = event_of(w, type, id, base_version, ev)) != 0) {
    rc = cl_fhirw_fail(fe, err, 422, "not-supported", at,
                       k < 0 ? "no event found that made version %s"
                             : "the event that made version %s made other resources too: "
                               "retract it with an EnteredInError through clinlog.v1.Log",
                       base_version);
  } else { /* retracted already: still nothing else may change */
    cl_fhirw_opts o;
    fw_opts_of(w, NULL, &o);
    rc = cl_fhirw_retract(res, cur, already ? NULL : ev, expr, base_version, &o, m, fe, err);
  }
  json_decref(cur);
  return rc;
}

/* Create, conditional create, update (If-Match), conditional update
 * (`cond`: the URL's search, or NULL) of one resource. */
static int one(wstate *w, struct MHD_Connection *c, const char *type, const char *id,
               const cl_http_params *cond, json_t *res, wans *a) {
  cl_err err;
  cl_fhirw_error fe;
  char target[CL_FHIR_ID_MAX];
  const char *rt = json_string_value(json_object_get(res, "resourceType"));
  if (rt == NULL || strcmp(rt, type) != 0) {
    cl_fhirw_fail(&fe, &err, 400, "invalid", rt ? rt : "",
                  "the body is a %.40s, the URL names %.40s",
                  rt ? rt : "resource without resourceType", type);
    return fw_ans_refusal(a, &fe);
  }
  if (cond != NULL) {
    if (fw_cond_target(w, type, cond, res, "the search", target, &fe, &err) != 0)
      return fw_ans_refusal(a, &fe);
    id = target[0] ? target : NULL;
  }
  const char *ine = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-None-Exist");
  if (id == NULL && ine != NULL) {
    char found[CL_FHIR_ID_MAX];
    int n = fw_matches_text(w, type, ine, found);
    if (n < 0)
      return fw_ans_outcome(a, 400, "invalid", CL_EINVAL, "",
                            "If-None-Exist: not a search of this type the server takes");
    if (n == 2)
      return fw_ans_outcome(a, 412, "duplicate", CL_EPRECOND, "",
                            "If-None-Exist: more than one resource matches");
    if (n == 1) { /* it exists: nothing written */
      snprintf(w->rc->audit_what, sizeof w->rc->audit_what, "%s/%s", type, found);
      return ans_resource(w, a, type, found, 0, 0);
    }
  }
  if (id == NULL) /* create: the server assigns the id */
    json_object_del(res, "id");
  char base_version[24] = "";
  if (id != NULL)
    fw_version_of(w, type, id, base_version);
  const char *im = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-Match");
  if (id != NULL && im != NULL && fw_if_match(im, base_version, "If-Match", &fe, &err) != 0)
    return fw_ans_json(a, fe.status, cl_fhirw_outcome(&fe), CL_EPRECOND);
  return write_one(w, id, res, base_version, 0, a);
}

/* Maps res (an update of id at base_version, or a create: id NULL) and
 * appends its events; the answer into a. `patched`: res is a patch's
 * result, so a refusal is a 422 (the patch was well-formed, its result
 * is not a resource the server takes). */
static int write_one(wstate *w, const char *id, json_t *res, const char *base_version, int patched,
                     wans *a) {
  cl_err err;
  cl_fhirw_error fe;
  cl_fhirw_opts o;
  fw_opts_of(w, NULL, &o);
  cl_fhirw_mapped *m;
  const char *type = json_string_value(json_object_get(res, "resourceType"));
  int rc;
  if (id != NULL && base_version[0] && cl_fhirw_entered_in_error(res)) {
    rc = fw_retraction(w, type, id, res, base_version, NULL, &m, &fe, &err);
    if (rc == 0 && m == NULL) /* entered-in-error already */
      return ans_resource(w, a, type, id, 0, 0);
  } else {
    rc = cl_fhirw_map(res, NULL, id, base_version, &o, &m, &fe, &err);
  }
  if (rc == CL_EMALFORMED && patched)
    fe.status = 422;
  if (rc == CL_EMALFORMED)
    return fw_ans_refusal(a, &fe);
  if (rc)
    return fw_ans_outcome(a, fw_status_of(rc), "exception", rc, "", err.msg);
  /* all the record says, before the append it may ride with */
  cl_req_ctx_add_patient(w->rc, m->patient_id);
  fw_patients_of(w, res);
  snprintf(w->rc->audit_what, sizeof w->rc->audit_what, "%s/%s", m->type, m->id);
  int written;
  if ((rc = fw_append(w, &m, 1, 1, &written, &err)) != 0)
    fw_ans_outcome(a, fw_status_of(rc), "exception", rc, "", err.msg);
  else
    ans_resource(w, a, m->type, m->id, written && base_version[0] == '\0', written);
  cl_fhirw_mapped_free(m);
  return 0;
}

/* ---- PATCH ---- */

/* PATCH [type]/[id] with a JSON Patch (text, n bytes): applied to the
 * resource as the views serve it, the result written as an update of that
 * version (If-Match checked against it). A patch that changes nothing
 * writes nothing (200, the resource as it is). */
static int patch(wstate *w, struct MHD_Connection *c, const char *type, const char *id,
                 const char *text, size_t n, wans *a) {
  cl_err err;
  cl_fhirw_error fe;
  json_t *res; /* its numbers as written (7.10 stays 7.10) */
  int rc = read_as(w, type, id, 1, &res, NULL);
  if (rc == CL_ENOTFOUND)
    return fw_ans_outcome(a, 404, "not-found", CL_ENOTFOUND, "", "no such resource to patch");
  if (rc)
    return fw_ans_outcome(a, 500, "exception", rc, "",
                          "reading the resource from the views failed");
  const char *v = json_string_value(json_object_get(json_object_get(res, "meta"), "versionId"));
  char base_version[24];
  snprintf(base_version, sizeof base_version, "%s", v ? v : "");
  const char *im = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-Match"), *rt;
  json_t *before = json_deep_copy(res);
  if (im != NULL && fw_if_match(im, base_version, "If-Match", &fe, &err) != 0)
    fw_ans_json(a, fe.status, cl_fhirw_outcome(&fe), CL_EPRECOND);
  else if (before == NULL)
    fw_ans_outcome(a, 500, "exception", CL_ENOMEM, "", "out of memory");
  else if ((rc = cl_fhirw_patch(&res, text, n, &fe, &err)) != 0)
    rc == CL_EMALFORMED ? fw_ans_refusal(a, &fe)
                        : fw_ans_outcome(a, 500, "exception", rc, "", err.msg);
  else if (json_equal(before, res)) /* nothing to write */
    ans_resource(w, a, type, id, 0, 0);
  else if ((rt = json_string_value(json_object_get(res, "resourceType"))) == NULL ||
           strcmp(rt, type) != 0)
    fw_ans_outcome(a, 422, "processing", CL_EINVAL, "resourceType",
                   "the patched resource must stay a resource of the URL's type");
  else
    write_one(w, id, res, base_version, 1, a);
  json_decref(before);
  json_decref(res);
  return 0;
}

/* ---- admission ---- */

/* The event types a resource of `type` may be written as (what the hooks
 * check), as bodiless events: field number, wire type 2, length 0; at most
 * MAX_KINDS of them. */
#define MAX_KINDS 3
static const uint8_t *kinds_of(const char *type, size_t *n) {
  static const uint8_t patient[2][3] = {{0xa2, 0x06, 0}, {0xaa, 0x06, 0}};   /* 100, 101 */
  static const uint8_t encounter[3][3] = {
      {0xb2, 0x06, 0}, {0xba, 0x06, 0}, {0xc2, 0x06, 0}}; /* 102, 103, 104 (cancelled) */
  static const uint8_t condition[3] = {0xc2, 0x0c, 0};                       /* 200 */
  static const uint8_t allergy[3] = {0xca, 0x0c, 0};                         /* 201 */
  static const uint8_t observation[3] = {0xd2, 0x0c, 0};                     /* 202 */
  static const uint8_t prescribed[2][3] = {{0xe2, 0x12, 0}, {0xea, 0x12, 0}}; /* 300, 301 */
  static const uint8_t administered[3] = {0xfa, 0x12, 0};                    /* 303 */
  static const uint8_t immunized[3] = {0xe2, 0x0c, 0};                       /* 204 */
  static const uint8_t dispensed[3] = {0xf2, 0x12, 0};                       /* 302 */
  static const uint8_t ordered[3] = {0xf2, 0x0c, 0};                         /* 206 */
  static const uint8_t lab_report[3] = {0xda, 0x0c, 0};                      /* 203 */
  static const uint8_t note[3] = {0xea, 0x0c, 0};                            /* 205 */
  static const uint8_t study[3] = {0x8a, 0x19, 0};                           /* 401 */
  static const uint8_t eligibility[3] = {0xa2, 0x1f, 0};                     /* 500 */
  static const uint8_t charge[3] = {0xaa, 0x1f, 0};                          /* 501 */
  static const uint8_t claim[3] = {0xb2, 0x1f, 0};                           /* 502 */
  static const uint8_t adjudicated[3] = {0xba, 0x1f, 0};                     /* 503 */
  static const uint8_t appointment[2][3] = {{0xc2, 0x25, 0}, {0xca, 0x25, 0}}; /* 600, 601 */
  static const uint8_t message[3] = {0xd2, 0x25, 0};                           /* 602 */
  static const uint8_t refill[3] = {0xda, 0x25, 0};                            /* 603 */
  static const uint8_t device[3] = {0xe2, 0x2b, 0};                            /* 700 */
  *n = 1;
  if (type == NULL)
    return (*n = 0, NULL);
  if (!strcmp(type, "Patient"))
    return (*n = 2, patient[0]);
  if (!strcmp(type, "Encounter"))
    return (*n = 3, encounter[0]);
  if (!strcmp(type, "Condition"))
    return condition;
  if (!strcmp(type, "AllergyIntolerance"))
    return allergy;
  if (!strcmp(type, "Observation"))
    return observation;
  if (!strcmp(type, "MedicationRequest")) /* a stop: also MedicationDiscontinued */
    return (*n = 2, prescribed[0]);
  if (!strcmp(type, "MedicationAdministration"))
    return administered;
  if (!strcmp(type, "Immunization"))
    return immunized;
  if (!strcmp(type, "MedicationDispense"))
    return dispensed;
  if (!strcmp(type, "ServiceRequest"))
    return ordered;
  if (!strcmp(type, "DiagnosticReport"))
    return lab_report;
  if (!strcmp(type, "DocumentReference"))
    return note;
  if (!strcmp(type, "ImagingStudy"))
    return study;
  if (!strcmp(type, "ChargeItem"))
    return charge;
  if (!strcmp(type, "Claim"))
    return claim;
  if (!strcmp(type, "ClaimResponse"))
    return adjudicated;
  if (!strcmp(type, "Coverage") || !strcmp(type, "CoverageEligibilityResponse") ||
      !strcmp(type, "CoverageEligibilityRequest")) /* a check: its pair one event */
    return eligibility;
  if (!strcmp(type, "Appointment")) /* cancelled: also AppointmentCancelled */
    return (*n = 2, appointment[0]);
  if (!strcmp(type, "Communication"))
    return message;
  if (!strcmp(type, "Task"))
    return refill;
  if (!strcmp(type, "Device"))
    return device;
  return (*n = 0, NULL);
}

/* What the hooks see of a write: a batch of the event types it may make
 * (body: a resource or a Bundle; NULL: one resource of `type`, a PATCH). */
static int as_batch(const json_t *body, const char *type, Clinlog__V1__AppendBatch *b,
                    ProtobufCBinaryData **evs) {
  const json_t *jes = json_object_get(body, "entry");
  size_t n = jes ? json_array_size(jes) : 1, k = 0;
  *evs = calloc(MAX_KINDS * (n ? n : 1), sizeof **evs);
  if (*evs == NULL)
    return CL_ENOMEM;
  for (size_t i = 0; i < n && i < MAX_ENTRIES; i++) {
    const json_t *res = jes ? json_object_get(json_array_get(jes, i), "resource") : body;
    size_t m;
    const char *rt = res ? json_string_value(json_object_get(res, "resourceType")) : type;
    const uint8_t *t = kinds_of(rt, &m);
    for (size_t j = 0; j < m; j++)
      (*evs)[k++] = (ProtobufCBinaryData){3, (uint8_t *)t + 3 * j};
  }
  b->events = *evs;
  b->n_events = k;
  return 0;
}

/* ---- the route ---- */

enum MHD_Result http_serve_write(cl_http *h, struct MHD_Connection *c, const char *rest,
                                 const char *method, req *r) {
  cl_req_ctx rc;
  cl_err err, aerr;
  cl_err_clear(&err);
  http_ctx_init(h, c, &rc, M_FHIR_WRITE);
  const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
  const char *prefer = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Prefer");
  wstate w = {.h = h, .rc = &rc, .representation = !(prefer && strstr(prefer, "return=minimal"))};
  /* the views' waits (not the commit's) are bounded by Prefer: wait too */
  w.views_deadline_ms = cl_feed_now_ms() + http_prefer_wait_ms(prefer, h->wait_ms);
  if (w.views_deadline_ms > rc.deadline_ms)
    w.views_deadline_ms = rc.deadline_ms;
  const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
  snprintf(w.base, sizeof w.base, "%s://%s%s", h->tls ? "https" : "http", host ? host : "localhost",
           CL_HTTP_BASE_PATH);
  /* what the URL names: [type] or [type]/[id], or the base (a Bundle) */
  char type[64] = "", id[CL_FHIR_ID_MAX] = "";
  const char *seg = rest[0] == '/' ? rest + 1 : rest;
  const char *slash = strchr(seg, '/');
  if (slash == NULL) {
    snprintf(type, sizeof type, "%.63s", seg);
  } else if ((size_t)(slash - seg) < sizeof type && strchr(slash + 1, '/') == NULL &&
             strlen(slash + 1) < sizeof id) {
    snprintf(type, sizeof type, "%.*s", (int)(slash - seg), seg);
    snprintf(id, sizeof id, "%s", slash + 1);
  }
  int put = !strcmp(method, "PUT"), is_patch = !strcmp(method, "PATCH");
  cl_http_params cond = {.n = 0}; /* PUT [type]?[search]: a conditional update */
  if (put && type[0] && !id[0])
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, http_add_arg, &cond);
  /* read-your-writes across nodes: the client's last X-Clinlog-Sequence */
  const char *ms = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Clinlog-Min-Sequence");
  char *end = NULL;
  unsigned long long min_seq = ms ? strtoull(ms, &end, 10) : 0;
  wans a = {.status = 0};
  if (r->too_big)
    fw_ans_outcome(&a, 413, "too-costly", CL_ETOOBIG, "", "the request is over 1 MiB");
  else if (is_patch && (!type[0] || !id[0]))
    fw_ans_outcome(&a, 405, "not-supported", CL_EINVAL, "", "PATCH is [type]/[id]");
  else if (is_patch && (ct == NULL || strncasecmp(ct, "application/json-patch+json", 27) != 0))
    fw_ans_outcome(&a, 415, "not-supported", CL_EINVAL, "",
                   "Content-Type: PATCH takes a JSON Patch, application/json-patch+json (FHIRPath "
                   "Patch is not supported)");
  else if (!is_patch && (ct == NULL || (strncasecmp(ct, "application/fhir+json", 21) != 0 &&
                                        strncasecmp(ct, "application/json", 16) != 0)))
    fw_ans_outcome(&a, 415, "not-supported", CL_EINVAL, "",
                   "Content-Type: FHIR writes take application/fhir+json");
  else if (put && (!type[0] || (!id[0] && cond.n == 0)))
    fw_ans_outcome(&a, 405, "not-supported", CL_EINVAL, "",
                   "PUT is [type]/[id] (update) or [type]?[search] (conditional update)");
  else if (cond.overflow)
    fw_ans_outcome(&a, 400, "too-costly", CL_EINVAL, "", "more than 128 parameters");
  else if (ms != NULL && (end == ms || *end != '\0'))
    fw_ans_outcome(&a, 400, "invalid", CL_EINVAL, "",
                   "X-Clinlog-Min-Sequence: expected a log sequence number");
  else if (type[0] && !cl_fhir_type_of(type))
    fw_ans_outcome(&a, 404, "not-supported", CL_ENOTFOUND, "", "no such resource type");
  /* parsed before admission (a pure function of the body) so the hooks see
   * the event types; a refusal is admitted and recorded like any call */
  json_t *body = NULL;
  cl_fhirw_error fe;
  if (a.status == 0 && r->body == NULL)
    fw_ans_outcome(&a, 400, "structure", CL_EINVAL, "", "an empty body (expected a FHIR resource)");
  else if (a.status == 0 && !is_patch && cl_fhirw_parse(r->body, r->len, &body, &fe, &err) != 0)
    fe.status ? fw_ans_refusal(&a, &fe)
              : fw_ans_outcome(&a, 500, "exception", err.code, "", err.msg);
  Clinlog__V1__AppendBatch as_grpc = CLINLOG__V1__APPEND_BATCH__INIT;
  ProtobufCBinaryData *evs = NULL;
  if ((body != NULL || (is_patch && a.status == 0)) && as_batch(body, type, &as_grpc, &evs) != 0)
    fw_ans_outcome(&a, 500, "exception", CL_ENOMEM, "", "out of memory");
  int admitted = cl_svc_admit(h->svc, &rc, &as_grpc.base, &err);
  free(evs);
  if (admitted != 0) {
    json_decref(body);
    free(a.body);
    if (http_done(h, &rc, err.code, err.msg, &aerr))
      return http_unrecorded(c, &rc, &aerr);
    return http_refuse(c, &rc, &err);
  }
  cl_runner *runner = cl_svc_runner(h->svc, "fhir");
  if (a.status != 0) {
    /* refused above */
  } else if (runner == NULL) {
    fw_ans_outcome(&a, 503, "transient", CL_EUNAVAILABLE, "",
                   "this node does not run the fhir projection");
  } else if (min_seq > 0 && cl_svc_wait(h->svc, "fhir", min_seq, w.views_deadline_ms, &err) != 0) {
    /* the state it reads (versions, matches) is at least what the client saw */
    fw_ans_outcome(&a, err.code == CL_ETIMEDOUT ? 504 : 503, "timeout", err.code, "", err.msg);
  } else if (cl_fhir_engine_new(cl_runner_proj(runner), cl_svc_log(h->svc), &w.e, &err) != 0) {
    fw_ans_outcome(&a, 500, "exception", err.code, "", err.msg);
  } else {
    if (is_patch)
      patch(&w, c, type, id, r->body, r->len, &a);
    else if (type[0])
      one(&w, c, type, id[0] ? id : NULL, put && !id[0] ? &cond : NULL, body, &a);
    else
      fw_bundle(&w, body, &a);
    cl_fhir_engine_free(w.e);
  }
  json_decref(body);
  if (a.body != NULL)
    cl_req_ctx_patients_of(&rc, a.body, a.len);
  if (http_done(h, &rc, a.code, a.code ? "refused" : "", &aerr)) {
    free(a.body);
    return http_unrecorded(c, &rc, &aerr);
  }
  return http_send_located(c, a.status, a.body, a.len, rc.request_id, &a.hdr,
                           a.location[0] ? a.location : NULL, w.seq);
}

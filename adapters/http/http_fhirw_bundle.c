/* Transaction and batch Bundles on the REST face (POST [base]; docs/fhir.md
 * "Writes"): entries POST [type], PUT [type]/[id] and PUT [type]?[search],
 * with request.ifNoneExist and request.ifMatch, references between entries
 * by fullUrl. A transaction maps every entry (what others reference first)
 * and appends all their events as one atomic batch, or refuses the whole
 * Bundle with the first entry's refusal; a batch writes each entry on its
 * own. A DiagnosticReport takes the Observation entries its result
 * references as its lines: in a transaction by fullUrl
 * (cl_fhirw_bundle_lines, the lines then contained), in a batch by fullUrl
 * or "Observation/<id>" (cl_fhirw_pair_lines, as an export writes them;
 * the lines then checked against the views), the report and its lines one
 * write, each line entry answered as its report is. A
 * CoverageEligibilityResponse takes the CoverageEligibilityRequest entry
 * its request references (fullUrl or CoverageEligibilityRequest/<id>, in
 * both kinds of Bundle) the same way: one EligibilityChecked. The shared write path
 * is http_fhirw.c's (http_fhirw_int.h). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/fhir/fhirw.h"
#include "adapters/http/http_fhirw_int.h"
#include "query/fhir/fj.h"

typedef struct entry {
  json_t *res;                 /* entry.resource (borrowed from the Bundle) */
  const char *full_url;        /* entry.fullUrl, or NULL */
  const char *ine;             /* entry.request.ifNoneExist, or NULL */
  const char *im;              /* entry.request.ifMatch, or NULL */
  const char *cond;            /* a conditional update's search (request.url after '?') */
  char id[CL_FHIR_ID_MAX];     /* a PUT's id, "" for a POST */
  char path[48];               /* "Bundle.entry[i]" */
  cl_fhirw_mapped *m;          /* its events, once mapped */
  char exists[CL_FHIR_ID_MAX]; /* If-None-Exist matched this one: nothing written */
  int created;
  json_t *outcome; /* batch: why it was refused (or 202: committed, not yet in the views) */
  int status;      /* batch: its status */
  char line[CL_FHIR_ID_MAX]; /* a report's line (cl_fhirw_bundle_lines): its Observation's id */
} entry;

/* Checks entry i's shape and request (method POST [type], PUT [type]/[id]). */
static int entry_of(json_t *je, size_t i, entry *e, cl_fhirw_error *fe, cl_err *err) {
  memset(e, 0, sizeof *e);
  snprintf(e->path, sizeof e->path, "Bundle.entry[%zu]", i);
  char p[96];
  e->res = json_object_get(je, "resource");
  json_t *rq = json_object_get(je, "request");
  e->full_url = json_string_value(json_object_get(je, "fullUrl"));
  const char *method = json_string_value(json_object_get(rq, "method"));
  const char *url = json_string_value(json_object_get(rq, "url"));
  const char *rt = json_string_value(json_object_get(e->res, "resourceType"));
  e->ine = json_string_value(json_object_get(rq, "ifNoneExist"));
  e->im = json_string_value(json_object_get(rq, "ifMatch"));
  snprintf(p, sizeof p, "%s.resource", e->path);
  if (!json_is_object(e->res) || rt == NULL)
    return cl_fhirw_fail(fe, err, 400, "required", p, "required: a resource with a resourceType");
  snprintf(p, sizeof p, "%s.request", e->path);
  if (method == NULL || url == NULL)
    return cl_fhirw_fail(fe, err, 400, "required", p, "required: request.method and request.url");
  size_t tl = strlen(rt);
  if (!strcmp(method, "POST") && !strcmp(url, rt))
    return 0;
  if (!strcmp(method, "PUT") && !strncmp(url, rt, tl) && url[tl] == '?' && url[tl + 1]) {
    e->cond = url + tl + 1;
    return 0;
  }
  if (!strcmp(method, "PUT") && !strncmp(url, rt, tl) && url[tl] == '/' && url[tl + 1] &&
      !strchr(url + tl + 1, '/') && strlen(url + tl + 1) < sizeof e->id) {
    snprintf(e->id, sizeof e->id, "%s", url + tl + 1);
    return 0;
  }
  snprintf(p, sizeof p, "%s.request.url", e->path);
  return cl_fhirw_fail(fe, err, 400, "not-supported", p,
                       "expected POST %s (create), PUT %s/[id] (update) or PUT %s?[search] "
                       "(conditional update)",
                       rt, rt, rt);
}

/* The order entries are mapped in: what others reference first. */
static void order_of(entry *es, size_t n, size_t *ord) {
  size_t k = 0;
  for (int rank = 0; rank <= CL_FHIRW_RANKS; rank++) /* the last: refused, nothing to map */
    for (size_t i = 0; i < n; i++)
      if ((es[i].res ? cl_fhirw_rank(es[i].res) : CL_FHIRW_RANKS) == rank)
        ord[k++] = i;
}

/* cl_fhirw_line_fn: a batch's line entry (w->lines). */
static int batch_line(void *ctx, const char *ref, const json_t **out) {
  *out = json_object_get(((wstate *)ctx)->lines, ref);
  return *out ? 0 : CL_ENOTFOUND;
}

/* A batch's lines (cl_fhirw_pair_lines) into w->lines by fullUrl and
 * "Observation/<id>", and a response's CoverageEligibilityRequest (also in
 * a transaction, whose report lines cl_fhirw_bundle_lines took: tx); a
 * report or response on another's is refused: in a batch its entry, in a
 * transaction the Bundle (1, fe). 0, 1 or CL_ENOMEM. */
static int batch_lines(wstate *w, entry *es, size_t n, int tx, long *line_of, long *line_at,
                       cl_fhirw_error *fe) {
  const json_t **res = calloc(n ? n : 1, sizeof *res);
  const char **urls = calloc(n ? n : 1, sizeof *urls);
  long *shared = calloc(n ? n : 1, sizeof *shared);
  long *of = tx ? calloc(n ? n : 1, sizeof *of) : line_of,
       *at = tx ? calloc(n ? n : 1, sizeof *at) : line_at;
  int rc = res && urls && shared && of && at ? 0 : CL_ENOMEM;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    const char *rt = json_string_value(json_object_get(es[i].res, "resourceType"));
    if (es[i].outcome == NULL && (!tx || (rt && !strncmp(rt, "CoverageEligibility", 19))))
      res[i] = es[i].res, urls[i] = es[i].full_url;
  }
  if (rc == 0)
    rc = cl_fhirw_pair_lines(res, urls, n, of, at, shared, &w->lines);
  for (size_t k = 0; rc == 0 && k < n; k++) {
    if (shared[k] >= 0) {
      char p[96];
      snprintf(p, sizeof p, "%s.resource", es[k].path);
      cl_fhirw_pair_refusal(es[k].res, shared[k], p, fe);
      if (tx) {
        rc = 1;
        break;
      }
      es[k].outcome = cl_fhirw_outcome(fe);
      es[k].status = fe->status;
    }
    if (tx && of[k] >= 0)
      line_of[k] = of[k], line_at[k] = at[k];
  }
  free(res), free(urls), free(shared);
  if (tx)
    free(of), free(at);
  return rc;
}

/* Maps entry e (after its If-None-Exist); its references go into refs. */
static int map_entry(wstate *w, entry *e, json_t *refs, cl_fhirw_error *fe, cl_err *err) {
  const char *rt = json_string_value(json_object_get(e->res, "resourceType"));
  char p[64];
  if (e->cond != NULL) {
    char *q = strdup(e->cond);
    cl_http_params cp = {.n = 0};
    if (q == NULL)
      return cl_err_set(err, CL_ENOMEM, "out of memory");
    cl_http_form_add(&cp, q);
    snprintf(p, sizeof p, "%s.request.url", e->path);
    int rc = fw_cond_target(w, rt, &cp, e->res, p, e->id, fe, err);
    free(q);
    if (rc)
      return rc;
  }
  if (!e->id[0] && e->ine != NULL) {
    int n = fw_matches_text(w, rt, e->ine, e->exists);
    if (n != 1)
      e->exists[0] = '\0';
    if (n < 0 || n == 2)
      return cl_fhirw_fail(fe, err, n < 0 ? 400 : 412, n < 0 ? "invalid" : "duplicate", e->path,
                           "request.ifNoneExist: %s",
                           n < 0 ? "not a search of this type the server takes"
                                 : "more than one resource matches");
    if (n == 1) { /* exists: referenced as it is */
      char bid[128];
      cl_fhirw_mapped m = {.n = 0};
      if (fw_resolve(w, rt, e->exists, bid, sizeof bid, err) != 0)
        return cl_fhirw_fail(fe, err, 500, "exception", e->path, "reading %s/%s failed", rt,
                             e->exists);
      snprintf(m.type, sizeof m.type, "%s", rt);
      snprintf(m.id, sizeof m.id, "%s", e->exists);
      snprintf(m.bid, sizeof m.bid, "%s", bid);
      json_t *cur;
      if (fw_read_res(w, rt, e->exists, &cur, NULL) == 0) { /* whose it is */
        const char *pref = json_string_value(json_object_get(
            json_object_get(cur, !strcmp(rt, "AllergyIntolerance") ? "patient" : "subject"),
            "reference"));
        snprintf(m.patient_id, sizeof m.patient_id, "%s",
                 !strcmp(rt, "Patient")                  ? bid
                 : pref && !strncmp(pref, "Patient/", 8) ? pref + 8
                                                         : "");
        fw_patients_of(w, cur); /* the answer holds it: the record names its patients */
        json_decref(cur);
      }
      return cl_fhirw_refs_add(refs, &m, e->full_url);
    }
  }
  if (!e->id[0])
    json_object_del(e->res, "id");
  char base_version[24] = "";
  if (e->id[0])
    fw_version_of(w, rt, e->id, base_version);
  e->created = base_version[0] == '\0';
  snprintf(p, sizeof p, "%s.request.ifMatch", e->path);
  if (e->id[0] && e->im != NULL && fw_if_match(e->im, base_version, p, fe, err) != 0)
    return CL_EPRECOND;
  cl_fhirw_opts o;
  fw_opts_of(w, refs, &o);
  o.line = w->lines ? batch_line : NULL;
  snprintf(p, sizeof p, "%s.resource", e->path);
  int rc;
  if (e->id[0] && base_version[0] && cl_fhirw_entered_in_error(e->res)) {
    if ((rc = fw_retraction(w, rt, e->id, e->res, base_version, p, &e->m, fe, err)) == 0 && !e->m) {
      snprintf(e->exists, sizeof e->exists, "%s", e->id); /* entered-in-error already */
      return 0;
    }
  } else {
    rc = cl_fhirw_map(e->res, p, e->id[0] ? e->id : NULL, base_version, &o, &e->m, fe, err);
  }
  if (rc == 0) {
    cl_req_ctx_add_patient(w->rc, e->m->patient_id);
    fw_patients_of(w, e->res); /* before a transaction's append its record may ride with */
    rc = cl_fhirw_refs_add(refs, e->m, e->full_url);
    if (rc == 0)
      rc = cl_fhirw_refs_keep(refs, e->m, e->res);
  } else if (rc != CL_EMALFORMED) {
    cl_fhirw_fail(fe, err, fw_status_of(rc), "exception", e->path, "%s", err->msg);
  }
  return rc;
}

/* e, a line of the report `rep` took (its result[j]), or the request of a
 * CoverageEligibilityResponse: the id of the resource the views made of
 * it, and created as the report (response) was. */
static void line_id(wstate *w, const entry *rep, size_t j, entry *e) {
  json_t *r;
  cl_fhir_resp hdr;
  if (rep->m == NULL || fw_read_res(w, rep->m->type, rep->m->id, &r, &hdr) != 0)
    return;
  int elig = !strcmp(rep->m->type, "CoverageEligibilityResponse");
  const char *want = elig ? "CoverageEligibilityRequest/" : "Observation/";
  const char *ref = json_string_value(json_object_get(
      elig ? json_object_get(r, "request") : json_array_get(json_object_get(r, "result"), j),
      "reference"));
  if (ref != NULL && !strncmp(ref, want, strlen(want)))
    snprintf(e->line, sizeof e->line, "%s", ref + strlen(want));
  e->created = rep->created;
  json_decref(r);
}

/* The response entry of e: status, location, etag (and the resource). */
static json_t *entry_response(wstate *w, const entry *e, int written) {
  if (e->outcome != NULL) {
    char st[8];
    snprintf(st, sizeof st, "%d", e->status);
    return json_pack("{s:{s:s,s:O}}", "response", "status", st, "outcome", e->outcome);
  }
  if (!e->line[0] && !e->exists[0] && e->m == NULL) /* a line the views do not show */
    return json_pack("{s:{s:s}}", "response", "status", "500");
  const char *type = e->line[0] || e->exists[0]
                         ? json_string_value(json_object_get(e->res, "resourceType"))
                         : e->m->type;
  const char *id = e->line[0] ? e->line : e->exists[0] ? e->exists : e->m->id;
  json_t *res;
  cl_fhir_resp hdr;
  if (fw_read_res(w, type, id, &res, &hdr) != 0)
    return json_pack("{s:{s:s}}", "response", "status", "500");
  char loc[640], lm[40];
  fw_location_of(w, type, id, &hdr, loc, sizeof loc);
  fj_instant_ns_text(hdr.last_modified_ns, lm);
  int created = !e->exists[0] && e->created && written; /* a line: as its report */
  json_t *out =
      json_pack("{s:{s:s,s:s,s:s,s:s}}", "response", "status", created ? "201 Created" : "200 OK",
                "location", loc, "etag", hdr.etag, "lastModified", lm);
  if (out != NULL && w->representation)
    json_object_set(out, "resource", res);
  json_decref(res);
  return out;
}

int fw_bundle(wstate *w, json_t *b, wans *a) {
  cl_fhirw_error fe;
  cl_err err;
  const char *rt = json_string_value(json_object_get(b, "resourceType"));
  const char *bt = json_string_value(json_object_get(b, "type"));
  if (rt == NULL || strcmp(rt, "Bundle") != 0)
    return fw_ans_outcome(a, 400, "invalid", CL_EINVAL, "resourceType",
                          "POST [base] takes a Bundle (transaction or batch)");
  int tx = bt && !strcmp(bt, "transaction");
  if (!tx && !(bt && !strcmp(bt, "batch")))
    return fw_ans_outcome(a, 400, "not-supported", CL_EINVAL, "Bundle.type",
                          "POST [base] takes a Bundle of type transaction or batch");
  json_t *jes = json_object_get(b, "entry");
  size_t n = json_array_size(jes);
  if (n > MAX_ENTRIES)
    return fw_ans_outcome(a, 400, "too-costly", CL_EINVAL, "Bundle.entry",
                          "more than 1000 entries in one Bundle");
  snprintf(w->rc->audit_what, sizeof w->rc->audit_what, "Bundle:%s:%zu", bt, n);
  entry *es = calloc(n ? n : 1, sizeof *es);
  size_t *ord = calloc(n ? n : 1, sizeof *ord);
  cl_fhirw_mapped **ms = calloc(n ? n : 1, sizeof *ms);
  long *line_of = calloc(n ? n : 1, sizeof *line_of), *line_at = calloc(n ? n : 1, sizeof *line_at);
  json_t *refs = json_object();
  int code = 0, written = 0;
  /* a transaction's report lines go into their reports as contained */
  if (es == NULL || ord == NULL || ms == NULL || refs == NULL || line_of == NULL ||
      line_at == NULL || (tx && cl_fhirw_bundle_lines(jes, line_of, line_at) != 0)) {
    fw_ans_outcome(a, 500, "exception", CL_ENOMEM, "", "out of memory");
    goto done;
  }
  for (size_t i = 0; i < n; i++)
    if (entry_of(json_array_get(jes, i), i, &es[i], &fe, &err) != 0) {
      if (tx) {
        fw_ans_refusal(a, &fe);
        goto done;
      }
      es[i].outcome = cl_fhirw_outcome(&fe);
      es[i].status = fe.status;
      es[i].res = NULL;
    }
  int lr = batch_lines(w, es, n, tx, line_of, line_at, &fe); /* a batch's lines, the pairs */
  if (lr == 1) {
    fw_ans_refusal(a, &fe);
    code = CL_EINVAL;
    goto done;
  }
  if (lr != 0) {
    fw_ans_outcome(a, 500, "exception", CL_ENOMEM, "", "out of memory");
    goto done;
  }
  order_of(es, n, ord);
  for (size_t j = 0; j < n; j++) {
    entry *e = &es[ord[j]];
    if (e->res == NULL || e->outcome != NULL || line_of[ord[j]] >= 0)
      continue;
    int rc = map_entry(w, e, refs, &fe, &err);
    if (rc && tx) { /* all or nothing: the first refusal is the answer */
      fw_ans_refusal(a, &fe);
      code = CL_EINVAL;
      goto done;
    }
    if (rc) {
      e->outcome = cl_fhirw_outcome(&fe);
      e->status = fe.status;
      continue;
    }
    if (!tx) { /* batch: each entry on its own */
      int wr;
      if ((rc = fw_append(w, &e->m, 1, 0, &wr, &err)) != 0) {
        cl_fhirw_fail(&fe, &err, fw_status_of(rc), "exception", e->path, "%s", err.msg);
        e->outcome = cl_fhirw_outcome(&fe);
        e->status = fe.status;
      } else if (w->unfolded) { /* committed; the views had not folded it in time */
        e->outcome = fw_unfolded_outcome(w->seq);
        e->status = 202;
      }
      e->created = e->created && wr;
    }
  }
  if (tx) {
    for (size_t i = 0; i < n; i++)
      ms[i] = es[i].m;
    int rc = fw_append(w, ms, n, 1, &written, &err); /* its record may ride with it */
    if (rc) {
      fw_ans_outcome(a, fw_status_of(rc), "exception", rc, "", err.msg);
      goto done;
    }
    if (w->unfolded) { /* committed, as its record may say already: a success */
      fw_ans_accepted(w, a, NULL, NULL);
      goto done;
    }
  }
  for (size_t i = 0; i < n; i++) {
    const entry *rep = line_of[i] >= 0 ? &es[line_of[i]] : NULL;
    if (rep != NULL && rep->outcome != NULL) { /* a batch's refused report: its lines too */
      es[i].outcome = json_incref(rep->outcome);
      es[i].status = rep->status;
    } else if (rep != NULL) { /* the line's Observation as the views made it */
      line_id(w, rep, (size_t)line_at[i], &es[i]);
    }
  }
  json_t *resp = json_pack("{s:s,s:s,s:[]}", "resourceType", "Bundle", "type",
                           tx ? "transaction-response" : "batch-response", "entry");
  for (size_t i = 0; resp && i < n; i++)
    json_array_append_new(json_object_get(resp, "entry"),
                          entry_response(w, &es[i], tx ? written : 1));
  fw_ans_json(a, 200, resp, code);
done:
  for (size_t i = 0; es && i < n; i++) {
    cl_fhirw_mapped_free(es[i].m);
    json_decref(es[i].outcome);
  }
  free(es);
  free(ord);
  free(ms);
  free(line_of);
  free(line_at);
  json_decref(refs);
  json_decref(w->lines);
  w->lines = NULL;
  return 0;
}

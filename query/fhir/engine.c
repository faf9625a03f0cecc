/* The FHIR query engine (engine.h): the interactions, and a search's
 * filter, order, pages and includes. Its candidates and the Bundles
 * assembled from their bytes are in results.c (engine_int.h).
 *
 * A search loads its candidates (a patient's compartment when the search
 * names one patient, else every resource of the type), keeps those every
 * criterion matches, sorts them by the sort key and id, and returns the page
 * after the cursor. Resources are handled in their stored form (decimals
 * marked, fj.h) and the whole answer goes through fj_finish once, so values
 * leave exactly as they were written. Parsing a search (params.c) and
 * matching a resource (match.c) are in their own files (engine_int.h). */
#include "query/fhir/engine.h"

#include <ctype.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "query/fhir/engine_int.h"
#include "query/fhir/fj.h"
#include "query/fhir/fj_parse.h"
#include "query/fhir/group.h"

int cl_fhir_engine_new(cl_proj *p, cl_log *log, cl_fhir_engine **out, cl_err *err) {
  cl_fhir_engine *e = calloc(1, sizeof *e);
  if (e == NULL)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  e->p = p;
  e->log = log;
  *out = e;
  return 0;
}

void cl_fhir_engine_free(cl_fhir_engine *e) { free(e); }

void cl_fhir_resp_clear(cl_fhir_resp *rs) {
  free(rs->body);
  memset(rs, 0, sizeof *rs);
}

/* ------------------------------------------------------------ responses */

static int outcome(cl_fhir_resp *rs, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static json_t *outcome_json(const char *severity, const char *code, const char *text,
                            const char *expr) {
  json_t *issue =
      json_pack("{s:s,s:s,s:s}", "severity", severity, "code", code, "diagnostics", text);
  if (expr != NULL)
    json_object_set_new(issue, "expression", json_pack("[s]", expr));
  return json_pack("{s:s,s:[o]}", "resourceType", "OperationOutcome", "issue", issue);
}

static int send_json(cl_fhir_resp *rs, int status, json_t *j) {
  rs->status = status;
  char *stored = fj_dump(j, NULL);
  json_decref(j);
  if (stored == NULL) {
    rs->status = 500;
    return CL_ENOMEM;
  }
  rs->body = fj_finish(stored, strlen(stored), &rs->len);
  free(stored);
  if (rs->body == NULL) {
    rs->status = 500;
    return CL_ENOMEM;
  }
  return 0;
}

/* Length of the valid UTF-8 sequence at s (0: invalid). */
static size_t utf8_len(const unsigned char *s) {
  if (s[0] < 0x80)
    return 1;
  size_t n = s[0] >= 0xF0 && s[0] <= 0xF4   ? 4
             : s[0] >= 0xE0 && s[0] <= 0xEF ? 3
             : s[0] >= 0xC2 && s[0] < 0xE0  ? 2
                                            : 0;
  for (size_t i = 1; i < n; i++)
    if ((s[i] & 0xC0) != 0x80)
      return 0;
  if (n == 3 && ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0)))
    return 0; /* overlong, surrogates */
  if (n == 4 && ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90)))
    return 0;
  return n;
}

static int utf8_valid(const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p;) {
    size_t n = utf8_len(p);
    if (n == 0)
      return 0;
    p += n;
  }
  return 1;
}

/* Replaces invalid UTF-8 (echoed from a request) with '?', in place. */
static void utf8_clean(char *s) {
  for (unsigned char *p = (unsigned char *)s; *p;) {
    size_t n = utf8_len(p);
    if (n == 0)
      *p++ = '?';
    else
      p += n;
  }
}

static int outcome(cl_fhir_resp *rs, int status, const char *code, const char *fmt, ...) {
  char text[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  utf8_clean(text); /* a truncated or echoed value may have cut a sequence */
  return send_json(rs, status, outcome_json("error", code, text, NULL));
}

static int from_err(cl_fhir_resp *rs, const cl_err *err) {
  switch (err->code) {
  case CL_ENOTFOUND:
    return outcome(rs, 404, "not-found", "%s", err->msg);
  case CL_EINVAL:
    return outcome(rs, 400, "invalid", "%s", err->msg);
  case CL_ENOMEM:
    return outcome(rs, 500, "exception", "out of memory");
  default:
    return outcome(rs, 500, "exception", "%s (%s)", err->msg, cl_errname(err->code));
  }
}

static void iso_now(int64_t now_ms, char out[40]) {
  fj_instant_text(now_ms / 1000, (int32_t)(now_ms % 1000) * 1000000, out);
}

static json_t *new_bundle(const char *btype, int64_t now_ms) {
  uint8_t id[16];
  randombytes_buf(id, sizeof id);
  char uuid[37], ts[40];
  ProtobufCBinaryData b = {16, id};
  fj_uuid_text(&b, uuid);
  iso_now(now_ms, ts);
  return json_pack("{s:s,s:s,s:{s:s},s:s}", "resourceType", "Bundle", "id", uuid, "meta",
                   "lastUpdated", ts, "type", btype);
}

/* ------------------------------------------------------------ read / vread */

/* A derived Group: made now from the Coverages (no versions, no ETag). */
static int read_group(cl_fhir_engine *e, const cl_fhir_req *rq, cl_fhir_resp *rs) {
  if (rq->interaction != CL_FHIR_READ)
    return outcome(rs, 404, "not-found",
                   "Group/%s is derived from coverage: it has no versions or history", rq->id);
  json_t *all;
  cl_err err;
  cl_err_clear(&err);
  if (cl_fhir_groups(e->p, UINT64_MAX, &all, &err) != 0)
    return from_err(rs, &err);
  json_t *g = json_object_get(json_object_get(all, rq->id ? rq->id : ""), "resource");
  if (g == NULL) {
    json_decref(all);
    return outcome(rs, 404, "not-found", "Group/%s is not known (a Group is a payer's members)",
                   rq->id);
  }
  rs->last_modified_ns = json_integer_value(json_object_get(json_object_get(all, rq->id), "lu"));
  json_incref(g);
  json_decref(all);
  return send_json(rs, 200, g);
}

static int do_read(cl_fhir_engine *e, const cl_fhir_req *rq, cl_fhir_resp *rs) {
  cl_fhir_resource r;
  cl_err err;
  cl_err_clear(&err);
  if (cl_fhir_type_of(rq->type) == 0)
    return outcome(rs, 404, "not-supported", "resource type %s is not served here",
                   rq->type ? rq->type : "");
  if (cl_fhir_type_of(rq->type) == CL_FHIR_Group)
    return read_group(e, rq, rs);
  int rc = cl_fhir_read_ex(e->p, rq->type, rq->id,
                           rq->interaction == CL_FHIR_VREAD ? rq->version : 0, 0, &r, &err);
  if (rc == CL_ENOTFOUND) {
    if (rq->interaction == CL_FHIR_VREAD)
      return outcome(rs, 404, "not-found", "%s/%s has no version %u", rq->type, rq->id,
                     rq->version);
    return outcome(rs, 404, "not-found", "%s/%s is not known", rq->type, rq->id);
  }
  if (rc)
    return from_err(rs, &err);
  rs->status = 200;
  rs->body = r.json;
  rs->len = r.len;
  r.json = NULL;
  snprintf(rs->etag, sizeof rs->etag, "W/\"%u\"", r.version);
  rs->last_modified_ns = r.last_updated_ns;
  cl_fhir_resource_clear(&r);
  return 0;
}

/* ------------------------------------------------------------ history */

typedef struct hist {
  json_t *entries;
  const cl_fhir_req *rq;
  size_t max;
} hist;

static int hist_one(void *ctx, cl_fhir_resource *r, cl_err *err) {
  hist *h = ctx;
  json_t *j = fj_parse(r->json, r->len, 0, NULL);
  if (j == NULL) {
    cl_fhir_resource_clear(r);
    return cl_err_set(err, CL_ECORRUPT, "fhir: stored resource is not JSON");
  }
  char url[256], etag[24], lm[40];
  const char *type = json_string_value(json_object_get(j, "resourceType"));
  const char *id = json_string_value(json_object_get(j, "id"));
  if (r->version == 1)
    snprintf(url, sizeof url, "%s", type);
  else
    snprintf(url, sizeof url, "%s/%s", type, id);
  snprintf(etag, sizeof etag, "W/\"%u\"", r->version);
  fj_instant_ns_text(r->last_updated_ns, lm);
  json_t *e = fe_entry_of(h->rq, j, NULL);
  json_object_set_new(
      e, "request", json_pack("{s:s,s:s}", "method", r->version == 1 ? "POST" : "PUT", "url", url));
  json_object_set_new(e, "response",
                      json_pack("{s:s,s:s,s:s}", "status",
                                r->version == 1 ? "201 Created" : "200 OK", "etag", etag,
                                "lastModified", lm));
  json_array_append_new(h->entries, e);
  json_decref(j);
  cl_fhir_resource_clear(r);
  return json_array_size(h->entries) >= h->max ? 1 : 0;
}

static int hist_type(void *ctx, cl_fhir_resource *r, cl_err *err);

typedef struct hist_all {
  hist *h;
  cl_proj *p;
} hist_all;

static int hist_type(void *ctx, cl_fhir_resource *r, cl_err *err) {
  hist_all *a = ctx;
  json_t *j = fj_parse(r->json, r->len, 0, NULL);
  char type[64] = "", id[CL_FHIR_ID_MAX] = "";
  if (j != NULL) {
    snprintf(type, sizeof type, "%s", json_string_value(json_object_get(j, "resourceType")));
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(j, "id")));
  }
  json_decref(j);
  cl_fhir_resource_clear(r);
  int rc = cl_fhir_history(a->p, type, id, CL_FHIR_STORED, hist_one, a->h, err);
  if (rc < 0)
    return rc;
  return json_array_size(a->h->entries) >= a->h->max ? 1 : 0;
}

static size_t count_param(const cl_fhir_req *rq, size_t dflt) {
  for (size_t i = 0; i < rq->nparams; i++)
    if (!strcmp(rq->params[i].name, "_count")) {
      long v = strtol(rq->params[i].value, NULL, 10);
      if (v >= 0 && v <= 1000)
        return (size_t)v;
    }
  return dflt;
}

static int do_history(cl_fhir_engine *e, const cl_fhir_req *rq, int64_t now, cl_fhir_resp *rs) {
  if (cl_fhir_type_of(rq->type) == 0)
    return outcome(rs, 404, "not-supported", "resource type %s is not served here",
                   rq->type ? rq->type : "");
  if (cl_fhir_type_of(rq->type) == CL_FHIR_Group)
    return read_group(e, rq, rs);
  cl_err err;
  cl_err_clear(&err);
  hist h = {json_array(), rq, count_param(rq, 1000)};
  int rc;
  if (rq->interaction == CL_FHIR_HISTORY_INSTANCE) {
    rc = cl_fhir_history(e->p, rq->type, rq->id, CL_FHIR_STORED, hist_one, &h, &err);
  } else {
    hist_all a = {&h, e->p};
    uint8_t next[32];
    rc = cl_fhir_scan_type(e->p, cl_fhir_type_of(rq->type), NULL, CL_FHIR_STORED, hist_type, &a,
                           next, &err);
  }
  if (rc < 0) {
    json_decref(h.entries);
    if (rc == CL_ENOTFOUND)
      return outcome(rs, 404, "not-found", "%s/%s is not known", rq->type, rq->id);
    return from_err(rs, &err);
  }
  json_t *b = new_bundle("history", now);
  json_object_set_new(b, "total", json_integer((json_int_t)json_array_size(h.entries)));
  json_object_set_new(b, "entry", h.entries);
  if (json_array_size(h.entries) == 0)
    json_object_del(b, "entry");
  return send_json(rs, 200, b);
}

/* ------------------------------------------------------------ search */

/* A date as a sortable fixed-width key (offset so that negative times sort too). */
static void date_key(int64_t v, char out[48]) {
  snprintf(out, 48, "%020llu", (unsigned long long)((uint64_t)v ^ 0x8000000000000000ULL));
}

/* The range of x's meta.lastUpdated, from the commit time it was written
 * from (fj_instant_ns): the same text, without parsing the resource. */
static int lu_range(const item *x, int64_t *lo, int64_t *hi) {
  char t[40];
  fj_instant_ns_text(x->lu_ns, t);
  return cl_fhir_date_range(t, lo, hi);
}

/* x's sort key by date parameter d ("" when the resource has no value). */
static int sort_key(item *x, const pdef *d, int desc, cl_err *err) {
  x->key[0] = '\0';
  if (d == NULL)
    return 0;
  int64_t lo, hi;
  if (!strcmp(d->name, "_lastUpdated")) {
    if (lu_range(x, &lo, &hi) == 0)
      date_key(desc ? hi : lo, x->key);
    return 0;
  }
  json_t *res = fe_item_res(x, err);
  if (res == NULL)
    return err->code;
  json_t *vals = fe_values_of(res, d);
  int64_t best = 0;
  int have = 0;
  for (size_t i = 0; i < json_array_size(vals); i++) {
    if (fe_value_range(json_array_get(vals, i), &lo, &hi) == 0) {
      int64_t v = desc ? hi : lo;
      if (!have || (desc ? v > best : v < best))
        best = v;
      have = 1;
    }
  }
  json_decref(vals);
  if (have)
    date_key(best, x->key);
  return 0;
}

static int cmp_asc(const void *a, const void *b) {
  const item *x = a, *y = b;
  /* resources without the value sort last */
  if (!x->key[0] != !y->key[0])
    return x->key[0] ? -1 : 1;
  int c = strcmp(x->key, y->key);
  if (c)
    return c;
  if (x->type != y->type)
    return x->type < y->type ? -1 : 1;
  return strcmp(x->id, y->id);
}

static int cmp_desc(const void *a, const void *b) {
  const item *x = a, *y = b;
  if (!x->key[0] != !y->key[0])
    return x->key[0] ? -1 : 1;
  int c = strcmp(y->key, x->key);
  if (c)
    return c;
  if (x->type != y->type)
    return x->type < y->type ? -1 : 1;
  return strcmp(x->id, y->id);
}

/* The cursor "key~type~id" of an item. */
static void cursor_of(const item *x, char out[256]) {
  snprintf(out, 256, "%s~%d~%s", x->key, x->type, x->id);
}

/* Is x after the cursor in the sort order? */
static int after_cursor(const item *x, const char *cursor, int desc) {
  char key[48] = "", id[CL_FHIR_ID_MAX] = "";
  int type = 0;
  const char *t1 = strchr(cursor, '~');
  const char *t2 = t1 ? strchr(t1 + 1, '~') : NULL;
  if (t1 == NULL || t2 == NULL)
    return 1;
  snprintf(key, sizeof key, "%.*s", (int)(t1 - cursor), cursor);
  type = atoi(t1 + 1);
  snprintf(id, sizeof id, "%s", t2 + 1);
  item c = {.res = NULL, .type = type};
  memcpy(c.id, id, sizeof id);
  memcpy(c.key, key, sizeof key);
  return (desc ? cmp_desc(x, &c) : cmp_asc(x, &c)) > 0;
}

/* Percent-encodes a query value. */
static void url_put(char **w, char *end, const char *s) {
  static const char hex[] = "0123456789ABCDEF";
  for (; *s && *w + 4 < end; s++) {
    unsigned char ch = (unsigned char)*s;
    if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~' || ch == ':' || ch == ',' ||
        ch == '|' || ch == '/') {
      *(*w)++ = (char)ch;
    } else {
      *(*w)++ = '%';
      *(*w)++ = hex[ch >> 4];
      *(*w)++ = hex[ch & 15];
    }
  }
  **w = '\0';
}

/* The URL of this search with the cursor `cursor` (NULL: the request's). */
static void page_url(const cl_fhir_req *rq, const char *path, const char *cursor, char *out,
                     size_t n) {
  char *w = out, *end = out + n;
  int k = snprintf(out, n, "%s/%s", rq->base ? rq->base : "", path);
  w += k > 0 && (size_t)k < n ? k : 0;
  char sep = '?';
  for (size_t i = 0; i < rq->nparams; i++) {
    if (!strcmp(rq->params[i].name, "_cursor"))
      continue;
    if (w + 2 >= end)
      break;
    *w++ = sep;
    sep = '&';
    url_put(&w, end, rq->params[i].name);
    if (w + 2 >= end)
      break;
    *w++ = '=';
    url_put(&w, end, rq->params[i].value);
  }
  if (cursor != NULL && w + 10 < end) {
    *w++ = sep;
    memcpy(w, "_cursor=", 8);
    w += 8;
    url_put(&w, end, cursor);
  }
  *w = '\0';
}

/* Keeps only the top-level elements listed in _elements (and the ones every
 * resource needs), marking the resource SUBSETTED. */
static json_t *subset(json_t *res, const char *elements) {
  json_t *o = json_object();
  const char *k;
  json_t *v;
  json_object_foreach(res, k, v) {
    int keep = !strcmp(k, "resourceType") || !strcmp(k, "id") || !strcmp(k, "meta");
    size_t kl = strlen(k);
    for (const char *p = elements; !keep && *p;) {
      const char *c = strchr(p, ',');
      size_t n = c ? (size_t)(c - p) : strlen(p);
      keep = n == kl && strncmp(p, k, n) == 0;
      p += n + (c != NULL);
    }
    if (keep)
      json_object_set(o, k, v);
  }
  json_t *meta = json_deep_copy(json_object_get(o, "meta"));
  if (meta == NULL)
    meta = json_object();
  json_object_set_new(meta, "tag",
                      json_pack("[{s:s,s:s,s:s}]", "system",
                                "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code",
                                "SUBSETTED", "display", "Resource encoded in summary mode"));
  json_object_set_new(o, "meta", meta);
  return o;
}

static int in_types(const char *types, const char *t) {
  if (types[0] == '\0')
    return 1;
  size_t tl = strlen(t);
  for (const char *p = types; *p;) {
    const char *c = strchr(p, ',');
    size_t n = c ? (size_t)(c - p) : strlen(p);
    if (n == tl && strncmp(p, t, n) == 0)
      return 1;
    p += n + (c != NULL);
  }
  return 0;
}

static int do_search(cl_fhir_engine *e, const cl_fhir_req *rq, int64_t now, cl_fhir_resp *rs) {
  int everything = rq->interaction == CL_FHIR_EVERYTHING;
  const char *type = everything ? "Patient" : rq->type;
  if (cl_fhir_type_of(type) == 0)
    return outcome(rs, 404, "not-supported", "resource type %s is not served here",
                   type ? type : "");
  query q;
  fe_refusal why;
  if (fe_parse_query(rq, type, everything, &q, &why) != 0) {
    json_decref(q.ignored);
    return outcome(rs, why.status, why.code, "%s", why.text);
  }
  int rc;
  cl_err err;
  cl_err_clear(&err);
  items it = {0};
  char pbuf[CL_FHIR_ID_MAX];
  if (everything) {
    /* the patient's compartment: every resource of their stream */
    cl_fhir_resource pr;
    if (cl_fhir_read(e->p, "Patient", rq->id, 0, &pr, &err) != 0) {
      json_decref(q.ignored);
      return outcome(rs, 404, "not-found", "Patient/%s is not known", rq->id);
    }
    cl_fhir_resource_clear(&pr);
    char stream[CL_FHIR_ID_MAX + 16];
    uint8_t tag[32];
    snprintf(stream, sizeof stream, "patient-%s", rq->id);
    rc = cl_log_stream_tag(e->log, stream, tag, &err);
    if (rc == 0)
      rc = cl_fhir_stream(e->p, tag, 0, CL_FHIR_STORED, fe_add_item, &it, &err);
  } else {
    rc = fe_load_candidates(e, type, fe_one_patient(&q, pbuf, sizeof pbuf), &it, &err);
  }
  if (rc < 0) {
    fe_items_free(&it);
    json_decref(q.ignored);
    return from_err(rs, &err);
  }
  /* filter */
  size_t kept = 0;
  for (size_t i = 0; rc == 0 && i < it.n; i++) {
    item *x = &it.v[i];
    int ok = 1;
    if (everything) {
      const char *t = cl_fhir_type_name(x->type);
      ok = t != NULL && in_types(q.types, t);
      int64_t lo, hi;
      if (ok && q.since != INT64_MIN)
        ok = lu_range(x, &lo, &hi) == 0 && lo >= q.since;
    }
    for (size_t k = 0; ok && k < q.nc; k++) /* before any parsing */
      ok = fe_crit_may_match(x->raw, x->rawlen, &q.c[k]);
    for (size_t k = 0; ok && k < q.nc; k++) {
      json_t *res = fe_item_res(x, &err);
      int m = res ? fe_crit_match(res, &q.c[k], now, fe_chain_ids, e, &err) : -1;
      if (m < 0)
        rc = -1;
      ok = m > 0;
    }
    if (!ok) {
      fe_item_clear(x);
    } else if (kept++ != i) {
      it.v[kept - 1] = *x;
      x->raw = NULL; /* moved */
      x->res = NULL;
    }
  }
  for (size_t i = kept; i < it.n; i++)
    fe_item_clear(&it.v[i]); /* rejected, moved or (after an error) not looked at */
  it.n = kept;
  const pdef *sort_d = everything ? fe_find_param("Patient", "_lastUpdated", 12) : q.sort_d;
  for (size_t i = 0; rc == 0 && i < it.n; i++)
    if (sort_key(&it.v[i], sort_d, q.sort_desc, &err) != 0)
      rc = -1;
  if (rc != 0) {
    fe_items_free(&it);
    json_decref(q.ignored);
    return from_err(rs, &err);
  }
  if (it.n > 1) /* it.v is NULL when nothing matched */
    qsort(it.v, it.n, sizeof *it.v, q.sort_desc ? cmp_desc : cmp_asc);

  json_t *b = new_bundle("searchset", now);
  json_object_set_new(b, "total", json_integer((json_int_t)it.n));
  char path[160], url[4096];
  if (everything)
    snprintf(path, sizeof path, "Patient/%s/$everything", rq->id);
  else
    snprintf(path, sizeof path, "%s", type);
  page_url(rq, path, q.cursor[0] ? q.cursor : NULL, url, sizeof url);
  json_t *links = json_pack("[{s:s,s:s}]", "relation", "self", "url", url);
  fe_text entries = {0}; /* the entries, stored form, comma-separated */
  if (!q.summary_count) {
    size_t start = 0;
    if (q.cursor[0])
      while (start < it.n && !after_cursor(&it.v[start], q.cursor, q.sort_desc))
        start++;
    size_t end = start + q.count < it.n ? start + q.count : it.n;
    json_t *included = json_object(); /* "Type/id" already in the page */
    for (size_t i = start; i < end; i++) {
      item *x = &it.v[i];
      char key[160];
      snprintf(key, sizeof key, "%s/%s", cl_fhir_type_name(x->type), x->id);
      json_object_set_new(included, key, json_true());
      if (q.elements[0]) {
        json_t *res = fe_item_res(x, &err);
        if (res != NULL)
          fe_add_entry(&entries, rq, subset(res, q.elements), "match");
      } else { /* the stored bytes as they are */
        fe_add_raw_entry(&entries, rq, cl_fhir_type_name(x->type), x->id, x->raw, x->rawlen,
                         "match");
      }
    }
    for (size_t i = start; i < end; i++) {
      if (q.inc_patient) { /* the patient (or subject) each match refers to */
        const pdef *d = fe_find_param(type, q.inc_param, strlen(q.inc_param));
        json_t *res = fe_item_res(&it.v[i], &err);
        json_t *vals = d && res ? fe_values_of(res, d) : json_array();
        for (size_t k = 0; k < json_array_size(vals); k++) {
          const char *ref =
              json_string_value(json_object_get(json_array_get(vals, k), "reference"));
          const char *slash = ref ? strchr(ref, '/') : NULL;
          if (slash == NULL || json_object_get(included, ref) != NULL)
            continue;
          char rtype[64];
          snprintf(rtype, sizeof rtype, "%.*s", (int)(slash - ref), ref);
          cl_fhir_resource r;
          if (cl_fhir_read_ex(e->p, rtype, slash + 1, 0, CL_FHIR_STORED, &r, &err) == 0) {
            json_object_set_new(included, ref, json_true());
            fe_add_raw_entry(&entries, rq, rtype, slash + 1, r.json, r.len, "include");
            cl_fhir_resource_clear(&r);
          }
        }
        json_decref(vals);
      }
      if (q.rev_prov) {
        items pv = {0};
        if (cl_fhir_provenance_of(e->p, cl_fhir_type_name(it.v[i].type), it.v[i].id, CL_FHIR_STORED,
                                  fe_add_item, &pv, &err) == 0)
          for (size_t k = 0; k < pv.n; k++) {
            char key[160];
            snprintf(key, sizeof key, "Provenance/%s", pv.v[k].id);
            if (json_object_get(included, key) == NULL) {
              fe_add_raw_entry(&entries, rq, "Provenance", pv.v[k].id, pv.v[k].raw, pv.v[k].rawlen,
                               "include");
              json_object_set_new(included, key, json_true());
            }
          }
        fe_items_free(&pv);
      }
    }
    json_decref(included);
    if (end < it.n && end > start) {
      char cur[256];
      cursor_of(&it.v[end - 1], cur);
      page_url(rq, path, cur, url, sizeof url);
      json_array_append_new(links, json_pack("{s:s,s:s}", "relation", "next", "url", url));
    }
  }
  if (json_array_size(q.ignored) > 0) {
    char text[512] = "parameters ignored (not supported): ";
    for (size_t i = 0; i < json_array_size(q.ignored); i++) {
      size_t l = strlen(text);
      snprintf(text + l, sizeof text - l, "%s%s", i ? ", " : "",
               json_string_value(json_array_get(q.ignored, i)));
    }
    json_t *oo = outcome_json("warning", "not-supported", text, NULL);
    fe_add_json(&entries, json_pack("{s:o,s:{s:s}}", "resource", oo, "search", "mode", "outcome"));
  }
  json_object_set_new(b, "link", links);
  fe_items_free(&it);
  json_decref(q.ignored);
  return fe_send_bundle(rs, b, &entries);
}

/* ------------------------------------------------------------ metadata */

static int do_capabilities(const cl_fhir_req *rq, int64_t now, cl_fhir_resp *rs) {
  char ts[40];
  iso_now(now, ts);
  json_t *resources = json_array();
  for (int t = 1; t < CL_FHIR_NTYPES; t++) {
    const char *name = cl_fhir_type_name(t);
    json_t *sp = fe_param_list(name);
    json_t *r;
    if (t == CL_FHIR_Group) { /* derived from coverage: read and search, no versions */
      r = json_pack("{s:s,s:[{s:s},{s:s}],s:s,s:b,s:b,s:o}", "type", name, "interaction", "code",
                    "read", "code", "search-type", "versioning", "no-version", "readHistory", 0,
                    "updateCreate", 0, "searchParam", sp);
      json_object_set_new(
          r, "operation",
          json_pack("[{s:s,s:s}]", "name", "export", "definition",
                    "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"));
      json_array_append_new(resources, r);
      continue;
    }
    r = json_pack("{s:s,s:[{s:s},{s:s},{s:s},{s:s}],s:s,s:b,s:b,s:o}", "type", name, "interaction",
                  "code", "read", "code", "vread", "code", "history-instance", "code",
                  "search-type", "versioning", "versioned", "readHistory", 1, "updateCreate", 0,
                  "searchParam", sp);
    json_array_append_new(json_object_get(r, "interaction"),
                          json_pack("{s:s}", "code", "history-type"));
    for (size_t w = 0; rq->writable && rq->writable[w]; w++)
      if (!strcmp(rq->writable[w], name)) { /* FHIR writes (adapters/fhir) */
        json_array_append_new(json_object_get(r, "interaction"),
                              json_pack("{s:s}", "code", "create"));
        json_array_append_new(json_object_get(r, "interaction"),
                              json_pack("{s:s}", "code", "update"));
        json_array_append_new(json_object_get(r, "interaction"),
                              json_pack("{s:s}", "code", "patch"));
        /* If-Match on update and patch; no delete: the log is append-only */
        json_object_set_new(r, "versioning", json_string("versioned-update"));
        json_object_set_new(r, "conditionalCreate", json_true());
        json_object_set_new(r, "conditionalUpdate", json_true());
        json_object_set_new(r, "conditionalDelete", json_string("not-supported"));
        /* a client's id is kept for a Patient only (the others' derive from business ids) */
        json_object_set_new(r, "updateCreate", json_boolean(t == CL_FHIR_Patient));
        if (t == CL_FHIR_CoverageEligibilityResponse) /* one event makes the pair */
          json_object_set_new(
              r, "documentation",
              json_string("written together with the CoverageEligibilityRequest its request "
                          "references (a transaction or batch Bundle); a response alone updates "
                          "a check the server holds"));
      }
    json_object_set_new(r, "searchInclude", json_pack("[s,s]", "*:patient", "*:subject"));
    json_object_set_new(r, "searchRevInclude", json_pack("[s]", "Provenance:target"));
    if (t == CL_FHIR_Patient)
      json_object_set_new(
          r, "operation",
          json_pack("[{s:s,s:s},{s:s,s:s}]", "name", "everything", "definition",
                    "http://hl7.org/fhir/OperationDefinition/Patient-everything", "name", "export",
                    "definition",
                    "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export"));
    json_array_append_new(resources, r);
  }
  /* the audit trail, served beside the views (query/audit/search.h) */
  json_array_append_new(
      resources,
      json_pack("{s:s,s:[{s:s},{s:s}],s:s,s:b,s:b,s:[{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s}]}",
                "type", "AuditEvent", "interaction", "code", "read", "code", "search-type",
                "versioning", "no-version", "readHistory", 0, "updateCreate", 0, "searchParam",
                "name", "patient", "type", "reference", "name", "agent", "type", "reference",
                "name", "date", "type", "date", "name", "outcome", "type", "token"));
  json_t *cs = json_pack("{s:s,s:s,s:s,s:s,s:s,s:{s:s,s:s},s:{s:s,s:s},s:s,s:[s],s:[{s:s,s:o}]}",
                         "resourceType", "CapabilityStatement", "status", "active", "date", ts,
                         "kind", "instance", "publisher", "clinlog", "software", "name", "clinlog",
                         "version", "0.1", "implementation", "description",
                         "clinlog FHIR R4 views (read-only projections of the event log)", "url",
                         rq->base ? rq->base : "", "fhirVersion", "4.0.1", "format", "json", "rest",
                         "mode", "server", "resource", resources);
  if (!rq->base || !rq->base[0])
    json_object_del(json_object_get(cs, "implementation"), "url");
  if (rq->writable && rq->writable[0]) {
    json_object_set_new(json_array_get(json_object_get(cs, "rest"), 0), "interaction",
                        json_pack("[{s:s},{s:s}]", "code", "transaction", "code", "batch"));
    json_object_set_new(json_object_get(cs, "implementation"), "description",
                        json_string("clinlog FHIR R4 views (projections of the event log); "
                                    "writes become signed catalog events"));
  }
  /* Bulk Data: system-level $export (query/fhir/export.h) */
  json_object_set_new(json_array_get(json_object_get(cs, "rest"), 0), "operation",
                      json_pack("[{s:s,s:s}]", "name", "export", "definition",
                                "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"));
  json_object_set_new(
      cs, "instantiates",
      json_pack("[s]", "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"));
  /* SMART on FHIR: bearer tokens, from the token endpoint beside the base
   * ([origin]/auth/token; discovery at [base]/.well-known/smart-configuration) */
  size_t bl = rq->base ? strlen(rq->base) : 0;
  if (bl > 8 && !strcmp(rq->base + bl - 8, "/fhir/R4")) {
    char token[512];
    snprintf(token, sizeof token, "%.*s/auth/token", (int)(bl - 8), rq->base);
    json_object_set_new(
        json_array_get(json_object_get(cs, "rest"), 0), "security",
        json_pack("{s:[{s:s,s:[{s:s,s:s}]}],s:[{s:[{s:s,s:s}]}],s:s}", "extension", "url",
                  "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                  "extension", "url", "token", "valueUri", token, "service", "coding", "system",
                  "http://terminology.hl7.org/CodeSystem/restful-security-service", "code",
                  "SMART-on-FHIR", "description",
                  "SMART on FHIR bearer tokens (Backend Services: POST /auth/token; people: "
                  "/auth/login with password and TOTP)"));
  }
  return send_json(rs, 200, cs);
}

int cl_fhir_handle(cl_fhir_engine *e, const cl_fhir_req *rq, cl_fhir_resp *rs) {
  memset(rs, 0, sizeof *rs);
  int64_t now = rq->now_ms;
  if (now == 0) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  }
  /* what the client sent must be UTF-8 (it is echoed in links and errors) */
  if ((rq->type != NULL && !utf8_valid(rq->type)) || (rq->id != NULL && !utf8_valid(rq->id)))
    return outcome(rs, 404, "not-found", "the path is not valid UTF-8");
  for (size_t i = 0; i < rq->nparams; i++)
    if (!utf8_valid(rq->params[i].name) || !utf8_valid(rq->params[i].value))
      return outcome(rs, 400, "invalid", "parameter %zu (%s) is not valid UTF-8", i + 1,
                     rq->params[i].name);
  switch (rq->interaction) {
  case CL_FHIR_READ:
  case CL_FHIR_VREAD:
    return do_read(e, rq, rs);
  case CL_FHIR_HISTORY_INSTANCE:
  case CL_FHIR_HISTORY_TYPE:
    return do_history(e, rq, now, rs);
  case CL_FHIR_SEARCH:
  case CL_FHIR_EVERYTHING:
    return do_search(e, rq, now, rs);
  case CL_FHIR_CAPABILITIES:
    return do_capabilities(rq, now, rs);
  default:
    return outcome(rs, 400, "not-supported", "interaction %d is not supported", rq->interaction);
  }
}

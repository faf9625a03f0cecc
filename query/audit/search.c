/* Searching the audit trail; see search.h. */
#include "query/audit/search.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/audit/auditevent.h"
#include "store/event.h"
#include "store/keyring.h"

static int bad(cl_err *err, const char *name, const char *value, const char *why) {
  return cl_err_set(err, CL_EINVAL, "AuditEvent search: %s=%s: %s", name, value, why);
}

/* Copies v into out (n bytes) or refuses it as too long. */
static int copy(const char *name, const char *v, char *out, size_t n, cl_err *err) {
  if (strlen(v) >= n || !v[0])
    return bad(err, name, v, v[0] ? "too long" : "empty");
  memcpy(out, v, strlen(v) + 1);
  return 0;
}

/* date=[prefix]value narrows [since, until). */
static int date_param(const char *v, cl_audit_filter *f, cl_err *err) {
  char pre[3] = "eq";
  const char *d = v;
  if (strlen(v) > 2 && v[0] >= 'a' && v[0] <= 'z' && v[1] >= 'a' && v[1] <= 'z') {
    memcpy(pre, v, 2);
    d = v + 2;
  }
  int64_t lo, hi;
  if (cl_fhir_date_range(d, &lo, &hi) != 0)
    return bad(err, "date", v, "not a FHIR date, dateTime or instant");
  int64_t lo_ns = lo * 1000000, hi_ns = hi * 1000000, since = 0, until = 0;
  if (!strcmp(pre, "ge"))
    since = lo_ns;
  else if (!strcmp(pre, "gt"))
    since = hi_ns;
  else if (!strcmp(pre, "le"))
    until = hi_ns;
  else if (!strcmp(pre, "lt"))
    until = lo_ns;
  else if (!strcmp(pre, "eq"))
    since = lo_ns, until = hi_ns;
  else
    return bad(err, "date", v, "prefix must be eq, ge, gt, le or lt");
  if (since && since > f->since_ns)
    f->since_ns = since;
  if (until && (!f->until_ns || until < f->until_ns))
    f->until_ns = until;
  return 0;
}

static int number(const char *name, const char *v, uint64_t max, uint64_t *out, cl_err *err) {
  char *end;
  unsigned long long x = strtoull(v, &end, 10);
  if (!v[0] || *end || v[0] == '-' || x > max)
    return bad(err, name, v, "not a number in range");
  *out = x;
  return 0;
}

int cl_audit_params_of(const cl_fhir_kv *kv, size_t n, cl_audit_params *ap, cl_err *err) {
  memset(ap, 0, sizeof *ap);
  ap->f.limit = CL_AUDIT_PAGE_DEFAULT;
  int code;
  for (size_t i = 0; i < n; i++) {
    const char *k = kv[i].name, *v = kv[i].value;
    uint64_t x;
    if (!strcmp(k, "patient")) {
      const char *id = !strncmp(v, "Patient/", 8) ? v + 8 : v;
      if (strchr(id, '/'))
        return bad(err, k, v, "expected Patient/<id> or <id>");
      if ((code = copy(k, id, ap->patient, sizeof ap->patient, err)) != 0)
        return code;
      ap->f.patient = ap->patient;
    } else if (!strcmp(k, "agent") || !strcmp(k, "agent:identifier") ||
               !strcmp(k, "agent.identifier")) {
      const char *bar = strchr(v, '|');
      if ((code = copy(k, bar ? bar + 1 : v, ap->principal, sizeof ap->principal, err)) != 0)
        return code;
      ap->f.principal = ap->principal;
    } else if (!strcmp(k, "date")) {
      if ((code = date_param(v, &ap->f, err)) != 0)
        return code;
    } else if (!strcmp(k, "outcome")) {
      if (strcmp(v, "0") && strcmp(v, "4") && strcmp(v, "8") && strcmp(v, "12"))
        return bad(err, k, v, "expected 0, 4, 8 or 12");
      snprintf(ap->outcome, sizeof ap->outcome, "%s", v);
      ap->f.outcome = ap->outcome;
    } else if (!strcmp(k, "_count")) {
      if ((code = number(k, v, CL_AUDIT_PAGE_MAX, &x, err)) != 0)
        return code;
      ap->f.limit = x ? (size_t)x : CL_AUDIT_PAGE_DEFAULT;
    } else if (!strcmp(k, "_cursor")) {
      if ((code = number(k, v, UINT64_MAX, &x, err)) != 0)
        return code;
      ap->f.after_seq = x;
    } else if (!strcmp(k, "_format")) {
      if (!strstr(v, "json"))
        return bad(err, k, v, "only JSON is served");
    } else {
      return cl_err_set(err, CL_EINVAL,
                        "AuditEvent search: unknown parameter %s (patient, agent, date, outcome, "
                        "_count, _cursor)",
                        k);
    }
  }
  if (ap->f.since_ns && ap->f.until_ns && ap->f.since_ns >= ap->f.until_ns)
    return cl_err_set(err, CL_EINVAL, "AuditEvent search: date: the window is empty");
  return 0;
}

/* ---------------------------------------------------------------- pages */

typedef struct collect {
  cl_audit_page *pg;
  size_t cap;
  const char *site;
} collect;

static int add_one(void *ctx, uint64_t seq, const Clinlog__V1__Event *ev, cl_err *err) {
  collect *c = ctx;
  cl_audit_page *pg = c->pg;
  if (pg->n == c->cap) {
    size_t nc = c->cap ? c->cap * 2 : 64;
    json_t **e = realloc(pg->events, nc * sizeof *e);
    if (e)
      pg->events = e;
    uint64_t *s = e ? realloc(pg->seqs, nc * sizeof *s) : NULL;
    if (!s)
      return cl_err_set(err, CL_ENOMEM, "out of memory");
    pg->seqs = s;
    c->cap = nc;
  }
  json_t *j;
  int code = cl_audit_fhir(ev, seq, c->site, &j, err);
  if (code)
    return code;
  pg->events[pg->n] = j;
  pg->seqs[pg->n++] = seq;
  return 0;
}

int cl_audit_page_get(cl_proj *p, cl_log *log, const cl_audit_filter *f, const char *site,
                      cl_audit_page *pg, cl_err *err) {
  memset(pg, 0, sizeof *pg);
  cl_audit_filter q = *f;
  if (!q.limit)
    q.limit = CL_AUDIT_PAGE_DEFAULT;
  if (q.limit > CL_AUDIT_PAGE_MAX)
    q.limit = CL_AUDIT_PAGE_MAX;
  collect c = {.pg = pg, .site = site};
  int code = cl_audit_query(p, log, &q, add_one, &c, &pg->next_after, err);
  if (code)
    cl_audit_page_clear(pg);
  return code;
}

void cl_audit_page_clear(cl_audit_page *pg) {
  for (size_t i = 0; i < pg->n; i++)
    json_decref(pg->events[i]);
  free(pg->events);
  free(pg->seqs);
  memset(pg, 0, sizeof *pg);
}

char *cl_audit_bundle(const cl_audit_page *pg, const char *base, const char *query, size_t *len) {
  json_t *b = json_object(), *entries = json_array(), *links = json_array();
  char url[2048];
  int ok = b && entries && links;
  ok = ok && !json_object_set_new(b, "resourceType", json_string("Bundle"));
  ok = ok && !json_object_set_new(b, "type", json_string("searchset"));
  snprintf(url, sizeof url, "%s/AuditEvent%s%s", base, query[0] ? "?" : "", query);
  ok = ok && !json_array_append_new(links, json_pack("{s:s, s:s}", "relation", "self", "url", url));
  if (ok && pg->next_after) {
    snprintf(url, sizeof url, "%s/AuditEvent?%s%s_cursor=%llu", base, query, query[0] ? "&" : "",
             (unsigned long long)pg->next_after);
    ok = !json_array_append_new(links, json_pack("{s:s, s:s}", "relation", "next", "url", url));
  }
  for (size_t i = 0; ok && i < pg->n; i++) {
    const char *id = json_string_value(json_object_get(pg->events[i], "id"));
    snprintf(url, sizeof url, "%s/AuditEvent/%s", base, id ? id : "");
    ok =
        !json_array_append_new(entries, json_pack("{s:s, s:O, s:{s:s}}", "fullUrl", url, "resource",
                                                  pg->events[i], "search", "mode", "match"));
  }
  ok = ok && !json_object_set(b, "link", links);
  ok = ok && (pg->n == 0 || !json_object_set(b, "entry", entries));
  char *out = ok ? json_dumps(b, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  json_decref(entries);
  json_decref(links);
  json_decref(b);
  if (out)
    *len = strlen(out);
  return out;
}

/* ----------------------------------------------------------------- one */

typedef struct one {
  Clinlog__V1__Event *ev;
  uint64_t seq;
} one;

static int take(void *ctx, const cl_event_view *v, cl_err *err) {
  one *o = ctx;
  if (v->erased || !v->event)
    return 0;
  int code = cl_event_decode(v->event, v->event_len, &o->ev, err);
  o->seq = v->seq;
  return code;
}

int cl_audit_get(cl_log *log, const uint8_t id[16], const char *site, json_t **out, uint64_t *seq,
                 cl_err *err) {
  one o = {0};
  int code = cl_log_get_event(log, id, take, &o, err);
  if (code == 0 && (!o.ev || o.ev->body_case != CLINLOG__V1__EVENT__BODY_ACCESS_RECORDED ||
                    strcmp(o.ev->stream, CL_AUDIT_STREAM) != 0))
    code = CL_ENOTFOUND; /* an event, but not an audit record: none by that id */
  if (code == CL_ENOTFOUND)
    cl_err_set(err, CL_ENOTFOUND, "no audit record with that id");
  if (code == 0) {
    code = cl_audit_fhir(o.ev, o.seq, site, out, err);
    if (seq)
      *seq = o.seq;
  }
  if (o.ev)
    clinlog__v1__event__free_unpacked(o.ev, NULL);
  return code;
}

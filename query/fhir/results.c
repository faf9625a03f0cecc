/* The results of the FHIR query engine (engine_int.h): a search's
 * candidates loaded from the store as items (their stored bytes, parsed
 * only when something needs the tree), and Bundles assembled from those
 * bytes, so a resource leaves as it was stored and the whole answer goes
 * through fj_finish once. engine.c runs the interactions over them.
 *
 * Invariants: an item owns its stored bytes (wiped when cleared: they are
 * patient data) and its parsed tree; a text that failed to grow says so
 * (oom) and is never sent. */
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/fhir/engine_int.h"
#include "query/fhir/fhir.h"
#include "query/fhir/fj.h"
#include "query/fhir/fj_parse.h"
#include "query/fhir/group.h"

/* ------------------------------------------------------------ candidates */

void fe_item_clear(item *x) {
  json_decref(x->res);
  if (x->raw != NULL) {
    sodium_memzero(x->raw, x->rawlen);
    free(x->raw);
  }
  x->raw = NULL;
  x->res = NULL;
}

void fe_items_free(items *it) {
  for (size_t i = 0; i < it->n; i++)
    fe_item_clear(&it->v[i]);
  free(it->v);
  memset(it, 0, sizeof *it);
}

/* The parsed resource of x (NULL: corrupt, with err set). */
json_t *fe_item_res(item *x, cl_err *err) {
  if (x->res == NULL) {
    json_error_t je;
    if ((x->res = fj_parse(x->raw, x->rawlen, 0, &je)) == NULL)
      cl_err_set(err, CL_ECORRUPT, "fhir: stored resource is not JSON: %s", je.text);
  }
  return x->res;
}

/* The id of a stored resource without parsing it: every mapper writes
 * resourceType and id first ({"resourceType":"T","id":"..."}, ids being
 * [A-Za-z0-9.-]); anything else is parsed. */
static int raw_id(const char *raw, size_t n, const char *type, char out[CL_FHIR_ID_MAX]) {
  char head[96];
  int hl = snprintf(head, sizeof head, "{\"resourceType\":\"%s\",\"id\":\"", type);
  if (hl <= 0 || (size_t)hl >= sizeof head || n < (size_t)hl || memcmp(raw, head, (size_t)hl))
    return -1;
  size_t i = (size_t)hl, k = 0;
  while (i < n && k + 1 < CL_FHIR_ID_MAX &&
         (isalnum((unsigned char)raw[i]) || raw[i] == '-' || raw[i] == '.'))
    out[k++] = raw[i++];
  if (i >= n || raw[i] != '"' || k == 0)
    return -1;
  out[k] = '\0';
  return 0;
}

int fe_add_item(void *ctx, cl_fhir_resource *r, cl_err *err) {
  items *it = ctx;
  if (it->n == it->cap) {
    size_t cap = it->cap ? it->cap * 2 : 64;
    item *v = realloc(it->v, cap * sizeof *v);
    if (v == NULL) {
      cl_fhir_resource_clear(r);
      return cl_err_set(err, CL_ENOMEM, "out of memory");
    }
    it->v = v;
    it->cap = cap;
  }
  item *x = &it->v[it->n];
  memset(x, 0, sizeof *x);
  x->raw = r->json; /* taken */
  x->rawlen = r->len;
  x->type = r->type;
  x->lu_ns = r->last_updated_ns;
  r->json = NULL;
  cl_fhir_resource_clear(r);
  it->n++;
  if (raw_id(x->raw, x->rawlen, cl_fhir_type_name(x->type), x->id) == 0)
    return 0;
  json_t *j = fe_item_res(x, err);
  const char *id = json_string_value(json_object_get(j, "id"));
  if (j == NULL)
    return err->code;
  if (id == NULL || strlen(id) >= sizeof x->id)
    return cl_err_set(err, CL_ECORRUPT, "fhir: a stored resource without an id");
  memcpy(x->id, id, strlen(id) + 1);
  return 0;
}

/* The patient id a criterion names, when the search is about one patient
 * (patient=123, patient=Patient/123, subject=Patient/123). */
const char *fe_one_patient(const query *q, char *buf, size_t n) {
  for (size_t i = 0; i < q->nc; i++) {
    const crit *c = &q->c[i];
    if (c->d->kind != K_REFERENCE || c->chain[0] || strchr(c->value, ','))
      continue;
    if (c->mod[0] && strcmp(c->mod, "Patient") != 0)
      continue;
    int is_patient_param = !strcmp(c->d->name, "patient");
    const char *v = c->value;
    if (!strncmp(v, "Patient/", 8))
      v += 8;
    else if (!is_patient_param || strchr(v, '/'))
      continue;
    snprintf(buf, n, "%s", v);
    return buf;
  }
  return NULL;
}

/* The derived Groups (group.h) as candidates. */
static int load_groups(cl_fhir_engine *e, items *it, cl_err *err) {
  json_t *all;
  int rc = cl_fhir_groups(e->p, UINT64_MAX, &all, err);
  if (rc)
    return rc;
  const char *id;
  json_t *g;
  json_object_foreach(all, id, g) {
    cl_fhir_resource r = {.type = CL_FHIR_Group,
                          .last_updated_ns = json_integer_value(json_object_get(g, "lu"))};
    if ((r.json = fj_dump(json_object_get(g, "resource"), &r.len)) == NULL)
      rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    else
      rc = fe_add_item(it, &r, err);
    if (rc)
      break;
  }
  json_decref(all);
  return rc;
}

int fe_load_candidates(cl_fhir_engine *e, const char *type, const char *patient, items *it,
                       cl_err *err) {
  int t = cl_fhir_type_of(type);
  if (t == CL_FHIR_Group)
    return load_groups(e, it, err);
  if (patient != NULL) {
    /* the compartment of a patient whose FHIR id is its clinlog id */
    char stream[CL_FHIR_ID_MAX + 16], id[CL_FHIR_ID_MAX];
    cl_fhir_id("Patient", NULL, patient, id);
    if (strcmp(id, patient) == 0) {
      uint8_t tag[32];
      snprintf(stream, sizeof stream, "patient-%s", patient);
      if (cl_log_stream_tag(e->log, stream, tag, err) == 0)
        return cl_fhir_stream(e->p, tag, t, CL_FHIR_STORED, fe_add_item, it, err);
    }
  }
  uint8_t next[32];
  return cl_fhir_scan_type(e->p, t, NULL, CL_FHIR_STORED, fe_add_item, it, next, err);
}

/* An fe_chain_fn over the engine `ctx`: the resources of `type` whose
 * `param` matches `value`, their "Type/id" in ids (chained searches). */
int fe_chain_ids(void *ctx, const char *type, const char *param, const char *value, json_t *ids,
                 int64_t now, cl_err *err) {
  cl_fhir_engine *e = ctx;
  const pdef *d = fe_find_param(type, param, strlen(param));
  if (d == NULL)
    return 0;
  crit c = {.d = d, .value = (char *)value};
  items it = {0};
  int rc = fe_load_candidates(e, type, NULL, &it, err);
  for (size_t i = 0; rc == 0 && i < it.n; i++) {
    json_t *res = fe_item_res(&it.v[i], err);
    if (res == NULL) {
      rc = -1;
      break;
    }
    if (fe_crit_value(res, &c, value, now)) {
      char r[160];
      snprintf(r, sizeof r, "%s/%s", type, it.v[i].id);
      json_array_append_new(ids, json_string(r));
    }
  }
  fe_items_free(&it);
  return rc < 0 ? -1 : 0;
}

/* ------------------------------------------------------------ Bundle entries */

json_t *fe_entry_of(const cl_fhir_req *rq, json_t *res, const char *mode) {
  char url[512];
  snprintf(url, sizeof url, "%s/%s/%s", rq->base ? rq->base : "",
           json_string_value(json_object_get(res, "resourceType")),
           json_string_value(json_object_get(res, "id")));
  json_t *e = json_pack("{s:s,s:O}", "fullUrl", url, "resource", res);
  if (mode != NULL)
    json_object_set_new(e, "search", json_pack("{s:s}", "mode", mode));
  return e;
}

/* ------------------------------------------------------------ Bundles from bytes */

static void text_put(fe_text *b, const char *s, size_t n) {
  if (b->oom)
    return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = (b->n + n + 1) * 2;
    char *np = realloc(b->p, cap);
    if (np == NULL) {
      b->oom = 1;
      return;
    }
    b->p = np;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
}

/* Appends a JSON value (stolen) as the next element of the list. */
void fe_add_json(fe_text *b, json_t *v) {
  size_t n;
  char *t = v ? fj_dump(v, &n) : NULL;
  json_decref(v);
  if (t == NULL) {
    b->oom = 1;
    return;
  }
  if (b->n > 0)
    text_put(b, ",", 1);
  text_put(b, t, n);
  free(t);
}

/* An entry of resource res (stolen), as fe_entry_of makes it. */
void fe_add_entry(fe_text *b, const cl_fhir_req *rq, json_t *res, const char *mode) {
  fe_add_json(b, fe_entry_of(rq, res, mode));
  json_decref(res);
}

/* The same entry around a resource's stored bytes, without parsing them:
 * {"fullUrl":"<base>/<type>/<id>","resource":<raw>,"search":{"mode":"<mode>"}}. */
void fe_add_raw_entry(fe_text *b, const cl_fhir_req *rq, const char *type, const char *id,
                      const char *raw, size_t n, const char *mode) {
  char url[512];
  snprintf(url, sizeof url, "%s/%s/%s", rq->base ? rq->base : "", type, id);
  json_t *u = json_string(url);
  char *eu = u ? json_dumps(u, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
  json_decref(u);
  if (eu == NULL) {
    b->oom = 1;
    return;
  }
  if (b->n > 0)
    text_put(b, ",", 1);
  text_put(b, "{\"fullUrl\":", 11);
  text_put(b, eu, strlen(eu));
  text_put(b, ",\"resource\":", 12);
  text_put(b, raw, n);
  text_put(b, ",\"search\":{\"mode\":\"", 19);
  text_put(b, mode, strlen(mode));
  text_put(b, "\"}}", 3);
  free(eu);
}

/* Sends Bundle b (stolen) with the entries (consumed) as its last element. */
int fe_send_bundle(cl_fhir_resp *rs, json_t *b, fe_text *entries) {
  size_t n;
  char *t = fj_dump(b, &n);
  json_decref(b);
  fe_text all = {0};
  if (t != NULL && n > 0) {
    text_put(&all, t, n - 1); /* without its closing brace */
    if (entries->n > 0) {
      text_put(&all, ",\"entry\":[", 10);
      text_put(&all, entries->p, entries->n);
      text_put(&all, "]", 1);
    }
    text_put(&all, "}", 1);
  }
  free(t);
  int oom = t == NULL || all.oom || entries->oom;
  free(entries->p);
  rs->status = 200;
  rs->body = oom ? NULL : fj_finish(all.p, all.n, &rs->len);
  free(all.p);
  if (rs->body == NULL) {
    rs->status = 500;
    return CL_ENOMEM;
  }
  return 0;
}

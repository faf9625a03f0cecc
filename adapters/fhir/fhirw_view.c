/* A write checked against its view (fhirw_int.h). Some views read more
 * than their event holds: a Claim's items are the ChargeItems it bills, a
 * ClaimResponse takes its type, insurer and item sequences from its Claim.
 * Such a write is taken only if what the views make of the mapped events
 * is what was written: w_as_view runs the views' own mapper over the events,
 * decoded and sanitized as the fold decodes them, against the views'
 * current resources (cl_fhirw_opts.fetch), and refuses the first element
 * that differs by its path. Nothing here changes the events. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/fhir/fhirw_int.h"
#include "store/alloc.h"

/* What the views' mapper sees: the resources the events made so far, then
 * the views'. */
typedef struct vstate {
  wctx *c;
  json_t *made; /* logical id -> resource */
} vstate;

int w_fetch(wctx *c, const char *type, const char *id, json_t **out) {
  char key[CL_FHIR_ID_MAX + 48];
  snprintf(key, sizeof key, "%s/%s", type, id);
  const json_t *kept = c->o->refs ? json_object_get(json_object_get(c->o->refs, key), "res") : NULL;
  *out = NULL;
  if (kept != NULL) {
    *out = json_deep_copy(kept);
    return *out != NULL ? 0 : cl_err_set(c->err, CL_ENOMEM, "out of memory");
  }
  if (c->o->fetch == NULL)
    return CL_ENOTFOUND;
  return c->o->fetch(c->o->ctx, type, id, out, c->err);
}

static int vget(cl_fhir_map *m, const char *type, const char *id, json_t **out, cl_err *err) {
  vstate *s = m->impl;
  json_t *r = json_object_get(s->made, id);
  if (r != NULL) {
    *out = json_deep_copy(r);
    return *out != NULL ? 0 : cl_err_set(err, CL_ENOMEM, "out of memory");
  }
  return w_fetch(s->c, type, id, out);
}

static int vput(cl_fhir_map *m, json_t *res, cl_err *err) {
  vstate *s = m->impl;
  const char *id = json_string_value(json_object_get(res, "id"));
  if (id == NULL) {
    json_decref(res);
    return cl_err_set(err, CL_EINVAL, "a mapped resource without an id");
  }
  return json_object_set_new(s->made, id, res) ? cl_err_set(err, CL_ENOMEM, "out of memory") : 0;
}

static const cl_fhir_map_ops VOPS = {vget, vput};

/* v as compared (returned-owned): integers as integers whichever way they
 * were held (marked text or a JSON integer); at the root, without meta,
 * text and id. */
static json_t *norm(const json_t *v, int root) {
  const char *s = json_string_value(v);
  if (s != NULL && s[0] == FJ_DECIMAL_MARK && s[1] &&
      strspn(s + 1 + (s[1] == '-'), "0123456789") == strlen(s + 1 + (s[1] == '-')) &&
      strlen(s) < 19)
    return json_integer(strtoll(s + 1, NULL, 10));
  json_t *o, *x;
  const char *k;
  size_t i;
  if (json_is_object(v)) {
    o = json_object();
    json_object_foreach((json_t *)v, k, x) {
      if (root && (!strcmp(k, "meta") || !strcmp(k, "text") || !strcmp(k, "id")))
        continue;
      json_object_set_new(o, k, norm(x, 0));
    }
    return o;
  }
  if (json_is_array(v)) {
    o = json_array();
    json_array_foreach((json_t *)v, i, x) json_array_append_new(o, norm(x, 0));
    return o;
  }
  return json_deep_copy(v);
}

/* v as JSON text for a refusal, its decimals bare, cut at 160 bytes (arena). */
static const char *shown(wctx *c, const json_t *v) {
  char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
  if (s == NULL)
    return "?";
  char *w = s;
  for (const char *p = s; *p; p++) {
    if (!strncmp(p, "\\u0001", 6)) {
      p += 5;
      continue;
    }
    *w++ = *p;
  }
  *w = '\0';
  const char *out = w_printf(c, "%.160s%s", s, strlen(s) > 160 ? "..." : "");
  free(s);
  return out ? out : "?";
}

/* 1 if the written reference `a` names the resource the view's `b`
 * ("<type>/<id>") does: a reference into the input (a Bundle entry's
 * fullUrl) is written as the logical id the views give its target. */
static int same_target(wctx *c, const json_t *a, const json_t *b) {
  const json_t *known = c->o->refs ? json_object_get(c->o->refs, json_string_value(a)) : NULL;
  const char *t = json_string_value(json_object_get(known, "type")),
             *bid = json_string_value(json_object_get(known, "bid")),
             *pat = json_string_value(json_object_get(known, "patient")), *want = json_string_value(b);
  if (t == NULL || bid == NULL || want == NULL)
    return 0;
  char id[CL_FHIR_ID_MAX];
  int scoped = strcmp(t, "Patient") != 0 && strcmp(t, "Device") != 0;
  cl_fhir_id(t, scoped ? pat : NULL, bid, id);
  size_t n = strlen(t);
  return !strncmp(want, t, n) && want[n] == '/' && !strcmp(want + n + 1, id);
}

/* Refuses the first difference of the written `a` from the view's `b`
 * under path; 0 if there is none. */
static int diff(wctx *c, const json_t *a, const json_t *b, const char *path) {
  const char *k;
  json_t *x;
  int rc;
  if (json_is_object(a) && json_is_object(b)) {
    json_object_foreach((json_t *)a, k, x) {
      const json_t *y = json_object_get(b, k);
      if (y == NULL)
        return w_fail(c, 422, "not-supported", w_path(c, path, k, 0),
                      "what the views make of this write has no %s here: the event cannot hold "
                      "it",
                      k);
      if (!strcmp(k, "reference") && json_is_string(x) && same_target(c, x, y))
        continue;
      if ((rc = diff(c, x, y, w_path(c, path, k, 0))))
        return rc;
    }
    json_object_foreach((json_t *)b, k, x) if (json_object_get(a, k) == NULL) return w_fail(
        c, 400, "required", w_path(c, path, k, 0),
        "required: the views state %s here (from this write and what it references)", shown(c, x));
    return 0;
  }
  if (json_is_array(a) && json_is_array(b)) {
    size_t na = json_array_size(a), nb = json_array_size(b);
    for (size_t i = 0; i < na || i < nb; i++) {
      const char *ip = w_path(c, path, NULL, (long)i);
      if (i >= nb)
        return w_fail(c, 422, "not-supported", ip,
                      "what the views make of this write has %zu here: the event cannot hold "
                      "more",
                      nb);
      if (i >= na)
        return w_fail(c, 400, "required", ip,
                      "required: the views state %s here (from this write and what it "
                      "references)",
                      shown(c, json_array_get(b, i)));
      if ((rc = diff(c, json_array_get(a, i), json_array_get(b, i), ip)))
        return rc;
    }
    return 0;
  }
  if (json_equal((json_t *)a, (json_t *)b))
    return 0;
  return w_fail(c, 422, "value", path,
                "the views make %s of this write here (from the event and what it references)",
                shown(c, b));
}

/* The events mapped as the fold maps them into s->made. */
static int map_events(wctx *c, vstate *s, const char *stream) {
  for (size_t i = 0; i < c->nev; i++) {
    size_t n = clinlog__v1__event__get_packed_size(c->ev[i]);
    uint8_t *buf = cl_malloc(n ? n : 1);
    if (buf == NULL)
      return cl_err_set(c->err, CL_ENOMEM, "out of memory");
    clinlog__v1__event__pack(c->ev[i], buf);
    Clinlog__V1__Event *ev = clinlog__v1__event__unpack(NULL, n, buf);
    cl_free(buf);
    if (ev == NULL)
      return cl_err_set(c->err, CL_ENOMEM, "out of memory decoding the mapped event");
    int rc = cl_fhir_sanitize(&ev->base, c->err);
    cl_fhir_map vm = {.ev = ev,
                      .patient_id = c->patient_id,
                      .stream = stream,
                      .seq = i + 1,
                      .committed_at_ns = c->o->now_ns,
                      .ops = &VOPS,
                      .impl = s};
    if (rc == 0)
      rc = cl_fhir_map_event(&vm, c->err);
    clinlog__v1__event__free_unpacked(ev, NULL);
    if (rc)
      return rc;
  }
  return 0;
}

int w_as_view(wctx *c, const json_t *r) {
  char id[CL_FHIR_ID_MAX];
  cl_fhir_id(c->type, c->patient_id, c->bid, id);
  return w_other_as_view(c, c->type, id, r, c->root);
}

int w_other_as_view(wctx *c, const char *type, const char *id, const json_t *r, const char *path) {
  vstate s = {.c = c, .made = json_object()};
  char stream[160];
  snprintf(stream, sizeof stream, "patient-%s", c->patient_id);
  if (s.made == NULL)
    return cl_err_set(c->err, CL_ENOMEM, "out of memory");
  int rc = map_events(c, &s, stream);
  json_t *held = NULL; /* made by none of the events: the views keep what they hold */
  const json_t *view = json_object_get(s.made, id);
  if (rc == 0 && view == NULL) {
    rc = w_fetch(c, type, id, &held);
    rc = rc == CL_ENOTFOUND ? 0 : rc;
    view = held;
  }
  if (rc == 0) {
    json_t *a = norm(r, 1), *b = view != NULL ? norm(view, 1) : NULL;
    if (a == NULL)
      rc = cl_err_set(c->err, CL_ENOMEM, "out of memory");
    else if (b == NULL)
      rc = w_fail(c, 422, "not-supported", path, "the views make no %s of this write", type);
    else
      rc = diff(c, a, b, path);
    json_decref(a);
    json_decref(b);
  }
  json_decref(held);
  json_decref(s.made);
  return rc;
}

int w_lines_as_view(wctx *c, const json_t *const *lines, size_t n) {
  vstate s = {.c = c, .made = json_object()};
  char stream[160], id[CL_FHIR_ID_MAX];
  snprintf(stream, sizeof stream, "patient-%s", c->patient_id);
  cl_fhir_id("DiagnosticReport", c->patient_id, c->bid, id);
  if (s.made == NULL)
    return cl_err_set(c->err, CL_ENOMEM, "out of memory");
  int rc = map_events(c, &s, stream);
  const json_t *results = json_object_get(json_object_get(s.made, id), "result");
  for (size_t i = 0; rc == 0 && i < n; i++) {
    if (lines[i] == NULL)
      continue;
    const char *want = json_string_value(json_object_get(json_array_get(results, i), "reference"));
    const char *own = json_string_value(json_object_get(lines[i], "id"));
    const char *ip = w_path(c, w_path(c, c->root, "result", 0), NULL, (long)i);
    const json_t *view =
        want && !strncmp(want, "Observation/", 12) ? json_object_get(s.made, want + 12) : NULL;
    if (view == NULL || (own != NULL && strcmp(own, want + 12) != 0)) {
      rc = w_fail(c, 422, "value", ip,
                  "the views make %s of this result line (its report's id and its identifier or "
                  "code decide it), not Observation/%.64s",
                  want ? want : "no Observation", own ? own : "?");
      break;
    }
    json_t *a = norm(lines[i], 1), *b = norm(view, 1);
    rc = a == NULL || b == NULL ? cl_err_set(c->err, CL_ENOMEM, "out of memory")
                                : diff(c, a, b, w_printf(c, "%s.resolve()", ip));
    json_decref(a);
    json_decref(b);
  }
  json_decref(s.made);
  return rc;
}

int w_text_ids(wctx *c, const json_t *r, const char *p, const char *const *names,
               char **const *slots) {
  const json_t *ids;
  size_t n;
  int rc = w_arr(c, r, p, "identifier", &ids, &n);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    static const char *const keys[] = {"type", "value", NULL};
    static const char *const tkeys[] = {"text", NULL};
    const json_t *id = json_array_get(ids, i), *type;
    const char *ip = w_path(c, w_path(c, p, "identifier", 0), NULL, (long)i), *sys, *text, *val;
    if (!json_is_object(id))
      return w_fail(c, 400, "structure", ip, "expected an Identifier (an object)");
    if ((rc = w_str(c, id, ip, "system", &sys)))
      return rc;
    if (sys != NULL && !strcmp(sys, FJ_BUSINESS_ID_SYSTEM))
      continue;
    if ((rc = w_only(c, id, ip, keys, 0)) || (rc = w_obj(c, id, ip, "type", &type)) ||
        (rc = w_str(c, id, ip, "value", &val)))
      return rc;
    const char *tp = w_path(c, ip, "type", 0);
    if (type == NULL || (rc = w_only(c, type, tp, tkeys, 0)) ||
        (rc = w_str(c, type, tp, "text", &text)) || text == NULL) {
      if (rc)
        return rc;
      return w_fail(c, 422, "not-supported", ip,
                    "besides the business id, the identifiers written are those the views "
                    "type by text (%s...)",
                    names[0]);
    }
    size_t k = 0;
    while (names[k] != NULL && strcmp(names[k], text) != 0)
      k++;
    if (names[k] == NULL)
      return w_fail(c, 422, "not-supported", w_path(c, tp, "text", 0),
                    "'%.64s' is not an identifier this resource's event holds", text);
    if (val == NULL)
      return w_fail(c, 400, "required", w_path(c, ip, "value", 0), "required");
    if ((*slots[k])[0])
      return w_fail(c, 422, "not-supported", ip, "one %s can be written", names[k]);
    *slots[k] = (char *)val;
  }
  return rc;
}

int cl_fhirw_refs_keep(json_t *refs, const cl_fhirw_mapped *m, const json_t *res) {
  if (strcmp(m->type, "ChargeItem") && strcmp(m->type, "Claim") && strcmp(m->type, "Coverage"))
    return 0;
  char key[CL_FHIR_ID_MAX + 48];
  snprintf(key, sizeof key, "%s/%s", m->type, m->id);
  json_t *v = json_object_get(refs, key), *copy;
  if (v == NULL)
    return 0;
  if ((copy = json_deep_copy(res)) == NULL ||
      json_object_set_new(copy, "id", json_string(m->id)) != 0) {
    json_decref(copy);
    return CL_ENOMEM;
  }
  return json_object_set_new(v, "res", copy) ? CL_ENOMEM : 0;
}

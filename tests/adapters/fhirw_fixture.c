/* What the FHIR writes tests share (tests/adapters/test_fhirw.c and
 * test_fhirw_types.c): the world the mapper sees (one known patient p1,
 * encounter enc-1 and prescription rx-1), the views' own mapper run over
 * the mapped events, the round trip, and the refusal check. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clinlog/v1/event.pb-c.h"
#include "fhirw_fixture.h"
#include "store/event.h"

/* ---- the world the mapper sees: one known patient and encounter ---- */

char fw_enc_id[CL_FHIR_ID_MAX], fw_rx_id[CL_FHIR_ID_MAX], fw_sr_id[CL_FHIR_ID_MAX];
json_t *fw_world;

/* A resource of fw_world (a copy), or NULL. */
static json_t *world_get(const char *type, const char *id) {
  json_t *r = fw_world ? json_object_get(fw_world, id) : NULL;
  const char *t = json_string_value(json_object_get(r, "resourceType"));
  return t && !strcmp(t, type) ? json_deep_copy(r) : NULL;
}

static int fetch(void *ctx, const char *type, const char *id, json_t **out, cl_err *err) {
  (void)ctx, (void)err;
  *out = world_get(type, id);
  return *out ? 0 : CL_ENOTFOUND;
}

static int resolve(void *ctx, const char *type, const char *id, char *bid, size_t bidn,
                   cl_err *err) {
  (void)ctx, (void)err;
  if (!strcmp(type, "Patient") && !strcmp(id, "p1")) {
    snprintf(bid, bidn, "p1");
    return 0;
  }
  if (!strcmp(type, "Encounter") && !strcmp(id, fw_enc_id)) {
    snprintf(bid, bidn, "enc-1");
    return 0;
  }
  if (!strcmp(type, "MedicationRequest") && !strcmp(id, fw_rx_id)) {
    snprintf(bid, bidn, "rx-1");
    return 0;
  }
  if (!strcmp(type, "ServiceRequest") && !strcmp(id, fw_sr_id)) {
    snprintf(bid, bidn, "sr-1");
    return 0;
  }
  json_t *r = world_get(type, id);
  int rc = r ? cl_fhirw_bid_of(r, bid, bidn) : CL_ENOTFOUND;
  json_decref(r);
  return rc;
}

cl_fhirw_opts fw_opts(void) {
  cl_fhir_id("Encounter", "p1", "enc-1", fw_enc_id);
  cl_fhir_id("MedicationRequest", "p1", "rx-1", fw_rx_id);
  cl_fhir_id("ServiceRequest", "p1", "sr-1", fw_sr_id);
  cl_fhirw_opts o = {.principal_id = "fhir-feed",
                     .now_ns = 1767225600LL * 1000000000LL, /* 2026-01-01T00:00:00Z */
                     .resolve = resolve,
                     .fetch = fetch,
                     .bulk = 1};
  return o;
}

json_t *fw_parse(const char *text) {
  json_t *j;
  cl_fhirw_error fe;
  cl_err err;
  cr_assert_eq(cl_fhirw_parse(text, strlen(text), &j, &fe, &err), 0, "%s", err.msg);
  return j;
}

cl_fhirw_mapped *fw_map_ok(const char *text) {
  json_t *j = fw_parse(text);
  cl_fhirw_opts o = fw_opts();
  cl_fhirw_mapped *m;
  cl_fhirw_error fe;
  cl_err err;
  int rc = cl_fhirw_map(j, NULL, NULL, "", &o, &m, &fe, &err);
  cr_assert_eq(rc, 0, "map: %s", err.msg);
  json_decref(j);
  return m;
}

/* ---- the view's mapper over the events (a store of one resource map) ---- */

static int vget(cl_fhir_map *m, const char *type, const char *id, json_t **out, cl_err *err) {
  (void)err;
  json_t *r = json_object_get(m->impl, id);
  *out = r ? json_deep_copy(r) : world_get(type, id);
  return *out ? 0 : CL_ENOTFOUND;
}

static int vput(cl_fhir_map *m, json_t *res, cl_err *err) {
  (void)err;
  json_object_set_new(m->impl, json_string_value(json_object_get(res, "id")), res);
  return 0;
}

static const cl_fhir_map_ops VOPS = {vget, vput};

json_t *fw_views_of(const cl_fhirw_mapped *m) {
  json_t *store = json_object();
  for (size_t i = 0; i < m->n; i++) {
    Clinlog__V1__Event *ev;
    cl_err err;
    cr_assert_eq(cl_event_decode(m->ev[i].bytes, m->ev[i].len, &ev, &err), 0, "%s", err.msg);
    cr_assert_str_eq(ev->stream, m->stream);
    cr_assert_eq(ev->event_id.len, 16);
    cr_assert_eq(memcmp(ev->event_id.data, m->ev[i].event_id, 16), 0);
    cr_assert_eq((uint32_t)ev->body_case, m->ev[i].type);
    cl_fhir_map vm = {.ev = ev,
                      .patient_id = m->patient_id,
                      .stream = m->stream,
                      .seq = i + 1,
                      .committed_at_ns = 1,
                      .ops = &VOPS,
                      .impl = store};
    cr_assert_eq(cl_fhir_map_event(&vm, &err), 0, "%s", err.msg);
    clinlog__v1__event__free_unpacked(ev, NULL);
  }
  return store;
}

json_t *fw_view_of(const cl_fhirw_mapped *m) {
  json_t *store = fw_views_of(m);
  json_t *r = json_incref(json_object_get(store, m->id));
  json_decref(store);
  cr_assert_not_null(r, "the views made no %s/%s", m->type, m->id);
  return r;
}

/* Integers as the views write them (bare JSON integers), whether the input
 * or a decimal held them (marked text, fj.h); other decimals stay marked,
 * so their precision is compared as text. Returns v or its replacement. */
json_t *fw_ints(json_t *v) {
  const char *s = json_string_value(v);
  if (s && s[0] == FJ_DECIMAL_MARK && s[1] && strspn(s + 1, "-0123456789") == strlen(s + 1)) {
    json_t *n = json_integer(strtoll(s + 1, NULL, 10));
    json_decref(v);
    return n;
  }
  const char *k;
  json_t *x;
  size_t i;
  if (json_is_object(v))
    json_object_foreach(v, k, x) json_object_set_new(v, k, fw_ints(json_incref(x)));
  else if (json_is_array(v))
    json_array_foreach(v, i, x) json_array_set_new(v, i, fw_ints(json_incref(x)));
  return v;
}

void fw_assert_same(json_t *want, json_t *got) {
  char *a = json_dumps(want, JSON_SORT_KEYS), *b = json_dumps(got, JSON_SORT_KEYS);
  cr_assert(json_equal(want, got), "written:\n%s\nread back:\n%s", a, b);
  free(a);
  free(b);
  json_decref(want);
  json_decref(got);
}

/* Writes `text` and reads it back from the views: the same resource. */
void fw_round_trip(const char *text) {
  cl_fhirw_mapped *m = fw_map_ok(text);
  json_t *want = fw_ints(fw_parse(text)), *got = fw_ints(fw_view_of(m));
  json_object_set_new(want, "id", json_string(m->id));
  fw_assert_same(want, got);
  /* the same input maps to the same bytes */
  cl_fhirw_mapped *again = fw_map_ok(text);
  cr_assert_eq(again->n, m->n);
  for (size_t i = 0; i < m->n; i++) {
    cr_assert_eq(again->ev[i].len, m->ev[i].len);
    cr_assert_eq(memcmp(again->ev[i].bytes, m->ev[i].bytes, m->ev[i].len), 0);
  }
  cl_fhirw_mapped_free(again);
  cl_fhirw_mapped_free(m);
}

void fw_map_refused(const char *text, const cl_fhirw_opts *o, size_t i, cl_fhirw_error *fe,
                    cl_err *err) {
  json_t *j = fw_parse(text);
  cl_fhirw_mapped *m = NULL;
  int rc = cl_fhirw_map(j, NULL, NULL, "", o, &m, fe, err);
  json_decref(j);
  cr_assert_eq(rc, CL_EMALFORMED, "case %zu: rc %d", i, rc);
  cr_assert_null(m, "case %zu: a refusal produces nothing", i);
}

void fw_refused_all(const fw_bad *cases, size_t n) {
  cl_fhirw_opts o = fw_opts();
  for (size_t i = 0; i < n; i++) {
    const fw_bad *b = &cases[i];
    json_t *j = NULL;
    cl_fhirw_error fe;
    memset(&fe, 0, sizeof fe);
    cl_err err;
    int rc = cl_fhirw_parse(b->json, strlen(b->json), &j, &fe, &err);
    cl_fhirw_mapped *m = (cl_fhirw_mapped *)1;
    if (rc == 0) {
      rc = cl_fhirw_map(j, NULL, NULL, "", &o, &m, &fe, &err);
      cr_assert_null(m, "case %zu: a refusal produces nothing", i);
    }
    json_decref(j);
    cr_assert_eq(rc, CL_EMALFORMED, "case %zu (%s): rc %d", i, b->json, rc);
    cr_assert_eq(fe.status, b->status, "case %zu (%s): status %d: %s", i, b->json, fe.status,
                 err.msg);
    cr_assert_str_eq(fe.expression, b->expression, "case %zu (%s): %s", i, b->json, err.msg);
    cr_assert_str_eq(fe.code, b->code, "case %zu (%s): %s", i, b->json, err.msg);
    cr_assert(fe.text[0], "case %zu: a reason", i);
    /* the OperationOutcome carries the path */
    json_t *oo = cl_fhirw_outcome(&fe);
    json_t *issue = json_array_get(json_object_get(oo, "issue"), 0);
    if (b->expression[0])
      cr_assert_str_eq(json_string_value(json_array_get(json_object_get(issue, "expression"), 0)),
                       b->expression);
    json_decref(oo);
  }
}

Clinlog__V1__Event *fw_only_event(const cl_fhirw_mapped *m, unsigned body) {
  cr_assert_eq(m->n, 1);
  cr_assert_eq(m->ev[0].type, body);
  Clinlog__V1__Event *ev;
  cl_err err;
  cr_assert_eq(cl_event_decode(m->ev[0].bytes, m->ev[0].len, &ev, &err), 0, "%s", err.msg);
  return ev;
}

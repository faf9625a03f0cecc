/* Groups derived from coverage (group.h). */
#include "query/fhir/group.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/fhir/fj.h"
#include "query/fhir/fj_parse.h"
#include "store/sha256.h"

/* A group being gathered: the payer, its members and their streams. */
typedef struct gather {
  json_t *groups; /* id -> {"payer": {...}, "members": {ref: active?}, "tags": {...}, "lu": ns} */
  cl_err *err;
} gather;

static void group_id(const char *system, const char *value, char out[CL_FHIR_ID_MAX]) {
  size_t n = strlen(value), ok = n > 0 && n <= 58;
  for (size_t i = 0; ok && i < n; i++)
    ok = isalnum((unsigned char)value[i]) || value[i] == '-' || value[i] == '.';
  if (ok) {
    snprintf(out, CL_FHIR_ID_MAX, "payer-%s", value);
    return;
  }
  uint8_t h[32];
  cl_sha256_state st;
  cl_sha256_init(&st);
  cl_sha256_update(&st, (const uint8_t *)system, strlen(system));
  cl_sha256_update(&st, (const uint8_t *)"|", 1);
  cl_sha256_update(&st, (const uint8_t *)value, n);
  cl_sha256_final(&st, h);
  char hex[65];
  sodium_bin2hex(hex, sizeof hex, h, 32);
  snprintf(out, CL_FHIR_ID_MAX, "payer-%.32s", hex);
}

static int add_coverage(void *ctx, cl_fhir_resource *r, cl_err *err) {
  gather *g = ctx;
  json_t *c = fj_parse(r->json, r->len, 0, NULL);
  char tag[65];
  sodium_bin2hex(tag, sizeof tag, r->tag, 32);
  int64_t lu = r->last_updated_ns;
  cl_fhir_resource_clear(r);
  if (c == NULL)
    return cl_err_set(err, CL_ECORRUPT, "fhir: a stored Coverage is not JSON");
  json_t *payor = json_array_get(json_object_get(c, "payor"), 0);
  json_t *pid = json_object_get(payor, "identifier");
  const char *value = json_string_value(json_object_get(pid, "value"));
  const char *patient =
      json_string_value(json_object_get(json_object_get(c, "beneficiary"), "reference"));
  if (value == NULL || patient == NULL) { /* the payer is not known: in no group */
    json_decref(c);
    return 0;
  }
  const char *system = json_string_value(json_object_get(pid, "system"));
  char id[CL_FHIR_ID_MAX];
  group_id(system ? system : "", value, id);
  json_t *gr = json_object_get(g->groups, id);
  if (gr == NULL) {
    gr = json_pack("{s:O,s:{},s:{},s:I}", "payer", payor, "members", "tags", "lu", (json_int_t)0);
    json_object_set_new(g->groups, id, gr);
  }
  const char *status = json_string_value(json_object_get(c, "status"));
  int active = status != NULL && !strcmp(status, "active");
  json_t *members = json_object_get(gr, "members");
  if (active || json_object_get(members, patient) == NULL)
    json_object_set_new(members, patient, json_boolean(active));
  json_object_set_new(json_object_get(gr, "tags"), tag, json_true());
  if (lu > json_integer_value(json_object_get(gr, "lu")))
    json_object_set_new(gr, "lu", json_integer(lu));
  json_decref(c);
  return 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The Group resource of gathered group gr. */
static json_t *group_resource(const char *id, json_t *gr) {
  json_t *payer = json_object_get(gr, "payer");
  const char *name = json_string_value(json_object_get(payer, "display"));
  if (name == NULL)
    name = json_string_value(json_object_get(json_object_get(payer, "identifier"), "value"));
  char title[256];
  snprintf(title, sizeof title, "Members covered by %s", name ? name : "an unnamed payer");
  json_t *members = json_object_get(gr, "members");
  size_t n = json_object_size(members), k = 0;
  const char **refs = calloc(n ? n : 1, sizeof *refs);
  const char *ref;
  json_t *v;
  json_object_foreach(members, ref, v) refs[k++] = ref;
  qsort(refs, n, sizeof *refs, cmp_str);
  json_t *list = json_array();
  for (size_t i = 0; i < n; i++) {
    json_t *m = json_pack("{s:{s:s}}", "entity", "reference", refs[i]);
    if (!json_is_true(json_object_get(members, refs[i])))
      json_object_set_new(m, "inactive", json_true());
    json_array_append_new(list, m);
  }
  free(refs);
  json_t *g =
      json_pack("{s:s,s:s,s:{s:o}}", "resourceType", "Group", "id", id, "meta", "lastUpdated",
                fj_instant_ns(json_integer_value(json_object_get(gr, "lu"))));
  json_t *pid = json_object_get(payer, "identifier");
  if (pid != NULL)
    json_object_set_new(g, "identifier", json_pack("[O]", pid));
  json_object_set_new(g, "active", json_true());
  json_object_set_new(g, "type", json_string("person"));
  json_object_set_new(g, "actual", json_true());
  json_object_set_new(g, "name", json_string(title));
  json_object_set_new(g, "managingEntity", json_deep_copy(payer));
  json_object_set_new(g, "quantity", json_integer((json_int_t)n));
  if (n > 0)
    json_object_set_new(g, "member", list);
  else
    json_decref(list);
  return g;
}

int cl_fhir_groups(cl_proj *p, uint64_t as_of, json_t **out, cl_err *err) {
  gather g = {json_object(), err};
  cl_fhir_snapshot s = {.as_of = as_of};
  uint8_t key[32];
  int rc = cl_fhir_scan_snapshot(p, CL_FHIR_Coverage, &s, NULL, NULL, CL_FHIR_STORED, add_coverage,
                                 &g, key, err);
  if (rc < 0) {
    json_decref(g.groups);
    return rc;
  }
  json_t *res = json_object();
  const char *id;
  json_t *gr;
  json_object_foreach(g.groups, id, gr) {
    json_object_set_new(res, id,
                        json_pack("{s:o,s:O,s:O}", "resource", group_resource(id, gr), "tags",
                                  json_object_get(gr, "tags"), "lu", json_object_get(gr, "lu")));
  }
  json_decref(g.groups);
  *out = res;
  return 0;
}

int cl_fhir_group_tags(cl_proj *p, uint64_t as_of, const char *id, cl_hmap **tags, cl_err *err) {
  json_t *all;
  int rc = cl_fhir_groups(p, as_of, &all, err);
  if (rc)
    return rc;
  json_t *t = json_object_get(json_object_get(all, id ? id : ""), "tags");
  if (t == NULL) {
    size_t known = json_object_size(all);
    json_decref(all);
    return cl_err_set(err, CL_ENOTFOUND, "no Group/%s (a Group is a payer's members: %zu known)",
                      id ? id : "", known);
  }
  cl_hmap *m = cl_hmap_new(32, 1);
  const char *hex;
  json_t *v;
  json_object_foreach(t, hex, v) {
    uint8_t tag[32];
    if (m == NULL || sodium_hex2bin(tag, 32, hex, 64, NULL, NULL, NULL) != 0 ||
        cl_hmap_put(m, tag, "") == NULL) {
      rc = cl_err_set(err, CL_ENOMEM, "out of memory");
      break;
    }
  }
  json_decref(all);
  if (rc) {
    cl_hmap_free(m);
    return rc;
  }
  *tags = m;
  return 0;
}

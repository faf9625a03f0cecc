/* Helpers the resource types added after the first ten share (fhirw.h):
 * the walk over extensions, references held one to an array, and the one
 * identifier of a system some events keep besides the business id. */
#include <stdio.h>
#include <string.h>

#include "adapters/fhir/fhirw_int.h"

int w_each_ext(wctx *c, const json_t *r, const char *p, w_ext_fn fn, void *ctx) {
  const json_t *a;
  size_t n;
  int rc = w_arr(c, r, p, "extension", &a, &n);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    const json_t *e = json_array_get(a, i);
    const char *ep = w_path(c, w_path(c, p, "extension", 0), NULL, (long)i), *url;
    if (!json_is_object(e))
      return w_fail(c, 400, "structure", ep, "expected an Extension (an object)");
    if ((rc = w_str(c, e, ep, "url", &url)))
      return rc;
    if (url == NULL)
      return w_fail(c, 400, "required", w_path(c, ep, "url", 0), "required");
    rc = fn(c, e, ep, url, ctx);
  }
  return rc;
}

int w_ref_bid_elem(wctx *c, const json_t *elem, const char *p, const char *name, const char *type,
                   const char **out) {
  json_t *wrap = json_object(); /* so that the element's path reads <name> */
  int rc = wrap == NULL || json_object_set(wrap, name, (json_t *)elem)
               ? cl_err_set(c->err, CL_ENOMEM, "out of memory")
               : w_ref_bid(c, wrap, p, name, type, out);
  json_decref(wrap);
  return rc;
}

int w_only_one(wctx *c, const json_t *r, const char *p, const char *key, const json_t **e,
               const char **ep) {
  const json_t *a;
  size_t n;
  int rc = w_arr(c, r, p, key, &a, &n);
  *e = NULL;
  if (rc || n == 0)
    return rc;
  const char *kp = w_path(c, p, key, 0);
  if (n > 1)
    return w_fail(c, 422, "not-supported", w_path(c, kp, NULL, 1), "one %s can be written", key);
  *ep = w_path(c, kp, NULL, 0);
  *e = json_array_get(a, 0);
  if (!json_is_object(*e))
    return w_fail(c, 400, "structure", *ep, "expected an object");
  return 0;
}

int w_ref_bid_first(wctx *c, const json_t *r, const char *p, const char *key, const char *type,
                    const char **out) {
  const json_t *a;
  size_t n;
  int rc = w_arr(c, r, p, key, &a, &n);
  if (rc || n == 0)
    return rc;
  if (n > 1)
    return w_fail(c, 422, "not-supported", w_path(c, w_path(c, p, key, 0), NULL, 1),
                  "one %s (a %s) can be written", key, type);
  char name[64];
  snprintf(name, sizeof name, "%s[0]", key);
  return w_ref_bid_elem(c, json_array_get(a, 0), p, name, type, out);
}

int w_system_id(wctx *c, const json_t *r, const char *p, const char *system, char **out,
                const char *what) {
  const json_t *ids;
  size_t n;
  int rc = w_arr(c, r, p, "identifier", &ids, &n);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    const char *ip = w_path(c, w_path(c, p, "identifier", 0), NULL, (long)i);
    Clinlog__V1__Identifier *x;
    if ((rc = w_identifier(c, json_array_get(ids, i), ip, &x)))
      return rc;
    if (!strcmp(x->system, FJ_BUSINESS_ID_SYSTEM))
      continue;
    if (strcmp(x->system, system) || x->type[0] || x->assigner[0] || (*out)[0] || !x->value[0])
      return w_fail(c, 422, "not-supported", ip, "besides the business id: %s (system %s)", what,
                    system);
    *out = x->value;
  }
  return rc;
}

/* JSON Patch (RFC 6902) and JSON Pointer (RFC 6901) over jansson values;
 * the contract is in fhirw_patch.h. Every operation works on a deep copy of
 * the document, which replaces the caller's only when the whole patch has
 * applied: a failing operation leaves nothing half-patched. */
#include "adapters/fhir/fhirw_patch.h"

#include <stdlib.h>
#include <string.h>

#include "query/fhir/fj.h"

#define MAX_DEPTH 64 /* reference tokens in one pointer */

/* One parsed pointer: its tokens, unescaped, NUL-terminated in buf. */
typedef struct ptr {
  char *tok[MAX_DEPTH];
  size_t n;
  char buf[1024];
} ptr;

typedef struct op_ctx {
  size_t i; /* the operation's index in the patch */
  cl_fhirw_error *fe;
  cl_err *err;
} op_ctx;

static int fail(op_ctx *c, int status, const char *code, const char *member, const char *why,
                const char *what) {
  char expr[48];
  snprintf(expr, sizeof expr, "patch[%zu]%s%s", c->i, member[0] ? "." : "", member);
  return cl_fhirw_fail(c->fe, c->err, status, code, expr, "%s: %s%.200s", expr, why, what);
}

/* Splits and unescapes pointer s into p: 0, or -1 (not a pointer). */
static int ptr_parse(const char *s, ptr *p) {
  p->n = 0;
  if (s[0] == '\0')
    return 0; /* the whole document */
  if (s[0] != '/' || strlen(s) >= sizeof p->buf)
    return -1;
  char *o = p->buf;
  for (const char *q = s; *q;) {
    if (p->n == MAX_DEPTH)
      return -1;
    q++; /* the '/' */
    p->tok[p->n++] = o;
    for (; *q && *q != '/'; q++) {
      if (*q != '~') {
        *o++ = *q;
        continue;
      }
      if (q[1] != '0' && q[1] != '1')
        return -1; /* "~" is escaped as ~0, "/" as ~1; nothing else */
      *o++ = q[1] == '0' ? '~' : '/';
      q++;
    }
    *o++ = '\0';
  }
  return 0;
}

/* An array index token: 0..size-1 (or size when `end` allows the append
 * position); "-" is size when `end`. -1: not an index or out of range. */
static long index_of(const char *t, size_t size, int end) {
  if (end && !strcmp(t, "-"))
    return (long)size;
  size_t n = strlen(t);
  if (n == 0 || n > 9 || strspn(t, "0123456789") != n || (t[0] == '0' && n > 1))
    return -1;
  long i = strtol(t, NULL, 10);
  return (size_t)i < size + (end ? 1 : 0) ? i : -1;
}

/* The value tokens [0, n) of p name in doc, or NULL (not there). */
static json_t *walk(json_t *doc, const ptr *p, size_t n) {
  json_t *v = doc;
  for (size_t k = 0; v && k < n; k++) {
    if (json_is_object(v)) {
      v = json_object_get(v, p->tok[k]);
    } else if (json_is_array(v)) {
      long i = index_of(p->tok[k], json_array_size(v), 0);
      v = i < 0 ? NULL : json_array_get(v, (size_t)i);
    } else {
      v = NULL;
    }
  }
  return v;
}

/* Numbers are marked strings (cl_fhirw_parse): equal by value. */
static int is_num(const json_t *v) {
  const char *s = json_string_value(v);
  return s && s[0] == FJ_DECIMAL_MARK;
}

/* A member's string value; NULL for anything else, a number included. */
static const char *str_of(const json_t *v) { return is_num(v) ? NULL : json_string_value(v); }

static int equal(const json_t *a, const json_t *b) {
  if (is_num(a) && is_num(b))
    return strtod(json_string_value(a) + 1, NULL) == strtod(json_string_value(b) + 1, NULL);
  if (json_is_array(a) && json_is_array(b)) {
    if (json_array_size(a) != json_array_size(b))
      return 0;
    for (size_t i = 0; i < json_array_size(a); i++)
      if (!equal(json_array_get(a, i), json_array_get(b, i)))
        return 0;
    return 1;
  }
  if (json_is_object(a) && json_is_object(b)) {
    if (json_object_size(a) != json_object_size(b))
      return 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)a, k, v) {
      if (!equal(v, json_object_get(b, k)))
        return 0;
    }
    return 1;
  }
  return json_equal(a, b);
}

/* Adds v (taken) at p in *doc (the add op: an object member is set, an
 * array element inserted, the root replaced). */
static int add_at(op_ctx *c, json_t **doc, const ptr *p, json_t *v, const char *member) {
  if (p->n == 0) {
    json_decref(*doc);
    *doc = v;
    return 0;
  }
  json_t *parent = walk(*doc, p, p->n - 1);
  const char *last = p->tok[p->n - 1];
  int rc = -1;
  if (json_is_object(parent)) {
    rc = json_object_set_new(parent, last, v);
    v = NULL;
  } else if (json_is_array(parent)) {
    long i = index_of(last, json_array_size(parent), 1);
    if (i < 0) {
      json_decref(v);
      return fail(c, 422, "processing", member, "index out of range or not an index: ", last);
    }
    rc = json_array_insert_new(parent, (size_t)i, v);
    v = NULL;
  } else {
    json_decref(v);
    return fail(c, 422, "processing", member, "no object or array to add to at ", last);
  }
  return rc ? cl_err_set(c->err, CL_ENOMEM, "out of memory patching") : 0;
}

/* Removes what p names (it must be there; not the root). */
static int remove_at(op_ctx *c, json_t *doc, const ptr *p, const char *member) {
  if (p->n == 0)
    return fail(c, 422, "processing", member, "the whole resource cannot be removed", "");
  json_t *parent = walk(doc, p, p->n - 1);
  const char *last = p->tok[p->n - 1];
  if (json_is_object(parent) && json_object_get(parent, last) != NULL)
    return json_object_del(parent, last), 0;
  long i = json_is_array(parent) ? index_of(last, json_array_size(parent), 0) : -1;
  if (i < 0)
    return fail(c, 422, "processing", member, "nothing there to remove: ", last);
  json_array_remove(parent, (size_t)i);
  return 0;
}

/* One operation o (the i-th) on *doc. */
static int apply_op(op_ctx *c, json_t **doc, json_t *o) {
  if (!json_is_object(o))
    return fail(c, 400, "structure", "", "an operation is a JSON object", "");
  json_t *jop = json_object_get(o, "op"), *jpath = json_object_get(o, "path");
  const char *op = str_of(jop);
  if (op == NULL)
    return fail(c, 400, jop ? "structure" : "required", "op", "required: a string", "");
  int add = !strcmp(op, "add"), rem = !strcmp(op, "remove"), rep = !strcmp(op, "replace"),
      mov = !strcmp(op, "move"), cpy = !strcmp(op, "copy"), tst = !strcmp(op, "test");
  if (!(add || rem || rep || mov || cpy || tst))
    return fail(c, 400, "invalid", "op", "not add, remove, replace, move, copy or test: ", op);
  ptr path, from;
  if (str_of(jpath) == NULL)
    return fail(c, 400, jpath ? "structure" : "required", "path", "required: a string", "");
  if (ptr_parse(json_string_value(jpath), &path) != 0)
    return fail(c, 400, "invalid", "path", "not a JSON Pointer: ", json_string_value(jpath));
  json_t *value = json_object_get(o, "value");
  if ((add || rep || tst) && value == NULL)
    return fail(c, 400, "required", "value", "required for ", op);
  if (mov || cpy) {
    json_t *jfrom = json_object_get(o, "from");
    if (str_of(jfrom) == NULL)
      return fail(c, 400, jfrom ? "structure" : "required", "from", "required: a string", "");
    if (ptr_parse(json_string_value(jfrom), &from) != 0)
      return fail(c, 400, "invalid", "from", "not a JSON Pointer: ", json_string_value(jfrom));
  }
  json_t *target = walk(*doc, &path, path.n);
  if (tst) {
    if (target == NULL)
      return fail(c, 422, "processing", "path", "test: nothing at ", json_string_value(jpath));
    if (!equal(target, value))
      return fail(c, 422, "conflict", "value", "test failed: the value differs at ",
                  json_string_value(jpath));
    return 0;
  }
  if (rem)
    return remove_at(c, *doc, &path, "path");
  if (rep) {
    if (target == NULL)
      return fail(c, 422, "processing", "path",
                  "nothing there to replace: ", json_string_value(jpath));
    if (path.n > 0 && remove_at(c, *doc, &path, "path") != 0)
      return CL_EMALFORMED;
  }
  if (add || rep)
    return add_at(c, doc, &path, json_deep_copy(value), "path");
  /* move, copy */
  json_t *src = walk(*doc, &from, from.n);
  if (src == NULL)
    return fail(c, 422, "processing", "from",
                "nothing there: ", json_string_value(json_object_get(o, "from")));
  const char *fs = json_string_value(json_object_get(o, "from"));
  const char *ps = json_string_value(jpath);
  size_t fl = strlen(fs);
  if (mov && !strncmp(ps, fs, fl) && ps[fl] == '/')
    return fail(c, 422, "processing", "from", "a value cannot move into itself: ", fs);
  json_t *v = json_deep_copy(src);
  if (v == NULL)
    return cl_err_set(c->err, CL_ENOMEM, "out of memory patching");
  if (mov && from.n > 0 && remove_at(c, *doc, &from, "from") != 0) {
    json_decref(v);
    return CL_EMALFORMED;
  }
  return add_at(c, doc, &path, v, "path");
}

int cl_fhirw_patch(json_t **doc, const char *text, size_t n, cl_fhirw_error *fe, cl_err *err) {
  json_t *patch;
  int rc = cl_fhirw_parse_json(text, n, &patch, fe, err);
  if (rc)
    return rc;
  op_ctx c = {.i = 0, .fe = fe, .err = err};
  json_t *work = NULL;
  if (!json_is_array(patch)) {
    rc =
        cl_fhirw_fail(fe, err, 400, "structure", "patch", "a JSON Patch is an array of operations");
    goto done;
  }
  if (json_array_size(patch) > CL_FHIRW_PATCH_MAX_OPS) {
    rc = cl_fhirw_fail(fe, err, 400, "too-costly", "patch", "more than %d operations",
                       CL_FHIRW_PATCH_MAX_OPS);
    goto done;
  }
  if ((work = json_deep_copy(*doc)) == NULL) {
    rc = cl_err_set(err, CL_ENOMEM, "out of memory patching");
    goto done;
  }
  for (c.i = 0; c.i < json_array_size(patch); c.i++)
    if ((rc = apply_op(&c, &work, json_array_get(patch, c.i))) != 0)
      goto done;
  json_decref(*doc);
  *doc = work;
  work = NULL;
done:
  json_decref(work);
  json_decref(patch);
  return rc;
}

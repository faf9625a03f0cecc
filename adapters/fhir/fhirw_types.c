/* FHIR R4 datatypes to the catalog's value types (types.proto): the
 * inverse of query/fhir/fj.c's builders, strict about shape (a member the
 * value type cannot hold is refused, so nothing is dropped silently).
 *
 * Numbers arrive as the text they were written in (cl_fhirw_parse marks
 * them with FJ_DECIMAL_MARK), so a decimal keeps its precision. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/fhir/fhirw_int.h"
#include "query/fhir/engine.h"

#define UCUM "http://unitsofmeasure.org"

static int is_number(const json_t *v) {
  const char *s = json_string_value(v);
  return s != NULL && s[0] == FJ_DECIMAL_MARK;
}

static const char *kind_of(const json_t *v) {
  if (is_number(v))
    return "a number";
  switch (json_typeof(v)) {
  case JSON_OBJECT:
    return "an object";
  case JSON_ARRAY:
    return "an array";
  case JSON_STRING:
    return "a string";
  case JSON_TRUE:
  case JSON_FALSE:
    return "a boolean";
  default:
    return "null";
  }
}

/* The first control character FHIR strings may not hold, or 0. */
static unsigned control_char(const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r')
      return *p;
  return 0;
}

/* ---- members ---- */

int w_only(wctx *c, const json_t *o, const char *path, const char *const *keys, int root) {
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)o, k, v) {
    (void)v;
    int ok = root && (!strcmp(k, "resourceType") || !strcmp(k, "id") || !strcmp(k, "meta") ||
                      !strcmp(k, "text"));
    for (size_t i = 0; !ok && keys[i] != NULL; i++)
      ok = !strcmp(k, keys[i]);
    if (!ok)
      return w_fail(c, 400, "not-supported", w_path(c, path, k, 0),
                    "%s: this element cannot be written (not held by the catalog event); see "
                    "docs/adapters.md, FHIR writes",
                    k[0] == '_' ? "a primitive's extension" : "unknown or unsupported element");
  }
  return 0;
}

int w_str(wctx *c, const json_t *o, const char *path, const char *key, const char **out) {
  *out = NULL;
  const json_t *v = json_object_get(o, key);
  if (v == NULL)
    return 0;
  if (!json_is_string(v) || is_number(v))
    return w_fail(c, 400, "structure", w_path(c, path, key, 0), "expected a string, got %s",
                  kind_of(v));
  const char *s = json_string_value(v);
  if (s[0] == '\0')
    return w_fail(c, 400, "value", w_path(c, path, key, 0),
                  "an empty string (FHIR: leave the element out)");
  if (control_char(s))
    return w_fail(c, 400, "value", w_path(c, path, key, 0),
                  "a control character (U+%04X) in a string", control_char(s));
  *out = s;
  return 0;
}

int w_arr(wctx *c, const json_t *o, const char *path, const char *key, const json_t **out,
          size_t *n) {
  *out = NULL;
  *n = 0;
  const json_t *v = json_object_get(o, key);
  if (v == NULL)
    return 0;
  if (!json_is_array(v))
    return w_fail(c, 400, "structure", w_path(c, path, key, 0), "expected an array, got %s",
                  kind_of(v));
  if (json_array_size(v) == 0)
    return w_fail(c, 400, "value", w_path(c, path, key, 0),
                  "an empty array (FHIR: leave the element out)");
  *out = v;
  *n = json_array_size(v);
  return 0;
}

int w_list(wctx *c, const json_t *o, const char *path, const char *key, w_conv_fn conv, void ***out,
           size_t *n) {
  const json_t *a;
  int rc = w_arr(c, o, path, key, &a, n);
  *out = NULL;
  if (rc || *n == 0)
    return rc;
  *out = w_alloc(c, *n * sizeof **out);
  if (*out == NULL)
    return CL_ENOMEM;
  const char *apath = w_path(c, path, key, 0);
  for (size_t i = 0; i < *n; i++)
    if ((rc = conv(c, json_array_get(a, i), w_path(c, apath, NULL, (long)i), &(*out)[i])))
      return rc;
  return 0;
}

int w_obj(wctx *c, const json_t *o, const char *path, const char *key, const json_t **out) {
  *out = NULL;
  const json_t *v = json_object_get(o, key);
  if (v == NULL)
    return 0;
  if (!json_is_object(v))
    return w_fail(c, 400, "structure", w_path(c, path, key, 0), "expected an object, got %s",
                  kind_of(v));
  *out = v;
  return 0;
}

int w_bool(wctx *c, const json_t *o, const char *path, const char *key, int *out) {
  *out = -1;
  const json_t *v = json_object_get(o, key);
  if (v == NULL)
    return 0;
  if (!json_is_boolean(v))
    return w_fail(c, 400, "structure", w_path(c, path, key, 0), "expected true or false, got %s",
                  kind_of(v));
  *out = json_is_true(v);
  return 0;
}

int w_enum(wctx *c, const json_t *o, const char *path, const char *key, const char *const *codes,
           int *idx) {
  *idx = -1;
  const char *s;
  int rc = w_str(c, o, path, key, &s);
  if (rc || s == NULL)
    return rc;
  for (int i = 0; codes[i] != NULL; i++)
    if (!strcmp(codes[i], s)) {
      *idx = i;
      return 0;
    }
  char allowed[256] = "";
  size_t k = 0;
  for (int i = 0; codes[i] != NULL && k < sizeof allowed - 1; i++)
    k += (size_t)snprintf(allowed + k, sizeof allowed - k, "%s%s", i ? ", " : "", codes[i]);
  return w_fail(c, 422, "code-invalid", w_path(c, path, key, 0), "'%.64s' is not one of: %s", s,
                allowed);
}

/* ---- primitives ---- */

int w_instant(wctx *c, const json_t *o, const char *path, const char *key, pb_ts **out) {
  *out = NULL;
  const char *s;
  int rc = w_str(c, o, path, key, &s);
  if (rc || s == NULL)
    return rc;
  int64_t lo, hi;
  const char *t = strchr(s, 'T');
  /* the events hold instants: a date-time to the second with its zone */
  if (cl_fhir_date_range(s, &lo, &hi) != 0 || t == NULL || strlen(t) < 9 ||
      !(s[strlen(s) - 1] == 'Z' || strchr(t, '+') || strchr(t, '-')))
    return w_fail(c, 400, "value", w_path(c, path, key, 0),
                  "'%.40s' is not a dateTime to the second with a time zone "
                  "(YYYY-MM-DDThh:mm:ss[.fff](Z|+hh:mm)): the event holds an instant",
                  s);
  pb_ts *ts = w_alloc(c, sizeof *ts);
  if (ts == NULL)
    return CL_ENOMEM;
  google__protobuf__timestamp__init(ts);
  int64_t sec = lo >= 0 ? lo / 1000 : -((-lo + 999) / 1000);
  ts->seconds = sec;
  ts->nanos = (int32_t)((lo - sec * 1000) * 1000000);
  *out = ts;
  return 0;
}

int w_date(wctx *c, const json_t *o, const char *path, const char *key, const char **out) {
  int rc = w_str(c, o, path, key, out);
  if (rc || *out == NULL)
    return rc;
  json_t *check = fj_date(*out);
  int ok = check != NULL;
  json_decref(check);
  int64_t lo, hi;
  if (!ok || cl_fhir_date_range(*out, &lo, &hi) != 0)
    return w_fail(c, 400, "value", w_path(c, path, key, 0),
                  "'%.40s' is not a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)", *out);
  return 0;
}

/* ---- codes ---- */

int w_coding(wctx *c, const json_t *v, const char *path, pb_code **out) {
  *out = NULL;
  if (!json_is_object(v))
    return w_fail(c, 400, "structure", path, "expected a Coding (an object), got %s", kind_of(v));
  static const char *const keys[] = {"system", "version", "code", "display", NULL};
  pb_code *k = w_alloc(c, sizeof *k);
  if (k == NULL)
    return CL_ENOMEM;
  clinlog__v1__code__init(k);
  const char *sys, *ver, *code, *disp;
  int rc;
  if ((rc = w_only(c, v, path, keys, 0)) || (rc = w_str(c, v, path, "system", &sys)) ||
      (rc = w_str(c, v, path, "version", &ver)) || (rc = w_str(c, v, path, "code", &code)) ||
      (rc = w_str(c, v, path, "display", &disp)))
    return rc;
  if (code == NULL)
    return w_fail(c, 400, "required", w_path(c, path, "code", 0),
                  "a Coding without a code cannot be written");
  k->system = (char *)(sys ? sys : "");
  k->version = (char *)(ver ? ver : "");
  k->code = (char *)code;
  k->display = (char *)(disp ? disp : "");
  *out = k;
  return 0;
}

/* A CodeableConcept at `path` (v): its codings and text. */
static int concept_of(wctx *c, const json_t *v, const char *path, pb_cc **out) {
  *out = NULL;
  if (!json_is_object(v))
    return w_fail(c, 400, "structure", path, "expected a CodeableConcept (an object), got %s",
                  kind_of(v));
  static const char *const keys[] = {"coding", "text", NULL};
  const json_t *codings;
  size_t n;
  const char *text;
  int rc;
  if ((rc = w_only(c, v, path, keys, 0)) || (rc = w_arr(c, v, path, "coding", &codings, &n)) ||
      (rc = w_str(c, v, path, "text", &text)))
    return rc;
  if (n == 0 && text == NULL)
    return w_fail(c, 400, "required", path, "a CodeableConcept with neither coding nor text");
  pb_cc *cc = w_alloc(c, sizeof *cc);
  pb_code **list = w_alloc(c, (n ? n : 1) * sizeof *list);
  if (cc == NULL || list == NULL)
    return CL_ENOMEM;
  clinlog__v1__codeable_concept__init(cc);
  const char *cpath = w_path(c, path, "coding", 0);
  for (size_t i = 0; i < n; i++)
    if ((rc = w_coding(c, json_array_get(codings, i), w_path(c, cpath, NULL, (long)i), &list[i])))
      return rc;
  cc->coding = list;
  cc->n_coding = n;
  cc->text = (char *)(text ? text : "");
  *out = cc;
  return 0;
}

int w_concept(wctx *c, const json_t *o, const char *path, const char *key, pb_cc **out) {
  *out = NULL;
  const json_t *v = json_object_get(o, key);
  return v == NULL ? 0 : concept_of(c, v, w_path(c, path, key, 0), out);
}

int w_concepts(wctx *c, const json_t *o, const char *path, const char *key, pb_cc ***out,
               size_t *n) {
  return w_list(c, o, path, key, (w_conv_fn)concept_of, (void ***)out, n);
}

/* One Code from a CodeableConcept at `path` (the view's fj_concept_code):
 * one coding, or text alone (the display of a Code without a code). */
static int code_of_concept(wctx *c, const json_t *v, const char *path, pb_code **out) {
  pb_cc *cc;
  int rc = concept_of(c, v, path, &cc);
  if (rc)
    return rc;
  if (cc->n_coding > 1 || (cc->n_coding == 1 && cc->text[0]))
    return w_fail(c, 422, "not-supported", path,
                  "this CodeableConcept is held as one code: one coding, or text alone");
  if (cc->n_coding == 1) {
    *out = cc->coding[0];
    return 0;
  }
  pb_code *k = w_alloc(c, sizeof *k);
  if (k == NULL)
    return CL_ENOMEM;
  clinlog__v1__code__init(k);
  k->display = cc->text;
  *out = k;
  return 0;
}

int w_concept_code(wctx *c, const json_t *o, const char *path, const char *key, pb_code **out) {
  *out = NULL;
  const json_t *v = json_object_get(o, key);
  return v == NULL ? 0 : code_of_concept(c, v, w_path(c, path, key, 0), out);
}

int w_concepts_code(wctx *c, const json_t *o, const char *path, const char *key, pb_code ***out,
                    size_t *n) {
  return w_list(c, o, path, key, (w_conv_fn)code_of_concept, (void ***)out, n);
}

int w_concept_in(wctx *c, const json_t *o, const char *path, const char *key, const char *system,
                 const char *const *codes, int *idx) {
  *idx = -1;
  pb_code *k;
  int rc = w_concept_code(c, o, path, key, &k);
  if (rc || k == NULL)
    return rc;
  const char *p = w_path(c, path, key, 0);
  if (!k->code[0] || strcmp(k->system, system) != 0)
    return w_fail(c, 422, "code-invalid", w_path(c, p, "coding[0].system", 0),
                  "expected a code of %s", system);
  for (int i = 0; codes[i] != NULL; i++)
    if (!strcmp(codes[i], k->code)) {
      *idx = i;
      return 0;
    }
  return w_fail(c, 422, "code-invalid", w_path(c, p, "coding[0].code", 0),
                "'%.64s' is not a code of %s", k->code, system);
}

/* ---- structures ---- */

int w_quantity(wctx *c, const json_t *v, const char *path, Clinlog__V1__Quantity **out) {
  *out = NULL;
  if (!json_is_object(v))
    return w_fail(c, 400, "structure", path, "expected a Quantity (an object), got %s", kind_of(v));
  static const char *const keys[] = {"value", "comparator", "unit", "system", "code", NULL};
  static const char *const comparators[] = {"<", "<=", ">=", ">", NULL};
  int rc, cmp;
  const char *unit, *sys, *code;
  if ((rc = w_only(c, v, path, keys, 0)) ||
      (rc = w_enum(c, v, path, "comparator", comparators, &cmp)) ||
      (rc = w_str(c, v, path, "unit", &unit)) || (rc = w_str(c, v, path, "system", &sys)) ||
      (rc = w_str(c, v, path, "code", &code)))
    return rc;
  const json_t *val = json_object_get(v, "value");
  const char *text = NULL;
  if (val != NULL) {
    if (!is_number(val))
      return w_fail(c, 400, "structure", w_path(c, path, "value", 0),
                    "expected a decimal (a JSON number), got %s", kind_of(val));
    text = json_string_value(val) + 1;
    json_t *dec = fj_decimal(text);
    int ok = dec != NULL;
    json_decref(dec);
    if (!ok || strspn(text, "-+0123456789.eE") != strlen(text))
      return w_fail(c, 400, "value", w_path(c, path, "value", 0), "'%.40s' is not a FHIR decimal",
                    text);
  }
  if (cmp >= 0 && text == NULL)
    return w_fail(c, 400, "required", w_path(c, path, "value", 0), "a comparator needs a value");
  if (sys != NULL && code == NULL)
    return w_fail(c, 400, "required", w_path(c, path, "code", 0),
                  "a unit system without a unit code (qty-3)");
  if (code != NULL && sys == NULL)
    return w_fail(c, 400, "required", w_path(c, path, "system", 0),
                  "a unit code needs its system (qty-3)");
  Clinlog__V1__Quantity *q = w_alloc(c, sizeof *q);
  if (q == NULL)
    return CL_ENOMEM;
  clinlog__v1__quantity__init(q);
  q->value = (char *)(text ? text : "");
  q->comparator = (char *)(cmp >= 0 ? comparators[cmp] : "");
  if (code != NULL) {
    q->unit = (char *)code;
    q->unit_system = (char *)(strcmp(sys, UCUM) ? sys : "");
    q->unit_display = (char *)(unit && strcmp(unit, code) ? unit : "");
  } else if (unit != NULL) {
    return w_fail(c, 422, "not-supported", w_path(c, path, "unit", 0),
                  "a unit without its code and system cannot be written (give UCUM: system "
                  "http://unitsofmeasure.org and code)");
  }
  *out = q;
  return 0;
}

int w_identifier(wctx *c, const json_t *v, const char *path, Clinlog__V1__Identifier **out) {
  *out = NULL;
  if (!json_is_object(v))
    return w_fail(c, 400, "structure", path, "expected an Identifier (an object), got %s",
                  kind_of(v));
  static const char *const keys[] = {"type", "system", "value", "assigner", NULL};
  static const char *const akeys[] = {"display", NULL};
  const char *sys, *val, *assigner = NULL;
  const json_t *a;
  pb_code *type = NULL;
  int rc;
  if ((rc = w_only(c, v, path, keys, 0)) || (rc = w_str(c, v, path, "system", &sys)) ||
      (rc = w_str(c, v, path, "value", &val)) || (rc = w_obj(c, v, path, "assigner", &a)) ||
      (rc = w_concept_code(c, v, path, "type", &type)))
    return rc;
  if (a != NULL) {
    const char *apath = w_path(c, path, "assigner", 0);
    if ((rc = w_only(c, a, apath, akeys, 0)) || (rc = w_str(c, a, apath, "display", &assigner)))
      return rc;
  }
  if (type != NULL && (!type->code[0] || strcmp(type->system, FJ_V2_0203) != 0))
    return w_fail(c, 422, "code-invalid", w_path(c, path, "type", 0),
                  "an identifier type is a code of " FJ_V2_0203);
  Clinlog__V1__Identifier *id = w_alloc(c, sizeof *id);
  if (id == NULL)
    return CL_ENOMEM;
  clinlog__v1__identifier__init(id);
  id->system = (char *)(sys ? sys : "");
  id->value = (char *)(val ? val : "");
  id->type = type ? type->code : "";
  id->assigner = (char *)(assigner ? assigner : "");
  *out = id;
  return 0;
}

/* One string of an array (a conv of w_list). */
static int string_item(wctx *c, const json_t *v, const char *path, void **out) {
  const char *s = json_string_value(v);
  if (s == NULL || is_number(v))
    return w_fail(c, 400, "structure", path, "expected a string, got %s", kind_of(v));
  if (s[0] == '\0' || control_char(s))
    return w_fail(c, 400, "value", path, "an empty string or a control character");
  *out = (void *)s;
  return 0;
}

/* The strings of o[key] (an array of strings). */
static int strings(wctx *c, const json_t *o, const char *path, const char *key, char ***out,
                   size_t *n) {
  return w_list(c, o, path, key, string_item, (void ***)out, n);
}

int w_name(wctx *c, const json_t *v, const char *path, Clinlog__V1__HumanName **out) {
  if (!json_is_object(v))
    return w_fail(c, 400, "structure", path, "expected a HumanName (an object), got %s",
                  kind_of(v));
  static const char *const keys[] = {"use", "text", "family", "given", "prefix", "suffix", NULL};
  static const char *const uses[] = {"usual",     "official", "temp",   "nickname",
                                     "anonymous", "old",      "maiden", NULL};
  Clinlog__V1__HumanName *n = w_alloc(c, sizeof *n);
  if (n == NULL)
    return CL_ENOMEM;
  clinlog__v1__human_name__init(n);
  const char *text, *family;
  char **prefix, **suffix;
  size_t np, ns;
  int rc, use;
  if ((rc = w_only(c, v, path, keys, 0)) || (rc = w_enum(c, v, path, "use", uses, &use)) ||
      (rc = w_str(c, v, path, "text", &text)) || (rc = w_str(c, v, path, "family", &family)) ||
      (rc = strings(c, v, path, "given", &n->given, &n->n_given)) ||
      (rc = strings(c, v, path, "prefix", &prefix, &np)) ||
      (rc = strings(c, v, path, "suffix", &suffix, &ns)))
    return rc;
  if (np > 1 || ns > 1)
    return w_fail(c, 422, "not-supported", w_path(c, path, np > 1 ? "prefix" : "suffix", 0),
                  "one prefix and one suffix can be written");
  n->use = (char *)(use >= 0 ? uses[use] : "");
  n->text = (char *)(text ? text : "");
  n->family = (char *)(family ? family : "");
  n->prefix = np ? prefix[0] : "";
  n->suffix = ns ? suffix[0] : "";
  *out = n;
  return 0;
}

int w_address(wctx *c, const json_t *v, const char *path, Clinlog__V1__Address **out) {
  if (!json_is_object(v))
    return w_fail(c, 400, "structure", path, "expected an Address (an object), got %s", kind_of(v));
  static const char *const keys[] = {"use",   "text",       "line",    "city", "district",
                                     "state", "postalCode", "country", NULL};
  static const char *const uses[] = {"home", "work", "temp", "old", "billing", NULL};
  Clinlog__V1__Address *a = w_alloc(c, sizeof *a);
  if (a == NULL)
    return CL_ENOMEM;
  clinlog__v1__address__init(a);
  const char *text, *city, *district, *state, *postal, *country;
  int rc, use;
  if ((rc = w_only(c, v, path, keys, 0)) || (rc = w_enum(c, v, path, "use", uses, &use)) ||
      (rc = w_str(c, v, path, "text", &text)) ||
      (rc = strings(c, v, path, "line", &a->line, &a->n_line)) ||
      (rc = w_str(c, v, path, "city", &city)) || (rc = w_str(c, v, path, "district", &district)) ||
      (rc = w_str(c, v, path, "state", &state)) ||
      (rc = w_str(c, v, path, "postalCode", &postal)) ||
      (rc = w_str(c, v, path, "country", &country)))
    return rc;
  a->use = (char *)(use >= 0 ? uses[use] : "");
  a->text = (char *)(text ? text : "");
  a->city = (char *)(city ? city : "");
  a->district = (char *)(district ? district : "");
  a->state = (char *)(state ? state : "");
  a->postal_code = (char *)(postal ? postal : "");
  a->country = (char *)(country ? country : "");
  *out = a;
  return 0;
}

int w_contact_point(wctx *c, const json_t *v, const char *path, Clinlog__V1__ContactPoint **out) {
  if (!json_is_object(v))
    return w_fail(c, 400, "structure", path, "expected a ContactPoint (an object), got %s",
                  kind_of(v));
  static const char *const keys[] = {"system", "value", "use", NULL};
  static const char *const systems[] = {"phone", "fax", "email", "pager",
                                        "url",   "sms", "other", NULL};
  static const char *const uses[] = {"home", "work", "temp", "old", "mobile", NULL};
  const char *value;
  int rc, sys, use;
  if ((rc = w_only(c, v, path, keys, 0)) || (rc = w_enum(c, v, path, "system", systems, &sys)) ||
      (rc = w_enum(c, v, path, "use", uses, &use)) || (rc = w_str(c, v, path, "value", &value)))
    return rc;
  if (value != NULL && sys < 0)
    return w_fail(c, 400, "required", w_path(c, path, "system", 0),
                  "a contact point with a value needs its system (cpt-2)");
  Clinlog__V1__ContactPoint *p = w_alloc(c, sizeof *p);
  if (p == NULL)
    return CL_ENOMEM;
  clinlog__v1__contact_point__init(p);
  p->system = (char *)(sys >= 0 ? systems[sys] : "");
  p->value = (char *)(value ? value : "");
  p->use = (char *)(use >= 0 ? uses[use] : "");
  *out = p;
  return 0;
}

int w_reference(wctx *c, const json_t *v, const char *path, Clinlog__V1__Reference **out) {
  *out = NULL;
  if (!json_is_object(v))
    return w_fail(c, 400, "structure", path, "expected a Reference (an object), got %s",
                  kind_of(v));
  static const char *const keys[] = {"reference", "identifier", "display", NULL};
  const char *ref, *display;
  const json_t *ident;
  Clinlog__V1__Identifier *id = NULL;
  int rc;
  if ((rc = w_only(c, v, path, keys, 0)) || (rc = w_str(c, v, path, "reference", &ref)) ||
      (rc = w_str(c, v, path, "display", &display)) ||
      (rc = w_obj(c, v, path, "identifier", &ident)))
    return rc;
  if (ident != NULL && (rc = w_identifier(c, ident, w_path(c, path, "identifier", 0), &id)))
    return rc;
  if (ref != NULL && strchr(ref, '/') == NULL)
    return w_fail(c, 400, "value", w_path(c, path, "reference", 0),
                  "'%.64s' is not a literal reference (<type>/<id>)", ref);
  if (ref == NULL && id == NULL && display == NULL)
    return w_fail(c, 400, "required", path, "a Reference with nothing in it");
  Clinlog__V1__Reference *r = w_alloc(c, sizeof *r);
  if (r == NULL)
    return CL_ENOMEM;
  clinlog__v1__reference__init(r);
  r->resource = (char *)(ref ? ref : "");
  r->display = (char *)(display ? display : "");
  /* the views write a principal as an identifier in their own system */
  if (ref == NULL && id != NULL && !strcmp(id->system, FJ_PRINCIPAL_SYSTEM) && !id->type[0] &&
      !id->assigner[0])
    r->principal_id = id->value;
  else
    r->identifier = id;
  *out = r;
  return 0;
}

int w_note(wctx *c, const json_t *o, const char *path, const char **out) {
  *out = NULL;
  const json_t *a;
  size_t n;
  int rc = w_arr(c, o, path, "note", &a, &n);
  if (rc || n == 0)
    return rc;
  const char *npath = w_path(c, path, "note", 0);
  if (n > 1)
    return w_fail(c, 422, "not-supported", w_path(c, npath, NULL, 1),
                  "one note (Annotation) can be written");
  const json_t *one = json_array_get(a, 0);
  const char *p0 = w_path(c, npath, NULL, 0);
  static const char *const keys[] = {"text", NULL};
  if (!json_is_object(one))
    return w_fail(c, 400, "structure", p0, "expected an Annotation (an object)");
  if ((rc = w_only(c, one, p0, keys, 0)) || (rc = w_str(c, one, p0, "text", out)))
    return rc;
  if (*out == NULL)
    return w_fail(c, 400, "required", w_path(c, p0, "text", 0), "an Annotation needs its text");
  return 0;
}

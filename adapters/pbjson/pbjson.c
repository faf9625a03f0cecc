/* proto3 JSON -> protobuf-c messages, driven by runtime descriptors; see
 * pbjson.h for the mapping (pbjson_write.c is the other direction).
 *
 * Invariants kept while parsing:
 *  - every message under construction is reachable from the root from the
 *    moment it is allocated (attached to its parent before it is filled), and
 *    a oneof's case member is set before its union member is written;
 *  - a repeated field's array is zero-filled and its count set before its
 *    elements are parsed, so unfilled slots are NULL / empty;
 *  - a string or bytes member is written only once its buffer is complete;
 *  so protobuf_c_message_free_unpacked(root, NULL) releases a partially built
 *  message on every error path, which is the only cleanup needed.
 * All memory handed to protobuf-c comes from pbj_xmalloc (malloc or the test
 * hook), because free_unpacked with a NULL allocator uses free().
 *
 * The error path (pbj_ctx.path) is kept in a fixed buffer so that an error can be
 * reported after memory has run out. */
#include "adapters/pbjson/pbjson_int.h"

#include <errno.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h> /* classification macros only: no -lm needed */
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ====================== JSON -> message ====================== */

static int parse_message(pbj_ctx *c, const ProtobufCMessageDescriptor *d, const json_t *j,
                         ProtobufCMessage **slot);

/* Decimal integer string: -?[0-9]+ (no sign for unsigned, no spaces). */
static bool dec_string(const char *s, size_t n, bool allow_minus) {
  size_t i = 0;
  if (n == 0 || strlen(s) != n)
    return false;
  if (s[0] == '-') {
    if (!allow_minus)
      return false;
    i = 1;
  }
  if (i == n)
    return false;
  for (; i < n; i++)
    if (s[i] < '0' || s[i] > '9')
      return false;
  return true;
}

/* Integer from a JSON integer, an integral real or a decimal string. */
static int parse_signed(pbj_ctx *c, const json_t *j, int64_t lo, int64_t hi, int64_t *out) {
  int64_t v;
  if (json_is_integer(j)) {
    v = (int64_t)json_integer_value(j);
  } else if (json_is_real(j)) {
    /* range first: converting an out-of-range double is undefined */
    double d = json_real_value(j);
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
      return pbj_fail(c, CL_EMALFORMED, "integer out of range");
    v = (int64_t)d;
    if ((double)v != d)
      return pbj_fail(c, CL_EMALFORMED, "expected integer, got fraction");
  } else if (json_is_string(j)) {
    const char *s = json_string_value(j);
    if (!dec_string(s, json_string_length(j), true))
      return pbj_fail(c, CL_EMALFORMED, "invalid integer string");
    errno = 0;
    long long x = strtoll(s, NULL, 10);
    if (errno == ERANGE)
      return pbj_fail(c, CL_EMALFORMED, "integer out of range");
    v = (int64_t)x;
  } else {
    return pbj_fail(c, CL_EMALFORMED, "expected integer (number or string)");
  }
  if (v < lo || v > hi)
    return pbj_fail(c, CL_EMALFORMED, "integer out of range");
  *out = v;
  return 0;
}

static int parse_unsigned(pbj_ctx *c, const json_t *j, uint64_t hi, uint64_t *out) {
  uint64_t v;
  if (json_is_integer(j)) {
    json_int_t x = json_integer_value(j);
    if (x < 0)
      return pbj_fail(c, CL_EMALFORMED, "integer out of range");
    v = (uint64_t)x;
  } else if (json_is_real(j)) {
    double d = json_real_value(j);
    if (!(d >= 0.0 && d < 18446744073709551616.0))
      return pbj_fail(c, CL_EMALFORMED, "integer out of range");
    v = (uint64_t)d;
    if ((double)v != d)
      return pbj_fail(c, CL_EMALFORMED, "expected integer, got fraction");
  } else if (json_is_string(j)) {
    const char *s = json_string_value(j);
    if (!dec_string(s, json_string_length(j), false))
      return pbj_fail(c, CL_EMALFORMED, "invalid integer string");
    errno = 0;
    unsigned long long x = strtoull(s, NULL, 10);
    if (errno == ERANGE)
      return pbj_fail(c, CL_EMALFORMED, "integer out of range");
    v = (uint64_t)x;
  } else {
    return pbj_fail(c, CL_EMALFORMED, "expected integer (number or string)");
  }
  if (v > hi)
    return pbj_fail(c, CL_EMALFORMED, "integer out of range");
  *out = v;
  return 0;
}

/* JSON number syntax: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool number_syntax(const char *s, size_t n) {
  size_t i = 0;
  if (i < n && s[i] == '-')
    i++;
  if (i < n && s[i] == '0') {
    i++;
  } else {
    if (i >= n || s[i] < '1' || s[i] > '9')
      return false;
    while (i < n && s[i] >= '0' && s[i] <= '9')
      i++;
  }
  if (i < n && s[i] == '.') {
    size_t start = ++i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
      i++;
    if (i == start)
      return false;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-'))
      i++;
    size_t start = i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
      i++;
    if (i == start)
      return false;
  }
  return i == n;
}

/* A number, "NaN", "Infinity", "-Infinity" or a string holding a JSON
 * number. strtod honours LC_NUMERIC, so the '.' is swapped for the locale's
 * decimal point first (as jansson does for numbers in JSON text). */
static int parse_double(pbj_ctx *c, const json_t *j, double *out) {
  if (json_is_number(j)) {
    *out = json_number_value(j);
    return 0;
  }
  if (!json_is_string(j))
    return pbj_fail(c, CL_EMALFORMED, "expected number");
  const char *s = json_string_value(j);
  size_t n = json_string_length(j);
  if (n == 3 && memcmp(s, "NaN", 3) == 0) {
    *out = NAN;
    return 0;
  }
  if (n == 8 && memcmp(s, "Infinity", 8) == 0) {
    *out = INFINITY;
    return 0;
  }
  if (n == 9 && memcmp(s, "-Infinity", 9) == 0) {
    *out = -INFINITY;
    return 0;
  }
  if (!number_syntax(s, n))
    return pbj_fail(c, CL_EMALFORMED, "invalid number string");
  char small[64], *buf = small;
  if (n >= sizeof small && !(buf = pbj_xmalloc(n + 1)))
    return pbj_nomem(c);
  memcpy(buf, s, n);
  buf[n] = '\0';
  char *dot = memchr(buf, '.', n);
  const char *point = localeconv()->decimal_point;
  if (dot && point && point[0] && !point[1])
    *dot = point[0];
  char *end;
  errno = 0;
  double d = strtod(buf, &end);
  bool overflow = errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL);
  bool complete = end == buf + n;
  if (buf != small)
    free(buf);
  if (!complete)
    return pbj_fail(c, CL_EMALFORMED, "invalid number string");
  if (overflow)
    return pbj_fail(c, CL_EMALFORMED, "number out of range");
  *out = d;
  return 0;
}

static int parse_enum(pbj_ctx *c, const ProtobufCFieldDescriptor *f, const json_t *j,
                      int32_t *out) {
  const ProtobufCEnumDescriptor *ed = f->descriptor;
  if (json_is_string(j)) {
    const char *s = json_string_value(j);
    const ProtobufCEnumValue *ev = NULL;
    if (strlen(s) == json_string_length(j))
      ev = protobuf_c_enum_descriptor_get_value_by_name(ed, s);
    if (!ev)
      return pbj_fail(c, CL_EMALFORMED, "unknown value name for enum %s", ed->name);
    *out = ev->value;
    return 0;
  }
  if (json_is_integer(j)) {
    json_int_t v = json_integer_value(j);
    if (v < INT32_MIN || v > INT32_MAX)
      return pbj_fail(c, CL_EMALFORMED, "enum number out of range");
    *out = (int32_t)v;
    return 0;
  }
  return pbj_fail(c, CL_EMALFORMED, "expected enum value name or number");
}

static int parse_string(pbj_ctx *c, const json_t *j, char **out) {
  if (!json_is_string(j))
    return pbj_fail(c, CL_EMALFORMED, "expected string");
  const char *s = json_string_value(j);
  size_t n = json_string_length(j);
  if (memchr(s, 0, n))
    return pbj_fail(c, CL_EMALFORMED, "string contains U+0000");
  if (!pbj_utf8_valid(s, n))
    return pbj_fail(c, CL_EMALFORMED, "invalid UTF-8 in string");
  char *p = pbj_xmalloc(n + 1);
  if (!p)
    return pbj_nomem(c);
  memcpy(p, s, n);
  p[n] = '\0';
  *out = p;
  return 0;
}

/* Standard or URL-safe alphabet, padded or not (not mixed). */
static int parse_bytes(pbj_ctx *c, const json_t *j, ProtobufCBinaryData *out) {
  if (!json_is_string(j))
    return pbj_fail(c, CL_EMALFORMED, "expected base64 string");
  const char *s = json_string_value(j);
  size_t n = json_string_length(j);
  if (n == 0) {
    out->len = 0;
    out->data = NULL;
    return 0;
  }
  bool urlsafe = memchr(s, '-', n) || memchr(s, '_', n);
  bool padded = s[n - 1] == '=';
  int variant =
      urlsafe
          ? (padded ? sodium_base64_VARIANT_URLSAFE : sodium_base64_VARIANT_URLSAFE_NO_PADDING)
          : (padded ? sodium_base64_VARIANT_ORIGINAL : sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
  size_t cap = n / 4 * 3 + 3;
  unsigned char *buf = pbj_xmalloc(cap);
  if (!buf)
    return pbj_nomem(c);
  size_t bl = 0;
  const char *end = NULL;
  if (sodium_base642bin(buf, cap, s, n, NULL, &bl, &end, variant) != 0 || end != s + n) {
    free(buf);
    return pbj_fail(c, CL_EMALFORMED, "invalid base64");
  }
  if (bl == 0) {
    free(buf);
    buf = NULL;
  }
  out->data = buf;
  out->len = bl;
  return 0;
}

/* Parses one value of f's type into dst (a struct member or array slot). */
static int parse_value(pbj_ctx *c, const ProtobufCFieldDescriptor *f, const json_t *j, void *dst) {
  int rc;
  int64_t sv;
  uint64_t uv;
  double dv;
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
    if ((rc = parse_signed(c, j, INT32_MIN, INT32_MAX, &sv)))
      return rc;
    *(int32_t *)dst = (int32_t)sv;
    return 0;
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    if ((rc = parse_unsigned(c, j, UINT32_MAX, &uv)))
      return rc;
    *(uint32_t *)dst = (uint32_t)uv;
    return 0;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
    if ((rc = parse_signed(c, j, INT64_MIN, INT64_MAX, &sv)))
      return rc;
    *(int64_t *)dst = sv;
    return 0;
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    if ((rc = parse_unsigned(c, j, UINT64_MAX, &uv)))
      return rc;
    *(uint64_t *)dst = uv;
    return 0;
  case PROTOBUF_C_TYPE_FLOAT:
    if ((rc = parse_double(c, j, &dv)))
      return rc;
    /* Reject what would round to infinity; anything below 2^128 - 2^103
     * (FLT_MAX plus half an ulp) rounds to a finite float, e.g. the
     * shortest form of FLT_MAX, 3.4028235e38, which exceeds FLT_MAX. */
    if (isfinite(dv) && (dv >= 0x1.ffffffp+127 || dv <= -0x1.ffffffp+127))
      return pbj_fail(c, CL_EMALFORMED, "number out of range for float");
    *(float *)dst = (float)dv;
    return 0;
  case PROTOBUF_C_TYPE_DOUBLE:
    if ((rc = parse_double(c, j, &dv)))
      return rc;
    *(double *)dst = dv;
    return 0;
  case PROTOBUF_C_TYPE_BOOL:
    if (!json_is_boolean(j))
      return pbj_fail(c, CL_EMALFORMED, "expected true or false");
    *(protobuf_c_boolean *)dst = json_is_true(j);
    return 0;
  case PROTOBUF_C_TYPE_ENUM:
    return parse_enum(c, f, j, (int32_t *)dst);
  case PROTOBUF_C_TYPE_STRING:
    return parse_string(c, j, (char **)dst);
  case PROTOBUF_C_TYPE_BYTES:
    return parse_bytes(c, j, (ProtobufCBinaryData *)dst);
  case PROTOBUF_C_TYPE_MESSAGE:
    return parse_message(c, f->descriptor, j, (ProtobufCMessage **)dst);
  }
  return pbj_fail(c, CL_EINVAL, "unsupported field type %d", (int)f->type);
}

static int parse_repeated(pbj_ctx *c, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
                          const json_t *j) {
  if (!json_is_array(j))
    return pbj_fail(c, CL_EMALFORMED, "expected array");
  size_t n = json_array_size(j), es = pbj_value_size(f->type);
  if (n == 0)
    return 0;
  if (es == 0)
    return pbj_fail(c, CL_EINVAL, "unsupported field type %d", (int)f->type);
  if (n > SIZE_MAX / es)
    return pbj_nomem(c);
  void *arr = pbj_xmalloc(n * es);
  if (!arr)
    return pbj_nomem(c);
  memset(arr, 0, n * es);
  *(void **)pbj_member(msg, f->offset) = arr;
  *(size_t *)pbj_member(msg, f->quantifier_offset) = n;
  for (size_t i = 0; i < n; i++) {
    const json_t *e = json_array_get(j, i);
    size_t old = pbj_push_index(c, i);
    int rc = json_is_null(e) ? pbj_fail(c, CL_EMALFORMED, "null is not allowed in an array")
                             : parse_value(c, f, e, (char *)arr + i * es);
    pbj_pop(c, old);
    if (rc)
      return rc;
  }
  return 0;
}

static int parse_field(pbj_ctx *c, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
                       const json_t *j) {
  if (json_is_null(j))
    return 0;
  if (f->label == PROTOBUF_C_LABEL_REPEATED)
    return parse_repeated(c, msg, f, j);
  void *dst = pbj_member(msg, f->offset);
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
    uint32_t *which = pbj_member(msg, f->quantifier_offset);
    if (*which != 0) {
      const ProtobufCFieldDescriptor *other =
          protobuf_c_message_descriptor_get_field(msg->descriptor, *which);
      char name[64];
      pbj_camel_write(other ? other->name : "?", name, sizeof name);
      return pbj_fail(c, CL_EMALFORMED, "only one field of a oneof may be set (\"%s\" is set too)",
                      name);
    }
    /* Set the case first (zeroed union: NULL pointer, empty bytes), so a
     * submessage attached below is freed by free_unpacked on error. */
    memset(dst, 0, pbj_value_size(f->type));
    *which = f->id;
    return parse_value(c, f, j, dst);
  }
  int rc = parse_value(c, f, j, dst);
  if (rc == 0 && f->label == PROTOBUF_C_LABEL_OPTIONAL && !pbj_is_pointer_type(f->type))
    *(protobuf_c_boolean *)pbj_member(msg, f->quantifier_offset) = 1;
  return rc;
}

static int parse_timestamp(pbj_ctx *c, const ProtobufCMessageDescriptor *d, const pbj_ts_fields *tf,
                           const json_t *j, ProtobufCMessage **slot) {
  if (!json_is_string(j))
    return pbj_fail(c, CL_EMALFORMED, "expected RFC 3339 timestamp string");
  int64_t secs;
  int32_t nanos;
  if (!pbj_rfc3339_parse(json_string_value(j), json_string_length(j), &secs, &nanos))
    return pbj_fail(c, CL_EMALFORMED, "invalid RFC 3339 timestamp (or outside 0001-9999)");
  ProtobufCMessage *m = pbj_xmalloc(d->sizeof_message);
  if (!m)
    return pbj_nomem(c);
  protobuf_c_message_init(d, m);
  *(int64_t *)pbj_member(m, tf->seconds->offset) = secs;
  *(int32_t *)pbj_member(m, tf->nanos->offset) = nanos;
  *slot = m;
  return 0;
}

static int parse_message(pbj_ctx *c, const ProtobufCMessageDescriptor *d, const json_t *j,
                         ProtobufCMessage **slot) {
  pbj_ts_fields tf;
  if (pbj_is_timestamp(d, &tf))
    return parse_timestamp(c, d, &tf, j, slot);
  if (!json_is_object(j))
    return pbj_fail(c, CL_EMALFORMED, "expected object for %s", d->name);
  if (c->depth >= CL_PBJSON_MAX_DEPTH)
    return pbj_fail(c, CL_EMALFORMED, "too deeply nested");
  ProtobufCMessage *m = pbj_xmalloc(d->sizeof_message);
  if (!m)
    return pbj_nomem(c);
  protobuf_c_message_init(d, m);
  *slot = m; /* from here on the caller's cleanup frees m */

  c->depth++;
  json_t *obj = (json_t *)j; /* the iterator API is not const-qualified */
  for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
    const char *key = json_object_iter_key(it);
    size_t klen = json_object_iter_key_len(it);
    const json_t *v = json_object_iter_value(it);
    size_t old = pbj_push_key(c, key, klen);
    bool by_proto_name;
    const ProtobufCFieldDescriptor *f = pbj_find_field(d, key, klen, &by_proto_name);
    int rc;
    if (!f)
      rc = pbj_fail(c, CL_EMALFORMED, "unknown field");
    else if (!by_proto_name && json_object_get(j, f->name))
      rc = pbj_fail(c, CL_EMALFORMED, "field also given as \"%s\"", f->name);
    else
      rc = parse_field(c, m, f, v);
    pbj_pop(c, old);
    if (rc)
      return rc;
  }
  c->depth--;
  return 0;
}

int cl_pbjson_from_json(const ProtobufCMessageDescriptor *desc, const json_t *json,
                        ProtobufCMessage **out, cl_err *err) {
  if (!pbj_valid_desc(desc) || !json || !out)
    return cl_err_set(err, CL_EINVAL, "pbjson: invalid argument");
  pbj_ctx c = {.err = err};
  ProtobufCMessage *m = NULL;
  int rc = parse_message(&c, desc, json, &m);
  if (rc) {
    protobuf_c_message_free_unpacked(m, NULL);
    return rc;
  }
  *out = m;
  return 0;
}

int cl_pbjson_from_text(const ProtobufCMessageDescriptor *desc, const char *text, size_t len,
                        ProtobufCMessage **out, cl_err *err) {
  if (!pbj_valid_desc(desc) || (!text && len) || !out)
    return cl_err_set(err, CL_EINVAL, "pbjson: invalid argument");
  json_error_t jerr;
  json_t *j = json_loadb(text ? text : "", len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
  if (!j) {
    if (json_error_code(&jerr) == json_error_out_of_memory)
      return cl_err_set(err, CL_ENOMEM, "out of memory");
    return cl_err_set(err, CL_EMALFORMED, "invalid JSON at line %d, column %d: %s", jerr.line,
                      jerr.column, jerr.text);
  }
  int rc = cl_pbjson_from_json(desc, j, out, err);
  json_decref(j);
  return rc;
}

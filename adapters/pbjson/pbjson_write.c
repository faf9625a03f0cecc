/* protobuf-c messages -> proto3 JSON, driven by runtime descriptors; see
 * pbjson.h for the mapping (pbjson.c is the other direction). */
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

/* ====================== message -> JSON ====================== */

static int emit_message(pbj_ctx *c, const ProtobufCMessage *m, json_t **out);

/* Whether protobuf-c would put a non-repeated field on the wire. */
static bool is_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f) {
  const void *mem = pbj_cmember(m, f->offset);
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
    if (*(const uint32_t *)pbj_cmember(m, f->quantifier_offset) != f->id)
      return false;
    if (pbj_is_pointer_type(f->type)) {
      const void *p = *(const void *const *)mem;
      return p && p != f->default_value;
    }
    return true;
  }
  switch (f->label) {
  case PROTOBUF_C_LABEL_REPEATED:
    return *(const size_t *)pbj_cmember(m, f->quantifier_offset) > 0;
  case PROTOBUF_C_LABEL_OPTIONAL:
    if (pbj_is_pointer_type(f->type)) {
      const void *p = *(const void *const *)mem;
      return p && p != f->default_value;
    }
    return *(const protobuf_c_boolean *)pbj_cmember(m, f->quantifier_offset);
  case PROTOBUF_C_LABEL_REQUIRED:
    return !pbj_is_pointer_type(f->type) || *(const void *const *)mem;
  case PROTOBUF_C_LABEL_NONE:
    break;
  }
  switch (f->type) {
  case PROTOBUF_C_TYPE_BOOL:
    return *(const protobuf_c_boolean *)mem != 0;
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
  case PROTOBUF_C_TYPE_ENUM:
    return *(const uint32_t *)mem != 0;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    return *(const uint64_t *)mem != 0;
  case PROTOBUF_C_TYPE_FLOAT:
    return *(const float *)mem != 0; /* -0.0 is default, as on the wire */
  case PROTOBUF_C_TYPE_DOUBLE:
    return *(const double *)mem != 0;
  case PROTOBUF_C_TYPE_STRING: {
    const char *s = *(const char *const *)mem;
    return s && *s;
  }
  case PROTOBUF_C_TYPE_BYTES:
    return ((const ProtobufCBinaryData *)mem)->len > 0;
  case PROTOBUF_C_TYPE_MESSAGE:
    return *(const void *const *)mem != NULL;
  }
  return false;
}

static json_t *emit_int64(int64_t v) {
  char buf[24];
  snprintf(buf, sizeof buf, "%" PRId64, v);
  return json_string_nocheck(buf);
}

static json_t *emit_uint64(uint64_t v) {
  char buf[24];
  snprintf(buf, sizeof buf, "%" PRIu64, v);
  return json_string_nocheck(buf);
}

/* NaN and infinities as strings; a float as the double nearest to its
 * shortest round-tripping decimal (so 0.1f is not written as
 * 0.10000000149011612). snprintf and strtof share the process locale, so the
 * search is locale-independent; jansson writes the double itself. */
static json_t *emit_real(double d, bool is_float) {
  if (isnan(d))
    return json_string_nocheck("NaN");
  if (isinf(d))
    return json_string_nocheck(d > 0 ? "Infinity" : "-Infinity");
  if (is_float) {
    float f = (float)d;
    char buf[48];
    for (int prec = 1; prec <= 9; prec++) {
      snprintf(buf, sizeof buf, "%.*g", prec, d);
      if (strtof(buf, NULL) == f)
        break;
    }
    double s = strtod(buf, NULL);
    if ((float)s == f && signbit(s) == signbit(d))
      d = s;
  }
  return json_real(d);
}

static int emit_bytes(pbj_ctx *c, const ProtobufCBinaryData *bd, json_t **out) {
  if (bd->len == 0) {
    *out = json_string_nocheck("");
    return *out ? 0 : pbj_nomem(c);
  }
  if (!bd->data)
    return pbj_fail(c, CL_EMALFORMED, "bytes with len %zu and NULL data", bd->len);
  if (bd->len > (SIZE_MAX - 8) / 4 * 3)
    return pbj_nomem(c);
  size_t cap = sodium_base64_ENCODED_LEN(bd->len, sodium_base64_VARIANT_ORIGINAL);
  char *buf = pbj_xmalloc(cap);
  if (!buf)
    return pbj_nomem(c);
  sodium_bin2base64(buf, cap, bd->data, bd->len, sodium_base64_VARIANT_ORIGINAL);
  *out = json_stringn_nocheck(buf, strlen(buf));
  free(buf);
  return *out ? 0 : pbj_nomem(c);
}

static int emit_value(pbj_ctx *c, const ProtobufCFieldDescriptor *f, const void *mem,
                      json_t **out) {
  json_t *v = NULL;
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
    v = json_integer(*(const int32_t *)mem);
    break;
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    v = json_integer(*(const uint32_t *)mem);
    break;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
    v = emit_int64(*(const int64_t *)mem);
    break;
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    v = emit_uint64(*(const uint64_t *)mem);
    break;
  case PROTOBUF_C_TYPE_FLOAT:
    v = emit_real(*(const float *)mem, true);
    break;
  case PROTOBUF_C_TYPE_DOUBLE:
    v = emit_real(*(const double *)mem, false);
    break;
  case PROTOBUF_C_TYPE_BOOL:
    v = json_boolean(*(const protobuf_c_boolean *)mem);
    break;
  case PROTOBUF_C_TYPE_ENUM: {
    int32_t e = *(const int32_t *)mem;
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, e);
    v = ev ? json_string_nocheck(ev->name) : json_integer(e);
    break;
  }
  case PROTOBUF_C_TYPE_STRING: {
    const char *s = *(const char *const *)mem;
    if (!s)
      return pbj_fail(c, CL_EMALFORMED, "NULL string");
    size_t n = strlen(s);
    if (!pbj_utf8_valid(s, n))
      return pbj_fail(c, CL_EMALFORMED, "invalid UTF-8 in string");
    v = json_stringn_nocheck(s, n);
    break;
  }
  case PROTOBUF_C_TYPE_BYTES:
    return emit_bytes(c, mem, out);
  case PROTOBUF_C_TYPE_MESSAGE: {
    const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)mem;
    if (!sub)
      return pbj_fail(c, CL_EMALFORMED, "NULL message");
    return emit_message(c, sub, out);
  }
  default:
    return pbj_fail(c, CL_EINVAL, "unsupported field type %d", (int)f->type);
  }
  if (!v)
    return pbj_nomem(c);
  *out = v;
  return 0;
}

static int emit_repeated(pbj_ctx *c, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                         json_t **out) {
  size_t n = *(const size_t *)pbj_cmember(m, f->quantifier_offset);
  const char *arr = *(const char *const *)pbj_cmember(m, f->offset);
  size_t es = pbj_value_size(f->type);
  if (!arr)
    return pbj_fail(c, CL_EMALFORMED, "NULL array with %zu elements", n);
  if (es == 0)
    return pbj_fail(c, CL_EINVAL, "unsupported field type %d", (int)f->type);
  json_t *a = json_array();
  if (!a)
    return pbj_nomem(c);
  for (size_t i = 0; i < n; i++) {
    json_t *v = NULL;
    size_t old = pbj_push_index(c, i);
    int rc = emit_value(c, f, arr + i * es, &v);
    pbj_pop(c, old);
    if (rc) {
      json_decref(a);
      return rc;
    }
    if (json_array_append_new(a, v) != 0) {
      json_decref(a);
      return pbj_nomem(c);
    }
  }
  *out = a;
  return 0;
}

static int emit_timestamp(pbj_ctx *c, const ProtobufCMessage *m, const pbj_ts_fields *tf,
                          json_t **out) {
  char buf[48];
  if (!pbj_rfc3339_format(*(const int64_t *)pbj_cmember(m, tf->seconds->offset),
                          *(const int32_t *)pbj_cmember(m, tf->nanos->offset), buf, sizeof buf))
    return pbj_fail(c, CL_EMALFORMED, "timestamp out of range");
  *out = json_string_nocheck(buf);
  return *out ? 0 : pbj_nomem(c);
}

static int emit_message(pbj_ctx *c, const ProtobufCMessage *m, json_t **out) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  if (!pbj_valid_desc(d))
    return pbj_fail(c, CL_EMALFORMED, "message without a valid descriptor");
  pbj_ts_fields tf;
  if (pbj_is_timestamp(d, &tf))
    return emit_timestamp(c, m, &tf, out);
  if (c->depth >= CL_PBJSON_MAX_DEPTH)
    return pbj_fail(c, CL_EMALFORMED, "too deeply nested");
  json_t *o = json_object();
  if (!o)
    return pbj_nomem(c);
  c->depth++;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    if (!is_present(m, f))
      continue;
    char small[128], *key = small;
    size_t klen = pbj_camel_len(f->name);
    if (klen >= sizeof small && !(key = pbj_xmalloc(klen + 1))) {
      json_decref(o);
      return pbj_nomem(c);
    }
    pbj_camel_write(f->name, key, klen + 1);
    size_t old = pbj_push_key(c, key, klen);
    json_t *v = NULL;
    int rc = f->label == PROTOBUF_C_LABEL_REPEATED
                 ? emit_repeated(c, m, f, &v)
                 : emit_value(c, f, pbj_cmember(m, f->offset), &v);
    pbj_pop(c, old);
    if (rc == 0 && json_object_set_new_nocheck(o, key, v) != 0)
      rc = pbj_nomem(c);
    if (key != small)
      free(key);
    if (rc) {
      json_decref(o);
      return rc;
    }
  }
  c->depth--;
  *out = o;
  return 0;
}

int cl_pbjson_to_json(const ProtobufCMessage *msg, json_t **out, cl_err *err) {
  if (!msg || !pbj_valid_desc(msg->descriptor) || !out)
    return cl_err_set(err, CL_EINVAL, "pbjson: invalid argument");
  pbj_ctx c = {.err = err};
  json_t *j = NULL;
  int rc = emit_message(&c, msg, &j);
  if (rc)
    return rc;
  *out = j;
  return 0;
}

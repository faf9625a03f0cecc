/* Helpers shared by both directions of pbjson (pbjson_int.h): allocation,
 * the error path, descriptors, JSON names, UTF-8 and RFC 3339 times. */
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

/* ---- allocation ---- */

static void *(*alloc_hook)(size_t size);

void cl_pbjson_set_alloc_hook(void *(*fn)(size_t size)) { alloc_hook = fn; }

void *pbj_xmalloc(size_t n) {
  if (n == 0)
    n = 1;
  return alloc_hook ? alloc_hook(n) : malloc(n);
}

/* ---- conversion context: error sink, JSON path, nesting depth ---- */

int pbj_fail(pbj_ctx *c, int code, const char *fmt, ...) {
  char what[CL_ERR_MSG_SIZE];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  if (c->plen == 0)
    return cl_err_set(c->err, code, "%s", what);
  /* Keep the reason whole; if path + reason do not fit, keep the path's
   * tail, which is nearer the offending value. */
  size_t wl = strlen(what);
  if (wl + 16 >= CL_ERR_MSG_SIZE)
    return cl_err_set(c->err, code, "%s", what);
  size_t room = CL_ERR_MSG_SIZE - 1 - wl - 2;
  if (c->plen <= room)
    return cl_err_set(c->err, code, "%s: %s", c->path, what);
  return cl_err_set(c->err, code, "...%s: %s", c->path + c->plen - (room - 3), what);
}

int pbj_nomem(pbj_ctx *c) { return pbj_fail(c, CL_ENOMEM, "out of memory"); }

/* Appends ".key" (or "key" at the top); returns the length to restore.
 * Bytes outside printable ASCII become '?': keys come from untrusted input
 * and the message may end up in logs or JSON error bodies. */
size_t pbj_push_key(pbj_ctx *c, const char *key, size_t klen) {
  size_t old = c->plen, pos = old, cap = sizeof c->path;
  if (pos > 0 && pos < cap - 1)
    c->path[pos++] = '.';
  for (size_t i = 0; i < klen && pos < cap - 1; i++) {
    unsigned char ch = (unsigned char)key[i];
    c->path[pos++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
  }
  c->path[pos] = '\0';
  c->plen = pos;
  return old;
}

size_t pbj_push_index(pbj_ctx *c, size_t i) {
  size_t old = c->plen, cap = sizeof c->path;
  int n = snprintf(c->path + old, cap - old, "[%zu]", i);
  if (n > 0)
    c->plen = old + ((size_t)n < cap - 1 - old ? (size_t)n : cap - 1 - old);
  return old;
}

void pbj_pop(pbj_ctx *c, size_t old) {
  c->plen = old;
  c->path[old] = '\0';
}

/* ---- helpers on descriptors and members ---- */

void *pbj_member(void *msg, unsigned off) { return (char *)msg + off; }

const void *pbj_cmember(const void *msg, unsigned off) { return (const char *)msg + off; }

bool pbj_valid_desc(const ProtobufCMessageDescriptor *d) {
  return d && d->magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC;
}

/* Size of one value of `t` as protobuf-c stores it (in a struct or array). */
size_t pbj_value_size(ProtobufCType t) {
  switch (t) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
  case PROTOBUF_C_TYPE_ENUM:
    return 4;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    return 8;
  case PROTOBUF_C_TYPE_FLOAT:
    return sizeof(float);
  case PROTOBUF_C_TYPE_DOUBLE:
    return sizeof(double);
  case PROTOBUF_C_TYPE_BOOL:
    return sizeof(protobuf_c_boolean);
  case PROTOBUF_C_TYPE_STRING:
    return sizeof(char *);
  case PROTOBUF_C_TYPE_BYTES:
    return sizeof(ProtobufCBinaryData);
  case PROTOBUF_C_TYPE_MESSAGE:
    return sizeof(ProtobufCMessage *);
  }
  return 0;
}

bool pbj_is_pointer_type(ProtobufCType t) {
  return t == PROTOBUF_C_TYPE_STRING || t == PROTOBUF_C_TYPE_MESSAGE;
}

bool pbj_is_timestamp(const ProtobufCMessageDescriptor *d, pbj_ts_fields *tf) {
  if (!d->name || strcmp(d->name, "google.protobuf.Timestamp") != 0)
    return false;
  tf->seconds = protobuf_c_message_descriptor_get_field_by_name(d, "seconds");
  tf->nanos = protobuf_c_message_descriptor_get_field_by_name(d, "nanos");
  return tf->seconds && tf->nanos && tf->seconds->type == PROTOBUF_C_TYPE_INT64 &&
         tf->seconds->label != PROTOBUF_C_LABEL_REPEATED &&
         !(tf->seconds->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
         tf->nanos->type == PROTOBUF_C_TYPE_INT32 &&
         tf->nanos->label != PROTOBUF_C_LABEL_REPEATED &&
         !(tf->nanos->flags & PROTOBUF_C_FIELD_FLAG_ONEOF);
}

/* lowerCamelCase as protoc's ToJsonName: drop '_', upper-case the next
 * character; nothing else changes. */
static char upper(char ch) { return (ch >= 'a' && ch <= 'z') ? (char)(ch - 'a' + 'A') : ch; }

size_t pbj_camel_len(const char *name) {
  size_t n = 0;
  for (; *name; name++)
    n += *name != '_';
  return n;
}

/* Writes camelCase of `name` into dst (capacity cap >= 1), truncating. */
void pbj_camel_write(const char *name, char *dst, size_t cap) {
  bool up = false;
  size_t n = 0;
  for (; *name && n + 1 < cap; name++) {
    if (*name == '_') {
      up = true;
    } else {
      dst[n++] = up ? upper(*name) : *name;
      up = false;
    }
  }
  dst[n] = '\0';
}

static bool camel_eq(const char *name, const char *key, size_t klen) {
  bool up = false;
  size_t i = 0;
  for (; *name; name++) {
    if (*name == '_') {
      up = true;
      continue;
    }
    if (i >= klen || key[i] != (up ? upper(*name) : *name))
      return false;
    up = false;
    i++;
  }
  return i == klen;
}

const ProtobufCFieldDescriptor *pbj_find_field(const ProtobufCMessageDescriptor *d, const char *key,
                                               size_t klen, bool *by_proto_name) {
  if (strlen(key) == klen) {
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, key);
    if (f) {
      *by_proto_name = true;
      return f;
    }
  }
  *by_proto_name = false;
  for (unsigned i = 0; i < d->n_fields; i++)
    if (camel_eq(d->fields[i].name, key, klen))
      return &d->fields[i];
  return NULL;
}

/* Strict UTF-8 (RFC 3629): no overlongs, no surrogates, <= U+10FFFF. */
bool pbj_utf8_valid(const char *str, size_t n) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0;
  while (i < n) {
    unsigned char b = s[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) {
      len = 2;
    } else if (b >= 0xe0 && b <= 0xef) {
      len = 3;
      if (b == 0xe0)
        lo = 0xa0;
      else if (b == 0xed)
        hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      len = 4;
      if (b == 0xf0)
        lo = 0x90;
      else if (b == 0xf4)
        hi = 0x8f;
    } else {
      return false;
    }
    if (n - i < len)
      return false;
    if (s[i + 1] < lo || s[i + 1] > hi)
      return false;
    for (size_t k = 2; k < len; k++)
      if (s[i + k] < 0x80 || s[i + k] > 0xbf)
        return false;
    i += len;
  }
  return true;
}

/* ---- calendar (proleptic Gregorian, H. Hinnant's algorithms) ---- */

#define TS_MIN_SECONDS INT64_C(-62135596800) /* 0001-01-01T00:00:00Z */
#define TS_MAX_SECONDS INT64_C(253402300799) /* 9999-12-31T23:59:59Z */

static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

static int days_in_month(int64_t y, int m) {
  static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : dim[m - 1];
}

/* Reads `n` ASCII digits at s[*i]; false if any is not a digit. */
static bool digits(const char *s, size_t len, size_t *i, int n, int *out) {
  int v = 0;
  if (len - *i < (size_t)n)
    return false;
  for (int k = 0; k < n; k++) {
    char ch = s[*i + (size_t)k];
    if (ch < '0' || ch > '9')
      return false;
    v = v * 10 + (ch - '0');
  }
  *i += (size_t)n;
  *out = v;
  return true;
}

static bool expect(const char *s, size_t len, size_t *i, char a, char b) {
  if (*i >= len || (s[*i] != a && s[*i] != b))
    return false;
  (*i)++;
  return true;
}

/* RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|+hh:mm|-hh:mm). */
bool pbj_rfc3339_parse(const char *s, size_t len, int64_t *secs, int32_t *nanos) {
  size_t i = 0;
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0, oh = 0, om = 0, sign = 0;
  if (!digits(s, len, &i, 4, &y) || !expect(s, len, &i, '-', '-') || !digits(s, len, &i, 2, &mo) ||
      !expect(s, len, &i, '-', '-') || !digits(s, len, &i, 2, &d) ||
      !expect(s, len, &i, 'T', 't') || !digits(s, len, &i, 2, &h) ||
      !expect(s, len, &i, ':', ':') || !digits(s, len, &i, 2, &mi) ||
      !expect(s, len, &i, ':', ':') || !digits(s, len, &i, 2, &se))
    return false;
  int32_t ns = 0;
  if (i < len && s[i] == '.') {
    int nd = 0;
    i++;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
      if (++nd > 9)
        return false;
      ns = ns * 10 + (s[i] - '0');
      i++;
    }
    if (nd == 0)
      return false;
    for (; nd < 9; nd++)
      ns *= 10;
  }
  if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
    i++;
  } else if (i < len && (s[i] == '+' || s[i] == '-')) {
    sign = s[i] == '+' ? 1 : -1;
    i++;
    if (!digits(s, len, &i, 2, &oh) || !expect(s, len, &i, ':', ':') ||
        !digits(s, len, &i, 2, &om) || oh > 23 || om > 59)
      return false;
  } else {
    return false;
  }
  if (i != len)
    return false;
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
      se > 59)
    return false;
  int64_t t =
      days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - sign * (oh * 3600 + om * 60);
  if (t < TS_MIN_SECONDS || t > TS_MAX_SECONDS)
    return false;
  *secs = t;
  *nanos = ns;
  return true;
}

/* Formats into buf (>= 32 bytes); false if out of the supported range. */
bool pbj_rfc3339_format(int64_t secs, int32_t nanos, char *buf, size_t cap) {
  if (secs < TS_MIN_SECONDS || secs > TS_MAX_SECONDS || nanos < 0 || nanos > 999999999)
    return false;
  int64_t days = secs / 86400, rem = secs % 86400;
  if (rem < 0) {
    rem += 86400;
    days--;
  }
  int64_t y;
  int m, d;
  civil_from_days(days, &y, &m, &d);
  int n = snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d", (int)y, m, d, (int)(rem / 3600),
                   (int)(rem / 60 % 60), (int)(rem % 60));
  if (n < 0 || (size_t)n >= cap)
    return false;
  size_t pos = (size_t)n;
  int r;
  if (nanos == 0)
    r = 0;
  else if (nanos % 1000000 == 0)
    r = snprintf(buf + pos, cap - pos, ".%03d", (int)(nanos / 1000000));
  else if (nanos % 1000 == 0)
    r = snprintf(buf + pos, cap - pos, ".%06d", (int)(nanos / 1000));
  else
    r = snprintf(buf + pos, cap - pos, ".%09d", (int)nanos);
  if (r < 0 || (size_t)r >= cap - pos - 1)
    return false;
  pos += (size_t)r;
  buf[pos++] = 'Z';
  buf[pos] = '\0';
  return true;
}

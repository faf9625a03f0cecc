/* proto3 JSON <-> protobuf-c messages, driven by runtime descriptors; see
 * pbjson.h for the mapping.
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
 * All memory handed to protobuf-c comes from xmalloc (malloc or the test
 * hook), because free_unpacked with a NULL allocator uses free().
 *
 * The error path (ctx.path) is kept in a fixed buffer so that an error can be
 * reported after memory has run out. */
#include "adapters/pbjson/pbjson.h"

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

static void *xmalloc(size_t n) {
  if (n == 0)
    n = 1;
  return alloc_hook ? alloc_hook(n) : malloc(n);
}

/* ---- conversion context: error sink, JSON path, nesting depth ---- */

typedef struct ctx {
  cl_err *err;     /* borrowed; may be NULL */
  int depth;       /* message levels entered so far */
  size_t plen;     /* strlen(path) */
  char path[1024]; /* "a.b[2].c", truncated when too long; the
                      error message keeps its tail */
} ctx;

static int fail(ctx *c, int code, const char *fmt, ...) CL_PRINTF(3, 4);
static int fail(ctx *c, int code, const char *fmt, ...) {
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
  return cl_err_set(c->err, code, "...%s: %s", c->path + c->plen - (room - 3),
                    what);
}

static int nomem(ctx *c) { return fail(c, CL_ENOMEM, "out of memory"); }

/* Appends ".key" (or "key" at the top); returns the length to restore.
 * Bytes outside printable ASCII become '?': keys come from untrusted input
 * and the message may end up in logs or JSON error bodies. */
static size_t push_key(ctx *c, const char *key, size_t klen) {
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

static size_t push_index(ctx *c, size_t i) {
  size_t old = c->plen, cap = sizeof c->path;
  int n = snprintf(c->path + old, cap - old, "[%zu]", i);
  if (n > 0)
    c->plen = old + ((size_t)n < cap - 1 - old ? (size_t)n : cap - 1 - old);
  return old;
}

static void pop(ctx *c, size_t old) {
  c->plen = old;
  c->path[old] = '\0';
}

/* ---- helpers on descriptors and members ---- */

static void *member(void *msg, unsigned off) { return (char *)msg + off; }

static const void *cmember(const void *msg, unsigned off) {
  return (const char *)msg + off;
}

/* Size of one value of `t` as protobuf-c stores it (in a struct or array). */
static size_t value_size(ProtobufCType t) {
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

static bool is_pointer_type(ProtobufCType t) {
  return t == PROTOBUF_C_TYPE_STRING || t == PROTOBUF_C_TYPE_MESSAGE;
}

/* Timestamp detection: by full name, and only if the fields have the
 * expected shape (so a look-alike cannot make us write out of bounds). */
typedef struct ts_fields {
  const ProtobufCFieldDescriptor *seconds, *nanos;
} ts_fields;

static bool is_timestamp(const ProtobufCMessageDescriptor *d, ts_fields *tf) {
  if (!d->name || strcmp(d->name, "google.protobuf.Timestamp") != 0)
    return false;
  tf->seconds = protobuf_c_message_descriptor_get_field_by_name(d, "seconds");
  tf->nanos = protobuf_c_message_descriptor_get_field_by_name(d, "nanos");
  return tf->seconds && tf->nanos &&
         tf->seconds->type == PROTOBUF_C_TYPE_INT64 &&
         tf->seconds->label != PROTOBUF_C_LABEL_REPEATED &&
         !(tf->seconds->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
         tf->nanos->type == PROTOBUF_C_TYPE_INT32 &&
         tf->nanos->label != PROTOBUF_C_LABEL_REPEATED &&
         !(tf->nanos->flags & PROTOBUF_C_FIELD_FLAG_ONEOF);
}

/* lowerCamelCase as protoc's ToJsonName: drop '_', upper-case the next
 * character; nothing else changes. */
static char upper(char ch) {
  return (ch >= 'a' && ch <= 'z') ? (char)(ch - 'a' + 'A') : ch;
}

static size_t camel_len(const char *name) {
  size_t n = 0;
  for (; *name; name++)
    n += *name != '_';
  return n;
}

/* Writes camelCase of `name` into dst (capacity cap >= 1), truncating. */
static void camel_write(const char *name, char *dst, size_t cap) {
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

static const ProtobufCFieldDescriptor *
find_field(const ProtobufCMessageDescriptor *d, const char *key, size_t klen,
           bool *by_proto_name) {
  if (strlen(key) == klen) {
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(d, key);
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
static bool utf8_valid(const char *str, size_t n) {
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
static bool rfc3339_parse(const char *s, size_t len, int64_t *secs,
                          int32_t *nanos) {
  size_t i = 0;
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0, oh = 0, om = 0, sign = 0;
  if (!digits(s, len, &i, 4, &y) || !expect(s, len, &i, '-', '-') ||
      !digits(s, len, &i, 2, &mo) || !expect(s, len, &i, '-', '-') ||
      !digits(s, len, &i, 2, &d) || !expect(s, len, &i, 'T', 't') ||
      !digits(s, len, &i, 2, &h) || !expect(s, len, &i, ':', ':') ||
      !digits(s, len, &i, 2, &mi) || !expect(s, len, &i, ':', ':') ||
      !digits(s, len, &i, 2, &se))
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
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) ||
      h > 23 || mi > 59 || se > 59)
    return false;
  int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se -
              sign * (oh * 3600 + om * 60);
  if (t < TS_MIN_SECONDS || t > TS_MAX_SECONDS)
    return false;
  *secs = t;
  *nanos = ns;
  return true;
}

/* Formats into buf (>= 32 bytes); false if out of the supported range. */
static bool rfc3339_format(int64_t secs, int32_t nanos, char *buf, size_t cap) {
  if (secs < TS_MIN_SECONDS || secs > TS_MAX_SECONDS || nanos < 0 ||
      nanos > 999999999)
    return false;
  int64_t days = secs / 86400, rem = secs % 86400;
  if (rem < 0) {
    rem += 86400;
    days--;
  }
  int64_t y;
  int m, d;
  civil_from_days(days, &y, &m, &d);
  int n = snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d", (int)y, m, d,
                   (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60));
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

/* ====================== JSON -> message ====================== */

static int parse_message(ctx *c, const ProtobufCMessageDescriptor *d,
                         const json_t *j, ProtobufCMessage **slot);

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
static int parse_signed(ctx *c, const json_t *j, int64_t lo, int64_t hi,
                        int64_t *out) {
  int64_t v;
  if (json_is_integer(j)) {
    v = (int64_t)json_integer_value(j);
  } else if (json_is_real(j)) {
    /* range first: converting an out-of-range double is undefined */
    double d = json_real_value(j);
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
      return fail(c, CL_EMALFORMED, "integer out of range");
    v = (int64_t)d;
    if ((double)v != d)
      return fail(c, CL_EMALFORMED, "expected integer, got fraction");
  } else if (json_is_string(j)) {
    const char *s = json_string_value(j);
    if (!dec_string(s, json_string_length(j), true))
      return fail(c, CL_EMALFORMED, "invalid integer string");
    errno = 0;
    long long x = strtoll(s, NULL, 10);
    if (errno == ERANGE)
      return fail(c, CL_EMALFORMED, "integer out of range");
    v = (int64_t)x;
  } else {
    return fail(c, CL_EMALFORMED, "expected integer (number or string)");
  }
  if (v < lo || v > hi)
    return fail(c, CL_EMALFORMED, "integer out of range");
  *out = v;
  return 0;
}

static int parse_unsigned(ctx *c, const json_t *j, uint64_t hi, uint64_t *out) {
  uint64_t v;
  if (json_is_integer(j)) {
    json_int_t x = json_integer_value(j);
    if (x < 0)
      return fail(c, CL_EMALFORMED, "integer out of range");
    v = (uint64_t)x;
  } else if (json_is_real(j)) {
    double d = json_real_value(j);
    if (!(d >= 0.0 && d < 18446744073709551616.0))
      return fail(c, CL_EMALFORMED, "integer out of range");
    v = (uint64_t)d;
    if ((double)v != d)
      return fail(c, CL_EMALFORMED, "expected integer, got fraction");
  } else if (json_is_string(j)) {
    const char *s = json_string_value(j);
    if (!dec_string(s, json_string_length(j), false))
      return fail(c, CL_EMALFORMED, "invalid integer string");
    errno = 0;
    unsigned long long x = strtoull(s, NULL, 10);
    if (errno == ERANGE)
      return fail(c, CL_EMALFORMED, "integer out of range");
    v = (uint64_t)x;
  } else {
    return fail(c, CL_EMALFORMED, "expected integer (number or string)");
  }
  if (v > hi)
    return fail(c, CL_EMALFORMED, "integer out of range");
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
static int parse_double(ctx *c, const json_t *j, double *out) {
  if (json_is_number(j)) {
    *out = json_number_value(j);
    return 0;
  }
  if (!json_is_string(j))
    return fail(c, CL_EMALFORMED, "expected number");
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
    return fail(c, CL_EMALFORMED, "invalid number string");
  char small[64], *buf = small;
  if (n >= sizeof small && !(buf = xmalloc(n + 1)))
    return nomem(c);
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
    return fail(c, CL_EMALFORMED, "invalid number string");
  if (overflow)
    return fail(c, CL_EMALFORMED, "number out of range");
  *out = d;
  return 0;
}

static int parse_enum(ctx *c, const ProtobufCFieldDescriptor *f,
                      const json_t *j, int32_t *out) {
  const ProtobufCEnumDescriptor *ed = f->descriptor;
  if (json_is_string(j)) {
    const char *s = json_string_value(j);
    const ProtobufCEnumValue *ev = NULL;
    if (strlen(s) == json_string_length(j))
      ev = protobuf_c_enum_descriptor_get_value_by_name(ed, s);
    if (!ev)
      return fail(c, CL_EMALFORMED, "unknown value name for enum %s", ed->name);
    *out = ev->value;
    return 0;
  }
  if (json_is_integer(j)) {
    json_int_t v = json_integer_value(j);
    if (v < INT32_MIN || v > INT32_MAX)
      return fail(c, CL_EMALFORMED, "enum number out of range");
    *out = (int32_t)v;
    return 0;
  }
  return fail(c, CL_EMALFORMED, "expected enum value name or number");
}

static int parse_string(ctx *c, const json_t *j, char **out) {
  if (!json_is_string(j))
    return fail(c, CL_EMALFORMED, "expected string");
  const char *s = json_string_value(j);
  size_t n = json_string_length(j);
  if (memchr(s, 0, n))
    return fail(c, CL_EMALFORMED, "string contains U+0000");
  if (!utf8_valid(s, n))
    return fail(c, CL_EMALFORMED, "invalid UTF-8 in string");
  char *p = xmalloc(n + 1);
  if (!p)
    return nomem(c);
  memcpy(p, s, n);
  p[n] = '\0';
  *out = p;
  return 0;
}

/* Standard or URL-safe alphabet, padded or not (not mixed). */
static int parse_bytes(ctx *c, const json_t *j, ProtobufCBinaryData *out) {
  if (!json_is_string(j))
    return fail(c, CL_EMALFORMED, "expected base64 string");
  const char *s = json_string_value(j);
  size_t n = json_string_length(j);
  if (n == 0) {
    out->len = 0;
    out->data = NULL;
    return 0;
  }
  bool urlsafe = memchr(s, '-', n) || memchr(s, '_', n);
  bool padded = s[n - 1] == '=';
  int variant = urlsafe ? (padded ? sodium_base64_VARIANT_URLSAFE
                                  : sodium_base64_VARIANT_URLSAFE_NO_PADDING)
                        : (padded ? sodium_base64_VARIANT_ORIGINAL
                                  : sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
  size_t cap = n / 4 * 3 + 3;
  unsigned char *buf = xmalloc(cap);
  if (!buf)
    return nomem(c);
  size_t bl = 0;
  const char *end = NULL;
  if (sodium_base642bin(buf, cap, s, n, NULL, &bl, &end, variant) != 0 ||
      end != s + n) {
    free(buf);
    return fail(c, CL_EMALFORMED, "invalid base64");
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
static int parse_value(ctx *c, const ProtobufCFieldDescriptor *f,
                       const json_t *j, void *dst) {
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
      return fail(c, CL_EMALFORMED, "number out of range for float");
    *(float *)dst = (float)dv;
    return 0;
  case PROTOBUF_C_TYPE_DOUBLE:
    if ((rc = parse_double(c, j, &dv)))
      return rc;
    *(double *)dst = dv;
    return 0;
  case PROTOBUF_C_TYPE_BOOL:
    if (!json_is_boolean(j))
      return fail(c, CL_EMALFORMED, "expected true or false");
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
  return fail(c, CL_EINVAL, "unsupported field type %d", (int)f->type);
}

static int parse_repeated(ctx *c, ProtobufCMessage *msg,
                          const ProtobufCFieldDescriptor *f, const json_t *j) {
  if (!json_is_array(j))
    return fail(c, CL_EMALFORMED, "expected array");
  size_t n = json_array_size(j), es = value_size(f->type);
  if (n == 0)
    return 0;
  if (es == 0)
    return fail(c, CL_EINVAL, "unsupported field type %d", (int)f->type);
  if (n > SIZE_MAX / es)
    return nomem(c);
  void *arr = xmalloc(n * es);
  if (!arr)
    return nomem(c);
  memset(arr, 0, n * es);
  *(void **)member(msg, f->offset) = arr;
  *(size_t *)member(msg, f->quantifier_offset) = n;
  for (size_t i = 0; i < n; i++) {
    const json_t *e = json_array_get(j, i);
    size_t old = push_index(c, i);
    int rc = json_is_null(e)
                 ? fail(c, CL_EMALFORMED, "null is not allowed in an array")
                 : parse_value(c, f, e, (char *)arr + i * es);
    pop(c, old);
    if (rc)
      return rc;
  }
  return 0;
}

static int parse_field(ctx *c, ProtobufCMessage *msg,
                       const ProtobufCFieldDescriptor *f, const json_t *j) {
  if (json_is_null(j))
    return 0;
  if (f->label == PROTOBUF_C_LABEL_REPEATED)
    return parse_repeated(c, msg, f, j);
  void *dst = member(msg, f->offset);
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
    uint32_t *which = member(msg, f->quantifier_offset);
    if (*which != 0) {
      const ProtobufCFieldDescriptor *other =
          protobuf_c_message_descriptor_get_field(msg->descriptor, *which);
      char name[64];
      camel_write(other ? other->name : "?", name, sizeof name);
      return fail(c, CL_EMALFORMED,
                  "only one field of a oneof may be set (\"%s\" is set too)",
                  name);
    }
    /* Set the case first (zeroed union: NULL pointer, empty bytes), so a
     * submessage attached below is freed by free_unpacked on error. */
    memset(dst, 0, value_size(f->type));
    *which = f->id;
    return parse_value(c, f, j, dst);
  }
  int rc = parse_value(c, f, j, dst);
  if (rc == 0 && f->label == PROTOBUF_C_LABEL_OPTIONAL &&
      !is_pointer_type(f->type))
    *(protobuf_c_boolean *)member(msg, f->quantifier_offset) = 1;
  return rc;
}

static int parse_timestamp(ctx *c, const ProtobufCMessageDescriptor *d,
                           const ts_fields *tf, const json_t *j,
                           ProtobufCMessage **slot) {
  if (!json_is_string(j))
    return fail(c, CL_EMALFORMED, "expected RFC 3339 timestamp string");
  int64_t secs;
  int32_t nanos;
  if (!rfc3339_parse(json_string_value(j), json_string_length(j), &secs,
                     &nanos))
    return fail(c, CL_EMALFORMED,
                "invalid RFC 3339 timestamp (or outside 0001-9999)");
  ProtobufCMessage *m = xmalloc(d->sizeof_message);
  if (!m)
    return nomem(c);
  protobuf_c_message_init(d, m);
  *(int64_t *)member(m, tf->seconds->offset) = secs;
  *(int32_t *)member(m, tf->nanos->offset) = nanos;
  *slot = m;
  return 0;
}

static int parse_message(ctx *c, const ProtobufCMessageDescriptor *d,
                         const json_t *j, ProtobufCMessage **slot) {
  ts_fields tf;
  if (is_timestamp(d, &tf))
    return parse_timestamp(c, d, &tf, j, slot);
  if (!json_is_object(j))
    return fail(c, CL_EMALFORMED, "expected object for %s", d->name);
  if (c->depth >= CL_PBJSON_MAX_DEPTH)
    return fail(c, CL_EMALFORMED, "too deeply nested");
  ProtobufCMessage *m = xmalloc(d->sizeof_message);
  if (!m)
    return nomem(c);
  protobuf_c_message_init(d, m);
  *slot = m; /* from here on the caller's cleanup frees m */

  c->depth++;
  json_t *obj = (json_t *)j; /* the iterator API is not const-qualified */
  for (void *it = json_object_iter(obj); it;
       it = json_object_iter_next(obj, it)) {
    const char *key = json_object_iter_key(it);
    size_t klen = json_object_iter_key_len(it);
    const json_t *v = json_object_iter_value(it);
    size_t old = push_key(c, key, klen);
    bool by_proto_name;
    const ProtobufCFieldDescriptor *f =
        find_field(d, key, klen, &by_proto_name);
    int rc;
    if (!f)
      rc = fail(c, CL_EMALFORMED, "unknown field");
    else if (!by_proto_name && json_object_get(j, f->name))
      rc = fail(c, CL_EMALFORMED, "field also given as \"%s\"", f->name);
    else
      rc = parse_field(c, m, f, v);
    pop(c, old);
    if (rc)
      return rc;
  }
  c->depth--;
  return 0;
}

static bool valid_desc(const ProtobufCMessageDescriptor *d) {
  return d && d->magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC;
}

int cl_pbjson_from_json(const ProtobufCMessageDescriptor *desc,
                        const json_t *json, ProtobufCMessage **out,
                        cl_err *err) {
  if (!valid_desc(desc) || !json || !out)
    return cl_err_set(err, CL_EINVAL, "pbjson: invalid argument");
  ctx c = {.err = err};
  ProtobufCMessage *m = NULL;
  int rc = parse_message(&c, desc, json, &m);
  if (rc) {
    protobuf_c_message_free_unpacked(m, NULL);
    return rc;
  }
  *out = m;
  return 0;
}

int cl_pbjson_from_text(const ProtobufCMessageDescriptor *desc,
                        const char *text, size_t len, ProtobufCMessage **out,
                        cl_err *err) {
  if (!valid_desc(desc) || (!text && len) || !out)
    return cl_err_set(err, CL_EINVAL, "pbjson: invalid argument");
  json_error_t jerr;
  json_t *j = json_loadb(text ? text : "", len,
                         JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
  if (!j) {
    if (json_error_code(&jerr) == json_error_out_of_memory)
      return cl_err_set(err, CL_ENOMEM, "out of memory");
    return cl_err_set(err, CL_EMALFORMED,
                      "invalid JSON at line %d, column %d: %s", jerr.line,
                      jerr.column, jerr.text);
  }
  int rc = cl_pbjson_from_json(desc, j, out, err);
  json_decref(j);
  return rc;
}

/* ====================== message -> JSON ====================== */

static int emit_message(ctx *c, const ProtobufCMessage *m, json_t **out);

/* Whether protobuf-c would put a non-repeated field on the wire. */
static bool is_present(const ProtobufCMessage *m,
                       const ProtobufCFieldDescriptor *f) {
  const void *mem = cmember(m, f->offset);
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
    if (*(const uint32_t *)cmember(m, f->quantifier_offset) != f->id)
      return false;
    if (is_pointer_type(f->type)) {
      const void *p = *(const void *const *)mem;
      return p && p != f->default_value;
    }
    return true;
  }
  switch (f->label) {
  case PROTOBUF_C_LABEL_REPEATED:
    return *(const size_t *)cmember(m, f->quantifier_offset) > 0;
  case PROTOBUF_C_LABEL_OPTIONAL:
    if (is_pointer_type(f->type)) {
      const void *p = *(const void *const *)mem;
      return p && p != f->default_value;
    }
    return *(const protobuf_c_boolean *)cmember(m, f->quantifier_offset);
  case PROTOBUF_C_LABEL_REQUIRED:
    return !is_pointer_type(f->type) || *(const void *const *)mem;
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

static int emit_bytes(ctx *c, const ProtobufCBinaryData *bd, json_t **out) {
  if (bd->len == 0) {
    *out = json_string_nocheck("");
    return *out ? 0 : nomem(c);
  }
  if (!bd->data)
    return fail(c, CL_EMALFORMED, "bytes with len %zu and NULL data", bd->len);
  if (bd->len > (SIZE_MAX - 8) / 4 * 3)
    return nomem(c);
  size_t cap =
      sodium_base64_ENCODED_LEN(bd->len, sodium_base64_VARIANT_ORIGINAL);
  char *buf = xmalloc(cap);
  if (!buf)
    return nomem(c);
  sodium_bin2base64(buf, cap, bd->data, bd->len,
                    sodium_base64_VARIANT_ORIGINAL);
  *out = json_stringn_nocheck(buf, strlen(buf));
  free(buf);
  return *out ? 0 : nomem(c);
}

static int emit_value(ctx *c, const ProtobufCFieldDescriptor *f,
                      const void *mem, json_t **out) {
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
    const ProtobufCEnumValue *ev =
        protobuf_c_enum_descriptor_get_value(f->descriptor, e);
    v = ev ? json_string_nocheck(ev->name) : json_integer(e);
    break;
  }
  case PROTOBUF_C_TYPE_STRING: {
    const char *s = *(const char *const *)mem;
    if (!s)
      return fail(c, CL_EMALFORMED, "NULL string");
    size_t n = strlen(s);
    if (!utf8_valid(s, n))
      return fail(c, CL_EMALFORMED, "invalid UTF-8 in string");
    v = json_stringn_nocheck(s, n);
    break;
  }
  case PROTOBUF_C_TYPE_BYTES:
    return emit_bytes(c, mem, out);
  case PROTOBUF_C_TYPE_MESSAGE: {
    const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)mem;
    if (!sub)
      return fail(c, CL_EMALFORMED, "NULL message");
    return emit_message(c, sub, out);
  }
  default:
    return fail(c, CL_EINVAL, "unsupported field type %d", (int)f->type);
  }
  if (!v)
    return nomem(c);
  *out = v;
  return 0;
}

static int emit_repeated(ctx *c, const ProtobufCMessage *m,
                         const ProtobufCFieldDescriptor *f, json_t **out) {
  size_t n = *(const size_t *)cmember(m, f->quantifier_offset);
  const char *arr = *(const char *const *)cmember(m, f->offset);
  size_t es = value_size(f->type);
  if (!arr)
    return fail(c, CL_EMALFORMED, "NULL array with %zu elements", n);
  if (es == 0)
    return fail(c, CL_EINVAL, "unsupported field type %d", (int)f->type);
  json_t *a = json_array();
  if (!a)
    return nomem(c);
  for (size_t i = 0; i < n; i++) {
    json_t *v = NULL;
    size_t old = push_index(c, i);
    int rc = emit_value(c, f, arr + i * es, &v);
    pop(c, old);
    if (rc) {
      json_decref(a);
      return rc;
    }
    if (json_array_append_new(a, v) != 0) {
      json_decref(a);
      return nomem(c);
    }
  }
  *out = a;
  return 0;
}

static int emit_timestamp(ctx *c, const ProtobufCMessage *m,
                          const ts_fields *tf, json_t **out) {
  char buf[48];
  if (!rfc3339_format(*(const int64_t *)cmember(m, tf->seconds->offset),
                      *(const int32_t *)cmember(m, tf->nanos->offset), buf,
                      sizeof buf))
    return fail(c, CL_EMALFORMED, "timestamp out of range");
  *out = json_string_nocheck(buf);
  return *out ? 0 : nomem(c);
}

static int emit_message(ctx *c, const ProtobufCMessage *m, json_t **out) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  if (!valid_desc(d))
    return fail(c, CL_EMALFORMED, "message without a valid descriptor");
  ts_fields tf;
  if (is_timestamp(d, &tf))
    return emit_timestamp(c, m, &tf, out);
  if (c->depth >= CL_PBJSON_MAX_DEPTH)
    return fail(c, CL_EMALFORMED, "too deeply nested");
  json_t *o = json_object();
  if (!o)
    return nomem(c);
  c->depth++;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    if (!is_present(m, f))
      continue;
    char small[128], *key = small;
    size_t klen = camel_len(f->name);
    if (klen >= sizeof small && !(key = xmalloc(klen + 1))) {
      json_decref(o);
      return nomem(c);
    }
    camel_write(f->name, key, klen + 1);
    size_t old = push_key(c, key, klen);
    json_t *v = NULL;
    int rc = f->label == PROTOBUF_C_LABEL_REPEATED
                 ? emit_repeated(c, m, f, &v)
                 : emit_value(c, f, cmember(m, f->offset), &v);
    pop(c, old);
    if (rc == 0 && json_object_set_new_nocheck(o, key, v) != 0)
      rc = nomem(c);
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
  if (!msg || !valid_desc(msg->descriptor) || !out)
    return cl_err_set(err, CL_EINVAL, "pbjson: invalid argument");
  ctx c = {.err = err};
  json_t *j = NULL;
  int rc = emit_message(&c, msg, &j);
  if (rc)
    return rc;
  *out = j;
  return 0;
}

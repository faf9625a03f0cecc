/* JSON text to a jansson tree, in one pass over the bytes; see fj_parse.h.
 * Each rule below is jansson 2.14's (load.c, utf8.c), so that the verdicts
 * and the trees are the same. */
#include "query/fhir/fj_parse.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/err.h"

typedef struct {
  const unsigned char *start, *p, *end;
  size_t flags;
  json_error_t *err;
  char *buf; /* an escaped string's decoded bytes */
  size_t cap;
} parser;

static json_t *fail(parser *s, const unsigned char *at, const char *fmt, ...) CL_PRINTF(3, 4);
static json_t *fail(parser *s, const unsigned char *at, const char *fmt, ...) {
  if (s->err == NULL)
    return NULL;
  json_error_t *e = s->err;
  memset(e, 0, sizeof *e);
  int line = 1;
  const unsigned char *bol = s->start;
  for (const unsigned char *q = s->start; q < at; q++)
    if (*q == '\n') {
      line++;
      bol = q + 1;
    }
  e->line = line;
  e->column = (int)(at - bol) + 1;
  e->position = (int)(at - s->start);
  snprintf(e->source, sizeof e->source, "<buffer>");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->text, sizeof e->text, fmt, ap);
  va_end(ap);
  return NULL;
}

static void skip_ws(parser *s) {
  while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
    s->p++;
}

/* The length of the valid UTF-8 sequence at p (2..4), 0 if there is none
 * (jansson's utf8_check_first and utf8_check_full). */
static size_t utf8_len(const unsigned char *p, const unsigned char *end) {
  unsigned u = p[0];
  size_t n;
  uint32_t v;
  if (u >= 0xC2 && u <= 0xDF)
    n = 2, v = u & 0x1F;
  else if (u >= 0xE0 && u <= 0xEF)
    n = 3, v = u & 0x0F;
  else if (u >= 0xF0 && u <= 0xF4)
    n = 4, v = u & 0x07;
  else
    return 0;
  if ((size_t)(end - p) < n)
    return 0;
  for (size_t i = 1; i < n; i++) {
    if (p[i] < 0x80 || p[i] > 0xBF)
      return 0;
    v = (v << 6) | (p[i] & 0x3F);
  }
  if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || (n == 2 && v < 0x80) ||
      (n == 3 && v < 0x800) || (n == 4 && v < 0x10000))
    return 0;
  return n;
}

static int put(parser *s, size_t *n, const void *b, size_t k) {
  if (*n + k > s->cap) {
    size_t nc = s->cap ? s->cap : 256;
    while (nc < *n + k)
      nc *= 2;
    char *nb = realloc(s->buf, nc);
    if (nb == NULL)
      return -1;
    s->buf = nb;
    s->cap = nc;
  }
  memcpy(s->buf + *n, b, k);
  *n += k;
  return 0;
}

static int32_t hex4(const unsigned char *p, const unsigned char *end) {
  if (end - p < 4)
    return -1;
  int32_t v = 0;
  for (int i = 0; i < 4; i++) {
    unsigned c = p[i];
    int d = c >= '0' && c <= '9'   ? (int)(c - '0')
            : c >= 'a' && c <= 'f' ? (int)(c - 'a' + 10)
            : c >= 'A' && c <= 'F' ? (int)(c - 'A' + 10)
                                   : -1;
    if (d < 0)
      return -1;
    v = v << 4 | d;
  }
  return v;
}

/* The string whose opening quote s->p is past: *out and *len are its bytes
 * (in the input, or in s->buf when it had escapes); s->p ends past the
 * closing quote. -1: refused (err set) or out of memory. */
static int string(parser *s, const char **out, size_t *len) {
  const unsigned char *from = s->p, *p = s->p, *end = s->end;
  int escaped = 0;
  for (;;) { /* where it ends, and whether it is valid */
    if (p >= end)
      return fail(s, p, "premature end of input in a string"), -1;
    unsigned c = *p;
    if (c == '"')
      break;
    if (c < 0x20)
      return fail(s, p, "control character 0x%x in a string", c), -1;
    if (c == '\\') {
      escaped = 1;
      if (p + 1 >= end)
        return fail(s, p, "premature end of input in a string"), -1;
      unsigned e = p[1];
      if (e == 'u') {
        if (hex4(p + 2, end) < 0)
          return fail(s, p, "invalid escape"), -1;
        p += 6;
      } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' ||
                 e == 'r' || e == 't') {
        p += 2;
      } else {
        return fail(s, p, "invalid escape"), -1;
      }
    } else if (c < 0x80) {
      p++;
    } else {
      size_t k = utf8_len(p, end);
      if (k == 0)
        return fail(s, p, "invalid UTF-8 byte 0x%x", c), -1;
      p += k;
    }
  }
  s->p = p + 1;
  if (!escaped) {
    *out = (const char *)from;
    *len = (size_t)(p - from);
    return 0;
  }
  size_t n = 0; /* decode */
  for (const unsigned char *q = from; q < p;) {
    const unsigned char *run = q;
    while (q < p && *q != '\\')
      q++;
    if (q > run && put(s, &n, run, (size_t)(q - run)))
      return fail(s, q, "out of memory"), -1;
    if (q >= p)
      break;
    unsigned e = q[1];
    char c = 0;
    if (e != 'u') {
      c = e == 'b' ? '\b' : e == 'f' ? '\f' : e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' : (char)e;
      if (put(s, &n, &c, 1))
        return fail(s, q, "out of memory"), -1;
      q += 2;
      continue;
    }
    int32_t v = hex4(q + 2, p);
    const unsigned char *at = q;
    q += 6;
    if (v >= 0xD800 && v <= 0xDBFF) { /* a surrogate pair, or nothing */
      int32_t lo = q + 1 < p && q[0] == '\\' && q[1] == 'u' ? hex4(q + 2, p) : -1;
      if (lo < 0xDC00 || lo > 0xDFFF)
        return fail(s, at, "invalid Unicode: a lone high surrogate \\u%04X", (unsigned)v), -1;
      v = ((v - 0xD800) << 10) + (lo - 0xDC00) + 0x10000;
      q += 6;
    } else if (v >= 0xDC00 && v <= 0xDFFF) {
      return fail(s, at, "invalid Unicode: a lone low surrogate \\u%04X", (unsigned)v), -1;
    } else if (v == 0) {
      return fail(s, at, "\\u0000 is not allowed"), -1;
    }
    unsigned char u[4];
    size_t k;
    if (v < 0x80)
      u[0] = (unsigned char)v, k = 1;
    else if (v < 0x800)
      u[0] = (unsigned char)(0xC0 | v >> 6), u[1] = (unsigned char)(0x80 | (v & 0x3F)), k = 2;
    else if (v < 0x10000)
      u[0] = (unsigned char)(0xE0 | v >> 12), u[1] = (unsigned char)(0x80 | (v >> 6 & 0x3F)),
      u[2] = (unsigned char)(0x80 | (v & 0x3F)), k = 3;
    else
      u[0] = (unsigned char)(0xF0 | v >> 18), u[1] = (unsigned char)(0x80 | (v >> 12 & 0x3F)),
      u[2] = (unsigned char)(0x80 | (v >> 6 & 0x3F)), u[3] = (unsigned char)(0x80 | (v & 0x3F)),
      k = 4;
    if (put(s, &n, u, k))
      return fail(s, at, "out of memory"), -1;
  }
  *out = n ? s->buf : "";
  *len = n;
  return 0;
}

static json_t *number(parser *s) {
  const unsigned char *from = s->p, *p = s->p, *end = s->end;
  int real = 0;
  if (p < end && *p == '-')
    p++;
  if (p < end && *p == '0') {
    p++;
    if (p < end && *p >= '0' && *p <= '9')
      return fail(s, from, "invalid number: a leading zero");
  } else if (p < end && *p >= '1' && *p <= '9') {
    while (p < end && *p >= '0' && *p <= '9')
      p++;
  } else {
    return fail(s, from, "invalid token");
  }
  if (p < end && *p == '.') {
    real = 1;
    p++;
    if (p >= end || *p < '0' || *p > '9')
      return fail(s, from, "invalid number: no digit after '.'");
    while (p < end && *p >= '0' && *p <= '9')
      p++;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    real = 1;
    p++;
    if (p < end && (*p == '+' || *p == '-'))
      p++;
    if (p >= end || *p < '0' || *p > '9')
      return fail(s, from, "invalid number: no digit in the exponent");
    while (p < end && *p >= '0' && *p <= '9')
      p++;
  }
  size_t n = (size_t)(p - from);
  char small[64], *t = n < sizeof small ? small : malloc(n + 1);
  if (t == NULL)
    return fail(s, from, "out of memory");
  memcpy(t, from, n);
  t[n] = '\0';
  json_t *v = NULL;
  errno = 0;
  if (!real) {
    long long i = strtoll(t, NULL, 10);
    if (errno == ERANGE)
      fail(s, from, i < 0 ? "too big negative integer" : "too big integer");
    else if ((v = json_integer((json_int_t)i)) == NULL)
      fail(s, from, "out of memory");
  } else {
    double d = strtod(t, NULL);
    if (errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL))
      fail(s, from, "real number overflow");
    else if ((v = json_real(d)) == NULL)
      fail(s, from, "out of memory");
  }
  if (t != small)
    free(t);
  s->p = p;
  return v;
}

static int literal(parser *s, const char *word, size_t n) {
  return (size_t)(s->end - s->p) >= n && memcmp(s->p, word, n) == 0 ? (s->p += n, 1) : 0;
}

/* Past the whitespace at s->p: 1 and the byte consumed if it is c. */
static int eat(parser *s, unsigned char c) {
  skip_ws(s);
  if (s->p < s->end && *s->p == c) {
    s->p++;
    return 1;
  }
  return 0;
}

static json_t *value(parser *s, int depth);

/* The object whose '{' is at s->p; its members `depth` + 1 deep. */
static json_t *object(parser *s, int depth) {
  json_t *o = json_object();
  if (o == NULL)
    return fail(s, s->p, "out of memory");
  s->p++;
  if (eat(s, '}'))
    return o;
  for (;;) {
    skip_ws(s);
    if (s->p >= s->end || *s->p != '"') {
      fail(s, s->p, "a string key expected");
      break;
    }
    const unsigned char *kat = s->p++;
    const char *k;
    size_t kl;
    if (string(s, &k, &kl))
      break;
    char *kcopy = NULL; /* an escaped key lives in s->buf, which the value reuses */
    if (k == s->buf && (kcopy = malloc(kl)) == NULL) {
      fail(s, kat, "out of memory");
      break;
    }
    if (kcopy != NULL)
      k = memcpy(kcopy, k, kl);
    json_t *v = NULL;
    if ((s->flags & JSON_REJECT_DUPLICATES) && json_object_getn(o, k, kl) != NULL)
      fail(s, kat, "duplicate object key");
    else if (!eat(s, ':'))
      fail(s, s->p, "':' expected");
    else if ((skip_ws(s), v = value(s, depth + 1)) != NULL &&
             json_object_setn_new_nocheck(o, k, kl, v) != 0)
      v = fail(s, kat, "out of memory"); /* setn took v, also failing */
    free(kcopy);
    if (v == NULL)
      break;
    if (eat(s, ','))
      continue;
    if (eat(s, '}'))
      return o;
    fail(s, s->p, "',' or '}' expected");
    break;
  }
  json_decref(o);
  return NULL;
}

/* The array whose '[' is at s->p; its elements `depth` + 1 deep. */
static json_t *array(parser *s, int depth) {
  json_t *a = json_array();
  if (a == NULL)
    return fail(s, s->p, "out of memory");
  s->p++;
  if (eat(s, ']'))
    return a;
  for (;;) {
    skip_ws(s);
    const unsigned char *vat = s->p;
    json_t *v = value(s, depth + 1);
    if (v == NULL)
      break;
    if (json_array_append_new(a, v) != 0) { /* took v, also failing */
      fail(s, vat, "out of memory");
      break;
    }
    if (eat(s, ','))
      continue;
    if (eat(s, ']'))
      return a;
    fail(s, s->p, "',' or ']' expected");
    break;
  }
  json_decref(a);
  return NULL;
}

/* The value at s->p (whitespace skipped before it), `depth` containers
 * and itself deep. */
static json_t *value(parser *s, int depth) {
  if (depth > JSON_PARSER_MAX_DEPTH)
    return fail(s, s->p, "maximum parsing depth reached");
  if (s->p >= s->end)
    return fail(s, s->p, "premature end of input");
  const unsigned char *at = s->p;
  switch (*s->p) {
  case '{':
    return object(s, depth);
  case '[':
    return array(s, depth);
  case '"': {
    s->p++;
    const char *v;
    size_t n;
    if (string(s, &v, &n))
      return NULL;
    json_t *j = json_stringn_nocheck(v, n);
    return j != NULL ? j : fail(s, at, "out of memory");
  }
  case 't':
    return literal(s, "true", 4) ? json_true() : fail(s, at, "invalid token");
  case 'f':
    return literal(s, "false", 5) ? json_false() : fail(s, at, "invalid token");
  case 'n':
    return literal(s, "null", 4) ? json_null() : fail(s, at, "invalid token");
  default:
    if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
      return number(s);
    return fail(s, at, *s->p >= 0x80 ? "invalid token (byte 0x%x)" : "invalid token '%c'",
                *s->p);
  }
}

json_t *fj_parse(const char *p, size_t n, size_t flags, json_error_t *err) {
  if (p == NULL || (flags & ~(size_t)(JSON_REJECT_DUPLICATES | JSON_DECODE_ANY)))
    return json_loadb(p, n, flags, err);
  parser s = {.start = (const unsigned char *)p,
              .p = (const unsigned char *)p,
              .end = (const unsigned char *)p + n,
              .flags = flags,
              .err = err};
  skip_ws(&s);
  json_t *v = NULL;
  if (!(flags & JSON_DECODE_ANY) && (s.p >= s.end || (*s.p != '{' && *s.p != '[')))
    fail(&s, s.p, "'[' or '{' expected");
  else if ((v = value(&s, 1)) != NULL) {
    skip_ws(&s);
    if (s.p < s.end) {
      json_decref(v);
      v = fail(&s, s.p, "end of file expected");
    }
  }
  free(s.buf);
  return v;
}

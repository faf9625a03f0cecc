/* FHIR R4 JSON, serializing (fj.h): the stored form's writer (fj_dump,
 * fj_buf) and the wire form (fj_finish). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/fhir/fj.h"

/* ---- a compact writer, byte for byte jansson's JSON_COMPACT
 * output (members in insertion order; '"', '\\' and control characters
 * escaped as jansson escapes them; UTF-8 as is), without its per-call
 * allocations: the fold dumps every resource it stores. The buffer is the
 * public fj_buf, so the fold can also write JSON without a jansson tree. */

typedef fj_buf wbuf;

/* Makes room for `need` more bytes (w->oom when there is none). */
static void wgrow(wbuf *w, size_t need) {
  if (w->oom || w->n + need <= w->cap)
    return;
  size_t cap = w->cap ? w->cap : 1024;
  while (cap < w->n + need)
    cap *= 2;
  char *p = malloc(cap); /* not realloc: what the old block held is wiped */
  if (p == NULL) {
    w->oom = 1;
    return;
  }
  if (w->p != NULL) {
    memcpy(p, w->p, w->n);
    sodium_memzero(w->p, w->cap);
    free(w->p);
  }
  w->p = p;
  w->cap = cap;
}

/* 1 when there is room for `need` more bytes: the check inline, the
 * growing not (every member and string the writer puts passes here). */
static inline int wroom(wbuf *w, size_t need) {
  if (w->n + need > w->cap)
    wgrow(w, need);
  return !w->oom;
}

static inline void wput(wbuf *w, const char *s, size_t n) {
  if (wroom(w, n)) {
    memcpy(w->p + w->n, s, n);
    w->n += n;
  }
}

/* The length of s's longest prefix (of n bytes) JSON writes as it is:
 * no '"', no '\\', no control character. Eight bytes at a time: a byte
 * below 0x20, or equal to '"' or '\\', sets the high bit of its lane
 * (the "has a byte less than" and "has a zero byte" tests of Bit Twiddling
 * Hacks; a lane of 0x80 or more never does). */
static size_t plain_run(const char *s, size_t n) {
  const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x;
    memcpy(&x, s + i, 8);
    uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
    uint64_t hit = ((x - ones * 0x20) | (q - ones) | (b - ones)) & ~x & highs;
    if (hit)
      break;
  }
  for (; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == '"' || c == '\\')
      break;
  }
  return i;
}

static void wstr(wbuf *w, const char *s, size_t n) {
  static const char hex[] = "0123456789ABCDEF"; /* jansson's case */
  size_t run = plain_run(s, n);
  if (!wroom(w, run + 2))
    return;
  w->p[w->n++] = '"';
  memcpy(w->p + w->n, s, run);
  w->n += run;
  for (size_t i = run; i < n;) { /* the rest: escapes, and the runs between them */
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\') {
      size_t r = plain_run(s + i, n - i);
      wput(w, s + i, r);
      i += r;
      continue;
    }
    i++;
    char esc[6];
    size_t el = 2;
    esc[0] = '\\';
    switch (c) {
    case '"':
      esc[1] = '"';
      break;
    case '\\':
      esc[1] = '\\';
      break;
    case '\b':
      esc[1] = 'b';
      break;
    case '\f':
      esc[1] = 'f';
      break;
    case '\n':
      esc[1] = 'n';
      break;
    case '\r':
      esc[1] = 'r';
      break;
    case '\t':
      esc[1] = 't';
      break;
    default:
      esc[1] = 'u';
      esc[2] = '0';
      esc[3] = '0';
      esc[4] = hex[c >> 4];
      esc[5] = hex[c & 15];
      el = 6;
    }
    wput(w, esc, el);
  }
  wput(w, "\"", 1);
}

static void wvalue(wbuf *w, const json_t *v, int depth) {
  if (depth > 2048) {
    w->oom = 1;
    return;
  }
  switch (json_typeof(v)) {
  case JSON_OBJECT: {
    wput(w, "{", 1);
    const char *k;
    json_t *x;
    int first = 1;
    json_object_foreach((json_t *)v, k, x) {
      if (!first)
        wput(w, ",", 1);
      first = 0;
      wstr(w, k, strlen(k));
      wput(w, ":", 1);
      wvalue(w, x, depth + 1);
    }
    wput(w, "}", 1);
    break;
  }
  case JSON_ARRAY:
    wput(w, "[", 1);
    for (size_t i = 0; i < json_array_size(v); i++) {
      if (i)
        wput(w, ",", 1);
      wvalue(w, json_array_get(v, i), depth + 1);
    }
    wput(w, "]", 1);
    break;
  case JSON_STRING:
    wstr(w, json_string_value(v), json_string_length(v));
    break;
  case JSON_INTEGER: {
    char b[32];
    int n = snprintf(b, sizeof b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    wput(w, b, (size_t)n);
    break;
  }
  case JSON_TRUE:
    wput(w, "true", 4);
    break;
  case JSON_FALSE:
    wput(w, "false", 5);
    break;
  case JSON_NULL:
    wput(w, "null", 4);
    break;
  case JSON_REAL: { /* not built here (decimals are marked strings): jansson's form */
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    if (s == NULL)
      w->oom = 1;
    else
      wput(w, s, strlen(s));
    free(s);
    break;
  }
  }
}

void fj_buf_raw(fj_buf *b, const void *s, size_t n) { wput(b, s, n); }

void fj_buf_str(fj_buf *b, const char *s, size_t n) { wstr(b, s, n); }

void fj_buf_value(fj_buf *b, const json_t *v) { wvalue(b, v, 0); }

char *fj_buf_room(fj_buf *b, size_t n) {
  wgrow(b, n ? n : 1);
  return b->oom ? NULL : b->p + b->n;
}

void fj_buf_u64(fj_buf *b, uint64_t v) {
  char d[24];
  size_t i = sizeof d;
  do
    d[--i] = (char)('0' + v % 10);
  while ((v /= 10) != 0);
  wput(b, d + i, sizeof d - i);
}

void fj_buf_wipe(fj_buf *b) {
  if (b->p != NULL)
    sodium_memzero(b->p, b->n);
  b->n = 0;
  b->oom = 0;
}

void fj_buf_free(fj_buf *b) {
  if (b->p != NULL)
    sodium_memzero(b->p, b->cap);
  free(b->p);
  memset(b, 0, sizeof *b);
}

/* jansson's rule (utf.c): well-formed UTF-8, no overlong forms, no
 * surrogates, nothing above U+10FFFF. */
int fj_utf8_ok(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s, *end = p + n;
  while (p < end) {
    unsigned c = *p;
    if (c < 0x80) {
      p++;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return 0;
    }
    if ((size_t)(end - p) < len)
      return 0;
    for (size_t i = 1; i < len; i++) {
      if ((p[i] & 0xC0) != 0x80)
        return 0;
      cp = cp << 6 | (p[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return 0;
    p += len;
  }
  return 1;
}

char *fj_dump(const json_t *res, size_t *len) {
  wbuf w = {0};
  wvalue(&w, res, 0);
  wput(&w, "", 1); /* the NUL */
  if (w.oom) {
    free(w.p);
    return NULL;
  }
  if (len != NULL)
    *len = w.n - 1;
  return w.p;
}

char *fj_finish(const char *stored, size_t n, size_t *len) {
  static const char mark[] = "\"\\u0001";
  char *out = malloc(n + 1);
  if (out == NULL)
    return NULL;
  size_t o = 0, i = 0;
  while (i < n) {
    if (stored[i] == '"' && n - i >= sizeof mark - 1 &&
        memcmp(stored + i, mark, sizeof mark - 1) == 0) {
      i += sizeof mark - 1;
      while (i < n && stored[i] != '"') /* digits, '.', '-', 'e', '+' only */
        out[o++] = stored[i++];
      i++; /* the closing quote */
      continue;
    }
    if (stored[i] == '"') { /* copy a whole string, minding escapes */
      out[o++] = stored[i++];
      while (i < n && stored[i] != '"') {
        if (stored[i] == '\\' && i + 1 < n)
          out[o++] = stored[i++];
        out[o++] = stored[i++];
      }
      if (i < n)
        out[o++] = stored[i++];
      continue;
    }
    out[o++] = stored[i++];
  }
  out[o] = '\0';
  if (len != NULL)
    *len = o;
  return out;
}

/* Text handling for adapters/hl7v2: the per-message arena, escape sequence
 * decoding and character set conversion of values, escaping of values for
 * output (the ACK builder), and the version and character set tables.
 *
 * Invariants: a decoded value is UTF-8 without NUL, NUL-terminated, in the
 * arena; escaping for output never emits a delimiter, CR or LF unescaped. */
#include <stdalign.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "adapters/hl7v2/hl7_int.h"
#include "store/alloc.h"

/* ---- arena ---- */

struct hl7_chunk {
  hl7_chunk *next;
  alignas(16) unsigned char data[];
};

#define CHUNK_MIN (64u * 1024)
#define ALIGN 16u

void *hl7_arena_alloc(hl7_arena *a, size_t n) {
  if (n > SIZE_MAX / 2)
    return NULL;
  size_t need = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
  if (need == 0)
    need = ALIGN;
  if (!a->head || a->cap - a->used < need) {
    size_t cap = need > CHUNK_MIN ? need : CHUNK_MIN;
    hl7_chunk *c = cl_malloc(sizeof *c + cap);
    if (!c)
      return NULL;
    c->next = a->head;
    a->head = c;
    a->used = 0;
    a->cap = cap;
  }
  void *p = a->head->data + a->used;
  a->used += need;
  memset(p, 0, n);
  return p;
}

void hl7_arena_free(hl7_arena *a) {
  for (hl7_chunk *c = a->head, *next; c; c = next) {
    next = c->next;
    cl_free(c);
  }
  a->head = NULL;
  a->used = a->cap = 0;
}

/* ---- UTF-8 ---- */

size_t hl7_utf8_len(const unsigned char *p, size_t n) {
  if (n == 0)
    return 0;
  unsigned c = p[0];
  if (c < 0x80)
    return 1;
  size_t len;
  unsigned min;
  if (c >= 0xC2 && c <= 0xDF)
    len = 2, min = 0x80;
  else if (c >= 0xE0 && c <= 0xEF)
    len = 3, min = 0x800;
  else if (c >= 0xF0 && c <= 0xF4)
    len = 4, min = 0x10000;
  else
    return 0;
  if (n < len)
    return 0;
  unsigned cp = c & (0x3Fu >> (len - 1));
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xC0) != 0x80)
      return 0;
    cp = (cp << 6) | (p[i] & 0x3Fu);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return len;
}

/* ---- decoding ---- */

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

/* Is e[0..n) (the text between two escape characters) a formatting
 * command of chapter 2.7.6, e.g. ".br", ".sp3", ".in+4"? */
static int formatting(const char *e, size_t n) {
  static const char *const cmds[] = {".br", ".sp", ".fi", ".nf", ".in", ".ti", ".sk", ".ce"};
  if (n < 3)
    return 0;
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
    if (memcmp(e, cmds[i], 3) != 0)
      continue;
    size_t k = 3;
    if (k < n && (e[k] == '+' || e[k] == '-'))
      k++;
    while (k < n && e[k] >= '0' && e[k] <= '9')
      k++;
    return k == n;
  }
  return 0;
}

/* why = pre 'quoted a' post */
static int fail(size_t *bad, size_t at, char *why, size_t whysz, const char *pre, const char *a,
                size_t an, const char *post) {
  char q[48];
  hl7_quote(q, sizeof q, a, an);
  *bad = at;
  snprintf(why, whysz, "%s'%s'%s", pre, q, post);
  return CL_EMALFORMED;
}

/* The escape letters of the delimiters, in the order of delimiter(). */
#define ESCAPE_LETTERS "FSTREP"

/* The character \<letter>\ stands for; 0 if none (P without a truncation
 * character, or not a delimiter letter). */
static char delimiter(const cl_hl7_enc *enc, char letter) {
  const char *k = letter ? strchr(ESCAPE_LETTERS, letter) : NULL;
  if (!k)
    return 0;
  const char d[] = {enc->field, enc->comp, enc->sub, enc->rep, enc->esc, enc->trunc};
  return d[k - ESCAPE_LETTERS];
}

/* Resolves escapes of r[0..n) into dst (room for n bytes); bytes stay in
 * the message's character set. */
static int unescape(const cl_hl7_enc *enc, const char *r, size_t n, char *dst, size_t *dn,
                    size_t *bad, char *why, size_t whysz) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (r[i] != enc->esc) {
      dst[o++] = r[i];
      continue;
    }
    const char *close = memchr(r + i + 1, enc->esc, n - i - 1);
    if (!close)
      return fail(bad, i, why, whysz, "unterminated escape sequence ", r + i, n - i, "");
    const char *e = r + i + 1;
    size_t en = (size_t)(close - e), whole = en + 2;
    if (en == 0)
      return fail(bad, i, why, whysz, "empty escape sequence ", r + i, 2, "");
    char d = 0;
    if (en == 1) {
      if (!e[0] || !strchr(ESCAPE_LETTERS "HN", e[0]))
        return fail(bad, i, why, whysz, "unknown escape sequence ", r + i, whole, "");
      d = delimiter(enc, e[0]); /* 0 for H, N, and P without a truncation character */
      if (d) {
        dst[o++] = d;
        i += whole - 1;
        continue;
      }
      if (e[0] == 'P')
        return fail(bad, i, why, whysz, "escape ", r + i, whole,
                    " but MSH-2 declares no truncation character");
    } else if (e[0] == 'X') {
      size_t hx = en - 1;
      if (hx == 0 || hx % 2 != 0)
        return fail(bad, i, why, whysz, "hex escape ", r + i, whole,
                    " needs an even number of hex digits");
      for (size_t k = 0; k < hx; k += 2) {
        int hi = hexval(e[1 + k]), lo = hexval(e[2 + k]);
        if (hi < 0 || lo < 0)
          return fail(bad, i, why, whysz, "hex escape ", r + i, whole, " has a non-hex digit");
        if (hi == 0 && lo == 0)
          return fail(bad, i, why, whysz, "hex escape ", r + i, whole, " spells a NUL byte");
        dst[o++] = (char)(hi * 16 + lo);
      }
      i += whole - 1;
      continue;
    } else if (e[0] != 'C' && e[0] != 'M' && e[0] != 'Z' && !formatting(e, en)) {
      return fail(bad, i, why, whysz, "unknown escape sequence ", r + i, whole, "");
    }
    /* passed through verbatim: highlighting, character set, local, formatting */
    memcpy(dst + o, r + i, whole);
    o += whole;
    i += whole - 1;
  }
  *dn = o;
  return 0;
}

int hl7_decode(hl7_arena *a, const cl_hl7_enc *enc, int cs, const char *r, size_t n,
               const char **out, size_t *outn, size_t *bad, char *why, size_t whysz) {
  const char *src = r;
  size_t sn = n;
  int escaped = memchr(r, enc->esc, n) != NULL;
  if (escaped) {
    char *tmp = hl7_arena_alloc(a, n + 1);
    if (!tmp)
      return CL_ENOMEM;
    int rc = unescape(enc, r, n, tmp, &sn, bad, why, whysz);
    if (rc != 0)
      return rc;
    src = tmp;
  }
  /* offsets below are exact only without escapes: point at the value start otherwise */
  const unsigned char *u = (const unsigned char *)src;
  size_t high = 0;
  for (size_t i = 0; i < sn; i++) {
    if (u[i] < 0x80)
      continue;
    high++;
    if (cs == HL7_CS_ASCII)
      return fail(bad, escaped ? 0 : i, why, whysz, "byte ", src + i, 1, " is not ASCII (MSH-18)");
    if (cs == HL7_CS_UTF8) {
      size_t l = hl7_utf8_len(u + i, sn - i);
      if (l == 0)
        return fail(bad, escaped ? 0 : i, why, whysz, "invalid UTF-8 at ", src + i,
                    sn - i < 4 ? sn - i : 4, "");
      i += l - 1;
    }
  }
  if (cs != HL7_CS_LATIN1)
    high = 0;
  if (sn + high > SIZE_MAX - 1)
    return CL_ENOMEM;
  char *v = escaped && high == 0 ? (char *)src : hl7_arena_alloc(a, sn + high + 1);
  if (!v)
    return CL_ENOMEM;
  size_t o = 0;
  if (high == 0) {
    if (v != src)
      memcpy(v, src, sn);
    o = sn;
  } else {
    for (size_t i = 0; i < sn; i++) {
      if (u[i] < 0x80) {
        v[o++] = (char)u[i];
      } else {
        v[o++] = (char)(0xC0 | (u[i] >> 6));
        v[o++] = (char)(0x80 | (u[i] & 0x3F));
      }
    }
  }
  v[o] = '\0';
  *out = v;
  *outn = o;
  return 0;
}

/* ---- output ---- */

void hl7_buf_put(hl7_buf *b, const char *s, size_t n) {
  if (b->oom)
    return;
  if (b->cap - b->n < n + 1) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->n < n + 1) {
      if (cap > SIZE_MAX / 2) {
        b->oom = 1;
        return;
      }
      cap *= 2;
    }
    char *p = cl_realloc(b->p, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

void hl7_buf_puts(hl7_buf *b, const char *s) { hl7_buf_put(b, s, strlen(s)); }

void hl7_buf_putc(hl7_buf *b, char c) { hl7_buf_put(b, &c, 1); }

void hl7_buf_escaped(hl7_buf *b, const cl_hl7_enc *enc, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char c = s[i], e = 0;
    for (const char *k = ESCAPE_LETTERS; *k && !e; k++)
      if (c && c == delimiter(enc, *k))
        e = *k;
    if (e) {
      char seq[3] = {enc->esc, e, enc->esc};
      hl7_buf_put(b, seq, 3);
    } else if ((unsigned char)c < 0x20 && c != '\t') {
      char seq[6];
      snprintf(seq, sizeof seq, "%cX%02X", enc->esc, (unsigned char)c);
      hl7_buf_put(b, seq, 4);
      hl7_buf_putc(b, enc->esc);
    } else {
      hl7_buf_putc(b, c);
    }
  }
}

void hl7_quote(char *dst, size_t dstsz, const char *s, size_t n) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    size_t need = (c >= 0x20 && c < 0x7F) ? 1 : 4;
    if (o + need + 4 > dstsz) { /* room for "..." and NUL */
      if (o + 4 <= dstsz)
        memcpy(dst + o, "...", 3), o += 3;
      break;
    }
    if (need == 1)
      dst[o++] = (char)c;
    else
      o += (size_t)snprintf(dst + o, dstsz - o, "\\x%02X", c);
  }
  if (dstsz)
    dst[o < dstsz ? o : dstsz - 1] = '\0';
}

/* ---- tables ---- */

int hl7_version_supported(const char *v, size_t n) {
  static const char *const versions[] = {"2.3", "2.3.1", "2.4", "2.5",   "2.5.1", "2.6",
                                         "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2"};
  for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++)
    if (strlen(versions[i]) == n && memcmp(versions[i], v, n) == 0)
      return 1;
  return 0;
}

int hl7_charset_of(const char *v, size_t n) {
  static const struct {
    const char *name;
    int cs;
  } names[] = {{"ASCII", HL7_CS_ASCII},
               {"8859/1", HL7_CS_LATIN1},
               {"UNICODE UTF-8", HL7_CS_UTF8},
               {"UTF-8", HL7_CS_UTF8}};
  if (n == 0)
    return HL7_CS_SNIFF;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strlen(names[i].name) == n && strncasecmp(names[i].name, v, n) == 0)
      return names[i].cs;
  return -1;
}

const char *cl_hl7_code_text(int code) {
  switch (code) {
  case 0:
    return "Message accepted";
  case 100:
    return "Segment sequence error";
  case 101:
    return "Required field missing";
  case 102:
    return "Data type error";
  case 103:
    return "Table value not found";
  case 200:
    return "Unsupported message type";
  case 201:
    return "Unsupported event code";
  case 202:
    return "Unsupported processing id";
  case 203:
    return "Unsupported version id";
  case 204:
    return "Unknown key identifier";
  case 205:
    return "Duplicate key identifier";
  case 206:
    return "Application record locked";
  case 207:
    return "Application internal error";
  default:
    return "";
  }
}

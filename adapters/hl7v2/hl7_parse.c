/* The HL7 v2 parser (hl7.h): bytes to the tree of hl7_int.h, in four
 * phases over an arena copy of the input:
 *   A. encoding characters from MSH-1/MSH-2, segments split on CR/LF/CRLF,
 *      and every segment split into fields, repetitions, components and
 *      subcomponents (raw spans only; control characters refused here);
 *   B. MSH-12 (version) and MSH-18 (character set) read from raw MSH;
 *   C. every leaf decoded (escapes, character set) into UTF-8;
 *   D. required MSH fields checked and the header summary filled.
 * Every failure goes through perr(), which fills cl_hl7_error and cl_err
 * with the same location; the arena is freed on every error path. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "adapters/hl7v2/hl7_int.h"
#include "store/alloc.h"

typedef struct pctx {
  cl_hl7_msg *m;
  const char *buf; /* arena copy of the input */
  size_t n;
  cl_hl7_limits lim;
  size_t nodes;
  int lenient;
  cl_hl7_error *herr;
  cl_err *err;
} pctx;

/* an error location: seg NULL for "before any segment" */
typedef struct loc {
  const cl_hl7_seg *seg;
  uint32_t field, rep, comp, sub;
  size_t off;
} loc;

static uint32_t seq_of(const cl_hl7_msg *m, const cl_hl7_seg *s) {
  if (s->seq)
    return s->seq;
  uint32_t k = 1;
  for (const cl_hl7_seg *p = m->segs; p < s; p++)
    k += memcmp(p->id, s->id, 3) == 0;
  return k;
}

CL_PRINTF(5, 6)
static int perr(pctx *c, int rc, int code, loc l, const char *fmt, ...) {
  cl_hl7_error e;
  memset(&e, 0, sizeof e);
  e.code = code;
  e.offset = l.off;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e.reason, sizeof e.reason, fmt, ap);
  va_end(ap);
  char where[64] = "";
  if (l.seg && !l.seg->id[0]) { /* a line that is not a segment */
    e.seg_index = l.seg->index;
    cl_err_set(c->err, rc, "segment %u (byte %zu): %s", e.seg_index, e.offset, e.reason);
  } else if (l.seg) {
    memcpy(e.segment, l.seg->id, 4);
    e.seg_index = l.seg->index;
    e.seg_seq = seq_of(c->m, l.seg);
    e.field = l.field, e.rep = l.rep, e.comp = l.comp, e.sub = l.sub;
    int w = snprintf(where, sizeof where, "%s", e.segment);
    if (l.field)
      w += snprintf(where + w, sizeof where - (size_t)w, "-%u", l.field);
    if (l.field && l.rep > 1)
      w += snprintf(where + w, sizeof where - (size_t)w, "[%u]", l.rep);
    if (l.field && l.comp)
      w += snprintf(where + w, sizeof where - (size_t)w, ".%u", l.comp);
    if (l.field && l.comp && l.sub)
      snprintf(where + w, sizeof where - (size_t)w, ".%u", l.sub);
    cl_err_set(c->err, rc, "%s (segment %u, byte %zu): %s", where, e.seg_index, e.offset, e.reason);
  } else {
    cl_err_set(c->err, rc, "byte %zu: %s", e.offset, e.reason);
  }
  if (c->herr)
    *c->herr = e;
  return rc;
}

static int oom(pctx *c, loc l) { return perr(c, CL_ENOMEM, CL_HL7_INTERNAL, l, "out of memory"); }

/* ---- phase A ---- */

static int is_punct(unsigned char ch) {
  return ch > 0x20 && ch < 0x7F && !(ch >= '0' && ch <= '9') && !(ch >= 'A' && ch <= 'Z') &&
         !(ch >= 'a' && ch <= 'z');
}

/* Reads MSH-1/MSH-2 at c->buf[s..e) into m->hdr.enc. */
static int encoding(pctx *c, const cl_hl7_seg *msh, size_t s, size_t e) {
  cl_hl7_enc *enc = &c->m->hdr.enc;
  const char *b = c->buf;
  char q[16];
  if (e - s < 4 || !is_punct((unsigned char)b[s + 3])) {
    hl7_quote(q, sizeof q, b + s + 3, e - s > 3 ? 1 : 0);
    return perr(c, CL_EMALFORMED, CL_HL7_DATA_TYPE, (loc){msh, 1, 0, 0, 0, s + 3},
                "field separator '%s' is not a printable non-alphanumeric character", q);
  }
  enc->field = b[s + 3];
  size_t k = s + 4;
  while (k < e && b[k] != enc->field)
    k++;
  size_t len = k - (s + 4);
  const char *p = b + s + 4;
  hl7_quote(q, sizeof q, p, len);
  if (len != 4 && len != 5)
    return perr(c, CL_EMALFORMED, CL_HL7_DATA_TYPE, (loc){msh, 2, 0, 0, 0, s + 4},
                "encoding characters '%s' must be 4 (or, since v2.7, 5) characters", q);
  for (size_t i = 0; i < len; i++) {
    int dup = p[i] == enc->field;
    for (size_t j = 0; j < i; j++)
      dup |= p[j] == p[i];
    if (!is_punct((unsigned char)p[i]) || dup)
      return perr(c, CL_EMALFORMED, CL_HL7_DATA_TYPE, (loc){msh, 2, 0, 0, 0, s + 4 + i},
                  "encoding characters '%s': character %zu is not a distinct printable "
                  "non-alphanumeric character",
                  q, i + 1);
  }
  enc->comp = p[0], enc->rep = p[1], enc->esc = p[2], enc->sub = p[3];
  enc->trunc = len == 5 ? p[4] : 0;
  return 0;
}

/* Splits parent's raw text on `d` into parent->kids. */
static int split(pctx *c, hl7_node *parent, char d, loc l) {
  size_t k = 1;
  for (size_t i = 0; i < parent->rawlen; i++)
    k += parent->raw[i] == d;
  if (k > c->lim.max_nodes - c->nodes)
    return perr(c, CL_ETOOBIG, CL_HL7_INTERNAL, l,
                "more than %zu fields, repetitions, components and subcomponents",
                c->lim.max_nodes);
  c->nodes += k;
  hl7_node *kids = hl7_arena_alloc(&c->m->arena, k * sizeof *kids);
  if (!kids)
    return oom(c, l);
  size_t start = 0, j = 0;
  for (size_t i = 0; i <= parent->rawlen; i++) {
    if (i < parent->rawlen && parent->raw[i] != d)
      continue;
    kids[j].raw = parent->raw + start;
    kids[j].rawlen = i - start;
    kids[j].off = parent->off + start;
    j++;
    start = i + 1;
  }
  parent->kids = kids;
  parent->nkids = (uint32_t)k;
  return 0;
}

/* A leaf holding `val` literally (MSH-1, MSH-2): one rep, comp, sub. */
static int literal(pctx *c, hl7_node *f, loc l) {
  hl7_node *n = hl7_arena_alloc(&c->m->arena, 3 * sizeof *n);
  char *v = hl7_arena_alloc(&c->m->arena, f->rawlen + 1);
  if (!n || !v)
    return oom(c, l);
  memcpy(v, f->raw, f->rawlen);
  for (int i = 0; i < 3; i++) {
    n[i].raw = f->raw, n[i].rawlen = f->rawlen, n[i].off = f->off;
    n[i].nkids = i < 2 ? 1 : 0;
    n[i].kids = i < 2 ? &n[i + 1] : NULL;
  }
  n[2].val = v, n[2].vallen = f->rawlen, n[2].state = CL_HL7_VALUED;
  f->kids = n, f->nkids = 1;
  return 0;
}

static int split_field(pctx *c, cl_hl7_seg *s, uint32_t fno) {
  const cl_hl7_enc *enc = &c->m->hdr.enc;
  hl7_node *f = &s->node.kids[fno - 1];
  loc l = {s, fno, 0, 0, 0, f->off};
  if (f->rawlen > c->lim.max_field)
    return perr(c, CL_ETOOBIG, CL_HL7_DATA_TYPE, l, "field of %zu bytes exceeds the limit of %zu",
                f->rawlen, c->lim.max_field);
  if (strcmp(s->id, "MSH") == 0 && fno <= 2)
    return literal(c, f, l);
  int rc = split(c, f, enc->rep, l);
  for (uint32_t r = 0; rc == 0 && r < f->nkids; r++) {
    hl7_node *rep = &f->kids[r];
    l.rep = r + 1;
    rc = split(c, rep, enc->comp, l);
    for (uint32_t k = 0; rc == 0 && k < rep->nkids; k++)
      rc = split(c, &rep->kids[k], enc->sub, l);
  }
  return rc;
}

static int valid_id(const char *p, size_t n) {
  if (n < 3 || !(p[0] >= 'A' && p[0] <= 'Z'))
    return 0;
  for (int i = 1; i < 3; i++)
    if (!((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= '0' && p[i] <= '9')))
      return 0;
  return 1;
}

/* Builds segment s from c->buf[b..e) (a line without its terminator). */
static int build_segment(pctx *c, cl_hl7_seg *s, size_t b, size_t e, int first) {
  const char *p = c->buf + b;
  size_t n = e - b;
  char fs = c->m->hdr.enc.field;
  memcpy(s->id, p, n < 3 ? n : 3);
  loc l = {s, 0, 0, 0, 0, b};
  if (!valid_id(p, n) || (n > 3 && p[3] != fs)) {
    char q[16];
    hl7_quote(q, sizeof q, p, n < 4 ? n : 4);
    memset(s->id, 0, sizeof s->id);
    return perr(c, CL_EMALFORMED, CL_HL7_SEGMENT_SEQUENCE, l,
                "'%s' is not a segment id followed by the field separator", q);
  }
  int msh = memcmp(p, "MSH", 3) == 0;
  if (!first && msh) /* (the first one was checked by phase_a) */
    return perr(c, CL_EMALFORMED, CL_HL7_SEGMENT_SEQUENCE, l,
                "a second MSH: one message per parse (batches are not accepted here)");
  /* control characters: name the field they are in */
  uint32_t fno = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)p[i];
    if (ch == (unsigned char)fs)
      fno++;
    if (ch < 0x20 && ch != '\t') {
      l.field = msh ? (fno ? fno + 1 : 0) : fno;
      l.off = b + i;
      return perr(c, CL_EMALFORMED, CL_HL7_DATA_TYPE, l, "control character 0x%02X", ch);
    }
  }
  s->node.raw = p, s->node.rawlen = n, s->node.off = b;
  if (n <= 3)
    return 0;
  /* fields: for MSH, field 1 is the separator itself and field 2 runs to the next one */
  hl7_node fields = {.raw = p + 4, .rawlen = n - 4, .off = b + 4};
  int rc = split(c, &fields, fs, l);
  if (rc != 0)
    return rc;
  if (msh) {
    hl7_node *all = hl7_arena_alloc(&c->m->arena, (fields.nkids + 1) * sizeof *all);
    if (!all)
      return oom(c, l);
    all[0] = (hl7_node){.raw = p + 3, .rawlen = 1, .off = b + 3};
    memcpy(all + 1, fields.kids, fields.nkids * sizeof *all);
    fields.kids = all;
    fields.nkids++;
  }
  s->node.kids = fields.kids;
  s->node.nkids = fields.nkids;
  for (uint32_t f = 1; f <= s->node.nkids; f++)
    if ((rc = split_field(c, s, f)) != 0)
      return rc;
  return 0;
}

static int is_eol(char ch) { return ch == '\r' || ch == '\n'; }

/* Index of a valid segment id in [0, 36^3). */
static size_t id_slot(const char *id) {
  size_t k = 0;
  for (int i = 0; i < 3; i++)
    k = k * 36 + (size_t)(id[i] <= '9' ? id[i] - '0' : id[i] - 'A' + 10);
  return k;
}

static int assign_seq(pctx *c) {
  cl_hl7_msg *m = c->m;
  if (m->nsegs <= 64) {
    for (uint32_t i = 0; i < m->nsegs; i++)
      m->segs[i].seq = seq_of(m, &m->segs[i]);
    return 0;
  }
  uint32_t *count = cl_calloc(36 * 36 * 36, sizeof *count);
  if (!count)
    return oom(c, (loc){0});
  for (uint32_t i = 0; i < m->nsegs; i++)
    m->segs[i].seq = ++count[id_slot(m->segs[i].id)];
  cl_free(count);
  return 0;
}

static int phase_a(pctx *c) {
  size_t b = 0;
  if (c->n >= 3 && memcmp(c->buf, "\xEF\xBB\xBF", 3) == 0)
    b = 3;
  while (b < c->n && is_eol(c->buf[b]))
    b++;
  /* count the segments (non-empty lines) */
  size_t nsegs = 0;
  for (size_t i = b; i < c->n; i++)
    if (!is_eol(c->buf[i]) && (i == b || is_eol(c->buf[i - 1])))
      nsegs++;
  if (c->lenient && nsegs > 1)
    nsegs = 1;
  if (nsegs == 0)
    return perr(c, CL_EMALFORMED, CL_HL7_SEGMENT_SEQUENCE, (loc){0},
                "no segments: the message does not start with MSH");
  if (nsegs > c->lim.max_nodes)
    return perr(c, CL_ETOOBIG, CL_HL7_INTERNAL, (loc){0}, "more than %zu segments",
                c->lim.max_nodes);
  c->nodes = nsegs;
  c->m->segs = hl7_arena_alloc(&c->m->arena, nsegs * sizeof *c->m->segs);
  if (!c->m->segs)
    return oom(c, (loc){0});
  for (size_t i = b; i < c->n && c->m->nsegs < nsegs;) {
    if (is_eol(c->buf[i])) {
      i++;
      continue;
    }
    size_t e = i;
    while (e < c->n && !is_eol(c->buf[e]))
      e++;
    cl_hl7_seg *s = &c->m->segs[c->m->nsegs++];
    s->index = c->m->nsegs;
    if (s->index == 1) {
      memcpy(s->id, c->buf + i, e - i < 3 ? e - i : 3);
      if (e - i < 3 || memcmp(c->buf + i, "MSH", 3) != 0) {
        char q[16];
        hl7_quote(q, sizeof q, c->buf + i, e - i < 3 ? e - i : 3);
        memcpy(s->id, "MSH", 4);
        return perr(c, CL_EMALFORMED, CL_HL7_SEGMENT_SEQUENCE, (loc){s, 0, 0, 0, 0, i},
                    "the message does not start with MSH (found '%s')", q);
      }
      int rc = encoding(c, s, i, e);
      if (rc != 0)
        return rc;
    }
    int rc = build_segment(c, s, i, e, s->index == 1);
    if (rc != 0)
      return rc;
    i = e;
  }
  return assign_seq(c);
}

/* ---- phase B ---- */

static const hl7_node *raw_node(const cl_hl7_seg *s, uint32_t f) {
  if (f == 0 || f > s->node.nkids)
    return NULL;
  const hl7_node *n = &s->node.kids[f - 1];
  return n->nkids ? &n->kids[0] : NULL; /* first repetition */
}

/* The decoded first subcomponent of MSH-f.1 (as the header will report
 * it), read before the character set is known: escapes resolved, bytes
 * taken as 8859/1 (the names compared are ASCII). *leaf is NULL when the
 * field was not sent. */
static int msh_value(pctx *c, uint32_t f, const hl7_node **leaf, const char **v, size_t *n) {
  const hl7_node *rep = raw_node(&c->m->segs[0], f);
  *leaf = rep && rep->kids[0].nkids ? &rep->kids[0].kids[0] : NULL;
  *v = "";
  *n = 0;
  if (!*leaf || (*leaf)->rawlen == 0)
    return 0;
  size_t bad = 0;
  char why[120];
  int rc = hl7_decode(&c->m->arena, &c->m->hdr.enc, HL7_CS_LATIN1, (*leaf)->raw, (*leaf)->rawlen, v,
                      n, &bad, why, sizeof why);
  if (rc == CL_ENOMEM)
    return oom(c, (loc){0});
  if (rc != 0)
    return perr(c, rc, CL_HL7_DATA_TYPE, (loc){&c->m->segs[0], f, 1, 1, 1, (*leaf)->off + bad},
                "%s", why);
  return 0;
}

static int phase_b(pctx *c) {
  cl_hl7_seg *msh = &c->m->segs[0];
  char q[48];
  const hl7_node *at;
  const char *v;
  size_t n;
  int rc = msh_value(c, 12, &at, &v, &n);
  if (rc != 0)
    return rc;
  if (n == 0) {
    const hl7_node *f = raw_node(msh, 12);
    return perr(c, CL_EMALFORMED, CL_HL7_REQUIRED_MISSING,
                (loc){msh, 12, 1, 1, 0, f ? f->off : msh->node.off + msh->node.rawlen},
                "version id (MSH-12) is required");
  }
  if (!hl7_version_supported(v, n)) {
    hl7_quote(q, sizeof q, v, n);
    return perr(c, CL_EMALFORMED, CL_HL7_UNSUPPORTED_VERSION, (loc){msh, 12, 1, 1, 0, at->off},
                "unsupported version '%s' (2.3 to 2.8 are)", q);
  }
  if ((rc = msh_value(c, 18, &at, &v, &n)) != 0)
    return rc;
  int k = hl7_charset_of(v, n);
  if (k < 0) {
    hl7_quote(q, sizeof q, v, n);
    return perr(c, CL_EMALFORMED, CL_HL7_TABLE_VALUE, (loc){msh, 18, 1, 0, 0, at->off},
                "unsupported character set '%s' (ASCII, 8859/1, UNICODE UTF-8 are)", q);
  }
  if (k == HL7_CS_SNIFF) {
    k = HL7_CS_ASCII;
    const unsigned char *u = (const unsigned char *)c->buf;
    for (size_t i = 0; i < c->n; i++) {
      if (u[i] < 0x80)
        continue;
      size_t l = hl7_utf8_len(u + i, c->n - i);
      if (l == 0)
        return perr(c, CL_EMALFORMED, CL_HL7_TABLE_VALUE, (loc){msh, 18, 0, 0, 0, i},
                    "byte 0x%02X is not UTF-8 and MSH-18 names no character set", u[i]);
      k = HL7_CS_UTF8;
      i += l - 1;
    }
  }
  c->m->charset = k;
  return 0;
}

/* ---- phase C ---- */

static int decode_leaf(pctx *c, hl7_node *leaf, loc l) {
  if (leaf->rawlen == 0 || (leaf->rawlen == 2 && memcmp(leaf->raw, "\"\"", 2) == 0)) {
    leaf->val = "";
    leaf->state = leaf->rawlen ? CL_HL7_NULL : CL_HL7_EMPTY;
    return 0;
  }
  size_t bad = 0;
  char why[120];
  cl_hl7_enc enc = c->m->hdr.enc;
  if (c->lenient)
    enc.esc = '\0'; /* no escape processing: NUL never occurs (refused in phase A) */
  int rc = hl7_decode(&c->m->arena, &enc, c->m->charset, leaf->raw, leaf->rawlen, &leaf->val,
                      &leaf->vallen, &bad, why, sizeof why);
  if (rc == CL_ENOMEM)
    return oom(c, l);
  if (rc != 0) {
    l.off = leaf->off + bad;
    return perr(c, rc, CL_HL7_DATA_TYPE, l, "%s", why);
  }
  leaf->state = CL_HL7_VALUED;
  return 0;
}

static int phase_c(pctx *c) {
  for (uint32_t si = 0; si < c->m->nsegs; si++) {
    cl_hl7_seg *s = &c->m->segs[si];
    int msh = si == 0;
    for (uint32_t f = msh ? 3 : 1; f <= s->node.nkids; f++) {
      hl7_node *fn = &s->node.kids[f - 1];
      for (uint32_t r = 0; r < fn->nkids; r++)
        for (uint32_t k = 0; k < fn->kids[r].nkids; k++) {
          hl7_node *comp = &fn->kids[r].kids[k];
          for (uint32_t u = 0; u < comp->nkids; u++) {
            int rc = decode_leaf(c, &comp->kids[u], (loc){s, f, r + 1, k + 1, u + 1, 0});
            if (rc != 0)
              return rc;
          }
        }
    }
  }
  return 0;
}

/* ---- phase D ---- */

static const char *val(const cl_hl7_seg *s, unsigned f, unsigned comp) {
  return cl_hl7_get(s, f, 1, comp, 1).s;
}

static int required(pctx *c, unsigned f, unsigned comp, const char *what) {
  const cl_hl7_seg *msh = &c->m->segs[0];
  if (cl_hl7_get(msh, f, 1, comp, 1).state == CL_HL7_VALUED)
    return 0;
  const hl7_node *n = raw_node(msh, f);
  return perr(c, CL_EMALFORMED, CL_HL7_REQUIRED_MISSING,
              (loc){msh, f, 1, comp, 0, n ? n->off : msh->node.off + msh->node.rawlen},
              "%s (MSH-%u%s) is required", what, f, comp == 2 ? ".2" : "");
}

static int phase_d(pctx *c) {
  cl_hl7_header *h = &c->m->hdr;
  const cl_hl7_seg *msh = &c->m->segs[0];
  h->sending_app = val(msh, 3, 1);
  h->sending_facility = val(msh, 4, 1);
  h->receiving_app = val(msh, 5, 1);
  h->receiving_facility = val(msh, 6, 1);
  h->message_code = val(msh, 9, 1);
  h->trigger = val(msh, 9, 2);
  h->structure = val(msh, 9, 3);
  h->control_id = val(msh, 10, 1);
  h->processing_id = val(msh, 11, 1);
  h->version = val(msh, 12, 1);
  h->charset = val(msh, 18, 1);
  if (c->lenient)
    return 0;
  int rc;
  if ((rc = required(c, 9, 1, "message type")) != 0 ||
      (strcmp(h->message_code, "ACK") != 0 && (rc = required(c, 9, 2, "trigger event")) != 0) ||
      (rc = required(c, 10, 1, "message control id")) != 0 ||
      (rc = required(c, 11, 1, "processing id")) != 0)
    return rc;
  if (strlen(h->processing_id) != 1 || !strchr("PDT", h->processing_id[0])) {
    char q[24];
    hl7_quote(q, sizeof q, h->processing_id, strlen(h->processing_id));
    return perr(c, CL_EMALFORMED, CL_HL7_TABLE_VALUE,
                (loc){msh, 11, 1, 1, 0, raw_node(msh, 11)->off},
                "processing id '%s' is not P, D or T (table 0103)", q);
  }
  return 0;
}

/* The end of the first non-blank line of p[0..n) (a BOM skipped too). */
static size_t first_line_end(const uint8_t *p, size_t n) {
  size_t i = n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
  while (i < n && is_eol((char)p[i]))
    i++;
  while (i < n && !is_eol((char)p[i]))
    i++;
  return i;
}

static int parse(const uint8_t *p, size_t n, const cl_hl7_limits *lim, int lenient,
                 cl_hl7_msg **out, cl_hl7_error *herr, cl_err *err) {
  if (!out || (!p && n > 0))
    return cl_err_set(err, CL_EINVAL, "hl7: NULL argument");
  *out = NULL;
  if (lenient) /* only the first line matters: a huge or cut message still has its MSH */
    n = first_line_end(p, n);
  cl_hl7_msg *m = cl_calloc(1, sizeof *m);
  pctx c = {.m = m, .n = n, .lenient = lenient, .herr = herr, .err = err};
  c.lim.max_message = lim && lim->max_message ? lim->max_message : CL_HL7_DEFAULT_MAX_MESSAGE;
  c.lim.max_field = lim && lim->max_field ? lim->max_field : CL_HL7_DEFAULT_MAX_FIELD;
  c.lim.max_nodes = lim && lim->max_nodes ? lim->max_nodes : CL_HL7_DEFAULT_MAX_NODES;
  if (c.lim.max_nodes > UINT32_MAX) /* node counts are uint32_t (hl7_int.h) */
    c.lim.max_nodes = UINT32_MAX;
  if (!m)
    return oom(&c, (loc){0});
  int rc;
  if (n > c.lim.max_message) {
    rc = perr(&c, CL_ETOOBIG, CL_HL7_INTERNAL, (loc){.off = c.lim.max_message},
              "message of %zu bytes exceeds the limit of %zu", n, c.lim.max_message);
    goto fail_msg;
  }
  char *copy = hl7_arena_alloc(&m->arena, n + 1);
  if (!copy) {
    rc = oom(&c, (loc){0});
    goto fail_msg;
  }
  if (n)
    memcpy(copy, p, n);
  c.buf = copy;
  if ((rc = phase_a(&c)) != 0)
    goto fail_arena;
  if (lenient)
    m->charset = HL7_CS_LATIN1;
  else if ((rc = phase_b(&c)) != 0)
    goto fail_arena;
  if ((rc = phase_c(&c)) != 0 || (rc = phase_d(&c)) != 0)
    goto fail_arena;
  *out = m;
  return 0;

fail_arena:
  hl7_arena_free(&m->arena);
fail_msg:
  cl_free(m);
  return rc;
}

int cl_hl7_parse(const uint8_t *p, size_t n, const cl_hl7_limits *lim, cl_hl7_msg **out,
                 cl_hl7_error *herr, cl_err *err) {
  return parse(p, n, lim, 0, out, herr, err);
}

int cl_hl7_parse_msh(const uint8_t *p, size_t n, const cl_hl7_limits *lim, cl_hl7_msg **out,
                     cl_err *err) {
  return parse(p, n, lim, 1, out, NULL, err);
}

void cl_hl7_free(cl_hl7_msg *m) {
  if (!m)
    return;
  hl7_arena_free(&m->arena);
  cl_free(m);
}

/* Internals of adapters/hl7v2: the message tree, its arena, and the text
 * helpers shared by the parser and the ACK builder. Only adapters/hl7v2/
 * includes this file.
 *
 * Tree invariants: every node lives in the message's arena. A segment's
 * fields, a field's repetitions, a repetition's components and a
 * component's subcomponents are arrays of hl7_node (kids/nkids); only
 * subcomponents (leaves) carry a decoded value. Every node has its raw text
 * (a span of the arena's copy of the input) and its byte offset in the
 * input. Counts are bounded by cl_hl7_limits.max_nodes, so uint32_t. */
#ifndef CL_ADAPTERS_HL7V2_HL7_INT_H
#define CL_ADAPTERS_HL7V2_HL7_INT_H

#include <stddef.h>
#include <stdint.h>

#include "adapters/hl7v2/hl7.h"

/* ---- arena: bump allocation in chunks from cl_malloc, freed at once ---- */

typedef struct hl7_chunk hl7_chunk;
typedef struct hl7_arena {
  hl7_chunk *head; /* newest chunk first */
  size_t used;     /* bytes used in head */
  size_t cap;      /* bytes available in head */
} hl7_arena;

/* Zero-filled, 16-byte aligned; NULL when out of memory (or n overflows). */
void *hl7_arena_alloc(hl7_arena *a, size_t n);
void hl7_arena_free(hl7_arena *a);

/* ---- the tree ---- */

typedef struct hl7_node {
  const char *raw; /* escaped text as sent (arena copy of the input) */
  const char *val; /* leaves: decoded UTF-8, NUL-terminated */
  struct hl7_node *kids;
  size_t rawlen, vallen;
  size_t off; /* byte offset of raw in the input */
  uint32_t nkids;
  uint8_t state; /* enum cl_hl7_state (leaves) */
} hl7_node;

struct cl_hl7_seg {
  char id[4];
  uint32_t index; /* 1-based position in the message */
  uint32_t seq;   /* occurrence of this id, 1-based */
  hl7_node node;  /* raw: the whole segment; kids: fields (kids[0] is field 1) */
};

enum hl7_charset { HL7_CS_ASCII, HL7_CS_UTF8, HL7_CS_LATIN1, HL7_CS_SNIFF };

struct cl_hl7_msg {
  hl7_arena arena;
  cl_hl7_seg *segs;
  uint32_t nsegs;
  int charset; /* enum hl7_charset, as decided for this message */
  cl_hl7_header hdr;
};

/* ---- text helpers (hl7_text.c) ---- */

/* Decodes the raw leaf text r[0..n) (escapes per `enc`, charset `cs`) into
 * an arena string. On error returns a negative CL_E* and sets *bad to the
 * offset within r of the offending byte and `why` to a reason. */
int hl7_decode(hl7_arena *a, const cl_hl7_enc *enc, int cs, const char *r, size_t n,
               const char **out, size_t *outn, size_t *bad, char *why, size_t whysz);

/* Length of the UTF-8 sequence starting at p[0..n), 0 if it is not a
 * valid one (overlong, surrogate, beyond U+10FFFF, truncated). */
size_t hl7_utf8_len(const unsigned char *p, size_t n);

/* Appends `s` (n bytes) to the growing buffer, escaping every delimiter of
 * `enc` and CR/LF (as \X0D\ \X0A\) so it can stand as one HL7 value. */
typedef struct hl7_buf {
  char *p;
  size_t n, cap;
  int oom;
} hl7_buf;
void hl7_buf_put(hl7_buf *b, const char *s, size_t n);
void hl7_buf_puts(hl7_buf *b, const char *s);
void hl7_buf_putc(hl7_buf *b, char c);
void hl7_buf_escaped(hl7_buf *b, const cl_hl7_enc *enc, const char *s, size_t n);

/* Writes `s` (n bytes) into dst as printable ASCII for an error reason:
 * other bytes as \xHH, at most dstsz-1 bytes, "..." when cut. */
void hl7_quote(char *dst, size_t dstsz, const char *s, size_t n);

/* Is v (n bytes) one of the supported MSH-12.1 versions? */
int hl7_version_supported(const char *v, size_t n);
/* MSH-18 name to enum hl7_charset; -1 if unsupported. Empty gives SNIFF. */
int hl7_charset_of(const char *v, size_t n);

#endif

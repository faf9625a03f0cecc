/* HL7 v2 parser: bytes of one message to a tree of segments, fields,
 * repetitions, components and subcomponents (HL7 v2.3 to v2.8, chapter 2
 * "Control", section 2.5-2.7 message construction rules).
 *
 * What is accepted (docs/adapters.md has the full table):
 * - The message starts with MSH (a UTF-8 BOM and blank lines before it are
 *   skipped). MSH-1 is the field separator, MSH-2 the encoding characters:
 *   component, repetition, escape, subcomponent, and since v2.7 an optional
 *   fifth, the truncation character. They must be distinct printable ASCII
 *   punctuation, distinct from the field separator. One message per parse:
 *   a second MSH is refused (batches, FHS/BHS, are not this module's).
 * - Segments end with CR, CRLF or LF (mixed, and a trailing one or none);
 *   blank lines between segments are skipped. A segment id is three
 *   characters, [A-Z][A-Z0-9][A-Z0-9]; Z-segments are kept like any other.
 * - Escape sequences inside a value: \F\ \S\ \T\ \R\ \E\ (and \P\, the
 *   truncation character, when MSH-2 declares one) decode to the delimiter;
 *   \Xhhhh..\ decodes to the bytes it spells (in the MSH-18 character set);
 *   \H\ \N\ (highlighting), \.br\ \.sp\ \.in\ \.ti\ \.sk\ \.fi\ \.nf\ \.ce\
 *   (formatted text), \Cxxyy\ \Mxxyyzz\ (character set switches) and \Z..\
 *   (locally defined) are passed through verbatim, with the message's own
 *   escape character, for the layer that knows the data type. Anything else
 *   after an escape character (an unknown letter, a missing closing escape
 *   character, odd or non-hex digits in \X..\, \X00\) is refused.
 * - MSH-18 (first repetition): empty, "ASCII", "8859/1", "UNICODE UTF-8" or
 *   "UTF-8". Values are returned in UTF-8: 8859/1 is converted, UTF-8 is
 *   validated, ASCII must be 7-bit. With MSH-18 empty, a message that is
 *   7-bit or valid UTF-8 is accepted (a common quirk), anything else is
 *   refused naming MSH-18. Other character sets are refused naming MSH-18.
 *   Control characters other than TAB (NUL, VT, FS, ...) are refused.
 * - MSH-12.1 is one of 2.3, 2.3.1, 2.4, 2.5, 2.5.1, 2.6, 2.7, 2.7.1, 2.8,
 *   2.8.1, 2.8.2; otherwise refused (ERR code 203) naming MSH-12. MSH-9.1,
 *   MSH-9.2 (except for ACK), MSH-10, MSH-11 and MSH-12 are required (101);
 *   MSH-11.1 must be P, D or T (table 0103, 103).
 * - `""` (two double quotes, the explicit null of chapter 2.5.3) as a whole
 *   subcomponent is reported as CL_HL7_NULL, distinct from an empty value.
 *
 * Values: every subcomponent is decoded at parse time (escapes resolved,
 * converted to UTF-8, NUL-terminated, never containing NUL); the raw
 * (escaped, original character set) text of any node is kept too.
 *
 * Memory: a message and everything it points to live in one arena owned by
 * the cl_hl7_msg; cl_hl7_free releases it at once. Every pointer an accessor
 * returns is a view valid until cl_hl7_free of its message. Allocation goes
 * through store/alloc.h (cl_malloc), so tests can fail the Nth allocation.
 *
 * Thread-safety: a parsed message is immutable; concurrent readers of one
 * message are safe. Parsing keeps no global state. */
#ifndef CL_ADAPTERS_HL7V2_HL7_H
#define CL_ADAPTERS_HL7V2_HL7_H

#include <stddef.h>
#include <stdint.h>

#include "store/err.h"

/* Default bounds (cl_hl7_limits, 0 in a field means the default). */
#define CL_HL7_DEFAULT_MAX_MESSAGE (8u * 1024 * 1024) /* bytes of one message */
#define CL_HL7_DEFAULT_MAX_FIELD (1u * 1024 * 1024)   /* raw bytes of one field */
#define CL_HL7_DEFAULT_MAX_NODES                                                                   \
  (1u << 20) /* fields + repetitions + components + subcomponents                                  \
              */

typedef struct cl_hl7_limits {
  size_t max_message; /* larger input: CL_ETOOBIG, ERR code 207 */
  size_t max_field;   /* a longer raw field: CL_ETOOBIG, ERR code 102, at that field */
  size_t max_nodes;   /* bounds the tree (memory) for inputs made of delimiters;
                         at most UINT32_MAX (larger values are clamped) */
} cl_hl7_limits;

/* HL7 table 0357, message error condition codes (ERR-3 / ERR-1.4). */
enum cl_hl7_code {
  CL_HL7_ACCEPTED = 0,
  CL_HL7_SEGMENT_SEQUENCE = 100,
  CL_HL7_REQUIRED_MISSING = 101,
  CL_HL7_DATA_TYPE = 102,
  CL_HL7_TABLE_VALUE = 103,
  CL_HL7_UNSUPPORTED_TYPE = 200,
  CL_HL7_UNSUPPORTED_EVENT = 201,
  CL_HL7_UNSUPPORTED_PROCESSING_ID = 202,
  CL_HL7_UNSUPPORTED_VERSION = 203,
  CL_HL7_INTERNAL = 207,
};

/* Text of a table 0357 code ("Data type error"); a static string, "" for a
 * code not in the table. */
const char *cl_hl7_code_text(int code);

/* Where a message went wrong, and why: what an ACK's ERR segment carries
 * (ERR-2 error location, ERR-3 code, ERR-8 user message). Positions are
 * 1-based as HL7 counts them; 0 means "not applicable" (an error about a
 * whole segment has field 0). A plain value: copy freely. */
typedef struct cl_hl7_error {
  int code;                       /* enum cl_hl7_code */
  char segment[4];                /* segment id, NUL-terminated ("" if none) */
  uint32_t seg_seq;               /* occurrence of that segment id in the message (ERL-2) */
  uint32_t seg_index;             /* position of the segment in the message, 1-based */
  uint32_t field, rep, comp, sub; /* ERL-3..6 */
  size_t offset;                  /* byte offset in the input where the problem is */
  char reason[160];               /* English, printable ASCII, NUL-terminated */
} cl_hl7_error;

/* The four delimiters and the escape character (MSH-1, MSH-2). `trunc` is
 * 0 when MSH-2 has four characters. */
typedef struct cl_hl7_enc {
  char field, comp, rep, esc, sub, trunc;
} cl_hl7_enc;

/* MSH values every consumer needs, decoded; "" when not valued, never NULL.
 * Components as named. Views valid until cl_hl7_free. */
typedef struct cl_hl7_header {
  const char *sending_app;        /* MSH-3.1 */
  const char *sending_facility;   /* MSH-4.1 */
  const char *receiving_app;      /* MSH-5.1 */
  const char *receiving_facility; /* MSH-6.1 */
  const char *message_code;       /* MSH-9.1, e.g. "ADT" */
  const char *trigger;            /* MSH-9.2, e.g. "A01" */
  const char *structure;          /* MSH-9.3, e.g. "ADT_A01" ("" in 2.3) */
  const char *control_id;         /* MSH-10 */
  const char *processing_id;      /* MSH-11.1: P, D or T */
  const char *version;            /* MSH-12.1, e.g. "2.5.1" */
  const char *charset;            /* MSH-18 first repetition as sent, "" if none */
  cl_hl7_enc enc;
} cl_hl7_header;

typedef struct cl_hl7_msg cl_hl7_msg; /* opaque; see cl_hl7_parse */
typedef struct cl_hl7_seg cl_hl7_seg; /* a segment, a view into its message */

/* Parses one message from `p` (borrowed, `n` bytes, need not be
 * NUL-terminated; not retained: the message keeps its own copy). `lim` may
 * be NULL (defaults). On success *out is returned-owned: release with
 * cl_hl7_free. On error *out is NULL, `herr` (may be NULL) holds the
 * location and table 0357 code, and err->msg says the same in one line,
 * e.g. "MSH-12 (segment 1, byte 62): unsupported version '2.9'".
 * Errors: CL_EINVAL (NULL p with n > 0, NULL out); CL_EMALFORMED (anything
 * the rules above refuse); CL_ETOOBIG (beyond a limit); CL_ENOMEM (herr
 * then has code 207). Never reads beyond p[n-1]; any bytes are safe. */
CL_MUST_CHECK int cl_hl7_parse(const uint8_t *p, size_t n, const cl_hl7_limits *lim,
                               cl_hl7_msg **out, cl_hl7_error *herr, cl_err *err);

/* Parses only the MSH segment of `p`, leniently: no version, charset,
 * required-field or escape checks, bytes >= 0x80 taken as 8859/1, so that a
 * refused message can still be acknowledged to its sender (ack.h). Only
 * the first line is read (and copied), so a message refused for its size
 * or cut short still yields its MSH. Same ownership and errors as
 * cl_hl7_parse; fails only when there is no MSH with usable encoding
 * characters or control characters in it, a limit is exceeded (by the MSH
 * line), or memory runs out. */
CL_MUST_CHECK int cl_hl7_parse_msh(const uint8_t *p, size_t n, const cl_hl7_limits *lim,
                                   cl_hl7_msg **out, cl_err *err);

/* Releases a message and every view into it. NULL is a no-op. */
void cl_hl7_free(cl_hl7_msg *m);

/* The MSH summary (view). Never NULL for a parsed message. */
const cl_hl7_header *cl_hl7_header_of(const cl_hl7_msg *m);

/* ---- navigation (all views valid until cl_hl7_free(m)) ---- */

size_t cl_hl7_nsegments(const cl_hl7_msg *m);
/* The segment at position `index` (1-based), NULL beyond the end. */
const cl_hl7_seg *cl_hl7_segment_at(const cl_hl7_msg *m, size_t index);
/* The `occ`-th (1-based) segment with id `id`, NULL if there is none. */
const cl_hl7_seg *cl_hl7_segment(const cl_hl7_msg *m, const char *id, size_t occ);
/* How many segments have id `id`. */
size_t cl_hl7_count(const cl_hl7_msg *m, const char *id);
/* The segment's id ("PID"), NUL-terminated. */
const char *cl_hl7_seg_id(const cl_hl7_seg *s);

/* Counts at each level; 0 for a position that was not sent. For MSH,
 * field 1 is the field separator and field 2 the encoding characters, each
 * one repetition of one component of one subcomponent. */
size_t cl_hl7_nfields(const cl_hl7_seg *s);
size_t cl_hl7_nreps(const cl_hl7_seg *s, unsigned field);
size_t cl_hl7_ncomps(const cl_hl7_seg *s, unsigned field, unsigned rep);
size_t cl_hl7_nsubs(const cl_hl7_seg *s, unsigned field, unsigned rep, unsigned comp);

enum cl_hl7_state {
  CL_HL7_ABSENT = 0, /* not sent: beyond the last delimiter at that level */
  CL_HL7_EMPTY,      /* sent, empty */
  CL_HL7_NULL,       /* sent as "" (explicit null) */
  CL_HL7_VALUED,
};

/* One value: `s` is NUL-terminated UTF-8 ("" unless VALUED), `n` its length. */
typedef struct cl_hl7_value {
  const char *s;
  size_t n;
  int state; /* enum cl_hl7_state */
} cl_hl7_value;

/* The decoded subcomponent at 1-based positions; a 0 position or one beyond
 * what was sent gives CL_HL7_ABSENT. A field, repetition or component that
 * was sent without deeper delimiters is its own first component and
 * subcomponent (PID-8 "F" is PID-8.1.1). `s` may be NULL (ABSENT). */
cl_hl7_value cl_hl7_get(const cl_hl7_seg *s, unsigned field, unsigned rep, unsigned comp,
                        unsigned sub);

/* The raw text (escaped, in the message's character set, not
 * NUL-terminated) of a whole field repetition (comp 0) or component
 * (comp >= 1, sub 0) or subcomponent. ABSENT as cl_hl7_get; a VALUED raw
 * value is what was sent between its delimiters. */
cl_hl7_value cl_hl7_raw(const cl_hl7_seg *s, unsigned field, unsigned rep, unsigned comp,
                        unsigned sub);

/* Looks a value up by an HL7 location string: "PID-5.1", "OBX[3]-5",
 * "PID-3[2].4.2", i.e. SEG[occurrence]-field[repetition].component.subcomponent
 * where occurrence and repetition default to 1, and component and
 * subcomponent to 1. A malformed path gives CL_HL7_ABSENT. */
cl_hl7_value cl_hl7_path(const cl_hl7_msg *m, const char *path);

#endif

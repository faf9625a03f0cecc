/* Internals of the HL7 v2 mapping (map.h), shared by map.c (dispatch,
 * envelope, ADT, SIU, DFT, MDM), map_orders.c (ORM, RDE, RAS, ORU) and
 * map_types.c (HL7 data types to catalog value types). Only
 * adapters/hl7v2/map*.c include this file.
 *
 * Every protobuf-c structure built for a message lives in the context's
 * arena and is released at once after packing; strings point into the
 * parsed message (valid while it lives) or into the arena. Helpers that can
 * fail return 0 or CL_EMALFORMED/CL_ENOMEM after filling the context's
 * error (map_fail). */
#ifndef CL_ADAPTERS_HL7V2_MAP_INT_H
#define CL_ADAPTERS_HL7V2_MAP_INT_H

#include <stdarg.h>

#include "adapters/hl7v2/hl7_int.h"
#include "adapters/hl7v2/map.h"
#include "clinlog/v1/event.pb-c.h"

typedef Google__Protobuf__Timestamp pb_ts;
typedef Clinlog__V1__Code pb_code;
typedef Clinlog__V1__CodeableConcept pb_cc;

typedef struct mctx {
  const cl_hl7_msg *m;
  const cl_hl7_header *h;
  const cl_hl7_map_opts *o;
  hl7_arena a;
  cl_hl7_error *herr;
  cl_err *err;
  const char *patient_id;
  char *stream;
  pb_ts *when;              /* EVN-2, else MSH-7: default occurred_at */
  const char *encounter_id; /* PV1-19.1, else PID-18.1; NULL if neither */
  uint8_t corr[16];
  Clinlog__V1__Event **ev; /* events built so far */
  size_t nev, cap;
} mctx;

/* Fills c->herr/c->err for a problem at s-f[r].comp.sub (0 = not
 * applicable) and returns CL_EMALFORMED. s may be NULL (a missing segment
 * `segid`). */
int map_fail(mctx *c, int code, const cl_hl7_seg *s, const char *segid, unsigned f, unsigned r,
             unsigned comp, unsigned sub, const char *fmt, ...) CL_PRINTF(9, 10);
int map_oom(mctx *c);

void *map_alloc(mctx *c, size_t n);       /* zeroed; NULL: out of memory (map_oom done) */
char *map_strdup(mctx *c, const char *s); /* NULL: out of memory */
char *map_printf(mctx *c, const char *fmt, ...) CL_PRINTF(2, 3);

/* The decoded value at s-f[r].comp.sub if VALUED, else NULL. */
const char *hv(const cl_hl7_seg *s, unsigned f, unsigned r, unsigned comp, unsigned sub);
/* Same, first repetition, first subcomponent. */
static inline const char *hf(const cl_hl7_seg *s, unsigned f, unsigned comp) {
  return hv(s, f, 1, comp, 1);
}
/* Is s a segment with id `id`? */
static inline int map_is(const cl_hl7_seg *s, const char *id) {
  return !strcmp(cl_hl7_seg_id(s), id);
}
/* "" for NULL, as protobuf-c wants strings. */
static inline char *S(const char *s) { return (char *)(s ? s : ""); }
/* Is anything sent (valued or "") at field f? */
int map_sent(const cl_hl7_seg *s, unsigned f);

/* Appends a new event with body `body` (of Event.body case `body_case`)
 * and the envelope filled: stream, occurred_at = t or c->when,
 * recorded_by, correlation and source. 0 or CL_ENOMEM. */
int map_emit(mctx *c, pb_ts *t, unsigned body_case, void *body);

/* ---- data types (map_types.c); NULL out when not valued ---- */

/* TS/DTM at s-f[r].comp.sub: YYYY[MM[DD[HH[MM[SS[.S{1,4}]]]]]][+/-ZZZZ] to a
 * UTC instant (missing parts are their first value; no offset: the default
 * offset of the options). 102 on anything else. */
int map_ts(mctx *c, const cl_hl7_seg *s, unsigned f, unsigned r, unsigned comp, unsigned sub,
           pb_ts **out);
/* DT or the date part of a TS: "YYYY", "YYYY-MM" or "YYYY-MM-DD" (102 on a bad date). */
int map_date(mctx *c, const cl_hl7_seg *s, unsigned f, unsigned r, unsigned comp, unsigned sub,
             const char **out);
/* NM: [+-]digits[.digits] (102 otherwise); the text as sent, without a '+'. */
int map_nm(mctx *c, const cl_hl7_seg *s, unsigned f, unsigned r, unsigned comp, unsigned sub,
           const char **out);
/* CWE/CE/CNE at field f, repetition r: primary and alternate codings and
 * the original text. */
int map_cwe(mctx *c, const cl_hl7_seg *s, unsigned f, unsigned r, pb_cc **out);
/* All repetitions of a CWE field. */
int map_cwe_list(mctx *c, const cl_hl7_seg *s, unsigned f, pb_cc ***out, size_t *n);
/* The first coding of a CWE (primary, else alternate), as a Code. */
int map_code(mctx *c, const cl_hl7_seg *s, unsigned f, unsigned r, pb_code **out);
/* A code of HL7 table `table` ("0162") sent as an ID/IS/CWE at field f. */
int map_table_code(mctx *c, const cl_hl7_seg *s, unsigned f, const char *table, pb_code **out);
/* CX (PID-3, PV1-19), EI (ORC-2, SCH-1), XPN, XCN, XAD, XTN, PL, XON. */
int map_cx(mctx *c, const cl_hl7_seg *s, unsigned f, unsigned r, Clinlog__V1__Identifier **out);
int map_ei(mctx *c, const cl_hl7_seg *s, unsigned f, unsigned r, Clinlog__V1__Identifier **out);
int map_xpn(mctx *c, const cl_hl7_seg *s, unsigned f, unsigned r, Clinlog__V1__HumanName **out);
int map_xcn(mctx *c, const cl_hl7_seg *s, unsigned f, unsigned r, Clinlog__V1__Reference **out);
int map_xad(mctx *c, const cl_hl7_seg *s, unsigned f, unsigned r, Clinlog__V1__Address **out);
int map_xtn(mctx *c, const cl_hl7_seg *s, unsigned f, unsigned r, const char *default_use,
            Clinlog__V1__ContactPoint **out);
int map_pl(mctx *c, const cl_hl7_seg *s, unsigned f, unsigned r, Clinlog__V1__Location **out);
int map_xon(mctx *c, const cl_hl7_seg *s, unsigned f, unsigned r, Clinlog__V1__Reference **out);
/* A quantity: NM value at s-f (first rep/comp/sub) and the unit CWE at
 * field uf (0: none). */
int map_qty(mctx *c, const cl_hl7_seg *s, unsigned f, unsigned uf, Clinlog__V1__Quantity **out);
/* Formatted text (TX, FT): repetitions joined by newlines, \.br\ and \.sp\
 * as newlines, other formatting and highlighting escapes dropped. */
char *map_text(mctx *c, const cl_hl7_seg *s, unsigned f);

/* A Code (system borrowed, static or arena; code and display may be NULL). */
pb_code *map_mkcode(mctx *c, const char *system, const char *code, const char *display);
/* RequestPriority of a v2 priority (S, A, R, ...); 0 unspecified. */
int map_priority(const char *v);

/* ---- message families (map.c, map_orders.c) ---- */
int map_orders(mctx *c);  /* ORM^O01, RDE^O11 */
int map_ras(mctx *c);     /* RAS^O17 */
int map_oru(mctx *c);     /* ORU^R01 */
int map_al1_dg1(mctx *c); /* AL1 and DG1 of ADT messages (map_clinical.c) */

#endif

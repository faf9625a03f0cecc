/* Realistic HL7 v2 messages for clinlog-bench ingest (bench_ingest.c): the
 * shapes of the adapter's test corpus (tests/adapters/hl7v2/adt_a01.hl7,
 * oru_r01_vitals.hl7, rde_o11.hl7, ras_o17.hl7) with a unique control id
 * (MSH-10), order and visit numbers per message and patients spread over
 * a population. Segments end with CR; no MLLP framing. */
#ifndef CL_BENCH_HL7GEN_H
#define CL_BENCH_HL7GEN_H

#include <stddef.h>

enum {
  BENCH_HL7_ADT_A01,
  BENCH_HL7_ORU_R01,
  BENCH_HL7_RDE_O11,
  BENCH_HL7_RAS_O17,
  BENCH_HL7_TYPES
};

/* "ADT^A01" ... for type t (static text). */
const char *bench_hl7_type_name(int t);

/* The type of message number i in the mix: of every 10 messages 2 ADT^A01,
 * 4 ORU^R01 (5 OBX each), 2 RDE^O11 and 2 RAS^O17. */
int bench_hl7_type_of(unsigned i);

/* Writes message i (type t) into out (cap bytes, 2048 always suffices)
 * with control id "<tag><i>" for patient number `patient`, and returns its
 * length (0 when it does not fit). tag borrowed, up to 8 characters. */
size_t bench_hl7_message(char *out, size_t cap, int t, const char *tag, unsigned i,
                         unsigned patient);

#endif

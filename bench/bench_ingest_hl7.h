/* clinlog-bench ingest hl7: HL7 v2 over MLLP (plaintext and TLS) into
 * clinlogd, ACK after the commit, against the store in process and
 * PostgreSQL 15 (bench_ingest_hl7.c). */
#ifndef CL_BENCH_INGEST_HL7_H
#define CL_BENCH_INGEST_HL7_H

/* argv[1] is "ingest", argv[2] "hl7". Returns the exit status (0; 1 when a
 * message was not acknowledged AA or a step failed; 2 on a usage error). */
int bench_ingest_hl7_main(int argc, char **argv);

#endif

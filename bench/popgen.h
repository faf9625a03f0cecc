/* A generated population appended straight into an in-process log: events
 * written as the JSON of their body (the catalog's proto3 JSON, parsed by
 * adapters/pbjson), collected into batches of BENCH_GEN_BATCH, each signed
 * by one batch signature of `admin` and appended with cl_log_append. For
 * the in-process benchmarks (bench_fhir.c, bench_cds.c).
 *
 *   bench_gen g = {.log = log, .admin = &admin, .seed = 7};
 *   bench_gen_add(&g, "patient-1", t, "\"patientRegistered\":{...}");
 *   ...
 *   bench_gen_flush(&g);          appends what is left
 *
 * Any failure (a body that does not parse, an append refused) prints it
 * and exits: a benchmark cannot go on. Not thread-safe for one g. */
#ifndef CL_BENCH_POPGEN_H
#define CL_BENCH_POPGEN_H

#include <protobuf-c/protobuf-c.h>
#include <stdint.h>

#include "store/keys.h"
#include "store/log.h"

#define BENCH_GEN_BATCH 1000

typedef struct bench_gen {
  cl_log *log;            /* borrowed */
  const cl_signer *admin; /* borrowed: signs every batch, as "admin" */
  unsigned seed;          /* event ids */
  uint64_t events;        /* appended so far */
  size_t n;               /* pending in ev[] */
  ProtobufCBinaryData ev[BENCH_GEN_BATCH];
} bench_gen;

/* A new log in `base`/`name` (any older one there removed), created by a
 * freshly generated admin key (*admin: the caller frees it with
 * cl_signer_free) and opened with o (initialized here; o->sync 0: no fsync
 * while the population goes in). o->dir points into dir[4096]. Exits on
 * failure. */
cl_log *bench_gen_log(const char *base, const char *name, cl_signer *admin, cl_log_options *o,
                      char dir[4096]);

/* The JSON text of an event with id `id` in `stream` at `t` (seconds since
 * the epoch), recorded by principal admin in role nurse, whose body member
 * is `body` (e.g. "\"observationRecorded\":{...}", without the event's
 * braces), into out (cap bytes). Its length, or -1 if it does not fit. */
int bench_gen_text(char *out, size_t cap, const char *stream, int64_t t, const uint8_t id[16],
                   const char *body);

/* Adds one event to `stream` at `t` (seconds since the epoch), recorded by
 * principal admin in role nurse; the printf-style `fmt` gives the body
 * member, e.g. "\"observationRecorded\":{...}" (without the event's braces).
 * Appends a full batch. */
void bench_gen_add(bench_gen *g, const char *stream, int64_t t, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Appends the pending events (none: nothing). */
void bench_gen_flush(bench_gen *g);

#endif

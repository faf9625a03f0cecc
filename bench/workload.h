/* What every clinlog-bench scenario shares: the event it writes (a
 * realistic ~500-byte ObservationRecorded over 5000 patient streams),
 * clocks and scratch directories. */
#ifndef CL_BENCH_WORKLOAD_H
#define CL_BENCH_WORKLOAD_H

#include <protobuf-c/protobuf-c.h>
#include <stdint.h>

/* A new serialized event with a fresh id; out->data is returned-owned
 * (free()). Aborts when out of memory (a benchmark cannot go on). */
void bench_make_event(ProtobufCBinaryData *out, unsigned *seed);

double bench_mono(void); /* seconds, CLOCK_MONOTONIC */
void bench_rmrf(const char *path);
int bench_cmp_double(const void *a, const void *b);
/* Sorts v and returns its median (0 when n is 0). */
double bench_median(double *v, size_t n);

#endif

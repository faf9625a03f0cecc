/* A set that can say "never seen": a blocked Bloom filter of 32-byte keyed
 * hashes (the fhir projection's H(type/id), fhir.h), grown in stages as
 * keys come, within a memory bound.
 *
 * The fold keeps one of every resource its state has held since the state
 * was empty, so a resource the filter has not seen needs no read of its
 * current version (most puts make a new resource). It answers "maybe"
 * falsely for under 1 % of the keys it has not seen, and never "no" for a
 * key it was given.
 *
 * Not thread-safe: the runner's thread owns it. */
#ifndef CL_QUERY_FHIR_KNOWN_H
#define CL_QUERY_FHIR_KNOWN_H

#include <stddef.h>
#include <stdint.h>

typedef struct cl_fhir_known cl_fhir_known;

/* An empty set of at most `max_bytes` bytes; returned-owned
 * (cl_fhir_known_free), NULL when out of memory. */
cl_fhir_known *cl_fhir_known_new(size_t max_bytes);
void cl_fhir_known_free(cl_fhir_known *k);

/* Adds h (uniformly distributed bits: a keyed hash). Returns 0, or -1 when
 * the set would outgrow its bound (or memory ran out): it is then no
 * longer complete, and the caller frees it. */
int cl_fhir_known_add(cl_fhir_known *k, const uint8_t h[32]);

/* 0: h was never added; 1: it may have been. */
int cl_fhir_known_has(const cl_fhir_known *k, const uint8_t h[32]);

#endif

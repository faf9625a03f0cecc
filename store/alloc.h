/* The store's one allocation path. Every heap allocation store/ makes for
 * its own structures goes through these functions (and protobuf-c messages
 * the store unpacks or builds use cl_pb_allocator), so a test can make the
 * Nth allocation fail and check that every failure point returns CL_ENOMEM
 * and leaves the log unchanged. Memory comes from malloc: cl_free and
 * free() are interchangeable, and protobuf-c's free_unpacked(m, NULL)
 * frees messages built here.
 *
 * Not covered: RocksDB's and libsodium's own allocations (sodium_malloc
 * for secrets is counted, its internals are not). */
#ifndef CL_STORE_ALLOC_H
#define CL_STORE_ALLOC_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

void *cl_malloc(size_t n);
void *cl_calloc(size_t n, size_t size); /* overflow-checked */
void *cl_realloc(void *p, size_t n);    /* on failure p is untouched */
char *cl_strdup(const char *s);
void cl_free(void *p);
/* sodium_malloc through the same failure hook (free with sodium_free). */
void *cl_sodium_malloc(size_t n);

/* protobuf-c allocator over cl_malloc/cl_free, for unpacking untrusted
 * bytes (records, Raft entries, catch-up chunks). protobuf-c answers NULL
 * both for malformed bytes and when out of memory; cl_pb_unpack tells the
 * two apart: it returns NULL with *oom set when an allocation failed. */
extern ProtobufCAllocator cl_pb_allocator;
ProtobufCMessage *cl_pb_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n,
                               int *oom);

/* Test hook for fault injection: while set, `fail` is asked before every
 * allocation above and a nonzero answer makes it return NULL. NULL removes
 * the hook. Set it only while no other thread allocates through store/. */
void cl_alloc_set_fail_hook(int (*fail)(void *ctx), void *ctx);

/* glibc's malloc keeps, per thread, a cache of freed small blocks (up to
 * 1032 bytes): 7 of each size by default. A fold frees a whole JSON tree
 * and an unpacked event per event, and its batch's cache at the batch's
 * end, so most of those blocks went past that cache into the shared bins,
 * and the next larger request merged them back (malloc_consolidate):
 * malloc and free were a third of the `fhir` fold's CPU on a large
 * catch-up (docs/operations.md, "Memory"). glibc reads the cache's size only from the environment
 * (GLIBC_TUNABLES), once, at start.
 *
 * Called first thing in main() by clinlog's programs: unless
 * GLIBC_TUNABLES already names glibc.malloc.tcache_count (an operator's
 * choice, kept), adds glibc.malloc.tcache_count=CL_TCACHE_COUNT to it and
 * executes the program again (/proc/self/exe, the same argv), once; the
 * program, started again, puts the environment back as it was for the
 * programs it starts. Does nothing where that does not apply (not glibc; a
 * sanitizer build, which has its own allocator); if the exec fails the
 * program goes on with glibc's default. */
#define CL_TCACHE_COUNT 1024
void cl_malloc_tune_exec(char **argv);
/* The glibc.malloc.tcache_count this process was started with, 0 if none
 * was set (glibc's default, 7) or cl_malloc_tune_exec was not called. */
int cl_malloc_tcache_count(void);

#endif

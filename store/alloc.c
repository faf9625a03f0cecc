/* The store's allocation path and its fault-injection hook; see alloc.h. */
#include "store/alloc.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int (*fail_hook)(void *ctx);
static void *fail_ctx;

void cl_alloc_set_fail_hook(int (*fail)(void *ctx), void *ctx) {
  fail_ctx = ctx;
  fail_hook = fail;
}

static int failing(void) { return fail_hook && fail_hook(fail_ctx); }

void *cl_malloc(size_t n) { return failing() ? NULL : malloc(n ? n : 1); }

void *cl_calloc(size_t n, size_t size) {
  if (size && n > SIZE_MAX / size)
    return NULL;
  return failing() ? NULL : calloc(n ? n : 1, size ? size : 1);
}

void *cl_realloc(void *p, size_t n) { return failing() ? NULL : realloc(p, n ? n : 1); }

char *cl_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = cl_malloc(n);
  if (p)
    memcpy(p, s, n);
  return p;
}

void cl_free(void *p) { free(p); }

void *cl_sodium_malloc(size_t n) { return failing() ? NULL : sodium_malloc(n); }

static _Thread_local int pb_failed; /* an unpack on this thread ran out of memory */

static void *pb_alloc(void *data, size_t n) {
  (void)data;
  void *p = cl_malloc(n);
  if (!p)
    pb_failed = 1;
  return p;
}

static void pb_free(void *data, void *p) {
  (void)data;
  free(p);
}

ProtobufCAllocator cl_pb_allocator = {pb_alloc, pb_free, NULL};

ProtobufCMessage *cl_pb_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n,
                               int *oom) {
  pb_failed = 0;
  ProtobufCMessage *m = protobuf_c_message_unpack(d, &cl_pb_allocator, n, p);
  *oom = !m && pb_failed;
  return m;
}

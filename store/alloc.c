/* The store's allocation path and its fault-injection hook; see alloc.h. */
#include "store/alloc.h"

#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* ------------------------------------------------------- glibc's tcache */

#define TCACHE_TUNABLE "glibc.malloc.tcache_count="
/* what GLIBC_TUNABLES was before the exec: "-" unset, "+VALUE" set */
#define WAS_VAR "CLINLOG_GLIBC_TUNABLES_WAS"

static int tcache_in_force;

int cl_malloc_tcache_count(void) { return tcache_in_force; }

#if defined(__SANITIZE_ADDRESS__)
#define CL_OWN_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CL_OWN_MALLOC 1
#endif
#endif

void cl_malloc_tune_exec(char **argv) {
#if defined(__GLIBC__) && !defined(CL_OWN_MALLOC)
  const char *t = getenv("GLIBC_TUNABLES"), *at = t ? strstr(t, TCACHE_TUNABLE) : NULL;
  if (at) { /* set: by the operator, or by us before the exec */
    tcache_in_force = atoi(at + strlen(TCACHE_TUNABLE));
    const char *was = getenv(WAS_VAR);
    if (was) {
      /* glibc has read it: the programs this one starts (a benchmark's
       * peers) get the environment it was started with */
      char w[2048];
      snprintf(w, sizeof w, "%s", was);
      if (w[0] == '+')
        setenv("GLIBC_TUNABLES", w + 1, 1);
      else
        unsetenv("GLIBC_TUNABLES");
      unsetenv(WAS_VAR);
    }
    return;
  }
  char was[2048], v[4096];
  if (t && strlen(t) + 1 >= sizeof was)
    return;
  snprintf(was, sizeof was, "%s%s", t ? "+" : "-", t ? t : "");
  snprintf(v, sizeof v, "%s%s" TCACHE_TUNABLE "%d", t ? t : "", t && *t ? ":" : "",
           CL_TCACHE_COUNT);
  if (setenv(WAS_VAR, was, 1) != 0 || setenv("GLIBC_TUNABLES", v, 1) != 0) {
    unsetenv(WAS_VAR);
    return;
  }
  execv("/proc/self/exe", argv);
  /* no exec: go on with the default, the environment as it was */
  if (was[0] == '+')
    setenv("GLIBC_TUNABLES", was + 1, 1);
  else
    unsetenv("GLIBC_TUNABLES");
  unsetenv(WAS_VAR);
#else
  (void)argv;
#endif
}

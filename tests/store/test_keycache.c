/* The cache of unwrapped stream data keys (store/streamkey.c) when more
 * streams are read than it holds: a full cache replaces keys one at a time,
 * every read still opens with its own stream's key, and an erasure still
 * shreds a stream whose key was cached, evicted or cached again. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/log.h"
#include "tests/support/testutil.h"

#define NSTREAMS 200
#define CACHE 16

typedef struct got {
  int n;
  int erased;
  char note[64]; /* the note the event carries, found in its bytes */
} got;

static int read_fn(void *ctx, const cl_event_view *v, cl_err *err) {
  (void)err;
  got *g = ctx;
  g->n++;
  g->erased |= v->erased;
  if (v->event != NULL) {
    const char *want = g->note;
    size_t wl = strlen(want);
    for (size_t i = 0; i + wl <= v->event_len; i++)
      if (memcmp(v->event + i, want, wl) == 0)
        return 0;
    g->note[0] = '\0'; /* not found: wrong bytes */
  }
  return 0;
}

/* Reads stream i's one event: 1 if its note is there, 0 if erased. */
static int read_stream(cl_log *log, int i) {
  char stream[32];
  snprintf(stream, sizeof stream, "patient-kc%d", i);
  got g = {0};
  snprintf(g.note, sizeof g.note, "KCNOTE-%d-", i);
  cl_err err;
  int rc = cl_log_read_stream(log, stream, 1, 0, 0, read_fn, &g, &err);
  cr_assert_eq(rc, 0, "%s: %s", stream, err.msg);
  cr_assert_eq(g.n, 1, "%s: %d events", stream, g.n);
  if (g.erased)
    return 0;
  cr_assert_neq(g.note[0], '\0', "%s: its note is not in the bytes read", stream);
  return 1;
}

Test(keycache, more_streams_than_the_cache_holds) {
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("kc", &dir, &admin, 1000);
  cl_err err;
  for (int i = 0; i < NSTREAMS; i++) {
    char stream[32], note[64];
    snprintf(stream, sizeof stream, "patient-kc%d", i);
    snprintf(note, sizeof note, "KCNOTE-%d-", i);
    uint64_t seq;
    cr_assert_eq(cl_test_append1(log, &admin, stream, "admin", note, &seq, &err), 0, "%s", err.msg);
  }
  cl_log_close(log);

  cl_log_options o;
  cl_log_options_init(&o);
  o.dir = dir;
  o.key_cache = CACHE;
  cr_assert_eq(cl_log_open(&o, &log, &err), 0, "%s", err.msg);
  /* in order, backwards, then strided: each pass evicts what the last cached */
  for (int i = 0; i < NSTREAMS; i++)
    cr_assert_eq(read_stream(log, i), 1);
  for (int i = NSTREAMS - 1; i >= 0; i--)
    cr_assert_eq(read_stream(log, i), 1);
  for (int k = 0; k < 7; k++)
    for (int i = k; i < NSTREAMS; i += 7)
      cr_assert_eq(read_stream(log, i), 1);

  /* erase a stream just read (cached) and one read long ago (evicted, most
   * likely): neither opens again, the others still do */
  cl_test_erase(log, &admin, "patient-kc195");
  cl_test_erase(log, &admin, "patient-kc3");
  for (int i = 0; i < NSTREAMS; i++)
    cr_assert_eq(read_stream(log, i), i != 195 && i != 3, "stream %d", i);
  /* appends to other streams after reads that filled the cache: new keys */
  uint64_t seq;
  cr_assert_eq(cl_test_append1(log, &admin, "patient-kcnew", "admin", "KCNOTE-new-", &seq, &err), 0,
               "%s", err.msg);
  for (int i = 0; i < NSTREAMS; i += 10)
    cr_assert_eq(read_stream(log, i), i != 195 && i != 3);
  cl_log_close(log);
  cl_signer_free(&admin);
  cl_test_rmtree(dir);
  free(dir);
}

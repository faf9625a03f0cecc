/* libFuzzer target for the MLLP deframer (adapters/hl7v2/mllp.h).
 *
 * The first two input bytes choose a maximum frame size (1..512) and a
 * chunking seed; the rest is the byte stream. Fed in one piece and again in
 * pseudo-random chunks (1 to 64 bytes), the deframer must report the same
 * events with the same bytes; every frame must be free of VT and FS, no
 * longer than the maximum, and survive cl_mllp_frame + deframing unchanged.
 * Any violation aborts (fuzz_finding). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/hl7v2/mllp.h"
#include "store/alloc.h"
#include "tests/fuzz/common/fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const who = "fuzz_mllp";

#define MAXEV 1024

typedef struct evlog {
  int n;
  int kind[MAXEV];
  uint64_t off[MAXEV];
  size_t len[MAXEV];
  uint64_t hash[MAXEV];
  size_t max;
  int reframe; /* re-frame and deframe every frame again */
} evlog;

static uint64_t fnv(const uint8_t *p, size_t n) {
  uint64_t h = 1469598103934665603u;
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 1099511628211u;
  return h;
}

static int on_event(void *ctx, const cl_mllp_event *ev);

/* cl_mllp_frame of a frame, deframed again, gives back exactly that frame. */
static void reframe(const uint8_t *p, size_t n, size_t max) {
  uint8_t *f = NULL;
  size_t fn = 0;
  cl_err err;
  if (cl_mllp_frame(p, n, &f, &fn, &err) != 0)
    fuzz_finding(who, "cannot frame a deframed frame: %s", err.msg);
  cl_mllp *d = NULL;
  if (cl_mllp_new(max, &d, &err) != 0)
    fuzz_finding(who, "new: %s", err.msg);
  evlog *again = calloc(1, sizeof *again);
  if (!again)
    abort();
  again->max = max;
  if (cl_mllp_feed(d, f, fn, on_event, again, NULL, &err) != 0)
    fuzz_finding(who, "feed failed: %s", err.msg);
  if (again->n != 1 || again->kind[0] != CL_MLLP_FRAME || again->len[0] != n ||
      again->hash[0] != fnv(p, n) || cl_mllp_pending(d) || cl_mllp_stats_of(d)->junk)
    fuzz_finding(who, "re-framed frame of %zu bytes does not come back", n);
  free(again);
  cl_mllp_free(d);
  cl_free(f);
}

static int on_event(void *ctx, const cl_mllp_event *ev) {
  evlog *l = ctx;
  if (ev->kind == CL_MLLP_FRAME) {
    if (ev->n > l->max)
      fuzz_finding(who, "frame of %zu bytes over the maximum %zu", ev->n, l->max);
    if (memchr(ev->p, CL_MLLP_VT, ev->n) || memchr(ev->p, CL_MLLP_FS, ev->n))
      fuzz_finding(who, "frame holds a framing byte");
    if (l->reframe)
      reframe(ev->p, ev->n, l->max);
  } else if (ev->kind != CL_MLLP_OVERSIZED || ev->p) {
    fuzz_finding(who, "bad event kind %d", ev->kind);
  }
  if (l->n < MAXEV) {
    l->kind[l->n] = ev->kind;
    l->off[l->n] = ev->offset;
    l->len[l->n] = ev->n;
    l->hash[l->n] = ev->kind == CL_MLLP_FRAME ? fnv(ev->p, ev->n) : 0;
  }
  l->n++;
  return 0;
}

static void run(const uint8_t *p, size_t n, size_t max, uint32_t seed, evlog *l, int check) {
  cl_mllp *d = NULL;
  cl_err err;
  if (cl_mllp_new(max, &d, &err) != 0)
    fuzz_finding(who, "new: %s", err.msg);
  memset(l, 0, sizeof *l);
  l->max = max;
  l->reframe = check;
  for (size_t i = 0; i < n;) {
    size_t chunk = n - i;
    if (seed) {
      seed = seed * 1103515245u + 12345u;
      chunk = 1 + (seed >> 16) % 64;
      if (chunk > n - i)
        chunk = n - i;
    }
    size_t used = 0;
    if (cl_mllp_feed(d, p + i, chunk, on_event, l, &used, &err) != 0 || used != chunk)
      fuzz_finding(who, "feed failed: %s", err.msg);
    i += chunk;
  }
  const cl_mllp_stats *st = cl_mllp_stats_of(d);
  if (st->frames + st->oversized != (uint64_t)l->n)
    fuzz_finding(who, "stats disagree with events");
  cl_mllp_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2)
    return 0;
  size_t max = 1 + (size_t)data[0] * 2;
  uint32_t seed = 1u + data[1];
  const uint8_t *p = data + 2;
  size_t n = size - 2;
  static evlog whole, chunked;
  run(p, n, max, 0, &whole, 1);
  run(p, n, max, seed, &chunked, 0);
  if (whole.n != chunked.n)
    fuzz_finding(who, "%d events in one piece, %d in chunks", whole.n, chunked.n);
  for (int i = 0; i < whole.n && i < MAXEV; i++)
    if (whole.kind[i] != chunked.kind[i] || whole.off[i] != chunked.off[i] ||
        whole.len[i] != chunked.len[i] || whole.hash[i] != chunked.hash[i])
      fuzz_finding(who, "event %d differs with chunking", i);
  return 0;
}

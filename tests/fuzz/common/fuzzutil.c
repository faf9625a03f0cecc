/* See fuzzutil.h. */
#include "fuzzutil.h"

#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "store/event.h"

void fuzz_finding(const char *who, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: finding: ", who);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  abort();
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

void fuzz_rmtree(const char *dir) { nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

void fuzz_sign_batch(const cl_signer *s, uint8_t *const *evs, const size_t *lens, size_t n,
                     int batch_sig, fuzz_batch *fb) {
  clinlog__v1__append_batch__init(&fb->b);
  clinlog__v1__signature__init(&fb->bsig);
  for (size_t i = 0; i < n; i++) {
    fb->evb[i] = (ProtobufCBinaryData){lens[i], evs[i]};
    cl_event_hash(evs[i], lens[i], fb->h[i]);
    clinlog__v1__signature__init(&fb->sig[i]);
    cl_sign_event(s, fb->h[i], fb->raw[i]);
    fb->sig[i].key_id = (ProtobufCBinaryData){32, (uint8_t *)s->pk};
    fb->sig[i].signature = (ProtobufCBinaryData){64, fb->raw[i]};
    fb->sigp[i] = &fb->sig[i];
  }
  fb->b.n_events = n;
  fb->b.events = fb->evb;
  if (batch_sig) {
    cl_sign_batch(s, (const uint8_t(*)[32])fb->h, n, fb->raw[0]);
    fb->bsig.key_id = (ProtobufCBinaryData){32, (uint8_t *)s->pk};
    fb->bsig.signature = (ProtobufCBinaryData){64, fb->raw[0]};
    fb->b.batch_signature = &fb->bsig;
  } else {
    fb->b.n_signatures = n;
    fb->b.signatures = fb->sigp;
  }
}

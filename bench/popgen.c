/* A generated population appended into an in-process log: see popgen.h. */
#include "bench/popgen.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "adapters/pbjson/pbjson.h"
#include "bench/benchutil.h"
#include "bench/workload.h"
#include "clinlog/v1/event.pb-c.h"

cl_log *bench_gen_log(const char *base, const char *name, cl_signer *admin, cl_log_options *o,
                      char dir[4096]) {
  mkdir(base, 0700);
  snprintf(dir, 4096, "%s/%s", base, name);
  bench_rmrf(dir);
  cl_err err;
  cl_signer_generate(admin, &err);
  cl_log_options_init(o);
  o->dir = dir;
  o->sync = 0;
  cl_log_genesis gg = {.admin_principal = "admin", .admin = admin};
  cl_log *log;
  if (cl_log_create(o, &gg, &err) || cl_log_open(o, &log, &err)) {
    fprintf(stderr, "store: %s\n", err.msg);
    exit(1);
  }
  return log;
}

void bench_gen_flush(bench_gen *g) {
  if (g->n == 0)
    return;
  bench_batch b;
  memset(&b, 0, sizeof b);
  clinlog__v1__append_batch__init(&b.b);
  b.ev = g->ev;
  b.b.n_events = g->n;
  b.b.events = g->ev;
  /* one batch signature over the events' hashes */
  uint8_t(*h)[32] = malloc(g->n * 32);
  if (h == NULL) {
    fprintf(stderr, "bench: out of memory\n");
    exit(1);
  }
  for (size_t i = 0; i < g->n; i++)
    cl_event_hash(g->ev[i].data, g->ev[i].len, h[i]);
  cl_sign_batch(g->admin, (const uint8_t(*)[32])h, g->n, b.sigbytes);
  free(h);
  clinlog__v1__signature__init(&b.sig);
  b.sig.key_id = (ProtobufCBinaryData){32, (uint8_t *)g->admin->pk};
  b.sig.signature = (ProtobufCBinaryData){64, b.sigbytes};
  b.b.batch_signature = &b.sig;
  cl_append_result r;
  cl_err err;
  if (cl_log_append(g->log, &b.b, &r, &err)) {
    fprintf(stderr, "bench: append: %s\n", err.msg);
    exit(1);
  }
  cl_append_result_free(&r);
  for (size_t i = 0; i < g->n; i++)
    free(g->ev[i].data);
  g->events += g->n;
  g->n = 0;
}

int bench_gen_text(char *out, size_t cap, const char *stream, int64_t t, const uint8_t id[16],
                   const char *body) {
  char b64[32];
  sodium_bin2base64(b64, sizeof b64, id, 16, sodium_base64_VARIANT_ORIGINAL);
  time_t ts = (time_t)t;
  struct tm tm;
  gmtime_r(&ts, &tm);
  char when[32];
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  int n = snprintf(out, cap,
                   "{\"eventId\":\"%s\",\"stream\":\"%s\",\"occurredAt\":\"%s\",\"recordedBy\":{"
                   "\"principalId\":\"admin\",\"role\":\"nurse\"},\"sourceSystem\":\"BENCH\",%s}",
                   b64, stream, when, body);
  return n < 0 || (size_t)n >= cap ? -1 : n;
}

void bench_gen_add(bench_gen *g, const char *stream, int64_t t, const char *fmt, ...) {
  char body[4096], text[5120];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(body, sizeof body, fmt, ap);
  va_end(ap);
  uint8_t id[16];
  for (int i = 0; i < 16; i++)
    id[i] = (uint8_t)rand_r(&g->seed);
  int tl = bench_gen_text(text, sizeof text, stream, t, id, body);
  ProtobufCMessage *m;
  cl_err err;
  if (tl < 0 || cl_pbjson_from_text(&clinlog__v1__event__descriptor, text, (size_t)tl, &m, &err)) {
    if (tl < 0)
      cl_err_set(&err, CL_ETOOBIG, "event too long");
    fprintf(stderr, "bench: %s: %s\n", err.msg, text);
    exit(1);
  }
  size_t len = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = malloc(len);
  if (buf == NULL) {
    fprintf(stderr, "bench: out of memory\n");
    exit(1);
  }
  protobuf_c_message_pack(m, buf);
  protobuf_c_message_free_unpacked(m, NULL);
  g->ev[g->n++] = (ProtobufCBinaryData){len, buf};
  if (g->n == BENCH_GEN_BATCH)
    bench_gen_flush(g);
}

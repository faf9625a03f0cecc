/* libFuzzer target for the MLLP listener's per-connection protocol
 * (adapters/mllp/session.h) over a real log and request layer, no socket.
 *
 * Set up once per process, in a temporary directory: a log whose admin key
 * is the adapter's key, and a service over it. Each input: the first byte
 * chooses the maximum frame (256 bytes to 8 KiB) and a chunking seed; the
 * rest is the byte stream a peer sends, fed in pseudo-random chunks (1 to
 * 64 bytes) to a fresh session. Findings (abort): an ACK that is not one
 * MLLP frame holding an MSA with AA, AE or AR; a number of ACKs other than
 * the session's message count; the log's head moving on a session that answered no AA. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/mllp/session.h"
#include "tests/fuzz/common/fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const who = "fuzz_mllp_session";

static char g_root[4200];
static cl_signer g_key;
static cl_log *g_log;
static cl_svc *g_svc;

typedef struct acks {
  uint64_t n, aa;
} acks;

static void teardown(void) {
  cl_svc_free(g_svc);
  cl_log_close(g_log);
  cl_signer_free(&g_key);
  fuzz_rmtree(g_root);
}

static void setup(void) {
  if (g_svc)
    return;
  cl_err err;
  const char *base = getenv("TMPDIR");
  snprintf(g_root, sizeof g_root, "%s/cl-fuzzmllp-XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(g_root) || cl_crypto_init(&err) || cl_signer_generate(&g_key, &err))
    abort();
  char dir[4300];
  snprintf(dir, sizeof dir, "%s/log", g_root);
  cl_log_options o;
  cl_log_options_init(&o);
  o.dir = dir;
  o.sync = 0;
  cl_log_genesis g = {.admin_principal = "admin", .admin = &g_key, .organization = "Fuzz"};
  cl_svc_options so = {0};
  if (cl_log_create(&o, &g, &err) != 0 || cl_log_open(&o, &g_log, &err) != 0 ||
      (so.log = g_log, cl_svc_new(&so, &g_svc, &err)) != 0) {
    fprintf(stderr, "%s: setup: %s\n", who, err.msg);
    abort();
  }
  atexit(teardown);
}

static int on_send(void *ctx, const uint8_t *p, size_t n) {
  acks *a = ctx;
  if (n < 3 || p[0] != 0x0B || p[n - 2] != 0x1C || p[n - 1] != 0x0D)
    fuzz_finding(who, "an ACK of %zu bytes is not one MLLP frame", n);
  for (size_t i = 1; i + 2 < n; i++)
    if (p[i] == 0x0B || p[i] == 0x1C)
      fuzz_finding(who, "VT or FS inside an ACK at %zu", i);
  const uint8_t *m = memmem(p, n, "\rMSA", 4);
  if (!m || (size_t)(p + n - m) < 8)
    fuzz_finding(who, "an ACK without MSA");
  if (!memcmp(m + 5, "AA", 2))
    a->aa++;
  else if (memcmp(m + 5, "AE", 2) && memcmp(m + 5, "AR", 2))
    fuzz_finding(who, "MSA-1 is not AA, AE or AR");
  a->n++;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > 65536)
    return 0;
  setup();
  cl_mllp_conf c = {.svc = g_svc, .signer = &g_key, .max_frame = 256u << (data[0] & 5)};
  unsigned seed = data[0];
  data++, size--;
  cl_mllp_session *s;
  cl_err err;
  if (cl_mllp_session_new(&c, "fuzz", &s, &err) != 0)
    fuzz_finding(who, "new: %s", err.msg);
  uint64_t before, after;
  cl_log_head(g_log, &before, NULL);
  acks a = {0};
  for (size_t i = 0; i < size;) {
    seed = seed * 1103515245u + 12345u;
    size_t k = 1 + (seed >> 16) % 64;
    if (k > size - i)
      k = size - i;
    int rc = cl_mllp_session_feed(s, data + i, k, on_send, &a, &err);
    if (rc < 0 && rc != CL_ENOMEM)
      fuzz_finding(who, "feed: %s", err.msg);
    if (rc != 0)
      break; /* the listener closes the connection */
    i += k;
  }
  if (a.n != cl_mllp_session_counts(s)->messages)
    fuzz_finding(who, "%llu ACKs for %llu messages", (unsigned long long)a.n,
                 (unsigned long long)cl_mllp_session_counts(s)->messages);
  cl_log_head(g_log, &after, NULL);
  if (after != before && !a.aa)
    fuzz_finding(who, "the log grew without an AA");
  cl_mllp_session_free(s);
  return 0;
}

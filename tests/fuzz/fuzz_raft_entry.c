/* libFuzzer target for Raft entries that come from peers: their framing and
 * protobuf (replication/fsm.c cl_fsm_decode) and their prepared batches as
 * the store applies them (store/commit.c cl_log_apply), into a real log in a
 * temporary directory that lives as long as the process and grows with it
 * (each input applies one entry at the next Raft index).
 *
 * The first input byte picks a mode and a few flags:
 *   bit 0 = 0: raw: the rest is a Raft entry; with bit 1 it is the protobuf
 *          alone and gets framed here (length, padding), so the fuzzer need
 *          not learn the framing to reach the batches;
 *   bit 0 = 1: structure-aware: the input shapes an AppendBatch of 1-4
 *          events (observations, principal registrations, an erasure),
 *          signed by the admin one by one or as a batch, which
 *          cl_log_prepare turns into a PreparedBatch; it goes into a Raft
 *          entry (once or twice), which is encoded, then has input-chosen
 *          bytes flipped or overwritten before it is decoded and applied.
 *          Unchanged, the batch must commit (it was prepared against this
 *          very state) and its second copy be found already committed.
 *   bits 2-5: want_result of the first four batches (the rest: bit 2);
 *   bit 6: apply the entry again at the same index (must be a no-op: 1).
 *
 * Entries with a tree head are skipped: reaching one needs a network
 * catch-up. What the store promises for everything else (store/log.h): a
 * malformed batch is rejected alone and cl_log_apply returns 0; a return
 * below 0 means the log failed, which input from a peer must never cause.
 * So any of these is a finding (abort, after one line on stderr):
 * cl_log_apply < 0, a tree head that shrinks or changes its root without
 * growing, a tree that grows by other than the events of the batches it
 * accepted, an applied index that does not move to the entry's. */
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clinlog/v1/event.pb-c.h"
#include "replication/fsm.h"
#include "store/err.h"
#include "store/keys.h"
#include "store/log.h"
#include "common/fuzzutil.h"

#define MAX_EVENTS 4
_Static_assert(MAX_EVENTS <= FUZZ_MAX_BATCH, "a batch fits fuzz_batch");
#define MAX_MUTATIONS 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static cl_log *g_log;
static cl_signer g_admin;
static char g_root[4096];       /* temporary directory; removed at exit */
static uint64_t g_index;        /* Raft index of the last entry applied */
static uint64_t g_counter;      /* makes event ids, principals and new streams unique */
static uint64_t g_last_erasure; /* g_counter when the last erasure was made */
static unsigned g_generation;   /* the log in use is <g_root>/data-<g_generation> */

/* A wrong answer: says which (printed only then), and stops the run. */
#define finding(...) fuzz_finding("fuzz_raft_entry", __VA_ARGS__)


static void close_log(void) {
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/data-%u", g_root, g_generation);
  cl_log_close(g_log);
  g_log = NULL;
  fuzz_rmtree(dir);
}

static void teardown(void) {
  if (g_log)
    close_log();
  cl_signer_free(&g_admin);
  fuzz_rmtree(g_root);
}

/* A log with an admin principal, as cl_test_log_new makes it (testutil is
 * not linked into fuzz targets). Unsynced: durability is not under test. */
static void open_log(void) {
  cl_err err;
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/data-%u", g_root, ++g_generation);
  cl_log_options o;
  cl_log_options_init(&o);
  o.dir = dir;
  o.sync = 0;
  o.checkpoint_interval = 64; /* the apply path also writes checkpoints */
  cl_log_genesis g = {.admin_principal = "admin", .admin = &g_admin, .organization = "Fuzz"};
  if (cl_log_create(&o, &g, &err) != 0 || cl_log_open(&o, &g_log, &err) != 0) {
    fprintf(stderr, "fuzz_raft_entry: setup: %s\n", err.msg);
    abort();
  }
  g_index = cl_log_applied_index(g_log);
}

static void setup(void) {
  if (g_log)
    return;
  cl_err err;
  const char *base = getenv("TMPDIR");
  snprintf(g_root, sizeof g_root, "%s/cl-fuzzraft-XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(g_root) || cl_crypto_init(&err) || cl_signer_generate(&g_admin, &err))
    abort();
  open_log();
  atexit(teardown);
}

/* Entries may legitimately revoke the admin's key (a batch signed by the
 * admin that revokes it: libFuzzer can learn the key from the comparisons
 * the keyring makes). Every later structured input would then be refused
 * at prepare, so the run starts over on a new log. */
static void maybe_restart(void) {
  int revoked = 0;
  if (cl_log_key_info(g_log, g_admin.pk, NULL, 0, NULL, 0, &revoked) == 0 && !revoked)
    return;
  close_log();
  open_log();
}

/* Applies the entry (or skips it, see the header) and checks the outcome. */
static void apply_entry(const Clinlog__V1__RaftEntry *e, unsigned flags, int expect_ok) {
  if (e->head)
    return;
  size_t n = e->n_batches;
  cl_apply_item *items = n ? calloc(n, sizeof *items) : NULL;
  if (n && !items)
    abort();
  for (size_t i = 0; i < n; i++) {
    items[i].pb = e->batches[i];
    items[i].want_result = (int)(flags >> (2 + (i < 4 ? i : 0))) & 1;
  }
  uint64_t size0, size1;
  uint8_t root0[32], root1[32];
  cl_log_head(g_log, &size0, root0);
  cl_err err;
  cl_err_clear(&err);
  int rc = cl_log_apply(g_log, ++g_index, items, n, &err);
  if (rc != 0) /* a fresh index: 1 (applied before) would be wrong too */
    finding("cl_log_apply of entry %llu returned %d: %s", (unsigned long long)g_index, rc, err.msg);
  if (cl_log_applied_index(g_log) != g_index)
    finding("applied index %llu after applying %llu",
            (unsigned long long)cl_log_applied_index(g_log), (unsigned long long)g_index);
  cl_log_head(g_log, &size1, root1);
  if (size1 < size0 || (size1 == size0 && memcmp(root0, root1, 32) != 0))
    finding("tree head went from %llu to %llu events", (unsigned long long)size0,
            (unsigned long long)size1);
  /* the tree grows by the events of the accepted batches, less those found
   * already committed (known only with want_result) */
  uint64_t most = 0, exact = 0;
  int all_known = 1;
  for (size_t i = 0; i < n; i++) {
    if (items[i].rc > 0)
      finding("batch %zu: rc %d", i, items[i].rc);
    if (items[i].rc != 0)
      continue;
    size_t ne = e->batches[i]->n_events;
    most += ne;
    if (!items[i].want_result) {
      all_known = 0;
      continue;
    }
    if (items[i].r.n != ne)
      finding("batch %zu: result for %zu of %zu events", i, items[i].r.n, ne);
    if (items[i].r.duplicate)
      continue;
    exact += ne;
    for (size_t j = 0; j < ne; j++)
      if (items[i].r.seq[j] <= size0 || items[i].r.seq[j] > size1)
        finding("batch %zu: event %zu at seq %llu, tree went %llu -> %llu", i, j,
                (unsigned long long)items[i].r.seq[j], (unsigned long long)size0,
                (unsigned long long)size1);
  }
  if (size1 - size0 > most || (all_known && size1 - size0 != exact))
    finding("tree grew by %llu events; accepted batches hold %llu (new: %llu%s)",
            (unsigned long long)(size1 - size0), (unsigned long long)most,
            (unsigned long long)exact, all_known ? "" : ", not all known");
  /* a batch prepared against this very state commits; a second copy of it
   * in the same entry is then found committed (idempotency by event id) */
  for (size_t i = 0; expect_ok && i < n; i++) {
    if (items[i].rc != 0)
      finding("unchanged prepared batch (copy %zu) refused: %s: %s", i, cl_errname(items[i].rc),
              items[i].err.msg);
    if (i > 0 && items[i].want_result && !items[i].r.duplicate)
      finding("second copy of a batch committed again");
  }
  if (expect_ok && n == 0)
    finding("cl_fsm_encode's entry decodes without its batches");
  for (size_t i = 0; i < n; i++)
    if (items[i].want_result && (items[i].rc == 0 || items[i].rc == CL_ECONFLICT))
      cl_append_result_free(&items[i].r);
  free(items);
  if (flags & 0x40) { /* replayed after a restart: nothing changes */
    if ((rc = cl_log_apply(g_log, g_index, NULL, 0, &err)) != 1)
      finding("entry %llu applied again returned %d", (unsigned long long)g_index, rc);
    cl_log_head(g_log, &size0, root0);
    if (size0 != size1 || memcmp(root0, root1, 32) != 0)
      finding("entry applied again moved the tree");
  }
}

static void decode_apply(const uint8_t *buf, size_t len, unsigned flags, int expect_ok) {
  Clinlog__V1__RaftEntry *e = cl_fsm_decode(buf, len);
  if (!e) {
    if (expect_ok)
      finding("cl_fsm_encode's output does not decode");
    return;
  }
  apply_entry(e, flags, expect_ok);
  clinlog__v1__raft_entry__free_unpacked(e, NULL);
}

static void raw(const uint8_t *p, size_t n, unsigned flags) {
  if (!(flags & 2)) {
    decode_apply(p, n, flags, 0);
    return;
  }
  size_t len = (4 + n + 7) & ~(size_t)7;
  uint8_t *buf = calloc(1, len);
  if (!buf)
    abort();
  buf[0] = (uint8_t)n;
  buf[1] = (uint8_t)(n >> 8);
  buf[2] = (uint8_t)(n >> 16);
  buf[3] = (uint8_t)(n >> 24);
  if (n)
    memcpy(buf + 4, p, n);
  decode_apply(buf, len, flags, 0);
  free(buf);
}

/* ---- structure-aware mode ---- */

static uint8_t take(const uint8_t **p, size_t *n) {
  if (*n == 0)
    return 0;
  (*n)--;
  return *(*p)++;
}

/* Ids and principal names come from a hash of a counter, not the counter
 * itself: a mutated entry that commits may carry any one-byte change of
 * them, and must not take an id or name a later input is going to use. */
static void derive(uint64_t n, uint8_t out[32]) {
  uint8_t b[8];
  for (int i = 0; i < 8; i++)
    b[i] = (uint8_t)(n >> (8 * i));
  crypto_hash_sha256(out, b, sizeof b);
}

enum kind { OBSERVATION, REGISTRATION, ERASURE };

/* One serialized Event of the batch, recorded by the admin: returned-owned
 * (free()). `shape` picks its stream. */
static uint8_t *make_event(enum kind k, uint8_t shape, uint64_t id_n, size_t *len) {
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  Clinlog__V1__RecordedBy by = CLINLOG__V1__RECORDED_BY__INIT;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  Clinlog__V1__ObservationRecorded obs = CLINLOG__V1__OBSERVATION_RECORDED__INIT;
  Clinlog__V1__PrincipalRegistered pr = CLINLOG__V1__PRINCIPAL_REGISTERED__INIT;
  Clinlog__V1__StreamErased se = CLINLOG__V1__STREAM_ERASED__INIT;
  uint8_t id[32], pk[32], sk[64];
  char stream[64], name[64], *roles[1] = {"nurse"};
  derive(id_n, id);
  ts.seconds = 1793000000;
  by.principal_id = "admin";
  ev.event_id = (ProtobufCBinaryData){16, id};
  ev.occurred_at = &ts;
  ev.recorded_by = &by;
  ev.stream = stream;
  if (k == REGISTRATION) {
    cl_hex(id + 16, 8, name);
    snprintf(stream, sizeof stream, "$principal-%s", name);
    crypto_sign_ed25519_seed_keypair(pk, sk, id);
    ev.body_case = CLINLOG__V1__EVENT__BODY_PRINCIPAL_REGISTERED;
    ev.principal_registered = &pr;
    pr.principal_id = name;
    pr.n_roles = 1;
    pr.roles = roles;
    pr.public_key = (ProtobufCBinaryData){32, pk};
  } else if (k == ERASURE) {
    /* a stream an earlier input may have created; erasing twice, or a
     * stream that never was, is the store's business too */
    snprintf(stream, sizeof stream, "$erasures");
    snprintf(name, sizeof name, "new-%u", shape % 4);
    ev.body_case = CLINLOG__V1__EVENT__BODY_STREAM_ERASED;
    ev.stream_erased = &se;
    se.stream = name;
  } else {
    /* a few long-lived streams, or one of many (the first event mints its
     * data key) */
    if (shape % 8 < 5)
      snprintf(stream, sizeof stream, "patient-%u", shape % 8);
    else
      snprintf(stream, sizeof stream, "new-%llu", (unsigned long long)(id_n % 4096));
    by.role = "nurse";
    ev.body_case = CLINLOG__V1__EVENT__BODY_OBSERVATION_RECORDED;
    ev.observation_recorded = &obs;
    obs.observation_id = "obs-1";
    obs.note = (char *)((shape & 0x10) ? "heart rate 72/min" : "");
  }
  *len = clinlog__v1__event__get_packed_size(&ev);
  uint8_t *buf = malloc(*len ? *len : 1);
  if (!buf)
    abort();
  clinlog__v1__event__pack(&ev, buf);
  sodium_memzero(sk, sizeof sk);
  return buf;
}

static void structured(const uint8_t *p, size_t n, unsigned flags) {
  uint8_t head = take(&p, &n);
  size_t nev = 1 + head % MAX_EVENTS;
  int batch_sig = (head >> 2) & 1, twice = (head >> 3) & 1;
  uint8_t *evs[MAX_EVENTS] = {0};
  size_t lens[MAX_EVENTS];
  for (size_t i = 0; i < nev; i++) {
    uint8_t shape = take(&p, &n);
    enum kind k = shape < 0xe0 ? OBSERVATION : shape < 0xfc ? REGISTRATION : ERASURE;
    /* an erasure makes the store flush and compact in the background, which
     * would dominate the run if every input could ask for one */
    if (k == ERASURE && g_counter - g_last_erasure < 64)
      k = REGISTRATION;
    if (k == ERASURE)
      g_last_erasure = g_counter;
    evs[i] = make_event(k, shape, ++g_counter, &lens[i]);
  }
  fuzz_batch fb;
  fuzz_sign_batch(&g_admin, evs, lens, nev, batch_sig, &fb);
  Clinlog__V1__PreparedBatch *pb = NULL;
  cl_err err;
  int prc = cl_log_prepare(g_log, &fb.b, &pb, &err);
  for (size_t i = 0; i < nev; i++)
    free(evs[i]);
  if (prc != 0) /* e.g. a stream erased by an earlier input */
    return;

  /* the same batch twice in one entry: the second is a duplicate */
  Clinlog__V1__PreparedBatch *pbs[2] = {pb, pb};
  Clinlog__V1__RaftEntry e = CLINLOG__V1__RAFT_ENTRY__INIT;
  e.n_batches = twice ? 2 : 1;
  e.batches = pbs;
  e.origin = 0x0123456789abcdefull;
  e.group = g_counter;
  struct raft_buffer buf;
  if (cl_fsm_encode(&e, &buf, &err) != 0)
    abort();
  clinlog__v1__prepared_batch__free_unpacked(pb, NULL);

  uint8_t *bytes = buf.base, *orig = malloc(buf.len);
  if (!orig)
    abort();
  memcpy(orig, bytes, buf.len);
  size_t nm = take(&p, &n) % (MAX_MUTATIONS + 1);
  for (size_t i = 0; i < nm && n > 0; i++) {
    size_t pos = take(&p, &n);
    pos |= (size_t)take(&p, &n) << 8;
    uint8_t op = take(&p, &n), val = take(&p, &n);
    pos %= buf.len;
    bytes[pos] = (op & 1) ? val : (uint8_t)(bytes[pos] ^ (1u << (val % 8)));
  }
  /* mutations that cancel out leave the entry as encoded: it must apply */
  int unchanged = memcmp(orig, bytes, buf.len) == 0;
  free(orig);
  decode_apply(buf.base, buf.len, flags, unchanged);
  raft_free(buf.base);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  setup();
  unsigned flags = data[0];
  if (flags & 1)
    structured(data + 1, size - 1, flags);
  else
    raw(data + 1, size - 1, flags);
  maybe_restart();
  return 0;
}

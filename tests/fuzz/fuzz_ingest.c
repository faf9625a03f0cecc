/* libFuzzer target for catch-up (store/ingest.c cl_log_ingest): records
 * copied from another node, checked and verified against the tree the node
 * must reach before anything is written.
 *
 * Set up once per process, in a temporary directory: a source log A of
 * about 60 events in a few streams (with a principal registration, batch
 * signatures and an erased stream), its records, keys and roots read into
 * memory; and an empty replica B with A's key files and origin, as
 * `clinlog init --replica-of` makes one. Every input starts from that empty
 * B: a chunk B accepts is followed by B being made again (closed, removed,
 * and copied from the directory cl_log_create made for the first B).
 *
 * The first input byte picks a mode and a few flags:
 *   bit 0 = 0: raw: first_seq, records, keys, target size and root and
 *          proof hashes carved from the input (flags: small numbers,
 *          records and keys copied from A, target root and proof from A);
 *   bit 0 = 1: differential: A's real chunk for records 1..k (k, and the
 *          target size t >= k, input-chosen), with one to three
 *          input-chosen changes: a bit of a record flipped, a record
 *          dropped or two swapped, first_seq changed, a key dropped or its
 *          wrapped bytes corrupted, a proof hash or the target root
 *          changed. With bits 1-3 all set, a refused chunk is followed by the
 *          real one, which must then be accepted (the refusal left no trace
 *          in memory); not more often, as each accepted chunk costs a new B
 *          (a RocksDB close and open: most of this target's time).
 * Findings (abort, after one line on stderr): a chunk accepted whose tree
 * is not A's (or, raw with an input-made target, not the target's); a
 * changed chunk accepted, or an unchanged one refused; B's head moving on
 * a refused chunk, or failing B (CL_EFAILED, CL_EIO). */
#include <fcntl.h>
#include <ftw.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clinlog/v1/event.pb-c.h"
#include "clinlog/v1/record.pb-c.h"
#include "store/crypt.h"
#include "store/err.h"
#include "store/event.h"
#include "store/keys.h"
#include "store/log.h"
#include "store/merkle.h"
#include "common/fuzzutil.h"

#define MAX_SEQ 80 /* A holds fewer records than this */
#define MAX_RAW_RECS 8
#define MAX_RAW_KEYS 4
#define MAX_PROOF 64


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A's records as read back: what a FetchRecords chunk carries. */
typedef struct src_record {
  uint8_t *data;
  size_t len;
  int starts_stream;                    /* stream_version == 1: its key travels */
  int system;                           /* a system stream's ($log, $principal-...) */
  uint8_t tag[32];                      /* stream tag */
  uint8_t wrapped[CL_WRAPPED_KEY_SIZE]; /* its wrapped key, if starts_stream */
  size_t wrapped_len;                   /* 0: the stream was erased */
} src_record;

static cl_signer g_admin;
static char g_root[4096]; /* temporary directory; removed at exit */
static cl_log *g_a, *g_b;
static uint64_t g_na;                    /* A's tree size */
static src_record g_rec[MAX_SEQ + 1];    /* 1-based */
static uint8_t g_roots[MAX_SEQ + 1][32]; /* A's root at each size */
static unsigned g_b_generation;          /* B is <g_root>/b-<generation> */
static uint64_t g_b_size;                /* B's head as created */
static uint8_t g_b_root[32];

/* A wrong answer: says which (printed only then), and stops the run. */
#define finding(...) fuzz_finding("fuzz_ingest", __VA_ARGS__)

static void fail_setup(const char *what, const cl_err *err) {
  fprintf(stderr, "fuzz_ingest: setup: %s: %s\n", what, err ? err->msg : "");
  abort();
}


/* ---- the source log A ---- */

/* A serialized Event recorded by the admin: returned-owned (free()). */
static uint8_t *make_event(const char *stream, int type, const char *arg, const uint8_t pk[32],
                           uint32_t n, size_t *len) {
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  Clinlog__V1__RecordedBy by = CLINLOG__V1__RECORDED_BY__INIT;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  Clinlog__V1__ObservationRecorded obs = CLINLOG__V1__OBSERVATION_RECORDED__INIT;
  Clinlog__V1__PrincipalRegistered pr = CLINLOG__V1__PRINCIPAL_REGISTERED__INIT;
  Clinlog__V1__StreamErased se = CLINLOG__V1__STREAM_ERASED__INIT;
  uint8_t id[16];
  char *roles[1] = {"nurse"};
  memset(id, 0xa7, sizeof id);
  memcpy(id, &n, sizeof n);
  ts.seconds = 1793000000 + n;
  by.principal_id = "admin";
  ev.event_id = (ProtobufCBinaryData){16, id};
  ev.stream = (char *)stream;
  ev.occurred_at = &ts;
  ev.recorded_by = &by;
  ev.body_case = type;
  if (type == CLINLOG__V1__EVENT__BODY_PRINCIPAL_REGISTERED) {
    ev.principal_registered = &pr;
    pr.principal_id = (char *)arg;
    pr.n_roles = 1;
    pr.roles = roles;
    pr.public_key = (ProtobufCBinaryData){32, (uint8_t *)pk};
  } else if (type == CLINLOG__V1__EVENT__BODY_STREAM_ERASED) {
    ev.stream_erased = &se;
    se.stream = (char *)arg;
  } else {
    by.role = "nurse";
    ev.observation_recorded = &obs;
    obs.observation_id = "obs-1";
    obs.note = "heart rate 72/min";
  }
  *len = clinlog__v1__event__get_packed_size(&ev);
  uint8_t *buf = malloc(*len);
  if (!buf)
    abort();
  clinlog__v1__event__pack(&ev, buf);
  return buf;
}

/* Appends events (taken: freed here) to A, signed one by one or as a batch. */
static void append(uint8_t **evs, const size_t *lens, size_t n, int batch_sig) {
  fuzz_batch fb;
  fuzz_sign_batch(&g_admin, evs, lens, n, batch_sig, &fb);
  cl_append_result r;
  cl_err err;
  if (cl_log_append(g_a, &fb.b, &r, &err) != 0)
    fail_setup("append to A", &err);
  cl_append_result_free(&r);
  for (size_t i = 0; i < n; i++)
    free(evs[i]);
}

static int keep_record(void *ctx, uint64_t seq, const uint8_t *rec, size_t len, cl_err *err) {
  (void)ctx;
  if (seq > MAX_SEQ)
    return cl_err_set(err, CL_EINVAL, "A grew past %d records", MAX_SEQ);
  src_record *s = &g_rec[seq];
  s->data = malloc(len ? len : 1);
  if (!s->data)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  memcpy(s->data, rec, len);
  s->len = len;
  Clinlog__V1__Record *r = clinlog__v1__record__unpack(NULL, len, rec);
  if (!r || r->stream_tag.len != 32) {
    if (r)
      clinlog__v1__record__free_unpacked(r, NULL);
    return cl_err_set(err, CL_ECORRUPT, "record %llu does not decode", (unsigned long long)seq);
  }
  memcpy(s->tag, r->stream_tag.data, 32);
  s->starts_stream = r->stream_version == 1;
  s->system = cl_event_type_is_system(r->event_type);
  clinlog__v1__record__free_unpacked(r, NULL);
  if (s->starts_stream)
    return cl_log_wrapped_key(g_a, s->tag, s->wrapped, sizeof s->wrapped, &s->wrapped_len, err);
  return 0;
}

static void make_source(void) {
  cl_err err;
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/a", g_root);
  cl_log_options o;
  cl_log_options_init(&o);
  o.dir = dir;
  o.sync = 0;
  o.checkpoint_interval = 16;
  cl_log_genesis g = {.admin_principal = "admin", .admin = &g_admin, .organization = "Fuzz"};
  if (cl_log_create(&o, &g, &err) != 0 || cl_log_open(&o, &g_a, &err) != 0)
    fail_setup("source log", &err);
  uint8_t nurse_pk[32];
  memset(nurse_pk, 0x5e, sizeof nurse_pk);
  uint32_t id = 0;
  for (int round = 0; round < 28; round++) {
    uint8_t *evs[3];
    size_t lens[3], n = 1 + (size_t)round % 3;
    for (size_t i = 0; i < n; i++) {
      char stream[32];
      /* patient-4 takes no more events once erased */
      unsigned streams = round > 12 ? 4 : 5;
      snprintf(stream, sizeof stream, "patient-%u", (unsigned)(round * 3 + (int)i) % streams);
      evs[i] = make_event(stream, CLINLOG__V1__EVENT__BODY_OBSERVATION_RECORDED, NULL, NULL, ++id,
                          &lens[i]);
    }
    append(evs, lens, n, round % 2);
    if (round == 6) { /* a system stream started mid-log: its key travels with it */
      evs[0] = make_event("$principal-nurse-1", CLINLOG__V1__EVENT__BODY_PRINCIPAL_REGISTERED,
                          "nurse-1", nurse_pk, ++id, &lens[0]);
      append(evs, lens, 1, 0);
    }
    if (round == 12) { /* catch-up brings an erased stream's empty key */
      evs[0] = make_event("$erasures", CLINLOG__V1__EVENT__BODY_STREAM_ERASED, "patient-4", NULL,
                          ++id, &lens[0]);
      append(evs, lens, 1, 0);
    }
  }
  uint8_t root[32];
  cl_log_head(g_a, &g_na, root);
  if (g_na < 2 || g_na > MAX_SEQ)
    fail_setup("source log size", NULL);
  if (cl_log_read_records(g_a, 1, g_na, keep_record, NULL, &err) != 0)
    fail_setup("reading A's records", &err);
  for (uint64_t s = 1; s <= g_na; s++)
    if (cl_log_root_at(g_a, s, g_roots[s], &err) != 0)
      fail_setup("A's roots", &err);
}

/* ---- the replica B ---- */

/* B as created (closed), copied for each new B: cl_log_create opens and
 * closes the database, which would double the cost of an accepted chunk. */
static char g_copy_from[4200], g_copy_to[4200];

static int copy_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)ftw;
  char to[8400];
  snprintf(to, sizeof to, "%s%s", g_copy_to, path + strlen(g_copy_from));
  if (flag == FTW_D)
    return mkdir(to, sb->st_mode & 0777);
  if (flag != FTW_F)
    return -1;
  FILE *in = fopen(path, "rb");
  int fd = open(to, O_WRONLY | O_CREAT | O_EXCL, sb->st_mode & 0777);
  FILE *out = fd >= 0 ? fdopen(fd, "wb") : NULL;
  int rc = in && out ? 0 : -1;
  char buf[65536];
  size_t got;
  while (rc == 0 && (got = fread(buf, 1, sizeof buf, in)) > 0)
    rc = fwrite(buf, 1, got, out) == got ? 0 : -1;
  if (in && ferror(in))
    rc = -1;
  if (in)
    fclose(in);
  if (out ? fclose(out) != 0 : (fd >= 0 && close(fd) != 0))
    rc = -1;
  return rc;
}

static void make_replica(void) {
  cl_err err;
  char mk[4200], lk[4200];
  snprintf(mk, sizeof mk, "%s/a/keys/master.key", g_root);
  snprintf(lk, sizeof lk, "%s/a/keys/log.key", g_root);
  cl_log_options o;
  cl_log_options_init(&o);
  o.master_key_path = mk;
  o.log_key_path = lk;
  o.sync = 0;
  o.checkpoint_interval = 16; /* ingest writes checkpoints too */
  if (!g_copy_from[0]) {
    snprintf(g_copy_from, sizeof g_copy_from, "%s/b-template", g_root);
    o.dir = g_copy_from;
    cl_log_genesis g = {.origin = cl_log_origin(g_a), .replica = 1};
    if (cl_log_create(&o, &g, &err) != 0)
      fail_setup("replica", &err);
  }
  snprintf(g_copy_to, sizeof g_copy_to, "%s/b-%u", g_root, ++g_b_generation);
  if (nftw(g_copy_from, copy_cb, 16, FTW_PHYS) != 0)
    fail_setup("copying the replica", NULL);
  o.dir = g_copy_to;
  if (cl_log_open(&o, &g_b, &err) != 0)
    fail_setup("replica", &err);
  cl_log_head(g_b, &g_b_size, g_b_root);
}

static void drop_replica(void) {
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/b-%u", g_root, g_b_generation);
  cl_log_close(g_b);
  g_b = NULL;
  fuzz_rmtree(dir);
}

static void teardown(void) {
  if (g_b)
    drop_replica();
  if (g_a)
    cl_log_close(g_a);
  g_a = NULL;
  for (uint64_t s = 1; s <= g_na; s++)
    free(g_rec[s].data);
  cl_signer_free(&g_admin);
  fuzz_rmtree(g_root);
}

static void setup(void) {
  if (g_a)
    return;
  cl_err err;
  const char *base = getenv("TMPDIR");
  snprintf(g_root, sizeof g_root, "%s/cl-fuzzingest-XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(g_root) || cl_crypto_init(&err) || cl_signer_generate(&g_admin, &err))
    abort();
  make_source();
  make_replica();
  atexit(teardown);
}

/* ---- one chunk, and what B must do with it ---- */

typedef struct chunk {
  uint64_t first_seq;
  cl_ingest_record recs[MAX_SEQ + 1];
  size_t n;
  cl_ingest_key keys[MAX_SEQ + 1];
  uint8_t key_system[MAX_SEQ + 1]; /* differential: keys[i] is a system stream's */
  size_t nkeys;
  uint64_t target_size;
  uint8_t target_root[32];
  uint8_t proof[MAX_PROOF][32];
  size_t nproof;
} chunk;

/* A refusal for the chunk's sake, not a failure of B itself. (Not only
 * the codes store/log.h lists: a system record whose key arrives empty is
 * refused with CL_ECORRUPT.) */
static int chunk_error(int rc) { return rc < 0 && rc != CL_EIO && rc != CL_EFAILED; }

/* Offers the chunk to B. Returns cl_log_ingest's result, having checked
 * that a refused chunk left B as it was, and that an accepted one brought B
 * to A's tree (a_target: the target is A's; ingest trusts the target, not
 * the records) or else to one its proof ties to the input's target; after
 * an accepted chunk B is made again. */
static int offer(const chunk *c, int a_target) {
  cl_err err;
  cl_err_clear(&err);
  int rc = cl_log_ingest(g_b, c->first_seq, c->recs, c->n, c->keys, c->nkeys, c->target_size,
                         c->target_root, (const uint8_t(*)[32])c->proof, c->nproof, &err);
  uint64_t size;
  uint8_t root[32];
  cl_log_head(g_b, &size, root);
  if (rc != 0) {
    if (!chunk_error(rc))
      finding("cl_log_ingest refused a chunk with %s: %s", cl_errname(rc), err.msg);
    if (size != g_b_size || memcmp(root, g_b_root, 32) != 0)
      finding("refused chunk moved B's head to %llu: %s", (unsigned long long)size, err.msg);
    /* an empty chunk is refused after the check that the log has not failed
     * (a refusal that cannot restore its in-memory state fails it) */
    cl_err e2;
    int prc = cl_log_ingest(g_b, 1, NULL, 0, NULL, 0, 1, root, NULL, 0, &e2);
    if (prc != CL_EINVAL)
      finding("after a refused chunk (%s), B answers %s: %s", err.msg, cl_errname(prc), e2.msg);
    return rc;
  }
  uint64_t last = c->first_seq + c->n - 1;
  if (size != last)
    finding("accepted chunk %llu..%llu left B at %llu", (unsigned long long)c->first_seq,
            (unsigned long long)last, (unsigned long long)size);
  if (a_target && (last > g_na || memcmp(root, g_roots[last], 32) != 0))
    finding("accepted chunk: B's root at %llu is not A's", (unsigned long long)size);
  /* the tree B stored gives the root it published */
  uint8_t stored[32];
  if (cl_log_root_at(g_b, last, stored, &err) != 0 || memcmp(stored, root, 32) != 0)
    finding("accepted chunk: B's stored tree at %llu does not give its head (%s)",
            (unsigned long long)last, err.msg);
  if (!a_target) {
    int tied =
        last == c->target_size
            ? memcmp(root, c->target_root, 32) == 0
            : cl_merkle_verify_consistency(last, c->target_size, root, c->target_root,
                                           (const uint8_t(*)[32])c->proof, c->nproof, &err) == 0;
    if (!tied)
      finding("accepted chunk: B's root at %llu is not tied to the target",
              (unsigned long long)size);
  }
  drop_replica();
  make_replica();
  return 0;
}

/* ---- input carving ---- */

static uint8_t take(const uint8_t **p, size_t *n) {
  if (*n == 0)
    return 0;
  (*n)--;
  return *(*p)++;
}

static uint64_t take_u64(const uint8_t **p, size_t *n) {
  uint64_t v = 0;
  for (unsigned i = 0; i < 8; i++)
    v |= (uint64_t)take(p, n) << (8 * i);
  return v;
}

/* Up to `want` bytes of the input, in place (fewer at its end). */
static const uint8_t *take_bytes(const uint8_t **p, size_t *n, size_t want, size_t *got) {
  const uint8_t *s = *p;
  *got = want < *n ? want : *n;
  *p += *got;
  *n -= *got;
  return s;
}

/* ---- raw mode ---- */

static void raw(const uint8_t *p, size_t n, unsigned flags) {
  int small = flags & 2, from_a = flags & 4, a_target = flags & 8, a_proof = flags & 16;
  chunk c;
  memset(&c, 0, sizeof c);
  /* the wrapped keys are copies: a short input still makes whole ones */
  uint8_t wrapped[MAX_RAW_KEYS][CL_WRAPPED_KEY_SIZE + 8], tags[MAX_RAW_KEYS][32];
  c.first_seq = small ? take(&p, &n) % 4 : take_u64(&p, &n);
  c.n = take(&p, &n) % (MAX_RAW_RECS + 1);
  for (size_t i = 0; i < c.n; i++) {
    uint8_t how = take(&p, &n);
    if (from_a && (how & 0x80)) {
      const src_record *s = &g_rec[1 + (how & 0x7f) % g_na];
      c.recs[i] = (cl_ingest_record){s->data, s->len};
    } else {
      size_t want = take(&p, &n) | (size_t)(how & 3) << 8, got;
      c.recs[i].data = take_bytes(&p, &n, want, &got);
      c.recs[i].len = got;
    }
  }
  c.nkeys = take(&p, &n) % (MAX_RAW_KEYS + 1);
  for (size_t i = 0; i < c.nkeys; i++) {
    uint8_t how = take(&p, &n);
    const src_record *s = from_a && (how & 0x80) ? &g_rec[1 + take(&p, &n) % g_na] : NULL;
    size_t got;
    memset(tags[i], 0, 32);
    if (s)
      memcpy(tags[i], s->tag, 32);
    else
      memcpy(tags[i], take_bytes(&p, &n, 32, &got), got);
    /* empty (erased), any length up to a few bytes past the right one, 72
     * bytes of input, or the record's real key from A */
    memset(wrapped[i], 0, sizeof wrapped[i]);
    size_t wl = 0;
    if ((how & 0x60) == 0x60 && s && s->starts_stream) {
      wl = s->wrapped_len;
      memcpy(wrapped[i], s->wrapped, wl);
    } else if (how & 0x60) {
      wl = (how & 0x60) == 0x20 ? take(&p, &n) % sizeof wrapped[i] : CL_WRAPPED_KEY_SIZE;
      memcpy(wrapped[i], take_bytes(&p, &n, wl, &got), got);
    }
    c.keys[i] = (cl_ingest_key){tags[i], wrapped[i], wl};
  }
  c.target_size = small ? take(&p, &n) % (g_na + 4) : take_u64(&p, &n);
  size_t got;
  const uint8_t *tr = take_bytes(&p, &n, 32, &got);
  memcpy(c.target_root, tr, got);
  int target_is_a = a_target && c.target_size >= 1 && c.target_size <= g_na;
  if (target_is_a)
    memcpy(c.target_root, g_roots[c.target_size], 32);
  uint64_t last = c.first_seq + c.n - 1;
  cl_err err;
  if (a_proof && target_is_a && c.n && last >= 1 && last < c.target_size) {
    if (cl_log_prove_consistency(g_a, last, c.target_size, c.proof, &c.nproof, &err) != 0)
      finding("A's consistency proof %llu -> %llu: %s", (unsigned long long)last,
              (unsigned long long)c.target_size, err.msg);
  } else {
    c.nproof = n / 32 < MAX_PROOF ? n / 32 : MAX_PROOF;
    memcpy(c.proof, p, c.nproof * 32);
  }
  offer(&c, target_is_a);
}

/* ---- differential mode ---- */

/* A's real chunk for records 1..k towards target t (k <= t <= A's size).
 * Record bytes point into `bytes` (mutable copies, freed by the caller). */
static void real_chunk(chunk *c, uint64_t first, uint64_t k, uint64_t t, uint8_t **bytes,
                       uint8_t (*wrapped)[CL_WRAPPED_KEY_SIZE]) {
  memset(c, 0, sizeof *c);
  c->first_seq = first;
  for (uint64_t s = first; s <= k; s++) {
    const src_record *r = &g_rec[s];
    uint8_t *b = malloc(r->len);
    if (!b)
      abort();
    memcpy(b, r->data, r->len);
    bytes[c->n] = b;
    c->recs[c->n++] = (cl_ingest_record){b, r->len};
    if (r->starts_stream) {
      size_t j = c->nkeys++;
      memcpy(wrapped[j], r->wrapped, r->wrapped_len);
      c->keys[j] = (cl_ingest_key){r->tag, wrapped[j], r->wrapped_len};
      c->key_system[j] = (uint8_t)r->system;
    }
  }
  c->target_size = t;
  memcpy(c->target_root, g_roots[t], 32);
  cl_err err;
  if (k < t && cl_log_prove_consistency(g_a, k, t, c->proof, &c->nproof, &err) != 0)
    finding("A's consistency proof %llu -> %llu: %s", (unsigned long long)k, (unsigned long long)t,
            err.msg);
}

static int same_chunk(const chunk *a, const chunk *b) {
  if (a->first_seq != b->first_seq || a->n != b->n || a->nkeys != b->nkeys ||
      a->target_size != b->target_size || a->nproof != b->nproof ||
      memcmp(a->target_root, b->target_root, 32) != 0 ||
      memcmp(a->proof, b->proof, a->nproof * 32) != 0)
    return 0;
  for (size_t i = 0; i < a->n; i++)
    if (a->recs[i].len != b->recs[i].len ||
        memcmp(a->recs[i].data, b->recs[i].data, a->recs[i].len))
      return 0;
  for (size_t i = 0; i < a->nkeys; i++)
    if (memcmp(a->keys[i].tag, b->keys[i].tag, 32) != 0 ||
        a->keys[i].wrapped_len != b->keys[i].wrapped_len ||
        memcmp(a->keys[i].wrapped, b->keys[i].wrapped, a->keys[i].wrapped_len) != 0)
      return 0;
  return 1;
}

static void differential(const uint8_t *p, size_t n, unsigned flags) {
  uint64_t k = 1 + take(&p, &n) % g_na;
  uint64_t t = k + take(&p, &n) % (g_na - k + 1);
  uint8_t *bytes[MAX_SEQ], *orig_bytes[MAX_SEQ];
  uint8_t wrapped[MAX_SEQ][CL_WRAPPED_KEY_SIZE], orig_wrapped[MAX_SEQ][CL_WRAPPED_KEY_SIZE];
  chunk c, orig;
  real_chunk(&c, 1, k, t, bytes, wrapped);
  real_chunk(&orig, 1, k, t, orig_bytes, orig_wrapped);
  size_t nbytes = c.n;

  /* every change below changes the chunk (two may still cancel out: then
   * it is A's chunk again, and must pass) */
  unsigned nm = 1 + take(&p, &n) % 3;
  for (unsigned m = 0; m < nm; m++) {
    uint8_t op = take(&p, &n), a = take(&p, &n), b = take(&p, &n), v = take(&p, &n);
    uint8_t bit = (uint8_t)(1u << (v % 8));
    op %= 8;
    if (op == 2 && c.n < 2)
      op = 1;
    if (op == 4 && c.nkeys == 0)
      op = 5;
    if (op == 5 && c.nkeys == 0)
      op = 7;
    if (op == 6 && c.nproof == 0)
      op = 7;
    if ((op == 0 || op == 1) && c.n == 0)
      op = 3;
    if (op != 5)
    switch (op) {
    case 0: { /* flip a bit of a record (the bytes are ours: a copy of A's) */
      cl_ingest_record *r = &c.recs[a % c.n];
      ((uint8_t *)r->data)[((size_t)b << 8 | v) % r->len] ^= (uint8_t)(1u << (a % 8));
      break;
    }
    case 1: { /* drop a record */
      size_t i = a % c.n;
      memmove(&c.recs[i], &c.recs[i + 1], (c.n - i - 1) * sizeof c.recs[0]);
      c.n--;
      break;
    }
    case 2: { /* swap two records */
      size_t i = a % c.n, j = (i + 1 + b % (c.n - 1)) % c.n;
      cl_ingest_record tmp = c.recs[i];
      c.recs[i] = c.recs[j];
      c.recs[j] = tmp;
      break;
    }
    case 3: /* another first_seq: after B's head, or far off (wrapping) */
      c.first_seq = (v & 1) ? c.first_seq + 1 + a : c.first_seq - 1 - ((uint64_t)a << (b % 64));
      break;
    case 4: { /* drop a key */
      size_t i = a % c.nkeys;
      memmove(&c.keys[i], &c.keys[i + 1], (c.nkeys - i - 1) * sizeof c.keys[0]);
      memmove(&c.key_system[i], &c.key_system[i + 1], c.nkeys - i - 1);
      c.nkeys--;
      break;
    }
    case 5: { /* corrupt a wrapped key (an erased stream's empty one gets bytes) */
      cl_ingest_key *key = &c.keys[a % c.nkeys];
      uint8_t *w = (uint8_t *)key->wrapped;
      if (key->wrapped_len) {
        w[b % key->wrapped_len] ^= bit;
      } else {
        memset(w, v, CL_WRAPPED_KEY_SIZE);
        key->wrapped_len = CL_WRAPPED_KEY_SIZE;
      }
      break;
    }
    case 6: /* change a proof hash */
      c.proof[a % c.nproof][b % 32] ^= bit;
      break;
    default: /* change the target root */
      c.target_root[b % 32] ^= bit;
      break;
    }
  }
  int unchanged = same_chunk(&c, &orig);
  int rc = offer(&c, 1);
  if (unchanged && rc != 0)
    finding("A's own chunk 1..%llu (target %llu) refused", (unsigned long long)k,
            (unsigned long long)t);
  if (!unchanged && rc == 0)
    finding("a changed chunk 1..%llu (target %llu) was accepted", (unsigned long long)k,
            (unsigned long long)t);
  /* a refusal leaves nothing behind in memory either: the real chunk passes */
  if (rc != 0 && (flags & 0x0e) == 0x0e && offer(&orig, 1) != 0)
    finding("A's own chunk 1..%llu refused after a changed one", (unsigned long long)k);
  for (size_t i = 0; i < nbytes; i++) {
    free(bytes[i]);
    free(orig_bytes[i]);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  setup();
  unsigned flags = data[0];
  if (flags & 1)
    differential(data + 1, size - 1, flags);
  else
    raw(data + 1, size - 1, flags);
  return 0;
}

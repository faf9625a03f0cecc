/* Tests for replication/fsm.c: clinlog's Raft state machine driven by
 * libraft's deterministic in-memory fixture (raft/fixture.h), with a real
 * cl_log per server and an in-process catch-up (records copied from another
 * server's store, verified by cl_log_ingest).
 *
 * Every test ends by checking that the stores converged: same tree size and
 * root, byte-identical records, identical checkpoints at every multiple of
 * the checkpoint interval, every event decryptable, the applied Raft index
 * equal everywhere, and (where it matters) an auditor's replay (cl_verify).
 * Time is the fixture's simulated clock; the election timeouts are fixed, so
 * the runs are deterministic (event ids and nonces are random, but nothing
 * in the Raft schedule depends on them). CL_RAFT_TRACE=1 prints libraft's
 * diagnostics.
 *
 * The workload (submit_work) mixes new and existing streams, batch and
 * per-event signatures, expected-version conflicts, duplicate retries, a
 * principal registration (a keyring change) and a stream erasure, so the
 * catch-up path (cl_log_ingest) has to rebuild keys, keyring and erasures
 * as the apply path does. */
#include <criterion/criterion.h>
#include <raft.h>
#include <raft/fixture.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clinlog/v1/cluster.pb-c.h"
#include "replication/fsm.h"
#include "store/log.h"
#include "store/verify.h"
#include "tests/support/testutil.h"

#define MAX_NODES 5
#define MAX_SUBS 512
#define MAX_WORK 256
#define MAX_BATCH_EVENTS 6
#define MAX_CHUNK 128
#define CP_INTERVAL 10
#define ELECTION_MS 1000

/* ------------------------------------------------------------ the cluster */

/* A group of batches the submitting server waits for (cl_fsm.claim). */
typedef struct claim {
  struct claim *next;
  uint64_t group;
  size_t n;
  cl_apply_item *items; /* want_result set; results freed at teardown */
  int done;             /* cl_fsm.done was called */
  int rc;               /* its outcome */
} claim;

struct cluster;

typedef struct node {
  struct cluster *c;
  unsigned i;
  char dir[4096];
  cl_log *log;
  cl_fsm fsm;
  struct raft_fsm rfsm;
  int (*restore)(struct raft_fsm *, struct raft_buffer *); /* cl_fsm's own */
  char api[16];
  struct raft_tracer tracer;
  unsigned n_fatal;
  char fatal_msg[CL_ERR_MSG_SIZE + 256];
  unsigned n_fetch;   /* catch-up calls */
  unsigned n_restore; /* snapshots restored */
  claim *claims;
} node;

/* A raft_apply request and what became of it. */
typedef struct sub {
  struct raft_apply req; /* first: the callback casts back */
  int done;
  int status;
} sub;

/* What entry k of the workload did, for the checks. */
typedef struct work {
  claim *cl;                         /* the leader's claim (NULL if not claimed) */
  int kind;                          /* WORK_* of its first batch */
  uint8_t ids[MAX_BATCH_EVENTS][16]; /* first batch's event ids */
  size_t n_ids;
} work;

enum { WORK_PLAIN, WORK_CONFLICT, WORK_RETRY };

typedef struct wbatch wbatch;

typedef struct cluster {
  struct raft_fixture f;
  int fixture_up;
  unsigned n;
  node nodes[MAX_NODES];
  char *root; /* temp directory holding every data directory */
  char *dir0; /* server 0's data directory */
  char origin[256];
  cl_signer admin;
  cl_signer nurse; /* registered by the workload's entry NURSE_ENTRY */
  sub *subs;
  size_t n_subs;
  uint64_t group;
  unsigned chunk;      /* records per catch-up chunk */
  uint64_t tamper_seq; /* catch-up flips a byte of this record (0: never) */
  unsigned tamper_dst; /* ... when copying to this server (MAX_NODES: any) */
  int journaling;      /* keep a copy of every submitted entry */
  size_t n_journal;
  raft_index jindex[MAX_SUBS];
  struct raft_buffer journal[MAX_SUBS];
  /* workload */
  unsigned k; /* entries generated so far */
  unsigned n_streams;
  uint64_t expect_events; /* events the workload's committed batches add */
  wbatch *prev;           /* first batch of the previous entry (retried later) */
  work work[MAX_WORK];
} cluster;

static node *fsm_node(void *ctx) { return ctx; }

static void node_fatal(void *ctx, const char *msg) {
  node *n = fsm_node(ctx);
  if (n->n_fatal++ == 0)
    snprintf(n->fatal_msg, sizeof n->fatal_msg, "%s", msg);
}

static cl_apply_item *node_claim(void *ctx, uint64_t group, size_t *cnt) {
  node *n = fsm_node(ctx);
  for (claim *cl = n->claims; cl; cl = cl->next)
    if (cl->group == group && !cl->done) {
      *cnt = cl->n;
      return cl->items;
    }
  return NULL;
}

static void node_done(void *ctx, uint64_t group, int rc, const cl_err *err) {
  (void)err;
  node *n = fsm_node(ctx);
  for (claim *cl = n->claims; cl; cl = cl->next)
    if (cl->group == group && !cl->done) {
      cl->done = 1;
      cl->rc = rc;
      return;
    }
}

static int node_restore(struct raft_fsm *rf, struct raft_buffer *buf) {
  node *n = fsm_node(((cl_fsm *)rf->data)->ctx);
  n->n_restore++;
  return n->restore(rf, buf);
}

/* ------------------------------------------------------------- catch-up */

/* cl_fsm.fetch: from the named server if it holds the target, else from
 * any other that does. */
static int node_fetch(void *ctx, const char *api_address, uint64_t size, const uint8_t root[32],
                      cl_err *err) {
  node *n = fsm_node(ctx);
  cluster *c = n->c;
  n->n_fetch++;
  for (int pass = 0; pass < 2; pass++)
    for (unsigned j = 0; j < c->n; j++) {
      node *m = &c->nodes[j];
      if (m == n || (pass == 0 && (!api_address || strcmp(api_address, m->api) != 0)))
        continue;
      uint64_t have;
      cl_log_head(m->log, &have, NULL);
      if (have < size)
        continue;
      uint64_t tamper = c->tamper_dst == MAX_NODES || c->tamper_dst == n->i ? c->tamper_seq : 0;
      return cl_test_copy_records(m->log, n->log, size, root, c->chunk, tamper, err);
    }
  return cl_err_set(err, CL_EUNAVAILABLE, "no server holds %llu events", (unsigned long long)size);
}

/* ------------------------------------------------------- signed batches */

struct wbatch {
  const cl_signer *signer;
  size_t n;
  uint8_t *ev[MAX_BATCH_EVENTS];
  size_t len[MAX_BATCH_EVENTS];
  uint8_t id[MAX_BATCH_EVENTS][16];
  int batch_sig;
  char x_stream[64]; /* expectation, if x_stream[0] */
  int x_kind;
  uint64_t x_version;
};

/* Observations in `streams`, recorded by `principal` and signed by
 * `signer` (borrowed: must outlive w). */
static void wbatch_init_by(wbatch *w, char streams[][64], size_t n, int batch_sig,
                           const char *principal, const cl_signer *signer) {
  cr_assert(n > 0 && n <= MAX_BATCH_EVENTS);
  memset(w, 0, sizeof *w);
  w->signer = signer;
  w->n = n;
  w->batch_sig = batch_sig;
  for (size_t i = 0; i < n; i++) {
    w->ev[i] = cl_test_event(streams[i], principal, "replicated", w->id[i], &w->len[i]);
    cr_assert_not_null(w->ev[i]);
  }
}

static void wbatch_init(wbatch *w, char streams[][64], size_t n, int batch_sig,
                        const cl_signer *admin) {
  wbatch_init_by(w, streams, n, batch_sig, "admin", admin);
}

/* A PrincipalRegistered event (admin's) giving `pid` the nurse role with
 * key pk. Returns-owned buffer. */
static uint8_t *principal_event(const char *pid, const uint8_t pk[32], uint8_t id[16],
                                size_t *len) {
  randombytes_buf(id, 16);
  char stream[64], *roles[1] = {"nurse"};
  snprintf(stream, sizeof stream, "$principal-%s", pid);
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  Clinlog__V1__RecordedBy by = CLINLOG__V1__RECORDED_BY__INIT;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  Clinlog__V1__PrincipalRegistered pr = CLINLOG__V1__PRINCIPAL_REGISTERED__INIT;
  ts.seconds = 1793000000;
  by.principal_id = "admin";
  by.role = "admin";
  pr.principal_id = (char *)pid;
  pr.display_name = (char *)pid;
  pr.n_roles = 1;
  pr.roles = roles;
  pr.public_key = (ProtobufCBinaryData){32, (uint8_t *)pk};
  pr.kind = "person";
  ev.event_id = (ProtobufCBinaryData){16, id};
  ev.stream = stream;
  ev.occurred_at = &ts;
  ev.recorded_by = &by;
  ev.body_case = CLINLOG__V1__EVENT__BODY_PRINCIPAL_REGISTERED;
  ev.principal_registered = &pr;
  uint8_t *buf = cl_test_pack_event(&ev, len);
  cr_assert_not_null(buf);
  return buf;
}

static void wbatch_free(wbatch *w) {
  if (!w)
    return;
  for (size_t i = 0; i < w->n; i++)
    free(w->ev[i]);
  w->n = 0;
}

/* A StreamErased event (admin's) crypto-shredding `stream`. Returns-owned
 * buffer. */
static uint8_t *erase_event(const char *stream, uint8_t id[16], size_t *len) {
  randombytes_buf(id, 16);
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  Clinlog__V1__RecordedBy by = CLINLOG__V1__RECORDED_BY__INIT;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  Clinlog__V1__StreamErased se = CLINLOG__V1__STREAM_ERASED__INIT;
  ts.seconds = 1793000000;
  by.principal_id = "admin";
  by.role = "admin";
  se.stream = (char *)stream;
  se.reason = "erasure request";
  ev.event_id = (ProtobufCBinaryData){16, id};
  ev.stream = "$erasures";
  ev.occurred_at = &ts;
  ev.recorded_by = &by;
  ev.body_case = CLINLOG__V1__EVENT__BODY_STREAM_ERASED;
  ev.stream_erased = &se;
  uint8_t *buf = cl_test_pack_event(&ev, len);
  cr_assert_not_null(buf);
  return buf;
}

/* Signs w with its signer and prepares it on `log` (the leader's). */
static Clinlog__V1__PreparedBatch *wbatch_prepare(cl_log *log, const wbatch *w) {
  const cl_signer *s = w->signer;
  Clinlog__V1__AppendBatch b = CLINLOG__V1__APPEND_BATCH__INIT;
  ProtobufCBinaryData evs[MAX_BATCH_EVENTS];
  uint8_t hashes[MAX_BATCH_EVENTS][32], sigs[MAX_BATCH_EVENTS][64];
  Clinlog__V1__Signature sv[MAX_BATCH_EVENTS], *sp[MAX_BATCH_EVENTS];
  Clinlog__V1__Signature bs = CLINLOG__V1__SIGNATURE__INIT;
  for (size_t i = 0; i < w->n; i++) {
    evs[i] = (ProtobufCBinaryData){w->len[i], w->ev[i]};
    cl_event_hash(w->ev[i], w->len[i], hashes[i]);
  }
  b.n_events = w->n;
  b.events = evs;
  if (w->batch_sig) {
    cl_sign_batch(s, (const uint8_t(*)[32])hashes, w->n, sigs[0]);
    bs.key_id = (ProtobufCBinaryData){32, (uint8_t *)s->pk};
    bs.signature = (ProtobufCBinaryData){64, sigs[0]};
    b.batch_signature = &bs;
  } else {
    for (size_t i = 0; i < w->n; i++) {
      clinlog__v1__signature__init(&sv[i]);
      cl_sign_event(s, hashes[i], sigs[i]);
      sv[i].key_id = (ProtobufCBinaryData){32, (uint8_t *)s->pk};
      sv[i].signature = (ProtobufCBinaryData){64, sigs[i]};
      sp[i] = &sv[i];
    }
    b.n_signatures = w->n;
    b.signatures = sp;
  }
  Clinlog__V1__StreamExpectation x = CLINLOG__V1__STREAM_EXPECTATION__INIT, *xp = &x;
  Clinlog__V1__ExpectedVersion xv = CLINLOG__V1__EXPECTED_VERSION__INIT;
  if (w->x_stream[0]) {
    x.stream = (char *)w->x_stream;
    xv.kind = w->x_kind;
    xv.version = w->x_version;
    x.expected = &xv;
    b.n_expectations = 1;
    b.expectations = &xp;
  }
  Clinlog__V1__PreparedBatch *pb = NULL;
  cl_err err;
  cl_err_clear(&err);
  int rc = cl_log_prepare(log, &b, &pb, &err);
  cr_assert_eq(rc, 0, "prepare: %s", err.msg);
  return pb;
}

/* ------------------------------------------------------ setup, teardown */

static void open_node(cluster *c, node *n) {
  char mk[4096], lk[4096];
  snprintf(mk, sizeof mk, "%s/keys/master.key", c->dir0);
  snprintf(lk, sizeof lk, "%s/keys/log.key", c->dir0);
  cl_log_options o;
  cl_log_options_init(&o);
  o.dir = n->dir;
  o.master_key_path = mk;
  o.log_key_path = lk;
  o.checkpoint_interval = CP_INTERVAL;
  o.sync = 0;
  cl_err err;
  cl_err_clear(&err);
  n->log = NULL;
  cr_assert_eq(cl_log_open(&o, &n->log, &err), 0, "open %s: %s", n->dir, err.msg);
  n->fsm.log = n->log;
}

/* Creates server 0's store (genesis + pre_events events) and n-1 empty
 * replica stores; does not start Raft. */
static cluster *stores_new(unsigned n, unsigned pre_events) {
  cr_assert(n <= MAX_NODES);
  cluster *c = calloc(1, sizeof *c);
  cr_assert_not_null(c);
  c->n = n;
  c->chunk = 8;
  c->tamper_dst = MAX_NODES;
  c->subs = calloc(MAX_SUBS, sizeof *c->subs);
  cr_assert_not_null(c->subs);
  cl_log *log0 = cl_test_log_new("fsm", &c->dir0, &c->admin, CP_INTERVAL);
  cl_err gerr;
  cr_assert_eq(cl_signer_generate(&c->nurse, &gerr), 0);
  cr_assert_not_null(log0);
  cl_err err;
  for (unsigned i = 0; i < pre_events; i++) {
    char stream[32];
    snprintf(stream, sizeof stream, "pre-%u", i % 5);
    cr_assert_eq(cl_test_append1(log0, &c->admin, stream, "admin", NULL, NULL, &err), 0, "%s",
                 err.msg);
  }
  snprintf(c->origin, sizeof c->origin, "%s", cl_log_origin(log0));
  cl_log_close(log0);
  /* <root>/data is server 0's directory */
  size_t len = strlen(c->dir0);
  cr_assert(len > 5 && strcmp(c->dir0 + len - 5, "/data") == 0);
  c->root = strndup(c->dir0, len - 5);
  for (unsigned i = 0; i < n; i++) {
    node *nd = &c->nodes[i];
    nd->c = c;
    nd->i = i;
    snprintf(nd->api, sizeof nd->api, "srv%u", i);
    if (i == 0) {
      snprintf(nd->dir, sizeof nd->dir, "%s", c->dir0);
    } else {
      snprintf(nd->dir, sizeof nd->dir, "%s/r%u", c->root, i);
      char mk[4096], lk[4096];
      snprintf(mk, sizeof mk, "%s/keys/master.key", c->dir0);
      snprintf(lk, sizeof lk, "%s/keys/log.key", c->dir0);
      cl_log_options o;
      cl_log_options_init(&o);
      o.dir = nd->dir;
      o.master_key_path = mk;
      o.log_key_path = lk;
      cl_log_genesis g = {.replica = 1, .origin = c->origin};
      cr_assert_eq(cl_log_create(&o, &g, &err), 0, "create replica: %s", err.msg);
    }
    open_node(c, nd);
    nd->fsm.origin = i + 1;
    nd->fsm.api_address = nd->api;
    nd->fsm.claim = node_claim;
    nd->fsm.done = node_done;
    nd->fsm.fetch = node_fetch;
    nd->fsm.fatal = node_fatal;
    nd->fsm.ctx = nd;
  }
  return c;
}

/* libraft's diagnostics, shown with CL_RAFT_TRACE=1 (the fixture's own
 * tracer prints every step). */
static void trace_emit(struct raft_tracer *t, int type, const void *data) {
  const struct raft_tracer_info *info = data;
  if (type == RAFT_TRACER_DIAGNOSTIC && info->diagnostic.level <= 3 && getenv("CL_RAFT_TRACE"))
    fprintf(stderr, "raft %u: %s\n", *(unsigned *)t->impl, info->diagnostic.message);
}

/* Adds every store's FSM to a fresh fixture, bootstraps all as voters and
 * starts them. snapshot_threshold 0 keeps libraft's default. */
static void raft_up(cluster *c, unsigned voters, unsigned snapshot_threshold,
                    unsigned snapshot_trailing) {
  cr_assert_eq(raft_fixture_init(&c->f), 0);
  c->fixture_up = 1;
  for (unsigned i = 0; i < c->n; i++) {
    node *nd = &c->nodes[i];
    cl_fsm_init(&nd->fsm, &nd->rfsm);
    nd->restore = nd->rfsm.restore;
    nd->rfsm.restore = node_restore;
    cr_assert_eq(raft_fixture_grow(&c->f, &nd->rfsm), 0);
    nd->fsm.raft = raft_fixture_get(&c->f, i);
    nd->tracer = (struct raft_tracer){.impl = &nd->i, .version = 2, .emit = trace_emit};
    nd->fsm.raft->tracer = &nd->tracer;
    raft_fixture_set_randomized_election_timeout(&c->f, i, ELECTION_MS + i * 100);
    if (snapshot_threshold) {
      raft_set_snapshot_threshold(nd->fsm.raft, snapshot_threshold);
      raft_set_snapshot_trailing(nd->fsm.raft, snapshot_trailing);
    }
  }
  struct raft_configuration conf;
  cr_assert_eq(raft_fixture_configuration(&c->f, voters, &conf), 0);
  cr_assert_eq(raft_fixture_bootstrap(&c->f, &conf), 0);
  raft_configuration_close(&conf);
  cr_assert_eq(raft_fixture_start(&c->f), 0);
}

static void raft_down(cluster *c) {
  if (c->fixture_up)
    raft_fixture_close(&c->f); /* fails pending requests: subs still valid */
  c->fixture_up = 0;
  memset(c->subs, 0, MAX_SUBS * sizeof *c->subs);
  c->n_subs = 0;
}

static void claims_free(node *nd) {
  while (nd->claims) {
    claim *cl = nd->claims;
    nd->claims = cl->next;
    for (size_t i = 0; cl->done && cl->rc == 0 && i < cl->n; i++)
      if (cl->items[i].rc == 0 || cl->items[i].rc == CL_ECONFLICT)
        cl_append_result_free(&cl->items[i].r);
    free(cl->items);
    free(cl);
  }
}

static void cluster_free(cluster *c) {
  if (!c)
    return;
  raft_down(c);
  free(c->subs);
  for (unsigned i = 0; i < c->n; i++) {
    claims_free(&c->nodes[i]);
    cl_log_close(c->nodes[i].log);
  }
  if (c->prev) {
    wbatch_free(c->prev);
    free(c->prev);
  }
  for (size_t i = 0; i < c->n_journal; i++)
    raft_free(c->journal[i].base);
  cl_signer_free(&c->admin);
  cl_signer_free(&c->nurse);
  cl_test_rmtree(c->root);
  free(c->root);
  free(c->dir0);
  free(c);
}

static cluster *cur; /* the running test's cluster, freed by fini */

static void fini(void) {
  cluster_free(cur);
  cur = NULL;
}

TestSuite(fsm, .fini = fini, .timeout = 120);

/* ------------------------------------------------------------- stepping */

#define ALL(c) ((1u << (c)->n) - 1)

/* The live server in the leader state with the highest term, among mask
 * (c->n if none). */
static unsigned leader_among(cluster *c, unsigned mask) {
  unsigned best = c->n;
  raft_term term = 0;
  for (unsigned i = 0; i < c->n; i++) {
    struct raft *r = raft_fixture_get(&c->f, i);
    if (!(mask & 1u << i) || !raft_fixture_alive(&c->f, i) || raft_state(r) != RAFT_LEADER)
      continue;
    if (raft_current_term(r) > term) {
      term = raft_current_term(r);
      best = i;
    }
  }
  return best;
}

typedef struct until {
  cluster *c;
  unsigned mask;
  raft_index index;
  sub *s;
} until;

static bool has_leader(struct raft_fixture *f, void *arg) {
  (void)f;
  until *u = arg;
  return leader_among(u->c, u->mask) < u->c->n;
}

static bool has_applied(struct raft_fixture *f, void *arg) {
  until *u = arg;
  for (unsigned i = 0; i < u->c->n; i++)
    if (u->mask & 1u << i && raft_last_applied(raft_fixture_get(f, i)) < u->index)
      return false;
  return true;
}

static bool sub_done(struct raft_fixture *f, void *arg) {
  (void)f;
  until *u = arg;
  return u->s->done;
}

static unsigned wait_leader(cluster *c, unsigned mask) {
  until u = {c, mask, 0, NULL};
  cr_assert(raft_fixture_step_until(&c->f, has_leader, &u, 20 * ELECTION_MS), "no leader elected");
  return leader_among(c, mask);
}

static void wait_applied(cluster *c, unsigned mask, raft_index index) {
  until u = {c, mask, index, NULL};
  bool ok = raft_fixture_step_until(&c->f, has_applied, &u, 60 * ELECTION_MS);
  for (unsigned i = 0; i < c->n; i++)
    cr_assert_eq(c->nodes[i].n_fatal, 0, "server %u stopped: %s", i, c->nodes[i].fatal_msg);
  cr_assert(ok, "servers %#x did not apply raft index %llu", mask, (unsigned long long)index);
}

static void apply_cb(struct raft_apply *req, int status, void *result) {
  (void)result;
  sub *s = (sub *)req;
  s->done = 1;
  s->status = status;
}

/* Submits e on server `leader`; NULL if raft_apply refuses it. */
static sub *submit_entry(cluster *c, unsigned leader, Clinlog__V1__RaftEntry *e) {
  cr_assert(c->n_subs < MAX_SUBS);
  struct raft_buffer buf;
  cl_err err;
  cr_assert_eq(cl_fsm_encode(e, &buf, &err), 0, "%s", err.msg);
  cr_assert_eq(buf.len % 8, 0);
  sub *s = &c->subs[c->n_subs];
  struct raft_buffer copy = {NULL, 0};
  if (c->journaling) {
    copy.base = raft_malloc(buf.len);
    cr_assert_not_null(copy.base);
    memcpy(copy.base, buf.base, buf.len);
    copy.len = buf.len;
  }
  if (raft_apply(raft_fixture_get(&c->f, leader), &s->req, &buf, 1, apply_cb) != 0) {
    raft_free(buf.base);
    raft_free(copy.base);
    return NULL;
  }
  if (copy.base) {
    cr_assert(c->n_journal < MAX_SUBS);
    c->jindex[c->n_journal] = s->req.index;
    c->journal[c->n_journal++] = copy;
  }
  c->n_subs++;
  return s;
}

/* Waits for the request's outcome; returns its raft status. */
static int wait_sub(cluster *c, sub *s) {
  until u = {c, 0, 0, s};
  cr_assert(raft_fixture_step_until(&c->f, sub_done, &u, 60 * ELECTION_MS),
            "raft entry %llu never completed", (unsigned long long)s->req.index);
  return s->status;
}

/* Submits server 0's tree head (the cluster's first entry) on `leader`. */
static sub *submit_head_entry(cluster *c, unsigned leader) {
  uint64_t size;
  uint8_t root[32];
  cl_log_head(c->nodes[0].log, &size, root);
  Clinlog__V1__TreeHead h = CLINLOG__V1__TREE_HEAD__INIT;
  h.tree_size = size;
  h.root_hash = (ProtobufCBinaryData){32, root};
  h.api_address = "srv0";
  Clinlog__V1__RaftEntry e = CLINLOG__V1__RAFT_ENTRY__INIT;
  e.head = &h;
  return submit_entry(c, leader, &e);
}

/* The first entry of the cluster: server 0's tree head. Returns its index
 * once every server in mask applied it. */
static raft_index submit_head(cluster *c, unsigned mask) {
  unsigned leader = wait_leader(c, ALL(c));
  sub *s = submit_head_entry(c, leader);
  cr_assert_not_null(s);
  cr_assert_eq(wait_sub(c, s), 0);
  wait_applied(c, mask, s->req.index);
  return s->req.index;
}

/* Submits batches (prepared, ownership kept by the caller) as one entry on
 * `leader`; with out_claim the leader waits for their outcome (the claim is
 * registered before the entry can possibly apply). */
static sub *submit_batches(cluster *c, unsigned leader, Clinlog__V1__PreparedBatch **pbs, size_t n,
                           claim **out_claim) {
  node *ld = &c->nodes[leader];
  Clinlog__V1__RaftEntry e = CLINLOG__V1__RAFT_ENTRY__INIT;
  e.n_batches = n;
  e.batches = pbs;
  e.origin = ld->fsm.origin;
  e.group = ++c->group;
  claim *cl = NULL;
  if (out_claim) {
    cl = calloc(1, sizeof *cl);
    cr_assert_not_null(cl);
    cl->group = e.group;
    cl->n = n;
    cl->items = calloc(n, sizeof *cl->items);
    cr_assert_not_null(cl->items);
    for (size_t i = 0; i < n; i++)
      cl->items[i].want_result = 1;
  }
  if (cl) {
    cl->next = ld->claims;
    ld->claims = cl;
  }
  sub *s = submit_entry(c, leader, &e);
  if (cl && !s) {
    ld->claims = cl->next;
    free(cl->items);
    free(cl);
    cl = NULL;
  }
  if (out_claim)
    *out_claim = cl;
  return s;
}

/* ------------------------------------------------------------- workload */

#define NURSE_ENTRY 12
#define ERASE_ENTRY 20
#define ERASED_STREAM "patient-1"

/* Generates and submits entry k of the workload on the current leader (of
 * mask): one or two batches of 1-4 events, new and existing streams, batch
 * and per-event signatures; every 10th entry (k % 10 == 5) has an
 * expected-version conflict, and k % 10 == 7 retries the first batch of the
 * entry before it (a duplicate). Entry NURSE_ENTRY registers principal
 * nurse-1 (a keyring change); once the leader's store knows that key, a
 * third of the batches are signed by it. Entry ERASE_ENTRY crypto-shreds
 * ERASED_STREAM, which takes no events after it. */
static sub *submit_work(cluster *c, unsigned mask) {
  cr_assert(c->k < MAX_WORK);
  unsigned k = c->k;
  unsigned leader = wait_leader(c, mask);
  node *ld = &c->nodes[leader];
  work *w = &c->work[k];
  memset(w, 0, sizeof *w);
  size_t nb = k % 3 == 0 ? 2 : 1;
  int nurse = cl_log_key_info(ld->log, c->nurse.pk, NULL, 0, NULL, 0, NULL) == 0;
  Clinlog__V1__PreparedBatch *pbs[2];
  wbatch bs[2];
  uint64_t events = 0;
  for (size_t b = 0; b < nb; b++) {
    if (b == 0 && k % 10 == 7 && c->prev) {
      /* the client retries the previous batch: same events, same ids */
      bs[b] = *c->prev;
      free(c->prev);
      c->prev = NULL;
      w->kind = WORK_RETRY;
    } else if (b == 0 && k == NURSE_ENTRY) {
      memset(&bs[b], 0, sizeof bs[b]);
      bs[b].signer = &c->admin;
      bs[b].batch_sig = 1;
      bs[b].n = 2;
      bs[b].ev[0] = principal_event("nurse-1", c->nurse.pk, bs[b].id[0], &bs[b].len[0]);
      bs[b].ev[1] = cl_test_event("patient-0", "admin", "new nurse", bs[b].id[1], &bs[b].len[1]);
      events += 2;
    } else if (b == 0 && k == ERASE_ENTRY) {
      memset(&bs[b], 0, sizeof bs[b]);
      bs[b].signer = &c->admin;
      bs[b].n = 1;
      bs[b].ev[0] = erase_event(ERASED_STREAM, bs[b].id[0], &bs[b].len[0]);
      events += 1;
    } else {
      char streams[MAX_BATCH_EVENTS][64];
      size_t ne = 1 + (k + b) % 4;
      for (size_t i = 0; i < ne; i++) {
        if ((k % 4 == 0 && i == 0) || c->n_streams == 0)
          snprintf(streams[i], 64, "patient-%u", c->n_streams++);
        else if (k >= ERASE_ENTRY && (k * 7 + i * 3) % c->n_streams == 1)
          snprintf(streams[i], 64, "patient-0"); /* not ERASED_STREAM */
        else
          snprintf(streams[i], 64, "patient-%u", (unsigned)((k * 7 + i * 3) % c->n_streams));
      }
      if (nurse && (k + b) % 3 == 1)
        wbatch_init_by(&bs[b], streams, ne, (k + b) % 2, "nurse-1", &c->nurse);
      else
        wbatch_init(&bs[b], streams, ne, (k + b) % 2, &c->admin);
      if (b == 0 && k % 10 == 5) {
        snprintf(bs[b].x_stream, sizeof bs[b].x_stream, "%s", streams[0]);
        bs[b].x_kind = CLINLOG__V1__EXPECTED_VERSION__KIND__EXACT;
        bs[b].x_version = 999999;
        w->kind = WORK_CONFLICT;
      } else {
        events += ne;
      }
    }
    if (b == 0) {
      w->n_ids = bs[b].n;
      memcpy(w->ids, bs[b].id, bs[b].n * 16);
    }
    pbs[b] = wbatch_prepare(ld->log, &bs[b]);
  }
  sub *s = submit_batches(c, leader, pbs, nb, &w->cl);
  for (size_t b = 0; b < nb; b++)
    clinlog__v1__prepared_batch__free_unpacked(pbs[b], NULL);
  if (!s) {
    for (size_t b = 0; b < nb; b++)
      wbatch_free(&bs[b]);
    return NULL;
  }
  c->k++;
  c->expect_events += events;
  /* keep the first batch for a retry in the next entry */
  if (c->prev) {
    wbatch_free(c->prev);
    free(c->prev);
    c->prev = NULL;
  }
  if (w->kind == WORK_PLAIN && (k + 1) % 10 == 7) {
    c->prev = malloc(sizeof *c->prev);
    cr_assert_not_null(c->prev);
    *c->prev = bs[0];
  } else {
    wbatch_free(&bs[0]);
  }
  if (nb == 2)
    wbatch_free(&bs[1]);
  return s;
}

/* Submits a last entry, waits until every server in mask applied it and
 * returns its index: after it, every store's applied index must equal it. */
/* Cuts (on = 1) or restores every link between server i and the others. */
static void isolate(cluster *c, unsigned i, int on) {
  for (unsigned j = 0; j < c->n; j++)
    if (j != i) {
      if (on) {
        raft_fixture_disconnect(&c->f, i, j);
        raft_fixture_disconnect(&c->f, j, i);
      } else {
        raft_fixture_reconnect(&c->f, i, j);
        raft_fixture_reconnect(&c->f, j, i);
      }
    }
}

static raft_index settle(cluster *c, unsigned mask) {
  for (int attempt = 0; attempt < 10; attempt++) {
    sub *s = submit_work(c, mask);
    if (s && wait_sub(c, s) == 0) {
      wait_applied(c, mask, s->req.index);
      return s->req.index;
    }
  }
  cr_assert_fail("no entry could be committed");
  return 0;
}

/* ---------------------------------------------------------- convergence */

typedef struct records {
  size_t n;
  uint8_t **data;
  size_t *len;
} records;

static int records_add(void *ctx, uint64_t seq, const uint8_t *rec, size_t len, cl_err *err) {
  (void)seq;
  (void)err;
  records *r = ctx;
  r->data[r->n] = malloc(len ? len : 1);
  memcpy(r->data[r->n], rec, len);
  r->len[r->n++] = len;
  return 0;
}

static void records_read(cl_log *log, records *r) {
  uint64_t size;
  cl_log_head(log, &size, NULL);
  r->n = 0;
  r->data = calloc(size + 1, sizeof *r->data);
  r->len = calloc(size + 1, sizeof *r->len);
  cl_err err;
  if (size)
    cr_assert_eq(cl_log_read_records(log, 1, size, records_add, r, &err), 0, "%s", err.msg);
  cr_assert_eq(r->n, size);
}

static void records_free(records *r) {
  for (size_t i = 0; i < r->n; i++)
    free(r->data[i]);
  free(r->data);
  free(r->len);
}

/* Reads back every event: erased ones (crypto-shredded streams) are
 * flagged, every other one decrypts to the bytes its hash names. */
typedef struct readback {
  uint64_t n;
  uint8_t *erased; /* per seq - 1; NULL: every event must decrypt */
  size_t cap;
} readback;

static int check_decrypts(void *ctx, const cl_event_view *v, cl_err *err) {
  (void)err;
  readback *rb = ctx;
  if (rb->erased && v->seq <= rb->cap)
    rb->erased[v->seq - 1] = (uint8_t)v->erased;
  if (v->erased) {
    cr_assert(rb->erased, "event %llu is erased", (unsigned long long)v->seq);
    cr_assert_null(v->event);
  } else {
    uint8_t h[32];
    cr_assert_not_null(v->event, "event %llu does not decrypt", (unsigned long long)v->seq);
    crypto_hash_sha256(h, v->event, v->event_len);
    cr_assert_arr_eq(h, v->event_hash, 32, "event %llu decrypts to other bytes",
                     (unsigned long long)v->seq);
  }
  rb->n++;
  return 0;
}

static uint64_t note_size(const char *note) {
  const char *nl = strchr(note, '\n');
  cr_assert_not_null(nl);
  return strtoull(nl + 1, NULL, 10);
}

static void assert_verifies(cluster *c, node *nd) {
  char mk[4096];
  snprintf(mk, sizeof mk, "%s/keys/master.key", c->dir0);
  cl_verify_options o = {.dir = nd->dir, .master_key_path = mk};
  cl_verify_report rep;
  cl_err err;
  /* the store's background purge must not move files under the read-only view */
  if (nd->log)
    cr_assert_eq(cl_log_purge_wait(nd->log, 0, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_verify_dir(&o, &rep, &err), 0, "verify server %u: %s", nd->i, err.msg);
  cr_assert(rep.ok, "server %u: verify failed at %llu: %s", nd->i, (unsigned long long)rep.fail_seq,
            rep.fail_what);
  cr_assert_eq(rep.decrypted + rep.erased, rep.events, "server %u: every event decrypts", nd->i);
}

/* Every server in mask holds the same log, and applied raft index
 * `applied` (0: not checked). */
static void assert_converged(cluster *c, unsigned mask, raft_index applied, int verify) {
  unsigned ref = 0;
  while (!(mask & 1u << ref))
    ref++;
  node *r0 = &c->nodes[ref];
  uint64_t size0;
  uint8_t root0[32];
  cl_log_head(r0->log, &size0, root0);
  records rec0;
  records_read(r0->log, &rec0);
  cl_err err;
  readback rb0 = {0, calloc(size0 + 1, 1), size0};
  cr_assert_eq(cl_log_read_all(r0->log, 1, 0, check_decrypts, &rb0, &err), 0, "%s", err.msg);
  for (unsigned i = 0; i < c->n; i++) {
    if (!(mask & 1u << i))
      continue;
    node *nd = &c->nodes[i];
    cr_assert_eq(nd->n_fatal, 0, "server %u stopped: %s", i, nd->fatal_msg);
    uint64_t size;
    uint8_t root[32];
    cl_log_head(nd->log, &size, root);
    cr_assert_eq(size, size0, "server %u holds %llu events, server %u %llu", i,
                 (unsigned long long)size, ref, (unsigned long long)size0);
    cr_assert_arr_eq(root, root0, 32, "server %u: root differs", i);
    if (applied)
      cr_assert_eq(cl_log_applied_index(nd->log), applied, "server %u applied %llu, want %llu", i,
                   (unsigned long long)cl_log_applied_index(nd->log), (unsigned long long)applied);
    records rec;
    records_read(nd->log, &rec);
    for (size_t j = 0; j < rec.n; j++) {
      cr_assert_eq(rec.len[j], rec0.len[j], "server %u: record %zu length", i, j + 1);
      cr_assert_arr_eq(rec.data[j], rec0.data[j], rec.len[j], "server %u: record %zu differs", i,
                       j + 1);
    }
    records_free(&rec);
    /* checkpoints: signed at the same sizes with the same bytes */
    for (uint64_t cp = CP_INTERVAL; cp <= size0; cp += CP_INTERVAL) {
      char *a = NULL, *b = NULL;
      size_t al = 0, bl = 0;
      cr_assert_eq(cl_log_get_checkpoint(r0->log, cp, &a, &al, &err), 0, "%s", err.msg);
      cr_assert_eq(cl_log_get_checkpoint(nd->log, cp, &b, &bl, &err), 0, "server %u: cp %llu: %s",
                   i, (unsigned long long)cp, err.msg);
      cr_assert_eq(note_size(b), cp, "server %u: no checkpoint at %llu", i, (unsigned long long)cp);
      cr_assert_eq(al, bl);
      cr_assert_arr_eq(a, b, al, "server %u: checkpoint at %llu differs", i,
                       (unsigned long long)cp);
      free(a);
      free(b);
    }
    readback rb = {0, calloc(size0 + 1, 1), size0};
    cr_assert_eq(cl_log_read_all(nd->log, 1, 0, check_decrypts, &rb, &err), 0, "%s", err.msg);
    cr_assert_eq(rb.n, size0);
    for (uint64_t q = 0; q < size0; q++)
      cr_assert_eq(rb.erased[q], rb0.erased[q],
                   "server %u: event %llu reads as erased=%d, on server %u erased=%d", i,
                   (unsigned long long)q + 1, rb.erased[q], ref, rb0.erased[q]);
    free(rb.erased);
    /* the keyring, as the write path consults it */
    const cl_signer *keys[2] = {&c->admin, &c->nurse};
    for (int k = 0; k < 2; k++) {
      char p0[64] = "", p1[64] = "", ro0[64] = "", ro1[64] = "";
      int v0 = -1, v1 = -1;
      int rc0 = cl_log_key_info(r0->log, keys[k]->pk, p0, sizeof p0, ro0, sizeof ro0, &v0);
      int rc1 = cl_log_key_info(nd->log, keys[k]->pk, p1, sizeof p1, ro1, sizeof ro1, &v1);
      cr_assert_eq(rc1, rc0, "server %u: key %d known %d, server %u %d", i, k, rc1, ref, rc0);
      cr_assert_str_eq(p1, p0);
      cr_assert_str_eq(ro1, ro0);
      cr_assert_eq(v1, v0);
    }
    if (verify)
      assert_verifies(c, nd);
  }
  records_free(&rec0);
  free(rb0.erased);
}

static int found_event(void *ctx, const cl_event_view *v, cl_err *err) {
  (void)v;
  (void)err;
  (*(int *)ctx)++;
  return 0;
}

static int has_event(cl_log *log, const uint8_t id[16]) {
  int n = 0;
  cl_err err;
  int rc = cl_log_get_event(log, id, found_event, &n, &err);
  cr_assert(rc == 0 || rc == CL_ENOTFOUND, "get event: %s", err.msg);
  return rc == 0 && n == 1;
}

static int seq_fn(void *ctx, const cl_event_view *v, cl_err *err) {
  (void)err;
  *(uint64_t *)ctx = v->seq;
  return 0;
}

static uint64_t event_seq(cl_log *log, const uint8_t id[16]) {
  uint64_t seq = 0;
  cl_err err;
  cr_assert_eq(cl_log_get_event(log, id, seq_fn, &seq, &err), 0, "%s", err.msg);
  return seq;
}

static int count_readable(void *ctx, const cl_event_view *v, cl_err *err) {
  (void)err;
  *(int *)ctx += v->event != NULL;
  return 0;
}

static void step_ms(cluster *c, unsigned ms) { raft_fixture_step_until_elapsed(&c->f, ms); }

/* ================================================================ tests */

/* 1. Three servers; servers 1 and 2 start empty and catch up to the head;
 * 50 entries of mixed batches; every store identical. */
Test(fsm, three_servers_apply_identically) {
  cluster *c = cur = stores_new(3, 25);
  raft_up(c, 3, 0, 0);
  submit_head(c, ALL(c));
  cr_assert_eq(c->nodes[0].n_fetch, 0, "server 0 holds the head already");
  cr_assert_eq(c->nodes[1].n_fetch, 1);
  cr_assert_eq(c->nodes[2].n_fetch, 1);
  assert_converged(c, ALL(c), 0, 0);
  uint64_t base;
  cl_log_head(c->nodes[0].log, &base, NULL);
  cr_assert_eq(base, 27);

  for (int i = 0; i < 49; i++) {
    cr_assert_not_null(submit_work(c, ALL(c)));
    if (i % 5 == 4) /* let some entries pile up, then some apply */
      step_ms(c, 40);
  }
  raft_index final = settle(c, ALL(c)); /* the 50th */
  for (size_t i = 0; i < c->n_subs; i++)
    cr_assert(c->subs[i].done && c->subs[i].status == 0, "entry %zu: status %d", i,
              c->subs[i].status);
  assert_converged(c, ALL(c), final, 1);

  uint64_t size;
  cl_log_head(c->nodes[0].log, &size, NULL);
  cr_assert_eq(size, base + c->expect_events, "conflicts and retries add nothing");

  /* outcomes as the submitting server saw them, and the same everywhere */
  unsigned conflicts = 0, retries = 0;
  for (unsigned k = 0; k < c->k; k++) {
    work *w = &c->work[k];
    cr_assert_not_null(w->cl);
    cr_assert(w->cl->done, "entry %u: the leader never answered", k);
    cr_assert_eq(w->cl->rc, 0);
    cl_apply_item *it = &w->cl->items[0];
    if (w->kind == WORK_CONFLICT) {
      conflicts++;
      cr_assert_eq(it->rc, CL_ECONFLICT, "entry %u: %s", k, it->err.msg);
      for (unsigned i = 0; i < c->n; i++)
        for (size_t j = 0; j < w->n_ids; j++)
          cr_assert(!has_event(c->nodes[i].log, w->ids[j]), "server %u: rejected event stored", i);
    } else {
      cr_assert_eq(it->rc, 0, "entry %u: %s", k, it->err.msg);
      cr_assert_eq(it->r.n, w->n_ids);
      cr_assert_eq(it->r.duplicate, w->kind == WORK_RETRY, "entry %u", k);
      for (size_t j = 0; j < w->n_ids; j++)
        for (unsigned i = 0; i < c->n; i++)
          cr_assert_eq(event_seq(c->nodes[i].log, w->ids[j]), it->r.seq[j],
                       "server %u: entry %u event %zu", i, k, j);
      retries += w->kind == WORK_RETRY;
    }
  }
  cr_assert_geq(conflicts, 4);
  cr_assert_geq(retries, 4);
  for (unsigned i = 0; i < c->n; i++)
    cr_assert_eq(cl_log_key_info(c->nodes[i].log, c->nurse.pk, NULL, 0, NULL, 0, NULL), 0,
                 "server %u: the registered key", i);
  for (unsigned i = 0; i < c->n; i++) {
    cr_assert_eq(c->nodes[i].fsm.applied_entries, c->n_subs, "server %u", i);
    cr_assert_eq(c->nodes[i].fsm.skipped_entries, 0);
  }
}

/* 2. The leader is cut off mid-stream: what it accepts alone never
 * commits; the majority elects a new leader and goes on; on reconnection the
 * old leader drops its uncommitted entries and converges. */
Test(fsm, partitioned_leader_applies_nothing_alone) {
  cluster *c = cur = stores_new(3, 5);
  raft_up(c, 3, 0, 0);
  submit_head(c, ALL(c));
  for (int i = 0; i < 10; i++)
    cr_assert_not_null(submit_work(c, ALL(c)));
  raft_index before = settle(c, ALL(c));

  unsigned old = leader_among(c, ALL(c));
  cr_assert_lt(old, c->n);
  raft_term old_term = raft_current_term(raft_fixture_get(&c->f, old));
  isolate(c, old, 1);

  /* the isolated leader still accepts entries: none may be applied */
  uint8_t iso_ids[8][MAX_BATCH_EVENTS][16];
  size_t iso_n[8];
  sub *iso[8];
  for (int i = 0; i < 8; i++) {
    char streams[2][64];
    snprintf(streams[0], 64, "isolated-%d", i);
    snprintf(streams[1], 64, "patient-0");
    wbatch w;
    wbatch_init(&w, streams, 2, i % 2, &c->admin);
    memcpy(iso_ids[i], w.id, sizeof w.id);
    iso_n[i] = w.n;
    Clinlog__V1__PreparedBatch *pb = wbatch_prepare(c->nodes[old].log, &w);
    iso[i] = submit_batches(c, old, &pb, 1, NULL);
    clinlog__v1__prepared_batch__free_unpacked(pb, NULL);
    wbatch_free(&w);
    cr_assert_not_null(iso[i], "the isolated server still believes it leads");
  }
  unsigned majority = ALL(c) & ~(1u << old);
  unsigned leader = wait_leader(c, majority);
  cr_assert_neq(leader, old);
  cr_assert_gt(raft_current_term(raft_fixture_get(&c->f, leader)), old_term);
  for (int i = 0; i < 10; i++) {
    cr_assert_not_null(submit_work(c, majority));
    step_ms(c, 20);
  }
  raft_index mid = settle(c, majority);
  cr_assert_eq(raft_last_applied(raft_fixture_get(&c->f, old)), before,
               "the isolated server applied something");
  cr_assert_eq(cl_log_applied_index(c->nodes[old].log), before);
  assert_converged(c, majority, mid, 0);

  isolate(c, old, 0);
  wait_applied(c, ALL(c), mid);
  for (int i = 0; i < 5; i++)
    cr_assert_not_null(submit_work(c, ALL(c)));
  raft_index final = settle(c, ALL(c));
  assert_converged(c, ALL(c), final, 1);

  for (int i = 0; i < 8; i++) {
    cr_assert(iso[i]->done, "isolated entry %d: no outcome", i);
    cr_assert_neq(iso[i]->status, 0, "isolated entry %d reported committed", i);
    for (unsigned s = 0; s < c->n; s++)
      for (size_t j = 0; j < iso_n[i]; j++)
        cr_assert(!has_event(c->nodes[s].log, iso_ids[i][j]),
                  "server %u holds an event only the isolated leader accepted", s);
  }
}

/* 3. A follower dies and comes back while entries flow; messages between
 * leader and the other follower are lost for a while (both directions). */
Test(fsm, killed_follower_and_lost_messages_converge) {
  cluster *c = cur = stores_new(3, 5);
  raft_up(c, 3, 0, 0);
  submit_head(c, ALL(c));
  unsigned leader = leader_among(c, ALL(c));
  unsigned f1 = (leader + 1) % 3, f2 = (leader + 2) % 3;
  raft_index behind = 0;
  for (int k = 0; k < 40; k++) {
    if (k == 6)
      raft_fixture_kill(&c->f, f2);
    if (k == 12)
      raft_fixture_saturate(&c->f, leader, f1); /* entries lost */
    if (k == 15)
      raft_fixture_desaturate(&c->f, leader, f1);
    if (k == 18)
      raft_fixture_saturate(&c->f, f1, leader); /* acknowledgements lost */
    if (k == 21)
      raft_fixture_desaturate(&c->f, f1, leader);
    if (k == 28) {
      behind = raft_last_applied(raft_fixture_get(&c->f, f2));
      cr_assert_gt(raft_last_applied(raft_fixture_get(&c->f, leader)), behind + 15,
                   "the dead follower missed entries");
      raft_fixture_revive(&c->f, f2);
    }
    unsigned alive = k >= 6 && k < 28 ? ALL(c) & ~(1u << f2) : ALL(c);
    cr_assert_not_null(submit_work(c, alive));
    step_ms(c, 30);
  }
  raft_index final = settle(c, ALL(c));
  assert_converged(c, ALL(c), final, 1);
  for (size_t i = 0; i < c->n_subs; i++)
    cr_assert(c->subs[i].done && c->subs[i].status == 0, "entry %zu: status %d", i,
              c->subs[i].status);
}

/* Restarts nd's store under a new single-voter Raft whose persisted log
 * holds the journal's entries up to `last`, after the snapshot `snap`
 * (index snap_index) if given, as a node restarting from its Raft
 * directory would. Returns raft_fixture_start's result. */
static int replay_start(cluster *c, node *nd, const struct raft_buffer *snap, raft_index snap_index,
                        raft_index last) {
  cr_assert_eq(raft_fixture_init(&c->f), 0);
  c->fixture_up = 1;
  cl_fsm_init(&nd->fsm, &nd->rfsm);
  nd->restore = nd->rfsm.restore;
  nd->rfsm.restore = node_restore;
  cr_assert_eq(raft_fixture_grow(&c->f, &nd->rfsm), 0);
  nd->fsm.raft = raft_fixture_get(&c->f, 0);
  nd->tracer = (struct raft_tracer){.impl = &nd->i, .version = 2, .emit = trace_emit};
  nd->fsm.raft->tracer = &nd->tracer;
  struct raft_configuration conf;
  cr_assert_eq(raft_fixture_configuration(&c->f, 1, &conf), 0);
  raft_index from = 2;
  if (snap) {
    struct raft_snapshot *sn = raft_malloc(sizeof *sn);
    cr_assert_not_null(sn);
    sn->index = snap_index;
    sn->term = 1;
    sn->configuration = conf; /* owned by the snapshot now */
    sn->configuration_index = 1;
    sn->bufs = raft_malloc(sizeof *sn->bufs);
    sn->bufs[0].base = raft_malloc(snap->len);
    sn->bufs[0].len = snap->len;
    memcpy(sn->bufs[0].base, snap->base, snap->len);
    sn->n_bufs = 1;
    raft_fixture_set_snapshot(&c->f, 0, sn);
    raft_fixture_set_term(&c->f, 0, 1);
    from = snap_index + 1;
  } else {
    cr_assert_eq(raft_fixture_bootstrap(&c->f, &conf), 0);
    raft_configuration_close(&conf);
  }
  for (raft_index idx = from; idx <= last; idx++) {
    size_t j = 0;
    while (j < c->n_journal && c->jindex[j] != idx)
      j++;
    cr_assert_lt(j, c->n_journal, "raft index %llu was not submitted by the test",
                 (unsigned long long)idx);
    struct raft_entry e = {.term = 1, .type = RAFT_COMMAND};
    e.buf.base = raft_malloc(c->journal[j].len);
    e.buf.len = c->journal[j].len;
    memcpy(e.buf.base, c->journal[j].base, e.buf.len);
    raft_fixture_add_entry(&c->f, 0, &e);
  }
  nd->fsm.applied_entries = nd->fsm.skipped_entries = 0;
  nd->n_restore = nd->n_fetch = 0;
  return raft_fixture_start(&c->f);
}

static bool single_leader(struct raft_fixture *f, void *arg) {
  (void)arg;
  return raft_state(raft_fixture_get(f, 0)) == RAFT_LEADER;
}

/* Submits one new batch entry through the single-server fixture of
 * replay_start and waits until it is applied; returns its index. */
static raft_index replay_submit(cluster *c, node *nd, uint8_t id[16]) {
  cr_assert(raft_fixture_step_until(&c->f, single_leader, NULL, 10 * ELECTION_MS));
  char streams[1][64] = {"patient-0"};
  wbatch w;
  wbatch_init(&w, streams, 1, 1, &c->admin);
  memcpy(id, w.id[0], 16);
  Clinlog__V1__PreparedBatch *pb = wbatch_prepare(nd->log, &w);
  Clinlog__V1__RaftEntry e = CLINLOG__V1__RAFT_ENTRY__INIT;
  e.n_batches = 1;
  e.batches = &pb;
  e.origin = nd->fsm.origin;
  e.group = ++c->group;
  sub *s = submit_entry(c, 0, &e);
  clinlog__v1__prepared_batch__free_unpacked(pb, NULL);
  wbatch_free(&w);
  cr_assert_not_null(s);
  cr_assert_eq(wait_sub(c, s), 0);
  cr_assert_eq(nd->n_fatal, 0, "%s", nd->fatal_msg);
  return s->req.index;
}

/* 4. After a restart, Raft replays entries the store has applied: they are
 * skipped, not applied twice, and the next entry applies normally. Checked
 * on the store (cl_log_apply with an old index) and through the FSM under a
 * restarted Raft: from the full log, from a snapshot the store is ahead of,
 * and from a snapshot whose root the store does not have (refused). */
Test(fsm, replay_after_restart_is_skipped) {
  cluster *c = cur = stores_new(3, 5);
  c->journaling = 1;
  raft_up(c, 3, 0, 0);
  raft_index head = submit_head(c, ALL(c));
  cr_assert_eq(head, 2, "index 1 is the configuration, the head comes next");
  for (int i = 0; i < 6; i++)
    cr_assert_not_null(submit_work(c, ALL(c)));
  settle(c, ALL(c));

  /* what the FSM hands Raft as a snapshot */
  node *nd = &c->nodes[1];
  struct raft_buffer *bufs = NULL;
  unsigned nbufs = 0;
  cr_assert_eq(nd->rfsm.snapshot(&nd->rfsm, &bufs, &nbufs), 0);
  cr_assert_eq(nbufs, 1);
  struct raft_buffer snap = bufs[0];
  raft_free(bufs);
  raft_index snap_index = raft_last_applied(nd->fsm.raft);
  uint64_t snap_size;
  uint8_t snap_root[32];
  cl_log_head(nd->log, &snap_size, snap_root);
  Clinlog__V1__RaftEntry *se = cl_fsm_decode(snap.base, snap.len);
  cr_assert_not_null(se);
  cr_assert_not_null(se->head);
  cr_assert_eq(se->head->applied_index, snap_index);
  cr_assert_eq(se->head->tree_size, snap_size);
  cr_assert_eq(se->head->root_hash.len, 32);
  cr_assert_arr_eq(se->head->root_hash.data, snap_root, 32);
  cr_assert_str_eq(se->head->api_address, "srv1");
  clinlog__v1__raft_entry__free_unpacked(se, NULL);

  for (int i = 0; i < 6; i++)
    cr_assert_not_null(submit_work(c, ALL(c)));
  raft_index last = settle(c, ALL(c));
  uint64_t size;
  uint8_t root[32];
  cl_log_head(nd->log, &size, root);
  cr_assert_eq(cl_log_applied_index(nd->log), last);
  raft_down(c);

  /* reopen the store: the applied index is durable */
  cl_log_close(nd->log);
  open_node(c, nd);
  cr_assert_eq(cl_log_applied_index(nd->log), last);

  /* the store refuses an index it applied: returns 1, changes nothing */
  char streams[1][64] = {"patient-0"};
  wbatch w;
  wbatch_init(&w, streams, 1, 0, &c->admin);
  Clinlog__V1__PreparedBatch *pb = wbatch_prepare(nd->log, &w);
  cl_err err;
  for (raft_index i = 1; i <= last; i += last - 1) {
    cl_apply_item it = {.pb = pb, .want_result = 1};
    cr_assert_eq(cl_log_apply(nd->log, i, &it, 1, &err), 1, "index %llu", (unsigned long long)i);
    cr_assert_eq(cl_log_apply(nd->log, i, NULL, 0, &err), 1);
  }
  uint64_t size2;
  uint8_t root2[32];
  cl_log_head(nd->log, &size2, root2);
  cr_assert_eq(size2, size);
  cr_assert_arr_eq(root2, root, 32);
  cr_assert(!has_event(nd->log, w.id[0]));
  cr_assert_eq(cl_log_applied_index(nd->log), last);
  clinlog__v1__prepared_batch__free_unpacked(pb, NULL);
  wbatch_free(&w);

  /* a snapshot naming a root this store does not have: refused at start */
  Clinlog__V1__RaftEntry *bad = cl_fsm_decode(snap.base, snap.len);
  bad->head->root_hash.data[0] ^= 1;
  struct raft_buffer badbuf;
  cr_assert_eq(cl_fsm_encode(bad, &badbuf, &err), 0);
  clinlog__v1__raft_entry__free_unpacked(bad, NULL);
  cr_assert_neq(replay_start(c, nd, &badbuf, snap_index, last), 0,
                "a diverged store must not start");
  raft_free(badbuf.base);
  cr_assert_eq(nd->n_fatal, 1);
  cr_assert(strstr(nd->fatal_msg, "diverged"), "%s", nd->fatal_msg);
  nd->n_fatal = 0;
  raft_down(c);
  cl_log_head(nd->log, &size2, root2);
  cr_assert_eq(size2, size);
  cr_assert_eq(cl_log_applied_index(nd->log), last);

  /* the whole Raft log replayed: every entry skipped, the new one applied */
  uint8_t id1[16], id2[16];
  cr_assert_eq(replay_start(c, nd, NULL, 0, last), 0);
  raft_index next = replay_submit(c, nd, id1);
  cr_assert_eq(nd->fsm.skipped_entries, last - 1, "entries 2..%llu replayed",
               (unsigned long long)last);
  cr_assert_eq(nd->fsm.applied_entries, 1);
  cr_assert_eq(nd->n_restore, 0);
  cr_assert_eq(cl_log_applied_index(nd->log), next);
  cl_log_head(nd->log, &size2, root2);
  cr_assert_eq(size2, size + 1);
  cr_assert_eq(event_seq(nd->log, id1), size + 1);
  raft_down(c);

  /* from the snapshot (the store is ahead of it): the entries after it are
   * skipped, including the one just applied */
  cl_log_close(nd->log);
  open_node(c, nd);
  cr_assert_eq(replay_start(c, nd, &snap, snap_index, next), 0);
  cr_assert_eq(nd->n_restore, 1);
  cr_assert_eq(nd->n_fatal, 0, "%s", nd->fatal_msg);
  raft_index next2 = replay_submit(c, nd, id2);
  cr_assert_eq(nd->fsm.skipped_entries, next - snap_index);
  cr_assert_eq(nd->fsm.applied_entries, 1);
  cr_assert_eq(nd->n_fetch, 0, "a store ahead of the snapshot needs no catch-up");
  cr_assert_eq(cl_log_applied_index(nd->log), next2);
  cl_log_head(nd->log, &size2, NULL);
  cr_assert_eq(size2, size + 2);
  cr_assert_eq(event_seq(nd->log, id1), size + 1);
  cr_assert_eq(event_seq(nd->log, id2), size + 2);
  raft_free(snap.base);
  raft_down(c);
}

/* 5. Five servers with frequent snapshots; one is cut off while the others
 * apply many entries and compact their Raft logs. Back, it receives a
 * snapshot, catches its store up through fetch and ends identical. */
Test(fsm, snapshot_install_catches_up_store) {
  cluster *c = cur = stores_new(5, 5);
  raft_up(c, 5, 8, 2);
  submit_head(c, ALL(c));
  for (int i = 0; i < 4; i++)
    cr_assert_not_null(submit_work(c, ALL(c)));
  raft_index start = settle(c, ALL(c));
  assert_converged(c, ALL(c), start, 0);

  /* the lagging server has read ERASED_STREAM (assert_converged read every
   * event), so its data key is cached and on disk there */
  unsigned lag = 4;
  unsigned rest = ALL(c) & ~(1u << lag);
  uint8_t tag[32], wrapped[CL_WRAPPED_KEY_SIZE];
  size_t wl = 0;
  cl_err err;
  cr_assert_eq(cl_log_stream_tag(c->nodes[lag].log, ERASED_STREAM, tag, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_log_wrapped_key(c->nodes[lag].log, tag, wrapped, sizeof wrapped, &wl, &err), 0,
               "%s", err.msg);
  cr_assert_eq(wl, CL_WRAPPED_KEY_SIZE);
  isolate(c, lag, 1);
  uint64_t lag_size;
  cl_log_head(c->nodes[lag].log, &lag_size, NULL);
  for (int i = 0; i < 40; i++) {
    cr_assert_not_null(submit_work(c, rest));
    if (i % 4 == 3)
      settle(c, rest);
  }
  raft_index mid = settle(c, rest);
  cr_assert_eq(raft_last_applied(raft_fixture_get(&c->f, lag)), start);
  for (unsigned i = 0; i < c->n; i++)
    cr_assert_eq(c->nodes[i].n_restore, 0, "server %u restored a snapshot", i);

  unsigned fetches = c->nodes[lag].n_fetch;
  uint64_t applied_before = c->nodes[lag].fsm.applied_entries;
  isolate(c, lag, 0);
  wait_applied(c, ALL(c), mid);
  for (int i = 0; i < 3; i++)
    cr_assert_not_null(submit_work(c, ALL(c)));
  raft_index final = settle(c, ALL(c));
  cr_assert_geq(raft_fixture_n_recv(&c->f, lag, RAFT_INSTALL_SNAPSHOT), 1,
                "the lagging server got no snapshot");
  cr_assert_geq(c->nodes[lag].n_restore, 1);
  cr_assert_gt(c->nodes[lag].n_fetch, fetches, "the snapshot was reached by catch-up");
  cr_assert_lt(c->nodes[lag].fsm.applied_entries - applied_before, 40,
               "entries covered by the snapshot were not applied one by one");
  uint64_t size;
  cl_log_head(c->nodes[lag].log, &size, NULL);
  cr_assert_gt(size, lag_size + 20);
  /* the key registered while it was away reached it through catch-up,
   * and batches signed with it applied there too */
  cr_assert_eq(cl_log_key_info(c->nodes[lag].log, c->nurse.pk, NULL, 0, NULL, 0, NULL), 0);
  /* so did the erasure: the stream's key is gone, in memory and on disk */
  uint8_t now[CL_WRAPPED_KEY_SIZE];
  cr_assert_eq(cl_log_wrapped_key(c->nodes[lag].log, tag, now, sizeof now, &wl, &err), 0, "%s",
               err.msg);
  cr_assert_eq(wl, 0, "the erased stream's key is destroyed in the store");
  int readable = 0;
  cr_assert_eq(cl_log_read_stream(c->nodes[lag].log, ERASED_STREAM, 1, 0, 0, count_readable,
                                  &readable, &err),
               0, "%s", err.msg);
  cr_assert_eq(readable, 0,
               "%d events of the erased stream still decrypt on the server that caught up "
               "(cl_log_ingest applied the erasure but kept the cached data key)",
               readable);
  assert_converged(c, ALL(c), final, 1);
  raft_down(c);
  for (unsigned i = 0; i < c->n; i++) {
    cl_log_close(c->nodes[i].log); /* flushes: what remains is on disk */
    c->nodes[i].log = NULL;
    cr_assert_not(cl_test_tree_contains(c->nodes[i].dir, wrapped, CL_WRAPPED_KEY_SIZE),
                  "server %u: the erased stream's wrapped key is still on disk", i);
  }
}

/* 5b. Catch-up from a source that alters a record in transit: the chunk is
 * refused (CL_EVERIFY) and nothing of it is written; chunks before it were
 * verified and stay; the same catch-up from an honest source then
 * completes. */
/* Whether a record starts its stream (stream_version 1). */
typedef struct recstream {
  int first;
} recstream;

static int first_of_stream(void *ctx, uint64_t seq, const uint8_t *rec, size_t len, cl_err *err) {
  (void)seq, (void)err;
  Clinlog__V1__Record *r = clinlog__v1__record__unpack(NULL, len, rec);
  cr_assert_not_null(r);
  ((recstream *)ctx)->first = r->stream_version == 1;
  clinlog__v1__record__free_unpacked(r, NULL);
  return 0;
}

Test(fsm, catch_up_refuses_tampered_records) {
  cluster *c = cur = stores_new(3, 30);
  raft_up(c, 3, 0, 0);
  submit_head(c, ALL(c));
  for (int i = 0; i < 10; i++)
    cr_assert_not_null(submit_work(c, ALL(c)));
  settle(c, ALL(c));

  /* a fourth, empty store outside the cluster */
  node *src = &c->nodes[0];
  node x = {.c = c, .i = MAX_NODES};
  snprintf(x.dir, sizeof x.dir, "%s/extra", c->root);
  char mk[4096], lk[4096];
  snprintf(mk, sizeof mk, "%s/keys/master.key", c->dir0);
  snprintf(lk, sizeof lk, "%s/keys/log.key", c->dir0);
  cl_log_options o;
  cl_log_options_init(&o);
  o.dir = x.dir;
  o.master_key_path = mk;
  o.log_key_path = lk;
  cl_log_genesis g = {.replica = 1, .origin = c->origin};
  cl_err err;
  cr_assert_eq(cl_log_create(&o, &g, &err), 0, "%s", err.msg);
  open_node(c, &x);

  uint64_t target;
  uint8_t root[32], empty[32], xr[32];
  cl_log_head(src->log, &target, root);
  cl_log_head(x.log, NULL, empty);
  cr_assert_gt(target, 50);

  /* a byte of record 5 (first chunk) flipped: nothing is written */
  cl_err_clear(&err);
  cr_assert_eq(cl_test_copy_records(src->log, x.log, target, root, 8, 5, &err),
               CL_EVERIFY, "%d: %s", err.code, err.msg);
  uint64_t xs;
  cl_log_head(x.log, &xs, xr);
  cr_assert_eq(xs, 0);
  cr_assert_arr_eq(xr, empty, 32);

  /* record 20 (third chunk) flipped: the first two chunks stay */
  cl_err_clear(&err);
  cr_assert_eq(cl_test_copy_records(src->log, x.log, target, root, 8, 20, &err),
               CL_EVERIFY, "%d: %s", err.code, err.msg);
  cl_log_head(x.log, &xs, xr);
  cr_assert_eq(xs, 16);
  uint8_t r16[32];
  cr_assert_eq(cl_log_root_at(src->log, 16, r16, &err), 0);
  cr_assert_arr_eq(xr, r16, 32);
  /* the data key of a stream that starts in a later chunk corrupted in
   * transit: it does not unwrap, and that chunk is refused (an accepted
   * key that does not open the stream would leave it unreadable here) */
  uint64_t kseq = 0;
  for (uint64_t seq = 17; seq <= target && !kseq; seq++) {
    recstream rs = {0};
    cr_assert_eq(cl_log_read_records(src->log, seq, seq, first_of_stream, &rs, &err), 0);
    if (rs.first)
      kseq = seq;
  }
  cr_assert_gt(kseq, 0, "no stream starts after record 16");
  cl_err_clear(&err);
  cr_assert_eq(cl_test_copy_records_ex(src->log, x.log, target, root, 8, 0, kseq, &err), CL_EVERIFY,
               "%d: %s", err.code, err.msg);
  cr_assert(strstr(err.msg, "data key"), "%s", err.msg);
  cl_log_head(x.log, &xs, NULL);
  cr_assert_eq(xs, (kseq - 1) / 8 * 8, "the chunks before the bad key were written");
  /* the last record flipped: the last chunk, checked against the target
   * root itself rather than through a proof, is refused too */
  cl_err_clear(&err);
  cr_assert_eq(cl_test_copy_records(src->log, x.log, target, root, 8, target, &err),
               CL_EVERIFY, "%s", err.msg);
  cl_log_head(x.log, &xs, NULL);
  cr_assert_eq(xs, (target - 1) / 8 * 8, "every chunk before the last was written");
  /* the refused chunks left no trace in memory: the honest copy completes */
  cr_assert_eq(cl_test_copy_records(src->log, x.log, target, root, 8, 0, &err), 0, "%s", err.msg);
  cl_log_head(x.log, &xs, xr);
  cr_assert_eq(xs, target);
  cr_assert_arr_eq(xr, root, 32);
  records a, b;
  records_read(src->log, &a);
  records_read(x.log, &b);
  for (size_t i = 0; i < a.n; i++) {
    cr_assert_eq(a.len[i], b.len[i]);
    cr_assert_arr_eq(a.data[i], b.data[i], a.len[i]);
  }
  records_free(&a);
  records_free(&b);
  readback rb = {0};
  cr_assert_eq(cl_log_read_all(x.log, 1, 0, check_decrypts, &rb, &err), 0, "%s", err.msg);
  cr_assert_eq(rb.n, target);
  assert_verifies(c, &x);
  cl_log_close(x.log);
}

/* 5c. The same through the FSM: a new server's catch-up to the cluster's
 * head is fed a tampered record. It stops (fatal) without applying the head
 * or recording its index, keeps only the verified chunks, and once the
 * source is honest again the retried entry brings it level. */
Test(fsm, tampered_catch_up_stops_the_server_and_is_retried) {
  cluster *c = cur = stores_new(3, 30);
  raft_up(c, 3, 0, 0);
  c->tamper_dst = 2;
  c->tamper_seq = 20;
  unsigned leader = wait_leader(c, ALL(c));
  /* the head, applied by 0 and 1 */
  sub *s = submit_head_entry(c, leader);
  cr_assert_not_null(s);
  cr_assert_eq(wait_sub(c, s), 0);
  unsigned good = 1u << 0 | 1u << 1;
  until u = {c, good, s->req.index, NULL};
  cr_assert(raft_fixture_step_until(&c->f, has_applied, &u, 10 * ELECTION_MS));
  /* no entries while server 2 keeps failing: it learns commits from
   * heartbeats only (libraft 0.22.1 double-frees a received batch when an
   * AppendEntries carrying entries ends in an error, see the report) */
  step_ms(c, 200);
  node *bad = &c->nodes[2];
  cr_assert_geq(bad->n_fatal, 1, "the refused catch-up must stop the server");
  cr_assert(strstr(bad->fatal_msg, "tree head"), "%s", bad->fatal_msg);
  cr_assert_lt(raft_last_applied(raft_fixture_get(&c->f, 2)), s->req.index);
  cr_assert_eq(cl_log_applied_index(bad->log), 0);
  uint64_t bs;
  cl_log_head(bad->log, &bs, NULL);
  cr_assert_eq(bs, 16, "only the chunks verified before the tampered one");

  /* the source is honest again; the next commit retries the head */
  c->tamper_seq = 0;
  bad->n_fatal = 0;
  bad->fatal_msg[0] = '\0';
  for (int i = 0; i < 5; i++)
    cr_assert_not_null(submit_work(c, good));
  raft_index final = settle(c, ALL(c));
  assert_converged(c, ALL(c), final, 1);
  cr_assert_eq(bad->fsm.skipped_entries, 0);
}

static bool has_last_index(struct raft_fixture *f, void *arg) {
  until *u = arg;
  for (unsigned i = 0; i < u->c->n; i++)
    if (u->mask & 1u << i && raft_last_index(raft_fixture_get(f, i)) < u->index)
      return false;
  return true;
}

/* 6. A follower's disk fails to write entries it received; after the fault
 * clears it converges. The fault is armed once the follower has taken the
 * entries into its in-memory log (the append was submitted), so it is the
 * write itself that fails. (A fault on the submission instead makes
 * libraft 0.22.1 free the received batch twice: legacyHandleUpdateEntries
 * frees it, then recvCb frees it again on the error.) */
Test(fsm, follower_disk_fault_heals) {
  cluster *c = cur = stores_new(3, 5);
  raft_up(c, 3, 0, 0);
  submit_head(c, ALL(c));
  for (int i = 0; i < 5; i++)
    cr_assert_not_null(submit_work(c, ALL(c)));
  settle(c, ALL(c));
  unsigned leader = leader_among(c, ALL(c));
  unsigned fol = (leader + 1) % 3;
  unsigned other = (leader + 2) % 3;
  raft_index last = 0;
  for (int i = 0; i < 6; i++) {
    sub *s = submit_work(c, ALL(c));
    cr_assert_not_null(s);
    last = s->req.index;
    until u = {c, 1u << fol, last, NULL};
    cr_assert(raft_fixture_step_until(&c->f, has_last_index, &u, 10 * ELECTION_MS));
    raft_fixture_io_fault(&c->f, fol, 0, 1);
    step_ms(c, 5);
  }
  /* the failed writes were never acknowledged: the leader counts the
   * follower behind while the other one has everything */
  step_ms(c, 40);
  raft_index fol_match = 0, other_match = 0;
  struct raft *lr = raft_fixture_get(&c->f, leader);
  cr_assert_eq(raft_state(lr), RAFT_LEADER);
  cr_assert_eq(raft_match_index(lr, fol + 1, &fol_match), 0);
  cr_assert_eq(raft_match_index(lr, other + 1, &other_match), 0);
  cr_assert_geq(other_match, last);
  cr_assert_lt(fol_match, last, "the faulty follower acknowledged an entry it failed to write");
  raft_index mid = settle(c, ALL(c) & ~(1u << fol));
  raft_fixture_io_fault(&c->f, fol, -1, 0); /* healed */
  wait_applied(c, ALL(c), mid);
  for (int i = 0; i < 5; i++)
    cr_assert_not_null(submit_work(c, ALL(c)));
  raft_index final = settle(c, ALL(c));
  assert_converged(c, ALL(c), final, 1);
}

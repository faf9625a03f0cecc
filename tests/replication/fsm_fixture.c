/* See fsm_fixture.h. */
#include "tests/replication/fsm_fixture.h"

#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/verify.h"

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

int node_restore(struct raft_fsm *rf, struct raft_buffer *buf) {
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

void wbatch_init(wbatch *w, char streams[][64], size_t n, int batch_sig, const cl_signer *admin) {
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

void wbatch_free(wbatch *w) {
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

Clinlog__V1__PreparedBatch *wbatch_prepare(cl_log *log, const wbatch *w) {
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

void open_node(cluster *c, node *n) {
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

cluster *stores_new(unsigned n, unsigned pre_events) {
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

void trace_emit(struct raft_tracer *t, int type, const void *data) {
  const struct raft_tracer_info *info = data;
  if (type == RAFT_TRACER_DIAGNOSTIC && info->diagnostic.level <= 3 && getenv("CL_RAFT_TRACE"))
    fprintf(stderr, "raft %u: %s\n", *(unsigned *)t->impl, info->diagnostic.message);
}

void raft_up(cluster *c, unsigned voters, unsigned snapshot_threshold, unsigned snapshot_trailing) {
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

void raft_down(cluster *c) {
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

cluster *fsm_cur;

void fsm_fini(void) {
  cluster_free(fsm_cur);
  fsm_cur = NULL;
}

/* ------------------------------------------------------------- stepping */

unsigned leader_among(cluster *c, unsigned mask) {
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

static bool has_leader(struct raft_fixture *f, void *arg) {
  (void)f;
  until *u = arg;
  return leader_among(u->c, u->mask) < u->c->n;
}

bool has_applied(struct raft_fixture *f, void *arg) {
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

unsigned wait_leader(cluster *c, unsigned mask) {
  until u = {c, mask, 0, NULL};
  cr_assert(raft_fixture_step_until(&c->f, has_leader, &u, 20 * ELECTION_MS), "no leader elected");
  return leader_among(c, mask);
}

void wait_applied(cluster *c, unsigned mask, raft_index index) {
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

sub *submit_entry(cluster *c, unsigned leader, Clinlog__V1__RaftEntry *e) {
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

int wait_sub(cluster *c, sub *s) {
  until u = {c, 0, 0, s};
  cr_assert(raft_fixture_step_until(&c->f, sub_done, &u, 60 * ELECTION_MS),
            "raft entry %llu never completed", (unsigned long long)s->req.index);
  return s->status;
}

sub *submit_head_entry(cluster *c, unsigned leader) {
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

raft_index submit_head(cluster *c, unsigned mask) {
  unsigned leader = wait_leader(c, ALL(c));
  sub *s = submit_head_entry(c, leader);
  cr_assert_not_null(s);
  cr_assert_eq(wait_sub(c, s), 0);
  wait_applied(c, mask, s->req.index);
  return s->req.index;
}

sub *submit_batches(cluster *c, unsigned leader, Clinlog__V1__PreparedBatch **pbs, size_t n,
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

sub *submit_work(cluster *c, unsigned mask) {
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

void isolate(cluster *c, unsigned i, int on) {
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

raft_index settle(cluster *c, unsigned mask) {
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

static int records_add(void *ctx, uint64_t seq, const uint8_t *rec, size_t len, cl_err *err) {
  (void)seq;
  (void)err;
  records *r = ctx;
  r->data[r->n] = malloc(len ? len : 1);
  memcpy(r->data[r->n], rec, len);
  r->len[r->n++] = len;
  return 0;
}

void records_read(cl_log *log, records *r) {
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

void records_free(records *r) {
  for (size_t i = 0; i < r->n; i++)
    free(r->data[i]);
  free(r->data);
  free(r->len);
}

int check_decrypts(void *ctx, const cl_event_view *v, cl_err *err) {
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

void assert_verifies(cluster *c, node *nd) {
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

void assert_converged(cluster *c, unsigned mask, raft_index applied, int verify) {
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

int has_event(cl_log *log, const uint8_t id[16]) {
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

uint64_t event_seq(cl_log *log, const uint8_t id[16]) {
  uint64_t seq = 0;
  cl_err err;
  cr_assert_eq(cl_log_get_event(log, id, seq_fn, &seq, &err), 0, "%s", err.msg);
  return seq;
}

int count_readable(void *ctx, const cl_event_view *v, cl_err *err) {
  (void)err;
  *(int *)ctx += v->event != NULL;
  return 0;
}

void step_ms(cluster *c, unsigned ms) { raft_fixture_step_until_elapsed(&c->f, ms); }

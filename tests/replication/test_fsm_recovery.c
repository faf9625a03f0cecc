/* Tests for replication/fsm.c, continued (fsm_fixture.h): how a server
 * recovers. Raft's replay of entries the store already applied after a
 * restart, snapshot installs that catch a store up, a catch-up that meets
 * tampered records, and a follower whose disk fails; each ends with the
 * stores converged as in test_fsm.c. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/replication/fsm_fixture.h"

TestSuite(fsm, .fini = fsm_fini, .timeout = 120);

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

/* 1. After a restart, Raft replays entries the store has applied: they are
 * skipped, not applied twice, and the next entry applies normally. Checked
 * on the store (cl_log_apply with an old index) and through the FSM under a
 * restarted Raft: from the full log, from a snapshot the store is ahead of,
 * and from a snapshot whose root the store does not have (refused). */
Test(fsm, replay_after_restart_is_skipped) {
  cluster *c = fsm_cur = stores_new(3, 5);
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

/* 2. Five servers with frequent snapshots; one is cut off while the others
 * apply many entries and compact their Raft logs. Back, it receives a
 * snapshot, catches its store up through fetch and ends identical. */
Test(fsm, snapshot_install_catches_up_store) {
  cluster *c = fsm_cur = stores_new(5, 5);
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
  cluster *c = fsm_cur = stores_new(3, 30);
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
  cr_assert_eq(cl_test_copy_records(src->log, x.log, target, root, 8, 5, &err), CL_EVERIFY,
               "%d: %s", err.code, err.msg);
  uint64_t xs;
  cl_log_head(x.log, &xs, xr);
  cr_assert_eq(xs, 0);
  cr_assert_arr_eq(xr, empty, 32);

  /* record 20 (third chunk) flipped: the first two chunks stay */
  cl_err_clear(&err);
  cr_assert_eq(cl_test_copy_records(src->log, x.log, target, root, 8, 20, &err), CL_EVERIFY,
               "%d: %s", err.code, err.msg);
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
  cr_assert_eq(cl_test_copy_records(src->log, x.log, target, root, 8, target, &err), CL_EVERIFY,
               "%s", err.msg);
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
  cluster *c = fsm_cur = stores_new(3, 30);
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

/* 3. A follower's disk fails to write entries it received; after the fault
 * clears it converges. The fault is armed once the follower has taken the
 * entries into its in-memory log (the append was submitted), so it is the
 * write itself that fails. (A fault on the submission instead makes
 * libraft 0.22.1 free the received batch twice: legacyHandleUpdateEntries
 * frees it, then recvCb frees it again on the error.) */
Test(fsm, follower_disk_fault_heals) {
  cluster *c = fsm_cur = stores_new(3, 5);
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

/* Tests for replication/fsm.c: clinlog's Raft state machine on libraft's
 * deterministic fixture (fsm_fixture.h), three and five servers under
 * partitions, kills and lost messages. Every test ends by checking that the
 * stores converged: same tree size and root, byte-identical records,
 * identical checkpoints at every multiple of the checkpoint interval, every
 * event decryptable, the applied Raft index equal everywhere, and (where it
 * matters) an auditor's replay (cl_verify). Recovery (replay after a
 * restart, snapshots, catch-up refusals, disk faults) is in
 * test_fsm_recovery.c. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/replication/fsm_fixture.h"

TestSuite(fsm, .fini = fsm_fini, .timeout = 120);

/* 1. Three servers; servers 1 and 2 start empty and catch up to the head;
 * 50 entries of mixed batches; every store identical. */
Test(fsm, three_servers_apply_identically) {
  cluster *c = fsm_cur = stores_new(3, 25);
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
  cluster *c = fsm_cur = stores_new(3, 5);
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
  cluster *c = fsm_cur = stores_new(3, 5);
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

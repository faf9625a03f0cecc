"""Leadership transfer, node removal and re-addition (fresh replica store)
under a write load."""
import random
import time

import grpc

import cluster
from cluster import T, log

# TransferLeadership may answer UNAVAILABLE "leadership transfer did not
# complete" (the target did not start its election in time); the test retries
# and reports how often that happened.
MAX_FAILED_TRANSFERS = 10
# after a transfer, 5 writes must be acknowledged within this (scaled) time
RESUME_LIMIT_S = 5.0


class MembershipTest(cluster.ClusterTestCase):

    def members(self, st):
        return sorted((m.id, m.role) for m in st.nodes)

    def test_transfer_remove_readd(self):
        rng = random.Random(self.seed)
        c = self.new_cluster("membership")
        c.start(3)
        wl = self.new_workload(c, writers=4).start()
        lid = self.wait_healthy(c, wl)

        # 1. leadership transfers to chosen followers, writes going on
        transfers, failed_transfers = [], []
        for _ in range(2):
            lid = c.leader(timeout=T(15))
            target = rng.choice([i for i in c.ids() if i != lid])
            t = time.monotonic()
            while True:
                try:
                    c.nodes[lid].client.transfer(target, timeout=T(30))
                    break
                except grpc.RpcError as e:
                    # "leadership transfer did not complete" (UNAVAILABLE) is
                    # an answer the API allows; retried a few times
                    failed_transfers.append(cluster.rpc_err(e))
                    log("membership: TransferLeadership(%d) on %d failed: %s"
                        % (target, lid, failed_transfers[-1]))
                    if e.code() != grpc.StatusCode.UNAVAILABLE or \
                            len(failed_transfers) >= MAX_FAILED_TRANSFERS:
                        self.fail("TransferLeadership(%d) on leader %d: %s\n%s"
                                  % (target, lid, "; ".join(failed_transfers), c.diag()))
                    time.sleep(0.5)
                    if c.leader(timeout=T(15)) == target:
                        break
            new = c.leader(timeout=T(15))
            dt = time.monotonic() - t
            self.assertEqual(new, target, "leadership went to node %d, not %d" % (new, target))
            t = time.monotonic()
            first = wl.wait_progress(t, 5, timeout=T(RESUME_LIMIT_S))
            self.assertIsNotNone(first, "writes did not resume within %ss after leadership moved "
                                 "from node %d to node %d\n%s"
                                 % (T(RESUME_LIMIT_S), lid, new, c.diag()))
            transfers.append("%d->%d %.2fs (writes after %.2fs)" % (lid, new, dt, first - t))
            log("membership: leadership %d -> %d in %.2fs, writes after %.2fs"
                % (lid, new, dt, first - t))

        # 2. remove a follower (the old leader) while writes go on
        rid = lid
        rest = [i for i in c.ids() if i != rid]
        wl.set_targets(rest)
        t = time.monotonic()
        try:
            st = c.nodes[new].client.remove_node(rid, timeout=T(30))
        except grpc.RpcError as e:
            self.fail("RemoveNode(%d) on leader %d: %s\n%s"
                      % (rid, new, cluster.rpc_err(e), c.diag()))
        t_remove = time.monotonic() - t
        self.assertNotIn(rid, [m.id for m in st.nodes], "RemoveNode answered %s" % st)
        deadline = time.monotonic() + T(10)
        while True:
            sts = c.statuses(rest)
            if all(not isinstance(s, str) and rid not in [m.id for m in s.nodes]
                   for s in sts.values()):
                break
            if time.monotonic() > deadline:
                self.fail("node %d still a member on some node:\n%s"
                          % (rid, cluster.fmt_statuses(sts)))
            time.sleep(0.1)
        removed = c.nodes.pop(rid)
        c.retired.append(removed)
        self.assertIsNotNone(wl.wait_progress(time.monotonic(), 5, timeout=T(15)),
                             "no writes with node %d removed\n%s" % (rid, c.diag()))
        rc = removed.sigterm_stop()
        self.assertEqual(rc, 0, "removed node %d exited %r after SIGTERM:\n%s"
                         % (rid, rc, removed.diag()))
        log("membership: node %d removed in %.2fs and stopped" % (rid, t_remove))

        # 3. add it back: a fresh replica store, fresh Raft dir, new ports
        time.sleep(1)
        t = time.monotonic()
        c.add_node(rid, tag="n%d-again" % rid)
        t_add = time.monotonic() - t
        wl.set_targets(c.ids())
        self.wait_healthy(c, wl, max_lag=10**9, timeout=T(60))
        time.sleep(1)
        self.assertTrue(wl.stop(), "writers did not stop\n" + c.diag())
        res = cluster.verify_cluster(c, wl, label="membership test")
        for i, s in c.statuses().items():
            self.assertEqual(self.members(s), [(k, "voter") for k in c.ids()],
                             "node %d sees members %s" % (i, self.members(s)))
        problems, _ = cluster.stop_and_verify_dirs(c, res["tree_size"])
        self.assertEqual(problems, [], "\n".join(problems))
        print("membership test: transfers %s (%d failed attempts: %s); RemoveNode(%d) %.2fs; "
              "AddNode(%d) with a fresh store (caught up to a voter) %.2fs; %d events "
              "acknowledged, tree size %d" % (", ".join(transfers), len(failed_transfers),
                           failed_transfers or "none", rid, t_remove, rid, t_add,
                           res["acked_events"], res["tree_size"]), flush=True)

"""Partition test: the leader is cut off from the other two nodes (every Raft
link to and from it dropped by cluster.RaftProxy: no root or network
namespace needed), then the partition heals. Only the Raft links are cut;
the nodes' gRPC APIs (write forwarding, catch-up) stay reachable."""
import threading
import time

import grpc

import cluster
import common
from cluster import T, log

ISOLATION_S = 6.0


class DirectProbe:
    """Appends fresh single events straight to one node, one after the other,
    each with a short deadline, recording every outcome."""

    def __init__(self, node, signer, stream, timeout):
        self.node, self.signer, self.stream, self.timeout = node, signer, stream, timeout
        self.stop_ev = threading.Event()
        self.outcomes = []   # (t_start, t_end, code name or "OK", event id, details)
        self.thread = threading.Thread(target=self._run, daemon=True, name="probe")

    def start(self):
        self.thread.start()
        return self

    def _run(self):
        while not self.stop_ev.is_set():
            ev = common.event(self.stream, text="probe")
            eid = common.event_id_of(ev)
            t0 = time.monotonic()
            try:
                r = self.node.client.append(common.batch([ev], self.signer),
                                            timeout=self.timeout)
                self.outcomes.append((t0, time.monotonic(), "OK", eid,
                                      "seq %d" % r.positions[0].seq))
            except grpc.RpcError as e:
                self.outcomes.append((t0, time.monotonic(), e.code().name, eid,
                                      cluster.rpc_err(e)))
            self.stop_ev.wait(0.1)

    def stop(self):
        self.stop_ev.set()
        self.thread.join(self.timeout + T(10))


class PartitionTest(cluster.ClusterTestCase):

    def test_isolate_leader(self):
        c = self.new_cluster("partition", proxied=True)
        c.start(3)
        wl = self.new_workload(c, writers=4).start()
        old = self.wait_healthy(c, wl)
        majority = [i for i in c.ids() if i != old]
        time.sleep(1)
        acks_before = wl.count()

        with wl.lock:
            retries_before = dict(wl.retries)
        t_iso = time.monotonic()
        c.proxy.isolate(old, c.ids())
        log("partition: node %d (leader) isolated from %s" % (old, majority))
        probe = DirectProbe(c.nodes[old], c.signer,
                            common.unique_stream("patient-probe-"), T(1.5)).start()
        try:
            new = c.leader(ids=majority, timeout=T(15))
            t_elected = time.monotonic()
            first = wl.wait_progress(t_iso, 1, timeout=T(15))
            self.assertIsNotNone(first, "the majority %s acknowledged no write within %ss of "
                                 "the isolation\n%s" % (majority, T(15), c.diag()))
            t_first = first
            time.sleep(max(0, t_iso + ISOLATION_S - time.monotonic()))
            old_st = c.statuses([old])[old]
            maj_acks = len(wl.acks_since(t_iso))
        finally:
            probe.stop()
        t_heal = time.monotonic()
        with wl.lock:
            retries_iso = {k: v - retries_before.get(k, 0) for k, v in wl.retries.items()
                           if v != retries_before.get(k, 0)}
        c.proxy.heal()
        log("partition: healed after %.1fs; new leader %d elected after %.2fs, first write "
            "acknowledged after %.2fs; %d acks while isolated" % (
                t_heal - t_iso, new, t_elected - t_iso, t_first - t_iso, maj_acks))

        self.assertNotEqual(new, old)
        ok = [o for o in probe.outcomes if o[2] == "OK"]
        self.assertEqual(ok, [], "the isolated old leader acknowledged %d appends: %s\n%s"
                         % (len(ok), [(round(o[0] - t_iso, 2), o[4]) for o in ok[:5]],
                            c.diag()))
        self.assertGreater(len(probe.outcomes), 0, "no probe append was answered")
        # writers' appends through the old leader, started while it was cut off
        via_old = [a for a in wl.acks_since(t_iso) if a.node == old and a.t_ack < t_heal]
        self.assertEqual(via_old, [], "%d writer appends sent to the isolated node %d after the "
                         "isolation were acknowledged" % (len(via_old), old))
        self.assertGreater(maj_acks, 0)

        self.wait_healthy(c, wl, max_lag=10**9, timeout=T(60))
        time.sleep(1)
        self.assertTrue(wl.stop(), "writers did not stop\n" + c.diag())
        res = cluster.verify_cluster(c, wl, label="partition test",
                                     extra_absent=[o[3] for o in probe.outcomes])
        problems, _ = cluster.stop_and_verify_dirs(c, res["tree_size"])
        self.assertEqual(problems, [], "\n".join(problems))
        codes = {}
        for o in probe.outcomes:
            codes[o[2]] = codes.get(o[2], 0) + 1
        lat = sorted(o[1] - o[0] for o in probe.outcomes)
        details = sorted(set(o[4] for o in probe.outcomes))
        old_state = old_st if isinstance(old_st, str) else "%s (term %d, leader %d)" % (
            old_st.state, old_st.term, old_st.leader_id)
        print("partition test: old leader %d isolated %.1fs: new leader %d after %.2fs, first "
              "majority write after %.2fs, %d appends acknowledged during the partition; %d "
              "direct appends to the old leader, none acknowledged (%s, answered in %.2fs "
              "median, %.2fs max: %s); writers' failed attempts and read-your-write checks during the partition: %s; "
              "old leader's state at the end: %s; %d events "
              "acknowledged in all (%d appends before the partition), tree size %d; proxy %s"
              % (old, t_heal - t_iso, new, t_elected - t_iso, t_first - t_iso, maj_acks,
                 len(probe.outcomes), codes, lat[len(lat) // 2], lat[-1], details[:3],
                 retries_iso, old_state, res["acked_events"], acks_before, res["tree_size"],
                 dict(c.proxy.stats)), flush=True)

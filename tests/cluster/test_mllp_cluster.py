"""The MLLP listener on a follower of a 3-node cluster (docs/adapters.md,
"MLLP listener"): each message is committed through the leader (the
listener's writer forwards it) before its AA, and every AA'd message is on
all 3 nodes exactly once. Midway the leader is SIGKILLed: the sender,
which resends whatever was not acknowledged (AE, or a connection lost),
sees AEs while a new leader is elected and then AAs again; once the old
leader is back and the cluster has converged, every node holds each
message's event exactly once.

With the listener on the leader, each message's audit record rides in its
events' Raft entry (AccessRecorded.preceding): every node applies the pair
alike, so every node holds each record right after its events, and the
same log."""
import threading
import time
import uuid

import cluster
import common
from cluster import T, log
from test_mllp import Conn, adt, keygen, register_feed, segments


def sources(node, patients):
    """source_message_id -> count over the patients' streams on one node
    (None while the node does not answer)."""
    out = {}
    try:
        for p in patients:
            req = common.pb.api.ReadRequest(stream="patient-NORTH-" + p)
            try:
                for re in node.client._read(req, timeout=T(10)):
                    ev = common.pb.event.Event.FromString(re.event)
                    out[ev.source_message_id] = out.get(ev.source_message_id, 0) + 1
            except Exception as e:  # noqa: BLE001
                if "NOT_FOUND" not in str(e):
                    raise
    except Exception:  # noqa: BLE001 - a node still starting: asked again
        return None
    return out


class MllpClusterTest(cluster.ClusterTestCase):


    def cluster_with_listener(self, name, key_name, **kw):
        """3 nodes, a feed's key registered, and a follower restarted with
        an MLLP listener; (cluster, that node's id, the listener's port)."""
        c = self.new_cluster(name, **kw)
        c.start(3)
        lid = c.leader()
        fid = [i for i in c.ids() if i != lid][0]
        key = keygen(key_name)
        register_feed(c.nodes[lid].client, c.signer, key)
        port = common.free_port()
        f = c.nodes[fid]
        self.assertEqual(f.sigterm_stop(), 0)
        f.extra += ["--mllp-listen", "127.0.0.1:%d" % port, "--mllp-key", key]
        f.start()
        return c, fid, port
    def test_follower_listener_commits_through_the_leader(self):
        c, fid, port = self.cluster_with_listener("mllp", "mllp-cluster")
        c.wait_converged(timeout=T(60))
        # the listener's node must be a follower, so that its writes are forwarded
        lid = c.leader()
        if lid == fid:
            other = [i for i in c.ids() if i != fid][0]
            c.nodes[fid].client.transfer(other, timeout=T(30))
            c.wait_leader([other], timeout=T(30))
            lid = c.leader()
        self.assertNotEqual(lid, fid)

        run = uuid.uuid4().hex[:6].upper()
        patients = ["C%s%d" % (run, k) for k in range(4)]
        total, acked, aes, odd = 60, [], [0], []
        state = {"i": 0}

        def sender():
            conn = None
            deadline = time.monotonic() + T(180)
            while state["i"] < total and time.monotonic() < deadline:
                i = state["i"]
                ctl = "%s-%03d" % (run, i)
                try:
                    if conn is None:
                        conn = Conn(port, timeout=T(40))
                    seg = segments(conn.call(adt(ctl, patients[i % 4], app="CLU")))
                except (OSError, ConnectionError):
                    if conn:
                        conn.close()
                    conn = None
                    time.sleep(0.1)
                    continue
                if seg["MSA"][1] == "AA":
                    acked.append(ctl)
                    state["i"] += 1
                else:
                    aes[0] += 1
                    if seg["MSA"][1] != "AE":
                        odd.append(seg)
                    time.sleep(0.1)  # not committed: resend the same message
            if conn:
                conn.close()

        t = threading.Thread(target=sender)
        t.start()
        while len(acked) < 20 and t.is_alive():
            time.sleep(0.01)
        lid = c.leader()
        if lid != fid:  # the listener's node stays up: kill the leader it forwards to
            c.nodes[lid].sigkill()
            log("mllp: leader %d SIGKILLed after %d AAs" % (lid, len(acked)))
            c.wait_leader([i for i in c.ids() if i != lid], timeout=T(30))
        t.join(T(240))
        self.assertFalse(t.is_alive(), "the sender did not finish\n%s" % c.diag())
        self.assertEqual(odd, [], "only AE while the leader changes")
        self.assertEqual(len(acked), total)
        if not c.nodes[lid].alive():
            c.nodes[lid].start()
        c.wait_converged(timeout=T(90))
        want = {ctl: 1 for ctl in acked}
        for i in c.ids():
            got = None
            deadline = time.monotonic() + T(30)
            while time.monotonic() < deadline:
                got = sources(c.nodes[i], patients)
                if got == want:
                    break
                time.sleep(0.3)
            self.assertEqual(got, want, "node %d: every AA'd message exactly once\n%s"
                             % (i, c.diag()))
        log("mllp: %d messages through follower %d's listener (%d AE resent), each once on "
            "nodes %s" % (total, fid, aes[0], c.ids()))

    def test_leader_listener_records_ride_with_the_events(self):
        c, fid, port = self.cluster_with_listener("mllpl", "mllp-cluster-leader", audit=True)
        # not wait_converged: with the audit trail on, its status calls are
        # recorded, so the log never stands still
        lid = c.leader(timeout=T(60))
        if lid != fid:  # the listener's node must lead: its records are linked
            c.nodes[lid].client.transfer(fid, timeout=T(30))
            deadline = time.monotonic() + T(30)
            while c.leader() != fid and time.monotonic() < deadline:
                time.sleep(0.1)
        self.assertEqual(c.leader(), fid, c.diag())
        run = uuid.uuid4().hex[:6].upper()
        acked = []
        conn = Conn(port, timeout=T(40))
        for i in range(30):
            ctl = "%s-L%03d" % (run, i)
            seg = segments(conn.call(adt(ctl, "L%s%d" % (run, i % 3), app="CLL", trigger="A01")))
            self.assertEqual(seg["MSA"][1], "AA", seg)
            acked.append(ctl)
        conn.close()
        size = c.nodes[fid].client.status(timeout=T(10)).tree_size  # reads are recorded too
        deadline = time.monotonic() + T(60)
        while time.monotonic() < deadline:
            sts = c.statuses()
            if all(not isinstance(v, str) and v.tree_size >= size for v in sts.values()):
                break
            time.sleep(0.2)
        logs = {}
        for i in c.ids():
            req = common.pb.api.ReadRequest(max_count=size)
            evs = [(r.seq, common.pb.event.Event.FromString(r.event))
                   for r in c.nodes[i].client._read(req, timeout=T(30))]
            by_seq = dict(evs)
            named = {}
            for seq, e in evs:
                a = e.access_recorded if e.WhichOneof("body") == "access_recorded" else None
                if a is not None and a.preceding:
                    for s in range(seq - a.preceding, seq):
                        named[by_seq[s].source_message_id] = named.get(
                            by_seq[s].source_message_id, 0) + 1
            self.assertEqual({k: named.get(k) for k in acked}, {k: 2 for k in acked},
                             "node %d: each message's two events named by its record" % i)
            logs[i] = [(s, e.event_id) for s, e in evs]
        self.assertEqual(len(set(map(tuple, logs.values()))), 1, "the same log on every node")
        log("mllp: %d messages through leader %d's listener, each recorded in its entry on "
            "nodes %s" % (len(acked), fid, c.ids()))

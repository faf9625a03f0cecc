"""The audit trail on a 3-node cluster (--audit on): a read served by a
follower is recorded through the leader, and the record (naming that
follower) is in every node's log; a node that cannot commit records (the
leader and the other follower killed: no quorum) serves no read at all,
where without the trail it would answer from its own copy (fail closed)."""
import time
import uuid

import grpc

import cluster
import common
from cluster import T, log


def records(node, rid):
    """The AccessRecorded events of request `rid` in the node's log."""
    out = []
    req = common.pb.api.ReadRequest(stream="$audit")
    for re in node.client._read(req, timeout=T(30)):
        a = common.pb.event.Event.FromString(re.event).access_recorded
        if a.request_id == rid:
            out.append(a)
    return out


class AuditClusterTest(cluster.ClusterTestCase):

    def test_follower_reads_are_recorded_and_refused_without_a_quorum(self):
        c = self.new_cluster("audit", audit=True)
        c.start(3)
        lid = c.leader()
        fid = next(i for i in c.ids() if i != lid)
        other = next(i for i in c.ids() if i not in (lid, fid))
        rid = "cluster-audit-" + uuid.uuid4().hex
        got = list(c.nodes[fid].client._read(common.pb.api.ReadRequest(max_count=1),
                                             metadata=[("x-request-id", rid)], timeout=T(10)))
        self.assertEqual(len(got), 1)
        deadline = time.monotonic() + T(20)
        for i in c.ids():  # replicated: every node holds the follower's record
            while True:
                recs = records(c.nodes[i], rid)
                if recs or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            self.assertEqual(len(recs), 1, "node %d holds %d records of the read" % (i, len(recs)))
            self.assertEqual((recs[0].node_id, recs[0].method, recs[0].outcome),
                             (fid, "clinlog.v1.Log/Read", "0"))
        log("audit: the read on follower %d is recorded on every node" % fid)

        # no quorum: the survivor cannot commit a record, so it answers no read
        c.nodes[lid].sigkill()
        c.nodes[other].sigkill()
        t0 = time.monotonic()
        with self.assertRaises(grpc.RpcError) as cm:
            list(c.nodes[fid].client._read(common.pb.api.ReadRequest(max_count=1),
                                           timeout=T(15)))
        e = cm.exception
        self.assertEqual(e.code(), grpc.StatusCode.UNAVAILABLE, cluster.rpc_err(e))
        self.assertIn("could not be recorded", e.details())
        log("audit: without a quorum follower %d refused a read after %.2fs: %s"
            % (fid, time.monotonic() - t0, e.details()))
        for i in (lid, other):
            c.nodes[i].start()
        c.leader(timeout=T(30))


class FhirWriteAuditClusterTest(cluster.ClusterTestCase):
    """FHIR REST writes with the trail on (docs/security.md, "One commit for
    a FHIR REST write"): on the leader the call's record rides in the
    write's commit (preceding = its events, right after them); a write sent
    to a follower is forwarded to the leader and its record written after,
    by the follower (preceding 0); each call has exactly one record, on
    every node."""

    def test_leader_writes_carry_their_record_follower_writes_record_after(self):
        from test_fhir_write import heart_rate, patient
        from test_fhir_write_cluster import HttpCluster, call
        c = HttpCluster("fwaudit", audit=True)
        self.clusters.append(c)
        c.init_seed()
        c.start_first()
        for k in (2, 3):
            c.add_node(k)
        lid = c.leader()  # not wait_converged: with the trail on its own calls grow the log
        fid = next(i for i in c.ids() if i != lid)
        rids = {}
        for who, node_id, path, body in (
                ("leader", lid, "/Patient", patient(family="Audited")),
                ("follower", fid, "/Observation", None)):
            rid = "cluster-fw-%s-%s" % (who, uuid.uuid4().hex[:12])
            if body is None:
                body = heart_rate(rids["leader"][2], 71)
            h = {"X-Request-Id": rid}
            if rids:  # the follower's views have the patient first
                h["X-Clinlog-Min-Sequence"] = str(rids["leader"][1])
            r, res = call(c.nodes[node_id], "POST", "/fhir/R4" + path, body, headers=h)
            self.assertEqual(r.status, 201, res)
            rids[who] = (rid, int(r.getheader("X-Clinlog-Sequence")), res["id"])
        deadline = time.monotonic() + T(30)
        for i in c.ids():
            for who, (rid, last, rid_res) in rids.items():
                while True:  # replicated: every node holds each record
                    recs = records(c.nodes[i], rid)
                    if recs or time.monotonic() > deadline:
                        break
                    time.sleep(0.1)
                self.assertEqual(len(recs), 1, "node %d: %s write, %d records"
                                 % (i, who, len(recs)))
                a = recs[0]
                self.assertEqual((a.method, a.outcome, a.count, a.transport),
                                 ("clinlog.v1.Fhir/Write", "0", 1, "http"))
                self.assertTrue(a.resource.endswith("/" + rid_res), a.resource)
                self.assertEqual(list(a.patients), [rids["leader"][2]])
                if who == "leader":
                    self.assertEqual((a.node_id, a.preceding), (lid, 1), "in the commit")
                else:
                    self.assertEqual((a.node_id, a.preceding), (fid, 0), "recorded after")
        # the leader's record is the entry right after its write's event
        seqs = [x.seq for x in c.nodes[lid].client._read(
            common.pb.api.ReadRequest(stream="$audit"), timeout=T(30))
            if common.pb.event.Event.FromString(x.event).access_recorded.request_id
            == rids["leader"][0]]
        self.assertEqual(seqs, [rids["leader"][1] + 1])
        log("audit: a FHIR write on leader %d rides with its record; one on follower %d "
            "is recorded after" % (lid, fid))

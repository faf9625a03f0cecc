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

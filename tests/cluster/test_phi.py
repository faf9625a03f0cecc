"""No plaintext PHI on any node's disk: the Raft log (segments, snapshots)
carries prepared batches only (payloads already encrypted by the leader),
and each store keeps its events encrypted, the audit trail's records (which
name what each call asked for) and its projection included."""
import os
import time

import common
import cluster
from cluster import T

CANARIES = (b"Zelda Canarywhistle", b"MRN-CANARY-778899")


class PhiTest(cluster.ClusterTestCase):

    def test_no_plaintext_phi_on_disk(self):
        c = self.new_cluster("phi", audit=True)  # the trail's records name what was asked
        c.start(3)
        lid = c.leader()
        follower = next(i for i in c.ids() if i != lid)
        evs = [common.event("patient-canary-%d" % (k % 3),
                            text="Zelda Canarywhistle MRN-CANARY-778899 #%d" % k)
               for k in range(40)]
        size = 0
        for k in range(0, len(evs), 8):  # several entries, through a follower (forwarded)
            r = c.nodes[follower].client.append(common.batch(evs[k:k + 8], c.signer),
                                                timeout=T(10))
            size = r.tree_size
        deadline = time.monotonic() + T(20)
        while True:
            sizes = {i: getattr(s, "tree_size", 0) for i, s in c.statuses().items()}
            if min(sizes.values()) >= size:
                break
            self.assertLess(time.monotonic(), deadline, "not replicated: %s" % sizes)
            time.sleep(0.1)
        # reads on every node whose audit records name the canaries: a search
        # by the MRN (its query) and the patient's stream
        for n in c.nodes.values():
            search = n.client.channel.unary_unary(
                "/clinlog.v1.Fhir/Search", common.pb.fhir.FhirSearchRequest.SerializeToString,
                common.pb.fhir.FhirResponse.FromString)
            search(common.pb.fhir.FhirSearchRequest(type="Patient", params=[
                common.pb.fhir.FhirParam(name="identifier", value="MRN-CANARY-778899")]),
                timeout=T(10))
            list(n.client.read_call(common.pb.api.ReadRequest(stream="patient-canary-0",
                                                              max_count=1), timeout=T(10)))
        # the stores flush their memtables at a clean stop, so check after it
        c.stop_all()
        checked = 0
        for n in c.nodes.values():
            for root, _, files in os.walk(n.data):
                for f in files:
                    path = os.path.join(root, f)
                    with open(path, "rb") as fh:
                        data = fh.read()
                    checked += 1
                    for canary in CANARIES:
                        self.assertNotIn(canary, data, "%s holds %r in plaintext" % (path, canary))
        raft_files = sum(len(fs) for n in c.nodes.values()
                         for _, _, fs in os.walk(os.path.join(n.data, "raft")))
        self.assertGreater(raft_files, 3, "no Raft files were checked")
        print("phi test: %d files on 3 nodes (%d in Raft directories) hold no canary"
              % (checked, raft_files), flush=True)

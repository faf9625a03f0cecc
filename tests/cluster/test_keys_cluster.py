"""Rotating the master key of a whole cluster (docs/operations.md, "Rotating
the master key"): writes stop and the nodes converge, every node is stopped
and rotated offline to the same new key, the cluster starts again and takes
writes, and a member added afterwards (`clinlog init --replica-of`, which
carries the sealed tag and projection keys) catches up; every node holds
the same records and verifies with the new key."""
import json
import os
import time

import cluster
from cluster import T, clinlog, log


class KeysClusterTest(cluster.ClusterTestCase):

    def test_rotate_every_node_then_add_a_member(self):
        c = self.new_cluster("rotate")
        c.start(3)
        before = self.new_workload(c, writers=2).start()
        self.wait_healthy(c, before)
        time.sleep(1)
        self.assertTrue(before.stop(), "writers did not stop\n" + c.diag())
        c.wait_converged()

        # every node stopped, checked, then rotated to one new key
        rcs = c.stop_all()
        self.assertEqual(set(rcs.values()), {0}, "exit codes %s\n%s" % (rcs, c.diag()))
        key = os.path.join(os.path.dirname(c.seed), os.path.basename(c.seed) + ".next.key")
        r = clinlog("keys", "new-master", key)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for i in c.ids():
            r = clinlog("keys", "rotate-master", c.nodes[i].data, "--check")
            self.assertEqual(r.returncode, 0, "node %d: %s%s" % (i, r.stdout, r.stderr))
        outs = {}
        for i in c.ids():
            r = clinlog("keys", "rotate-master", c.nodes[i].data, "--new-key", key, "--json")
            self.assertEqual(r.returncode, 0, "node %d: %s%s" % (i, r.stdout, r.stderr))
            outs[i] = json.loads(r.stdout)
        self.assertEqual(len({o["oldKeyCheck"] for o in outs.values()}), 1, outs)
        self.assertEqual(len({o["newKeyCheck"] for o in outs.values()}), 1, outs)
        self.assertEqual(len({o["streams"] for o in outs.values()}), 1, outs)
        self.assertEqual(len({o["appliedIndex"] for o in outs.values()}), 1, outs)
        log("rotate: %s" % {i: (o["streams"], round(o["seconds"], 3)) for i, o in outs.items()})

        # the cluster comes back and takes writes; a new member catches up
        for i in c.ids():
            c.nodes[i].start()
        after = self.new_workload(c, writers=2).start()
        self.wait_healthy(c, after, timeout=T(60))
        c.add_node(4)
        after.set_targets(c.ids())
        self.wait_healthy(c, after, max_lag=10**9, timeout=T(60))
        time.sleep(1)
        self.assertTrue(after.stop(), "writers did not stop\n" + c.diag())
        cluster.verify_cluster(c, before, label="rotate (events from before)")
        res = cluster.verify_cluster(c, after, label="rotate (events from after)")
        problems, _ = cluster.stop_and_verify_dirs(c, res["tree_size"])
        self.assertEqual(problems, [], "\n".join(problems))
        print("rotate test: 3 nodes rotated (%d stream keys each), 4th member added; tree size "
              "%d" % (outs[1]["streams"], res["tree_size"]), flush=True)

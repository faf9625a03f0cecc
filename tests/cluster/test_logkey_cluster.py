"""Rotating the log signing key of a running cluster (docs/operations.md,
"Rotating the log signing key"): 3 nodes take writes; the new key is staged
(`clinlog keys stage-log`) on two of them and the online rotation
(`clinlog keys rotate-log --online`, Cluster.RotateLogKey) is refused,
naming the third, with nothing committed; staged there too, the rotation
commits through Raft and every node switches as it applies it. Then:
checkpoints from every node verify with the key valid at their size
(before: the old key, after: the new one; log.pub lists both), a
consistency proof spans the rotation, `clinlog verify --remote --log-key
log.pub` passes on every node, a follower restarted afterwards still signs
with the new key, and a member added afterwards (`clinlog init
--replica-of`, which copies the rotated key) signs with it too. The
admin-only policy of the call is tested in tests/adapters/test_authz.c."""
import base64
import json
import os
import time

import cluster
import common
from cluster import T, clinlog, log
from common import verify_consistency, verify_note


def read_pub(path):
    """log.pub -> (origin, current key, [(key, from, to or None)])."""
    origin, cur, hist = None, None, []
    for line in open(path).read().splitlines():
        if line.startswith("origin: "):
            origin = line[len("origin: "):]
        elif line.startswith("key: ed25519:"):
            cur = base64.b64decode(line[len("key: ed25519:"):], validate=True)
        elif line.startswith("log-key: ed25519:"):
            k, sizes = line[len("log-key: ed25519:"):].split(" ")
            a, b = sizes.split("-")
            hist.append((base64.b64decode(k, validate=True), int(a), int(b) if b else None))
    return origin, cur, hist


def pub_of_key_file(path):
    with open(path + ".pub") as f:
        return base64.b64decode(f.read().strip().split("ed25519:")[1], validate=True)


class LogKeyClusterTest(cluster.ClusterTestCase):

    def fresh_checkpoint(self, node):
        deadline = time.monotonic() + T(20)
        while True:
            try:
                return node.new_client().checkpoint(fresh=True)
            except Exception as e:  # a follower may lag a moment
                if time.monotonic() > deadline:
                    raise AssertionError("node %d: GetCheckpoint: %s" % (node.id, e))
                time.sleep(0.2)

    def test_rotate_online_stage_refuse_switch_add(self):
        c = self.new_cluster("logkey")
        c.start(3)
        before = self.new_workload(c, writers=2).start()
        self.wait_healthy(c, before)
        time.sleep(1)
        self.assertTrue(before.stop(), "writers did not stop\n" + c.diag())
        c.wait_converged()
        origin, old_pk, hist = read_pub(os.path.join(c.seed, "log.pub"))
        self.assertEqual(hist, [])
        pre = {i: self.fresh_checkpoint(c.nodes[i]) for i in c.ids()}
        for i, cp in pre.items():
            self.assertEqual(verify_note(cp.note, old_pk, origin)[1], cp.tree_size, "node %d" % i)

        # the new key, staged on all but one follower: refused, nothing committed
        lid = c.leader()
        victim = [i for i in c.ids() if i != lid][0]
        newkey = os.path.join(os.path.dirname(c.seed), os.path.basename(c.seed) + ".log-next.key")
        r = clinlog("keygen", newkey)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        new_pk = pub_of_key_file(newkey)
        for i in c.ids():
            if i != victim:
                r = clinlog("keys", "stage-log", c.nodes[i].data, "--new-key", newkey, "--json")
                self.assertEqual(r.returncode, 0, "node %d: %s%s" % (i, r.stdout, r.stderr))
        size0 = c.nodes[lid].client.status().tree_size
        online = ("keys", "rotate-log", "--online", "--server", c.nodes[lid].addr, "--plaintext")
        r = clinlog(*online, "--json")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("node %d" % victim, r.stderr)
        self.assertIn("nothing committed", r.stderr)
        sts = c.wait_converged()
        self.assertEqual({s.tree_size for s in sts.values()}, {size0}, "a refusal wrote")
        self.assertEqual(read_pub(os.path.join(c.nodes[lid].data, "log.pub"))[2], [])

        # staged everywhere: --check, then the rotation, through a follower
        # (it names the leader; the CLI retries there)
        r = clinlog("keys", "stage-log", c.nodes[victim].data, "--new-key", newkey)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = clinlog(*online, "--check", "--json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(json.loads(r.stdout).get("checkedOnly"), r.stdout)
        follower_online = ("keys", "rotate-log", "--online", "--server",
                           c.nodes[victim].addr, "--plaintext")
        t0 = time.monotonic()
        r = clinlog(*follower_online, "--json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + c.diag())
        out = json.loads(r.stdout)
        R = int(out["revokedAtSeq"])
        self.assertEqual(base64.b64decode(out["newPublicKey"]), new_pk)
        self.assertEqual(base64.b64decode(out["oldPublicKey"]), old_pk)
        self.assertEqual(len(out["nodes"]), 3, out)
        log("logkey: rotated online at seq %d in %.2fs" % (R, time.monotonic() - t0))
        c.wait_converged()

        # every node switched: key file, no staged file left, log.pub, stderr
        for i in c.ids():
            d = c.nodes[i].data
            self.assertEqual(pub_of_key_file(os.path.join(d, "keys", "log.key")), new_pk,
                             "node %d: key file not switched\n%s" % (i, c.nodes[i].diag()))
            self.assertFalse(os.path.exists(os.path.join(d, "keys", "log.key.new")), "node %d" % i)
            o2, cur, h = read_pub(os.path.join(d, "log.pub"))
            self.assertEqual((o2, cur), (origin, new_pk), "node %d" % i)
            self.assertEqual(h, [(old_pk, 1, R), (new_pk, R, None)], "node %d" % i)
            self.assertIn("switched to the log key", c.nodes[i].stderr_all(), "node %d" % i)

        # more writes, then checkpoints from every node with the new key
        after = self.new_workload(c, writers=2).start()
        self.wait_healthy(c, after)
        time.sleep(1)
        self.assertTrue(after.stop(), "writers did not stop\n" + c.diag())
        c.wait_converged()
        post = {i: self.fresh_checkpoint(c.nodes[i]) for i in c.ids()}
        for i, cp in post.items():
            self.assertGreater(cp.tree_size, R)
            self.assertEqual(verify_note(cp.note, new_pk, origin)[1], cp.tree_size, "node %d" % i)
            with self.assertRaises(AssertionError):
                verify_note(cp.note, old_pk, origin)
            # pre-rotation checkpoints are still served as they were
            again = c.nodes[i].new_client().checkpoint(tree_size=pre[i].tree_size)
            self.assertEqual(again.note, pre[i].note, "node %d" % i)
            p = c.nodes[i].new_client().prove_consistency(pre[i].tree_size, cp.tree_size)
            self.assertTrue(verify_consistency(pre[i].tree_size, cp.tree_size, p.old_root,
                                               p.new_root, list(p.hashes)),
                            "node %d: consistency %d -> %d" % (i, pre[i].tree_size, cp.tree_size))
            pub = os.path.join(c.nodes[i].data, "log.pub")
            r = clinlog("verify", "--remote", "--server", c.nodes[i].addr, "--plaintext",
                        "--log-key", pub, timeout=T(120))
            self.assertEqual(r.returncode, 0, "node %d: %s%s" % (i, r.stdout, r.stderr))
        # the handover checkpoint, on the leader, is signed by both keys
        hand = c.nodes[lid].new_client().checkpoint(tree_size=R)
        if hand.tree_size == R:
            verify_note(hand.note, old_pk, origin)
            verify_note(hand.note, new_pk, origin)

        # a follower restarted after the rotation signs with the new key
        f = [i for i in c.ids() if i != c.leader()][0]
        self.assertEqual(c.nodes[f].sigterm_stop(), 0, c.nodes[f].diag())
        c.nodes[f].start()
        c.wait_converged()
        more = self.new_workload(c, writers=1).start()
        self.wait_healthy(c, more)
        time.sleep(0.5)
        self.assertTrue(more.stop(), "writers did not stop\n" + c.diag())
        c.wait_converged()
        cp = self.fresh_checkpoint(c.nodes[f])
        self.assertEqual(verify_note(cp.note, new_pk, origin)[1], cp.tree_size)

        # a rotation to a key registered already is refused
        r = clinlog(*online[:4], c.nodes[c.leader()].addr, "--plaintext")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)

        # a member added after the rotation: --replica-of copies the new key
        c.add_node(4)
        c.wait_converged()
        d4 = c.nodes[4].data
        self.assertEqual(pub_of_key_file(os.path.join(d4, "keys", "log.key")), new_pk)
        last = self.new_workload(c, writers=1).start()
        self.wait_healthy(c, last, max_lag=10**9, timeout=T(60))
        time.sleep(0.5)
        self.assertTrue(last.stop(), "writers did not stop\n" + c.diag())
        sts = c.wait_converged()
        cp = self.fresh_checkpoint(c.nodes[4])
        self.assertEqual(verify_note(cp.note, new_pk, origin)[1], cp.tree_size)
        self.assertEqual(read_pub(os.path.join(d4, "log.pub"))[2],
                         [(old_pk, 1, R), (new_pk, R, None)])
        cluster.verify_cluster(c, before, label="logkey (before)")
        res = cluster.verify_cluster(c, after, label="logkey (after)")
        problems, _ = cluster.stop_and_verify_dirs(c, res["tree_size"])
        self.assertEqual(problems, [], "\n".join(problems))
        print("logkey test: rotated online at seq %d on 3 nodes, one restarted, a 4th added; "
              "tree size %d" % (R, res["tree_size"]), flush=True)

"""Master key rotation through the CLI (docs/operations.md, "Rotating the
master key"): clinlogd runs and takes events, `clinlog keys rotate-master`
refuses while it runs, the node stops, the rotation runs (--json), and the
restarted node serves every event, stream and projection as before, without
rebuilding its projections; `clinlog verify` checks the content with the new
key and refuses the old one by name."""
import json
import os
import shutil
import subprocess

import grpc

import common
from common import T, LogServerTestCase, event
from test_query import erase_event


def clinlog(*args):
    return subprocess.run([common.CLINLOG] + list(args), capture_output=True, text=True,
                          timeout=T(120))


class TestRotateMaster(LogServerTestCase):

    def test_rotate_offline_and_read_back(self):
        data = self.server.data
        streams = [common.unique_stream("patient-rot") for _ in range(4)]
        appended = {}  # event id -> (seq, stream version, bytes, stream)
        for round_ in range(3):
            owners = [s for s in streams for _ in range(round_ + 1)]
            evs = [event(s) for s in owners]
            r = self.append_events(evs, mode="batch")
            for e, p, s in zip(evs, r.positions, owners):
                appended[p.event_id] = (p.seq, p.stream_version, e, s)
        gone = streams[3]
        head = self.append_events([erase_event(gone)]).tree_size
        info = {s: self.client.get_stream(s, min_sequence=head) for s in streams[:3]}
        self.assertEqual(self.client.projections()["streams"].position, head)

        # offline only: the running node holds the database lock
        r = clinlog("keys", "rotate-master", data)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("is in use", r.stderr)
        self.assertIn("stop the node first", r.stderr)

        rc = self.server.stop()
        self.assertEqual(rc, 0, self.server.stderr()[-2000:])
        key = os.path.join(data, "keys", "master.key")
        old = data + ".old-master.key"
        shutil.copy2(key, old)
        r = clinlog("keys", "rotate-master", data, "--check")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("can be rotated", r.stdout)
        r = clinlog("keys", "rotate-master", data, "--json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        out = json.loads(r.stdout)
        # $log, $principal-admin, $erasures and the three live patients at least
        self.assertGreaterEqual(out["streams"], 6)
        self.assertEqual(out["erased"], 1)
        self.assertNotEqual(out["oldKeyCheck"], out["newKeyCheck"])
        self.assertEqual(len(out["newKeyCheck"]), 32)
        self.assertEqual(out["keyFile"], key)
        self.assertGreater(out["appliedIndex"], 0)
        self.assertGreater(len(out["sealedKeys"]), 0)
        self.assertFalse(os.path.exists(key + ".new"))
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)

        # verify: content checked with the new key; the old one refused by name
        r = clinlog("verify", data, "--json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        v = json.loads(r.stdout)
        self.assertTrue(v["ok"] and v["contentChecked"], v)
        self.assertEqual(v["decrypted"] + v["erased"], head)
        self.assertGreater(v["erased"], 0)
        r = clinlog("verify", data, "--master-key", old)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("retired by a key rotation", r.stderr)

        # the restarted node serves everything as before
        self.server.start()
        self.client.wait_ready()
        for eid, (seq, ver, e, s) in appended.items():
            g = self.client.get_event(eid)
            self.assertEqual((g.seq, g.stream_version), (seq, ver))
            self.assertEqual((g.event, g.erased), (b"", True) if s == gone else (e, False))
        for s, si in info.items():
            self.assertEqual(self.client.get_stream(s, min_sequence=head), si)
        self.assertRpcError(grpc.StatusCode.NOT_FOUND, self.client.get_stream, gone,
                            min_sequence=head)
        for rec in self.client.read(stream=gone):
            self.assertTrue(rec.erased)
        p = self.client.projections()["streams"]
        self.assertEqual(p.position, head)
        self.assertEqual(p.rebuilds, 0)
        self.assertEqual(p.folded, 0, "the projection was refolded after the rotation")

        # and takes new events, in an old stream and a new one
        new = common.unique_stream("patient-rot-new")
        r = self.append_events([event(streams[0]), event(new)])
        self.assertEqual([p.stream_version for p in r.positions], [info[streams[0]].version + 1, 1])
        self.assertEqual(self.client.get_stream(new, min_sequence=r.tree_size).version, 1)
        rc = self.server.stop()
        self.assertEqual(rc, 0, self.server.stderr()[-2000:])
        r = clinlog("verify", data)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.server.start()  # for tearDownClass's clean stop


class TestRotateWithUnappliedRaftEntries(LogServerTestCase):
    """A node whose Raft log holds entries its store has not applied (the
    state a crash leaves when the store's unsynced writes are lost) that
    create streams, their keys wrapped under the old master key: after the
    rotation the node applies them, rewrapping those keys under the new key
    (store/masterkey.h, retired wrap keys)."""

    def test_entries_prepared_before_the_rotation_apply_after_it(self):
        data = self.server.data
        self.append_events([event(common.unique_stream("patient-raft-a"))])
        self.assertEqual(self.server.stop(), 0, self.server.stderr()[-2000:])
        behind = data + ".behind"
        shutil.copytree(data, behind, symlinks=True)
        self.server.start()
        self.client.wait_ready()
        late = common.unique_stream("patient-raft-late")
        r = self.append_events([event(late)])
        self.assertEqual(self.server.stop(), 0, self.server.stderr()[-2000:])
        # the older store with the newer Raft log: entry `late` not applied
        shutil.rmtree(os.path.join(behind, "raft"))
        shutil.copytree(os.path.join(data, "raft"), os.path.join(behind, "raft"))
        r2 = clinlog("keys", "rotate-master", behind, "--json")
        self.assertEqual(r2.returncode, 0, r2.stdout + r2.stderr)
        self.assertLess(json.loads(r2.stdout)["appliedIndex"], r.tree_size + 10)
        node = common.Server(data_dir=behind, audit=False)
        node.start()
        try:
            with common.Client(node.addr) as c:
                c.wait_ready()
                self.assertEqual(c.get_stream(late, min_sequence=r.tree_size).version, 1)
                got = c.read(stream=late)
                self.assertEqual(len(got), 1)
                self.assertFalse(got[0].erased)
                self.assertGreater(len(got[0].event), 0)
        finally:
            self.assertEqual(node.stop(), 0, node.stderr()[-2000:])
        r2 = clinlog("verify", behind, "--json")
        self.assertEqual(r2.returncode, 0, r2.stdout + r2.stderr)
        v = json.loads(r2.stdout)
        self.assertTrue(v["ok"] and v["contentChecked"], v)
        self.assertEqual(v["treeSize"], r.tree_size)
        self.server.start()  # for tearDownClass's clean stop

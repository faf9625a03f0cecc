"""Log signing key rotation through the CLI (docs/operations.md, "Rotating
the log signing key"), checked with Python's own Ed25519 and RFC 9162 code:
checkpoints the node served before the rotation verify with the old key,
those after it with the new one, the handover checkpoint with both; a
consistency proof spans the rotation; the origin stays; log.pub lists both
keys with their tree sizes; `clinlog verify` passes with it. GetCheckpoint
names the key(s) that signed the checkpoint it returns; `clinlog verify
--remote` learns the key history from the log (a chain of signatures from
the genesis key) or takes log.pub, and refuses a $log key registered by
anything but the log key in force."""
import base64
import json
import os
import subprocess

import grpc
import nacl.signing

import common
from common import T, LogServerTestCase, event, verify_consistency, verify_note


def clinlog(*args):
    return subprocess.run([common.CLINLOG] + list(args), capture_output=True, text=True,
                          timeout=T(120))


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


def fails(note, pk, origin):
    try:
        verify_note(note, pk, origin)
    except AssertionError:
        return True
    return False


class TestRotateLogKey(LogServerTestCase):

    def test_rotate_offline_checkpoints_both_eras(self):
        data = self.server.data
        pub = os.path.join(data, "log.pub")
        origin, old_pk, hist = read_pub(pub)
        self.assertEqual(hist, [])
        self.append_events([event(common.unique_stream("patient-lk")) for _ in range(5)],
                           mode="batch")
        cp1 = self.client.checkpoint(fresh=True)
        self.assertEqual(verify_note(cp1.note, old_pk, origin)[1], cp1.tree_size)

        # offline; and a clinlogd node's directory needs --single-node
        r = clinlog("keys", "rotate-log", data)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("is in use", r.stderr)
        self.assertEqual(self.server.stop(), 0, self.server.stderr()[-2000:])
        r = clinlog("keys", "rotate-log", data)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("--single-node", r.stderr)
        r = clinlog("keys", "rotate-log", data, "--single-node", "--json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual(out["origin"], origin)
        self.assertEqual(bytes.fromhex(out["oldKey"]), old_pk)
        seq = out["revokedAtSeq"]
        o2, new_pk, hist = read_pub(pub)
        self.assertEqual(o2, origin, "the origin must not change")
        self.assertEqual(bytes.fromhex(out["newKey"]), new_pk)
        self.assertEqual(hist, [(old_pk, 1, seq), (new_pk, seq, None)])

        self.server.start()
        self.client.wait_ready()
        r = self.append_events([event(common.unique_stream("patient-lk2")) for _ in range(3)])
        cp2 = self.client.checkpoint(fresh=True)
        self.assertGreater(cp2.tree_size, seq)

        # each checkpoint with the key valid at its size, Python's Ed25519
        self.assertEqual(verify_note(cp2.note, new_pk, origin)[0], origin)
        self.assertTrue(fails(cp2.note, old_pk, origin), "the old key signed after its revocation")
        again = self.client.checkpoint(tree_size=cp1.tree_size)
        self.assertEqual(again.note, cp1.note, "a pre-rotation checkpoint changed")
        self.assertTrue(fails(cp1.note, new_pk, origin))
        hand = self.client.checkpoint(tree_size=seq)
        _, n, hroot = verify_note(hand.note, old_pk, origin)
        self.assertEqual(verify_note(hand.note, new_pk, origin), (origin, n, hroot))
        self.assertEqual(n, seq)

        # GetCheckpoint names the key(s) that signed the note it returns
        self.assertEqual((again.log_public_key, list(again.log_public_keys)), (old_pk, [old_pk]))
        self.assertEqual((hand.log_public_key, list(hand.log_public_keys)),
                         (new_pk, [old_pk, new_pk]))
        self.assertEqual((cp2.log_public_key, list(cp2.log_public_keys)), (new_pk, [new_pk]))
        for c in (again, hand, cp2):
            for k in c.log_public_keys:
                self.assertEqual(verify_note(c.note, k, origin)[1], c.tree_size)

        # RFC 9162 consistency across the rotation, pre -> handover -> post
        for a, ra, b, rb in ((cp1.tree_size, cp1.root_hash, cp2.tree_size, cp2.root_hash),
                             (cp1.tree_size, cp1.root_hash, seq, hroot),
                             (seq, hroot, cp2.tree_size, cp2.root_hash)):
            p = self.client.prove_consistency(a, b)
            self.assertEqual((p.old_root, p.new_root), (ra, rb))
            self.assertTrue(verify_consistency(a, b, p.old_root, p.new_root, list(p.hashes)),
                            "consistency %d -> %d" % (a, b))

        # clinlog verify --remote: the key history learned from the log
        # (trust from genesis), or log.pub; the old key alone is not enough
        remote = ("verify", "--remote", "--server", self.server.addr, "--plaintext")
        r = clinlog(*remote, "--json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(json.loads(r.stdout)["logKey"], "log")
        r = clinlog(*remote, "--json", "--hashes-only")  # the chain needs the signatures
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(json.loads(r.stdout)["signaturesChecked"])
        r = clinlog(*remote, "--log-key", pub)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        old_pub = data + ".old-log.pub"
        with open(old_pub, "w") as f:
            f.write("origin: %s\nkey: ed25519:%s\n" % (origin, base64.b64encode(old_pk).decode()))
        r = clinlog(*remote, "--log-key", old_pub)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)

        # clinlog verify with the new log.pub; the old key alone is not enough
        self.assertEqual(self.server.stop(), 0, self.server.stderr()[-2000:])
        r = clinlog("verify", data, "--log-key", pub, "--json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(json.loads(r.stdout)["contentChecked"])
        r = clinlog("verify", data, "--log-key", old_pub)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn("log.pub lists every log key", r.stdout)
        cpf = data + ".cp1.txt"
        with open(cpf, "w") as f:
            f.write(cp1.note)
        r = clinlog("verify", data, "--log-key", pub, "--checkpoint", cpf)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.server.start()
        self.client.wait_ready()

        # a forged log key: an admin's KeyRegistered of "$log" is refused by
        # the store (it would sign audit records and checkpoints as the node);
        # verify --remote would also refuse one (not signed by the log key in
        # force), for a log written before this rule
        forged = nacl.signing.SigningKey.generate().verify_key.encode()
        ev = common.pb.event.Event(event_id=common.new_id(), stream="$log",
                                   occurred_at=common.timestamp_now())
        ev.recorded_by.principal_id = "admin"
        ev.recorded_by.role = "admin"
        ev.key_registered.principal_id = "$log"
        ev.key_registered.public_key = forged
        e = self.assertRpcError(grpc.StatusCode.PERMISSION_DENIED, self.append_events,
                                [ev.SerializeToString()])
        self.assertIn("only the log key registers a key of $log", e.details())
        r = clinlog(*remote, "--json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


class TestRotateLogKeyOnline(common.ServerTestCase):
    """A running single node (a one-member Raft cluster, the audit trail on)
    rotates online: the key staged next to the running clinlogd, the
    rotation through Raft, checkpoints and the node's own audit records
    signed by the new key from then on, a second rotation to the same key
    refused; `clinlog verify` passes with the new log.pub."""

    def test_rotate_online_running_node(self):
        data = self.server.data
        pub = os.path.join(data, "log.pub")
        origin, old_pk, _ = read_pub(pub)
        self.append_events([event(common.unique_stream("patient-on")) for _ in range(3)])
        addr = ("--server", self.server.addr, "--plaintext")
        # nothing staged: refused, naming the node
        r = clinlog("keys", "rotate-log", "--online", *addr)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("has no staged log key", r.stderr)
        self.assertIn("nothing committed", r.stderr)
        key = data + ".next-log.key"
        r = clinlog("keygen", key)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = clinlog("keys", "stage-log", data, "--new-key", key, "--json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(os.path.exists(os.path.join(data, "keys", "log.key.new")))
        r = clinlog("keys", "rotate-log", "--online", *addr, "--json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.server.stderr()[-2000:])
        out = json.loads(r.stdout)
        R = int(out["revokedAtSeq"])
        new_pk = base64.b64decode(out["newPublicKey"])
        self.assertEqual(base64.b64decode(out["oldPublicKey"]), old_pk)
        o2, cur, hist = read_pub(pub)
        self.assertEqual((o2, cur), (origin, new_pk))
        self.assertEqual(hist, [(old_pk, 1, R), (new_pk, R, None)])
        self.assertFalse(os.path.exists(os.path.join(data, "keys", "log.key.new")))
        # writes (each call's audit record is signed by the node: the new key)
        r = self.append_events([event(common.unique_stream("patient-on")) for _ in range(3)])
        cp = self.client.checkpoint(fresh=True)
        self.assertGreater(cp.tree_size, R)
        self.assertEqual(verify_note(cp.note, new_pk, origin)[1], cp.tree_size)
        self.assertTrue(fails(cp.note, old_pk, origin))
        # the same key again: registered already
        r = clinlog("keys", "stage-log", data, "--new-key", key)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)  # it is the current key
        self.assertEqual(self.server.stop(), 0, self.server.stderr()[-2000:])
        r = clinlog("verify", data, "--log-key", pub, "--json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.server.start()
        self.client.wait_ready()
        cp = self.client.checkpoint(fresh=True)
        self.assertEqual(verify_note(cp.note, new_pk, origin)[1], cp.tree_size)

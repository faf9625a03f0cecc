"""Every RPC of clinlog.v1.Log and grpc.health.v1.Health, checked by an
independent client: positions, idempotency, reads and filters, subscriptions,
checkpoint signatures and RFC 9162 proofs verified here in Python."""
import base64
import hashlib
import os
import queue
import threading
import time

import grpc

import common
from common import (T, Client, Server, LogServerTestCase, batch, event, event_id_of,
                    md, mth, leaf_hash, unique_stream, verify_consistency, verify_inclusion,
                    verify_note)

OK = grpc.StatusCode.OK


def log_pub(data_dir):
    """(origin, public key) from DIR/log.pub."""
    with open(os.path.join(data_dir, "log.pub")) as f:
        lines = dict(l.split(": ", 1) for l in f.read().splitlines() if ": " in l)
    assert lines["key"].startswith("ed25519:")
    return lines["origin"], base64.b64decode(lines["key"][len("ed25519:"):])


class TestAppend(LogServerTestCase):

    def check_positions(self, resp, events, first_seq, first_version=1):
        self.assertEqual(len(resp.positions), len(events))
        for i, (p, e) in enumerate(zip(resp.positions, events)):
            self.assertEqual(p.event_id, event_id_of(e))
            self.assertEqual(p.seq, first_seq + i)
            self.assertEqual(p.stream_version, first_version + i)

    def test_per_event_signatures(self):
        before = self.client.tree_size()
        s = unique_stream()
        evs = [event(s, text="v%d" % i) for i in range(3)]
        r = self.append_events(evs, mode="event")
        self.assertFalse(r.duplicate)
        self.check_positions(r, evs, before + 1)
        self.assertEqual(r.tree_size, before + 3)
        self.assertEqual(self.client.tree_size(), before + 3)

    def test_batch_signature(self):
        before = self.client.tree_size()
        s1, s2 = unique_stream(), unique_stream()
        evs = [event(s1), event(s2), event(s1), event(s2, kind="allergy")]
        r = self.append_events(evs, mode="batch")
        self.assertFalse(r.duplicate)
        self.assertEqual([p.seq for p in r.positions], list(range(before + 1, before + 5)))
        self.assertEqual([p.stream_version for p in r.positions], [1, 1, 2, 2])
        self.assertEqual(r.tree_size, before + 4)
        # The stored records carry the batch signature on the last record.
        recs = [self.client.get_event(event_id_of(e), include_record=True) for e in evs]
        for i, re_ in enumerate(recs):
            rec = common.pb.record.Record()
            rec.ParseFromString(re_.record)
            self.assertEqual(rec.batch_index, i)
            self.assertEqual(rec.batch_size, 4)
            self.assertEqual(rec.seq, before + 1 + i)
            self.assertEqual(rec.HasField("signature"), i == 3)

    def test_idempotent_retry(self):
        for mode in ("event", "batch"):
            s = unique_stream()
            evs = [event(s), event(s)]
            b = batch(evs, self.admin, mode)
            r1 = self.client.append(b)
            size = self.client.tree_size()
            r2 = self.client.append(b)
            self.assertFalse(r1.duplicate)
            self.assertTrue(r2.duplicate, mode)
            self.assertEqual([(p.event_id, p.seq, p.stream_version) for p in r1.positions],
                             [(p.event_id, p.seq, p.stream_version) for p in r2.positions])
            self.assertEqual(self.client.tree_size(), size, "a duplicate wrote something")
            self.assertGreaterEqual(r2.tree_size, r1.positions[-1].seq)
            # The same events signed the other way are still the same events.
            other = "batch" if mode == "event" else "event"
            r3 = self.client.append(batch(evs, self.admin, other))
            self.assertTrue(r3.duplicate)
            self.assertEqual([p.seq for p in r3.positions], [p.seq for p in r1.positions])

    def test_expectations(self):
        s = unique_stream()
        EV = common.pb.record.ExpectedVersion
        r = self.append_events([event(s)], expectations=[(s, EV.NO_STREAM, 0)])
        self.assertEqual(r.positions[0].stream_version, 1)
        r = self.append_events([event(s)], expectations=[(s, EV.EXISTS, 0)])
        r = self.append_events([event(s), event(s)], expectations=[(s, EV.EXACT, 2)])
        self.assertEqual([p.stream_version for p in r.positions], [3, 4])
        r = self.append_events([event(s)], expectations=[(s, EV.ANY, 0)])
        self.assertEqual(r.positions[0].stream_version, 5)

    def test_append_stream(self):
        before = self.client.tree_size()
        s = unique_stream()
        batches = [batch([event(s) for _ in range(n)], self.admin, m)
                   for n, m in ((2, "event"), (3, "batch"), (1, "event"))]
        summary, call = self.client.append_stream(batches)
        self.assertEqual(summary.batches, 3)
        self.assertEqual(summary.events, 6)
        self.assertEqual(summary.duplicates, 0)
        self.assertEqual(summary.first_seq, before + 1)
        self.assertEqual(summary.last_seq, before + 6)
        self.assertEqual(summary.tree_size, before + 6)
        # Replaying two of them plus a new one: duplicates are counted.
        new = batch([event(s)], self.admin)
        summary, _ = self.client.append_stream([batches[0], new, batches[2]])
        self.assertEqual((summary.batches, summary.events, summary.duplicates),
                         (3, 1, 3))
        self.assertEqual((summary.first_seq, summary.last_seq, summary.tree_size),
                         (before + 7, before + 7, before + 7))
        # Only duplicates: nothing new, first_seq 0.
        summary, _ = self.client.append_stream([batches[1]])
        self.assertEqual((summary.batches, summary.events, summary.duplicates, summary.first_seq),
                         (1, 0, 3, 0))
        # An empty stream of batches.
        summary, _ = self.client.append_stream([])
        self.assertEqual((summary.batches, summary.events), (0, 0))
        self.assertEqual(self.client.tree_size(), before + 7)

    def test_append_stream_failing_batch(self):
        before = self.client.tree_size()
        s = unique_stream()
        good1 = batch([event(s), event(s)], self.admin)
        good2 = batch([event(s)], self.admin, "batch")
        bad = batch([event(s)], self.admin)
        sig = bytearray(bad.signatures[0].signature)
        sig[5] ^= 1
        bad.signatures[0].signature = bytes(sig)
        after = batch([event(s)], self.admin)
        e = self.assertRpcError(grpc.StatusCode.PERMISSION_DENIED, self.client.append_stream,
                                [good1, good2, bad, after])
        self.assertClinlogError(e, "CL_EBADSIG")
        self.assertEqual(md(e).get("clinlog-committed-batches"), "2", md(e))
        self.assertEqual(self.client.tree_size(), before + 3)
        for b in (good1, good2):
            for ev in b.events:
                self.assertEqual(self.client.get_event(event_id_of(ev)).event, ev)
        for b in (bad, after):
            self.assertRpcError(grpc.StatusCode.NOT_FOUND, self.client.get_event,
                                event_id_of(b.events[0]))
        # A version conflict as the first batch: 0 committed.
        EV = common.pb.record.ExpectedVersion
        c = batch([event(s)], self.admin, expectations=[(s, EV.NO_STREAM, 0)])
        e = self.assertRpcError(grpc.StatusCode.FAILED_PRECONDITION, self.client.append_stream,
                                [c, after])
        self.assertEqual(md(e).get("clinlog-committed-batches"), "0", md(e))
        self.assertEqual(md(e).get("clinlog-error"), "CL_ECONFLICT", md(e))
        self.assertEqual(md(e).get("clinlog-stream"), s, md(e))
        self.assertEqual(md(e).get("clinlog-current-version"), "3", md(e))
        self.assertEqual(self.client.tree_size(), before + 3)

    def test_batch_event_limit(self):
        # CL_MAX_BATCH = 10000 events per batch.
        s = unique_stream()
        before = self.client.tree_size()
        evs = [event(s, text="e%d" % i) for i in range(10001)]
        e = self.assertRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, self.client.append,
                                batch(evs, self.admin, "batch"), timeout=T(60))
        self.assertClinlogError(e, "CL_ETOOBIG")
        self.assertEqual(self.client.tree_size(), before)
        r = self.client.append(batch(evs[:10000], self.admin, "batch"), timeout=T(60))
        self.assertEqual(len(r.positions), 10000)
        self.assertEqual(r.tree_size, before + 10000)

    def test_get_event(self):
        s = unique_stream()
        evs = [event(s), event(s, kind="condition")]
        r = self.append_events(evs)
        for e, p in zip(evs, r.positions):
            g = self.client.get_event(event_id_of(e))
            self.assertEqual((g.seq, g.stream_version, g.stream, g.event_id),
                             (p.seq, p.stream_version, s, event_id_of(e)))
            self.assertEqual(g.event, e)
            self.assertEqual(g.event_hash, hashlib.sha256(e).digest())
            self.assertFalse(g.erased)
            self.assertEqual(g.record, b"", "record returned without include_record")
            self.assertGreater(g.committed_at.seconds, 1500000000)
        self.assertEqual(self.client.get_event(event_id_of(evs[0])).event_type, 202)
        self.assertEqual(self.client.get_event(event_id_of(evs[1])).event_type, 200)
        g = self.client.get_event(event_id_of(evs[1]), include_record=True)
        rec = common.pb.record.Record()
        rec.ParseFromString(g.record)
        self.assertEqual((rec.seq, rec.stream_version, rec.event_id, rec.event_type,
                          rec.event_hash), (g.seq, 2, g.event_id, 200, g.event_hash))
        e = self.assertRpcError(grpc.StatusCode.NOT_FOUND, self.client.get_event,
                                common.new_id())
        self.assertClinlogError(e, "CL_ENOTFOUND")


class TestRead(LogServerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.stream = unique_stream("patient-read-")
        cls.other = unique_stream("encounter-read-")
        cls.events = []  # (event bytes, stream) in append order
        evs = []
        for i in range(10):
            st = cls.stream if i % 3 != 2 else cls.other
            kind = "observation" if i % 2 == 0 else "allergy"
            evs.append((event(st, kind=kind), st, 202 if kind == "observation" else 201))
        b = batch([e for e, _, _ in evs], cls.admin)
        cls.resp = cls.client.append(b)
        cls.events = evs
        cls.first = cls.resp.positions[0].seq
        cls.size = cls.resp.tree_size

    def test_whole_log_forwards(self):
        got = self.client.read()
        self.assertEqual([g.seq for g in got], list(range(1, self.size + 1)))
        got = self.client.read(**{"from": self.first})
        self.assertEqual([g.seq for g in got], list(range(self.first, self.size + 1)))
        for g, (e, st, t) in zip(got, self.events):
            self.assertEqual((g.event, g.stream, g.event_type, g.event_id),
                             (e, st, t, event_id_of(e)))
            self.assertEqual(g.event_hash, hashlib.sha256(e).digest())
        self.assertEqual(got[0].stream_version, 1)
        got = self.client.read(max_count=3, **{"from": self.first + 2})
        self.assertEqual([g.seq for g in got], [self.first + 2, self.first + 3, self.first + 4])
        self.assertEqual(self.client.read(**{"from": self.size + 1}), [])
        # The genesis events are readable (seq 1 is LogCreated in "$log").
        g = self.client.read(max_count=1)[0]
        self.assertEqual((g.seq, g.stream, g.event_type), (1, "$log", 900))

    def test_stream_forwards_backwards(self):
        mine = [e for e, st, _ in self.events if st == self.stream]
        n = len(mine)
        got = self.client.read(stream=self.stream)
        self.assertEqual([g.event for g in got], mine)
        self.assertEqual([g.stream_version for g in got], list(range(1, n + 1)))
        self.assertTrue(all(g.stream == self.stream for g in got))
        got = self.client.read(stream=self.stream, **{"from": 3})
        self.assertEqual([g.stream_version for g in got], list(range(3, n + 1)))
        got = self.client.read(stream=self.stream, direction=common.pb.api.BACKWARDS)
        self.assertEqual([g.stream_version for g in got], list(range(n, 0, -1)))
        self.assertEqual([g.event for g in got], mine[::-1])
        got = self.client.read(stream=self.stream, direction=common.pb.api.BACKWARDS,
                               **{"from": 4})
        self.assertEqual([g.stream_version for g in got], [4, 3, 2, 1])
        got = self.client.read(stream=self.stream, direction=common.pb.api.BACKWARDS,
                               max_count=2)
        self.assertEqual([g.stream_version for g in got], [n, n - 1])
        got = self.client.read(stream=self.stream, max_count=2, **{"from": 2})
        self.assertEqual([g.stream_version for g in got], [2, 3])
        # Seqs of the stream are increasing and match the whole-log read.
        whole = {g.seq: g for g in self.client.read(**{"from": self.first})}
        for g in self.client.read(stream=self.stream):
            self.assertEqual(whole[g.seq].event, g.event)

    def test_filters(self):
        F = common.pb.api.Filter
        got = self.client.read(filter=F(stream_prefixes=[self.stream]), **{"from": 1})
        self.assertEqual([g.event for g in got],
                         [e for e, st, _ in self.events if st == self.stream])
        got = self.client.read(filter=F(event_types=[201]))
        self.assertEqual([g.event for g in got], [e for e, _, t in self.events if t == 201])
        got = self.client.read(filter=F(stream_prefixes=[self.stream], event_types=[202]))
        self.assertEqual([g.event for g in got],
                         [e for e, st, t in self.events if st == self.stream and t == 202])
        got = self.client.read(filter=F(stream_prefixes=["patient-read-", "encounter-read-"]))
        self.assertEqual([g.event for g in got], [e for e, _, _ in self.events])
        got = self.client.read(filter=F(stream_prefixes=["$principal-"]))
        self.assertEqual([(g.seq, g.stream) for g in got], [(2, "$principal-admin")])
        got = self.client.read(filter=F(event_types=[900, 901]))
        self.assertEqual([g.seq for g in got], [1, 2])
        self.assertEqual(self.client.read(filter=F(stream_prefixes=["nomatch-"])), [])
        got = self.client.read(filter=F(event_types=[202]), max_count=2)
        self.assertEqual([g.event for g in got],
                         [e for e, _, t in self.events if t == 202][:2])


class TestSubscribe(LogServerTestCase):

    def drain(self, call, q, stop):
        try:
            for m in call:
                q.put(m)
        except grpc.RpcError as e:
            q.put(e)
        q.put(None)

    def next_msg(self, q, timeout=None):
        m = q.get(timeout=timeout or T(10))
        if isinstance(m, grpc.RpcError) and m.code() != grpc.StatusCode.CANCELLED:
            raise m
        return m

    def test_catch_up_then_live(self):
        s = unique_stream()
        r1 = self.append_events([event(s) for _ in range(5)])
        size = r1.tree_size
        call = self.client.subscribe(from_seq=3)
        q = queue.Queue()
        th = threading.Thread(target=self.drain, args=(call, q, None), daemon=True)
        th.start()
        try:
            seqs = []
            while True:
                m = self.next_msg(q)
                kind = m.WhichOneof("kind")
                if kind == "event":
                    seqs.append(m.event.seq)
                elif kind == "caught_up":
                    self.assertEqual(m.caught_up.seq, size)
                    self.assertGreaterEqual(m.caught_up.tree_size, size)
                    break
            self.assertEqual(seqs, list(range(3, size + 1)))
            # Live.
            evs = [event(s), event(s)]
            r2 = self.append_events(evs)
            live = []
            while len(live) < 2:
                m = self.next_msg(q)
                kind = m.WhichOneof("kind")
                self.assertNotEqual(kind, "caught_up", "caught_up sent twice")
                if kind == "event":
                    live.append(m.event)
            self.assertEqual([g.seq for g in live], [p.seq for p in r2.positions])
            self.assertEqual([g.event for g in live], evs)
            self.assertEqual([g.stream_version for g in live], [6, 7])
        finally:
            call.cancel()
            th.join(T(10))

    def test_from_end_and_include_record(self):
        call = self.client.subscribe(from_end=True, include_record=True)
        q = queue.Queue()
        th = threading.Thread(target=self.drain, args=(call, q, None), daemon=True)
        th.start()
        try:
            m = self.next_msg(q)
            self.assertEqual(m.WhichOneof("kind"), "caught_up", m)
            head = m.caught_up.seq
            s = unique_stream()
            e = event(s)
            r = self.append_events([e])
            while True:
                m = self.next_msg(q)
                if m.WhichOneof("kind") == "event":
                    break
            self.assertEqual(m.event.seq, r.positions[0].seq)
            self.assertGreater(m.event.seq, head)
            self.assertEqual(m.event.event, e)
            rec = common.pb.record.Record()
            rec.ParseFromString(m.event.record)
            self.assertEqual((rec.seq, rec.event_hash), (m.event.seq, hashlib.sha256(e).digest()))
        finally:
            call.cancel()
            th.join(T(10))

    def test_positions_while_idle_filtered(self):
        F = common.pb.api.Filter
        s = unique_stream("patient-")
        self.append_events([event(s)])
        size = self.client.tree_size()
        call = self.client.subscribe(from_seq=1, filter=F(stream_prefixes=["nomatch-"]),
                                     position_interval_ms=100)
        q = queue.Queue()
        th = threading.Thread(target=self.drain, args=(call, q, None), daemon=True)
        th.start()
        try:
            got_caught_up = None
            positions = []
            deadline = time.monotonic() + T(5)
            while len(positions) < 3 and time.monotonic() < deadline:
                m = self.next_msg(q)
                kind = m.WhichOneof("kind")
                self.assertNotEqual(kind, "event", "a filtered-out event was delivered")
                if kind == "caught_up":
                    self.assertIsNone(got_caught_up, "caught_up sent twice")
                    got_caught_up = m.caught_up
                elif kind == "position" and got_caught_up is not None:
                    positions.append(m.position)
            self.assertIsNotNone(got_caught_up)
            self.assertEqual(got_caught_up.seq, size)
            self.assertGreaterEqual(len(positions), 3, "no Position messages while idle")
            # Filtered-out appends advance the position.
            r = self.append_events([event(s), event(s)])
            deadline = time.monotonic() + T(5)
            last = None
            while time.monotonic() < deadline:
                m = self.next_msg(q)
                self.assertNotEqual(m.WhichOneof("kind"), "event")
                if m.WhichOneof("kind") == "position":
                    last = m.position
                    if last.seq >= r.tree_size:
                        break
            self.assertIsNotNone(last)
            self.assertEqual(last.seq, r.tree_size)
        finally:
            call.cancel()
            th.join(T(10))

    def test_from_seq_beyond_head(self):
        # A Position promises that every event up to its seq was delivered or
        # filtered out, so it can never be beyond the log's tree size.
        size = self.client.tree_size()
        call = self.client.subscribe(from_seq=size + 100, position_interval_ms=100,
                                     timeout=T(5))
        try:
            m = next(call)
        except grpc.RpcError as e:
            self.assertIn(e.code(), (grpc.StatusCode.INVALID_ARGUMENT,
                                     grpc.StatusCode.OUT_OF_RANGE), e.details())
            return
        finally:
            call.cancel()
        p = getattr(m, m.WhichOneof("kind"))
        self.assertLessEqual(p.seq, p.tree_size,
                             "Subscribe(from_seq=%d) at tree size %d answered %s %r"
                             % (size + 100, size, m.WhichOneof("kind"), p))

    def test_filtered_live(self):
        F = common.pb.api.Filter
        pre = unique_stream("patient-flt-")
        call = self.client.subscribe(from_end=True,
                                     filter=F(stream_prefixes=[pre], event_types=[201]))
        q = queue.Queue()
        th = threading.Thread(target=self.drain, args=(call, q, None), daemon=True)
        th.start()
        try:
            self.assertEqual(self.next_msg(q).WhichOneof("kind"), "caught_up")
            want = event(pre + "-a", kind="allergy")
            self.append_events([event(pre + "-a"), event(unique_stream(), kind="allergy"),
                                want])
            while True:
                m = self.next_msg(q)
                if m.WhichOneof("kind") == "event":
                    break
            self.assertEqual(m.event.event, want)
        finally:
            call.cancel()
            th.join(T(10))


class TestProofs(LogServerTestCase):
    """Checkpoints and proofs, verified against a Merkle tree recomputed here
    from the records the server returns."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.origin, cls.pk = log_pub(cls.server.data)
        cls.sizes = [cls.client.tree_size()]  # fresh checkpoints at these sizes
        for n in (1, 2, 3, 5, 8, 1, 13):
            s = unique_stream()
            cls.client.append(batch([event(s) for _ in range(n)], cls.admin, "batch"))
            cls.sizes.append(cls.client.tree_size())
        # The Merkle leaves, from a whole-log Read with records.
        records = cls.client.read(include_record=True, timeout=T(30))
        cls.leaves = [leaf_hash(g.record) for g in records]
        cls.head = cls.sizes[-1]
        assert len(cls.leaves) == cls.head, (len(cls.leaves), cls.head)

    def test_read_records(self):
        got = self.client.read(include_record=True, **{"from": 3})
        for g in got[:10]:
            rec = common.pb.record.Record()
            rec.ParseFromString(g.record)
            self.assertEqual((rec.seq, rec.event_id, rec.event_hash, rec.stream_version),
                             (g.seq, g.event_id, g.event_hash, g.stream_version))
            self.assertEqual(self.client.get_event(g.event_id, include_record=True).record,
                             g.record)
        self.assertTrue(all(g.record == b"" for g in self.client.read(max_count=5)),
                        "records returned without include_record")

    def test_checkpoint(self):
        cp = self.client.checkpoint()
        self.assertEqual(cp.log_public_key, self.pk)
        self.assertEqual(cp.origin, self.origin)
        o, size, root = verify_note(cp.note, cp.log_public_key, self.origin)
        self.assertEqual((size, root), (cp.tree_size, cp.root_hash))
        self.assertEqual(cp.tree_size, self.head)
        self.assertEqual(cp.root_hash, mth(self.leaves[:cp.tree_size]))
        # The genesis LogCreated carries the same key and origin.
        g = self.client.read(max_count=1)[0]
        ev = common.pb.event.Event()
        ev.ParseFromString(g.event)
        self.assertEqual(ev.log_created.log_public_key, self.pk)
        self.assertEqual(ev.log_created.origin, self.origin)
        # Older checkpoints by size, each verifying and matching our tree.
        for n in self.sizes:
            cp = self.client.checkpoint(tree_size=n)
            _, size, root = verify_note(cp.note, self.pk, self.origin)
            self.assertEqual((size, cp.tree_size), (n, n))
            self.assertEqual(root, mth(self.leaves[:n]), "root at size %d" % n)
            self.assertEqual(cp.root_hash, root)
        # A tampered note must not verify (sanity check of the verifier).
        cp = self.client.checkpoint()
        bad = cp.note.replace("\n%d\n" % cp.tree_size, "\n%d\n" % (cp.tree_size + 1), 1)
        with self.assertRaises(Exception):
            verify_note(bad, self.pk, self.origin)
        e = self.assertRpcError(grpc.StatusCode.NOT_FOUND, self.client.checkpoint,
                                tree_size=self.head + 1000)
        self.assertClinlogError(e, "CL_ENOTFOUND")

    def test_fresh_checkpoint(self):
        s = unique_stream()
        r = self.append_events([event(s)])
        cp = self.client.checkpoint(fresh=True)
        self.assertEqual(cp.tree_size, r.tree_size)
        _, size, root = verify_note(cp.note, self.pk, self.origin)
        self.assertEqual(size, r.tree_size)
        g = self.client.get_event(r.positions[0].event_id, include_record=True)
        self.assertEqual(root, mth(self.leaves + [leaf_hash(g.record)]))
        type(self).leaves = self.leaves + [leaf_hash(g.record)]
        type(self).head = r.tree_size
        type(self).sizes = self.sizes + [r.tree_size]

    def test_inclusion(self):
        checked = 0
        for size in self.sizes:
            for seq in sorted({1, 2, size // 2 or 1, size - 1 or 1, size}):
                p = self.client.prove_inclusion(seq, size)
                self.assertEqual((p.seq, p.leaf_index, p.tree_size), (seq, seq - 1, size))
                self.assertEqual(p.leaf_hash, leaf_hash(p.record))
                self.assertEqual(p.leaf_hash, self.leaves[seq - 1])
                self.assertEqual(p.root_hash, mth(self.leaves[:size]))
                self.assertTrue(verify_inclusion(p.leaf_index, p.tree_size, p.leaf_hash,
                                                 list(p.hashes), p.root_hash),
                                "inclusion proof of %d in %d does not verify" % (seq, size))
                if p.checkpoint:
                    _, n, root = verify_note(p.checkpoint, self.pk, self.origin)
                    self.assertEqual((n, root), (size, p.root_hash))
                rec = common.pb.record.Record()
                rec.ParseFromString(p.record)
                self.assertEqual(rec.seq, seq)
                # A wrong path must not verify (verifier sanity).
                if p.hashes:
                    h = list(p.hashes)
                    h[0] = bytes(32)
                    self.assertFalse(verify_inclusion(p.leaf_index, p.tree_size, p.leaf_hash,
                                                      h, p.root_hash))
                checked += 1
        self.assertGreater(checked, 20)
        # tree_size 0: the latest checkpoint's size (or the head).
        p = self.client.prove_inclusion(3)
        self.assertGreaterEqual(p.tree_size, 3)
        self.assertTrue(verify_inclusion(2, p.tree_size, p.leaf_hash, list(p.hashes),
                                         p.root_hash))
        self.assertEqual(p.root_hash, mth(self.leaves[:p.tree_size]))

    def test_consistency(self):
        sizes = self.sizes
        pairs = [(a, b) for a in [1] + sizes for b in sizes if a <= b]
        pairs += [(a, self.head) for a in range(1, self.head + 1)]
        for a, b in pairs:
            p = self.client.prove_consistency(a, b)
            self.assertEqual((p.old_size, p.new_size), (a, b))
            self.assertEqual(p.old_root, mth(self.leaves[:a]), "old root %d" % a)
            self.assertEqual(p.new_root, mth(self.leaves[:b]), "new root %d" % b)
            self.assertTrue(verify_consistency(a, b, p.old_root, p.new_root, list(p.hashes)),
                            "consistency %d -> %d does not verify (%d hashes)"
                            % (a, b, len(p.hashes)))
            if p.checkpoint:
                _, n, root = verify_note(p.checkpoint, self.pk, self.origin)
                self.assertEqual((n, root), (b, p.new_root))
            if a < b and p.hashes:
                h = list(p.hashes)
                h[-1] = bytes(32)
                self.assertFalse(verify_consistency(a, b, p.old_root, p.new_root, h))
        # new_size 0: the latest checkpoint's size.
        cp = self.client.checkpoint()
        p = self.client.prove_consistency(2)
        self.assertEqual(p.new_size, cp.tree_size)
        self.assertTrue(verify_consistency(2, p.new_size, p.old_root, p.new_root,
                                           list(p.hashes)))

    def test_proof_errors(self):
        # Out of range requests must be errors (not empty proofs).
        for fn, args in ((self.client.prove_inclusion, (self.head + 5, 0)),
                         (self.client.prove_inclusion, (5, 3)),
                         (self.client.prove_inclusion, (0, 3)),
                         (self.client.prove_consistency, (5, 3)),
                         (self.client.prove_consistency, (1, self.head + 100))):
            try:
                r = fn(*args)
            except grpc.RpcError as e:
                self.assertIn(e.code(), (grpc.StatusCode.INVALID_ARGUMENT,
                                         grpc.StatusCode.NOT_FOUND,
                                         grpc.StatusCode.OUT_OF_RANGE),
                              "%s%r: %s %s" % (fn.__name__, args, e.code(), e.details()))
                self.assertIn("clinlog-error", md(e), "%s%r" % (fn.__name__, args))
            else:
                self.fail("%s%r succeeded: %r" % (fn.__name__, args, r))


class TestHealth(LogServerTestCase):

    def test_check(self):
        S = common.pb.health.HealthCheckResponse
        self.assertEqual(self.client.health(""), S.SERVING)
        self.assertEqual(self.client.health("clinlog.v1.Log"), S.SERVING)
        self.assertRpcError(grpc.StatusCode.NOT_FOUND, self.client.health, "no.such.Service")

    def test_watch(self):
        S = common.pb.health.HealthCheckResponse
        call = self.client.health_watch("clinlog.v1.Log", timeout=T(5))
        self.assertEqual(next(call).status, S.SERVING)
        call.cancel()
        call = self.client.health_watch("no.such.Service", timeout=T(5))
        self.assertEqual(next(call).status, S.SERVICE_UNKNOWN)
        call.cancel()


class TestShutdown(LogServerTestCase):
    """SIGTERM: Watch sees NOT_SERVING, streams end with UNAVAILABLE,
    in-flight appends finish, new calls fail with UNAVAILABLE, exit 0."""

    def test_sigterm(self):
        S = common.pb.health.HealthCheckResponse
        watches = [self.client.health_watch(svc, timeout=T(30)) for svc in ("", "clinlog.v1.Log")]
        for w in watches:
            self.assertEqual(next(w).status, S.SERVING)
        sub = self.client.subscribe(from_seq=1)
        first = next(sub)
        self.assertIsNotNone(first)
        # Writers appending while the signal arrives.
        acked, errors = [], []
        stop = threading.Event()

        def writer():
            c = Client(self.server.addr)
            try:
                while not stop.is_set():
                    e = event(unique_stream())
                    try:
                        r = c.append(batch([e], self.admin), timeout=T(10))
                        acked.append((e, r.positions[0].seq))
                    except grpc.RpcError as x:
                        errors.append((x.code(), x.details(), md(x)))
                        if x.code() == grpc.StatusCode.UNAVAILABLE:
                            return
            finally:
                c.close()
        ths = [threading.Thread(target=writer, daemon=True) for _ in range(3)]
        for t in ths:
            t.start()
        time.sleep(0.3)
        self.server.terminate()
        statuses = []
        for w in watches:
            got = []
            try:
                for m in w:
                    got.append(m.status)
            except grpc.RpcError as e:
                statuses.append(e.code())
            else:
                statuses.append(grpc.StatusCode.OK)
            self.assertIn(S.NOT_SERVING, got, "Watch did not report NOT_SERVING: %r" % got)
        sub_code = None
        try:
            for _ in sub:
                pass
        except grpc.RpcError as e:
            sub_code = (e.code(), md(e))
        stop.set()
        for t in ths:
            t.join(T(20))
        rc = self.server.proc.wait(T(30))
        self.assertEqual(rc, 0, "exit code after SIGTERM; stderr:\n" + self.server.stderr()[-2000:])
        self.assertNoSanitizerReport(self.server)
        self.assertIsNotNone(sub_code, "Subscribe ended without an error status")
        self.assertEqual(sub_code[0], grpc.StatusCode.UNAVAILABLE, sub_code)
        for st in statuses:
            self.assertIn(st, (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.OK))
        bad = [x for x in errors if x[0] != grpc.StatusCode.UNAVAILABLE]
        self.assertEqual(bad, [], "appends during shutdown failed other than UNAVAILABLE")
        self.assertGreater(len(acked), 0)
        # A new call after the stop: UNAVAILABLE.
        self.assertRpcError(grpc.StatusCode.UNAVAILABLE, self.client.append,
                            batch([event(unique_stream())], self.admin), timeout=T(3))
        # Every acknowledged append is durable.
        srv = Server(data_dir=self.server.data, audit=self.audit)
        srv.start()
        try:
            with Client(srv.addr) as c:
                for e, seq in acked:
                    self.assertEqual(c.get_event(event_id_of(e)).seq, seq)
        finally:
            type(self).server = srv  # tearDownClass stops it and checks the exit


class TestShutdownUnavailable(LogServerTestCase):
    """A call that arrives while the server is draining gets UNAVAILABLE."""

    def test_call_during_shutdown(self):
        # Keep a Subscribe open so that the server has something to drain,
        # then issue calls on the existing connection right after SIGTERM.
        sub = self.client.subscribe(from_end=True)
        next(sub)
        self.server.terminate()
        codes = set()
        deadline = time.monotonic() + T(5)
        while time.monotonic() < deadline and self.server.proc.poll() is None:
            try:
                self.client.get_event(common.new_id(), timeout=T(2))
                codes.add(grpc.StatusCode.NOT_FOUND)
            except grpc.RpcError as e:
                codes.add(e.code())
                if e.code() == grpc.StatusCode.UNAVAILABLE:
                    break
        self.assertIn(grpc.StatusCode.UNAVAILABLE, codes)
        self.assertTrue(codes <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND}, codes)
        try:
            for _ in sub:
                pass
            self.fail("Subscribe ended with OK during shutdown")
        except grpc.RpcError as e:
            self.assertEqual(e.code(), grpc.StatusCode.UNAVAILABLE, e.details())
        self.assertEqual(self.server.proc.wait(T(30)), 0)

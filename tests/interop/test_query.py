"""clinlog.v1.Streams and clinlog.v1.Projections (the `streams` projection a
node runs over its log), checked by an independent client: counts by event
type against what this client appended, read-your-writes with min_sequence,
paging, the index by type, erasure removing a stream from every answer,
rebuild giving the same answers, a SIGKILL mid-fold, and no stream name in
plaintext anywhere in the data directory."""
import os
import time
import uuid

import grpc

import common
from common import T, Server, LogServerTestCase, batch, event, new_id

OBSERVATION, ALLERGY = 202, 201


def erase_event(stream):
    ev = common.pb.event.Event(event_id=new_id(), stream="$erasures",
                               occurred_at=common.timestamp_now(), source_system="INTEROP")
    ev.recorded_by.principal_id = "admin"
    ev.recorded_by.role = "admin"
    ev.stream_erased.stream = stream
    ev.stream_erased.reason = "interop test"
    return ev.SerializeToString()


def files_containing(root, needle):
    hits = []
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            try:
                with open(p, "rb") as fh:
                    if needle in fh.read():
                        hits.append(p)
            except OSError:
                pass
    return hits


class TestStreams(LogServerTestCase):

    def test_counts_paging_types_erasure_and_rebuild(self):
        tag = "QRY" + uuid.uuid4().hex[:8].upper()
        streams = ["patient-%s-%d" % (tag, i) for i in range(5)]
        want = {}
        last = None
        for round_ in range(4):
            evs = []
            for i, s in enumerate(streams):
                kinds = ["observation"] * (i + 1) + ["allergy"] * (round_ % 2)
                for k in kinds:
                    evs.append(event(s, kind=k))
                    c = want.setdefault(s, {})
                    code = OBSERVATION if k == "observation" else ALLERGY
                    c[code] = c.get(code, 0) + 1
            last = self.append_events(evs, mode="batch")
        head = last.tree_size

        # one stream, read right after the write that made it
        for s in streams:
            si = self.client.get_stream(s, min_sequence=head)
            self.assertEqual(si.stream, s)
            self.assertEqual(si.category, "patient")
            self.assertEqual(si.version, sum(want[s].values()))
            got = {c.event_type: c.count for c in si.counts}
            self.assertEqual(got, want[s])
            self.assertEqual([c.event_type for c in si.counts], sorted(got))
            names = {c.event_type: c.name for c in si.counts}
            self.assertEqual(names[OBSERVATION], "ObservationRecorded")
            self.assertLessEqual(si.first_seq, si.last_seq)
            self.assertLessEqual(si.last_seq, head)
            self.assertGreater(si.last_committed_at.seconds, 0)
        self.assertRpcError(grpc.StatusCode.NOT_FOUND, self.client.get_stream,
                            "patient-%s-none" % tag, min_sequence=head)

        # the category, two at a time: every stream once
        seen, token = [], b""
        while True:
            page = self.client.list_streams("patient", page_size=2, page_token=token)
            self.assertLessEqual(len(page.streams), 2)
            seen += [x.stream for x in page.streams]
            if not page.next_page_token:
                break
            token = page.next_page_token
        mine = sorted(x for x in seen if tag in x)
        self.assertEqual(mine, sorted(streams))
        self.assertEqual(len(seen), len(set(seen)), "a stream listed twice")
        self.assertRpcError(grpc.StatusCode.INVALID_ARGUMENT, self.client.list_streams, "")

        # events by type: ascending seqs, and every allergy this test wrote
        r = self.client.events_by_type(ALLERGY, page_size=10000, min_sequence=head)
        self.assertEqual(list(r.seqs), sorted(r.seqs))
        self.assertGreaterEqual(len(r.seqs), sum(c.get(ALLERGY, 0) for c in want.values()))
        first = self.client.events_by_type(OBSERVATION, page_size=3)
        self.assertEqual(len(first.seqs), 3)
        more = self.client.events_by_type(OBSERVATION, from_seq=first.next_from_seq, page_size=3)
        self.assertGreater(more.seqs[0], first.seqs[-1])
        self.assertRpcError(grpc.StatusCode.INVALID_ARGUMENT, self.client.events_by_type, 7777)

        # erasure: the stream leaves every answer
        gone = streams[2]
        r = self.append_events([erase_event(gone)])
        head = r.tree_size
        self.assertRpcError(grpc.StatusCode.NOT_FOUND, self.client.get_stream, gone,
                            min_sequence=head)
        listed = [x.stream for x in self.client.list_streams("patient", page_size=1000).streams]
        self.assertNotIn(gone, listed)
        self.assertIn(streams[1], listed)
        allergies = set(self.client.events_by_type(ALLERGY, page_size=10000).seqs)
        gone_seqs = set()
        for rec in self.client.read(stream=gone):
            self.assertTrue(rec.erased)
            gone_seqs.add(rec.seq)
        self.assertFalse(allergies & gone_seqs, "the erased stream's events are still indexed")

        # the projection reports itself; a rebuild answers the same
        before = {s: self.client.get_stream(s, min_sequence=head) for s in streams if s != gone}
        p = self.client.projections()["streams"]
        self.assertEqual(p.state, "live")
        self.assertEqual(p.lag, 0)
        self.assertEqual(p.position, head)
        st = self.client.rebuild("streams")
        self.assertEqual(st.name, "streams")
        self.assertEqual(st.rebuilds, 1)
        for s, si in before.items():
            self.assertEqual(self.client.get_stream(s, min_sequence=head), si)
        self.assertRpcError(grpc.StatusCode.NOT_FOUND, self.client.get_stream, gone)
        self.assertRpcError(grpc.StatusCode.NOT_FOUND, self.client.rebuild, "nosuch")

    def test_read_your_writes_times_out_at_the_deadline(self):
        head = self.client.tree_size()
        t0 = time.monotonic()
        e = self.assertRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, self.client.get_stream,
                                "patient-x", min_sequence=head + 10**6, timeout=1.0)
        self.assertLess(time.monotonic() - t0, 5 * common.SCALE)
        # the server's own answer ("folded N of M"), or the client's deadline
        self.assertTrue("folded" in (e.details() or "") or "Deadline" in (e.details() or ""),
                        e.details())


class TestStreamsAfterKill(LogServerTestCase):
    """A node killed while folding resumes its projection from a position
    its state matches, and no stream name is in plaintext on disk."""
    expect_clean_exit = False

    def test_sigkill_while_folding_then_resume(self):
        tag = "KILL" + uuid.uuid4().hex[:8].upper()
        streams = ["patient-%s-%d" % (tag, i) for i in range(8)]
        for round_ in range(30):
            self.append_events([event(s) for s in streams for _ in range(10)], mode="batch")
        head = self.client.tree_size()
        self.server.kill()  # SIGKILL, folding or just done
        self.server.start()
        self.client.close()
        self.client = type(self).client = common.Client(self.server.addr)
        for s in streams:
            si = self.client.get_stream(s, min_sequence=head, timeout=T(60))
            self.assertEqual(si.version, 300)
            self.assertEqual(si.counts[0].count, 300)
        self.server.stop()
        hits = files_containing(self.server.data, tag.encode())
        self.assertEqual(hits, [], "a stream name in plaintext on disk: %r" % hits)


class TestWithoutProjections(LogServerTestCase):
    """--run-projections none: a node that stores and replicates only. It
    takes appends and serves the log; it lists no view projection (only
    `auth`, which authentication needs on every node), and its Streams reads
    say it does not run the projection."""
    server_args = ("--run-projections", "none")

    def test_streams_reads_are_unavailable(self):
        tag = "NOPROJ" + uuid.uuid4().hex[:8].upper()
        r = self.append_events([event("patient-%s" % tag)], mode="batch")
        self.assertGreater(r.tree_size, 0)
        self.assertEqual(sorted(self.client.projections()), ["auth"])
        e = self.assertRpcError(grpc.StatusCode.UNAVAILABLE, self.client.get_stream,
                                "patient-%s" % tag)
        self.assertIn("does not run the streams projection", e.details())
        self.assertRpcError(grpc.StatusCode.NOT_FOUND, self.client.rebuild, "streams")

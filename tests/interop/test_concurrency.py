"""Concurrency: exactly-once, in-order subscription across cuts while four
writers append; cancelled streams free their server state."""
import random
import threading
import time

import grpc

import common
from common import T, Client, LogServerTestCase, batch, event, md, unique_stream

SC = grpc.StatusCode


class TestSubscribeExactlyOnce(LogServerTestCase):
    WRITERS = 4
    EVENTS = 2000

    def test_resumed_subscription_under_writers(self):
        per_writer = self.EVENTS // self.WRITERS
        acked = {}          # seq -> event id
        ack_lock = threading.Lock()
        writer_errors = []

        def writer(w):
            rnd = random.Random(w)
            c = Client(self.server.addr)
            try:
                s = unique_stream("patient-w%d-" % w)
                done = 0
                while done < per_writer:
                    n = min(per_writer - done, rnd.randint(1, 8))
                    evs = [event(s if rnd.random() < 0.5 else unique_stream()) for _ in range(n)]
                    b = batch(evs, self.admin, rnd.choice(("event", "batch")))
                    r = c.append(b, timeout=T(30))
                    with ack_lock:
                        for p in r.positions:
                            acked[p.seq] = p.event_id
                    done += n
            except Exception as e:  # reported by the main thread
                writer_errors.append(repr(e))
            finally:
                c.close()

        got = []              # seqs in delivery order
        ids = {}
        cuts = [0]
        caught_ups = []
        sub_errors = []
        final_size = [None]

        def subscriber():
            rnd = random.Random(99)
            nxt = 1
            c = Client(self.server.addr)
            try:
                while True:
                    call = c.subscribe(from_seq=nxt, include_record=False, timeout=T(120))
                    budget = rnd.randint(150, 450)
                    n_caught = 0
                    try:
                        for m in call:
                            k = m.WhichOneof("kind")
                            if k == "event":
                                seq = m.event.seq
                                got.append(seq)
                                ids[seq] = m.event.event_id
                                nxt = seq + 1
                                budget -= 1
                            elif k == "caught_up":
                                n_caught += 1
                            if final_size[0] is not None and nxt > final_size[0]:
                                call.cancel()
                                break
                            if budget <= 0 and cuts[0] < 8:
                                cuts[0] += 1
                                call.cancel()
                                break
                    except grpc.RpcError as e:
                        if e.code() != SC.CANCELLED:
                            raise
                    caught_ups.append(n_caught)
                    if final_size[0] is not None and nxt > final_size[0]:
                        return
            except Exception as e:
                sub_errors.append(repr(e))
            finally:
                c.close()

        sub = threading.Thread(target=subscriber, daemon=True)
        sub.start()
        ws = [threading.Thread(target=writer, args=(w,), daemon=True)
              for w in range(self.WRITERS)]
        t0 = time.monotonic()
        for w in ws:
            w.start()
        for w in ws:
            w.join(T(120))
        self.assertEqual(writer_errors, [])
        # One more event wakes an idle subscription so that it notices the end.
        self.append_events([event(unique_stream())])
        final_size[0] = self.client.tree_size()
        sub.join(T(60))
        self.assertFalse(sub.is_alive(), "subscriber did not reach seq %d (got %d events)"
                         % (final_size[0], len(got)))
        self.assertEqual(sub_errors, [])
        n = final_size[0]
        self.assertGreaterEqual(n, self.EVENTS + 2)
        self.assertEqual(len(got), len(set(got)), "an event was delivered twice")
        self.assertEqual(got, list(range(1, n + 1)), "not every seq exactly once in order")
        for seq, eid in acked.items():
            self.assertEqual(ids[seq], eid, "seq %d: delivered another event than acked" % seq)
        self.assertGreaterEqual(cuts[0], 3, "the subscription was cut only %d times" % cuts[0])
        self.assertTrue(all(c <= 1 for c in caught_ups), caught_ups)
        print("\n  [exactly-once: %d events, %d cuts, %.1fs]" % (n, cuts[0],
                                                                  time.monotonic() - t0),
              end=" ", flush=True)


class TestCancelledStreams(LogServerTestCase):
    ROUNDS = 200

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Enough events that a whole-log Read is still streaming when cancelled.
        s = unique_stream()
        for _ in range(5):
            cls.client.append(batch([event(s, text="z" * 2000) for _ in range(100)], cls.admin,
                                    "batch"))

    def churn(self, n):
        """Opens n Subscribe and n Read streams in waves and cancels them."""
        wave = 50
        for start in range(0, n, wave):
            calls = []
            for i in range(min(wave, n - start)):
                calls.append(self.client.subscribe(from_seq=1 if i % 2 else 0,
                                                   from_end=(i % 2 == 0),
                                                   position_interval_ms=50))
                calls.append(self.client.read_call(common.pb.api.ReadRequest()))
            for c in calls:
                next(c)  # the stream is open server-side
            for c in calls:
                c.cancel()

    def settle(self, base_threads, timeout):
        deadline = time.monotonic() + timeout
        while True:
            rss, threads = self.server.proc_status()
            if threads <= base_threads + 2 or time.monotonic() > deadline:
                return rss, threads
            time.sleep(0.2)

    def test_cancelled_streams_are_freed(self):
        self.churn(100)  # warm up allocator and thread pools
        time.sleep(0.5)
        rss0, threads0 = self.server.proc_status()
        self.churn(self.ROUNDS)
        rss1, threads1 = self.settle(threads0, T(10))
        self.churn(self.ROUNDS)
        rss2, threads2 = self.settle(threads0, T(10))
        # Still works.
        r = self.append_events([event(unique_stream())])
        self.assertEqual(len(r.positions), 1)
        got = self.client.read(**{"from": r.tree_size})
        self.assertEqual([g.seq for g in got], [r.tree_size])
        msg = ("VmRSS %d -> %d -> %d kB, threads %d -> %d -> %d"
               % (rss0, rss1, rss2, threads0, threads1, threads2))
        print("\n  [%s]" % msg, end=" ", flush=True)
        self.assertLessEqual(threads2, threads0 + 2, msg)
        slack = 64 * 1024
        # Under ASan, freed memory waits in its quarantine (256 MB by default)
        # before reuse: the first round may grow the RSS by that much without a
        # leak. The second round must not keep growing like the first.
        first_slack = slack + (256 * 1024 if common.SCALE > 1 else 0)
        self.assertLessEqual(rss1, rss0 + first_slack, msg)
        self.assertLessEqual(rss2, rss1 + slack * (3 if common.SCALE > 1 else 1) // 2, msg)


class TestConcurrentAppends(LogServerTestCase):
    THREADS = 8

    def run_parallel(self, fn, n=None):
        """Runs fn(i) in n threads released together; returns the results
        (a result or the grpc.RpcError raised)."""
        n = n or self.THREADS
        barrier = threading.Barrier(n)
        out = [None] * n
        clients = [Client(self.server.addr) for _ in range(n)]

        def run(i):
            barrier.wait(T(10))
            try:
                out[i] = fn(i, clients[i])
            except grpc.RpcError as e:
                out[i] = e
        ths = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
        for t in ths:
            t.start()
        for t in ths:
            t.join(T(60))
        for c in clients:
            c.close()
        return out

    def test_same_batch_concurrently(self):
        for mode in ("event", "batch"):
            s = unique_stream()
            b = batch([event(s), event(s), event(unique_stream())], self.admin, mode)
            before = self.client.tree_size()
            out = self.run_parallel(lambda i, c: c.append(b))
            errs = [o for o in out if isinstance(o, grpc.RpcError)]
            self.assertEqual(errs, [], [(e.code(), e.details()) for e in errs])
            pos = {tuple((p.event_id, p.seq, p.stream_version) for p in o.positions) for o in out}
            self.assertEqual(len(pos), 1, "different positions for the same batch: %r" % pos)
            self.assertEqual(sum(not o.duplicate for o in out), 1,
                             "want exactly one non-duplicate: %r" % [o.duplicate for o in out])
            self.assertEqual(self.client.tree_size(), before + 3)

    def test_new_stream_concurrently(self):
        # Many first events of one new stream at once (concurrent data-key
        # minting): all succeed with distinct versions 1..n.
        for _ in range(10):
            s = unique_stream()
            out = self.run_parallel(lambda i, c: c.append(batch([event(s)], self.admin)))
            errs = [o for o in out if isinstance(o, grpc.RpcError)]
            self.assertEqual(errs, [], [(e.code(), e.details(), md(e)) for e in errs])
            self.assertEqual(sorted(o.positions[0].stream_version for o in out),
                             list(range(1, self.THREADS + 1)))
            got = self.client.read(stream=s)
            self.assertEqual([g.stream_version for g in got], list(range(1, self.THREADS + 1)))

    def test_no_stream_race(self):
        EV = common.pb.record.ExpectedVersion
        for _ in range(5):
            s = unique_stream()
            out = self.run_parallel(lambda i, c: c.append(
                batch([event(s)], self.admin, expectations=[(s, EV.NO_STREAM, 0)])))
            ok = [o for o in out if not isinstance(o, grpc.RpcError)]
            bad = [o for o in out if isinstance(o, grpc.RpcError)]
            self.assertEqual(len(ok), 1, [(e.code(), e.details()) for e in bad])
            for e in bad:
                self.assertEqual(e.code(), SC.FAILED_PRECONDITION, e.details())
                self.assertEqual(md(e).get("clinlog-current-version"), "1", md(e))
                self.assertEqual(md(e).get("clinlog-stream"), s, md(e))

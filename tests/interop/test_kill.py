"""Crash safety through the API: writers append while clinlogd is SIGKILLed
and restarted on the same data directory; retries of the same batches get
their positions by idempotency; every acknowledged event survives at its
acknowledged position and `clinlog verify` accepts the data directory."""
import random
import subprocess
import threading
import time

import grpc

import common
from common import T, Client, LogServerTestCase, batch, event, unique_stream

SC = grpc.StatusCode
RETRY = (SC.UNAVAILABLE, SC.DEADLINE_EXCEEDED)


class TestKillRestart(LogServerTestCase):
    WRITERS = 3
    KILLS = 5
    expect_clean_exit = True

    def test_sigkill_and_restart(self):
        EV = common.pb.record.ExpectedVersion
        acked = {}              # event id -> (seq, stream version, event bytes, stream)
        lock = threading.Lock()
        stop = threading.Event()
        errors = []
        stats = {"retries": 0, "duplicates": 0, "batches": 0}

        def writer(w):
            rnd = random.Random(1000 + w)
            streams = [unique_stream("patient-k%d-" % w) for _ in range(3)]
            version = {s: 0 for s in streams}
            c = Client(self.server.addr)
            try:
                while not stop.is_set():
                    s = rnd.choice(streams)
                    n = rnd.randint(1, 4)
                    evs = [event(s) for _ in range(n)]
                    b = batch(evs, self.admin, rnd.choice(("event", "batch")),
                              expectations=[(s, EV.EXACT, version[s])])
                    deadline = time.monotonic() + T(60)
                    tries = 0
                    while True:
                        tries += 1
                        try:
                            # wait_for_ready: the blocked call drives the reconnection
                            r = c.append(b, timeout=T(5), wait_for_ready=True)
                            break
                        except grpc.RpcError as e:
                            if e.code() in RETRY and time.monotonic() < deadline:
                                time.sleep(0.05)
                                continue
                            errors.append("writer %d: %s %s %r (try %d)"
                                          % (w, e.code(), e.details(), common.md(e), tries))
                            return
                    want = [version[s] + i + 1 for i in range(n)]
                    got = [p.stream_version for p in r.positions]
                    if got != want or [p.event_id for p in r.positions] != \
                            [common.event_id_of(e) for e in evs]:
                        errors.append("writer %d: positions %r, want versions %r" % (w, got, want))
                        return
                    version[s] += n
                    with lock:
                        for e, p in zip(evs, r.positions):
                            acked[p.event_id] = (p.seq, p.stream_version, e, s)
                        stats["batches"] += 1
                        stats["retries"] += tries - 1
                        stats["duplicates"] += r.duplicate
            except Exception as e:
                errors.append("writer %d: %r" % (w, e))
            finally:
                c.close()

        def wait_progress(k, timeout):
            with lock:
                target = len(acked) + k
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and not errors:
                with lock:
                    if len(acked) >= target:
                        return True
                time.sleep(0.02)
            return False

        ws = [threading.Thread(target=writer, args=(w,), daemon=True)
              for w in range(self.WRITERS)]
        for t in ws:
            t.start()
        rnd = random.Random(7)
        t0 = time.monotonic()
        try:
            for i in range(self.KILLS):
                self.assertTrue(wait_progress(rnd.randint(20, 200), T(30)),
                                "no progress before kill %d: %r" % (i + 1, errors))
                time.sleep(rnd.uniform(0, 0.3))
                self.server.kill()
                time.sleep(rnd.uniform(0, 0.3))
                self.server.start()
            self.assertTrue(wait_progress(20, T(30)), "no progress after the last restart: %r"
                            % errors)
        finally:
            stop.set()
            for t in ws:
                t.join(T(90))
        self.assertEqual(errors, [])
        self.assertFalse(any(t.is_alive() for t in ws), "a writer hangs")

        # Every acknowledged event is where it was acknowledged.
        for eid, (seq, ver, ev, s) in acked.items():
            g = self.client.get_event(eid)
            self.assertEqual((g.seq, g.stream_version, g.stream, g.event), (seq, ver, s, ev))
        # Nothing but acknowledged events was committed, and no seq is missing.
        size = self.client.tree_size()
        self.assertEqual(size, 2 + len(acked), "unacknowledged events were committed")
        seqs = sorted(v[0] for v in acked.values())
        self.assertEqual(seqs, list(range(3, size + 1)))
        whole = self.client.read(**{"from": 3})
        self.assertEqual([g.seq for g in whole], seqs)
        print("\n  [kill: %d kills, %d batches, %d events, %d retries, %d duplicate acks, %.1fs]"
              % (self.KILLS, stats["batches"], len(acked), stats["retries"], stats["duplicates"],
                 time.monotonic() - t0), end=" ", flush=True)

        rc = self.server.stop()
        self.assertEqual(rc, 0, self.server.stderr()[-2000:])
        r = subprocess.run([common.CLINLOG, "verify", self.server.data], capture_output=True,
                           text=True, timeout=T(120))
        self.assertEqual(r.returncode, 0, "clinlog verify:\n%s%s" % (r.stdout, r.stderr))

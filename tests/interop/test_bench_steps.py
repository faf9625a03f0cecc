"""bench/run's later steps, their C side run for real on real servers, each
in under ~25 s (the report they feed is test_bench_report.py's): the
AppendStream import, the latency CDFs (PostgreSQL's and clinlog's),
clinlog's fsyncs and CPU per event, the failover timeline and follower
lag, the decision-support step through bench/run's own step runner, the
HL7 step's MLLP over TLS (ACKed AA, its figures, and a server certificate
of another CA refused), and the raw RocksDB rate at each concurrency."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import common
from common import T
from test_bench_report import load_run


def perf_counts_syscalls():
    """Whether perf stat can count syscall tracepoints here (bench/syscount.c
    needs it; without, the benches leave fsyncs_per_event out)."""
    if not shutil.which("perf"):
        return False
    r = subprocess.run(["perf", "stat", "-x,", "-e", "syscalls:sys_enter_fsync", "--",
                        "/bin/sync"], capture_output=True, text=True, timeout=T(30))
    line = [x for x in r.stderr.splitlines() if "sys_enter_fsync" in x]
    return r.returncode == 0 and bool(line) and line[0].split(",")[0].isdigit()


class TestBenchSteps(unittest.TestCase):
    """The new steps' C side on real servers, each a short run (the figures
    come from bench/run): the AppendStream import, the peers' latency CDF,
    clinlog's fsyncs and CPU per event with its CDF, the failover
    timeline and follower lag, and MLLP over TLS."""

    def run_bench(self, name, args, timeout=120, d=None):
        bench = os.path.join(common.BUILD, "clinlog-bench")
        if not os.path.exists(bench):
            self.skipTest("clinlog-bench was not built")
        d = d or os.path.join(common.TMP, "bench-steps-" + name)
        r = subprocess.run([bench] + args + ["--json", "--dir", d], capture_output=True,
                           text=True, timeout=T(timeout))
        if r.returncode == 3:
            self.skipTest(r.stderr.strip().splitlines()[-1])
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        return json.loads(r.stdout)

    def check_cdf(self, row, p50, p99):
        cdf = row["cdf_ms"]
        self.assertEqual([q for q, _ in cdf][:3], [0.001, 0.01, 0.05])
        self.assertEqual(len(cdf), 24)
        self.assertEqual(cdf[-1][0], 1)
        ms = [m for _, m in cdf]
        self.assertEqual(ms, sorted(ms))  # a CDF never falls
        self.assertGreater(ms[0], 0)
        # the same samples as the row's percentiles
        self.assertAlmostEqual(dict(cdf)[0.5], p50, places=2)
        self.assertAlmostEqual(dict(cdf)[0.99], p99, places=2)

    def test_append_stream_import(self):
        out = self.run_bench("import", ["grpc", "--quick", "--only", "stream",
                                        "--clinlogd", common.CLINLOGD])
        self.assertEqual(out["append"], [])  # what --only skipped is left out
        imp = out["append_stream"]
        self.assertEqual((imp["events"], imp["batch"]), (25000, 1000))
        self.assertGreater(imp["grpc_events_per_s"], 0)
        self.assertGreater(imp["store_events_per_s"], 0)
        self.assertAlmostEqual(imp["ratio"], imp["grpc_events_per_s"] /
                               imp["store_events_per_s"], places=2)

    def test_postgresql_cdf(self):
        # PostgreSQL runs as its own user: its directory must be reachable
        # (the suite's temporary directory is the runner's alone)
        d = tempfile.mkdtemp(prefix="clinlog-bench-pg-")
        self.addCleanup(shutil.rmtree, d, True)
        os.chmod(d, 0o755)
        out = self.run_bench("pg", ["pg", "--quick", "--seconds", "0.5"], d=d)
        self.assertEqual(len(out["scenarios"]), 6)
        for s in out["scenarios"]:
            self.check_cdf(s, s["p50_ms"], s["p99_ms"])

    def test_clinlog_fsyncs_cpu_and_cdf(self):
        out = self.run_bench("unary", ["grpc", "--quick", "--only", "unary", "--seconds", "0.5",
                                       "--clinlogd", common.CLINLOGD])
        perf = perf_counts_syscalls()
        self.assertEqual([(x["batch"], x["concurrency"]) for x in out["append"]],
                         [(1, 1), (1, 16), (1, 64), (64, 1), (64, 16), (64, 64)])
        for row in out["append"]:
            # the load generator's fixed time, as the peers' (--seconds)
            self.assertEqual(row["seconds"], 0.5)
            self.assertGreater(row["store_events_per_s"], 0)
            self.check_cdf(row, row["grpc_p50_ms"], row["grpc_p99_ms"])
            self.assertGreater(row["server_cpu_us_per_event"], 0)
            if perf:
                self.assertIn("fsyncs_per_event", row)
                # every syscall, and the kinds (a part of them) each counted
                sc = row["server_syscalls"]
                self.assertEqual(set(sc), {"all", "futex", "write", "read", "sock", "poll", "sync",
                                           "aio", "random", "memory", "sleep"}, row)
                # each figure is printed to 0.01 (off by up to 0.005): the
                # kinds' sum may pass `all` by that much per figure
                self.assertGreaterEqual(sc["all"] + 0.005 * len(sc),
                                        sum(v for k, v in sc.items() if k != "all"), sc)
                self.assertAlmostEqual(sc["sync"], row["fsyncs_per_event"], delta=0.01)
            # by thread: every append goes through a worker and the Raft loop
            th = {g["name"]: g for g in row["server_threads"]}
            self.assertIn("api:worker", th, row)
            self.assertIn("raft", th, row)
            self.assertFalse([n for n in th if any(c.isdigit() for c in n)], th)
        # the floor of a call (bench/grpcfloor.h): answers only, then durable
        fl = {(x["durable"], x["concurrency"]): x for x in out["floor"]}
        self.assertEqual(sorted(fl), [(False, 1), (False, 16), (False, 64), (True, 1), (True, 16),
                                      (True, 64)])
        for x in fl.values():
            self.assertGreater(x["calls_per_s"], 0, x)
            self.assertGreater(x["server_cpu_us_per_call"], 0, x)
        # an fdatasync a call costs more than the answer alone; in flight
        # together, calls share the durable writes
        self.assertLess(fl[(True, 1)]["calls_per_s"], fl[(False, 1)]["calls_per_s"], fl)
        self.assertGreater(fl[(True, 16)]["calls_per_s"], fl[(True, 1)]["calls_per_s"], fl)
        if perf:
            one = [x for x in out["append"] if x["batch"] == 1 and x["concurrency"] == 1][0]
            # one event a call, one caller: every append its own durable write
            self.assertGreaterEqual(one["fsyncs_per_event"], 0.9)
            # and its own request read off the socket and answer written
            self.assertGreaterEqual(one["server_syscalls"]["sock"], 1.0, one)
            b64 = [x for x in out["append"] if x["batch"] == 64 and x["concurrency"] == 1][0]
            self.assertLess(b64["fsyncs_per_event"], 0.25)

    def test_failover_timeline_and_lag(self):
        if common.SCALE > 1:  # CI's bench/run --quick runs this step on the plain build
            self.skipTest("kills and restarts three sanitized nodes for a minute: the "
                          "plain build and bench/run --quick cover it")
        out = self.run_bench("failover", ["cluster", "--quick", "--only", "failover",
                                          "--clinlogd", common.CLINLOGD,
                                          "--clinlog", common.CLINLOG], timeout=180)
        fo = out["failover"]
        self.assertEqual(len(fo["trials"]), 2)  # --quick
        self.assertTrue(out["targets"]["failover_ok"] in (True, False))
        tl = fo["timeline"]
        self.assertEqual(tl["tick_s"], 0.1)
        eps = tl["appends_per_s"]
        # 10 appends in a tick are 100/s: the timeline adds up to the appends done
        self.assertLessEqual(abs(sum(eps) * 0.1 - fo["appends_ok"]), 0.05 * fo["appends_ok"])
        for k, ok in zip(tl["kills_s"], tl["first_append_s"]):
            self.assertAlmostEqual(ok - k, fo["trials"][tl["kills_s"].index(k)]["seconds"],
                                   places=2)
            # appends before the kill, none in the tick after the leader died
            # and its election is still on, appends again after the first one
            before = eps[int(k / 0.1) - 3:int(k / 0.1) - 1]
            self.assertTrue(any(before), (k, eps))
            self.assertIn(0, eps[int(k / 0.1) + 1:int(ok / 0.1)], (k, ok, eps))
            self.assertTrue(any(eps[int(ok / 0.1):int(ok / 0.1) + 10]), (ok, eps))
        lag = fo["follower_lag"]
        self.assertGreater(lag["samples"], 10)
        self.assertLessEqual(lag["p50_entries"], lag["p99_entries"])
        self.assertLessEqual(lag["p99_entries"], lag["max_entries"])

    def test_cds_step(self):
        """Step 18 as bench/run runs it (its argv from steps_of, run_step
        reading its JSON), on a smaller population, then its section."""
        bench = os.path.join(common.BUILD, "clinlog-bench")
        if not os.path.exists(bench):
            self.skipTest("clinlog-bench was not built")
        br = load_run()
        d = os.path.join(common.TMP, "bench-steps-cds")
        os.makedirs(d, exist_ok=True)
        key, name, argv, timeout = [s for s in br.steps_of(bench, d, True) if s[1] == "cds"][0]
        self.assertEqual(argv[:3], [bench, "cds", "--json"])
        self.assertIn("--quick", argv)
        data, err, skipped = br.run_step(name, argv + ["--patients", "100"], T(timeout), d)
        self.assertIsNone(err)
        self.assertIsNone(skipped)
        self.assertEqual((key, data["patients"]), ("cds", 100))
        # 100 patients, 32 medication events each
        self.assertEqual(data["medication_events"], 3200)
        # the projection's emitter appended exactly what the pure checker found
        self.assertGreater(data["checker_findings"], 0)
        self.assertEqual(data["emitted"], data["checker_findings"])
        self.assertGreaterEqual(data["catchup_events"], data["medication_events"])
        # every trigger's alert came on Cds.Alerts, after its IssueDetected committed
        self.assertEqual(data["alerts"], data["alert_triggers"])
        self.assertEqual(data["alert_triggers"], 300)  # --quick
        self.assertLessEqual(data["alert_p50_ms"], data["alert_p99_ms"])
        self.assertGreater(data["alert_p50_ms"], 0)
        self.assertEqual(data["order_sign_calls"], 300)
        self.assertLessEqual(data["order_sign_p50_ms"], data["order_sign_p99_ms"])
        self.assertGreater(data["load_eps"], 1000)
        r = br.combine({"cds": data, "step_seconds": {"cds": 1.0}})
        text = br.make_report(r)
        self.assertIn("| checker, 1 thread, medication events/s (%s findings)" %
                      "{:,}".format(data["checker_findings"]), text)
        self.assertIn("(300 of 300 alerts)", text)
        cds = [t for t in r["targets"] if t["name"].startswith("decision support")]
        self.assertEqual(len(cds), 3)
        self.assertTrue(all(t["met"] in (True, False) for t in cds), cds)

    def test_ingest_hl7_over_tls(self):
        """Step 10's MLLP over TLS for real (about 10 s): its throwaway PKI,
        a clinlogd requiring a client certificate, the same messages as the
        plaintext rows ACKed AA over TLS at 1 and 16 connections, and the
        TLS rows of the report."""
        out = self.run_bench("hl7-tls", ["ingest", "hl7", "--quick", "--messages", "120",
                                         "--no-pg", "--clinlogd", common.CLINLOGD], timeout=90)
        self.assertTrue(out["ok"])
        self.assertTrue(out["tls"]["client_certificate"])
        self.assertRegex(out["tls"]["protocol"], r"^TLSv1\.[23] \S+")
        self.assertEqual([s["connections"] for s in out["scenarios"]], [1, 16])
        for s in out["scenarios"]:
            ml, tl = s["mllp"], s["mllp_tls"]
            # "acked" counts AA only: any other ACK fails the run
            self.assertEqual((tl["messages"], tl["acked"]), (120, 120), s)
            self.assertEqual(tl["events"], ml["events"])  # the same messages
            self.assertGreater(tl["messages_per_s"], 0)
            self.assertLess(tl["messages_per_s"], 1e6)
            self.assertGreater(tl["p50_ms"], 0)
            self.assertLessEqual(tl["p50_ms"], tl["p99_ms"])
            self.assertGreater(tl["server_cpu_us_per_message"], 0)
            ratio = tl["messages_per_s"] / ml["messages_per_s"]
            self.assertAlmostEqual(s["mllp_tls_over_mllp"], ratio, delta=0.02 * max(ratio, 1))
            self.assertIn("mllp_tls_over_store", s)
            # clinlogd's CPU by thread (named groups, digits dropped) adds up
            # to its CPU a message; "ended" holds the connections' threads
            th = ml["server_threads"]
            names = [g["name"] for g in th]
            self.assertEqual(len(names), len(set(names)), th)
            self.assertFalse([n for n in names if any(c.isdigit() for c in n)], th)
            self.assertTrue(all(g["cpu_us"] >= 0 and g["switches"] >= 0 for g in th), th)
            tick = 1e6 / os.sysconf("SC_CLK_TCK") / ml["messages"]
            self.assertAlmostEqual(sum(g["cpu_us"] for g in th), ml["server_cpu_us_per_message"],
                                   delta=0.02 * ml["server_cpu_us_per_message"] + 2 * tick)
        d = os.path.join(common.TMP, "bench-steps-hl7-tls")
        for k in ("ca.key", "server.key", "client.key"):
            self.assertEqual(os.stat(os.path.join(d, "tls", k)).st_mode & 0o777, 0o600, k)
        with open(os.path.join(d, "clinlogd.log"), errors="replace") as f:
            log = f.read()
        self.assertIn("TLS, client certificates required", log)
        self.assertNotIn("TLS handshake failed", log)
        br = load_run()
        r = br.combine({"ingest_hl7": out,
                        "raw": {"fsync": {"p50_ms": 1.0, "p99_ms": 2.0, "per_s": 1000.0}}})
        tls = [x for x in r["ingest_hl7_rows"] if x["path"] == "MLLP over TLS"]
        self.assertEqual([(x["connections"], x["messages"]) for x in tls], [(1, 120), (16, 120)])
        self.assertIn("| 16 | MLLP over TLS | 120 | ", br.make_report(r))

    def test_ingest_hl7_tls_refuses_a_server_of_another_ca(self):
        """The TLS sender trusts one CA: told to trust a second one (--tls-ca),
        it refuses the server's certificate at the handshake, says why and
        names the CA file, sends nothing and fails the run; the plaintext
        rows are unaffected."""
        bench = os.path.join(common.BUILD, "clinlog-bench")
        if not os.path.exists(bench):
            self.skipTest("clinlog-bench was not built")
        from test_tls import make_pki
        pki = tempfile.mkdtemp(prefix="pki-", dir=common.TMP)
        other = make_pki(pki)["ca.pem"]
        d = os.path.join(common.TMP, "bench-steps-hl7-other-ca")
        r = subprocess.run([bench, "ingest", "hl7", "--messages", "10", "--connections", "1",
                            "--no-pg", "--json", "--tls-ca", other, "--dir", d,
                            "--clinlogd", common.CLINLOGD], capture_output=True, text=True,
                           timeout=T(60))
        self.assertEqual(r.returncode, 1, r.stderr[-2000:])
        self.assertIn("mllp-tls, 1 connections: port ", r.stderr)
        self.assertIn("TLS handshake failed: the server's certificate is not trusted: ", r.stderr)
        self.assertIn("(verified against the CA %s)" % other, r.stderr)
        out = json.loads(r.stdout)
        self.assertFalse(out["ok"])
        sc = out["scenarios"][0]
        self.assertEqual(sc["mllp_tls"]["acked"], 0)
        self.assertEqual(sc["mllp"]["acked"], 10)
        with open(os.path.join(d, "clinlogd.log"), errors="replace") as f:
            self.assertIn("TLS handshake failed", f.read())  # the server saw it refused

    def test_raw_rocksdb_at_each_concurrency(self):
        """Step 1's raw RocksDB writes at exactly the single-node rows'
        concurrencies, the store's bytes."""
        out = self.run_bench("raw", ["raw", "--quick"], timeout=60)
        rdb = out["rocksdb"]
        self.assertEqual(rdb["record_bytes"], out["sha256"]["event_bytes"] + 150)
        self.assertEqual([(s["batch"], s["threads"]) for s in rdb["scenarios"]],
                         [(1, 1), (1, 16), (1, 64), (64, 1), (64, 16), (64, 64)])
        for s in rdb["scenarios"]:
            self.assertGreater(s["events_per_s"], 0, s)
            self.assertLessEqual(s["p50_ms"], s["p99_ms"], s)
        # synced: one writer at batch 1 is bound by the disk's flush (an unsynced
        # write would run hundreds of times faster than fdatasync)
        one = rdb["scenarios"][0]
        self.assertLess(one["events_per_s"], 50 * out["fsync"]["per_s"], (one, out["fsync"]))
        # both fsync figures: appending, and into a file written first
        for k in ("fsync", "fsync_written"):
            self.assertEqual(out[k]["n"], 100, k)
            self.assertGreater(out[k]["per_s"], 0, k)
            self.assertLessEqual(out[k]["p50_ms"], out[k]["p99_ms"], k)
        d = os.path.join(common.TMP, "bench-steps-raw")
        self.assertFalse(os.path.exists(os.path.join(d, "rocksdb")), "its database removed")

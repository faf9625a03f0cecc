"""clinlog-bench ingest hl7 on a few hundred messages (the smoke run CI keeps,
under ~20 s; the figures themselves come from bench/run): it starts its own
clinlogd with the MLLP listener, every message is acknowledged AA after the
commit at 1 and 16 connections, plaintext and over TLS, the store limit and
the PostgreSQL peer (when PostgreSQL 15 is installed) run on the same
messages, and the ratios and targets are in the --json report."""
import json
import os
import subprocess
import unittest

import common
from common import T


class TestBenchIngest(unittest.TestCase):

    def test_quick_run(self):
        bench = os.path.join(common.BUILD, "clinlog-bench")
        if not os.path.exists(bench):
            self.skipTest("clinlog-bench was not built")
        d = os.path.join(common.TMP, "bench-ingest")
        r = subprocess.run([bench, "ingest", "hl7", "--quick", "--json", "--messages", "160",
                            "--dir", d, "--clinlogd", common.CLINLOGD],
                           capture_output=True, text=True, timeout=T(120))
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        out = json.loads(r.stdout)
        self.assertTrue(out["ok"])
        self.assertEqual([s["connections"] for s in out["scenarios"]], [1, 16])
        for s in out["scenarios"]:
            for path in ("mllp", "store"):
                self.assertEqual(s[path]["messages"], 160, path)
                self.assertEqual(s[path]["acked"], 160, path)
                # 16 ADT^A01, 64 ORU^R01, 32 RDE^O11, 32 RAS^O17: more than one event each
                self.assertGreater(s[path]["events"], 160, path)
                self.assertGreater(s[path]["messages_per_s"], 0, path)
                self.assertGreaterEqual(s[path]["p99_ms"], s[path]["p50_ms"], path)
            self.assertEqual(s["mllp"]["events"], s["store"]["events"])
            # the same messages over TLS with a client certificate, every one AA
            self.assertEqual(s["mllp_tls"]["acked"], 160)
            self.assertEqual(s["mllp_tls"]["events"], s["mllp"]["events"])
            self.assertGreater(s["mllp"]["server_cpu_us_per_message"], 0)
            # the rates in the JSON are rounded to whole messages/s, the ratio is not
            ratio = s["mllp"]["messages_per_s"] / s["store"]["messages_per_s"]
            self.assertAlmostEqual(s["mllp_over_store"], ratio, delta=0.02 * max(ratio, 1))
            if out.get("postgresql_skipped"):
                self.assertIsNone(s["postgresql"])
            else:
                self.assertEqual(s["postgresql"]["acked"], 160)
                self.assertIn("mllp_over_postgresql", s)
        self.assertIn("messages_per_s_16_ok", out["targets"])
        # the server's log names no patient (the generated names and ids)
        with open(os.path.join(d, "clinlogd.log"), errors="replace") as f:
            log = f.read()
        for phi in ("O'Brien", "Garcia", "P0000"):
            self.assertNotIn(phi, log)

    def test_usage_error(self):
        bench = os.path.join(common.BUILD, "clinlog-bench")
        if not os.path.exists(bench):
            self.skipTest("clinlog-bench was not built")
        r = subprocess.run([bench, "ingest", "hl7", "--messages", "0"], capture_output=True,
                           text=True, timeout=T(30))
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage: clinlog-bench ingest hl7", r.stderr)

"""clinlog-bench ingest fhir on a few records (the smoke run CI keeps, a few
seconds; the figures themselves come from bench/run): it starts its own
clinlogd with the FHIR REST face, every transaction Bundle is answered 200
with its transaction-response at 1 and 16 connections, the store limit and
the PostgreSQL peer (when PostgreSQL 15 is installed) run on the same
Bundles, and the NDJSON load goes through the real `clinlog ingest fhir`;
the ratios are in the --json report."""
import json
import os
import subprocess
import unittest

import common
from common import T

RECORDS = 20
RESOURCES = 11  # a record: Patient, Encounter, Condition, allergy, prescription, 6 Observations


class TestBenchIngestFhir(unittest.TestCase):

    def bench(self):
        bench = os.path.join(common.BUILD, "clinlog-bench")
        if not os.path.exists(bench):
            self.skipTest("clinlog-bench was not built")
        return bench

    def test_quick_run(self):
        d = os.path.join(common.TMP, "bench-ingest-fhir")
        r = subprocess.run([self.bench(), "ingest", "fhir", "--quick", "--json", "--bundles",
                            str(RECORDS), "--dir", d, "--clinlogd", common.CLINLOGD,
                            "--clinlog", common.CLINLOG],
                           capture_output=True, text=True, timeout=T(180))
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        out = json.loads(r.stdout)
        self.assertTrue(out["ok"])
        self.assertEqual([s["connections"] for s in out["transactions"]], [1, 16])
        for s in out["transactions"]:
            for path in ("rest", "store"):
                self.assertEqual(s[path]["units"], RECORDS, path)
                self.assertEqual(s[path]["accepted"], RECORDS, path)
                self.assertEqual(s[path]["resources"], RECORDS * RESOURCES, path)
                self.assertGreater(s[path]["resources_per_s"], 0, path)
                self.assertGreaterEqual(s[path]["p99_ms"], s[path]["p50_ms"], path)
            self.assertGreater(s["rest"]["server_cpu_us_per_resource"], 0)
            ratio = s["rest"]["resources_per_s"] / s["store"]["resources_per_s"]
            self.assertAlmostEqual(s["rest_over_store"], ratio, delta=0.02 * max(ratio, 1))
            if out.get("postgresql_skipped"):
                self.assertIsNone(s["postgresql"])
            else:
                self.assertEqual(s["postgresql"]["resources"], RECORDS * RESOURCES)
                self.assertIn("rest_over_postgresql", s)
        nd = out["ndjson"]
        for path in ("cli", "store"):
            self.assertEqual(nd[path]["accepted"], RECORDS * RESOURCES, path)
            self.assertGreater(nd[path]["resources_per_s"], 0, path)
        self.assertIn("cli_over_store", nd)
        # the command's own report: every line accepted, in batches
        with open(os.path.join(d, "ingest.log")) as f:
            text = f.read()
        summary = json.loads(text[text.index("{"):])["summary"]
        self.assertEqual((summary["accepted"], summary["refused"]),
                         (RECORDS * RESOURCES, 0))
        self.assertLess(summary["appends"], RECORDS * RESOURCES / 4)
        # the server's log names no patient (the generated names and MRNs)
        with open(os.path.join(d, "clinlogd.log"), errors="replace") as f:
            log = f.read()
        for phi in ("Okafor", "Adaeze", "BEN-", "Somerville"):
            self.assertNotIn(phi, log)

    def test_usage_error(self):
        r = subprocess.run([self.bench(), "ingest", "fhir", "--bundles", "0"],
                           capture_output=True, text=True, timeout=T(30))
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage: clinlog-bench ingest fhir", r.stderr)

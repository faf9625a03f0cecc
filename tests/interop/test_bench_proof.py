"""clinlog-bench proof on a small log (the smoke run CI keeps, ~10 s; the
figures come from bench/run): every inclusion and consistency proof it
makes in process verifies, every ProveInclusion answer of a real clinlogd
checks out as an auditor checks it (leaf hash of the record, path to the
root), with the audit trail on and off, and the whole-log replay (hashes
only, then signatures and content) finds the log intact; the raw limits
and the ratios are in the --json report."""
import json
import os
import subprocess
import unittest

import common
from common import T


class TestBenchProof(unittest.TestCase):

    def bench(self):
        bench = os.path.join(common.BUILD, "clinlog-bench")
        if not os.path.exists(bench):
            self.skipTest("clinlog-bench was not built")
        return bench

    def test_small_run(self):
        d = os.path.join(common.TMP, "bench-proof")
        r = subprocess.run([self.bench(), "proof", "--json", "--events", "5000", "--proofs",
                            "300", "--dir", d, "--clinlogd", common.CLINLOGD],
                           capture_output=True, text=True, timeout=T(180))
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        out = json.loads(r.stdout)
        self.assertTrue(out["ok"])
        # the genesis events and the 5,000 appended
        self.assertGreater(out["events"], 5000)
        self.assertLess(out["events"], 5010)
        for k in ("node_hashes_per_s", "leaf_hash_mb_per_s", "ed25519_verify_per_s"):
            self.assertGreater(out["raw"][k], 0, k)
        # a proof in a tree of ~5,000 leaves: at most 13 hashes
        self.assertGreater(out["inclusion"]["mean_hashes"], 8)
        self.assertLessEqual(out["inclusion"]["mean_hashes"], 13)
        for kind in ("inclusion", "consistency"):
            for row in ("prove_1", "prove_2", "verify"):
                x = out[kind][row]
                self.assertGreater(x["per_s"], 0, (kind, row))
                self.assertGreaterEqual(x["p99_ms"], x["p50_ms"], (kind, row))
        self.assertGreater(out["inclusion"]["verify_over_raw"], 0)
        g = out["grpc_inclusion"]
        for row in ("concurrency_1", "concurrency_16", "audit_off_concurrency_1",
                    "audit_off_concurrency_16"):
            self.assertGreater(g[row]["per_s"], 0, row)
        v = out["verify_log"]
        self.assertGreater(v["hashes_only_events_per_s"], 0)
        self.assertGreater(v["full_events_per_s"], 0)
        # one batch signature per 1,000 events, and the genesis'
        self.assertGreaterEqual(v["signatures"], 5)
        self.assertEqual(v["decrypted"], out["events"])

    def test_usage_error(self):
        r = subprocess.run([self.bench(), "proof", "--events", "10"], capture_output=True,
                           text=True, timeout=T(30))
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage: clinlog-bench proof", r.stderr)

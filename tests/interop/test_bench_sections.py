"""bench/run's report on a canned run, continued from test_bench_report.py
(which holds the canned run): the audit trail's section judges issue 10's
target for reads and for appends and sets PostgreSQL's audited calls
beside it when the step measured them, the decision-support section judges
issue 11's targets, and bench/run --check passes a whole run and names what
is wrong with a broken one."""
import copy
import json
import os
import shutil
import unittest

import common
from test_bench_report import CANNED, ReportCase, load_run


class TestBenchSections(ReportCase, unittest.TestCase):

    def cds_results(self, **kw):
        res = copy.deepcopy(CANNED)
        res["cds"] = dict({
            "machine": "x", "patients": 500, "medication_events": 16000, "checker_eps": 937350,
            "checker_findings": 2746, "catchup_eps": 54037, "catchup_events": 16002,
            "emitted": 2746, "emit_backlog_s": 2.2, "alert_p50_ms": 1.4, "alert_p99_ms": 12.5,
            "alerts": 98, "alert_triggers": 100, "alert_committed_p50_ms": 0.9,
            "alert_committed_p99_ms": 11.1, "load_eps": 5004, "order_sign_p50_ms": 0.21,
            "order_sign_p99_ms": 1.62, "order_sign_calls": 300,
            "targets": {"checker_eps": 50000, "alert_p99_ms": 10, "order_sign_p99_ms": 20}}, **kw)
        res["step_seconds"] = {"cds": 11.4}
        return res

    def test_audit_section_and_targets(self):
        r, text = self.report(CANNED)
        self.assertIn("## Audit trail: the cost of fail-closed auditing (clinlog-bench audit)"
                      "\n\nNot measured in this run.", text)
        au = [t for t in r["targets"] if t["name"].startswith("audit trail on against off")]
        self.assertEqual([t["met"] for t in au], [None, None], "not run: not judged")

        def sc(call, conc, off, on, bound=None, peer=None):
            x = {"call": call, "concurrency": conc, "off_ops_per_s": off, "on_ops_per_s": on,
                 "ratio": round(on / off, 3), "off_p50_ms": 0.1, "off_p99_ms": 0.2,
                 "on_p50_ms": 0.65, "on_p99_ms": 1.5, "audit_records_per_batch": 10.6,
                 "off_cpu_us_per_call": 53.0, "on_cpu_us_per_call": 135.0,
                 "fail_closed_bound": bound}
            if peer:
                x["peer"] = {"off_ops_per_s": peer[0], "on_ops_per_s": peer[1],
                             "ratio": round(peer[1] / peer[0], 3)}
            return x
        res = dict(CANNED, audit={
            "rounds": 1, "seconds": 1.0, "preload_events": 5002, "fdatasync_p50_ms": 0.136,
            "peer": "PostgreSQL 15, durable, the audit row inserted in the same statement",
            "scenarios": [sc("Log.GetEvent", 1, 8000, 1200, 0.47, (25000, 5000)),
                          sc("Fhir.Read", 64, 16000, 8000, None, (25000, 5000)),
                          sc("Log.Append", 1, 1000, 900, 0.86, (3000, 2700)),
                          sc("Log.Append", 64, 5000, 4500, None, (6000, 4000))]})
        r, text = self.report(res)
        sec = text.split("## Audit trail: the cost of fail-closed auditing "
                         "(clinlog-bench audit)\n")[1].split("\n## ")[0]
        self.assertIn("| Log.GetEvent | 1 | 8,000 | 1,200 | 0.15 | 0.47 | 0.65 / 1.50 | 10.6 "
                      "| 53 / 135 | **MISSED** |", sec)
        self.assertIn("| Log.Append | 64 | 5,000 | 4,500 | 0.90 | — | 0.65 / 1.50 | 10.6 | 53 / "
                      "135 | MET |", sec)
        self.assertIn("0.136 ms p50", sec)
        # the peer beside: its own on/off, and clinlog's audited rate over its audited rate
        self.assertIn("| Fhir.Read | 64 | 25,000 | 5,000 | 0.20 | 0.50 | 1.60 |", sec)
        tg = {t["name"]: (t["value"], t["met"]) for t in r["targets"]}
        self.assertEqual(tg["audit trail on against off, reads (Log.GetEvent, Fhir.Read; lowest "
                            "of concurrency 1 and 64)"], (0.15, False))
        self.assertEqual(tg["audit trail on against off, appends (Log.Append; lowest of "
                            "concurrency 1 and 64)"], (0.9, True))
        # --quick runs no peer: said so, no empty table
        for x in res["audit"]["scenarios"]:
            del x["peer"]
        _, text = self.report(res)
        self.assertIn("was not measured in this run (--quick leaves it out; the full run "
                      "measures it).", text)
        self.assertNotIn("| PostgreSQL off ops/s |", text)

    def test_floor_section(self):
        _, text = self.report(CANNED)
        self.assertNotIn("### The floor of one event a call on this stack", text,
                         "no floor rows: no section")

        def fl(durable, conc, calls, p50, server_us):
            return {"durable": durable, "concurrency": conc, "calls_per_s": calls,
                    "p50_ms": p50, "p99_ms": p50 * 3, "server_cpu_us_per_call": server_us,
                    "client_cpu_us_per_call": 40.0}
        res = copy.deepcopy(CANNED)
        res["clinlog_single"]["floor"] = [fl(False, 1, 8000, 0.1, 60.0),
                                          fl(False, 64, 12000, 4.0, 30.0),
                                          fl(True, 1, 5000, 0.3, 150.0),
                                          fl(True, 64, 25000, 3.0, 60.0)]
        r, text = self.report(res)
        sec = text.split("### The floor of one event a call on this stack\n")[1]
        sec = sec.split("\n\n")[1]  # the table, after the text
        # clinlog 1,500 and 25,000 ev/s, PostgreSQL 5,000 and 12,500 (the canned run)
        self.assertIn("| 1 | 8,000 | 5,000 | 0.30 | 150 | 1,500 | 0.30 | 5,000 | 1.00 "
                      "| >= 0.7 x PG | 0.70 |", sec)
        self.assertIn("| 64 | 12,000 | 25,000 | 3.00 | 60 | 25,000 | 1.00 | 12,500 | 2.00 "
                      "| >= 1.0 x PG | 0.50 |", sec)
        self.assertNotIn("| 16 |", sec, "a concurrency the floor did not run: no row")
        one = [x for x in r["floor_rows"] if x["concurrency"] == 1][0]
        self.assertEqual((one["clinlog_over_floor"], one["floor_over_postgresql"],
                          one["target_over_floor"]), (0.3, 1.0, 0.7))

    def test_cds_section_and_targets(self):
        r, text = self.report(CANNED)
        self.assertIn("## Decision support (clinlog-bench cds)\n\nNot measured in this run.",
                      text)
        cds = [t for t in r["targets"] if t["name"].startswith("decision support")]
        self.assertEqual([t["met"] for t in cds], [None, None, None], "not run: not judged")
        r, text = self.report(self.cds_results())
        sec = text.split("## Decision support (clinlog-bench cds)\n")[1].split("\n## ")[0]
        self.assertIn("500 generated patients", sec)
        self.assertIn("(16,000 medication events)", sec)
        self.assertIn("| checker, 1 thread, medication events/s (2,746 findings) | 937,350 "
                      "| >= 50,000 | MET |", sec)
        self.assertIn("| catch-up: the cds projection from event 1, events/s (16,002 events) "
                      "| 54,037 | — | — |", sec)
        # 2746 findings in 2.2 s
        self.assertIn("findings/s (2,746 in 2.20 s) | 1,248 | — | — |", sec)
        self.assertIn("| alert: commit to Cds.Alerts received, p50 / p99 ms (98 of 100 alerts) "
                      "| 1.40 / 12.50 | p99 <= 10 ms | **MISSED** |", sec)
        self.assertIn("| alert: commit to the IssueDetected's commit, p50 / p99 ms | 0.90 / "
                      "11.10 | — | — |", sec)
        self.assertIn("| CDS Hooks order-sign round trip, p50 / p99 ms (300 calls) | 0.21 / "
                      "1.62 | p99 <= 20 ms | MET |", sec)
        self.assertIn("Background load during the alerts: 5,004 events/s (issue 11 asks for at "
                      "least 5,000); 2 alerts never arrived within 5 s and are not in the "
                      "percentiles; the step took 11.4 s.", sec)
        self.assertIn("- **MISSED**: decision support: alert p99, commit to Cds.Alerts "
                      "received: 12.50 ms (target <= 10 ms).", text)
        met = {t["name"]: t["met"] for t in r["targets"]}
        self.assertTrue(met["decision support: checker, 1 thread"])
        self.assertFalse(met["decision support: alert p99, commit to Cds.Alerts received"])
        self.assertTrue(met["decision support: CDS Hooks order-sign round trip p99"])
        # every target met; then no alert at all: missed, said plainly, never a 0 ms p99
        r, text = self.report(self.cds_results(alert_p99_ms=4.0, alerts=100))
        self.assertIn("| 1.40 / 4.00 | p99 <= 10 ms | MET |", text)
        self.assertNotIn("never arrived", text)
        r, text = self.report(self.cds_results(alert_p99_ms=0.0, alerts=0, load_eps=2000))
        self.assertIn("| 1.40 / — | p99 <= 10 ms | **MISSED** |", text)
        self.assertIn("2,000 events/s (issue 11 asks for at least 5,000); lighter than asked, "
                      "so the alert figures flatter clinlog; **no alert arrived** on Cds.Alerts",
                      text)
        t = [t for t in r["targets"] if t["name"].startswith("decision support: alert")][0]
        self.assertEqual((t["value"], t["met"]), (None, False))
        self.assertIn("- **MISSED**: decision support: alert p99, commit to Cds.Alerts "
                      "received: — ms (target <= 10 ms).", text)


class TestBenchCheck(unittest.TestCase):
    """bench/run --check, what scripts/test.sh runs after bench/run --quick:
    a whole run passes, and each way a run can be broken is named."""

    @classmethod
    def setUpClass(cls):
        cls.br = load_run()
        cls.steps = [(k, n) for k, n, _, _ in cls.br.steps_of("", "", True)]

    def write(self, res, name):
        out = os.path.join(common.TMP, "bench-check-" + name)
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        r = self.br.combine(copy.deepcopy(res))
        r["plots"] = []
        with open(os.path.join(out, "results.json"), "w") as f:
            json.dump(r, f)
        with open(os.path.join(out, "report.md"), "w") as f:
            f.write(self.br.make_report(r))
        return out

    def whole(self):
        res = copy.deepcopy(CANNED)
        for key, _ in self.steps:
            res.setdefault(key, {})
        res["etcd_skipped"] = "clinlog-bench etcd: skipped: etcd not found"
        del res["etcd"]
        return res

    def test_whole_run_passes(self):
        out = self.write(self.whole(), "whole")
        self.assertEqual(self.br.runext.check(out, self.steps), [])

    def test_broken_runs_are_named(self):
        res = self.whole()
        del res["proof"]
        res["errors"] = ["proof: exit status 1; see logs/proof.log"]
        out = self.write(res, "broken")
        with open(os.path.join(out, "report.md")) as f:
            md = f.read()
        with open(os.path.join(out, "report.md"), "w") as f:
            f.write(md.replace("\n## Machine\n", "\n"))
        with open(os.path.join(out, "results.json")) as f:
            r = json.load(f)
        r["plots"] = ["throughput.svg"]
        with open(os.path.join(out, "results.json"), "w") as f:
            json.dump(r, f)
        with open(os.path.join(out, "throughput.svg"), "w") as f:
            f.write("gnuplot: error\n")
        self.assertEqual(self.br.runext.check(out, self.steps), [
            "step failed: proof: exit status 1; see logs/proof.log",
            "step proof: no figures in results.json (key proof) and not skipped",
            "plot throughput.svg: not an SVG",
            "report.md: section '## Machine' missing or out of order"])
        os.unlink(os.path.join(out, "results.json"))
        problems = self.br.runext.check(out, self.steps)
        self.assertEqual(problems[0], "results.json: cannot be read (No such file or directory)")

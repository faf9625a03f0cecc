"""bench/run's report generator on a small canned run (no benchmark is run:
bench/run itself takes minutes and is not part of the suite): the clinlog
and PostgreSQL rows carry their ratios, a missed target is said plainly,
a step that failed is named and its figures show as missing, the 3-node
rows are set against etcd with the 1.5x target, the fan-out rows against
etcd's Watch and the writer alone, a skipped etcd step is said so, and
the plots (one per scenario family against concurrency, shown in its
section) are drawn when gnuplot is installed. The audit trail's and the
decision-support sections and bench/run --check are test_bench_sections.py's
(on the canned run of this file); the steps' C side on real servers is
test_bench_steps.py's."""
import copy
import importlib.machinery
import importlib.util
import json
import os
import shutil
import unittest

import common

RUN = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                   "bench", "run")


def load_run():
    loader = importlib.machinery.SourceFileLoader("clinlog_bench_run", RUN)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def grpc_row(bs, conc, eps, store):
    return {"batch": bs, "concurrency": conc, "grpc_events_per_s": eps, "grpc_p50_ms": 1.5,
            "grpc_p90_ms": 2.5, "grpc_p99_ms": 4.0, "grpc_p999_ms": 9.0,
            "server_cpu_us_per_event": 120.0, "client_cpu_us_per_event": 30.0,
            "fsyncs_per_event": 0.5, "store_events_per_s": store, "store_p50_ms": 1, "store_p99_ms": 2,
            "ratio": round(eps / store, 3)}


def pg_row(bs, conc, eps):
    return {"batch": bs, "concurrency": conc, "events": 1000, "events_per_s": eps,
            "p50_ms": 0.5, "p90_ms": 0.9, "p99_ms": 2.0, "p999_ms": 5.0,
            "server_cpu_us_per_event": 80.0, "client_cpu_us_per_event": 20.0,
            "fsyncs_per_event": 0.25, "server_pss_mb": 150.0}


def etcd_row(conc, eps):
    return {"batch": 1, "concurrency": conc, "events": 1000, "events_per_s": eps,
            "p50_ms": 2.0, "p90_ms": 3.0, "p99_ms": 6.0, "p999_ms": 9.0,
            "server_cpu_us_per_event": 300.0, "client_cpu_us_per_event": 60.0,
            "fsyncs_per_event": 0.7}


CANNED = {
    "started": "2026-01-02 03:04:05 UTC", "mode": "quick", "errors": [],
    "machine": {"cpu_model": "Test CPU", "cores": 2, "memory_mb": 4096, "kernel": "Linux 6.1",
                "arch": "x86_64", "libraries": {"postgresql-15": "15.18", "libraft-dev": None}},
    "raw": {"fsync": {"p50_ms": 0.2, "p99_ms": 0.9, "per_s": 5000},
            "fsync_written": {"p50_ms": 0.15, "p99_ms": 0.5, "per_s": 6000},
            "ed25519": {"sign_per_s_1": 50000, "sign_per_s_2": 99000, "verify_per_s_1": 20000,
                        "verify_per_s_2": 39000},
            "sha256": {"event_bytes": 288, "hashes_per_s": 1000000, "mb_per_s": 288.0}},
    "raw_rocksdb": {"scenarios": [
        {"batch": 1, "threads": 1, "signatures": "batch", "store_events_per_s": 3000,
         "raw_events_per_s": 8000, "raw4_events_per_s": 6000},
        {"batch": 64, "threads": 8, "signatures": "batch", "store_events_per_s": 60000,
         "raw_events_per_s": 250000, "raw4_events_per_s": 150000}]},
    "clinlog_single": {
        "append": [grpc_row(1, 1, 1500, 3000), grpc_row(1, 64, 25000, 30000),
                   grpc_row(64, 16, 30000, 60000)],
        "server_peak_rss_mb": 300.0,
        "targets": {"batch64_ratio_min": 0.5, "batch64_ratio_ok": False,
                    "single_event_conc64_events_per_s": 25000,
                    "single_event_conc64_ok": True}},
    "postgresql": {"scenarios": [pg_row(1, 1, 5000), pg_row(1, 64, 12500),
                                 pg_row(64, 16, 120000)]},
}


def _get_row(rows, batch, conc):
    return [x for x in rows if x["batch"] == batch and x["concurrency"] == conc][0]


class ReportCase:
    """bench/run loaded once a class; report(results) combines a copy of
    results and makes its report: (combined, report.md's text)."""

    @classmethod
    def setUpClass(cls):
        cls.br = load_run()

    def report(self, results):
        r = self.br.combine(copy.deepcopy(results))
        return r, self.br.make_report(r)


class TestBenchReport(ReportCase, unittest.TestCase):

    def test_rows_ratios_and_targets(self):
        r, text = self.report(CANNED)
        # clinlog / PostgreSQL and clinlog / raw RocksDB (4 puts per event, 8 threads)
        self.assertIn("| 64 | 16 | 30,000 | 120,000 | 0.25 | >= 1.5 x PG | **MISSED** | "
                      "150,000 (8) | 0.20 |", text)
        self.assertIn("| 1 | 64 | 25,000 | 12,500 | 2.00 | >= 1.0 x PG | MET |", text)
        self.assertIn("| 1 | 1 | 1,500 | 5,000 | 0.30 | >= 0.7 x PG | **MISSED** |", text)
        self.assertIn(">= 20,000 ev/s | MET |", text)
        self.assertIn(">= 0.70 x store (0.50) | **MISSED** |", text)
        self.assertIn("- **MISSED**: gRPC Append vs the store in-process", text)
        self.assertIn("Targets: 2 met, 4 missed, 20 not measured in this run.", text)
        # issue 13's one-node targets: against PostgreSQL at each concurrency, batches of
        # 64 at the lowest, the store in process against raw RocksDB at batch 64
        tg = {t["name"]: (t["value"], t["met"]) for t in r["targets"]}
        pg = "1 node against PostgreSQL 15, single-event appends, concurrency %d"
        self.assertEqual(tg[pg % 1], (0.3, False))
        self.assertEqual(tg[pg % 16], (None, None))  # not in the run: not measured
        self.assertEqual(tg[pg % 64], (2.0, True))
        self.assertEqual(tg["1 node against PostgreSQL 15, batches of 64 (lowest of conc "
                            "1/16/64)"], (0.25, False))
        self.assertEqual(tg["store in process against raw RocksDB synced writes of the same "
                            "bytes, batch 64 (lowest of 1 and 8 threads)"], (0.24, False))
        self.assertIn("- **MISSED**: 1 node against PostgreSQL 15, single-event appends, "
                      "concurrency 1: 0.30 x (target >= 0.7 x PostgreSQL).", text)
        self.assertIn("| 250,000 / 150,000 ev/s (store: 60,000, store / 1 put 0.24) |", text)
        self.assertNotIn("no target for clinlog against PostgreSQL", text)
        self.assertIn("clinlog 0.30.", text)  # 1500 against 5000 fsyncs/s
        # and against the same writes into written space (how a WAL writes)
        self.assertIn("Into written space, as a WAL writes (6,000/s): clinlog 0.25.", text)
        self.assertIn("| the same into written space (a file written and synced first) | "
                      "p50 0.150 ms, p99 0.500 ms, 6,000/s |", text)
        old = dict(CANNED, raw={k: v for k, v in CANNED["raw"].items() if k != "fsync_written"})
        _, old_text = self.report(old)  # a result from before the figure: no line for it
        self.assertIn("clinlog 0.30.", old_text)
        self.assertNotIn("written space", old_text)
        self.assertIn("| CPU | Test CPU, 2 cores |", text)
        self.assertIn("| libraft-dev | not installed |", text)
        self.assertIn("| 1 | 1 | 120.0 | 30.0 | 0.500 | 80.0 | 20.0 | 0.250 | 150 |", text)
        row = [x for x in r["comparisons"] if x["batch"] == 64][0]
        self.assertEqual(row["clinlog_over_postgresql"], 0.25)
        self.assertEqual(row["clinlog_over_raw_rocksdb"], 0.2)
        # the HL7 step did not run: said so, not zeros
        self.assertIn("## HL7 v2 over MLLP (clinlog-bench ingest hl7)\n\nNot measured in this "
                      "run.", text)

    def test_ingest_hl7_rows_and_targets(self):
        res = copy.deepcopy(CANNED)
        res["ingest_hl7"] = {"mix": "2 ADT^A01, 4 ORU^R01 (5 OBX), 2 RDE^O11, 2 RAS^O17 per 10",
                             "ok": True, "scenarios": [
                                 {"connections": c, "mllp_over_store": round(m / st, 3),
                                  "mllp_over_postgresql": round(m / pg, 3),
                                  "mllp_tls_over_mllp": round(t / m, 3),
                                  "mllp": {"messages": 100, "acked": 100, "events": 320,
                                           "messages_per_s": m, "events_per_s": m * 3.2,
                                           "p50_ms": p50, "p99_ms": p99,
                                           "server_cpu_us_per_message": 800.0},
                                  "mllp_tls": {"messages": 100, "acked": 100, "events": 320,
                                               "messages_per_s": t, "events_per_s": t * 3.2,
                                               "p50_ms": p50 + 0.5, "p99_ms": p99 + 2,
                                               "server_cpu_us_per_message": 880.0},
                                  "store": {"messages": 100, "acked": 100, "events": 320,
                                            "messages_per_s": st, "events_per_s": st * 3.2,
                                            "p50_ms": 0.4, "p99_ms": 1.0},
                                  "postgresql": {"messages": 100, "acked": 100, "events": 320,
                                                 "messages_per_s": pg, "events_per_s": pg * 3.2,
                                                 "p50_ms": 0.2, "p99_ms": 0.5}}
                                 for c, m, t, st, pg, p50, p99 in (
                                     (1, 1000, 800, 2000, 4000, 0.9, 3.0),
                                     (16, 4000, 3600, 8000, 10000, 4.0, 25.0))],
                             "tls": {"protocol": "TLSv1.3 TLS_AES_256_GCM_SHA384",
                                     "client_certificate": True},
                             "targets": {"messages_per_s_16": 4000, "messages_per_s_16_ok": False,
                                         "ack_p99_ms_16": 25.0, "ack_p99_ms_16_ok": False}}
        r, text = self.report(res)
        # a row per path: MLLP over TLS beside plaintext MLLP, the fdatasync rate of
        # step 1 (5,000/s in CANNED) beside the store as its raw limit
        self.assertIn("| 16 | MLLP, plaintext | 100 | 4,000 | 12,800 | 4.00 | 25.00 | 800 |  |\n"
                      "| 16 | MLLP over TLS | 100 | 3,600 | 11,520 | 4.50 | 27.00 | 880 "
                      "| TLS / plaintext 0.90 |\n"
                      "| 16 | store in process | 100 | 8,000 | 25,600 | 0.40 | 1.00 | — "
                      "| MLLP / store 0.50 |\n"
                      "| 16 | raw limit: fdatasync (step 1) | — | 5,000 | — | 0.20 | 0.90 | — "
                      "| store / fdatasync 1.60 |\n"
                      "| 16 | PostgreSQL 15 | 100 | 10,000 | 32,000 | 0.20 | 0.50 | — "
                      "| MLLP / PostgreSQL 0.40 |\n", text)
        self.assertIn("| 1 | MLLP over TLS | 100 | 800 | 2,560 | 1.40 | 5.00 | 880 "
                      "| TLS / plaintext 0.80 |", text)
        self.assertIn("| 1 | raw limit: fdatasync (step 1) | — | 5,000 | — | 0.20 | 0.90 | — "
                      "| store / fdatasync 0.40 |", text)
        self.assertIn("over TLS (TLSv1.3 TLS_AES_256_GCM_SHA384, the server's certificate", text)
        # and in results.json
        tls = [x for x in r["ingest_hl7_rows"] if x["path"] == "MLLP over TLS"]
        self.assertEqual([(x["connections"], x["ratio"]) for x in tls], [(1, 0.8), (16, 0.9)])
        fd = [x for x in r["ingest_hl7_rows"] if x["ratio_of"] == "store / fdatasync"]
        self.assertEqual([(x["messages_per_s"], x["ratio"]) for x in fd], [(5000, 0.4),
                                                                          (5000, 1.6)])
        # a run without TLS: no row, and why
        for sc in res["ingest_hl7"]["scenarios"]:
            sc["mllp_tls"] = None
        res["ingest_hl7"]["tls_skipped"] = "not asked for (--no-tls)"
        r, text = self.report(res)
        self.assertNotIn("MLLP over TLS |", text)
        self.assertIn("MLLP over TLS skipped: not asked for (--no-tls)", text)
        self.assertIn("- **MISSED**: HL7 v2 over MLLP, ACK after commit, 16 connections: 4,000 "
                      "messages/s (target >= 10000).", text)
        self.assertIn("- **MISSED**: HL7 v2 over MLLP, ACK p99, 16 connections: 25.00 ms "
                      "(target <= 20 ms).", text)
        self.assertIn("Targets: 2 met, 6 missed, 18 not measured in this run.", text)
        # the cluster did not run: said so, not zeros
        self.assertIn("## 3 nodes against 1 node\n\nNot measured in this run.", text)
        self.assertIn("## Subscribe fan-out (single node)\n\nNot measured in this run.", text)

    def test_ingest_fhir_and_device_rows(self):
        res = copy.deepcopy(CANNED)
        row = lambda rps, p50=1.0, p99=4.0, cpu=None: dict(
            {"units": 10, "accepted": 10, "resources": 110, "units_per_s": rps / 11,
             "resources_per_s": rps, "p50_ms": p50, "p99_ms": p99},
            **({"server_cpu_us_per_resource": cpu} if cpu else {}))
        res["ingest_fhir"] = {
            "record": "Patient, Encounter, ... (11 resources)", "ok": True,
            "transactions": [
                {"connections": 1, "rest": row(2000, cpu=250.0), "store": row(10000),
                 "postgresql": row(8000), "rest_over_store": 0.2, "rest_over_postgresql": 0.25},
                {"connections": 16, "rest": row(6000, 20.0, 50.0, 240.0), "store": row(40000),
                 "postgresql": row(30000), "rest_over_store": 0.15,
                 "rest_over_postgresql": 0.2}],
            "ndjson": {"cli": dict(row(5000, cpu=70.0), p50_ms=None), "store": row(6000),
                       "postgresql": row(10000), "cli_over_store": 0.833,
                       "cli_over_postgresql": 0.5}}
        res["ingest_devices"] = [
            {"bench": "ingest", "what": "clinlog", "streams": 1, "batch": 500, "rps": 15000,
             "p50_ms": 20.0, "p99_ms": 100.0, "vs_raw": 0.5, "vs_pg": 0.4},
            {"bench": "ingest", "what": "clinlog", "streams": 16, "batch": 500, "rps": 30000,
             "p50_ms": 200.0, "p99_ms": 300.0, "vs_raw": 1.0, "vs_pg": 0.3},
            {"bench": "ingest", "what": "PostgreSQL COPY", "streams": 1, "batch": 500,
             "rps": 100000, "p50_ms": 4.0, "p99_ms": 9.0}]
        _, text = self.report(res)
        self.assertIn("| transactions | 16 | 6,000 | 20.00 | 50.00 | 240 | 40,000 | 0.15 | "
                      "30,000 | 0.20 |", text)
        self.assertIn("| NDJSON | 1 | 5,000 | — | 4.00 | 70 | 6,000 | 0.83 | 10,000 | 0.50 |",
                      text)
        self.assertIn("| clinlog | 16 | 30,000 | 200.00 | 300.00 | 1.00 | 0.30 |", text)
        self.assertIn("| PostgreSQL COPY | 1 | 100,000 | 4.00 | 9.00 | — | — |", text)
        # the best of the clinlog rows against the 50k target
        self.assertIn("- **MISSED**: home-device readings, best of 1 and 16 streams: 30,000 "
                      "readings/s (target >= 50000).", text)

    def test_proof_rows(self):
        res = copy.deepcopy(CANNED)
        x = lambda v, p50=0.01, p99=0.02: {"per_s": v, "p50_ms": p50, "p99_ms": p99}
        res["proof"] = {
            "events": 50003, "ok": True,
            "raw": {"node_hashes_per_s": 2000000, "leaf_hash_mb_per_s": 250.0,
                    "ed25519_verify_per_s": 20000},
            "inclusion": {"mean_hashes": 15.9, "prove_1": x(17000), "prove_2": x(20000),
                          "verify": x(120000), "verify_over_raw": 0.954},
            "consistency": {"mean_hashes": 15.1, "prove_1": x(18000), "prove_2": x(22000),
                            "verify": x(90000)},
            "grpc_inclusion": {"concurrency_1": x(300, 0.9, 40.0),
                               "concurrency_16": x(2500, 5.3, 16.0),
                               "audit_off_concurrency_1": x(2000, 0.35, 3.8),
                               "audit_off_concurrency_16": x(6300, 2.2, 7.0),
                               "over_in_process_2": 0.125},
            "verify_log": {"hashes_only_events_per_s": 250000, "full_events_per_s": 80000,
                           "signatures": 53, "decrypted": 50003, "hashes_only_over_raw": 0.39,
                           "full_over_raw": 0.12}}
        _, text = self.report(res)
        self.assertIn("| inclusion verify, 1 thread | 120,000 | 0.010 | 0.020 |", text)
        self.assertIn("| gRPC ProveInclusion, concurrency 16 | 2,500 | 5.300 | 16.000 |", text)
        self.assertIn("| the same, --audit off, concurrency 1 | 2,000 | 0.350 | 3.800 |", text)
        self.assertIn("verification runs at 0.95 of the node-hash limit", text)
        self.assertIn("250,000 events/s hashes only (0.39 of the leaf-hash limit)", text)
        self.assertNotIn("proof and verify rates", text)
        # not run: said so
        _, text = self.report(CANNED)
        self.assertIn("## Proofs and verify (clinlog-bench proof)\n\nNot measured in this run.",
                      text)

    def test_fanout_rows(self):
        res = copy.deepcopy(CANNED)
        res["clinlog_fanout"] = {
            "fanout_raw": {"subscribers": 0, "writer_events_per_s": 25000, "append_p50_ms": 2.0,
                           "append_p99_ms": 6.0},
            "fanout": [
                {"subscribers": n, "writer_events_per_s": w, "per_subscriber_events_per_s_min": lo,
                 "per_subscriber_events_per_s_mean": mean, "latency_p50_ms": 1.5,
                 "latency_p99_ms": p99, "sent_to_delivery_p50_ms": s50,
                 "sent_to_delivery_p99_ms": 2 * p99, "server_cpu_us_per_event": 50.0}
                for n, w, lo, mean, p99, s50 in
                ((10, 20000, 19000, 19500, 8.0, 3.0), (100, 9000, 8500, 8800, 40.25, 20.0))] + [
                # the same 10 subscribers asking for EventBatch messages
                {"subscribers": 10, "batch": True, "writer_events_per_s": 30000,
                 "per_subscriber_events_per_s_min": 29000,
                 "per_subscriber_events_per_s_mean": 29500, "sent_to_delivery_p50_ms": 1.5,
                 "sent_to_delivery_p99_ms": 5.0}]}
        res["etcd_watch"] = {
            "server_version": "3.4.23", "members": 1,
            "fanout_raw": {"watchers": 0, "writer_events_per_s": 50000, "txn_p50_ms": 1.0,
                           "txn_p99_ms": 3.0},
            # only 10 watchers ran: the 100 row has clinlog's figures alone
            "fanout": [{"watchers": 10, "writer_events_per_s": 40000,
                        "per_watcher_events_per_s_min": 39000,
                        "per_watcher_events_per_s_mean": 39500, "sent_to_delivery_p50_ms": 1.5,
                        "sent_to_delivery_p99_ms": 4.0, "server_cpu_us_per_event": 20.0}]}
        r, text = self.report(res)
        # 20000 / 40000 = 0.50 of etcd, 20000 / 25000 = 0.80 of the writer alone,
        # etcd 40000 / 50000 = 0.80 of its own
        self.assertIn("| 10 | 20,000 | 40,000 | 0.50 | 25,000 | 0.80 | 0.80 |", text)
        self.assertIn("| 100 | 9,000 | — | — | 25,000 | 0.36 | — |", text)
        self.assertIn("| 10 | 19,500 / 19,000 | 39,500 / 39,000 | 0.49 |", text)
        # send-to-delivery 3.0 / 1.5 = 2.0 x etcd's p50, 16 / 4 = 4.0 x its p99;
        # 3.0 / 2.0 (the Append alone) = 1.5 x the raw floor
        self.assertIn("| 10 | 3.00 / 16.00 | 1.50 / 4.00 | 2.00 / 4.00 | 1.50 / 8.00 "
                      "| 2.00 / 6.00 | 1.5 |", text)
        # the batched row against the same etcd row: 30000 / 40000, 30000 / 25000
        self.assertIn("| 10 batched | 30,000 | 40,000 | 0.75 | 25,000 | 1.20 | 0.80 |", text)
        self.assertIn("| 10 batched | 1.50 / 5.00 | 1.50 / 4.00 | 1.00 / 1.25 |", text)
        self.assertIn("10 subscribers: clinlogd 50.0, etcd 20.0; 100 subscribers: clinlogd "
                      "50.0, etcd —; 10 batched subscribers: clinlogd —, etcd 20.0.", text)
        row = [x for x in r["fanout_rows"] if x["subscribers"] == 10 and not x["batch"]][0]
        self.assertEqual(row["clinlog_over_etcd_writer"], 0.5)
        self.assertEqual(row["clinlog_over_raw_writer"], 0.8)
        self.assertEqual(row["clinlog_over_etcd_p99"], 4.0)

    def test_etcd_watch_skipped_is_said(self):
        res = copy.deepcopy(CANNED)
        res["clinlog_fanout"] = {"fanout": [
            {"subscribers": 10, "writer_events_per_s": 20000, "sent_to_delivery_p50_ms": 3.0}]}
        res["etcd_watch_skipped"] = "clinlog-bench etcd-watch: skipped: etcd not found"
        r, text = self.report(res)
        self.assertIn("etcd-watch step skipped: clinlog-bench etcd-watch: skipped: etcd not "
                      "found", text)
        self.assertIn("| 10 | 20,000 | — | — | — | — | — |", text)
        self.assertIsNone(r["fanout_rows"][0]["clinlog_over_etcd_writer"])

    def test_etcd_peer_of_the_three_node_rows(self):
        res = copy.deepcopy(CANNED)
        res["clinlog_cluster"] = {"throughput": [
            {"batch": 1, "concurrency": c, "cluster_events_per_s": eps, "cluster_p50_ms": 5.0,
             "cluster_p99_ms": 20.0, "single_events_per_s": 4000,
             "server_cpu_us_per_event": 400.0, "client_cpu_us_per_event": 50.0,
             "fsyncs_per_event": 1.25}
            for c, eps in ((16, 9000), (64, 9000))], "node_peak_rss_mb": [300.5, 280.0, 281.0]}
        res["etcd"] = {"server_version": "3.4.23", "value_bytes": 288, "scenarios": [
            etcd_row(1, 1000), etcd_row(16, 5000), etcd_row(64, 8000)]}
        r, text = self.report(res)
        # 9000 / 5000 = 1.80 >= 1.5: MET; 9000 / 8000 = 1.125: MISSED; conc 1 etcd alone
        self.assertIn("| 16 | 9,000 | 5,000 | 1.80 | >= 1.5 x etcd | MET |", text)
        self.assertIn("| 64 | 9,000 | 8,000 | 1.12 | >= 1.5 x etcd | **MISSED** |", text)
        self.assertIn("| 1 | — | 1,000 | — | — | — |", text)
        self.assertIn("- **MISSED**: 3 nodes against etcd 3.4 (3 members), single-event "
                      "appends, concurrency 64: 1.12 x (target >= 1.5 x etcd).", text)
        self.assertIn("| 16 | 5.00 | 20.00 | 2.00 | 3.00 | 6.00 | 9.00 | 300.0 | 60.0 | 0.700 "
                      "| 400.0 | 50.0 | 1.250 |", text)
        # the 3-node CPU, fsyncs and memory under "3 nodes against 1 node"
        self.assertIn("| 1 | 64 | 400.0 | 50.0 | 1.250 |", text)
        self.assertIn("after the 3-node scenarios: 300.5 / 280.0 / 281.0 MiB.", text)
        row = [x for x in r["etcd_rows"] if x["concurrency"] == 16][0]
        self.assertEqual(row["clinlog_over_etcd"], 1.8)
        # the cluster step runs concurrency 1 too: clinlog's row beside etcd's, no target
        res["clinlog_cluster"]["throughput"].insert(0, dict(
            res["clinlog_cluster"]["throughput"][0], concurrency=1, cluster_events_per_s=900))
        r, text = self.report(res)
        self.assertIn("| 1 | 900 | 1,000 | 0.90 | — | — |", text)

    def test_half_load_says_when_it_started(self):
        res = copy.deepcopy(CANNED)
        hl = {"batch": 64, "concurrency": 16, "offered_events_per_s": 6000,
              "achieved_events_per_s": 5990, "p50_ms": 6.5, "p99_ms": 40.25,
              "p50_from_send_ms": 6.0, "p99_from_send_ms": 39.0, "settle_s": 1.53,
              "slowest": [[0.612, 46.25], [0.618, 44.0], [2.5, 21.0]],
              "single_node_same_rate": {"achieved_events_per_s": 5995, "p50_ms": 3.0,
                                        "p99_ms": 20.5, "settle_s": 0.3}}
        res["clinlog_cluster"] = {"throughput": [
            {"batch": 64, "concurrency": 16, "cluster_events_per_s": 12000,
             "cluster_p50_ms": 50.0, "cluster_p99_ms": 90.0, "single_events_per_s": 26000}],
            "half_load": hl}
        _, text = self.report(res)
        self.assertIn("open loop at 6,000 ev/s): achieved 5,990 ev/s, p50 6.50 ms, p99 40.25 ms "
                      "(one node at the same rate: p99 20.50 ms); it started once the nodes were "
                      "idle, 1.5 s after the scenario before.", text)
        self.assertIn("Its slowest calls, started at (s into the run): latency (ms): 0.612: 46.2, "
                      "0.618: 44.0, 2.500: 21.0; calls started close together", text)
        hl["settle_s"] = -1
        _, text = self.report(res)
        self.assertIn("(one node at the same rate: p99 20.50 ms); the nodes were still busy when "
                      "the wait for them to go idle ended (started anyway).", text)
        del hl["settle_s"]  # a result from before the wait
        _, text = self.report(res)
        self.assertIn("(one node at the same rate: p99 20.50 ms).", text)
        self.assertNotIn("Quiet writes", text)  # a result from before them

    def test_quiet_writes_beside_one_node(self):
        res = copy.deepcopy(CANNED)
        res["clinlog_cluster"] = {"throughput": [
            {"batch": 1, "concurrency": 1, "cluster_events_per_s": 500,
             "cluster_p50_ms": 2.0, "cluster_p99_ms": 4.0, "single_events_per_s": 1000}],
            "half_load": {"offered_events_per_s": 6000, "achieved_events_per_s": 5990,
                          "p50_ms": 6.5, "p99_ms": 40.25},
            "quiet_writes": {"calls_per_s": 2, "calls": 8, "p50_ms": 2.25, "p99_ms": 3.5,
                             "max_ms": 3.75, "single_node": {"calls": 8, "p50_ms": 1.5,
                                                             "p99_ms": 2.0, "max_ms": 2.125}}}
        _, text = self.report(res)
        self.assertIn("Quiet writes (one event a call, open loop at 2 a second, 8 calls: each "
                      "after a pause): p50 2.25 ms, slowest 3.75 ms (one node: p50 1.50 ms, "
                      "slowest 2.12 ms).", text)

    def test_postgresql_with_standbys_beside_three_nodes(self):
        res = copy.deepcopy(CANNED)
        res["clinlog_cluster"] = {"throughput": [
            {"batch": b, "concurrency": c, "cluster_events_per_s": eps, "cluster_p50_ms": 5.0,
             "cluster_p99_ms": 20.0, "single_events_per_s": 4000}
            for b, c, eps in ((1, 16, 4000), (1, 64, 7000), (64, 16, 50000))]}
        res["postgresql_replicated"] = {"standbys": 2, "synchronous_quorum": 1, "scenarios": [
            pg_row(1, 16, 5000), pg_row(1, 64, 10000), pg_row(64, 16, 40000),
            pg_row(64, 64, 60000)]}
        r, text = self.report(res)
        self.assertIn("a primary and 2 streaming standbys", text)
        # rows only where both ran: batch 64 conc 64 has no clinlog figure
        self.assertIn("| 1 | 16 | 4,000 | 20.00 | 5,000 | 2.00 | 80.0 | 0.80 |", text)
        self.assertIn("| 64 | 16 | 50,000 | 20.00 | 40,000 | 2.00 | 80.0 | 1.25 |", text)
        self.assertEqual(len(r["pg_replicated_rows"]), 3)
        self.assertNotIn("PostgreSQL with synchronous standbys;", text)
        res["postgresql_replicated_skipped"] = "PostgreSQL 15 is not installed"
        del res["postgresql_replicated"]
        _, text = self.report(res)
        self.assertIn("PostgreSQL step skipped: PostgreSQL 15 is not installed", text)

    def test_failover_lag_and_join(self):
        res = copy.deepcopy(CANNED)
        res["clinlog_failover"] = {"failover": {
            "writers": 4, "batch": 1, "appends_ok": 5210, "retries": 2459,
            "trials": [{"killed_node": 1, "seconds": 1.551, "rejoin_seconds": 1.349},
                       {"killed_node": 2, "seconds": 3.5, "rejoin_seconds": 1.188}],
            "max_s": 3.5, "median_s": 3.5,
            "follower_lag": {"samples": 58, "p50_entries": 2, "p99_entries": 103,
                             "max_entries": 103},
            "timeline": {"tick_s": 0.1, "kills_s": [0.25], "first_append_s": [0.45],
                         "appends_per_s": [800, 600, 0, 0, 1000]}},
            "targets": {"failover_max_s": 3.5, "failover_ok": False}}
        res["clinlog_join_skipped"] = self.br.runext.QUICK_SKIP["cluster-join"]
        r, text = self.report(res)
        self.assertIn("| 2 | 2 | 3.500 | 1.19 |", text)
        self.assertIn("- **MISSED**: 3 nodes: failover, leader killed to the first append "
                      "after it (worst trial): 3.50 s (target <= 3 s).", text)
        # the lag in entries, beside the mean rate of the timeline (2400 / 5)
        self.assertIn("p50 2, p99 103, worst 103 Raft entries behind the leader's last index "
                      "(at the run's mean 480 appends/s", text)
        self.assertIn("Node join: not run in --quick (", text)
        if shutil.which("gnuplot"):
            out = os.path.join(common.TMP, "bench-report-failover")
            self.assertIn("failover.svg", self.br.plots(r, out))
            with open(os.path.join(out, "plots", "failover.dat")) as f:
                self.assertEqual(f.read().split("\n")[2], "0.3 0")
            with open(os.path.join(out, "plots", "failover.gp")) as f:
                self.assertIn("set arrow from 0.250, graph 0 to 0.250, graph 1", f.read())
        # join ran (the full run): its figures, the memory target judged
        res["clinlog_join"] = {"join": {
            "events_loaded": 100000, "batch": 1000, "load_events_per_s": 11023,
            "caught_up": True, "catch_up_s": 6.469, "add_node_s": 6.522,
            "rss_mb": {"idle": 82.9, "p25": 251.8, "p50": 362.0, "p75": 417.0, "p100": 438.3},
            "peak_rss_mb_sampled": 450.5, "source_rss_mb": 520.3},
            "targets": {"join_rss_growth_50_100_mb": 76.3, "join_memory_bounded": False}}
        _, text = self.report(res)
        self.assertIn("then an empty member added: caught up after 6.47 s", text)
        self.assertIn("| 3 nodes: a joining node's RSS growth over the second half of its "
                      "catch-up | < 64 MiB | 76.30 MiB | **MISSED** |", text)

    def test_append_stream_import(self):
        res = copy.deepcopy(CANNED)
        _, text = self.report(res)
        self.assertIn("## AppendStream bulk import (single node)\n\nNot measured in this run.",
                      text)
        res["postgresql"]["scenarios"].append(pg_row(64, 1, 40000))
        res["clinlog_import"] = {"append": [], "append_stream": {
            "events": 25000, "batch": 1000, "grpc_events_per_s": 26000,
            "store_events_per_s": 52000, "ratio": 0.5}}
        _, text = self.report(res)
        self.assertIn("25,000 pre-signed events in batches of 1,000", text)
        self.assertIn("| clinlog AppendStream | 26,000 | — |", text)
        self.assertIn("| store in process, same batches | 52,000 | 0.50 |", text)
        # against PostgreSQL's 64-event transactions on one connection
        self.assertIn("| PostgreSQL, 64 events a transaction, 1 connection | 40,000 | 0.65 |",
                      text)
        del res["postgresql"]
        _, text = self.report(res)
        self.assertIn("| PostgreSQL, 64 events a transaction, 1 connection | — | — |", text)

    def test_fhir_views_rows_and_targets(self):
        res = copy.deepcopy(CANNED)
        r, text = self.report(res)
        self.assertIn("## FHIR views (clinlog-bench fhir)\n\nNot measured in this run.", text)
        catch = [t for t in r["targets"] if t["name"].startswith("FHIR views: projection")]
        self.assertEqual(len(catch), 1)
        self.assertIsNone(catch[0]["met"], "not measured: not judged")
        res["fhir_views"] = [
            {"machine": "x", "patients": 1000, "events": 98771, "generate_s": 2.0,
             "read_eps": 700000, "catchup_eps": 38000, "catchup_ratio": 0.054,
             "catchup_cpu_us": {"fold": 18.3, "writer": 21.5, "rocksdb": 5.1},
             "settle_s": 2.4, "settle_rocksdb_us": 0.7},
            {"query": "read Patient", "face": "REST", "n": 200, "p50_ms": 0.03,
             "p99_ms": 0.07, "entries": 0},
            {"query": "Observation?patient&code&date", "face": "REST", "n": 200,
             "p50_ms": 1.2, "p99_ms": 12.5, "entries": 6},
            {"query": "Observation?patient&code&date", "face": "pg", "n": 200,
             "p50_ms": 1.3, "p99_ms": 1.8, "entries": 6, "total": 6,
             "counts_match_engine": True},
            {"query": "Observation?patient&code&date", "compare": "REST/pg",
             "p50_ratio": 0.92, "p99_ratio": 6.9},
            {"query": "Patient/$everything (the big patient)", "face": "REST", "n": 20,
             "p50_ms": 16.0, "p99_ms": 19.0, "entries": 1000},
            {"bench": "fhir", "export": {"resources": 197738, "files": 19, "walk_s": 0.12,
                                         "read_s": 0.9, "resources_per_s": 196000}},
            {"pg": "export", "resources": 197738, "resources_per_s": 173000,
             "clinlog_over_pg": 1.13}]
        r, text = self.report(res)
        self.assertIn("Catch-up: 38,000 events/s (0.054 of the read floor, 700,000 events/s); "
                      "CPU per event: the fold 18.3 µs, its writer 21.5 µs", text)
        self.assertIn("the flushes and compactions it left settled in 2.4 s (0.7 µs an "
                      "event more), and the queries start after", text)
        self.assertIn("| Observation?patient&code&date | REST | 1.200 | 12.500 | 6 | "
                      "1.300 / 1.800 | 0.92 |", text)
        self.assertIn("PostgreSQL's COPY of the same: 173,000 resources/s (clinlog / "
                      "PostgreSQL 1.13)", text)
        met = {t["name"]: t["met"] for t in r["targets"] if t["name"].startswith("FHIR views")}
        self.assertFalse(met["FHIR views: projection catch-up from event 1"])
        self.assertTrue(met["FHIR views: read Patient, REST, p99"])
        self.assertFalse(met["FHIR views: Observation?patient&code&date, REST, p99"],
                         "12.5 ms against 10")
        self.assertTrue(met["FHIR views: Patient/$everything (the big patient), REST, p99"])
        self.assertTrue(met["FHIR views: bulk export, system level"])
        self.assertIn("FHIR views: projection catch-up from event 1", text)

    def test_latency_cdf_plots(self):
        if not shutil.which("gnuplot"):
            self.skipTest("gnuplot is not installed")
        res = copy.deepcopy(CANNED)
        cdf = lambda k: [[0.001, 0.0], [0.5, 1.0 * k], [0.99, 4.0 * k], [1.0, 9.0 * k]]
        res["clinlog_single"]["append"].append(dict(grpc_row(1, 16, 6000, 9000),
                                                    cdf_ms=cdf(2)))
        res["postgresql"]["scenarios"].append(dict(pg_row(1, 16, 15000), cdf_ms=cdf(1)))
        res["clinlog_cluster"] = {"throughput": [
            {"batch": 1, "concurrency": 16, "cluster_events_per_s": 5000, "cdf_ms": cdf(3)}]}
        res["etcd"] = {"scenarios": [dict(etcd_row(16, 4000), cdf_ms=cdf(4))]}
        out = os.path.join(common.TMP, "bench-report-cdf")
        r = self.br.combine(res)
        made = self.br.plots(r, out)
        self.assertEqual(made, ["throughput.svg", "latency.svg", "tp_1node_b1.svg",
                                "tp_1node_b64.svg", "tp_3nodes_b1.svg", "latency_cdf_1node.svg",
                                "latency_cdf_3nodes.svg"])
        # x: ms (log scale: a 0 ms quantile is left out), y: the fraction of calls
        with open(os.path.join(out, "plots", "latency_cdf_1node_1.dat")) as f:
            self.assertEqual(f.read(), "1.0 0.5\n4.0 0.99\n9.0 1.0\n")
        with open(os.path.join(out, "plots", "latency_cdf_3nodes.gp")) as f:
            gp = f.read()
        self.assertIn("title 'clinlog 3 nodes, unary Append to the leader'", gp)
        self.assertIn("title 'etcd 3.4, 3 members, Put'", gp)
        self.assertNotIn("standbys", gp)  # that step did not run: no line
        for m in made[2:]:
            with open(os.path.join(out, m)) as f:
                self.assertIn("<svg", f.read())

    def family_results(self):
        """CANNED with every scenario family's systems: 1 node (clinlog,
        PostgreSQL, raw RocksDB), 3 nodes (clinlog, etcd, PostgreSQL with
        standbys), HL7 over MLLP and FHIR transactions."""
        res = copy.deepcopy(CANNED)
        res["clinlog_single"]["append"] += [grpc_row(1, 16, 6000, 9000),
                                            grpc_row(64, 1, 20000, 40000),
                                            grpc_row(64, 64, 35000, 60000)]
        res["postgresql"]["scenarios"] += [pg_row(1, 16, 15000), pg_row(64, 1, 40000)]
        res["raw_rocksdb"]["scenarios"] += [
            {"batch": 1, "threads": 8, "signatures": "batch", "raw4_events_per_s": 14000},
            {"batch": 64, "threads": 1, "signatures": "batch", "raw4_events_per_s": 96000},
            {"batch": 64, "threads": 8, "signatures": "per-event", "raw4_events_per_s": 1}]
        res["clinlog_cluster"] = {"throughput": [
            {"batch": b, "concurrency": c, "cluster_events_per_s": eps}
            for b, c, eps in ((1, 1, 900), (1, 16, 4000), (1, 64, 7000), (64, 16, 30000),
                              (64, 64, 41000))]}
        res["etcd"] = {"scenarios": [etcd_row(1, 1000), etcd_row(16, 5000), etcd_row(64, 8000)]}
        res["postgresql_replicated"] = {"standbys": 2, "scenarios": [
            pg_row(1, 16, 5000), pg_row(64, 16, 40000)]}
        res["ingest_hl7"] = {"scenarios": [
            {"connections": c, "mllp": {"messages_per_s": m}, "store": {"messages_per_s": 2 * m},
             "postgresql": {"messages_per_s": 3 * m}, "mllp_tls": {"messages_per_s": m - 100}}
            for c, m in ((1, 1000), (16, 4000))]}
        res["ingest_fhir"] = {"transactions": [
            {"connections": c, "rest": {"resources_per_s": v}, "store": {"resources_per_s": 5 * v},
             "postgresql": {}} for c, v in ((1, 2000), (16, 6000))]}
        return res

    def test_throughput_plot_per_scenario_family(self):
        if not shutil.which("gnuplot"):
            self.skipTest("gnuplot is not installed")
        out = os.path.join(common.TMP, "bench-report-families")
        shutil.rmtree(out, ignore_errors=True)
        r = self.br.combine(self.family_results())
        r["plots"] = self.br.plots(r, out)
        fams = ["tp_1node_b1.svg", "tp_1node_b64.svg", "tp_3nodes_b1.svg", "tp_3nodes_b64.svg",
                "tp_ingest_hl7.svg", "tp_ingest_fhir.svg"]
        self.assertEqual([p for p in r["plots"] if p.startswith("tp_")], fams)
        for p in fams:
            with open(os.path.join(out, p)) as f:
                self.assertIn("<svg", f.read(), p)
        d = os.path.join(out, "plots")

        def dat(name):
            with open(os.path.join(d, name + ".dat")) as f:
                return f.read()
        # one line per system, events/s against concurrency (raw RocksDB: its threads)
        self.assertEqual(dat("tp_1node_b1_0"), "1 1500\n16 6000\n64 25000\n")
        self.assertEqual(dat("tp_1node_b1_1"), "1 5000\n16 15000\n64 12500\n")
        self.assertEqual(dat("tp_1node_b1_2"), "1 6000\n8 14000\n")
        self.assertEqual(dat("tp_1node_b64_2"), "1 96000\n8 150000\n")  # per-event row left out
        self.assertEqual(dat("tp_3nodes_b1_0"), "1 900\n16 4000\n64 7000\n")
        self.assertEqual(dat("tp_3nodes_b1_1"), "1 1000\n16 5000\n64 8000\n")
        self.assertEqual(dat("tp_3nodes_b1_2"), "16 5000\n")
        self.assertEqual(dat("tp_3nodes_b64_1"), "16 40000\n")
        self.assertEqual(dat("tp_ingest_hl7_2"), "1 3000\n16 12000\n")
        self.assertEqual(dat("tp_ingest_hl7_3"), "1 900\n16 3900\n")  # MLLP over TLS
        self.assertFalse(os.path.exists(os.path.join(d, "tp_ingest_fhir_2.dat")),
                         "PostgreSQL has no FHIR figure: no line")
        with open(os.path.join(d, "tp_3nodes_b1.gp")) as f:
            gp = f.read()
        for title in ("clinlog 3 nodes, unary Append to the leader", "etcd 3.4, 3 members, Put",
                      "PostgreSQL 15 + 2 synchronous standbys"):
            self.assertIn("title '%s'" % title, gp)
        self.assertIn("set xtics (1, 16, 64)", gp)
        # each shown in its family's section
        text = self.br.make_report(r)
        for sec, p in (("## clinlog (single node, gRPC)", "tp_1node_b1.svg"),
                       ("## clinlog (single node, gRPC)", "tp_1node_b64.svg"),
                       ("## 3 nodes: clinlog and etcd", "tp_3nodes_b1.svg"),
                       ("## 3 nodes: clinlog and PostgreSQL with", "tp_3nodes_b64.svg"),
                       ("## HL7 v2 over MLLP", "tp_ingest_hl7.svg"),
                       ("## FHIR writes", "tp_ingest_fhir.svg")):
            body = text.split(sec)[1].split("\n## ")[0]
            self.assertIn("against concurrency](%s)" % p, body, (sec, p))
        # --check: the run passes; a plot it links that is gone or not an SVG is named
        with open(os.path.join(out, "results.json"), "w") as f:
            json.dump(r, f)
        with open(os.path.join(out, "report.md"), "w") as f:
            f.write(text)
        problems = self.br.runext.check(out, [])
        self.assertEqual(problems, [])
        r["plots"].remove("tp_ingest_hl7.svg")
        with open(os.path.join(out, "results.json"), "w") as f:
            json.dump(r, f)
        with open(os.path.join(out, "tp_ingest_hl7.svg"), "w") as f:
            f.write("gnuplot: error\n")
        os.unlink(os.path.join(out, "tp_3nodes_b64.svg"))
        self.assertEqual(self.br.runext.check(out, []), [
            "plot tp_3nodes_b64.svg: cannot be read (No such file or directory)",
            "plot tp_ingest_hl7.svg: not an SVG"])
        # no plots drawn (no gnuplot): no links
        r["plots"] = []
        self.assertNotIn("against concurrency](", self.br.make_report(r))

    def test_raw_rocksdb_at_the_same_concurrency(self):
        res = copy.deepcopy(CANNED)
        res["raw"]["rocksdb"] = {"record_bytes": 438, "puts_per_event": 4, "scenarios": [
            {"batch": b, "threads": t, "events_per_s": eps, "p50_ms": 0.5, "p99_ms": 4.25}
            for b, t, eps in ((1, 1, 1200), (1, 16, 13000), (1, 64, 20000), (64, 1, 21000),
                              (64, 16, 60000), (64, 64, 40000))]}
        r, text = self.report(res)
        # each row against the raw writes at its own concurrency, not the store step's 1 or 8
        self.assertIn("| 64 | 16 | 30,000 | 120,000 | 0.25 | >= 1.5 x PG | **MISSED** | "
                      "60,000 (16) | 0.50 |", text)
        self.assertIn("| 1 | 64 | 25,000 | 12,500 | 2.00 | >= 1.0 x PG | MET | 20,000 (64) | 1.25 |",
                      text)
        self.assertIn("| 1 | 1 | 1,500 | 5,000 | 0.30 | >= 0.7 x PG | **MISSED** | 1,200 (1) | 1.25 |",
                      text)
        row = _get_row(r["comparisons"], 1, 64)
        self.assertEqual((row["raw_threads"], row["raw_rocksdb_events_per_s"]), (64, 20000))
        self.assertIn("| raw RocksDB synced writes, the store's 4 entries per event (438-byte "
                      "records), batch 64, 16 writer threads | 60,000 ev/s, p50 0.500 ms, p99 "
                      "4.250 ms |", text)
        self.assertNotIn("raw RocksDB at exactly", text)
        if shutil.which("gnuplot"):
            out = os.path.join(common.TMP, "bench-report-rawsame")
            self.assertIn("tp_1node_b1.svg", self.br.plots(r, out))
            with open(os.path.join(out, "plots", "tp_1node_b1_2.dat")) as f:
                self.assertEqual(f.read(), "1 1200\n16 13000\n64 20000\n")

    def test_etcd_skipped_is_said(self):
        res = copy.deepcopy(CANNED)
        res["etcd_skipped"] = "clinlog-bench etcd: skipped: etcd not found"
        _, text = self.report(res)
        self.assertIn("etcd step skipped: clinlog-bench etcd: skipped: etcd not found", text)
        self.assertNotIn("etcd step skipped", text.split("## 3 nodes: clinlog and etcd")[0])

    def test_failed_step_is_named_and_figures_missing(self):
        res = copy.deepcopy(CANNED)
        del res["postgresql"]
        res["errors"] = ["pg: exit status 3; see logs/pg.log"]
        _, text = self.report(res)
        self.assertIn("- pg: exit status 3; see logs/pg.log", text)
        self.assertIn("| 64 | 16 | 30,000 | — | — |", text)

    def test_cpu_by_thread(self):
        res = copy.deepcopy(CANNED)
        _, text = self.report(res)
        self.assertIn("## Where clinlogd's CPU goes, by thread\n\nNot measured in this run.",
                      text)
        th = lambda *g: [{"name": n, "cpu_us": c, "switches": s} for n, c, s in g]
        _get_row(res["clinlog_single"]["append"], 1, 64)["server_threads"] = th(
            ("api:worker", 120.0, 3.3), ("raft", 60.0, 1.1), ("proj:fhir", 58.0, 0.3),
            ("timer_manager", 0.2, 0.01))
        _get_row(res["clinlog_single"]["append"], 64, 16)["server_threads"] = th(
            ("proj:fhir", 20.0, 0.01), ("api:worker", 12.6, 0.05))
        res["ingest_hl7"] = {"scenarios": [{"connections": 16, "mllp": {
            "messages": 3000, "acked": 3000, "events": 9600, "messages_per_s": 4000,
            "events_per_s": 12800, "p50_ms": 3.0, "p99_ms": 15.0,
            "server_cpu_us_per_message": 500.0,
            "server_threads": th(("ended", 260.0, 0.0), ("raft", 150.0, 1.6))}}]}
        _, text = self.report(res)
        sec = text.split("## Where clinlogd's CPU goes, by thread")[1].split("\n## ")[0]
        self.assertIn("| thread | 1 event a call, conc 64: µs (switches) per event | batches of 64, "
                      "conc 16: µs (switches) per event | HL7 over MLLP, 16 connections: µs "
                      "(switches) per message |", sec)
        self.assertIn("| `api:worker` | 120 (3.3) | 13 (0.1) | — |", sec)
        self.assertIn("| `raft` | 60 (1.1) | — | 150 (1.6) |", sec)
        self.assertIn("| `ended` | — | — | 260 (0.0) |", sec)
        self.assertIn("| all | 238 (4.7) | 33 (0.1) | 410 (1.6) |", sec)
        self.assertNotIn("timer_manager", sec)  # under 1 % everywhere
        self.assertNotIn("syscalls per event", sec)  # not counted in this run

    def test_syscalls_by_kind(self):
        res = copy.deepcopy(CANNED)
        th = [{"name": "api:worker", "cpu_us": 120.0, "switches": 3.3}]
        one = _get_row(res["clinlog_single"]["append"], 1, 64)
        one["server_threads"] = th
        one["server_syscalls"] = {"all": 31.5, "futex": 9.25, "write": 4.0, "sock": 3.5,
                                  "sync": 0.04, "random": 2.0}
        _get_row(res["clinlog_single"]["append"], 64, 16)["server_syscalls"] = {
            "all": 1.2, "futex": 0.1, "write": 0.06, "sync": 0.02}
        _, text = self.report(res)
        sec = text.split("## Where clinlogd's CPU goes, by thread")[1].split("\n## ")[0]
        self.assertIn("| syscalls | 1 event a call, conc 64: per event | batches of 64, conc 16: "
                      "per event |", sec)
        self.assertIn("| futex | 9.25 | 0.10 |", sec)
        self.assertIn("| write | 4.00 | 0.06 |", sec)
        self.assertIn("| sock | 3.50 | — |", sec)
        self.assertIn("| random | 2.00 | — |", sec)
        self.assertIn("| all | 31.50 | 1.20 |", sec)
        self.assertNotIn("| sync |", sec)  # under 0.05 in both
        self.assertNotIn("| poll |", sec)  # not counted

    def test_plots(self):
        if not shutil.which("gnuplot"):
            self.skipTest("gnuplot is not installed")
        out = os.path.join(common.TMP, "bench-report-plots")
        r = self.br.combine(copy.deepcopy(CANNED))
        made = self.br.plots(r, out)
        self.assertEqual(made, ["throughput.svg", "latency.svg", "tp_1node_b1.svg",
                                "tp_1node_b64.svg"])
        for m in made:
            with open(os.path.join(out, m)) as f:
                self.assertIn("<svg", f.read())

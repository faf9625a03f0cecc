"""bench/run's later parts (bench/run itself had outgrown one file): the
check that a run's report is whole (`bench/run --check DIR`, what
scripts/test.sh runs after `bench/run --quick`); the failover, follower lag
and node join figures, their section of report.md and the failover
timeline plot; the AppendStream import's section; the latency CDF plots;
the 3-node scenarios' CPU, fsyncs and memory; the FHIR views' section and
targets (issue 9); the decision-support section and targets (issue 11);
the throughput-against-concurrency plot of each scenario family; and
`plots`, which draws every SVG of the report with gnuplot.

Only Debian's /usr/bin/python3 and its standard library."""
import json
import os
import re
import shutil
import subprocess

# The report's sections, in order: a run whose report.md lacks one was cut
# short (a step's figures missing show as "Not measured", never a gap).
SECTIONS = [
    "## Targets",
    "## clinlog (single node, gRPC) and PostgreSQL 15, same scenarios",
    "## Subscribe fan-out (single node)",
    "## 3 nodes against 1 node",
    "## 3 nodes: clinlog and etcd 3.4, same scenarios",
    "## 3 nodes: clinlog and PostgreSQL with synchronous standbys",
    "## Failover, follower lag and node join (3 nodes)",
    "## AppendStream bulk import (single node)",
    "## HL7 v2 over MLLP (clinlog-bench ingest hl7)",
    "## FHIR writes (clinlog-bench ingest fhir)",
    "## Home-device readings (clinlog-bench ingest)",
    "## FHIR views (clinlog-bench fhir)",
    "## Decision support (clinlog-bench cds)",
    "## Audit trail: the cost of fail-closed auditing (clinlog-bench audit)",
    "## Proofs and verify (clinlog-bench proof)",
    "## Raw limits of this machine, measured in this run",
    "## Machine",
    "## Plots",
]


def _load(path, what, problems):
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        problems.append("%s: cannot be read (%s)" % (what, e.strerror or e))
        return None


def check(out, steps):
    """The problems of the run written into `out` (a list of strings, empty
    when the report is whole): results.json and report.md present and
    well-formed, every step of `steps` (bench/run's (key, name) pairs) with
    figures or said skipped, no step failed, every plot listed present and
    an SVG. Targets are not judged: a missed target is a finding, not a
    broken run."""
    problems = []
    text = _load(os.path.join(out, "results.json"), "results.json", problems)
    r = None
    if text is not None:
        try:
            r = json.loads(text)
        except ValueError as e:
            problems.append("results.json: not JSON (%s)" % e)
    if isinstance(r, dict):
        for e in r.get("errors") or []:
            problems.append("step failed: %s" % e)
        for key, name in steps:
            if r.get(key) is None and not r.get(key + "_skipped"):
                problems.append("step %s: no figures in results.json (key %s) and not "
                                "skipped" % (name, key))
        for t in r.get("targets") or []:
            if not isinstance(t, dict) or not {"name", "target", "met"} <= set(t):
                problems.append("results.json: target %r lacks name, target or met" % (t,))
        if not r.get("targets"):
            problems.append("results.json: no targets")
        for p in r.get("plots") or []:
            svg = _load(os.path.join(out, p), "plot %s" % p, problems)
            if svg is not None and "<svg" not in svg:
                problems.append("plot %s: not an SVG" % p)
    elif r is not None:
        problems.append("results.json: not a JSON object")
    md = _load(os.path.join(out, "report.md"), "report.md", problems)
    if md is not None:
        if not md.startswith("# clinlog benchmark, "):
            problems.append("report.md: does not start with its title")
        at = 0
        for s in SECTIONS:
            i = md.find("\n" + s + "\n", at)
            if i < 0:
                problems.append("report.md: section %r missing or out of order" % s)
            else:
                at = i
        listed = set(r.get("plots") or []) if isinstance(r, dict) else set()
        for link in sorted(set(re.findall(r"\]\(([^()\s]+\.svg)\)", md)) - listed):
            # a plot the report links to but results.json does not list
            svg = _load(os.path.join(out, link), "report.md's plot %s" % link, problems)
            if svg is not None and "<svg" not in svg:
                problems.append("plot %s: not an SVG" % link)
    return problems

# ---------------------------------------------------------------- figures

def _get(rows, **kw):
    """The first of rows (a step's list of dicts) whose fields equal kw, or
    None."""
    for x in rows or []:
        if all(x.get(k) == v for k, v in kw.items()):
            return x
    return None


def _f(v, nd=0):
    """A figure as report.md prints it: thousands separated, nd decimals,
    "—" when missing."""
    if v is None:
        return "—"
    if isinstance(v, (float, int)):
        return ("{:,.%df}" % nd).format(v)
    return str(v)


# Steps --quick leaves out, and why (the report says so where they would be).
QUICK_SKIP = {
    "cluster-join": "not run in --quick (loading 100,000 events and a node's catch-up take "
                    "about 35 s); the full run measures it",
}


def targets_more(r, add):
    """The failover and join targets (clinlog-bench cluster judges them;
    `add(name, target, value, met, unit)`)."""
    ft = (r.get("clinlog_failover") or {}).get("targets") or {}
    add("3 nodes: failover, leader killed to the first append after it (worst trial)",
        "<= 3 s", ft.get("failover_max_s"), ft.get("failover_ok"), "s")
    fhir_targets(r, add)
    cds_targets(r, add)
    jt = (r.get("clinlog_join") or {}).get("targets") or {}
    add("3 nodes: a joining node's RSS growth over the second half of its catch-up",
        "< 64 MiB", jt.get("join_rss_growth_50_100_mb"), jt.get("join_memory_bounded"), "MiB")


def failover_section(r):
    """report.md's lines on failover, follower lag and node join."""
    L = []
    w = L.append
    w("## Failover, follower lag and node join (3 nodes)")
    w("")
    fo = (r.get("clinlog_failover") or {}).get("failover") or {}
    if fo.get("trials"):
        w("clinlog-bench cluster --only failover: 4 writers append single events to any of 3 "
          "clinlogd, retrying every error on the leader's hint; the leader is SIGKILLed, the "
          "time taken from the kill to the first append of a call begun after it, then the "
          "node restarted and waited for (the leader sees it within 64 entries). %d trials; "
          "%s appends, %s calls retried." % (len(fo["trials"]), _f(fo.get("appends_ok")),
                                             _f(fo.get("retries"))))
        w("")
        w("| trial | killed node | kill to first append s | restarted node caught up s |")
        w("|---|---|---|---|")
        for i, t in enumerate(fo["trials"]):
            w("| %d | %s | %s | %s |" % (i + 1, t.get("killed_node"), _f(t.get("seconds"), 3),
                                         _f(t.get("rejoin_seconds"), 2)))
        w("")
        w("Failover: worst %s s, median %s s (target <= 3 s, the election timeout being "
          "1 s)." % (_f(fo.get("max_s"), 3), _f(fo.get("median_s"), 3)))
        lag = fo.get("follower_lag") or {}
        tl = fo.get("timeline") or {}
        eps = tl.get("appends_per_s") or []
        if lag:
            mean = sum(eps) / len(eps) if eps else None
            w("")
            w("Follower lag under that load (the leader's Cluster.Status every 100 ms for 1 s "
              "before each kill and after the last rejoin, all nodes up; %s readings of the "
              "followers): p50 %s, p99 %s, worst %s Raft entries behind the leader's last "
              "index (at the run's mean %s appends/s, one entry an append)." % (_f(lag.get("samples")), _f(lag.get("p50_entries")),
                                         _f(lag.get("p99_entries")), _f(lag.get("max_entries")),
                                         _f(mean)))
    elif r.get("clinlog_failover_skipped"):
        w("Failover: %s." % r["clinlog_failover_skipped"])
    else:
        w("Failover: not measured in this run.")
    w("")
    jo = (r.get("clinlog_join") or {}).get("join") or {}
    if jo:
        rss = jo.get("rss_mb") or {}
        w("Node join (clinlog-bench cluster --only join): a one-node cluster loaded with %s "
          "events through AppendStream (batches of %s, %s events/s), then an empty member "
          "added: %s after %s s (Cluster.AddNode returned after %s s). The new node's RSS: "
          "idle %s MiB, %s / %s / %s / %s MiB at 25 / 50 / 75 / 100 %% of the catch-up, peak "
          "%s MiB; the loaded node's %s MiB." % (
              _f(jo.get("events_loaded")), _f(jo.get("batch")), _f(jo.get("load_events_per_s")),
              "caught up" if jo.get("caught_up") else "**did NOT catch up**",
              _f(jo.get("catch_up_s"), 2), _f(jo.get("add_node_s"), 2), _f(rss.get("idle"), 1),
              _f(rss.get("p25"), 1), _f(rss.get("p50"), 1), _f(rss.get("p75"), 1),
              _f(rss.get("p100"), 1), _f(jo.get("peak_rss_mb_sampled"), 1),
              _f(jo.get("source_rss_mb"), 1)))
    elif r.get("clinlog_join_skipped"):
        w("Node join: %s." % r["clinlog_join_skipped"])
    else:
        w("Node join: not measured in this run.")
    w("")
    return L


def failover_plot(r, d, out, gp, common, dat):
    """failover.svg: appends/s every 100 ms across the leader kills; [] when
    the failover did not run."""
    tl = ((r.get("clinlog_failover") or {}).get("failover") or {}).get("timeline") or {}
    eps, tick = tl.get("appends_per_s") or [], tl.get("tick_s") or 0.1
    if not eps:
        return []
    pts = [(round((i + 1) * tick, 3), v) for i, v in enumerate(eps)]
    series = dat("failover", pts)
    arrows = "".join("set arrow from %.3f, graph 0 to %.3f, graph 1 nohead dt 2 lc rgb 'red'\n"
                     % (k, k) for k in tl.get("kills_s") or [])
    with open(os.path.join(d, "failover.gp"), "w") as f:
        f.write(common.replace("set logscale y\n", "") +
                "set output '%s'\n" % os.path.join(out, "failover.svg"))
        f.write("set title 'Failover timeline: 3 nodes, 4 writers, leader SIGKILLed at the "
                "dashed lines'\nset xlabel 's'\nset ylabel 'appends/s (per 100 ms)'\n"
                "set yrange [0:*]\n" + arrows)
        f.write("plot '%s' using 1:2 with steps lw 1.5 title 'clinlog, single-event appends'\n"
                % series)
    subprocess.run([gp, os.path.join(d, "failover.gp")], check=True)
    return ["failover.svg"]

# ---------------------------------------------------------------- AppendStream import

def import_section(r):
    """report.md's lines on the AppendStream bulk import, set against the
    store in process and PostgreSQL's 64-event transactions on one
    connection (the pg step's batched insert; it measures no COPY)."""
    L = []
    w = L.append
    w("## AppendStream bulk import (single node)")
    w("")
    imp = (r.get("clinlog_import") or {}).get("append_stream") or {}
    if not imp:
        w("Not measured in this run.")
        w("")
        return L
    pg = _get((r.get("postgresql") or {}).get("scenarios"), batch=64, concurrency=1) or {}
    ce, pe = imp.get("grpc_events_per_s"), pg.get("events_per_s")
    w("clinlog-bench grpc --only stream: %s pre-signed events in batches of %s sent on one "
      "Log.AppendStream call to a clinlogd on loopback (each batch a durable commit), timed "
      "to its summary; the store: the same batches appended in process (cl_log_append), one "
      "thread; PostgreSQL 15: 64-event transactions (one 64-row INSERT each) on one "
      "connection, from its step (it has no COPY scenario)." % (
          _f(imp.get("events")), _f(imp.get("batch"))))
    w("")
    w("| what | events/s | clinlog / it |")
    w("|---|---|---|")
    w("| clinlog AppendStream | %s | — |" % _f(ce))
    w("| store in process, same batches | %s | %s |" % (_f(imp.get("store_events_per_s")),
                                                       _f(imp.get("ratio"), 2)))
    w("| PostgreSQL, 64 events a transaction, 1 connection | %s | %s |" % (
        _f(pe), _f(round(ce / pe, 3) if ce and pe else None, 2)))
    w("")
    return L

# ---------------------------------------------------------------- latency CDFs

def _cdf(row):
    """[(quantile, ms)] of a step's row ("cdf_ms": [[q, ms], ...]), or []."""
    return [(q, ms) for q, ms in (row or {}).get("cdf_ms") or [] if ms > 0]


def cdf_plots(r, d, out, gp, common, dat):
    """latency_cdf_1node.svg (clinlog 1 node against PostgreSQL) and
    latency_cdf_3nodes.svg (clinlog 3 nodes against etcd and PostgreSQL with
    standbys), one event per call at concurrency 16: the fraction of calls
    (y) done within a latency (x, log scale)."""
    single = (r.get("clinlog_single") or {}).get("append")
    pg = (r.get("postgresql") or {}).get("scenarios")
    cl = (r.get("clinlog_cluster") or {}).get("throughput")
    ed = (r.get("etcd") or {}).get("scenarios")
    pgr = (r.get("postgresql_replicated") or {}).get("scenarios")
    figs = [("latency_cdf_1node", "1 node, one event per call, concurrency 16", [
        ("clinlog, unary Append", _get(single, batch=1, concurrency=16)),
        ("PostgreSQL 15, 1-row transactions", _get(pg, batch=1, concurrency=16))]),
        ("latency_cdf_3nodes", "3 nodes, one event per call, concurrency 16", [
            ("clinlog 3 nodes, unary Append to the leader", _get(cl, batch=1, concurrency=16)),
            ("etcd 3.4, 3 members, Put", _get(ed, concurrency=16)),
            ("PostgreSQL 15 + 2 synchronous standbys", _get(pgr, batch=1, concurrency=16))])]
    made = []
    for name, title, systems in figs:
        series = [(dat("%s_%d" % (name, i), [(ms, q) for q, ms in _cdf(row)]), label)
                  for i, (label, row) in enumerate(systems) if _cdf(row)]
        if not series:
            continue
        with open(os.path.join(d, name + ".gp"), "w") as f:
            f.write(common.replace("set logscale y\n", "") +
                    "set output '%s'\n" % os.path.join(out, name + ".svg"))
            f.write("set title 'Latency CDF: %s'\nset xlabel 'latency of one call, ms (log)'\n"
                    "set ylabel 'fraction of calls'\nset logscale x 10\nset yrange [0:1]\n"
                    "set ytics 0.1\n" % title)
            f.write("plot " + ", \\\n  ".join("'%s' using 1:2 with linespoints lw 2 pt 7 ps 0.4 "
                                              "title '%s'" % s for s in series) + "\n")
        subprocess.run([gp, os.path.join(d, name + ".gp")], check=True)
        made.append(name + ".svg")
    return made


# ---------------------------------------------------------------- 3 nodes: CPU, fsyncs, memory

def cluster_resources(r):
    """report.md's lines on the 3-node scenarios' CPU, fsyncs and memory
    (clinlog-bench cluster's throughput rows; nothing when none has them)."""
    cl = r.get("clinlog_cluster") or {}
    rows = [t for t in cl.get("throughput") or [] if "client_cpu_us_per_event" in t]
    if not rows:
        return []
    L = ["", "CPU and fsyncs per event on 3 nodes (server: the three clinlogd together, "
         "/proc; client: the load generator, getrusage; fsyncs: the three clinlogd's durable "
         "writes, their fsync, fdatasync and io_submit calls, perf stat on the syscall "
         "tracepoints, — when perf cannot count):", "", "| batch | conc | server µs/ev | client µs/ev | fsyncs/ev |",
         "|---|---|---|---|---|"]
    for t in rows:
        L.append("| %d | %d | %s | %s | %s |" % (
            t["batch"], t["concurrency"], _f(t.get("server_cpu_us_per_event"), 1),
            _f(t.get("client_cpu_us_per_event"), 1), _f(t.get("fsyncs_per_event"), 3)))
    hwm = cl.get("node_peak_rss_mb") or []
    if hwm:
        L += ["", "Peak RSS (VmHWM) of each clinlogd after the 3-node scenarios: %s MiB." %
              " / ".join(_f(x, 1) for x in hwm)]
    return L

# ---------------------------------------------------------------- FHIR views

# issue 9's targets: (the bench's query, the face judged, p99 bound in ms)
FHIR_QUERY_TARGETS = [
    ("read Patient", "REST", 2.0),
    ("Observation?patient&code&date", "REST", 10.0),
    ("Patient/$everything (the big patient)", "REST", 50.0),
]


def _fhir_rows(r):
    """clinlog-bench fhir's JSON lines: (head, query rows, comparisons,
    clinlog's export, PostgreSQL's export)."""
    rows = r.get("fhir_views") or []
    if isinstance(rows, dict):
        rows = [rows]
    head = next((x for x in rows if "catchup_eps" in x), {})
    queries = [x for x in rows if "query" in x and "face" in x]
    compares = [x for x in rows if "query" in x and "compare" in x]
    exp = next((x.get("export") for x in rows if x.get("bench") == "fhir"), None) or {}
    pg_exp = next((x for x in rows if x.get("pg") == "export"), {})
    return head, queries, compares, exp, pg_exp


def fhir_targets(r, add):
    """issue 9's targets from the fhir step (`add(name, target, value, met, unit)`)."""
    head, queries, _, exp, _ = _fhir_rows(r)
    v = head.get("catchup_eps")
    add("FHIR views: projection catch-up from event 1", ">= 50000", v,
        None if v is None else v >= 50000, "events/s")
    for q, face, bound in FHIR_QUERY_TARGETS:
        row = _get(queries, query=q, face=face) or {}
        v = row.get("p99_ms")
        add("FHIR views: %s, %s, p99" % (q, face), "<= %g ms" % bound, v,
            None if v is None else v <= bound, "ms")
    v = exp.get("resources_per_s")
    add("FHIR views: bulk export, system level", ">= 100000", v,
        None if v is None else v >= 100000, "resources/s")


def fhir_section(r):
    """report.md's lines on the FHIR views: catch-up against the read floor
    (and the CPU of its threads), reads and searches over the engine and
    REST against PostgreSQL 15 holding the same resources as JSONB, bulk
    export against PostgreSQL's COPY."""
    L = []
    w = L.append
    w("## FHIR views (clinlog-bench fhir)")
    w("")
    head, queries, compares, exp, pg_exp = _fhir_rows(r)
    if not head:
        w("Not measured in this run.")
        w("")
        return L
    cpu = head.get("catchup_cpu_us") or {}
    w("In process, on a generated population (%s patients, %s events across every domain): "
      "the fhir projection's catch-up from event 1 against reading the log (decrypted), "
      "then reads and searches through the engine and over the REST face (read and vread "
      "over gRPC too), and a bulk export; PostgreSQL 15 holds the same resources as JSONB (a table per type, GIN and "
      "expression indexes) and answers the same queries (docs/fhir.md, Performance)." % (
          _f(head.get("patients")), _f(head.get("events"))))
    w("")
    w("Catch-up: %s events/s (%s of the read floor, %s events/s); CPU per event: the fold "
      "%s µs, its writer %s µs, RocksDB's flushes and compactions %s µs; the flushes and "
      "compactions it left settled in %s s (%s µs an event more), and the queries start "
      "after." % (
          _f(head.get("catchup_eps")), _f(head.get("catchup_ratio"), 3),
          _f(head.get("read_eps")), _f(cpu.get("fold"), 1), _f(cpu.get("writer"), 1),
          _f(cpu.get("rocksdb"), 1), _f(head.get("settle_s"), 1),
          _f(head.get("settle_rocksdb_us"), 1)))
    w("")
    w("| query | face | p50 ms | p99 ms | entries | PostgreSQL p50 / p99 ms | p50 / PostgreSQL |")
    w("|---|---|---|---|---|---|---|")
    for x in queries:
        if x.get("face") == "pg":
            continue
        pg = _get(queries, query=x["query"], face="pg") or {}
        cmp = _get(compares, query=x["query"], compare="%s/pg" % x["face"]) or {}
        w("| %s | %s | %s | %s | %s | %s / %s | %s |" % (
            x["query"], x["face"], _f(x.get("p50_ms"), 3), _f(x.get("p99_ms"), 3),
            _f(x.get("entries")), _f(pg.get("p50_ms"), 3), _f(pg.get("p99_ms"), 3),
            _f(cmp.get("p50_ratio"), 2)))
    w("")
    if exp:
        w("Bulk export (system level, every type): %s resources/s (%s resources, walk %s s, "
          "reading the files %s s); PostgreSQL's COPY of the same: %s resources/s "
          "(clinlog / PostgreSQL %s)." % (
              _f(exp.get("resources_per_s")), _f(exp.get("resources")),
              _f(exp.get("walk_s"), 2), _f(exp.get("read_s"), 2),
              _f(pg_exp.get("resources_per_s")), _f(pg_exp.get("clinlog_over_pg"), 2)))
        w("")
    return L

# ---------------------------------------------------------------- decision support

# issue 11's targets: checker >= 50k medication events/s, alert p99 on
# Cds.Alerts <= 10 ms (under >= 5k events/s of other load), order-sign p99 <= 20 ms
CDS_CHECKER_EPS, CDS_ALERT_P99_MS, CDS_SIGN_P99_MS, CDS_LOAD_EPS = 50000, 10.0, 20.0, 5000


def _cds_alert_p99(cd):
    """The alert p99 to judge: None when no alert arrived (the run still
    reports it as missed: an alert that never comes is no alert)."""
    return cd.get("alert_p99_ms") if cd.get("alerts") else None


def cds_targets(r, add):
    """issue 11's targets from the cds step (`add(name, target, value, met, unit)`)."""
    cd = r.get("cds") or {}
    v = cd.get("checker_eps")
    add("decision support: checker, 1 thread", ">= %d" % CDS_CHECKER_EPS, v,
        None if v is None else v >= CDS_CHECKER_EPS, "medication events/s")
    v = _cds_alert_p99(cd)
    add("decision support: alert p99, commit to Cds.Alerts received", "<= %g ms" % CDS_ALERT_P99_MS,
        v, None if not cd else v is not None and v <= CDS_ALERT_P99_MS, "ms")
    v = cd.get("order_sign_p99_ms")
    add("decision support: CDS Hooks order-sign round trip p99", "<= %g ms" % CDS_SIGN_P99_MS, v,
        None if v is None else v <= CDS_SIGN_P99_MS, "ms")


def cds_section(r):
    """report.md's lines on decision support: the checker, the projection's
    catch-up, the emitter's backlog, alert and order-sign latency, issue
    11's targets judged."""
    L = []
    w = L.append
    w("## Decision support (clinlog-bench cds)")
    w("")
    cd = r.get("cds") or {}
    if not cd:
        w("Decision support: %s." % r["cds_skipped"] if r.get("cds_skipped")
          else "Not measured in this run.")
        w("")
        return L
    w("In process (no clinlogd; bench/bench_cds.c, docs/cds.md \"How fast\"): %s generated "
      "patients, each with an allergy and 12 active orders, then dispenses, barcode-scanned "
      "administrations, new orders and discontinuations, interleaved (%s medication events). "
      "Alerts: 10 ms after the alert before, a new patient's warfarin and ibuprofen orders "
      "committed in one batch (the log fsync'ing every commit) under a background load of "
      "ObservationRecorded events, timed from the batch's commit to a subscriber receiving "
      "the alert on Cds.Alerts (gRPC, loopback, the C client), and to the IssueDetected's "
      "commit (what the checker and emitter take; the rest is the stream). Order-sign: CDS "
      "Hooks over the HTTP face, a draft order against a prefetch of the patient's orders "
      "and allergy." % (_f(cd.get("patients")), _f(cd.get("medication_events"))))
    w("")
    p99, bs = _cds_alert_p99(cd), cd.get("emit_backlog_s")
    emit_rate = cd["emitted"] / bs if cd.get("emitted") is not None and bs else None
    trig = cd.get("alert_triggers")

    def verdict(met):
        return "—" if met is None else "MET" if met else "**MISSED**"
    w("| figure | measured | target | verdict |")
    w("|---|---|---|---|")
    v = cd.get("checker_eps")
    w("| checker, 1 thread, medication events/s (%s findings) | %s | >= %s | %s |" % (
        _f(cd.get("checker_findings")), _f(v), _f(CDS_CHECKER_EPS),
        verdict(None if v is None else v >= CDS_CHECKER_EPS)))
    w("| catch-up: the cds projection from event 1, events/s (%s events) | %s | — | — |" % (
        _f(cd.get("catchup_events")), _f(cd.get("catchup_eps"))))
    w("| emitter backlog: the population's findings appended as IssueDetected, findings/s "
      "(%s in %s s) | %s | — | — |" % (_f(cd.get("emitted")), _f(bs, 2), _f(emit_rate)))
    w("| alert: commit to Cds.Alerts received, p50 / p99 ms (%s of %s alerts) | %s / %s "
      "| p99 <= %g ms | %s |" % (
          _f(cd.get("alerts")), _f(trig), _f(cd.get("alert_p50_ms"), 2), _f(p99, 2),
          CDS_ALERT_P99_MS, verdict(p99 is not None and p99 <= CDS_ALERT_P99_MS)))
    w("| alert: commit to the IssueDetected's commit, p50 / p99 ms | %s / %s | — | — |" % (
        _f(cd.get("alert_committed_p50_ms"), 2), _f(cd.get("alert_committed_p99_ms"), 2)))
    v = cd.get("order_sign_p99_ms")
    w("| CDS Hooks order-sign round trip, p50 / p99 ms (%s calls) | %s / %s | p99 <= %g ms "
      "| %s |" % (_f(cd.get("order_sign_calls")), _f(cd.get("order_sign_p50_ms"), 2), _f(v, 2),
                  CDS_SIGN_P99_MS, verdict(None if v is None else v <= CDS_SIGN_P99_MS)))
    w("")
    load = cd.get("load_eps")
    notes = ["Background load during the alerts: %s events/s (issue 11 asks for at least "
             "%s)" % (_f(load), _f(CDS_LOAD_EPS))]
    if load is not None and load < 0.98 * CDS_LOAD_EPS:
        notes.append("lighter than asked, so the alert figures flatter clinlog")
    if not cd.get("alerts"):
        notes.append("**no alert arrived** on Cds.Alerts: the alert target is missed")
    elif trig and cd["alerts"] < trig:
        notes.append("%s alerts never arrived within 5 s and are not in the percentiles"
                     % _f(trig - cd["alerts"]))
    secs = (r.get("step_seconds") or {}).get("cds")
    if secs is not None:
        notes.append("the step took %s s" % _f(secs, 1))
    w("; ".join(notes) + ".")
    w("")
    return L

# ---------------------------------------------------------------- throughput per scenario family

# name: (title, y label); one SVG each, drawn when a series has figures
TP_PLOTS = {
    "tp_1node_b1": ("1 node, one event per call", "events/s"),
    "tp_1node_b64": ("1 node, batches of 64 events", "events/s"),
    "tp_3nodes_b1": ("3 nodes (replicated), one event per call", "events/s"),
    "tp_3nodes_b64": ("3 nodes (replicated), batches of 64 events (etcd has no batch)",
                      "events/s"),
    "tp_ingest_hl7": ("HL7 v2 over MLLP, ACK after commit", "messages/s"),
    "tp_ingest_fhir": ("FHIR transaction Bundles over REST", "resources/s"),
}


def _pts(rows, x, y, **kw):
    """[(x, y)] of the rows whose fields equal kw, sorted by x; y a field
    name or a function of the row; rows without a figure are left out."""
    out = []
    for row in rows or []:
        if not all(row.get(k) == v for k, v in kw.items()):
            continue
        v = y(row) if callable(y) else row.get(y)
        if row.get(x) is not None and v:
            out.append((row[x], v))
    return sorted(out)


def _tp_series(r):
    """{plot name: [(label, points)]}: each family's systems against
    concurrency (client threads or connections; writer threads for raw
    RocksDB)."""
    single = (r.get("clinlog_single") or {}).get("append")
    pg = (r.get("postgresql") or {}).get("scenarios")
    # raw RocksDB at the rows' own concurrency (the raw step), else the store step's 1 and 8
    raw = ((r.get("raw") or {}).get("rocksdb") or {}).get("scenarios")
    raw_y = "events_per_s"
    if not raw:
        raw = [s for s in (r.get("raw_rocksdb") or {}).get("scenarios") or []
               if s.get("signatures") == "batch"]
        raw_y = "raw4_events_per_s"
    cl = (r.get("clinlog_cluster") or {}).get("throughput")
    ed = (r.get("etcd") or {}).get("scenarios")
    pgr = (r.get("postgresql_replicated") or {}).get("scenarios")
    hl7 = (r.get("ingest_hl7") or {}).get("scenarios")
    fhir = (r.get("ingest_fhir") or {}).get("transactions")
    out = {}
    for bs in (1, 64):
        out["tp_1node_b%d" % bs] = [
            ("clinlog, unary Append", _pts(single, "concurrency", "grpc_events_per_s", batch=bs)),
            ("PostgreSQL 15, %d-row transactions" % bs,
             _pts(pg, "concurrency", "events_per_s", batch=bs)),
            ("raw RocksDB synced writes of the same bytes (x: writer threads)",
             _pts(raw, "threads", raw_y, batch=bs))]
        out["tp_3nodes_b%d" % bs] = [
            ("clinlog 3 nodes, unary Append to the leader",
             _pts(cl, "concurrency", "cluster_events_per_s", batch=bs)),
            ("PostgreSQL 15 + 2 synchronous standbys",
             _pts(pgr, "concurrency", "events_per_s", batch=bs))]
    out["tp_3nodes_b1"].insert(1, ("etcd 3.4, 3 members, Put",
                                   _pts(ed, "concurrency", "events_per_s")))
    for name, rows, unit in (("tp_ingest_hl7", hl7, "messages_per_s"),
                             ("tp_ingest_fhir", fhir, "resources_per_s")):
        out[name] = [(label, _pts(rows, "connections",
                                  lambda row, k=key: (row.get(k) or {}).get(unit)))
                     for label, key in (("clinlog", "mllp" if name == "tp_ingest_hl7" else "rest"),
                                        ("the store in process, same events", "store"),
                                        ("PostgreSQL 15", "postgresql"))]
    # last, so the other lines keep their numbers
    out["tp_ingest_hl7"].append(("clinlog, MLLP over TLS", _pts(
        hl7, "connections", lambda row: (row.get("mllp_tls") or {}).get("messages_per_s"))))
    return out


def throughput_plots(r, d, out, gp, common, dat):
    """One SVG per scenario family with a concurrency axis (TP_PLOTS): its
    rate against concurrency, one line per system; a family none of whose
    systems ran has none. Returns the files made."""
    made = []
    families = _tp_series(r)
    for name in TP_PLOTS:
        systems = families[name]
        series = [(dat("%s_%d" % (name, i), pts), label)
                  for i, (label, pts) in enumerate(systems) if pts]
        if not series:
            continue
        xs = sorted({x for _, pts in systems for x, _ in pts})
        title, ylabel = TP_PLOTS[name]
        with open(os.path.join(d, name + ".gp"), "w") as f:
            f.write(common + "set output '%s'\n" % os.path.join(out, name + ".svg"))
            f.write("set title '%s: throughput against concurrency'\n"
                    "set xlabel 'concurrent clients'\nset ylabel '%s'\n"
                    "set logscale x 2\nset xrange [%g:%g]\nset xtics (%s)\n" % (
                        title, ylabel, min(xs) * 0.8, max(xs) * 1.25,
                        ", ".join("%g" % x for x in xs)))
            f.write("plot " + ", \\\n  ".join("'%s' using 1:2 with linespoints lw 2 pt 7 "
                                              "title '%s'" % s for s in series) + "\n")
        subprocess.run([gp, os.path.join(d, name + ".gp")], check=True)
        made.append(name + ".svg")
    return made


def plot_links(r, *names):
    """report.md's lines showing the named plots of this run (those drawn)."""
    L = []
    for n in names:
        if n + ".svg" in (r.get("plots") or []):
            L += ["", "![%s: throughput against concurrency](%s.svg)" % (TP_PLOTS[n][0], n)]
    return L

# ---------------------------------------------------------------- CPU by thread

# The scenarios whose server CPU report.md breaks down by thread: (label,
# unit, a function from the results to the row's "server_threads" list).
def _thread_scenarios(r):
    app = (r.get("clinlog_single") or {}).get("append")
    hl7 = (r.get("ingest_hl7") or {}).get("scenarios") or []
    h16 = (_get(hl7, connections=16) or {}).get("mllp") or {}
    out = []
    for batch, conc in ((1, 64), (64, 16)):
        row = _get(app, batch=batch, concurrency=conc) or {}
        out.append(("1 event a call, conc %d" % conc if batch == 1 else
                    "batches of %d, conc %d" % (batch, conc), "event",
                    row.get("server_threads")))
    out.append(("HL7 over MLLP, 16 connections", "message", h16.get("server_threads")))
    return out


def threads_section(r):
    """report.md's "where clinlogd's CPU goes": for a single-event and a
    batched append scenario and for MLLP, each thread group's CPU µs and
    context switches per event (per message), from /proc/PID/task over
    the scenario (clinlogd names its threads: docs/operations.md)."""
    L = []
    w = L.append
    sc = [s for s in _thread_scenarios(r) if s[2]]
    w("## Where clinlogd's CPU goes, by thread")
    w("")
    if not sc:
        w("Not measured in this run.")
        w("")
        return L
    w("clinlogd's CPU time (user + system) and context switches (voluntary and not) per event "
      "(per message for MLLP) by thread group, from `/proc/PID/task` over each scenario "
      "(docs/operations.md names the threads; \"ended\": threads that ended during it, MLLP's "
      "connection threads). The projections' folds (`proj:*`, `projw:*`) run at nice 10 "
      "except `cds`, and may finish their last events after the scenario's clock stops.")
    w("")
    groups = {}
    for _, _, th in sc:
        tot = sum(g["cpu_us"] for g in th) or 1
        for g in th:
            groups[g["name"]] = max(groups.get(g["name"], 0), g["cpu_us"] / tot)
    names = [n for n, share in sorted(groups.items(), key=lambda x: -x[1]) if share >= 0.01]
    w("| thread | " + " | ".join("%s: µs (switches) per %s" % (lab, unit)
                                 for lab, unit, _ in sc) + " |")
    w("|---|" + "---|" * len(sc))
    for n in names:
        cells = []
        for _, _, th in sc:
            g = next((g for g in th if g["name"] == n), None)
            cells.append("%s (%s)" % (_f(g["cpu_us"]), _f(g["switches"], 1)) if g else "—")
        w("| `%s` | %s |" % (n, " | ".join(cells)))
    cells = []
    for _, _, th in sc:
        cells.append("%s (%s)" % (_f(sum(g["cpu_us"] for g in th)),
                                  _f(sum(g["switches"] for g in th), 1)))
    w("| all | %s |" % " | ".join(cells))
    w("")
    L.extend(_syscalls_table(r))
    return L


# the kinds of "server_syscalls" (bench/syscount.h), in its order
SYSCALL_KINDS = ("futex", "write", "read", "sock", "poll", "sync", "aio", "random", "memory",
                 "sleep")


def _syscalls_table(r):
    """The syscalls per event of the single-event and batched append
    scenarios, by kind (bench/syscount.h), or nothing when not counted."""
    app = (r.get("clinlog_single") or {}).get("append")
    sc = []
    for batch, conc in ((1, 64), (64, 16)):
        row = _get(app, batch=batch, concurrency=conc) or {}
        if row.get("server_syscalls"):
            sc.append(("1 event a call, conc %d" % conc if batch == 1 else
                       "batches of %d, conc %d" % (batch, conc), row["server_syscalls"]))
    if not sc:
        return []
    L = ["clinlogd's syscalls per event by kind, from `perf stat` on the syscall tracepoints "
         "over the same scenarios (bench/syscount.h: futex is thread hand-offs and contended "
         "locks; write is RocksDB's WAL and the eventfd wake-ups of gRPC's and libuv's loops; "
         "sock is gRPC's socket I/O; sync is the durable writes); kinds under 0.05 left out.",
         "",
         "| syscalls | " + " | ".join("%s: per event" % lab for lab, _ in sc) + " |",
         "|---|" + "---|" * len(sc)]
    for k in SYSCALL_KINDS:
        if all((c.get(k) or 0) < 0.05 for _, c in sc):
            continue
        L.append("| %s | %s |" % (k, " | ".join(_f(c.get(k), 2) for _, c in sc)))
    L.append("| all | %s |" % " | ".join(_f(c.get("all"), 2) for _, c in sc))
    L.append("")
    return L


def plots(r, out):
    """Draws SVGs with gnuplot; returns their file names, or raises."""
    gp = shutil.which("gnuplot")
    if not gp:
        raise FileNotFoundError("gnuplot is not installed (Debian gnuplot-nox; "
                                "scripts/install-deps.sh installs it)")
    rows = r.get("comparisons") or []
    d = os.path.join(out, "plots")
    os.makedirs(d, exist_ok=True)
    series = []  # (file, title)

    def dat(name, pts):
        path = os.path.join(d, name + ".dat")
        with open(path, "w") as f:
            for p in pts:
                f.write("%s %s\n" % p)
        return path
    for sysname, label in (("clinlog", "clinlog 1 node"), ("postgresql", "PostgreSQL 15")):
        for bs in (1, 64):
            pts = [(x["concurrency"], x.get(sysname + "_events_per_s")) for x in rows
                   if x["batch"] == bs and x.get(sysname + "_events_per_s")]
            if pts:
                series.append((dat("tp_%s_b%d" % (sysname, bs), pts),
                               "%s, batch %d" % (label, bs)))
    for bs in (1, 64):
        pts = [(c["concurrency"], c["three_node_events_per_s"])
               for c in r.get("cluster_rows") or [] if c["batch"] == bs]
        if pts:
            series.append((dat("tp_cluster_b%d" % bs, pts), "clinlog 3 nodes, batch %d" % bs))
    pts = [(e["concurrency"], e["etcd_events_per_s"]) for e in r.get("etcd_rows") or []
           if e.get("etcd_events_per_s")]
    if pts:
        series.append((dat("tp_etcd_b1", pts), "etcd 3.4, 3 members, 1 event per Put"))
    made = []
    common = ("set terminal svg size 820,520 dynamic font 'sans,11'\n"
              "set key below\nset grid\nset logscale y\n")
    if series:
        with open(os.path.join(d, "throughput.gp"), "w") as f:
            f.write(common + "set output '%s'\n" % os.path.join(out, "throughput.svg"))
            f.write("set title 'Durable appends/s against concurrency'\n"
                    "set xlabel 'concurrent clients'\nset ylabel 'events/s'\n"
                    "set logscale x 2\nset xrange [0.8:80]\nset xtics (1, 16, 64)\n")
            f.write("plot " + ", \\\n  ".join("'%s' using 1:2 with linespoints lw 2 title '%s'"
                                              % s for s in series) + "\n")
        subprocess.run([gp, os.path.join(d, "throughput.gp")], check=True)
        made.append("throughput.svg")
    # latency profile: p50/p90/p99/p99.9 of each system at concurrency 16
    lat = []
    for sysname, label in (("clinlog", "clinlog"), ("postgresql", "PostgreSQL")):
        for bs in (1, 64):
            x = _get(rows, batch=bs, concurrency=16)
            if not x or x.get(sysname + "_p50_ms") is None:
                continue
            pts = [(q, x.get("%s_%s" % (sysname, k))) for q, k in
                   ((50, "p50_ms"), (90, "p90_ms"), (99, "p99_ms"), (99.9, "p999_ms"))
                   if x.get("%s_%s" % (sysname, k))]
            lat.append((dat("lat_%s_b%d" % (sysname, bs), pts),
                        "%s, batch %d" % (label, bs)))
    if lat:
        with open(os.path.join(d, "latency.gp"), "w") as f:
            f.write(common + "set output '%s'\n" % os.path.join(out, "latency.svg"))
            f.write("set title 'Latency percentiles per call, concurrency 16'\n"
                    "set xlabel 'percentile'\nset ylabel 'ms'\n"
                    "set xtics ('p50' 0, 'p90' 1, 'p99' 2, 'p99.9' 3)\nset xrange [-0.3:3.3]\n")
            f.write("plot " + ", \\\n  ".join(
                "'%s' using ($1==50?0:$1==90?1:$1==99?2:3):2 with linespoints lw 2 title '%s'"
                % s for s in lat) + "\n")
        subprocess.run([gp, os.path.join(d, "latency.gp")], check=True)
        made.append("latency.svg")
    made += throughput_plots(r, d, out, gp, common, dat)
    made += cdf_plots(r, d, out, gp, common, dat)
    made += failover_plot(r, d, out, gp, common, dat)
    return made

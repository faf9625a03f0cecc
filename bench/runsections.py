"""bench/run's report sections of the steps beside the append comparison
(bench/run itself had outgrown one file): Subscribe fan-out against etcd's
Watch, issue 12's ingest steps (HL7 v2 over MLLP, FHIR writes, device
readings) with their targets, issue 10's cost of the audit trail (clinlog
with --audit on against off, reads and appends, beside PostgreSQL with the
same audit row committed in the call) with its targets, proofs and verify,
the raw limits of the machine, and the floor of one event a call on this
stack (clinlog-bench grpc's floor rows).

Each *_section(r) returns report.md's lines from a combined results dict;
each *_targets(r, add) adds its targets through bench/run's `add(name,
target, value, met, unit)`. Only Debian's /usr/bin/python3 and its standard
library."""
import runext

_f = runext._f  # a figure as the report prints it ("—" when missing)
_get = runext._get  # the first row of a list with the given fields, or None


def _ratio(a, b):
    return round(a / b, 3) if a is not None and b else None


def _fo_label(row):
    return "%d%s" % (row["subscribers"], " batched" if row.get("batch") else "")


def fanout_rows(r):
    """clinlog's Subscribe fan-out next to etcd's Watch (same writer load, same
    number of readers) and next to the raw row of each (its writer alone),
    with the ratios clinlog/etcd and clinlog/raw. Rates: higher is better;
    latencies (send to delivery, both sides): lower is better."""
    cf = r.get("clinlog_fanout") or {}
    ew = r.get("etcd_watch") or {}
    craw, eraw = cf.get("fanout_raw") or {}, ew.get("fanout_raw") or {}
    rows = []
    for batch, n in ((False, 10), (False, 100), (True, 10), (True, 100)):
        # batch: the subscribers asked for EventBatch messages (SubscribeRequest.batch)
        c = next((x for x in cf.get("fanout") or []
                  if x.get("subscribers") == n and bool(x.get("batch")) == batch), None)
        e = _get(ew.get("fanout") or [], watchers=n)
        if not c and (batch or not e):
            continue
        row = {"subscribers": n, "batch": batch}
        if c:
            for k in ("writer_events_per_s", "append_p50_ms", "append_p99_ms",
                      "per_subscriber_events_per_s_mean", "per_subscriber_events_per_s_min",
                      "latency_p50_ms", "latency_p99_ms", "sent_to_delivery_p50_ms",
                      "sent_to_delivery_p99_ms", "server_cpu_us_per_event"):
                row["clinlog_" + k] = c.get(k)
        if e:
            for k in ("writer_events_per_s", "txn_p50_ms", "txn_p99_ms",
                      "sent_to_delivery_p50_ms", "sent_to_delivery_p99_ms",
                      "server_cpu_us_per_event"):
                row["etcd_" + k] = e.get(k)
            row["etcd_per_subscriber_events_per_s_mean"] = e.get("per_watcher_events_per_s_mean")
            row["etcd_per_subscriber_events_per_s_min"] = e.get("per_watcher_events_per_s_min")
        row["raw_clinlog_writer_events_per_s"] = craw.get("writer_events_per_s")
        row["raw_clinlog_append_p50_ms"] = craw.get("append_p50_ms")
        row["raw_clinlog_append_p99_ms"] = craw.get("append_p99_ms")
        row["raw_etcd_writer_events_per_s"] = eraw.get("writer_events_per_s")
        g = row.get
        row["clinlog_over_etcd_writer"] = _ratio(g("clinlog_writer_events_per_s"),
                                                 g("etcd_writer_events_per_s"))
        row["clinlog_over_etcd_delivered"] = _ratio(g("clinlog_per_subscriber_events_per_s_mean"),
                                                    g("etcd_per_subscriber_events_per_s_mean"))
        row["clinlog_over_etcd_p50"] = _ratio(g("clinlog_sent_to_delivery_p50_ms"),
                                              g("etcd_sent_to_delivery_p50_ms"))
        row["clinlog_over_etcd_p99"] = _ratio(g("clinlog_sent_to_delivery_p99_ms"),
                                              g("etcd_sent_to_delivery_p99_ms"))
        # the writer with N subscribers over the same writer with none
        row["clinlog_over_raw_writer"] = _ratio(g("clinlog_writer_events_per_s"),
                                                g("raw_clinlog_writer_events_per_s"))
        row["etcd_over_raw_writer"] = _ratio(g("etcd_writer_events_per_s"),
                                             g("raw_etcd_writer_events_per_s"))
        # a delivery cannot come before the commit: the Append alone is its floor
        row["clinlog_over_raw_p50"] = _ratio(g("clinlog_sent_to_delivery_p50_ms"),
                                             g("raw_clinlog_append_p50_ms"))
        rows.append(row)
    return rows


def fanout_section(r):
    """report.md's Subscribe fan-out section."""
    L = []
    w = L.append
    w("## Subscribe fan-out (single node)")
    w("")
    fo = r.get("fanout_rows") or []
    if r.get("etcd_watch_skipped"):
        w("etcd-watch step skipped: %s" % r["etcd_watch_skipped"])
        w("")
    if fo:
        w("One writer appends batches of 64 (unary Append) while N subscribers follow the log "
          "from its end (Subscribe, one call each, on a channel of their own), each event in a "
          "message of its own, or (\"N batched\") in EventBatch messages "
          "(SubscribeRequest.batch). The peer: etcd "
          "3.4, 1 member, one writer of Txns of 64 Puts (the same event bytes) while N Watch "
          "calls follow the key prefix (one call each, on a channel of their own). Raw: the same "
          "writer with nobody following, in the same run. Delivered: events/s per reader from "
          "the first send to its last event; send-to-delivery: an event's arrival minus the "
          "send of its batch (same clock, both systems); commit-to-delivery (clinlog only): "
          "minus the event's commit time.")
        w("")
        w("| subscribers | clinlog writer ev/s | etcd writer ev/s | clinlog/etcd "
          "| clinlog writer alone (raw) | clinlog/raw | etcd/its raw |")
        w("|---|---|---|---|---|---|---|")
        for f in fo:
            w("| %s | %s | %s | %s | %s | %s | %s |" % (
                _fo_label(f), _f(f.get("clinlog_writer_events_per_s")),
                _f(f.get("etcd_writer_events_per_s")), _f(f.get("clinlog_over_etcd_writer"), 2),
                _f(f.get("raw_clinlog_writer_events_per_s")),
                _f(f.get("clinlog_over_raw_writer"), 2), _f(f.get("etcd_over_raw_writer"), 2)))
        w("")
        w("| subscribers | clinlog delivered ev/s per subscriber (mean / min) "
          "| etcd per watcher (mean / min) | clinlog/etcd |")
        w("|---|---|---|---|")
        for f in fo:
            w("| %s | %s / %s | %s / %s | %s |" % (
                _fo_label(f), _f(f.get("clinlog_per_subscriber_events_per_s_mean")),
                _f(f.get("clinlog_per_subscriber_events_per_s_min")),
                _f(f.get("etcd_per_subscriber_events_per_s_mean")),
                _f(f.get("etcd_per_subscriber_events_per_s_min")),
                _f(f.get("clinlog_over_etcd_delivered"), 2)))
        w("")
        w("Latency in ms (lower is better; a ratio above 1 is clinlog slower). Raw: clinlog's "
          "Append p50 with nobody following, the floor of a delivery.")
        w("")
        w("| subscribers | clinlog send-to-delivery p50 / p99 | etcd p50 / p99 "
          "| clinlog/etcd p50 / p99 | clinlog commit-to-delivery p50 / p99 "
          "| raw Append p50 / p99 | clinlog/raw p50 |")
        w("|---|---|---|---|---|---|---|")
        for f in fo:
            w("| %s | %s / %s | %s / %s | %s / %s | %s / %s | %s / %s | %s |" % (
                _fo_label(f), _f(f.get("clinlog_sent_to_delivery_p50_ms"), 2),
                _f(f.get("clinlog_sent_to_delivery_p99_ms"), 2),
                _f(f.get("etcd_sent_to_delivery_p50_ms"), 2),
                _f(f.get("etcd_sent_to_delivery_p99_ms"), 2),
                _f(f.get("clinlog_over_etcd_p50"), 2), _f(f.get("clinlog_over_etcd_p99"), 2),
                _f(f.get("clinlog_latency_p50_ms"), 2), _f(f.get("clinlog_latency_p99_ms"), 2),
                _f(f.get("raw_clinlog_append_p50_ms"), 2),
                _f(f.get("raw_clinlog_append_p99_ms"), 2), _f(f.get("clinlog_over_raw_p50"), 1)))
        w("")
        w("Server CPU µs per event written (until the last delivery): " + "; ".join(
            "%s subscribers: clinlogd %s, etcd %s" % (
                _fo_label(f), _f(f.get("clinlog_server_cpu_us_per_event"), 1),
                _f(f.get("etcd_server_cpu_us_per_event"), 1)) for f in fo) + ".")
    else:
        w("Not measured in this run.")
    w("")
    return L


def ingest_hl7_rows(r):
    """The HL7 step's figures a row per path at each connection count:
    plaintext MLLP, MLLP over TLS beside it (ratio TLS / plaintext), the
    store in process (MLLP / store) with step 1's fdatasync beside it as the
    raw limit (one message per fdatasync without group commit; ratio store /
    fdatasync), and PostgreSQL (MLLP / PostgreSQL). A path that did not run
    has no row."""
    ing = r.get("ingest_hl7") or {}
    fs = (r.get("raw") or {}).get("fsync") or {}
    rows = []
    for sc in ing.get("scenarios") or []:
        ml, tl = sc.get("mllp") or {}, sc.get("mllp_tls") or {}
        st, pg = sc.get("store") or {}, sc.get("postgresql") or {}

        def row(path, x, ratio_of=None, ratio=None):
            return {"connections": sc["connections"], "path": path,
                    "messages": x.get("acked"), "messages_per_s": x.get("messages_per_s"),
                    "events_per_s": x.get("events_per_s"), "p50_ms": x.get("p50_ms"),
                    "p99_ms": x.get("p99_ms"),
                    "server_cpu_us_per_message": x.get("server_cpu_us_per_message"),
                    "ratio_of": ratio_of, "ratio": ratio}
        if ml:
            rows.append(row("MLLP, plaintext", ml))
        if tl:
            rows.append(row("MLLP over TLS", tl, "TLS / plaintext",
                            sc.get("mllp_tls_over_mllp",
                                   _ratio(tl.get("messages_per_s"), ml.get("messages_per_s")))))
        if st:
            rows.append(row("store in process", st, "MLLP / store", sc.get("mllp_over_store")))
            if fs.get("per_s"):
                rows.append(row("raw limit: fdatasync (step 1)",
                                {"messages_per_s": fs["per_s"], "p50_ms": fs.get("p50_ms"),
                                 "p99_ms": fs.get("p99_ms")},
                                "store / fdatasync", _ratio(st.get("messages_per_s"),
                                                            fs["per_s"])))
        if pg:
            rows.append(row("PostgreSQL 15", pg, "MLLP / PostgreSQL",
                            sc.get("mllp_over_postgresql")))
    return rows


def ingest_targets(r, add):
    """Issue 12's HL7 and device-reading targets."""
    it = (r.get("ingest_hl7") or {}).get("targets") or {}
    add("HL7 v2 over MLLP, ACK after commit, 16 connections", ">= 10000",
        it.get("messages_per_s_16"), it.get("messages_per_s_16_ok"), "messages/s")
    add("HL7 v2 over MLLP, ACK p99, 16 connections", "<= 20 ms", it.get("ack_p99_ms_16"),
        it.get("ack_p99_ms_16_ok"), "ms")
    dev = [x for x in (r.get("ingest_devices") or []) if x.get("what") == "clinlog"]
    best = max((x.get("rps") or 0 for x in dev), default=None)
    add("home-device readings, best of 1 and 16 streams", ">= 50000", best,
        None if best is None else best >= 50000, "readings/s")


def ingest_section(r):
    """report.md's sections of the three ingest steps (HL7 v2 over MLLP, FHIR
    writes, device readings)."""
    L = []
    w = L.append
    w("## HL7 v2 over MLLP (clinlog-bench ingest hl7)")
    w("")
    ing = r.get("ingest_hl7") or {}
    if ing.get("scenarios"):
        tls = (ing.get("tls") or {}).get("protocol")
        w("Framed HL7 v2 messages (%s) sent by C client threads over loopback MLLP, "
          "one message in flight per connection, each ACK AA only after the fsync'd commit "
          "and its audit record: plaintext, and over TLS (%s, the server's certificate "
          "verified against the run's throwaway CA, a client certificate required and bound "
          "to the sender's principal; handshakes before the clock) into a clinlogd of its "
          "own. store: the same events appended in process (cl_log_append), beside it the "
          "data disk's fdatasync rate (step 1), the raw limit of one message per flush; "
          "PostgreSQL 15: one INSERT of the message per transaction, synchronous_commit on."
          % (ing.get("mix", "generated messages"), tls or "TLS 1.2 or later"))
        w("")
        w("| conns | path | messages | msg/s | events/s | p50 ms | p99 ms | server µs/msg "
          "| ratio |")
        w("|---|---|---|---|---|---|---|---|---|")
        for x in r.get("ingest_hl7_rows") or []:
            w("| %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                x["connections"], x["path"], _f(x["messages"]), _f(x["messages_per_s"]),
                _f(x["events_per_s"]), _f(x["p50_ms"], 2), _f(x["p99_ms"], 2),
                _f(x["server_cpu_us_per_message"]),
                "%s %s" % (x["ratio_of"], _f(x["ratio"], 2)) if x["ratio_of"] else ""))
        L.extend(runext.plot_links(r, "tp_ingest_hl7"))
        for what, key in (("PostgreSQL", "postgresql_skipped"), ("MLLP over TLS", "tls_skipped")):
            if ing.get(key):
                w("")
                w("%s skipped: %s" % (what, ing[key]))
    else:
        w("Not measured in this run.")
    w("")
    w("## FHIR writes (clinlog-bench ingest fhir)")
    w("")
    fi = r.get("ingest_fhir") or {}
    if fi.get("transactions"):
        w("Records of %s. REST: one transaction Bundle per POST over plaintext loopback "
          "HTTP/1.1, 200 after the fsync'd commit (audit trail and projections on); store: the "
          "same events by cl_log_append in process; PostgreSQL 15: a transaction per Bundle, "
          "its resources as JSONB rows, synchronous_commit on. NDJSON: `clinlog ingest fhir` "
          "(appends of up to 500 events), the store and PostgreSQL committing the same "
          "groups." % fi.get("record", "generated resources"))
        w("")
        w("| load | conns | clinlog resources/s | p50 ms | p99 ms | server µs/resource "
          "| store resources/s | clinlog/store | PostgreSQL resources/s | clinlog/PostgreSQL |")
        w("|---|---|---|---|---|---|---|---|---|---|")
        rows = [("transactions", sc["connections"], sc.get("rest") or {}, sc.get("store") or {},
                 sc.get("postgresql") or {}, sc.get("rest_over_store"),
                 sc.get("rest_over_postgresql")) for sc in fi["transactions"]]
        nd = fi.get("ndjson") or {}
        if nd.get("cli"):
            rows.append(("NDJSON", 1, nd["cli"], nd.get("store") or {}, nd.get("postgresql") or {},
                         nd.get("cli_over_store"), nd.get("cli_over_postgresql")))
        for load, conns, c, st, pg, rs, rp in rows:
            w("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                load, conns, _f(c.get("resources_per_s")), _f(c.get("p50_ms"), 2),
                _f(c.get("p99_ms"), 2), _f(c.get("server_cpu_us_per_resource")),
                _f(st.get("resources_per_s")), _f(rs, 2), _f(pg.get("resources_per_s")),
                _f(rp, 2)))
        L.extend(runext.plot_links(r, "tp_ingest_fhir"))
        if fi.get("postgresql_skipped"):
            w("")
            w("PostgreSQL skipped: %s" % fi["postgresql_skipped"])
    else:
        w("Not measured in this run.")
    w("")
    w("## Home-device readings (clinlog-bench ingest)")
    w("")
    dv = r.get("ingest_devices") or []
    if dv:
        w("Blood-pressure readings as a gateway's JSON batches (500 a batch) through the "
          "device adapter in process (parse, unit and time checks, registry lookup, mapping, "
          "signature, one durable append a batch), against the store appending the same "
          "events pre-signed and PostgreSQL 15 (a multi-row INSERT ... ON CONFLICT per "
          "transaction, and COPY).")
        w("")
        w("| path | streams | readings/s | batch p50 ms | p99 ms | clinlog/raw | "
          "clinlog/PostgreSQL |")
        w("|---|---|---|---|---|---|---|")
        for x in dv:
            w("| %s | %s | %s | %s | %s | %s | %s |" % (
                x.get("what"), x.get("streams"), _f(x.get("rps")), _f(x.get("p50_ms"), 2),
                _f(x.get("p99_ms"), 2), _f(x.get("vs_raw"), 2), _f(x.get("vs_pg"), 2)))
    else:
        w("Not measured in this run.")
    w("")
    return L


AUDIT_TARGET = 0.85  # issue 10: with the audit trail on, at most 15 % slower
AUDIT_READS = ("Log.GetEvent", "Fhir.Read")


def audit_targets(r, add):
    """Issue 10's target, for reads and for appends: the lowest on/off ratio
    (each the median of the step's alternated pairs) of their scenarios."""
    sc = (r.get("audit") or {}).get("scenarios") or []
    for what, calls in (("reads (Log.GetEvent, Fhir.Read; lowest of concurrency 1 and 64)",
                         AUDIT_READS),
                        ("appends (Log.Append; lowest of concurrency 1 and 64)",
                         ("Log.Append",))):
        v = [x["ratio"] for x in sc if x.get("call") in calls and x.get("ratio") is not None]
        v = min(v) if v else None
        add("audit trail on against off, " + what, ">= %.2f x off" % AUDIT_TARGET, v,
            None if v is None else v >= AUDIT_TARGET, "x")


def audit_section(r):
    """report.md's section on the audit trail's cost (clinlog-bench audit)."""
    L = []
    w = L.append
    w("## Audit trail: the cost of fail-closed auditing (clinlog-bench audit)")
    w("")
    a = r.get("audit") or {}
    sc = a.get("scenarios") or []
    if not sc:
        w("Not measured in this run.")
        w("")
        return L
    w("The same calls against clinlogd with `--audit off` and with its default, every call "
      "recorded: an AccessRecorded event (signed, encrypted, in the Merkle tree) committed "
      "before the answer leaves (fail closed), concurrent calls' records sharing a commit. "
      "%s alternated off/on pair(s) of %s s a scenario after %s preloaded events; on/off is "
      "the median of the pairs' throughput ratios (target >= %.2f: at most 15 %% slower). "
      "Fail-closed bound (concurrency 1): one durable write (pwrite + fdatasync, %s ms p50 "
      "here) must be added to every call, so on/off is at most off latency / (off latency + "
      "that), whatever stores the record. CPU: clinlogd's, every thread, per call." % (
          _f(a.get("rounds")), _f(a.get("seconds"), 1), _f(a.get("preload_events")),
          AUDIT_TARGET, _f(a.get("fdatasync_p50_ms"), 3)))
    w("")
    w("| call | conc | off ops/s | on ops/s | on/off | fail-closed bound | on p50 / p99 ms "
      "| records per commit | CPU µs off / on | verdict |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for x in sc:
        w("| %s | %s | %s | %s | %s | %s | %s / %s | %s | %s / %s | %s |" % (
            x.get("call"), x.get("concurrency"), _f(x.get("off_ops_per_s")),
            _f(x.get("on_ops_per_s")), _f(x.get("ratio"), 2), _f(x.get("fail_closed_bound"), 2),
            _f(x.get("on_p50_ms"), 2), _f(x.get("on_p99_ms"), 2),
            _f(x.get("audit_records_per_batch"), 1), _f(x.get("off_cpu_us_per_call"), 0),
            _f(x.get("on_cpu_us_per_call"), 0),
            "—" if x.get("ratio") is None else
            "MET" if x["ratio"] >= AUDIT_TARGET else "**MISSED**"))
    w("")
    if any(x.get("peer") for x in sc):
        w("The peer: %s; its on/off, and clinlog's audited rate over the peer's." %
          a.get("peer", "PostgreSQL 15"))
        w("")
        w("| call | conc | PostgreSQL off ops/s | on ops/s | on/off | clinlog on/off "
          "| clinlog on / PostgreSQL on |")
        w("|---|---|---|---|---|---|---|")
        for x in sc:
            p = x.get("peer") or {}
            w("| %s | %s | %s | %s | %s | %s | %s |" % (
                x.get("call"), x.get("concurrency"), _f(p.get("off_ops_per_s")),
                _f(p.get("on_ops_per_s")), _f(p.get("ratio"), 2), _f(x.get("ratio"), 2),
                _f(_ratio(x.get("on_ops_per_s"), p.get("on_ops_per_s")), 2)))
    else:
        w("The PostgreSQL peer (the same call with its audit row committed in it) was not "
          "measured in this run (--quick leaves it out; the full run measures it).")
    w("")
    return L


def proof_section(r):
    """report.md's proofs-and-verify section."""
    L = []
    w = L.append
    w("## Proofs and verify (clinlog-bench proof)")
    w("")
    pr = r.get("proof") or {}
    if pr.get("inclusion"):
        rw = pr.get("raw") or {}
        w("A log of %s events. In process: RFC 9162 proofs of random events at the head "
          "(cl_log_prove_inclusion / _consistency) and their verification (the auditor's "
          "side); over gRPC: Log.ProveInclusion from a clinlogd, each answer checked as an "
          "auditor does, with clinlogd's defaults (every call recorded in the audit trail "
          "first) and with --audit off. No peer offers proofs (PostgreSQL and etcd prove "
          "nothing): the raw limits are this run's SHA-256 (%s node hashes/s, %s MB/s of "
          "leaves) and Ed25519 (%s verifies/s)." % (
              _f(pr.get("events")), _f(rw.get("node_hashes_per_s")),
              _f(rw.get("leaf_hash_mb_per_s"), 1), _f(rw.get("ed25519_verify_per_s"))))
        w("")
        w("| what | per s | p50 ms | p99 ms |")
        w("|---|---|---|---|")
        for kind in ("inclusion", "consistency"):
            k = pr.get(kind) or {}
            for key, what in (("prove_1", "prove, 1 thread"), ("prove_2", "prove, 2 threads"),
                              ("verify", "verify, 1 thread")):
                x = k.get(key) or {}
                w("| %s %s | %s | %s | %s |" % (kind, what, _f(x.get("per_s")),
                                                _f(x.get("p50_ms"), 3), _f(x.get("p99_ms"), 3)))
        g = pr.get("grpc_inclusion") or {}
        for key, what in (("concurrency_1", "gRPC ProveInclusion, concurrency 1"),
                          ("concurrency_16", "gRPC ProveInclusion, concurrency 16"),
                          ("audit_off_concurrency_1", "the same, --audit off, concurrency 1"),
                          ("audit_off_concurrency_16", "the same, --audit off, concurrency 16")):
            x = g.get(key) or {}
            w("| %s | %s | %s | %s |" % (what, _f(x.get("per_s")), _f(x.get("p50_ms"), 3),
                                         _f(x.get("p99_ms"), 3)))
        inc, vl = pr.get("inclusion") or {}, pr.get("verify_log") or {}
        w("")
        w("Inclusion proofs hold %s hashes on average; their verification runs at %s of "
          "the node-hash limit. Verify of the whole log: %s events/s hashes only (%s of the "
          "leaf-hash limit), %s events/s with every signature and every event decrypted "
          "(%s)." % (_f(inc.get("mean_hashes"), 1), _f(inc.get("verify_over_raw"), 2),
                     _f(vl.get("hashes_only_events_per_s")), _f(vl.get("hashes_only_over_raw"), 2),
                     _f(vl.get("full_events_per_s")), _f(vl.get("full_over_raw"), 2)))
    else:
        w("Not measured in this run.")
    w("")
    return L


def raw_section(r):
    """report.md's raw limits of the machine (steps 1 and 2)."""
    L = []
    w = L.append
    w("## Raw limits of this machine, measured in this run")
    w("")
    raw = r.get("raw") or {}
    fs, ed, sha = raw.get("fsync") or {}, raw.get("ed25519") or {}, raw.get("sha256") or {}
    w("| limit | figure |")
    w("|---|---|")
    w("| fsync (pwrite 4 KiB + fdatasync), data disk | p50 %s ms, p99 %s ms, %s/s |" % (
        _f(fs.get("p50_ms"), 3), _f(fs.get("p99_ms"), 3), _f(fs.get("per_s"))))
    fw = raw.get("fsync_written")
    if fw:
        w("| the same into written space (a file written and synced first) | p50 %s ms, "
          "p99 %s ms, %s/s |" % (_f(fw.get("p50_ms"), 3), _f(fw.get("p99_ms"), 3),
                                 _f(fw.get("per_s"))))
    w("| Ed25519 sign (1 / 2 threads) | %s / %s per s |" % (
        _f(ed.get("sign_per_s_1")), _f(ed.get("sign_per_s_2"))))
    w("| Ed25519 verify (1 / 2 threads) | %s / %s per s |" % (
        _f(ed.get("verify_per_s_1")), _f(ed.get("verify_per_s_2"))))
    w("| SHA-256 of %s-byte events (1 thread) | %s hashes/s, %s MB/s |" % (
        _f(sha.get("event_bytes")), _f(sha.get("hashes_per_s")), _f(sha.get("mb_per_s"), 1)))
    rdb = raw.get("rocksdb") or {}
    for s in rdb.get("scenarios") or []:
        w("| raw RocksDB synced writes, the store's 4 entries per event (%s-byte records), "
          "batch %d, %d writer thread%s | %s ev/s, p50 %s ms, p99 %s ms |" % (
              _f(rdb.get("record_bytes")), s["batch"], s["threads"],
              "" if s["threads"] == 1 else "s", _f(s.get("events_per_s")),
              _f(s.get("p50_ms"), 3), _f(s.get("p99_ms"), 3)))
    store = (r.get("raw_rocksdb") or {}).get("scenarios") or []
    for s in store:
        if s.get("signatures") != "batch":
            continue
        w("| raw RocksDB synced writes, batch %d, threads %d (1 put / 4 puts per event) "
          "| %s / %s ev/s (store: %s, store / 1 put %s) |" % (
              s["batch"], s["threads"], _f(s.get("raw_events_per_s")),
              _f(s.get("raw4_events_per_s")), _f(s.get("store_events_per_s")),
              _f(_ratio(s.get("store_events_per_s"), s.get("raw_events_per_s")), 2)))
    w("")
    return L


def floor_rows(r, pg_single_target):
    """clinlog's one event a call beside the floor of the stack at the same
    concurrency (clinlog-bench grpc's floor rows: a gRPC server answering at
    once, and with a signature check and a group-committed durable write;
    bench/grpcfloor.h) and beside PostgreSQL's single-event transactions:
    clinlog/floor, floor/PostgreSQL, and what the target against PostgreSQL
    (pg_single_target: {concurrency: x}) asks of clinlog as a share of the
    floor (above 1: the floor itself falls short of it in that run)."""
    floor = (r.get("clinlog_single") or {}).get("floor") or []
    rows = []
    for conc in (1, 16, 64):
        echo = _get(floor, durable=False, concurrency=conc) or {}
        dur = _get(floor, durable=True, concurrency=conc) or {}
        if not echo and not dur:
            continue
        cmp_row = _get(r.get("comparisons"), batch=1, concurrency=conc) or {}
        ce, pe = cmp_row.get("clinlog_events_per_s"), cmp_row.get("postgresql_events_per_s")
        fe = dur.get("calls_per_s")
        tgt = pg_single_target.get(conc)
        rows.append({"concurrency": conc,
                     "answers_only_calls_per_s": echo.get("calls_per_s"),
                     "answers_only_p50_ms": echo.get("p50_ms"),
                     "durable_calls_per_s": fe, "durable_p50_ms": dur.get("p50_ms"),
                     "durable_server_cpu_us_per_call": dur.get("server_cpu_us_per_call"),
                     "clinlog_events_per_s": ce, "postgresql_events_per_s": pe,
                     "clinlog_over_floor": _ratio(ce, fe),
                     "floor_over_postgresql": _ratio(fe, pe),
                     "target_over_postgresql": tgt,
                     "target_over_floor": (round(tgt * pe / fe, 3)
                                           if tgt is not None and pe and fe else None)})
    return rows


def floor_section(r):
    """report.md's floor of a call on this stack, after the single-node table."""
    rows = r.get("floor_rows") or []
    if not rows:
        return []
    L = []
    w = L.append
    w("")
    w("### The floor of one event a call on this stack")
    w("")
    w("The same client, pre-signed batches and load generator as clinlog's batch-1 rows, "
      "against a gRPC C-core server that does only what any server of signed durable events "
      "must (`clinlog-bench floor-server`, bench/grpcfloor.h): two completion-queue threads "
      "as clinlogd, Append registered with its payload read with the call, a pre-encoded "
      "answer sent at once from the thread that took the call; the durable floor first "
      "checks one Ed25519 signature and waits for a group-committed pwrite + fdatasync of "
      "512 bytes a call (no hand-off: the thread that finds no write in progress writes "
      "for every call waiting). No store, no Raft, no projection. \"Target needs\": "
      "clinlog's target against PostgreSQL as a share of the durable floor (above 1: the "
      "floor itself falls short of it in this run).")
    w("")
    w("| conc | answers only calls/s | durable floor calls/s | p50 ms | server µs/call "
      "| clinlog ev/s | clinlog/floor | PostgreSQL ev/s | floor/PG | target | target needs "
      "(x floor) |")
    w("|---|---|---|---|---|---|---|---|---|---|---|")
    for x in rows:
        w("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            x["concurrency"], _f(x.get("answers_only_calls_per_s")),
            _f(x.get("durable_calls_per_s")), _f(x.get("durable_p50_ms"), 2),
            _f(x.get("durable_server_cpu_us_per_call"), 0), _f(x.get("clinlog_events_per_s")),
            _f(x.get("clinlog_over_floor"), 2), _f(x.get("postgresql_events_per_s")),
            _f(x.get("floor_over_postgresql"), 2),
            ">= %.1f x PG" % x["target_over_postgresql"]
            if x.get("target_over_postgresql") is not None else "—",
            _f(x.get("target_over_floor"), 2)))
    return L

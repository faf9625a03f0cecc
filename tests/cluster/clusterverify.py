"""The end of a cluster test: read every node's records back and check that
they agree (byte-identical records, every acknowledged event exactly once,
gap-free stream versions, identical Merkle roots, linearizable reads) and
that `clinlog verify` passes on every data directory. Part of cluster.py's
machinery (which re-exports these names); reaches the rest of it as
`harness.` at call time."""
import collections
import json
import time

import grpc

import cluster as harness  # the parameters named cluster are Cluster objects
import common
from common import T


def read_all(node, min_sequence=0, timeout=None):
    req = common.pb.api.ReadRequest(include_record=True)
    if min_sequence:
        req.consistency.min_sequence = min_sequence
    return list(node.client.read_call(req, timeout=timeout or T(120)))


def check_linearizable(cluster, ids, leader):
    """A linearizable read: served by the leader (everything committed is
    there), refused by a follower with UNAVAILABLE + "clinlog-leader"."""
    problems = []
    for i in ids:
        req = common.pb.api.ReadRequest(max_count=1)
        req.consistency.linearizable = True
        try:
            got = list(cluster.nodes[i].client.read_call(req, timeout=T(10)))
            if i != leader:
                problems.append("node %d (follower) served a linearizable read" % i)
            elif not got:
                problems.append("linearizable read on the leader returned nothing")
        except grpc.RpcError as e:
            if i == leader:
                problems.append("linearizable read on the leader %d: %s" % (i, harness.rpc_err(e)))
            elif e.code() != grpc.StatusCode.UNAVAILABLE or \
                    common.md(e).get("clinlog-leader") != cluster.nodes[leader].addr:
                problems.append("linearizable read on follower %d: %s (want UNAVAILABLE with "
                                "clinlog-leader %s)"
                                % (i, harness.rpc_err(e), cluster.nodes[leader].addr))
    return problems


def verify_cluster(cluster, workload, ids=None, extra_absent=(), label=""):
    """Converges, then checks every node against each other and against what
    the workload had acknowledged. Returns a dict of numbers; raises
    AssertionError with diagnostics."""
    ids = ids or cluster.ids()
    t0 = time.monotonic()
    sts = cluster.wait_converged(ids)
    harness.log("%s: converged in %.1fs at tree size %d" % (label, time.monotonic() - t0,
                                                   sts[ids[0]].tree_size))
    size = sts[ids[0]].tree_size
    problems = []
    reads = {}
    for i in ids:
        reads[i] = read_all(cluster.nodes[i], min_sequence=size)
        if len(reads[i]) != size:
            problems.append("node %d: Read returned %d events, Status says tree size %d"
                            % (i, len(reads[i]), size))
    ref_id = ids[0]
    ref = reads[ref_id]
    # byte-for-byte identical records on every node
    for i in ids[1:]:
        other = reads[i]
        for k in range(min(len(ref), len(other))):
            a, b = ref[k], other[k]
            if a.record != b.record or a.seq != b.seq or a.event_id != b.event_id:
                problems.append("node %d and node %d differ first at index %d: seq %d/%d id %s/%s"
                                % (ref_id, i, k, a.seq, b.seq, a.event_id.hex(),
                                   b.event_id.hex()))
                break
        if len(ref) != len(other):
            problems.append("node %d holds %d events, node %d %d" % (ref_id, len(ref), i,
                                                                     len(other)))
    # seqs, unique ids, gap-free stream versions
    by_id = {}
    dup_ids = 0
    versions = collections.defaultdict(list)
    for k, e in enumerate(ref):
        if e.seq != k + 1:
            problems.append("index %d holds seq %d" % (k, e.seq))
            break
        if not e.record:
            problems.append("seq %d: no record (include_record)" % e.seq)
            break
        if e.event_id in by_id:
            dup_ids += 1
            if dup_ids <= 5:
                problems.append("event id %s appears at seq %d and %d"
                                % (e.event_id.hex(), by_id[e.event_id].seq, e.seq))
        by_id[e.event_id] = e
        versions[e.stream].append(e.stream_version)
    gaps = [(s, v[:10]) for s, v in versions.items() if v != list(range(1, len(v) + 1))]
    if gaps:
        problems.append("%d streams whose versions are not 1..n: %s" % (len(gaps), gaps[:5]))
    if dup_ids:
        problems.append("%d duplicate event ids" % dup_ids)
    # every acknowledged event exactly once, where it was acknowledged
    missing, moved = [], []
    with workload.lock:
        acks = dict(workload.acks)
    for eid, (seq, stream, ver) in acks.items():
        e = by_id.get(eid)
        if e is None:
            missing.append((eid.hex(), seq))
        elif (e.seq, e.stream, e.stream_version) != (seq, stream, ver):
            moved.append((eid.hex(), (seq, stream, ver), (e.seq, e.stream, e.stream_version)))
    if missing:
        problems.append("%d acknowledged events are missing, e.g. %s" % (len(missing),
                                                                        missing[:5]))
    if moved:
        problems.append("%d acknowledged events are at another position than acknowledged, "
                        "e.g. (id, acked (seq, version), found): %s" % (len(moved), moved[:5]))
    present = [x.hex() for x in extra_absent if x in by_id]
    if present:
        problems.append("%d events whose appends failed on the isolated old leader are in the "
                        "log: %s" % (len(present), present[:5]))
    # exact streams: the workload's own count
    for s, v in workload.exact_versions.items():
        if len(versions.get(s, ())) != v:
            problems.append("stream %s holds %d events, writer acknowledged %d"
                            % (s, len(versions.get(s, ())), v))
    leader = [i for i in ids if sts[i].state == "leader"][0]
    problems += check_linearizable(cluster, ids, leader)
    # Merkle roots
    leaves = [common.leaf_hash(e.record) for e in ref]
    root = common.mth(leaves)
    pks = set()
    for i in ids:
        if sts[i].root_hash != root:
            problems.append("node %d: Status root %s != root of the records %s"
                            % (i, sts[i].root_hash.hex(), root.hex()))
        try:
            cp = cluster.nodes[i].client.checkpoint(fresh=True)
            pks.add(cp.log_public_key)
            _, csize, croot = common.verify_note(cp.note, cp.log_public_key)
            if (csize, croot) != (size, root) or (cp.tree_size, cp.root_hash) != (size, root):
                problems.append("node %d: fresh checkpoint at %d root %s, expected %d %s"
                                % (i, cp.tree_size, cp.root_hash.hex(), size, root.hex()))
            old = max(1, size // 3)
            pr = cluster.nodes[i].client.prove_consistency(old, size)
            old_root = common.mth(leaves[:old])
            if pr.old_root != old_root or pr.new_root != root or not common.verify_consistency(
                    old, size, old_root, root, list(pr.hashes)):
                problems.append("node %d: consistency proof %d -> %d does not verify"
                                % (i, old, size))
        except (grpc.RpcError, AssertionError, Exception) as e:
            problems.append("node %d: checkpoint/proof: %s" % (
                i, harness.rpc_err(e) if isinstance(e, grpc.RpcError) else repr(e)))
    if len(pks) > 1:
        problems.append("nodes sign with different log keys")
    with workload.lock:
        anomalies = list(workload.anomalies)
    if anomalies:
        problems.append("%d workload anomalies:\n  %s" % (len(anomalies),
                                                         "\n  ".join(anomalies[:10])))
    harness.log("%s: records, ids, versions, roots and proofs of %d nodes checked in %.1fs"
        % (label, len(ids), time.monotonic() - t0))
    if problems:
        raise AssertionError("%s verification failed:\n- %s\nstatuses:\n%s\n%s"
                             % (label, "\n- ".join(problems), harness.fmt_statuses(sts),
                                cluster.diag()))
    return {"tree_size": size, "acked_events": len(acks), "streams": len(versions),
            "root": root.hex()}


def stop_and_verify_dirs(cluster, tree_size=None, extra_dirs=()):
    """SIGTERM every node (exit 0 expected), then `clinlog verify DIR --json`
    on every data directory (exit 0 expected; a member's tree size must be
    tree_size). Returns (problems, {data dir: verified tree size})."""
    problems = []
    t0 = time.monotonic()
    rcs = cluster.stop_all()
    harness.log("%s: nodes stopped in %.1fs: exit codes %s, seconds each %s" % (
        cluster.name, time.monotonic() - t0, rcs,
        {i: round(x, 1) for i, x in cluster.stop_times.items()}))
    for i, rc in sorted(rcs.items()):
        if rc != 0:
            problems.append("node %d exited %r after SIGTERM:\n%s" % (
                i, rc, harness.tail(cluster.nodes[i].stderr(), 30)))
    dirs = [(n.id, n.data) for n in cluster.nodes.values()] + \
           [(n.id, n.data) for n in cluster.retired] + list(extra_dirs)
    sizes = {}
    for i, d in dirs:
        r = harness.clinlog("verify", d, "--json")
        if r.returncode != 0:
            problems.append("clinlog verify %s (node %d) exited %d:\n%s%s"
                            % (d, i, r.returncode, r.stdout[-3000:], r.stderr[-3000:]))
        else:
            try:
                j = json.loads(r.stdout.strip().splitlines()[-1])
            except (ValueError, IndexError):
                j = {}
            if j.get("ok") is not True:
                problems.append("clinlog verify %s (node %d) exited 0 but printed %r"
                                % (d, i, r.stdout[-2000:]))
            sizes[d] = j.get("treeSize")
            if tree_size is not None and any(n.data == d for n in cluster.nodes.values()) \
                    and j.get("treeSize") != tree_size:
                problems.append("clinlog verify %s (node %d): tree size %r, the cluster's is %d"
                                % (d, i, j.get("treeSize"), tree_size))
    problems += cluster.sanitizer_reports()
    harness.log("%s: clinlog verify of %d data directories done in %.1fs" % (
        cluster.name, len(dirs), time.monotonic() - t0))
    return problems, sizes


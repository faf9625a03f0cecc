"""Machinery of the clinlogd cluster fault suite: cluster nodes (real clinlogd
processes), the Cluster API client, a Raft link proxy that can cut directed
links, a write workload that records every acknowledged event, and the
end-of-test verification (every node holds the same records, every
acknowledged event exactly once, gap-free stream versions, identical Merkle
roots, `clinlog verify` on every data directory).

Reuses tests/interop/common.py (protobuf generation, Signer, events, the
hand-rolled Client, Server). Runs only under Debian's /usr/bin/python3.
"""
import collections
import importlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "interop"))

# Before grpc is imported (common.py says why)
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
import grpc  # noqa: E402

import common  # noqa: E402
from common import T  # noqa: E402
from clusterpki import make_ca, make_node_cert, openssl, pki  # noqa: E402,F401
from raftproxy import RaftProxy  # noqa: E402,F401

cpb = None  # clinlog.v1.cluster_pb2

ELECTION_MS = 1000
HEARTBEAT_MS = 100

SERVER_ARGS = []  # extra clinlogd flags for every node (run.py --server-arg)

# Mutual TLS on the Raft transport (--raft-tls-*), on unless run.py
# --raft-plaintext: then the nodes speak plaintext Raft on loopback (--dev).
RAFT_TLS = True

RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
# CANCELLED: the test closed its channel to a node it stops (Node.sigterm_stop)
WRITER_RETRYABLE = RETRYABLE + (grpc.StatusCode.CANCELLED,)


def setup(build, tmp, scale):
    """common.setup compiles every proto of proto/clinlog/v1, cluster.proto
    included; this imports the cluster module on top."""
    global cpb
    common.setup(build, tmp, scale)
    cpb = importlib.import_module("clinlog.v1.cluster_pb2")


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


# ---------------------------------------------------------------------------
# Clients


class NodeClient(common.Client):
    """common.Client (clinlog.v1.Log) plus clinlog.v1.Cluster."""

    def __init__(self, target, credentials=None, options=()):
        super().__init__(target, credentials=credentials, options=options)
        C = "/clinlog.v1.Cluster/"
        uu = self.channel.unary_unary
        self._status = uu(C + "Status", cpb.ClusterStatusRequest.SerializeToString,
                          cpb.ClusterStatus.FromString)
        self._add = uu(C + "AddNode", cpb.AddNodeRequest.SerializeToString,
                       cpb.ClusterStatus.FromString)
        self._remove = uu(C + "RemoveNode", cpb.RemoveNodeRequest.SerializeToString,
                          cpb.ClusterStatus.FromString)
        self._transfer = uu(C + "TransferLeadership",
                            cpb.TransferLeadershipRequest.SerializeToString,
                            cpb.ClusterStatus.FromString)

    def status(self, timeout=None):
        return self._status(cpb.ClusterStatusRequest(), timeout=timeout or T(2))

    def add_node(self, id, raft_address, api_address, timeout=None):
        return self._add(cpb.AddNodeRequest(id=id, raft_address=raft_address,
                                            api_address=api_address),
                         timeout=timeout or T(120))

    def remove_node(self, id, timeout=None):
        return self._remove(cpb.RemoveNodeRequest(id=id), timeout=timeout or T(60))

    def transfer(self, id, timeout=None):
        return self._transfer(cpb.TransferLeadershipRequest(id=id), timeout=timeout or T(30))


def rpc_err(e):
    try:
        return "%s: %s %r" % (e.code().name, e.details(), common.md(e))
    except Exception:
        return repr(e)


# ---------------------------------------------------------------------------
# Nodes


def tail(text, lines=40):
    return "\n".join(text.splitlines()[-lines:])


class Node(common.Server):
    """One cluster member. `raft_port` is where it listens; `raft_address` is
    what the cluster configuration holds (a proxy port in the partition test)."""

    def __init__(self, node_id, data, raft_port=None, raft_address=None, join=True,
                 extra=(), audit=False):
        # the audit trail is off unless asked for: the replication tests
        # compare whole logs, which every call's record would grow under them
        super().__init__(data_dir=data, audit=audit)
        self.id = node_id
        self.raft_port = raft_port or common.free_port()
        self.raft_address = raft_address or "127.0.0.1:%d" % self.raft_port
        self.join = join
        self.extra = list(extra)
        self.paused = False
        self.client = NodeClient(self.addr)
        self.all_stderr = []  # every start's stderr file
        self.exit_codes = []
        self.credentials = None  # the test's channel to a node whose API has TLS

    def new_client(self):
        return NodeClient(self.addr, credentials=self.credentials)

    def argv(self):
        a = super().argv() + ["--node-id", str(self.id),
                              "--raft-listen", "127.0.0.1:%d" % self.raft_port,
                              "--election-timeout-ms", str(ELECTION_MS),
                              "--heartbeat-ms", str(HEARTBEAT_MS)]
        if self.join:
            a.append("--join")
        if RAFT_TLS:
            p = pki()
            a += ["--raft-tls-cert", p["cert"], "--raft-tls-key", p["key"],
                  "--raft-tls-ca", p["ca"]]
        return a + SERVER_ARGS + self.extra

    def spawn(self):
        p = super().spawn()
        self.all_stderr.append(self.stderr_path)
        return p

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def up(self):
        return self.alive() and not self.paused

    def sigkill(self):
        self.paused = False
        self.kill()
        self.exit_codes.append(("SIGKILL", self.proc.returncode))

    def pause(self):
        os.kill(self.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self):
        if self.paused and self.alive():
            os.kill(self.pid, signal.SIGCONT)
        self.paused = False

    def sigterm_stop(self):
        """SIGTERM and wait. The test's own channel to the node is closed
        first: clinlogd's graceful stop waits (up to its 10 s grace period)
        for open client connections to go away."""
        self.resume()
        self.client.close()
        try:
            rc = self.stop(timeout=T(30))
        finally:
            self.client = self.new_client()
        self.exit_codes.append(("SIGTERM", rc))
        return rc

    def stderr_all(self):
        out = []
        for p in self.all_stderr:
            try:
                with open(p, errors="replace") as f:
                    out.append("--- %s\n%s" % (os.path.basename(p), f.read()))
            except OSError:
                pass
        return "\n".join(out)

    def diag(self, lines=30):
        parts = []
        for p in self.all_stderr[-3:]:
            try:
                with open(p, errors="replace") as f:
                    parts.append("  --- %s (last %d lines)\n%s" % (
                        os.path.basename(p), lines,
                        "\n".join("    " + l for l in tail(f.read(), lines).splitlines())))
            except OSError:
                pass
        state = "paused" if self.paused else "alive" if self.alive() else (
            "exited %s" % (self.proc.returncode if self.proc else None))
        return "node %d (api %s, raft listen %d, config %s, %s):\n%s" % (
            self.id, self.addr, self.raft_port, self.raft_address, state, "\n".join(parts))


def clinlog(*args, timeout=None):
    return subprocess.run([common.CLINLOG] + list(args), capture_output=True, text=True,
                          timeout=timeout or T(120))


# ---------------------------------------------------------------------------
# Clusters


class Cluster:
    """Up to a few nodes sharing one seed store's keys. With proxied=True every
    node's configured Raft address is a RaftProxy port."""

    def __init__(self, name, proxied=False, audit=False):
        self.name = name
        self.audit = audit
        self.nodes = {}
        self.proxy = RaftProxy() if proxied else None
        self.seed = None
        self.retired = []  # nodes removed from the cluster (their data dirs are verified too)
        self.signer = None
        self.workload = None

    # -- set-up

    def _data_dir(self, tag):
        d = tempfile.mkdtemp(prefix="%s-%s-" % (self.name, tag), dir=common.TMP)
        os.rmdir(d)
        return d

    def init_seed(self):
        d = self._data_dir("n1")
        r = clinlog("init", d, "--admin", "admin", "--organization", "Cluster Test")
        if r.returncode:
            raise RuntimeError("clinlog init failed: %s%s" % (r.stdout, r.stderr))
        self.seed = d
        self.signer = common.Signer.load(os.path.join(d, "keys", "admin.key"))
        return d

    def replica_dir(self, tag):
        d = self._data_dir(tag)
        r = clinlog("init", d, "--replica-of", self.seed)
        if r.returncode:
            raise RuntimeError("clinlog init --replica-of failed (rc %d): %s%s"
                               % (r.returncode, r.stdout, r.stderr))
        return d

    def start(self, n=3):
        """Bootstraps node 1 on the seed store and adds nodes 2..n."""
        d = self.init_seed()
        if self.proxy:
            # The configuration keeps the address node 1 bootstrapped with:
            # bootstrap on what becomes the proxy port, then move node 1's
            # listener behind the proxy.
            aport = common.free_port()
            n1 = Node(1, d, raft_port=aport, join=False, audit=self.audit)
            self.nodes[1] = n1
            n1.start()
            self.wait_leader([1], timeout=T(20))
            rc = n1.sigterm_stop()
            if rc != 0:
                raise RuntimeError("node 1 exited %r after SIGTERM:\n%s" % (rc, n1.diag()))
            n1.raft_port = common.free_port()
            self.proxy.add(1, n1.raft_port, listen_port=aport)
            n1.raft_address = "127.0.0.1:%d" % aport
            n1.start()
        else:
            n1 = Node(1, d, join=False, audit=self.audit)
            self.nodes[1] = n1
            n1.start()
        self.wait_leader([1], timeout=T(20))
        for k in range(2, n + 1):
            self.add_node(k)
        return self

    def new_node(self, node_id, tag=None):
        d = self.replica_dir(tag or "n%d" % node_id)
        node = Node(node_id, d, join=True, audit=self.audit)
        if self.proxy:
            node.raft_address = "127.0.0.1:%d" % self.proxy.add(node_id, node.raft_port)
        return node

    def add_node(self, node_id, tag=None):
        node = self.new_node(node_id, tag)
        node.start()
        self.nodes[node_id] = node
        t0 = time.monotonic()
        deadline = t0 + T(120)
        last = None
        while time.monotonic() < deadline:
            lid = self.leader(timeout=T(10))
            try:
                st = self.nodes[lid].client.add_node(node_id, node.raft_address, node.addr,
                                                     timeout=max(1, deadline - time.monotonic()))
                roles = {m.id: m.role for m in st.nodes}
                if roles.get(node_id) != "voter":
                    raise AssertionError("AddNode(%d) returned without it being a voter: %s"
                                         % (node_id, st))
                log("%s: node %d added as a voter in %.2fs" % (self.name, node_id,
                                                              time.monotonic() - t0))
                return node
            except grpc.RpcError as e:
                last = rpc_err(e)
                if e.code() not in RETRYABLE:
                    raise AssertionError("AddNode(%d) on node %d: %s\n%s"
                                         % (node_id, lid, last, self.diag()))
                time.sleep(0.2)
        raise AssertionError("AddNode(%d) did not succeed in %ss: %s\n%s"
                             % (node_id, T(120), last, self.diag()))

    # -- observation

    def ids(self):
        return sorted(self.nodes)

    def statuses(self, ids=None, timeout=None):
        """{id: ClusterStatus or an error string} of the nodes that are up."""
        out = {}
        for i in ids or self.ids():
            n = self.nodes[i]
            if not n.up():
                out[i] = "down" if not n.alive() else "paused"
                continue
            try:
                out[i] = n.client.status(timeout=timeout or T(1.5))
            except grpc.RpcError as e:
                out[i] = rpc_err(e)
        return out

    def leader(self, ids=None, timeout=None, exclude=()):
        """Waits for a node that says it leads and is acknowledged by a
        majority of the responding nodes; returns its id."""
        deadline = time.monotonic() + (timeout or T(15))
        last = None
        while True:
            sts = self.statuses(ids)
            last = sts
            leaders = [(s.term, i) for i, s in sts.items()
                       if not isinstance(s, str) and s.state == "leader" and i not in exclude]
            if leaders:
                term, lid = max(leaders)
                voters = [m.id for m in sts[lid].nodes if m.role == "voter"]
                agree = sum(1 for i in voters
                            if not isinstance(sts.get(i, "-"), str) and sts[i].leader_id == lid
                            and sts[i].term == term)
                if agree * 2 > len(voters):
                    return lid
            if time.monotonic() >= deadline:
                raise AssertionError("no leader within %ss; statuses:\n%s\n%s"
                                     % (timeout or T(15), fmt_statuses(last), self.diag()))
            time.sleep(0.05)

    def wait_leader(self, ids, timeout=None):
        return self.leader(ids, timeout)

    def wait_converged(self, ids=None, timeout=None):
        """Waits until every node (all up) reports the same tree size, root,
        applied and commit index and the same leader, twice in a row."""
        ids = ids or self.ids()
        deadline = time.monotonic() + (timeout or T(60))
        prev = None
        last = None
        while time.monotonic() < deadline:
            sts = self.statuses(ids)
            last = sts
            if all(not isinstance(s, str) for s in sts.values()):
                key = set((s.tree_size, s.root_hash, s.applied_index, s.commit_index,
                           s.leader_id) for s in sts.values())
                leaders = [s for s in sts.values() if s.state == "leader"]
                if len(key) == 1 and len(leaders) == 1:
                    k = next(iter(key))
                    if k == prev:
                        return sts
                    prev = k
                else:
                    prev = None
            time.sleep(0.3)
        raise AssertionError("nodes %s did not converge within %ss:\n%s\n%s"
                             % (ids, timeout or T(60), fmt_statuses(last), self.diag()))

    def diag(self):
        parts = []
        try:
            parts.append("statuses:\n" + fmt_statuses(self.statuses(timeout=1)))
        except Exception as e:  # diagnostics must not raise
            parts.append("statuses: %r" % e)
        if self.workload is not None:
            with self.workload.lock:
                errs = list(self.workload.last_errors)
            parts.append("last writer errors (age s, node, error):\n" + "\n".join(
                "  %.2f node %d %s" % (time.monotonic() - t, i, m) for t, i, m in errs))
        parts += [n.diag() for _, n in sorted(self.nodes.items())]
        stuck = [i for i, n in sorted(self.nodes.items()) if n.up() and not self._answers(i)]
        if stuck:
            parts.append(stack_summary({i: self.nodes[i] for i in stuck}))
        parts += ["(removed) " + n.diag() for n in self.retired]
        if self.proxy:
            parts.append("proxy: blocked %s, stats %s" % (sorted(self.proxy.blocked),
                                                          dict(self.proxy.stats)))
        return "\n".join(parts)

    def _answers(self, i):
        try:
            self.nodes[i].client.status(timeout=1)
            return True
        except grpc.RpcError:
            return False

    def sanitizer_reports(self):
        out = []
        for n in list(self.nodes.values()) + self.retired:
            n._check_sanitizer()
            text = n.stderr_all()
            for m in common.SANITIZER_MARKERS:
                if m in text:
                    out.append("node %d: %s" % (n.id, text[-6000:]))
                    break
        return out

    # -- end

    def stop_all(self):
        """SIGTERM every node; returns {id: exit code}."""
        rcs = {}
        self.stop_times = {}
        for i, n in sorted(self.nodes.items()):
            if n.alive():
                t = time.monotonic()
                rcs[i] = n.sigterm_stop()
                self.stop_times[i] = time.monotonic() - t
        return rcs

    def close(self):
        for n in list(self.nodes.values()) + self.retired:
            try:
                n.resume()
            except Exception:
                pass
            n.kill()
            n.client.close()
        if self.proxy:
            self.proxy.close()


def stack_summary(nodes):
    """For nodes that do not answer: which clinlog functions their threads
    are in (gdb, when installed), e.g. every API worker blocked forwarding."""
    gdb = shutil.which("gdb")
    if not gdb:
        return "(nodes %s do not answer Status; gdb is not installed for their stacks)" % (
            sorted(nodes))
    out = []
    for i, n in sorted(nodes.items()):
        try:
            r = subprocess.run([gdb, "-p", str(n.pid), "-batch", "-nx", "-ex",
                                "thread apply all bt"], capture_output=True, text=True,
                               timeout=T(60))
        except (OSError, subprocess.TimeoutExpired) as e:
            out.append("node %d: gdb failed: %r" % (i, e))
            continue
        threads = r.stdout.split("\nThread ")
        frames = collections.Counter()
        for th in threads[1:]:
            names = re.findall(r"^#\d+ +(?:0x[0-9a-f]+ in )?([A-Za-z_][A-Za-z0-9_:]*) \(.*? at "
                               r"/\S*/(?:adapters|replication|store)/", th, re.M)
            if names:
                frames[" <- ".join(names[:4])] += 1
        out.append("node %d (pid %d, %d threads), clinlog frames of its threads (innermost "
                   "first):\n%s" % (i, n.pid, len(threads) - 1, "\n".join(
                       "  %3d x %s" % (k, f) for f, k in frames.most_common(8))))
    return "nodes %s do not answer Status; their threads:\n%s" % (sorted(nodes),
                                                                   "\n".join(out))


def fmt_statuses(sts):
    if not sts:
        return "  (none)"
    lines = []
    for i, s in sorted(sts.items()):
        if isinstance(s, str):
            lines.append("  node %d: %s" % (i, s))
        else:
            lines.append("  node %d: %s term %d leader %d commit %d applied %d last %d size %d "
                         "root %s members %s" % (
                             i, s.state, s.term, s.leader_id, s.commit_index, s.applied_index,
                             s.last_index, s.tree_size, s.root_hash.hex()[:16],
                             ["%d:%s%s" % (m.id, m.role, "/" + m.state if m.state else "")
                              for m in s.nodes]))
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Workload


class Ack:
    __slots__ = ("t_start", "t_ack", "node", "n", "dup")

    def __init__(self, t_start, t_ack, node, n, dup):
        self.t_start, self.t_ack, self.node, self.n, self.dup = t_start, t_ack, node, n, dup


class Workload:
    """`writers` threads appending over gRPC to any node: single events and
    small batches on shared streams (expected version ANY), and per writer one
    stream appended with EXACT expected versions. Every attempt that fails
    with UNAVAILABLE or DEADLINE_EXCEEDED is retried, the same batch (so the
    same event ids), against some node (the "clinlog-leader" hint first).
    Everything acknowledged is recorded: event id -> (seq, stream, version)."""

    def __init__(self, cluster, writers=4, shared_streams=6, seed=None, attempt_timeout=None,
                 pace=0.004):
        self.cluster = cluster
        self.nwriters = writers
        self.seed = seed if seed is not None else random.randrange(1 << 30)
        tag = uuid.uuid4().hex[:6]
        self.shared = ["patient-any-%s-%d" % (tag, i) for i in range(shared_streams)]
        self.exact = ["patient-exact-%s-w%d" % (tag, w) for w in range(writers)]
        self.attempt_timeout = attempt_timeout or T(3)
        self.pace = pace
        self.lock = threading.Lock()
        self.acks = {}            # event id -> (seq, stream, version)
        self.ack_log = []         # Ack, in completion order
        self.anomalies = []       # strings: anything that is neither success nor retryable
        self.retries = collections.Counter()
        self.exact_versions = {s: 0 for s in self.exact}
        self.targets = list(cluster.ids())
        self.stop_ev = threading.Event()
        self.hard_stop = threading.Event()
        self.threads = []
        self.unresolved = []
        self.last_errors = collections.deque(maxlen=12)
        cluster.workload = self

    def set_targets(self, ids):
        with self.lock:
            self.targets = list(ids)

    def start(self):
        for w in range(self.nwriters):
            t = threading.Thread(target=self._writer, args=(w,), name="writer-%d" % w,
                                 daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def stop(self, timeout=None):
        """Stops starting new appends; the ones in progress are retried until
        they resolve (bounded)."""
        self.stop_ev.set()
        deadline = time.monotonic() + (timeout or T(60))
        for t in self.threads:
            t.join(max(0.1, deadline - time.monotonic()))
        if any(t.is_alive() for t in self.threads):
            self.hard_stop.set()
            for t in self.threads:
                t.join(T(10))
        return not any(t.is_alive() for t in self.threads)

    def count(self):
        with self.lock:
            return len(self.ack_log)

    def acks_since(self, t):
        """Acks of attempts started at or after monotonic time t."""
        with self.lock:
            return [a for a in self.ack_log if a.t_start >= t]

    def wait_progress(self, t, n=1, timeout=None):
        """Waits until n appends started at or after t are acknowledged;
        returns the first one's ack time (or None)."""
        deadline = time.monotonic() + (timeout or T(20))
        while time.monotonic() < deadline:
            acks = self.acks_since(t)
            if len(acks) >= n:
                return min(a.t_ack for a in acks)
            time.sleep(0.02)
        return None

    # -- writer

    def _node_by_addr(self, addr):
        for i, n in self.cluster.nodes.items():
            if n.addr == addr:
                return i
        return None

    def _writer(self, w):
        rng = random.Random(self.seed * 31 + w)
        signer = self.cluster.signer
        own = self.exact[w]
        sticky = None
        while not self.stop_ev.is_set():
            r = rng.random()
            if r < 0.35:
                k = rng.choice((1, 1, 2))
                evs = [common.event(own, text="w%d" % w) for _ in range(k)]
                exp = [(own, common.pb.record.ExpectedVersion.EXACT, self.exact_versions[own])]
                b = common.batch(evs, signer, mode=rng.choice(("event", "batch")),
                                 expectations=exp)
                kind = "exact"
            elif r < 0.7:
                evs = [common.event(rng.choice(self.shared))]
                b = common.batch(evs, signer)
                kind = "single"
            else:
                evs = [common.event(rng.choice(self.shared)) for _ in range(rng.randint(2, 4))]
                b = common.batch(evs, signer, mode=rng.choice(("event", "batch")))
                kind = "batch"
            ids, streams = [], []
            for e in evs:
                m = common.pb.event.Event()
                m.ParseFromString(e)
                ids.append(m.event_id)
                streams.append(m.stream)
            resp, sticky = self._submit(b, ids, streams, rng, sticky, w)
            if resp is None:
                return
            if rng.random() < 0.1:
                self._read_your_write(rng, ids[0], resp)
            if kind == "exact":
                base = self.exact_versions[own]
                got = [p.stream_version for p in resp.positions]
                if got != list(range(base + 1, base + 1 + len(evs))):
                    self._anomaly("writer %d: EXACT append at version %d got versions %s"
                                  % (w, base, got))
                    return
                self.exact_versions[own] = base + len(evs)
            if self.pace:
                time.sleep(self.pace)

    def _read_your_write(self, rng, eid, resp):
        """GetEvent of an acknowledged event on some node with
        consistency.min_sequence = the append's tree size: the node must wait
        until it has applied that much and then hold the event where it was
        acknowledged. Unavailable nodes (killed, paused) are skipped."""
        with self.lock:
            targets = list(self.targets)
        i = rng.choice(targets)
        req = common.pb.api.GetEventRequest(event_id=eid)
        req.consistency.min_sequence = resp.tree_size
        try:
            ev = self.cluster.nodes[i].client._get(req, timeout=T(2))
        except grpc.RpcError as e:
            if e.code() in WRITER_RETRYABLE:
                with self.lock:
                    self.retries["read-your-write " + e.code().name] += 1
                return
            self._anomaly("GetEvent(min_sequence %d) on node %d of an acknowledged event: %s"
                          % (resp.tree_size, i, rpc_err(e)))
            return
        p = resp.positions[0]
        if (ev.seq, ev.stream_version) != (p.seq, p.stream_version):
            self._anomaly("GetEvent(min_sequence %d) on node %d: seq %d version %d, the append "
                          "answered seq %d version %d" % (resp.tree_size, i, ev.seq,
                                                          ev.stream_version, p.seq,
                                                          p.stream_version))
        with self.lock:
            self.retries["read-your-write ok"] += 1

    def _anomaly(self, msg):
        with self.lock:
            self.anomalies.append(msg)
        log("ANOMALY: " + msg)

    def _submit(self, b, ids, streams, rng, sticky, w):
        first = time.monotonic()
        hint = None
        avoid = None
        attempts = 0
        while True:
            if self.hard_stop.is_set() or time.monotonic() - first > T(90):
                with self.lock:
                    self.unresolved.append((w, [i.hex() for i in ids]))
                self._anomaly("writer %d: a batch was still not acknowledged after %d attempts "
                              "in %.0fs" % (w, attempts, time.monotonic() - first))
                return None, None
            with self.lock:
                targets = list(self.targets)
            if hint in targets:
                target = hint
            elif sticky in targets and sticky != avoid and rng.random() < 0.7:
                target = sticky
            else:
                cands = [t for t in targets if t != avoid] or targets
                target = rng.choice(cands)
            hint = None
            node = self.cluster.nodes[target]
            attempts += 1
            t0 = time.monotonic()
            try:
                resp = node.client.append(b, timeout=self.attempt_timeout)
            except grpc.RpcError as e:
                code = e.code()
                with self.lock:
                    self.retries[code.name] += 1
                    self.last_errors.append((time.monotonic(), target, rpc_err(e)))
                if code in WRITER_RETRYABLE:
                    leader = common.md(e).get("clinlog-leader")
                    hint = self._node_by_addr(leader) if leader else None
                    if hint == target:
                        hint = None
                    avoid = target
                    time.sleep(0.02 + rng.random() * 0.05)
                    continue
                self._anomaly("writer %d: node %d answered %s (ids %s)"
                              % (w, target, rpc_err(e), [i.hex()[:8] for i in ids]))
                return None, None
            t1 = time.monotonic()
            if len(resp.positions) != len(ids):
                self._anomaly("writer %d: %d positions for %d events" % (w, len(resp.positions),
                                                                         len(ids)))
                return None, None
            with self.lock:
                for eid, stream, p in zip(ids, streams, resp.positions):
                    if p.event_id != eid:
                        self.anomalies.append("position for id %s names id %s"
                                              % (eid.hex(), p.event_id.hex()))
                    pos = (p.seq, stream, p.stream_version)
                    old = self.acks.get(eid)
                    if old and old != pos:
                        self.anomalies.append("event %s acknowledged twice at different "
                                              "positions: %s and %s" % (eid.hex(), old, pos))
                    self.acks[eid] = pos
                self.ack_log.append(Ack(t0, t1, target, len(ids), resp.duplicate))
            return resp, target


class ResumeProbe:
    """After a fault: appends single events, each with a short deadline, to
    the nodes other than the victim until one is acknowledged, to measure
    when the cluster accepts writes again independently of where the writers'
    attempts happen to hang. What it gets acknowledged is recorded with the
    workload's acks (and verified with them)."""

    def __init__(self, cluster, workload, victim, t0, timeout, attempt_timeout=1.0):
        self.c, self.wl, self.victim, self.t0 = cluster, workload, victim, t0
        self.deadline = t0 + timeout
        self.attempt_timeout = attempt_timeout
        self.stream = "patient-probe-%s" % uuid.uuid4().hex[:8]
        self.first = None  # monotonic time of the first acknowledgement
        self.attempts = 0
        self.thread = threading.Thread(target=self._run, daemon=True, name="resume-probe")
        self.stop_ev = threading.Event()

    def start(self):
        self.thread.start()
        return self

    def _run(self):
        rng = random.Random()
        while not self.stop_ev.is_set() and time.monotonic() < self.deadline:
            cands = [i for i, n in self.c.nodes.items() if i != self.victim and n.up()]
            if not cands:
                time.sleep(0.05)
                continue
            i = rng.choice(cands)
            ev = common.event(self.stream, text="probe")
            eid = common.event_id_of(ev)
            b = common.batch([ev], self.c.signer)
            while time.monotonic() < self.deadline and not self.stop_ev.is_set():
                # the same batch until it resolves (it may have committed)
                self.attempts += 1
                t = time.monotonic()
                try:
                    r = self.c.nodes[i].client.append(b, timeout=self.attempt_timeout)
                except grpc.RpcError:
                    time.sleep(0.05)
                    cands = [k for k, n in self.c.nodes.items() if k != self.victim and n.up()]
                    i = rng.choice(cands) if cands else i
                    continue
                now = time.monotonic()
                p = r.positions[0]
                with self.wl.lock:
                    self.wl.acks[eid] = (p.seq, self.stream, p.stream_version)
                    self.wl.ack_log.append(Ack(t, now, i, 1, r.duplicate))
                self.first = now
                return
        return

    def join(self):
        self.thread.join(self.attempt_timeout + T(10))
        return self.first


# ---------------------------------------------------------------------------
# Test base class


class ClusterTestCase(unittest.TestCase):
    """Tracks the clusters and workloads a test starts and tears them down
    whatever happens (writers stopped, every process killed)."""

    def setUp(self):
        self.clusters = []
        self.workloads = []
        self.seed = int(os.environ.get("CLINLOG_CLUSTER_SEED") or random.randrange(1 << 30))
        self.t_start = time.monotonic()

    def tearDown(self):
        for w in self.workloads:
            w.stop_ev.set()
            w.hard_stop.set()
        for w in self.workloads:
            for t in w.threads:
                t.join(T(10))
        for c in self.clusters:
            c.close()
        log("%s: %.1fs" % (self.id(), time.monotonic() - self.t_start))

    def new_cluster(self, name, proxied=False, audit=False):
        c = Cluster(name, proxied=proxied, audit=audit)
        self.clusters.append(c)
        return c

    def new_workload(self, c, **kw):
        w = Workload(c, seed=self.seed, **kw)
        self.workloads.append(w)
        return w

    def wait_healthy(self, c, wl=None, ids=None, max_lag=64, timeout=None):
        """Every listed node up and following one leader, every member within
        max_lag entries of the leader, and (with a workload) new writes
        acknowledged."""
        ids = ids or c.ids()
        deadline = time.monotonic() + (timeout or T(30))
        sts = None
        while True:
            try:
                lid = c.leader(ids, timeout=max(0.5, deadline - time.monotonic()))
                sts = c.statuses(ids)
                ls = sts[lid]
                ok = not isinstance(ls, str) and all(
                    not isinstance(s, str) and s.leader_id == lid for s in sts.values())
                if ok:
                    lags = {m.id: m.lag for m in ls.nodes if m.id in ids}
                    ok = len(lags) == len(ids) and max(lags.values()) <= max_lag
                if ok:
                    break
            except AssertionError:
                if time.monotonic() >= deadline:
                    raise
            if time.monotonic() >= deadline:
                raise AssertionError("cluster not healthy within %ss:\n%s\n%s"
                                     % (timeout or T(30), fmt_statuses(sts), c.diag()))
            time.sleep(0.1)
        if wl is not None:
            t = time.monotonic()
            if wl.wait_progress(t, 3, timeout=max(1, deadline - t) + T(5)) is None:
                raise AssertionError("no write acknowledged within %ss of a healthy cluster\n%s"
                                     % (timeout or T(30), c.diag()))
        return lid


# The end-of-test checks (clusterverify.py reaches this module as `harness.`)
from clusterverify import (  # noqa: E402,F401
    check_linearizable, read_all, stop_and_verify_dirs, verify_cluster)

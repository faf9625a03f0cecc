"""Shared machinery of the clinlogd interop suite: generated protobuf modules,
server processes, a hand-rolled gRPC client (no generated *_grpc stubs),
event construction and signing; the independent verifiers for checkpoints
(C2SP signed notes) and RFC 9162 Merkle proofs live in proofs.py and are
re-exported here.

Runs only under Debian's /usr/bin/python3 (python3-grpcio, python3-protobuf,
python3-nacl). run.py calls setup() before importing the test modules.
"""
import ctypes
import hashlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

# grpcio's fork support makes every fork (each subprocess this suite starts)
# wait until gRPC's thread pool is idle; with a call in flight on another
# thread that wait can last for ever ("Waiting for thread pool to idle before
# forking" every 3 s: a cluster run hung so in CI). The children exec at once
# and never use gRPC, so the suites do not need it. Read at grpc's import.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
import grpc  # noqa: E402
import nacl.signing

# Filled by setup().
BUILD = None          # build directory holding clinlogd and clinlog
CLINLOGD = None
CLINLOG = None
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCALE = 1.0           # timeout multiplier (ASan builds are slower)
TMP = None            # per-run temp dir (data dirs, certs, generated code)
pb = None             # namespace with the generated modules

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "LeakSanitizer", "runtime error:",
                     "ERROR: ThreadSanitizer")


class _NS:
    pass


def setup(build, tmp, scale):
    """Generates the Python protobuf modules with protoc and imports them."""
    global BUILD, CLINLOGD, CLINLOG, TMP, SCALE, pb
    BUILD = os.path.abspath(build)
    CLINLOGD = os.path.join(BUILD, "clinlogd")
    CLINLOG = os.path.join(BUILD, "clinlog")
    TMP = tmp
    SCALE = scale
    gen = os.path.join(tmp, "gen")
    hgen = os.path.join(tmp, "gen-health")
    os.makedirs(gen)
    os.makedirs(hgen)
    proto = os.path.join(REPO, "proto")
    protoc = shutil.which("protoc")
    if not protoc:
        raise RuntimeError("protoc not found (Debian package protobuf-compiler; "
                           "scripts/install-deps.sh installs it)")
    srcs = sorted("clinlog/v1/" + f for f in os.listdir(os.path.join(proto, "clinlog", "v1"))
                  if f.endswith(".proto"))
    subprocess.run([protoc, "-I" + proto, "-I/usr/include", "--python_out=" + gen] + srcs,
                   check=True)
    # The health module goes elsewhere and is loaded by path: a generated
    # top-level "grpc" package would shadow the grpcio package.
    subprocess.run([protoc, "-I" + proto, "-I/usr/include", "--python_out=" + hgen,
                    "grpc/health/v1/health.proto"], check=True)
    sys.path.insert(0, gen)
    ns = _NS()
    for m in ("types", "domain", "system", "event", "record", "api", "query", "fhir", "auth",
              "audit", "cds"):
        setattr(ns, m, importlib.import_module("clinlog.v1.%s_pb2" % m))
    spec = importlib.util.spec_from_file_location(
        "clinlog_interop_health_pb2", os.path.join(hgen, "grpc", "health", "v1", "health_pb2.py"))
    ns.health = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ns.health)
    from google.protobuf import timestamp_pb2
    ns.timestamp = timestamp_pb2
    pb = ns


def T(seconds):
    """A timeout scaled for slow (sanitizer) builds."""
    return seconds * SCALE


# ---------------------------------------------------------------------------
# Keys and signatures


class Signer:
    """An Ed25519 key in clinlog's format: key_id = 32-byte public key."""

    def __init__(self, seed=None):
        self.sk = nacl.signing.SigningKey(seed) if seed else nacl.signing.SigningKey.generate()
        self.pk = self.sk.verify_key.encode()

    @classmethod
    def load(cls, path):
        with open(path, "rb") as f:
            data = f.read()
        if len(data) != 40 or data[:8] != b"clkeyed1":
            raise ValueError("%s: not a clinlog Ed25519 key file" % path)
        return cls(data[8:])

    def sign_event(self, event_bytes):
        msg = b"clinlog-event-v1\x00" + hashlib.sha256(event_bytes).digest()
        return pb.record.Signature(key_id=self.pk, signature=self.sk.sign(msg).signature)

    def sign_batch(self, events):
        msg = (b"clinlog-batch-v1\x00" + len(events).to_bytes(4, "big") +
               b"".join(hashlib.sha256(e).digest() for e in events))
        return pb.record.Signature(key_id=self.pk, signature=self.sk.sign(msg).signature)


# ---------------------------------------------------------------------------
# Events


def new_id():
    return uuid.uuid4().bytes


def timestamp_now():
    ns = time.time_ns()
    return pb.timestamp.Timestamp(seconds=ns // 10**9, nanos=ns % 10**9)


def event_msg(stream, principal="admin", role="admin", kind="observation", text=None,
              event_id=None):
    """An Event message (not yet serialized). kind: observation (type 202),
    allergy (201), condition (200)."""
    ev = pb.event.Event(event_id=event_id or new_id(), stream=stream,
                        occurred_at=timestamp_now(), source_system="INTEROP")
    ev.recorded_by.principal_id = principal
    ev.recorded_by.role = role
    if kind == "observation":
        ev.observation_recorded.observation_id = "obs-" + uuid.uuid4().hex[:8]
        ev.observation_recorded.string_value = text if text is not None else "ok"
    elif kind == "allergy":
        ev.allergy_recorded.SetInParent()
    elif kind == "condition":
        ev.condition_diagnosed.SetInParent()
    else:
        raise ValueError(kind)
    return ev


def event(stream, **kw):
    """Serialized Event bytes."""
    return event_msg(stream, **kw).SerializeToString()


def batch(events, signer, mode="event", expectations=()):
    """An AppendBatch; mode "event" (per-event signatures) or "batch"."""
    b = pb.record.AppendBatch(events=list(events))
    if mode == "event":
        b.signatures.extend(signer.sign_event(e) for e in events)
    elif mode == "batch":
        b.batch_signature.CopyFrom(signer.sign_batch(list(events)))
    elif mode != "none":
        raise ValueError(mode)
    for stream, kind, version in expectations:
        x = b.expectations.add(stream=stream)
        x.expected.kind = kind
        x.expected.version = version
    return b


RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def rx_event(pid, rxid, code, source="INTEROP"):
    """Serialized MedicationPrescribed of RxNorm `code` in patient pid's
    stream, recorded by admin as a clinician."""
    ev = pb.event.Event(event_id=new_id(), stream="patient-" + pid,
                        occurred_at=timestamp_now(), source_system=source)
    ev.recorded_by.principal_id = "admin"
    ev.recorded_by.role = "clinician"
    rx = ev.medication_prescribed
    rx.prescription_id = rxid
    c = rx.medication.coding.add()
    c.system, c.code = RXNORM, code
    return ev.SerializeToString()


def event_id_of(event_bytes):
    e = pb.event.Event()
    e.ParseFromString(event_bytes)
    return e.event_id


def stream_issues(client, pid, want=0, within=20):
    """The IssueDetected events of stream patient-<pid>, waiting (up to
    T(within) s) until there are `want` of them."""
    deadline = time.monotonic() + T(within)
    while True:
        found = []
        for re_ in client._read(pb.api.ReadRequest(stream="patient-" + pid), timeout=T(15)):
            ev = pb.event.Event.FromString(re_.event)
            if ev.WhichOneof("body") == "issue_detected":
                found.append(ev)
        if len(found) >= want or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def start_cds_server(cls, kb_text=None):
    """Starts cls.server with the FHIR HTTP face (cls.http_port) and, if
    kb_text is given, that knowledge base (--cds-kb, cls.kb_path); sets
    cls.client and cls.admin (the admin signer)."""
    import uuid as _uuid
    args = []
    if kb_text is not None:
        cls.kb_path = os.path.join(TMP, "kb-%s.kb" % _uuid.uuid4().hex)
        with open(cls.kb_path, "w") as f:
            f.write(kb_text)
        args = ["--cds-kb", cls.kb_path]
    cls.http_port = free_port()
    cls.server = Server(args=["--http-listen", "127.0.0.1:%d" % cls.http_port] + args)
    cls.server.start()
    cls.client = Client(cls.server.addr)
    cls.admin = Signer.load(cls.server.data + "/keys/admin.key")


def register_feed(client, admin, principal_id, display_name, pk):
    """Registers a system principal with the integration role and public key
    pk (an admin's signed PrincipalRegistered)."""
    ev = pb.event.Event(event_id=new_id(), stream="$principal-" + principal_id,
                        occurred_at=timestamp_now())
    ev.recorded_by.principal_id = "admin"
    ev.recorded_by.role = "admin"
    pr = ev.principal_registered
    pr.principal_id = principal_id
    pr.display_name = display_name
    pr.roles.append("integration")
    pr.public_key = pk
    pr.kind = "system"
    client.append(batch([ev.SerializeToString()], admin))


def fhir_get(port, path):
    """GET /fhir/R4<path> on 127.0.0.1:port: (status, parsed JSON or None)."""
    import http.client
    import json
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=T(15))
    c.request("GET", "/fhir/R4" + path)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, (json.loads(data) if data else None)


def unique_stream(prefix="patient-"):
    return prefix + uuid.uuid4().hex[:12]


# ---------------------------------------------------------------------------
# Merkle trees (RFC 9162) and checkpoints (C2SP signed note): proofs.py

from proofs import leaf_hash, mth, node_hash, verify_consistency, verify_inclusion  # noqa: E402,F401
from proofs import verify_note  # noqa: E402,F401


# ---------------------------------------------------------------------------
# Servers


_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: no orphaned servers


# Ports for the servers a suite starts. They come from below the kernel's
# ephemeral range (32768-60999), where bind(0) and outgoing connections of
# other programs never land, and each suite has its own slice, so suites run
# side by side (ctest -j2) cannot hand out the same port between a probe and
# the server's bind. Within a suite, even ports are handed out in turn from a
# random start, so a port just closed is not reused at once, and the odd port
# above each stays free for the Raft listener clinlogd puts there by default
# (which may bind after the API reports it is listening).
PORT_SLICES = {"interop": (20000, 23000), "interop_b": (23000, 26000),
               "cluster": (26000, 32000)}
_port_range = (20000, 32000)
_port_next = None
_port_lock = threading.Lock()


def use_port_slice(suite):
    global _port_range
    _port_range = PORT_SLICES.get(suite, _port_range)


def free_port():
    global _port_next
    lo, hi = _port_range
    with _port_lock:
        if _port_next is None or not lo <= _port_next < hi:
            _port_next = lo + (int.from_bytes(os.urandom(4), "big") % (hi - lo)) // 2 * 2
        for _ in range((hi - lo) // 2):
            port = _port_next
            _port_next = lo + (port + 2 - lo) % (hi - lo)
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            finally:
                s.close()
            return port
    raise RuntimeError("no free port in %d-%d" % (lo, hi - 1))


_servers = set()
_servers_lock = threading.Lock()


def kill_all_servers():
    with _servers_lock:
        servers = list(_servers)
    for s in servers:
        s.kill()


def init_data_dir(name="data"):
    d = tempfile.mkdtemp(prefix=name + "-", dir=TMP)
    os.rmdir(d)
    r = subprocess.run([CLINLOG, "init", d, "--admin", "admin"], capture_output=True,
                       text=True, timeout=T(60))
    if r.returncode != 0:
        raise RuntimeError("clinlog init failed: %s%s" % (r.stdout, r.stderr))
    return d


class Server:
    """One clinlogd process. Always started from the main thread (the
    PR_SET_PDEATHSIG parent is the thread that forked)."""

    def __init__(self, data_dir=None, args=(), dev=True, host="127.0.0.1", port=None, audit=True):
        self.data = data_dir or init_data_dir()
        self.args = list(args) + ([] if audit else ["--audit", "off"])
        self.dev = dev
        self.host = host
        self.port = port or free_port()
        self.proc = None
        self.stderr_path = None
        self.starts = 0
        self.sanitizer_reports = []

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def argv(self):
        a = [CLINLOGD, "--data", self.data, "--listen", "%s:%d" % (self.host, self.port)]
        if self.dev:
            a.append("--dev")
        return a + self.args

    def spawn(self):
        self.starts += 1
        self.stderr_path = "%s.stderr.%d" % (self.data, self.starts)
        err = open(self.stderr_path, "wb")
        try:
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                         stdout=err, stderr=err,
                                         preexec_fn=_die_with_parent)
        finally:
            err.close()
        with _servers_lock:
            _servers.add(self)
        return self.proc

    def stderr(self):
        try:
            with open(self.stderr_path, "r", errors="replace") as f:
                return f.read()
        except (OSError, TypeError):
            return ""

    def start(self, timeout=None):
        """Starts and waits for "clinlogd: listening on"."""
        self.spawn()
        deadline = time.monotonic() + (timeout or T(20))
        while time.monotonic() < deadline:
            if "clinlogd: listening on" in self.stderr():
                return self
            if self.proc.poll() is not None:
                raise RuntimeError("clinlogd exited with %s before listening:\n%s"
                                   % (self.proc.returncode, self.stderr()))
            time.sleep(0.02)
        self.kill()
        raise RuntimeError("clinlogd did not report listening within %ss:\n%s"
                           % (timeout or T(20), self.stderr()))

    @property
    def pid(self):
        return self.proc.pid

    def _check_sanitizer(self):
        text = self.stderr()
        for m in SANITIZER_MARKERS:
            if m in text:
                self.sanitizer_reports.append(text)
                return

    def terminate(self):
        """Sends SIGTERM (graceful stop) without waiting."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout=None):
        """SIGTERM and wait; SIGKILL after the timeout. Returns the exit code
        (None if it had to be killed)."""
        if not self.proc:
            return None
        self.terminate()
        try:
            rc = self.proc.wait(timeout or T(30))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        with _servers_lock:
            _servers.discard(self)
        self._check_sanitizer()
        return rc

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        with _servers_lock:
            _servers.discard(self)
        if self.proc:
            self._check_sanitizer()

    def proc_status(self):
        """(VmRSS kB, Threads) from /proc/PID/status."""
        rss = threads = None
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("Threads:"):
                    threads = int(line.split()[1])
        return rss, threads


# ---------------------------------------------------------------------------
# Client


def common_markers():
    return SANITIZER_MARKERS


def _ident(x):
    return x


CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.max_send_message_length", -1),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
    ("grpc.enable_retries", 0),
]


class Client:
    """Calls clinlog.v1.Log and grpc.health.v1.Health by method path."""

    def __init__(self, target, credentials=None, options=()):
        opts = CHANNEL_OPTIONS + list(options)
        if credentials is None:
            self.channel = grpc.insecure_channel(target, options=opts)
        else:
            self.channel = grpc.secure_channel(target, credentials, options=opts)
        api, rec, h = pb.api, pb.record, pb.health
        uu, us, su = self.channel.unary_unary, self.channel.unary_stream, self.channel.stream_unary
        L = "/clinlog.v1.Log/"
        self._append = uu(L + "Append", rec.AppendBatch.SerializeToString,
                          api.AppendResponse.FromString)
        self._append_stream = su(L + "AppendStream", rec.AppendBatch.SerializeToString,
                                 api.AppendStreamSummary.FromString)
        self._read = us(L + "Read", api.ReadRequest.SerializeToString,
                        api.RecordedEvent.FromString)
        self._subscribe = us(L + "Subscribe", api.SubscribeRequest.SerializeToString,
                             api.SubscribeResponse.FromString)
        self._checkpoint = uu(L + "GetCheckpoint", api.GetCheckpointRequest.SerializeToString,
                              api.Checkpoint.FromString)
        self._incl = uu(L + "ProveInclusion", api.ProveInclusionRequest.SerializeToString,
                        api.InclusionProof.FromString)
        self._cons = uu(L + "ProveConsistency", api.ProveConsistencyRequest.SerializeToString,
                        api.ConsistencyProof.FromString)
        self._get = uu(L + "GetEvent", api.GetEventRequest.SerializeToString,
                       api.RecordedEvent.FromString)
        H = "/grpc.health.v1.Health/"
        self._hcheck = uu(H + "Check", h.HealthCheckRequest.SerializeToString,
                          h.HealthCheckResponse.FromString)
        self._hwatch = us(H + "Watch", h.HealthCheckRequest.SerializeToString,
                          h.HealthCheckResponse.FromString)
        q = pb.query
        S, P = "/clinlog.v1.Streams/", "/clinlog.v1.Projections/"
        self._get_stream = uu(S + "GetStream", q.GetStreamRequest.SerializeToString,
                              q.StreamInfo.FromString)
        self._list_streams = uu(S + "ListStreams", q.ListStreamsRequest.SerializeToString,
                                q.ListStreamsResponse.FromString)
        self._by_type = uu(S + "ListEventsByType", q.ListEventsByTypeRequest.SerializeToString,
                           q.ListEventsByTypeResponse.FromString)
        self._projections = uu(P + "List", q.ListProjectionsRequest.SerializeToString,
                               q.ListProjectionsResponse.FromString)
        self._rebuild = uu(P + "Rebuild", q.RebuildProjectionRequest.SerializeToString,
                           q.ProjectionStatus.FromString)

    def close(self):
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    # Unary calls return the response; *_call variants return (response, call)
    # so that trailing metadata can be inspected.
    def append(self, b, timeout=None, **kw):
        return self._append(b, timeout=timeout or T(15), **kw)

    def append_call(self, b, timeout=None):
        return self._append.with_call(b, timeout=timeout or T(15))

    def append_stream(self, batches, timeout=None):
        return self._append_stream.with_call(iter(batches), timeout=timeout or T(30))

    def read(self, timeout=None, **kw):
        return list(self._read(pb.api.ReadRequest(**kw), timeout=timeout or T(30)))

    def read_call(self, req, timeout=None):
        return self._read(req, timeout=timeout or T(30))

    def subscribe(self, timeout=None, **kw):
        """A Subscribe call (an iterator; .cancel() to end it)."""
        return self._subscribe(pb.api.SubscribeRequest(**kw), timeout=timeout or T(120))

    def checkpoint(self, tree_size=0, fresh=False, timeout=None):
        return self._checkpoint(pb.api.GetCheckpointRequest(tree_size=tree_size, fresh=fresh),
                                timeout=timeout or T(15))

    def prove_inclusion(self, seq, tree_size=0, timeout=None):
        return self._incl(pb.api.ProveInclusionRequest(seq=seq, tree_size=tree_size),
                          timeout=timeout or T(15))

    def prove_consistency(self, old_size, new_size=0, timeout=None):
        return self._cons(pb.api.ProveConsistencyRequest(old_size=old_size, new_size=new_size),
                          timeout=timeout or T(15))

    def get_event(self, event_id, include_record=False, timeout=None):
        return self._get(pb.api.GetEventRequest(event_id=event_id,
                                                include_record=include_record),
                         timeout=timeout or T(15))

    def health(self, service="", timeout=None):
        return self._hcheck(pb.health.HealthCheckRequest(service=service),
                            timeout=timeout or T(10)).status

    def health_watch(self, service="", timeout=None):
        return self._hwatch(pb.health.HealthCheckRequest(service=service),
                            timeout=timeout or T(60))

    # clinlog.v1.Streams and clinlog.v1.Projections (proto/clinlog/v1/query.proto)
    def get_stream(self, stream, min_sequence=0, timeout=None):
        return self._get_stream(pb.query.GetStreamRequest(
            stream=stream, consistency=pb.api.Consistency(min_sequence=min_sequence)),
            timeout=timeout or T(15))

    def list_streams(self, category, page_size=0, page_token=b"", min_sequence=0, timeout=None):
        return self._list_streams(pb.query.ListStreamsRequest(
            category=category, page_size=page_size, page_token=page_token,
            consistency=pb.api.Consistency(min_sequence=min_sequence)), timeout=timeout or T(15))

    def events_by_type(self, event_type, from_seq=0, page_size=0, min_sequence=0, timeout=None):
        return self._by_type(pb.query.ListEventsByTypeRequest(
            event_type=event_type, from_seq=from_seq, page_size=page_size,
            consistency=pb.api.Consistency(min_sequence=min_sequence)), timeout=timeout or T(15))

    def projections(self, timeout=None):
        return {p.name: p for p in
                self._projections(pb.query.ListProjectionsRequest(),
                                  timeout=timeout or T(15)).projections}

    def rebuild(self, name, timeout=None):
        return self._rebuild(pb.query.RebuildProjectionRequest(name=name),
                             timeout=timeout or T(30))

    def raw_unary(self, method, data, timeout=None):
        """Sends `data` as the request bytes verbatim; returns response bytes."""
        f = self.channel.unary_unary(method, request_serializer=_ident,
                                     response_deserializer=_ident)
        return f.with_call(data, timeout=timeout or T(15))

    def raw_stream(self, method, data, timeout=None):
        f = self.channel.unary_stream(method, request_serializer=_ident,
                                      response_deserializer=_ident)
        return list(f(data, timeout=timeout or T(15)))

    def raw_client_stream(self, method, datas, timeout=None):
        f = self.channel.stream_unary(method, request_serializer=_ident,
                                      response_deserializer=_ident)
        return f.with_call(iter(datas), timeout=timeout or T(15))

    def tree_size(self):
        """The current head's size (signs a fresh checkpoint if needed)."""
        return self.checkpoint(fresh=True).tree_size

    def wait_ready(self, timeout=None):
        grpc.channel_ready_future(self.channel).result(timeout=timeout or T(15))


def md(err_or_call):
    """Trailing metadata of an RpcError or a call as a dict."""
    try:
        t = err_or_call.trailing_metadata()
    except Exception:
        t = None
    return dict(t or ())


# ---------------------------------------------------------------------------
# Test base class


class ServerTestCase(unittest.TestCase):
    """Starts one server per class (fresh data dir) and stops it afterwards,
    failing the class if it did not exit 0 on SIGTERM or a sanitizer spoke."""
    server_args = ()
    audit = True  # clinlogd's default: every call recorded in $audit
    server = None
    client = None
    admin = None
    expect_clean_exit = True

    @classmethod
    def setUpClass(cls):
        cls.server = Server(args=cls.server_args, audit=cls.audit)
        cls.server.start()
        cls.client = Client(cls.server.addr)
        cls.admin = Signer.load(os.path.join(cls.server.data, "keys", "admin.key"))

    @classmethod
    def tearDownClass(cls):
        if cls.client:
            cls.client.close()
        if cls.server:
            cls.check_server_exit(cls.server)

    @classmethod
    def check_server_exit(cls, server, expect_rc=0):
        alive = server.proc is not None and server.proc.poll() is None
        rc = server.stop() if alive else server.proc.returncode if server.proc else None
        if not alive:
            server.kill()  # reaps, deregisters and scans stderr
        problems = []
        if server.sanitizer_reports:
            problems.append("sanitizer report in clinlogd stderr:\n" +
                            server.sanitizer_reports[-1][-6000:])
        if cls.expect_clean_exit and alive and rc != expect_rc:
            problems.append("clinlogd exit code after SIGTERM: %r (want %r); stderr tail:\n%s"
                            % (rc, expect_rc, server.stderr()[-3000:]))
        if problems:
            raise AssertionError("\n".join(problems))

    # helpers
    def append_events(self, events, signer=None, mode="event", expectations=(), client=None):
        return (client or self.client).append(batch(events, signer or self.admin, mode,
                                                    expectations))

    def assertRpcError(self, code, fn, *a, **kw):
        """Calls fn and asserts it raises grpc.RpcError with `code`; returns it."""
        try:
            r = fn(*a, **kw)
        except grpc.RpcError as e:
            self.assertEqual(e.code(), code, "got %s: %s (metadata %r)"
                             % (e.code(), e.details(), md(e)))
            return e
        self.fail("expected %s, the call succeeded: %r" % (code, r))

    def assertClinlogError(self, e, name):
        self.assertEqual(md(e).get("clinlog-error"), name,
                         "clinlog-error metadata (status %s: %s): %r"
                         % (e.code(), e.details(), md(e)))

    def assertNoSanitizerReport(self, server):
        text = server.stderr()
        for m in common_markers():
            self.assertNotIn(m, text, "sanitizer report in clinlogd stderr:\n" + text[-6000:])

    def assertNothingWritten(self, before):
        self.assertEqual(self.client.tree_size(), before, "the tree grew: something was written")


# ---- suite runner shared by tests/interop/run.py and tests/cluster/run.py ----

def runner_parser():
    """The options every suite runner takes; a runner may add its own."""
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(REPO, "build"),
                    help="build directory with clinlogd and clinlog")
    ap.add_argument("-k", action="append", default=[],
                    help="only tests whose id contains this substring (repeatable)")
    ap.add_argument("--timeout-scale", type=float, default=None,
                    help="multiply every timeout (default 1, or 3 for an ASan build)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("-v", action="store_true", help="verbose")
    return ap


def timeout_scale(args):
    if args.timeout_scale is not None:
        return args.timeout_scale
    return 3.0 if "asan" in os.path.basename(os.path.abspath(args.build)) else 1.0


def run_suite(name, args, modules, setup_fn=None, rerun_hint=""):
    """Runs the unittest modules against the build in args.build and prints
    "NAME: N passed, M failed" last; returns the exit status. setup_fn(build,
    tmp, scale) prepares the run (default: setup)."""
    import atexit
    import unittest
    start = time.monotonic()
    use_port_slice(name)
    tmp = tempfile.mkdtemp(prefix="clinlog-%s-" % name)
    atexit.register(kill_all_servers)

    def on_signal(sig, frame):
        kill_all_servers()
        sys.exit(128 + sig)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    for tool in ("clinlogd", "clinlog"):
        if not os.access(os.path.join(args.build, tool), os.X_OK):
            print("%s: %s not found in %s" % (name, tool, args.build))
            print("%s: 0 passed, 1 failed" % name)
            return 1
    try:
        (setup_fn or setup)(args.build, tmp, timeout_scale(args))
    except Exception as e:  # protoc missing or failing
        print("%s: setup failed: %s" % (name, e))
        print("%s: 0 passed, 1 failed" % name)
        return 1

    loader = unittest.TestLoader()
    if args.k:
        loader.testNamePatterns = ["*%s*" % k for k in args.k]
    timings = {}

    class ModuleSuite(unittest.TestSuite):
        """Times one module (its last class's tearDownClass counts in the
        next module), so the suite can say where its minutes go."""

        def __init__(self, name, tests):
            super().__init__(tests)
            self.module_name = name

        def run(self, result, debug=False):
            t0 = time.monotonic()
            try:
                return super().run(result, debug)
            finally:
                timings[self.module_name] = time.monotonic() - t0

    suite = unittest.TestSuite()
    for m in modules:
        suite.addTest(ModuleSuite(m, loader.loadTestsFromName(m)))
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2 if args.v else 1)
    try:
        result = runner.run(suite)
    finally:
        kill_all_servers()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("%s: kept %s" % (name, tmp))
    # Count tests, not subtests: a test with failing subtests is one failure.
    # Class-level errors (setUpClass/tearDownClass, e.g. a sanitizer report or
    # a non-zero exit after SIGTERM) count as one failure each.
    failed_tests, class_errors = set(), []
    for t, _ in result.failures + result.errors:
        t = getattr(t, "test_case", t)
        if isinstance(t, unittest.TestCase):
            failed_tests.add(t.id())
        else:
            class_errors.append(str(t))
    failed_tests |= {t.id() for t in result.unexpectedSuccesses}
    bad = len(failed_tests) + len(class_errors)
    passed = result.testsRun - len(failed_tests) - len(result.skipped)
    if bad:
        print("%s: failed: %s%s" % (name, ", ".join(sorted(failed_tests) + class_errors),
                                    rerun_hint))
    print("%s: %.1fs (%s)" % (name, time.monotonic() - start, ", ".join(
        "%s %.0fs" % (m, t) for m, t in sorted(timings.items(), key=lambda kv: -kv[1]))))
    print("%s: %d passed, %d failed" % (name, passed, bad))
    return 1 if bad or result.testsRun == 0 else 0


class LogServerTestCase(ServerTestCase):
    """A server without the audit trail (--audit off), for tests that check
    exact log positions (sequence numbers, tree sizes, whole-log reads):
    every call's AccessRecorded would interleave with their events. The
    trail itself is tested in test_audit."""
    audit = False

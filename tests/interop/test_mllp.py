"""The MLLP listener of a real clinlogd (--mllp-listen), driven by a Python
socket client that frames MLLP by hand (VT message FS CR) and reads the
events back over gRPC Log.Read:

- AA only after the commit: the events of an acknowledged message are in
  the log (derived event ids, recorded by the adapter's principal, the
  sender recorded) the moment the ACK arrives;
- AE/AR with the ERR naming segment, field and code (a bad NM, a missing
  PID, an unknown message type named), nothing written;
- a resent control id: the same ACK (AA), nothing written twice;
- 16 concurrent connections, each message in the log exactly once;
- a stuck sender (half a frame) does not delay another connection, and is
  closed by the idle timeout;
- an oversized frame: AR naming the limit, the connection closed, a log
  line without PHI;
- plaintext MLLP refused off loopback without --mllp-plaintext, and a key
  file others may read refused;
- under --auth required the listener acts as its key's principal (no
  session of its own) and its messages are committed;
- TLS with client certificates: a sender whose certificate is bound to an
  integration principal gets AA (under --auth required); one without a
  certificate, with a certificate of another CA, or speaking plaintext
  gets nothing and is closed;
- kill -9 of clinlogd mid-stream with a sender that resends what was not
  acknowledged: after the restart every AA'd message is in the log exactly
  once and nothing is duplicated."""
import base64
import json
import os
import socket
import ssl
import tempfile
import subprocess
import threading
import time

import grpc

import common
from common import T, ServerTestCase, Server, Signer

VT, FS, CR = b"\x0b", b"\x1c", b"\r"


def frame(msg):
    return VT + msg + FS + CR


def adt(control_id, patient, app="REG", facility="NORTH", trigger="A28", name="Doe^Jane",
        msg_type=None):
    """An ADT message (segments end with CR), v2.5.1: A28 registers the
    patient (one event), A01/A04 also start an encounter (two)."""
    if msg_type is None:
        msg_type = "ADT^%s^%s" % (trigger, "ADT_A05" if trigger == "A28" else "ADT_A01")
    segs = [
        "MSH|^~\\&|%s|%s|CLINLOG|HOSP|20261205083000||%s|%s|P|2.5.1"
        % (app, facility, msg_type, control_id),
        "EVN|%s|20261205082900" % trigger,
        "PID|1||%s^^^%s^MR||%s||19700101|F" % (patient, facility, name),
        "PV1|1|O|CLINIC^1^1^%s||||1234^Welby^Marcus|||MED|||||||||VN-%s^^^%s^VN"
        % (facility, control_id, facility),
    ]
    return ("\r".join(segs) + "\r").encode()


def segments(ack):
    return {s.split(b"|")[0].decode(): s.decode("latin-1").split("|")
            for s in ack.split(b"\r") if s}


class Conn:
    """One MLLP connection: send a frame, read one framed ACK."""

    def __init__(self, port, timeout=None, tls=None):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout or T(20))
        if tls is not None:  # an ssl.SSLContext
            self.s = tls.wrap_socket(self.s, server_hostname="localhost")
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def ack(self):
        while FS + CR not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise ConnectionError("closed before an ACK (have %r)" % self.buf)
            self.buf += d
        end = self.buf.index(FS + CR)
        start = self.buf.index(VT)
        msg, self.buf = self.buf[start + 1:end], self.buf[end + 2:]
        return msg

    def call(self, msg):
        self.send(frame(msg))
        return self.ack()

    def closed(self, within):
        """True if the server closes the connection within `within` s."""
        self.s.settimeout(within)
        try:
            return self.s.recv(1) == b""
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def close(self):
        self.s.close()


def register_feed(client, admin, key_path, principal="hl7-mllp"):
    """Registers the adapter's key as a principal with role integration."""
    feed = Signer.load(key_path)
    ev = common.pb.event.Event(event_id=common.new_id(), stream="$principal-" + principal,
                               occurred_at=common.timestamp_now())
    ev.recorded_by.principal_id = "admin"
    ev.recorded_by.role = "admin"
    pr = ev.principal_registered
    pr.principal_id = principal
    pr.display_name = "MLLP listener"
    pr.roles.append("integration")
    pr.public_key = feed.pk
    pr.kind = "system"
    client.append(common.batch([ev.SerializeToString()], admin))


def keygen(name):
    path = os.path.join(common.TMP, "%s-%d.key" % (name, os.getpid()))
    if not os.path.exists(path):
        r = subprocess.run([common.CLINLOG, "keygen", path], capture_output=True, text=True,
                           timeout=T(30))
        assert r.returncode == 0, r.stderr
    return path


def mllp_args(port, key, *extra):
    return ["--mllp-listen", "127.0.0.1:%d" % port, "--mllp-key", key] + list(extra)


def start_with_mllp(cls, args_of, data=None):
    """Starts cls.server with the MLLP flags args_of(port) on a port that is
    neither the API's nor the Raft default beside it (API port + 1)."""
    cls.server = Server(data_dir=data)
    cls.port = common.free_port()
    while cls.port in (cls.server.port, cls.server.port + 1):
        cls.port = common.free_port()
    cls.server.args = args_of(cls.port) + cls.server.args
    cls.server.start()
    cls.client = common.Client(cls.server.addr)
    cls.admin = Signer.load(os.path.join(cls.server.data, "keys", "admin.key"))


def stream_events(client, patient):
    """The patient's events over Log.Read ([] for a stream with none)."""
    try:
        recs = client.read(stream="patient-" + patient)
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.NOT_FOUND:
            return []
        raise
    return [common.pb.event.Event.FromString(r.event) for r in recs]


class TestMllp(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.key = keygen("mllp-feed")
        start_with_mllp(cls, lambda port: mllp_args(
            port, cls.key, "--mllp-max-frame", "8192", "--mllp-idle-s", "4",
            "--mllp-max-connections", "20"))
        register_feed(cls.client, cls.admin, cls.key)

    def test_1_aa_after_commit(self):
        c = Conn(self.port)
        ack = c.call(adt("MLLP0001", "P1001", trigger="A01"))
        # read at once: AA means committed
        evs = stream_events(self.client, "NORTH-P1001")
        c.close()
        seg = segments(ack)
        self.assertEqual(seg["MSA"][1:3], ["AA", "MLLP0001"], ack)
        self.assertEqual(seg["MSH"][2:6], ["CLINLOG", "HOSP", "REG", "NORTH"])
        self.assertEqual(seg["MSH"][8], "ACK^A01^ACK")
        self.assertNotIn("ERR", seg)
        self.assertEqual(len(evs), 2, "PatientRegistered and EncounterStarted")
        self.assertEqual([e.WhichOneof("body") for e in evs],
                         ["patient_registered", "encounter_started"])
        for e in evs:
            self.assertEqual((e.source_system, e.source_facility, e.source_message_id),
                             ("REG", "NORTH", "MLLP0001"))
            self.assertEqual(e.recorded_by.principal_id, "hl7-mllp")
            self.assertEqual(e.recorded_by.role, "integration")

    def test_2_refusals_name_the_error_and_write_nothing(self):
        c = Conn(self.port)
        # an ORU whose OBX-5 is not a number: AE, ERR at OBX-5, code 102
        oru = ("MSH|^~\\&|LAB|NORTH|CLINLOG|HOSP|20261205101500||ORU^R01^ORU_R01|MLLPBAD1|P|2.5.1\r"
               "PID|1||P2001^^^NORTH^MR||Roe^Rick\r"
               "OBR|1|ORD1|MLLPBAD1^LAB|24323-8^Metabolic panel^LN|||20261205093000\r"
               "OBX|1|NM|2345-7^Glucose^LN||abc|mg/dL^^UCUM|70-99|N|||F\r").encode()
        seg = segments(c.call(oru))
        self.assertEqual(seg["MSA"][1:3], ["AE", "MLLPBAD1"])
        self.assertEqual(seg["ERR"][2].split("^")[:3], ["OBX", "1", "5"], seg["ERR"])
        self.assertTrue(seg["ERR"][3].startswith("102^Data type error"), seg["ERR"])
        self.assertEqual(stream_events(self.client, "NORTH-P2001"), [])
        # an unknown message type: AR naming it
        seg = segments(c.call(adt("MLLPBAD2", "P2002", msg_type="ZZQ^Z77")))
        self.assertEqual(seg["MSA"][1:3], ["AR", "MLLPBAD2"])
        self.assertTrue(seg["ERR"][3].startswith("200^"), seg["ERR"])
        self.assertIn("ZZQ", seg["ERR"][8])
        # a supported type with an unknown trigger: AR naming the trigger
        seg = segments(c.call(adt("MLLPBAD3", "P2002", trigger="A99")))
        self.assertEqual(seg["MSA"][1], "AR")
        self.assertTrue(seg["ERR"][3].startswith("201^"), seg["ERR"])
        self.assertIn("A99", seg["ERR"][8])
        # no MSH at all: AR with defaults, the connection still serves
        seg = segments(c.call(b"PID|1||X^^^Y^MR\r"))
        self.assertEqual(seg["MSA"][1], "AR")
        self.assertIn("ERR", seg)
        self.assertEqual(stream_events(self.client, "NORTH-P2002"), [])
        seg = segments(c.call(adt("MLLPOK2", "P2003")))
        self.assertEqual(seg["MSA"][1:3], ["AA", "MLLPOK2"])
        c.close()

    def test_3_resent_control_id_same_ack_nothing_twice(self):
        msg = adt("MLLPDUP1", "P3001", trigger="A01")
        c = Conn(self.port)
        first = c.call(msg)
        n = len(stream_events(self.client, "NORTH-P3001"))
        self.assertEqual(n, 2)
        again = c.call(msg)
        c.close()
        c2 = Conn(self.port)  # a resend on a new connection, as after a reconnect
        third = c2.call(msg)
        c2.close()
        for a in (again, third):
            sa, sf = segments(a), segments(first)
            self.assertEqual(sa["MSA"], sf["MSA"])
            self.assertEqual(sa["MSA"][1], "AA")
            self.assertEqual(sa["MSH"][9], sf["MSH"][9], "the ACK's control id is the same")
        evs = stream_events(self.client, "NORTH-P3001")
        self.assertEqual(len(evs), 2, "nothing written twice")
        self.assertEqual(len({e.event_id for e in evs}), 2)
        # the same control id for different content from the same sender: refused, 205
        seg = segments(Conn(self.port).call(adt("MLLPDUP1", "P3001", trigger="A01",
                                                name="Other^Name")))
        self.assertEqual(seg["MSA"][1], "AR")
        self.assertTrue(seg["ERR"][3].startswith("205^"), seg["ERR"])
        self.assertEqual(len(stream_events(self.client, "NORTH-P3001")), 2)

    def test_4_sixteen_concurrent_connections(self):
        per, conns = 8, 16
        results, errors = {}, []

        def sender(k):
            try:
                c = Conn(self.port)
                for i in range(per):
                    ctl = "C%02d-%02d" % (k, i)
                    seg = segments(c.call(adt(ctl, "P4%02d" % k, app="CONC")))
                    results[ctl] = seg["MSA"][1:3]
                c.close()
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append("%d: %r" % (k, e))

        ts = [threading.Thread(target=sender, args=(k,)) for k in range(conns)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(T(120))
        self.assertEqual(errors, [])
        self.assertEqual(len(results), per * conns)
        for ctl, msa in results.items():
            self.assertEqual(msa, ["AA", ctl])
        for k in range(conns):
            evs = stream_events(self.client, "NORTH-P4%02d" % k)
            self.assertEqual(sorted(e.source_message_id for e in evs),
                             sorted("C%02d-%02d" % (k, i) for i in range(per)),
                             "each message exactly once")

    def test_5_stuck_sender_blocks_no_one_and_times_out(self):
        stuck = Conn(self.port)
        stuck.send(VT + adt("MLLPSTK1", "P5001")[:40])  # half a frame, then silence
        t0 = time.monotonic()
        c = Conn(self.port)
        seg = segments(c.call(adt("MLLPFREE", "P5002")))
        took = time.monotonic() - t0
        c.close()
        self.assertEqual(seg["MSA"][1:3], ["AA", "MLLPFREE"])
        self.assertLess(took, 2.0 * common.SCALE, "the other connection waited on the stuck one")
        # the idle timeout (--mllp-idle-s 4) closes the stuck connection; nothing written
        self.assertTrue(stuck.closed(T(15)), "the stuck connection was not closed")
        stuck.close()
        self.assertEqual(stream_events(self.client, "NORTH-P5001"), [])
        self.assertIn("idle for 4 s inside a frame", self.server.stderr())

    def test_6_oversized_frame_refused_and_closed(self):
        c = Conn(self.port)
        big = adt("MLLPBIG1", "P6001", name="Secretname^" + "X" * 9000)
        c.send(frame(big))
        seg = segments(c.ack())
        self.assertEqual(seg["MSA"][1], "AR")
        self.assertIn("exceeds 8192 bytes", seg["ERR"][8])
        self.assertTrue(c.closed(T(10)), "the connection stays open after an oversized frame")
        c.close()
        self.assertEqual(stream_events(self.client, "NORTH-P6001"), [])
        err = self.server.stderr()
        self.assertIn("oversized frame refused", err)
        self.assertNotIn("Secretname", err, "PHI in the log")
        self.assertNotIn("P6001", err, "a patient id in the log")

    def test_8_connection_limit(self):
        held = [Conn(self.port) for _ in range(20)]
        # each is served (its thread runs): one message on each
        for k, c in enumerate(held):
            self.assertEqual(segments(c.call(adt("LIM%02d" % k, "P9001")))["MSA"][1], "AA")
        extra = Conn(self.port)
        self.assertTrue(extra.closed(T(5)), "the 21st connection was served")
        extra.close()
        self.assertIn("the connection limit (--mllp-max-connections) is reached",
                      self.server.stderr())
        for c in held:
            c.close()
        # once they are gone, a new connection is served again
        deadline = time.monotonic() + T(10)
        while True:
            try:
                c = Conn(self.port)
                seg = segments(c.call(adt("LIMOK", "P9001")))
                c.close()
                break
            except ConnectionError:
                self.assertLess(time.monotonic(), deadline, "never served again")
                time.sleep(0.1)
        self.assertEqual(seg["MSA"][1:3], ["AA", "LIMOK"])

    def test_7_plaintext_refused_off_loopback(self):
        s = Server()
        s.args = ["--mllp-listen", "0.0.0.0:%d" % (s.port + 2), "--mllp-key", self.key]
        s.spawn()
        rc = s.proc.wait(T(30))
        s.kill()
        self.assertEqual(rc, 1)
        self.assertIn("--mllp-plaintext", s.stderr())
        # and a key file others may read is refused
        loose = keygen("mllp-loose")
        os.chmod(loose, 0o644)
        s = Server()
        s.args = mllp_args(s.port + 2, loose)
        s.spawn()
        rc = s.proc.wait(T(30))
        s.kill()
        self.assertEqual(rc, 1)
        self.assertIn("mllp key", s.stderr())


class TestMllpKill9(ServerTestCase):
    """A sender that resends whatever was not acknowledged, clinlogd killed
    with SIGKILL mid-stream and restarted: every AA'd message is in the log
    exactly once and nothing is duplicated."""
    expect_clean_exit = True

    @classmethod
    def setUpClass(cls):
        cls.key = keygen("mllp-kill")
        start_with_mllp(cls, lambda port: mllp_args(port, cls.key))
        register_feed(cls.client, cls.admin, cls.key)

    def test_kill9_midstream_resend(self):
        total = 120
        acked = set()
        stop = threading.Event()
        problems = []

        def sender():
            i, c = 0, None
            deadline = time.monotonic() + T(120)
            while i < total and time.monotonic() < deadline:
                try:
                    if c is None:
                        c = Conn(self.port, timeout=T(10))
                    ctl = "K%04d" % i
                    seg = segments(c.call(adt(ctl, "P7%03d" % (i % 10), app="KILL")))
                    if seg["MSA"][1] == "AA":
                        acked.add(ctl)
                        i += 1
                    elif seg["MSA"][1] == "AR":
                        problems.append("AR for %s: %r" % (ctl, seg.get("ERR")))
                        i += 1
                    else:
                        time.sleep(0.1)  # AE: resend the same message
                except (OSError, ConnectionError):
                    if c:
                        c.close()
                    c = None
                    time.sleep(0.05)  # not acknowledged: resend after reconnecting
            if c:
                c.close()
            stop.set()

        t = threading.Thread(target=sender)
        t.start()
        while len(acked) < 30 and not stop.is_set():
            time.sleep(0.01)
        self.server.kill()  # SIGKILL, mid-stream
        killed_at = len(acked)
        self.client.close()
        self.server.start()
        type(self).client = common.Client(self.server.addr)
        self.client.wait_ready()
        t.join(T(180))
        self.assertFalse(t.is_alive())
        self.assertEqual(problems, [])
        self.assertGreater(killed_at, 0)
        self.assertEqual(len(acked), total, "every message was acknowledged in the end")
        seen = {}
        for k in range(10):
            for e in stream_events(self.client, "NORTH-P7%03d" % k):
                seen.setdefault(e.source_message_id, []).append(e.WhichOneof("body"))
        for ctl in acked:
            self.assertEqual(seen.get(ctl), ["patient_registered"], ctl)
        self.assertEqual(len(seen), total, "nothing but the messages sent")


class TestMllpAuthRequired(ServerTestCase):
    """--auth required: the listener is authenticated by the key it holds
    (auth "key"), authorized by the policy as its principal's role
    (integration), and its messages are committed; read back offline."""

    @classmethod
    def setUpClass(cls):
        cls.key = keygen("mllp-auth")
        data = common.init_data_dir()
        reg = {"stream": "$principal-hl7-mllp",
               "principalRegistered": {"principalId": "hl7-mllp", "roles": ["integration"],
                                       "kind": "system",
                                       "publicKey": base64.b64encode(
                                           Signer.load(cls.key).pk).decode()}}
        r = subprocess.run([common.CLINLOG, "append", data, "--key",
                            os.path.join(data, "keys", "admin.key")], input=json.dumps(reg),
                           capture_output=True, text=True, timeout=T(60))
        assert r.returncode == 0, r.stderr
        start_with_mllp(cls, lambda port: ["--auth", "required"] + mllp_args(port, cls.key),
                        data)

    def test_committed_as_the_keys_principal(self):
        c = Conn(self.port)
        msg = adt("MLLPAUTH1", "P8001")
        first = segments(c.call(msg))
        again = segments(c.call(msg))
        c.close()
        self.assertEqual(first["MSA"][1:3], ["AA", "MLLPAUTH1"], first)
        self.assertEqual(again["MSA"], first["MSA"])
        self.assertEqual(self.server.stop(), 0)
        r = subprocess.run([common.CLINLOG, "read", self.server.data, "--stream",
                            "patient-NORTH-P8001"], capture_output=True, text=True,
                           timeout=T(60))
        self.assertEqual(r.returncode, 0, r.stderr)
        evs = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
        self.assertEqual(len(evs), 1, "one event, written once")
        self.assertEqual(evs[0]["event"]["recordedBy"]["principalId"], "hl7-mllp")


class TestMllpTls(ServerTestCase):
    """--mllp-tls-cert/--mllp-tls-key with --mllp-client-ca and
    --mllp-require-client-cert, under --auth required: the sender is the
    principal its client certificate is bound to (clinlog auth bind-cert)."""

    @classmethod
    def setUpClass(cls):
        from test_tls import make_pki, openssl
        d = tempfile.mkdtemp(prefix="pki-", dir=common.TMP)
        cls.pki = make_pki(d)
        # a second client of the same CA, bound to no principal
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", "unbound.key", "-out", "unbound.csr", "-subj", "/CN=unbound", cwd=d)
        openssl("x509", "-req", "-in", "unbound.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", "unbound.pem", "-days", "30", "-extfile",
                "client.ext", cwd=d)
        cls.pki.update({k: os.path.join(d, k) for k in ("unbound.pem", "unbound.key")})
        cls.key = keygen("mllp-tls")
        data = common.init_data_dir()
        events = [{"stream": "$principal-hl7-mllp",
                   "principalRegistered": {"principalId": "hl7-mllp", "roles": ["integration"],
                                           "kind": "system", "publicKey": base64.b64encode(
                                               Signer.load(cls.key).pk).decode()}},
                  {"stream": "$principal-lab-engine",
                   "principalRegistered": {"principalId": "lab-engine",
                                           "roles": ["integration"], "kind": "system",
                                           "publicKey": base64.b64encode(
                                               Signer().pk).decode()}}]
        r = subprocess.run([common.CLINLOG, "auth", "bind-cert", "lab-engine",
                            cls.pki["client.pem"], "CN=interop-client"],
                           capture_output=True, text=True, timeout=T(60))
        assert r.returncode == 0, r.stderr
        events.append(json.loads(r.stdout))
        r = subprocess.run([common.CLINLOG, "append", data, "--key",
                            os.path.join(data, "keys", "admin.key")],
                           input="\n".join(json.dumps(e) for e in events),
                           capture_output=True, text=True, timeout=T(60))
        assert r.returncode == 0, r.stderr
        p = cls.pki
        start_with_mllp(cls, lambda port: [
            "--auth", "required", "--mllp-listen", "127.0.0.1:%d" % port, "--mllp-key", cls.key,
            "--mllp-tls-cert", p["server.pem"], "--mllp-tls-key", p["server.key"],
            "--mllp-client-ca", p["ca.pem"], "--mllp-require-client-cert", "--mllp-idle-s", "5"],
                        data)

    def ctx(self, who):
        c = ssl.create_default_context(cafile=self.pki["ca.pem"])
        if who:
            c.load_cert_chain(self.pki[who + ".pem"], self.pki[who + ".key"])
        return c

    def refused(self, make):
        """True if no ACK comes back: the handshake or the first read fails."""
        try:
            c = make()
            c.call(adt("MLLPTLSX", "P9901"))
        except (ssl.SSLError, ConnectionError, OSError):
            return True
        return False

    def test_1_bound_client_certificate_aa(self):
        c = Conn(self.port, tls=self.ctx("client"))
        seg = segments(c.call(adt("MLLPTLS1", "P9900")))
        again = segments(c.call(adt("MLLPTLS1", "P9900")))
        c.close()
        self.assertEqual(seg["MSA"][1:3], ["AA", "MLLPTLS1"], seg)
        self.assertEqual(again["MSA"], seg["MSA"])

    def test_2_unbound_certificate_ar(self):
        # the sender is the certificate's principal: none, under --auth required
        c = Conn(self.port, tls=self.ctx("unbound"))
        seg = segments(c.call(adt("MLLPTLS2", "P9902")))
        c.close()
        self.assertEqual(seg["MSA"][1:3], ["AR", "MLLPTLS2"], seg)
        self.assertIn("authentication required", seg["ERR"][8])

    def test_2_without_a_good_certificate_or_tls_refused(self):
        self.assertTrue(self.refused(lambda: Conn(self.port, tls=self.ctx(None))),
                        "a client without a certificate got an ACK")
        self.assertTrue(self.refused(lambda: Conn(self.port, tls=self.ctx("rogue"))),
                        "a certificate of another CA got an ACK")
        self.assertTrue(self.refused(lambda: Conn(self.port, timeout=T(8))),
                        "plaintext got an ACK on the TLS port")
        self.assertIn("TLS handshake failed", self.server.stderr())

    def test_3_written_once_by_the_adapter(self):
        c = Conn(self.port, tls=self.ctx("client"))
        self.assertEqual(segments(c.call(adt("MLLPTLS3", "P9903")))["MSA"][1], "AA")
        c.close()
        self.assertEqual(self.server.stop(), 0)
        r = subprocess.run([common.CLINLOG, "read", self.server.data, "--stream",
                            "patient-NORTH-P9903"], capture_output=True, text=True,
                           timeout=T(60))
        self.assertEqual(r.returncode, 0, r.stderr)
        evs = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
        self.assertEqual(len(evs), 1)
        self.assertEqual(evs[0]["event"]["recordedBy"]["principalId"], "hl7-mllp")
        r = subprocess.run([common.CLINLOG, "read", self.server.data, "--stream",
                            "patient-NORTH-P9902"], capture_output=True, text=True,
                           timeout=T(60))
        self.assertEqual(r.stdout.strip(), "", "the unbound sender's message was written")

"""Mutual TLS on the Raft transport (replication/tls.c, docs/replication.md).

- a 3-node cluster over mutual TLS elects a leader, replicates, survives a
  SIGKILL of its leader and verifies (cluster.verify_cluster);
- a process that reaches a Raft port is refused unless it proves a node
  certificate: no client certificate, a certificate of another CA, a
  certificate of the cluster CA that does not name the host the peer claims,
  plain bytes (after libraft's preamble, and without it); each refusal is one
  line of the node's log naming the peer's address, and the cluster keeps
  working; a valid node certificate is accepted (the control);
- a capture of the Raft ports (tcpdump on lo) while events carrying a canary
  are appended holds neither the canary nor the Raft configuration's
  "raft|api" addresses, which a plaintext cluster's capture (the control)
  shows.

Talking to a Raft port: libraft's TCP transport first reads its preamble
(protocol 1, the sender's id, the length of its address padded to 8 bytes,
the address; little-endian u64s), then the TLS handshake starts."""
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import time

import common
import cluster
from cluster import T, log

CANARY = b"Quillon Canarybright RAFT-CANARY-424242"


def preamble(node_id, address):
    a = address.encode() + b"\0"
    a += b"\0" * (-len(a) % 8)
    return struct.pack("<QQQ", 1, node_id, len(a)) + a


def raft_connect(port, node_id=99, claimed="127.0.0.1:1"):
    s = socket.create_connection(("127.0.0.1", port), timeout=T(5))
    s.sendall(preamble(node_id, claimed))
    return s


def tls_attempt(port, cert=None, key=None, claimed="127.0.0.1:1"):
    """Preamble, then a TLS client handshake (with `cert` if given), then one
    read. Returns (local port, outcome): "accepted" if the connection is still
    open after the handshake (the server then waits for Raft messages),
    otherwise the error or "closed"."""
    raw = raft_connect(port, claimed=claimed)
    local = raw.getsockname()[1]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert, key)
    try:
        s = ctx.wrap_socket(raw, server_hostname=None)
        s.settimeout(2)
        try:
            data = s.recv(1)  # TLS 1.3: the server's verdict on our certificate comes now
            return local, "closed" if not data else "data"
        except socket.timeout:
            return local, "accepted"
        finally:
            s.close()
    except (ssl.SSLError, OSError) as e:
        return local, "error: %s" % e
    finally:
        raw.close()


def send_plain(s, data):
    """Sends plain bytes, returns what comes back before the node hangs up."""
    s.sendall(data)
    s.settimeout(T(5))
    try:
        return s.recv(4096)
    except OSError:
        return b""
    finally:
        s.close()


def wait_log(node, pattern, timeout=None):
    deadline = time.monotonic() + (timeout or T(10))
    rx = re.compile(pattern)
    while True:
        m = rx.search(node.stderr_all())
        if m:
            return m.group(0)
        if time.monotonic() >= deadline:
            raise AssertionError("no log line matching %r on node %d:\n%s"
                                 % (pattern, node.id, node.diag(15)))
        time.sleep(0.1)


def replicate(tc, c, n_events, tag):
    lid = c.leader()
    evs = [common.event("raft-tls-%s-%d" % (tag, k % 3),
                        text="%s #%d" % (CANARY.decode(), k)) for k in range(n_events)]
    size = 0
    for k in range(0, len(evs), 5):
        r = c.nodes[lid].client.append(common.batch(evs[k:k + 5], c.signer), timeout=T(10))
        size = r.tree_size
    deadline = time.monotonic() + T(20)
    while True:
        sizes = {i: getattr(s, "tree_size", 0) for i, s in c.statuses().items()}
        if min(sizes.values()) >= size:
            return size
        tc.assertLess(time.monotonic(), deadline, "not replicated: %s" % sizes)
        time.sleep(0.1)


class Capture:
    """tcpdump on lo into a pcap file; payloads() parses it (Ethernet/IPv4/TCP)."""

    def __init__(self, d):
        self.path = os.path.join(d, "raft.pcap")
        self.err = open(os.path.join(d, "tcpdump.err"), "w+")
        self.proc = subprocess.Popen(["tcpdump", "-i", "lo", "-n", "-U", "-s", "0", "-w",
                                      self.path, "tcp"], stdout=subprocess.DEVNULL,
                                     stderr=self.err)
        deadline = time.monotonic() + 10
        while True:
            self.err.seek(0)
            if "listening on" in self.err.read():
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.err.seek(0)
                raise RuntimeError("tcpdump did not start: %s" % self.err.read())
            time.sleep(0.05)

    def stop(self):
        time.sleep(0.5)
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=10)

    def payloads(self, ports):
        """{(src, dst): bytes} of the TCP payloads to or from `ports`, in
        capture order (no reassembly: enough for substring searches when
        joined per direction)."""
        out = {}
        with open(self.path, "rb") as f:
            data = f.read()
        magic = struct.unpack("<I", data[:4])[0]
        e = "<" if magic in (0xa1b2c3d4, 0xa1b23c4d) else ">"
        linktype = struct.unpack(e + "I", data[20:24])[0]
        off = 24
        while off + 16 <= len(data):
            _, _, caplen, _ = struct.unpack(e + "IIII", data[off:off + 16])
            pkt = data[off + 16:off + 16 + caplen]
            off += 16 + caplen
            if linktype == 1:  # Ethernet
                if pkt[12:14] != b"\x08\x00":
                    continue
                ip = pkt[14:]
            elif linktype == 113:  # Linux cooked
                ip = pkt[16:]
            else:
                ip = pkt
            if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 6:
                continue
            tcp = ip[(ip[0] & 15) * 4:]
            sport, dport = struct.unpack(">HH", tcp[:4])
            payload = tcp[(tcp[12] >> 4) * 4:]
            total = struct.unpack(">H", ip[2:4])[0] - (ip[0] & 15) * 4 - (tcp[12] >> 4) * 4
            payload = payload[:max(0, total)]
            if payload and (sport in ports or dport in ports):
                out[(sport, dport)] = out.get((sport, dport), b"") + payload
        return out


class RaftTlsTest(cluster.ClusterTestCase):

    def test_cluster_over_mutual_tls(self):
        if not cluster.RAFT_TLS:
            self.skipTest("run.py --raft-plaintext")
        c = self.new_cluster("rtls")
        c.start(3)
        for n in c.nodes.values():
            self.assertRegex(n.stderr_all(), r"raft on 127\.0\.0\.1:%d \(mutual TLS" % n.raft_port)
        wl = self.new_workload(c, writers=2).start()
        lid = self.wait_healthy(c, wl)
        replicate(self, c, 10, "a")
        t = time.monotonic()
        c.nodes[lid].sigkill()
        others = [i for i in c.ids() if i != lid]
        new = c.leader(others, timeout=T(20))
        self.assertNotEqual(new, lid)
        self.assertIsNotNone(wl.wait_progress(t, 3, timeout=T(30)),
                             "no write after the leader was killed\n" + c.diag())
        c.nodes[lid].start()  # rejoins over TLS
        self.wait_healthy(c, wl, timeout=T(60))
        self.assertTrue(wl.stop(), "writers did not stop\n" + c.diag())
        res = cluster.verify_cluster(c, wl, label="raft tls")
        problems, _ = cluster.stop_and_verify_dirs(c, res["tree_size"])
        self.assertEqual(problems, [], "\n".join(problems))
        print("raft tls: leader %d killed, %d took over; %d events verified on 3 nodes"
              % (lid, new, res["tree_size"]), flush=True)

    def test_refusals(self):
        if not cluster.RAFT_TLS:
            self.skipTest("run.py --raft-plaintext")
        p = cluster.pki()
        d = tempfile.mkdtemp(prefix="rogue-", dir=common.TMP)
        cluster.make_ca(d, "rogue-ca", "rogue CA")
        rogue = cluster.make_node_cert(d, "rogue", ca="rogue-ca")
        shutil.copy(p["ca"], os.path.join(d, "ca.pem"))
        shutil.copy(os.path.join(p["dir"], "ca.key"), os.path.join(d, "ca.key"))
        misnamed = cluster.make_node_cert(d, "misnamed", san="IP:127.0.0.2,DNS:elsewhere")

        c = self.new_cluster("rtlsref")
        c.start(3)
        lid = c.leader()
        target = c.nodes[next(i for i in c.ids() if i != lid)]
        port = target.raft_port
        claimed = "127.0.0.1:%d" % c.nodes[lid].raft_port

        # the control: a node certificate is accepted
        local, out = tls_attempt(port, p["cert"], p["key"], claimed=claimed)
        self.assertEqual(out, "accepted", "a valid node certificate was not accepted")
        time.sleep(0.3)
        self.assertNotIn("refused 127.0.0.1:%d:" % local, target.stderr_all())

        cases = [
            ("no client certificate", (None, None), r"no client certificate"),
            ("another CA", rogue,
             r"certificate verify failed: unable to get local issuer certificate"),
            ("a name other than the claimed host", misnamed,
             r"certificate verify failed: IP address mismatch"),
        ]
        for what, (cert, key), reason in cases:
            local, out = tls_attempt(port, cert, key, claimed=claimed)
            self.assertNotEqual(out, "accepted", "%s: accepted" % what)
            line = wait_log(target, r"clinlogd: raft: refused 127\.0\.0\.1:%d: %s"
                            % (local, reason))
            log("%s: %s (client saw %s)" % (what, line, out))

        # plain bytes after the preamble: an AppendEntries-looking header
        s = raft_connect(port, claimed=claimed)
        local = s.getsockname()[1]
        got = send_plain(s, struct.pack("<QQ", 3, 64) + b"\0" * 64 + CANARY)
        self.assertFalse(got.startswith(b"\x17"), "application data answered plain bytes")
        line = wait_log(target, r"clinlogd: raft: refused 127\.0\.0\.1:%d: [^\n]+" % local)
        log("plain bytes: %s" % line)
        # plain bytes with no preamble: libraft's transport drops them
        s = socket.create_connection(("127.0.0.1", port), timeout=T(5))
        got = send_plain(s, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\0" * 64)
        self.assertEqual(got, b"", "a Raft port answered plain bytes")

        # the cluster keeps working, and nothing leaked into the stores
        self.assertEqual(c.leader(), lid, "the refusals disturbed the leader")
        replicate(self, c, 10, "b")

    def test_capture_holds_no_plaintext(self):
        if shutil.which("tcpdump") is None or os.geteuid() != 0:
            self.skipTest("needs tcpdump and root (scripts/install-deps.sh)")
        results = {}
        for mode in ("tls", "plaintext") if cluster.RAFT_TLS else ("plaintext",):
            saved = cluster.RAFT_TLS
            cluster.RAFT_TLS = mode == "tls"
            d = tempfile.mkdtemp(prefix="cap-%s-" % mode, dir=common.TMP)
            cap = Capture(d)
            try:
                c = self.new_cluster("rtlscap" + mode)
                c.start(3)
                replicate(self, c, 30, mode)
                ports = {n.raft_port for n in c.nodes.values()}
                conf = {("|127.0.0.1:%d" % n.port).encode() for n in c.nodes.values()}
                c.stop_all()
            finally:
                cluster.RAFT_TLS = saved
                cap.stop()
            flows = cap.payloads(ports)
            joined = b"".join(flows.values())
            results[mode] = (len(flows), len(joined), any(a in joined for a in conf),
                             CANARY in joined,
                             sum(v.count(b"\x17\x03\x03") for v in flows.values()))
            log("capture %s: %d flows, %d payload bytes, configuration addresses %s, "
                "canary %s, TLS application records %d" % ((mode,) + results[mode]))
            self.assertGreater(len(joined), 1000, "%s: the capture saw no Raft traffic" % mode)
            self.assertFalse(results[mode][3], "%s: the canary crossed a Raft link in "
                             "plaintext" % mode)
        self.assertTrue(results["plaintext"][2],
                        "control: the plaintext capture shows no Raft configuration")
        if "tls" in results:
            self.assertFalse(results["tls"][2],
                             "Raft configuration entries crossed the wire in the clear")
            self.assertGreater(results["tls"][4], 10, "no TLS application data records")

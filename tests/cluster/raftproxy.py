"""The cluster suite's Raft link proxy (RaftProxy): directed links between
nodes that a test can cut and heal, for partitions. Part of cluster.py's
machinery (which re-exports RaftProxy)."""
import collections
import socket
import struct
import threading


class _Conn:
    def __init__(self, dst, csock):
        self.dst = dst
        self.src = None
        self.csock = csock
        self.usock = None
        self.blackhole = False
        self.closed = False
        self.lock = threading.Lock()

    def close(self):
        with self.lock:
            if self.closed:
                return
            self.closed = True
        for s in (self.csock, self.usock):
            if s is not None:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                try:
                    s.close()
                except OSError:
                    pass

    def cut(self):
        """Blackhole: keep reading (and dropping) what the sender writes,
        deliver nothing; the receiving side's connection is closed."""
        self.blackhole = True
        u = self.usock
        if u is not None:
            try:
                u.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        d = s.recv(n - len(buf))
        if not d:
            return None
        buf += d
    return buf


class RaftProxy:
    """TCP proxies in front of the nodes' Raft ports. A cluster configuration
    that names the proxy ports routes every Raft message through here. Each
    connection of libraft's TCP transport carries messages one way, from the
    dialing node to the dialed one, and starts with a handshake naming the
    dialer (u64 LE protocol, u64 LE server id, u64 LE address length,
    address), so every connection is one directed link (src -> dst) that can
    be cut. A cut link silently drops what the sender writes (as a network
    partition would); healing closes those connections so the senders
    reconnect."""

    def __init__(self):
        self.lock = threading.Lock()
        self.blocked = set()    # (src, dst)
        self.targets = {}       # dst -> real raft port
        self.listeners = {}     # dst -> listening socket
        self.conns = set()
        self.stopped = False
        self.stats = collections.Counter()

    def add(self, dst, target_port, listen_port=None):
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", listen_port or 0))
        ls.listen(64)
        with self.lock:
            self.targets[dst] = target_port
            self.listeners[dst] = ls
        threading.Thread(target=self._accept, args=(dst, ls), daemon=True,
                         name="proxy-%d" % dst).start()
        return ls.getsockname()[1]

    def _accept(self, dst, ls):
        while not self.stopped:
            try:
                cs, _ = ls.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(dst, cs), daemon=True).start()

    def _handle(self, dst, cs):
        c = _Conn(dst, cs)
        with self.lock:
            self.conns.add(c)
        try:
            cs.settimeout(10)
            hdr = _recv_exact(cs, 24)
            if hdr is None:
                return
            proto, src, alen = struct.unpack("<QQQ", hdr)
            c.src = src
            cs.settimeout(None)
            with self.lock:
                blocked = (src, dst) in self.blocked
                port = self.targets.get(dst)
            if blocked:
                self.stats["blackholed_on_connect"] += 1
                c.blackhole = True
            else:
                try:
                    c.usock = socket.create_connection(("127.0.0.1", port), timeout=5)
                    c.usock.settimeout(None)
                    c.usock.sendall(hdr)
                except OSError:
                    return  # the node is down: the dialer sees the connection close
                with self.lock:
                    # cut while connecting?
                    if (src, dst) in self.blocked:
                        c.cut()
                threading.Thread(target=self._pump_back, args=(c,), daemon=True).start()
            self.stats["connections"] += 1
            while True:
                d = cs.recv(65536)
                if not d:
                    return
                if c.blackhole:
                    self.stats["bytes_dropped"] += len(d)
                    continue
                try:
                    c.usock.sendall(d)
                except OSError:
                    if c.blackhole:
                        continue
                    return
        except OSError:
            return
        finally:
            c.close()
            with self.lock:
                self.conns.discard(c)

    def _pump_back(self, c):
        try:
            while True:
                d = c.usock.recv(65536)
                if not d:
                    break
                if not c.blackhole:
                    c.csock.sendall(d)
        except OSError:
            pass
        if not c.blackhole:
            c.close()

    def cut(self, pairs):
        with self.lock:
            self.blocked |= set(pairs)
            conns = [c for c in self.conns if (c.src, c.dst) in self.blocked]
        for c in conns:
            c.cut()

    def isolate(self, node, all_ids):
        pairs = set()
        for o in all_ids:
            if o != node:
                pairs.add((node, o))
                pairs.add((o, node))
        self.cut(pairs)

    def heal(self):
        with self.lock:
            self.blocked.clear()
            conns = [c for c in self.conns if c.blackhole]
        for c in conns:
            c.close()

    def close(self):
        self.stopped = True
        with self.lock:
            ls = list(self.listeners.values())
            conns = list(self.conns)
        for s in ls:
            try:
                s.close()
            except OSError:
                pass
        for c in conns:
            c.close()


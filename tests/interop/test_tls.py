"""TLS and mutual TLS with certificates made here by the openssl command, and
the refusal of plaintext off loopback."""
import os
import subprocess
import tempfile
import unittest

import grpc

import common
from common import T, Client, Server, ServerTestCase, Signer, batch, event, unique_stream

SC = grpc.StatusCode


def openssl(*args, cwd):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (" ".join(args), r.stderr))


def make_pki(d):
    """CA, server (SAN IP:127.0.0.1, DNS:localhost), client, and a rogue
    self-signed client. Returns a dict of paths."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "30",
            "-subj", "/CN=clinlog interop CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n")
    with open(os.path.join(d, "client.ext"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n")
    for name, subj in (("server", "/CN=localhost"), ("client", "/CN=interop-client")):
        openssl("req", *ec, "-keyout", name + ".key", "-out", name + ".csr", "-subj", subj, cwd=d)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", name + ".pem", "-days", "30",
                "-extfile", name + ".ext", cwd=d)
    openssl("req", "-x509", *ec, "-keyout", "rogue.key", "-out", "rogue.pem", "-days", "30",
            "-subj", "/CN=rogue", cwd=d)
    for f in os.listdir(d):
        if f.endswith(".key"):
            os.chmod(os.path.join(d, f), 0o600)
    return {k: os.path.join(d, k) for k in os.listdir(d)}


def read(p):
    with open(p, "rb") as f:
        return f.read()


class TLSBase(ServerTestCase):
    tls_extra = ()
    server_host = "127.0.0.1"

    @classmethod
    def setUpClass(cls):
        d = tempfile.mkdtemp(prefix="pki-", dir=common.TMP)
        cls.pki = make_pki(d)
        args = ["--tls-cert", cls.pki["server.pem"], "--tls-key", cls.pki["server.key"]]
        args += [a if not a.startswith("@") else cls.pki[a[1:]] for a in cls.tls_extra]
        cls.server = Server(args=args, dev=False, host=cls.server_host)
        cls.server.start()
        cls.client = None
        cls.admin = Signer.load(os.path.join(cls.server.data, "keys", "admin.key"))

    def creds(self, client_cert=None, root="ca.pem"):
        kw = {"root_certificates": read(self.pki[root])}
        if client_cert:
            kw["private_key"] = read(self.pki[client_cert + ".key"])
            kw["certificate_chain"] = read(self.pki[client_cert + ".pem"])
        return grpc.ssl_channel_credentials(**kw)

    def works(self, client):
        self.assertEqual(client.health(timeout=T(5)),
                         common.pb.health.HealthCheckResponse.SERVING)
        r = client.append(batch([event(unique_stream())], self.admin))
        self.assertEqual(len(r.positions), 1)
        self.assertGreater(client.checkpoint(fresh=True).tree_size, 2)

    def fails(self, client, codes=(SC.UNAVAILABLE,)):
        with client:
            try:
                client.health(timeout=T(5))
            except grpc.RpcError as e:
                self.assertIn(e.code(), codes, e.details())
                return e
            self.fail("the call succeeded")


class TestTLS(TLSBase):

    def test_tls_client(self):
        with Client(self.server.addr, self.creds()) as c:
            self.works(c)

    def test_dns_name(self):
        with Client(self.server.addr, self.creds(),
                    options=[("grpc.ssl_target_name_override", "localhost")]) as c:
            self.works(c)

    def test_client_cert_optional(self):
        # Without --client-ca a client certificate is not needed but allowed.
        with Client(self.server.addr, self.creds("client")) as c:
            self.works(c)

    def test_plaintext_client_fails(self):
        self.fails(Client(self.server.addr))

    def test_untrusted_server(self):
        # A client trusting another CA (the rogue self-signed cert) refuses the server.
        self.fails(Client(self.server.addr, self.creds(root="rogue.pem")))

    def test_wrong_name(self):
        self.fails(Client(self.server.addr, self.creds(),
                          options=[("grpc.ssl_target_name_override", "evil.example")]))


class TestMutualTLS(TLSBase):
    tls_extra = ("--client-ca", "@ca.pem", "--require-client-cert")

    def test_client_with_cert(self):
        with Client(self.server.addr, self.creds("client")) as c:
            self.works(c)

    def test_client_without_cert(self):
        self.fails(Client(self.server.addr, self.creds()))

    def test_client_with_rogue_cert(self):
        self.fails(Client(self.server.addr, self.creds("rogue")))

    def test_plaintext_client_fails(self):
        self.fails(Client(self.server.addr))


class TestTLSAnyAddress(TLSBase):
    """TLS on a non-loopback (wildcard) address, no --dev: allowed."""
    server_host = "0.0.0.0"

    def test_tls_on_wildcard(self):
        with Client(self.server.addr, self.creds()) as c:
            self.works(c)


class TestStartupRefusals(unittest.TestCase):
    """Configurations clinlogd must refuse to start with."""

    @classmethod
    def setUpClass(cls):
        cls.data = common.init_data_dir()
        d = tempfile.mkdtemp(prefix="pki-", dir=common.TMP)
        cls.pki = make_pki(d)

    def refuses(self, argv_tail, dev, host="0.0.0.0"):
        srv = Server(data_dir=self.data, args=argv_tail, dev=dev, host=host)
        srv.spawn()
        try:
            rc = srv.proc.wait(T(15))
        except Exception:
            srv.kill()
            self.fail("clinlogd started with %r; stderr:\n%s" % (srv.argv(), srv.stderr()))
        finally:
            srv.kill()
        err = srv.stderr()
        self.assertNotEqual(rc, 0, "exit 0 for %r" % srv.argv())
        self.assertNotIn("listening on", err)
        self.assertGreater(len(err.strip()), 0, "no message for %r" % srv.argv())
        for m in common.SANITIZER_MARKERS:
            self.assertNotIn(m, err)
        return err

    def test_plaintext_non_loopback(self):
        err = self.refuses([], dev=False)
        self.assertRegex(err.lower(), "tls|dev|loopback|plaintext")

    def test_dev_non_loopback(self):
        err = self.refuses([], dev=True)
        self.assertRegex(err.lower(), "loopback|dev")

    def test_plaintext_loopback_without_dev(self):
        self.refuses([], dev=False, host="127.0.0.1")

    def test_require_client_cert_without_ca(self):
        self.refuses(["--tls-cert", self.pki["server.pem"], "--tls-key", self.pki["server.key"],
                      "--require-client-cert"], dev=False, host="127.0.0.1")

    def test_missing_cert_file(self):
        self.refuses(["--tls-cert", os.path.join(common.TMP, "nope.pem"),
                      "--tls-key", self.pki["server.key"]], dev=False, host="127.0.0.1")

    def test_cert_without_key(self):
        self.refuses(["--tls-cert", self.pki["server.pem"]], dev=False, host="127.0.0.1")

    def test_bad_data_dir(self):
        srv = Server(data_dir=os.path.join(common.TMP, "no-such-dir"), dev=True)
        srv.spawn()
        try:
            rc = srv.proc.wait(T(15))
        finally:
            srv.kill()
        self.assertNotEqual(rc, 0)

"""The cluster suite's certificates: a CA and node certificates made with the
openssl CLI (EC P-256), for the Raft transport's mutual TLS. Part of
cluster.py's machinery (which re-exports these names)."""
import os
import subprocess
import tempfile

import common

_PKI = {}


def openssl(*args, cwd):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (" ".join(args), r.stderr))


def make_node_cert(d, name, ca="ca", san="IP:127.0.0.1,DNS:localhost", subj=None):
    """A node certificate (EC P-256) signed by `ca` (ca.pem/ca.key in d),
    good for both TLS roles; returns (cert, key) paths."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write("subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n"
                "basicConstraints=CA:FALSE\n" % san)
    openssl("req", *ec, "-keyout", name + ".key", "-out", name + ".csr",
            "-subj", subj or "/CN=clinlog node %s" % name, cwd=d)
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
            "-CAcreateserial", "-out", name + ".pem", "-days", "30",
            "-extfile", name + ".ext", cwd=d)
    os.chmod(os.path.join(d, name + ".key"), 0o600)
    return os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")


def make_ca(d, name="ca", cn="clinlog cluster CA"):
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", name + ".key", "-out", name + ".pem", "-days", "30",
            "-subj", "/CN=" + cn, "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    os.chmod(os.path.join(d, name + ".key"), 0o600)
    return os.path.join(d, name + ".pem")


def pki():
    """The suite's cluster CA and one node certificate (SAN IP:127.0.0.1:
    every test node listens there), made once per run with the openssl CLI
    (as tests/interop/test_tls.py's make_pki). Paths: ca, cert, key, dir."""
    if not _PKI:
        d = tempfile.mkdtemp(prefix="raft-pki-", dir=common.TMP)
        ca = make_ca(d)
        cert, key = make_node_cert(d, "node")
        _PKI.update(ca=ca, cert=cert, key=key, dir=d)
    return _PKI

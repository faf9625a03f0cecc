"""Authentication between nodes on the API: a 3-node cluster with TLS on the
API, mutual TLS on Raft, `--auth required` and the audit trail on. Each node
has its own certificate (both TLS roles), bound in the log to a principal
with role `node`; the nodes call each other's APIs with it (forwarded
writes, the audit records a follower's recorder writes, catch-up by
Cluster/FetchRecords). The test's own channel is an admin's bound
certificate.

 - a nurse logs in on a follower and appends through the other follower
   with her token: the write is forwarded and committed, her record names
   that follower, and the leader's record of the forwarded append names the
   follower's node principal (auth "node");
 - a 4th node whose principal an admin registered and whose certificate it
   bound online, before AddNode (the documented order), catches up through
   FetchRecords as itself;
 - FetchRecords with no client certificate is UNAUTHENTICATED, with a
   certificate bound to a non-node principal (or an admin's: a node
   certificate is required) PERMISSION_DENIED, and each refusal is in the
   audit trail.
"""
import base64
import json
import os
import subprocess
import tempfile
import time
import uuid

import grpc
import nacl.signing

import cluster
import common
from cluster import T, log

PASSWORDS = {"admin": "admin pass phrase 1", "nurse1": "nurse pass phrase 2"}


def read(p):
    with open(p, "rb") as f:
        return f.read()


def cli(*args, stdin=None, env=None):
    return subprocess.run([common.CLINLOG] + list(args), input=stdin, capture_output=True,
                          text=True, timeout=T(60), env=env)


def registration(pid, role, kind, pk):
    return {"stream": "$principal-" + pid,
            "principalRegistered": {"principalId": pid, "roles": [role], "kind": kind,
                                    "publicKey": base64.b64encode(pk).decode()}}


def bind(pid, cert):
    r = cli("auth", "bind-cert", pid, cert, "CN=" + pid)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def records(node, pred):
    """The AccessRecorded events of the node's log that satisfy pred."""
    out = []
    for re in node.client._read(common.pb.api.ReadRequest(stream="$audit"), timeout=T(30)):
        a = common.pb.event.Event.FromString(re.event).access_recorded
        if pred(a):
            out.append(a)
    return out


def wait_records(test, node, pred, what, n=1):
    deadline = time.monotonic() + T(20)
    while True:
        recs = records(node, pred)
        if len(recs) >= n or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    test.assertGreaterEqual(len(recs), n, "node %d: no audit record of %s" % (node.id, what))
    return recs


def caught_up(test, c, ids=None):
    """Every node holds at least the leader's tree as it was when asked (the
    trail grows with every call, Status included, so the trees never stand
    still for Cluster.wait_converged). Returns that size."""
    lid = c.leader()
    size = c.nodes[lid].client.status().tree_size
    deadline = time.monotonic() + T(60)
    for i in ids or c.ids():
        while c.nodes[i].client.status().tree_size < size:
            test.assertLess(time.monotonic(), deadline, "node %d did not reach %d events\n%s"
                            % (i, size, c.diag()))
            time.sleep(0.2)
    return size


class SecureCluster(cluster.Cluster):
    """Nodes with API TLS, each with its own certificate (API, Raft and
    node-to-node calls), --auth required."""

    def __init__(self, name, pki):
        super().__init__(name, audit=True)
        self.pki = pki

    def secure(self, node):
        cert, key = self.pki["node-%d" % node.id]
        node.dev = False
        node.extra += ["--tls-cert", cert, "--tls-key", key, "--client-ca", self.pki["ca"],
                       "--raft-tls-cert", cert, "--raft-tls-key", key,
                       "--raft-tls-ca", self.pki["ca"], "--auth", "required"]
        node.credentials = self.pki["creds"]("ops")
        node.client.close()
        node.client = node.new_client()
        return node

    def new_node(self, node_id, tag=None):
        return self.secure(super().new_node(node_id, tag))

    def start_first(self):
        n1 = self.secure(cluster.Node(1, self.seed, join=False, audit=True))
        self.nodes[1] = n1
        n1.start()
        self.wait_leader([1], timeout=T(20))


class NodeAuthTest(cluster.ClusterTestCase):

    def make_pki(self):
        d = tempfile.mkdtemp(prefix="node-auth-pki-", dir=common.TMP)
        p = {"ca": cluster.make_ca(d, cn="clinlog node-auth CA"), "dir": d}
        for name in ("node-1", "node-2", "node-3", "node-4", "ops", "feed"):
            p[name] = cluster.make_node_cert(d, name, subj="/CN=" + name)

        def creds(who):
            kw = {}
            if who:
                kw = {"certificate_chain": read(p[who][0]), "private_key": read(p[who][1])}
            return grpc.ssl_channel_credentials(root_certificates=read(p["ca"]), **kw)
        p["creds"] = creds
        return p

    def fetch(self, node, who, rid):
        """Cluster/FetchRecords of the first record, as `who` (None: no
        client certificate)."""
        with cluster.NodeClient(node.addr, credentials=self.pki["creds"](who)) as cl:
            f = cl.channel.unary_stream("/clinlog.v1.Cluster/FetchRecords",
                                        cluster.cpb.FetchRecordsRequest.SerializeToString,
                                        cluster.cpb.RecordChunk.FromString)
            return list(f(cluster.cpb.FetchRecordsRequest(from_seq=1, to_seq=1),
                          metadata=[("x-request-id", rid)], timeout=T(15)))

    def test_nodes_authenticate_to_each_other(self):
        from test_auth import bootstrap, totp  # tests/interop: enrollment, RFC 6238
        self.pki = p = self.make_pki()
        c = SecureCluster("nodeauth", p)
        self.clusters.append(c)
        seed = c.init_seed()
        admin_key = os.path.join(seed, "keys", "admin.key")
        nurse = common.Signer()
        # before the cluster exists, offline: the nodes' principals and
        # certificates, the test's admin certificate, a feed system, a nurse
        events = [registration("node-%d" % i, "node", "system", common.Signer().pk)
                  for i in (1, 2, 3)]
        events += [registration("feed", "integration", "system", common.Signer().pk),
                   registration("nurse1", "nurse", "person", nurse.pk)]
        events += [bind("node-%d" % i, p["node-%d" % i][0]) for i in (1, 2, 3)]
        events += [bind("admin", p["ops"][0]), bind("feed", p["feed"][0])]
        secrets = bootstrap(seed, events, PASSWORDS)

        c.start_first()
        for k in (2, 3):
            c.add_node(k)  # each catches up through FetchRecords, as node-k
        caught_up(self, c)
        lid = c.leader()
        f1, f2 = [i for i in c.ids() if i != lid]
        log("nodeauth: 3 nodes up, leader %d, API TLS, --auth required" % lid)

        # a person's write through a follower (her channels carry no client
        # certificate): forwarded with node f2's certificate
        login_rid = "nodeauth-login-" + uuid.uuid4().hex
        a = common.pb.auth
        u1 = cluster.NodeClient(c.nodes[f1].addr, credentials=p["creds"](None))
        u2 = cluster.NodeClient(c.nodes[f2].addr, credentials=p["creds"](None))
        login = u1.channel.unary_unary(
            "/clinlog.v1.Auth/Login", a.LoginRequest.SerializeToString,
            a.LoginResponse.FromString)
        tok = login(a.LoginRequest(principal_id="nurse1", password=PASSWORDS["nurse1"],
                                   totp_code=totp(secrets["nurse1"])),
                    metadata=[("x-request-id", login_rid)], timeout=T(30)).token
        rid = "nodeauth-append-" + uuid.uuid4().hex
        ev = common.event("patient-NA1", principal="nurse1", role="nurse")
        resp, call = u2._append.with_call(
            common.batch([ev], nurse), timeout=T(30),
            metadata=[("authorization", "Bearer " + tok), ("x-request-id", rid)])
        self.assertGreater(resp.tree_size, 0)
        u1.close()
        u2.close()
        self.assertEqual(dict(call.trailing_metadata()).get("clinlog-forwarded-to"),
                         c.nodes[lid].addr)
        log("nodeauth: nurse1's append on follower %d forwarded to leader %d" % (f2, lid))

        # the followers' records reached the log (written through the leader)
        for i in c.ids():
            rec = wait_records(self, c.nodes[i], lambda r: r.request_id == rid and r.node_id == f2,
                               "the append")[0]
            self.assertEqual((rec.principal_id, rec.node_id, rec.auth, rec.outcome),
                             ("nurse1", f2, "token", "0"))
        rec = wait_records(self, c.nodes[lid],
                           lambda r: r.request_id == login_rid and r.node_id == f1,
                           "the login")[0]
        # (its SessionStarted was forwarded too; the record names the
        # principal that tried, not an authenticated one)
        self.assertEqual((rec.method, rec.node_id, rec.outcome),
                         ("clinlog.v1.Auth/Login", f1, "0"))
        # the leader recorded the forwarded append as the follower's node,
        # under the caller's request id (the follower passes it on)
        recs = wait_records(self, c.nodes[lid], lambda r: (
            r.node_id == lid and r.method == "clinlog.v1.Log/Append"
            and r.principal_id == "node-%d" % f2 and r.request_id == rid),
            "the forwarded append, joined to the follower's record by its request id")
        self.assertEqual((recs[0].auth, list(recs[0].roles)), ("node", ["node"]))

        # a "forwarded" write that proves no node: refused like any call
        rid = "nodeauth-forged-" + uuid.uuid4().hex
        with cluster.NodeClient(c.nodes[lid].addr, credentials=p["creds"](None)) as anon:
            with self.assertRaises(grpc.RpcError) as cm:
                anon._append(common.batch([common.event("patient-NA1")], c.signer),
                             metadata=[("clinlog-forwarded", "1"), ("x-request-id", rid)],
                             timeout=T(15))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAUTHENTICATED,
                         cluster.rpc_err(cm.exception))
        rec = wait_records(self, c.nodes[lid], lambda r: r.request_id == rid,
                           "the refused forged forward")[0]
        self.assertEqual((rec.principal_id, rec.outcome, rec.error), ("", "4", "CL_EUNAUTH"))

        # a new member: its principal registered and its certificate bound
        # by an admin, online, before AddNode
        ev_file = os.path.join(p["dir"], "node-4.json")
        with open(ev_file, "w") as f:
            for e in (registration("node-4", "node", "system", common.Signer().pk),
                      bind("node-4", p["node-4"][0])):
                f.write(json.dumps(e) + "\n")
        env = dict(os.environ, CLINLOG_TOKEN_FILE=os.path.join(p["dir"], "no-token"))
        r = cli("append", "--server", c.nodes[lid].addr, "--key", admin_key, "--ca", p["ca"],
                "--cert", p["ops"][0], "--cert-key", p["ops"][1], ev_file, env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        c.add_node(4)
        size = caught_up(self, c)
        recs = wait_records(self, c.nodes[lid], lambda r: (
            r.method == "clinlog.v1.Cluster/FetchRecords" and r.principal_id == "node-4"
            and r.outcome == "0"), "node 4's catch-up")
        self.assertEqual(recs[0].auth, "node")
        log("nodeauth: node 4 caught up through FetchRecords as node-4 (tree %d)" % size)

        # FetchRecords refused without a node certificate, and recorded
        target = c.nodes[f1]
        cases = [(None, grpc.StatusCode.UNAUTHENTICATED, "", "authentication required"),
                 ("feed", grpc.StatusCode.PERMISSION_DENIED, "feed", "node certificate"),
                 ("ops", grpc.StatusCode.PERMISSION_DENIED, "admin", "node certificate")]
        for who, code, principal, text in cases:
            rid = "nodeauth-fetch-%s-%s" % (who, uuid.uuid4().hex)
            with self.assertRaises(grpc.RpcError) as cm:
                self.fetch(target, who, rid)
            e = cm.exception
            self.assertEqual(e.code(), code, cluster.rpc_err(e))
            self.assertIn(text, e.details())
            rec = wait_records(self, c.nodes[lid], lambda r: r.request_id == rid,
                               "the refused FetchRecords of %s" % who)[0]
            self.assertEqual((rec.method, rec.principal_id, rec.outcome, rec.node_id),
                             ("clinlog.v1.Cluster/FetchRecords", principal, "4", f1))
            self.assertEqual(rec.error, "CL_EUNAUTH" if who is None else "CL_EDENIED")
            log("nodeauth: FetchRecords as %s refused (%s) and recorded"
                % (who or "no certificate", code.name))
        # a node's certificate is served
        chunks = self.fetch(target, "node-2", "nodeauth-fetch-node-" + uuid.uuid4().hex)
        self.assertEqual(sum(len(ch.records) for ch in chunks), 1)

        problems, sizes = cluster.stop_and_verify_dirs(c)
        self.assertEqual(problems, [])
        log("nodeauth: clinlog verify passed on every node: %s" % sorted(sizes.values()))

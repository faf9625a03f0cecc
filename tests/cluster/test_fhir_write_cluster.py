"""FHIR writes and home-device readings sent to FOLLOWERS of a 3-node
cluster (docs/fhir.md "Writes", docs/adapters.md "Home-device feeds"): the
follower's REST face has the node's writer forward the append to the
leader (one hop), answers once its own views have folded the write, and
every node then serves the same resources. Each write lands in the log
exactly once, also when the same write is sent again to the other
follower (the same derived event ids: a no-op). A write that depends on
one made through another node sends that write's X-Clinlog-Sequence as
X-Clinlog-Min-Sequence, so the node reads the state it is based on (the
version, the matches) at least that fresh. The gateway logs in on a
follower with the credentials bootstrapped into the seed store."""
import datetime
import http.client
import json
import time
import uuid

import cluster
import common
from cluster import T, log
from test_auth import bootstrap, login_all, registration
from test_device_ingest import bp, device_registered, now
from test_fhir_write import heart_rate, patient, strip_meta

PASSWORDS = {"gw1": "gateway pass phrase 1"}


class HttpCluster(cluster.Cluster):
    """Nodes that each serve the HTTP face on a port of their own."""

    def with_http(self, node):
        node.http_port = common.free_port()
        node.extra += ["--http-listen", "127.0.0.1:%d" % node.http_port]
        return node

    def new_node(self, node_id, tag=None):
        return self.with_http(super().new_node(node_id, tag))

    def start_first(self):
        n1 = self.with_http(cluster.Node(1, self.seed, join=False, audit=self.audit))
        self.nodes[1] = n1
        n1.start()
        self.wait_leader([1], timeout=T(20))


def call(node, method, path, body=None, token=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", node.http_port, timeout=T(60))
    h = {"Content-Type": "application/fhir+json"}
    if token:
        h["Authorization"] = "Bearer " + token
    h.update(headers or {})
    c.request(method, path, body=json.dumps(body) if isinstance(body, dict) else body, headers=h)
    r = c.getresponse()
    raw = r.read()
    c.close()
    return r, (json.loads(raw) if raw else None)


def bodies(node, pid):
    """The event body names of patient-<pid> on one node (None while it
    does not answer)."""
    try:
        return [common.pb.event.Event.FromString(x.event).WhichOneof("body")
                for x in node.client.read(stream="patient-" + pid, timeout=T(10))]
    except Exception:  # noqa: BLE001 - a node catching up: asked again
        return None


class FhirWriteClusterTest(cluster.ClusterTestCase):

    def test_writes_on_followers_land_once(self):
        c = HttpCluster("fhirw")
        self.clusters.append(c)
        seed = c.init_seed()
        secrets = bootstrap(seed, [registration("gw1", "integration"),
                                   registration("cuff1", "device")], PASSWORDS)
        c.start_first()
        for k in (2, 3):
            c.add_node(k)
        c.wait_converged(timeout=T(60))
        lid = c.leader()
        f1, f2 = [c.nodes[i] for i in c.ids() if i != lid]
        tok = login_all(f1.client, PASSWORDS, secrets, ["gw1"])["gw1"]
        base = "/fhir/R4"

        # a Patient created on one follower, updated on the other
        r, p = call(f1, "POST", base + "/Patient", patient(family="Cluster"), tok)
        self.assertEqual(r.status, 201, p)
        pid = p["id"]
        seq = r.getheader("X-Clinlog-Sequence")
        self.assertGreater(int(seq), 0)
        p2 = dict(strip_meta(p), gender="other")
        r, u = call(f2, "PUT", base + "/Patient/" + pid, p2, tok,
                    {"If-Match": 'W/"1"', "X-Clinlog-Min-Sequence": seq})
        self.assertEqual((r.status, r.getheader("ETag")), (200, 'W/"2"'), u)
        self.assertGreater(int(r.getheader("X-Clinlog-Sequence")), int(seq))
        # an Observation in a transaction on one, the same again on the other: once
        oid = "obs-cluster-" + uuid.uuid4().hex[:6]
        tx = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": heart_rate(pid, 77, oid),
             "request": {"method": "PUT",
                         "url": "Observation?identifier=urn:clinlog:id|" + oid}}]}
        r, resp = call(f2, "POST", base, tx, tok)
        self.assertEqual(r.status, 200, resp)
        self.assertEqual(resp["entry"][0]["response"]["status"], "201 Created")
        seen = {"X-Clinlog-Min-Sequence": r.getheader("X-Clinlog-Sequence")}
        r, o = call(f1, "POST", base + "/Observation", heart_rate(pid, 77, oid), tok, seen)
        self.assertEqual((r.status, o["id"]), (200, resp["entry"][0]["resource"]["id"]), o)
        # nothing appended: the sequence is where the write already is
        self.assertEqual(r.getheader("X-Clinlog-Sequence"), seen["X-Clinlog-Min-Sequence"])
        # a PATCH on a follower
        ops = json.dumps([{"op": "add", "path": "/note", "value": [{"text": "cluster"}]}])
        r, o2 = call(f2, "PATCH", base + "/Observation/" + o["id"], ops, tok,
                     dict(seen, **{"Content-Type": "application/json-patch+json"}))
        self.assertEqual((r.status, o2["meta"]["versionId"]), (200, "2"), o2)
        log("fhirw: writes on followers %d and %d (leader %d)" % (f1.id, f2.id, lid))

        # device readings on a follower, sent again on the other: once
        c.nodes[lid].client.append(
            common.batch([device_registered("cuff-c1", pid, "cuff1")], c.signer), timeout=T(20))
        c.wait_converged(timeout=T(60))  # registered before it is used, on every node
        t = now() - datetime.timedelta(minutes=2)
        lines = (bp("cuff-c1", pid, "r1", t, 121, 79) + "\n" +
                 bp("cuff-c1", pid, "r2", t + datetime.timedelta(minutes=1), 118, 77) + "\n")
        outs = []
        for node in (f2, f1):
            r, out = call(node, "POST", "/device/readings", lines, tok,
                          {"Content-Type": "application/x-ndjson"})
            self.assertEqual(r.status, 200, out)
            outs.append((out["accepted"], out["duplicates"]))
        self.assertEqual(outs, [(2, 0), (0, 2)])

        # every node: the same log, each event once, the same views
        c.wait_converged(timeout=T(60))
        want = sorted(["patient_registered", "patient_demographics_updated",
                       "observation_recorded", "observation_recorded", "device_registered",
                       "device_reading_recorded", "device_reading_recorded"])
        size = c.nodes[lid].client.tree_size()
        for node in c.nodes.values():
            got = None
            deadline = time.monotonic() + T(30)
            while time.monotonic() < deadline:
                got = bodies(node, pid)
                if got is not None and sorted(got) == want:
                    break
                time.sleep(0.2)
            self.assertEqual(sorted(got or []), want, "node %d\n%s" % (node.id, c.diag()))
            seen = {"X-Clinlog-Min-Sequence": str(size)}
            r, got_p = call(node, "GET", base + "/Patient/" + pid, headers=seen)
            self.assertEqual((r.status, got_p["meta"]["versionId"], got_p["gender"]),
                             (200, "2", "other"), node.id)
            r, got_o = call(node, "GET", base + "/Observation/" + o["id"], headers=seen)
            self.assertEqual((r.status, got_o["note"]), (200, [{"text": "cluster"}]), node.id)
            r, obs = call(node, "GET", base + "/Observation?subject=Patient/%s&_count=50" % pid,
                          headers=seen)
            self.assertEqual(r.status, 200, obs)
            self.assertEqual(obs["total"], 3, "two readings and the heart rate, node %d"
                             % node.id)
        log("fhirw: every node holds each FHIR write and reading once")

"""The FHIR REST API (/fhir/R4 over HTTPS, adapters/http) on a TLS clinlogd,
checked by independent clients: Python's http.client for the HTTP semantics
(ETag and If-None-Match, Last-Modified, HEAD, POST _search, Prefer:
handling=strict, read-your-writes by header, 404/405/406 as
OperationOutcome, TLS only), and an npm FHIR client (fhir-kit-client, in
tests/fhir) for read, paging through next links, vread, history and
$everything, every resource it sees validated by @medplum/core; and Bulk
Data $export (kick-off, polling, files, restart, DELETE) by http.client,
the CLI and a bulk run of the npm client."""
import http.client
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.parse
import uuid

import grpc

import common
from common import T, Client, Server, ServerTestCase, Signer, free_port
from test_fhir import patient_events
from test_tls import make_pki, read

NODE_DIR = os.path.join(common.REPO, "tests", "fhir")


class TestFhirHttp(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        d = tempfile.mkdtemp(prefix="pki-", dir=common.TMP)
        cls.pki = make_pki(d)
        cls.http_port = free_port()
        args = ["--tls-cert", cls.pki["server.pem"], "--tls-key", cls.pki["server.key"],
                "--http-listen", "127.0.0.1:%d" % cls.http_port]
        cls.server = Server(args=args, dev=False)
        cls.server.start()
        cls.connect()
        cls.admin = Signer.load(os.path.join(cls.server.data, "keys", "admin.key"))
        cls.ctx = ssl.create_default_context(cafile=cls.pki["ca.pem"])

    @classmethod
    def connect(cls):
        creds = grpc.ssl_channel_credentials(root_certificates=read(cls.pki["ca.pem"]))
        cls.client = Client(cls.server.addr, credentials=creds,
                            options=[("grpc.ssl_target_name_override", "localhost")])

    def request(self, method, path, headers=None, body=None):
        c = http.client.HTTPSConnection("127.0.0.1", self.http_port, context=self.ctx,
                                        timeout=T(15))
        c.request(method, "/fhir/R4" + path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r, (json.loads(data) if data else None)

    def test_http_semantics(self):
        pid = "HTTP" + uuid.uuid4().hex[:8]
        head = self.append_events(patient_events(pid)).tree_size
        rywh = {"X-Clinlog-Min-Sequence": str(head)}
        r, p = self.request("GET", "/Patient/" + pid, rywh)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.getheader("Content-Type"), "application/fhir+json; charset=utf-8")
        self.assertEqual(p["id"], pid)
        etag = r.getheader("ETag")
        self.assertEqual(etag, 'W/"1"')
        self.assertTrue(r.getheader("Last-Modified").endswith("GMT"))
        r, body = self.request("GET", "/Patient/" + pid, {"If-None-Match": etag})
        self.assertEqual((r.status, body), (304, None))
        r, body = self.request("HEAD", "/Patient/" + pid)
        self.assertEqual((r.status, body), (200, None))
        r, body = self.request("GET", "/Patient/" + pid, {"X-Request-Id": "req-42"})
        self.assertEqual(r.getheader("X-Request-Id"), "req-42")

        # search by GET and by POST _search give the same matches
        q = urllib.parse.urlencode({"patient": pid, "date": "ge2026-01-01T00:00:00+01:00"})
        r, b1 = self.request("GET", "/Encounter?" + q)
        self.assertEqual(r.status, 200)
        r, b2 = self.request("POST", "/Encounter/_search",
                             {"Content-Type": "application/x-www-form-urlencoded"}, q)
        self.assertEqual(r.status, 200)
        self.assertEqual([e["resource"]["id"] for e in b1.get("entry", [])],
                         [e["resource"]["id"] for e in b2.get("entry", [])])
        self.assertEqual(b1["total"], 1)

        # lenient by default, strict on request
        r, b = self.request("GET", "/Encounter?patient=%s&shoe-size=42" % pid)
        self.assertEqual(r.status, 200)
        self.assertIn("shoe-size", json.dumps(b))
        r, oo = self.request("GET", "/Encounter?patient=%s&shoe-size=42" % pid,
                             {"Prefer": "handling=strict"})
        self.assertEqual(r.status, 400)
        self.assertEqual(oo["resourceType"], "OperationOutcome")

        # errors are OperationOutcomes with the right status
        for method, path, hdr, want in (
                ("GET", "/Patient/nobody-" + pid, {}, 404),
                ("GET", "/NoSuchType/1", {}, 404),
                ("GET", "/Patient/%s/_history/7" % pid, {}, 404),
                ("DELETE", "/Patient/" + pid, {}, 405),
                ("PUT", "/Patient/" + pid, {}, 415),  # a write needs FHIR JSON
                ("POST", "/Patient", {}, 415),
                ("PATCH", "/Patient/" + pid, {}, 415),  # a JSON Patch needs its type
                ("GET", "/Patient/" + pid, {"Accept": "application/fhir+xml"}, 406),
                ("GET", "/Encounter?date=2026-13", {}, 400),
                ("GET", "/Patient/" + pid, {"X-Clinlog-Min-Sequence": "soon"}, 400)):
            r, oo = self.request(method, path, hdr)
            self.assertEqual(r.status, want, "%s %s" % (method, path))
            self.assertEqual(oo["resourceType"], "OperationOutcome", "%s %s" % (method, path))
        r, oo = self.request("GET", "/Patient/" + pid, {"X-Clinlog-Min-Sequence": str(head + 10**6),
                                                        "Prefer": "wait=1"})
        self.assertEqual(r.status, 504, "read-your-writes that cannot be met times out")

        # TLS only: a plaintext request on the port gets no FHIR answer
        c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=T(5))
        try:
            c.request("GET", "/fhir/R4/metadata")
            status = c.getresponse().status
        except (http.client.HTTPException, ConnectionError, OSError):
            status = None
        self.assertNotEqual(status, 200)

    def test_an_independent_fhir_client(self):
        node = shutil.which("node")
        self.assertIsNotNone(node, "node is required (install-deps installs it)")
        pid = "NODE" + uuid.uuid4().hex[:8]
        evs = patient_events(pid)
        # three more encounters so that paging by 2 takes several pages
        for i in range(3):
            ev = common.pb.event.Event(event_id=common.new_id(), stream="patient-" + pid,
                                       occurred_at=common.timestamp_now())
            ev.recorded_by.principal_id = "admin"
            e = ev.encounter_started
            e.encounter_id = "enc-extra-%d" % i
            e.encounter_class.code = "AMB"
            e.start.seconds = 1790000000 + 86400 * (i + 1)
            evs.append(ev.SerializeToString())
        head = self.append_events(evs).tree_size
        self.request("GET", "/Patient/" + pid, {"X-Clinlog-Min-Sequence": str(head)})
        env = dict(os.environ, NODE_EXTRA_CA_CERTS=self.pki["ca.pem"])
        base = "https://localhost:%d/fhir/R4" % self.http_port
        r = subprocess.run([node, "rest_client.mjs", base, pid, "4"], cwd=NODE_DIR, env=env,
                           capture_output=True, text=True, timeout=T(120))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        out = json.loads(r.stdout.strip().splitlines()[-1])
        self.assertTrue(out["ok"])
        self.assertEqual(out["summary"]["paged"], 4)
        self.assertGreater(out["summary"]["validated"], 10)

    def export_status(self, loc):
        """Polls a Content-Location until the manifest; returns it."""
        path = urllib.parse.urlsplit(loc).path[len("/fhir/R4"):]
        deadline = time.monotonic() + T(60)
        while time.monotonic() < deadline:
            r, body = self.request("GET", path)
            if r.status == 200:
                self.assertEqual(r.getheader("Content-Type"), "application/json")
                return body
            self.assertEqual(r.status, 202, body)
            self.assertTrue(r.getheader("X-Progress"))
            time.sleep(0.05)
        self.fail("export %s did not finish" % loc)

    def export_files(self, manifest):
        """Every output file: {url: [resources]}, checking type and count."""
        out = {}
        for o in manifest["output"]:
            c = http.client.HTTPSConnection("127.0.0.1", self.http_port, context=self.ctx,
                                            timeout=T(15))
            c.request("GET", urllib.parse.urlsplit(o["url"]).path)
            r = c.getresponse()
            data = r.read()
            c.close()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.getheader("Content-Type"), "application/fhir+ndjson")
            lines = data.decode().split("\n")
            self.assertEqual(lines.pop(), "", "NDJSON ends with a newline")
            rs = [json.loads(x) for x in lines]
            self.assertEqual(len(rs), o["count"])
            self.assertTrue(all(x["resourceType"] == o["type"] for x in rs))
            out[o["url"]] = rs
        return out

    def test_bulk_export(self):
        pid = "BULK" + uuid.uuid4().hex[:8]
        head = self.append_events(patient_events(pid)).tree_size
        self.request("GET", "/Patient/" + pid, {"X-Clinlog-Min-Sequence": str(head)})
        asyn = {"Prefer": "respond-async", "Accept": "application/fhir+json"}

        # bad kick-offs say what is wrong
        for path, hdr, want, words in (
                ("/$export", {}, 400, "respond-async"),
                ("/$export?_type=Patient,Nonsense", asyn, 400, "Nonsense"),
                ("/$export?_since=yesterday", asyn, 400, "_since"),
                ("/$export?_typeFilter=Patient%3Fgender%3Dfemale",
                 dict(asyn, Prefer="respond-async, handling=strict"), 400, "_typeFilter"),
                ("/Group/nobody/$export", asyn, 404, "Group"),
                ("/$export-status/" + "0" * 32, {}, 404, "no export job")):
            r, oo = self.request("GET", path, hdr)
            self.assertEqual(r.status, want, path)
            self.assertEqual(oo["resourceType"], "OperationOutcome")
            self.assertIn(words, oo["issue"][0]["diagnostics"], path)

        # a system export of two types is the snapshot of its kick-off
        r, _ = self.request("GET", "/$export?_type=Patient,Encounter&_outputFormat="
                            "application%2Ffhir%2Bndjson", asyn)
        self.assertEqual(r.status, 202)
        loc = r.getheader("Content-Location")
        self.assertTrue(loc.startswith("https://127.0.0.1:%d/fhir/R4/$export-status/"
                                       % self.http_port), loc)
        later = "BULKLATE" + uuid.uuid4().hex[:8]
        self.append_events(patient_events(later))
        m = self.export_status(loc)
        self.assertEqual(m["request"].split("/fhir/R4/")[1],
                         "$export?_type=Patient,Encounter&_outputFormat=application/fhir+ndjson")
        self.assertFalse(m["requiresAccessToken"])
        self.assertEqual(m["error"], [])
        files = self.export_files(m)
        ids = {(x["resourceType"], x["id"]) for rs in files.values() for x in rs}
        self.assertIn(("Patient", pid), ids)
        self.assertNotIn(("Patient", later), ids, "appended after the kick-off: not in it")
        self.assertEqual({t for t, _ in ids}, {"Patient", "Encounter"})

        # kill -9 while a second one may be running; both survive the restart
        r, _ = self.request("GET", "/Patient/$export", asyn)
        self.assertEqual(r.status, 202)
        loc2 = r.getheader("Content-Location")
        self.server.kill()
        self.server.start()
        self.connect()  # the old channel saw its connection reset
        self.assertEqual(self.export_files(self.export_status(loc)), files,
                         "a finished export after a restart: the same files")
        m2 = self.export_status(loc2)
        ids2 = {(x["resourceType"], x["id"]) for rs in self.export_files(m2).values() for x in rs}
        self.assertIn(("Patient", later), ids2)
        self.assertIn(("Patient", pid), ids2)

        # Group level: a payer's members, the Group derived from coverage
        payer = "P" + uuid.uuid4().hex[:10]
        ev = common.pb.event.Event(event_id=common.new_id(), stream="patient-" + pid,
                                   occurred_at=common.timestamp_now())
        ev.recorded_by.principal_id = "admin"
        e = ev.eligibility_checked
        e.check_id = "chk-" + payer
        e.payer.system = "urn:oid:2.16.840.1.113883.6.300"
        e.payer.value = payer
        e.payer_name = "Interop Health Plan"
        e.member_id = "M-" + pid
        e.eligible = True
        head = self.append_events([ev.SerializeToString()]).tree_size
        r, g = self.request("GET", "/Group/payer-" + payer,
                            {"X-Clinlog-Min-Sequence": str(head)})
        self.assertEqual(r.status, 200, g)
        self.assertEqual((g["resourceType"], g["type"], g["actual"], g["quantity"]),
                         ("Group", "person", True, 1))
        self.assertEqual(g["member"][0]["entity"]["reference"], "Patient/" + pid)
        r, b = self.request("GET", "/Group?identifier=urn:oid:2.16.840.1.113883.6.300%7C" + payer)
        self.assertEqual((r.status, b["total"]), (200, 1))
        r, _ = self.request("GET", "/Group/payer-%s/$export?_type=Patient,Coverage" % payer, asyn)
        self.assertEqual(r.status, 202)
        m = self.export_status(r.getheader("Content-Location"))
        self.assertTrue(m["request"].endswith("/Group/payer-%s/$export?_type=Patient,Coverage"
                                              % payer))
        got = {(x["resourceType"], x["id"]) for rs in self.export_files(m).values() for x in rs}
        self.assertEqual({t for t, _ in got}, {"Patient", "Coverage"})
        self.assertEqual({i for t, i in got if t == "Patient"}, {pid}, "only the member")

        # DELETE cancels: the status is gone
        path = urllib.parse.urlsplit(loc).path[len("/fhir/R4"):]
        r, _ = self.request("DELETE", path)
        self.assertEqual(r.status, 202)
        r, oo = self.request("GET", path)
        self.assertEqual(r.status, 404)
        r, oo = self.request("DELETE", path)
        self.assertEqual(r.status, 404)

        # the CLI: kick-off, progress, download into a directory
        out = tempfile.mkdtemp(prefix="export-", dir=common.TMP)
        r = subprocess.run([common.CLINLOG, "fhir", "export", "_type=Patient", "--out", out,
                            "--json", "--server", self.server.addr, "--ca",
                            self.pki["ca.pem"], "--server-name", "localhost"],
                           capture_output=True, text=True, timeout=T(60))
        self.assertEqual(r.returncode, 0, r.stderr)
        s = json.loads(r.stdout)
        self.assertGreaterEqual(s["resources"], 2)
        got = []
        for f in s["files"]:
            with open(f["path"]) as fh:
                got += [json.loads(x) for x in fh]
        self.assertEqual(len(got), s["resources"])
        self.assertIn(pid, {x["id"] for x in got})
        r = subprocess.run([common.CLINLOG, "fhir", "export-status", s["job"], "--json",
                            "--server", self.server.addr, "--ca", self.pki["ca.pem"],
                            "--server-name", "localhost"],
                           capture_output=True, text=True, timeout=T(30))
        self.assertEqual(json.loads(r.stdout)["state"], "complete", r.stderr)

        # an independent client's whole run: kick-off, polling, download, DELETE
        env = dict(os.environ, NODE_EXTRA_CA_CERTS=self.pki["ca.pem"])
        base = "https://localhost:%d/fhir/R4" % self.http_port
        r = subprocess.run([shutil.which("node"), "bulk_client.mjs", base, pid], cwd=NODE_DIR,
                           env=env, capture_output=True, text=True, timeout=T(120))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        out = json.loads(r.stdout.strip().splitlines()[-1])
        self.assertTrue(out["ok"])
        self.assertGreaterEqual(out["summary"]["validated"], 4)

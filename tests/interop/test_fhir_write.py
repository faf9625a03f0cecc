"""FHIR writes on the REST face (adapters/http/http_fhirw.c over
adapters/fhir): create, update, conditional create, transaction (all or
nothing) and batch Bundles, driven by Python's http.client against a real
clinlogd, checked through the views (reads), the log (tree size: nothing
written on a refusal; the events as signed by the node's log key for the
caller) and an independent FHIR validator (@medplum/core, tests/fhir) run
over what a realistic synthetic patient record becomes.

Also `clinlog ingest fhir` (a Bundle file, NDJSON, a directory) and the
round trip: what `clinlog fhir export` writes, ingested into a fresh
server, gives the same views."""
import copy
import glob
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import unittest
import uuid

import common
import fhir_claims
import fhir_labs
from common import T, Client, Server, ServerTestCase, Signer, free_port

HERE = os.path.join(common.REPO, "tests", "interop", "fhir_write")
NODE_DIR = os.path.join(common.REPO, "tests", "fhir")
SYNTHETIC = os.path.join(HERE, "synthetic_patient.json")
FHIR_JSON = {"Content-Type": "application/fhir+json"}


def http_call(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=T(30))
    data = json.dumps(body) if isinstance(body, (dict, list)) else body
    h = dict(FHIR_JSON)
    h.update(headers or {})
    c.request(method, "/fhir/R4" + path, body=data, headers=h)
    r = c.getresponse()
    raw = r.read()
    c.close()
    return r, (json.loads(raw) if raw else None)


def strip_meta(res):
    """A resource without what a server assigns (meta)."""
    r = copy.deepcopy(res)
    r.pop("meta", None)
    return r


def patient(pid=None, family="Rivera"):
    p = {"resourceType": "Patient", "name": [{"family": family, "given": ["Lucia"]}],
         "gender": "female", "birthDate": "1984-07-02"}
    if pid:
        p["id"] = pid
    return p


def heart_rate(pid, value=72, oid=None):
    o = {"resourceType": "Observation", "status": "final",
         "category": [{"coding": [{"system":
                                   "http://terminology.hl7.org/CodeSystem/observation-category",
                                   "code": "vital-signs"}]}],
         "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4",
                              "display": "Heart rate"}]},
         "subject": {"reference": "Patient/" + pid},
         "effectiveDateTime": "2026-05-01T08:00:00Z",
         "valueQuantity": {"value": value, "unit": "beats/minute",
                           "system": "http://unitsofmeasure.org", "code": "/min"}}
    if oid:
        o["identifier"] = [{"system": "urn:clinlog:id", "value": oid}]
    return o


def validate(paths):
    """Runs the independent validator; (ok, output)."""
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules")):
        raise unittest.SkipTest("tests/fhir/node_modules missing (npm ci in tests/fhir)")
    r = subprocess.run(["node", os.path.join(NODE_DIR, "validate.mjs")] + paths,
                       capture_output=True, text=True, timeout=T(300))
    return r.returncode == 0, r.stdout + r.stderr


def wait_views(port, client, pid):
    """Returns once the views of the server at port have folded everything
    committed (the projection runs behind the commit)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=T(30))
    c.request("GET", "/fhir/R4/Patient/" + pid,
              headers={"X-Clinlog-Min-Sequence": str(client.tree_size())})
    status = c.getresponse().status
    c.close()
    assert status == 200, status


def everything(port, pid):
    st, b = common.fhir_get(port, "/Patient/%s/$everything?_count=1000" % pid)
    assert st == 200, b
    return sorted((strip_meta(e["resource"]) for e in b.get("entry", [])
                   if e["resource"]["resourceType"] != "Provenance"),
                  key=lambda r: (r["resourceType"], r["id"]))


class FhirWriteCase(ServerTestCase):
    """A server with the HTTP face (also test_fhir_write_cond.py's)."""
    audit = False  # so that the tree size says exactly what the writes appended

    @classmethod
    def setUpClass(cls):
        cls.http_port = free_port()
        cls.server_args = ("--http-listen", "127.0.0.1:%d" % cls.http_port)
        super().setUpClass()

    def call(self, method, path, body=None, headers=None):
        return http_call(self.http_port, method, path, body, headers)


class TestFhirWrite(FhirWriteCase):

    def test_create_read_update(self):
        size0 = self.client.tree_size()
        r, p = self.call("POST", "/Patient", patient(family="Nakamura"))
        self.assertEqual(r.status, 201, p)
        pid = p["id"]
        self.assertEqual(r.getheader("ETag"), 'W/"1"')
        self.assertTrue(r.getheader("Location").endswith("/fhir/R4/Patient/%s/_history/1" % pid),
                        r.getheader("Location"))
        self.assertEqual(p["name"], [{"family": "Nakamura", "given": ["Lucia"]}])
        self.assertEqual(self.client.tree_size(), size0 + 1)
        # the event: signed by the node's log key, recorded as $log for the caller
        st, got = common.fhir_get(self.http_port, "/Patient/" + pid)
        self.assertEqual((st, strip_meta(got)), (200, strip_meta(p)))

        # an Observation for it; its decimal stays as written
        obs = heart_rate(pid)
        obs["valueQuantity"]["value"] = 72.50
        r, o = self.call("POST", "/Observation", json.dumps(obs).replace("72.5", "72.50"))
        self.assertEqual(r.status, 201, o)
        self.assertEqual(o["subject"], {"reference": "Patient/" + pid})
        self.assertEqual(o["code"]["coding"][0]["system"], "http://loinc.org")
        c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=T(15))
        c.request("GET", "/fhir/R4/Observation/" + o["id"])
        raw = c.getresponse().read().decode()
        c.close()
        self.assertIn('"value":72.50', raw.replace(" ", ""))

        # update: PUT the changed resource; a new version
        p2 = strip_meta(p)
        p2["name"][0]["family"] = "Nakamura-Reyes"
        p2["telecom"] = [{"system": "phone", "value": "+1-555-0100", "use": "home"}]
        r, u = self.call("PUT", "/Patient/" + pid, p2)
        self.assertEqual(r.status, 200, u)
        self.assertEqual(r.getheader("ETag"), 'W/"2"')
        self.assertEqual(u["name"][0]["family"], "Nakamura-Reyes")
        self.assertEqual(u["telecom"], p2["telecom"])
        st, v1 = common.fhir_get(self.http_port, "/Patient/%s/_history/1" % pid)
        self.assertEqual(v1["name"][0]["family"], "Nakamura")

        # PUT of an Observation that exists: by its id (the business id is looked up)
        o2 = strip_meta(o)
        o2["valueQuantity"]["value"] = 80
        r, u = self.call("PUT", "/Observation/" + o["id"], o2)
        self.assertEqual(r.status, 200, u)
        self.assertEqual((u["id"], u["meta"]["versionId"]), (o["id"], "2"))
        # PUT to an id that does not exist (not a Patient): refused, nothing written
        before = self.client.tree_size()
        r, oo = self.call("PUT", "/Observation/deadbeef", dict(o2, id="deadbeef"))
        self.assertEqual(r.status, 422, oo)
        self.assertNothingWritten(before)

        # a PUT of a new Patient creates it with the client's id
        pid2 = "PW" + uuid.uuid4().hex[:10]
        r, p3 = self.call("PUT", "/Patient/" + pid2, patient(pid2))
        self.assertEqual((r.status, p3["id"]), (201, pid2))

        # Prefer: return=minimal: no body, the headers still
        r, body = self.call("POST", "/Observation", heart_rate(pid, 65),
                            {"Prefer": "return=minimal"})
        self.assertEqual((r.status, body), (201, None))
        self.assertTrue(r.getheader("Location"))

    def test_capabilities_list_the_writes(self):
        st, cs = common.fhir_get(self.http_port, "/metadata")
        self.assertEqual(st, 200)
        rest = cs["rest"][0]
        self.assertEqual(sorted(i["code"] for i in rest["interaction"]), ["batch", "transaction"])
        by = {r["type"]: r for r in rest["resource"]}
        for t in ("Patient", "Encounter", "Condition", "AllergyIntolerance", "Observation",
                  "MedicationRequest", "MedicationAdministration", "MedicationDispense",
                  "Immunization", "ServiceRequest"):
            codes = [i["code"] for i in by[t]["interaction"]]
            for code in ("create", "update", "patch", "read", "vread", "history-instance",
                         "search-type"):
                self.assertIn(code, codes, t)
            self.assertNotIn("delete", codes, t)  # append-only: docs/fhir.md#delete
            self.assertTrue(by[t]["conditionalCreate"], t)
            self.assertTrue(by[t]["conditionalUpdate"], t)
            self.assertEqual(by[t]["conditionalDelete"], "not-supported", t)
            self.assertEqual(by[t]["versioning"], "versioned-update", t)
            self.assertEqual(by[t]["updateCreate"], t == "Patient", t)
        self.assertNotIn("create", [i["code"] for i in by["DetectedIssue"]["interaction"]])
        self.assertNotIn("patch", [i["code"] for i in by["DetectedIssue"]["interaction"]])
        self.assertNotIn("conditionalUpdate", by["DetectedIssue"])

    def test_conditional_create(self):
        mrn = "MRN-" + uuid.uuid4().hex[:8]
        p = patient(family="Cond")
        p["identifier"] = [{"system": "urn:oid:1.2.3.4", "value": mrn}]
        hdr = {"If-None-Exist": "identifier=urn:oid:1.2.3.4|" + mrn}
        r, first = self.call("POST", "/Patient", p, hdr)
        self.assertEqual(r.status, 201, first)
        size = self.client.tree_size()
        p["name"][0]["family"] = "Other"  # matches: nothing is written
        r, again = self.call("POST", "/Patient", p, hdr)
        self.assertEqual(r.status, 200, again)
        self.assertEqual(again["id"], first["id"])
        self.assertEqual(again["name"][0]["family"], "Cond")
        self.assertNothingWritten(size)
        r, oo = self.call("POST", "/Patient", p, {"If-None-Exist": "nosuchparam=1"})
        self.assertEqual(r.status, 400, oo)
        self.assertNothingWritten(size)

    def test_refusals_name_the_element(self):
        r, p = self.call("POST", "/Patient", patient(family="Refused"))
        pid = p["id"]
        size = self.client.tree_size()
        cases = [
            ("/Observation", dict(heart_rate(pid), valueQuantity={"value": "72"}), 400,
             "Observation.valueQuantity.value"),
            ("/Observation", {k: v for k, v in heart_rate(pid).items() if k != "status"}, 400,
             "Observation.status"),
            ("/Observation", dict(heart_rate(pid), status="done"), 422, "Observation.status"),
            ("/Observation", dict(heart_rate(pid), subject={"reference": "Patient/nobody-x"}),
             422, "Observation.subject.reference"),
            ("/Observation", dict(heart_rate(pid), effectiveDateTime="2026-05-01"), 400,
             "Observation.effectiveDateTime"),
            ("/Observation", dict(heart_rate(pid), focus=[{"reference": "Patient/" + pid}]), 400,
             "Observation.focus"),
            ("/Observation", dict(heart_rate(pid), category=[{"coding": [{"system": "x"}]}]), 400,
             "Observation.category[0].coding[0].code"),
            ("/Patient", dict(patient(), gender="f"), 422, "Patient.gender"),
            ("/Patient", dict(patient(), birthDate="1984-13-01"), 400, "Patient.birthDate"),
            ("/Patient", dict(patient(), name=[{"given": "Lucia"}]), 400,
             "Patient.name[0].given"),
            ("/Condition", {"resourceType": "Condition", "subject": {"reference": "Patient/" + pid},
                            "clinicalStatus": {"coding": [{
                                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                "code": "cured"}]}},
             422, "Condition.clinicalStatus.coding[0].code"),
            ("/AllergyIntolerance", {"resourceType": "AllergyIntolerance",
                                     "patient": {"reference": "Patient/" + pid},
                                     "category": ["drug"],
                                     "clinicalStatus": {"coding": [{
                                         "system": "http://terminology.hl7.org/CodeSystem/"
                                                   "allergyintolerance-clinical",
                                         "code": "active"}]}},
             422, "AllergyIntolerance.category[0]"),
            ("/Encounter", {"resourceType": "Encounter", "status": "finished",
                            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                      "code": "AMB"},
                            "subject": {"reference": "Patient/" + pid},
                            "period": {"start": "2026-05-01T08:00:00Z"}},
             400, "Encounter.period.end"),
            ("/Observation", {"resourceType": "Patient"}, 400, None),
        ]
        for path, body, status, expr in cases:
            r, oo = self.call("POST", path, body)
            self.assertEqual(r.status, status, "%s %s: %s" % (path, expr, oo))
            self.assertEqual(oo["resourceType"], "OperationOutcome")
            issue = oo["issue"][0]
            self.assertEqual(issue["severity"], "error")
            if expr:
                self.assertEqual(issue["expression"], [expr], issue)
        # not JSON, unknown type, a type that cannot be written yet, no content type
        r, oo = self.call("POST", "/Observation", "{not json")
        self.assertEqual(r.status, 400)
        self.assertIn("not JSON", oo["issue"][0]["details"]["text"])
        r, oo = self.call("POST", "/NoSuchType", {"resourceType": "NoSuchType"})
        self.assertEqual(r.status, 404)
        r, oo = self.call("POST", "/DetectedIssue", {"resourceType": "DetectedIssue"})
        self.assertEqual(r.status, 422)
        self.assertEqual(oo["issue"][0]["code"], "not-supported")
        r, oo = self.call("POST", "/Patient", patient(), {"Content-Type": "text/plain"})
        self.assertEqual(r.status, 415)
        self.assertNothingWritten(size)

    def test_transaction_is_all_or_nothing(self):
        with open(SYNTHETIC) as f:
            b = json.load(f)
        mrn = "SYN-" + uuid.uuid4().hex[:8]
        b["entry"][0]["resource"]["identifier"][0]["value"] = mrn
        size = self.client.tree_size()
        # one bad entry (the last): nothing of the Bundle is written
        bad = copy.deepcopy(b)
        bad["entry"][-1]["resource"]["valueCodeableConcept"] = {"coding": [{"system": "x"}]}
        r, oo = self.call("POST", "", bad)
        self.assertEqual(r.status, 400, oo)
        self.assertEqual(oo["issue"][0]["expression"],
                         ["Bundle.entry[%d].resource.valueCodeableConcept.coding[0].code"
                          % (len(b["entry"]) - 1)])
        self.assertNothingWritten(size)
        # the whole record: one atomic append of every entry's events
        r, resp = self.call("POST", "", b)
        self.assertEqual(r.status, 200, resp)
        self.assertEqual(resp["type"], "transaction-response")
        self.assertEqual(len(resp["entry"]), len(b["entry"]))
        for e in resp["entry"]:
            self.assertEqual(e["response"]["status"], "201 Created", e)
            self.assertTrue(e["response"]["etag"].startswith('W/"'))
        events = 1 + 2 + 1 + 2 + 1 + 1 + 2 + 1 + 1 + 1 + 6  # patient, encounters (one finished)...
        self.assertEqual(self.client.tree_size(), size + events)
        pid = resp["entry"][0]["resource"]["id"]
        res = everything(self.http_port, pid)
        types = sorted(r["resourceType"] for r in res)
        self.assertEqual(types, sorted(["Patient", "Encounter", "Encounter", "Condition",
                                        "Condition", "AllergyIntolerance",
                                        "MedicationAdministration", "MedicationRequest",
                                        "MedicationRequest", "MedicationDispense",
                                        "ServiceRequest", "Immunization"] +
                                       ["Observation"] * 6))
        # the references came back as references into this server
        cond = [r for r in res if r["resourceType"] == "Condition" and
                r["identifier"][0]["value"] == "cond-htn"][0]
        self.assertEqual(cond["subject"], {"reference": "Patient/" + pid})
        self.assertTrue(cond["encounter"]["reference"].startswith("Encounter/"))
        self.assertEqual(cond["code"]["coding"][0]["system"], "http://hl7.org/fhir/sid/icd-10-cm")
        a1c = [r for r in res if r.get("identifier", [{}])[0].get("value") == "obs-a1c-0311"][0]
        self.assertEqual(a1c["valueQuantity"]["value"], 7.1)  # 7.10 on the wire
        # the same transaction again: the same events, nothing new
        r, resp2 = self.call("POST", "", b)
        self.assertEqual(r.status, 200, resp2)
        self.assertEqual([e["response"]["status"] for e in resp2["entry"]],
                         ["200 OK"] * len(b["entry"]))
        self.assertEqual(self.client.tree_size(), size + events)
        # what the views show of the record passes the independent validator
        d = tempfile.mkdtemp(prefix="fhirw-", dir=common.TMP)
        path = os.path.join(d, "synthetic.json")
        st, every = common.fhir_get(self.http_port, "/Patient/%s/$everything" % pid)
        with open(path, "w") as f:
            json.dump([e["resource"] for e in every["entry"]], f)
        ok, out = validate([path])
        self.assertTrue(ok, out)

    def test_batch_entries_on_their_own(self):
        r, p = self.call("POST", "/Patient", patient(family="Batch"))
        pid = p["id"]
        size = self.client.tree_size()
        b = {"resourceType": "Bundle", "type": "batch", "entry": [
            {"resource": heart_rate(pid, 70), "request": {"method": "POST", "url": "Observation"}},
            {"resource": dict(heart_rate(pid), status="nope"),
             "request": {"method": "POST", "url": "Observation"}},
            {"resource": heart_rate(pid, 71), "request": {"method": "PUT", "url": "Patient"}},
            {"resource": heart_rate(pid, 90), "request": {"method": "POST", "url": "Observation"}},
        ]}
        r, resp = self.call("POST", "", b)
        self.assertEqual(r.status, 200, resp)
        self.assertEqual(resp["type"], "batch-response")
        st = [e["response"]["status"] for e in resp["entry"]]
        self.assertEqual(st, ["201 Created", "422", "400", "201 Created"])
        self.assertEqual(resp["entry"][1]["response"]["outcome"]["issue"][0]["expression"],
                         ["Bundle.entry[1].resource.status"])
        self.assertEqual(resp["entry"][2]["response"]["outcome"]["issue"][0]["expression"],
                         ["Bundle.entry[2].request.url"])
        self.assertEqual(self.client.tree_size(), size + 2)
        # other Bundle types are refused
        r, oo = self.call("POST", "", {"resourceType": "Bundle", "type": "document"})
        self.assertEqual((r.status, oo["issue"][0]["expression"]), (400, ["Bundle.type"]))


class TestFhirIngestRoundTrip(unittest.TestCase):
    """`clinlog ingest fhir` and the round trip through `clinlog fhir export`."""

    @classmethod
    def setUpClass(cls):
        cls.servers = []
        cls.key = os.path.join(common.TMP, "fhir-feed-%d.key" % os.getpid())
        r = subprocess.run([common.CLINLOG, "keygen", cls.key], capture_output=True, text=True,
                           timeout=T(30))
        assert r.returncode == 0, r.stderr
        cls.feed = Signer.load(cls.key)

    @classmethod
    def tearDownClass(cls):
        for s in cls.servers:
            s.stop()

    def start(self):
        port = free_port()
        s = Server(args=["--http-listen", "127.0.0.1:%d" % port], audit=False)
        s.start()
        self.servers.append(s)
        client = Client(s.addr)
        admin = Signer.load(os.path.join(s.data, "keys", "admin.key"))
        common.register_feed(client, admin, "fhir-feed", "FHIR feed", self.feed.pk)
        return s, port, client

    def ingest(self, server, *paths, json_out=True, extra=()):
        argv = [common.CLINLOG, "ingest", "fhir", "--server", server.addr, "--plaintext", "--key",
                self.key] + list(extra)
        if json_out:
            argv.append("--json")
        r = subprocess.run(argv + list(paths), capture_output=True, text=True, timeout=T(120))
        return r.returncode, (json.loads(r.stdout) if json_out and r.stdout.strip() else
                              r.stdout), r.stderr

    def test_ndjson_lines_share_appends(self):
        """A load commits many lines per append (--batch-events), each line
        still with its own outcome and positions; a batch mixing lines ingested
        before with new ones is sent again line by line."""
        a, port_a, client_a = self.start()
        d = tempfile.mkdtemp(prefix="ingest-batch-", dir=common.TMP)
        nd = os.path.join(d, "load.ndjson")
        pid = "batch-%d" % os.getpid()
        lines = [json.dumps(patient(pid))] + [
            json.dumps(heart_rate(pid, 60 + i, "hr-b-%d" % i)) for i in range(30)]
        with open(nd, "w") as f:
            f.write("\n".join(lines) + "\n")
        size = client_a.tree_size()
        rc, out, err = self.ingest(a, nd, extra=["--batch-events", "8"])
        self.assertEqual(rc, 0, (out, err))
        sm = out["summary"]
        self.assertEqual((sm["units"], sm["accepted"], sm["events"]), (31, 31, 31))
        self.assertEqual(sm["appends"], 4)  # 8 + 8 + 8 + 7 events
        seqs = [(x["firstSeq"], x["lastSeq"]) for x in out["results"]]
        self.assertEqual(len(set(seqs)), 31)
        self.assertTrue(all(f == l for f, l in seqs))  # one event a line
        self.assertEqual(sorted(f for f, _ in seqs), list(range(size + 1, size + 32)))
        self.assertEqual(client_a.tree_size(), size + 31)
        wait_views(port_a, client_a, pid)
        r, b = http_call(port_a, "GET", "/Observation?subject=Patient/%s&_count=100" % pid)
        self.assertEqual(r.status, 200)
        self.assertEqual(len(b.get("entry", [])), 30)

        # ten more lines after the thirty-one: the batch holding the last old
        # lines and the first new ones is refused (part of it was committed),
        # then sent line by line: old lines duplicate, new ones accepted
        # (in a second file: the Patient line states no time, so its event
        # takes the file's modification time, which appending would change)
        more = [json.dumps(heart_rate(pid, 100 + i, "hr-c-%d" % i)) for i in range(10)]
        nd2 = os.path.join(d, "more.ndjson")
        with open(nd2, "w") as f:
            f.write("\n".join(more) + "\n")
        rc, out, err = self.ingest(a, nd, nd2, extra=["--batch-events", "8"])
        self.assertEqual(rc, 0, (out, err))
        st = [x["status"] for x in out["results"]]
        self.assertEqual(st, ["duplicate"] * 31 + ["accepted"] * 10)
        self.assertEqual(client_a.tree_size(), size + 41)
        # 3 batches all committed before (duplicates); the 4th, 7 old lines and
        # 1 new, refused and sent again as 8 appends; the other 9 new lines in
        # batches of 8 and 1
        self.assertEqual(out["summary"]["appends"], 3 + 1 + 8 + 2)
        # one append a line when asked; a bad value is a usage error
        rc, out, err = self.ingest(a, nd, nd2, extra=["--batch-events", "1"])
        self.assertEqual((rc, out["summary"]["appends"], out["summary"]["duplicates"]),
                         (0, 41, 41))
        rc, out, err = self.ingest(a, nd, extra=["--batch-events", "0"])
        self.assertEqual(rc, 2)
        self.assertIn("--batch-events", err)

    def test_ingest_and_round_trip(self):
        a, port_a, client_a = self.start()
        # a transaction Bundle file: one atomic batch, signed by the feed's key
        rc, out, err = self.ingest(a, SYNTHETIC)
        self.assertEqual(rc, 0, (out, err))
        self.assertEqual(out["summary"]["accepted"], 1)
        self.assertEqual(out["summary"]["events"], 19)
        pid = out["results"][0]["resources"][0]["id"]
        wait_views(port_a, client_a, pid)  # the NDJSON below references the patient
        # NDJSON lines, one refused: the error names the line and the element
        d = tempfile.mkdtemp(prefix="ingest-", dir=common.TMP)
        nd = os.path.join(d, "Observation.ndjson")
        with open(nd, "w") as f:
            f.write(json.dumps(heart_rate(pid, 61, "hr-nd-1")) + "\n")
            f.write(json.dumps(dict(heart_rate(pid, 62, "hr-nd-2"),
                                    valueQuantity={"value": True})) + "\n")
            f.write(json.dumps(heart_rate(pid, 63, "hr-nd-3")) + "\n")
        rc, out, err = self.ingest(a, nd)
        self.assertEqual(rc, 1, (out, err))
        self.assertEqual([x["status"] for x in out["results"]],
                         ["accepted", "refused", "accepted"])
        bad = out["results"][1]
        self.assertEqual((bad["line"], bad["error"]["expression"]),
                         (2, "Observation.valueQuantity.value"))
        # again: nothing new (the same event ids)
        size = client_a.tree_size()
        rc, out, err = self.ingest(a, SYNTHETIC)
        self.assertEqual(rc, 0, (out, err))
        self.assertEqual(out["results"][0]["status"], "duplicate")
        self.assertEqual(client_a.tree_size(), size)
        # human output
        rc, text, err = self.ingest(a, nd, json_out=False)
        self.assertIn("line 2: refused: Observation.valueQuantity.value", text)
        # the patient's claim: Coverage, ChargeItem, Claim, ClaimResponse
        bill = os.path.join(d, "claim.json")
        with open(bill, "w") as f:
            json.dump(fhir_claims.bundle(pid, "rt"), f)
        rc, out, err = self.ingest(a, bill)
        self.assertEqual(rc, 0, (out, err))
        self.assertEqual(out["summary"]["events"], 4)
        # an eligibility check of that Coverage: the Response and its Request,
        # a batch Bundle's two entries, one EligibilityChecked
        wait_views(port_a, client_a, pid)
        cov = [r for r in everything(port_a, pid) if r["resourceType"] == "Coverage"]
        elig = os.path.join(d, "eligibility.json")
        with open(elig, "w") as f:
            json.dump(fhir_claims.eligibility_bundle(pid, "rt", "batch",
                                                     "Coverage/" + cov[0]["id"]), f)
        rc, out, err = self.ingest(a, elig)
        self.assertEqual(rc, 0, (out, err))
        self.assertEqual(out["summary"]["events"], 1)
        self.assertEqual([x["type"] for x in out["results"][0]["resources"]],
                         ["CoverageEligibilityResponse", "CoverageEligibilityRequest"])
        checks = out["results"][0]["resources"]
        # lab reports, their lines contained as a client writes them: the
        # export serves each line as an Observation of its own
        self.ingest_labs(a, port_a, client_a, pid, d)

        # the round trip: export from A (once its views have folded everything
        # ingested: the projection runs behind the commit), then ingest the
        # directory into a fresh B
        wait_views(port_a, client_a, pid)
        exp = os.path.join(d, "export")
        r = subprocess.run([common.CLINLOG, "fhir", "export", "--server", a.addr, "--plaintext",
                            "--out", exp],
                           capture_output=True, text=True, timeout=T(120))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        files = sorted(glob.glob(os.path.join(exp, "*.ndjson")))
        self.assertTrue(files)
        for t in ("Coverage", "ChargeItem", "Claim", "ClaimResponse",
                  "CoverageEligibilityRequest", "CoverageEligibilityResponse"):
            self.assertTrue([f for f in files if f.endswith("." + t + ".ndjson")], t)
        b, port_b, client_b = self.start()
        rc, out, err = self.ingest(b, exp)
        self.assertEqual(rc, 0, (out, err))
        wait_views(port_b, client_b, pid)
        # the reports came back as reports, each line once (not an
        # ObservationRecorded of its own)
        for x in out["results"]:
            if x["resources"] and x["resources"][0]["type"] in ("DiagnosticReport",
                                                                "CoverageEligibilityResponse"):
                self.assertEqual(x["events"], 1, x)
        # the check's Request was taken by its Response, not a unit of its own
        self.assertFalse([x for x in out["results"] if x["resources"] and
                          x["resources"][0]["type"] == "CoverageEligibilityRequest"])
        self.assertEqual(len([x for x in out["results"] if x["resources"] and
                              x["resources"][0]["type"] == "CoverageEligibilityResponse"]), 1)
        self.maxDiff = None
        every_b = everything(port_b, pid)
        self.assertEqual(every_b, everything(port_a, pid))
        for x in checks:  # the check's pair, read from each server
            got = [common.fhir_get(p, "/%s/%s" % (x["type"], x["id"])) for p in (port_a, port_b)]
            self.assertEqual([g[0] for g in got], [200, 200], got)
            self.assertEqual(strip_meta(got[1][1]), strip_meta(got[0][1]))
        reports = [r for r in every_b if r["resourceType"] == "DiagnosticReport"]
        self.assertEqual(len(reports), 2)
        lines = {"Observation/" + r["id"]: r for r in every_b if r["resourceType"] == "Observation"}
        for rep in reports:
            for ref in rep["result"]:
                self.assertEqual(lines[ref["reference"]]["issued"], rep["issued"])
        ok, vout = validate(files)
        self.assertTrue(ok, vout)

    def test_ingest_eligibility_in_a_transaction(self):
        """A transaction Bundle file holding a patient, its Coverage and an
        eligibility check's Response and Request: one atomic batch, the pair
        one EligibilityChecked; the same Bundle with a second Response on
        the Request, or the Request without its Response, refused by path
        and nothing written."""
        a, port, client = self.start()
        d = tempfile.mkdtemp(prefix="ingest-elig-", dir=common.TMP)
        pid = "elig-tx-" + str(os.getpid())
        chk = fhir_claims.eligibility_bundle(pid, pid, "transaction", "urn:uuid:c0")
        tx = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": patient(pid), "request": {"method": "PUT", "url": "Patient/" + pid}},
            {"fullUrl": "urn:uuid:c0", "resource": fhir_claims.coverage(pid, pid),
             "request": {"method": "POST", "url": "Coverage"}}] + chk["entry"]}

        def ingest(name, bundle):
            path = os.path.join(d, name + ".json")
            with open(path, "w") as f:
                json.dump(bundle, f)
            return self.ingest(a, path)
        size = client.tree_size()
        two = copy.deepcopy(tx)
        two["entry"].append(copy.deepcopy(two["entry"][2]))
        rc, out, err = ingest("two", two)
        self.assertEqual(rc, 1, (out, err))
        self.assertEqual(out["results"][0]["error"]["expression"],
                         "Bundle.entry[4].resource.request")
        alone = copy.deepcopy(tx)
        del alone["entry"][2]
        rc, out, err = ingest("alone", alone)
        self.assertEqual(rc, 1, (out, err))
        self.assertEqual(out["results"][0]["error"]["expression"],
                         "Bundle.entry[2].resource")
        self.assertEqual(client.tree_size(), size, "nothing written")
        rc, out, err = ingest("tx", tx)
        self.assertEqual(rc, 0, (out, err))
        self.assertEqual(out["summary"]["events"], 3, "patient, coverage, the check")
        types = [x["type"] for x in out["results"][0]["resources"]]
        self.assertEqual(types[-2:], ["CoverageEligibilityResponse",
                                      "CoverageEligibilityRequest"])
        wait_views(port, client, pid)
        for x in out["results"][0]["resources"][-2:]:
            st, res = common.fhir_get(port, "/%s/%s" % (x["type"], x["id"]))
            self.assertEqual(st, 200, res)
            self.assertEqual(res["identifier"][0]["value"], "chk-" + pid)

    def ingest_labs(self, server, port, client, pid, d):
        """Ingests two lab reports of patient pid (lines contained: a panel
        based on the patient's ServiceRequest, and a basic metabolic panel
        with its order contained); returns their ids."""
        wait_views(port, client, pid)
        srs = [r for r in everything(port, pid) if r["resourceType"] == "ServiceRequest"]
        self.assertTrue(srs)
        paths = []
        for name, rep in (("panel", fhir_labs.panel_report(pid, "rt-panel-" + pid,
                                                           "ServiceRequest/" + srs[0]["id"])),
                          ("bmp", fhir_labs.bmp_report(pid, "rt-bmp-" + pid))):
            paths.append(os.path.join(d, name + ".json"))
            with open(paths[-1], "w") as f:
                json.dump(rep, f)
        rc, out, err = self.ingest(server, *paths)
        self.assertEqual(rc, 0, (out, err))
        self.assertEqual([x["events"] for x in out["results"]], [1, 1])
        return [x["resources"][0]["id"] for x in out["results"]]

    def export_of(self, server, d):
        """`clinlog fhir export` of server into d/export: its files by type."""
        exp = os.path.join(d, "export")
        r = subprocess.run([common.CLINLOG, "fhir", "export", "--server", server.addr,
                            "--plaintext", "--out", exp],
                           capture_output=True, text=True, timeout=T(120))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        by = {}
        for f in glob.glob(os.path.join(exp, "*.ndjson")):
            with open(f) as fh:
                for ln in fh:
                    if ln.strip():
                        res = json.loads(ln)
                        by.setdefault(res["resourceType"], []).append(res)
        return by

    def test_report_lines_of_their_own(self):
        """A DiagnosticReport whose result references Observations of the
        same input (as an export writes it) takes them as its lines, in
        either file order; a missing line, a line of two reports, and a line
        the views would make otherwise are refused by their path, and
        nothing is written for them."""
        a, port_a, client_a = self.start()
        pids = ["lines-%d-%d" % (os.getpid(), i) for i in range(3)]
        d = tempfile.mkdtemp(prefix="ingest-lines-", dir=common.TMP)
        src = os.path.join(d, "src.json")
        with open(src, "w") as f:
            json.dump({"resourceType": "Bundle", "type": "collection", "entry": [
                {"resource": patient(p, "Okafor")} for p in pids]}, f)
        rc, out, err = self.ingest(a, src)
        self.assertEqual(rc, 0, (out, err))
        reports = {}
        for p in pids:
            with open(src, "w") as f:
                json.dump({"resourceType": "Bundle", "type": "collection", "entry": [
                    {"resource": fhir_labs.panel_report(p, "panel-" + p)}]}, f)
            rc, out, err = self.ingest(a, src)
            self.assertEqual(rc, 0, (out, err))
            reports[p] = out["results"][0]["resources"][0]["id"]
        wait_views(port_a, client_a, pids[-1])
        exp = self.export_of(a, d)

        def mine(p, t):
            return [r for r in exp[t] if r.get("subject", {}).get("reference") == "Patient/" + p
                    or r.get("id") == p]

        b, port_b, client_b = self.start()
        # the report's file first for one patient, its lines' first for the other
        for i, p in enumerate(pids[:2]):
            dd = os.path.join(d, "order-%d" % i)
            os.makedirs(dd)
            names = ["a.ndjson", "b.ndjson"][::1 if i == 0 else -1]
            for name, rs in ((names[0], mine(p, "DiagnosticReport")),
                             (names[1], mine(p, "Observation") + mine(p, "Patient"))):
                with open(os.path.join(dd, name), "w") as f:
                    f.write("".join(json.dumps(r) + "\n" for r in rs))
            rc, out, err = self.ingest(b, dd)
            self.assertEqual(rc, 0, (out, err))
            self.assertEqual(out["summary"]["units"], 2)  # the Patient and the report
            rep = [x for x in out["results"] if x["resources"][0]["type"] == "DiagnosticReport"][0]
            self.assertEqual(rep["events"], 1)
            self.assertEqual([r["type"] for r in rep["resources"]],
                             ["DiagnosticReport"] + ["Observation"] * 4)
            wait_views(port_b, client_b, p)
            self.assertEqual(everything(port_b, p), everything(port_a, p))

        # refusals, each in a load of its own: nothing written
        p = pids[0]
        rep = mine(p, "DiagnosticReport")[0]
        lines = {"Observation/" + o["id"]: o for o in mine(p, "Observation")}
        ordered = [lines[r["reference"]] for r in rep["result"]]
        second = copy.deepcopy(rep)
        second["identifier"] = [{"system": "urn:clinlog:id", "value": "panel-copy"}]
        no_cat = copy.deepcopy(ordered[0])
        no_cat.pop("category")
        other_id = copy.deepcopy(ordered[1])
        other_id["id"] = "not-the-views-id"
        moved = copy.deepcopy(rep)
        moved["result"][1]["reference"] = "Observation/not-the-views-id"
        cases = [
            # a line missing from the input
            ([rep], ordered[:1] + ordered[2:], 0, "DiagnosticReport.result[1]", 422,
             rep["result"][1]["reference"]),
            # a line of two reports: the second refused
            ([rep, second], ordered, 1, "DiagnosticReport.result[0]", 422,
             "another DiagnosticReport"),
            # a line without what the view states (its category)
            ([rep], [no_cat] + ordered[1:], 0, "DiagnosticReport.result[0].resolve().category",
             400, "laboratory"),
            # a line whose id is not the one the views give it
            ([moved], [ordered[0], other_id] + ordered[2:], 0, "DiagnosticReport.result[1]", 422,
             "Observation/not-the-views-id"),
        ]
        for k, (reps, obs, at, expr, status, text) in enumerate(cases):
            dd = os.path.join(d, "bad-%d" % k)
            os.makedirs(dd)
            with open(os.path.join(dd, "DiagnosticReport.ndjson"), "w") as f:
                f.write("".join(json.dumps(r) + "\n" for r in reps))
            with open(os.path.join(dd, "Observation.ndjson"), "w") as f:
                f.write("".join(json.dumps(o) + "\n" for o in obs))
            size = client_b.tree_size()
            rc, out, err = self.ingest(b, dd)
            self.assertEqual(rc, 1, (k, out, err))
            self.assertEqual(len(out["results"]), len(reps), (k, out))
            bad = [x for x in out["results"] if x["status"] == "refused"]
            self.assertEqual(len(bad), 1, (k, out))
            self.assertEqual((bad[0]["line"], bad[0]["error"]["expression"],
                              bad[0]["error"]["status"]), (at + 1, expr, status), (k, bad))
            self.assertIn(text, bad[0]["error"]["text"], k)
            self.assertEqual([x["status"] for x in out["results"] if x is not bad[0]],
                             ["duplicate"] * (len(reps) - 1), k)
            self.assertEqual(client_b.tree_size(), size, k)

        # a REST batch: the report takes its line entries (Observation/<id>),
        # one write, each line answered as its report; a second report on
        # the same lines refused with its path, its entries alone
        p = pids[2]
        rep = mine(p, "DiagnosticReport")[0]
        second = dict(copy.deepcopy(rep), identifier=[{"system": "urn:clinlog:id",
                                                       "value": "panel-copy-2"}])

        def post(res):
            return {"resource": res, "request": {"method": "POST", "url": res["resourceType"]}}
        lines = [post(o) for o in mine(p, "Observation")]
        size = client_b.tree_size()
        r, got = http_call(port_b, "POST", "", {
            "resourceType": "Bundle", "type": "batch",
            "entry": [{"resource": mine(p, "Patient")[0],
                       "request": {"method": "PUT", "url": "Patient/" + p}},
                      post(rep)] + lines + [post(second)]})
        self.assertEqual(r.status, 200, got)
        st = [e["response"]["status"] for e in got["entry"]]
        self.assertEqual(st, ["201 Created"] * 6 + ["422"], got)
        self.assertEqual(got["entry"][-1]["response"]["outcome"]["issue"][0]["expression"],
                         ["Bundle.entry[6].resource.result[0]"])
        self.assertEqual(sorted(e["response"]["location"].split("/")[-3] for e in got["entry"][2:6]),
                         sorted(o["resource"]["id"] for o in lines))
        self.assertEqual(client_b.tree_size(), size + 2)  # the Patient, the report
        wait_views(port_b, client_b, p)
        self.assertEqual(everything(port_b, p), everything(port_a, p))

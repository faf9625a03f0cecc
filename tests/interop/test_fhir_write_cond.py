"""FHIR writes on the REST face beyond create and update
(adapters/http/http_fhirw.c): If-Match on PUT (FHIR R4 http.html,
"Managing Resource Contention"), conditional update, PATCH with JSON Patch,
and DELETE (refused: the log is append-only), alone and in Bundles, against
a real clinlogd; what was written is checked through the views and the
log's tree size (a refusal writes nothing)."""
import http.client
import json
import uuid

import unittest

import common
from common import T, Server, free_port
from test_auth import login_all, people_data
from test_fhir_write import FhirWriteCase, heart_rate, http_call, patient, strip_meta


class TestFhirWriteCond(FhirWriteCase):

    def new_patient(self, family="Match"):
        r, p = self.call("POST", "/Patient", patient(family=family))
        self.assertEqual(r.status, 201, p)
        return p

    def assertOutcome(self, oo, code, expr=None):
        self.assertEqual(oo["resourceType"], "OperationOutcome", oo)
        issue = oo["issue"][0]
        self.assertEqual((issue["severity"], issue["code"]), ("error", code), issue)
        if expr is not None:
            self.assertEqual(issue["expression"], [expr], issue)
        return issue.get("details", {}).get("text") or issue["diagnostics"]

    def test_write_sequence(self):
        # the answer names the log sequence of the write; the next request may
        # ask the node to have folded it first (read-your-writes across nodes)
        r, p = self.call("POST", "/Patient", patient(family="Sequence"))
        self.assertEqual(r.status, 201, p)
        seq = r.getheader("X-Clinlog-Sequence")
        self.assertEqual(int(seq), self.client.tree_size())
        r, u = self.call("PUT", "/Patient/" + p["id"], dict(strip_meta(p), gender="other"),
                         {"X-Clinlog-Min-Sequence": seq})
        self.assertEqual(r.status, 200, u)
        size = self.client.tree_size()
        r, oo = self.call("PUT", "/Patient/" + p["id"], strip_meta(p),
                          {"X-Clinlog-Min-Sequence": "7x"})
        self.assertEqual(r.status, 400, oo)
        self.assertIn("X-Clinlog-Min-Sequence", self.assertOutcome(oo, "invalid"))
        self.assertNothingWritten(size)

    def test_if_match(self):
        p = self.new_patient()
        pid = p["id"]
        p2 = strip_meta(p)
        p2["name"][0]["family"] = "Match-Two"
        # the current version: a normal update
        r, u = self.call("PUT", "/Patient/" + pid, p2, {"If-Match": 'W/"1"'})
        self.assertEqual((r.status, r.getheader("ETag")), (200, 'W/"2"'), u)
        # a stale version: 412, nothing written, the resource unchanged
        size = self.client.tree_size()
        p2["name"][0]["family"] = "Match-Lost"
        r, oo = self.call("PUT", "/Patient/" + pid, p2, {"If-Match": 'W/"1"'})
        self.assertEqual(r.status, 412, oo)
        self.assertIn("version 2, not 1", self.assertOutcome(oo, "conflict", "If-Match"))
        self.assertNothingWritten(size)
        st, cur = common.fhir_get(self.http_port, "/Patient/" + pid)
        self.assertEqual((cur["meta"]["versionId"], cur["name"][0]["family"]), ("2", "Match-Two"))
        # a strong ETag is taken too; not an ETag: 400; no such resource: 412
        r, u = self.call("PUT", "/Patient/" + pid, p2, {"If-Match": '"2"'})
        self.assertEqual((r.status, r.getheader("ETag")), (200, 'W/"3"'), u)
        size = self.client.tree_size()
        for etag, status in (("3", 400), ('W/"x"', 400), ('W/""', 400), ('W/"30"', 412)):
            r, oo = self.call("PUT", "/Patient/" + pid, p2, {"If-Match": etag})
            self.assertEqual(r.status, status, (etag, oo))
        nid = "PM" + uuid.uuid4().hex[:10]
        r, oo = self.call("PUT", "/Patient/" + nid, patient(nid), {"If-Match": 'W/"1"'})
        self.assertEqual(r.status, 412, oo)
        self.assertIn("does not exist", self.assertOutcome(oo, "conflict"))
        self.assertNothingWritten(size)

    def test_if_match_in_bundles(self):
        p = self.new_patient("BundleMatch")
        pid = p["id"]
        r, o = self.call("POST", "/Observation", heart_rate(pid, 60))
        self.assertEqual(r.status, 201, o)
        o2 = dict(strip_meta(o), valueQuantity=dict(o["valueQuantity"], value=61))
        p2 = dict(strip_meta(p), gender="other")

        def entry(res, url, im):
            return {"resource": res, "request": {"method": "PUT", "url": url, "ifMatch": im}}
        # a transaction with one stale entry: 412 for all of it, nothing written
        size = self.client.tree_size()
        tx = {"resourceType": "Bundle", "type": "transaction", "entry": [
            entry(p2, "Patient/" + pid, 'W/"1"'),
            entry(o2, "Observation/" + o["id"], 'W/"7"')]}
        r, oo = self.call("POST", "", tx)
        self.assertEqual(r.status, 412, oo)
        self.assertOutcome(oo, "conflict", "Bundle.entry[1].request.ifMatch")
        self.assertNothingWritten(size)
        # a batch: the stale entry alone is refused
        tx["type"] = "batch"
        r, resp = self.call("POST", "", tx)
        self.assertEqual(r.status, 200, resp)
        self.assertEqual([e["response"]["status"] for e in resp["entry"]], ["200 OK", "412"])
        self.assertEqual(resp["entry"][0]["response"]["etag"], 'W/"2"')
        self.assertEqual(self.client.tree_size(), size + 1)
        st, cur = common.fhir_get(self.http_port, "/Observation/" + o["id"])
        self.assertEqual((cur["meta"]["versionId"], cur["valueQuantity"]["value"]), ("1", 60))

    def test_conditional_update(self):
        mrn = "CU-" + uuid.uuid4().hex[:8]
        q = "/Patient?identifier=urn:oid:1.2.3.4%7C" + mrn
        p = patient(family="CondUpd")
        p["identifier"] = [{"system": "urn:oid:1.2.3.4", "value": mrn}]
        # no match, no id: a create with the server's id
        size = self.client.tree_size()
        r, c = self.call("PUT", q, p)
        self.assertEqual(r.status, 201, c)
        self.assertEqual(self.client.tree_size(), size + 1)
        pid = c["id"]
        # one match: an update of that resource
        p["name"][0]["family"] = "CondUpd-Two"
        r, u = self.call("PUT", q, p)
        self.assertEqual((r.status, u["id"], r.getheader("ETag")), (200, pid, 'W/"2"'), u)
        self.assertEqual(u["name"][0]["family"], "CondUpd-Two")
        # with If-Match too; the body's id, when given, must be the match's
        r, oo = self.call("PUT", q, p, {"If-Match": 'W/"1"'})
        self.assertEqual(r.status, 412, oo)
        size = self.client.tree_size()
        r, oo = self.call("PUT", q, dict(p, id="someone-else"))
        self.assertEqual(r.status, 400, oo)
        self.assertIn("matches Patient/" + pid, self.assertOutcome(oo, "invalid", "the search"))
        # several match: 412; a search the server does not take: 400
        p2 = patient(family="CondUpd-Other")
        p2["identifier"] = p["identifier"]
        r, other = self.call("POST", "/Patient", p2)
        self.assertEqual(r.status, 201, other)
        size = self.client.tree_size()
        r, oo = self.call("PUT", q, p)
        self.assertEqual(r.status, 412, oo)
        self.assertOutcome(oo, "multiple-matches", "the search")
        r, oo = self.call("PUT", "/Patient?nosuchparam=1", p)
        self.assertEqual(r.status, 400, oo)
        r, oo = self.call("PUT", "/Patient", p)  # no search, no id
        self.assertEqual(r.status, 405, oo)
        self.assertNothingWritten(size)
        # another type, by its business identifier (urn:clinlog:id)
        oid = "cu-obs-" + uuid.uuid4().hex[:8]
        oq = "/Observation?identifier=urn:clinlog:id%7C" + oid
        r, o = self.call("PUT", oq, heart_rate(pid, 70, oid))
        self.assertEqual(r.status, 201, o)
        r, o2 = self.call("PUT", oq, heart_rate(pid, 75, oid))
        self.assertEqual((r.status, o2["id"], o2["valueQuantity"]["value"]), (200, o["id"], 75))

    def test_conditional_update_in_bundles(self):
        p = self.new_patient("CondBundle")
        pid = p["id"]
        oid = "cub-" + uuid.uuid4().hex[:8]
        url = "Observation?identifier=urn:clinlog:id|" + oid

        def tx(kind, *entries):
            return {"resourceType": "Bundle", "type": kind, "entry": [
                {"resource": res, "request": {"method": "PUT", "url": u}} for res, u in entries]}
        r, resp = self.call("POST", "", tx("transaction", (heart_rate(pid, 80, oid), url)))
        self.assertEqual(r.status, 200, resp)
        self.assertEqual(resp["entry"][0]["response"]["status"], "201 Created")
        oid_id = resp["entry"][0]["resource"]["id"]
        r, resp = self.call("POST", "", tx("transaction", (heart_rate(pid, 81, oid), url)))
        self.assertEqual(resp["entry"][0]["response"]["status"], "200 OK", resp)
        self.assertEqual(resp["entry"][0]["resource"]["id"], oid_id)
        self.assertEqual(resp["entry"][0]["response"]["etag"], 'W/"2"')
        # a search the server does not take: refused, naming the entry's url
        size = self.client.tree_size()
        r, oo = self.call("POST", "", tx("transaction", (heart_rate(pid, 82, oid), url),
                                         (heart_rate(pid, 1), "Observation?bogus=1")))
        self.assertEqual(r.status, 400, oo)
        self.assertOutcome(oo, "invalid", "Bundle.entry[1].request.url")
        self.assertNothingWritten(size)
        st, cur = common.fhir_get(self.http_port, "/Observation/" + oid_id)
        self.assertEqual(cur["valueQuantity"]["value"], 81)

    def patch(self, path, ops, headers=None):
        h = {"Content-Type": "application/json-patch+json"}
        h.update(headers or {})
        return self.call("PATCH", path, json.dumps(ops) if not isinstance(ops, str) else ops, h)

    def test_patch(self):
        p = self.new_patient("Patchy")
        pid = p["id"]
        # test, replace, add (an array's end, escaping in a member name is moot
        # for FHIR names but not for the pointer), copy, move, remove
        ops = [{"op": "test", "path": "/name/0/family", "value": "Patchy"},
               {"op": "replace", "path": "/name/0/family", "value": "Patched"},
               {"op": "add", "path": "/telecom", "value": []},
               {"op": "add", "path": "/telecom/-",
                "value": {"system": "phone", "value": "+1-555-0101", "use": "home"}},
               {"op": "copy", "from": "/telecom/0", "path": "/telecom/1"},
               {"op": "replace", "path": "/telecom/1/use", "value": "work"},
               {"op": "add", "path": "/name/0/given/0", "value": "Ana"},
               {"op": "move", "from": "/name/0/given/1", "path": "/name/0/given/-"},
               {"op": "remove", "path": "/birthDate"}]
        r, u = self.patch("/Patient/" + pid, ops, {"If-Match": 'W/"1"'})
        self.assertEqual((r.status, r.getheader("ETag")), (200, 'W/"2"'), u)
        self.assertEqual(u["name"][0], {"family": "Patched", "given": ["Ana", "Lucia"]})
        self.assertEqual([t["use"] for t in u["telecom"]], ["home", "work"])
        self.assertNotIn("birthDate", u)
        st, cur = common.fhir_get(self.http_port, "/Patient/" + pid)
        self.assertEqual(strip_meta(cur), strip_meta(u))
        # a decimal stays as written through a patch of another element
        r, o = self.call("POST", "/Observation",
                         json.dumps(heart_rate(pid, 7)).replace('"value": 7', '"value": 7.10'))
        self.assertEqual(r.status, 201, o)
        r, o2 = self.patch("/Observation/" + o["id"],
                           [{"op": "test", "path": "/valueQuantity/value", "value": 7.1},
                            {"op": "add", "path": "/note", "value": [{"text": "rechecked"}]}])
        self.assertEqual(r.status, 200, o2)
        c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=T(15))
        c.request("GET", "/fhir/R4/Observation/" + o["id"])
        raw = c.getresponse().read().decode()
        c.close()
        self.assertIn('"value":7.10', raw.replace(" ", ""))
        # a patch that changes nothing writes nothing
        size = self.client.tree_size()
        r, same = self.patch("/Patient/" + pid, [{"op": "test", "path": "/gender",
                                                  "value": "female"}])
        self.assertEqual((r.status, same["meta"]["versionId"]), (200, "2"), same)
        self.assertNothingWritten(size)

    def test_patch_refusals(self):
        p = self.new_patient("PatchNo")
        pid = p["id"]
        size = self.client.tree_size()
        cases = [
            ([{"op": "test", "path": "/gender", "value": "male"}], 422, "conflict",
             "patch[0].value"),
            ([{"op": "replace", "path": "/name/0/family", "value": "X"},
              {"op": "test", "path": "/name/0/family", "value": "PatchNo"}], 422, "conflict",
             "patch[1].value"),
            ([{"op": "frobnicate", "path": "/gender"}], 400, "invalid", "patch[0].op"),
            ([{"op": "remove", "path": "gender"}], 400, "invalid", "patch[0].path"),
            ([{"op": "remove", "path": "/name/7"}], 422, "processing", "patch[0].path"),
            ([{"op": "add", "path": "/name/01", "value": {}}], 422, "processing",
             "patch[0].path"),
            ([{"op": "replace", "path": "/gender"}], 400, "required", "patch[0].value"),
            ([{"op": "move", "path": "/name/0/x", "from": "/name"}], 422, "processing",
             "patch[0].from"),
            ({"op": "remove", "path": "/gender"}, 400, "structure", "patch"),
            ([{"op": "remove", "path": "/~2"}], 400, "invalid", "patch[0].path"),
            # well-formed patches whose result the mapping refuses: 422, the element named
            ([{"op": "replace", "path": "/gender", "value": "f"}], 422, None, "Patient.gender"),
            ([{"op": "add", "path": "/photo", "value": []}], 422, None, "Patient.photo"),
            ([{"op": "replace", "path": "/resourceType", "value": "Observation"}], 422,
             "processing", "resourceType"),
        ]
        for ops, status, code, expr in cases:
            r, oo = self.patch("/Patient/" + pid, ops)
            self.assertEqual(r.status, status, (ops, oo))
            self.assertEqual(oo["resourceType"], "OperationOutcome")
            if code:
                self.assertEqual(oo["issue"][0]["code"], code, (ops, oo))
            self.assertEqual(oo["issue"][0]["expression"], [expr], (ops, oo))
        for body, ct, status in (("[not json", "application/json-patch+json", 400),
                                 ("[]", "application/fhir+json", 415)):
            r, oo = self.call("PATCH", "/Patient/" + pid, body, {"Content-Type": ct})
            self.assertEqual(r.status, status, oo)
        r, oo = self.patch("/Patient/nobody-" + uuid.uuid4().hex[:6], [])
        self.assertEqual(r.status, 404, oo)
        r, oo = self.patch("/Patient/" + pid, [], {"If-Match": 'W/"9"'})
        self.assertEqual(r.status, 412, oo)
        self.assertNothingWritten(size)
        st, cur = common.fhir_get(self.http_port, "/Patient/" + pid)
        self.assertEqual(strip_meta(cur), strip_meta(p))

    def provenance_codes(self, ref):
        """The event type codes of the Provenances of ref's versions, oldest first."""
        st, b = common.fhir_get(self.http_port, "/Provenance?target=%s&_count=100" % ref)
        self.assertEqual(st, 200, b)
        provs = [e["resource"] for e in b.get("entry", [])]
        return sorted((p["target"][0]["reference"].rsplit("/", 1)[1],
                       p["activity"]["coding"][0]["code"]) for p in provs)

    def test_delete_is_refused_with_the_way_to_correct(self):
        p = self.new_patient("NoDelete")
        size = self.client.tree_size()
        for path in ("/Patient/" + p["id"], "/Observation?subject=Patient/" + p["id"],
                     "/Patient/%s/_history/1" % p["id"]):
            r, oo = self.call("DELETE", path)
            self.assertEqual(r.status, 405, (path, oo))
            text = self.assertOutcome(oo, "not-supported")
            self.assertIn("entered-in-error", text)
            self.assertIn("append-only", text)
        self.assertNothingWritten(size)
        st, cur = common.fhir_get(self.http_port, "/Patient/" + p["id"])
        self.assertEqual(st, 200)

    def test_entered_in_error_is_a_retraction(self):
        p = self.new_patient("Retract")
        pid = p["id"]
        r, o = self.call("POST", "/Observation", heart_rate(pid, 99))
        self.assertEqual(r.status, 201, o)
        ref = "Observation/" + o["id"]
        # changing a value along with the status: refused, nothing written
        size = self.client.tree_size()
        bad = dict(strip_meta(o), status="entered-in-error",
                   valueQuantity=dict(o["valueQuantity"], value=98))
        r, oo = self.call("PUT", "/" + ref, bad)
        self.assertEqual(r.status, 422, oo)
        self.assertIn("status alone", self.assertOutcome(oo, "business-rule", "Observation"))
        self.assertNothingWritten(size)
        # the status alone (If-Match too): one EnteredInError event, a new version
        eie = dict(strip_meta(o), status="entered-in-error",
                   statusReason={"text": "wrong patient"})
        r, u = self.call("PUT", "/" + ref, eie, {"If-Match": 'W/"1"'})
        self.assertEqual((r.status, r.getheader("ETag")), (200, 'W/"2"'), u)
        self.assertEqual(u["status"], "entered-in-error")
        self.assertEqual(strip_meta(dict(u, status="final")), strip_meta(o))
        self.assertEqual(self.client.tree_size(), size + 1)
        self.assertEqual(self.provenance_codes(ref), [("1", "202"), ("2", "207")])
        # again: nothing to do, nothing written; a change to it now: refused
        r, again = self.call("PUT", "/" + ref, eie)
        self.assertEqual((r.status, again["meta"]["versionId"]), (200, "2"), again)
        r, oo = self.patch("/" + ref, [{"op": "add", "path": "/note", "value": [{"text": "x"}]}])
        self.assertEqual(r.status, 422, oo)
        self.assertEqual(self.client.tree_size(), size + 1)
        st, v1 = common.fhir_get(self.http_port, "/%s/_history/1" % ref)
        self.assertEqual(v1["status"], "final")

    def test_entered_in_error_by_patch_and_in_bundles(self):
        p = self.new_patient("RetractMore")
        pid = p["id"]
        cond = {"resourceType": "Condition", "subject": {"reference": "Patient/" + pid},
                "clinicalStatus": {"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active"}]},
                "verificationStatus": {"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": "confirmed"}]},
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003"}]},
                "recordedDate": "2026-05-01T08:00:00Z"}
        r, c = self.call("POST", "/Condition", cond)
        self.assertEqual(r.status, 201, c)
        size = self.client.tree_size()
        r, u = self.patch("/Condition/" + c["id"], [
            {"op": "remove", "path": "/clinicalStatus"},
            {"op": "replace", "path": "/verificationStatus/coding/0/code",
             "value": "entered-in-error"}])
        self.assertEqual(r.status, 200, u)
        self.assertEqual(u["verificationStatus"]["coding"][0]["code"], "entered-in-error")
        self.assertNotIn("clinicalStatus", u)
        self.assertEqual(self.provenance_codes("Condition/" + c["id"]), [("1", "200"), ("2", "207")])
        # a MedicationRequest, whose writes otherwise take status active only
        rx = {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
              "medicationCodeableConcept": {"coding": [{
                  "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "197361"}]},
              "subject": {"reference": "Patient/" + pid},
              "authoredOn": "2026-05-01T08:00:00Z"}
        r, m = self.call("POST", "/MedicationRequest", rx)
        self.assertEqual(r.status, 201, m)
        r, o = self.call("POST", "/Observation", heart_rate(pid, 50))
        self.assertEqual(r.status, 201, o)
        size = self.client.tree_size()
        tx = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": dict(strip_meta(m), status="entered-in-error"),
             "request": {"method": "PUT", "url": "MedicationRequest/" + m["id"]}},
            {"resource": dict(strip_meta(o), status="entered-in-error", issued="2026-01-01"),
             "request": {"method": "PUT", "url": "Observation/" + o["id"]}}]}
        r, oo = self.call("POST", "", tx)  # the second changes more than its status
        self.assertEqual(r.status, 422, oo)
        self.assertOutcome(oo, "business-rule", "Bundle.entry[1].resource")
        self.assertNothingWritten(size)
        del tx["entry"][1]["resource"]["issued"]
        r, resp = self.call("POST", "", tx)
        self.assertEqual(r.status, 200, resp)
        self.assertEqual([e["response"]["status"] for e in resp["entry"]], ["200 OK"] * 2)
        self.assertEqual([e["resource"]["status"] for e in resp["entry"]],
                         ["entered-in-error"] * 2)
        self.assertEqual(self.client.tree_size(), size + 2)


PEOPLE = {"dr1": ("clinician", "clinician pass phrase 1"),
          "nurse1": ("nurse", "nurse pass phrase 2"),
          "biller": ("billing", "billing pass phrase 3"),
          "feed": ("integration", "feed pass phrase 4")}


class TestFhirWriteAuth(unittest.TestCase):
    """FHIR writes with --auth required: who may write what is the access
    policy's (query/auth/default.policy), checked on the event types a write
    may make before anything is read or written."""

    @classmethod
    def setUpClass(cls):
        data, pw, secrets = people_data(PEOPLE)
        cls.http_port = free_port()
        cls.server = Server(data_dir=data, args=["--auth", "required", "--http-listen",
                                                 "127.0.0.1:%d" % cls.http_port],
                            audit=False)  # so that the tree size says exactly what was written
        cls.server.start()
        cls.client = common.Client(cls.server.addr)
        cls.tokens = login_all(cls.client, pw, secrets, list(PEOPLE) + ["admin"])

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.server.stop()

    def size(self):
        return self.client._checkpoint(
            common.pb.api.GetCheckpointRequest(fresh=True), timeout=T(15),
            metadata=[("authorization", "Bearer " + self.tokens["admin"])]).tree_size

    def call(self, who, method, path, body=None, headers=None):
        h = {}
        if who == "forged":  # the signature's last characters changed
            h = {"Authorization": "Bearer " + self.tokens["feed"][:-6] + "AAAAAA"}
        elif who:
            h = {"Authorization": "Bearer " + self.tokens[who]}
        h.update(headers or {})
        return http_call(self.http_port, method, path, body, h)

    def test_who_may_write(self):
        size = self.size()
        p = patient(family="Authz")
        for who, status in ((None, 401), ("forged", 401), ("biller", 403), ("nurse1", 403)):
            r, oo = self.call(who, "POST", "/Patient", p)
            self.assertEqual(r.status, status, (who, oo))
            self.assertEqual(oo["resourceType"], "OperationOutcome")
            if status == 401:
                self.assertTrue(r.getheader("WWW-Authenticate", "").startswith("Bearer"), who)
            else:
                self.assertIn("PatientRegistered", json.dumps(oo), who)
        # a Bundle is refused whole when one entry's type is not the caller's
        r, oo = self.call("nurse1", "POST", "", {
            "resourceType": "Bundle", "type": "transaction", "entry": [
                {"resource": p, "request": {"method": "POST", "url": "Patient"}}]})
        self.assertEqual(r.status, 403, oo)
        self.assertEqual(self.size(), size, "a refused write appended")
        # an integration system and a clinician write; a nurse writes vitals
        r, fp = self.call("feed", "POST", "/Patient", p)
        self.assertEqual(r.status, 201, fp)
        r, dp = self.call("dr1", "POST", "/Patient", patient(family="Authz-Dr"))
        self.assertEqual(r.status, 201, dp)
        r, o = self.call("nurse1", "POST", "/Observation", heart_rate(fp["id"], 64))
        self.assertEqual(r.status, 201, o)
        self.assertEqual(self.size(), size + 3)
        # a nurse may not update a Patient nor PATCH one; no token: 401
        size = self.size()
        r, oo = self.call("nurse1", "PUT", "/Patient/" + fp["id"], dict(strip_meta(fp),
                                                                         gender="other"))
        self.assertEqual(r.status, 403, oo)
        patch_ct = {"Content-Type": "application/json-patch+json"}
        ops = json.dumps([{"op": "replace", "path": "/gender", "value": "other"}])
        r, oo = self.call("nurse1", "PATCH", "/Patient/" + fp["id"], ops, patch_ct)
        self.assertEqual(r.status, 403, oo)
        r, oo = self.call(None, "PATCH", "/Observation/" + o["id"], ops, patch_ct)
        self.assertEqual(r.status, 401, oo)
        # retracting needs EnteredInError, which a nurse's roles may not append
        eie = dict(strip_meta(o), status="entered-in-error")
        r, oo = self.call("nurse1", "PUT", "/Observation/" + o["id"], eie)
        self.assertEqual(r.status, 403, oo)
        self.assertIn("EnteredInError", oo["issue"][0]["details"]["text"])
        self.assertEqual(self.size(), size, "a refused write appended")
        r, u = self.call("dr1", "PUT", "/Observation/" + o["id"], eie)
        self.assertEqual((r.status, u["status"]), (200, "entered-in-error"), u)
        self.assertEqual(self.size(), size + 1)


if __name__ == "__main__":
    unittest.main()

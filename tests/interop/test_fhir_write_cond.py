"""FHIR writes on the REST face beyond create and update
(adapters/http/http_fhirw.c): If-Match on PUT (FHIR R4 http.html,
"Managing Resource Contention"), conditional update, PATCH with JSON Patch,
and DELETE (refused: the log is append-only), alone and in Bundles, against
a real clinlogd; what was written is checked through the views and the
log's tree size (a refusal writes nothing)."""
import uuid

import common
from common import ServerTestCase, free_port
from test_fhir_write import heart_rate, http_call, patient, strip_meta


class TestFhirWriteCond(ServerTestCase):
    audit = False  # so that the tree size says exactly what the writes appended

    @classmethod
    def setUpClass(cls):
        cls.http_port = free_port()
        cls.server_args = ("--http-listen", "127.0.0.1:%d" % cls.http_port)
        super().setUpClass()

    def call(self, method, path, body=None, headers=None):
        return http_call(self.http_port, method, path, body, headers)

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
        return issue["details"]["text"]

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


if __name__ == "__main__":
    import unittest
    unittest.main()

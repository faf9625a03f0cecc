"""The audit trail of FHIR REST writes (adapters/http/http_fhirw.c), one
commit per write where it can be (a real clinlogd with the HTTP face and
the audit trail on, a one-node Raft cluster: its leader; read back over
gRPC):

- a create, an update and a transaction Bundle: the call's AccessRecorded
  is committed in the same store write as the events it wrote, right after
  them (AccessRecorded.preceding = the events, seq = the last event's + 1,
  one commit time), and says what a record written after the call says:
  the resource the call names ("Observation/<id>", "Bundle:transaction:2"),
  the patients, the count of events, the outcome, the method, transport,
  request id, client and server; the auditor's view (FHIR AuditEvent)
  names the resource, not the seqs;
- a conditional create that matches (nothing written), a refused write
  and a batch Bundle (an append per entry) each get exactly one record,
  written after the call (preceding 0), as before;
- a write the views do not fold within the wait (Prefer: wait=0) is still
  a success: 202 with the log sequence, its record outcome 0 in the same
  commit, never an error answer beside a record that says success.

Every call is told apart by its X-Request-Id."""
import json
import uuid

import common
from common import T
from test_fhir_write import FhirWriteCase, heart_rate, http_call, patient

METHOD = "clinlog.v1.Fhir/Write"


def log_read(client):
    """Every record of the log: {seq: (Event, committed_at ns)}."""
    return {r.seq: (common.pb.event.Event.FromString(r.event), r.committed_at.ToNanoseconds())
            for r in client.read()}


def records_of(log, request_id):
    """The AccessRecorded of one call: [(seq, AccessRecorded)]."""
    return [(s, e.access_recorded) for s, (e, _) in sorted(log.items())
            if e.WhichOneof("body") == "access_recorded" and e.access_recorded.method == METHOD
            and e.access_recorded.request_id == request_id]


def fields(a):
    """A record's fields as a dict (protobuf defaults included), but the
    ones that say where it is (preceding)."""
    d = {f.name: getattr(a, f.name) for f in a.DESCRIPTOR.fields}
    for k, v in d.items():
        if not isinstance(v, (str, int, bool, float, bytes)):
            d[k] = list(v)
    d.pop("preceding")
    return d


class TestFhirWriteAudit(FhirWriteCase):
    audit = True

    def write(self, method, path, body=None, headers=None):
        """A write as its own call: (response, body, request id)."""
        rid = "fw-" + uuid.uuid4().hex[:16]
        h = {"X-Request-Id": rid}
        h.update(headers or {})
        r, b = http_call(self.http_port, method, path, body, h)
        return r, b, rid

    def expected(self, rid, what, patients, count, outcome="0", error="", detail=""):
        """The fields a FHIR write's record has, wherever it is written."""
        return {"principal_id": "", "action": "C", "resource": what, "purpose_of_use": "",
                "outcome": outcome, "count": count, "method": METHOD, "transport": "http",
                "subtype": "", "request_id": rid, "roles": [], "auth": "none", "token_id": "",
                "node_id": 1, "patients": patients, "query": "", "error": error,
                "detail": detail, "break_glass": False}

    def one_record(self, rid):
        """The log now, and the call's one record (seq, AccessRecorded)."""
        log = log_read(self.client)
        recs = records_of(log, rid)
        self.assertEqual(len(recs), 1, "exactly one record per call: %r" % recs)
        return log, recs[0]

    def assert_in_commit(self, log, seq, a, n_events, r):
        """The record rides in the write's commit: right after its n events,
        which the answer's X-Clinlog-Sequence ends, at one commit time."""
        last = int(r.getheader("X-Clinlog-Sequence"))
        self.assertEqual(seq, last + 1, "the record follows the write's last event at once")
        self.assertEqual(a.preceding, n_events, "it names the write's events by position")
        written = list(range(last - n_events + 1, last + 1))
        for s in written:
            self.assertNotEqual(log[s][0].stream, "$audit", "seq %d is the write's" % s)
            self.assertEqual(log[s][0].source_system, "fhir-rest")
        self.assertEqual(log[seq][0].stream, "$audit")
        self.assertEqual(log[seq][0].recorded_by.principal_id, "$log")
        self.assertEqual(len({log[s][1] for s in written + [seq]}), 1,
                         "events and record in one store write")
        self.assertIn("127.0.0.1", a.client_address)

    def auditevent(self, seq, patient_id):
        """The auditor's view of the record at seq (FHIR AuditEvent)."""
        head = self.client.checkpoint(fresh=True).tree_size
        au = common.pb.audit
        q = self.client.channel.unary_unary("/clinlog.v1.Audit/Query",
                                            au.AuditQueryRequest.SerializeToString,
                                            au.AuditQueryResponse.FromString)
        res = q(au.AuditQueryRequest(patient=patient_id,
                                     consistency=common.pb.api.Consistency(min_sequence=head)),
                timeout=T(30))
        return dict(zip(res.seqs, (json.loads(x) for x in res.audit_events)))[seq]

    def test_1_create_and_update_ride_in_their_commit(self):
        r, p, rid = self.write("POST", "/Patient", patient(family="Okafor"))
        self.assertEqual(r.status, 201, p)
        pid = p["id"]
        log, (seq, a) = self.one_record(rid)
        self.assert_in_commit(log, seq, a, 1, r)
        self.assertEqual(fields(a), dict(self.expected(rid, "Patient/" + pid, [pid], 1),
                                         client_address=a.client_address,
                                         server_address=a.server_address))

        r, o, rid = self.write("POST", "/Observation", heart_rate(pid, 64))
        self.assertEqual(r.status, 201, o)
        log, (seq, a) = self.one_record(rid)
        self.assert_in_commit(log, seq, a, 1, r)
        self.assertEqual(a.resource, "Observation/" + o["id"])
        self.assertEqual((list(a.patients), a.count, a.outcome), ([pid], 1, "0"))
        # readers see the resource the call names, not the seqs
        ae = self.auditevent(seq, pid)
        refs = [e["what"].get("reference") for e in ae["entity"] if "what" in e]
        self.assertIn("Observation/" + o["id"], refs, ae["entity"])
        self.assertEqual(ae["outcome"], "0")

        # an update (PUT, If-Match): its record in its commit too
        p2 = dict(p)
        p2.pop("meta", None)
        p2["name"] = [{"family": "Okafor-Bello", "given": ["Ada"]}]
        r, u, rid = self.write("PUT", "/Patient/" + pid, p2, {"If-Match": 'W/"1"'})
        self.assertEqual(r.status, 200, u)
        log, (seq, a) = self.one_record(rid)
        self.assert_in_commit(log, seq, a, 1, r)
        self.assertEqual(fields(a), dict(self.expected(rid, "Patient/" + pid, [pid], 1),
                                         client_address=a.client_address,
                                         server_address=a.server_address))

    def test_2_transaction_bundle_rides_in_its_commit(self):
        pu, ou = "urn:uuid:" + str(uuid.uuid4()), "urn:uuid:" + str(uuid.uuid4())
        obs = heart_rate("x", 80)
        obs["subject"] = {"reference": pu}
        tx = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": pu, "resource": patient(family="Haddad"),
             "request": {"method": "POST", "url": "Patient"}},
            {"fullUrl": ou, "resource": obs, "request": {"method": "POST", "url": "Observation"}}]}
        r, b, rid = self.write("POST", "", tx)
        self.assertEqual(r.status, 200, b)
        pid = b["entry"][0]["response"]["location"].split("/Patient/")[1].split("/")[0]
        log, (seq, a) = self.one_record(rid)
        self.assert_in_commit(log, seq, a, 2, r)
        self.assertEqual(fields(a), dict(self.expected(rid, "Bundle:transaction:2", [pid], 2),
                                         client_address=a.client_address,
                                         server_address=a.server_address))

        # with an entry whose ifNoneExist matches (nothing written for it, the
        # answer holds it): the record, in the commit, names its patient too
        ident = "urn:oid:2.16.840.1.113883.19.5|FWT-%s" % uuid.uuid4().hex[:8]
        known = patient(family="Sato")
        known["identifier"] = [{"system": ident.split("|")[0], "value": ident.split("|")[1]}]
        r, k, _ = self.write("POST", "/Patient", known)
        self.assertEqual(r.status, 201, k)
        tx["entry"][0]["resource"] = patient(family="Haddad-Two")
        tx["entry"][1]["resource"] = dict(obs, valueQuantity=dict(obs["valueQuantity"], value=81))
        tx["entry"].append({"resource": known, "request": {"method": "POST", "url": "Patient",
                                                           "ifNoneExist": "identifier=" + ident}})
        r, b, rid = self.write("POST", "", tx)
        self.assertEqual(r.status, 200, b)
        self.assertEqual(b["entry"][2]["response"]["status"], "200 OK", b["entry"][2])
        pid2 = b["entry"][0]["response"]["location"].split("/Patient/")[1].split("/")[0]
        log, (seq, a) = self.one_record(rid)
        self.assert_in_commit(log, seq, a, 2, r)
        self.assertEqual(sorted(a.patients), sorted([pid2, k["id"]]))
        self.assertEqual((a.resource, a.count), ("Bundle:transaction:3", 2))

    def test_3_no_write_refusal_and_batch_are_recorded_after(self):
        ident = "urn:oid:2.16.840.1.113883.19.5|FWA-%s" % uuid.uuid4().hex[:8]
        sysv, val = ident.split("|")
        p = patient(family="Lindqvist")
        p["identifier"] = [{"system": sysv, "value": val}]
        r, made, _ = self.write("POST", "/Patient", p)
        self.assertEqual(r.status, 201, made)
        pid = made["id"]
        # a conditional create that matches: nothing written, one record after
        size0 = self.client.tree_size()
        r, got, rid = self.write("POST", "/Patient", p, {"If-None-Exist": "identifier=" + ident})
        self.assertEqual((r.status, got["id"]), (200, pid), got)
        log, (seq, a) = self.one_record(rid)
        self.assertEqual([s for s in log if s > size0 and log[s][0].stream != "$audit"], [],
                         "nothing written but records")
        self.assertEqual(a.preceding, 0, "written after the call")
        self.assertEqual(fields(a), dict(self.expected(rid, "Patient/" + pid, [pid], 0),
                                         client_address=a.client_address,
                                         server_address=a.server_address))
        # a refused write (no status): nothing written, one record after
        bad = heart_rate(pid, 70)
        del bad["status"]
        size0 = self.client.tree_size()
        r, oo, rid = self.write("POST", "/Observation", bad)
        self.assertIn(r.status, (400, 422), oo)
        self.assertEqual(oo["resourceType"], "OperationOutcome")
        log, (seq, a) = self.one_record(rid)
        self.assertEqual([s for s in log if s > size0 and log[s][0].stream != "$audit"], [],
                         "nothing written but records")
        self.assertEqual((a.preceding, a.count, a.outcome, a.error), (0, 0, "4", "CL_EINVAL"))
        self.assertEqual(a.detail, "refused")
        # a batch: an append per entry, so one record after them all
        batch = {"resourceType": "Bundle", "type": "batch", "entry": [
            {"resource": heart_rate(pid, v), "request": {"method": "POST", "url": "Observation"}}
            for v in (61, 62)]}
        size0 = self.client.tree_size()
        r, b, rid = self.write("POST", "", batch)
        self.assertEqual([e["response"]["status"] for e in b["entry"]], ["201 Created"] * 2, b)
        log, (seq, a) = self.one_record(rid)
        self.assertEqual((a.preceding, a.count, a.outcome), (0, 2, "0"))
        self.assertEqual(a.resource, "Bundle:batch:2")
        self.assertEqual(list(a.patients), [pid])
        self.assertGreater(seq, size0 + 2, "after both entries' events")

    def test_4_views_behind_the_wait_answer_202_consistent_with_the_record(self):
        r, p, _ = self.write("POST", "/Patient", patient(family="Moreau"))
        pid = p["id"]
        seen = {}
        for i in range(30):  # the views fold a write within milliseconds: most miss wait=0
            r, o, rid = self.write("POST", "/Observation", heart_rate(pid, 90 + i),
                                  {"Prefer": "wait=0"})
            self.assertIn(r.status, (201, 202), o)
            log, (seq, a) = self.one_record(rid)
            self.assert_in_commit(log, seq, a, 1, r)
            self.assertEqual((a.outcome, a.error), ("0", ""), "the answer is a success too")
            seen[r.status] = (r, o, a)
            if 202 in seen:
                break
        self.assertIn(202, seen, "no write outran its views in 30 tries")
        r, o, a = seen[202]
        self.assertEqual(o["resourceType"], "OperationOutcome")
        self.assertEqual((o["issue"][0]["severity"], o["issue"][0]["code"]), ("warning", "timeout"))
        sq = r.getheader("X-Clinlog-Sequence")
        self.assertIn(sq, o["issue"][0]["diagnostics"])
        loc = r.getheader("Location")
        self.assertTrue(loc.endswith("/fhir/R4/" + a.resource), (loc, a.resource))
        # the write is there once the views fold it
        r, got = http_call(self.http_port, "GET", "/" + a.resource,
                           headers={"X-Clinlog-Min-Sequence": sq})
        self.assertEqual(r.status, 200, got)
        self.assertGreaterEqual(got["valueQuantity"]["value"], 90)

"""CDS Hooks 2.0 on the HTTP face (docs/cds.md), --auth required: a
patient's warfarin (MedicationPrescribed) and penicillin allergy
(AllergyRecorded) appended over gRPC; discovery (open); order-sign with an
NSAID draft answered from the server's own views and from the request's
prefetch alike: one critical card with a delete suggestion; an unrelated
draft: no card; order-select and patient-view; bad requests named 400s;
no session 401, a role without `cds` 403; feedback overriding the card:
an AlertOverridden in the patient's stream signed by the log key; each
call recorded once in $audit (discovery, open like the
CapabilityStatement, not at all). Discovery, requests, responses and
feedback are checked against CDS Hooks 2.0 JSON Schemas
(tests/fhir/cds-hooks, validated with Ajv: tests/fhir/cds_hooks_validate.mjs)."""
import datetime
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import uuid

import common
from common import T, Server, ServerTestCase, Signer, free_port, new_id
from test_auth import PASSWORDS, bootstrap, registration, totp
from test_fhir import patient_events

NODE_DIR = os.path.join(common.REPO, "tests", "fhir")
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
PEOPLE = {"doc1": ("clinician", "doc pass phrase 5"), "ana1": ("analyst", "analyst pass phrase 8")}


def med_events(pid):
    """Warfarin 3 mg prescribed and a penicillin allergy, in the patient's stream."""
    out = []
    ev = common.pb.event.Event(event_id=new_id(), stream="patient-" + pid,
                               occurred_at=common.timestamp_now(), source_system="INTEROP")
    ev.recorded_by.principal_id = "admin"
    ev.recorded_by.role = "clinician"
    rx = ev.medication_prescribed
    rx.prescription_id = "rx-warf-" + pid
    c = rx.medication.coding.add()
    c.system, c.code, c.display = RXNORM, "855318", "warfarin sodium 3 MG Oral Tablet"
    out.append(ev.SerializeToString())
    ev = common.pb.event.Event(event_id=new_id(), stream="patient-" + pid,
                               occurred_at=common.timestamp_now(), source_system="INTEROP")
    ev.recorded_by.principal_id = "admin"
    ev.recorded_by.role = "clinician"
    al = ev.allergy_recorded
    al.allergy_id = "al-pen-" + pid
    c = al.substance.coding.add()
    c.system, c.code = "urn:clinlog:cds-kb", "penicillin-allergy"
    out.append(ev.SerializeToString())
    return out


def draft(rid, code, display, pid):
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
        "resourceType": "MedicationRequest", "id": rid, "status": "draft", "intent": "order",
        "subject": {"reference": "Patient/" + pid},
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code,
                                                  "display": display}]}}}]}


def request(hook, pid, drafts=None, prefetch=None, selections=None):
    ctx = {"userId": "Practitioner/doc1", "patientId": pid}
    if drafts is not None:
        ctx["draftOrders"] = drafts
    if selections is not None:
        ctx["selections"] = selections
    r = {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": ctx}
    if prefetch is not None:
        r["prefetch"] = prefetch
    return r


class TestCdsHooks(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        data = common.init_data_dir()
        key = os.path.join(data, "keys", "admin.key")
        pw = {p: v[1] for p, v in PEOPLE.items()}
        pw["admin"] = PASSWORDS["admin"]
        cls.secrets = bootstrap(data, [registration(p, v[0]) for p, v in PEOPLE.items()], pw)
        cls.http_port = free_port()
        cls.server = Server(data_dir=data, args=["--auth", "required", "--http-listen",
                                                 "127.0.0.1:%d" % cls.http_port])
        cls.server.start()
        cls.client = common.Client(cls.server.addr)
        cls.admin = Signer.load(key)
        a = common.pb.auth
        login = cls.client.channel.unary_unary("/clinlog.v1.Auth/Login",
                                               a.LoginRequest.SerializeToString,
                                               a.LoginResponse.FromString)
        cls.tokens = {}
        for pid in ("admin", "doc1", "ana1"):
            r = login(a.LoginRequest(principal_id=pid, password=pw[pid],
                                     totp_code=totp(cls.secrets[pid])), timeout=T(30))
            cls.tokens[pid] = r.token
        cls.pid = "CDS" + uuid.uuid4().hex[:6].upper()
        r = cls.client.append(common.batch(patient_events(cls.pid) + med_events(cls.pid),
                                           cls.admin),
                              metadata=[("authorization", "Bearer " + cls.tokens["admin"])])
        cls.seq = r.tree_size
        cls.calls = {}  # request id -> (method, outcome, principal)

    def call(self, method, path, who, body=None, rid=None, expect=None, ctype="application/json",
             headers=None):
        rid = rid or "cds-" + uuid.uuid4().hex
        c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=T(30))
        h = {"X-Request-Id": rid}
        if who:
            h["Authorization"] = "Bearer " + self.tokens[who]
        if body is not None:
            h["Content-Type"] = ctype
            body = body if isinstance(body, (str, bytes)) else json.dumps(body)
        h.update(headers or {})
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        if expect:
            self.calls[rid] = expect
        return r, data

    def validate(self, kind, *docs):
        node = shutil.which("node")
        self.assertIsNotNone(node, "node is required (install-deps installs it)")
        names = []
        try:
            for d in docs:
                with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as tf:
                    json.dump(d, tf)
                    names.append(tf.name)
            v = subprocess.run([node, os.path.join(NODE_DIR, "cds_hooks_validate.mjs"), kind]
                               + names, capture_output=True, text=True, timeout=T(120))
        finally:
            for n in names:
                os.unlink(n)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)

    def wait_projected(self):
        r, body = self.call("GET", "/fhir/R4/MedicationRequest?patient=" + self.pid, "doc1",
                            headers={"X-Clinlog-Min-Sequence": str(self.seq)},
                            expect=("clinlog.v1.Fhir/Search", "0", "doc1"))
        self.assertEqual(r.status, 200, body)
        return json.loads(body)

    def hook(self, service, req, who="doc1", outcome="0"):
        r, body = self.call("POST", "/cds-services/" + service, who, req,
                            expect=("clinlog.v1.Cds/Hook", outcome, who or ""))
        return r, body

    def assert_nsaid_card(self, resp, draft_id):
        cards = resp["cards"]
        self.assertEqual(len(cards), 1, resp)
        c = cards[0]
        self.assertEqual(c["indicator"], "critical")
        self.assertLess(len(c["summary"]), 140)
        self.assertTrue(c["source"]["label"].startswith("clinlog knowledge base "))
        self.assertEqual(c["source"]["topic"]["code"], "warfarin-nsaids")
        self.assertEqual(c["selectionBehavior"], "at-most-one")
        act = c["suggestions"][0]["actions"][0]
        self.assertEqual((act["type"], act["resourceId"]),
                         ("delete", "MedicationRequest/" + draft_id))
        self.assertTrue(c["overrideReasons"])
        return c

    def test_0_a_bad_knowledge_base_refuses_to_start(self):
        path = os.path.join(common.TMP, "bad.kb")
        with open(path, "w") as f:
            f.write("clinlog-kb 1\nversion t\ningredient 5640 ibuprofen\ningredient x bad\n")
        r = subprocess.run([common.CLINLOGD, "--data", self.server.data, "--dev", "--listen",
                            "127.0.0.1:%d" % free_port(), "--cds-kb", path],
                           capture_output=True, text=True, timeout=T(30))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("cds kb: ", r.stderr)
        self.assertIn("bad.kb: line 4", r.stderr)

    def test_1_hooks_feedback_and_the_trail(self):
        # discovery: open, JSON, valid
        r, body = self.call("GET", "/cds-services", None)
        self.assertEqual(r.status, 200, body)
        self.assertIn("application/json", r.getheader("Content-Type"))
        disc = json.loads(body)
        self.validate("discovery", disc)
        ids = {s["id"]: s["hook"] for s in disc["services"]}
        self.assertEqual(ids, {"clinlog-medication-select": "order-select",
                               "clinlog-medication-sign": "order-sign",
                               "clinlog-medication-review": "patient-view"})
        self.assertIn("medications", disc["services"][0]["prefetch"])

        meds = self.wait_projected()
        self.assertEqual(len(meds.get("entry", [])), 1, meds)

        # order-sign, the server reading its own views
        req = request("order-sign", self.pid, draft("d-ibu", "5640", "ibuprofen 400 MG", self.pid))
        r, body = self.hook("clinlog-medication-sign", req)
        self.assertEqual(r.status, 200, body)
        resp = json.loads(body)
        card = self.assert_nsaid_card(resp, "d-ibu")
        # the same answer from prefetch (the EHR's copy of the same views)
        r2, body2 = self.call("GET", "/fhir/R4/AllergyIntolerance?patient=" + self.pid, "doc1",
                              expect=("clinlog.v1.Fhir/Search", "0", "doc1"))
        self.assertEqual(r2.status, 200)
        req_pre = request("order-sign", self.pid,
                          draft("d-ibu", "5640", "ibuprofen 400 MG", self.pid),
                          prefetch={"medications": meds, "allergies": json.loads(body2)})
        r, body = self.hook("clinlog-medication-sign", req_pre)
        self.assertEqual(r.status, 200, body)
        resp_pre = json.loads(body)
        self.assert_nsaid_card(resp_pre, "d-ibu")
        # an unrelated draft: no card; an amoxicillin draft: the allergy
        r, body = self.hook("clinlog-medication-sign",
                            request("order-sign", self.pid,
                                    draft("d-met", "6809", "metformin", self.pid)))
        self.assertEqual((r.status, json.loads(body)), (200, {"cards": []}))
        req_sel = request("order-select", self.pid, draft("d-amox", "723", "amoxicillin",
                                                          self.pid),
                          selections=["MedicationRequest/d-amox"])
        r, body = self.hook("clinlog-medication-select", req_sel)
        self.assertEqual(r.status, 200, body)
        resp_sel = json.loads(body)
        self.assertEqual([c["indicator"] for c in resp_sel["cards"]], ["critical"], resp_sel)
        self.assertIn("Allergy", resp_sel["cards"][0]["summary"])
        req_view = request("patient-view", self.pid)
        r, body = self.hook("clinlog-medication-review", req_view)
        self.assertEqual((r.status, json.loads(body)), (200, {"cards": []}))
        self.validate("request", req, req_pre, req_sel, req_view)
        self.validate("response", resp, resp_pre, resp_sel)

        # refusals: bad JSON, no patient, a hook the service does not answer,
        # no such service, no session, a role without cds
        r, body = self.hook("clinlog-medication-sign", "{not json", outcome="4")
        self.assertEqual(r.status, 400)
        self.assertIn("not JSON", body.decode())
        bad = request("order-sign", self.pid, draft("d", "5640", "x", self.pid))
        del bad["context"]["patientId"]
        r, body = self.hook("clinlog-medication-sign", bad, outcome="4")
        self.assertEqual(r.status, 400)
        self.assertIn("context.patientId", body.decode())
        r, body = self.hook("clinlog-medication-sign", request("patient-view", self.pid),
                            outcome="4")
        self.assertEqual(r.status, 400)
        self.assertIn("hook", body.decode())
        r, body = self.hook("nope", request("patient-view", self.pid), outcome="4")
        self.assertEqual(r.status, 404)
        r, body = self.hook("clinlog-medication-sign", req, who=None, outcome="4")
        self.assertEqual(r.status, 401, body)
        r, body = self.hook("clinlog-medication-sign", req, who="ana1", outcome="4")
        self.assertEqual(r.status, 403, body)

        # feedback: the clinician overrides the interaction card
        fb = {"feedback": [{"card": card["uuid"], "outcome": "overridden",
                            "overrideReason": {"reason": card["overrideReasons"][0],
                                               "userComment": "INR checked today"},
                            "outcomeTimestamp": datetime.datetime.now(datetime.timezone.utc)
                            .strftime("%Y-%m-%dT%H:%M:%SZ")}]}
        self.validate("feedback", fb)
        r, body = self.call("POST", "/cds-services/clinlog-medication-sign/feedback", "doc1", fb,
                            expect=("clinlog.v1.Cds/Feedback", "0", "doc1"))
        self.assertEqual(r.status, 200, body)
        unknown = json.loads(json.dumps(fb))
        unknown["feedback"][0]["card"] = str(uuid.uuid4())
        r, body = self.call("POST", "/cds-services/clinlog-medication-sign/feedback", "doc1",
                            unknown, expect=("clinlog.v1.Cds/Feedback", "4", "doc1"))
        self.assertEqual(r.status, 400, body)
        self.assertIn("feedback[0].card", body.decode())

        # the AlertOverridden, in the patient's stream, by the node for the clinician
        md = [("authorization", "Bearer " + self.tokens["admin"])]
        found = []
        for re in self.client._read(common.pb.api.ReadRequest(stream="patient-" + self.pid),
                                    metadata=md, timeout=T(30)):
            ev = common.pb.event.Event.FromString(re.event)
            if ev.WhichOneof("body") == "alert_overridden":
                found.append(ev)
        self.assertEqual(len(found), 1)
        ao = found[0].alert_overridden
        self.assertEqual(ao.issue_id, card["extension"]["clinlog-issue-id"])
        self.assertEqual(ao.overridden_by.principal_id, "doc1")
        self.assertEqual(ao.reason.coding[0].code, card["overrideReasons"][0]["code"])
        self.assertEqual(ao.reason.text, "INR checked today")
        self.assertEqual(found[0].recorded_by.principal_id, "$log")

        # the trail: each call once, with the patient; discovery not at all
        trail = {}
        for re in self.client._read(common.pb.api.ReadRequest(stream="$audit"), metadata=md,
                                    timeout=T(60)):
            a = common.pb.event.Event.FromString(re.event).access_recorded
            trail.setdefault(a.request_id, []).append(a)
        for rid, (method, outcome, who) in self.calls.items():
            recs = trail.get(rid, [])
            self.assertEqual(len(recs), 1, "%s (%s): %d records" % (rid, method, len(recs)))
            a = recs[0]
            self.assertEqual((a.method, a.outcome, a.principal_id), (method, outcome, who), rid)
            if method.startswith("clinlog.v1.Cds/") and outcome == "0":
                self.assertEqual(list(a.patients), [self.pid], rid)
        self.assertFalse([a for v in trail.values() for a in v
                          if a.method == "clinlog.v1.Cds/Discovery"])

"""NEWS2 on the log, and the decision-support proof of issue 11, end to end
(docs/cds.md, "NEWS2 on the log").

- clinlogd with a test knowledge base holding a `news2` line: charted vitals
  (ObservationRecorded) over Log.Append, a full normal set then respiration
  25 and pulse 111 and oxygen, give exactly one EARLY_WARNING IssueDetected
  per band reached (low-medium, medium, high), no flooding on repeats, and
  each complete score stored once as an Observation when it changes (SNOMED CT
  NEWS2 total, seven sub-score components) over the
  FHIR REST API;
- a RiskScoreRecorded appended by a registered system principal (role
  integration) over its threshold gives a FHIR RiskAssessment and one
  RISK_SCORE finding; a second one over the threshold no second finding;
  the same event from a nurse is refused with PERMISSION_DENIED;
- clinlogd with the seed knowledge base: one patient's penicillin allergy,
  warfarin, then an NSAID, then a barcode scan of the warfarin with another
  patient's wristband give exactly two alerts, warfarin-nsaids and
  bcma:patient, on the Cds.Alerts stream and as DetectedIssue resources,
  nothing else."""
import http.client
import json
import time
import uuid

import grpc

import common
import test_cds_bcma
from common import T, Server, ServerTestCase, Signer
from test_auth import bootstrap, login_all, registration

LOINC = "http://loinc.org"
IBUPROFEN = "5640"

KB = """clinlog-kb 1
version test-news2-1
source rcp Royal College of Physicians, NEWS2, 2017
news2 3600 high source=rcp
"""


def event(pid, when=None, role="nurse"):
    ev = test_cds_bcma.event(pid, when)
    ev.recorded_by.role = role
    return ev


def vital(pid, code, value, unit=None):
    ev = event(pid)
    o = ev.observation_recorded
    o.observation_id = "obs-" + uuid.uuid4().hex[:8]
    o.code.coding.add(system=LOINC, code=code)
    o.category.add(system="http://terminology.hl7.org/CodeSystem/observation-category",
                   code="vital-signs")
    if unit is None:
        o.code_value.system, o.code_value.code = "urn:clinlog:acvpu", value
    else:
        o.quantity.value, o.quantity.unit = str(value), unit
    o.status = o.DESCRIPTOR.fields_by_name["status"].enum_type.values_by_name[
        "OBSERVATION_STATUS_FINAL"].number
    o.effective.CopyFrom(ev.occurred_at)
    return ev.SerializeToString()


NORMAL = [("9279-1", 16, "/min"), ("59408-5", 97, "%"), ("3151-8", 0, "L/min"),
          ("8480-6", 120, "mm[Hg]"), ("8867-4", 70, "/min"), ("67775-7", "A", None),
          ("8310-5", "37.0", "Cel")]


def kinds_and_rules(found):
    return sorted((e.issue_detected.kind, e.issue_detected.rule_id) for e in found)


class TestCdsNews2(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        common.start_cds_server(cls, KB)

    def test_bands_once_each_and_the_observation(self):
        pid = "EWS" + uuid.uuid4().hex[:8].upper()
        for code, v, unit in NORMAL:
            self.append_events([vital(pid, code, v, unit)])
        self.append_events([vital(pid, "9279-1", 25, "/min")])   # a single 3
        found = common.stream_issues(self.client, pid, want=1)
        self.assertEqual([e.issue_detected.rule_id for e in found], ["news2:low-medium"])
        idt = found[0].issue_detected
        self.assertEqual(idt.kind, common.pb.domain.ISSUE_KIND_EARLY_WARNING)
        self.assertEqual(idt.severity, common.pb.domain.ISSUE_SEVERITY_LOW)
        self.assertTrue(idt.detail.startswith("NEWS2 3: low-medium clinical risk (a single 3), "
                                              "urgent ward-based response"), idt.detail)
        self.append_events([vital(pid, "9279-1", 26, "/min")])   # the same band: nothing
        self.append_events([vital(pid, "8867-4", 111, "/min")])  # 5: medium
        self.append_events([vital(pid, "3151-8", 2, "L/min")])   # 7: high
        found = common.stream_issues(self.client, pid, want=3)
        time.sleep(T(1))
        found = common.stream_issues(self.client, pid)
        self.assertEqual(sorted(e.issue_detected.rule_id for e in found),
                         ["news2:high", "news2:low-medium", "news2:medium"])
        high = [e for e in found if e.issue_detected.rule_id == "news2:high"][0].issue_detected
        self.assertEqual(high.severity, common.pb.domain.ISSUE_SEVERITY_HIGH)
        self.assertIn("urgent or emergency response", high.detail)

        # the complete scores stored as Observations when they changed: the
        # normal set's 0 (the partial sets before it are not a NEWS2), 3, 5
        # and 7 (respiration 26 scored 3 again: not stored), with components
        deadline = time.monotonic() + T(20)
        while True:
            st, b = common.fhir_get(self.http_port, "/Observation?patient=" + pid)
            scores = [e["resource"] for e in (b or {}).get("entry", [])
                      if e["resource"]["code"]["coding"][0]["code"] == "1104051000000101"]
            if st == 200 and len(scores) >= 4:
                break
            self.assertLess(time.monotonic(), deadline, "no NEWS2 Observation: %s %s" % (st, b))
            time.sleep(0.1)

        def value(x):
            self.assertEqual(x["valueQuantity"]["code"], "{score}")
            return x["valueQuantity"]["value"]
        time.sleep(T(0.5))  # nothing more arrives
        st, b = common.fhir_get(self.http_port, "/Observation?patient=%s&code=%s" % (
            pid, "http://snomed.info/sct|1104051000000101"))
        self.assertEqual(st, 200)
        scores = [e["resource"] for e in b.get("entry", [])]
        self.assertEqual(sorted(value(o) for o in scores), [0, 3, 5, 7])
        seven = [o for o in scores if value(o) == 7][0]
        self.assertEqual(seven["status"], "final")
        self.assertEqual(seven["subject"]["reference"], "Patient/" + pid)
        self.assertEqual(seven["category"][0]["coding"][0]["code"], "survey")
        self.assertEqual([value(c) for c in seven["component"]], [3, 0, 2, 0, 2, 0, 0])
        self.assertIn("NEWS2 7: high clinical risk", seven["note"][0]["text"])
        self.assertIn("pulse 111 /min: 2", seven["note"][0]["text"])
        st, b = common.fhir_get(self.http_port, "/DetectedIssue?patient=" + pid)
        self.assertEqual(st, 200)
        self.assertEqual(len(b.get("entry", [])), 3)


def allergy(pid):
    ev = event(pid, role="clinician")
    al = ev.allergy_recorded
    al.allergy_id = "al-pen-" + pid
    al.substance.coding.add(system="urn:clinlog:cds-kb", code="penicillin-allergy")
    return ev.SerializeToString()


class TestCdsEndToEnd(ServerTestCase):
    """Issue 11's proof for one patient, over the seed knowledge base."""

    @classmethod
    def setUpClass(cls):
        common.start_cds_server(cls)
        ch = cls.client.channel
        cls._alerts = ch.unary_stream("/clinlog.v1.Cds/Alerts",
                                      common.pb.cds.AlertsRequest.SerializeToString,
                                      common.pb.cds.Alert.FromString)

    def alerts(self, pid, timeout=5):
        call = self._alerts(common.pb.cds.AlertsRequest(patient_ids=[pid]), timeout=T(timeout))
        got = []
        try:
            for a in call:
                got.append(a)
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise
        return got

    def test_allergy_warfarin_nsaid_wrong_patient_scan(self):
        pid = "E2E" + uuid.uuid4().hex[:8].upper()
        self.append_events([allergy(pid)])
        self.append_events([test_cds_bcma.order(pid)])  # warfarin 3 mg PO, rx-w, an hour ago
        self.append_events([common.rx_event(pid, "rx-i", IBUPROFEN)])
        self.append_events([test_cds_bcma.scan(pid, wristband="SOMEONE-ELSE")])
        found = common.stream_issues(self.client, pid, want=2)
        time.sleep(T(1))  # nothing more comes
        found = common.stream_issues(self.client, pid)
        self.assertEqual(sorted(e.issue_detected.rule_id for e in found),
                         ["bcma:patient", "warfarin-nsaids"])
        got = self.alerts(pid)
        self.assertEqual(sorted(a.issue.rule_id for a in got), ["bcma:patient", "warfarin-nsaids"])
        self.assertEqual({a.patient_id for a in got}, {pid})
        deadline = time.monotonic() + T(20)
        while True:
            st, b = common.fhir_get(self.http_port, "/DetectedIssue?patient=" + pid)
            if st == 200 and len(b.get("entry", [])) >= 2:
                break
            self.assertLess(time.monotonic(), deadline, "no DetectedIssue: %s %s" % (st, b))
            time.sleep(0.1)
        time.sleep(T(0.5))
        st, b = common.fhir_get(self.http_port, "/DetectedIssue?patient=" + pid)
        rules = sorted(x["valueString"] for e in b["entry"]
                       for ext in e["resource"].get("extension", [])
                       for x in ext.get("extension", []) if x["url"] == "id")
        self.assertEqual(rules, ["bcma:patient", "warfarin-nsaids"])


def risk(pid, score, threshold="0.6"):
    ev = event(pid, role="integration")
    r = ev.risk_score_recorded
    r.assessment_id = "ra-" + uuid.uuid4().hex[:8]
    r.model_id, r.model_version = "sepsis-risk", "2.1.0"
    r.score, r.threshold = score, threshold
    r.explanation = "Rising lactate and respiratory rate."
    r.outcome.text = "Sepsis within 12 hours"
    r.outcome.coding.add(system="http://snomed.info/sct", code="91302008", display="Sepsis")
    r.assessed_at.CopyFrom(ev.occurred_at)
    return ev.SerializeToString()


class TestCdsRiskScore(ServerTestCase):
    """Risk scores from outside models: only a system principal writes them."""

    @classmethod
    def setUpClass(cls):
        data = common.init_data_dir()
        pw = {"model1": "model pass phrase 7", "nurse1": "nurse pass phrase 8",
              "admin": "admin pass phrase 9"}
        secrets = bootstrap(data, [registration("model1", "integration", kind="system"),
                                   registration("nurse1", "nurse")], pw)
        cls.http_port = common.free_port()
        cls.server = Server(data_dir=data, args=["--auth", "required", "--http-listen",
                                                 "127.0.0.1:%d" % cls.http_port])
        cls.server.start()
        cls.client = common.Client(cls.server.addr)
        cls.admin = Signer.load(data + "/keys/admin.key")
        cls.tokens = login_all(cls.client, pw, secrets, ("model1", "nurse1", "admin"))

    def bearer(self, who):
        return [("authorization", "Bearer " + self.tokens[who])]

    def test_integration_writes_a_nurse_may_not(self):
        pid = "RSK" + uuid.uuid4().hex[:8].upper()
        self.client.append(common.batch([risk(pid, "0.82")], self.admin),
                           metadata=self.bearer("model1"))
        self.client.append(common.batch([risk(pid, "0.90")], self.admin),
                           metadata=self.bearer("model1"))
        e = self.assertRpcError(grpc.StatusCode.PERMISSION_DENIED, self.client.append,
                                common.batch([risk(pid, "0.95")], self.admin),
                                metadata=self.bearer("nurse1"))
        self.assertIn("(RiskScoreRecorded)", e.details())
        deadline = time.monotonic() + T(20)
        while True:
            found = [common.pb.event.Event.FromString(r.event) for r in self.client._read(
                common.pb.api.ReadRequest(stream="patient-" + pid),
                metadata=self.bearer("admin"), timeout=T(15))]
            issues = [x for x in found if x.WhichOneof("body") == "issue_detected"]
            if issues or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        time.sleep(T(1))
        found = [common.pb.event.Event.FromString(r.event) for r in self.client._read(
            common.pb.api.ReadRequest(stream="patient-" + pid), metadata=self.bearer("admin"),
            timeout=T(15))]
        issues = [x.issue_detected for x in found if x.WhichOneof("body") == "issue_detected"]
        self.assertEqual([i.rule_id for i in issues], ["risk:sepsis-risk"], "one, no flooding")
        self.assertEqual(issues[0].kind, common.pb.domain.ISSUE_KIND_RISK_SCORE)
        self.assertEqual(len([x for x in found if x.WhichOneof("body") == "risk_score_recorded"]),
                         2, "the nurse's was not written")
        deadline = time.monotonic() + T(20)
        while True:
            c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=T(15))
            c.request("GET", "/fhir/R4/RiskAssessment?patient=" + pid,
                      headers={"Authorization": "Bearer " + self.tokens["admin"]})
            resp = c.getresponse()
            body = json.loads(resp.read())
            c.close()
            self.assertEqual(resp.status, 200, body)
            ras = [e["resource"] for e in body.get("entry", [])]
            if len(ras) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(len(ras), 2)
        self.assertEqual(sorted(r["prediction"][0]["probabilityDecimal"] for r in ras), [0.82, 0.9])
        self.assertEqual(ras[0]["status"], "final")
        self.assertEqual(ras[0]["method"]["coding"][0]["code"], "sepsis-risk")

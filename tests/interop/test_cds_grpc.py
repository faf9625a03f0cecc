"""clinlog.v1.Cds over gRPC (docs/cds.md, "The gRPC face"), --auth required:

- CheckOrder: a draft ibuprofen against a patient's active warfarin (from
  the cds projection) gives one HIGH warfarin-nsaids finding naming the
  warfarin order's event; an unrelated draft (lisinopril) none; two drafts
  checked against each other; bad input (no patient, unknown unit, no
  orders) INVALID_ARGUMENT naming the field, and nothing written to the
  patient's stream; a registrar (no `cds`) PERMISSION_DENIED;
- Alerts: from after_seq 0 the existing IssueDetected findings (catch-up),
  then a new one live within T(20); filters by patient, minimum severity
  and kind; resuming from an alert's seq gives the rest, no duplicate, no
  gap; a registrar (no read of DetectedIssue) PERMISSION_DENIED; the read
  recorded in $audit naming the patient; the stream ends with UNAVAILABLE
  when the server stops;
- Acknowledge and Override: an AlertAcknowledged / AlertOverridden in the
  patient's stream, signed by the log key ($log) for the clinician, with
  the reason; the same call again appends nothing (same event id and seq);
  an unknown alert NOT_FOUND, an override without reason INVALID_ARGUMENT,
  a registrar PERMISSION_DENIED; each recorded with the patient."""
import os
import threading
import time
import uuid

import grpc

import common
from common import T, Server, ServerTestCase, Signer, rx_event
from test_auth import login_all, people_data

PEOPLE = {"doc1": ("clinician", "doc pass phrase 5"), "reg1": ("registrar", "reg pass phrase 6")}
WARFARIN, IBUPROFEN, NAPROXEN, LISINOPRIL = "11289", "5640", "7258", "29046"


def enum(msg, field, name):
    return msg.DESCRIPTOR.fields_by_name[field].enum_type.values_by_name[name].number


class TestCdsGrpc(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        data, pw, secrets = people_data(PEOPLE)
        cls.server = Server(data_dir=data, args=["--auth", "required"])
        cls.server.start()
        cls.client = common.Client(cls.server.addr)
        cls.admin = Signer.load(os.path.join(data, "keys", "admin.key"))
        cls.tokens = login_all(cls.client, pw, secrets, ("admin", "doc1", "reg1"))
        cls.stubs()
        # patient W takes warfarin; patients B and C warfarin then ibuprofen
        # (one HIGH interaction each); patient E ibuprofen and naproxen (a
        # MODERATE duplicate therapy)
        u = uuid.uuid4().hex[:6].upper()
        cls.W, cls.B, cls.C, cls.E = ("W" + u, "B" + u, "C" + u, "E" + u)
        cls.w_event = rx_event(cls.W, "rx-w", WARFARIN)
        cls.seq = cls.append(cls.w_event)
        for pid in (cls.B, cls.C):
            cls.append(rx_event(pid, "rx-w", WARFARIN))
            cls.append(rx_event(pid, "rx-i", IBUPROFEN))
        cls.append(rx_event(cls.E, "rx-i", IBUPROFEN))
        cls.seq = cls.append(rx_event(cls.E, "rx-n", NAPROXEN))

    @classmethod
    def stubs(cls):
        c = common.pb.cds
        ch = cls.client.channel
        S = "/clinlog.v1.Cds/"
        cls._check = ch.unary_unary(S + "CheckOrder", c.CheckOrderRequest.SerializeToString,
                                    c.CheckOrderResponse.FromString)
        cls._alerts = ch.unary_stream(S + "Alerts", c.AlertsRequest.SerializeToString,
                                      c.Alert.FromString)
        cls._ack = ch.unary_unary(S + "Acknowledge", c.AcknowledgeAlertRequest.SerializeToString,
                                  c.AlertActionResponse.FromString)
        cls._override = ch.unary_unary(S + "Override", c.OverrideAlertRequest.SerializeToString,
                                       c.AlertActionResponse.FromString)

    @classmethod
    def md(cls, who, rid=None):
        m = [("authorization", "Bearer " + cls.tokens[who])]
        if rid:
            m.append(("x-request-id", rid))
        return m

    @classmethod
    def append(cls, ev):
        return cls.client.append(common.batch([ev], cls.admin), metadata=cls.md("admin")).tree_size

    def stream_events(self, pid):
        return [common.pb.event.Event.FromString(re.event) for re in self.client._read(
            common.pb.api.ReadRequest(stream="patient-" + pid), metadata=self.md("admin"),
            timeout=T(30))]

    def check(self, pid, drafts, who="doc1", others=(), rid=None):
        c = common.pb.cds
        req = c.CheckOrderRequest(patient_id=pid)
        req.consistency.min_sequence = self.seq
        for target, items in ((req.orders, drafts), (req.other_drafts, others)):
            for d in items:
                o = target.add()
                o.order_id = d.get("id", "")
                if "code" in d:
                    o.drug.system = d.get("system", "http://www.nlm.nih.gov/research/umls/rxnorm")
                    o.drug.code = d["code"]
                o.dose_value = d.get("dose", "")
                o.dose_unit = d.get("unit", "")
        return self._check(req, metadata=self.md(who, rid), timeout=T(30))

    def alerts(self, want, who="doc1", rid=None, timeout=20, **kw):
        """Alerts from the stream until `want` returns true of the list so
        far (then the call is cancelled), or until T(timeout) passes."""
        call = self._alerts(common.pb.cds.AlertsRequest(**kw), metadata=self.md(who, rid),
                            timeout=T(timeout))
        got = []
        try:
            for a in call:
                got.append(a)
                if want(got):
                    call.cancel()
                    break
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise
        return got

    def wait_alerts(self, pids, n_each=1):
        """Waits until the emitter has appended the patients' IssueDetected."""
        deadline = time.monotonic() + T(30)
        for pid in pids:
            while sum(1 for e in self.stream_events(pid)
                      if e.WhichOneof("body") == "issue_detected") < n_each:
                self.assertLess(time.monotonic(), deadline, "no IssueDetected for " + pid)
                time.sleep(0.1)

    def audit_records(self, rid):
        deadline = time.monotonic() + T(20)
        while True:
            recs = []
            for re in self.client._read(common.pb.api.ReadRequest(stream="$audit"),
                                        metadata=self.md("admin"), timeout=T(60)):
                a = common.pb.event.Event.FromString(re.event).access_recorded
                if a.request_id == rid:
                    recs.append(a)
            if recs or time.monotonic() > deadline:
                return recs
            time.sleep(0.1)

    # ------------------------------------------------------------ CheckOrder

    def test_check_order(self):
        high = enum(common.pb.domain.IssueDetected, "severity", "ISSUE_SEVERITY_HIGH")
        r = self.check(self.W, [{"id": "d-ibu", "code": IBUPROFEN, "dose": "400", "unit": "mg"}])
        self.assertEqual(len(r.findings), 1, r)
        f = r.findings[0]
        self.assertEqual((f.rule_id, f.severity, f.code.code), ("warfarin-nsaids", high, "DRG"))
        self.assertEqual(f.order_id, "d-ibu")
        self.assertTrue(f.summary.startswith("Interaction: ibuprofen"), f.summary)
        self.assertTrue(f.detail and f.mitigation and f.source and f.kb_version)
        self.assertEqual(f.implicated[0].order_id, "d-ibu")
        self.assertEqual(f.implicated[0].drug.code, IBUPROFEN)
        self.assertEqual(f.implicated[1].event_id, common.event_id_of(self.w_event))
        self.assertEqual(f.implicated[1].stream, "patient-" + self.W)
        self.assertGreaterEqual(r.as_of_seq, self.seq)
        # an unrelated drug: nothing
        self.assertEqual(len(self.check(self.W, [{"code": LISINOPRIL}]).findings), 0)
        # drafts against each other, for a patient with nothing on record
        fresh = "N" + uuid.uuid4().hex[:6].upper()
        r = self.check(fresh, [{"id": "a", "code": WARFARIN}, {"id": "b", "code": IBUPROFEN}])
        self.assertEqual([(f.rule_id, f.order_id, f.implicated[1].order_id) for f in r.findings],
                         [("warfarin-nsaids", "b", "a")])
        # an other draft is context: its own findings are not reported
        r = self.check(fresh, [{"id": "b", "code": IBUPROFEN}], others=[{"id": "a",
                                                                        "code": WARFARIN}])
        self.assertEqual([f.order_id for f in r.findings], ["b"])

    def test_check_order_refusals(self):
        before = len(self.stream_events(self.W))
        e = self.assertRpcError(grpc.StatusCode.INVALID_ARGUMENT, self.check, "",
                                [{"code": IBUPROFEN}])
        self.assertIn("patient_id", e.details())
        e = self.assertRpcError(grpc.StatusCode.INVALID_ARGUMENT, self.check, self.W,
                                [{"code": IBUPROFEN, "dose": "2", "unit": "cups"}])
        self.assertIn("orders[0].dose_unit", e.details())
        e = self.assertRpcError(grpc.StatusCode.INVALID_ARGUMENT, self.check, self.W, [])
        self.assertIn("orders", e.details())
        e = self.assertRpcError(grpc.StatusCode.INVALID_ARGUMENT, self.check, self.W,
                                [{"dose": "1", "unit": "mg"}])
        self.assertIn("orders[0].drug.code", e.details())
        # a role without cds
        e = self.assertRpcError(grpc.StatusCode.PERMISSION_DENIED, self.check, self.W,
                                [{"code": IBUPROFEN}], who="reg1")
        # nothing was written to the patient's stream by any check
        self.check(self.W, [{"code": IBUPROFEN}])
        self.assertEqual(len(self.stream_events(self.W)), before)

    # ---------------------------------------------------------------- Alerts

    def test_alerts(self):
        self.wait_alerts([self.B, self.C, self.E])
        mine = {"patient-" + p for p in (self.B, self.C, self.E)}
        # catch-up from the start: every patient's, in log order
        rid = "alerts-" + uuid.uuid4().hex
        got = self.alerts(lambda g: mine <= {a.stream for a in g}, rid=rid)
        streams = [a.stream for a in got]
        self.assertTrue(mine <= set(streams), streams)
        seqs = [a.seq for a in got]
        self.assertEqual(seqs, sorted(seqs))
        self.assertEqual(len(set(a.event_id for a in got)), len(got), "no duplicate")
        b = [a for a in got if a.stream == "patient-" + self.B][0]
        self.assertEqual(b.patient_id, self.B)
        self.assertEqual(b.issue.rule_id, "warfarin-nsaids")
        self.assertEqual(b.issue.issue_id, b.event_id.hex())
        self.assertEqual(len(b.implicated_event_ids), 2)

        # filters: one patient; at least HIGH (not E's MODERATE); a kind
        only_b = self.alerts(lambda g: False, timeout=3, patient_ids=[self.B])
        self.assertEqual({a.patient_id for a in only_b}, {self.B})
        high = enum(common.pb.domain.IssueDetected, "severity", "ISSUE_SEVERITY_HIGH")
        hi = self.alerts(lambda g: False, timeout=3, min_severity=high,
                         patient_ids=[self.B, self.C, self.E])
        self.assertEqual({a.patient_id for a in hi}, {self.B, self.C})
        dup = enum(common.pb.domain.IssueDetected, "kind", "ISSUE_KIND_DUPLICATE_THERAPY")
        k = self.alerts(lambda g: False, timeout=3, kinds=[dup],
                        patient_ids=[self.B, self.C, self.E])
        self.assertEqual([(a.patient_id, a.issue.rule_id) for a in k], [(self.E, "dup:nsaids")])
        allergy = enum(common.pb.domain.IssueDetected, "kind", "ISSUE_KIND_ALLERGY")
        self.assertEqual(self.alerts(lambda g: False, timeout=2, kinds=[allergy],
                                     patient_ids=[self.B, self.C, self.E]), [])

        # resume after each alert: the rest, no duplicate, no gap
        for i, a in enumerate(got[:3]):
            rest = self.alerts(lambda g, n=len(got) - i - 1: len(g) >= n, timeout=5,
                               after_seq=a.seq)
            self.assertEqual([x.seq for x in rest], seqs[i + 1:])

        # live: a new finding arrives within the time bound
        live_pid = "L" + uuid.uuid4().hex[:6].upper()
        box = {}

        def listen():
            box["got"] = self.alerts(lambda g: True, timeout=25, after_seq=got[-1].seq,
                                     patient_ids=[live_pid])
        t = threading.Thread(target=listen)
        t.start()
        time.sleep(0.5)
        self.append(rx_event(live_pid, "rx-w", WARFARIN))
        t0 = time.monotonic()
        self.append(rx_event(live_pid, "rx-n", NAPROXEN))
        t.join(T(30))
        self.assertEqual([a.issue.rule_id for a in box.get("got", [])], ["warfarin-nsaids"])
        self.assertLess(time.monotonic() - t0, T(20))

        # the read is recorded, naming the patient it asked about
        rid2 = "alerts-" + uuid.uuid4().hex
        self.alerts(lambda g: True, rid=rid2, timeout=5, patient_ids=[self.B])
        recs = self.audit_records(rid2)
        self.assertEqual(len(recs), 1)
        self.assertEqual((recs[0].method, recs[0].principal_id, list(recs[0].patients)),
                         ("clinlog.v1.Cds/Alerts", "doc1", [self.B]))
        self.assertEqual(len(self.audit_records(rid)), 1)
        # a registrar may not read DetectedIssue
        call = self._alerts(common.pb.cds.AlertsRequest(), metadata=self.md("reg1"),
                            timeout=T(10))
        with self.assertRaises(grpc.RpcError) as cm:
            next(iter(call))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.PERMISSION_DENIED)

    # --------------------------------------------------- Acknowledge, Override

    def test_acknowledge_and_override(self):
        self.wait_alerts([self.C])
        alert = self.alerts(lambda g: True, patient_ids=[self.C])[0]
        c = common.pb.cds
        rid = "ack-" + uuid.uuid4().hex
        req = c.AcknowledgeAlertRequest(alert_id=alert.issue.issue_id)
        req.reason.text = "seen, will monitor INR"
        r1 = self._ack(req, metadata=self.md("doc1", rid), timeout=T(30))
        self.assertFalse(r1.duplicate)
        self.assertGreater(r1.seq, 0)
        self.assertEqual(r1.patient_id, self.C)
        r2 = self._ack(req, metadata=self.md("doc1"), timeout=T(30))
        self.assertTrue(r2.duplicate)
        self.assertEqual((r2.seq, r2.event_id), (r1.seq, r1.event_id))
        o = c.OverrideAlertRequest(alert_id=alert.issue.issue_id)
        code = o.reason.coding.add()
        code.system, code.code = "urn:clinlog:cds-override-reason", "benefit-outweighs-risk"
        o.reason.text = "short course"
        r3 = self._override(o, metadata=self.md("doc1"), timeout=T(30))
        self.assertFalse(r3.duplicate)
        self.assertNotEqual(r3.event_id, r1.event_id)
        r4 = self._override(o, metadata=self.md("doc1"), timeout=T(30))
        self.assertTrue(r4.duplicate)
        self.assertEqual(r4.seq, r3.seq)

        # the alert's status: its outcomes follow it in the Alerts stream
        got = self.alerts(lambda g: len(g) >= 3, patient_ids=[self.C], include_outcomes=True)
        A = common.pb.cds.AlertAction
        self.assertEqual([(a.outcome.action, a.outcome.issue_id, a.outcome.by) for a in got[1:]],
                         [(A.Value("ALERT_ACTION_ACKNOWLEDGED"), alert.issue.issue_id, "doc1"),
                          (A.Value("ALERT_ACTION_OVERRIDDEN"), alert.issue.issue_id, "doc1")])
        self.assertEqual([a.seq for a in got[1:]], [r1.seq, r3.seq])
        self.assertEqual((got[0].seq, got[1].HasField("issue")), (alert.seq, False))
        self.assertEqual(got[2].outcome.reason.text, "short course")

        evs = self.stream_events(self.C)
        acks = [e for e in evs if e.WhichOneof("body") == "alert_acknowledged"]
        ovrs = [e for e in evs if e.WhichOneof("body") == "alert_overridden"]
        self.assertEqual((len(acks), len(ovrs)), (1, 1))
        ak, ov = acks[0], ovrs[0]
        self.assertEqual(ak.event_id, r1.event_id)
        self.assertEqual(ak.alert_acknowledged.issue_id, alert.issue.issue_id)
        self.assertEqual(ak.alert_acknowledged.acknowledged_by.principal_id, "doc1")
        self.assertEqual(ak.alert_acknowledged.reason.text, "seen, will monitor INR")
        self.assertEqual(ak.alert_acknowledged.issue_event_id, alert.event_id)
        self.assertEqual(ak.causation_id, alert.event_id)
        self.assertEqual(ak.recorded_by.principal_id, "$log")
        self.assertEqual(ov.alert_overridden.overridden_by.principal_id, "doc1")
        self.assertEqual(ov.alert_overridden.reason.coding[0].code, "benefit-outweighs-risk")

        # refusals
        e = self.assertRpcError(grpc.StatusCode.NOT_FOUND, self._ack,
                                c.AcknowledgeAlertRequest(alert_id="0" * 32),
                                metadata=self.md("doc1"), timeout=T(30))
        self.assertIn("alert_id", e.details())
        self.assertRpcError(grpc.StatusCode.INVALID_ARGUMENT, self._ack,
                            c.AcknowledgeAlertRequest(alert_id="not-hex"),
                            metadata=self.md("doc1"), timeout=T(30))
        e = self.assertRpcError(grpc.StatusCode.INVALID_ARGUMENT, self._override,
                                c.OverrideAlertRequest(alert_id=alert.issue.issue_id),
                                metadata=self.md("doc1"), timeout=T(30))
        self.assertIn("reason", e.details())
        self.assertRpcError(grpc.StatusCode.PERMISSION_DENIED, self._ack, req,
                            metadata=self.md("reg1"), timeout=T(30))
        # the acknowledgement is recorded with its patient
        recs = self.audit_records(rid)
        self.assertEqual(len(recs), 1)
        self.assertEqual((recs[0].method, recs[0].outcome, list(recs[0].patients)),
                         ("clinlog.v1.Cds/Acknowledge", "0", [self.C]))

    # ------------------------------------------------------------- shutdown

    def test_z_alerts_end_when_the_server_stops(self):
        call = self._alerts(common.pb.cds.AlertsRequest(after_seq=self.seq),
                            metadata=self.md("doc1"), timeout=T(60))
        box = {}

        def drain():
            try:
                for _ in call:
                    pass
                box["code"] = grpc.StatusCode.OK
            except grpc.RpcError as e:
                box["code"] = e.code()
        t = threading.Thread(target=drain)
        t.start()
        time.sleep(1)
        self.server.stop()
        t.join(T(30))
        self.assertFalse(t.is_alive(), "the stream did not end at shutdown")
        self.assertEqual(box.get("code"), grpc.StatusCode.UNAVAILABLE)

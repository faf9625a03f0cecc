"""The cds projection and its emitter (docs/cds.md, "The checker on the
log"): a patient's warfarin then ibuprofen MedicationPrescribed appended
over gRPC; the node appends exactly one IssueDetected into the patient's
stream (rule warfarin-nsaids, severity HIGH, both orders implicated, event
id = the finding's key = the issue id, recorded by $log, caused by the
ibuprofen order) and it appears as a FHIR DetectedIssue; a restart and a
rebuild of the projection (Projections.Rebuild) add no second one."""
import time
import uuid

import common
from common import T, Server, ServerTestCase, Signer


class TestCdsAlerts(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        cls.http_port = common.free_port()
        cls.server = Server(args=["--http-listen", "127.0.0.1:%d" % cls.http_port])
        cls.server.start()
        cls.client = common.Client(cls.server.addr)
        cls.admin = Signer.load(cls.server.data + "/keys/admin.key")

    def issues(self, pid, want=1, wait=True):
        """The IssueDetected events of the patient's stream, waiting (up to
        T(20)) for `want` of them."""
        return common.stream_issues(self.client, pid, want if wait else 0)

    def fhir(self, path):
        return common.fhir_get(self.http_port, path)

    def test_warfarin_ibuprofen_one_issue(self):
        pid = "CDSA" + uuid.uuid4().hex[:8].upper()
        w = common.rx_event(pid, "rx-w", "11289")
        ibu = common.rx_event(pid, "rx-i", "5640")
        self.append_events([w])
        self.append_events([ibu])
        found = self.issues(pid)
        self.assertEqual(len(found), 1, "one IssueDetected")
        ev = found[0]
        idt = ev.issue_detected
        self.assertEqual(idt.rule_id, "warfarin-nsaids")
        high = idt.DESCRIPTOR.fields_by_name["severity"].enum_type.values_by_name[
            "ISSUE_SEVERITY_HIGH"].number
        self.assertEqual(idt.severity, high)
        self.assertEqual(idt.code.code, "DRG")
        self.assertEqual(idt.issue_id, ev.event_id.hex(), "event id = the key = the issue id")
        ids = [r.event_id for r in idt.implicated]
        self.assertEqual(ids, [common.event_id_of(ibu), common.event_id_of(w)])
        self.assertEqual(ev.causation_id, common.event_id_of(ibu))
        self.assertEqual(ev.recorded_by.principal_id, "$log")
        self.assertEqual(ev.source_system, "clinlog-cds")

        # the FHIR DetectedIssue
        deadline = time.monotonic() + T(20)
        while True:
            st, b = self.fhir("/DetectedIssue?patient=" + pid)
            if st == 200 and b.get("total", len(b.get("entry", []))) >= 1:
                break
            self.assertLess(time.monotonic(), deadline, "no DetectedIssue: %s %s" % (st, b))
            time.sleep(0.1)
        res = [e["resource"] for e in b["entry"]]
        self.assertEqual(len(res), 1)
        self.assertEqual(res[0]["resourceType"], "DetectedIssue")
        self.assertEqual(res[0]["severity"], "high")

        # a rebuild of the projection, then a restart: still exactly one
        self.client.rebuild("cds")
        time.sleep(1.5)
        self.assertEqual(len(self.issues(pid, wait=False)), 1, "a rebuild emits nothing again")
        self.server.stop()
        self.server.start()
        self.client = common.Client(self.server.addr)
        time.sleep(1.5)
        self.assertEqual(len(self.issues(pid, wait=False)), 1, "a restart emits nothing again")
        # the checker goes on after the restart: an aspirin order alerts too
        self.append_events([common.rx_event(pid, "rx-a", "1191")])
        later = self.issues(pid, want=2)
        self.assertGreaterEqual(len(later), 2)
        self.assertEqual(len({e.event_id for e in later}), len(later), "no duplicate")

"""Strict barcode medication administration (docs/cds.md, "Strict mode"):
clinlogd --bcma-strict refuses a barcode-scanned MedicationAdministered that
fails one of the five rights with FAILED_PRECONDITION naming the right, and
writes nothing of its batch; a correct scan is written. Each right broken
in turn against a warfarin 3 mg oral order: the wristband of another
patient, another drug's barcode, another dose, another route, a time after
the order was discontinued. An order and its administration in one batch
are checked together. Without --bcma-strict the same wrong scan is written
and the checker alerts (IssueDetected, rule bcma:patient)."""
import datetime
import time
import uuid

import grpc

import common
from common import T, Server, ServerTestCase, new_id

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
WARFARIN_3MG = "855318"  # warfarin sodium 3 MG Oral Tablet (SCD)
IBUPROFEN = "5640"


def event(pid, when=None):
    ev = common.pb.event.Event(event_id=new_id(), stream="patient-" + pid,
                               source_system="INTEROP")
    if when is None:
        ev.occurred_at.CopyFrom(common.timestamp_now())
    else:
        ev.occurred_at.FromDatetime(when)
    ev.recorded_by.principal_id = "admin"
    ev.recorded_by.role = "nurse"
    return ev


def order(pid, rxid="rx-w"):
    ev = event(pid, datetime.datetime.utcnow() - datetime.timedelta(hours=1))
    rx = ev.medication_prescribed
    rx.prescription_id = rxid
    rx.medication.coding.add(system=RXNORM, code=WARFARIN_3MG)
    d = rx.dosage.add()
    d.dose.value, d.dose.unit = "3", "mg"
    d.route.code = "PO"
    d.frequency = "QD"
    return ev.SerializeToString()


def discontinue(pid, rxid="rx-w"):
    ev = event(pid)
    ev.medication_discontinued.prescription_id = rxid
    return ev.SerializeToString()


def scan(pid, wristband=None, code=WARFARIN_3MG, dose="3", route="PO", rxid="rx-w"):
    ev = event(pid)
    a = ev.medication_administered
    a.administration_id = "adm-" + uuid.uuid4().hex[:8]
    a.prescription_id = rxid
    a.scanned_wristband_id = pid if wristband is None else wristband
    a.medication.coding.add(system=RXNORM, code=code)
    a.dose_given.value, a.dose_given.unit = dose, "mg"
    a.route.code = route
    a.status = common.pb.domain.ADMINISTRATION_STATUS_COMPLETED
    return ev.SerializeToString()


def administrations(client, pid):
    return [r for r in client.read(stream="patient-" + pid)
            if common.pb.event.Event.FromString(r.event).WhichOneof("body")
            == "medication_administered"]


class TestBcmaStrict(ServerTestCase):
    server_args = ("--bcma-strict",)

    def refused(self, events, right):
        e = self.assertRpcError(grpc.StatusCode.FAILED_PRECONDITION, self.append_events, events)
        self.assertIn("barcode administration refused", e.details())
        self.assertIn(right, e.details())
        return e

    def test_each_right_refused_and_a_good_scan_written(self):
        pid = "BCMA" + uuid.uuid4().hex[:8].upper()
        self.append_events([order(pid)])
        e = self.refused([scan(pid, wristband="SOMEONE-ELSE")], "wrong patient")
        self.assertIn("events[0]", e.details())
        self.refused([scan(pid, code=IBUPROFEN)], "wrong drug")
        self.refused([scan(pid, dose="5")], "wrong dose")
        self.refused([scan(pid, route="IV")], "wrong route")
        self.assertEqual(administrations(self.client, pid), [], "nothing written")
        r = self.append_events([scan(pid)])
        self.assertGreater(r.tree_size, 0)
        self.assertEqual(len(administrations(self.client, pid)), 1)
        # discontinued: now the time is wrong
        self.append_events([discontinue(pid)])
        self.refused([scan(pid)], "wrong time")
        self.assertEqual(len(administrations(self.client, pid)), 1)

    def test_a_refused_scan_takes_its_whole_batch(self):
        pid = "BCMB" + uuid.uuid4().hex[:8].upper()
        self.append_events([order(pid)])
        other = event(pid)
        other.clinical_note_signed.note_id = "n-1"
        other.clinical_note_signed.text = "a note in the same batch"
        e = self.refused([other.SerializeToString(), scan(pid, wristband="X")], "wrong patient")
        self.assertIn("events[1]", e.details())
        notes = [r for r in self.client.read(stream="patient-" + pid)
                 if common.pb.event.Event.FromString(r.event).WhichOneof("body")
                 == "clinical_note_signed"]
        self.assertEqual(notes, [], "nothing of the batch is written")

    def test_an_order_and_its_scan_in_one_batch(self):
        pid = "BCMC" + uuid.uuid4().hex[:8].upper()
        self.append_events([order(pid), scan(pid)])
        self.assertEqual(len(administrations(self.client, pid)), 1)
        self.refused([order(pid, "rx-2"), scan(pid, dose="30", rxid="rx-2")], "wrong dose")

    def test_unscanned_and_not_given_are_not_checked(self):
        pid = "BCMD" + uuid.uuid4().hex[:8].upper()
        ev = event(pid)
        a = ev.medication_administered
        a.administration_id = "adm-manual"
        a.medication.coding.add(system=RXNORM, code=IBUPROFEN)
        a.status = common.pb.domain.ADMINISTRATION_STATUS_COMPLETED
        self.append_events([ev.SerializeToString()])  # no scan: documented by hand
        ev = common.pb.event.Event.FromString(scan(pid, wristband="X"))
        ev.medication_administered.status = common.pb.domain.ADMINISTRATION_STATUS_NOT_DONE
        self.append_events([ev.SerializeToString()])
        self.assertEqual(len(administrations(self.client, pid)), 2)


class TestBcmaNotStrict(ServerTestCase):

    def test_a_wrong_scan_is_written_and_alerted(self):
        pid = "BCMN" + uuid.uuid4().hex[:8].upper()
        self.append_events([order(pid)])
        self.append_events([scan(pid, wristband="SOMEONE-ELSE")])
        self.assertEqual(len(administrations(self.client, pid)), 1)
        found = common.stream_issues(self.client, pid, 1)
        self.assertEqual([e.issue_detected.rule_id for e in found], ["bcma:patient"])


class TestBcmaStrictNeedsProjections(ServerTestCase):
    server = None

    @classmethod
    def setUpClass(cls):
        pass

    @classmethod
    def tearDownClass(cls):
        pass

    def test_refuses_to_start_without_the_cds_projection(self):
        s = Server(args=["--bcma-strict", "--run-projections", "none"])
        try:
            with self.assertRaises(Exception):
                s.start(timeout=T(10))
            self.assertIn("--bcma-strict", s.stderr())
        finally:
            s.kill()

"""Remote patient monitoring end to end (docs/cds.md, "Remote patient
monitoring"): clinlogd started with a test knowledge base (--cds-kb) whose
device-silent limit is 2 s. Blood-pressure readings appended over gRPC
Log.Append raise exactly one IssueDetected for ten high readings (no
flooding), shown as a FHIR DetectedIssue; the device then stops reporting
and gets exactly one DEVICE_SILENT finding within a bound, and no second one
while it stays silent; a rebuild of the projection and a restart append
nothing again; a status report with a low battery alerts and re-arms the
silence watch; two missed doses at a pill dispenser raise an adherence
alert."""
import os
import time
import uuid

import common
from common import T, Server, ServerTestCase, Signer, new_id

LOINC = "http://loinc.org"
SILENT_S = 2

KB = """clinlog-kb 1
version test-rpm-1
source s Interop test thresholds
vital 8480-6 high 180 mm[Hg] high source=s Systolic above 180
vital 8462-4 high 120 mm[Hg] high source=s Diastolic above 120
device-silent %d high source=s
device-battery 20 low source=s
adherence 2 7 moderate source=s
""" % SILENT_S


def enum(msg, field, name):
    return msg.DESCRIPTOR.fields_by_name[field].enum_type.values_by_name[name].number


def envelope(pid):
    ev = common.pb.event.Event(event_id=new_id(), stream="patient-" + pid,
                               occurred_at=common.timestamp_now(), source_system="INTEROP")
    ev.recorded_by.principal_id = "admin"
    ev.recorded_by.role = "admin"
    return ev


def bp(pid, device, sys, dia):
    ev = envelope(pid)
    r = ev.device_reading_recorded
    r.reading_id = "r-" + uuid.uuid4().hex[:8]
    r.device_id = device
    c = r.code.coding.add()
    c.system, c.code = LOINC, "85354-9"
    for code, v in (("8480-6", sys), ("8462-4", dia)):
        comp = r.components.add()
        comp.code.system, comp.code.code = LOINC, code
        comp.value.value, comp.value.unit = str(v), "mm[Hg]"
    r.status = enum(r, "status", "OBSERVATION_STATUS_FINAL")
    r.measured_at.CopyFrom(ev.occurred_at)
    return ev.SerializeToString()


def battery(pid, device, pct):
    ev = envelope(pid)
    s = ev.device_status_reported
    s.device_id = device
    s.reported_at.CopyFrom(ev.occurred_at)
    s.battery.value, s.battery.unit = str(pct), "%"
    s.connectivity = enum(s, "connectivity", "DEVICE_CONNECTIVITY_ONLINE")
    return ev.SerializeToString()


def dose(pid, device, rx, outcome):
    ev = envelope(pid)
    d = ev.dispenser_event_recorded
    d.device_id, d.prescription_id = device, rx
    d.scheduled_at.CopyFrom(ev.occurred_at)
    d.event_at.CopyFrom(ev.occurred_at)
    d.outcome = enum(d, "outcome", "DISPENSER_OUTCOME_" + outcome)
    d.dispenser_event_id = uuid.uuid4().hex
    return ev.SerializeToString()


class TestCdsRpm(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        cls.kb_path = os.path.join(common.TMP, "rpm-%s.kb" % uuid.uuid4().hex)
        with open(cls.kb_path, "w") as f:
            f.write(KB)
        cls.http_port = common.free_port()
        cls.server = Server(args=["--http-listen", "127.0.0.1:%d" % cls.http_port,
                                  "--cds-kb", cls.kb_path])
        cls.server.start()
        cls.client = common.Client(cls.server.addr)
        cls.admin = Signer.load(cls.server.data + "/keys/admin.key")

    def issues(self, pid, want=0, within=20):
        return common.stream_issues(self.client, pid, want, within)

    def kinds(self, found):
        names = common.pb.event.Event().issue_detected.DESCRIPTOR.fields_by_name[
            "kind"].enum_type.values_by_number
        return sorted(names[e.issue_detected.kind].name for e in found)

    def fhir(self, path):
        return common.fhir_get(self.http_port, path)

    def test_readings_silence_battery_no_duplicates(self):
        pid = "RPMA" + uuid.uuid4().hex[:8].upper()
        dev = "cuff-" + uuid.uuid4().hex[:6]
        first = bp(pid, dev, 190, 80)
        self.append_events([first])
        for i in range(9):
            last = bp(pid, dev, 191 + i, 85)
            self.append_events([last])
        last_contact = time.monotonic()
        vital = self.issues(pid, want=1)
        self.assertEqual(len(vital), 1, "one alert for ten high readings")
        idt = vital[0].issue_detected
        self.assertEqual(idt.rule_id, "vital:8480-6:high:180")
        self.assertEqual(idt.kind, enum(idt, "kind", "ISSUE_KIND_VITAL_SIGN"))
        self.assertEqual(idt.severity, enum(idt, "severity", "ISSUE_SEVERITY_HIGH"))
        self.assertEqual(idt.rule_version, "test-rpm-1")
        self.assertEqual([r.event_id for r in idt.implicated], [common.event_id_of(first)])
        self.assertEqual(vital[0].event_id.hex(), idt.issue_id)
        self.assertEqual(vital[0].recorded_by.principal_id, "$log")

        # the cuff stops reporting: one DEVICE_SILENT within a bound
        found = self.issues(pid, want=2, within=SILENT_S + 10)
        took = time.monotonic() - last_contact
        self.assertEqual(self.kinds(found), ["ISSUE_KIND_DEVICE_SILENT", "ISSUE_KIND_VITAL_SIGN"])
        self.assertLess(took, T(SILENT_S + 10))
        silent = [e for e in found if e.issue_detected.rule_id == "device-silent:%d" % SILENT_S]
        self.assertEqual(len(silent), 1)
        self.assertNotIn(dev, silent[0].issue_detected.detail, "no device id in the text")
        self.assertEqual(silent[0].issue_detected.implicated[0].event_id, common.event_id_of(last))
        # and no second one while it stays silent
        time.sleep(T(3 * SILENT_S))
        self.assertEqual(len(self.issues(pid)), 2, "one silence alert while silent")

        # both as FHIR DetectedIssue
        deadline = time.monotonic() + T(20)
        while True:
            st, b = self.fhir("/DetectedIssue?patient=" + pid)
            if st == 200 and len(b.get("entry", [])) >= 2:
                break
            self.assertLess(time.monotonic(), deadline, "no DetectedIssue: %s %s" % (st, b))
            time.sleep(0.1)
        self.assertEqual(len(b["entry"]), 2)
        self.assertEqual(sorted(e["resource"]["severity"] for e in b["entry"]), ["high", "high"])

        # a rebuild and a restart append nothing again
        self.client.rebuild("cds")
        time.sleep(T(SILENT_S + 1))
        self.assertEqual(len(self.issues(pid)), 2, "a rebuild emits nothing again")
        self.server.stop()
        self.server.start()
        self.client = common.Client(self.server.addr)
        time.sleep(T(SILENT_S + 1))
        self.assertEqual(len(self.issues(pid)), 2, "a restart emits nothing again")

        # the device reports a low battery: an alert, and silence re-armed
        self.append_events([battery(pid, dev, 10)])
        found = self.issues(pid, want=4, within=SILENT_S + 10)
        self.assertEqual(self.kinds(found),
                         ["ISSUE_KIND_DEVICE_SILENT", "ISSUE_KIND_DEVICE_SILENT",
                          "ISSUE_KIND_DEVICE_STATUS", "ISSUE_KIND_VITAL_SIGN"])
        self.assertEqual(len({e.event_id for e in found}), 4, "no duplicate")

    def test_dispenser_adherence(self):
        pid = "RPMB" + uuid.uuid4().hex[:8].upper()
        box = "pillbox-" + uuid.uuid4().hex[:6]
        self.append_events([dose(pid, box, "rx-1", "MISSED")])
        self.append_events([dose(pid, box, "rx-1", "SKIPPED")])
        self.append_events([dose(pid, box, "rx-1", "MISSED")])
        found = self.issues(pid, want=1)
        adh = [e for e in found if e.issue_detected.rule_id == "adherence:2:7"]
        self.assertEqual(len(adh), 1, "one adherence alert for three misses")
        self.assertEqual(adh[0].issue_detected.code.code, "COMPLY")
        # the pillbox then falls silent too: exactly the two
        found = self.issues(pid, want=2, within=SILENT_S + 10)
        self.assertEqual(self.kinds(found), ["ISSUE_KIND_ADHERENCE", "ISSUE_KIND_DEVICE_SILENT"])

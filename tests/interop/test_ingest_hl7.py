"""`clinlog ingest hl7` against a real clinlogd, checked by an independent
client: the HL7 v2 corpus of tests/adapters/hl7v2/ becomes signed catalog
events in the patients' streams (event ids derived from sender, facility,
control id and index, recomputed here with BLAKE2b), the FHIR views show
the Patient and an Observation with its LOINC code and UCUM unit, ingesting
the same files again writes nothing (all duplicates), a malformed file or a
batch whose count does not add up exits non-zero naming the error with
nothing written, and --json parses."""
import glob
import hashlib
import json
import os
import subprocess

import common
from common import T, ServerTestCase, Signer

CORPUS = os.path.join(common.REPO, "tests", "adapters", "hl7v2")
INGEST = os.path.join(CORPUS, "ingest")


def derived_id(app, facility, control_id, index):
    """The event id rule of docs/adapters.md, written independently."""
    h = hashlib.blake2b(digest_size=16)
    h.update(b"clinlog-hl7v2-event-id-v1\x00")
    for part in (app, facility, control_id):
        b = part.encode()
        h.update(len(b).to_bytes(4, "big") + b)
    h.update(index.to_bytes(4, "big"))
    d = bytearray(h.digest())
    d[6] = (d[6] & 0x0F) | 0x80
    d[8] = (d[8] & 0x3F) | 0x80
    return bytes(d)


class TestIngestHl7(ServerTestCase):
    audit = False  # so that the tree size says exactly what ingestion wrote

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # the feed's principal: role integration, its own key
        cls.key = os.path.join(common.TMP, "hl7-feed-%d.key" % os.getpid())
        r = subprocess.run([common.CLINLOG, "keygen", cls.key], capture_output=True, text=True,
                           timeout=T(30))
        assert r.returncode == 0, r.stderr
        feed = Signer.load(cls.key)
        common.register_feed(cls.client, cls.admin, "hl7-feed", "HL7 interface engine", feed.pk)
        f = common.pb.fhir
        F = "/clinlog.v1.Fhir/"
        ch = cls.client.channel
        cls.fhir_read = ch.unary_unary(F + "Read", f.FhirReadRequest.SerializeToString,
                                       f.FhirResponse.FromString)
        cls.fhir_search = ch.unary_unary(F + "Search", f.FhirSearchRequest.SerializeToString,
                                         f.FhirResponse.FromString)

    def ingest(self, *files, json_out=True):
        argv = [common.CLINLOG, "ingest", "hl7"] + list(files) + [
            "--server", self.server.addr, "--plaintext", "--key", self.key]
        if json_out:
            argv.append("--json")
        return subprocess.run(argv, capture_output=True, text=True, timeout=T(60))

    def test_1_corpus_events_views_and_resend(self):
        files = sorted(glob.glob(os.path.join(CORPUS, "*.hl7")))
        self.assertGreaterEqual(len(files), 17)
        r = self.ingest(*files)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        out = json.loads(r.stdout)
        self.assertTrue(out["ok"])
        self.assertEqual(out["total"], len(files))
        self.assertEqual(out["accepted"], len(files))
        self.assertEqual(out["refused"], 0)
        self.assertEqual({m["status"] for m in out["messages"]}, {"accepted"})
        head = self.client.tree_size()

        # the events in the log: the ORU^R01's lab report
        lab = [m for m in out["messages"] if m["controlId"] == "LAB7781"][0]
        got = self.client.read(stream="patient-STMARYS-123456")
        by_id = {}
        for rec in got:
            e = common.pb.event.Event.FromString(rec.event)
            by_id[e.event_id] = (rec, e)
        rid = derived_id("LAB", "STMARYS", "LAB7781", 0)
        self.assertIn(rid, by_id, "the ORU's event id is the derived one")
        rec, e = by_id[rid]
        self.assertEqual(rec.seq, lab["firstSeq"])
        self.assertEqual(e.WhichOneof("body"), "lab_result_reported")
        self.assertEqual((e.source_system, e.source_facility, e.source_message_id),
                         ("LAB", "STMARYS", "LAB7781"))
        self.assertEqual(e.recorded_by.principal_id, "hl7-feed")
        self.assertEqual(e.recorded_by.role, "integration")
        rep = e.lab_result_reported
        self.assertEqual(rep.report_id, "LAB7781")
        self.assertEqual(len(rep.results), 7)
        k = rep.results[1]
        self.assertEqual((k.code.coding[0].system, k.code.coding[0].code),
                         ("http://loinc.org", "2823-3"))
        self.assertEqual((k.quantity.value, k.quantity.unit), ("5.9", "mmol/L"))
        self.assertEqual(k.interpretation[0].code, "H")
        # 2026-12-04 09:45:00, sent without an offset: UTC
        self.assertEqual(k.effective.seconds, 1796377500)
        # ADT^A01: registration and encounter, ids 0 and 1 of that message
        self.assertIn(derived_id("EPIC", "STMARYS", "MSG00001", 0), by_id)
        _, enc = by_id[derived_id("EPIC", "STMARYS", "MSG00001", 1)]
        self.assertEqual(enc.encounter_started.encounter_id, "VN5566")
        self.assertEqual(len({e.correlation_id for _, e in by_id.values()
                              if e.source_message_id == "MSG00001"}), 1)

        # the FHIR views
        f = common.pb.fhir
        ryw = common.pb.api.Consistency(min_sequence=head)
        p = json.loads(self.fhir_read(f.FhirReadRequest(type="Patient", id="STMARYS-123456",
                                                        consistency=ryw), timeout=T(30)).json)
        self.assertEqual(p["resourceType"], "Patient")
        self.assertEqual(p["name"][0]["family"], "O'Brien")
        self.assertEqual(p["birthDate"], "1960-03-15")
        b = json.loads(self.fhir_search(f.FhirSearchRequest(type="Observation", params=[
            f.FhirParam(name="patient", value="STMARYS-123456"),
            f.FhirParam(name="code", value="http://loinc.org|2345-7")], consistency=ryw),
            timeout=T(30)).json)
        obs = [x["resource"] for x in b.get("entry", [])
               if x["resource"]["resourceType"] == "Observation"]
        self.assertEqual(len(obs), 1, b)
        o = obs[0]
        self.assertIn({"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"},
                      o["code"]["coding"])
        self.assertEqual(o["valueQuantity"]["value"], 98)
        self.assertEqual(o["valueQuantity"]["unit"], "milligram per deciliter")  # OBX-6.2
        self.assertEqual(o["valueQuantity"]["system"], "http://unitsofmeasure.org")
        self.assertEqual(o["valueQuantity"]["code"], "mg/dL")
        # the visit VN5566: admitted (A01), discharged (A03), the admission
        # cancelled (A11), the discharge cancelled (A13): four versions, the
        # last in progress again without an end
        b = json.loads(self.fhir_search(f.FhirSearchRequest(type="Encounter", params=[
            f.FhirParam(name="patient", value="STMARYS-123456")], consistency=ryw),
            timeout=T(30)).json)
        enc = [x["resource"] for x in b.get("entry", [])
               if x["resource"]["resourceType"] == "Encounter" and
               {"system": "urn:clinlog:id", "value": "VN5566"} in x["resource"]["identifier"]]
        self.assertEqual(len(enc), 1, b)
        self.assertEqual((enc[0]["status"], enc[0]["meta"]["versionId"]), ("in-progress", "4"))
        self.assertNotIn("end", enc[0].get("period", {}))
        v3 = json.loads(self.fhir_read(f.FhirReadRequest(type="Encounter", id=enc[0]["id"],
                                                         version_id=3, consistency=ryw),
                                       timeout=T(30)).json)
        self.assertEqual(v3["status"], "cancelled")

        # the same files again: all duplicates, nothing written
        r = self.ingest(*files)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        out2 = json.loads(r.stdout)
        self.assertEqual(out2["duplicates"], len(files))
        self.assertEqual(out2["accepted"], 0)
        for a, b2 in zip(out["messages"], out2["messages"]):
            self.assertEqual(b2["status"], "duplicate")
            self.assertEqual((a["firstSeq"], a["lastSeq"]), (b2["firstSeq"], b2["lastSeq"]))
        self.assertNothingWritten(head)

    def test_2_batches_and_mllp_frames(self):
        r = self.ingest(os.path.join(INGEST, "batch_fhs.hl7"),
                        os.path.join(INGEST, "mllp_two.mllp"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual([(m["controlId"], m["type"]) for m in out["messages"]],
                         [("B1-0001", "ADT^A28"), ("B1-0002", "ORU^R01"),
                          ("M1-0001", "SIU^S12"), ("M1-0002", "DFT^P03")])
        types = [common.pb.event.Event.FromString(x.event).WhichOneof("body")
                 for x in self.client.read(stream="patient-NORTHCL-NC-9001")]
        self.assertEqual(types, ["patient_registered", "lab_result_reported",
                                 "appointment_booked", "charge_captured"])

    def test_3_refusals_write_nothing(self):
        before = self.client.tree_size()
        # a bad NM: non-zero exit, the ERR location and code, on the terminal form too
        r = self.ingest(os.path.join(INGEST, "oru_bad_nm.hl7"), json_out=False)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("refused (AE, 102 Data type error): OBX-5.1.1 (segment 4", r.stdout)
        self.assertIn("NM value 'ninety-eight' is not a number", r.stdout)
        r = self.ingest(os.path.join(INGEST, "oru_bad_nm.hl7"))
        self.assertEqual(r.returncode, 1)
        m = json.loads(r.stdout)["messages"][0]
        self.assertEqual(m["status"], "refused")
        self.assertEqual((m["error"]["code"], m["error"]["segment"], m["error"]["field"],
                          m["error"]["component"]), (102, "OBX", 5, 1))
        self.assertIn("MSA|AE|X1-0001", m["ack"])
        self.assertIn("ERR||OBX^1^5^1^1^1|102^Data type error^HL70357", m["ack"])
        # a batch whose BTS-1 does not add up: refused whole
        r = self.ingest(os.path.join(INGEST, "batch_bad_count.hl7"), json_out=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("BTS-1 batch message count is 3, the batch has 2 messages", r.stdout)
        # an unsupported message type: AR naming it
        bad = os.path.join(common.TMP, "qry.hl7")
        with open(bad, "wb") as f:
            f.write(b"MSH|^~\\&|X|Y|CLINLOG|HOSP|20261204||QRY^A19|Q1|P|2.5.1\rPID|1||1^^^A^MR\r")
        r = self.ingest(bad)
        self.assertEqual(r.returncode, 1)
        m = json.loads(r.stdout)["messages"][0]
        self.assertEqual((m["error"]["code"], m["error"]["segment"], m["error"]["field"]),
                         (200, "MSH", 9))
        self.assertIn("MSA|AR|Q1", m["ack"])
        # the same control id from the same sender with other content: 205
        with open(os.path.join(CORPUS, "siu_s12.hl7"), "rb") as f:
            changed = f.read().replace(b"20261210090000", b"20261211090000")
        alt = os.path.join(common.TMP, "siu_changed.hl7")
        with open(alt, "wb") as f:
            f.write(changed)
        self.ingest(os.path.join(CORPUS, "siu_s12.hl7"))  # present already, or now
        before = self.client.tree_size()
        r = self.ingest(alt)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(json.loads(r.stdout)["messages"][0]["error"]["code"], 205)
        self.assertNothingWritten(before)

"""FHIR writes of the resource types added after the first ten
(adapters/fhir/fhirw_report.c...), through the REST face of a real
clinlogd: POST then GET gives back what was written (modulo meta and id),
the CapabilityStatement lists the writes, what the views show passes the
independent validator (tests/fhir), and a refusal names the element and
writes nothing (the log's tree size)."""
import base64
import copy
import json
import os
import tempfile
import urllib.parse

import common
import fhir_claims as fc
import test_fhir_write as fw
import test_fhir_write_cond as cond

from fhir_labs import LAB, LOINC, UCUM, V2_0074, V2_0203, bmp_report


class TestFhirWriteTypes(fw.FhirWriteCase):
    def new_patient(self, family):
        r, p = self.call("POST", "/Patient", fw.patient(family=family))
        self.assertEqual(r.status, 201, p)
        return p["id"]

    def validate(self, resources):
        d = tempfile.mkdtemp(prefix="fhirw-types-", dir=common.TMP)
        path = os.path.join(d, "resources.json")
        with open(path, "w") as f:
            json.dump(resources, f)
        ok, out = fw.validate([path])
        self.assertTrue(ok, out)

    def test_capabilities_list_the_new_writes(self):
        st, cs = common.fhir_get(self.http_port, "/metadata")
        self.assertEqual(st, 200)
        by = {r["type"]: r for r in cs["rest"][0]["resource"]}
        for t in ("DiagnosticReport", "Appointment", "Communication", "Task",
                  "DocumentReference", "Device", "ImagingStudy", "ChargeItem", "Claim",
                  "ClaimResponse", "Coverage", "CoverageEligibilityResponse"):
            codes = [i["code"] for i in by[t]["interaction"]]
            self.assertIn("create", codes, t)
            self.assertIn("update", codes, t)

    def test_diagnostic_report_round_trip(self):
        pid = self.new_patient("Report")
        size = self.client.tree_size()
        sent = bmp_report(pid, "bmp-1")
        r, got = self.call("POST", "/DiagnosticReport", sent)
        self.assertEqual(r.status, 201, got)
        self.assertEqual(self.client.tree_size(), size + 1, "one LabResultReported")
        rid = got["id"]
        st, rep = common.fhir_get(self.http_port, "/DiagnosticReport/" + rid)
        self.assertEqual(st, 200, rep)
        # the report as sent, its result lines now Observations of their own
        want = copy.deepcopy(sent)
        lines = want["contained"][:2]
        want["contained"] = want["contained"][2:]
        self.assertEqual(len(rep["result"]), 2)
        want["result"] = rep["result"]
        want["id"] = rid
        self.assertEqual(fw.strip_meta(rep), want)
        obs = []
        for ref, sent_line in zip(rep["result"], lines):
            st, o = common.fhir_get(self.http_port, "/" + ref["reference"])
            self.assertEqual(st, 200, o)
            obs.append(o)
            o = fw.strip_meta(o)
            self.assertTrue(o.pop("identifier")[0]["value"].startswith("bmp-1/"), o)
            want_line = dict(sent_line, id=o["id"])
            self.assertEqual(o, want_line)
        # codes keep their systems; decimals as written
        self.assertEqual(obs[1]["code"]["coding"][0]["system"], LOINC)
        self.assertEqual(obs[1]["valueQuantity"]["value"], 5.9)
        # searchable as any lab result of the patient
        st, b = common.fhir_get(self.http_port,
                                "/Observation?patient=%s&code=%s" % (
                                    pid, urllib.parse.quote(LOINC + "|2823-3", safe="")))
        self.assertEqual(st, 200, b)
        self.assertEqual(b["total"], 1)
        self.validate([rep] + obs)
        # the same POST again: the same event, nothing new
        r, again = self.call("POST", "/DiagnosticReport", sent)
        self.assertIn(r.status, (200, 201), again)
        self.assertEqual(again["id"], rid)
        self.assertEqual(self.client.tree_size(), size + 1)
        # a PATCH applies to the report as served (its lines not contained):
        # refused naming the first result, nothing written (docs/adapters.md)
        r, oo = self.call("PATCH", "/DiagnosticReport/" + rid, json.dumps(
            [{"op": "replace", "path": "/conclusion", "value": "Hyperkalemia."}]),
            {"Content-Type": "application/json-patch+json"})
        self.assertEqual(r.status, 422, oo)
        self.assertEqual(oo["issue"][0]["expression"], ["DiagnosticReport.result[0]"])
        self.assertEqual(self.client.tree_size(), size + 1)

    def test_diagnostic_report_in_a_transaction(self):
        pid = self.new_patient("TxReport")
        size = self.client.tree_size()
        rep = bmp_report("x", "bmp-tx")
        for c in rep["contained"]:
            c.pop("subject", None)  # a contained line may leave the subject to its report
        rep["subject"] = {"reference": "urn:uuid:7f1e7c9a-0000-4000-8000-000000000001"}
        b = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:7f1e7c9a-0000-4000-8000-000000000001",
             "resource": dict(fw.patient(family="TxReport2")),
             "request": {"method": "POST", "url": "Patient"}},
            {"resource": rep, "request": {"method": "POST", "url": "DiagnosticReport"}}]}
        r, resp = self.call("POST", "", b)
        self.assertEqual(r.status, 200, resp)
        self.assertEqual([e["response"]["status"] for e in resp["entry"]], ["201 Created"] * 2)
        self.assertEqual(self.client.tree_size(), size + 2)
        loc = resp["entry"][1]["response"]["location"]
        self.assertIn("DiagnosticReport/", loc)
        self.assertTrue(pid)

    def test_report_lines_as_bundle_entries(self):
        """A transaction whose report references its lines by fullUrl: they
        become the report's lines (one event), and each line entry's
        response is the Observation the views made of it."""
        pid = self.new_patient("TxLines")
        size = self.client.tree_size()
        rep = bmp_report(pid, "bmp-lines")
        lines = rep["contained"][:2]
        rep["contained"] = rep["contained"][2:]
        urls = ["urn:uuid:7f1e7c9a-0000-4000-8000-00000000000%d" % i for i in (1, 2)]
        rep["result"] = [{"reference": u} for u in urls]
        entries = [{"fullUrl": u, "resource": {k: v for k, v in ln.items() if k != "id"},
                    "request": {"method": "POST", "url": "Observation"}}
                   for u, ln in zip(urls, lines)]
        entries.insert(1, {"resource": rep,
                           "request": {"method": "POST", "url": "DiagnosticReport"}})
        r, resp = self.call("POST", "", {"resourceType": "Bundle", "type": "transaction",
                                         "entry": entries})
        self.assertEqual(r.status, 200, resp)
        self.assertEqual(self.client.tree_size(), size + 1, "one LabResultReported")
        self.assertEqual([e["response"]["status"] for e in resp["entry"]], ["201 Created"] * 3)
        loc = [e["response"]["location"].split("/_history")[0] for e in resp["entry"]]
        st, back = common.fhir_get(self.http_port, "/" + loc[1].split("/R4/")[-1])
        self.assertEqual(st, 200, back)
        got = [x["reference"] for x in back["result"]]
        self.assertEqual(got, [loc[0].split("/R4/")[-1], loc[2].split("/R4/")[-1]])
        st, k = common.fhir_get(self.http_port, "/" + got[1])
        self.assertEqual(k["valueQuantity"]["value"], 5.9)
        # again: the same event, nothing new
        r, resp2 = self.call("POST", "", {"resourceType": "Bundle", "type": "transaction",
                                          "entry": entries})
        self.assertEqual(r.status, 200, resp2)
        self.assertEqual(self.client.tree_size(), size + 1)

    def test_refusals_name_the_element_and_write_nothing(self):
        pid = self.new_patient("RefusedReport")
        size = self.client.tree_size()
        good = bmp_report(pid, "bmp-bad")
        cases = []
        c = copy.deepcopy(good)
        c["result"].append({"reference": "Observation/some-existing-one"})
        cases.append(("/DiagnosticReport", c, 422, "DiagnosticReport.result[2]"))
        c = copy.deepcopy(good)
        del c["contained"][1]["code"]
        cases.append(("/DiagnosticReport", c, 400, "DiagnosticReport.contained[1].code"))
        c = copy.deepcopy(good)
        c["contained"][0]["valueQuantity"]["value"] = "139"
        cases.append(("/DiagnosticReport", c, 400,
                      "DiagnosticReport.contained[0].valueQuantity.value"))
        c = copy.deepcopy(good)
        c["status"] = "done"
        cases.append(("/DiagnosticReport", c, 422, "DiagnosticReport.status"))
        c = copy.deepcopy(good)
        c["specimen"] = [{"reference": "Specimen/s1"}]
        cases.append(("/DiagnosticReport", c, 400, "DiagnosticReport.specimen"))
        b = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:7f1e7c9a-0000-4000-8000-0000000000aa",
             "resource": fw.patient(family="NotALine"),
             "request": {"method": "POST", "url": "Patient"}},
            {"resource": dict(copy.deepcopy(good), result=[
                {"reference": "urn:uuid:7f1e7c9a-0000-4000-8000-0000000000aa"}]),
             "request": {"method": "POST", "url": "DiagnosticReport"}}]}
        cases.append(("", b, 422, "Bundle.entry[1].resource.result[0]"))
        # a line entry that does not hold: refused with its path in the report
        b = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:7f1e7c9a-0000-4000-8000-0000000000bb",
             "resource": dict(fw.heart_rate(pid), component=[]),
             "request": {"method": "POST", "url": "Observation"}},
            {"resource": dict(copy.deepcopy(good), contained=good["contained"][2:], result=[
                {"reference": "urn:uuid:7f1e7c9a-0000-4000-8000-0000000000bb"}]),
             "request": {"method": "POST", "url": "DiagnosticReport"}}]}
        cases.append(("", b, 400, "Bundle.entry[1].resource.contained[1].component"))
        for path, body, status, expr in cases:
            r, oo = self.call("POST", path, body)
            self.assertEqual(r.status, status, "%s: %s" % (expr, oo))
            self.assertEqual(oo["issue"][0]["expression"], [expr], oo)
        self.assertNothingWritten(size)

    def round_trip(self, res):
        """POSTs res and GETs it back: the same resource (modulo meta/id)."""
        r, got = self.call("POST", "/" + res["resourceType"], res)
        self.assertEqual(r.status, 201, got)
        st, back = common.fhir_get(self.http_port, "/%s/%s" % (res["resourceType"], got["id"]))
        self.assertEqual(st, 200, back)
        self.assertEqual(fw.strip_meta(back), dict(res, id=got["id"]))
        return back

    def test_portal_types_round_trip(self):
        pid = self.new_patient("Portal")
        subj = {"reference": "Patient/" + pid}
        ext = "https://clinlog.dev/fhir/StructureDefinition/"
        appt = {
            "resourceType": "Appointment",
            "extension": [{"url": ext + "booking-channel", "valueCoding": {
                "system": "https://clinlog.dev/fhir/CodeSystem/booking-channel",
                "code": "phone", "display": "By phone with staff"}}],
            "identifier": [{"system": "urn:clinlog:id", "value": "ap-" + pid}],
            "status": "booked",
            "serviceType": [{"coding": [{"system": "http://snomed.info/sct",
                                         "code": "394802001", "display": "General medicine"}]}],
            "reasonCode": [{"text": "Blood pressure follow-up"}],
            "start": "2026-06-01T09:00:00Z", "end": "2026-06-01T09:20:00Z",
            "created": "2026-05-20T12:00:00Z",
            "participant": [
                {"actor": subj, "status": "accepted"},
                {"type": [{"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                    "code": "ATND", "display": "attender"}]}],
                 "actor": {"reference": "Practitioner/dr-lee", "display": "Dr Lee"},
                 "status": "accepted"}]}
        size = self.client.tree_size()
        booked = self.round_trip(appt)
        self.assertEqual(self.client.tree_size(), size + 1)
        # a PUT with status cancelled: the booking again and its cancellation
        cancel = dict(appt, id=booked["id"], status="cancelled", cancelationReason={
            "coding": [{"system":
                        "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason",
                        "code": "pat", "display": "Patient"}]})
        r, got = self.call("PUT", "/Appointment/" + booked["id"], cancel)
        self.assertEqual(r.status, 200, got)
        self.assertEqual(self.client.tree_size(), size + 3)
        st, back = common.fhir_get(self.http_port, "/Appointment/" + booked["id"])
        self.assertEqual(fw.strip_meta(back), cancel)
        # the booking again changes nothing: one new version, the cancelled one
        self.assertEqual(back["meta"]["versionId"], "2")
        st, hist = common.fhir_get(self.http_port, "/Appointment/%s/_history" % booked["id"])
        self.assertEqual(st, 200, hist)
        self.assertEqual(hist["total"], 2)
        self.assertEqual(fw.strip_meta(hist["entry"][1]["resource"])["status"], "booked")

        first = {"resourceType": "Communication",
                 "identifier": [{"system": "urn:clinlog:id", "value": "msg-1-" + pid},
                                {"system": "urn:clinlog:thread", "value": "thr-" + pid}],
                 "status": "completed", "subject": subj, "topic": {"text": "Refill?"},
                 "sent": "2026-05-21T08:00:00Z", "sender": subj,
                 "recipient": [{"reference": "Practitioner/dr-lee"}],
                 "payload": [{"contentString": "Can I get a refill of lisinopril?"}]}
        msg = self.round_trip(first)
        reply = {"resourceType": "Communication",
                 "identifier": [{"system": "urn:clinlog:id", "value": "msg-2-" + pid},
                                {"system": "urn:clinlog:thread", "value": "thr-" + pid}],
                 "inResponseTo": [{"reference": "Communication/" + msg["id"]}],
                 "status": "completed", "subject": subj, "sent": "2026-05-21T09:00:00Z",
                 "sender": {"reference": "Practitioner/dr-lee"}, "recipient": [subj],
                 "payload": [{"contentString": "Sent to your pharmacy."}]}
        ans = self.round_trip(reply)

        rx = {"resourceType": "MedicationRequest",
              "identifier": [{"system": "urn:clinlog:id", "value": "rx-" + pid}],
              "status": "active", "intent": "order",
              "medicationCodeableConcept": {"coding": [{
                  "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "314076",
                  "display": "lisinopril 10 MG Oral Tablet"}]},
              "subject": subj, "authoredOn": "2026-01-05T10:00:00Z"}
        r, prescription = self.call("POST", "/MedicationRequest", rx)
        self.assertEqual(r.status, 201, prescription)
        task = {"resourceType": "Task",
                "identifier": [{"system": "urn:clinlog:id", "value": "refill-" + pid}],
                "status": "requested", "intent": "order",
                "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code",
                                     "code": "fulfill", "display": "Fulfill the focal request"}],
                         "text": "Medication refill request"},
                "focus": {"reference": "MedicationRequest/" + prescription["id"]},
                "for": subj, "authoredOn": "2026-05-21T08:05:00Z", "requester": subj,
                "owner": {"display": "Main Street Pharmacy"},
                "input": [{"type": {"text": "medication"},
                           "valueCodeableConcept": {"text": "lisinopril 10 mg"}}]}
        t = self.round_trip(task)
        self.validate([back, msg, ans, t])
        # refusals: named, nothing written
        size = self.client.tree_size()
        for path, body, status, expr in [
                ("/Appointment", dict(appt, status="proposed"), 422, "Appointment.status"),
                ("/Appointment", {k: v for k, v in appt.items() if k != "end"}, 400,
                 "Appointment.end"),
                ("/Communication", dict(first, payload=[{"contentAttachment": {}}]), 400,
                 "Communication.payload[0].contentAttachment"),
                ("/Task", dict(task, focus={"reference": "MedicationRequest/none"}), 422,
                 "Task.focus.reference")]:
            r, oo = self.call("POST", path, body)
            self.assertEqual(r.status, status, "%s: %s" % (expr, oo))
            self.assertEqual(oo["issue"][0]["expression"], [expr], oo)
        self.assertNothingWritten(size)

    def test_document_reference_round_trip(self):
        pid = self.new_patient("Note")
        subj = {"reference": "Patient/" + pid}
        text = "Seen for follow-up. BP 128/82. Continue lisinopril.\n"
        note = {
            "resourceType": "DocumentReference",
            "extension": [{"url": "http://hl7.org/fhir/5.0/StructureDefinition/"
                                  "extension-DocumentReference.attester",
                           "extension": [
                               {"url": "mode", "valueCodeableConcept": {"coding": [{
                                   "system": "http://hl7.org/fhir/composition-attestation-mode",
                                   "code": "professional", "display": "Professional"}]}},
                               {"url": "party",
                                "valueReference": {"reference": "Practitioner/dr-cosign"}}]}],
            "masterIdentifier": {"system": "urn:oid:2.16.840.1.113883.19.5", "value": "D-" + pid},
            "identifier": [{"system": "urn:clinlog:id", "value": "note-" + pid}],
            "status": "current", "docStatus": "final",
            "type": {"coding": [{"system": LOINC, "code": "11506-3",
                                 "display": "Progress note"}]},
            "subject": subj, "date": "2026-05-03T16:00:00Z",
            "author": [{"reference": "Practitioner/dr-lee", "display": "Dr Lee"}],
            "authenticator": {"reference": "Practitioner/dr-lee", "display": "Dr Lee"},
            "description": "Follow-up visit",
            "content": [{"attachment": {
                "contentType": "text/plain", "language": "en-US",
                "data": base64.b64encode(text.encode()).decode(), "title": "Follow-up visit"}}],
            "context": {"period": {"start": "2026-05-03T15:00:00Z",
                                   "end": "2026-05-03T15:30:00Z"}}}
        size = self.client.tree_size()
        back = self.round_trip(note)
        self.assertEqual(self.client.tree_size(), size + 1)
        self.assertEqual(base64.b64decode(back["content"][0]["attachment"]["data"]).decode(), text)
        self.validate([back])
        bad = copy.deepcopy(note)
        bad["content"][0]["attachment"]["data"] = "not base64!"
        r, oo = self.call("POST", "/DocumentReference", bad)
        self.assertEqual(r.status, 400, oo)
        self.assertEqual(oo["issue"][0]["expression"],
                         ["DocumentReference.content[0].attachment.data"])
        self.assertNothingWritten(size + 1)

    def test_device_round_trip(self):
        pid = self.new_patient("Device")
        mdc = "urn:iso:std:iso:11073:10101"
        dev = {"resourceType": "Device",
               "extension": [{"url": "https://clinlog.dev/fhir/StructureDefinition/"
                                     "device-assigned-at",
                              "valueDateTime": "2026-05-01T10:00:00Z"}],
               "identifier": [{"system": "urn:clinlog:id", "value": "cuff-" + pid}],
               "udiCarrier": [{"deviceIdentifier": "00643169007222",
                               "issuer": "http://hl7.org/fhir/NamingSystem/gs1-di",
                               "carrierHRF": "(01)00643169007222(17)270101(10)A1"}],
               "status": "active", "manufacturer": "Acme Medical", "serialNumber": "SN-" + pid,
               "modelNumber": "BP-700",
               "type": {"coding": [{"system": mdc, "code": "528391",
                                    "display": "MDC_DEV_SYS_PM_BP"}]},
               "version": [{"type": {"coding": [{"system": mdc, "code": "531976",
                                                 "display": "MDC_ID_PROD_SPEC_FW"}]},
                            "value": "2.1.0"}],
               "patient": {"reference": "Patient/" + pid}}
        size = self.client.tree_size()
        back = self.round_trip(dev)
        self.assertEqual(self.client.tree_size(), size + 1)
        self.validate([back])
        r, oo = self.call("POST", "/Device", {k: v for k, v in dev.items() if k != "patient"})
        self.assertEqual(r.status, 400, oo)
        self.assertEqual(oo["issue"][0]["expression"], ["Device.patient"])
        self.assertNothingWritten(size + 1)

    def test_imaging_study_round_trip(self):
        pid = self.new_patient("Imaging")
        uid = "1.2.826.0.1.3680043.8.498.%d" % (sum(map(ord, pid)) % 10**6)
        dcm = "http://dicom.nema.org/resources/ontology/DCM"
        study = {
            "resourceType": "ImagingStudy",
            "identifier": [{"system": "urn:clinlog:id", "value": uid},
                           {"system": "urn:dicom:uid", "value": "urn:oid:" + uid},
                           {"type": {"coding": [{"system": V2_0203, "code": "ACSN",
                                                 "display": "Accession ID"}]},
                            "value": "ACC-" + pid[:8]}],
            "status": "available", "modality": [{"system": dcm, "code": "CT"}],
            "subject": {"reference": "Patient/" + pid}, "started": "2026-05-04T10:00:00Z",
            "basedOn": [{"type": "ServiceRequest", "identifier": {
                "type": {"coding": [{"system": V2_0203, "code": "ACSN",
                                     "display": "Accession ID"}]},
                "value": "ACC-" + pid[:8]}}],
            "numberOfSeries": 1, "numberOfInstances": 1, "description": "CT chest",
            "series": [{"uid": uid + ".1", "number": 1, "modality": {"system": dcm, "code": "CT"},
                        "numberOfInstances": 1,
                        "instance": [{"uid": uid + ".1.1", "number": 1, "sopClass": {
                            "system": "urn:ietf:rfc:3986",
                            "code": "urn:oid:1.2.840.10008.5.1.4.1.1.2"}}]}]}
        size = self.client.tree_size()
        back = self.round_trip(study)
        self.assertEqual(self.client.tree_size(), size + 1)
        self.validate([back])
        bad = copy.deepcopy(study)
        bad["series"][0]["instance"][0]["sopClass"]["system"] = "urn:x"
        r, oo = self.call("POST", "/ImagingStudy", bad)
        self.assertEqual(r.status, 400, oo)
        self.assertEqual(oo["issue"][0]["expression"],
                         ["ImagingStudy.series[0].instance[0].sopClass"])
        self.assertNothingWritten(size + 1)

    def test_charge_item_round_trip(self):
        pid = self.new_patient("Charge")
        ext = "https://clinlog.dev/fhir/StructureDefinition/"
        x12 = "https://codesystem.x12.org/005010/355"
        charge = {
            "resourceType": "ChargeItem",
            "extension": [{"url": ext + "procedure-modifier", "valueCoding": {
                "system": "http://www.ama-assn.org/go/cpt", "code": "25"}},
                {"url": ext + "place-of-service", "valueCoding": {
                    "system": "https://www.cms.gov/Medicare/Coding/place-of-service-codes/"
                              "Place_of_Service_Code_Set", "code": "11"}}],
            "identifier": [{"system": "urn:clinlog:id", "value": "chg-" + pid}],
            "status": "billable",
            "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "99213"}]},
            "subject": {"reference": "Patient/" + pid}, "occurrenceDateTime": "2026-05-05",
            "performer": [{"actor": {"reference": "Practitioner/dr-lee"}}],
            "quantity": {"value": 1, "unit": "Unit", "system": x12, "code": "UN"},
            "priceOverride": {"value": 125.5, "currency": "USD"},
            "enteredDate": "2026-05-05T17:00:00Z",
            "reason": [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm",
                                    "code": "I10"}]}]}
        size = self.client.tree_size()
        # 125.5 USD: two decimals are the amount as the views write it
        r, oo = self.call("POST", "/ChargeItem", charge)
        self.assertEqual(r.status, 400, oo)
        self.assertEqual(oo["issue"][0]["expression"], ["ChargeItem.priceOverride.value"])
        self.assertNothingWritten(size)
        body = json.dumps(charge).replace('"value": 125.5', '"value": 125.50')
        r, got = self.call("POST", "/ChargeItem", body)
        self.assertEqual(r.status, 201, got)
        st, back = common.fhir_get(self.http_port, "/ChargeItem/" + got["id"])
        self.assertEqual(st, 200, back)
        self.assertEqual(fw.strip_meta(back), dict(charge, id=got["id"]))
        self.assertEqual(self.client.tree_size(), size + 1)
        self.validate([back])

    def test_claim_and_response_round_trip(self):
        pid = self.new_patient("Claims")
        size = self.client.tree_size()
        cov = self.round_trip(fc.coverage(pid, pid))
        chg = self.round_trip(fc.charge(pid, pid))
        claim = fc.claim(pid, pid, "Coverage/" + cov["id"])
        # a line other than its ChargeItem: refused where it differs
        bad = copy.deepcopy(claim)
        bad["item"][0]["productOrService"]["coding"][0]["code"] = "99214"
        r, oo = self.call("POST", "/Claim", bad)
        self.assertEqual(r.status, 422, oo)
        self.assertEqual(oo["issue"][0]["expression"],
                         ["Claim.item[0].productOrService.coding[0].code"])
        # the member of a Coverage the views do not hold: named
        bad = fc.claim(pid, pid, "Coverage/unknown")
        r, oo = self.call("POST", "/Claim", bad)
        self.assertEqual(r.status, 422, oo)
        self.assertEqual(oo["issue"][0]["expression"],
                         ["Claim.insurance[0].coverage.reference"])
        self.assertNothingWritten(size + 2)
        clm = self.round_trip(claim)
        resp = fc.claim_response(pid, pid, "Claim/" + clm["id"], "Coverage/" + cov["id"])
        bad = dict(resp, outcome="queued")
        r, oo = self.call("POST", "/ClaimResponse", bad)
        self.assertEqual(r.status, 422, oo)
        self.assertEqual(oo["issue"][0]["expression"], ["ClaimResponse.outcome"])
        back = self.round_trip(resp)
        self.assertEqual(self.client.tree_size(), size + 4)
        # the same write again: nothing new
        r, again = self.call("POST", "/ClaimResponse", resp)
        self.assertIn(r.status, (200, 201), again)
        self.assertEqual(self.client.tree_size(), size + 4)
        self.validate([cov, chg, clm, back])
        # the four in one transaction Bundle, referencing each other by fullUrl
        pid2 = self.new_patient("ClaimsBundle")
        size = self.client.tree_size()
        r, b = self.call("POST", "", fc.bundle(pid2, pid2))
        self.assertEqual(r.status, 200, b)
        self.assertEqual(self.client.tree_size(), size + 4)
        st, c = common.fhir_get(self.http_port, "/Claim?patient=" + pid2)
        self.assertEqual((st, c.get("total")), (200, 1), c)

    def test_eligibility_pair_round_trip(self):
        """A CoverageEligibilityResponse with its Request in one Bundle (batch
        and transaction, either order) is one EligibilityChecked: each
        entry's response is the resource the views made, which reads back as
        written; a Request alone, a Response whose Request is nowhere and a
        Request two Responses take are refused by path, nothing written; a
        Response alone (POST, PUT, PATCH) updates a check the server holds,
        its Request as it was."""
        pid = self.new_patient("Eligibility")
        cov = self.round_trip(fc.coverage(pid, pid))
        cref = "Coverage/" + cov["id"]
        size = self.client.tree_size()
        req, resp = fc.eligibility(pid, pid, cref, "urn:uuid:x")
        # refusals: nothing written
        r, oo = self.call("POST", "/CoverageEligibilityRequest", req)
        self.assertEqual(r.status, 422, oo)
        self.assertEqual(oo["issue"][0]["expression"], ["CoverageEligibilityRequest"])
        self.assertIn("with its CoverageEligibilityResponse", oo["issue"][0]["details"]["text"])
        r, oo = self.call("POST", "/CoverageEligibilityResponse", resp)
        self.assertEqual(r.status, 422, oo)
        self.assertEqual(oo["issue"][0]["expression"],
                         ["CoverageEligibilityResponse.request.reference"])
        tx = fc.eligibility_bundle(pid, pid, "transaction", cref)
        two = copy.deepcopy(tx)
        two["entry"].append(copy.deepcopy(two["entry"][0]))
        r, oo = self.call("POST", "", two)
        self.assertEqual(r.status, 422, oo)
        self.assertEqual(oo["issue"][0]["expression"], ["Bundle.entry[2].resource.request"])
        bad = copy.deepcopy(tx)
        bad["entry"][1]["resource"]["item"][0]["productOrService"] = {"text": "x"}
        r, oo = self.call("POST", "", bad)
        self.assertEqual(r.status, 400, oo)
        self.assertEqual(oo["issue"][0]["expression"],
                         ["Bundle.entry[0].resource.request.resolve().item[0].productOrService"])
        self.assertNothingWritten(size)
        # the pair in a transaction: one event, each entry the resource the views made
        r, b = self.call("POST", "", tx)
        self.assertEqual(r.status, 200, b)
        self.assertEqual(self.client.tree_size(), size + 1, "one EligibilityChecked")
        self.assertEqual([e["response"]["status"] for e in b["entry"]], ["201 Created"] * 2)
        loc = [e["response"]["location"].split("/_history")[0].split("/R4/")[-1]
               for e in b["entry"]]
        self.assertTrue(loc[0].startswith("CoverageEligibilityResponse/"), loc)
        self.assertTrue(loc[1].startswith("CoverageEligibilityRequest/"), loc)
        st, rb = common.fhir_get(self.http_port, "/" + loc[0])
        self.assertEqual(st, 200, rb)
        st, qb = common.fhir_get(self.http_port, "/" + loc[1])
        self.assertEqual(st, 200, qb)
        qid = loc[1].split("/")[1]
        self.assertEqual(fw.strip_meta(rb), dict(resp, id=loc[0].split("/")[1],
                                                 request={"reference": loc[1]}))
        self.assertEqual(fw.strip_meta(qb), dict(req, id=qid))
        # again, as a batch with the Request first: the same event, nothing new
        bt = fc.eligibility_bundle(pid, pid, "batch", cref)
        bt["entry"].reverse()
        r, b2 = self.call("POST", "", bt)
        self.assertEqual(r.status, 200, b2)
        self.assertEqual([e["response"]["status"] for e in b2["entry"]], ["200 OK"] * 2, b2)
        self.assertEqual(self.client.tree_size(), size + 1)
        # a Response alone: a new version of the check the server holds
        upd = dict(resp, request={"reference": loc[1]}, disposition="Active coverage (corrected)")
        r, got = self.call("POST", "/CoverageEligibilityResponse", upd)
        self.assertIn(r.status, (200, 201), got)
        self.assertEqual(got["disposition"], "Active coverage (corrected)")
        self.assertEqual(self.client.tree_size(), size + 2)
        # ... and a PUT and a PATCH of it
        r, got = self.call("PUT", "/" + loc[0], dict(upd, id=loc[0].split("/")[1],
                                                     disposition="Active coverage (PUT)"))
        self.assertEqual(r.status, 200, got)
        self.assertEqual(got["disposition"], "Active coverage (PUT)")
        r, got = self.call("PATCH", "/" + loc[0], json.dumps(
            [{"op": "replace", "path": "/disposition", "value": "Active coverage (PATCH)"}]),
            {"Content-Type": "application/json-patch+json"})
        self.assertEqual(r.status, 200, got)
        self.assertEqual(got["disposition"], "Active coverage (PATCH)")
        self.assertEqual(self.client.tree_size(), size + 4)
        st, qb2 = common.fhir_get(self.http_port, "/" + loc[1])
        self.assertEqual(fw.strip_meta(qb2), fw.strip_meta(qb), "the Request as it was")
        self.validate([cov, rb, qb, got])

    def test_stopping_a_prescription(self):
        pid = self.new_patient("Stop")
        rx = {"resourceType": "MedicationRequest",
              "identifier": [{"system": "urn:clinlog:id", "value": "rx-stop-" + pid}],
              "status": "active", "intent": "order",
              "medicationCodeableConcept": {"coding": [{
                  "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "197361",
                  "display": "amlodipine 5 MG Oral Tablet"}]},
              "subject": {"reference": "Patient/" + pid}, "authoredOn": "2026-01-05T10:00:00Z",
              "substitution": {"allowedBoolean": True}}
        r, got = self.call("POST", "/MedicationRequest", rx)
        self.assertEqual(r.status, 201, got)
        size = self.client.tree_size()
        stop = dict(rx, id=got["id"], status="stopped",
                    statusReason={"text": "ankle swelling"},
                    note=[{"authorReference": {"reference": "Practitioner/dr-lee"},
                           "time": "2026-02-01T09:00:00Z",
                           "text": "Discontinued: ankle swelling"}])
        r, upd = self.call("PUT", "/MedicationRequest/" + got["id"], stop)
        self.assertEqual(r.status, 200, upd)
        self.assertEqual(self.client.tree_size(), size + 2, "the prescription and its stop")
        st, back = common.fhir_get(self.http_port, "/MedicationRequest/" + got["id"])
        self.assertEqual(fw.strip_meta(back), stop)
        self.validate([back])
        st, b = common.fhir_get(self.http_port,
                                "/MedicationRequest?patient=%s&status=active" % pid)
        self.assertEqual(b["total"], 0, "no longer active")
        bad = dict(stop, note=[{"time": "2026-02-01T09:00:00Z", "text": "stopped"}])
        r, oo = self.call("PUT", "/MedicationRequest/" + got["id"], bad)
        self.assertEqual(r.status, 422, oo)
        self.assertEqual(oo["issue"][0]["expression"], ["MedicationRequest.note[0]"])
        self.assertNothingWritten(size + 2)


class TestFhirWriteTypesAuth(cond.TestFhirWriteAuth):
    """With --auth required, the types added here are checked on their own
    event types (adapters/http/http_fhirw.c kinds_of), as the first ten are."""
    test_who_may_write = None  # test_fhir_write_cond.py runs that one

    def test_each_type_needs_its_event_types(self):
        r, p = self.call("feed", "POST", "/Patient", fw.patient(family="AuthTypes"))
        self.assertEqual(r.status, 201, p)
        pid = p["id"]
        size = self.size()
        report = bmp_report(pid, "bmp-auth")
        charge = {"resourceType": "ChargeItem", "status": "billable",
                  "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt",
                                       "code": "99213"}]},
                  "subject": {"reference": "Patient/" + pid}}
        appt = {"resourceType": "Appointment", "status": "booked",
                "start": "2026-06-01T09:00:00Z", "end": "2026-06-01T09:20:00Z",
                "participant": [{"actor": {"reference": "Patient/" + pid},
                                 "status": "accepted"}]}
        for who, body, event in (("nurse1", report, "LabResultReported"),
                                 ("nurse1", charge, "ChargeCaptured"),
                                 ("nurse1", appt, "AppointmentBooked"),
                                 ("biller", report, "LabResultReported")):
            r, oo = self.call(who, "POST", "/" + body["resourceType"], body)
            self.assertEqual(r.status, 403, (who, oo))
            self.assertIn(event, json.dumps(oo), who)
        self.assertEqual(self.size(), size, "a refused write appended")
        for who, body in (("dr1", report), ("biller", charge), ("feed", appt)):
            r, got = self.call(who, "POST", "/" + body["resourceType"], body)
            self.assertEqual(r.status, 201, (who, got))
        self.assertEqual(self.size(), size + 3)

"""clinlog.v1.Fhir (the `fhir` projection's views, query/fhir), checked by an
independent client: events written over gRPC come back as FHIR R4 JSON with
read-your-writes, vread, history, search and $everything; and the proof
chain end to end — from a resource to its Provenance, from the Provenance's
log coordinates to an RFC 9162 inclusion proof verified here against a
checkpoint whose Ed25519 signature is verified here, and to the very event
bytes whose hash the Provenance names."""
import base64
import hashlib
import json
import uuid

import grpc
import nacl.signing

import common
from common import T, ServerTestCase, batch, leaf_hash, new_id, verify_inclusion, verify_note


def patient_events(pid):
    """A registration and an encounter that starts and ends."""
    out = []
    ev = common.pb.event.Event(event_id=new_id(), stream="patient-" + pid,
                               occurred_at=common.timestamp_now(), source_system="INTEROP",
                               source_message_id="MSG-" + pid)
    ev.recorded_by.principal_id = "admin"
    ev.recorded_by.role = "registrar"
    r = ev.patient_registered
    r.patient_id = pid
    n = r.names.add()
    n.family = "Interop"
    n.given.append("Ada")
    r.birth_date = "1970-05-06"
    r.gender = common.pb.types.ADMINISTRATIVE_GENDER_FEMALE
    i = r.identifiers.add()
    i.system = "urn:oid:1.2.3.4"
    i.value = "MRN-" + pid
    i.type = "MR"
    out.append(ev.SerializeToString())
    for kind in ("start", "end"):
        ev = common.pb.event.Event(event_id=new_id(), stream="patient-" + pid,
                                   occurred_at=common.timestamp_now(), source_system="INTEROP")
        ev.recorded_by.principal_id = "admin"
        ev.recorded_by.role = "registrar"
        if kind == "start":
            e = ev.encounter_started
            e.encounter_id = "enc-1"
            e.encounter_class.system = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
            e.encounter_class.code = "AMB"
            e.start.seconds = 1790000000
        else:
            e = ev.encounter_ended
            e.encounter_id = "enc-1"
            e.end.seconds = 1790003600
        out.append(ev.SerializeToString())
    return out


class TestFhir(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        ch, f = cls.client.channel, common.pb.fhir
        F = "/clinlog.v1.Fhir/"
        cls.read = ch.unary_unary(F + "Read", f.FhirReadRequest.SerializeToString,
                                  f.FhirResponse.FromString)
        cls.history = ch.unary_unary(F + "History", f.FhirHistoryRequest.SerializeToString,
                                     f.FhirResponse.FromString)
        cls.search = ch.unary_unary(F + "Search", f.FhirSearchRequest.SerializeToString,
                                    f.FhirResponse.FromString)
        cls.everything = ch.unary_unary(F + "Everything",
                                        f.FhirEverythingRequest.SerializeToString,
                                        f.FhirResponse.FromString)
        cls.caps = ch.unary_unary(F + "Capabilities",
                                  f.FhirCapabilitiesRequest.SerializeToString,
                                  f.FhirResponse.FromString)

    def ryw(self, head):
        c = common.pb.api.Consistency(min_sequence=head)
        return c

    def test_views_and_the_proof_of_a_value(self):
        pid = "IOP" + uuid.uuid4().hex[:8]
        evs = patient_events(pid)
        r = self.append_events(evs)
        head = r.tree_size
        f = common.pb.fhir

        # read-your-writes: the Patient as FHIR JSON, two Encounter versions
        resp = self.read(f.FhirReadRequest(type="Patient", id=pid, consistency=self.ryw(head)),
                         timeout=T(15))
        p = json.loads(resp.json)
        self.assertEqual(p["resourceType"], "Patient")
        self.assertEqual(p["id"], pid)
        self.assertEqual(p["name"][0]["family"], "Interop")
        self.assertEqual(p["birthDate"], "1970-05-06")
        self.assertEqual(p["meta"]["versionId"], "1")
        self.assertEqual(resp.version_id, 1)
        self.assertGreater(resp.last_updated.seconds, 0)
        b = json.loads(self.search(f.FhirSearchRequest(
            type="Encounter", params=[f.FhirParam(name="patient", value=pid)]),
            timeout=T(15)).json)
        self.assertEqual(b["total"], 1)
        enc = b["entry"][0]["resource"]
        self.assertEqual(enc["status"], "finished")
        self.assertEqual(enc["meta"]["versionId"], "2")
        v1 = json.loads(self.read(f.FhirReadRequest(type="Encounter", id=enc["id"], version_id=1),
                                  timeout=T(15)).json)
        self.assertEqual(v1["status"], "in-progress")
        h = json.loads(self.history(f.FhirHistoryRequest(type="Encounter", id=enc["id"]),
                                    timeout=T(15)).json)
        self.assertEqual(h["type"], "history")
        self.assertEqual([e["resource"]["meta"]["versionId"] for e in h["entry"]], ["2", "1"])

        # search by identifier and a chain; $everything
        b = json.loads(self.search(f.FhirSearchRequest(type="Patient", params=[
            f.FhirParam(name="identifier", value="urn:oid:1.2.3.4|MRN-" + pid)]),
            timeout=T(15)).json)
        self.assertEqual([e["resource"]["id"] for e in b["entry"]], [pid])
        b = json.loads(self.search(f.FhirSearchRequest(type="Encounter", params=[
            f.FhirParam(name="subject:Patient.identifier", value="MRN-" + pid)]),
            timeout=T(15)).json)
        self.assertEqual(b["total"], 1)
        b = json.loads(self.everything(f.FhirEverythingRequest(patient_id=pid), timeout=T(15)).json)
        types = sorted(e["resource"]["resourceType"] for e in b["entry"])
        self.assertEqual(types, ["Encounter", "Patient", "Provenance", "Provenance", "Provenance"])

        # errors name what was wrong
        with self.assertRaises(grpc.RpcError) as cm:
            self.read(f.FhirReadRequest(type="Patient", id="nobody-" + pid), timeout=T(15))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
        with self.assertRaises(grpc.RpcError) as cm:
            self.search(f.FhirSearchRequest(type="Encounter", strict=True, params=[
                f.FhirParam(name="shoe-size", value="42")]), timeout=T(15))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("shoe-size", cm.exception.details())
        with self.assertRaises(grpc.RpcError) as cm:
            self.search(f.FhirSearchRequest(type="Encounter", params=[
                f.FhirParam(name="date", value="2026-13")]), timeout=T(15))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

        # the proof of the Encounter's end: Provenance -> seq -> inclusion
        # proof -> signed checkpoint, and the event bytes it names
        b = json.loads(self.search(f.FhirSearchRequest(type="Encounter", params=[
            f.FhirParam(name="_id", value=enc["id"]),
            f.FhirParam(name="_revinclude", value="Provenance:target")]), timeout=T(15)).json)
        provs = [e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == "Provenance"]
        self.assertEqual(len(provs), 2)
        prov = [p for p in provs if p["target"][0]["reference"].endswith("/_history/2")][0]
        coords = {x["url"]: x for x in prov["entity"][0]["extension"][0]["extension"]}
        seq = int(coords["seq"]["valueString"])
        event_hash = base64.b64decode(coords["eventHash"]["valueBase64Binary"])
        self.assertEqual(seq, head, "the end was the last event written")
        cp = self.client.checkpoint(fresh=True)
        _, size, root = verify_note(cp.note, cp.log_public_key)
        proof = self.client.prove_inclusion(seq, size)
        self.assertEqual(proof.leaf_hash, leaf_hash(proof.record))
        self.assertTrue(verify_inclusion(proof.leaf_index, proof.tree_size, proof.leaf_hash,
                                         list(proof.hashes), root))
        rec = common.pb.record.Record()
        rec.ParseFromString(proof.record)
        self.assertEqual(rec.seq, seq)
        self.assertEqual(rec.event_hash, event_hash, "the Provenance names the proven record")
        self.assertEqual(hashlib.sha256(evs[2]).digest(), event_hash,
                         "and the record holds the exact event this client signed")
        uid = uuid.UUID(prov["id"])
        self.assertEqual(uid.bytes, common.event_id_of(evs[2]))
        # the writer's signature travels with the Provenance (docs/format.md:
        # Ed25519 over "clinlog-event-v1" 0x00 || SHA-256(event)), with its key
        sig = prov["signature"][0]
        key_id = base64.b64decode(sig["extension"][0]["valueBase64Binary"])
        self.assertEqual(key_id, self.admin.pk)
        nacl.signing.VerifyKey(key_id).verify(b"clinlog-event-v1\x00" + event_hash,
                                              base64.b64decode(sig["data"]))

        caps = json.loads(self.caps(f.FhirCapabilitiesRequest(), timeout=T(15)).json)
        self.assertEqual(caps["fhirVersion"], "4.0.1")

    def test_the_cli(self):
        import subprocess
        pid = "CLI" + uuid.uuid4().hex[:8]
        evs = patient_events(pid)
        for i in range(4):
            ev = common.pb.event.Event(event_id=new_id(), stream="patient-" + pid,
                                       occurred_at=common.timestamp_now())
            ev.recorded_by.principal_id = "admin"
            e = ev.encounter_started
            e.encounter_id = "cli-%d" % i
            e.encounter_class.code = "AMB"
            e.start.seconds = 1790000000 + 3600 * i
            evs.append(ev.SerializeToString())
        head = self.append_events(evs).tree_size
        base = [common.CLINLOG, "fhir", "--server", self.server.addr, "--plaintext"]

        def run(*args):
            return subprocess.run(base + list(args), capture_output=True, text=True,
                                  timeout=T(30))

        r = run("read", "Patient", pid, "--min-seq", str(head))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["id"], pid)
        r = run("search", "Encounter", "patient=" + pid, "_count=2", "_sort=date", "--all")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = [json.loads(x) for x in r.stdout.splitlines()]
        self.assertEqual(len(lines), 5, "every page followed")
        self.assertEqual(len({x["id"] for x in lines}), 5)
        r = run("search", "Encounter", "patient=" + pid, "class=AMB", "--json")
        b = json.loads(r.stdout)
        self.assertEqual((b["resourceType"], b["total"]), ("Bundle", 5))
        r = run("everything", pid, "_type=Encounter")
        self.assertIn("total 5", r.stdout)
        r = run("read", "Patient", "nobody-" + pid)
        self.assertEqual(r.returncode, 1)
        self.assertIn("NOT_FOUND", r.stderr)
        r = run("search", "Encounter", "no-equals-sign")
        self.assertEqual(r.returncode, 2)

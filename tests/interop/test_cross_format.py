"""One patient arriving through three front doors ends up as one patient's
consistent views (issue 12, "Cross-format"): an HL7 v2 ADT^A01 from the
registration system (`clinlog ingest hl7`, signed by the HL7 feed's key),
then a FHIR Observation POSTed to the REST face by an integration (a
gateway logged in with password and TOTP), then home blood-pressure
readings as JSON lines (POST /device/readings) from a cuff registered to
the patient. Every resource of Patient/$everything refers to the one
Patient the ADT made (its id derived from PID-3's MR identifier and its
assigning authority), the FHIR write's and the device's Observations sit
beside the ADT's Encounter, allergy and diagnosis, the ingest of the same
ADT again writes nothing, and the whole record passes the independent FHIR
validator."""
import datetime
import http.client
import json
import os
import subprocess
import tempfile
import uuid

import common
from common import T, Server, ServerTestCase, Signer
from test_auth import bootstrap, login_all, registration
from test_device_ingest import device_registered
from test_fhir_write import heart_rate, http_call, validate, wait_views

PASSWORDS = {"gw1": "gateway pass phrase 9"}
ADT = ("MSH|^~\\&|EPIC|STMARYS|CLINLOG|HOSP|20261204083000-0500||ADT^A01^ADT_A01|{ctl}|P|2.5.1"
       "|||AL|NE||UNICODE UTF-8\r"
       "EVN|A01|20261204082900-0500\r"
       "PID|1||{mrn}^^^STMARYS^MR||O'Brien^Mary^Anne||19600315|F|||12 Main St^^Springfield^IL"
       "^62701^USA^H\r"
       "PV1|1|I|4WEST^412^B^STMARYS||||1234^Welby^Marcus^^^Dr.|||MED||||||||IN|VN{mrn}^^^"
       "STMARYS^VN|||||||||||||||||||||||||20261204082900\r"
       "AL1|1|DA|70618^Penicillin^RXNORM|SV|Hives\r"
       "DG1|1||I10^Essential (primary) hypertension^I10C||20261204|A\r")


def ago(hours):
    t = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=hours)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class TestCrossFormat(ServerTestCase):
    audit = False

    @classmethod
    def setUpClass(cls):
        data = common.init_data_dir()
        cls.secrets = bootstrap(data, [registration("gw1", "integration")], PASSWORDS)
        cls.http_port = common.free_port()
        cls.server = Server(data_dir=data, args=["--http-listen", "127.0.0.1:%d" % cls.http_port],
                            audit=False)
        cls.server.start()
        cls.client = common.Client(cls.server.addr)
        cls.admin = Signer.load(os.path.join(data, "keys", "admin.key"))
        cls.token = login_all(cls.client, PASSWORDS, cls.secrets, ["gw1"])["gw1"]
        cls.key = os.path.join(common.TMP, "xfmt-feed-%d.key" % os.getpid())
        r = subprocess.run([common.CLINLOG, "keygen", cls.key], capture_output=True, text=True,
                           timeout=T(30))
        assert r.returncode == 0, r.stderr
        common.register_feed(cls.client, cls.admin, "adt-feed", "Registration system",
                             Signer.load(cls.key).pk)

    def ingest_adt(self, text):
        with tempfile.NamedTemporaryFile("w", suffix=".hl7", dir=common.TMP, delete=False) as f:
            f.write(text)
        r = subprocess.run([common.CLINLOG, "ingest", "hl7", f.name, "--server", self.server.addr,
                            "--plaintext", "--key", self.key, "--json"],
                           capture_output=True, text=True, timeout=T(60))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return json.loads(r.stdout)

    def test_hl7_then_fhir_then_device(self):
        mrn = "X" + uuid.uuid4().hex[:8].upper()
        pid = "STMARYS-" + mrn
        adt = ADT.format(ctl="XF" + mrn, mrn=mrn)

        # 1. the registration system's ADT^A01
        out = self.ingest_adt(adt)
        self.assertEqual(out["accepted"], 1, out)
        wait_views(self.http_port, self.client, pid)
        st, p = common.fhir_get(self.http_port, "/Patient/" + pid)
        self.assertEqual(st, 200, p)
        self.assertEqual(p["name"][0]["family"], "O'Brien")
        self.assertIn(mrn, [i.get("value") for i in p["identifier"]])

        # 2. an integration POSTs a FHIR Observation for the same patient
        auth = {"Authorization": "Bearer " + self.token}
        r, o = http_call(self.http_port, "POST", "/Observation", heart_rate(pid, 88), auth)
        self.assertEqual(r.status, 201, o)
        self.assertEqual(o["subject"]["reference"], "Patient/" + pid)

        # 3. a home cuff registered to the patient sends two readings
        cuff = "cuff-" + mrn.lower()
        self.append_events([device_registered(cuff, pid, "gw1")])
        lines = "\n".join(json.dumps(
            {"device": cuff, "patient": pid, "reading": str(i), "time": t,
             "code": "85354-9", "components": [
                 {"code": "8480-6", "value": s, "unit": "mm[Hg]"},
                 {"code": "8462-4", "value": d, "unit": "mm[Hg]"}]})
            for i, (t, s, d) in enumerate(((ago(2), 142, 91), (ago(1), 138, 88))))
        c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=T(30))
        c.request("POST", "/device/readings", body=lines.encode(),
                  headers=dict(auth, **{"Content-Type": "application/x-ndjson"}))
        resp = c.getresponse()
        body = json.loads(resp.read())
        c.close()
        self.assertEqual((resp.status, body["accepted"], body["refused"]), (200, 2, 0), body)

        # the same ADT again: a duplicate, nothing written
        size = self.client.tree_size()
        out = self.ingest_adt(adt)
        self.assertEqual(out["duplicates"], 1, out)
        self.assertEqual(self.client.tree_size(), size)

        # one patient's record: every resource refers to Patient/<pid>
        wait_views(self.http_port, self.client, pid)
        st, b = common.fhir_get(self.http_port, "/Patient/%s/$everything?_count=1000" % pid)
        self.assertEqual(st, 200, b)
        res = [e["resource"] for e in b["entry"] if e["resource"]["resourceType"] != "Provenance"]
        kinds = sorted(r["resourceType"] for r in res)
        for k in ("Patient", "Encounter", "AllergyIntolerance", "Condition", "Device"):
            self.assertIn(k, kinds)
        obs = [r for r in res if r["resourceType"] == "Observation"]
        codes = sorted(r["code"]["coding"][0]["code"] for r in obs)
        self.assertEqual(codes, ["85354-9", "85354-9", "8867-4"])
        self.assertEqual(kinds.count("Patient"), 1)
        for r in res:
            if r["resourceType"] == "Patient":
                self.assertEqual(r["id"], pid)
                continue
            ref = (r.get("subject") or r.get("patient") or {}).get("reference")
            self.assertEqual(ref, "Patient/" + pid, r["resourceType"])
        bp = sorted((r for r in obs if r["code"]["coding"][0]["code"] == "85354-9"),
                    key=lambda r: r["effectiveDateTime"])
        self.assertEqual([r["device"]["reference"].split("/")[0] for r in bp], ["Device"] * 2)
        self.assertEqual([c["valueQuantity"]["value"] for c in bp[0]["component"]], [142, 91])

        path = os.path.join(common.TMP, "xfmt-%s.json" % mrn)
        with open(path, "w") as f:
            json.dump(res, f)
        ok, log = validate([path])
        self.assertTrue(ok, log)

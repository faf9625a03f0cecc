"""Home-device feeds end to end (docs/adapters.md, "Home-device feeds"):
a clinlogd with the HTTP face and a knowledge base with a systolic
threshold; a device principal (role device) and a gateway (role
integration) enrolled before the server starts and logged in with
passwords and TOTP; devices registered by DeviceRegistered events.

Readings go in through the three front doors (the gRPC client stream
clinlog.v1.Devices/SubmitReadings from Python's grpcio, POST
/device/readings as JSON lines, `clinlog ingest readings`), and:
accepted readings are DeviceReadingRecorded / DeviceStatusReported events
in the patient's stream, recorded by the caller; every refusal names its
member and writes nothing (a unit that is not UCUM or not of the code's
dimension, a device time too far ahead, bad JSON, an unregistered device,
a device of another patient, a device another principal speaks for, a
caller that is not authenticated); a resend writes nothing (duplicates);
readings sent out of order are listed in measurement order by the FHIR
Observation search; and a high reading from a registered device raises the
decision-support projection's remote-monitoring alert. The server runs
with --device-max-skew-s 120."""
import datetime
import http.client
import importlib
import json
import os
import subprocess
import uuid

import grpc

import common
from common import T, Server, ServerTestCase, Signer
from test_auth import bootstrap, login_all, registration

LOINC = "http://loinc.org"
KB = """clinlog-kb 1
version test-device-1
source s Interop test thresholds
vital 8480-6 high 180 mm[Hg] high source=s Systolic above 180
"""
PASSWORDS = {"cuff1": "cuff pass phrase 1", "cuff2": "cuff pass phrase 2",
             "gw1": "gateway pass phrase 3"}


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def bp(device, patient, reading, when, sys_, dia, **extra):
    r = {"device": device, "patient": patient, "reading": reading, "time": iso(when),
         "code": "85354-9", "components": [
             {"code": "8480-6", "value": sys_, "unit": "mm[Hg]"},
             {"code": "8462-4", "value": dia, "unit": "mm[Hg]"}]}
    r.update(extra)
    return json.dumps(r)


def device_registered(device, patient, principal):
    ev = common.pb.event.Event(event_id=common.new_id(), stream="patient-" + patient,
                               occurred_at=common.timestamp_now(), source_system="INTEROP")
    ev.recorded_by.principal_id = "admin"
    ev.recorded_by.role = "admin"
    d = ev.device_registered
    d.device_id, d.patient_id, d.principal_id = device, patient, principal
    d.manufacturer, d.model = "Acme", "BP-100"
    return ev.SerializeToString()


class TestDeviceIngest(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        cls.dev = importlib.import_module("clinlog.v1.device_pb2")
        data = common.init_data_dir()
        regs = [registration(p, r) for p, r in
                (("cuff1", "device"), ("cuff2", "device"), ("gw1", "integration"))]
        cls.secrets = bootstrap(data, regs, PASSWORDS)
        cls.kb_path = os.path.join(common.TMP, "device-%s.kb" % uuid.uuid4().hex)
        with open(cls.kb_path, "w") as f:
            f.write(KB)
        cls.http_port = common.free_port()
        cls.server = Server(data_dir=data, args=["--http-listen", "127.0.0.1:%d" % cls.http_port,
                                                 "--cds-kb", cls.kb_path,
                                                 "--device-max-skew-s", "120"],
                            audit=False)  # so that the tree size says exactly what was written
        cls.server.start()
        cls.client = common.Client(cls.server.addr)
        cls.admin = Signer.load(os.path.join(data, "keys", "admin.key"))
        cls.tokens = login_all(cls.client, PASSWORDS, cls.secrets, ["cuff1", "cuff2", "gw1"])
        cls._submit = cls.client.channel.stream_unary(
            "/clinlog.v1.Devices/SubmitReadings",
            request_serializer=cls.dev.DeviceReadingBatch.SerializeToString,
            response_deserializer=cls.dev.DeviceReadingSummary.FromString)

    def setUp(self):
        tag = uuid.uuid4().hex[:6].upper()
        self.pid, self.other = "DEVP" + tag, "DEVQ" + tag
        self.cuff, self.cuff_b = "cuff-a-" + tag.lower(), "cuff-b-" + tag.lower()
        self.append_events([device_registered(self.cuff, self.pid, "cuff1"),
                            device_registered(self.cuff_b, self.other, "cuff1")])

    # the three doors

    def submit(self, batches, who="cuff1"):
        msgs = [self.dev.DeviceReadingBatch(readings=b) for b in batches]
        md = [("authorization", "Bearer " + self.tokens[who])] if who else []
        return self._submit(iter(msgs), metadata=md, timeout=T(60))

    def post(self, body, who="gw1", ctype="application/x-ndjson"):
        c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=T(30))
        headers = {"Content-Type": ctype}
        if who:
            headers["Authorization"] = "Bearer " + self.tokens[who]
        c.request("POST", "/device/readings", body=body.encode(), headers=headers)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, json.loads(data) if data else None

    def ingest(self, path, who="gw1", json_out=True):
        tok = os.path.join(common.TMP, "token-%s" % who)
        with open(tok, "w") as f:
            f.write(self.tokens[who])
        args = [common.CLINLOG, "ingest", "readings", path, "--server", self.server.addr,
                "--plaintext", "--token-file", tok] + (["--json"] if json_out else [])
        return subprocess.run(args, capture_output=True, text=True, timeout=T(60))

    def events(self, pid):
        return [common.pb.event.Event.FromString(x.event)
                for x in self.client.read(stream="patient-" + pid)]

    def readings(self, pid):
        return [e for e in self.events(pid)
                if e.WhichOneof("body") in ("device_reading_recorded", "device_status_reported")]

    # tests

    def test_1_grpc_stream_accepts_refuses_and_is_idempotent(self):
        t = now() - datetime.timedelta(hours=1)
        good = [bp(self.cuff, self.pid, "r1", t, 128, 82,
                   status={"battery": 80, "signal": -60, "connectivity": "online"}),
                bp(self.cuff, self.pid, "r2", t + datetime.timedelta(minutes=1), 130, 84)]
        bad = [
            json.dumps({"device": self.cuff, "patient": self.pid, "reading": "r3", "time": iso(t),
                        "code": "8867-4", "value": 70, "unit": "bpm"}),
            json.dumps({"device": self.cuff, "patient": self.pid, "reading": "r4", "time": iso(t),
                        "code": "8867-4", "value": 70, "unit": "kg"}),
            bp(self.cuff, self.pid, "r5", now() + datetime.timedelta(hours=1), 120, 80),
            '{"device": "%s", "patient": ' % self.cuff,
            bp("cuff-unknown", self.pid, "r6", t, 120, 80),
            bp(self.cuff_b, self.pid, "r7", t, 120, 80),
        ]
        before = self.client.tree_size()
        s = self.submit([good, bad])
        self.assertEqual((s.accepted, s.duplicates, s.refused, s.failed), (2, 0, 6, 0), s)
        self.assertEqual([o.status for o in s.outcomes], ["accepted"] * 2 + ["refused"] * 6)
        self.assertEqual([o.index for o in s.outcomes], list(range(8)))
        self.assertEqual([o.field for o in s.outcomes[2:]],
                         ["unit", "unit", "time", "", "device", "patient"])
        self.assertIn("not a UCUM unit", s.outcomes[2].reason)
        self.assertIn("is a unit of mass; code 8867-4 is measured as rate", s.outcomes[3].reason)
        self.assertIn("ahead of the receiver's clock", s.outcomes[4].reason)
        self.assertIn("not JSON", s.outcomes[5].reason)
        self.assertIn("not a registered device", s.outcomes[6].reason)
        self.assertIn("assigned to another patient", s.outcomes[7].reason)
        self.assertEqual(s.outcomes[6].error, "CL_EDENIED")
        self.assertEqual(s.outcomes[2].error, "CL_EMALFORMED")
        # exactly the accepted readings' events: 2 readings + 1 status
        self.assertEqual(self.client.tree_size() - before, 3)
        got = self.readings(self.pid)
        self.assertEqual([e.WhichOneof("body") for e in got],
                         ["device_reading_recorded", "device_status_reported",
                          "device_reading_recorded"])
        r = got[0].device_reading_recorded
        self.assertEqual((r.device_id, r.reading_id), (self.cuff, "r1"))
        self.assertEqual([(c.code.code, c.value.value, c.value.unit) for c in r.components],
                         [("8480-6", "128", "mm[Hg]"), ("8462-4", "82", "mm[Hg]")])
        self.assertEqual(got[0].recorded_by.principal_id, "$log")  # the node signs
        self.assertEqual(got[0].recorded_by.on_behalf_of, "cuff1")
        self.assertEqual(got[0].recorded_by.device_id, self.cuff)
        self.assertEqual(got[1].device_status_reported.battery.value, "80")
        self.assertEqual(self.readings(self.other), [], "nothing for the other patient")
        # the gateway resends the same readings: duplicates, nothing written
        head = self.client.tree_size()
        s2 = self.submit([good])
        self.assertEqual((s2.accepted, s2.duplicates), (0, 2), s2)
        self.assertEqual([o.seq for o in s2.outcomes], [o.seq for o in s.outcomes[:2]])
        self.assertNothingWritten(head)
        self.assertEqual(len(self.readings(self.pid)), 3)
        # a mix of sent and new readings: the new one is written, the rest duplicates
        new = bp(self.cuff, self.pid, "r8", t + datetime.timedelta(minutes=2), 125, 80)
        s3 = self.submit([good + [new]])
        self.assertEqual([o.status for o in s3.outcomes], ["duplicate", "duplicate", "accepted"])
        self.assertEqual(len(self.readings(self.pid)), 4)
        # the same reading id with other content: refused, naming the reading
        head = self.client.tree_size()
        changed = bp(self.cuff, self.pid, "r2", t + datetime.timedelta(minutes=1), 131, 84)
        s4 = self.submit([[changed]])
        self.assertEqual((s4.outcomes[0].status, s4.outcomes[0].field, s4.outcomes[0].error),
                         ("refused", "reading", "CL_EDUPLICATE"), s4)
        self.assertIn("r2 of device %s was submitted before with other content" % self.cuff,
                      s4.outcomes[0].reason)
        self.assertNothingWritten(head)

    def test_2_who_may_submit(self):
        t = now() - datetime.timedelta(minutes=5)
        line = bp(self.cuff, self.pid, "w1", t, 120, 80)
        # a device principal other than the registered one
        s = self.submit([[line]], who="cuff2")
        self.assertEqual((s.outcomes[0].status, s.outcomes[0].field), ("refused", "device"))
        self.assertIn("cuff2 may not submit readings of device " + self.cuff, s.outcomes[0].reason)
        # no authentication: the call is refused whole
        before = self.client.tree_size()
        e = self.assertRpcError(grpc.StatusCode.UNAUTHENTICATED, self.submit, [[line]], None)
        self.assertIn("authenticated device or gateway", e.details())
        status, body = self.post(line + "\n", who=None)
        self.assertEqual(status, 401, body)
        self.assertEqual(self.readings(self.pid), [])
        self.assertNothingWritten(before)
        # a gateway may submit for any registered device
        status, body = self.post(line + "\n", who="gw1")
        self.assertEqual((status, body["accepted"]), (200, 1), body)
        got = self.readings(self.pid)
        self.assertEqual(got[0].recorded_by.on_behalf_of, "gw1")
        self.assertGreater(self.client.tree_size(), before)

    def test_2a_reassignment_is_seen_at_once(self):
        # the cuff moves to the other patient: the next call sees it (the
        # registry waits for the view when its answer would refuse)
        self.append_events([device_registered(self.cuff, self.other, "cuff1")])
        t = now() - datetime.timedelta(minutes=1)
        s = self.submit([[bp(self.cuff, self.other, "m1", t, 120, 80)]])
        self.assertEqual(s.outcomes[0].status, "accepted", s)
        s = self.submit([[bp(self.cuff, self.pid, "m2", t, 120, 80)]])
        self.assertEqual((s.outcomes[0].status, s.outcomes[0].field), ("refused", "patient"), s)
        self.assertEqual(len(self.readings(self.other)), 1)
        self.assertEqual(self.readings(self.pid), [])

    def test_2b_clock_skew_is_configured(self):
        ahead = bp(self.cuff, self.pid, "k1", now() + datetime.timedelta(seconds=180), 120, 80)
        within = bp(self.cuff, self.pid, "k2", now() + datetime.timedelta(seconds=60), 120, 80)
        s = self.submit([[ahead, within]])
        self.assertEqual([(o.status, o.field) for o in s.outcomes],
                         [("refused", "time"), ("accepted", "")])
        self.assertIn("(at most 120 s allowed)", s.outcomes[0].reason)

    def test_3_http_json_lines(self):
        t = now() - datetime.timedelta(minutes=30)
        body = "\n".join([
            bp(self.cuff, self.pid, "h1", t, 118, 76),
            "",
            json.dumps({"device": self.cuff, "patient": self.pid, "reading": "h2",
                        "time": iso(t), "code": "29463-7", "value": 81.5, "unit": "kg",
                        "untis": "kg"}),
            json.dumps({"device": self.cuff, "patient": self.pid, "reading": "h3",
                        "time": iso(t), "status": {"battery": 15}}),
            "not json at all",
        ]) + "\n"
        status, out = self.post(body)
        self.assertEqual(status, 200, out)
        self.assertEqual((out["accepted"], out["refused"], out["duplicates"]), (2, 2, 0), out)
        res = out["results"]
        self.assertEqual([(r["line"], r["status"]) for r in res],
                         [(1, "accepted"), (3, "refused"), (4, "accepted"), (5, "refused")])
        self.assertEqual(res[1]["field"], "untis")
        self.assertIn("unknown member", res[1]["reason"])
        self.assertEqual(res[3]["field"], "")
        self.assertEqual((res[0]["device"], res[0]["reading"], res[0]["events"]),
                         (self.cuff, "h1", 1))
        self.assertEqual([e.WhichOneof("body") for e in self.readings(self.pid)],
                         ["device_reading_recorded", "device_status_reported"])
        # resent: duplicates
        status, out = self.post(body)
        self.assertEqual((out["accepted"], out["duplicates"]), (0, 2), out)
        self.assertEqual(len(self.readings(self.pid)), 2)
        # not JSON lines: refused whole, nothing written
        head = self.client.tree_size()
        status, out = self.post(body, ctype="text/csv")
        self.assertEqual(status, 400, out)
        self.assertIn("application/x-ndjson", json.dumps(out))
        self.assertNothingWritten(head)

    def test_4_cli_ingest_readings(self):
        t = now() - datetime.timedelta(minutes=20)
        path = os.path.join(common.TMP, "readings-%s.jsonl" % self.pid)
        with open(path, "w") as f:
            f.write(bp(self.cuff, self.pid, "c1", t, 121, 79) + "\n")
            f.write(json.dumps({"device": self.cuff, "patient": self.pid, "reading": "c2",
                                "time": iso(t), "system": "mdc", "code": "150456", "value": 97,
                                "unit": "%"}) + "\n\n")
            f.write(json.dumps({"device": self.cuff, "patient": self.pid, "reading": "c3",
                                "time": iso(t), "code": "8310-5", "value": 37.2,
                                "unit": "mmHg"}) + "\n")
        r = self.ingest(path)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)  # one refused
        out = json.loads(r.stdout)
        self.assertEqual((out["total"], out["accepted"], out["refused"]), (3, 2, 1), out)
        self.assertEqual([(x["line"], x["status"]) for x in out["readings"]],
                         [(1, "accepted"), (2, "accepted"), (4, "refused")])
        self.assertEqual(out["readings"][2]["field"], "unit")
        got = self.readings(self.pid)
        self.assertEqual(len(got), 2)
        self.assertEqual(got[1].device_reading_recorded.code.coding[0].system,
                         "urn:iso:std:iso:11073:10101")
        # the terminal form names the line and the member; a resend is duplicates
        r = self.ingest(path, json_out=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn(path + ":4: refused (CL_EMALFORMED, unit): unit: \"mmHg\"", r.stdout)
        self.assertIn(path + ":1: duplicate (sent before, nothing written)", r.stdout)
        self.assertIn("0 accepted, 2 duplicates, 1 refused, 0 failed", r.stdout)
        self.assertEqual(len(self.readings(self.pid)), 2)

    def test_5_out_of_order_readings_in_measurement_order(self):
        base = now() - datetime.timedelta(hours=3)
        order = [2, 0, 3, 1]  # minutes after base, in the order they are sent
        s = self.submit([[bp(self.cuff, self.pid, "o%d" % m, base + datetime.timedelta(minutes=m),
                             120 + m, 80)] for m in order])
        self.assertEqual(s.accepted, 4, s)
        head = self.client.tree_size()
        st, b = common.fhir_get(self.http_port, "/Observation?patient=%s&_sort=date&_count=50"
                                % self.pid)
        deadline = datetime.datetime.now() + datetime.timedelta(seconds=T(20))
        while (st != 200 or len(b.get("entry", [])) < 4) and datetime.datetime.now() < deadline:
            st, b = common.fhir_get(self.http_port, "/Observation?patient=%s&_sort=date" % self.pid)
        self.assertEqual(st, 200, b)
        obs = [e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == "Observation"]
        self.assertEqual(len(obs), 4, b)
        times = [o["effectiveDateTime"] for o in obs]
        self.assertEqual(times, sorted(times))
        sys_ = [[c["valueQuantity"]["value"] for c in o["component"]
                 if c["code"]["coding"][0]["code"] == "8480-6"][0] for o in obs]
        self.assertEqual(sys_, [120, 121, 122, 123])
        self.assertGreaterEqual(self.client.tree_size(), head)

    def test_6_high_reading_raises_the_remote_monitoring_alert(self):
        t = now() - datetime.timedelta(minutes=2)
        s = self.submit([[bp(self.cuff, self.pid, "x1", t, 195, 90)]])
        self.assertEqual(s.accepted, 1, s)
        found = common.stream_issues(self.client, self.pid, want=1)
        self.assertEqual(len(found), 1)
        idt = found[0].issue_detected
        self.assertEqual(idt.rule_id, "vital:8480-6:high:180")

    def test_7_a_bad_batch_ends_the_call_and_keeps_what_came_before(self):
        t = now() - datetime.timedelta(minutes=3)
        good = bp(self.cuff, self.pid, "n1", t, 120, 80)
        nul = bp(self.cuff, self.pid, "n2", t, 120, 80)[:-1] + '}\x00{"x":1}'
        e = self.assertRpcError(grpc.StatusCode.INVALID_ARGUMENT, self.submit, [[good], [nul]])
        self.assertIn("NUL", e.details())
        self.assertEqual(common.md(e).get("clinlog-submitted-readings"), "1")
        got = self.readings(self.pid)
        self.assertEqual([x.device_reading_recorded.reading_id for x in got], ["n1"])

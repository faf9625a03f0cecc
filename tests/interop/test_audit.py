"""The audit trail end to end (--auth required, the default --audit on):
a mixed workload of logins, appends, reads, searches, refusals and
unauthenticated calls over gRPC and the FHIR REST API, each call with its
own x-request-id; then exactly one AccessRecorded per call in $audit with
the right method, outcome, principal and patient, none for health checks;
the auditor's views (Audit.Query over gRPC, GET AuditEvent over HTTP) as
AuditEvents that an independent FHIR validator accepts; who may read the
trail; and kill -9 in the middle of a read load: every read that returned
data has its record in the log after the restart."""
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
import uuid

import grpc

import common
from common import T, Server, ServerTestCase, Signer, free_port
from test_auth import PASSWORDS, bootstrap, registration, totp
from test_fhir import patient_events

NODE_DIR = os.path.join(common.REPO, "tests", "fhir")
PEOPLE = {"doc1": ("clinician", "doc pass phrase 5"), "aud1": ("auditor", "auditor pass phrase 6"),
          "pharm1": ("pharmacist", "pharmacist pass phrase 7")}


class TestAudit(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        data = common.init_data_dir()
        key = os.path.join(data, "keys", "admin.key")
        pw = {p: v[1] for p, v in PEOPLE.items()}
        pw["admin"] = PASSWORDS["admin"]
        cls.secrets = bootstrap(data, [registration(p, v[0]) for p, v in PEOPLE.items()], pw)
        cls.http_port = free_port()
        cls.server = Server(data_dir=data, args=["--auth", "required", "--http-listen",
                                                 "127.0.0.1:%d" % cls.http_port])
        cls.server.start()
        cls.client = common.Client(cls.server.addr)
        cls.admin = Signer.load(key)
        ch, a, au, f = cls.client.channel, common.pb.auth, common.pb.audit, common.pb.fhir
        cls._login = ch.unary_unary("/clinlog.v1.Auth/Login", a.LoginRequest.SerializeToString,
                                    a.LoginResponse.FromString)
        cls._audit = ch.unary_unary("/clinlog.v1.Audit/Query",
                                    au.AuditQueryRequest.SerializeToString,
                                    au.AuditQueryResponse.FromString)
        cls._fread = ch.unary_unary("/clinlog.v1.Fhir/Read", f.FhirReadRequest.SerializeToString,
                                    f.FhirResponse.FromString)
        cls._fsearch = ch.unary_unary("/clinlog.v1.Fhir/Search",
                                      f.FhirSearchRequest.SerializeToString,
                                      f.FhirResponse.FromString)
        cls.tokens = {}
        for pid in ("admin", "doc1", "aud1", "pharm1"):
            r = cls._login(a.LoginRequest(principal_id=pid, password=pw[pid],
                                          totp_code=totp(cls.secrets[pid])), timeout=T(30))
            cls.tokens[pid] = r.token

    def md(self, who, rid):
        m = [("x-request-id", rid)]
        if who:
            m.append(("authorization", "Bearer " + self.tokens[who]))
        return m

    def http(self, path, who, rid):
        c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=T(15))
        h = {"X-Request-Id": rid}
        if who:
            h["Authorization"] = "Bearer " + self.tokens[who]
        c.request("GET", "/fhir/R4" + path, headers=h)
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, body

    def trail(self):
        """Every AccessRecorded in the log, by request id (admin reads $audit)."""
        out = {}
        req = common.pb.api.ReadRequest(stream="$audit")
        for re in self.client._read(req, metadata=self.md("admin", "trail-" + uuid.uuid4().hex),
                                    timeout=T(60)):
            ev = common.pb.event.Event.FromString(re.event)
            self.assertEqual(ev.WhichOneof("body"), "access_recorded")
            self.assertEqual(ev.recorded_by.principal_id, "$log")
            out.setdefault(ev.access_recorded.request_id, []).append(ev.access_recorded)
        return out

    def audit_query(self, who, rid, **kw):
        head = self.client._checkpoint(common.pb.api.GetCheckpointRequest(fresh=True),
                                       metadata=self.md("admin", rid + "-head"),
                                       timeout=T(15)).tree_size
        kw["consistency"] = common.pb.api.Consistency(min_sequence=head)
        return self._audit(common.pb.audit.AuditQueryRequest(**kw), metadata=self.md(who, rid),
                           timeout=T(30))

    def test_1_every_call_is_recorded_once(self):
        tag = "AUD" + uuid.uuid4().hex[:6].upper()
        f = common.pb.fhir
        calls = {}  # request id -> (method, outcome, principal)

        def rid(method, outcome, who):
            r = "it-%s-%d" % (tag, len(calls))
            calls[r] = (method, outcome, who or "")
            return r

        SC = grpc.StatusCode
        # the patient's data, written by the admin
        r = self.client.append(common.batch(patient_events(tag), self.admin),
                               metadata=self.md("admin", rid("clinlog.v1.Log/Append", "0",
                                                             "admin")))
        self.assertGreater(r.tree_size, 0)
        # a clinician reads it: gRPC FHIR read and search, REST read
        self._fread(f.FhirReadRequest(type="Patient", id=tag,
                                      consistency=common.pb.api.Consistency(
                                          min_sequence=r.tree_size)),
                    metadata=self.md("doc1", rid("clinlog.v1.Fhir/Read", "0", "doc1")),
                    timeout=T(30))
        self._fsearch(f.FhirSearchRequest(type="Encounter",
                                          params=[f.FhirParam(name="patient", value=tag)]),
                      metadata=self.md("doc1", rid("clinlog.v1.Fhir/Search", "0", "doc1")),
                      timeout=T(30))
        st, _ = self.http("/Patient/" + tag, "doc1", rid("clinlog.v1.Fhir/Read", "0", "doc1"))
        self.assertEqual(st, 200)
        # searches that name no patient: their records name whose data they returned
        unnamed = [rid("clinlog.v1.Fhir/Search", "0", "doc1")]
        self._fsearch(f.FhirSearchRequest(type="Encounter", params=[
            f.FhirParam(name="subject:Patient.identifier", value="MRN-" + tag)]),
            metadata=self.md("doc1", unnamed[0]), timeout=T(30))
        unnamed.append(rid("clinlog.v1.Fhir/Search", "0", "doc1"))
        st, _ = self.http("/Patient?identifier=MRN-" + tag, "doc1", unnamed[1])
        self.assertEqual(st, 200)
        st, _ = self.http("/Patient/NOPE" + tag, "doc1", rid("clinlog.v1.Fhir/Read", "4", "doc1"))
        self.assertEqual(st, 404)
        # refusals: no session; a clinician asking for the trail
        self.assertRpcError(SC.UNAUTHENTICATED, lambda: list(self.client._read(
            common.pb.api.ReadRequest(max_count=1),
            metadata=self.md(None, rid("clinlog.v1.Log/Read", "4", "")), timeout=T(15))))
        self.assertRpcError(SC.PERMISSION_DENIED, self._audit,
                            common.pb.audit.AuditQueryRequest(patient=tag),
                            metadata=self.md("doc1", rid("clinlog.v1.Audit/Query", "4", "doc1")),
                            timeout=T(15))
        st, _ = self.http("/AuditEvent?patient=" + tag, "doc1",
                          rid("clinlog.v1.Audit/Query", "4", "doc1"))
        self.assertEqual(st, 403)
        st, _ = self.http("/Patient/" + tag, None, rid("clinlog.v1.Fhir/Read", "4", ""))
        self.assertEqual(st, 401)
        # health checks are not recorded
        self.assertEqual(self.client.health(), 1)

        trail = self.trail()
        for r, (method, outcome, who) in calls.items():
            recs = trail.get(r, [])
            self.assertEqual(len(recs), 1, "%s (%s): %d records" % (r, method, len(recs)))
            a = recs[0]
            self.assertEqual((a.method, a.outcome, a.principal_id), (method, outcome, who), r)
            self.assertIn("127.0.0.1", a.client_address)
        reads = [trail[r][0] for r, c in calls.items() if c[0] == "clinlog.v1.Fhir/Read"
                 and c[1] == "0"]
        for a in reads:
            self.assertEqual(list(a.patients), [tag])
            self.assertEqual(a.resource, "Patient/" + tag)
            self.assertIn("clinician", list(a.roles))
            self.assertEqual(a.auth, "token")
        self.assertEqual(sorted(x.transport for x in reads), ["grpc", "http"])
        for r in unnamed:
            self.assertEqual(list(trail[r][0].patients), [tag], r)
        self.assertFalse([k for k, v in trail.items() for a in v
                          if a.method.startswith("grpc.health")], "a health check recorded")

        # the auditor's views: the patient's accounting of disclosures
        resp = self.audit_query("aud1", "it-%s-q" % tag, patient=tag)
        events = [json.loads(b) for b in resp.audit_events]
        self.assertEqual(resp.next_after, 0)
        rids = []
        for e in events:
            self.assertEqual(e["resourceType"], "AuditEvent")
            rids += [x["what"]["identifier"]["value"] for x in e["entity"]
                     if x.get("type", {}).get("code") == "XrequestId"]
        want = [r for r, c in calls.items() if c[1] == "0" and c[0] == "clinlog.v1.Fhir/Read"]
        want += [r for r, c in calls.items() if c[0] == "clinlog.v1.Fhir/Search"]
        for r in want:
            self.assertIn(r, rids)
        # the same over REST, a page at a time, and one by id
        st, body = self.http("/AuditEvent?patient=%s&_count=2" % tag, "aud1", "it-%s-h" % tag)
        self.assertEqual(st, 200, body)
        b = json.loads(body)
        self.assertEqual((b["resourceType"], b["type"]), ("Bundle", "searchset"))
        self.assertEqual(len(b["entry"]), 2)
        nxt = [l["url"] for l in b["link"] if l["relation"] == "next"]
        self.assertEqual(len(nxt), 1)
        first = b["entry"][0]["resource"]
        st, body = self.http("/AuditEvent/" + first["id"], "aud1", "it-%s-i" % tag)
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body)["id"], first["id"])
        st, body = self.http("/AuditEvent?nonsense=1", "aud1", "it-%s-e" % tag)
        self.assertEqual(st, 400)
        self.assertIn("nonsense", body.decode())
        # every AuditEvent passes the independent R4 validator
        node = shutil.which("node")
        self.assertIsNotNone(node, "node is required (install-deps installs it)")
        with tempfile.NamedTemporaryFile("w", suffix=".ndjson", delete=False) as tf:
            for e in events + [x["resource"] for x in b["entry"]]:
                tf.write(json.dumps(e) + "\n")
        try:
            v = subprocess.run([node, os.path.join(NODE_DIR, "validate.mjs"), tf.name],
                               capture_output=True, text=True, timeout=T(120))
        finally:
            os.unlink(tf.name)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        # the CLI: the same records as NDJSON
        out = subprocess.run([common.CLINLOG, "audit", "--patient", tag, "--json", "--server",
                              self.server.addr, "--plaintext", "--token-file",
                              self.token_file("aud1")], capture_output=True, text=True,
                             timeout=T(60))
        self.assertEqual(out.returncode, 0, out.stderr)
        ids = [json.loads(l)["id"] for l in out.stdout.splitlines() if l.strip()]
        self.assertGreaterEqual(len(ids), len(events))
        self.assertEqual(ids[:len(events)], [e["id"] for e in events])

    def http_full(self, path, who, rid, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=T(15))
        h = {"X-Request-Id": rid, "Authorization": "Bearer " + self.tokens[who]}
        h.update(headers or {})
        c.request("GET", path, headers=h)
        r = c.getresponse()
        body = r.read()
        c.close()
        return r, body

    def test_4_an_export_download_names_the_patients_of_its_file(self):
        """A Bulk Data file's record names whose data the whole file holds,
        not only its first piece: the accounting of disclosures must show
        a bulk download to each patient in it."""
        tags = ["EXP%s%d" % (uuid.uuid4().hex[:6].upper(), i) for i in range(3)]
        for t in tags:
            r = self.client.append(common.batch(patient_events(t), self.admin),
                                   metadata=self.md("admin", "exp-w-" + t))
        self._fread(common.pb.fhir.FhirReadRequest(
            type="Patient", id=tags[-1],
            consistency=common.pb.api.Consistency(min_sequence=r.tree_size)),
            metadata=self.md("admin", "exp-wait-" + tags[0]), timeout=T(30))
        r, body = self.http_full("/fhir/R4/Patient/$export?_type=Patient,Encounter", "admin",
                                 "exp-k-" + tags[0], {"Prefer": "respond-async"})
        self.assertEqual(r.status, 202, body)
        path = urllib.parse.urlsplit(r.getheader("Content-Location")).path
        deadline = time.monotonic() + T(60)
        while True:
            r, body = self.http_full(path, "admin", "exp-s-" + uuid.uuid4().hex)
            if r.status == 200:
                break
            self.assertEqual(r.status, 202, body)
            self.assertLess(time.monotonic(), deadline, "the export did not finish")
            time.sleep(0.05)
        rids = {}
        for o in json.loads(body)["output"]:
            rid = "exp-f-%s-%s" % (tags[0], o["type"])
            r, data = self.http_full(urllib.parse.urlsplit(o["url"]).path, "admin", rid)
            self.assertEqual(r.status, 200, data)
            held = set()
            for line in data.decode().splitlines():
                x = json.loads(line)
                ref = x["id"] if x["resourceType"] == "Patient" else \
                    x.get("subject", {}).get("reference", "").replace("Patient/", "")
                held.add(ref)
            rids[rid] = held
        self.assertEqual(len(rids), 2)
        trail = self.trail()
        for rid, held in rids.items():
            recs = trail.get(rid, [])
            self.assertEqual(len(recs), 1, rid)
            a = recs[0]
            self.assertEqual((a.method, a.outcome, a.transport),
                             ("clinlog.v1.Fhir/ExportRead", "0", "http"), rid)
            for t in tags:
                self.assertIn(t, held, "%s: the file holds %s" % (rid, t))
            self.assertEqual(set(a.patients), held, rid)

    def token_file(self, who):
        path = os.path.join(common.TMP, "token-%s-%s" % (who, uuid.uuid4().hex))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.tokens[who] + "\n")
        return path

    def test_2_no_returned_read_lacks_its_record_after_kill9(self):
        """Readers read while clinlogd is SIGKILLed: every read that returned
        data was recorded (committed) before its answer left."""
        tag = "KIL" + uuid.uuid4().hex[:6].upper()
        r = self.client.append(common.batch(patient_events(tag), self.admin),
                               metadata=self.md("admin", "kill-setup-" + tag))
        f = common.pb.fhir
        cons = common.pb.api.Consistency(min_sequence=r.tree_size)
        returned, lock, stop = [], threading.Lock(), threading.Event()

        def reader(n):
            i = 0
            while not stop.is_set():
                rid = "kill-%s-%d-%d" % (tag, n, i)
                i += 1
                try:
                    self._fread(f.FhirReadRequest(type="Patient", id=tag, consistency=cons),
                                metadata=self.md("doc1", rid), timeout=T(5))
                    with lock:
                        returned.append(rid)
                except grpc.RpcError:
                    time.sleep(0.01)

        threads = [threading.Thread(target=reader, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + T(30)
        while time.monotonic() < deadline:
            with lock:
                if len(returned) >= 200:
                    break
            time.sleep(0.05)
        self.server.kill()
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join()
        self.assertGreater(len(returned), 0, "no read returned before the kill")
        self.server.start()
        self.client.wait_ready()
        trail = self.trail()
        missing = [x for x in returned if x not in trail]
        self.assertEqual(missing, [], "%d of %d returned reads have no record"
                         % (len(missing), len(returned)))
        self.assertFalse([x for x in returned if len(trail[x]) != 1], "a read recorded twice")

    def test_3_break_glass(self):
        """A pharmacist may not read a whole patient record; declared with a
        reason, break-glass opens that one patient for a bounded time, every
        read under it is recorded as break-glass (ETREAT), the declaration
        is in the log as the privacy officers' alert, and it expires."""
        tag, other = "BG" + uuid.uuid4().hex[:6].upper(), "BO" + uuid.uuid4().hex[:6].upper()
        for pid in (tag, other):
            self.client.append(common.batch(patient_events(pid), self.admin),
                               metadata=self.md("admin", "bg-setup-" + pid))
        au, SC = common.pb.auth, grpc.StatusCode
        glass = self.client.channel.unary_unary(
            "/clinlog.v1.Auth/BreakGlass", au.BreakGlassRequest.SerializeToString,
            au.BreakGlassResponse.FromString)

        def read(pid, rid):
            return list(self.client._read(common.pb.api.ReadRequest(stream="patient-" + pid),
                                          metadata=self.md("pharm1", rid), timeout=T(15)))

        self.assertRpcError(SC.PERMISSION_DENIED, read, tag, "bg-before-" + tag)
        e = self.assertRpcError(SC.INVALID_ARGUMENT, glass,
                                au.BreakGlassRequest(patient_id=tag, reason="x"),
                                metadata=self.md("pharm1", "bg-short"), timeout=T(15))
        self.assertIn("reason", e.details())
        self.assertRpcError(SC.PERMISSION_DENIED, glass,
                            au.BreakGlassRequest(patient_id=tag, reason="looking around"),
                            metadata=self.md("aud1", "bg-auditor"), timeout=T(15))
        t0 = time.time()
        r = glass(au.BreakGlassRequest(patient_id=tag, reason="anaphylaxis in ward 4, no chart",
                                       seconds=4),
                  metadata=self.md("pharm1", "bg-declare-" + tag), timeout=T(15))
        self.assertLessEqual(abs(r.expires_at.seconds - (t0 + 4)), 2)
        got = read(tag, "bg-read-" + tag)
        self.assertEqual(len(got), 3)  # the registration and the encounter's start and end
        self.assertRpcError(SC.PERMISSION_DENIED, read, other, "bg-other-" + tag)
        trail = self.trail()
        a = trail["bg-read-" + tag][0]
        self.assertEqual((a.principal_id, a.break_glass, a.purpose_of_use, a.outcome),
                         ("pharm1", True, "ETREAT", "0"))
        self.assertFalse(trail["bg-other-" + tag][0].break_glass)
        # the alert: BreakGlassDeclared, for whoever follows event type 912
        req = common.pb.api.ReadRequest()
        req.filter.event_types.append(912)
        alerts = [common.pb.event.Event.FromString(x.event).break_glass_declared
                  for x in self.client._read(req, metadata=self.md("admin", "bg-alerts-" + tag),
                                             timeout=T(15))]
        mine = [x for x in alerts if x.patient_id == tag]
        self.assertEqual(len(mine), 1)
        self.assertEqual((mine[0].principal_id, mine[0].reason),
                         ("pharm1", "anaphylaxis in ward 4, no chart"))
        # and it ends
        time.sleep(max(0, r.expires_at.seconds + 1.2 - time.time()))
        self.assertRpcError(SC.PERMISSION_DENIED, read, tag, "bg-after-" + tag)
        # the REST face: POST /auth/break-glass, then the FHIR read it opens
        st, body = self.http("/Patient/%s/$everything" % other, "pharm1", "bg-http-before")
        self.assertEqual(st, 403, body)

        def declare(who, form):
            c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=T(15))
            h = {"Content-Type": "application/x-www-form-urlencoded"}
            if who:
                h["Authorization"] = "Bearer " + self.tokens[who]
            c.request("POST", "/auth/break-glass", urllib.parse.urlencode(form), h)
            r = c.getresponse()
            out = (r.status, json.loads(r.read()))
            c.close()
            return out

        st, out = declare("aud1", {"patient": other, "reason": "looking around"})
        self.assertEqual((st, out["error"]), (403, "access_denied"), out)
        st, out = declare(None, {"patient": other, "reason": "cardiac arrest, bed 12"})
        self.assertEqual(st, 401, out)
        st, out = declare("pharm1", {"patient": other, "reason": "short"})
        self.assertEqual((st, out["error"]), (400, "invalid_request"), out)
        self.assertIn("reason", out["error_description"])
        st, out = declare("pharm1", {"patient": other, "reason": "cardiac arrest, bed 12",
                                     "seconds": "60"})
        self.assertEqual(st, 200, out)
        self.assertLessEqual(abs(out["expires_at"] - (time.time() + 60)), 3)
        st, body = self.http("/Patient/%s/$everything" % other, "pharm1", "bg-http-read")
        self.assertEqual(st, 200, body)
        a = self.trail()["bg-http-read"][0]
        self.assertEqual((a.break_glass, a.purpose_of_use), (True, "ETREAT"))

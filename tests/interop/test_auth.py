"""Authentication end to end (--auth required): credentials enrolled with the
CLI into the log before the server starts, logins by an independent client
(Python grpcio, with its own RFC 6238 TOTP from hmac/hashlib), tokens on the
gRPC and the FHIR REST faces, the CLI's login/whoami/logout, a reused code,
a tampered token, an ended session that stays ended across a restart, and
the lockout after repeated failures; minimum necessary (what billing and
the front desk see of a chart, on both faces and in an export, checked by
the independent FHIR validator)."""
import base64
import hashlib
import hmac
import http.client
import json
import os
import struct
import subprocess
import time
import urllib.parse

import grpc
import nacl.signing
import ssl
import tempfile

import common
import shutil
from common import T, Server, ServerTestCase, Signer, free_port
from test_fhir import patient_events
from test_query import files_containing
from test_tls import make_pki, read

PASSWORDS = {"admin": "admin pass phrase 1", "nurse1": "nurse pass phrase 2",
             "clerk": "clerk pass phrase 3", "ada": "portal pass phrase 4",
             "biller": "billing pass phrase 5"}


def totp(secret, t=None, digits=6, period=30, alg=hashlib.sha1):
    """RFC 6238 over RFC 4226, written here (not clinlog's code)."""
    counter = int((time.time() if t is None else t) // period)
    mac = hmac.new(secret, struct.pack(">Q", counter), alg).digest()
    off = mac[-1] & 0x0F
    code = (struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % (10 ** digits)
    return str(code).zfill(digits)


def clear_of_step_end(margin=8.0, period=30):
    """Waits into the next TOTP step when fewer than `margin` seconds are left
    of this one: a code of the previous step is then still within the server's
    +-1 window when the server checks it (once the step ends it is two back)."""
    left = period - time.time() % period
    if left < margin:
        time.sleep(left + 0.05)


def secret_of(uri):
    """The secret of an otpauth:// URI (Google's Key URI format, base32)."""
    q = urllib.parse.parse_qs(urllib.parse.urlparse(uri).query)
    s = q["secret"][0]
    return base64.b32decode(s + "=" * (-len(s) % 8))


def cli(*args, stdin=None):
    r = subprocess.run([common.CLINLOG] + list(args), input=stdin, capture_output=True,
                       text=True, timeout=T(60))
    return r


def registration(pid, role, **extra):
    """A PrincipalRegistered of a person with a fresh key (proto3 JSON)."""
    pk = nacl.signing.SigningKey.generate().verify_key.encode()
    reg = {"principalId": pid, "roles": [role], "kind": "person",
           "publicKey": base64.b64encode(pk).decode()}
    reg.update(extra)
    return {"stream": "$principal-" + pid, "principalRegistered": reg}


def bootstrap(data, registrations, passwords):
    """Enrolls a password and a TOTP authenticator for each principal of
    `passwords` with the CLI and appends them after `registrations`, offline
    into the data directory, before it is served. Returns the TOTP secrets."""
    events, secrets = list(registrations), {}
    for pid, pw in passwords.items():
        r = cli("auth", "enroll", pid, "--password-stdin", "--json", stdin=pw + "\n")
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        secrets[pid] = secret_of(out["otpauthUri"])
        assert out["otpauthUri"].startswith("otpauth://totp/"), out["otpauthUri"]
        assert out["event"]["credentialEnrolled"]["passwordHash"].startswith("$argon2id$")
        events.append(out["event"])
    key = os.path.join(data, "keys", "admin.key")
    r = cli("append", data, "--key", key, stdin="\n".join(json.dumps(e) for e in events))
    assert r.returncode == 0, r.stderr
    return secrets


def people_data(people):
    """A fresh data directory with `people` ({principal: (role, password)})
    registered and enrolled, and admin enrolled. Returns (data, passwords,
    TOTP secrets)."""
    data = common.init_data_dir()
    pw = {p: v[1] for p, v in people.items()}
    pw["admin"] = PASSWORDS["admin"]
    secrets = bootstrap(data, [registration(p, v[0]) for p, v in people.items()], pw)
    return data, pw, secrets


def login_all(client, passwords, secrets, who):
    """Session tokens of the principals `who` (Auth.Login), by principal."""
    a = common.pb.auth
    login = client.channel.unary_unary("/clinlog.v1.Auth/Login", a.LoginRequest.SerializeToString,
                                       a.LoginResponse.FromString)
    return {p: login(a.LoginRequest(principal_id=p, password=passwords[p],
                                    totp_code=totp(secrets[p])), timeout=T(30)).token
            for p in who}


class TestAuth(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        data = common.init_data_dir()
        key = os.path.join(data, "keys", "admin.key")
        regs = [registration("nurse1", "nurse"), registration("clerk", "registrar"),
                registration("biller", "billing"),
                registration("ada", "patient", patientId="ADA1")]  # the portal user
        cls.secrets = bootstrap(data, regs, PASSWORDS)
        cls.http_port = free_port()
        cls.server = Server(data_dir=data, args=["--auth", "required", "--http-listen",
                                                 "127.0.0.1:%d" % cls.http_port])
        cls.server.start()
        cls.client = common.Client(cls.server.addr)
        cls.admin = Signer.load(key)
        a = common.pb.auth
        ch = cls.client.channel
        cls._login = ch.unary_unary("/clinlog.v1.Auth/Login", a.LoginRequest.SerializeToString,
                                    a.LoginResponse.FromString)
        cls._logout = ch.unary_unary("/clinlog.v1.Auth/Logout",
                                     a.LogoutRequest.SerializeToString,
                                     a.LogoutResponse.FromString)
        cls._whoami = ch.unary_unary("/clinlog.v1.Auth/Whoami",
                                     a.WhoamiRequest.SerializeToString,
                                     a.WhoamiResponse.FromString)

    def login(self, pid, password=None, code=None):
        req = common.pb.auth.LoginRequest(principal_id=pid,
                                          password=password or PASSWORDS[pid],
                                          totp_code=code or totp(self.secrets[pid]))
        return self._login(req, timeout=T(30))

    @staticmethod
    def bearer(token):
        return [("authorization", "Bearer " + token)]

    def read_log(self, token=None):
        kw = {"metadata": self.bearer(token)} if token else {}
        return list(self.client._read(common.pb.api.ReadRequest(max_count=1),
                                      timeout=T(15), **kw))

    def http(self, path, token=None):
        c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=T(15))
        c.request("GET", "/fhir/R4" + path,
                  headers={"Authorization": "Bearer " + token} if token else {})
        r = c.getresponse()
        body = r.read()
        c.close()
        return r, body

    def test_1_calls_need_a_session(self):
        self.assertEqual(self.client.health(), 1)  # SERVING, no credentials
        e = self.assertRpcError(grpc.StatusCode.UNAUTHENTICATED, self.read_log)
        self.assertIn("authentication required", e.details())
        admin_code = totp(self.secrets["admin"])
        r = self.login("admin", code=admin_code)
        self.assertEqual(list(r.roles), ["admin"])
        self.assertGreater(r.session_seq, 0)
        self.assertLessEqual(r.expires_at.seconds - time.time(), 900 + 5)
        self.assertEqual(len(self.read_log(r.token)), 1)
        who = self._whoami(common.pb.auth.WhoamiRequest(), metadata=self.bearer(r.token),
                           timeout=T(15))
        self.assertEqual((who.principal_id, who.auth, who.token_id),
                         ("admin", "token", r.token_id))
        # an append needs a session too, and then the signature as before
        ev = common.event("patient-AUTH1")
        self.assertRpcError(grpc.StatusCode.UNAUTHENTICATED, self.client.append,
                            common.batch([ev], self.admin))
        self.assertGreater(self.client.append(common.batch([ev], self.admin),
                                              metadata=self.bearer(r.token)).tree_size, 0)
        # a tampered token, and the same code twice
        i = len(r.token) - 10  # inside the signature, where every bit of a char counts
        bad = r.token[:i] + ("B" if r.token[i] == "A" else "A") + r.token[i + 1:]
        e = self.assertRpcError(grpc.StatusCode.UNAUTHENTICATED, self.read_log, bad)
        self.assertIn("signature", e.details())
        e = self.assertRpcError(grpc.StatusCode.UNAUTHENTICATED, self.login, "admin", None,
                                admin_code)
        self.assertIn("login failed", e.details())

        # the FHIR REST face: 401 with a challenge, then 200 with the token
        resp, body = self.http("/Patient?_count=1")
        self.assertEqual(resp.status, 401, body)
        self.assertTrue(resp.getheader("WWW-Authenticate", "").startswith("Bearer"))
        self.assertEqual(json.loads(body)["resourceType"], "OperationOutcome")
        resp, body = self.http("/Patient?_count=1", r.token)
        self.assertEqual(resp.status, 200, body)
        resp, body = self.http("/metadata")  # the CapabilityStatement is public
        self.assertEqual(resp.status, 200, body)
        type(self).admin_token = r.token

        # the default policy: a registrar reads registration, not results
        clerk = type(self).clerk_token = self.login("clerk").token
        resp, body = self.http("/Patient?_count=1", clerk)
        self.assertEqual(resp.status, 200, body)
        resp, body = self.http("/Observation?_count=1", clerk)
        self.assertEqual(resp.status, 403, body)
        self.assertIn("clerk (roles registrar) may not read Observation",
                      json.loads(body)["issue"][0]["diagnostics"])
        e = self.assertRpcError(grpc.StatusCode.PERMISSION_DENIED, self.read_log, clerk)
        self.assertIn("read every resource type", e.details())
        # nor append what is not registration, even signed by its own key
        ev = common.event("patient-AUTH1")  # an ObservationRecorded
        e = self.assertRpcError(grpc.StatusCode.PERMISSION_DENIED, self.client.append,
                                common.batch([ev], self.admin), metadata=self.bearer(clerk))
        self.assertIn("may not append events[0] (ObservationRecorded)", e.details())

    def test_0_a_bad_policy_refuses_to_start(self):
        path = os.path.join(common.TMP, "bad.policy")
        with open(path, "w") as f:
            f.write("# a typo on line 3\nnurse call read\nnurse read Observatoin\n")
        r = subprocess.run([common.CLINLOGD, "--data", self.server.data, "--dev", "--listen",
                            "127.0.0.1:%d" % free_port(), "--policy", path],
                           capture_output=True, text=True, timeout=T(30))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("bad.policy:3: \"Observatoin\" is not a FHIR resource type", r.stderr)

    def test_1b_a_patient_reads_its_own_record_only(self):
        admin = self.admin_token
        for pid in ("ADA1", "BOB2"):
            self.client.append(common.batch(patient_events(pid), self.admin),
                               metadata=self.bearer(admin))
        login = self.login("ada")
        ada = login.token
        for path, want in (("/Patient/ADA1", 200), ("/Patient/BOB2", 403),
                           ("/Encounter?patient=ADA1", 200), ("/Encounter?patient=BOB2", 403),
                           ("/Encounter", 403), ("/Patient/ADA1/$everything", 200),
                           ("/Patient/BOB2/$everything", 403)):
            deadline = time.monotonic() + T(10)
            while True:  # the views fold the registrations in the background
                resp, body = self.http(path, ada)
                if resp.status != 404 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            self.assertEqual(resp.status, want, "%s: %s" % (path, body[:300]))
            if want == 403:
                self.assertIn("ada (roles patient) may not",
                              json.loads(body)["issue"][0]["diagnostics"])
        resp, body = self.http("/Encounter?patient=ADA1", ada)
        bundle = json.loads(body)
        self.assertGreater(bundle["total"], 0)
        for e in bundle["entry"]:
            self.assertEqual(e["resource"]["subject"]["reference"], "Patient/ADA1")
        # who looked at my record: her own accounting of disclosures (the
        # reads above, hers and the refused ones included), no one else's
        deadline = time.monotonic() + T(10)
        while True:  # the audit view folds the newest records in the background
            resp, body = self.http("/AuditEvent?patient=ADA1&_count=100", ada)
            self.assertEqual(resp.status, 200, body[:300])
            seen = [e["resource"] for e in json.loads(body).get("entry", [])]
            if len(seen) >= 5 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertGreaterEqual(len(seen), 5)
        for ae in seen:
            self.assertIn("Patient/ADA1",
                          [x.get("what", {}).get("reference") for x in ae["entity"]], ae["id"])
        self.assertIn("ada", [a["who"].get("identifier", {}).get("value") for ae in seen
                              for a in ae["agent"]])
        for path in ("/AuditEvent?patient=BOB2", "/AuditEvent", "/AuditEvent/" + seen[0]["id"]):
            resp, body = self.http(path, ada)
            self.assertEqual(resp.status, 403, "%s: %s" % (path, body[:300]))

        # an admin ends the session (clinlog auth end-session, appended with its token)
        tf = os.path.join(common.TMP, "admin.token")
        with open(tf, "w") as f:
            f.write(self.admin_token + "\n")
        os.chmod(tf, 0o600)
        r = cli("auth", "end-session", "ada", login.token_id, "lost phone")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = cli("append", "--server", self.server.addr, "--plaintext", "--token-file", tf,
                "--key", os.path.join(self.server.data, "keys", "admin.key"), stdin=r.stdout)
        self.assertEqual(r.returncode, 0, r.stderr)
        deadline = time.monotonic() + T(10)  # refused once the auth view folds it (ms)
        while True:
            resp, body = self.http("/Patient/ADA1", ada)
            if resp.status != 200 or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        self.assertEqual(resp.status, 401, body)
        self.assertIn("session has ended", json.loads(body)["issue"][0]["diagnostics"])

    def post(self, path, form=None, token=None):
        c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=T(30))
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if token:
            headers["Authorization"] = "Bearer " + token
        c.request("POST", path, body=urllib.parse.urlencode(form or {}), headers=headers)
        r = c.getresponse()
        body = r.read()
        c.close()
        return r, json.loads(body)

    def test_1c_login_and_logout_over_http(self):
        clear_of_step_end()
        code = totp(self.secrets["nurse1"], time.time() - 30)  # the previous step: +-1 allowed
        r, j = self.post("/auth/login", {"principal": "nurse1", "password": "wrong",
                                         "code": code})
        self.assertEqual((r.status, j["error"]), (401, "invalid_grant"), j)
        self.assertEqual(r.getheader("Cache-Control"), "no-store")
        r, j = self.post("/auth/login", {"principal": "nurse1",
                                         "password": PASSWORDS["nurse1"], "code": code})
        self.assertEqual(r.status, 200, j)
        self.assertEqual((j["token_type"], j["principal"], j["roles"]),
                         ("Bearer", "nurse1", "nurse"))
        self.assertTrue(0 < j["expires_in"] <= 900)
        token = j["access_token"]
        resp, body = self.http("/Patient?_count=1", token)
        self.assertEqual(resp.status, 200, body)
        r, j = self.post("/auth/logout", token=token)
        self.assertEqual(r.status, 200, j)
        resp, body = self.http("/Patient?_count=1", token)
        self.assertEqual(resp.status, 401, body)
        self.assertIn("session has ended", json.loads(body)["issue"][0]["diagnostics"])

    def test_2_cli_login_whoami_logout_and_restart(self):
        tf = os.path.join(common.TMP, "nurse.token")
        srv = ["--server", self.server.addr, "--plaintext", "--token-file", tf]
        r = cli("login", *srv, "--principal", "nurse1", "--password-stdin",
                "--code", totp(self.secrets["nurse1"]), "--json",
                stdin=PASSWORDS["nurse1"] + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["principal"], "nurse1")
        self.assertEqual(os.stat(tf).st_mode & 0o777, 0o600)
        with open(tf) as f:
            token = f.read().strip()
        r = cli("auth", "whoami", *srv)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["principalId"], "nurse1")
        # other commands send the token too, and the policy applies to them
        r = cli("streams", "list", "patient", *srv, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = cli("projections", "list", *srv, "--json")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("nurse1 (roles nurse) may not make admin-read calls", r.stderr)
        r = cli("logout", *srv)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.exists(tf))
        e = self.assertRpcError(grpc.StatusCode.UNAUTHENTICATED, self.read_log, token)
        self.assertIn("ended", e.details())

        # the ending is in the log: it holds after a restart, other sessions live on
        self.server.stop()
        self.server.start()
        self.client.close()
        type(self).client = common.Client(self.server.addr)
        ch = self.client.channel
        a = common.pb.auth
        type(self)._login = ch.unary_unary("/clinlog.v1.Auth/Login",
                                           a.LoginRequest.SerializeToString,
                                           a.LoginResponse.FromString)
        e = self.assertRpcError(grpc.StatusCode.UNAUTHENTICATED, self.read_log, token)
        self.assertIn("ended", e.details())
        self.assertEqual(len(self.read_log(self.admin_token)), 1)

    def test_1d_minimum_necessary(self):
        """Billing sees a diagnosis's codes and dates, not the note; the
        front desk sees a visit, not why it happened; the clinical roles see
        both."""
        admin = getattr(type(self), "admin_token", None) or self.login("admin").token
        clerk = getattr(type(self), "clerk_token", None) or self.login("clerk").token
        biller = self.login("biller").token
        nurse = admin  # reads the whole chart, as a nurse would
        evs = []
        for kind in ("condition", "encounter"):
            ev = common.pb.event.Event(event_id=common.new_id(), stream="patient-MN1",
                                       occurred_at=common.timestamp_now(), source_system="T")
            ev.recorded_by.principal_id = "admin"
            ev.recorded_by.role = "admin"
            if kind == "condition":
                c = ev.condition_diagnosed
                c.condition_id = "cond-mn1"
                cc = c.code.coding.add()
                cc.system, cc.code = "http://hl7.org/fhir/sid/icd-10-cm", "F32.9"
                c.onset.seconds = 1780000000
                c.note = "disclosed a family history of suicide"
            else:
                e = ev.encounter_started
                e.encounter_id = "enc-mn1"
                e.encounter_class.system = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
                e.encounter_class.code = "AMB"
                e.start.seconds = 1780000000
                r = e.reason.add()
                rc = r.coding.add()
                rc.system, rc.code = "http://snomed.info/sct", "35489007"
                r.text = "depressive disorder"
            evs.append(ev.SerializeToString())
        self.client.append(common.batch(patient_events("MN1") + evs, self.admin),
                           metadata=self.bearer(admin))
        deadline = time.monotonic() + T(10)
        while True:  # the views fold in the background
            resp, body = self.http("/Condition?patient=MN1", nurse)
            if json.loads(body).get("total", 0) > 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        whole = json.loads(body)["entry"][0]["resource"]
        self.assertIn("suicide", whole["note"][0]["text"])
        self.assertNotIn("SUBSETTED", body.decode())
        got = []
        resp, body = self.http("/Condition?patient=MN1", biller)
        self.assertEqual(resp.status, 200, body)
        self.assertNotIn(b"suicide", body)
        cond = json.loads(body)["entry"][0]["resource"]
        got.append(cond)
        self.assertEqual(cond["code"], whole["code"])
        self.assertEqual(cond["onsetDateTime"], whole["onsetDateTime"])
        self.assertEqual(cond["subject"], whole["subject"])
        self.assertNotIn("note", cond)
        self.assertIn("SUBSETTED", [t["code"] for t in cond["meta"]["tag"]])
        resp, body = self.http("/Condition/" + cond["id"], biller)  # a read, the same
        self.assertEqual(json.loads(body), cond)
        # the gRPC face: the same engine, the same subset
        f = common.pb.fhir
        search = self.client.channel.unary_unary("/clinlog.v1.Fhir/Search",
                                                 f.FhirSearchRequest.SerializeToString,
                                                 f.FhirResponse.FromString)
        r = search(f.FhirSearchRequest(type="Condition",
                                       params=[f.FhirParam(name="patient", value="MN1")]),
                   metadata=self.bearer(biller), timeout=T(15))
        self.assertNotIn(b"suicide", r.json)
        self.assertEqual(json.loads(r.json)["entry"][0]["resource"], cond)
        # the front desk: the visit without its reason; no search by it
        resp, body = self.http("/Encounter?patient=MN1", nurse)
        self.assertIn(b"depressive", body)
        resp, body = self.http("/Encounter?patient=MN1", clerk)
        self.assertEqual(resp.status, 200, body)
        self.assertNotIn(b"depressive", body)
        self.assertNotIn(b"35489007", body)
        encs = [e["resource"] for e in json.loads(body)["entry"]]
        self.assertEqual(len(encs), 2)
        self.assertTrue(all("period" in e and "class" in e for e in encs))
        got += encs
        resp, body = self.http("/Encounter?patient=MN1&reason-code=35489007", clerk)
        self.assertEqual(resp.status, 403, body)
        self.assertIn("may not search Encounter by reason-code",
                      json.loads(body)["issue"][0]["diagnostics"])
        # a bulk export by billing: the same subset in every file
        c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=T(30))
        c.request("GET", "/fhir/R4/$export?_type=Condition",
                  headers={"Authorization": "Bearer " + biller, "Prefer": "respond-async"})
        r = c.getresponse()
        self.assertEqual(r.status, 202, r.read())
        status = urllib.parse.urlparse(r.getheader("Content-Location")).path
        r.read()
        deadline = time.monotonic() + T(30)
        while True:
            c.request("GET", status, headers={"Authorization": "Bearer " + biller})
            r = c.getresponse()
            body = r.read()
            if r.status != 202 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(r.status, 200, body)
        # the files answer billing's token only (Bulk Data's requiresAccessToken)
        self.assertIs(json.loads(body)["requiresAccessToken"], True)
        lines = []
        for out in json.loads(body)["output"]:
            c.request("GET", urllib.parse.urlparse(out["url"]).path,
                      headers={"Authorization": "Bearer " + biller})
            r = c.getresponse()
            data = r.read()
            self.assertEqual(r.status, 200, data)
            lines += [json.loads(x) for x in data.decode().splitlines() if x]
        c.close()
        mine = [x for x in lines if x["id"] == cond["id"]]
        self.assertEqual(len(mine), 1, lines)
        self.assertNotIn("note", mine[0])
        self.assertTrue(all("note" not in x for x in lines))
        got += lines
        # every subset is still a valid R4 resource, by the independent validator
        node = shutil.which("node")
        self.assertIsNotNone(node, "node is required (install-deps installs it)")
        with tempfile.NamedTemporaryFile("w", suffix=".ndjson", delete=False) as tf:
            for x in got:
                tf.write(json.dumps(x) + "\n")
        try:
            v = subprocess.run([node, os.path.join(common.REPO, "tests", "fhir", "validate.mjs"),
                                tf.name], capture_output=True, text=True, timeout=T(120))
        finally:
            os.unlink(tf.name)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)

    def node(self, *args):
        node = shutil.which("node")
        self.assertIsNotNone(node, "node is required (install-deps installs it)")
        r = subprocess.run([node, "smart_backend.mjs"] + list(args), capture_output=True,
                           text=True, cwd=os.path.join(common.REPO, "tests", "fhir"),
                           timeout=T(60))
        out = r.stdout.strip().splitlines()
        self.assertTrue(out, r.stderr)
        return r.returncode, json.loads(out[-1])

    def test_1e_smart_backend_services(self):
        """A standard OAuth client (oauth4webapi, keys from jose) gets a
        token by client_credentials and a JWT assertion, and reads with it
        through fhir-kit-client; the token's system/ scopes narrow what it
        reads; replayed, expired, misdirected and unsigned assertions are
        refused, each naming why."""
        admin = getattr(type(self), "admin_token", None) or self.login("admin").token
        keys = os.path.join(common.TMP, "smart-keys")
        rc, out = self.node("keys", keys)
        self.assertEqual(rc, 0, out)
        tf = os.path.join(common.TMP, "admin-smart.token")
        with open(tf, "w") as f:
            f.write(admin + "\n")
        os.chmod(tf, 0o600)
        reg = registration("bulk-app", "analyst", kind="system")
        r = cli("auth", "register-client", "bulk-app", os.path.join(keys, "jwks.json"),
                "analytics export")
        self.assertEqual(r.returncode, 0, r.stderr)
        events = json.dumps(reg) + "\n" + r.stdout
        r = cli("append", "--server", self.server.addr, "--plaintext", "--token-file", tf,
                "--key", os.path.join(self.server.data, "keys", "admin.key"), stdin=events)
        self.assertEqual(r.returncode, 0, r.stderr)
        # a private key is never registered
        priv = os.path.join(keys, "es384.json")
        with open(priv) as f:
            leaked = os.path.join(keys, "leaked.json")
            with open(leaked, "w") as g:
                g.write(json.dumps({"keys": [json.load(f)]}))
        r = cli("auth", "register-client", "bulk-app", leaked)
        self.assertEqual(r.returncode, 1)
        self.assertIn("keys[0]", r.stderr)
        self.client.append(common.batch(patient_events("SB1"), self.admin),
                           metadata=self.bearer(admin))
        base = "http://127.0.0.1:%d/fhir/R4" % self.http_port
        # discovery, a token, reads through an independent FHIR client
        for alg in ("es384", "rs384"):
            deadline = time.monotonic() + T(10)
            while True:  # the auth view folds the registration in the background
                rc, out = self.node("run", base, "bulk-app", os.path.join(keys, alg + ".json"),
                                    "system/Patient.rs system/Encounter.read openid",
                                    "Patient?_id=SB1", "Encounter?patient=SB1",
                                    "Observation?patient=SB1", "Patient/SB1")
                if rc == 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            self.assertEqual(rc, 0, out)
            cfg = out["config"]
            self.assertEqual(cfg["token_endpoint"], "http://127.0.0.1:%d/auth/token" % self.http_port)
            self.assertIn("client-confidential-asymmetric", cfg["capabilities"])
            self.assertIn("ES384", cfg["token_endpoint_auth_signing_alg_values_supported"])
            self.assertIn("RS384", cfg["token_endpoint_auth_signing_alg_values_supported"])
            self.assertEqual(out["token_type"], "bearer")
            self.assertLessEqual(out["expires_in"], 300)
            self.assertEqual(out["scope"], "system/Patient.rs system/Encounter.read")
            reads = {x["path"]: x for x in out["reads"]}
            self.assertEqual(reads["Patient?_id=SB1"]["status"], 200, reads)
            self.assertEqual(reads["Patient?_id=SB1"]["total"], 1, reads)
            self.assertEqual(reads["Encounter?patient=SB1"]["status"], 200, reads)
            self.assertEqual(reads["Patient/SB1"]["status"], 200, reads)
            self.assertEqual(reads["Observation?patient=SB1"]["status"], 403, reads)
            self.assertIn("the token's scopes (system/Patient.rs system/Encounter.read) do not "
                          "allow searches of Observation", reads["Observation?patient=SB1"]["diagnostics"])
        # the token reads FHIR only: not the log over gRPC
        e = self.assertRpcError(grpc.StatusCode.PERMISSION_DENIED, self.read_log,
                                out["access_token"])
        self.assertIn("scoped token makes FHIR reads and searches only", e.details())
        # the CapabilityStatement points at the token endpoint
        resp, body = self.http("/metadata")
        sec = json.loads(body)["rest"][0]["security"]
        self.assertEqual(sec["service"][0]["coding"][0]["code"], "SMART-on-FHIR")
        self.assertEqual(sec["extension"][0]["extension"][0]["valueUri"], cfg["token_endpoint"])
        # refusals, per RFC 6749 5.2
        rc, out = self.node("assert", base, "bulk-app", priv, "system/*.rs", "replay")
        first, second = out["answers"]
        self.assertEqual(first["status"], 200, first)
        self.assertEqual(first["cacheControl"], "no-store")
        self.assertEqual(second["status"], 401, second)
        self.assertEqual(second["body"]["error"], "invalid_client")
        self.assertIn("jti was used before", second["body"]["error_description"])
        for case, why in (("expired", "expired"), ("wrong-aud", "aud"), ("none-alg", "alg")):
            rc, out = self.node("assert", base, "bulk-app", priv, "system/*.rs", case)
            a = out["answers"][0]
            self.assertEqual(a["status"], 401, (case, a))
            self.assertEqual(a["body"]["error"], "invalid_client", (case, a))
            self.assertIn(why, a["body"]["error_description"], (case, a))
        rc, out = self.node("assert", base, "bulk-app", priv, "patient/*.rs", "scope")
        a = out["answers"][0]
        self.assertEqual((a["status"], a["body"]["error"]), (400, "invalid_scope"), a)
        self.assertIn("a backend client asks for system/ scopes", a["body"]["error_description"])
        rc, out = self.node("assert", base, "nobody", priv, "system/*.rs", "unknown")
        a = out["answers"][0]
        self.assertEqual((a["status"], a["body"]["error"]), (401, "invalid_client"), a)
        self.assertIn("no client nobody is registered", a["body"]["error_description"])

    def test_1f_scoped_logins(self):
        """A person's login may ask for SMART user/ or patient/ scopes: the
        token reads no more than they allow, patient/ scopes only the
        person's own compartment."""
        code = totp(self.secrets["ada"], time.time() + 30)  # test_1b used the current step
        c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=T(30))
        c.request("POST", "/auth/login", urllib.parse.urlencode({
            "principal": "ada", "password": PASSWORDS["ada"], "code": code,
            "scope": "patient/Patient.rs patient/Encounter.rs launch/patient"}),
            {"Content-Type": "application/x-www-form-urlencoded"})
        r = c.getresponse()
        body = json.loads(r.read())
        c.close()
        self.assertEqual(r.status, 200, body)
        self.assertEqual(body["scope"], "patient/Patient.rs patient/Encounter.rs")
        ada = body["access_token"]
        for path, want in (("/Patient/ADA1", 200), ("/Encounter?patient=ADA1", 200),
                           ("/Observation?patient=ADA1", 403), ("/Encounter?patient=BOB2", 403)):
            resp, b = self.http(path, ada)
            self.assertEqual(resp.status, want, "%s: %s" % (path, b[:300]))
        resp, b = self.http("/Observation?patient=ADA1", ada)
        self.assertIn("do not allow searches of Observation",
                      json.loads(b)["issue"][0]["diagnostics"])
        # a registrar asking for patient/ scopes: no patient context
        r = self.assertRpcError(grpc.StatusCode.INVALID_ARGUMENT, self._login,
                                common.pb.auth.LoginRequest(
                                    principal_id="clerk", password=PASSWORDS["clerk"],
                                    totp_code=totp(self.secrets["clerk"], time.time() + 30),
                                    scope="patient/*.rs"), timeout=T(30))
        self.assertIn("patient/ scopes need a patient context", r.details())

    def test_2b_an_export_is_its_owners_only(self):
        # nurse1 (reads everything) exports; the admin, who may export too,
        # neither sees nor cancels nurse1's job: it answers as if there were none
        code = totp(self.secrets["nurse1"], time.time() + 30)  # test_2 used the current step
        nurse = self.login("nurse1", code=code).token
        admin = getattr(type(self), "admin_token", None) or self.login("admin").token

        def call(method, path, token, headers=None):
            c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=T(30))
            h = {"Authorization": "Bearer " + token}
            h.update(headers or {})
            c.request(method, path, headers=h)
            r = c.getresponse()
            body = r.read()
            c.close()
            return r, body

        r, body = call("GET", "/fhir/R4/$export?_type=Patient", nurse,
                       {"Prefer": "respond-async"})
        self.assertEqual(r.status, 202, body)
        status = urllib.parse.urlparse(r.getheader("Content-Location")).path
        self.assertIn("/$export-status/", status)
        r, body = call("GET", status, nurse)
        self.assertIn(r.status, (200, 202), body)
        for method in ("GET", "DELETE"):
            r, body = call(method, status, admin)
            self.assertEqual(r.status, 404, body)
            self.assertIn("no export job", json.loads(body)["issue"][0]["diagnostics"])
        r, body = call("GET", status.replace("$export-status", "$export-file") + "/1", admin)
        self.assertEqual(r.status, 404, body)
        r, body = call("GET", status, nurse)  # still there for its owner
        self.assertIn(r.status, (200, 202), body)
        r, body = call("DELETE", status, nurse)
        self.assertEqual(r.status, 202, body)

    def test_3_repeated_failures_lock_out(self):
        for _ in range(5):
            self.assertRpcError(grpc.StatusCode.UNAUTHENTICATED, self.login, "clerk", "wrong!")
        e = self.assertRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, self.login, "clerk")
        self.assertClinlogError(e, "CL_ELIMITED")
        self.assertIn("try again in", e.details())
        # nothing secret on disk in plaintext: passwords, hashes, TOTP secrets
        self.server.stop()
        try:
            for pid, pw in PASSWORDS.items():
                for needle in (pw.encode(), self.secrets[pid], b"$argon2id$"):
                    self.assertEqual(files_containing(self.server.data, needle), [],
                                     "%r of %s on disk" % (needle[:12], pid))
        finally:
            self.server.start()


class TestAuthCertificates(ServerTestCase):
    """A system authenticates with its TLS client certificate, bound to its
    principal in the log by fingerprint (clinlog auth bind-cert): under
    --auth required it calls as that principal, and the policy applies."""

    @classmethod
    def setUpClass(cls):
        cls.pki = make_pki(tempfile.mkdtemp(prefix="pki-", dir=common.TMP))
        data = common.init_data_dir()
        key = os.path.join(data, "keys", "admin.key")
        pk = nacl.signing.SigningKey.generate().verify_key.encode()
        events = [{"stream": "$principal-lab-feed",
                   "principalRegistered": {"principalId": "lab-feed", "roles": ["integration"],
                                           "kind": "system",
                                           "publicKey": base64.b64encode(pk).decode()}}]
        r = cli("auth", "bind-cert", "lab-feed", cls.pki["client.pem"], "CN=interop-client")
        assert r.returncode == 0, r.stderr
        ev = json.loads(r.stdout)
        # the fingerprint, computed here independently: SHA-256 of the DER
        der = ssl.PEM_cert_to_DER_cert(read(cls.pki["client.pem"]).decode())
        assert ev["certificateBound"]["sha256"] == hashlib.sha256(der).hexdigest(), ev
        events.append(ev)
        r = cli("append", data, "--key", key, stdin="\n".join(json.dumps(e) for e in events))
        assert r.returncode == 0, r.stderr
        cls.server = Server(data_dir=data, dev=False, args=[
            "--auth", "required", "--tls-cert", cls.pki["server.pem"], "--tls-key",
            cls.pki["server.key"], "--client-ca", cls.pki["ca.pem"]])
        cls.server.start()
        cls.admin = Signer.load(key)
        cls.client = cls.connect("client")

    @classmethod
    def connect(cls, who):
        kw = {} if who is None else {"private_key": read(cls.pki[who + ".key"]),
                                     "certificate_chain": read(cls.pki[who + ".pem"])}
        creds = grpc.ssl_channel_credentials(root_certificates=read(cls.pki["ca.pem"]), **kw)
        return common.Client(cls.server.addr, credentials=creds,
                             options=[("grpc.ssl_target_name_override", "localhost")])

    def test_the_bound_certificate_is_the_principal(self):
        a = common.pb.auth
        whoami = self.client.channel.unary_unary("/clinlog.v1.Auth/Whoami",
                                                 a.WhoamiRequest.SerializeToString,
                                                 a.WhoamiResponse.FromString)
        who = whoami(a.WhoamiRequest(), timeout=T(15))
        self.assertEqual((who.principal_id, list(who.roles), who.auth),
                         ("lab-feed", ["integration"], "mtls"))
        # an interface engine relays events others signed; it reads nothing
        r = self.client.append(common.batch([common.event("patient-MTLS1")], self.admin))
        self.assertGreater(r.tree_size, 0)
        e = self.assertRpcError(grpc.StatusCode.PERMISSION_DENIED,
                                lambda: list(self.client._read(common.pb.api.ReadRequest(),
                                                               timeout=T(15))))
        self.assertIn("lab-feed (roles integration) may not", e.details())
        # without a certificate: no principal, refused
        with self.connect(None) as anon:
            e = self.assertRpcError(grpc.StatusCode.UNAUTHENTICATED, anon.append,
                                    common.batch([common.event("patient-MTLS1")], self.admin))
            self.assertIn("authentication required", e.details())

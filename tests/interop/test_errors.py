"""Every error status of the API, and bad input over the wire. After each
rejected request the tree size must be unchanged (nothing written)."""
import grpc

import common
from common import (T, LogServerTestCase, Signer, batch, event, event_msg, event_id_of, md,
                    new_id, unique_stream)

SC = grpc.StatusCode
MAX_MESSAGE = 256 * 1024
MAX_EVENT = 64 * 1024

LOG = "/clinlog.v1.Log/"


def sized_event(stream, size):
    """A serialized observation event of exactly `size` bytes."""
    ev = event_msg(stream, text="")
    base = len(ev.SerializeToString())
    n = max(0, size - base - 8)
    for k in range(n, n + 16):
        ev.observation_recorded.note = "x" * k
        b = ev.SerializeToString()
        if len(b) == size:
            return b
    raise AssertionError("cannot build an event of %d bytes" % size)


def poison(ev_bytes, marker, replacement):
    """Replaces `marker` (ASCII) by `replacement` (same length, any bytes) in
    a serialized message: how invalid UTF-8 gets into a string field."""
    assert len(marker) == len(replacement)
    assert ev_bytes.count(marker) == 1, ev_bytes
    return ev_bytes.replace(marker, replacement)


def principal_event(principal, pk, roles=("nurse",), signer_principal="admin"):
    ev = common.pb.event.Event(event_id=new_id(), stream="$principal-" + principal,
                               occurred_at=common.timestamp_now())
    ev.recorded_by.principal_id = signer_principal
    ev.recorded_by.role = "admin"
    pr = ev.principal_registered
    pr.principal_id = principal
    pr.display_name = "Test " + principal
    pr.roles.extend(roles)
    pr.public_key = pk
    pr.kind = "person"
    return ev.SerializeToString()


def revoke_event(principal, pk):
    ev = common.pb.event.Event(event_id=new_id(), stream="$principal-" + principal,
                               occurred_at=common.timestamp_now())
    ev.recorded_by.principal_id = "admin"
    ev.recorded_by.role = "admin"
    ev.key_revoked.principal_id = principal
    ev.key_revoked.public_key = pk
    ev.key_revoked.reason = "interop test"
    return ev.SerializeToString()


class ErrorCase(LogServerTestCase):
    server_args = ("--max-message-bytes", str(MAX_MESSAGE), "--max-event-bytes", str(MAX_EVENT))

    def rejected(self, code, clerr, fn, *a, **kw):
        """fn(*a) must fail with `code` (and clinlog-error `clerr` unless None)
        and write nothing."""
        before = self.client.tree_size()
        e = self.assertRpcError(code, fn, *a, **kw)
        if clerr is not None:
            self.assertClinlogError(e, clerr)
        self.assertNothingWritten(before)
        return e

    def rejected_batch(self, code, clerr, b):
        return self.rejected(code, clerr, self.client.append, b)


class TestInvalidArgument(ErrorCase):

    def test_malformed_event_bytes(self):
        for bad in (b"\xff\xff\xff\xff", b"\x0a\x10" + b"short", b"not a protobuf at all"):
            self.rejected_batch(SC.INVALID_ARGUMENT, "CL_EMALFORMED", batch([bad], self.admin))

    def test_invalid_events(self):
        s = unique_stream()
        cases = {}
        ev = event_msg(s); ev.event_id = b"\x01" * 15
        cases["15-byte event id"] = ev
        ev = event_msg(s); ev.ClearField("occurred_at")
        cases["no occurred_at"] = ev
        ev = event_msg(s); ev.occurred_at.nanos = 1000000000
        cases["nanos out of range"] = ev
        ev = event_msg(s); ev.ClearField("observation_recorded")
        cases["no body"] = ev
        ev = event_msg(s); ev.recorded_by.principal_id = ""
        cases["no principal"] = ev
        ev = event_msg(""); cases["empty stream"] = ev
        ev = event_msg("x" * 257); cases["stream of 257 bytes"] = ev
        ev = event_msg("patient-a\x01b"); cases["control char in stream"] = ev
        ev = event_msg("patient-a\x7fb"); cases["DEL in stream"] = ev
        ev = event_msg(s); ev.correlation_id = b"\x02" * 5
        cases["5-byte correlation id"] = ev
        for name, ev in cases.items():
            with self.subTest(name):
                self.rejected_batch(SC.INVALID_ARGUMENT, "CL_EMALFORMED",
                                    batch([ev.SerializeToString()], self.admin))

    def test_invalid_utf8(self):
        s = unique_stream()
        cases = {
            "stream": (event(s + "-QQQQ"), b"QQQQ", b"\xc3\x28\xa0\xa1"),
            "body string": (event(s, text="QQQQ"), b"QQQQ", b"\xff\xfeAB"),
            "overlong": (event(s, text="QQQQ"), b"QQQQ", b"\xc0\xafAB"),
            "surrogate": (event(s, text="QQQ"), b"QQQ", b"\xed\xa0\x80"),
            "truncated sequence": (event(s, text="QQQQ"), b"QQQQ", b"AB\xe2\x82"),
            "source_system": (event(s), b"INTEROP", b"INTER\xf8\x88"),
        }
        ev = event_msg(s)
        ev.recorded_by.role = "QQQQ"
        cases["recorded_by.role"] = (ev.SerializeToString(), b"QQQQ", b"\x80\x80\x80\x80")
        for name, (ev, marker, repl) in cases.items():
            with self.subTest(name):
                bad = poison(ev, marker, repl)
                self.rejected_batch(SC.INVALID_ARGUMENT, "CL_EMALFORMED",
                                    batch([bad], self.admin))
        # Valid multi-byte UTF-8 is fine.
        r = self.append_events([event(s + "-\u00e9\u4e2d", text="\U0001f600 \u00fc")])
        self.assertEqual(len(r.positions), 1)

    def test_signatures(self):
        s = unique_stream()
        evs = [event(s), event(s)]
        b = batch(evs, self.admin, "none")
        self.rejected_batch(SC.INVALID_ARGUMENT, "CL_EINVAL", b)  # no signature at all
        b = batch(evs, self.admin)
        del b.signatures[1]
        self.rejected_batch(SC.INVALID_ARGUMENT, "CL_EINVAL", b)  # one short
        b = batch(evs, self.admin)
        b.batch_signature.CopyFrom(self.admin.sign_batch(evs))
        self.rejected_batch(SC.INVALID_ARGUMENT, "CL_EINVAL", b)  # both kinds
        b = batch(evs, self.admin)
        b.signatures[0].signature = b.signatures[0].signature[:63]
        self.rejected_batch(SC.INVALID_ARGUMENT, "CL_EINVAL", b)  # 63-byte signature
        b = batch(evs, self.admin)
        b.signatures[1].key_id = b.signatures[1].key_id[:31]
        self.rejected_batch(SC.INVALID_ARGUMENT, "CL_EINVAL", b)  # 31-byte key id
        other = Signer()
        b = batch(evs, self.admin)
        b.signatures[1].CopyFrom(other.sign_event(evs[1]))
        self.rejected_batch(SC.INVALID_ARGUMENT, "CL_EINVAL", b)  # two signers

    def test_batch_shape(self):
        s = unique_stream()
        self.rejected_batch(SC.INVALID_ARGUMENT, "CL_EINVAL",
                            common.pb.record.AppendBatch())  # no events
        eid = new_id()
        dup = [event(s, event_id=eid, text="a"), event(s, event_id=eid, text="b")]
        for mode in ("event", "batch"):
            self.rejected_batch(SC.INVALID_ARGUMENT, "CL_EINVAL", batch(dup, self.admin, mode))
        same = event(s)
        self.rejected_batch(SC.INVALID_ARGUMENT, "CL_EINVAL",
                            batch([same, same], self.admin))
        mixed = [event(s), event(s, principal="someone-else")]
        self.rejected_batch(SC.INVALID_ARGUMENT, "CL_EINVAL", batch(mixed, self.admin))

    def test_expectations(self):
        s = unique_stream()
        EV = common.pb.record.ExpectedVersion
        self.rejected_batch(SC.INVALID_ARGUMENT, "CL_EINVAL",
                            batch([event(s)], self.admin, expectations=[(s, 7, 0)]))
        self.rejected_batch(SC.INVALID_ARGUMENT, "CL_EINVAL",
                            batch([event(s)], self.admin, expectations=[(s, -1, 0)]))
        self.rejected_batch(SC.INVALID_ARGUMENT, "CL_EINVAL",
                            batch([event(s)], self.admin,
                                  expectations=[(unique_stream(), EV.ANY, 0)]))
        self.rejected_batch(SC.INVALID_ARGUMENT, "CL_EINVAL",
                            batch([event(s)], self.admin,
                                  expectations=[(s, EV.ANY, 0), (s, EV.NO_STREAM, 0)]))

    def test_garbage_request_bytes(self):
        garbage = b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"
        before = self.client.tree_size()
        for m in ("Append", "GetCheckpoint", "ProveInclusion", "ProveConsistency", "GetEvent"):
            with self.subTest(m):
                e = self.assertRpcError(SC.INVALID_ARGUMENT, self.client.raw_unary,
                                        LOG + m, garbage)
                self.assertIn("clinlog-error", md(e))
        for m in ("Read", "Subscribe"):
            with self.subTest(m):
                self.assertRpcError(SC.INVALID_ARGUMENT, self.client.raw_stream,
                                    LOG + m, garbage)
        with self.subTest("AppendStream"):
            e = self.assertRpcError(SC.INVALID_ARGUMENT, self.client.raw_client_stream,
                                    LOG + "AppendStream", [garbage])
            self.assertEqual(md(e).get("clinlog-committed-batches"), "0", md(e))
        with self.subTest("Health"):
            self.assertRpcError(SC.INVALID_ARGUMENT, self.client.raw_unary,
                                "/grpc.health.v1.Health/Check", garbage)
        self.assertNothingWritten(before)

    def test_truncated_protobuf(self):
        s = unique_stream()
        b = batch([event(s), event(s)], self.admin).SerializeToString()
        before = self.client.tree_size()
        for cut in (1, 3, len(b) // 2, len(b) - 1):
            with self.subTest(cut=cut):
                self.assertRpcError(SC.INVALID_ARGUMENT, self.client.raw_unary,
                                    LOG + "Append", b[:cut])
        # A good batch, then a truncated one in a stream: the first commits.
        good = batch([event(s)], self.admin).SerializeToString()
        e = self.assertRpcError(SC.INVALID_ARGUMENT, self.client.raw_client_stream,
                                LOG + "AppendStream", [good, b[:len(b) // 2]])
        self.assertEqual(md(e).get("clinlog-committed-batches"), "1", md(e))
        self.assertEqual(self.client.tree_size(), before + 1)
        req = common.pb.api.ReadRequest(stream="patient-x", max_count=5).SerializeToString()
        self.assertRpcError(SC.INVALID_ARGUMENT, self.client.raw_stream, LOG + "Read",
                            req[:-1])

    def test_read_request_checks(self):
        filt = b"\x0a\x03\xc3\x28\x41"  # Filter.stream_prefixes[0] = invalid UTF-8
        cases = {
            "unknown Direction 5": (self.client.read, dict(stream="patient-x", direction=5)),
            "backwards over the whole log": (self.client.read,
                                             dict(direction=common.pb.api.BACKWARDS)),
            "malformed stream name": (self.client.read, dict(stream="bad\x01stream")),
            # Invalid UTF-8 in request strings (hand-encoded: field 1, length 3).
            "invalid UTF-8 ReadRequest.stream": (
                lambda: self.client.raw_stream(LOG + "Read", b"\x0a\x03\xff\xfe\xfd"), {}),
            "invalid UTF-8 ReadRequest.filter.stream_prefixes": (
                lambda: self.client.raw_stream(LOG + "Read", b"\x2a" + bytes([len(filt)]) + filt),
                {}),
            "invalid UTF-8 SubscribeRequest.filter.stream_prefixes": (
                lambda: self.client.raw_stream(LOG + "Subscribe",
                                               b"\x1a" + bytes([len(filt)]) + filt,
                                               timeout=T(3)), {}),
        }
        for name, (fn, kw) in cases.items():
            with self.subTest(name):
                self.assertRpcError(SC.INVALID_ARGUMENT, fn, **kw)

    def test_nul_in_strings(self):
        # protobuf-c hands strings to C as NUL-terminated: an embedded NUL
        # in a string the store interprets must be rejected, not truncate
        # the value (the signed bytes would name another stream/principal
        # than the one the store files and authorizes). NUL in a body
        # string is valid UTF-8 the store does not interpret: allowed.
        s = unique_stream()
        cases = {
            "stream": event(s + "\x00-hidden"),
            "recorded_by.principal_id": event(s, principal="admin\x00-hidden"),
            "PrincipalRegistered.principal_id": principal_event("nul\x00-hidden", Signer().pk),
        }
        for name, ev in cases.items():
            with self.subTest(name):
                self.rejected_batch(SC.INVALID_ARGUMENT, "CL_EMALFORMED",
                                    batch([ev], self.admin))

    def test_server_still_healthy(self):
        self.assertEqual(self.client.health(), common.pb.health.HealthCheckResponse.SERVING)
        r = self.append_events([event(unique_stream())])
        self.assertEqual(len(r.positions), 1)


class TestPreconditionAndConflicts(ErrorCase):

    def test_failed_precondition(self):
        s = unique_stream()
        EV = common.pb.record.ExpectedVersion
        self.append_events([event(s), event(s)])
        for kind, ver, cur, st in ((EV.NO_STREAM, 0, 2, s), (EV.EXACT, 1, 2, s),
                                   (EV.EXACT, 3, 2, s), (EV.EXACT, 0, 2, s)):
            e = self.rejected_batch(SC.FAILED_PRECONDITION, "CL_ECONFLICT",
                                    batch([event(st)], self.admin,
                                          expectations=[(st, kind, ver)]))
            self.assertEqual(md(e).get("clinlog-stream"), st, md(e))
            self.assertEqual(md(e).get("clinlog-current-version"), str(cur), md(e))
        new = unique_stream()
        for kind, ver in ((EV.EXISTS, 0), (EV.EXACT, 1)):
            e = self.rejected_batch(SC.FAILED_PRECONDITION, "CL_ECONFLICT",
                                    batch([event(new)], self.admin,
                                          expectations=[(new, kind, ver)]))
            self.assertEqual(md(e).get("clinlog-stream"), new, md(e))
            self.assertEqual(md(e).get("clinlog-current-version"), "0", md(e))
        # Two streams, the second one conflicting: nothing of the batch is written.
        e = self.rejected_batch(SC.FAILED_PRECONDITION, "CL_ECONFLICT",
                                batch([event(new), event(s)], self.admin,
                                      expectations=[(new, EV.NO_STREAM, 0),
                                                    (s, EV.EXACT, 5)]))
        self.assertEqual(md(e).get("clinlog-stream"), s, md(e))
        self.assertRpcError(SC.NOT_FOUND, self.client.get_event,
                            event_id_of(batch([event(new)], self.admin).events[0]))

    def test_already_exists(self):
        s = unique_stream()
        eid = new_id()
        self.append_events([event(s, event_id=eid, text="first")])
        self.rejected_batch(SC.ALREADY_EXISTS, "CL_EDUPLICATE",
                            batch([event(s, event_id=eid, text="second")], self.admin))
        # Some ids committed, some new: not a duplicate, rejected whole.
        e1 = event(s)
        self.append_events([e1])
        e2 = event(s)
        self.rejected_batch(SC.ALREADY_EXISTS, "CL_EDUPLICATE", batch([e1, e2], self.admin))
        self.assertRpcError(SC.NOT_FOUND, self.client.get_event, event_id_of(e2))

    def test_erased_stream(self):
        s = unique_stream()
        e1 = event(s)
        self.append_events([e1])
        ev = common.pb.event.Event(event_id=new_id(), stream="$erasures",
                                   occurred_at=common.timestamp_now())
        ev.recorded_by.principal_id = "admin"
        ev.recorded_by.role = "admin"
        ev.stream_erased.stream = s
        ev.stream_erased.reason = "interop"
        self.append_events([ev.SerializeToString()])
        self.rejected_batch(SC.FAILED_PRECONDITION, "CL_EERASED", batch([event(s)], self.admin))
        g = self.client.get_event(event_id_of(e1))
        self.assertTrue(g.erased)
        self.assertEqual(g.event, b"")


class TestPermissionDenied(ErrorCase):

    def test_bad_signature(self):
        s = unique_stream()
        for mode in ("event", "batch"):
            evs = [event(s), event(s)]
            b = batch(evs, self.admin, mode)
            sig = b.signatures[1] if mode == "event" else b.batch_signature
            raw = bytearray(sig.signature)
            raw[0] ^= 0x80
            sig.signature = bytes(raw)
            self.rejected_batch(SC.PERMISSION_DENIED, "CL_EBADSIG", b)
            # Signature over other bytes than the ones sent.
            b = batch(evs, self.admin, mode)
            b.events[0] = event(s)
            self.rejected_batch(SC.PERMISSION_DENIED, "CL_EBADSIG", b)
        # A batch signature with the wrong count in the signed message.
        evs = [event(s), event(s)]
        b = batch(evs, self.admin, "batch")
        b.batch_signature.CopyFrom(self.admin.sign_batch(evs[:1]))
        self.rejected_batch(SC.PERMISSION_DENIED, "CL_EBADSIG", b)

    def test_unknown_key(self):
        stranger = Signer()
        self.rejected_batch(SC.PERMISSION_DENIED, "CL_EUNKNOWNKEY",
                            batch([event(unique_stream())], stranger))
        self.rejected_batch(SC.PERMISSION_DENIED, "CL_EUNKNOWNKEY",
                            batch([event(unique_stream(), principal="stranger")], stranger,
                                  "batch"))

    def test_registered_then_revoked(self):
        nurse = Signer()
        pid = "nurse-" + unique_stream("")
        # A non-admin key cannot register principals; self-registration is refused.
        self.rejected_batch(SC.PERMISSION_DENIED, "CL_EUNKNOWNKEY",
                            batch([principal_event(pid, nurse.pk, signer_principal=pid)], nurse))
        self.append_events([principal_event(pid, nurse.pk)])
        s = unique_stream()
        r = self.append_events([event(s, principal=pid, role="nurse")], signer=nurse)
        self.assertEqual(r.positions[0].stream_version, 1)
        # The nurse signing events that name another principal.
        self.rejected_batch(SC.PERMISSION_DENIED, "CL_EDENIED",
                            batch([event(s, principal="admin")], nurse))
        # The nurse (no admin role) registering someone.
        other = Signer()
        self.rejected_batch(SC.PERMISSION_DENIED, "CL_EDENIED",
                            batch([principal_event("x-" + pid, other.pk, signer_principal=pid)],
                                  nurse))
        # The admin key signing as the nurse principal.
        self.rejected_batch(SC.PERMISSION_DENIED, "CL_EDENIED",
                            batch([event(s, principal=pid, role="nurse")], self.admin))
        # LogCreated after genesis.
        ev = common.pb.event.Event(event_id=new_id(), stream="$log",
                                   occurred_at=common.timestamp_now())
        ev.recorded_by.principal_id = "admin"
        ev.log_created.origin = "evil"
        ev.log_created.log_public_key = self.admin.pk
        self.rejected_batch(SC.PERMISSION_DENIED, "CL_EDENIED",
                            batch([ev.SerializeToString()], self.admin))
        # Revoke: from then on the nurse's signatures are refused.
        self.append_events([revoke_event(pid, nurse.pk)])
        for mode in ("event", "batch"):
            self.rejected_batch(SC.PERMISSION_DENIED, "CL_EREVOKED",
                                batch([event(s, principal=pid, role="nurse")], nurse, mode))
        # Revoking twice: INVALID_ARGUMENT (CL_EINVAL per docs/format.md).
        self.rejected_batch(SC.INVALID_ARGUMENT, "CL_EINVAL",
                            batch([revoke_event(pid, nurse.pk)], self.admin))
        # Registering the same principal again: ALREADY_EXISTS.
        self.rejected_batch(SC.ALREADY_EXISTS, "CL_EEXIST",
                            batch([principal_event(pid, Signer().pk)], self.admin))


class TestResourceExhausted(ErrorCase):

    def test_message_over_limit(self):
        s = unique_stream()
        # Several events each under the event limit, together over the message limit.
        evs = [sized_event(s, MAX_EVENT - 100) for _ in range(MAX_MESSAGE // MAX_EVENT + 1)]
        b = batch(evs, self.admin)
        self.assertGreater(b.ByteSize(), MAX_MESSAGE)
        self.rejected(SC.RESOURCE_EXHAUSTED, None, self.client.append, b)
        # In a stream: the batch before the oversized message stays committed.
        before = self.client.tree_size()
        e = self.assertRpcError(SC.RESOURCE_EXHAUSTED, self.client.append_stream,
                                [batch([event(s)], self.admin), b])
        self.assertEqual(self.client.tree_size(), before + 1)
        if "clinlog-committed-batches" in md(e):
            self.assertEqual(md(e)["clinlog-committed-batches"], "1", md(e))
        # Just under the limit works.
        evs = evs[:MAX_MESSAGE // MAX_EVENT - 1]
        r = self.append_events(evs)
        self.assertEqual(len(r.positions), len(evs))

    def test_huge_message(self):
        b = batch([event(unique_stream(), text="y" * (8 << 20))], self.admin)
        self.rejected(SC.RESOURCE_EXHAUSTED, None, self.client.append, b, timeout=T(30))
        self.rejected(SC.RESOURCE_EXHAUSTED, None, self.client.raw_unary, LOG + "Append",
                      b"\x00" * (MAX_MESSAGE + 1))

    def test_event_over_limit(self):
        s = unique_stream()
        self.rejected_batch(SC.RESOURCE_EXHAUSTED, "CL_ETOOBIG",
                            batch([sized_event(s, MAX_EVENT + 1)], self.admin))
        self.rejected_batch(SC.RESOURCE_EXHAUSTED, "CL_ETOOBIG",
                            batch([event(s), sized_event(s, MAX_EVENT + 1)], self.admin,
                                  "batch"))
        ok = sized_event(s, MAX_EVENT)
        r = self.append_events([ok])
        self.assertEqual(self.client.get_event(r.positions[0].event_id).event, ok)


class TestNotFoundUnimplemented(ErrorCase):

    def test_not_found(self):
        self.rejected(SC.NOT_FOUND, "CL_ENOTFOUND", self.client.get_event, new_id())
        self.rejected(SC.NOT_FOUND, "CL_ENOTFOUND", self.client.checkpoint, tree_size=99999)
        # An event id of the wrong length is a bad argument, or simply unknown.
        try:
            self.client.get_event(b"\x01\x02")
            self.fail("GetEvent of a 2-byte id succeeded")
        except grpc.RpcError as e:
            self.assertIn(e.code(), (SC.INVALID_ARGUMENT, SC.NOT_FOUND), e.details())
            self.assertIn("clinlog-error", md(e))

    def test_read_unknown_stream(self):
        # api.proto: NOT_FOUND for a stream that does not exist. An empty
        # result would be a deviation from that contract.
        self.assertRpcError(SC.NOT_FOUND, self.client.read, stream=unique_stream())

    def test_unimplemented(self):
        for m in ("/clinlog.v1.Log/NoSuchMethod", "/clinlog.v1.NoSuchService/Append",
                  "/grpc.health.v1.Health/List", "/x"):
            with self.subTest(m):
                self.assertRpcError(SC.UNIMPLEMENTED, self.client.raw_unary, m, b"")
        self.assertRpcError(SC.UNIMPLEMENTED, self.client.raw_stream,
                            "/clinlog.v1.Log/ReadAll", b"")
        self.assertEqual(self.client.health(), common.pb.health.HealthCheckResponse.SERVING)

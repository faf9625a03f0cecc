"""The audit trail of HL7 v2 over MLLP, one commit per message (a real
clinlogd with --mllp-listen, the audit trail on; read back over gRPC):

- an acknowledged message's AccessRecorded is committed in the same store
  write as its events, right after them (AccessRecorded.preceding = the
  number of events, seq = the last event's + 1), says who (the adapter's
  principal and role), what (the events, the patient), the outcome and
  the method; the auditor's view (Audit.Query, FHIR AuditEvent) names the
  events as "seq:<first>-<last>", as a record written after the commit does;
- a resend (same control id: AA, nothing written twice) gets its own
  record, written after, naming the original events' seqs;
- a refused message (AE) writes no events, and its record says so;
- 16 connections, then kill -9 mid-stream with senders that resend what
  was not acknowledged: after the restart every AA'd message's events are
  in the log exactly once and each is named by an AccessRecorded of
  outcome 0 (no acknowledged write without its record)."""
import json
import threading
import time

import common
from common import T, ServerTestCase
from test_mllp import Conn, adt, keygen, mllp_args, register_feed, segments, start_with_mllp

METHOD = "clinlog.v1.Mllp/Message"


def log_read(client):
    """Every event of the log: [(seq, Event)]."""
    return [(r.seq, common.pb.event.Event.FromString(r.event)) for r in client.read()]


def mllp_records(events):
    """AccessRecorded of MLLP calls: [(seq, AccessRecorded)]."""
    return [(s, e.access_recorded) for s, e in events
            if e.WhichOneof("body") == "access_recorded" and e.access_recorded.method == METHOD]


def named_seqs(seq, a):
    """The seqs an MLLP record names (its events), as a reader sees them."""
    if a.preceding:
        return list(range(seq - a.preceding, seq))
    if a.resource.startswith("seq:"):
        lo, hi = a.resource[4:].split("-")
        return list(range(int(lo), int(hi) + 1))
    return []


class TestMllpAudit(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.key = keygen("mllp-audit")
        start_with_mllp(cls, lambda port: mllp_args(port, cls.key))
        register_feed(cls.client, cls.admin, cls.key)
        ch, au = cls.client.channel, common.pb.audit
        cls._audit = ch.unary_unary("/clinlog.v1.Audit/Query",
                                    au.AuditQueryRequest.SerializeToString,
                                    au.AuditQueryResponse.FromString)

    def audit_events(self, patient):
        """The auditor's view of a patient's records: {seq: AuditEvent}."""
        head = self.client.checkpoint(fresh=True).tree_size
        r = self._audit(common.pb.audit.AuditQueryRequest(
            patient=patient, consistency=common.pb.api.Consistency(min_sequence=head)),
            timeout=T(30))
        return {s: json.loads(a) for s, a in zip(r.seqs, r.audit_events)}

    def test_1_record_in_the_same_write_right_after_the_events(self):
        c = Conn(self.port)
        ack = c.call(adt("AUD0001", "P7001", trigger="A01"))
        c.close()
        self.assertEqual(segments(ack)["MSA"][1], "AA", ack)
        evs = log_read(self.client)
        mine = [(s, e) for s, e in evs if e.source_message_id == "AUD0001"]
        self.assertEqual(len(mine), 2, "PatientRegistered and EncounterStarted")
        recs = [(s, a) for s, a in mllp_records(evs) if "NORTH-P7001" in a.patients]
        self.assertEqual(len(recs), 1, recs)
        seq, a = recs[0]
        self.assertEqual(seq, mine[-1][0] + 1, "the record follows its events at once")
        self.assertEqual(a.preceding, 2)
        self.assertEqual(named_seqs(seq, a), [s for s, _ in mine])
        self.assertEqual((a.principal_id, list(a.roles), a.outcome, a.action, a.count),
                         ("hl7-mllp", ["integration"], "0", "C", 2))
        self.assertEqual((a.transport, a.error), ("mllp", ""))
        rec_ev = dict(evs)[seq]
        self.assertEqual(rec_ev.stream, "$audit")
        self.assertEqual(rec_ev.recorded_by.principal_id, "$log")
        # both written in one store write: one commit time
        rs = {r.seq: r for r in self.client.read(**{"from": mine[0][0], "max_count": 3})}
        self.assertEqual(len({rs[s].committed_at.ToNanoseconds() for s in rs}), 1)
        # the auditor's view names the events as seqs, as before
        ae = self.audit_events("NORTH-P7001")[seq]
        ids = [e["what"].get("identifier", {}) for e in ae["entity"] if "what" in e]
        self.assertIn({"system": "urn:clinlog:seq",
                       "value": "%d-%d" % (mine[0][0], mine[-1][0])}, ids, ae["entity"])

    def test_2_resend_recorded_after_naming_the_original_events(self):
        c = Conn(self.port)
        first = c.call(adt("AUD0002", "P7002"))
        before = log_read(self.client)
        again = c.call(adt("AUD0002", "P7002"))
        c.close()
        self.assertEqual(segments(first)["MSA"][1], "AA")
        self.assertEqual(segments(again)["MSA"][1], "AA")
        after = log_read(self.client)
        orig = [s for s, e in before if e.source_message_id == "AUD0002"]
        self.assertEqual(len(orig), 1)
        self.assertEqual([s for s, e in after if e.source_message_id == "AUD0002"], orig,
                         "nothing written twice")
        recs = [(s, a) for s, a in mllp_records(after) if "NORTH-P7002" in a.patients]
        self.assertEqual(len(recs), 2, recs)
        (s1, a1), (s2, a2) = recs
        self.assertEqual((a1.preceding, s1), (1, orig[0] + 1))
        self.assertEqual(a2.preceding, 0, "a duplicate's record is written after the call")
        self.assertEqual(a2.resource, "seq:%d-%d" % (orig[0], orig[0]))
        self.assertEqual(a2.outcome, "0")
        self.assertEqual([e for _, e in after if e.stream != "$audit"],
                         [e for _, e in before if e.stream != "$audit"], "no event but records")

    def test_3_refused_message_writes_no_events_and_is_recorded(self):
        c = Conn(self.port)
        bad = adt("AUD0003", "P7003").replace(b"PID|1||P7003", b"PIX|1||P7003")
        ack = c.call(bad)
        c.close()
        self.assertIn(segments(ack)["MSA"][1], ("AE", "AR"), ack)
        evs = log_read(self.client)
        self.assertFalse([e for _, e in evs if e.source_message_id == "AUD0003"])
        recs = [a for _, a in mllp_records(evs) if a.resource == "hl7:REG/NORTH/AUD0003"]
        self.assertEqual(len(recs), 1, [a.resource for _, a in mllp_records(evs)])
        self.assertNotEqual(recs[0].outcome, "0")
        self.assertEqual(recs[0].preceding, 0)


class TestMllpAuditKill9(ServerTestCase):
    """16 senders that resend what was not acknowledged; kill -9 mid-stream."""

    @classmethod
    def setUpClass(cls):
        cls.key = keygen("mllp-audit-kill")
        start_with_mllp(cls, lambda port: mllp_args(port, cls.key))
        register_feed(cls.client, cls.admin, cls.key)

    def test_every_acknowledged_message_has_its_record_after_kill9(self):
        acked, lock, stop = set(), threading.Lock(), threading.Event()

        def sender(k):
            i = 0
            conn = None
            while not stop.is_set() and i < 400:
                cid = "K%02d%04d" % (k, i)
                try:
                    if conn is None:
                        conn = Conn(self.port, timeout=T(5))
                    ack = conn.call(adt(cid, "P8%02d%03d" % (k, i % 50), trigger="A01"))
                except (OSError, ConnectionError):
                    conn = None
                    time.sleep(0.05)
                    continue
                if segments(ack)["MSA"][1] == "AA":
                    with lock:
                        acked.add(cid)
                    i += 1
            if conn:
                conn.close()

        threads = [threading.Thread(target=sender, args=(k,)) for k in range(16)]
        for t in threads:
            t.start()
        deadline = time.time() + T(60)
        while len(acked) < 300 and time.time() < deadline:
            time.sleep(0.02)
        self.server.kill()  # SIGKILL, mid-stream
        killed_at = len(acked)
        self.client.close()
        self.server.start()
        type(self).client = common.Client(self.server.addr)
        self.client.wait_ready()
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(T(60))
        self.assertGreater(killed_at, 0)
        evs = log_read(self.client)
        by_seq = dict(evs)
        named = set()
        for seq, a in mllp_records(evs):
            if a.outcome == "0":
                named.update(by_seq[s].source_message_id for s in named_seqs(seq, a))
        counts = {}
        for _, e in evs:
            if e.source_message_id.startswith("K"):
                counts[e.source_message_id] = counts.get(e.source_message_id, 0) + 1
        for cid in acked:
            self.assertEqual(counts.get(cid), 2, "%s: its two events, once" % cid)
            self.assertIn(cid, named, "%s: acknowledged without its record" % cid)
        linked = [a for _, a in mllp_records(evs) if a.preceding]
        self.assertGreater(len(linked), 0, "records committed with their events")

"""The decision-support checker on a 3-node cluster (docs/cds.md, "The
checker on the log"): a patient's warfarin and ibuprofen orders committed
through the leader, which is SIGKILLed right after the acknowledgement,
so it dies before or after appending the finding (both happen, by timing):
either way every node ends with exactly one IssueDetected for the
patient, nothing lost and no duplicate, also once the old leader is back.
Each node runs the cds projection; only the leader emits. The gRPC face on
a follower: CheckOrder answers from its own projection, and Acknowledge
is forwarded to the leader, idempotent from any node.

Device silence (docs/cds.md, "Device silence, timed by the leader's
clock"): with a knowledge base whose device-silent limit is 3 s, a cuff
reports once through the leader, which is SIGKILLed about when the
deadline passes (before or after its emitter appended the DEVICE_SILENT):
every node ends with exactly one, the same event, also once the old leader
is back."""
import os
import time
import uuid

import cluster
import common
from cluster import T, log

RXNORM = common.RXNORM


def rx_event(pid, rxid, code):
    return common.rx_event(pid, rxid, code, source="CLUSTER")


def issues(node, pid, rule=None):
    out = []
    req = common.pb.api.ReadRequest(stream="patient-" + pid)
    try:
        for re in node.client._read(req, timeout=T(10)):
            ev = common.pb.event.Event.FromString(re.event)
            if ev.WhichOneof("body") == "issue_detected" and (
                    rule is None or ev.issue_detected.rule_id == rule):
                out.append(ev.event_id)
    except Exception:  # noqa: BLE001 - a node still starting: asked again
        return None
    return out


class CdsClusterTest(cluster.ClusterTestCase):

    def wait_one(self, c, ids, pid, rule=None):
        deadline = time.monotonic() + T(30)
        got = {}
        while time.monotonic() < deadline:
            got = {i: issues(c.nodes[i], pid, rule) for i in ids}
            if all(v is not None and len(v) >= 1 for v in got.values()):
                break
            time.sleep(0.2)
        time.sleep(1.5)  # a late duplicate would show now
        got = {i: issues(c.nodes[i], pid, rule) for i in ids}
        for i, v in got.items():
            self.assertIsNotNone(v, "node %d does not answer\n%s" % (i, c.diag()))
            self.assertEqual(len(v), 1, "node %d holds %d IssueDetected of %s\n%s"
                             % (i, len(v), pid, c.diag()))
        return got

    def test_leader_killed_after_commit_one_issue(self):
        c = self.new_cluster("cds")
        c.start(3)
        for rnd in range(2):
            lid = c.leader()
            pid = "CDSC%d%s" % (rnd, uuid.uuid4().hex[:6].upper())
            b = common.batch([rx_event(pid, "rx-w", "11289"), rx_event(pid, "rx-i", "5640")],
                             c.signer)
            c.nodes[lid].client.append(b, timeout=T(20))
            c.nodes[lid].sigkill()  # before or after its emitter appended the finding
            others = [i for i in c.ids() if i != lid]
            c.wait_leader(others, timeout=T(30))
            self.wait_one(c, others, pid)
            c.nodes[lid].start()
            c.wait_converged(timeout=T(60))
            got = self.wait_one(c, c.ids(), pid)
            self.assertEqual(len({v[0] for v in got.values()}), 1, "the same event everywhere")
            log("cds: round %d: leader %d killed after the commit; one IssueDetected on every "
                "node" % (rnd, lid))

    def test_cds_grpc_on_a_follower(self):
        c = self.new_cluster("cdsgrpc")
        c.start(3)
        lid = c.leader()
        pid = "CDSG" + uuid.uuid4().hex[:6].upper()
        b = common.batch([rx_event(pid, "rx-w", "11289"), rx_event(pid, "rx-i", "5640")],
                         c.signer)
        r = c.nodes[lid].client.append(b, timeout=T(20))
        fids = [i for i in c.ids() if i != lid]
        self.wait_one(c, c.ids(), pid)
        cds = common.pb.cds
        f0, f1 = c.nodes[fids[0]].client.channel, c.nodes[fids[1]].client.channel

        # CheckOrder on a follower, once its projection has folded the orders
        check = f0.unary_unary("/clinlog.v1.Cds/CheckOrder", cds.CheckOrderRequest.SerializeToString,
                               cds.CheckOrderResponse.FromString)
        req = cds.CheckOrderRequest(patient_id=pid)
        req.consistency.min_sequence = r.tree_size
        o = req.orders.add(order_id="d-nap")
        o.drug.system, o.drug.code = RXNORM, "7258"  # naproxen: an NSAID again
        rules = sorted(f.rule_id for f in check(req, timeout=T(20)).findings)
        self.assertIn("warfarin-nsaids", rules)

        # Acknowledge on a follower: forwarded, once; the same from the other follower
        issue = None
        for re in c.nodes[fids[0]].client._read(common.pb.api.ReadRequest(stream="patient-" + pid),
                                                timeout=T(10)):
            ev = common.pb.event.Event.FromString(re.event)
            if ev.WhichOneof("body") == "issue_detected":
                issue = ev.issue_detected.issue_id
        ack_req = cds.AcknowledgeAlertRequest(alert_id=issue)
        acks = []
        for ch in (f0, f1):
            ack = ch.unary_unary("/clinlog.v1.Cds/Acknowledge",
                                 cds.AcknowledgeAlertRequest.SerializeToString,
                                 cds.AlertActionResponse.FromString)
            acks.append(ack(ack_req, timeout=T(20)))
        self.assertFalse(acks[0].duplicate)
        self.assertTrue(acks[1].duplicate)
        self.assertEqual(acks[0].event_id, acks[1].event_id)
        c.wait_converged(timeout=T(60))
        for i in c.ids():
            n = sum(1 for re in c.nodes[i].client._read(
                common.pb.api.ReadRequest(stream="patient-" + pid), timeout=T(10))
                if common.pb.event.Event.FromString(re.event).WhichOneof("body")
                == "alert_acknowledged")
            self.assertEqual(n, 1, "node %d holds %d AlertAcknowledged\n%s" % (i, n, c.diag()))
        log("cds: CheckOrder on follower %d; Acknowledge forwarded once from followers %s"
            % (fids[0], fids))

    def test_device_silence_once_across_leader_change(self):
        kb = os.path.join(common.TMP, "rpm-cluster-%s.kb" % uuid.uuid4().hex)
        with open(kb, "w") as f:
            f.write("clinlog-kb 1\nversion test-rpm-cluster\nsource s Cluster test\n"
                    "device-silent 3 high source=s\n")
        saved = list(cluster.SERVER_ARGS)
        cluster.SERVER_ARGS[:] = saved + ["--cds-kb", kb]
        try:
            c = self.new_cluster("cdsrpm")
            c.start(3)
            lid = c.leader()
            pid = "RPMC" + uuid.uuid4().hex[:6].upper()
            ev = common.pb.event.Event(event_id=common.new_id(), stream="patient-" + pid,
                                       occurred_at=common.timestamp_now(), source_system="CLUSTER")
            ev.recorded_by.principal_id = "admin"
            ev.recorded_by.role = "admin"
            r = ev.device_reading_recorded
            r.device_id = "cuff-" + pid
            r.code.coding.add(system="http://loinc.org", code="8867-4")
            r.value.value, r.value.unit = "70", "{beats}/min"
            c.nodes[lid].client.append(common.batch([ev.SerializeToString()], c.signer),
                                       timeout=T(20))
            time.sleep(3.0)  # about the deadline: the leader may or may not have emitted
            c.nodes[lid].sigkill()
            others = [i for i in c.ids() if i != lid]
            c.wait_leader(others, timeout=T(30))
            self.wait_one(c, others, pid, "device-silent:3")
            c.nodes[lid].start()
            c.wait_converged(timeout=T(60))
            got = self.wait_one(c, c.ids(), pid, "device-silent:3")
            self.assertEqual(len({v[0] for v in got.values()}), 1, "the same event everywhere")
            log("cds: leader %d killed at a silence deadline; one DEVICE_SILENT on every node"
                % lid)
        finally:
            cluster.SERVER_ARGS[:] = saved

"""A write that follows a pause leaves the leader at once.

libraft 0.22.1's leader put every follower it had not heard from since its
previous tick back into probe mode (one message a heartbeat interval), and a
heartbeat's answer did not lift it: after any pause of two heartbeat
intervals the next write waited for the next heartbeat tick before it was
sent to anyone. replication/pipeline.c keeps the pipeline of a follower
that answers. The nodes here run with heartbeats every 400 ms (the stall
would be 0-400 ms) and libraft's trace on, so the test sees both the
latency and how each entry was sent."""
import os
import re
import time

import cluster
from cluster import T, log
import common

HEARTBEAT_MS = 400
ELECTION_MS = 4000
PAUSE_S = 1.2   # three heartbeat intervals: every follower quiet for a tick
WRITES = 6
FAST_S = 0.15   # a held write waits a uniform 0-400 ms; a sent one a few ms

SEND = re.compile(r"^LIBRAFT\s+(\d+) \S+\s+(probe|pipeline) server (\d+) sending (\d+) entr")


class QuietWriteTest(cluster.ClusterTestCase):

    def setUp(self):
        super().setUp()
        self.saved = (cluster.HEARTBEAT_MS, cluster.ELECTION_MS, os.environ.get("LIBRAFT_TRACE"))
        cluster.HEARTBEAT_MS, cluster.ELECTION_MS = HEARTBEAT_MS, ELECTION_MS
        os.environ["LIBRAFT_TRACE"] = "1"  # every node's stderr: libraft's trace

    def tearDown(self):
        cluster.HEARTBEAT_MS, cluster.ELECTION_MS, trace = self.saved
        if trace is None:
            os.environ.pop("LIBRAFT_TRACE", None)
        else:
            os.environ["LIBRAFT_TRACE"] = trace
        super().tearDown()

    def test_write_after_a_pause_is_not_held_for_a_heartbeat(self):
        c = self.new_cluster("quiet")
        c.start(3)
        lid = self.wait_healthy(c)
        leader = c.nodes[lid]
        stream = common.unique_stream("patient-quiet-")
        t0 = time.time_ns()
        took = []
        for _ in range(WRITES):
            time.sleep(PAUSE_S)
            b = common.batch([common.event(stream)], c.signer)
            t = time.monotonic()
            leader.client.append(b, timeout=T(10))
            took.append(time.monotonic() - t)
        self.assertEqual(c.leader(timeout=T(10)), lid, "leadership moved during the test")
        log("quiet: writes after %.1f s pauses took %s ms" % (
            PAUSE_S, ", ".join("%.1f" % (x * 1e3) for x in took)))

        # how the leader sent entries after the cluster was healthy
        sends = {"probe": 0, "pipeline": 0}
        with open(leader.stderr_path, errors="replace") as f:
            for line in f:
                m = SEND.match(line)
                if m and int(m.group(1)) >= t0:
                    sends[m.group(2)] += int(m.group(4)) > 0
        self.assertGreaterEqual(sends["probe"] + sends["pipeline"], WRITES * 2,
                                "libraft's trace shows %r: is LIBRAFT_TRACE still honoured?"
                                % sends)
        self.assertEqual(sends["probe"], 0,
                         "entries went to a follower in probe mode after a pause %d times "
                         "(one message a heartbeat): %r" % (sends["probe"], sends))
        slow = [x for x in took if x >= FAST_S]
        self.assertLessEqual(len(slow), 1, "writes after a pause took %s ms (heartbeat %d ms)"
                             % ([round(x * 1e3, 1) for x in took], HEARTBEAT_MS))

#!/usr/bin/python3
"""clinlogd cluster fault suite: 3 real clinlogd processes replicating with
Raft, under SIGKILL, SIGSTOP, partitions of the Raft links, leadership
transfer and membership changes, while writers append over gRPC.

    /usr/bin/python3 tests/cluster/run.py --build build [-k PATTERN] [-v] [--seed N]

Needs Debian's python3-grpcio, python3-protobuf, python3-nacl and protoc
(tests/interop/common.py generates the protobuf modules). Every test starts
its own cluster in a temporary directory and checks at the end that all
nodes hold the same records (byte for byte), every acknowledged event
exactly once, gap-free stream versions, identical Merkle roots, a clean exit
on SIGTERM and `clinlog verify` on every data directory. The last line of
output is "cluster: N passed, M failed"; the exit status is non-zero when
something failed. With an ASan build (--build build-asan) every timeout is
scaled by 3 and a sanitizer report in any server's stderr fails the test.
"""
import argparse
import atexit
import os
import random
import signal
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import cluster  # noqa: E402  (puts tests/interop on sys.path)
import common  # noqa: E402

MODULES = ["test_faults", "test_partition", "test_membership"]
ALL_MODULES = MODULES


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(common.REPO, "build"),
                    help="build directory with clinlogd and clinlog")
    ap.add_argument("-k", action="append", default=[],
                    help="only tests whose id contains this substring (repeatable)")
    ap.add_argument("--timeout-scale", type=float, default=None,
                    help="multiply every timeout (default 1, or 3 for an ASan build)")
    ap.add_argument("--seed", type=int, default=None, help="random seed (nemesis, writers)")
    ap.add_argument("--cycles", type=int, default=None, help="nemesis cycles (default 12)")
    ap.add_argument("--server-arg", action="append", default=[],
                    help="extra clinlogd flag for every node, e.g. --server-arg=--no-forward "
                         "(repeatable)")
    ap.add_argument("--modules", default=",".join(MODULES),
                    help="comma-separated test modules (default %s; all: %s)"
                         % (",".join(MODULES), ",".join(ALL_MODULES)))
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("-v", action="store_true", help="verbose")
    args = ap.parse_args()

    start = time.monotonic()
    scale = args.timeout_scale
    if scale is None:
        scale = 3.0 if "asan" in os.path.basename(os.path.abspath(args.build)) else 1.0
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    os.environ["CLINLOG_CLUSTER_SEED"] = str(seed)
    cluster.SERVER_ARGS[:] = args.server_arg
    if args.cycles:
        os.environ["CLINLOG_CLUSTER_CYCLES"] = str(args.cycles)
    print("cluster: build %s, timeout scale %g, seed %d%s" % (
        args.build, scale, seed,
        ", clinlogd flags " + " ".join(args.server_arg) if args.server_arg else ""), flush=True)
    tmp = tempfile.mkdtemp(prefix="clinlog-cluster-")
    atexit.register(common.kill_all_servers)

    def on_signal(sig, frame):
        common.kill_all_servers()
        sys.exit(128 + sig)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    for tool in ("clinlogd", "clinlog"):
        if not os.access(os.path.join(args.build, tool), os.X_OK):
            print("cluster: %s not found in %s" % (tool, args.build))
            print("cluster: 0 passed, 1 failed")
            return 1
    try:
        cluster.setup(args.build, tmp, scale)
    except Exception as e:  # protoc missing or failing
        print("cluster: setup failed: %s" % e)
        print("cluster: 0 passed, 1 failed")
        return 1

    loader = unittest.TestLoader()
    if args.k:
        loader.testNamePatterns = ["*%s*" % k for k in args.k]
    suite = unittest.TestSuite()
    for m in args.modules.split(","):
        suite.addTests(loader.loadTestsFromName(m))
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2 if args.v else 1)
    try:
        result = runner.run(suite)
    finally:
        common.kill_all_servers()
        if not args.keep:
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("cluster: kept %s" % tmp)
    failed_tests, class_errors = set(), 0
    for t, _ in result.failures + result.errors:
        t = getattr(t, "test_case", t)
        if isinstance(t, unittest.TestCase):
            failed_tests.add(t.id())
        else:
            class_errors += 1
    failed_tests |= {t.id() for t in result.unexpectedSuccesses}
    bad = len(failed_tests) + class_errors
    passed = result.testsRun - len(failed_tests) - len(result.skipped)
    if failed_tests or class_errors:
        print("cluster: failed: " + ", ".join(sorted(failed_tests)) +
              " (seed %d: rerun with --seed %d)" % (seed, seed))
    print("cluster: %.1fs" % (time.monotonic() - start))
    print("cluster: %d passed, %d failed" % (passed, bad))
    return 1 if bad or result.testsRun == 0 else 0


if __name__ == "__main__":
    sys.exit(main())

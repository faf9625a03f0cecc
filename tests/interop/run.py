#!/usr/bin/python3
"""clinlogd interop suite: an independent Python client (Debian's python3-grpcio,
python3-protobuf, python3-nacl) against a real clinlogd.

    /usr/bin/python3 tests/interop/run.py --build build [-k PATTERN] [-v]

Each test class starts its own clinlogd on a fresh data directory in a
temporary directory. The last line of output is "interop: N passed, M failed";
the exit status is non-zero when something failed. With an ASan build
(--build build-asan) a sanitizer report in any server's stderr fails its class.
"""
import argparse
import atexit
import os
import signal
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import common  # noqa: E402

MODULES = ["test_rpcs", "test_errors", "test_tls", "test_concurrency", "test_kill"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(common.REPO, "build"),
                    help="build directory with clinlogd and clinlog")
    ap.add_argument("-k", action="append", default=[],
                    help="only tests whose id contains this substring (repeatable)")
    ap.add_argument("--timeout-scale", type=float, default=None,
                    help="multiply every timeout (default 1, or 3 for an ASan build)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("-v", action="store_true", help="verbose")
    args = ap.parse_args()

    start = time.monotonic()
    scale = args.timeout_scale
    if scale is None:
        scale = 3.0 if "asan" in os.path.basename(os.path.abspath(args.build)) else 1.0
    tmp = tempfile.mkdtemp(prefix="clinlog-interop-")
    atexit.register(common.kill_all_servers)

    def on_signal(sig, frame):
        common.kill_all_servers()
        sys.exit(128 + sig)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    for tool in ("clinlogd", "clinlog"):
        if not os.access(os.path.join(args.build, tool), os.X_OK):
            print("interop: %s not found in %s" % (tool, args.build))
            print("interop: 0 passed, 1 failed")
            return 1
    try:
        common.setup(args.build, tmp, scale)
    except Exception as e:  # protoc missing or failing
        print("interop: setup failed: %s" % e)
        print("interop: 0 passed, 1 failed")
        return 1

    loader = unittest.TestLoader()
    if args.k:
        loader.testNamePatterns = ["*%s*" % k for k in args.k]
    suite = unittest.TestSuite()
    for m in MODULES:
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
            print("interop: kept %s" % tmp)
    # Count tests, not subtests: a test with failing subtests is one failure.
    # Class-level errors (setUpClass/tearDownClass, e.g. a sanitizer report or
    # a non-zero exit after SIGTERM) count as one failure each.
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
        print("interop: failed: " + ", ".join(sorted(failed_tests) +
                                              [str(t) for t, _ in result.errors
                                               if not isinstance(getattr(t, "test_case", t),
                                                                 unittest.TestCase)]))
    print("interop: %.1fs" % (time.monotonic() - start))
    print("interop: %d passed, %d failed" % (passed, bad))
    return 1 if bad or result.testsRun == 0 else 0


if __name__ == "__main__":
    sys.exit(main())

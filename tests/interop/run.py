#!/usr/bin/python3
"""clinlogd interop suite: an independent Python client (Debian's python3-grpcio,
python3-protobuf, python3-nacl) against a real clinlogd.

    /usr/bin/python3 tests/interop/run.py --build build [-k PATTERN] [-v] [--part 1|2]

ctest runs it as two entries side by side, "interop" (--part 1) and
"interop_b" (--part 2); $CLINLOG_INTEROP_SKIP (comma-separated module
names) leaves modules out.

Each test class starts its own clinlogd on a fresh data directory in a
temporary directory. The last line of output is "interop: N passed, M failed";
the exit status is non-zero when something failed. With an ASan build
(--build build-asan) a sanitizer report in any server's stderr fails its class.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import common  # noqa: E402

# Two halves of about equal time (the plain build's module times), run
# side by side by ctest as "interop" (part 1) and "interop_b" (part 2), each
# in its own port slice; the benchmark modules all in part 2.
PART1 = ["test_rpcs", "test_keys", "test_auth", "test_cds_grpc", "test_mllp", "test_cds_rpm",
         "test_cds_news2", "test_errors", "test_tls", "test_cds_alerts", "test_fhir_http",
         "test_cds_bcma", "test_device_ingest", "test_ingest_hl7", "test_fhir", "test_malloc"]
PART2 = ["test_bench_report", "test_bench_sections", "test_bench_steps", "test_bench_proof",
         "test_bench_ingest_hl7", "test_bench_ingest_fhir", "test_fhir_write", "test_logkey",
         "test_fhir_write_types", "test_query", "test_concurrency", "test_kill", "test_audit",
         "test_fhir_write_cond", "test_mllp_audit", "test_cross_format", "test_cds_hooks",
         "test_fhir_write_audit", "test_kb"]
MODULES = PART1 + PART2


def main():
    ap = common.runner_parser()
    ap.add_argument("--part", type=int, choices=(1, 2), default=None,
                    help="run one half of the modules (default: all)")
    args = ap.parse_args()
    mods = {None: MODULES, 1: PART1, 2: PART2}[args.part]
    # modules left out by $CLINLOG_INTEROP_SKIP (comma-separated): the
    # sanitizer pass of scripts/test.sh leaves out the benchmark modules
    skip = set(filter(None, os.environ.get("CLINLOG_INTEROP_SKIP", "").split(",")))
    unknown = skip - set(MODULES)
    if unknown:
        print("interop: CLINLOG_INTEROP_SKIP names no module: %s" % ", ".join(sorted(unknown)))
        return 2
    mods = [m for m in mods if m not in skip]
    return common.run_suite("interop_b" if args.part == 2 else "interop", args, mods)


if __name__ == "__main__":
    sys.exit(main())

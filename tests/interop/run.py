#!/usr/bin/python3
"""clinlogd interop suite: an independent Python client (Debian's python3-grpcio,
python3-protobuf, python3-nacl) against a real clinlogd.

    /usr/bin/python3 tests/interop/run.py --build build [-k PATTERN] [-v]

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

MODULES = ["test_rpcs", "test_errors", "test_tls", "test_concurrency", "test_kill", "test_query",
           "test_fhir", "test_fhir_http", "test_auth", "test_audit", "test_keys", "test_logkey",
           "test_kb", "test_bench_report", "test_cds_hooks", "test_cds_alerts",
           "test_cds_grpc", "test_cds_rpm", "test_cds_bcma", "test_cds_news2", "test_ingest_hl7",
           "test_mllp", "test_mllp_audit", "test_device_ingest",
           "test_fhir_write", "test_fhir_write_cond", "test_fhir_write_types",
           "test_fhir_write_audit",
           "test_cross_format", "test_bench_ingest_hl7", "test_bench_ingest_fhir",
           "test_bench_proof"]


def main():
    args = common.runner_parser().parse_args()
    return common.run_suite("interop", args, MODULES)


if __name__ == "__main__":
    sys.exit(main())

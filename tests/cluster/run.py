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
import os
import random
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import cluster  # noqa: E402  (puts tests/interop on sys.path)
import common  # noqa: E402

MODULES = ["test_faults", "test_partition", "test_membership", "test_phi", "test_audit_cluster",
           "test_keys_cluster", "test_raft_tls", "test_node_auth", "test_logkey_cluster",
           "test_cds_cluster", "test_mllp_cluster", "test_fhir_write_cluster", "test_quiet"]


def main():
    ap = common.runner_parser()
    ap.add_argument("--seed", type=int, default=None, help="random seed (nemesis, writers)")
    ap.add_argument("--cycles", type=int, default=None, help="nemesis cycles (default 12)")
    ap.add_argument("--server-arg", action="append", default=[],
                    help="extra clinlogd flag for every node, e.g. --server-arg=--no-forward "
                         "(repeatable)")
    ap.add_argument("--raft-plaintext", action="store_true",
                    help="plaintext Raft on loopback (--dev) instead of mutual TLS with the "
                         "suite's certificates")
    ap.add_argument("--modules", default=os.environ.get("CLINLOG_CLUSTER_MODULES") or
                    ",".join(MODULES),
                    help="comma-separated test modules (default $CLINLOG_CLUSTER_MODULES, "
                         "else %s)" % ",".join(MODULES))
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    os.environ["CLINLOG_CLUSTER_SEED"] = str(seed)
    cluster.SERVER_ARGS[:] = args.server_arg
    cluster.RAFT_TLS = not args.raft_plaintext
    if args.cycles:
        os.environ["CLINLOG_CLUSTER_CYCLES"] = str(args.cycles)
    print("cluster: build %s, timeout scale %g, seed %d, raft %s%s" % (
        args.build, common.timeout_scale(args), seed,
        "plaintext" if args.raft_plaintext else "mutual TLS",
        ", clinlogd flags " + " ".join(args.server_arg) if args.server_arg else ""), flush=True)
    return common.run_suite("cluster", args, args.modules.split(","), cluster.setup,
                            " (seed %d: rerun with --seed %d)" % (seed, seed))


if __name__ == "__main__":
    sys.exit(main())

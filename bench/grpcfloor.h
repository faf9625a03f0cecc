/* The floor of a call on this stack: what one event a call through gRPC
 * costs when the server does nothing but what any server of signed,
 * durable events must do (clinlog-bench grpc's "floor" rows, beside its
 * unary Append cells; docs/bench.md, "The floor of a call").
 *
 * `clinlog-bench floor-server [--durable FILE]` is a gRPC C-core server
 * on 127.0.0.1 (an ephemeral port, printed to stderr as "listening on
 * 127.0.0.1:PORT", as clinlogd prints it) with two completion-queue
 * threads, as clinlogd has. Log.Append is registered with its payload read
 * with the call, as clinlogd registers it, and every call is answered at
 * once from the thread that saw it arrive: a pre-encoded AppendResponse
 * (one position and a tree size), status OK. No worker, no Raft, no store.
 * With --durable, before answering, the thread checks one Ed25519
 * signature (a batch signature costs one check), and the call waits for
 * a durable write of 512 bytes (about a stored record) into FILE
 * (pre-written, so writes do not extend it; pwrite + fdatasync): the
 * thread that finds no write in progress writes for every call waiting,
 * round after round, and answers them, while the other thread takes the
 * calls arriving meanwhile (group commit without a hand-off: at
 * concurrency 1 the thread that took a call writes and answers it). It
 * serves until SIGTERM.
 *
 * bench_floor_run starts that server (this executable, `self`), drives
 * it with the same client, pre-signed batches and load generator as the
 * unary cells, and stops it. */
#ifndef CL_BENCH_GRPCFLOOR_H
#define CL_BENCH_GRPCFLOOR_H

#include "bench/benchutil.h"

int bench_floor_server_main(int argc, char **argv);

typedef struct bench_floor_row {
  int durable; /* 0: the answer alone; 1: signature check + group-committed fdatasync */
  int conc;
  bench_result r;
  double server_us, client_us; /* CPU µs per call (/proc), -1: not read */
} bench_floor_row;

/* Runs the floor server (durable or not) under `dir` and one closed-loop
 * cell per concs[i] of `seconds` each, one event a call from a pool of
 * pre-signed batches, into rows[i]. 0, or -1 after saying why on stderr. */
int bench_floor_run(const char *self, const char *dir, int durable, const int *concs, int nconc,
                    double seconds, const cl_signer *admin, unsigned *seed, bench_floor_row *rows);

/* The rows as a JSON array's members (no brackets), first one without a
 * leading comma. */
void bench_floor_json(const bench_floor_row *rows, int n);

#endif

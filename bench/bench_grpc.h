/* clinlog-bench grpc: the gRPC path measured against the store (bench_grpc.c).
 */
#ifndef CL_BENCH_GRPC_H
#define CL_BENCH_GRPC_H

/* argv[0] is the program (clinlogd is looked for beside it), argv[1] "grpc".
 * Returns the exit status. */
int bench_grpc_main(int argc, char **argv);

#endif

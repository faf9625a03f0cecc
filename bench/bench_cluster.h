/* clinlog-bench cluster: a replicated clinlogd cluster on loopback
 * (bench_cluster.c). */
#ifndef CL_BENCH_CLUSTER_H
#define CL_BENCH_CLUSTER_H

/* argv[0] is the program (clinlogd and clinlog are looked for beside it),
 * argv[1] "cluster". Returns the exit status. */
int bench_cluster_main(int argc, char **argv);

#endif

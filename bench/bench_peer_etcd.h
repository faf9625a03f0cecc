/* clinlog-bench etcd: a 3-member etcd 3.4 cluster driven with KV.Put, the
 * peer of clinlog's 3-node append benchmark (bench_peer_etcd.c). */
#ifndef CL_BENCH_PEER_ETCD_H
#define CL_BENCH_PEER_ETCD_H

/* argv[1] is "etcd". Returns the exit status (0; 1 when the cluster could
 * not start or a Put failed; 2 on a usage error; 3 when etcd is not
 * installed, after printing why). */
int bench_peer_etcd_main(int argc, char **argv);

#endif

/* clinlog-bench etcd-watch: etcd 3.4's Watch fan-out, 1 member, the peer of
 * clinlog's Subscribe fan-out (bench_peer_etcd_watch.c). */
#ifndef CL_BENCH_PEER_ETCD_WATCH_H
#define CL_BENCH_PEER_ETCD_WATCH_H

/* argv[1] is "etcd-watch". Returns the exit status (0; 1 when etcd could
 * not start or a call failed; 2 on a usage error; 3 when etcd is not
 * installed, after printing why). */
int bench_peer_etcd_watch_main(int argc, char **argv);

#endif

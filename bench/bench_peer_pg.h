/* clinlog-bench pg: PostgreSQL 15 as an event table, the peer of clinlog's
 * single-node append benchmark (bench_peer_pg.c). */
#ifndef CL_BENCH_PEER_PG_H
#define CL_BENCH_PEER_PG_H

/* argv[1] is "pg". Returns the exit status (0; 1 when the peer could not
 * run or an insert failed; 2 on a usage error; 3 when PostgreSQL 15 is not
 * installed, after printing why). */
int bench_peer_pg_main(int argc, char **argv);

#endif

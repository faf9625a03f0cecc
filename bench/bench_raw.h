/* clinlog-bench raw: the machine's own limits, measured in the same run as
 * the benchmarks they bound (bench_raw.c). */
#ifndef CL_BENCH_RAW_H
#define CL_BENCH_RAW_H

/* argv[1] is "raw". Returns the exit status (0; 1 on an I/O error; 2 on a
 * usage error). */
int bench_raw_main(int argc, char **argv);

#endif

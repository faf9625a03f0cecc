/* clinlog-bench raw: the machine's own limits, measured in the same run as
 * the benchmarks they bound (bench_raw.c). */
#ifndef CL_BENCH_RAW_H
#define CL_BENCH_RAW_H

#include <rocksdb/c.h>
#include <stddef.h>
#include <stdint.h>

/* argv[1] is "raw". Returns the exit status (0; 1 on an I/O error; 2 on a
 * usage error). */
int bench_raw_main(int argc, char **argv);

/* Adds to `wb` the store's four RocksDB entries for each of `n` events:
 * the record (`record_size` bytes) and its Merkle entry (48) under the next
 * sequence number from *next_seq (advanced by n), the id index entry (16-byte
 * key, 48) and the stream index entry (40-byte key, 8) under random keys;
 * values are taken from `val` (borrowed, at least record_size bytes).
 * `cfs` are the log, merkle, ids and streams column families. The raw limit
 * of `clinlog-bench store` (raw4) and `clinlog-bench raw` (rocksdb) alike.
 * Not thread-safe on the same *next_seq. */
void bench_raw_put4(rocksdb_writebatch_t *wb, rocksdb_column_family_handle_t *const *cfs, size_t n,
                    const char *val, size_t record_size, uint64_t *next_seq);

#endif

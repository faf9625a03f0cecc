/* The `streams` projection: what the log holds per stream, and an index of
 * events by type. It is the per-patient index later views stand on (a
 * patient's stream is "patient-<id>": its version, first and last events,
 * and how many events of each type it holds), the list of a category's
 * streams (every patient), and the events of one type in log order.
 *
 *   | family   | key                                   | value                      |
 *   |----------|---------------------------------------|----------------------------|
 *   | stream   | stream tag[32]                        | StreamInfo{stream,category}|
 *   |          |                                       | sealed under the stream's  |
 *   |          |                                       | data key; written once     |
 *   | stats    | stream tag[32]                        | StreamInfo without names:  |
 *   |          |                                       | versions, seqs, times,     |
 *   |          |                                       | counts (plain)             |
 *   | category | hash(category)[32] || stream tag[32]  | empty                      |
 *   | type     | event type u32 BE || seq u64 BE       | stream tag[32]             |
 *
 * Keys hold no plaintext: stream tags and cl_proj_hash of the category.
 * The stats are plain because they are what the records' plaintext headers
 * already say (tag, seq, version, commit time, type), counted: sealing them
 * at every change cost half the fold. Erasing a stream removes it from
 * every family (folding its StreamErased) and its sealed name is
 * unreadable from the commit of the erasure on. */
#ifndef CL_QUERY_STREAMS_STREAMS_H
#define CL_QUERY_STREAMS_STREAMS_H

#include <stddef.h>
#include <stdint.h>

#include "clinlog/v1/query.pb-c.h"
#include "query/runner.h"

/* The projection definition, for cl_runner_start. */
extern const cl_projection cl_streams_projection;

/* A stream's info (with type names filled in). *out returned-owned
 * (clinlog__v1__stream_info__free_unpacked(*out, NULL)). Errors:
 * CL_ENOTFOUND (no events, or erased), CL_ECRYPTO, CL_EIO. */
int cl_streams_get(cl_proj *p, cl_log *log, const char *stream, Clinlog__V1__StreamInfo **out,
                   cl_err *err);

/* One page of a category's streams, after the stream whose tag is `after`
 * (NULL: from the start). Each info goes to fn (returned-owned by fn: free
 * it with clinlog__v1__stream_info__free_unpacked). *next gets the last tag
 * given (for the next page) and *more whether streams remain. */
typedef int (*cl_streams_fn)(void *ctx, Clinlog__V1__StreamInfo *info, cl_err *err);
int cl_streams_list(cl_proj *p, const char *category, const uint8_t *after, size_t limit,
                    cl_streams_fn fn, void *ctx, uint8_t next[32], int *more, cl_err *err);

/* Seqs of the events of `type`, from `from_seq` on, at most `limit`;
 * *next_from gets the seq to continue from (0: no more). */
int cl_streams_by_type(cl_proj *p, uint32_t type, uint64_t from_seq, size_t limit, uint64_t *seqs,
                       size_t *n, uint64_t *next_from, cl_err *err);

/* A stream name's category: up to the first '-' (the whole name if it has
 * none). Writes at most n bytes with the NUL. */
void cl_streams_category(const char *stream, char *out, size_t n);

#endif

/* Helpers shared by the Criterion tests: scratch directories and files. */
#ifndef CL_TESTS_TESTUTIL_H
#define CL_TESTS_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Creates a fresh empty directory under $TMPDIR (or /tmp) and returns its
 * path (returned-owned: free()). Aborts the test process on failure. */
char *cl_test_tmpdir(const char *tag);

/* A loopback TCP port that was free a moment ago (bound, then closed). */
int cl_test_free_port(void);

/* Removes a directory tree (best effort). */
void cl_test_rmtree(const char *path);

/* Reads a whole file; returns-owned buffer (free()), NULL on error. */
uint8_t *cl_test_read_file(const char *path, size_t *len);

/* Returns 1 if `needle` occurs in any regular file under `dir`. */
int cl_test_tree_contains(const char *dir, const void *needle, size_t n);

/* ---- log fixtures (store tests) ---- */
#include "clinlog/v1/event.pb-c.h"
#include "store/keys.h"
#include "store/log.h"

/* Creates a log in a fresh directory with admin principal "admin"; opens it.
 * *dir and *admin are returned-owned (free(), cl_signer_free). */
cl_log *cl_test_log_new(const char *tag, char **dir, cl_signer *admin, uint64_t cp_interval);

/* Reopens a log directory. */
cl_log *cl_test_log_open(const char *dir, uint64_t cp_interval);

/* Builds a serialized ObservationRecorded event in `stream` recorded by
 * `principal`, whose note is `note` (may be NULL); a fresh random id is
 * written to id (if not NULL). Returns-owned buffer (free()). */
uint8_t *cl_test_event(const char *stream, const char *principal, const char *note, uint8_t id[16],
                       size_t *len);

/* Appends n serialized events signed by s (batch signature if batch_sig),
 * with an optional expectation for `x_stream`. */
int cl_test_append(cl_log *log, const cl_signer *s, uint8_t **events, const size_t *lens, size_t n,
                   int batch_sig, const char *x_stream, int x_kind, uint64_t x_version,
                   cl_append_result *r, cl_err *err);

/* One event, per-event signature, any version. Returns the rc; *seq set. */
int cl_test_append1(cl_log *log, const cl_signer *s, const char *stream, const char *principal,
                    const char *note, uint64_t *seq, cl_err *err);

/* Prepares one ObservationRecorded in `stream` (cl_test_event), signed by
 * s, as a Raft leader would: returned-owned
 * (clinlog__v1__prepared_batch__free_unpacked(pb, NULL)); fails the test on
 * error. */
Clinlog__V1__PreparedBatch *cl_test_prepare1(cl_log *log, const cl_signer *s, const char *stream);

/* A serialized StreamErased of `stream`, in "$erasures", recorded by
 * "admin" (returned-owned, free()). */
uint8_t *cl_test_erasure_event(const char *stream, size_t *len);

/* Appends the StreamErased of `stream` (signed by s); fails the test on error. */
void cl_test_erase(cl_log *log, const cl_signer *s, const char *stream);

/* A serialized PrincipalRegistered of `principal` with one role and the
 * public key of `key`, in "$principal-<principal>", recorded by "admin"
 * (returned-owned, free()). */
uint8_t *cl_test_principal_event(const char *principal, const char *role, const cl_signer *key,
                                 size_t *len);

/* Packs an Event (borrowed) into a returned-owned buffer. */
uint8_t *cl_test_pack_event(const Clinlog__V1__Event *ev, size_t *len);

/* Brings dst to the tree (target, root) by copying src's records in chunks
 * of per_chunk (at most CL_TEST_MAX_CHUNK), as Cluster.FetchRecords does
 * over the network: each chunk carries the wrapped keys of the streams it
 * starts and a consistency proof from its last record to the target.
 * tamper (a seq, 0 = none) flips one byte of that record in transit.
 * Returns cl_log_ingest's result. */
#define CL_TEST_MAX_CHUNK 128
int cl_test_copy_records(cl_log *src, cl_log *dst, uint64_t target, const uint8_t root[32],
                         unsigned per_chunk, uint64_t tamper, cl_err *err);
/* The same; tamper_key (a seq, 0 = none): when that record starts its
 * stream, one byte of the stream's wrapped data key is flipped in transit. */
int cl_test_copy_records_ex(cl_log *src, cl_log *dst, uint64_t target, const uint8_t root[32],
                            unsigned per_chunk, uint64_t tamper, uint64_t tamper_key, cl_err *err);

/* SHA-256 over every key and value of a projection's state (cl_proj_dump)
 * into out; returns the number of entries. Aborts on error. */
#include "store/proj.h"
uint64_t cl_test_proj_digest(cl_proj *p, uint8_t out[32]);

/* Catches `def` up on the log in `dir` (holding `size` events) in a child
 * process killed with SIGKILL at random moments, until a run finishes:
 * after every kill the position must not go back. Returns the kills (more
 * than 3, else the test fails). The caller then checks the state against a
 * rebuild. */
#include "query/runner.h"
int cl_test_kill9_catch_up(const char *dir, const cl_projection *def, uint64_t size);

#endif

/* The stored record: its encoding in two parts, and decoding of stored or
 * received records.
 *
 * A record (value of the `log` family, key = seq u64 BE; the Merkle leaf is
 * SHA-256(0x00 || record)) is a clinlog.v1.Record protobuf whose fields
 * assigned at commit come last and fixed-width. So a record is
 *
 *   | part   | bytes | fields (field number)                                  |
 *   |--------|-------|--------------------------------------------------------|
 *   | prefix | var.  | format (1), stream_tag (3), event_id (5), event_type   |
 *   |        |       | (6), event_hash (8), nonce (9), ciphertext (10),       |
 *   |        |       | signature (11), batch_index (12), batch_size (13)      |
 *   | tail   | 28    | seq (14, fixed64): key 0x71 + 8 bytes LE               |
 *   |        |       | stream_version (15, fixed64): key 0x79 + 8 bytes LE    |
 *   |        |       | committed_at_ns (16, sfixed64): key 0x81 0x01 + 8 LE   |
 *
 * The prefix is known when a batch is prepared, so the appending thread
 * encodes it and starts its leaf hash (SHA-256 state after 0x00 || prefix)
 * in parallel with other appenders; the serialized commit only writes the
 * tail and hashes its 28 bytes. Because the tail fields are the highest
 * field numbers and fixed-width, prefix || tail is exactly the canonical
 * protobuf encoding of the whole record. */
#ifndef CL_STORE_RECORD_H
#define CL_STORE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "clinlog/v1/record.pb-c.h"
#include "store/err.h"
#include "store/sha256.h"

#define CL_FORMAT_VERSION 1
#define CL_RECORD_TAIL_LEN 28

/* The prefix of one record and its started leaf hash. */
typedef struct cl_record_prefix {
  uint8_t *buf; /* prefix, with CL_RECORD_TAIL_LEN bytes of room after it */
  size_t len;
  cl_sha256_state st;
} cl_record_prefix;

/* Prefixes of every event of pb (returned-owned, cl_record_prefixes_free),
 * or NULL when out of memory. */
cl_record_prefix *cl_record_prefixes(const Clinlog__V1__PreparedBatch *pb);
void cl_record_prefixes_free(cl_record_prefix *p, size_t n);

/* Completes a record: writes the tail after the prefix and finishes its
 * leaf hash. The record is then p->buf, p->len + CL_RECORD_TAIL_LEN bytes. */
void cl_record_finish(cl_record_prefix *p, uint64_t seq, uint64_t version, int64_t committed_at,
                      uint8_t leaf[32]);

/* Unpacks record bytes (borrowed, untrusted) and checks the header shape:
 * format, 32-byte tag and hash, 16-byte id, 24-byte nonce. On success *out
 * is returned-owned (clinlog__v1__record__free_unpacked(*out, NULL)).
 * Errors: CL_ECORRUPT (err says what), CL_ENOMEM. */
int cl_record_decode(const uint8_t *p, size_t n, Clinlog__V1__Record **out, cl_err *err);

#endif

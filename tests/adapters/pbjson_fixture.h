/* The helpers of the proto3 JSON mapping tests (test_pbjson.c,
 * test_pbjson_errors.c), over adapters/pbjson and the test schema
 * tests/adapters/pbjson_test.proto (package cltest). Each fails the running
 * Criterion test when its expectation does not hold. */
#ifndef CL_TESTS_ADAPTERS_PBJSON_FIXTURE_H
#define CL_TESTS_ADAPTERS_PBJSON_FIXTURE_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include "pbjson_test.pb-c.h"

#define ALL (&cltest__all__descriptor)
#define INNER (&cltest__inner__descriptor)
#define BATCH (&clinlog__v1__append_batch__descriptor)

/* Parses `text` as a d message, which must succeed (to free with
 * protobuf_c_message_free_unpacked). */
ProtobufCMessage *parse_ok(const ProtobufCMessageDescriptor *d, const char *text);

/* Expects failure with `code`; if `msg` is not NULL, err.msg must equal it. */
void parse_fails(const ProtobufCMessageDescriptor *d, const char *text, int code, const char *msg);

/* m as JSON, which must succeed (a new reference). */
json_t *to_json_ok(const ProtobufCMessage *m);

/* a and b pack to the same bytes. */
void assert_same_packed(const ProtobufCMessage *a, const ProtobufCMessage *b);

/* got (released) equals the JSON of want_text (json_equal). */
void assert_json_eq(json_t *got, const char *want_text);

/* Parses `in`, checks the emitted JSON equals `want`, parses that back and
 * checks both messages pack identically. Returns the first message (caller
 * frees) for further checks. */
ProtobufCMessage *round_trip(const ProtobufCMessageDescriptor *d, const char *in, const char *want);

/* m to JSON fails with `code`; if `msg` is not NULL, err.msg must equal
 * it. */
void to_json_fails(const ProtobufCMessage *m, int code, const char *msg);

#endif

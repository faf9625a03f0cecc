/* Generic converter between protobuf-c messages and the proto3 JSON mapping
 * (https://protobuf.dev/programming-guides/proto3/#json).
 *
 * Driven only by protobuf-c's runtime descriptors: there is no per-message
 * code, so any generated message (clinlog.v1.Event, AppendBatch, ...) can be
 * read from and written to JSON. Used by the `clinlog` CLI and the gRPC/HTTP
 * layer.
 *
 * Mapping (proto3 JSON):
 *
 * | proto type           | JSON emitted        | JSON accepted              |
 * |----------------------|---------------------|----------------------------|
 * | int32 sint32         | number              | number, integral real,     |
 * | sfixed32 uint32      |                     | decimal string "123"       |
 * | fixed32              |                     |                            |
 * | int64 sint64         | decimal string      | string or number, range-   |
 * | sfixed64 uint64      | "-123"              | checked, no precision loss |
 * | fixed64              |                     |                            |
 * | float double         | number, "NaN",      | number, numeric string,    |
 * |                      | "Infinity",         | "NaN", "Infinity",         |
 * |                      | "-Infinity"         | "-Infinity"                |
 * | bool                 | true / false        | true / false               |
 * | string               | string              | string: valid UTF-8, no    |
 * |                      |                     | U+0000                     |
 * | bytes                | standard base64,    | standard or URL-safe,      |
 * |                      | padded              | padded or not              |
 * | enum                 | value name (number  | value name or integer      |
 * |                      | if it has no name)  |                            |
 * | message              | object              | object                     |
 * | repeated T           | array               | array, no null elements    |
 * | google.protobuf.     | "1972-01-01T10:00:  | RFC 3339, Z or +hh:mm /    |
 * |   Timestamp          | 20.021Z": UTC, 0/3/ | -hh:mm offset              |
 * |                      | 6/9 fraction digits |                            |
 *
 * Field names are emitted in lowerCamelCase computed from the proto name
 * (protobuf-c 1.4 descriptors carry no json_name); the parser accepts the
 * camelCase name and the original proto name, but not both for one field.
 * `null` for any field means "absent / default". Default values are omitted
 * when emitting (a float or double -0.0 counts as default, matching what
 * protobuf-c leaves off the wire), except a oneof member that is set, which
 * is always emitted. Timestamps cover 0001-01-01T00:00:00Z to
 * 9999-12-31T23:59:59.999999999Z. Unknown fields held by a message
 * (ProtobufCMessage.unknown_fields) are not emitted.
 *
 * Not supported: map fields (protobuf-c represents them as repeated *Entry
 * messages; they are read and written as arrays of {"key":..,"value":..}),
 * and well-known types other than Timestamp (Duration, Struct, wrappers, Any,
 * FieldMask), which are treated as ordinary messages.
 *
 * Invariants: messages produced here are allocated entirely with the module's
 * allocator (malloc unless a test hook is set), so that
 * protobuf_c_message_free_unpacked(msg, NULL) releases them; on error nothing
 * stays allocated. Nesting is limited to CL_PBJSON_MAX_DEPTH message levels
 * in both directions.
 *
 * Thread-safety: the conversion functions keep no global state and are safe
 * to call concurrently (given that jansson's allocator and the process locale
 * are not changed meanwhile: numeric strings are read with strtod after
 * swapping '.' for localeconv()'s decimal point); cl_pbjson_set_alloc_hook
 * is not. */
#ifndef CL_ADAPTERS_PBJSON_H
#define CL_ADAPTERS_PBJSON_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

#include "store/err.h"

/* Deepest message nesting accepted or emitted (the top message is level 1). */
#define CL_PBJSON_MAX_DEPTH 64

/* Converts `json` (borrowed) to a new message of type `desc` (borrowed,
 * normally a generated static descriptor). On success *out is returned-owned:
 * free it with protobuf_c_message_free_unpacked(*out, NULL). On error *out is
 * untouched, nothing is allocated, and err->msg names the JSON path of the
 * offending value, e.g. "observationRecorded.value.quantity.value: expected
 * string".
 * Errors: CL_EINVAL (NULL argument or not a message descriptor);
 * CL_EMALFORMED (anything not matching the schema: unknown field name, field
 * given under both its names, wrong JSON type, bad base64, bad enum name,
 * integer out of range, two members of one oneof set, invalid RFC 3339
 * timestamp, invalid UTF-8 or U+0000 in a string, nesting deeper than
 * CL_PBJSON_MAX_DEPTH); CL_ENOMEM. Thread-safe. */
CL_MUST_CHECK int cl_pbjson_from_json(const ProtobufCMessageDescriptor *desc,
                                      const json_t *json,
                                      ProtobufCMessage **out, cl_err *err);

/* Parses the JSON text `text` (borrowed, `len` bytes, need not be
 * NUL-terminated; duplicate object keys rejected) and converts it as
 * cl_pbjson_from_json does. Ownership of *out and errors as there; a text
 * that is not JSON gives CL_EMALFORMED with jansson's line, column and
 * reason. Thread-safe. */
CL_MUST_CHECK int cl_pbjson_from_text(const ProtobufCMessageDescriptor *desc,
                                      const char *text, size_t len,
                                      ProtobufCMessage **out, cl_err *err);

/* Converts `msg` (borrowed) to JSON: an object, or a string when msg is a
 * google.protobuf.Timestamp. On success *out is returned-owned (release with
 * json_decref). On error *out is untouched and err->msg names the path.
 * Errors: CL_EINVAL (NULL argument); CL_EMALFORMED (the message cannot be
 * represented: a string that is not valid UTF-8, a Timestamp out of range, a
 * NULL element in a repeated string or message field, bytes with len > 0 and
 * data NULL, nesting deeper than CL_PBJSON_MAX_DEPTH); CL_ENOMEM.
 * Thread-safe. */
CL_MUST_CHECK int cl_pbjson_to_json(const ProtobufCMessage *msg, json_t **out,
                                    cl_err *err);

/* Test hook for fault injection: routes every allocation this module makes
 * for messages and scratch buffers through `fn` (NULL restores malloc).
 * Memory returned by `fn` must be releasable with free(), because messages
 * are released with protobuf_c_message_free_unpacked(msg, NULL). jansson's
 * allocations are not affected (see json_set_alloc_funcs). Not thread-safe:
 * call it only while no conversion is running. */
void cl_pbjson_set_alloc_hook(void *(*fn)(size_t size));

#endif

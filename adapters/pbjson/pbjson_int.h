/* Internals shared by pbjson.c (JSON -> message), pbjson_write.c
 * (message -> JSON) and pbjson_util.c (the helpers below). Not part of the
 * adapter's interface: include pbjson.h. */
#ifndef CL_ADAPTERS_PBJSON_PBJSON_INT_H
#define CL_ADAPTERS_PBJSON_PBJSON_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adapters/pbjson/pbjson.h"

/* The conversion context: error sink, JSON path, nesting depth. The error
 * path is kept in a fixed buffer so that an error can be reported after
 * memory has run out. */
typedef struct pbj_ctx {
  cl_err *err;     /* borrowed; may be NULL */
  int depth;       /* message levels entered so far */
  size_t plen;     /* strlen(path) */
  char path[1024]; /* "a.b[2].c", truncated when too long; the
                      error message keeps its tail */
} pbj_ctx;

/* Timestamp detection: by full name, and only if the fields have the
 * expected shape (so a look-alike cannot make us write out of bounds). */
typedef struct pbj_ts_fields {
  const ProtobufCFieldDescriptor *seconds, *nanos;
} pbj_ts_fields;

/* Every allocation handed to protobuf-c: malloc, or the test hook
 * (cl_pbjson_set_alloc_hook); never returns a 0-byte request's NULL. */
void *pbj_xmalloc(size_t n);

/* Sets c->err to `code` and "path: reason" (the path's tail if both do not
 * fit); returns `code`. pbj_nomem is pbj_fail(c, CL_ENOMEM, ...). */
int pbj_fail(pbj_ctx *c, int code, const char *fmt, ...) CL_PRINTF(3, 4);
int pbj_nomem(pbj_ctx *c);

/* Append ".key" / "[i]" to the path (non-printable bytes as '?'); return the
 * length pbj_pop restores. */
size_t pbj_push_key(pbj_ctx *c, const char *key, size_t klen);
size_t pbj_push_index(pbj_ctx *c, size_t i);
void pbj_pop(pbj_ctx *c, size_t old);

/* A member of a message at a field's offset. */
void *pbj_member(void *msg, unsigned off);
const void *pbj_cmember(const void *msg, unsigned off);

/* Whether d is a message descriptor (checks its magic). */
bool pbj_valid_desc(const ProtobufCMessageDescriptor *d);

/* Size of one value of `t` as protobuf-c stores it (in a struct or array);
 * whether it is stored as a pointer (string, bytes data, message). */
size_t pbj_value_size(ProtobufCType t);
bool pbj_is_pointer_type(ProtobufCType t);

/* Whether d is google.protobuf.Timestamp with the expected field shapes
 * (fills *tf). */
bool pbj_is_timestamp(const ProtobufCMessageDescriptor *d, pbj_ts_fields *tf);

/* lowerCamelCase of a field name as protoc's ToJsonName: its length, and
 * written into dst (capacity cap >= 1), truncating. */
size_t pbj_camel_len(const char *name);
void pbj_camel_write(const char *name, char *dst, size_t cap);

/* The field a JSON key names, by its proto name (*by_proto_name = true) or
 * its JSON name; NULL if none. */
const ProtobufCFieldDescriptor *pbj_find_field(const ProtobufCMessageDescriptor *d, const char *key,
                                               size_t klen, bool *by_proto_name);

/* Strict UTF-8 (RFC 3629): no overlongs, no surrogates, <= U+10FFFF. */
bool pbj_utf8_valid(const char *str, size_t n);

/* RFC 3339 date-time within 0001-01-01 .. 9999-12-31: parse
 * YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|+hh:mm|-hh:mm), and format into buf
 * (cap >= 32) as protobuf's JSON does; false if invalid / out of range. */
bool pbj_rfc3339_parse(const char *s, size_t len, int64_t *secs, int32_t *nanos);
bool pbj_rfc3339_format(int64_t secs, int32_t nanos, char *buf, size_t cap);

#endif

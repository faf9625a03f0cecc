/* Decoding and validating clinlog.v1.Event bytes from outside, and naming
 * event types. The store keeps the exact bytes a client signed; decoding is
 * only to validate and to route. */
#ifndef CL_STORE_EVENT_H
#define CL_STORE_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "clinlog/v1/event.pb-c.h"
#include "store/err.h"

#define CL_EVENT_ID_SIZE 16
#define CL_STREAM_MAX 256

/* Unpacks and validates one serialized Event: well-formed protobuf, a
 * 16-byte event_id, a valid stream name, occurred_at set, a known body type,
 * recorded_by.principal_id set, every string valid UTF-8 without NUL bytes
 * (checked on the wire) and optional ids 16 bytes. On success *out is returned-owned
 * (clinlog__v1__event__free_unpacked(*out, NULL)). Errors: CL_EMALFORMED
 * naming the field. */
int cl_event_decode(const uint8_t *buf, size_t len, Clinlog__V1__Event **out, cl_err *err);

/* Packs an event a node writes itself (sessions, break-glass, audit
 * records): ev's body is the caller's; this sets its envelope (a fresh
 * UUID unless ev->event_id holds 16 bytes the caller chose, e.g. derived
 * for an idempotent write; occurred now, in `stream`, recorded by the log
 * principal with the log role, source "clinlogd") for the packing and
 * restores it again. On
 * success *out (cl_malloc'd, *len bytes) is the caller's. CL_ENOMEM. */
int cl_event_pack_node(Clinlog__V1__Event *ev, const char *stream, uint8_t **out, size_t *len,
                       cl_err *err);

/* Validates a stream name: 1..CL_STREAM_MAX bytes of UTF-8 without control
 * characters. Returns 0 or CL_EMALFORMED. */
int cl_stream_name_check(const char *name, size_t len, cl_err *err);

/* 1 if the n bytes are valid UTF-8 (no overlongs, no surrogates). */
int cl_utf8_valid(const uint8_t *p, size_t n);

/* Checks the wire bytes of a message of type `desc` before trusting the
 * decoded strings: every string field, at any depth, must be valid UTF-8
 * without NUL bytes (protobuf-c hands strings out NUL-terminated, so an
 * embedded NUL would make the store act on a prefix of what was signed).
 * Returns 0 or CL_EMALFORMED naming the field path. Call it on bytes that
 * protobuf-c has already unpacked successfully. */
int cl_wire_check_strings(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
                          cl_err *err);

/* Name of an event type code (the Event.body field number), e.g.
 * "ObservationRecorded"; NULL if unknown. Static storage. */
const char *cl_event_type_name(uint32_t type);
/* The principal a security event is about (PrincipalRegistered,
 * KeyRegistered, KeyRevoked and the authentication events 906-911), NULL
 * for other events. A view into ev. */
const char *cl_event_principal(const Clinlog__V1__Event *ev);

/* Event type code for a name ("ObservationRecorded" or
 * "observation_recorded"); 0 if unknown. */
uint32_t cl_event_type_code(const char *name);

/* 1 for the security and system types the store interprets (900-999). */
static inline int cl_event_type_is_system(uint32_t type) { return type >= 900 && type < 1000; }

#endif

/* Helpers shared by clinlogd and the C client: protobuf-c messages in and
 * out of gRPC byte buffers, and the mapping from store error codes to gRPC
 * status codes (the table in docs/api.md). grpc_* types stay inside
 * adapters/grpc/. */
#ifndef CL_ADAPTERS_GRPC_GRPCUTIL_H
#define CL_ADAPTERS_GRPC_GRPCUTIL_H

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/status.h>
#include <protobuf-c/protobuf-c.h>

#include "adapters/service/methods.h"
#include "store/err.h"

/* The gRPC path of each method of adapters/service/methods.h
 * ("/clinlog.v1.Log/Append", ...): one list for server and client, so a
 * path is spelled in one place. */
extern const char *const cl_grpc_method_path[M_COUNT];

/* Unpacks a byte buffer (borrowed) into a message. Returns NULL when the
 * bytes are not a valid message of that type. The result is returned-owned:
 * protobuf_c_message_free_unpacked(msg, NULL). */
ProtobufCMessage *cl_grpc_unpack(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *d);

/* As cl_grpc_unpack, for requests from outside: also checks on the wire
 * that every string (at any depth) is valid UTF-8 without NUL bytes. On
 * failure returns NULL with err set (CL_EMALFORMED naming the field, or
 * saying the bytes are not a `desc` message). */
ProtobufCMessage *cl_grpc_unpack_checked(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *d,
                                         cl_err *err);

/* Packs a message into a new byte buffer (returned-owned:
 * grpc_byte_buffer_destroy), NULL when out of memory. */
grpc_byte_buffer *cl_grpc_pack(const ProtobufCMessage *m);

/* SHA-256 (lower-case hex) of the DER of the first certificate in PEM text
 * (n bytes): the fingerprint `openssl x509 -fingerprint -sha256` prints,
 * which binds a client certificate to a principal (CertificateBound). 0, or
 * -1 when there is no certificate. */
int cl_pem_fingerprint(const char *pem, size_t n, char out[65]);

/* gRPC status for a store error code (docs/api.md has the table). */
grpc_status_code cl_grpc_status_of(int cl_code);

/* "OK", "INVALID_ARGUMENT", ... */
const char *cl_grpc_status_name(grpc_status_code code);

#endif

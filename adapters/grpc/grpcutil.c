/* See grpcutil.h. */
#include "adapters/grpc/grpcutil.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "store/event.h"
#include "store/keys.h"

const char *const cl_grpc_method_path[M_COUNT] = {
#define CL_GRPC_PATH(id, name, kind) [id] = "/" name,
    CL_METHODS(CL_GRPC_PATH)
#undef CL_GRPC_PATH
};

ProtobufCMessage *cl_grpc_unpack(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *d) {
  if (!bb)
    return NULL;
  grpc_byte_buffer_reader r;
  if (!grpc_byte_buffer_reader_init(&r, bb))
    return NULL;
  grpc_slice s = grpc_byte_buffer_reader_readall(&r);
  grpc_byte_buffer_reader_destroy(&r);
  ProtobufCMessage *m =
      protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
  grpc_slice_unref(s);
  return m;
}

ProtobufCMessage *cl_grpc_unpack_checked(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *d,
                                         cl_err *err) {
  grpc_byte_buffer_reader r;
  if (!bb || !grpc_byte_buffer_reader_init(&r, bb)) {
    cl_err_set(err, CL_EMALFORMED, "request is not a valid %s", d->short_name);
    return NULL;
  }
  grpc_slice s = grpc_byte_buffer_reader_readall(&r);
  grpc_byte_buffer_reader_destroy(&r);
  const uint8_t *p = GRPC_SLICE_START_PTR(s);
  size_t n = GRPC_SLICE_LENGTH(s);
  ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, n, p);
  if (!m)
    cl_err_set(err, CL_EMALFORMED, "request is not a valid %s", d->short_name);
  else if (cl_wire_check_strings(d, p, n, err) != 0) {
    cl_err_prefix(err, "%s", d->short_name);
    protobuf_c_message_free_unpacked(m, NULL);
    m = NULL;
  }
  grpc_slice_unref(s);
  return m;
}

grpc_byte_buffer *cl_grpc_pack(const ProtobufCMessage *m) {
  size_t n = protobuf_c_message_get_packed_size(m);
  grpc_slice s = grpc_slice_malloc(n);
  protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(s));
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
  grpc_slice_unref(s);
  return bb;
}

grpc_status_code cl_grpc_status_of(int c) {
  switch (c) {
  case 0:
    return GRPC_STATUS_OK;
  case CL_EINVAL:
  case CL_EMALFORMED:
    return GRPC_STATUS_INVALID_ARGUMENT;
  case CL_ECONFLICT:
  case CL_EERASED:
  case CL_EPRECOND:
    return GRPC_STATUS_FAILED_PRECONDITION;
  case CL_EDUPLICATE:
  case CL_EEXIST:
    return GRPC_STATUS_ALREADY_EXISTS;
  case CL_EBADSIG:
  case CL_EUNKNOWNKEY:
  case CL_EREVOKED:
  case CL_EDENIED:
    return GRPC_STATUS_PERMISSION_DENIED;
  case CL_ETOOBIG:
  case CL_ENOMEM:
  case CL_ELIMITED:
    return GRPC_STATUS_RESOURCE_EXHAUSTED;
  case CL_ENOTFOUND:
    return GRPC_STATUS_NOT_FOUND;
  case CL_EAGAIN:
  case CL_EFAILED:
  case CL_ENOTLEADER:
  case CL_EUNAVAILABLE:
    return GRPC_STATUS_UNAVAILABLE;
  case CL_ETIMEDOUT:
    return GRPC_STATUS_DEADLINE_EXCEEDED;
  case CL_EUNAUTH:
    return GRPC_STATUS_UNAUTHENTICATED;
  case CL_EVERIFY:
  case CL_ECORRUPT:
  case CL_ECRYPTO:
  case CL_EIO:
  default:
    return GRPC_STATUS_INTERNAL;
  }
}

const char *cl_grpc_status_name(grpc_status_code c) {
  static const char *const names[] = {
      "OK",          "CANCELLED",         "UNKNOWN",        "INVALID_ARGUMENT",
      "DEADLINE_EXCEEDED", "NOT_FOUND",   "ALREADY_EXISTS", "PERMISSION_DENIED",
      "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
      "UNIMPLEMENTED", "INTERNAL",        "UNAVAILABLE",    "DATA_LOSS",
      "UNAUTHENTICATED"};
  return (unsigned)c < sizeof names / sizeof names[0] ? names[c] : "UNKNOWN";
}

int cl_pem_fingerprint(const char *pem, size_t n, char out[65]) {
  const char *b = memmem(pem, n, "-----BEGIN CERTIFICATE-----", 27);
  const char *e = b ? memmem(b, n - (size_t)(b - pem), "-----END CERTIFICATE-----", 25) : NULL;
  if (!b || !e)
    return -1;
  b += 27;
  uint8_t *der = malloc((size_t)(e - b));
  size_t dl = 0;
  int rc = -1;
  if (der && sodium_base642bin(der, (size_t)(e - b), b, (size_t)(e - b), "\r\n \t", &dl, NULL,
                               sodium_base64_VARIANT_ORIGINAL) == 0) {
    uint8_t h[32];
    crypto_hash_sha256(h, der, dl);
    cl_hex(h, 32, out);
    rc = 0;
  }
  free(der);
  return rc;
}

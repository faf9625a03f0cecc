/* libFuzzer target for adapters/pbjson: arbitrary bytes as JSON text.
 *
 * Each input is converted with cl_pbjson_from_text for several message types
 * (the cltest.All test schema, which has every field kind, plus clinlog's
 * record/system messages). Whatever converts must survive a round trip:
 * to_json succeeds, and both from_json of that JSON and from_text of its
 * dumped text give a message that packs to the same bytes and emits the
 * same JSON. Errors must come with a code and a message. Any violation
 * aborts, which libFuzzer reports as a crash.
 *
 * Needs the generated code of proto/clinlog/v1/{record,system}.proto,
 * google/protobuf/timestamp.proto and tests/adapters/pbjson_test.proto. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/pbjson/pbjson.h"
#include "clinlog/v1/record.pb-c.h"
#include "clinlog/v1/system.pb-c.h"
#include "pbjson_test.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const ProtobufCMessageDescriptor *const descs[] = {
    &cltest__all__descriptor,
    &cltest__inner__descriptor,
    &clinlog__v1__append_batch__descriptor,
    &clinlog__v1__prepared_batch__descriptor,
    &clinlog__v1__record__descriptor,
    &clinlog__v1__key_registered__descriptor,
};

static void die(const char *what, const ProtobufCMessageDescriptor *d,
                const cl_err *err) {
  fprintf(stderr, "fuzz_pbjson: %s for %s: %s (%s)\n", what, d->name,
          err ? err->msg : "", err ? cl_errname(err->code) : "");
  abort();
}

/* Packs m; returns-owned buffer (free). */
static uint8_t *pack(const ProtobufCMessage *m, size_t *n) {
  *n = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = malloc(*n + 1);
  if (!buf)
    abort();
  if (protobuf_c_message_pack(m, buf) != *n)
    abort();
  return buf;
}

static void same_message(const ProtobufCMessageDescriptor *d,
                         const ProtobufCMessage *a, const ProtobufCMessage *b,
                         const char *how) {
  size_t na, nb;
  uint8_t *pa = pack(a, &na), *pb = pack(b, &nb);
  if (na != nb || memcmp(pa, pb, na) != 0)
    die(how, d, NULL);
  free(pa);
  free(pb);
}

static void check_error(const ProtobufCMessageDescriptor *d, int rc,
                        const cl_err *err) {
  if (rc != CL_EMALFORMED && rc != CL_ENOMEM)
    die("unexpected error code", d, err);
  if (err->code != rc || err->msg[0] == '\0')
    die("error without message", d, err);
}

static void one(const ProtobufCMessageDescriptor *d, const uint8_t *data,
                size_t size) {
  ProtobufCMessage *m = NULL;
  cl_err err;
  cl_err_clear(&err);
  int rc = cl_pbjson_from_text(d, (const char *)data, size, &m, &err);
  if (rc != 0) {
    check_error(d, rc, &err);
    return;
  }

  json_t *j = NULL;
  if (cl_pbjson_to_json(m, &j, &err) != 0)
    die("to_json failed on a parsed message", d, &err);

  ProtobufCMessage *m2 = NULL;
  if (cl_pbjson_from_json(d, j, &m2, &err) != 0)
    die("from_json rejected emitted JSON", d, &err);
  same_message(d, m, m2, "JSON round trip changed the message");

  char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
  if (!text)
    abort();
  ProtobufCMessage *m3 = NULL;
  if (cl_pbjson_from_text(d, text, strlen(text), &m3, &err) != 0)
    die("from_text rejected dumped JSON", d, &err);
  same_message(d, m, m3, "text round trip changed the message");

  json_t *j2 = NULL;
  if (cl_pbjson_to_json(m3, &j2, &err) != 0)
    die("to_json failed on a re-parsed message", d, &err);
  if (!json_equal(j, j2))
    die("emitted JSON not stable", d, NULL);

  json_decref(j2);
  protobuf_c_message_free_unpacked(m3, NULL);
  free(text);
  protobuf_c_message_free_unpacked(m2, NULL);
  json_decref(j);
  protobuf_c_message_free_unpacked(m, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  for (size_t i = 0; i < sizeof descs / sizeof descs[0]; i++)
    one(descs[i], data, size);
  return 0;
}

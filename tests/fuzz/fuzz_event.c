/* libFuzzer target: the protobuf a client sends. Feeds arbitrary bytes to
 * the Event validator (unpack, ids, stream name, UTF-8 and NUL checks of
 * every string on the wire), to the AppendBatch and Record decoders (a
 * decoded batch has each of its events validated too), and to the decoding
 * and wire checks clinlogd applies to every API request. Must never crash
 * or leak. */
#include <stddef.h>
#include <stdint.h>

#include "clinlog/v1/api.pb-c.h"
#include "clinlog/v1/record.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "store/event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cl_err err;
  Clinlog__V1__Event *ev = NULL;
  if (cl_event_decode(data, size, &ev, &err) == 0)
    clinlog__v1__event__free_unpacked(ev, NULL);
  Clinlog__V1__AppendBatch *b = clinlog__v1__append_batch__unpack(NULL, size, data);
  if (b) {
    for (size_t i = 0; i < b->n_events && i < 64; i++)
      if (cl_event_decode(b->events[i].data, b->events[i].len, &ev, &err) == 0)
        clinlog__v1__event__free_unpacked(ev, NULL);
    clinlog__v1__append_batch__free_unpacked(b, NULL);
  }
  Clinlog__V1__Record *r = clinlog__v1__record__unpack(NULL, size, data);
  if (r)
    clinlog__v1__record__free_unpacked(r, NULL);
  /* what clinlogd does with each request (cl_grpc_unpack_checked) */
  static const ProtobufCMessageDescriptor *const requests[] = {
      &clinlog__v1__read_request__descriptor,
      &clinlog__v1__subscribe_request__descriptor,
      &clinlog__v1__get_checkpoint_request__descriptor,
      &clinlog__v1__prove_inclusion_request__descriptor,
      &clinlog__v1__prove_consistency_request__descriptor,
      &clinlog__v1__get_event_request__descriptor,
      &grpc__health__v1__health_check_request__descriptor,
  };
  for (size_t i = 0; i < sizeof requests / sizeof requests[0]; i++) {
    ProtobufCMessage *m = protobuf_c_message_unpack(requests[i], NULL, size, data);
    if (m) {
      (void)cl_wire_check_strings(requests[i], data, size, &err);
      protobuf_c_message_free_unpacked(m, NULL);
    }
  }
  return 0;
}

/* libFuzzer target: the protobuf a client sends on the write path. Feeds
 * arbitrary bytes to the Event validator (unpack, ids, stream name, UTF-8 of
 * every string) and to the AppendBatch and Record decoders; a decoded batch
 * has each of its events validated too. Must never crash or leak. */
#include <stddef.h>
#include <stdint.h>

#include "clinlog/v1/record.pb-c.h"
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
  return 0;
}

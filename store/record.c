/* Record encoding in prefix and tail, and record decoding; see record.h. */
#include "store/record.h"

#include <string.h>

#include "store/alloc.h"

static int make_prefix(const Clinlog__V1__PreparedBatch *pb, size_t i, cl_record_prefix *out) {
  const Clinlog__V1__PreparedEvent *pe = pb->events[i];
  Clinlog__V1__Record rec = CLINLOG__V1__RECORD__INIT;
  rec.format = CL_FORMAT_VERSION;
  rec.stream_tag = pe->stream_tag;
  rec.event_id = pe->event_id;
  rec.event_type = pe->event_type;
  rec.event_hash = pe->event_hash;
  rec.nonce = pe->nonce;
  rec.ciphertext = pe->ciphertext;
  size_t n = pb->n_events;
  if (pb->batch_signature) {
    rec.batch_index = (uint32_t)i;
    rec.batch_size = (uint32_t)n;
    if (i == n - 1)
      rec.signature = pb->batch_signature;
  } else {
    rec.signature = pe->signature;
  }
  out->len = clinlog__v1__record__get_packed_size(&rec);
  if (!(out->buf = cl_malloc(out->len + CL_RECORD_TAIL_LEN)))
    return CL_ENOMEM;
  clinlog__v1__record__pack(&rec, out->buf);
  static const uint8_t leaf_prefix = 0x00; /* RFC 9162 leaf */
  cl_sha256_init(&out->st);
  cl_sha256_update(&out->st, &leaf_prefix, 1);
  cl_sha256_update(&out->st, out->buf, out->len);
  return 0;
}

void cl_record_prefixes_free(cl_record_prefix *p, size_t n) {
  if (!p)
    return;
  for (size_t i = 0; i < n; i++)
    cl_free(p[i].buf);
  cl_free(p);
}

cl_record_prefix *cl_record_prefixes(const Clinlog__V1__PreparedBatch *pb) {
  cl_record_prefix *p = cl_calloc(pb->n_events ? pb->n_events : 1, sizeof *p);
  for (size_t i = 0; p && i < pb->n_events; i++)
    if (make_prefix(pb, i, &p[i])) {
      cl_record_prefixes_free(p, pb->n_events);
      return NULL;
    }
  return p;
}

static void put_le64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++, v >>= 8)
    p[i] = (uint8_t)v;
}

void cl_record_finish(cl_record_prefix *p, uint64_t seq, uint64_t version, int64_t at,
                      uint8_t leaf[32]) {
  uint8_t *t = p->buf + p->len;
  t[0] = (14 << 3) | 1; /* fixed64 seq */
  put_le64(t + 1, seq);
  t[9] = (15 << 3) | 1; /* fixed64 stream_version */
  put_le64(t + 10, version);
  t[18] = 0x81; /* sfixed64 committed_at_ns: key 129 as a varint */
  t[19] = 0x01;
  put_le64(t + 20, (uint64_t)at);
  cl_sha256_state st = p->st;
  cl_sha256_update(&st, t, CL_RECORD_TAIL_LEN);
  cl_sha256_final(&st, leaf);
}

int cl_record_decode(const uint8_t *p, size_t n, Clinlog__V1__Record **out, cl_err *err) {
  *out = NULL;
  int oom;
  Clinlog__V1__Record *r =
      (Clinlog__V1__Record *)cl_pb_unpack(&clinlog__v1__record__descriptor, p, n, &oom);
  if (!r)
    return oom ? cl_err_set(err, CL_ENOMEM, "out of memory")
               : cl_err_set(err, CL_ECORRUPT, "record does not decode");
  const char *bad = r->format != CL_FORMAT_VERSION ? "format"
                    : r->stream_tag.len != 32      ? "stream_tag"
                    : r->event_id.len != 16        ? "event_id"
                    : r->event_hash.len != 32      ? "event_hash"
                    : r->nonce.len != 24           ? "nonce"
                                                   : NULL;
  if (bad) {
    clinlog__v1__record__free_unpacked(r, &cl_pb_allocator);
    return cl_err_set(err, CL_ECORRUPT, "record: malformed %s", bad);
  }
  *out = r;
  return 0;
}

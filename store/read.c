/* Reading the log back: events (decrypted when the log has its keys and the
 * stream is not erased), one stream, one event by id, raw records for
 * catch-up. Readers see only what is published (records 1..size); they
 * take no commit lock and may run on any number of threads. */
#include <sodium.h>
#include <string.h>

#include "store/alloc.h"
#include "store/log_int.h"

/* Decodes a stored record and hands it to fn: decrypted when `decrypt` and
 * possible; else with its erased flag only (cl_log_open_event decrypts). */
static int emit(cl_log *log, const char *val, size_t vl, int decrypt, cl_event_fn fn, void *ctx,
                cl_err *err) {
  Clinlog__V1__Record *rec;
  int rc = cl_record_decode((const uint8_t *)val, vl, &rec, err);
  if (rc)
    return rc;
  cl_event_view v = {
      .seq = rec->seq,
      .stream_version = rec->stream_version,
      .event_type = rec->event_type,
      .committed_at_ns = rec->committed_at_ns,
      .event_id = rec->event_id.data,
      .stream_tag = rec->stream_tag.data,
      .event_hash = rec->event_hash.data,
      .record = (const uint8_t *)val,
      .record_len = vl,
      .nonce = rec->nonce.data,
      .ciphertext = rec->ciphertext.data,
      .ciphertext_len = rec->ciphertext.len,
  };
  uint8_t *plain = NULL;
  size_t pl = 0;
  if (log->have_keys) {
    uint8_t *key = cl_secure_scratch(CL_SCRATCH_READ, 32);
    if (!key) {
      rc = cl_err_set(err, CL_ENOMEM, "out of secure memory");
    } else if ((rc = cl_sk_for_read(log, rec->stream_tag.data, key, &v.erased, err))) {
      cl_err_prefix(err, "record %llu", (unsigned long long)rec->seq);
    } else if (!v.erased && decrypt) {
      rc = cl_event_open(key, rec->stream_tag.data, rec->event_id.data, rec->nonce.data,
                         rec->ciphertext.data, rec->ciphertext.len, &plain, &pl);
      if (rc)
        rc = cl_err_set(err, rc, rc == CL_ENOMEM ? "out of memory" : "record %llu does not decrypt",
                        (unsigned long long)rec->seq);
      v.event = plain;
      v.event_len = pl;
    }
    if (key)
      sodium_memzero(key, 32);
  }
  if (rc == 0)
    rc = fn(ctx, &v, err);
  if (plain) {
    sodium_memzero(plain, pl);
    cl_free(plain);
  }
  clinlog__v1__record__free_unpacked(rec, &cl_pb_allocator);
  return rc;
}

/* A scan this far (in events) behind the head reads blocks no other reader
 * is about to read: they bypass the block cache (cl_db's ro_bulk). */
#define BULK_SCAN 65536

static int scan(cl_log *log, uint64_t from_seq, uint64_t max, int decrypt, cl_event_fn fn,
                void *ctx, cl_err *err);

int cl_log_read_all(cl_log *log, uint64_t from_seq, uint64_t max, cl_event_fn fn, void *ctx,
                    cl_err *err) {
  return scan(log, from_seq, max, 1, fn, ctx, err);
}

int cl_log_scan(cl_log *log, uint64_t from_seq, uint64_t max, cl_event_fn fn, void *ctx,
                cl_err *err) {
  return scan(log, from_seq, max, 0, fn, ctx, err);
}

int cl_log_open_event(cl_log *log, const cl_event_view *ev, uint8_t **plain, size_t *n,
                      cl_err *err) {
  *plain = NULL;
  *n = 0;
  if (!log->have_keys)
    return cl_err_set(err, CL_EDENIED, "the log has no master key");
  if (!ev->nonce || !ev->ciphertext)
    return cl_err_set(err, CL_EINVAL, "not a view of a stored record");
  uint8_t *key = cl_secure_scratch(CL_SCRATCH_READ, 32);
  if (!key)
    return cl_err_set(err, CL_ENOMEM, "out of secure memory");
  int erased;
  int rc = cl_sk_for_read(log, ev->stream_tag, key, &erased, err);
  if (rc == 0 && erased)
    rc = cl_err_set(err, CL_EERASED, "record %llu: its stream was erased",
                    (unsigned long long)ev->seq);
  if (rc == 0 && (rc = cl_event_open(key, ev->stream_tag, ev->event_id, ev->nonce, ev->ciphertext,
                                     ev->ciphertext_len, plain, n)) != 0)
    rc = cl_err_set(err, rc, rc == CL_ENOMEM ? "out of memory" : "record %llu does not decrypt",
                    (unsigned long long)ev->seq);
  sodium_memzero(key, 32);
  return rc;
}

void cl_log_event_free(uint8_t *plain, size_t n) {
  if (plain) {
    sodium_memzero(plain, n);
    cl_free(plain);
  }
}

static int scan(cl_log *log, uint64_t from_seq, uint64_t max, int decrypt, cl_event_fn fn,
                void *ctx, cl_err *err) {
  uint64_t size;
  cl_log_head(log, &size, NULL);
  if (from_seq == 0)
    from_seq = 1;
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(
      log->db->db, size > from_seq && size - from_seq >= BULK_SCAN ? log->db->ro_bulk : log->db->ro,
      log->db->cf[CL_CF_LOG]);
  uint8_t k[8];
  cl_be64(k, from_seq);
  uint64_t count = 0;
  int rc = 0;
  for (rocksdb_iter_seek(it, (const char *)k, 8); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
    size_t kl, vl;
    const char *key = rocksdb_iter_key(it, &kl);
    if (kl != 8 || cl_get_be64((const uint8_t *)key) > size)
      break; /* not yet published */
    const char *val = rocksdb_iter_value(it, &vl);
    if ((rc = emit(log, val, vl, decrypt, fn, ctx, err)) != 0)
      break;
    if (max && ++count >= max)
      break;
  }
  if (rc == 0)
    rc = cl_iter_error(it, err, "log scan");
  rocksdb_iter_destroy(it);
  return rc < 0 ? rc : 0;
}

static int emit_seq(cl_log *log, uint64_t seq, cl_event_fn fn, void *ctx, cl_err *err) {
  uint8_t k[8];
  cl_be64(k, seq);
  char *v;
  size_t vl;
  int rc = cl_db_get(log->db, CL_CF_LOG, k, 8, &v, &vl, err);
  if (rc)
    return rc == CL_ENOTFOUND
               ? cl_err_set(err, CL_ECORRUPT, "record %llu missing", (unsigned long long)seq)
               : rc;
  rc = emit(log, v, vl, 1, fn, ctx, err);
  rocksdb_free(v);
  return rc;
}

int cl_log_read_seq(cl_log *log, uint64_t seq, cl_event_fn fn, void *ctx, cl_err *err) {
  uint64_t size;
  cl_log_head(log, &size, NULL);
  if (seq == 0 || seq > size)
    return cl_err_set(err, CL_ENOTFOUND, "no event at seq %llu (the log holds %llu)",
                      (unsigned long long)seq, (unsigned long long)size);
  int rc = emit_seq(log, seq, fn, ctx, err);
  return rc < 0 ? rc : 0;
}

/* The seqs of the published events of the stream with tag `tag` from
 * from_version (0: its first, or backwards its last), at most max (0:
 * all), to fn; *any set when there was one. */
static int stream_seqs(cl_log *log, const uint8_t tag[32], uint64_t from_version, int backwards,
                       uint64_t max, cl_seq_fn fn, void *ctx, int *any, cl_err *err) {
  uint64_t size;
  cl_log_head(log, &size, NULL);
  rocksdb_iterator_t *it =
      rocksdb_create_iterator_cf(log->db->db, log->db->ro, log->db->cf[CL_CF_STREAMS]);
  uint8_t k[40];
  memcpy(k, tag, 32);
  if (backwards) {
    cl_be64(k + 32, from_version ? from_version : UINT64_MAX);
    rocksdb_iter_seek_for_prev(it, (const char *)k, 40);
  } else {
    cl_be64(k + 32, from_version ? from_version : 1);
    rocksdb_iter_seek(it, (const char *)k, 40);
  }
  uint64_t count = 0;
  int rc = 0;
  *any = 0;
  for (; rocksdb_iter_valid(it); backwards ? rocksdb_iter_prev(it) : rocksdb_iter_next(it)) {
    size_t kl, vl;
    const char *key = rocksdb_iter_key(it, &kl);
    if (kl != 40 || memcmp(key, tag, 32) != 0)
      break;
    const char *val = rocksdb_iter_value(it, &vl);
    if (vl != 8) {
      rc = cl_err_set(err, CL_ECORRUPT, "stream index entry of %zu bytes", vl);
      break;
    }
    uint64_t seq = cl_get_be64((const uint8_t *)val);
    if (seq > size) {
      if (backwards)
        continue;
      break;
    }
    *any = 1;
    if ((rc = fn(ctx, seq, err)) != 0)
      break;
    if (max && ++count >= max)
      break;
  }
  if (rc == 0)
    rc = cl_iter_error(it, err, "stream scan");
  rocksdb_iter_destroy(it);
  return rc;
}

typedef struct read_seqs {
  cl_log *log;
  cl_event_fn fn;
  void *ctx;
} read_seqs;

static int read_one(void *ctx, uint64_t seq, cl_err *err) {
  read_seqs *r = ctx;
  return emit_seq(r->log, seq, r->fn, r->ctx, err);
}

int cl_log_read_stream(cl_log *log, const char *stream, uint64_t from_version, int backwards,
                       uint64_t max, cl_event_fn fn, void *ctx, cl_err *err) {
  uint8_t tag[32];
  int rc = cl_log_stream_tag(log, stream, tag, err);
  if (rc)
    return rc;
  int any;
  read_seqs r = {log, fn, ctx};
  rc = stream_seqs(log, tag, from_version, backwards, max, read_one, &r, &any, err);
  if (rc < 0)
    return rc;
  if (!any && rc == 0) {
    uint64_t ver;
    if (cl_log_stream_version(log, stream, &ver, err) == 0 && ver == 0)
      return cl_err_set(err, CL_ENOTFOUND, "stream %s has no events", stream);
  }
  return 0;
}

int cl_log_stream_seqs(cl_log *log, const uint8_t tag[32], cl_seq_fn fn, void *ctx, cl_err *err) {
  int any;
  int rc = stream_seqs(log, tag, 0, 0, 0, fn, ctx, &any, err);
  return rc < 0 ? rc : 0;
}

int cl_log_seq_of(cl_log *log, const uint8_t id[16], uint64_t *seq, cl_err *err) {
  char *v;
  size_t vl;
  *seq = 0;
  int rc = cl_db_get(log->db, CL_CF_IDS, id, 16, &v, &vl, err);
  if (rc == CL_ENOTFOUND) {
    char hex[33];
    cl_hex(id, 16, hex);
    return cl_err_set(err, CL_ENOTFOUND, "no event with id %s", hex);
  }
  if (rc)
    return rc;
  uint64_t s = vl >= 8 ? cl_get_be64((const uint8_t *)v) : 0;
  rocksdb_free(v);
  uint64_t size;
  cl_log_head(log, &size, NULL);
  if (s == 0 || s > size)
    return cl_err_set(err, CL_ENOTFOUND, "event not committed");
  *seq = s;
  return 0;
}

int cl_log_get_event(cl_log *log, const uint8_t id[16], cl_event_fn fn, void *ctx, cl_err *err) {
  uint64_t seq;
  int rc = cl_log_seq_of(log, id, &seq, err);
  if (rc)
    return rc;
  rc = emit_seq(log, seq, fn, ctx, err);
  return rc < 0 ? rc : 0;
}

int cl_log_stream_version(cl_log *log, const char *stream, uint64_t *version, cl_err *err) {
  uint8_t tag[32];
  int rc = cl_log_stream_tag(log, stream, tag, err);
  if (rc)
    return rc;
  return cl_log_tag_version(log, tag, version, err);
}

int cl_log_tag_version(cl_log *log, const uint8_t tag[32], uint64_t *version, cl_err *err) {
  uint8_t k[40];
  memcpy(k, tag, 32);
  memset(k + 32, 0xff, 8);
  rocksdb_iterator_t *it =
      rocksdb_create_iterator_cf(log->db->db, log->db->ro, log->db->cf[CL_CF_STREAMS]);
  rocksdb_iter_seek_for_prev(it, (const char *)k, 40);
  *version = 0;
  if (rocksdb_iter_valid(it)) {
    size_t kl;
    const char *key = rocksdb_iter_key(it, &kl);
    if (kl == 40 && memcmp(key, tag, 32) == 0)
      *version = cl_get_be64((const uint8_t *)key + 32);
  }
  int rc = cl_iter_error(it, err, "stream head");
  rocksdb_iter_destroy(it);
  return rc;
}

int cl_log_read_records(cl_log *log, uint64_t from_seq, uint64_t to_seq, cl_record_fn fn, void *ctx,
                        cl_err *err) {
  uint64_t size;
  cl_log_head(log, &size, NULL);
  if (from_seq == 0 || to_seq > size || from_seq > to_seq)
    return cl_err_set(err, CL_EINVAL, "records %llu..%llu: the log holds 1..%llu",
                      (unsigned long long)from_seq, (unsigned long long)to_seq,
                      (unsigned long long)size);
  rocksdb_iterator_t *it =
      rocksdb_create_iterator_cf(log->db->db, log->db->ro, log->db->cf[CL_CF_LOG]);
  uint8_t k[8];
  cl_be64(k, from_seq);
  uint64_t want = from_seq;
  int rc = 0;
  for (rocksdb_iter_seek(it, (const char *)k, 8); rocksdb_iter_valid(it) && want <= to_seq;
       rocksdb_iter_next(it), want++) {
    size_t kl, vl;
    const char *key = rocksdb_iter_key(it, &kl);
    if (kl != 8 || cl_get_be64((const uint8_t *)key) != want) {
      rc = cl_err_set(err, CL_ECORRUPT, "record %llu missing", (unsigned long long)want);
      break;
    }
    const char *val = rocksdb_iter_value(it, &vl);
    if ((rc = fn(ctx, want, (const uint8_t *)val, vl, err)) != 0)
      break;
  }
  if (rc == 0 && (rc = cl_iter_error(it, err, "log scan")) == 0 && want <= to_seq)
    rc = cl_err_set(err, CL_ECORRUPT, "record %llu missing", (unsigned long long)want);
  rocksdb_iter_destroy(it);
  return rc < 0 ? rc : 0;
}

int cl_log_wrapped_key(cl_log *log, const uint8_t tag[32], uint8_t *out, size_t cap, size_t *n,
                       cl_err *err) {
  char *v;
  size_t vl;
  int rc = cl_db_get(log->db, CL_CF_KEYS, tag, 32, &v, &vl, err);
  if (rc)
    return rc;
  if (vl > cap) {
    rocksdb_free(v);
    return cl_err_set(err, CL_ECORRUPT, "wrapped key of %zu bytes", vl);
  }
  memcpy(out, v, vl);
  *n = vl;
  rocksdb_free(v);
  return 0;
}

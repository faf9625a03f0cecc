/* Handlers of clinlog.v1.Log (its proofs are in svc_proof.c). Each runs on a
 * worker after the engine has decoded the request (c->req) and the request
 * layer has admitted the call; streaming handlers keep their position in
 * the call's state and send one message per step (see server_int.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/grpc/server_int.h"
#include "adapters/grpc/services.h"
#include "adapters/grpc/svc_int.h"
#include "clinlog/v1/api.pb-c.h"
#include "clinlog/v1/event.pb-c.h"
#include "store/event.h"

#define CHUNK_EVENTS 128
#define CHUNK_BYTES (1u << 20)

typedef struct srv_cache srv_cache;

static cl_log *log_of(srv_call *c) { return cl_svc_log(srv_svc(c)); }

/* ------------------------------------------------------------- events */

typedef struct filter {
  char **prefixes;
  size_t nprefixes;
  uint32_t *types;
  size_t ntypes;
} filter;

static void filter_from(filter *f, const Clinlog__V1__Filter *pf) {
  memset(f, 0, sizeof *f);
  if (!pf)
    return;
  f->prefixes = pf->stream_prefixes;
  f->nprefixes = pf->n_stream_prefixes;
  f->types = pf->event_types;
  f->ntypes = pf->n_event_types;
}

static int filter_match(const filter *f, uint32_t type, const char *stream) {
  if (f->ntypes) {
    int ok = 0;
    for (size_t i = 0; i < f->ntypes && !ok; i++)
      ok = f->types[i] == type;
    if (!ok)
      return 0;
  }
  if (f->nprefixes) {
    if (!stream)
      return 0;
    int ok = 0;
    for (size_t i = 0; i < f->nprefixes && !ok; i++)
      ok = strncmp(stream, f->prefixes[i], strlen(f->prefixes[i])) == 0;
    if (!ok)
      return 0;
  }
  return 1;
}

/* Builds the RecordedEvent of a view, or NULL if the filter drops it. The
 * returned message borrows from v and from *ev_out (free that after use). */
static int recorded(const cl_event_view *v, const filter *f, int include_record,
                    const char *known_stream, Clinlog__V1__RecordedEvent *re,
                    Google__Protobuf__Timestamp *ts, Clinlog__V1__Event **ev_out) {
  Clinlog__V1__Event *ev = NULL;
  if (v->event)
    ev = clinlog__v1__event__unpack(NULL, v->event_len, v->event);
  *ev_out = ev;
  /* an erased event's name is gone with its key, unless the reader named it */
  const char *stream = ev ? ev->stream : known_stream;
  if (f && !filter_match(f, v->event_type, stream))
    return 0;
  clinlog__v1__recorded_event__init(re);
  google__protobuf__timestamp__init(ts);
  ts->seconds = v->committed_at_ns / 1000000000;
  ts->nanos = (int32_t)(v->committed_at_ns % 1000000000);
  re->seq = v->seq;
  re->stream_version = v->stream_version;
  re->stream = (char *)(stream ? stream : "");
  re->event_id = (ProtobufCBinaryData){16, (uint8_t *)v->event_id};
  re->event_type = v->event_type;
  re->committed_at = ts;
  if (v->event)
    re->event = (ProtobufCBinaryData){v->event_len, (uint8_t *)v->event};
  re->event_hash = (ProtobufCBinaryData){32, (uint8_t *)v->event_hash};
  re->erased = v->erased;
  if (include_record)
    re->record = (ProtobufCBinaryData){v->record_len, (uint8_t *)v->record};
  return 1;
}

/* A chunk of packed messages waiting to be sent. */
typedef struct chunk {
  grpc_byte_buffer *bb[CHUNK_EVENTS];
  size_t n, pos, bytes;
} chunk;

static void chunk_clear(chunk *k) {
  for (size_t i = k->pos; i < k->n; i++)
    grpc_byte_buffer_destroy(k->bb[i]);
  k->n = k->pos = k->bytes = 0;
}

/* Packs ev as a message for the chunk; for Subscribe it is wrapped in a
 * SubscribeResponse. */
static int chunk_add(chunk *k, const cl_event_view *v, const filter *f, int include_record,
                     const char *known_stream, int wrap, int *added) {
  Clinlog__V1__RecordedEvent re;
  Google__Protobuf__Timestamp ts;
  Clinlog__V1__Event *ev;
  *added = 0;
  if (recorded(v, f, include_record, known_stream, &re, &ts, &ev)) {
    grpc_byte_buffer *bb;
    if (wrap) {
      Clinlog__V1__SubscribeResponse sr = CLINLOG__V1__SUBSCRIBE_RESPONSE__INIT;
      sr.kind_case = CLINLOG__V1__SUBSCRIBE_RESPONSE__KIND_EVENT;
      sr.event = &re;
      bb = cl_grpc_pack(&sr.base);
    } else {
      bb = cl_grpc_pack(&re.base);
    }
    if (bb) {
      k->bb[k->n++] = bb;
      k->bytes += v->event_len + v->record_len;
      *added = 1;
    }
  }
  if (ev)
    clinlog__v1__event__free_unpacked(ev, NULL);
  return 0;
}

/* --------------------------------------------------------- tail cache */

/* The most recent events as packed SubscribeResponse messages, so N live
 * subscribers cost one decrypt and one encode per event, not N. Slot
 * seq % TC_SLOTS holds seq while it is that recent. Subscribers that ask
 * for records (include_record) bypass it. */
#define TC_SLOTS 8192

typedef struct tc_slot {
  uint64_t seq;        /* 0: empty */
  uint32_t type;
  char *stream;        /* for prefix filters; NULL if erased */
  grpc_slice msg;      /* SubscribeResponse{event} */
} tc_slot;

struct srv_cache {
  pthread_rwlock_t lock;
  tc_slot slot[TC_SLOTS];
};

/* The Log service's state (cl_grpc_service.ctx_new): the tail cache. */
static void *cache_new(void) {
  srv_cache *tc = calloc(1, sizeof *tc);
  if (tc)
    pthread_rwlock_init(&tc->lock, NULL);
  return tc;
}

static void cache_free(void *p) {
  srv_cache *tc = p;
  if (!tc)
    return;
  for (size_t i = 0; i < TC_SLOTS; i++)
    if (tc->slot[i].seq) {
      free(tc->slot[i].stream);
      grpc_slice_unref(tc->slot[i].msg);
    }
  pthread_rwlock_destroy(&tc->lock);
  free(tc);
}

static void cache_put(srv_cache *tc, uint64_t seq, uint32_t type, const char *stream,
                      grpc_slice msg) {
  char *st = stream ? strdup(stream) : NULL;
  pthread_rwlock_wrlock(&tc->lock);
  tc_slot *sl = &tc->slot[seq % TC_SLOTS];
  if (sl->seq < seq) {
    if (sl->seq) {
      free(sl->stream);
      grpc_slice_unref(sl->msg);
    }
    sl->seq = seq;
    sl->type = type;
    sl->stream = st;
    sl->msg = grpc_slice_ref(msg);
    st = NULL;
  }
  pthread_rwlock_unlock(&tc->lock);
  free(st);
}

/* --------------------------------------------------------------- Read */

typedef struct rd {
  const Clinlog__V1__ReadRequest *req; /* the call's (c->req) */
  int consistent;                      /* its consistency is met */
  filter f;
  uint64_t next;       /* next seq, or next stream version */
  uint64_t remaining;  /* events still to send */
  int backwards, exhausted;
  chunk k;
} rd;

static void rd_free(void *p) {
  rd *r = p;
  chunk_clear(&r->k);
  free(r);
}

static int rd_cb(void *ctx, const cl_event_view *v, cl_err *err) {
  (void)err;
  rd *r = ctx;
  if (r->req->stream[0])
    r->next = r->backwards ? v->stream_version - 1 : v->stream_version + 1;
  else
    r->next = v->seq + 1;
  int added;
  chunk_add(&r->k, v, &r->f, r->req->include_record, r->req->stream[0] ? r->req->stream : NULL, 0,
            &added);
  if (added && --r->remaining == 0)
    return 1;
  if (r->k.n == CHUNK_EVENTS || r->k.bytes >= CHUNK_BYTES)
    return 1;
  if (r->req->stream[0] && r->backwards && r->next == 0)
    return 1;
  return 0;
}

static void rd_step(srv_call *c, int ok) {
  rd *r = c->st;
  if (!ok || srv_cancelled(c)) {
    srv_finish(c, GRPC_STATUS_CANCELLED, "cancelled", NULL);
    return;
  }
  if (srv_shutting_down(c)) {
    srv_finish(c, GRPC_STATUS_UNAVAILABLE, "server is shutting down", NULL);
    return;
  }
  /* refill until something is to be sent (chunks may filter to nothing) */
  while (r->k.pos == r->k.n) {
    chunk_clear(&r->k);
    if (r->exhausted || !r->remaining) {
      srv_finish(c, GRPC_STATUS_OK, "", NULL);
      return;
    }
    cl_err err;
    cl_err_clear(&err);
    uint64_t before = r->next;
    int rc;
    if (r->req->stream[0])
      rc = cl_log_read_stream(log_of(c), r->req->stream, r->next, r->backwards, CHUNK_EVENTS,
                              rd_cb, r, &err);
    else
      rc = cl_log_read_all(log_of(c), r->next, CHUNK_EVENTS, rd_cb, r, &err);
    if (rc) {
      srv_finish_err(c, &err);
      return;
    }
    if (r->next == before || (r->req->stream[0] && r->backwards && r->next == 0))
      r->exhausted = 1;
  }
  grpc_byte_buffer *bb = r->k.bb[r->k.pos++];
  srv_send_then(c, bb, rd_step, r->k.pos < r->k.n);
}

/* Read-your-writes and linearizable reads: 1 to go on; 0 the call is
 * parked (`retry` runs again) or finished. */
static int consistency_met(srv_call *c, const Clinlog__V1__Consistency *cons, int *barrier_done,
                           const char *projection, step_fn retry) {
  if (!cons)
    return 1;
  if (cons->linearizable && !*barrier_done) {
    if (srv_barrier(c) != 0)
      return 0;
    *barrier_done = 1;
  }
  return !cons->min_sequence || srv_reached(c, projection, cons->min_sequence, retry) == 1;
}

static void rd_begin(srv_call *c, int ok) {
  rd *r = c->st;
  if (!ok || srv_cancelled(c)) {
    srv_finish(c, GRPC_STATUS_CANCELLED, "cancelled", NULL);
    return;
  }
  const Clinlog__V1__ReadRequest *req = r->req;
  if (!consistency_met(c, req->consistency, &r->consistent, NULL, rd_begin))
    return;
  filter_from(&r->f, req->filter);
  r->remaining = req->max_count ? req->max_count : UINT64_MAX;
  if (req->direction != CLINLOG__V1__DIRECTION__FORWARDS &&
      req->direction != CLINLOG__V1__DIRECTION__BACKWARDS) {
    srv_trailer(c, "clinlog-error", cl_errname(CL_EINVAL));
    srv_finish(c, GRPC_STATUS_INVALID_ARGUMENT, "direction: unknown value", NULL);
    return;
  }
  r->backwards = req->direction == CLINLOG__V1__DIRECTION__BACKWARDS;
  if (r->backwards && !req->stream[0]) {
    srv_trailer(c, "clinlog-error", cl_errname(CL_EINVAL));
    srv_finish(c, GRPC_STATUS_INVALID_ARGUMENT, "direction: backwards reads need a stream", NULL);
    return;
  }
  if (req->stream[0]) {
    cl_err err;
    uint64_t ver;
    if (cl_stream_name_check(req->stream, strlen(req->stream), &err) != 0) {
      cl_err_prefix(&err, "ReadRequest");
      srv_finish_err(c, &err);
      return;
    }
    if (cl_log_stream_version(log_of(c), req->stream, &ver, &err) != 0) {
      srv_finish_err(c, &err);
      return;
    }
    if (ver == 0) {
      cl_err_set(&err, CL_ENOTFOUND, "stream %s has no events", req->stream);
      srv_finish_err(c, &err);
      return;
    }
    r->next = req->from ? req->from : (r->backwards ? ver : 1);
  } else {
    r->next = req->from ? req->from : 1;
  }
  rd_step(c, 1);
}

static void svc_read(srv_call *c, int ok) {
  (void)ok;
  rd *r = calloc(1, sizeof *r);
  if (!r) {
    srv_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
    return;
  }
  r->req = (const Clinlog__V1__ReadRequest *)c->req;
  c->st = r;
  c->st_free = rd_free;
  rd_begin(c, 1);
}

/* ---------------------------------------------------------- Subscribe */

typedef struct sub {
  const Clinlog__V1__SubscribeRequest *req; /* the call's (c->req) */
  filter f;
  uint64_t next;          /* next seq to examine */
  int caught_up_sent;
  int64_t last_sent_ms;
  int64_t interval_ms;
  chunk k;
} sub;

static void sub_free(void *p) {
  sub *s = p;
  chunk_clear(&s->k);
  free(s);
}

typedef struct sub_read {
  sub *s;
  srv_cache *tc;
} sub_read;

static int sub_cb(void *ctx, const cl_event_view *v, cl_err *err) {
  (void)err;
  sub_read *sr = ctx;
  sub *s = sr->s;
  s->next = v->seq + 1;
  int added;
  if (s->req->include_record) {
    chunk_add(&s->k, v, &s->f, 1, NULL, 1, &added);
  } else {
    /* encode once, for the cache and (if it matches) for this subscriber */
    Clinlog__V1__RecordedEvent re;
    Google__Protobuf__Timestamp ts;
    Clinlog__V1__Event *ev;
    recorded(v, NULL, 0, NULL, &re, &ts, &ev);
    Clinlog__V1__SubscribeResponse resp = CLINLOG__V1__SUBSCRIBE_RESPONSE__INIT;
    resp.kind_case = CLINLOG__V1__SUBSCRIBE_RESPONSE__KIND_EVENT;
    resp.event = &re;
    size_t n = clinlog__v1__subscribe_response__get_packed_size(&resp);
    grpc_slice msg = grpc_slice_malloc(n);
    clinlog__v1__subscribe_response__pack(&resp, GRPC_SLICE_START_PTR(msg));
    const char *stream = ev ? ev->stream : NULL;
    cache_put(sr->tc, v->seq, v->event_type, stream, msg);
    if (filter_match(&s->f, v->event_type, stream)) {
      s->k.bb[s->k.n++] = grpc_raw_byte_buffer_create(&msg, 1);
      s->k.bytes += n;
    }
    grpc_slice_unref(msg);
    if (ev)
      clinlog__v1__event__free_unpacked(ev, NULL);
  }
  return s->k.n == CHUNK_EVENTS || s->k.bytes >= CHUNK_BYTES;
}

/* Takes what it can from the tail cache, from s->next on. A batched
 * subscription (SubscribeRequest.batch) takes all of what the chunk can
 * hold up to the head or nothing: the cache is filled by other
 * subscribers' reads, one event at a time, so a commit another reader is
 * still caching would otherwise be split between two EventBatch messages;
 * with nothing taken, the caller reads the log instead. */
static void sub_from_cache(srv_cache *tc, sub *s, uint64_t size) {
  pthread_rwlock_rdlock(&tc->lock);
  if (s->req->batch)
    for (uint64_t q = s->next; q <= size && q - s->next < CHUNK_EVENTS - s->k.n; q++)
      if (tc->slot[q % TC_SLOTS].seq != q) {
        pthread_rwlock_unlock(&tc->lock);
        return;
      }
  while (s->next <= size && s->k.n < CHUNK_EVENTS && s->k.bytes < CHUNK_BYTES) {
    const tc_slot *sl = &tc->slot[s->next % TC_SLOTS];
    if (sl->seq != s->next)
      break;
    if (filter_match(&s->f, sl->type, sl->stream)) {
      grpc_slice m = sl->msg; /* the byte buffer takes its own reference */
      s->k.bb[s->k.n++] = grpc_raw_byte_buffer_create(&m, 1);
      s->k.bytes += GRPC_SLICE_LENGTH(m);
    }
    s->next++;
  }
  pthread_rwlock_unlock(&tc->lock);
}

/* The chunk's unsent messages, each a packed SubscribeResponse{event = 1},
 * as one SubscribeResponse{events = 4}: an EventBatch's `events` (field 1)
 * element is encoded exactly as SubscribeResponse's `event` (field 1), so
 * the batch is a header and the messages' slices, nothing re-encoded. The
 * chunk's buffers are consumed. NULL when out of memory. */
static grpc_byte_buffer *chunk_batch(chunk *k) {
  size_t ns = 1, total = 0;
  for (size_t i = k->pos; i < k->n; i++) {
    ns += k->bb[i]->data.raw.slice_buffer.count;
    total += grpc_byte_buffer_length(k->bb[i]);
  }
  grpc_slice *sl = malloc(ns * sizeof *sl);
  if (!sl)
    return NULL;
  uint8_t hdr[11];
  size_t h = 0;
  hdr[h++] = (4 << 3) | 2; /* field 4 (events), length-delimited */
  for (size_t v = total;; v >>= 7) {
    hdr[h++] = (uint8_t)(v >= 0x80 ? (v & 0x7f) | 0x80 : v);
    if (v < 0x80)
      break;
  }
  sl[0] = grpc_slice_from_copied_buffer((const char *)hdr, h);
  size_t j = 1;
  for (size_t i = k->pos; i < k->n; i++) {
    const grpc_slice_buffer *b = &k->bb[i]->data.raw.slice_buffer;
    for (size_t x = 0; x < b->count; x++)
      sl[j++] = b->slices[x]; /* the new buffer takes its own references */
  }
  grpc_byte_buffer *out = grpc_raw_byte_buffer_create(sl, j);
  grpc_slice_unref(sl[0]);
  free(sl);
  for (size_t i = k->pos; i < k->n; i++)
    grpc_byte_buffer_destroy(k->bb[i]);
  k->pos = k->n;
  return out;
}

static void send_position(srv_call *c, sub *s, int caught_up, step_fn next) {
  uint64_t size;
  cl_log_head(log_of(c), &size, NULL);
  Clinlog__V1__Position pos = CLINLOG__V1__POSITION__INIT;
  pos.seq = s->next - 1;
  pos.tree_size = size;
  Clinlog__V1__SubscribeResponse sr = CLINLOG__V1__SUBSCRIBE_RESPONSE__INIT;
  sr.kind_case = caught_up ? CLINLOG__V1__SUBSCRIBE_RESPONSE__KIND_CAUGHT_UP
                           : CLINLOG__V1__SUBSCRIBE_RESPONSE__KIND_POSITION;
  if (caught_up)
    sr.caught_up = &pos;
  else
    sr.position = &pos;
  s->last_sent_ms = srv_now_ms();
  srv_send_msg(c, &sr.base, next);
}

static void sub_step(srv_call *c, int ok) {
  sub *s = c->st;
  if (!ok || srv_cancelled(c)) {
    srv_finish(c, GRPC_STATUS_CANCELLED, "cancelled", NULL);
    return;
  }
  if (srv_shutting_down(c)) {
    srv_finish(c, GRPC_STATUS_UNAVAILABLE, "server is shutting down; resubscribe from your last position",
               NULL);
    return;
  }
  for (;;) {
    if (s->k.pos < s->k.n && s->req->batch) {
      s->last_sent_ms = srv_now_ms();
      grpc_byte_buffer *bb = chunk_batch(&s->k);
      if (!bb) {
        srv_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        return;
      }
      srv_send(c, bb, sub_step);
      return;
    }
    if (s->k.pos < s->k.n) {
      s->last_sent_ms = srv_now_ms();
      grpc_byte_buffer *bb = s->k.bb[s->k.pos++];
      srv_send_then(c, bb, sub_step, s->k.pos < s->k.n);
      return;
    }
    chunk_clear(&s->k);
    uint64_t size;
    cl_log_head(log_of(c), &size, NULL);
    if (s->next <= size) {
      cl_err err;
      cl_err_clear(&err);
      uint64_t before = s->next;
      srv_cache *tc = c->svc_ctx;
      if (!s->req->include_record)
        sub_from_cache(tc, s, size);
      sub_read sr = {s, tc};
      if (s->next == before &&
          cl_log_read_all(log_of(c), s->next, CHUNK_EVENTS * 8, sub_cb, &sr, &err) != 0) {
        srv_finish_err(c, &err);
        return;
      }
      if (s->k.n)
        continue;
      if (s->next == before) { /* nothing readable yet: wait for the next commit */
        srv_wait(c, s->last_sent_ms + s->interval_ms, sub_step);
        return;
      }
      /* all filtered: tell a quiet subscriber where it is now and then */
      if (srv_now_ms() - s->last_sent_ms >= s->interval_ms) {
        send_position(c, s, 0, sub_step);
        return;
      }
      continue;
    }
    if (!s->caught_up_sent) {
      s->caught_up_sent = 1;
      send_position(c, s, 1, sub_step);
      return;
    }
    int64_t due = s->last_sent_ms + s->interval_ms;
    if (srv_now_ms() >= due) {
      send_position(c, s, 0, sub_step);
      return;
    }
    srv_wait(c, due, sub_step);
    return;
  }
}

static void svc_subscribe(srv_call *c, int ok) {
  (void)ok;
  const Clinlog__V1__SubscribeRequest *req = (const Clinlog__V1__SubscribeRequest *)c->req;
  sub *s = calloc(1, sizeof *s);
  if (!s) {
    srv_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
    return;
  }
  s->req = req;
  c->st = s;
  c->st_free = sub_free;
  filter_from(&s->f, req->filter);
  s->interval_ms = req->position_interval_ms ? req->position_interval_ms : 1000;
  if (req->from_end) {
    uint64_t size;
    cl_log_head(log_of(c), &size, NULL);
    s->next = size + 1;
  } else {
    s->next = req->from_seq ? req->from_seq : 1;
    uint64_t size;
    cl_log_head(log_of(c), &size, NULL);
    if (s->next > size + 1) {
      char msg[160];
      snprintf(msg, sizeof msg, "from_seq %" PRIu64 " is beyond the end of the log (%" PRIu64
               " events); resume from at most %" PRIu64, s->next, size, size + 1);
      srv_finish(c, GRPC_STATUS_OUT_OF_RANGE, msg, NULL);
      return;
    }
  }
  s->last_sent_ms = srv_now_ms();
  /* send initial metadata at once so clients see the stream open */
  sub_step(c, 1);
}

/* ------------------------------------------------------------- Append */

static void fill_response(Clinlog__V1__AppendResponse *resp, Clinlog__V1__EventPosition *pos,
                          Clinlog__V1__EventPosition **pp, const cl_append_result *r) {
  clinlog__v1__append_response__init(resp);
  for (size_t i = 0; i < r->n; i++) {
    clinlog__v1__event_position__init(&pos[i]);
    pos[i].event_id = (ProtobufCBinaryData){16, r->event_id[i]};
    pos[i].seq = r->seq[i];
    pos[i].stream_version = r->version[i];
    pp[i] = &pos[i];
  }
  resp->n_positions = r->n;
  resp->positions = pp;
  resp->tree_size = r->tree_size;
  resp->duplicate = r->duplicate;
}

static void append_error(srv_call *c, int rc, const cl_err *err, cl_append_result *r) {
  if (rc == CL_ECONFLICT) {
    char v[32];
    snprintf(v, sizeof v, "%" PRIu64, r->conflict_current);
    srv_trailer(c, "clinlog-stream", r->conflict_stream);
    srv_trailer(c, "clinlog-current-version", v);
    cl_append_result_free(r);
  }
  srv_finish_err(c, err);
}

/* The answer to Append: the batch's positions, or what refused it. */
static void append_answer(srv_call *c, int rc, cl_append_result *r, const cl_svc_route *route,
                          const cl_err *err) {
  if (rc == CL_ENOTLEADER) {
    srv_finish_not_leader(c, route);
    return;
  }
  if (route->forwarded_to[0])
    srv_trailer(c, "clinlog-forwarded-to", route->forwarded_to);
  if (rc) {
    if (route->leader_api[0]) /* the leader's own answer, relayed */
      srv_trailer(c, "clinlog-leader", route->leader_api);
    append_error(c, rc, err, r);
    return;
  }
  Clinlog__V1__AppendResponse resp;
  Clinlog__V1__EventPosition *pos = malloc(r->n * sizeof *pos);
  Clinlog__V1__EventPosition **pp = malloc(r->n * sizeof *pp);
  if (!pos || !pp) {
    free(pos);
    free(pp);
    cl_append_result_free(r);
    srv_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
    return;
  }
  fill_response(&resp, pos, pp, r);
  srv_finish(c, GRPC_STATUS_OK, "", &resp.base);
  free(pos);
  free(pp);
  cl_append_result_free(r);
}

/* Append's batch has left Raft's hands (srv_resume from the Raft loop:
 * on a worker, or on the loop itself when the batch committed alone in
 * its entry with its audit record; a worker woken for it cost 30-60 µs of
 * a one-event call's ~1 ms at concurrency 1 here, docs/bench.md). */
static void append_resume(srv_call *c, int ok) {
  (void)ok;
  cl_append_result r;
  cl_svc_route route;
  cl_err err;
  cl_err_clear(&err);
  int rc = cl_svc_append_end(c->job, &r, &route, &err);
  if (rc == CL_SVC_PENDING) /* prepared again: back to Raft */
    return;
  c->job = NULL;
  srv_release(c);
  append_answer(c, rc, &r, &route, &err);
}

static void svc_append(srv_call *c, int ok) {
  (void)ok;
  const Clinlog__V1__AppendBatch *b = (const Clinlog__V1__AppendBatch *)c->req;
  cl_append_result r;
  cl_err err;
  cl_err_clear(&err);
  cl_svc_route route;
  /* the call's only batch: its audit record rides in the same commit; no
   * worker waits while Raft commits it (append_resume answers) */
  srv_hold(c, append_resume);
  int rc =
      cl_svc_append_start(srv_svc(c), &c->rctx, b, 1, srv_resume, c, &c->job, &r, &route, &err);
  if (rc == CL_SVC_PENDING)
    return; /* c is append_resume's now */
  srv_release(c);
  append_answer(c, rc, &r, &route, &err);
}

typedef struct astream {
  uint64_t batches, events, dups, first, last;
} astream;

static void as_step(srv_call *c, int ok) {
  astream *a = c->st;
  if (!ok || srv_cancelled(c)) {
    srv_finish(c, GRPC_STATUS_CANCELLED, "cancelled", NULL);
    return;
  }
  char n[32];
  if (!c->recv) { /* the client closed its side: report */
    uint64_t size;
    cl_log_head(log_of(c), &size, NULL);
    Clinlog__V1__AppendStreamSummary sum = CLINLOG__V1__APPEND_STREAM_SUMMARY__INIT;
    sum.batches = a->batches;
    sum.events = a->events;
    sum.duplicates = a->dups;
    sum.first_seq = a->first;
    sum.last_seq = a->last;
    sum.tree_size = size;
    srv_finish(c, GRPC_STATUS_OK, "", &sum.base);
    return;
  }
  snprintf(n, sizeof n, "%" PRIu64, a->batches);
  Clinlog__V1__AppendBatch *b =
      (Clinlog__V1__AppendBatch *)cl_grpc_unpack(c->recv, &clinlog__v1__append_batch__descriptor);
  if (!b) {
    srv_trailer(c, "clinlog-committed-batches", n);
    char msg[100];
    snprintf(msg, sizeof msg, "batch %" PRIu64 ": not a valid AppendBatch", a->batches);
    srv_trailer(c, "clinlog-error", cl_errname(CL_EMALFORMED));
    srv_finish(c, GRPC_STATUS_INVALID_ARGUMENT, msg, NULL);
    return;
  }
  cl_append_result r;
  cl_err err;
  cl_err_clear(&err);
  cl_svc_route route;
  int rc = cl_svc_append(srv_svc(c), &c->rctx, b, 0, &r, &route, &err);
  clinlog__v1__append_batch__free_unpacked(b, NULL);
  if (rc == CL_ENOTLEADER) { /* a bulk import goes to the leader itself */
    srv_trailer(c, "clinlog-committed-batches", n);
    srv_finish_not_leader(c, &route);
    return;
  }
  if (rc) {
    srv_trailer(c, "clinlog-committed-batches", n);
    cl_err_prefix(&err, "batch %" PRIu64, a->batches);
    append_error(c, rc, &err, &r);
    return;
  }
  a->batches++;
  snprintf(n, sizeof n, "%" PRIu64, a->batches);
  if (r.duplicate) {
    a->dups += r.n;
  } else {
    a->events += r.n;
    if (!a->first)
      a->first = r.seq[0];
    a->last = r.seq[r.n - 1];
  }
  cl_append_result_free(&r);
  if (srv_shutting_down(c)) {
    srv_trailer(c, "clinlog-committed-batches", n);
    srv_finish(c, GRPC_STATUS_UNAVAILABLE, "server is shutting down", NULL);
    return;
  }
  srv_recv(c, as_step);
}

static void svc_append_stream(srv_call *c, int ok) {
  (void)ok;
  if (srv_shutting_down(c)) {
    srv_finish(c, GRPC_STATUS_UNAVAILABLE, "server is shutting down", NULL);
    return;
  }
  astream *a = calloc(1, sizeof *a);
  if (!a) {
    srv_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
    return;
  }
  c->st = a;
  c->st_free = free;
  srv_recv(c, as_step);
}

/* ------------------------------------------------------------ GetEvent */

typedef struct one {
  srv_call *c;
  int include_record;
} one;

static int one_cb(void *ctx, const cl_event_view *v, cl_err *err) {
  (void)err;
  one *o = ctx;
  Clinlog__V1__RecordedEvent re;
  Google__Protobuf__Timestamp ts;
  Clinlog__V1__Event *ev;
  recorded(v, NULL, o->include_record, NULL, &re, &ts, &ev);
  srv_finish(o->c, GRPC_STATUS_OK, "", &re.base); /* packs before returning */
  if (ev)
    clinlog__v1__event__free_unpacked(ev, NULL);
  return 1;
}

static void get_event_step(srv_call *c, int ok) {
  if (!ok || srv_cancelled(c)) {
    srv_finish(c, GRPC_STATUS_CANCELLED, "cancelled", NULL);
    return;
  }
  const Clinlog__V1__GetEventRequest *req = (const Clinlog__V1__GetEventRequest *)c->req;
  if (!consistency_met(c, req->consistency, (int *)c->st, NULL, get_event_step))
    return;
  cl_err err;
  cl_err_clear(&err);
  one o = {c, req->include_record};
  if (cl_log_get_event(log_of(c), req->event_id.data, one_cb, &o, &err) != 0)
    srv_finish_err(c, &err);
}

static void svc_get_event(srv_call *c, int ok) {
  (void)ok;
  const Clinlog__V1__GetEventRequest *req = (const Clinlog__V1__GetEventRequest *)c->req;
  cl_err err;
  cl_err_clear(&err);
  if (req->event_id.len != 16) {
    cl_err_set(&err, CL_EINVAL, "event_id: must be 16 bytes (a UUID)");
    srv_finish_err(c, &err);
    return;
  }
  if (!(c->st = calloc(1, sizeof(int)))) { /* the barrier is done */
    srv_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
    return;
  }
  c->st_free = free;
  get_event_step(c, 1);
}

/* ------------------------------------------------------------ tables */

static const cl_grpc_method_def LOG_METHODS[] = {
    {M_APPEND, &clinlog__v1__append_batch__descriptor, svc_append},
    {M_APPEND_STREAM, NULL, svc_append_stream},
    {M_READ, &clinlog__v1__read_request__descriptor, svc_read},
    {M_SUBSCRIBE, &clinlog__v1__subscribe_request__descriptor, svc_subscribe},
    {M_GET_CHECKPOINT, &clinlog__v1__get_checkpoint_request__descriptor, svc_get_checkpoint},
    {M_PROVE_INCLUSION, &clinlog__v1__prove_inclusion_request__descriptor, svc_prove_inclusion},
    {M_PROVE_CONSISTENCY, &clinlog__v1__prove_consistency_request__descriptor,
     svc_prove_consistency},
    {M_GET_EVENT, &clinlog__v1__get_event_request__descriptor, svc_get_event},
};

const cl_grpc_service cl_grpc_log_service = {
    "clinlog.v1.Log", LOG_METHODS, sizeof LOG_METHODS / sizeof LOG_METHODS[0], cache_new,
    cache_free};

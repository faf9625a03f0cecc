/* The streams projection; see streams.h. */
#include "query/streams/streams.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clinlog/v1/event.pb-c.h"
#include "store/alloc.h"
#include "store/db.h"
#include "store/event.h"
#include "store/hmap.h"

enum { FAM_STREAM, FAM_CATEGORY, FAM_TYPE, FAM_STATS };
static const char *const FAMILIES[] = {"stream", "category", "type", "stats"};

void cl_streams_category(const char *stream, char *out, size_t n) {
  size_t l = strcspn(stream, "-");
  if (l >= n)
    l = n - 1;
  memcpy(out, stream, l);
  out[l] = '\0';
}

static void category_key(cl_proj *p, const char *stream, const uint8_t tag[32], uint8_t key[64]) {
  char cat[CL_STREAM_MAX + 1];
  cl_streams_category(stream, cat, sizeof cat);
  cl_proj_hash(p, cat, strlen(cat), key);
  memcpy(key + 32, tag, 32);
}

static void type_key(uint32_t type, uint64_t seq, uint8_t key[12]) {
  key[0] = (uint8_t)(type >> 24), key[1] = (uint8_t)(type >> 16);
  key[2] = (uint8_t)(type >> 8), key[3] = (uint8_t)type;
  cl_be64(key + 4, seq);
}

static void set_time(Google__Protobuf__Timestamp **ts, int64_t ns) {
  if (!*ts) {
    *ts = cl_malloc(sizeof **ts);
    if (!*ts)
      return;
    google__protobuf__timestamp__init(*ts);
  }
  (*ts)->seconds = ns / 1000000000;
  (*ts)->nanos = (int32_t)(ns % 1000000000);
}

/* Adds one to the count of `type`, keeping counts sorted by type. */
static int count_type(Clinlog__V1__StreamInfo *si, uint32_t type) {
  size_t i = 0;
  while (i < si->n_counts && si->counts[i]->event_type < type)
    i++;
  if (i < si->n_counts && si->counts[i]->event_type == type) {
    si->counts[i]->count++;
    return 0;
  }
  Clinlog__V1__EventTypeCount **nc = cl_realloc(si->counts, (si->n_counts + 1) * sizeof *nc);
  if (!nc)
    return CL_ENOMEM;
  si->counts = nc;
  Clinlog__V1__EventTypeCount *c = cl_malloc(sizeof *c);
  if (!c)
    return CL_ENOMEM;
  clinlog__v1__event_type_count__init(c);
  c->event_type = type;
  c->count = 1;
  memmove(&si->counts[i + 1], &si->counts[i], (si->n_counts - i) * sizeof *si->counts);
  si->counts[i] = c;
  si->n_counts++;
  return 0;
}

static int unpack_info(const uint8_t *v, size_t n, Clinlog__V1__StreamInfo **out, cl_err *err) {
  int oom;
  *out = (Clinlog__V1__StreamInfo *)cl_pb_unpack(&clinlog__v1__stream_info__descriptor, v, n, &oom);
  if (!*out)
    return oom ? cl_err_set(err, CL_ENOMEM, "out of memory")
               : cl_err_set(err, CL_ECORRUPT, "streams: stored info does not decode");
  return 0;
}

/* ----------------------------------------------------------- the fold */

/* What the fold keeps between events and batches: the info of the streams
 * it touched, as committed plus the current batch's changes, so an event of
 * a known stream costs no read, decryption or sealing; the batch's changed
 * infos are sealed and written once, at its end. Bounded: emptied after a
 * batch once it holds CACHE_MAX streams. The runner discards it when a
 * batch fails or the state is reset. */
#define CACHE_MAX 50000

typedef struct entry {
  Clinlog__V1__StreamInfo *si; /* NULL: forgotten (an erased stream) */
  uint8_t tag[32];
  int dirty;
} entry;

typedef struct cache {
  cl_hmap *idx;     /* tag -> uint32 index into e */
  entry *e;
  size_t n, cap;
  uint32_t *dirty;  /* indexes of the entries the batch changed */
  size_t ndirty, capdirty;
} cache;

static void cache_clear(void *state) {
  cache *c = state;
  for (size_t i = 0; i < c->n; i++)
    if (c->e[i].si)
      clinlog__v1__stream_info__free_unpacked(c->e[i].si, NULL);
  c->n = c->ndirty = 0;
  cl_hmap_clear(c->idx);
}

static void *cache_new(void) {
  cache *c = cl_calloc(1, sizeof *c);
  if (c && !(c->idx = cl_hmap_new(32, sizeof(uint32_t)))) {
    cl_free(c);
    c = NULL;
  }
  return c;
}

static void cache_free(void *state) {
  cache *c = state;
  if (!c)
    return;
  cache_clear(c);
  cl_hmap_free(c->idx);
  cl_free(c->e);
  cl_free(c->dirty);
  cl_free(c);
}

static entry *cache_get(cache *c, const uint8_t tag[32]) {
  const uint32_t *i = cl_hmap_get(c->idx, tag);
  return i && c->e[*i].si ? &c->e[*i] : NULL;
}

/* Takes ownership of si (freed here on failure). */
static entry *cache_put(cache *c, const uint8_t tag[32], Clinlog__V1__StreamInfo *si) {
  const uint32_t *found = cl_hmap_get(c->idx, tag);
  if (found) { /* a forgotten slot of the same stream */
    c->e[*found].si = si;
    return &c->e[*found];
  }
  if (c->n == c->cap) {
    size_t nc = c->cap ? c->cap * 2 : 1024;
    entry *ne = cl_realloc(c->e, nc * sizeof *ne);
    if (!ne) {
      clinlog__v1__stream_info__free_unpacked(si, NULL);
      return NULL;
    }
    c->e = ne;
    c->cap = nc;
  }
  uint32_t i = (uint32_t)c->n;
  if (!cl_hmap_put(c->idx, tag, &i)) {
    clinlog__v1__stream_info__free_unpacked(si, NULL);
    return NULL;
  }
  c->e[i] = (entry){si, {0}, 0};
  memcpy(c->e[i].tag, tag, 32);
  c->n++;
  return &c->e[i];
}

static int mark_dirty(cache *c, entry *en) {
  if (en->dirty)
    return 0;
  if (c->ndirty == c->capdirty) {
    size_t nc = c->capdirty ? c->capdirty * 2 : 256;
    uint32_t *nd = cl_realloc(c->dirty, nc * sizeof *nd);
    if (!nd)
      return CL_ENOMEM;
    c->dirty = nd;
    c->capdirty = nc;
  }
  c->dirty[c->ndirty++] = (uint32_t)(en - c->e);
  en->dirty = 1;
  return 0;
}

static void cache_forget(cache *c, const uint8_t tag[32]) {
  entry *en = cache_get(c, tag);
  if (en) {
    clinlog__v1__stream_info__free_unpacked(en->si, NULL);
    en->si = NULL;
    en->dirty = 0;
  }
}

/* The decoded event of a view (the fold reads events sealed: decrypted
 * here, only for the few it needs). CL_EERASED if its stream was erased
 * since it was read. */
static int event_of(cl_log *log, const cl_event_view *ev, Clinlog__V1__Event **out, cl_err *err) {
  uint8_t *plain;
  size_t n;
  int rc = cl_log_open_event(log, ev, &plain, &n, err);
  if (rc)
    return rc;
  rc = cl_event_decode(plain, n, out, err);
  cl_log_event_free(plain, n);
  return rc;
}

/* Packs a StreamInfo into a new buffer (cl_free). NULL when out of memory. */
static uint8_t *pack_info(const Clinlog__V1__StreamInfo *si, size_t *n) {
  *n = clinlog__v1__stream_info__get_packed_size(si);
  uint8_t *b = cl_malloc(*n ? *n : 1);
  if (b)
    clinlog__v1__stream_info__pack(si, b);
  return b;
}

/* A new stream, from its first event: writes its sealed name and its
 * category entry, and makes its (empty) stats. */
static int new_stream(cl_fold_ctx *f, const cl_event_view *ev, Clinlog__V1__StreamInfo **out,
                      cl_err *err) {
  Clinlog__V1__Event *e;
  int rc = event_of(f->log, ev, &e, err);
  if (rc)
    return rc;
  char cat[CL_STREAM_MAX + 1];
  cl_streams_category(e->stream, cat, sizeof cat);
  Clinlog__V1__StreamInfo name = CLINLOG__V1__STREAM_INFO__INIT;
  name.stream = e->stream;
  name.category = cat;
  size_t nl;
  uint8_t *packed = pack_info(&name, &nl), ck[64];
  category_key(f->proj, e->stream, ev->stream_tag, ck);
  if (!packed)
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
  else if ((rc = cl_proj_put_sealed(f->txn, FAM_STREAM, ev->stream_tag, 32, ev->stream_tag, packed,
                                    nl, err)) == 0)
    rc = cl_proj_put(f->txn, FAM_CATEGORY, ck, sizeof ck, "", 0, err);
  cl_free(packed);
  clinlog__v1__event__free_unpacked(e, NULL);
  if (rc)
    return rc;
  Clinlog__V1__StreamInfo *si = cl_malloc(sizeof *si);
  if (si) {
    clinlog__v1__stream_info__init(si);
    si->first_seq = ev->seq;
    set_time(&si->first_committed_at, ev->committed_at_ns);
  }
  if (!si || !si->first_committed_at) {
    if (si)
      clinlog__v1__stream_info__free_unpacked(si, NULL);
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  }
  *out = si;
  return 0;
}

/* The stats of the event's stream: cached, committed, or new. NULL with 0:
 * the stream is erased. */
static int stream_of(cl_fold_ctx *f, const cl_event_view *ev, entry **out, cl_err *err) {
  cache *c = f->state;
  *out = cache_get(c, ev->stream_tag);
  if (*out)
    return 0;
  uint8_t *v;
  size_t vl;
  Clinlog__V1__StreamInfo *si = NULL;
  int rc = cl_proj_txn_get(f->txn, FAM_STATS, ev->stream_tag, 32, &v, &vl, err);
  if (rc == 0) {
    rc = unpack_info(v, vl, &si, err);
    cl_free(v);
  } else if (rc == CL_ENOTFOUND) {
    rc = new_stream(f, ev, &si, err);
  }
  if (rc == CL_EERASED)
    return 0; /* erased since the event was read: as if erased (its erasure comes later) */
  if (rc)
    return rc;
  if (!(*out = cache_put(c, ev->stream_tag, si)))
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  return 0;
}

typedef struct forget {
  cl_proj_txn *t;
} forget;

static int forget_event(void *ctx, const cl_event_view *ev, cl_err *err) {
  forget *fg = ctx;
  uint8_t tk[12];
  type_key(ev->event_type, ev->seq, tk);
  return cl_proj_del(fg->t, FAM_TYPE, tk, sizeof tk, err);
}

/* Forgets every trace of an erased stream: its info, its category entry,
 * and the type index entries of its events (their seqs and types are in
 * the records' plaintext headers, which erasure keeps). */
static int forget_stream(cl_fold_ctx *f, const cl_event_view *ev, cl_err *err) {
  Clinlog__V1__Event *e;
  int rc = event_of(f->log, ev, &e, err); /* $erasures is never erased */
  if (rc)
    return rc;
  const char *stream = e->stream_erased->stream;
  uint8_t tag[32], ck[64];
  if ((rc = cl_log_stream_tag(f->log, stream, tag, err)) == 0) {
    cache_forget(f->state, tag);
    category_key(f->proj, stream, tag, ck);
    if ((rc = cl_proj_del(f->txn, FAM_STREAM, tag, 32, err)) == 0 &&
        (rc = cl_proj_del(f->txn, FAM_STATS, tag, 32, err)) == 0 &&
        (rc = cl_proj_del(f->txn, FAM_CATEGORY, ck, sizeof ck, err)) == 0) {
      forget fg = {f->txn};
      rc = cl_log_read_stream(f->log, stream, 1, 0, 0, forget_event, &fg, err);
      if (rc == CL_ENOTFOUND) /* an erasure of a stream that had no events */
        rc = 0;
    }
  }
  clinlog__v1__event__free_unpacked(e, NULL);
  return rc;
}

static int fold(cl_fold_ctx *f, const cl_event_view *ev, cl_err *err) {
  if (ev->erased)
    return 0; /* leaves no trace; see runner.h */
  entry *en;
  int rc = stream_of(f, ev, &en, err);
  if (rc || !en)
    return rc;
  Clinlog__V1__StreamInfo *si = en->si;
  si->version = ev->stream_version;
  si->last_seq = ev->seq;
  set_time(&si->last_committed_at, ev->committed_at_ns);
  if (!si->last_committed_at || count_type(si, ev->event_type) || mark_dirty(f->state, en))
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  uint8_t tk[12];
  type_key(ev->event_type, ev->seq, tk);
  if ((rc = cl_proj_put(f->txn, FAM_TYPE, tk, sizeof tk, ev->stream_tag, 32, err)))
    return rc;
  if (ev->event_type == CLINLOG__V1__EVENT__BODY_STREAM_ERASED)
    rc = forget_stream(f, ev, err);
  return rc;
}

/* Writes the stats of every stream the batch changed. */
static int batch_end(cl_fold_ctx *f, cl_err *err) {
  cache *c = f->state;
  int rc = 0;
  for (size_t i = 0; i < c->ndirty && rc == 0; i++) {
    entry *en = &c->e[c->dirty[i]];
    if (!en->si || !en->dirty)
      continue;
    en->dirty = 0;
    size_t pl;
    uint8_t *packed = pack_info(en->si, &pl);
    if (!packed)
      return cl_err_set(err, CL_ENOMEM, "out of memory");
    rc = cl_proj_put(f->txn, FAM_STATS, en->tag, 32, packed, pl, err);
    cl_free(packed);
  }
  c->ndirty = 0;
  if (rc == 0 && c->n >= CACHE_MAX)
    cache_clear(c); /* the batch is written: what the cache held is on disk */
  return rc;
}

const cl_projection cl_streams_projection = {
    .name = "streams",
    .version = 2, /* 2: stats plain, names sealed apart */
    .families = FAMILIES,
    .nfamilies = sizeof FAMILIES / sizeof FAMILIES[0],
    .fold = fold,
    .sealed_reads = 1,
    .state_new = cache_new,
    .state_free = cache_free,
    .batch_end = batch_end,
    .discard = cache_clear,
};

/* ------------------------------------------------------------- reads */

static void name_types(Clinlog__V1__StreamInfo *si) {
  for (size_t i = 0; i < si->n_counts; i++) {
    const char *n = cl_event_type_name(si->counts[i]->event_type);
    if (n && si->counts[i]->name == protobuf_c_empty_string)
      si->counts[i]->name = cl_strdup(n); /* NULL when out of memory: protobuf-c packs "" */
  }
}

/* The info under `tag`: its sealed name, opened, with its stats. */
static int info_by_tag(cl_proj *p, const uint8_t tag[32], Clinlog__V1__StreamInfo **out,
                       cl_err *err) {
  uint8_t *v;
  size_t vl;
  Clinlog__V1__StreamInfo *name;
  int rc = cl_proj_get_sealed(p, FAM_STREAM, tag, 32, &v, &vl, err);
  if (rc == CL_EERASED)
    return cl_err_set(err, CL_ENOTFOUND, "stream was erased");
  if (rc)
    return rc;
  rc = unpack_info(v, vl, &name, err);
  cl_free(v);
  if (rc)
    return rc;
  if ((rc = cl_proj_get(p, FAM_STATS, tag, 32, &v, &vl, err)) == 0) {
    rc = unpack_info(v, vl, out, err);
    cl_free(v);
  } else if (rc == CL_ENOTFOUND) { /* a name without stats: not a state a commit leaves */
    rc = cl_err_set(err, CL_ECORRUPT, "streams: a stream without stats");
  }
  if (rc == 0) { /* the name's strings move over */
    (*out)->stream = name->stream, name->stream = (char *)protobuf_c_empty_string;
    (*out)->category = name->category, name->category = (char *)protobuf_c_empty_string;
    name_types(*out);
  }
  clinlog__v1__stream_info__free_unpacked(name, NULL);
  return rc;
}

int cl_streams_get(cl_proj *p, cl_log *log, const char *stream, Clinlog__V1__StreamInfo **out,
                   cl_err *err) {
  uint8_t tag[32];
  int rc = cl_log_stream_tag(log, stream, tag, err);
  if (rc)
    return rc;
  rc = info_by_tag(p, tag, out, err);
  if (rc == CL_ENOTFOUND)
    return cl_err_set(err, CL_ENOTFOUND, "stream %s has no events", stream);
  return rc;
}

typedef struct lister {
  cl_proj *p;
  size_t limit, n;
  const uint8_t *after;
  cl_streams_fn fn;
  void *ctx;
  uint8_t *next;
  int *more;
} lister;

static int list_one(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl,
                    cl_err *err) {
  (void)v, (void)vl;
  lister *l = ctx;
  if (kl != 64)
    return cl_err_set(err, CL_ECORRUPT, "streams: category key of %zu bytes", kl);
  if (l->after && memcmp(k + 32, l->after, 32) == 0)
    return 0; /* the previous page's last stream */
  if (l->n == l->limit) {
    *l->more = 1;
    return 1;
  }
  Clinlog__V1__StreamInfo *si;
  int rc = info_by_tag(l->p, k + 32, &si, err);
  if (rc == CL_ENOTFOUND)
    return 0; /* erased after the entry was read */
  if (rc)
    return rc;
  memcpy(l->next, k + 32, 32);
  l->n++;
  return l->fn(l->ctx, si, err);
}

int cl_streams_list(cl_proj *p, const char *category, const uint8_t *after, size_t limit,
                    cl_streams_fn fn, void *ctx, uint8_t next[32], int *more, cl_err *err) {
  uint8_t prefix[32], from[64];
  cl_proj_hash(p, category, strlen(category), prefix);
  memcpy(from, prefix, 32);
  if (after)
    memcpy(from + 32, after, 32);
  *more = 0;
  memset(next, 0, 32);
  lister l = {p, limit, 0, after, fn, ctx, next, more};
  return cl_proj_scan(p, FAM_CATEGORY, prefix, 32, after ? from : NULL, after ? 64 : 0, list_one,
                      &l, err);
}

typedef struct typer {
  uint64_t *seqs;
  size_t limit, n;
  uint64_t *next_from;
} typer;

static int type_one(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl,
                    cl_err *err) {
  (void)v, (void)vl;
  typer *t = ctx;
  if (kl != 12)
    return cl_err_set(err, CL_ECORRUPT, "streams: type key of %zu bytes", kl);
  uint64_t seq = cl_get_be64(k + 4);
  if (t->n == t->limit) {
    *t->next_from = seq;
    return 1;
  }
  t->seqs[t->n++] = seq;
  return 0;
}

int cl_streams_by_type(cl_proj *p, uint32_t type, uint64_t from_seq, size_t limit, uint64_t *seqs,
                       size_t *n, uint64_t *next_from, cl_err *err) {
  uint8_t prefix[4], from[12];
  type_key(type, from_seq ? from_seq : 1, from);
  memcpy(prefix, from, 4);
  *next_from = 0;
  typer t = {seqs, limit, 0, next_from};
  int rc = cl_proj_scan(p, FAM_TYPE, prefix, 4, from, sizeof from, type_one, &t, err);
  *n = t.n;
  return rc;
}

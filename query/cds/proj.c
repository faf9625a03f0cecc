/* The `cds` projection; see proj.h.
 *
 * Invariants:
 *  - deterministic: what the fold writes depends only on the events
 *    folded, the state they were folded over and the KB. The cache of
 *    patient states holds, for each patient it has an entry for, the state
 *    the transaction would read (a parsed state behaves and serializes as
 *    the one it was written from: check_state.c), so caching changes
 *    nothing written;
 *  - patient states and pending events reach the store only sealed under
 *    the patient stream's data key;
 *  - `recent` holds every pending/emitted key written by this batch and
 *    the one before (which may still be in flight, runner.c pipelines):
 *    an erasure finds those through it, the rest on disk. */
#include "query/cds/proj.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/cds/check.h"
#include "query/cds/rpm.h"
#include "store/alloc.h"
#include "store/event.h"
#include "store/hmap.h"
#include "store/keyring.h"

enum { FAM_PATIENT, FAM_PENDING, FAM_EMITTED, FAM_SILENCE, NFAM };
static const char *const families[NFAM] = {"patient", "pending", "emitted", "silence"};

#define KEY_LEN 48        /* stream tag || finding key */
#define TIDY_DELETED 1024 /* deleted entries a pending scan steps over before a compaction */
#define SKEY_LEN 56       /* deadline (u64 BE) || stream tag || device hash (16) */
#define CACHE_MAX 4096    /* patient states kept from one batch to the next */
#define PENDING_CHUNK 256 /* pending entries read per scan */

/* ---- per-runner state ---- */

typedef struct pent {
  uint8_t tag[32];
  cl_cds_patient *st; /* NULL: forgotten (erased): read through the txn */
  int dirty;          /* changed by this batch: batch_end writes it */
} pent;

/* Keys written by this batch and the one before: [0, prev) the batch
 * before, [prev, n) this one. */
typedef struct recent {
  uint8_t *k; /* n x len bytes; NULL until a key is noted */
  size_t len, prev, n, cap;
} recent;

typedef struct state {
  cl_hmap *idx; /* tag -> uint32 index into ents */
  pent *ents;
  size_t n, cap;
  recent rk; /* pending/emitted keys (KEY_LEN) */
  recent sk; /* silence keys (SKEY_LEN) */
  cl_cds_findings *fs;
} state;

static void cache_clear(state *s) {
  for (size_t i = 0; i < s->n; i++)
    cl_cds_patient_free(s->ents[i].st);
  s->n = 0;
  cl_hmap_clear(s->idx);
}

static void *state_new(void) {
  state *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  s->rk.len = KEY_LEN;
  s->sk.len = SKEY_LEN;
  if (!(s->idx = cl_hmap_new(32, sizeof(uint32_t))) || !(s->fs = malloc(sizeof *s->fs))) {
    cl_hmap_free(s->idx);
    free(s);
    return NULL;
  }
  return s;
}

static void state_free(void *v) {
  state *s = v;
  if (!s)
    return;
  cache_clear(s);
  cl_hmap_free(s->idx);
  free(s->ents);
  free(s->rk.k);
  free(s->sk.k);
  free(s->fs);
  free(s);
}

static void discard(void *v) {
  state *s = v;
  cache_clear(s);
  s->rk.prev = s->rk.n = s->sk.prev = s->sk.n = 0;
}

static int note_recent(recent *r, const uint8_t *k, cl_err *err) {
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 64;
    uint8_t *nk = realloc(r->k, cap * r->len);
    if (!nk)
      return cl_err_set(err, CL_ENOMEM, "cds: out of memory");
    r->k = nk;
    r->cap = cap;
  }
  memcpy(r->k + r->n++ * r->len, k, r->len);
  return 0;
}

/* This batch's keys become the batch before's. */
static void rotate(recent *r) {
  if (r->n > r->prev) /* k is NULL until a key is noted */
    memmove(r->k, r->k + r->prev * r->len, (r->n - r->prev) * r->len);
  r->n -= r->prev;
  r->prev = r->n;
}

/* Forgets one patient state of the cache, at random: with more patients
 * than it holds, the cache still hits in proportion (emptying it when full
 * made every patient after that a read, a decryption and a parse again).
 * Only between batches, when no entry is dirty. */
static void evict_one(state *s) {
  uint32_t i = randombytes_uniform((uint32_t)s->n), last = (uint32_t)(s->n - 1);
  cl_cds_patient_free(s->ents[i].st);
  cl_hmap_del(s->idx, s->ents[i].tag);
  if (i != last) {
    s->ents[i] = s->ents[last];
    uint32_t *ix = cl_hmap_get(s->idx, s->ents[i].tag);
    *ix = i;
  }
  s->n--;
}

static int batch_end(cl_fold_ctx *f, cl_err *err) {
  state *s = f->state;
  for (size_t i = 0; i < s->n; i++) {
    pent *p = &s->ents[i];
    if (!p->dirty || !p->st)
      continue;
    uint8_t *b;
    size_t bl;
    int rc = cl_cds_patient_serialize(p->st, &b, &bl, err);
    if (rc)
      return rc;
    rc = cl_proj_put_sealed(f->txn, FAM_PATIENT, p->tag, 32, p->tag, b, bl, err);
    free(b);
    if (rc && rc != CL_EERASED) /* erased meanwhile: its StreamErased forgets it */
      return rc;
    p->dirty = 0;
  }
  rotate(&s->rk);
  rotate(&s->sk);
  while (s->n > CACHE_MAX)
    evict_one(s);
  return 0;
}

/* The state of the patient of stream `tag`, from the cache, else the
 * transaction, else new (patient_id NULL: else CL_ENOTFOUND). CL_EERASED:
 * the stream is erased. */
static int patient_get(cl_fold_ctx *f, const uint8_t tag[32], const char *patient_id, pent **out,
                       cl_err *err) {
  state *s = f->state;
  uint32_t *ix = cl_hmap_get(s->idx, tag);
  if (ix && s->ents[*ix].st) {
    *out = &s->ents[*ix];
    return 0;
  }
  cl_cds_patient *st = NULL;
  uint8_t *v;
  size_t vl;
  int rc = cl_proj_txn_get_sealed(f->txn, FAM_PATIENT, tag, 32, &v, &vl, err);
  if (rc == 0) {
    rc = cl_cds_patient_parse(v, vl, &st, err);
    cl_free(v);
  } else if (rc == CL_ENOTFOUND && patient_id) {
    rc = cl_cds_patient_new(patient_id, &st, err);
  }
  if (rc)
    return rc;
  if (!ix) {
    if (s->n == s->cap) {
      size_t cap = s->cap ? s->cap * 2 : 64;
      pent *e = realloc(s->ents, cap * sizeof *e);
      if (!e) {
        cl_cds_patient_free(st);
        return cl_err_set(err, CL_ENOMEM, "cds: out of memory");
      }
      s->ents = e;
      s->cap = cap;
    }
    uint32_t i = (uint32_t)s->n;
    if (!(ix = cl_hmap_put(s->idx, tag, &i))) {
      cl_cds_patient_free(st);
      return cl_err_set(err, CL_ENOMEM, "cds: out of memory");
    }
    memcpy(s->ents[i].tag, tag, 32);
    s->n++;
  }
  s->ents[*ix].st = st;
  s->ents[*ix].dirty = 0;
  *out = &s->ents[*ix];
  return 0;
}

/* ---- findings ---- */

static int is_emitted(cl_fold_ctx *f, const uint8_t k[KEY_LEN], int *yes, cl_err *err) {
  uint8_t *v;
  size_t vl;
  int rc = cl_proj_txn_get(f->txn, FAM_EMITTED, k, KEY_LEN, &v, &vl, err);
  *yes = rc == 0;
  if (rc == 0)
    cl_free(v);
  return rc == CL_ENOTFOUND ? 0 : rc;
}

/* Packs ev (a finding's event, by "$log" in role log, source system
 * clinlog-cds) and seals it under `tag` at key k (kl bytes) of family fam. */
static int put_event(cl_fold_ctx *f, unsigned fam, const uint8_t *k, size_t kl,
                     const uint8_t tag[32], Clinlog__V1__Event *ev, cl_err *err) {
  Clinlog__V1__RecordedBy by = CLINLOG__V1__RECORDED_BY__INIT;
  by.principal_id = (char *)CL_LOG_PRINCIPAL;
  by.role = (char *)CL_ROLE_LOG;
  ev->recorded_by = &by;
  ev->source_system = (char *)CL_CDS_SOURCE_SYSTEM;
  size_t n = clinlog__v1__event__get_packed_size(ev);
  uint8_t *b = malloc(n ? n : 1);
  if (!b)
    return cl_err_set(err, CL_ENOMEM, "cds: out of memory");
  clinlog__v1__event__pack(ev, b);
  int rc = cl_proj_put_sealed(f->txn, fam, k, kl, tag, b, n, err);
  free(b);
  return rc;
}

/* The IssueDetected of finding `fi` as the emitter appends it, sealed
 * under `tag` at key k (kl bytes) of family fam. */
static int put_issue(cl_fold_ctx *f, unsigned fam, const uint8_t *k, size_t kl,
                     const uint8_t tag[32], const Clinlog__V1__Event *trig,
                     const cl_cds_finding *fi, int64_t at, cl_err *err) {
  cl_cds_issue is;
  cl_cds_issue_fill(fi, trig->stream, at, &is);
  Google__Protobuf__Timestamp ts = is.detected_at;
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  ev.event_id = (ProtobufCBinaryData){16, (uint8_t *)fi->key};
  ev.stream = trig->stream;
  ev.occurred_at = &ts;
  ev.causation_id = (ProtobufCBinaryData){16, (uint8_t *)fi->implicated[0]};
  ev.correlation_id = trig->correlation_id;
  ev.body_case = CLINLOG__V1__EVENT__BODY_ISSUE_DETECTED;
  ev.issue_detected = &is.msg;
  return put_event(f, fam, k, kl, tag, &ev, err);
}

/* Whether key k (tag || key) is pending or emitted already; if not, marks
 * it pending in this batch. */
static int pending_key(cl_fold_ctx *f, const uint8_t tag[32], const uint8_t key[16],
                       uint8_t k[KEY_LEN], int *done, cl_err *err) {
  memcpy(k, tag, 32);
  memcpy(k + 32, key, 16);
  return is_emitted(f, k, done, err);
}

static int put_pending(cl_fold_ctx *f, const uint8_t tag[32], const Clinlog__V1__Event *trig,
                       const cl_cds_finding *fi, int64_t at, cl_err *err) {
  uint8_t k[KEY_LEN];
  int done, rc = pending_key(f, tag, fi->key, k, &done, err);
  if (rc || done)
    return rc;
  rc = put_issue(f, FAM_PENDING, k, KEY_LEN, tag, trig, fi, at, err);
  if (rc == CL_EERASED)
    return 0; /* its StreamErased follows and forgets the stream */
  state *s = f->state;
  return rc ? rc : note_recent(&s->rk, k, err);
}

/* A NEWS2 score to store (rpm.h): a pending ObservationRecorded, appended
 * and folded like an IssueDetected (occurred_at = its effective time). */
static int put_news2(cl_fold_ctx *f, const uint8_t tag[32], const Clinlog__V1__Event *trig,
                     const cl_cds_news2_rec *rec, cl_err *err) {
  uint8_t k[KEY_LEN];
  int done, rc = pending_key(f, tag, rec->key, k, &done, err);
  if (rc || done)
    return rc;
  cl_rpm_news2_obs *o = malloc(sizeof *o);
  if (!o)
    return cl_err_set(err, CL_ENOMEM, "cds: out of memory");
  cl_rpm_news2_fill(rec, o);
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  ev.event_id = (ProtobufCBinaryData){16, (uint8_t *)rec->key};
  ev.stream = trig->stream;
  ev.occurred_at = &o->effective;
  ev.causation_id = (ProtobufCBinaryData){16, (uint8_t *)rec->trigger};
  ev.correlation_id = trig->correlation_id;
  ev.body_case = CLINLOG__V1__EVENT__BODY_OBSERVATION_RECORDED;
  ev.observation_recorded = &o->msg;
  rc = put_event(f, FAM_PENDING, k, KEY_LEN, tag, &ev, err);
  free(o);
  if (rc == CL_EERASED)
    return 0;
  state *s = f->state;
  return rc ? rc : note_recent(&s->rk, k, err);
}

/* Whether e is a finding's event this projection made (an ObservationRecorded
 * of a NEWS2 score): folded as emitted, never checked. */
static int is_own(const Clinlog__V1__Event *e) {
  return e->body_case == CLINLOG__V1__EVENT__BODY_OBSERVATION_RECORDED && e->source_system &&
         !strcmp(e->source_system, CL_CDS_SOURCE_SYSTEM) && e->recorded_by &&
         e->recorded_by->principal_id &&
         !strcmp(e->recorded_by->principal_id, CL_LOG_PRINCIPAL);
}

/* ---- device silence (rpm.h): the index of armed watches ---- */

static void silence_key(const cl_rpm_watch *w, const uint8_t tag[32], const uint8_t dev[16],
                        uint8_t k[SKEY_LEN]) {
  uint64_t d = w->deadline_ns < 0 ? 0 : (uint64_t)w->deadline_ns;
  for (int i = 0; i < 8; i++)
    k[i] = (uint8_t)(d >> (56 - 8 * i));
  memcpy(k + 8, tag, 32);
  memcpy(k + 40, dev, 16);
}

/* The keyed hash of a device id (no identifier in plaintext keys). */
static int device_hash(cl_fold_ctx *f, const char *device, uint8_t dev[16], cl_err *err) {
  char name[CL_RPM_ID_MAX + 16];
  snprintf(name, sizeof name, "rpm-device:%s", device);
  uint8_t t[32];
  int rc = cl_log_stream_tag(f->log, name, t, err);
  if (rc == 0)
    memcpy(dev, t, 16);
  return rc;
}

static int silence_del(cl_fold_ctx *f, const cl_rpm_watch *w, const uint8_t tag[32],
                       const uint8_t dev[16], cl_err *err) {
  uint8_t k[SKEY_LEN];
  silence_key(w, tag, dev, k);
  return cl_proj_del(f->txn, FAM_SILENCE, k, SKEY_LEN, err);
}

/* The watch of `device` changed from `was` (trigger: the event just
 * applied): its index entry moves. */
static int silence_update(cl_fold_ctx *f, const uint8_t tag[32], const Clinlog__V1__Event *trig,
                          const cl_cds_patient *pt, const char *device, const cl_rpm_watch *was,
                          cl_err *err) {
  cl_rpm_watch now;
  const cl_rpm_patient *rp = cl_rpm_of(pt);
  cl_rpm_watch_get(rp, device, &now);
  if (now.armed == was->armed &&
      (!now.armed || (now.deadline_ns == was->deadline_ns && !memcmp(now.key, was->key, 16))))
    return 0;
  uint8_t dev[16];
  int rc = device_hash(f, device, dev, err);
  if (rc == 0 && was->armed)
    rc = silence_del(f, was, tag, dev, err);
  if (rc || !now.armed)
    return rc;
  state *s = f->state;
  s->fs->n = s->fs->truncated = 0;
  cl_rpm_silent_finding(f->arg, rp, device, s->fs);
  if (s->fs->n != 1)
    return 0;
  uint8_t k[SKEY_LEN];
  silence_key(&now, tag, dev, k);
  rc = put_issue(f, FAM_SILENCE, k, SKEY_LEN, tag, trig, &s->fs->f[0], now.deadline_ns, err);
  if (rc == CL_EERASED)
    return 0;
  return rc ? rc : note_recent(&s->sk, k, err);
}

static int check(cl_fold_ctx *f, const cl_event_view *ev, const Clinlog__V1__Event *e,
                 cl_err *err) {
  pent *p = NULL;
  int rc = patient_get(f, ev->stream_tag, e->stream + 8, &p, err);
  if (rc == CL_EERASED)
    return 0;
  if (rc)
    return rc;
  state *s = f->state;
  int64_t at = ev->committed_at_ns;
  const Google__Protobuf__Timestamp *ts = e->occurred_at;
  if (ts && (ts->seconds || ts->nanos) && ts->seconds < INT64_MAX / 1000000000 - 1 &&
      ts->seconds > INT64_MIN / 1000000000 + 1)
    at = ts->seconds * 1000000000 + ts->nanos;
  const char *device = cl_rpm_event_device(e);
  cl_rpm_watch was;
  cl_rpm_watch_get(cl_rpm_of(p->st), device, &was);
  rc = cl_cds_apply(f->arg, p->st, e, ev->event_id, at, s->fs, err);
  if (rc == CL_ETOOBIG || rc == CL_EINVAL)
    return 0; /* the state is unchanged and nothing is found: the same on every node */
  if (rc)
    return rc;
  p->dirty = 1;
  for (size_t i = 0; rc == 0 && i < s->fs->n; i++)
    rc = put_pending(f, ev->stream_tag, e, &s->fs->f[i], at, err);
  if (rc == 0 && s->fs->news2.set)
    rc = put_news2(f, ev->stream_tag, e, &s->fs->news2, err);
  if (rc == 0 && device && device[0] && strlen(device) < CL_RPM_ID_MAX)
    rc = silence_update(f, ev->stream_tag, e, p->st, device, &was, err);
  return rc;
}

/* An IssueDetected is in the log: its key is emitted, no longer pending;
 * if it is a device's silence finding, the device goes silent and leaves
 * the silence index. */
static int emitted(cl_fold_ctx *f, const cl_event_view *ev, cl_err *err) {
  uint8_t k[KEY_LEN];
  memcpy(k, ev->stream_tag, 32);
  memcpy(k + 32, ev->event_id, 16);
  static const uint8_t one = 1;
  state *s = f->state;
  int rc = cl_proj_del(f->txn, FAM_PENDING, k, KEY_LEN, err);
  if (rc == 0)
    rc = cl_proj_put(f->txn, FAM_EMITTED, k, KEY_LEN, &one, 1, err);
  if (rc == 0)
    rc = note_recent(&s->rk, k, err);
  pent *p = NULL;
  if (rc == 0)
    rc = patient_get(f, ev->stream_tag, NULL, &p, err);
  if (rc == CL_ENOTFOUND || rc == CL_EERASED)
    return 0;
  cl_rpm_patient *rp = rc == 0 ? cl_rpm_of(p->st) : NULL;
  char device[CL_RPM_ID_MAX];
  cl_rpm_watch was = {.armed = 1};
  int folded = rp ? cl_rpm_silence_folded(rp, ev->event_id, device, &was.deadline_ns) : 0;
  if (folded < 0)
    return cl_err_set(err, CL_ENOMEM, "cds: out of memory");
  if (!folded)
    return rc;
  p->dirty = 1;
  uint8_t dev[16];
  rc = device_hash(f, device, dev, err);
  return rc ? rc : silence_del(f, &was, ev->stream_tag, dev, err);
}

/* ---- erasure ---- */

typedef struct klist {
  uint8_t *k; /* n x len bytes */
  size_t n, cap, len;
  size_t at;          /* where the stream tag sits in a key */
  const uint8_t *tag; /* keys of this stream only */
} klist;

static int collect(void *ctx, const uint8_t *key, size_t kl, const uint8_t *val, size_t vl,
                   cl_err *err) {
  (void)val;
  (void)vl;
  klist *l = ctx;
  if (kl != l->len || memcmp(key + l->at, l->tag, 32) != 0)
    return 0;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    uint8_t *k = realloc(l->k, cap * l->len);
    if (!k)
      return cl_err_set(err, CL_ENOMEM, "cds: out of memory");
    l->k = k;
    l->cap = cap;
  }
  memcpy(l->k + l->n++ * l->len, key, l->len);
  return 0;
}

static int erase(cl_fold_ctx *f, const char *stream, cl_err *err) {
  uint8_t tag[32];
  int rc = cl_log_stream_tag(f->log, stream, tag, err);
  if (rc)
    return rc;
  state *s = f->state;
  uint32_t *ix = cl_hmap_get(s->idx, tag);
  if (ix) {
    cl_cds_patient_free(s->ents[*ix].st);
    s->ents[*ix].st = NULL;
    s->ents[*ix].dirty = 0;
  }
  if ((rc = cl_proj_del(f->txn, FAM_PATIENT, tag, 32, err)))
    return rc;
  for (unsigned fam = FAM_PENDING; rc == 0 && fam <= FAM_SILENCE; fam++) {
    /* silence keys start with the deadline: the tag follows it */
    size_t kl = fam == FAM_SILENCE ? SKEY_LEN : KEY_LEN, at = fam == FAM_SILENCE ? 8 : 0;
    const recent *r = fam == FAM_SILENCE ? &s->sk : &s->rk;
    klist l = {.len = kl, .at = at, .tag = tag};
    rc = cl_proj_scan(f->proj, fam, fam == FAM_SILENCE ? NULL : tag, fam == FAM_SILENCE ? 0 : 32,
                      NULL, 0, collect, &l, err);
    for (size_t i = 0; rc == 0 && i < l.n; i++)
      rc = cl_proj_del(f->txn, fam, l.k + i * kl, kl, err);
    free(l.k);
    for (size_t i = 0; rc == 0 && i < r->n; i++)
      if (memcmp(r->k + i * kl + at, tag, 32) == 0)
        rc = cl_proj_del(f->txn, fam, r->k + i * kl, kl, err);
  }
  return rc;
}

/* ---- the fold ---- */

static int fold(cl_fold_ctx *f, const cl_event_view *ev, cl_err *err) {
  if (ev->erased)
    return 0; /* leaves no trace */
  switch (ev->event_type) {
  case CLINLOG__V1__EVENT__BODY_ISSUE_DETECTED:
    return emitted(f, ev, err); /* its id and stream tag say all: not decrypted */
  case CLINLOG__V1__EVENT__BODY_MEDICATION_PRESCRIBED:
  case CLINLOG__V1__EVENT__BODY_MEDICATION_DISCONTINUED:
  case CLINLOG__V1__EVENT__BODY_MEDICATION_DISPENSED:
  case CLINLOG__V1__EVENT__BODY_MEDICATION_ADMINISTERED:
  case CLINLOG__V1__EVENT__BODY_ALLERGY_RECORDED:
  case CLINLOG__V1__EVENT__BODY_PATIENT_REGISTERED:
  case CLINLOG__V1__EVENT__BODY_PATIENT_DEMOGRAPHICS_UPDATED:
  case CLINLOG__V1__EVENT__BODY_DEVICE_READING_RECORDED:
  case CLINLOG__V1__EVENT__BODY_OBSERVATION_RECORDED:
  case CLINLOG__V1__EVENT__BODY_RISK_SCORE_RECORDED:
  case CLINLOG__V1__EVENT__BODY_DEVICE_STATUS_REPORTED:
  case CLINLOG__V1__EVENT__BODY_DISPENSER_EVENT_RECORDED:
  case CLINLOG__V1__EVENT__BODY_ALERT_OVERRIDDEN:
  case CLINLOG__V1__EVENT__BODY_ALERT_ACKNOWLEDGED:
  case CLINLOG__V1__EVENT__BODY_STREAM_ERASED:
    break;
  default:
    return 0;
  }
  uint8_t *plain;
  size_t n;
  int rc = cl_log_open_event(f->log, ev, &plain, &n, err);
  if (rc == CL_EERASED)
    return 0;
  if (rc)
    return cl_err_prefix(err, "cds: seq %llu", (unsigned long long)ev->seq);
  Clinlog__V1__Event *e;
  rc = cl_event_decode(plain, n, &e, err);
  cl_log_event_free(plain, n);
  if (rc)
    return cl_err_prefix(err, "cds: seq %llu", (unsigned long long)ev->seq);
  if (e->body_case == CLINLOG__V1__EVENT__BODY_STREAM_ERASED)
    rc = erase(f, e->stream_erased->stream, err);
  else if (is_own(e))
    rc = emitted(f, ev, err);
  else if (strncmp(e->stream, "patient-", 8) == 0 && e->stream[8])
    rc = check(f, ev, e, err);
  if (rc)
    cl_err_prefix(err, "cds: seq %llu", (unsigned long long)ev->seq);
  clinlog__v1__event__free_unpacked(e, NULL);
  return rc;
}

void cl_cds_projection_init(cl_projection *def, const cl_kb *kb) {
  memset(def, 0, sizeof *def);
  def->name = CL_CDS_PROJ_NAME;
  def->version = CL_CDS_PROJ_VERSION;
  def->families = families;
  def->nfamilies = NFAM;
  def->fold = fold;
  def->sealed_reads = 1; /* decrypts only the events the checkers read */
  def->state_new = state_new;
  def->state_free = state_free;
  def->batch_end = batch_end;
  def->discard = discard;
  def->arg = kb;
}

/* ---- reads ---- */

typedef struct pitem {
  uint8_t key[16];
  uint8_t *ev;
  size_t n;
} pitem;

typedef struct pscan {
  cl_proj *p;
  unsigned fam;  /* FAM_PENDING or FAM_SILENCE */
  size_t kl;     /* its key length */
  uint64_t upto; /* FAM_SILENCE: deadlines before this only */
  pitem *it;
  size_t n, cap;
  uint8_t last[SKEY_LEN];
  int full, done;
} pscan;

static int pending_one(void *ctx, const uint8_t *key, size_t kl, const uint8_t *val, size_t vl,
                       cl_err *err) {
  pscan *s = ctx;
  if (kl != s->kl)
    return cl_err_set(err, CL_ECORRUPT, "cds: %s key of %zu bytes", families[s->fam], kl);
  if (s->fam == FAM_SILENCE) {
    uint64_t d = 0;
    for (int i = 0; i < 8; i++)
      d = d << 8 | key[i];
    if (d >= s->upto) {
      s->done = 1; /* keys are in deadline order: the rest are later */
      return 1;
    }
  }
  if (s->n == s->cap) {
    s->full = 1;
    return 1;
  }
  memcpy(s->last, key, kl);
  uint8_t *plain;
  size_t pn;
  int rc = cl_proj_open_sealed(s->p, s->fam, key, kl, val, vl, &plain, &pn, err);
  if (rc == CL_EERASED)
    return 0;
  if (rc)
    return rc;
  memcpy(s->it[s->n].key, s->fam == FAM_SILENCE ? key + 8 + 32 : key + 32, 16);
  s->it[s->n].ev = plain;
  s->it[s->n].n = pn;
  s->n++;
  return 0;
}

static int scan_issues(cl_proj *p, unsigned fam, uint64_t upto, size_t max, cl_cds_pending_fn fn,
                       void *ctx, cl_err *err) {
  pscan s = {.p = p,
             .fam = fam,
             .kl = fam == FAM_SILENCE ? SKEY_LEN : KEY_LEN,
             .upto = upto,
             .cap = PENDING_CHUNK};
  if (!(s.it = calloc(s.cap, sizeof *s.it)))
    return cl_err_set(err, CL_ENOMEM, "cds: out of memory");
  size_t done = 0;
  int rc = 0, from = 0;
  uint64_t deleted = 0;
  uint8_t next[SKEY_LEN + 1];
  do {
    s.n = 0;
    s.full = 0;
    /* the scan holds the projection's read lock: the callback, which
     * appends, runs after it */
    uint64_t d = 0;
    rc = cl_proj_scan_deleted(p, fam, NULL, 0, from ? next : NULL, from ? s.kl + 1 : 0, pending_one,
                              &s, &d, err);
    deleted += d;
    if (rc > 0)
      rc = 0;
    for (size_t i = 0; i < s.n; i++) {
      if (rc == 0 && (max == 0 || done < max)) {
        rc = fn(ctx, s.it[i].key, s.it[i].ev, s.it[i].n, err);
        done++;
      }
      cl_free(s.it[i].ev);
    }
    memcpy(next, s.last, s.kl);
    next[s.kl] = 0; /* the first key after the last one read */
    from = 1;
  } while (rc == 0 && s.full && !s.done && (max == 0 || done < max));
  free(s.it);
  /* Both families are queues: an entry is deleted once emitted (or its
   * deadline moves), and every scan from the start steps over the markers
   * of all of them until a compaction drops them: after a backlog of
   * 27,000 findings each round of the emitter took milliseconds, and alert
   * latency grew with the population (docs/cds.md). A scan that stepped
   * over many compacts the family, once, for the scans after it. */
  if (deleted >= TIDY_DELETED) {
    cl_err cerr;
    (void)cl_proj_compact(p, fam, &cerr); /* only slower scans if it fails */
  }
  return rc < 0 ? rc : 0;
}

int cl_cds_pending(cl_proj *p, size_t max, cl_cds_pending_fn fn, void *ctx, cl_err *err) {
  return scan_issues(p, FAM_PENDING, 0, max, fn, ctx, err);
}

int cl_cds_silent_due(cl_proj *p, int64_t now_ns, size_t max, cl_cds_pending_fn fn, void *ctx,
                      cl_err *err) {
  return scan_issues(p, FAM_SILENCE, now_ns < 0 ? 0 : (uint64_t)now_ns, max, fn, ctx, err);
}

typedef struct silent_list {
  cl_cds_silence *out;
  size_t n, max;
} silent_list;

static int silent_one(void *ctx, const uint8_t *key, size_t kl, const uint8_t *val, size_t vl,
                      cl_err *err) {
  (void)val, (void)vl, (void)err;
  silent_list *l = ctx;
  if (kl != SKEY_LEN)
    return 0;
  if (l->n < l->max) {
    cl_cds_silence *o = &l->out[l->n];
    o->deadline_ns = 0;
    for (int i = 0; i < 8; i++)
      o->deadline_ns = o->deadline_ns << 8 | key[i];
    memcpy(o->tag, key + 8, 32);
  }
  l->n++;
  return 0;
}

int cl_cds_silence_index(cl_proj *p, cl_cds_silence *out, size_t max, size_t *n, cl_err *err) {
  silent_list l = {out, 0, max};
  int rc = cl_proj_scan(p, FAM_SILENCE, NULL, 0, NULL, 0, silent_one, &l, err);
  *n = l.n;
  return rc < 0 ? rc : 0;
}

typedef struct counter {
  uint64_t n;
} counter;

static int count_one(void *ctx, const uint8_t *key, size_t kl, const uint8_t *val, size_t vl,
                     cl_err *err) {
  (void)key, (void)kl, (void)val, (void)vl, (void)err;
  ((counter *)ctx)->n++;
  return 0;
}

int cl_cds_counts(cl_proj *p, uint64_t *pending, uint64_t *emitted_n, cl_err *err) {
  counter a = {0}, b = {0};
  int rc = cl_proj_scan(p, FAM_PENDING, NULL, 0, NULL, 0, count_one, &a, err);
  if (rc == 0)
    rc = cl_proj_scan(p, FAM_EMITTED, NULL, 0, NULL, 0, count_one, &b, err);
  if (rc == 0) {
    *pending = a.n;
    *emitted_n = b.n;
  }
  return rc < 0 ? rc : 0;
}

int cl_cds_patient_load(cl_proj *p, cl_log *log, const char *patient_id, cl_cds_patient **out,
                        uint64_t *position, cl_err *err) {
  if (!patient_id || !patient_id[0])
    return cl_err_set(err, CL_EINVAL, "cds: no patient id");
  char stream[160];
  snprintf(stream, sizeof stream, "patient-%s", patient_id);
  uint8_t tag[32];
  int rc = cl_log_stream_tag(log, stream, tag, err);
  if (rc)
    return rc;
  if (position)
    *position = cl_proj_position(p);
  uint8_t *v;
  size_t vl;
  rc = cl_proj_get_sealed(p, FAM_PATIENT, tag, 32, &v, &vl, err);
  if (rc == CL_ENOTFOUND)
    return cl_cds_patient_new(patient_id, out, err);
  if (rc)
    return rc;
  rc = cl_cds_patient_parse(v, vl, out, err);
  cl_free(v);
  return rc;
}

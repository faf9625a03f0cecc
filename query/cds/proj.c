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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/cds/check.h"
#include "store/alloc.h"
#include "store/event.h"
#include "store/hmap.h"
#include "store/keyring.h"

enum { FAM_PATIENT, FAM_PENDING, FAM_EMITTED, NFAM };
static const char *const families[NFAM] = {"patient", "pending", "emitted"};

#define KEY_LEN 48        /* stream tag || finding key */
#define CACHE_MAX 4096    /* patient states kept from one batch to the next */
#define PENDING_CHUNK 256 /* pending entries read per scan */

/* ---- per-runner state ---- */

typedef struct pent {
  uint8_t tag[32];
  cl_cds_patient *st; /* NULL: forgotten (erased): read through the txn */
  int dirty;          /* changed by this batch: batch_end writes it */
} pent;

typedef struct state {
  cl_hmap *idx; /* tag -> uint32 index into ents */
  pent *ents;
  size_t n, cap;
  uint8_t (*rk)[KEY_LEN]; /* recent keys: [0, rprev) the batch before, [rprev, rn) this one */
  size_t rprev, rn, rcap;
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
  free(s->rk);
  free(s->fs);
  free(s);
}

static void discard(void *v) {
  state *s = v;
  cache_clear(s);
  s->rprev = s->rn = 0;
}

static int note_recent(state *s, const uint8_t k[KEY_LEN], cl_err *err) {
  if (s->rn == s->rcap) {
    size_t cap = s->rcap ? s->rcap * 2 : 64;
    uint8_t(*rk)[KEY_LEN] = realloc(s->rk, cap * sizeof *rk);
    if (!rk)
      return cl_err_set(err, CL_ENOMEM, "cds: out of memory");
    s->rk = rk;
    s->rcap = cap;
  }
  memcpy(s->rk[s->rn++], k, KEY_LEN);
  return 0;
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
  if (s->rn > s->rprev) /* rk is NULL until a finding is recorded */
    memmove(s->rk, s->rk + s->rprev, (s->rn - s->rprev) * sizeof *s->rk);
  s->rn -= s->rprev;
  s->rprev = s->rn;
  if (s->n > CACHE_MAX)
    cache_clear(s);
  return 0;
}

/* The state of the patient of stream `tag`, from the cache, else the
 * transaction, else new. CL_EERASED: the stream is erased. */
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
  } else if (rc == CL_ENOTFOUND) {
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

/* The IssueDetected of finding `fi` as the emitter appends it. */
static int put_pending(cl_fold_ctx *f, const uint8_t tag[32], const Clinlog__V1__Event *trig,
                       const cl_cds_finding *fi, int64_t at, cl_err *err) {
  uint8_t k[KEY_LEN];
  memcpy(k, tag, 32);
  memcpy(k + 32, fi->key, 16);
  int done, rc = is_emitted(f, k, &done, err);
  if (rc || done)
    return rc;
  cl_cds_issue is;
  cl_cds_issue_fill(fi, trig->stream, at, &is);
  Google__Protobuf__Timestamp ts = is.detected_at;
  Clinlog__V1__RecordedBy by = CLINLOG__V1__RECORDED_BY__INIT;
  by.principal_id = (char *)CL_LOG_PRINCIPAL;
  by.role = (char *)CL_ROLE_LOG;
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  ev.event_id = (ProtobufCBinaryData){16, (uint8_t *)fi->key};
  ev.stream = trig->stream;
  ev.occurred_at = &ts;
  ev.recorded_by = &by;
  ev.causation_id = (ProtobufCBinaryData){16, (uint8_t *)fi->implicated[0]};
  ev.correlation_id = trig->correlation_id;
  ev.source_system = (char *)CL_CDS_SOURCE_SYSTEM;
  ev.body_case = CLINLOG__V1__EVENT__BODY_ISSUE_DETECTED;
  ev.issue_detected = &is.msg;
  size_t n = clinlog__v1__event__get_packed_size(&ev);
  uint8_t *b = malloc(n ? n : 1);
  if (!b)
    return cl_err_set(err, CL_ENOMEM, "cds: out of memory");
  clinlog__v1__event__pack(&ev, b);
  rc = cl_proj_put_sealed(f->txn, FAM_PENDING, k, KEY_LEN, tag, b, n, err);
  free(b);
  if (rc == CL_EERASED)
    return 0; /* its StreamErased follows and forgets the stream */
  return rc ? rc : note_recent(f->state, k, err);
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
  rc = cl_cds_apply(f->arg, p->st, e, ev->event_id, at, s->fs, err);
  if (rc == CL_ETOOBIG || rc == CL_EINVAL)
    return 0; /* the state is unchanged and nothing is found: the same on every node */
  if (rc)
    return rc;
  p->dirty = 1;
  for (size_t i = 0; rc == 0 && i < s->fs->n; i++)
    rc = put_pending(f, ev->stream_tag, e, &s->fs->f[i], at, err);
  return rc;
}

/* An IssueDetected is in the log: its key is emitted, no longer pending. */
static int emitted(cl_fold_ctx *f, const cl_event_view *ev, cl_err *err) {
  uint8_t k[KEY_LEN];
  memcpy(k, ev->stream_tag, 32);
  memcpy(k + 32, ev->event_id, 16);
  static const uint8_t one = 1;
  int rc = cl_proj_del(f->txn, FAM_PENDING, k, KEY_LEN, err);
  if (rc == 0)
    rc = cl_proj_put(f->txn, FAM_EMITTED, k, KEY_LEN, &one, 1, err);
  return rc ? rc : note_recent(f->state, k, err);
}

/* ---- erasure ---- */

typedef struct klist {
  uint8_t (*k)[KEY_LEN];
  size_t n, cap;
} klist;

static int collect(void *ctx, const uint8_t *key, size_t kl, const uint8_t *val, size_t vl,
                   cl_err *err) {
  (void)val;
  (void)vl;
  klist *l = ctx;
  if (kl != KEY_LEN)
    return 0;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    uint8_t(*k)[KEY_LEN] = realloc(l->k, cap * sizeof *k);
    if (!k)
      return cl_err_set(err, CL_ENOMEM, "cds: out of memory");
    l->k = k;
    l->cap = cap;
  }
  memcpy(l->k[l->n++], key, KEY_LEN);
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
  for (unsigned fam = FAM_PENDING; rc == 0 && fam <= FAM_EMITTED; fam++) {
    klist l = {0};
    rc = cl_proj_scan(f->proj, fam, tag, 32, NULL, 0, collect, &l, err);
    for (size_t i = 0; rc == 0 && i < l.n; i++)
      rc = cl_proj_del(f->txn, fam, l.k[i], KEY_LEN, err);
    free(l.k);
    for (size_t i = 0; rc == 0 && i < s->rn; i++)
      if (memcmp(s->rk[i], tag, 32) == 0)
        rc = cl_proj_del(f->txn, fam, s->rk[i], KEY_LEN, err);
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
  def->sealed_reads = 1; /* decrypts only medication and allergy events */
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
  pitem *it;
  size_t n, cap;
  uint8_t last[KEY_LEN];
  int full;
} pscan;

static int pending_one(void *ctx, const uint8_t *key, size_t kl, const uint8_t *val, size_t vl,
                       cl_err *err) {
  pscan *s = ctx;
  if (kl != KEY_LEN)
    return cl_err_set(err, CL_ECORRUPT, "cds: pending key of %zu bytes", kl);
  if (s->n == s->cap) {
    s->full = 1;
    return 1;
  }
  memcpy(s->last, key, KEY_LEN);
  uint8_t *plain;
  size_t pn;
  int rc = cl_proj_open_sealed(s->p, FAM_PENDING, key, kl, val, vl, &plain, &pn, err);
  if (rc == CL_EERASED)
    return 0;
  if (rc)
    return rc;
  memcpy(s->it[s->n].key, key + 32, 16);
  s->it[s->n].ev = plain;
  s->it[s->n].n = pn;
  s->n++;
  return 0;
}

int cl_cds_pending(cl_proj *p, size_t max, cl_cds_pending_fn fn, void *ctx, cl_err *err) {
  pscan s = {.p = p, .cap = PENDING_CHUNK};
  if (!(s.it = calloc(s.cap, sizeof *s.it)))
    return cl_err_set(err, CL_ENOMEM, "cds: out of memory");
  size_t done = 0;
  int rc = 0, from = 0;
  uint8_t next[KEY_LEN + 1];
  do {
    s.n = 0;
    s.full = 0;
    /* the scan holds the projection's read lock: the callback, which
     * appends, runs after it */
    rc = cl_proj_scan(p, FAM_PENDING, NULL, 0, from ? next : NULL, from ? sizeof next : 0,
                      pending_one, &s, err);
    if (rc > 0)
      rc = 0;
    for (size_t i = 0; i < s.n; i++) {
      if (rc == 0 && (max == 0 || done < max)) {
        rc = fn(ctx, s.it[i].key, s.it[i].ev, s.it[i].n, err);
        done++;
      }
      cl_free(s.it[i].ev);
    }
    memcpy(next, s.last, KEY_LEN);
    next[KEY_LEN] = 0; /* the first key after the last one read */
    from = 1;
  } while (rc == 0 && s.full && (max == 0 || done < max));
  free(s.it);
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

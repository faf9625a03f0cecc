/* The audit projection and its queries; see view.h. */
#include "query/audit/view.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/audit/auditevent.h"
#include "store/alloc.h"
#include "store/db.h"
#include "store/event.h"
#include "store/keyring.h"

enum { FAM_TIME, FAM_PATIENT, FAM_PRINCIPAL, FAM_SEQ };
static const char *const FAMILIES[] = {"time", "patient", "principal", "seq"};

#define SUMMARY_FORMAT 1
#define OUTCOME_MAX 15
#define SUMMARY_MAX (1 + 32 + OUTCOME_MAX)
/* matches collected per index scan before they are read from the log: the
 * scan holds the projection's read lock, which neither the log reads nor
 * the caller's callback should run under */
#define CHUNK 256

/* hash(kind ":" ident), over the exact bytes of ident. */
static int hkey(const cl_proj *p, char kind, const char *ident, uint8_t out[32], cl_err *err) {
  size_t l = strlen(ident);
  char small[256], *b = l + 2 <= sizeof small ? small : cl_malloc(l + 2);
  if (!b)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  b[0] = kind;
  b[1] = ':';
  memcpy(b + 2, ident, l);
  cl_proj_hash(p, b, l + 2, out);
  if (b != small)
    cl_free(b);
  return 0;
}

/* occurred_at in ns, 0 for a time before the epoch (or none). */
static uint64_t at_of(const Clinlog__V1__Event *e) {
  const Google__Protobuf__Timestamp *ts = e->occurred_at;
  if (!ts || ts->seconds < 0)
    return 0;
  if ((uint64_t)ts->seconds > (UINT64_MAX - 999999999u) / 1000000000u)
    return UINT64_MAX - 1;
  return (uint64_t)ts->seconds * 1000000000u + (uint64_t)(ts->nanos > 0 ? ts->nanos : 0);
}

/* prefix[pl] || at || seq */
static size_t index_key(uint8_t *k, const uint8_t *prefix, size_t pl, uint64_t at, uint64_t seq) {
  if (pl)
    memcpy(k, prefix, pl);
  cl_be64(k + pl, at);
  cl_be64(k + pl + 8, seq);
  return pl + 16;
}

/* ----------------------------------------------------------- the fold */

static int put_summary(cl_fold_ctx *f, unsigned fam, const uint8_t *prefix, size_t pl, uint64_t at,
                       const cl_event_view *ev, const uint8_t *sum, size_t sl, cl_err *err) {
  uint8_t k[48];
  size_t kl = index_key(k, prefix, pl, at, ev->seq);
  return cl_proj_put_sealed(f->txn, fam, k, kl, ev->stream_tag, sum, sl, err);
}

static int fold_access(cl_fold_ctx *f, const cl_event_view *ev, const Clinlog__V1__Event *e,
                       cl_err *err) {
  const Clinlog__V1__AccessRecorded *a = e->access_recorded;
  uint64_t at = at_of(e);
  uint8_t sum[SUMMARY_MAX], h[32], sk[8], sv[8];
  size_t ol = strlen(a->outcome);
  if (ol > OUTCOME_MAX)
    ol = OUTCOME_MAX; /* outcome codes are 1-2 bytes; a longer one cannot match a filter anyway */
  sum[0] = SUMMARY_FORMAT;
  int rc = hkey(f->proj, 'u', a->principal_id, sum + 1, err);
  if (rc)
    return rc;
  memcpy(sum + 33, a->outcome, ol);
  size_t sl = 33 + ol;
  cl_be64(sk, ev->seq);
  cl_be64(sv, at);
  if ((rc = put_summary(f, FAM_TIME, NULL, 0, at, ev, sum, sl, err)) ||
      (rc = cl_proj_put(f->txn, FAM_SEQ, sk, 8, sv, 8, err)))
    return rc;
  if (a->principal_id[0] && (rc = put_summary(f, FAM_PRINCIPAL, sum + 1, 32, at, ev, sum, sl, err)))
    return rc;
  for (size_t i = 0; i < a->n_patients; i++) {
    if (!a->patients[i][0])
      continue;
    if ((rc = hkey(f->proj, 'p', a->patients[i], h, err)) ||
        (rc = put_summary(f, FAM_PATIENT, h, 32, at, ev, sum, sl, err)))
      return rc; /* a patient named twice puts the same entry twice: harmless */
  }
  return 0;
}

static int fold(cl_fold_ctx *f, const cl_event_view *ev, cl_err *err) {
  if (ev->event_type != CLINLOG__V1__EVENT__BODY_ACCESS_RECORDED || ev->erased)
    return 0; /* "$audit" is never erased: an erased AccessRecorded was not the recorder's */
  uint8_t *plain;
  size_t n;
  int rc = cl_log_open_event(f->log, ev, &plain, &n, err);
  if (rc == CL_EERASED)
    return 0;
  if (rc)
    return cl_err_prefix(err, "audit: seq %llu", (unsigned long long)ev->seq);
  Clinlog__V1__Event *e;
  rc = cl_event_decode(plain, n, &e, err);
  cl_log_event_free(plain, n);
  if (rc)
    return cl_err_prefix(err, "audit: seq %llu", (unsigned long long)ev->seq);
  if (e->body_case == CLINLOG__V1__EVENT__BODY_ACCESS_RECORDED &&
      strcmp(e->stream, CL_AUDIT_STREAM) == 0)
    rc = fold_access(f, ev, e, err);
  clinlog__v1__event__free_unpacked(e, NULL);
  return rc;
}

const cl_projection cl_audit_view_projection = {
    .name = "audit",
    .version = 1,
    .families = FAMILIES,
    .nfamilies = sizeof FAMILIES / sizeof FAMILIES[0],
    .fold = fold,
    .sealed_reads = 1, /* most events are not audit records: decrypt only those that are */
};

/* ------------------------------------------------------------- queries */

/* One index scan, collecting up to `cap` matching seqs. */
typedef struct scan {
  cl_proj *p;
  unsigned fam;
  size_t pl;                /* prefix bytes before at || seq */
  uint64_t until;           /* stop at at >= until (UINT64_MAX: never) */
  const uint8_t *principal; /* hash to match in the summary, or NULL */
  const char *outcome;      /* outcome to match, or NULL */
  uint64_t *seqs;
  size_t n, cap;
  uint64_t last_at, last_seq; /* the last entry looked at */
  int full;                   /* stopped at cap: more entries may follow */
} scan;

static int matches(scan *s, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, int *ok,
                   cl_err *err) {
  *ok = 1;
  if (!s->principal && !s->outcome)
    return 0;
  uint8_t *sum;
  size_t sl;
  int rc = cl_proj_open_sealed(s->p, s->fam, k, kl, v, vl, &sum, &sl, err);
  if (rc)
    return cl_err_prefix(err, "audit: summary of seq %llu", (unsigned long long)s->last_seq);
  if (sl < 33 || sl > SUMMARY_MAX || sum[0] != SUMMARY_FORMAT) {
    cl_free(sum);
    return cl_err_set(err, CL_ECORRUPT, "audit: summary of seq %llu has %zu bytes, format %u",
                      (unsigned long long)s->last_seq, sl, sl ? sum[0] : 0u);
  }
  if (s->principal && memcmp(sum + 1, s->principal, 32) != 0)
    *ok = 0;
  if (s->outcome && (strlen(s->outcome) != sl - 33 || memcmp(sum + 33, s->outcome, sl - 33) != 0))
    *ok = 0;
  cl_free(sum);
  return 0;
}

static int scan_one(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl,
                    cl_err *err) {
  scan *s = ctx;
  if (kl != s->pl + 16)
    return cl_err_set(err, CL_ECORRUPT, "audit: %s key of %zu bytes", FAMILIES[s->fam], kl);
  uint64_t at = cl_get_be64(k + s->pl), seq = cl_get_be64(k + s->pl + 8);
  if (at >= s->until)
    return 1;
  if (s->n == s->cap) {
    s->full = 1;
    return 1;
  }
  s->last_at = at;
  s->last_seq = seq;
  int ok, rc = matches(s, k, kl, v, vl, &ok, err);
  if (rc)
    return rc;
  if (ok)
    s->seqs[s->n++] = seq;
  return 0;
}

/* Reads the record at seq back from the log. */
typedef struct reader {
  Clinlog__V1__Event *e;
} reader;

static int read_one(void *ctx, const cl_event_view *ev, cl_err *err) {
  reader *r = ctx;
  if (!ev->event)
    return cl_err_set(err, CL_ECORRUPT, "audit: the record at seq %llu does not read (erased?)",
                      (unsigned long long)ev->seq);
  int rc = cl_event_decode(ev->event, ev->event_len, &r->e, err);
  if (rc)
    return rc;
  if (r->e->body_case != CLINLOG__V1__EVENT__BODY_ACCESS_RECORDED ||
      strcmp(r->e->stream, CL_AUDIT_STREAM) != 0) {
    clinlog__v1__event__free_unpacked(r->e, NULL);
    r->e = NULL;
    return cl_err_set(err, CL_ECORRUPT, "audit: the index points at seq %llu, not an audit record",
                      (unsigned long long)ev->seq);
  }
  return 1;
}

static int deliver(cl_log *log, uint64_t seq, cl_audit_fn fn, void *ctx, cl_err *err) {
  reader r = {NULL};
  int rc = cl_log_read_seq(log, seq, read_one, &r, err);
  if (rc == 0 && !r.e)
    rc = cl_err_set(err, CL_ECORRUPT, "audit: no record at seq %llu", (unsigned long long)seq);
  if (rc)
    return cl_err_prefix(err, "audit: reading seq %llu", (unsigned long long)seq);
  Clinlog__V1__AccessRecorded *a = r.e->access_recorded;
  char buf[48];
  const char *res = cl_audit_resource(a, seq, buf, sizeof buf);
  if (res == buf) { /* what it names, as the reader sees it (freed with the event) */
    char *dup = strdup(buf);
    if (!dup) {
      clinlog__v1__event__free_unpacked(r.e, NULL);
      return cl_err_set(err, CL_ENOMEM, "out of memory");
    }
    a->resource = dup;
  }
  rc = fn(ctx, seq, r.e, err);
  clinlog__v1__event__free_unpacked(r.e, NULL);
  return rc;
}

/* The `at` of the record at seq (the cursor). */
static int cursor_at(cl_proj *p, uint64_t seq, uint64_t *at, cl_err *err) {
  uint8_t k[8], *v;
  size_t vl;
  cl_be64(k, seq);
  int rc = cl_proj_get(p, FAM_SEQ, k, 8, &v, &vl, err);
  if (rc == CL_ENOTFOUND)
    return cl_err_set(err, CL_EINVAL, "audit: after_seq %llu is not an audit record folded yet",
                      (unsigned long long)seq);
  if (rc)
    return rc;
  if (vl != 8)
    rc = cl_err_set(err, CL_ECORRUPT, "audit: seq entry of %zu bytes", vl);
  else
    *at = cl_get_be64(v);
  cl_free(v);
  return rc;
}

int cl_audit_query(cl_proj *p, cl_log *log, const cl_audit_filter *f, cl_audit_fn fn, void *ctx,
                   uint64_t *next_after, cl_err *err) {
  if (next_after)
    *next_after = 0;
  if (!f || !fn)
    return cl_err_set(err, CL_EINVAL, "audit: a query needs a filter and a callback");
  if (f->until_ns && f->since_ns > f->until_ns)
    return cl_err_set(err, CL_EINVAL, "audit: since (%lld ns) is after until (%lld ns)",
                      (long long)f->since_ns, (long long)f->until_ns);
  uint8_t prefix[32], uh[32];
  scan s = {.p = p, .fam = FAM_TIME, .until = UINT64_MAX};
  int rc = 0, has_principal = f->principal && f->principal[0];
  if (f->patient && f->patient[0]) {
    s.fam = FAM_PATIENT, s.pl = 32;
    rc = hkey(p, 'p', f->patient, prefix, err);
  } else if (has_principal) {
    s.fam = FAM_PRINCIPAL, s.pl = 32;
    rc = hkey(p, 'u', f->principal, prefix, err);
  }
  if (rc == 0 && has_principal && s.fam != FAM_PRINCIPAL &&
      (rc = hkey(p, 'u', f->principal, uh, err)) == 0)
    s.principal = uh;
  if (rc)
    return rc;
  s.outcome = f->outcome && f->outcome[0] ? f->outcome : NULL;
  if (f->until_ns)
    s.until = f->until_ns > 0 ? (uint64_t)f->until_ns : 0;

  /* where to start: the window's start, or after the cursor if that is later */
  uint64_t from_at = f->since_ns > 0 ? (uint64_t)f->since_ns : 0, from_seq = 0;
  if (f->after_seq) {
    uint64_t cat = 0;
    if ((rc = cursor_at(p, f->after_seq, &cat, err)))
      return rc;
    if (cat >= from_at) /* (cat, after_seq + 1) > (from_at, 0) */
      from_at = cat, from_seq = f->after_seq + 1;
  }

  uint64_t seqs[CHUNK + 1];
  size_t delivered = 0;
  uint64_t last = 0; /* the last seq handed to fn */
  s.seqs = seqs;
  for (;;) {
    uint8_t from[48];
    size_t fl = index_key(from, prefix, s.pl, from_at, from_seq);
    /* one more than the page needs: seeing it says whether more follow */
    s.cap = f->limit && f->limit - delivered < CHUNK ? f->limit - delivered + 1 : CHUNK;
    s.n = 0;
    s.full = 0;
    rc = cl_proj_scan(p, s.fam, s.pl ? prefix : NULL, s.pl, from, fl, scan_one, &s, err);
    if (rc < 0)
      return rc;
    for (size_t i = 0; i < s.n; i++) {
      if (f->limit && delivered == f->limit) {
        if (next_after)
          *next_after = last;
        return 0;
      }
      rc = deliver(log, seqs[i], fn, ctx, err);
      if (rc < 0)
        return rc;
      delivered++;
      last = seqs[i];
      if (rc == 1) {
        if (next_after)
          *next_after = last;
        return 0;
      }
    }
    if (!s.full)
      return 0;
    from_at = s.last_at, from_seq = s.last_seq + 1;
  }
}

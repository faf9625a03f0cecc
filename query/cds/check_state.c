/* A patient's checker state as bytes (check.h, cl_cds_patient_serialize):
 * what the `cds` projection stores, sealed, per patient.
 *
 * Format version 4 (3 had no weight time, no vital times and did not keep the
 * last NEWS2 score stored, 2 had no NEWS2 section, 1 no remote-monitoring
 * section; a version 3 state is read as having none of them yet), integers
 * little-endian, doubles as their IEEE-754 bits (u64), strings as u16 length || bytes (no NUL):
 *
 *   | field            | encoding                                              |
 *   |------------------|-------------------------------------------------------|
 *   | version          | u8 = 4 (3 is read too)                                |
 *   | patient id       | str                                                   |
 *   | ids              | u8 n, n x str                                         |
 *   | weight_kg        | f64                                                   |
 *   | weight_t         | i64, when it was measured (version 4 on)              |
 *   | orders           | u32 n, u32 room, n x order                            |
 *   |   order          | str id, 16 event id, u8 ning, ning x u32 RxCUI, str   |
 *   |                  | code, i64 start, end, disc, dosage                    |
 *   |   dosage         | u8 has_dose, f64 qty, str unit, str route (KB name,   |
 *   |                  | "" none), str route_raw, f64 per_day                  |
 *   | allergies        | u32 n, n x (str id, 16 event id, u8 high, u8 n,       |
 *   |                  | n x str allergen)                                     |
 *   | administrations  | u32 n, n x (u32 RxCUI, f64 mg, i64 at)                |
 *   | monitoring       | u8 0 (none yet), or u8 1 and: (rpm_int.h)             |
 *   |   open           | u8 n, n x (str condition, 16 key)                     |
 *   |   weights        | u8 n, n x (i64 at, f64 kg)                            |
 *   |   devices        | u8 n, n x (str id, i64 last, 16 event id, i64         |
 *   |                  | deadline, 16 watch key)                               |
 *   |   prescriptions  | u8 n, n x (str id, u8 n, n x i64 miss)                |
 *   |   counters       | u64 unconverted, u64 untracked                        |
 *   |   news2          | u8 scale (0 unset, 1, 2), 7 x (f64 value, i64 t,      |
 *   |                  | 16 event id), in chart order (news2.h); i64 t of the  |
 *   |                  | last score stored, 7 x i8 its component scores        |
 *   |   vital times    | u8 n, n x (str LOINC, i64 newest measured at)         |
 *
 * `room` is the order array's capacity: the checker prunes ended orders
 * when it is full (order_room), so it is part of the state.
 *
 * Invariant: parse(serialize(st)) checks every later event exactly as st
 * would, and serializes to the same bytes (the projection's rebuild equals
 * its live state byte for byte whether a state stayed in its cache or was
 * read back). The parser takes bytes from disk: every length is checked
 * against its field's bound, and anything else is CL_ECORRUPT. */
#include <stdlib.h>
#include <string.h>

#include "query/cds/check_int.h"
#include "query/cds/rpm_int.h"

#define STATE_VERSION 4

typedef struct wbuf {
  uint8_t *p;
  size_t n, cap;
  int oom;
} wbuf;

static void put(wbuf *w, const void *src, size_t n) {
  if (w->oom)
    return;
  if (w->n + n > w->cap) {
    size_t cap = w->cap ? w->cap : 256;
    while (cap < w->n + n)
      cap *= 2;
    uint8_t *p = realloc(w->p, cap);
    if (!p) {
      w->oom = 1;
      return;
    }
    w->p = p;
    w->cap = cap;
  }
  memcpy(w->p + w->n, src, n);
  w->n += n;
}

static void put_u64(wbuf *w, uint64_t v) {
  uint8_t b[8];
  for (int i = 0; i < 8; i++)
    b[i] = (uint8_t)(v >> (8 * i));
  put(w, b, 8);
}
static void put_u32(wbuf *w, uint32_t v) {
  uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
  put(w, b, 4);
}
static void put_u8(wbuf *w, uint8_t v) { put(w, &v, 1); }
static void put_f64(wbuf *w, double d) {
  uint64_t v;
  memcpy(&v, &d, 8);
  put_u64(w, v);
}
static void put_str(wbuf *w, const char *s) {
  size_t l = s ? strlen(s) : 0;
  if (l > UINT16_MAX) {
    w->oom = 1; /* cannot happen: every string is bounded far below */
    return;
  }
  uint8_t b[2] = {(uint8_t)l, (uint8_t)(l >> 8)};
  put(w, b, 2);
  put(w, s, l);
}

static void put_rpm(wbuf *w, const cl_rpm_patient *r) {
  put_u8(w, r != NULL);
  if (!r)
    return;
  put_u8(w, (uint8_t)r->nopen);
  for (size_t i = 0; i < r->nopen; i++) {
    put_str(w, r->open[i].cond);
    put(w, r->open[i].key, 16);
  }
  put_u8(w, (uint8_t)r->nw);
  for (size_t i = 0; i < r->nw; i++) {
    put_u64(w, (uint64_t)r->w[i].t);
    put_f64(w, r->w[i].kg);
  }
  put_u8(w, (uint8_t)r->ndev);
  for (size_t i = 0; i < r->ndev; i++) {
    const rpm_device *d = &r->dev[i];
    put_str(w, d->id);
    put_u64(w, (uint64_t)d->last);
    put(w, d->ev, 16);
    put_u64(w, (uint64_t)d->deadline);
    put(w, d->wkey, 16);
  }
  put_u8(w, (uint8_t)r->nrx);
  for (size_t i = 0; i < r->nrx; i++) {
    put_str(w, r->rx[i].id);
    put_u8(w, (uint8_t)r->rx[i].nmiss);
    for (size_t j = 0; j < r->rx[i].nmiss; j++)
      put_u64(w, (uint64_t)r->rx[i].miss[j]);
  }
  put_u64(w, r->unconverted);
  put_u64(w, r->untracked);
  put_u8(w, (uint8_t)r->news2.scale);
  for (int i = 0; i < CL_NEWS2_NPARAMS; i++) {
    put_f64(w, r->news2.v[i]);
    put_u64(w, (uint64_t)r->news2.t[i]);
    put(w, r->news2.ev[i], 16);
  }
  put_u64(w, (uint64_t)r->news2.rec_t);
  for (int i = 0; i < CL_NEWS2_NPARAMS; i++)
    put_u8(w, (uint8_t)r->news2.rec_score[i]);
  put_u8(w, (uint8_t)r->nvlast);
  for (size_t i = 0; i < r->nvlast; i++) {
    put_str(w, r->vlast[i].loinc);
    put_u64(w, (uint64_t)r->vlast[i].t);
  }
}

int cl_cds_patient_serialize(const cl_cds_patient *st, uint8_t **out, size_t *n, cl_err *err) {
  *out = NULL;
  *n = 0;
  wbuf w = {0};
  put_u8(&w, STATE_VERSION);
  put_str(&w, st->patient_id);
  put_u8(&w, (uint8_t)st->nids);
  for (size_t i = 0; i < st->nids; i++)
    put_str(&w, st->ids[i]);
  put_f64(&w, st->weight_kg);
  put_u64(&w, (uint64_t)st->weight_t);
  put_u32(&w, (uint32_t)st->norder);
  put_u32(&w, (uint32_t)st->cap_order);
  for (size_t i = 0; i < st->norder; i++) {
    const order *o = &st->orders[i];
    put_str(&w, o->id);
    put(&w, o->ev, 16);
    put_u8(&w, (uint8_t)o->ning);
    for (size_t j = 0; j < o->ning; j++)
      put_u32(&w, o->ing[j]);
    put_str(&w, o->code);
    put_u64(&w, (uint64_t)o->start);
    put_u64(&w, (uint64_t)o->end);
    put_u64(&w, (uint64_t)o->disc);
    put_u8(&w, (uint8_t)(o->dose.has_dose != 0));
    put_f64(&w, o->dose.qty);
    put_str(&w, o->dose.unit);
    put_str(&w, o->dose.route ? o->dose.route : "");
    put_str(&w, o->dose.route_raw);
    put_f64(&w, o->dose.per_day);
  }
  put_u32(&w, (uint32_t)st->nallergy);
  for (size_t i = 0; i < st->nallergy; i++) {
    const allergy *a = &st->allergies[i];
    put_str(&w, a->id);
    put(&w, a->ev, 16);
    put_u8(&w, (uint8_t)(a->high != 0));
    put_u8(&w, (uint8_t)a->n);
    for (size_t j = 0; j < a->n; j++)
      put_str(&w, a->allergen[j]);
  }
  put_u32(&w, (uint32_t)st->nadmin);
  for (size_t i = 0; i < st->nadmin; i++) {
    put_u32(&w, st->admins[i].ing);
    put_f64(&w, st->admins[i].mg);
    put_u64(&w, (uint64_t)st->admins[i].at);
  }
  put_rpm(&w, st->rpm);
  if (w.oom) {
    free(w.p);
    return cl_err_set(err, CL_ENOMEM, "cds: out of memory");
  }
  *out = w.p;
  *n = w.n;
  return 0;
}

/* ---------------------------------------------------------------- parse */

typedef struct rbuf {
  const uint8_t *p;
  size_t n, off;
  int bad;
} rbuf;

static const uint8_t *take(rbuf *r, size_t n) {
  if (r->bad || r->n - r->off < n) {
    r->bad = 1;
    return NULL;
  }
  const uint8_t *p = r->p + r->off;
  r->off += n;
  return p;
}
static uint64_t get_u64(rbuf *r) {
  const uint8_t *b = take(r, 8);
  uint64_t v = 0;
  for (int i = 7; b && i >= 0; i--)
    v = v << 8 | b[i];
  return v;
}
static uint32_t get_u32(rbuf *r) {
  const uint8_t *b = take(r, 4);
  return b ? (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24 : 0;
}
static uint8_t get_u8(rbuf *r) {
  const uint8_t *b = take(r, 1);
  return b ? b[0] : 0;
}
static double get_f64(rbuf *r) {
  uint64_t v = get_u64(r);
  double d;
  memcpy(&d, &v, 8);
  return d;
}
/* A string into dst (cap bytes with its NUL): longer, or holding a NUL, is
 * corrupt. */
static void get_str(rbuf *r, char *dst, size_t cap) {
  const uint8_t *b = take(r, 2);
  size_t l = b ? (size_t)b[0] | (size_t)b[1] << 8 : 0;
  const uint8_t *s = take(r, l);
  if (!s || l >= cap || memchr(s, 0, l)) {
    r->bad = 1;
    if (cap)
      dst[0] = '\0';
    return;
  }
  memcpy(dst, s, l);
  dst[l] = '\0';
}
/* A string as a new allocation (NULL: corrupt or out of memory, *oom says). */
static char *get_dup(rbuf *r, int *oom) {
  char tmp[UINT16_MAX + 1];
  get_str(r, tmp, sizeof tmp);
  if (r->bad)
    return NULL;
  char *d = cds_dupstr(tmp);
  if (!d)
    *oom = 1;
  return d;
}

static void get_key(rbuf *r, uint8_t key[16]) {
  const uint8_t *b = take(r, 16);
  if (b)
    memcpy(key, b, 16);
}

/* Room for a list's n elements of `size` bytes (n at most max, else
 * r->bad): the list (NULL when n is 0), *cap = n; NULL and *oom out of
 * memory. */
static void *get_list(rbuf *r, size_t n, size_t max, size_t size, size_t *cap, int *oom) {
  if (n > max)
    r->bad = 1;
  if (r->bad || *oom || !n)
    return NULL;
  void *l = calloc(n, size);
  if (!l)
    *oom = 1;
  else
    *cap = n;
  return l;
}

/* The monitoring section into a zeroed state; r->bad on any bound, *oom
 * out of memory. `version` 3 has no vital times. */
static void get_rpm(rbuf *r, cl_rpm_patient *p, int version, int *oom) {
  p->nopen = get_u8(r);
  p->open = get_list(r, p->nopen, CL_RPM_MAX_OPEN, sizeof *p->open, &p->cap_open, oom);
  for (size_t i = 0; !r->bad && !*oom && i < p->nopen; i++) {
    get_str(r, p->open[i].cond, sizeof p->open[i].cond);
    get_key(r, p->open[i].key);
  }
  p->nw = r->bad || *oom ? 0 : get_u8(r);
  p->w = get_list(r, p->nw, CL_RPM_MAX_WEIGHTS, sizeof *p->w, &p->cap_w, oom);
  for (size_t i = 0; !r->bad && !*oom && i < p->nw; i++) {
    p->w[i].t = (int64_t)get_u64(r);
    p->w[i].kg = get_f64(r);
  }
  p->ndev = r->bad || *oom ? 0 : get_u8(r);
  p->dev = get_list(r, p->ndev, CL_RPM_MAX_DEVICES, sizeof *p->dev, &p->cap_dev, oom);
  for (size_t i = 0; !r->bad && !*oom && i < p->ndev; i++) {
    rpm_device *d = &p->dev[i];
    get_str(r, d->id, sizeof d->id);
    d->last = (int64_t)get_u64(r);
    get_key(r, d->ev);
    d->deadline = (int64_t)get_u64(r);
    get_key(r, d->wkey);
  }
  p->nrx = r->bad || *oom ? 0 : get_u8(r);
  p->rx = get_list(r, p->nrx, CL_RPM_MAX_RX, sizeof *p->rx, &p->cap_rx, oom);
  for (size_t i = 0; !r->bad && !*oom && i < p->nrx; i++) {
    get_str(r, p->rx[i].id, sizeof p->rx[i].id);
    p->rx[i].nmiss = get_u8(r);
    if (p->rx[i].nmiss > CL_RPM_MAX_MISSES)
      r->bad = 1;
    for (size_t j = 0; !r->bad && j < p->rx[i].nmiss; j++)
      p->rx[i].miss[j] = (int64_t)get_u64(r);
  }
  p->unconverted = get_u64(r);
  p->untracked = get_u64(r);
  p->news2.scale = get_u8(r);
  if (p->news2.scale > 2)
    r->bad = 1;
  for (int i = 0; !r->bad && i < CL_NEWS2_NPARAMS; i++) {
    p->news2.v[i] = get_f64(r);
    p->news2.t[i] = (int64_t)get_u64(r);
    get_key(r, p->news2.ev[i]);
  }
  if (version >= 4) {
    p->news2.rec_t = (int64_t)get_u64(r);
    for (int i = 0; !r->bad && i < CL_NEWS2_NPARAMS; i++) {
      p->news2.rec_score[i] = (int8_t)get_u8(r);
      if (p->news2.rec_score[i] < 0 || p->news2.rec_score[i] > 3)
        r->bad = 1;
    }
  }
  p->nvlast = r->bad || *oom || version < 4 ? 0 : get_u8(r);
  p->vlast = get_list(r, p->nvlast, CL_RPM_MAX_CODES, sizeof *p->vlast, &p->cap_vlast, oom);
  for (size_t i = 0; !r->bad && !*oom && i < p->nvlast; i++) {
    get_str(r, p->vlast[i].loinc, sizeof p->vlast[i].loinc);
    p->vlast[i].t = (int64_t)get_u64(r);
  }
}

int cl_cds_patient_parse(const uint8_t *p, size_t n, cl_cds_patient **out, cl_err *err) {
  *out = NULL;
  rbuf r = {p, n, 0, 0};
  int oom = 0;
  int version = get_u8(&r);
  if (version != STATE_VERSION && version != 3)
    return cl_err_set(err, CL_ECORRUPT, "cds: patient state of an unknown format (%zu bytes)", n);
  cl_cds_patient *st = calloc(1, sizeof *st);
  if (!st)
    return cl_err_set(err, CL_ENOMEM, "cds: out of memory");
  st->patient_id = get_dup(&r, &oom);
  if (st->patient_id && !st->patient_id[0])
    r.bad = 1;
  size_t nids = get_u8(&r);
  if (nids > CL_CDS_MAX_IDS)
    r.bad = 1;
  for (size_t i = 0; !r.bad && !oom && i < nids; i++)
    if ((st->ids[st->nids] = get_dup(&r, &oom)))
      st->nids++;
  st->weight_kg = get_f64(&r);
  if (version >= 4)
    st->weight_t = (int64_t)get_u64(&r);
  uint32_t no = get_u32(&r), room = get_u32(&r);
  if (no > room || room > CL_CDS_MAX_ORDERS)
    r.bad = 1;
  if (!r.bad && room && !(st->orders = calloc(room, sizeof *st->orders)))
    oom = 1;
  else if (!r.bad)
    st->cap_order = room;
  for (size_t i = 0; !r.bad && !oom && i < no; i++) {
    order *o = &st->orders[i];
    if (!(o->id = get_dup(&r, &oom)))
      break;
    st->norder++;
    const uint8_t *ev = take(&r, 16);
    if (ev)
      memcpy(o->ev, ev, 16);
    o->ning = get_u8(&r);
    if (o->ning > CL_KB_MAX_PRODUCT_ING)
      r.bad = 1;
    for (size_t j = 0; !r.bad && j < o->ning; j++)
      o->ing[j] = get_u32(&r);
    get_str(&r, o->code, sizeof o->code);
    o->start = (int64_t)get_u64(&r);
    o->end = (int64_t)get_u64(&r);
    o->disc = (int64_t)get_u64(&r);
    o->dose.has_dose = get_u8(&r);
    o->dose.qty = get_f64(&r);
    get_str(&r, o->dose.unit, sizeof o->dose.unit);
    char route[24];
    get_str(&r, route, sizeof route);
    if (!r.bad && route[0]) { /* back to the static KB name */
      Clinlog__V1__Code c = CLINLOG__V1__CODE__INIT;
      c.code = route;
      o->dose.route = cds_route(&c);
      if (!o->dose.route || strcmp(o->dose.route, route) != 0)
        r.bad = 1;
    }
    get_str(&r, o->dose.route_raw, sizeof o->dose.route_raw);
    o->dose.per_day = get_f64(&r);
  }
  uint32_t na = r.bad || oom ? 0 : get_u32(&r);
  if (na > CL_CDS_MAX_ALLERGIES)
    r.bad = 1;
  if (!r.bad && !oom && na && !(st->allergies = calloc(na, sizeof *st->allergies)))
    oom = 1;
  else if (!r.bad)
    st->cap_allergy = na;
  for (size_t i = 0; !r.bad && !oom && i < na; i++) {
    allergy *a = &st->allergies[i];
    if (!(a->id = get_dup(&r, &oom)))
      break;
    st->nallergy++;
    const uint8_t *ev = take(&r, 16);
    if (ev)
      memcpy(a->ev, ev, 16);
    a->high = get_u8(&r);
    a->n = get_u8(&r);
    if (a->n > CL_CDS_MAX_ALLERGENS)
      r.bad = 1;
    for (size_t j = 0; !r.bad && j < a->n; j++)
      get_str(&r, a->allergen[j], sizeof a->allergen[j]);
  }
  uint32_t nd = r.bad || oom ? 0 : get_u32(&r);
  if (nd > CL_CDS_MAX_ADMINS)
    r.bad = 1;
  if (!r.bad && !oom && nd && !(st->admins = calloc(nd, sizeof *st->admins)))
    oom = 1;
  else if (!r.bad)
    st->cap_admin = nd;
  for (size_t i = 0; !r.bad && !oom && i < nd; i++) {
    st->admins[i].ing = get_u32(&r);
    st->admins[i].mg = get_f64(&r);
    st->admins[i].at = (int64_t)get_u64(&r);
    st->nadmin++;
  }
  if (!r.bad && !oom && get_u8(&r) == 1) {
    if (!(st->rpm = calloc(1, sizeof *st->rpm)))
      oom = 1;
    else
      get_rpm(&r, st->rpm, version, &oom);
  }
  if (!r.bad && !oom && r.off != n)
    r.bad = 1; /* trailing bytes */
  if (r.bad || oom) {
    cl_cds_patient_free(st);
    return oom ? cl_err_set(err, CL_ENOMEM, "cds: out of memory")
               : cl_err_set(err, CL_ECORRUPT, "cds: patient state of %zu bytes does not parse", n);
  }
  *out = st;
  return 0;
}

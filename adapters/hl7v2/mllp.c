/* The MLLP deframer and framer (mllp.h). A small state machine over bytes;
 * runs of frame content are copied in bulk. Invariant: len <= max, and the
 * buffer holds the current frame's content only while in BODY/TRAILER. */
#include <string.h>

#include "adapters/hl7v2/mllp.h"
#include "store/alloc.h"

enum state { HUNT, BODY, TRAILER, DISCARD, DISCARD_TRAILER };

struct cl_mllp {
  uint8_t *buf;
  size_t len, cap, max;
  int state;          /* enum state */
  uint64_t pos;       /* stream offset of the next byte */
  uint64_t frame_off; /* offset of the current frame's VT */
  cl_mllp_stats st;
};

int cl_mllp_new(size_t max_frame, cl_mllp **out, cl_err *err) {
  if (!out)
    return cl_err_set(err, CL_EINVAL, "mllp: NULL out");
  cl_mllp *d = cl_calloc(1, sizeof *d);
  if (!d)
    return cl_err_set(err, CL_ENOMEM, "mllp: out of memory");
  d->max = max_frame ? max_frame : CL_MLLP_DEFAULT_MAX_FRAME;
  *out = d;
  return 0;
}

void cl_mllp_free(cl_mllp *d) {
  if (!d)
    return;
  cl_free(d->buf);
  cl_free(d);
}

const cl_mllp_stats *cl_mllp_stats_of(const cl_mllp *d) { return &d->st; }

int cl_mllp_pending(const cl_mllp *d) { return d->state == BODY || d->state == TRAILER; }

static int append(cl_mllp *d, const uint8_t *p, size_t n) {
  if (d->cap - d->len < n) {
    size_t cap = d->cap ? d->cap : 4096;
    while (cap - d->len < n)
      cap = cap > d->max / 2 ? d->max : cap * 2;
    uint8_t *b = cl_realloc(d->buf, cap);
    if (!b)
      return CL_ENOMEM;
    d->buf = b;
    d->cap = cap;
  }
  memcpy(d->buf + d->len, p, n);
  d->len += n;
  return 0;
}

static void start(cl_mllp *d) {
  d->state = BODY;
  d->len = 0;
  d->frame_off = d->pos;
}

int cl_mllp_feed(cl_mllp *d, const uint8_t *p, size_t n, cl_mllp_cb cb, void *ctx, size_t *consumed,
                 cl_err *err) {
  if (consumed)
    *consumed = 0;
  if (!d || !cb || (!p && n > 0))
    return cl_err_set(err, CL_EINVAL, "mllp: NULL argument");
  size_t i = 0;
  int rc = 0;
  while (i < n && rc == 0) {
    uint8_t c = p[i];
    cl_mllp_event ev = {0};
    switch (d->state) {
    case HUNT:
      if (c == CL_MLLP_VT)
        start(d);
      else
        d->st.junk++;
      break;
    case BODY: {
      if (c == CL_MLLP_VT) {
        d->st.abandoned++;
        start(d);
        break;
      }
      if (c == CL_MLLP_FS) {
        d->state = TRAILER;
        break;
      }
      size_t run = 1;
      while (i + run < n && p[i + run] != CL_MLLP_VT && p[i + run] != CL_MLLP_FS)
        run++;
      if (run > d->max - d->len) {
        d->st.oversized++;
        d->state = DISCARD;
        ev = (cl_mllp_event){CL_MLLP_OVERSIZED, NULL, d->max, d->frame_off};
      } else if (append(d, p + i, run) != 0) {
        d->state = DISCARD;
        rc = cl_err_set(err, CL_ENOMEM, "mllp: out of memory for a frame of %zu bytes",
                        d->len + run);
      }
      d->pos += run - 1;
      i += run - 1;
      break;
    }
    case TRAILER:
      d->st.frames++;
      ev = (cl_mllp_event){CL_MLLP_FRAME, d->buf ? d->buf : (const uint8_t *)"", d->len,
                           d->frame_off};
      d->state = HUNT;
      if (c != CL_MLLP_CR) {
        d->st.missing_cr++;
        rc = cb(ctx, &ev);
        if (consumed)
          *consumed = i;
        continue; /* this byte again, between frames */
      }
      break;
    case DISCARD:
      if (c == CL_MLLP_VT)
        start(d);
      else if (c == CL_MLLP_FS)
        d->state = DISCARD_TRAILER;
      break;
    case DISCARD_TRAILER:
      d->state = HUNT;
      if (c != CL_MLLP_CR)
        continue; /* this byte again, between frames */
      break;
    }
    d->pos++;
    i++;
    if (ev.kind && rc == 0)
      rc = cb(ctx, &ev);
    if (consumed)
      *consumed = i;
  }
  return rc;
}

int cl_mllp_frame(const uint8_t *msg, size_t n, uint8_t **out, size_t *outn, cl_err *err) {
  if (!out || !outn || (!msg && n > 0))
    return cl_err_set(err, CL_EINVAL, "mllp: NULL argument");
  for (size_t i = 0; i < n; i++)
    if (msg[i] == CL_MLLP_VT || msg[i] == CL_MLLP_FS)
      return cl_err_set(err, CL_EINVAL,
                        "mllp: byte %zu of the message is 0x%02X, which MLLP "
                        "cannot frame",
                        i, msg[i]);
  if (n > SIZE_MAX - 3)
    return cl_err_set(err, CL_ENOMEM, "mllp: message too large");
  uint8_t *b = cl_malloc(n + 3);
  if (!b)
    return cl_err_set(err, CL_ENOMEM, "mllp: out of memory");
  b[0] = CL_MLLP_VT;
  if (n)
    memcpy(b + 1, msg, n);
  b[n + 1] = CL_MLLP_FS;
  b[n + 2] = CL_MLLP_CR;
  *out = b;
  *outn = n + 3;
  return 0;
}

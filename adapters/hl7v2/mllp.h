/* MLLP, the Minimal Lower Layer Protocol of HL7 v2 (HL7 v2.x Transport
 * Specification: MLLP Release 2, block format only): each message travels
 * as <VT 0x0B> message <FS 0x1C><CR 0x0D>.
 *
 * The deframer is incremental: bytes are fed in chunks of any size (one
 * byte at a time works) and every complete frame is handed to a callback.
 * Policy for what is not a clean frame:
 * - bytes before a VT (between frames) are skipped and counted (junk);
 * - a VT inside a frame abandons the partial frame (a sender that restarted
 *   mid-message) and starts a new one; counted (abandoned);
 * - FS followed by anything but CR still ends the frame (counted,
 *   missing_cr) and that byte is read as if between frames;
 * - a frame whose content exceeds max_frame is refused: one OVERSIZED event,
 *   then its bytes are dropped until the next VT (the next frame is read
 *   normally) or the end of the oversized frame.
 * Memory: one buffer per deframer, grown up to max_frame.
 *
 * Thread-safety: a deframer is used by one thread at a time; distinct
 * deframers are independent. */
#ifndef CL_ADAPTERS_HL7V2_MLLP_H
#define CL_ADAPTERS_HL7V2_MLLP_H

#include <stddef.h>
#include <stdint.h>

#include "store/err.h"

#define CL_MLLP_VT 0x0B
#define CL_MLLP_FS 0x1C
#define CL_MLLP_CR 0x0D
#define CL_MLLP_DEFAULT_MAX_FRAME (8u * 1024 * 1024)

typedef struct cl_mllp cl_mllp; /* opaque deframer */

enum cl_mllp_kind {
  CL_MLLP_FRAME = 1, /* p, n: the message between VT and FS */
  CL_MLLP_OVERSIZED, /* the frame opened at `offset` exceeded max_frame; p NULL, n = max_frame */
};

typedef struct cl_mllp_event {
  int kind;         /* enum cl_mllp_kind */
  const uint8_t *p; /* view, valid only during the callback */
  size_t n;
  uint64_t offset; /* stream offset of the VT that opened the frame */
} cl_mllp_event;

/* Called for each event in stream order. Return 0 to go on; anything else
 * stops cl_mllp_feed, which returns that value. */
typedef int (*cl_mllp_cb)(void *ctx, const cl_mllp_event *ev);

typedef struct cl_mllp_stats {
  uint64_t frames;     /* FRAME events */
  uint64_t oversized;  /* OVERSIZED events */
  uint64_t junk;       /* bytes skipped outside frames */
  uint64_t abandoned;  /* partial frames cut by a new VT */
  uint64_t missing_cr; /* frames ended by FS without CR */
} cl_mllp_stats;

/* Creates a deframer refusing frames over max_frame bytes (0: the default).
 * *out is returned-owned (cl_mllp_free). Errors: CL_EINVAL, CL_ENOMEM. */
CL_MUST_CHECK int cl_mllp_new(size_t max_frame, cl_mllp **out, cl_err *err);
void cl_mllp_free(cl_mllp *d); /* NULL is a no-op */

/* Feeds p[0..n) (borrowed). Events go to cb(ctx, ...). *consumed (may be
 * NULL) is how many bytes were used: n unless the callback stopped the
 * feed, in which case the rest is to be fed again later.
 * Errors: the callback's nonzero return; CL_EINVAL (NULL d or cb, or NULL p
 * with n > 0); CL_ENOMEM (growing the buffer: the partial frame is dropped
 * and the deframer waits for the next VT, as for an oversized frame). */
CL_MUST_CHECK int cl_mllp_feed(cl_mllp *d, const uint8_t *p, size_t n, cl_mllp_cb cb, void *ctx,
                               size_t *consumed, cl_err *err);

/* Counters since creation (view, valid until cl_mllp_free). */
const cl_mllp_stats *cl_mllp_stats_of(const cl_mllp *d);

/* Nonzero when the deframer is inside a frame (at end of stream: a
 * truncated frame). */
int cl_mllp_pending(const cl_mllp *d);

/* Frames msg (borrowed, n bytes) as VT msg FS CR into *out (returned-owned,
 * cl_free), *outn bytes. Errors: CL_EINVAL (msg holds VT or FS, which would
 * break the framing), CL_ENOMEM. */
CL_MUST_CHECK int cl_mllp_frame(const uint8_t *msg, size_t n, uint8_t **out, size_t *outn,
                                cl_err *err);

#endif

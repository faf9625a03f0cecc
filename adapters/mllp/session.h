/* One MLLP connection's protocol, without the socket: bytes in, framed
 * acknowledgements out, every message through the request layer
 * (adapters/service/service.h). listener.h runs one session per
 * connection; tests and the fuzz target drive a session directly.
 *
 * For each frame, in order (docs/adapters.md, "MLLP listener"):
 *  1. parse (adapters/hl7v2/hl7.h) and map (map.h) with the adapter's
 *     principal (the principal the signing key is registered to);
 *  2. admit the call (method M_MLLP_MESSAGE, transport "mllp"; the
 *     authorize and audit hooks and the policy run as for any call). The
 *     caller is the sending system when its TLS client certificate is
 *     known (cl_mllp_session_set_cert: auth CL_AUTH_MTLS, the request
 *     layer finds the principal the certificate is bound to), else the
 *     adapter itself (auth CL_AUTH_KEY: it acts as its key's principal);
 *  3. sign the events as one batch with the adapter's key and append it
 *     through the service's writer (forwarded to the leader on a follower),
 *     waiting for the commit;
 *  4. record the call in the audit trail, then hand out the ACK:
 *     AA once committed (a resend of a committed message: committed
 *     already, nothing written, AA again); AR for what is wrong with the
 *     message itself (MSH, unsupported type or trigger, policy refusal);
 *     AE for a refused segment or field and for failures worth retrying
 *     (the store unavailable, a timeout, the audit trail). Every AE/AR
 *     carries an ERR naming segment, field, position, code and reason.
 * The ACK's MSH-10 is derived from the message's sender and control id,
 * so a resend gets the same ACK (but for MSH-7, the time).
 *
 * A frame over max_frame bytes is answered with AR (code 207, naming the
 * frame's offset and the limit) and the session asks to close: the rest
 * of an oversized frame is not worth reading.
 *
 * Logs (stderr, one line per refusal) name the peer, the control id,
 * the code and the position, never a value from the message.
 *
 * Memory: the deframer's buffer (up to max_frame) plus one message's
 * parse tree, mapping and ACK at a time, freed before the next frame.
 *
 * Thread-safety: a session is used by one thread at a time; sessions are
 * independent and share only the (thread-safe) service. */
#ifndef CL_ADAPTERS_MLLP_SESSION_H
#define CL_ADAPTERS_MLLP_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "adapters/service/service.h"
#include "store/err.h"
#include "store/keys.h"

#define CL_MLLP_LISTEN_DEFAULT_MAX_FRAME (1u * 1024 * 1024)
#define CL_MLLP_DEFAULT_COMMIT_MS 30000

/* What every session of a listener shares; all borrowed, outliving them. */
typedef struct cl_mllp_conf {
  cl_svc *svc;             /* the request layer */
  const cl_signer *signer; /* the adapter's key (registered, role integration) */
  size_t max_frame;        /* 0: CL_MLLP_LISTEN_DEFAULT_MAX_FRAME */
  int default_offset_min;  /* as cl_hl7_map_opts */
  int commit_ms;           /* deadline of one append; 0: CL_MLLP_DEFAULT_COMMIT_MS */
} cl_mllp_conf;

/* Outcome counters of one session. */
typedef struct cl_mllp_counts {
  uint64_t messages, accepted, duplicates, rejected, errors, oversized;
} cl_mllp_counts;

typedef struct cl_mllp_session cl_mllp_session;

/* A session for the caller at `peer` (copied; "host:port"). *out
 * returned-owned (cl_mllp_session_free). Errors: CL_EINVAL, CL_ENOMEM. */
CL_MUST_CHECK int cl_mllp_session_new(const cl_mllp_conf *c, const char *peer,
                                      cl_mllp_session **out, cl_err *err);
void cl_mllp_session_free(cl_mllp_session *s); /* NULL is a no-op */

/* The fingerprint (SHA-256 hex, borrowed, copied) of the client
 * certificate the peer's TLS connection presented: its messages are then
 * admitted as that certificate's principal. */
void cl_mllp_session_set_cert(cl_mllp_session *s, const char *fingerprint);

/* Sends one framed ACK (p borrowed, n bytes) to the peer: 0, or nonzero if
 * it could not be sent (the session then stops). */
typedef int (*cl_mllp_send_fn)(void *ctx, const uint8_t *p, size_t n);

/* Feeds bytes read from the peer (borrowed). Each complete frame is
 * handled as above and its ACK sent before the next frame is read.
 * Returns 0 to go on reading, 1 when the connection must close (an
 * oversized frame was refused, or an ACK could not be sent), or a
 * negative CL_E* (out of memory) with err set: close too. */
int cl_mllp_session_feed(cl_mllp_session *s, const uint8_t *p, size_t n, cl_mllp_send_fn send,
                         void *ctx, cl_err *err);

/* Nonzero while a frame is partly read. */
int cl_mllp_session_pending(const cl_mllp_session *s);

/* Counters since creation (view, valid until cl_mllp_session_free). */
const cl_mllp_counts *cl_mllp_session_counts(const cl_mllp_session *s);

#endif

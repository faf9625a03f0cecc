/* HL7 v2 acknowledgements (original mode, chapter 2.9.2): the ACK a
 * receiver returns for one message, built from the parsed message (or from
 * whatever of its MSH can be salvaged) and an error, if any.
 *
 * The ACK (segments end with CR, the last one too):
 *   MSH  the message's own encoding characters; MSH-3/4 = the message's
 *        MSH-5/6 and MSH-5/6 = its MSH-3/4 (echoed as sent, all components);
 *        MSH-7 the caller's timestamp; MSH-9 ACK^<trigger>^ACK (ACK^<trigger>
 *        for v2.3, which has no message structure component); MSH-10 the
 *        caller's control id; MSH-11 echoed (P if missing); MSH-12 the
 *        message's version if supported, else the caller's default; MSH-18
 *        echoed when the message named a supported character set (the ACK
 *        is in that character set: echoed values are the bytes as sent).
 *   MSA  MSA-1 AA, AE or AR; MSA-2 the message's MSH-10 as sent; for v2.3
 *        and v2.4 with an error, MSA-3 the reason text.
 *   ERR  only with an error. v2.5 and later: ERR-2 location (segment id ^
 *        sequence ^ field ^ repetition ^ component ^ subcomponent, zeros
 *        left empty), ERR-3 code^text^HL70357 (table 0357), ERR-4 E, ERR-8
 *        the reason. v2.3/v2.4: ERR-1 (ELD) segment ^ sequence ^ field ^
 *        code&text&HL70357.
 * Every value the builder writes is escaped with the message's encoding
 * characters (\F\ \S\ \T\ \R\ \E\, \P\ for the truncation character; CR,
 * LF and other control characters as \Xhh\).
 *
 * Acknowledgement code when the caller does not choose one: AA without an
 * error (or with code 0); AR when the error is about MSH itself (segment 1)
 * or its code is 200 or above (unsupported type, event, processing id,
 * version) or the MSH could not be salvaged; AE otherwise.
 *
 * Thread-safety: no shared state; safe to call concurrently. */
#ifndef CL_ADAPTERS_HL7V2_ACK_H
#define CL_ADAPTERS_HL7V2_ACK_H

#include <stddef.h>
#include <stdint.h>

#include "adapters/hl7v2/hl7.h"
#include "store/err.h"

typedef struct cl_hl7_ack_params {
  const char *control_id;      /* MSH-10 of the ACK; required, borrowed */
  const char *timestamp;       /* MSH-7 (e.g. "20261205013500+0000"); NULL: now, UTC */
  const char *ack_code;        /* "AA", "AE" or "AR"; NULL: as above */
  const char *default_version; /* when the message's is unknown; NULL: "2.5.1" */
} cl_hl7_ack_params;

/* Builds the ACK for `m` (borrowed, parsed) with error `e` (borrowed; NULL
 * to accept). On success *out is returned-owned (cl_free from
 * store/alloc.h), NUL-terminated, *n its length without the NUL.
 * Errors: CL_EINVAL (NULL m, out or n, missing control id, an ack_code other
 * than AA/AE/AR); CL_ENOMEM. On error *out is untouched. */
CL_MUST_CHECK int cl_hl7_ack(const cl_hl7_msg *m, const cl_hl7_error *e,
                             const cl_hl7_ack_params *ap, char **out, size_t *n, cl_err *err);

/* Builds the ACK for raw input that cl_hl7_parse refused with `e`
 * (borrowed, required): its MSH is salvaged with cl_hl7_parse_msh; if even
 * that fails, the ACK is AR with defaults (|^~\& encoding characters, empty
 * applications and MSA-2, the default version). `p` (borrowed, n bytes) may
 * be anything. Ownership and errors as cl_hl7_ack. */
CL_MUST_CHECK int cl_hl7_ack_raw(const uint8_t *p, size_t n, const cl_hl7_error *e,
                                 const cl_hl7_ack_params *ap, char **out, size_t *outn,
                                 cl_err *err);

#endif

/* C2SP signed-note checkpoints (https://c2sp.org/tlog-checkpoint,
 * https://c2sp.org/signed-note): the signed tree heads clinlog publishes.
 *
 * On-the-wire format (UTF-8; every line ends in '\n'):
 *
 *   | line            | content                                             |
 *   |-----------------|-----------------------------------------------------|
 *   | 1               | origin: 1..255 bytes, no control characters         |
 *   | 2               | tree size, decimal, no sign, no leading zeros       |
 *   | 3               | root hash, standard base64 (with '=') of 32 bytes   |
 *   | 4.. (optional)  | extension lines, non-empty, ignored here            |
 *   | blank           | "\n" ends the note text                             |
 *   | signatures      | 1..100 lines "— <name> <base64(hash4 || sig)>"      |
 *
 * "—" is U+2014 EM DASH (e2 80 94), followed by one space. The note text is
 * every byte up to and including the '\n' that ends the last text line (not
 * the blank line); text longer than 64 KiB is refused. hash4 is the key
 * hash: the first 4 bytes of SHA-256(name || "\n" || 0x01 || Ed25519 public
 * key). sig is the Ed25519 signature of the note text. A key name is
 * non-empty UTF-8 with no whitespace and no '+'. The whole note must be
 * valid UTF-8 with no ASCII control characters other than '\n'. Base64 must
 * be canonical (padding present, unused bits zero).
 *
 * Verification follows golang.org/x/mod/sumdb/note: lines by other keys are
 * skipped (any well-formed signature of >= 5 bytes); of several lines by the
 * verifying key only the first is checked, and it must be valid.
 *
 * Thread-safety: all functions are reentrant; they may call sodium_init(),
 * which is itself thread-safe. */
#ifndef CL_STORE_CHECKPOINT_H
#define CL_STORE_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "store/err.h"

#define CL_CHECKPOINT_MAX_TEXT 65536 /* bytes of note text */
#define CL_CHECKPOINT_MAX_SIGS 100   /* signature lines */

/* The content of a checkpoint. Plain value. */
typedef struct cl_checkpoint {
  char origin[256]; /* log identity, NUL-terminated, 1..255 bytes */
  uint64_t size;    /* tree size */
  uint8_t root[32]; /* RFC 9162 root hash of the first `size` leaves */
} cl_checkpoint;

/* Formats *cp (borrowed) as a note signed by key `key_name` (borrowed,
 * NUL-terminated) with `sk` (borrowed), a 64-byte libsodium Ed25519 secret
 * key (seed || public key); sk is not copied. On success *out is
 * returned-owned (free() it), NUL-terminated, and *out_len excludes the NUL.
 * Errors: CL_EINVAL (origin empty, unterminated within 256 bytes, not UTF-8
 * or holding control characters; key name invalid), CL_ENOMEM, CL_ECRYPTO
 * (libsodium failed). On error *out and *out_len are untouched. */
int cl_checkpoint_sign(const cl_checkpoint *cp, const char *key_name, const uint8_t sk[64],
                       char **out, size_t *out_len, cl_err *err);

/* Parses the signed note note[0..len) (borrowed, untrusted; need not be
 * NUL-terminated) and checks that it carries a valid signature by the
 * Ed25519 key (key_name, pk) (both borrowed). Lines by other keys are
 * ignored. On success fills *out. Errors: CL_EINVAL (key_name invalid),
 * CL_EMALFORMED (any format violation, including oversize text and too many
 * signature lines; the message names the line), CL_EBADSIG (the first line
 * by this key does not verify), CL_EUNKNOWNKEY (no line by this key),
 * CL_ECRYPTO (libsodium failed). On error *out is unchanged. */
CL_MUST_CHECK int cl_checkpoint_verify(const char *note, size_t len, const char *key_name,
                                       const uint8_t pk[32], cl_checkpoint *out, cl_err *err);

/* Parses without verifying any signature, for display; the note must still
 * be fully well-formed, signature lines included. Errors: CL_EMALFORMED.
 * On error *out is unchanged. Never trust the result for anything but
 * display. */
int cl_checkpoint_parse(const char *note, size_t len, cl_checkpoint *out, cl_err *err);

#endif

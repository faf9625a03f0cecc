/* C2SP signed-note checkpoints; format table in checkpoint.h.
 *
 * Invariants this file keeps:
 * - Parsing is one bounded pass over borrowed bytes: no allocation, no
 *   reads outside note[0..len), no reliance on a terminating NUL.
 * - Every rule is checked before any result is written; callers' outputs
 *   change only on success.
 * - Only the first signature line by the verifying key is checked; lines by
 *   other keys are validated for syntax only (as golang.org/x/mod/sumdb/note
 *   does).
 * - Secret keys are borrowed and never copied. */
#include "store/checkpoint.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/alloc.h"
#include "store/sha256.h"

#define SIG_PREFIX "\xe2\x80\x94 " /* U+2014 EM DASH, space */
#define SIG_PREFIX_LEN 4
#define KEY_HASH_LEN 4
#define ED25519_ALG 0x01 /* signed-note signature type for Ed25519 */
#define ROOT_B64_LEN 44  /* standard base64 of 32 bytes */

/* ---- character rules ----------------------------------------------------- */

/* Decodes one UTF-8 sequence at p[0..n); returns its length and the code
 * point, or 0 if it is malformed (overlong, surrogate, beyond U+10FFFF,
 * truncated). */
static size_t utf8_next(const uint8_t *p, size_t n, uint32_t *cp) {
  uint8_t b = p[0];
  if (b < 0x80) {
    *cp = b;
    return 1;
  }
  size_t len;
  uint8_t lo = 0x80, hi = 0xbf;
  if (b >= 0xc2 && b <= 0xdf) {
    len = 2;
    *cp = b & 0x1f;
  } else if (b >= 0xe0 && b <= 0xef) {
    len = 3;
    *cp = b & 0x0f;
    if (b == 0xe0)
      lo = 0xa0; /* overlong */
    if (b == 0xed)
      hi = 0x9f; /* surrogates */
  } else if (b >= 0xf0 && b <= 0xf4) {
    len = 4;
    *cp = b & 0x07;
    if (b == 0xf0)
      lo = 0x90; /* overlong */
    if (b == 0xf4)
      hi = 0x8f; /* beyond U+10FFFF */
  } else {
    return 0;
  }
  if (n < len)
    return 0;
  for (size_t i = 1; i < len; i++) {
    uint8_t c = p[i];
    if (c < (i == 1 ? lo : 0x80) || c > (i == 1 ? hi : 0xbf))
      return 0;
    *cp = *cp << 6 | (c & 0x3f);
  }
  return len;
}

/* Unicode White_Space, as Go's unicode.IsSpace sees it. */
static bool is_space(uint32_t c) {
  return c == ' ' || (c >= 0x09 && c <= 0x0d) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
         c == 0x205f || c == 0x3000;
}

/* Valid UTF-8 without control characters (newline allowed iff allow_nl).
 * Returns the offset of the first bad byte, or n if all are fine. */
static size_t first_bad_char(const uint8_t *p, size_t n, bool allow_nl) {
  size_t i = 0;
  while (i < n) {
    uint32_t c;
    size_t l = utf8_next(p + i, n - i, &c);
    if (l == 0 || (c < 0x20 && !(allow_nl && c == '\n')))
      return i;
    i += l;
  }
  return n;
}

/* Key name rule: non-empty UTF-8, no whitespace, no '+', no controls. */
static bool valid_name(const uint8_t *p, size_t n) {
  if (n == 0)
    return false;
  size_t i = 0;
  while (i < n) {
    uint32_t c;
    size_t l = utf8_next(p + i, n - i, &c);
    if (l == 0 || c < 0x20 || c == '+' || is_space(c))
      return false;
    i += l;
  }
  return true;
}

/* ---- encodings ----------------------------------------------------------- */

static int b64val(unsigned char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

/* Strict standard base64: length a multiple of 4, '=' padding only at the
 * end, unused bits zero (so every byte string has exactly one accepted
 * encoding). Stores the first `cap` decoded bytes in out and the full
 * decoded length in *n. Returns 0, or -1 if s is not such an encoding. */
static int b64_decode(const char *s, size_t len, uint8_t *out, size_t cap, size_t *n) {
  if (len == 0 || len % 4 != 0)
    return -1;
  size_t o = 0;
  for (size_t i = 0; i < len; i += 4) {
    int v[4], pad = 0;
    for (size_t j = 0; j < 4; j++) {
      unsigned char c = (unsigned char)s[i + j];
      if (c == '=') {
        if (i + 4 != len || j < 2)
          return -1;
        v[j] = 0;
        pad++;
      } else {
        if (pad)
          return -1; /* data after padding */
        v[j] = b64val(c);
        if (v[j] < 0)
          return -1;
      }
    }
    if ((pad == 1 && (v[2] & 0x03)) || (pad == 2 && (v[1] & 0x0f)))
      return -1; /* non-zero unused bits */
    uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
    uint8_t bytes[3] = {(uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w};
    for (int j = 0; j < 3 - pad; j++, o++)
      if (o < cap)
        out[o] = bytes[j];
  }
  *n = o;
  return 0;
}

/* Strict decimal uint64: digits only, no leading zero unless "0", no
 * overflow. */
static int parse_u64(const char *p, size_t n, uint64_t *out) {
  if (n == 0 || (n > 1 && p[0] == '0'))
    return -1;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9')
      return -1;
    unsigned d = (unsigned)(p[i] - '0');
    if (v > (UINT64_MAX - d) / 10)
      return -1;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

/* First 4 bytes of SHA-256(name || "\n" || 0x01 || pk). */
static void key_hash(const char *name, size_t name_len, const uint8_t pk[32],
                     uint8_t out[KEY_HASH_LEN]) {
  static const uint8_t sep[2] = {'\n', ED25519_ALG};
  uint8_t h[CL_SHA256_BYTES];
  cl_sha256_state st;
  cl_sha256_init(&st);
  cl_sha256_update(&st, (const uint8_t *)name, name_len);
  cl_sha256_update(&st, sep, sizeof sep);
  cl_sha256_update(&st, pk, 32);
  cl_sha256_final(&st, h);
  memcpy(out, h, KEY_HASH_LEN);
}

/* ---- parsing ------------------------------------------------------------- */

/* The key a verify call is looking for, and what was found. */
typedef struct want_key {
  const char *name;           /* borrowed */
  size_t name_len;            /* strlen(name) */
  const uint8_t *pk;          /* borrowed, 32 bytes */
  uint8_t hash[KEY_HASH_LEN]; /* key_hash(name, pk) */
  bool seen;                  /* a line by this key was found */
  bool valid;                 /* the first such line verified */
  unsigned line;              /* that line's number */
} want_key;

static int malformed(cl_err *err, unsigned line, const char *what) {
  return cl_err_set(err, CL_EMALFORMED, "checkpoint: line %u: %s", line, what);
}

/* Checks one signature line (without its '\n') and, if `want` is set and the
 * line is the first by that key, verifies its signature over text. */
static int parse_sig_line(const char *p, size_t n, unsigned line, const char *text,
                          size_t text_len, want_key *want, cl_err *err) {
  if (n < SIG_PREFIX_LEN || memcmp(p, SIG_PREFIX, SIG_PREFIX_LEN) != 0)
    return malformed(err, line, "signature line does not start with \"\xe2\x80\x94 \"");
  p += SIG_PREFIX_LEN;
  n -= SIG_PREFIX_LEN;
  const char *sp = memchr(p, ' ', n);
  if (!sp)
    return malformed(err, line, "signature line has no space after the key name");
  size_t name_len = (size_t)(sp - p);
  if (!valid_name((const uint8_t *)p, name_len))
    return malformed(err, line, "invalid key name (empty, whitespace or '+')");
  const char *b64 = sp + 1;
  size_t b64_len = n - name_len - 1;
  uint8_t sig[KEY_HASH_LEN + crypto_sign_ed25519_BYTES];
  size_t sig_len;
  if (b64_decode(b64, b64_len, sig, sizeof sig, &sig_len) != 0)
    return malformed(err, line, "signature is not canonical standard base64");
  if (sig_len < KEY_HASH_LEN + 1)
    return malformed(err, line, "signature shorter than 5 bytes");
  if (!want || want->seen || name_len != want->name_len ||
      memcmp(p, want->name, name_len) != 0 || memcmp(sig, want->hash, KEY_HASH_LEN) != 0)
    return 0;
  want->seen = true;
  want->line = line;
  want->valid = sig_len == sizeof sig &&
                crypto_sign_ed25519_verify_detached(sig + KEY_HASH_LEN, (const uint8_t *)text,
                                                    text_len, want->pk) == 0;
  return 0;
}

/* Parses and checks the whole note; fills *out only on success. With
 * `want`, also records whether its key signed the text validly. */
static int parse_note(const char *note, size_t len, want_key *want, cl_checkpoint *out,
                      cl_err *err) {
  if (!note && len > 0)
    return cl_err_set(err, CL_EINVAL, "checkpoint: NULL note");
  if (len == 0)
    return cl_err_set(err, CL_EMALFORMED, "checkpoint: empty note");
  if (note[len - 1] != '\n')
    return cl_err_set(err, CL_EMALFORMED, "checkpoint: note does not end with a newline");

  /* Character rules over the whole note, before anything else looks at it. */
  size_t bad = first_bad_char((const uint8_t *)note, len, true);
  if (bad < len) {
    unsigned line = 1;
    for (size_t i = 0; i < bad; i++)
      line += note[i] == '\n';
    return malformed(err, line, "invalid UTF-8 or a control character");
  }

  /* The text ends at the first blank line; checkpoint text has none. */
  size_t text_len = 0;
  for (size_t i = 0; i + 1 < len; i++) {
    if (note[i] == '\n' && note[i + 1] == '\n') {
      text_len = i + 1;
      break;
    }
  }
  if (note[0] == '\n')
    return malformed(err, 1, "empty origin");
  if (text_len == 0)
    return cl_err_set(err, CL_EMALFORMED,
                      "checkpoint: no blank line between the text and the signatures");
  if (text_len > CL_CHECKPOINT_MAX_TEXT)
    return cl_err_set(err, CL_EMALFORMED, "checkpoint: note text is %zu bytes, over %d",
                      text_len, CL_CHECKPOINT_MAX_TEXT);

  /* Text lines: origin, size, root, then extension lines (not empty, as the
   * blank line search guarantees). */
  cl_checkpoint cp;
  memset(&cp, 0, sizeof cp);
  unsigned line = 0;
  const char *p = note, *text_end = note + text_len;
  while (p < text_end) {
    const char *nl = memchr(p, '\n', (size_t)(text_end - p));
    size_t n = (size_t)(nl - p);
    line++;
    if (line == 1) {
      if (n >= sizeof cp.origin)
        return malformed(err, line, "origin longer than 255 bytes");
      memcpy(cp.origin, p, n);
    } else if (line == 2) {
      if (parse_u64(p, n, &cp.size) != 0)
        return malformed(err, line, "tree size is not a canonical decimal uint64");
    } else if (line == 3) {
      size_t got;
      if (n != ROOT_B64_LEN || b64_decode(p, n, cp.root, sizeof cp.root, &got) != 0 ||
          got != sizeof cp.root)
        return malformed(err, line, "root hash is not base64 of exactly 32 bytes");
    }
    p = nl + 1;
  }
  if (line < 3)
    return malformed(err, line + 1, "missing tree size or root hash line");

  /* Signature lines after the blank one. */
  line++; /* the blank line */
  p = text_end + 1;
  const char *end = note + len;
  if (p == end)
    return malformed(err, line + 1, "no signature lines");
  unsigned nsigs = 0;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p)); /* note ends in '\n' */
    line++;
    if (++nsigs > CL_CHECKPOINT_MAX_SIGS)
      return malformed(err, line, "more than 100 signature lines");
    int rc = parse_sig_line(p, (size_t)(nl - p), line, note, text_len, want, err);
    if (rc < 0)
      return rc;
    p = nl + 1;
  }
  *out = cp;
  return 0;
}

/* ---- public API ---------------------------------------------------------- */

int cl_checkpoint_parse(const char *note, size_t len, cl_checkpoint *out, cl_err *err) {
  return parse_note(note, len, NULL, out, err);
}

int cl_checkpoint_verify(const char *note, size_t len, const char *key_name,
                         const uint8_t pk[32], cl_checkpoint *out, cl_err *err) {
  if (!key_name || !pk || !valid_name((const uint8_t *)key_name, strlen(key_name)))
    return cl_err_set(err, CL_EINVAL, "checkpoint: invalid verifying key name");
  if (sodium_init() < 0)
    return cl_err_set(err, CL_ECRYPTO, "checkpoint: libsodium failed to initialise");
  want_key want = {.name = key_name, .name_len = strlen(key_name), .pk = pk};
  key_hash(want.name, want.name_len, pk, want.hash);
  cl_checkpoint cp;
  int rc = parse_note(note, len, &want, &cp, err);
  if (rc < 0)
    return rc;
  if (!want.seen)
    return cl_err_set(err, CL_EUNKNOWNKEY,
                      "checkpoint: no signature by key \"%s\" (hash %02x%02x%02x%02x)", key_name,
                      want.hash[0], want.hash[1], want.hash[2], want.hash[3]);
  if (!want.valid)
    return cl_err_set(err, CL_EBADSIG, "checkpoint: line %u: signature by key \"%s\" is invalid",
                      want.line, key_name);
  *out = cp;
  return 0;
}

int cl_checkpoint_sign(const cl_checkpoint *cp, const char *key_name, const uint8_t sk[64],
                       char **out, size_t *out_len, cl_err *err) {
  size_t olen = strnlen(cp->origin, sizeof cp->origin);
  if (olen == 0 || olen == sizeof cp->origin)
    return cl_err_set(err, CL_EINVAL, "checkpoint: origin empty or not NUL-terminated");
  if (first_bad_char((const uint8_t *)cp->origin, olen, false) != olen)
    return cl_err_set(err, CL_EINVAL,
                      "checkpoint: origin is not UTF-8 or holds a control character");
  size_t name_len = key_name ? strlen(key_name) : 0;
  if (!valid_name((const uint8_t *)key_name, name_len))
    return cl_err_set(err, CL_EINVAL, "checkpoint: invalid key name");
  if (sodium_init() < 0)
    return cl_err_set(err, CL_ECRYPTO, "checkpoint: libsodium failed to initialise");

  char root_b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
  sodium_bin2base64(root_b64, sizeof root_b64, cp->root, sizeof cp->root,
                    sodium_base64_VARIANT_ORIGINAL);
  /* origin <= 255, size <= 20 digits, root 44: the text fits easily. */
  char text[256 + 1 + 20 + 1 + ROOT_B64_LEN + 1 + 1];
  int tl = snprintf(text, sizeof text, "%s\n%" PRIu64 "\n%s\n", cp->origin, cp->size, root_b64);
  if (tl < 0 || (size_t)tl >= sizeof text)
    return cl_err_set(err, CL_EINVAL, "checkpoint: text does not fit"); /* cannot happen */
  size_t text_len = (size_t)tl;

  uint8_t pk[32], sig[KEY_HASH_LEN + crypto_sign_ed25519_BYTES];
  crypto_sign_ed25519_sk_to_pk(pk, sk);
  key_hash(key_name, name_len, pk, sig);
  if (crypto_sign_ed25519_detached(sig + KEY_HASH_LEN, NULL, (const uint8_t *)text, text_len,
                                   sk) != 0)
    return cl_err_set(err, CL_ECRYPTO, "checkpoint: Ed25519 signing failed");
  char sig_b64[sodium_base64_ENCODED_LEN(sizeof sig, sodium_base64_VARIANT_ORIGINAL)];
  sodium_bin2base64(sig_b64, sizeof sig_b64, sig, sizeof sig, sodium_base64_VARIANT_ORIGINAL);
  size_t sig_b64_len = strlen(sig_b64);

  /* text "\n" "— " name " " b64 "\n" NUL */
  if (name_len > SIZE_MAX - text_len - SIG_PREFIX_LEN - sig_b64_len - 4)
    return cl_err_set(err, CL_EINVAL, "checkpoint: key name too long");
  size_t total = text_len + 1 + SIG_PREFIX_LEN + name_len + 1 + sig_b64_len + 1;
  char *buf = cl_malloc(total + 1);
  if (!buf)
    return cl_err_set(err, CL_ENOMEM, "checkpoint: out of memory for %zu bytes", total + 1);
  char *w = buf;
  memcpy(w, text, text_len);
  w += text_len;
  *w++ = '\n';
  memcpy(w, SIG_PREFIX, SIG_PREFIX_LEN);
  w += SIG_PREFIX_LEN;
  memcpy(w, key_name, name_len);
  w += name_len;
  *w++ = ' ';
  memcpy(w, sig_b64, sig_b64_len);
  w += sig_b64_len;
  *w++ = '\n';
  *w = '\0';
  *out = buf;
  *out_len = total;
  return 0;
}

/* Derived event ids (idhash.h). */
#include "store/idhash.h"

#include <string.h>

void cl_idhash_init(cl_idhash *h) { crypto_generichash_init(h, NULL, 0, 16); }

void cl_idhash_bytes(cl_idhash *h, const void *p, size_t n) {
  if (n)
    crypto_generichash_update(h, (const uint8_t *)p, n);
}

void cl_idhash_u32(cl_idhash *h, uint32_t v) {
  uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
  crypto_generichash_update(h, b, 4);
}

void cl_idhash_str(cl_idhash *h, const char *s) {
  size_t n = s ? strlen(s) : 0;
  cl_idhash_u32(h, (uint32_t)n);
  cl_idhash_bytes(h, s, n);
}

void cl_idhash_final(cl_idhash *h, uint8_t out[16]) {
  crypto_generichash_final(h, out, 16);
  out[6] = (uint8_t)((out[6] & 0x0f) | 0x80); /* RFC 9562 version 8 (custom) */
  out[8] = (uint8_t)((out[8] & 0x3f) | 0x80); /* variant 10 */
}

/* The checks of outside bytes in store/event.c: cl_utf8_valid (its ASCII
 * fast path, eight bytes at a time, against a byte-at-a-time model of
 * RFC 3629) and cl_wire_check_strings (the path of the field at fault). */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/event.h"
#include "tests/support/testutil.h"

/* RFC 3629, one byte at a time: the model. */
static int model_utf8(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n;) {
    uint8_t c = p[i];
    size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || i + len > n)
      return 0;
    uint32_t cp = len == 1 ? c : c & (0x7F >> len);
    for (size_t k = 1; k < len; k++) {
      if ((p[i + k] & 0xC0) != 0x80)
        return 0;
      cp = cp << 6 | (p[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return 0;
    i += len;
  }
  return 1;
}

Test(event_check, utf8_agrees_with_the_model_at_every_offset) {
  static const char *const pieces[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xc3",
                                       "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff",
                                       "\x80", "\xe2\x82"};
  uint8_t buf[64];
  int valid = 0, invalid = 0;
  for (size_t pi = 0; pi < sizeof pieces / sizeof pieces[0]; pi++)
    for (size_t before = 0; before < 20; before++)
      for (size_t after = 0; after < 12; after++) {
        size_t pl = strlen(pieces[pi]), n = before + pl + after;
        memset(buf, 'a', n);
        memcpy(buf + before, pieces[pi], pl);
        int want = model_utf8(buf, n), got = cl_utf8_valid(buf, n);
        cr_assert_eq(got, want, "piece %zu at offset %zu of %zu bytes", pi, before, n);
        want ? valid++ : invalid++;
      }
  cr_assert_gt(valid, 0);
  cr_assert_gt(invalid, 0);
  unsigned seed = 7;
  for (int r = 0; r < 200000; r++) { /* random bytes, mostly ASCII */
    size_t n = (size_t)(rand_r(&seed) % 40);
    for (size_t i = 0; i < n; i++)
      buf[i] = rand_r(&seed) % 8 ? (uint8_t)(rand_r(&seed) % 0x80) : (uint8_t)rand_r(&seed);
    cr_assert_eq(cl_utf8_valid(buf, n), model_utf8(buf, n), "round %d", r);
  }
}

Test(event_check, a_bad_string_is_named_by_its_path) {
  size_t len;
  uint8_t *ev = cl_test_event("patient-1", "admin", "a long note, well past eight bytes: caf\xc3",
                              NULL, &len);
  cl_err err;
  cr_assert_eq(cl_wire_check_strings(&clinlog__v1__event__descriptor, ev, len, &err),
               CL_EMALFORMED);
  cr_assert(strstr(err.msg, "observation_recorded.note: invalid UTF-8"), "%s", err.msg);
  free(ev);
  ev = cl_test_event("patient-1", "adminXevil", NULL, NULL, &len);
  uint8_t *x = memmem(ev, len, "adminXevil", 10);
  x[5] = 0;
  cr_assert_eq(cl_wire_check_strings(&clinlog__v1__event__descriptor, ev, len, &err),
               CL_EMALFORMED);
  cr_assert(strstr(err.msg, "recorded_by.principal_id: contains a NUL byte"), "%s", err.msg);
  free(ev);
  ev = cl_test_event("patient-1", "admin", "fine", NULL, &len);
  cr_assert_eq(cl_wire_check_strings(&clinlog__v1__event__descriptor, ev, len, &err), 0, "%s",
               err.msg);
  cr_assert_eq(cl_wire_check_strings(&clinlog__v1__event__descriptor, ev, len - 1, &err),
               CL_EMALFORMED, "truncated");
  free(ev);
}

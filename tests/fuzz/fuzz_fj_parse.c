/* libFuzzer target for the fast JSON parser (query/fhir/fj_parse.h):
 * arbitrary bytes parsed by fj_parse and by jansson's json_loadb, with
 * flags 0, JSON_REJECT_DUPLICATES and JSON_DECODE_ANY. Both accept or both
 * refuse, and what both accept is the same tree (json_equal, and the same
 * text with the keys in their order); a refusal names a position within
 * the input. The one known difference is allowed: a NUL byte outside a
 * string, which jansson skips after a number and fj_parse refuses. Any
 * other difference aborts (fuzz_finding). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "query/fhir/fj_parse.h"
#include "tests/fuzz/common/fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const who = "fuzz_fj_parse";

static void compare(const char *p, size_t n, size_t flags) {
  json_error_t e1, e2;
  json_t *a = fj_parse(p, n, flags, &e1), *b = json_loadb(p, n, flags, &e2);
  if (a == NULL && (e1.position < 0 || (size_t)e1.position > n || e1.text[0] == '\0'))
    fuzz_finding(who, "flags %zu: a refusal at %d of %zu bytes, \"%s\"", flags, e1.position, n,
                 e1.text);
  if (a == NULL && b != NULL && (size_t)e1.position < n && p[e1.position] == '\0') {
    json_decref(b);
    return;
  }
  if ((a == NULL) != (b == NULL))
    fuzz_finding(who, "flags %zu: fj_parse %s (%s), jansson %s (%s)", flags,
                 a ? "accepts" : "refuses", a ? "" : e1.text, b ? "accepts" : "refuses",
                 b ? "" : e2.text);
  if (a != NULL) {
    if (!json_equal(a, b))
      fuzz_finding(who, "flags %zu: another tree", flags);
    size_t f = JSON_ENCODE_ANY | JSON_COMPACT | JSON_PRESERVE_ORDER;
    char *da = json_dumps(a, f), *db = json_dumps(b, f);
    if (da == NULL || db == NULL || strcmp(da, db) != 0)
      fuzz_finding(who, "flags %zu: another order or type", flags);
    free(da);
    free(db);
  }
  json_decref(a);
  json_decref(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const size_t flags[] = {0, JSON_REJECT_DUPLICATES, JSON_DECODE_ANY};
  for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
    compare((const char *)data, size, flags[i]);
  return 0;
}

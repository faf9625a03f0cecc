/* Tests for store/hmap.c against a plain array as the model: random puts,
 * upserts, overwrites and deletions (backward-shift) across many growths. */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>

#include "store/hmap.h"

#define KEYS 20000

Test(hmap, matches_a_model_under_random_put_and_delete) {
  cr_assert_geq(sodium_init(), 0);
  cl_hmap *m = cl_hmap_new(8, 8);
  static uint8_t present[KEYS];
  static uint64_t value[KEYS];
  unsigned seed = 1;
  for (int r = 0; r < 300000; r++) {
    uint64_t k = (uint64_t)(rand_r(&seed) % KEYS);
    int op = rand_r(&seed) % 6;
    if (op < 2) {
      cr_assert_eq(cl_hmap_del(m, &k), present[k], "delete of %llu at step %d",
                   (unsigned long long)k, r);
      present[k] = 0;
    } else if (op == 2) { /* upsert: the value there, or a zeroed new one */
      int existed;
      uint64_t *v = cl_hmap_upsert(m, &k, &existed);
      cr_assert_not_null(v);
      cr_assert_eq(existed, present[k], "upsert of %llu at step %d", (unsigned long long)k, r);
      cr_assert_eq(*v, present[k] ? value[k] : 0);
      *v = (uint64_t)r;
      present[k] = 1;
      value[k] = (uint64_t)r;
    } else {
      uint64_t v = (uint64_t)r;
      cr_assert_not_null(cl_hmap_put(m, &k, &v));
      present[k] = 1;
      value[k] = v;
    }
    if (r % 30000 == 0 || r == 299999) {
      size_t count = 0;
      for (uint64_t i = 0; i < KEYS; i++) {
        uint64_t *g = cl_hmap_get(m, &i);
        cr_assert_eq(g != NULL, present[i], "key %llu at step %d", (unsigned long long)i, r);
        if (g)
          cr_assert_eq(*g, value[i]);
        count += present[i];
      }
      cr_assert_eq(cl_hmap_count(m), count);
    }
  }
  /* iteration visits exactly the members */
  size_t pos = 0, seen = 0;
  const void *k;
  void *v;
  while (cl_hmap_next(m, &pos, &k, &v)) {
    cr_assert(present[*(const uint64_t *)k]);
    seen++;
  }
  cr_assert_eq(seen, cl_hmap_count(m));
  cl_hmap_free(m);
}

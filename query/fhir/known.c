/* A growing blocked Bloom filter (known.h).
 *
 * A stage is an array of 64-byte blocks; a key sets six bits of one block
 * (one cache line per lookup and stage). A stage takes the keys it is
 * sized for at 12 bits a key (about 0.4 % false positives), then a stage
 * twice as big is started in front of it; a lookup asks every stage (a
 * handful: they double). The bits come from the key itself: it is a keyed
 * hash, as uniform as any hash of it. */
#include "query/fhir/known.h"

#include <stdlib.h>

#define FIRST_KEYS 65536
#define BITS_PER_KEY 12
#define PROBES 6

typedef struct stage {
  struct stage *next; /* the older, smaller stage */
  size_t blocks;      /* 64-byte blocks */
  size_t n, cap;      /* keys added, keys it is sized for */
  uint64_t bits[];    /* blocks * 8 */
} stage;

struct cl_fhir_known {
  stage *first; /* the newest (biggest), being filled */
  size_t bytes, max_bytes;
};

static uint64_t rd64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | p[i];
  return v;
}

static stage *stage_new(size_t cap) {
  size_t blocks = cap * BITS_PER_KEY / 512;
  stage *s = calloc(1, sizeof *s + blocks * 64);
  if (s != NULL) {
    s->blocks = blocks;
    s->cap = cap;
  }
  return s;
}

cl_fhir_known *cl_fhir_known_new(size_t max_bytes) {
  cl_fhir_known *k = calloc(1, sizeof *k);
  if (k == NULL || (k->first = stage_new(FIRST_KEYS)) == NULL) {
    free(k);
    return NULL;
  }
  k->bytes = k->first->blocks * 64;
  k->max_bytes = max_bytes;
  return k;
}

void cl_fhir_known_free(cl_fhir_known *k) {
  if (k == NULL)
    return;
  for (stage *s = k->first, *next; s != NULL; s = next) {
    next = s->next;
    free(s);
  }
  free(k);
}

static const uint64_t *block_of(const stage *s, const uint8_t h[32]) {
  return s->bits + (rd64(h) % s->blocks) * 8;
}

int cl_fhir_known_has(const cl_fhir_known *k, const uint8_t h[32]) {
  uint64_t y = rd64(h + 8);
  for (const stage *s = k->first; s != NULL; s = s->next) {
    const uint64_t *b = block_of(s, h);
    int all = 1;
    for (int i = 0; i < PROBES && all; i++) {
      unsigned bit = (unsigned)(y >> (9 * i)) & 511;
      all = (b[bit >> 6] >> (bit & 63)) & 1;
    }
    if (all)
      return 1;
  }
  return 0;
}

int cl_fhir_known_add(cl_fhir_known *k, const uint8_t h[32]) {
  stage *s = k->first;
  if (s->n == s->cap) {
    size_t bytes = s->blocks * 2 * 64;
    stage *ns = k->bytes + bytes <= k->max_bytes ? stage_new(s->cap * 2) : NULL;
    if (ns == NULL)
      return -1;
    ns->next = s;
    k->first = s = ns;
    k->bytes += bytes;
  }
  uint64_t *b = s->bits + (rd64(h) % s->blocks) * 8, y = rd64(h + 8);
  for (int i = 0; i < PROBES; i++) {
    unsigned bit = (unsigned)(y >> (9 * i)) & 511;
    b[bit >> 6] |= (uint64_t)1 << (bit & 63);
  }
  s->n++;
  return 0;
}

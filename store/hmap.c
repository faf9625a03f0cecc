/* Open addressing with linear probing; no deletion (the store never needs
 * it), so no tombstones. Load factor kept under 1/2. Keys can be chosen by
 * clients (event ids), so slots come from SipHash under a random per-map
 * key: nobody can aim many keys at one slot. */
#include "store/hmap.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "store/alloc.h"
#include "store/crypt.h"

/* A slot is [used: 8 bytes][key, padded to 8][value, padded to 8], so values
 * (which hold uint64_t fields) are 8-byte aligned. */
#define ROUND8(n) (((n) + 7) & ~(size_t)7)

struct cl_hmap {
  size_t key_len, val_len, slot_len, voff;
  size_t cap;      /* power of two */
  size_t count;
  uint8_t *slots;  /* cap * slot_len: [used byte][key][val] */
  uint8_t sipkey[crypto_shorthash_KEYBYTES];
};

static uint64_t hash_bytes(const cl_hmap *m, const uint8_t *p, size_t n) {
  uint8_t h[crypto_shorthash_BYTES];
  crypto_shorthash(h, p, n, m->sipkey);
  uint64_t v;
  memcpy(&v, h, sizeof v);
  return v;
}

cl_hmap *cl_hmap_new(size_t key_len, size_t val_len) {
  cl_hmap *m = cl_calloc(1, sizeof *m);
  if (!m)
    return NULL;
  m->key_len = key_len;
  m->val_len = val_len;
  m->voff = 8 + ROUND8(key_len);
  m->slot_len = m->voff + ROUND8(val_len);
  m->cap = 16;
  /* per map: keys chosen to collide in one map do not in the next */
  cl_random_buf(m->sipkey, sizeof m->sipkey);
  m->slots = cl_calloc(m->cap, m->slot_len);
  if (!m->slots) {
    cl_free(m);
    return NULL;
  }
  return m;
}

void cl_hmap_free(cl_hmap *m) {
  if (!m)
    return;
  cl_free(m->slots);
  cl_free(m);
}

void cl_hmap_clear(cl_hmap *m) {
  if (m->count)
    memset(m->slots, 0, m->cap * m->slot_len);
  m->count = 0;
}

size_t cl_hmap_count(const cl_hmap *m) { return m->count; }

static uint8_t *find(const cl_hmap *m, const void *key, int *found) {
  size_t mask = m->cap - 1;
  size_t i = (size_t)hash_bytes(m, key, m->key_len) & mask;
  for (;;) {
    uint8_t *s = m->slots + i * m->slot_len;
    if (!s[0]) {
      *found = 0;
      return s;
    }
    if (memcmp(s + 8, key, m->key_len) == 0) {
      *found = 1;
      return s;
    }
    i = (i + 1) & mask;
  }
}

void *cl_hmap_get(const cl_hmap *m, const void *key) {
  int found;
  uint8_t *s = find(m, key, &found);
  return found ? s + m->voff : NULL;
}

static int grow(cl_hmap *m) {
  size_t ncap = m->cap * 2;
  uint8_t *ns = cl_calloc(ncap, m->slot_len);
  if (!ns)
    return -1;
  uint8_t *old = m->slots;
  size_t ocap = m->cap;
  m->slots = ns;
  m->cap = ncap;
  for (size_t i = 0; i < ocap; i++) {
    uint8_t *s = old + i * m->slot_len;
    if (s[0]) {
      int found;
      uint8_t *d = find(m, s + 8, &found);
      memcpy(d, s, m->slot_len);
    }
  }
  cl_free(old);
  return 0;
}

void *cl_hmap_put(cl_hmap *m, const void *key, const void *val) {
  if ((m->count + 1) * 2 > m->cap && grow(m) != 0)
    return NULL;
  int found;
  uint8_t *s = find(m, key, &found);
  if (!found) {
    s[0] = 1;
    memcpy(s + 8, key, m->key_len);
    m->count++;
  }
  memcpy(s + m->voff, val, m->val_len);
  return s + m->voff;
}

void *cl_hmap_upsert(cl_hmap *m, const void *key, int *existed) {
  int found;
  uint8_t *s = find(m, key, &found);
  if (!found && (m->count + 1) * 2 > m->cap) { /* grows only for a new key */
    if (grow(m) != 0)
      return NULL;
    s = find(m, key, &found);
  }
  if (!found) {
    s[0] = 1;
    memcpy(s + 8, key, m->key_len);
    memset(s + m->voff, 0, m->val_len);
    m->count++;
  }
  *existed = found;
  return s + m->voff;
}

int cl_hmap_del(cl_hmap *m, const void *key) {
  int found;
  uint8_t *s = find(m, key, &found);
  if (!found)
    return 0;
  size_t mask = m->cap - 1;
  size_t i = (size_t)(s - m->slots) / m->slot_len;
  /* shift later members of the probe run back into the hole */
  size_t j = i;
  for (;;) {
    j = (j + 1) & mask;
    uint8_t *t = m->slots + j * m->slot_len;
    if (!t[0])
      break;
    size_t home = (size_t)hash_bytes(m, t + 8, m->key_len) & mask;
    /* t may move to the hole at i unless its home lies cyclically in (i, j] */
    int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (stays)
      continue;
    memcpy(m->slots + i * m->slot_len, t, m->slot_len);
    i = j;
  }
  memset(m->slots + i * m->slot_len, 0, m->slot_len);
  m->count--;
  return 1;
}

int cl_hmap_next(const cl_hmap *m, size_t *pos, const void **key, void **val) {
  while (*pos < m->cap) {
    uint8_t *s = m->slots + (*pos)++ * m->slot_len;
    if (s[0]) {
      *key = s + 8;
      *val = s + m->voff;
      return 1;
    }
  }
  return 0;
}

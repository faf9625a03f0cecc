/* A small open-addressing hash map from fixed-length byte keys to fixed-size
 * values, for the store's in-memory indexes (stream heads, keyring, the ids
 * of a commit group). Keys are copied in; values are plain bytes.
 * Not thread-safe: the owner's lock guards it. */
#ifndef CL_STORE_HMAP_H
#define CL_STORE_HMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct cl_hmap cl_hmap;

/* Returns-owned map (free with cl_hmap_free), NULL when out of memory. */
cl_hmap *cl_hmap_new(size_t key_len, size_t val_len);
void cl_hmap_free(cl_hmap *m);
void cl_hmap_clear(cl_hmap *m);
size_t cl_hmap_count(const cl_hmap *m);

/* Returns a view of the value for `key`, valid until the next put/clear/free,
 * or NULL. */
void *cl_hmap_get(const cl_hmap *m, const void *key);

/* Inserts or overwrites; returns a view of the stored value (as cl_hmap_get), or
 * NULL when out of memory (the map is then unchanged). */
void *cl_hmap_put(cl_hmap *m, const void *key, const void *val);

/* The value of `key`, inserted (zeroed) if absent, in one probe: a view (as
 * cl_hmap_get), *existed 1 if it was there; NULL when out of memory (the
 * map is then unchanged). */
void *cl_hmap_upsert(cl_hmap *m, const void *key, int *existed);

/* Removes `key` if present (backward-shift deletion: no tombstones).
 * Invalidates views. Returns 1 if it was there. */
int cl_hmap_del(cl_hmap *m, const void *key);

/* Iteration: *pos starts at 0; returns 1 and sets the key and value views until done. */
int cl_hmap_next(const cl_hmap *m, size_t *pos, const void **key, void **val);

#endif

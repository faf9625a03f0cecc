/* Stored resource JSON, compressed before it is sealed (zj.h). */
#include "query/fhir/zj.h"

#include <lz4.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

struct zj {
  LZ4_stream_t loaded; /* the dictionary indexed, never compressed with */
  LZ4_stream_t work;   /* a copy of `loaded` for each body */
};

/* LZ4 keeps a pointer to the dictionary, which is static. */

zj *zj_new(void) {
  zj *z = malloc(sizeof *z);
  if (z == NULL)
    return NULL;
  if (LZ4_initStream(&z->loaded, sizeof z->loaded) == NULL) {
    free(z);
    return NULL;
  }
  LZ4_loadDict(&z->loaded, cl_fhir_lz4dict1, (int)cl_fhir_lz4dict1_len);
  return z;
}

/* The streams hold positions, and pointers to the dictionary and to the
 * last JSON (which its writer wipes): nothing to wipe here. */
void zj_free(zj *z) { free(z); }

void zj_pack(zj *z, const char *json, size_t n, fj_buf *out) {
  size_t start = out->n;
  int bound = n <= ZJ_MAX ? LZ4_compressBound((int)n) : 0;
  char *p = bound > 0 ? fj_buf_room(out, 5 + (size_t)bound) : NULL;
  if (p != NULL) {
    /* copying the indexed dictionary is cheaper than indexing it again */
    memcpy(&z->work, &z->loaded, sizeof z->work);
    int k = LZ4_compress_fast_continue(&z->work, json, p + 5, (int)n, bound, 1);
    if (k > 0 && (size_t)k + 5 < n) {
      p[0] = ZJ_LZ4_D1;
      for (int i = 0; i < 4; i++)
        p[1 + i] = (char)(n >> (24 - 8 * i));
      out->n = start + 5 + (size_t)k;
      return;
    }
    sodium_memzero(p, 5 + (size_t)bound);
  }
  if (!out->oom)
    fj_buf_raw(out, json, n);
}

int zj_unpack(const uint8_t *v, size_t n, fj_buf *b, const char **json, size_t *jn, cl_err *err) {
  *json = NULL;
  *jn = 0;
  if (n > 0 && v[0] == '{') {
    *json = (const char *)v;
    *jn = n;
    return 0;
  }
  if (n < 5 || v[0] != ZJ_LZ4_D1)
    return cl_err_set(err, CL_ECORRUPT, "fhir: stored resource: unknown format %u",
                      n > 0 ? v[0] : 0u);
  size_t len = (size_t)v[1] << 24 | (size_t)v[2] << 16 | (size_t)v[3] << 8 | v[4];
  if (len > ZJ_MAX || n - 5 > (size_t)LZ4_compressBound((int)len))
    return cl_err_set(err, CL_ECORRUPT, "fhir: stored resource: bad length %zu", len);
  size_t start = b->n;
  char *p = fj_buf_room(b, len);
  if (p == NULL)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  int k = LZ4_decompress_safe_usingDict((const char *)v + 5, p, (int)(n - 5), (int)len,
                                        cl_fhir_lz4dict1, (int)cl_fhir_lz4dict1_len);
  if (k < 0 || (size_t)k != len || len == 0 || p[0] != '{') {
    sodium_memzero(p, len);
    return cl_err_set(err, CL_ECORRUPT,
                      "fhir: stored resource: the block does not decompress to its %zu bytes", len);
  }
  b->n = start + len;
  *json = p;
  *jn = len;
  return 0;
}

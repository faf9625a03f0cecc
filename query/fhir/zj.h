/* Stored resource JSON, compressed before it is sealed: the body of a
 * `ver` value (fhir_int.h) is either the JSON itself (it starts with '{')
 * or
 *
 *   ZJ_LZ4_D1 u8 || the JSON's length u32 BE || an LZ4 block
 *
 * compressed against a built-in dictionary of FHIR R4 JSON (element
 * names, the code systems' URIs the views write; lz4dict1.txt, embedded
 * at build time). Resources are small (400 B–2 KB) and have little
 * redundancy within one, so the dictionary is what makes them compress:
 * to a third of their size on the bench's population and on the golden
 * cases (docs/fhir.md, Storage). Less to seal, to log, to flush, to
 * compact and to cache, for about a microsecond a resource.
 *
 * The dictionary is part of the format: its bytes must never change (a
 * test holds their SHA-256); another dictionary is another format byte.
 * LZ4's block format is stable, and its encoder deterministic: one
 * build's fold writes the same bytes for the same events (runner.h). */
#ifndef CL_QUERY_FHIR_ZJ_H
#define CL_QUERY_FHIR_ZJ_H

#include <stddef.h>
#include <stdint.h>

#include "query/fhir/fj.h"
#include "store/err.h"

#define ZJ_LZ4_D1 0x01
/* The largest JSON a stored body holds (its length is a u32, and LZ4
 * compresses at most LZ4_MAX_INPUT_SIZE). */
#define ZJ_MAX ((size_t)0x7E000000)

/* The built-in dictionary (lz4dict1.txt; generated, see CMakeLists.txt). */
extern const char cl_fhir_lz4dict1[];
extern const size_t cl_fhir_lz4dict1_len;

/* A compressor: holds the dictionary, indexed once. One per writer (not
 * thread-safe). NULL: out of memory. */
typedef struct zj zj;
zj *zj_new(void);
void zj_free(zj *z);

/* Appends the stored body of json[0..n) to out: compressed, or the JSON
 * itself when that is no longer (or n > ZJ_MAX). A failed allocation sets
 * out->oom. The JSON starts with '{'. */
void zj_pack(zj *z, const char *json, size_t n, fj_buf *out);

/* The JSON of the stored body v[0..n) (untrusted): *json points into v,
 * or into b, where it is decompressed (the caller wipes b). Errors:
 * CL_ECORRUPT (an unknown format byte, or a block that does not
 * decompress to its length), CL_ENOMEM. */
int zj_unpack(const uint8_t *v, size_t n, fj_buf *b, const char **json, size_t *jn, cl_err *err);

#endif

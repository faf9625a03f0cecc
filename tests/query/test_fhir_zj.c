/* Stored resource JSON compressed before it is sealed (query/fhir/zj.h):
 * every resource of the golden cases (tests/query/fhir/cases, written by
 * hand from the FHIR R4 examples, not by the views) comes back byte for
 * byte and together they shrink to under half; a body that would not
 * shrink stays JSON; the dictionary is the format's; a damaged body is
 * refused; and the projection stores its versions that way. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/fhir/fhir.h"
#include "query/fhir/zj.h"
#include "query/runner.h"
#include "tests/query/fhir_fixture.h"
#include "tests/support/testutil.h"

/* Packs json[0..n) and unpacks it again; returns the body's length. */
static size_t round_trip(zj *z, const char *json, size_t n) {
  fj_buf body = {0}, b = {0};
  zj_pack(z, json, n, &body);
  cr_assert(!body.oom);
  const char *back;
  size_t bn;
  cl_err err;
  cr_assert_eq(zj_unpack((const uint8_t *)body.p, body.n, &b, &back, &bn, &err), 0, "%s", err.msg);
  cr_assert_eq(bn, n, "%zu bytes back of %zu", bn, n);
  cr_assert_eq(memcmp(back, json, n), 0, "the same bytes");
  size_t len = body.n;
  fj_buf_free(&body);
  fj_buf_free(&b);
  return len;
}

Test(zj, golden_resources_round_trip_and_shrink) {
  zj *z = zj_new();
  cr_assert_not_null(z);
  DIR *d = opendir(FX_CASES);
  cr_assert_not_null(d);
  size_t nres = 0, raw = 0, packed = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    size_t l = strlen(e->d_name);
    if (l < 10 || strcmp(e->d_name + l - 10, ".fhir.json") != 0)
      continue;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", FX_CASES, e->d_name);
    json_error_t je;
    json_t *all = json_load_file(path, 0, &je);
    cr_assert_not_null(all, "%s: %s", path, je.text);
    size_t i;
    json_t *res;
    json_array_foreach(all, i, res) {
      char *s = json_dumps(res, JSON_COMPACT);
      size_t n = strlen(s);
      size_t k = round_trip(z, s, n);
      cr_assert_leq(k, n, "%s #%zu: never longer than the JSON", e->d_name, i);
      raw += n;
      packed += k;
      nres++;
      free(s);
    }
    json_decref(all);
  }
  closedir(d);
  cr_assert_gt(nres, 100, "%zu resources", nres);
  cr_assert_lt(packed * 2, raw, "%zu resources: %zu bytes packed to %zu", nres, raw, packed);
  zj_free(z);
}

Test(zj, a_body_that_would_not_shrink_stays_json) {
  zj *z = zj_new();
  const char *tiny = "{}";
  fj_buf body = {0}, b = {0};
  zj_pack(z, tiny, 2, &body);
  cr_assert_eq(body.n, 2);
  cr_assert_eq(memcmp(body.p, tiny, 2), 0, "stored as is");
  const char *back;
  size_t bn;
  cl_err err;
  cr_assert_eq(zj_unpack((const uint8_t *)body.p, body.n, &b, &back, &bn, &err), 0);
  cr_assert_eq(back, body.p, "read in place, not copied");
  cr_assert_eq(b.n, 0);
  /* random text (base64 of random bytes) has nothing the dictionary has */
  uint8_t rnd[3000];
  randombytes_buf(rnd, sizeof rnd);
  char json[4200];
  strcpy(json, "{\"data\":\"");
  sodium_bin2base64(json + 9, sizeof json - 9, rnd, sizeof rnd, sodium_base64_VARIANT_ORIGINAL);
  strcat(json, "\"}");
  size_t n = strlen(json);
  cr_assert_leq(round_trip(z, json, n), n);
  fj_buf_free(&body);
  fj_buf_free(&b);
  zj_free(z);
}

Test(zj, a_large_resource_round_trips) {
  zj *z = zj_new();
  /* 300 KB: longer than LZ4's 64 KB window, so matches reach the
   * resource's own earlier text, not the dictionary */
  fj_buf j = {0};
  fj_buf_lit(&j, "{\"resourceType\":\"DiagnosticReport\",\"result\":[");
  for (int i = 0; i < 7000; i++) {
    char one[96];
    snprintf(one, sizeof one, "%s{\"reference\":\"Observation/%08x%08x\"}", i ? "," : "",
             (unsigned)i * 2654435761u, (unsigned)i);
    fj_buf_lit(&j, one);
  }
  fj_buf_lit(&j, "]}");
  cr_assert_gt(j.n, 300000);
  cr_assert_lt(round_trip(z, j.p, j.n), j.n / 2);
  fj_buf_free(&j);
  zj_free(z);
}

/* The dictionary is part of the storage format: a build with other bytes
 * could not read what earlier builds stored. */
Test(zj, the_dictionary_is_the_formats) {
  uint8_t h[32];
  crypto_hash_sha256(h, (const uint8_t *)cl_fhir_lz4dict1, cl_fhir_lz4dict1_len);
  char hex[65];
  sodium_bin2hex(hex, sizeof hex, h, sizeof h);
  cr_assert_str_eq(hex, "1d2f6f3a7afb73b5becd510c8552f0897e24427574f3e5da46395000e73ea4dd",
                   "query/fhir/lz4dict1.txt changed: a new dictionary needs a new format byte");
  cr_assert_eq(cl_fhir_lz4dict1_len, 7603);
}

static int unpack_fails(const uint8_t *v, size_t n, const char *want) {
  fj_buf b = {0};
  const char *json = "set";
  size_t jn = 1;
  cl_err err;
  cl_err_clear(&err);
  int rc = zj_unpack(v, n, &b, &json, &jn, &err);
  cr_assert_eq(rc, CL_ECORRUPT, "refused (%d)", rc);
  cr_assert_null(json);
  cr_assert_eq(jn, 0);
  cr_assert(strstr(err.msg, want) != NULL, "\"%s\" names \"%s\"", err.msg, want);
  fj_buf_free(&b);
  return rc;
}

Test(zj, a_damaged_body_is_refused) {
  zj *z = zj_new();
  const char *json = "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"coding\":"
                     "[{\"system\":\"http://loinc.org\",\"code\":\"8867-4\"}]}}";
  size_t n = strlen(json);
  fj_buf body = {0};
  zj_pack(z, json, n, &body);
  uint8_t *v = (uint8_t *)body.p;
  cr_assert_eq(v[0], ZJ_LZ4_D1, "compressed");
  cr_assert_lt(body.n, n / 2);
  unpack_fails(v, 0, "unknown format");
  unpack_fails(v, 4, "unknown format"); /* shorter than its header */
  v[0] = 0x02;
  unpack_fails(v, body.n, "unknown format 2");
  v[0] = ZJ_LZ4_D1;
  unpack_fails(v, body.n - 1, "does not decompress"); /* cut short */
  v[4]++;                                             /* the length one more */
  unpack_fails(v, body.n, "does not decompress");
  v[4] -= 2; /* one less */
  unpack_fails(v, body.n, "does not decompress");
  v[4]++;
  v[1] = 0x7f; /* longer than a body can be */
  unpack_fails(v, body.n, "bad length");
  fj_buf_free(&body);
  zj_free(z);
}

/* What the projection stores: every resource version compressed (the
 * golden cases through a real log and runner), read back unchanged. */
typedef struct sizes {
  size_t versions, sealed;
} sizes;

static int add_sealed(void *ctx, const uint8_t *key, size_t kl, const uint8_t *val, size_t vl,
                      cl_err *err) {
  (void)val;
  (void)err;
  sizes *s = ctx;
  /* the dump: the family's index byte (ver 1), then type u8 || H || version */
  if (kl == 1 + 37 && key[0] == 1 && key[1] != CL_FHIR_Provenance) {
    s->versions++;
    s->sealed += vl;
  }
  return 0;
}

typedef struct json_total {
  size_t n, bytes;
} json_total;

static int add_json(void *ctx, cl_fhir_resource *r, cl_err *err) {
  (void)err;
  json_total *t = ctx;
  t->n++;
  t->bytes += r->len;
  cl_fhir_resource_clear(r);
  return 0;
}

Test(zj, the_projection_stores_versions_compressed, .timeout = 120) {
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("fhirzj", &dir, &admin, 1000);
  fx_append_all_cases(log, &admin);
  cl_runner *r = fx_start(log);
  fx_wait_head(r, log);
  cl_err err;
  sizes s = {0};
  cr_assert_eq(cl_proj_dump(cl_runner_proj(r), add_sealed, &s, &err), 0, "%s", err.msg);
  /* the stored JSON of every version of every resource (no Provenance) */
  json_total t = {0};
  for (int type = 1; type < CL_FHIR_NTYPES; type++) {
    if (type == CL_FHIR_Provenance)
      continue;
    uint8_t next[32];
    cr_assert_eq(
        cl_fhir_scan_type(cl_runner_proj(r), type, NULL, CL_FHIR_STORED, add_json, &t, next, &err),
        0, "%s", err.msg);
  }
  cr_assert_gt(t.n, 100, "%zu resources", t.n);
  cr_assert_geq(s.versions, t.n, "%zu versions of %zu resources", s.versions, t.n);
  /* sealed: the header (32), a nonce and a tag (40) on each; the JSON
   * of all versions is at least that of the current ones. Stored, with
   * meta and hashed ids, they packed to 53 % (JSON would be 100 %) */
  size_t body = s.sealed - s.versions * 72;
  cr_assert_lt(body * 10, t.bytes * 7,
               "%zu versions sealed in %zu bytes (bodies %zu) for %zu bytes of "
               "current JSON",
               s.versions, s.sealed, body, t.bytes);
  cl_runner_stop(r);
  cl_log_close(log);
  cl_signer_free(&admin);
  cl_test_rmtree(dir);
  free(dir);
}

/* The FHIR element table and textual subsetting (query/fhir/elements.h):
 * element names as FHIR R4 defines them, choice and "_" members, what a
 * subset keeps (id, meta, required elements), the SUBSETTED tag in each
 * shape meta can have, Bundles and NDJSON, bytes kept exactly (decimals),
 * and malformed input refused. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "query/fhir/elements.h"
#include "query/fhir/map.h"

static int el(int type, const char *name) { return cl_fhir_element_index(type, name); }

Test(fhir_elements, names_as_fhir_r4_defines_them) {
  cr_assert_eq(el(CL_FHIR_Condition, "id"), 0);
  cr_assert_eq(el(CL_FHIR_Condition, "meta"), 1);
  cr_assert_geq(el(CL_FHIR_Condition, "note"), 8);
  cr_assert_geq(el(CL_FHIR_Condition, "onset[x]"), 8);
  cr_assert_eq(el(CL_FHIR_Condition, "onset"), -1, "a choice keeps its [x]");
  cr_assert_eq(el(CL_FHIR_Condition, "onsetDateTime"), -1);
  cr_assert_eq(el(CL_FHIR_Condition, "valueQuantity"), -1);
  cr_assert_eq(el(CL_FHIR_NONE, "id"), -1);
  cr_assert_eq(el(CL_FHIR_NTYPES, "id"), -1);
  /* every served type is in the table, with at most 64 elements */
  for (int t = 1; t < CL_FHIR_NTYPES; t++) {
    cr_assert_eq(el(t, "id"), 0, "%s", cl_fhir_type_name(t));
    cr_assert_leq(cl_fhir_elements_table[t].n, 64);
  }
  int onset = el(CL_FHIR_Condition, "onset[x]");
  const char *m[] = {"onsetDateTime", "onsetPeriod", "_onsetDateTime"};
  for (size_t i = 0; i < 3; i++)
    cr_assert_eq(cl_fhir_element_of_member(CL_FHIR_Condition, m[i], strlen(m[i])), onset, "%s",
                 m[i]);
  cr_assert_eq(cl_fhir_element_of_member(CL_FHIR_Condition, "onsetdate", 9), -1,
               "a choice's type name starts upper-case");
  cr_assert_eq(cl_fhir_element_of_member(CL_FHIR_Condition, "onset", 5), -1);
  cr_assert_eq(cl_fhir_element_of_member(CL_FHIR_Observation, "_status", 7),
               el(CL_FHIR_Observation, "status"));
  cr_assert_eq(cl_fhir_element_of_member(CL_FHIR_Observation, "notes", 5), -1);
  /* kept: id, meta, and what R4 requires (Observation.status and code) */
  uint64_t k = cl_fhir_elements_kept(CL_FHIR_Observation);
  cr_assert_eq(k, (1ull << 0) | (1ull << 1) | (1ull << el(CL_FHIR_Observation, "status")) |
                      (1ull << el(CL_FHIR_Observation, "code")));
  cr_assert_eq(cl_fhir_elements_kept(CL_FHIR_Patient), 3u, "Patient requires nothing");
}

/* The test's reader: Condition and Observation limited to `allowed`. */
static int mask_of(void *ctx, int type, uint64_t *mask) {
  if (type != CL_FHIR_Condition && type != CL_FHIR_Observation)
    return 0;
  *mask = 0;
  for (const char *const *a = ctx; *a; a++)
    if (el(type, *a) >= 0)
      *mask |= 1ull << el(type, *a);
  return 1;
}

static char *subset(const char *in, int ndjson, const char *const *allowed, int *changed) {
  char *out = NULL;
  size_t n = 0;
  cr_assert_eq(cl_fhir_subset(in, strlen(in), ndjson, mask_of, (void *)allowed, &out, &n, changed),
               0, "%s", in);
  cr_assert_eq(strlen(out), n);
  return out;
}

static const char *const CODES[] = {"code", "onset[x]", NULL};
#define TAG                                                                                        \
  "{\"system\":\"http://terminology.hl7.org/CodeSystem/v3-ObservationValue\",\"code\":"            \
  "\"SUBSETTED\",\"display\":\"Resource encoded in summary mode\"}"

static void expect(const char *in, const char *want, int want_changed) {
  int changed = -1;
  char *got = subset(in, 0, CODES, &changed);
  cr_assert_str_eq(got, want);
  cr_assert_eq(changed, want_changed, "%s", in);
  json_error_t je;
  json_t *j = json_loads(got, 0, &je);
  cr_assert_not_null(j, "not JSON: %s (%s)", got, je.text);
  json_decref(j);
  free(got);
}

Test(fhir_elements, a_subset_keeps_id_meta_required_and_allowed) {
  /* the note and the recorder go; subject (required), onset[x] and its
   * "_" twin stay; meta gets a tag array */
  expect("{\"resourceType\":\"Condition\",\"id\":\"c1\",\"meta\":{\"versionId\":\"2\"},"
         "\"code\":{\"text\":\"flu\"},\"subject\":{\"reference\":\"Patient/p1\"},"
         "\"onsetDateTime\":\"2026-01-02\",\"_onsetDateTime\":{\"id\":\"x\"},"
         "\"recorder\":{\"reference\":\"Practitioner/d\"},\"note\":[{\"text\":\"HIV+\"}]}",
         "{\"resourceType\":\"Condition\",\"id\":\"c1\",\"meta\":{\"versionId\":\"2\",\"tag\":[" TAG
         "]},\"code\":{\"text\":\"flu\"},\"subject\":{\"reference\":\"Patient/p1\"},"
         "\"onsetDateTime\":\"2026-01-02\",\"_onsetDateTime\":{\"id\":\"x\"}}",
         1);
  /* meta with tags: one more; no meta: one is added; an empty meta */
  expect("{\"resourceType\":\"Condition\",\"meta\":{\"tag\":[{\"code\":\"a\"}]},\"note\":[]}",
         "{\"resourceType\":\"Condition\",\"meta\":{\"tag\":[{\"code\":\"a\"}," TAG "]}}", 1);
  expect("{\"resourceType\":\"Condition\",\"meta\":{\"tag\":[ ]},\"note\":[]}",
         "{\"resourceType\":\"Condition\",\"meta\":{\"tag\":[ " TAG "]}}", 1);
  expect("{\"resourceType\":\"Condition\",\"note\":[]}",
         "{\"resourceType\":\"Condition\",\"meta\":{\"tag\":[" TAG "]}}", 1);
  expect("{\"note\":[],\"resourceType\":\"Condition\",\"meta\":{}}",
         "{\"resourceType\":\"Condition\",\"meta\":{\"tag\":[" TAG "]}}", 1);
  /* already SUBSETTED (the engine's _elements): not twice */
  expect("{\"resourceType\":\"Condition\",\"meta\":{\"tag\":[" TAG "]},\"note\":[]}",
         "{\"resourceType\":\"Condition\",\"meta\":{\"tag\":[" TAG "]}}", 1);
  /* nothing to drop: the same bytes, untagged; other types untouched */
  const char *same = "{ \"resourceType\" : \"Condition\", \"code\": {\"text\":\"a\\\"}\"} }";
  expect(same, same, 0);
  expect("{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"X\"}]}",
         "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"X\"}]}", 0);
  expect("{\"resourceType\":\"OperationOutcome\",\"issue\":[]}",
         "{\"resourceType\":\"OperationOutcome\",\"issue\":[]}", 0);
}

Test(fhir_elements, decimals_and_strings_are_copied_byte_for_byte) {
  static const char *const V[] = {"value[x]", NULL};
  const char *in = "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{},"
                   "\"valueQuantity\":{\"value\":7.10,\"unit\":\"mmol/L\"},"
                   "\"note\":[{\"text\":\"caf\\u00e9 \\\"}]\"}],\"interpretation\":[{}]}";
  int changed;
  char *got = subset(in, 0, V, &changed);
  cr_assert(strstr(got, "\"value\":7.10,"), "%s", got);
  cr_assert_null(strstr(got, "note"), "%s", got);
  cr_assert_null(strstr(got, "interpretation"), "%s", got);
  cr_assert(strstr(got, "\"status\":\"final\""));
  cr_assert(strstr(got, "\"code\":{}"), "required elements stay: %s", got);
  free(got);
}

Test(fhir_elements, bundles_and_ndjson_subset_every_resource) {
  const char *b =
      "{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"total\":2,\"link\":[{\"relation\":"
      "\"self\",\"url\":\"x?note=1\"}],\"entry\":[{\"fullUrl\":\"u1\",\"resource\":{"
      "\"resourceType\":\"Condition\",\"id\":\"a\",\"note\":[{\"text\":\"n1\"}]},\"search\":{"
      "\"mode\":\"match\"}},{\"resource\":{\"resourceType\":\"Patient\",\"id\":\"p\"},"
      "\"search\":{\"mode\":\"include\"}}]}";
  int changed;
  char *got = subset(b, 0, CODES, &changed);
  cr_assert_eq(changed, 1);
  cr_assert_null(strstr(got, "n1"), "%s", got);
  cr_assert(strstr(got, "\"link\":[{\"relation\":\"self\",\"url\":\"x?note=1\"}]"), "%s", got);
  cr_assert(strstr(got, "{\"resourceType\":\"Patient\",\"id\":\"p\"}"), "%s", got);
  json_t *j = json_loads(got, 0, NULL);
  cr_assert_not_null(j, "%s", got);
  cr_assert_eq(json_array_size(json_object_get(j, "entry")), 2);
  json_t *first = json_object_get(json_array_get(json_object_get(j, "entry"), 0), "resource");
  json_t *tag = json_array_get(json_object_get(json_object_get(first, "meta"), "tag"), 0);
  cr_assert_str_eq(json_string_value(json_object_get(tag, "code")), "SUBSETTED");
  json_decref(j);
  free(got);
  const char *nd = "{\"resourceType\":\"Condition\",\"id\":\"a\",\"note\":[]}\n"
                   "{\"resourceType\":\"Condition\",\"id\":\"b\",\"code\":{}}\n";
  got = subset(nd, 1, CODES, &changed);
  cr_assert_str_eq(got, "{\"resourceType\":\"Condition\",\"id\":\"a\",\"meta\":{\"tag\":[" TAG
                        "]}}\n{\"resourceType\":\"Condition\",\"id\":\"b\",\"code\":{}}\n");
  free(got);
  got = subset("", 1, CODES, &changed);
  cr_assert_str_eq(got, "");
  cr_assert_eq(changed, 0);
  free(got);
}

Test(fhir_elements, malformed_json_is_refused) {
  const char *bad[] = {"",
                       "{",
                       "{\"resourceType\":\"Condition\",\"note\":[}",
                       "{\"resourceType\":\"Condition\" \"note\":1}",
                       "{\"resourceType\":\"Condition\",\"note\":\"x}",
                       "{\"a\":1}{",
                       "[1,2]",
                       "{\"resourceType\":\"Bundle\",\"entry\":[{\"resource\":{]}"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char *out = (char *)1;
    size_t n;
    int changed;
    cr_assert_eq(
        cl_fhir_subset(bad[i], strlen(bad[i]), 0, mask_of, (void *)CODES, &out, &n, &changed), -1,
        "accepted: %s", bad[i]);
  }
}

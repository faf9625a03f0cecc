/* libFuzzer target for the JSON Patch of FHIR PATCH (adapters/fhir/
 * fhirw_patch.h): arbitrary bytes applied as a patch to a Patient and to
 * an Observation as the views serve them (numbers marked as
 * cl_fhirw_parse makes them).
 *
 * Applied: the result is a JSON value that serializes, and applying the
 * same patch again to a fresh copy gives an equal result (no hidden
 * state). Refused: CL_EMALFORMED with a status of 400 or 422, an issue
 * code, a reason and an expression that is "" (not JSON) or names the
 * patch ("patch", "patch[i]..."), and the document exactly as it was. Any
 * violation aborts (fuzz_finding). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/fhir/fhirw_patch.h"
#include "tests/fuzz/common/fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const who = "fuzz_fhir_patch";

static const char *const docs[] = {
    "{\"resourceType\":\"Patient\",\"id\":\"p1\",\"meta\":{\"versionId\":\"2\"},\"name\":[{"
    "\"family\":\"Rivera\",\"given\":[\"Lucia\",\"Ana\"]}],\"gender\":\"female\","
    "\"birthDate\":\"1984-07-02\",\"telecom\":[{\"system\":\"phone\",\"value\":\"+1-555\"}]}",
    "{\"resourceType\":\"Observation\",\"id\":\"o1\",\"status\":\"final\",\"code\":{"
    "\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"8867-4\"}]},\"valueQuantity\":{"
    "\"value\":72.50,\"unit\":\"/min\"},\"component\":[{\"valueQuantity\":{\"value\":-1e3}}]}",
};

static json_t *doc_of(size_t k) {
  json_t *d;
  cl_fhirw_error fe;
  cl_err err;
  if (cl_fhirw_parse(docs[k], strlen(docs[k]), &d, &fe, &err) != 0)
    fuzz_finding(who, "the seed document does not parse: %s", err.msg);
  return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  for (size_t k = 0; k < sizeof docs / sizeof docs[0]; k++) {
    json_t *d = doc_of(k), *orig = d, *copy = json_deep_copy(d);
    cl_fhirw_error fe;
    cl_err err;
    memset(&fe, 0, sizeof fe);
    int rc = cl_fhirw_patch(&d, (const char *)data, size, &fe, &err);
    if (rc == CL_ENOMEM) {
      /* nothing to check beyond the document being intact */
    } else if (rc != 0) {
      if (rc != CL_EMALFORMED)
        fuzz_finding(who, "refusal %d", rc);
      if ((fe.status != 400 && fe.status != 422) || !fe.code[0] || !fe.text[0])
        fuzz_finding(who, "refusal without status, code or reason: %d %s", fe.status, err.msg);
      if (fe.expression[0] && strncmp(fe.expression, "patch", 5) != 0)
        fuzz_finding(who, "expression '%s' outside the patch", fe.expression);
    } else {
      char *s = json_dumps(d, JSON_COMPACT | JSON_ENCODE_ANY);
      if (s == NULL)
        fuzz_finding(who, "a patched document that does not serialize");
      free(s);
      json_t *again = doc_of(k);
      if (cl_fhirw_patch(&again, (const char *)data, size, &fe, &err) == 0 && !json_equal(again, d))
        fuzz_finding(who, "the same patch gave another result");
      json_decref(again);
    }
    if (rc != 0 && (d != orig || !json_equal(d, copy)))
      fuzz_finding(who, "a refused patch changed the document");
    json_decref(copy);
    json_decref(d);
  }
  return 0;
}

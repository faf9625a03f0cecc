/* libFuzzer target for the CDS knowledge-base reader (query/cds/kb.c): an
 * operator's (or a vendor's) file, read at start. Any bytes must parse or be
 * refused with an error naming a line, never crash; a knowledge base that
 * parses answers every question about codes drawn from its own text without
 * reading out of bounds, and its answers keep their promises (a rule found
 * between A and B is found between B and A; a dose at the limit is OK). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/cds/kb.h"
#include "tests/fuzz/common/fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Up to max decimal numbers (1-10 digits) that appear in the input. */
static size_t numbers(const uint8_t *d, size_t n, uint32_t *out, size_t max) {
  size_t k = 0;
  for (size_t i = 0; i < n && k < max;) {
    if (d[i] < '0' || d[i] > '9') {
      i++;
      continue;
    }
    unsigned long long v = 0;
    size_t j = i;
    while (j < n && j - i < 10 && d[j] >= '0' && d[j] <= '9')
      v = v * 10 + (d[j++] - '0');
    if (v && v <= UINT32_MAX)
      out[k++] = (uint32_t)v;
    while (j < n && d[j] >= '0' && d[j] <= '9')
      j++;
    i = j;
  }
  return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cl_kb *kb = NULL;
  cl_err err;
  int rc = cl_kb_parse((const char *)data, size, "fuzz", &kb, &err);
  if (rc != 0) {
    if (kb || (rc != CL_EMALFORMED && rc != CL_ENOMEM && rc != CL_ETOOBIG))
      fuzz_finding("fuzz_cds_kb", "rc %d with kb %p", rc, (void *)kb);
    if (rc != CL_ENOMEM && strncmp(err.msg, "fuzz: line ", 11) != 0)
      fuzz_finding("fuzz_cds_kb", "refusal without a line: %s", err.msg);
    return 0;
  }
  uint32_t ids[16];
  size_t n = numbers(data, size, ids, 16);
  cl_kb_interaction out[4], back[4];
  for (size_t i = 0; i < n; i++) {
    char code[16];
    snprintf(code, sizeof code, "%u", ids[i]);
    uint32_t ing[CL_KB_MAX_PRODUCT_ING];
    size_t ni;
    if (cl_kb_resolve(kb, CL_KB_RXNORM, code, ing, CL_KB_MAX_PRODUCT_ING, &ni) == 0 &&
        (ni == 0 || ni > CL_KB_MAX_PRODUCT_ING))
      fuzz_finding("fuzz_cds_kb", "%s resolves to %zu ingredients", code, ni);
    const char *names[8];
    size_t nc = cl_kb_classes(kb, ids[i], names, 8);
    for (size_t c = 0; c < nc && c < 8; c++)
      if (!cl_kb_in_class(kb, ids[i], names[c]))
        fuzz_finding("fuzz_cds_kb", "%u in class %s one way only", ids[i], names[c]);
    for (size_t j = 0; j < n; j++) {
      size_t f = cl_kb_interactions(kb, &ids[i], 1, &ids[j], 1, out, 4);
      size_t g = cl_kb_interactions(kb, &ids[j], 1, &ids[i], 1, back, 4);
      if (f != g)
        fuzz_finding("fuzz_cds_kb", "%u x %u: %zu rules, %zu reversed", ids[i], ids[j], f, g);
      for (size_t k = 0; k < f && k < 4; k++)
        if (strcmp(out[k].id, back[k].id) != 0 || out[k].severity < CL_KB_MINOR ||
            out[k].severity > CL_KB_CONTRAINDICATED)
          fuzz_finding("fuzz_cds_kb", "rule %zu differs or has a bad severity", k);
      const char *via;
      snprintf(code, sizeof code, "%u", ids[j]);
      cl_kb_allergy(kb, ids[i], code, &via);
      cl_kb_duplicate(kb, &ids[i], 1, &ids[j], 1, &via);
    }
    cl_kb_dose_result r;
    static const char *routes[] = {"oral", "iv", "sc"};
    for (int d = 0; d < 2; d++)
      for (size_t rt = 0; rt < 3; rt++)
        if (cl_kb_dose_check(kb, ids[i], routes[rt], 1, "mg", 70, d, &r) == 0 &&
            r.verdict == CL_KB_DOSE_OVER) {
          cl_kb_dose_result at;
          if (cl_kb_dose_check(kb, ids[i], routes[rt], r.limit_mg, "mg", 70, d, &at) != 0 ||
              at.verdict != CL_KB_DOSE_OK)
            fuzz_finding("fuzz_cds_kb", "a dose at the limit %g mg is not OK", r.limit_mg);
        }
  }
  cl_kb_free(kb);
  return 0;
}

/* libFuzzer target for the access policy parser (query/auth/policy.c): an
 * operator's file, read at start. Any bytes must parse or be refused with
 * CL_EMALFORMED naming a line, never crash; a policy that parses answers
 * questions about roles drawn from its own text. The same bytes, as a FHIR
 * answer, go through the minimum-necessary subsetter (query/fhir/
 * elements.c): JSON it cannot scan is refused, never overrun. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "query/auth/policy.h"
#include "query/fhir/elements.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every type limited to its odd-numbered elements. */
static int odd(void *ctx, int type, uint64_t *mask) {
  (void)ctx;
  (void)type;
  *mask = 0xaaaaaaaaaaaaaaaaull;
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *out = NULL;
  size_t outlen;
  int changed;
  if (cl_fhir_subset((const char *)data, size, size & 1, odd, NULL, &out, &outlen, &changed) == 0) {
    if (outlen > 8 * size + 4096)
      abort(); /* at most a tag (and a meta) more per resource of 30+ bytes */
    free(out);
  }
  cl_policy *p = NULL;
  cl_err err;
  int rc = cl_policy_parse((const char *)data, size, "fuzz", &p, &err);
  if (rc != 0) {
    if (p || (rc != CL_EMALFORMED && rc != CL_ENOMEM) ||
        (rc == CL_EMALFORMED && strncmp(err.msg, "fuzz:", 5) != 0))
      abort();
    return 0;
  }
  /* roles: the first word of the input, and a list of two */
  char roles[80] = "";
  size_t n = 0;
  while (n < size && n < 30 && data[n] > ' ' && data[n] != ',' && data[n] != '#')
    n++;
  memcpy(roles, data, n);
  memcpy(roles + n, ",admin", 7);
  cl_policy_may_call(p, roles, "clinlog.v1.Log/Read", "read");
  cl_policy_may_append(p, roles, 202);
  cl_policy_may_read(p, roles, "Observation");
  cl_policy_may_read(p, roles, "*");
  cl_policy_reads_compartment(p, roles);
  uint64_t mask;
  cl_policy_fields(p, roles, 3, &mask);
  cl_policy_restricts(p, roles);
  cl_policy_free(p);
  return 0;
}

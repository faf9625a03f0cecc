/* libFuzzer target for the access policy parser (query/auth/policy.c): an
 * operator's file, read at start. Any bytes must parse or be refused with
 * CL_EMALFORMED naming a line, never crash; a policy that parses answers
 * questions about roles drawn from its own text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "query/auth/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
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
  cl_policy_free(p);
  return 0;
}

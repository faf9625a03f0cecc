/* libFuzzer target for what a Cds.CheckOrder client sends
 * (query/cds/order.c): the bytes as a CheckOrderRequest, validated and
 * checked against a fresh patient state with the seed knowledge base.
 *
 * Findings (abort, after one line on stderr): a refusal that is not
 * CL_EINVAL / CL_ETOOBIG / CL_ENOMEM or names no field; cl_cds_order_check
 * refusing what cl_cds_order_validate accepted, or the reverse; an answer
 * that does not unpack, whose count is wrong, or with a finding whose
 * summary is empty or 140 bytes or more, whose severity is not LOW to HIGH,
 * whose issue id is not 32 hex digits, or whose order_id is not one of the
 * request's orders. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/cds/order.h"
#include "tests/fuzz/common/fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define finding(...) fuzz_finding("fuzz_cds_order", __VA_ARGS__)

static cl_kb *g_kb;

static int is_order(const Clinlog__V1__CheckOrderRequest *q, const char *id) {
  for (size_t i = 0; i < q->n_orders; i++) {
    char def[32];
    snprintf(def, sizeof def, "draft-%zu", i + 1);
    if (!strcmp(id, q->orders[i]->order_id[0] ? q->orders[i]->order_id : def))
      return 1;
  }
  return 0;
}

static void check_answer(const Clinlog__V1__CheckOrderRequest *q, const uint8_t *buf, size_t n,
                         size_t nf) {
  Clinlog__V1__CheckOrderResponse *r = clinlog__v1__check_order_response__unpack(NULL, n, buf);
  if (!r)
    finding("the answer does not unpack (%zu bytes)", n);
  if (r->n_findings != nf)
    finding("%zu findings, %zu counted", r->n_findings, nf);
  for (size_t i = 0; i < r->n_findings; i++) {
    const Clinlog__V1__CdsFinding *f = r->findings[i];
    size_t sl = strlen(f->summary);
    if (sl == 0 || sl >= 140)
      finding("finding %zu: summary of %zu bytes", i, sl);
    if ((int)f->severity < 1 || (int)f->severity > 3)
      finding("finding %zu: severity %d", i, (int)f->severity);
    if (strlen(f->issue_id) != 32 || strspn(f->issue_id, "0123456789abcdef") != 32)
      finding("finding %zu: issue id %s", i, f->issue_id);
    if (!is_order(q, f->order_id))
      finding("finding %zu: order_id %s is not an order", i, f->order_id);
  }
  clinlog__v1__check_order_response__free_unpacked(r, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cl_err err;
  if (g_kb == NULL && cl_kb_seed(&g_kb, &err) != 0)
    finding("the seed does not load: %s", err.msg);
  Clinlog__V1__CheckOrderRequest *q = clinlog__v1__check_order_request__unpack(NULL, size, data);
  if (!q)
    return 0;
  int v = cl_cds_order_validate(q, &err);
  if (v != 0 && v != CL_EINVAL && v != CL_ETOOBIG)
    finding("validate: %d: %s", v, err.msg);
  if (v != 0 && strchr(err.msg, ':') == NULL)
    finding("a refusal naming no field: %s", err.msg);
  cl_cds_patient *st = NULL;
  if (cl_cds_patient_new(q->patient_id[0] ? q->patient_id : "P", &st, &err) != 0) {
    clinlog__v1__check_order_request__free_unpacked(q, NULL);
    return 0;
  }
  uint8_t *buf = NULL;
  size_t n = 0, nf = 0;
  int rc = cl_cds_order_check(g_kb, st, q, 1780000000ll * 1000000000ll, 7, &buf, &n, &nf, &err);
  if (v == 0 && rc != 0 && rc != CL_ETOOBIG && rc != CL_ENOMEM)
    finding("validated, then refused: %d: %s", rc, err.msg);
  if (v != 0 && rc != v)
    finding("validate said %d, check %d", v, rc);
  if (rc == 0)
    check_answer(q, buf, n, nf);
  free(buf);
  cl_cds_patient_free(st);
  clinlog__v1__check_order_request__free_unpacked(q, NULL);
  return 0;
}

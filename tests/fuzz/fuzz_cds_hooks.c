/* libFuzzer target for what a CDS client sends (query/cds/hooks.c): a hook
 * request (JSON from the network, its draft orders and prefetch turned into
 * checker events) and a feedback body, against the seed knowledge base.
 *
 * Input: byte 0 picks the service (0 order-select, 1 order-sign, 2
 * patient-view, 3 an unknown id) and bit 2 whether the rest is also handed
 * over as server-read patient data; the rest is the body, also parsed as
 * feedback. Findings (abort, after one line on stderr): a refusal that is not
 * CL_EINVAL / CL_ENOTFOUND / CL_ETOOBIG / CL_ENOMEM or names no field; an
 * accepted request whose answer is not JSON {"cards": [...]}, whose card
 * count is wrong, or whose cards lack a summary under 140 bytes, an
 * indicator of info / warning / critical, a source label, or (with
 * suggestions) selectionBehavior; a feedback item without a card. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/cds/hooks.h"
#include "tests/fuzz/common/fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define finding(...) fuzz_finding("fuzz_cds_hooks", __VA_ARGS__)

static cl_kb *g_kb;

static void check_cards(const char *out, size_t len, size_t n) {
  json_t *j = json_loadb(out, len, 0, NULL);
  json_t *cards = json_object_get(j, "cards");
  if (!json_is_array(cards) || json_array_size(cards) != n)
    finding("answer is not {\"cards\": [%zu]}: %.200s", n, out);
  size_t i;
  json_t *c;
  json_array_foreach(cards, i, c) {
    const char *sum = json_string_value(json_object_get(c, "summary"));
    const char *ind = json_string_value(json_object_get(c, "indicator"));
    const char *label = json_string_value(json_object_get(json_object_get(c, "source"), "label"));
    if (!sum || !sum[0] || strlen(sum) >= 140)
      finding("card %zu: summary %s", i, sum ? sum : "(none)");
    if (!ind || (strcmp(ind, "info") && strcmp(ind, "warning") && strcmp(ind, "critical")))
      finding("card %zu: indicator %s", i, ind ? ind : "(none)");
    if (!label || !label[0])
      finding("card %zu: no source label", i);
    if (json_object_get(c, "suggestions") && !json_object_get(c, "selectionBehavior"))
      finding("card %zu: suggestions without selectionBehavior", i);
  }
  json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const SERVICES[] = {"clinlog-medication-select", "clinlog-medication-sign",
                                         "clinlog-medication-review", "nope"};
  cl_err err;
  if (g_kb == NULL && cl_kb_seed(&g_kb, &err) != 0)
    finding("the seed does not load: %s", err.msg);
  if (size < 1)
    return 0;
  const char *service = SERVICES[data[0] & 3];
  int as_extra = (data[0] >> 2) & 1;
  const char *body = (const char *)data + 1;
  size_t len = size - 1;

  cl_cds_hooks_req *r = NULL;
  int rc = cl_cds_hooks_parse(service, body, len, &r, &err);
  if (rc != 0) {
    if (r != NULL)
      finding("refused (%d) with a request", rc);
    if (rc != CL_EINVAL && rc != CL_ENOTFOUND && rc != CL_ENOMEM)
      finding("refused with %d: %s", rc, err.msg);
    if (rc == CL_EINVAL && strchr(err.msg, ':') == NULL)
      finding("a refusal naming no field: %s", err.msg);
  } else {
    const char *extra[1] = {body};
    size_t elen[1] = {len};
    char *out = NULL;
    size_t olen = 0, n = 0;
    rc = cl_cds_hooks_evaluate(g_kb, r, extra, elen, as_extra ? 1 : 0,
                               1780000000ll * 1000000000ll, &out, &olen, &n, &err);
    if (rc == 0)
      check_cards(out, olen, n);
    else if (rc != CL_EINVAL && rc != CL_ETOOBIG && rc != CL_ENOMEM)
      finding("evaluate: %d: %s", rc, err.msg);
    free(out);
    cl_cds_hooks_req_free(r);
  }

  cl_cds_feedback fb[4];
  size_t nfb = 0;
  rc = cl_cds_hooks_feedback_parse(body, len, fb, 4, &nfb, &err);
  if (rc == 0 && nfb == 0)
    finding("feedback accepted with no item");
  for (size_t i = 0; rc == 0 && i < nfb; i++)
    if (!fb[i].card[0] || !fb[i].timestamp[0])
      finding("feedback[%zu] without card or timestamp", i);
  if (rc != 0 && nfb != 0)
    finding("feedback refused with %zu items", nfb);
  return 0;
}

/* POST /device/readings: home-device readings as JSON lines (one reading
 * per line, adapters/device/reading.h) from a device or its gateway,
 * through the request layer as clinlog.v1.Devices/SubmitReadings (the
 * same method, policy and audit record as the gRPC stream).
 *
 * The answer is 200 with one outcome per non-blank line, in order, when
 * the call was admitted (some lines may be refused); 400 for a body that
 * is not JSON lines (Content-Type, over 1 MiB, more than
 * HTTP_DEVICE_MAX_LINES lines), 401/403/503 for a call refused whole:
 *
 *   {"accepted": 2, "duplicates": 0, "refused": 1, "failed": 0,
 *    "results": [{"line": 1, "status": "accepted", "device": "bp-1",
 *                 "reading": "17", "events": 2, "seq": 41}, ...,
 *                {"line": 3, "status": "refused", "field": "unit",
 *                 "reason": "unit: \"mmHg\" is not a UCUM unit ..."}]} */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "adapters/device/submit.h"
#include "adapters/http/http_int.h"

#define HTTP_DEVICE_MAX_LINES 10000

static int body_ok(struct MHD_Connection *c, const req *r, cl_err *err) {
  const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
  if (r->too_big)
    return cl_err_set(err, CL_ETOOBIG, "the request is over 1 MiB: send the readings in parts");
  if (ct == NULL || (strncasecmp(ct, "application/x-ndjson", 20) != 0 &&
                     strncasecmp(ct, "application/jsonl", 17) != 0 &&
                     strncasecmp(ct, "application/json", 16) != 0))
    return cl_err_set(err, CL_EINVAL,
                      "Content-Type: device readings are JSON lines (application/x-ndjson)");
  if (r->body == NULL || r->len == 0)
    return cl_err_set(err, CL_EINVAL, "an empty body (expected one JSON reading per line)");
  return 0;
}

/* The non-blank lines of the body (views into it) and their line numbers. */
static int split(const req *r, cl_dev_line *lines, size_t *lineno, size_t *n, cl_err *err) {
  size_t k = 0, no = 0;
  for (size_t i = 0; i < r->len;) {
    size_t e = i;
    while (e < r->len && r->body[e] != '\n')
      e++;
    no++;
    size_t j = i;
    while (j < e && strchr(" \t\r", r->body[j]))
      j++;
    if (j < e) {
      if (k == HTTP_DEVICE_MAX_LINES)
        return cl_err_set(err, CL_EINVAL,
                          "more than %d readings in one request: send them in parts",
                          HTTP_DEVICE_MAX_LINES);
      lines[k] = (cl_dev_line){r->body + i, e - i};
      lineno[k++] = no;
    }
    i = e + 1;
  }
  *n = k;
  return 0;
}

static json_t *outcome_json(size_t line, const cl_dev_outcome *o) {
  json_t *j =
      json_pack("{s:I, s:s}", "line", (json_int_t)line, "status", cl_dev_status_name(o->status));
  if (!j)
    return NULL;
  if (o->device_id[0])
    json_object_set_new(j, "device", json_string(o->device_id));
  if (o->reading_id[0])
    json_object_set_new(j, "reading", json_string(o->reading_id));
  if (o->status == CL_DEV_ACCEPTED || o->status == CL_DEV_DUPLICATE) {
    json_object_set_new(j, "events", json_integer((json_int_t)o->events));
    json_object_set_new(j, "seq", json_integer((json_int_t)o->seq));
  } else {
    if (o->status == CL_DEV_REFUSED)
      json_object_set_new(j, "field", json_string(o->field));
    json_object_set_new(j, "reason", json_string(o->reason));
  }
  return j;
}

enum MHD_Result http_serve_device(cl_http *h, struct MHD_Connection *c, const char *method,
                                  req *r) {
  cl_req_ctx rc;
  cl_err err, aerr;
  cl_err_clear(&err);
  http_ctx_init(h, c, &rc, M_DEVICE_SUBMIT);
  if (strcmp(method, "POST") != 0)
    return http_send_outcome(c, 405, "not-supported", rc.request_id,
                             "device readings are POSTed as JSON lines");
  cl_dev_line *lines = calloc(HTTP_DEVICE_MAX_LINES, sizeof *lines);
  size_t *lineno = calloc(HTTP_DEVICE_MAX_LINES, sizeof *lineno);
  cl_dev_outcome *out = NULL;
  size_t n = 0;
  enum MHD_Result ret;
  int code = lines && lineno ? body_ok(c, r, &err) : cl_err_set(&err, CL_ENOMEM, "out of memory");
  if (code == 0)
    code = split(r, lines, lineno, &n, &err);
  if (code == 0 && !(out = calloc(n ? n : 1, sizeof *out)))
    code = cl_err_set(&err, CL_ENOMEM, "out of memory");
  cl_err perr = err;
  cl_err_clear(&err);
  if (cl_svc_admit(h->svc, &rc, NULL, &err) != 0) {
    ret = http_done(h, &rc, err.code, err.msg, &aerr) ? http_unrecorded(c, &rc, &aerr)
                                                      : http_refuse(c, &rc, &err);
    goto out;
  }
  snprintf(rc.audit_what, sizeof rc.audit_what, "device/readings");
  if (code == 0)
    code = cl_dev_submit(h->svc, &rc, lines, n, NULL, out, &perr);
  if (http_done(h, &rc, code, code ? perr.msg : "", &aerr)) {
    ret = http_unrecorded(c, &rc, &aerr);
    goto out;
  }
  if (code) {
    ret = http_refuse(c, &rc, &perr);
    goto out;
  }
  size_t tally[5] = {0};
  json_t *res = json_array();
  for (size_t i = 0; i < n; i++) {
    tally[out[i].status < 5 ? out[i].status : 4]++;
    json_array_append_new(res, outcome_json(lineno[i], &out[i]));
  }
  json_t *doc = json_pack(
      "{s:I, s:I, s:I, s:I, s:o}", "accepted", (json_int_t)tally[CL_DEV_ACCEPTED], "duplicates",
      (json_int_t)tally[CL_DEV_DUPLICATE], "refused", (json_int_t)tally[CL_DEV_REFUSED], "failed",
      (json_int_t)tally[CL_DEV_FAILED], "results", res);
  ret = doc ? http_send_json(c, 200, doc, rc.request_id)
            : http_send_outcome(c, 500, "exception", rc.request_id, "out of memory");
out:
  free(lines);
  free(lineno);
  free(out);
  return ret;
}

/* Handler of clinlog.v1.Devices (proto/clinlog/v1/device.proto):
 * SubmitReadings, a client stream of DeviceReadingBatch answered by one
 * DeviceReadingSummary. Each batch goes through the request layer's device
 * submission (adapters/device/submit.h) as it arrives, so its accepted
 * readings are committed before the next batch is read; the outcomes
 * accumulate for the summary. A batch that does not decode, or a call
 * refused whole (CL_EUNAUTH, CL_EDENIED, CL_EUNAVAILABLE), ends the call
 * with its status; what earlier batches committed stays committed, and the
 * "clinlog-submitted-readings" trailer says how many readings had
 * outcomes. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/device/submit.h"
#include "adapters/grpc/server_int.h"
#include "adapters/grpc/services.h"
#include "clinlog/v1/device.pb-c.h"

/* Readings one call may submit: its summary must fit a client's default
 * 4 MiB message limit (an accepted reading's outcome is ~12 bytes). */
#define DEV_STREAM_MAX 200000

typedef struct dstream {
  Clinlog__V1__DeviceReadingSummary sum;
  Clinlog__V1__DeviceReadingOutcome *outs; /* cap of them; sum.outcomes points into it */
  size_t cap;
} dstream;

static void dstream_free(void *p) {
  dstream *d = p;
  for (size_t i = 0; i < d->sum.n_outcomes; i++) {
    Clinlog__V1__DeviceReadingOutcome *o = d->sum.outcomes[i];
    if (o->device_id != protobuf_c_empty_string)
      free(o->device_id);
    if (o->reading_id != protobuf_c_empty_string)
      free(o->reading_id);
    if (o->field != protobuf_c_empty_string)
      free(o->field);
    if (o->reason != protobuf_c_empty_string)
      free(o->reason);
  }
  free(d->sum.outcomes);
  free(d->outs);
  free(d);
}

static char *dup_or_empty(const char *s) {
  char *r = s && *s ? strdup(s) : NULL;
  return r ? r : (char *)protobuf_c_empty_string;
}

/* Room for n more outcomes. 0, or -1 when out of memory. */
static int reserve(dstream *d, size_t n) {
  size_t need = d->sum.n_outcomes + n;
  if (need <= d->cap)
    return 0;
  size_t cap = d->cap ? d->cap : 256;
  while (cap < need)
    cap *= 2;
  Clinlog__V1__DeviceReadingOutcome *outs = realloc(d->outs, cap * sizeof *outs);
  if (!outs)
    return -1;
  d->outs = outs;
  Clinlog__V1__DeviceReadingOutcome **ptrs = realloc(d->sum.outcomes, cap * sizeof *ptrs);
  if (!ptrs)
    return -1;
  d->sum.outcomes = ptrs;
  for (size_t i = 0; i < d->sum.n_outcomes; i++) /* outs may have moved */
    ptrs[i] = &outs[i];
  d->cap = cap;
  return 0;
}

static void add(dstream *d, const cl_dev_outcome *o) {
  size_t i = d->sum.n_outcomes++;
  Clinlog__V1__DeviceReadingOutcome *p = &d->outs[i];
  clinlog__v1__device_reading_outcome__init(p);
  d->sum.outcomes[i] = p;
  p->index = i;
  p->status = (char *)cl_dev_status_name(o->status);
  if (o->status == CL_DEV_ACCEPTED || o->status == CL_DEV_DUPLICATE) {
    p->seq = o->seq;
    p->events = (uint32_t)o->events;
    if (o->status == CL_DEV_ACCEPTED)
      d->sum.accepted++;
    else
      d->sum.duplicates++;
    return;
  }
  p->device_id = dup_or_empty(o->device_id);
  p->reading_id = dup_or_empty(o->reading_id);
  p->field = dup_or_empty(o->field);
  p->reason = dup_or_empty(o->reason);
  p->error = (char *)cl_errname(o->code);
  if (o->status == CL_DEV_REFUSED)
    d->sum.refused++;
  else
    d->sum.failed++;
}

static void end_with(srv_call *c, const cl_err *err) {
  dstream *d = c->st;
  char n[32];
  snprintf(n, sizeof n, "%zu", d->sum.n_outcomes);
  srv_trailer(c, "clinlog-submitted-readings", n);
  srv_finish_err(c, err);
}

static void ds_step(srv_call *c, int ok) {
  dstream *d = c->st;
  if (!ok || srv_cancelled(c)) {
    srv_finish(c, GRPC_STATUS_CANCELLED, "cancelled", NULL);
    return;
  }
  if (!c->recv) { /* the client closed its side: the summary */
    srv_finish(c, GRPC_STATUS_OK, "", &d->sum.base);
    return;
  }
  cl_err err;
  cl_err_clear(&err);
  /* strings checked on the wire: a reading with a NUL byte would be read
   * as its prefix */
  Clinlog__V1__DeviceReadingBatch *b = (Clinlog__V1__DeviceReadingBatch *)cl_grpc_unpack_checked(
      c->recv, &clinlog__v1__device_reading_batch__descriptor, &err);
  if (!b) {
    cl_err_prefix(&err, "the batch after %zu readings", d->sum.n_outcomes);
    end_with(c, &err);
    return;
  }
  size_t n = b->n_readings;
  cl_dev_line *lines = calloc(n ? n : 1, sizeof *lines);
  cl_dev_outcome *outs = calloc(n ? n : 1, sizeof *outs);
  int code = 0;
  if (d->sum.n_outcomes + n > DEV_STREAM_MAX)
    code = cl_err_set(&err, CL_ETOOBIG, "more than %d readings in one call: open another",
                      DEV_STREAM_MAX);
  else if (!lines || !outs || reserve(d, n))
    code = cl_err_set(&err, CL_ENOMEM, "out of memory");
  for (size_t i = 0; !code && i < n; i++)
    lines[i] = (cl_dev_line){b->readings[i], strlen(b->readings[i])};
  if (!code)
    code = cl_dev_submit(srv_svc(c), &c->rctx, lines, n, NULL, outs, &err);
  for (size_t i = 0; !code && i < n; i++)
    add(d, &outs[i]);
  free(lines);
  free(outs);
  clinlog__v1__device_reading_batch__free_unpacked(b, NULL);
  if (code) {
    end_with(c, &err);
    return;
  }
  if (srv_shutting_down(c)) {
    cl_err_set(&err, CL_EUNAVAILABLE, "server is shutting down; readings so far are committed");
    end_with(c, &err);
    return;
  }
  srv_recv(c, ds_step);
}

static void svc_submit_readings(srv_call *c, int ok) {
  (void)ok;
  if (srv_shutting_down(c)) {
    srv_finish(c, GRPC_STATUS_UNAVAILABLE, "server is shutting down", NULL);
    return;
  }
  dstream *d = calloc(1, sizeof *d);
  if (!d) {
    srv_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
    return;
  }
  clinlog__v1__device_reading_summary__init(&d->sum);
  c->st = d;
  c->st_free = dstream_free;
  srv_recv(c, ds_step);
}

static const cl_grpc_method_def DEVICE_METHODS[] = {
    {M_DEVICE_SUBMIT, NULL, svc_submit_readings},
};

const cl_grpc_service cl_grpc_devices_service = {"clinlog.v1.Devices", DEVICE_METHODS,
                                                 sizeof DEVICE_METHODS / sizeof DEVICE_METHODS[0],
                                                 NULL, NULL};

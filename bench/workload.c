/* See workload.h. */
#include "bench/workload.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "clinlog/v1/event.pb-c.h"

static const char *NOTE =
    "Patient reports mild headache since morning; BP 128/82 mmHg, HR 76/min, "
    "SpO2 98% on room air. Advised fluids, paracetamol 500 mg PRN. Recheck in 4 h.";

void bench_make_event(ProtobufCBinaryData *out, unsigned *seed) {
  uint8_t id[16];
  randombytes_buf(id, 16);
  char stream[32];
  snprintf(stream, sizeof stream, "patient-%u", rand_r(seed) % 5000);
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  Clinlog__V1__RecordedBy by = CLINLOG__V1__RECORDED_BY__INIT;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  Clinlog__V1__ObservationRecorded obs = CLINLOG__V1__OBSERVATION_RECORDED__INIT;
  Clinlog__V1__CodeableConcept cc = CLINLOG__V1__CODEABLE_CONCEPT__INIT;
  Clinlog__V1__Code code = CLINLOG__V1__CODE__INIT, *codes[1] = {&code};
  Clinlog__V1__Quantity q = CLINLOG__V1__QUANTITY__INIT;
  code.system = "http://loinc.org";
  code.code = "8867-4";
  code.display = "Heart rate";
  cc.n_coding = 1;
  cc.coding = codes;
  q.value = "76";
  q.unit = "/min";
  ts.seconds = 1793000000 + rand_r(seed) % 1000000;
  by.principal_id = "admin";
  by.role = "nurse";
  ev.event_id = (ProtobufCBinaryData){16, id};
  ev.stream = stream;
  ev.occurred_at = &ts;
  ev.recorded_by = &by;
  ev.source_system = "EPIC-ADT";
  ev.body_case = CLINLOG__V1__EVENT__BODY_OBSERVATION_RECORDED;
  ev.observation_recorded = &obs;
  obs.observation_id = "obs-000001";
  obs.code = &cc;
  obs.value_case = CLINLOG__V1__OBSERVATION_RECORDED__VALUE_QUANTITY;
  obs.quantity = &q;
  obs.note = (char *)NOTE;
  out->len = clinlog__v1__event__get_packed_size(&ev);
  out->data = malloc(out->len);
  if (!out->data)
    abort();
  clinlog__v1__event__pack(&ev, out->data);
}

double bench_mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void bench_rmrf(const char *p) {
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", p);
  if (system(cmd) != 0)
    fprintf(stderr, "warning: could not remove %s\n", p);
}

int bench_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

double bench_median(double *v, size_t n) {
  qsort(v, n, sizeof *v, bench_cmp_double);
  return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* adapters/device/reading.c: a home-device reading line becomes the exact
 * DeviceReadingRecorded / DeviceStatusReported events it means (stream,
 * ids, code and system, value, unit, components, times, status), mapping
 * is deterministic (a resend is the same bytes), and every refusal names
 * its member with nothing produced: bad JSON, unknown and missing members,
 * ids, times (format and the future skew), codes, values, UCUM units and
 * their dimensions, status, an unregistered device, a device assigned to
 * another patient or none, a caller that may not speak for the device. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "adapters/device/reading.h"
#include "clinlog/v1/event.pb-c.h"
#include "store/event.h"

TestSuite(device_reading, .timeout = 60);

/* 2026-12-05T06:00:00Z */
#define NOW_MS 1796450400000LL

/* The registry of these tests: bp-1 and glu-1 assigned to P1 under
 * principal dev-bp-1; loose-1 unassigned; broken-1 makes the lookup fail. */
static int lookup(void *ctx, const char *id, const char *patient, cl_dev_registration *out,
                  cl_err *err) {
  int *calls = ctx;
  if (calls)
    (*calls)++;
  if (!strcmp(id, "broken-1"))
    return cl_err_set(err, CL_EIO, "registry unavailable");
  if (!strcmp(id, "loose-1"))
    return 0;
  if (strcmp(id, "bp-1") && strcmp(id, "glu-1"))
    return CL_ENOTFOUND;
  out->assigned = !strcmp(patient, "P1") ? CL_DEV_TO_PATIENT : CL_DEV_TO_OTHER;
  snprintf(out->principal_id, sizeof out->principal_id, "dev-bp-1");
  return 0;
}

static cl_dev_opts opts(int *calls) {
  return (cl_dev_opts){
      .principal_id = "dev-bp-1", .now_ms = NOW_MS, .lookup = lookup, .lookup_ctx = calls};
}

static Clinlog__V1__Event *decode(const cl_dev_event *d) {
  Clinlog__V1__Event *e;
  cl_err err;
  cr_assert_eq(cl_event_decode(d->bytes, d->len, &e, &err), 0, "decode: %s", err.msg);
  return e;
}

#define BP                                                                                         \
  "{\"device\":\"bp-1\",\"patient\":\"P1\",\"reading\":\"17\",\"time\":\"2026-12-05T05:40:00Z\","  \
  "\"code\":\"85354-9\",\"components\":[{\"code\":\"8480-6\",\"value\":128,\"unit\":\"mm[Hg]\"},"  \
  "{\"code\":\"8462-4\",\"value\":82,\"unit\":\"mm[Hg]\"}],"                                       \
  "\"status\":{\"battery\":76,\"signal\":-67,\"connectivity\":\"online\"}}\n"

Test(device_reading, blood_pressure_with_status) {
  cl_dev_opts o = opts(NULL);
  cl_dev_mapped m;
  char field[64];
  cl_err err;
  cr_assert_eq(cl_dev_map_line(BP, strlen(BP), &o, &m, field, &err), 0, "%s", err.msg);
  cr_assert_eq(m.n, 2);
  cr_assert_str_eq(m.stream, "patient-P1");
  cr_assert_eq(m.measured_ms, NOW_MS - 20 * 60 * 1000);
  Clinlog__V1__Event *e = decode(&m.ev[0]);
  cr_assert_eq(e->body_case, CLINLOG__V1__EVENT__BODY_DEVICE_READING_RECORDED);
  cr_assert_str_eq(e->stream, "patient-P1");
  cr_assert_str_eq(e->recorded_by->principal_id, "dev-bp-1");
  cr_assert_str_eq(e->recorded_by->role, "device");
  cr_assert_str_eq(e->recorded_by->device_id, "bp-1");
  cr_assert_eq(e->occurred_at->seconds, (NOW_MS - 20 * 60 * 1000) / 1000);
  const Clinlog__V1__DeviceReadingRecorded *r = e->device_reading_recorded;
  cr_assert_str_eq(r->device_id, "bp-1");
  cr_assert_str_eq(r->reading_id, "17");
  cr_assert_str_eq(r->code->coding[0]->system, "http://loinc.org");
  cr_assert_str_eq(r->code->coding[0]->code, "85354-9");
  cr_assert_null(r->value);
  cr_assert_eq(r->n_components, 2);
  cr_assert_str_eq(r->components[0]->code->code, "8480-6");
  cr_assert_str_eq(r->components[0]->value->value, "128");
  cr_assert_str_eq(r->components[1]->value->value, "82");
  cr_assert_str_eq(r->components[1]->value->unit, "mm[Hg]");
  cr_assert_eq(r->status, CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_FINAL);
  uint8_t id[16];
  cl_dev_event_id("bp-1", "17", 0, id);
  cr_assert_arr_eq(e->event_id.data, id, 16);
  clinlog__v1__event__free_unpacked(e, NULL);

  e = decode(&m.ev[1]);
  cr_assert_eq(e->body_case, CLINLOG__V1__EVENT__BODY_DEVICE_STATUS_REPORTED);
  const Clinlog__V1__DeviceStatusReported *s = e->device_status_reported;
  cr_assert_str_eq(s->battery->value, "76");
  cr_assert_str_eq(s->battery->unit, "%");
  cr_assert_str_eq(s->signal_strength->value, "-67");
  cr_assert_str_eq(s->signal_strength->unit, "dB[mW]");
  cr_assert_eq(s->connectivity, CLINLOG__V1__DEVICE_CONNECTIVITY__DEVICE_CONNECTIVITY_ONLINE);
  cl_dev_event_id("bp-1", "17", 1, id);
  cr_assert_arr_eq(e->event_id.data, id, 16);
  clinlog__v1__event__free_unpacked(e, NULL);

  /* a resend maps to the same bytes */
  cl_dev_mapped m2;
  cr_assert_eq(cl_dev_map_line(BP, strlen(BP), &o, &m2, field, &err), 0);
  for (size_t i = 0; i < 2; i++) {
    cr_assert_eq(m.ev[i].len, m2.ev[i].len);
    cr_assert_arr_eq(m.ev[i].bytes, m2.ev[i].bytes, m.ev[i].len);
  }
  cl_dev_mapped_clear(&m);
  cl_dev_mapped_clear(&m2);
  cr_assert_eq(m.n, 0);
}

Test(device_reading, single_value_mdc_integer_reading_and_gateway) {
  const char *line = "{\"device\":\"glu-1\",\"patient\":\"P1\",\"reading\":42,"
                     "\"time\":\"2026-12-05T07:04:00+01:00\",\"system\":\"mdc\","
                     "\"code\":\"160184\",\"display\":\"Glucose\",\"value\":6.2,"
                     "\"unit\":\"mmol/L\",\"received\":\"2026-12-05T06:00:00Z\"}";
  cl_dev_opts o = opts(NULL);
  o.principal_id = "gw-home-3";
  o.gateway = 1;
  o.role = "integration";
  cl_dev_mapped m;
  cl_err err;
  cr_assert_eq(cl_dev_map_line(line, strlen(line), &o, &m, NULL, &err), 0, "%s", err.msg);
  cr_assert_eq(m.n, 1);
  cr_assert_str_eq(m.reading_id, "42");
  Clinlog__V1__Event *e = decode(&m.ev[0]);
  const Clinlog__V1__DeviceReadingRecorded *r = e->device_reading_recorded;
  cr_assert_str_eq(r->code->coding[0]->system, "urn:iso:std:iso:11073:10101");
  cr_assert_str_eq(r->code->coding[0]->display, "Glucose");
  cr_assert_str_eq(r->value->value, "6.2");
  cr_assert_str_eq(r->value->unit, "mmol/L");
  cr_assert_eq(r->measured_at->seconds, (NOW_MS + 4 * 60 * 1000) / 1000);
  cr_assert_eq(r->received_at->seconds, NOW_MS / 1000);
  cr_assert_str_eq(e->recorded_by->principal_id, "gw-home-3");
  cr_assert_str_eq(e->recorded_by->role, "integration");
  clinlog__v1__event__free_unpacked(e, NULL);
  cl_dev_mapped_clear(&m);
  /* the node signs on behalf of the caller */
  o.signer = "$log";
  o.signer_role = "log";
  cr_assert_eq(cl_dev_map_line(line, strlen(line), &o, &m, NULL, &err), 0, "%s", err.msg);
  e = decode(&m.ev[0]);
  cr_assert_str_eq(e->recorded_by->principal_id, "$log");
  cr_assert_str_eq(e->recorded_by->role, "log");
  cr_assert_str_eq(e->recorded_by->on_behalf_of, "gw-home-3");
  cr_assert_str_eq(e->recorded_by->device_id, "glu-1");
  clinlog__v1__event__free_unpacked(e, NULL);
  cl_dev_mapped_clear(&m);
}

Test(device_reading, status_only_and_late_readings) {
  const char *line = "{\"device\":\"bp-1\",\"patient\":\"P1\",\"reading\":\"s-9\","
                     "\"time\":\"2026-11-01T00:00:00Z\",\"status\":{\"battery\":12.5,"
                     "\"connectivity\":\"intermittent\"}}";
  cl_dev_opts o = opts(NULL);
  cl_dev_mapped m;
  cl_err err;
  cr_assert_eq(cl_dev_map_line(line, strlen(line), &o, &m, NULL, &err), 0, "%s", err.msg);
  cr_assert_eq(m.n, 1);
  cr_assert_eq(m.ev[0].type, 702);
  Clinlog__V1__Event *e = decode(&m.ev[0]);
  cr_assert_str_eq(e->device_status_reported->battery->value, "12.5");
  cr_assert_null(e->device_status_reported->signal_strength);
  clinlog__v1__event__free_unpacked(e, NULL);
  cl_dev_mapped_clear(&m);
}

/* Each refused line: the member it names and a word of the reason. */
static void refused(const char *line, int code, const char *field, const char *why, int lookups) {
  cl_dev_opts o = opts(NULL);
  int calls = 0;
  o.lookup_ctx = &calls;
  cl_dev_mapped m;
  char f[64];
  cl_err err;
  int rc = cl_dev_map_line(line, strlen(line), &o, &m, f, &err);
  cr_assert_eq(rc, code, "%s: rc %d (%s)", line, rc, err.msg);
  cr_assert_str_eq(f, field, "%s: field '%s' (%s)", line, f, err.msg);
  cr_assert(strstr(err.msg, why), "%s: '%s' lacks '%s'", line, err.msg, why);
  cr_assert(!strncmp(err.msg, field, strlen(field)), "message starts with the member: %s", err.msg);
  cr_assert_eq(m.n, 0);
  cr_assert_eq(calls, lookups, "%s: %d lookups", line, calls);
}

#define HEAD                                                                                       \
  "{\"device\":\"bp-1\",\"patient\":\"P1\",\"reading\":\"1\",\"time\":\"2026-12-05T05:00:00Z\","
#define HR HEAD "\"code\":\"8867-4\","

Test(device_reading, refusals_of_the_line) {
  refused("{\"device\":", CL_EMALFORMED, "", "not JSON", 0);
  refused("[1,2]", CL_EMALFORMED, "", "JSON object", 0);
  refused("{\"device\":\"a\",\"device\":\"b\"}", CL_EMALFORMED, "", "not JSON", 0);
  refused(HR "\"value\":70,\"unit\":\"/min\",\"untis\":1}", CL_EMALFORMED, "untis",
          "unknown member", 0);
  refused("{\"patient\":\"P1\",\"reading\":\"1\",\"time\":\"2026-12-05T05:00:00Z\"}", CL_EMALFORMED,
          "device", "required", 0);
  refused("{\"device\":\"bp-1\",\"reading\":\"1\",\"time\":\"2026-12-05T05:00:00Z\"}",
          CL_EMALFORMED, "patient", "required", 0);
  refused("{\"device\":\"bp-1\",\"patient\":\"P1\",\"time\":\"2026-12-05T05:00:00Z\"}",
          CL_EMALFORMED, "reading", "required", 0);
  refused("{\"device\":\"bp 1\",\"patient\":\"P1\",\"reading\":\"1\"}", CL_EMALFORMED, "device",
          "letters, digits", 0);
  refused("{\"device\":7,\"patient\":\"P1\",\"reading\":\"1\"}", CL_EMALFORMED, "device", "string",
          0);
  refused("{\"device\":\"bp-1\",\"patient\":\"P1\",\"reading\":\"1\",\"code\":\"8867-4\"}",
          CL_EMALFORMED, "time", "required", 0);
}

Test(device_reading, refusals_of_times) {
  refused("{\"device\":\"bp-1\",\"patient\":\"P1\",\"reading\":\"1\",\"time\":\"2026-12-05\","
          "\"status\":{\"battery\":5}}",
          CL_EMALFORMED, "time", "RFC 3339", 0);
  refused("{\"device\":\"bp-1\",\"patient\":\"P1\",\"reading\":\"1\",\"time\":"
          "\"2026-12-05T05:00:00\",\"status\":{\"battery\":5}}",
          CL_EMALFORMED, "time", "zone", 0);
  refused("{\"device\":\"bp-1\",\"patient\":\"P1\",\"reading\":\"1\",\"time\":"
          "\"2026-13-05T05:00:00Z\",\"status\":{\"battery\":5}}",
          CL_EMALFORMED, "time", "RFC 3339", 0);
  refused("{\"device\":\"bp-1\",\"patient\":\"P1\",\"reading\":\"1\",\"time\":"
          "\"2026-12-05T06:06:00Z\",\"status\":{\"battery\":5}}",
          CL_EMALFORMED, "time", "360 s ahead", 0);
  refused(HR "\"value\":70,\"unit\":\"/min\",\"received\":\"yesterday\"}", CL_EMALFORMED,
          "received", "RFC 3339", 0);
  /* within the skew: kept; a configured skew refuses it */
  const char *soon = "{\"device\":\"bp-1\",\"patient\":\"P1\",\"reading\":\"1\",\"time\":"
                     "\"2026-12-05T06:04:00Z\",\"status\":{\"battery\":5}}";
  cl_dev_opts o = opts(NULL);
  cl_dev_mapped m;
  cl_err err;
  cr_assert_eq(cl_dev_map_line(soon, strlen(soon), &o, &m, NULL, &err), 0, "%s", err.msg);
  cl_dev_mapped_clear(&m);
  o.max_skew_ms = 60 * 1000;
  cr_assert_eq(cl_dev_map_line(soon, strlen(soon), &o, &m, NULL, &err), CL_EMALFORMED);
  cr_assert(strstr(err.msg, "at most 60 s"), "%s", err.msg);
}

Test(device_reading, refusals_of_values_and_units) {
  refused(HR "\"value\":70,\"unit\":\"bpm\"}", CL_EMALFORMED, "unit", "not a UCUM unit", 0);
  refused(HR "\"value\":70,\"unit\":\"kg\"}", CL_EMALFORMED, "unit", "unit of mass", 0);
  refused(HR "\"value\":\"70\",\"unit\":\"/min\"}", CL_EMALFORMED, "value", "finite number", 0);
  refused(HR "\"unit\":\"/min\"}", CL_EMALFORMED, "value", "required", 0);
  refused(HR "\"value\":70}", CL_EMALFORMED, "unit", "required", 0);
  refused(HEAD "\"value\":70,\"unit\":\"/min\"}", CL_EMALFORMED, "code", "required", 0);
  refused(HR "\"system\":\"snomed\",\"value\":70,\"unit\":\"/min\"}", CL_EMALFORMED, "system",
          "loinc or mdc", 0);
  refused(HEAD "\"system\":\"mdc\",\"code\":\"150020\",\"value\":12,\"unit\":\"mmol/L\"}",
          CL_EMALFORMED, "unit", "measured as pressure", 0);
  refused(HEAD "\"code\":\"85354-9\",\"components\":[]}", CL_EMALFORMED, "components", "non-empty",
          0);
  refused(HEAD "\"code\":\"85354-9\",\"components\":[{\"code\":\"8480-6\",\"value\":120,"
               "\"unit\":\"mm[Hg]\"},{\"code\":\"8462-4\",\"value\":80,\"unit\":\"%\"}]}",
          CL_EMALFORMED, "components[1].unit", "unit of fraction", 0);
  refused(HEAD "\"code\":\"85354-9\",\"components\":[{\"value\":120,\"unit\":\"mm[Hg]\"}]}",
          CL_EMALFORMED, "components[0].code", "required", 0);
  refused(HEAD "\"code\":\"85354-9\",\"components\":[{\"code\":\"8480-6\",\"value\":1,"
               "\"unit\":\"mm[Hg]\",\"flag\":1}]}",
          CL_EMALFORMED, "components[0]", "unknown member", 0);
  refused(HEAD "\"code\":\"85354-9\",\"value\":1,\"unit\":\"mm[Hg]\",\"components\":[{\"code\":"
               "\"8480-6\",\"value\":1,\"unit\":\"mm[Hg]\"}]}",
          CL_EMALFORMED, "components", "not both", 0);
  refused(HEAD "\"status\":{\"battery\":101}}", CL_EMALFORMED, "status.battery", "0 to 100", 0);
  refused(HEAD "\"status\":{\"signal\":\"weak\"}}", CL_EMALFORMED, "status.signal", "dBm", 0);
  refused(HEAD "\"status\":{\"connectivity\":\"wifi\"}}", CL_EMALFORMED, "status.connectivity",
          "online", 0);
  refused(HEAD "\"status\":{\"charge\":1}}", CL_EMALFORMED, "status", "unknown member", 0);
  refused(HEAD "\"status\":{}}", CL_EMALFORMED, "status", "object", 0);
  refused(HEAD "\"display\":\"x\"}", CL_EMALFORMED, "code", "required", 0);
  refused("{\"device\":\"bp-1\",\"patient\":\"P1\",\"reading\":\"1\",\"time\":"
          "\"2026-12-05T05:00:00Z\"}",
          CL_EMALFORMED, "", "a code", 0);
}

Test(device_reading, refusals_of_the_registry) {
  refused("{\"device\":\"bp-9\",\"patient\":\"P1\",\"reading\":\"1\",\"time\":"
          "\"2026-12-05T05:00:00Z\",\"status\":{\"battery\":5}}",
          CL_EDENIED, "device", "not a registered device", 1);
  refused("{\"device\":\"bp-1\",\"patient\":\"P2\",\"reading\":\"1\",\"time\":"
          "\"2026-12-05T05:00:00Z\",\"status\":{\"battery\":5}}",
          CL_EDENIED, "patient", "assigned to another patient", 1);
  refused("{\"device\":\"loose-1\",\"patient\":\"P1\",\"reading\":\"1\",\"time\":"
          "\"2026-12-05T05:00:00Z\",\"status\":{\"battery\":5}}",
          CL_EDENIED, "patient", "not assigned", 1);
  refused("{\"device\":\"broken-1\",\"patient\":\"P1\",\"reading\":\"1\",\"time\":"
          "\"2026-12-05T05:00:00Z\",\"status\":{\"battery\":5}}",
          CL_EIO, "device", "registry unavailable", 1);
  /* another principal, not a gateway */
  const char *line = "{\"device\":\"bp-1\",\"patient\":\"P1\",\"reading\":\"1\",\"time\":"
                     "\"2026-12-05T05:00:00Z\",\"status\":{\"battery\":5}}";
  cl_dev_opts o = opts(NULL);
  o.principal_id = "dev-other";
  cl_dev_mapped m;
  char f[64];
  cl_err err;
  cr_assert_eq(cl_dev_map_line(line, strlen(line), &o, &m, f, &err), CL_EDENIED);
  cr_assert_str_eq(f, "device");
  cr_assert(strstr(err.msg, "dev-other may not submit readings of device bp-1"), "%s", err.msg);
  cr_assert_eq(m.n, 0);
}

Test(device_reading, units_table) {
  cr_assert_str_eq(cl_dev_unit_dimension("mm[Hg]"), "pressure");
  cr_assert_str_eq(cl_dev_unit_dimension("[lb_av]"), "mass");
  cr_assert_null(cl_dev_unit_dimension("mmHg"));
  cr_assert_null(cl_dev_unit_dimension(NULL));
}

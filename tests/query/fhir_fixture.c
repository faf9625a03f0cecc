/* Fixtures of the fhir projection's tests (fhir_fixture.h). */
#include "tests/query/fhir_fixture.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/pbjson/pbjson.h"
#include "query/fhir/fhir.h"
#include "store/event.h"
#include "tests/support/testutil.h"

#define CASES FX_CASES

static int64_t in_ms(int64_t ms) { return cl_feed_now_ms() + ms; }

/* Appends one Event given as proto3 JSON (recorded by "admin", the test
 * log's signer); returns its seq. */
uint64_t fx_append_json(cl_log *log, const cl_signer *admin, json_t *j) {
  ProtobufCMessage *msg;
  cl_err err = {0};
  cr_assert_eq(cl_pbjson_from_json(&clinlog__v1__event__descriptor, j, &msg, &err), 0, "%s",
               err.msg);
  Clinlog__V1__Event *ev = (Clinlog__V1__Event *)msg;
  static Clinlog__V1__RecordedBy rb = CLINLOG__V1__RECORDED_BY__INIT;
  Clinlog__V1__RecordedBy *orig = ev->recorded_by;
  rb.principal_id = "admin";
  rb.role = orig && orig->role ? orig->role : "";
  rb.on_behalf_of = orig && orig->on_behalf_of ? orig->on_behalf_of : "";
  rb.device_id = orig && orig->device_id ? orig->device_id : "";
  ev->recorded_by = &rb;
  size_t len;
  uint8_t *buf = cl_test_pack_event(ev, &len);
  ev->recorded_by = orig;
  protobuf_c_message_free_unpacked(msg, NULL);
  cl_append_result r;
  cr_assert_eq(cl_test_append(log, admin, &buf, &len, 1, 0, NULL, 0, 0, &r, &err), 0, "%s",
               err.msg);
  uint64_t seq = r.seq[0];
  cl_append_result_free(&r);
  free(buf);
  return seq;
}

json_t *fx_load_case(const char *name) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s.events.json", CASES, name);
  json_error_t je;
  json_t *j = json_load_file(path, 0, &je);
  cr_assert_not_null(j, "%s: %s", path, je.text);
  return j;
}

/* Appends every event of every case. */
void fx_append_all_cases(cl_log *log, const cl_signer *admin) {
  DIR *d = opendir(CASES);
  cr_assert_not_null(d);
  char *names[64];
  size_t n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL && n < 64) {
    char *dot = strstr(de->d_name, ".events.json");
    if (dot != NULL && dot[12] == '\0')
      names[n++] = strndup(de->d_name, (size_t)(dot - de->d_name));
  }
  closedir(d);
  for (size_t i = 0; i < n; i++) { /* a fixed order: the log is the same every run */
    for (size_t j = i + 1; j < n; j++)
      if (strcmp(names[j], names[i]) < 0) {
        char *t = names[i];
        names[i] = names[j];
        names[j] = t;
      }
  }
  for (size_t i = 0; i < n; i++) {
    json_t *evs = fx_load_case(names[i]);
    for (size_t k = 0; k < json_array_size(evs); k++)
      fx_append_json(log, admin, json_array_get(evs, k));
    json_decref(evs);
    free(names[i]);
  }
}

cl_runner *fx_start(cl_log *log) {
  cl_runner_options o;
  cl_runner_options_init(&o);
  o.batch_events = 7; /* several batches, boundaries inside the cases */
  o.linger_ms = 0;
  cl_runner *r;
  cl_err err;
  cr_assert_eq(cl_runner_start(log, &cl_fhir_projection, &o, &r, &err), 0, "%s", err.msg);
  return r;
}

void fx_wait_head(cl_runner *r, cl_log *log) {
  uint64_t size;
  cl_log_head(log, &size, NULL);
  cl_err err;
  cr_assert_eq(cl_runner_wait(r, size, in_ms(60000), &err), 0, "%s", err.msg);
  cl_runner_status st;
  cl_runner_get_status(r, &st);
  cr_assert_eq(st.error.code, 0, "fold failed: %s", st.error.msg);
}

/* An event as JSON, from a template with its stream and a fresh id. */
json_t *fx_event(const char *stream, const char *body_json) {
  json_error_t je;
  json_t *body = json_loads(body_json, 0, &je);
  cr_assert_not_null(body, "%s", je.text);
  json_t *ev = fx_copy_event(body, stream, NULL);
  json_decref(body);
  json_object_set_new(ev, "occurredAt", json_string("2026-11-10T10:00:00Z"));
  return ev;
}

json_t *fx_copy_event(json_t *ev, const char *stream, const char *patient_id) {
  json_t *c = json_deep_copy(ev);
  uint8_t id[16];
  randombytes_buf(id, 16);
  char b[32];
  sodium_bin2base64(b, sizeof b, id, 16, sodium_base64_VARIANT_ORIGINAL);
  json_object_set_new(c, "eventId", json_string(b));
  json_object_set_new(c, "stream", json_string(stream));
  json_t *pr = json_object_get(c, "patientRegistered");
  if (pr != NULL && patient_id != NULL)
    json_object_set_new(pr, "patientId", json_string(patient_id));
  return c;
}

void fx_assert_no_canaries(const char *dir) {
  const char *canaries[] = {"Okafor",    "MRN-554433", "123-45-6789",
                            "Cambridge", "enc-5521",   "1984-07-19"};
  for (size_t i = 0; i < sizeof canaries / sizeof canaries[0]; i++)
    cr_assert(!cl_test_tree_contains(dir, canaries[i], strlen(canaries[i])), "%s on disk",
              canaries[i]);
}

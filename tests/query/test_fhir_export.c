/* FHIR Bulk Data export jobs (query/fhir/export.c) over a real log and
 * runner: the export is the snapshot of its kick-off while writers go on,
 * files are cut at max_per_file and read back whole or in pieces, levels
 * (system, Patient) and parameters (_type, _since, strict and lenient),
 * jobs survive a restart (finished, and interrupted mid-walk), cancel
 * deletes, and an erased patient is gone from an export made before.
 * Scans of whole types (the chunks of `cur` merged with a pass over `ver`
 * that exports and searches across patients read) give what lookups of
 * each resource give: snapshots whole and resumed in pieces, with
 * resources changed and erased after them, and for some streams only. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "query/fhir/export.h"
#include "query/fhir/fhir.h"
#include "query/fhir/group.h"
#include "tests/query/fhir_fixture.h"
#include "tests/support/testutil.h"

/* "Type/id" -> versionId of every resource a callback sees. */
typedef struct seen {
  json_t *set;
} seen;

static int see(void *ctx, cl_fhir_resource *r, cl_err *err) {
  (void)err;
  json_t *j = json_loadb(r->json, r->len, 0, NULL);
  cr_assert_not_null(j);
  char key[160];
  snprintf(key, sizeof key, "%s/%s", json_string_value(json_object_get(j, "resourceType")),
           json_string_value(json_object_get(j, "id")));
  json_object_set_new(((seen *)ctx)->set, key, json_integer(r->version));
  json_decref(j);
  cl_fhir_resource_clear(r);
  return 0;
}

/* What a system export of `types` (0: all) must hold: the current state. */
static json_t *current(cl_proj *p, uint64_t types) {
  seen s = {json_object()};
  cl_err err;
  uint8_t next[32];
  for (int t = 1; t < CL_FHIR_NTYPES; t++)
    if (!types || (types >> t) & 1)
      cr_assert_eq(cl_fhir_scan_type(p, t, NULL, 0, see, &s, next, &err), 0, "%s", err.msg);
  return s.set;
}

static int add_tag(void *ctx, cl_fhir_resource *r, cl_err *err) {
  (void)err;
  json_t *tags = ctx;
  char hex[65];
  sodium_bin2hex(hex, sizeof hex, r->tag, 32);
  json_object_set_new(tags, hex, json_true());
  cl_fhir_resource_clear(r);
  return 0;
}

/* What a Patient-level export must hold: every patient's compartment. */
static json_t *compartments(cl_proj *p) {
  json_t *tags = json_object();
  cl_err err;
  uint8_t next[32];
  cr_assert_eq(cl_fhir_scan_type(p, CL_FHIR_Patient, NULL, 0, add_tag, tags, next, &err), 0);
  seen s = {json_object()};
  const char *hex;
  json_t *v;
  json_object_foreach(tags, hex, v) {
    uint8_t tag[32];
    cr_assert_eq(sodium_hex2bin(tag, 32, hex, 64, NULL, NULL, NULL), 0);
    cr_assert_eq(cl_fhir_stream(p, tag, 0, 0, see, &s, &err), 0, "%s", err.msg);
  }
  json_decref(tags);
  return s.set;
}

static void wait_done(cl_fhir_exports *x, const char *id, cl_fhir_export_status *st) {
  cl_err err;
  for (int i = 0; i < 3000; i++) {
    cr_assert_eq(cl_fhir_export_get(x, id, st, &err), 0, "%s", err.msg);
    if (st->state != CL_FHIR_EXPORT_RUNNING)
      break;
    cl_fhir_export_status_clear(st);
    usleep(10000);
  }
  cr_assert_eq(st->state, CL_FHIR_EXPORT_COMPLETE, "export %s: %s", id, st->error);
}

/* Every line of every file of a finished job, "Type/id" -> versionId,
 * read in pieces of about max_bytes. Checks no repeats, at most per_file
 * lines a file and (exact) the manifest's counts. */
static json_t *read_files(cl_fhir_exports *x, const char *id, size_t max_bytes, size_t per_file,
                          int exact) {
  cl_fhir_export_status st;
  wait_done(x, id, &st);
  json_t *got = json_object();
  cl_err err;
  for (size_t f = 0; f < st.nfiles; f++) {
    uint8_t cursor[32];
    int first = 1, more = 1;
    uint64_t lines = 0;
    while (more) {
      char *buf;
      size_t len;
      uint8_t next[32];
      cr_assert_eq(cl_fhir_export_read(x, id, (uint32_t)f + 1, first ? NULL : cursor, max_bytes,
                                       &buf, &len, next, &more, &err),
                   0, "%s", err.msg);
      first = 0;
      memcpy(cursor, next, 32);
      for (char *line = buf, *nl; buf && line < buf + len; line = nl + 1) {
        nl = memchr(line, '\n', (size_t)(buf + len - line));
        cr_assert_not_null(nl, "every line ends with a newline");
        json_error_t je;
        json_t *r = json_loadb(line, (size_t)(nl - line), 0, &je);
        cr_assert_not_null(r, "a line is one resource: %s", je.text);
        const char *type = json_string_value(json_object_get(r, "resourceType"));
        cr_assert_str_eq(type, cl_fhir_type_name(st.files[f].type), "file %zu holds one type",
                         f + 1);
        char key[160];
        snprintf(key, sizeof key, "%s/%s", type, json_string_value(json_object_get(r, "id")));
        cr_assert_null(json_object_get(got, key), "%s exported twice", key);
        json_t *vid = json_object_get(json_object_get(r, "meta"), "versionId");
        json_object_set_new(got, key, json_integer(atoll(json_string_value(vid))));
        json_decref(r);
        lines++;
      }
      free(buf);
    }
    if (exact)
      cr_assert_eq(lines, st.files[f].count, "file %zu: %llu lines, the manifest says %llu", f + 1,
                   (unsigned long long)lines, (unsigned long long)st.files[f].count);
    cr_assert_leq(lines, per_file);
  }
  cl_fhir_export_status_clear(&st);
  return got;
}

static json_t *read_all(cl_fhir_exports *x, const char *id, size_t max_bytes, size_t per_file) {
  return read_files(x, id, max_bytes, per_file, 1);
}

static void assert_same(json_t *want, json_t *got, const char *what) {
  const char *k;
  json_t *v;
  json_object_foreach(want, k, v) {
    json_t *g = json_object_get(got, k);
    cr_assert_not_null(g, "%s: %s missing", what, k);
    cr_assert_eq(json_integer_value(g), json_integer_value(v), "%s: %s version %lld, want %lld",
                 what, k, json_integer_value(g), json_integer_value(v));
  }
  json_object_foreach(got, k, v)
      cr_assert_not_null(json_object_get(want, k), "%s: %s extra", what, k);
}

static char *start_export(cl_fhir_exports *x, int level, const cl_fhir_kv *kv, size_t n, int strict,
                          int want_rc) {
  cl_fhir_export_req rq = {.level = level, .params = kv, .nparams = n, .strict = strict};
  static char id[33];
  static cl_err err;
  int rc = cl_fhir_export_start(x, &rq, id, &err);
  cr_assert_eq(rc, want_rc, "kick-off: %d %s", rc, err.msg);
  return rc ? err.msg : id;
}

static cl_fhir_exports *open_exports(const char *dir, cl_runner *r, cl_log *log) {
  cl_fhir_exports_options o;
  cl_fhir_exports_options_init(&o);
  o.max_per_file = 3;
  cl_fhir_exports *x;
  cl_err err;
  cr_assert_eq(cl_fhir_exports_open(dir, r, log, &o, &x, &err), 0, "%s", err.msg);
  return x;
}

Test(fhir_export, snapshot_files_levels_restart_cancel_erasure, .timeout = 300) {
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("fhirx", &dir, &admin, 1000);
  fx_append_all_cases(log, &admin);
  json_t *evs = fx_load_case("patient"); /* a second patient, erased at the end */
  for (size_t i = 0; i < json_array_size(evs); i++) {
    json_t *ev = fx_copy_event(json_array_get(evs, i), "patient-2002", "2002");
    fx_append_json(log, &admin, ev);
    json_decref(ev);
  }
  cl_runner *r = fx_start(log);
  fx_wait_head(r, log);
  cl_proj *p = cl_runner_proj(r);
  char xdir[4200];
  snprintf(xdir, sizeof xdir, "%s/exports", dir);
  cl_fhir_exports *x = open_exports(xdir, r, log);

  /* the snapshot: what the views hold at kick-off, whatever comes after */
  json_t *want_all = current(p, 0), *want_pat = compartments(p);
  cr_assert_gt(json_object_size(want_all), json_object_size(want_pat),
               "device-only resources are outside the Patient compartments");
  char sys_id[33], pat_id[33];
  snprintf(sys_id, sizeof sys_id, "%s", start_export(x, CL_FHIR_EXPORT_SYSTEM, NULL, 0, 0, 0));
  snprintf(pat_id, sizeof pat_id, "%s", start_export(x, CL_FHIR_EXPORT_PATIENT, NULL, 0, 0, 0));
  /* writers go on: a third patient, and the first one's registration again
   * (a new Patient version) */
  for (size_t i = 0; i < json_array_size(evs); i++) {
    json_t *ev = fx_copy_event(json_array_get(evs, i), "patient-3003", "3003");
    fx_append_json(log, &admin, ev);
    json_decref(ev);
  }
  json_t *again = fx_copy_event(json_array_get(evs, 0), "patient-1001", NULL);
  json_t *names = json_object_get(json_object_get(again, "patientRegistered"), "names");
  json_object_set_new(json_array_get(names, 0), "family", json_string("Okafor-Reyes"));
  fx_append_json(log, &admin, again);
  json_decref(again);
  json_decref(evs);
  fx_wait_head(r, log);
  json_t *now = current(p, 0);
  cr_assert_gt(json_object_size(now), json_object_size(want_all), "the writers added resources");

  json_t *got = read_all(x, sys_id, 1 << 20, 3);
  assert_same(want_all, got, "system export");
  json_decref(got);
  got = read_all(x, sys_id, 1, 3); /* one line per read: the cursor */
  assert_same(want_all, got, "system export read line by line");
  json_decref(got);
  got = read_all(x, pat_id, 700, 3);
  assert_same(want_pat, got, "Patient-level export");
  json_decref(got);

  /* _type and _since */
  cl_fhir_kv types[] = {{"_type", "Patient,Observation"}, {"_outputFormat", "ndjson"}};
  char *id = start_export(x, CL_FHIR_EXPORT_SYSTEM, types, 2, 1, 0);
  got = read_all(x, id, 1 << 20, 3);
  json_t *want = current(p, (1ULL << CL_FHIR_Patient) | (1ULL << CL_FHIR_Observation));
  assert_same(want, got, "_type=Patient,Observation (after the writers)");
  json_decref(want);
  json_decref(got);
  cl_fhir_kv future[] = {{"_since", "2100-01-01T00:00:00Z"}};
  id = start_export(x, CL_FHIR_EXPORT_SYSTEM, future, 1, 1, 0);
  cl_fhir_export_status st;
  wait_done(x, id, &st);
  cr_assert_eq(st.nfiles, 0, "nothing was updated after 2100");
  cl_fhir_export_status_clear(&st);
  cl_fhir_kv past[] = {{"_since", "2000-01-01T00:00:00+02:00"}};
  got = read_all(x, start_export(x, CL_FHIR_EXPORT_SYSTEM, past, 1, 1, 0), 1 << 20, 3);
  assert_same(now, got, "_since 2000: everything");
  json_decref(got);

  /* Group level: a payer's members (group.h); the billing case's payer
   * covers patient 1001, whose compartment the export is */
  json_t *groups;
  cl_err gerr;
  cr_assert_eq(cl_fhir_groups(p, UINT64_MAX, &groups, &gerr), 0, "%s", gerr.msg);
  json_t *g = json_object_get(json_object_get(groups, "payer-60054"), "resource");
  cr_assert_not_null(g, "the Group of payer 60054 (Aetna)");
  cr_assert_str_eq(json_string_value(json_object_get(g, "name")), "Members covered by Aetna");
  cr_assert_eq(json_integer_value(json_object_get(g, "quantity")), 1);
  cr_assert_str_eq(
      json_string_value(json_object_get(
          json_object_get(json_array_get(json_object_get(g, "member"), 0), "entity"), "reference")),
      "Patient/1001");
  json_decref(groups);
  cl_fhir_export_req grq = {.level = CL_FHIR_EXPORT_GROUP, .group = "payer-60054"};
  char gid[33];
  cr_assert_eq(cl_fhir_export_start(x, &grq, gid, &gerr), 0, "%s", gerr.msg);
  uint8_t tag1001[32];
  cr_assert_eq(cl_log_stream_tag(log, "patient-1001", tag1001, &gerr), 0);
  seen one = {json_object()};
  cr_assert_eq(cl_fhir_stream(p, tag1001, 0, 0, see, &one, &gerr), 0, "%s", gerr.msg);
  got = read_all(x, gid, 1 << 20, 3);
  assert_same(one.set, got, "Group/payer-60054/$export: patient 1001's compartment");
  cr_assert_null(json_object_get(got, "Patient/2002"), "not a member");
  json_decref(got);
  json_decref(one.set);

  /* bad requests name what is wrong and start nothing */
  cl_fhir_kv bad_type[] = {{"_type", "Patient,Nonsense"}};
  cr_assert(strstr(start_export(x, CL_FHIR_EXPORT_SYSTEM, bad_type, 1, 0, CL_EINVAL), "Nonsense"));
  cl_fhir_kv bad_group[] = {{"_type", "Group"}};
  cr_assert(strstr(start_export(x, CL_FHIR_EXPORT_SYSTEM, bad_group, 1, 0, CL_EINVAL), "derived"));
  cl_fhir_kv bad_since[] = {{"_since", "yesterday"}};
  cr_assert(strstr(start_export(x, CL_FHIR_EXPORT_SYSTEM, bad_since, 1, 0, CL_EINVAL), "_since"));
  cl_fhir_kv bad_format[] = {{"_outputFormat", "text/csv"}};
  cr_assert(
      strstr(start_export(x, CL_FHIR_EXPORT_SYSTEM, bad_format, 1, 0, CL_EINVAL), "_outputFormat"));
  cl_fhir_kv filter[] = {{"_typeFilter", "Observation?code=1234-5"}};
  cr_assert(strstr(start_export(x, CL_FHIR_EXPORT_SYSTEM, filter, 1, 1, CL_EINVAL), "_typeFilter"),
            "strict: an unsupported parameter fails");
  start_export(x, CL_FHIR_EXPORT_SYSTEM, filter, 1, 0, 0); /* lenient: ignored */
  cl_fhir_export_req group = {.level = CL_FHIR_EXPORT_GROUP, .group = "g1"};
  cl_err err;
  cr_assert_eq(cl_fhir_export_start(x, &group, id, &err), CL_ENOTFOUND);

  /* the manifest */
  char *m;
  size_t mlen;
  cr_assert_eq(cl_fhir_export_manifest(x, sys_id, "https://h/fhir/R4", &m, &mlen, &err), 0, "%s",
               err.msg);
  json_t *mj = json_loadb(m, mlen, 0, NULL);
  cr_assert_not_null(mj);
  cr_assert_str_eq(json_string_value(json_object_get(mj, "request")), "https://h/fhir/R4/$export");
  cr_assert(json_is_false(json_object_get(mj, "requiresAccessToken")));
  json_t *out = json_object_get(mj, "output");
  cr_assert_gt(json_array_size(out), 10);
  char url1[200];
  snprintf(url1, sizeof url1, "https://h/fhir/R4/$export-file/%s/1", sys_id);
  cr_assert_str_eq(json_string_value(json_object_get(json_array_get(out, 0), "url")), url1);
  json_decref(mj);
  free(m);

  /* a restart: the finished jobs come back; one that was still waiting
   * for the views (paused) starts again from the same snapshot */
  cl_runner_pause(r);
  json_t *late = fx_load_case("portal");
  json_t *ev = fx_copy_event(json_array_get(late, 0), "patient-1001", NULL);
  fx_append_json(log, &admin, ev);
  json_decref(ev);
  json_decref(late);
  char *busy = start_export(x, CL_FHIR_EXPORT_SYSTEM, NULL, 0, 0, 0);
  char busy_id[33];
  snprintf(busy_id, sizeof busy_id, "%s", busy);
  cl_err err2;
  int waiting = 0;
  for (int i = 0; i < 500 && !waiting; i++) { /* the walker takes it up and waits */
    cr_assert_eq(cl_fhir_export_get(x, busy_id, &st, &err2), 0);
    waiting = strstr(st.progress, "waiting for the views") != NULL;
    cr_assert_eq(st.state, CL_FHIR_EXPORT_RUNNING);
    cl_fhir_export_status_clear(&st);
    usleep(10000);
  }
  cr_assert(waiting, "the job waits for the paused views");
  cl_fhir_exports_close(x);
  x = open_exports(xdir, r, log);
  cl_runner_resume(r);
  fx_wait_head(r, log);
  json_t *want_busy = current(p, 0);
  cr_assert_gt(json_object_size(want_busy), json_object_size(now), "the late event's resources");
  got = read_all(x, sys_id, 1 << 20, 3);
  assert_same(want_all, got, "the system export after a restart");
  json_decref(got);
  got = read_all(x, pat_id, 1 << 20, 3);
  assert_same(want_pat, got, "the Patient-level export after a restart");
  json_decref(got);
  got = read_all(x, busy_id, 1 << 20, 3);
  assert_same(want_busy, got, "the export interrupted by the restart");
  json_decref(got);

  /* cancel: gone, and its file with it */
  cr_assert_eq(cl_fhir_export_cancel(x, busy_id, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_fhir_export_get(x, busy_id, &st, &err), CL_ENOTFOUND);
  cr_assert_eq(cl_fhir_export_cancel(x, busy_id, &err), CL_ENOTFOUND);
  char path[4300];
  snprintf(path, sizeof path, "%s/%s.json", xdir, busy_id);
  struct stat sb;
  cr_assert_neq(stat(path, &sb), 0, "the job file is deleted");
  snprintf(path, sizeof path, "%s/%s.json", xdir, sys_id);
  cr_assert_eq(stat(path, &sb), 0);
  cr_assert_eq(sb.st_mode & 0777, 0600, "job files are 0600");

  /* erasure reaches exports made before it */
  cl_test_erase(log, &admin, "patient-2002");
  fx_wait_head(r, log);
  got = read_files(x, sys_id, 1 << 20, 3, 0);
  cr_assert_null(json_object_get(got, "Patient/2002"), "an erased patient leaves old exports");
  cr_assert_not_null(json_object_get(got, "Patient/1001"));
  json_decref(got);

  cl_fhir_exports_close(x);
  json_decref(want_all);
  json_decref(want_pat);
  json_decref(want_busy);
  json_decref(now);
  cl_runner_stop(r);
  cl_log_close(log);
  fx_assert_no_canaries(dir);
  cl_signer_free(&admin);
  cl_test_rmtree(dir);
  free(dir);
}

/* ---- scans of whole types (query/fhir/fhir.c): chunks of `cur` merged
 * with one pass over `ver`, checked against lookups one resource at a
 * time (cl_fhir_stream) ---- */

#define NPAT 700 /* over one chunk of a type (512) */

/* Appends to patient-p<i> the event body (JSON). */
static void append_n(cl_log *log, const cl_signer *admin, int i, const char *body) {
  char stream[32];
  snprintf(stream, sizeof stream, "patient-p%d", i);
  json_t *ev = fx_event(stream, body);
  fx_append_json(log, admin, ev);
  json_decref(ev);
}

static void register_n(cl_log *log, const cl_signer *admin, int i) {
  char body[512];
  snprintf(body, sizeof body,
           "{\"patientRegistered\": {\"patientId\": \"p%d\", \"names\": [{\"family\": \"F%d\", "
           "\"given\": [\"G\"]}], \"birthDate\": \"1980-01-01\", \"gender\": "
           "\"ADMINISTRATIVE_GENDER_FEMALE\"}}",
           i, i);
  append_n(log, admin, i, body);
}

static void update_n(cl_log *log, const cl_signer *admin, int i) {
  char body[512];
  snprintf(body, sizeof body,
           "{\"patientDemographicsUpdated\": {\"patientId\": \"p%d\", \"updatedFields\": "
           "[\"names\"], \"names\": [{\"family\": \"Changed%d\"}]}}",
           i, i);
  append_n(log, admin, i, body);
}

/* "Type/id" -> the resource's JSON text, and the keys in the order given. */
typedef struct texts {
  json_t *set;
  json_t *order;
  int stop_after; /* > 0: return 1 after this many */
  int n;
} texts;

static int keep_text(void *ctx, cl_fhir_resource *r, cl_err *err) {
  (void)err;
  texts *t = ctx;
  json_t *j = json_loadb(r->json, r->len, 0, NULL);
  cr_assert_not_null(j);
  char key[160];
  snprintf(key, sizeof key, "%s/%s", json_string_value(json_object_get(j, "resourceType")),
           json_string_value(json_object_get(j, "id")));
  json_decref(j);
  cr_assert_null(json_object_get(t->set, key), "%s given twice", key);
  json_object_set_new(t->set, key, json_stringn(r->json, r->len));
  if (t->order != NULL)
    json_array_append_new(t->order, json_string(key));
  cl_fhir_resource_clear(r);
  return t->stop_after > 0 && ++t->n == t->stop_after ? 1 : 0;
}

/* Every resource of patient p<i>'s stream, by lookups: "Type/id" -> JSON. */
static json_t *by_lookups(cl_log *log, cl_proj *p, int i) {
  texts t = {json_object(), NULL, 0, 0};
  cl_err err;
  char stream[32];
  snprintf(stream, sizeof stream, "patient-p%d", i);
  uint8_t tag[32];
  cr_assert_eq(cl_log_stream_tag(log, stream, tag, &err), 0);
  cr_assert_eq(cl_fhir_stream(p, tag, 0, 0, keep_text, &t, &err), 0, "%s", err.msg);
  return t.set;
}

/* The union of by[from..to) but by[skip]. */
static json_t *union_of(json_t **by, int from, int to, int skip) {
  json_t *u = json_object();
  for (int i = from; i < to; i++)
    if (i != skip)
      json_object_update(u, by[i]);
  return u;
}

static void assert_texts(json_t *want, json_t *got, const char *what) {
  cr_assert_eq(json_object_size(got), json_object_size(want), "%s: %zu resources, want %zu", what,
               json_object_size(got), json_object_size(want));
  const char *k;
  json_t *v;
  json_object_foreach(want, k, v) {
    json_t *g = json_object_get(got, k);
    cr_assert_not_null(g, "%s: %s missing", what, k);
    cr_assert_str_eq(json_string_value(g), json_string_value(v), "%s: %s differs", what, k);
  }
}

/* The snapshot s of the types Patient, Encounter and Provenance, read
 * whole (stopping every `piece` resources and resuming after the last
 * one given when piece > 0). */
static json_t *snapshot_of(cl_proj *p, const cl_fhir_snapshot *s, int piece) {
  static const int types[] = {CL_FHIR_Patient, CL_FHIR_Encounter, CL_FHIR_Provenance};
  texts t = {json_object(), json_array(), piece, 0};
  cl_err err;
  for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
    uint8_t key[32];
    int first = 1;
    for (;;) {
      size_t before = json_array_size(t.order);
      t.n = 0;
      cr_assert_eq(cl_fhir_scan_snapshot(p, types[k], s, first ? NULL : key, NULL, 0, keep_text, &t,
                                         key, &err),
                   0, "%s", err.msg);
      first = 0;
      if (piece == 0 || json_array_size(t.order) - before < (size_t)piece)
        break;
    }
  }
  json_decref(t.order);
  return t.set;
}

Test(fhir_export, type_scans_merge_versions_as_lookups_do, .timeout = 300) {
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("fhirm", &dir, &admin, 1000);
  for (int i = 0; i < NPAT; i++) {
    register_n(log, &admin, i);
    if (i % 3 == 0)
      update_n(log, &admin, i); /* a second version before the snapshot */
  }
  cl_runner *r = fx_start(log);
  fx_wait_head(r, log);
  cl_proj *p = cl_runner_proj(r);
  uint64_t as_of;
  cl_log_head(log, &as_of, NULL);
  json_t *by[NPAT + 40];
  for (int i = 0; i < NPAT; i++)
    by[i] = by_lookups(log, p, i);
  json_t *want = union_of(by, 0, NPAT, -1);
  cr_assert_gt(json_object_size(want), 2 * NPAT, "Patients and their Provenances");

  /* the current state, whole and in pieces, and by scan_type */
  cl_fhir_snapshot s = {.as_of = as_of};
  json_t *got = snapshot_of(p, &s, 0);
  assert_texts(want, got, "snapshot, whole");
  json_decref(got);
  got = snapshot_of(p, &s, 37);
  assert_texts(want, got, "snapshot, in pieces of 37");
  json_decref(got);
  texts t = {json_object(), NULL, 0, 0};
  cl_err err;
  uint8_t next[32];
  cr_assert_eq(cl_fhir_scan_type(p, CL_FHIR_Patient, NULL, 0, keep_text, &t, next, &err), 0, "%s",
               err.msg);
  cr_assert_eq(json_object_size(t.set), NPAT);
  const char *k;
  json_t *v;
  json_object_foreach(t.set, k, v)
      cr_assert_str_eq(json_string_value(v), json_string_value(json_object_get(want, k)), "%s", k);
  json_decref(t.set);

  /* writers: new versions (some resources change after the snapshot), an
   * erasure, new patients */
  for (int i = 0; i < NPAT; i += 5)
    update_n(log, &admin, i);
  cl_test_erase(log, &admin, "patient-p7");
  for (int i = NPAT; i < NPAT + 40; i++)
    register_n(log, &admin, i);
  fx_wait_head(r, log);

  /* the snapshot is still what it was, but for the erased patient */
  json_t *want_then = union_of(by, 0, NPAT, 7);
  cr_assert_lt(json_object_size(want_then), json_object_size(want));
  got = snapshot_of(p, &s, 0);
  assert_texts(want_then, got, "the snapshot after the writers, whole");
  json_decref(got);
  got = snapshot_of(p, &s, 37);
  assert_texts(want_then, got, "the snapshot after the writers, in pieces");
  json_decref(got);

  /* only some streams (a Group's members): lookups, same answer */
  cl_hmap *tags = cl_hmap_new(32, 1);
  for (int i = 10; i < 20; i++) {
    char stream[32];
    snprintf(stream, sizeof stream, "patient-p%d", i);
    uint8_t tag[32];
    cr_assert_eq(cl_log_stream_tag(log, stream, tag, &err), 0);
    cr_assert_not_null(cl_hmap_put(tags, tag, ""));
  }
  json_t *want_some = union_of(by, 10, 20, -1);
  cl_fhir_snapshot some = {.as_of = as_of, .tags = tags};
  got = snapshot_of(p, &some, 0);
  assert_texts(want_some, got, "the snapshot of ten patients");
  json_decref(got);

  /* now: every resource as lookups give it */
  for (int i = 0; i < NPAT; i++)
    json_decref(by[i]);
  for (int i = 0; i < NPAT + 40; i++)
    by[i] = by_lookups(log, p, i);
  json_t *want_now = union_of(by, 0, NPAT + 40, 7);
  cl_fhir_snapshot all = {.as_of = UINT64_MAX};
  got = snapshot_of(p, &all, 0);
  assert_texts(want_now, got, "the current state");
  json_decref(got);

  for (int i = 0; i < NPAT + 40; i++)
    json_decref(by[i]);
  cl_hmap_free(tags);
  json_decref(want);
  json_decref(want_then);
  json_decref(want_some);
  json_decref(want_now);
  cl_runner_stop(r);
  cl_log_close(log);
  cl_signer_free(&admin);
  cl_test_rmtree(dir);
  free(dir);
}

/* ---- a job belongs to the principal that kicked it off ---- */

Test(fhir_export, a_job_is_its_owners_only, .timeout = 120) {
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("fhirown", &dir, &admin, 1000);
  fx_append_all_cases(log, &admin);
  cl_runner *r = fx_start(log);
  fx_wait_head(r, log);
  char xdir[4200];
  snprintf(xdir, sizeof xdir, "%s/exports", dir);
  cl_fhir_exports *x = open_exports(xdir, r, log);
  cl_err err;
  char alice[33], anon[33];
  cl_fhir_export_req rq = {.level = CL_FHIR_EXPORT_SYSTEM, .owner = "alice"};
  cr_assert_eq(cl_fhir_export_start(x, &rq, alice, &err), 0, "%s", err.msg);
  rq.owner = NULL;
  cr_assert_eq(cl_fhir_export_start(x, &rq, anon, &err), 0, "%s", err.msg);
  cl_fhir_export_status st;
  wait_done(x, alice, &st);
  cl_fhir_export_status_clear(&st);
  wait_done(x, anon, &st);
  cl_fhir_export_status_clear(&st);
  for (int pass = 0; pass < 2; pass++) { /* before and after a restart */
    /* the manifest says whether the files take the owner's credentials */
    const char *ids[2] = {alice, anon};
    for (int k = 0; k < 2; k++) {
      char *m;
      size_t ml;
      cr_assert_eq(cl_fhir_export_manifest(x, ids[k], "https://h/fhir/R4", &m, &ml, &err), 0, "%s",
                   err.msg);
      json_t *mj = json_loadb(m, ml, 0, NULL);
      cr_assert_eq(json_is_true(json_object_get(mj, "requiresAccessToken")), k == 0,
                   "requiresAccessToken of %s's job, pass %d", k ? "an anonymous" : "alice", pass);
      json_decref(mj);
      free(m);
    }
    cr_assert_eq(cl_fhir_export_owned(x, alice, "alice", &err), 0, "%s", err.msg);
    cr_assert_eq(cl_fhir_export_owned(x, alice, "bob", &err), CL_ENOTFOUND);
    cr_assert_not_null(strstr(err.msg, "no export job"), "as if none: %s", err.msg);
    cr_assert_eq(cl_fhir_export_owned(x, alice, NULL, &err), CL_ENOTFOUND, "not an anonymous one");
    cr_assert_eq(cl_fhir_export_owned(x, anon, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(cl_fhir_export_owned(x, anon, "", &err), 0, "%s", err.msg);
    cr_assert_eq(cl_fhir_export_owned(x, anon, "alice", &err), CL_ENOTFOUND);
    cr_assert_eq(cl_fhir_export_owned(x, "00000000000000000000000000000000", "alice", &err),
                 CL_ENOTFOUND);
    cl_fhir_exports_close(x);
    x = open_exports(xdir, r, log);
  }
  cl_fhir_exports_close(x);
  cl_runner_stop(r);
  cl_log_close(log);
  cl_signer_free(&admin);
  cl_test_rmtree(dir);
  free(dir);
}

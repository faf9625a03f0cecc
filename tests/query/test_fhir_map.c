/* Event -> FHIR mapping, golden files: every case under
 * tests/query/fhir/cases/<name>.events.json (a JSON array of clinlog.v1.Event
 * in the proto3 JSON form of docs/events.md) is mapped event by event into
 * an in-memory store, and every resource version the mappers put is
 * compared with tests/query/fhir/cases/<name>.fhir.json (a JSON array, in
 * put order, decimals exactly as written). CL_UPDATE_GOLDEN=1 rewrites the
 * golden files instead, and CL_CASE=<name> runs one case only; review them (and run the FHIR
 * validator on them: ctest -R fhir_validate) before committing.
 *
 * The store (meta, versions, Provenance, corrections, erasure) is tested
 * through the real projection in test_fhir.c; this file pins the mapping. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/pbjson/pbjson.h"
#include "query/fhir/fj.h"
#include "query/fhir/map.h"
#include "tests/support/testutil.h"

#define CASES CL_SOURCE_DIR "/tests/query/fhir/cases"

typedef struct mem {
  json_t *latest; /* "Type/id" -> resource */
  json_t *puts;   /* every version put, in order */
} mem;

static int mem_get(cl_fhir_map *m, const char *type, const char *id, json_t **out, cl_err *err) {
  mem *s = m->impl;
  char key[256];
  snprintf(key, sizeof key, "%s/%s", type, id);
  json_t *r = json_object_get(s->latest, key);
  if (r == NULL)
    return cl_err_set(err, CL_ENOTFOUND, "%s not found", key);
  *out = json_deep_copy(r);
  return 0;
}

static int mem_put(cl_fhir_map *m, json_t *res, cl_err *err) {
  mem *s = m->impl;
  const char *type = json_string_value(json_object_get(res, "resourceType"));
  const char *id = json_string_value(json_object_get(res, "id"));
  if (type == NULL || id == NULL || cl_fhir_type_of(type) == 0) {
    json_decref(res);
    return cl_err_set(err, CL_EINVAL, "put without a resourceType of ours and an id");
  }
  if (json_object_get(res, "meta") != NULL) {
    json_decref(res);
    return cl_err_set(err, CL_EINVAL, "%s/%s: a mapper sets no meta", type, id);
  }
  /* the store's writer writes what jansson writes */
  char *ours = fj_dump(res, NULL);
  char *theirs = json_dumps(res, JSON_COMPACT | JSON_PRESERVE_ORDER);
  cr_assert_str_eq(ours, theirs, "fj_dump differs from jansson for %s/%s", type, id);
  free(ours);
  free(theirs);
  char key[256];
  snprintf(key, sizeof key, "%s/%s", type, id);
  json_object_set(s->latest, key, res);
  json_array_append_new(s->puts, res);
  return 0;
}

static const cl_fhir_map_ops mem_ops = {mem_get, mem_put};

static char *stream_patient(const char *stream) {
  return strncmp(stream, "patient-", 8) == 0 ? strdup(stream + 8) : NULL;
}

/* Maps one case; returns the pretty wire form of every put. */
static char *run_case(const char *path) {
  json_error_t jerr;
  json_t *events = json_load_file(path, 0, &jerr);
  cr_assert_not_null(events, "%s:%d: %s", path, jerr.line, jerr.text);
  cr_assert(json_is_array(events), "%s: an array of events", path);
  mem s = {json_object(), json_array()};
  for (size_t i = 0; i < json_array_size(events); i++) {
    ProtobufCMessage *msg;
    cl_err err = {0};
    cr_assert_eq(
        cl_pbjson_from_json(&clinlog__v1__event__descriptor, json_array_get(events, i), &msg, &err),
        0, "%s: event %zu: %s", path, i, err.msg);
    Clinlog__V1__Event *ev = (Clinlog__V1__Event *)msg;
    cr_assert_eq(cl_fhir_sanitize(msg, &err), 0);
    char *pid = stream_patient(ev->stream);
    cl_fhir_map m = {.ev = ev,
                     .patient_id = pid,
                     .stream = ev->stream,
                     .seq = i + 1,
                     .committed_at_ns =
                         ev->occurred_at ? ev->occurred_at->seconds * 1000000000LL : 0,
                     .ops = &mem_ops,
                     .impl = &s};
    cr_assert_eq(cl_fhir_map_event(&m, &err), 0, "%s: event %zu: %s", path, i, err.msg);
    free(pid);
    protobuf_c_message_free_unpacked(msg, NULL);
  }
  char *stored = json_dumps(s.puts, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  cr_assert_not_null(stored);
  size_t n;
  char *wire = fj_finish(stored, strlen(stored), &n);
  free(stored);
  json_decref(s.puts);
  json_decref(s.latest);
  json_decref(events);
  return wire;
}

Test(fhir_map, every_case_matches_its_golden_file) {
  DIR *d = opendir(CASES);
  cr_assert_not_null(d, "%s", CASES);
  int update = getenv("CL_UPDATE_GOLDEN") != NULL, cases = 0;
  const char *only = getenv("CL_CASE");
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    size_t n = strlen(de->d_name);
    const char *suffix = ".events.json";
    if (n <= strlen(suffix) || strcmp(de->d_name + n - strlen(suffix), suffix) != 0)
      continue;
    if (only != NULL &&
        (strlen(only) != n - strlen(suffix) || strncmp(de->d_name, only, strlen(only)) != 0))
      continue;
    char path[1024], golden[1024];
    snprintf(path, sizeof path, "%s/%s", CASES, de->d_name);
    snprintf(golden, sizeof golden, "%s/%.*s.fhir.json", CASES, (int)(n - strlen(suffix)),
             de->d_name);
    char *got = run_case(path);
    cases++;
    if (update) {
      FILE *f = fopen(golden, "w");
      cr_assert_not_null(f, "%s", golden);
      fprintf(f, "%s\n", got);
      fclose(f);
    } else {
      size_t len;
      uint8_t *want = cl_test_read_file(golden, &len);
      cr_assert_not_null(want, "%s missing (CL_UPDATE_GOLDEN=1 writes it)", golden);
      while (len > 0 && want[len - 1] == '\n')
        len--;
      want[len] = '\0';
      if (strcmp((char *)want, got) != 0) {
        /* name the first difference */
        size_t i = 0, line = 1;
        while (want[i] != '\0' && want[i] == (uint8_t)got[i]) {
          if (got[i] == '\n')
            line++;
          i++;
        }
        cr_assert_fail("%s differs from %s at line %zu:\n  want: %.80s\n  got:  %.80s", path,
                       golden, line, (char *)want + i, got + i);
      }
      free(want);
    }
    free(got);
  }
  closedir(d);
  cr_assert_gt(cases, 0, "no cases under %s", CASES);
}

Test(fhir_map, decimals_are_kept_as_written) {
  const char *in[] = {"7.10", "+5", ".5", "007.250", "-0.0", "1e3", "12", "-3.", "1.5E-2"};
  const char *out[] = {"7.10", "5", "0.5", "7.250", "-0.0", "1e3", "12", "-3", "1.5e-2"};
  for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
    json_t *o = json_object();
    fj_set(o, "v", fj_decimal(in[i]));
    char *s = fj_dump(o, NULL);
    char *w = fj_finish(s, strlen(s), NULL);
    char want[64];
    snprintf(want, sizeof want, "{\"v\":%s}", out[i]);
    cr_assert_str_eq(w, want, "%s", in[i]);
    json_error_t e;
    json_t *back = json_loads(w, 0, &e);
    cr_assert_not_null(back, "%s is JSON: %s", w, e.text);
    json_decref(back);
    free(w);
    free(s);
    json_decref(o);
  }
  const char *bad[] = {"", "abc", "1.2.3", "--1", "1e", ".", "NaN", "0x10"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    cr_assert_null(fj_decimal(bad[i]), "%s is not a decimal", bad[i]);
  /* a string that merely starts with the mark is left alone by escaping */
  json_t *o = json_pack("{s:s}", "t", "say \"hi\" \\u0001");
  char *s = fj_dump(o, NULL);
  char *w = fj_finish(s, strlen(s), NULL);
  cr_assert_str_eq(w, s);
  free(w);
  free(s);
  json_decref(o);
}

Test(fhir_map, money_uses_the_currency_minor_units) {
  Clinlog__V1__Money m = CLINLOG__V1__MONEY__INIT;
  const struct {
    int64_t minor;
    const char *cur, *want;
  } cases[] = {{12550, "USD", "{\"value\":125.50,\"currency\":\"USD\"}"},
               {-5, "USD", "{\"value\":-0.05,\"currency\":\"USD\"}"},
               {1200, "JPY", "{\"value\":1200,\"currency\":\"JPY\"}"},
               {1234, "KWD", "{\"value\":1.234,\"currency\":\"KWD\"}"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    m.minor_units = cases[i].minor;
    m.currency = (char *)cases[i].cur;
    json_t *j = fj_money(&m);
    char *s = fj_dump(j, NULL);
    char *w = fj_finish(s, strlen(s), NULL);
    cr_assert_str_eq(w, cases[i].want);
    free(w);
    free(s);
    json_decref(j);
  }
}

Test(fhir_map, logical_ids_are_stable_valid_and_scoped) {
  char a[CL_FHIR_ID_MAX], b[CL_FHIR_ID_MAX], c[CL_FHIR_ID_MAX];
  cl_fhir_id("Patient", NULL, "1001", a);
  cr_assert_str_eq(a, "1001");
  cl_fhir_id("Patient", NULL, "MRN 1/2", a); /* not a FHIR id: derived */
  cr_assert_eq(strlen(a), 32);
  cl_fhir_id("Observation", "1001", "obs-1", a);
  cl_fhir_id("Observation", "1001", "obs-1", b);
  cr_assert_str_eq(a, b, "stable");
  cl_fhir_id("Observation", "1002", "obs-1", c);
  cr_assert_str_neq(a, c, "scoped to the patient");
  cl_fhir_id("Condition", "1001", "obs-1", c);
  cr_assert_str_neq(a, c, "scoped to the type");
  cl_fhir_id("Observation", "1001.obs", "1", b);
  cl_fhir_id("Observation", "1001", "obs.1", c);
  cr_assert_str_neq(b, c, "no ambiguity between the parts");
  for (const char *p = a; *p; p++)
    cr_assert((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'));
}

/* Event strings with control characters (a GS1 separator in a scan, a
 * stray U+0001 that looks like a decimal's mark) come out as valid FHIR
 * strings: their control pictures, never a number, never broken JSON. */
Test(fhir_map, control_characters_become_pictures) {
  json_t *ev = json_pack("{s:s,s:s,s:s,s:{s:s,s:s,s:[{s:s,s:[s]}]}}", "eventId",
                         "AZLxpHw+eyqdQV6PaiscAQ==", "stream", "patient-1001", "occurredAt",
                         "2026-11-02T08:00:00Z", "patientRegistered", "patientId", "1001",
                         "birthDate", "1984-07-19", "names", "family",
                         "\x01"
                         "7.10",
                         "given",
                         "A\x1d"
                         "B\tC");
  ProtobufCMessage *msg;
  cl_err err = {0};
  cr_assert_eq(cl_pbjson_from_json(&clinlog__v1__event__descriptor, ev, &msg, &err), 0, "%s",
               err.msg);
  json_decref(ev);
  cr_assert_eq(cl_fhir_sanitize(msg, &err), 0);
  mem s = {json_object(), json_array()};
  cl_fhir_map m = {.ev = (Clinlog__V1__Event *)msg,
                   .patient_id = "1001",
                   .stream = "patient-1001",
                   .seq = 1,
                   .ops = &mem_ops,
                   .impl = &s};
  cr_assert_eq(cl_fhir_map_event(&m, &err), 0, "%s", err.msg);
  char *stored = fj_dump(json_array_get(s.puts, 0), NULL);
  char *wire = fj_finish(stored, strlen(stored), NULL);
  json_error_t je;
  json_t *p = json_loads(wire, 0, &je);
  cr_assert_not_null(p, "valid JSON: %s", je.text);
  json_t *name = json_array_get(json_object_get(p, "name"), 0);
  cr_assert_str_eq(json_string_value(json_object_get(name, "family")),
                   "\xe2\x90\x81"
                   "7.10",
                   "U+2401, and a string");
  cr_assert_str_eq(json_string_value(json_array_get(json_object_get(name, "given"), 0)),
                   "A\xe2\x90\x9d"
                   "B\tC",
                   "U+241D; a tab stays");
  json_decref(p);
  free(wire);
  free(stored);
  json_decref(s.puts);
  json_decref(s.latest);
  protobuf_c_message_free_unpacked(msg, NULL);
}

/* The store's writer escapes strings as jansson does (the stored form is
 * jansson's compact output, byte for byte): strings of every length up to
 * 40 made of characters JSON escapes (quote, backslash, control
 * characters) and of those it does not (ASCII, DEL, two-, three- and
 * four-byte UTF-8), each at every position of an 8-byte lane. */
Test(fhir_map, strings_are_escaped_as_jansson_escapes_them) {
  static const char *const pieces[] = {
      "a",  "\"",   "\\", "\n",       "\x01",         "\x1f",
      " ",  "\x7f", "/",  "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
      "\t", "\x1b", "Z",  "\b\f\r"};
  const size_t np = sizeof pieces / sizeof pieces[0];
  unsigned seed = 7;
  for (int round = 0; round < 4000; round++) {
    char s[256];
    size_t n = 0, want = (size_t)(round % 41);
    while (n < want) {
      /* mostly plain runs, so escapes land at every offset of a lane */
      const char *p =
          rand_r(&seed) % 4 ? "abcdefgh" + rand_r(&seed) % 8 : pieces[rand_r(&seed) % np];
      size_t pl = strlen(p);
      if (n + pl >= sizeof s)
        break;
      memcpy(s + n, p, pl);
      n += pl;
    }
    json_t *j = json_stringn(s, n);
    cr_assert_not_null(j, "valid UTF-8");
    json_t *o = json_pack("{s:o,s:[o]}", "k", json_incref(j), "a", j);
    char *ours = fj_dump(o, NULL), *theirs = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    cr_assert_str_eq(ours, theirs, "round %d (%zu bytes)", round, n);
    free(ours);
    free(theirs);
    json_decref(o);
  }
}

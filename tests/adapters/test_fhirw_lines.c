/* A DiagnosticReport whose result lines are Observations of the same input
 * (cl_fhirw_opts.line, adapters/fhir/fhirw_report.c), as a clinlog export
 * writes them: the report the views make of a report with contained lines,
 * and its lines as the views serve them, written back, make the same
 * views; a line missing, given twice, or not as the views would make it is
 * refused by its path. (The pairing of lines and reports across the files
 * of a load is `clinlog ingest fhir`'s: tests/interop/test_fhir_write.py.) */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clinlog/v1/event.pb-c.h"
#include "fhirw_fixture.h"

TestSuite(fhirw_lines, .timeout = 60);

#define LOINC "http://loinc.org"
#define P1 "\"subject\":{\"reference\":\"Patient/p1\"}"
#define GLU(v, t)                                                                                  \
  "{\"resourceType\":\"Observation\",\"id\":\"" t "\",\"status\":\"final\",\"code\":{\"coding\":"  \
  "[{\"system\":\"" LOINC "\",\"code\":\"2345-7\"}]},\"effectiveDateTime\":\"2026-03-04T0" t       \
  ":00:00Z\",\"valueQuantity\":{\"value\":" v ",\"unit\":\"mmol/L\",\"system\":\"http://"          \
  "unitsofmeasure.org\",\"code\":\"mmol/L\"}}"

/* A report with its lines contained as a client writes them: the same test
 * twice (the view tells the lines apart by occurrence), a line with a
 * business id of its own, and one stating nothing the report says. */
static const char REPORT[] =
    "{\"resourceType\":\"DiagnosticReport\",\"contained\":[" GLU("5.40", "6") "," GLU(
        "7.90",
        "8") ",{\"resourceType\":\"Observation\",\"id\":\"own\",\"identifier\":[{"
             "\"system\":\"urn:clinlog:id\",\"value\":\"a1c-7\"}],\"status\":\"final\","
             "\"code\":{\"text\":\"HbA1c\"},\"performer\":[{\"display\":\"Ref Lab\"}],"
             "\"valueString\":\"6.1 %\"},{\"resourceType\":\"Observation\",\"id\":\"c\","
             "\"status\":\"final\",\"code\":{\"text\":\"Comment\"},\"valueString\":"
             "\"hemolyzed\"}],\"identifier\":[{\"system\":\"urn:clinlog:id\",\"value\":"
             "\"rep-lines\"}],\"status\":\"final\",\"code\":{\"text\":\"Panel\"}," P1
             ",\"effectiveDateTime\":\"2026-03-04T06:00:00Z\",\"issued\":\"2026-03-04T10:00:00Z\","
             "\"performer\":[{\"display\":\"Main Lab\"}],\"result\":[{\"reference\":\"#6\"},{"
             "\"reference\":\"#8\"},{\"reference\":\"#own\"},{\"reference\":\"#c\"}]}";

/* The lines the test hands the mapper: logical id -> Observation, in
 * cl_fhirw_parse's form. */
static json_t *lines;

static int line_of(void *ctx, const char *ref, const json_t **out) {
  (void)ctx;
  *out = strncmp(ref, "Observation/", 12) ? NULL : json_object_get(lines, ref + 12);
  return *out ? 0 : CL_ENOTFOUND;
}

/* A resource of the views as a client reads it (wire form), parsed back. */
static json_t *as_read(const json_t *res) {
  size_t n, wn;
  char *stored = fj_dump(res, &n), *wire = stored ? fj_finish(stored, n, &wn) : NULL;
  cr_assert_not_null(wire);
  json_t *j = fw_parse(wire);
  free(stored);
  free(wire);
  return j;
}

/* The export of REPORT: *rep the report as the views serve it; `lines`
 * its result Observations. Returns the views of REPORT (returned-owned). */
static json_t *exported(json_t **rep, cl_fhirw_mapped **m) {
  *m = fw_map_ok(REPORT);
  json_t *views = fw_views_of(*m);
  *rep = as_read(json_object_get(views, (*m)->id));
  lines = json_object();
  const char *k;
  json_t *v;
  json_object_foreach(views, k, v) {
    if (strcmp(k, (*m)->id) != 0)
      json_object_set_new(lines, k, as_read(v));
  }
  cr_assert_eq(json_object_size(lines), 4);
  return views;
}

/* rep mapped with the lines of `lines`: 0 with *out, or the refusal. */
static int map_with_lines(const json_t *rep, cl_fhirw_mapped **out, cl_fhirw_error *fe) {
  cl_fhirw_opts o = fw_opts();
  o.line = line_of;
  cl_err err;
  return cl_fhirw_map(rep, NULL, NULL, "", &o, out, fe, &err);
}

Test(fhirw_lines, an_exported_report_with_its_lines_makes_the_same_views) {
  json_t *rep;
  cl_fhirw_mapped *m, *again;
  cl_fhirw_error fe;
  json_t *views = exported(&rep, &m);
  cr_assert_eq(map_with_lines(rep, &again, &fe), 0, "%s: %s", fe.expression, fe.text);
  Clinlog__V1__Event *ev = fw_only_event(again, CLINLOG__V1__EVENT__BODY_LAB_RESULT_REPORTED);
  const Clinlog__V1__LabResultReported *b = ev->lab_result_reported;
  cr_assert_eq(b->n_results, 4, "one event, its lines in result order");
  cr_assert_str_eq(b->results[0]->observation_id, "", "a derived id is not the line's own");
  cr_assert_str_eq(b->results[1]->observation_id, "");
  cr_assert_str_eq(b->results[2]->observation_id, "a1c-7");
  cr_assert_str_eq(b->results[1]->quantity->value, "7.90");
  cr_assert_str_eq(again->id, m->id);
  json_t *views2 = fw_views_of(again);
  cr_assert_eq(json_object_size(views2), 5);
  const char *k;
  json_t *v;
  json_object_foreach(views, k, v) {
    json_t *w = json_object_get(views2, k);
    cr_assert_not_null(w, "%s is not in the views of the export", k);
    cr_assert(json_equal(v, w), "%s differs", k);
  }
  clinlog__v1__event__free_unpacked(ev, NULL);
  cl_fhirw_mapped_free(again);
  cl_fhirw_mapped_free(m);
  json_decref(views2);
  json_decref(views);
  json_decref(rep);
  json_decref(lines);
}

/* The export of REPORT changed by `edit`, refused at expr with code. */
static void refused(void (*edit)(json_t *rep), int status, const char *expr, const char *code) {
  json_t *rep;
  cl_fhirw_mapped *m, *out = NULL;
  cl_fhirw_error fe;
  json_t *views = exported(&rep, &m);
  edit(rep);
  cr_assert_eq(map_with_lines(rep, &out, &fe), CL_EMALFORMED, "%s", expr);
  cr_assert_null(out);
  cr_assert_eq(fe.status, status, "%s: %d", expr, fe.status);
  cr_assert_str_eq(fe.expression, expr);
  cr_assert_str_eq(fe.code, code, "%s: %s", expr, fe.text);
  cl_fhirw_mapped_free(m);
  json_decref(views);
  json_decref(rep);
  json_decref(lines);
}

static json_t *line_at(json_t *rep, size_t i) {
  const char *ref = json_string_value(
      json_object_get(json_array_get(json_object_get(rep, "result"), i), "reference"));
  return json_object_get(lines, ref + 12);
}

static void missing(json_t *rep) {
  json_object_del(lines, json_string_value(json_object_get(line_at(rep, 1), "id")));
}
static void twice(json_t *rep) {
  json_t *rs = json_object_get(rep, "result");
  json_array_set(rs, 3, json_array_get(rs, 0));
}
static void no_category(json_t *rep) { json_object_del(line_at(rep, 0), "category"); }
static void other_value(json_t *rep) {
  json_object_set_new(line_at(rep, 2), "issued", json_string("2026-03-05T00:00:00Z"));
}
static void other_patient(json_t *rep) {
  json_object_set_new(line_at(rep, 3), "subject", json_pack("{s:s}", "reference", "Patient/p9"));
}
static void own_id_changed(json_t *rep) {
  json_t *ids = json_object_get(line_at(rep, 2), "identifier");
  json_object_set_new(json_array_get(ids, 0), "value", json_string("a1c-8"));
}
static void extra_element(json_t *rep) {
  json_object_set_new(line_at(rep, 1), "bodySite", json_pack("{s:s}", "text", "arm"));
}

Test(fhirw_lines, a_line_missing_twice_or_not_as_the_views_make_it_is_refused) {
  refused(missing, 422, "DiagnosticReport.result[1]", "not-found");
  refused(twice, 422, "DiagnosticReport.result[3]", "not-supported");
  refused(no_category, 400, "DiagnosticReport.result[0].resolve().category", "required");
  refused(other_value, 422, "DiagnosticReport.result[2].resolve().issued", "not-supported");
  refused(other_patient, 422, "DiagnosticReport.result[3].resolve().subject.reference",
          "not-found");
  refused(own_id_changed, 422, "DiagnosticReport.result[2]", "value");
  refused(extra_element, 422, "DiagnosticReport.result[1].resolve().bodySite", "not-supported");
}

Test(fhirw_lines, without_the_input_lines_a_report_takes_contained_lines_only) {
  json_t *rep;
  cl_fhirw_mapped *m, *out = NULL;
  cl_fhirw_error fe;
  cl_err err;
  json_t *views = exported(&rep, &m);
  cl_fhirw_opts o = fw_opts();
  cr_assert_eq(cl_fhirw_map(rep, NULL, NULL, "", &o, &out, &fe, &err), CL_EMALFORMED);
  cr_assert_str_eq(fe.expression, "DiagnosticReport.result[0]");
  cr_assert_str_eq(fe.code, "not-supported");
  cl_fhirw_mapped_free(m);
  json_decref(views);
  json_decref(rep);
  json_decref(lines);
}

/* ---- cl_fhirw_pair_lines: which report takes which line ---- */

Test(fhirw_lines, each_line_goes_to_the_first_report_that_references_it) {
  json_t *a = json_pack("{s:s,s:s}", "resourceType", "Observation", "id", "a");
  json_t *b = json_pack("{s:s}", "resourceType", "Observation");
  json_t *c = json_pack("{s:s,s:s}", "resourceType", "Observation", "id", "c");
  json_t *r1 =
      json_pack("{s:s,s:[{s:s},{s:s},{s:s}]}", "resourceType", "DiagnosticReport", "result",
                "reference", "#x", "reference", "Observation/a", "reference", "urn:b");
  json_t *r2 = json_pack("{s:s,s:[{s:s}]}", "resourceType", "DiagnosticReport", "result",
                         "reference", "Observation/a");
  /* the lines before, between and after their reports: the order of the
   * input does not matter, but for which report comes first */
  const json_t *res[6] = {a, r1, b, r2, c, NULL};
  const char *urls[6] = {NULL, NULL, "urn:b", NULL, "urn:c", NULL};
  long of[6], at[6], shared[6];
  json_t *taken;
  cr_assert_eq(cl_fhirw_pair_lines(res, urls, 6, of, at, shared, &taken), 0);
  long want_of[6] = {1, -1, 1, -1, -1, -1}, want_at[6] = {1, -1, 2, -1, -1, -1};
  long want_shared[6] = {-1, -1, -1, 0, -1, -1};
  for (int i = 0; i < 6; i++) {
    cr_assert_eq(of[i], want_of[i], "line_of[%d]", i);
    cr_assert_eq(at[i], want_at[i], "line_at[%d]", i);
    cr_assert_eq(shared[i], want_shared[i], "shared_at[%d]", i);
  }
  cr_assert_eq(json_object_size(taken), 2, "Observation/a and urn:b; c is no one's line");
  cr_assert_eq(json_object_get(taken, "Observation/a"), a);
  cr_assert_eq(json_object_get(taken, "urn:b"), b);
  json_decref(taken);
  /* the reports the other way round: r2 takes a, r1 is refused at result[1]
   * but keeps b */
  const json_t *res2[5] = {r2, a, b, r1, c};
  cr_assert_eq(cl_fhirw_pair_lines(res2, urls, 5, of, at, shared, &taken), 0);
  cr_assert_eq(of[1], 0);
  cr_assert_eq(shared[3], 1);
  cr_assert_eq(of[2], 3, "r1 still takes its other lines: none is written on its own");
  json_decref(taken);
  json_decref(a), json_decref(b), json_decref(c), json_decref(r1), json_decref(r2);
}

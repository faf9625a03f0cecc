/* The NEWS2 score of an early-warning IssueDetected (kind EARLY_WARNING,
 * raised by the cds projection: query/cds/rpm_news2.c) -> Observation, so
 * the score is stored beside the vitals as an Observation with its
 * components (docs/cds.md, "NEWS2 on the log").
 *
 *   id             cl_fhir_pid("Observation", "news2-" + issue_id)
 *   status         final
 *   category       survey
 *   code           SNOMED CT 1104051000000101 (RCP NEWS2 total score; LOINC
 *                  has none: news2.h)
 *   subject        the patient
 *   effective      detected_at (the trigger's time)
 *   valueInteger   the total, only when all seven components were scored;
 *                  else dataAbsentReason not-performed, text naming the
 *                  missing components (an incomplete total is not a NEWS2)
 *   component      one per scored parameter: code the SNOMED CT sub-score
 *                  (per SpO2 scale), text the parameter and its value,
 *                  valueInteger the sub-score
 *   derivedFrom    not set: the implicated event is the trigger, whose
 *                  resource type depends on the event
 *
 * The score is read from the detail the checker writes ("NEWS2 <total>[
 * (incomplete, missing: ...)]: ... Components: <name>[ (scale n)] <value>:
 * <score>; ... . Source: ..."): an EARLY_WARNING issue whose detail is not
 * in that form (another sender's) maps to its DetectedIssue only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/cds/news2.h"
#include "query/fhir/fj.h"
#include "query/fhir/map.h"

#define SCT "http://snomed.info/sct"
#define DAR "http://terminology.hl7.org/CodeSystem/data-absent-reason"
#define CAT "http://terminology.hl7.org/CodeSystem/observation-category"

/* One "name[ (scale n)] value: score" segment [s, e) as a component, or
 * NULL if it is not one. */
static json_t *component(const char *s, const char *e) {
  const char *colon = NULL;
  for (const char *p = s; p + 1 < e; p++)
    if (p[0] == ':' && p[1] == ' ')
      colon = p;
  if (!colon)
    return NULL;
  char *end;
  long score = strtol(colon + 2, &end, 10);
  if (end != e || score < 0 || score > 3)
    return NULL;
  for (int p = 0; p < CL_NEWS2_NPARAMS; p++) {
    const char *name = cl_news2_param_name((cl_news2_param)p);
    size_t n = strlen(name);
    if ((size_t)(colon - s) <= n || strncmp(s, name, n) || s[n] != ' ')
      continue;
    int scale = p == CL_NEWS2_SPO2 && strncmp(s + n, " (scale 2)", 10) == 0 ? 2 : 1;
    json_t *code = json_pack("{s:[{s:s,s:s}],s:s%}", "coding", "system", SCT, "code",
                             cl_news2_component_snomed((cl_news2_param)p, scale), "text", s,
                             (size_t)(colon - s));
    return json_pack("{s:o,s:i}", "code", code, "valueInteger", (json_int_t)score);
  }
  return NULL;
}

int cl_fhir_map_news2(cl_fhir_map *m, const Clinlog__V1__IssueDetected *b, cl_err *err) {
  const char *d = b->detail, *comp, *src;
  char *end;
  if (!fj_has(b->issue_id) || !d || strncmp(d, "NEWS2 ", 6) ||
      !(comp = strstr(d, ". Components: ")) || !(src = strstr(comp, ". Source: ")))
    return 0;
  long total = strtol(d + 6, &end, 10);
  if (end == d + 6 || total < 0 || total > 20)
    return 0;
  json_t *comps = json_array();
  for (const char *s = comp + 14; s < src;) {
    const char *e = strstr(s, "; ");
    e = e && e < src ? e : src;
    fj_push(comps, component(s, e));
    s = e + (e == src ? 0 : 2);
    if (e == src)
      break;
  }
  char bid[80], id[CL_FHIR_ID_MAX];
  snprintf(bid, sizeof bid, "news2-%s", b->issue_id);
  cl_fhir_pid(m, "Observation", bid, id);
  json_t *o = cl_fhir_new("Observation", id);
  json_object_set_new(o, "status", json_string("final"));
  fj_set_one(o, "category", fj_concept_lit(CAT, "survey", "Survey"));
  json_t *code = fj_concept_lit(SCT, CL_SNOMED_NEWS2_TOTAL,
                                "Royal College of Physicians NEWS2 (National Early Warning Score "
                                "2) total score");
  json_object_set_new(code, "text", json_string("NEWS2 total score"));
  json_object_set_new(o, "code", code);
  fj_set(o, "subject", cl_fhir_patient_ref(m));
  json_object_set_new(o, "effectiveDateTime", cl_fhir_when(m, b->detected_at));
  if (*end == ':') {
    json_object_set_new(o, "valueInteger", json_integer(total));
  } else { /* " (incomplete, missing: ...)": the partial total is no NEWS2 */
    const char *close = strchr(end, ')');
    json_t *dar = fj_concept_lit(DAR, "not-performed", "Not Performed");
    char text[256];
    snprintf(text, sizeof text, "NEWS2 %.*s; the components scored give at least %ld",
             close ? (int)(close - end - 2) : 0, end + 2, total);
    json_object_set_new(dar, "text", json_string(text));
    json_object_set_new(o, "dataAbsentReason", dar);
  }
  fj_set(o, "component", comps);
  return cl_fhir_map_put(m, o, err);
}

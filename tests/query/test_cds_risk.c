/* Risk scores from outside models (query/cds/risk.c) through the checker's
 * entry point: over the threshold one RISK_SCORE finding, none at or under
 * it, one open alert per patient and model (a repeat raises nothing, a
 * score back under closes it, another model alerts on its own), malformed
 * scores counted, an acknowledgement closing the alert, and the same keys
 * on replay. */
#include <criterion/criterion.h>
#include <string.h>

#include "query/cds/check.h"
#include "query/cds/rpm.h"
#include "tests/query/cds_fixture.h"

#define T0 (1767225600ll * 1000000000ll)
#define kb (cfx.kb)
#define st (cfx.st)
#define F (cfx.F)

TestSuite(cds_risk, .init = cfx_setup_seed, .fini = cfx_teardown);

static size_t risk(const char *model, const char *score, const char *thr, int n) {
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  Clinlog__V1__RiskScoreRecorded r = CLINLOG__V1__RISK_SCORE_RECORDED__INIT;
  ev.stream = "patient-P1";
  ev.body_case = CLINLOG__V1__EVENT__BODY_RISK_SCORE_RECORDED;
  ev.risk_score_recorded = &r;
  r.assessment_id = "ra";
  r.model_id = (char *)model;
  r.model_version = "1.0";
  r.score = (char *)score;
  r.threshold = (char *)thr;
  r.explanation = "Because.";
  uint8_t id[16] = {0xc0};
  id[15] = (uint8_t)n;
  cl_err err = {0};
  cr_assert_eq(cl_cds_apply(kb, st, &ev, id, T0 + n, F, &err), 0, "%s", err.msg);
  return F->n;
}

Test(cds_risk, over_and_under_threshold_one_open_per_model) {
  cr_assert_eq(risk("sepsis", "0.60", "0.60", 1), 0, "at the threshold: nothing");
  cr_assert_eq(risk("sepsis", "0.59", "0.60", 2), 0);
  cr_assert_eq(risk("sepsis", "0.61", "0.60", 3), 1);
  cr_assert_eq(F->f[0].kind, CLINLOG__V1__ISSUE_KIND__ISSUE_KIND_RISK_SCORE);
  cr_assert_eq(F->f[0].severity, CLINLOG__V1__ISSUE_SEVERITY__ISSUE_SEVERITY_MODERATE);
  cr_assert_str_eq(F->f[0].rule_id, "risk:sepsis");
  cr_assert(strstr(F->f[0].detail, "model sepsis 1.0: 0.61, over its threshold 0.60") != NULL,
            "%s", F->f[0].detail);
  uint8_t key[16];
  memcpy(key, F->f[0].key, 16);
  cr_assert_eq(risk("sepsis", "0.9", "0.60", 4), 0, "open: no flooding");
  cr_assert_eq(risk("deterioration", "0.9", "0.5", 5), 1, "another model alerts");
  cr_assert_eq(risk("sepsis", "0.2", "0.60", 6), 0);
  cr_assert(!cl_rpm_is_open(cl_rpm_of(st), "risk:sepsis"), "under the threshold closes");
  cr_assert_eq(risk("sepsis", "0.7", "0.60", 7), 1, "over again alerts again");
  cr_assert_eq(cl_rpm_close(cl_rpm_of(st), F->f[0].key), 1, "an acknowledgement closes it");
  /* malformed: counted, nothing raised */
  cl_rpm_counts c;
  cl_rpm_get_counts(cl_rpm_of(st), &c);
  cr_assert_eq(risk("sepsis", "high", "0.6", 8), 0);
  cr_assert_eq(risk("sepsis", "0.9", "", 9), 0);
  cl_rpm_counts d;
  cl_rpm_get_counts(cl_rpm_of(st), &d);
  cr_assert_eq(d.unconverted, c.unconverted + 2);
  /* the same event on a fresh state: the same key */
  cfx_fresh();
  cr_assert_eq(risk("sepsis", "0.61", "0.60", 3), 1);
  cr_assert_eq(memcmp(F->f[0].key, key, 16), 0);
}

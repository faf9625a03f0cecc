/* Risk scores from outside models (rpm.h, docs/cds.md "Risk scores from
 * outside models"): a RiskScoreRecorded whose score is over its threshold
 * raises RISK_SCORE, one open alert per patient and model (condition
 * "risk:<model id>" in the monitoring open set), closed by a later score at
 * or under the threshold or by an acknowledgement or override
 * (cl_rpm_close).
 *
 * Invariants: the finding depends only on the event and the open set (no
 * clock); a score or threshold that is not a plain finite decimal raises
 * nothing and is counted (unconverted). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "query/cds/check_int.h"
#include "query/cds/rpm_int.h"

#define K_RISK CLINLOG__V1__ISSUE_KIND__ISSUE_KIND_RISK_SCORE
#define SEV_MODERATE CLINLOG__V1__ISSUE_SEVERITY__ISSUE_SEVERITY_MODERATE

static int decimal(const char *s, double *v) {
  char *end;
  if (!s || !s[0])
    return -1;
  *v = strtod(s, &end);
  return *end || !isfinite(*v) ? -1 : 0;
}

void rpm_risk_apply(const cl_kb *kb, cl_rpm_patient *st, const Clinlog__V1__RiskScoreRecorded *r,
                    const uint8_t id[16], cl_cds_findings *out) {
  double score, threshold;
  if (!r->model_id || !r->model_id[0] || strlen(r->model_id) > 96) {
    st->untracked++;
    return;
  }
  if (decimal(r->score, &score) || decimal(r->threshold, &threshold)) {
    st->unconverted++;
    return;
  }
  char cond[RPM_COND_LEN];
  cds_text(cond, sizeof cond, "risk:%s", r->model_id);
  if (!(score > threshold)) {
    rpm_open_close(st, cond);
    return;
  }
  if (rpm_open_find(st, cond) >= 0)
    return;
  cl_cds_finding *f =
      cds_add(kb, out, K_RISK, SEV_MODERATE, "ISSUE", "outside-model", cond, id, NULL);
  if (f) {
    const char *what = r->outcome && r->outcome->text && r->outcome->text[0] ? r->outcome->text
                       : r->outcome && r->outcome->n_coding && r->outcome->coding[0]->display
                           ? r->outcome->coding[0]->display
                           : "the predicted outcome";
    cds_text(f->detail, sizeof f->detail,
             "Risk score from model %s %s: %s, over its threshold %s (%s). %s", r->model_id,
             r->model_version ? r->model_version : "", r->score, r->threshold, what,
             r->explanation ? r->explanation : "");
    cds_text(f->mitigation, sizeof f->mitigation,
             "Review the patient and the model's inputs; the score is a prediction, not a "
             "diagnosis.");
  }
  uint8_t key[16];
  cds_key(id, cond, NULL, key);
  (void)rpm_open_add(st, cond, key);
}

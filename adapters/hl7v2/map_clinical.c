/* Allergies (AL1) and diagnoses (DG1) carried by ADT messages, as
 * AllergyRecorded and ConditionDiagnosed (map.h, docs/adapters.md): one
 * event per segment, in message order, after the patient and encounter
 * events. Their business ids are the allergen and diagnosis codes, so a
 * later ADT naming the same allergen or diagnosis updates it. */
#include <string.h>

#include "adapters/hl7v2/map_int.h"

static int category_of(const char *v) {
  static const struct {
    const char *v;
    int cat;
  } M[] = {{"DA", CLINLOG__V1__ALLERGY_CATEGORY__ALLERGY_CATEGORY_MEDICATION},
           {"FA", CLINLOG__V1__ALLERGY_CATEGORY__ALLERGY_CATEGORY_FOOD},
           {"EA", CLINLOG__V1__ALLERGY_CATEGORY__ALLERGY_CATEGORY_ENVIRONMENT},
           {"AA", CLINLOG__V1__ALLERGY_CATEGORY__ALLERGY_CATEGORY_ENVIRONMENT},
           {"PA", CLINLOG__V1__ALLERGY_CATEGORY__ALLERGY_CATEGORY_ENVIRONMENT},
           {"LA", CLINLOG__V1__ALLERGY_CATEGORY__ALLERGY_CATEGORY_ENVIRONMENT}};
  for (size_t i = 0; v && i < sizeof M / sizeof M[0]; i++)
    if (!strcmp(v, M[i].v))
      return M[i].cat;
  return CLINLOG__V1__ALLERGY_CATEGORY__ALLERGY_CATEGORY_UNSPECIFIED;
}

static int severity_of(const char *v) {
  if (v && !strcmp(v, "SV"))
    return CLINLOG__V1__REACTION_SEVERITY__REACTION_SEVERITY_SEVERE;
  if (v && !strcmp(v, "MO"))
    return CLINLOG__V1__REACTION_SEVERITY__REACTION_SEVERITY_MODERATE;
  if (v && !strcmp(v, "MI"))
    return CLINLOG__V1__REACTION_SEVERITY__REACTION_SEVERITY_MILD;
  return CLINLOG__V1__REACTION_SEVERITY__REACTION_SEVERITY_UNSPECIFIED;
}

static int allergy(mctx *c, const cl_hl7_seg *al1) {
  Clinlog__V1__AllergyRecorded *b = map_alloc(c, sizeof *b);
  Clinlog__V1__AllergyReaction *re = map_alloc(c, sizeof *re);
  if (!b || !re)
    return CL_ENOMEM;
  clinlog__v1__allergy_recorded__init(b);
  clinlog__v1__allergy_reaction__init(re);
  pb_ts *onset;
  int rc;
  if ((rc = map_cwe(c, al1, 3, 1, &b->substance)) || (rc = map_ts(c, al1, 6, 1, 1, 1, &onset)))
    return rc;
  const char *id = hf(al1, 3, 1) ? hf(al1, 3, 1) : hf(al1, 3, 2);
  if (!b->substance || !id)
    return map_fail(c, CL_HL7_REQUIRED_MISSING, al1, NULL, 3, 1, 1, 0,
                    "the allergen code/mnemonic/description is required");
  b->allergy_id = (char *)id;
  b->category = category_of(hf(al1, 2, 1));
  const char *sev = hf(al1, 4, 1);
  re->severity = severity_of(sev);
  b->criticality = !sev ? CLINLOG__V1__ALLERGY_CRITICALITY__ALLERGY_CRITICALITY_UNSPECIFIED
                   : !strcmp(sev, "SV") ? CLINLOG__V1__ALLERGY_CRITICALITY__ALLERGY_CRITICALITY_HIGH
                   : !strcmp(sev, "MI") || !strcmp(sev, "MO")
                       ? CLINLOG__V1__ALLERGY_CRITICALITY__ALLERGY_CRITICALITY_LOW
                       : CLINLOG__V1__ALLERGY_CRITICALITY__ALLERGY_CRITICALITY_UNSPECIFIED;
  size_t nr = cl_hl7_nreps(al1, 5); /* AL1-5 reactions, as text */
  if (!(re->manifestation = map_alloc(c, (nr ? nr : 1) * sizeof *re->manifestation)))
    return CL_ENOMEM;
  for (unsigned r = 1; r <= nr; r++) {
    const char *t = hv(al1, 5, r, 1, 1);
    if (!t)
      continue;
    pb_cc *cc = map_alloc(c, sizeof *cc);
    if (!cc)
      return CL_ENOMEM;
    clinlog__v1__codeable_concept__init(cc);
    cc->text = (char *)t;
    re->manifestation[re->n_manifestation++] = cc;
  }
  if (re->n_manifestation || re->severity) {
    if (!(b->reactions = map_alloc(c, sizeof *b->reactions)))
      return CL_ENOMEM;
    b->reactions[b->n_reactions++] = re;
  }
  b->onset = onset;
  b->clinical_status = CLINLOG__V1__ALLERGY_CLINICAL_STATUS__ALLERGY_CLINICAL_STATUS_ACTIVE;
  b->encounter_id = S(c->encounter_id);
  return map_emit(c, NULL, CLINLOG__V1__EVENT__BODY_ALLERGY_RECORDED, b);
}

static int diagnosis(mctx *c, const cl_hl7_seg *dg1) {
  Clinlog__V1__ConditionDiagnosed *b = map_alloc(c, sizeof *b);
  if (!b)
    return CL_ENOMEM;
  clinlog__v1__condition_diagnosed__init(b);
  pb_ts *when;
  int rc;
  if ((rc = map_cwe(c, dg1, 3, 1, &b->code)) || (rc = map_ts(c, dg1, 5, 1, 1, 1, &when)) ||
      (rc = map_table_code(c, dg1, 6, "0052", &b->diagnosis_type)) ||
      (rc = map_xcn(c, dg1, 16, 1, &b->asserter)))
    return rc;
  const char *id = hf(dg1, 20, 1) ? hf(dg1, 20, 1) : hf(dg1, 3, 1);
  if (!b->code || !id)
    return map_fail(c, CL_HL7_REQUIRED_MISSING, dg1, NULL, 3, 1, 1, 0,
                    "the diagnosis code is required");
  b->condition_id = (char *)id;
  b->clinical_status = CLINLOG__V1__CONDITION_CLINICAL_STATUS__CONDITION_CLINICAL_STATUS_ACTIVE;
  const char *type = hf(dg1, 6, 1);
  b->verification_status =
      type && !strcmp(type, "F")
          ? CLINLOG__V1__CONDITION_VERIFICATION_STATUS__CONDITION_VERIFICATION_STATUS_CONFIRMED
      : type && (!strcmp(type, "A") || !strcmp(type, "W"))
          ? CLINLOG__V1__CONDITION_VERIFICATION_STATUS__CONDITION_VERIFICATION_STATUS_PROVISIONAL
          : CLINLOG__V1__CONDITION_VERIFICATION_STATUS__CONDITION_VERIFICATION_STATUS_UNSPECIFIED;
  if (!(b->category = map_mkcode(c, "http://terminology.hl7.org/CodeSystem/condition-category",
                                 "encounter-diagnosis", "Encounter Diagnosis")))
    return CL_ENOMEM;
  b->encounter_id = S(c->encounter_id);
  return map_emit(c, when, CLINLOG__V1__EVENT__BODY_CONDITION_DIAGNOSED, b);
}

int map_al1_dg1(mctx *c) {
  int rc = 0;
  for (size_t i = 1; i <= cl_hl7_nsegments(c->m) && !rc; i++) {
    const cl_hl7_seg *s = cl_hl7_segment_at(c->m, i);
    if (map_is(s, "AL1"))
      rc = allergy(c, s);
    else if (map_is(s, "DG1"))
      rc = diagnosis(c, s);
  }
  return rc;
}

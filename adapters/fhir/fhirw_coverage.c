/* Coverage -> EligibilityChecked without a check id (fhirw.h): the inverse
 * of coverage_new (query/fhir/map_billing.c). The Coverage view derives
 * from eligibility checks (and claims, when no check made one); an
 * EligibilityChecked whose check_id is empty states the membership alone,
 * which the view makes the Coverage of and nothing else.
 *
 *   identifier     business id "<payer id>|<member id>" (as the views key a
 *                  Coverage; derived), MB (v2-0203): the member id, its
 *                  assigner the payer's name
 *   status         active (eligible), cancelled (not eligible), draft (not
 *                  confirmed: a rejected check, which keeps a Coverage the
 *                  views hold)
 *   subscriberId   member_id
 *   beneficiary    the patient (the stream)
 *   relationship   subscriber_relationship
 *   period         coverage_period (instants)
 *   payor (one)    payer (identifier), payer_name (display)
 *   class[]        group (group_number), plan (plan)
 * Checked against its view (w_as_view), which states the rest. */
#include <string.h>

#include "adapters/fhir/fhirw_int.h"

#define COVERAGE_CLASS "http://terminology.hl7.org/CodeSystem/coverage-class"

static int coverage_classes(wctx *c, const json_t *r, const char *p,
                            Clinlog__V1__EligibilityChecked *b) {
  static const char *const keys[] = {"type", "value", NULL};
  static const char *const kinds[] = {"group", "plan", NULL};
  const json_t *a;
  size_t n;
  int rc = w_arr(c, r, p, "class", &a, &n);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    const json_t *cl = json_array_get(a, i);
    const char *cp = w_path(c, w_path(c, p, "class", 0), NULL, (long)i), *v;
    int k;
    if (!json_is_object(cl))
      return w_fail(c, 400, "structure", cp, "expected an object");
    if ((rc = w_only(c, cl, cp, keys, 0)) ||
        (rc = w_concept_in(c, cl, cp, "type", COVERAGE_CLASS, kinds, &k)) ||
        (rc = w_str(c, cl, cp, "value", &v)))
      return rc;
    if (k < 0 || v == NULL)
      return w_fail(c, 400, "required", w_path(c, cp, k < 0 ? "type" : "value", 0), "required");
    char **slot = k == 0 ? &b->group_number : &b->plan;
    if ((*slot)[0])
      return w_fail(c, 422, "not-supported", cp, "one %s can be written", kinds[k]);
    *slot = (char *)v;
  }
  return rc;
}

int w_period(wctx *c, const json_t *r, const char *p, const char *key, Clinlog__V1__Period **out) {
  static const char *const keys[] = {"start", "end", NULL};
  const json_t *o;
  int rc = w_obj(c, r, p, key, &o);
  *out = NULL;
  if (rc || o == NULL)
    return rc;
  const char *pp = w_path(c, p, key, 0);
  Clinlog__V1__Period *per = w_alloc(c, sizeof *per);
  if (per == NULL)
    return CL_ENOMEM;
  clinlog__v1__period__init(per);
  if ((rc = w_only(c, o, pp, keys, 0)) || (rc = w_instant(c, o, pp, "start", &per->start)) ||
      (rc = w_instant(c, o, pp, "end", &per->end)))
    return rc;
  *out = per;
  return 0;
}

int w_coverage_terms(wctx *c, const json_t *r, const char *p, Clinlog__V1__EligibilityChecked *b) {
  int rc;
  if ((rc = w_concept_code(c, r, p, "relationship", &b->subscriber_relationship)) ||
      (rc = w_period(c, r, p, "period", &b->coverage_period)))
    return rc;
  return coverage_classes(c, r, p, b);
}

/* The one payor: the payer ({identifier, display}; "unknown" for none). */
static int coverage_payor(wctx *c, const json_t *r, const char *p,
                          Clinlog__V1__EligibilityChecked *b) {
  static const char *const keys[] = {"identifier", "display", NULL};
  const json_t *a, *o, *id;
  size_t n;
  int rc = w_arr(c, r, p, "payor", &a, &n);
  if (rc)
    return rc;
  const char *ap = w_path(c, p, "payor", 0), *op = w_path(c, ap, NULL, 0), *name;
  if (n == 0)
    return 0; /* required: the view's check says so */
  if (n > 1)
    return w_fail(c, 422, "not-supported", w_path(c, ap, NULL, 1), "one payor can be written");
  o = json_array_get(a, 0);
  if (!json_is_object(o))
    return w_fail(c, 400, "structure", op, "expected a Reference (an object)");
  if ((rc = w_only(c, o, op, keys, 0)) || (rc = w_obj(c, o, op, "identifier", &id)) ||
      (rc = w_str(c, o, op, "display", &name)))
    return rc;
  if (id != NULL && (rc = w_identifier(c, id, w_path(c, op, "identifier", 0), &b->payer)))
    return rc;
  if (name != NULL && (id != NULL || strcmp(name, "unknown") != 0))
    b->payer_name = (char *)name;
  return 0;
}

int w_coverage(wctx *c, const json_t *r) {
  static const char *const keys[] = {"identifier",  "status",       "subscriberId",
                                     "beneficiary", "relationship", "period",
                                     "payor",       "class",        NULL};
  static const char *const statuses[] = {"active", "cancelled", "draft", NULL};
  const char *p = c->root;
  Clinlog__V1__EligibilityChecked *b = w_alloc(c, sizeof *b);
  if (b == NULL)
    return CL_ENOMEM;
  clinlog__v1__eligibility_checked__init(b);
  int rc, status;
  if ((rc = w_only(c, r, p, keys, 1)) || (rc = w_subject(c, r, p, "beneficiary")) ||
      (rc = w_enum(c, r, p, "status", statuses, &status)))
    return rc;
  if (status < 0)
    return w_fail(c, 400, "required", w_path(c, p, "status", 0), "required");
  if ((rc = w_str(c, r, p, "subscriberId", (const char **)&b->member_id)) ||
      (rc = coverage_payor(c, r, p, b)) || (rc = w_coverage_terms(c, r, p, b)))
    return rc;
  if (b->member_id == NULL)
    b->member_id = "";
  const char *payer = b->payer ? b->payer->value : "";
  if (!payer[0] && !b->member_id[0])
    return w_fail(c, 400, "required", w_path(c, p, "subscriberId", 0),
                  "required: a Coverage is the membership of a member (subscriberId) or with a "
                  "payer (payor.identifier)");
  b->eligible = status == 0;
  if (status == 2) { /* not confirmed: what the views make of a rejected check */
    if ((b->reject_reason = w_alloc(c, sizeof *b->reject_reason)) == NULL)
      return CL_ENOMEM;
    clinlog__v1__code__init(b->reject_reason);
  }
  /* the business id: the views key a Coverage by payer and member */
  const char *bid = w_printf(c, "%s|%s", payer, b->member_id);
  if (bid == NULL)
    return CL_ENOMEM;
  if (strlen(bid) >= sizeof((cl_fhirw_mapped *)0)->bid)
    return w_fail(c, 422, "not-supported", p, "a payer and member id of 128 bytes at most");
  const json_t *ids = json_object_get(r, "identifier");
  static const char *const types[] = {"MB", NULL};
  Clinlog__V1__Identifier *mb = NULL;
  for (size_t i = 0; i < json_array_size(ids); i++) {
    const char *sys = json_string_value(json_object_get(json_array_get(ids, i), "system")),
               *val = json_string_value(json_object_get(json_array_get(ids, i), "value"));
    if (sys != NULL && !strcmp(sys, FJ_BUSINESS_ID_SYSTEM) && (val == NULL || strcmp(val, bid)))
      return w_fail(c, 422, "invalid",
                    w_path(c, w_path(c, w_path(c, p, "identifier", 0), NULL, (long)i), "value", 0),
                    "a Coverage's business id is its payer id and member id: %.140s", bid);
  }
  if ((rc = w_other_ids(c, r, p, types, &mb, "the member id (MB)")))
    return rc;
  (void)mb; /* the member id as subscriberId states it: checked against the view */
  c->bid = bid;
  if ((rc = w_emit(c, CLINLOG__V1__EVENT__BODY_ELIGIBILITY_CHECKED, b)))
    return rc;
  return w_as_view(c, r);
}

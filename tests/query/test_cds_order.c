/* Cds.CheckOrder's checking (query/cds/order.h) against the seed knowledge
 * base: a draft ibuprofen against an active warfarin (one HIGH finding, the
 * logged order implicated by event id), an unrelated draft (none), drafts
 * against each other and other_drafts as context (their own findings not
 * reported), a dose over the limit from per_day, the summary naming both
 * drafts, and every refusal naming its field. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/cds/order.h"

#define T0 (1767225600ll * 1000000000ll) /* 2026-01-01T00:00:00Z */
#define RXNORM "http://www.nlm.nih.gov/research/umls/rxnorm"
#define KIND(x) CLINLOG__V1__ISSUE_KIND__ISSUE_KIND_##x
#define SEV(x) CLINLOG__V1__ISSUE_SEVERITY__ISSUE_SEVERITY_##x

static cl_kb *kb;
static cl_cds_patient *st;
static const uint8_t WARFARIN_EVENT[16] = {0xaa, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

static void setup(void) {
  cl_err err = {0};
  cr_assert_eq(cl_kb_seed(&kb, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_cds_patient_new("P1", &st, &err), 0);
}

static void teardown(void) {
  cl_cds_patient_free(st);
  cl_kb_free(kb);
}

TestSuite(cds_order, .init = setup, .fini = teardown);

/* The patient already takes warfarin: a MedicationPrescribed applied to st. */
static void on_warfarin(void) {
  Clinlog__V1__Code c = CLINLOG__V1__CODE__INIT, *cp = &c;
  c.system = RXNORM;
  c.code = "11289";
  Clinlog__V1__CodeableConcept cc = CLINLOG__V1__CODEABLE_CONCEPT__INIT;
  cc.n_coding = 1;
  cc.coding = &cp;
  Clinlog__V1__MedicationPrescribed rx = CLINLOG__V1__MEDICATION_PRESCRIBED__INIT;
  rx.prescription_id = "rx-warfarin";
  rx.medication = &cc;
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  ev.stream = "patient-P1";
  ev.body_case = CLINLOG__V1__EVENT__BODY_MEDICATION_PRESCRIBED;
  ev.medication_prescribed = &rx;
  cl_cds_findings *F = malloc(sizeof *F);
  cl_err err = {0};
  cr_assert_eq(cl_cds_apply(kb, st, &ev, WARFARIN_EVENT, T0 - 86400ll * 1000000000ll, F, &err), 0,
               "%s", err.msg);
  cr_assert_eq(F->n, 0);
  free(F);
}

/* Drafts: up to 4, each a drug code; the request points into this. */
typedef struct req {
  Clinlog__V1__CheckOrderRequest r;
  Clinlog__V1__DraftOrder d[4], *dp[4];
  Clinlog__V1__Code c[4];
} req;

static void req_init(req *q, const char *patient) {
  memset(q, 0, sizeof *q);
  clinlog__v1__check_order_request__init(&q->r);
  q->r.patient_id = (char *)patient;
  q->r.orders = q->dp;
}

static Clinlog__V1__DraftOrder *draft(req *q, const char *id, const char *rxcui) {
  size_t i = q->r.n_orders + q->r.n_other_drafts;
  clinlog__v1__draft_order__init(&q->d[i]);
  clinlog__v1__code__init(&q->c[i]);
  q->c[i].system = RXNORM;
  q->c[i].code = (char *)rxcui;
  q->d[i].order_id = (char *)id;
  q->d[i].drug = &q->c[i];
  q->dp[i] = &q->d[i];
  q->r.n_orders++;
  return &q->d[i];
}

/* The last draft added becomes the first of other_drafts. */
static void last_is_other(req *q) {
  q->r.n_orders--;
  q->r.n_other_drafts = 1;
  q->r.other_drafts = &q->dp[q->r.n_orders];
}

static Clinlog__V1__CheckOrderResponse *check(req *q, int want_rc, cl_err *err) {
  uint8_t *buf = NULL;
  size_t n = 0, nf = 99;
  cl_err_clear(err);
  int rc = cl_cds_order_check(kb, st, &q->r, T0, 42, &buf, &n, &nf, err);
  cr_assert_eq(rc, want_rc, "%d: %s", rc, err->msg);
  if (rc)
    return NULL;
  Clinlog__V1__CheckOrderResponse *r = clinlog__v1__check_order_response__unpack(NULL, n, buf);
  free(buf);
  cr_assert_not_null(r);
  cr_assert_eq(r->n_findings, nf);
  cr_assert_eq(r->as_of_seq, 42);
  cr_assert_str_eq(r->kb_version, cl_kb_version(kb));
  return r;
}

Test(cds_order, ibuprofen_draft_against_active_warfarin) {
  on_warfarin();
  req q;
  cl_err err;
  req_init(&q, "P1");
  draft(&q, "d-ibu", "5640");
  Clinlog__V1__CheckOrderResponse *r = check(&q, 0, &err);
  cr_assert_eq(r->n_findings, 1);
  Clinlog__V1__CdsFinding *f = r->findings[0];
  cr_assert_str_eq(f->rule_id, "warfarin-nsaids");
  cr_assert_eq(f->severity, SEV(HIGH));
  cr_assert_eq(f->kind, KIND(INTERACTION));
  cr_assert_str_eq(f->code->code, "DRG");
  cr_assert_str_eq(f->order_id, "d-ibu");
  cr_assert_str_eq(f->source, "fda-warfarin");
  cr_assert_eq(strlen(f->issue_id), 32);
  cr_assert(strstr(f->summary, "Interaction: ibuprofen"), "%s", f->summary);
  cr_assert(f->detail[0] && f->mitigation[0]);
  cr_assert_eq(f->n_implicated, 2);
  cr_assert_str_eq(f->implicated[0]->order_id, "d-ibu");
  cr_assert_str_eq(f->implicated[0]->drug->code, "5640");
  cr_assert_str_eq(f->implicated[1]->stream, "patient-P1");
  cr_assert_eq(f->implicated[1]->event_id.len, 16);
  cr_assert_eq(memcmp(f->implicated[1]->event_id.data, WARFARIN_EVENT, 16), 0);
  clinlog__v1__check_order_response__free_unpacked(r, NULL);
}

Test(cds_order, unrelated_draft_finds_nothing) {
  on_warfarin();
  req q;
  cl_err err;
  req_init(&q, "P1");
  draft(&q, "d-lis", "29046"); /* lisinopril */
  Clinlog__V1__CheckOrderResponse *r = check(&q, 0, &err);
  cr_assert_eq(r->n_findings, 0);
  clinlog__v1__check_order_response__free_unpacked(r, NULL);
}

Test(cds_order, drafts_against_each_other) {
  req q;
  cl_err err;
  req_init(&q, "P1"); /* nothing on record */
  draft(&q, "d-war", "11289")->drug->display = "warfarin 5 MG";
  draft(&q, "d-ibu", "5640");
  Clinlog__V1__CheckOrderResponse *r = check(&q, 0, &err);
  cr_assert_eq(r->n_findings, 1);
  Clinlog__V1__CdsFinding *f = r->findings[0];
  cr_assert_str_eq(f->rule_id, "warfarin-nsaids");
  cr_assert_str_eq(f->order_id, "d-ibu", "the later draft raises it");
  cr_assert_str_eq(f->implicated[1]->order_id, "d-war");
  cr_assert_str_eq(f->summary, "Interaction: ibuprofen with warfarin 5 MG");
  clinlog__v1__check_order_response__free_unpacked(r, NULL);
}

Test(cds_order, other_drafts_are_context_only) {
  req q;
  cl_err err;
  req_init(&q, "P1");
  draft(&q, "", "5640");  /* orders[0]: draft-1 */
  draft(&q, "", "11289"); /* becomes other_drafts[0]: draft-2 */
  last_is_other(&q);
  Clinlog__V1__CheckOrderResponse *r = check(&q, 0, &err);
  /* the other draft (warfarin) goes first: the ibuprofen order raises it */
  cr_assert_eq(r->n_findings, 1);
  cr_assert_str_eq(r->findings[0]->order_id, "draft-1");
  cr_assert_str_eq(r->findings[0]->implicated[1]->order_id, "draft-2");
  clinlog__v1__check_order_response__free_unpacked(r, NULL);
  /* an other draft that would alert on its own is not reported (a state
   * loaded afresh: the check changed the one it was given) */
  cl_cds_patient_free(st);
  cr_assert_eq(cl_cds_patient_new("P1", &st, &err), 0);
  on_warfarin();
  req_init(&q, "P1");
  draft(&q, "d-lis", "29046");
  draft(&q, "d-ibu", "5640");
  last_is_other(&q);
  r = check(&q, 0, &err);
  cr_assert_eq(r->n_findings, 0);
  clinlog__v1__check_order_response__free_unpacked(r, NULL);
}

Test(cds_order, dose_over_the_limit_from_per_day) {
  req q;
  cl_err err;
  req_init(&q, "P1");
  Clinlog__V1__DraftOrder *d = draft(&q, "d-ibu", "5640");
  d->dose_value = "800";
  d->dose_unit = "mg";
  d->route = "PO";
  d->per_day = 6; /* 4800 mg a day, over 3200 */
  Clinlog__V1__CheckOrderResponse *r = check(&q, 0, &err);
  cr_assert_eq(r->n_findings, 1);
  cr_assert_str_eq(r->findings[0]->rule_id, "dose:5640:oral:daily");
  cr_assert_eq(r->findings[0]->kind, KIND(DOSE));
  clinlog__v1__check_order_response__free_unpacked(r, NULL);
}

/* Each refusal names its field. */
static void refused(req *q, int code, const char *field) {
  cl_err err;
  cl_err_clear(&err);
  cr_assert_eq(cl_cds_order_validate(&q->r, &err), code, "%s", field);
  cr_assert(strncmp(err.msg, field, strlen(field)) == 0, "want %s, got %s", field, err.msg);
  check(q, code, &err);
}

Test(cds_order, bad_input_names_the_field) {
  req q;
  req_init(&q, "");
  draft(&q, "a", "5640");
  refused(&q, CL_EINVAL, "patient_id: required");
  req_init(&q, "P1");
  refused(&q, CL_EINVAL, "orders: at least one");
  req_init(&q, "P1");
  draft(&q, "a", "5640")->drug->code = "";
  refused(&q, CL_EINVAL, "orders[0].drug.code");
  req_init(&q, "P1");
  draft(&q, "a", "5640");
  draft(&q, "b", "5640")->drug->system = "http://snomed.info/sct";
  refused(&q, CL_EINVAL, "orders[1].drug.system");
  req_init(&q, "P1");
  {
    Clinlog__V1__DraftOrder *d = draft(&q, "a", "5640");
    d->dose_value = "400";
    d->dose_unit = "furlongs";
    refused(&q, CL_EINVAL, "orders[0].dose_unit: unknown unit");
    d->dose_unit = "";
    refused(&q, CL_EINVAL, "orders[0].dose_unit: required");
    d->dose_unit = "mg";
    d->dose_value = "-4";
    refused(&q, CL_EINVAL, "orders[0].dose_value");
    d->dose_value = "400";
    d->route = "by-osmosis";
    refused(&q, CL_EINVAL, "orders[0].route");
    d->route = "oral";
    d->per_day = 5;
    refused(&q, CL_EINVAL, "orders[0].per_day");
    d->per_day = 2;
    d->frequency = "BID";
    refused(&q, CL_EINVAL, "orders[0].per_day: not with frequency");
  }
  req_init(&q, "P1");
  draft(&q, "same", "5640");
  draft(&q, "same", "7258");
  refused(&q, CL_EINVAL, "orders[1].order_id");
  req_init(&q, "P1");
  draft(&q, "a", "5640");
  q.r.weight_kg = -3;
  refused(&q, CL_EINVAL, "weight_kg");
  req_init(&q, "P1");
  draft(&q, "a", "5640");
  draft(&q, "b", "")->drug = NULL;
  last_is_other(&q);
  refused(&q, CL_EINVAL, "other_drafts[0].drug.code");
}

/* Strict barcode medication administration; see gate.h. */
#include "query/cds/gate.h"

#include <stdlib.h>
#include <string.h>

#include "clinlog/v1/event.pb-c.h"
#include "query/cds/check.h"
#include "query/cds/proj.h"
#include "store/event.h"

#define PATIENT_PREFIX "patient-"

/* The MedicationAdministered the gate checks, or NULL. */
static const Clinlog__V1__MedicationAdministered *checked(const Clinlog__V1__Event *ev) {
  if (ev->body_case != CLINLOG__V1__EVENT__BODY_MEDICATION_ADMINISTERED || !ev->stream ||
      strncmp(ev->stream, PATIENT_PREFIX, strlen(PATIENT_PREFIX)) != 0 ||
      !ev->stream[strlen(PATIENT_PREFIX)])
    return NULL;
  const Clinlog__V1__MedicationAdministered *a = ev->medication_administered;
  if (a->status == CLINLOG__V1__ADMINISTRATION_STATUS__ADMINISTRATION_STATUS_NOT_DONE)
    return NULL;
  int scanned = (a->scanned_wristband_id && a->scanned_wristband_id[0]) ||
                (a->scanned_product_barcode && a->scanned_product_barcode[0]);
  return scanned ? a : NULL;
}

/* The events of b, decoded (NULL where one does not decode). */
static Clinlog__V1__Event **decode_all(const Clinlog__V1__AppendBatch *b) {
  Clinlog__V1__Event **evs = calloc(b->n_events ? b->n_events : 1, sizeof *evs);
  if (!evs)
    return NULL;
  for (size_t i = 0; i < b->n_events; i++) {
    cl_err ignored;
    if (cl_event_decode(b->events[i].data, b->events[i].len, &evs[i], &ignored) != 0)
      evs[i] = NULL;
  }
  return evs;
}

static void free_all(Clinlog__V1__Event **evs, size_t n) {
  for (size_t i = 0; evs && i < n; i++)
    if (evs[i])
      clinlog__v1__event__free_unpacked(evs[i], NULL);
  free(evs);
}

int cl_cds_gate_wants(const Clinlog__V1__AppendBatch *b) {
  for (size_t i = 0; i < b->n_events; i++) {
    Clinlog__V1__Event *ev;
    cl_err ignored;
    if (cl_event_decode(b->events[i].data, b->events[i].len, &ev, &ignored) != 0)
      continue;
    int wants = checked(ev) != NULL;
    clinlog__v1__event__free_unpacked(ev, NULL);
    if (wants)
      return 1;
  }
  return 0;
}

static int64_t at_of(const Clinlog__V1__Event *ev, int64_t now_ns) {
  if (!ev->occurred_at)
    return now_ns;
  return ev->occurred_at->seconds * 1000000000LL + ev->occurred_at->nanos;
}

static const char *right_name(const char *rule) {
  static const struct {
    const char *rule, *name;
  } R[] = {{"bcma:patient", "wrong patient"}, {"bcma:drug", "wrong drug"},
           {"bcma:dose", "wrong dose"},       {"bcma:route", "wrong route"},
           {"bcma:time", "wrong time"}};
  for (size_t i = 0; i < sizeof R / sizeof *R; i++)
    if (!strcmp(rule, R[i].rule))
      return R[i].name;
  return "a right not met";
}

/* One administration (events[i]) against its patient's state with the
 * batch's earlier events of its stream applied. */
static int check_one(cl_proj *p, cl_log *log, const cl_kb *kb, Clinlog__V1__Event **evs,
                     size_t i, int64_t now_ns, cl_cds_findings *f, cl_err *err) {
  const Clinlog__V1__Event *ev = evs[i];
  cl_cds_patient *st;
  int rc = cl_cds_patient_load(p, log, ev->stream + strlen(PATIENT_PREFIX), &st, NULL, err);
  if (rc)
    return rc;
  for (size_t j = 0; j < i && rc == 0; j++) /* an order and its scan in one batch */
    if (evs[j] && evs[j]->stream && !strcmp(evs[j]->stream, ev->stream) &&
        evs[j]->event_id.len == 16)
      rc = cl_cds_apply(kb, st, evs[j], evs[j]->event_id.data, at_of(evs[j], now_ns), f, err);
  if (rc == 0) {
    static const uint8_t zero[16];
    f->n = f->truncated = 0;
    cl_cds_bcma(kb, st, ev->medication_administered,
                ev->event_id.len == 16 ? ev->event_id.data : zero, at_of(ev, now_ns), f);
    if (f->n > 0)
      rc = cl_err_set(err, CL_EPRECOND,
                      "events[%zu]: barcode administration refused, %s (%s): %s%s", i,
                      right_name(f->f[0].rule_id), f->f[0].rule_id, f->f[0].detail,
                      f->n > 1 ? " (and more)" : "");
  }
  cl_cds_patient_free(st);
  return rc;
}

int cl_cds_gate_check(cl_proj *p, cl_log *log, const cl_kb *kb, const Clinlog__V1__AppendBatch *b,
                      int64_t now_ns, cl_err *err) {
  Clinlog__V1__Event **evs = decode_all(b);
  cl_cds_findings *f = malloc(sizeof *f);
  int rc = 0;
  if (!evs || !f)
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < b->n_events; i++)
    if (evs[i] && checked(evs[i]))
      rc = check_one(p, log, kb, evs, i, now_ns, f, err);
  free(f);
  free_all(evs, b->n_events);
  return rc;
}

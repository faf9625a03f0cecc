/* HL7 v2 orders, administrations and results to catalog events (map.h):
 * ORM^O01 and RDE^O11 (MedicationPrescribed, MedicationDiscontinued,
 * ServiceOrdered), RAS^O17 (MedicationAdministered) and ORU^R01
 * (LabResultReported, or ObservationRecorded for vital signs). Segments
 * are grouped the way the message structures nest them: an ORC opens an
 * order (RXO/RXE/RXR/TQ1/OBR/RXA/ZBC after it belong to it), an OBR opens a
 * report (OBX after it are its results, NTE after an OBX is that result's
 * note, NTE right after the OBR the report's). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/hl7v2/map_int.h"
#include "store/alloc.h"

static int one_of(const char *v, const char *const *set) {
  for (; *set; set++)
    if (!strcmp(v, *set))
      return 1;
  return 0;
}

/* ---- ORM^O01, RDE^O11 ---- */

typedef struct order {
  const cl_hl7_seg *orc, *rx, *rxr, *tq1, *obr;
} order;

static const char *const STOP[] = {"DC", "CA", "OD", "OC", NULL};
static const char *const NEW[] = {"NW", "XO", "RO", "SN", "RE", "SC", NULL};

static int prescribed(mctx *c, const order *o, const char *id) {
  int rde = map_is(o->rx, "RXE");
  /* field numbers of RXE and RXO: code, dose, dose unit, quantity, its unit, refills */
  unsigned fc = rde ? 2 : 1, fd = rde ? 3 : 2, fu = rde ? 5 : 4, fq = rde ? 10 : 11,
           fqu = rde ? 11 : 12, fr = rde ? 12 : 13;
  const cl_hl7_seg *tq = rde ? o->rx : o->orc; /* RXE-1 or ORC-7, the TQ */
  unsigned tf = rde ? 1 : 7;
  Clinlog__V1__MedicationPrescribed *b = map_alloc(c, sizeof *b);
  Clinlog__V1__Dosage *d = map_alloc(c, sizeof *d);
  Clinlog__V1__Dosage **dv = map_alloc(c, sizeof *dv);
  if (!b || !d || !dv)
    return CL_ENOMEM;
  clinlog__v1__medication_prescribed__init(b);
  clinlog__v1__dosage__init(d);
  b->prescription_id = (char *)id;
  int rc;
  const char *refills;
  pb_ts *start = NULL, *end = NULL;
  if ((rc = map_cwe(c, o->rx, fc, 1, &b->medication)) ||
      (rc = map_qty(c, o->rx, fd, fu, &d->dose)) ||
      (rc = map_table_code(c, o->rxr, 1, "0162", &d->route)) ||
      (rc = map_code(c, o->rxr, 2, 1, &d->site)) ||
      (rc = map_qty(c, o->rx, fq, fqu, &b->quantity)) ||
      (rc = map_nm(c, o->rx, fr, 1, 1, 1, &refills)) ||
      (rc = map_xcn(c, o->orc, 12, 1, &b->prescriber)) ||
      (rc = map_ei(c, o->orc, 2, 1, &b->placer_order_number)) ||
      (rc = map_ts(c, o->tq1, 7, 1, 1, 1, &start)) || (rc = map_ts(c, o->tq1, 8, 1, 1, 1, &end)) ||
      (!start && (rc = map_ts(c, tq, tf, 1, 4, 1, &start))) ||
      (!end && (rc = map_ts(c, tq, tf, 1, 5, 1, &end))))
    return rc;
  if (!b->medication)
    return map_fail(c, CL_HL7_REQUIRED_MISSING, o->rx, NULL, fc, 1, 1, 0,
                    "the medication (give code) is required");
  if (refills && (strchr(refills, '.') || *refills == '-' || strlen(refills) > 6))
    return map_fail(c, CL_HL7_DATA_TYPE, o->rx, NULL, fr, 1, 1, 1,
                    "number of refills '%.20s' is not a whole number", refills);
  b->refills = refills ? atoi(refills) : 0;
  /* timing: TQ1-3 (RPT, its code), else the TQ's interval (RI-1) */
  const char *freq = hv(o->tq1, 3, 1, 1, 1), *freq_text = hv(o->tq1, 3, 1, 1, 2);
  if (!freq)
    freq = hv(tq, tf, 1, 2, 1), freq_text = hv(tq, tf, 1, 2, 2);
  if (freq) {
    d->frequency = (char *)freq;
    if (!(d->frequency_code =
              map_mkcode(c, "http://terminology.hl7.org/CodeSystem/v2-0335", freq, freq_text)))
      return CL_ENOMEM;
  }
  d->frequency = S(d->frequency);
  /* RXE-7 / RXO-7: the provider's administration instructions */
  d->text = S(hf(o->rx, 7, 2) ? hf(o->rx, 7, 2) : hf(o->rx, 7, 1));
  dv[0] = d;
  b->dosage = dv;
  b->n_dosage = 1;
  if (start || end) {
    if (!(b->validity = map_alloc(c, sizeof *b->validity)))
      return CL_ENOMEM;
    clinlog__v1__period__init(b->validity);
    b->validity->start = start;
    b->validity->end = end;
  }
  const char *prio = hf(o->tq1, 9, 1) ? hf(o->tq1, 9, 1) : hv(tq, tf, 1, 6, 1);
  b->priority = map_priority(prio);
  const char *subst = hf(o->rx, 9, 1); /* RXE-9 / RXO-9: substitution status, N = none */
  b->dispense_as_written = subst && !strcmp(subst, "N");
  b->encounter_id = S(c->encounter_id);
  b->intent = "order";
  pb_ts *when;
  if ((rc = map_ts(c, o->orc, 9, 1, 1, 1, &when)))
    return rc;
  return map_emit(c, when, CLINLOG__V1__EVENT__BODY_MEDICATION_PRESCRIBED, b);
}

static int discontinued(mctx *c, const order *o, const char *id) {
  Clinlog__V1__MedicationDiscontinued *b = map_alloc(c, sizeof *b);
  if (!b)
    return CL_ENOMEM;
  clinlog__v1__medication_discontinued__init(b);
  b->prescription_id = (char *)id;
  pb_ts *when;
  int rc;
  if ((rc = map_cwe(c, o->orc, 16, 1, &b->reason)) ||
      (rc = map_xcn(c, o->orc, 12, 1, &b->discontinued_by)) ||
      (rc = map_ts(c, o->orc, 15, 1, 1, 1, &b->effective)) ||
      (rc = map_ts(c, o->orc, 9, 1, 1, 1, &when)))
    return rc;
  return map_emit(c, when, CLINLOG__V1__EVENT__BODY_MEDICATION_DISCONTINUED, b);
}

static int service_ordered(mctx *c, const order *o, const char *id) {
  Clinlog__V1__ServiceOrdered *b = map_alloc(c, sizeof *b);
  if (!b)
    return CL_ENOMEM;
  clinlog__v1__service_ordered__init(b);
  b->order_id = (char *)id;
  int rc;
  pb_ts *when;
  if ((rc = map_ei(c, o->orc, 2, 1, &b->placer_order_number)) ||
      (rc = map_ei(c, o->orc, 3, 1, &b->filler_order_number)) ||
      (rc = map_cwe(c, o->obr, 4, 1, &b->code)) ||
      (rc = map_cwe_list(c, o->obr, 31, &b->reason, &b->n_reason)) ||
      (rc = map_xcn(c, o->orc, 12, 1, &b->requester)) ||
      (!b->requester && (rc = map_xcn(c, o->obr, 16, 1, &b->requester))) ||
      (rc = map_ts(c, o->tq1, 7, 1, 1, 1, &b->occurrence)) ||
      (rc = map_ts(c, o->orc, 9, 1, 1, 1, &when)))
    return rc;
  if (!b->code)
    return map_fail(c, CL_HL7_REQUIRED_MISSING, o->obr, NULL, 4, 1, 1, 0,
                    "universal service identifier is required");
  const char *prio = hf(o->tq1, 9, 1)          ? hf(o->tq1, 9, 1)
                     : hv(o->obr, 27, 1, 6, 1) ? hv(o->obr, 27, 1, 6, 1)
                                               : hv(o->orc, 7, 1, 6, 1);
  b->priority = map_priority(prio);
  b->encounter_id = S(c->encounter_id);
  return map_emit(c, when, CLINLOG__V1__EVENT__BODY_SERVICE_ORDERED, b);
}

static int order_done(mctx *c, const order *o) {
  if (!o->orc)
    return 0;
  const char *ctl = hf(o->orc, 1, 1);
  if (!ctl)
    return map_fail(c, CL_HL7_REQUIRED_MISSING, o->orc, NULL, 1, 1, 1, 0,
                    "order control is required");
  const char *id = hf(o->orc, 2, 1) ? hf(o->orc, 2, 1) : hf(o->orc, 3, 1);
  if (!id && o->obr)
    id = hf(o->obr, 2, 1) ? hf(o->obr, 2, 1) : hf(o->obr, 3, 1);
  if (!id)
    return map_fail(c, CL_HL7_REQUIRED_MISSING, o->orc, NULL, 2, 1, 1, 0,
                    "the order needs a placer (ORC-2) or filler (ORC-3) order number");
  int pharmacy = o->rx != NULL || !strcmp(c->h->message_code, "RDE");
  if (one_of(ctl, STOP)) {
    if (!pharmacy)
      return map_fail(c, CL_HL7_TABLE_VALUE, o->orc, NULL, 1, 1, 1, 0,
                      "order control '%.20s' of a service order is not supported", ctl);
    return discontinued(c, o, id);
  }
  if (!one_of(ctl, NEW))
    return map_fail(c, CL_HL7_TABLE_VALUE, o->orc, NULL, 1, 1, 1, 0,
                    "order control '%.20s' is not supported (NW, XO, RO, SN, RE, SC; DC, CA, "
                    "OD, OC)",
                    ctl);
  if (o->rx)
    return prescribed(c, o, id);
  if (o->obr && !pharmacy)
    return service_ordered(c, o, id);
  return map_fail(c, CL_HL7_SEGMENT_SEQUENCE, o->orc, NULL, 0, 0, 0, 0,
                  "the order has no %s segment", pharmacy ? "RXE" : "RXO or OBR");
}

int map_orders(mctx *c) {
  order o = {0};
  for (size_t i = 1; i <= cl_hl7_nsegments(c->m); i++) {
    const cl_hl7_seg *s = cl_hl7_segment_at(c->m, i);
    int rc = 0;
    if (map_is(s, "ORC")) {
      rc = order_done(c, &o);
      memset(&o, 0, sizeof o);
      o.orc = s;
    } else if (map_is(s, "RXE") || map_is(s, "RXO") || map_is(s, "RXR") || map_is(s, "TQ1") ||
               map_is(s, "OBR")) {
      if (!o.orc)
        return map_fail(c, CL_HL7_SEGMENT_SEQUENCE, s, NULL, 0, 0, 0, 0, "%s before any ORC",
                        cl_hl7_seg_id(s));
      const cl_hl7_seg **slot = map_is(s, "RXR")   ? &o.rxr
                                : map_is(s, "TQ1") ? &o.tq1
                                : map_is(s, "OBR") ? &o.obr
                                                   : &o.rx;
      if (!*slot)
        *slot = s;
    }
    if (rc)
      return rc;
  }
  if (!o.orc)
    return map_fail(c, CL_HL7_SEGMENT_SEQUENCE, NULL, "ORC", 0, 0, 0, 0,
                    "%s^%s needs an ORC segment", c->h->message_code, c->h->trigger);
  return order_done(c, &o);
}

/* ---- RAS^O17 ---- */

typedef struct admin {
  const cl_hl7_seg *orc, *rxa, *rxr, *zbc;
} admin;

static int admin_status(mctx *c, const cl_hl7_seg *rxa, int *out) {
  const char *v = hf(rxa, 20, 1);
  *out = CLINLOG__V1__ADMINISTRATION_STATUS__ADMINISTRATION_STATUS_UNSPECIFIED;
  if (!v)
    return 0;
  if (!strcmp(v, "CP"))
    *out = CLINLOG__V1__ADMINISTRATION_STATUS__ADMINISTRATION_STATUS_COMPLETED;
  else if (!strcmp(v, "RE") || !strcmp(v, "NA"))
    *out = CLINLOG__V1__ADMINISTRATION_STATUS__ADMINISTRATION_STATUS_NOT_DONE;
  else if (!strcmp(v, "PA"))
    *out = CLINLOG__V1__ADMINISTRATION_STATUS__ADMINISTRATION_STATUS_PARTIAL;
  else
    return map_fail(c, CL_HL7_TABLE_VALUE, rxa, NULL, 20, 1, 1, 0,
                    "completion status '%.20s' is not in table 0322 (CP, RE, NA, PA)", v);
  return 0;
}

static int administered(mctx *c, const admin *a) {
  if (!a->rxa)
    return 0;
  const cl_hl7_seg *rxa = a->rxa;
  Clinlog__V1__MedicationAdministered *b = map_alloc(c, sizeof *b);
  if (!b)
    return CL_ENOMEM;
  clinlog__v1__medication_administered__init(b);
  const char *rx = hf(a->orc, 2, 1) ? hf(a->orc, 2, 1) : hf(a->orc, 3, 1);
  b->prescription_id = S(rx);
  int rc;
  if ((rc = map_ts(c, rxa, 3, 1, 1, 1, &b->administered_at)) ||
      (rc = map_ts(c, rxa, 4, 1, 1, 1, &b->ended_at)) ||
      (rc = map_cwe(c, rxa, 5, 1, &b->medication)) ||
      (rc = map_qty(c, rxa, 6, 7, &b->dose_given)) ||
      (rc = map_xcn(c, rxa, 10, 1, &b->performer)) ||
      (rc = map_cwe(c, rxa, 18, 1, &b->not_given_reason)) ||
      (rc = admin_status(c, rxa, (int *)&b->status)) ||
      (rc = map_table_code(c, a->rxr, 1, "0162", &b->route)) ||
      (rc = map_code(c, a->rxr, 2, 1, &b->site)))
    return rc;
  if (!b->administered_at)
    return map_fail(c, CL_HL7_REQUIRED_MISSING, rxa, NULL, 3, 1, 1, 0,
                    "the start of administration is required");
  if (!b->medication)
    return map_fail(c, CL_HL7_REQUIRED_MISSING, rxa, NULL, 5, 1, 1, 0,
                    "the administered code is required");
  /* one administration of an order at one time: stable across resends */
  b->administration_id = map_printf(c, "%s-%s-%s", rx ? rx : c->h->control_id, hf(rxa, 3, 1),
                                    hf(rxa, 2, 1) ? hf(rxa, 2, 1) : "1");
  b->lot_number = S(hf(rxa, 15, 1));
  b->scanned_product_barcode = S(hf(rxa, 25, 1) ? hf(rxa, 25, 1) : hf(a->zbc, 2, 1));
  b->scanned_wristband_id = S(hf(a->zbc, 1, 1));
  b->encounter_id = S(c->encounter_id);
  if (!b->administration_id)
    return CL_ENOMEM;
  return map_emit(c, b->administered_at, CLINLOG__V1__EVENT__BODY_MEDICATION_ADMINISTERED, b);
}

int map_ras(mctx *c) {
  admin a = {0};
  for (size_t i = 1; i <= cl_hl7_nsegments(c->m); i++) {
    const cl_hl7_seg *s = cl_hl7_segment_at(c->m, i);
    int rc = 0;
    if (map_is(s, "ORC") || map_is(s, "RXA")) {
      rc = administered(c, &a);
      a.rxa = a.rxr = a.zbc = NULL;
      if (map_is(s, "ORC"))
        a.orc = s;
      else
        a.rxa = s;
    } else if (map_is(s, "RXR") && a.rxa && !a.rxr) {
      a.rxr = s;
    } else if (map_is(s, "ZBC") && a.rxa && !a.zbc) {
      a.zbc = s;
    }
    if (rc)
      return rc;
  }
  if (!cl_hl7_count(c->m, "RXA"))
    return map_fail(c, CL_HL7_SEGMENT_SEQUENCE, NULL, "RXA", 0, 0, 0, 0,
                    "RAS^O17 needs an RXA segment");
  return administered(c, &a);
}

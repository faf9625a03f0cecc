/* A MedicationRequest with status stopped or cancelled (fhirw.h): the
 * prescription (MedicationPrescribed, as fhirw_meds.c maps an active one)
 * and its MedicationDiscontinued, one atomic append, so that the view
 * (query/fhir/map_pharmacy.c: the prescription, then status stopped,
 * statusReason and a note by who stopped it) is what was written.
 *
 *   statusReason       reason
 *   note[last]         the stop as the view writes it: text "Discontinued"
 *                      or "Discontinued: <the reason's text>",
 *                      authorReference (discontinued_by), time (effective,
 *                      and the event's occurred_at)
 * A cancelled request reads back as stopped (the event does not tell them
 * apart). Any other status goes to w_medication_request. */
#include <stdio.h>
#include <string.h>

#include "adapters/fhir/fhirw_int.h"

/* What the view writes of a reason: its text, else its first coding's
 * display, else that coding's code. */
static const char *reason_text(const pb_cc *r) {
  if (r == NULL)
    return NULL;
  if (r->text != NULL && r->text[0])
    return r->text;
  for (size_t i = 0; i < r->n_coding; i++) {
    const pb_code *c = r->coding[i];
    if (c != NULL && c->display != NULL && c->display[0])
      return c->display;
    if (c != NULL && c->code != NULL && c->code[0])
      return c->code;
  }
  return NULL;
}

/* The last note: the stop. */
static int stop_note(wctx *c, const json_t *note, const char *np,
                     Clinlog__V1__MedicationDiscontinued *d) {
  static const char *const keys[] = {"authorReference", "time", "text", NULL};
  const json_t *by = json_object_get(note, "authorReference");
  const char *text;
  int rc;
  if (!json_is_object(note))
    return w_fail(c, 400, "structure", np, "expected an Annotation (an object)");
  if ((rc = w_only(c, note, np, keys, 0)) || (rc = w_instant(c, note, np, "time", &d->effective)) ||
      (rc = w_str(c, note, np, "text", &text)) ||
      (by && (rc = w_reference(c, by, w_path(c, np, "authorReference", 0), &d->discontinued_by))))
    return rc;
  const char *why = reason_text(d->reason);
  char *want = why ? w_printf(c, "Discontinued: %s", why) : w_printf(c, "Discontinued");
  if (want == NULL)
    return CL_ENOMEM;
  if (d->effective == NULL || text == NULL || strcmp(text, want) != 0)
    return w_fail(c, 422, "not-supported", np,
                  "a stopped request's last note is its stop: time, and text \"%.200s\"", want);
  return 0;
}

int w_medication_stop(wctx *c, const json_t *r) {
  const char *st = json_string_value(json_object_get(r, "status"));
  if (st == NULL || (strcmp(st, "stopped") != 0 && strcmp(st, "cancelled") != 0))
    return w_medication_request(c, r);
  const char *p = c->root;
  Clinlog__V1__MedicationDiscontinued *d = w_alloc(c, sizeof *d);
  if (d == NULL)
    return CL_ENOMEM;
  clinlog__v1__medication_discontinued__init(d);
  const json_t *notes;
  size_t n;
  int rc;
  if ((rc = w_concept(c, r, p, "statusReason", &d->reason)) ||
      (rc = w_arr(c, r, p, "note", &notes, &n)))
    return rc;
  const char *np = w_path(c, p, "note", 0);
  if (n == 0)
    return w_fail(c, 400, "required", np,
                  "a stopped request's last note says when it stopped (the view writes it)");
  if ((rc = stop_note(c, json_array_get(notes, n - 1), w_path(c, np, NULL, (long)n - 1), d)))
    return rc;
  /* the prescription as it was: active, without the stop. The copy shares
   * its members with r, so what the mapping keeps of them lives as r does. */
  json_t *rx = json_copy((json_t *)r), *rest = json_array();
  for (size_t i = 0; rest != NULL && i + 1 < n; i++)
    json_array_append(rest, json_array_get(notes, i));
  if (rx == NULL || rest == NULL || json_object_set_new(rx, "status", json_string("active"))) {
    json_decref(rx);
    json_decref(rest);
    return cl_err_set(c->err, CL_ENOMEM, "out of memory");
  }
  json_object_del(rx, "statusReason");
  if (n > 1)
    json_object_set_new(rx, "note", rest);
  else {
    json_object_del(rx, "note");
    json_decref(rest);
  }
  rc = w_medication_request(c, rx);
  json_decref(rx);
  if (rc)
    return rc;
  d->prescription_id = (char *)c->bid;
  c->when = d->effective;
  return w_emit(c, CLINLOG__V1__EVENT__BODY_MEDICATION_DISCONTINUED, d);
}

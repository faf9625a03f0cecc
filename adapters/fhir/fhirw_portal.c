/* Appointment, Communication and Task (fhirw.h): the inverses of the
 * portal mappers (query/fhir/map_portal.c).
 *
 *   Appointment    AppointmentBooked (status booked); status cancelled or
 *                  noshow: AppointmentBooked then AppointmentCancelled,
 *                  one atomic append, so the view holds what was written
 *                  (the cancelled appointment keeps its booking)
 *   Communication  MessageSent (status completed)
 *   Task           RefillRequested (status requested, intent order, code
 *                  fulfill of task-code; focus the prescription)
 *
 * As for the other types, every element the view writes is read back and
 * anything else is refused naming its element. */
#include <string.h>

#include "adapters/fhir/fhirw_int.h"

#define EXT_BOOKING_CHANNEL FJ_CLINLOG_EXT "booking-channel"
#define EXT_BOOKED_BY FJ_CLINLOG_EXT "booked-by"
#define EXT_CANCELLED_BY FJ_CLINLOG_EXT "cancelled-by"
#define BOOKING_CHANNEL_SYSTEM "https://clinlog.dev/fhir/CodeSystem/booking-channel"
#define THREAD_SYSTEM "urn:clinlog:thread"
#define PARTICIPATION "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
#define TASK_CODE "http://hl7.org/fhir/CodeSystem/task-code"

/* ---- Appointment ---- */

typedef struct appt {
  Clinlog__V1__AppointmentBooked *b;
  Clinlog__V1__AppointmentCancelled *x;
  int cancelled; /* status cancelled or noshow */
} appt;

/* A Reference held in a valueReference extension. */
static int ext_ref(wctx *c, const json_t *e, const char *ep, Clinlog__V1__Reference **out) {
  static const char *const keys[] = {"url", "valueReference", NULL};
  const json_t *v;
  int rc;
  if ((rc = w_only(c, e, ep, keys, 0)) || (rc = w_obj(c, e, ep, "valueReference", &v)))
    return rc;
  if (v == NULL)
    return w_fail(c, 400, "required", w_path(c, ep, "valueReference", 0), "required");
  return w_reference(c, v, w_path(c, ep, "valueReference", 0), out);
}

static int appt_ext(wctx *c, const json_t *e, const char *ep, const char *url, void *ctx) {
  appt *a = ctx;
  if (!strcmp(url, EXT_BOOKED_BY))
    return ext_ref(c, e, ep, &a->b->booked_by);
  if (!strcmp(url, EXT_CANCELLED_BY) && a->cancelled)
    return ext_ref(c, e, ep, &a->x->cancelled_by);
  if (strcmp(url, EXT_BOOKING_CHANNEL) != 0)
    return w_fail(c, 422, "not-supported", w_path(c, ep, "url", 0),
                  "the extensions written are " EXT_BOOKING_CHANNEL ", " EXT_BOOKED_BY
                  " and (cancelled) " EXT_CANCELLED_BY);
  static const char *const keys[] = {"url", "valueCoding", NULL};
  static const char *const channels[] = {"portal", "phone", "in-person", "interface", NULL};
  const json_t *v;
  pb_code *code;
  int rc;
  if ((rc = w_only(c, e, ep, keys, 0)) || (rc = w_obj(c, e, ep, "valueCoding", &v)))
    return rc;
  const char *vp = w_path(c, ep, "valueCoding", 0);
  if (v == NULL)
    return w_fail(c, 400, "required", vp, "required");
  if ((rc = w_coding(c, v, vp, &code)))
    return rc;
  int k = 0;
  while (channels[k] && strcmp(channels[k], code->code))
    k++;
  if (channels[k] == NULL || strcmp(code->system, BOOKING_CHANNEL_SYSTEM) != 0)
    return w_fail(
        c, 422, "code-invalid", w_path(c, vp, "code", 0),
        "a booking channel is portal, phone, in-person or interface of " BOOKING_CHANNEL_SYSTEM);
  a->b->booked_via = (Clinlog__V1__BookingChannel)(k + 1);
  return 0;
}

/* participant[]: the patient (no type; required), the practitioner (type
 * ATND) and the place (a Location reference), each status accepted. */
static int participants(wctx *c, const json_t *r, const char *p, appt *a) {
  const json_t *ps;
  size_t n;
  int rc = w_arr(c, r, p, "participant", &ps, &n), patient = 0;
  const char *pp = w_path(c, p, "participant", 0);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    static const char *const keys[] = {"type", "actor", "status", NULL};
    static const char *const st[] = {"accepted", NULL}, *const atnd[] = {"ATND", NULL};
    const json_t *v = json_array_get(ps, i), *actor;
    const char *ip = w_path(c, pp, NULL, (long)i), *ref = NULL;
    int status, type = -1;
    if (!json_is_object(v))
      return w_fail(c, 400, "structure", ip, "expected an object");
    if ((rc = w_only(c, v, ip, keys, 0)) || (rc = w_enum(c, v, ip, "status", st, &status)) ||
        (rc = w_obj(c, v, ip, "actor", &actor)))
      return rc;
    const json_t *types = json_object_get(v, "type");
    if (types != NULL) {
      json_t *one = json_is_array(types) && json_array_size(types) == 1
                        ? json_pack("{s:O}", "type[0]", json_array_get(types, 0))
                        : NULL;
      rc = one ? w_concept_in(c, one, ip, "type[0]", PARTICIPATION, atnd, &type)
               : w_fail(c, 422, "not-supported", w_path(c, ip, "type", 0),
                        "one type (ATND of " PARTICIPATION ") can be written");
      json_decref(one);
      if (rc)
        return rc;
    }
    if (status < 0 || actor == NULL)
      return w_fail(c, 400, "required", w_path(c, ip, status < 0 ? "status" : "actor", 0),
                    "required (status accepted)");
    const char *ap = w_path(c, ip, "actor", 0);
    if ((rc = w_str(c, actor, ap, "reference", &ref)))
      return rc;
    if (type == 0) {
      if (a->b->practitioner != NULL)
        return w_fail(c, 422, "not-supported", ip, "one practitioner (ATND) can be written");
      rc = w_reference(c, actor, ap, &a->b->practitioner);
    } else if (ref != NULL && !strncmp(ref, "Location/", 9)) {
      if (a->b->location != NULL)
        return w_fail(c, 422, "not-supported", ip, "one location can be written");
      Clinlog__V1__Location *l = w_alloc(c, sizeof *l);
      if (l == NULL)
        return CL_ENOMEM;
      clinlog__v1__location__init(l);
      a->b->location = l;
      rc = w_reference(c, actor, ap, &l->reference);
    } else {
      if (patient++)
        return w_fail(c, 422, "not-supported", ip, "one patient can be written");
      rc = w_subject(c, v, ip, "actor");
    }
  }
  if (rc == 0 && !patient)
    return w_fail(c, 400, "required", pp, "required: the patient (a participant without type)");
  return rc;
}

int w_appointment(wctx *c, const json_t *r) {
  static const char *const keys[] = {
      "extension",  "identifier", "status", "cancelationReason", "serviceType", "appointmentType",
      "reasonCode", "start",      "end",    "created",           "comment",     "participant",
      NULL};
  static const char *const statuses[] = {"booked", "cancelled", "noshow", NULL};
  static const char *const nums[] = {"PLAC", "FILL", NULL};
  const char *p = c->root;
  appt a = {.b = w_alloc(c, sizeof *a.b), .x = w_alloc(c, sizeof *a.x)};
  if (a.b == NULL || a.x == NULL)
    return CL_ENOMEM;
  clinlog__v1__appointment_booked__init(a.b);
  clinlog__v1__appointment_cancelled__init(a.x);
  Clinlog__V1__AppointmentBooked *b = a.b;
  Clinlog__V1__Identifier *ids[2] = {NULL, NULL};
  pb_cc **service;
  size_t nservice;
  pb_ts *created;
  int rc, status;
  if ((rc = w_only(c, r, p, keys, 1)) || (rc = w_enum(c, r, p, "status", statuses, &status)))
    return rc;
  a.cancelled = status > 0;
  if ((rc = participants(c, r, p, &a)) || (rc = w_business_id(c, r, p)) ||
      (rc = w_other_ids(c, r, p, nums, ids, "one PLAC and one FILL identifier (v2-0203)")) ||
      (rc = w_each_ext(c, r, p, appt_ext, &a)) ||
      (rc = w_concepts(c, r, p, "serviceType", &service, &nservice)) ||
      (rc = w_concept_code(c, r, p, "appointmentType", &b->appointment_type)) ||
      (rc = w_concepts(c, r, p, "reasonCode", &b->reason, &b->n_reason)) ||
      (rc = w_instant(c, r, p, "start", &b->start)) || (rc = w_instant(c, r, p, "end", &b->end)) ||
      (rc = w_instant(c, r, p, "created", &created)) ||
      (rc = w_str(c, r, p, "comment", (const char **)&b->comment)) ||
      (rc = w_concept(c, r, p, "cancelationReason", &a.x->reason)))
    return rc;
  if (status < 0)
    return w_fail(c, 400, "required", w_path(c, p, "status", 0),
                  "required (booked, cancelled or noshow)");
  if (nservice > 1)
    return w_fail(c, 422, "not-supported", w_path(c, w_path(c, p, "serviceType", 0), NULL, 1),
                  "one serviceType can be written");
  if ((b->start == NULL) != (b->end == NULL) || (b->start == NULL && !a.cancelled))
    return w_fail(c, 400, "required", w_path(c, p, b->start ? "end" : "start", 0),
                  "start and end go together, and a booked appointment has them (app-2, app-3)");
  if (a.x->reason != NULL && !a.cancelled)
    return w_fail(c, 422, "invalid", w_path(c, p, "cancelationReason", 0),
                  "a cancelationReason is for a cancelled appointment");
  b->service_type = nservice ? service[0] : NULL;
  b->placer_appointment_id = ids[0], b->filler_appointment_id = ids[1];
  b->appointment_id = (char *)c->bid;
  if (b->comment == NULL)
    b->comment = "";
  if (created != NULL)
    c->when = created;
  if ((rc = w_emit(c, CLINLOG__V1__EVENT__BODY_APPOINTMENT_BOOKED, b)) || !a.cancelled)
    return rc;
  a.x->appointment_id = b->appointment_id;
  a.x->no_show = status == 2;
  return w_emit(c, CLINLOG__V1__EVENT__BODY_APPOINTMENT_CANCELLED, a.x);
}

/* ---- Communication ---- */

/* payload[]: the body first (contentString), then the attached documents
 * (contentReference). An HTML body (the view's contentAttachment) is not
 * written yet. */
static int payload(wctx *c, const json_t *r, const char *p, Clinlog__V1__MessageSent *b) {
  const json_t *ps;
  size_t n;
  int rc = w_arr(c, r, p, "payload", &ps, &n);
  if (rc || n == 0)
    return rc;
  if ((b->attachments = w_alloc(c, n * sizeof *b->attachments)) == NULL)
    return CL_ENOMEM;
  const char *pp = w_path(c, p, "payload", 0);
  for (size_t i = 0; i < n; i++) {
    static const char *const keys[] = {"contentString", "contentReference", NULL};
    const json_t *v = json_array_get(ps, i), *ref;
    const char *ip = w_path(c, pp, NULL, (long)i), *text;
    if (!json_is_object(v))
      return w_fail(c, 400, "structure", ip, "expected an object");
    if ((rc = w_only(c, v, ip, keys, 0)) || (rc = w_str(c, v, ip, "contentString", &text)) ||
        (rc = w_obj(c, v, ip, "contentReference", &ref)))
      return rc;
    if ((text != NULL) == (ref != NULL))
      return w_fail(c, 400, "required", ip, "one content[x]: contentString or contentReference");
    if (text != NULL && (i > 0 || b->body[0]))
      return w_fail(c, 422, "not-supported", w_path(c, ip, "contentString", 0),
                    "the message text is the first payload, and there is one");
    if (text != NULL) {
      b->body = (char *)text;
      continue;
    }
    rc = w_reference(c, ref, w_path(c, ip, "contentReference", 0),
                     &b->attachments[b->n_attachments]);
    if (rc)
      return rc;
    b->n_attachments++;
  }
  return 0;
}

int w_communication(wctx *c, const json_t *r) {
  static const char *const keys[] = {"identifier", "inResponseTo", "status", "category",
                                     "subject",    "topic",        "sent",   "recipient",
                                     "sender",     "payload",      NULL};
  static const char *const statuses[] = {"completed", NULL};
  const char *p = c->root;
  Clinlog__V1__MessageSent *b = w_alloc(c, sizeof *b);
  if (b == NULL)
    return CL_ENOMEM;
  clinlog__v1__message_sent__init(b);
  pb_code **cat;
  size_t ncat;
  const json_t *topic;
  int rc, status;
  const json_t *sender = json_object_get(r, "sender");
  if ((rc = w_only(c, r, p, keys, 1)) || (rc = w_subject(c, r, p, "subject")) ||
      (rc = w_business_id(c, r, p)) ||
      (rc = w_system_id(c, r, p, THREAD_SYSTEM, &b->thread_id, "one conversation id")) ||
      (rc = w_enum(c, r, p, "status", statuses, &status)) ||
      (rc = w_concepts_code(c, r, p, "category", &cat, &ncat)) ||
      (rc = w_obj(c, r, p, "topic", &topic)) || (rc = w_instant(c, r, p, "sent", &b->sent_at)) ||
      (rc = w_list(c, r, p, "recipient", (w_conv_fn)w_reference, (void ***)&b->recipients,
                   &b->n_recipients)) ||
      (sender && (rc = w_reference(c, sender, w_path(c, p, "sender", 0), &b->sender))) ||
      (rc = payload(c, r, p, b)) ||
      (rc = w_ref_bid_first(c, r, p, "inResponseTo", "Communication",
                            (const char **)&b->in_reply_to)))
    return rc;
  if (status < 0)
    return w_fail(c, 400, "required", w_path(c, p, "status", 0), "required (completed)");
  if (ncat > 1)
    return w_fail(c, 422, "not-supported", w_path(c, w_path(c, p, "category", 0), NULL, 1),
                  "one category can be written");
  if (topic != NULL) {
    static const char *const tkeys[] = {"text", NULL};
    const char *tp = w_path(c, p, "topic", 0);
    if ((rc = w_only(c, topic, tp, tkeys, 0)) ||
        (rc = w_str(c, topic, tp, "text", (const char **)&b->subject)))
      return rc;
  }
  b->category = ncat ? cat[0] : NULL;
  b->message_id = (char *)c->bid;
  if (b->subject == NULL)
    b->subject = "";
  if (b->in_reply_to == NULL)
    b->in_reply_to = "";
  if (b->sent_at != NULL)
    c->when = b->sent_at;
  return w_emit(c, CLINLOG__V1__EVENT__BODY_MESSAGE_SENT, b);
}

/* ---- Task ---- */

int w_task(wctx *c, const json_t *r) {
  static const char *const keys[] = {"identifier", "status",    "intent", "code", "focus", "for",
                                     "authoredOn", "requester", "owner",  "note", "input", NULL};
  static const char *const statuses[] = {"requested", NULL}, *const intents[] = {"order", NULL};
  static const char *const codes[] = {"fulfill", NULL};
  const char *p = c->root;
  Clinlog__V1__RefillRequested *b = w_alloc(c, sizeof *b);
  if (b == NULL)
    return CL_ENOMEM;
  clinlog__v1__refill_requested__init(b);
  const json_t *req = json_object_get(r, "requester"), *owner = json_object_get(r, "owner"), *in;
  size_t nin;
  int rc, status, intent, code;
  /* the code without its text (the view writes its own display and text) */
  json_t *code_only = json_object(), *cc = json_deep_copy(json_object_get(r, "code"));
  if (code_only != NULL && cc != NULL) {
    json_object_del(cc, "text");
    json_object_set(code_only, "code", cc);
  }
  json_decref(cc);
  if ((rc = w_only(c, r, p, keys, 1)) || (rc = w_subject(c, r, p, "for")) ||
      (rc = w_business_id(c, r, p)) || (rc = business_only(c, r, p)) ||
      (rc = w_enum(c, r, p, "status", statuses, &status)) ||
      (rc = w_enum(c, r, p, "intent", intents, &intent)) ||
      (rc = code_only ? w_concept_in(c, code_only, p, "code", TASK_CODE, codes, &code)
                      : CL_ENOMEM) ||
      (rc = w_ref_bid(c, r, p, "focus", "MedicationRequest", (const char **)&b->prescription_id)) ||
      (rc = w_instant(c, r, p, "authoredOn", &b->requested_at)) ||
      (req && (rc = w_reference(c, req, w_path(c, p, "requester", 0), &b->requested_by))) ||
      (owner && (rc = w_reference(c, owner, w_path(c, p, "owner", 0), &b->pharmacy))) ||
      (rc = w_note(c, r, p, (const char **)&b->note)) || (rc = w_arr(c, r, p, "input", &in, &nin)))
    goto done;
  if (status < 0 || intent < 0 || code < 0) {
    rc = w_fail(c, 400, "required",
                w_path(c, p,
                       status < 0   ? "status"
                       : intent < 0 ? "intent"
                                    : "code",
                       0),
                "required (a refill request: status requested, intent order, code fulfill)");
    goto done;
  }
  if (nin > 1) {
    rc = w_fail(c, 422, "not-supported", w_path(c, w_path(c, p, "input", 0), NULL, 1),
                "one input (the medication as the patient named it) can be written");
    goto done;
  }
  if (nin == 1) {
    static const char *const ikeys[] = {"type", "valueCodeableConcept", NULL};
    const json_t *v = json_array_get(in, 0);
    const char *ip = w_path(c, w_path(c, p, "input", 0), NULL, 0);
    const char *t = json_string_value(json_object_get(json_object_get(v, "type"), "text"));
    if (!json_is_object(v)) {
      rc = w_fail(c, 400, "structure", ip, "expected an object");
      goto done;
    }
    if ((rc = w_only(c, v, ip, ikeys, 0)) ||
        (rc = w_concept(c, v, ip, "valueCodeableConcept", &b->medication)))
      goto done;
    if (t == NULL || strcmp(t, "medication") || json_object_size(json_object_get(v, "type")) != 1 ||
        b->medication == NULL) {
      rc = w_fail(c, 422, "not-supported", ip,
                  "the input written is type {text: medication} with a valueCodeableConcept");
      goto done;
    }
  }
  b->request_id = (char *)c->bid;
  if (b->prescription_id == NULL)
    b->prescription_id = "";
  if (b->note == NULL)
    b->note = "";
  if (b->requested_at != NULL)
    c->when = b->requested_at;
  rc = w_emit(c, CLINLOG__V1__EVENT__BODY_REFILL_REQUESTED, b);
done:
  json_decref(code_only);
  return rc;
}

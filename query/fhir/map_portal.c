/* Portal and scheduling events (600-603) -> Appointment, Communication, Task
 * (docs/fhir-map-pharmacy-imaging-portal.md).
 *
 *   AppointmentBooked    Appointment (status booked; a later one with the
 *                        same appointment_id, e.g. a reschedule, replaces
 *                        it, keeping `created`)
 *   AppointmentCancelled the same Appointment, status cancelled or noshow,
 *                        cancelationReason (a minimal one if no booking is
 *                        on record)
 *   MessageSent          Communication (status completed)
 *   RefillRequested      Task (status requested, intent order, code
 *                        fulfill) whose focus is the prescription's
 *                        MedicationRequest and whose owner is the pharmacy.
 *                        The catalog also allows a MedicationRequest of
 *                        intent proposal; a Task keeps the request apart
 *                        from the prescription it asks about and carries
 *                        who asked and which pharmacy is to act.
 *
 * Ids are cl_fhir_pid of the business id (appointment_id, message_id,
 * request_id); an event without one, or outside a patient's stream (the
 * catalog writes these to patient-<id> only), is not mapped.
 *
 * How a booking was made and by whom, and who cancelled it, have no R4
 * element: clinlog extensions (FJ_CLINLOG_EXT). */
#include <string.h>

#include "query/fhir/fj.h"
#include "query/fhir/map.h"

#define EXT_BOOKING_CHANNEL FJ_CLINLOG_EXT "booking-channel"
#define EXT_BOOKED_BY FJ_CLINLOG_EXT "booked-by"
#define EXT_CANCELLED_BY FJ_CLINLOG_EXT "cancelled-by"
#define BOOKING_CHANNEL_SYSTEM "https://clinlog.dev/fhir/CodeSystem/booking-channel"
#define THREAD_SYSTEM "urn:clinlog:thread"

/* ---- Appointment ---- */

/* FHIR JSON member order of an Appointment (R4). */
static const char *const appt_order[] = {"resourceType", "id",
                                         "extension",    "identifier",
                                         "status",       "cancelationReason",
                                         "serviceType",  "appointmentType",
                                         "reasonCode",   "start",
                                         "_start",       "end",
                                         "_end",         "created",
                                         "comment",      "participant"};

static const char *channel_code(Clinlog__V1__BookingChannel c, const char **display) {
  switch (c) {
  case CLINLOG__V1__BOOKING_CHANNEL__BOOKING_CHANNEL_PORTAL:
    *display = "Patient portal or app";
    return "portal";
  case CLINLOG__V1__BOOKING_CHANNEL__BOOKING_CHANNEL_PHONE:
    *display = "By phone with staff";
    return "phone";
  case CLINLOG__V1__BOOKING_CHANNEL__BOOKING_CHANNEL_IN_PERSON:
    *display = "In person at a front desk";
    return "in-person";
  case CLINLOG__V1__BOOKING_CHANNEL__BOOKING_CHANNEL_INTERFACE:
    *display = "From another system";
    return "interface";
  default:
    return NULL;
  }
}

/* Appointment.appointmentType: the Code as sent; the v2-0276 system is
 * filled in for that table's codes sent without one. */
static json_t *appointment_type(const Clinlog__V1__Code *c) {
  static const char *const v2_0276[] = {"CHECKUP", "EMERGENCY", "FOLLOWUP", "ROUTINE", "WALKIN"};
  return fj_concept_code_in(c, "http://terminology.hl7.org/CodeSystem/v2-0276", v2_0276,
                            sizeof v2_0276 / sizeof v2_0276[0]);
}

/* A participant who has accepted the appointment (participant.status is
 * required; a booked slot is an accepted one). */
static json_t *accepted(json_t *type, json_t *actor) {
  if (actor == NULL) {
    json_decref(type);
    return NULL;
  }
  json_t *o = json_object();
  fj_set_one(o, "type", type);
  json_object_set_new(o, "actor", actor);
  json_object_set_new(o, "status", json_string("accepted"));
  return o;
}

/* start and end go together (app-2), and only a proposed, cancelled or
 * waitlisted appointment may lack them (app-3): a missing one is stated
 * as unknown (data-absent-reason on the primitive). */
static void times_or_absent(json_t *a) {
  const char *st = json_string_value(json_object_get(a, "status"));
  int optional = st != NULL && (strcmp(st, "proposed") == 0 || strcmp(st, "cancelled") == 0 ||
                                strcmp(st, "waitlist") == 0);
  int has_start = json_object_get(a, "start") != NULL || json_object_get(a, "_start") != NULL;
  int has_end = json_object_get(a, "end") != NULL || json_object_get(a, "_end") != NULL;
  if (has_start == has_end && (has_start || optional))
    return;
  if (!has_start)
    json_object_set_new(a, "_start", fj_unknown());
  if (!has_end)
    json_object_set_new(a, "_end", fj_unknown());
}

static int booked(cl_fhir_map *m, const Clinlog__V1__AppointmentBooked *b, cl_err *err) {
  if (b->appointment_id == NULL || b->appointment_id[0] == '\0' || m->patient_id == NULL)
    return 0;
  char id[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, "Appointment", b->appointment_id, id);
  /* a rebooking keeps when the appointment was first made */
  json_t *cur = NULL, *created = NULL;
  int rc = cl_fhir_map_get(m, "Appointment", id, &cur, err);
  if (rc == 0)
    created = json_incref(json_object_get(cur, "created"));
  else if (rc != CL_ENOTFOUND)
    return rc;
  json_decref(cur);
  json_t *a = cl_fhir_new("Appointment", id);
  const char *chd = NULL, *ch = channel_code(b->booked_via, &chd);
  if (ch != NULL)
    fj_ext_add(a, json_pack("{s:s,s:{s:s,s:s,s:s}}", "url", EXT_BOOKING_CHANNEL, "valueCoding",
                            "system", BOOKING_CHANNEL_SYSTEM, "code", ch, "display", chd));
  fj_ext_add(a, fj_ext(EXT_BOOKED_BY, "valueReference", fj_reference(b->booked_by)));
  json_t *ids = json_array();
  fj_push(ids, fj_business_id(b->appointment_id));
  fj_push(ids, fj_identifier_typed(b->placer_appointment_id, "PLAC", "Placer Identifier"));
  fj_push(ids, fj_identifier_typed(b->filler_appointment_id, "FILL", "Filler Identifier"));
  fj_set(a, "identifier", ids);
  json_object_set_new(a, "status", json_string("booked"));
  fj_set_one(a, "serviceType", fj_concept(b->service_type));
  if (b->appointment_type != NULL)
    fj_set(a, "appointmentType", appointment_type(b->appointment_type));
  fj_set(a, "reasonCode", fj_concepts(b->reason, b->n_reason));
  fj_set(a, "start", fj_instant(b->start));
  fj_set(a, "end", fj_instant(b->end));
  fj_set(a, "created", created != NULL ? created : fj_instant(m->ev->occurred_at));
  fj_set_str(a, "comment", b->comment);
  json_t *parts = json_array();
  fj_push(parts, accepted(NULL, cl_fhir_patient_ref(m)));
  fj_push(parts,
          accepted(fj_concept_lit("http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                  "ATND", "attender"),
                   fj_reference(b->practitioner)));
  fj_push(parts, accepted(NULL, fj_location_ref(b->location)));
  fj_set(a, "participant", parts);
  times_or_absent(a);
  return cl_fhir_map_put(m, fj_in_order(a, appt_order, sizeof appt_order / sizeof appt_order[0]),
                         err);
}

static int cancelled(cl_fhir_map *m, const Clinlog__V1__AppointmentCancelled *b, cl_err *err) {
  if (b->appointment_id == NULL || b->appointment_id[0] == '\0' || m->patient_id == NULL)
    return 0;
  char id[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, "Appointment", b->appointment_id, id);
  json_t *a;
  int rc = cl_fhir_map_get(m, "Appointment", id, &a, err);
  if (rc == CL_ENOTFOUND) { /* no booking on record: the patient is the one
                               participant we know (required, 1..*) */
    a = cl_fhir_new("Appointment", id);
    fj_set_one(a, "identifier", fj_business_id(b->appointment_id));
    json_t *parts = json_array();
    fj_push(parts, accepted(NULL, cl_fhir_patient_ref(m)));
    json_object_set_new(a, "participant", parts);
  } else if (rc < 0) {
    return rc;
  }
  json_object_del(a, "meta");
  json_object_set_new(a, "status", json_string(b->no_show ? "noshow" : "cancelled"));
  json_object_del(a, "cancelationReason");
  fj_set(a, "cancelationReason", fj_concept(b->reason));
  fj_ext_drop(a, EXT_CANCELLED_BY);
  fj_ext_add(a, fj_ext(EXT_CANCELLED_BY, "valueReference", fj_reference(b->cancelled_by)));
  times_or_absent(a);
  return cl_fhir_map_put(m, fj_in_order(a, appt_order, sizeof appt_order / sizeof appt_order[0]),
                         err);
}

/* ---- Communication ---- */

static int message_sent(cl_fhir_map *m, const Clinlog__V1__MessageSent *b, cl_err *err) {
  if (b->message_id == NULL || b->message_id[0] == '\0' || m->patient_id == NULL)
    return 0;
  char id[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, "Communication", b->message_id, id);
  json_t *c = cl_fhir_new("Communication", id);
  json_t *ids = json_array();
  fj_push(ids, fj_business_id(b->message_id));
  /* the conversation: every message of a thread carries its id, so a search
   * by identifier finds the thread (a thread has no resource of its own) */
  if (b->thread_id != NULL && b->thread_id[0] != '\0')
    fj_push(ids, json_pack("{s:s,s:s}", "system", THREAD_SYSTEM, "value", b->thread_id));
  fj_set(c, "identifier", ids);
  fj_set_one(c, "inResponseTo", cl_fhir_pref(m, "Communication", b->in_reply_to));
  json_object_set_new(c, "status", json_string("completed"));
  if (b->category != NULL)
    fj_set_one(c, "category", fj_concept_code(b->category));
  fj_set(c, "subject", cl_fhir_patient_ref(m));
  if (b->subject != NULL && b->subject[0] != '\0') /* the subject line */
    json_object_set_new(c, "topic", json_pack("{s:s}", "text", b->subject));
  fj_set(c, "sent", fj_instant(b->sent_at != NULL ? b->sent_at : m->ev->occurred_at));
  fj_set(c, "recipient", fj_references(b->recipients, b->n_recipients));
  fj_set(c, "sender", fj_reference(b->sender));
  json_t *payload = json_array();
  if (b->body != NULL && b->body[0] != '\0') {
    /* plain text is a string; any other media type (HTML) an Attachment */
    const char *mt = b->mime_type;
    if (mt == NULL || mt[0] == '\0' || strncmp(mt, "text/plain", 10) == 0)
      fj_push(payload, json_pack("{s:s}", "contentString", b->body));
    else {
      json_t *att = fj_text_attachment(b->body, mt, NULL);
      if (att != NULL)
        fj_push(payload, json_pack("{s:o}", "contentAttachment", att));
    }
  }
  for (size_t i = 0; i < b->n_attachments; i++) {
    json_t *r = fj_reference(b->attachments[i]);
    if (r != NULL)
      fj_push(payload, json_pack("{s:o}", "contentReference", r));
  }
  fj_set(c, "payload", payload);
  return cl_fhir_map_put(m, c, err);
}

/* ---- Task ---- */

static int refill_requested(cl_fhir_map *m, const Clinlog__V1__RefillRequested *b, cl_err *err) {
  if (b->request_id == NULL || b->request_id[0] == '\0' || m->patient_id == NULL)
    return 0;
  char id[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, "Task", b->request_id, id);
  json_t *t = cl_fhir_new("Task", id);
  fj_set_one(t, "identifier", fj_business_id(b->request_id));
  json_object_set_new(t, "status", json_string("requested"));
  json_object_set_new(t, "intent", json_string("order"));
  json_t *code = fj_concept_lit("http://hl7.org/fhir/CodeSystem/task-code", "fulfill",
                                "Fulfill the focal request");
  json_object_set_new(code, "text", json_string("Medication refill request"));
  json_object_set_new(t, "code", code);
  fj_set(t, "focus", cl_fhir_pref(m, "MedicationRequest", b->prescription_id));
  fj_set(t, "for", cl_fhir_patient_ref(m));
  fj_set(t, "authoredOn",
         fj_instant(b->requested_at != NULL ? b->requested_at : m->ev->occurred_at));
  fj_set(t, "requester", fj_reference(b->requested_by));
  fj_set(t, "owner", fj_reference(b->pharmacy));
  fj_set(t, "note", fj_note(b->note));
  /* the medication as the patient named it, whatever the prescription says */
  json_t *med = fj_concept(b->medication);
  if (med != NULL)
    fj_set_one(
        t, "input",
        json_pack("{s:{s:s},s:o}", "type", "text", "medication", "valueCodeableConcept", med));
  return cl_fhir_map_put(m, t, err);
}

int cl_fhir_map_portal(cl_fhir_map *m, cl_err *err) {
  const Clinlog__V1__Event *ev = m->ev;
  switch (ev->body_case) {
  case CLINLOG__V1__EVENT__BODY_APPOINTMENT_BOOKED:
    return booked(m, ev->appointment_booked, err);
  case CLINLOG__V1__EVENT__BODY_APPOINTMENT_CANCELLED:
    return cancelled(m, ev->appointment_cancelled, err);
  case CLINLOG__V1__EVENT__BODY_MESSAGE_SENT:
    return message_sent(m, ev->message_sent, err);
  case CLINLOG__V1__EVENT__BODY_REFILL_REQUESTED:
    return refill_requested(m, ev->refill_requested, err);
  default:
    return 0;
  }
}

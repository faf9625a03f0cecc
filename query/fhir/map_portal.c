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
 * element: clinlog extensions (CL_EXT). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/fhir/fj.h"
#include "query/fhir/map.h"

#define CL_EXT "https://clinlog.dev/fhir/StructureDefinition/"
#define EXT_BOOKING_CHANNEL CL_EXT "booking-channel"
#define EXT_BOOKED_BY CL_EXT "booked-by"
#define EXT_CANCELLED_BY CL_EXT "cancelled-by"
#define BOOKING_CHANNEL_SYSTEM "https://clinlog.dev/fhir/CodeSystem/booking-channel"
#define THREAD_SYSTEM "urn:clinlog:thread"
#define DAR_EXT "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
#define V2_0203 "http://terminology.hl7.org/CodeSystem/v2-0203"

/* ---- helpers ---- */

static json_t *bid_identifier(const char *bid) {
  return json_pack("{s:s,s:s}", "system", FJ_BUSINESS_ID_SYSTEM, "value", bid);
}

/* An Identifier whose type defaults to a v2-0203 code (PLAC, FILL). */
static json_t *typed_identifier(const Clinlog__V1__Identifier *id, const char *type,
                                const char *display) {
  json_t *o = fj_identifier(id);
  if (o == NULL || json_object_get(o, "type") != NULL)
    return o;
  json_t *t = json_pack("{s:o}", "type", fj_concept_lit(V2_0203, type, display));
  json_object_update(t, o); /* type first, as fj_identifier writes it */
  json_decref(o);
  return t;
}

static json_t *unknown_ext(void) {
  return json_pack("[{s:s,s:s}]", "url", DAR_EXT, "valueCode", "unknown");
}

static void add_ext(json_t *res, json_t *e) {
  if (e == NULL)
    return;
  json_t *ext = json_object_get(res, "extension");
  if (ext == NULL) {
    ext = json_array();
    json_object_set_new(res, "extension", ext);
  }
  json_array_append_new(ext, e);
}

/* Removes the extension with `url` from res.extension. */
static void drop_ext(json_t *res, const char *url) {
  json_t *ext = json_object_get(res, "extension");
  for (size_t i = json_array_size(ext); i-- > 0;) {
    const char *u = json_string_value(json_object_get(json_array_get(ext, i), "url"));
    if (u != NULL && strcmp(u, url) == 0)
      json_array_remove(ext, i);
  }
  if (ext != NULL && json_array_size(ext) == 0)
    json_object_del(res, "extension");
}

/* {url, valueReference} from a party (NULL if the party says nothing). */
static json_t *ref_ext(const char *url, const Clinlog__V1__Reference *r) {
  json_t *ref = fj_reference(r);
  return ref != NULL ? json_pack("{s:s,s:o}", "url", url, "valueReference", ref) : NULL;
}

static json_t *in_order(json_t *p, const char *const *order, size_t n) {
  json_t *o = json_object();
  for (size_t i = 0; i < n; i++) {
    json_t *v = json_object_get(p, order[i]);
    if (v != NULL)
      json_object_set(o, order[i], v);
  }
  const char *k;
  json_t *v;
  json_object_foreach(p, k, v) { /* anything else keeps its place at the end */
    if (json_object_get(o, k) == NULL)
      json_object_set(o, k, v);
  }
  json_decref(p);
  return o;
}

/* A location as a Reference: its FHIR Location when known, else its display
 * or the PL components (as Encounter.location, map_patient.c). */
static json_t *location_ref(const Clinlog__V1__Location *l) {
  if (l == NULL)
    return NULL;
  json_t *r = fj_reference(l->reference);
  if (r == NULL)
    r = json_object();
  if (json_object_get(r, "display") == NULL) {
    char buf[512] = "";
    if (l->display != NULL && l->display[0] != '\0')
      snprintf(buf, sizeof buf, "%s", l->display);
    else {
      const char *parts[] = {l->facility, l->point_of_care, l->room, l->bed};
      size_t o = 0;
      for (size_t i = 0; i < 4; i++)
        if (parts[i] != NULL && parts[i][0] != '\0') {
          int w = snprintf(buf + o, sizeof buf - o, "%s%s", o ? " " : "", parts[i]);
          if (w > 0 && (size_t)w < sizeof buf - o)
            o += (size_t)w;
        }
    }
    fj_set_str(r, "display", buf);
  }
  if (json_object_size(r) == 0) {
    json_decref(r);
    return NULL;
  }
  return r;
}

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
  json_t *cc = fj_concept_code(c);
  json_t *coding = json_array_get(json_object_get(cc, "coding"), 0);
  if (coding != NULL && json_object_get(coding, "system") == NULL)
    for (size_t i = 0; i < sizeof v2_0276 / sizeof v2_0276[0]; i++)
      if (strcmp(c->code, v2_0276[i]) == 0) {
        json_t *o = json_pack("{s:s}", "system", "http://terminology.hl7.org/CodeSystem/v2-0276");
        json_object_update(o, coding);
        json_array_set_new(json_object_get(cc, "coding"), 0, o);
        break;
      }
  return cc;
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
    json_object_set_new(a, "_start", json_pack("{s:o}", "extension", unknown_ext()));
  if (!has_end)
    json_object_set_new(a, "_end", json_pack("{s:o}", "extension", unknown_ext()));
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
    add_ext(a, json_pack("{s:s,s:{s:s,s:s,s:s}}", "url", EXT_BOOKING_CHANNEL, "valueCoding",
                         "system", BOOKING_CHANNEL_SYSTEM, "code", ch, "display", chd));
  add_ext(a, ref_ext(EXT_BOOKED_BY, b->booked_by));
  json_t *ids = json_array();
  fj_push(ids, bid_identifier(b->appointment_id));
  fj_push(ids, typed_identifier(b->placer_appointment_id, "PLAC", "Placer Identifier"));
  fj_push(ids, typed_identifier(b->filler_appointment_id, "FILL", "Filler Identifier"));
  fj_set(a, "identifier", ids);
  json_object_set_new(a, "status", json_string("booked"));
  fj_set_one(a, "serviceType", fj_concept(b->service_type));
  if (b->appointment_type != NULL)
    fj_set(a, "appointmentType", appointment_type(b->appointment_type));
  json_t *reasons = json_array();
  for (size_t i = 0; i < b->n_reason; i++)
    fj_push(reasons, fj_concept(b->reason[i]));
  fj_set(a, "reasonCode", reasons);
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
  fj_push(parts, accepted(NULL, location_ref(b->location)));
  fj_set(a, "participant", parts);
  times_or_absent(a);
  return cl_fhir_map_put(m, in_order(a, appt_order, sizeof appt_order / sizeof appt_order[0]), err);
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
    fj_set_one(a, "identifier", bid_identifier(b->appointment_id));
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
  drop_ext(a, EXT_CANCELLED_BY);
  add_ext(a, ref_ext(EXT_CANCELLED_BY, b->cancelled_by));
  times_or_absent(a);
  return cl_fhir_map_put(m, in_order(a, appt_order, sizeof appt_order / sizeof appt_order[0]), err);
}

/* ---- Communication ---- */

/* A text as an Attachment of its media type (base64). */
static json_t *text_attachment(const char *text, const char *mime) {
  size_t n = strlen(text);
  size_t b64n = sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL);
  char *b64 = malloc(b64n);
  if (b64 == NULL)
    return NULL;
  sodium_bin2base64(b64, b64n, (const unsigned char *)text, n, sodium_base64_VARIANT_ORIGINAL);
  json_t *a = json_pack("{s:s,s:s}", "contentType", mime, "data", b64);
  free(b64);
  return a;
}

static int message_sent(cl_fhir_map *m, const Clinlog__V1__MessageSent *b, cl_err *err) {
  if (b->message_id == NULL || b->message_id[0] == '\0' || m->patient_id == NULL)
    return 0;
  char id[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, "Communication", b->message_id, id);
  json_t *c = cl_fhir_new("Communication", id);
  json_t *ids = json_array();
  fj_push(ids, bid_identifier(b->message_id));
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
  json_t *to = json_array();
  for (size_t i = 0; i < b->n_recipients; i++)
    fj_push(to, fj_reference(b->recipients[i]));
  fj_set(c, "recipient", to);
  fj_set(c, "sender", fj_reference(b->sender));
  json_t *payload = json_array();
  if (b->body != NULL && b->body[0] != '\0') {
    /* plain text is a string; any other media type (HTML) an Attachment */
    const char *mt = b->mime_type;
    if (mt == NULL || mt[0] == '\0' || strncmp(mt, "text/plain", 10) == 0)
      fj_push(payload, json_pack("{s:s}", "contentString", b->body));
    else {
      json_t *att = text_attachment(b->body, mt);
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
  fj_set_one(t, "identifier", bid_identifier(b->request_id));
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

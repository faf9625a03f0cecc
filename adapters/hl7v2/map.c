/* HL7 v2 to catalog events (map.h): the dispatch on MSH-9, the envelope
 * every event shares (stream of the PID-3 patient, derived ids, sender,
 * times), ADT (patients and encounters), SIU^S12, DFT^P03 and MDM^T02.
 * Orders, administrations and results are in map_orders.c.
 *
 * Invariant: the result depends only on the message and the options, so
 * the same message always gives the same event bytes (idempotent resend). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/hl7v2/map_int.h"
#include "store/alloc.h"
#include "store/idhash.h"
#include "store/logkey.h"

/* ---- context helpers ---- */

void *map_alloc(mctx *c, size_t n) {
  void *p = hl7_arena_alloc(&c->a, n ? n : 1);
  if (!p)
    map_oom(c);
  return p;
}

char *map_strdup(mctx *c, const char *s) {
  size_t n = strlen(s);
  char *p = map_alloc(c, n + 1);
  if (p)
    memcpy(p, s, n + 1);
  return p;
}

char *map_printf(mctx *c, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return map_strdup(c, buf);
}

int map_oom(mctx *c) {
  if (c->herr && c->herr->code != CL_HL7_INTERNAL) {
    memset(c->herr, 0, sizeof *c->herr);
    c->herr->code = CL_HL7_INTERNAL;
    snprintf(c->herr->reason, sizeof c->herr->reason, "out of memory");
  }
  return cl_err_set(c->err, CL_ENOMEM, "out of memory mapping the message");
}

const char *hv(const cl_hl7_seg *s, unsigned f, unsigned r, unsigned comp, unsigned sub) {
  if (!s)
    return NULL;
  cl_hl7_value v = cl_hl7_get(s, f, r, comp, sub);
  return v.state == CL_HL7_VALUED ? v.s : NULL;
}

int map_sent(const cl_hl7_seg *s, unsigned f) {
  cl_hl7_value v = cl_hl7_raw(s, f, 1, 0, 0);
  return v.state == CL_HL7_VALUED || v.state == CL_HL7_NULL;
}

/* Offset of the deepest node that exists on the path. */
static size_t offset_of(const cl_hl7_seg *s, unsigned f, unsigned r, unsigned comp, unsigned sub) {
  const hl7_node *n = &s->node;
  unsigned pos[4] = {f, r ? r : 1, comp, sub};
  for (int i = 0; i < 4 && pos[i]; i++) {
    if (pos[i] > n->nkids)
      break;
    n = &n->kids[pos[i] - 1];
  }
  return n->off;
}

int map_fail(mctx *c, int code, const cl_hl7_seg *s, const char *segid, unsigned f, unsigned r,
             unsigned comp, unsigned sub, const char *fmt, ...) {
  cl_hl7_error e;
  memset(&e, 0, sizeof e);
  e.code = code;
  snprintf(e.segment, sizeof e.segment, "%s", s ? cl_hl7_seg_id(s) : segid);
  if (s) {
    e.seg_seq = s->seq;
    e.seg_index = s->index;
    e.offset = offset_of(s, f, r, comp, sub);
  }
  e.field = f, e.rep = f ? r : 0, e.comp = comp, e.sub = sub;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e.reason, sizeof e.reason, fmt, ap);
  va_end(ap);
  for (char *p = e.reason; *p; p++) /* printable ASCII, as the ACK builder expects */
    if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
      *p = '?';
  char where[64];
  int k = snprintf(where, sizeof where, "%s", e.segment);
  if (e.seg_seq > 1)
    k += snprintf(where + k, sizeof where - (size_t)k, "[%u]", e.seg_seq);
  if (f)
    k += snprintf(where + k, sizeof where - (size_t)k, "-%u", f);
  if (f && r > 1)
    k += snprintf(where + k, sizeof where - (size_t)k, "[%u]", r);
  if (comp)
    k += snprintf(where + k, sizeof where - (size_t)k, ".%u", comp);
  if (sub)
    snprintf(where + k, sizeof where - (size_t)k, ".%u", sub);
  if (c->herr)
    *c->herr = e;
  if (s)
    return cl_err_set(c->err, CL_EMALFORMED, "%s (segment %u, byte %zu): %s", where, e.seg_index,
                      e.offset, e.reason);
  return cl_err_set(c->err, CL_EMALFORMED, "%s: %s", where, e.reason);
}

/* ---- ids ---- */

void cl_hl7_event_id(const char *app, const char *facility, const char *control_id, uint32_t index,
                     uint8_t out[16]) {
  static const char dom[] = "clinlog-hl7v2-event-id-v1";
  cl_idhash h;
  cl_idhash_init(&h);
  cl_idhash_bytes(&h, dom, sizeof dom);
  cl_idhash_str(&h, app);
  cl_idhash_str(&h, facility);
  cl_idhash_str(&h, control_id);
  cl_idhash_u32(&h, index);
  cl_idhash_final(&h, out);
}

/* ---- envelope ---- */

int map_emit(mctx *c, pb_ts *t, unsigned body_case, void *body) {
  Clinlog__V1__Event *e = map_alloc(c, sizeof *e);
  Clinlog__V1__RecordedBy *by = map_alloc(c, sizeof *by);
  if (!e || !by)
    return CL_ENOMEM;
  clinlog__v1__event__init(e);
  clinlog__v1__recorded_by__init(by);
  by->principal_id = (char *)c->o->principal_id;
  by->role = (char *)(c->o->role ? c->o->role : "integration");
  e->recorded_by = by;
  e->stream = c->stream;
  e->occurred_at = t ? t : c->when;
  e->correlation_id = (ProtobufCBinaryData){16, c->corr};
  e->source_system = (char *)c->h->sending_app;
  e->source_facility = (char *)c->h->sending_facility;
  e->source_message_id = (char *)c->h->control_id;
  /* the body members of the oneof share one pointer slot; the descriptor says where */
  const ProtobufCFieldDescriptor *fd =
      protobuf_c_message_descriptor_get_field(&clinlog__v1__event__descriptor, body_case);
  if (!fd) /* a programmer's mistake, but never a crash */
    return cl_err_set(c->err, CL_EINVAL, "no Event body with field number %u", body_case);
  e->body_case = (Clinlog__V1__Event__BodyCase)body_case;
  memcpy((char *)e + fd->offset, &body, sizeof body);
  if (c->nev == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 8;
    Clinlog__V1__Event **v = map_alloc(c, cap * sizeof *v);
    if (!v)
      return CL_ENOMEM;
    if (c->nev)
      memcpy(v, c->ev, c->nev * sizeof *v);
    c->ev = v, c->cap = cap;
  }
  c->ev[c->nev++] = e;
  return 0;
}

/* ---- the patient (PID-3) ---- */

static int id_chars(const char *v, const char *extra) {
  for (const char *p = v; *p; p++)
    if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
          strchr(extra, *p)))
      return 0;
  return 1;
}

/* The patient id: the first PID-3 repetition of type MR, else PI, else PT;
 * "<CX-4.1 or MSH-4.1>-<CX-1>" (docs/adapters.md). */
static int patient_of(mctx *c, const cl_hl7_seg *pid) {
  static const char *const TYPES[] = {"MR", "PI", "PT"};
  size_t n = cl_hl7_nreps(pid, 3);
  for (size_t t = 0; t < 3; t++)
    for (unsigned r = 1; r <= n; r++) {
      const char *type = hv(pid, 3, r, 5, 1);
      if (!type || strcmp(type, TYPES[t]))
        continue;
      const char *v = hv(pid, 3, r, 1, 1), *auth = hv(pid, 3, r, 4, 1);
      if (!v)
        return map_fail(c, CL_HL7_REQUIRED_MISSING, pid, NULL, 3, r, 1, 0,
                        "the %s identifier has no value", TYPES[t]);
      if (!id_chars(v, ".-"))
        return map_fail(c, CL_HL7_DATA_TYPE, pid, NULL, 3, r, 1, 0,
                        "patient identifier '%.40s' has characters other than A-Z a-z 0-9 . -", v);
      if (auth && !id_chars(auth, "."))
        return map_fail(c, CL_HL7_DATA_TYPE, pid, NULL, 3, r, 4, 1,
                        "assigning authority '%.40s' has characters other than A-Z a-z 0-9 .",
                        auth);
      if (!auth && *c->h->sending_facility && id_chars(c->h->sending_facility, "."))
        auth = c->h->sending_facility;
      char id[80];
      int k = snprintf(id, sizeof id, "%s%s%s", auth ? auth : "", auth ? "-" : "", v);
      if (k > 64)
        return map_fail(c, CL_HL7_DATA_TYPE, pid, NULL, 3, r, 1, 0,
                        "patient id '%.40s...' is longer than 64 characters", id);
      if (!(c->patient_id = map_strdup(c, id)) || !(c->stream = map_printf(c, "patient-%s", id)))
        return CL_ENOMEM;
      return 0;
    }
  return map_fail(c, CL_HL7_REQUIRED_MISSING, pid, NULL, 3, 0, 0, 0,
                  "no patient identifier of type MR, PI or PT (CX-5)");
}

static int gender_of(mctx *c, const cl_hl7_seg *pid, int *out) {
  const char *g = hf(pid, 8, 1);
  *out = CLINLOG__V1__ADMINISTRATIVE_GENDER__ADMINISTRATIVE_GENDER_UNSPECIFIED;
  if (!g)
    return 0;
  if (!strcmp(g, "M"))
    *out = CLINLOG__V1__ADMINISTRATIVE_GENDER__ADMINISTRATIVE_GENDER_MALE;
  else if (!strcmp(g, "F"))
    *out = CLINLOG__V1__ADMINISTRATIVE_GENDER__ADMINISTRATIVE_GENDER_FEMALE;
  else if (!strcmp(g, "O") || !strcmp(g, "A") || !strcmp(g, "N"))
    *out = CLINLOG__V1__ADMINISTRATIVE_GENDER__ADMINISTRATIVE_GENDER_OTHER;
  else if (!strcmp(g, "U"))
    *out = CLINLOG__V1__ADMINISTRATIVE_GENDER__ADMINISTRATIVE_GENDER_UNKNOWN;
  else
    return map_fail(c, CL_HL7_TABLE_VALUE, pid, NULL, 8, 1, 1, 0,
                    "administrative sex '%.20s' is not in table 0001 (M, F, O, A, N, U)", g);
  return 0;
}

/* Repetitions of field f mapped by fn into an arena array. */
#define REPS(c, s, f, fn, arr, n)                                                                  \
  do {                                                                                             \
    size_t k_ = cl_hl7_nreps((s), (f));                                                            \
    (arr) = map_alloc((c), (k_ ? k_ : 1) * sizeof *(arr));                                         \
    if (!(arr))                                                                                    \
      return CL_ENOMEM;                                                                            \
    for (unsigned r_ = 1; r_ <= k_; r_++) {                                                        \
      int rc_ = fn((c), (s), (f), r_, &(arr)[(n)]);                                                \
      if (rc_)                                                                                     \
        return rc_;                                                                                \
      (n) += (arr)[(n)] != NULL;                                                                   \
    }                                                                                              \
  } while (0)

static int xtn_home(mctx *c, const cl_hl7_seg *s, unsigned f, unsigned r,
                    Clinlog__V1__ContactPoint **out) {
  return map_xtn(c, s, f, r, "home", out);
}
static int xtn_work(mctx *c, const cl_hl7_seg *s, unsigned f, unsigned r,
                    Clinlog__V1__ContactPoint **out) {
  return map_xtn(c, s, f, r, "work", out);
}

static int contacts_of(mctx *c, Clinlog__V1__Contact ***out, size_t *n) {
  size_t k = cl_hl7_count(c->m, "NK1");
  *out = map_alloc(c, (k ? k : 1) * sizeof **out);
  if (!*out)
    return CL_ENOMEM;
  for (size_t i = 1; i <= k; i++) {
    const cl_hl7_seg *nk = cl_hl7_segment(c->m, "NK1", i);
    Clinlog__V1__Contact *ct = map_alloc(c, sizeof *ct);
    if (!ct)
      return CL_ENOMEM;
    clinlog__v1__contact__init(ct);
    int rc = map_xpn(c, nk, 2, 1, &ct->name);
    if (!rc)
      rc = map_code(c, nk, 3, 1, &ct->relationship);
    if (!rc)
      rc = map_xad(c, nk, 4, 1, &ct->address);
    if (rc)
      return rc;
    REPS(c, nk, 5, xtn_home, ct->telecom, ct->n_telecom);
    (*out)[(*n)++] = ct;
  }
  return 0;
}

/* PID (+ PD1, NK1) as a PatientRegistered body. */
static int patient_body(mctx *c, const cl_hl7_seg *pid, Clinlog__V1__PatientRegistered **out) {
  Clinlog__V1__PatientRegistered *p = map_alloc(c, sizeof *p);
  if (!p)
    return CL_ENOMEM;
  clinlog__v1__patient_registered__init(p);
  p->patient_id = (char *)c->patient_id;
  REPS(c, pid, 3, map_cx, p->identifiers, p->n_identifiers);
  REPS(c, pid, 5, map_xpn, p->names, p->n_names);
  REPS(c, pid, 11, map_xad, p->addresses, p->n_addresses);
  size_t nt = cl_hl7_nreps(pid, 13) + cl_hl7_nreps(pid, 14);
  p->telecom = map_alloc(c, (nt ? nt : 1) * sizeof *p->telecom);
  if (!p->telecom)
    return CL_ENOMEM;
  for (unsigned f = 13; f <= 14; f++) /* home, then business phones, in one list */
    for (unsigned r = 1; r <= cl_hl7_nreps(pid, f); r++) {
      int rc = (f == 13 ? xtn_home : xtn_work)(c, pid, f, r, &p->telecom[p->n_telecom]);
      if (rc)
        return rc;
      p->n_telecom += p->telecom[p->n_telecom] != NULL;
    }
  REPS(c, pid, 10, map_code, p->race, p->n_race);
  const char *dod = hf(pid, 30, 1);
  int rc = map_date(c, pid, 7, 1, 1, 1, (const char **)&p->birth_date);
  if (!rc)
    rc = gender_of(c, pid, (int *)&p->gender);
  if (!rc)
    rc = map_ts(c, pid, 29, 1, 1, 1, &p->deceased_at);
  if (!rc)
    rc = map_table_code(c, pid, 16, "0002", &p->marital_status);
  if (!rc)
    rc = map_code(c, pid, 22, 1, &p->ethnicity);
  if (!rc)
    rc = map_code(c, pid, 15, 1, &p->preferred_language);
  if (!rc)
    rc = map_xcn(c, cl_hl7_segment(c->m, "PD1", 1), 4, 1, &p->primary_care_provider);
  if (!rc)
    rc = contacts_of(c, &p->contacts, &p->n_contacts);
  if (rc)
    return rc;
  if (dod && strcmp(dod, "Y") && strcmp(dod, "N"))
    return map_fail(c, CL_HL7_TABLE_VALUE, pid, NULL, 30, 1, 1, 0,
                    "death indicator '%.20s' is not Y or N", dod);
  p->deceased = (dod && !strcmp(dod, "Y")) || p->deceased_at;
  p->birth_date = S(p->birth_date);
  *out = p;
  return 0;
}

/* ADT^A08/A31: the PID fields that were sent (valued or "") replace. */
static int demographics(mctx *c, const cl_hl7_seg *pid) {
  Clinlog__V1__PatientRegistered *p;
  int rc = patient_body(c, pid, &p);
  if (rc)
    return rc;
  Clinlog__V1__PatientDemographicsUpdated *u = map_alloc(c, sizeof *u);
  char **names = map_alloc(c, 16 * sizeof *names);
  if (!u || !names)
    return CL_ENOMEM;
  clinlog__v1__patient_demographics_updated__init(u);
  u->patient_id = p->patient_id;
  u->updated_fields = names;
#define UPD(cond, name, assign)                                                                    \
  do {                                                                                             \
    if (cond) {                                                                                    \
      names[u->n_updated_fields++] = (name);                                                       \
      assign;                                                                                      \
    }                                                                                              \
  } while (0)
  UPD(map_sent(pid, 3), "identifiers",
      (u->identifiers = p->identifiers, u->n_identifiers = p->n_identifiers));
  UPD(map_sent(pid, 5), "names", (u->names = p->names, u->n_names = p->n_names));
  UPD(map_sent(pid, 7), "birth_date", u->birth_date = p->birth_date);
  UPD(map_sent(pid, 8), "gender", u->gender = p->gender);
  UPD(map_sent(pid, 11), "addresses",
      (u->addresses = p->addresses, u->n_addresses = p->n_addresses));
  UPD(map_sent(pid, 13) || map_sent(pid, 14), "telecom",
      (u->telecom = p->telecom, u->n_telecom = p->n_telecom));
  UPD(map_sent(pid, 30) || map_sent(pid, 29), "deceased", u->deceased = p->deceased);
  UPD(map_sent(pid, 29), "deceased_at", u->deceased_at = p->deceased_at);
  UPD(map_sent(pid, 16), "marital_status", u->marital_status = p->marital_status);
  UPD(map_sent(pid, 10), "race", (u->race = p->race, u->n_race = p->n_race));
  UPD(map_sent(pid, 22), "ethnicity", u->ethnicity = p->ethnicity);
  UPD(map_sent(pid, 15), "preferred_language", u->preferred_language = p->preferred_language);
  UPD(cl_hl7_count(c->m, "PD1") && map_sent(cl_hl7_segment(c->m, "PD1", 1), 4),
      "primary_care_provider", u->primary_care_provider = p->primary_care_provider);
  UPD(cl_hl7_count(c->m, "NK1"), "contacts",
      (u->contacts = p->contacts, u->n_contacts = p->n_contacts));
#undef UPD
  return map_emit(c, NULL, CLINLOG__V1__EVENT__BODY_PATIENT_DEMOGRAPHICS_UPDATED, u);
}

static int registered(mctx *c, const cl_hl7_seg *pid) {
  Clinlog__V1__PatientRegistered *p;
  int rc = patient_body(c, pid, &p);
  if (rc)
    return rc;
  return map_emit(c, NULL, CLINLOG__V1__EVENT__BODY_PATIENT_REGISTERED, p);
}

/* v2 patient class (table 0004) to v3 ActCode. */
static const char *encounter_class(const char *v) {
  static const char *const M[][2] = {{"I", "IMP"}, {"O", "AMB"}, {"E", "EMER"}, {"P", "PRENC"},
                                     {"R", "AMB"}, {"B", "IMP"}, {"C", "AMB"},  {"N", ""}};
  for (size_t i = 0; i < sizeof M / sizeof M[0]; i++)
    if (!strcmp(v, M[i][0]))
      return M[i][1];
  return NULL;
}

static int require_pv1(mctx *c, const cl_hl7_seg **pv1) {
  *pv1 = cl_hl7_segment(c->m, "PV1", 1);
  if (!*pv1)
    return map_fail(c, CL_HL7_SEGMENT_SEQUENCE, NULL, "PV1", 0, 0, 0, 0,
                    "%s^%s needs a PV1 segment", c->h->message_code, c->h->trigger);
  return 0;
}

static int encounter_started(mctx *c) {
  const cl_hl7_seg *pv1;
  int rc = require_pv1(c, &pv1);
  if (rc)
    return rc;
  Clinlog__V1__EncounterStarted *b = map_alloc(c, sizeof *b);
  if (!b)
    return CL_ENOMEM;
  clinlog__v1__encounter_started__init(b);
  b->encounter_id = (char *)(c->encounter_id ? c->encounter_id : c->h->control_id);
  const char *cls = hf(pv1, 2, 1);
  if (!cls)
    return map_fail(c, CL_HL7_REQUIRED_MISSING, pv1, NULL, 2, 1, 1, 0, "patient class is required");
  const char *act = encounter_class(cls);
  if (!act)
    return map_fail(c, CL_HL7_TABLE_VALUE, pv1, NULL, 2, 1, 1, 0,
                    "patient class '%.20s' is not in table 0004", cls);
  if (*act && !(b->encounter_class =
                    map_mkcode(c, "http://terminology.hl7.org/CodeSystem/v3-ActCode", act, NULL)))
    return CL_ENOMEM;
  const cl_hl7_seg *pv2 = cl_hl7_segment(c->m, "PV2", 1);
  if (!(rc = map_pl(c, pv1, 3, 1, &b->location)) && !(rc = map_xcn(c, pv1, 7, 1, &b->attending)) &&
      !(rc = map_xcn(c, pv1, 8, 1, &b->referring)) &&
      !(rc = map_xcn(c, pv1, 17, 1, &b->admitting)) &&
      !(rc = map_ts(c, pv1, 44, 1, 1, 1, &b->start)) &&
      !(rc = map_cx(c, pv1, 19, 1, &b->visit_number)) &&
      !(rc = map_table_code(c, pv1, 14, "0023", &b->admit_source)) &&
      !(rc = map_table_code(c, pv1, 10, "0069", &b->hospital_service)))
    rc = map_cwe_list(c, pv2, 3, &b->reason, &b->n_reason);
  if (rc)
    return rc;
  b->priority = map_priority(hf(pv1, 4, 1));
  return map_emit(c, b->start, CLINLOG__V1__EVENT__BODY_ENCOUNTER_STARTED, b);
}

static int encounter_ended(mctx *c) {
  const cl_hl7_seg *pv1;
  int rc = require_pv1(c, &pv1);
  if (rc)
    return rc;
  if (!c->encounter_id)
    return map_fail(c, CL_HL7_REQUIRED_MISSING, pv1, NULL, 19, 1, 1, 0,
                    "a discharge needs the visit number (PV1-19, or PID-18)");
  Clinlog__V1__EncounterEnded *b = map_alloc(c, sizeof *b);
  if (!b)
    return CL_ENOMEM;
  clinlog__v1__encounter_ended__init(b);
  b->encounter_id = (char *)c->encounter_id;
  if ((rc = map_ts(c, pv1, 45, 1, 1, 1, &b->end)) ||
      (rc = map_table_code(c, pv1, 36, "0112", &b->discharge_disposition)) ||
      (rc = map_pl(c, pv1, 37, 1, &b->discharged_to)))
    return rc;
  const char *sys = hf(pv1, 36, 3);
  if (sys && !strcmp(sys, "NUBC")) /* UB-04 patient status */
    b->discharge_disposition->system = "https://www.nubc.org/CodeSystem/PatDischargeStatus";
  return map_emit(c, b->end, CLINLOG__V1__EVENT__BODY_ENCOUNTER_ENDED, b);
}

/* ADT^A11 (cancel admit/visit) and ADT^A13 (cancel discharge): the
 * encounter by its visit number, why (EVN-4, table 0062) and when (EVN-6,
 * the event occurred, else the message's time). */
static int encounter_cancel(mctx *c, int discharge) {
  const cl_hl7_seg *pv1, *evn = cl_hl7_segment(c->m, "EVN", 1);
  int rc = require_pv1(c, &pv1);
  if (rc)
    return rc;
  if (!c->encounter_id)
    return map_fail(c, CL_HL7_REQUIRED_MISSING, pv1, NULL, 19, 1, 1, 0,
                    "a cancellation needs the visit number (PV1-19, or PID-18)");
  pb_code *reason;
  pb_ts *at;
  if ((rc = map_table_code(c, evn, 4, "0062", &reason)) || (rc = map_ts(c, evn, 6, 1, 1, 1, &at)))
    return rc;
  if (discharge) {
    Clinlog__V1__EncounterDischargeCancelled *b = map_alloc(c, sizeof *b);
    if (!b)
      return CL_ENOMEM;
    clinlog__v1__encounter_discharge_cancelled__init(b);
    b->encounter_id = (char *)c->encounter_id;
    b->reason = reason;
    return map_emit(c, at, CLINLOG__V1__EVENT__BODY_ENCOUNTER_DISCHARGE_CANCELLED, b);
  }
  Clinlog__V1__EncounterCancelled *b = map_alloc(c, sizeof *b);
  if (!b)
    return CL_ENOMEM;
  clinlog__v1__encounter_cancelled__init(b);
  b->encounter_id = (char *)c->encounter_id;
  b->reason = reason;
  return map_emit(c, at, CLINLOG__V1__EVENT__BODY_ENCOUNTER_CANCELLED, b);
}

static int map_adt(mctx *c, const cl_hl7_seg *pid) {
  const char *t = c->h->trigger;
  int rc;
  if (!strcmp(t, "A01") || !strcmp(t, "A04") || !strcmp(t, "A28")) {
    rc = registered(c, pid);
    if (!rc && strcmp(t, "A28"))
      rc = encounter_started(c);
  } else if (!strcmp(t, "A08") || !strcmp(t, "A31")) {
    rc = demographics(c, pid);
  } else if (!strcmp(t, "A11") || !strcmp(t, "A13")) {
    rc = encounter_cancel(c, t[2] == '3');
  } else {
    rc = encounter_ended(c); /* A03 */
  }
  return rc ? rc : map_al1_dg1(c);
}

/* ---- SIU^S12 ---- */

static int map_siu(mctx *c) {
  const cl_hl7_seg *sch = cl_hl7_segment(c->m, "SCH", 1), *ais = cl_hl7_segment(c->m, "AIS", 1),
                   *aip = cl_hl7_segment(c->m, "AIP", 1), *ail = cl_hl7_segment(c->m, "AIL", 1);
  if (!sch)
    return map_fail(c, CL_HL7_SEGMENT_SEQUENCE, NULL, "SCH", 0, 0, 0, 0,
                    "SIU^S12 needs an SCH segment");
  Clinlog__V1__AppointmentBooked *b = map_alloc(c, sizeof *b);
  if (!b)
    return CL_ENOMEM;
  clinlog__v1__appointment_booked__init(b);
  const char *id = hf(sch, 2, 1) ? hf(sch, 2, 1) : hf(sch, 1, 1);
  if (!id)
    return map_fail(c, CL_HL7_REQUIRED_MISSING, sch, NULL, 2, 1, 1, 0,
                    "the appointment needs a filler (SCH-2) or placer (SCH-1) id");
  b->appointment_id = (char *)id;
  int rc;
  if ((rc = map_ei(c, sch, 1, 1, &b->placer_appointment_id)) ||
      (rc = map_ei(c, sch, 2, 1, &b->filler_appointment_id)) ||
      (rc = map_cwe_list(c, sch, 7, &b->reason, &b->n_reason)) ||
      (rc = map_table_code(c, sch, 8, "0276", &b->appointment_type)) ||
      (rc = map_ts(c, sch, 11, 1, 4, 1, &b->start)) ||
      (rc = map_ts(c, sch, 11, 1, 5, 1, &b->end)) || (rc = map_xcn(c, sch, 20, 1, &b->booked_by)) ||
      (rc = map_cwe(c, ais, 3, 1, &b->service_type)) ||
      (rc = map_xcn(c, aip, 3, 1, &b->practitioner)) || (rc = map_pl(c, ail, 3, 1, &b->location)))
    return rc;
  if (!b->start && (rc = map_ts(c, ais, 4, 1, 1, 1, &b->start)))
    return rc;
  if (!b->start)
    return map_fail(c, CL_HL7_REQUIRED_MISSING, sch, NULL, 11, 1, 4, 0,
                    "the appointment needs a start time (SCH-11.4 or AIS-4)");
  if (!b->end && ais) { /* AIS-7 duration in AIS-8 units (minutes by default) */
    const char *d, *u = hf(ais, 8, 1);
    if ((rc = map_nm(c, ais, 7, 1, 1, 1, &d)))
      return rc;
    long mult = !u || !strcmp(u, "MIN") || !strcmp(u, "min") ? 60 : !strcmp(u, "H") ? 3600 : 0;
    double secs = d ? strtod(d, NULL) * (double)mult : 0;
    if (secs < 0 || secs > 366.0 * 86400)
      return map_fail(c, CL_HL7_DATA_TYPE, ais, NULL, 7, 1, 1, 1,
                      "duration '%.20s' is negative or longer than a year", d);
    if (d && mult && (b->end = map_alloc(c, sizeof *b->end))) {
      google__protobuf__timestamp__init(b->end);
      b->end->seconds = b->start->seconds + (int64_t)secs;
      b->end->nanos = b->start->nanos;
    }
  }
  b->booked_via = CLINLOG__V1__BOOKING_CHANNEL__BOOKING_CHANNEL_INTERFACE;
  return map_emit(c, NULL, CLINLOG__V1__EVENT__BODY_APPOINTMENT_BOOKED, b);
}

/* ---- DFT^P03 ---- */

/* A decimal amount to minor units (2 decimals); 102 otherwise. */
static int money(mctx *c, const cl_hl7_seg *s, unsigned f, int negate, Clinlog__V1__Money **out) {
  *out = NULL;
  const char *v;
  int rc = map_nm(c, s, f, 1, 1, 1, &v);
  if (rc || !v)
    return rc;
  int neg = *v == '-';
  const char *p = v + neg, *dot = strchr(p, '.');
  size_t ip = dot ? (size_t)(dot - p) : strlen(p), fp = dot ? strlen(dot + 1) : 0;
  while (fp > 2 && dot[fp] == '0')
    fp--;
  if (ip > 15 || fp > 2)
    return map_fail(c, CL_HL7_DATA_TYPE, s, NULL, f, 1, 1, 1,
                    "amount '%.40s' is not a money amount (at most 15 digits and 2 decimals)", v);
  int64_t minor = 0;
  for (size_t i = 0; i < ip; i++)
    minor = minor * 10 + (p[i] - '0');
  for (size_t i = 0; i < 2; i++)
    minor = minor * 10 + (i < fp ? dot[1 + i] - '0' : 0);
  Clinlog__V1__Money *m = map_alloc(c, sizeof *m);
  if (!m)
    return CL_ENOMEM;
  clinlog__v1__money__init(m);
  m->minor_units = (neg != negate) ? -minor : minor;
  m->currency = S(hv(s, f, 1, 1, 2));
  *out = m;
  return 0;
}

static int map_dft(mctx *c) {
  size_t n = cl_hl7_count(c->m, "FT1");
  if (!n)
    return map_fail(c, CL_HL7_SEGMENT_SEQUENCE, NULL, "FT1", 0, 0, 0, 0,
                    "DFT^P03 needs an FT1 segment");
  for (size_t i = 1; i <= n; i++) {
    const cl_hl7_seg *ft = cl_hl7_segment(c->m, "FT1", i);
    const char *type = hf(ft, 6, 1);
    if (!type)
      return map_fail(c, CL_HL7_REQUIRED_MISSING, ft, NULL, 6, 1, 1, 0,
                      "transaction type is required");
    if (strcmp(type, "CG") && strcmp(type, "CD"))
      return map_fail(c, CL_HL7_TABLE_VALUE, ft, NULL, 6, 1, 1, 0,
                      "transaction type '%.20s' is not a charge (CG) or credit (CD)", type);
    Clinlog__V1__ChargeCaptured *b = map_alloc(c, sizeof *b);
    if (!b)
      return CL_ENOMEM;
    clinlog__v1__charge_captured__init(b);
    b->charge_id =
        hf(ft, 2, 1) ? (char *)hf(ft, 2, 1) : map_printf(c, "%s-%zu", c->h->control_id, i);
    b->encounter_id = S(c->encounter_id);
    unsigned pf = hf(ft, 25, 1) ? 25 : 7; /* procedure code, else transaction code */
    int rc;
    if ((rc = map_code(c, ft, pf, 1, &b->procedure)) ||
        (rc = map_nm(c, ft, 10, 1, 1, 1, (const char **)&b->units)) ||
        (rc = money(c, ft, 11, !strcmp(type, "CD"), &b->amount)) ||
        (rc = map_date(c, ft, 4, 1, 1, 1, (const char **)&b->service_date)) ||
        (rc = map_date(c, ft, 4, 1, 2, 1, (const char **)&b->service_date_end)) ||
        (rc = map_xcn(c, ft, 20, 1, &b->rendering_provider)))
      return rc;
    if (!b->procedure)
      return map_fail(c, CL_HL7_REQUIRED_MISSING, ft, NULL, 7, 1, 1, 0,
                      "the charge needs a procedure (FT1-25) or transaction code (FT1-7)");
    b->units = S(b->units ? b->units : "1");
    b->service_date = S(b->service_date);
    b->service_date_end = S(b->service_date_end);
    REPS(c, ft, 19, map_code, b->diagnoses, b->n_diagnoses);
    size_t nm = cl_hl7_nreps(ft, 26);
    if (!(b->modifiers = map_alloc(c, (nm ? nm : 1) * sizeof *b->modifiers)))
      return CL_ENOMEM;
    for (unsigned r = 1; r <= nm; r++)
      if (hv(ft, 26, r, 1, 1))
        b->modifiers[b->n_modifiers++] = (char *)hv(ft, 26, r, 1, 1);
    b->order_id = S(hf(ft, 23, 1));
    pb_ts *t;
    if ((rc = map_ts(c, ft, 4, 1, 1, 1, &t)))
      return rc;
    if ((rc = map_emit(c, t, CLINLOG__V1__EVENT__BODY_CHARGE_CAPTURED, b)))
      return rc;
  }
  return 0;
}

/* ---- MDM^T02 ---- */

static int note_status(mctx *c, const cl_hl7_seg *txa, int *out) {
  const char *v = hf(txa, 17, 1);
  *out = CLINLOG__V1__NOTE_STATUS__NOTE_STATUS_UNSPECIFIED;
  if (!v)
    return 0;
  if (!strcmp(v, "AU") || !strcmp(v, "LA"))
    *out = CLINLOG__V1__NOTE_STATUS__NOTE_STATUS_FINAL;
  else if (!strcmp(v, "IP") || !strcmp(v, "DI") || !strcmp(v, "DO") || !strcmp(v, "IN") ||
           !strcmp(v, "PA"))
    *out = CLINLOG__V1__NOTE_STATUS__NOTE_STATUS_PRELIMINARY;
  else
    return map_fail(c, CL_HL7_TABLE_VALUE, txa, NULL, 17, 1, 1, 0,
                    "document completion status '%.20s' is not in table 0271", v);
  return 0;
}

static int map_mdm(mctx *c) {
  const cl_hl7_seg *txa = cl_hl7_segment(c->m, "TXA", 1);
  if (!txa)
    return map_fail(c, CL_HL7_SEGMENT_SEQUENCE, NULL, "TXA", 0, 0, 0, 0,
                    "MDM^T02 needs a TXA segment");
  Clinlog__V1__ClinicalNoteSigned *b = map_alloc(c, sizeof *b);
  if (!b)
    return CL_ENOMEM;
  clinlog__v1__clinical_note_signed__init(b);
  b->note_id = hf(txa, 12, 1) ? (char *)hf(txa, 12, 1) : (char *)c->h->control_id;
  int rc;
  if ((rc = map_cwe(c, txa, 2, 1, &b->type)) ||
      (rc = map_ei(c, txa, 12, 1, &b->document_identifier)) ||
      (rc = map_xcn(c, txa, 9, 1, &b->author)) ||
      (rc = map_xcn(c, txa, 22, 1, &b->authenticator)) ||
      (rc = map_ts(c, txa, 22, 1, 15, 1, &b->signed_at)) ||
      (rc = note_status(c, txa, (int *)&b->status)))
    return rc;
  if (!b->type)
    return map_fail(c, CL_HL7_REQUIRED_MISSING, txa, NULL, 2, 1, 1, 0, "document type is required");
  if (!b->author && (rc = map_xcn(c, txa, 5, 1, &b->author)))
    return rc;
  if (!b->signed_at && (rc = map_ts(c, txa, 4, 1, 1, 1, &b->signed_at)))
    return rc;
  b->title = S(hf(txa, 2, 2));
  b->encounter_id = S(c->encounter_id);
  b->mime_type = "text/plain";
  /* the text: every OBX-5, in order; OBX-3 adds its coding to the type */
  hl7_buf t = {0};
  size_t n = cl_hl7_count(c->m, "OBX");
  for (size_t i = 1; i <= n; i++) {
    const cl_hl7_seg *obx = cl_hl7_segment(c->m, "OBX", i);
    char *part = map_text(c, obx, 5);
    if (!part) {
      cl_free(t.p);
      return map_oom(c);
    }
    if (i > 1)
      hl7_buf_putc(&t, '\n');
    hl7_buf_puts(&t, part);
    pb_cc *code;
    if (i == 1 && (rc = map_cwe(c, obx, 3, 1, &code)) == 0 && code && code->n_coding) {
      pb_code **v = map_alloc(c, (b->type->n_coding + 1) * sizeof *v);
      if (v) {
        memcpy(v, b->type->coding, b->type->n_coding * sizeof *v);
        v[b->type->n_coding++] = code->coding[0];
        b->type->coding = v;
      }
    }
    if (rc) {
      cl_free(t.p);
      return rc;
    }
  }
  hl7_buf_putc(&t, '\0');
  b->text = t.oom ? NULL : map_strdup(c, t.p);
  cl_free(t.p);
  if (!b->text)
    return map_oom(c);
  return map_emit(c, b->signed_at, CLINLOG__V1__EVENT__BODY_CLINICAL_NOTE_SIGNED, b);
}

/* ---- dispatch ---- */

static const struct {
  const char *type, *trigger;
  int (*fn)(mctx *c);
} KINDS[] = {
    {"ADT", "A01", NULL},       {"ADT", "A03", NULL},       {"ADT", "A04", NULL},
    {"ADT", "A08", NULL},       {"ADT", "A11", NULL},       {"ADT", "A13", NULL},
    {"ADT", "A28", NULL},       {"ADT", "A31", NULL},
    {"ORM", "O01", map_orders}, {"RDE", "O11", map_orders}, {"RAS", "O17", map_ras},
    {"ORU", "R01", map_oru},    {"SIU", "S12", map_siu},    {"DFT", "P03", map_dft},
    {"MDM", "T02", map_mdm},
};

static int dispatch(mctx *c) {
  const cl_hl7_seg *msh = cl_hl7_segment_at(c->m, 1);
  int known_type = 0;
  for (size_t i = 0; i < sizeof KINDS / sizeof KINDS[0]; i++) {
    if (strcmp(c->h->message_code, KINDS[i].type))
      continue;
    known_type = 1;
    if (strcmp(c->h->trigger, KINDS[i].trigger))
      continue;
    const cl_hl7_seg *pid = cl_hl7_segment(c->m, "PID", 1);
    if (!pid)
      return map_fail(c, CL_HL7_SEGMENT_SEQUENCE, NULL, "PID", 0, 0, 0, 0,
                      "%s^%s needs a PID segment", c->h->message_code, c->h->trigger);
    int rc = patient_of(c, pid);
    if (rc)
      return rc;
    const cl_hl7_seg *evn = cl_hl7_segment(c->m, "EVN", 1), *pv1 = cl_hl7_segment(c->m, "PV1", 1);
    if ((rc = map_ts(c, evn, 2, 1, 1, 1, &c->when)) ||
        (!c->when && (rc = map_ts(c, msh, 7, 1, 1, 1, &c->when))))
      return rc;
    if (!c->when)
      return map_fail(c, CL_HL7_REQUIRED_MISSING, msh, NULL, 7, 1, 1, 0,
                      "the message time (MSH-7) is required");
    c->encounter_id = hf(pv1, 19, 1) ? hf(pv1, 19, 1) : hf(pid, 18, 1);
    rc = KINDS[i].fn ? KINDS[i].fn(c) : map_adt(c, pid);
    if (!rc && !c->nev)
      rc = map_fail(c, CL_HL7_SEGMENT_SEQUENCE, NULL, "", 0, 0, 0, 0,
                    "%s^%s carries nothing to record", c->h->message_code, c->h->trigger);
    return rc;
  }
  if (known_type)
    return map_fail(c, CL_HL7_UNSUPPORTED_EVENT, msh, NULL, 9, 1, 2, 0,
                    "unsupported trigger event '%.20s' for %.20s", c->h->trigger,
                    c->h->message_code);
  return map_fail(c, CL_HL7_UNSUPPORTED_TYPE, msh, NULL, 9, 1, 1, 0,
                  "unsupported message type '%.20s'", c->h->message_code);
}

static int pack(mctx *c, cl_hl7_mapped *r) {
  r->ev = cl_calloc(c->nev, sizeof *r->ev);
  if (!r->ev)
    return map_oom(c);
  for (size_t i = 0; i < c->nev; i++) {
    Clinlog__V1__Event *e = c->ev[i];
    cl_hl7_event *o = &r->ev[i];
    cl_hl7_event_id(c->h->sending_app, c->h->sending_facility, c->h->control_id, (uint32_t)i,
                    o->event_id);
    e->event_id = (ProtobufCBinaryData){16, o->event_id};
    o->len = protobuf_c_message_get_packed_size(&e->base);
    if (!(o->bytes = cl_malloc(o->len ? o->len : 1)))
      return map_oom(c);
    protobuf_c_message_pack(&e->base, o->bytes);
    o->type = (uint32_t)e->body_case;
    snprintf(o->stream, sizeof o->stream, "%s", e->stream);
    r->n++;
  }
  return 0;
}

void cl_hl7_mapped_free(cl_hl7_mapped *r) {
  if (!r)
    return;
  for (size_t i = 0; i < r->n; i++)
    cl_free(r->ev[i].bytes);
  cl_free(r->ev);
  cl_free(r);
}

int cl_hl7_map(const cl_hl7_msg *m, const cl_hl7_map_opts *o, cl_hl7_mapped **out,
               cl_hl7_error *herr, cl_err *err) {
  if (out)
    *out = NULL;
  if (herr)
    memset(herr, 0, sizeof *herr);
  if (!m || !o || !out || !o->principal_id || !*o->principal_id)
    return cl_err_set(err, CL_EINVAL, "cl_hl7_map: NULL message, options or principal");
  mctx c = {.m = m, .h = cl_hl7_header_of(m), .o = o, .herr = herr, .err = err};
  cl_hl7_event_id(c.h->sending_app, c.h->sending_facility, c.h->control_id, UINT32_MAX, c.corr);
  cl_hl7_mapped *r = cl_calloc(1, sizeof *r);
  int rc = r ? dispatch(&c) : map_oom(&c);
  if (!rc)
    rc = pack(&c, r);
  if (!rc) {
    memcpy(r->correlation_id, c.corr, 16);
    snprintf(r->patient_id, sizeof r->patient_id, "%s", c.patient_id);
    *out = r;
  } else {
    cl_hl7_mapped_free(r);
  }
  hl7_arena_free(&c.a);
  return rc;
}

int cl_hl7_sign(const cl_hl7_mapped *r, const cl_signer *s, cl_hl7_signed *out, cl_err *err) {
  return cl_hl7_sign_for(r, s, NULL, out, err);
}

int cl_hl7_sign_for(const cl_hl7_mapped *r, const cl_signer *s, cl_log *log, cl_hl7_signed *out,
                    cl_err *err) {
  memset(out, 0, sizeof *out);
  if (!r || !s || !r->n)
    return cl_err_set(err, CL_EINVAL, "hl7 sign: no events");
  uint8_t(*hashes)[32] = calloc(r->n, 32);
  out->events = calloc(r->n, sizeof *out->events);
  if (!hashes || !out->events) {
    free(hashes);
    free(out->events);
    out->events = NULL;
    return cl_err_set(err, CL_ENOMEM, "hl7 sign: out of memory");
  }
  for (size_t i = 0; i < r->n; i++) {
    out->events[i] = (ProtobufCBinaryData){r->ev[i].len, r->ev[i].bytes};
    cl_event_hash(r->ev[i].bytes, r->ev[i].len, hashes[i]);
  }
  if (log)
    cl_log_sign_batch_as(log, s, (const uint8_t(*)[32])hashes, r->n, out->sigbytes);
  else
    cl_sign_batch(s, (const uint8_t(*)[32])hashes, r->n, out->sigbytes);
  free(hashes);
  memcpy(out->pk, s->pk, sizeof out->pk);
  clinlog__v1__signature__init(&out->sig);
  out->sig.key_id = (ProtobufCBinaryData){sizeof out->pk, out->pk};
  out->sig.signature = (ProtobufCBinaryData){sizeof out->sigbytes, out->sigbytes};
  clinlog__v1__append_batch__init(&out->batch);
  out->batch.n_events = r->n;
  out->batch.events = out->events;
  out->batch.batch_signature = &out->sig;
  return 0;
}

void cl_hl7_signed_free(cl_hl7_signed *b) {
  if (!b)
    return;
  free(b->events);
  b->events = NULL;
  b->batch.events = NULL;
  b->batch.n_events = 0;
}

void cl_hl7_error_reused_id(const cl_hl7_header *h, cl_hl7_error *e, char *why, size_t whyn) {
  memset(e, 0, sizeof *e);
  e->code = 205; /* table 0357: duplicate key identifier */
  snprintf(e->segment, sizeof e->segment, "MSH");
  e->seg_seq = e->seg_index = 1;
  e->field = 10;
  e->rep = e->comp = 1;
  snprintf(e->reason, sizeof e->reason,
           "control id already used by this sender for a different message");
  snprintf(why, whyn,
           "MSH-10: control id '%.40s' from %.40s/%.40s was already used for a different message",
           h->control_id, h->sending_app, h->sending_facility);
}

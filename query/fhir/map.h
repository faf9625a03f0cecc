/* Event -> FHIR R4 resource mapping: the part of the FHIR projection that
 * knows the event catalog (docs/events.md, docs/fhir.md).
 *
 * The fold (fold.c) decodes each committed event of a patient's (or a
 * device's) stream and hands it to cl_fhir_map_event, which dispatches on
 * the body to the mapper of its domain (map_<domain>.c). A mapper builds the
 * resources the event creates or changes and hands each to cl_fhir_map_put;
 * for an event that changes an existing resource (EncounterEnded,
 * MedicationDiscontinued, PatientDemographicsUpdated, ...) it reads the
 * current version with cl_fhir_map_get first and puts the changed copy.
 *
 * The store around a mapper (fold.c) does the rest: meta.versionId (one step
 * per event that changes the resource; a put that changes nothing makes no
 * version), meta.lastUpdated (the event's commit time), the Provenance of
 * the event, indexes, erasure. A mapper sets resourceType and id and
 * nothing under meta.
 *
 * Mappers are deterministic: the same event over the same state gives the
 * same JSON, member order included (rebuilt equals live, byte for byte).
 *
 * Logical ids (cl_fhir_id): the Patient is Patient/<patient_id> when the
 * patient id is a valid FHIR id; every other resource's id is derived from
 * its business id (condition_id, prescription_id...) and its patient, so a
 * reference can be computed from a business id alone:
 * Encounter/<cl_fhir_pid("Encounter", encounter_id)>. */
#ifndef CL_QUERY_FHIR_MAP_H
#define CL_QUERY_FHIR_MAP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "clinlog/v1/event.pb-c.h"
#include "store/err.h"

/* Longest logical id (FHIR: 64) plus the NUL. */
#define CL_FHIR_ID_MAX 65

/* The resource types the views hold, in a fixed order (the number is
 * stored in index keys: append only). */
#define CL_FHIR_TYPES(X)                                                                           \
  X(1, Patient)                                                                                    \
  X(2, Encounter)                                                                                  \
  X(3, Condition)                                                                                  \
  X(4, AllergyIntolerance)                                                                         \
  X(5, Observation)                                                                                \
  X(6, DiagnosticReport)                                                                           \
  X(7, Immunization)                                                                               \
  X(8, ServiceRequest)                                                                             \
  X(9, MedicationRequest)                                                                          \
  X(10, MedicationDispense)                                                                        \
  X(11, MedicationAdministration)                                                                  \
  X(12, ImagingStudy)                                                                              \
  X(13, DocumentReference)                                                                         \
  X(14, Appointment)                                                                               \
  X(15, Communication)                                                                             \
  X(16, Task)                                                                                      \
  X(17, Device)                                                                                    \
  X(18, Coverage)                                                                                  \
  X(19, CoverageEligibilityResponse)                                                               \
  X(20, ChargeItem)                                                                                \
  X(21, Claim)                                                                                     \
  X(22, ClaimResponse)                                                                             \
  X(23, DetectedIssue)                                                                             \
  X(24, PaymentReconciliation)                                                                     \
  X(25, CoverageEligibilityRequest)                                                                \
  X(26, Provenance)                                                                                \
  X(27, Group) /* derived from Coverage, never stored (group.h) */                                 \
  X(28, RiskAssessment)                                                                            \
  X(29, DeviceMetric)

enum cl_fhir_type {
  CL_FHIR_NONE = 0,
#define X(n, name) CL_FHIR_##name = n,
  CL_FHIR_TYPES(X)
#undef X
      CL_FHIR_NTYPES
};

/* "Observation" -> CL_FHIR_Observation; 0 if not one of ours. */
int cl_fhir_type_of(const char *name);
/* CL_FHIR_Observation -> "Observation"; NULL if out of range. */
const char *cl_fhir_type_name(int type);

typedef struct cl_fhir_map cl_fhir_map;

/* Where mapped resources go: the FHIR projection's store (fold.c), or a
 * test's. */
typedef struct cl_fhir_map_ops {
  int (*get)(cl_fhir_map *m, const char *type, const char *id, json_t **out, cl_err *err);
  int (*put)(cl_fhir_map *m, json_t *res, cl_err *err);
} cl_fhir_map_ops;

/* What a mapper works with. */
struct cl_fhir_map {
  const Clinlog__V1__Event *ev; /* the decoded event (borrowed) */
  const char *patient_id;       /* "patient-<id>" stream: <id>; NULL otherwise */
  const char *stream;           /* the event's stream */
  uint64_t seq;                 /* its log sequence number */
  int64_t committed_at_ns;      /* its commit time */
  const cl_fhir_map_ops *ops;   /* where resources go */
  void *impl;                   /* the ops' own */
};

/* The logical id of a resource of `type` whose business id is `bid`,
 * scoped to a patient (`patient_id`; NULL for a resource that is unique in
 * the whole log, e.g. a Device). Valid FHIR id: [A-Za-z0-9.-]{1,64}. */
void cl_fhir_id(const char *type, const char *patient_id, const char *bid,
                char out[CL_FHIR_ID_MAX]);
/* cl_fhir_id scoped to the event's patient. */
void cl_fhir_pid(const cl_fhir_map *m, const char *type, const char *bid, char out[CL_FHIR_ID_MAX]);
/* {"reference": "<type>/<cl_fhir_pid(type, bid)>"}; NULL if bid is empty. */
json_t *cl_fhir_pref(const cl_fhir_map *m, const char *type, const char *bid);
/* {"reference": "Patient/<id>"} for the event's patient; NULL if none. */
json_t *cl_fhir_patient_ref(const cl_fhir_map *m);
/* A new resource object {"resourceType": type, "id": id}. */
json_t *cl_fhir_new(const char *type, const char *id);
/* {"reference": "Device/<cl_fhir_id("Device", NULL, device_id)>"}: Device
 * ids are unique in the whole log, not scoped to a patient. NULL if
 * device_id is empty. */
json_t *cl_fhir_device_ref(const char *device_id);
/* When something happened, as an instant: ts (the body's own time), else
 * the event's occurred_at, else its commit time; never NULL but when out
 * of memory. */
json_t *cl_fhir_when(const cl_fhir_map *m, const Google__Protobuf__Timestamp *ts);

/* The current version of resource type/id (returned-owned, as stored,
 * meta included). Errors: CL_ENOTFOUND, CL_ECRYPTO, CL_EIO. */
int cl_fhir_map_get(cl_fhir_map *m, const char *type, const char *id, json_t **out, cl_err *err);
/* Stores `res` (stolen, also on error) as the next version of the resource
 * it names (resourceType + id); its meta is replaced. Errors: CL_EINVAL (no
 * resourceType/id, or a type that is not ours), CL_ENOMEM, CL_EIO. */
int cl_fhir_map_put(cl_fhir_map *m, json_t *res, cl_err *err);

/* The X12 EB01 (1390) code whose display a CoverageEligibilityResponse's
 * insurance.item.name is (the views write the display of a code they know,
 * else the code): the code (static), or NULL for a name that is no known
 * display. For the writes, which read a view backwards. */
const char *cl_fhir_x12_eb01_code(const char *name);

/* Makes every string of a decoded event valid as a FHIR string: control
 * characters other than tab, CR and LF (which FHIR strings may not hold)
 * become their Unicode control pictures (U+2400 + c, e.g. a GS1 group
 * separator 0x1D becomes U+241D), so nothing is lost and no string can look
 * like a marked decimal (fj.h). Call it before cl_fhir_map_event. Strings
 * it changes are reallocated with malloc (the unpacker's allocator).
 * Errors: CL_ENOMEM. */
int cl_fhir_sanitize(ProtobufCMessage *msg, cl_err *err);

/* Maps one decoded event (dispatching on its body); an event type with no
 * FHIR form is ignored (0). Errors: those of the mappers. */
int cl_fhir_map_event(cl_fhir_map *m, cl_err *err);

/* The per-domain mappers (map_<domain>.c): each handles the body cases of
 * its domain and returns 0 for the others. */
int cl_fhir_map_patient(cl_fhir_map *m, cl_err *err);  /* 100-105 */
int cl_fhir_map_clinical(cl_fhir_map *m, cl_err *err); /* 200-206 */
int cl_fhir_map_pharmacy(cl_fhir_map *m, cl_err *err); /* 300-303 */
int cl_fhir_map_imaging(cl_fhir_map *m, cl_err *err);  /* 400-402 */
int cl_fhir_map_billing(cl_fhir_map *m, cl_err *err);  /* 500-505 */
int cl_fhir_map_portal(cl_fhir_map *m, cl_err *err);   /* 600-603 */
int cl_fhir_map_device(cl_fhir_map *m, cl_err *err);   /* 700-701 */
int cl_fhir_map_decision(cl_fhir_map *m, cl_err *err); /* 800-803 */

#endif

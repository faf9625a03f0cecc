/* FHIR R4 JSON building blocks: the shared clinlog value types
 * (types.proto) as FHIR datatypes, built with jansson.
 *
 * Rules every builder keeps, so that a resource is valid FHIR JSON by
 * construction:
 *  - nothing empty is emitted: an empty string, an empty array or an object
 *    with no members is left out (FHIR forbids them), and a builder whose
 *    input states nothing returns NULL;
 *  - decimals (Quantity.value, Money...) are FHIR decimals: JSON numbers
 *    written exactly as the source wrote them ("7.10" stays 7.10).
 *    jansson cannot hold such a number, so a decimal is held as a string
 *    marked with a leading 0x01 byte (fj_decimal) while a resource is built
 *    and stored; fj_finish turns the marks into bare numbers when a resource
 *    leaves the store;
 *  - instants are "YYYY-MM-DDThh:mm:ss[.fff]Z" (UTC, as the events hold
 *    them).
 *
 * Ownership: builders return new references (json_t *, NULL = nothing to
 * emit); fj_set* steal the value they are given. Allocation failures
 * surface as NULL from jansson and are caught when the resource is
 * serialized (json_dumps fails), so builders do not check every call. */
#ifndef CL_QUERY_FHIR_FJ_H
#define CL_QUERY_FHIR_FJ_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "clinlog/v1/event.pb-c.h"

/* The mark of a decimal held as a string. */
#define FJ_DECIMAL_MARK '\x01'

/* ---- setting members (all steal `v`; a NULL or empty v sets nothing) ---- */

/* obj[key] = v, unless v is NULL, an empty array or an empty object. */
void fj_set(json_t *obj, const char *key, json_t *v);
/* obj[key] = s, unless s is NULL or "". */
void fj_set_str(json_t *obj, const char *key, const char *s);
/* Appends v to arr (unless NULL/empty). */
void fj_push(json_t *arr, json_t *v);
/* obj[key] = [v] (unless v is NULL/empty). */
void fj_set_one(json_t *obj, const char *key, json_t *v);

/* ---- primitives ---- */

/* A FHIR decimal from a decimal string ("7.10", "-3", "1e3"; a leading '+',
 * a bare '.5' and leading zeros are normalized): NULL if s is empty or not
 * a number. */
json_t *fj_decimal(const char *s);
/* The same from an integer count of minor units (e.g. Money: 12550 with 2
 * digits -> 125.50). */
json_t *fj_decimal_minor(int64_t minor, int digits);
/* instant/dateTime from a Timestamp: NULL if ts is NULL. */
json_t *fj_instant(const Google__Protobuf__Timestamp *ts);
/* The same from nanoseconds since the epoch. */
json_t *fj_instant_ns(int64_t ns);
/* Writes the instant text (at least 36 bytes). */
void fj_instant_text(int64_t secs, int32_t nanos, char out[40]);
/* The same from nanoseconds since the epoch (before 1970 too). */
void fj_instant_ns_text(int64_t ns, char out[40]);
/* A FHIR date ("YYYY", "YYYY-MM", "YYYY-MM-DD") from the events' date
 * strings: NULL unless s is one of those forms. */
json_t *fj_date(const char *s);

/* ---- datatypes (types.proto -> FHIR R4) ---- */

/* Coding {system, version, code, display}. */
json_t *fj_coding(const Clinlog__V1__Code *c);
/* CodeableConcept {coding: [Coding], text}. */
json_t *fj_concept(const Clinlog__V1__CodeableConcept *cc);
/* CodeableConcept holding one Code (and its display as text if it has no
 * code). */
json_t *fj_concept_code(const Clinlog__V1__Code *c);
/* CodeableConcept with one coding built from literals (a FHIR value set). */
json_t *fj_concept_lit(const char *system, const char *code, const char *display);
/* Quantity {value, comparator, unit, system, code}: unit_system empty means
 * UCUM (system http://unitsofmeasure.org, code = unit). */
json_t *fj_quantity(const Clinlog__V1__Quantity *q);
/* Money {value, currency} (ISO 4217 minor units: 2 digits except the
 * zero-decimal currencies, e.g. JPY). */
json_t *fj_money(const Clinlog__V1__Money *m);
/* Period {start, end}. */
json_t *fj_period(const Clinlog__V1__Period *p);
/* Identifier {use?, type {coding v2-0203}, system, value, assigner {display}}. */
json_t *fj_identifier(const Clinlog__V1__Identifier *id);
/* HumanName {use, text, family, given, prefix, suffix}. */
json_t *fj_name(const Clinlog__V1__HumanName *n);
/* Address {use, text, line, city, district, state, postalCode, country}. */
json_t *fj_address(const Clinlog__V1__Address *a);
/* ContactPoint {system, value, use}. */
json_t *fj_contact_point(const Clinlog__V1__ContactPoint *c);
/* Reference {reference, identifier, display} from a clinlog Reference:
 * `resource` ("Practitioner/123") becomes the literal reference; a
 * principal with no resource and no identifier becomes an identifier in
 * system FJ_PRINCIPAL_SYSTEM; a pointer to an event (stream + event_id)
 * becomes an identifier in system urn:ietf:rfc:3986, value
 * "urn:uuid:<event id>". */
json_t *fj_reference(const Clinlog__V1__Reference *r);
/* Reference to a resource of this store: {"reference": "<type>/<id>"}. */
json_t *fj_ref(const char *type, const char *id);
/* Observation.referenceRange element {low, high, text, appliesTo}. */
json_t *fj_reference_range(const Clinlog__V1__ReferenceRange *rr);
/* Dosage {text, timing, asNeededBoolean|asNeededCodeableConcept, site,
 * route, doseAndRate}. */
json_t *fj_dosage(const Clinlog__V1__Dosage *d);
/* Annotation [{text}] from a note string (NULL if empty). */
json_t *fj_note(const char *text);
/* "urn:uuid:xxxxxxxx-xxxx-..." of a 16-byte id (out: at least 46 bytes);
 * and the bare uuid form (at least 37 bytes). 0 if the id is not 16 bytes. */
int fj_uuid_text(const ProtobufCBinaryData *id, char out[37]);

/* System of clinlog principal ids in Identifiers. */
#define FJ_PRINCIPAL_SYSTEM "urn:clinlog:principal"
/* System of clinlog business ids in Identifiers (the value is the id the
 * writer chose, e.g. an observation_id). */
#define FJ_BUSINESS_ID_SYSTEM "urn:clinlog:id"
/* HL7 v2 table 0203, the identifier types (Identifier.type). */
#define FJ_V2_0203 "http://terminology.hl7.org/CodeSystem/v2-0203"
/* The data-absent-reason extension (on an element the source does not
 * state) and its code system (Observation.dataAbsentReason). */
#define FJ_DAR_EXT "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
#define FJ_DAR_SYSTEM "http://terminology.hl7.org/CodeSystem/data-absent-reason"
/* Extension urls: FJ_R5_EXT "<Resource>.<path>" is the FHIR cross-version
 * extension of an R5 element R4 lacks; FJ_CLINLOG_EXT "<name>" is clinlog's
 * own, for what neither release has an element for. */
#define FJ_R5_EXT "http://hl7.org/fhir/5.0/StructureDefinition/extension-"
#define FJ_CLINLOG_EXT "https://clinlog.dev/fhir/StructureDefinition/"

/* ---- forms the mappers share ---- */

/* 1 if s states something (neither NULL nor ""). */
static inline int fj_has(const char *s) { return s != NULL && s[0] != '\0'; }

/* {system FJ_BUSINESS_ID_SYSTEM, value bid}: the first identifier of every
 * resource the mappers make. NULL if bid is NULL. */
json_t *fj_business_id(const char *bid);
/* fj_identifier(id), typed with the v2-0203 code `type` (and its display)
 * when id states no type of its own (PLAC, FILL...); type stays the first
 * member, as fj_identifier writes it. NULL if id states nothing. */
json_t *fj_identifier_typed(const Clinlog__V1__Identifier *id, const char *type,
                            const char *display);
/* Identifier {type {coding: v2-0203 code/display}, value} from literals
 * (ACSN, MB...): NULL if value is empty. */
json_t *fj_identifier_lit(const char *code, const char *display, const char *value);
/* Identifier {type {text}, value}, for a kind of identifier v2-0203 has no
 * code for (a Study ID, X12 control and trace numbers): NULL if value is
 * empty. */
json_t *fj_identifier_text(const char *type_text, const char *value);

/* Arrays of fj_concept, fj_concept_code and fj_reference of the n items
 * (an item that states nothing is left out). Unlike the builders above,
 * these return an empty array when nothing is left: fj_set drops it. */
json_t *fj_concepts(Clinlog__V1__CodeableConcept *const *cc, size_t n);
json_t *fj_concepts_code(Clinlog__V1__Code *const *c, size_t n);
json_t *fj_references(Clinlog__V1__Reference *const *r, size_t n);

/* fj_concept_code(c), with `system` filled in (first, as in a Coding) when
 * c came without one and its code is one of codes[0..n): the codes of a
 * FHIR value set, sent bare. */
json_t *fj_concept_code_in(const Clinlog__V1__Code *c, const char *system, const char *const *codes,
                           size_t n);

/* A required element the source does not state, in FHIR's form for it:
 * {extension: [{url FJ_DAR_EXT, valueCode unknown}]}. It stands for a
 * complex value (a CodeableConcept...) and, as "_<name>", for a primitive
 * one. */
json_t *fj_unknown(void);
/* v (stolen), or fj_unknown() when v is NULL: for a required element. */
json_t *fj_or_unknown(json_t *v);
/* The CodeableConcept data-absent-reason#unknown: the dataAbsentReason of
 * a result (or component) that has no value and states no reason. */
json_t *fj_absent_reason_unknown(void);

/* A Location as a Reference: its FHIR Location when known (fj_reference),
 * with the Location's display, else its PL components (facility, point of
 * care, room, bed) joined by spaces, as the display. NULL if l states
 * nothing. */
json_t *fj_location_ref(const Clinlog__V1__Location *l);

/* A SimpleQuantity: fj_quantity without a comparator (R4 forbids one on an
 * amount prescribed, dispensed or given, and on a reference range's
 * bounds). */
json_t *fj_simple_quantity(const Clinlog__V1__Quantity *q);

/* The FHIR request-priority code of p ("routine", "urgent", "asap",
 * "stat"); NULL for UNSPECIFIED and values this build does not know.
 * Static storage. */
const char *fj_request_priority(Clinlog__V1__RequestPriority p);
/* The same as a v3 ActPriority CodeableConcept (R, UR, A, S: what
 * Encounter.priority is bound to); NULL where fj_request_priority is. */
json_t *fj_act_priority(Clinlog__V1__RequestPriority p);

/* base64Binary of n bytes (borrowed): NULL when out of memory. */
json_t *fj_base64(const void *data, size_t n);
/* Attachment {contentType, data, title} holding the bytes of `text`
 * (base64): NULL if text is empty (and when out of memory). content_type
 * and title may be NULL (left out). */
json_t *fj_text_attachment(const char *text, const char *content_type, const char *title);

/* ---- extensions ---- */

/* Extension {url, <key>: v}, key the value[x] member ("valueReference") or
 * "extension" for a complex one; v stolen. NULL if v is NULL. */
json_t *fj_ext(const char *url, const char *key, json_t *v);
/* Appends extension e (stolen; NULL appends nothing) to res.extension,
 * which it makes if there is none. */
void fj_ext_add(json_t *res, json_t *e);
/* Removes every extension with `url` from res.extension (and the array,
 * when that leaves it empty): before restating one on a resource read
 * back. */
void fj_ext_drop(json_t *res, const char *url);

/* ---- member order ---- */

/* obj (stolen) as a new object whose members are the n keys of `order`
 * that obj has, in that order, then the others in obj's order: a resource
 * read back and changed reads like one built fresh. The values are shared
 * with obj (new references). */
json_t *fj_in_order(json_t *obj, const char *const *order, size_t n);

/* ---- serializing ---- */

/* The stored form of a resource: compact JSON, members in insertion order,
 * byte for byte what jansson's json_dumps(JSON_COMPACT) writes (a writer of
 * our own: the fold dumps every version it stores, and jansson's dump cost
 * 40 % of the fold). Returned-owned (free()); NULL when out of memory. */
char *fj_dump(const json_t *res, size_t *len);
/* The wire form of a stored resource: decimals marked by fj_decimal become
 * bare JSON numbers. Returned-owned (free()); NULL when out of memory. */
char *fj_finish(const char *stored, size_t n, size_t *len);

/* ---- writing the stored form without a jansson tree ----
 *
 * The writer fj_dump uses, for code that writes a resource's JSON itself
 * (the fold writes every Provenance, and a resource's meta, this way): the
 * same bytes jansson would write for the same members in the same order.
 * A caller that writes strings from outside (events) checks them with
 * fj_utf8_ok first: jansson refuses a string that is not UTF-8 (the member
 * is then left out), which a writer cannot mimic after the fact.
 *
 * The buffer grows with realloc; it may hold patient data: fj_buf_wipe
 * zeroes what was written (to reuse the buffer), fj_buf_free all of it. A
 * failed allocation sets oom and later writes do nothing. Not thread-safe
 * (one buffer per writer). */
typedef struct fj_buf {
  char *p;    /* malloc'd (NULL before the first write); owned by the buffer */
  size_t n;   /* bytes written */
  size_t cap; /* bytes allocated */
  int oom;    /* a write failed: the content is incomplete */
} fj_buf;

/* Raw bytes (punctuation, or JSON written elsewhere). */
void fj_buf_raw(fj_buf *b, const void *s, size_t n);
/* A JSON string of the n bytes at s, escaped as jansson escapes it. */
void fj_buf_str(fj_buf *b, const char *s, size_t n);
/* A value as fj_dump writes it. */
void fj_buf_value(fj_buf *b, const json_t *v);
/* An unsigned integer in decimal (a JSON number). */
void fj_buf_u64(fj_buf *b, uint64_t v);
/* Room for n more bytes after those written: a pointer to it (NULL after a
 * failed allocation, which sets oom). The caller writes k <= n bytes
 * there and adds k to b->n. */
char *fj_buf_room(fj_buf *b, size_t n);
/* A NUL-terminated literal, raw. */
static inline void fj_buf_lit(fj_buf *b, const char *s) { fj_buf_raw(b, s, strlen(s)); }
/* A NUL-terminated string as a JSON string. */
static inline void fj_buf_cstr(fj_buf *b, const char *s) { fj_buf_str(b, s, strlen(s)); }
/* Zeroes the bytes written and empties the buffer (its memory is kept). */
void fj_buf_wipe(fj_buf *b);
/* Zeroes and frees the buffer's memory; *b is then empty and reusable. */
void fj_buf_free(fj_buf *b);

/* 1 if the n bytes at s are a string jansson accepts (well-formed UTF-8:
 * no overlong forms, no surrogates, nothing above U+10FFFF). */
int fj_utf8_ok(const char *s, size_t n);

#endif

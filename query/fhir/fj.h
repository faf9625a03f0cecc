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

/* ---- serializing ---- */

/* The stored form of a resource: compact JSON, members in insertion order.
 * Returned-owned (free()); NULL when out of memory. */
char *fj_dump(const json_t *res, size_t *len);
/* The wire form of a stored resource: decimals marked by fj_decimal become
 * bare JSON numbers. Returned-owned (free()); NULL when out of memory. */
char *fj_finish(const char *stored, size_t n, size_t *len);

#endif

/* One audit record (an AccessRecorded event, query/audit/view.h) as a FHIR
 * R4 AuditEvent, shaped after IHE Basic Audit Log Patterns (BALP): what an
 * auditor's tools (and the FHIR AuditEvent endpoint) read.
 *
 *   | AuditEvent            | from the record                                          |
 *   |-----------------------|----------------------------------------------------------|
 *   | id                    | the event id as a UUID (stable: the same record, the     |
 *   |                       | same id, on every node and after every rebuild)          |
 *   | meta                  | versionId "1" (records never change), lastUpdated =      |
 *   |                       | recorded                                                 |
 *   | extension log-entry   | {seq}: where the record sits in the log (as Provenance)  |
 *   | type                  | DICOM 110114 User Authentication for logins and logouts  |
 *   |                       | (subtype 110122/110123, or a clinlog.v1.Auth/ method);   |
 *   |                       | else audit-event-type "rest" (a FHIR or gRPC interaction)|
 *   | subtype               | restful-interaction `subtype` ("read", "search-type"...),|
 *   |                       | DICOM 110122 Login / 110123 Logout, and the method called|
 *   |                       | (system CL_AUDIT_METHOD_SYSTEM)                          |
 *   | action                | `action` when one of C R U D E                           |
 *   | recorded              | the event's occurred_at                                  |
 *   | outcome, outcomeDesc  | `outcome` (0 4 8 12; the older "ok", "denied", "error"   |
 *   |                       | as 0, 4, 8); `error` and `detail`                        |
 *   | purposeOfEvent        | `purpose_of_use` (v3-ActReason); under break-glass also  |
 *   |                       | ETREAT and BTG                                           |
 *   | agent[0] (the user)   | requestor; type DICOM 110153 Source Role ID; who         |
 *   |                       | identifier = principal_id (none if the call proved       |
 *   |                       | none); role = `roles` (CL_AUDIT_ROLE_SYSTEM); altId =    |
 *   |                       | token_id; network = client_address; purposeOfUse as      |
 *   |                       | purposeOfEvent (BALP's place for the break-glass reason) |
 *   | agent[1] (the server) | not the requestor; type DICOM 110152 Destination Role    |
 *   |                       | ID; who = the node; network = server_address            |
 *   | source                | site (given); observer = the node (identifier node_id,   |
 *   |                       | system CL_AUDIT_NODE_SYSTEM); type security-source-type 4|
 *   |                       | Application Server                                       |
 *   | entity (patients)     | each of `patients`: what Patient/<id> (the FHIR id of   |
 *   |                       | that patient, query/fhir/map.h), type 1 Person, role 1   |
 *   |                       | Patient                                                  |
 *   | entity (data)         | `resource`: "Type/id" a reference, type 2 System Object, |
 *   |                       | role 4 Domain Resource; "principal:<id>" (a login) type 1|
 *   |                       | Person role 6 User; other forms ("stream:..", "seq:..")  |
 *   |                       | an identifier of system urn:clinlog:<prefix>             |
 *   | entity (query)        | searches (subtype search*, or a `query`): type 2, role   |
 *   |                       | 24 Query, query = base64 of `query`, description = the   |
 *   |                       | type searched; detail "count" = `count`                  |
 *   | entity (transaction)  | request_id: BALP BasicAuditEntityType XrequestId         |
 *
 * Addresses: "ipv4:A:port", "ipv6:[A]:port" (also gRPC's "%5B...%5D"),
 * "[A]:port", "A:port" and bare addresses give network.address A, type 2
 * (IP address) when A is one, else 1 (machine name); "unix:..." is kept
 * whole as type 5 (URI). Ports are dropped (R4 has no place for them).
 *
 * Every AuditEvent made is valid FHIR R4 (tests/query/audit/auditevents.fhir.json goes
 * through the independent validator, tests/fhir/validate.mjs): nothing
 * empty is emitted, codes come from the value sets named, and a record
 * that proved no principal gets a user agent named "unauthenticated
 * caller" (an agent must state something besides requestor). */
#ifndef CL_QUERY_AUDIT_AUDITEVENT_H
#define CL_QUERY_AUDIT_AUDITEVENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "clinlog/v1/event.pb-c.h"
#include "store/err.h"

/* clinlog's code systems and identifier systems in AuditEvents. */
#define CL_AUDIT_METHOD_SYSTEM "https://clinlog.dev/fhir/CodeSystem/method"
#define CL_AUDIT_ROLE_SYSTEM "https://clinlog.dev/fhir/CodeSystem/role"
#define CL_AUDIT_NODE_SYSTEM "urn:clinlog:node"

/* The AuditEvent of `ev` (borrowed: an AccessRecorded Event as decoded
 * from the log, e.g. handed out by cl_audit_query), recorded at log
 * position `seq`; `site` (borrowed, may be NULL or "": left out) names the
 * deployment in source.site, e.g. the log's origin. On success *out is a
 * new reference (json_decref), members in the order of the table above
 * (dump it with JSON_PRESERVE_ORDER). Errors: CL_EINVAL (not an
 * AccessRecorded, or an event id that is not 16 bytes), CL_ENOMEM.
 * Thread-safe (no state). */
int cl_audit_fhir(const Clinlog__V1__Event *ev, uint64_t seq, const char *site, json_t **out,
                  cl_err *err);

/* The entity a's record names, read at log position `seq`: a->resource,
 * or, for a record committed with its call's events (a->preceding > 0,
 * resource empty: cl_svc_append_recorded), "seq:<first>-<last>" of the
 * `preceding` events right before seq, written into buf (n bytes, 48 are
 * enough). Never NULL. Thread-safe. */
const char *cl_audit_resource(const Clinlog__V1__AccessRecorded *a, uint64_t seq, char *buf,
                              size_t n);

/* The network address and AuditEvent network type ("1" machine name, "2"
 * IP address, "5" URI) of a peer or listening address as described above.
 * Writes at most n bytes of address with its NUL (truncating); returns the
 * type, or NULL when `a` is empty. Static storage. */
const char *cl_audit_network(const char *a, char *addr, size_t n);

#endif

/* The HTTP face: the FHIR R4 REST API at /fhir/R4 (HTTP/1.1, TLS), a thin
 * codec over the request layer (adapters/service) and the FHIR query engine
 * (query/fhir/engine.h) that clinlog.v1.Fhir shares. Built on libmicrohttpd
 * (one thread per connection: a read that asks for read-your-writes waits
 * on the projection's progress without holding anyone else up).
 *
 * Routes (docs/fhir.md):
 *   GET  /fhir/R4/metadata                       CapabilityStatement
 *   GET  /fhir/R4/[type]/[id]                    read (ETag, Last-Modified, If-None-Match: 304)
 *   GET  /fhir/R4/[type]/[id]/_history/[vid]     vread
 *   GET  /fhir/R4/[type]/[id]/_history           history of a resource
 *   GET  /fhir/R4/[type]/_history                history of a type
 *   GET  /fhir/R4/[type]?params                  search
 *   POST /fhir/R4/[type]/_search                 search, params in a form body (and the URL)
 *   GET  /fhir/R4/Patient/[id]/$everything       the patient's compartment
 *   GET  /fhir/R4/[Patient/|Group/[id]/]$export  Bulk Data kick-off (Prefer: respond-async):
 *                                                202 + Content-Location
 *   GET  /fhir/R4/$export-status/[job]           202 + X-Progress while running, then 200 and
 *                                                the manifest
 *   DELETE /fhir/R4/$export-status/[job]         cancel (202)
 *   GET  /fhir/R4/$export-file/[job]/[n]         an NDJSON file (application/fhir+ndjson,
 *                                                streamed)
 * Everything else is an OperationOutcome with the right status (404
 * unknown route, 405 a write: the views are read-only, events are written
 * through clinlog.v1.Log and the ingestion adapters; 406 a format other
 * than JSON). Request headers: Prefer: handling=strict|lenient,
 * X-Request-Id (echoed), X-Clinlog-Min-Sequence (read-your-writes: the log
 * sequence the views must have folded; 504 if not within the wait, which
 * Prefer: wait=<seconds> may shorten). Every call goes through the request
 * layer's hooks (cl_svc_admit) as the clinlog.v1.Fhir method of the same
 * interaction, transport "http", with the request as that method's message
 * (FhirReadRequest{type, id, version_id}, FhirSearchRequest{type, params},
 * ...): one policy serves both faces. */
#ifndef CL_ADAPTERS_HTTP_HTTP_H
#define CL_ADAPTERS_HTTP_HTTP_H

#include <stdint.h>

#include "adapters/service/service.h"
#include "store/err.h"

typedef struct cl_http_config {
  const char *listen;             /* "127.0.0.1:7528" (IPv4 or [IPv6]:port) */
  int dev;                        /* allow plaintext (loopback addresses only) */
  const char *tls_cert, *tls_key; /* PEM files; required unless dev */
  unsigned max_connections;       /* default 256 */
  unsigned timeout_s;             /* idle connection timeout, default 60 */
  int64_t wait_ms;                /* longest read-your-writes wait, default 30000 */
} cl_http_config;

void cl_http_config_init(cl_http_config *c);

typedef struct cl_http cl_http;

/* Starts serving over `svc` (borrowed; it outlives the server). *out
 * returned-owned (cl_http_stop); *port gets the bound port. Errors:
 * CL_EINVAL (configuration, plaintext on a non-loopback address without
 * dev), CL_EIO (cannot bind, cannot read the TLS files, TLS unsupported by
 * the library), CL_ENOMEM. */
int cl_http_start(const cl_http_config *c, cl_svc *svc, cl_http **out, int *port, cl_err *err);

/* Stops accepting, finishes the requests in progress, frees the server. */
void cl_http_stop(cl_http *h);

#endif

/* The FHIR query engine: one implementation of the FHIR R4 REST
 * interactions over the `fhir` projection (fhir.h), which every face calls
 * (gRPC clinlog.v1.Fhir, the HTTP FHIR API in adapters/http). A face turns
 * its request into a cl_fhir_req and sends back the cl_fhir_resp: the HTTP
 * status, the FHIR JSON body (a resource, a Bundle or an OperationOutcome)
 * and the headers' values.
 *
 * Supported (docs/fhir.md has the details and the limits):
 *  - read, vread, history (instance and type), search (GET and POST: the
 *    face merges the form body into params), Patient/[id]/$everything,
 *    metadata (a CapabilityStatement listing exactly what is supported);
 *  - search parameters by type (token, date, string, reference, quantity)
 *    with FHIR's prefixes and modifiers, AND across parameters and OR by
 *    comma, _count, _sort, _include, _revinclude (Provenance:target),
 *    _summary=count, _elements, chained subject:Patient.identifier;
 *  - paging by cursor: `next` links stay valid while writers append (a page
 *    starts after the last (sort key, id) of the previous one: new resources
 *    sort after it, and nothing is skipped or repeated);
 *  - unknown parameters: 400 under Prefer: handling=strict, else ignored and
 *    reported in the Bundle's OperationOutcome (the FHIR default, lenient).
 *
 * Thread-safety: an engine is read-only after creation; cl_fhir_handle may
 * run on many threads at once. */
#ifndef CL_QUERY_FHIR_ENGINE_H
#define CL_QUERY_FHIR_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "query/fhir/fhir.h"
#include "store/log.h"
#include "store/proj.h"

enum cl_fhir_interaction {
  CL_FHIR_READ,             /* GET [type]/[id] */
  CL_FHIR_VREAD,            /* GET [type]/[id]/_history/[vid] */
  CL_FHIR_HISTORY_INSTANCE, /* GET [type]/[id]/_history */
  CL_FHIR_HISTORY_TYPE,     /* GET [type]/_history */
  CL_FHIR_SEARCH,           /* GET [type]?... or POST [type]/_search */
  CL_FHIR_EVERYTHING,       /* GET Patient/[id]/$everything */
  CL_FHIR_CAPABILITIES      /* GET metadata */
};

typedef struct cl_fhir_kv {
  const char *name;  /* e.g. "code:not", "subject:Patient.identifier" (URL-decoded) */
  const char *value; /* URL-decoded */
} cl_fhir_kv;

typedef struct cl_fhir_req {
  int interaction;          /* enum cl_fhir_interaction */
  const char *type;         /* resource type (READ..EVERYTHING) */
  const char *id;           /* logical id (READ, VREAD, HISTORY_INSTANCE, EVERYTHING) */
  uint32_t version;         /* VREAD */
  const cl_fhir_kv *params; /* query parameters, in order (borrowed) */
  size_t nparams;
  int strict;       /* Prefer: handling=strict */
  const char *base; /* the service base URL for links, e.g. "https://h:8443/fhir/R4" */
  int64_t now_ms;   /* the time of the request (ap prefix, Bundle.timestamp); 0: now */
  /* CAPABILITIES: the types the face writes (create, update, conditional
   * create; transaction and batch at the system level), NULL-terminated,
   * borrowed; NULL: a read-only face */
  const char *const *writable;
} cl_fhir_req;

typedef struct cl_fhir_resp {
  int status; /* HTTP status: 200, 304 (face-made), 400, 404, 410, 500 */
  char *body; /* returned-owned (cl_fhir_resp_clear): FHIR JSON */
  size_t len;
  char etag[24];            /* W/"<versionId>" for a resource, "" otherwise */
  int64_t last_modified_ns; /* a resource's meta.lastUpdated, 0 otherwise */
} cl_fhir_resp;

void cl_fhir_resp_clear(cl_fhir_resp *rs);

typedef struct cl_fhir_engine cl_fhir_engine;

/* An engine over the projection `p` of `log` (both borrowed: they outlive
 * the engine). *out returned-owned (cl_fhir_engine_free). CL_ENOMEM. */
int cl_fhir_engine_new(cl_proj *p, cl_log *log, cl_fhir_engine **out, cl_err *err);
void cl_fhir_engine_free(cl_fhir_engine *e);

/* Runs one interaction. Always fills rs (a failure is an OperationOutcome
 * with its HTTP status); returns 0, or CL_ENOMEM when even that could not
 * be built (rs->status 500, no body). */
int cl_fhir_handle(cl_fhir_engine *e, const cl_fhir_req *rq, cl_fhir_resp *rs);

/* The element paths search parameter `name` of `type` reads (alternatives
 * separated by '|', each dotted from the resource: "onsetDateTime|
 * onsetPeriod"), NULL if the type has no such parameter. Static storage. */
const char *cl_fhir_search_param_path(const char *type, const char *name);

/* Parses a FHIR date/dateTime/instant ("2026", "2026-11", "2026-11-02",
 * "2026-11-02T10:15", "...:30.25+01:00", "...Z") into the range it covers,
 * [lo, hi) in ms since the epoch (UTC when no zone is given). 0, or -1 if
 * it is not one. For tests and the faces. */
int cl_fhir_date_range(const char *s, int64_t *lo, int64_t *hi);

#endif

/* Searching the audit trail, for every face (gRPC Audit.Query, the FHIR
 * REST API's AuditEvent, `clinlog audit`): FHIR search parameters to a
 * filter, a page of records as AuditEvents, and the searchset Bundle.
 *
 * FHIR search parameters of AuditEvent understood (R4 names, BALP's use):
 *   patient   Patient/<id> or <id>: records naming the patient
 *   agent     the user agent's principal id (also agent:identifier,
 *             agent.identifier; a "system|" prefix is ignored)
 *   date      recorded; prefixes ge gt le lt eq (eq: within the value's
 *             precision), repeatable (ANDed): date=ge2026-01-01&date=lt2026-02
 *   outcome   0, 4, 8 or 12
 *   _count    records per page (default 100, at most 1000)
 *   _cursor   the page to resume after (the next link's, a log seq)
 *   _format   json only (application/fhir+json)
 * Anything else is refused, naming the parameter (handling=strict is the
 * only handling: an audit query that silently ignored a condition would
 * report disclosures it was not asked about). */
#ifndef CL_QUERY_AUDIT_SEARCH_H
#define CL_QUERY_AUDIT_SEARCH_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "query/audit/view.h"
#include "query/fhir/engine.h"

#define CL_AUDIT_PAGE_DEFAULT 100
#define CL_AUDIT_PAGE_MAX 1000

/* A filter and the storage its strings point into. */
typedef struct cl_audit_params {
  cl_audit_filter f;
  char patient[128];
  char principal[128];
  char outcome[4];
} cl_audit_params;

/* Fills ap from FHIR search parameters (views; see above). 0, or
 * CL_EINVAL naming the parameter and what is wrong with it. */
int cl_audit_params_of(const cl_fhir_kv *kv, size_t n, cl_audit_params *ap, cl_err *err);

/* One page of records. */
typedef struct cl_audit_page {
  json_t **events; /* AuditEvents, oldest first (each a reference owned here) */
  uint64_t *seqs;  /* their log positions */
  size_t n;
  uint64_t next_after; /* more may follow: the cursor of the next page; 0: none */
} cl_audit_page;

/* Runs the query of f (its limit: at most CL_AUDIT_PAGE_MAX; 0 gives
 * CL_AUDIT_PAGE_DEFAULT) over the audit projection p of log, rendering
 * each record as an AuditEvent (source.site: `site`, may be NULL). On
 * success pg is returned-owned (cl_audit_page_clear). Errors: as
 * cl_audit_query and cl_audit_fhir. */
int cl_audit_page_get(cl_proj *p, cl_log *log, const cl_audit_filter *f, const char *site,
                      cl_audit_page *pg, cl_err *err);
void cl_audit_page_clear(cl_audit_page *pg);

/* The searchset Bundle of a page: entries with fullUrl base/AuditEvent/id,
 * a self link (base/AuditEvent?query) and, when more may follow, a next
 * link with _cursor. `query` is the request's query string without
 * _cursor (may be ""). Returns malloc'd JSON (*len its length), or NULL
 * when out of memory. */
char *cl_audit_bundle(const cl_audit_page *pg, const char *base, const char *query, size_t *len);

/* The audit record whose event id is `id` (the AuditEvent's id), as an
 * AuditEvent (*out a new reference) at log position *seq (may be NULL).
 * Errors: CL_ENOTFOUND (no event, or one that is not an audit record),
 * as cl_audit_fhir and the log's reads. */
int cl_audit_get(cl_log *log, const uint8_t id[16], const char *site, json_t **out, uint64_t *seq,
                 cl_err *err);

#endif

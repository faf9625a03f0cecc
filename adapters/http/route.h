/* The HTTP face's parsing of what a client sends, apart from the server so
 * that it can be fuzzed (tests/fuzz/fuzz_fhir_request.c): the route a path
 * names under /fhir/R4, and the parameters of a query string or form body.
 * No allocation; every function is pure. */
#ifndef CL_ADAPTERS_HTTP_ROUTE_H
#define CL_ADAPTERS_HTTP_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "query/fhir/engine.h"

#define CL_HTTP_BASE_PATH "/fhir/R4"
#define CL_HTTP_MAX_PARAMS 128

/* What a route does: an interaction of the query engine, a step of a
 * Bulk Data export (query/fhir/export.h), or the audit trail's AuditEvent
 * (query/audit/search.h). */
enum cl_http_op {
  CL_HTTP_ENGINE,         /* interaction, type, id, version */
  CL_HTTP_EXPORT_KICKOFF, /* [Patient/|Group/[id]/]$export: level, id (the Group) */
  CL_HTTP_EXPORT_STATUS,  /* $export-status/[job]: GET polls, DELETE cancels */
  CL_HTTP_EXPORT_FILE,    /* $export-file/[job]/[n] */
  CL_HTTP_AUDIT           /* AuditEvent search (interaction SEARCH) or read (READ, id) */
};

enum cl_http_verb { CL_HTTP_GET, CL_HTTP_POST, CL_HTTP_DELETE };

typedef struct cl_http_route {
  int op;          /* enum cl_http_op */
  int interaction; /* CL_HTTP_ENGINE: enum cl_fhir_interaction */
  int method;      /* enum cl_method (adapters/service/methods.h), for the hooks */
  char type[64];
  char id[72];
  uint32_t version; /* VREAD: the version; EXPORT_FILE: the file number */
  int level;        /* EXPORT_KICKOFF: enum cl_fhir_export_level */
  char job[33];     /* EXPORT_STATUS, EXPORT_FILE */
} cl_http_route;

/* The route of `path` (what follows CL_HTTP_BASE_PATH, e.g.
 * "/Patient/1/_history/2") for a verb (enum cl_http_verb). 0, or -1: no
 * such route (404; for a POST or DELETE, 405). */
int cl_http_route_of(const char *path, int verb, cl_http_route *rt);

/* Percent-decodes s in place ('+' is a space when plus_is_space: form
 * bodies). An invalid escape is kept as it is. */
void cl_http_url_decode(char *s, int plus_is_space);

/* The 16 bytes a UUID's text names ("8-4-4-4-12" hex digits, either
 * case), e.g. an AuditEvent's id. 0, or -1 if s is not one. */
int cl_http_uuid(const char *s, uint8_t out[16]);

typedef struct cl_http_params {
  cl_fhir_kv kv[CL_HTTP_MAX_PARAMS];
  size_t n;
  int overflow; /* more than CL_HTTP_MAX_PARAMS were sent */
} cl_http_params;

/* Adds one parameter (views: they must outlive p's use). */
void cl_http_param_add(cl_http_params *p, const char *name, const char *value);
/* Adds the name=value pairs of an application/x-www-form-urlencoded body,
 * decoding it in place (p's entries point into it). */
void cl_http_form_add(cl_http_params *p, char *body);

#endif

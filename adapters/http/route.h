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

typedef struct cl_http_route {
  int interaction; /* enum cl_fhir_interaction */
  int method;      /* enum cl_method (adapters/service/methods.h), for the hooks */
  char type[64];
  char id[72];
  uint32_t version;
} cl_http_route;

/* The route of `path` (what follows CL_HTTP_BASE_PATH, e.g.
 * "/Patient/1/_history/2") for a GET (is_post 0) or a POST. 0, or -1: no
 * such route (404; for a POST, 405). */
int cl_http_route_of(const char *path, int is_post, cl_http_route *rt);

/* Percent-decodes s in place ('+' is a space when plus_is_space: form
 * bodies). An invalid escape is kept as it is. */
void cl_http_url_decode(char *s, int plus_is_space);

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

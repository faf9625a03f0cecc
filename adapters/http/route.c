/* Routes and parameters of the HTTP face (route.h). */
#include "adapters/http/route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/service/methods.h"

static int hexval(int ch) {
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

void cl_http_url_decode(char *s, int plus_is_space) {
  char *w = s;
  for (char *r = s; *r; r++) {
    if (*r == '%' && hexval(r[1]) >= 0 && hexval(r[2]) >= 0) {
      *w++ = (char)(hexval(r[1]) * 16 + hexval(r[2]));
      r += 2;
    } else if (*r == '+' && plus_is_space) {
      *w++ = ' ';
    } else {
      *w++ = *r;
    }
  }
  *w = '\0';
}

void cl_http_param_add(cl_http_params *p, const char *name, const char *value) {
  if (p->n == CL_HTTP_MAX_PARAMS) {
    p->overflow = 1;
    return;
  }
  p->kv[p->n++] = (cl_fhir_kv){name, value ? value : ""};
}

void cl_http_form_add(cl_http_params *p, char *body) {
  char *save = NULL;
  for (char *pair = strtok_r(body, "&", &save); pair; pair = strtok_r(NULL, "&", &save)) {
    char *eq = strchr(pair, '=');
    if (eq != NULL)
      *eq = '\0';
    cl_http_url_decode(pair, 1);
    if (eq != NULL)
      cl_http_url_decode(eq + 1, 1);
    cl_http_param_add(p, pair, eq ? eq + 1 : "");
  }
}

int cl_http_route_of(const char *path, int is_post, cl_http_route *rt) {
  memset(rt, 0, sizeof *rt);
  char buf[512];
  if (strlen(path) >= sizeof buf)
    return -1;
  snprintf(buf, sizeof buf, "%s", path);
  char *seg[6];
  size_t n = 0;
  char *save = NULL;
  for (char *s = strtok_r(buf, "/", &save); s && n < 6; s = strtok_r(NULL, "/", &save))
    seg[n++] = s;
  if (n == 6)
    return -1;
  if (n == 1 && !strcmp(seg[0], "metadata") && !is_post) {
    rt->interaction = CL_FHIR_CAPABILITIES;
    rt->method = M_FHIR_CAPABILITIES;
    return 0;
  }
  if (n == 0 || strlen(seg[0]) >= sizeof rt->type)
    return -1;
  snprintf(rt->type, sizeof rt->type, "%s", seg[0]);
  if (n == 1 && !is_post) {
    rt->interaction = CL_FHIR_SEARCH;
    rt->method = M_FHIR_SEARCH;
    return 0;
  }
  if (n == 2 && !strcmp(seg[1], "_search") && is_post) {
    rt->interaction = CL_FHIR_SEARCH;
    rt->method = M_FHIR_SEARCH;
    return 0;
  }
  if (is_post || n < 2)
    return -1;
  if (n == 2 && !strcmp(seg[1], "_history")) {
    rt->interaction = CL_FHIR_HISTORY_TYPE;
    rt->method = M_FHIR_HISTORY;
    return 0;
  }
  if (strlen(seg[1]) >= sizeof rt->id)
    return -1;
  snprintf(rt->id, sizeof rt->id, "%s", seg[1]);
  if (n == 2) {
    rt->interaction = CL_FHIR_READ;
    rt->method = M_FHIR_READ;
    return 0;
  }
  if (n == 3 && !strcmp(seg[2], "$everything") && !strcmp(rt->type, "Patient")) {
    rt->interaction = CL_FHIR_EVERYTHING;
    rt->method = M_FHIR_EVERYTHING;
    return 0;
  }
  if (n == 3 && !strcmp(seg[2], "_history")) {
    rt->interaction = CL_FHIR_HISTORY_INSTANCE;
    rt->method = M_FHIR_HISTORY;
    return 0;
  }
  if (n == 4 && !strcmp(seg[2], "_history")) {
    char *end;
    unsigned long v = strtoul(seg[3], &end, 10);
    if (*end != '\0' || end == seg[3] || seg[3][0] == '-' || v == 0 || v > UINT32_MAX)
      return -1;
    rt->interaction = CL_FHIR_VREAD;
    rt->method = M_FHIR_READ;
    rt->version = (uint32_t)v;
    return 0;
  }
  return -1;
}

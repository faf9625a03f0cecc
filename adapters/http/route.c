/* Routes and parameters of the HTTP face (route.h). */
#include "adapters/http/route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/service/methods.h"
#include "query/fhir/export.h"

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

int cl_http_uuid(const char *s, uint8_t out[16]) {
  size_t k = 0, i = 0;
  for (; s[i] && i < 36; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-')
        return -1;
      continue;
    }
    int hi = hexval(s[i]), lo = hexval(s[i + 1]);
    if (hi < 0 || lo < 0 || k == 16)
      return -1;
    out[k++] = (uint8_t)(hi * 16 + lo);
    i++;
  }
  return k == 16 && i == 36 && s[i] == '\0' ? 0 : -1;
}

/* A number from 1 to UINT32_MAX, or 0. */
static uint32_t positive(const char *s) {
  char *end;
  unsigned long v = strtoul(s, &end, 10);
  if (*end != '\0' || end == s || s[0] == '-' || s[0] == '+' || v == 0 || v > UINT32_MAX)
    return 0;
  return (uint32_t)v;
}

/* A job id: 32 lower-case hex digits. */
static int job_id(const char *s, char out[33]) {
  if (strlen(s) != 32 || strspn(s, "0123456789abcdef") != 32)
    return -1;
  memcpy(out, s, 33);
  return 0;
}

/* The Bulk Data routes: 1 matched (0 or -1 in *rc), 0 not one of them. */
static int export_route(char **seg, size_t n, int verb, cl_http_route *rt, int *rc) {
  *rc = -1;
  if (n >= 1 && !strcmp(seg[0], "$export-status")) {
    if (n == 2 && verb != CL_HTTP_POST && job_id(seg[1], rt->job) == 0) {
      rt->op = CL_HTTP_EXPORT_STATUS;
      rt->method = verb == CL_HTTP_DELETE ? M_FHIR_EXPORT_CANCEL : M_FHIR_EXPORT_STATUS;
      *rc = 0;
    }
    return 1;
  }
  if (n >= 1 && !strcmp(seg[0], "$export-file")) {
    if (n == 3 && verb == CL_HTTP_GET && job_id(seg[1], rt->job) == 0 &&
        (rt->version = positive(seg[2])) != 0) {
      rt->op = CL_HTTP_EXPORT_FILE;
      rt->method = M_FHIR_EXPORT_READ;
      *rc = 0;
    }
    return 1;
  }
  int sys = n == 1 && !strcmp(seg[0], "$export");
  int pat = n == 2 && !strcmp(seg[0], "Patient") && !strcmp(seg[1], "$export");
  int grp = n == 3 && !strcmp(seg[0], "Group") && !strcmp(seg[2], "$export");
  if (!sys && !pat && !grp)
    return 0;
  if (verb == CL_HTTP_GET && (!grp || strlen(seg[1]) < sizeof rt->id)) {
    rt->op = CL_HTTP_EXPORT_KICKOFF;
    rt->method = M_FHIR_EXPORT;
    rt->level = sys ? CL_FHIR_EXPORT_SYSTEM : pat ? CL_FHIR_EXPORT_PATIENT : CL_FHIR_EXPORT_GROUP;
    if (grp)
      snprintf(rt->id, sizeof rt->id, "%s", seg[1]);
    *rc = 0;
  }
  return 1;
}

int cl_http_route_of(const char *path, int verb, cl_http_route *rt) {
  memset(rt, 0, sizeof *rt);
  int is_post = verb == CL_HTTP_POST;
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
  int rc;
  if (export_route(seg, n, verb, rt, &rc))
    return rc;
  if (verb == CL_HTTP_DELETE)
    return -1;
  if (n == 1 && !strcmp(seg[0], "metadata") && !is_post) {
    rt->interaction = CL_FHIR_CAPABILITIES;
    rt->method = M_FHIR_CAPABILITIES;
    return 0;
  }
  if (n == 0 || strlen(seg[0]) >= sizeof rt->type)
    return -1;
  snprintf(rt->type, sizeof rt->type, "%s", seg[0]);
  if (!strcmp(rt->type, "AuditEvent")) { /* the audit trail: search and read only */
    int search = (n == 1 && !is_post) || (n == 2 && is_post && !strcmp(seg[1], "_search"));
    int read = n == 2 && !is_post && strlen(seg[1]) < sizeof rt->id;
    if (!search && !read)
      return -1;
    rt->op = CL_HTTP_AUDIT;
    rt->method = M_AUDIT_QUERY;
    rt->interaction = search ? CL_FHIR_SEARCH : CL_FHIR_READ;
    if (read)
      snprintf(rt->id, sizeof rt->id, "%s", seg[1]);
    return 0;
  }
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
    if ((rt->version = positive(seg[3])) == 0)
      return -1;
    rt->interaction = CL_FHIR_VREAD;
    rt->method = M_FHIR_READ;
    return 0;
  }
  return -1;
}

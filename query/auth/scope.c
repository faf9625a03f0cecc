/* SMART on FHIR scopes (scope.h). */
#include "query/auth/scope.h"

#include <stdio.h>
#include <string.h>

#include "query/fhir/map.h"

/* Scopes about no clinical data: accepted, not granted. */
static const char *const IGNORED[] = {"openid",         "fhirUser",       "profile",
                                      "launch",         "launch/patient", "launch/encounter",
                                      "offline_access", "online_access"};

static int context_of(const char *s, size_t n) {
  if (n == 7 && !strncmp(s, "patient", 7))
    return CL_SCOPE_PATIENT;
  if (n == 4 && !strncmp(s, "user", 4))
    return CL_SCOPE_USER;
  if (n == 6 && !strncmp(s, "system", 6))
    return CL_SCOPE_SYSTEM;
  return 0;
}

/* "rs", "read", "write", "*" -> bits; 0 if not permissions. */
static unsigned perms_of(const char *p) {
  if (!strcmp(p, "read"))
    return CL_SCOPE_R | CL_SCOPE_S;
  if (!strcmp(p, "write"))
    return CL_SCOPE_C | CL_SCOPE_U | CL_SCOPE_D;
  if (!strcmp(p, "*"))
    return CL_SCOPE_C | CL_SCOPE_R | CL_SCOPE_U | CL_SCOPE_D | CL_SCOPE_S;
  static const char order[] = "cruds";
  unsigned bits = 0;
  int last = -1;
  for (; *p; p++) {
    const char *at = strchr(order, *p);
    if (!at || (int)(at - order) <= last)
      return 0; /* not a letter of cruds, or out of order, or repeated */
    last = (int)(at - order);
    bits |= 1u << last;
  }
  return bits;
}

/* One scope into sc: 1 granted, 0 accepted and ignored, or CL_EINVAL. */
static int parse_one(const char *w, int contexts, cl_scope *sc, cl_err *err) {
  for (size_t i = 0; i < sizeof IGNORED / sizeof IGNORED[0]; i++)
    if (!strcmp(w, IGNORED[i]))
      return 0;
  if (strchr(w, '?'))
    return cl_err_set(err, CL_EINVAL,
                      "scope \"%s\": granular scopes (?param=value) are not supported; ask for "
                      "the whole type",
                      w);
  const char *slash = strchr(w, '/'), *dot = slash ? strrchr(slash, '.') : NULL;
  int ctx = slash ? context_of(w, (size_t)(slash - w)) : 0;
  if (!slash || !dot || !ctx)
    return cl_err_set(err, CL_EINVAL,
                      "scope \"%s\": not <patient|user|system>/<type>.<permissions> (e.g. "
                      "system/Observation.rs)",
                      w);
  if (!(ctx & contexts))
    return cl_err_set(err, CL_EINVAL, "scope \"%s\": %.*s/ scopes cannot be asked for here (%s)", w,
                      (int)(slash - w), w,
                      contexts == CL_SCOPE_SYSTEM ? "a backend client asks for system/ scopes"
                                                  : "a person asks for user/ or patient/ scopes");
  size_t tl = (size_t)(dot - slash - 1);
  if (tl == 0 || tl >= sizeof sc->type)
    return cl_err_set(err, CL_EINVAL, "scope \"%s\": no resource type", w);
  memcpy(sc->type, slash + 1, tl);
  sc->type[tl] = '\0';
  if (strcmp(sc->type, "*") != 0 && strcmp(sc->type, "AuditEvent") != 0 &&
      cl_fhir_type_of(sc->type) <= 0)
    return cl_err_set(err, CL_EINVAL,
                      "scope \"%s\": \"%s\" is not a resource type this server serves", w,
                      sc->type);
  if (!(sc->perms = perms_of(dot + 1)))
    return cl_err_set(err, CL_EINVAL,
                      "scope \"%s\": permissions are c r u d s in that order (rs), or v1's read, "
                      "write, *",
                      w);
  sc->context = ctx;
  return 1;
}

int cl_scopes_parse(const char *text, int contexts, cl_scopes *out, char *granted, cl_err *err) {
  memset(out, 0, sizeof *out);
  if (granted)
    granted[0] = '\0';
  size_t gl = 0;
  for (const char *s = text ? text : ""; *s;) {
    s += strspn(s, " ");
    size_t l = strcspn(s, " ");
    if (l == 0)
      break;
    char w[256];
    if (l >= sizeof w)
      return cl_err_set(err, CL_EINVAL, "scope \"%.40s...\": longer than %zu bytes", s,
                        sizeof w - 1);
    memcpy(w, s, l);
    w[l] = '\0';
    s += l;
    cl_scope sc;
    int rc = parse_one(w, contexts, &sc, err);
    if (rc < 0 || rc > 1)
      return rc;
    if (rc == 0)
      continue;
    if (out->n == CL_SCOPES_MAX)
      return cl_err_set(err, CL_EINVAL, "scope: more than %d clinical scopes", CL_SCOPES_MAX);
    out->s[out->n++] = sc;
    if (granted) {
      if (gl + l + 2 > CL_SCOPE_TEXT_MAX)
        return cl_err_set(err, CL_EINVAL, "scope: longer than %d bytes", CL_SCOPE_TEXT_MAX - 1);
      gl += (size_t)snprintf(granted + gl, CL_SCOPE_TEXT_MAX - gl, "%s%s", gl ? " " : "", w);
    }
  }
  return 0;
}

int cl_scopes_allow_context(const cl_scopes *s, int context) {
  for (size_t i = 0; i < s->n; i++)
    if (s->s[i].context & context)
      return 1;
  return 0;
}

int cl_scopes_allow(const cl_scopes *s, const char *type, unsigned perms) {
  int ctx = 0;
  for (size_t i = 0; i < s->n; i++) {
    const cl_scope *sc = &s->s[i];
    if ((sc->perms & perms) == perms && (!strcmp(sc->type, "*") || !strcmp(sc->type, type)))
      ctx |= sc->context;
  }
  return ctx;
}

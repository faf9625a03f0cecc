/* The access policy (policy.h): parsing and the three questions. */
#include "query/auth/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/fhir/elements.h"
#include "query/fhir/map.h"
#include "store/alloc.h"
#include "store/event.h"

#define MAX_ROLES 64
#define MAX_METHODS 32
#define MAX_TYPE 1000 /* event type codes are below (docs/events.md ranges) */
#define ROLE_MAX 64

static const char *const KINDS[] = {"write", "read", "proof", "health", "admin-read",
                                    "admin", "peer", "auth",  "audit",  "emergency", "cds"};
#define NKINDS (sizeof KINDS / sizeof KINDS[0])

/* Event categories: the type ranges of docs/events.md. */
static const struct {
  const char *name;
  uint32_t lo, hi;
} CATEGORIES[] = {{"patient", 100, 119}, {"clinical", 200, 299}, {"pharmacy", 300, 399},
                  {"imaging", 400, 499}, {"billing", 500, 599},  {"portal", 600, 699},
                  {"device", 700, 799},  {"decision", 800, 899}, {"security", 900, 999}};

typedef struct role {
  char name[ROLE_MAX];
  unsigned kinds; /* bit per KINDS entry */
  int all_methods;
  char *methods[MAX_METHODS];
  size_t nmethods;
  uint8_t append[(MAX_TYPE + 7) / 8];
  int read_all;
  int read_compartment; /* any type, in the principal's own patient compartment */
  uint64_t read;        /* bit per enum cl_fhir_type */
  uint64_t subset;      /* bit per type: a `fields` rule limits what it reads of it */
  uint64_t fields[CL_FHIR_NTYPES]; /* per type: bit per element (query/fhir/elements.h) */
} role;

struct cl_policy {
  role roles[MAX_ROLES];
  size_t n;
};

void cl_policy_free(cl_policy *p) {
  if (!p)
    return;
  for (size_t i = 0; i < p->n; i++)
    for (size_t j = 0; j < p->roles[i].nmethods; j++)
      cl_free(p->roles[i].methods[j]);
  cl_free(p);
}

static role *role_get(cl_policy *p, const char *name, int create) {
  for (size_t i = 0; i < p->n; i++)
    if (!strcmp(p->roles[i].name, name))
      return &p->roles[i];
  if (!create || p->n == MAX_ROLES)
    return NULL;
  role *r = &p->roles[p->n++];
  snprintf(r->name, sizeof r->name, "%s", name);
  return r;
}

static int kind_index(const char *k) {
  for (size_t i = 0; i < NKINDS; i++)
    if (!strcmp(KINDS[i], k))
      return (int)i;
  return -1;
}

static void allow_type(role *r, uint32_t t) {
  if (t < MAX_TYPE)
    r->append[t / 8] |= (uint8_t)(1u << (t % 8));
}

/* One object of a rule: 0, or CL_EMALFORMED / CL_ENOMEM with the reason in
 * why. */
static int add_object(role *r, const char *verb, const char *obj, char *why, size_t wn) {
  if (!strcmp(verb, "call")) {
    int k = kind_index(obj);
    if (!strcmp(obj, "*")) {
      r->all_methods = 1;
    } else if (k >= 0) {
      r->kinds |= 1u << k;
    } else if (strchr(obj, '/') && strchr(obj, '.')) { /* package.Service/Method */
      if (r->nmethods == MAX_METHODS) {
        snprintf(why, wn, "more than %d method names for role %s", MAX_METHODS, r->name);
        return CL_EMALFORMED;
      }
      size_t l = strlen(obj);
      if (!(r->methods[r->nmethods] = cl_malloc(l + 1)))
        return CL_ENOMEM;
      memcpy(r->methods[r->nmethods++], obj, l + 1);
    } else {
      snprintf(why, wn,
               "\"%s\" is not a method kind (write read proof health admin-read admin peer "
               "auth audit emergency cds), a method name (package.Service/Method) or *",
               obj);
      return CL_EMALFORMED;
    }
    return 0;
  }
  if (!strcmp(verb, "append")) {
    if (!strcmp(obj, "*")) {
      for (uint32_t t = 0; t < MAX_TYPE; t++)
        allow_type(r, t);
      return 0;
    }
    for (size_t i = 0; i < sizeof CATEGORIES / sizeof CATEGORIES[0]; i++)
      if (!strcmp(CATEGORIES[i].name, obj)) {
        for (uint32_t t = CATEGORIES[i].lo; t <= CATEGORIES[i].hi; t++)
          allow_type(r, t);
        return 0;
      }
    uint32_t t = cl_event_type_code(obj);
    if (t == 0 || t >= MAX_TYPE || strcmp(cl_event_type_name(t), obj) != 0) {
      snprintf(why, wn, "\"%s\" is not an event type (ObservationRecorded) or category", obj);
      return CL_EMALFORMED;
    }
    allow_type(r, t);
    return 0;
  }
  if (!strcmp(verb, "read")) {
    if (!strcmp(obj, "compartment")) {
      r->read_compartment = 1;
      return 0;
    }
    int t = strcmp(obj, "*") ? cl_fhir_type_of(obj) : -1;
    if (t == -1) {
      r->read_all = 1;
    } else if (t <= 0) {
      snprintf(why, wn, "\"%s\" is not a FHIR resource type clinlog serves, * or compartment", obj);
      return CL_EMALFORMED;
    } else {
      r->read |= 1ull << t;
    }
    return 0;
  }
  snprintf(why, wn, "\"%s\" is not a verb (call, append, read, fields)", verb);
  return CL_EMALFORMED;
}

/* A `fields` rule's objects: a resource type, then its elements. */
static int add_fields(role *r, char *obj, char **save, char *why, size_t wn) {
  int t = cl_fhir_type_of(obj);
  if (t <= 0) {
    snprintf(why, wn, "\"%s\" is not a FHIR resource type clinlog serves", obj);
    return CL_EMALFORMED;
  }
  const char *type = obj;
  int any = 0;
  for (char *e; (e = strtok_r(NULL, " \t\r", save)) != NULL; any = 1) {
    int i = cl_fhir_element_index(t, e);
    if (i < 0) {
      char page[64]; /* the spec's page name is lowercase */
      size_t k = 0;
      for (; type[k] && k < sizeof page - 1; k++)
        page[k] = (char)(type[k] >= 'A' && type[k] <= 'Z' ? type[k] + 32 : type[k]);
      page[k] = '\0';
      snprintf(why, wn,
               "\"%s\" is not an element of %s (FHIR R4 names: code, onset[x], ...; "
               "https://hl7.org/fhir/R4/%s.html)",
               e, type, page);
      return CL_EMALFORMED;
    }
    r->fields[t] |= 1ull << i;
  }
  if (!any) {
    snprintf(why, wn, "a fields rule is <role> fields <type> <element> [<element>...]");
    return CL_EMALFORMED;
  }
  r->subset |= 1ull << t;
  r->read |= 1ull << t;
  return 0;
}

int cl_policy_parse(const char *text, size_t len, const char *name, cl_policy **out, cl_err *err) {
  cl_policy *p = cl_calloc(1, sizeof *p);
  if (!p)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  size_t lineno = 0, pos = 0;
  int rc = 0;
  char why[256];
  while (pos < len && rc == 0) {
    size_t end = pos;
    while (end < len && text[end] != '\n')
      end++;
    lineno++;
    char line[1024];
    size_t l = end - pos;
    if (l >= sizeof line) {
      rc = cl_err_set(err, CL_EMALFORMED, "%s:%zu: line longer than %zu bytes", name, lineno,
                      sizeof line - 1);
      break;
    }
    memcpy(line, text + pos, l);
    line[l] = '\0';
    pos = end + 1;
    char *hash = strchr(line, '#');
    if (hash)
      *hash = '\0';
    char *save = NULL, *rname = strtok_r(line, " \t\r", &save);
    if (!rname)
      continue; /* blank or comment */
    char *verb = strtok_r(NULL, " \t\r", &save), *obj = strtok_r(NULL, " \t\r", &save);
    if (!verb || !obj) {
      rc = cl_err_set(err, CL_EMALFORMED, "%s:%zu: a rule is <role> <verb> <object>...", name,
                      lineno);
      break;
    }
    if (strlen(rname) >= ROLE_MAX || strchr(rname, ',')) {
      rc = cl_err_set(err, CL_EMALFORMED, "%s:%zu: \"%s\" is not a role name", name, lineno, rname);
      break;
    }
    role *r = role_get(p, rname, 1);
    if (!r) {
      rc = cl_err_set(err, CL_EMALFORMED, "%s:%zu: more than %d roles", name, lineno, MAX_ROLES);
      break;
    }
    if (!strcmp(verb, "fields")) {
      int c = add_fields(r, obj, &save, why, sizeof why);
      if (c)
        rc = cl_err_set(err, c, "%s:%zu: %s", name, lineno, why);
      continue;
    }
    for (; obj && rc == 0; obj = strtok_r(NULL, " \t\r", &save)) {
      int c = add_object(r, verb, obj, why, sizeof why);
      if (c == CL_ENOMEM)
        rc = cl_err_set(err, CL_ENOMEM, "out of memory");
      else if (c)
        rc = cl_err_set(err, c, "%s:%zu: %s", name, lineno, why);
    }
  }
  if (rc) {
    cl_policy_free(p);
    return rc;
  }
  *out = p;
  return 0;
}

int cl_policy_load(const char *path, cl_policy **out, cl_err *err) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return cl_err_set(err, CL_EIO, "policy %s: cannot open", path);
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  size_t got;
  while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0)
    if ((n += got) == cap) {
      char *nb = realloc(buf, cap *= 2);
      if (!nb) {
        free(buf);
        buf = NULL;
      }
      buf = nb;
    }
  int bad = ferror(f);
  fclose(f);
  if (!buf || bad) {
    free(buf);
    return cl_err_set(err, bad ? CL_EIO : CL_ENOMEM, "policy %s: cannot read", path);
  }
  int rc = cl_policy_parse(buf, n, path, out, err);
  free(buf);
  return rc;
}

int cl_policy_default(cl_policy **out, cl_err *err) {
  return cl_policy_parse(cl_policy_default_text, strlen(cl_policy_default_text), "default.policy",
                         out, err);
}

/* ------------------------------------------------------------ questions */

/* Calls ok(role, ctx) for each of roles that the policy names; 1 at the
 * first yes. */
static int any_role(const cl_policy *p, const char *roles, int (*ok)(const role *, const void *),
                    const void *ctx) {
  const char *s = roles;
  while (*s) {
    size_t l = strcspn(s, ",");
    for (size_t i = 0; i < p->n; i++)
      if (strlen(p->roles[i].name) == l && !strncmp(p->roles[i].name, s, l) &&
          ok(&p->roles[i], ctx))
        return 1;
    s += l;
    if (*s == ',')
      s++;
  }
  return 0;
}

typedef struct call_q {
  const char *method;
  int kind;
} call_q;

static int may_call(const role *r, const void *ctx) {
  const call_q *q = ctx;
  if (r->all_methods || (q->kind >= 0 && (r->kinds & (1u << q->kind))))
    return 1;
  for (size_t i = 0; i < r->nmethods; i++)
    if (!strcmp(r->methods[i], q->method))
      return 1;
  return 0;
}

int cl_policy_may_call(const cl_policy *p, const char *roles, const char *method,
                       const char *kind) {
  call_q q = {method, kind_index(kind)};
  return any_role(p, roles, may_call, &q);
}

static int may_append(const role *r, const void *ctx) {
  uint32_t t = *(const uint32_t *)ctx;
  return t < MAX_TYPE && (r->append[t / 8] & (1u << (t % 8)));
}

int cl_policy_may_append(const cl_policy *p, const char *roles, uint32_t event_type) {
  return any_role(p, roles, may_append, &event_type);
}

static int may_read(const role *r, const void *ctx) {
  int t = *(const int *)ctx;
  return r->read_all || (t > 0 && (r->read & (1ull << t)));
}

int cl_policy_may_read(const cl_policy *p, const char *roles, const char *fhir_type) {
  int t = strcmp(fhir_type, "*") ? cl_fhir_type_of(fhir_type) : -1;
  return any_role(p, roles, may_read, &t);
}

static int reads_compartment(const role *r, const void *ctx) {
  (void)ctx;
  return r->read_compartment;
}

int cl_policy_reads_compartment(const cl_policy *p, const char *roles) {
  return any_role(p, roles, reads_compartment, NULL);
}

/* What `roles` see of `type` resources: 0 whole, 1 the union of their
 * fields rules (*mask), 2 nothing (no role reads the type). */
static int fields_of(const cl_policy *p, const char *roles, int type, uint64_t *mask) {
  int limited = 0;
  *mask = 0;
  for (const char *s = roles; *s;) {
    size_t l = strcspn(s, ",");
    for (size_t i = 0; i < p->n; i++) {
      const role *r = &p->roles[i];
      if (strlen(r->name) != l || strncmp(r->name, s, l) != 0)
        continue;
      if (r->subset & (1ull << type)) {
        *mask |= r->fields[type];
        limited = 1;
      } else if (r->read_all || r->read_compartment || (r->read & (1ull << type))) {
        return 0;
      }
    }
    s += l + (s[l] == ',');
  }
  return limited ? 1 : 2;
}

int cl_policy_fields(const cl_policy *p, const char *roles, int type, uint64_t *mask) {
  if (type <= 0 || type >= CL_FHIR_NTYPES) {
    *mask = 0;
    return 0;
  }
  return fields_of(p, roles, type, mask) != 0;
}

int cl_policy_restricts(const cl_policy *p, const char *roles) {
  uint64_t mask;
  for (int t = 1; t < CL_FHIR_NTYPES; t++)
    if (fields_of(p, roles, t, &mask) == 1)
      return 1;
  return 0;
}

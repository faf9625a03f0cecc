/* AccessRecorded -> FHIR R4 AuditEvent (BALP); see auditevent.h. */
#include "query/audit/auditevent.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "query/fhir/fj.h"
#include "query/fhir/map.h"

#define DCM "http://dicom.nema.org/resources/ontology/DCM"
#define EVENT_TYPE "http://terminology.hl7.org/CodeSystem/audit-event-type"
#define RESTFUL "http://hl7.org/fhir/restful-interaction"
#define ACT_REASON "http://terminology.hl7.org/CodeSystem/v3-ActReason"
#define SOURCE_TYPE "http://terminology.hl7.org/CodeSystem/security-source-type"
#define ENTITY_TYPE "http://terminology.hl7.org/CodeSystem/audit-entity-type"
#define OBJECT_ROLE "http://terminology.hl7.org/CodeSystem/object-role"
#define BALP_ENTITY "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"

/* ------------------------------------------------------------ addresses */

static int is_ip(const char *s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static void copy(char *out, size_t n, const char *s, size_t l) {
  if (l >= n)
    l = n - 1;
  memcpy(out, s, l);
  out[l] = '\0';
}

/* a between open and close (e.g. "[" "]"), if s starts with open */
static int bracketed(const char *s, const char *open, const char *close, char *out, size_t n) {
  size_t ol = strlen(open);
  if (strncasecmp(s, open, ol) != 0)
    return 0;
  const char *end = strcasestr(s + ol, close);
  if (!end)
    return 0;
  copy(out, n, s + ol, (size_t)(end - s - (ptrdiff_t)ol));
  return 1;
}

const char *cl_audit_network(const char *a, char *addr, size_t n) {
  if (!a || !a[0] || n == 0)
    return NULL;
  if (!strncmp(a, "unix:", 5) || !strncmp(a, "unix-abstract:", 14)) {
    copy(addr, n, a, strlen(a));
    return "5";
  }
  const char *h = a;
  if (!strncmp(h, "ipv4:", 5) || !strncmp(h, "ipv6:", 5))
    h += 5;
  if (bracketed(h, "[", "]", addr, n) || bracketed(h, "%5B", "%5D", addr, n))
    return is_ip(addr) ? "2" : "1";
  const char *colon = strchr(h, ':');
  if (colon && strchr(colon + 1, ':') == NULL) /* host:port */
    copy(addr, n, h, (size_t)(colon - h));
  else /* a bare host, or a bare IPv6 address */
    copy(addr, n, h, strlen(h));
  if (!addr[0]) { /* ":7525": every address of this host */
    copy(addr, n, a, strlen(a));
    return "1";
  }
  return is_ip(addr) ? "2" : "1";
}

static json_t *network(const char *a) {
  char addr[256];
  const char *type = cl_audit_network(a, addr, sizeof addr);
  if (!type)
    return NULL;
  return json_pack("{s:s,s:s}", "address", addr, "type", type);
}

/* ------------------------------------------------------------- codings */

static json_t *coding(const char *system, const char *code, const char *display) {
  json_t *c = json_object();
  fj_set_str(c, "system", system);
  fj_set_str(c, "code", code);
  fj_set_str(c, "display", display);
  return c;
}

static json_t *concept(const char *system, const char *code, const char *display) {
  json_t *cc = json_object();
  fj_set_one(cc, "coding", coding(system, code, display));
  return cc;
}

static const char *const RESTFUL_CODES[] = {"read",
                                            "vread",
                                            "update",
                                            "patch",
                                            "delete",
                                            "history",
                                            "history-instance",
                                            "history-type",
                                            "history-system",
                                            "create",
                                            "search",
                                            "search-type",
                                            "search-system",
                                            "search-compartment",
                                            "capabilities",
                                            "transaction",
                                            "batch",
                                            "operation"};

static int restful(const char *s) {
  for (size_t i = 0; i < sizeof RESTFUL_CODES / sizeof RESTFUL_CODES[0]; i++)
    if (!strcmp(s, RESTFUL_CODES[i]))
      return 1;
  return 0;
}

/* DICOM codes a record's subtype may hold, with their displays. */
static const char *dicom_display(const char *code) {
  if (!strcmp(code, "110122"))
    return "Login";
  if (!strcmp(code, "110123"))
    return "Logout";
  return NULL;
}

static int is_auth(const Clinlog__V1__AccessRecorded *a) {
  return dicom_display(a->subtype) != NULL || !strncmp(a->method, "clinlog.v1.Auth/", 16);
}

static const char *outcome_code(const char *o) {
  if (!strcmp(o, "0") || !strcmp(o, "4") || !strcmp(o, "8") || !strcmp(o, "12"))
    return o;
  if (!strcmp(o, "ok"))
    return "0";
  if (!strcmp(o, "denied"))
    return "4";
  if (!strcmp(o, "error"))
    return "8";
  return NULL;
}

static const char *action_code(const char *a) {
  static const char *const codes[] = {"C", "R", "U", "D", "E"};
  for (size_t i = 0; i < 5; i++)
    if (!strcmp(a, codes[i]))
      return codes[i];
  return NULL;
}

static const char *reason_display(const char *code) {
  static const char *const d[][2] = {{"TREAT", "treatment"},
                                     {"ETREAT", "Emergency Treatment"},
                                     {"BTG", "break the glass"},
                                     {"HPAYMT", "healthcare payment"},
                                     {"HOPERAT", "healthcare operations"},
                                     {"PATRQT", "patient requested"},
                                     {"HRESCH", "healthcare research"},
                                     {"PUBHLTH", "public health"},
                                     {"HSYSADMIN", "health system administration"},
                                     {"COC", "coordination of care"},
                                     {"HLEGAL", "legal"},
                                     {"HTEST", "test health data"}};
  for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
    if (!strcmp(code, d[i][0]))
      return d[i][1];
  return NULL;
}

/* purposeOfEvent / agent.purposeOfUse: the record's purpose, and under
 * break-glass ETREAT and BTG (each once). */
static json_t *purposes(const Clinlog__V1__AccessRecorded *a) {
  json_t *arr = json_array();
  const char *codes[3];
  size_t n = 0;
  if (fj_has(a->purpose_of_use))
    codes[n++] = a->purpose_of_use;
  if (a->break_glass) {
    if (n == 0 || strcmp(codes[0], "ETREAT"))
      codes[n++] = "ETREAT";
    if (strcmp(codes[0], "BTG"))
      codes[n++] = "BTG";
  }
  for (size_t i = 0; i < n; i++)
    fj_push(arr, concept(ACT_REASON, codes[i], reason_display(codes[i])));
  return arr;
}

/* ------------------------------------------------------------ pieces */

static json_t *subtypes(const Clinlog__V1__AccessRecorded *a) {
  json_t *arr = json_array();
  const char *dd = dicom_display(a->subtype);
  if (dd)
    fj_push(arr, coding(DCM, a->subtype, dd));
  else if (restful(a->subtype))
    fj_push(arr, coding(RESTFUL, a->subtype, NULL));
  else if (fj_has(a->subtype)) /* a code of neither system: kept under clinlog's */
    fj_push(arr, coding(CL_AUDIT_METHOD_SYSTEM, a->subtype, NULL));
  if (fj_has(a->method) && strcmp(a->method, a->subtype))
    fj_push(arr, coding(CL_AUDIT_METHOD_SYSTEM, a->method, NULL));
  return arr;
}

static json_t *outcome_desc(const Clinlog__V1__AccessRecorded *a) {
  if (fj_has(a->error) && fj_has(a->detail))
    return json_sprintf("%s: %s", a->error, a->detail);
  if (fj_has(a->detail))
    return json_string(a->detail);
  if (fj_has(a->error))
    return json_string(a->error);
  return NULL;
}

static json_t *identifier(const char *system, const char *value) {
  json_t *id = json_object();
  fj_set_str(id, "system", system);
  fj_set_str(id, "value", value);
  return id;
}

static json_t *node_ref(uint64_t node_id) {
  char v[24], d[48];
  snprintf(v, sizeof v, "%llu", (unsigned long long)node_id);
  snprintf(d, sizeof d, node_id ? "clinlog node %llu" : "clinlog (single node)",
           (unsigned long long)node_id);
  json_t *r = json_object();
  fj_set(r, "identifier", identifier(CL_AUDIT_NODE_SYSTEM, v));
  fj_set_str(r, "display", d);
  return r;
}

static json_t *user_agent(const Clinlog__V1__AccessRecorded *a) {
  json_t *ag = json_object();
  fj_set(ag, "type", concept(DCM, "110153", "Source Role ID"));
  json_t *roles = json_array();
  for (size_t i = 0; i < a->n_roles; i++)
    if (fj_has(a->roles[i]))
      fj_push(roles, concept(CL_AUDIT_ROLE_SYSTEM, a->roles[i], NULL));
  fj_set(ag, "role", roles);
  if (fj_has(a->principal_id)) {
    json_t *who = json_object();
    fj_set(who, "identifier", identifier(FJ_PRINCIPAL_SYSTEM, a->principal_id));
    fj_set(ag, "who", who);
  } else {
    fj_set_str(ag, "name", "unauthenticated caller");
  }
  fj_set_str(ag, "altId", a->token_id);
  json_object_set_new(ag, "requestor", json_true());
  fj_set(ag, "network", network(a->client_address));
  fj_set(ag, "purposeOfUse", purposes(a));
  return ag;
}

static json_t *server_agent(const Clinlog__V1__AccessRecorded *a) {
  json_t *ag = json_object();
  fj_set(ag, "type", concept(DCM, "110152", "Destination Role ID"));
  fj_set(ag, "who", node_ref(a->node_id));
  json_object_set_new(ag, "requestor", json_false());
  fj_set(ag, "network", network(a->server_address));
  return ag;
}

static json_t *entity(const char *type, const char *type_display, const char *role,
                      const char *role_display) {
  json_t *e = json_object();
  fj_set(e, "type", coding(ENTITY_TYPE, type, type_display));
  if (role)
    fj_set(e, "role", coding(OBJECT_ROLE, role, role_display));
  return e;
}

/* {what: ...} first: entity() makes the rest, what is set in front. */
static json_t *with_what(json_t *what, json_t *e) {
  json_t *o = json_object();
  fj_set(o, "what", what);
  json_object_update(o, e);
  json_decref(e);
  return o;
}

/* 1 if s is "Type/id" with a FHIR resource type's shape and a valid id. */
static int type_slash_id(const char *s) {
  const char *slash = strchr(s, '/');
  if (!slash || s[0] < 'A' || s[0] > 'Z' || strchr(slash + 1, '/'))
    return 0;
  for (const char *p = s; p < slash; p++)
    if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')))
      return 0;
  size_t il = strlen(slash + 1);
  if (il == 0 || il > 64)
    return 0;
  for (const char *p = slash + 1; *p; p++)
    if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
          *p == '-' || *p == '.'))
      return 0;
  return 1;
}

/* 1 if s is a bare resource type ("Observation"): what a search names. */
static int bare_type(const char *s) {
  if (s[0] < 'A' || s[0] > 'Z')
    return 0;
  for (const char *p = s; *p; p++)
    if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')))
      return 0;
  return 1;
}

static json_t *patient_entity(const char *pid) {
  char id[CL_FHIR_ID_MAX], ref[CL_FHIR_ID_MAX + 16];
  cl_fhir_id("Patient", NULL, pid, id);
  snprintf(ref, sizeof ref, "Patient/%s", id);
  json_t *what = json_object();
  fj_set_str(what, "reference", ref);
  fj_set(what, "identifier", fj_business_id(pid));
  return with_what(what, entity("1", "Person", "1", "Patient"));
}

/* The entity acted on, or NULL (a bare type: the query entity names it). */
static json_t *data_entity(const char *res) {
  if (!fj_has(res) || bare_type(res))
    return NULL;
  json_t *what = json_object();
  if (type_slash_id(res)) {
    fj_set_str(what, "reference", res);
    return with_what(what, entity("2", "System Object", "4", "Domain Resource"));
  }
  const char *colon = strchr(res, ':');
  if (colon && !strncmp(res, "principal:", 10)) {
    fj_set(what, "identifier", identifier(FJ_PRINCIPAL_SYSTEM, colon + 1));
    return with_what(what, entity("1", "Person", "6", "User"));
  }
  char system[64] = "urn:clinlog:entity";
  const char *value = res;
  size_t pl = colon ? (size_t)(colon - res) : 0;
  if (colon && pl > 0 && pl < 32 && colon[1]) {
    int ok = 1;
    for (size_t i = 0; i < pl; i++)
      ok &= (res[i] >= 'a' && res[i] <= 'z') || (res[i] >= '0' && res[i] <= '9') || res[i] == '-';
    if (ok) {
      snprintf(system, sizeof system, "urn:clinlog:%.*s", (int)pl, res);
      value = colon + 1;
    }
  }
  fj_set(what, "identifier", identifier(system, value));
  return with_what(what, entity("2", "System Object", "4", "Domain Resource"));
}

static json_t *count_detail(uint64_t count) {
  char v[24];
  snprintf(v, sizeof v, "%llu", (unsigned long long)count);
  json_t *arr = json_array();
  fj_push(arr, json_pack("{s:s,s:s}", "type", "count", "valueString", v));
  return arr;
}

static json_t *query_entity(const Clinlog__V1__AccessRecorded *a) {
  json_t *e = entity("2", "System Object", "24", "Query");
  if (bare_type(a->resource))
    fj_set_str(e, "description", a->resource);
  if (fj_has(a->query))
    fj_set(e, "query", fj_base64(a->query, strlen(a->query)));
  if (a->count)
    fj_set(e, "detail", count_detail(a->count));
  return e;
}

static json_t *request_entity(const char *request_id) {
  json_t *what = json_object();
  json_t *id = json_object();
  fj_set_str(id, "value", request_id);
  fj_set(what, "identifier", id);
  json_t *e = json_object();
  fj_set(e, "what", what);
  fj_set(e, "type", coding(BALP_ENTITY, "XrequestId", "XrequestId"));
  return e;
}

const char *cl_audit_resource(const Clinlog__V1__AccessRecorded *a, uint64_t seq, char *buf,
                              size_t n) {
  const char *res = a->resource ? a->resource : "";
  if (!a->preceding || res[0] || seq <= a->preceding || !n)
    return res;
  snprintf(buf, n, "seq:%llu-%llu", (unsigned long long)(seq - a->preceding),
           (unsigned long long)(seq - 1));
  return buf;
}

static json_t *entities(const Clinlog__V1__AccessRecorded *a, uint64_t seq) {
  json_t *arr = json_array();
  for (size_t i = 0; i < a->n_patients; i++)
    if (fj_has(a->patients[i]))
      fj_push(arr, patient_entity(a->patients[i]));
  int search = !strncmp(a->subtype, "search", 6) || fj_has(a->query);
  char buf[48];
  json_t *data = data_entity(cl_audit_resource(a, seq, buf, sizeof buf));
  if (data && !search && a->count)
    fj_set(data, "detail", count_detail(a->count));
  fj_push(arr, data);
  if (search)
    fj_push(arr, query_entity(a));
  if (fj_has(a->request_id))
    fj_push(arr, request_entity(a->request_id));
  return arr;
}

/* ------------------------------------------------------------ the whole */

int cl_audit_fhir(const Clinlog__V1__Event *ev, uint64_t seq, const char *site, json_t **out,
                  cl_err *err) {
  *out = NULL;
  if (!ev || ev->body_case != CLINLOG__V1__EVENT__BODY_ACCESS_RECORDED || !ev->access_recorded)
    return cl_err_set(err, CL_EINVAL, "audit: AuditEvent of an event that is no AccessRecorded");
  const Clinlog__V1__AccessRecorded *a = ev->access_recorded;
  char uuid[37], seqs[24], when[40];
  if (!fj_uuid_text(&ev->event_id, uuid))
    return cl_err_set(err, CL_EINVAL, "audit: event id of %zu bytes (16 expected)",
                      ev->event_id.len);
  if (ev->occurred_at)
    fj_instant_text(ev->occurred_at->seconds, ev->occurred_at->nanos, when);
  else
    fj_instant_ns_text(0, when); /* the store requires occurred_at: not reached for logged events */
  snprintf(seqs, sizeof seqs, "%llu", (unsigned long long)seq);

  json_t *r = json_object();
  fj_set_str(r, "resourceType", "AuditEvent");
  fj_set_str(r, "id", uuid);
  fj_set(r, "meta", json_pack("{s:s,s:s}", "versionId", "1", "lastUpdated", when));
  json_t *sub = json_array();
  fj_push(sub, json_pack("{s:s,s:s}", "url", "seq", "valueString", seqs));
  fj_ext_add(r, fj_ext(FJ_CLINLOG_EXT "log-entry", "extension", sub));
  if (is_auth(a))
    fj_set(r, "type", coding(DCM, "110114", "User Authentication"));
  else
    fj_set(r, "type", coding(EVENT_TYPE, "rest", "Restful Operation"));
  fj_set(r, "subtype", subtypes(a));
  fj_set_str(r, "action", action_code(a->action));
  fj_set_str(r, "recorded", when);
  fj_set_str(r, "outcome", outcome_code(a->outcome));
  fj_set(r, "outcomeDesc", outcome_desc(a));
  fj_set(r, "purposeOfEvent", purposes(a));
  json_t *agents = json_array();
  fj_push(agents, user_agent(a));
  fj_push(agents, server_agent(a));
  fj_set(r, "agent", agents);
  json_t *src = json_object();
  fj_set_str(src, "site", site);
  fj_set(src, "observer", node_ref(a->node_id));
  fj_set_one(src, "type", coding(SOURCE_TYPE, "4", "Application Server"));
  fj_set(r, "source", src);
  fj_set(r, "entity", entities(a, seq));
  /* jansson reports a failed allocation only as missing members: a dump
   * that fails or a resource without its required members says so */
  if (!json_object_get(r, "recorded") || !json_object_get(r, "source") ||
      !json_object_get(r, "agent")) {
    json_decref(r);
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  }
  *out = r;
  return 0;
}

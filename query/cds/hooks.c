/* CDS Hooks 2.0 over the medication checker (hooks.h). FHIR JSON is turned
 * into checker events on the stack of one call (every string a view into
 * the parsed JSON, which lives until the call returns); a fresh
 * cl_cds_patient takes the patient's allergies, then the active
 * medications, then the drafts, and only the findings a draft (or, for
 * patient-view, a medication) triggers become cards. */
#include "query/cds/hooks.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "query/cds/check.h"
#include "store/keys.h"

#define SUMMARY_MAX 139

static const struct {
  const char *id, *hook, *title, *description;
  int kind;
} SERVICES[] = {
    {"clinlog-medication-select", "order-select", "Medication check on selection",
     "Checks the selected draft MedicationRequests against the patient's active medications, "
     "allergies and the other drafts: drug interactions, duplicate therapy, allergy "
     "cross-reactivity and dose limits (clinlog's knowledge base).",
     CL_CDS_HOOK_ORDER_SELECT},
    {"clinlog-medication-sign", "order-sign", "Medication check before signing",
     "Checks every draft MedicationRequest about to be signed against the patient's active "
     "medications, allergies and the earlier drafts: drug interactions, duplicate therapy, "
     "allergy cross-reactivity and dose limits (clinlog's knowledge base).",
     CL_CDS_HOOK_ORDER_SIGN},
    {"clinlog-medication-review", "patient-view", "Medication review",
     "Checks the patient's active MedicationRequests against each other and the recorded "
     "allergies when the chart is opened.",
     CL_CDS_HOOK_PATIENT_VIEW},
};
#define NSERVICES (sizeof SERVICES / sizeof SERVICES[0])

static const struct {
  const char *code, *display;
} OVERRIDES[] = {
    {"benefit-outweighs-risk", "Benefit outweighs risk"},
    {"patient-tolerated-before", "Patient has tolerated this combination before"},
    {"will-monitor", "Will monitor the patient (labs, signs)"},
    {"not-applicable", "Alert does not apply to this patient"},
};

int cl_cds_hooks_service(const char *id) {
  for (size_t i = 0; id && i < NSERVICES; i++)
    if (!strcmp(id, SERVICES[i].id))
      return SERVICES[i].kind;
  return 0;
}

static const char *service_hook(int kind) {
  for (size_t i = 0; i < NSERVICES; i++)
    if (SERVICES[i].kind == kind)
      return SERVICES[i].hook;
  return "?";
}

char *cl_cds_hooks_discovery(void) {
  json_t *arr = json_array();
  for (size_t i = 0; arr && i < NSERVICES; i++) {
    json_t *pre =
        json_pack("{s:s, s:s, s:s}", "patient", "Patient/{{context.patientId}}", "medications",
                  "MedicationRequest?patient={{context.patientId}}&status=active", "allergies",
                  "AllergyIntolerance?patient={{context.patientId}}");
    json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:o*}", "id", SERVICES[i].id, "hook",
                                         SERVICES[i].hook, "title", SERVICES[i].title,
                                         "description", SERVICES[i].description, "prefetch", pre));
  }
  json_t *doc = arr ? json_pack("{s:o}", "services", arr) : NULL;
  char *s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
  json_decref(doc);
  return s;
}

/* ------------------------------------------------------------ the request */

struct cl_cds_hooks_req {
  json_t *root; /* owns everything below */
  int hook;
  const char *instance, *patient;
  json_t *drafts[CL_CDS_HOOKS_MAX_DRAFTS]; /* borrowed from root */
  size_t ndraft;
  json_t *selections; /* order-select: array of "MedicationRequest/id", or NULL */
  json_t *pre_meds, *pre_allergies;
};

void cl_cds_hooks_req_free(cl_cds_hooks_req *r) {
  if (r == NULL)
    return;
  json_decref(r->root);
  free(r);
}

const char *cl_cds_hooks_patient(const cl_cds_hooks_req *r) { return r->patient; }
const char *cl_cds_hooks_instance(const cl_cds_hooks_req *r) { return r->instance; }
int cl_cds_hooks_hook(const cl_cds_hooks_req *r) { return r->hook; }

void cl_cds_hooks_needs(const cl_cds_hooks_req *r, int *meds, int *allergies) {
  *meds = r->pre_meds == NULL;
  *allergies = r->pre_allergies == NULL;
}

static const char *str_of(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

static int is_type(json_t *res, const char *type) {
  const char *t = str_of(res, "resourceType");
  return t != NULL && !strcmp(t, type);
}

/* A usable prefetch value: a resource or a Bundle (JSON null: not fetched). */
static json_t *prefetch_of(json_t *pre, const char *key) {
  json_t *v = json_object_get(pre, key);
  return json_is_object(v) && str_of(v, "resourceType") ? v : NULL;
}

/* CL_EINVAL "field: what". */
static int bad(cl_err *err, const char *field, const char *what) {
  return cl_err_set(err, CL_EINVAL, "%s: %s", field, what);
}

int cl_cds_hooks_parse(const char *service_id, const char *body, size_t len, cl_cds_hooks_req **out,
                       cl_err *err) {
  int kind = cl_cds_hooks_service(service_id);
  if (kind == 0)
    return cl_err_set(err, CL_ENOTFOUND, "no CDS service %.64s (GET /cds-services lists them)",
                      service_id ? service_id : "");
  json_error_t je;
  json_t *root = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &je);
  if (root == NULL)
    return cl_err_set(err, CL_EINVAL, "request: not JSON (line %d: %.120s)", je.line, je.text);
  cl_cds_hooks_req *r = calloc(1, sizeof *r);
  if (r == NULL) {
    json_decref(root);
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  }
  r->root = root;
  r->hook = kind;
  int rc = 0;
  const char *hook = str_of(root, "hook");
  json_t *ctx = json_object_get(root, "context");
  json_t *pre = json_object_get(root, "prefetch");
  if (!json_is_object(root)) {
    rc = bad(err, "request", "expected a JSON object");
  } else if (hook == NULL) {
    rc = bad(err, "hook", "required (a string)");
  } else if (strcmp(hook, service_hook(kind)) != 0) {
    rc = cl_err_set(err, CL_EINVAL, "hook: service %s answers %s, not %.64s", service_id,
                    service_hook(kind), hook);
  } else if ((r->instance = str_of(root, "hookInstance")) == NULL || !r->instance[0]) {
    rc = bad(err, "hookInstance", "required (a string, a UUID)");
  } else if (!json_is_object(ctx)) {
    rc = bad(err, "context", "required (an object)");
  } else if ((r->patient = str_of(ctx, "patientId")) == NULL || !r->patient[0] ||
             strlen(r->patient) > 64 || strchr(r->patient, '/') != NULL) {
    rc = bad(err, "context.patientId", "required (a FHIR Patient id)");
  } else if (pre != NULL && !json_is_null(pre) && !json_is_object(pre)) {
    rc = bad(err, "prefetch", "expected an object");
  }
  if (rc == 0 && kind != CL_CDS_HOOK_PATIENT_VIEW) {
    json_t *b = json_object_get(ctx, "draftOrders");
    json_t *entries = json_object_get(b, "entry");
    if (!json_is_object(b) || !is_type(b, "Bundle"))
      rc = bad(err, "context.draftOrders", "required (a FHIR Bundle)");
    else if (entries != NULL && !json_is_array(entries))
      rc = bad(err, "context.draftOrders.entry", "expected an array");
    else if (json_array_size(entries) > CL_CDS_HOOKS_MAX_DRAFTS)
      rc = cl_err_set(err, CL_EINVAL, "context.draftOrders: more than %d drafts",
                      CL_CDS_HOOKS_MAX_DRAFTS);
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) {
      if (rc)
        break;
      json_t *res = json_object_get(e, "resource");
      if (!json_is_object(res))
        rc = bad(err, "context.draftOrders.entry[].resource", "required (an object)");
      else if (!is_type(res, "MedicationRequest"))
        continue; /* other draft orders (ServiceRequest...) are not ours to check */
      else if (str_of(res, "id") == NULL || !str_of(res, "id")[0])
        rc = bad(err, "context.draftOrders", "a MedicationRequest without an id");
      else
        r->drafts[r->ndraft++] = res;
    }
    json_t *sel = json_object_get(ctx, "selections");
    if (rc == 0 && kind == CL_CDS_HOOK_ORDER_SELECT) {
      if (sel != NULL && !json_is_array(sel))
        rc = bad(err, "context.selections", "expected an array of references");
      else
        r->selections = sel;
    }
  }
  if (rc == 0 && json_is_object(pre)) {
    r->pre_meds = prefetch_of(pre, "medications");
    r->pre_allergies = prefetch_of(pre, "allergies");
  }
  if (rc) {
    cl_cds_hooks_req_free(r);
    return rc;
  }
  *out = r;
  return 0;
}

/* ------------------------------------------------------------ FHIR -> events */

/* A FHIR date, dateTime or instant in ns since the epoch; 0 if absent or
 * not understood. */
static int64_t fhir_time(const char *s) {
  if (s == NULL)
    return 0;
  int y = 0, mo = 1, d = 1, h = 0, mi = 0, se = 0, n = 0;
  if (sscanf(s, "%4d%n", &y, &n) != 1 || n != 4)
    return 0;
  const char *p = s + 4;
  if (*p == '-' && sscanf(p, "-%2d%n", &mo, &n) == 1)
    p += n;
  if (*p == '-' && sscanf(p, "-%2d%n", &d, &n) == 1)
    p += n;
  if (*p == 'T' && sscanf(p, "T%2d:%2d:%2d%n", &h, &mi, &se, &n) == 3)
    p += n;
  int64_t frac = 0;
  if (*p == '.') {
    int64_t scale = 100000000;
    for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
      frac += (*p - '0') * scale;
  }
  int off = 0;
  if ((*p == '+' || *p == '-') && strlen(p) >= 6) {
    int oh = 0, om = 0;
    if (sscanf(p + 1, "%2d:%2d", &oh, &om) == 2)
      off = (*p == '+' ? 1 : -1) * (oh * 3600 + om * 60);
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
    return 0;
  struct tm tm = {.tm_year = y - 1900,
                  .tm_mon = mo - 1,
                  .tm_mday = d,
                  .tm_hour = h,
                  .tm_min = mi,
                  .tm_sec = se};
  time_t t = timegm(&tm);
  return ((int64_t)t - off) * 1000000000ll + frac;
}

/* Storage for one MedicationRequest or AllergyIntolerance as an event:
 * every pointer points into this struct or the JSON. */
#define MAX_CODINGS 8
#define MAX_DOSAGES 4
typedef struct evbuf {
  Clinlog__V1__Event ev;
  Clinlog__V1__MedicationPrescribed rx;
  Clinlog__V1__AllergyRecorded al;
  Clinlog__V1__CodeableConcept cc;
  Clinlog__V1__Code codes[MAX_CODINGS], *codep[MAX_CODINGS];
  Clinlog__V1__Dosage dos[MAX_DOSAGES], *dosp[MAX_DOSAGES];
  Clinlog__V1__Quantity qty[MAX_DOSAGES];
  Clinlog__V1__Code route[MAX_DOSAGES], freq[MAX_DOSAGES];
  char qval[MAX_DOSAGES][32], fbuf[MAX_DOSAGES][16];
  Clinlog__V1__Period validity;
  Google__Protobuf__Timestamp vstart, vend;
  char stream[96];
} evbuf;

static void set_ts(Google__Protobuf__Timestamp *t, int64_t ns) {
  google__protobuf__timestamp__init(t);
  t->seconds = ns / 1000000000ll;
  t->nanos = (int32_t)(ns % 1000000000ll);
}

static void codings(evbuf *b, json_t *concept) {
  clinlog__v1__codeable_concept__init(&b->cc);
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(concept, "coding"), i, c) {
    const char *sys = str_of(c, "system"), *code = str_of(c, "code");
    if (sys == NULL || code == NULL || b->cc.n_coding == MAX_CODINGS)
      continue;
    Clinlog__V1__Code *k = &b->codes[b->cc.n_coding];
    clinlog__v1__code__init(k);
    k->system = (char *)sys;
    k->code = (char *)code;
    k->display = (char *)str_of(c, "display");
    b->codep[b->cc.n_coding++] = k;
  }
  b->cc.coding = b->codep;
  b->cc.text = (char *)str_of(concept, "text");
}

/* The first coding of a CodeableConcept as a Code into k; 0 if none. */
static int first_code(json_t *concept, Clinlog__V1__Code *k) {
  json_t *c = json_array_get(json_object_get(concept, "coding"), 0);
  if (str_of(c, "code") == NULL)
    return 0;
  clinlog__v1__code__init(k);
  k->system = (char *)str_of(c, "system");
  k->code = (char *)str_of(c, "code");
  return 1;
}

static void dosage(evbuf *b, size_t k, json_t *d) {
  Clinlog__V1__Dosage *o = &b->dos[k];
  clinlog__v1__dosage__init(o);
  json_t *dq =
      json_object_get(json_array_get(json_object_get(d, "doseAndRate"), 0), "doseQuantity");
  json_t *v = json_object_get(dq, "value");
  if (json_is_number(v)) {
    clinlog__v1__quantity__init(&b->qty[k]);
    snprintf(b->qval[k], sizeof b->qval[k], "%.10g", json_number_value(v));
    b->qty[k].value = b->qval[k];
    const char *u = str_of(dq, "code") ? str_of(dq, "code") : str_of(dq, "unit");
    b->qty[k].unit = (char *)(u ? u : "");
    o->dose = &b->qty[k];
  }
  if (first_code(json_object_get(d, "route"), &b->route[k]))
    o->route = &b->route[k];
  json_t *timing = json_object_get(d, "timing");
  if (first_code(json_object_get(timing, "code"), &b->freq[k])) {
    o->frequency_code = &b->freq[k];
  } else {
    json_t *rep = json_object_get(timing, "repeat");
    json_int_t f = json_integer_value(json_object_get(rep, "frequency"));
    double per = json_number_value(json_object_get(rep, "period"));
    const char *unit = str_of(rep, "periodUnit");
    if (f >= 1 && f <= 4 && per == 1 && unit && !strcmp(unit, "d"))
      snprintf(b->fbuf[k], sizeof b->fbuf[k], "%s",
               f == 1   ? "QD"
               : f == 2 ? "BID"
               : f == 3 ? "TID"
                        : "QID");
    else if (f == 1 && per >= 1 && per <= 24 && unit && !strcmp(unit, "h"))
      snprintf(b->fbuf[k], sizeof b->fbuf[k], "Q%dH", (int)per);
    if (b->fbuf[k][0])
      o->frequency = b->fbuf[k];
  }
  o->as_needed = json_is_true(json_object_get(d, "asNeededBoolean"));
  b->dosp[k] = o;
}

/* Does a resource belong to patient `pid`? (no patient reference: yes) */
static int of_patient(json_t *res, const char *field, const char *pid) {
  const char *ref = str_of(json_object_get(res, field), "reference");
  if (ref == NULL)
    return 1;
  const char *slash = strrchr(ref, '/');
  const char *id = slash ? slash + 1 : ref;
  return strcmp(id, pid) == 0 &&
         (slash == NULL || (slash - ref >= 7 && !strncmp(slash - 7, "Patient", 7)));
}

static void event_init(evbuf *b, const char *pid) {
  memset(b, 0, sizeof *b);
  clinlog__v1__event__init(&b->ev);
  snprintf(b->stream, sizeof b->stream, "patient-%s", pid);
  b->ev.stream = b->stream;
}

static void rx_event(evbuf *b, json_t *res, const char *pid) {
  event_init(b, pid);
  Clinlog__V1__MedicationPrescribed *p = &b->rx;
  clinlog__v1__medication_prescribed__init(p);
  p->prescription_id = (char *)str_of(res, "id");
  codings(b, json_object_get(res, "medicationCodeableConcept"));
  p->medication = &b->cc;
  size_t i;
  json_t *d;
  json_array_foreach(json_object_get(res, "dosageInstruction"), i, d) {
    if (p->n_dosage == MAX_DOSAGES)
      break;
    dosage(b, p->n_dosage++, d);
  }
  p->dosage = b->dosp;
  json_t *disp = json_object_get(res, "dispenseRequest");
  json_t *vp = json_object_get(disp, "validityPeriod");
  int64_t vs = fhir_time(str_of(vp, "start")), ve = fhir_time(str_of(vp, "end"));
  if (vs || ve) {
    clinlog__v1__period__init(&b->validity);
    if (vs) {
      set_ts(&b->vstart, vs);
      b->validity.start = &b->vstart;
    }
    if (ve) {
      set_ts(&b->vend, ve);
      b->validity.end = &b->vend;
    }
    p->validity = &b->validity;
  }
  json_t *esd = json_object_get(disp, "expectedSupplyDuration");
  double days = json_number_value(json_object_get(esd, "value"));
  const char *du = str_of(esd, "code");
  if (days > 0 && days < 3650 && (du == NULL || !strcmp(du, "d")))
    p->days_supply = (int32_t)days;
  json_int_t rep = json_integer_value(json_object_get(disp, "numberOfRepeatsAllowed"));
  if (rep > 0 && rep < 1000)
    p->refills = (int32_t)rep;
  b->ev.body_case = CLINLOG__V1__EVENT__BODY_MEDICATION_PRESCRIBED;
  b->ev.medication_prescribed = p;
}

/* Is a CodeableConcept status one of the codes listed? */
static int status_in(json_t *concept, const char *const *codes) {
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(concept, "coding"), i, c) {
    const char *code = str_of(c, "code");
    for (size_t k = 0; code && codes[k]; k++)
      if (!strcmp(code, codes[k]))
        return 1;
  }
  return 0;
}

/* 1 if an AllergyIntolerance still counts. */
static int allergy_current(json_t *res) {
  static const char *const gone_clin[] = {"inactive", "resolved", NULL};
  static const char *const gone_ver[] = {"refuted", "entered-in-error", NULL};
  return !status_in(json_object_get(res, "clinicalStatus"), gone_clin) &&
         !status_in(json_object_get(res, "verificationStatus"), gone_ver);
}

static void allergy_event(evbuf *b, json_t *res, const char *pid) {
  event_init(b, pid);
  Clinlog__V1__AllergyRecorded *a = &b->al;
  clinlog__v1__allergy_recorded__init(a);
  a->allergy_id = (char *)str_of(res, "id");
  codings(b, json_object_get(res, "code"));
  a->substance = &b->cc;
  const char *crit = str_of(res, "criticality");
  if (crit && !strcmp(crit, "high"))
    a->criticality = CLINLOG__V1__ALLERGY_CRITICALITY__ALLERGY_CRITICALITY_HIGH;
  b->ev.body_case = CLINLOG__V1__EVENT__BODY_ALLERGY_RECORDED;
  b->ev.allergy_recorded = a;
}

/* ------------------------------------------------------------ evaluation */

/* What the evaluation applies, in order: each item's event id is its
 * index (big-endian in bytes 12..15, "hook" in 0..3), so a finding's
 * implicated ids lead back to the resource. */
typedef struct item {
  json_t *res;
  int allergy; /* AllergyIntolerance, else MedicationRequest */
  int report;  /* findings it triggers become cards */
  int draft;   /* one of the request's draft orders */
} item;

typedef struct eval {
  item *items;
  size_t n, cap;
} eval;

static int push(eval *e, json_t *res, int allergy, int report, int draft, cl_err *err) {
  if (e->n == CL_CDS_HOOKS_MAX_RESOURCES)
    return cl_err_set(err, CL_ETOOBIG, "more than %d medications and allergies",
                      CL_CDS_HOOKS_MAX_RESOURCES);
  if (e->n == e->cap) {
    size_t cap = e->cap ? 2 * e->cap : 32;
    item *p = realloc(e->items, cap * sizeof *p);
    if (p == NULL)
      return cl_err_set(err, CL_ENOMEM, "out of memory");
    e->items = p;
    e->cap = cap;
  }
  e->items[e->n++] = (item){res, allergy, report, draft};
  return 0;
}

/* Is draft `res` named in order-select's selections? (none given: all are) */
static int selected(const cl_cds_hooks_req *r, json_t *res) {
  if (r->selections == NULL || json_array_size(r->selections) == 0)
    return 1;
  const char *id = str_of(res, "id");
  size_t i;
  json_t *s;
  json_array_foreach(r->selections, i, s) {
    const char *ref = json_string_value(s);
    if (ref && !strncmp(ref, "MedicationRequest/", 18) && !strcmp(ref + 18, id))
      return 1;
  }
  return 0;
}

/* Adds the medications or allergies of a resource or Bundle. */
static int add_from(eval *e, const cl_cds_hooks_req *r, json_t *doc, int want_meds,
                    int want_allergies, cl_err *err) {
  json_t *one = doc;
  size_t i = 0;
  json_t *entries = is_type(doc, "Bundle") ? json_object_get(doc, "entry") : NULL;
  for (;;) {
    if (entries != NULL) {
      if (i >= json_array_size(entries))
        break;
      one = json_object_get(json_array_get(entries, i++), "resource");
    }
    if (json_is_object(one) && str_of(one, "id") != NULL) {
      int rc = 0;
      if (want_meds && is_type(one, "MedicationRequest")) {
        const char *status = str_of(one, "status");
        int is_draft = 0;
        for (size_t k = 0; k < r->ndraft; k++)
          is_draft |= !strcmp(str_of(r->drafts[k], "id"), str_of(one, "id"));
        if (status && !strcmp(status, "active") && !is_draft &&
            of_patient(one, "subject", r->patient))
          rc = push(e, one, 0, r->hook == CL_CDS_HOOK_PATIENT_VIEW, 0, err);
      } else if (want_allergies && is_type(one, "AllergyIntolerance")) {
        if (allergy_current(one) && of_patient(one, "patient", r->patient))
          rc = push(e, one, 1, 0, 0, err);
      }
      if (rc)
        return rc;
    }
    if (entries == NULL)
      break;
  }
  return 0;
}

/* The card's uuid: BLAKE2b(hookInstance || the finding's key) as a v4-shaped UUID. */
static void card_uuid(const char *instance, const uint8_t key[16], char out[37]) {
  uint8_t h[16];
  crypto_generichash_state s;
  crypto_generichash_init(&s, (const uint8_t *)"cdshooks-card-v1", 16, sizeof h);
  crypto_generichash_update(&s, (const uint8_t *)instance, strlen(instance) + 1);
  crypto_generichash_update(&s, key, 16);
  crypto_generichash_final(&s, h, sizeof h);
  h[6] = (uint8_t)((h[6] & 0x0f) | 0x40);
  h[8] = (uint8_t)((h[8] & 0x3f) | 0x80);
  snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", h[0],
           h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11], h[12], h[13], h[14],
           h[15]);
}

/* A medication's name for people: its text, else the first coding's display, else code. */
static const char *med_name(json_t *res) {
  json_t *cc = json_object_get(res, "medicationCodeableConcept");
  if (str_of(cc, "text"))
    return str_of(cc, "text");
  json_t *c = json_array_get(json_object_get(cc, "coding"), 0);
  if (str_of(c, "display"))
    return str_of(c, "display");
  if (str_of(c, "code"))
    return str_of(c, "code");
  return "this medication";
}

/* Truncates s to at most max bytes on a UTF-8 boundary, ending in "..." if cut. */
static void fit(char *s, size_t max) {
  if (strlen(s) <= max)
    return;
  size_t n = max - 3;
  while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
    n--;
  memcpy(s + n, "...", 4);
}

static const char *kind_word(int kind) {
  switch (kind) {
  case CLINLOG__V1__ISSUE_KIND__ISSUE_KIND_INTERACTION:
    return "Interaction";
  case CLINLOG__V1__ISSUE_KIND__ISSUE_KIND_ALLERGY:
    return "Allergy";
  case CLINLOG__V1__ISSUE_KIND__ISSUE_KIND_DUPLICATE_THERAPY:
    return "Duplicate therapy";
  case CLINLOG__V1__ISSUE_KIND__ISSUE_KIND_DOSE:
    return "Dose";
  default:
    return "Medication issue";
  }
}

void cl_cds_summary(int kind, const char *name, const char *other, char *out, size_t cap) {
  if (other != NULL && other[0])
    snprintf(out, cap, "%s: %s with %s", kind_word(kind), name, other);
  else
    snprintf(out, cap, "%s: %s", kind_word(kind), name);
  if (cap > SUMMARY_MAX)
    fit(out, SUMMARY_MAX);
}

static json_t *card_of(const cl_kb *kb, const cl_cds_hooks_req *r, const cl_cds_finding *f,
                       const eval *e, const item *trig) {
  char uuid[37], suuid[37], summary[512], detail[2048], source[160];
  card_uuid(r->instance, f->key, uuid);
  const char *name = med_name(trig->res);
  const item *other = NULL;
  if (f->n_implicated > 1) {
    long k = cl_cds_local_index("hook", f->implicated[1], e->n);
    if (k >= 0)
      other = &e->items[k];
  }
  cl_cds_summary(f->kind, name, other != NULL && !other->allergy ? med_name(other->res) : NULL,
                 summary, sizeof summary);
  snprintf(detail, sizeof detail, "%s\n\n**Management:** %s\n\n*Rule* `%s` (%s)", f->detail,
           f->mitigation[0] ? f->mitigation : "Review the order.", f->rule_id,
           f->source ? f->source : "kb");
  snprintf(source, sizeof source, "clinlog knowledge base %s", cl_kb_version(kb));
  const char *indicator =
      f->severity == CLINLOG__V1__ISSUE_SEVERITY__ISSUE_SEVERITY_HIGH       ? "critical"
      : f->severity == CLINLOG__V1__ISSUE_SEVERITY__ISSUE_SEVERITY_MODERATE ? "warning"
                                                                            : "info";
  json_t *reasons = json_array();
  for (size_t i = 0; i < sizeof OVERRIDES / sizeof OVERRIDES[0]; i++)
    json_array_append_new(reasons,
                          json_pack("{s:s, s:s, s:s}", "system", CL_CDS_HOOKS_OVERRIDE, "code",
                                    OVERRIDES[i].code, "display", OVERRIDES[i].display));
  char issue[33];
  cl_hex(f->key, 16, issue);
  json_t *card = json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:{s:s, s:s, s:s}}, s:o, s:{s:s}}", "uuid",
                           uuid, "summary", summary, "detail", detail, "indicator", indicator,
                           "source", "label", source, "topic", "system", CL_CDS_HOOKS_RULE_SYSTEM,
                           "code", f->rule_id, "display", kind_word(f->kind), "overrideReasons",
                           reasons, "extension", "clinlog-issue-id", issue);
  if (card != NULL && trig->draft) {
    char label[256], ref[192], desc[256];
    uint8_t skey[16];
    memcpy(skey, f->key, 16);
    skey[0] ^= 0x5a; /* the suggestion's uuid differs from the card's */
    card_uuid(r->instance, skey, suuid);
    snprintf(label, sizeof label, "Remove the draft order for %s", name);
    fit(label, SUMMARY_MAX);
    snprintf(ref, sizeof ref, "MedicationRequest/%s", str_of(trig->res, "id"));
    snprintf(desc, sizeof desc, "Delete draft %s", ref);
    json_t *sug = json_pack("[{s:s, s:s, s:b, s:[{s:s, s:s, s:s}]}]", "label", label, "uuid", suuid,
                            "isRecommended", 0, "actions", "type", "delete", "description", desc,
                            "resourceId", ref);
    json_object_set_new(card, "suggestions", sug);
    json_object_set_new(card, "selectionBehavior", json_string("at-most-one"));
  }
  return card;
}

int cl_cds_hooks_evaluate(const cl_kb *kb, const cl_cds_hooks_req *r, const char *const *extra,
                          const size_t *extra_len, size_t n_extra, int64_t now_ns, char **out,
                          size_t *out_len, size_t *n_cards, cl_err *err) {
  eval e = {0};
  json_t **docs = NULL;
  cl_cds_patient *st = NULL;
  cl_cds_findings *F = NULL;
  json_t *cards = NULL;
  evbuf *b = NULL;
  int rc = 0;
  if (n_extra > 0 && (docs = calloc(n_extra, sizeof *docs)) == NULL) {
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < n_extra; i++) {
    json_error_t je;
    docs[i] = json_loadb(extra[i], extra_len[i], 0, &je);
    if (docs[i] == NULL || !json_is_object(docs[i])) {
      rc = cl_err_set(err, CL_EINVAL, "patient data %zu: not FHIR JSON", i);
      goto done;
    }
  }
  int need_meds, need_allergies;
  cl_cds_hooks_needs(r, &need_meds, &need_allergies);
  /* allergies first, then the active medications, then the drafts */
  if (!need_allergies && (rc = add_from(&e, r, r->pre_allergies, 0, 1, err)) != 0)
    goto done;
  for (size_t i = 0; i < n_extra && need_allergies; i++)
    if ((rc = add_from(&e, r, docs[i], 0, 1, err)) != 0)
      goto done;
  if (!need_meds && (rc = add_from(&e, r, r->pre_meds, 1, 0, err)) != 0)
    goto done;
  for (size_t i = 0; i < n_extra && need_meds; i++)
    if ((rc = add_from(&e, r, docs[i], 1, 0, err)) != 0)
      goto done;
  /* order-select: the drafts not selected are context, applied first */
  for (int pass = 0; pass < 2; pass++)
    for (size_t i = 0; i < r->ndraft; i++) {
      int sel = r->hook != CL_CDS_HOOK_ORDER_SELECT || selected(r, r->drafts[i]);
      if (sel == pass && (rc = push(&e, r->drafts[i], 0, sel, 1, err)) != 0)
        goto done;
    }
  if ((rc = cl_cds_patient_new(r->patient, &st, err)) != 0)
    goto done;
  F = malloc(sizeof *F);
  b = malloc(sizeof *b);
  cards = json_array();
  if (F == NULL || b == NULL || cards == NULL) {
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < e.n; i++) {
    item *it = &e.items[i];
    uint8_t id[16];
    cl_cds_local_id("hook", i, id);
    int64_t at = now_ns;
    if (it->allergy) {
      allergy_event(b, it->res, r->patient);
    } else {
      rx_event(b, it->res, r->patient);
      int64_t authored = fhir_time(str_of(it->res, "authoredOn"));
      if (!it->draft && authored > 0 && authored < now_ns)
        at = authored;
    }
    b->ev.occurred_at = NULL;
    if ((rc = cl_cds_apply(kb, st, &b->ev, id, at, F, err)) != 0)
      goto done;
    for (size_t k = 0; it->report && k < F->n; k++) {
      json_t *card = card_of(kb, r, &F->f[k], &e, it);
      if (card == NULL || json_array_append_new(cards, card) != 0) {
        rc = cl_err_set(err, CL_ENOMEM, "out of memory");
        goto done;
      }
    }
  }
  size_t nc = json_array_size(cards);
  json_t *resp = json_pack("{s:O}", "cards", cards);
  char *s = resp ? json_dumps(resp, JSON_COMPACT) : NULL;
  json_decref(resp);
  if (s == NULL) {
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    goto done;
  }
  *out = s;
  *out_len = strlen(s);
  if (n_cards)
    *n_cards = nc;
done:
  json_decref(cards);
  free(b);
  free(F);
  cl_cds_patient_free(st);
  for (size_t i = 0; docs && i < n_extra; i++)
    json_decref(docs[i]);
  free(docs);
  free(e.items);
  return rc;
}

/* ------------------------------------------------------------ feedback */

static void copy(char *dst, size_t cap, const char *s) { snprintf(dst, cap, "%s", s ? s : ""); }

int cl_cds_hooks_feedback_parse(const char *body, size_t len, cl_cds_feedback *out, size_t max,
                                size_t *n, cl_err *err) {
  json_error_t je;
  json_t *root = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &je);
  if (root == NULL)
    return cl_err_set(err, CL_EINVAL, "feedback: not JSON (line %d: %.120s)", je.line, je.text);
  int rc = 0;
  json_t *arr = json_object_get(root, "feedback");
  *n = 0;
  if (!json_is_array(arr) || json_array_size(arr) == 0) {
    rc = cl_err_set(err, CL_EINVAL, "feedback: required (a non-empty array)");
  } else if (json_array_size(arr) > max) {
    rc = cl_err_set(err, CL_ETOOBIG, "feedback: more than %zu items", max);
  }
  size_t i;
  json_t *fb;
  json_array_foreach(arr, i, fb) {
    if (rc)
      break;
    cl_cds_feedback *o = &out[i];
    memset(o, 0, sizeof *o);
    const char *card = str_of(fb, "card"), *outcome = str_of(fb, "outcome");
    const char *when = str_of(fb, "outcomeTimestamp");
    if (card == NULL || !card[0] || strlen(card) >= sizeof o->card) {
      rc = cl_err_set(err, CL_EINVAL, "feedback[%zu].card: required (the card's uuid)", i);
    } else if (outcome == NULL || (strcmp(outcome, "accepted") && strcmp(outcome, "overridden"))) {
      rc = cl_err_set(err, CL_EINVAL, "feedback[%zu].outcome: accepted or overridden", i);
    } else if (when == NULL || fhir_time(when) == 0 || strlen(when) >= sizeof o->timestamp) {
      rc = cl_err_set(err, CL_EINVAL, "feedback[%zu].outcomeTimestamp: required (an instant)", i);
    } else {
      copy(o->card, sizeof o->card, card);
      o->overridden = !strcmp(outcome, "overridden");
      copy(o->timestamp, sizeof o->timestamp, when);
      json_t *orr = json_object_get(fb, "overrideReason");
      json_t *reason = json_object_get(orr, "reason");
      copy(o->reason_system, sizeof o->reason_system, str_of(reason, "system"));
      copy(o->reason_code, sizeof o->reason_code, str_of(reason, "code"));
      copy(o->reason_display, sizeof o->reason_display, str_of(reason, "display"));
      copy(o->comment, sizeof o->comment, str_of(orr, "userComment"));
      copy(o->accepted, sizeof o->accepted,
           str_of(json_array_get(json_object_get(fb, "acceptedSuggestions"), 0), "id"));
      (*n)++;
    }
  }
  json_decref(root);
  if (rc)
    *n = 0;
  return rc;
}

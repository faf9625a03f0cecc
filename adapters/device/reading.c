/* Home-device readings to catalog events (reading.h has the format and the
 * refusals). Invariants: nothing is packed until every member of the line
 * has been checked and the registry has said yes, so a refusal leaves
 * *out empty; the bytes depend only on the line, the options and the
 * registry (no clock but o->now_ms, which only refuses). */
#include <jansson.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "adapters/device/reading.h"
#include "clinlog/v1/event.pb-c.h"
#include "query/fhir/engine.h"
#include "query/fhir/fj_parse.h"
#include "store/alloc.h"
#include "store/idhash.h"

#define LOINC "http://loinc.org"
#define MDC "urn:iso:std:iso:11073:10101"
#define MAX_COMPONENTS 8

/* ---- units and dimensions ---- */

/* The UCUM units of home vitals and what they measure. */
static const struct {
  const char *ucum, *dim;
} UNITS[] = {
    {"mm[Hg]", "pressure"},
    {"kPa", "pressure"},
    {"%", "fraction"},
    {"/min", "rate"},
    {"{beats}/min", "rate"},
    {"{breaths}/min", "rate"},
    {"mg/dL", "glucose"},
    {"mmol/L", "glucose"},
    {"kg", "mass"},
    {"g", "mass"},
    {"[lb_av]", "mass"},
    {"Cel", "temperature"},
    {"[degF]", "temperature"},
    {"cm", "length"},
    {"m", "length"},
    {"[in_i]", "length"},
    {"kg/m2", "bmi"},
    {"L/min", "flow"},
    {"L", "volume"},
    {"{steps}", "count"},
    {"1", "count"},
};

const char *cl_dev_unit_dimension(const char *ucum) {
  for (size_t i = 0; ucum && i < sizeof UNITS / sizeof UNITS[0]; i++)
    if (!strcmp(UNITS[i].ucum, ucum))
      return UNITS[i].dim;
  return NULL;
}

/* The dimension each known code is measured in (LOINC vital signs and
 * glucose, their MDC equivalents); codes not listed take any known unit. */
static const struct {
  const char *system, *code, *dim;
} CODES[] = {
    {LOINC, "8480-6", "pressure"},    {LOINC, "8462-4", "pressure"}, {LOINC, "8478-0", "pressure"},
    {LOINC, "85354-9", "pressure"},   {LOINC, "8867-4", "rate"},     {LOINC, "9279-1", "rate"},
    {LOINC, "59408-5", "fraction"},   {LOINC, "2708-6", "fraction"}, {LOINC, "29463-7", "mass"},
    {LOINC, "8310-5", "temperature"}, {LOINC, "8302-2", "length"},   {LOINC, "39156-5", "bmi"},
    {LOINC, "2339-0", "glucose"},     {LOINC, "2345-7", "glucose"},  {LOINC, "41653-7", "glucose"},
    {LOINC, "14743-9", "glucose"},    {LOINC, "14749-6", "glucose"}, {LOINC, "15074-8", "glucose"},
    {LOINC, "2340-8", "glucose"},     {LOINC, "32016-8", "glucose"}, {LOINC, "55423-8", "count"},
    {MDC, "150020", "pressure"},      {MDC, "150021", "pressure"},   {MDC, "150022", "pressure"},
    {MDC, "150023", "pressure"},      {MDC, "147842", "rate"},       {MDC, "149530", "rate"},
    {MDC, "151562", "rate"},          {MDC, "150456", "fraction"},   {MDC, "188736", "mass"},
    {MDC, "150364", "temperature"},   {MDC, "188792", "length"},     {MDC, "160184", "glucose"},
    {MDC, "160196", "glucose"},
};

static const char *code_dimension(const char *system, const char *code) {
  for (size_t i = 0; i < sizeof CODES / sizeof CODES[0]; i++)
    if (!strcmp(CODES[i].system, system) && !strcmp(CODES[i].code, code))
      return CODES[i].dim;
  return NULL;
}

/* ---- ids ---- */

void cl_dev_event_id(const char *device_id, const char *reading_id, uint32_t index,
                     uint8_t out[16]) {
  static const char dom[] = "clinlog-device-event-id-v1";
  cl_idhash h;
  cl_idhash_init(&h);
  cl_idhash_bytes(&h, dom, sizeof dom);
  cl_idhash_str(&h, device_id);
  cl_idhash_str(&h, reading_id);
  cl_idhash_u32(&h, index);
  cl_idhash_final(&h, out);
}

/* ---- checking one line ---- */

typedef struct ctx {
  char *field; /* the caller's, may be NULL */
  cl_err *err;
} ctx;

#define FIELD_MAX 64

/* Refuses with `code`, naming member `f`. */
static int refuse(ctx *c, int code, const char *f, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int refuse(ctx *c, int code, const char *f, const char *fmt, ...) {
  char why[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  if (c->field)
    snprintf(c->field, FIELD_MAX, "%s", f);
  return cl_err_set(c->err, code, "%s%s%s", f, *f ? ": " : "", why);
}

/* An id: 1..127 bytes of [A-Za-z0-9._:-] (it becomes part of a stream
 * name and of event ids); an integer reading sequence is taken as text. */
static int id_of(ctx *c, json_t *obj, const char *f, char out[CL_DEV_ID_MAX]) {
  json_t *v = json_object_get(obj, f);
  if (!v)
    return refuse(c, CL_EMALFORMED, f, "required");
  if (json_is_integer(v) && !strcmp(f, "reading") && json_integer_value(v) >= 0) {
    snprintf(out, CL_DEV_ID_MAX, "%lld", (long long)json_integer_value(v));
    return 0;
  }
  const char *s = json_string_value(v);
  if (!s)
    return refuse(c, CL_EMALFORMED, f, "must be a string");
  size_t n = strlen(s);
  if (n == 0 || n >= CL_DEV_ID_MAX)
    return refuse(c, CL_EMALFORMED, f, "must be 1 to %d characters", CL_DEV_ID_MAX - 1);
  if (strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") != n)
    return refuse(c, CL_EMALFORMED, f, "may hold only letters, digits and . _ : -");
  memcpy(out, s, n + 1);
  return 0;
}

/* An optional string member: NULL when absent. */
static int opt_str(ctx *c, json_t *obj, const char *f, const char **out) {
  json_t *v = json_object_get(obj, f);
  *out = NULL;
  if (!v)
    return 0;
  if (!json_is_string(v) || !json_string_length(v))
    return refuse(c, CL_EMALFORMED, f, "must be a non-empty string");
  *out = json_string_value(v);
  return 0;
}

/* An RFC 3339 instant with seconds and a zone, as ms since the epoch. */
static int instant(ctx *c, const char *f, const char *s, int64_t *ms) {
  size_t n = strlen(s);
  int64_t lo, hi;
  int zoned =
      n > 19 && (s[n - 1] == 'Z' || ((s[n - 6] == '+' || s[n - 6] == '-') && s[n - 3] == ':'));
  if (n < 20 || s[10] != 'T' || s[16] != ':' || !zoned || cl_fhir_date_range(s, &lo, &hi))
    return refuse(c, CL_EMALFORMED, f,
                  "\"%.40s\" is not an RFC 3339 instant with seconds and a zone "
                  "(2026-12-05T06:30:00Z)",
                  s);
  *ms = lo;
  return 0;
}

static int known_members(ctx *c, json_t *obj, const char *const *names, const char *where) {
  const char *k;
  json_t *v;
  json_object_foreach(obj, k, v) {
    size_t i = 0;
    while (names[i] && strcmp(names[i], k))
      i++;
    if (!names[i])
      return refuse(c, CL_EMALFORMED, where[0] ? where : k, "unknown member \"%.40s\"", k);
  }
  return 0;
}

/* The system member ("loinc" or "mdc") as a URI. */
static int system_of(ctx *c, json_t *obj, const char *f, const char **uri) {
  const char *s;
  if (opt_str(c, obj, f, &s))
    return CL_EMALFORMED;
  if (!s || !strcmp(s, "loinc"))
    *uri = LOINC;
  else if (!strcmp(s, "mdc"))
    *uri = MDC;
  else
    return refuse(c, CL_EMALFORMED, f, "\"%.40s\" is not loinc or mdc", s);
  return 0;
}

/* A value and unit of a code: the value formatted into buf. */
static int quantity(ctx *c, json_t *obj, const char *where, const char *system, const char *code,
                    char *buf, size_t bufn, const char **unit) {
  char f[FIELD_MAX];
  snprintf(f, sizeof f, "%svalue", where);
  json_t *v = json_object_get(obj, "value");
  if (!v)
    return refuse(c, CL_EMALFORMED, f, "required with a code");
  if (!json_is_number(v) || !isfinite(json_number_value(v)))
    return refuse(c, CL_EMALFORMED, f, "must be a finite number");
  if (json_is_integer(v))
    snprintf(buf, bufn, "%lld", (long long)json_integer_value(v));
  else
    snprintf(buf, bufn, "%.15g", json_real_value(v));
  snprintf(f, sizeof f, "%sunit", where);
  json_t *u = json_object_get(obj, "unit");
  if (!u)
    return refuse(c, CL_EMALFORMED, f, "required with a value");
  const char *us = json_string_value(u);
  if (!us)
    return refuse(c, CL_EMALFORMED, f, "must be a string (a UCUM unit)");
  const char *dim = cl_dev_unit_dimension(us);
  if (!dim)
    return refuse(c, CL_EMALFORMED, f,
                  "\"%.40s\" is not a UCUM unit of home vitals (mm[Hg] kPa %% /min {beats}/min "
                  "{breaths}/min mg/dL mmol/L kg g [lb_av] Cel [degF] cm m [in_i] kg/m2 L/min "
                  "L {steps} 1)",
                  us);
  const char *want = code_dimension(system, code);
  if (want && strcmp(want, dim))
    return refuse(c, CL_EMALFORMED, f, "\"%s\" is a unit of %s; code %s is measured as %s", us, dim,
                  code, want);
  *unit = us;
  return 0;
}

/* ---- what one line says, before packing ---- */

typedef struct comp {
  const char *system, *code, *unit;
  char value[40];
} comp;

typedef struct line {
  char device[CL_DEV_ID_MAX], patient[CL_DEV_ID_MAX], reading[CL_DEV_ID_MAX];
  int64_t time_ms, received_ms;
  int has_received;
  const char *system, *code, *display, *unit;
  char value[40];
  comp comps[MAX_COMPONENTS];
  size_t ncomps;
  int has_status;
  char battery[40], signal[40];
  int connectivity;
} line;

static int components(ctx *c, json_t *arr, line *l) {
  if (!json_is_array(arr) || !json_array_size(arr))
    return refuse(c, CL_EMALFORMED, "components", "must be a non-empty array");
  if (json_array_size(arr) > MAX_COMPONENTS)
    return refuse(c, CL_EMALFORMED, "components", "at most %d parts", MAX_COMPONENTS);
  static const char *const names[] = {"code", "system", "value", "unit", NULL};
  for (size_t i = 0; i < json_array_size(arr); i++) {
    json_t *o = json_array_get(arr, i);
    char where[FIELD_MAX];
    snprintf(where, sizeof where, "components[%zu]", i);
    if (!json_is_object(o))
      return refuse(c, CL_EMALFORMED, where, "must be an object");
    comp *p = &l->comps[i];
    char f[FIELD_MAX + 8];
    snprintf(f, sizeof f, "%s.code", where);
    if (known_members(c, o, names, where) || system_of(c, o, "system", &p->system))
      return CL_EMALFORMED;
    p->code = json_string_value(json_object_get(o, "code"));
    if (!p->code || !*p->code)
      return refuse(c, CL_EMALFORMED, f, "required (a string)");
    snprintf(where, sizeof where, "components[%zu].", i);
    if (quantity(c, o, where, p->system, p->code, p->value, sizeof p->value, &p->unit))
      return CL_EMALFORMED;
  }
  l->ncomps = json_array_size(arr);
  return 0;
}

static int status_of(ctx *c, json_t *st, line *l) {
  static const char *const names[] = {"battery", "signal", "connectivity", NULL};
  if (!json_is_object(st) || !json_object_size(st))
    return refuse(c, CL_EMALFORMED, "status",
                  "must be an object with battery, signal or "
                  "connectivity");
  if (known_members(c, st, names, "status"))
    return CL_EMALFORMED;
  json_t *b = json_object_get(st, "battery"), *s = json_object_get(st, "signal");
  if (b) {
    double v = json_number_value(b);
    if (!json_is_number(b) || !(v >= 0 && v <= 100))
      return refuse(c, CL_EMALFORMED, "status.battery", "must be a number from 0 to 100 (%%)");
    snprintf(l->battery, sizeof l->battery, "%.15g", v);
  }
  if (s) {
    double v = json_number_value(s);
    if (!json_is_number(s) || !(v >= -200 && v <= 50))
      return refuse(c, CL_EMALFORMED, "status.signal", "must be a number from -200 to 50 (dBm)");
    snprintf(l->signal, sizeof l->signal, "%.15g", v);
  }
  json_t *k = json_object_get(st, "connectivity");
  if (k) {
    const char *ks = json_string_value(k);
    static const char *const conn[] = {"online", "offline", "intermittent"};
    l->connectivity = 0;
    for (int i = 0; ks && i < 3; i++)
      if (!strcmp(ks, conn[i]))
        l->connectivity = i + 1;
    if (!l->connectivity)
      return refuse(c, CL_EMALFORMED, "status.connectivity",
                    "must be \"online\", \"offline\" or \"intermittent\"");
  }
  l->has_status = 1;
  return 0;
}

static int check(ctx *c, json_t *obj, const cl_dev_opts *o, line *l) {
  static const char *const names[] = {"device",   "patient", "reading", "time", "system",
                                      "code",     "display", "value",   "unit", "components",
                                      "received", "status",  NULL};
  if (known_members(c, obj, names, ""))
    return CL_EMALFORMED;
  if (id_of(c, obj, "device", l->device) || id_of(c, obj, "patient", l->patient) ||
      id_of(c, obj, "reading", l->reading))
    return CL_EMALFORMED;
  const char *t, *r;
  if (opt_str(c, obj, "time", &t) || opt_str(c, obj, "received", &r))
    return CL_EMALFORMED;
  if (!t)
    return refuse(c, CL_EMALFORMED, "time", "required (the device time, RFC 3339)");
  if (instant(c, "time", t, &l->time_ms) || (r && instant(c, "received", r, &l->received_ms)))
    return CL_EMALFORMED;
  l->has_received = r != NULL;
  int64_t skew = o->max_skew_ms > 0 ? o->max_skew_ms : 5 * 60 * 1000;
  if (l->time_ms > o->now_ms + skew)
    return refuse(c, CL_EMALFORMED, "time",
                  "%s is %lld s ahead of the receiver's clock (at most %lld s allowed)", t,
                  (long long)((l->time_ms - o->now_ms) / 1000), (long long)(skew / 1000));
  if (system_of(c, obj, "system", &l->system) || opt_str(c, obj, "code", &l->code) ||
      opt_str(c, obj, "display", &l->display))
    return CL_EMALFORMED;
  json_t *comps = json_object_get(obj, "components"), *st = json_object_get(obj, "status");
  if (!l->code &&
      (json_object_get(obj, "value") || json_object_get(obj, "unit") || comps || l->display))
    return refuse(c, CL_EMALFORMED, "code", "required with value, unit, components or display");
  if (l->code && comps && (json_object_get(obj, "value") || json_object_get(obj, "unit")))
    return refuse(c, CL_EMALFORMED, "components", "give a value and unit, or components, not both");
  if (l->code && comps ? components(c, comps, l)
      : l->code ? quantity(c, obj, "", l->system, l->code, l->value, sizeof l->value, &l->unit)
                : 0)
    return CL_EMALFORMED;
  if (st && status_of(c, st, l))
    return CL_EMALFORMED;
  if (!l->code && !l->has_status)
    return refuse(c, CL_EMALFORMED, "", "a line needs a code (a reading) or a status");
  return 0;
}

/* The registry: the device exists, is assigned to this patient, and the
 * caller may speak for it. */
static int registered(ctx *c, const cl_dev_opts *o, const line *l) {
  cl_dev_registration reg;
  memset(&reg, 0, sizeof reg);
  int rc = o->lookup(o->lookup_ctx, l->device, l->patient, &reg, c->err);
  if (rc == CL_ENOTFOUND)
    return refuse(c, CL_EDENIED, "device", "%s is not a registered device", l->device);
  if (rc) {
    if (c->field)
      snprintf(c->field, FIELD_MAX, "device");
    return cl_err_prefix(c->err, "device: looking up %s in the device registry", l->device);
  }
  if (reg.assigned != CL_DEV_TO_PATIENT)
    return refuse(c, CL_EDENIED, "patient", "device %s is %s", l->device,
                  reg.assigned == CL_DEV_TO_OTHER ? "assigned to another patient"
                                                  : "not assigned to a patient");
  if (!o->gateway && strcmp(reg.principal_id, o->principal_id))
    return refuse(c, CL_EDENIED, "device",
                  "%s may not submit readings of device %s (it is registered to principal %s)",
                  o->principal_id, l->device, reg.principal_id[0] ? reg.principal_id : "(none)");
  return 0;
}

/* ---- packing ---- */

static void ts_of(int64_t ms, Google__Protobuf__Timestamp *t) {
  google__protobuf__timestamp__init(t);
  int64_t s = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
  t->seconds = s;
  t->nanos = (int32_t)((ms - s * 1000) * 1000000);
}

static int pack(cl_dev_mapped *m, const Clinlog__V1__Event *e, uint32_t type, ctx *c) {
  cl_dev_event *d = &m->ev[m->n];
  d->len = clinlog__v1__event__get_packed_size(e);
  if (!(d->bytes = cl_malloc(d->len ? d->len : 1)))
    return cl_err_set(c->err, CL_ENOMEM, "out of memory packing an event");
  clinlog__v1__event__pack(e, d->bytes);
  d->type = type;
  memcpy(d->event_id, e->event_id.data, 16);
  m->n++;
  return 0;
}

static int emit(const line *l, const cl_dev_opts *o, cl_dev_mapped *m, ctx *c) {
  Clinlog__V1__RecordedBy by = CLINLOG__V1__RECORDED_BY__INIT;
  const char *role = o->role ? o->role : "device";
  by.principal_id = (char *)(o->signer ? o->signer : o->principal_id);
  by.role = (char *)(o->signer ? (o->signer_role ? o->signer_role : "") : role);
  if (o->signer)
    by.on_behalf_of = (char *)o->principal_id;
  by.device_id = (char *)l->device;
  Google__Protobuf__Timestamp at, recv;
  ts_of(l->time_ms, &at);
  ts_of(l->received_ms, &recv);
  Clinlog__V1__Event e = CLINLOG__V1__EVENT__INIT;
  e.stream = m->stream;
  e.occurred_at = &at;
  e.recorded_by = &by;
  e.source_system = (char *)l->device;
  e.source_message_id = (char *)l->reading;
  uint8_t id[16];
  if (l->code) {
    Clinlog__V1__DeviceReadingRecorded r = CLINLOG__V1__DEVICE_READING_RECORDED__INIT;
    Clinlog__V1__CodeableConcept cc = CLINLOG__V1__CODEABLE_CONCEPT__INIT;
    Clinlog__V1__Code code = CLINLOG__V1__CODE__INIT, *codes[1] = {&code};
    code.system = (char *)l->system;
    code.code = (char *)l->code;
    if (l->display)
      code.display = (char *)l->display;
    cc.n_coding = 1;
    cc.coding = codes;
    Clinlog__V1__Quantity q = CLINLOG__V1__QUANTITY__INIT;
    Clinlog__V1__Component parts[MAX_COMPONENTS], *pp[MAX_COMPONENTS];
    Clinlog__V1__Code pc[MAX_COMPONENTS];
    Clinlog__V1__Quantity pq[MAX_COMPONENTS];
    for (size_t i = 0; i < l->ncomps; i++) {
      clinlog__v1__component__init(&parts[i]);
      clinlog__v1__code__init(&pc[i]);
      clinlog__v1__quantity__init(&pq[i]);
      pc[i].system = (char *)l->comps[i].system;
      pc[i].code = (char *)l->comps[i].code;
      pq[i].value = (char *)l->comps[i].value;
      pq[i].unit = (char *)l->comps[i].unit;
      parts[i].code = &pc[i];
      parts[i].value = &pq[i];
      pp[i] = &parts[i];
    }
    r.reading_id = (char *)l->reading;
    r.device_id = (char *)l->device;
    r.code = &cc;
    if (l->ncomps) {
      r.n_components = l->ncomps;
      r.components = pp;
    } else {
      q.value = (char *)l->value;
      q.unit = (char *)l->unit;
      r.value = &q;
    }
    r.measured_at = &at;
    if (l->has_received)
      r.received_at = &recv;
    r.status = CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_FINAL;
    cl_dev_event_id(l->device, l->reading, 0, id);
    e.event_id = (ProtobufCBinaryData){16, id};
    e.body_case = CLINLOG__V1__EVENT__BODY_DEVICE_READING_RECORDED;
    e.device_reading_recorded = &r;
    if (pack(m, &e, 701, c))
      return CL_ENOMEM;
  }
  if (l->has_status) {
    Clinlog__V1__DeviceStatusReported s = CLINLOG__V1__DEVICE_STATUS_REPORTED__INIT;
    Clinlog__V1__Quantity bq = CLINLOG__V1__QUANTITY__INIT, sq = CLINLOG__V1__QUANTITY__INIT;
    s.device_id = (char *)l->device;
    s.reported_at = &at;
    if (l->has_received)
      s.received_at = &recv;
    if (l->battery[0]) {
      bq.value = (char *)l->battery;
      bq.unit = "%";
      s.battery = &bq;
    }
    if (l->signal[0]) {
      sq.value = (char *)l->signal;
      sq.unit = "dB[mW]";
      s.signal_strength = &sq;
    }
    s.connectivity = (Clinlog__V1__DeviceConnectivity)l->connectivity;
    cl_dev_event_id(l->device, l->reading, 1, id);
    e.event_id = (ProtobufCBinaryData){16, id};
    e.body_case = CLINLOG__V1__EVENT__BODY_DEVICE_STATUS_REPORTED;
    e.device_status_reported = &s;
    if (pack(m, &e, 702, c))
      return CL_ENOMEM;
  }
  return 0;
}

void cl_dev_mapped_clear(cl_dev_mapped *m) {
  if (!m)
    return;
  for (size_t i = 0; i < m->n; i++)
    cl_free(m->ev[i].bytes);
  m->n = 0;
}

int cl_dev_map_line(const char *p, size_t n, const cl_dev_opts *o, cl_dev_mapped *out, char *field,
                    cl_err *err) {
  if (field)
    field[0] = '\0';
  if (!out)
    return cl_err_set(err, CL_EINVAL, "no output");
  memset(out, 0, sizeof *out);
  if (!p || !o || !o->principal_id || !*o->principal_id || !o->lookup)
    return cl_err_set(err, CL_EINVAL, "device reading: no line, principal or registry");
  ctx c = {field, err};
  while (n && (p[n - 1] == '\n' || p[n - 1] == '\r'))
    n--;
  if (n > CL_DEV_MAX_LINE)
    return refuse(&c, CL_EMALFORMED, "", "line of %zu bytes exceeds %d", n, CL_DEV_MAX_LINE);
  json_error_t je;
  json_t *obj = fj_parse(p, n, JSON_REJECT_DUPLICATES, &je);
  if (!obj)
    return refuse(&c, CL_EMALFORMED, "", "not JSON at column %d: %s", je.column, je.text);
  int rc;
  line *l = cl_malloc(sizeof *l);
  if (!l) {
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    goto fail_json;
  }
  memset(l, 0, sizeof *l);
  if (!json_is_object(obj)) {
    rc = refuse(&c, CL_EMALFORMED, "", "a reading must be a JSON object");
    goto fail_line;
  }
  if ((rc = check(&c, obj, o, l)) || (rc = registered(&c, o, l)))
    goto fail_line;
  snprintf(out->device_id, sizeof out->device_id, "%s", l->device);
  snprintf(out->patient_id, sizeof out->patient_id, "%s", l->patient);
  snprintf(out->reading_id, sizeof out->reading_id, "%s", l->reading);
  snprintf(out->stream, sizeof out->stream, "patient-%s", l->patient);
  out->measured_ms = l->time_ms;
  if ((rc = emit(l, o, out, &c)))
    cl_dev_mapped_clear(out);
fail_line:
  cl_free(l);
fail_json:
  json_decref(obj);
  return rc;
}

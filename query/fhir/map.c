/* Event -> FHIR mapping: dispatch, logical ids, shared helpers (map.h). */
#include "query/fhir/map.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/fhir/fj.h"
#include "store/sha256.h"

static const char *const type_names[CL_FHIR_NTYPES] = {[0] = NULL,
#define X(n, name) [n] = #name,
                                                       CL_FHIR_TYPES(X)
#undef X
};

int cl_fhir_type_of(const char *name) {
  if (name == NULL)
    return 0;
  for (int i = 1; i < CL_FHIR_NTYPES; i++)
    if (strcmp(type_names[i], name) == 0)
      return i;
  return 0;
}

const char *cl_fhir_type_name(int type) {
  return type > 0 && type < CL_FHIR_NTYPES ? type_names[type] : NULL;
}

static int valid_id(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 64)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '.'))
      return 0;
  }
  return 1;
}

void cl_fhir_id(const char *type, const char *patient_id, const char *bid,
                char out[CL_FHIR_ID_MAX]) {
  if (strcmp(type, "Patient") == 0 && valid_id(bid)) {
    snprintf(out, CL_FHIR_ID_MAX, "%s", bid);
    return;
  }
  /* A digest of (type, patient, business id): stable, unique, and free of
   * the characters a FHIR id cannot hold. */
  cl_sha256_state st;
  static const char domain[] = "clinlog.fhir.id";
  cl_sha256_init(&st);
  cl_sha256_update(&st, (const uint8_t *)domain, sizeof domain);
  cl_sha256_update(&st, (const uint8_t *)type, strlen(type) + 1);
  const char *scope = patient_id != NULL ? patient_id : "";
  uint8_t flag = patient_id != NULL;
  cl_sha256_update(&st, &flag, 1);
  cl_sha256_update(&st, (const uint8_t *)scope, strlen(scope) + 1);
  cl_sha256_update(&st, (const uint8_t *)bid, strlen(bid));
  uint8_t h[CL_SHA256_BYTES];
  cl_sha256_final(&st, h);
  sodium_bin2hex(out, CL_FHIR_ID_MAX, h, 16);
}

void cl_fhir_pid(const cl_fhir_map *m, const char *type, const char *bid,
                 char out[CL_FHIR_ID_MAX]) {
  cl_fhir_id(type, m->patient_id, bid, out);
}

json_t *cl_fhir_pref(const cl_fhir_map *m, const char *type, const char *bid) {
  if (bid == NULL || bid[0] == '\0')
    return NULL;
  char id[CL_FHIR_ID_MAX];
  cl_fhir_pid(m, type, bid, id);
  return fj_ref(type, id);
}

json_t *cl_fhir_patient_ref(const cl_fhir_map *m) {
  if (m->patient_id == NULL)
    return NULL;
  char id[CL_FHIR_ID_MAX];
  cl_fhir_id("Patient", NULL, m->patient_id, id);
  return fj_ref("Patient", id);
}

json_t *cl_fhir_new(const char *type, const char *id) {
  json_t *o = json_object();
  json_object_set_new(o, "resourceType", json_string(type));
  json_object_set_new(o, "id", json_string(id));
  return o;
}

json_t *cl_fhir_device_ref(const char *device_id) {
  if (!fj_has(device_id))
    return NULL;
  char id[CL_FHIR_ID_MAX];
  cl_fhir_id("Device", NULL, device_id, id);
  return fj_ref("Device", id);
}

json_t *cl_fhir_when(const cl_fhir_map *m, const Google__Protobuf__Timestamp *ts) {
  if (ts != NULL)
    return fj_instant(ts);
  if (m->ev->occurred_at != NULL)
    return fj_instant(m->ev->occurred_at);
  return fj_instant_ns(m->committed_at_ns);
}

int cl_fhir_map_get(cl_fhir_map *m, const char *type, const char *id, json_t **out, cl_err *err) {
  return m->ops->get(m, type, id, out, err);
}

int cl_fhir_map_put(cl_fhir_map *m, json_t *res, cl_err *err) { return m->ops->put(m, res, err); }

/* The string with its control characters replaced; NULL if it has none
 * (*oom set when out of memory). */
static char *pictured(const char *s, int *oom) {
  size_t n = 0, bad = 0;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++, n++)
    if ((*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r') || *p == 0x7f)
      bad++;
  if (bad == 0)
    return NULL;
  char *out = malloc(n + 2 * bad + 1), *w = out;
  if (out == NULL) {
    *oom = 1;
    return NULL;
  }
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if ((*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r') || *p == 0x7f) {
      unsigned cp = *p == 0x7f ? 0x2421 : 0x2400 + *p; /* U+2400..U+241F, U+2421 */
      *w++ = (char)(0xE0 | (cp >> 12));
      *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
      *w++ = (char)(0x80 | (cp & 0x3F));
    } else {
      *w++ = (char)*p;
    }
  }
  *w = '\0';
  return out;
}

static int fix_string(char **slot, int *oom) {
  if (*slot == NULL || (*slot)[0] == '\0')
    return 0; /* empty strings may be protobuf-c's shared default */
  char *p = pictured(*slot, oom);
  if (p != NULL) {
    free(*slot);
    *slot = p;
  }
  return *oom ? -1 : 0;
}

static int sanitize(ProtobufCMessage *msg, int *oom, int depth) {
  if (msg == NULL || depth > 64)
    return 0;
  const ProtobufCMessageDescriptor *d = msg->descriptor;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
      continue;
    char *base = (char *)msg;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
      uint32_t active = *(uint32_t *)(void *)(base + f->quantifier_offset);
      if (active != f->id)
        continue;
    }
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n = *(size_t *)(void *)(base + f->quantifier_offset);
      void **arr = *(void ***)(void *)(base + f->offset);
      for (size_t k = 0; k < n; k++) {
        if (f->type == PROTOBUF_C_TYPE_STRING ? fix_string((char **)&arr[k], oom)
                                              : sanitize(arr[k], oom, depth + 1))
          return -1;
      }
    } else if (f->type == PROTOBUF_C_TYPE_STRING) {
      if (fix_string((char **)(void *)(base + f->offset), oom))
        return -1;
    } else if (sanitize(*(ProtobufCMessage **)(void *)(base + f->offset), oom, depth + 1)) {
      return -1;
    }
  }
  return 0;
}

int cl_fhir_sanitize(ProtobufCMessage *msg, cl_err *err) {
  int oom = 0;
  if (sanitize(msg, &oom, 0) != 0 || oom)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  return 0;
}

int cl_fhir_map_event(cl_fhir_map *m, cl_err *err) {
  unsigned t = (unsigned)m->ev->body_case;
  if (t >= 100 && t < 200)
    return cl_fhir_map_patient(m, err);
  if (t >= 200 && t < 207) /* 207/208 (corrections) are the store's */
    return cl_fhir_map_clinical(m, err);
  if (t >= 300 && t < 400)
    return cl_fhir_map_pharmacy(m, err);
  if (t >= 400 && t < 500)
    return cl_fhir_map_imaging(m, err);
  if (t >= 500 && t < 600)
    return cl_fhir_map_billing(m, err);
  if (t >= 600 && t < 700)
    return cl_fhir_map_portal(m, err);
  if (t >= 700 && t < 800)
    return cl_fhir_map_device(m, err);
  if (t >= 800 && t < 900)
    return cl_fhir_map_decision(m, err);
  return 0;
}

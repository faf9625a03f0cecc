/* Event validation, and the packing of a node's own events; see event.h. */
#include "store/event.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "store/alloc.h"
#include "store/keyring.h"
#include "store/keys.h"

int cl_utf8_valid(const uint8_t *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    /* ASCII, eight bytes at a time */
    uint64_t word;
    while (i + 8 <= n && (memcpy(&word, p + i, 8), (word & 0x8080808080808080ULL) == 0))
      i += 8;
    if (i >= n)
      break;
    uint8_t c = p[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return 0;
    }
    if (i + len > n)
      return 0;
    for (size_t k = 1; k < len; k++) {
      if ((p[i + k] & 0xC0) != 0x80)
        return 0;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return 0;
    i += len;
  }
  return 1;
}

int cl_stream_name_check(const char *name, size_t len, cl_err *err) {
  if (len == 0)
    return cl_err_set(err, CL_EMALFORMED, "stream: empty");
  if (len > CL_STREAM_MAX)
    return cl_err_set(err, CL_EMALFORMED, "stream: %zu bytes, limit %d", len, CL_STREAM_MAX);
  if (!cl_utf8_valid((const uint8_t *)name, len))
    return cl_err_set(err, CL_EMALFORMED, "stream: invalid UTF-8");
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
      return cl_err_set(err, CL_EMALFORMED, "stream: control character at byte %zu", i);
  return 0;
}

static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  uint64_t r = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (*p >= end)
      return -1;
    uint8_t b = *(*p)++;
    r |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *v = r;
      return 0;
    }
  }
  return -1;
}

/* The field path of a wire_check error: the names on the stack, joined by
 * '.' ("message" at the top level). Made only when there is an error: a
 * path built at every field cost more than the check itself. */
typedef struct wpath {
  const char *name[66];
  int depth;
} wpath;

static const char *path_text(const wpath *w, char *buf, size_t n) {
  size_t o = 0;
  buf[0] = '\0';
  for (int i = 0; i < w->depth && o + 1 < n; i++) {
    int k = snprintf(buf + o, n - o, "%s%s", i ? "." : "", w->name[i]);
    if (k < 0)
      break;
    o += (size_t)k;
  }
  return buf[0] ? buf : "message";
}

static int wire_fail(const wpath *w, cl_err *err, const char *what) {
  char path[CL_ERR_MSG_SIZE];
  return cl_err_set(err, CL_EMALFORMED, "%s: %s", path_text(w, path, sizeof path), what);
}

static int wire_check(const ProtobufCMessageDescriptor *d, const uint8_t *p, const uint8_t *end,
                      wpath *w, cl_err *err) {
  if (w->depth > 64)
    return wire_fail(w, err, "too deeply nested");
  while (p < end) {
    uint64_t key, n;
    if (varint(&p, end, &key))
      return wire_fail(w, err, "bad field key");
    unsigned wt = (unsigned)(key & 7);
    uint32_t id = (uint32_t)(key >> 3);
    switch (wt) {
    case 0:
      if (varint(&p, end, &n))
        return wire_fail(w, err, "bad varint");
      continue;
    case 1:
    case 5: {
      size_t width = wt == 1 ? 8 : 4;
      if ((size_t)(end - p) < width)
        return wire_fail(w, err, "truncated");
      p += width;
      continue;
    }
    case 2:
      break;
    default: { /* groups (3, 4) are not proto3; protobuf-c has rejected others */
      char what[48];
      snprintf(what, sizeof what, "unsupported wire type %u", wt);
      return wire_fail(w, err, what);
    }
    }
    if (varint(&p, end, &n) || n > (uint64_t)(end - p))
      return wire_fail(w, err, "bad length");
    const uint8_t *v = p;
    p += n;
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, id);
    if (!f || (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE))
      continue; /* bytes, packed scalars, unknown fields */
    w->name[w->depth++] = f->name;
    int rc = 0;
    if (f->type == PROTOBUF_C_TYPE_STRING) {
      if (memchr(v, 0, n))
        rc = wire_fail(w, err, "contains a NUL byte");
      else if (!cl_utf8_valid(v, n))
        rc = wire_fail(w, err, "invalid UTF-8");
    } else {
      rc = wire_check(f->descriptor, v, v + n, w, err);
    }
    w->depth--;
    if (rc)
      return rc;
  }
  return 0;
}

int cl_wire_check_strings(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
                          cl_err *err) {
  wpath w = {.depth = 0};
  return wire_check(desc, buf, buf + len, &w, err);
}

static const ProtobufCFieldDescriptor *body_field(uint32_t type) {
  const ProtobufCFieldDescriptor *f =
      protobuf_c_message_descriptor_get_field(&clinlog__v1__event__descriptor, type);
  if (!f || !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) || f->type != PROTOBUF_C_TYPE_MESSAGE)
    return NULL;
  return f;
}

const char *cl_event_type_name(uint32_t type) {
  const ProtobufCFieldDescriptor *f = body_field(type);
  return f ? ((const ProtobufCMessageDescriptor *)f->descriptor)->short_name : NULL;
}

const char *cl_event_principal(const Clinlog__V1__Event *e) {
  switch (e->body_case) {
  case CLINLOG__V1__EVENT__BODY_PRINCIPAL_REGISTERED:
    return e->principal_registered->principal_id;
  case CLINLOG__V1__EVENT__BODY_KEY_REGISTERED:
    return e->key_registered->principal_id;
  case CLINLOG__V1__EVENT__BODY_KEY_REVOKED:
    return e->key_revoked->principal_id;
  case CLINLOG__V1__EVENT__BODY_CREDENTIAL_ENROLLED:
    return e->credential_enrolled->principal_id;
  case CLINLOG__V1__EVENT__BODY_CERTIFICATE_BOUND:
    return e->certificate_bound->principal_id;
  case CLINLOG__V1__EVENT__BODY_CERTIFICATE_REVOKED:
    return e->certificate_revoked->principal_id;
  case CLINLOG__V1__EVENT__BODY_ROLES_CHANGED:
    return e->roles_changed->principal_id;
  case CLINLOG__V1__EVENT__BODY_SESSION_STARTED:
    return e->session_started->principal_id;
  case CLINLOG__V1__EVENT__BODY_SESSION_ENDED:
    return e->session_ended->principal_id;
  case CLINLOG__V1__EVENT__BODY_BREAK_GLASS_DECLARED:
    return e->break_glass_declared->principal_id;
  case CLINLOG__V1__EVENT__BODY_CLIENT_KEYS_REGISTERED:
    return e->client_keys_registered->principal_id;
  default:
    return NULL;
  }
}

uint32_t cl_event_type_code(const char *name) {
  const ProtobufCMessageDescriptor *d = &clinlog__v1__event__descriptor;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
      continue;
    const ProtobufCMessageDescriptor *md = f->descriptor;
    if (strcmp(md->short_name, name) == 0 || strcasecmp(f->name, name) == 0)
      return f->id;
  }
  return 0;
}

static int check_id16(ProtobufCBinaryData b, const char *field, int required, cl_err *err) {
  if (b.len == 0 && !required)
    return 0;
  if (b.len != CL_EVENT_ID_SIZE)
    return cl_err_set(err, CL_EMALFORMED, "%s: must be %d bytes (a UUID), got %zu", field,
                      CL_EVENT_ID_SIZE, b.len);
  return 0;
}

int cl_event_decode(const uint8_t *buf, size_t len, Clinlog__V1__Event **out, cl_err *err) {
  int oom;
  Clinlog__V1__Event *ev =
      (Clinlog__V1__Event *)cl_pb_unpack(&clinlog__v1__event__descriptor, buf, len, &oom);
  if (!ev)
    return oom ? cl_err_set(err, CL_ENOMEM, "out of memory")
               : cl_err_set(err, CL_EMALFORMED, "not a valid clinlog.v1.Event protobuf (%zu bytes)",
                            len);
  int rc;
  /* first: the decoded strings are what the wire says (no NUL cut-offs) */
  if ((rc = cl_wire_check_strings(&clinlog__v1__event__descriptor, buf, len, err)))
    goto fail;
  if ((rc = check_id16(ev->event_id, "event_id", 1, err)) ||
      (rc = check_id16(ev->correlation_id, "correlation_id", 0, err)) ||
      (rc = check_id16(ev->causation_id, "causation_id", 0, err)))
    goto fail;
  if ((rc = cl_stream_name_check(ev->stream, strlen(ev->stream), err)))
    goto fail;
  if (!ev->occurred_at) {
    rc = cl_err_set(err, CL_EMALFORMED, "occurred_at: required");
    goto fail;
  }
  if (ev->occurred_at->nanos < 0 || ev->occurred_at->nanos > 999999999) {
    rc = cl_err_set(err, CL_EMALFORMED, "occurred_at.nanos: out of range");
    goto fail;
  }
  if (ev->body_case == CLINLOG__V1__EVENT__BODY__NOT_SET || !body_field(ev->body_case)) {
    rc = cl_err_set(err, CL_EMALFORMED, "body: no known event type set");
    goto fail;
  }
  if (!ev->recorded_by || !ev->recorded_by->principal_id[0]) {
    rc = cl_err_set(err, CL_EMALFORMED, "recorded_by.principal_id: required");
    goto fail;
  }
  *out = ev;
  return 0;
fail:
  clinlog__v1__event__free_unpacked(ev, NULL);
  return rc;
}

int cl_event_pack_node(Clinlog__V1__Event *ev, const char *stream, uint8_t **out, size_t *len,
                       cl_err *err) {
  uint8_t id[16];
  ProtobufCBinaryData own = ev->event_id;
  if (own.len == 16 && own.data)
    memcpy(id, own.data, 16); /* an id the caller derived (idempotent writes) */
  else
    cl_uuid_v4(id);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  Google__Protobuf__Timestamp at = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  at.seconds = ts.tv_sec;
  at.nanos = (int32_t)ts.tv_nsec;
  Clinlog__V1__RecordedBy by = CLINLOG__V1__RECORDED_BY__INIT;
  by.principal_id = CL_LOG_PRINCIPAL;
  by.role = CL_ROLE_LOG;
  ev->event_id = (ProtobufCBinaryData){sizeof id, id};
  ev->stream = (char *)stream;
  ev->occurred_at = &at;
  ev->recorded_by = &by;
  ev->source_system = "clinlogd";
  *len = clinlog__v1__event__get_packed_size(ev);
  int rc = 0;
  if (!(*out = cl_malloc(*len)))
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
  else
    clinlog__v1__event__pack(ev, *out);
  ev->event_id = own; /* the envelope was this call's */
  ev->occurred_at = NULL;
  ev->recorded_by = NULL;
  return rc;
}

/* Event validation; see event.h. */
#include "store/event.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

int cl_utf8_valid(const uint8_t *p, size_t n) {
  size_t i = 0;
  while (i < n) {
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

static int check_utf8(const ProtobufCMessage *msg, char *path, size_t pathlen, int depth,
                      cl_err *err) {
  const ProtobufCMessageDescriptor *d = msg->descriptor;
  if (depth > 64)
    return cl_err_set(err, CL_EMALFORMED, "%s: too deeply nested", path);
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
      continue;
    const char *base = (const char *)msg;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
      uint32_t which = *(const uint32_t *)(base + f->quantifier_offset);
      if (which != f->id)
        continue;
    }
    size_t count;
    const void *const *items;
    const void *single;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      count = *(const size_t *)(base + f->quantifier_offset);
      items = *(const void *const *const *)(base + f->offset);
    } else {
      single = *(const void *const *)(base + f->offset);
      count = single ? 1 : 0;
      items = &single;
    }
    size_t plen = strlen(path);
    for (size_t k = 0; k < count; k++) {
      snprintf(path + plen, pathlen - plen, "%s%s", plen ? "." : "", f->name);
      if (f->type == PROTOBUF_C_TYPE_STRING) {
        const char *s = items[k];
        if (s && !cl_utf8_valid((const uint8_t *)s, strlen(s)))
          return cl_err_set(err, CL_EMALFORMED, "%s: invalid UTF-8", path);
      } else if (items[k]) {
        int rc = check_utf8(items[k], path, pathlen, depth + 1, err);
        if (rc)
          return rc;
      }
      path[plen] = '\0';
    }
  }
  return 0;
}

int cl_message_check_utf8(const ProtobufCMessage *msg, cl_err *err) {
  char path[CL_ERR_MSG_SIZE] = "";
  return check_utf8(msg, path, sizeof path, 0, err);
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
  Clinlog__V1__Event *ev = clinlog__v1__event__unpack(NULL, len, buf);
  if (!ev)
    return cl_err_set(err, CL_EMALFORMED, "not a valid clinlog.v1.Event protobuf (%zu bytes)", len);
  int rc;
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
  if ((rc = cl_message_check_utf8(&ev->base, err)))
    goto fail;
  *out = ev;
  return 0;
fail:
  clinlog__v1__event__free_unpacked(ev, NULL);
  return rc;
}

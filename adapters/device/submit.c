/* Home-device readings through the request layer (submit.h). Invariant:
 * a line is either refused before anything of it is appended, or its
 * events go to the writer with the ids reading.c derives, so a resend is
 * answered from the store's event-id idempotency and never written twice. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/device/submit.h"
#include "query/fhir/engine.h"
#include "query/fhir/fj.h"
#include "query/fhir/fj_parse.h"
#include "query/fhir/map.h"
#include "store/feed.h"
#include "store/keyring.h"
#include "store/keys.h"
#include "store/logkey.h"

const char *cl_dev_status_name(int status) {
  switch (status) {
  case CL_DEV_ACCEPTED:
    return "accepted";
  case CL_DEV_DUPLICATE:
    return "duplicate";
  case CL_DEV_REFUSED:
    return "refused";
  default:
    return "failed";
  }
}

/* ---- the registry: the FHIR Device view ---- */

typedef struct registry {
  cl_fhir_engine *e;
  cl_svc *svc;
  uint64_t head;       /* the log's size when the call began */
  int64_t deadline_ms; /* the call's */
  int waited;          /* the view has folded up to head */
  const char *caller;  /* its principal, and whether it is a gateway */
  int gateway;
  /* the last answer, as gateways send runs of one device's readings */
  char device[CL_DEV_ID_MAX], patient[CL_DEV_ID_MAX];
  int found; /* 0 no answer cached, 1 registered, -1 not registered */
  cl_dev_registration reg;
} registry;

static void registration_of(json_t *d, const char *patient_id, cl_dev_registration *out) {
  char want[CL_FHIR_ID_MAX + 8], pid[CL_FHIR_ID_MAX];
  cl_fhir_id("Patient", NULL, patient_id, pid);
  snprintf(want, sizeof want, "Patient/%s", pid);
  const char *ref = json_string_value(json_object_get(json_object_get(d, "patient"), "reference"));
  out->assigned = !ref                 ? CL_DEV_UNASSIGNED
                  : !strcmp(ref, want) ? CL_DEV_TO_PATIENT
                                       : CL_DEV_TO_OTHER;
  json_t *ids = json_object_get(d, "identifier"), *id;
  size_t i;
  json_array_foreach(ids, i, id) {
    const char *sys = json_string_value(json_object_get(id, "system"));
    const char *v = json_string_value(json_object_get(id, "value"));
    if (sys && v && !strcmp(sys, FJ_PRINCIPAL_SYSTEM))
      snprintf(out->principal_id, sizeof out->principal_id, "%s", v);
  }
}

/* The view's answer (lookup below), without waiting. */
static int read_view(registry *r, const char *device_id, const char *patient_id,
                     cl_dev_registration *out, cl_err *err) {
  char id[CL_FHIR_ID_MAX];
  cl_fhir_id("Device", NULL, device_id, id);
  cl_fhir_req rq = {.interaction = CL_FHIR_READ, .type = "Device", .id = id};
  cl_fhir_resp rs;
  cl_fhir_handle(r->e, &rq, &rs);
  int rc = 0;
  memset(out, 0, sizeof *out);
  if (rs.status == 404 || rs.status == 410) {
    rc = CL_ENOTFOUND;
  } else if (rs.status != 200 || !rs.body) {
    rc = cl_err_set(err, CL_EUNAVAILABLE, "the FHIR Device view answered %d", rs.status);
  } else {
    json_t *d = fj_parse(rs.body, rs.len, 0, NULL);
    if (!d)
      rc = cl_err_set(err, CL_ENOMEM, "reading the FHIR Device view");
    else
      registration_of(d, patient_id, out);
    json_decref(d);
  }
  cl_fhir_resp_clear(&rs);
  return rc;
}

/* 1 if the registration would refuse the caller's reading. */
static int refuses(const registry *r, int rc, const cl_dev_registration *reg) {
  return rc == CL_ENOTFOUND || (rc == 0 && (reg->assigned != CL_DEV_TO_PATIENT ||
                                            (!r->gateway && strcmp(reg->principal_id, r->caller))));
}

/* The registry lookup (reading.h's cl_dev_lookup_fn). The view is read as
 * it is; only an answer that would refuse the reading waits for the view
 * to fold the log as it was when the call began and asks again (once per
 * call), so a registration or reassignment committed before the call is
 * always seen, and readings of registered devices never wait on the view
 * folding other readings. */
static int lookup(void *ctx, const char *device_id, const char *patient_id,
                  cl_dev_registration *out, cl_err *err) {
  registry *r = ctx;
  if (r->found && !strcmp(r->device, device_id) && !strcmp(r->patient, patient_id)) {
    *out = r->reg;
    return r->found > 0 ? 0 : CL_ENOTFOUND;
  }
  int rc = read_view(r, device_id, patient_id, out, err);
  if (refuses(r, rc, out) && !r->waited && r->head) {
    r->waited = 1;
    if (cl_svc_wait(r->svc, "fhir", r->head, r->deadline_ms, err))
      return cl_err_prefix(err, "the device registry (FHIR Device view)");
    rc = read_view(r, device_id, patient_id, out, err);
  }
  if (rc == 0 || rc == CL_ENOTFOUND) {
    snprintf(r->device, sizeof r->device, "%s", device_id);
    snprintf(r->patient, sizeof r->patient, "%s", patient_id);
    r->found = rc ? -1 : 1;
    r->reg = *out;
  }
  return rc;
}

/* ---- appending ---- */

typedef struct pending {
  size_t line;     /* index into the outcomes */
  cl_dev_mapped m; /* its events */
} pending;

/* Appends the events of pending lines [0, n) as one batch signed by the
 * node's log key, for the caller rc (its audit record gets the seqs). */
static int append(cl_svc *s, cl_req_ctx *rc, pending *pl, size_t n, cl_append_result *r,
                  cl_err *err) {
  size_t total = 0;
  for (size_t i = 0; i < n; i++)
    total += pl[i].m.n;
  ProtobufCBinaryData *evs = calloc(total, sizeof *evs);
  uint8_t(*hashes)[32] = calloc(total, 32);
  int code;
  if (!evs || !hashes) {
    code = cl_err_set(err, CL_ENOMEM, "out of memory");
    goto fail_alloc;
  }
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < pl[i].m.n; j++, k++) {
      evs[k] = (ProtobufCBinaryData){pl[i].m.ev[j].len, pl[i].m.ev[j].bytes};
      cl_event_hash(pl[i].m.ev[j].bytes, pl[i].m.ev[j].len, hashes[k]);
    }
  uint8_t sig[64], pk[32];
  if ((code = cl_log_sign_batch(cl_svc_log(s), (const uint8_t(*)[32])hashes, total, sig, pk, err)))
    goto fail_alloc;
  Clinlog__V1__Signature bs = CLINLOG__V1__SIGNATURE__INIT;
  bs.key_id = (ProtobufCBinaryData){32, pk};
  bs.signature = (ProtobufCBinaryData){64, sig};
  Clinlog__V1__AppendBatch b = CLINLOG__V1__APPEND_BATCH__INIT;
  b.n_events = total;
  b.events = evs;
  b.batch_signature = &bs;
  /* the node's own write (its key, not the caller's): the caller's right
   * to submit was checked by cl_dev_submit; its record names what landed */
  cl_req_ctx *wrc = malloc(sizeof *wrc);
  if (!wrc) {
    code = cl_err_set(err, CL_ENOMEM, "out of memory");
    goto fail_alloc;
  }
  cl_req_ctx_init(wrc, rc->method, "internal");
  wrc->deadline_ms = rc->deadline_ms;
  wrc->forwarded = rc->forwarded;
  /* the writer adds what it appended to the record: the caller's */
  memcpy(wrc->audit_what, rc->audit_what, sizeof wrc->audit_what);
  wrc->audit_count = rc->audit_count;
  code = cl_svc_append(s, wrc, &b, 1, r, NULL, err);
  memcpy(rc->audit_what, wrc->audit_what, sizeof rc->audit_what);
  rc->audit_count = wrc->audit_count;
  free(wrc);
fail_alloc:
  free(evs);
  free(hashes);
  return code;
}

/* Outcomes of lines [0, n) from an append's answer. */
static void settle(pending *pl, size_t n, int code, const cl_append_result *r, const cl_err *err,
                   cl_dev_outcome *out) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    cl_dev_outcome *o = &out[pl[i].line];
    o->events = pl[i].m.n;
    if (code == 0) {
      o->status = r->duplicate ? CL_DEV_DUPLICATE : CL_DEV_ACCEPTED;
      o->seq = k < r->n ? r->seq[k] : 0;
    } else if (code == CL_EDUPLICATE) {
      o->status = CL_DEV_REFUSED;
      o->code = code;
      snprintf(o->field, sizeof o->field, "reading");
      snprintf(o->reason, sizeof o->reason,
               "reading: %s of device %s was submitted before with other content", o->reading_id,
               o->device_id);
    } else {
      o->status = CL_DEV_FAILED;
      o->code = code;
      snprintf(o->reason, sizeof o->reason, "%s", err->msg);
    }
    k += pl[i].m.n;
  }
}

static void write_all(cl_svc *s, cl_req_ctx *rc, pending *pl, size_t n, cl_dev_outcome *out) {
  cl_append_result r;
  memset(&r, 0, sizeof r);
  cl_err err;
  cl_err_clear(&err);
  int code = append(s, rc, pl, n, &r, &err);
  if (code == CL_EDUPLICATE && n > 1) { /* some were sent before: one by one */
    for (size_t i = 0; i < n; i++)
      write_all(s, rc, pl + i, 1, out);
    return;
  }
  settle(pl, n, code, &r, &err, out);
  if (code == 0 || code == CL_ECONFLICT)
    cl_append_result_free(&r);
}

/* ---- the call ---- */

static int admit(cl_svc *s, const cl_req_ctx *rc, cl_err *err) {
  if (!rc->principal[0])
    return cl_err_set(err, CL_EUNAUTH,
                      "device readings need an authenticated device or gateway principal (a "
                      "client certificate or a session token)");
  if (!cl_svc_may_append(s, rc, CLINLOG__V1__EVENT__BODY_DEVICE_READING_RECORDED) ||
      !cl_svc_may_append(s, rc, CLINLOG__V1__EVENT__BODY_DEVICE_STATUS_REPORTED))
    return cl_err_set(err, CL_EDENIED,
                      "%s (roles %s) may not append DeviceReadingRecorded and "
                      "DeviceStatusReported",
                      rc->principal, rc->roles);
  if (!cl_log_signer(cl_svc_log(s)))
    return cl_err_set(err, CL_EUNAVAILABLE, "this node has no log key to write readings with");
  return 0;
}

int cl_dev_submit(cl_svc *s, cl_req_ctx *rc, const cl_dev_line *lines, size_t n,
                  const cl_dev_submit_opts *o, cl_dev_outcome *out, cl_err *err) {
  int code = admit(s, rc, err);
  if (code)
    return code;
  cl_runner *fr = cl_svc_runner(s, "fhir");
  if (!fr)
    return cl_err_set(err, CL_EUNAVAILABLE,
                      "the FHIR Device view (the device registry) does "
                      "not run on this node");
  registry reg = {.svc = s,
                  .head = cl_feed_size(cl_log_feed(cl_svc_log(s))),
                  .deadline_ms = rc->deadline_ms ? rc->deadline_ms : cl_feed_now_ms() + 10000,
                  .caller = rc->principal,
                  .gateway = cl_roles_has(rc->roles, "integration")};
  if ((code = cl_fhir_engine_new(cl_runner_proj(fr), cl_svc_log(s), &reg.e, err)))
    return code;
  pending *pl = calloc(n ? n : 1, sizeof *pl);
  if (!pl) {
    cl_fhir_engine_free(reg.e);
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  }
  cl_dev_opts mo = {.principal_id = rc->principal,
                    .role = cl_roles_has(rc->roles, "integration") ? "integration" : "device",
                    .gateway = cl_roles_has(rc->roles, "integration"),
                    .signer = CL_LOG_PRINCIPAL,
                    .signer_role = CL_ROLE_LOG,
                    .now_ms = cl_feed_now_ms(),
                    .max_skew_ms = o && o->max_skew_ms ? o->max_skew_ms
                                                       : cl_svc_device_skew_ms(s),
                    .lookup = lookup,
                    .lookup_ctx = &reg};
  size_t np = 0;
  for (size_t i = 0; i < n; i++) {
    cl_dev_outcome *oc = &out[i];
    memset(oc, 0, sizeof *oc);
    cl_err le;
    cl_err_clear(&le);
    int rc2 = cl_dev_map_line(lines[i].p, lines[i].n, &mo, &pl[np].m, oc->field, &le);
    if (rc2 == 0) {
      snprintf(oc->device_id, sizeof oc->device_id, "%s", pl[np].m.device_id);
      snprintf(oc->reading_id, sizeof oc->reading_id, "%s", pl[np].m.reading_id);
      /* runs of one patient's readings are the rule: name it once per run */
      if (!np || strcmp(pl[np - 1].m.patient_id, pl[np].m.patient_id))
        cl_req_ctx_add_patient(rc, pl[np].m.patient_id);
      pl[np++].line = i;
      continue;
    }
    oc->code = rc2;
    oc->status = rc2 == CL_EMALFORMED || rc2 == CL_EDENIED ? CL_DEV_REFUSED : CL_DEV_FAILED;
    snprintf(oc->reason, sizeof oc->reason, "%s", le.msg);
  }
  cl_fhir_engine_free(reg.e);
  if (np)
    write_all(s, rc, pl, np, out);
  for (size_t i = 0; i < np; i++)
    cl_dev_mapped_clear(&pl[i].m);
  free(pl);
  return 0;
}

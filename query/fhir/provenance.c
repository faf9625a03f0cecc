/* The Provenance the `fhir` fold writes for every event that changes
 * resources (fhir.h): every version the event made as a target, who
 * recorded it, when, and the coordinates of its proof (log sequence
 * number, stream version, event hash, batch position, signature), written
 * as bytes in the stored form, with no jansson tree; and the header and
 * meta every stored version starts with (fold.c stores them).
 *
 * Invariants: the bytes are the JSON a jansson tree of the same members
 * would dump (fj_dump), byte for byte, so a rebuild equals the live state;
 * a string jansson would refuse (not UTF-8) is left out, as it was. The
 * buffer written to holds patient data: the caller wipes it
 * (fj_buf_wipe) after use. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/fhir/fhir.h"
#include "query/fhir/fhir_int.h"
#include "query/fhir/fj.h"
#include "store/record.h"

/* A stored version's header: seq, commit time, event id (fhir_int.h). */
void fp_write_header(fj_buf *b, const cl_event_view *ev) {
  uint8_t hdr[VER_HDR];
  be64(hdr, ev->seq);
  be64(hdr + 8, (uint64_t)ev->committed_at_ns);
  memcpy(hdr + 16, ev->event_id, 16);
  fj_buf_raw(b, hdr, sizeof hdr);
}

/* The instant of ns as a JSON string. */
static void write_instant_ns(fj_buf *b, int64_t ns) {
  char t[40];
  fj_instant_ns_text(ns, t);
  fj_buf_cstr(b, t);
}

void fp_write_meta(fj_buf *b, uint32_t version, int64_t ns) {
  fj_buf_lit(b, ",\"meta\":{\"versionId\":\"");
  fj_buf_u64(b, version);
  fj_buf_lit(b, "\",\"lastUpdated\":");
  write_instant_ns(b, ns);
  fj_buf_lit(b, "}");
}

const char *fp_body_name(const Clinlog__V1__Event *e) {
  const ProtobufCFieldDescriptor *fd =
      protobuf_c_message_descriptor_get_field(&clinlog__v1__event__descriptor, e->body_case);
  return fd ? fd->name : "event";
}

/* The body's message name: patient_registered -> PatientRegistered. */
static void activity_display(const Clinlog__V1__Event *e, char disp[64]) {
  const char *bn = fp_body_name(e);
  size_t o = 0;
  for (int up = 1; *bn && o + 1 < 64; bn++) {
    if (*bn == '_') {
      up = 1;
      continue;
    }
    disp[o++] = up && *bn >= 'a' && *bn <= 'z' ? (char)(*bn - 32) : *bn;
    up = 0;
  }
  disp[o] = '\0';
}

#define PARTICIPANT_TYPE "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
#define EVENT_TYPE_SYSTEM "https://clinlog.dev/fhir/CodeSystem/event-type"

/* Pieces of the Provenance written as bytes (provenance()). */
static void w_concept(fj_buf *b, const char *system, const char *code, const char *display) {
  fj_buf_lit(b, "{\"coding\":[{\"system\":");
  fj_buf_cstr(b, system);
  fj_buf_lit(b, ",\"code\":");
  fj_buf_cstr(b, code);
  fj_buf_lit(b, ",\"display\":");
  fj_buf_cstr(b, display);
  fj_buf_lit(b, "}]}");
}

static void w_who(fj_buf *b, const char *pid) {
  if (pid == NULL || pid[0] == '\0') {
    fj_buf_lit(b, "{\"display\":\"unknown principal\"}");
    return;
  }
  fj_buf_lit(b, "{\"identifier\":{\"system\":\"" FJ_PRINCIPAL_SYSTEM "\",\"value\":");
  fj_buf_cstr(b, pid);
  fj_buf_lit(b, "}}");
}

static void w_b64(fj_buf *b, const uint8_t *p, size_t n) {
  size_t bl = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
  char small[128], *s = bl <= sizeof small ? small : malloc(bl);
  if (s == NULL) {
    b->oom = 1;
    return;
  }
  sodium_bin2base64(s, bl, p, n, sodium_base64_VARIANT_ORIGINAL);
  fj_buf_cstr(b, s);
  if (s != small)
    free(s);
}

/* {"url":"<url>","<member>":"<s>"} */
static void w_sub(fj_buf *b, const char *url, const char *member) {
  fj_buf_lit(b, ",{\"url\":");
  fj_buf_cstr(b, url);
  fj_buf_lit(b, ",\"");
  fj_buf_lit(b, member);
  fj_buf_lit(b, "\":");
}

/* s, or NULL if it is not a string jansson takes (fj_utf8_ok). */
static const char *text(const char *s) { return s != NULL && fj_utf8_ok(s, strlen(s)) ? s : NULL; }

/* The Provenance of the event: every version it made as a target, who
 * recorded it, when, and the coordinates of its proof (fhir.h). Written as
 * bytes, no jansson tree: the JSON the tree this replaced (fold 2) gave,
 * byte for byte. */
void fp_write_provenance(fj_buf *b, const cl_event_view *ev, const Clinlog__V1__Event *e,
                         const fp_target *t, size_t nt, const char uuid[37]) {
  const Clinlog__V1__RecordedBy *rb = e->recorded_by;
  Clinlog__V1__Record *rec = NULL;
  cl_err rerr;
  if (ev->record == NULL || cl_record_decode(ev->record, ev->record_len, &rec, &rerr) != 0)
    rec = NULL;
  /* jansson refuses a string that is not UTF-8, and the member holding it
   * was then left out (an unknown principal for `who`): the same here */
  const char *pid = rb ? text(rb->principal_id) : NULL, *obo = rb ? text(rb->on_behalf_of) : NULL;
  const char *role = rb ? text(rb->role) : NULL, *ss = text(e->source_system);
  const char *smid = text(e->source_message_id);
  char disp[64];
  activity_display(e, disp);
  fp_write_header(b, ev);
  fj_buf_lit(b, "{\"resourceType\":\"Provenance\",\"id\":\"");
  fj_buf_lit(b, uuid);
  fj_buf_lit(b, "\"");
  fp_write_meta(b, 1, ev->committed_at_ns);
  fj_buf_lit(b, ",\"target\":[");
  for (size_t i = 0; i < nt; i++) {
    char ref[CL_FHIR_ID_MAX + 64];
    int rl = snprintf(ref, sizeof ref, "%s/%s/_history/%u", cl_fhir_type_name(t[i].type), t[i].id,
                      t[i].version);
    fj_buf_lit(b, i ? ",{\"reference\":" : "{\"reference\":");
    fj_buf_str(b, ref, (size_t)rl);
    fj_buf_lit(b, "}");
  }
  fj_buf_lit(b, "]");
  if (e->occurred_at != NULL) {
    char when[40];
    fj_instant_text(e->occurred_at->seconds, e->occurred_at->nanos, when);
    fj_buf_lit(b, ",\"occurredDateTime\":");
    fj_buf_cstr(b, when);
  }
  fj_buf_lit(b, ",\"recorded\":");
  write_instant_ns(b, ev->committed_at_ns);
  char code[16];
  snprintf(code, sizeof code, "%u", ev->event_type);
  fj_buf_lit(b, ",\"activity\":");
  w_concept(b, EVENT_TYPE_SYSTEM, code, disp);
  fj_buf_lit(b, ",\"agent\":[{\"type\":");
  w_concept(b, PARTICIPANT_TYPE, "enterer", "Enterer");
  if (fj_has(role)) {
    fj_buf_lit(b, ",\"role\":[{\"text\":");
    fj_buf_cstr(b, role);
    fj_buf_lit(b, "}]");
  }
  fj_buf_lit(b, ",\"who\":");
  w_who(b, pid);
  if (fj_has(obo)) {
    fj_buf_lit(b, ",\"onBehalfOf\":");
    w_who(b, obo);
  }
  fj_buf_lit(b, "}");
  if (rb != NULL && fj_has(rb->device_id)) {
    char did[CL_FHIR_ID_MAX], ref[160];
    cl_fhir_id("Device", NULL, rb->device_id, did);
    snprintf(ref, sizeof ref, "Device/%s", did);
    fj_buf_lit(b, ",{\"type\":");
    w_concept(b, PARTICIPANT_TYPE, "performer", "Performer");
    fj_buf_lit(b, ",\"who\":{\"reference\":");
    fj_buf_cstr(b, ref);
    fj_buf_lit(b, "}}");
  }
  /* the event itself, with the coordinates of its proof */
  fj_buf_lit(b, "],\"entity\":[{\"extension\":[{\"url\":\"" CL_FHIR_LOG_ENTRY_EXT
                "\",\"extension\":[{\"url\":\"seq\",\"valueString\":\"");
  fj_buf_u64(b, ev->seq);
  fj_buf_lit(b, "\"}");
  w_sub(b, "streamVersion", "valueString");
  fj_buf_lit(b, "\"");
  fj_buf_u64(b, ev->stream_version);
  fj_buf_lit(b, "\"}");
  w_sub(b, "eventHash", "valueBase64Binary");
  w_b64(b, ev->event_hash, 32);
  fj_buf_lit(b, "}");
  if (rec != NULL && rec->batch_size > 0) {
    w_sub(b, "batchIndex", "valueUnsignedInt");
    fj_buf_u64(b, rec->batch_index);
    fj_buf_lit(b, "}");
    w_sub(b, "batchSize", "valueUnsignedInt");
    fj_buf_u64(b, rec->batch_size);
    fj_buf_lit(b, "}");
  }
  if (fj_has(ss)) {
    w_sub(b, "sourceSystem", "valueString");
    fj_buf_cstr(b, ss);
    fj_buf_lit(b, "}");
  }
  if (fj_has(smid)) {
    w_sub(b, "sourceMessageId", "valueString");
    fj_buf_cstr(b, smid);
    fj_buf_lit(b, "}");
  }
  fj_buf_lit(b, "]}],\"role\":\"source\",\"what\":{\"identifier\":{\"system\":\"urn:ietf:rfc:"
                "3986\",\"value\":\"urn:uuid:");
  fj_buf_lit(b, uuid);
  fj_buf_lit(b, "\"},\"display\":");
  fj_buf_cstr(b, disp);
  fj_buf_lit(b, "}}]");
  /* a per-event signature travels with the Provenance; a batch's is on the
   * batch's last record (batchIndex/batchSize say which) */
  if (rec != NULL && rec->batch_size == 0 && rec->signature != NULL &&
      rec->signature->signature.len > 0) {
    fj_buf_lit(b, ",\"signature\":[{\"type\":[{\"system\":\"urn:iso-astm:E1762-95:2013\",\"code\":"
                  "\"1.2.840.10065.1.12.1.1\",\"display\":\"Author's Signature\"}],\"when\":");
    write_instant_ns(b, ev->committed_at_ns);
    fj_buf_lit(b, ",\"who\":");
    w_who(b, pid);
    fj_buf_lit(b, ",\"sigFormat\":\"application/octet-stream\",\"data\":");
    w_b64(b, rec->signature->signature.data, rec->signature->signature.len);
    if (rec->signature->key_id.len > 0) {
      fj_buf_lit(b, ",\"extension\":[{\"url\":\"" CL_FHIR_LOG_ENTRY_EXT
                    "#keyId\",\"valueBase64Binary\":");
      w_b64(b, rec->signature->key_id.data, rec->signature->key_id.len);
      fj_buf_lit(b, "}]");
    }
    fj_buf_lit(b, "}]");
  }
  fj_buf_lit(b, "}");
  if (rec != NULL)
    clinlog__v1__record__free_unpacked(rec, NULL);
}

/* The Provenance the `fhir` fold keeps for every event that changes
 * resources (fhir.h): every version the event made as a target, who
 * recorded it, when, and the coordinates of its proof (log sequence
 * number, stream version, event hash, batch position, signature); and the
 * header and meta every stored version starts with (fold.c stores them).
 *
 * A Provenance is stored packed (fp_write_provenance: the few values that
 * vary, no JSON) and rendered as JSON when read (fp_render_stored): most
 * of its JSON is the same for every event, and sealing and writing it at
 * every fold cost more than the resource the event made.
 *
 * Invariants: the JSON rendered is what a jansson tree of the same
 * members would dump (fj_dump), byte for byte; a string jansson would
 * refuse (not UTF-8) is left out, as it was. The packed bytes are a
 * function of the event alone, so a rebuild equals the live state. The
 * buffers written to hold patient data: the callers wipe them
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

/* The name of the Event's body field of case c, or "event". */
static const char *body_case_name(uint32_t c) {
  const ProtobufCFieldDescriptor *fd =
      protobuf_c_message_descriptor_get_field(&clinlog__v1__event__descriptor, (int)c);
  return fd ? fd->name : "event";
}

const char *fp_body_name(const Clinlog__V1__Event *e) { return body_case_name(e->body_case); }

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

/* ---- the Provenance's record: what it says besides its targets ---- */

/* Views: into the event and its record (prov_of), or into the packed
 * bytes (fp_render_stored). A string is NULL when the Provenance leaves it
 * out. */
typedef struct fp_prov {
  uint64_t seq, stream_version;
  int64_t committed_ns;
  const uint8_t *event_id;   /* 16 */
  const uint8_t *event_hash; /* 32 */
  uint32_t event_type, body_case;
  int has_occurred;
  int64_t occ_sec;
  int32_t occ_nanos;
  int has_batch;
  uint32_t batch_index, batch_size;
  const char *pid, *obo, *role, *ss, *smid, *device;
  const uint8_t *sig, *key_id; /* sig NULL: no per-event signature */
  size_t sig_len, key_id_len;
} fp_prov;

/* The record of event ev (e decoded, rec its decoded record or NULL). */
static void prov_of(fp_prov *p, const cl_event_view *ev, const Clinlog__V1__Event *e,
                    const Clinlog__V1__Record *rec) {
  const Clinlog__V1__RecordedBy *rb = e->recorded_by;
  memset(p, 0, sizeof *p);
  p->seq = ev->seq;
  p->stream_version = ev->stream_version;
  p->committed_ns = ev->committed_at_ns;
  p->event_id = ev->event_id;
  p->event_hash = ev->event_hash;
  p->event_type = ev->event_type;
  p->body_case = (uint32_t)e->body_case;
  if (e->occurred_at != NULL) {
    p->has_occurred = 1;
    p->occ_sec = e->occurred_at->seconds;
    p->occ_nanos = e->occurred_at->nanos;
  }
  if (rec != NULL && rec->batch_size > 0) {
    p->has_batch = 1;
    p->batch_index = rec->batch_index;
    p->batch_size = rec->batch_size;
  }
  /* jansson refuses a string that is not UTF-8, and the member holding it
   * was then left out (an unknown principal for `who`): the same here */
  p->pid = rb ? text(rb->principal_id) : NULL;
  p->obo = rb ? text(rb->on_behalf_of) : NULL;
  p->role = rb ? text(rb->role) : NULL;
  p->ss = text(e->source_system);
  p->smid = text(e->source_message_id);
  p->device = rb != NULL && fj_has(rb->device_id) ? rb->device_id : NULL;
  /* a per-event signature travels with the Provenance; a batch's is on the
   * batch's last record (batchIndex/batchSize say which) */
  if (rec != NULL && rec->batch_size == 0 && rec->signature != NULL &&
      rec->signature->signature.len > 0) {
    p->sig = rec->signature->signature.data;
    p->sig_len = rec->signature->signature.len;
    p->key_id = rec->signature->key_id.data;
    p->key_id_len = rec->signature->key_id.len;
  }
}

/* The body's message name of body case `body_case`: patient_registered ->
 * PatientRegistered. */
static void activity_display(uint32_t body_case, char disp[64]) {
  const char *bn = body_case_name(body_case);
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

/* The Provenance's JSON (stored form) from its record and targets: the
 * JSON the jansson tree of fold 2 gave, byte for byte. */
static void render(fj_buf *b, const fp_prov *p, const fp_target *t, size_t nt) {
  char uuid[37], disp[64];
  ProtobufCBinaryData eid = {16, (uint8_t *)p->event_id};
  fj_uuid_text(&eid, uuid);
  activity_display(p->body_case, disp);
  fj_buf_lit(b, "{\"resourceType\":\"Provenance\",\"id\":\"");
  fj_buf_lit(b, uuid);
  fj_buf_lit(b, "\"");
  fp_write_meta(b, 1, p->committed_ns);
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
  if (p->has_occurred) {
    char when[40];
    fj_instant_text(p->occ_sec, p->occ_nanos, when);
    fj_buf_lit(b, ",\"occurredDateTime\":");
    fj_buf_cstr(b, when);
  }
  fj_buf_lit(b, ",\"recorded\":");
  write_instant_ns(b, p->committed_ns);
  char code[16];
  snprintf(code, sizeof code, "%u", p->event_type);
  fj_buf_lit(b, ",\"activity\":");
  w_concept(b, EVENT_TYPE_SYSTEM, code, disp);
  fj_buf_lit(b, ",\"agent\":[{\"type\":");
  w_concept(b, PARTICIPANT_TYPE, "enterer", "Enterer");
  if (fj_has(p->role)) {
    fj_buf_lit(b, ",\"role\":[{\"text\":");
    fj_buf_cstr(b, p->role);
    fj_buf_lit(b, "}]");
  }
  fj_buf_lit(b, ",\"who\":");
  w_who(b, p->pid);
  if (fj_has(p->obo)) {
    fj_buf_lit(b, ",\"onBehalfOf\":");
    w_who(b, p->obo);
  }
  fj_buf_lit(b, "}");
  if (p->device != NULL) {
    char did[CL_FHIR_ID_MAX], ref[160];
    cl_fhir_id("Device", NULL, p->device, did);
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
  fj_buf_u64(b, p->seq);
  fj_buf_lit(b, "\"}");
  w_sub(b, "streamVersion", "valueString");
  fj_buf_lit(b, "\"");
  fj_buf_u64(b, p->stream_version);
  fj_buf_lit(b, "\"}");
  w_sub(b, "eventHash", "valueBase64Binary");
  w_b64(b, p->event_hash, 32);
  fj_buf_lit(b, "}");
  if (p->has_batch) {
    w_sub(b, "batchIndex", "valueUnsignedInt");
    fj_buf_u64(b, p->batch_index);
    fj_buf_lit(b, "}");
    w_sub(b, "batchSize", "valueUnsignedInt");
    fj_buf_u64(b, p->batch_size);
    fj_buf_lit(b, "}");
  }
  if (fj_has(p->ss)) {
    w_sub(b, "sourceSystem", "valueString");
    fj_buf_cstr(b, p->ss);
    fj_buf_lit(b, "}");
  }
  if (fj_has(p->smid)) {
    w_sub(b, "sourceMessageId", "valueString");
    fj_buf_cstr(b, p->smid);
    fj_buf_lit(b, "}");
  }
  fj_buf_lit(b, "]}],\"role\":\"source\",\"what\":{\"identifier\":{\"system\":\"urn:ietf:rfc:"
                "3986\",\"value\":\"urn:uuid:");
  fj_buf_lit(b, uuid);
  fj_buf_lit(b, "\"},\"display\":");
  fj_buf_cstr(b, disp);
  fj_buf_lit(b, "}}]");
  if (p->sig != NULL) {
    fj_buf_lit(b, ",\"signature\":[{\"type\":[{\"system\":\"urn:iso-astm:E1762-95:2013\",\"code\":"
                  "\"1.2.840.10065.1.12.1.1\",\"display\":\"Author's Signature\"}],\"when\":");
    write_instant_ns(b, p->committed_ns);
    fj_buf_lit(b, ",\"who\":");
    w_who(b, p->pid);
    fj_buf_lit(b, ",\"sigFormat\":\"application/octet-stream\",\"data\":");
    w_b64(b, p->sig, p->sig_len);
    if (p->key_id_len > 0) {
      fj_buf_lit(b, ",\"extension\":[{\"url\":\"" CL_FHIR_LOG_ENTRY_EXT
                    "#keyId\",\"valueBase64Binary\":");
      w_b64(b, p->key_id, p->key_id_len);
      fj_buf_lit(b, "}]");
    }
    fj_buf_lit(b, "}]");
  }
  fj_buf_lit(b, "}");
}

/* ---- the packed form (fhir_int.h: PROV_FORMAT) ---- */

enum { HAS_OCCURRED = 1, HAS_BATCH = 2, HAS_SIG = 4 };
#define NSTR 6

static void put_be(fj_buf *b, uint64_t v, int bytes) {
  uint8_t x[8];
  for (int i = bytes - 1; i >= 0; i--, v >>= 8)
    x[i] = (uint8_t)v;
  fj_buf_raw(b, x, (size_t)bytes);
}

/* A string: u32 length with its NUL (0: absent), the bytes and the NUL. */
static void put_str(fj_buf *b, const char *s) {
  size_t n = s != NULL ? strlen(s) + 1 : 0;
  put_be(b, n, 4);
  if (n)
    fj_buf_raw(b, s, n);
}

static void put_bytes(fj_buf *b, const uint8_t *p, size_t n) {
  put_be(b, n, 4);
  if (n)
    fj_buf_raw(b, p, n);
}

void fp_write_provenance(fj_buf *b, const cl_event_view *ev, const Clinlog__V1__Event *e,
                         const fp_target *t, size_t nt) {
  Clinlog__V1__Record *rec = NULL;
  cl_err rerr;
  if (ev->record == NULL || cl_record_decode(ev->record, ev->record_len, &rec, &rerr) != 0)
    rec = NULL;
  fp_prov p;
  prov_of(&p, ev, e, rec);
  fp_write_header(b, ev);
  uint8_t fmt = PROV_FORMAT, flags = (uint8_t)((p.has_occurred ? HAS_OCCURRED : 0) |
                                               (p.has_batch ? HAS_BATCH : 0) |
                                               (p.sig != NULL ? HAS_SIG : 0));
  fj_buf_raw(b, &fmt, 1);
  put_be(b, p.stream_version, 8);
  put_be(b, p.event_type, 4);
  put_be(b, p.body_case, 4);
  fj_buf_raw(b, p.event_hash, 32);
  fj_buf_raw(b, &flags, 1);
  if (p.has_occurred) {
    put_be(b, (uint64_t)p.occ_sec, 8);
    put_be(b, (uint32_t)p.occ_nanos, 4);
  }
  if (p.has_batch) {
    put_be(b, p.batch_index, 4);
    put_be(b, p.batch_size, 4);
  }
  const char *strs[NSTR] = {p.pid, p.obo, p.role, p.ss, p.smid, p.device};
  for (int i = 0; i < NSTR; i++)
    put_str(b, strs[i]);
  if (p.sig != NULL) {
    put_bytes(b, p.sig, p.sig_len);
    put_bytes(b, p.key_id, p.key_id_len);
  }
  put_be(b, nt, 2);
  for (size_t i = 0; i < nt; i++) {
    size_t il = strlen(t[i].id);
    uint8_t ty = (uint8_t)t[i].type, l = (uint8_t)il;
    fj_buf_raw(b, &ty, 1);
    put_be(b, t[i].version, 4);
    fj_buf_raw(b, &l, 1);
    fj_buf_raw(b, t[i].id, il);
  }
  if (rec != NULL)
    clinlog__v1__record__free_unpacked(rec, NULL);
}

/* A reader of packed bytes: every take checks the length first. */
typedef struct rd {
  const uint8_t *p, *end;
  int bad;
} rd;

static const uint8_t *take(rd *r, size_t n) {
  if (r->bad || (size_t)(r->end - r->p) < n) {
    r->bad = 1;
    return NULL;
  }
  const uint8_t *at = r->p;
  r->p += n;
  return at;
}

static uint64_t take_be(rd *r, int bytes) {
  const uint8_t *x = take(r, (size_t)bytes);
  uint64_t v = 0;
  for (int i = 0; x != NULL && i < bytes; i++)
    v = v << 8 | x[i];
  return v;
}

static const char *take_str(rd *r) {
  size_t n = (size_t)take_be(r, 4);
  if (n == 0)
    return NULL;
  const char *s = (const char *)take(r, n);
  if (s != NULL && (s[n - 1] != '\0' || strlen(s) != n - 1))
    r->bad = 1;
  return r->bad ? NULL : s;
}

int fp_render_stored(const uint8_t *v, size_t vl, fj_buf *out, cl_err *err) {
  rd r = {v, v + vl, 0};
  fp_prov p;
  memset(&p, 0, sizeof p);
  const uint8_t *hdr = take(&r, VER_HDR), *fmt = take(&r, 1);
  if (hdr == NULL || fmt == NULL || *fmt != PROV_FORMAT)
    return cl_err_set(err, CL_ECORRUPT, "fhir: a stored Provenance of an unknown form");
  p.seq = rd64(hdr);
  p.committed_ns = (int64_t)rd64(hdr + 8);
  p.event_id = hdr + 16;
  p.stream_version = take_be(&r, 8);
  p.event_type = (uint32_t)take_be(&r, 4);
  p.body_case = (uint32_t)take_be(&r, 4);
  p.event_hash = take(&r, 32);
  const uint8_t *flags = take(&r, 1);
  uint8_t f = flags ? *flags : 0;
  if (f & HAS_OCCURRED) {
    p.has_occurred = 1;
    p.occ_sec = (int64_t)take_be(&r, 8);
    p.occ_nanos = (int32_t)(uint32_t)take_be(&r, 4);
  }
  if (f & HAS_BATCH) {
    p.has_batch = 1;
    p.batch_index = (uint32_t)take_be(&r, 4);
    p.batch_size = (uint32_t)take_be(&r, 4);
  }
  const char **strs[NSTR] = {&p.pid, &p.obo, &p.role, &p.ss, &p.smid, &p.device};
  for (int i = 0; i < NSTR; i++)
    *strs[i] = take_str(&r);
  if (f & HAS_SIG) {
    p.sig_len = (size_t)take_be(&r, 4);
    p.sig = take(&r, p.sig_len);
    p.key_id_len = (size_t)take_be(&r, 4);
    p.key_id = take(&r, p.key_id_len);
  }
  size_t nt = (size_t)take_be(&r, 2);
  fp_target *t = r.bad ? NULL : cl_calloc(nt ? nt : 1, sizeof *t);
  if (t == NULL && !r.bad)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  for (size_t i = 0; !r.bad && i < nt; i++) {
    const uint8_t *ty = take(&r, 1);
    t[i].version = (uint32_t)take_be(&r, 4);
    const uint8_t *l = take(&r, 1);
    const uint8_t *id = l != NULL && *l < CL_FHIR_ID_MAX ? take(&r, *l) : (r.bad = 1, NULL);
    if (!r.bad) {
      t[i].type = *ty;
      memcpy(t[i].id, id, *l);
      t[i].id[*l] = '\0';
      if (cl_fhir_type_name(t[i].type) == NULL)
        r.bad = 1;
    }
  }
  if (r.bad || r.p != r.end) {
    cl_free(t);
    return cl_err_set(err, CL_ECORRUPT, "fhir: a stored Provenance is malformed");
  }
  render(out, &p, t, nt);
  sodium_memzero(t, (nt ? nt : 1) * sizeof *t);
  cl_free(t);
  return out->oom ? cl_err_set(err, CL_ENOMEM, "out of memory") : 0;
}

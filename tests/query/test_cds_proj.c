/* The cds projection (query/cds/proj.c) and the checker state's bytes
 * (query/cds/check_state.c): a state survives serialize/parse and checks
 * alike; the fold puts findings into pending, an IssueDetected with the
 * finding's key moves it to emitted, a replay or a second append adds
 * nothing, an erasure forgets the patient, and a rebuild equals the live
 * state byte for byte. */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "query/cds/check.h"
#include "query/cds/proj.h"
#include "store/event.h"
#include "store/keyring.h"
#include "store/logkey.h"
#include "tests/query/fhir_fixture.h"
#include "tests/support/testutil.h"

#define RX CL_KB_RXNORM
#define WARFARIN "11289"
#define IBUPROFEN "5640"
#define NS 1000000000ll
#define T0 (1767225600ll * NS) /* 2026-01-01 */

static char *S(const char *s) { return strdup(s ? s : ""); }

/* A MedicationPrescribed of `c` (RxNorm) in `stream`, recorded by admin,
 * packed (returned-owned, free()). */
static uint8_t *prescribed(const char *stream, const char *rxid, const char *c, int64_t at,
                           uint8_t id[16], size_t *len) {
  Clinlog__V1__Event *e = calloc(1, sizeof *e);
  clinlog__v1__event__init(e);
  e->stream = S(stream);
  cl_uuid_v4(id);
  e->event_id.len = 16;
  e->event_id.data = malloc(16);
  memcpy(e->event_id.data, id, 16);
  e->occurred_at = malloc(sizeof *e->occurred_at);
  google__protobuf__timestamp__init(e->occurred_at);
  e->occurred_at->seconds = at / NS;
  e->recorded_by = malloc(sizeof *e->recorded_by);
  clinlog__v1__recorded_by__init(e->recorded_by);
  e->recorded_by->principal_id = S("admin");
  e->recorded_by->role = S("admin");
  Clinlog__V1__MedicationPrescribed *p = malloc(sizeof *p);
  clinlog__v1__medication_prescribed__init(p);
  p->prescription_id = S(rxid);
  p->medication = malloc(sizeof *p->medication);
  clinlog__v1__codeable_concept__init(p->medication);
  p->medication->n_coding = 1;
  p->medication->coding = malloc(sizeof *p->medication->coding);
  p->medication->coding[0] = malloc(sizeof **p->medication->coding);
  clinlog__v1__code__init(p->medication->coding[0]);
  p->medication->coding[0]->system = S(RX);
  p->medication->coding[0]->code = S(c);
  e->body_case = CLINLOG__V1__EVENT__BODY_MEDICATION_PRESCRIBED;
  e->medication_prescribed = p;
  uint8_t *b = cl_test_pack_event(e, len);
  protobuf_c_message_free_unpacked(&e->base, NULL);
  return b;
}

static uint64_t append_rx(cl_log *log, const cl_signer *admin, const char *stream, const char *rxid,
                          const char *c, int64_t at, uint8_t id[16]) {
  size_t len;
  uint8_t *b = prescribed(stream, rxid, c, at, id, &len);
  cl_append_result r;
  cl_err err;
  cr_assert_eq(cl_test_append(log, admin, &b, &len, 1, 1, NULL, 0, 0, &r, &err), 0, "%s", err.msg);
  uint64_t seq = r.seq[0];
  cl_append_result_free(&r);
  free(b);
  return seq;
}

static cl_kb *kb;
static cl_projection def;
static void rebuild_equals_live(cl_runner *run, cl_log *log);

static void setup(void) {
  cl_err err = {0};
  cr_assert_eq(cl_kb_seed(&kb, &err), 0, "%s", err.msg);
  cl_cds_projection_init(&def, kb);
}
static void teardown(void) { cl_kb_free(kb); }

static cl_runner *start(cl_log *log) {
  cl_runner_options ro;
  cl_runner_options_init(&ro);
  ro.linger_ms = 0;
  ro.batch_events = 3; /* batches end between a trigger and its IssueDetected */
  cl_runner *r;
  cl_err err;
  cr_assert_eq(cl_runner_start(log, &def, &ro, &r, &err), 0, "%s", err.msg);
  return r;
}

/* What the emitter does: sign each pending event with the log key, append. */
typedef struct emit {
  cl_log *log;
  size_t n;
  uint8_t keys[8][16];
  uint64_t seqs[8];
} emit;

static int emit_one(void *ctx, const uint8_t key[16], const uint8_t *ev, size_t n, cl_err *err) {
  emit *e = ctx;
  cl_node_batch nb;
  int rc = cl_log_node_batch_bytes(e->log, ev, n, &nb, err);
  if (rc)
    return rc;
  cl_append_result r;
  rc = cl_log_append(e->log, &nb.b, &r, err);
  cl_node_batch_free(&nb);
  if (rc)
    return rc;
  if (e->n < 8) {
    memcpy(e->keys[e->n], key, 16);
    e->seqs[e->n] = r.seq[0];
  }
  e->n++;
  cl_append_result_free(&r);
  return 0;
}

static void counts(cl_runner *run, uint64_t want_pending, uint64_t want_emitted) {
  uint64_t p, e;
  cl_err err;
  cr_assert_eq(cl_cds_counts(cl_runner_proj(run), &p, &e, &err), 0, "%s", err.msg);
  cr_assert_eq(p, want_pending, "pending %llu, expected %llu", (unsigned long long)p,
               (unsigned long long)want_pending);
  cr_assert_eq(e, want_emitted, "emitted %llu, expected %llu", (unsigned long long)e,
               (unsigned long long)want_emitted);
}

/* Stops the runner, closes the log, checks that none of the canaries (a
 * NULL-terminated list) is anywhere on disk in plaintext, and cleans up. */
static void finish(cl_runner *run, cl_log *log, char *dir, cl_signer *admin,
                   const char *const *canaries) {
  cl_runner_stop(run);
  cl_log_close(log);
  for (size_t i = 0; canaries[i]; i++)
    cr_assert_not(cl_test_tree_contains(dir, canaries[i], strlen(canaries[i])), "%s on disk",
                  canaries[i]);
  cl_signer_free(admin);
  cl_test_rmtree(dir);
  free(dir);
}

TestSuite(cds_proj, .init = setup, .fini = teardown);

Test(cds_proj, state_round_trip) {
  cl_err err = {0};
  cl_cds_patient *st, *back;
  cr_assert_eq(cl_cds_patient_new("P1", &st, &err), 0);
  cl_cds_patient_set_weight(st, 72.5);
  cr_assert_eq(cl_cds_patient_add_id(st, "MRN-1", &err), 0);
  cl_cds_findings *F = calloc(1, sizeof *F);
  uint8_t id[16] = {1};
  size_t len;
  for (int i = 0; i < 3; i++) {
    uint8_t *b = prescribed("patient-P1", i ? "rx2" : "rx1", i ? IBUPROFEN : WARFARIN, T0 + i * NS,
                            id, &len);
    Clinlog__V1__Event *e;
    cr_assert_eq(cl_event_decode(b, len, &e, &err), 0, "%s", err.msg);
    cr_assert_eq(cl_cds_apply(kb, st, e, id, T0 + i * NS, F, &err), 0, "%s", err.msg);
    clinlog__v1__event__free_unpacked(e, NULL);
    free(b);
  }
  uint8_t *a, *b2;
  size_t an, bn;
  cr_assert_eq(cl_cds_patient_serialize(st, &a, &an, &err), 0);
  cr_assert_eq(cl_cds_patient_parse(a, an, &back, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_cds_patient_serialize(back, &b2, &bn, &err), 0);
  cr_assert_eq(an, bn);
  cr_assert_arr_eq(a, b2, an, "parse(serialize(s)) serializes the same");
  size_t o1, a1, l1, d1, o2, a2, l2, d2;
  cl_cds_patient_counts(st, T0, &o1, &a1, &l1, &d1);
  cl_cds_patient_counts(back, T0, &o2, &a2, &l2, &d2);
  cr_assert(o1 == o2 && a1 == a2 && l1 == l2 && d1 == d2 && o1 == 2);
  /* the parsed state checks alike: a third NSAID alerts against warfarin */
  uint8_t *b = prescribed("patient-P1", "rx3", "1191", T0 + 5 * NS, id, &len); /* aspirin */
  Clinlog__V1__Event *e;
  cr_assert_eq(cl_event_decode(b, len, &e, &err), 0);
  cl_cds_findings *G = calloc(1, sizeof *G);
  cr_assert_eq(cl_cds_apply(kb, st, e, id, T0 + 5 * NS, F, &err), 0);
  cr_assert_eq(cl_cds_apply(kb, back, e, id, T0 + 5 * NS, G, &err), 0);
  cr_assert_eq(F->n, G->n);
  cr_assert_gt(F->n, 0);
  for (size_t i = 0; i < F->n; i++)
    cr_assert_arr_eq(F->f[i].key, G->f[i].key, 16);
  clinlog__v1__event__free_unpacked(e, NULL);
  free(b);
  /* every truncation and a flipped version refuse cleanly */
  for (size_t cut = 0; cut < an; cut++) {
    cl_cds_patient *x = NULL;
    cr_assert_eq(cl_cds_patient_parse(a, cut, &x, &err), CL_ECORRUPT, "cut at %zu", cut);
  }
  a[0] ^= 0x40;
  cl_cds_patient *x = NULL;
  cr_assert_eq(cl_cds_patient_parse(a, an, &x, &err), CL_ECORRUPT);
  free(a);
  free(b2);
  free(F);
  free(G);
  cl_cds_patient_free(st);
  cl_cds_patient_free(back);
}

Test(cds_proj, pending_then_emitted_and_rebuild) {
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("cds_proj", &dir, &admin, 0);
  cl_runner *run = start(log);
  uint8_t w[16], ibu[16];
  append_rx(log, &admin, "patient-CANARYPAT", "rx1", WARFARIN, T0, w);
  append_rx(log, &admin, "patient-CANARYPAT", "rx2", IBUPROFEN, T0 + NS, ibu);
  append_rx(log, &admin, "patient-OTHER", "rx1", IBUPROFEN, T0, w); /* alone: nothing */
  fx_wait_head(run, log);
  counts(run, 1, 0);

  /* the emitter appends it, event id = the finding's key */
  emit em = {.log = log};
  cl_err err;
  cr_assert_eq(cl_cds_pending(cl_runner_proj(run), 0, emit_one, &em, &err), 0, "%s", err.msg);
  cr_assert_eq(em.n, 1);
  fx_wait_head(run, log);
  counts(run, 0, 1);
  uint64_t head = cl_feed_size(cl_log_feed(log));

  /* the IssueDetected in the log: the right rule, implicated, cause */
  cr_assert_eq(em.seqs[0], head);

  /* a second append of the same pending bytes (a leader change) is a
   * no-op: same seq, no new event */
  emit em2 = {.log = log};
  cr_assert_eq(cl_cds_pending(cl_runner_proj(run), 0, emit_one, &em2, &err), 0);
  cr_assert_eq(em2.n, 0, "nothing pending after the emission");

  /* a rebuild folds the same events: the finding meets its IssueDetected,
   * nothing is pending again, and the state is the live one byte for byte */
  uint8_t live[32], rebuilt[32];
  uint64_t nl = cl_test_proj_digest(cl_runner_proj(run), live);
  cr_assert_eq(cl_runner_rebuild(run, &err), 0, "%s", err.msg);
  fx_wait_head(run, log);
  uint64_t nr = cl_test_proj_digest(cl_runner_proj(run), rebuilt);
  cr_assert_eq(nl, nr);
  cr_assert_arr_eq(live, rebuilt, 32, "a rebuild gives the live state");
  counts(run, 0, 1);
  cr_assert_eq(cl_feed_size(cl_log_feed(log)), head, "the rebuild appended nothing");

  /* erasing the patient forgets its state and its emitted key */
  cl_test_erase(log, &admin, "patient-CANARYPAT");
  fx_wait_head(run, log);
  counts(run, 0, 0);
  nl = cl_test_proj_digest(cl_runner_proj(run), live);
  cr_assert_eq(cl_runner_rebuild(run, &err), 0, "%s", err.msg);
  fx_wait_head(run, log);
  nr = cl_test_proj_digest(cl_runner_proj(run), rebuilt);
  cr_assert_eq(nl, nr);
  cr_assert_arr_eq(live, rebuilt, 32, "after an erasure too");

  finish(run, log, dir, &admin, (const char *[]){"CANARYPAT", NULL});
}

Test(cds_proj, same_bytes_twice_is_one_event) {
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("cds_proj_idem", &dir, &admin, 0);
  cl_runner *run = start(log);
  uint8_t w[16], ibu[16];
  append_rx(log, &admin, "patient-P2", "rx1", WARFARIN, T0, w);
  append_rx(log, &admin, "patient-P2", "rx2", IBUPROFEN, T0 + NS, ibu);
  fx_wait_head(run, log);
  cl_runner_pause(run); /* the emission is not folded yet: still pending */
  emit a = {.log = log}, b = {.log = log};
  cl_err err;
  cr_assert_eq(cl_cds_pending(cl_runner_proj(run), 0, emit_one, &a, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_cds_pending(cl_runner_proj(run), 0, emit_one, &b, &err), 0, "%s", err.msg);
  cr_assert_eq(a.n, 1);
  cr_assert_eq(b.n, 1, "still pending: emitted again (a new leader)");
  cr_assert_eq(a.seqs[0], b.seqs[0], "the second append returns the first's seq");
  cr_assert_eq(cl_feed_size(cl_log_feed(log)), a.seqs[0], "one IssueDetected in the log");
  cl_runner_resume(run);
  fx_wait_head(run, log);
  counts(run, 0, 1);
  finish(run, log, dir, &admin, (const char *[]){NULL});
}

/* More patients than the fold's cache keeps between batches (4096):
 * states it forgot are read back, so each patient's second order still
 * meets its first; and a rebuild gives the live state. */
Test(cds_proj, more_patients_than_the_cache_holds, .timeout = 120) {
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("cds_proj_many", &dir, &admin, 0);
  cl_runner_options ro;
  cl_runner_options_init(&ro);
  ro.linger_ms = 0;
  ro.batch_events = 256;
  cl_runner *run;
  cl_err err;
  cr_assert_eq(cl_runner_start(log, &def, &ro, &run, &err), 0, "%s", err.msg);
  enum { PATIENTS = 4600 };
  uint8_t id[16];
  char stream[32];
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < PATIENTS; i++) {
      snprintf(stream, sizeof stream, "patient-M%d", i);
      append_rx(log, &admin, stream, pass ? "rx2" : "rx1", pass ? IBUPROFEN : WARFARIN,
                T0 + pass * NS, id);
    }
  fx_wait_head(run, log);
  counts(run, PATIENTS, 0); /* warfarin then ibuprofen: one finding each */
  rebuild_equals_live(run, log);
  counts(run, PATIENTS, 0);
  finish(run, log, dir, &admin, (const char *[]){NULL});
}

/* Cds.CheckOrder's read: the committed state of one patient, and its position */
Test(cds_proj, patient_load_gives_the_committed_state) {
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("cds_proj", &dir, &admin, 0);
  cl_runner *run = start(log);
  uint8_t w[16];
  append_rx(log, &admin, "patient-LOAD1", "rx1", WARFARIN, T0, w);
  fx_wait_head(run, log);
  cl_err err;
  cl_cds_patient *st = NULL;
  uint64_t pos = 0;
  cr_assert_eq(cl_cds_patient_load(cl_runner_proj(run), log, "LOAD1", &st, &pos, &err), 0, "%s",
               err.msg);
  cr_assert_eq(pos, cl_feed_size(cl_log_feed(log)));
  size_t orders, active, allergies, admins;
  cl_cds_patient_counts(st, T0 + NS, &orders, &active, &allergies, &admins);
  cr_assert_eq(orders, 1);
  cr_assert_eq(active, 1);
  cl_cds_patient_free(st);
  /* a patient with nothing on record: an empty state */
  cr_assert_eq(cl_cds_patient_load(cl_runner_proj(run), log, "NOBODY", &st, NULL, &err), 0, "%s",
               err.msg);
  cl_cds_patient_counts(st, T0 + NS, &orders, &active, &allergies, &admins);
  cr_assert_eq(orders, 0);
  cl_cds_patient_free(st);
  cr_assert_eq(cl_cds_patient_load(cl_runner_proj(run), log, "", &st, NULL, &err), CL_EINVAL);
  finish(run, log, dir, &admin, (const char *[]){NULL});
}

/* ------------------------------------------- remote patient monitoring */

/* A DeviceReadingRecorded of one LOINC value from `device`, appended by
 * admin (the fhir fixture's JSON path); its event id to id. */
static uint64_t append_reading(cl_log *log, const cl_signer *admin, const char *stream,
                               const char *device, const char *loinc, const char *value,
                               const char *unit, int64_t at, uint8_t id[16]) {
  char body[512];
  snprintf(body, sizeof body,
           "{\"deviceReadingRecorded\": {\"deviceId\": \"%s\", \"code\": {\"coding\": "
           "[{\"system\": \"http://loinc.org\", \"code\": \"%s\"}]}, \"value\": "
           "{\"value\": \"%s\", \"unit\": \"%s\"}}}",
           device, loinc, value, unit);
  json_t *ev = fx_event(stream, body);
  char ts[32];
  time_t sec = (time_t)(at / NS);
  strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", gmtime(&sec));
  json_object_set_new(ev, "occurredAt", json_string(ts));
  size_t n;
  cr_assert_eq(sodium_base642bin(id, 16, json_string_value(json_object_get(ev, "eventId")), 24,
                                 NULL, &n, NULL, sodium_base64_VARIANT_ORIGINAL),
               0);
  uint64_t seq = fx_append_json(log, admin, ev);
  json_decref(ev);
  return seq;
}

static int decode_one(void *ctx, const cl_event_view *ev, cl_err *err) {
  return cl_event_decode(ev->event, ev->event_len, (Clinlog__V1__Event **)ctx, err);
}

static size_t silence(cl_runner *run, cl_cds_silence *out, size_t max) {
  size_t n;
  cl_err err;
  cr_assert_eq(cl_cds_silence_index(cl_runner_proj(run), out, max, &n, &err), 0, "%s", err.msg);
  return n;
}

static void rebuild_equals_live(cl_runner *run, cl_log *log) {
  uint8_t live[32], rebuilt[32];
  cl_err err;
  uint64_t head = cl_feed_size(cl_log_feed(log));
  uint64_t nl = cl_test_proj_digest(cl_runner_proj(run), live);
  cr_assert_eq(cl_runner_rebuild(run, &err), 0, "%s", err.msg);
  fx_wait_head(run, log);
  uint64_t nr = cl_test_proj_digest(cl_runner_proj(run), rebuilt);
  cr_assert_eq(nl, nr);
  cr_assert_arr_eq(live, rebuilt, 32, "a rebuild gives the live state");
  cr_assert_eq(cl_feed_size(cl_log_feed(log)), head, "the rebuild appended nothing");
}

Test(cds_proj, rpm_alerts_and_the_silence_index) {
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("cds_proj_rpm", &dir, &admin, 0);
  cl_runner *run = start(log);
  const char *pat = "patient-CANARYRPM", *dev = "dev-CANARYDEV";
  uint8_t r1[16], r2[16], r3[16];
  append_reading(log, &admin, pat, dev, "8480-6", "190", "mm[Hg]", T0, r1);
  append_reading(log, &admin, pat, dev, "8480-6", "195", "mm[Hg]", T0 + 60 * NS, r2);
  fx_wait_head(run, log);
  counts(run, 1, 0); /* one alert for two high readings */
  cl_cds_silence ix[4];
  cr_assert_eq(silence(run, ix, 4), 1, "one armed watch");
  cr_assert_eq(ix[0].deadline_ns, (uint64_t)(T0 + 60 * NS + 86400 * NS));

  emit em = {.log = log};
  cl_err err;
  cr_assert_eq(cl_cds_pending(cl_runner_proj(run), 0, emit_one, &em, &err), 0, "%s", err.msg);
  cr_assert_eq(em.n, 1);
  fx_wait_head(run, log);
  counts(run, 0, 1);

  /* before the deadline nothing is due; after it, one DEVICE_SILENT */
  emit sil = {.log = log};
  cr_assert_eq(cl_cds_silent_due(cl_runner_proj(run), T0 + 86400 * NS, 0, emit_one, &sil, &err), 0,
               "%s", err.msg);
  cr_assert_eq(sil.n, 0);
  cr_assert_eq(cl_cds_silent_due(cl_runner_proj(run), T0 + 2 * 86400 * NS, 0, emit_one, &sil, &err),
               0, "%s", err.msg);
  cr_assert_eq(sil.n, 1);
  fx_wait_head(run, log);
  counts(run, 0, 2);
  cr_assert_eq(silence(run, ix, 4), 0, "silent: no watch");
  /* the IssueDetected: kind DEVICE_SILENT, implicating the last contact */
  uint64_t head = cl_feed_size(cl_log_feed(log));
  cr_assert_eq(sil.seqs[0], head);
  Clinlog__V1__Event *e = NULL;
  cr_assert_eq(cl_log_read_seq(log, head, decode_one, &e, &err), 0, "%s", err.msg);
  cr_assert_not_null(e);
  cr_assert_eq(e->body_case, CLINLOG__V1__EVENT__BODY_ISSUE_DETECTED);
  cr_assert_eq(e->issue_detected->kind, CLINLOG__V1__ISSUE_KIND__ISSUE_KIND_DEVICE_SILENT);
  cr_assert_str_eq(e->issue_detected->rule_id, "device-silent:86400");
  cr_assert_arr_eq(e->issue_detected->implicated[0]->event_id.data, r2, 16);
  cr_assert_eq(e->occurred_at->seconds, (T0 + 60 * NS) / NS + 86400, "at the deadline");
  clinlog__v1__event__free_unpacked(e, NULL);
  /* due again: nothing (not armed); a second append of the same bytes is a no-op */
  emit again = {.log = log};
  cr_assert_eq(cl_cds_silent_due(cl_runner_proj(run), INT64_MAX, 0, emit_one, &again, &err), 0);
  cr_assert_eq(again.n, 0);
  rebuild_equals_live(run, log);
  cr_assert_eq(silence(run, ix, 4), 0, "rebuilt: still silent");

  /* the device reports again: re-armed, and in range: nothing pending */
  append_reading(log, &admin, pat, dev, "8480-6", "120", "mm[Hg]", T0 + 3 * 86400 * NS, r3);
  fx_wait_head(run, log);
  counts(run, 0, 2);
  cr_assert_eq(silence(run, ix, 4), 1);
  cr_assert_eq(ix[0].deadline_ns, (uint64_t)(T0 + 4 * 86400 * NS));
  rebuild_equals_live(run, log);

  /* erasing the patient drops its watch */
  cl_test_erase(log, &admin, pat);
  fx_wait_head(run, log);
  cr_assert_eq(silence(run, ix, 4), 0);
  counts(run, 0, 0);
  finish(run, log, dir, &admin, (const char *[]){"CANARYRPM", "CANARYDEV", NULL});
}

/* NEWS2 on the log through the projection: a respiration rate of 30 from a
 * device gives one pending EARLY_WARNING, appended as the emitter does; a
 * second in the same band nothing; a rebuild equals the live state and
 * appends nothing (the same findings under the same keys). */
/* The projection over a KB with a news2 line (window 1 h), on a new log. */
static cl_runner *news2_start(const char *name, char **dir, cl_signer *admin, cl_log **log) {
  static const char text[] = "clinlog-kb 1\nversion t\nsource rcp RCP NEWS2 2017\n"
                             "news2 3600 high source=rcp\n";
  cl_err err = {0};
  cl_kb_free(kb);
  cr_assert_eq(cl_kb_parse(text, strlen(text), "t.kb", &kb, &err), 0, "%s", err.msg);
  cl_cds_projection_init(&def, kb);
  *log = cl_test_log_new(name, dir, admin, 0);
  return start(*log);
}

Test(cds_proj, news2_early_warning_and_rebuild) {
  cl_err err = {0};
  char *dir;
  cl_signer admin;
  cl_log *log;
  cl_runner *run = news2_start("cds_proj_news2", &dir, &admin, &log);
  const char *pat = "patient-CANARYEWS";
  uint8_t r1[16], r2[16];
  append_reading(log, &admin, pat, "ox-1", "9279-1", "30", "/min", T0, r1);
  fx_wait_head(run, log);
  counts(run, 1, 0);
  emit em = {.log = log};
  cr_assert_eq(cl_cds_pending(cl_runner_proj(run), 0, emit_one, &em, &err), 0, "%s", err.msg);
  cr_assert_eq(em.n, 1);
  fx_wait_head(run, log);
  counts(run, 0, 1);
  Clinlog__V1__Event *e = NULL;
  cr_assert_eq(cl_log_read_seq(log, em.seqs[0], decode_one, &e, &err), 0, "%s", err.msg);
  cr_assert_eq(e->issue_detected->kind, CLINLOG__V1__ISSUE_KIND__ISSUE_KIND_EARLY_WARNING);
  cr_assert_str_eq(e->issue_detected->rule_id, "news2:low-medium");
  cr_assert_arr_eq(e->issue_detected->implicated[0]->event_id.data, r1, 16);
  clinlog__v1__event__free_unpacked(e, NULL);
  append_reading(log, &admin, pat, "ox-1", "9279-1", "28", "/min", T0 + 60 * NS, r2);
  fx_wait_head(run, log);
  counts(run, 0, 1); /* the same band: nothing new */
  rebuild_equals_live(run, log);
  counts(run, 0, 1);
  finish(run, log, dir, &admin, (const char *[]){"CANARYEWS", NULL});
}

/* A JSON event body in `stream` at `at`, appended by admin. */
static void append_body(cl_log *log, const cl_signer *admin, const char *stream, const char *body,
                        int64_t at) {
  json_t *ev = fx_event(stream, body);
  char ts[32];
  time_t sec = (time_t)(at / NS);
  strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", gmtime(&sec));
  json_object_set_new(ev, "occurredAt", json_string(ts));
  (void)fx_append_json(log, admin, ev);
  json_decref(ev);
}

/* A complete NEWS2 set is stored: one pending ObservationRecorded (by $log,
 * SNOMED CT NEWS2 total, seven components), which folds as emitted, and a
 * rebuild appends nothing. */
Test(cds_proj, news2_score_stored_once) {
  cl_err err = {0};
  char *dir;
  cl_signer admin;
  cl_log *log;
  cl_runner *run = news2_start("cds_proj_news2s", &dir, &admin, &log);
  const char *pat = "patient-CANARYSCORE";
  static const char *const q[][3] = {{"9279-1", "16", "/min"},   {"59408-5", "97", "%"},
                                     {"3151-8", "0", "L/min"},   {"8480-6", "120", "mm[Hg]"},
                                     {"8867-4", "70", "/min"},   {"8310-5", "37.0", "Cel"}};
  uint8_t id[16];
  for (size_t i = 0; i < sizeof q / sizeof q[0]; i++)
    append_reading(log, &admin, pat, "mon-1", q[i][0], q[i][1], q[i][2], T0 + (int64_t)i * NS, id);
  fx_wait_head(run, log);
  counts(run, 0, 0); /* six of seven: no score */
  append_body(log, &admin, pat,
              "{\"observationRecorded\": {\"observationId\": \"avpu-1\", \"code\": {\"coding\": "
              "[{\"system\": \"http://loinc.org\", \"code\": \"67775-7\"}]}, \"codeValue\": "
              "{\"system\": \"urn:clinlog:acvpu\", \"code\": \"A\"}, \"status\": "
              "\"OBSERVATION_STATUS_FINAL\"}}",
              T0 + 10 * NS);
  fx_wait_head(run, log);
  counts(run, 1, 0);
  emit em = {.log = log};
  cr_assert_eq(cl_cds_pending(cl_runner_proj(run), 0, emit_one, &em, &err), 0, "%s", err.msg);
  cr_assert_eq(em.n, 1);
  fx_wait_head(run, log);
  counts(run, 0, 1);
  Clinlog__V1__Event *e = NULL;
  cr_assert_eq(cl_log_read_seq(log, em.seqs[0], decode_one, &e, &err), 0, "%s", err.msg);
  cr_assert_eq(e->body_case, CLINLOG__V1__EVENT__BODY_OBSERVATION_RECORDED);
  cr_assert_str_eq(e->recorded_by->principal_id, CL_LOG_PRINCIPAL);
  cr_assert_str_eq(e->source_system, CL_CDS_SOURCE_SYSTEM);
  cr_assert_str_eq(e->stream, pat);
  cr_assert_arr_eq(e->event_id.data, em.keys[0], 16);
  cr_assert_str_eq(e->observation_recorded->code->coding[0]->code, CL_SNOMED_NEWS2_TOTAL);
  cr_assert_str_eq(e->observation_recorded->quantity->value, "0");
  cr_assert_eq(e->observation_recorded->n_components, 7);
  cr_assert_eq(e->occurred_at->seconds, T0 / NS + 10);
  clinlog__v1__event__free_unpacked(e, NULL);
  /* its own ObservationRecorded is not a vital: nothing new; a rebuild
   * meets it and appends nothing */
  append_reading(log, &admin, pat, "mon-1", "8867-4", "71", "/min", T0 + 20 * NS, id);
  fx_wait_head(run, log);
  counts(run, 0, 1);
  rebuild_equals_live(run, log);
  counts(run, 0, 1);
  finish(run, log, dir, &admin, (const char *[]){"CANARYSCORE", NULL});
}

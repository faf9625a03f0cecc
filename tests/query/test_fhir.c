/* The FHIR projection (query/fhir/fhir.c) through a real log and runner:
 * versions and meta, vread and history, the Provenance of every version
 * with its log coordinates, corrections (EnteredInError, Amended), erasure
 * (a patient vanishes from every view and index), rebuilt equals live byte
 * for byte, and no plaintext on disk. The events are the golden cases of
 * test_fhir_map.c (tests/query/fhir/cases). */
#include <criterion/criterion.h>
#include <ctype.h>
#include <dirent.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapters/pbjson/pbjson.h"
#include "query/fhir/fhir.h"
#include "query/fhir/fj.h"
#include "query/fhir/group.h"
#include "query/runner.h"
#include "store/event.h"
#include "store/record.h"
#include "tests/query/fhir_fixture.h"
#include "tests/support/testutil.h"

static json_t *read_json(cl_runner *r, const char *type, const char *id, uint32_t version,
                         cl_fhir_resource *meta) {
  cl_fhir_resource res;
  cl_err err;
  int rc = cl_fhir_read(cl_runner_proj(r), type, id, version, &res, &err);
  if (rc == CL_ENOTFOUND)
    return NULL;
  cr_assert_eq(rc, 0, "%s", err.msg);
  json_error_t je;
  json_t *j = json_loadb(res.json, res.len, 0, &je);
  cr_assert_not_null(j, "%s/%s is JSON: %s", type, id, je.text);
  if (meta != NULL) {
    *meta = res;
    meta->json = NULL;
  }
  cl_fhir_resource_clear(&res);
  return j;
}

static const char *jstr(json_t *j, const char *path) {
  /* "a.b.0.c" */
  char buf[256];
  snprintf(buf, sizeof buf, "%s", path);
  json_t *cur = j;
  for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, ".")) {
    if (json_is_array(cur))
      cur = json_array_get(cur, (size_t)atoi(tok));
    else
      cur = json_object_get(cur, tok);
  }
  return json_string_value(cur);
}

/* Stops the runner, closes the log and removes its directory. */
static void done(cl_runner *r, cl_log *log, cl_signer *admin, char *dir) {
  cl_runner_stop(r);
  cl_log_close(log);
  cl_signer_free(admin);
  cl_test_rmtree(dir);
  free(dir);
}

typedef struct collected {
  json_t *list;
} collected;

static int collect(void *ctx, cl_fhir_resource *r, cl_err *err) {
  (void)err;
  collected *c = ctx;
  json_t *j = json_loadb(r->json, r->len, 0, NULL);
  cr_assert_not_null(j);
  json_array_append_new(c->list, j);
  cl_fhir_resource_clear(r);
  return 0;
}

Test(fhir, versions_history_and_provenance, .timeout = 120) {
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("fhirv", &dir, &admin, 1000);
  json_t *evs = fx_load_case("patient");
  uint64_t seqs[16];
  size_t n = json_array_size(evs);
  for (size_t i = 0; i < n; i++)
    seqs[i] = fx_append_json(log, &admin, json_array_get(evs, i));
  cl_runner *r = fx_start(log);
  fx_wait_head(r, log);

  /* registration + demographics update: two versions */
  cl_fhir_resource meta;
  json_t *p = read_json(r, "Patient", "1001", 0, &meta);
  cr_assert_not_null(p);
  cr_assert_str_eq(jstr(p, "meta.versionId"), "2");
  cr_assert_eq(meta.version, 2);
  cr_assert_eq(meta.seq, seqs[2], "version 2 came from the update");
  cr_assert_str_eq(jstr(p, "address.0.city"), "Cambridge");
  cr_assert_null(json_object_get(p, "telecom"), "a named, empty field clears it");
  cr_assert_str_eq(jstr(p, "name.0.family"), "Okafor", "unnamed fields stay");
  json_t *p1 = read_json(r, "Patient", "1001", 1, NULL);
  cr_assert_str_eq(jstr(p1, "meta.versionId"), "1");
  cr_assert_str_eq(jstr(p1, "address.0.city"), "Boston", "vread gives the old version");
  cr_assert_null(read_json(r, "Patient", "1001", 3, NULL), "no version 3");
  cr_assert_null(read_json(r, "Patient", "nobody", 0, NULL));

  collected h = {json_array()};
  cl_err err;
  cr_assert_eq(cl_fhir_history(cl_runner_proj(r), "Patient", "1001", 0, collect, &h, &err), 0, "%s",
               err.msg);
  cr_assert_eq(json_array_size(h.list), 2);
  cr_assert_str_eq(jstr(h.list, "0.meta.versionId"), "2", "newest first");
  cr_assert_str_eq(jstr(h.list, "1.meta.versionId"), "1");
  json_decref(h.list);

  /* the Provenance of the Encounter's versions: the start and the end */
  const char *enc = "afc18e276d470a0fd2a48a40e071a86c";
  json_t *e = read_json(r, "Encounter", enc, 0, NULL);
  cr_assert_not_null(e);
  cr_assert_str_eq(jstr(e, "status"), "finished");
  cr_assert_str_eq(jstr(e, "meta.versionId"), "2");
  json_decref(e);
  collected pv = {json_array()};
  cr_assert_eq(cl_fhir_provenance_of(cl_runner_proj(r), "Encounter", enc, 0, collect, &pv, &err), 0,
               "%s", err.msg);
  cr_assert_eq(json_array_size(pv.list), 2, "one Provenance per event that changed it");
  int seen_end = 0;
  for (size_t i = 0; i < 2; i++) {
    json_t *prov = json_array_get(pv.list, i);
    const char *target = jstr(prov, "target.0.reference");
    cr_assert_not_null(target);
    const char *seq = NULL;
    json_t *ext = json_object_get(json_array_get(json_object_get(prov, "entity"), 0), "extension");
    json_t *coords = json_object_get(json_array_get(ext, 0), "extension");
    for (size_t k = 0; k < json_array_size(coords); k++)
      if (strcmp(json_string_value(json_object_get(json_array_get(coords, k), "url")), "seq") == 0)
        seq = json_string_value(json_object_get(json_array_get(coords, k), "valueString"));
    cr_assert_not_null(seq, "the Provenance names the event's seq");
    char want[32];
    if (strstr(target, "/_history/2")) {
      snprintf(want, sizeof want, "%llu", (unsigned long long)seqs[3]);
      cr_assert_str_eq(seq, want, "version 2 came from EncounterEnded");
      seen_end = 1;
    } else {
      snprintf(want, sizeof want, "%llu", (unsigned long long)seqs[1]);
      cr_assert_str_eq(seq, want);
    }
    cr_assert_str_eq(jstr(prov, "agent.0.who.identifier.value"), "admin");
    cr_assert_not_null(jstr(prov, "signature.0.data"), "per-event signatures travel along");
  }
  cr_assert(seen_end);
  json_decref(pv.list);
  json_decref(p);
  json_decref(p1);
  json_decref(evs);
  done(r, log, &admin, dir);
}

static int grab_id(void *ctx, const cl_event_view *ev, cl_err *err) {
  (void)err;
  memcpy(ctx, ev->event_id, 16);
  return 1;
}

static void event_id_b64(cl_log *log, uint64_t seq, char out[32]) {
  uint8_t id[16];
  cl_err err;
  cr_assert_eq(cl_log_read_all(log, seq, 1, grab_id, id, &err), 0, "%s", err.msg);
  sodium_bin2base64(out, 32, id, 16, sodium_base64_VARIANT_ORIGINAL);
}

Test(fhir, corrections_make_new_versions, .timeout = 120) {
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("fhirc", &dir, &admin, 1000);
  json_t *evs = fx_load_case("patient");
  uint64_t seqs[16];
  for (size_t i = 0; i < json_array_size(evs); i++)
    seqs[i] = fx_append_json(log, &admin, json_array_get(evs, i));
  json_decref(evs);
  /* the encounter start was recorded in error */
  char eid[32], body[512];
  event_id_b64(log, seqs[1], eid);
  snprintf(body, sizeof body,
           "{\"enteredInError\": {\"correctedEventId\": \"%s\", \"correctedStream\": "
           "\"patient-1001\", \"reason\": \"wrong patient\"}}",
           eid);
  json_t *j = fx_event("patient-1001", body);
  uint64_t eie = fx_append_json(log, &admin, j);
  json_decref(j);
  /* the registration amended by a new registration that rewrites the
   * Patient: the Patient stays as the replacement wrote it */
  json_t *pr = fx_load_case("patient");
  json_t *reg = json_deep_copy(json_array_get(pr, 0));
  json_decref(pr);
  uint8_t nid[16];
  randombytes_buf(nid, 16);
  char nb[32];
  sodium_bin2base64(nb, sizeof nb, nid, 16, sodium_base64_VARIANT_ORIGINAL);
  json_object_set_new(reg, "eventId", json_string(nb));
  json_object_set_new(json_object_get(reg, "patientRegistered"), "birthDate",
                      json_string("1984-07-20"));
  fx_append_json(log, &admin, reg);
  json_decref(reg);
  char old[32];
  event_id_b64(log, seqs[0], old);
  snprintf(body, sizeof body,
           "{\"amended\": {\"amendedEventId\": \"%s\", \"replacementEventId\": \"%s\", "
           "\"reason\": \"typo\", \"summary\": \"birth date\"}}",
           old, nb);
  j = fx_event("patient-1001", body);
  fx_append_json(log, &admin, j);
  json_decref(j);

  cl_runner *r = fx_start(log);
  fx_wait_head(r, log);
  const char *enc = "afc18e276d470a0fd2a48a40e071a86c";
  cl_fhir_resource meta;
  json_t *e = read_json(r, "Encounter", enc, 0, &meta);
  cr_assert_str_eq(jstr(e, "status"), "entered-in-error");
  cr_assert_str_eq(jstr(e, "meta.versionId"), "3", "a new version; the old ones stay");
  cr_assert_eq(meta.seq, eie);
  json_t *e2 = read_json(r, "Encounter", enc, 2, NULL);
  cr_assert_str_eq(jstr(e2, "status"), "finished");
  json_t *p = read_json(r, "Patient", "1001", 0, NULL);
  cr_assert_str_eq(jstr(p, "birthDate"), "1984-07-20");
  cr_assert(json_is_true(json_object_get(p, "active")),
            "the replacement rewrote the Patient: the amendment does not retract it");
  cr_assert_str_eq(jstr(p, "meta.versionId"), "3");
  json_decref(p);
  json_decref(e);
  json_decref(e2);
  done(r, log, &admin, dir);
}

static int count(void *ctx, cl_fhir_resource *r, cl_err *err) {
  (void)err;
  (*(size_t *)ctx)++;
  cl_fhir_resource_clear(r);
  return 0;
}

/* An event that changes nothing makes no version, also when the fold
 * knows the current version by its digest alone (fold.c, content_digest:
 * every version after a resource's first). */
Test(fhir, an_update_that_changes_nothing_makes_no_version, .timeout = 120) {
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("fhirsame", &dir, &admin, 1000);
  json_t *evs = fx_load_case("patient");
  for (size_t i = 0; i < json_array_size(evs); i++)
    fx_append_json(log, &admin, json_array_get(evs, i));
  json_t *upd = json_array_get(evs, 2); /* demographics: the city becomes Cambridge */
  cr_assert_not_null(json_object_get(upd, "patientDemographicsUpdated"));
  json_t *again = fx_copy_event(upd, "patient-1001", NULL);
  fx_append_json(log, &admin, again); /* the same update: v2 stays */
  json_t *moved = fx_copy_event(upd, "patient-1001", NULL);
  json_t *addr = json_array_get(
      json_object_get(json_object_get(moved, "patientDemographicsUpdated"), "addresses"), 0);
  json_object_set_new(addr, "city", json_string("Somerville"));
  fx_append_json(log, &admin, moved); /* v3 */
  json_t *moved2 = fx_copy_event(moved, "patient-1001", NULL);
  fx_append_json(log, &admin, moved2); /* the same again: v3 stays */
  json_t *back = fx_copy_event(upd, "patient-1001", NULL);
  fx_append_json(log, &admin, back); /* back to Cambridge: v4 */
  json_t *ended = fx_copy_event(json_array_get(evs, 3), "patient-1001", NULL);
  fx_append_json(log, &admin, ended); /* the Encounter ended again: no version */
  cl_runner *r = fx_start(log);
  fx_wait_head(r, log);
  json_t *p = read_json(r, "Patient", "1001", 0, NULL);
  cr_assert_str_eq(jstr(p, "meta.versionId"), "4", "v1, Cambridge, Somerville, Cambridge");
  cr_assert_str_eq(jstr(p, "address.0.city"), "Cambridge");
  json_decref(p);
  p = read_json(r, "Patient", "1001", 3, NULL);
  cr_assert_str_eq(jstr(p, "address.0.city"), "Somerville");
  json_decref(p);
  json_t *e = read_json(r, "Encounter", "afc18e276d470a0fd2a48a40e071a86c", 0, NULL);
  cr_assert_str_eq(jstr(e, "meta.versionId"), "2", "ended twice, changed once");
  json_decref(e);
  /* the digests make no difference to a rebuild */
  uint8_t live[32], rebuilt[32];
  cl_err err;
  uint64_t nl = cl_test_proj_digest(cl_runner_proj(r), live);
  cr_assert_eq(cl_runner_rebuild(r, &err), 0, "%s", err.msg);
  fx_wait_head(r, log);
  uint64_t nr = cl_test_proj_digest(cl_runner_proj(r), rebuilt);
  cr_assert_eq(nl, nr);
  cr_assert_eq(memcmp(live, rebuilt, 32), 0, "rebuilt equals live");
  json_decref(again);
  json_decref(moved);
  json_decref(moved2);
  json_decref(back);
  json_decref(ended);
  json_decref(evs);
  done(r, log, &admin, dir);
}

/* A Provenance's keys by family (fhir_int.h: its `ver` entry alone). */
typedef struct prov_keys {
  size_t cur, ver, pat;
} prov_keys;

static int count_prov_keys(void *ctx, const uint8_t *key, size_t kl, const uint8_t *val, size_t vl,
                           cl_err *err) {
  (void)val;
  (void)vl;
  (void)err;
  prov_keys *k = ctx;
  /* the dump: the family's index byte (cur 0, ver 1, pat 2), then the key */
  if (kl == 1 + 33 && key[0] == 0 && key[1] == CL_FHIR_Provenance)
    k->cur++;
  else if (kl == 1 + 37 && key[0] == 1 && key[1] == CL_FHIR_Provenance)
    k->ver++;
  else if (kl == 1 + 65 && key[0] == 2 && key[33] == CL_FHIR_Provenance)
    k->pat++;
  return 0;
}

/* The id and seq of the first Provenance given. */
typedef struct first_prov {
  char id[40];
  uint64_t seq;
} first_prov;

static int keep_first(void *ctx, cl_fhir_resource *r, cl_err *err) {
  (void)err;
  first_prov *fp = ctx;
  json_error_t je;
  json_t *j = json_loadb(r->json, r->len, 0, &je);
  cr_assert_not_null(j, "%s", je.text);
  snprintf(fp->id, sizeof fp->id, "%s", jstr(j, "id"));
  fp->seq = r->seq;
  json_decref(j);
  cl_fhir_resource_clear(r);
  return 1;
}

/* Every Provenance is one key, and its stream finds it through the log. */
Test(fhir, a_provenance_is_one_key, .timeout = 120) {
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("fhirk", &dir, &admin, 1000);
  fx_append_all_cases(log, &admin);
  cl_runner *r = fx_start(log);
  fx_wait_head(r, log);
  cl_err err;
  size_t provs = 0;
  uint8_t next[32];
  cr_assert_eq(
      cl_fhir_scan_type(cl_runner_proj(r), CL_FHIR_Provenance, NULL, 0, count, &provs, next, &err),
      0, "%s", err.msg);
  cr_assert_gt(provs, 20, "%zu Provenances", provs);
  prov_keys k = {0};
  cr_assert_eq(cl_proj_dump(cl_runner_proj(r), count_prov_keys, &k, &err), 0, "%s", err.msg);
  cr_assert_eq(k.ver, provs, "one version each: %zu keys for %zu", k.ver, provs);
  cr_assert_eq(k.cur + k.pat, 0, "no cur (%zu) or pat (%zu) key", k.cur, k.pat);
  /* a patient's compartment holds the Provenances of its stream's events */
  uint8_t tag[32];
  cr_assert_eq(cl_log_stream_tag(log, "patient-1001", tag, &err), 0);
  size_t mine = 0, all = 0;
  cr_assert_eq(cl_fhir_stream(cl_runner_proj(r), tag, CL_FHIR_Provenance, 0, count, &mine, &err), 0,
               "%s", err.msg);
  cr_assert_eq(cl_fhir_stream(cl_runner_proj(r), tag, 0, 0, count, &all, &err), 0, "%s", err.msg);
  uint64_t events;
  cr_assert_eq(cl_log_stream_version(log, "patient-1001", &events, &err), 0);
  cr_assert(mine > 0 && mine <= events, "%zu Provenances for %llu events", mine,
            (unsigned long long)events);
  cr_assert_gt(all, mine, "and its other resources");
  /* read by id (its event's), and only by its canonical form */
  first_prov fp = {0};
  cr_assert_eq(cl_fhir_stream(cl_runner_proj(r), tag, CL_FHIR_Provenance, 0, keep_first, &fp, &err),
               0, "%s", err.msg);
  cl_fhir_resource meta;
  json_t *got = read_json(r, "Provenance", fp.id, 0, &meta);
  cr_assert_not_null(got, "Provenance/%s", fp.id);
  cr_assert_str_eq(jstr(got, "id"), fp.id);
  cr_assert_eq(meta.seq, fp.seq, "its event's seq");
  cr_assert_eq(meta.version, 1);
  json_decref(got);
  got = read_json(r, "Provenance", fp.id, 1, NULL);
  cr_assert_not_null(got, "vread 1");
  json_decref(got);
  cr_assert_null(read_json(r, "Provenance", fp.id, 2, NULL), "no version 2");
  char upper[37];
  for (size_t i = 0; i < 37; i++)
    upper[i] = (char)toupper((unsigned char)fp.id[i]);
  cr_assert_null(read_json(r, "Provenance", upper, 0, NULL), "ids are case-sensitive: %s", upper);
  cr_assert_null(read_json(r, "Provenance", "00000000-0000-4000-8000-000000000000", 0, NULL),
                 "no such event");
  cr_assert_null(read_json(r, "Provenance", "not-a-uuid", 0, NULL));
  char longer[64];
  snprintf(longer, sizeof longer, "%s0", fp.id);
  cr_assert_null(read_json(r, "Provenance", longer, 0, NULL));
  done(r, log, &admin, dir);
}

Test(fhir, rebuilt_equals_live_erasure_leaves_nothing, .timeout = 300) {
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("fhirr", &dir, &admin, 1000);
  fx_append_all_cases(log, &admin);
  /* a second patient, erased later, with resources of its own */
  json_t *evs = fx_load_case("patient");
  for (size_t i = 0; i < json_array_size(evs); i++) {
    json_t *ev = fx_copy_event(json_array_get(evs, i), "patient-2002", "2002");
    fx_append_json(log, &admin, ev);
    json_decref(ev);
  }
  json_decref(evs);
  cl_runner *r = fx_start(log);
  fx_wait_head(r, log);
  json_t *p = read_json(r, "Patient", "2002", 0, NULL);
  cr_assert_not_null(p);
  json_decref(p);
  uint8_t tag[32];
  cl_err err;
  cr_assert_eq(cl_log_stream_tag(log, "patient-2002", tag, &err), 0);
  size_t before = 0;
  cr_assert_eq(cl_fhir_stream(cl_runner_proj(r), tag, 0, 0, count, &before, &err), 0, "%s",
               err.msg);
  cr_assert_gt(before, 3, "the patient's compartment: Patient, Encounters, Provenances");
  size_t provs2 = 0, provs0 = 0;
  uint8_t next[32];
  cr_assert_eq(cl_fhir_stream(cl_runner_proj(r), tag, CL_FHIR_Provenance, 0, count, &provs2, &err),
               0, "%s", err.msg);
  cr_assert_gt(provs2, 0);
  cr_assert_eq(
      cl_fhir_scan_type(cl_runner_proj(r), CL_FHIR_Provenance, NULL, 0, count, &provs0, next, &err),
      0);
  size_t patients0 = 0;
  cr_assert_eq(
      cl_fhir_scan_type(cl_runner_proj(r), CL_FHIR_Patient, NULL, 0, count, &patients0, next, &err),
      0);
  cr_assert_geq(patients0, 2);

  cl_test_erase(log, &admin, "patient-2002");
  fx_wait_head(r, log);
  cr_assert_null(read_json(r, "Patient", "2002", 0, NULL), "erased: gone from reads");
  cr_assert_null(read_json(r, "Patient", "2002", 1, NULL), "and from vread");
  size_t after = 0;
  cr_assert_eq(cl_fhir_stream(cl_runner_proj(r), tag, 0, 0, count, &after, &err), 0, "%s", err.msg);
  cr_assert_eq(after, 0, "and from the compartment index");
  size_t patients = 0;
  cr_assert_eq(
      cl_fhir_scan_type(cl_runner_proj(r), CL_FHIR_Patient, NULL, 0, count, &patients, next, &err),
      0);
  cr_assert_eq(patients, patients0 - 1, "and from the type index: only the others are left");
  size_t provs = 0;
  cr_assert_eq(
      cl_fhir_scan_type(cl_runner_proj(r), CL_FHIR_Provenance, NULL, 0, count, &provs, next, &err),
      0);
  cr_assert_eq(provs, provs0 - provs2, "its Provenances too (%zu of %zu left, %zu erased)", provs,
               provs0, provs2);
  prov_keys k = {0};
  cr_assert_eq(cl_proj_dump(cl_runner_proj(r), count_prov_keys, &k, &err), 0, "%s", err.msg);
  cr_assert_eq(k.ver, provs, "their keys deleted, not only unreadable (%zu keys)", k.ver);
  p = read_json(r, "Patient", "1001", 0, NULL);
  cr_assert_not_null(p, "the other patient stays");
  json_decref(p);

  uint8_t live[32], rebuilt[32];
  uint64_t nl = cl_test_proj_digest(cl_runner_proj(r), live);
  cr_assert_eq(cl_runner_rebuild(r, &err), 0, "%s", err.msg);
  fx_wait_head(r, log);
  uint64_t nr = cl_test_proj_digest(cl_runner_proj(r), rebuilt);
  cr_assert_eq(nl, nr, "entries: live %llu, rebuilt %llu", (unsigned long long)nl,
               (unsigned long long)nr);
  cr_assert_arr_eq(live, rebuilt, 32, "rebuilt equals live, byte for byte");
  cl_runner_stop(r);
  cl_log_close(log);

  /* no plaintext anywhere in the data directory */
  fx_assert_no_canaries(dir);
  cl_signer_free(&admin);
  cl_test_rmtree(dir);
  free(dir);
}

typedef struct dumper {
  cl_proj *p;
  FILE *f;
  size_t n;
} dumper;

static int dump_version(void *ctx, cl_fhir_resource *r, cl_err *err) {
  (void)err;
  dumper *d = ctx;
  fwrite(r->json, 1, r->len, d->f);
  fputc('\n', d->f);
  d->n++;
  cl_fhir_resource_clear(r);
  return 0;
}

static int dump_history(void *ctx, cl_fhir_resource *r, cl_err *err) {
  dumper *d = ctx;
  json_t *j = json_loadb(r->json, r->len, 0, NULL);
  cr_assert_not_null(j);
  char type[64], id[CL_FHIR_ID_MAX];
  snprintf(type, sizeof type, "%s", jstr(j, "resourceType"));
  snprintf(id, sizeof id, "%s", jstr(j, "id"));
  json_decref(j);
  cl_fhir_resource_clear(r);
  return cl_fhir_history(d->p, type, id, 0, dump_version, d, err);
}

/* Every version the projection serves (Provenances included) passes the
 * independent R4 validator (tests/fhir/validate.mjs, @medplum/core). */
Test(fhir, every_served_resource_is_valid_r4, .timeout = 300) {
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("fhirval", &dir, &admin, 1000);
  fx_append_all_cases(log, &admin);
  cl_runner *r = fx_start(log);
  fx_wait_head(r, log);
  char path[1024];
  snprintf(path, sizeof path, "%s/served.ndjson", dir);
  dumper d = {cl_runner_proj(r), fopen(path, "w"), 0};
  cr_assert_not_null(d.f);
  cl_err err;
  int types = 0;
  for (int t = 1; t < CL_FHIR_NTYPES; t++) {
    size_t before = d.n;
    uint8_t next[32];
    cr_assert_eq(cl_fhir_scan_type(d.p, t, NULL, 0, dump_history, &d, next, &err), 0, "%s",
                 err.msg);
    types += d.n > before;
  }
  json_t *groups; /* and the derived Groups (group.h), made from the Coverages */
  cr_assert_eq(cl_fhir_groups(d.p, UINT64_MAX, &groups, &err), 0, "%s", err.msg);
  cr_assert_geq(json_object_size(groups), 1, "the billing case's payer");
  const char *gid;
  json_t *g;
  json_object_foreach(groups, gid, g) {
    json_dumpf(json_object_get(g, "resource"), d.f, JSON_COMPACT);
    fputc('\n', d.f);
    d.n++;
  }
  json_decref(groups);
  fclose(d.f);
  cr_assert_gt(d.n, 5);
  cr_assert_geq(types, 3, "Patient, Encounter and Provenance at least");
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "node %s/tests/fhir/validate.mjs %s", CL_SOURCE_DIR, path);
  int rc = system(cmd);
  cr_assert_eq(rc, 0, "the validator rejects some of the %zu versions served (see above)", d.n);
  done(r, log, &admin, dir);
}

/* Many Observations over 40 patients, batch-signed; LOINC heart rates with
 * distinct ids and values (every event a new resource). */
static void fill_observations(cl_log *log, const cl_signer *admin, int first, int batches,
                              int skip) {
  int n = first;
  for (int b = 0; b < batches; b++) {
    uint8_t *evs[100];
    size_t lens[100], k = 0;
    for (int i = 0; i < 100; i++, n++) {
      if (n % 40 == skip)
        continue;
      char stream[32], oid[32], val[16];
      snprintf(stream, sizeof stream, "patient-k%d", n % 40);
      snprintf(oid, sizeof oid, "obs-%d", n);
      snprintf(val, sizeof val, "%d.%d", 60 + n % 50, n % 10);
      Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
      Clinlog__V1__RecordedBy by = CLINLOG__V1__RECORDED_BY__INIT;
      Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
      Clinlog__V1__ObservationRecorded obs = CLINLOG__V1__OBSERVATION_RECORDED__INIT;
      Clinlog__V1__CodeableConcept cc = CLINLOG__V1__CODEABLE_CONCEPT__INIT;
      Clinlog__V1__Code code = CLINLOG__V1__CODE__INIT, *codes[1] = {&code};
      Clinlog__V1__Quantity q = CLINLOG__V1__QUANTITY__INIT;
      uint8_t id[16];
      randombytes_buf(id, 16);
      ts.seconds = 1793000000 + n;
      by.principal_id = "admin";
      by.role = "nurse";
      ev.event_id = (ProtobufCBinaryData){16, id};
      ev.stream = stream;
      ev.occurred_at = &ts;
      ev.recorded_by = &by;
      ev.body_case = CLINLOG__V1__EVENT__BODY_OBSERVATION_RECORDED;
      ev.observation_recorded = &obs;
      code.system = "http://loinc.org";
      code.code = "8867-4";
      code.display = "Heart rate";
      cc.n_coding = 1;
      cc.coding = codes;
      q.value = val;
      q.unit = "/min";
      obs.observation_id = oid;
      obs.code = &cc;
      obs.quantity = &q;
      obs.status = CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_FINAL;
      evs[k] = cl_test_pack_event(&ev, &lens[k]);
      k++;
    }
    cl_append_result r;
    cl_err err;
    cr_assert_eq(cl_test_append(log, admin, evs, lens, k, 1, NULL, 0, 0, &r, &err), 0, "%s",
                 err.msg);
    cl_append_result_free(&r);
    for (size_t i = 0; i < k; i++)
      free(evs[i]);
  }
}

Test(fhir, kill9_during_catch_up_equals_a_fresh_rebuild, .timeout = 600) {
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("fhirk", &dir, &admin, 1000);
  fx_append_all_cases(log, &admin);
  fill_observations(log, &admin, 0, 40, -1);
  cl_test_erase(log, &admin, "patient-k7");
  fill_observations(log, &admin, 4000, 20, 7);
  uint64_t size;
  cl_log_head(log, &size, NULL);
  cl_log_close(log);
  cl_test_kill9_catch_up(dir, &cl_fhir_projection, size);
  log = cl_test_log_open(dir, 1000);
  cl_runner *r = fx_start(log);
  fx_wait_head(r, log);
  uint8_t live[32], rebuilt[32];
  uint64_t nl = cl_test_proj_digest(cl_runner_proj(r), live);
  cl_err err;
  cr_assert_eq(cl_runner_rebuild(r, &err), 0, "%s", err.msg);
  fx_wait_head(r, log);
  uint64_t nr = cl_test_proj_digest(cl_runner_proj(r), rebuilt);
  cr_assert_eq(nl, nr, "entries: after the kills %llu, rebuilt %llu", (unsigned long long)nl,
               (unsigned long long)nr);
  cr_assert_arr_eq(live, rebuilt, 32, "the state the kills left equals a fresh rebuild");
  size_t obs = 0;
  uint8_t next[32];
  cr_assert_eq(
      cl_fhir_scan_type(cl_runner_proj(r), CL_FHIR_Observation, NULL, 0, count, &obs, next, &err),
      0);
  /* 6000 less the erased patient's 150 */
  cr_assert_geq(obs, 5850, "%zu Observations", obs);
  done(r, log, &admin, dir);
}

/* ---- every Provenance says what its event says ---- */

static json_t *concept(const char *system, const char *code, const char *display) {
  return json_pack("{s:[{s:s,s:s,s:s}]}", "coding", "system", system, "code", code, "display",
                   display);
}

static json_t *who(const char *principal) {
  if (principal == NULL || principal[0] == '\0')
    return json_pack("{s:s}", "display", "unknown principal");
  return json_pack("{s:{s:s,s:s}}", "identifier", "system", FJ_PRINCIPAL_SYSTEM, "value",
                   principal);
}

static json_t *b64(const uint8_t *p, size_t n) {
  char s[256];
  sodium_bin2base64(s, sizeof s, p, n, sodium_base64_VARIANT_ORIGINAL);
  return json_string(s);
}

static json_t *sub(const char *url, const char *member, json_t *v) {
  return json_pack("{s:s,s:o}", "url", url, member, v);
}

static json_t *instant_ns(int64_t ns) {
  char t[40];
  fj_instant_ns_text(ns, t);
  return json_string(t);
}

typedef struct expect_ctx {
  json_t *want; /* the Provenance the event calls for, its targets aside */
} expect_ctx;

/* The Provenance of event ev as docs/fhir.md describes it, built with
 * jansson from the event and its record, independently of provenance.c. */
static int expect_provenance(void *ctx, const cl_event_view *ev, cl_err *err) {
  (void)err;
  expect_ctx *x = ctx;
  Clinlog__V1__Event *e = clinlog__v1__event__unpack(NULL, ev->event_len, ev->event);
  cr_assert_not_null(e);
  Clinlog__V1__Record *rec = NULL;
  cr_assert_eq(cl_record_decode(ev->record, ev->record_len, &rec, err), 0);
  char uuid[37], code[16], disp[64] = "";
  ProtobufCBinaryData eid = {16, (uint8_t *)ev->event_id};
  fj_uuid_text(&eid, uuid);
  snprintf(code, sizeof code, "%u", ev->event_type);
  const ProtobufCFieldDescriptor *fd =
      protobuf_c_message_descriptor_get_field(&clinlog__v1__event__descriptor, e->body_case);
  size_t o = 0; /* patient_registered -> PatientRegistered */
  for (const char *s = fd->name; *s && o + 1 < sizeof disp; s++)
    if (*s != '_')
      disp[o++] = s == fd->name || s[-1] == '_' ? (char)toupper((unsigned char)*s) : *s;
  disp[o] = '\0';
  const Clinlog__V1__RecordedBy *rb = e->recorded_by;
  json_t *agent = json_pack("{s:o}", "type",
                            concept("http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                                    "enterer", "Enterer"));
  if (rb && rb->role && rb->role[0])
    json_object_set_new(agent, "role", json_pack("[{s:s}]", "text", rb->role));
  json_object_set_new(agent, "who", who(rb ? rb->principal_id : NULL));
  if (rb && rb->on_behalf_of && rb->on_behalf_of[0])
    json_object_set_new(agent, "onBehalfOf", who(rb->on_behalf_of));
  json_t *agents = json_pack("[o]", agent);
  if (rb && rb->device_id && rb->device_id[0]) {
    char did[CL_FHIR_ID_MAX], ref[160];
    cl_fhir_id("Device", NULL, rb->device_id, did);
    snprintf(ref, sizeof ref, "Device/%s", did);
    json_array_append_new(
        agents, json_pack("{s:o,s:{s:s}}", "type",
                          concept("http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                                  "performer", "Performer"),
                          "who", "reference", ref));
  }
  char seq[24], sv[24];
  snprintf(seq, sizeof seq, "%llu", (unsigned long long)ev->seq);
  snprintf(sv, sizeof sv, "%llu", (unsigned long long)ev->stream_version);
  json_t *coords = json_pack("[o,o,o]", sub("seq", "valueString", json_string(seq)),
                             sub("streamVersion", "valueString", json_string(sv)),
                             sub("eventHash", "valueBase64Binary", b64(ev->event_hash, 32)));
  if (rec->batch_size > 0) {
    json_array_append_new(coords, sub("batchIndex", "valueUnsignedInt",
                                      json_integer(rec->batch_index)));
    json_array_append_new(coords,
                          sub("batchSize", "valueUnsignedInt", json_integer(rec->batch_size)));
  }
  if (e->source_system && e->source_system[0])
    json_array_append_new(coords,
                          sub("sourceSystem", "valueString", json_string(e->source_system)));
  if (e->source_message_id && e->source_message_id[0])
    json_array_append_new(
        coords, sub("sourceMessageId", "valueString", json_string(e->source_message_id)));
  char urn[64];
  snprintf(urn, sizeof urn, "urn:uuid:%s", uuid);
  json_t *p = json_pack(
      "{s:s,s:s,s:{s:s,s:o},s:o,s:o,s:o,s:[{s:[{s:s,s:o}],s:s,s:{s:{s:s,s:s},s:s}}]}",
      "resourceType", "Provenance", "id", uuid, "meta", "versionId", "1", "lastUpdated",
      instant_ns(ev->committed_at_ns), "recorded", instant_ns(ev->committed_at_ns), "activity",
      concept("https://clinlog.dev/fhir/CodeSystem/event-type", code, disp), "agent", agents,
      "entity", "extension", "url", CL_FHIR_LOG_ENTRY_EXT, "extension", coords, "role", "source",
      "what", "identifier", "system", "urn:ietf:rfc:3986", "value", urn, "display", disp);
  if (e->occurred_at) {
    char t[40];
    fj_instant_text(e->occurred_at->seconds, e->occurred_at->nanos, t);
    json_object_set_new(p, "occurredDateTime", json_string(t));
  }
  if (rec->batch_size == 0 && rec->signature && rec->signature->signature.len > 0) {
    json_t *sig = json_pack(
        "{s:[{s:s,s:s,s:s}],s:o,s:o,s:s,s:o}", "type", "system", "urn:iso-astm:E1762-95:2013",
        "code", "1.2.840.10065.1.12.1.1", "display", "Author's Signature", "when",
        instant_ns(ev->committed_at_ns), "who", who(rb ? rb->principal_id : NULL), "sigFormat",
        "application/octet-stream", "data",
        b64(rec->signature->signature.data, rec->signature->signature.len));
    if (rec->signature->key_id.len > 0)
      json_object_set_new(sig, "extension",
                          json_pack("[{s:s,s:o}]", "url", CL_FHIR_LOG_ENTRY_EXT "#keyId",
                                    "valueBase64Binary",
                                    b64(rec->signature->key_id.data, rec->signature->key_id.len)));
    json_object_set_new(p, "signature", json_pack("[o]", sig));
  }
  x->want = p;
  clinlog__v1__record__free_unpacked(rec, NULL);
  clinlog__v1__event__free_unpacked(e, NULL);
  return 1;
}

typedef struct prov_check {
  cl_proj *p;
  cl_log *log;
  size_t n, targets;
} prov_check;

/* cl_fhir_provenance_of(type, id): every result targets type/id (some
 * version of it); `found` set if the Provenance `want_id` is among them. */
typedef struct prov_of_check {
  const char *type, *id, *want_id;
  int found;
  size_t n;
} prov_of_check;

static int check_prov_of(void *ctx, cl_fhir_resource *r, cl_err *err) {
  (void)err;
  prov_of_check *c = ctx;
  json_t *p = json_loadb(r->json, r->len, 0, NULL);
  cr_assert_not_null(p);
  cr_assert_str_eq(jstr(p, "resourceType"), "Provenance");
  char prefix[256];
  int pl = snprintf(prefix, sizeof prefix, "%s/%s/_history/", c->type, c->id);
  int targets_it = 0;
  json_t *targets = json_object_get(p, "target");
  for (size_t i = 0; i < json_array_size(targets); i++)
    targets_it |= !strncmp(
        json_string_value(json_object_get(json_array_get(targets, i), "reference")), prefix,
        (size_t)pl);
  cr_assert(targets_it, "Provenance/%s found for %s/%s does not target it", jstr(p, "id"), c->type,
            c->id);
  c->found |= !strcmp(jstr(p, "id"), c->want_id);
  c->n++;
  json_decref(p);
  cl_fhir_resource_clear(r);
  return 0;
}

static int check_provenance(void *ctx, cl_fhir_resource *r, cl_err *err) {
  prov_check *c = ctx;
  json_t *got = json_loadb(r->json, r->len, 0, NULL);
  cr_assert_not_null(got);
  expect_ctx x = {NULL};
  cr_assert_eq(cl_log_read_seq(c->log, r->seq, expect_provenance, &x, err), 0, "%s", err->msg);
  cr_assert_not_null(x.want);
  /* every target is a version the event made */
  json_t *targets = json_object_get(got, "target");
  cr_assert_gt(json_array_size(targets), 0);
  for (size_t i = 0; i < json_array_size(targets); i++) {
    char ref[256], *slash, *hist = NULL;
    snprintf(ref, sizeof ref, "%s",
             json_string_value(json_object_get(json_array_get(targets, i), "reference")));
    cr_assert((slash = strchr(ref, '/')) && (hist = strstr(ref, "/_history/")), "%s", ref);
    *slash = *hist = '\0';
    cl_fhir_resource v;
    cr_assert_eq(cl_fhir_read(c->p, ref, slash + 1, (uint32_t)atoi(hist + 10), &v, err), 0,
                 "%s: %s", ref, err->msg);
    cr_assert_eq(v.seq, r->seq, "%s/%s made by the Provenance's event", ref, slash + 1);
    cl_fhir_resource_clear(&v);
    /* and the target finds it (Provenance?target=, _revinclude) */
    prov_of_check po = {ref, slash + 1, jstr(got, "id"), 0, 0};
    cr_assert_eq(cl_fhir_provenance_of(c->p, ref, slash + 1, 0, check_prov_of, &po, err), 0, "%s",
                 err->msg);
    cr_assert(po.found, "%s/%s does not find Provenance/%s", ref, slash + 1, jstr(got, "id"));
    c->targets++;
  }
  json_object_del(got, "target");
  if (!json_equal(got, x.want)) {
    char *g = json_dumps(got, JSON_SORT_KEYS), *w = json_dumps(x.want, JSON_SORT_KEYS);
    cr_assert_fail("Provenance of seq %llu:\n got %s\nwant %s", (unsigned long long)r->seq, g, w);
  }
  json_decref(got);
  json_decref(x.want);
  c->n++;
  cl_fhir_resource_clear(r);
  return 0;
}

Test(fhir, every_provenance_says_what_its_event_says, .timeout = 300) {
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("fhirprov", &dir, &admin, 1000);
  fx_append_all_cases(log, &admin);
  fill_observations(log, &admin, 0, 2, -1); /* batch-signed ones too */
  cl_runner *r = fx_start(log);
  fx_wait_head(r, log);
  prov_check c = {cl_runner_proj(r), log, 0, 0};
  uint8_t next[32];
  cl_err err;
  cr_assert_eq(cl_fhir_scan_type(c.p, CL_FHIR_Provenance, NULL, 0, check_provenance, &c, next, &err),
               0, "%s", err.msg);
  cr_assert_gt(c.n, 200, "%zu Provenances", c.n);
  cr_log_info("%zu Provenances, %zu targets checked", c.n, c.targets);
  done(r, log, &admin, dir);
}

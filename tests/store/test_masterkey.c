/* Master key rotation (store/masterkey.c): a rotated log keeps every event
 * readable and verifiable with the new key only, keeps its stream tags,
 * its erasures and its projections' keys; the old key is refused by name;
 * rotating twice works; a SIGKILL after any step leaves a directory that
 * opens with exactly one of the two keys and loses nothing; a Raft entry
 * prepared under the old key stops the node instead of storing a key
 * nobody can unwrap; a new member takes the sealed fixed keys along. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/db.h"
#include "store/log.h"
#include "store/masterkey.h"
#include "store/proj.h"
#include "store/verify.h"
#include "tests/support/testutil.h"

#define STREAMS 6
#define EVENTS 60 /* plus 2 genesis events */

static char *dir;
static cl_signer admin;
static char key_path[4200], old_copy[4200], new_file[4200];

/* What the log held before the rotation: every event's plaintext hash. */
static uint8_t before[EVENTS + 3][32];

static int hash_event(void *ctx, const cl_event_view *ev, cl_err *err) {
  (void)err;
  uint8_t(*out)[32] = ctx;
  if (ev->event)
    cl_event_hash(ev->event, ev->event_len, out[ev->seq]);
  else
    memset(out[ev->seq], 0xee, 32); /* erased */
  return 0;
}

static void setup(void) {
  cl_log *lg = cl_test_log_new("masterkey", &dir, &admin, 20);
  cr_assert_not_null(lg);
  cl_err err;
  for (int i = 0; i < EVENTS - 1; i++) {
    char stream[32];
    snprintf(stream, sizeof stream, "patient-%d", i % STREAMS);
    cr_assert_eq(cl_test_append1(lg, &admin, stream, "admin", NULL, NULL, &err), 0, "%s", err.msg);
  }
  cl_test_erase(lg, &admin, "patient-3"); /* event EVENTS */
  cr_assert_eq(cl_log_read_all(lg, 1, 0, hash_event, before, &err), 0, "%s", err.msg);
  cl_log_close(lg);
  snprintf(key_path, sizeof key_path, "%s/keys/master.key", dir);
  snprintf(old_copy, sizeof old_copy, "%s/../old.key", dir);
  snprintf(new_file, sizeof new_file, "%s/../new.key", dir);
  /* the operator's copy of the old key, and the new key to rotate to */
  uint8_t *k = cl_test_read_file(key_path, NULL);
  size_t kl = 40;
  FILE *f = fopen(old_copy, "w");
  cr_assert(f && fwrite(k, 1, kl, f) == kl && fclose(f) == 0);
  chmod(old_copy, 0600);
  free(k);
  cl_master_key nk;
  cr_assert_eq(cl_master_key_generate(&nk, &err), 0);
  cr_assert_eq(cl_master_key_save(&nk, new_file, &err), 0, "%s", err.msg);
  cl_master_key_free(&nk);
}

static void teardown(void) {
  cl_signer_free(&admin);
  char parent[4200];
  snprintf(parent, sizeof parent, "%s/..", dir);
  cl_test_rmtree(parent);
  free(dir);
}

TestSuite(masterkey, .init = setup, .fini = teardown, .timeout = 120);

static cl_log *open_with(const char *mk, int read_only, cl_err *err) {
  cl_log_options o;
  cl_log_options_init(&o);
  o.dir = dir;
  o.master_key_path = mk;
  o.read_only = read_only;
  cl_log *lg = NULL;
  return cl_log_open(&o, &lg, err) == 0 ? lg : NULL;
}

static cl_log *open_ok(void) {
  cl_err err;
  cl_log *lg = open_with(NULL, 0, &err);
  cr_assert_not_null(lg, "%s", err.msg);
  return lg;
}

static void key_check_of(const char *path, uint8_t out[16]) {
  cl_master_key k;
  cl_err err;
  cr_assert_eq(cl_master_key_load(&k, path, &err), 0, "%s", err.msg);
  cl_key_check(k.key, out);
  cl_master_key_free(&k);
}

/* Rotates the log in `dir` to the key in `file` (NULL: a new one). */
static cl_rotate_report rotate(const char *file) {
  cl_log *lg = open_ok();
  cl_master_key nk = {0};
  cl_err err;
  if (file)
    cr_assert_eq(cl_master_key_load(&nk, file, &err), 0, "%s", err.msg);
  cl_rotate_options o = {.new_key = file ? &nk : NULL};
  cl_rotate_report rep;
  cr_assert_eq(cl_masterkey_rotate(lg, &o, &rep, &err), 0, "%s", err.msg);
  cl_master_key_free(&nk);
  cl_log_close(lg);
  return rep;
}

static cl_verify_report verify_with(const char *mk) {
  cl_verify_options o = {.dir = dir, .master_key_path = mk};
  cl_verify_report rep;
  cl_err err;
  cr_assert_eq(cl_verify_dir(&o, &rep, &err), 0, "%s", err.msg);
  return rep;
}

/* Every event of the setup reads back as before (and `extra` more were
 * appended since); verify's content checks pass with the key file. */
static void assert_intact(uint64_t extra) {
  cl_log *lg = open_ok();
  uint8_t(*after)[32] = calloc(EVENTS + 3 + extra, 32);
  cl_err err;
  cr_assert_eq(cl_log_read_all(lg, 1, 0, hash_event, after, &err), 0, "%s", err.msg);
  for (int s = 1; s <= EVENTS + 2; s++)
    cr_assert_eq(memcmp(before[s], after[s], 32), 0, "event %d reads differently", s);
  free(after);
  cl_log_close(lg);
  cl_verify_report rep = verify_with(NULL);
  cr_assert(rep.ok, "%s", rep.fail_what);
  cr_assert(rep.content_checked);
  cr_assert_eq(rep.events, EVENTS + 2 + extra);
  cr_assert_eq(rep.decrypted + rep.erased, EVENTS + 2 + extra);
  uint64_t erased = 0; /* patient-3's events (see setup) */
  for (int i = 0; i < EVENTS - 1; i++)
    erased += i % STREAMS == 3;
  cr_assert_eq(rep.erased, erased);
}

Test(masterkey, rotation_keeps_every_event_and_verifies_with_the_new_key) {
  uint8_t tag_before[32], tag_after[32], old_check[16], new_check[16], now[16];
  cl_err err;
  cl_log *lg = open_ok();
  cr_assert_eq(cl_log_stream_tag(lg, "patient-1", tag_before, &err), 0);
  cl_log_close(lg);
  key_check_of(key_path, old_check);
  key_check_of(new_file, new_check);

  cl_rotate_report rep = rotate(new_file);
  cr_assert_eq(rep.streams, 2 + STREAMS - 1 + 1,
               "$log, $principal-admin, the live patients and $erasures");
  cr_assert_eq(rep.erased, 1);
  cr_assert_eq(memcmp(rep.old_check, old_check, 16), 0);
  cr_assert_eq(memcmp(rep.new_check, new_check, 16), 0);
  key_check_of(key_path, now);
  cr_assert_eq(memcmp(now, new_check, 16), 0, "the key file holds the new key");
  char np[4300];
  snprintf(np, sizeof np, "%s.new", key_path);
  cr_assert_neq(access(np, F_OK), 0, "no .new left behind");

  assert_intact(0);
  lg = open_ok();
  cr_assert_eq(cl_log_stream_tag(lg, "patient-1", tag_after, &err), 0);
  cr_assert_eq(memcmp(tag_before, tag_after, 32), 0, "stream tags do not change");
  /* the log takes new events, in old and new streams, and reads them back */
  cr_assert_eq(cl_test_append1(lg, &admin, "patient-1", "admin", "after", NULL, &err), 0, "%s",
               err.msg);
  cr_assert_eq(cl_test_append1(lg, &admin, "patient-new", "admin", "after", NULL, &err), 0, "%s",
               err.msg);
  cl_log_close(lg);
  cl_verify_report v = verify_with(NULL);
  cr_assert(v.ok, "%s", v.fail_what);
  cr_assert_eq(v.events, EVENTS + 4);
}

Test(masterkey, the_old_key_is_refused_by_name) {
  rotate(new_file);
  cl_err err;
  cr_assert_null(open_with(old_copy, 0, &err));
  cr_assert_eq(err.code, CL_EDENIED);
  cr_assert(strstr(err.msg, "retired by a key rotation"), "%s", err.msg);
  cr_assert_null(open_with(old_copy, 1, &err), "read-only too");
  cl_verify_options o = {.dir = dir, .master_key_path = old_copy};
  cl_verify_report rep;
  cr_assert_eq(cl_verify_dir(&o, &rep, &err), CL_EDENIED);
  cr_assert(strstr(err.msg, "retired by a key rotation"), "%s", err.msg);
  /* a key that never belonged to the log is not called retired */
  char other[4300];
  snprintf(other, sizeof other, "%s/../other.key", dir);
  cl_master_key k;
  cr_assert_eq(cl_master_key_generate(&k, &err), 0);
  cr_assert_eq(cl_master_key_save(&k, other, &err), 0);
  cl_master_key_free(&k);
  cr_assert_null(open_with(other, 0, &err));
  cr_assert(strstr(err.msg, "does not belong to this log"), "%s", err.msg);
}

Test(masterkey, erased_streams_stay_erased) {
  rotate(new_file);
  cl_log *lg = open_ok();
  cl_err err;
  cr_assert_eq(cl_test_append1(lg, &admin, "patient-3", "admin", NULL, NULL, &err), CL_EERASED,
               "%s", err.msg);
  uint8_t tag[32], w[CL_WRAPPED_KEY_SIZE];
  size_t wl = 1;
  cr_assert_eq(cl_log_stream_tag(lg, "patient-3", tag, &err), 0);
  cr_assert_eq(cl_log_wrapped_key(lg, tag, w, sizeof w, &wl, &err), 0, "%s", err.msg);
  cr_assert_eq(wl, 0, "the erased stream has no key after the rotation either");
  cl_log_close(lg);
}

Test(masterkey, projections_find_their_keys) {
  static const char *const fams[] = {"idx"};
  cl_log *lg = open_ok();
  cl_proj *p;
  cl_err err;
  cr_assert_eq(cl_proj_open(lg, "mk_test", 1, fams, 1, &p, &err), 0, "%s", err.msg);
  uint8_t k[32], tag[32];
  cl_proj_hash(p, "MRN-0042", 8, k);
  cr_assert_eq(cl_log_stream_tag(lg, "patient-2", tag, &err), 0);
  cl_proj_txn *t;
  cr_assert_eq(cl_proj_begin(p, &t, &err), 0);
  cr_assert_eq(cl_proj_put_sealed(t, 0, k, 32, tag, "Ada Lovelace", 12, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_proj_commit(t, EVENTS + 2, &err), 0, "%s", err.msg);
  cl_proj_close(p);
  cl_log_close(lg);

  rotate(new_file);
  rotate(NULL);
  lg = open_ok();
  cr_assert_eq(cl_proj_open(lg, "mk_test", 1, fams, 1, &p, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_proj_position(p), EVENTS + 2, "the projection is not rebuilt");
  uint8_t k2[32];
  cl_proj_hash(p, "MRN-0042", 8, k2);
  cr_assert_eq(memcmp(k, k2, 32), 0, "the keyed hash of an identifier does not change");
  uint8_t *v;
  size_t vl;
  cr_assert_eq(cl_proj_get_sealed(p, 0, k2, 32, &v, &vl, &err), 0, "%s", err.msg);
  cr_assert_eq(vl, 12);
  cr_assert_eq(memcmp(v, "Ada Lovelace", 12), 0);
  free(v);
  cl_proj_close(p);
  cl_log_close(lg);
}

Test(masterkey, rotating_twice_and_back) {
  uint8_t first[16];
  key_check_of(key_path, first);
  rotate(new_file);
  cl_rotate_report r2 = rotate(NULL); /* a generated key */
  assert_intact(0);
  cl_err err;
  cr_assert_null(open_with(new_file, 0, &err), "the first new key is retired as well");
  cr_assert(strstr(err.msg, "retired"), "%s", err.msg);
  /* back to the original key (the way out of a rotation made too early) */
  cl_rotate_report r3 = rotate(old_copy);
  cr_assert_eq(memcmp(r3.old_check, r2.new_check, 16), 0);
  cr_assert_eq(memcmp(r3.new_check, first, 16), 0);
  assert_intact(0);
}

/* ---------------------------------------------------------- kill -9 */

static void die_at(void *ctx, int step) {
  if (step == *(int *)ctx)
    raise(SIGKILL);
}

static void die_midway(void *ctx, uint64_t done, uint64_t total) {
  (void)total;
  if (done >= 1024 && *(int *)ctx == 0)
    raise(SIGKILL);
}

/* Rotates to new_file in a child killed after `step` (0: in the middle of
 * rewrapping); the child never gets to close anything. */
static void rotate_killed(int step) {
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    cl_log *lg = open_with(NULL, 0, &(cl_err){0});
    cl_master_key nk;
    cl_err err;
    if (!lg || cl_master_key_load(&nk, new_file, &err))
      _exit(3);
    int at = step;
    cl_rotate_options o = {.new_key = &nk,
                           .after_step = die_at,
                           .step_ctx = &at,
                           .progress = die_midway,
                           .progress_ctx = &at};
    cl_rotate_report rep;
    int rc = cl_masterkey_rotate(lg, &o, &rep, &err);
    _exit(rc ? 4 : 5); /* only a step past the last one gets here */
  }
  int st;
  cr_assert_eq(waitpid(pid, &st, 0), pid);
  cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the child was not killed (status %d)", st);
}

/* After the kill: the directory opens (read-only and writable) with the
 * key in force, loses nothing, and a later rotation works. */
static void after_kill(int committed) {
  uint8_t oldc[16], newc[16], now[16];
  key_check_of(old_copy, oldc);
  key_check_of(new_file, newc);
  char np[4300];
  snprintf(np, sizeof np, "%s.new", key_path);
  cl_err err;
  /* a read-only open uses a pending .new but does not move it */
  cl_log *lg = open_with(NULL, 1, &err);
  cr_assert_not_null(lg, "%s", err.msg);
  cl_log_close(lg);
  cl_verify_report v = verify_with(NULL);
  cr_assert(v.ok && v.content_checked && v.decrypted + v.erased == EVENTS + 2, "%s", v.fail_what);
  /* the writable open finishes the swap */
  assert_intact(0);
  key_check_of(key_path, now);
  cr_assert_eq(memcmp(now, committed ? newc : oldc, 16), 0, "the key file holds the %s key",
               committed ? "new" : "old");
  if (committed)
    cr_assert_neq(access(np, F_OK), 0, "the swap was finished");
  cl_rotate_report r = rotate(NULL); /* a stale .new does not stand in the way */
  cr_assert_eq(memcmp(r.old_check, committed ? newc : oldc, 16), 0);
  cr_assert_neq(access(np, F_OK), 0);
  assert_intact(0);
}

Test(masterkey, kill9_while_rewrapping) {
  /* enough streams for the progress callback to fire mid-way */
  cl_log *lg = open_ok();
  cl_err err;
  enum { N = 1100 };
  uint8_t *evs[N];
  size_t lens[N];
  for (int i = 0; i < N; i++) {
    char stream[32];
    snprintf(stream, sizeof stream, "bulk-%d", i);
    evs[i] = cl_test_event(stream, "admin", NULL, NULL, &lens[i]);
  }
  cl_append_result r;
  cr_assert_eq(cl_test_append(lg, &admin, evs, lens, N, 1, NULL, 0, 0, &r, &err), 0, "%s", err.msg);
  cl_append_result_free(&r);
  for (int i = 0; i < N; i++)
    free(evs[i]);
  cl_log_close(lg);
  rotate_killed(0);
  uint8_t oldc[16], now[16];
  key_check_of(old_copy, oldc);
  key_check_of(key_path, now);
  cr_assert_eq(memcmp(now, oldc, 16), 0);
  cl_verify_report v = verify_with(NULL);
  cr_assert(v.ok && v.decrypted + v.erased == EVENTS + 2 + N, "%s", v.fail_what);
  cl_rotate_report rr = rotate(new_file); /* the stale .new does not stand in the way */
  cr_assert_eq(rr.streams, 2 + STREAMS - 1 + 1 + N);
  assert_intact(N);
}

Test(masterkey, kill9_after_the_new_key_file_is_written) {
  rotate_killed(CL_ROTATE_KEY_WRITTEN);
  after_kill(0);
}

Test(masterkey, kill9_after_the_commit_before_the_rename) {
  rotate_killed(CL_ROTATE_COMMITTED);
  char np[4300];
  snprintf(np, sizeof np, "%s.new", key_path);
  cr_assert_eq(access(np, F_OK), 0, "the new key waits in .new");
  after_kill(1);
}

Test(masterkey, kill9_after_the_rename) {
  rotate_killed(CL_ROTATE_SWAPPED);
  after_kill(1);
}

/* -------------------------------------------- Raft entries, new members */

static int apply1(cl_log *lg, uint64_t index, const Clinlog__V1__PreparedBatch *pb, cl_err *err) {
  cl_apply_item item;
  memset(&item, 0, sizeof item);
  item.pb = pb;
  int rc = cl_log_apply(lg, index, &item, 1, err);
  return rc ? rc : item.rc;
}

/* The data key of `stream` unwraps under the log's current wrap key (the
 * log opened from scratch reads the stream). */
static void assert_readable(const char *stream, uint64_t version) {
  cl_log *lg = open_ok();
  uint64_t v;
  cl_err err;
  cr_assert_eq(cl_log_stream_version(lg, stream, &v, &err), 0, "%s", err.msg);
  cr_assert_eq(v, version);
  uint8_t hashes[EVENTS + 16][32];
  cr_assert_eq(cl_log_read_stream(lg, stream, 1, 0, 0, hash_event, hashes, &err), 0, "%s %s",
               stream, err.msg);
  cl_log_close(lg);
}

Test(masterkey, raft_entries_prepared_under_the_old_key) {
  cl_log *lg = open_ok();
  /* two batches share the pending key of a new stream; a third mints
   * another stream's key; only the first is applied before the rotation */
  Clinlog__V1__PreparedBatch *a = cl_test_prepare1(lg, &admin, "patient-raft"),
                             *b = cl_test_prepare1(lg, &admin, "patient-raft"),
                             *c = cl_test_prepare1(lg, &admin, "patient-late");
  cl_err err;
  cr_assert_eq(apply1(lg, 1, a, &err), 0, "%s", err.msg);
  cl_log_close(lg);
  rotate(new_file);
  lg = open_ok();
  /* the stream's committed key kept its nonce: b's matches it and applies,
   * the same outcome as on a node that applied it before rotating */
  cr_assert_eq(apply1(lg, 2, b, &err), 0, "%s", err.msg);
  /* c's key, under the old key, is rewrapped under the new one */
  cr_assert_eq(apply1(lg, 3, c, &err), 0, "%s", err.msg);
  cl_log_close(lg);
  assert_intact(3);
  assert_readable("patient-raft", 2);
  assert_readable("patient-late", 1);
  clinlog__v1__prepared_batch__free_unpacked(a, NULL);
  clinlog__v1__prepared_batch__free_unpacked(b, NULL);
  clinlog__v1__prepared_batch__free_unpacked(c, NULL);
}

Test(masterkey, raft_entries_older_than_the_retired_keys) {
  cl_log *lg = open_ok();
  Clinlog__V1__PreparedBatch *c = cl_test_prepare1(lg, &admin, "patient-ancient");
  cl_log_close(lg);
  for (int i = 0; i <= CL_RETIRED_WRAP_MAX; i++)
    rotate(NULL);
  /* no key of the log unwraps the minted key: it is applied as every node
   * applies it (a peer's entry never fails the log), counted, and the
   * stream cannot be read here */
  lg = open_ok();
  cl_err err;
  cr_assert_eq(apply1(lg, 1, c, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_log_foreign_keys(lg), 1);
  cr_assert_eq(cl_log_applied_index(lg), 1);
  uint8_t hashes[4][32];
  cr_assert_eq(cl_log_read_stream(lg, "patient-ancient", 1, 0, 0, hash_event, hashes, &err),
               CL_ECRYPTO);
  cl_log_close(lg);
  cl_verify_options o = {.dir = dir};
  cl_verify_report rep;
  cr_assert_eq(cl_verify_dir(&o, &rep, &err), 0, "%s", err.msg);
  cr_assert_not(rep.ok, "verify names the record whose key does not unwrap");
  cr_assert_eq(rep.fail_seq, EVENTS + 3, "%s", rep.fail_what);
  cr_assert(strstr(rep.fail_what, "does not unwrap"), "%s", rep.fail_what);
  clinlog__v1__prepared_batch__free_unpacked(c, NULL);
}

/* A new member's empty store, with the log's current key files. */
static cl_log *member(const char *mdir, const uint8_t *sealed, size_t nsealed, const char *origin) {
  char lk[4300];
  snprintf(lk, sizeof lk, "%s/keys/log.key", dir);
  cl_log_options o;
  cl_log_options_init(&o);
  o.dir = mdir;
  o.master_key_path = key_path;
  o.log_key_path = lk;
  cl_log_genesis g = {
      .replica = 1, .origin = origin, .sealed_keys = sealed, .sealed_keys_len = nsealed};
  cl_err err;
  cr_assert_eq(cl_log_create(&o, &g, &err), 0, "%s", err.msg);
  cl_log *m = NULL;
  cr_assert_eq(cl_log_open(&o, &m, &err), 0, "%s", err.msg);
  return m;
}

Test(masterkey, a_new_member_takes_the_sealed_keys) {
  /* an entry prepared before the rotation, in the leader's Raft log */
  cl_log *src = open_ok();
  Clinlog__V1__PreparedBatch *c = cl_test_prepare1(src, &admin, "patient-replayed");
  cl_log_close(src);
  rotate(new_file);
  src = open_ok();
  uint8_t sealed[CL_SEALED_KEYS_MAX], root[32];
  size_t ns;
  cl_err err;
  cr_assert_eq(cl_masterkey_sealed_keys(src, sealed, &ns, &err), 0, "%s", err.msg);
  cr_assert_eq(ns, CL_FIXED_KEYS_SEALED_SIZE + 32 + CL_SEALED_OVERHEAD, "one retired wrap key");
  uint64_t size;
  cl_log_head(src, &size, root);
  char m1[4300], m2[4300];
  snprintf(m1, sizeof m1, "%s/../member1", dir);
  snprintf(m2, sizeof m2, "%s/../member2", dir);
  /* with them, catch-up works, the member tags streams as the log does, and
   * replays the entry prepared under the old key */
  cl_log *m = member(m1, sealed, ns, cl_log_origin(src));
  cr_assert_eq(cl_test_copy_records(src, m, size, root, 16, 0, &err), 0, "%s", err.msg);
  uint8_t t1[32], t2[32];
  cr_assert_eq(cl_log_stream_tag(src, "patient-4", t1, &err), 0);
  cr_assert_eq(cl_log_stream_tag(m, "patient-4", t2, &err), 0);
  cr_assert_eq(memcmp(t1, t2, 32), 0);
  cr_assert_eq(apply1(m, 1, c, &err), 0, "%s", err.msg);
  uint64_t v;
  cr_assert_eq(cl_log_stream_version(m, "patient-replayed", &v, &err), 0);
  cr_assert_eq(v, 1);
  cl_log_close(m);
  cl_verify_options vo = {.dir = m1, .master_key_path = key_path}; /* the key stays where it is */
  cl_verify_report vr;
  cr_assert_eq(cl_verify_dir(&vo, &vr, &err), 0, "%s", err.msg);
  cr_assert(vr.ok && vr.content_checked && vr.decrypted + vr.erased == size + 1, "%s",
            vr.fail_what);
  /* without them the member's tag key is wrong: refused at record 1 */
  m = member(m2, NULL, 0, cl_log_origin(src));
  cr_assert_eq(cl_test_copy_records(src, m, size, root, 16, 0, &err), CL_EDENIED, "%s", err.msg);
  cr_assert(strstr(err.msg, "--replica-of"), "%s", err.msg);
  cl_log_close(m);
  cl_log_close(src);
  clinlog__v1__prepared_batch__free_unpacked(c, NULL);
}

/* Log key rotation (store/logkey.c): the log registers the new key and
 * revokes the old one through the write path; checkpoints before the
 * rotation verify with the old key, after it with the new one, the
 * handover with both, and a consistency proof spans them; verify passes
 * over both eras with the log's own history and with log.pub; the old key
 * signs no more events and opens the log no more; a SIGKILL after any step
 * leaves a log that opens with one key and loses nothing. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/checkpoint.h"
#include "store/logkey.h"
#include "store/merkle.h"
#include "store/verify.h"
#include "tests/support/testutil.h"

#define EVENTS 20 /* before the rotation, plus the 2 genesis events */

static char *dir;
static cl_signer admin, old_key;
static char key_path[4200], pub_path[4200];

static void setup(void) {
  cl_log *lg = cl_test_log_new("logkey", &dir, &admin, 8);
  cr_assert_not_null(lg);
  cl_err err;
  for (int i = 0; i < EVENTS; i++) {
    char stream[32];
    snprintf(stream, sizeof stream, "patient-%d", i % 4);
    cr_assert_eq(cl_test_append1(lg, &admin, stream, "admin", NULL, NULL, &err), 0, "%s", err.msg);
  }
  char *note;
  size_t nl;
  cr_assert_eq(cl_log_checkpoint(lg, &note, &nl, &err), 0, "%s", err.msg);
  free(note);
  cl_log_close(lg);
  snprintf(key_path, sizeof key_path, "%s/keys/log.key", dir);
  snprintf(pub_path, sizeof pub_path, "%s/log.pub", dir);
  cr_assert_eq(cl_signer_load(&old_key, key_path, &err), 0, "%s", err.msg);
}

static void teardown(void) {
  cl_signer_free(&admin);
  cl_signer_free(&old_key);
  char parent[4200];
  snprintf(parent, sizeof parent, "%s/..", dir);
  cl_test_rmtree(parent);
  free(dir);
}

TestSuite(logkey, .init = setup, .fini = teardown, .timeout = 120);

static int same_keys(const cl_logkeys *a, const cl_logkeys *b) {
  return a->n == b->n && memcmp(a->k, b->k, a->n * sizeof a->k[0]) == 0;
}

static void verify_ok(const cl_logkeys *keys, const char *cp, size_t cpl) {
  cl_verify_options o = {.dir = dir, .log_keys = keys, .checkpoint = cp, .checkpoint_len = cpl};
  cl_verify_report rep;
  cl_err err;
  cr_assert_eq(cl_verify_dir(&o, &rep, &err), 0, "%s", err.msg);
  cr_assert(rep.ok, "verify failed at %llu: %s", (unsigned long long)rep.fail_seq, rep.fail_what);
  cr_assert(rep.content_checked);
}

static char *stored_checkpoint(cl_log *lg, uint64_t size, size_t *len) {
  char *note;
  cl_err err;
  cr_assert_eq(cl_log_get_checkpoint(lg, size, &note, len, &err), 0, "%s", err.msg);
  return note;
}

Test(logkey, rotate_write_checkpoint_verify) {
  cl_log *lg = cl_test_log_open(dir, 8);
  cl_err err;
  uint64_t before;
  cl_log_head(lg, &before, NULL);
  cr_assert_eq(before, EVENTS + 2);
  const char *origin = cl_log_origin(lg);
  char origin_before[256];
  snprintf(origin_before, sizeof origin_before, "%s", origin);

  cl_logkey_rotate_report rep;
  cr_assert_eq(cl_logkey_rotate(lg, NULL, &rep, &err), 0, "%s", err.msg);
  cr_assert_eq(rep.seq, before + 2);
  cr_assert_eq(rep.tree_size, before + 2);
  cr_assert_eq(memcmp(rep.old_pk, old_key.pk, 32), 0);
  cr_assert_eq(memcmp(cl_log_signer(lg)->pk, rep.new_pk, 32), 0);
  cr_assert_eq(memcmp(cl_log_public_key(lg), rep.new_pk, 32), 0);
  cr_assert_str_eq(cl_log_origin(lg), origin_before, "the origin must not change");

  /* the history, from the log and from log.pub */
  cl_logkeys ks, pub;
  char pub_origin[256];
  cr_assert_eq(cl_log_logkeys(lg, &ks, &err), 0);
  cr_assert_eq(ks.n, 2);
  cr_assert_eq(memcmp(ks.k[0].pk, old_key.pk, 32), 0);
  cr_assert(ks.k[0].from == 1 && ks.k[0].to == rep.seq);
  cr_assert(ks.k[1].from == rep.seq && ks.k[1].to == 0);
  cr_assert_eq(cl_logkeys_load_pub(pub_path, &pub, pub_origin, &err), 0, "%s", err.msg);
  cr_assert_str_eq(pub_origin, origin_before);
  cr_assert_eq(pub.n, 2);
  cr_assert(same_keys(&pub, &ks));
  uint8_t first[32];
  cr_assert_eq(cl_pubkey_load(first, pub_path, &err), 0, "%s", err.msg);
  cr_assert_eq(memcmp(first, rep.new_pk, 32), 0, "log.pub's key: line is the current key");

  /* write and checkpoint after the rotation (8 events: an automatic
   * checkpoint at 32, then one on demand) */
  for (int i = 0; i < 9; i++)
    cr_assert_eq(cl_test_append1(lg, &admin, "patient-9", "admin", NULL, NULL, &err), 0, "%s",
                 err.msg);
  char *post;
  size_t postl;
  cr_assert_eq(cl_log_checkpoint(lg, &post, &postl, &err), 0, "%s", err.msg);

  /* pre-rotation checkpoint: the old key; handover: both; post: the new */
  size_t prel, hl, al;
  char *pre = stored_checkpoint(lg, before, &prel);
  char *hand = stored_checkpoint(lg, rep.seq, &hl);
  char *autocp = stored_checkpoint(lg, 32, &al);
  cl_checkpoint cp, cpre, cpost;
  cr_assert_eq(cl_checkpoint_verify(pre, prel, origin_before, old_key.pk, &cpre, &err), 0, "%s",
               err.msg);
  cr_assert_neq(cl_checkpoint_verify(pre, prel, origin_before, rep.new_pk, &cp, &err), 0);
  cr_assert_eq(cl_checkpoint_verify(hand, hl, origin_before, old_key.pk, &cp, &err), 0, "%s",
               err.msg);
  cr_assert_eq(cl_checkpoint_verify(hand, hl, origin_before, rep.new_pk, &cp, &err), 0, "%s",
               err.msg);
  cr_assert_eq(cl_checkpoint_verify(autocp, al, origin_before, rep.new_pk, &cp, &err), 0, "%s",
               err.msg);
  cr_assert_eq(cl_checkpoint_verify(post, postl, origin_before, rep.new_pk, &cpost, &err), 0, "%s",
               err.msg);
  cr_assert_neq(cl_checkpoint_verify(post, postl, origin_before, old_key.pk, &cp, &err), 0);
  /* with the history: each by the key valid at its size; the old key's
   * signature on a post-rotation size is refused even when present */
  uint8_t signer[32];
  cr_assert_eq(cl_checkpoint_verify_logkeys(pre, prel, origin_before, &ks, &cp, signer, &err), 0);
  cr_assert_eq(memcmp(signer, old_key.pk, 32), 0);
  cr_assert_eq(cl_checkpoint_verify_logkeys(post, postl, origin_before, &ks, &cp, signer, &err), 0);
  cr_assert_eq(memcmp(signer, rep.new_pk, 32), 0);
  cl_checkpoint forged = cpost;
  char *fn;
  size_t fl;
  cr_assert_eq(cl_checkpoint_sign(&forged, origin_before, old_key.sk, &fn, &fl, &err), 0);
  cr_assert_eq(cl_checkpoint_verify_logkeys(fn, fl, origin_before, &ks, &cp, NULL, &err),
               CL_EUNKNOWNKEY, "%s", err.msg);
  free(fn);

  /* a consistency proof from the pre-rotation tree to the post-rotation one */
  uint8_t proof[64][32];
  size_t n;
  cr_assert_eq(cl_log_prove_consistency(lg, cpre.size, cpost.size, proof, &n, &err), 0, "%s",
               err.msg);
  cr_assert_eq(cl_merkle_verify_consistency(cpre.size, cpost.size, cpre.root, cpost.root,
                                            (const uint8_t(*)[32])proof, n, &err),
               0, "%s", err.msg);

  /* the old key signs no more events */
  cr_assert_eq(cl_test_append1(lg, &old_key, "$log", "$log", NULL, NULL, &err), CL_EREVOKED, "%s",
               err.msg);
  cl_log_close(lg);

  /* verify over both eras: the log's own history, log.pub, and external
   * checkpoints of both eras */
  verify_ok(NULL, NULL, 0);
  verify_ok(&pub, pre, prel);
  verify_ok(&pub, post, postl);
  /* an auditor who kept only the old key fails, past the rotation */
  cl_logkeys only_old = {.n = 1};
  memcpy(only_old.k[0].pk, old_key.pk, 32);
  only_old.k[0].from = 1;
  cl_verify_options o = {.dir = dir, .log_keys = &only_old};
  cl_verify_report vr;
  cr_assert_eq(cl_verify_dir(&o, &vr, &err), 0);
  cr_assert(!vr.ok);
  cr_assert_eq(vr.fail_seq, 32, "%s", vr.fail_what);
  free(pre);
  free(hand);
  free(autocp);
  free(post);

  /* the old key file no longer opens the log, by name */
  char old_file[4300];
  snprintf(old_file, sizeof old_file, "%s/../old.key", dir);
  cr_assert_eq(cl_signer_save(&old_key, old_file, &err), 0, "%s", err.msg);
  cl_log_options lo;
  cl_log_options_init(&lo);
  lo.dir = dir;
  lo.log_key_path = old_file;
  cl_log *bad = NULL;
  cr_assert_eq(cl_log_open(&lo, &bad, &err), CL_EDENIED);
  cr_assert(strstr(err.msg, "retired by a log key rotation"), "%s", err.msg);

  /* and it rotates again */
  lg = cl_test_log_open(dir, 8);
  cr_assert_eq(cl_logkey_rotate(lg, NULL, &rep, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_log_logkeys(lg, &ks, &err), 0);
  cr_assert_eq(ks.n, 3);
  cl_log_close(lg);
  cr_assert_eq(cl_logkeys_load_pub(pub_path, &pub, NULL, &err), 0, "%s", err.msg);
  verify_ok(&pub, NULL, 0);
}

/* ---- SIGKILL after each step ---- */

static void die(void *ctx, int s) {
  if (s == *(int *)ctx)
    raise(SIGKILL);
}

Test(logkey, kill9_after_each_step) {
  uint64_t size = EVENTS + 2;
  for (int at = CL_LOGKEY_KEY_WRITTEN; at <= CL_LOGKEY_PUB; at++) {
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
      cl_log *lg = cl_test_log_open(dir, 8);
      cl_err e;
      cl_logkey_rotate_options ro = {.after_step = die, .step_ctx = &at};
      cl_logkey_rotate_report rep;
      (void)!cl_logkey_rotate(lg, &ro, &rep, &e);
      _exit(3); /* not reached */
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "step %d: child not killed", at);

    /* reopens with one key; nothing lost; the rotation is either not
     * there (killed before its commit) or finished by the open */
    cl_log *lg = cl_test_log_open(dir, 8);
    cr_assert_not_null(lg, "step %d: does not reopen", at);
    uint64_t now;
    cl_log_head(lg, &now, NULL);
    cl_logkeys ks;
    cl_err err;
    cr_assert_eq(cl_log_logkeys(lg, &ks, &err), 0);
    const cl_logkey *cur = cl_logkeys_current(&ks);
    cr_assert_not_null(cur);
    cr_assert_eq(memcmp(cl_log_signer(lg)->pk, cur->pk, 32), 0, "step %d: signs with another key",
                 at);
    cr_assert_eq(memcmp(cl_log_public_key(lg), cur->pk, 32), 0);
    if (at == CL_LOGKEY_KEY_WRITTEN) {
      cr_assert_eq(now, size);
      cr_assert_eq(ks.n, 1);
    } else {
      cr_assert_eq(now, size + 2, "step %d", at);
      size = now;
    }
    /* the node writes and checkpoints with the key in force */
    cr_assert_eq(cl_test_append1(lg, &admin, "patient-1", "admin", NULL, NULL, &err), 0, "%s",
                 err.msg);
    size++;
    char *note;
    size_t nl;
    cr_assert_eq(cl_log_checkpoint(lg, &note, &nl, &err), 0, "step %d: %s", at, err.msg);
    free(note);
    cl_log_close(lg);
    /* the key file holds the current key; log.pub lists the history */
    cl_signer kf = {0};
    cr_assert_eq(cl_signer_load(&kf, key_path, &err), 0, "%s", err.msg);
    cr_assert_eq(memcmp(kf.pk, cur->pk, 32), 0, "step %d: key file not swapped", at);
    cl_signer_free(&kf);
    cl_logkeys pub;
    cr_assert_eq(cl_logkeys_load_pub(pub_path, &pub, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(pub.n, ks.n, "step %d: log.pub has %zu keys, the log %zu", at, pub.n, ks.n);
    verify_ok(&pub, NULL, 0);
  }
}

/* log.pub: the single-key form, the history form, and what is refused */
Test(logkey, pub_format) {
  cl_logkeys ks;
  cl_err err;
  char origin[256];
  const char *one =
      "origin: o.example/x\nkey: ed25519:xSS9OhykNOx3UiGTNDdbjszzkQCxDRqYpowrImcYdV8=\n";
  cr_assert_eq(cl_logkeys_parse_pub(one, strlen(one), &ks, origin, &err), 0, "%s", err.msg);
  cr_assert_str_eq(origin, "o.example/x");
  cr_assert(ks.n == 1 && ks.k[0].from == 1 && ks.k[0].to == 0);
  const char *plain = "ed25519:xSS9OhykNOx3UiGTNDdbjszzkQCxDRqYpowrImcYdV8=\n";
  cr_assert_eq(cl_logkeys_parse_pub(plain, strlen(plain), &ks, NULL, &err), 0, "%s", err.msg);
  char out[1024];
  cl_logkeys two = {.n = 2};
  memset(two.k[0].pk, 1, 32);
  two.k[0].from = 1, two.k[0].to = 44;
  memset(two.k[1].pk, 2, 32);
  two.k[1].from = 44;
  size_t n = cl_logkeys_format_pub("o.example/x", two.k[1].pk, &two, out, sizeof out);
  cr_assert_gt(n, 0);
  cr_assert_eq(cl_logkeys_parse_pub(out, n, &ks, origin, &err), 0, "%s", err.msg);
  cr_assert(same_keys(&ks, &two));
  cr_assert_eq(cl_logkeys_format_pub("o", two.k[1].pk, &two, out, 40), 0, "too small: 0");
  const char *bad[] = {
      "key: ed25519:AAAA\n",
      "log-key: ed25519:xSS9OhykNOx3UiGTNDdbjszzkQCxDRqYpowrImcYdV8= 5\n",
      "log-key: ed25519:xSS9OhykNOx3UiGTNDdbjszzkQCxDRqYpowrImcYdV8= 9-3\n",
      "log-key: ed25519:xSS9OhykNOx3UiGTNDdbjszzkQCxDRqYpowrImcYdV8= 0-\n",
      ("key: ed25519:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n" /* one case, two lines */
       "log-key: ed25519:xSS9OhykNOx3UiGTNDdbjszzkQCxDRqYpowrImcYdV8= 1-\n"),
      "origin: x\n",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    cr_assert_eq(cl_logkeys_parse_pub(bad[i], strlen(bad[i]), &ks, NULL, &err), CL_EMALFORMED,
                 "case %zu accepted", i);
}

/* ---- the online path's pieces: a staged key, the batch, the switch ---- */

/* The rotation batch committed like any other write: a log whose key file
 * has the new key staged switches at the commit; one without it keeps the
 * same records, refuses to sign (checkpoints, its own records) with an
 * error naming the staged file, and switches once the key is placed. */
Test(logkey, batch_switch_and_missing_key) {
  cl_log *lg = cl_test_log_open(dir, 8);
  cl_err err;
  cl_logkey_status st;
  cl_signer nk = {0};
  cr_assert_eq(cl_signer_generate(&nk, &err), 0);
  char staged[4300];
  snprintf(staged, sizeof staged, "%s.new", key_path);
  uint8_t pk[32];
  cr_assert_eq(cl_logkey_staged(lg, pk, NULL, 0, &err), CL_ENOTFOUND);

  /* committed without the staged key */
  cl_logkey_batch lb;
  cr_assert_eq(cl_logkey_rotation_batch(lg, nk.pk, NULL, &lb, &err), 0, "%s", err.msg);
  cl_append_result r;
  cr_assert_eq(cl_log_append(lg, &lb.b, &r, &err), 0, "%s", err.msg);
  uint64_t rseq = r.seq[1];
  cl_append_result_free(&r);
  cl_logkey_batch_free(&lb);
  cl_log_logkey_status(lg, &st);
  cr_assert_neq(st.error.code, 0);
  cr_assert(strstr(st.error.msg, "log.key.new"), "%s", st.error.msg);
  cr_assert_eq(memcmp(st.log_pk, nk.pk, 32), 0, "the log's key is the new one");
  cr_assert_eq(memcmp(st.signer_pk, old_key.pk, 32), 0, "the node still holds the old one");
  char *note;
  size_t nl;
  cr_assert_eq(cl_log_checkpoint(lg, &note, &nl, &err), CL_EREVOKED);
  cr_assert(strstr(err.msg, "log.key.new"), "%s", err.msg);
  uint8_t h[1][32] = {{0}}, sig[64];
  cr_assert_eq(cl_log_sign_batch(lg, (const uint8_t(*)[32])h, 1, sig, pk, &err), CL_EREVOKED);
  /* a second rotation is refused while this one is not followed */
  cl_signer k3 = {0};
  cr_assert_eq(cl_signer_generate(&k3, &err), 0);
  cr_assert_eq(cl_logkey_rotation_batch(lg, k3.pk, NULL, &lb, &err), CL_EDENIED);

  /* the wrong key staged: still refused, and said so */
  cr_assert_eq(cl_signer_save(&k3, staged, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_log_logkey_retry(lg, &err), 0);
  cl_log_logkey_status(lg, &st);
  cr_assert_neq(st.error.code, 0);
  cr_assert(st.staged && memcmp(st.staged_pk, k3.pk, 32) == 0);
  unlink(staged);
  char stpub[4400];
  snprintf(stpub, sizeof stpub, "%s.pub", staged);
  unlink(stpub);

  /* the right one: the next checkpoint request switches */
  cr_assert_eq(cl_signer_save(&nk, staged, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_log_checkpoint(lg, &note, &nl, &err), 0, "%s", err.msg);
  cl_checkpoint cp;
  cr_assert_eq(cl_checkpoint_verify(note, nl, cl_log_origin(lg), nk.pk, &cp, &err), 0, "%s",
               err.msg);
  free(note);
  cl_log_logkey_status(lg, &st);
  cr_assert_eq(st.error.code, 0, "%s", st.error.msg);
  cr_assert_eq(memcmp(st.signer_pk, nk.pk, 32), 0);
  cr_assert(!st.staged, "the staged key was renamed over the key file");
  cr_assert_eq(cl_log_sign_batch(lg, (const uint8_t(*)[32])h, 1, sig, pk, &err), 0, "%s", err.msg);
  cr_assert_eq(memcmp(pk, nk.pk, 32), 0);
  cl_log_close(lg);
  cl_logkeys pub;
  cr_assert_eq(cl_logkeys_load_pub(pub_path, &pub, NULL, &err), 0, "%s", err.msg);
  cr_assert(pub.n == 2 && pub.k[0].to == rseq && pub.k[1].from == rseq);
  verify_ok(&pub, NULL, 0);

  /* staged before the commit: the commit itself switches, and the
   * reopened log signs with the new key */
  lg = cl_test_log_open(dir, 8);
  cr_assert_eq(cl_signer_save(&k3, staged, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_logkey_staged(lg, pk, NULL, 0, &err), 0, "%s", err.msg);
  cr_assert_eq(memcmp(pk, k3.pk, 32), 0);
  cr_assert_eq(cl_logkey_rotation_batch(lg, nk.pk, NULL, &lb, &err), CL_EEXIST);
  cr_assert_eq(cl_logkey_rotation_batch(lg, k3.pk, NULL, &lb, &err), 0, "%s", err.msg);
  cr_assert_eq(cl_log_append(lg, &lb.b, &r, &err), 0, "%s", err.msg);
  cl_append_result_free(&r);
  cl_logkey_batch_free(&lb);
  cl_log_logkey_status(lg, &st);
  cr_assert_eq(st.error.code, 0, "%s", st.error.msg);
  cr_assert_eq(memcmp(st.signer_pk, k3.pk, 32), 0);
  cl_log_close(lg);
  lg = cl_test_log_open(dir, 8);
  cr_assert_eq(memcmp(cl_log_signer(lg)->pk, k3.pk, 32), 0);
  cl_log_close(lg);
  cr_assert_eq(cl_logkeys_load_pub(pub_path, &pub, NULL, &err), 0, "%s", err.msg);
  cr_assert_eq(pub.n, 3);
  verify_ok(&pub, NULL, 0);
  cl_signer_free(&nk);
  cl_signer_free(&k3);
}

/* clinlog verify: the auditor's full replay of a data directory, or with
 * --remote of a live node through its API (cmd_verify_remote.c). */
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/cli/cli.h"
#include "store/keys.h"
#include "store/logkey.h"
#include "store/verify.h"

static void on_progress(void *ctx, uint64_t done, uint64_t total) {
  cli_progress_update(ctx, done, total);
}

int cmd_verify(int argc, char **argv) {
  static const struct option opts[] = {{"json", no_argument, 0, 'j'},
                                       {"hashes-only", no_argument, 0, 'H'},
                                       {"master-key", required_argument, 0, 'm'},
                                       {"log-key", required_argument, 0, 'k'},
                                       {"checkpoint", required_argument, 0, 'c'},
                                       {"remote", no_argument, 0, 'r'},
                                       {"key", required_argument, 0, CLI_OPT_CERT_KEY},
                                       {"help", no_argument, 0, 'h'},
                                       CLI_REMOTE_OPTIONS,
                                       {0, 0, 0, 0}};
  int json = 0, remote = 0, c;
  cli_remote rem = {0};
  cl_verify_options o = {0};
  const char *keyfile = NULL, *cpfile = NULL;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (cli_remote_option(&rem, c, optarg))
      continue;
    switch (c) {
    case 'r':
      remote = 1;
      break;
    case 'j':
      json = 1;
      break;
    case 'H':
      o.hashes_only = 1;
      break;
    case 'm':
      o.master_key_path = optarg;
      break;
    case 'k':
      keyfile = optarg;
      break;
    case 'c':
      cpfile = optarg;
      break;
    default:
      fprintf(c == 'h' ? stdout : stderr,
              "usage: clinlog verify DIR [--json] [--hashes-only] [--master-key FILE]\n"
              "                          [--log-key LOG.pub] [--checkpoint NOTE]\n"
              "       clinlog verify --remote --server HOST:PORT [--json] [--hashes-only]\n"
              "                          [--log-key LOG.pub] [--checkpoint NOTE] [TLS options]\n"
              "Replays DIR from event 1: recomputes every Merkle leaf and the root, checks\n"
              "the stored tree, stream versions and event ids, every signature, and every\n"
              "stored checkpoint; with the master key (default DIR/keys/master.key) also\n"
              "decrypts each event, checks it against its hash and the keyring as it stood.\n"
              "--log-key: the log's public key obtained out of band (default: the log's own).\n"
              "--checkpoint: a checkpoint saved earlier; catches truncation and rewrites.\n"
              "--remote: replays a live node through its API instead: signs a checkpoint of\n"
              "the head, reads every record, recomputes every leaf, the root and every\n"
              "signature, checks the root against the signed checkpoint and names the first\n"
              "divergent record (content is not decrypted; keys are not needed). Without\n"
              "--log-key the log key history is learned from the log: the genesis event's\n"
              "key, then each $log key registration and revocation, accepted only if signed\n"
              "by the log key in force before it; each checkpoint is checked with the key\n"
              "valid at its size (so --hashes-only skips signatures only with --log-key).\n"
              "Exit status: 0 verified, 3 divergence found, 1 could not run.\n" CLI_REMOTE_USAGE
              "  --key PEM            same as --cert-key\n");
      return c == 'h' ? 0 : 2;
    }
  }
  if (remote != !!rem.server || optind + (remote ? 0 : 1) != argc) {
    fprintf(stderr, "usage: clinlog verify DIR [options]\n"
                    "       clinlog verify --remote --server HOST:PORT [options]\n");
    return 2;
  }
  o.dir = remote ? NULL : argv[optind];
  if (!o.master_key_path && getenv("CLINLOG_MASTER_KEY") && *getenv("CLINLOG_MASTER_KEY"))
    o.master_key_path = getenv("CLINLOG_MASTER_KEY");
  cl_err err;
  cl_err_clear(&err);
  uint8_t pk[32];
  char *note = NULL;
  cl_logkeys lks;
  if (keyfile) {
    /* log.pub: after a log key rotation it lists every log key with the
     * tree sizes it signs (store/logkey.h); "key:" is the current one */
    if (cl_logkeys_load_pub(keyfile, &lks, NULL, &err))
      return cli_fail("verify: --log-key", &err);
    const cl_logkey *cur = cl_logkeys_current(&lks);
    memcpy(pk, cur ? cur->pk : lks.k[lks.n - 1].pk, 32);
    o.log_public_key = pk;
    o.log_keys = &lks;
  }
  if (cpfile) {
    FILE *f = fopen(cpfile, "r");
    if (!f) {
      perror(cpfile);
      return 1;
    }
    note = malloc(65536);
    o.checkpoint_len = note ? fread(note, 1, 65535, f) : 0;
    fclose(f);
    o.checkpoint = note;
  }
  if (remote) {
    int st =
        cli_verify_remote(&rem, json, o.hashes_only, keyfile ? &lks : NULL, note, o.checkpoint_len);
    free(note);
    return st;
  }
  cli_progress prog;
  cli_progress_start(&prog, "verify");
  o.progress = on_progress;
  o.progress_ctx = &prog;
  cl_verify_report rep;
  int rc = cl_verify_dir(&o, &rep, &err);
  cli_progress_end(&prog);
  free(note);
  if (rc)
    return cli_fail("verify", &err);
  char root[64];
  sodium_bin2base64(root, sizeof root, rep.root, 32, sodium_base64_VARIANT_ORIGINAL);
  double rate = rep.seconds > 0 ? (double)rep.events / rep.seconds : 0;
  if (json) {
    json_t *j = json_pack(
        "{s:b, s:I, s:I, s:s, s:I, s:I, s:I, s:I, s:b, s:f, s:f}", "ok", rep.ok, "events",
        (json_int_t)rep.events, "treeSize", (json_int_t)rep.tree_size, "rootHash", root,
        "checkpoints", (json_int_t)rep.checkpoints, "signatures", (json_int_t)rep.signatures,
        "decrypted", (json_int_t)rep.decrypted, "erased", (json_int_t)rep.erased, "contentChecked",
        rep.content_checked, "seconds", rep.seconds, "eventsPerSecond", rate);
    if (!rep.ok) {
      json_object_set_new(j, "failSeq", json_integer((json_int_t)rep.fail_seq));
      json_object_set_new(j, "failure", json_string(rep.fail_what));
    }
    cli_print_json(stdout, j);
    json_decref(j);
  } else if (rep.ok) {
    printf("verified: %llu events, tree size %llu, root %s\n"
           "  %llu checkpoints, %llu signatures%s, %llu events decrypted, %llu erased\n"
           "  %.2f s (%.0f events/s)\n",
           (unsigned long long)rep.events, (unsigned long long)rep.tree_size, root,
           (unsigned long long)rep.checkpoints, (unsigned long long)rep.signatures,
           o.hashes_only ? " (skipped: --hashes-only)" : "", (unsigned long long)rep.decrypted,
           (unsigned long long)rep.erased, rep.seconds, rate);
  } else {
    printf("FAILED at seq %llu: %s\n", (unsigned long long)rep.fail_seq, rep.fail_what);
  }
  return rep.ok ? 0 : 3;
}

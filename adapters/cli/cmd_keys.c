/* clinlog keys: the master key and the log key of a data directory.
 *
 * `keys rotate-master DIR` rewraps every stream data key under a new master
 * key without rewriting records (store/masterkey.h), offline: it refuses a
 * directory a running clinlogd holds (RocksDB's lock tells). `keys
 * new-master FILE` writes a new master key file, to rotate every member of
 * a cluster to the same key. `keys rotate-log DIR` registers a new log
 * signing key in the log, revokes the old one and signs a handover
 * checkpoint with both (store/logkey.h), offline as well; `keys stage-log
 * DIR` places the next log key as keys/log.key.new next to a running
 * clinlogd and `keys rotate-log --online` asks the cluster's leader to
 * rotate through Raft (Cluster.RotateLogKey).
 *
 * Exit status: 0 done, 1 error, 2 usage. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapters/cli/cli.h"
#include "adapters/pbjson/pbjson.h"
#include "clinlog/v1/cluster.pb-c.h"
#include "store/db.h"
#include "store/keys.h"
#include "store/logkey.h"
#include "store/masterkey.h"

static const char USAGE[] =
    "usage: clinlog keys rotate-master DIR [--new-key FILE] [--master-key FILE] [--check]\n"
    "                                      [--json]\n"
    "       clinlog keys new-master FILE\n"
    "       clinlog keys rotate-log DIR [--new-key FILE] [--master-key FILE] [--check]\n"
    "                                   [--single-node] [--json]\n"
    "rotate-master: rewraps every stream's data key under a new master key, in one\n"
    "atomic write, and puts the new key in the key file (DIR/keys/master.key, or\n"
    "--master-key FILE, or $CLINLOG_MASTER_KEY). Records, stream tags, the Merkle\n"
    "tree and projections stay as they are. Offline: stop clinlogd first. The old\n"
    "key file is replaced: copy it away first if backups made until now must stay\n"
    "readable (they are encrypted under it). A cluster: every node is stopped and\n"
    "rotated with the same --new-key file before any starts (docs/operations.md).\n"
    "  --new-key FILE   the new master key (a 0600 key file, e.g. from new-master);\n"
    "                   default: a new random key\n"
    "  --check          only check that the rotation can run (not in use, the key\n"
    "                   is the log's); change nothing\n"
    "  --json           one JSON object: streams rewrapped, key checks, seconds, and\n"
    "                   sealedKeys (for `clinlog init --sealed-keys` of a new member)\n"
    "new-master: writes a new random master key to FILE (created 0600).\n"
    "rotate-log: registers a new log signing key in the log (KeyRegistered of $log)\n"
    "and revokes the old one (KeyRevoked) in one batch signed by the old key, signs\n"
    "a checkpoint of the head with both, puts the new key in DIR/keys/log.key and\n"
    "lists both keys, with the tree sizes each signs, in DIR/log.pub: give auditors\n"
    "and witnesses the new log.pub. The origin does not change. Offline: stop\n"
    "clinlogd first; single nodes only (a cluster, or a running node: --online,\n"
    "below; docs/operations.md).\n"
    "  --single-node    DIR is a clinlogd node's (it has raft/) that stays a\n"
    "                   single-node cluster: the rotation bypasses its Raft log\n"
    "  --new-key FILE   the new log key (an Ed25519 key file, e.g. from\n"
    "                   `clinlog keygen`); default: a new random key\n"
    "       clinlog keys stage-log DIR --new-key FILE [--json]\n"
    "       clinlog keys rotate-log --online --server HOST:PORT [TLS options]\n"
    "                               [--reason TEXT] [--check] [--no-follow] [--json]\n"
    "stage-log: copies the new log key FILE to DIR/keys/log.key.new (0600), where\n"
    "the online rotation takes it from; works while clinlogd runs. Stage the same\n"
    "key on every member (voters and standbys) first.\n"
    "rotate-log --online: asks the cluster's leader (Cluster.RotateLogKey, role\n"
    "admin) to rotate the log key through Raft: it checks that every member has\n"
    "the key staged (refusing, with nothing committed, if one has not), commits\n"
    "the KeyRegistered/KeyRevoked batch signed by the old key, and every node\n"
    "switches to the staged key as it applies it (docs/operations.md). A running\n"
    "single node works the same way.\n"
    "  --check          only check that every member is ready; change nothing\n"
    "  --no-follow      do not retry on the leader a follower names\n";

static void on_progress(void *ctx, uint64_t done, uint64_t total) {
  cli_progress_update(ctx, done, total);
}

/* 1 if a and b name the same existing file. */
static int same_file(const char *a, const char *b) {
  struct stat sa, sb;
  return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Rotations are offline: 1 (err set) if a running clinlogd holds DIR. */
static int in_use(const char *dir, cl_err *err) {
  if (!cl_db_in_use(dir))
    return 0;
  cl_err_set(err, CL_EDENIED,
             "%s is in use (a running clinlogd holds its database lock): stop the node first, "
             "rotation is offline",
             dir);
  return 1;
}

/* The options of both rotations. Returns -1 to go on (*dir set), else
 * the exit status. */
typedef struct rotate_args {
  const char *dir, *new_key, *mk;
  int json, check, single_node;
} rotate_args;

static int rotate_parse(int argc, char **argv, rotate_args *a) {
  static const struct option opts[] = {
      {"new-key", required_argument, 0, 'n'}, {"master-key", required_argument, 0, 'm'},
      {"check", no_argument, 0, 'c'},         {"json", no_argument, 0, 'j'},
      {"single-node", no_argument, 0, 's'},   {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  memset(a, 0, sizeof *a);
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 'n':
      a->new_key = optarg;
      break;
    case 'm':
      a->mk = optarg;
      break;
    case 'c':
      a->check = 1;
      break;
    case 'j':
      a->json = 1;
      break;
    case 's':
      a->single_node = 1;
      break;
    default:
      fputs(USAGE, c == 'h' ? stdout : stderr);
      return c == 'h' ? 0 : 2;
    }
  }
  if (optind + 1 != argc) {
    fputs(USAGE, stderr);
    return 2;
  }
  a->dir = argv[optind];
  if (!a->mk && getenv("CLINLOG_MASTER_KEY") && *getenv("CLINLOG_MASTER_KEY"))
    a->mk = getenv("CLINLOG_MASTER_KEY");
  return -1;
}

static int rotate_master(int argc, char **argv) {
  rotate_args a;
  int st0 = rotate_parse(argc, argv, &a);
  if (st0 >= 0)
    return st0;
  const char *dir = a.dir, *new_key = a.new_key, *mk = a.mk;
  int json = a.json, check = a.check;
  char mkbuf[4096], mknew[4200];
  if (!mk) {
    snprintf(mkbuf, sizeof mkbuf, "%s/keys/master.key", dir);
    mk = mkbuf;
  }
  snprintf(mknew, sizeof mknew, "%s.new", mk);
  cl_err err;
  cl_err_clear(&err);
  if (cl_crypto_init(&err))
    return cli_fail("keys rotate-master", &err);
  if (new_key && (same_file(new_key, mk) || same_file(new_key, mknew))) {
    cl_err_set(&err, CL_EINVAL,
               "--new-key %s is the key file itself (or its .new): give a copy kept elsewhere",
               new_key);
    return cli_fail("keys rotate-master", &err);
  }
  if (in_use(dir, &err))
    return cli_fail("keys rotate-master", &err);
  cl_master_key nk = {0};
  if (new_key && cl_master_key_load(&nk, new_key, &err))
    return cli_fail("keys rotate-master: --new-key", &err);

  cl_log_options o;
  cl_log_options_init(&o);
  o.dir = dir;
  o.master_key_path = mk;
  cl_log *log = NULL;
  int st = 1;
  if (cl_log_open(&o, &log, &err)) {
    st = cli_fail("keys rotate-master", &err);
    goto free_key;
  }
  uint64_t applied = cl_log_applied_index(log);
  if (check) {
    if (json) {
      json_t *j =
          json_pack("{s:s, s:b, s:I}", "dir", dir, "ready", 1, "appliedIndex", (json_int_t)applied);
      cli_print_json(stdout, j);
      json_decref(j);
    } else {
      printf("%s can be rotated: not in use, %s is its master key (Raft index %llu applied)\n", dir,
             mk, (unsigned long long)applied);
    }
    st = 0;
    goto close_log;
  }

  cli_progress prog;
  cli_progress_start(&prog, "rewrapping stream keys");
  cl_rotate_options ro = {
      .new_key = new_key ? &nk : NULL, .progress = on_progress, .progress_ctx = &prog};
  cl_rotate_report rep;
  int rc = cl_masterkey_rotate(log, &ro, &rep, &err);
  cli_progress_end(&prog);
  if (rc) {
    st = cli_fail("keys rotate-master", &err);
    goto close_log;
  }
  char oldc[33], newc[33], sealedc[2 * CL_SEALED_KEYS_MAX + 1];
  uint8_t sealed[CL_SEALED_KEYS_MAX];
  size_t nsealed = 0;
  cl_hex(rep.old_check, 16, oldc);
  cl_hex(rep.new_check, 16, newc);
  if (cl_masterkey_sealed_keys(log, sealed, &nsealed, &err)) {
    st = cli_fail("keys rotate-master", &err);
    goto close_log;
  }
  cl_hex(sealed, nsealed, sealedc);
  if (json) {
    json_t *j = json_pack("{s:s, s:I, s:I, s:s, s:s, s:s, s:s, s:I, s:f}", "dir", dir, "streams",
                          (json_int_t)rep.streams, "erased", (json_int_t)rep.erased, "oldKeyCheck",
                          oldc, "newKeyCheck", newc, "keyFile", rep.key_path, "sealedKeys", sealedc,
                          "appliedIndex", (json_int_t)applied, "seconds", rep.seconds);
    cli_print_json(stdout, j);
    json_decref(j);
  } else {
    printf("rotated the master key of %s: %llu stream keys rewrapped, %llu erased streams left "
           "erased (%.2f s)\n"
           "  old key check %s\n  new key check %s\n"
           "  the new key is in %s; the old one is no longer there\n"
           "  sealed keys (for `clinlog init --sealed-keys` of a new member): %s\n",
           dir, (unsigned long long)rep.streams, (unsigned long long)rep.erased, rep.seconds, oldc,
           newc, rep.key_path, sealedc);
  }
  st = 0;
close_log:
  cl_log_close(log);
free_key:
  cl_master_key_free(&nk);
  return st;
}

static int new_master(int argc, char **argv) {
  if (argc != 2 || !strcmp(argv[1], "--help")) {
    fputs(USAGE, argc == 2 ? stdout : stderr);
    return argc == 2 ? 0 : 2;
  }
  cl_err err;
  cl_err_clear(&err);
  cl_master_key k = {0};
  if (cl_crypto_init(&err) || cl_master_key_generate(&k, &err) ||
      cl_master_key_save(&k, argv[1], &err)) {
    cl_master_key_free(&k);
    return cli_fail("keys new-master", &err);
  }
  uint8_t check[16];
  char hex[33];
  cl_key_check(k.key, check);
  cl_hex(check, 16, hex);
  cl_master_key_free(&k);
  printf("wrote a new master key to %s (key check %s)\n", argv[1], hex);
  return 0;
}

static int rotate_log(int argc, char **argv) {
  rotate_args a;
  int st0 = rotate_parse(argc, argv, &a);
  if (st0 >= 0)
    return st0;
  const char *dir = a.dir, *new_key = a.new_key;
  int json = a.json, check = a.check;
  cl_err err;
  cl_err_clear(&err);
  if (cl_crypto_init(&err))
    return cli_fail("keys rotate-log", &err);
  if (in_use(dir, &err))
    return cli_fail("keys rotate-log", &err);
  /* the rotation's events are written to the store, not through the Raft
   * log: a member that joined later and replayed that log would miss them */
  char raft[4200];
  struct stat rs;
  snprintf(raft, sizeof raft, "%s/raft", dir);
  if (!a.single_node && !check && stat(raft, &rs) == 0) {
    cl_err_set(&err, CL_EDENIED,
               "%s holds Raft state: the rotation's events bypass the Raft log, so only a node "
               "that stays a single-node cluster may be rotated offline (--single-node says so); "
               "a cluster, or a running node: stage-log on every member, then rotate-log "
               "--online (docs/operations.md)",
               dir);
    return cli_fail("keys rotate-log", &err);
  }
  cl_signer nk = {0};
  if (new_key && cl_signer_load(&nk, new_key, &err))
    return cli_fail("keys rotate-log: --new-key", &err);
  cl_log_options o;
  cl_log_options_init(&o);
  o.dir = dir;
  o.master_key_path = a.mk;
  cl_log *log = NULL;
  int st = 1;
  if (cl_log_open(&o, &log, &err)) {
    st = cli_fail("keys rotate-log", &err);
    goto free_key;
  }
  if (!cl_log_signer(log)) {
    cl_err_set(&err, CL_ENOTFOUND, "%s has no log key (keys/log.key)", dir);
    st = cli_fail("keys rotate-log", &err);
    goto close_log;
  }
  char oldh[65], newh[65];
  if (check) {
    cl_hex(cl_log_signer(log)->pk, 32, oldh);
    if (json) {
      json_t *j = json_pack("{s:s, s:b, s:s}", "dir", dir, "ready", 1, "logKey", oldh);
      cli_print_json(stdout, j);
      json_decref(j);
    } else {
      printf("%s can be rotated: not in use, its log key is %s\n", dir, oldh);
    }
    st = 0;
    goto close_log;
  }
  cl_logkey_rotate_options ro = {.new_key = new_key ? &nk : NULL};
  cl_logkey_rotate_report rep;
  if (cl_logkey_rotate(log, &ro, &rep, &err)) {
    st = cli_fail("keys rotate-log", &err);
    goto close_log;
  }
  cl_hex(rep.old_pk, 32, oldh);
  cl_hex(rep.new_pk, 32, newh);
  if (json) {
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:f}", "dir", dir, "origin",
                          cl_log_origin(log), "oldKey", oldh, "newKey", newh, "revokedAtSeq",
                          (json_int_t)rep.seq, "handoverTreeSize", (json_int_t)rep.tree_size,
                          "keyFile", rep.key_path, "logPub", rep.pub_path, "seconds", rep.seconds);
    cli_print_json(stdout, j);
    json_decref(j);
  } else {
    printf("rotated the log key of %s (origin %s, unchanged) in %.2f s\n"
           "  old key %s: registered, revoked at seq %llu, signs tree sizes up to %llu\n"
           "  new key %s: signs from tree size %llu on\n"
           "  handover checkpoint at tree size %llu, signed by both\n"
           "  the new key is in %s; %s lists both: give it to auditors and witnesses\n",
           dir, cl_log_origin(log), rep.seconds, oldh, (unsigned long long)rep.seq,
           (unsigned long long)rep.seq, newh, (unsigned long long)rep.seq,
           (unsigned long long)rep.tree_size, rep.key_path, rep.pub_path);
  }
  st = 0;
close_log:
  cl_log_close(log);
free_key:
  cl_signer_free(&nk);
  return st;
}

/* ---- stage-log ---- */

/* fsyncs DIR/keys, so the staged file's entry lasts. */
static int sync_keys_dir(const char *dir, cl_err *err) {
  char kd[4200];
  snprintf(kd, sizeof kd, "%s/keys", dir);
  int fd = open(kd, O_RDONLY | O_DIRECTORY);
  int ok = fd >= 0 && fsync(fd) == 0;
  if (fd >= 0)
    close(fd);
  return ok ? 0 : cl_err_set(err, CL_EIO, "%s: %s", kd, strerror(errno));
}

static int stage_log(int argc, char **argv) {
  static const struct option opts[] = {{"new-key", required_argument, 0, 'n'},
                                       {"json", no_argument, 0, 'j'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  const char *key = NULL;
  int json = 0, c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (c == 'n')
      key = optarg;
    else if (c == 'j')
      json = 1;
    else {
      fputs(USAGE, c == 'h' ? stdout : stderr);
      return c == 'h' ? 0 : 2;
    }
  }
  if (optind + 1 != argc || !key) {
    fprintf(stderr, "clinlog keys stage-log: DIR and --new-key FILE required\n");
    return 2;
  }
  const char *dir = argv[optind];
  cl_err err;
  cl_err_clear(&err);
  if (cl_crypto_init(&err))
    return cli_fail("keys stage-log", &err);
  char kp[4200], np[4300];
  snprintf(kp, sizeof kp, "%s/keys/log.key", dir);
  snprintf(np, sizeof np, "%s.new", kp);
  cl_signer nk = {0}, cur = {0}, have = {0};
  int st = 1;
  if (cl_signer_load(&nk, key, &err)) {
    st = cli_fail("keys stage-log: --new-key", &err);
    goto out;
  }
  if (cl_signer_load(&cur, kp, &err)) {
    st = cli_fail("keys stage-log", &err);
    goto out;
  }
  if (memcmp(cur.pk, nk.pk, 32) == 0) {
    cl_err_set(&err, CL_EEXIST, "%s is the key %s already holds", key, kp);
    st = cli_fail("keys stage-log", &err);
    goto out;
  }
  char hex[65];
  cl_hex(nk.pk, 32, hex);
  if (cl_signer_load(&have, np, &err) == 0) {
    if (memcmp(have.pk, nk.pk, 32) != 0) {
      cl_err_set(&err, CL_EEXIST,
                 "%s holds another key already (a rotation not made yet?): remove it first", np);
      st = cli_fail("keys stage-log", &err);
      goto out;
    }
  } else if (cl_signer_save(&nk, np, &err) || sync_keys_dir(dir, &err)) {
    st = cli_fail("keys stage-log", &err);
    goto out;
  }
  if (json) {
    json_t *j = json_pack("{s:s, s:s, s:s}", "dir", dir, "stagedKey", hex, "file", np);
    cli_print_json(stdout, j);
    json_decref(j);
  } else {
    printf("staged log key %.16s… as %s\n"
           "  stage the same key on every member, then: clinlog keys rotate-log --online "
           "--server LEADER\n",
           hex, np);
  }
  st = 0;
out:
  cl_signer_free(&nk);
  cl_signer_free(&cur);
  cl_signer_free(&have);
  return st;
}

/* ---- rotate-log --online ---- */

enum { OPT_ONLINE = 1, OPT_REASON, OPT_CHECK, OPT_JSON, OPT_NO_FOLLOW, OPT_HELP };

static void print_node_keys(const Clinlog__V1__RotateLogKeyResponse *r) {
  for (size_t i = 0; i < r->n_nodes; i++) {
    const Clinlog__V1__NodeLogKey *n = r->nodes[i];
    char lk[65] = "-", sk[65] = "-";
    if (n->log_key.len == 32)
      cl_hex(n->log_key.data, 32, lk);
    if (n->staged_key.len == 32)
      cl_hex(n->staged_key.data, 32, sk);
    printf("  node %llu (%s): log key %.16s…, staged %.16s…\n", (unsigned long long)n->node_id,
           n->api_address, lk, sk);
  }
}

static int rotate_log_online(int argc, char **argv) {
  static const struct option opts[] = {{"online", no_argument, 0, OPT_ONLINE},
                                       {"reason", required_argument, 0, OPT_REASON},
                                       {"check", no_argument, 0, OPT_CHECK},
                                       {"json", no_argument, 0, OPT_JSON},
                                       {"no-follow", no_argument, 0, OPT_NO_FOLLOW},
                                       {"help", no_argument, 0, OPT_HELP},
                                       CLI_REMOTE_OPTIONS,
                                       {0, 0, 0, 0}};
  cli_remote remote = {0};
  int json = 0, follow = 1, c;
  Clinlog__V1__RotateLogKeyRequest req = CLINLOG__V1__ROTATE_LOG_KEY_REQUEST__INIT;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (cli_remote_option(&remote, c, optarg))
      continue;
    switch (c) {
    case OPT_ONLINE:
      break;
    case OPT_REASON:
      req.reason = optarg;
      break;
    case OPT_CHECK:
      req.check = 1;
      break;
    case OPT_JSON:
      json = 1;
      break;
    case OPT_NO_FOLLOW:
      follow = 0;
      break;
    default:
      fputs(USAGE, c == OPT_HELP ? stdout : stderr);
      return c == OPT_HELP ? 0 : 2;
    }
  }
  if (optind != argc) {
    fprintf(stderr, "clinlog keys rotate-log --online: no DIR (the server's is rotated)\n");
    return 2;
  }
  if (!remote.server) {
    fprintf(stderr, "clinlog keys rotate-log --online: --server HOST:PORT required\n");
    return 2;
  }
  char target[1024];
  ProtobufCMessage *m = NULL;
  int rc = cli_call_leader(&remote, follow, "keys rotate-log --online",
                           "/clinlog.v1.Cluster/RotateLogKey", &req.base,
                           &clinlog__v1__rotate_log_key_response__descriptor,
                           remote.timeout_ms > 0 ? remote.timeout_ms : 90000, &m, target,
                           sizeof target);
  if (rc != 0)
    return rc;
  Clinlog__V1__RotateLogKeyResponse *r = (Clinlog__V1__RotateLogKeyResponse *)m;
  int status = 0;
  if (json) {
    status = cli_print_message(m, "keys rotate-log");
  } else {
    char oldh[65] = "", newh[65] = "";
    if (r->old_public_key.len == 32)
      cl_hex(r->old_public_key.data, 32, oldh);
    if (r->new_public_key.len == 32)
      cl_hex(r->new_public_key.data, 32, newh);
    if (r->checked_only)
      printf("the log key of the cluster at %s can be rotated: %.16s… -> %.16s…, staged on "
             "every member\n",
             target, oldh, newh);
    else
      printf("rotated the log key through Raft (leader %s)\n"
             "  old key %s: revoked at seq %llu, signs tree sizes up to %llu\n"
             "  new key %s: signs from tree size %llu on\n"
             "  every member switches as it applies seq %llu; each node's DIR/log.pub lists "
             "both keys: give it to auditors and witnesses\n",
             target, oldh, (unsigned long long)r->revoked_at_seq,
             (unsigned long long)r->revoked_at_seq, newh, (unsigned long long)r->revoked_at_seq,
             (unsigned long long)r->revoked_at_seq);
    print_node_keys(r);
  }
  protobuf_c_message_free_unpacked(m, NULL);
  return status;
}

int cmd_keys(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "rotate-log")) {
    for (int i = 2; i < argc; i++)
      if (!strcmp(argv[i], "--online"))
        return rotate_log_online(argc - 1, argv + 1);
    return rotate_log(argc - 1, argv + 1);
  }
  if (argc >= 2 && !strcmp(argv[1], "stage-log"))
    return stage_log(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "rotate-master"))
    return rotate_master(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "new-master"))
    return new_master(argc - 1, argv + 1);
  int help = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
  fputs(USAGE, help ? stdout : stderr);
  return help ? 0 : 2;
}

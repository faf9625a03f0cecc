/* clinlog init / keygen.
 *
 * `init DIR` creates a new log (keys, genesis events, first checkpoint).
 * `init DIR --replica-of SRCDIR` (or --master-key/--log-key/--origin)
 * creates the empty store of a new member of an existing cluster: the
 * cluster's key files and origin, no events (they come through
 * replication). Key files are copied into DIR/keys with mode 0600 and never
 * over a file with other contents. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapters/cli/cli.h"
#include "store/keys.h"
#include "store/masterkey.h"

int cmd_keygen(int argc, char **argv) {
  static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    fprintf(
        c == 'h' ? stdout : stderr,
        "usage: clinlog keygen FILE\n"
        "Writes a new Ed25519 secret key to FILE (mode 0600) and its public key to FILE.pub.\n");
    return c == 'h' ? 0 : 2;
  }
  if (optind + 1 != argc) {
    fprintf(stderr, "usage: clinlog keygen FILE\n");
    return 2;
  }
  cl_err err;
  cl_err_clear(&err);
  cl_signer s = {0};
  if (cl_crypto_init(&err) || cl_signer_generate(&s, &err) ||
      cl_signer_save(&s, argv[optind], &err)) {
    cl_signer_free(&s);
    return cli_fail("keygen", &err);
  }
  char hex[65];
  cl_hex(s.pk, 32, hex);
  printf("%s\n", hex);
  cl_signer_free(&s);
  return 0;
}

/* mkdir -p, mode 0700 for what it creates. */
static int mkdir_p(const char *path) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(buf, 0700) != 0 && errno != EEXIST)
      return -1;
    *p = '/';
  }
  return mkdir(buf, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

/* ---- init --replica-of ---- */

#define SMALL_FILE_MAX 4096 /* key files are 40 bytes, .pub files under 300 */

/* Reads a whole small file into buf. Errors: CL_ENOTFOUND, CL_EIO,
 * CL_EINVAL (larger than cap: not a key file). */
static int read_small(const char *path, uint8_t *buf, size_t cap, size_t *n, cl_err *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return cl_err_set(err, errno == ENOENT ? CL_ENOTFOUND : CL_EIO, "%s: %s", path,
                      strerror(errno));
  size_t got = 0;
  int rc = 0;
  for (;;) {
    uint8_t extra;
    ssize_t r = got < cap ? read(fd, buf + got, cap - got) : read(fd, &extra, 1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      rc = cl_err_set(err, CL_EIO, "%s: %s", path, strerror(errno));
      break;
    }
    if (r == 0)
      break;
    if (got == cap) {
      rc = cl_err_set(err, CL_EINVAL, "%s: larger than %zu bytes, not a key file", path, cap);
      break;
    }
    got += (size_t)r;
  }
  close(fd);
  *n = got;
  return rc;
}

/* Creates `path` (mode 0600, fsync'd) holding buf. An existing file with
 * the same bytes is accepted (rerunning after a failure); one with other
 * bytes is CL_EEXIST: a key is never overwritten. Errors: CL_EEXIST,
 * CL_EIO. */
static int put_file(const char *path, const uint8_t *buf, size_t n, cl_err *err) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0 && errno == EEXIST) {
    uint8_t old[SMALL_FILE_MAX];
    size_t m = 0;
    int rc = read_small(path, old, sizeof old, &m, err);
    int same = rc == 0 && m == n && sodium_memcmp(old, buf, n) == 0;
    sodium_memzero(old, sizeof old);
    if (rc == 0 && !same)
      rc = cl_err_set(err, CL_EEXIST, "%s: exists with other contents (not overwritten)", path);
    return rc;
  }
  if (fd < 0)
    return cl_err_set(err, CL_EIO, "%s: %s", path, strerror(errno));
  size_t done = 0;
  while (done < n) {
    ssize_t w = write(fd, buf + done, n - done);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      break;
    done += (size_t)w;
  }
  int ok = done == n && fsync(fd) == 0;
  int e = errno;
  if (close(fd) != 0 && ok) {
    ok = 0;
    e = errno;
  }
  if (!ok) {
    unlink(path);
    return cl_err_set(err, CL_EIO, "%s: %s", path, strerror(e));
  }
  return 0;
}

/* Copies a small file (a key) to a new 0600 file; see put_file. */
static int copy_file(const char *from, const char *to, cl_err *err) {
  uint8_t buf[SMALL_FILE_MAX];
  size_t n = 0;
  int rc = read_small(from, buf, sizeof buf, &n, err);
  if (rc == 0)
    rc = put_file(to, buf, n, err);
  sodium_memzero(buf, sizeof buf);
  return rc;
}

/* A public file: copied from `from` when that exists (from may be NULL),
 * otherwise written with `derived`. */
static int put_pub(const char *from, const char *to, const char *derived, cl_err *err) {
  if (from) {
    int rc = copy_file(from, to, err);
    if (rc != CL_ENOTFOUND || access(from, F_OK) == 0)
      return rc;
    cl_err_clear(err);
  }
  return put_file(to, (const uint8_t *)derived, strlen(derived), err);
}

/* The replica path of cmd_init. src (may be NULL) is the data directory of
 * an existing member; without it mk_in, lk_in and origin_in are used. */
static int init_replica(const char *dir, const char *src, const char *mk_in, const char *lk_in,
                        const char *origin_in, const char *sealed_hex, int json) {
  cl_err err;
  cl_err_clear(&err);
  char origin[256], path[4096], from[4096], mkp[4096], lkp[4096];
  uint8_t src_pk[32];
  /* a cluster whose master key was rotated: its sealed keys
   * (store/masterkey.h), without which this store would tag streams anew */
  uint8_t sealed[CL_SEALED_KEYS_MAX];
  size_t nsealed = 0;
  struct stat st;
  int rc;
  if ((rc = cl_crypto_init(&err)))
    return cli_fail("init", &err);
  snprintf(path, sizeof path, "%s/db", dir);
  if (stat(path, &st) == 0) {
    cl_err_set(&err, CL_EEXIST, "%s: already holds a clinlog log", dir);
    return cli_fail("init", &err);
  }
  if (src) {
    /* read-only: works next to the clinlogd that runs on it, and checks
     * that SRCDIR's key files belong to its log */
    cl_log_options so;
    cl_log_options_init(&so);
    so.dir = src;
    so.read_only = 1;
    cl_log *sl;
    if ((rc = cl_log_open(&so, &sl, &err)))
      return cli_fail("init: --replica-of", &err);
    snprintf(origin, sizeof origin, "%s", cl_log_origin(sl));
    memcpy(src_pk, cl_log_public_key(sl), 32);
    rc = cl_masterkey_sealed_keys(sl, sealed, &nsealed, &err);
    cl_log_close(sl);
    if (rc)
      return cli_fail("init: --replica-of", &err);
  } else {
    /* the store's rules (cl_log_create), checked before anything is written:
     * a create that fails this late leaves DIR/db behind */
    if (strlen(origin_in) >= sizeof origin) {
      cl_err_set(&err, CL_EINVAL, "--origin: longer than %zu bytes", sizeof origin - 1);
      return cli_fail("init", &err);
    }
    if (!origin_in[0] || strpbrk(origin_in, " \n+")) {
      cl_err_set(&err, CL_EINVAL, "--origin: must be non-empty without spaces, '+' or newlines");
      return cli_fail("init", &err);
    }
    snprintf(origin, sizeof origin, "%s", origin_in);
    if (sealed_hex && (sodium_hex2bin(sealed, sizeof sealed, sealed_hex, strlen(sealed_hex),
                                      NULL, &nsealed, NULL) != 0 ||
                       nsealed < CL_FIXED_KEYS_SEALED_SIZE)) {
      cl_err_set(&err, CL_EINVAL,
                 "--sealed-keys: expected hex (the sealedKeys that `clinlog keys rotate-master "
                 "--json` prints)");
      return cli_fail("init", &err);
    }
  }

  if (mkdir_p(dir) != 0) {
    perror(dir);
    return 1;
  }
  snprintf(path, sizeof path, "%s/keys", dir);
  if (mkdir(path, 0700) != 0 && errno != EEXIST) {
    perror(path);
    return 1;
  }
  snprintf(mkp, sizeof mkp, "%s/keys/master.key", dir);
  snprintf(lkp, sizeof lkp, "%s/keys/log.key", dir);
  if (src)
    snprintf(from, sizeof from, "%s/keys/master.key", src);
  if ((rc = copy_file(src ? from : mk_in, mkp, &err)))
    return cli_fail("init: master key", &err);
  if (src)
    snprintf(from, sizeof from, "%s/keys/log.key", src);
  if ((rc = copy_file(src ? from : lk_in, lkp, &err)))
    return cli_fail("init: log key", &err);

  /* the public files: SRCDIR's copies, or derived from the log key */
  cl_signer s = {0};
  if ((rc = cl_signer_load(&s, lkp, &err)))
    return cli_fail("init: log key", &err);
  uint8_t pk[32];
  memcpy(pk, s.pk, 32);
  cl_signer_free(&s);
  if (src && memcmp(pk, src_pk, 32) != 0) {
    cl_err_set(&err, CL_EDENIED, "%s/keys/log.key does not belong to %s's log", src, src);
    return cli_fail("init", &err);
  }
  char b64[64], text[512];
  sodium_bin2base64(b64, sizeof b64, pk, 32, sodium_base64_VARIANT_ORIGINAL);
  snprintf(text, sizeof text, "ed25519:%s\n", b64);
  snprintf(path, sizeof path, "%s/keys/log.key.pub", dir);
  if (src)
    snprintf(from, sizeof from, "%s/keys/log.key.pub", src);
  if ((rc = put_pub(src ? from : NULL, path, text, &err)))
    return cli_fail("init: log.key.pub", &err);
  snprintf(text, sizeof text, "origin: %s\nkey: ed25519:%s\n", origin, b64);
  snprintf(path, sizeof path, "%s/log.pub", dir);
  if (src)
    snprintf(from, sizeof from, "%s/log.pub", src);
  if ((rc = put_pub(src ? from : NULL, path, text, &err)))
    return cli_fail("init: log.pub", &err);

  cl_log_options o;
  cl_log_options_init(&o);
  o.dir = dir;
  o.master_key_path = mkp;
  o.log_key_path = lkp;
  cl_log_genesis g = {
      .replica = 1, .origin = origin, .sealed_keys = sealed, .sealed_keys_len = nsealed};
  if ((rc = cl_log_create(&o, &g, &err)))
    return cli_fail("init", &err);

  /* read back what was created */
  cl_log *log;
  o.read_only = 1;
  if ((rc = cl_log_open(&o, &log, &err)))
    return cli_fail("init", &err);
  uint64_t size;
  uint8_t root[32];
  char hex[65], pkhex[65];
  cl_log_head(log, &size, root);
  cl_hex(root, 32, hex);
  cl_hex(cl_log_public_key(log), 32, pkhex);
  if (json) {
    json_t *j =
        json_pack("{s:s, s:b, s:s, s:s, s:s, s:I, s:s}", "dir", dir, "replica", 1, "origin",
                  cl_log_origin(log), "logPublicKey", pkhex, "keysFrom",
                  src ? src : "--master-key/--log-key", "treeSize", (json_int_t)size, "root", hex);
    cli_print_json(stdout, j);
    json_decref(j);
  } else {
    printf("created %s (empty store of a cluster member)\n  origin: %s\n  log key: %s\n"
           "  keys: copied from %s to %s/keys\n  tree size %llu, root %s\n"
           "Start clinlogd on it as a joining node, then add it on the leader with\n"
           "`clinlog cluster add ID RAFT_ADDR API_ADDR`; the events come through replication.\n",
           dir, cl_log_origin(log), pkhex, src ? src : "--master-key/--log-key", dir,
           (unsigned long long)size, hex);
  }
  cl_log_close(log);
  return 0;
}

int cmd_init(int argc, char **argv) {
  static const struct option opts[] = {{"admin", required_argument, 0, 'a'},
                                       {"admin-name", required_argument, 0, 'n'},
                                       {"admin-key", required_argument, 0, 'k'},
                                       {"origin", required_argument, 0, 'o'},
                                       {"organization", required_argument, 0, 'g'},
                                       {"master-key", required_argument, 0, 'm'},
                                       {"replica-of", required_argument, 0, 'r'},
                                       {"log-key", required_argument, 0, 'l'},
                                       {"sealed-keys", required_argument, 0, 'f'},
                                       {"json", no_argument, 0, 'j'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  const char *admin = "admin", *name = NULL, *key = NULL, *origin = NULL, *org = NULL, *mk = NULL,
             *src = NULL, *lk = NULL, *sealed = NULL;
  int c, json = 0, admin_set = 0;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 'a':
      admin = optarg;
      admin_set = 1;
      break;
    case 'n':
      name = optarg;
      break;
    case 'k':
      key = optarg;
      break;
    case 'o':
      origin = optarg;
      break;
    case 'g':
      org = optarg;
      break;
    case 'm':
      mk = optarg;
      break;
    case 'r':
      src = optarg;
      break;
    case 'l':
      lk = optarg;
      break;
    case 'f':
      sealed = optarg;
      break;
    case 'j':
      json = 1;
      break;
    default:
      fprintf(c == 'h' ? stdout : stderr,
              "usage: clinlog init DIR [--admin ID] [--admin-name NAME] [--admin-key FILE]\n"
              "                        [--origin ORIGIN] [--organization ORG] [--master-key FILE]\n"
              "       clinlog init DIR --replica-of SRCDIR\n"
              "       clinlog init DIR --master-key FILE --log-key FILE --origin ORIGIN\n"
              "                        [--sealed-keys HEX]\n"
              "Creates DIR with a new master key and log key (DIR/keys, mode 0600), the\n"
              "genesis events and a first signed checkpoint. The first admin's signing key\n"
              "is created at --admin-key (default DIR/keys/admin.key) unless that file exists.\n"
              "\n"
              "With --replica-of, creates instead the empty store of a new member of the\n"
              "cluster SRCDIR belongs to: SRCDIR's origin, and its keys/master.key and\n"
              "keys/log.key copied to DIR/keys (0600; log.pub too); no events, they come\n"
              "through replication once the node is added (`clinlog cluster add`). SRCDIR\n"
              "is only read, and may be in use by a running clinlogd. Where keys come\n"
              "from a secrets manager instead, give --master-key, --log-key and --origin\n"
              "(the cluster's): the two files are copied to DIR/keys the same way; if the\n"
              "cluster's master key was rotated, also --sealed-keys (the sealedKeys that\n"
              "`clinlog keys rotate-master --json` printed; --replica-of copies them).\n"
              "  --json    print the result as one JSON object\n");
      return c == 'h' ? 0 : 2;
    }
  }
  if (optind + 1 != argc) {
    fprintf(stderr, "usage: clinlog init DIR [options]\n");
    return 2;
  }
  const char *dir = argv[optind];
  if (sealed && !lk) {
    fprintf(stderr, "clinlog init: --sealed-keys goes with --master-key, --log-key and --origin\n");
    return 2;
  }
  if (src || lk) {
    if (src && (mk || lk || origin)) {
      fprintf(stderr, "clinlog init: --replica-of takes the keys and origin from SRCDIR; "
                      "--master-key, --log-key and --origin are the alternative to it\n");
      return 2;
    }
    if (!src && (!mk || !origin)) {
      fprintf(stderr, "clinlog init: --log-key (a cluster member's store from distributed keys) "
                      "needs --master-key and --origin too\n");
      return 2;
    }
    if (admin_set || name || key || org) {
      fprintf(stderr, "clinlog init: a cluster member's store has no genesis events: --admin, "
                      "--admin-name, --admin-key and --organization do not apply\n");
      return 2;
    }
    return init_replica(dir, src, mk, lk, origin, sealed, json);
  }
  cl_err err;
  cl_err_clear(&err);
  char keypath[4096];
  if (mkdir_p(dir) != 0) {
    perror(dir);
    return 1;
  }
  if (!key) {
    snprintf(keypath, sizeof keypath, "%s/keys", dir);
    mkdir(keypath, 0700);
    snprintf(keypath, sizeof keypath, "%s/keys/admin.key", dir);
    key = keypath;
  }
  cl_signer s = {0};
  struct stat st;
  int rc;
  if ((rc = cl_crypto_init(&err)))
    return cli_fail("init", &err);
  if (stat(key, &st) == 0)
    rc = cl_signer_load(&s, key, &err);
  else if (!(rc = cl_signer_generate(&s, &err)))
    rc = cl_signer_save(&s, key, &err);
  if (rc) {
    cl_signer_free(&s);
    return cli_fail("init: admin key", &err);
  }
  cl_log_options o;
  cl_log_options_init(&o);
  o.dir = dir;
  o.master_key_path = mk;
  cl_log_genesis g = {.origin = origin,
                      .organization = org,
                      .admin_principal = admin,
                      .admin_name = name,
                      .admin = &s};
  rc = cl_log_create(&o, &g, &err);
  cl_signer_free(&s);
  if (rc)
    return cli_fail("init", &err);
  cl_log *log;
  if (cli_open(dir, 1, &log, &err))
    return cli_fail("init", &err);
  uint64_t size;
  uint8_t root[32];
  char hex[65];
  cl_log_head(log, &size, root);
  cl_hex(root, 32, hex);
  if (json) {
    json_t *j = json_pack("{s:s, s:b, s:s, s:s, s:s, s:I, s:s}", "dir", dir, "replica", 0, "origin",
                          cl_log_origin(log), "admin", admin, "adminKey", key, "treeSize",
                          (json_int_t)size, "root", hex);
    cli_print_json(stdout, j);
    json_decref(j);
  } else {
    printf("created %s\n  origin: %s\n  admin: %s (key %s)\n  tree size %llu, root %s\n", dir,
           cl_log_origin(log), admin, key, (unsigned long long)size, hex);
  }
  cl_log_close(log);
  return 0;
}

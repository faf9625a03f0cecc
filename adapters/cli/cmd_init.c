/* clinlog init / keygen. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapters/cli/cli.h"
#include "store/keys.h"

int cmd_keygen(int argc, char **argv) {
  static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    fprintf(c == 'h' ? stdout : stderr,
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
  if (cl_crypto_init(&err) || cl_signer_generate(&s, &err) || cl_signer_save(&s, argv[optind], &err)) {
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

int cmd_init(int argc, char **argv) {
  static const struct option opts[] = {{"admin", required_argument, 0, 'a'},
                                       {"admin-name", required_argument, 0, 'n'},
                                       {"admin-key", required_argument, 0, 'k'},
                                       {"origin", required_argument, 0, 'o'},
                                       {"organization", required_argument, 0, 'g'},
                                       {"master-key", required_argument, 0, 'm'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  const char *admin = "admin", *name = NULL, *key = NULL, *origin = NULL, *org = NULL,
             *mk = NULL;
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 'a': admin = optarg; break;
    case 'n': name = optarg; break;
    case 'k': key = optarg; break;
    case 'o': origin = optarg; break;
    case 'g': org = optarg; break;
    case 'm': mk = optarg; break;
    default:
      fprintf(c == 'h' ? stdout : stderr,
              "usage: clinlog init DIR [--admin ID] [--admin-name NAME] [--admin-key FILE]\n"
              "                        [--origin ORIGIN] [--organization ORG] [--master-key FILE]\n"
              "Creates DIR with a new master key and log key (DIR/keys, mode 0600), the\n"
              "genesis events and a first signed checkpoint. The first admin's signing key\n"
              "is created at --admin-key (default DIR/keys/admin.key) unless that file exists.\n");
      return c == 'h' ? 0 : 2;
    }
  }
  if (optind + 1 != argc) {
    fprintf(stderr, "usage: clinlog init DIR [options]\n");
    return 2;
  }
  const char *dir = argv[optind];
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
  cl_log_genesis g = {.origin = origin, .organization = org, .admin_principal = admin,
                      .admin_name = name, .admin = &s};
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
  printf("created %s\n  origin: %s\n  admin: %s (key %s)\n  tree size %llu, root %s\n", dir,
         cl_log_origin(log), admin, key, (unsigned long long)size, hex);
  cl_log_close(log);
  return 0;
}

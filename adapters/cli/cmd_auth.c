/* clinlog auth enroll|login|logout|whoami: people's credentials and sessions
 * (docs/security.md; `auth break-glass` is cmd_break_glass.c).
 *
 *  - `enroll PRINCIPAL` makes a CredentialEnrolled event: the password's
 *    argon2id hash and a fresh TOTP secret. It prints the event as proto3
 *    JSON on stdout (append it with `clinlog append --key ADMIN.key`: only
 *    an admin may) and the otpauth:// URI to give the person's authenticator
 *    app on stderr (or both in one object with --json).
 *  - `login` calls Auth.Login and keeps the session token in the token file
 *    (0600; --token-file, $CLINLOG_TOKEN_FILE, or ~/.clinlog/token), which
 *    every later --server command sends as "authorization: Bearer".
 *  - `logout` ends the session (Auth.Logout) and removes the file;
 *    `whoami` prints who the server says the token is.
 *  - `bind-cert PRINCIPAL CERT.pem`, `revoke-cert PRINCIPAL CERT.pem|SHA256`,
 *    `roles PRINCIPAL [ROLE...]` and `end-session PRINCIPAL TOKEN_ID` print
 *    the CertificateBound, CertificateRevoked, RolesChanged and SessionEnded
 *    events to append with an admin key, as enroll does;
 *    `register-client PRINCIPAL JWKS.json|none` the ClientKeysRegistered of
 *    a SMART Backend Services client (its public JWK Set, checked here).
 *
 * Passwords come from the terminal without echo, or as the first line of
 * standard input with --password-stdin; never from the command line. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "adapters/cli/cli.h"
#include "adapters/grpc/grpcutil.h"
#include "clinlog/v1/auth.pb-c.h"
#include "query/auth/cred.h"
#include "query/auth/jwt.h"

#define PW_MAX 1024

/* One line from f into buf (no newline); with echo off when f is a terminal
 * and prompt is not NULL. 0, or -1 at end of input. */
static int read_secret(FILE *f, const char *prompt, char *buf, size_t n) {
  struct termios old, quiet;
  int tty = prompt && isatty(fileno(f)) && tcgetattr(fileno(f), &old) == 0;
  if (tty) {
    fprintf(stderr, "%s", prompt);
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    tcsetattr(fileno(f), TCSAFLUSH, &quiet);
  }
  char *r = fgets(buf, (int)n, f);
  if (tty) {
    tcsetattr(fileno(f), TCSAFLUSH, &old);
    fprintf(stderr, "\n");
  }
  if (!r)
    return -1;
  buf[strcspn(buf, "\r\n")] = '\0';
  return 0;
}

static void token_path(const char *opt, char *out, size_t n) {
  const char *env = getenv("CLINLOG_TOKEN_FILE");
  const char *home = getenv("HOME");
  if (opt)
    snprintf(out, n, "%s", opt);
  else if (env && env[0])
    snprintf(out, n, "%s", env);
  else
    snprintf(out, n, "%s/.clinlog/token", home ? home : ".");
}

int cli_token_read(const char *opt, char *out, size_t n) {
  char path[4096];
  token_path(opt, path, sizeof path);
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  int rc = read_secret(f, NULL, out, n);
  fclose(f);
  return rc == 0 && out[0] ? 0 : -1;
}

/* Writes the token (0600, its directory 0700). */
static int token_write(const char *opt, const char *token) {
  char path[4096];
  token_path(opt, path, sizeof path);
  char *slash = strrchr(path, '/');
  if (slash && slash != path) {
    *slash = '\0';
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
      perror(path);
      return -1;
    }
    *slash = '/';
  }
  unlink(path);
  FILE *f = NULL;
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0 || !(f = fdopen(fd, "w"))) {
    perror(path);
    if (fd >= 0)
      close(fd);
    return -1;
  }
  fprintf(f, "%s\n", token);
  return fclose(f) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------- enroll */

static int enroll(int argc, char **argv) {
  static const struct option lo[] = {{"totp", required_argument, 0, 't'},
                                     {"digits", required_argument, 0, 'd'},
                                     {"issuer", required_argument, 0, 'i'},
                                     {"password-stdin", no_argument, 0, 'p'},
                                     {"json", no_argument, 0, 'j'},
                                     {"help", no_argument, 0, 'h'},
                                     {0, 0, 0, 0}};
  const char *alg = "SHA1", *issuer = "clinlog";
  int digits = 6, from_stdin = 0, json = 0, ch;
  optind = 1;
  while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    switch (ch) {
    case 't':
      alg = optarg;
      break;
    case 'd':
      digits = atoi(optarg);
      break;
    case 'i':
      issuer = optarg;
      break;
    case 'p':
      from_stdin = 1;
      break;
    case 'j':
      json = 1;
      break;
    case 'h':
      printf("usage: clinlog auth enroll PRINCIPAL [--totp SHA1|SHA256|SHA512] [--digits 6|7|8]\n"
             "                          [--issuer NAME] [--password-stdin] [--json]\n"
             "prints a CredentialEnrolled event (append it with an admin key) and the\n"
             "otpauth:// URI for the person's authenticator app\n");
      return 0;
    default:
      return 2;
    }
  }
  if (optind + 1 != argc) {
    fprintf(stderr, "clinlog auth enroll: one PRINCIPAL expected\n");
    return 2;
  }
  const char *pid = argv[optind];
  int a = !strcmp(alg, "SHA1")     ? CL_TOTP_SHA1
          : !strcmp(alg, "SHA256") ? CL_TOTP_SHA256
          : !strcmp(alg, "SHA512") ? CL_TOTP_SHA512
                                   : -1;
  if (a < 0 || digits < 6 || digits > 8) {
    fprintf(stderr, "clinlog auth enroll: --totp SHA1|SHA256|SHA512, --digits 6..8\n");
    return 2;
  }
  char *pw = sodium_malloc(PW_MAX), *again = sodium_malloc(PW_MAX);
  if (!pw || !again)
    return 1;
  int rc = 1;
  if (read_secret(stdin, from_stdin ? NULL : "new password: ", pw, PW_MAX) != 0 ||
      (!from_stdin && read_secret(stdin, "again: ", again, PW_MAX) != 0)) {
    fprintf(stderr, "clinlog auth enroll: no password given\n");
    goto out;
  }
  if (!from_stdin && strcmp(pw, again) != 0) {
    fprintf(stderr, "clinlog auth enroll: the passwords differ\n");
    goto out;
  }
  if (strlen(pw) < 12) {
    fprintf(stderr, "clinlog auth enroll: a password needs at least 12 characters\n");
    goto out;
  }
  char hash[CL_PW_HASH_MAX];
  cl_err err;
  if (cl_pw_hash(pw, strlen(pw), 0, 0, hash, &err) != 0) {
    rc = cli_fail("auth enroll", &err);
    goto out;
  }
  uint8_t secret[64];
  size_t slen = a == CL_TOTP_SHA1 ? 20 : a == CL_TOTP_SHA256 ? 32 : 64; /* RFC 6238's key sizes */
  randombytes_buf(secret, slen);
  char b64[128], *uri = NULL;
  sodium_bin2base64(b64, sizeof b64, secret, slen, sodium_base64_VARIANT_ORIGINAL);
  cl_totp t = {a, secret, slen, (unsigned)digits, 30};
  if (cl_totp_uri(&t, issuer, pid, &uri, &err) != 0) {
    rc = cli_fail("auth enroll", &err);
    goto out;
  }
  char stream[256];
  snprintf(stream, sizeof stream, "$principal-%s", pid);
  json_t *ev = json_pack("{s:s, s:{s:s, s:s, s:{s:s, s:s, s:i, s:i}}}", "stream", stream,
                         "credentialEnrolled", "principalId", pid, "passwordHash", hash, "totp",
                         "algorithm", alg, "secret", b64, "digits", digits, "period", 30);
  if (json) {
    json_t *o = json_pack("{s:o, s:s}", "event", ev, "otpauthUri", uri);
    cli_print_json(stdout, o);
    json_decref(o);
  } else {
    cli_print_json(stdout, ev);
    json_decref(ev);
    fprintf(stderr,
            "give %s this URI (or its QR code) for an authenticator app:\n  %s\n"
            "then append the event above with an admin key: clinlog append --key ADMIN.key\n",
            pid, uri);
  }
  sodium_memzero(secret, sizeof secret);
  sodium_memzero(b64, sizeof b64);
  sodium_memzero(uri, strlen(uri));
  free(uri);
  rc = 0;
out:
  sodium_free(pw);
  sodium_free(again);
  return rc;
}

/* ------------------------------------------------------ login, logout */

static int session(const char *sub, int argc, char **argv) {
  static const struct option lo[] = {CLI_REMOTE_OPTIONS,
                                     {"principal", required_argument, 0, 'P'},
                                     {"code", required_argument, 0, 'c'},
                                     {"password-stdin", no_argument, 0, 'p'},
                                     {"json", no_argument, 0, 'j'},
                                     {"help", no_argument, 0, 'h'},
                                     {0, 0, 0, 0}};
  cli_remote r = {0};
  const char *principal = NULL, *code = NULL;
  int from_stdin = 0, json = 0, ch;
  optind = 1;
  while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    if (cli_remote_option(&r, ch, optarg))
      continue;
    switch (ch) {
    case 'P':
      principal = optarg;
      break;
    case 'c':
      code = optarg;
      break;
    case 'p':
      from_stdin = 1;
      break;
    case 'j':
      json = 1;
      break;
    case 'h':
      printf("usage: clinlog %s --server HOST:PORT [--json] [TLS options]%s\n" CLI_REMOTE_USAGE,
             sub,
             strcmp(sub, "login")
                 ? ""
                 : "\n         --principal ID [--code TOTP] [--password-stdin]\n"
                   "the password from the terminal (no echo), or the first line of stdin; the\n"
                   "one-time code from the terminal unless --code; the token goes to the token\n"
                   "file (0600)");
      return 0;
    default:
      return 2;
    }
  }
  if (!r.server) {
    fprintf(stderr, "clinlog %s: --server HOST:PORT is required\n", sub);
    return 2;
  }
  int login = !strcmp(sub, "login");
  if (login && !principal) {
    fprintf(stderr, "clinlog login: --principal ID is required\n");
    return 2;
  }
  cl_err err;
  cl_err_clear(&err);
  cl_client *cl;
  cli_remote ro = r;
  if (login)
    ro.no_token = 1; /* a stale token would refuse the login itself */
  if (cli_remote_open(&ro, &cl, &err) != 0)
    return cli_fail(sub, &err);
  int rc = 1;
  ProtobufCMessage *m = NULL;
  if (login) {
    char *pw = sodium_malloc(PW_MAX), codebuf[16];
    Clinlog__V1__LoginRequest req = CLINLOG__V1__LOGIN_REQUEST__INIT;
    if (!pw || read_secret(stdin, from_stdin ? NULL : "password: ", pw, PW_MAX) != 0 ||
        (!code && read_secret(stdin, "one-time code: ", codebuf, sizeof codebuf) != 0)) {
      fprintf(stderr, "clinlog login: no password or code given\n");
      if (pw)
        sodium_free(pw);
      cl_client_close(cl);
      return 2;
    }
    req.principal_id = (char *)principal;
    req.password = pw;
    req.totp_code = (char *)(code ? code : codebuf);
    int c = cl_client_unary(cl, cl_grpc_method_path[M_AUTH_LOGIN], &req.base,
                            &clinlog__v1__login_response__descriptor, &m, NULL, &err);
    sodium_free(pw);
    if (c != 0) {
      rc = cli_fail("login", &err);
    } else {
      Clinlog__V1__LoginResponse *lr = (Clinlog__V1__LoginResponse *)m;
      if (token_write(r.token_file, lr->token) == 0) {
        char path[4096];
        token_path(r.token_file, path, sizeof path);
        if (json) {
          json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:s}", "principal", principal, "tokenId",
                                lr->token_id, "expiresAt",
                                (json_int_t)(lr->expires_at ? lr->expires_at->seconds : 0),
                                "sessionSeq", (json_int_t)lr->session_seq, "tokenFile", path);
          cli_print_json(stdout, o);
          json_decref(o);
        } else {
          printf("logged in as %s until %lld (token in %s)\n", principal,
                 (long long)(lr->expires_at ? lr->expires_at->seconds : 0), path);
        }
        rc = 0;
      }
      sodium_memzero(lr->token, strlen(lr->token));
    }
  } else {
    int logout = !strcmp(sub, "logout");
    Clinlog__V1__LogoutRequest lreq = CLINLOG__V1__LOGOUT_REQUEST__INIT;
    Clinlog__V1__WhoamiRequest wreq = CLINLOG__V1__WHOAMI_REQUEST__INIT;
    int c = logout ? cl_client_unary(cl, cl_grpc_method_path[M_AUTH_LOGOUT], &lreq.base,
                                     &clinlog__v1__logout_response__descriptor, &m, NULL, &err)
                   : cl_client_unary(cl, cl_grpc_method_path[M_AUTH_WHOAMI], &wreq.base,
                                     &clinlog__v1__whoami_response__descriptor, &m, NULL, &err);
    if (c != 0) {
      rc = cli_fail(sub, &err);
    } else if (logout) {
      char path[4096];
      token_path(r.token_file, path, sizeof path);
      unlink(path);
      printf(json ? "{\"loggedOut\":true,\"seq\":%llu}\n"
                  : "logged out (session ended at seq %llu)\n",
             (unsigned long long)((Clinlog__V1__LogoutResponse *)m)->seq);
      rc = 0;
    } else {
      rc = cli_print_message(m, "whoami");
    }
  }
  if (m)
    protobuf_c_message_free_unpacked(m, NULL);
  cl_client_close(cl);
  return rc;
}

/* ------------------------------------------- certificates and roles */

/* The SHA-256 fingerprint of arg: a PEM file, or 64 hex digits. */
static int fingerprint_of(const char *arg, char out[65]) {
  size_t l = strlen(arg);
  if (l == 64 && strspn(arg, "0123456789abcdefABCDEF") == 64) {
    for (size_t i = 0; i <= l; i++)
      out[i] = (char)(arg[i] >= 'A' && arg[i] <= 'F' ? arg[i] - 'A' + 'a' : arg[i]);
    return 0;
  }
  FILE *f = fopen(arg, "rb");
  if (!f) {
    perror(arg);
    return -1;
  }
  char buf[65536];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  if (cl_pem_fingerprint(buf, n, out) != 0) {
    fprintf(stderr, "clinlog auth: %s holds no PEM certificate\n", arg);
    return -1;
  }
  return 0;
}

static int admin_event(const char *sub, int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help")) {
    fprintf(argc < 2 ? stderr : stdout,
            "usage: clinlog auth bind-cert PRINCIPAL CERT.pem|SHA256 [SUBJECT]\n"
            "       clinlog auth revoke-cert PRINCIPAL CERT.pem|SHA256 [REASON]\n"
            "       clinlog auth roles PRINCIPAL [ROLE...]   (none: disable)\n"
            "       clinlog auth end-session PRINCIPAL TOKEN_ID [REASON]   (revoke a session)\n"
            "       clinlog auth register-client PRINCIPAL JWKS.json|none [REASON]\n"
            "           (a SMART Backend Services client's public keys; none removes them)\n"
            "print the event (proto3 JSON) to append with an admin key\n");
    return argc < 2 ? 2 : 0;
  }
  const char *pid = argv[1];
  char stream[256], fp[65];
  snprintf(stream, sizeof stream, "$principal-%s", pid);
  json_t *ev;
  if (!strcmp(sub, "end-session")) {
    if (argc < 3 || strlen(argv[2]) != 32) {
      fprintf(stderr, "clinlog auth end-session: PRINCIPAL and a TOKEN_ID (32 hex digits)\n");
      return 2;
    }
    ev = json_pack("{s:s, s:{s:s, s:s, s:s}}", "stream", stream, "sessionEnded", "principalId", pid,
                   "tokenId", argv[2], "reason", argc > 3 ? argv[3] : "revoked");
  } else if (!strcmp(sub, "register-client")) {
    if (argc < 3) {
      fprintf(stderr, "clinlog auth register-client: PRINCIPAL and a JWK Set file (or none)\n");
      return 2;
    }
    char *jwks = NULL;
    size_t n = 0;
    if (strcmp(argv[2], "none") != 0) {
      cl_err err;
      cl_jwks *keys;
      FILE *f = fopen(argv[2], "rb");
      if (!f || !(jwks = malloc(65537))) {
        perror(argv[2]);
        if (f)
          fclose(f);
        return 1;
      }
      n = fread(jwks, 1, 65537, f);
      fclose(f);
      if (n > 65536) {
        fprintf(stderr, "clinlog auth register-client: %s: over 64 KiB\n", argv[2]);
        free(jwks);
        return 1;
      }
      if (cl_jwks_parse(jwks, n, &keys, &err) != 0) {
        fprintf(stderr, "clinlog auth register-client: %s: %s\n", argv[2], err.msg);
        free(jwks);
        return 1;
      }
      cl_jwks_free(keys);
    }
    ev = json_pack("{s:s, s:{s:s, s:s%, s:s}}", "stream", stream, "clientKeysRegistered",
                   "principalId", pid, "jwks", jwks ? jwks : "", n, "reason",
                   argc > 3 ? argv[3] : "");
    free(jwks);
  } else if (!strcmp(sub, "roles")) {
    json_t *roles = json_array();
    for (int i = 2; i < argc; i++)
      json_array_append_new(roles, json_string(argv[i]));
    ev = json_pack("{s:s, s:{s:s, s:o}}", "stream", stream, "rolesChanged", "principalId", pid,
                   "roles", roles);
  } else {
    if (argc < 3) {
      fprintf(stderr, "clinlog auth %s: PRINCIPAL and a certificate expected\n", sub);
      return 2;
    }
    if (fingerprint_of(argv[2], fp) != 0)
      return 1;
    int bind = !strcmp(sub, "bind-cert");
    ev = json_pack("{s:s, s:{s:s, s:s, s:s}}", "stream", stream,
                   bind ? "certificateBound" : "certificateRevoked", "principalId", pid, "sha256",
                   fp, bind ? "subject" : "reason",
                   bind       ? argv[2]
                   : argc > 3 ? argv[3]
                              : "");
  }
  cli_print_json(stdout, ev);
  json_decref(ev);
  return 0;
}

int cmd_auth(int argc, char **argv) {
  if (sodium_init() < 0)
    return 1;
  if (argc < 2 || !strcmp(argv[1], "--help")) {
    fprintf(
        argc < 2 ? stderr : stdout,
        "usage: clinlog auth enroll|login|logout|whoami|break-glass|bind-cert|revoke-cert|roles|"
        "end-session|register-client ...\n"
        "(`--help` after each)\n");
    return argc < 2 ? 2 : 0;
  }
  if (!strcmp(argv[1], "enroll"))
    return enroll(argc - 1, argv + 1);
  if (!strcmp(argv[1], "login") || !strcmp(argv[1], "logout") || !strcmp(argv[1], "whoami"))
    return session(argv[1], argc - 1, argv + 1);
  if (!strcmp(argv[1], "break-glass"))
    return cmd_auth_break_glass(argc - 1, argv + 1);
  if (!strcmp(argv[1], "bind-cert") || !strcmp(argv[1], "revoke-cert") ||
      !strcmp(argv[1], "roles") || !strcmp(argv[1], "end-session") ||
      !strcmp(argv[1], "register-client"))
    return admin_event(argv[1], argc - 1, argv + 1);
  fprintf(stderr, "clinlog auth: unknown subcommand \"%s\"\n", argv[1]);
  return 2;
}

int cmd_login(int argc, char **argv) {
  return sodium_init() < 0 ? 1 : session("login", argc, argv);
}

int cmd_logout(int argc, char **argv) {
  return sodium_init() < 0 ? 1 : session("logout", argc, argv);
}

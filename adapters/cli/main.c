/* clinlog: the command-line tool for operators, integrators and auditors.
 * Each subcommand lives in its own cmd_*.c file; this one dispatches and
 * holds the helpers they share. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "adapters/cli/cli.h"
#include "adapters/pbjson/pbjson.h"
#include "store/alloc.h"
#include "store/keys.h"

static const struct {
  const char *name;
  int (*fn)(int, char **);
  const char *help;
} CMDS[] = {
    {"init", cmd_init, "create a data directory (keys, genesis, checkpoint) or a replica's"},
    {"keygen", cmd_keygen, "create an Ed25519 signing key file (0600) and its .pub"},
    {"append", cmd_append, "append events given as proto3 JSON, signed with a key file"},
    {"read", cmd_read, "read the log or one stream as JSON lines"},
    {"get", cmd_get, "read one event by id"},
    {"tail", cmd_tail, "follow a server's log: events as JSON lines as they commit"},
    {"head", cmd_head, "print the tree size and root"},
    {"checkpoint", cmd_checkpoint, "sign (if needed) and print the latest checkpoint"},
    {"prove", cmd_prove, "print an inclusion or consistency proof as JSON"},
    {"verify-proof", cmd_verify_proof, "check a proof printed by `prove` against a checkpoint"},
    {"verify", cmd_verify, "replay a data directory or a live node and check everything"},
    {"keys", cmd_keys,
     "rotate the master key (offline) or the log signing key (offline, or --online)"},
    {"cluster", cmd_cluster, "status and membership of a clinlogd cluster"},
    {"streams", cmd_streams, "a server's streams: one stream's counts, a category, events by type"},
    {"projections", cmd_projections, "a server's projections: position and lag, rebuild"},
    {"ingest", cmd_ingest,
     "ingest HL7 v2 messages (batches, MLLP frames) or home-device readings (JSON lines)"},
    {"fhir", cmd_fhir, "a server's FHIR R4 views: read, history, search, $everything"},
    {"auth", cmd_auth, "credentials and sessions: enroll a person, login, logout, whoami"},
    {"audit", cmd_audit, "a server's audit trail: who touched which patient, as AuditEvents"},
    {"kb", cmd_kb, "check a decision-support knowledge base file (or the built-in seed)"},
    {"login", cmd_login, "log in to a server (password + one-time code); keeps the token"},
    {"logout", cmd_logout, "end the session of `clinlog login`"},
};

static void usage(FILE *f) {
  fprintf(f, "usage: clinlog <command> [options]\n\ncommands:\n");
  for (size_t i = 0; i < sizeof CMDS / sizeof CMDS[0]; i++)
    fprintf(f, "  %-13s %s\n", CMDS[i].name, CMDS[i].help);
  fprintf(f, "\n`clinlog <command> --help` describes a command's options.\n");
}

int main(int argc, char **argv) {
  cl_malloc_tune_exec(argv); /* store/alloc.h */
  umask(077); /* data directories, key files and RocksDB files: owner only */
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  for (size_t i = 0; i < sizeof CMDS / sizeof CMDS[0]; i++)
    if (!strcmp(argv[1], CMDS[i].name))
      return CMDS[i].fn(argc - 1, argv + 1);
  fprintf(stderr, "clinlog: unknown command \"%s\"\n", argv[1]);
  usage(stderr);
  return 2;
}

void cli_put_safe(FILE *f, const char *s, int width) {
  int n = 0;
  if (!s || !*s) {
    fputc('-', f);
    n = 1;
  } else {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++, n++)
      fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, f);
  }
  for (; n < width; n++)
    fputc(' ', f);
}

int cli_print_message(const ProtobufCMessage *m, const char *what) {
  cl_err err;
  cl_err_clear(&err);
  json_t *j = NULL;
  if (cl_pbjson_to_json(m, &j, &err))
    return cli_fail(what, &err);
  cli_print_json(stdout, j);
  json_decref(j);
  return 0;
}

int cli_fail(const char *context, const cl_err *err) {
  fprintf(stderr, "clinlog: %s: %s (%s)\n", context,
          err->msg[0] ? err->msg : cl_strerror(err->code), cl_errname(err->code));
  return err->code == CL_EINVAL ? 2 : 1;
}

int cli_open(const char *dir, int read_only, cl_log **log, cl_err *err) {
  cl_log_options o;
  cl_log_options_init(&o);
  o.dir = dir;
  o.read_only = read_only;
  const char *mk = getenv("CLINLOG_MASTER_KEY");
  if (mk && *mk)
    o.master_key_path = mk;
  return cl_log_open(&o, log, err);
}

double cli_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void cli_progress_start(cli_progress *p, const char *what) {
  p->tty = isatty(STDERR_FILENO);
  p->what = what;
  p->t0 = p->last = cli_now();
}

void cli_progress_update(cli_progress *p, uint64_t done, uint64_t total) {
  if (!p->tty)
    return;
  double t = cli_now();
  if (t - p->last < 0.2 && done != total)
    return;
  p->last = t;
  double rate = t > p->t0 ? (double)done / (t - p->t0) : 0;
  if (total)
    fprintf(stderr, "\r%s: %llu/%llu (%.1f%%) %.0f/s   ", p->what, (unsigned long long)done,
            (unsigned long long)total, 100.0 * (double)done / (double)total, rate);
  else
    fprintf(stderr, "\r%s: %llu %.0f/s   ", p->what, (unsigned long long)done, rate);
  fflush(stderr);
}

void cli_progress_end(cli_progress *p) {
  if (p->tty)
    fprintf(stderr, "\n");
}

static int hexval(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

int cli_parse_uuid(const char *s, uint8_t out[16]) {
  size_t n = 0;
  for (const char *p = s; *p; p++) {
    if (*p == '-')
      continue;
    int hi = hexval(p[0]), lo = p[1] ? hexval(p[1]) : -1;
    if (hi < 0 || lo < 0 || n == 16)
      return -1;
    out[n++] = (uint8_t)(hi << 4 | lo);
    p++;
  }
  return n == 16 ? 0 : -1;
}

void cli_format_uuid(const uint8_t id[16], char out[37]) { cl_uuid_text(id, out); }

void cli_print_json(FILE *f, json_t *v) {
  char *s = json_dumps(v, JSON_COMPACT);
  if (s) {
    fputs(s, f);
    fputc('\n', f);
    free(s);
  }
}

int cli_parse_u64(const char *flag, const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = s && *s >= '0' && *s <= '9' ? strtoull(s, &end, 10) : 0;
  if (!s || *s < '0' || *s > '9' || errno || *end) {
    fprintf(stderr, "clinlog: %s: expected a number, got \"%s\"\n", flag, s ? s : "");
    return -1;
  }
  *out = v;
  return 0;
}

char *cli_read_all(FILE *f, size_t *len) {
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  while (buf) {
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap)
      break;
    char *nb = realloc(buf, cap *= 2);
    if (!nb)
      free(buf);
    buf = nb;
  }
  *len = n;
  return buf;
}

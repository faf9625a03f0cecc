/* clinlog ingest readings: files of home-device readings (JSON lines, one
 * reading per line: docs/adapters.md, "Home-device feeds") to a clinlogd,
 * over clinlog.v1.Devices/SubmitReadings. The server checks and maps each
 * reading (adapters/device/) as the device or gateway the call
 * authenticates as (--token-file, or a client certificate); this command
 * only splits the files into batches and reports each reading's outcome:
 * accepted, duplicate (sent before: nothing written), refused (the member
 * at fault and why) or failed. Blank lines are skipped. Exit status 0 when
 * nothing was refused or failed, 1 otherwise, 2 for usage. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/cli/cli.h"
#include "adapters/service/methods.h"
#include "clinlog/v1/device.pb-c.h"

#define BATCH 1000 /* readings per message */

/* Where each reading came from: its file and line. */
typedef struct origin {
  const char *file;
  size_t line;
} origin;

typedef struct rd {
  char **lines; /* every reading, in order (copies) */
  origin *from;
  size_t n, cap;
} rd;

static int push(rd *r, const char *file, size_t line, const char *p, size_t n) {
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 1024;
    char **l = realloc(r->lines, cap * sizeof *l);
    if (!l)
      return -1;
    r->lines = l;
    origin *f = realloc(r->from, cap * sizeof *f);
    if (!f)
      return -1;
    r->from = f;
    r->cap = cap;
  }
  char *s = malloc(n + 1);
  if (!s)
    return -1;
  memcpy(s, p, n);
  s[n] = '\0';
  r->lines[r->n] = s;
  r->from[r->n++] = (origin){file, line};
  return 0;
}

/* The non-blank lines of a file. 0, or 1 with the error printed. */
static int load(rd *r, const char *file) {
  FILE *f = fopen(file, "rb");
  if (!f) {
    fprintf(stderr, "clinlog ingest readings: %s: %s\n", file, strerror(errno));
    return 1;
  }
  size_t n = 0;
  char *p = cli_read_all(f, &n);
  int bad = ferror(f);
  fclose(f);
  if (!p || bad) {
    fprintf(stderr, "clinlog ingest readings: %s: %s\n", file, p ? "read error" : "out of memory");
    free(p);
    return 1;
  }
  size_t line = 0;
  for (size_t i = 0; i < n;) {
    size_t e = i;
    while (e < n && p[e] != '\n')
      e++;
    line++;
    size_t j = i;
    while (j < e && strchr(" \t\r", p[j]))
      j++;
    if (j < e && push(r, file, line, p + i, e - i)) {
      fprintf(stderr, "clinlog ingest readings: out of memory\n");
      free(p);
      return 1;
    }
    i = e + 1;
  }
  free(p);
  return 0;
}

static void report(const rd *r, const Clinlog__V1__DeviceReadingSummary *s, int json, double secs) {
  if (json) {
    json_t *res = json_array();
    for (size_t i = 0; i < s->n_outcomes; i++) {
      const Clinlog__V1__DeviceReadingOutcome *o = s->outcomes[i];
      const origin *from = o->index < r->n ? &r->from[o->index] : NULL;
      json_t *j = json_pack("{s:s, s:I, s:s}", "file", from ? from->file : "?", "line",
                            (json_int_t)(from ? from->line : 0), "status", o->status);
      if (!j)
        j = json_pack("{s:s, s:I, s:s}", "file", "?", "line", (json_int_t)0, "status", o->status);
      if (!strcmp(o->status, "accepted") || !strcmp(o->status, "duplicate")) {
        json_object_set_new(j, "seq", json_integer((json_int_t)o->seq));
        json_object_set_new(j, "events", json_integer((json_int_t)o->events));
      } else {
        json_object_set_new(j, "field", json_string(o->field));
        json_object_set_new(j, "reason", json_string(o->reason));
        json_object_set_new(j, "error", json_string(o->error));
      }
      json_array_append_new(res, j);
    }
    json_t *doc =
        json_pack("{s:o, s:I, s:I, s:I, s:I, s:I, s:f, s:b}", "readings", res, "total",
                  (json_int_t)r->n, "accepted", (json_int_t)s->accepted, "duplicates",
                  (json_int_t)s->duplicates, "refused", (json_int_t)s->refused, "failed",
                  (json_int_t)s->failed, "seconds", secs, "ok", !s->refused && !s->failed);
    cli_print_json(stdout, doc);
    json_decref(doc);
    return;
  }
  for (size_t i = 0; i < s->n_outcomes; i++) {
    const Clinlog__V1__DeviceReadingOutcome *o = s->outcomes[i];
    if (!strcmp(o->status, "accepted"))
      continue;
    const origin *from = o->index < r->n ? &r->from[o->index] : NULL;
    printf("%s:%zu: ", from ? from->file : "?", from ? from->line : (size_t)0);
    if (!strcmp(o->status, "duplicate")) {
      printf("duplicate (sent before, nothing written), seq %llu\n", (unsigned long long)o->seq);
      continue;
    }
    printf("%s (%s", o->status, o->error);
    if (!strcmp(o->status, "refused")) {
      printf(", ");
      cli_put_safe(stdout, o->field, 0);
    }
    printf("): ");
    cli_put_safe(stdout, o->reason, 0);
    printf("\n");
  }
  printf("ingested %zu readings in %.2f s (%.0f/s): %llu accepted, %llu duplicates, %llu "
         "refused, %llu failed\n",
         r->n, secs, secs > 0 ? (double)r->n / secs : 0.0, (unsigned long long)s->accepted,
         (unsigned long long)s->duplicates, (unsigned long long)s->refused,
         (unsigned long long)s->failed);
}

/* Sends every reading in batches over one call. 0, or 1 with the error
 * printed. */
static int submit(const cli_remote *remote, const rd *r, int json) {
  cl_client *client;
  cl_err err;
  cl_err_clear(&err);
  if (cli_remote_open(remote, &client, &err))
    return cli_fail("ingest readings", &err);
  cli_progress prog;
  cli_progress_start(&prog, "ingest readings");
  if (json)
    prog.tty = 0;
  cl_client_cstream *cs = NULL;
  int rc = cl_client_cstream_open(client, M_DEVICE_SUBMIT, &cs, &err);
  for (size_t i = 0; rc == 0 && i < r->n; i += BATCH) {
    Clinlog__V1__DeviceReadingBatch b = CLINLOG__V1__DEVICE_READING_BATCH__INIT;
    b.n_readings = r->n - i < BATCH ? r->n - i : BATCH;
    b.readings = r->lines + i;
    if ((rc = cl_client_cstream_send(cs, &b.base, &err)) != 0)
      break;
    cli_progress_update(&prog, i + b.n_readings, r->n);
  }
  ProtobufCMessage *m = NULL;
  cl_client_status st;
  if (cs) {
    int frc = cl_client_cstream_finish(cs, &clinlog__v1__device_reading_summary__descriptor, &m,
                                       &st, rc ? NULL : &err);
    rc = rc ? rc : frc;
  }
  cli_progress_end(&prog);
  double secs = cli_now() - prog.t0;
  cl_client_close(client);
  if (rc) {
    cli_fail("ingest readings", &err);
    fprintf(stderr, "clinlog ingest readings: readings before the failing batch may be "
                    "committed; sending the files again is safe (duplicates write nothing)\n");
    return 1;
  }
  Clinlog__V1__DeviceReadingSummary *s = (Clinlog__V1__DeviceReadingSummary *)m;
  report(r, s, json, secs);
  int status = s->refused || s->failed ? 1 : 0;
  protobuf_c_message_free_unpacked(m, NULL);
  return status;
}

static int usage(FILE *f, int rc) {
  fprintf(f, "usage: clinlog ingest readings FILE... --server HOST:PORT [options]\n"
             "Sends home-device readings (JSON lines, one reading per line; docs/adapters.md)\n"
             "to clinlogd's Devices.SubmitReadings as the device or gateway the call\n"
             "authenticates as (--token-file or --cert). Reports every reading that is not\n"
             "accepted: duplicate (sent before: nothing written), refused (the member at\n"
             "fault and why) or failed. Exit status 1 if any reading was refused or failed.\n"
             "  --json               one JSON document: per-reading results and "
             "totals\n" CLI_REMOTE_USAGE);
  return rc;
}

int cmd_ingest_readings(int argc, char **argv) {
  static const struct option opts[] = {{"json", no_argument, 0, 'j'},
                                       {"help", no_argument, 0, 'h'},
                                       CLI_REMOTE_OPTIONS,
                                       {0, 0, 0, 0}};
  cli_remote remote = {0};
  int json = 0, c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (cli_remote_option(&remote, c, optarg))
      continue;
    if (c == 'j')
      json = 1;
    else if (c == 'h')
      return usage(stdout, 0);
    else
      return usage(stderr, 2);
  }
  if (optind >= argc || !remote.server) {
    fprintf(stderr, "clinlog ingest readings: %s\n",
            optind >= argc ? "no FILE given" : "--server is required");
    return usage(stderr, 2);
  }
  rd r = {0};
  int status = 0;
  for (int i = optind; i < argc && !status; i++)
    status = load(&r, argv[i]);
  if (!status)
    status = submit(&remote, &r, json);
  for (size_t i = 0; i < r.n; i++)
    free(r.lines[i]);
  free(r.lines);
  free(r.from);
  return status;
}

/* clinlog ingest hl7: files of HL7 v2 messages to catalog events on a
 * clinlogd. Each file holds one or more messages (segments ending in CR,
 * LF or CRLF), optionally in FHS/BHS batches (BTS-1 and FTS-1 counts are
 * checked before anything is sent), or MLLP frames (VT ... FS CR). Each
 * message is parsed (adapters/hl7v2/hl7.h), mapped (map.h) and its events
 * appended as one atomic batch signed with the adapter's key; the outcome
 * per message is what an MLLP ACK would say: accepted (with the sequence
 * numbers), duplicate (the same message was ingested before: its event
 * ids, derived from sender and control id, are already committed with the
 * same bytes), or refused with the ERR location, table 0357 code and
 * reason. Exit status 0 when nothing was refused, 1 otherwise, 2 for
 * usage. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/cli/cli.h"
#include "adapters/hl7v2/ack.h"
#include "adapters/hl7v2/map.h"
#include "adapters/hl7v2/mllp.h"
#include "store/alloc.h"
#include "store/keys.h"

typedef struct ingest {
  cli_ingest *io; /* client, key, options */
  cl_hl7_map_opts opts;
  int json;
  json_t *results; /* --json: per-message objects */
  uint64_t messages, accepted, dups, refused, errors, events;
  uint64_t files_refused; /* batch files refused whole (their counts do not add up) */
  cli_progress prog;
} ingest;

/* One message's outcome. */
typedef struct outcome {
  const char *status; /* "accepted", "duplicate", "refused", "error" */
  cl_hl7_error e;     /* refused */
  char detail[320];   /* error text */
  uint64_t first_seq, last_seq;
  size_t events;
} outcome;

static const char *ctl_of(const cl_hl7_header *h) {
  return h && *h->control_id ? h->control_id : "-";
}

static void report(ingest *g, const char *file, size_t index, const cl_hl7_header *h,
                   const uint8_t *p, size_t n, const outcome *o) {
  g->messages++;
  char type[48] = "-";
  if (h)
    snprintf(type, sizeof type, "%s^%s", h->message_code, h->trigger);
  char *ack = NULL;
  size_t ackn;
  cl_err err;
  if (!strcmp(o->status, "refused")) {
    cl_hl7_ack_params ap = {.control_id = "CLINLOG-INGEST"};
    if (cl_hl7_ack_raw(p, n, &o->e, &ap, &ack, &ackn, &err))
      ack = NULL;
  }
  if (g->json) {
    json_t *j = json_pack("{s:s, s:I, s:s, s:s, s:s, s:I}", "file", file, "index",
                          (json_int_t)index, "controlId", h ? h->control_id : "", "type", type,
                          "status", o->status, "events", (json_int_t)o->events);
    if (!j) /* a file name or control id that is not UTF-8: keep the rest */
      j = json_pack("{s:s, s:I, s:s, s:I}", "file", "?", "index", (json_int_t)index, "status",
                    o->status, "events", (json_int_t)o->events);
    if (j && o->first_seq) {
      json_object_set_new(j, "firstSeq", json_integer((json_int_t)o->first_seq));
      json_object_set_new(j, "lastSeq", json_integer((json_int_t)o->last_seq));
    }
    if (j && !strcmp(o->status, "refused"))
      json_object_set_new(j, "error",
                          json_pack("{s:i, s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:I, s:s}",
                                    "code", o->e.code, "text", cl_hl7_code_text(o->e.code),
                                    "segment", o->e.segment, "sequence", (int)o->e.seg_seq,
                                    "segmentIndex", (int)o->e.seg_index, "field", (int)o->e.field,
                                    "repetition", (int)o->e.rep, "component", (int)o->e.comp,
                                    "subcomponent", (int)o->e.sub, "offset",
                                    (json_int_t)o->e.offset, "reason", o->e.reason));
    if (j && ack) /* in the message's character set: absent unless UTF-8 */
      json_object_set_new(j, "ack", json_string(ack));
    if (j && o->detail[0])
      json_object_set_new(j, "detail", json_string(o->detail));
    if (j)
      json_array_append_new(g->results, j);
  } else {
    if (g->prog.tty)
      fputc('\r', stderr);
    printf("%s #%zu ", file, index);
    cli_put_safe(stdout, ctl_of(h), 0);
    printf(" ");
    cli_put_safe(stdout, type, 0);
    if (!strcmp(o->status, "accepted") || !strcmp(o->status, "duplicate"))
      printf(": %s, %zu event%s, seq %llu-%llu%s\n", o->status, o->events,
             o->events == 1 ? "" : "s", (unsigned long long)o->first_seq,
             (unsigned long long)o->last_seq,
             !strcmp(o->status, "duplicate") ? " (already ingested, nothing written)" : "");
    else if (!strcmp(o->status, "refused"))
      printf(": refused (%s, %d %s): %s\n", ack && strstr(ack, "MSA|AR") ? "AR" : "AE", o->e.code,
             cl_hl7_code_text(o->e.code), o->detail);
    else
      printf(": error: %s\n", o->detail);
  }
  cl_free(ack);
}

/* Signs and appends the events of one message as one batch. */
static int append(ingest *g, const cl_hl7_mapped *r, outcome *o) {
  size_t n = r->n;
  ProtobufCBinaryData *evs = calloc(n, sizeof *evs);
  if (!evs) {
    snprintf(o->detail, sizeof o->detail, "out of memory");
    return CL_ENOMEM;
  }
  for (size_t i = 0; i < n; i++)
    evs[i] = (ProtobufCBinaryData){r->ev[i].len, r->ev[i].bytes};
  int dup = 0;
  cl_err err;
  cl_err_clear(&err);
  int rc = cli_append_signed(g->io->client, &g->io->signer, evs, n, &o->first_seq, &o->last_seq,
                             &dup, &err);
  free(evs);
  if (rc) {
    snprintf(o->detail, sizeof o->detail, "%s (%s)", err.msg[0] ? err.msg : cl_strerror(rc),
             cl_errname(rc));
    return rc;
  }
  o->events = n;
  o->status = dup ? "duplicate" : "accepted";
  return 0;
}

static void refuse(outcome *o, const cl_hl7_error *e, const char *msg) {
  o->status = "refused";
  o->e = *e;
  snprintf(o->detail, sizeof o->detail, "%s", msg);
}

static void one(ingest *g, const char *file, size_t index, const uint8_t *p, size_t n) {
  outcome o = {.status = "error"};
  cl_hl7_msg *m = NULL;
  cl_hl7_mapped *r = NULL;
  cl_hl7_error e;
  cl_err err;
  cl_err_clear(&err);
  if (cl_hl7_parse(p, n, NULL, &m, &e, &err)) {
    refuse(&o, &e, err.msg);
  } else if (cl_hl7_map(m, &g->opts, &r, &e, &err)) {
    refuse(&o, &e, err.msg);
  } else {
    int rc = append(g, r, &o);
    if (rc == CL_EDUPLICATE) {
      /* ids of this sender and control id are committed with other content */
      char why[300];
      cl_hl7_error_reused_id(cl_hl7_header_of(m), &e, why, sizeof why);
      refuse(&o, &e, why);
    }
  }
  if (!strcmp(o.status, "accepted")) {
    g->accepted++;
    g->events += o.events;
  } else if (!strcmp(o.status, "duplicate")) {
    g->dups++;
  } else if (!strcmp(o.status, "refused")) {
    g->refused++;
  } else {
    g->errors++;
  }
  /* the header of what was parsed, else what can be salvaged for the report */
  cl_hl7_msg *hm = m;
  if (!hm && cl_hl7_parse_msh(p, n, NULL, &hm, &err))
    hm = NULL;
  report(g, file, index, hm ? cl_hl7_header_of(hm) : NULL, p, n, &o);
  if (hm != m)
    cl_hl7_free(hm);
  cl_hl7_mapped_free(r);
  cl_hl7_free(m);
  cli_progress_update(&g->prog, g->messages, 0);
}

/* ---- files to messages ---- */

static int starts(const uint8_t *p, size_t n, size_t i, const char *id) {
  return i + 3 <= n && !memcmp(p + i, id, 3);
}

/* Field 1 of a batch trailer line (BTS/FTS), as a count; -1 if absent. */
static long count_of(const uint8_t *p, size_t n, size_t i) {
  if (i + 4 >= n)
    return -1;
  char sep = (char)p[i + 3], buf[24];
  size_t k = 0;
  for (size_t j = i + 4;
       j < n && p[j] != (uint8_t)sep && p[j] != '\r' && p[j] != '\n' && k < sizeof buf - 1; j++)
    buf[k++] = (char)p[j];
  buf[k] = '\0';
  char *end;
  errno = 0;
  long v = k ? strtol(buf, &end, 10) : -1;
  return k && !errno && !*end && v >= 0 ? v : -2;
}

/* Is the count in field 1 of the BTS/FTS line at i other than `have`
 * (the messages of the batch, the batches of the file)? Says why. */
static int count_bad(const uint8_t *p, size_t n, size_t i, size_t have, size_t line, char *why,
                     size_t whyn) {
  long want = count_of(p, n, i);
  if (want == -1 || (want >= 0 && (size_t)want == have))
    return 0;
  int bts = !memcmp(p + i, "BTS", 3);
  char got[24];
  snprintf(got, sizeof got, "%ld", want);
  snprintf(why, whyn, "line %zu: %s is %s, the %s has %zu %s", line + 1,
           bts ? "BTS-1 batch message count" : "FTS-1 file batch count",
           want == -2 ? "not a number" : got, bts ? "batch" : "file", have,
           bts ? "messages" : "batches");
  return 1;
}

typedef struct span {
  size_t off, len;
} span;

/* Splits a text file into messages (each from an MSH line up to the next
 * MSH or batch segment); checks BTS-1/FTS-1 counts. 0, or -1 with why. */
static int split_text(const uint8_t *p, size_t n, span **out, size_t *nout, char *why,
                      size_t whyn) {
  size_t cap = 16, k = 0, in_batch = 0, batches = 0;
  span *v = malloc(cap * sizeof *v);
  long cur = -1; /* index of the open message */
  size_t line = 0;
  for (size_t i = 0; v && i <= n; line++) {
    size_t e = i;
    while (e < n && p[e] != '\r' && p[e] != '\n')
      e++;
    int msh = starts(p, n, i, "MSH");
    int wrap = starts(p, n, i, "FHS") || starts(p, n, i, "BHS") || starts(p, n, i, "BTS") ||
               starts(p, n, i, "FTS");
    if (msh || wrap || (cur < 0 && e > i)) { /* a new message, a wrapper, or junk before MSH */
      if (cur >= 0)
        v[cur].len = i - v[cur].off;
      cur = -1;
      if (!wrap) {
        if (k == cap) {
          span *nv = realloc(v, (cap *= 2) * sizeof *v);
          if (!nv)
            break;
          v = nv;
        }
        v[k] = (span){i, 0};
        cur = (long)k++;
        in_batch++;
      } else if (!memcmp(p + i, "BHS", 3)) {
        in_batch = 0;
        batches++;
      } else if (!memcmp(p + i, "BTS", 3) || !memcmp(p + i, "FTS", 3)) {
        int bts = !memcmp(p + i, "BTS", 3);
        if (count_bad(p, n, i, bts ? in_batch : batches, line, why, whyn)) {
          free(v);
          return -1;
        }
      }
    }
    i = e < n && p[e] == '\r' && e + 1 < n && p[e + 1] == '\n' ? e + 2 : e + 1;
    if (e >= n)
      break;
  }
  if (!v) {
    snprintf(why, whyn, "out of memory");
    return -1;
  }
  if (cur >= 0)
    v[cur].len = n - v[cur].off;
  *out = v;
  *nout = k;
  return 0;
}

typedef struct frames {
  ingest *g;
  const char *file;
  size_t index;
} frames;

static int on_frame(void *ctx, const cl_mllp_event *ev) {
  frames *f = ctx;
  f->index++;
  if (ev->kind == CL_MLLP_FRAME) {
    one(f->g, f->file, f->index, ev->p, ev->n);
  } else {
    outcome o = {.status = "refused"};
    o.e.code = CL_HL7_INTERNAL;
    snprintf(o.e.reason, sizeof o.e.reason, "MLLP frame at byte %llu exceeds %zu bytes",
             (unsigned long long)ev->offset, ev->n);
    snprintf(o.detail, sizeof o.detail, "%s", o.e.reason);
    f->g->refused++;
    report(f->g, f->file, f->index, NULL, (const uint8_t *)"", 0, &o);
  }
  return 0;
}

static int ingest_mllp(ingest *g, const char *file, const uint8_t *p, size_t n) {
  cl_mllp *d;
  cl_err err;
  if (cl_mllp_new(0, &d, &err))
    return cli_fail("ingest hl7", &err);
  frames f = {g, file, 0};
  int rc = cl_mllp_feed(d, p, n, on_frame, &f, NULL, &err);
  if (!rc && cl_mllp_pending(d)) {
    outcome o = {.status = "refused"};
    o.e.code = CL_HL7_SEGMENT_SEQUENCE;
    snprintf(o.e.reason, sizeof o.e.reason, "truncated MLLP frame at the end of the file");
    snprintf(o.detail, sizeof o.detail, "%s", o.e.reason);
    g->refused++;
    report(g, file, ++f.index, NULL, (const uint8_t *)"", 0, &o);
  }
  cl_mllp_free(d);
  return rc ? cli_fail("ingest hl7", &err) : 0;
}

static int ingest_file(ingest *g, const char *file) {
  FILE *f = fopen(file, "rb");
  if (!f) {
    fprintf(stderr, "clinlog ingest hl7: %s: %s\n", file, strerror(errno));
    g->errors++;
    return 1;
  }
  size_t n = 0;
  uint8_t *p = (uint8_t *)cli_read_all(f, &n);
  int bad = ferror(f);
  fclose(f);
  if (!p || bad) {
    fprintf(stderr, "clinlog ingest hl7: %s: %s\n", file, p ? "read error" : "out of memory");
    free(p);
    g->errors++;
    return 1;
  }
  size_t i = 0;
  while (i < n && strchr(" \t\r\n", p[i]))
    i++;
  int rc = 0;
  if (i < n && p[i] == CL_MLLP_VT) {
    rc = ingest_mllp(g, file, p, n);
  } else {
    span *v = NULL;
    size_t k = 0;
    char why[256];
    if (split_text(p, n, &v, &k, why, sizeof why)) {
      /* a batch that does not add up is refused whole, before anything is sent */
      if (g->json)
        json_array_append_new(g->results, json_pack("{s:s, s:s, s:s}", "file", file, "status",
                                                    "refused", "detail", why));
      else
        printf("%s: refused: %s; nothing was sent\n", file, why);
      g->files_refused++;
      rc = 1;
    }
    for (size_t j = 0; j < k; j++)
      one(g, file, j + 1, p + v[j].off, v[j].len);
    free(v);
  }
  free(p);
  return rc;
}

/* ---- the command ---- */

static int parse_tz(const char *s, int *out) {
  int hh, mm;
  if (strlen(s) != 5 || (s[0] != '+' && s[0] != '-') || sscanf(s + 1, "%2d%2d", &hh, &mm) != 2 ||
      hh > 14 || mm > 59)
    return -1;
  *out = (s[0] == '-' ? -1 : 1) * (hh * 60 + mm);
  return 0;
}

/* --tz for cli_ingest_parse. */
static int tz_option(void *ctx, const char *arg) {
  return parse_tz(arg, &((ingest *)ctx)->opts.default_offset_min);
}

static int usage(FILE *f, int rc) {
  fprintf(f, "usage: clinlog ingest hl7 FILE... --server HOST:PORT --key FILE [options]\n"
             "Reads HL7 v2 messages (CR, LF or CRLF segments; several per file; FHS/BHS\n"
             "batches; or MLLP-framed files), maps each to catalog events and appends them\n"
             "as one atomic batch per message, signed with --key. Reports each message as\n"
             "accepted (sequence numbers), duplicate (ingested before: nothing written) or\n"
             "refused (the ACK's error: segment, field, table 0357 code, reason). Exit\n"
             "status 1 if any message was refused or failed.\n"
             "  --key FILE           the integration feed's signing key (clinlog keygen)\n"
             "  --principal ID       recorded_by.principal_id (default: the key's principal,\n"
             "                       looked up in the log)\n"
             "  --role ROLE          recorded_by.role (default: integration)\n"
             "  --tz +HHMM|-HHMM     offset of times sent without one (default +0000)\n"
             "  --json               one JSON document: per-message results and "
             "totals\n" CLI_REMOTE_USAGE);
  return rc;
}

static int run(ingest *g, char **files, int nfiles) {
  int status = cli_ingest_open(g->io, "ingest hl7");
  if (status)
    return status;
  g->opts.principal_id = g->io->principal;
  g->results = json_array();
  cli_progress_start(&g->prog, "ingest hl7 (messages)");
  if (g->json)
    g->prog.tty = 0;
  for (int i = 0; i < nfiles; i++)
    status |= ingest_file(g, files[i]);
  cli_progress_end(&g->prog);
  double secs = cli_now() - g->prog.t0;
  int ok = !status && !g->refused && !g->errors && !g->files_refused;
  if (g->json) {
    json_t *o =
        json_pack("{s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:b}", "messages", g->results,
                  "total", (json_int_t)g->messages, "accepted", (json_int_t)g->accepted,
                  "duplicates", (json_int_t)g->dups, "refused", (json_int_t)g->refused, "errors",
                  (json_int_t)g->errors, "filesRefused", (json_int_t)g->files_refused, "events",
                  (json_int_t)g->events, "seconds", secs, "ok", ok);
    cli_print_json(stdout, o);
    json_decref(o);
  } else {
    json_decref(g->results);
    printf("ingested %llu messages in %.2f s (%.0f/s): %llu accepted (%llu events), %llu "
           "duplicates, %llu refused, %llu errors%s\n",
           (unsigned long long)g->messages, secs, secs > 0 ? (double)g->messages / secs : 0.0,
           (unsigned long long)g->accepted, (unsigned long long)g->events,
           (unsigned long long)g->dups, (unsigned long long)g->refused,
           (unsigned long long)g->errors,
           g->files_refused ? "; batch files refused whole (counts)" : "");
  }
  cli_ingest_close(g->io);
  return ok ? 0 : 1;
}

int cmd_ingest(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "readings"))
    return cmd_ingest_readings(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "fhir"))
    return cmd_ingest_fhir(argc - 1, argv + 1);
  if (argc < 2 || strcmp(argv[1], "hl7")) {
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
      return usage(stdout, 0);
    fprintf(stderr, "clinlog ingest: the formats are hl7 (`clinlog ingest hl7 FILE...`), fhir "
                    "(`clinlog ingest fhir FILE|DIR...`) and readings (`clinlog ingest readings "
                    "FILE...`)\n");
    return 2;
  }
  ingest g = {0};
  cli_ingest io = {0};
  int st = cli_ingest_parse(argc - 1, argv + 1, "ingest hl7", usage, "tz", tz_option, &g, &io);
  if (st >= 0)
    return st;
  g.io = &io;
  g.json = io.json;
  g.opts.role = io.role;
  return run(&g, io.paths, io.npaths);
}

/* ---- what every `clinlog ingest FORMAT` shares ---- */

int cli_ingest_parse(int argc, char **argv, const char *what, int (*usage_fn)(FILE *, int),
                     const char *extra, int (*on_extra)(void *, const char *), void *ctx,
                     cli_ingest *a) {
  struct option opts[] = {
      {"key", required_argument, 0, 'k'},
      {"principal", required_argument, 0, 'P'},
      {"role", required_argument, 0, 'r'},
      {"json", no_argument, 0, 'j'},
      {"help", no_argument, 0, 'h'},
      {extra ? extra : "help", extra ? required_argument : no_argument, 0, extra ? 'x' : 'h'},
      CLI_REMOTE_OPTIONS,
      {0, 0, 0, 0}};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (cli_remote_option(&a->remote, c, optarg))
      continue;
    switch (c) {
    case 'k':
      a->keyfile = optarg;
      break;
    case 'P':
      a->principal_opt = optarg;
      break;
    case 'r':
      a->role = optarg;
      break;
    case 'j':
      a->json = 1;
      break;
    case 'x':
      if (on_extra(ctx, optarg)) {
        fprintf(stderr, "clinlog %s: --%s: bad value \"%s\"\n", what, extra, optarg);
        return 2;
      }
      break;
    case 'h':
      return usage_fn(stdout, 0);
    default:
      return usage_fn(stderr, 2);
    }
  }
  if (optind >= argc || !a->remote.server || !a->keyfile) {
    fprintf(stderr, "clinlog %s: %s\n", what,
            optind >= argc      ? "no FILE given"
            : !a->remote.server ? "--server is required"
                                : "--key is required");
    return usage_fn(stderr, 2);
  }
  a->paths = argv + optind;
  a->npaths = argc - optind;
  return -1;
}

int cli_ingest_open(cli_ingest *a, const char *what) {
  cl_err err;
  cl_err_clear(&err);
  char ctx[96];
  if (cl_crypto_init(&err) || cl_signer_load(&a->signer, a->keyfile, &err)) {
    snprintf(ctx, sizeof ctx, "%s: key", what);
    return cli_fail(ctx, &err);
  }
  if (cli_remote_open(&a->remote, &a->client, &err)) {
    cl_signer_free(&a->signer);
    return cli_fail(what, &err);
  }
  if (a->principal_opt) {
    snprintf(a->principal, sizeof a->principal, "%s", a->principal_opt);
  } else if (cli_remote_principal(a->client, a->signer.pk, a->principal, sizeof a->principal,
                                  &err)) {
    cli_ingest_close(a);
    snprintf(ctx, sizeof ctx, "%s: the signing key's principal (or give --principal)", what);
    return cli_fail(ctx, &err);
  }
  return 0;
}

void cli_ingest_close(cli_ingest *a) {
  cl_client_close(a->client);
  a->client = NULL;
  cl_signer_free(&a->signer);
}

/* clinlog fhir read|history|search|everything|capabilities (and export:
 * cmd_fhir_export.c): the FHIR R4
 * views of a server (clinlog.v1.Fhir, docs/fhir.md).
 *
 * Search parameters are given as NAME=VALUE arguments, exactly as in a URL
 * but not URL-encoded ("code=http://loinc.org|8867-4", "date=ge2026-11-01",
 * "subject:Patient.identifier=urn:oid:1.2|MRN-1"). `--all` follows the
 * Bundle's next links (the `_cursor` they carry) and prints every match as
 * one NDJSON line, with progress on a terminal; without it the Bundle is
 * printed. Reads may ask for read-your-writes (--min-seq N).
 *
 * Output: resources and Bundles are FHIR JSON, as the server sent them
 * (decimals exact). Without --json a search or history prints one line per
 * entry (type/id, version, lastUpdated) and the total; with --json the
 * Bundle itself (one line); --all prints NDJSON either way.
 *
 * Exit status: 0 done, 1 error (server or transport: NOT_FOUND for an
 * unknown resource), 2 usage. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/cli/cli.h"
#include "adapters/grpc/grpcutil.h"
#include "clinlog/v1/fhir.pb-c.h"

enum {
  OPT_JSON = 1,
  OPT_MIN_SEQ,
  OPT_VERSION,
  OPT_ALL,
  OPT_STRICT,
  OPT_COUNT,
  OPT_OUT,
  OPT_GROUP,
  OPT_PATIENTS,
  OPT_HELP
};

static const char USAGE[] =
    "usage: clinlog fhir read TYPE ID [--version N] [--min-seq N] --server HOST:PORT [TLS]\n"
    "       clinlog fhir history TYPE [ID] [--count N] ...\n"
    "       clinlog fhir search TYPE [NAME=VALUE ...] [--all] [--strict] [--json] ...\n"
    "       clinlog fhir everything PATIENT_ID [_type=T,...] [_since=INSTANT] [--all] ...\n"
    "       clinlog fhir capabilities ...\n"
    "       clinlog fhir export [_type=T,...] [_since=INSTANT] [--patients|--group ID] --out DIR\n"
    "       clinlog fhir export-status JOB | export-cancel JOB\n"
    "The FHIR R4 views of a server's log (its `fhir` projection; docs/fhir.md).\n"
    "  read         one resource (the current version, or --version N)\n"
    "  history      every version of a resource (newest first), or of a type\n"
    "  search       NAME=VALUE parameters as in a URL, not encoded: code=http://loinc.org|8867-4,\n"
    "               date=ge2026-11-01, patient=1001, _sort=-date, _count=50, ...\n"
    "  everything   Patient/[id]/$everything\n"
    "  capabilities the CapabilityStatement\n"
    "  export       Bulk Data $export of a snapshot (every resource, --patients: the Patient\n"
    "               compartments), with progress; files DIR/<n>.<Type>.ndjson\n"
    "  --all                follow the next links: every match, as NDJSON\n"
    "  --strict             unknown parameters are an error (Prefer: handling=strict)\n"
    "  --min-seq N          read your writes: wait until the views have folded seq N\n"
    "  --json               print FHIR JSON (one line) instead of a summary\n" CLI_REMOTE_USAGE;

typedef struct args {
  cli_remote remote;
  int json, all, strict, patients;
  uint64_t min_seq, version, count;
  const char *out, *group;
  int npos;
  char **pos;
} args;

/* Parses options; returns -1 to go on, else the exit status. */
static int parse(int argc, char **argv, args *a) {
  static const struct option opts[] = {{"json", no_argument, 0, OPT_JSON},
                                       {"min-seq", required_argument, 0, OPT_MIN_SEQ},
                                       {"version", required_argument, 0, OPT_VERSION},
                                       {"count", required_argument, 0, OPT_COUNT},
                                       {"all", no_argument, 0, OPT_ALL},
                                       {"strict", no_argument, 0, OPT_STRICT},
                                       {"out", required_argument, 0, OPT_OUT},
                                       {"group", required_argument, 0, OPT_GROUP},
                                       {"patients", no_argument, 0, OPT_PATIENTS},
                                       {"help", no_argument, 0, OPT_HELP},
                                       CLI_REMOTE_OPTIONS,
                                       {0, 0, 0, 0}};
  memset(a, 0, sizeof *a);
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (cli_remote_option(&a->remote, c, optarg))
      continue;
    switch (c) {
    case OPT_JSON:
      a->json = 1;
      break;
    case OPT_ALL:
      a->all = 1;
      break;
    case OPT_STRICT:
      a->strict = 1;
      break;
    case OPT_OUT:
      a->out = optarg;
      break;
    case OPT_GROUP:
      a->group = optarg;
      break;
    case OPT_PATIENTS:
      a->patients = 1;
      break;
    case OPT_MIN_SEQ:
      if (cli_parse_u64("--min-seq", optarg, &a->min_seq))
        return 2;
      break;
    case OPT_VERSION:
      if (cli_parse_u64("--version", optarg, &a->version) || a->version == 0 ||
          a->version > UINT32_MAX)
        return 2;
      break;
    case OPT_COUNT:
      if (cli_parse_u64("--count", optarg, &a->count) || a->count > 1000)
        return 2;
      break;
    default:
      fputs(USAGE, c == OPT_HELP ? stdout : stderr);
      return c == OPT_HELP ? 0 : 2;
    }
  }
  a->npos = argc - optind;
  a->pos = argv + optind;
  if (!a->remote.server) {
    fprintf(stderr, "clinlog fhir: --server HOST:PORT required (the views live in a server)\n");
    return 2;
  }
  return -1;
}

/* One call; 0 with *out set (free with clinlog__v1__fhir_response__free_unpacked), or
 * the exit status after printing the error. */
static int call(cl_client *cl, const char *what, int method, const ProtobufCMessage *req,
                Clinlog__V1__FhirResponse **out) {
  cl_err err;
  cl_err_clear(&err);
  ProtobufCMessage *m;
  if (cl_client_unary(cl, cl_grpc_method_path[method], req, &clinlog__v1__fhir_response__descriptor,
                      &m, NULL, &err) != 0)
    return cli_fail(what, &err);
  *out = (Clinlog__V1__FhirResponse *)m;
  return 0;
}

static json_t *json_of(const Clinlog__V1__FhirResponse *r) {
  return json_loadb((const char *)r->json.data, r->json.len, 0, NULL);
}

/* Prints a resource as the server sent it (its bytes keep exact decimals). */
static void print_raw(const Clinlog__V1__FhirResponse *r) {
  fwrite(r->json.data, 1, r->json.len, stdout);
  fputc('\n', stdout);
}

/* The _cursor of a Bundle's next link, decoded, or NULL. */
static char *next_cursor(json_t *bundle) {
  json_t *links = json_object_get(bundle, "link");
  for (size_t i = 0; i < json_array_size(links); i++) {
    json_t *l = json_array_get(links, i);
    const char *rel = json_string_value(json_object_get(l, "relation"));
    const char *url = json_string_value(json_object_get(l, "url"));
    if (rel == NULL || url == NULL || strcmp(rel, "next") != 0)
      continue;
    const char *c = strstr(url, "_cursor=");
    if (c == NULL)
      return NULL;
    c += 8;
    size_t n = strcspn(c, "&");
    char *out = malloc(n + 1), *w = out;
    if (out == NULL)
      return NULL;
    for (size_t k = 0; k < n; k++) {
      if (c[k] == '%' && k + 2 < n + 1) {
        char hx[3] = {c[k + 1], c[k + 2], 0};
        *w++ = (char)strtol(hx, NULL, 16);
        k += 2;
      } else {
        *w++ = c[k];
      }
    }
    *w = '\0';
    return out;
  }
  return NULL;
}

/* Prints the matches of a searchset Bundle: NDJSON (all) or summary lines.
 * Returns how many. */
static size_t print_matches(json_t *b, int ndjson) {
  size_t n = 0;
  json_t *entries = json_object_get(b, "entry");
  for (size_t i = 0; i < json_array_size(entries); i++) {
    json_t *e = json_array_get(entries, i);
    const char *mode = json_string_value(json_object_get(json_object_get(e, "search"), "mode"));
    json_t *r = json_object_get(e, "resource");
    if (mode != NULL && strcmp(mode, "outcome") == 0) {
      const char *d = json_string_value(
          json_object_get(json_array_get(json_object_get(r, "issue"), 0), "diagnostics"));
      fprintf(stderr, "clinlog fhir: server: %s\n", d ? d : "(an OperationOutcome)");
      continue;
    }
    if (ndjson) {
      cli_print_json(stdout, r);
    } else {
      json_t *meta = json_object_get(r, "meta");
      printf("%s/", json_string_value(json_object_get(r, "resourceType")));
      cli_put_safe(stdout, json_string_value(json_object_get(r, "id")), 34);
      printf(" v%-4s %s%s\n", json_string_value(json_object_get(meta, "versionId")),
             json_string_value(json_object_get(meta, "lastUpdated")),
             mode && !strcmp(mode, "include") ? "  (included)" : "");
    }
    n++;
  }
  return n;
}

/* NAME=VALUE arguments into params (views into argv). */
static int params_of(char **pos, int n, Clinlog__V1__FhirParam *store,
                     Clinlog__V1__FhirParam **ptrs, size_t cap, size_t *np) {
  *np = 0;
  for (int i = 0; i < n; i++) {
    char *eq = strchr(pos[i], '=');
    if (eq == NULL || eq == pos[i] || *np + 1 >= cap) {
      fprintf(stderr, "clinlog fhir: \"%s\": expected NAME=VALUE\n", pos[i]);
      return 2;
    }
    clinlog__v1__fhir_param__init(&store[*np]);
    *eq = '\0';
    store[*np].name = pos[i];
    store[*np].value = eq + 1;
    ptrs[*np] = &store[*np];
    (*np)++;
  }
  return 0;
}

#define MAX_ARGS 64

/* search and everything: one Bundle, or every page. */
static int search_pages(cl_client *cl, const args *a, int everything) {
  Clinlog__V1__FhirParam store[MAX_ARGS + 1], *ptrs[MAX_ARGS + 1];
  size_t np;
  if (a->npos < 2) {
    fprintf(stderr, "clinlog fhir %s: which %s?\n", everything ? "everything" : "search",
            everything ? "PATIENT_ID" : "TYPE");
    return 2;
  }
  int st = params_of(a->pos + 2, a->npos - 2, store, ptrs, MAX_ARGS, &np);
  if (st)
    return st;
  Clinlog__V1__Consistency cons = CLINLOG__V1__CONSISTENCY__INIT;
  cons.min_sequence = a->min_seq;
  size_t cursor_at = np; /* the _cursor parameter, added for pages after the first */
  char *cursor = NULL;
  cli_progress prog;
  if (a->all)
    cli_progress_start(&prog, everything ? "everything" : "search");
  size_t total = 0, printed = 0;
  for (;;) {
    size_t n = np;
    if (cursor != NULL) {
      clinlog__v1__fhir_param__init(&store[cursor_at]);
      store[cursor_at].name = "_cursor";
      store[cursor_at].value = cursor;
      ptrs[cursor_at] = &store[cursor_at];
      n = np + 1;
    }
    Clinlog__V1__FhirResponse *resp = NULL;
    if (everything) {
      Clinlog__V1__FhirEverythingRequest req = CLINLOG__V1__FHIR_EVERYTHING_REQUEST__INIT;
      req.patient_id = a->pos[1];
      req.n_params = n;
      req.params = ptrs;
      req.consistency = a->min_seq ? &cons : NULL;
      st = call(cl, "fhir everything", M_FHIR_EVERYTHING, &req.base, &resp);
    } else {
      Clinlog__V1__FhirSearchRequest req = CLINLOG__V1__FHIR_SEARCH_REQUEST__INIT;
      req.type = a->pos[1];
      req.n_params = n;
      req.params = ptrs;
      req.strict = a->strict;
      req.consistency = a->min_seq ? &cons : NULL;
      st = call(cl, "fhir search", M_FHIR_SEARCH, &req.base, &resp);
    }
    if (st)
      break;
    json_t *b = json_of(resp);
    if (!a->all) {
      if (a->json)
        print_raw(resp);
      else {
        print_matches(b, 0);
        printf("total %lld%s\n", (long long)json_integer_value(json_object_get(b, "total")),
               next_cursor(b) ? " (more: --all)" : "");
      }
      json_decref(b);
      clinlog__v1__fhir_response__free_unpacked(resp, NULL);
      break;
    }
    total = (size_t)json_integer_value(json_object_get(b, "total"));
    printed += print_matches(b, 1);
    cli_progress_update(&prog, printed, total);
    free(cursor);
    cursor = next_cursor(b);
    json_decref(b);
    clinlog__v1__fhir_response__free_unpacked(resp, NULL);
    if (cursor == NULL)
      break;
  }
  free(cursor);
  if (a->all)
    cli_progress_end(&prog);
  return st;
}

int cmd_fhir(int argc, char **argv) {
  args a;
  int st = parse(argc, argv, &a);
  if (st >= 0)
    return st;
  if (a.npos < 1) {
    fputs(USAGE, stderr);
    return 2;
  }
  const char *sub = a.pos[0];
  cl_err err;
  cl_err_clear(&err);
  cl_client *cl;
  if (cli_remote_open(&a.remote, &cl, &err))
    return cli_fail("fhir", &err);
  Clinlog__V1__Consistency cons = CLINLOG__V1__CONSISTENCY__INIT;
  cons.min_sequence = a.min_seq;
  Clinlog__V1__FhirResponse *resp = NULL;
  if (!strcmp(sub, "read")) {
    if (a.npos != 3) {
      fprintf(stderr, "clinlog fhir read: TYPE ID\n");
      st = 2;
    } else {
      Clinlog__V1__FhirReadRequest req = CLINLOG__V1__FHIR_READ_REQUEST__INIT;
      req.type = a.pos[1];
      req.id = a.pos[2];
      req.version_id = (uint32_t)a.version;
      req.consistency = a.min_seq ? &cons : NULL;
      st = call(cl, "fhir read", M_FHIR_READ, &req.base, &resp);
    }
  } else if (!strcmp(sub, "history")) {
    if (a.npos < 2 || a.npos > 3) {
      fprintf(stderr, "clinlog fhir history: TYPE [ID]\n");
      st = 2;
    } else {
      Clinlog__V1__FhirHistoryRequest req = CLINLOG__V1__FHIR_HISTORY_REQUEST__INIT;
      req.type = a.pos[1];
      req.id = a.npos == 3 ? a.pos[2] : "";
      req.count = (uint32_t)a.count;
      req.consistency = a.min_seq ? &cons : NULL;
      st = call(cl, "fhir history", M_FHIR_HISTORY, &req.base, &resp);
    }
  } else if (!strcmp(sub, "capabilities")) {
    Clinlog__V1__FhirCapabilitiesRequest req = CLINLOG__V1__FHIR_CAPABILITIES_REQUEST__INIT;
    st = call(cl, "fhir capabilities", M_FHIR_CAPABILITIES, &req.base, &resp);
  } else if (!strcmp(sub, "search") || !strcmp(sub, "everything")) {
    st = search_pages(cl, &a, !strcmp(sub, "everything"));
  } else if (!strncmp(sub, "export", 6)) {
    cli_fhir_export_args ea = {.params = a.pos + 1,
                               .nparams = a.npos - 1,
                               .out_dir = a.out,
                               .group = a.group,
                               .patients = a.patients,
                               .strict = a.strict,
                               .json = a.json};
    st = cli_fhir_export(cl, sub, &ea);
  } else {
    fprintf(stderr, "clinlog fhir: unknown subcommand \"%s\"\n", sub);
    st = 2;
  }
  if (resp != NULL) {
    if (a.json) {
      print_raw(resp);
    } else {
      json_t *j = json_of(resp);
      if (!strcmp(sub, "history")) {
        print_matches(j, 0);
        printf("total %lld\n", (long long)json_integer_value(json_object_get(j, "total")));
      } else { /* a resource: its bytes (re-encoding would not keep decimals exact) */
        print_raw(resp);
      }
      json_decref(j);
    }
    clinlog__v1__fhir_response__free_unpacked(resp, NULL);
  }
  cl_client_close(cl);
  return st;
}

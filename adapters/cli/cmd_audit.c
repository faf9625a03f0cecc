/* clinlog audit: the audit trail of a server (clinlog.v1.Audit, the
 * `audit` projection; docs/security.md): who touched what, as FHIR R4
 * AuditEvent resources (IHE BALP), oldest first.
 *
 *   clinlog audit [--patient ID] [--principal ID] [--since T] [--until T]
 *                 [--outcome 0|4|8|12] [--limit N] [--json] --server HOST:PORT
 *   clinlog audit --id UUID ...
 *
 * Every page is fetched (next_after) until the matches run out or --limit
 * records are printed, with progress on a terminal. Output: one line per
 * record (recorded, outcome, who, action, what, patients) and the count;
 * with --json the AuditEvents as NDJSON (the accounting of disclosures as
 * a file an auditor's tools read). T is an instant or a date
 * ("2026-11-02", "2026-11-02T10:15:00Z").
 *
 * Exit status: 0 done, 1 error (server or transport), 2 usage. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/cli/cli.h"
#include "adapters/grpc/grpcutil.h"
#include "clinlog/v1/audit.pb-c.h"
#include "query/fhir/engine.h"

enum {
  OPT_PATIENT = 1,
  OPT_PRINCIPAL,
  OPT_SINCE,
  OPT_UNTIL,
  OPT_OUTCOME,
  OPT_LIMIT,
  OPT_ID,
  OPT_JSON,
  OPT_MIN_SEQ,
  OPT_HELP
};

static const char USAGE[] =
    "usage: clinlog audit [--patient ID] [--principal ID] [--since T] [--until T]\n"
    "                     [--outcome 0|4|8|12] [--limit N] [--json] --server HOST:PORT [TLS]\n"
    "       clinlog audit --id UUID [--json] ...\n"
    "A server's audit trail (every call it served, recorded before its answer left;\n"
    "docs/security.md), oldest first, as FHIR R4 AuditEvents (IHE BALP).\n"
    "  --patient ID     records naming the patient (the accounting of disclosures)\n"
    "  --principal ID   records of a user, system or device\n"
    "  --since T        recorded at or after T (an instant or a date)\n"
    "  --until T        recorded before T\n"
    "  --outcome C      0 success, 4 refused or the caller's error, 8 the server's error\n"
    "  --limit N        at most N records (default: all)\n"
    "  --id UUID        one record (an AuditEvent's id)\n"
    "  --min-seq N      read your writes: wait until the trail's view has folded seq N\n"
    "  --json           the AuditEvents as NDJSON instead of one summary line each\n"
    "Callers need the auditor or admin role (the policy's `audit` kind).\n" CLI_REMOTE_USAGE;

/* An instant or date as unix ns (the start of the range it names). */
static int parse_time(const char *flag, const char *s, int64_t *ns) {
  int64_t lo, hi;
  if (cl_fhir_date_range(s, &lo, &hi) != 0) {
    fprintf(stderr, "clinlog audit: %s: expected a date or instant, got \"%s\"\n", flag, s);
    return -1;
  }
  *ns = lo * 1000000;
  return 0;
}

static Google__Protobuf__Timestamp *ts_of(int64_t ns, Google__Protobuf__Timestamp *ts) {
  if (!ns)
    return NULL;
  google__protobuf__timestamp__init(ts);
  ts->seconds = ns / 1000000000;
  ts->nanos = (int32_t)(ns % 1000000000);
  return ts;
}

/* One summary line of an AuditEvent. */
static void print_summary(json_t *ae) {
  const char *recorded = json_string_value(json_object_get(ae, "recorded"));
  const char *outcome = json_string_value(json_object_get(ae, "outcome"));
  const char *action = json_string_value(json_object_get(ae, "action"));
  const char *who = NULL, *what = NULL;
  json_t *agent = json_array_get(json_object_get(ae, "agent"), 0);
  who = json_string_value(
      json_object_get(json_object_get(json_object_get(agent, "who"), "identifier"), "value"));
  if (!who)
    who = json_string_value(json_object_get(json_object_get(agent, "who"), "display"));
  char patients[512] = "";
  size_t pl = 0;
  json_t *entities = json_object_get(ae, "entity"), *e;
  size_t i;
  json_array_foreach(entities, i, e) {
    const char *ref = json_string_value(json_object_get(json_object_get(e, "what"), "reference"));
    if (!ref)
      continue;
    if (!strncmp(ref, "Patient/", 8) && pl < sizeof patients - 1)
      pl += (size_t)snprintf(patients + pl, sizeof patients - pl, "%s%s", pl ? "," : "", ref + 8);
    else if (!what)
      what = ref;
  }
  json_t *sub = json_array_get(json_object_get(ae, "subtype"), 0);
  cli_put_safe(stdout, recorded, 31);
  fputc(' ', stdout);
  cli_put_safe(stdout, outcome, 2);
  fputc(' ', stdout);
  cli_put_safe(stdout, action, 1);
  fputc(' ', stdout);
  cli_put_safe(stdout, json_string_value(json_object_get(sub, "code")), 16);
  fputc(' ', stdout);
  cli_put_safe(stdout, who, 20);
  fputc(' ', stdout);
  cli_put_safe(stdout, what, 30);
  fputc(' ', stdout);
  cli_put_safe(stdout, patients, 0);
  fputc('\n', stdout);
}

int cmd_audit(int argc, char **argv) {
  static const struct option opts[] = {{"patient", required_argument, 0, OPT_PATIENT},
                                       {"principal", required_argument, 0, OPT_PRINCIPAL},
                                       {"since", required_argument, 0, OPT_SINCE},
                                       {"until", required_argument, 0, OPT_UNTIL},
                                       {"outcome", required_argument, 0, OPT_OUTCOME},
                                       {"limit", required_argument, 0, OPT_LIMIT},
                                       {"id", required_argument, 0, OPT_ID},
                                       {"json", no_argument, 0, OPT_JSON},
                                       {"min-seq", required_argument, 0, OPT_MIN_SEQ},
                                       {"help", no_argument, 0, OPT_HELP},
                                       CLI_REMOTE_OPTIONS,
                                       {0, 0, 0, 0}};
  cli_remote remote = {0};
  Clinlog__V1__AuditQueryRequest req = CLINLOG__V1__AUDIT_QUERY_REQUEST__INIT;
  Clinlog__V1__Consistency cons = CLINLOG__V1__CONSISTENCY__INIT;
  Google__Protobuf__Timestamp since_ts, until_ts;
  int64_t since = 0, until = 0;
  uint64_t limit = 0, min_seq = 0;
  uint8_t id[16];
  int json = 0, c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (cli_remote_option(&remote, c, optarg))
      continue;
    switch (c) {
    case OPT_PATIENT:
      req.patient = optarg;
      break;
    case OPT_PRINCIPAL:
      req.principal = optarg;
      break;
    case OPT_SINCE:
      if (parse_time("--since", optarg, &since))
        return 2;
      break;
    case OPT_UNTIL:
      if (parse_time("--until", optarg, &until))
        return 2;
      break;
    case OPT_OUTCOME:
      req.outcome = optarg;
      break;
    case OPT_LIMIT:
      if (cli_parse_u64("--limit", optarg, &limit))
        return 2;
      break;
    case OPT_ID:
      if (cli_parse_uuid(optarg, id) != 0) {
        fprintf(stderr, "clinlog audit: --id: expected a UUID, got \"%s\"\n", optarg);
        return 2;
      }
      req.event_id = (ProtobufCBinaryData){16, id};
      break;
    case OPT_JSON:
      json = 1;
      break;
    case OPT_MIN_SEQ:
      if (cli_parse_u64("--min-seq", optarg, &min_seq))
        return 2;
      break;
    default:
      fputs(USAGE, c == OPT_HELP ? stdout : stderr);
      return c == OPT_HELP ? 0 : 2;
    }
  }
  if (!remote.server || optind != argc) {
    fputs(USAGE, stderr);
    return 2;
  }
  req.since = ts_of(since, &since_ts);
  req.until = ts_of(until, &until_ts);
  if (min_seq) {
    cons.min_sequence = min_seq;
    req.consistency = &cons;
  }
  cl_err err;
  cl_err_clear(&err);
  cl_client *cl;
  if (cli_remote_open(&remote, &cl, &err) != 0)
    return cli_fail("audit", &err);
  cli_progress prog;
  cli_progress_start(&prog, "audit records");
  uint64_t printed = 0;
  int status = 0;
  for (;;) {
    uint64_t left = limit ? limit - printed : 0;
    req.limit = left && left < 1000 ? (uint32_t)left : 1000;
    ProtobufCMessage *m;
    if (cl_client_unary(cl, cl_grpc_method_path[M_AUDIT_QUERY], &req.base,
                        &clinlog__v1__audit_query_response__descriptor, &m, NULL, &err) != 0) {
      status = cli_fail("audit", &err);
      break;
    }
    Clinlog__V1__AuditQueryResponse *r = (Clinlog__V1__AuditQueryResponse *)m;
    for (size_t i = 0; i < r->n_audit_events; i++) {
      ProtobufCBinaryData b = r->audit_events[i];
      if (json) {
        fwrite(b.data, 1, b.len, stdout);
        fputc('\n', stdout);
      } else {
        json_t *ae = json_loadb((const char *)b.data, b.len, 0, NULL);
        print_summary(ae);
        json_decref(ae);
      }
      printed++;
    }
    uint64_t next = r->next_after;
    clinlog__v1__audit_query_response__free_unpacked(r, NULL);
    cli_progress_update(&prog, printed, 0);
    if (!next || req.event_id.len || (limit && printed >= limit))
      break;
    req.after_seq = next;
  }
  cli_progress_end(&prog);
  cl_client_close(cl);
  if (status == 0 && !json)
    fprintf(stderr, "%llu audit record%s\n", (unsigned long long)printed, printed == 1 ? "" : "s");
  return status;
}

/* clinlog streams get|list|by-type and clinlog projections list|rebuild:
 * reads of a server's projections (clinlog.v1.Streams) and their status
 * (clinlog.v1.Projections), see proto/clinlog/v1/query.proto.
 *
 * Reads may ask for read-your-writes (--min-seq N: the seq or tree size an
 * append returned): the server answers once its projection has folded it,
 * or DEADLINE_EXCEEDED at --timeout-ms.
 *
 * Exit status: 0 done, 1 error (server or transport), 2 usage. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/cli/cli.h"
#include "adapters/grpc/grpcutil.h"
#include "clinlog/v1/query.pb-c.h"
#include "store/event.h"

enum { OPT_JSON = 1, OPT_MIN_SEQ, OPT_LIMIT, OPT_FROM, OPT_ALL, OPT_HELP };

static const char STREAMS_USAGE[] =
    "usage: clinlog streams get STREAM [--min-seq N] [--json] --server HOST:PORT [TLS options]\n"
    "       clinlog streams list CATEGORY [--limit N] [--all] [--min-seq N] [--json] ...\n"
    "       clinlog streams by-type TYPE [--from SEQ] [--limit N] [--min-seq N] [--json] ...\n"
    "What a server's log holds per stream (its `streams` projection).\n"
    "  get        one stream: events, first and last seq and time, counts by event type\n"
    "  list       the streams of a category (\"patient\": every patient; the name up to\n"
    "             its first '-'), --limit per page (default 100), --all pages\n"
    "  by-type    seqs of the events of TYPE (a name such as ObservationRecorded, or a\n"
    "             code), from --from, at most --limit (default 100)\n"
    "  --min-seq N          read your writes: wait until the projection has folded seq N\n"
    "  --json               print the answers as proto3 JSON lines\n" CLI_REMOTE_USAGE;

static const char PROJ_USAGE[] =
    "usage: clinlog projections [list] [--json] --server HOST:PORT [TLS options]\n"
    "       clinlog projections rebuild NAME [--json] ...\n"
    "The projections a server runs (views folded from its log).\n"
    "  list       name, state, position, the log's head and the lag, events folded,\n"
    "             rebuilds, the last error\n"
    "  rebuild    drops NAME's state and folds it again from event 1 (it answers once the\n"
    "             state is reset; `list` shows the fold catching up)\n"
    "  --json               print the answer as proto3 JSON\n" CLI_REMOTE_USAGE;

typedef struct args {
  cli_remote remote;
  int json, all;
  uint64_t min_seq, from, limit;
  int npos;
  char **pos;
} args;

/* Parses options; returns -1 to go on, else the exit status. */
static int parse(int argc, char **argv, const char *usage, args *a) {
  static const struct option opts[] = {{"json", no_argument, 0, OPT_JSON},
                                       {"min-seq", required_argument, 0, OPT_MIN_SEQ},
                                       {"limit", required_argument, 0, OPT_LIMIT},
                                       {"from", required_argument, 0, OPT_FROM},
                                       {"all", no_argument, 0, OPT_ALL},
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
    case OPT_MIN_SEQ:
      if (cli_parse_u64("--min-seq", optarg, &a->min_seq))
        return 2;
      break;
    case OPT_LIMIT:
      if (cli_parse_u64("--limit", optarg, &a->limit) || a->limit == 0)
        return 2;
      break;
    case OPT_FROM:
      if (cli_parse_u64("--from", optarg, &a->from))
        return 2;
      break;
    default:
      fputs(usage, c == OPT_HELP ? stdout : stderr);
      return c == OPT_HELP ? 0 : 2;
    }
  }
  a->npos = argc - optind;
  a->pos = argv + optind;
  if (!a->remote.server) {
    fprintf(stderr, "clinlog: --server HOST:PORT required (projections live in a server)\n");
    return 2;
  }
  return -1;
}

/* One unary call; prints errors. 0 with *out set, or the exit status. */
static int call(const args *a, const char *what, int method, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *resp, ProtobufCMessage **out) {
  cl_err err;
  cl_err_clear(&err);
  cl_client *cl;
  if (cli_remote_open(&a->remote, &cl, &err))
    return cli_fail(what, &err);
  int rc = cl_client_unary(cl, cl_grpc_method_path[method], req, resp, out, NULL, &err);
  cl_client_close(cl);
  return rc ? cli_fail(what, &err) : 0;
}

static void print_time(const Google__Protobuf__Timestamp *t) {
  if (!t) {
    printf("-");
    return;
  }
  time_t s = (time_t)t->seconds;
  struct tm tm;
  char buf[32];
  gmtime_r(&s, &tm);
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  printf("%s.%03dZ", buf, t->nanos / 1000000);
}

static void print_stream(const Clinlog__V1__StreamInfo *si) {
  printf("stream    ");
  cli_put_safe(stdout, si->stream, 0);
  printf("\ncategory  ");
  cli_put_safe(stdout, si->category, 0);
  printf("\nevents    %llu (seq %llu .. %llu)\nfirst     ", (unsigned long long)si->version,
         (unsigned long long)si->first_seq, (unsigned long long)si->last_seq);
  print_time(si->first_committed_at);
  printf("\nlast      ");
  print_time(si->last_committed_at);
  printf("\n");
  for (size_t i = 0; i < si->n_counts; i++) {
    printf("  %-32s %llu\n",
           si->counts[i]->name && si->counts[i]->name[0] ? si->counts[i]->name : "?",
           (unsigned long long)si->counts[i]->count);
  }
}

static int streams_get(const args *a, Clinlog__V1__Consistency *cons) {
  if (a->npos != 2) {
    fprintf(stderr, "clinlog streams get: which STREAM?\n");
    return 2;
  }
  Clinlog__V1__GetStreamRequest req = CLINLOG__V1__GET_STREAM_REQUEST__INIT;
  req.stream = a->pos[1];
  req.consistency = cons;
  Clinlog__V1__StreamInfo *si;
  int st = call(a, "streams get", M_GET_STREAM, &req.base, &clinlog__v1__stream_info__descriptor,
                (ProtobufCMessage **)&si);
  if (st)
    return st;
  st = a->json ? cli_print_message(&si->base, "streams get") : (print_stream(si), 0);
  clinlog__v1__stream_info__free_unpacked(si, NULL);
  return st;
}

static int streams_list(const args *a, Clinlog__V1__Consistency *cons) {
  if (a->npos != 2) {
    fprintf(stderr, "clinlog streams list: which CATEGORY? (e.g. patient)\n");
    return 2;
  }
  Clinlog__V1__ListStreamsRequest req = CLINLOG__V1__LIST_STREAMS_REQUEST__INIT;
  req.category = a->pos[1];
  req.page_size = (uint32_t)(a->limit ? a->limit : 100);
  req.consistency = cons;
  uint8_t token[32];
  uint64_t total = 0;
  if (!a->json)
    printf("%-40s %10s %12s %12s\n", "STREAM", "EVENTS", "FIRST SEQ", "LAST SEQ");
  for (;;) {
    Clinlog__V1__ListStreamsResponse *resp;
    int st = call(a, "streams list", M_LIST_STREAMS, &req.base,
                  &clinlog__v1__list_streams_response__descriptor, (ProtobufCMessage **)&resp);
    if (st)
      return st;
    for (size_t i = 0; i < resp->n_streams && st == 0; i++) {
      const Clinlog__V1__StreamInfo *si = resp->streams[i];
      if (a->json) {
        st = cli_print_message(&si->base, "streams list");
      } else {
        cli_put_safe(stdout, si->stream, 40);
        printf(" %10llu %12llu %12llu\n", (unsigned long long)si->version,
               (unsigned long long)si->first_seq, (unsigned long long)si->last_seq);
      }
      total++;
    }
    int more = resp->next_page_token.len == 32;
    if (more)
      memcpy(token, resp->next_page_token.data, 32);
    clinlog__v1__list_streams_response__free_unpacked(resp, NULL);
    if (st)
      return st;
    if (!more)
      break;
    if (!a->all) {
      if (!a->json)
        printf("(more: --all lists every page)\n");
      break;
    }
    req.page_token = (ProtobufCBinaryData){32, token};
    req.consistency = NULL; /* waited once is enough */
  }
  if (!a->json)
    fprintf(stderr, "%llu stream(s)\n", (unsigned long long)total);
  return 0;
}

static int streams_by_type(const args *a, Clinlog__V1__Consistency *cons) {
  if (a->npos != 2) {
    fprintf(stderr, "clinlog streams by-type: which TYPE? (e.g. ObservationRecorded)\n");
    return 2;
  }
  uint64_t code = cl_event_type_code(a->pos[1]);
  if (!code && (cli_parse_u64("TYPE", a->pos[1], &code) || !cl_event_type_name((uint32_t)code))) {
    fprintf(stderr, "clinlog streams by-type: unknown event type \"%s\"\n", a->pos[1]);
    return 2;
  }
  Clinlog__V1__ListEventsByTypeRequest req = CLINLOG__V1__LIST_EVENTS_BY_TYPE_REQUEST__INIT;
  req.event_type = (uint32_t)code;
  req.from_seq = a->from;
  req.page_size = (uint32_t)(a->limit ? a->limit : 100);
  req.consistency = cons;
  Clinlog__V1__ListEventsByTypeResponse *resp;
  int st = call(a, "streams by-type", M_LIST_EVENTS_BY_TYPE, &req.base,
                &clinlog__v1__list_events_by_type_response__descriptor, (ProtobufCMessage **)&resp);
  if (st)
    return st;
  if (a->json) {
    st = cli_print_message(&resp->base, "streams by-type");
  } else {
    for (size_t i = 0; i < resp->n_seqs; i++)
      printf("%llu\n", (unsigned long long)resp->seqs[i]);
    if (resp->next_from_seq)
      fprintf(stderr, "(more from seq %llu: --from %llu)\n",
              (unsigned long long)resp->next_from_seq, (unsigned long long)resp->next_from_seq);
  }
  clinlog__v1__list_events_by_type_response__free_unpacked(resp, NULL);
  return st;
}

int cmd_streams(int argc, char **argv) {
  args a;
  int st = parse(argc, argv, STREAMS_USAGE, &a);
  if (st >= 0)
    return st;
  if (a.npos < 1) {
    fprintf(stderr, "clinlog streams: which subcommand? (get, list, by-type)\n");
    return 2;
  }
  Clinlog__V1__Consistency cons = CLINLOG__V1__CONSISTENCY__INIT;
  cons.min_sequence = a.min_seq;
  Clinlog__V1__Consistency *cp = a.min_seq ? &cons : NULL;
  if (!strcmp(a.pos[0], "get"))
    return streams_get(&a, cp);
  if (!strcmp(a.pos[0], "list"))
    return streams_list(&a, cp);
  if (!strcmp(a.pos[0], "by-type"))
    return streams_by_type(&a, cp);
  fprintf(stderr, "clinlog streams: unknown subcommand \"%s\"\n", a.pos[0]);
  return 2;
}

/* ---------------------------------------------------------- projections */

static void print_projection_row(const Clinlog__V1__ProjectionStatus *p) {
  cli_put_safe(stdout, p->name, 16);
  printf(" ");
  cli_put_safe(stdout, p->state, 12);
  printf(" %12llu %12llu %10llu %12llu %8llu  ", (unsigned long long)p->position,
         (unsigned long long)p->head, (unsigned long long)p->lag, (unsigned long long)p->folded,
         (unsigned long long)p->rebuilds);
  cli_put_safe(stdout, p->error, 0);
  printf("\n");
}

static void print_projection_header(void) {
  printf("%-16s %-12s %12s %12s %10s %12s %8s  %s\n", "NAME", "STATE", "POSITION", "HEAD", "LAG",
         "FOLDED", "REBUILDS", "ERROR");
}

int cmd_projections(int argc, char **argv) {
  args a;
  int st = parse(argc, argv, PROJ_USAGE, &a);
  if (st >= 0)
    return st;
  const char *sub = a.npos ? a.pos[0] : "list";
  if (!strcmp(sub, "list")) {
    Clinlog__V1__ListProjectionsRequest req = CLINLOG__V1__LIST_PROJECTIONS_REQUEST__INIT;
    Clinlog__V1__ListProjectionsResponse *resp;
    if ((st =
             call(&a, "projections", M_LIST_PROJECTIONS, &req.base,
                  &clinlog__v1__list_projections_response__descriptor, (ProtobufCMessage **)&resp)))
      return st;
    if (a.json) {
      st = cli_print_message(&resp->base, "projections");
    } else {
      print_projection_header();
      for (size_t i = 0; i < resp->n_projections; i++)
        print_projection_row(resp->projections[i]);
    }
    clinlog__v1__list_projections_response__free_unpacked(resp, NULL);
    return st;
  }
  if (!strcmp(sub, "rebuild")) {
    if (a.npos != 2) {
      fprintf(stderr, "clinlog projections rebuild: which NAME?\n");
      return 2;
    }
    Clinlog__V1__RebuildProjectionRequest req = CLINLOG__V1__REBUILD_PROJECTION_REQUEST__INIT;
    req.name = a.pos[1];
    Clinlog__V1__ProjectionStatus *ps;
    if ((st = call(&a, "projections rebuild", M_REBUILD_PROJECTION, &req.base,
                   &clinlog__v1__projection_status__descriptor, (ProtobufCMessage **)&ps)))
      return st;
    if (a.json) {
      st = cli_print_message(&ps->base, "projections rebuild");
    } else {
      printf("rebuilding %s from event 1\n\n", ps->name);
      print_projection_header();
      print_projection_row(ps);
    }
    clinlog__v1__projection_status__free_unpacked(ps, NULL);
    return st;
  }
  fprintf(stderr, "clinlog projections: unknown subcommand \"%s\"\n", sub);
  return 2;
}

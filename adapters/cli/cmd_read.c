/* clinlog read / get / head: events as JSON lines, from a data directory or
 * (--server) from a clinlogd; the output is the same either way. */
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/cli/cli.h"
#include "adapters/pbjson/pbjson.h"
#include "clinlog/v1/event.pb-c.h"
#include "store/event.h"

int cli_print_event(void *vctx, const cl_event_view *v, cl_err *err) {
  cli_event_printer *rc = vctx;
  if (rc->type && v->event_type != rc->type)
    return 0;
  json_t *o = json_object();
  char uuid[37], hash[65];
  cli_format_uuid(v->event_id, uuid);
  cl_hex(v->event_hash, 32, hash);
  json_object_set_new(o, "seq", json_integer((json_int_t)v->seq));
  json_object_set_new(o, "streamVersion", json_integer((json_int_t)v->stream_version));
  json_object_set_new(o, "eventId", json_string(uuid));
  const char *tn = cl_event_type_name(v->event_type);
  json_object_set_new(o, "type", tn ? json_string(tn) : json_integer(v->event_type));
  json_object_set_new(o, "committedAtNs", json_integer((json_int_t)v->committed_at_ns));
  json_object_set_new(o, "eventHash", json_string(hash));
  if (v->event) {
    Clinlog__V1__Event *ev = clinlog__v1__event__unpack(NULL, v->event_len, v->event);
    json_t *ej = NULL;
    if (!ev || cl_pbjson_to_json(&ev->base, &ej, err) != 0) {
      if (ev)
        clinlog__v1__event__free_unpacked(ev, NULL);
      json_decref(o);
      return cl_err_set(err, CL_ECORRUPT, "seq %llu: event does not decode",
                        (unsigned long long)v->seq);
    }
    int skip = rc->prefix && strncmp(ev->stream, rc->prefix, strlen(rc->prefix)) != 0;
    json_object_set_new(o, "stream", json_string(ev->stream));
    json_object_set_new(o, "event", ej);
    clinlog__v1__event__free_unpacked(ev, NULL);
    if (skip) {
      json_decref(o);
      return 0;
    }
  } else {
    if (rc->prefix) {
      json_decref(o);
      return 0;
    }
    json_object_set_new(o, "erased", json_boolean(v->erased));
  }
  cli_print_json(stdout, o);
  json_decref(o);
  rc->printed++;
  return 0;
}

/* Read over the API, printing as the local read does. */
static int read_remote(const cli_remote *r, const char *stream, uint64_t from, uint64_t limit,
                       int backwards, cli_event_printer *p, cl_err *err) {
  cl_client *c;
  int rc = cli_remote_open(r, &c, err);
  if (rc)
    return rc;
  Clinlog__V1__ReadRequest req = CLINLOG__V1__READ_REQUEST__INIT;
  Clinlog__V1__Filter f = CLINLOG__V1__FILTER__INIT;
  char *prefixes[1] = {(char *)p->prefix};
  uint32_t types[1] = {p->type};
  req.stream = (char *)(stream ? stream : "");
  req.from = from;
  req.max_count = limit;
  req.direction = backwards ? CLINLOG__V1__DIRECTION__BACKWARDS : CLINLOG__V1__DIRECTION__FORWARDS;
  if (p->prefix || p->type) {
    f.n_stream_prefixes = p->prefix ? 1 : 0;
    f.stream_prefixes = prefixes;
    f.n_event_types = p->type ? 1 : 0;
    f.event_types = types;
    req.filter = &f;
  }
  cl_client_stream *s;
  if ((rc = cl_client_read(c, &req, &s, err)) == 0) {
    ProtobufCMessage *m;
    while ((rc = cl_client_stream_next(s, &m, err)) == 1) {
      cl_event_view v;
      cli_view_of_recorded((Clinlog__V1__RecordedEvent *)m, &v);
      rc = cli_print_event(p, &v, err);
      protobuf_c_message_free_unpacked(m, NULL);
      if (rc)
        break;
    }
    cl_client_stream_free(s);
  }
  cl_client_close(c);
  return rc;
}

int cmd_read(int argc, char **argv) {
  static const struct option opts[] = {{"stream", required_argument, 0, 's'},
                                       {"from", required_argument, 0, 'f'},
                                       {"limit", required_argument, 0, 'n'},
                                       {"backwards", no_argument, 0, 'b'},
                                       {"type", required_argument, 0, 't'},
                                       {"prefix", required_argument, 0, 'p'},
                                       {"help", no_argument, 0, 'h'},
                                       CLI_REMOTE_OPTIONS,
                                       {0, 0, 0, 0}};
  const char *stream = NULL;
  uint64_t from = 0, limit = 0;
  int backwards = 0, c;
  cli_event_printer ctx = {0};
  cli_remote remote = {0};
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (cli_remote_option(&remote, c, optarg))
      continue;
    switch (c) {
    case 's':
      stream = optarg;
      break;
    case 'f':
      from = strtoull(optarg, NULL, 10);
      break;
    case 'n':
      limit = strtoull(optarg, NULL, 10);
      break;
    case 'b':
      backwards = 1;
      break;
    case 'p':
      ctx.prefix = optarg;
      break;
    case 't':
      if (!(ctx.type = cl_event_type_code(optarg))) {
        fprintf(stderr, "clinlog read: unknown event type %s\n", optarg);
        return 2;
      }
      break;
    default:
      fprintf(c == 'h' ? stdout : stderr,
              "usage: clinlog read DIR [--stream S [--backwards]] [--from N] [--limit N]\n"
              "                        [--type EventType] [--prefix STREAM_PREFIX]\n"
              "       clinlog read --server HOST:PORT [same options] [TLS options]\n"
              "Prints one JSON object per event: seq, streamVersion, eventId, type, stream\n"
              "and the event in proto3 JSON. --from is a sequence number for the whole log\n"
              "and a stream version with --stream.\n" CLI_REMOTE_USAGE);
      return c == 'h' ? 0 : 2;
    }
  }
  if (optind + (remote.server ? 0 : 1) != argc) {
    fprintf(stderr, "usage: clinlog read DIR|--server HOST:PORT [options]\n");
    return 2;
  }
  cl_err err;
  cl_err_clear(&err);
  if (remote.server)
    return read_remote(&remote, stream, from, limit, backwards, &ctx, &err) ? cli_fail("read", &err)
                                                                            : 0;
  cl_log *log;
  if (cli_open(argv[optind], 1, &log, &err))
    return cli_fail("read", &err);
  int rc =
      stream ? cl_log_read_stream(log, stream, from, backwards, limit, cli_print_event, &ctx, &err)
             : cl_log_read_all(log, from, limit, cli_print_event, &ctx, &err);
  cl_log_close(log);
  return rc ? cli_fail("read", &err) : 0;
}

int cmd_get(int argc, char **argv) {
  static const struct option opts[] = {
      {"help", no_argument, 0, 'h'}, CLI_REMOTE_OPTIONS, {0, 0, 0, 0}};
  cli_remote remote = {0};
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (cli_remote_option(&remote, c, optarg))
      continue;
    fprintf(c == 'h' ? stdout : stderr,
            "usage: clinlog get DIR EVENT_ID (UUID)\n"
            "       clinlog get --server HOST:PORT [TLS options] EVENT_ID\n" CLI_REMOTE_USAGE);
    return c == 'h' ? 0 : 2;
  }
  uint8_t id[16];
  if (optind + (remote.server ? 1 : 2) != argc || cli_parse_uuid(argv[argc - 1], id) != 0) {
    fprintf(stderr, "usage: clinlog get DIR|--server HOST:PORT EVENT_ID (UUID)\n");
    return 2;
  }
  cl_err err;
  cl_err_clear(&err);
  cli_event_printer ctx = {0};
  if (remote.server) {
    cl_client *cl;
    if (cli_remote_open(&remote, &cl, &err))
      return cli_fail("get", &err);
    Clinlog__V1__GetEventRequest req = CLINLOG__V1__GET_EVENT_REQUEST__INIT;
    req.event_id = (ProtobufCBinaryData){16, id};
    Clinlog__V1__RecordedEvent *e;
    int rc = cl_client_get_event(cl, &req, &e, NULL, &err);
    if (rc == 0) {
      cl_event_view v;
      cli_view_of_recorded(e, &v);
      rc = cli_print_event(&ctx, &v, &err);
      clinlog__v1__recorded_event__free_unpacked(e, NULL);
    }
    cl_client_close(cl);
    return rc ? cli_fail("get", &err) : 0;
  }
  cl_log *log;
  if (cli_open(argv[optind], 1, &log, &err))
    return cli_fail("get", &err);
  int rc = cl_log_get_event(log, id, cli_print_event, &ctx, &err);
  cl_log_close(log);
  return rc ? cli_fail("get", &err) : 0;
}

int cmd_head(int argc, char **argv) {
  if (argc != 2 || argv[1][0] == '-') {
    int help = argc == 2 && !strcmp(argv[1], "--help");
    fprintf(help ? stdout : stderr,
            "usage: clinlog head DIR\nPrints the origin, tree size and root hash as JSON.\n");
    return help ? 0 : 2;
  }
  cl_err err;
  cl_err_clear(&err);
  cl_log *log;
  if (cli_open(argv[1], 1, &log, &err))
    return cli_fail("head", &err);
  uint64_t size;
  uint8_t root[32];
  char b64[64];
  cl_log_head(log, &size, root);
  sodium_bin2base64(b64, sizeof b64, root, 32, sodium_base64_VARIANT_ORIGINAL);
  json_t *o = json_pack("{s:s, s:I, s:s}", "origin", cl_log_origin(log), "treeSize",
                        (json_int_t)size, "rootHash", b64);
  cli_print_json(stdout, o);
  json_decref(o);
  cl_log_close(log);
  return 0;
}

/* clinlog append: events in proto3 JSON (an object, an array, or one object
 * per line), converted generically through the Event descriptor, signed with
 * a key file and appended in batches, to a data directory or (--server)
 * through a clinlogd's Append call. */
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapters/cli/cli.h"
#include "adapters/pbjson/pbjson.h"
#include "clinlog/v1/event.pb-c.h"
#include "store/event.h"
#include "store/keys.h"

typedef struct expect {
  char *stream;
  int kind;
  uint64_t version;
} expect;

static int parse_expect(const char *arg, expect *e) {
  const char *eq = strrchr(arg, '=');
  if (!eq || eq == arg)
    return -1;
  e->stream = strndup(arg, (size_t)(eq - arg));
  const char *v = eq + 1;
  e->version = 0;
  if (!strcmp(v, "any"))
    e->kind = CLINLOG__V1__EXPECTED_VERSION__KIND__ANY;
  else if (!strcmp(v, "no-stream"))
    e->kind = CLINLOG__V1__EXPECTED_VERSION__KIND__NO_STREAM;
  else if (!strcmp(v, "exists"))
    e->kind = CLINLOG__V1__EXPECTED_VERSION__KIND__EXISTS;
  else {
    char *end;
    e->version = strtoull(v, &end, 10);
    if (*end || !*v)
      return -1;
    e->kind = CLINLOG__V1__EXPECTED_VERSION__KIND__EXACT;
  }
  return 0;
}

/* Replaces a dashed-UUID string member by its base64 form (proto3 JSON
 * carries bytes as base64); generates one for `eventId` when missing. */
static int fix_uuid(json_t *obj, const char *name, int generate) {
  json_t *v = json_object_get(obj, name);
  uint8_t id[16];
  if (!v) {
    if (!generate)
      return 0;
    cl_uuid_v4(id);
  } else if (json_is_string(v) && strlen(json_string_value(v)) == 36 &&
             cli_parse_uuid(json_string_value(v), id) == 0) {
    /* a UUID in its usual text form */
  } else {
    return 0;
  }
  char b64[32];
  sodium_bin2base64(b64, sizeof b64, id, 16, sodium_base64_VARIANT_ORIGINAL);
  return json_object_set_new(obj, name, json_string(b64));
}

static int fill_defaults(json_t *ev, const char *principal) {
  if (!json_is_object(ev))
    return -1;
  fix_uuid(ev, "eventId", 1);
  fix_uuid(ev, "correlationId", 0);
  fix_uuid(ev, "causationId", 0);
  if (!json_object_get(ev, "occurredAt") && !json_object_get(ev, "occurred_at")) {
    char ts[40];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_object_set_new(ev, "occurredAt", json_string(ts));
  }
  json_t *by = json_object_get(ev, "recordedBy");
  if (!by)
    by = json_object_get(ev, "recorded_by");
  if (!by) {
    by = json_object();
    json_object_set_new(ev, "recordedBy", by);
  }
  if (json_is_object(by) && !json_object_get(by, "principalId") &&
      !json_object_get(by, "principal_id"))
    json_object_set_new(by, "principalId", json_string(principal));
  return 0;
}

typedef struct batch {
  ProtobufCBinaryData *events;
  uint8_t (*hashes)[32];
  uint8_t (*sigs)[64];
  char **streams;
  size_t n, cap;
} batch;

static void batch_reset(batch *b) {
  for (size_t i = 0; i < b->n; i++) {
    free(b->events[i].data);
    free(b->streams[i]);
  }
  b->n = 0;
}

/* Where batches go: a local log or a server. */
typedef struct sink {
  cl_log *log;
  cl_client *client;
  uint64_t tree_size; /* after the last append (remote: 0 until one succeeded) */
} sink;

/* Appends ab; fills seq/version (b->n each) and *duplicate. */
static int sink_append(sink *k, const Clinlog__V1__AppendBatch *ab, uint64_t *seq,
                       uint64_t *version, int *duplicate, cl_err *err) {
  if (k->log) {
    cl_append_result r;
    int rc = cl_log_append(k->log, ab, &r, err);
    if (rc == 0) {
      memcpy(seq, r.seq, r.n * sizeof *seq);
      memcpy(version, r.version, r.n * sizeof *version);
      *duplicate = r.duplicate;
      k->tree_size = r.tree_size;
      cl_append_result_free(&r);
    } else if (rc == CL_ECONFLICT) {
      cl_err_set(err, CL_ECONFLICT, "stream %s is at version %llu", r.conflict_stream,
                 (unsigned long long)r.conflict_current);
      cl_append_result_free(&r);
    }
    return rc;
  }
  Clinlog__V1__AppendResponse *resp;
  cl_client_status st;
  int rc = cl_client_append(k->client, ab, &resp, &st, err);
  if (rc == CL_ECONFLICT && st.has_current_version)
    return cl_err_set(err, CL_ECONFLICT, "stream %s is at version %llu", st.stream,
                      (unsigned long long)st.current_version);
  if (rc)
    return rc;
  if (resp->n_positions != ab->n_events) {
    clinlog__v1__append_response__free_unpacked(resp, NULL);
    return cl_err_set(err, CL_EMALFORMED, "the server answered with %zu positions for %zu events",
                      resp->n_positions, ab->n_events);
  }
  for (size_t i = 0; i < resp->n_positions; i++) {
    seq[i] = resp->positions[i]->seq;
    version[i] = resp->positions[i]->stream_version;
  }
  *duplicate = resp->duplicate;
  k->tree_size = resp->tree_size;
  clinlog__v1__append_response__free_unpacked(resp, NULL);
  return 0;
}

static int batch_flush(sink *log, batch *b, const cl_signer *s, int per_event, expect *ex,
                       size_t nex, int *ex_used, int json, uint64_t *appended, uint64_t *dups,
                       cl_err *err) {
  if (!b->n)
    return 0;
  Clinlog__V1__AppendBatch ab = CLINLOG__V1__APPEND_BATCH__INIT;
  ab.n_events = b->n;
  ab.events = b->events;
  Clinlog__V1__Signature bsig = CLINLOG__V1__SIGNATURE__INIT;
  Clinlog__V1__Signature *sigv = NULL, **sigp = NULL;
  if (per_event) {
    sigv = calloc(b->n, sizeof *sigv);
    sigp = calloc(b->n, sizeof *sigp);
    if (!sigv || !sigp) {
      free(sigv);
      free(sigp);
      return cl_err_set(err, CL_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < b->n; i++) {
      clinlog__v1__signature__init(&sigv[i]);
      cl_sign_event(s, b->hashes[i], b->sigs[i]);
      sigv[i].key_id = (ProtobufCBinaryData){32, (uint8_t *)s->pk};
      sigv[i].signature = (ProtobufCBinaryData){64, b->sigs[i]};
      sigp[i] = &sigv[i];
    }
    ab.n_signatures = b->n;
    ab.signatures = sigp;
  } else {
    uint8_t sig[64];
    cl_sign_batch(s, (const uint8_t(*)[32])b->hashes, b->n, sig);
    memcpy(b->sigs[0], sig, 64);
    bsig.key_id = (ProtobufCBinaryData){32, (uint8_t *)s->pk};
    bsig.signature = (ProtobufCBinaryData){64, b->sigs[0]};
    ab.batch_signature = &bsig;
  }
  /* expectations for streams of this batch not yet used */
  Clinlog__V1__StreamExpectation *xs = calloc(nex ? nex : 1, sizeof *xs);
  Clinlog__V1__StreamExpectation **xp = calloc(nex ? nex : 1, sizeof *xp);
  Clinlog__V1__ExpectedVersion *xv = calloc(nex ? nex : 1, sizeof *xv);
  for (size_t j = 0; xs && xp && xv && j < nex; j++) {
    if (ex_used[j])
      continue;
    int present = 0;
    for (size_t i = 0; i < b->n && !present; i++)
      present = !strcmp(b->streams[i], ex[j].stream);
    if (!present)
      continue;
    ex_used[j] = 1;
    clinlog__v1__stream_expectation__init(&xs[ab.n_expectations]);
    clinlog__v1__expected_version__init(&xv[ab.n_expectations]);
    xv[ab.n_expectations].kind = ex[j].kind;
    xv[ab.n_expectations].version = ex[j].version;
    xs[ab.n_expectations].stream = ex[j].stream;
    xs[ab.n_expectations].expected = &xv[ab.n_expectations];
    xp[ab.n_expectations] = &xs[ab.n_expectations];
    ab.n_expectations++;
  }
  ab.expectations = xp;
  uint64_t *seq = malloc(b->n * sizeof *seq), *ver = malloc(b->n * sizeof *ver);
  int dup = 0, rc;
  if (!seq || !ver)
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
  else
    rc = sink_append(log, &ab, seq, ver, &dup, err);
  if (rc == 0) {
    for (size_t i = 0; i < b->n && json; i++) {
      Clinlog__V1__Event *ev =
          clinlog__v1__event__unpack(NULL, b->events[i].len, b->events[i].data);
      char uuid[37] = "";
      if (ev && ev->event_id.len == 16)
        cli_format_uuid(ev->event_id.data, uuid);
      json_t *o =
          json_pack("{s:s, s:s, s:I, s:I, s:b}", "eventId", uuid, "stream", b->streams[i], "seq",
                    (json_int_t)seq[i], "streamVersion", (json_int_t)ver[i], "duplicate", dup);
      cli_print_json(stdout, o);
      json_decref(o);
      if (ev)
        clinlog__v1__event__free_unpacked(ev, NULL);
    }
    if (dup)
      *dups += b->n;
    else
      *appended += b->n;
  }
  free(seq);
  free(ver);
  free(xs);
  free(xp);
  free(xv);
  free(sigv);
  free(sigp);
  batch_reset(b);
  return rc;
}

static int batch_add(batch *b, json_t *ev, cl_err *err) {
  ProtobufCMessage *m;
  int rc = cl_pbjson_from_json(&clinlog__v1__event__descriptor, ev, &m, err);
  if (rc)
    return rc;
  if (b->n == b->cap) {
    size_t nc = b->cap ? b->cap * 2 : 64;
    void *e = realloc(b->events, nc * sizeof *b->events);
    if (e)
      b->events = e;
    void *h = realloc(b->hashes, nc * sizeof *b->hashes);
    if (h)
      b->hashes = h;
    void *s = realloc(b->sigs, nc * sizeof *b->sigs);
    if (s)
      b->sigs = s;
    void *st = realloc(b->streams, nc * sizeof *b->streams);
    if (st)
      b->streams = st;
    if (!e || !h || !s || !st) {
      protobuf_c_message_free_unpacked(m, NULL);
      return cl_err_set(err, CL_ENOMEM, "out of memory");
    }
    b->cap = nc;
  }
  size_t len = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = malloc(len ? len : 1);
  if (!buf) {
    protobuf_c_message_free_unpacked(m, NULL);
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  }
  protobuf_c_message_pack(m, buf);
  b->events[b->n] = (ProtobufCBinaryData){len, buf};
  cl_event_hash(buf, len, b->hashes[b->n]);
  b->streams[b->n] = strdup(((Clinlog__V1__Event *)m)->stream);
  b->n++;
  protobuf_c_message_free_unpacked(m, NULL);
  return 0;
}

int cmd_append(int argc, char **argv) {
  static const struct option opts[] = {{"key", required_argument, 0, 'k'},
                                       {"expect", required_argument, 0, 'e'},
                                       {"batch-size", required_argument, 0, 'b'},
                                       {"per-event-signatures", no_argument, 0, 'p'},
                                       {"json", no_argument, 0, 'j'},
                                       {"principal", required_argument, 0, 'P'},
                                       {"help", no_argument, 0, 'h'},
                                       CLI_REMOTE_OPTIONS,
                                       {0, 0, 0, 0}};
  const char *keyfile = NULL, *principal_opt = NULL;
  cli_remote remote = {0};
  expect ex[64];
  size_t nex = 0, bsize = 1000;
  int per_event = 0, json = 0, c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (cli_remote_option(&remote, c, optarg))
      continue;
    switch (c) {
    case 'k':
      keyfile = optarg;
      break;
    case 'P':
      principal_opt = optarg;
      break;
    case 'e':
      if (nex == 64 || parse_expect(optarg, &ex[nex]) != 0) {
        fprintf(stderr, "clinlog append: --expect STREAM=any|no-stream|exists|VERSION\n");
        return 2;
      }
      nex++;
      break;
    case 'b':
      bsize = strtoul(optarg, NULL, 10);
      break;
    case 'p':
      per_event = 1;
      break;
    case 'j':
      json = 1;
      break;
    default:
      fprintf(c == 'h' ? stdout : stderr,
              "usage: clinlog append DIR --key FILE [--expect STREAM=any|no-stream|exists|N]...\n"
              "                          [--batch-size N] [--per-event-signatures] [--json]\n"
              "                          [--principal ID] [FILE|-]\n"
              "       clinlog append --server HOST:PORT --key FILE [same options] [TLS options]\n"
              "                          [FILE|-]\n"
              "Reads events in proto3 JSON (one object, an array, or one object per line).\n"
              "eventId (base64 or UUID text) and occurredAt default to new values;\n"
              "recordedBy.principalId defaults to the principal of the signing key.\n"
              "Each batch (default 1000 events) is atomic and signed once (batch signature)\n"
              "unless --per-event-signatures. --principal: the default recordedBy.principalId\n"
              "(default: looked up from the signing key's registration in the log).\n"
              "With --server, --key is the signing key; the TLS client key is "
              "--cert-key.\n" CLI_REMOTE_USAGE);
      return c == 'h' ? 0 : 2;
    }
  }
  int npos = remote.server ? 0 : 1;
  if (argc - optind < npos || argc - optind > npos + 1 || !keyfile || bsize == 0 ||
      bsize > CL_MAX_BATCH) {
    fprintf(stderr, "usage: clinlog append DIR|--server HOST:PORT --key FILE [options] [FILE|-]\n");
    return 2;
  }
  const char *dir = remote.server ? NULL : argv[optind],
             *in = optind + npos < argc ? argv[optind + npos] : "-";
  cl_err err;
  cl_err_clear(&err);
  cl_signer s = {0};
  if (cl_crypto_init(&err) || cl_signer_load(&s, keyfile, &err))
    return cli_fail("append: key", &err);
  sink log = {0};
  if (remote.server ? cli_remote_open(&remote, &log.client, &err)
                    : cli_open(dir, 0, &log.log, &err)) {
    cl_signer_free(&s);
    return cli_fail("append", &err);
  }
  char principal[128] = "";
  if (principal_opt) {
    snprintf(principal, sizeof principal, "%s", principal_opt);
  } else if (log.log) {
    if (cl_log_key_info(log.log, s.pk, principal, sizeof principal, NULL, 0, NULL) != 0)
      fprintf(stderr, "clinlog append: warning: the signing key is not registered in this log\n");
  } else if (cli_remote_principal(log.client, s.pk, principal, sizeof principal, &err) != 0) {
    if (err.code == CL_EUNKNOWNKEY) {
      fprintf(stderr, "clinlog append: warning: the signing key is not registered in this log\n");
    } else {
      cl_client_close(log.client);
      cl_signer_free(&s);
      return cli_fail("append: looking up the key's principal", &err);
    }
  }
  FILE *f = strcmp(in, "-") ? fopen(in, "r") : stdin;
  size_t len = 0;
  char *text = f ? cli_read_all(f, &len) : NULL;
  if (f && f != stdin)
    fclose(f);
  int status = 0;
  batch b = {0};
  uint64_t appended = 0, dups = 0, index = 0;
  int ex_used[64] = {0};
  cli_progress prog;
  cli_progress_start(&prog, "append");
  if (!text) {
    perror(in);
    status = 1;
    goto out;
  }
  size_t pos = 0;
  while (pos < len) {
    while (pos < len && strchr(" \t\r\n", text[pos]))
      pos++;
    if (pos >= len)
      break;
    json_error_t je;
    json_t *v = json_loadb(text + pos, len - pos, JSON_DISABLE_EOF_CHECK, &je);
    if (!v) {
      fprintf(stderr, "clinlog append: %s: JSON error at line %d column %d: %s\n", in, je.line,
              je.column, je.text);
      status = 1;
      goto out;
    }
    pos += je.position;
    size_t nitems = json_is_array(v) ? json_array_size(v) : 1;
    for (size_t i = 0; i < nitems; i++, index++) {
      json_t *ev = json_is_array(v) ? json_array_get(v, i) : v;
      int rc = fill_defaults(ev, principal);
      if (rc == 0)
        rc = batch_add(&b, ev, &err);
      else
        cl_err_set(&err, CL_EMALFORMED, "not a JSON object");
      if (rc) {
        char ctx[64];
        snprintf(ctx, sizeof ctx, "append: event #%llu", (unsigned long long)index);
        status = cli_fail(ctx, &err);
        json_decref(v);
        goto out;
      }
      if (b.n == bsize &&
          batch_flush(&log, &b, &s, per_event, ex, nex, ex_used, json, &appended, &dups, &err)) {
        status = cli_fail("append", &err);
        json_decref(v);
        goto out;
      }
      cli_progress_update(&prog, appended + dups, 0);
    }
    json_decref(v);
  }
  if (batch_flush(&log, &b, &s, per_event, ex, nex, ex_used, json, &appended, &dups, &err))
    status = cli_fail("append", &err);
out:
  cli_progress_end(&prog);
  uint64_t size = log.tree_size;
  if (log.log)
    cl_log_head(log.log, &size, NULL);
  if (json) {
    json_t *o = json_pack("{s:I, s:I, s:I, s:b}", "appended", (json_int_t)appended, "duplicates",
                          (json_int_t)dups, "treeSize", (json_int_t)size, "ok", status == 0);
    cli_print_json(stdout, o);
    json_decref(o);
  } else if (status && !appended && !dups) {
    /* nothing was committed: the error above says why */
  } else if (size) {
    printf("appended %llu events (%llu already present), tree size %llu\n",
           (unsigned long long)appended, (unsigned long long)dups, (unsigned long long)size);
  } else { /* remote, and no append succeeded: the server did not say */
    printf("appended %llu events (%llu already present)\n", (unsigned long long)appended,
           (unsigned long long)dups);
  }
  batch_reset(&b);
  free(b.events);
  free(b.hashes);
  free(b.sigs);
  free(b.streams);
  free(text);
  for (size_t j = 0; j < nex; j++)
    free(ex[j].stream);
  if (log.log)
    cl_log_close(log.log);
  cl_client_close(log.client);
  cl_signer_free(&s);
  return status;
}

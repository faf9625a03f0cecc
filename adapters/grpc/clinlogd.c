/* clinlogd: the clinlog server. One node on an embedded data directory
 * (created with `clinlog init`), serving the gRPC API of docs/api.md.
 * Configuration from flags and an optional JSON file (flags win); see
 * docs/operations.md. SIGTERM/SIGINT stop it gracefully; SIGKILL at any
 * moment loses no acknowledged event (appends are acknowledged only after
 * their fsync'd commit). */
#include <errno.h>
#include <execinfo.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapters/grpc/server.h"
#include "adapters/grpc/services.h"
#include "adapters/http/http.h"
#include "adapters/mllp/listener.h"
#include "adapters/service/service.h"
#include "query/audit/view.h"
#include "query/auth/principals.h"
#include "query/cds/kb.h"
#include "query/fhir/fhir.h"
#include "query/streams/streams.h"
#include "replication/node.h"
#include "store/alloc.h"
#include "store/log.h"

typedef struct opts {
  cl_server_config srv;
  cl_log_options log;
  cl_repl_options repl;
  const char *raft_listen;
  const char *raft_dir;
  const char *advertise;
  int join;
  int no_forward;
  int no_projections;      /* --run-projections none */
  const char *http_listen; /* the FHIR REST API; NULL: off */
  int auth;                /* 0 off, 1 on, 2 required */
  int idle_logoff_s;
  int audit;          /* 1: every call is recorded in the audit trail */
  const char *policy; /* --policy FILE; NULL: the built-in default */
  const char *cds_kb; /* --cds-kb FILE; NULL: the built-in seed */
  int bcma_strict;    /* --bcma-strict: refuse administrations failing the five rights */
  int device_skew_s;  /* --device-max-skew-s: how far ahead a device's clock may be */
  const char *config;

  cl_mllp_listen_config mllp; /* the MLLP listener; listen NULL: off */
} opts;

/* --auth: 0 off, 1 on, 2 required, -1 unknown. */
/* A fatal signal (an abort, a bad access) prints the failing thread's stack
 * to stderr before the process dies as it would have: there are no core
 * dumps (see main), and an abort with no message says nothing otherwise.
 * Frames only, no data. Async-signal-safe: backtrace() is called once at
 * install time (it loads libgcc then), backtrace_symbols_fd does not
 * allocate. Not installed under the sanitizers, which report these
 * themselves. */
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_UNDEFINED__)
static void on_fatal(int sig) {
  static const char head[] = "clinlogd: fatal signal, stack of the failing thread:\n";
  ssize_t w = write(STDERR_FILENO, head, sizeof head - 1);
  (void)w;
  void *frames[64];
  backtrace_symbols_fd(frames, backtrace(frames, 64), STDERR_FILENO);
  raise(sig); /* SA_RESETHAND: now the default action */
}
#endif

static void fatal_signals_report(void) {
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_UNDEFINED__)
  void *warm[1];
  (void)backtrace(warm, 1);
  struct sigaction sa = {.sa_handler = on_fatal, .sa_flags = SA_RESETHAND | SA_NODEFER};
  sigemptyset(&sa.sa_mask);
  int sigs[] = {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL};
  for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
    sigaction(sigs[i], &sa, NULL);
#endif
}

static int parse_auth(const char *s) {
  return !strcmp(s, "off") ? 0 : !strcmp(s, "on") ? 1 : !strcmp(s, "required") ? 2 : -1;
}

static void usage(FILE *f) {
  fprintf(
      f,
      "usage: clinlogd --data DIR [options]\n"
      "  --data DIR                 data directory (create it with `clinlog init DIR`)\n"
      "  --listen HOST:PORT         default 127.0.0.1:7525\n"
      "  --dev                      allow plaintext (loopback addresses only)\n"
      "  --tls-cert PEM --tls-key PEM   server certificate and key (TLS is on unless --dev)\n"
      "  --client-ca PEM            verify client certificates against this CA (default: the\n"
      "                             --raft-tls-ca cluster CA); the other nodes' API\n"
      "                             certificates are checked against it too\n"
      "  --require-client-cert      mutual TLS: refuse clients without a valid certificate\n"
      "  --max-message-bytes N      largest request message (default 16777216)\n"
      "  --max-event-bytes N        largest serialized event (default 1048576)\n"
      "  --keepalive-time-ms N      ping idle connections every N ms (default 60000)\n"
      "  --min-client-ping-ms N     fastest client keepalive pings tolerated (default 10000)\n"
      "  --workers N                worker threads (default 64)\n"
      "  --drain-ms N               at shutdown, answer NOT_SERVING/UNAVAILABLE this long\n"
      "                             before closing the listener (default 1000)\n"
      "  --checkpoint-interval N    sign a checkpoint every N events (default 10000)\n"
      "  --master-key FILE          master key (default DIR/keys/master.key)\n"
      "  --run-projections all|none fold the projections (streams, fhir, cds) on this node\n"
      "                             (default all); none: a node that only stores and\n"
      "                             replicates, whose Streams and Fhir reads answer UNAVAILABLE\n"
      "  --http-listen HOST:PORT    serve the FHIR R4 REST API at https://HOST:PORT/fhir/R4\n"
      "                             (the --tls-cert/--tls-key certificate; plaintext with --dev\n"
      "                             on loopback). Off unless given\n");
  fprintf(
      f,
      "  --mllp-listen HOST:PORT    receive HL7 v2 over MLLP (docs/adapters.md): each message\n"
      "                             appended signed by --mllp-key, ACK AA after the commit.\n"
      "                             TLS with --mllp-tls-cert/--mllp-tls-key; plaintext with\n"
      "                             --dev on loopback, or --mllp-plaintext\n"
      "  --mllp-tls-cert PEM --mllp-tls-key PEM   the MLLP port's certificate and key\n"
      "  --mllp-client-ca PEM       ask MLLP senders for client certificates of this CA; bound\n"
      "                             to a principal (clinlog auth bind-cert) they say who sends\n"
      "  --mllp-require-client-cert refuse MLLP senders without a client certificate\n"
      "  --mllp-key FILE            the adapter's signing key (0600), registered to a\n"
      "                             principal with role integration\n"
      "  --mllp-plaintext           allow plaintext MLLP on a non-loopback address\n"
      "  --mllp-max-frame N         largest message, bytes (default 1048576): AR and close\n"
      "  --mllp-max-connections N   MLLP connections at once (default 256)\n"
      "  --mllp-idle-s N            close an MLLP connection silent this long (default 300)\n"
      "  --auth off|on|required     on (default): Auth.Login sessions and bound client\n"
      "                             certificates are checked on every call; required: calls\n"
      "                             without them are refused (UNAUTHENTICATED), health and\n"
      "                             Auth.Login excepted (docs/security.md)\n"
      "  --idle-logoff-s N          end a session after N s without a call (default 900)\n"
      "  --policy FILE              the access policy for authenticated callers (default: the\n"
      "                             built-in query/auth/default.policy)\n"
      "  --cds-kb FILE              the decision-support knowledge base CDS Hooks answers from\n"
      "                             (default: the built-in seed; a bad line refuses the start)\n"
      "  --bcma-strict              refuse (FAILED_PRECONDITION) a barcode-scanned\n"
      "                             MedicationAdministered that fails one of the five rights,\n"
      "                             instead of recording it and alerting (needs the projections)\n"
      "  --device-max-skew-s N      refuse a device reading timed more than N s ahead of this\n"
      "                             server's clock (default 300)\n"
      "  --audit on|off             on (default): every call but health checks is recorded\n"
      "                             (AccessRecorded in $audit) before its answer leaves; a\n"
      "                             call whose record cannot be committed is refused\n");
  fprintf(
      f,
      "cluster (docs/replication.md; without these flags: a one-node cluster)\n"
      "  --node-id N                this node's id in the cluster (default 1)\n"
      "  --raft-listen HOST:PORT    Raft transport (default: the --listen host, port + 1; port 0\n"
      "                             when --listen's port is 0)\n"
      "  --raft-dir DIR             Raft log and snapshots (default DATA/raft)\n"
      "  --advertise HOST:PORT      API address the other nodes use (default --listen)\n"
      "  --join                     wait to be added to an existing cluster (`clinlog cluster "
      "add`)\n"
      "                             instead of starting a new one\n"
      "  --election-timeout-ms N    default 1000\n"
      "  --heartbeat-ms N           default 100\n"
      "  --snapshot-threshold N     Raft entries between snapshots (default 1024)\n"
      "  --snapshot-trailing N      Raft entries kept after a snapshot (default 4096)\n"
      "  --raft-tls-cert PEM --raft-tls-key PEM --raft-tls-ca PEM\n"
      "                             mutual TLS between nodes: this node's certificate (naming\n"
      "                             its Raft host, for serverAuth and clientAuth), its key and\n"
      "                             the cluster CA (default: --tls-cert, --tls-key and\n"
      "                             --client-ca). Required unless --dev on loopback; without\n"
      "                             them a node that does not --join runs alone, with no\n"
      "                             Raft listener. The same certificate is this node's client\n"
      "                             certificate when it calls the other nodes' APIs\n"
      "                             (forwarded writes, catch-up): bind it to a principal with\n"
      "                             role node (`clinlog auth bind-cert`) for --auth required\n"
      "  --no-forward               followers answer appends with UNAVAILABLE and the leader's\n"
      "                             address (clinlog-leader) instead of forwarding them\n"
      "  --config FILE.json         the same settings as a JSON object (flags win)\n");
}

static char *dup_str(json_t *v) { return json_is_string(v) ? strdup(json_string_value(v)) : NULL; }

/* Reads the JSON config file into o. Keys mirror the flags with '_'. */
static int load_config(const char *path, opts *o) {
  json_error_t je;
  json_t *j = json_load_file(path, 0, &je);
  if (!j) {
    fprintf(stderr, "clinlogd: %s:%d:%d: %s\n", path, je.line, je.column, je.text);
    return -1;
  }
  const char *key;
  json_t *v;
  int rc = 0;
  json_object_foreach(j, key, v) {
    if (!strcmp(key, "data"))
      o->log.dir = dup_str(v);
    else if (!strcmp(key, "listen"))
      o->srv.listen = dup_str(v);
    else if (!strcmp(key, "dev"))
      o->srv.dev = json_is_true(v);
    else if (!strcmp(key, "tls_cert"))
      o->srv.tls_cert = dup_str(v);
    else if (!strcmp(key, "tls_key"))
      o->srv.tls_key = dup_str(v);
    else if (!strcmp(key, "client_ca"))
      o->srv.client_ca = dup_str(v);
    else if (!strcmp(key, "require_client_cert"))
      o->srv.require_client_cert = json_is_true(v);
    /* the same bounds as the flags */
    else if (!strcmp(key, "max_message_bytes") && json_is_integer(v) &&
             json_integer_value(v) >= 1024 && json_integer_value(v) <= INT32_MAX)
      o->srv.max_message_bytes = (size_t)json_integer_value(v);
    else if (!strcmp(key, "max_event_bytes") && json_is_integer(v) && json_integer_value(v) >= 64 &&
             json_integer_value(v) <= INT32_MAX)
      o->log.max_event_size = (size_t)json_integer_value(v);
    else if (!strcmp(key, "keepalive_time_ms") && json_is_integer(v) &&
             json_integer_value(v) >= 1000 && json_integer_value(v) <= INT32_MAX)
      o->srv.keepalive_time_ms = (int)json_integer_value(v);
    else if (!strcmp(key, "min_client_ping_ms") && json_is_integer(v) &&
             json_integer_value(v) >= 1000 && json_integer_value(v) <= INT32_MAX)
      o->srv.min_client_ping_ms = (int)json_integer_value(v);
    else if (!strcmp(key, "workers") && json_is_integer(v) && json_integer_value(v) >= 1 &&
             json_integer_value(v) <= 4096)
      o->srv.workers = (int)json_integer_value(v);
    else if (!strcmp(key, "drain_ms") && json_is_integer(v) && json_integer_value(v) >= 0 &&
             json_integer_value(v) <= 600000)
      o->srv.drain_ms = (int)json_integer_value(v);
    else if (!strcmp(key, "checkpoint_interval") && json_is_integer(v) &&
             json_integer_value(v) >= 0)
      o->log.checkpoint_interval = (uint64_t)json_integer_value(v);
    else if (!strcmp(key, "master_key"))
      o->log.master_key_path = dup_str(v);
    else if (!strcmp(key, "node_id") && json_is_integer(v) && json_integer_value(v) >= 1)
      o->repl.id = (uint64_t)json_integer_value(v);
    else if (!strcmp(key, "raft_listen"))
      o->raft_listen = dup_str(v);
    else if (!strcmp(key, "raft_tls_cert"))
      o->repl.tls_cert = dup_str(v);
    else if (!strcmp(key, "raft_tls_key"))
      o->repl.tls_key = dup_str(v);
    else if (!strcmp(key, "raft_tls_ca"))
      o->repl.tls_ca = dup_str(v);
    else if (!strcmp(key, "raft_dir"))
      o->raft_dir = dup_str(v);
    else if (!strcmp(key, "advertise"))
      o->advertise = dup_str(v);
    else if (!strcmp(key, "join"))
      o->join = json_is_true(v);
    else if (!strcmp(key, "no_forward"))
      o->no_forward = json_is_true(v);
    else if (!strcmp(key, "http_listen"))
      o->http_listen = dup_str(v);
    else if (!strcmp(key, "mllp_listen"))
      o->mllp.listen = dup_str(v);
    else if (!strcmp(key, "mllp_key"))
      o->mllp.key_path = dup_str(v);
    else if (!strcmp(key, "mllp_tls_cert"))
      o->mllp.tls_cert = dup_str(v);
    else if (!strcmp(key, "mllp_tls_key"))
      o->mllp.tls_key = dup_str(v);
    else if (!strcmp(key, "mllp_client_ca"))
      o->mllp.client_ca = dup_str(v);
    else if (!strcmp(key, "mllp_require_client_cert"))
      o->mllp.require_client_cert = json_is_true(v);
    else if (!strcmp(key, "mllp_plaintext"))
      o->mllp.allow_plaintext = json_is_true(v);
    else if (!strcmp(key, "mllp_max_frame") && json_is_integer(v) &&
             json_integer_value(v) >= 1024 && json_integer_value(v) <= INT32_MAX)
      o->mllp.conf.max_frame = (size_t)json_integer_value(v);
    else if (!strcmp(key, "mllp_max_connections") && json_is_integer(v) &&
             json_integer_value(v) >= 1 && json_integer_value(v) <= 65536)
      o->mllp.max_conns = (int)json_integer_value(v);
    else if (!strcmp(key, "mllp_idle_s") && json_is_integer(v) && json_integer_value(v) >= 1 &&
             json_integer_value(v) <= 86400)
      o->mllp.idle_s = (int)json_integer_value(v);
    else if (!strcmp(key, "auth") && json_is_string(v) && parse_auth(json_string_value(v)) >= 0)
      o->auth = parse_auth(json_string_value(v));
    else if (!strcmp(key, "audit") && json_is_string(v) &&
             (!strcmp(json_string_value(v), "on") || !strcmp(json_string_value(v), "off")))
      o->audit = !strcmp(json_string_value(v), "on");
    else if (!strcmp(key, "policy") && json_is_string(v))
      o->policy = dup_str(v);
    else if (!strcmp(key, "cds_kb") && json_is_string(v))
      o->cds_kb = dup_str(v);
    else if (!strcmp(key, "bcma_strict") && json_is_boolean(v))
      o->bcma_strict = json_is_true(v);
    else if (!strcmp(key, "device_max_skew_s") && json_is_integer(v) &&
             json_integer_value(v) >= 1 && json_integer_value(v) <= 86400)
      o->device_skew_s = (int)json_integer_value(v);
    else if (!strcmp(key, "idle_logoff_s") && json_is_integer(v) && json_integer_value(v) >= 1 &&
             json_integer_value(v) <= 86400)
      o->idle_logoff_s = (int)json_integer_value(v);
    else if (!strcmp(key, "run_projections") && json_is_string(v) &&
             (!strcmp(json_string_value(v), "all") || !strcmp(json_string_value(v), "none")))
      o->no_projections = !strcmp(json_string_value(v), "none");
    else if (!strcmp(key, "election_timeout_ms") && json_is_integer(v) &&
             json_integer_value(v) >= 50 && json_integer_value(v) <= 600000)
      o->repl.election_timeout_ms = (unsigned)json_integer_value(v);
    else if (!strcmp(key, "snapshot_threshold") && json_is_integer(v) &&
             json_integer_value(v) >= 8 && json_integer_value(v) <= INT32_MAX)
      o->repl.snapshot_threshold = (unsigned)json_integer_value(v);
    else if (!strcmp(key, "snapshot_trailing") && json_is_integer(v) &&
             json_integer_value(v) >= 0 && json_integer_value(v) <= INT32_MAX)
      o->repl.snapshot_trailing = (unsigned)json_integer_value(v);
    else if (!strcmp(key, "heartbeat_ms") && json_is_integer(v) && json_integer_value(v) >= 10 &&
             json_integer_value(v) <= 60000)
      o->repl.heartbeat_ms = (unsigned)json_integer_value(v);
    else {
      fprintf(stderr, "clinlogd: %s: unknown or mistyped setting \"%s\"\n", path, key);
      rc = -1;
    }
  }
  json_decref(j);
  return rc;
}

/* The Raft transport's TLS material: the --raft-tls-* flags, else the API's
 * files. Complete: mutual TLS. None: plaintext with --dev on loopback; a node
 * that does not --join runs alone without a Raft listener; otherwise the
 * start is refused, naming what is missing. Returns 0 or -1 (reported). */
static int raft_tls_settings(opts *o) {
  cl_repl_options *r = &o->repl;
  if (!r->tls_cert)
    r->tls_cert = o->srv.tls_cert;
  if (!r->tls_key)
    r->tls_key = o->srv.tls_key;
  if (!r->tls_ca)
    r->tls_ca = o->srv.client_ca;
  if (r->tls_cert && r->tls_key && r->tls_ca)
    return 0;
  const char *missing = !r->tls_cert ? "--raft-tls-cert (or --tls-cert)"
                        : !r->tls_key ? "--raft-tls-key (or --tls-key)"
                                      : "--raft-tls-ca (or --client-ca)";
  if (o->srv.dev && cl_server_is_loopback(o->raft_listen)) {
    r->tls_cert = r->tls_key = r->tls_ca = NULL;
    return 0; /* plaintext on loopback, as the API's --dev */
  }
  if (o->srv.dev) {
    fprintf(stderr, "clinlogd: the Raft transport needs mutual TLS off loopback (%s): %s is "
                    "missing\n", o->raft_listen, missing);
    return -1;
  }
  if (o->join) {
    fprintf(stderr, "clinlogd: a node that joins a cluster needs mutual TLS on the Raft "
                    "transport: %s is missing\n", missing);
    return -1;
  }
  r->tls_cert = r->tls_key = r->tls_ca = NULL;
  r->standalone = 1;
  fprintf(stderr, "clinlogd: no Raft listener (%s is missing): a one-node cluster that no node "
                  "can join\n", missing);
  return 0;
}

static int parse_num(const char *flag, const char *s, long long min, long long *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || *end || end == s || v < min || v > INT32_MAX) {
    fprintf(stderr, "clinlogd: %s: expected a number from %lld to %d, got \"%s\"\n", flag, min,
            INT32_MAX, s);
    return -1;
  }
  *out = v;
  return 0;
}

int main(int argc, char **argv) {
  cl_malloc_tune_exec(argv); /* store/alloc.h: before any allocation that matters */
  opts o;
  memset(&o, 0, sizeof o); /* every option off / unset unless set below */
  cl_server_config_init(&o.srv);
  cl_log_options_init(&o.log);
  cl_repl_options_init(&o.repl);
  o.repl.id = 1;
  o.auth = 1;
  o.idle_logoff_s = 900;
  o.audit = 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--config") && i + 1 < argc)
      o.config = argv[i + 1];
    else if (!strncmp(argv[i], "--config=", 9))
      o.config = argv[i] + 9;
  }
  if (o.config && load_config(o.config, &o) != 0)
    return 2;
  static const struct option lo[] = {{"data", required_argument, 0, 'd'},
                                     {"listen", required_argument, 0, 'l'},
                                     {"dev", no_argument, 0, 'D'},
                                     {"tls-cert", required_argument, 0, 'c'},
                                     {"tls-key", required_argument, 0, 'k'},
                                     {"client-ca", required_argument, 0, 'a'},
                                     {"require-client-cert", no_argument, 0, 'r'},
                                     {"max-message-bytes", required_argument, 0, 'm'},
                                     {"max-event-bytes", required_argument, 0, 'e'},
                                     {"keepalive-time-ms", required_argument, 0, 'K'},
                                     {"min-client-ping-ms", required_argument, 0, 'P'},
                                     {"workers", required_argument, 0, 'w'},
                                     {"checkpoint-interval", required_argument, 0, 'i'},
                                     {"master-key", required_argument, 0, 'M'},
                                     {"config", required_argument, 0, 'C'},
                                     {"drain-ms", required_argument, 0, 'N'},
                                     {"help", no_argument, 0, 'h'},
                                     {"node-id", required_argument, 0, 'I'},
                                     {"raft-listen", required_argument, 0, 'R'},
                                     {"raft-dir", required_argument, 0, 'F'},
                                     {"advertise", required_argument, 0, 'A'},
                                     {"join", no_argument, 0, 'J'},
                                     {"no-forward", no_argument, 0, 'W'},
                                     {"election-timeout-ms", required_argument, 0, 'E'},
                                     {"heartbeat-ms", required_argument, 0, 'H'},
                                     {"snapshot-threshold", required_argument, 0, 'S'},
                                     {"snapshot-trailing", required_argument, 0, 'T'},
                                     {"run-projections", required_argument, 0, 'p'},
                                     {"http-listen", required_argument, 0, 'L'},
                                     {"auth", required_argument, 0, 'U'},
                                     {"idle-logoff-s", required_argument, 0, 'O'},
                                     {"policy", required_argument, 0, 'Y'},
                                     {"audit", required_argument, 0, 'X'},
                                     {"cds-kb", required_argument, 0, 1004},
                                     {"bcma-strict", no_argument, 0, 1005},
                                     {"mllp-listen", required_argument, 0, 1006},
                                     {"mllp-key", required_argument, 0, 1007},
                                     {"mllp-plaintext", no_argument, 0, 1008},
                                     {"mllp-max-frame", required_argument, 0, 1009},
                                     {"mllp-max-connections", required_argument, 0, 1010},
                                     {"mllp-idle-s", required_argument, 0, 1011},
                                     {"mllp-tls-cert", required_argument, 0, 1012},
                                     {"mllp-tls-key", required_argument, 0, 1013},
                                     {"mllp-client-ca", required_argument, 0, 1014},
                                     {"mllp-require-client-cert", no_argument, 0, 1015},
                                     {"device-max-skew-s", required_argument, 0, 1016},
                                     {"raft-tls-cert", required_argument, 0, 1001},
                                     {"raft-tls-key", required_argument, 0, 1002},
                                     {"raft-tls-ca", required_argument, 0, 1003},
                                     {0, 0, 0, 0}};
  int ch;
  long long n;
  while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    switch (ch) {
    case 'd':
      o.log.dir = optarg;
      break;
    case 'l':
      o.srv.listen = optarg;
      break;
    case 'D':
      o.srv.dev = 1;
      break;
    case 'c':
      o.srv.tls_cert = optarg;
      break;
    case 'k':
      o.srv.tls_key = optarg;
      break;
    case 'a':
      o.srv.client_ca = optarg;
      break;
    case 'r':
      o.srv.require_client_cert = 1;
      break;
    case 'C':
      break;
    case 'M':
      o.log.master_key_path = optarg;
      break;
    case 'm':
      if (parse_num("--max-message-bytes", optarg, 1024, &n))
        return 2;
      o.srv.max_message_bytes = (size_t)n;
      break;
    case 'e':
      if (parse_num("--max-event-bytes", optarg, 64, &n))
        return 2;
      o.log.max_event_size = (size_t)n;
      break;
    case 'K':
      if (parse_num("--keepalive-time-ms", optarg, 1000, &n))
        return 2;
      o.srv.keepalive_time_ms = (int)n;
      break;
    case 'P':
      if (parse_num("--min-client-ping-ms", optarg, 1000, &n))
        return 2;
      o.srv.min_client_ping_ms = (int)n;
      break;
    case 'w':
      if (parse_num("--workers", optarg, 1, &n))
        return 2;
      o.srv.workers = (int)n;
      break;
    case 'N':
      if (parse_num("--drain-ms", optarg, 0, &n))
        return 2;
      o.srv.drain_ms = (int)n;
      break;
    case 'i':
      if (parse_num("--checkpoint-interval", optarg, 0, &n))
        return 2;
      o.log.checkpoint_interval = (uint64_t)n;
      break;
    case 'I':
      if (parse_num("--node-id", optarg, 1, &n))
        return 2;
      o.repl.id = (uint64_t)n;
      break;
    case 'R':
      o.raft_listen = optarg;
      break;
    case 1001:
      o.repl.tls_cert = optarg;
      break;
    case 1002:
      o.repl.tls_key = optarg;
      break;
    case 1003:
      o.repl.tls_ca = optarg;
      break;
    case 'F':
      o.raft_dir = optarg;
      break;
    case 'A':
      o.advertise = optarg;
      break;
    case 'J':
      o.join = 1;
      break;
    case 'W':
      o.no_forward = 1;
      break;
    case 'L':
      o.http_listen = optarg;
      break;
    case 'X':
      if (strcmp(optarg, "on") != 0 && strcmp(optarg, "off") != 0) {
        fprintf(stderr, "clinlogd: --audit: \"%s\" is not on or off\n", optarg);
        return 2;
      }
      o.audit = !strcmp(optarg, "on");
      break;
    case 'U':
      if ((o.auth = parse_auth(optarg)) < 0) {
        fprintf(stderr, "clinlogd: --auth: \"%s\" is not off, on or required\n", optarg);
        return 2;
      }
      break;
    case 'O':
      if (parse_num("--idle-logoff-s", optarg, 1, &n))
        return 2;
      o.idle_logoff_s = (int)n;
      break;
    case 'Y':
      o.policy = optarg;
      break;
    case 1004:
      o.cds_kb = optarg;
      break;
    case 1005:
      o.bcma_strict = 1;
      break;
    case 1006:
      o.mllp.listen = optarg;
      break;
    case 1007:
      o.mllp.key_path = optarg;
      break;
    case 1008:
      o.mllp.allow_plaintext = 1;
      break;
    case 1009:
      if (parse_num("--mllp-max-frame", optarg, 1024, &n))
        return 2;
      o.mllp.conf.max_frame = (size_t)n;
      break;
    case 1010:
      if (parse_num("--mllp-max-connections", optarg, 1, &n))
        return 2;
      o.mllp.max_conns = (int)n;
      break;
    case 1011:
      if (parse_num("--mllp-idle-s", optarg, 1, &n))
        return 2;
      o.mllp.idle_s = (int)n;
      break;
    case 1012:
      o.mllp.tls_cert = optarg;
      break;
    case 1013:
      o.mllp.tls_key = optarg;
      break;
    case 1014:
      o.mllp.client_ca = optarg;
      break;
    case 1015:
      o.mllp.require_client_cert = 1;
      break;
    case 1016:
      if (parse_num("--device-max-skew-s", optarg, 1, &n) || n > 86400) {
        fprintf(stderr, "clinlogd: --device-max-skew-s: 1 to 86400 seconds\n");
        return 2;
      }
      o.device_skew_s = (int)n;
      break;
    case 'p':
      if (strcmp(optarg, "all") && strcmp(optarg, "none")) {
        fprintf(stderr, "clinlogd: --run-projections: \"%s\" is not all or none\n", optarg);
        return 2;
      }
      o.no_projections = !strcmp(optarg, "none");
      break;
    case 'E':
      if (parse_num("--election-timeout-ms", optarg, 50, &n))
        return 2;
      o.repl.election_timeout_ms = (unsigned)n;
      break;
    case 'H':
      if (parse_num("--heartbeat-ms", optarg, 10, &n))
        return 2;
      o.repl.heartbeat_ms = (unsigned)n;
      break;
    case 'S':
      if (parse_num("--snapshot-threshold", optarg, 8, &n))
        return 2;
      o.repl.snapshot_threshold = (unsigned)n;
      break;
    case 'T':
      if (parse_num("--snapshot-trailing", optarg, 0, &n))
        return 2;
      o.repl.snapshot_trailing = (unsigned)n;
      break;
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return 2;
    }
  }
  if (!o.log.dir || optind != argc) {
    usage(stderr);
    return 2;
  }
  if (o.mllp.listen && !o.mllp.key_path) {
    fprintf(stderr, "clinlogd: --mllp-listen needs --mllp-key (the adapter's signing key)\n");
    return 2;
  }
  if (o.bcma_strict && o.no_projections) {
    fprintf(stderr, "clinlogd: --bcma-strict checks against the cds projection: it cannot run "
                    "with --run-projections none\n");
    return 2;
  }
  umask(077); /* RocksDB files: owner only */
  /* decrypted events pass through this process's memory: no core dumps
   * (keys are in sodium_malloc pages, which are excluded anyway) */
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  fatal_signals_report();
  /* signals are taken by sigwait below, in this thread only */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);

  cl_err err;
  cl_err_clear(&err);
  /* a policy that does not parse refuses the start, naming its line */
  cl_policy *policy = NULL;
  if (o.auth && (o.policy ? cl_policy_load(o.policy, &policy, &err)
                          : cl_policy_default(&policy, &err)) != 0) {
    fprintf(stderr, "clinlogd: policy: %s (%s)\n", err.msg, cl_errname(err.code));
    return 1;
  }
  /* so does a decision-support knowledge base (CDS Hooks answers from it) */
  cl_kb *kb = NULL;
  if ((o.cds_kb ? cl_kb_load(o.cds_kb, &kb, &err) : cl_kb_seed(&kb, &err)) != 0) {
    fprintf(stderr, "clinlogd: cds kb: %s (%s)\n", err.msg, cl_errname(err.code));
    cl_policy_free(policy);
    cl_kb_free(kb);
    return 1;
  }
  cl_log *log;
  /* the Raft log is fsync'd before an entry commits and replays what a crash
   * takes from the store (synced before snapshots): docs/replication.md */
  o.log.sync = 0;
  o.log.replayed = 1;
  if (cl_log_open(&o.log, &log, &err) != 0) {
    fprintf(stderr, "clinlogd: %s (%s)\n", err.msg, cl_errname(err.code));
    cl_policy_free(policy);
    cl_kb_free(kb);
    return 1;
  }
  char host[256], raft_default[300], raft_dir[4096];
  snprintf(host, sizeof host, "%s", o.srv.listen);
  char *colon = strrchr(host, ':');
  if (colon)
    *colon = '\0';
  if (!o.raft_listen) {
    /* the API's port + 1; an ephemeral API port (0, tests and benches)
     * gets an ephemeral Raft port too, so such nodes never collide */
    int api_port = colon ? atoi(colon + 1) : 7525;
    snprintf(raft_default, sizeof raft_default, "%s:%d", host, api_port ? api_port + 1 : 0);
    o.raft_listen = raft_default;
  }
  if (!o.raft_dir) {
    snprintf(raft_dir, sizeof raft_dir, "%s/raft", o.log.dir);
    o.raft_dir = raft_dir;
  }
  if (raft_tls_settings(&o) != 0) {
    cl_log_close(log);
    cl_policy_free(policy);
    cl_kb_free(kb);
    return 1;
  }
  o.repl.log = log;
  o.repl.dir = o.raft_dir;
  o.repl.raft_address = o.raft_listen;
  o.repl.api_address = o.advertise ? o.advertise : o.srv.listen;
  o.repl.bootstrap = !o.join;
  /* node-to-node API calls (forwarding, catch-up): TLS when the API has it,
   * this node's certificate (the Raft one) as the client certificate, the
   * other nodes' API certificates checked against --client-ca, else the
   * cluster CA; the API asks callers for certificates of the cluster CA
   * when no --client-ca is given, so the other nodes can authenticate */
  static cl_grpc_peer_config peer;
  peer.plaintext = !o.srv.tls_cert;
  peer.cert = o.repl.tls_cert ? o.repl.tls_cert : o.srv.tls_cert;
  peer.key = o.repl.tls_cert ? o.repl.tls_key : o.srv.tls_key;
  peer.ca = o.srv.client_ca ? o.srv.client_ca : o.repl.tls_ca;
  if (!o.srv.client_ca && o.srv.tls_cert && o.repl.tls_ca)
    o.srv.client_ca = o.repl.tls_ca;
  o.repl.fetch = cl_grpc_catchup;
  o.repl.fetch_ctx = &peer;
  cl_grpc_set_peer_config(&peer);
  cl_repl *repl;
  if (cl_repl_start(&o.repl, &repl, &err) != 0) {
    fprintf(stderr, "clinlogd: %s (%s)\n", err.msg, cl_errname(err.code));
    cl_log_close(log);
    cl_policy_free(policy);
    cl_kb_free(kb);
    return 1;
  }
  /* the request layer every front door goes through; its hooks are the
   * security work's (none yet: every call is allowed) */
  cl_svc_options so = {.log = log,
                       .repl = repl,
                       .no_forward = o.no_forward,
                       .forward = cl_grpc_forward,
                       .forward_ctx = &peer};
  cl_svc *svc = NULL;
  char export_dir[4200];
  snprintf(export_dir, sizeof export_dir, "%s/exports", o.log.dir);
  if (o.auth == 1 && !cl_log_signer(log)) {
    fprintf(stderr, "clinlogd: no log key (keys/log.key): sessions cannot be signed; --auth off\n");
    o.auth = 0;
  }
  if (o.audit && !cl_log_signer(log)) {
    fprintf(stderr, "clinlogd: no log key (keys/log.key): audit records cannot be signed; "
                    "--audit off\n");
    o.audit = 0;
  }
  cl_svc_audit_options auo = {.node_id = o.repl.id, .server_address = o.repl.api_address};
  cl_authn_options ao;
  cl_authn_options_init(&ao);
  ao.node_id = o.repl.id;
  ao.idle_s = o.idle_logoff_s;
  if (cl_svc_new(&so, &svc, &err) != 0 ||
      (o.auth && (cl_svc_add_projection(svc, &cl_auth_projection, NULL, &err) != 0 ||
                  cl_svc_enable_auth(svc, &ao, o.auth == 2, &err) != 0)) ||
      (o.audit && cl_svc_enable_audit(svc, &auo, &err) != 0) ||
      (!o.no_projections && (cl_svc_add_projection(svc, &cl_audit_view_projection, NULL, &err) != 0 ||
                             cl_svc_add_projection(svc, &cl_streams_projection, NULL, &err) != 0 ||
                             cl_svc_add_projection(svc, &cl_fhir_projection, NULL, &err) != 0 ||
                             cl_svc_open_exports(svc, export_dir, NULL, &err) != 0))) {
    fprintf(stderr, "clinlogd: %s (%s)\n", err.msg, cl_errname(err.code));
    cl_policy_free(policy);
    cl_kb_free(kb);
    cl_svc_free(svc);
    cl_repl_stop(repl);
    cl_log_close(log);
    return 1;
  }
  /* authorization of authenticated callers (none when --auth off) */
  if (o.auth)
    cl_svc_set_policy(svc, policy);
  else
    cl_policy_free(policy);
  cl_svc_set_kb(svc, kb); /* the service owns it from here */
  cl_svc_set_bcma_strict(svc, o.bcma_strict);
  cl_svc_set_device_skew_ms(svc, (int64_t)o.device_skew_s * 1000);
  /* the medication checker over the log; its findings appended while this
   * node leads, signed by the log key (without one, folded only) */
  if (!o.no_projections && cl_svc_enable_cds(svc, NULL, cl_log_signer(log) != NULL, &err) != 0) {
    fprintf(stderr, "clinlogd: cds: %s (%s)\n", err.msg, cl_errname(err.code));
    cl_svc_free(svc);
    cl_repl_stop(repl);
    cl_log_close(log);
    return 1;
  }
  static const cl_grpc_service *const services[] = {
      &cl_grpc_log_service,     &cl_grpc_health_service,      &cl_grpc_cluster_service,
      &cl_grpc_streams_service, &cl_grpc_projections_service, &cl_grpc_fhir_service,
      &cl_grpc_auth_service,    &cl_grpc_audit_service,       &cl_grpc_cds_service,
      &cl_grpc_devices_service};
  cl_grpc_service table[sizeof services / sizeof services[0]];
  for (size_t i = 0; i < sizeof services / sizeof services[0]; i++)
    table[i] = *services[i];
  cl_server *srv;
  int port = 0;
  if (cl_server_start(&o.srv, svc, table, sizeof table / sizeof table[0], &srv, &port, &err) != 0) {
    fprintf(stderr, "clinlogd: %s (%s)\n", err.msg, cl_errname(err.code));
    cl_svc_free(svc);
    cl_repl_stop(repl);
    cl_log_close(log);
    return 1;
  }
  cl_http *http = NULL;
  int http_port = 0;
  if (o.http_listen) {
    cl_http_config hc;
    cl_http_config_init(&hc);
    hc.listen = o.http_listen;
    hc.dev = o.srv.dev;
    hc.tls_cert = o.srv.tls_cert;
    hc.tls_key = o.srv.tls_key;
    if (cl_http_start(&hc, svc, &http, &http_port, &err) != 0) {
      fprintf(stderr, "clinlogd: %s (%s)\n", err.msg, cl_errname(err.code));
      cl_server_stop(srv);
      cl_svc_free(svc);
      cl_repl_stop(repl);
      cl_log_close(log);
      return 1;
    }
  }
  cl_mllp_listener *mllp = NULL;
  int mllp_port = 0;
  if (o.mllp.listen) {
    o.mllp.conf.svc = svc;
    o.mllp.dev = o.srv.dev;
    if (cl_mllp_start(&o.mllp, &mllp, &mllp_port, &err) != 0) {
      fprintf(stderr, "clinlogd: %s (%s)\n", err.msg, cl_errname(err.code));
      cl_http_stop(http);
      cl_server_stop(srv);
      cl_svc_free(svc);
      cl_repl_stop(repl);
      cl_log_close(log);
      return 1;
    }
    fprintf(stderr, "clinlogd: MLLP (HL7 v2) on %s, port %d (%s)\n", o.mllp.listen, mllp_port,
            !o.mllp.tls_cert             ? "plaintext"
            : o.mllp.require_client_cert ? "TLS, client certificates required"
            : o.mllp.client_ca           ? "TLS, client certificates asked for"
                                         : "TLS");
  }
  uint64_t size;
  cl_log_head(log, &size, NULL);
  char tc[48] = "";
  if (cl_malloc_tcache_count() > 0) /* store/alloc.h; none: glibc's default */
    snprintf(tc, sizeof tc, ", malloc tcache_count %d", cl_malloc_tcache_count());
  fprintf(stderr, "clinlogd: %s, %llu events, origin %s%s\n", o.log.dir, (unsigned long long)size,
          cl_log_origin(log), tc);
  fprintf(stderr, "clinlogd: listening on %s:%d (%s)\n", host, port,
          o.srv.tls_cert ? (o.srv.require_client_cert ? "mutual TLS" : "TLS") : "plaintext, dev");
  fprintf(stderr, "clinlogd: node %llu, raft on %s (%s, %s), raft dir %s\n",
          (unsigned long long)o.repl.id, o.raft_listen,
          o.repl.standalone ? "not listening"
          : o.repl.tls_cert ? "mutual TLS"
                            : "plaintext, dev",
          o.join ? "joining: waiting to be added" : "bootstraps a new cluster if it has none",
          o.raft_dir);
  if (http) {
    char hh[256];
    snprintf(hh, sizeof hh, "%s", o.http_listen);
    char *hc = strrchr(hh, ':');
    if (hc)
      *hc = '\0';
    fprintf(stderr, "clinlogd: FHIR R4 API on %s://%s:%d/fhir/R4\n",
            o.srv.tls_cert ? "https" : "http", hh, http_port);
  }
  int sig = 0;
  for (;;) {
    sigwait(&set, &sig);
    if (sig != SIGHUP)
      break;
    fprintf(stderr, "clinlogd: SIGHUP: nothing to reload (restart to change settings)\n");
  }
  fprintf(stderr, "clinlogd: %s: stopping\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  cl_mllp_stop(mllp); /* its messages in flight commit through Raft: before it stops */
  cl_http_stop(http);
  cl_server_stop(srv);
  cl_svc_stop_cds(svc); /* its appends go through Raft: before Raft stops */
  cl_repl_stop(repl);
  cl_svc_free(svc); /* the projections stop after the last reader */
  cl_grpc_forward_close();
  cl_log_close(log);
  fprintf(stderr, "clinlogd: stopped\n");
  return 0;
}

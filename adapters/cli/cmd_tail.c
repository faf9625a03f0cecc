/* clinlog tail: follows a clinlogd's log through Subscribe, printing events
 * as JSON lines (as `read` prints them) as they commit. When the stream
 * breaks with a retryable error (server restarting, connection lost) it
 * resubscribes from the last position seen + 1, with backoff, until SIGINT
 * or SIGTERM. Signals are taken by a dedicated thread (sigwait), which
 * cancels the running call; nothing happens in a signal handler. */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapters/cli/cli.h"
#include "store/event.h"

#define MAX_FILTERS 16

/* Shared between the main thread and the signal thread. */
static struct {
  pthread_mutex_t mu;        /* guards `current` */
  cl_client_stream *current; /* the running call, NULL between calls */
  atomic_int stop;           /* a signal came */
} T = {PTHREAD_MUTEX_INITIALIZER, NULL, 0};

static void *signal_thread(void *arg) {
  sigset_t *set = arg;
  int sig;
  if (sigwait(set, &sig) == 0) {
    atomic_store(&T.stop, 1);
    pthread_mutex_lock(&T.mu);
    if (T.current)
      cl_client_stream_cancel(T.current);
    pthread_mutex_unlock(&T.mu);
  }
  return NULL;
}

/* Sleeps up to ms, waking early when stopped. */
static void nap(int ms) {
  for (int t = 0; t < ms && !atomic_load(&T.stop); t += 50) {
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
  }
}

static void note_json(int json, const char *kind, uint64_t seq, uint64_t size, const char *msg) {
  if (!json)
    return;
  json_t *o =
      json_pack("{s:{s:I, s:I}}", kind, "seq", (json_int_t)seq, "treeSize", (json_int_t)size);
  if (msg)
    json_object_set_new(json_object_get(o, kind), "error", json_string(msg));
  cli_print_json(stdout, o);
  json_decref(o);
  fflush(stdout);
}

int cmd_tail(int argc, char **argv) {
  static const struct option opts[] = {{"from", required_argument, 0, 'f'},
                                       {"prefix", required_argument, 0, 'p'},
                                       {"type", required_argument, 0, 't'},
                                       {"json", no_argument, 0, 'j'},
                                       {"help", no_argument, 0, 'h'},
                                       {"key", required_argument, 0, CLI_OPT_CERT_KEY},
                                       CLI_REMOTE_OPTIONS,
                                       {0, 0, 0, 0}};
  cli_remote remote = {0};
  char *prefixes[MAX_FILTERS];
  uint32_t types[MAX_FILTERS];
  size_t np = 0, nt = 0;
  uint64_t from = 0;
  int have_from = 0, json = 0, c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (cli_remote_option(&remote, c, optarg))
      continue;
    switch (c) {
    case 'f':
      from = strtoull(optarg, NULL, 10);
      have_from = 1;
      break;
    case 'p':
      if (np == MAX_FILTERS) {
        fprintf(stderr, "clinlog tail: at most %d --prefix\n", MAX_FILTERS);
        return 2;
      }
      prefixes[np++] = optarg;
      break;
    case 't':
      if (nt == MAX_FILTERS || !(types[nt++] = cl_event_type_code(optarg))) {
        fprintf(stderr, "clinlog tail: unknown event type %s (or more than %d)\n", optarg,
                MAX_FILTERS);
        return 2;
      }
      break;
    case 'j':
      json = 1;
      break;
    default:
      fprintf(c == 'h' ? stdout : stderr,
              "usage: clinlog tail --server HOST:PORT [--from SEQ] [--prefix "
              "P]... [--type T]...\n"
              "                    [--json] [TLS options]\n"
              "Follows the log: prints each event as one JSON line (as `read` "
              "does) once it\n"
              "commits, until Ctrl-C. Without --from only events committed "
              "from now on;\n"
              "--from SEQ first catches up from SEQ. --prefix/--type filter on "
              "the server\n"
              "(repeatable: any of them matches). When the connection breaks "
              "it resubscribes\n"
              "from the last position seen. --json also prints "
              "{\"caughtUp\":...} when\n"
              "catch-up ends and {\"reconnect\":...} when it resubscribes. "
              "--key is the TLS\n"
              "client key here (same as --cert-key).\n" CLI_REMOTE_USAGE);
      return c == 'h' ? 0 : 2;
    }
  }
  if (optind != argc || !remote.server) {
    fprintf(stderr, "usage: clinlog tail --server HOST:PORT [options]\n");
    return 2;
  }
  /* block the signals before any thread starts, so only sigwait sees them */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  pthread_t sig_th;
  pthread_create(&sig_th, NULL, signal_thread, &set);

  cl_err err;
  cl_err_clear(&err);
  cl_client *cl;
  int status = 0;
  if (cli_remote_open(&remote, &cl, &err)) {
    status = cli_fail("tail", &err);
    goto out;
  }
  Clinlog__V1__Filter f = CLINLOG__V1__FILTER__INIT;
  f.n_stream_prefixes = np;
  f.stream_prefixes = prefixes;
  f.n_event_types = nt;
  f.event_types = types;
  cli_event_printer pr = {0};
  uint64_t last = 0;     /* every event up to here was printed or filtered out */
  int known = have_from; /* `last` is meaningful */
  if (have_from)
    last = from ? from - 1 : 0;
  int backoff = 250;
  while (!atomic_load(&T.stop)) {
    Clinlog__V1__SubscribeRequest req = CLINLOG__V1__SUBSCRIBE_REQUEST__INIT;
    req.filter = (np || nt) ? &f : NULL;
    if (known)
      req.from_seq = last + 1;
    else
      req.from_end = 1;
    cl_client_stream *s;
    if (cl_client_subscribe(cl, &req, &s, &err)) {
      status = cli_fail("tail", &err);
      break;
    }
    pthread_mutex_lock(&T.mu);
    T.current = s;
    pthread_mutex_unlock(&T.mu);
    if (atomic_load(&T.stop)) /* a signal between the check and the publication */
      cl_client_stream_cancel(s);
    ProtobufCMessage *m;
    int rc;
    while ((rc = cl_client_stream_next(s, &m, &err)) == 1) {
      Clinlog__V1__SubscribeResponse *r = (Clinlog__V1__SubscribeResponse *)m;
      backoff = 250;
      if (r->kind_case == CLINLOG__V1__SUBSCRIBE_RESPONSE__KIND_EVENT && r->event) {
        cl_event_view v;
        cli_view_of_recorded(r->event, &v);
        rc = cli_print_event(&pr, &v, &err);
        fflush(stdout);
        last = r->event->seq;
        known = 1;
      } else if (r->kind_case == CLINLOG__V1__SUBSCRIBE_RESPONSE__KIND_CAUGHT_UP && r->caught_up) {
        last = r->caught_up->seq;
        known = 1;
        note_json(json, "caughtUp", r->caught_up->seq, r->caught_up->tree_size, NULL);
      } else if (r->kind_case == CLINLOG__V1__SUBSCRIBE_RESPONSE__KIND_POSITION && r->position) {
        last = r->position->seq;
        known = 1;
      }
      protobuf_c_message_free_unpacked(m, NULL);
      if (rc < 0)
        break;
    }
    pthread_mutex_lock(&T.mu);
    T.current = NULL;
    pthread_mutex_unlock(&T.mu);
    cl_client_stream_free(s);
    if (atomic_load(&T.stop))
      break;
    /* retry on transport errors; a clean end means the server went away too */
    if (rc != 0 && rc != CL_EAGAIN) {
      status = cli_fail("tail", &err);
      break;
    }
    fprintf(stderr, "clinlog tail: %s; resubscribing from seq %llu in %d ms\n",
            rc ? err.msg : "stream ended", (unsigned long long)(known ? last + 1 : 0), backoff);
    note_json(json, "reconnect", known ? last + 1 : 0, 0, rc ? err.msg : "stream ended");
    nap(backoff);
    backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
  }
  cl_client_close(cl);
out:
  /* wake the signal thread if no signal came, then collect it */
  if (!atomic_load(&T.stop))
    pthread_kill(sig_th, SIGTERM);
  pthread_join(sig_th, NULL);
  return status;
}

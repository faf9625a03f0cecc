/* Tests for adapters/grpc/client.c against a real clinlogd: each test starts
 * the server (CL_BUILD_DIR/clinlogd) on a free loopback port with a fresh
 * data directory and stops it at the end. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "adapters/grpc/client.h"
#include "store/checkpoint.h"
#include "store/merkle.h"
#include "tests/support/testutil.h"

/* ------------------------------------------------------------ fixture */

static struct {
  pid_t pid;
  char *dir;    /* data directory */
  char *logdir; /* holds clinlogd.log */
  char target[64];
  cl_signer admin;
  cl_client *c;
} S;

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void start_server(void) {
  cl_log *log = cl_test_log_new("grpc", &S.dir, &S.admin, 0);
  cr_assert_not_null(log);
  cl_log_close(log);
  S.logdir = cl_test_tmpdir("grpclog");
  char logpath[4096];
  snprintf(logpath, sizeof logpath, "%s/clinlogd.log", S.logdir);
  S.pid = fork();
  cr_assert(S.pid >= 0);
  if (S.pid == 0) {
    /* never outlive the test: a server left behind would hold ctest's
     * output pipe open until ctest's own timeout */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    /* the audit trail off: these tests check positions in the log, which
     * every call's record would move (the trail: tests/adapters, interop) */
    execl(CL_BUILD_DIR "/clinlogd", "clinlogd", "--data", S.dir, "--dev", "--listen", "127.0.0.1:0",
          "--audit", "off", (char *)NULL);
    _exit(127);
  }
  /* the port is in the log line "listening on 127.0.0.1:PORT"; up to 60 s:
   * under the sanitizers beside the long suites the start takes over 15 */
  int port = 0;
  for (int i = 0; i < 1200 && !port; i++) {
    size_t len = 0;
    uint8_t *text = cl_test_read_file(logpath, &len);
    if (text) {
      char *t = realloc(text, len + 1);
      if (t) {
        t[len] = '\0';
        char *p = strstr(t, "listening on 127.0.0.1:");
        if (p)
          port = atoi(p + strlen("listening on 127.0.0.1:"));
        text = (uint8_t *)t;
      }
      free(text);
    }
    int status;
    cr_assert_eq(waitpid(S.pid, &status, WNOHANG), 0, "clinlogd exited at start (see %s)", logpath);
    if (!port)
      sleep_ms(50);
  }
  if (port <= 0) {
    kill(S.pid, SIGKILL);
    waitpid(S.pid, NULL, 0);
    cr_assert_fail("clinlogd did not report its port within 60 s (its log: %s)", logpath);
  }
  snprintf(S.target, sizeof S.target, "127.0.0.1:%d", port);
  cl_client_options o;
  cl_client_options_init(&o);
  o.target = S.target;
  o.plaintext = 1;
  o.timeout_ms = 10000;
  cl_err err;
  cr_assert_eq(cl_client_open(&o, &S.c, &err), 0, "%s", err.msg);
}

static void stop_server(void) {
  cl_client_close(S.c);
  S.c = NULL;
  if (S.pid > 0) {
    kill(S.pid, SIGTERM);
    int status, done = 0;
    for (int i = 0; i < 200 && !done; i++) {
      done = waitpid(S.pid, &status, WNOHANG) == S.pid;
      if (!done)
        sleep_ms(50);
    }
    if (!done) {
      kill(S.pid, SIGKILL);
      waitpid(S.pid, &status, 0);
    }
  }
  cl_signer_free(&S.admin);
  cl_test_rmtree(S.dir);
  cl_test_rmtree(S.logdir);
  free(S.dir);
  free(S.logdir);
}

TestSuite(grpc_client, .init = start_server, .fini = stop_server, .timeout = 120);

/* --------------------------------------------------------- batches */

typedef struct tbatch {
  Clinlog__V1__AppendBatch b;
  ProtobufCBinaryData ev[16];
  uint8_t id[16][16];
  uint8_t sig[64];
  Clinlog__V1__Signature bsig;
  Clinlog__V1__StreamExpectation x, *xp;
  Clinlog__V1__ExpectedVersion xv;
} tbatch;

/* n events in `stream`, one batch signature. */
static void tb_make(tbatch *t, const char *stream, size_t n) {
  memset(t, 0, sizeof *t);
  clinlog__v1__append_batch__init(&t->b);
  uint8_t hashes[16][32];
  for (size_t i = 0; i < n; i++) {
    t->ev[i].data = cl_test_event(stream, "admin", NULL, t->id[i], &t->ev[i].len);
    cl_event_hash(t->ev[i].data, t->ev[i].len, hashes[i]);
  }
  cl_sign_batch(&S.admin, (const uint8_t(*)[32])hashes, n, t->sig);
  clinlog__v1__signature__init(&t->bsig);
  t->bsig.key_id = (ProtobufCBinaryData){32, S.admin.pk};
  t->bsig.signature = (ProtobufCBinaryData){64, t->sig};
  t->b.batch_signature = &t->bsig;
  t->b.n_events = n;
  t->b.events = t->ev;
}

static void tb_expect(tbatch *t, const char *stream, int kind, uint64_t version) {
  clinlog__v1__stream_expectation__init(&t->x);
  clinlog__v1__expected_version__init(&t->xv);
  t->x.stream = (char *)stream;
  t->xv.kind = kind;
  t->xv.version = version;
  t->x.expected = &t->xv;
  t->xp = &t->x;
  t->b.n_expectations = 1;
  t->b.expectations = &t->xp;
}

static void tb_free(tbatch *t) {
  for (size_t i = 0; i < t->b.n_events; i++)
    free(t->ev[i].data);
}

/* Appends n events to `stream`; returns the seq of the first. */
static uint64_t append_n(const char *stream, size_t n) {
  tbatch t;
  tb_make(&t, stream, n);
  Clinlog__V1__AppendResponse *r;
  cl_err err;
  cr_assert_eq(cl_client_append(S.c, &t.b, &r, NULL, &err), 0, "%s", err.msg);
  uint64_t first = r->positions[0]->seq;
  clinlog__v1__append_response__free_unpacked(r, NULL);
  tb_free(&t);
  return first;
}

/* ------------------------------------------------------------- tests */

Test(grpc_client, append_and_duplicate) {
  tbatch t;
  tb_make(&t, "patient-1", 3);
  Clinlog__V1__AppendResponse *r = NULL, *r2 = NULL;
  cl_client_status st;
  cl_err err;
  cr_assert_eq(cl_client_append(S.c, &t.b, &r, &st, &err), 0, "%s", err.msg);
  cr_assert_eq(st.code, CL_GRPC_OK);
  cr_assert_eq(r->n_positions, 3);
  cr_assert_not(r->duplicate);
  for (size_t i = 0; i < 3; i++) {
    cr_assert_eq(r->positions[i]->stream_version, i + 1);
    cr_assert_eq(r->positions[i]->seq, r->positions[0]->seq + i);
    cr_assert_eq(r->positions[i]->event_id.len, 16);
    cr_assert_eq(memcmp(r->positions[i]->event_id.data, t.id[i], 16), 0);
  }
  cr_assert_eq(r->tree_size, r->positions[2]->seq);
  /* the same batch again: idempotent, original positions */
  cr_assert_eq(cl_client_append(S.c, &t.b, &r2, &st, &err), 0, "%s", err.msg);
  cr_assert(r2->duplicate);
  cr_assert_eq(r2->positions[0]->seq, r->positions[0]->seq);
  cr_assert_eq(r2->tree_size, r->tree_size);
  clinlog__v1__append_response__free_unpacked(r, NULL);
  clinlog__v1__append_response__free_unpacked(r2, NULL);
  tb_free(&t);
}

Test(grpc_client, conflict_status_and_metadata) {
  append_n("patient-c", 2);
  tbatch t;
  tb_make(&t, "patient-c", 1);
  tb_expect(&t, "patient-c", CLINLOG__V1__EXPECTED_VERSION__KIND__EXACT, 5);
  Clinlog__V1__AppendResponse *r = (void *)1;
  cl_client_status st;
  cl_err err;
  cl_err_clear(&err);
  int rc = cl_client_append(S.c, &t.b, &r, &st, &err);
  cr_assert_eq(rc, CL_ECONFLICT, "rc %d: %s", rc, err.msg);
  cr_assert_eq(err.code, CL_ECONFLICT);
  cr_assert_null(r);
  cr_assert_eq(st.code, CL_GRPC_FAILED_PRECONDITION);
  cr_assert_eq(st.error, CL_ECONFLICT);
  cr_assert_str_eq(st.error_name, "CL_ECONFLICT");
  cr_assert_str_eq(st.stream, "patient-c");
  cr_assert(st.has_current_version);
  cr_assert_eq(st.current_version, 2);
  cr_assert(strstr(err.msg, "FAILED_PRECONDITION") != NULL, "%s", err.msg);
  /* a bad signature: PERMISSION_DENIED, CL_EBADSIG */
  tb_expect(&t, "patient-c", CLINLOG__V1__EXPECTED_VERSION__KIND__ANY, 0);
  t.sig[0] ^= 1;
  rc = cl_client_append(S.c, &t.b, &r, &st, &err);
  cr_assert_eq(rc, CL_EBADSIG, "rc %d: %s", rc, err.msg);
  cr_assert_eq(st.code, CL_GRPC_PERMISSION_DENIED);
  tb_free(&t);
}

static size_t read_all(const Clinlog__V1__ReadRequest *req, uint64_t *vals, size_t max,
                       int versions, int *rc_out) {
  cl_client_stream *s;
  cl_err err;
  cr_assert_eq(cl_client_read(S.c, req, &s, &err), 0, "%s", err.msg);
  size_t n = 0;
  ProtobufCMessage *m;
  int rc;
  while ((rc = cl_client_stream_next(s, &m, &err)) == 1) {
    Clinlog__V1__RecordedEvent *e = (Clinlog__V1__RecordedEvent *)m;
    if (n < max)
      vals[n] = versions ? e->stream_version : e->seq;
    n++;
    protobuf_c_message_free_unpacked(m, NULL);
  }
  *rc_out = rc;
  if (rc)
    cr_log_info("read: %s", err.msg);
  if (rc == 0)
    cr_assert_eq(cl_client_stream_status(s)->code, CL_GRPC_OK);
  cl_client_stream_free(s);
  return n;
}

Test(grpc_client, read_forwards_backwards) {
  uint64_t first = append_n("patient-r", 5);
  append_n("patient-other", 2);
  Clinlog__V1__ReadRequest req = CLINLOG__V1__READ_REQUEST__INIT;
  uint64_t v[16];
  int rc;
  req.stream = "patient-r";
  size_t nf = read_all(&req, v, 16, 1, &rc);
  cr_assert_eq(nf, 5, "forwards: %zu events, rc %d", nf, rc);
  cr_assert_eq(rc, 0);
  for (int i = 0; i < 5; i++)
    cr_assert_eq(v[i], (uint64_t)i + 1);
  req.direction = CLINLOG__V1__DIRECTION__BACKWARDS;
  size_t nb = read_all(&req, v, 16, 1, &rc);
  cr_assert_eq(nb, 5, "backwards: %zu events, rc %d", nb, rc);
  for (int i = 0; i < 5; i++)
    cr_assert_eq(v[i], (uint64_t)(5 - i));
  req.from = 3;
  req.max_count = 2;
  cr_assert_eq(read_all(&req, v, 16, 1, &rc), 2);
  cr_assert_eq(v[0], 3);
  cr_assert_eq(v[1], 2);
  /* whole log from `first`, with a prefix filter */
  Clinlog__V1__ReadRequest all = CLINLOG__V1__READ_REQUEST__INIT;
  Clinlog__V1__Filter f = CLINLOG__V1__FILTER__INIT;
  char *prefixes[1] = {"patient-r"};
  f.n_stream_prefixes = 1;
  f.stream_prefixes = prefixes;
  all.filter = &f;
  all.from = first;
  cr_assert_eq(read_all(&all, v, 16, 0, &rc), 5);
  cr_assert_eq(v[0], first);
  cr_assert_eq(v[4], first + 4);
  /* an unknown stream: NOT_FOUND from the first next */
  Clinlog__V1__ReadRequest none = CLINLOG__V1__READ_REQUEST__INIT;
  none.stream = "patient-nobody";
  cr_assert_eq(read_all(&none, v, 16, 1, &rc), 0);
  cr_assert_eq(rc, CL_ENOTFOUND);
}

typedef struct canceller {
  cl_client_stream *s;
  int ms;
} canceller;

static void *cancel_later(void *arg) {
  canceller *k = arg;
  sleep_ms(k->ms);
  cl_client_stream_cancel(k->s);
  return NULL;
}

Test(grpc_client, subscribe_catchup_live_cancel) {
  uint64_t first = append_n("patient-s", 3);
  Clinlog__V1__SubscribeRequest req = CLINLOG__V1__SUBSCRIBE_REQUEST__INIT;
  req.from_seq = first;
  req.position_interval_ms = 60000;
  req.include_record = 1;
  cl_client_stream *s;
  cl_err err;
  cr_assert_eq(cl_client_subscribe(S.c, &req, &s, &err), 0, "%s", err.msg);
  ProtobufCMessage *m;
  uint64_t next = first;
  int caught_up = 0;
  while (!caught_up) {
    cr_assert_eq(cl_client_stream_next(s, &m, &err), 1, "%s", err.msg);
    Clinlog__V1__SubscribeResponse *r = (Clinlog__V1__SubscribeResponse *)m;
    if (r->kind_case == CLINLOG__V1__SUBSCRIBE_RESPONSE__KIND_EVENT) {
      cr_assert_eq(r->event->seq, next);
      cr_assert(r->event->record.len > 0);
      cr_assert_str_eq(r->event->stream, "patient-s");
      next++;
    } else if (r->kind_case == CLINLOG__V1__SUBSCRIBE_RESPONSE__KIND_CAUGHT_UP) {
      caught_up = 1;
      cr_assert_eq(r->caught_up->seq, first + 2);
    }
    protobuf_c_message_free_unpacked(m, NULL);
  }
  cr_assert_eq(next, first + 3);
  /* live */
  append_n("patient-s", 2);
  while (next < first + 5) {
    cr_assert_eq(cl_client_stream_next(s, &m, &err), 1, "%s", err.msg);
    Clinlog__V1__SubscribeResponse *r = (Clinlog__V1__SubscribeResponse *)m;
    if (r->kind_case == CLINLOG__V1__SUBSCRIBE_RESPONSE__KIND_EVENT) {
      cr_assert_eq(r->event->seq, next);
      next++;
    }
    protobuf_c_message_free_unpacked(m, NULL);
  }
  /* cancel from another thread while this one is blocked */
  canceller k = {s, 200};
  pthread_t th;
  pthread_create(&th, NULL, cancel_later, &k);
  int rc = cl_client_stream_next(s, &m, &err);
  pthread_join(th, NULL);
  cr_assert_eq(rc, CL_EAGAIN, "rc %d", rc);
  cr_assert_eq(cl_client_stream_status(s)->code, CL_GRPC_CANCELLED);
  cr_assert_eq(cl_client_stream_next(s, &m, &err), CL_EAGAIN); /* sticky */
  cl_client_stream_free(s);
  /* freeing a running stream cancels it */
  cr_assert_eq(cl_client_subscribe(S.c, &req, &s, &err), 0);
  cr_assert_eq(cl_client_stream_next(s, &m, &err), 1);
  protobuf_c_message_free_unpacked(m, NULL);
  cl_client_stream_free(s);
}

/* The next `want` events of a Subscribe stream, each packed into out[]
 * (RecordedEvent bytes, freed by the caller); messages counts the event
 * messages they came in and *batched those of kind events. Positions are
 * skipped; caught_up too. */
static void next_events(cl_client_stream *s, ProtobufCBinaryData *out, size_t want, int *messages,
                        int *batched) {
  size_t got = 0;
  while (got < want) {
    ProtobufCMessage *m;
    cl_err err;
    cr_assert_eq(cl_client_stream_next(s, &m, &err), 1, "%s", err.msg);
    Clinlog__V1__SubscribeResponse *r = (Clinlog__V1__SubscribeResponse *)m;
    Clinlog__V1__RecordedEvent **evs = NULL;
    size_t n = 0;
    if (r->kind_case == CLINLOG__V1__SUBSCRIBE_RESPONSE__KIND_EVENT) {
      evs = &r->event;
      n = 1;
    } else if (r->kind_case == CLINLOG__V1__SUBSCRIBE_RESPONSE__KIND_EVENTS) {
      evs = r->events->events;
      n = r->events->n_events;
      cr_assert(n > 0, "an empty EventBatch");
      (*batched)++;
    }
    if (n)
      (*messages)++;
    for (size_t i = 0; i < n; i++) {
      cr_assert(got < want, "more events than appended");
      out[got].len = clinlog__v1__recorded_event__get_packed_size(evs[i]);
      out[got].data = malloc(out[got].len);
      clinlog__v1__recorded_event__pack(evs[i], out[got].data);
      got++;
    }
    protobuf_c_message_free_unpacked(m, NULL);
  }
}

/* SubscribeRequest.batch: the same events, in the same order, byte for
 * byte, as one event per message; a commit's events in one EventBatch
 * (catch-up and live, with and without records). The batched stream is
 * opened by path (cl_client_server_stream). */
Test(grpc_client, subscribe_batched_events) {
  for (int rec = 0; rec < 2; rec++) {
    char stream[32];
    snprintf(stream, sizeof stream, "patient-b%d", rec);
    uint64_t first = append_n(stream, 3);
    Clinlog__V1__SubscribeRequest req = CLINLOG__V1__SUBSCRIBE_REQUEST__INIT;
    req.from_seq = first;
    req.include_record = rec;
    cl_client_stream *one, *bat;
    cl_err err;
    cr_assert_eq(cl_client_subscribe(S.c, &req, &one, &err), 0, "%s", err.msg);
    req.batch = 1;
    cr_assert_eq(cl_client_server_stream(S.c, "/clinlog.v1.Log/Subscribe", &req.base,
                                         &clinlog__v1__subscribe_response__descriptor, &bat, &err),
                 0, "%s", err.msg);
    ProtobufCBinaryData a[8], b[8];
    int ma = 0, ba = 0, mb = 0, bb = 0;
    next_events(one, a, 3, &ma, &ba);
    next_events(bat, b, 3, &mb, &bb);
    append_n(stream, 5); /* live: one commit of 5 */
    next_events(one, a + 3, 5, &ma, &ba);
    next_events(bat, b + 3, 5, &mb, &bb);
    cr_assert_eq(ma, 8, "one event per message without batch");
    cr_assert_eq(ba, 0);
    cr_assert_eq(mb, 2, "the 3 caught up and the 5 of one commit: 2 EventBatch messages, not %d",
                 mb);
    cr_assert_eq(bb, mb, "with batch only EventBatch messages carry events");
    for (int i = 0; i < 8; i++) {
      cr_assert_eq(a[i].len, b[i].len, "event %d", i);
      cr_assert_eq(memcmp(a[i].data, b[i].data, a[i].len), 0, "event %d differs", i);
      Clinlog__V1__RecordedEvent *re =
          clinlog__v1__recorded_event__unpack(NULL, b[i].len, b[i].data);
      cr_assert_not_null(re);
      cr_assert_eq(re->seq, first + (uint64_t)i); /* the live 5 follow the 3 at once */
      cr_assert_eq(re->record.len > 0, rec);
      clinlog__v1__recorded_event__free_unpacked(re, NULL);
      free(a[i].data);
      free(b[i].data);
    }
    cl_client_stream_free(one);
    cl_client_stream_free(bat);
  }
}

Test(grpc_client, append_stream_summary) {
  cl_client_append_stream *a;
  cl_err err;
  cr_assert_eq(cl_client_append_stream_open(S.c, &a, &err), 0, "%s", err.msg);
  tbatch t[3];
  for (int i = 0; i < 3; i++) {
    tb_make(&t[i], "patient-bulk", 10);
    cr_assert_eq(cl_client_append_stream_send(a, &t[i].b, &err), 0, "%s", err.msg);
  }
  Clinlog__V1__AppendStreamSummary *sum;
  cl_client_status st;
  cr_assert_eq(cl_client_append_stream_finish(a, &sum, &st, &err), 0, "%s", err.msg);
  cr_assert_eq(sum->batches, 3);
  cr_assert_eq(sum->events, 30);
  cr_assert_eq(sum->duplicates, 0);
  cr_assert_eq(sum->last_seq - sum->first_seq, 29);
  cr_assert_eq(sum->tree_size, sum->last_seq);
  clinlog__v1__append_stream_summary__free_unpacked(sum, NULL);
  /* again, with batch 1 a duplicate and batch 2 badly signed */
  cr_assert_eq(cl_client_append_stream_open(S.c, &a, &err), 0, "%s", err.msg);
  tbatch bad;
  tb_make(&bad, "patient-bulk", 2);
  bad.sig[3] ^= 0x40;
  int rc = cl_client_append_stream_send(a, &t[0].b, &err);
  if (rc == 0)
    rc = cl_client_append_stream_send(a, &bad.b, &err);
  for (int i = 0; i < 20 && rc == 0; i++) /* the failure shows on a later send or at finish */
    rc = cl_client_append_stream_send(a, &t[1].b, &err);
  rc = cl_client_append_stream_finish(a, &sum, &st, &err);
  cr_assert_eq(rc, CL_EBADSIG, "rc %d: %s", rc, err.msg);
  cr_assert_null(sum);
  cr_assert_eq(st.code, CL_GRPC_PERMISSION_DENIED);
  cr_assert(st.has_committed_batches);
  cr_assert_eq(st.committed_batches, 1);
  for (int i = 0; i < 3; i++)
    tb_free(&t[i]);
  tb_free(&bad);
  /* abort frees a running call */
  cr_assert_eq(cl_client_append_stream_open(S.c, &a, &err), 0);
  cl_client_append_stream_abort(a);
}

Test(grpc_client, checkpoint_and_proofs) {
  append_n("patient-p", 4);
  append_n("patient-q", 3);
  Clinlog__V1__GetCheckpointRequest creq = CLINLOG__V1__GET_CHECKPOINT_REQUEST__INIT;
  creq.fresh = 1;
  Clinlog__V1__Checkpoint *cp;
  cl_err err;
  cr_assert_eq(cl_client_get_checkpoint(S.c, &creq, &cp, NULL, &err), 0, "%s", err.msg);
  cr_assert_eq(cp->log_public_key.len, 32);
  cl_checkpoint v;
  cr_assert_eq(cl_checkpoint_verify(cp->note, strlen(cp->note), cp->origin, cp->log_public_key.data,
                                    &v, &err),
               0, "%s", err.msg);
  cr_assert_eq(v.size, cp->tree_size);
  cr_assert_eq(cp->tree_size, 9); /* 2 genesis events + 7 */
  cr_assert_eq(memcmp(v.root, cp->root_hash.data, 32), 0);

  for (uint64_t seq = 1; seq <= v.size; seq++) {
    Clinlog__V1__ProveInclusionRequest ireq = CLINLOG__V1__PROVE_INCLUSION_REQUEST__INIT;
    ireq.seq = seq;
    ireq.tree_size = v.size;
    Clinlog__V1__InclusionProof *ip;
    cr_assert_eq(cl_client_prove_inclusion(S.c, &ireq, &ip, NULL, &err), 0, "%s", err.msg);
    uint8_t leaf[32];
    cl_merkle_leaf_hash(ip->record.data, ip->record.len, leaf);
    cr_assert_eq(memcmp(leaf, ip->leaf_hash.data, 32), 0);
    cr_assert_leq(ip->n_hashes, CL_MERKLE_MAX_PROOF);
    uint8_t path[CL_MERKLE_MAX_PROOF][32];
    for (size_t i = 0; i < ip->n_hashes; i++) {
      cr_assert_eq(ip->hashes[i].len, 32);
      memcpy(path[i], ip->hashes[i].data, 32);
    }
    cr_assert_eq(cl_merkle_verify_inclusion(leaf, seq - 1, v.size, (const uint8_t(*)[32])path,
                                            ip->n_hashes, v.root, &err),
                 0, "seq %llu: %s", (unsigned long long)seq, err.msg);
    cr_assert_str_eq(ip->checkpoint, cp->note);
    clinlog__v1__inclusion_proof__free_unpacked(ip, NULL);
  }
  for (uint64_t old = 1; old <= v.size; old++) {
    Clinlog__V1__ProveConsistencyRequest qreq = CLINLOG__V1__PROVE_CONSISTENCY_REQUEST__INIT;
    qreq.old_size = old;
    qreq.new_size = v.size;
    Clinlog__V1__ConsistencyProof *q;
    cr_assert_eq(cl_client_prove_consistency(S.c, &qreq, &q, NULL, &err), 0, "%s", err.msg);
    uint8_t path[CL_MERKLE_MAX_PROOF][32];
    cr_assert_leq(q->n_hashes, CL_MERKLE_MAX_PROOF);
    for (size_t i = 0; i < q->n_hashes; i++)
      memcpy(path[i], q->hashes[i].data, 32);
    cr_assert_eq(memcmp(q->new_root.data, v.root, 32), 0);
    cr_assert_eq(cl_merkle_verify_consistency(old, v.size, q->old_root.data, v.root,
                                              (const uint8_t(*)[32])path, q->n_hashes, &err),
                 0, "old %llu: %s", (unsigned long long)old, err.msg);
    clinlog__v1__consistency_proof__free_unpacked(q, NULL);
  }
  /* a tampered proof fails */
  Clinlog__V1__ProveInclusionRequest ireq = CLINLOG__V1__PROVE_INCLUSION_REQUEST__INIT;
  ireq.seq = 3;
  ireq.tree_size = v.size;
  Clinlog__V1__InclusionProof *ip;
  cr_assert_eq(cl_client_prove_inclusion(S.c, &ireq, &ip, NULL, &err), 0, "%s", err.msg);
  uint8_t leaf[32], path[CL_MERKLE_MAX_PROOF][32];
  memcpy(leaf, ip->leaf_hash.data, 32);
  for (size_t i = 0; i < ip->n_hashes; i++)
    memcpy(path[i], ip->hashes[i].data, 32);
  path[0][0] ^= 1;
  cr_assert_eq(cl_merkle_verify_inclusion(leaf, 2, v.size, (const uint8_t(*)[32])path, ip->n_hashes,
                                          v.root, &err),
               CL_EVERIFY);
  clinlog__v1__inclusion_proof__free_unpacked(ip, NULL);
  /* beyond the head: an error, not a crash */
  ireq.seq = 1000;
  ireq.tree_size = 0;
  cr_assert_neq(cl_client_prove_inclusion(S.c, &ireq, &ip, NULL, &err), 0);
  clinlog__v1__checkpoint__free_unpacked(cp, NULL);
}

Test(grpc_client, get_event_and_not_found) {
  tbatch t;
  tb_make(&t, "patient-g", 1);
  Clinlog__V1__AppendResponse *r;
  cl_err err;
  cr_assert_eq(cl_client_append(S.c, &t.b, &r, NULL, &err), 0, "%s", err.msg);
  Clinlog__V1__GetEventRequest req = CLINLOG__V1__GET_EVENT_REQUEST__INIT;
  req.event_id = (ProtobufCBinaryData){16, t.id[0]};
  req.include_record = 1;
  Clinlog__V1__RecordedEvent *e;
  cr_assert_eq(cl_client_get_event(S.c, &req, &e, NULL, &err), 0, "%s", err.msg);
  cr_assert_eq(e->seq, r->positions[0]->seq);
  cr_assert_str_eq(e->stream, "patient-g");
  cr_assert_eq(e->event.len, t.ev[0].len);
  cr_assert_eq(memcmp(e->event.data, t.ev[0].data, t.ev[0].len), 0);
  cr_assert(e->record.len > 0);
  clinlog__v1__recorded_event__free_unpacked(e, NULL);
  clinlog__v1__append_response__free_unpacked(r, NULL);
  uint8_t other[16];
  randombytes_buf(other, 16);
  req.event_id = (ProtobufCBinaryData){16, other};
  cl_client_status st;
  e = (void *)1;
  cr_assert_eq(cl_client_get_event(S.c, &req, &e, &st, &err), CL_ENOTFOUND);
  cr_assert_null(e);
  cr_assert_eq(st.code, CL_GRPC_NOT_FOUND);
  cr_assert_eq(st.error, CL_ENOTFOUND);
  /* a malformed request: INVALID_ARGUMENT */
  req.event_id.len = 3;
  cr_assert_eq(cl_client_get_event(S.c, &req, &e, &st, &err), CL_EINVAL);
  cr_assert_eq(st.code, CL_GRPC_INVALID_ARGUMENT);
  tb_free(&t);
}

Test(grpc_client, health_and_unreachable) {
  Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  Grpc__Health__V1__HealthCheckResponse *h;
  cl_err err;
  cr_assert_eq(cl_client_health_check(S.c, &req, &h, NULL, &err), 0, "%s", err.msg);
  cr_assert_eq(h->status, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
  grpc__health__v1__health_check_response__free_unpacked(h, NULL);
  /* an unknown method: UNIMPLEMENTED */
  ProtobufCMessage *m;
  cl_client_status st;
  cr_assert_eq(cl_client_unary(S.c, "/clinlog.v1.Log/NoSuchMethod", &req.base,
                               &grpc__health__v1__health_check_response__descriptor, &m, &st, &err),
               CL_EINVAL);
  cr_assert_eq(st.code, CL_GRPC_UNIMPLEMENTED);
  /* nobody listening: UNAVAILABLE, retryable */
  cl_client_options o;
  cl_client_options_init(&o);
  o.target = "127.0.0.1:1";
  o.plaintext = 1;
  o.timeout_ms = 5000;
  cl_client *c;
  cr_assert_eq(cl_client_open(&o, &c, &err), 0);
  cr_assert_eq(cl_client_health_check(c, &req, &h, &st, &err), CL_EAGAIN);
  cr_assert_eq(st.code, CL_GRPC_UNAVAILABLE);
  cl_client_stream *s;
  Clinlog__V1__SubscribeRequest sreq = CLINLOG__V1__SUBSCRIBE_REQUEST__INIT;
  cr_assert_eq(cl_client_subscribe(c, &sreq, &s, &err), 0);
  cr_assert_eq(cl_client_stream_next(s, &m, &err), CL_EAGAIN);
  cl_client_stream_free(s);
  cl_client_close(c);
  /* options are checked */
  o.target = NULL;
  cr_assert_eq(cl_client_open(&o, &c, &err), CL_EINVAL);
  o.target = S.target;
  o.plaintext = 0;
  o.cert_pem_file = "/nonexistent.pem";
  cr_assert_eq(cl_client_open(&o, &c, &err), CL_EINVAL); /* half a key pair */
  o.key_pem_file = "/nonexistent.key";
  cr_assert_eq(cl_client_open(&o, &c, &err), CL_EIO);
}

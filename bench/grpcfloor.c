/* The floor of a call on this stack (bench/grpcfloor.h). */
#include "bench/grpcfloor.h"

#include <errno.h>
#include <fcntl.h>
#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clinlog/v1/api.pb-c.h"

#define FLOOR_THREADS 2  /* completion-queue threads, as clinlogd's default */
#define FLOOR_SLOTS 256  /* calls requested ahead (more than any cell's concurrency) */
#define FLOOR_BLOCKS 256 /* 4 KiB blocks of the durable file, overwritten in turn */

typedef struct fslot {
  grpc_call *call;
  gpr_timespec deadline;
  grpc_metadata_array md;
  grpc_byte_buffer *req;
  int cancelled;
  int answering; /* 0: requested, waiting for a call; 1: its answer in flight */
} fslot;

static struct {
  grpc_server *gs;
  grpc_completion_queue *cq;
  void *method;
  grpc_slice answer;   /* a pre-encoded AppendResponse */
  grpc_slice details;  /* the status details: "" */
  int fd;              /* the durable file, -1: not durable */
  uint64_t next_block; /* the writer's */
  pthread_mutex_t mu;  /* waiting, nwaiting, writing */
  fslot *waiting[FLOOR_SLOTS];
  size_t nwaiting;
  int writing;
  uint8_t pk[32], sig[64], msg[32];
  fslot slots[FLOOR_SLOTS];
} F;

static void request(fslot *s) {
  memset(s, 0, sizeof *s);
  grpc_metadata_array_init(&s->md);
  if (grpc_server_request_registered_call(F.gs, F.method, &s->call, &s->deadline, &s->md, &s->req,
                                          F.cq, F.cq, s) != GRPC_CALL_OK) {
    fprintf(stderr, "floor-server: request_registered_call failed\n");
    exit(1);
  }
}

/* Sends a call's answer. */
static void send_answer(fslot *s) {
  if (s->req)
    grpc_byte_buffer_destroy(s->req);
  s->req = NULL;
  grpc_byte_buffer *out = grpc_raw_byte_buffer_create(&F.answer, 1);
  grpc_op ops[4];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = out;
  ops[2].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[2].data.send_status_from_server.status = GRPC_STATUS_OK;
  ops[2].data.send_status_from_server.status_details = &F.details;
  ops[3].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  ops[3].data.recv_close_on_server.cancelled = &s->cancelled;
  s->answering = 1;
  grpc_call_error e = grpc_call_start_batch(s->call, ops, 4, s, NULL);
  grpc_byte_buffer_destroy(out); /* the batch holds its own reference */
  if (e != GRPC_CALL_OK) {
    fprintf(stderr, "floor-server: start_batch: %d\n", (int)e);
    exit(1);
  }
}

/* One durable write of a group of n calls' events: 512 bytes an event
 * (about a stored record), whole 4 KiB blocks, overwritten in turn. */
static void write_group(size_t n) {
  static _Alignas(4096) uint8_t buf[FLOOR_SLOTS * 512 + 4096];
  size_t len = (n * 512 + 4095) / 4096 * 4096;
  off_t at = (off_t)(F.next_block % FLOOR_BLOCKS) * 4096;
  F.next_block += len / 4096;
  if (at + (off_t)len > (off_t)FLOOR_BLOCKS * 4096)
    at = 0, F.next_block = len / 4096;
  if (pwrite(F.fd, buf, len, at) != (ssize_t)len || fdatasync(F.fd) != 0) {
    fprintf(stderr, "floor-server: write: %s\n", strerror(errno));
    exit(1);
  }
}

/* A call has arrived. Durable: its signature is checked, then it joins
 * the calls waiting for a durable write; the thread that finds no write
 * in progress writes for every call waiting (and for those that arrive
 * meanwhile, round after round) and answers them, while the other
 * thread goes on taking calls: group commit without a hand-off, so at
 * concurrency 1 a call is written and answered by the thread that took
 * it. */
static void arrived(fslot *s) {
  if (F.fd < 0) {
    send_answer(s);
    return;
  }
  if (crypto_sign_verify_detached(F.sig, F.msg, sizeof F.msg, F.pk) != 0) {
    fprintf(stderr, "floor-server: the signature did not verify\n");
    exit(1);
  }
  fslot *group[FLOOR_SLOTS];
  pthread_mutex_lock(&F.mu);
  F.waiting[F.nwaiting++] = s;
  if (F.writing) {
    pthread_mutex_unlock(&F.mu);
    return;
  }
  F.writing = 1;
  while (F.nwaiting) {
    size_t n = F.nwaiting;
    memcpy(group, F.waiting, n * sizeof *group);
    F.nwaiting = 0;
    pthread_mutex_unlock(&F.mu);
    write_group(n); /* next_block is this writer's alone meanwhile */
    for (size_t i = 0; i < n; i++)
      send_answer(group[i]);
    pthread_mutex_lock(&F.mu);
  }
  F.writing = 0;
  pthread_mutex_unlock(&F.mu);
}

static void *cq_main(void *arg) {
  (void)arg;
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(F.cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN)
      return NULL;
    if (ev.type != GRPC_OP_COMPLETE)
      continue;
    fslot *s = ev.tag;
    if (!s->answering) {
      if (ev.success)
        arrived(s);
      else
        request(s);
    } else { /* answered: the slot waits for the next call */
      grpc_call_unref(s->call);
      grpc_metadata_array_destroy(&s->md);
      request(s);
    }
  }
}

int bench_floor_server_main(int argc, char **argv) {
  const char *durable = NULL;
  for (int i = 2; i < argc; i++)
    if (!strcmp(argv[i], "--durable") && i + 1 < argc)
      durable = argv[++i];
    else {
      fprintf(stderr, "usage: clinlog-bench floor-server [--durable FILE]\n");
      return 2;
    }
  if (sodium_init() < 0)
    return 1;
  uint8_t sk[64];
  crypto_sign_keypair(F.pk, sk);
  randombytes_buf(F.msg, sizeof F.msg);
  crypto_sign_detached(F.sig, NULL, F.msg, sizeof F.msg, sk);
  sodium_memzero(sk, sizeof sk);
  F.fd = -1;
  pthread_mutex_init(&F.mu, NULL);
  if (durable) { /* written whole and synced first: the writes overwrite */
    F.fd = open(durable, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    static uint8_t zero[4096];
    for (int i = 0; F.fd >= 0 && i < FLOOR_BLOCKS; i++)
      if (write(F.fd, zero, sizeof zero) != (ssize_t)sizeof zero) {
        close(F.fd);
        F.fd = -1;
      }
    if (F.fd < 0 || fsync(F.fd) != 0) {
      fprintf(stderr, "floor-server: %s: %s\n", durable, strerror(errno));
      return 1;
    }
  }
  /* the answer of one event's append: its position and the tree's size */
  Clinlog__V1__EventPosition pos = CLINLOG__V1__EVENT_POSITION__INIT, *pp[1] = {&pos};
  Clinlog__V1__AppendResponse ar = CLINLOG__V1__APPEND_RESPONSE__INIT;
  static const uint8_t id[16] = {1};
  pos.event_id = (ProtobufCBinaryData){sizeof id, (uint8_t *)id};
  pos.seq = 1234567;
  pos.stream_version = 42;
  ar.n_positions = 1;
  ar.positions = pp;
  ar.tree_size = 1234567;
  uint8_t abuf[96];
  size_t alen = clinlog__v1__append_response__pack(&ar, abuf);
  F.answer = grpc_slice_from_copied_buffer((const char *)abuf, alen);
  F.details = grpc_slice_from_static_string("");

  grpc_init();
  F.gs = grpc_server_create(NULL, NULL);
  F.cq = grpc_completion_queue_create_for_next(NULL);
  grpc_server_register_completion_queue(F.gs, F.cq, NULL);
  F.method = grpc_server_register_method(F.gs, "/clinlog.v1.Log/Append", NULL,
                                         GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
  grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
  int port = grpc_server_add_http2_port(F.gs, "127.0.0.1:0", creds);
  grpc_server_credentials_release(creds);
  if (port <= 0) {
    fprintf(stderr, "floor-server: cannot listen on 127.0.0.1\n");
    return 1;
  }
  grpc_server_start(F.gs);
  for (int i = 0; i < FLOOR_SLOTS; i++)
    request(&F.slots[i]);
  pthread_t t[FLOOR_THREADS];
  for (int i = 0; i < FLOOR_THREADS; i++)
    if (pthread_create(&t[i], NULL, cq_main, NULL) != 0)
      return 1;
  fprintf(stderr, "floor-server: listening on 127.0.0.1:%d (%s)\n", port,
          durable ? "Ed25519 check + fdatasync a call" : "answers only");
  /* SIGTERM's default action ends the process: nothing of it outlives it
   * but the durable file, which the caller removes */
  for (;;)
    pause();
}

/* ---------------------------------------------------------- the client side */

typedef struct fcaller {
  cl_client *client;
  const bench_pool *pool;
  size_t next;
} fcaller;

/* The pool's batches in turn: the floor server checks nothing, so a batch
 * may be sent again, and no batch is signed in the loop. */
static int floor_call(void *ctx, size_t *events, char *why, size_t whyn) {
  fcaller *c = ctx;
  const bench_batch *b = &c->pool->b[c->next++ % c->pool->n];
  Clinlog__V1__AppendResponse *r;
  cl_err err;
  if (cl_client_append(c->client, &b->b, &r, NULL, &err) != 0) {
    snprintf(why, whyn, "Append (floor): %s", err.msg);
    return -1;
  }
  clinlog__v1__append_response__free_unpacked(r, NULL);
  *events = b->b.n_events;
  return 0;
}

int bench_floor_run(const char *self, const char *dir, int durable, const int *concs, int nconc,
                    double seconds, const cl_signer *admin, unsigned *seed, bench_floor_row *rows) {
  char file[4200], logpath[4200];
  snprintf(file, sizeof file, "%s/floor.dat", dir);
  snprintf(logpath, sizeof logpath, "%s/floor-server.log", dir);
  mkdir(dir, 0700);
  unlink(logpath);
  char *const argv[] = {(char *)self, "floor-server", durable ? "--durable" : NULL, file, NULL};
  bench_proc srv = {0};
  if (bench_proc_start(argv, logpath, &srv))
    return -1;
  cl_client *client = NULL;
  int rc = bench_client_open(srv.target, "floor client", &client);
  bench_pool pool;
  bench_pool_make(&pool, 256, 1, admin, seed);
  for (int i = 0; rc == 0 && i < nconc; i++) {
    fcaller *cs = calloc((size_t)concs[i], sizeof *cs);
    if (!cs)
      abort();
    for (int k = 0; k < concs[i]; k++)
      cs[k] = (fcaller){client, &pool, (size_t)k * 7};
    bench_floor_row *row = &rows[i];
    memset(row, 0, sizeof *row);
    row->durable = durable;
    row->conc = concs[i];
    double s0 = bench_proc_cpu_s(srv.pid), c0 = bench_self_cpu_s();
    char why[320] = "";
    if (bench_load_closed(concs[i], cs, sizeof *cs, NULL, floor_call, seconds, &row->r, why,
                          sizeof why) != 0) {
      fprintf(stderr, "clinlog-bench: floor: %s\n", why);
      rc = -1;
    }
    double s1 = bench_proc_cpu_s(srv.pid), c1 = bench_self_cpu_s();
    double calls = row->r.events ? (double)row->r.events : 1;
    row->server_us = s0 >= 0 && s1 >= 0 ? (s1 - s0) * 1e6 / calls : -1;
    row->client_us = (c1 - c0) * 1e6 / calls;
    free(cs);
  }
  bench_pool_free(&pool);
  if (client)
    cl_client_close(client);
  bench_proc_stop(&srv);
  unlink(file);
  return rc;
}

void bench_floor_json(const bench_floor_row *rows, int n) {
  for (int i = 0; i < n; i++) {
    const bench_floor_row *x = &rows[i];
    printf("%s{\"durable\":%s,\"concurrency\":%d,\"calls_per_s\":%.0f,\"p50_ms\":%.3f,"
           "\"p99_ms\":%.3f,\"server_cpu_us_per_call\":%.1f,\"client_cpu_us_per_call\":%.1f}",
           i ? "," : "", x->durable ? "true" : "false", x->conc, x->r.eps, x->r.p50_ms, x->r.p99_ms,
           x->server_us, x->client_us);
  }
}

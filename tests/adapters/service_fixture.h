/* The fixture shared by the request-layer tests (test_service.c: the hooks
 * on every method; test_service_audit.c: the audit trail): the request
 * layer (adapters/service) under the real gRPC server, in process, on a
 * one-node Raft cluster, with recording hooks, clinlogd's services and the
 * C client. Linked into every tests/adapters binary (*_fixture.c); only
 * those two use it. */
#ifndef CL_TESTS_ADAPTERS_SERVICE_FIXTURE_H
#define CL_TESTS_ADAPTERS_SERVICE_FIXTURE_H

#include <pthread.h>
#include <stdint.h>

#include "adapters/grpc/client.h"
#include "adapters/grpc/grpcutil.h"
#include "adapters/grpc/services.h"
#include "adapters/http/http.h"
#include "adapters/service/service.h"

/* What the hooks saw, per method (M_*); guarded by mu. */
typedef struct svct_rec {
  pthread_mutex_t mu;
  int authorized[M_COUNT], audited[M_COUNT], finished[M_COUNT];
  int finished_code[M_COUNT];
  int deny[M_COUNT];
  int audit_fails;
  cl_req_ctx last[M_COUNT];
  int order_ok;         /* every audit came after its authorization */
  char login_seen[256]; /* principal/password/code of the Login request the hooks got */
  char token_seen[256]; /* grant/assertion/scope of the Token request the hooks got */
} svct_rec;

struct svct_fixture {
  char *dir;
  cl_signer admin;
  cl_log *log;
  cl_repl *repl;
  cl_svc *svc;
  cl_server *srv;
  cl_server_config cfg;
  cl_grpc_peer_config peer;
  char target[64];
  char raft_addr[64], raft_dir[4096];
  cl_client *c;
};

/* A signed one-event batch for `stream`. Free with svct_batch_free. */
typedef struct svct_batch {
  Clinlog__V1__AppendBatch b;
  ProtobufCBinaryData ev;
  Clinlog__V1__Signature sig, *sp;
  uint8_t raw[64];
} svct_batch;

extern svct_rec svct_R;            /* the hooks' record */
extern struct svct_fixture svct_F; /* the node and its client */

/* The suite's .init and .fini: start the node (and wait until it leads its
 * one-node cluster) and open the client; close and remove everything. */
void svct_setup(void);
void svct_teardown(void);

/* One of a's counters (svct_R.authorized, .audited, .finished) for method
 * m, read under the lock. */
int svct_count(int *a, int m);

void svct_batch_make(svct_batch *x, const char *stream);
void svct_batch_free(svct_batch *x);
/* Appends one event; returns its seq (asserts success). */
uint64_t svct_append_one(const char *stream);
/* Runs a unary call by path; returns the client's result code. *out
 * (may be NULL: freed) is returned-owned. */
int svct_unary(int m, const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_d,
               ProtobufCMessage **out, cl_client_status *st);
/* Drains a server stream (cancelled after max messages; 0: all) and frees
 * it; returns how it ended. */
int svct_drain(cl_client_stream *s, int max);
/* Waits (up to 2 s) until method m has finished n times. */
void svct_wait_finished(int m, int n);
/* One HTTP/1.1 GET on loopback; returns the status. */
int svct_http_get(int port, const char *path);
/* The FHIR REST face over the fixture's service, plaintext on loopback. */
cl_http *svct_http_start(int *port);

#endif

/* The clinlog C client: the clinlog.v1.Log and grpc.health.v1.Health APIs
 * of docs/api.md over the gRPC C core, for the CLI, the benchmark, tests and
 * C integrators. Requests and responses are the protobuf-c messages of
 * proto/clinlog/v1/api.proto; no grpc_* type appears in this header.
 *
 * Shape:
 *  - cl_client: one channel (one HTTP/2 connection, reconnected as needed).
 *  - unary calls (Append, GetCheckpoint, ProveInclusion, ProveConsistency,
 *    GetEvent, Health.Check) block until the response or the deadline
 *    (options.timeout_ms).
 *  - server streams (Read, Subscribe) are iterators: cl_client_stream_next
 *    returns one message at a time.
 *  - the client stream (AppendStream) is send-send-...-finish.
 *
 * Errors. Every fallible function returns 0 or a negative CL_E* and fills
 * *err. A call that ends with a non-OK gRPC status is an error: its code is
 * the store's code named by the "clinlog-error" trailing metadata when the
 * server sent one (CL_ECONFLICT, CL_EBADSIG, ...), otherwise derived from the
 * gRPC status (see cl_client_errcode_of_status); the message is
 * "<STATUS>: <details>". Transport failures (server down, connection lost,
 * deadline) are CL_EAGAIN with status UNAVAILABLE, DEADLINE_EXCEEDED or
 * CANCELLED: retryable. Every call also fills an optional cl_client_status
 * (may be NULL) with the raw status and the clinlog-* trailing metadata.
 *
 * Implementation: every call has its own pluck completion queue and a
 * deadline; calls share nothing but the channel.
 *
 * Thread-safety: a cl_client may be used by any number of threads at once
 * (calls are independent). A cl_client_stream or cl_client_append_stream is
 * used by one thread at a time, except cl_client_stream_cancel, which any
 * thread may call at any time before cl_client_stream_free. */
#ifndef CL_ADAPTERS_GRPC_CLIENT_H
#define CL_ADAPTERS_GRPC_CLIENT_H

#include <protobuf-c/protobuf-c.h>
#include <stdint.h>

#include "clinlog/v1/api.pb-c.h"
#include "clinlog/v1/cds.pb-c.h"
#include "clinlog/v1/cluster.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "store/err.h"

/* gRPC status codes, numbered as the gRPC protocol numbers them. */
enum cl_client_code {
  CL_GRPC_OK = 0,
  CL_GRPC_CANCELLED = 1,
  CL_GRPC_UNKNOWN = 2,
  CL_GRPC_INVALID_ARGUMENT = 3,
  CL_GRPC_DEADLINE_EXCEEDED = 4,
  CL_GRPC_NOT_FOUND = 5,
  CL_GRPC_ALREADY_EXISTS = 6,
  CL_GRPC_PERMISSION_DENIED = 7,
  CL_GRPC_RESOURCE_EXHAUSTED = 8,
  CL_GRPC_FAILED_PRECONDITION = 9,
  CL_GRPC_ABORTED = 10,
  CL_GRPC_OUT_OF_RANGE = 11,
  CL_GRPC_UNIMPLEMENTED = 12,
  CL_GRPC_INTERNAL = 13,
  CL_GRPC_UNAVAILABLE = 14,
  CL_GRPC_DATA_LOSS = 15,
  CL_GRPC_UNAUTHENTICATED = 16
};

/* How a call ended. Plain value. */
typedef struct cl_client_status {
  int code;                      /* enum cl_client_code */
  char details[CL_ERR_MSG_SIZE]; /* status message (server's or transport's),
                                    NUL-terminated */
  int error;                     /* "clinlog-error" as a CL_E* code; 0 if absent or unknown */
  char error_name[32];           /* "clinlog-error" verbatim ("" if absent) */
  char stream[260];              /* "clinlog-stream" (wrong expected version), "" if absent */
  int has_current_version;       /* "clinlog-current-version" was sent */
  uint64_t current_version;
  int has_committed_batches; /* "clinlog-committed-batches" was sent
                                (AppendStream) */
  uint64_t committed_batches;
} cl_client_status;

typedef struct cl_client_options {
  const char *target;        /* "host:port" or any gRPC target URI (required) */
  int plaintext;             /* 1: no TLS (clinlogd --dev, loopback only) */
  const char *ca_pem_file;   /* TLS: CA certificates to trust; NULL: the system's roots */
  const char *cert_pem_file; /* mutual TLS: client certificate chain (with
                                key_pem_file) */
  const char *key_pem_file;  /* mutual TLS: client private key */
  const char *server_name;   /* TLS: name to expect in the server certificate, when it
                                differs from the target's host (NULL: the host) */
  int timeout_ms;            /* deadline of unary calls and of opening streams; default
                                30000 */
  int stream_timeout_ms;     /* deadline of Read, Subscribe and AppendStream calls
                                as a whole; 0 (default): none, dead peers are found
                                by keepalive pings */
  int keepalive_ms;          /* ping an idle connection this often; default 30000
                                (the server tolerates >= 10000 by default) */
  const char *md_key;        /* a metadata entry sent with every call (e.g. clinlogd's
                                "clinlog-forwarded" between nodes); NULL: none */
  const char *md_value;
} cl_client_options;

/* Fills *o with the defaults (target NULL, TLS on). Cannot fail. */
void cl_client_options_init(cl_client_options *o);

typedef struct cl_client cl_client;

/* Creates a client for o->target. Connects lazily: an unreachable server is
 * reported by the first call, not here. *o and its strings are borrowed
 * (PEM files are read here). On success *out is returned-owned
 * (cl_client_close). Errors: CL_EINVAL (no target, half a key pair),
 * CL_EIO (a PEM file cannot be read), CL_ENOMEM. On error *out is unset. */
CL_MUST_CHECK int cl_client_open(const cl_client_options *o, cl_client **out, cl_err *err);

/* Closes the channel and frees the client; NULL is a no-op. Every stream
 * of this client must have been freed before. */
void cl_client_close(cl_client *c);

/* The target this client was opened for; view valid until cl_client_close. */
const char *cl_client_target(const cl_client *c);

/* ---- unary calls ----------------------------------------------------------
 * Each sends `req` (borrowed) and on success sets *out to the unpacked
 * response, returned-owned: free it with the message's __free_unpacked
 * function (or protobuf_c_message_free_unpacked(&(*out)->base, NULL)). On
 * error *out is NULL. `st` (may be NULL) receives the status in every case.
 * Errors: as described at the top (CL_EAGAIN for transport failures, the
 * server's CL_E* code otherwise), CL_EMALFORMED (the response does not
 * decode), CL_ENOMEM. Thread-safe. */
CL_MUST_CHECK int cl_client_append(cl_client *c, const Clinlog__V1__AppendBatch *req,
                                   Clinlog__V1__AppendResponse **out, cl_client_status *st,
                                   cl_err *err);
CL_MUST_CHECK int cl_client_get_checkpoint(cl_client *c,
                                           const Clinlog__V1__GetCheckpointRequest *req,
                                           Clinlog__V1__Checkpoint **out, cl_client_status *st,
                                           cl_err *err);
CL_MUST_CHECK int cl_client_prove_inclusion(cl_client *c,
                                            const Clinlog__V1__ProveInclusionRequest *req,
                                            Clinlog__V1__InclusionProof **out, cl_client_status *st,
                                            cl_err *err);
CL_MUST_CHECK int cl_client_prove_consistency(cl_client *c,
                                              const Clinlog__V1__ProveConsistencyRequest *req,
                                              Clinlog__V1__ConsistencyProof **out,
                                              cl_client_status *st, cl_err *err);
CL_MUST_CHECK int cl_client_get_event(cl_client *c, const Clinlog__V1__GetEventRequest *req,
                                      Clinlog__V1__RecordedEvent **out, cl_client_status *st,
                                      cl_err *err);
CL_MUST_CHECK int cl_client_health_check(cl_client *c,
                                         const Grpc__Health__V1__HealthCheckRequest *req,
                                         Grpc__Health__V1__HealthCheckResponse **out,
                                         cl_client_status *st, cl_err *err);

/* Any unary method by its full path ("/clinlog.v1.Log/Append"), for methods
 * this header has no wrapper for. `resp_desc` is the response type. Same
 * contract as the wrappers. */
CL_MUST_CHECK int cl_client_unary(cl_client *c, const char *method, const ProtobufCMessage *req,
                                  const ProtobufCMessageDescriptor *resp_desc,
                                  ProtobufCMessage **out, cl_client_status *st, cl_err *err);

/* ---- server streams --------------------------------------------------------
 */

typedef struct cl_client_stream cl_client_stream;

/* Starts Read / Subscribe with `req` (borrowed). The request is sent here;
 * a server-side error (NOT_FOUND stream, bad request, server down) is
 * reported by the first cl_client_stream_next. On success *out is
 * returned-owned (cl_client_stream_free). Errors: CL_ENOMEM, CL_EAGAIN
 * (the call could not start, e.g. the client is shutting down). */
CL_MUST_CHECK int cl_client_read(cl_client *c, const Clinlog__V1__ReadRequest *req,
                                 cl_client_stream **out, cl_err *err);
CL_MUST_CHECK int cl_client_subscribe(cl_client *c, const Clinlog__V1__SubscribeRequest *req,
                                      cl_client_stream **out, cl_err *err);
/* grpc.health.v1.Health/Watch: a stream of
 * Grpc__Health__V1__HealthCheckResponse, one per change of status. */
CL_MUST_CHECK int cl_client_health_watch(cl_client *c,
                                         const Grpc__Health__V1__HealthCheckRequest *req,
                                         cl_client_stream **out, cl_err *err);
/* Cluster.FetchRecords (node to node catch-up): a stream of
 * Clinlog__V1__RecordChunk. */
CL_MUST_CHECK int cl_client_fetch_records(cl_client *c, const Clinlog__V1__FetchRecordsRequest *req,
                                          cl_client_stream **out, cl_err *err);

/* Cds.Alerts (proto/clinlog/v1/cds.proto): a stream of Clinlog__V1__Alert,
 * catch-up then live; it ends only when cancelled or the server stops. */
CL_MUST_CHECK int cl_client_cds_alerts(cl_client *c, const Clinlog__V1__AlertsRequest *req,
                                       cl_client_stream **out, cl_err *err);

/* Any method that answers with a stream, by its full path (for methods this
 * header has no wrapper for, e.g. a peer's "/etcdserverpb.Watch/Watch"):
 * sends `req` (borrowed) as the one request message and half-closes; the
 * messages are decoded as `desc`. A bidirectional method whose server keeps
 * answering after the client half-closes works too. Same contract as
 * cl_client_subscribe. */
CL_MUST_CHECK int cl_client_server_stream(cl_client *c, const char *method,
                                          const ProtobufCMessage *req,
                                          const ProtobufCMessageDescriptor *desc,
                                          cl_client_stream **out, cl_err *err);

/* Blocks for the next message. Returns 1 with *msg set to a returned-owned
 * message (protobuf_c_message_free_unpacked(*msg, NULL)): a
 * Clinlog__V1__RecordedEvent for Read, a Clinlog__V1__SubscribeResponse for
 * Subscribe. Returns 0 at the end of a stream that finished with OK, or a
 * negative CL_E* when it finished with an error (codes as for unary calls;
 * after cl_client_stream_cancel: CL_EAGAIN with status CANCELLED), or when a
 * message does not decode (CL_EMALFORMED; the call is cancelled). Once it
 * has returned 0 or an error, later calls return the same again. *msg is
 * NULL unless 1 is returned. */
CL_MUST_CHECK int cl_client_stream_next(cl_client_stream *s, ProtobufCMessage **msg, cl_err *err);

/* Cancels the call: a blocked or later cl_client_stream_next returns
 * CL_EAGAIN (status CANCELLED) unless the stream had already ended.
 * Thread-safe and async-safe with respect to cl_client_stream_next (not
 * async-signal-safe). */
void cl_client_stream_cancel(cl_client_stream *s);

/* The final status; valid (code set) once cl_client_stream_next has
 * returned 0 or an error. View valid until cl_client_stream_free. */
const cl_client_status *cl_client_stream_status(const cl_client_stream *s);

/* Cancels the call if it is still running and frees the stream; NULL is a
 * no-op. Must not run concurrently with cl_client_stream_next. */
void cl_client_stream_free(cl_client_stream *s);

/* ---- AppendStream (bulk import) --------------------------------------------
 */

/* A client-streaming call of any method (AppendStream, Devices.SubmitReadings):
 * open, send messages, finish with the one answer. As the AppendStream
 * functions below (which are this with M_APPEND_STREAM), with the answer's
 * descriptor given to finish (*out returned-owned:
 * protobuf_c_message_free_unpacked). */
typedef struct cl_client_cstream cl_client_cstream;
CL_MUST_CHECK int cl_client_cstream_open(cl_client *c, int method, cl_client_cstream **out,
                                         cl_err *err);
CL_MUST_CHECK int cl_client_cstream_send(cl_client_cstream *a, const ProtobufCMessage *m,
                                         cl_err *err);
CL_MUST_CHECK int cl_client_cstream_finish(cl_client_cstream *a,
                                           const ProtobufCMessageDescriptor *d,
                                           ProtobufCMessage **out, cl_client_status *st,
                                           cl_err *err);
void cl_client_cstream_abort(cl_client_cstream *a);

typedef struct cl_client_cstream cl_client_append_stream;

/* Opens an AppendStream call. On success *out is returned-owned: end it
 * with cl_client_append_stream_finish (which frees it) or
 * cl_client_append_stream_abort. Errors: CL_ENOMEM, CL_EAGAIN. */
CL_MUST_CHECK int cl_client_append_stream_open(cl_client *c, cl_client_append_stream **out,
                                               cl_err *err);

/* Sends one signed batch (borrowed). Batches are committed by the server in
 * order as they arrive; sends are pipelined (this returns once the batch is
 * handed to the transport, not once it is committed). If the server has
 * already ended the call with an error (a batch before this one failed), that
 * error is returned here and the stream is finished: call
 * cl_client_append_stream_finish to get the status and free it. Errors:
 * the server's CL_E* code, CL_EAGAIN (transport), CL_ENOMEM. */
CL_MUST_CHECK int cl_client_append_stream_send(cl_client_append_stream *a,
                                               const Clinlog__V1__AppendBatch *batch, cl_err *err);

/* Half-closes, waits for the summary and frees the stream (also on error).
 * On success *summary (may be NULL) is returned-owned
 * (clinlog__v1__append_stream_summary__free_unpacked). `st` (may be NULL)
 * gets the status, including "clinlog-committed-batches" when a batch
 * failed. Errors: as for unary calls (the failing batch's code). */
CL_MUST_CHECK int cl_client_append_stream_finish(cl_client_append_stream *a,
                                                 Clinlog__V1__AppendStreamSummary **summary,
                                                 cl_client_status *st, cl_err *err);

/* Cancels the call and frees the stream; NULL is a no-op. Batches already
 * committed by the server stay committed. */
void cl_client_append_stream_abort(cl_client_append_stream *a);

/* ---- helpers ----------------------------------------------------------------
 */

/* CL_E* code for a symbolic name ("CL_ECONFLICT"), 0 if unknown. */
int cl_client_errcode(const char *name);

/* CL_E* code a gRPC status implies when the server named none. */
int cl_client_errcode_of_status(int code);

/* "OK", "UNAVAILABLE", ...; static strings. */
const char *cl_client_status_name(int code);

/* ---- unary calls with their own deadline and a metadata value ------------
 */

/* As cl_client_unary, for methods whose answer carries a metadata value the
 * caller needs (the leader hint "clinlog-leader" of a follower's UNAVAILABLE)
 * or that need a deadline other than the client's.
 *  - timeout_ms > 0 is this call's deadline; <= 0: options.timeout_ms.
 *  - request_id (may be NULL or ""): sent as "x-request-id", so the server's
 *    audit record carries the caller's (a forwarded write: the follower's
 *    call's id).
 *  - md_key (borrowed, lowercase; may be NULL: none wanted) names the
 *    metadata entry to return: md_value (md_size bytes, may be NULL when
 *    md_key is) receives the value of the first trailing metadata entry of
 *    that name, or failing that of the first initial one, NUL-terminated and
 *    truncated to fit; "" if the server sent none. It is filled in every
 *    case, errors included.
 * Ownership of *out, errors and thread-safety as cl_client_unary. */
CL_MUST_CHECK int cl_client_unary_md(cl_client *c, const char *method,
                                     const ProtobufCMessage *req,
                                     const ProtobufCMessageDescriptor *resp_desc, int timeout_ms,
                                     const char *request_id, const char *md_key, char *md_value,
                                     size_t md_size, ProtobufCMessage **out, cl_client_status *st,
                                     cl_err *err);

#endif

/* The HTTP face's internals shared by http.c (the daemon, routing, the
 * FHIR engine's interactions) and http_ops.c (Bulk Data export, the audit
 * trail's AuditEvent, login and logout). Nothing outside adapters/http
 * includes this. */
#ifndef CL_ADAPTERS_HTTP_HTTP_INT_H
#define CL_ADAPTERS_HTTP_HTTP_INT_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "adapters/http/http.h"
#include "adapters/http/route.h"

#define HTTP_CDS_CARDS 4096 /* CDS Hooks cards remembered for feedback (http_cds.c) */
typedef struct http_cds_card http_cds_card;

struct cl_http {
  struct MHD_Daemon *d;
  cl_svc *svc;
  int tls;
  int64_t wait_ms;
  char *cert, *key;         /* PEM text, kept for the daemon's life */
  pthread_mutex_t cds_mu;   /* guards cds_cards and cds_next */
  http_cds_card *cds_cards; /* ring of HTTP_CDS_CARDS, allocated at first use */
  size_t cds_next;
};

typedef struct req {
  char *body; /* a POST body, accumulated */
  size_t len;
  int too_big;
} req;

/* ---- responses (http.c) ---- */

/* Queues a FHIR JSON body (taken: freed) with the request id and, for a
 * resource, its ETag and Last-Modified (rs may be NULL). */
enum MHD_Result http_send_body(struct MHD_Connection *c, int status, char *body, size_t len,
                               const char *request_id, const cl_fhir_resp *rs);
/* The same with a Location header (NULL: none) and, for a write that
 * appended, X-Clinlog-Sequence: its last log sequence (0: none). */
enum MHD_Result http_send_located(struct MHD_Connection *c, int status, char *body, size_t len,
                                  const char *request_id, const cl_fhir_resp *rs,
                                  const char *location, uint64_t seq);
/* An OperationOutcome with one issue of `code`, saying `text`. */
enum MHD_Result http_send_outcome(struct MHD_Connection *c, int status, const char *code,
                                  const char *request_id, const char *text);
/* The call's record in the audit trail, committed before its answer
 * (cl_svc_record), then the finished hook. 0, or the record failed: the
 * answer must be http_unrecorded()'s, never the data (fail closed). */
int http_done(cl_http *h, cl_req_ctx *rc, int code, const char *detail, cl_err *aerr);
enum MHD_Result http_unrecorded(struct MHD_Connection *c, const cl_req_ctx *rc, const cl_err *aerr);
/* A JSON answer (j taken) that no cache keeps (RFC 6749 section 5.1);
 * a 401 says WWW-Authenticate: Bearer. */
enum MHD_Result http_send_json(struct MHD_Connection *c, int status, json_t *j,
                               const char *request_id);
/* MHD_KeyValueIterator adding a query argument to a cl_http_params (cls);
 * stops at the 129th (p->overflow). */
enum MHD_Result http_add_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                             const char *value);
/* How long a wait for the views may take: max_ms, or less with RFC 7240's
 * Prefer: wait=<seconds> (`prefer`: the header, or NULL). */
int64_t http_prefer_wait_ms(const char *prefer, int64_t max_ms);
/* The connection's peer address as the request context holds it. */
void http_peer_of(struct MHD_Connection *c, char *out, size_t n);

/* A call's request context from the connection: request id, peer,
 * bearer token, deadline (http_cds.c). */
void http_ctx_init(cl_http *h, struct MHD_Connection *c, cl_req_ctx *rc, int method);
/* An OperationOutcome for a call the request layer refused (err's code:
 * 400, 403, 401, 404, 429 or 503). */
enum MHD_Result http_refuse(struct MHD_Connection *c, const cl_req_ctx *rc, const cl_err *err);

/* ---- FHIR writes (http_fhirw.c; admit each call themselves) ---- */

/* 1 if `method` on `rest` (the URL after the base) is a write: PUT
 * [type]/[id], POST [type], POST [base] (a Bundle). */
int http_write_route(const char *rest, const char *method);
/* Create, update, conditional create, transaction and batch Bundles. */
enum MHD_Result http_serve_write(cl_http *h, struct MHD_Connection *c, const char *rest,
                                 const char *method, req *r);

/* ---- routes besides the engine's (http_ops.c), after admission ---- */

/* $export kick-off, status, cancel and files. */
enum MHD_Result http_serve_export(cl_http *h, struct MHD_Connection *c, const cl_http_route *rt,
                                  const cl_http_params *p, cl_req_ctx *rc, const char *prefer,
                                  const char *base);
/* GET AuditEvent?... and AuditEvent/[id] over the audit projection. */
enum MHD_Result http_serve_audit(cl_http *h, struct MHD_Connection *c, const cl_http_route *rt,
                                 const cl_http_params *p, cl_req_ctx *rc, cl_proj *proj,
                                 const char *base);
/* POST /auth/login and /auth/logout (admits the call itself). */
enum MHD_Result http_serve_auth(cl_http *h, struct MHD_Connection *c, const char *url,
                                const char *method, req *r);

/* ---- SMART on FHIR (http_smart.c) ---- */

/* POST /auth/token: SMART Backend Services' token endpoint (admits the call
 * itself). */
enum MHD_Result http_serve_token(cl_http *h, struct MHD_Connection *c, const char *method, req *r);
/* GET [base]/.well-known/smart-configuration: the SMART discovery document
 * (open, like the CapabilityStatement; not recorded). */
enum MHD_Result http_serve_smart_config(cl_http *h, struct MHD_Connection *c);
/* "<scheme>://<Host>" of the request, into out. */
void http_origin(cl_http *h, struct MHD_Connection *c, char *out, size_t n);

/* ---- CDS Hooks (http_cds.c) ---- */

/* GET /cds-services, POST /cds-services/{id} and .../feedback (admits each
 * call itself; discovery is open and not recorded, like the
 * CapabilityStatement). */
enum MHD_Result http_serve_cds(cl_http *h, struct MHD_Connection *c, const char *url,
                               const char *method, req *r);
/* A request context for `method` from the connection: request id, peer,
 * bearer token, the face's deadline. */
void http_ctx_init(cl_http *h, struct MHD_Connection *c, cl_req_ctx *rc, int method);
/* An OperationOutcome for a refused call: 400, 401, 403, 404, 429 or 503
 * by err's code. */
enum MHD_Result http_refuse(struct MHD_Connection *c, const cl_req_ctx *rc, const cl_err *err);
/* The remembered cards: set up before the daemon starts, freed after it stops. */
void http_cds_init(cl_http *h);
void http_cds_free(cl_http *h);

/* ---- home-device readings (http_device.c) ---- */

/* POST /device/readings: JSON lines, one reading each (adapters/device/);
 * admits the call itself. */
enum MHD_Result http_serve_device(cl_http *h, struct MHD_Connection *c, const char *method, req *r);

#endif

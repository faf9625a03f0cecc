/* The server engine's face towards the request layer (adapters/service):
 * what a call carries into it (the request context from the transport:
 * peer, TLS and client certificate, metadata), its admission before any
 * handler runs, and the answers every handler shares (not the leader,
 * barriers, read-your-writes waits, unknown methods). See server.h. */
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "adapters/grpc/client.h"
#include "adapters/grpc/server_int.h"

/* ------------------------------------------------- the request layer */

cl_svc *srv_svc(srv_call *c) { return c->srv->svc; }
const cl_server_config *srv_config(srv_call *c) { return &c->srv->cfg; }
int srv_serving(srv_call *c) { return atomic_load(&c->srv->serving); }
int srv_shutting_down(srv_call *c) { return atomic_load(&c->srv->shutting_down); }

int srv_knows_service(srv_call *c, const char *name) {
  for (size_t i = 0; i < c->srv->nservices; i++)
    if (!strcmp(c->srv->services[i].name, name))
      return 1;
  return 0;
}

int64_t srv_deadline_ms(srv_call *c) {
  if (gpr_time_cmp(c->deadline, gpr_inf_future(c->deadline.clock_type)) == 0)
    return 0;
  gpr_timespec t = gpr_convert_clock_type(c->deadline, GPR_CLOCK_REALTIME);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The value of request metadata `key` into out ("" if absent). */
static void md_value(srv_call *c, const char *key, char *out, size_t n) {
  out[0] = '\0';
  for (size_t i = 0; i < c->req_md.count; i++)
    if (grpc_slice_str_cmp(c->req_md.metadata[i].key, key) == 0) {
      grpc_slice v = c->req_md.metadata[i].value;
      size_t l = GRPC_SLICE_LENGTH(v) < n - 1 ? GRPC_SLICE_LENGTH(v) : n - 1;
      memcpy(out, GRPC_SLICE_START_PTR(v), l);
      out[l] = '\0';
      for (size_t j = 0; j < l; j++) /* metadata is ASCII; keep what logs print tame */
        if ((unsigned char)out[j] < 0x20 || (unsigned char)out[j] > 0x7e)
          out[j] = '?';
      return;
    }
}

/* Fills the request context from the call: peer, transport security,
 * client certificate, request id, purpose of use, forwarding. */
static void fill_ctx(srv_call *c) {
  cl_req_ctx *rc = &c->rctx;
  cl_req_ctx_init(rc, c->def->method, "grpc");
  rc->deadline_ms = srv_deadline_ms(c);
  char *peer = grpc_call_get_peer(c->gc);
  if (peer) {
    snprintf(rc->peer, sizeof rc->peer, "%s", peer);
    gpr_free(peer);
  }
  char v[CL_REQ_ID_MAX];
  md_value(c, "x-request-id", v, sizeof v);
  if (v[0])
    snprintf(rc->request_id, sizeof rc->request_id, "%s", v);
  md_value(c, "clinlog-purpose-of-use", rc->purpose_of_use, sizeof rc->purpose_of_use);
  md_value(c, "authorization", rc->bearer, sizeof rc->bearer);
  if (!strncasecmp(rc->bearer, "Bearer ", 7))
    memmove(rc->bearer, rc->bearer + 7, strlen(rc->bearer + 7) + 1);
  else
    rc->bearer[0] = '\0'; /* only bearer tokens */
  md_value(c, FORWARDED_MD, v, sizeof v);
  rc->forwarded = v[0] != '\0';
  rc->auth = CL_AUTH_NONE;
  grpc_auth_context *ac = grpc_call_auth_context(c->gc);
  if (!ac)
    return;
  grpc_auth_property_iterator it =
      grpc_auth_context_find_properties_by_name(ac, GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME);
  const grpc_auth_property *p = grpc_auth_property_iterator_next(&it);
  if (p && p->value && (!strncmp(p->value, GRPC_SSL_TRANSPORT_SECURITY_TYPE, p->value_length) ||
                        !strncmp(p->value, GRPC_TLS_TRANSPORT_SECURITY_TYPE, p->value_length)))
    rc->auth = CL_AUTH_TLS;
  it = grpc_auth_context_find_properties_by_name(ac, GRPC_X509_PEM_CERT_PROPERTY_NAME);
  p = grpc_auth_property_iterator_next(&it);
  if (p && p->value && cl_pem_fingerprint(p->value, p->value_length, rc->cert_fingerprint) == 0)
    rc->auth = CL_AUTH_MTLS;
  grpc_auth_context_release(ac);
}

/* The first step of every registered method: the request context, the
 * request decoded (and its strings checked on the wire), the request
 * layer's admission (authorization, audit), then the handler. */
void srv_call_begin(srv_call *c, int ok) {
  (void)ok;
  fill_ctx(c);
  cl_err err;
  cl_err_clear(&err);
  if (c->def->request && !(c->req = cl_grpc_unpack_checked(c->payload, c->def->request, &err))) {
    srv_finish_err(c, &err);
    return;
  }
  c->admitted = 1; /* the hooks see the call: they hear how it ends, refused or not */
  if (cl_svc_admit(c->srv->svc, &c->rctx, c->req, &err) != 0) {
    srv_finish_err(c, &err);
    return;
  }
  c->def->start(c, 1);
}

void srv_finish_not_leader(srv_call *c, const cl_svc_route *route) {
  char msg[CL_REPL_ADDR_MAX + 64];
  if (route && route->leader_api[0]) {
    srv_trailer(c, "clinlog-leader", route->leader_api);
    snprintf(msg, sizeof msg, "not the leader; the leader is node %llu at %s",
             (unsigned long long)route->leader_id, route->leader_api);
  } else {
    snprintf(msg, sizeof msg, "not the leader; no leader is known (election in progress)");
  }
  c->final_code = CL_ENOTLEADER;
  srv_trailer(c, "clinlog-error", cl_errname(CL_ENOTLEADER));
  srv_finish(c, GRPC_STATUS_UNAVAILABLE, msg, NULL);
}

int srv_barrier(srv_call *c) {
  cl_err err;
  cl_err_clear(&err);
  cl_svc_route route;
  int rc = cl_svc_barrier(c->srv->svc, &c->rctx, &route, &err);
  if (rc == CL_ENOTLEADER)
    srv_finish_not_leader(c, &route);
  else if (rc)
    srv_finish_err(c, &err);
  return rc ? -1 : 0;
}

int srv_reached(srv_call *c, const char *projection, uint64_t seq, step_fn retry) {
  cl_err err;
  cl_err_clear(&err);
  int r = cl_svc_reached(c->srv->svc, projection, seq, &err);
  if (r < 0) {
    srv_finish_err(c, &err);
    return -1;
  }
  if (r)
    return 1;
  /* the wait is bounded by the call's deadline, and by 30 s without one */
  int64_t left = c->rctx.deadline_ms ? c->rctx.deadline_ms - cl_feed_now_ms() : 30000;
  if (!c->st_wait_started) {
    c->st_wait_started = 1;
    c->wait_until_ms = srv_now_ms() + (left < 30000 ? left : 30000);
  }
  if (srv_now_ms() >= c->wait_until_ms || srv_cancelled(c)) {
    uint64_t have = 0;
    if (projection) {
      cl_runner *rn = cl_svc_runner(c->srv->svc, projection);
      have = rn ? cl_proj_position(cl_runner_proj(rn)) : 0;
    } else {
      cl_log_head(cl_svc_log(c->srv->svc), &have, NULL);
    }
    char msg[160];
    snprintf(msg, sizeof msg, "this node has %s %llu of the %llu events asked for",
             projection ? "folded" : "applied", (unsigned long long)have,
             (unsigned long long)seq);
    c->final_code = CL_ETIMEDOUT;
    srv_trailer(c, "clinlog-error", cl_errname(CL_ETIMEDOUT));
    srv_finish(c, GRPC_STATUS_DEADLINE_EXCEEDED, msg, NULL);
    return -1;
  }
  srv_wait(c, c->wait_until_ms, retry);
  return 0;
}

/* ------------------------------------------------------ unknown methods */

void srv_unknown_start(srv_call *c, int ok) {
  (void)ok;
  char msg[300];
  char *m = grpc_slice_to_c_string(c->details.method);
  snprintf(msg, sizeof msg, "unknown method %s", m);
  gpr_free(m);
  srv_finish(c, GRPC_STATUS_UNIMPLEMENTED, msg, NULL);
}

void srv_unavailable_start(srv_call *c, int ok) {
  (void)ok;
  srv_finish(c, GRPC_STATUS_UNAVAILABLE, "server is shutting down", NULL);
}

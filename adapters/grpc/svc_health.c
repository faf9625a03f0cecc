/* grpc.health.v1.Health: Check and Watch, answered from the engine's
 * serving state (NOT_SERVING while it drains), for "" and each service
 * it knows. Never recorded in the audit trail. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/grpc/server_int.h"
#include "adapters/grpc/services.h"
#include "grpc/health/v1/health.pb-c.h"

/* -------------------------------------------------------------- Health */

static int known_service(srv_call *c, const char *s) { return !s[0] || srv_knows_service(c, s); }

static void svc_health_check(srv_call *c, int ok) {
  (void)ok;
  const Grpc__Health__V1__HealthCheckRequest *req = (const Grpc__Health__V1__HealthCheckRequest *)c->req;
  int known = known_service(c, req->service);
  if (!known) {
    srv_finish(c, GRPC_STATUS_NOT_FOUND, "unknown service", NULL);
    return;
  }
  Grpc__Health__V1__HealthCheckResponse r = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
  r.status = srv_serving(c) ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                                           : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
  srv_finish(c, GRPC_STATUS_OK, "", &r.base);
}

typedef struct watch {
  int known;
  int last; /* last status sent, -1 none */
} watch;

static void watch_step(srv_call *c, int ok) {
  watch *w = c->st;
  if (!ok || srv_cancelled(c)) {
    srv_finish(c, GRPC_STATUS_CANCELLED, "cancelled", NULL);
    return;
  }
  int status = !w->known ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN
               : srv_serving(c)
                   ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                   : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
  if (status != w->last) {
    w->last = status;
    Grpc__Health__V1__HealthCheckResponse r = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    r.status = status;
    srv_send_msg(c, &r.base, watch_step);
    return;
  }
  if (srv_shutting_down(c)) {
    srv_finish(c, GRPC_STATUS_UNAVAILABLE, "server is shutting down", NULL);
    return;
  }
  srv_wait(c, 0, watch_step);
}

static void svc_health_watch(srv_call *c, int ok) {
  (void)ok;
  const Grpc__Health__V1__HealthCheckRequest *req = (const Grpc__Health__V1__HealthCheckRequest *)c->req;
  watch *w = calloc(1, sizeof *w);
  if (!w) {
    srv_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
    return;
  }
  w->known = known_service(c, req->service);
  w->last = -1;
  c->st = w;
  c->st_free = free;
  watch_step(c, 1);
}

static const cl_grpc_method_def HEALTH_METHODS[] = {
    {M_HEALTH_CHECK, &grpc__health__v1__health_check_request__descriptor, svc_health_check},
    {M_HEALTH_WATCH, &grpc__health__v1__health_check_request__descriptor, svc_health_watch},
};

const cl_grpc_service cl_grpc_health_service = {
    "grpc.health.v1.Health", HEALTH_METHODS, sizeof HEALTH_METHODS / sizeof HEALTH_METHODS[0],
    NULL, NULL};

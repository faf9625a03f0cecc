/* A minimal blocking HTTP/1.1 client for the in-process benchmarks: one
 * keep-alive connection to 127.0.0.1:port, plaintext, TCP_NODELAY, one
 * request at a time, the response read whole (Content-Length only: the
 * servers measured do not chunk) into a buffer of up to 16 MiB. */
#ifndef CL_BENCH_HTTPC_H
#define CL_BENCH_HTTPC_H

#include <stddef.h>

#include "adapters/http/http.h"
#include "adapters/service/service.h"

typedef struct bench_hc {
  int fd;
  char *buf; /* the last response, headers and body, NUL-terminated */
  size_t cap;
  const char *body; /* into buf: the last response's body */
  size_t body_len;
} bench_hc;

/* Starts the HTTP face over svc on a free loopback port (plaintext, dev)
 * and connects c to it. Returns the server (cl_http_stop it after
 * bench_hc_close); exits on failure. */
cl_http *bench_hc_serve(cl_svc *svc, bench_hc *c);

/* Connects; 0, or -1 with errno set (close it all the same). */
int bench_hc_open(bench_hc *c, int port);
void bench_hc_close(bench_hc *c);
/* GET path (Accept: application/fhir+json); the status, -1 on a failed
 * connection. */
int bench_hc_get(bench_hc *c, const char *path);
/* POST body (len bytes, Content-Type `type`) to path; the status, -1 on a
 * failed connection. */
int bench_hc_post(bench_hc *c, const char *path, const char *type, const char *body, size_t len);

#endif

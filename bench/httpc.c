/* A minimal blocking HTTP/1.1 client: see httpc.h. */
#include "bench/httpc.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int bench_hc_open(bench_hc *c, int port) {
  memset(c, 0, sizeof *c);
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  c->cap = 1 << 24;
  c->buf = malloc(c->cap);
  if (c->fd < 0 || c->buf == NULL)
    return -1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return connect(c->fd, (struct sockaddr *)&a, sizeof a);
}

void bench_hc_close(bench_hc *c) {
  if (c->fd >= 0)
    close(c->fd);
  free(c->buf);
  c->fd = -1;
  c->buf = NULL;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t k = write(fd, p, n);
    if (k <= 0)
      return -1;
    p += k;
    n -= (size_t)k;
  }
  return 0;
}

/* Reads one response whole; its status or -1. */
static int read_response(bench_hc *c) {
  size_t got = 0, body_at = 0, clen = 0;
  for (;;) {
    if (got + 1 >= c->cap)
      return -1;
    ssize_t k = read(c->fd, c->buf + got, c->cap - got - 1);
    if (k <= 0)
      return -1;
    got += (size_t)k;
    c->buf[got] = '\0';
    if (!body_at) {
      char *e = strstr(c->buf, "\r\n\r\n");
      if (!e)
        continue;
      body_at = (size_t)(e - c->buf) + 4;
      char *cl = strcasestr(c->buf, "Content-Length:");
      clen = cl ? strtoul(cl + 15, NULL, 10) : 0;
    }
    if (got >= body_at + clen)
      break;
  }
  c->body = c->buf + body_at;
  c->body_len = clen;
  return atoi(c->buf + 9);
}

int bench_hc_get(bench_hc *c, const char *path) {
  char req[2048];
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: "
                   "application/fhir+json\r\n\r\n",
                   path);
  if (n < 0 || (size_t)n >= sizeof req || write_all(c->fd, req, (size_t)n))
    return -1;
  return read_response(c);
}

int bench_hc_post(bench_hc *c, const char *path, const char *type, const char *body, size_t len) {
  char req[2048];
  int n = snprintf(req, sizeof req,
                   "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\nAccept: "
                   "application/json\r\nContent-Length: %zu\r\n\r\n",
                   path, type, len);
  if (n < 0 || (size_t)n >= sizeof req || write_all(c->fd, req, (size_t)n) ||
      write_all(c->fd, body, len))
    return -1;
  return read_response(c);
}

cl_http *bench_hc_serve(cl_svc *svc, bench_hc *c) {
  cl_http_config hcfg;
  cl_http_config_init(&hcfg);
  hcfg.listen = "127.0.0.1:0";
  hcfg.dev = 1;
  cl_http *http;
  int port;
  cl_err err;
  if (cl_http_start(&hcfg, svc, &http, &port, &err) != 0) {
    fprintf(stderr, "http: %s\n", err.msg);
    exit(1);
  }
  if (bench_hc_open(c, port) != 0) {
    perror("connect");
    exit(1);
  }
  return http;
}

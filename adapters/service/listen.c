/* Socket addresses of the front doors' listeners (listen.h). */
#include "adapters/service/listen.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cl_listen_parse(const char *listen, const char *what, struct sockaddr_storage *ss,
                    int *loopback, cl_err *err) {
  char host[256];
  const char *colon;
  if (listen[0] == '[') {
    const char *rb = strchr(listen, ']');
    if (rb == NULL || rb[1] != ':')
      return cl_err_set(err, CL_EINVAL, "%s %s: expected [IPv6]:port", what, listen);
    snprintf(host, sizeof host, "%.*s", (int)(rb - listen - 1), listen + 1);
    colon = rb + 1;
  } else {
    colon = strrchr(listen, ':');
    if (colon == NULL)
      return cl_err_set(err, CL_EINVAL, "%s %s: expected host:port", what, listen);
    snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
  }
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (colon[1] == '\0' || *end != '\0' || port < 0 || port > 65535)
    return cl_err_set(err, CL_EINVAL, "%s %s: bad port", what, listen);
  memset(ss, 0, sizeof *ss);
  if (!strcmp(host, "localhost"))
    snprintf(host, sizeof host, "127.0.0.1");
  struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons((uint16_t)port);
    *loopback = (ntohl(in4->sin_addr.s_addr) >> 24) == 127;
  } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    *loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
  } else {
    return cl_err_set(err, CL_EINVAL, "%s %s: not an IP address", what, listen);
  }
  return 0;
}

void cl_listen_peer(const struct sockaddr *sa, char *out, size_t n) {
  char host[INET6_ADDRSTRLEN] = "";
  out[0] = '\0';
  if (sa == NULL)
    return;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    snprintf(out, n, "ipv4:%s:%d", host, ntohs(in->sin_port));
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in = (const struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &in->sin6_addr, host, sizeof host);
    snprintf(out, n, "ipv6:[%s]:%d", host, ntohs(in->sin6_port));
  }
}

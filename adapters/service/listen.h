/* Socket addresses for the front doors that open their own listening
 * sockets (the HTTP face, the MLLP listener): "HOST:PORT" parsing with the
 * loopback test plaintext depends on, and a peer's address as the request
 * context names it ("ipv4:127.0.0.1:5500", "ipv6:[::1]:5500", the form
 * gRPC uses).
 *
 * Thread-safety: no shared state. */
#ifndef CL_ADAPTERS_SERVICE_LISTEN_H
#define CL_ADAPTERS_SERVICE_LISTEN_H

#include <stddef.h>
#include <sys/socket.h>

#include "store/err.h"

/* Parses `listen` ("127.0.0.1:7528", "localhost:0", "[::1]:7528"; an IP
 * address, not a name but localhost) into *ss; *loopback 1 for a
 * loopback address. `what` names the option in errors ("http listen").
 * Errors: CL_EINVAL naming what is wrong. */
CL_MUST_CHECK int cl_listen_parse(const char *listen, const char *what, struct sockaddr_storage *ss,
                                  int *loopback, cl_err *err);

/* The address sa (borrowed) as "ipv4:HOST:PORT" or "ipv6:[HOST]:PORT" into
 * out (n bytes); "" for another family or NULL. */
void cl_listen_peer(const struct sockaddr *sa, char *out, size_t n);

#endif

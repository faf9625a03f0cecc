/* etcd 3.4 as a benchmark peer: members started, awaited and stopped
 * (etcdpeer.h). Moved out of bench_peer_etcd.c so the Put and the Watch
 * benchmarks start etcd the same way. */
#include "bench/etcdpeer.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/benchutil.h"
#include "bench/workload.h"
#include "etcd/rpc.pb-c.h"

static const char PUT[] = "/etcdserverpb.KV/Put";
static const char STATUS[] = "/etcdserverpb.Maintenance/Status";

int bench_etcd_find(const char *opt, char *out, size_t n) {
  if (opt) {
    snprintf(out, n, "%s", opt);
    return access(out, X_OK) == 0 ? 0 : -1;
  }
  const char *path = getenv("PATH");
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path && path[0] ? path : "/usr/bin:/bin");
  char *save = NULL;
  for (char *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
    snprintf(out, n, "%s/etcd", d);
    if (access(out, X_OK) == 0)
      return 0;
  }
  return -1;
}

static int member_start(const char *etcd, bench_etcd_member *m, const char *cluster) {
  char client[64], peer[64];
  snprintf(client, sizeof client, "http://127.0.0.1:%d", m->client_port);
  snprintf(peer, sizeof peer, "http://127.0.0.1:%d", m->peer_port);
  char *const argv[] = {(char *)etcd,
                        "--name",
                        m->name,
                        "--data-dir",
                        m->dir,
                        "--listen-client-urls",
                        client,
                        "--advertise-client-urls",
                        client,
                        "--listen-peer-urls",
                        peer,
                        "--initial-advertise-peer-urls",
                        peer,
                        "--initial-cluster",
                        (char *)cluster,
                        "--initial-cluster-state",
                        "new",
                        "--initial-cluster-token",
                        "clinlog-bench-etcd",
                        "--logger",
                        "zap",
                        "--log-outputs",
                        "stderr",
                        NULL};
  m->pid = fork();
  if (m->pid < 0) {
    m->pid = 0;
    return -1;
  }
  if (m->pid == 0) {
    int fd = open(m->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    execv(argv[0], argv);
    _exit(127);
  }
  return 0;
}

/* SIGTERM, SIGKILL after 10 s; returns 1 if it had to be killed. */
static int member_stop(bench_etcd_member *m) {
  if (m->pid <= 0)
    return 0;
  kill(m->pid, SIGTERM);
  int st, killed = 0;
  for (int i = 0; i < 200; i++) {
    if (waitpid(m->pid, &st, WNOHANG) == m->pid) {
      m->pid = 0;
      return 0;
    }
    bench_sleep_ms(50);
  }
  kill(m->pid, SIGKILL);
  killed = 1;
  while (waitpid(m->pid, &st, 0) < 0 && errno == EINTR)
    ;
  m->pid = 0;
  return killed;
}

/* ---------------------------------------------------------- etcd calls */

cl_client *bench_etcd_client(const char *target, int timeout_ms) {
  cl_client_options o;
  cl_client_options_init(&o);
  o.target = target;
  o.plaintext = 1;
  o.timeout_ms = timeout_ms;
  cl_client *c = NULL;
  cl_err err;
  if (cl_client_open(&o, &c, &err) != 0) {
    fprintf(stderr, "clinlog-bench: etcd client for %s: %s\n", target, err.msg);
    return NULL;
  }
  return c;
}

/* Maintenance.Status of one member with a 1 s deadline: its own id, the
 * leader it sees (0: none) and its version. 0, or -1 with err set. */
static int status(cl_client *c, uint64_t *self, uint64_t *leader, char *version, size_t vn,
                  cl_err *err) {
  Etcdserverpb__StatusRequest req = ETCDSERVERPB__STATUS_REQUEST__INIT;
  ProtobufCMessage *out = NULL;
  if (cl_client_unary_md(c, STATUS, &req.base, &etcdserverpb__status_response__descriptor, 1000,
                         NULL, NULL, NULL, 0, &out, NULL, err) != 0)
    return -1;
  Etcdserverpb__StatusResponse *s = (Etcdserverpb__StatusResponse *)out;
  *self = s->header ? s->header->member_id : 0;
  *leader = s->leader;
  if (version)
    snprintf(version, vn, "%s", s->version ? s->version : "?");
  protobuf_c_message_free_unpacked(out, NULL);
  return 0;
}

int bench_etcd_put(cl_client *c, const uint8_t *key, size_t kn, const uint8_t *val, size_t vn,
                   int timeout_ms, cl_err *err) {
  Etcdserverpb__PutRequest req = ETCDSERVERPB__PUT_REQUEST__INIT;
  req.key = (ProtobufCBinaryData){kn, (uint8_t *)key};
  req.value = (ProtobufCBinaryData){vn, (uint8_t *)val};
  ProtobufCMessage *out = NULL;
  int rc = cl_client_unary_md(c, PUT, &req.base, &etcdserverpb__put_response__descriptor,
                              timeout_ms, NULL, NULL, NULL, 0, &out, NULL, err);
  if (rc == 0) {
    Etcdserverpb__PutResponse *r = (Etcdserverpb__PutResponse *)out;
    if (!r->header || r->header->revision <= 0) /* every applied Put has a revision */
      rc = cl_err_set(err, CL_EMALFORMED, "Put answered without a revision");
    protobuf_c_message_free_unpacked(out, NULL);
  }
  return rc;
}

/* The response (headers and body, NUL-terminated, returned-owned: free())
 * of a plain HTTP GET of `path` on a member's client port, or NULL. etcd
 * serves HTTP (/health, /metrics) and gRPC on the same port. */
static char *http_get(int port, const char *path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return NULL;
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct timeval tv = {2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  char req[256];
  int rn = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
  size_t cap = 1 << 20, n = 0;
  char *buf = malloc(cap + 1);
  if (!buf || connect(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      write(fd, req, (size_t)rn) != rn) {
    free(buf);
    close(fd);
    return NULL;
  }
  for (ssize_t k; n < cap && (k = read(fd, buf + n, cap - n)) > 0;)
    n += (size_t)k;
  buf[n] = '\0';
  close(fd);
  return buf;
}

/* A counter from a member's Prometheus /metrics, or -1. */
static double metric(int port, const char *name) {
  char *buf = http_get(port, "/metrics");
  double v = -1;
  size_t nl = strlen(name);
  for (char *p = buf; p && (p = strstr(p, name)) != NULL; p += nl)
    if ((p == buf || p[-1] == '\n') && p[nl] == ' ') {
      v = strtod(p + nl + 1, NULL);
      break;
    }
  free(buf);
  return v;
}

/* 1 when the member's /health says {"health":"true"} (it serves clients
 * and sees a leader). */
static int healthy(int port) {
  char *buf = http_get(port, "/health");
  int ok = buf && strstr(buf, "\"health\":\"true\"") != NULL;
  free(buf);
  return ok;
}

double bench_etcd_wal_fsyncs(const bench_etcd *e) {
  double sum = 0;
  for (int i = 0; i < e->n; i++) {
    double v = metric(e->ms[i].client_port, "etcd_disk_wal_fsync_duration_seconds_count");
    if (v < 0)
      return -1;
    sum += v;
  }
  return sum;
}

double bench_etcd_cpu_s(const bench_etcd *e) {
  double sum = 0;
  for (int i = 0; i < e->n; i++) {
    double v = bench_proc_cpu_s(e->ms[i].pid);
    if (v < 0)
      return -1;
    sum += v;
  }
  return sum;
}

/* ---------------------------------------------------------- up, down */

int bench_etcd_args(int argc, char **argv, const char **base, const char **etcd, int *quick,
                    int *json, double *seconds) {
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--dir") && i + 1 < argc)
      *base = argv[++i];
    else if (!strcmp(argv[i], "--etcd") && i + 1 < argc)
      *etcd = argv[++i];
    else if (!strcmp(argv[i], "--quick"))
      *quick = 1;
    else if (!strcmp(argv[i], "--json"))
      *json = 1;
    else if (seconds && !strcmp(argv[i], "--seconds") && i + 1 < argc && atof(argv[i + 1]) > 0)
      *seconds = atof(argv[++i]);
    else
      return -1;
  }
  return 0;
}

int bench_etcd_prepare(const char *cmd, const char *opt, const char *base, char *etcd, size_t n) {
  if (bench_etcd_find(opt, etcd, n) != 0) {
    fprintf(stderr,
            "%s: skipped: %s not found (Debian's etcd-server; scripts/install-etcd.sh "
            "installs it, or give --etcd PATH)\n",
            cmd, opt ? opt : "etcd");
    return 3;
  }
  if (sodium_init() < 0)
    return 1;
  if (mkdir(base, 0700) != 0 && errno != EEXIST) {
    fprintf(stderr, "%s: cannot create %s: %s\n", cmd, base, strerror(errno));
    return 1;
  }
  return 0;
}

/* A member that exited: why[] says so. 1 if one did. */
static int any_exited(bench_etcd *e, char *why, size_t wn) {
  for (int i = 0; i < e->n; i++) {
    int st;
    if (e->ms[i].pid > 0 && waitpid(e->ms[i].pid, &st, WNOHANG) == e->ms[i].pid) {
      e->ms[i].pid = 0;
      snprintf(why, wn, "%s exited at start; see %s", e->ms[i].name, e->ms[i].log);
      return 1;
    }
  }
  return 0;
}

int bench_etcd_up(bench_etcd *e, const char *etcd, const char *base, int n, const char *cmd,
                  int quiet, char *why, size_t wn) {
  memset(e, 0, sizeof *e);
  e->n = n < 1 ? 1 : n > BENCH_ETCD_MAX_MEMBERS ? BENCH_ETCD_MAX_MEMBERS : n;
  e->leader = -1;
  snprintf(e->version, sizeof e->version, "?");
  int ports[2 * BENCH_ETCD_MAX_MEMBERS];
  if (bench_free_ports(ports, 2 * e->n) != 0) {
    snprintf(why, wn, "no free loopback ports");
    return -1;
  }
  char cluster[512];
  size_t cl = 0;
  for (int i = 0; i < e->n; i++) {
    bench_etcd_member *m = &e->ms[i];
    char name[16]; /* not m->name as a source: gcc's -Wrestrict sees one object */
    snprintf(name, sizeof name, "e%d", i + 1);
    snprintf(m->name, sizeof m->name, "%s", name);
    m->client_port = ports[2 * i];
    m->peer_port = ports[2 * i + 1];
    snprintf(m->target, sizeof m->target, "127.0.0.1:%d", m->client_port);
    snprintf(m->dir, sizeof m->dir, "%s/%s", base, name);
    snprintf(m->log, sizeof m->log, "%s/%s.log", base, name);
    bench_rmrf(m->dir);
    unlink(m->log);
    cl += (size_t)snprintf(cluster + cl, sizeof cluster - cl, "%s%s=http://127.0.0.1:%d",
                           i ? "," : "", m->name, m->peer_port);
  }
  if (!quiet)
    fprintf(stderr, "%s: starting %d etcd member%s under %s\n", cmd, e->n, e->n > 1 ? "s" : "",
            base);
  for (int i = 0; i < e->n; i++)
    if (member_start(etcd, &e->ms[i], cluster) != 0) {
      snprintf(why, wn, "cannot start %s", etcd);
      return -1;
    }

  /* healthy: every member's /health says so (before that a member accepts
   * connections on its client port but does not answer them, and the gRPC
   * core backs off), then every member answers Status and names the same
   * leader, and a Put through the leader is applied; up to 30 s in all */
  double t_start = bench_mono();
  for (int i = 0; i < e->n; i++)
    while (!healthy(e->ms[i].client_port)) {
      if (any_exited(e, why, wn))
        return -1;
      if (bench_mono() - t_start > 30) {
        snprintf(why, wn, "%s not healthy after 30 s; see %s", e->ms[i].name, e->ms[i].log);
        return -1;
      }
      bench_sleep_ms(100);
    }
  cl_client *cs[BENCH_ETCD_MAX_MEMBERS] = {0};
  int failed = 0;
  for (int i = 0; i < e->n && !failed; i++)
    if (!(cs[i] = bench_etcd_client(e->ms[i].target, 30000))) {
      snprintf(why, wn, "no client for %s", e->ms[i].target);
      failed = 1;
    }
  cl_err serr = {0};
  while (!failed && e->leader < 0) {
    uint64_t lid = 0;
    int agree = 1;
    for (int i = 0; i < e->n; i++) {
      uint64_t self, l;
      if (status(cs[i], &self, &l, e->version, sizeof e->version, &serr) != 0 || l == 0) {
        agree = 0;
        break;
      }
      e->ms[i].id = self;
      if (lid && l != lid)
        agree = 0;
      lid = l;
    }
    for (int i = 0; agree && i < e->n; i++)
      if (e->ms[i].id == lid)
        e->leader = i;
    failed = any_exited(e, why, wn);
    if (e->leader < 0 && !failed && bench_mono() - t_start > 30) {
      snprintf(why, wn, "no leader after 30 s (last Status error: %s); see %s/e*.log",
               serr.msg[0] ? serr.msg : "none", base);
      failed = 1;
    }
    if (e->leader < 0 && !failed)
      bench_sleep_ms(100);
  }
  for (int i = 0; i < e->n; i++)
    if (cs[i])
      cl_client_close(cs[i]);
  if (failed)
    return -1;
  if (!(e->lead = bench_etcd_client(e->ms[e->leader].target, 30000))) {
    snprintf(why, wn, "no client for the leader %s", e->ms[e->leader].target);
    return -1;
  }
  cl_err err;
  static const uint8_t k[] = "bench/ready";
  if (bench_etcd_put(e->lead, k, sizeof k - 1, (const uint8_t *)"1", 1, 5000, &err) != 0) {
    snprintf(why, wn, "first Put: %s", err.msg);
    return -1;
  }
  if (!quiet)
    fprintf(stderr, "%s: etcd %s, leader %s, ready in %.1f s\n", cmd, e->version,
            e->ms[e->leader].name, bench_mono() - t_start);
  return 0;
}

int bench_etcd_down(bench_etcd *e, int keep_logs) {
  if (e->lead)
    cl_client_close(e->lead);
  e->lead = NULL;
  int hung = 0;
  for (int i = 0; i < e->n; i++)
    hung += member_stop(&e->ms[i]);
  for (int i = 0; i < e->n; i++) {
    bench_rmrf(e->ms[i].dir);
    if (!keep_logs)
      unlink(e->ms[i].log);
  }
  return hung;
}

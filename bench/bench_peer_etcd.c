/* clinlog-bench etcd: etcd 3.4 (Debian's etcd-server), 3 members, the peer
 * that clinlog's 3-node figures (clinlog-bench cluster) are compared with.
 *
 *   clinlog-bench etcd [--etcd PATH] [--dir D] [--quick] [--json] [--seconds S]
 *
 * Starts three etcd processes on free loopback ports (client and peer URLs
 * plain http), data directories and logs under D (default
 * /tmp/clinlog-bench-etcd), a new cluster (--initial-cluster-state new).
 * Durability is etcd's default and cannot be turned down in 3.4: a Put is
 * answered once its Raft entry is committed, i.e. fsynced to the WAL of a
 * majority (the leader's own fsync included), as clinlog's Append on a
 * cluster returns once a majority has it synced.
 *
 * The load generator is the one clinlog's benchmarks use: the clinlog C
 * client (adapters/grpc/client.c, the gRPC C core), here calling
 * /etcdserverpb.KV/Put through cl_client_unary, with the subset of etcd's
 * messages in bench/etcd/rpc.proto. One channel to the leader (found with
 * Maintenance.Status, as clinlog-bench cluster appends to clinlog's
 * leader); `conc` threads share it, each with its own calls, closed loop,
 * for S seconds (5; --quick 2) per scenario. Each Put writes a new key
 * ("ev/" and 32 hex digits of a fresh random id: an append, nothing
 * overwritten) whose value is a serialized benchmark event
 * (bench_make_event, the bytes clinlog's benchmarks append; 256 per thread,
 * reused round robin). One event per call: concurrency 1, 16 and 64.
 *
 * Per scenario: Puts/s; latency p50/p90/p99/p99.9 of one Put (ms); server
 * CPU per Put (µs: utime + stime of the three etcd processes from /proc,
 * before and after); client CPU per Put (getrusage of this process); WAL
 * fsyncs per Put, summed over the three members
 * (etcd_disk_wal_fsync_duration_seconds_count from each member's /metrics,
 * before and after); and at the end each member's peak RSS (VmHWM).
 *
 * Everything is stopped (SIGTERM, SIGKILL after 10 s) and D's member
 * directories removed at the end; the logs too unless something failed. */
#include "bench/bench_peer_etcd.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
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

#define MEMBERS 3
#define MAX_CONC 64
#define BODIES 256 /* distinct values per thread, reused round robin */

static const char PUT[] = "/etcdserverpb.KV/Put";
static const char STATUS[] = "/etcdserverpb.Maintenance/Status";

typedef struct member {
  pid_t pid;
  int client_port, peer_port;
  char name[8];
  char dir[4200], log[4200];
  char target[64]; /* 127.0.0.1:client_port */
  uint64_t id;     /* etcd's member id, from Status */
} member;

/* ---------------------------------------------------------- processes */

/* The etcd to run: `opt`, or the first "etcd" on PATH. 0 or -1. */
static int find_etcd(const char *opt, char *out, size_t n) {
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

static int member_start(const char *etcd, member *m, const char *cluster) {
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
static int member_stop(member *m) {
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

static cl_client *client_open(const char *target) {
  cl_client_options o;
  cl_client_options_init(&o);
  o.target = target;
  o.plaintext = 1;
  o.timeout_ms = 30000;
  cl_client *c = NULL;
  cl_err err;
  if (cl_client_open(&o, &c, &err) != 0) {
    fprintf(stderr, "clinlog-bench etcd: client for %s: %s\n", target, err.msg);
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

/* One Put of key/value; 0, or a CL_E* code with err set. */
static int put(cl_client *c, const uint8_t *key, size_t kn, const uint8_t *val, size_t vn,
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

/* WAL fsyncs of the three members together, or -1. */
static double wal_fsyncs(const member *ms) {
  double sum = 0;
  for (int i = 0; i < MEMBERS; i++) {
    double v = metric(ms[i].client_port, "etcd_disk_wal_fsync_duration_seconds_count");
    if (v < 0)
      return -1;
    sum += v;
  }
  return sum;
}

static double members_cpu_s(const member *ms) {
  double sum = 0;
  for (int i = 0; i < MEMBERS; i++) {
    double v = bench_proc_cpu_s(ms[i].pid);
    if (v < 0)
      return -1;
    sum += v;
  }
  return sum;
}

/* ---------------------------------------------------------- load */

typedef struct worker {
  pthread_t t;
  cl_client *c; /* shared: one channel to the leader */
  ProtobufCBinaryData body[BODIES];
  int64_t start_ns, end_ns;
  double *lat; /* ms per Put */
  size_t n, cap;
  char err[300]; /* "Put: " and a cl_err message */
} worker;

static void *work(void *arg) {
  worker *w = arg;
  uint8_t key[3 + 32];
  uint8_t id[16];
  static const char hex[] = "0123456789abcdef";
  memcpy(key, "ev/", 3);
  size_t b = 0;
  while (bench_wall_ns() < w->start_ns)
    ;
  for (;;) {
    int64_t t0 = bench_wall_ns();
    if (t0 >= w->end_ns)
      break;
    randombytes_buf(id, sizeof id);
    for (int i = 0; i < 16; i++) {
      key[3 + 2 * i] = (uint8_t)hex[id[i] >> 4];
      key[4 + 2 * i] = (uint8_t)hex[id[i] & 15];
    }
    const ProtobufCBinaryData *v = &w->body[b++ % BODIES];
    cl_err err;
    if (put(w->c, key, sizeof key, v->data, v->len, 0, &err) != 0) {
      snprintf(w->err, sizeof w->err, "Put: %s", err.msg);
      break;
    }
    if (bench_lat_push(&w->lat, &w->n, &w->cap, (double)(bench_wall_ns() - t0) / 1e6)) {
      snprintf(w->err, sizeof w->err, "out of memory");
      break;
    }
  }
  return NULL;
}

typedef struct scen {
  int conc;
  size_t puts;
  double ops, p50, p90, p99, p999;
  double server_us, client_us, fsyncs_per_put;
} scen;

static int measure(const member *ms, cl_client *c, worker *ws, scen *s, double seconds, char *why,
                   size_t wn) {
  double fs0 = wal_fsyncs(ms);
  double srv0 = members_cpu_s(ms), cli0 = bench_self_cpu_s();
  int64_t start = bench_wall_ns() + 50 * 1000000LL;
  for (int i = 0; i < s->conc; i++) {
    worker *w = &ws[i];
    w->c = c;
    w->n = 0;
    w->err[0] = '\0';
    w->start_ns = start;
    w->end_ns = start + (int64_t)(seconds * 1e9);
    if (pthread_create(&w->t, NULL, work, w) != 0)
      abort();
  }
  s->puts = 0;
  for (int i = 0; i < s->conc; i++) {
    pthread_join(ws[i].t, NULL);
    s->puts += ws[i].n;
  }
  double srv1 = members_cpu_s(ms), cli1 = bench_self_cpu_s();
  double dt = (double)(bench_wall_ns() - start) / 1e9;
  double fs1 = wal_fsyncs(ms);
  for (int i = 0; i < s->conc; i++)
    if (ws[i].err[0]) {
      snprintf(why, wn, "%s", ws[i].err);
      return -1;
    }
  double *all = malloc((s->puts ? s->puts : 1) * sizeof *all);
  if (!all)
    abort();
  size_t k = 0;
  for (int i = 0; i < s->conc; i++) {
    memcpy(all + k, ws[i].lat, ws[i].n * sizeof *all);
    k += ws[i].n;
  }
  qsort(all, s->puts, sizeof *all, bench_cmp_double);
  double n = s->puts ? (double)s->puts : 1;
  s->ops = (double)s->puts / dt;
  s->p50 = bench_pct(all, s->puts, 0.5);
  s->p90 = bench_pct(all, s->puts, 0.9);
  s->p99 = bench_pct(all, s->puts, 0.99);
  s->p999 = bench_pct(all, s->puts, 0.999);
  s->server_us = srv0 >= 0 && srv1 >= 0 ? (srv1 - srv0) * 1e6 / n : -1;
  s->client_us = (cli1 - cli0) * 1e6 / n;
  s->fsyncs_per_put = fs0 >= 0 && fs1 >= 0 ? (fs1 - fs0) / n : -1;
  free(all);
  return 0;
}

/* ,"name":v with `prec` decimals, or null when v < 0 (could not be read). */
static void print_num(const char *name, double v, int prec) {
  if (v < 0)
    printf(",\"%s\":null", name);
  else
    printf(",\"%s\":%.*f", name, prec, v);
}

/* ---------------------------------------------------------- main */

static int usage(void) {
  fprintf(stderr, "usage: clinlog-bench etcd [--etcd PATH] [--dir D] [--quick] [--json] "
                  "[--seconds S]\n");
  return 2;
}

int bench_peer_etcd_main(int argc, char **argv) {
  const char *base = "/tmp/clinlog-bench-etcd", *etcd_opt = NULL;
  int quick = 0, json = 0;
  double seconds = 0;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--dir") && i + 1 < argc)
      base = argv[++i];
    else if (!strcmp(argv[i], "--etcd") && i + 1 < argc)
      etcd_opt = argv[++i];
    else if (!strcmp(argv[i], "--quick"))
      quick = 1;
    else if (!strcmp(argv[i], "--json"))
      json = 1;
    else if (!strcmp(argv[i], "--seconds") && i + 1 < argc && atof(argv[i + 1]) > 0)
      seconds = atof(argv[++i]);
    else
      return usage();
  }
  if (seconds <= 0)
    seconds = quick ? 2 : 5;
  char etcd[PATH_MAX];
  if (find_etcd(etcd_opt, etcd, sizeof etcd) != 0) {
    fprintf(stderr,
            "clinlog-bench etcd: skipped: %s not found (Debian's etcd-server; "
            "scripts/install-deps.sh installs it, or give --etcd PATH)\n",
            etcd_opt ? etcd_opt : "etcd");
    return 3;
  }
  if (sodium_init() < 0)
    return 1;
  if (mkdir(base, 0700) != 0 && errno != EEXIST) {
    fprintf(stderr, "clinlog-bench etcd: cannot create %s: %s\n", base, strerror(errno));
    return 1;
  }

  member ms[MEMBERS];
  memset(ms, 0, sizeof ms);
  int ports[2 * MEMBERS];
  if (bench_free_ports(ports, 2 * MEMBERS) != 0) {
    fprintf(stderr, "clinlog-bench etcd: no free loopback ports\n");
    return 1;
  }
  char cluster[512];
  size_t cl = 0;
  for (int i = 0; i < MEMBERS; i++) {
    member *m = &ms[i];
    char name[8]; /* not m->name as a source: gcc's -Wrestrict sees one object */
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

  int failed = 0;
  char why[4608] = ""; /* may name D */
  char version[32] = "?";
  cl_client *lead = NULL;
  int leader = -1;
  worker *ws = calloc(MAX_CONC, sizeof *ws);
  if (!ws)
    abort();
  unsigned seed = 77;
  size_t body_bytes = 0;
  for (int i = 0; i < MAX_CONC; i++)
    for (int k = 0; k < BODIES; k++) {
      bench_make_event(&ws[i].body[k], &seed);
      body_bytes += ws[i].body[k].len;
    }

  if (!json)
    fprintf(stderr, "clinlog-bench etcd: starting 3 members under %s\n", base);
  for (int i = 0; i < MEMBERS && !failed; i++)
    if (member_start(etcd, &ms[i], cluster) != 0) {
      snprintf(why, sizeof why, "cannot start %s", etcd);
      failed = 1;
    }

  /* healthy: every member's /health says so (before that a member accepts
   * connections on its client port but does not answer them, and the gRPC
   * core backs off), then every member answers Status and names the same
   * leader, and a Put through the leader is applied; up to 30 s in all */
  double t_start = bench_mono();
  for (int i = 0; i < MEMBERS && !failed; i++)
    while (!healthy(ms[i].client_port)) {
      int st;
      if (waitpid(ms[i].pid, &st, WNOHANG) == ms[i].pid) {
        ms[i].pid = 0;
        snprintf(why, sizeof why, "%s exited at start; see %s", ms[i].name, ms[i].log);
        failed = 1;
        break;
      }
      if (bench_mono() - t_start > 30) {
        snprintf(why, sizeof why, "%s not healthy after 30 s; see %s", ms[i].name, ms[i].log);
        failed = 1;
        break;
      }
      bench_sleep_ms(100);
    }
  cl_client *cs[MEMBERS] = {0};
  for (int i = 0; i < MEMBERS && !failed; i++)
    if (!(cs[i] = client_open(ms[i].target)))
      failed = 1;
  cl_err serr = {0};
  while (!failed && leader < 0) {
    uint64_t lid = 0;
    int agree = 1;
    for (int i = 0; i < MEMBERS; i++) {
      uint64_t self, l;
      if (status(cs[i], &self, &l, version, sizeof version, &serr) != 0 || l == 0) {
        agree = 0;
        break;
      }
      ms[i].id = self;
      if (lid && l != lid)
        agree = 0;
      lid = l;
    }
    for (int i = 0; agree && i < MEMBERS; i++)
      if (ms[i].id == lid)
        leader = i;
    for (int i = 0; i < MEMBERS; i++) {
      int st;
      if (ms[i].pid > 0 && waitpid(ms[i].pid, &st, WNOHANG) == ms[i].pid) {
        ms[i].pid = 0;
        snprintf(why, sizeof why, "%s exited at start; see %s", ms[i].name, ms[i].log);
        failed = 1;
      }
    }
    if (leader < 0 && !failed && bench_mono() - t_start > 30) {
      snprintf(why, sizeof why, "no leader after 30 s (last Status error: %s); see %s/e*.log",
               serr.msg[0] ? serr.msg : "none", base);
      failed = 1;
    }
    if (leader < 0 && !failed)
      bench_sleep_ms(100);
  }
  for (int i = 0; i < MEMBERS; i++)
    if (cs[i])
      cl_client_close(cs[i]);
  if (!failed && !(lead = client_open(ms[leader].target)))
    failed = 1;
  if (!failed) {
    cl_err err;
    static const uint8_t k[] = "bench/ready";
    if (put(lead, k, sizeof k - 1, (const uint8_t *)"1", 1, 5000, &err) != 0) {
      snprintf(why, sizeof why, "first Put: %s", err.msg);
      failed = 1;
    }
  }
  if (!failed && !json)
    fprintf(stderr, "clinlog-bench etcd: etcd %s, leader %s, ready in %.1f s\n", version,
            ms[leader].name, bench_mono() - t_start);

  char machine[128];
  bench_machine(machine, sizeof machine);
  const int concs[3] = {1, 16, 64};
  scen sc[3];
  int nsc = 0;
  if (!failed && !json)
    printf("clinlog-bench etcd — %s; etcd %s, 3 members on loopback (durable: a Put\n"
           "returns once its Raft entry is fsynced by a majority); KV.Put through the\n"
           "leader on one gRPC channel (the clinlog C client), a new key per Put, value\n"
           "%zu bytes (a benchmark event); %.0f s per scenario\n\n"
           "%-4s | %9s %8s %8s %8s %8s | %9s %9s %8s\n",
           machine, version, body_bytes / (MAX_CONC * BODIES), seconds, "conc", "puts/s", "p50 ms",
           "p90 ms", "p99 ms", "p99.9", "srv µs/op", "cli µs/op", "fsync/op");
  for (int ci = 0; ci < 3 && !failed; ci++) {
    scen *s = &sc[nsc];
    memset(s, 0, sizeof *s);
    s->conc = concs[ci];
    if (measure(ms, lead, ws, s, seconds, why, sizeof why) != 0) {
      failed = 1;
      break;
    }
    nsc++;
    if (!json) {
      printf("%-4d | %9.0f %8.2f %8.2f %8.2f %8.2f | %9.1f %9.1f %8.3f\n", s->conc, s->ops, s->p50,
             s->p90, s->p99, s->p999, s->server_us, s->client_us, s->fsyncs_per_put);
      fflush(stdout);
    } else {
      fprintf(stderr, "  etcd     batch  1 conc %2d: %8.0f ev/s p50 %7.2f ms p99 %7.2f ms\n",
              s->conc, s->ops, s->p50, s->p99);
    }
  }
  double hwm[MEMBERS];
  for (int i = 0; i < MEMBERS; i++)
    hwm[i] = ms[i].pid > 0 ? bench_proc_hwm_mb(ms[i].pid) : -1;
  if (json && nsc) {
    printf("{\"system\":\"etcd\",\"server_version\":\"%s\",\"members\":%d,\"driven\":\"leader\","
           "\"machine\":\"%s\",\"quick\":%s,\"seconds_per_scenario\":%.1f,\"value_bytes\":%zu,"
           "\"key_bytes\":35,\"durable\":true,\"scenarios\":[",
           version, MEMBERS, machine, quick ? "true" : "false", seconds,
           body_bytes / (MAX_CONC * BODIES));
    for (int i = 0; i < nsc; i++) {
      const scen *s = &sc[i];
      printf("%s{\"batch\":1,\"concurrency\":%d,\"events\":%zu,\"events_per_s\":%.0f,"
             "\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f",
             i ? "," : "", s->conc, s->puts, s->ops, s->p50, s->p90, s->p99, s->p999);
      print_num("server_cpu_us_per_event", s->server_us, 1);
      print_num("client_cpu_us_per_event", s->client_us, 1);
      print_num("fsyncs_per_event", s->fsyncs_per_put, 4);
      printf("}");
    }
    printf("],\"member_peak_rss_mb\":[");
    for (int i = 0; i < MEMBERS; i++)
      printf(hwm[i] < 0 ? "%snull" : "%s%.1f", i ? "," : "", hwm[i]);
    printf("],\"ok\":%s}\n", failed ? "false" : "true");
  } else if (!json && nsc) {
    printf("\npeak RSS (VmHWM) MB: %s %.1f (leader), %s %.1f, %s %.1f\n", ms[leader].name,
           hwm[leader], ms[(leader + 1) % 3].name, hwm[(leader + 1) % 3], ms[(leader + 2) % 3].name,
           hwm[(leader + 2) % 3]);
  }
  if (failed)
    fprintf(stderr, "clinlog-bench etcd: %s\n", why);

  if (lead)
    cl_client_close(lead);
  int hung = 0;
  for (int i = 0; i < MEMBERS; i++)
    hung += member_stop(&ms[i]);
  if (hung)
    fprintf(stderr, "clinlog-bench etcd: %d member(s) ignored SIGTERM for 10 s and were killed\n",
            hung);
  for (int i = 0; i < MEMBERS; i++) {
    bench_rmrf(ms[i].dir);
    if (!failed)
      unlink(ms[i].log);
  }
  if (failed)
    fprintf(stderr, "clinlog-bench etcd: logs kept in %s\n", base);
  else
    rmdir(base);
  for (int i = 0; i < MAX_CONC; i++) {
    free(ws[i].lat);
    for (int k = 0; k < BODIES; k++)
      free(ws[i].body[k].data);
  }
  free(ws);
  return failed ? 1 : 0;
}

/* See benchutil.h. */
#include "bench/benchutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/workload.h"
#include "clinlog/v1/event.pb-c.h"

/* ---------------------------------------------------------- workload */

void bench_batch_make(bench_batch *g, size_t n, const cl_signer *key, unsigned *seed) {
  ProtobufCBinaryData *ev = calloc(n ? n : 1, sizeof *ev);
  if (!ev)
    abort();
  for (size_t i = 0; i < n; i++)
    bench_make_event(&ev[i], seed);
  bench_batch_sign(g, ev, n, key);
  g->ev = ev;
}

void bench_batch_free(bench_batch *g) {
  for (size_t i = 0; i < g->b.n_events; i++)
    free(g->ev[i].data);
  free(g->ev);
}

/* ---------------------------------------------------------- logs */

/* Appends ev (borrowed) as a batch of one, signed by the admin. */
static int admin_append(cl_log *log, const cl_signer *admin, Clinlog__V1__Event *ev, cl_err *err) {
  Clinlog__V1__RecordedBy by = CLINLOG__V1__RECORDED_BY__INIT;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  uint8_t id[16];
  cl_uuid_v4(id);
  int64_t ns = bench_wall_ns();
  ts.seconds = ns / 1000000000;
  ts.nanos = (int32_t)(ns % 1000000000);
  by.principal_id = "admin";
  by.role = "admin";
  ev->event_id = (ProtobufCBinaryData){16, id};
  ev->occurred_at = &ts;
  ev->recorded_by = &by;
  uint8_t buf[1024], hash[32];
  size_t len = clinlog__v1__event__get_packed_size(ev);
  if (len > sizeof buf)
    return cl_err_set(err, CL_EINVAL, "admin event too large");
  clinlog__v1__event__pack(ev, buf);
  cl_event_hash(buf, len, hash);
  bench_batch g; /* one event, one batch signature */
  memset(&g, 0, sizeof g);
  ProtobufCBinaryData evb = {len, buf};
  clinlog__v1__append_batch__init(&g.b);
  clinlog__v1__signature__init(&g.sig);
  cl_sign_batch(admin, (const uint8_t(*)[32])hash, 1, g.sigbytes);
  g.sig.key_id = (ProtobufCBinaryData){32, (uint8_t *)admin->pk};
  g.sig.signature = (ProtobufCBinaryData){64, g.sigbytes};
  g.b.n_events = 1;
  g.b.events = &evb;
  g.b.batch_signature = &g.sig;
  cl_append_result r;
  int rc = cl_log_append(log, &g.b, &r, err);
  if (rc == 0)
    cl_append_result_free(&r);
  return rc;
}

/* PrincipalRegistered of `principal` (integration, the feed's key),
 * signed by the admin. */
static int register_feed(cl_log *log, const cl_signer *admin, const cl_signer *feed,
                         const char *principal, const char *display, cl_err *err) {
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  Clinlog__V1__PrincipalRegistered pr = CLINLOG__V1__PRINCIPAL_REGISTERED__INIT;
  char *roles[1] = {"integration"};
  pr.principal_id = (char *)principal;
  pr.display_name = (char *)display;
  pr.n_roles = 1;
  pr.roles = roles;
  pr.public_key = (ProtobufCBinaryData){32, (uint8_t *)feed->pk};
  pr.kind = "system";
  char stream[160];
  snprintf(stream, sizeof stream, "$principal-%s", principal);
  ev.stream = stream;
  ev.body_case = CLINLOG__V1__EVENT__BODY_PRINCIPAL_REGISTERED;
  ev.principal_registered = &pr;
  return admin_append(log, admin, &ev, err);
}

int bench_log_with_feed(const char *dir, const cl_signer *admin, const cl_signer *feed,
                        const char *principal, const char *display, cl_log **out) {
  cl_log_options o;
  cl_log_options_init(&o);
  o.dir = dir;
  cl_log_genesis g = {.admin_principal = "admin", .admin = admin};
  cl_err err;
  cl_log *log = NULL;
  bench_rmrf(dir);
  if (cl_log_create(&o, &g, &err) || cl_log_open(&o, &log, &err) ||
      register_feed(log, admin, feed, principal, display, &err)) {
    fprintf(stderr, "clinlog-bench: %s: %s\n", dir, err.msg);
    if (log)
      cl_log_close(log);
    return -1;
  }
  if (out)
    *out = log;
  else
    cl_log_close(log);
  return 0;
}

int bench_log_bind_cert(const char *dir, const cl_signer *admin, const char *principal,
                        const char *sha256, const char *subject) {
  cl_log_options o;
  cl_log_options_init(&o);
  o.dir = dir;
  cl_err err;
  cl_log *log = NULL;
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  Clinlog__V1__CertificateBound cb = CLINLOG__V1__CERTIFICATE_BOUND__INIT;
  cb.principal_id = (char *)principal;
  cb.sha256 = (char *)sha256;
  cb.subject = (char *)subject;
  char stream[160];
  snprintf(stream, sizeof stream, "$principal-%s", principal);
  ev.stream = stream;
  ev.body_case = CLINLOG__V1__EVENT__BODY_CERTIFICATE_BOUND;
  ev.certificate_bound = &cb;
  int rc = cl_log_open(&o, &log, &err);
  if (rc == 0)
    rc = admin_append(log, admin, &ev, &err);
  if (log)
    cl_log_close(log);
  if (rc)
    fprintf(stderr, "clinlog-bench: %s: binding a certificate to %s: %s\n", dir, principal,
            err.msg);
  return rc ? -1 : 0;
}

int bench_feed_open(bench_feed *f, const char *cmd, const char *base, const char *principal,
                    const char *display, int nports) {
  memset(f, 0, sizeof *f);
  cl_err err;
  if (cl_crypto_init(&err))
    return -1;
  mkdir(base, 0700);
  snprintf(f->sdir, sizeof f->sdir, "%s/server", base);
  snprintf(f->ldir, sizeof f->ldir, "%s/store", base);
  snprintf(f->keypath, sizeof f->keypath, "%s/feed.key", base);
  snprintf(f->logpath, sizeof f->logpath, "%s/clinlogd.log", base);
  unlink(f->keypath);
  unlink(f->logpath);
  if (cl_signer_generate(&f->admin, &err) || cl_signer_generate(&f->feed, &err) ||
      cl_signer_save(&f->feed, f->keypath, &err) || bench_free_ports(f->ports, nports)) {
    fprintf(stderr, "clinlog-bench %s: keys or ports: %s\n", cmd, err.msg);
    return -1;
  }
  if (bench_log_with_feed(f->sdir, &f->admin, &f->feed, principal, display, NULL) ||
      bench_log_with_feed(f->ldir, &f->admin, &f->feed, principal, display, &f->store))
    return -1;
  return 0;
}

void bench_feed_close(bench_feed *f) {
  if (f->store)
    cl_log_close(f->store);
  f->store = NULL;
  cl_signer_free(&f->admin);
  cl_signer_free(&f->feed);
}

void bench_batch_sign(bench_batch *g, const ProtobufCBinaryData *ev, size_t n,
                      const cl_signer *key) {
  memset(g, 0, sizeof *g);
  clinlog__v1__append_batch__init(&g->b);
  uint8_t(*h)[32] = malloc((n ? n : 1) * 32);
  if (!h)
    abort();
  for (size_t i = 0; i < n; i++)
    cl_event_hash(ev[i].data, ev[i].len, h[i]);
  cl_sign_batch(key, (const uint8_t(*)[32])h, n, g->sigbytes);
  free(h);
  clinlog__v1__signature__init(&g->sig);
  g->sig.key_id = (ProtobufCBinaryData){32, (uint8_t *)key->pk};
  g->sig.signature = (ProtobufCBinaryData){64, g->sigbytes};
  g->b.batch_signature = &g->sig;
  g->b.n_events = n;
  g->b.events = (ProtobufCBinaryData *)ev;
}

/* ---------------------------------------------------------- time */

void bench_sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

int64_t bench_wall_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void bench_machine(char *out, size_t n) {
  struct utsname u;
  uname(&u);
  snprintf(out, n, "%s %s, %ld cores", u.sysname, u.machine, sysconf(_SC_NPROCESSORS_ONLN));
}

/* ---------------------------------------------------------- workers */

int bench_lat_push(double **v, size_t *n, size_t *cap, double x) {
  if (*n == *cap) {
    size_t c = *cap ? *cap * 2 : 4096;
    double *nv = realloc(*v, c * sizeof *nv);
    if (!nv)
      return -1;
    *v = nv;
    *cap = c;
  }
  (*v)[(*n)++] = x;
  return 0;
}

void bench_percentiles(double *v, size_t n, double *p50, double *p99) {
  if (!n) {
    *p50 = *p99 = 0;
    return;
  }
  qsort(v, n, sizeof *v, bench_cmp_double);
  *p50 = v[n / 2];
  size_t k = (size_t)((double)n * 0.99);
  *p99 = v[k < n ? k : n - 1];
}

double bench_pct(const double *sorted, size_t n, double q) {
  if (!n)
    return 0;
  size_t k = (size_t)((double)n * q);
  return sorted[k < n ? k : n - 1];
}

const double bench_cdf_q[BENCH_CDF_N] = {0.001, 0.01, 0.05, 0.1,   0.2,   0.3,   0.4,    0.5,
                                         0.6,   0.7,  0.75, 0.8,   0.85,  0.9,   0.925,  0.95,
                                         0.97,  0.98, 0.99, 0.995, 0.998, 0.999, 0.9995, 1.0};

void bench_cdf(const double *sorted, size_t n, double scale, double out[BENCH_CDF_N]) {
  for (int i = 0; i < BENCH_CDF_N; i++)
    out[i] = bench_pct(sorted, n, bench_cdf_q[i]) * scale;
}

void bench_cdf_print(const double cdf_ms[BENCH_CDF_N]) {
  printf(",\"cdf_ms\":[");
  for (int i = 0; i < BENCH_CDF_N; i++)
    printf("%s[%g,%.3f]", i ? "," : "", bench_cdf_q[i], cdf_ms[i]);
  printf("]");
}

bench_result bench_result_of(const bench_load_result *l) {
  bench_result r;
  memset(&r, 0, sizeof r);
  r.events = l->events;
  r.failed = l->failed;
  r.eps = l->elapsed > 0 ? (double)l->events / l->elapsed : 0;
  r.p50_ms = bench_pct(l->lat, l->ops, 0.5) * 1e3;
  r.p90_ms = bench_pct(l->lat, l->ops, 0.90) * 1e3;
  r.p99_ms = bench_pct(l->lat, l->ops, 0.99) * 1e3;
  r.p999_ms = bench_pct(l->lat, l->ops, 0.999) * 1e3;
  bench_cdf(l->lat, l->ops, 1e3, r.cdf_ms);
  r.sent_p50_ms = bench_pct(l->sent, l->ops, 0.5) * 1e3;
  r.sent_p99_ms = bench_pct(l->sent, l->ops, 0.99) * 1e3;
  memcpy(r.slowest, l->slowest, sizeof r.slowest);
  r.nslowest = l->nslowest;
  return r;
}

int bench_load_closed(int threads, void *ctx, size_t ctx_size, bench_load_fn prep,
                      bench_load_fn call, double seconds, bench_result *r, char *why, size_t whyn) {
  bench_load l = {.threads = threads,
                  .ctx = ctx,
                  .ctx_size = ctx_size,
                  .prep = prep,
                  .call = call,
                  .seconds = seconds};
  bench_load_result lr;
  int rc = bench_load_run(&l, &lr);
  *r = bench_result_of(&lr);
  snprintf(why, whyn, "%s", lr.why);
  bench_load_result_free(&lr);
  return rc;
}

/* One filler of bench_pool_make: batches [from, to). */
typedef struct pool_fill {
  pthread_t t;
  bench_pool *p;
  size_t from, to;
  const cl_signer *key;
  unsigned seed;
} pool_fill;

static void *fill_pool(void *arg) {
  pool_fill *f = arg;
  for (size_t i = f->from; i < f->to; i++)
    bench_batch_make(&f->p->b[i], f->p->bs, f->key, &f->seed);
  return NULL;
}

void bench_pool_make(bench_pool *p, size_t n, size_t bs, const cl_signer *key, unsigned *seed) {
  memset(p, 0, sizeof *p);
  p->b = calloc(n ? n : 1, sizeof *p->b);
  if (!p->b)
    abort();
  p->n = n;
  p->bs = bs;
  atomic_init(&p->next, 0);
  atomic_init(&p->live, 0);
  /* signed on every core: it is done before the clock starts */
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  pool_fill f[4];
  int nf = cores < 1 ? 1 : cores > 4 ? 4 : (int)cores;
  for (int i = 0; i < nf; i++) {
    f[i] = (pool_fill){.p = p,
                       .from = n * (size_t)i / (size_t)nf,
                       .to = n * (size_t)(i + 1) / (size_t)nf,
                       .key = key,
                       .seed = (unsigned)rand_r(seed)};
    if (i && pthread_create(&f[i].t, NULL, fill_pool, &f[i]) != 0)
      abort();
  }
  fill_pool(&f[0]);
  for (int i = 1; i < nf; i++)
    pthread_join(f[i].t, NULL);
}

void bench_pool_rewind(bench_pool *p) {
  atomic_store(&p->next, 0);
  atomic_store(&p->live, 0);
}

void bench_pool_free(bench_pool *p) {
  for (size_t i = 0; i < p->n; i++)
    bench_batch_free(&p->b[i]);
  free(p->b);
  p->b = NULL;
  p->n = 0;
}

/* One appending thread of bench_append_run. */
typedef struct appender {
  cl_client *client; /* gRPC, or */
  cl_log *log;       /* store level */
  bench_pool *pool;
  const cl_signer *key; /* NULL: the pool is all there is */
  unsigned seed;
  const bench_batch *cur; /* what the next call appends */
  bench_batch own;        /* signed in the loop */
  int have_own;
} appender;

/* prep: the next batch of the pool, or one signed now. */
static int append_prep(void *ctx, size_t *events, char *why, size_t whyn) {
  (void)events, (void)why, (void)whyn;
  appender *a = ctx;
  size_t i = atomic_fetch_add(&a->pool->next, 1);
  if (i < a->pool->n) {
    a->cur = &a->pool->b[i];
    return 0;
  }
  if (!a->key)
    return 1;
  if (a->have_own)
    bench_batch_free(&a->own);
  bench_batch_make(&a->own, a->pool->bs, a->key, &a->seed);
  a->have_own = 1;
  a->cur = &a->own;
  atomic_fetch_add(&a->pool->live, 1);
  return 0;
}

static int append_call(void *ctx, size_t *events, char *why, size_t whyn) {
  appender *a = ctx;
  cl_err err;
  if (a->client) {
    Clinlog__V1__AppendResponse *r;
    if (cl_client_append(a->client, &a->cur->b, &r, NULL, &err) != 0) {
      snprintf(why, whyn, "Append: %s", err.msg);
      return -1;
    }
    clinlog__v1__append_response__free_unpacked(r, NULL);
  } else {
    cl_append_result r;
    if (cl_log_append(a->log, &a->cur->b, &r, &err) != 0) {
      snprintf(why, whyn, "cl_log_append: %s", err.msg);
      return -1;
    }
    cl_append_result_free(&r);
  }
  *events = a->cur->b.n_events;
  return 0;
}

bench_result bench_append_run(bench_pool *pool, int threads, cl_client *client, cl_log *log,
                              double seconds, double interval, const cl_signer *key) {
  appender *as = calloc(threads > 0 ? (size_t)threads : 1, sizeof *as);
  if (!as)
    abort();
  for (int i = 0; i < threads; i++) {
    as[i].client = client;
    as[i].log = log;
    as[i].pool = pool;
    as[i].key = key;
    as[i].seed = 7919u * (unsigned)(i + 1) + (unsigned)pool->n;
  }
  bench_load l = {.threads = threads,
                  .ctx = as,
                  .ctx_size = sizeof *as,
                  .prep = append_prep,
                  .call = append_call,
                  .seconds = seconds,
                  .interval = interval};
  bench_load_result lr;
  if (bench_load_run(&l, &lr) != 0)
    fprintf(stderr, "clinlog-bench: %s\n", lr.why);
  bench_result r = bench_result_of(&lr);
  bench_load_result_free(&lr);
  for (int i = 0; i < threads; i++)
    if (as[i].have_own)
      bench_batch_free(&as[i].own);
  free(as);
  return r;
}

/* ---------------------------------------------------------- processes */

static off_t file_size(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 ? sb.st_size : 0;
}

/* Child side: stderr (and stdout if `both`) appended to logpath, then exec. */
/* Child side: stderr (and stdout if `both`) appended to logpath, then exec.
 * CLINLOG_BENCH_CLINLOGD_ARGS (space-separated) is appended to clinlogd's
 * arguments, to measure settings (e.g. --snapshot-threshold 1024). */
static void exec_logged(char *const argv[], const char *logpath, int both) {
  int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (fd >= 0) {
    if (both)
      dup2(fd, 1);
    dup2(fd, 2);
    close(fd);
  }
  const char *extra = getenv("CLINLOG_BENCH_CLINLOGD_ARGS");
  size_t n = 0;
  while (argv[n])
    n++;
  const char *base = strrchr(argv[0], '/');
  if (extra && extra[0] && !strcmp(base ? base + 1 : argv[0], "clinlogd")) {
    char *copy = strdup(extra), *save = NULL;
    char **av = calloc(n + strlen(extra) / 2 + 2, sizeof *av);
    if (copy && av) {
      memcpy(av, argv, n * sizeof *av);
      for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save))
        av[n++] = t;
      execv(av[0], av);
    }
  }
  execv(argv[0], argv);
  _exit(127);
}

int bench_proc_start(char *const argv[], const char *logpath, bench_proc *p) {
  static const char key[] = "listening on 127.0.0.1:";
  off_t from = file_size(logpath);
  p->port = 0;
  p->pid = fork();
  if (p->pid < 0)
    return -1;
  if (p->pid == 0)
    exec_logged(argv, logpath, 0);
  for (int i = 0; i < 400; i++) {
    FILE *f = fopen(logpath, "r");
    char line[512];
    if (f && fseeko(f, from, SEEK_SET) == 0)
      while (fgets(line, sizeof line, f)) {
        char *k = strstr(line, key);
        if (k)
          p->port = atoi(k + strlen(key));
      }
    if (f)
      fclose(f);
    if (p->port) {
      snprintf(p->target, sizeof p->target, "127.0.0.1:%d", p->port);
      return 0;
    }
    int st;
    if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
      fprintf(stderr, "%s exited at start; see %s\n", argv[0], logpath);
      p->pid = 0;
      return -1;
    }
    bench_sleep_ms(50);
  }
  bench_proc_kill(p);
  fprintf(stderr, "%s did not report its port; see %s\n", argv[0], logpath);
  return -1;
}

int bench_client_open(const char *target, const char *who, cl_client **out) {
  cl_client_options co;
  cl_client_options_init(&co);
  co.target = target;
  co.plaintext = 1;
  co.timeout_ms = 120000;
  cl_err err;
  if (cl_client_open(&co, out, &err)) {
    fprintf(stderr, "%s: %s\n", who, err.msg);
    return -1;
  }
  return 0;
}

int bench_proc_stop(bench_proc *p) {
  if (p->pid <= 0)
    return 0;
  kill(p->pid, SIGTERM);
  for (int i = 0; i < 400; i++) {
    if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
      p->pid = 0;
      return 0;
    }
    bench_sleep_ms(50);
  }
  bench_proc_kill(p);
  return 1;
}

void bench_proc_kill(bench_proc *p) {
  if (p->pid <= 0)
    return;
  kill(p->pid, SIGKILL);
  waitpid(p->pid, NULL, 0);
  p->pid = 0;
}

int bench_run(char *const argv[], const char *logpath) {
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0)
    exec_logged(argv, logpath, 1);
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR)
      return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int bench_find_exe(const char *cmd, const char *opt, const char *argv0, const char *name, char *out,
                   size_t n) {
  if (opt)
    snprintf(out, n, "%s", opt);
  else
    bench_exe_beside(argv0, name, out, n);
  if (access(out, X_OK) != 0) {
    fprintf(stderr, "clinlog-bench %s: %s: not found (give --%s PATH)\n", cmd, out, name);
    return -1;
  }
  return 0;
}

void bench_exe_beside(const char *argv0, const char *name, char *out, size_t n) {
  char self[PATH_MAX];
  ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
  if (k > 0)
    self[k] = '\0';
  else
    snprintf(self, sizeof self, "%s", argv0);
  char *slash = strrchr(self, '/');
  if (slash)
    *slash = '\0';
  snprintf(out, n, "%s/%s", slash ? self : ".", name);
}

int bench_free_ports(int *ports, int n) {
  int fds[16], rc = 0;
  if (n > 16)
    return -1;
  for (int i = 0; i < n; i++) { /* all bound at once: distinct */
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    fds[i] = socket(AF_INET, SOCK_STREAM, 0);
    if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fds[i], (struct sockaddr *)&a, &len) != 0) {
      rc = -1;
      ports[i] = 0;
    } else {
      ports[i] = ntohs(a.sin_port);
    }
  }
  for (int i = 0; i < n; i++)
    if (fds[i] >= 0)
      close(fds[i]);
  return rc;
}

cl_server *bench_grpc_serve(struct cl_svc *svc, const cl_grpc_service *services, size_t n,
                            cl_client **client, cl_err *err) {
  cl_server_config sc;
  cl_server_config_init(&sc);
  sc.listen = "127.0.0.1:0";
  sc.dev = 1;
  sc.drain_ms = 0;
  cl_server *srv;
  int port;
  if (cl_server_start(&sc, svc, services, n, &srv, &port, err) != 0)
    return NULL;
  char target[64];
  snprintf(target, sizeof target, "127.0.0.1:%d", port);
  cl_client_options co;
  cl_client_options_init(&co);
  co.target = target;
  co.plaintext = 1;
  if (cl_client_open(&co, client, err) != 0) {
    cl_server_stop(srv);
    return NULL;
  }
  return srv;
}

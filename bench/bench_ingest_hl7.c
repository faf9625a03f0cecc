/* clinlog-bench ingest hl7: HL7 v2 over MLLP into a clinlogd, acknowledged
 * after the commit (docs/bench.md, "HL7 v2 over MLLP"); `clinlog-bench
 * ingest` without "hl7" is the device readings' part (bench_ingest.c).
 *
 *   clinlog-bench ingest hl7 [--clinlogd PATH] [--dir D] [--quick] [--json]
 *                        [--messages N] [--connections 1|16] [--no-pg]
 *                        [--no-tls] [--tls-ca PEM] [--run-projections all|none]
 *
 * A fresh data directory (D/server) with the adapter's key (D/feed.key)
 * registered as principal "hl7-mllp" (role integration); clinlogd runs
 * with --mllp-listen on loopback (plaintext, --dev) and its defaults
 * otherwise (the audit trail on, fsync'd commits). Messages are generated
 * (hl7gen.h: ADT^A01, ORU^R01 with 5 OBX, RDE^O11, RAS^O17; a unique
 * MSH-10 each, 5000 patients) before the clock starts, and sent by C
 * client threads, one per connection, at 1 and 16 connections: each
 * connection sends a framed message, waits for its ACK, sends the next
 * (how MLLP senders work). Every ACK must be AA (counted and checked).
 *
 * In the same run, at the same connection counts and on the same messages:
 *  - mllp-tls: MLLP over TLS with client certificates, as hospitals run it
 *    between interface engines. A throwaway PKI is made in D/tls
 *    (pki.h: a CA, a server certificate for localhost, a client
 *    certificate; keys 0600), the client certificate bound to the
 *    principal (CertificateBound, as `clinlog auth bind-cert` makes it) in
 *    a second fresh data directory (D/server-tls), and a second clinlogd
 *    runs there, after the first has stopped, with --mllp-tls-cert/-key,
 *    --mllp-client-ca and --mllp-require-client-cert. Each client thread
 *    connects with OpenSSL (the MLLP adapter's sender side,
 *    adapters/mllp/tls.h: TLS 1.2 or later, the server's certificate
 *    verified against the CA, --tls-ca PEM to trust another one, and its
 *    name checked; the client certificate presented); the handshakes are
 *    made before the clock starts (a sender keeps its connection open), so
 *    the figures are TLS's cost per message: its records' encryption and
 *    the certificate's principal looked up on each message;
 *  - store: the events of those messages, mapped and signed before the
 *    clock starts, appended in process with cl_log_append (one batch per
 *    message, same fsync policy) from as many threads, into D/store: the
 *    limit the MLLP path is compared against;
 *  - pg: PostgreSQL 15 (pgpeer.h, synchronous_commit on, its defaults), one
 *    INSERT of the message (sender, control id, type, patient, the message
 *    text; unique on sender and control id, as MSH-10 is idempotent) per
 *    transaction, from as many connections: what a hospital would run
 *    instead (an interface engine writing to PostgreSQL).
 *
 * Per scenario: messages/s, events/s, ACK latency p50/p99 (ms, from the
 * send of a frame to its whole ACK), clinlogd CPU per message (µs), and the
 * ratios MLLP / store, MLLP / PostgreSQL, MLLP over TLS / plaintext MLLP
 * (and over the store and PostgreSQL). --no-tls leaves TLS out. Exit
 * status 0; 1 when a message was not acknowledged AA, a step failed or a
 * TLS handshake did (the server's certificate not signed by the CA
 * trusted, say: the error says why); 2 on a usage error. */
#include "bench/bench_ingest_hl7.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapters/hl7v2/hl7.h"
#include "adapters/hl7v2/map.h"
#include "adapters/mllp/tls.h"
#include "bench/benchutil.h"
#include "bench/connrun.h"
#include "bench/hl7gen.h"
#include "bench/pgpeer.h"
#include "bench/pki.h"
#include "bench/workload.h"
#include "clinlog/v1/event.pb-c.h"
#include "store/keys.h"
#include "store/log.h"

#define PRINCIPAL "hl7-mllp"
#define PATIENTS 5000
#define ACK_WAIT_MS 60000 /* a TLS sender's wait for an ACK */
#define NSCEN 2
static const int CONNS[NSCEN] = {1, 16};

/* ---------------------------------------------------------- messages */

typedef struct imsg {
  char *text; /* the message, CR-ended segments, NUL-terminated (malloc'd) */
  size_t len;
  int type;
  unsigned patient;
  char ctl[32];
  cl_hl7_mapped *map; /* its mapping (store limit) */
  cl_hl7_signed sb;   /* signed by the adapter's key (store limit) */
  int signed_ok;
} imsg;

typedef struct mset {
  imsg *m;
  size_t n, events;
} mset;

static void mset_free(mset *s) {
  for (size_t i = 0; i < s->n; i++) {
    if (s->m[i].signed_ok)
      cl_hl7_signed_free(&s->m[i].sb);
    cl_hl7_mapped_free(s->m[i].map);
    free(s->m[i].text);
  }
  free(s->m);
  memset(s, 0, sizeof *s);
}

/* n messages with control ids "<tag><i>", each parsed, mapped and signed
 * as the listener would (their event counts; the store limit's batches). */
static int mset_make(mset *s, size_t n, const char *tag, const cl_signer *feed) {
  memset(s, 0, sizeof *s);
  if (!(s->m = calloc(n, sizeof *s->m)))
    return -1;
  s->n = n;
  char buf[2048];
  for (size_t i = 0; i < n; i++) {
    imsg *m = &s->m[i];
    m->type = bench_hl7_type_of((unsigned)i);
    m->patient = (unsigned)((i * 7919u) % PATIENTS);
    m->len = bench_hl7_message(buf, sizeof buf, m->type, tag, (unsigned)i, m->patient);
    snprintf(m->ctl, sizeof m->ctl, "%s%zu", tag, i);
    if (!m->len || !(m->text = malloc(m->len + 1)))
      return -1;
    memcpy(m->text, buf, m->len + 1);
    cl_hl7_msg *pm = NULL;
    cl_hl7_error he;
    cl_err err;
    cl_hl7_map_opts mo = {.principal_id = PRINCIPAL};
    if (cl_hl7_parse((const uint8_t *)m->text, m->len, NULL, &pm, &he, &err) ||
        cl_hl7_map(pm, &mo, &m->map, &he, &err) || cl_hl7_sign(m->map, feed, &m->sb, &err)) {
      fprintf(stderr, "clinlog-bench ingest hl7: generated %s %s does not map: %s\n",
              bench_hl7_type_name(m->type), m->ctl, err.msg);
      cl_hl7_free(pm);
      return -1;
    }
    cl_hl7_free(pm);
    m->signed_ok = 1;
    s->events += m->map->n;
  }
  return 0;
}

/* ---------------------------------------------------------- drivers */

enum { M_MLLP, M_STORE, M_PG, M_TLS, NMODE };
static const char *const MODE_NAME[NMODE] = {"mllp", "store", "pg", "mllp-tls"};

typedef struct rctx { /* one row's drive */
  mset *s;
  int mode, port;
  cl_log *log;
  const bench_pg *pg;
  cl_mllp_tls *tls;   /* M_TLS: the sender's context */
  pthread_mutex_t mu; /* guards desc */
  char desc[96];      /* M_TLS: the first connection's protocol and cipher */
} rctx;

typedef struct mconn { /* an MLLP connection, plaintext or TLS */
  int fd;
  cl_mllp_tls_conn *tls; /* NULL: plaintext */
  char ack[4096];
  size_t have; /* bytes in ack */
} mconn;

static int connect_port(int port) {
  for (int tries = 0; tries < 100; tries++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
      return -1;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      return fd;
    }
    close(fd);
    bench_sleep_ms(50); /* the listener may start just after the API */
  }
  return -1;
}

static int write_all(mconn *c, const void *p, size_t n) {
  if (c->tls)
    return cl_mllp_tls_write(c->tls, p, n);
  const uint8_t *b = p;
  while (n > 0) {
    ssize_t w = write(c->fd, b, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    b += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Reads one framed ACK into c->ack (kept: what follows it): its length, or -1. */
static ssize_t read_ack(mconn *c) {
  for (;;) {
    for (size_t i = 1; i < c->have; i++)
      if (c->ack[i - 1] == 0x1c && c->ack[i] == 0x0d)
        return (ssize_t)i + 1;
    if (c->have == sizeof c->ack)
      return -1;
    ssize_t r;
    if (c->tls) /* -2: no ACK within ACK_WAIT_MS */
      r = cl_mllp_tls_read(c->tls, c->ack + c->have, sizeof c->ack - c->have, ACK_WAIT_MS);
    else if ((r = read(c->fd, c->ack + c->have, sizeof c->ack - c->have)) < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return -1;
    c->have += (size_t)r;
  }
}

static int c_open(void *ctx, int id, void **conn, char *err, size_t errn) {
  (void)id;
  rctx *x = ctx;
  if (x->mode == M_MLLP || x->mode == M_TLS) {
    mconn *c = calloc(1, sizeof *c);
    if (!c)
      return -1;
    *conn = c;
    if ((c->fd = connect_port(x->port)) < 0)
      return snprintf(err, errn, "cannot connect to the MLLP port %d", x->port), -1;
    if (x->mode == M_TLS) {
      cl_err e;
      if (cl_mllp_tls_connect(x->tls, c->fd, "localhost", &c->tls, &e))
        return snprintf(err, errn, "port %d: %s", x->port, e.msg), -1;
      pthread_mutex_lock(&x->mu);
      if (!x->desc[0])
        cl_mllp_tls_describe(c->tls, x->desc, sizeof x->desc);
      pthread_mutex_unlock(&x->mu);
    }
  } else if (x->mode == M_PG) {
    cl_err e;
    static const char INS[] = "INSERT INTO hl7_message (sender, control_id, msg_type, patient,"
                              " body) VALUES ($1, $2, $3, $4, $5)";
    if (!(*conn = bench_pg_connect_prepared(x->pg, "ins", INS, 5, &e)))
      return snprintf(err, errn, "%s", e.msg), -1;
  }
  return 0;
}

static void c_close(void *ctx, void *conn) {
  rctx *x = ctx;
  if ((x->mode == M_MLLP || x->mode == M_TLS) && conn) {
    mconn *c = conn;
    cl_mllp_tls_close(c->tls);
    if (c->fd >= 0)
      close(c->fd);
    free(c);
  } else if (x->mode == M_PG && conn) {
    PQfinish(conn);
  }
}

/* One framed message, its ACK read whole; only AA counts (an ACK's codes
 * go into err, never a value of the message). */
static int one_mllp(mconn *c, const imsg *m, char *err, size_t errn) {
  char frame[2100];
  frame[0] = 0x0b;
  memcpy(frame + 1, m->text, m->len);
  frame[m->len + 1] = 0x1c;
  frame[m->len + 2] = 0x0d;
  if (write_all(c, frame, m->len + 3))
    return snprintf(err, errn, "send of %s failed: %s", m->ctl, strerror(errno)), -1;
  ssize_t al = read_ack(c);
  if (al < 0)
    return snprintf(err, errn, "no ACK for %s (connection closed)", m->ctl), -1;
  const char *msa = memmem(c->ack, (size_t)al, "\rMSA|", 5);
  int aa = msa && !strncmp(msa + 5, "AA|", 3);
  if (!aa) {
    const char *e = memmem(c->ack, (size_t)al, "\rERR|", 5);
    snprintf(err, errn, "%s: not AA: %.8s %.60s", m->ctl, msa ? msa + 5 : "?", e ? e + 1 : "");
    for (char *p = err; *p; p++)
      if (*p == '\r')
        *p = ' ';
  }
  memmove(c->ack, c->ack + al, c->have - (size_t)al);
  c->have -= (size_t)al;
  return aa ? 0 : -1;
}

static int one_store(cl_log *log, const imsg *m, char *err, size_t errn) {
  cl_append_result r;
  cl_err e;
  if (cl_log_append(log, &m->sb.batch, &r, &e))
    return snprintf(err, errn, "append of %s: %.200s", m->ctl, e.msg), -1;
  cl_append_result_free(&r);
  return 0;
}

static int one_pg(PGconn *pg, const imsg *m, char *err, size_t errn) {
  const char *vals[5] = {"BENCH^STMARYS", m->ctl, bench_hl7_type_name(m->type), NULL, m->text};
  char pat[16];
  snprintf(pat, sizeof pat, "P%07u", m->patient);
  vals[3] = pat;
  int lens[5] = {0, 0, 0, 0, (int)m->len}, fmts[5] = {0, 0, 0, 0, 0};
  PGresult *r = PQexecPrepared(pg, "ins", 5, vals, lens, fmts, 0);
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok)
    snprintf(err, errn, "insert of %s: %s", m->ctl, PQresultErrorMessage(r));
  PQclear(r);
  return ok ? 0 : -1;
}

static int c_one(void *ctx, void *conn, size_t i, char *err, size_t errn) {
  rctx *x = ctx;
  const imsg *m = &x->s->m[i];
  return x->mode == M_STORE ? one_store(x->log, m, err, errn)
         : x->mode == M_PG  ? one_pg(conn, m, err, errn)
                            : one_mllp(conn, m, err, errn);
}

static size_t c_weight(void *ctx, size_t i) { return ((rctx *)ctx)->s->m[i].map->n; }

typedef struct res {
  int ran, ok;
  size_t messages, aa, events;
  double mps, eps, p50, p99, cpu_us;
  bench_threads threads; /* clinlogd's CPU by thread (mllp, mllp-tls) */
  char tls[96];          /* M_TLS: protocol and cipher */
} res;

/* Runs s through `conns` connections of `mode` (M_TLS: with tls). */
static res run(mset *s, int mode, int conns, int port, cl_log *log, const bench_pg *pg,
               cl_mllp_tls *tls, pid_t srv, int progress) {
  rctx x = {.s = s, .mode = mode, .port = port, .log = log, .pg = pg, .tls = tls};
  pthread_mutex_init(&x.mu, NULL);
  bench_connrun r = {.conns = conns,
                     .n = s->n,
                     .label = MODE_NAME[mode],
                     .progress = progress,
                     .server = srv,
                     .ctx = &x,
                     .open = c_open,
                     .one = c_one,
                     .close = c_close,
                     .weight = c_weight};
  bench_connres c = bench_connrun_go(&r, "ingest hl7");
  pthread_mutex_destroy(&x.mu);
  res out = {.ran = 1,
             .ok = c.ok,
             .messages = c.done,
             .aa = c.done,
             .events = c.weight,
             .mps = c.per_s,
             .eps = c.weight_per_s,
             .p50 = c.p50_ms,
             .p99 = c.p99_ms,
             .cpu_us = c.server_cpu_s >= 0 && c.done ? c.server_cpu_s * 1e6 / (double)c.done : -1,
             .threads = c.threads};
  snprintf(out.tls, sizeof out.tls, "%s", x.desc);
  return out;
}

/* ---------------------------------------------------------- PostgreSQL */

static const char PG_SCHEMA[] =
    "CREATE TABLE hl7_message (seq bigserial PRIMARY KEY, sender text NOT NULL,"
    " control_id text NOT NULL, msg_type text NOT NULL, patient text NOT NULL,"
    " received timestamptz NOT NULL DEFAULT now(), body text NOT NULL,"
    " UNIQUE (sender, control_id))";

/* ---------------------------------------------------------- main */

static double ratio(double a, double b) { return b > 0 ? a / b : 0; }

static void print_json_res(const char *name, const res *r) {
  if (!r->ran) {
    printf("\"%s\":null", name);
    return;
  }
  printf("\"%s\":{\"messages\":%zu,\"acked\":%zu,\"events\":%zu,\"messages_per_s\":%.0f,"
         "\"events_per_s\":%.0f,\"p50_ms\":%.3f,\"p99_ms\":%.3f",
         name, r->messages, r->aa, r->events, r->mps, r->eps, r->p50, r->p99);
  if (r->cpu_us >= 0)
    printf(",\"server_cpu_us_per_message\":%.1f", r->cpu_us);
  bench_threads_json(&r->threads, (double)r->messages);
  printf("}");
}

static int usage(void) {
  fprintf(stderr, "usage: clinlog-bench ingest hl7 [--clinlogd PATH] [--dir D] [--quick] [--json]\n"
                  "                            [--messages N] [--connections 1|16] [--no-pg]\n"
                  "                            [--no-tls] [--tls-ca PEM]\n"
                  "                            [--run-projections all|none]\n");
  return 2;
}

/* Starts clinlogd on data directory sdir with the API on any port, Raft on
 * ports[0] and the MLLP listener on ports[1]: plaintext (--dev, loopback),
 * or with pki TLS requiring a client certificate of pki's CA. */
static int start_server(const char *exe, const char *sdir, const int ports[2], const char *key,
                        const char *runp, const bench_pki *pki, const char *logpath,
                        bench_proc *p) {
  char raft[32], mllp[32];
  snprintf(raft, sizeof raft, "127.0.0.1:%d", ports[0]);
  snprintf(mllp, sizeof mllp, "127.0.0.1:%d", ports[1]);
  const char *a[24];
  int n = 0;
  const char *plain[] = {
      exe,  "--data",        sdir, "--dev",      "--listen", "127.0.0.1:0", "--raft-listen",
      raft, "--mllp-listen", mllp, "--mllp-key", key};
  for (size_t i = 0; i < sizeof plain / sizeof *plain; i++)
    a[n++] = plain[i];
  if (pki) {
    const char *tls[] = {"--mllp-tls-cert",
                         pki->server_cert,
                         "--mllp-tls-key",
                         pki->server_key,
                         "--mllp-client-ca",
                         pki->ca,
                         "--mllp-require-client-cert"};
    for (size_t i = 0; i < sizeof tls / sizeof *tls; i++)
      a[n++] = tls[i];
  }
  if (runp) {
    a[n++] = "--run-projections";
    a[n++] = runp;
  }
  a[n] = NULL;
  return bench_proc_start((char *const *)a, logpath, p);
}

/* The TLS scenario's side: a PKI in base/tls, the client's context
 * (trusting ca_opt, else the PKI's CA) and a fresh data directory
 * base/server-tls with the principal registered and the client
 * certificate bound to it. 0, or -1 after printing why; *client
 * returned-owned (cl_mllp_tls_free) on success. */
static int tls_prepare(const char *base, const char *ca_opt, const bench_feed *fx, bench_pki *pki,
                       char *sdir, size_t sdirn, cl_mllp_tls **client) {
  char dir[4200];
  cl_err err;
  snprintf(dir, sizeof dir, "%s/tls", base);
  snprintf(sdir, sdirn, "%s/server-tls", base);
  mkdir(dir, 0700);
  if (bench_pki_make(dir, "clinlog-bench MLLP CA", pki, &err) ||
      cl_mllp_tls_client_new(ca_opt ? ca_opt : pki->ca, pki->client_cert, pki->client_key, client,
                             &err)) {
    fprintf(stderr, "clinlog-bench ingest hl7: TLS: %s\n", err.msg);
    return -1;
  }
  if (bench_log_with_feed(sdir, &fx->admin, &fx->feed, PRINCIPAL, "MLLP listener", NULL) ||
      bench_log_bind_cert(sdir, &fx->admin, PRINCIPAL, pki->client_sha256,
                          "CN=clinlog-bench-sender")) {
    cl_mllp_tls_free(*client);
    *client = NULL;
    return -1;
  }
  return 0;
}

static void print_text(const char *machine, res r[NSCEN][NMODE], const char *pg_why,
                       const char *tls_why, int status) {
  printf("clinlog-bench ingest hl7 — %s; HL7 v2 over MLLP (loopback), ACK after the\n"
         "fsync'd commit, audit trail on; mix per 10 messages: 2 ADT^A01, 4 ORU^R01 (5 OBX),\n"
         "2 RDE^O11, 2 RAS^O17; mllp: plaintext; mllp-tls: TLS with client certificates;\n"
         "store: the same events by cl_log_append in process; pg: PostgreSQL 15,\n"
         "synchronous_commit on, one INSERT per message. ratio: mllp-tls/mllp on the\n"
         "mllp-tls row, mllp/store and mllp/pg on theirs\n\n",
         machine);
  printf("%-5s | %-8s | %8s %9s %9s %8s %8s %9s | %7s\n", "conns", "path", "messages", "msg/s",
         "events/s", "p50 ms", "p99 ms", "cpu us/m", "ratio");
  static const int ORDER[NMODE] = {M_MLLP, M_TLS, M_STORE, M_PG};
  for (int k = 0; k < NSCEN; k++)
    for (int o = 0; o < NMODE && r[k][M_MLLP].ran; o++) {
      int m = ORDER[o];
      const res *x = &r[k][m];
      if (!x->ran) {
        const char *why = m == M_PG ? pg_why : m == M_TLS ? tls_why : NULL;
        printf("%-5d | %-8s | skipped: %s\n", CONNS[k], MODE_NAME[m], why ? why : "");
        continue;
      }
      printf("%-5d | %-8s | %8zu %9.0f %9.0f %8.2f %8.2f ", CONNS[k], MODE_NAME[m], x->aa, x->mps,
             x->eps, x->p50, x->p99);
      if (x->cpu_us >= 0)
        printf("%9.0f", x->cpu_us);
      else
        printf("%9s", "—");
      if (m == M_MLLP)
        printf(" |\n");
      else if (m == M_TLS)
        printf(" | %7.2f\n", ratio(x->mps, r[k][M_MLLP].mps));
      else
        printf(" | %7.2f\n", ratio(r[k][M_MLLP].mps, x->mps));
    }
  for (int k = 0; k < NSCEN; k++)
    if (r[k][M_MLLP].threads.n) {
      printf("\nmllp, %d connections:\n", CONNS[k]);
      bench_threads_print(&r[k][M_MLLP].threads, (double)r[k][M_MLLP].messages, "message");
    }
  for (int k = 0; k < NSCEN; k++)
    if (r[k][M_TLS].tls[0]) {
      printf("\nTLS: %s, client certificate required\n", r[k][M_TLS].tls);
      break;
    }
  const res *c16 = &r[NSCEN - 1][M_MLLP];
  if (c16->ran)
    printf("\ntargets: 16 connections >= 10,000 msg/s: %.0f %s; ACK p99 <= 20 ms: %.2f %s\n",
           c16->mps, c16->mps >= 10000 ? "MET" : "MISSED", c16->p99,
           c16->p99 <= 20 ? "MET" : "MISSED");
  else
    printf("\ntargets: not measured (16 connections not run)\n");
  if (status)
    printf("FAILED: not every message was acknowledged AA or a step failed (see stderr)\n");
}

static void print_json(const char *machine, res r[NSCEN][NMODE], const char *pg_why,
                       const char *tls_why, int status) {
  printf("{\"machine\":\"%s\",\"mix\":\"2 ADT^A01, 4 ORU^R01 (5 OBX), 2 RDE^O11, 2 RAS^O17 "
         "per 10\",\"scenarios\":[",
         machine);
  const char *proto = "";
  for (int k = 0, first = 1; k < NSCEN; k++) {
    const res *x = r[k];
    if (!x[M_MLLP].ran)
      continue;
    printf("%s{\"connections\":%d,", first ? "" : ",", CONNS[k]);
    first = 0;
    print_json_res("mllp", &x[M_MLLP]);
    printf(",");
    print_json_res("mllp_tls", &x[M_TLS]);
    printf(",");
    print_json_res("store", &x[M_STORE]);
    printf(",");
    print_json_res("postgresql", &x[M_PG]);
    printf(",\"mllp_over_store\":%.3f", ratio(x[M_MLLP].mps, x[M_STORE].mps));
    if (x[M_PG].ran)
      printf(",\"mllp_over_postgresql\":%.3f", ratio(x[M_MLLP].mps, x[M_PG].mps));
    if (x[M_TLS].ran) {
      printf(",\"mllp_tls_over_mllp\":%.3f,\"mllp_tls_over_store\":%.3f",
             ratio(x[M_TLS].mps, x[M_MLLP].mps), ratio(x[M_TLS].mps, x[M_STORE].mps));
      if (x[M_PG].ran)
        printf(",\"mllp_tls_over_postgresql\":%.3f", ratio(x[M_TLS].mps, x[M_PG].mps));
      if (x[M_TLS].tls[0])
        proto = x[M_TLS].tls;
    }
    printf("}");
  }
  const res *c16 = &r[NSCEN - 1][M_MLLP];
  if (c16->ran)
    printf("],\"targets\":{\"messages_per_s_16\":%.0f,\"messages_per_s_16_ok\":%s,"
           "\"ack_p99_ms_16\":%.3f,\"ack_p99_ms_16_ok\":%s}",
           c16->mps, c16->mps >= 10000 ? "true" : "false", c16->p99,
           c16->p99 <= 20 ? "true" : "false");
  else
    printf("],\"targets\":null");
  if (pg_why)
    printf(",\"postgresql_skipped\":\"%s\"", pg_why);
  if (tls_why)
    printf(",\"tls_skipped\":\"%s\"", tls_why);
  else if (proto[0])
    printf(",\"tls\":{\"protocol\":\"%s\",\"client_certificate\":true}", proto);
  printf(",\"ok\":%s}\n", status ? "false" : "true");
}

int bench_ingest_hl7_main(int argc, char **argv) {
  const char *base = "/tmp/clinlog-bench-ingest-hl7", *exe_opt = NULL, *runp = NULL;
  const char *tls_ca = NULL;
  int quick = 0, json = 0, no_pg = 0, no_tls = 0, only = 0;
  long nmsg = 0;
  for (int i = 3; i < argc; i++) {
    if (!strcmp(argv[i], "--dir") && i + 1 < argc)
      base = argv[++i];
    else if (!strcmp(argv[i], "--clinlogd") && i + 1 < argc)
      exe_opt = argv[++i];
    else if (!strcmp(argv[i], "--messages") && i + 1 < argc && (nmsg = atol(argv[i + 1])) > 0)
      i++;
    else if (!strcmp(argv[i], "--connections") && i + 1 < argc &&
             ((only = atoi(argv[i + 1])) == 1 || only == 16))
      i++;
    else if (!strcmp(argv[i], "--run-projections") && i + 1 < argc &&
             (!strcmp(argv[i + 1], "all") || !strcmp(argv[i + 1], "none")))
      runp = argv[++i];
    else if (!strcmp(argv[i], "--tls-ca") && i + 1 < argc)
      tls_ca = argv[++i];
    else if (!strcmp(argv[i], "--quick"))
      quick = 1;
    else if (!strcmp(argv[i], "--json"))
      json = 1;
    else if (!strcmp(argv[i], "--no-pg"))
      no_pg = 1;
    else if (!strcmp(argv[i], "--no-tls"))
      no_tls = 1;
    else
      return usage();
  }
  if (no_tls && tls_ca)
    return usage();
  /* a server that hangs up fails that connection's send, not the whole bench */
  signal(SIGPIPE, SIG_IGN);
  char exe[PATH_MAX + 16];
  if (bench_find_exe("ingest hl7", exe_opt, argv[0], "clinlogd", exe, sizeof exe) != 0)
    return 1;
  bench_feed fx;
  if (bench_feed_open(&fx, "ingest hl7", base, PRINCIPAL, "MLLP listener", 4)) {
    bench_feed_close(&fx);
    return 1;
  }
  cl_log *store = fx.store;
  cl_err err;
  bench_proc srv = {0};
  if (start_server(exe, fx.sdir, fx.ports, fx.keypath, runp, NULL, fx.logpath, &srv)) {
    bench_feed_close(&fx);
    return 1;
  }
  const char *pg_why = no_pg ? "not asked for (--no-pg)" : bench_pg_missing();
  const char *tls_why = no_tls ? "not asked for (--no-tls)" : NULL;
  bench_pg pg = {0};
  int pg_tried = !pg_why;
  if (!pg_why && (bench_pg_start(&pg, base, 1, &err) || bench_pg_exec(pg.c, PG_SCHEMA, &err))) {
    fprintf(stderr, "clinlog-bench ingest hl7: PostgreSQL: %s\n", err.msg);
    pg_why = "could not start";
  }
  char machine[128];
  bench_machine(machine, sizeof machine);
  int progress = !json && isatty(2), status = 0;
  res r[NSCEN][NMODE];
  memset(r, 0, sizeof r);
  mset s[NSCEN];
  memset(s, 0, sizeof s);
  for (int k = 0; k < NSCEN; k++) {
    int conns = CONNS[k];
    if (only && only != conns)
      continue;
    size_t n = nmsg > 0 ? (size_t)nmsg : conns == 1 ? (quick ? 300 : 2000) : (quick ? 3000 : 24000);
    char tag[8];
    snprintf(tag, sizeof tag, "B%dC", conns);
    if (mset_make(&s[k], n, tag, &fx.feed)) {
      status = 1;
      break;
    }
    r[k][M_MLLP] = run(&s[k], M_MLLP, conns, fx.ports[1], NULL, NULL, NULL, srv.pid, progress);
    r[k][M_STORE] = run(&s[k], M_STORE, conns, 0, store, NULL, NULL, 0, progress);
    if (!pg_why)
      r[k][M_PG] = run(&s[k], M_PG, conns, 0, NULL, &pg, NULL, 0, progress);
  }
  bench_proc_stop(&srv);
  /* the same messages over TLS, into a server of their own (the same
   * control ids: a fresh log, so none is a repeat) */
  if (!tls_why && status)
    tls_why = "not run: an earlier step failed";
  if (!tls_why) {
    bench_pki pki;
    cl_mllp_tls *client = NULL;
    char tdir[4200];
    bench_proc tsrv = {0};
    if (tls_prepare(base, tls_ca, &fx, &pki, tdir, sizeof tdir, &client) ||
        start_server(exe, tdir, fx.ports + 2, fx.keypath, runp, &pki, fx.logpath, &tsrv)) {
      tls_why = "could not start (see stderr)";
      status = 1;
    } else {
      for (int k = 0; k < NSCEN; k++)
        if (s[k].n)
          r[k][M_TLS] =
              run(&s[k], M_TLS, CONNS[k], fx.ports[3], NULL, NULL, client, tsrv.pid, progress);
      bench_proc_stop(&tsrv);
    }
    cl_mllp_tls_free(client);
  }
  for (int k = 0; k < NSCEN; k++) {
    for (int m = 0; m < NMODE; m++)
      if (r[k][m].ran && !r[k][m].ok)
        status = 1;
    mset_free(&s[k]);
  }
  if (json)
    print_json(machine, r, pg_why, tls_why, status);
  else
    print_text(machine, r, pg_why, tls_why, status);
  if (pg_tried)
    bench_pg_stop(&pg);
  bench_feed_close(&fx);
  return status;
}

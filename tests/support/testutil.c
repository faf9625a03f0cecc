/* Test helpers; see testutil.h. */
#include "tests/support/testutil.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <dirent.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "query/fhir/fhir.h"
#include "query/streams/streams.h"
#include "store/log_int.h"

char *cl_test_tmpdir(const char *tag) {
  const char *base = getenv("TMPDIR");
  if (!base || !*base)
    base = "/tmp";
  size_t n = strlen(base) + strlen(tag) + 32;
  char *p = malloc(n);
  if (!p)
    abort();
  snprintf(p, n, "%s/cl-%s-XXXXXX", base, tag);
  if (!mkdtemp(p))
    abort();
  return p;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

int cl_test_free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t l = sizeof a;
  cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &l), 0);
  close(fd);
  return ntohs(a.sin_port);
}

void cl_test_rmtree(const char *path) {
  if (path)
    nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

uint8_t *cl_test_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  size_t cap = 4096, n = 0;
  uint8_t *buf = malloc(cap);
  while (buf) {
    size_t r = fread(buf + n, 1, cap - n, f);
    n += r;
    if (n < cap)
      break;
    uint8_t *nb = realloc(buf, cap * 2);
    if (!nb) {
      free(buf);
      buf = NULL;
      break;
    }
    buf = nb;
    cap *= 2;
  }
  fclose(f);
  if (buf && len)
    *len = n;
  return buf;
}

static int tree_contains(const char *dir, const void *needle, size_t n) {
  DIR *d = opendir(dir);
  if (!d)
    return 0;
  int found = 0;
  struct dirent *e;
  while (!found && (e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
      continue;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    struct stat st;
    if (lstat(path, &st) != 0)
      continue;
    if (S_ISDIR(st.st_mode)) {
      found = tree_contains(path, needle, n);
    } else if (S_ISREG(st.st_mode)) {
      size_t len = 0;
      uint8_t *buf = cl_test_read_file(path, &len);
      if (buf && len >= n && memmem(buf, len, needle, n))
        found = 1;
      free(buf);
    }
  }
  closedir(d);
  return found;
}

int cl_test_tree_contains(const char *dir, const void *needle, size_t n) {
  return tree_contains(dir, needle, n);
}

/* ---- log fixtures ---- */
#include <sodium.h>

cl_log *cl_test_log_open(const char *dir, uint64_t cp_interval) {
  cl_log_options o;
  cl_log_options_init(&o);
  o.dir = dir;
  o.checkpoint_interval = cp_interval;
  cl_log *log = NULL;
  cl_err err;
  if (cl_log_open(&o, &log, &err) != 0) {
    fprintf(stderr, "open %s: %s\n", dir, err.msg);
    return NULL;
  }
  return log;
}

cl_log *cl_test_log_new(const char *tag, char **dir, cl_signer *admin, uint64_t cp_interval) {
  cl_err err;
  *dir = cl_test_tmpdir(tag);
  if (cl_crypto_init(&err) || cl_signer_generate(admin, &err))
    abort();
  char d[4096];
  snprintf(d, sizeof d, "%s/data", *dir);
  free(*dir);
  *dir = strdup(d);
  cl_log_options o;
  cl_log_options_init(&o);
  o.dir = *dir;
  cl_log_genesis g = {.admin_principal = "admin", .admin = admin, .organization = "Test Hospital"};
  if (cl_log_create(&o, &g, &err) != 0) {
    fprintf(stderr, "create: %s\n", err.msg);
    abort();
  }
  return cl_test_log_open(*dir, cp_interval);
}

uint8_t *cl_test_pack_event(const Clinlog__V1__Event *ev, size_t *len) {
  *len = clinlog__v1__event__get_packed_size(ev);
  uint8_t *buf = malloc(*len ? *len : 1);
  if (buf)
    clinlog__v1__event__pack(ev, buf);
  return buf;
}

uint8_t *cl_test_event(const char *stream, const char *principal, const char *note, uint8_t id[16],
                       size_t *len) {
  uint8_t idb[16];
  randombytes_buf(idb, 16);
  if (id)
    memcpy(id, idb, 16);
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  Clinlog__V1__RecordedBy by = CLINLOG__V1__RECORDED_BY__INIT;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  Clinlog__V1__ObservationRecorded obs = CLINLOG__V1__OBSERVATION_RECORDED__INIT;
  ts.seconds = 1793000000;
  by.principal_id = (char *)principal;
  by.role = "nurse";
  ev.event_id.data = idb;
  ev.event_id.len = 16;
  ev.stream = (char *)stream;
  ev.occurred_at = &ts;
  ev.recorded_by = &by;
  ev.body_case = CLINLOG__V1__EVENT__BODY_OBSERVATION_RECORDED;
  ev.observation_recorded = &obs;
  obs.observation_id = "obs-1";
  obs.note = (char *)(note ? note : "heart rate 72/min");
  return cl_test_pack_event(&ev, len);
}

/* The envelope of a system event recorded by "admin". */
static void system_envelope(Clinlog__V1__Event *ev, Clinlog__V1__RecordedBy *by,
                            Google__Protobuf__Timestamp *ts, uint8_t id[16], const char *stream) {
  randombytes_buf(id, 16);
  by->principal_id = "admin";
  by->role = "admin";
  ts->seconds = 1793000000;
  ev->event_id = (ProtobufCBinaryData){16, id};
  ev->stream = (char *)stream;
  ev->occurred_at = ts;
  ev->recorded_by = by;
}

uint8_t *cl_test_erasure_event(const char *stream, size_t *len) {
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  Clinlog__V1__RecordedBy by = CLINLOG__V1__RECORDED_BY__INIT;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  Clinlog__V1__StreamErased se = CLINLOG__V1__STREAM_ERASED__INIT;
  uint8_t id[16];
  system_envelope(&ev, &by, &ts, id, "$erasures");
  ev.body_case = CLINLOG__V1__EVENT__BODY_STREAM_ERASED;
  ev.stream_erased = &se;
  se.stream = (char *)stream;
  se.reason = "erasure request";
  return cl_test_pack_event(&ev, len);
}

uint8_t *cl_test_principal_event(const char *principal, const char *role, const cl_signer *key,
                                 size_t *len) {
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  Clinlog__V1__RecordedBy by = CLINLOG__V1__RECORDED_BY__INIT;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  Clinlog__V1__PrincipalRegistered pr = CLINLOG__V1__PRINCIPAL_REGISTERED__INIT;
  uint8_t id[16];
  char stream[160];
  snprintf(stream, sizeof stream, "$principal-%s", principal);
  system_envelope(&ev, &by, &ts, id, stream);
  char *roles[1] = {(char *)role};
  ev.body_case = CLINLOG__V1__EVENT__BODY_PRINCIPAL_REGISTERED;
  ev.principal_registered = &pr;
  pr.principal_id = (char *)principal;
  pr.n_roles = 1;
  pr.roles = roles;
  pr.public_key = (ProtobufCBinaryData){32, (uint8_t *)key->pk};
  return cl_test_pack_event(&ev, len);
}

int cl_test_append(cl_log *log, const cl_signer *s, uint8_t **events, const size_t *lens, size_t n,
                   int batch_sig, const char *x_stream, int x_kind, uint64_t x_version,
                   cl_append_result *r, cl_err *err) {
  Clinlog__V1__AppendBatch b = CLINLOG__V1__APPEND_BATCH__INIT;
  ProtobufCBinaryData *evs = calloc(n, sizeof *evs);
  uint8_t(*hashes)[32] = malloc(n * 32);
  uint8_t(*sigs)[64] = malloc(n * 64);
  Clinlog__V1__Signature *sv = calloc(n, sizeof *sv), **sp = calloc(n, sizeof *sp);
  Clinlog__V1__Signature bs = CLINLOG__V1__SIGNATURE__INIT;
  for (size_t i = 0; i < n; i++) {
    evs[i].data = events[i];
    evs[i].len = lens[i];
    cl_event_hash(events[i], lens[i], hashes[i]);
  }
  b.n_events = n;
  b.events = evs;
  if (batch_sig) {
    cl_sign_batch(s, (const uint8_t(*)[32])hashes, n, sigs[0]);
    bs.key_id.data = (uint8_t *)s->pk;
    bs.key_id.len = 32;
    bs.signature.data = sigs[0];
    bs.signature.len = 64;
    b.batch_signature = &bs;
  } else {
    for (size_t i = 0; i < n; i++) {
      clinlog__v1__signature__init(&sv[i]);
      cl_sign_event(s, hashes[i], sigs[i]);
      sv[i].key_id.data = (uint8_t *)s->pk;
      sv[i].key_id.len = 32;
      sv[i].signature.data = sigs[i];
      sv[i].signature.len = 64;
      sp[i] = &sv[i];
    }
    b.n_signatures = n;
    b.signatures = sp;
  }
  Clinlog__V1__StreamExpectation x = CLINLOG__V1__STREAM_EXPECTATION__INIT, *xp = &x;
  Clinlog__V1__ExpectedVersion xv = CLINLOG__V1__EXPECTED_VERSION__INIT;
  if (x_stream) {
    x.stream = (char *)x_stream;
    xv.kind = x_kind;
    xv.version = x_version;
    x.expected = &xv;
    b.n_expectations = 1;
    b.expectations = &xp;
  }
  int rc = cl_log_append(log, &b, r, err);
  free(evs);
  free(hashes);
  free(sigs);
  free(sv);
  free(sp);
  return rc;
}

int cl_test_append1(cl_log *log, const cl_signer *s, const char *stream, const char *principal,
                    const char *note, uint64_t *seq, cl_err *err) {
  size_t len;
  uint8_t *ev = cl_test_event(stream, principal, note, NULL, &len);
  cl_append_result r;
  int rc = cl_test_append(log, s, &ev, &len, 1, 0, NULL, 0, 0, &r, err);
  if (rc == 0 && seq)
    *seq = r.seq[0];
  if (rc == 0 || rc == CL_ECONFLICT)
    cl_append_result_free(&r);
  free(ev);
  return rc;
}

Clinlog__V1__PreparedBatch *cl_test_prepare1(cl_log *log, const cl_signer *s, const char *stream) {
  size_t len;
  uint8_t *ev = cl_test_event(stream, "admin", NULL, NULL, &len);
  Clinlog__V1__AppendBatch b = CLINLOG__V1__APPEND_BATCH__INIT;
  ProtobufCBinaryData evb = {len, ev};
  uint8_t h[32], sig[64];
  cl_event_hash(ev, len, h);
  cl_sign_event(s, h, sig);
  Clinlog__V1__Signature sg = CLINLOG__V1__SIGNATURE__INIT, *sp = &sg;
  sg.key_id = (ProtobufCBinaryData){32, (uint8_t *)s->pk};
  sg.signature = (ProtobufCBinaryData){64, sig};
  b.n_events = 1;
  b.events = &evb;
  b.n_signatures = 1;
  b.signatures = &sp;
  Clinlog__V1__PreparedBatch *pb = NULL;
  cl_err err;
  cr_assert_eq(cl_log_prepare(log, &b, &pb, &err), 0, "%s", err.msg);
  free(ev);
  return pb;
}

/* ---------------------------------------------------------- catch-up */

typedef struct chunk {
  size_t n;
  uint8_t *data[CL_TEST_MAX_CHUNK];
  size_t len[CL_TEST_MAX_CHUNK];
} chunk;

static int collect_record(void *ctx, uint64_t seq, const uint8_t *rec, size_t len, cl_err *err) {
  (void)seq;
  chunk *ch = ctx;
  if (ch->n == CL_TEST_MAX_CHUNK)
    return cl_err_set(err, CL_EINVAL, "chunk overflow");
  uint8_t *p = malloc(len ? len : 1);
  if (!p)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  memcpy(p, rec, len);
  ch->data[ch->n] = p;
  ch->len[ch->n++] = len;
  return 0;
}

int cl_test_copy_records(cl_log *src, cl_log *dst, uint64_t target, const uint8_t root[32],
                         unsigned per_chunk, uint64_t tamper, cl_err *err) {
  return cl_test_copy_records_ex(src, dst, target, root, per_chunk, tamper, 0, err);
}

int cl_test_copy_records_ex(cl_log *src, cl_log *dst, uint64_t target, const uint8_t root[32],
                            unsigned per_chunk, uint64_t tamper, uint64_t tamper_key, cl_err *err) {
  uint64_t have;
  cl_log_head(dst, &have, NULL);
  int rc = 0;
  while (rc == 0 && have < target) {
    uint64_t first = have + 1, last = have + per_chunk < target ? have + per_chunk : target;
    chunk ch = {0};
    cl_ingest_record recs[CL_TEST_MAX_CHUNK];
    cl_ingest_key keys[CL_TEST_MAX_CHUNK];
    uint8_t tags[CL_TEST_MAX_CHUNK][32], wrapped[CL_TEST_MAX_CHUNK][CL_WRAPPED_KEY_SIZE];
    uint8_t proof[64][32];
    size_t nkeys = 0, nproof = 0;
    rc = cl_log_read_records(src, first, last, collect_record, &ch, err);
    for (size_t i = 0; rc == 0 && i < ch.n; i++) {
      Clinlog__V1__Record *r = clinlog__v1__record__unpack(NULL, ch.len[i], ch.data[i]);
      if (!r) {
        rc = cl_err_set(err, CL_ECORRUPT, "source record %llu does not decode",
                        (unsigned long long)(first + i));
        break;
      }
      if (r->stream_version == 1 && r->stream_tag.len == 32) {
        size_t wl = 0;
        memcpy(tags[nkeys], r->stream_tag.data, 32);
        rc = cl_log_wrapped_key(src, tags[nkeys], wrapped[nkeys], CL_WRAPPED_KEY_SIZE, &wl, err);
        if (first + i == tamper_key && wl)
          wrapped[nkeys][wl - 1] ^= 0x01;
        keys[nkeys] = (cl_ingest_key){tags[nkeys], wrapped[nkeys], wl};
        nkeys++;
      }
      clinlog__v1__record__free_unpacked(r, NULL);
    }
    for (size_t i = 0; i < ch.n; i++) {
      if (first + i == tamper)
        ch.data[i][ch.len[i] / 2] ^= 0x01;
      recs[i] = (cl_ingest_record){ch.data[i], ch.len[i]};
    }
    if (rc == 0 && last < target)
      rc = cl_log_prove_consistency(src, last, target, proof, &nproof, err);
    if (rc == 0)
      rc = cl_log_ingest(dst, first, recs, ch.n, keys, nkeys, target, root,
                         (const uint8_t(*)[32])proof, nproof, err);
    for (size_t i = 0; i < ch.n; i++)
      free(ch.data[i]);
    have = last;
  }
  return rc;
}

/* ---- projection state digests ---- */

typedef struct digest {
  crypto_hash_sha256_state st;
  uint64_t entries;
} digest;

static int digest_one(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl,
                      cl_err *err) {
  (void)err;
  digest *d = ctx;
  uint8_t len[16];
  for (int i = 0; i < 8; i++) {
    len[i] = (uint8_t)(kl >> (8 * i));
    len[8 + i] = (uint8_t)(vl >> (8 * i));
  }
  crypto_hash_sha256_update(&d->st, len, sizeof len);
  crypto_hash_sha256_update(&d->st, k, kl);
  crypto_hash_sha256_update(&d->st, v, vl);
  d->entries++;
  return 0;
}

uint64_t cl_test_proj_digest(cl_proj *p, uint8_t out[32]) {
  digest d;
  crypto_hash_sha256_init(&d.st);
  d.entries = 0;
  cl_err err;
  if (cl_proj_dump(p, digest_one, &d, &err) != 0) {
    fprintf(stderr, "cl_proj_dump: %s\n", err.msg);
    abort();
  }
  crypto_hash_sha256_final(&d.st, out);
  return d.entries;
}

/* ---- kill -9 during a projection's catch-up ---- */

static void nap_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* The child of cl_test_kill9_catch_up: this test binary exec'd with
 * CL_TEST_CATCHUP_* in its environment, before Criterion's main runs.
 * It catches the projection up, in small batches, until killed. */
__attribute__((constructor)) static void catch_up_child(void) {
  const char *dir = getenv("CL_TEST_CATCHUP_DIR");
  if (!dir)
    return;
  const char *name = getenv("CL_TEST_CATCHUP_PROJECTION");
  const char *fds = getenv("CL_TEST_CATCHUP_FD");
  const cl_projection *def = NULL;
  if (name && !strcmp(name, cl_streams_projection.name))
    def = &cl_streams_projection;
  else if (name && !strcmp(name, cl_fhir_projection.name))
    def = &cl_fhir_projection;
  cl_err e;
  if (!def || !fds || cl_crypto_init(&e) != 0)
    _exit(2);
  cl_log *l = cl_test_log_open(dir, 1000);
  cl_runner_options o;
  cl_runner_options_init(&o);
  o.batch_events = 16;
  cl_runner *r;
  if (!l || cl_runner_start(l, def, &o, &r, &e) != 0)
    _exit(3);
  if (write(atoi(fds), "s", 1) != 1) /* folding has started */
    _exit(4);
  /* Flushing all the time, as a busy server's memtables do, makes the
   * kills land before, during and after flushes as well as commits. */
  for (;;) {
    nap_ms(3);
    (void)cl_db_flush_all(l->db, &e);
  }
}

int cl_test_kill9_catch_up(const char *dir, const cl_projection *def, uint64_t size) {
  unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
  uint64_t last = 0;
  int kills = 0, finished = 0;
  for (int k = 0; k < 20 && !finished; k++) {
    int fd[2];
    cr_assert_eq(pipe(fd), 0);
    /* The child is this test binary again, exec'd (catch_up_child below):
     * a child only forked from a process that has run RocksDB inherits its
     * background thread pools without their threads, and one that needs a
     * flush before its runner starts waits forever. Its environment is
     * built here, before the fork: after it, only exec. */
    char e_dir[4200], e_proj[96], e_fd[48];
    snprintf(e_dir, sizeof e_dir, "CL_TEST_CATCHUP_DIR=%s", dir);
    snprintf(e_proj, sizeof e_proj, "CL_TEST_CATCHUP_PROJECTION=%s", def->name);
    snprintf(e_fd, sizeof e_fd, "CL_TEST_CATCHUP_FD=%d", fd[1]);
    char *const child_argv[] = {"catch-up-child", NULL};
    char *const child_env[] = {e_dir, e_proj, e_fd, NULL};
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
      close(fd[0]);
      execve("/proc/self/exe", child_argv, child_env);
      _exit(5);
    }
    close(fd[1]);
    /* bounded, so a child that never starts fails here, named, instead of
     * at ctest's timeout */
    struct pollfd pf = {.fd = fd[0], .events = POLLIN};
    char c;
    if (poll(&pf, 1, 120000) != 1 || read(fd[0], &c, 1) != 1) {
      kill(pid, SIGKILL);
      waitpid(pid, NULL, 0);
      cr_assert_fail("the child did not start its runner within 120 s (kill %d)", kills);
    }
    close(fd[0]);
    nap_ms((int)(rand_r(&seed) % 30));
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFSIGNALED(status), "the child exited on its own (%d)", status);
    kills++;
    /* the position a crash leaves is one the state matches: never behind
     * the last one seen, and the next run resumes from it */
    cl_log *l = cl_test_log_open(dir, 1000);
    cl_runner_options o;
    cl_runner_options_init(&o);
    o.start_paused = 1; /* only the killed runs fold */
    cl_runner *r;
    cl_err e;
    cr_assert_eq(cl_runner_start(l, def, &o, &r, &e), 0, "%s", e.msg);
    uint64_t pos = cl_proj_position(cl_runner_proj(r));
    cr_assert_geq(pos, last, "position went back from %llu to %llu", (unsigned long long)last,
                  (unsigned long long)pos);
    last = pos;
    finished = pos == size;
    cl_runner_stop(r);
    cl_log_close(l);
  }
  cr_assert_gt(kills, 3, "the catch-up finished before the kills (%d)", kills);
  cr_log_info("%s: %d kills; position %llu of %llu before the last run", def->name, kills,
              (unsigned long long)last, (unsigned long long)size);
  return kills;
}

void cl_test_erase(cl_log *log, const cl_signer *s, const char *stream) {
  size_t len;
  uint8_t *buf = cl_test_erasure_event(stream, &len);
  cl_append_result r;
  cl_err err;
  cr_assert_eq(cl_test_append(log, s, &buf, &len, 1, 0, NULL, 0, 0, &r, &err), 0, "%s", err.msg);
  cl_append_result_free(&r);
  free(buf);
}

/* Crash safety: a child process appends in a loop and reports every
 * acknowledged event through a pipe; it is SIGKILLed at random moments.
 * After each kill the log must reopen with every acknowledged event present
 * at its acknowledged position, and verify must pass. */
#include <criterion/criterion.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/log.h"
#include "store/verify.h"
#include "tests/support/testutil.h"

#define KILLS 24
#define MAX_ACKS 1000000

typedef struct ack {
  uint8_t id[16];
  uint64_t seq;
} ack;

static char *dir;
static cl_signer admin;
static int ack_fd;

static void *child_writer(void *arg) {
  cl_log *lg = arg;
  unsigned seed = (unsigned)getpid() ^ (unsigned)(uintptr_t)&arg;
  for (;;) {
    size_t n = 1 + (size_t)(rand_r(&seed) % 8);
    uint8_t *evs[16], ids[16][16];
    size_t lens[16];
    for (size_t i = 0; i < n; i++) {
      char stream[32];
      snprintf(stream, sizeof stream, "patient-%u", rand_r(&seed) % 10);
      evs[i] = cl_test_event(stream, "admin", NULL, ids[i], &lens[i]);
    }
    cl_append_result r;
    cl_err err;
    int rc = cl_test_append(lg, &admin, evs, lens, n, n > 1, NULL, 0, 0, &r, &err);
    for (size_t i = 0; i < n; i++)
      free(evs[i]);
    if (rc != 0) {
      fprintf(stderr, "child append: %s\n", err.msg);
      _exit(3);
    }
    for (size_t i = 0; i < n; i++) {
      ack a;
      memcpy(a.id, ids[i], 16);
      a.seq = r.seq[i];
      if (write(ack_fd, &a, sizeof a) != sizeof a)
        _exit(4);
    }
    cl_append_result_free(&r);
  }
  return NULL;
}

static void child(int fd) {
  ack_fd = fd;
  cl_log *lg = cl_test_log_open(dir, 100);
  if (!lg)
    _exit(2);
  pthread_t t[3];
  for (int i = 0; i < 3; i++)
    pthread_create(&t[i], NULL, child_writer, lg);
  pthread_join(t[0], NULL);
  _exit(0);
}

/* Reads what the pipe holds; with once=1 at most one read (so a fast child
 * cannot keep the parent reading past the kill time). */
static size_t drain(int fd, ack *acks, size_t n, int timeout_ms, int once) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  while (poll(&p, 1, timeout_ms) > 0) {
    ssize_t r = read(fd, &acks[n], sizeof(ack) * 64);
    if (r <= 0)
      break;
    cr_assert_eq(r % sizeof(ack), 0);
    n += (size_t)r / sizeof(ack);
    cr_assert_lt(n, MAX_ACKS - 64);
    if (once)
      break;
  }
  return n;
}

typedef struct found {
  uint64_t seq;
} found;

static int found_fn(void *ctx, const cl_event_view *v, cl_err *err) {
  (void)err;
  ((found *)ctx)->seq = v->seq;
  return 0;
}

/* Forks, with a pipe from the child (p[1]) to the parent (p[0]): each
 * process gets its end alone. */
static pid_t fork_piped(int p[2]) {
  cr_assert_eq(pipe(p), 0);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  close(p[pid == 0 ? 0 : 1]);
  return pid;
}

Test(crash, sigkill_loses_no_acknowledged_event, .timeout = 300) {
  cl_log *lg = cl_test_log_new("crash", &dir, &admin, 100);
  cr_assert_not_null(lg);
  cl_log_close(lg);
  ack *acks = malloc(sizeof(ack) * MAX_ACKS);
  size_t n = 0;
  srand((unsigned)time(NULL));
  for (int k = 0; k < KILLS; k++) {
    int p[2];
    pid_t pid = fork_piped(p);
    if (pid == 0)
      child(p[1]);
    /* most kills land while appends are flowing (after the first ack);
     * every fourth may land anywhere, opening and recovery included */
    struct timespec t0, t;
    if (k % 4 != 3) {
      size_t before = n;
      for (int waited = 0; n == before && waited < 5000; waited += 5)
        n = drain(p[0], acks, n, 5, 1);
    }
    /* then let it run 10-70 ms, collecting acknowledgements, and kill it */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long run_ms = 10 + rand() % 60;
    for (;;) {
      n = drain(p[0], acks, n, 5, 1);
      clock_gettime(CLOCK_MONOTONIC, &t);
      long ms = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
      if (ms >= run_ms)
        break;
    }
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFSIGNALED(status), "child exited on its own: status %d", WEXITSTATUS(status));
    n = drain(p[0], acks, n, 0, 0); /* acks written before the kill */
    close(p[0]);
  }
  cr_log_info("%zu acknowledged events over %d kills", n, KILLS);
  cr_assert_gt(n, (size_t)KILLS, "the children made progress");

  lg = cl_test_log_open(dir, 100);
  cr_assert_not_null(lg, "reopens after the last kill");
  cl_err err;
  for (size_t i = 0; i < n; i++) {
    found f = {0};
    cr_assert_eq(cl_log_get_event(lg, acks[i].id, found_fn, &f, &err), 0,
                 "acknowledged event %zu (seq %llu) lost: %s", i, (unsigned long long)acks[i].seq,
                 err.msg);
    cr_assert_eq(f.seq, acks[i].seq, "acknowledged position changed");
  }
  uint64_t size;
  cl_log_head(lg, &size, NULL);
  cl_log_close(lg);
  cl_verify_options o = {.dir = dir};
  cl_verify_report rep;
  cr_assert_eq(cl_verify_dir(&o, &rep, &err), 0, "%s", err.msg);
  cr_assert(rep.ok, "verify after crashes: seq %llu: %s", (unsigned long long)rep.fail_seq,
            rep.fail_what);
  cr_assert_eq(rep.events, size);
  free(acks);
  cl_signer_free(&admin);
  cl_test_rmtree(dir);
  free(dir);
}

/* ---- a Raft member's store: applied entries a dead process loses ---- */

#define APPLIED 40 /* entries the child applies */
#define SYNCED 15  /* after this many it calls cl_log_sync */

typedef struct head_msg {
  uint64_t size;
  uint8_t root[32];
} head_msg;

/* Applies Raft entries [from, to] (entry i carries pbs[i - 1]). 0, or -1
 * after saying why on stderr. */
static int apply_entries(cl_log *lg, Clinlog__V1__PreparedBatch **pbs, uint64_t from, uint64_t to) {
  for (uint64_t i = from; i <= to; i++) {
    cl_apply_item it = {.pb = pbs[i - 1]};
    cl_err err;
    int rc = cl_log_apply(lg, i, &it, 1, &err);
    if (rc != 0 || it.rc != 0) {
      fprintf(stderr, "entry %llu: %s\n", (unsigned long long)i, rc ? err.msg : it.err.msg);
      return -1;
    }
  }
  return 0;
}

/* A child opens the log as clinlogd does (sync 0, `replayed` as given),
 * applies APPLIED one-event entries, syncing once after SYNCED, sends its
 * head and dies without closing the log (as after kill -9: RocksDB's
 * buffers in the process are gone). Returns the store's applied index
 * when it reopens, the child's head in *child and the reopened log in
 * *out. */
static uint64_t apply_and_die(int replayed, Clinlog__V1__PreparedBatch **pbs, head_msg *child,
                              cl_log **out) {
  int p[2];
  pid_t pid = fork_piped(p);
  if (pid == 0) {
    cl_log_options o;
    cl_log_options_init(&o);
    o.dir = dir;
    o.checkpoint_interval = 100;
    o.sync = 0;
    o.replayed = replayed;
    cl_log *lg;
    cl_err err;
    if (cl_log_open(&o, &lg, &err) != 0 || apply_entries(lg, pbs, 1, SYNCED) != 0 ||
        cl_log_sync(lg, &err) != 0 || apply_entries(lg, pbs, SYNCED + 1, APPLIED) != 0)
      _exit(2);
    head_msg h;
    cl_log_head(lg, &h.size, h.root);
    _exit(write(p[1], &h, sizeof h) == sizeof h ? 0 : 3);
  }
  int status;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child failed (status %d)", status);
  cr_assert_eq(read(p[0], child, sizeof *child), (ssize_t)sizeof *child);
  close(p[0]);
  *out = cl_test_log_open(dir, 100);
  cr_assert_not_null(*out, "reopens after the child died");
  return cl_log_applied_index(*out);
}

/* The batches of APPLIED entries, one event each over a few streams
 * (prepared by a leader's log, then closed). Returned-owned. */
static Clinlog__V1__PreparedBatch **member_batches(void) {
  cl_log *lg = cl_test_log_new("member", &dir, &admin, 100);
  cr_assert_not_null(lg);
  Clinlog__V1__PreparedBatch **pbs = calloc(APPLIED, sizeof *pbs);
  for (int i = 0; i < APPLIED; i++) {
    char stream[32];
    snprintf(stream, sizeof stream, "patient-%d", i % 7);
    pbs[i] = cl_test_prepare1(lg, &admin, stream);
  }
  cl_log_close(lg);
  return pbs;
}

static void member_end(cl_log *lg, Clinlog__V1__PreparedBatch **pbs) {
  uint64_t size;
  cl_log_head(lg, &size, NULL);
  cl_log_close(lg);
  cl_err err;
  cl_verify_options o = {.dir = dir};
  cl_verify_report rep;
  cr_assert_eq(cl_verify_dir(&o, &rep, &err), 0, "%s", err.msg);
  cr_assert(rep.ok, "verify: seq %llu: %s", (unsigned long long)rep.fail_seq, rep.fail_what);
  cr_assert_eq(rep.events, size);
  for (int i = 0; i < APPLIED; i++)
    clinlog__v1__prepared_batch__free_unpacked(pbs[i], NULL);
  free(pbs);
  cl_signer_free(&admin);
  cl_test_rmtree(dir);
  free(dir);
}

Test(crash, a_dead_member_loses_a_tail_of_applied_entries_and_applies_it_again) {
  Clinlog__V1__PreparedBatch **pbs = member_batches();
  head_msg child;
  cl_log *lg;
  uint64_t applied = apply_and_die(1, pbs, &child, &lg);
  cr_assert_eq(child.size, 2 + APPLIED, "the child applied every entry");
  cr_assert_geq(applied, SYNCED, "what cl_log_sync made durable is kept");
  cr_assert_lt(applied, APPLIED, "the applies after the sync stayed in the WAL's buffer");
  uint64_t size;
  uint8_t root[32];
  cl_log_head(lg, &size, root);
  cr_assert_eq(size, 2 + applied, "the store is the prefix of the entries it says it applied");
  /* what Raft replays after a restart: the entries from the snapshot on,
   * those the store holds skipped */
  cl_apply_item again = {.pb = pbs[0]};
  cl_err err;
  cr_assert_eq(cl_log_apply(lg, 1, &again, 1, &err), 1, "an entry it holds is skipped");
  cr_assert_eq(apply_entries(lg, pbs, applied + 1, APPLIED), 0);
  cl_log_head(lg, &size, root);
  cr_assert_eq(size, child.size);
  cr_assert_arr_eq(root, child.root, 32, "the same tree as before the crash");
  member_end(lg, pbs);
}

Test(crash, without_replayed_a_dead_process_loses_nothing_it_wrote) {
  Clinlog__V1__PreparedBatch **pbs = member_batches();
  head_msg child;
  cl_log *lg;
  cr_assert_eq(apply_and_die(0, pbs, &child, &lg), APPLIED);
  uint64_t size;
  uint8_t root[32];
  cl_log_head(lg, &size, root);
  cr_assert_eq(size, child.size);
  cr_assert_arr_eq(root, child.root, 32);
  member_end(lg, pbs);
}

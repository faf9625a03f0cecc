/* The commit feed (store/feed.h) under load: watchers added and removed
 * while writers commit, delivery in commit order across local commits,
 * catch-up ingest and replicated apply, no lost wake-ups, and a log closed
 * with watchers and waiters still attached. Run under ASan+UBSan by the
 * test script. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/feed.h"
#include "store/log.h"
#include "tests/support/testutil.h"

#define WRITERS 8
#define PER_WRITER 60

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

typedef struct writer_arg {
  cl_log *log;
  const cl_signer *admin;
  int id;
  atomic_int *done;
} writer_arg;

static void *writer(void *p) {
  writer_arg *a = p;
  cl_err err;
  for (int i = 0; i < PER_WRITER; i++) {
    char stream[32];
    snprintf(stream, sizeof stream, "patient-w%d-%d", a->id, i % 3);
    uint64_t seq;
    int rc = cl_test_append1(a->log, a->admin, stream, "admin", NULL, &seq, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
  }
  atomic_fetch_add(a->done, 1);
  return NULL;
}

/* A watcher that checks what it is told: strictly increasing sizes, and no
 * call after its removal. */
typedef struct checked {
  cl_feed_watch w;
  atomic_int removed;
  atomic_uint_fast64_t last;
  atomic_int calls;
} checked;

static atomic_int violations, calls_after_remove;

static void checked_fn(void *ctx, uint64_t size) {
  checked *c = ctx;
  if (atomic_load(&c->removed))
    atomic_fetch_add(&calls_after_remove, 1);
  if (size <= atomic_load(&c->last))
    atomic_fetch_add(&violations, 1);
  atomic_store(&c->last, size);
  atomic_fetch_add(&c->calls, 1);
}

typedef struct churn_arg {
  cl_feed *feed;
  atomic_int *writers_done;
  long cycles;
  long heard;
} churn_arg;

/* Adds and removes watchers as fast as it can while the writers run. Each
 * watcher lives on this thread's stack: after cl_feed_remove the memory is
 * reused at once, which ASan would catch if the feed still touched it. */
static void *churn(void *p) {
  churn_arg *a = p;
  while (atomic_load(a->writers_done) < WRITERS) {
    checked c;
    memset(&c, 0, sizeof c);
    uint64_t at = cl_feed_add(a->feed, &c.w, checked_fn, &c);
    atomic_store(&c.last, at);
    for (int spin = 0; spin < 100; spin++)
      sched_yield();
    cl_feed_remove(a->feed, &c.w);
    atomic_store(&c.removed, 1);
    a->heard += atomic_load(&c.calls);
    a->cycles++;
    memset(&c, 0xa5, sizeof c); /* poison: a late call would now count garbage */
  }
  return NULL;
}

Test(feed, watchers_come_and_go_while_eight_writers_commit, .timeout = 240) {
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("feed", &dir, &admin, 100);
  cl_feed *feed = cl_log_feed(log);
  atomic_int done = 0;
  atomic_store(&violations, 0);
  atomic_store(&calls_after_remove, 0);
  /* one watcher stays for the whole run */
  checked steady;
  memset(&steady, 0, sizeof steady);
  uint64_t start = cl_feed_add(feed, &steady.w, checked_fn, &steady);
  atomic_store(&steady.last, start);
  pthread_t w[WRITERS], ch[4];
  writer_arg wa[WRITERS];
  churn_arg ca[4];
  for (int i = 0; i < 4; i++) {
    ca[i] = (churn_arg){feed, &done, 0, 0};
    pthread_create(&ch[i], NULL, churn, &ca[i]);
  }
  for (int i = 0; i < WRITERS; i++) {
    wa[i] = (writer_arg){log, &admin, i, &done};
    pthread_create(&w[i], NULL, writer, &wa[i]);
  }
  for (int i = 0; i < WRITERS; i++)
    pthread_join(w[i], NULL);
  long cycles = 0, heard = 0;
  for (int i = 0; i < 4; i++) {
    pthread_join(ch[i], NULL);
    cycles += ca[i].cycles;
    heard += ca[i].heard;
  }
  uint64_t size;
  cl_log_head(log, &size, NULL);
  cr_assert_eq(size, start + WRITERS * PER_WRITER);
  cr_assert_eq(atomic_load(&steady.last), size, "the steady watcher heard the final size");
  cr_assert_eq(cl_feed_size(feed), size);
  cr_assert_eq(atomic_load(&violations), 0, "sizes went backwards or repeated");
  cr_assert_eq(atomic_load(&calls_after_remove), 0, "a watcher was called after its removal");
  cr_assert_gt(cycles, 20, "the churn threads ran (%ld cycles)", cycles);
  cr_log_info("%ld add/remove cycles, %ld calls heard by them, %d by the steady watcher", cycles,
              heard, atomic_load(&steady.calls));
  cl_feed_remove(feed, &steady.w);
  cl_log_close(log);
  cl_signer_free(&admin);
  cl_test_rmtree(dir);
  free(dir);
}

/* Level-triggered: a consumer that attaches, reads the size it attached
 * at, and then only sleeps until told, never misses growth. */
typedef struct consumer {
  cl_feed_watch w;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  uint64_t told;
} consumer;

static void consumer_fn(void *ctx, uint64_t size) {
  consumer *c = ctx;
  pthread_mutex_lock(&c->mu);
  c->told = size;
  pthread_cond_signal(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

Test(feed, no_lost_wakeup, .timeout = 120) {
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("feedw", &dir, &admin, 100);
  cl_err err;
  for (int round = 0; round < 200; round++) {
    consumer c;
    memset(&c, 0, sizeof c);
    pthread_mutex_init(&c.mu, NULL);
    pthread_cond_init(&c.cv, NULL);
    uint64_t seen = cl_feed_add(cl_log_feed(log), &c.w, consumer_fn, &c);
    uint64_t seq;
    cr_assert_eq(cl_test_append1(log, &admin, "patient-lw", "admin", NULL, &seq, &err), 0);
    cr_assert_eq(seq, seen + 1);
    pthread_mutex_lock(&c.mu);
    while (c.told < seq) /* would hang (test timeout) on a lost wake-up */
      pthread_cond_wait(&c.cv, &c.mu);
    pthread_mutex_unlock(&c.mu);
    cl_feed_remove(cl_log_feed(log), &c.w);
    pthread_mutex_destroy(&c.mu);
    pthread_cond_destroy(&c.cv);
  }
  cl_log_close(log);
  cl_signer_free(&admin);
  cl_test_rmtree(dir);
  free(dir);
}

/* ---------------------------------------------- ordering: ingest, apply */

typedef struct recorder {
  cl_feed_watch w;
  pthread_mutex_t mu;
  uint64_t sizes[4096];
  size_t n;
} recorder;

static void recorder_fn(void *ctx, uint64_t size) {
  recorder *r = ctx;
  pthread_mutex_lock(&r->mu);
  if (r->n < sizeof r->sizes / sizeof r->sizes[0])
    r->sizes[r->n++] = size;
  pthread_mutex_unlock(&r->mu);
}

typedef struct catchup_arg {
  cl_log *src, *dst;
  uint64_t target;
  uint8_t root[32];
} catchup_arg;

static void *catchup(void *p) {
  catchup_arg *a = p;
  cl_err err;
  int rc = cl_test_copy_records(a->src, a->dst, a->target, a->root, 7, 0, &err);
  cr_assert_eq(rc, 0, "catch-up: %s", err.msg);
  return NULL;
}

typedef struct apply_arg {
  cl_log *dst;
  const cl_signer *admin;
  uint64_t wait_for;
  uint64_t first_index;
  int entries;
} apply_arg;

/* Raft's apply: waits on the feed for catch-up to finish, then applies
 * entries of prepared batches (one per entry) in index order. */
static void *applier(void *p) {
  apply_arg *a = p;
  cl_err err;
  cr_assert_eq(cl_feed_wait(cl_log_feed(a->dst), a->wait_for, cl_feed_now_ms() + 60000, NULL, &err),
               0, "%s", err.msg);
  for (int i = 0; i < a->entries; i++) {
    Clinlog__V1__PreparedBatch *pb = cl_test_prepare1(a->dst, a->admin, "patient-applied");
    cl_apply_item item;
    memset(&item, 0, sizeof item);
    item.pb = pb;
    cr_assert_eq(cl_log_apply(a->dst, a->first_index + (uint64_t)i, &item, 1, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(item.rc, 0, "%s", item.err.msg);
    clinlog__v1__prepared_batch__free_unpacked(pb, NULL);
  }
  return NULL;
}

Test(feed, commit_order_across_ingest_and_apply, .timeout = 240) {
  char *dir;
  cl_signer admin;
  cl_log *src = cl_test_log_new("feedsrc", &dir, &admin, 10);
  cl_err err;
  for (int i = 0; i < 120; i++) {
    char stream[32];
    snprintf(stream, sizeof stream, "patient-%d", i % 9);
    cr_assert_eq(cl_test_append1(src, &admin, stream, "admin", NULL, NULL, &err), 0);
  }
  uint64_t target;
  uint8_t root[32];
  cl_log_head(src, &target, root);
  /* an empty replica with the same keys */
  char *rdir = cl_test_tmpdir("feedreplica");
  char rd[4096], mk[4096], lk[4096];
  snprintf(rd, sizeof rd, "%s/data", rdir);
  snprintf(mk, sizeof mk, "%s/keys/master.key", dir);
  snprintf(lk, sizeof lk, "%s/keys/log.key", dir);
  cl_log_options o;
  cl_log_options_init(&o);
  o.dir = rd;
  o.master_key_path = mk;
  o.log_key_path = lk;
  o.checkpoint_interval = 10;
  o.sync = 0;
  cl_log_genesis g = {.origin = cl_log_origin(src), .replica = 1};
  cr_assert_eq(cl_log_create(&o, &g, &err), 0, "%s", err.msg);
  cl_log *dst;
  cr_assert_eq(cl_log_open(&o, &dst, &err), 0, "%s", err.msg);

  recorder rec;
  memset(&rec, 0, sizeof rec);
  pthread_mutex_init(&rec.mu, NULL);
  cr_assert_eq(cl_feed_add(cl_log_feed(dst), &rec.w, recorder_fn, &rec), 0);
  catchup_arg ca = {src, dst, target, {0}};
  memcpy(ca.root, root, 32);
  apply_arg aa = {dst, &admin, target, 1, 40};
  pthread_t t1, t2;
  pthread_create(&t2, NULL, applier, &aa);
  pthread_create(&t1, NULL, catchup, &ca);
  pthread_join(t1, NULL);
  pthread_join(t2, NULL);
  cl_feed_remove(cl_log_feed(dst), &rec.w);

  uint64_t size;
  cl_log_head(dst, &size, NULL);
  cr_assert_eq(size, target + 40);
  cr_assert_gt(rec.n, 40, "every chunk and entry notified (%zu)", rec.n);
  for (size_t i = 1; i < rec.n; i++)
    cr_assert_gt(rec.sizes[i], rec.sizes[i - 1], "notification %zu (%llu) after %llu", i,
                 (unsigned long long)rec.sizes[i], (unsigned long long)rec.sizes[i - 1]);
  cr_assert_eq(rec.sizes[rec.n - 1], size);
  /* each ingest chunk of 7 and each applied entry is one notification */
  size_t chunks = 0;
  for (size_t i = 0; i < rec.n; i++)
    chunks += rec.sizes[i] <= target;
  cr_assert_eq(chunks, (size_t)((target + 6) / 7));
  cr_assert_eq(rec.n - chunks, 40);
  cl_log_close(dst);
  cl_log_close(src);
  cl_signer_free(&admin);
  cl_test_rmtree(dir);
  cl_test_rmtree(rdir);
  free(dir);
  free(rdir);
}

/* ------------------------------------------------- closing with watchers */

typedef struct waiter_arg {
  cl_feed *feed;
  uint64_t want;
  int rc;
  atomic_int returned;
} waiter_arg;

static void *waiter(void *p) {
  waiter_arg *a = p;
  cl_err err;
  a->rc = cl_feed_wait(a->feed, a->want, 0, NULL, &err);
  atomic_store(&a->returned, 1);
  return NULL;
}

Test(feed, close_with_watchers_and_waiters_attached, .timeout = 120) {
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("feedc", &dir, &admin, 100);
  cl_feed *feed = cl_log_feed(log);
  checked *ws = calloc(16, sizeof *ws);
  for (int i = 0; i < 16; i++)
    atomic_store(&ws[i].last, cl_feed_add(feed, &ws[i].w, checked_fn, &ws[i]));
  atomic_store(&violations, 0);
  waiter_arg wt = {feed, UINT64_MAX, 0, 0};
  pthread_t t;
  pthread_create(&t, NULL, waiter, &wt);
  atomic_int done = 0;
  pthread_t w[WRITERS];
  writer_arg wa[WRITERS];
  for (int i = 0; i < WRITERS; i++) {
    wa[i] = (writer_arg){log, &admin, i, &done};
    pthread_create(&w[i], NULL, writer, &wa[i]);
  }
  for (int i = 0; i < WRITERS; i++)
    pthread_join(w[i], NULL);
  cr_assert_not(atomic_load(&wt.returned), "the waiter waits for a size never reached");
  cl_log_close(log); /* watchers still attached, a thread still waiting */
  pthread_join(t, NULL);
  cr_assert_eq(wt.rc, CL_EUNAVAILABLE, "a waiter learns the log closed");
  int calls[16];
  for (int i = 0; i < 16; i++) {
    calls[i] = atomic_load(&ws[i].calls);
    cr_assert_gt(calls[i], 0);
    cr_assert_eq(atomic_load(&ws[i].last), (uint64_t)(2 + WRITERS * PER_WRITER));
  }
  sleep_ms(50);
  for (int i = 0; i < 16; i++)
    cr_assert_eq(atomic_load(&ws[i].calls), calls[i], "called after close");
  cr_assert_eq(atomic_load(&violations), 0);
  free(ws);
  cl_signer_free(&admin);
  cl_test_rmtree(dir);
  free(dir);
}

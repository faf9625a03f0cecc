/* The commit feed; see feed.h. One mutex guards the watcher list, the size
 * and the closing state; callbacks run with it held, which is what makes
 * "never called after remove returns" and commit-order delivery hold
 * without reference counts. */
#include "store/feed.h"

#include <pthread.h>
#include <time.h>

#include "store/alloc.h"

struct cl_feed {
  pthread_mutex_t mu;  /* guards everything below */
  pthread_cond_t grew; /* size changed or the feed is closing */
  pthread_cond_t left; /* a waiter returned (close waits for none to remain) */
  uint64_t size;
  cl_feed_watch *head;
  unsigned waiters; /* threads inside cl_feed_wait */
  int closing;
};

cl_feed *cl_feed_new(uint64_t size) {
  cl_feed *f = cl_calloc(1, sizeof *f);
  if (!f)
    return NULL;
  pthread_mutex_init(&f->mu, NULL);
  pthread_cond_init(&f->grew, NULL); /* CLOCK_REALTIME, as the deadlines */
  pthread_cond_init(&f->left, NULL);
  f->size = size;
  return f;
}

void cl_feed_close(cl_feed *f) {
  pthread_mutex_lock(&f->mu);
  f->closing = 1;
  pthread_cond_broadcast(&f->grew);
  while (f->waiters)
    pthread_cond_wait(&f->left, &f->mu);
  for (cl_feed_watch *w = f->head, *nx; w; w = nx) {
    nx = w->next;
    w->attached = 0;
    w->prev = w->next = NULL;
  }
  f->head = NULL;
  pthread_mutex_unlock(&f->mu);
}

void cl_feed_free(cl_feed *f) {
  if (!f)
    return;
  cl_feed_close(f);
  pthread_mutex_destroy(&f->mu);
  pthread_cond_destroy(&f->grew);
  pthread_cond_destroy(&f->left);
  cl_free(f);
}

void cl_feed_publish(cl_feed *f, uint64_t size) {
  pthread_mutex_lock(&f->mu);
  if (size > f->size && !f->closing) {
    f->size = size;
    pthread_cond_broadcast(&f->grew);
    for (cl_feed_watch *w = f->head; w; w = w->next)
      w->fn(w->ctx, size);
  }
  pthread_mutex_unlock(&f->mu);
}

uint64_t cl_feed_add(cl_feed *f, cl_feed_watch *w, cl_feed_fn fn, void *ctx) {
  pthread_mutex_lock(&f->mu);
  if (!w->attached && !f->closing) {
    w->fn = fn;
    w->ctx = ctx;
    w->prev = NULL;
    w->next = f->head;
    if (f->head)
      f->head->prev = w;
    f->head = w;
    w->attached = 1;
  }
  uint64_t size = f->size;
  pthread_mutex_unlock(&f->mu);
  return size;
}

void cl_feed_remove(cl_feed *f, cl_feed_watch *w) {
  pthread_mutex_lock(&f->mu);
  if (w->attached) {
    if (w->prev)
      w->prev->next = w->next;
    else
      f->head = w->next;
    if (w->next)
      w->next->prev = w->prev;
    w->prev = w->next = NULL;
    w->attached = 0;
  }
  pthread_mutex_unlock(&f->mu);
}

uint64_t cl_feed_size(cl_feed *f) {
  pthread_mutex_lock(&f->mu);
  uint64_t s = f->size;
  pthread_mutex_unlock(&f->mu);
  return s;
}

int64_t cl_feed_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cl_feed_wait(cl_feed *f, uint64_t min_size, int64_t deadline_ms, uint64_t *size, cl_err *err) {
  int rc = 0;
  pthread_mutex_lock(&f->mu);
  f->waiters++;
  while (f->size < min_size && !f->closing) {
    if (!deadline_ms) {
      pthread_cond_wait(&f->grew, &f->mu);
      continue;
    }
    if (cl_feed_now_ms() >= deadline_ms)
      break;
    struct timespec ts = {(time_t)(deadline_ms / 1000), (long)(deadline_ms % 1000) * 1000000L};
    pthread_cond_timedwait(&f->grew, &f->mu, &ts);
  }
  uint64_t s = f->size;
  if (s < min_size)
    rc = f->closing
             ? cl_err_set(err, CL_EUNAVAILABLE, "the log is closing")
             : cl_err_set(err, CL_ETIMEDOUT, "the log holds %llu of the %llu events waited for",
                          (unsigned long long)s, (unsigned long long)min_size);
  if (--f->waiters == 0 && f->closing)
    pthread_cond_broadcast(&f->left);
  pthread_mutex_unlock(&f->mu);
  if (size)
    *size = s;
  return rc;
}

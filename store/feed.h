/* The commit feed: how anything that follows the log (projections, the
 * Subscribe and read-your-writes waits of the front doors) learns that it
 * grew. The same mechanism tells a projection's readers how far it has
 * folded (query/runner.h): a feed carries one growing number, published by
 * one owner.
 *
 * Guarantees:
 *  - any number of watchers, added and removed at any time, from any thread;
 *  - level-triggered: a watcher is told "the log has grown to N"; calls may
 *    coalesce (it may hear 10 and then 14), but a watcher never misses
 *    growth: cl_feed_add returns the size at the moment of attaching, and
 *    every later growth produces a call with the new size;
 *  - sizes reach each watcher strictly increasing, in commit order, for
 *    local commits, replicated apply and catch-up ingest alike (the feed is
 *    notified by whoever holds the log's commit slot, before releasing it);
 *  - after cl_feed_remove returns, the watcher is never called again and
 *    its memory may be reused.
 *
 * Callbacks run on the committing thread with the feed's lock held: they
 * must return quickly (signal a condition variable, enqueue work) and must
 * not call cl_feed_* or read or write the log. */
#ifndef CL_STORE_FEED_H
#define CL_STORE_FEED_H

#include <stdint.h>

#include "store/err.h"

typedef struct cl_feed cl_feed;

typedef void (*cl_feed_fn)(void *ctx, uint64_t size);

/* A watcher, allocated by its owner (e.g. inside the owner's struct); its
 * fields are the feed's. Zero it before the first cl_feed_add. */
typedef struct cl_feed_watch {
  cl_feed_fn fn;
  void *ctx;
  struct cl_feed_watch *prev, *next;
  int attached;
} cl_feed_watch;

/* Attaches `w` (borrowed until cl_feed_remove or the log's close) and
 * returns the log's size at that moment. Adding an attached watcher only
 * returns the size. Thread-safe. */
uint64_t cl_feed_add(cl_feed *f, cl_feed_watch *w, cl_feed_fn fn, void *ctx);

/* Detaches `w`; waits for a call to it in progress on another thread to
 * return. A no-op for a watcher that is not attached. Must not be called
 * from a feed callback. Thread-safe. */
void cl_feed_remove(cl_feed *f, cl_feed_watch *w);

/* The log's published size. */
uint64_t cl_feed_size(cl_feed *f);

/* Blocks until the log holds at least `min_size` events. `deadline_ms` is
 * absolute CLOCK_REALTIME milliseconds (0: no limit). *size (optional) gets
 * the size seen. Errors: CL_ETIMEDOUT, CL_EUNAVAILABLE (the log is
 * closing). Thread-safe; for front doors that serve a request on a thread
 * of their own (an event-driven one attaches a watcher instead). */
int cl_feed_wait(cl_feed *f, uint64_t min_size, int64_t deadline_ms, uint64_t *size, cl_err *err);

/* ---- the publisher's side ---- */

/* A feed starting at `size` (returned-owned: cl_feed_free), NULL when out
 * of memory. */
cl_feed *cl_feed_new(uint64_t size);
/* Tells every watcher the number grew to `size` (ignored unless it grew).
 * One publisher at a time (the log calls it holding its commit slot), so
 * calls follow the order of growth. */
void cl_feed_publish(cl_feed *f, uint64_t size);
/* Wakes every waiter with CL_EUNAVAILABLE, waits for them to return, and
 * detaches every watcher; later publishes and adds do nothing. */
void cl_feed_close(cl_feed *f);
/* Closes (if not yet) and frees. */
void cl_feed_free(cl_feed *f);

/* Wall-clock now in the deadline's unit (CLOCK_REALTIME ms). */
int64_t cl_feed_now_ms(void);

#endif

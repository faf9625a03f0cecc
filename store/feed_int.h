/* The log's side of the commit feed (feed.h): creating it, publishing
 * growth, closing it. Only store/ includes this. */
#ifndef CL_STORE_FEED_INT_H
#define CL_STORE_FEED_INT_H

#include <stdint.h>

#include "store/feed.h"

/* A feed starting at `size` (returned-owned: cl_feed_free), NULL when out
 * of memory. */
cl_feed *cl_feed_new(uint64_t size);
/* Tells every watcher the log grew to `size` (ignored unless it grew).
 * Called by the commit slot's holder only, so calls follow commit order. */
void cl_feed_publish(cl_feed *f, uint64_t size);
/* Wakes every waiter with CL_EUNAVAILABLE, waits for them to return, and
 * detaches every watcher; later publishes and adds do nothing. */
void cl_feed_close(cl_feed *f);
/* Closes (if not yet) and frees. */
void cl_feed_free(cl_feed *f);

#endif

/* clinlog's Raft state machine: the store (store/log.h) driven by Raft
 * entries. Shared by the node (node.c, libuv I/O) and the deterministic
 * tests (libraft's in-memory fixture). Internal to replication/.
 *
 * Entries (RaftEntry, proto/clinlog/v1/cluster.proto) are framed as a
 * 4-byte little-endian length, the message, and zero padding to a multiple
 * of 8 bytes (libraft 0.22 refuses other lengths). Two kinds:
 *  - batches: prepared on the leader (signatures verified, payloads
 *    encrypted, new stream keys wrapped); applied in order, in one store
 *    write with the entry's Raft index;
 *  - head: a tree head (size, root) every node must reach before the next
 *    entry: the cluster's starting point, brought to a node that lacks it
 *    by catch-up.
 * Snapshots are a TreeHead too (a few dozen bytes); restoring one catches
 * the store up to it (docs/replication.md). */
#ifndef CL_REPLICATION_FSM_H
#define CL_REPLICATION_FSM_H

#include <raft.h>
#include <stdint.h>

#include "clinlog/v1/cluster.pb-c.h"
#include "store/log.h"

typedef struct cl_fsm cl_fsm;

/* Catch-up: bring `log` to the tree (size, root), from the node at
 * `api_address` if it can, else from any other. Returns 0 or an error. */
typedef int (*cl_fsm_fetch_fn)(void *ctx, const char *api_address, uint64_t size,
                               const uint8_t root[32], cl_err *err);

/* An entry this process submitted is being applied: return the items of
 * its waiting group (want_result set), or NULL if none waits (for example
 * after a restart). `done` is then called with the outcome. */
typedef cl_apply_item *(*cl_fsm_claim_fn)(void *ctx, uint64_t group, size_t *n);
typedef void (*cl_fsm_done_fn)(void *ctx, uint64_t group, int rc, const cl_err *err);

struct cl_fsm {
  cl_log *log;
  struct raft *raft;         /* the instance applying (index of the entry being applied) */
  uint64_t origin;           /* this process's id in the entries it submits */
  const char *api_address;   /* written into snapshots: where to catch up from */
  cl_fsm_claim_fn claim;
  cl_fsm_done_fn done;
  cl_fsm_fetch_fn fetch;
  void *ctx;
  /* An apply failure stops the node (never skip an entry): called with the
   * reason; default prints it and exits. */
  void (*fatal)(void *ctx, const char *msg);
  /* The Raft log since the last snapshot is held in memory; libraft counts
   * it in entries only. With snapshot_bytes set, a snapshot is also taken
   * once that many bytes were applied since the last one, and the entries
   * kept after it are capped at about trailing_bytes (fsm.c). */
  size_t snapshot_bytes, trailing_bytes;
  unsigned threshold, trailing;  /* libraft's settings in entries (defaults) */
  uint64_t bytes_since;          /* applied since the last snapshot */
  uint64_t entries_since;
  uint64_t applied_entries;  /* entries applied (not skipped) since start */
  uint64_t skipped_entries;  /* entries found already applied (after a restart) */
};

/* Fills rf (version 1) to drive f. */
void cl_fsm_init(cl_fsm *f, struct raft_fsm *rf);

/* Frames e as a Raft entry: *out gets raft_malloc'ed memory. */
int cl_fsm_encode(const Clinlog__V1__RaftEntry *e, struct raft_buffer *out, cl_err *err);

/* Decodes a framed entry (NULL if it is not one). */
Clinlog__V1__RaftEntry *cl_fsm_decode(const void *buf, size_t len);

#endif

/* Cluster membership on the loop: adding a node (as a standby, promoted
 * to voter once it has caught up), removing one, transferring leadership,
 * and the members in a status; the callers' side of those operations. */
#include <raft.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "replication/node.h"
#include "replication/node_int.h"
#include "replication/transport.h"

static void change_cb(struct raft_change *req, int status);

static int queue_promotion(cl_repl *n, op *o);

static void voter_cb(struct raft_change *req, int status) {
  op *o = req->data;
  cl_repl *n = o->n;
  /* libraft's last catch-up round fails when the node is busy restoring a
   * snapshot (its loop is held by the catch-up): wait and try again, up to
   * PROMOTE_TRIES times */
  if (status == RAFT_NOCONNECTION && ++o->promote < PROMOTE_TRIES &&
      raft_state(&n->raft) == RAFT_LEADER && queue_promotion(n, o) == 0)
    return;
  if (status)
    repl_op_fail(n, o, CL_EUNAVAILABLE, "promoting node %llu: %s", (unsigned long long)o->id,
                 raft_strerror(status));
  else
    repl_op_complete(n, o, 0, NULL);
}

static void standby_cb(struct raft_change *req, int status) {
  op *o = req->data;
  cl_repl *n = o->n;
  if (status) {
    repl_op_fail(n, o, CL_EUNAVAILABLE, "adding node %llu as standby: %s",
                 (unsigned long long)o->id, raft_strerror(status));
    return;
  }
  if (!o->promote) {
    repl_op_complete(n, o, 0, NULL);
    return;
  }
  if (queue_promotion(n, o) != 0)
    repl_op_fail(n, o, CL_ENOMEM, "out of memory");
}

static int queue_promotion(cl_repl *n, op *o) {
  promotion *p = malloc(sizeof *p);
  if (!p)
    return -1;
  p->o = o;
  p->next = n->promotions;
  n->promotions = p;
  return 0;
}

static void added_cb(struct raft_change *req, int status) {
  op *o = req->data;
  cl_repl *n = o->n;
  if (status) {
    repl_op_fail(n, o, CL_EUNAVAILABLE, "adding node %llu: %s", (unsigned long long)o->id,
                 raft_strerror(status));
    return;
  }
  int rv = raft_assign(&n->raft, &o->req.change, o->id, RAFT_STANDBY, standby_cb);
  if (rv)
    repl_op_fail(n, o, rv == RAFT_NOTLEADER ? CL_ENOTLEADER : CL_EUNAVAILABLE,
                 "making node %llu a standby: %s", (unsigned long long)o->id, raft_strerror(rv));
}

static void change_cb(struct raft_change *req, int status) {
  op *o = req->data;
  cl_repl *n = o->n;
  if (status)
    repl_op_fail(n, o, CL_EUNAVAILABLE, "%s", raft_strerror(status));
  else
    repl_op_complete(n, o, 0, NULL);
}

/* Standbys waiting to become voters: promoted once within a few entries of
 * the leader (libraft then runs its own last catch-up round). */
void repl_check_promotions(cl_repl *n) {
  promotion **pp = &n->promotions;
  while (*pp) {
    promotion *p = *pp;
    op *o = p->o;
    int leader = raft_state(&n->raft) == RAFT_LEADER;
    raft_index match = 0;
    if (leader && raft_match_index(&n->raft, o->id, &match) != 0)
      match = 0;
    if (!leader || match + 64 >= raft_last_index(&n->raft)) {
      *pp = p->next;
      free(p);
      if (!leader) {
        repl_op_fail(n, o, CL_ENOTLEADER, "leadership lost while node %llu caught up",
                     (unsigned long long)o->id);
        continue;
      }
      int rv = raft_assign(&n->raft, &o->req.change, o->id, RAFT_VOTER, voter_cb);
      if (rv)
        repl_op_fail(n, o, CL_EUNAVAILABLE, "promoting node %llu: %s", (unsigned long long)o->id,
                     raft_strerror(rv));
      continue;
    }
    pp = &p->next;
  }
}

static void transfer_cb(struct raft_transfer *req) {
  op *o = req->data;
  cl_repl *n = o->n;
  repl_refresh_cache(n);
  if (raft_state(&n->raft) == RAFT_LEADER)
    repl_op_fail(n, o, CL_EUNAVAILABLE, "leadership transfer did not complete");
  else
    repl_op_complete(n, o, 0, NULL);
}

int repl_member_op(cl_repl *n, op *o) {
  switch (o->kind) {
  case OP_ADD:
    o->req.change.data = o;
    return raft_add(&n->raft, &o->req.change, o->id, o->address, added_cb);
  case OP_REMOVE:
    if (o->id == n->o.id) {
      repl_op_fail(n, o, CL_EINVAL, "the leader cannot remove itself: transfer leadership first");
      return -1;
    }
    o->req.change.data = o;
    return raft_remove(&n->raft, &o->req.change, o->id, change_cb);
  case OP_TRANSFER:
    o->req.transfer.data = o;
    return raft_transfer(&n->raft, &o->req.transfer, o->id, transfer_cb);
  default:
    repl_op_fail(n, o, CL_EINVAL, "not a membership operation");
    return -1;
  }
}

void repl_fill_status(cl_repl *n, cl_repl_status *st) {
  memset(st, 0, sizeof *st);
  st->id = n->o.id;
  int s = raft_state(&n->raft);
  st->state = s == RAFT_LEADER      ? "leader"
              : s == RAFT_FOLLOWER  ? "follower"
              : s == RAFT_CANDIDATE ? "candidate"
                                    : "unavailable";
  st->term = raft_current_term(&n->raft);
  raft_id lid = 0;
  const char *laddr = NULL;
  raft_leader(&n->raft, &lid, &laddr);
  st->leader_id = lid;
  st->commit_index = raft_commit_index(&n->raft);
  st->last_applied = raft_last_applied(&n->raft);
  st->last_index = raft_last_index(&n->raft);
  st->store_applied = cl_log_applied_index(n->log);
  for (unsigned i = 0; i < n->raft.configuration.n && st->n < CL_REPL_MAX_MEMBERS; i++) {
    const struct raft_server *sv = &n->raft.configuration.servers[i];
    cl_repl_member *m = &st->members[st->n++];
    m->id = sv->id;
    cl_rtransport_raft_part(sv->address, m->raft_address, sizeof m->raft_address);
    cl_rtransport_api_part(sv->address, m->api_address, sizeof m->api_address);
    m->role = sv->role == RAFT_VOTER     ? CL_ROLE_VOTER
              : sv->role == RAFT_STANDBY ? CL_ROLE_STANDBY
                                         : CL_ROLE_SPARE;
    raft_index mi = 0;
    if (s == RAFT_LEADER) {
      if (sv->id == n->o.id)
        mi = raft_last_index(&n->raft);
      else if (raft_match_index(&n->raft, sv->id, &mi) != 0)
        mi = 0;
    }
    m->match_index = mi;
    if (sv->id == lid)
      memcpy(st->leader_api, m->api_address, sizeof st->leader_api);
  }
}

/* --------------------------------------------------------------- callers */

int cl_repl_add(cl_repl *n, uint64_t id, const char *raft_address, const char *api_address,
                int promote, int64_t deadline_ms, cl_err *err) {
  if (!id || !raft_address || !api_address || !raft_address[0] || !api_address[0] ||
      strchr(raft_address, CL_RTRANSPORT_ADDR_SEP) || strchr(api_address, CL_RTRANSPORT_ADDR_SEP) ||
      strlen(raft_address) >= CL_REPL_ADDR_MAX || strlen(api_address) >= CL_REPL_ADDR_MAX)
    return cl_err_set(err, CL_EINVAL, "add: id, raft_address and api_address required");
  if (n->o.standalone)
    return cl_err_set(err, CL_EINVAL,
                      "add: this node has no Raft transport (start it with the "
                      "Raft TLS certificate, key and CA)");
  op *o = repl_op_new(OP_ADD);
  if (!o)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  o->id = id;
  o->promote = promote;
  snprintf(o->address, sizeof o->address, "%s%c%s", raft_address, CL_RTRANSPORT_ADDR_SEP,
           api_address);
  return repl_simple_op(n, o, deadline_ms, err);
}

int cl_repl_remove(cl_repl *n, uint64_t id, int64_t deadline_ms, cl_err *err) {
  op *o = repl_op_new(OP_REMOVE);
  if (o)
    o->id = id;
  return repl_simple_op(n, o, deadline_ms, err);
}

int cl_repl_transfer(cl_repl *n, uint64_t id, int64_t deadline_ms, cl_err *err) {
  /* under load the target may not catch up within one election timeout, in
   * which case libraft gives up: try again until the deadline */
  for (;;) {
    op *o = repl_op_new(OP_TRANSFER);
    if (o)
      o->id = id;
    int rc = repl_simple_op(n, o, deadline_ms, err);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (rc != CL_EUNAVAILABLE || !cl_repl_leader(n, NULL, NULL, 0) ||
        (deadline_ms && now + 200 >= deadline_ms))
      return rc;
    ts = (struct timespec){0, 100 * 1000000};
    nanosleep(&ts, NULL);
  }
}

/* The Cluster service, and the node-to-node transports the request layer
 * and replication use: write forwarding to the leader and catch-up (the
 * client side of FetchRecords). See docs/replication.md. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapters/grpc/client.h"
#include "adapters/grpc/server_int.h"
#include "adapters/grpc/services.h"
#include "replication/node.h"
#include "store/logkey.h"

#define FETCH_CHUNK 4096
#define FETCH_CHUNK_BYTES (8u << 20)

static int64_t wall_ms(void) { return cl_feed_now_ms(); }

/* Deadline for cluster operations: the call's, capped. */
static int64_t op_deadline(srv_call *c, int64_t cap_ms) {
  int64_t d = srv_deadline_ms(c), cap = wall_ms() + cap_ms;
  return d && d < cap ? d : cap;
}

/* ----------------------------------------------------------- forwarding */

/* One channel to the current leader, shared by the forwarding workers.
 * Each call holds a reference: a worker that finds the leader moved
 * replaces the channel while others may still be calling through the old
 * one, which is closed by whoever lets go of it last. */
typedef struct fwd_ref {
  cl_client *c;
  int refs; /* the slot's, plus one per call in flight; guarded by fwd_mu */
} fwd_ref;

static pthread_mutex_t fwd_mu = PTHREAD_MUTEX_INITIALIZER;
static fwd_ref *fwd_cur;
static char fwd_target[CL_REPL_ADDR_MAX];

/* Drops a reference (fwd_mu held); the last one closes the channel. */
static void fwd_unref(fwd_ref *f) {
  if (f && --f->refs == 0) {
    cl_client_close(f->c);
    free(f);
  }
}

static void fwd_release(fwd_ref *f) {
  pthread_mutex_lock(&fwd_mu);
  fwd_unref(f);
  pthread_mutex_unlock(&fwd_mu);
}

/* Client options for a call to the node at `api` (borrowed). */
static void peer_options(const cl_grpc_peer_config *cfg, const char *api, cl_client_options *o) {
  cl_client_options_init(o);
  o->target = api;
  o->plaintext = cfg->plaintext;
  o->ca_pem_file = cfg->ca;
  o->cert_pem_file = cfg->cert;
  o->key_pem_file = cfg->key;
}

/* A reference to the channel to `api` (fwd_release it after the call). */
static fwd_ref *leader_client(const cl_grpc_peer_config *cfg, const char *api, cl_err *err) {
  pthread_mutex_lock(&fwd_mu);
  if (fwd_cur && strcmp(fwd_target, api) != 0) {
    fwd_unref(fwd_cur); /* calls through it keep it until they end */
    fwd_cur = NULL;
  }
  if (!fwd_cur) {
    cl_client_options o;
    peer_options(cfg, api, &o);
    o.timeout_ms = 30000;
    o.md_key = FORWARDED_MD;
    o.md_value = "1";
    fwd_ref *f = calloc(1, sizeof *f);
    if (!f) {
      cl_err_set(err, CL_ENOMEM, "out of memory");
    } else if (cl_client_open(&o, &f->c, err) != 0) {
      free(f);
    } else {
      f->refs = 1;
      fwd_cur = f;
      snprintf(fwd_target, sizeof fwd_target, "%s", api);
    }
  }
  fwd_ref *f = fwd_cur;
  if (f)
    f->refs++;
  pthread_mutex_unlock(&fwd_mu);
  return f;
}

void cl_grpc_forward_close(void) {
  pthread_mutex_lock(&fwd_mu);
  fwd_unref(fwd_cur);
  fwd_cur = NULL;
  pthread_mutex_unlock(&fwd_mu);
}

/* The leader's positions into r (allocated as cl_log_append does). */
static int result_of(const Clinlog__V1__AppendResponse *resp, cl_append_result *r, cl_err *err) {
  size_t n = resp->n_positions;
  r->seq = calloc(n ? n : 1, sizeof *r->seq);
  r->version = calloc(n ? n : 1, sizeof *r->version);
  r->event_id = calloc(n ? n : 1, sizeof *r->event_id);
  if (!r->seq || !r->version || !r->event_id) {
    cl_append_result_free(r);
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  }
  r->n = n;
  for (size_t i = 0; i < n; i++) {
    r->seq[i] = resp->positions[i]->seq;
    r->version[i] = resp->positions[i]->stream_version;
    if (resp->positions[i]->event_id.len == 16)
      memcpy(r->event_id[i], resp->positions[i]->event_id.data, 16);
  }
  r->tree_size = resp->tree_size;
  r->duplicate = resp->duplicate;
  return 0;
}

int cl_grpc_forward(void *ctx, const char *leader_api, const cl_req_ctx *rc,
                    const Clinlog__V1__AppendBatch *b, cl_append_result *r, cl_err *err) {
  const cl_grpc_peer_config *cfg = ctx;
  memset(r, 0, sizeof *r);
  fwd_ref *ref = leader_client(cfg, leader_api, err);
  if (!ref)
    return err->code;
  cl_client *cl = ref->c;
  Clinlog__V1__AppendResponse *resp = NULL;
  cl_client_status st;
  /* the client's own deadline carries over to the leader */
  int64_t left = rc->deadline_ms ? rc->deadline_ms - wall_ms() : 30000;
  if (left > 30000)
    left = 30000;
  if (left < 1)
    left = 1;
  int code = cl_client_unary_md(cl, cl_grpc_method_path[M_APPEND], &b->base,
                                &clinlog__v1__append_response__descriptor, (int)left, rc->request_id,
                                NULL, NULL, 0, (ProtobufCMessage **)&resp, &st, err);
  fwd_release(ref);
  if (code == 0) {
    code = result_of(resp, r, err);
    clinlog__v1__append_response__free_unpacked(resp, NULL);
    return code;
  }
  /* the leader's answer, with its own code; a transport failure (the
   * leader unreachable, the deadline) is the leader being unavailable */
  if (!st.error) {
    char msg[CL_ERR_MSG_SIZE];
    snprintf(msg, sizeof msg, "%s", st.details[0] ? st.details : err->msg);
    return cl_err_set(err, st.code == CL_GRPC_DEADLINE_EXCEEDED ? CL_ETIMEDOUT : CL_EUNAVAILABLE,
                      "forwarding to the leader at %s: %s", leader_api, msg);
  }
  if (st.error == CL_ECONFLICT) {
    snprintf(r->conflict_stream, sizeof r->conflict_stream, "%.*s",
             (int)sizeof r->conflict_stream - 1, st.stream);
    r->conflict_current = st.current_version;
  }
  return cl_err_set(err, st.error, "%s", st.details);
}

/* --------------------------------------------------------------- Status */

static cl_repl *repl_of(srv_call *c) { return cl_svc_repl(srv_svc(c)); }

static void finish_status(srv_call *c) {
  cl_repl_status st;
  cl_err err;
  cl_err_clear(&err);
  if (cl_repl_get_status(repl_of(c), &st, op_deadline(c, 5000), &err) != 0) {
    srv_finish_err(c, &err);
    return;
  }
  Clinlog__V1__ClusterStatus cs = CLINLOG__V1__CLUSTER_STATUS__INIT;
  Clinlog__V1__NodeStatus ns[CL_REPL_MAX_MEMBERS], *nsp[CL_REPL_MAX_MEMBERS];
  uint64_t size;
  uint8_t root[32];
  cl_log_head(cl_svc_log(srv_svc(c)), &size, root);
  cs.node_id = st.id;
  cs.state = (char *)st.state;
  cs.term = st.term;
  cs.leader_id = st.leader_id;
  cs.leader_api_address = st.leader_api;
  cs.commit_index = st.commit_index;
  cs.applied_index = st.store_applied;
  cs.last_index = st.last_index;
  cs.tree_size = size;
  cs.root_hash = (ProtobufCBinaryData){32, root};
  int leader = !strcmp(st.state, "leader");
  for (size_t i = 0; i < st.n; i++) {
    clinlog__v1__node_status__init(&ns[i]);
    ns[i].id = st.members[i].id;
    ns[i].raft_address = st.members[i].raft_address;
    ns[i].api_address = st.members[i].api_address;
    ns[i].role = (char *)cl_repl_role_name(st.members[i].role);
    ns[i].state = st.members[i].id == st.id ? (char *)st.state
                  : st.members[i].id == st.leader_id ? "leader" : "";
    if (leader) {
      ns[i].match_index = st.members[i].match_index;
      ns[i].lag = st.last_index > st.members[i].match_index
                      ? st.last_index - st.members[i].match_index : 0;
    }
    nsp[i] = &ns[i];
  }
  cs.n_nodes = st.n;
  cs.nodes = nsp;
  srv_finish(c, GRPC_STATUS_OK, "", &cs.base);
}

static int need_repl(srv_call *c) {
  if (repl_of(c))
    return 1;
  srv_finish(c, GRPC_STATUS_UNIMPLEMENTED, "this server runs without replication", NULL);
  return 0;
}

static void svc_cluster_status(srv_call *c, int ok) {
  (void)ok;
  if (need_repl(c))
    finish_status(c);
}

/* Membership calls: a follower points at the leader. */
static void membership_done(srv_call *c, int rc, cl_err *err) {
  if (rc == CL_ENOTLEADER) {
    cl_svc_route route;
    cl_svc_leader(srv_svc(c), &route);
    srv_finish_not_leader(c, &route);
  } else if (rc) {
    srv_finish_err(c, err);
  } else {
    finish_status(c);
  }
}

static void svc_add_node(srv_call *c, int ok) {
  (void)ok;
  const Clinlog__V1__AddNodeRequest *r = (const Clinlog__V1__AddNodeRequest *)c->req;
  if (!need_repl(c))
    return;
  cl_err err;
  cl_err_clear(&err);
  srv_block(c->srv, 1); /* a promotion may take minutes */
  int rc = cl_repl_add(repl_of(c), r->id, r->raft_address, r->api_address, !r->no_promote,
                       op_deadline(c, 600000), &err);
  srv_block(c->srv, 0);
  membership_done(c, rc, &err);
}

static void svc_remove_node(srv_call *c, int ok) {
  (void)ok;
  const Clinlog__V1__RemoveNodeRequest *r = (const Clinlog__V1__RemoveNodeRequest *)c->req;
  if (!need_repl(c))
    return;
  cl_err err;
  cl_err_clear(&err);
  srv_block(c->srv, 1);
  int rc = cl_repl_remove(repl_of(c), r->id, op_deadline(c, 60000), &err);
  srv_block(c->srv, 0);
  membership_done(c, rc, &err);
}

static void svc_transfer_leadership(srv_call *c, int ok) {
  (void)ok;
  const Clinlog__V1__TransferLeadershipRequest *r =
      (const Clinlog__V1__TransferLeadershipRequest *)c->req;
  if (!need_repl(c))
    return;
  cl_err err;
  cl_err_clear(&err);
  srv_block(c->srv, 1);
  int rc = cl_repl_transfer(repl_of(c), r->id, op_deadline(c, 30000), &err);
  srv_block(c->srv, 0);
  membership_done(c, rc, &err);
}

/* --------------------------------------------------------- FetchRecords */

typedef struct fetch {
  uint64_t next, to, chunk;
  uint8_t target_root[32];
  /* chunk being built */
  ProtobufCBinaryData *recs;
  size_t nrecs, bytes;
  Clinlog__V1__StreamKey *keys;
  Clinlog__V1__StreamKey **keyp;
  size_t nkeys;
  uint8_t (*tags)[32];
  uint8_t (*wrapped)[CL_WRAPPED_KEY_SIZE];
  cl_log *log;
} fetch;

static void fetch_clear(fetch *f) {
  for (size_t i = 0; i < f->nrecs; i++)
    free(f->recs[i].data);
  f->nrecs = 0;
  f->bytes = 0;
  f->nkeys = 0;
}

static void fetch_free(void *p) {
  fetch *f = p;
  fetch_clear(f);
  free(f->recs);
  free(f->keys);
  free(f->keyp);
  free(f->tags);
  free(f->wrapped);
  free(f);
}

/* Collects one record (and its stream's key when it starts the stream). */
static int fetch_rec(void *ctx, uint64_t seq, const uint8_t *rec, size_t len, cl_err *err) {
  fetch *f = ctx;
  (void)seq;
  uint8_t *copy = malloc(len ? len : 1);
  if (!copy)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  memcpy(copy, rec, len);
  f->recs[f->nrecs++] = (ProtobufCBinaryData){len, copy};
  f->bytes += len;
  Clinlog__V1__Record *r = clinlog__v1__record__unpack(NULL, len, rec);
  if (!r || r->stream_tag.len != 32) {
    if (r)
      clinlog__v1__record__free_unpacked(r, NULL);
    return cl_err_set(err, CL_ECORRUPT, "record %" PRIu64 " does not decode", seq);
  }
  int rc = 0;
  if (r->stream_version == 1) {
    size_t k = f->nkeys, wl = 0;
    rc = cl_log_wrapped_key(f->log, r->stream_tag.data, f->wrapped[k], CL_WRAPPED_KEY_SIZE, &wl,
                            err);
    if (rc == 0) {
      memcpy(f->tags[k], r->stream_tag.data, 32);
      clinlog__v1__stream_key__init(&f->keys[k]);
      f->keys[k].stream_tag = (ProtobufCBinaryData){32, f->tags[k]};
      f->keys[k].wrapped_key = (ProtobufCBinaryData){wl, f->wrapped[k]};
      f->keyp[k] = &f->keys[k];
      f->nkeys++;
    }
  }
  clinlog__v1__record__free_unpacked(r, NULL);
  return rc ? rc : (f->bytes >= FETCH_CHUNK_BYTES ? 1 : 0);
}

static void fetch_step(srv_call *c, int ok) {
  fetch *f = c->st;
  if (!ok || srv_cancelled(c)) {
    srv_finish(c, GRPC_STATUS_CANCELLED, "cancelled", NULL);
    return;
  }
  if (f->next > f->to) {
    srv_finish(c, GRPC_STATUS_OK, "", NULL);
    return;
  }
  fetch_clear(f);
  cl_err err;
  cl_err_clear(&err);
  uint64_t last = f->next + f->chunk - 1;
  if (last > f->to)
    last = f->to;
  int rc = cl_log_read_records(f->log, f->next, last, fetch_rec, f, &err);
  if (rc) {
    srv_finish_err(c, &err);
    return;
  }
  last = f->next + f->nrecs - 1; /* a byte budget may end the chunk early */
  uint8_t proof[64][32];
  size_t np = 0;
  if (last < f->to && (rc = cl_log_prove_consistency(f->log, last, f->to, proof, &np, &err))) {
    srv_finish_err(c, &err);
    return;
  }
  ProtobufCBinaryData ph[64];
  for (size_t i = 0; i < np; i++)
    ph[i] = (ProtobufCBinaryData){32, proof[i]};
  Clinlog__V1__RecordChunk ch = CLINLOG__V1__RECORD_CHUNK__INIT;
  ch.first_seq = f->next;
  ch.n_records = f->nrecs;
  ch.records = f->recs;
  ch.n_keys = f->nkeys;
  ch.keys = f->keyp;
  ch.n_consistency = np;
  ch.consistency = ph;
  ch.target_root = (ProtobufCBinaryData){32, f->target_root};
  f->next = last + 1;
  srv_send_msg(c, &ch.base, fetch_step);
}

static void svc_fetch_records(srv_call *c, int ok) {
  (void)ok;
  const Clinlog__V1__FetchRecordsRequest *r = (const Clinlog__V1__FetchRecordsRequest *)c->req;
  uint64_t size;
  cl_log_head(cl_svc_log(srv_svc(c)), &size, NULL);
  uint64_t from = r->from_seq, to = r->to_seq;
  uint32_t chunk = r->chunk_records ? r->chunk_records : FETCH_CHUNK;
  if (!from || to < from || to > size || chunk > 65536) {
    char msg[160];
    snprintf(msg, sizeof msg, "records %" PRIu64 "..%" PRIu64 ": this node holds 1..%" PRIu64
             " (chunk_records at most 65536)", from, to, size);
    srv_trailer(c, "clinlog-error", cl_errname(CL_EINVAL));
    srv_finish(c, GRPC_STATUS_OUT_OF_RANGE, msg, NULL);
    return;
  }
  fetch *f = calloc(1, sizeof *f);
  if (f) {
    f->recs = calloc(chunk, sizeof *f->recs);
    f->keys = calloc(chunk, sizeof *f->keys);
    f->keyp = calloc(chunk, sizeof *f->keyp);
    f->tags = calloc(chunk, sizeof *f->tags);
    f->wrapped = calloc(chunk, sizeof *f->wrapped);
  }
  if (!f || !f->recs || !f->keys || !f->keyp || !f->tags || !f->wrapped) {
    if (f)
      fetch_free(f);
    srv_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
    return;
  }
  f->log = cl_svc_log(srv_svc(c));
  f->next = from;
  f->to = to;
  f->chunk = chunk;
  cl_err err;
  if (cl_log_root_at(f->log, to, f->target_root, &err) != 0) {
    fetch_free(f);
    srv_finish_err(c, &err);
    return;
  }
  c->st = f;
  c->st_free = fetch_free;
  fetch_step(c, 1);
}

/* ------------------------------------------------- catch-up (client side) */

int cl_grpc_catchup(void *ctx, cl_log *log, const char *api, uint64_t size,
                      const uint8_t root[32], cl_err *err) {
  const cl_grpc_peer_config *cfg = ctx;
  uint64_t have;
  cl_log_head(log, &have, NULL);
  if (have >= size)
    return 0;
  cl_client_options o;
  peer_options(cfg, api, &o);
  cl_client *cl;
  int rc = cl_client_open(&o, &cl, err);
  if (rc)
    return rc;
  Clinlog__V1__FetchRecordsRequest req = CLINLOG__V1__FETCH_RECORDS_REQUEST__INIT;
  req.from_seq = have + 1;
  req.to_seq = size;
  cl_client_stream *st;
  if ((rc = cl_client_fetch_records(cl, &req, &st, err))) {
    cl_client_close(cl);
    return rc;
  }
  uint64_t next = have + 1;
  ProtobufCMessage *m;
  while ((rc = cl_client_stream_next(st, &m, err)) == 1) {
    Clinlog__V1__RecordChunk *ch = (Clinlog__V1__RecordChunk *)m;
    rc = 0;
    if (ch->target_root.len != 32 || memcmp(ch->target_root.data, root, 32) != 0)
      rc = cl_err_set(err, CL_EVERIFY, "%s serves another tree at %" PRIu64 " events", api, size);
    for (size_t i = 0; rc == 0 && i < ch->n_consistency; i++)
      if (ch->consistency[i].len != 32)
        rc = cl_err_set(err, CL_EVERIFY, "consistency proof hash %zu is not 32 bytes", i);
    cl_ingest_record *recs = rc ? NULL : calloc(ch->n_records ? ch->n_records : 1, sizeof *recs);
    cl_ingest_key *keys = rc ? NULL : calloc(ch->n_keys ? ch->n_keys : 1, sizeof *keys);
    uint8_t(*proof)[32] = rc ? NULL : calloc(ch->n_consistency ? ch->n_consistency : 1, 32);
    if (rc == 0 && (!recs || !keys || !proof))
      rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < ch->n_keys; i++) {
      if (ch->keys[i]->stream_tag.len != 32) {
        rc = cl_err_set(err, CL_EVERIFY, "stream key %zu without a 32-byte tag", i);
        break;
      }
      keys[i] = (cl_ingest_key){ch->keys[i]->stream_tag.data, ch->keys[i]->wrapped_key.data,
                                ch->keys[i]->wrapped_key.len};
    }
    for (size_t i = 0; rc == 0 && i < ch->n_records; i++)
      recs[i] = (cl_ingest_record){ch->records[i].data, ch->records[i].len};
    for (size_t i = 0; rc == 0 && i < ch->n_consistency; i++)
      memcpy(proof[i], ch->consistency[i].data, 32);
    if (rc == 0 && ch->first_seq != next)
      rc = cl_err_set(err, CL_EVERIFY, "chunk starts at %" PRIu64 ", expected %" PRIu64,
                      ch->first_seq, next);
    if (rc == 0)
      rc = cl_log_ingest(log, ch->first_seq, recs, ch->n_records, keys, ch->n_keys, size, root,
                         (const uint8_t(*)[32])proof, ch->n_consistency, err);
    next += ch->n_records;
    free(recs);
    free(keys);
    free(proof);
    protobuf_c_message_free_unpacked(m, NULL);
    if (rc)
      break;
  }
  cl_client_stream_free(st);
  cl_client_close(cl);
  if (rc < 0)
    return rc;
  cl_log_head(log, &have, NULL);
  if (have < size)
    return cl_err_set(err, CL_EUNAVAILABLE, "%s ended the stream at %" PRIu64 " of %" PRIu64, api,
                      have, size);
  return 0;
}

/* ------------------------------------------------ log key rotation */

static const cl_grpc_peer_config *peer_cfg;

void cl_grpc_set_peer_config(const cl_grpc_peer_config *cfg) { peer_cfg = cfg; }

/* One LogKeyStatus with the storage its bytes point into. */
typedef struct lk_status {
  Clinlog__V1__NodeLogKey m;
  uint8_t log_key[32], cur[32], staged[32];
  char api[CL_REPL_ADDR_MAX], staged_err[CL_ERR_MSG_SIZE], error[CL_ERR_MSG_SIZE];
} lk_status;

static void lk_fill(cl_log *log, uint64_t id, const char *api, lk_status *s) {
  cl_logkey_status st;
  cl_log_logkey_status(log, &st);
  clinlog__v1__node_log_key__init(&s->m);
  s->m.node_id = id;
  snprintf(s->api, sizeof s->api, "%s", api ? api : "");
  s->m.api_address = s->api;
  memcpy(s->log_key, st.signer_pk, 32);
  memcpy(s->cur, st.log_pk, 32);
  memcpy(s->staged, st.staged_pk, 32);
  if (st.have_key)
    s->m.log_key = (ProtobufCBinaryData){32, s->log_key};
  s->m.current_log_key = (ProtobufCBinaryData){32, s->cur};
  if (st.staged)
    s->m.staged_key = (ProtobufCBinaryData){32, s->staged};
  snprintf(s->staged_err, sizeof s->staged_err, "%s", st.staged ? "" : st.staged_err.msg);
  snprintf(s->error, sizeof s->error, "%s", st.error.msg);
  s->m.staged_error = s->staged_err;
  s->m.error = s->error;
}

static void svc_log_key_status(srv_call *c, int ok) {
  (void)ok;
  cl_svc *svc = srv_svc(c);
  uint64_t id = 0;
  char api[CL_REPL_ADDR_MAX] = "";
  if (repl_of(c)) {
    cl_repl_status st;
    cl_err err;
    if (cl_repl_get_status(repl_of(c), &st, op_deadline(c, 5000), &err) == 0) {
      id = st.id;
      for (size_t i = 0; i < st.n; i++)
        if (st.members[i].id == st.id)
          snprintf(api, sizeof api, "%s", st.members[i].api_address);
    }
  }
  lk_status s;
  lk_fill(cl_svc_log(svc), id, api, &s);
  srv_finish(c, GRPC_STATUS_OK, "", &s.m.base);
}

/* A member's LogKeyStatus over its API into s. */
static int lk_ask(const cl_repl_member *m, int64_t deadline, lk_status *s, cl_err *err) {
  cl_client_options o;
  cl_grpc_peer_config none = {.plaintext = 1};
  peer_options(peer_cfg ? peer_cfg : &none, m->api_address, &o);
  int64_t left = deadline - wall_ms();
  o.timeout_ms = left < 1000 ? 1000 : left > 10000 ? 10000 : (int)left;
  cl_client *cl;
  int rc = cl_client_open(&o, &cl, err);
  if (rc)
    return rc;
  Clinlog__V1__LogKeyStatusRequest req = CLINLOG__V1__LOG_KEY_STATUS_REQUEST__INIT;
  Clinlog__V1__NodeLogKey *r = NULL;
  cl_client_status st;
  rc = cl_client_unary(cl, cl_grpc_method_path[M_LOG_KEY_STATUS], &req.base,
                       &clinlog__v1__node_log_key__descriptor, (ProtobufCMessage **)&r, &st, err);
  cl_client_close(cl);
  if (rc)
    return rc;
  clinlog__v1__node_log_key__init(&s->m);
  s->m.node_id = m->id;
  snprintf(s->api, sizeof s->api, "%s", m->api_address);
  s->m.api_address = s->api;
  if (r->log_key.len == 32) {
    memcpy(s->log_key, r->log_key.data, 32);
    s->m.log_key = (ProtobufCBinaryData){32, s->log_key};
  }
  if (r->current_log_key.len == 32) {
    memcpy(s->cur, r->current_log_key.data, 32);
    s->m.current_log_key = (ProtobufCBinaryData){32, s->cur};
  }
  if (r->staged_key.len == 32) {
    memcpy(s->staged, r->staged_key.data, 32);
    s->m.staged_key = (ProtobufCBinaryData){32, s->staged};
  }
  snprintf(s->staged_err, sizeof s->staged_err, "%s", r->staged_error);
  snprintf(s->error, sizeof s->error, "%s", r->error);
  s->m.staged_error = s->staged_err;
  s->m.error = s->error;
  clinlog__v1__node_log_key__free_unpacked(r, NULL);
  return 0;
}

/* Is member s ready for a rotation to `pk`? 0, or why not into why. */
static int lk_ready(const lk_status *s, const uint8_t pk[32], char *why, size_t wn) {
  char hex[65];
  if (s->error[0]) {
    snprintf(why, wn, "node %llu (%.64s): %.200s", (unsigned long long)s->m.node_id, s->api,
             s->error);
    return -1;
  }
  if (s->m.staged_key.len != 32) {
    snprintf(why, wn, "node %llu (%.64s) has no staged log key: %.200s",
             (unsigned long long)s->m.node_id, s->api,
             s->staged_err[0] ? s->staged_err : "keys/log.key.new not found");
    return -1;
  }
  if (memcmp(s->staged, pk, 32) != 0) {
    cl_hex(s->staged, 32, hex);
    char want[65];
    cl_hex(pk, 32, want);
    snprintf(why, wn, "node %llu (%s) has another key staged (%.16s, not %.16s)",
             (unsigned long long)s->m.node_id, s->api, hex, want);
    return -1;
  }
  return 0;
}

static void finish_precondition(srv_call *c, int code, const char *msg) {
  c->final_code = code;
  srv_trailer(c, "clinlog-error", cl_errname(code));
  srv_finish(c, GRPC_STATUS_FAILED_PRECONDITION, msg, NULL);
}

static void rotate_log_key(srv_call *c) {
  const Clinlog__V1__RotateLogKeyRequest *r = (const Clinlog__V1__RotateLogKeyRequest *)c->req;
  cl_svc *svc = srv_svc(c);
  cl_log *log = cl_svc_log(svc);
  cl_err err;
  cl_err_clear(&err);
  cl_svc_route route;
  if (!cl_svc_leader(svc, &route)) {
    srv_finish_not_leader(c, &route);
    return;
  }
  if (r->new_public_key.len && r->new_public_key.len != 32) {
    cl_err_set(&err, CL_EINVAL, "new_public_key: expected 32 bytes, got %zu",
               r->new_public_key.len);
    srv_finish_err(c, &err);
    return;
  }
  int64_t deadline = op_deadline(c, 60000);
  /* what every member (voters and standbys: both apply the log) has */
  static lk_status nodes[CL_REPL_MAX_MEMBERS];
  static pthread_mutex_t one = PTHREAD_MUTEX_INITIALIZER; /* one rotation at a time */
  if (pthread_mutex_trylock(&one) != 0) {
    finish_precondition(c, CL_EAGAIN, "another log key rotation is in progress");
    return;
  }
  size_t n = 0;
  uint64_t self = 0;
  cl_repl_status st;
  memset(&st, 0, sizeof st);
  if (repl_of(c) && cl_repl_get_status(repl_of(c), &st, deadline, &err) != 0) {
    pthread_mutex_unlock(&one);
    srv_finish_err(c, &err);
    return;
  }
  self = st.id;
  const char *self_api = "";
  for (size_t i = 0; i < st.n; i++)
    if (st.members[i].id == self)
      self_api = st.members[i].api_address;
  lk_fill(log, self, self_api, &nodes[n++]);
  uint8_t pk[32];
  if (nodes[0].m.staged_key.len == 32)
    memcpy(pk, nodes[0].staged, 32);
  else if (r->new_public_key.len == 32)
    memcpy(pk, r->new_public_key.data, 32);
  else
    memset(pk, 0, 32);
  char why[512] = "";
  if (r->new_public_key.len == 32 && memcmp(pk, r->new_public_key.data, 32) != 0) {
    char a[65];
    cl_hex(pk, 32, a);
    snprintf(why, sizeof why, "node %llu (%s, the leader) has another key staged (%.16s)",
             (unsigned long long)self, self_api, a);
  } else {
    (void)!lk_ready(&nodes[0], pk, why, sizeof why);
  }
  for (size_t i = 0; !why[0] && i < st.n; i++) {
    const cl_repl_member *m = &st.members[i];
    if (m->id == self || m->role == CL_ROLE_SPARE)
      continue;
    lk_status *s = &nodes[n++];
    cl_err e;
    if (lk_ask(m, deadline, s, &e) != 0)
      snprintf(why, sizeof why, "node %llu (%.64s) did not answer LogKeyStatus: %.160s",
               (unsigned long long)m->id, m->api_address, e.msg);
    else
      (void)!lk_ready(s, pk, why, sizeof why);
  }
  if (why[0]) {
    pthread_mutex_unlock(&one);
    char msg[600];
    snprintf(msg, sizeof msg, "log key rotation refused, nothing committed: %s", why);
    finish_precondition(c, CL_ENOTFOUND, msg);
    return;
  }
  Clinlog__V1__NodeLogKey *np[CL_REPL_MAX_MEMBERS];
  for (size_t i = 0; i < n; i++)
    np[i] = &nodes[i].m;
  Clinlog__V1__RotateLogKeyResponse resp = CLINLOG__V1__ROTATE_LOG_KEY_RESPONSE__INIT;
  resp.n_nodes = n;
  resp.nodes = np;
  cl_logkey_batch lb;
  int rc = cl_logkey_rotation_batch(log, pk, r->reason, &lb, &err);
  if (rc) {
    pthread_mutex_unlock(&one);
    srv_finish_err(c, &err);
    return;
  }
  uint8_t old[32];
  memcpy(old, lb.old_pk, 32);
  resp.old_public_key = (ProtobufCBinaryData){32, old};
  resp.new_public_key = (ProtobufCBinaryData){32, pk};
  if (r->check) {
    cl_logkey_batch_free(&lb);
    resp.checked_only = 1;
    srv_finish(c, GRPC_STATUS_OK, "", &resp.base); /* packs nodes[] before the next call */
    pthread_mutex_unlock(&one);
    return;
  }
  cl_append_result ar;
  if (repl_of(c))
    rc = cl_repl_append(repl_of(c), &lb.b, deadline, &ar, &err);
  else
    rc = cl_log_append(log, &lb.b, &ar, &err);
  cl_logkey_batch_free(&lb);
  if (rc) {
    if (rc == CL_ECONFLICT)
      cl_append_result_free(&ar);
    pthread_mutex_unlock(&one);
    cl_err_prefix(&err, "log key rotation");
    srv_finish_err(c, &err);
    return;
  }
  resp.revoked_at_seq = ar.seq[1];
  resp.tree_size = ar.tree_size;
  snprintf(c->rctx.audit_what, sizeof c->rctx.audit_what, "seq:%llu-%llu",
           (unsigned long long)ar.seq[0], (unsigned long long)ar.seq[1]);
  cl_append_result_free(&ar);
  /* the leader applied it: did it switch? */
  cl_logkey_status ls;
  cl_log_logkey_status(log, &ls);
  if (ls.error.code || memcmp(ls.signer_pk, pk, 32) != 0) {
    pthread_mutex_unlock(&one);
    cl_err_set(&err, CL_EFAILED,
               "log key rotation committed at seq %llu, but this node did not "
               "switch: %s",
               (unsigned long long)resp.revoked_at_seq,
               ls.error.code ? ls.error.msg : "unknown reason");
    srv_finish_err(c, &err);
    return;
  }
  srv_finish(c, GRPC_STATUS_OK, "", &resp.base);
  pthread_mutex_unlock(&one);
}

/* The rotation asks every member over its API, then waits for its commit. */
static void svc_rotate_log_key(srv_call *c, int ok) {
  (void)ok;
  cl_server *s = c->srv; /* c may be gone once the rotation answered */
  srv_block(s, 1);
  rotate_log_key(c);
  srv_block(s, 0);
}

/* ------------------------------------------------------------ table */

static const cl_grpc_method_def CLUSTER_METHODS[] = {
    {M_CLUSTER_STATUS, &clinlog__v1__cluster_status_request__descriptor, svc_cluster_status},
    {M_ADD_NODE, &clinlog__v1__add_node_request__descriptor, svc_add_node},
    {M_REMOVE_NODE, &clinlog__v1__remove_node_request__descriptor, svc_remove_node},
    {M_TRANSFER_LEADERSHIP, &clinlog__v1__transfer_leadership_request__descriptor,
     svc_transfer_leadership},
    {M_FETCH_RECORDS, &clinlog__v1__fetch_records_request__descriptor, svc_fetch_records},
    {M_ROTATE_LOG_KEY, &clinlog__v1__rotate_log_key_request__descriptor, svc_rotate_log_key},
    {M_LOG_KEY_STATUS, &clinlog__v1__log_key_status_request__descriptor, svc_log_key_status},
};

const cl_grpc_service cl_grpc_cluster_service = {
    "clinlog.v1.Cluster", CLUSTER_METHODS, sizeof CLUSTER_METHODS / sizeof CLUSTER_METHODS[0],
    NULL, NULL};

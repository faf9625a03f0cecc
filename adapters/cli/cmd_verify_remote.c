/* clinlog verify --remote: the auditor's replay of a live node through its
 * API, trusting nothing the server says that it cannot prove.
 *
 *  1. GetCheckpoint(fresh) gives a signed checkpoint of the head (size N);
 *     its signature is checked with the log key valid at N. The log key
 *     history (store/logkey.h) is --log-key's log.pub, or learned from the
 *     log itself: the genesis event's key, then every KeyRegistered and
 *     KeyRevoked of "$log", each accepted only if its signature is by the
 *     log key in force before it (a chain of trust from genesis; the
 *     server's word on its keys is not used). Learned, the head's signature
 *     is checked after the replay.
 *  2. Read(from 1, N events, include_record) replays the log: for every
 *     event the stored record is decoded and checked against what the
 *     server says about the event (seq, id, hash, version, type, time), the
 *     event bytes against their hash, every signature (per event or per
 *     batch) verified, and the record appended as a Merkle leaf.
 *  3. The recomputed root must equal the checkpoint's (and an external
 *     checkpoint's at its size). If it does not, the first divergent leaf
 *     is located: prefix roots kept every BLOCK leaves are compared with the
 *     server's roots proven by consistency proofs against the signed root
 *     (binary search), then the leaves of that block with inclusion proofs.
 *
 * Exit status: 0 verified, 3 divergence, 1 could not run. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/cli/cli.h"
#include "clinlog/v1/event.pb-c.h"
#include "clinlog/v1/record.pb-c.h"
#include "store/checkpoint.h"
#include "store/keys.h"
#include "store/logkey.h"
#include "store/merkle.h"

#define BLOCK 4096 /* leaves between kept prefix roots */

typedef struct rv {
  cl_merkle_frontier fr; /* the replayed tree */
  uint64_t next;         /* seq expected next */
  uint64_t signatures, erased;
  int hashes_only;
  uint8_t (*bh)[32]; /* hashes of the batch being collected */
  uint32_t bsize, bcount;
  uint8_t (*roots)[32]; /* roots[i]: root at size (i + 1) * BLOCK */
  size_t nroots, cap;
  const cl_checkpoint *head; /* the head checkpoint (verified, or at the end if learning) */
  cl_logkeys keys;           /* the log key history: --log-key's, or learned */
  int learn;                 /* 1: keys learned from the log (trust from genesis) */
  /* "$log" key changes of the batch being collected, applied once its
   * signature checks out */
  struct {
    int revoke;
    uint8_t pk[32];
  } chg[8];
  size_t nchg;
  const cl_checkpoint *ext; /* external checkpoint (verified), or NULL */
  int ext_checked;
  int failed;
  uint64_t fail_seq;
  char what[CL_ERR_MSG_SIZE];
} rv;

static int failf(rv *v, uint64_t seq, const char *fmt, ...) CL_PRINTF(3, 4);
static int failf(rv *v, uint64_t seq, const char *fmt, ...) {
  if (!v->failed) {
    v->failed = 1;
    v->fail_seq = seq;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->what, sizeof v->what, fmt, ap);
    va_end(ap);
  }
  return -1;
}

static int no_put(void *ctx, unsigned level, uint64_t index, const uint8_t hash[32], cl_err *err) {
  (void)ctx, (void)level, (void)index, (void)hash, (void)err;
  return 0;
}

/* A "$log" key change (KeyRegistered/KeyRevoked of principal "$log", in
 * any stream, as the keyring counts it) in event e: noted in v->chg until
 * its signature is checked. */
static int note_key_change(rv *v, const Clinlog__V1__RecordedEvent *e) {
  if (e->event_type != CLINLOG__V1__EVENT__BODY_KEY_REGISTERED &&
      e->event_type != CLINLOG__V1__EVENT__BODY_KEY_REVOKED)
    return 0;
  /* the type is in the record, a leaf of the signed tree; a key change
   * served without its bytes could hide a revocation */
  if (!e->event.len)
    return v->learn
               ? failf(v, e->seq, "seq %llu: a key change served without its event; give --log-key",
                       (unsigned long long)e->seq)
               : 0;
  Clinlog__V1__Event *ev = clinlog__v1__event__unpack(NULL, e->event.len, e->event.data);
  if (!ev)
    return failf(v, e->seq, "seq %llu: the event does not decode", (unsigned long long)e->seq);
  const char *who = NULL;
  ProtobufCBinaryData pk = {0, NULL};
  int revoke = ev->body_case == CLINLOG__V1__EVENT__BODY_KEY_REVOKED;
  if (ev->body_case == CLINLOG__V1__EVENT__BODY_KEY_REGISTERED && ev->key_registered)
    who = ev->key_registered->principal_id, pk = ev->key_registered->public_key;
  else if (revoke && ev->key_revoked)
    who = ev->key_revoked->principal_id, pk = ev->key_revoked->public_key;
  int rc = 0;
  if (who && !strcmp(who, "$log")) {
    if (pk.len != 32)
      rc = failf(v, e->seq, "seq %llu: a $log key change with a malformed key",
                 (unsigned long long)e->seq);
    else if (v->nchg == sizeof v->chg / sizeof v->chg[0])
      rc = failf(v, e->seq, "seq %llu: too many $log key changes in one batch",
                 (unsigned long long)e->seq);
    else {
      v->chg[v->nchg].revoke = revoke;
      memcpy(v->chg[v->nchg++].pk, pk.data, 32);
    }
  }
  clinlog__v1__event__free_unpacked(ev, NULL);
  return rc;
}

/* The $log key changes signed by `signer`, whose signature covers seqs up
 * to `seq`: the signer must be the log key in force before them (the
 * newest unrevoked one of the history; with --log-key, a key of log.pub
 * valid at seq). Learning, they extend the history as the keyring does:
 * from/to = the batch's last seq. */
static int apply_key_changes(rv *v, const uint8_t signer[32], uint64_t seq) {
  if (!v->nchg)
    return 0;
  unsigned long long s = (unsigned long long)seq;
  const cl_logkey *k = cl_logkeys_find(&v->keys, signer);
  if (v->learn ? k != cl_logkeys_current(&v->keys) || !k : !k || !cl_logkey_valid_at(k, seq))
    return failf(v, seq,
                 "seq %llu: a $log key change not signed by the log key in force before it "
                 "(a forged log key?)",
                 s);
  for (size_t i = 0; v->learn && i < v->nchg; i++) {
    cl_logkey *t = (cl_logkey *)cl_logkeys_find(&v->keys, v->chg[i].pk);
    if (v->chg[i].revoke) {
      if (!t || t->to)
        return failf(v, seq, "seq %llu: revokes a $log key not in force", s);
      t->to = seq;
    } else {
      if (t || v->keys.n == CL_LOGKEYS_MAX)
        return failf(v, seq, "seq %llu: registers a $log key twice, or too many", s);
      /* registered after every key so far: `from` order is kept */
      v->keys.k[v->keys.n++] = (cl_logkey){.from = seq, .to = 0};
      memcpy(v->keys.k[v->keys.n - 1].pk, v->chg[i].pk, 32);
    }
  }
  v->nchg = 0;
  return 0;
}

static int check_signature(rv *v, const Clinlog__V1__Record *r) {
  unsigned long long seq = (unsigned long long)r->seq;
  const Clinlog__V1__Signature *s = r->signature;
  int shaped = s && s->key_id.len == 32 && s->signature.len == 64;
  if (r->batch_size == 0) {
    if (!shaped)
      return failf(v, r->seq, "record %llu: missing or malformed signature", seq);
    if (cl_verify_event(s->key_id.data, r->event_hash.data, s->signature.data) != 0)
      return failf(v, r->seq, "record %llu: signature does not verify", seq);
    v->signatures++;
    return apply_key_changes(v, s->key_id.data, r->seq);
  }
  if (r->batch_index != v->bcount || (v->bcount && r->batch_size != v->bsize) ||
      r->batch_size > CL_MAX_BATCH)
    return failf(v, r->seq, "record %llu: batch position %u/%u out of order", seq, r->batch_index,
                 r->batch_size);
  if (v->bcount == 0) {
    free(v->bh);
    v->bh = malloc((size_t)r->batch_size * 32);
    if (!v->bh)
      return failf(v, r->seq, "out of memory");
    v->bsize = r->batch_size;
  }
  memcpy(v->bh[v->bcount++], r->event_hash.data, 32);
  if (v->bcount < v->bsize)
    return s ? failf(v, r->seq, "record %llu: signature before the end of its batch", seq) : 0;
  v->bcount = 0;
  if (!shaped)
    return failf(v, r->seq, "record %llu: batch signature missing", seq);
  if (cl_verify_batch(s->key_id.data, (const uint8_t(*)[32])v->bh, v->bsize, s->signature.data))
    return failf(v, r->seq, "records %llu-%llu: batch signature does not verify",
                 seq - v->bsize + 1, seq);
  v->signatures++;
  return apply_key_changes(v, s->key_id.data, r->seq);
}

/* The genesis event must name the first log key (learning: it becomes the
 * root of trust) and the checkpoint's origin. */
static int check_genesis(rv *v, const Clinlog__V1__RecordedEvent *e) {
  if (!e->event.len)
    return 0;
  Clinlog__V1__Event *ev = clinlog__v1__event__unpack(NULL, e->event.len, e->event.data);
  int rc = 0;
  if (!ev || ev->body_case != CLINLOG__V1__EVENT__BODY_LOG_CREATED || !ev->log_created)
    rc = failf(v, 1, "event 1 is not LogCreated");
  else if (ev->log_created->log_public_key.len != 32)
    rc = failf(v, 1, "the genesis event names no log key");
  else if (v->learn) {
    v->keys.n = 1;
    v->keys.k[0] = (cl_logkey){.from = 1, .to = 0};
    memcpy(v->keys.k[0].pk, ev->log_created->log_public_key.data, 32);
  } else if (!v->keys.n || v->keys.k[0].from != 1 ||
             memcmp(ev->log_created->log_public_key.data, v->keys.k[0].pk, 32) != 0)
    rc = failf(v, 1, "the genesis event names another log key than --log-key's first");
  if (rc == 0 && strcmp(ev->log_created->origin, v->head->origin) != 0)
    rc = failf(v, 1, "the genesis event names origin \"%s\", the checkpoint \"%s\"",
               ev->log_created->origin, v->head->origin);
  if (ev)
    clinlog__v1__event__free_unpacked(ev, NULL);
  return rc;
}

/* Checks one event as served and adds its leaf. 0, or -1 with v->failed. */
static int replay_one(rv *v, const Clinlog__V1__RecordedEvent *e) {
  unsigned long long seq = (unsigned long long)e->seq;
  if (e->seq != v->next)
    return failf(v, v->next, "expected seq %llu, the server sent %llu", (unsigned long long)v->next,
                 seq);
  if (!e->record.len)
    return failf(v, e->seq, "seq %llu: the server sent no record", seq);
  Clinlog__V1__Record *r = clinlog__v1__record__unpack(NULL, e->record.len, e->record.data);
  if (!r)
    return failf(v, e->seq, "seq %llu: the record does not decode", seq);
  int64_t at =
      e->committed_at ? e->committed_at->seconds * 1000000000LL + e->committed_at->nanos : 0;
  int rc = 0;
  if (r->seq != e->seq)
    rc = failf(v, e->seq, "seq %llu: the record says seq %llu", seq, (unsigned long long)r->seq);
  else if (r->event_id.len != 16 || e->event_id.len != 16 ||
           memcmp(r->event_id.data, e->event_id.data, 16))
    rc = failf(v, e->seq, "seq %llu: event id differs from the record's", seq);
  else if (r->event_hash.len != 32 || e->event_hash.len != 32 ||
           memcmp(r->event_hash.data, e->event_hash.data, 32))
    rc = failf(v, e->seq, "seq %llu: event hash differs from the record's", seq);
  else if (r->stream_version != e->stream_version || r->event_type != e->event_type)
    rc = failf(v, e->seq, "seq %llu: stream version or type differs from the record's", seq);
  else if (r->committed_at_ns != at)
    rc = failf(v, e->seq, "seq %llu: commit time differs from the record's", seq);
  if (rc == 0 && e->event.len) {
    uint8_t h[32];
    cl_event_hash(e->event.data, e->event.len, h);
    if (memcmp(h, r->event_hash.data, 32) != 0)
      rc = failf(v, e->seq, "seq %llu: the event bytes do not match their hash", seq);
  }
  if (rc == 0 && e->erased)
    v->erased++;
  if (rc == 0 && e->seq == 1)
    rc = check_genesis(v, e);
  if (rc == 0)
    rc = note_key_change(v, e);
  if (rc == 0 && !v->hashes_only)
    rc = check_signature(v, r);
  clinlog__v1__record__free_unpacked(r, NULL);
  if (rc)
    return rc;
  uint8_t leaf[32], root[32];
  cl_err err;
  cl_merkle_leaf_hash(e->record.data, e->record.len, leaf);
  if (cl_merkle_frontier_append(&v->fr, leaf, no_put, NULL, &err) != 0)
    return failf(v, e->seq, "seq %llu: %s", seq, err.msg);
  v->next++;
  if (v->fr.size % BLOCK == 0) {
    if (v->nroots == v->cap) {
      size_t nc = v->cap ? v->cap * 2 : 64;
      void *p = realloc(v->roots, nc * 32);
      if (!p)
        return failf(v, e->seq, "out of memory");
      v->roots = p;
      v->cap = nc;
    }
    cl_merkle_frontier_root(&v->fr, v->roots[v->nroots++]);
  }
  if (v->ext && v->ext->size == v->fr.size) {
    cl_merkle_frontier_root(&v->fr, root);
    if (sodium_memcmp(root, v->ext->root, 32) != 0)
      return failf(v, e->seq, "the external checkpoint at size %llu does not match the records",
                   seq);
    v->ext_checked = 1;
  }
  return 0;
}

/* The server's root at size k, proven consistent with the signed head. */
static int proven_root(cl_client *c, const rv *v, uint64_t k, uint8_t root[32], cl_err *err) {
  Clinlog__V1__ProveConsistencyRequest req = CLINLOG__V1__PROVE_CONSISTENCY_REQUEST__INIT;
  req.old_size = k;
  req.new_size = v->head->size;
  Clinlog__V1__ConsistencyProof *q;
  int rc = cl_client_prove_consistency(c, &req, &q, NULL, err);
  if (rc)
    return rc;
  uint8_t path[CL_MERKLE_MAX_PROOF][32];
  if (q->n_hashes > CL_MERKLE_MAX_PROOF || q->old_root.len != 32)
    rc = cl_err_set(err, CL_EVERIFY, "malformed consistency proof");
  for (size_t i = 0; rc == 0 && i < q->n_hashes; i++) {
    if (q->hashes[i].len != 32)
      rc = cl_err_set(err, CL_EVERIFY, "malformed consistency proof");
    else
      memcpy(path[i], q->hashes[i].data, 32);
  }
  if (rc == 0)
    rc = cl_merkle_verify_consistency(k, v->head->size, q->old_root.data, v->head->root,
                                      (const uint8_t(*)[32])path, q->n_hashes, err);
  if (rc == 0)
    memcpy(root, q->old_root.data, 32);
  clinlog__v1__consistency_proof__free_unpacked(q, NULL);
  return rc;
}

/* The leaf the signed tree holds at seq, proven by an inclusion proof. */
static int proven_leaf(cl_client *c, const rv *v, uint64_t seq, uint8_t leaf[32], cl_err *err) {
  Clinlog__V1__ProveInclusionRequest req = CLINLOG__V1__PROVE_INCLUSION_REQUEST__INIT;
  req.seq = seq;
  req.tree_size = v->head->size;
  Clinlog__V1__InclusionProof *p;
  int rc = cl_client_prove_inclusion(c, &req, &p, NULL, err);
  if (rc)
    return rc;
  uint8_t path[CL_MERKLE_MAX_PROOF][32];
  if (p->n_hashes > CL_MERKLE_MAX_PROOF || p->leaf_hash.len != 32)
    rc = cl_err_set(err, CL_EVERIFY, "malformed inclusion proof");
  for (size_t i = 0; rc == 0 && i < p->n_hashes; i++) {
    if (p->hashes[i].len != 32)
      rc = cl_err_set(err, CL_EVERIFY, "malformed inclusion proof");
    else
      memcpy(path[i], p->hashes[i].data, 32);
  }
  if (rc == 0)
    rc = cl_merkle_verify_inclusion(p->leaf_hash.data, seq - 1, v->head->size,
                                    (const uint8_t(*)[32])path, p->n_hashes, v->head->root, err);
  if (rc == 0)
    memcpy(leaf, p->leaf_hash.data, 32);
  clinlog__v1__inclusion_proof__free_unpacked(p, NULL);
  return rc;
}

/* The replayed root differs from the signed one: find the first leaf that
 * differs and record it in v. */
static void locate(cl_client *c, rv *v) {
  cl_err err;
  uint8_t theirs[32], leaf[32];
  /* first block whose prefix root differs (roots commit to every leaf
   * before them, so the mismatch is monotonic) */
  size_t lo = 0, hi = v->nroots;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (proven_root(c, v, (uint64_t)(mid + 1) * BLOCK, theirs, &err) != 0) {
      failf(v, 0,
            "the replayed root differs from the signed checkpoint; locating it "
            "failed: %s",
            err.msg);
      return;
    }
    if (sodium_memcmp(theirs, v->roots[mid], 32) == 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  uint64_t start = (uint64_t)lo * BLOCK, end = start + BLOCK;
  if (end > v->head->size)
    end = v->head->size;
  Clinlog__V1__ReadRequest req = CLINLOG__V1__READ_REQUEST__INIT;
  req.stream = "";
  req.from = start + 1;
  req.max_count = end - start;
  req.include_record = 1;
  cl_client_stream *s;
  if (cl_client_read(c, &req, &s, &err) != 0) {
    failf(v, 0, "the replayed root differs from the signed checkpoint (%s)", err.msg);
    return;
  }
  ProtobufCMessage *m;
  int rc;
  while ((rc = cl_client_stream_next(s, &m, &err)) == 1) {
    Clinlog__V1__RecordedEvent *e = (Clinlog__V1__RecordedEvent *)m;
    uint64_t seq = e->seq;
    cl_merkle_leaf_hash(e->record.data, e->record.len, leaf);
    protobuf_c_message_free_unpacked(m, NULL);
    if (proven_leaf(c, v, seq, theirs, &err) != 0) {
      failf(v, seq, "seq %llu: no valid inclusion proof in the signed tree (%s)",
            (unsigned long long)seq, err.msg);
      break;
    }
    if (sodium_memcmp(theirs, leaf, 32) != 0) {
      failf(v, seq,
            "seq %llu: the record served differs from the leaf in the signed "
            "tree",
            (unsigned long long)seq);
      break;
    }
  }
  cl_client_stream_free(s);
  failf(v, 0, "the replayed root differs from the signed checkpoint at size %llu",
        (unsigned long long)v->head->size);
}

int cli_verify_remote(const cli_remote *r, int json, int hashes_only, const cl_logkeys *log_keys,
                      const char *note, size_t note_len) {
  cl_err err;
  cl_err_clear(&err);
  if (cl_crypto_init(&err))
    return cli_fail("verify", &err);
  cl_client *c;
  if (cli_remote_open(r, &c, &err))
    return cli_fail("verify", &err);
  int status = 1;
  double t0 = cli_now();
  rv v;
  memset(&v, 0, sizeof v);
  cl_merkle_frontier_init(&v.fr);
  v.next = 1;
  /* a key history learned from the log rests on the signatures of its
   * changes: --hashes-only skips signatures only with --log-key */
  v.hashes_only = hashes_only = hashes_only && log_keys;
  cl_checkpoint head, ext;
  if (log_keys)
    v.keys = *log_keys;
  v.learn = !log_keys;
  Clinlog__V1__GetCheckpointRequest creq = CLINLOG__V1__GET_CHECKPOINT_REQUEST__INIT;
  creq.fresh = 1;
  Clinlog__V1__Checkpoint *cp = NULL;
  if (cl_client_get_checkpoint(c, &creq, &cp, NULL, &err)) {
    status = cli_fail("verify: GetCheckpoint", &err);
    goto out;
  }
  v.head = &head;
  /* with --log-key the signatures are checked now; learning the keys from
   * the log, after the replay (the notes are parsed now, and trusted only
   * then) */
  if (log_keys ? cl_checkpoint_verify_logkeys(cp->note, strlen(cp->note), cp->origin, log_keys,
                                              &head, NULL, &err) != 0
               : cl_checkpoint_parse(cp->note, strlen(cp->note), &head, &err) != 0) {
    failf(&v, 0, "the server's signed checkpoint does not verify%s: %s",
          log_keys ? " with --log-key" : "", err.msg);
  } else if (head.size != cp->tree_size || cp->root_hash.len != 32 ||
             memcmp(head.root, cp->root_hash.data, 32) != 0 || strcmp(head.origin, cp->origin)) {
    failf(&v, 0, "the checkpoint's fields differ from its signed note");
  }
  if (!v.failed && note) {
    if (log_keys ? cl_checkpoint_verify_logkeys(note, note_len, head.origin, log_keys, &ext, NULL,
                                                &err) != 0
                 : cl_checkpoint_parse(note, note_len, &ext, &err) != 0)
      failf(&v, 0, "--checkpoint does not verify: %s", err.msg);
    else if (ext.size > head.size)
      failf(&v, 0,
            "--checkpoint is for size %llu but the log now has %llu events: "
            "truncated?",
            (unsigned long long)ext.size, (unsigned long long)head.size);
    else
      v.ext = &ext;
  }
  cli_progress prog;
  cli_progress_start(&prog, "verify");
  if (!v.failed && head.size) {
    Clinlog__V1__ReadRequest req = CLINLOG__V1__READ_REQUEST__INIT;
    req.stream = "";
    req.from = 1;
    req.max_count = head.size;
    req.include_record = 1;
    cl_client_stream *s;
    if (cl_client_read(c, &req, &s, &err)) {
      cli_progress_end(&prog);
      status = cli_fail("verify: Read", &err);
      goto out;
    }
    ProtobufCMessage *m;
    int rc;
    while ((rc = cl_client_stream_next(s, &m, &err)) == 1) {
      int bad = replay_one(&v, (Clinlog__V1__RecordedEvent *)m);
      protobuf_c_message_free_unpacked(m, NULL);
      if (bad)
        break;
      cli_progress_update(&prog, v.fr.size, head.size);
    }
    cl_client_stream_free(s);
    if (rc < 0 && !v.failed) {
      cli_progress_end(&prog);
      status = cli_fail("verify: Read", &err);
      goto out;
    }
    if (!v.failed && v.fr.size != head.size)
      failf(&v, v.next, "the server sent %llu events, the checkpoint commits to %llu",
            (unsigned long long)v.fr.size, (unsigned long long)head.size);
    if (!v.failed && v.bcount)
      failf(&v, head.size, "the log ends inside a signed batch");
  }
  cli_progress_end(&prog);
  uint8_t root[32];
  cl_merkle_frontier_root(&v.fr, root);
  if (!v.failed && sodium_memcmp(root, head.root, 32) != 0)
    locate(c, &v);
  if (!v.failed && v.ext && !v.ext_checked)
    failf(&v, 0, "--checkpoint (size %llu) was not reached", (unsigned long long)v.ext->size);
  if (!v.failed && v.learn) { /* the notes, with the key history the log proved */
    cl_checkpoint chk;
    if (cl_checkpoint_verify_logkeys(cp->note, strlen(cp->note), head.origin, &v.keys, &chk, NULL,
                                     &err) != 0)
      failf(&v, 0,
            "the server's signed checkpoint does not verify with the log keys of its $log "
            "history (%zu, from the genesis event): %s",
            v.keys.n, err.msg);
    else if (v.ext && cl_checkpoint_verify_logkeys(note, note_len, head.origin, &v.keys, &chk, NULL,
                                                   &err) != 0)
      failf(&v, 0, "--checkpoint does not verify with the log's $log key history: %s", err.msg);
  }
  double secs = cli_now() - t0;
  double rate = secs > 0 ? (double)v.fr.size / secs : 0;
  char rootb64[64];
  sodium_bin2base64(rootb64, sizeof rootb64, root, 32, sodium_base64_VARIANT_ORIGINAL);
  char keysrc[96];
  if (log_keys)
    snprintf(keysrc, sizeof keysrc, "--log-key, %zu key%s", log_keys->n,
             log_keys->n == 1 ? "" : "s");
  else
    snprintf(keysrc, sizeof keysrc, "the log: genesis and %zu rotation%s",
             v.keys.n ? v.keys.n - 1 : 0, v.keys.n == 2 ? "" : "s");
  if (json) {
    json_t *j = json_pack(
        "{s:b, s:s, s:I, s:I, s:s, s:s, s:s, s:I, s:I, s:I, s:b, s:f, s:f}", "ok", !v.failed,
        "server", cl_client_target(c), "events", (json_int_t)v.fr.size, "treeSize",
        (json_int_t)head.size, "rootHash", rootb64, "origin", head.origin, "logKey",
        log_keys ? "file" : "log", "checkpoints", (json_int_t)(v.failed ? 0 : 1 + v.ext_checked),
        "signatures", (json_int_t)v.signatures, "erased", (json_int_t)v.erased, "signaturesChecked",
        !hashes_only, "seconds", secs, "eventsPerSecond", rate);
    if (v.failed) {
      json_object_set_new(j, "failSeq", json_integer((json_int_t)v.fail_seq));
      json_object_set_new(j, "failure", json_string(v.what));
    }
    cli_print_json(stdout, j);
    json_decref(j);
  } else if (!v.failed) {
    printf("verified %s: %llu events, tree size %llu, root %s\n"
           "  signed checkpoint of %s verified (log key from %s)%s\n"
           "  %llu signatures%s, %llu erased\n"
           "  %.2f s (%.0f events/s)\n",
           cl_client_target(c), (unsigned long long)v.fr.size, (unsigned long long)head.size,
           rootb64, head.origin, keysrc, v.ext_checked ? "; --checkpoint matches" : "",
           (unsigned long long)v.signatures, hashes_only ? " (skipped: --hashes-only)" : "",
           (unsigned long long)v.erased, secs, rate);
  } else {
    printf("FAILED at seq %llu: %s\n", (unsigned long long)v.fail_seq, v.what);
  }
  status = v.failed ? 3 : 0;
out:
  free(v.bh);
  free(v.roots);
  if (cp)
    clinlog__v1__checkpoint__free_unpacked(cp, NULL);
  cl_client_close(c);
  return status;
}

/* Handlers of clinlog.v1.Log's proofs: signed checkpoints (GetCheckpoint,
 * with the log keys that sign them), RFC 9162 inclusion and consistency
 * proofs. The method table is svc_log.c's. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/grpc/server_int.h"
#include "adapters/grpc/svc_int.h"
#include "clinlog/v1/api.pb-c.h"
#include "store/checkpoint.h"
#include "store/logkey.h"
#include "store/merkle.h"

static cl_log *log_of(srv_call *c) { return cl_svc_log(srv_svc(c)); }

/* ------------------------------------------------- checkpoints & proofs */

static int get_note(cl_log *log, uint64_t size, char **note, size_t *len, cl_checkpoint *cp,
                    cl_err *err) {
  int rc = cl_log_get_checkpoint(log, size, note, len, err);
  if (rc)
    return rc;
  if ((rc = cl_checkpoint_parse(*note, *len, cp, err)) != 0 || (size && cp->size != size)) {
    free(*note);
    *note = NULL;
    return rc ? rc : cl_err_set(err, CL_ENOTFOUND, "no checkpoint at tree size %" PRIu64, size);
  }
  return 0;
}

/* The log keys that signed `note` (a checkpoint of cp->size): those of the
 * log's key history valid at that size whose signature it carries, oldest
 * first, into sig[] (*n of them). Before any rotation, and if the history
 * cannot be read, that is the current key. After a rotation an older
 * checkpoint names the retired key that signed it; the handover checkpoint
 * both. */
static void note_signers(cl_log *log, const char *note, size_t len, const cl_checkpoint *cp,
                         cl_logkeys *ks, ProtobufCBinaryData *sig, size_t *n) {
  cl_err err;
  *n = 0;
  if (cl_log_logkeys(log, ks, &err) == 0) {
    for (size_t i = 0; i < ks->n; i++) {
      cl_checkpoint tmp;
      if (cl_logkey_valid_at(&ks->k[i], cp->size) &&
          cl_checkpoint_verify(note, len, cp->origin, ks->k[i].pk, &tmp, &err) == 0)
        sig[(*n)++] = (ProtobufCBinaryData){32, ks->k[i].pk};
    }
  }
  if (*n == 0)
    sig[(*n)++] = (ProtobufCBinaryData){32, (uint8_t *)cl_log_public_key(log)};
}

void svc_get_checkpoint(srv_call *c, int ok) {
  (void)ok;
  const Clinlog__V1__GetCheckpointRequest *req = (const Clinlog__V1__GetCheckpointRequest *)c->req;
  cl_err err;
  cl_err_clear(&err);
  char *note = NULL;
  size_t len = 0;
  cl_checkpoint cp;
  int rc;
  if (req->fresh && !req->tree_size) {
    rc = cl_log_checkpoint(log_of(c), &note, &len, &err);
    if (rc == 0)
      rc = cl_checkpoint_parse(note, len, &cp, &err);
  } else {
    rc = get_note(log_of(c), req->tree_size, &note, &len, &cp, &err);
  }
  if (rc) {
    free(note);
    srv_finish_err(c, &err);
    return;
  }
  Clinlog__V1__Checkpoint out = CLINLOG__V1__CHECKPOINT__INIT;
  out.note = note;
  out.origin = cp.origin;
  out.tree_size = cp.size;
  out.root_hash = (ProtobufCBinaryData){32, cp.root};
  cl_logkeys *ks = malloc(sizeof *ks);
  ProtobufCBinaryData sig[CL_LOGKEYS_MAX];
  size_t nsig;
  if (!ks) {
    free(note);
    cl_err_set(&err, CL_ENOMEM, "out of memory");
    srv_finish_err(c, &err);
    return;
  }
  note_signers(log_of(c), note, len, &cp, ks, sig, &nsig);
  out.log_public_key = sig[nsig - 1]; /* the newest: the new key at a handover */
  out.n_log_public_keys = nsig;
  out.log_public_keys = sig;
  srv_finish(c, GRPC_STATUS_OK, "", &out.base);
  free(ks);
  free(note);
}

/* The size a proof defaults to: the latest checkpoint, if it covers `need`. */
static uint64_t default_size(cl_log *log, uint64_t need) {
  char *note;
  size_t len;
  cl_checkpoint cp;
  cl_err err;
  uint64_t size = 0;
  if (get_note(log, 0, &note, &len, &cp, &err) == 0) {
    if (cp.size >= need)
      size = cp.size;
    free(note);
  }
  if (!size)
    cl_log_head(log, &size, NULL);
  return size;
}

typedef struct rec_grab {
  uint8_t *p;
  size_t n;
} rec_grab;

static int grab(void *ctx, const cl_event_view *v, cl_err *err) {
  rec_grab *g = ctx;
  g->p = malloc(v->record_len);
  if (!g->p)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  memcpy(g->p, v->record, v->record_len);
  g->n = v->record_len;
  return 1;
}

void svc_prove_inclusion(srv_call *c, int ok) {
  (void)ok;
  const Clinlog__V1__ProveInclusionRequest *req = (const Clinlog__V1__ProveInclusionRequest *)c->req;
  cl_log *log = log_of(c);
  uint64_t seq = req->seq, size = req->tree_size ? req->tree_size : default_size(log, req->seq);
  uint8_t proof[CL_MERKLE_MAX_PROOF][32], leaf[32], root[32];
  size_t n = 0;
  cl_err err;
  cl_err_clear(&err);
  rec_grab g = {0};
  if (cl_log_prove_inclusion(log, seq, size, proof, &n, leaf, &err) ||
      cl_log_root_at(log, size, root, &err) || cl_log_read_all(log, seq, 1, grab, &g, &err)) {
    free(g.p);
    srv_finish_err(c, &err);
    return;
  }
  Clinlog__V1__InclusionProof out = CLINLOG__V1__INCLUSION_PROOF__INIT;
  ProtobufCBinaryData hashes[CL_MERKLE_MAX_PROOF];
  for (size_t i = 0; i < n; i++)
    hashes[i] = (ProtobufCBinaryData){32, proof[i]};
  out.seq = seq;
  out.leaf_index = seq - 1;
  out.tree_size = size;
  out.leaf_hash = (ProtobufCBinaryData){32, leaf};
  out.n_hashes = n;
  out.hashes = hashes;
  out.root_hash = (ProtobufCBinaryData){32, root};
  out.record = (ProtobufCBinaryData){g.n, g.p};
  char *note = NULL;
  size_t len;
  cl_checkpoint cp;
  if (get_note(log, size, &note, &len, &cp, &err) == 0)
    out.checkpoint = note;
  srv_finish(c, GRPC_STATUS_OK, "", &out.base);
  free(note);
  free(g.p);
}

void svc_prove_consistency(srv_call *c, int ok) {
  (void)ok;
  const Clinlog__V1__ProveConsistencyRequest *req = (const Clinlog__V1__ProveConsistencyRequest *)c->req;
  cl_log *log = log_of(c);
  uint64_t old = req->old_size,
           size = req->new_size ? req->new_size : default_size(log, req->old_size);
  uint8_t proof[CL_MERKLE_MAX_PROOF][32], oroot[32], root[32];
  size_t n = 0;
  cl_err err;
  cl_err_clear(&err);
  if (cl_log_prove_consistency(log, old, size, proof, &n, &err) ||
      cl_log_root_at(log, old, oroot, &err) || cl_log_root_at(log, size, root, &err)) {
    srv_finish_err(c, &err);
    return;
  }
  Clinlog__V1__ConsistencyProof out = CLINLOG__V1__CONSISTENCY_PROOF__INIT;
  ProtobufCBinaryData hashes[CL_MERKLE_MAX_PROOF];
  for (size_t i = 0; i < n; i++)
    hashes[i] = (ProtobufCBinaryData){32, proof[i]};
  out.old_size = old;
  out.new_size = size;
  out.old_root = (ProtobufCBinaryData){32, oroot};
  out.new_root = (ProtobufCBinaryData){32, root};
  out.n_hashes = n;
  out.hashes = hashes;
  char *note = NULL;
  size_t len;
  cl_checkpoint cp;
  if (get_note(log, size, &note, &len, &cp, &err) == 0)
    out.checkpoint = note;
  srv_finish(c, GRPC_STATUS_OK, "", &out.base);
  free(note);
}

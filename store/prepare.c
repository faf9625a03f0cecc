/* Prepare: the parallel half of an append. Validates a signed batch,
 * verifies its signatures against the keyring, authorizes its events for
 * the signer's roles, and turns it into a PreparedBatch: payloads encrypted
 * under each stream's data key (a new stream's key minted and carried
 * wrapped), expectations and the plaintext side effects of security events
 * (keyring changes, erasure targets) extracted, so the commit never
 * decrypts. Any number of threads prepare at once; prepare reads shared
 * state (keyring, keys) under their locks and writes none of it, except
 * minting pending keys (streamkey.c). A PreparedBatch holds no plaintext
 * PHI: it is what the Raft log carries. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "clinlog/v1/event.pb-c.h"
#include "store/alloc.h"
#include "store/event.h"
#include "store/log_int.h"

typedef struct prep {
  Clinlog__V1__Event **evs;
  size_t n;
  uint8_t (*hashes)[32];
  cl_keyring_change *kc; /* keyring changes of the batch, in event order */
  size_t nkc;
  uint8_t *dkeys; /* thread's secure scratch: 32 bytes per distinct stream */
  size_t dkeys_len;
  cl_hmap *tags; /* tag -> u64 stream index */
  cl_hmap *ids;
} prep;

static void prep_free(prep *p) {
  if (p->evs)
    for (size_t i = 0; i < p->n; i++)
      if (p->evs[i])
        clinlog__v1__event__free_unpacked(p->evs[i], NULL);
  cl_free(p->evs);
  cl_free(p->hashes);
  cl_free(p->kc);
  if (p->dkeys)
    sodium_memzero(p->dkeys, p->dkeys_len);
  cl_hmap_free(p->tags);
  cl_hmap_free(p->ids);
}

/* Keyring changes of the events into p->kc. */
static int derive_changes(prep *p, cl_err *err) {
  if (!(p->kc = cl_calloc(p->n, sizeof *p->kc)))
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  for (size_t i = 0; i < p->n; i++) {
    int rc = cl_keyring_change_of(p->evs[i], i, &p->kc[p->nkc], err);
    if (rc < 0)
      return rc;
    p->nkc += (size_t)rc;
  }
  return 0;
}

/* Authentication events belong in "$principal-<principal_id>" (sealed under
 * that stream's data key; system streams are never erased). */
static int principal_stream(const Clinlog__V1__Event *ev, size_t i, cl_err *err) {
  const char *pid = cl_event_principal(ev);
  static const char pre[] = "$principal-";
  if (!pid || !pid[0])
    return cl_err_set(err, CL_EMALFORMED, "events[%zu].%s.principal_id: required", i,
                      cl_event_type_name(ev->body_case));
  if (strncmp(ev->stream, pre, sizeof pre - 1) != 0 || strcmp(ev->stream + sizeof pre - 1, pid))
    return cl_err_set(err, CL_EMALFORMED, "events[%zu].stream: %s of %s belongs in %s%s", i,
                      cl_event_type_name(ev->body_case), pid, pre, pid);
  return 0;
}

/* An admin's event of a "$" system stream (or any at genesis). */
static int admin_system_event(const Clinlog__V1__Event *ev, size_t i, const char *roles,
                              int genesis, cl_err *err) {
  if (!genesis && !cl_roles_has(roles, CL_ROLE_ADMIN))
    return cl_err_set(err, CL_EDENIED, "events[%zu]: %s needs the admin role", i,
                      cl_event_type_name(ev->body_case));
  if (ev->stream[0] != '$')
    return cl_err_set(err, CL_EMALFORMED, "events[%zu].stream: %s belongs in a $ system stream",
                      i, cl_event_type_name(ev->body_case));
  return 0;
}

/* Authorization of event i for a signer with `roles`. */
static int authorize(const Clinlog__V1__Event *ev, size_t i, const char *roles, int genesis,
                     cl_err *err) {
  switch (ev->body_case) {
  case CLINLOG__V1__EVENT__BODY_LOG_CREATED:
    if (!genesis)
      return cl_err_set(err, CL_EDENIED, "events[%zu]: LogCreated only as the first event", i);
    return 0;
  case CLINLOG__V1__EVENT__BODY_KEY_REGISTERED:
  case CLINLOG__V1__EVENT__BODY_KEY_REVOKED:
    /* a log key rotation (store/logkey.h): the log key registers its
     * successor and revokes itself, in "$log", without an admin */
    if (cl_roles_has(roles, CL_ROLE_LOG) && !strcmp(ev->stream, CL_LOG_PRINCIPAL) &&
        !strcmp(ev->body_case == CLINLOG__V1__EVENT__BODY_KEY_REGISTERED
                    ? ev->key_registered->principal_id
                    : ev->key_revoked->principal_id,
                CL_LOG_PRINCIPAL))
      return 0;
    /* nobody else gives "$log" a key: a key an admin registered there would
     * sign audit records and checkpoints as the node (an admin may still
     * revoke a stolen log key) */
    if (ev->body_case == CLINLOG__V1__EVENT__BODY_KEY_REGISTERED && !genesis &&
        !strcmp(ev->key_registered->principal_id, CL_LOG_PRINCIPAL))
      return cl_err_set(err, CL_EDENIED,
                        "events[%zu]: only the log key registers a key of %s (clinlog keys "
                        "rotate-log)",
                        i, CL_LOG_PRINCIPAL);
    return admin_system_event(ev, i, roles, genesis, err);
  case CLINLOG__V1__EVENT__BODY_PRINCIPAL_REGISTERED:
    if (!genesis && !strcmp(ev->principal_registered->principal_id, CL_LOG_PRINCIPAL))
      return cl_err_set(err, CL_EDENIED,
                        "events[%zu]: %s is the log itself, registered by LogCreated", i,
                        CL_LOG_PRINCIPAL);
    return admin_system_event(ev, i, roles, genesis, err);
  case CLINLOG__V1__EVENT__BODY_STREAM_ERASED:
    return admin_system_event(ev, i, roles, genesis, err);
  case CLINLOG__V1__EVENT__BODY_CREDENTIAL_ENROLLED:
  case CLINLOG__V1__EVENT__BODY_CERTIFICATE_BOUND:
  case CLINLOG__V1__EVENT__BODY_CERTIFICATE_REVOKED:
  case CLINLOG__V1__EVENT__BODY_ROLES_CHANGED:
  case CLINLOG__V1__EVENT__BODY_CLIENT_KEYS_REGISTERED:
    if (!cl_roles_has(roles, CL_ROLE_ADMIN))
      return cl_err_set(err, CL_EDENIED, "events[%zu]: %s needs the admin role", i,
                        cl_event_type_name(ev->body_case));
    return principal_stream(ev, i, err);
  case CLINLOG__V1__EVENT__BODY_SESSION_STARTED:
  case CLINLOG__V1__EVENT__BODY_SESSION_ENDED:
  case CLINLOG__V1__EVENT__BODY_BREAK_GLASS_DECLARED:
    /* a node issues and ends sessions and grants break-glass, signing with the log key */
    if (!cl_roles_has(roles, CL_ROLE_LOG) && !cl_roles_has(roles, CL_ROLE_ADMIN))
      return cl_err_set(err, CL_EDENIED, "events[%zu]: %s is written by a node (the log key)", i,
                        cl_event_type_name(ev->body_case));
    return principal_stream(ev, i, err);
  case CLINLOG__V1__EVENT__BODY_ACCESS_RECORDED:
    /* the audit trail: written by the node that served the call, nothing else */
    if (!cl_roles_has(roles, CL_ROLE_LOG))
      return cl_err_set(err, CL_EDENIED,
                        "events[%zu]: AccessRecorded is written by a node (the log key)", i);
    if (strcmp(ev->stream, CL_AUDIT_STREAM) != 0)
      return cl_err_set(err, CL_EMALFORMED, "events[%zu].stream: AccessRecorded belongs in %s", i,
                        CL_AUDIT_STREAM);
    return 0;
  default:
    if (!strcmp(ev->stream, CL_AUDIT_STREAM))
      return cl_err_set(err, CL_EMALFORMED, "events[%zu].stream: %s holds AccessRecorded only", i,
                        CL_AUDIT_STREAM);
    /* system streams hold what the store and its operators write */
    if (ev->stream[0] == '$' && !genesis && !cl_roles_has(roles, CL_ROLE_ADMIN) &&
        !cl_roles_has(roles, CL_ROLE_SYSTEM))
      return cl_err_set(err, CL_EDENIED,
                        "events[%zu].stream: $ streams need the admin or system role", i);
    return 0;
  }
}

int cl_erasure_target(cl_log *log, const Clinlog__V1__Event *ev, size_t idx, uint8_t tag[32],
                      cl_err *err) {
  const char *s = ev->stream_erased->stream;
  int rc = cl_stream_name_check(s, strlen(s), err);
  if (rc)
    return cl_err_prefix(err, "events[%zu].stream_erased", idx);
  if (s[0] == '$') /* the keyring and the log's own history stay readable */
    return cl_err_set(err, CL_EDENIED,
                      "events[%zu].stream_erased.stream: system streams cannot be erased", idx);
  cl_stream_tag(log->tag_key, s, strlen(s), tag);
  return 0;
}

/* Keyring changes and erasure targets of the batch into pb. */
static int prepare_effects(cl_log *log, Clinlog__V1__PreparedBatch *pb, prep *p, cl_err *err) {
  size_t ne = 0;
  for (size_t i = 0; i < p->n; i++)
    ne += p->evs[i]->body_case == CLINLOG__V1__EVENT__BODY_STREAM_ERASED;
  if (p->nkc && !(pb->keyring = cl_calloc(p->nkc, sizeof *pb->keyring)))
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  if (ne && !(pb->erase_stream_tags = cl_calloc(ne, sizeof *pb->erase_stream_tags)))
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  for (size_t j = 0; j < p->nkc; j++) {
    if (cl_keyring_change_to_pb(&p->kc[j], &pb->keyring[j]))
      return cl_err_set(err, CL_ENOMEM, "out of memory");
    pb->n_keyring++;
  }
  for (size_t i = 0; i < p->n; i++) {
    if (p->evs[i]->body_case != CLINLOG__V1__EVENT__BODY_STREAM_ERASED)
      continue;
    uint8_t tag[32];
    int rc = cl_erasure_target(log, p->evs[i], i, tag, err);
    if (rc)
      return rc;
    if (cl_bytes_dup(&pb->erase_stream_tags[pb->n_erase_stream_tags++], tag, 32))
      return cl_err_set(err, CL_ENOMEM, "out of memory");
  }
  return 0;
}

/* Checks the signatures' shape: one key signs every event, one way. */
static int check_signatures(const Clinlog__V1__AppendBatch *b, uint8_t signer[32], cl_err *err) {
  size_t n = b->n_events;
  int batch_signed = b->batch_signature != NULL;
  if (batch_signed ? b->n_signatures != 0 : b->n_signatures != n)
    return cl_err_set(err, CL_EINVAL,
                      "signatures: need one per event (got %zu for %zu events) "
                      "or one batch_signature",
                      b->n_signatures, n);
  const Clinlog__V1__Signature *s0 = batch_signed ? b->batch_signature : b->signatures[0];
  if (!s0 || s0->key_id.len != 32)
    return cl_err_set(err, CL_EINVAL, "signature.key_id: must be a 32-byte Ed25519 public key");
  memcpy(signer, s0->key_id.data, 32);
  for (size_t i = 0; i < b->n_signatures; i++) {
    const Clinlog__V1__Signature *s = b->signatures[i];
    if (s->key_id.len != 32 || memcmp(s->key_id.data, signer, 32) != 0)
      return cl_err_set(err, CL_EINVAL,
                        "signatures[%zu]: every event of a batch must be signed by one key", i);
    if (s->signature.len != CL_SIG_SIZE)
      return cl_err_set(err, CL_EINVAL, "signatures[%zu].signature: must be 64 bytes", i);
  }
  if (batch_signed && b->batch_signature->signature.len != CL_SIG_SIZE)
    return cl_err_set(err, CL_EINVAL, "batch_signature.signature: must be 64 bytes");
  return 0;
}

/* Decodes every event: one signer principal, ids unique in the batch. */
static int decode_events(cl_log *log, const Clinlog__V1__AppendBatch *b, prep *p, char *principal,
                         size_t plen, cl_err *err) {
  size_t n = b->n_events;
  p->n = n;
  p->evs = cl_calloc(n, sizeof *p->evs);
  p->hashes = cl_malloc(n * 32);
  p->ids = cl_hmap_new(16, 1);
  if (!p->evs || !p->hashes || !p->ids)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  for (size_t i = 0; i < n; i++) {
    ProtobufCBinaryData e = b->events[i];
    if (e.len > log->o.max_event_size)
      return cl_err_set(err, CL_ETOOBIG, "events[%zu]: %zu bytes, limit %zu", i, e.len,
                        log->o.max_event_size);
    int rc = cl_event_decode(e.data, e.len, &p->evs[i], err);
    if (rc)
      return cl_err_prefix(err, "events[%zu]", i);
    cl_event_hash(e.data, e.len, p->hashes[i]);
    const char *pr = p->evs[i]->recorded_by->principal_id;
    if (i == 0)
      snprintf(principal, plen, "%s", pr);
    else if (strcmp(pr, principal) != 0)
      return cl_err_set(err, CL_EINVAL,
                        "events[%zu].recorded_by.principal_id: a batch has one "
                        "signer (%s), not %s",
                        i, principal, pr);
    uint8_t one = 1;
    if (cl_hmap_get(p->ids, p->evs[i]->event_id.data))
      return cl_err_set(err, CL_EINVAL, "events[%zu].event_id: duplicate within the batch", i);
    if (!cl_hmap_put(p->ids, p->evs[i]->event_id.data, &one))
      return cl_err_set(err, CL_ENOMEM, "out of memory");
  }
  return 0;
}

/* The last two batches this thread signed itself (cl_log_sign_batch,
 * cl_log_sign_batch_as: a call's events by the adapter's key and its audit
 * record by the log key): each for one use, by a prepare on the thread. */
#define OWN_SLOTS 2
static _Thread_local struct {
  const cl_log *log;
  uint8_t pk[CL_PUBKEY_SIZE];
  uint8_t sig[CL_SIG_SIZE];
  uint8_t digest[32]; /* of the hashes */
} own_sig[OWN_SLOTS];
static _Thread_local unsigned own_next;

static void hashes_digest(const uint8_t (*hashes)[32], size_t n, uint8_t out[32]) {
  crypto_generichash(out, 32, (const uint8_t *)hashes, n * 32, NULL, 0);
}

void cl_prepare_own_signed(const cl_log *log, const uint8_t (*hashes)[32], size_t n,
                           const uint8_t sig[CL_SIG_SIZE], const uint8_t pk[CL_PUBKEY_SIZE]) {
  unsigned k = own_next++ % OWN_SLOTS;
  own_sig[k].log = log;
  memcpy(own_sig[k].pk, pk, CL_PUBKEY_SIZE);
  memcpy(own_sig[k].sig, sig, CL_SIG_SIZE);
  hashes_digest(hashes, n, own_sig[k].digest);
}

/* Is sig, by signer over hashes, a batch this thread just signed itself?
 * Consumes the remembered batch it is, or, if none, every one of log's. */
static int own_batch(const cl_log *log, const uint8_t signer[32], const uint8_t (*hashes)[32],
                     size_t n, const uint8_t *sig) {
  uint8_t d[32];
  int have = 0;
  for (unsigned k = 0; k < OWN_SLOTS; k++)
    have |= own_sig[k].log == log;
  if (!have)
    return 0;
  hashes_digest(hashes, n, d);
  for (unsigned k = 0; k < OWN_SLOTS; k++)
    if (own_sig[k].log == log && sodium_memcmp(signer, own_sig[k].pk, CL_PUBKEY_SIZE) == 0 &&
        sodium_memcmp(sig, own_sig[k].sig, CL_SIG_SIZE) == 0 &&
        sodium_memcmp(d, own_sig[k].digest, 32) == 0) {
      own_sig[k].log = NULL;
      return 1;
    }
  for (unsigned k = 0; k < OWN_SLOTS; k++)
    if (own_sig[k].log == log)
      own_sig[k].log = NULL;
  return 0;
}

/* Verifies shape, signatures and authorization of `b`; decodes into p. */
static int prepare_check(cl_log *log, const Clinlog__V1__AppendBatch *b, prep *p,
                         uint8_t signer[32], char *principal, size_t plen, cl_err *err) {
  size_t n = b->n_events;
  if (n == 0)
    return cl_err_set(err, CL_EINVAL, "events: empty batch");
  if (n > CL_MAX_BATCH)
    return cl_err_set(err, CL_ETOOBIG, "events: %zu in one batch, limit %d", n, CL_MAX_BATCH);
  int rc = check_signatures(b, signer, err);
  if (rc || (rc = decode_events(log, b, p, principal, plen, err)))
    return rc;

  /* who signed, and may they? */
  uint64_t size;
  cl_log_head(log, &size, NULL);
  cl_keyring_entry ke;
  pthread_mutex_lock(&log->kr_mu);
  rc = cl_keyring_check_signer(log->keyring, signer, principal, size + 1, &ke, err);
  pthread_mutex_unlock(&log->kr_mu);
  int genesis = 0;
  if (rc == CL_EUNKNOWNKEY && n == 1) {
    cl_err e2;
    cl_keyring_change c;
    genesis = cl_keyring_change_of(p->evs[0], 0, &c, &e2) == 1 &&
              cl_keyring_genesis_step(size, p->evs[0]->body_case, &c, 1, signer);
    if (genesis) {
      rc = 0;
      ke.roles[0] = '\0';
    }
  }
  if (rc)
    return rc;
  if (b->batch_signature) {
    rc = own_batch(log, signer, (const uint8_t(*)[32])p->hashes, n,
                   b->batch_signature->signature.data)
             ? 0
             : cl_verify_batch(signer, (const uint8_t(*)[32])p->hashes, n,
                               b->batch_signature->signature.data);
    if (rc == CL_ENOMEM)
      return cl_err_set(err, rc, "out of memory");
    if (rc)
      return cl_err_set(err, CL_EBADSIG,
                        "batch_signature: does not verify over the %zu event hashes", n);
  } else {
    for (size_t i = 0; i < n; i++)
      if (cl_verify_event(signer, p->hashes[i], b->signatures[i]->signature.data) != 0)
        return cl_err_set(err, CL_EBADSIG, "signatures[%zu]: does not verify", i);
  }
  for (size_t i = 0; i < n; i++)
    if ((rc = authorize(p->evs[i], i, ke.roles, genesis, err)))
      return rc;
  return 0;
}

/* Allocates a protobuf-c message with the store's allocator and inits it. */
#define ALLOC_MSG(var, init)                                                                       \
  do {                                                                                             \
    (var) = cl_malloc(sizeof *(var));                                                              \
    if (var)                                                                                       \
      init(var);                                                                                   \
  } while (0)

/* The streams of the batch, in order of first appearance, with their data
 * keys (into p->dkeys); sidx[i] gets event i's stream index. */
static int prepare_streams(cl_log *log, prep *p, Clinlog__V1__PreparedBatch *pb, uint64_t *sidx,
                           cl_err *err) {
  for (size_t i = 0; i < p->n; i++) {
    uint8_t tag[32];
    const char *s = p->evs[i]->stream;
    cl_stream_tag(log->tag_key, s, strlen(s), tag);
    uint64_t *k = cl_hmap_get(p->tags, tag);
    if (k) {
      sidx[i] = *k;
      continue;
    }
    uint64_t idx = pb->n_streams;
    Clinlog__V1__PreparedStream *ps;
    ALLOC_MSG(ps, clinlog__v1__prepared_stream__init);
    if (!ps || !cl_hmap_put(p->tags, tag, &idx)) {
      cl_free(ps);
      return cl_err_set(err, CL_ENOMEM, "out of memory");
    }
    pb->streams[pb->n_streams++] = ps;
    sidx[i] = idx;
    if (cl_bytes_dup(&ps->stream_tag, tag, 32))
      return cl_err_set(err, CL_ENOMEM, "out of memory");
    int rc = cl_sk_for_prepare(log, tag, p->dkeys + 32 * idx, &ps->wrapped_key, err);
    if (rc)
      return rc == CL_ENOMEM ? rc : cl_err_prefix(err, "events[%zu].stream", i);
  }
  return 0;
}

static int prepare_expectations(cl_log *log, const Clinlog__V1__AppendBatch *b, prep *p,
                                Clinlog__V1__PreparedBatch *pb, cl_err *err) {
  for (size_t j = 0; j < b->n_expectations; j++) {
    const Clinlog__V1__StreamExpectation *x = b->expectations[j];
    int rc = cl_stream_name_check(x->stream, strlen(x->stream), err);
    if (rc)
      return cl_err_prefix(err, "expectations[%zu]", j);
    uint8_t tag[32];
    cl_stream_tag(log->tag_key, x->stream, strlen(x->stream), tag);
    uint64_t *k = cl_hmap_get(p->tags, tag);
    int kind = x->expected ? (int)x->expected->kind : 0;
    const char *why = NULL;
    if (!k)
      why = "names a stream with no event in the batch";
    else if (kind < 0 || kind > CLINLOG__V1__EXPECTED_VERSION__KIND__EXACT)
      why = "expected.kind: unknown value";
    else if (pb->streams[*k]->expected)
      why = "a second expectation for the same stream";
    if (why)
      return cl_err_set(err, CL_EINVAL, "expectations[%zu] (%s): %s", j, x->stream, why);
    Clinlog__V1__ExpectedVersion *ev;
    ALLOC_MSG(ev, clinlog__v1__expected_version__init);
    if (!ev)
      return cl_err_set(err, CL_ENOMEM, "out of memory");
    ev->kind = kind;
    ev->version = x->expected ? x->expected->version : 0;
    pb->streams[*k]->expected = ev;
  }
  return 0;
}

static Clinlog__V1__Signature *copy_signature(const uint8_t signer[32], const uint8_t *sig) {
  Clinlog__V1__Signature *sg;
  ALLOC_MSG(sg, clinlog__v1__signature__init);
  if (sg &&
      (cl_bytes_dup(&sg->key_id, signer, 32) || cl_bytes_dup(&sg->signature, sig, CL_SIG_SIZE))) {
    clinlog__v1__signature__free_unpacked(sg, NULL);
    sg = NULL;
  }
  return sg;
}

/* Encrypts every event into pb->events. */
static int prepare_events(const Clinlog__V1__AppendBatch *b, prep *p,
                          Clinlog__V1__PreparedBatch *pb, const uint64_t *sidx,
                          const uint8_t signer[32], cl_err *err) {
  for (size_t i = 0; i < p->n; i++) {
    Clinlog__V1__PreparedEvent *pe;
    ALLOC_MSG(pe, clinlog__v1__prepared_event__init);
    if (!pe)
      return cl_err_set(err, CL_ENOMEM, "out of memory");
    pb->events[pb->n_events++] = pe;
    const Clinlog__V1__Event *ev = p->evs[i];
    const uint8_t *tag = pb->streams[sidx[i]]->stream_tag.data;
    ProtobufCBinaryData plain = b->events[i];
    pe->event_type = ev->body_case;
    pe->ciphertext.len = plain.len + CL_AEAD_ABYTES;
    pe->ciphertext.data = cl_malloc(pe->ciphertext.len);
    pe->nonce.data = cl_malloc(CL_NONCE_SIZE);
    if (!pe->ciphertext.data || !pe->nonce.data ||
        cl_bytes_dup(&pe->event_id, ev->event_id.data, 16) ||
        cl_bytes_dup(&pe->stream_tag, tag, 32) || cl_bytes_dup(&pe->event_hash, p->hashes[i], 32))
      return cl_err_set(err, CL_ENOMEM, "out of memory");
    pe->nonce.len = CL_NONCE_SIZE;
    cl_event_seal(p->dkeys + 32 * sidx[i], tag, ev->event_id.data, plain.data, plain.len,
                  pe->nonce.data, pe->ciphertext.data);
    if (b->n_signatures &&
        !(pe->signature = copy_signature(signer, b->signatures[i]->signature.data)))
      return cl_err_set(err, CL_ENOMEM, "out of memory");
  }
  if (b->batch_signature &&
      !(pb->batch_signature = copy_signature(signer, b->batch_signature->signature.data)))
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  return 0;
}

static int prepare_build(cl_log *log, const Clinlog__V1__AppendBatch *b, prep *p,
                         const uint8_t signer[32], const char *principal,
                         Clinlog__V1__PreparedBatch *pb, cl_err *err) {
  size_t n = p->n;
  p->tags = cl_hmap_new(32, sizeof(uint64_t));
  pb->events = cl_calloc(n, sizeof *pb->events);
  pb->streams = cl_calloc(n, sizeof *pb->streams);
  p->dkeys = cl_secure_scratch(CL_SCRATCH_PREPARE, 32 * n);
  p->dkeys_len = 32 * n;
  if (!p->tags || !pb->events || !pb->streams || !p->dkeys)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  if (cl_bytes_dup(&pb->signer_key_id, signer, 32) ||
      !(pb->signer_principal = cl_strdup(principal)))
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  uint64_t *sidx = cl_malloc(n * sizeof *sidx);
  if (!sidx)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  int rc = prepare_streams(log, p, pb, sidx, err);
  if (rc == 0)
    rc = prepare_expectations(log, b, p, pb, err);
  if (rc == 0)
    rc = prepare_events(b, p, pb, sidx, signer, err);
  cl_free(sidx);
  if (rc == 0 && (rc = derive_changes(p, err)) == 0)
    rc = prepare_effects(log, pb, p, err);
  if (rc)
    return rc;
  pb->prepared_at_ns = cl_now_ns();
  return 0;
}

int cl_log_prepare(cl_log *log, const Clinlog__V1__AppendBatch *b, Clinlog__V1__PreparedBatch **out,
                   cl_err *err) {
  if (!log->have_keys)
    return cl_err_set(err, CL_EDENIED, "log opened without keys cannot append");
  prep p;
  memset(&p, 0, sizeof p);
  uint8_t signer[32];
  char principal[CL_PRINCIPAL_MAX];
  Clinlog__V1__PreparedBatch *pb = NULL;
  int rc = prepare_check(log, b, &p, signer, principal, sizeof principal, err);
  if (rc)
    goto done;
  ALLOC_MSG(pb, clinlog__v1__prepared_batch__init);
  if (!pb) {
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    goto done;
  }
  if ((rc = prepare_build(log, b, &p, signer, principal, pb, err))) {
    clinlog__v1__prepared_batch__free_unpacked(pb, NULL);
    pb = NULL;
    goto done;
  }
  *out = pb;
done:
  prep_free(&p);
  return rc;
}

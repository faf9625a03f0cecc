/* The log key's history, log.pub and rotation; see logkey.h for the rules
 * and the crash analysis. */
#include "store/logkey.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clinlog/v1/event.pb-c.h"
#include "store/alloc.h"
#include "store/event.h"
#include "store/log_int.h"

/* ---------------------------------------------------------- the history */

int cl_logkey_valid_at(const cl_logkey *k, uint64_t size) {
  return size >= k->from && (k->to == 0 || size <= k->to);
}

const cl_logkey *cl_logkeys_find(const cl_logkeys *ks, const uint8_t pk[32]) {
  for (size_t i = 0; i < ks->n; i++)
    if (memcmp(ks->k[i].pk, pk, 32) == 0)
      return &ks->k[i];
  return NULL;
}

const cl_logkey *cl_logkeys_current(const cl_logkeys *ks) {
  const cl_logkey *best = NULL;
  for (size_t i = 0; i < ks->n; i++)
    if (ks->k[i].to == 0 && (!best || ks->k[i].from > best->from))
      best = &ks->k[i];
  return best;
}

/* Inserts in `from` order. */
static int add_key(cl_logkeys *ks, const uint8_t pk[32], uint64_t from, uint64_t to, cl_err *err) {
  if (ks->n == CL_LOGKEYS_MAX)
    return cl_err_set(err, CL_ETOOBIG, "more than %d log keys", CL_LOGKEYS_MAX);
  size_t i = ks->n;
  for (; i > 0 && ks->k[i - 1].from > from; i--)
    ks->k[i] = ks->k[i - 1];
  memcpy(ks->k[i].pk, pk, 32);
  ks->k[i].from = from;
  ks->k[i].to = to;
  ks->n++;
  return 0;
}

int cl_logkeys_of_keyring(const cl_keyring *kr, cl_logkeys *out, cl_err *err) {
  out->n = 0;
  size_t pos = 0;
  const uint8_t *pk;
  const cl_keyring_entry *e;
  while (cl_keyring_next(kr, &pos, &pk, &e)) {
    if (strcmp(e->principal, CL_LOG_PRINCIPAL) != 0)
      continue;
    int rc = add_key(out, pk, e->registered_seq, e->revoked_seq, err);
    if (rc)
      return rc;
  }
  return 0;
}

int cl_logkeys_of_db(cl_db *db, cl_logkeys *out, cl_err *err) {
  out->n = 0;
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(db->db, db->ro, db->cf[CL_CF_KEYRING]);
  int rc = 0;
  for (rocksdb_iter_seek_to_first(it); rc == 0 && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
    size_t kl, vl;
    const char *k = rocksdb_iter_key(it, &kl);
    const char *v = rocksdb_iter_value(it, &vl);
    cl_keyring_entry e;
    if (kl != 32 || cl_keyring_entry_decode((const uint8_t *)v, vl, &e) != 0)
      rc = cl_err_set(err, CL_ECORRUPT, "keyring: malformed entry");
    else if (!strcmp(e.principal, CL_LOG_PRINCIPAL))
      rc = add_key(out, (const uint8_t *)k, e.registered_seq, e.revoked_seq, err);
  }
  if (rc == 0)
    rc = cl_iter_error(it, err, "keyring scan");
  rocksdb_iter_destroy(it);
  return rc;
}

int cl_log_logkeys(cl_log *log, cl_logkeys *out, cl_err *err) {
  pthread_mutex_lock(&log->kr_mu);
  int rc = cl_logkeys_of_keyring(log->keyring, out, err);
  pthread_mutex_unlock(&log->kr_mu);
  return rc;
}

/* ------------------------------------------------------------- log.pub */

static int b64_key(const char *p, size_t n, uint8_t pk[32]) {
  size_t got = 0;
  return sodium_base642bin(pk, 32, p, n, NULL, &got, NULL, sodium_base64_VARIANT_ORIGINAL) == 0 &&
                 got == 32
             ? 0
             : -1;
}

/* Strict decimal, at least one digit; *end past it. */
static int dec(const char *p, const char *lim, uint64_t *v, const char **end) {
  *v = 0;
  const char *q = p;
  for (; q < lim && *q >= '0' && *q <= '9'; q++) {
    if (*v > (UINT64_MAX - 9) / 10)
      return -1;
    *v = *v * 10 + (uint64_t)(*q - '0');
  }
  *end = q;
  return q == p ? -1 : 0;
}

/* "log-key: ed25519:<b64> FROM-[TO]" without its line end. */
static int parse_history_line(const char *p, size_t n, cl_logkeys *hist, unsigned line,
                              cl_err *err) {
  static const char pre[] = "log-key: ed25519:";
  const char *lim = p + n, *sp;
  uint8_t pk[32];
  uint64_t from, to = 0;
  p += sizeof pre - 1;
  if (!(sp = memchr(p, ' ', (size_t)(lim - p))) || b64_key(p, (size_t)(sp - p), pk) != 0 ||
      dec(sp + 1, lim, &from, &p) != 0 || from == 0 || p == lim || *p++ != '-' ||
      (p < lim && (dec(p, lim, &to, &p) != 0 || to < from)) || p != lim)
    return cl_err_set(err, CL_EMALFORMED,
                      "line %u: expected \"log-key: ed25519:<base64 key> FROM-[TO]\"", line);
  if (cl_logkeys_find(hist, pk))
    return cl_err_set(err, CL_EMALFORMED, "line %u: the same key twice", line);
  return add_key(hist, pk, from, to, err);
}

int cl_logkeys_parse_pub(const char *text, size_t len, cl_logkeys *out, char *origin, cl_err *err) {
  static const char hist_pre[] = "log-key: ", origin_pre[] = "origin: ";
  cl_logkeys hist;
  hist.n = 0;
  uint8_t cur[32];
  int have_cur = 0;
  unsigned line = 0;
  if (origin)
    origin[0] = '\0';
  for (const char *p = text, *end = text + len; p < end;) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    const char *next = nl ? nl + 1 : end;
    line++;
    if (n && p[n - 1] == '\r')
      n--;
    if (n >= sizeof hist_pre - 1 && !memcmp(p, hist_pre, sizeof hist_pre - 1)) {
      int rc = parse_history_line(p, n, &hist, line, err);
      if (rc)
        return rc;
    } else if (n >= sizeof origin_pre - 1 && !memcmp(p, origin_pre, sizeof origin_pre - 1)) {
      if (origin)
        snprintf(origin, 256, "%.*s", (int)(n - (sizeof origin_pre - 1)),
                 p + sizeof origin_pre - 1);
    } else if (!have_cur) {
      /* the "key:" line, or a plain .pub file's only line */
      const char *k = memchr(p, 'e', n);
      while (k && (size_t)(p + n - k) >= 8 && memcmp(k, "ed25519:", 8) != 0)
        k = memchr(k + 1, 'e', (size_t)(p + n - k - 1));
      if (k && (size_t)(p + n - k) >= 8) {
        if (b64_key(k + 8, (size_t)(p + n - k - 8), cur) != 0)
          return cl_err_set(err, CL_EMALFORMED, "line %u: not \"ed25519:<base64 32-byte key>\"",
                            line);
        have_cur = 1;
      }
    }
    p = next;
  }
  if (hist.n) {
    if (have_cur && !cl_logkeys_find(&hist, cur))
      return cl_err_set(err, CL_EMALFORMED, "the \"key:\" line names a key no log-key line has");
    *out = hist;
    return 0;
  }
  if (!have_cur)
    return cl_err_set(err, CL_EMALFORMED, "no \"ed25519:<base64 32-byte key>\" line");
  out->n = 0;
  return add_key(out, cur, 1, 0, err);
}

int cl_logkeys_load_pub(const char *path, cl_logkeys *out, char *origin, cl_err *err) {
  FILE *f = fopen(path, "r");
  if (!f)
    return cl_err_set(err, errno == ENOENT ? CL_ENOTFOUND : CL_EIO, "%s: %s", path,
                      strerror(errno));
  char buf[16384];
  size_t n = fread(buf, 1, sizeof buf, f);
  int bad = ferror(f) || n == sizeof buf;
  fclose(f);
  if (bad)
    return cl_err_set(err, CL_EIO, "%s: unreadable or over %zu bytes", path, sizeof buf - 1);
  int rc = cl_logkeys_parse_pub(buf, n, out, origin, err);
  return rc ? cl_err_prefix(err, "%s", path) : 0;
}

size_t cl_logkeys_format_pub(const char *origin, const uint8_t current[32], const cl_logkeys *ks,
                             char *out, size_t n) {
  char b64[64];
  sodium_bin2base64(b64, sizeof b64, current, 32, sodium_base64_VARIANT_ORIGINAL);
  int w = snprintf(out, n, "origin: %s\nkey: ed25519:%s\n", origin, b64);
  size_t len = w < 0 ? n : (size_t)w;
  for (size_t i = 0; ks->n > 1 && i < ks->n && len < n; i++) {
    const cl_logkey *k = &ks->k[i];
    sodium_bin2base64(b64, sizeof b64, k->pk, 32, sodium_base64_VARIANT_ORIGINAL);
    char to[24] = "";
    if (k->to)
      snprintf(to, sizeof to, "%llu", (unsigned long long)k->to);
    w = snprintf(out + len, n - len, "log-key: ed25519:%s %llu-%s\n", b64,
                 (unsigned long long)k->from, to);
    len = w < 0 ? n : len + (size_t)w;
  }
  return len < n ? len : 0;
}

/* --------------------------------------------------------- checkpoints */

int cl_checkpoint_verify_logkeys(const char *note, size_t len, const char *origin,
                                 const cl_logkeys *ks, cl_checkpoint *out, uint8_t signer[32],
                                 cl_err *err) {
  cl_checkpoint cp;
  int rc = cl_checkpoint_parse(note, len, &cp, err);
  if (rc)
    return rc;
  cl_err first;
  cl_err_clear(&first);
  unsigned tried = 0;
  for (size_t i = ks->n; i-- > 0;) { /* newest first */
    if (!cl_logkey_valid_at(&ks->k[i], cp.size))
      continue;
    tried++;
    cl_err e;
    if (cl_checkpoint_verify(note, len, origin, ks->k[i].pk, out, &e) == 0) {
      if (signer)
        memcpy(signer, ks->k[i].pk, 32);
      return 0;
    }
    if (!first.code || e.code == CL_EBADSIG) /* a bad signature says more than none */
      first = e;
  }
  if (!tried)
    return cl_err_set(err, CL_EUNKNOWNKEY,
                      "checkpoint: none of the %zu log keys known signs tree size %llu", ks->n,
                      (unsigned long long)cp.size);
  if (tried == 1)
    return cl_err_set(err, first.code, "%s", first.msg);
  return cl_err_set(err, first.code, "%s (%u log keys valid at size %llu tried)", first.msg, tried,
                    (unsigned long long)cp.size);
}

int cl_checkpoint_cosign(const char *note, size_t len, const char *name, const uint8_t sk[64],
                         char **out, size_t *out_len, cl_err *err) {
  cl_checkpoint cp;
  int rc = cl_checkpoint_parse(note, len, &cp, err);
  if (rc)
    return rc;
  char *mine;
  size_t ml;
  if ((rc = cl_checkpoint_sign(&cp, name, sk, &mine, &ml, err)))
    return rc;
  /* the same text (origin, size, root: checkpoints have no extension
   * lines), so its signature line belongs under the note's */
  const char *a = strstr(note, "\n\n"), *b = strstr(mine, "\n\n");
  if (!a || !b || a - note != b - mine || memcmp(note, mine, (size_t)(a - note)) != 0) {
    free(mine);
    return cl_err_set(err, CL_EMALFORMED, "checkpoint: a note with extension lines");
  }
  size_t sl = ml - (size_t)(b + 2 - mine);
  char *buf = cl_malloc(len + sl + 1);
  if (!buf) {
    free(mine);
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  }
  memcpy(buf, note, len);
  memcpy(buf + len, b + 2, sl);
  buf[len + sl] = '\0';
  free(mine);
  *out = buf;
  *out_len = len + sl;
  return 0;
}

/* ------------------------------------------------------- key files */

static void key_path_of(cl_log *log, char *out, size_t n) {
  if (log->o.log_key_path)
    snprintf(out, n, "%s", log->o.log_key_path);
  else
    snprintf(out, n, "%s/keys/log.key", log->dir);
}

/* "<key file>.new" and its ".pub" renamed over the key file's. */
static int swap_key_files(const char *kp, cl_err *err) {
  char np[4200], pub[4200], npub[4300];
  snprintf(np, sizeof np, "%s.new", kp);
  snprintf(pub, sizeof pub, "%s.pub", kp);
  snprintf(npub, sizeof npub, "%s.new.pub", kp);
  int rc = cl_swap_in(np, kp, err);
  if (rc == 0 && access(npub, F_OK) == 0)
    rc = cl_swap_in(npub, pub, err);
  return rc;
}

/* Rewrites DIR/log.pub from the keyring unless it already says the same
 * (a temporary file renamed over it). */
static int refresh_pub(cl_log *log, char *path, size_t pn, cl_err *err) {
  cl_logkeys ks;
  int rc = cl_log_logkeys(log, &ks, err);
  if (rc)
    return rc;
  snprintf(path, pn, "%s/log.pub", log->dir);
  char want[sizeof ks.k / sizeof ks.k[0] * 80 + 400];
  uint8_t cur[32];
  pthread_mutex_lock(&log->kr_mu);
  memcpy(cur, log->log_pk, 32);
  pthread_mutex_unlock(&log->kr_mu);
  size_t wl = cl_logkeys_format_pub(log->origin, cur, &ks, want, sizeof want);
  if (!wl)
    return cl_err_set(err, CL_EINVAL, "log.pub: does not fit");
  size_t hl = 0;
  uint8_t *have = NULL;
  FILE *f = fopen(path, "r");
  if (f) {
    have = cl_malloc(sizeof want);
    hl = have ? fread(have, 1, sizeof want, f) : 0;
    fclose(f);
  }
  int same = have && hl == wl && memcmp(have, want, wl) == 0;
  cl_free(have);
  if (same)
    return 0;
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  f = fopen(tmp, "w");
  if (!f)
    return cl_err_set(err, CL_EIO, "%s: %s", tmp, strerror(errno));
  int ok = fwrite(want, 1, wl, f) == wl && fflush(f) == 0 && fsync(fileno(f)) == 0;
  ok = (fclose(f) == 0) && ok;
  if (!ok)
    return cl_err_set(err, CL_EIO, "%s: %s", tmp, strerror(errno));
  return cl_swap_in(tmp, path, err);
}

/* ------------------------------------------------------------- at open */

int cl_lk_settle(cl_log *log, cl_err *err) {
  cl_logkeys ks;
  int rc = cl_log_logkeys(log, &ks, err);
  if (rc)
    return rc;
  uint8_t cur[32];
  memcpy(cur, log->log_pk, 32);
  int fix_meta = 0;
  const cl_logkey *m = cl_logkeys_find(&ks, cur);
  if (m && m->to) { /* a rotation committed, and stopped before meta */
    const cl_logkey *c = cl_logkeys_current(&ks);
    if (!c)
      return cl_err_set(err, CL_ECORRUPT, "every log key of this log is revoked");
    memcpy(cur, c->pk, 32);
    fix_meta = 1;
  }
  if (log->have_log_key && memcmp(log->log_signer.pk, cur, 32) != 0) {
    char kp[4096], np[4200];
    key_path_of(log, kp, sizeof kp);
    snprintf(np, sizeof np, "%s.new", kp);
    cl_signer ns = {0};
    cl_err e;
    if (cl_signer_load(&ns, np, &e) == 0 && memcmp(ns.pk, cur, 32) == 0) {
      if (!log->o.read_only && (rc = swap_key_files(kp, err))) {
        cl_signer_free(&ns);
        return rc;
      }
      cl_signer_free(&log->log_signer);
      log->log_signer = ns;
    } else {
      cl_signer_free(&ns);
      const cl_logkey *o = cl_logkeys_find(&ks, log->log_signer.pk);
      char hex[65];
      cl_hex(cur, 32, hex);
      if (o && o->to)
        return cl_err_set(err, CL_EDENIED,
                          "the log key in %s was retired by a log key rotation at seq %llu; "
                          "the log signs with %.16s now",
                          kp, (unsigned long long)o->to, hex);
      return cl_err_set(err, CL_EDENIED, "the log key does not belong to this log");
    }
  }
  pthread_mutex_lock(&log->kr_mu);
  memcpy(log->log_pk, cur, 32);
  pthread_mutex_unlock(&log->kr_mu);
  if (log->o.read_only)
    return 0;
  if (fix_meta) {
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    cl_meta_put(wb, log->db, CL_META_LOG_PK, cur, 32);
    rc = cl_db_write(log->db, wb, err);
    rocksdb_writebatch_destroy(wb);
    if (rc)
      return rc;
  }
  char pub[4200];
  if (ks.n > 1 && cl_logkeys_find(&ks, cur))
    return refresh_pub(log, pub, sizeof pub, err);
  return 0;
}

int cl_lk_may_sign(cl_log *log, uint64_t size, cl_err *err) {
  int rc = 0;
  pthread_mutex_lock(&log->kr_mu);
  const cl_keyring_entry *e = cl_keyring_get(log->keyring, log->log_signer.pk);
  if (!e || strcmp(e->principal, CL_LOG_PRINCIPAL) != 0 || e->registered_seq > size) {
    /* a log whose keyring has no log key yet (the genesis batch being
     * committed) signs with the key the store was created with */
    size_t pos = 0;
    const uint8_t *pk;
    const cl_keyring_entry *o;
    int any = 0;
    while (!any && cl_keyring_next(log->keyring, &pos, &pk, &o))
      any = !strcmp(o->principal, CL_LOG_PRINCIPAL);
    if (any || e)
      rc = cl_err_set(err, CL_EUNKNOWNKEY,
                      "this node's log key is not a log key of this log at tree size %llu",
                      (unsigned long long)size);
  } else if (e->revoked_seq && size > e->revoked_seq) {
    rc = cl_err_set(err, CL_EREVOKED,
                    "this node's log key was revoked at seq %llu (a log key rotation): it signs "
                    "no checkpoint of tree size %llu",
                    (unsigned long long)e->revoked_seq, (unsigned long long)size);
  }
  pthread_mutex_unlock(&log->kr_mu);
  return rc;
}

/* ------------------------------------------------------------ rotation */

void cl_logkey_batch_free(cl_logkey_batch *b) {
  cl_free(b->ev[0]);
  cl_free(b->ev[1]);
  memset(b, 0, sizeof *b);
}

int cl_logkey_rotation_batch(cl_log *log, const uint8_t new_pk[32], const char *reason,
                             cl_logkey_batch *out, cl_err *err) {
  memset(out, 0, sizeof *out);
  if (!log->have_log_key)
    return cl_err_set(err, CL_EDENIED, "log key rotation: this node has no log key");
  cl_logkeys ks;
  int rc = cl_log_logkeys(log, &ks, err);
  if (rc)
    return rc;
  if (ks.n >= CL_LOGKEYS_MAX)
    return cl_err_set(err, CL_ETOOBIG, "log key rotation: the log has had %d log keys",
                      CL_LOGKEYS_MAX);
  char hex[65];
  cl_hex(new_pk, 32, hex);
  if (cl_logkeys_find(&ks, new_pk) || cl_log_key_info(log, new_pk, NULL, 0, NULL, 0, NULL) == 0)
    return cl_err_set(err, CL_EEXIST, "log key rotation: key %.16s is registered already", hex);
  pthread_mutex_lock(&log->ls_mu);
  cl_err why = log->lk_err;
  uint8_t old[32];
  memcpy(old, log->log_signer.pk, 32);
  pthread_mutex_unlock(&log->ls_mu);
  if (why.code)
    return cl_err_set(err, CL_EDENIED, "log key rotation: %s", why.msg);
  const cl_logkey *cur = cl_logkeys_current(&ks);
  if (!cur || memcmp(cur->pk, old, 32) != 0)
    return cl_err_set(err, CL_EDENIED,
                      "log key rotation: this node's log key is not the log's current one");

  Clinlog__V1__KeyRegistered kr = CLINLOG__V1__KEY_REGISTERED__INIT;
  Clinlog__V1__KeyRevoked kv = CLINLOG__V1__KEY_REVOKED__INIT;
  Clinlog__V1__Event reg = CLINLOG__V1__EVENT__INIT, rev = CLINLOG__V1__EVENT__INIT;
  memcpy(out->new_pk, new_pk, 32);
  memcpy(out->old_pk, old, 32);
  kr.principal_id = CL_LOG_PRINCIPAL;
  kr.public_key = (ProtobufCBinaryData){32, out->new_pk};
  reg.body_case = CLINLOG__V1__EVENT__BODY_KEY_REGISTERED;
  reg.key_registered = &kr;
  kv.principal_id = CL_LOG_PRINCIPAL;
  kv.public_key = (ProtobufCBinaryData){32, out->old_pk};
  kv.reason = (char *)(reason && reason[0] ? reason : "log key rotation");
  rev.body_case = CLINLOG__V1__EVENT__BODY_KEY_REVOKED;
  rev.key_revoked = &kv;
  size_t len[2];
  if ((rc = cl_event_pack_node(&reg, CL_LOG_PRINCIPAL, &out->ev[0], &len[0], err)) ||
      (rc = cl_event_pack_node(&rev, CL_LOG_PRINCIPAL, &out->ev[1], &len[1], err))) {
    cl_logkey_batch_free(out);
    return rc;
  }
  uint8_t hashes[2][32];
  cl_event_hash(out->ev[0], len[0], hashes[0]);
  cl_event_hash(out->ev[1], len[1], hashes[1]);
  uint8_t signer[32];
  if ((rc = cl_log_sign_batch(log, (const uint8_t(*)[32])hashes, 2, out->sig, signer, err))) {
    cl_logkey_batch_free(out);
    return rc;
  }
  if (memcmp(signer, old, 32) != 0) { /* switched under us */
    cl_logkey_batch_free(out);
    return cl_err_set(err, CL_EAGAIN, "log key rotation: the log key changed meanwhile");
  }
  clinlog__v1__signature__init(&out->bs);
  out->bs.key_id = (ProtobufCBinaryData){32, out->old_pk};
  out->bs.signature = (ProtobufCBinaryData){CL_SIG_SIZE, out->sig};
  out->evs[0] = (ProtobufCBinaryData){len[0], out->ev[0]};
  out->evs[1] = (ProtobufCBinaryData){len[1], out->ev[1]};
  clinlog__v1__append_batch__init(&out->b);
  out->b.n_events = 2;
  out->b.events = out->evs;
  out->b.batch_signature = &out->bs;
  return 0;
}

int cl_logkey_staged(cl_log *log, uint8_t pk[32], char *path, size_t pn, cl_err *err) {
  char kp[4096], np[4200];
  key_path_of(log, kp, sizeof kp);
  snprintf(np, sizeof np, "%s.new", kp);
  if (path)
    snprintf(path, pn, "%s", np);
  cl_signer s = {0};
  int rc = cl_signer_load(&s, np, err);
  if (rc)
    return rc == CL_ENOTFOUND ? cl_err_set(err, CL_ENOTFOUND, "no staged log key (%s)", np) : rc;
  memcpy(pk, s.pk, 32);
  cl_signer_free(&s);
  return 0;
}

/* The handover checkpoint of the head, signed by the new key (and the old
 * one, valid at the head when nothing was written after the rotation), and
 * meta's log key, in one synced write; then the log signs with the new
 * key. Caller holds the slot. Takes ownership of *nk on success. */
static int hand_over(cl_log *log, cl_signer *nk, uint64_t *size, cl_err *err) {
  uint8_t root[32];
  *size = log->frontier.size;
  cl_merkle_frontier_root(&log->frontier, root);
  cl_checkpoint cp;
  memset(&cp, 0, sizeof cp);
  snprintf(cp.origin, sizeof cp.origin, "%s", log->origin);
  cp.size = *size;
  memcpy(cp.root, root, 32);
  char *note = NULL, *both = NULL;
  size_t nl, bl;
  int rc = cl_checkpoint_sign(&cp, log->origin, nk->sk, &note, &nl, err);
  cl_err e;
  if (rc == 0 && cl_lk_may_sign(log, *size, &e) == 0) {
    if ((rc = cl_checkpoint_cosign(note, nl, log->origin, log->log_signer.sk, &both, &bl, err)) ==
        0) {
      free(note);
      note = both;
      nl = bl;
    }
  }
  if (rc == 0) {
    uint8_t k[8];
    cl_be64(k, *size);
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    rocksdb_writebatch_put_cf(wb, log->db->cf[CL_CF_CHECKPOINTS], (const char *)k, 8, note, nl);
    cl_meta_put(wb, log->db, CL_META_LOG_PK, nk->pk, 32);
    rc = cl_db_write(log->db, wb, err);
    rocksdb_writebatch_destroy(wb);
  }
  free(note);
  if (rc == 0) {
    pthread_mutex_lock(&log->ls_mu);
    cl_signer old = log->log_signer;
    log->log_signer = *nk;
    pthread_mutex_unlock(&log->ls_mu);
    cl_signer_free(&old);
    nk->sk = NULL;
    pthread_mutex_lock(&log->kr_mu);
    memcpy(log->log_pk, log->log_signer.pk, 32);
    pthread_mutex_unlock(&log->kr_mu);
    log->last_checkpoint = *size;
    log->lk_handover = *size;
  }
  return rc;
}

static void lk_step(cl_log *log, int s) {
  if (log->lk_step)
    log->lk_step(log->lk_step_ctx, s);
}

/* cl_lk_follow's work: 0 when the node signs with the log's current key
 * (switched now or before), else an error saying why it cannot. */
static int follow(cl_log *log, cl_err *err) {
  cl_logkeys ks;
  int rc = cl_log_logkeys(log, &ks, err);
  if (rc)
    return rc;
  const cl_logkey *cur = cl_logkeys_current(&ks);
  if (!cur || log->o.read_only || !log->have_log_key)
    return 0;
  const cl_logkey *m = cl_logkeys_find(&ks, log->log_signer.pk);
  char pub[4200];
  if (!m) /* a new member whose key the records applied so far do not register yet */
    return 0;
  if (!m->to) /* the key in use stands; log.pub follows the history */
    return ks.n > 1 ? refresh_pub(log, pub, sizeof pub, err) : 0;
  /* a rotation revoked the key this node signs with: its successor */
  lk_step(log, CL_LOGKEY_COMMITTED);
  char kp[4096], np[4200], hex[65];
  key_path_of(log, kp, sizeof kp);
  snprintf(np, sizeof np, "%s.new", kp);
  cl_hex(cur->pk, 32, hex);
  cl_signer nk = {0};
  cl_err e;
  if ((rc = cl_signer_load(&nk, np, &e)) != 0 || memcmp(nk.pk, cur->pk, 32) != 0) {
    char have[65] = "";
    if (rc == 0)
      cl_hex(nk.pk, 32, have);
    cl_signer_free(&nk);
    /* the public history is the log's all the same */
    cl_err pe;
    (void)!refresh_pub(log, pub, sizeof pub, &pe);
    if (rc == 0)
      return cl_err_set(err, CL_EDENIED,
                        "the log key was rotated at seq %llu to %.16s, but %s holds %.16s: this "
                        "node signs no checkpoint and no record of its own until %s holds the new "
                        "key (0600)",
                        (unsigned long long)m->to, hex, np, have, np);
    return cl_err_set(err, CL_EDENIED,
                      "the log key was rotated at seq %llu to %.16s, and this node lacks it "
                      "(%s: %s): it signs no checkpoint and no record of its own until the new "
                      "key is placed there (0600)",
                      (unsigned long long)m->to, hex, np, e.msg);
  }
  uint64_t size;
  if ((rc = hand_over(log, &nk, &size, err))) {
    cl_signer_free(&nk);
    return rc;
  }
  lk_step(log, CL_LOGKEY_META);
  if ((rc = swap_key_files(kp, err)))
    return rc;
  lk_step(log, CL_LOGKEY_SWAPPED);
  if ((rc = refresh_pub(log, pub, sizeof pub, err)))
    return rc;
  lk_step(log, CL_LOGKEY_PUB);
  return 0;
}

static void follow_record(cl_log *log) {
  cl_err err;
  cl_err_clear(&err);
  int rc = follow(log, &err);
  pthread_mutex_lock(&log->ls_mu);
  if (rc)
    log->lk_err = err;
  else
    cl_err_clear(&log->lk_err);
  log->lk_events++;
  pthread_mutex_unlock(&log->ls_mu);
}

void cl_lk_follow(cl_log *log) {
  if (!log->lk_changed)
    return;
  log->lk_changed = 0;
  follow_record(log);
}

void cl_lk_retry(cl_log *log) {
  pthread_mutex_lock(&log->ls_mu);
  int failed = log->lk_err.code != 0;
  pthread_mutex_unlock(&log->ls_mu);
  if (failed)
    follow_record(log);
}

uint64_t cl_log_logkey_events(cl_log *log, cl_err *err) {
  pthread_mutex_lock(&log->ls_mu);
  uint64_t n = log->lk_events;
  if (err)
    *err = log->lk_err;
  pthread_mutex_unlock(&log->ls_mu);
  return n;
}

int cl_log_logkey_retry(cl_log *log, cl_err *err) {
  int rc = cl_slot_acquire(log, err);
  if (rc)
    return rc;
  cl_lk_retry(log);
  cl_slot_release(log);
  return 0;
}

void cl_log_logkey_status(cl_log *log, cl_logkey_status *st) {
  memset(st, 0, sizeof *st);
  pthread_mutex_lock(&log->ls_mu);
  st->have_key = log->have_log_key;
  if (log->have_log_key)
    memcpy(st->signer_pk, log->log_signer.pk, 32);
  st->error = log->lk_err;
  st->events = log->lk_events;
  pthread_mutex_unlock(&log->ls_mu);
  pthread_mutex_lock(&log->kr_mu);
  memcpy(st->log_pk, log->log_pk, 32);
  pthread_mutex_unlock(&log->kr_mu);
  cl_logkeys ks;
  cl_err e;
  if (cl_log_logkeys(log, &ks, &e) == 0 && cl_logkeys_current(&ks))
    memcpy(st->log_pk, cl_logkeys_current(&ks)->pk, 32);
  cl_err_clear(&st->staged_err);
  st->staged = cl_logkey_staged(log, st->staged_pk, NULL, 0, &st->staged_err) == 0;
}

int cl_log_sign_batch(cl_log *log, const uint8_t (*hashes)[32], size_t n, uint8_t sig[64],
                      uint8_t pk[32], cl_err *err) {
  int rc = 0;
  pthread_mutex_lock(&log->ls_mu);
  if (!log->have_log_key)
    rc = cl_err_set(err, CL_EDENIED, "this node has no log key");
  else if (log->lk_err.code)
    rc = cl_err_set(err, CL_EREVOKED, "%s", log->lk_err.msg);
  else {
    cl_sign_batch(&log->log_signer, hashes, n, sig);
    memcpy(pk, log->log_signer.pk, 32);
  }
  pthread_mutex_unlock(&log->ls_mu);
  if (rc == 0)
    cl_prepare_own_signed(log, hashes, n, sig, pk);
  return rc;
}

void cl_log_sign_batch_as(cl_log *log, const cl_signer *s, const uint8_t (*hashes)[32], size_t n,
                          uint8_t sig[64]) {
  cl_sign_batch(s, hashes, n, sig);
  cl_prepare_own_signed(log, hashes, n, sig, s->pk);
}

/* Signs nb->buf (n bytes, owned by nb) as a batch of one and points nb->b
 * at it; on error nb->buf is freed. */
static int node_batch_sign(cl_log *log, size_t n, cl_node_batch *nb, cl_err *err) {
  uint8_t hash[1][32];
  cl_event_hash(nb->buf, n, hash[0]);
  int rc = cl_log_sign_batch(log, (const uint8_t(*)[32])hash, 1, nb->sig, nb->pk, err);
  if (rc) {
    cl_node_batch_free(nb);
    return rc;
  }
  nb->ev = (ProtobufCBinaryData){n, nb->buf};
  clinlog__v1__signature__init(&nb->bs);
  nb->bs.key_id = (ProtobufCBinaryData){32, nb->pk};
  nb->bs.signature = (ProtobufCBinaryData){64, nb->sig};
  clinlog__v1__append_batch__init(&nb->b);
  nb->b.n_events = 1;
  nb->b.events = &nb->ev;
  nb->b.batch_signature = &nb->bs;
  return 0;
}

int cl_log_node_batch(cl_log *log, Clinlog__V1__Event *ev, const char *stream, cl_node_batch *nb,
                      cl_err *err) {
  memset(nb, 0, sizeof *nb);
  size_t n;
  int rc = cl_event_pack_node(ev, stream, &nb->buf, &n, err);
  if (rc)
    return rc;
  return node_batch_sign(log, n, nb, err);
}

int cl_log_node_batch_bytes(cl_log *log, const uint8_t *ev, size_t n, cl_node_batch *nb,
                            cl_err *err) {
  memset(nb, 0, sizeof *nb);
  if (!(nb->buf = cl_malloc(n ? n : 1)))
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  memcpy(nb->buf, ev, n);
  return node_batch_sign(log, n, nb, err);
}

void cl_node_batch_free(cl_node_batch *nb) {
  cl_free(nb->buf);
  nb->buf = NULL;
}

int cl_log_signer_copy(cl_log *log, cl_signer *out, cl_err *err) {
  memset(out, 0, sizeof *out);
  int rc = 0;
  pthread_mutex_lock(&log->ls_mu);
  if (!log->have_log_key)
    rc = cl_err_set(err, CL_EDENIED, "this node has no log key");
  else if (log->lk_err.code)
    rc = cl_err_set(err, CL_EREVOKED, "%s", log->lk_err.msg);
  else if (!(out->sk = sodium_malloc(64)))
    rc = cl_err_set(err, CL_ENOMEM, "out of secure memory");
  else {
    memcpy(out->sk, log->log_signer.sk, 64);
    memcpy(out->pk, log->log_signer.pk, 32);
  }
  pthread_mutex_unlock(&log->ls_mu);
  return rc;
}

void cl_log_signer_pk(cl_log *log, uint8_t pk[32]) {
  pthread_mutex_lock(&log->ls_mu);
  memcpy(pk, log->log_signer.pk, 32);
  pthread_mutex_unlock(&log->ls_mu);
}

static void step(const cl_logkey_rotate_options *o, int s) {
  if (o && o->after_step)
    o->after_step(o->step_ctx, s);
}

int cl_logkey_rotate(cl_log *log, const cl_logkey_rotate_options *o, cl_logkey_rotate_report *rep,
                     cl_err *err) {
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  memset(rep, 0, sizeof *rep);
  if (log->o.read_only || !log->have_log_key)
    return cl_err_set(err, CL_EDENIED,
                      "log key rotation: needs the log opened writable with its "
                      "log key");
  cl_signer nk = {0};
  int rc;
  if (o && o->new_key) {
    if (!(nk.sk = sodium_malloc(64)))
      return cl_err_set(err, CL_ENOMEM, "out of secure memory");
    memcpy(nk.pk, o->new_key->pk, 32);
    memcpy(nk.sk, o->new_key->sk, 64);
  } else if ((rc = cl_signer_generate(&nk, err))) {
    return rc;
  }
  cl_logkey_batch lb;
  const char *reason = o && o->reason ? o->reason : "log key rotation";
  if ((rc = cl_logkey_rotation_batch(log, nk.pk, reason, &lb, err)))
    goto fail_key;
  memcpy(rep->old_pk, lb.old_pk, 32);
  memcpy(rep->new_pk, nk.pk, 32);
  key_path_of(log, rep->key_path, sizeof rep->key_path);
  snprintf(rep->pub_path, sizeof rep->pub_path, "%s/log.pub", log->dir);

  /* 1: the new key next to the key file, where the switch takes it from;
   * a stale one from a rotation that stopped before its commit goes */
  char np[4200], npub[4300];
  snprintf(np, sizeof np, "%s.new", rep->key_path);
  snprintf(npub, sizeof npub, "%s.new.pub", rep->key_path);
  unlink(np);
  unlink(npub);
  if ((rc = cl_signer_save(&nk, np, err)) || (rc = cl_sync_dir_of(np, err)))
    goto fail_batch;
  step(o, CL_LOGKEY_KEY_WRITTEN);

  /* 2: the keyring learns the new key and retires the old one; the commit
   * switches the log to the new key (3-5: cl_lk_follow) */
  log->lk_step = o ? o->after_step : NULL;
  log->lk_step_ctx = o ? o->step_ctx : NULL;
  cl_append_result r;
  rc = cl_log_append(log, &lb.b, &r, err);
  log->lk_step = NULL;
  if (rc == 0)
    rep->seq = r.seq[1];
  if (rc == 0 || rc == CL_ECONFLICT)
    cl_append_result_free(&r);
  if (rc) {
    unlink(np);
    unlink(npub);
    goto fail_batch;
  }
  cl_logkey_batch_free(&lb);
  cl_logkey_status st;
  cl_log_logkey_status(log, &st);
  if (st.error.code || memcmp(st.signer_pk, nk.pk, 32) != 0) {
    rc = cl_err_set(err, st.error.code ? st.error.code : CL_EFAILED, "%s",
                    st.error.code ? st.error.msg : "the log did not switch to the new key");
    cl_err_prefix(err, "log key rotation committed at seq %llu; reopening the log finishes it",
                  (unsigned long long)rep->seq);
    goto fail_key;
  }
  rep->tree_size = log->lk_handover;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  rep->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  cl_signer_free(&nk);
  return 0;
fail_batch:
  cl_logkey_batch_free(&lb);
fail_key:
  cl_signer_free(&nk);
  return rc;
}

/* Creating a data directory: its key files, its database and the genesis
 * events (1: LogCreated signed by the log key, 2: the first admin's
 * self-signed PrincipalRegistered), then the first checkpoint and log.pub.
 * A replica's directory gets the cluster's keys and origin and no events:
 * those arrive through replication. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clinlog/v1/event.pb-c.h"
#include "store/alloc.h"
#include "store/event.h"
#include "store/log_int.h"

static void path_join(char *out, size_t n, const char *dir, const char *name) {
  snprintf(out, n, "%s/%s", dir, name);
}

/* Packs `ev` with a fresh id and appends it, signed by `s`. */
static int append_one(cl_log *log, Clinlog__V1__Event *ev, const cl_signer *s, cl_err *err) {
  uint8_t id[16];
  cl_uuid_v4(id);
  ev->event_id.data = id;
  ev->event_id.len = 16;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  int64_t ns = cl_now_ns();
  ts.seconds = ns / 1000000000;
  ts.nanos = (int32_t)(ns % 1000000000);
  ev->occurred_at = &ts;
  size_t len = clinlog__v1__event__get_packed_size(ev);
  uint8_t *buf = cl_malloc(len);
  if (!buf)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  clinlog__v1__event__pack(ev, buf);
  uint8_t hash[32];
  cl_event_hash(buf, len, hash);
  Clinlog__V1__Signature sig = CLINLOG__V1__SIGNATURE__INIT, *sigs[1] = {&sig};
  uint8_t sigbytes[CL_SIG_SIZE];
  cl_sign_event(s, hash, sigbytes);
  sig.key_id.data = (uint8_t *)s->pk;
  sig.key_id.len = 32;
  sig.signature.data = sigbytes;
  sig.signature.len = CL_SIG_SIZE;
  ProtobufCBinaryData evb = {len, buf};
  Clinlog__V1__StreamExpectation x = CLINLOG__V1__STREAM_EXPECTATION__INIT, *xs[1] = {&x};
  Clinlog__V1__ExpectedVersion ex = CLINLOG__V1__EXPECTED_VERSION__INIT;
  ex.kind = CLINLOG__V1__EXPECTED_VERSION__KIND__NO_STREAM;
  x.stream = ev->stream;
  x.expected = &ex;
  Clinlog__V1__AppendBatch b = CLINLOG__V1__APPEND_BATCH__INIT;
  b.n_events = 1;
  b.events = &evb;
  b.n_signatures = 1;
  b.signatures = sigs;
  b.n_expectations = 1;
  b.expectations = xs;
  cl_append_result r;
  int rc = cl_log_append(log, &b, &r, err);
  if (rc == 0 || rc == CL_ECONFLICT)
    cl_append_result_free(&r);
  cl_free(buf);
  return rc;
}

int cl_log_create(const cl_log_options *o, const cl_log_genesis *g, cl_err *err) {
  if (!o || !o->dir || !g || (!g->replica && (!g->admin_principal || !g->admin)))
    return cl_err_set(err, CL_EINVAL, "create: dir, admin principal and admin key required");
  if (g->replica && (!o->master_key_path || !o->log_key_path || !g->origin))
    return cl_err_set(err, CL_EINVAL,
                      "create replica: the cluster's key files and origin required");
  int rc = cl_crypto_init(err);
  if (rc)
    return rc;
  char path[4096], db[4096];
  path_join(db, sizeof db, o->dir, "db");
  struct stat st;
  if (stat(db, &st) == 0)
    return cl_err_set(err, CL_EEXIST, "%s: already holds a clinlog log", o->dir);
  if (mkdir(o->dir, 0700) != 0 && errno != EEXIST)
    return cl_err_set(err, CL_EIO, "%s: %s", o->dir, strerror(errno));
  path_join(path, sizeof path, o->dir, "keys");
  if (mkdir(path, 0700) != 0 && errno != EEXIST)
    return cl_err_set(err, CL_EIO, "%s: %s", path, strerror(errno));

  /* keys: generate unless the options name existing files */
  cl_signer logkey = {0};
  cl_master_key mk = {0};
  const char *mkp = o->master_key_path, *lkp = o->log_key_path;
  char mkbuf[4096], lkbuf[4096];
  if (!mkp) {
    path_join(mkbuf, sizeof mkbuf, o->dir, "keys/master.key");
    mkp = mkbuf;
  }
  if (!lkp) {
    path_join(lkbuf, sizeof lkbuf, o->dir, "keys/log.key");
    lkp = lkbuf;
  }
  if (stat(mkp, &st) != 0) {
    if ((rc = cl_master_key_generate(&mk, err)) || (rc = cl_master_key_save(&mk, mkp, err)))
      goto fail_keys;
  }
  if (stat(lkp, &st) != 0) {
    if ((rc = cl_signer_generate(&logkey, err)) || (rc = cl_signer_save(&logkey, lkp, err)))
      goto fail_keys;
  } else if ((rc = cl_signer_load(&logkey, lkp, err))) {
    goto fail_keys;
  }

  cl_log *log = NULL;
  if ((rc = cl_log_open_create(o, &log, err)))
    goto fail_keys;
  char hex[65];
  cl_hex(logkey.pk, 32, hex);
  if (g->origin && strlen(g->origin) >= sizeof log->origin) {
    rc = cl_err_set(err, CL_EINVAL, "origin: longer than %zu bytes", sizeof log->origin - 1);
    goto fail_log;
  }
  if (g->origin && g->origin[0])
    snprintf(log->origin, sizeof log->origin, "%s", g->origin);
  else
    snprintf(log->origin, sizeof log->origin, "clinlog.local/%.16s", hex);
  if (strpbrk(log->origin, " \n+") || !log->origin[0]) {
    rc = cl_err_set(err, CL_EINVAL, "origin: must be non-empty without spaces, '+' or newlines");
    goto fail_log;
  }
  memcpy(log->log_pk, logkey.pk, 32);
  rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
  uint8_t fmt[4] = {0, 0, 0, CL_FORMAT_VERSION}, zero[8] = {0}, root[32];
  cl_merkle_frontier_root(&log->frontier, root);
  cl_meta_put(wb, log->db, CL_META_FORMAT, fmt, 4);
  cl_meta_put(wb, log->db, CL_META_ORIGIN, log->origin, strlen(log->origin));
  cl_meta_put(wb, log->db, CL_META_LOG_PK, log->log_pk, 32);
  cl_meta_put(wb, log->db, CL_META_TREE_SIZE, zero, 8);
  cl_meta_put(wb, log->db, CL_META_ROOT, root, 32);
  cl_meta_put(wb, log->db, CL_META_KEY_CHECK, log->key_check, 16);
  if (g->replica && g->sealed_keys_len)
    rc = cl_mk_adopt_sealed(log, wb, g->sealed_keys, g->sealed_keys_len, err);
  if (rc == 0)
    rc = cl_db_write(log->db, wb, err);
  rocksdb_writebatch_destroy(wb);
  if (rc)
    goto fail_log;
  memcpy(log->root, root, 32);
  if (g->replica)  /* the events come from the cluster */
    goto fail_log; /* (rc is 0: closes and returns success) */

  Clinlog__V1__RecordedBy by = CLINLOG__V1__RECORDED_BY__INIT;
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  Clinlog__V1__LogCreated lc = CLINLOG__V1__LOG_CREATED__INIT;
  by.principal_id = CL_LOG_PRINCIPAL;
  by.role = CL_ROLE_LOG;
  ev.stream = "$log";
  ev.recorded_by = &by;
  ev.body_case = CLINLOG__V1__EVENT__BODY_LOG_CREATED;
  ev.log_created = &lc;
  lc.origin = log->origin;
  lc.log_public_key.data = logkey.pk;
  lc.log_public_key.len = 32;
  lc.format = CL_FORMAT_VERSION;
  lc.organization = (char *)(g->organization ? g->organization : "");
  if ((rc = append_one(log, &ev, &logkey, err)))
    goto fail_log;

  Clinlog__V1__PrincipalRegistered pr = CLINLOG__V1__PRINCIPAL_REGISTERED__INIT;
  char stream[CL_STREAM_MAX + 1];
  snprintf(stream, sizeof stream, "$principal-%s", g->admin_principal);
  char *roles[1] = {CL_ROLE_ADMIN};
  pr.principal_id = (char *)g->admin_principal;
  pr.display_name = (char *)(g->admin_name ? g->admin_name : g->admin_principal);
  pr.n_roles = 1;
  pr.roles = roles;
  pr.public_key.data = (uint8_t *)g->admin->pk;
  pr.public_key.len = 32;
  pr.kind = "person";
  by.principal_id = (char *)g->admin_principal;
  by.role = CL_ROLE_ADMIN;
  ev.stream = stream;
  ev.body_case = CLINLOG__V1__EVENT__BODY_PRINCIPAL_REGISTERED;
  ev.principal_registered = &pr;
  if ((rc = append_one(log, &ev, g->admin, err)))
    goto fail_log;
  char *note;
  size_t nl;
  if ((rc = cl_log_checkpoint(log, &note, &nl, err)))
    goto fail_log;
  free(note);

  /* log.pub: what an auditor needs to check checkpoints */
  path_join(path, sizeof path, o->dir, "log.pub");
  FILE *f = fopen(path, "w");
  if (!f) {
    rc = cl_err_set(err, CL_EIO, "%s: %s", path, strerror(errno));
    goto fail_log;
  }
  char b64[64];
  sodium_bin2base64(b64, sizeof b64, logkey.pk, 32, sodium_base64_VARIANT_ORIGINAL);
  fprintf(f, "origin: %s\nkey: ed25519:%s\n", log->origin, b64);
  fclose(f);
  rc = 0;
fail_log:
  cl_log_close(log);
fail_keys:
  cl_signer_free(&logkey);
  cl_master_key_free(&mk);
  if (rc)
    cl_err_prefix(err, "create %s", o->dir);
  return rc;
}

/* Key files and signatures; see keys.h. */
#include "store/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/alloc.h"
#include "store/crypt.h"
#include "store/sha256.h"

#define KEYFILE_SIZE 40
static const char MAGIC_ED[8] = {'c', 'l', 'k', 'e', 'y', 'e', 'd', '1'};
static const char MAGIC_MK[8] = {'c', 'l', 'k', 'e', 'y', 'm', 'k', '1'};
static const char CTX_EVENT[] = "clinlog-event-v1"; /* sizeof includes the NUL */
static const char CTX_BATCH[] = "clinlog-batch-v1";

/* The kernel's generator (libsodium's default) on purpose: nonces and keys
 * must never repeat, also in forked children, and a user-space generator's
 * state is copied by fork (measured: children then repeated event ids). */
int cl_crypto_init(cl_err *err) {
  if (sodium_init() < 0)
    return cl_err_set(err, CL_EIO, "libsodium initialisation failed");
  return 0;
}

void cl_hex(const uint8_t *p, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 15];
  }
  out[2 * n] = '\0';
}

void cl_uuid_v4(uint8_t id[16]) {
  cl_random_buf(id, 16);
  id[6] = (uint8_t)((id[6] & 0x0f) | 0x40);
  id[8] = (uint8_t)((id[8] & 0x3f) | 0x80);
}

void cl_uuid_text(const uint8_t id[16], char out[37]) {
  char hex[33];
  cl_hex(id, 16, hex);
  snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

/* Writes magic||secret to a new 0600 file, fsync'd. */
static int write_secret(const char *path, const char magic[8], const uint8_t *secret,
                        cl_err *err) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return cl_err_set(err, errno == EEXIST ? CL_EEXIST : CL_EIO, "%s: %s", path,
                      strerror(errno));
  uint8_t *buf = sodium_malloc(KEYFILE_SIZE);
  if (!buf) {
    close(fd);
    unlink(path);
    return cl_err_set(err, CL_ENOMEM, "%s: out of secure memory", path);
  }
  memcpy(buf, magic, 8);
  memcpy(buf + 8, secret, 32);
  ssize_t w = write(fd, buf, KEYFILE_SIZE);
  sodium_free(buf);
  if (w != KEYFILE_SIZE || fsync(fd) != 0) {
    int e = errno;
    close(fd);
    unlink(path);
    return cl_err_set(err, CL_EIO, "%s: write failed: %s", path, strerror(e));
  }
  close(fd);
  return 0;
}

/* Reads a 40-byte key file straight into secure memory `out32`. */
static int read_secret(const char *path, const char magic[8], uint8_t *out32, cl_err *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return cl_err_set(err, errno == ENOENT ? CL_ENOTFOUND : CL_EIO, "%s: %s", path,
                      strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return cl_err_set(err, CL_EIO, "%s: %s", path, strerror(errno));
  }
  if (st.st_mode & 077) {
    close(fd);
    return cl_err_set(err, CL_EDENIED, "%s: key file must not be accessible by group or others (mode %03o; chmod 600)",
                      path, (unsigned)(st.st_mode & 0777));
  }
  if (st.st_size != KEYFILE_SIZE) {
    close(fd);
    return cl_err_set(err, CL_EMALFORMED, "%s: key file must be %d bytes, is %lld", path,
                      KEYFILE_SIZE, (long long)st.st_size);
  }
  uint8_t *buf = sodium_malloc(KEYFILE_SIZE);
  if (!buf) {
    close(fd);
    return cl_err_set(err, CL_ENOMEM, "%s: out of secure memory", path);
  }
  ssize_t r = read(fd, buf, KEYFILE_SIZE);
  close(fd);
  int rc = 0;
  if (r != KEYFILE_SIZE)
    rc = cl_err_set(err, CL_EIO, "%s: short read", path);
  else if (memcmp(buf, magic, 8) != 0)
    rc = cl_err_set(err, CL_EMALFORMED, "%s: not a %s key file (bad magic)", path,
                    magic == MAGIC_ED ? "clinlog Ed25519" : "clinlog master");
  else
    memcpy(out32, buf + 8, 32);
  sodium_free(buf);
  return rc;
}

int cl_signer_generate(cl_signer *s, cl_err *err) {
  s->sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
  if (!s->sk)
    return cl_err_set(err, CL_ENOMEM, "out of secure memory");
  crypto_sign_keypair(s->pk, s->sk);
  return 0;
}

void cl_signer_free(cl_signer *s) {
  if (s && s->sk) {
    sodium_free(s->sk);
    s->sk = NULL;
  }
}

int cl_signer_save(const cl_signer *s, const char *path, cl_err *err) {
  uint8_t *seed = sodium_malloc(32);
  if (!seed)
    return cl_err_set(err, CL_ENOMEM, "out of secure memory");
  crypto_sign_ed25519_sk_to_seed(seed, s->sk);
  int rc = write_secret(path, MAGIC_ED, seed, err);
  sodium_free(seed);
  if (rc)
    return rc;
  char pubpath[4096];
  snprintf(pubpath, sizeof pubpath, "%s.pub", path);
  char b64[64];
  sodium_bin2base64(b64, sizeof b64, s->pk, CL_PUBKEY_SIZE, sodium_base64_VARIANT_ORIGINAL);
  FILE *f = fopen(pubpath, "w");
  if (!f)
    return cl_err_set(err, CL_EIO, "%s: %s", pubpath, strerror(errno));
  fprintf(f, "ed25519:%s\n", b64);
  if (fclose(f) != 0)
    return cl_err_set(err, CL_EIO, "%s: %s", pubpath, strerror(errno));
  return 0;
}

int cl_signer_load(cl_signer *s, const char *path, cl_err *err) {
  uint8_t *seed = sodium_malloc(32);
  s->sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
  if (!seed || !s->sk) {
    if (seed)
      sodium_free(seed);
    cl_signer_free(s);
    return cl_err_set(err, CL_ENOMEM, "out of secure memory");
  }
  int rc = read_secret(path, MAGIC_ED, seed, err);
  if (rc == 0)
    crypto_sign_seed_keypair(s->pk, s->sk, seed);
  sodium_free(seed);
  if (rc)
    cl_signer_free(s);
  return rc;
}

int cl_pubkey_load(uint8_t pk[CL_PUBKEY_SIZE], const char *path, cl_err *err) {
  FILE *f = fopen(path, "r");
  if (!f)
    return cl_err_set(err, errno == ENOENT ? CL_ENOTFOUND : CL_EIO, "%s: %s", path,
                      strerror(errno));
  /* the first line holding "ed25519:<base64>" (a .pub file, or log.pub's "key:" line) */
  char line[512];
  int rc = cl_err_set(err, CL_EMALFORMED, "%s: no \"ed25519:<base64 32-byte key>\" line", path);
  while (fgets(line, sizeof line, f)) {
    char *k = strstr(line, "ed25519:");
    size_t n = 0;
    if (!k)
      continue;
    k += 8;
    if (sodium_base642bin(pk, CL_PUBKEY_SIZE, k, strcspn(k, "\r\n"), NULL, &n, NULL,
                          sodium_base64_VARIANT_ORIGINAL) == 0 &&
        n == CL_PUBKEY_SIZE) {
      cl_err_clear(err);
      rc = 0;
    }
    break;
  }
  fclose(f);
  return rc;
}

int cl_master_key_generate(cl_master_key *k, cl_err *err) {
  k->key = sodium_malloc(CL_MASTER_KEY_SIZE);
  if (!k->key)
    return cl_err_set(err, CL_ENOMEM, "out of secure memory");
  randombytes_buf(k->key, CL_MASTER_KEY_SIZE);
  return 0;
}

int cl_master_key_save(const cl_master_key *k, const char *path, cl_err *err) {
  return write_secret(path, MAGIC_MK, k->key, err);
}

int cl_master_key_load(cl_master_key *k, const char *path, cl_err *err) {
  k->key = sodium_malloc(CL_MASTER_KEY_SIZE);
  if (!k->key)
    return cl_err_set(err, CL_ENOMEM, "out of secure memory");
  int rc = read_secret(path, MAGIC_MK, k->key, err);
  if (rc)
    cl_master_key_free(k);
  return rc;
}

void cl_master_key_free(cl_master_key *k) {
  if (k && k->key) {
    sodium_free(k->key);
    k->key = NULL;
  }
}

void cl_event_hash(const uint8_t *event, size_t len, uint8_t out[32]) {
  cl_sha256(out, event, len);
}

static void event_msg(const uint8_t hash[32], uint8_t msg[sizeof CTX_EVENT + 32]) {
  memcpy(msg, CTX_EVENT, sizeof CTX_EVENT);
  memcpy(msg + sizeof CTX_EVENT, hash, 32);
}

void cl_sign_event(const cl_signer *s, const uint8_t hash[32], uint8_t sig[CL_SIG_SIZE]) {
  uint8_t msg[sizeof CTX_EVENT + 32];
  event_msg(hash, msg);
  crypto_sign_detached(sig, NULL, msg, sizeof msg, s->sk);
}

int cl_verify_event(const uint8_t pk[CL_PUBKEY_SIZE], const uint8_t hash[32],
                    const uint8_t sig[CL_SIG_SIZE]) {
  uint8_t msg[sizeof CTX_EVENT + 32];
  event_msg(hash, msg);
  return crypto_sign_verify_detached(sig, msg, sizeof msg, pk) == 0 ? 0 : CL_EBADSIG;
}

/* The batch message is built in one buffer: batches are bounded
 * (CL_MAX_BATCH events, so at most ~320 KB). */
static uint8_t *batch_msg(const uint8_t (*hashes)[32], size_t n, size_t *len) {
  *len = sizeof CTX_BATCH + 4 + 32 * n;
  uint8_t *msg = cl_malloc(*len);
  if (!msg)
    return NULL;
  memcpy(msg, CTX_BATCH, sizeof CTX_BATCH);
  uint8_t *p = msg + sizeof CTX_BATCH;
  p[0] = (uint8_t)(n >> 24);
  p[1] = (uint8_t)(n >> 16);
  p[2] = (uint8_t)(n >> 8);
  p[3] = (uint8_t)n;
  memcpy(p + 4, hashes, 32 * n);
  return msg;
}

void cl_sign_batch(const cl_signer *s, const uint8_t (*hashes)[32], size_t n,
                   uint8_t sig[CL_SIG_SIZE]) {
  size_t len;
  uint8_t *msg = batch_msg(hashes, n, &len);
  if (!msg) {
    memset(sig, 0, CL_SIG_SIZE); /* an all-zero signature never verifies */
    return;
  }
  crypto_sign_detached(sig, NULL, msg, len, s->sk);
  cl_free(msg);
}

int cl_verify_batch(const uint8_t pk[CL_PUBKEY_SIZE], const uint8_t (*hashes)[32], size_t n,
                    const uint8_t sig[CL_SIG_SIZE]) {
  size_t len;
  uint8_t *msg = batch_msg(hashes, n, &len);
  if (!msg)
    return CL_ENOMEM;
  int ok = crypto_sign_verify_detached(sig, msg, len, pk) == 0;
  cl_free(msg);
  return ok ? 0 : CL_EBADSIG;
}

/* Encryption at rest; see crypt.h for the keys and formats. Stateless but
 * for the per-thread scratch buffers. */
#include "store/crypt.h"

#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "store/alloc.h"
#include "store/sha256.h"

void cl_derive_tag_key(const uint8_t *master, uint8_t *tag_key) {
  crypto_kdf_derive_from_key(tag_key, 32, 1, "cl-stag1", master);
}

void cl_derive_wrap_key(const uint8_t *master, uint8_t *wrap_key) {
  crypto_kdf_derive_from_key(wrap_key, 32, 2, "cl-wrap1", master);
}

void cl_key_check(const uint8_t *master, uint8_t out[16]) {
  crypto_kdf_derive_from_key(out, 16, 3, "cl-kchk1", master);
}

void cl_derive_proj_key(const uint8_t *master, uint8_t *proj_key) {
  crypto_kdf_derive_from_key(proj_key, 32, 4, "cl-ptag1", master);
}

void cl_derive_fixed_seal_key(const uint8_t *master, uint8_t *seal_key) {
  crypto_kdf_derive_from_key(seal_key, 32, 5, "cl-fkey1", master);
}

void cl_secret_seal(const uint8_t *seal_key, const char *what, const uint8_t *plain, size_t n,
                    uint8_t *out) {
  cl_random_buf(out, CL_NONCE_SIZE);
  crypto_aead_xchacha20poly1305_ietf_encrypt(out + CL_NONCE_SIZE, NULL, plain, n,
                                             (const uint8_t *)what, strlen(what) + 1, NULL, out,
                                             seal_key);
}

int cl_secret_open(const uint8_t *seal_key, const char *what, const uint8_t *sealed, size_t len,
                   uint8_t *plain) {
  if (len < CL_SEALED_OVERHEAD)
    return CL_ECORRUPT;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, NULL, NULL, sealed + CL_NONCE_SIZE,
                                                 len - CL_NONCE_SIZE, (const uint8_t *)what,
                                                 strlen(what) + 1, sealed, seal_key) != 0)
    return CL_ECRYPTO;
  return 0;
}

void cl_stream_tag(const uint8_t *tag_key, const char *stream, size_t len, uint8_t tag[32]) {
  cl_hmac256(tag, stream, len, tag_key, 32);
}

static const char WRAP_AD[] = "clinlog-dk-v1";

static void wrap_ad(const uint8_t tag[32], uint8_t ad[sizeof WRAP_AD + 32]) {
  memcpy(ad, WRAP_AD, sizeof WRAP_AD);
  memcpy(ad + sizeof WRAP_AD, tag, 32);
}

void cl_wrap_key(const uint8_t *wk, const uint8_t tag[32], const uint8_t *key,
                 uint8_t out[CL_WRAPPED_KEY_SIZE]) {
  uint8_t ad[sizeof WRAP_AD + 32];
  wrap_ad(tag, ad);
  cl_random_buf(out, 24);
  crypto_aead_xchacha20poly1305_ietf_encrypt(out + 24, NULL, key, 32, ad, sizeof ad, NULL, out, wk);
}

int cl_unwrap_key(const uint8_t *wk, const uint8_t tag[32], const uint8_t *wrapped, size_t n,
                  uint8_t *key) {
  if (n != CL_WRAPPED_KEY_SIZE)
    return CL_ECRYPTO;
  uint8_t ad[sizeof WRAP_AD + 32];
  wrap_ad(tag, ad);
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(key, NULL, NULL, wrapped + 24, n - 24, ad,
                                                 sizeof ad, wrapped, wk) != 0)
    return CL_ECRYPTO;
  return 0;
}

int cl_rewrap_key(const uint8_t *old_wk, const uint8_t *new_wk, const uint8_t tag[32],
                  const uint8_t *wrapped, size_t n, uint8_t *scratch,
                  uint8_t out[CL_WRAPPED_KEY_SIZE]) {
  if (cl_unwrap_key(old_wk, tag, wrapped, n, scratch) != 0)
    return CL_ECRYPTO;
  uint8_t ad[sizeof WRAP_AD + 32];
  wrap_ad(tag, ad);
  memcpy(out, wrapped, 24); /* the nonce stays: it identifies the key (crypt.h) */
  crypto_aead_xchacha20poly1305_ietf_encrypt(out + 24, NULL, scratch, 32, ad, sizeof ad, NULL, out,
                                             new_wk);
  sodium_memzero(scratch, 32);
  return 0;
}

void cl_event_ad(const uint8_t tag[32], const uint8_t id[16], uint8_t ad[48]) {
  memcpy(ad, tag, 32);
  memcpy(ad + 32, id, 16);
}

void cl_event_seal(const uint8_t *key, const uint8_t tag[32], const uint8_t id[16],
                   const uint8_t *plain, size_t n, uint8_t nonce[CL_NONCE_SIZE], uint8_t *ct) {
  uint8_t ad[48];
  cl_random_buf(nonce, CL_NONCE_SIZE);
  cl_event_ad(tag, id, ad);
  crypto_aead_xchacha20poly1305_ietf_encrypt(ct, NULL, plain, n, ad, sizeof ad, NULL, nonce, key);
}

int cl_event_open(const uint8_t *key, const uint8_t tag[32], const uint8_t id[16],
                  const uint8_t nonce[CL_NONCE_SIZE], const uint8_t *ct, size_t ctlen,
                  uint8_t **plain, size_t *n) {
  *plain = NULL;
  *n = 0;
  if (ctlen < CL_AEAD_ABYTES)
    return CL_ECORRUPT;
  size_t pl = ctlen - CL_AEAD_ABYTES;
  uint8_t *p = cl_malloc(pl ? pl : 1);
  if (!p)
    return CL_ENOMEM;
  uint8_t ad[48];
  cl_event_ad(tag, id, ad);
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(p, NULL, NULL, ct, ctlen, ad, sizeof ad, nonce,
                                                 key) != 0) {
    cl_free(p);
    return CL_ECRYPTO;
  }
  *plain = p;
  *n = pl;
  return 0;
}

/* ------------------------------------------------------ projection values */

static const char VALUE_KEY_LABEL[] = "clinlog-pv-v2 key";     /* with its NUL */
static const char VALUE_NONCE_LABEL[] = "clinlog-pv-v2 nonce"; /* with its NUL */

/* A value's keys, in the thread's secure scratch (wiped after each use). */
typedef struct value_keys {
  crypto_aead_aes256gcm_state st; /* first: libsodium wants it 16-byte aligned */
  uint8_t k[CL_VALUE_KEYS];       /* the value key, then the nonce key (cl_value_keys) */
} value_keys;

static _Atomic int value_openssl = -1; /* -1: not chosen yet */

static int openssl_by_cpu(void) {
  return sodium_init() < 0 || !crypto_aead_aes256gcm_is_available();
}

void cl_value_use_openssl(int on) { value_openssl = on ? 1 : openssl_by_cpu(); }

static int use_openssl(void) {
  int v = value_openssl;
  if (v < 0) /* every thread finds the same answer */
    value_openssl = v = openssl_by_cpu();
  return v;
}

void cl_value_keys(const uint8_t *key, uint8_t keys[CL_VALUE_KEYS]) {
  cl_hmac256_state base, h;
  cl_hmac256_init(&base, key, 32); /* reads key whole: keys may hold it (cl_sk_value_keys) */
  h = base;
  cl_hmac256_update(&h, VALUE_KEY_LABEL, sizeof VALUE_KEY_LABEL);
  cl_hmac256_final(&h, keys);
  cl_hmac256_update(&base, VALUE_NONCE_LABEL, sizeof VALUE_NONCE_LABEL);
  cl_hmac256_final(&base, keys + 32);
}

/* The thread's scratch for a value's keys (16-byte aligned), holding
 * `keys`, or when keys is NULL the value keys of data key `key`; NULL when
 * there is no secure memory. */
static value_keys *value_scratch(const uint8_t *key, const uint8_t *keys) {
  value_keys *k = (value_keys *)cl_secure_scratch(CL_SCRATCH_VALUE, sizeof *k);
  if (!k || ((uintptr_t)k & 15) != 0)
    return NULL;
  if (keys)
    memcpy(k->k, keys, CL_VALUE_KEYS);
  else
    cl_value_keys(key, k->k);
  return k;
}

/* AES-256-GCM by OpenSSL: a context per call, cleansed when freed. tag is
 * written on seal; on open it is the one to check (only read), and out is
 * wiped when it fails. */
static int gcm_openssl(int seal, const uint8_t vk[32], const uint8_t nonce[CL_VALUE_NONCE_SIZE],
                       const uint8_t *ad, size_t adlen, const uint8_t *in, size_t n, uint8_t *out,
                       uint8_t tag[16]) {
  if (n > INT_MAX || adlen > INT_MAX)
    return CL_ETOOBIG;
  EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
  if (!c)
    return CL_ENOMEM;
  int l, ok = EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, vk, nonce, seal) == 1 &&
              EVP_CipherUpdate(c, NULL, &l, ad, (int)adlen) == 1 &&
              EVP_CipherUpdate(c, out, &l, in, (int)n) == 1;
  if (seal)
    ok = ok && EVP_CipherFinal_ex(c, out + l, &l) == 1 &&
         EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1;
  else
    ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1 &&
         EVP_CipherFinal_ex(c, out + l, &l) == 1;
  EVP_CIPHER_CTX_free(c);
  if (!ok && !seal)
    sodium_memzero(out, n);
  return ok ? 0 : CL_ECRYPTO;
}

/* Seals with the keys in k (value_scratch; wiped here). */
static int seal_with(value_keys *k, const uint8_t *ad, size_t adlen, const uint8_t *plain, size_t n,
                     uint8_t *out) {
  uint8_t len[8], mac[CL_SHA256_BYTES];
  for (int i = 0; i < 8; i++)
    len[i] = (uint8_t)((uint64_t)adlen >> (8 * i));
  cl_hmac256_state h;
  cl_hmac256_init(&h, k->k + 32, 32);
  cl_hmac256_update(&h, len, sizeof len);
  cl_hmac256_update(&h, ad, adlen);
  cl_hmac256_update(&h, plain, n);
  cl_hmac256_final(&h, mac);
  memcpy(out, mac, CL_VALUE_NONCE_SIZE);
  uint8_t *ct = out + CL_VALUE_NONCE_SIZE, *tag = ct + n;
  int rc = 0;
  if (use_openssl())
    rc = gcm_openssl(1, k->k, out, ad, adlen, plain, n, ct, tag);
  else if (crypto_aead_aes256gcm_beforenm(&k->st, k->k) != 0 ||
           crypto_aead_aes256gcm_encrypt_detached_afternm(ct, tag, NULL, plain, n, ad, adlen, NULL,
                                                          out, &k->st) != 0)
    rc = CL_ECRYPTO;
  sodium_memzero(k, sizeof *k);
  return rc;
}

int cl_value_seal(const uint8_t *key, const uint8_t *ad, size_t adlen, const uint8_t *plain,
                  size_t n, uint8_t *out) {
  value_keys *k = value_scratch(key, NULL);
  return k ? seal_with(k, ad, adlen, plain, n, out) : CL_ENOMEM;
}

int cl_value_seal_k(const uint8_t keys[CL_VALUE_KEYS], const uint8_t *ad, size_t adlen,
                    const uint8_t *plain, size_t n, uint8_t *out) {
  value_keys *k = value_scratch(NULL, keys);
  return k ? seal_with(k, ad, adlen, plain, n, out) : CL_ENOMEM;
}

/* Opens with the keys in k (value_scratch; wiped here). */
static int open_with(value_keys *k, const uint8_t *ad, size_t adlen, const uint8_t *sealed,
                     size_t len, uint8_t *out) {
  size_t n = len - CL_VALUE_OVERHEAD;
  const uint8_t *ct = sealed + CL_VALUE_NONCE_SIZE, *tag = ct + n;
  int rc = 0;
  if (use_openssl())
    rc = gcm_openssl(0, k->k, sealed, ad, adlen, ct, n, out, (uint8_t *)tag);
  else if (crypto_aead_aes256gcm_beforenm(&k->st, k->k) != 0 ||
           crypto_aead_aes256gcm_decrypt_detached_afternm(out, NULL, ct, n, tag, ad, adlen, sealed,
                                                          &k->st) != 0) {
    sodium_memzero(out, n);
    rc = CL_ECRYPTO;
  }
  sodium_memzero(k, sizeof *k);
  return rc;
}

int cl_value_open(const uint8_t *key, const uint8_t *ad, size_t adlen, const uint8_t *sealed,
                  size_t len, uint8_t *out) {
  if (len < CL_VALUE_OVERHEAD)
    return CL_ECORRUPT;
  value_keys *k = value_scratch(key, NULL);
  return k ? open_with(k, ad, adlen, sealed, len, out) : CL_ENOMEM;
}

int cl_value_open_k(const uint8_t keys[CL_VALUE_KEYS], const uint8_t *ad, size_t adlen,
                    const uint8_t *sealed, size_t len, uint8_t *out) {
  if (len < CL_VALUE_OVERHEAD)
    return CL_ECORRUPT;
  value_keys *k = value_scratch(NULL, keys);
  return k ? open_with(k, ad, adlen, sealed, len, out) : CL_ENOMEM;
}

/* ------------------------------------------------------ secure scratch */

typedef struct scratch {
  uint8_t *p[CL_SCRATCH_SLOTS];
  size_t cap[CL_SCRATCH_SLOTS];
} scratch;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *v) {
  scratch *s = v;
  for (int i = 0; i < CL_SCRATCH_SLOTS; i++)
    if (s->p[i])
      sodium_free(s->p[i]);
  cl_free(s);
}

static void scratch_init(void) { (void)pthread_key_create(&scratch_key, scratch_free); }

uint8_t *cl_secure_scratch(int slot, size_t n) {
  pthread_once(&scratch_once, scratch_init);
  scratch *s = pthread_getspecific(scratch_key);
  if (!s) {
    if (!(s = cl_calloc(1, sizeof *s)))
      return NULL;
    if (pthread_setspecific(scratch_key, s) != 0) {
      cl_free(s);
      return NULL;
    }
  }
  if (s->cap[slot] < n) {
    size_t cap = n < 4096 ? 4096 : n;
    uint8_t *p = cl_sodium_malloc(cap);
    if (!p)
      return NULL;
    if (s->p[slot])
      sodium_free(s->p[slot]);
    s->p[slot] = p;
    s->cap[slot] = cap;
  }
  return s->p[slot];
}

/* ------------------------------------------------- buffered random bytes */

/* One page, wiped in a forked child (then `left` is 0: refill). */
typedef struct rand_buf {
  uint64_t left; /* bytes of buf not handed out yet: the last `left` */
  uint8_t buf[4096 - sizeof(uint64_t)];
} rand_buf;

static pthread_key_t rand_key;
static pthread_once_t rand_once = PTHREAD_ONCE_INIT;
static int rand_ok; /* the key exists */

static void rand_free(void *v) { munmap(v, sizeof(rand_buf)); }

static void rand_init(void) { rand_ok = pthread_key_create(&rand_key, rand_free) == 0; }

/* This thread's buffer, made on first use; NULL when it cannot be made
 * fork-safe (the caller then asks the kernel each time). */
static rand_buf *rand_buffer(void) {
  pthread_once(&rand_once, rand_init);
  if (!rand_ok)
    return NULL;
  rand_buf *r = pthread_getspecific(rand_key);
  if (r)
    return r;
  r = mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (r == MAP_FAILED)
    return NULL;
  if (madvise(r, sizeof *r, MADV_WIPEONFORK) != 0 || pthread_setspecific(rand_key, r) != 0) {
    munmap(r, sizeof *r);
    return NULL;
  }
  return r; /* left = 0: filled below */
}

void cl_random_buf(uint8_t *out, size_t n) {
  rand_buf *r = n <= 256 ? rand_buffer() : NULL;
  if (!r) {
    randombytes_buf(out, n);
    return;
  }
  if (r->left < n) {
    randombytes_buf(r->buf, sizeof r->buf);
    r->left = sizeof r->buf;
  }
  uint8_t *p = r->buf + sizeof r->buf - r->left;
  memcpy(out, p, n);
  memset(p, 0, n);
  r->left -= n;
}

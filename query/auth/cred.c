/* Credentials (cred.h): argon2id passwords, TOTP, EdDSA session tokens. */
#include "query/auth/cred.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ passwords */

int cl_pw_hash(const char *pw, size_t len, unsigned long long ops, size_t mem,
               char out[CL_PW_HASH_MAX], cl_err *err) {
  if (ops == 0 && mem == 0) {
    ops = CL_PW_OPS;
    mem = CL_PW_MEM;
  }
  if (ops < crypto_pwhash_OPSLIMIT_MIN || mem < crypto_pwhash_MEMLIMIT_MIN)
    return cl_err_set(err, CL_EINVAL, "argon2id: at least %llu passes over %zu bytes",
                      (unsigned long long)crypto_pwhash_OPSLIMIT_MIN,
                      (size_t)crypto_pwhash_MEMLIMIT_MIN);
  if (crypto_pwhash_str_alg(out, pw, len, ops, mem, crypto_pwhash_ALG_ARGON2ID13) != 0)
    return cl_err_set(err, CL_ENOMEM, "argon2id: out of memory (%zu bytes)", mem);
  return 0;
}

static int is_argon2id(const char *hash) {
  return hash != NULL && strncmp(hash, "$argon2id$", 10) == 0 &&
         strnlen(hash, CL_PW_HASH_MAX) < CL_PW_HASH_MAX;
}

int cl_pw_verify(const char *hash, const char *pw, size_t len, cl_err *err) {
  if (!is_argon2id(hash))
    return cl_err_set(err, CL_EMALFORMED, "not an argon2id hash");
  if (crypto_pwhash_str_verify(hash, pw, len) != 0)
    return cl_err_set(err, CL_EDENIED, "wrong password");
  return 0;
}

int cl_pw_needs_rehash(const char *hash, unsigned long long ops, size_t mem) {
  if (!is_argon2id(hash))
    return -1;
  if (ops == 0 && mem == 0) {
    ops = CL_PW_OPS;
    mem = CL_PW_MEM;
  }
  int r = crypto_pwhash_str_needs_rehash(hash, ops, mem);
  return r < 0 ? -1 : r;
}

/* ------------------------------------------------------------ SHA-1, HMAC-SHA-1 */

static uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1_block(uint32_t h[5], const uint8_t *b) {
  uint32_t w[80];
  for (int i = 0; i < 16; i++)
    w[i] = (uint32_t)b[4 * i] << 24 | (uint32_t)b[4 * i + 1] << 16 | (uint32_t)b[4 * i + 2] << 8 |
           b[4 * i + 3];
  for (int i = 16; i < 80; i++)
    w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
  uint32_t a = h[0], bb = h[1], c = h[2], d = h[3], e = h[4];
  for (int i = 0; i < 80; i++) {
    uint32_t f, k;
    if (i < 20) {
      f = (bb & c) | (~bb & d);
      k = 0x5A827999;
    } else if (i < 40) {
      f = bb ^ c ^ d;
      k = 0x6ED9EBA1;
    } else if (i < 60) {
      f = (bb & c) | (bb & d) | (c & d);
      k = 0x8F1BBCDC;
    } else {
      f = bb ^ c ^ d;
      k = 0xCA62C1D6;
    }
    uint32_t t = rol(a, 5) + f + e + k + w[i];
    e = d;
    d = c;
    c = rol(bb, 30);
    bb = a;
    a = t;
  }
  h[0] += a;
  h[1] += bb;
  h[2] += c;
  h[3] += d;
  h[4] += e;
  sodium_memzero(w, sizeof w);
}

void cl_sha1(const uint8_t *m, size_t n, uint8_t out[20]) {
  uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
  size_t i = 0;
  for (; i + 64 <= n; i += 64)
    sha1_block(h, m + i);
  uint8_t last[128] = {0};
  size_t r = n - i;
  memcpy(last, m + i, r);
  last[r] = 0x80;
  size_t total = r + 1 + 8 <= 64 ? 64 : 128;
  uint64_t bits = (uint64_t)n * 8;
  for (int k = 0; k < 8; k++)
    last[total - 1 - k] = (uint8_t)(bits >> (8 * k));
  sha1_block(h, last);
  if (total == 128)
    sha1_block(h, last + 64);
  for (int k = 0; k < 5; k++) {
    out[4 * k] = (uint8_t)(h[k] >> 24);
    out[4 * k + 1] = (uint8_t)(h[k] >> 16);
    out[4 * k + 2] = (uint8_t)(h[k] >> 8);
    out[4 * k + 3] = (uint8_t)h[k];
  }
  sodium_memzero(last, sizeof last);
}

void cl_hmac_sha1(const uint8_t *key, size_t klen, const uint8_t *m, size_t n, uint8_t out[20]) {
  uint8_t k[64] = {0}, pad[64], inner[20];
  if (klen > 64)
    cl_sha1(key, klen, k);
  else
    memcpy(k, key, klen);
  uint8_t *buf = malloc(64 + (n > 20 ? n : 20));
  if (buf == NULL) { /* the caller's code then never matches */
    memset(out, 0, 20);
    return;
  }
  for (int i = 0; i < 64; i++)
    pad[i] = k[i] ^ 0x36;
  memcpy(buf, pad, 64);
  memcpy(buf + 64, m, n);
  cl_sha1(buf, 64 + n, inner);
  for (int i = 0; i < 64; i++)
    pad[i] = k[i] ^ 0x5c;
  memcpy(buf, pad, 64);
  memcpy(buf + 64, inner, 20);
  cl_sha1(buf, 84, out);
  sodium_memzero(k, sizeof k);
  sodium_memzero(pad, sizeof pad);
  sodium_memzero(buf, 64 + (n > 20 ? n : 20));
  free(buf);
}

/* ------------------------------------------------------------ TOTP */

static const uint32_t POW10[] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};

static int totp_ok(const cl_totp *t) {
  return t->secret != NULL && t->len >= 1 && t->len <= 64 && t->digits >= 6 && t->digits <= 8 &&
         t->alg >= CL_TOTP_SHA1 && t->alg <= CL_TOTP_SHA512;
}

uint32_t cl_hotp(const cl_totp *t, uint64_t counter) {
  uint8_t msg[8], mac[64];
  for (int i = 0; i < 8; i++)
    msg[7 - i] = (uint8_t)(counter >> (8 * i));
  size_t ml;
  if (t->alg == CL_TOTP_SHA256) {
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, t->secret, t->len);
    crypto_auth_hmacsha256_update(&st, msg, 8);
    crypto_auth_hmacsha256_final(&st, mac);
    ml = 32;
  } else if (t->alg == CL_TOTP_SHA512) {
    crypto_auth_hmacsha512_state st;
    crypto_auth_hmacsha512_init(&st, t->secret, t->len);
    crypto_auth_hmacsha512_update(&st, msg, 8);
    crypto_auth_hmacsha512_final(&st, mac);
    ml = 64;
  } else {
    cl_hmac_sha1(t->secret, t->len, msg, 8, mac);
    ml = 20;
  }
  unsigned off = mac[ml - 1] & 0x0f; /* RFC 4226 5.3: dynamic truncation */
  uint32_t bin = (uint32_t)(mac[off] & 0x7f) << 24 | (uint32_t)mac[off + 1] << 16 |
                 (uint32_t)mac[off + 2] << 8 | mac[off + 3];
  sodium_memzero(mac, sizeof mac);
  return bin % POW10[t->digits];
}

static uint64_t step_of(const cl_totp *t, int64_t now) {
  return now < 0 ? 0 : (uint64_t)now / (t->period ? t->period : 30);
}

void cl_totp_code(const cl_totp *t, int64_t now, char out[9]) {
  snprintf(out, 9, "%0*u", (int)t->digits, cl_hotp(t, step_of(t, now)));
}

int cl_totp_verify(const cl_totp *t, int64_t now, const char *code, unsigned window,
                   uint64_t *last_step, cl_err *err) {
  if (!totp_ok(t))
    return cl_err_set(err, CL_EINVAL, "totp: bad enrollment (secret 1..64 bytes, 6..8 digits)");
  if (code == NULL || strlen(code) != t->digits || strspn(code, "0123456789") != t->digits)
    return cl_err_set(err, CL_EDENIED, "one-time code: expected %u digits", t->digits);
  uint32_t want = (uint32_t)strtoul(code, NULL, 10);
  uint64_t s = step_of(t, now);
  int reused = 0;
  for (uint64_t d = 0; d <= window; d++) { /* the present step first, then outwards */
    uint64_t cand[2] = {s + d, s >= d ? s - d : UINT64_MAX};
    for (int k = 0; k < (d ? 2 : 1); k++) {
      uint64_t c = cand[k];
      if (c == UINT64_MAX)
        continue;
      if (cl_hotp(t, c) != want)
        continue;
      if (c <= *last_step) {
        reused = 1;
        continue;
      }
      *last_step = c;
      return 0;
    }
  }
  return cl_err_set(err, CL_EDENIED, reused ? "one-time code already used" : "wrong one-time code");
}

static void base32(const uint8_t *b, size_t n, char *out) {
  static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    acc = acc << 8 | b[i];
    bits += 8;
    while (bits >= 5) {
      out[o++] = A[(acc >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0)
    out[o++] = A[(acc << (5 - bits)) & 31];
  out[o] = '\0';
}

static void pct(const char *s, char *out, size_t cap) {
  static const char hex[] = "0123456789ABCDEF";
  size_t o = 0;
  for (; *s && o + 4 < cap; s++) {
    unsigned char c = (unsigned char)*s;
    if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '@') {
      out[o++] = (char)c;
    } else {
      out[o++] = '%';
      out[o++] = hex[c >> 4];
      out[o++] = hex[c & 15];
    }
  }
  out[o] = '\0';
}

int cl_totp_uri(const cl_totp *t, const char *issuer, const char *account, char **out,
                cl_err *err) {
  if (!totp_ok(t) || issuer == NULL || account == NULL)
    return cl_err_set(err, CL_EINVAL, "totp uri: bad enrollment, issuer or account");
  char secret[112], iss[256], acc[256];
  base32(t->secret, t->len, secret);
  pct(issuer, iss, sizeof iss);
  pct(account, acc, sizeof acc);
  static const char *const ALG[] = {"SHA1", "SHA256", "SHA512"};
  size_t cap = 1024;
  if ((*out = malloc(cap)) == NULL)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  snprintf(*out, cap, "otpauth://totp/%s:%s?secret=%s&issuer=%s&algorithm=%s&digits=%u&period=%u",
           iss, acc, secret, iss, ALG[t->alg], t->digits, t->period ? t->period : 30);
  sodium_memzero(secret, sizeof secret);
  return 0;
}

/* ------------------------------------------------------------ tokens */

#define B64 sodium_base64_VARIANT_URLSAFE_NO_PADDING

/* The base64url text of n bytes, malloc'd (NULL: out of memory). */
static char *b64url(const void *p, size_t n) {
  size_t cap = sodium_base64_ENCODED_LEN(n, B64);
  char *s = malloc(cap);
  if (s != NULL)
    sodium_bin2base64(s, cap, p, n, B64);
  return s;
}

int cl_token_issue(const cl_signer *s, const char *kid, const char *issuer, json_t *claims,
                   int64_t now, int64_t ttl, char **out, char jti[33], cl_err *err) {
  *out = NULL;
  if (!json_is_string(json_object_get(claims, "sub")))
    return cl_err_set(err, CL_EINVAL, "token: no sub (principal)");
  if (ttl < 1 || ttl > CL_TOKEN_MAX_TTL)
    ttl = CL_TOKEN_MAX_TTL;
  uint8_t rnd[16];
  char id[33];
  randombytes_buf(rnd, sizeof rnd);
  sodium_bin2hex(id, sizeof id, rnd, sizeof rnd);
  json_t *c = json_deep_copy(claims);
  json_t *h = json_pack("{s:s,s:s,s:s}", "alg", "EdDSA", "typ", "JWT", "kid", kid ? kid : "");
  if (c == NULL || h == NULL) {
    json_decref(c);
    json_decref(h);
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  }
  json_object_set_new(c, "iss", json_string(issuer ? issuer : "clinlog"));
  json_object_set_new(c, "iat", json_integer(now));
  json_object_set_new(c, "exp", json_integer(now + ttl));
  json_object_set_new(c, "jti", json_string(id));
  char *hj = json_dumps(h, JSON_COMPACT), *cj = json_dumps(c, JSON_COMPACT);
  json_decref(h);
  json_decref(c);
  char *hb = hj ? b64url(hj, strlen(hj)) : NULL, *cb = cj ? b64url(cj, strlen(cj)) : NULL;
  free(hj);
  free(cj);
  int rc = 0;
  if (hb == NULL || cb == NULL) {
    rc = cl_err_set(err, CL_ENOMEM, "out of memory");
  } else {
    size_t n = strlen(hb) + 1 + strlen(cb);
    char *t = malloc(n + 1 + 90);
    if (t == NULL) {
      rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    } else {
      snprintf(t, n + 1, "%s.%s", hb, cb);
      uint8_t sig[crypto_sign_BYTES];
      crypto_sign_detached(sig, NULL, (const uint8_t *)t, n, s->sk);
      t[n] = '.';
      sodium_bin2base64(t + n + 1, 90, sig, sizeof sig, B64);
      *out = t;
      if (jti != NULL)
        memcpy(jti, id, 33);
    }
  }
  free(hb);
  free(cb);
  return rc;
}

/* Decodes base64url segment [s, s+n) into a NUL-terminated malloc'd buffer. */
static uint8_t *unb64(const char *s, size_t n, size_t *len) {
  uint8_t *b = malloc(n + 1);
  if (b == NULL || sodium_base642bin(b, n, s, n, NULL, len, NULL, B64) != 0) {
    free(b);
    return NULL;
  }
  b[*len] = '\0';
  return b;
}

int cl_token_verify(const uint8_t pk[CL_PUBKEY_SIZE], const char *token, int64_t now,
                    json_t **claims, cl_err *err) {
  *claims = NULL;
  const char *d1 = token ? strchr(token, '.') : NULL;
  const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
  if (d2 == NULL || strchr(d2 + 1, '.') != NULL || strlen(token) > 8192)
    return cl_err_set(err, CL_EUNAUTH, "token: malformed (expected header.payload.signature)");
  size_t hl, pl, sl;
  uint8_t *h = unb64(token, (size_t)(d1 - token), &hl);
  uint8_t *p = unb64(d1 + 1, (size_t)(d2 - d1 - 1), &pl);
  uint8_t *sig = unb64(d2 + 1, strlen(d2 + 1), &sl);
  json_t *hj = h ? json_loadb((const char *)h, hl, 0, NULL) : NULL;
  json_t *pj = p ? json_loadb((const char *)p, pl, 0, NULL) : NULL;
  int rc = 0;
  const char *alg = json_string_value(json_object_get(hj, "alg"));
  if (hj == NULL || pj == NULL || sig == NULL || !json_is_object(pj))
    rc = cl_err_set(err, CL_EUNAUTH, "token: malformed (base64url JSON header and payload)");
  else if (alg == NULL || strcmp(alg, "EdDSA") != 0)
    rc = cl_err_set(err, CL_EUNAUTH, "token: alg %s (only EdDSA is accepted)", alg ? alg : "none");
  else if (sl != crypto_sign_BYTES ||
           crypto_sign_verify_detached(sig, (const uint8_t *)token, (size_t)(d2 - token), pk) != 0)
    rc = cl_err_set(err, CL_EUNAUTH, "token: bad signature");
  else {
    json_t *iat = json_object_get(pj, "iat"), *exp = json_object_get(pj, "exp");
    if (!json_is_integer(iat) || !json_is_integer(exp))
      rc = cl_err_set(err, CL_EUNAUTH, "token: no iat or exp");
    else if (json_integer_value(exp) <= now)
      rc = cl_err_set(err, CL_EUNAUTH, "token: expired");
    else if (json_integer_value(iat) > now + 60)
      rc = cl_err_set(err, CL_EUNAUTH, "token: not yet valid (issued in the future)");
    else if (json_integer_value(exp) - json_integer_value(iat) > CL_TOKEN_MAX_TTL)
      rc = cl_err_set(err, CL_EUNAUTH, "token: lives longer than %d s", CL_TOKEN_MAX_TTL);
    else if (!json_is_string(json_object_get(pj, "sub")))
      rc = cl_err_set(err, CL_EUNAUTH, "token: no sub");
  }
  free(h);
  free(p);
  free(sig);
  json_decref(hj);
  if (rc == 0)
    *claims = pj;
  else
    json_decref(pj);
  return rc;
}

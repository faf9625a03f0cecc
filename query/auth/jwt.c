/* SMART Backend Services client assertions (jwt.h): JWK Set parsing and
 * JWS/JWT verification over OpenSSL 3's provider API.
 *
 * Invariants: a cl_jwks holds only keys that passed every rule of jwt.h,
 * each as an EVP_PKEY built with EVP_PKEY_fromdata, and is never modified
 * after cl_jwks_parse returns (so verifying is read-only and may run in
 * any number of threads). Every function that calls OpenSSL sets a mark on
 * the thread's error queue first and pops to it before returning, so no
 * OpenSSL error produced here outlives the call. Untrusted strings reach
 * err->msg only through quote(). */
#include "query/auth/jwt.h"

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "store/alloc.h"

#define KID_MAX 127 /* bytes of a kid, as cl_jwt_claims.kid holds it */
#define STR_MAX 255 /* bytes of iss, sub, jti */
#define RSA_MIN_BITS 2048
#define RSA_MAX_BITS 8192

enum kind { K_RSA, K_P256, K_P384 };
static const char *const KIND_NAME[] = {"RSA", "EC P-256", "EC P-384"};

/* The algorithms this module verifies (RFC 7518 3.3, 3.4). */
typedef struct alg {
  const char *name;
  int kind;       /* enum kind */
  const char *md; /* OpenSSL digest name */
} alg;
static const alg ALGS[] = {
    {"RS256", K_RSA, "SHA256"},
    {"RS384", K_RSA, "SHA384"},
    {"ES256", K_P256, "SHA256"},
    {"ES384", K_P384, "SHA384"},
};
#define NALGS (sizeof ALGS / sizeof ALGS[0])

typedef struct key {
  char kid[KID_MAX + 1];
  char alg[8];    /* the registered "alg", "" when the JWK has none */
  int kind;       /* enum kind */
  size_t sig_len; /* the only signature length this key can verify */
  EVP_PKEY *pkey; /* public key, owned */
} key;

struct cl_jwks {
  size_t n;
  key key[]; /* n keys, in the set's order */
};

/* ------------------------------------------------------------ helpers */

#define QUOTE_MAX 48 /* bytes of an untrusted string shown in a message */
typedef struct qbuf {
  char s[QUOTE_MAX * 4 + 8];
} qbuf;

/* s as a double-quoted string safe to put in a message (and a log line):
 * control characters, '"' and '\\' escaped, cut to QUOTE_MAX bytes at a
 * UTF-8 character boundary with "..." after. Returns b->s. */
static const char *quote(const char *s, qbuf *b) {
  size_t n = strlen(s), cut = n > QUOTE_MAX ? QUOTE_MAX : n, o = 0;
  while (cut < n && cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
    cut--;
  b->s[o++] = '"';
  for (size_t i = 0; i < cut; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == 0x7f)
      o += (size_t)snprintf(b->s + o, 5, "\\x%02x", c);
    else if (c == '"' || c == '\\')
      b->s[o++] = '\\', b->s[o++] = (char)c;
    else
      b->s[o++] = (char)c;
  }
  if (cut < n)
    memcpy(b->s + o, "...", 3), o += 3;
  b->s[o++] = '"';
  b->s[o] = '\0';
  return b->s;
}

/* t as RFC 3339 UTC ("2026-12-04T10:00:00Z"), or "@<t>" for a time
 * gmtime_r cannot represent. Returns out. */
static const char *when(int64_t t, char out[40]) {
  time_t tt = (time_t)t;
  struct tm tm;
  if ((int64_t)tt != t || gmtime_r(&tt, &tm) == NULL ||
      strftime(out, 40, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    snprintf(out, 40, "@%lld", (long long)t);
  return out;
}

/* a + b, saturated to the int64_t range. */
static int64_t add_sat(int64_t a, int64_t b) {
  if (b > 0 && a > INT64_MAX - b)
    return INT64_MAX;
  if (b < 0 && a < INT64_MIN - b)
    return INT64_MIN;
  return a + b;
}

#define B64_RULE "RFC 7515: URL-safe alphabet, no padding, no whitespace"

/* Decodes strict base64url s[0..n) (jwt.h) into *out, returned-owned
 * (cl_free) and NUL-terminated after its *len bytes. Returns 0,
 * CL_EMALFORMED (no error text: the caller names the place) or CL_ENOMEM. */
static int unb64(const char *s, size_t n, uint8_t **out, size_t *len) {
  size_t cap = n / 4 * 3 + 3;
  uint8_t *b = cl_malloc(cap + 1);
  *out = NULL;
  if (b == NULL)
    return CL_ENOMEM;
  /* libsodium's URL-safe, unpadded variant refuses '=', any character out
   * of the alphabet (no ignore set), a lone trailing character and nonzero
   * unused bits; with no end pointer it fails unless all of s is used */
  if (sodium_base642bin(b, cap, s, n, NULL, len, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) !=
      0) {
    cl_free(b);
    return CL_EMALFORMED;
  }
  b[*len] = '\0';
  *out = b;
  return 0;
}

/* Parses text[0..n) as a JSON object with no repeated member names into
 * *out (json_decref). CL_EMALFORMED with "<what>: ..." in err, CL_ENOMEM. */
static int json_object_text(const char *text, size_t n, const char *what, json_t **out,
                            cl_err *err) {
  json_error_t je;
  *out = json_loadb(text, n, JSON_REJECT_DUPLICATES, &je);
  if (*out == NULL && json_error_code(&je) == json_error_out_of_memory)
    return cl_err_set(err, CL_ENOMEM, "%s: out of memory", what);
  if (*out == NULL) {
    /* jansson quotes the input near the error: keep the message printable */
    for (char *c = je.text; *c; c++)
      if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
        *c = '?';
    return cl_err_set(err, CL_EMALFORMED, "%s: not JSON: %s (line %d, column %d)", what, je.text,
                      je.line, je.column);
  }
  if (!json_is_object(*out)) {
    json_decref(*out);
    *out = NULL;
    return cl_err_set(err, CL_EMALFORMED, "%s: not a JSON object", what);
  }
  return 0;
}

static const alg *alg_find(const char *name) {
  for (size_t i = 0; i < NALGS; i++)
    if (strcmp(ALGS[i].name, name) == 0)
      return &ALGS[i];
  return NULL;
}

/* ------------------------------------------------------------ JWK Set */

/* err for key i: "keys[i].<field>: <message>". */
static int key_err(cl_err *err, size_t i, const char *field, const char *fmt, ...) CL_PRINTF(4, 5);
static int key_err(cl_err *err, size_t i, const char *field, const char *fmt, ...) {
  char m[CL_ERR_MSG_SIZE];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m, sizeof m, fmt, ap);
  va_end(ap);
  return cl_err_set(err, CL_EMALFORMED, "keys[%zu]%s%s: %s", i, *field ? "." : "", field, m);
}

/* Member `name` of jwk (key i), a required string, into *s (a view into
 * jwk). */
static int key_str(const json_t *jwk, size_t i, const char *name, const char **s, cl_err *err) {
  const json_t *v = json_object_get(jwk, name);
  if (v == NULL)
    return key_err(err, i, name, "missing");
  if (!json_is_string(v))
    return key_err(err, i, name, "not a string");
  *s = json_string_value(v);
  return 0;
}

/* Decodes member `name` of jwk (key i), a strict base64url string, into
 * *out (cl_free) of *len bytes. */
static int key_b64(const json_t *jwk, size_t i, const char *name, uint8_t **out, size_t *len,
                   cl_err *err) {
  const char *s;
  *out = NULL;
  int rc = key_str(jwk, i, name, &s, err);
  if (rc != 0)
    return rc;
  rc = unb64(s, strlen(s), out, len);
  if (rc == CL_ENOMEM)
    return cl_err_set(err, CL_ENOMEM, "keys[%zu].%s: out of memory", i, name);
  if (rc != 0)
    return key_err(err, i, name, "not base64url (%s)", B64_RULE);
  return 0;
}

/* Bits of the unsigned big-endian integer p[0..n), p[0] != 0. */
static size_t bits(const uint8_t *p, size_t n) {
  size_t b = n * 8;
  for (uint8_t top = p[0]; !(top & 0x80); top <<= 1)
    b--;
  return b;
}

/* The EVP_PKEY of RSA public key (n, e), already checked; NULL if OpenSSL
 * fails (out of memory). */
static EVP_PKEY *rsa_pkey(const uint8_t *n, size_t nl, const uint8_t *e, size_t el) {
  EVP_PKEY *pk = NULL;
  BIGNUM *bn = BN_bin2bn(n, (int)nl, NULL), *be = BN_bin2bn(e, (int)el, NULL);
  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM *params = NULL;
  EVP_PKEY_CTX *ctx = NULL;
  if (bn == NULL || be == NULL || bld == NULL ||
      !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
      !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) ||
      (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
      (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
      EVP_PKEY_fromdata_init(ctx) != 1 ||
      EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
    pk = NULL;
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  BN_free(be);
  BN_free(bn);
  return pk;
}

static int parse_rsa(const json_t *jwk, size_t i, key *k, cl_err *err) {
  uint8_t *n = NULL, *e = NULL;
  size_t nl, el;
  int rc = key_b64(jwk, i, "n", &n, &nl, err);
  if (rc == 0)
    rc = key_b64(jwk, i, "e", &e, &el, err);
  if (rc != 0)
    goto done;
  if (nl == 0 || n[0] == 0)
    rc = key_err(err, i, "n", "%s (RFC 7518 6.3.1.1: no leading zero octets)",
                 nl ? "has a leading zero octet" : "empty");
  else if (bits(n, nl) < RSA_MIN_BITS || bits(n, nl) > RSA_MAX_BITS)
    rc = key_err(err, i, "n", "RSA modulus of %zu bits, %s %d required", bits(n, nl),
                 bits(n, nl) < RSA_MIN_BITS ? "at least" : "at most",
                 bits(n, nl) < RSA_MIN_BITS ? RSA_MIN_BITS : RSA_MAX_BITS);
  else if (!(n[nl - 1] & 1))
    rc = key_err(err, i, "n", "even: not an RSA modulus");
  else if (el == 0 || e[0] == 0)
    rc = key_err(err, i, "e", "%s (RFC 7518 6.3.1.2: no leading zero octets)",
                 el ? "has a leading zero octet" : "empty");
  else if (!(e[el - 1] & 1) || el > 32 || bits(e, el) < 17)
    rc = key_err(err, i, "e", "the public exponent must be odd, at least 65537 and below 2^256");
  else if ((k->pkey = rsa_pkey(n, nl, e, el)) == NULL)
    rc = cl_err_set(err, CL_ENOMEM, "keys[%zu]: OpenSSL could not build the RSA key", i);
  else
    k->kind = K_RSA, k->sig_len = nl;
done:
  cl_free(e);
  cl_free(n);
  return rc;
}

/* Builds the EC public key (x, y) on `group` into *out from the SEC 1
 * uncompressed point pub[0..len). Returns 0, CL_EMALFORMED (not a point of
 * the curve's prime-order subgroup) or CL_ENOMEM. */
static int ec_pkey(const char *group, uint8_t *pub, size_t len, EVP_PKEY **out) {
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, len),
      OSSL_PARAM_construct_end()};
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL), *chk = NULL;
  int rc = 0;
  *out = NULL;
  if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1)
    rc = CL_ENOMEM;
  else if (EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) != 1)
    rc = CL_EMALFORMED; /* OpenSSL refuses a point off the curve here */
  else if ((chk = EVP_PKEY_CTX_new_from_pkey(NULL, *out, NULL)) == NULL)
    rc = CL_ENOMEM;
  else if (EVP_PKEY_public_check(chk) != 1)
    rc = CL_EMALFORMED; /* the point at infinity, or outside the subgroup */
  if (rc != 0) {
    EVP_PKEY_free(*out);
    *out = NULL;
  }
  EVP_PKEY_CTX_free(chk);
  EVP_PKEY_CTX_free(ctx);
  return rc;
}

static int parse_ec(const json_t *jwk, size_t i, key *k, cl_err *err) {
  const char *c, *group;
  qbuf q;
  int rc = key_str(jwk, i, "crv", &c, err);
  if (rc != 0)
    return rc;
  size_t sz;
  if (strcmp(c, "P-256") == 0)
    k->kind = K_P256, sz = 32, group = "prime256v1";
  else if (strcmp(c, "P-384") == 0)
    k->kind = K_P384, sz = 48, group = "secp384r1";
  else
    return key_err(err, i, "crv", "%s is not supported (P-256, P-384)", quote(c, &q));
  uint8_t *x = NULL, *y = NULL, pub[1 + 2 * 48];
  size_t xl, yl;
  rc = key_b64(jwk, i, "x", &x, &xl, err);
  if (rc == 0)
    rc = key_b64(jwk, i, "y", &y, &yl, err);
  if (rc == 0 && (xl != sz || yl != sz))
    rc =
        key_err(err, i, xl != sz ? "x" : "y",
                "%zu octets; %s coordinates are %zu (RFC 7518 6.2.1.2)", xl != sz ? xl : yl, c, sz);
  if (rc == 0) {
    pub[0] = 0x04; /* SEC 1 uncompressed point */
    memcpy(pub + 1, x, sz);
    memcpy(pub + 1 + sz, y, sz);
    rc = ec_pkey(group, pub, 1 + 2 * sz, &k->pkey);
    if (rc == CL_ENOMEM)
      cl_err_set(err, rc, "keys[%zu]: OpenSSL could not build the EC key", i);
    else if (rc != 0)
      key_err(err, i, "x,y", "not a point of %s", c);
    else
      k->sig_len = 2 * sz;
  }
  cl_free(y);
  cl_free(x);
  return rc;
}

/* The members that make a JWK private (RFC 7518 6.3.2, 6.2.2, 6.4.1). */
static const char *const PRIVATE[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"};

/* Checks "kid", "use", "key_ops" and "alg" of key i (its kind known). */
static int key_meta(const json_t *jwk, size_t i, key *k, const cl_jwks *set, cl_err *err) {
  qbuf q;
  const json_t *v = json_object_get(jwk, "kid");
  if (v == NULL)
    return key_err(err, i, "kid", "missing (SMART: every key has a kid)");
  if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > KID_MAX)
    return key_err(err, i, "kid", "not a string of 1 to %d bytes", KID_MAX);
  memcpy(k->kid, json_string_value(v), json_string_length(v) + 1);
  for (size_t j = 0; j < i; j++)
    if (strcmp(set->key[j].kid, k->kid) == 0)
      return key_err(err, i, "kid", "%s also names keys[%zu] (SMART: a kid is unique in the set)",
                     quote(k->kid, &q), j);
  if ((v = json_object_get(jwk, "use")) != NULL &&
      (!json_is_string(v) || strcmp(json_string_value(v), "sig") != 0))
    return key_err(err, i, "use", "%s, only \"sig\" can verify a client assertion",
                   json_is_string(v) ? quote(json_string_value(v), &q) : "not a string");
  if ((v = json_object_get(jwk, "key_ops")) != NULL) {
    int verify = 0;
    if (!json_is_array(v))
      return key_err(err, i, "key_ops", "not an array");
    for (size_t j = 0; j < json_array_size(v); j++) {
      const char *op = json_string_value(json_array_get(v, j));
      if (op == NULL)
        return key_err(err, i, "key_ops", "[%zu] is not a string", j);
      for (size_t l = 0; l < j; l++)
        if (strcmp(op, json_string_value(json_array_get(v, l))) == 0)
          return key_err(err, i, "key_ops", "%s repeated (RFC 7517 4.3)", quote(op, &q));
      verify |= strcmp(op, "verify") == 0;
    }
    if (!verify)
      return key_err(err, i, "key_ops", "does not allow \"verify\"");
  }
  if ((v = json_object_get(jwk, "alg")) != NULL) {
    if (!json_is_string(v))
      return key_err(err, i, "alg", "not a string");
    const alg *a = alg_find(json_string_value(v));
    if (a == NULL)
      return key_err(err, i, "alg", "%s is not supported (%s)", quote(json_string_value(v), &q),
                     k->kind == K_RSA    ? "RS256, RS384"
                     : k->kind == K_P256 ? "ES256"
                                         : "ES384");
    if (a->kind != k->kind)
      return key_err(err, i, "alg", "%s does not fit an %s key", a->name, KIND_NAME[k->kind]);
    strcpy(k->alg, a->name);
  }
  return 0;
}

static int parse_key(const json_t *jwk, size_t i, cl_jwks *set, cl_err *err) {
  key *k = &set->key[i];
  qbuf q;
  if (!json_is_object(jwk))
    return key_err(err, i, "", "not a JSON object");
  for (size_t j = 0; j < sizeof PRIVATE / sizeof PRIVATE[0]; j++)
    if (json_object_get(jwk, PRIVATE[j]) != NULL)
      return key_err(err, i, PRIVATE[j], "a private key member; register the public key only");
  const char *kty;
  int rc = key_str(jwk, i, "kty", &kty, err);
  if (rc != 0)
    return rc;
  if (strcmp(kty, "RSA") == 0)
    rc = parse_rsa(jwk, i, k, err);
  else if (strcmp(kty, "EC") == 0)
    rc = parse_ec(jwk, i, k, err);
  else
    return key_err(err, i, "kty", "%s is not supported (RSA, EC)", quote(kty, &q));
  return rc != 0 ? rc : key_meta(jwk, i, k, set, err);
}

int cl_jwks_parse(const char *json, size_t len, cl_jwks **out, cl_err *err) {
  if (out == NULL)
    return cl_err_set(err, CL_EINVAL, "JWK Set: no output");
  *out = NULL;
  if (json == NULL)
    return cl_err_set(err, CL_EINVAL, "JWK Set: no text");
  if (len > CL_JWKS_MAX_LEN)
    return cl_err_set(err, CL_EMALFORMED, "JWK Set: %zu bytes, at most %d", len, CL_JWKS_MAX_LEN);
  json_t *doc;
  int rc = json_object_text(json, len, "JWK Set", &doc, err);
  if (rc != 0)
    return rc;
  const json_t *keys = json_object_get(doc, "keys");
  size_t n = json_array_size(keys);
  cl_jwks *set = NULL;
  if (keys == NULL || !json_is_array(keys)) {
    rc = cl_err_set(err, CL_EMALFORMED, "keys: %s", keys ? "not an array" : "missing");
    goto fail_doc;
  }
  if (n == 0 || n > CL_JWKS_MAX_KEYS) {
    rc = cl_err_set(err, CL_EMALFORMED, "keys: %zu keys, a client registers 1 to %d", n,
                    CL_JWKS_MAX_KEYS);
    goto fail_doc;
  }
  if ((set = cl_calloc(1, sizeof *set + n * sizeof set->key[0])) == NULL) {
    rc = cl_err_set(err, CL_ENOMEM, "JWK Set: out of memory");
    goto fail_doc;
  }
  ERR_set_mark();
  for (size_t i = 0; i < n && rc == 0; i++) {
    rc = parse_key(json_array_get(keys, i), i, set, err);
    set->n = i + 1; /* a failing key may hold a pkey (a bad kid after good n, e) */
  }
  ERR_pop_to_mark();
  if (rc != 0)
    goto fail_set;
  json_decref(doc);
  *out = set;
  return 0;

fail_set:
  cl_jwks_free(set);
fail_doc:
  json_decref(doc);
  return rc;
}

void cl_jwks_free(cl_jwks *k) {
  if (k == NULL)
    return;
  for (size_t i = 0; i < k->n; i++)
    EVP_PKEY_free(k->key[i].pkey);
  cl_free(k);
}

size_t cl_jwks_count(const cl_jwks *k) { return k ? k->n : 0; }

const char *cl_jwks_kid(const cl_jwks *k, size_t i) { return k && i < k->n ? k->key[i].kid : NULL; }

/* ------------------------------------------------------------ JWS */

#define WHO "client assertion"

/* A compact JWS taken apart. */
typedef struct jws {
  size_t signed_len; /* bytes of the signing input: header "." payload */
  json_t *header;
  json_t *payload;
  uint8_t *sig;
  size_t sig_len;
} jws;

static void jws_free(jws *j) {
  json_decref(j->header);
  json_decref(j->payload);
  cl_free(j->sig);
}

/* Decodes segment `what` s[0..n) and, unless `obj` is NULL, parses it as a
 * JSON object into *obj. */
static int segment(const char *s, size_t n, const char *what, json_t **obj, uint8_t **raw,
                   size_t *len, cl_err *err) {
  uint8_t *b;
  size_t bl;
  int rc = unb64(s, n, &b, &bl);
  if (rc == CL_ENOMEM)
    return cl_err_set(err, CL_ENOMEM, WHO ": out of memory");
  if (rc != 0)
    return cl_err_set(err, CL_EMALFORMED, WHO ": %s is not base64url (%s)", what, B64_RULE);
  if (obj == NULL) {
    *raw = b, *len = bl;
    return 0;
  }
  char w[64];
  snprintf(w, sizeof w, WHO ": %s", what);
  rc = json_object_text((const char *)b, bl, w, obj, err);
  cl_free(b);
  return rc;
}

static int jws_parse(const char *s, size_t n, jws *j, cl_err *err) {
  memset(j, 0, sizeof *j);
  if (n > CL_JWT_MAX_LEN)
    return cl_err_set(err, CL_EMALFORMED, WHO ": %zu bytes, at most %d", n, CL_JWT_MAX_LEN);
  const char *dot[2] = {NULL, NULL};
  size_t dots = 0;
  for (const char *p = s; (p = memchr(p, '.', n - (size_t)(p - s))) != NULL; p++)
    if (dots++ < 2)
      dot[dots - 1] = p;
  if (dots != 2) {
    const char *jwe = dots == 4 ? "; an encrypted JWT (JWE) is not accepted" : "";
    return cl_err_set(err, CL_EMALFORMED,
                      WHO ": %zu segment%s, a JWS has 3 (header.payload.signature)%s", dots + 1,
                      dots ? "s" : "", jwe);
  }
  const char *end = s + n;
  int rc = segment(s, (size_t)(dot[0] - s), "header", &j->header, NULL, NULL, err);
  if (rc == 0)
    rc =
        segment(dot[0] + 1, (size_t)(dot[1] - dot[0] - 1), "payload", &j->payload, NULL, NULL, err);
  if (rc == 0)
    rc = segment(dot[1] + 1, (size_t)(end - dot[1] - 1), "signature", NULL, &j->sig, &j->sig_len,
                 err);
  if (rc != 0) {
    jws_free(j);
    memset(j, 0, sizeof *j);
    return rc;
  }
  j->signed_len = (size_t)(dot[1] - s);
  return 0;
}

/* Checks the header's alg and crit against key k (NULL: the header's kid
 * names it; then typ, cty and kid are checked too). On success *kp and *ap
 * are the key and algorithm to verify with. */
static int jws_header(const jws *j, const cl_jwks *keys, const char *kid, const key **kp,
                      const alg **ap, cl_err *err) {
  qbuf q;
  const json_t *v = json_object_get(j->header, "alg");
  if (v == NULL || !json_is_string(v))
    return cl_err_set(err, CL_EUNAUTH, WHO ": header %s", v ? "alg is not a string" : "has no alg");
  const char *name = json_string_value(v);
  const alg *a = alg_find(name);
  if (a == NULL) {
    const char *why = strcmp(name, "none") == 0     ? "an unsigned JWS"
                      : strncmp(name, "HS", 2) == 0 ? "a shared-secret MAC; register a public key"
                                                    : "supported: RS384, ES384, RS256, ES256";
    return cl_err_set(err, CL_EUNAUTH, WHO ": alg %s is refused (%s)", quote(name, &q), why);
  }
  if (json_object_get(j->header, "crit") != NULL)
    return cl_err_set(err, CL_EUNAUTH, WHO ": header has crit: no JWS extension is supported");
  if (kid == NULL) {
    if ((v = json_object_get(j->header, "typ")) != NULL &&
        (!json_is_string(v) || (strcasecmp(json_string_value(v), "JWT") != 0 &&
                                strcasecmp(json_string_value(v), "application/jwt") != 0)))
      return cl_err_set(err, CL_EUNAUTH, WHO ": typ %s is not JWT",
                        json_is_string(v) ? quote(json_string_value(v), &q) : "(not a string)");
    if (json_object_get(j->header, "cty") != NULL)
      return cl_err_set(err, CL_EUNAUTH, WHO ": header has cty: a nested JWT is not accepted");
    if ((v = json_object_get(j->header, "kid")) == NULL || !json_is_string(v))
      return cl_err_set(err, CL_EUNAUTH, WHO ": header %s",
                        v ? "kid is not a string" : "has no kid (SMART requires it)");
    kid = json_string_value(v);
  }
  const key *k = NULL;
  for (size_t i = 0; i < keys->n && k == NULL; i++)
    if (strcmp(keys->key[i].kid, kid) == 0)
      k = &keys->key[i];
  if (k == NULL)
    return cl_err_set(err, CL_EUNAUTH, WHO ": kid %s names no key the client registered",
                      quote(kid, &q));
  if (a->kind != k->kind)
    return cl_err_set(err, CL_EUNAUTH, WHO ": alg %s needs an %s key; key %s is %s", a->name,
                      KIND_NAME[a->kind], quote(k->kid, &q), KIND_NAME[k->kind]);
  if (k->alg[0] && strcmp(k->alg, a->name) != 0)
    return cl_err_set(err, CL_EUNAUTH, WHO ": key %s is registered for %s, not %s",
                      quote(k->kid, &q), k->alg, a->name);
  *kp = k;
  *ap = a;
  return 0;
}

/* The DER (X9.62 Ecdsa-Sig-Value) of raw r || s, each h bytes, into *der
 * (OPENSSL_free); returns its length or -1 (out of memory). */
static int ecdsa_der(const uint8_t *rs, size_t h, uint8_t **der) {
  ECDSA_SIG *sig = ECDSA_SIG_new();
  BIGNUM *r = BN_bin2bn(rs, (int)h, NULL), *s = BN_bin2bn(rs + h, (int)h, NULL);
  int n = -1;
  *der = NULL;
  if (sig != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(sig, r, s) == 1) {
    r = s = NULL; /* sig owns them now */
    n = i2d_ECDSA_SIG(sig, der);
  }
  BN_free(r);
  BN_free(s);
  ECDSA_SIG_free(sig);
  return n;
}

/* Verifies j's signature over s[0..j->signed_len) with k and a. */
static int jws_verify(const char *s, const jws *j, const key *k, const alg *a, cl_err *err) {
  qbuf q;
  if (j->sig_len != k->sig_len)
    return cl_err_set(err, CL_EUNAUTH, WHO ": %s signature of %zu bytes, key %s takes %zu%s",
                      a->name, j->sig_len, quote(k->kid, &q), k->sig_len,
                      a->kind == K_RSA ? "" : " (raw r || s, RFC 7518 3.4; not DER)");
  uint8_t *der = NULL;
  const uint8_t *sig = j->sig;
  size_t sig_len = j->sig_len;
  if (a->kind != K_RSA) {
    int dl = ecdsa_der(j->sig, j->sig_len / 2, &der);
    if (dl < 0)
      return cl_err_set(err, CL_ENOMEM, WHO ": out of memory");
    sig = der, sig_len = (size_t)dl;
  }
  int rc = 0;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if (md == NULL)
    rc = cl_err_set(err, CL_ENOMEM, WHO ": out of memory");
  else if (EVP_DigestVerifyInit_ex(md, NULL, a->md, NULL, NULL, k->pkey, NULL) != 1)
    rc = cl_err_set(err, CL_EUNAUTH, WHO ": OpenSSL cannot verify %s with key %s", a->name,
                    quote(k->kid, &q));
  else if (EVP_DigestVerify(md, sig, sig_len, (const uint8_t *)s, j->signed_len) != 1)
    rc = cl_err_set(err, CL_EUNAUTH, WHO ": signature does not verify with key %s",
                    quote(k->kid, &q));
  EVP_MD_CTX_free(md);
  OPENSSL_free(der);
  return rc;
}

/* ------------------------------------------------------------ claims */

/* Copies claim `name`, a string of 1..STR_MAX bytes, into out. */
static int claim_str(const json_t *p, const char *name, char out[STR_MAX + 1], cl_err *err) {
  const json_t *v = json_object_get(p, name);
  if (v == NULL)
    return cl_err_set(err, CL_EUNAUTH, WHO ": no %s", name);
  if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > STR_MAX)
    return cl_err_set(err, CL_EUNAUTH, WHO ": %s is not a string of 1 to %d bytes", name, STR_MAX);
  memcpy(out, json_string_value(v), json_string_length(v) + 1);
  return 0;
}

/* Reads NumericDate claim `name` into *t (0 and not an error when absent
 * and optional). */
static int claim_time(const json_t *p, const char *name, int required, int64_t *t, cl_err *err) {
  const json_t *v = json_object_get(p, name);
  *t = 0;
  if (v == NULL)
    return required ? cl_err_set(err, CL_EUNAUTH, WHO ": no %s", name) : 0;
  if (!json_is_integer(v))
    return cl_err_set(err, CL_EUNAUTH, WHO ": %s is not an integer NumericDate", name);
  *t = (int64_t)json_integer_value(v);
  return 0;
}

static int check_aud(const json_t *p, const char *audience, cl_err *err) {
  const json_t *v = json_object_get(p, "aud");
  qbuf q;
  if (v == NULL)
    return cl_err_set(err, CL_EUNAUTH, WHO ": no aud");
  if (json_is_string(v)) {
    if (strcmp(json_string_value(v), audience) != 0)
      return cl_err_set(err, CL_EUNAUTH, WHO ": aud %s is not this server's token URL",
                        quote(json_string_value(v), &q));
    return 0;
  }
  if (!json_is_array(v))
    return cl_err_set(err, CL_EUNAUTH, WHO ": aud is neither a string nor an array of strings");
  int found = 0;
  for (size_t i = 0; i < json_array_size(v); i++) {
    const char *s = json_string_value(json_array_get(v, i));
    if (s == NULL)
      return cl_err_set(err, CL_EUNAUTH, WHO ": aud[%zu] is not a string", i);
    found |= strcmp(s, audience) == 0;
  }
  if (!found)
    return cl_err_set(err, CL_EUNAUTH,
                      WHO ": aud (%zu values) does not hold this server's token URL",
                      json_array_size(v));
  return 0;
}

static int check_claims(const json_t *p, const char *client_id, const char *audience, int64_t now,
                        cl_jwt_claims *c, cl_err *err) {
  qbuf q1, q2;
  char t1[40], t2[40];
  int rc;
  if ((rc = claim_str(p, "iss", c->iss, err)) != 0 || (rc = claim_str(p, "sub", c->sub, err)) != 0)
    return rc;
  if (strcmp(c->iss, c->sub) != 0)
    return cl_err_set(err, CL_EUNAUTH, WHO ": iss %s and sub %s differ (both are the client_id)",
                      quote(c->iss, &q1), quote(c->sub, &q2));
  if (strcmp(c->iss, client_id) != 0)
    return cl_err_set(err, CL_EUNAUTH, WHO ": iss %s is not the client_id %s", quote(c->iss, &q1),
                      quote(client_id, &q2));
  if ((rc = check_aud(p, audience, err)) != 0 ||
      (rc = claim_time(p, "exp", 1, &c->exp, err)) != 0 ||
      (rc = claim_time(p, "nbf", 0, &c->nbf, err)) != 0 ||
      (rc = claim_time(p, "iat", 0, &c->iat, err)) != 0)
    return rc;
  if (c->exp <= add_sat(now, -CL_JWT_SKEW))
    return cl_err_set(err, CL_EUNAUTH, WHO ": expired at %s (now %s, %d s of skew allowed)",
                      when(c->exp, t1), when(now, t2), CL_JWT_SKEW);
  if (c->exp > add_sat(now, CL_JWT_MAX_AHEAD + CL_JWT_SKEW))
    return cl_err_set(err, CL_EUNAUTH,
                      WHO ": exp %s is more than %d s after now (%s; SMART: at most five "
                          "minutes ahead)",
                      when(c->exp, t1), CL_JWT_MAX_AHEAD, when(now, t2));
  if (json_object_get(p, "nbf") != NULL && c->nbf > add_sat(now, CL_JWT_SKEW))
    return cl_err_set(err, CL_EUNAUTH, WHO ": not valid before %s (now %s)", when(c->nbf, t1),
                      when(now, t2));
  if (json_object_get(p, "iat") != NULL && c->iat > add_sat(now, CL_JWT_SKEW))
    return cl_err_set(err, CL_EUNAUTH, WHO ": issued in the future, at %s (now %s)",
                      when(c->iat, t1), when(now, t2));
  const json_t *jti = json_object_get(p, "jti");
  if (jti == NULL)
    return cl_err_set(err, CL_EUNAUTH, WHO ": no jti");
  if (!json_is_string(jti) || json_string_length(jti) == 0 || json_string_length(jti) > STR_MAX)
    return cl_err_set(err, CL_EUNAUTH, WHO ": jti is not a string of 1 to %d bytes (%zu)", STR_MAX,
                      json_is_string(jti) ? json_string_length(jti) : 0);
  memcpy(c->jti, json_string_value(jti), json_string_length(jti) + 1);
  return 0;
}

/* ------------------------------------------------------------ entry points */

/* Both entry points: kid NULL for a full assertion check. */
static int verify(const char *s, size_t n, const cl_jwks *keys, const char *kid,
                  const char *client_id, const char *audience, int64_t now, cl_jwt_claims *c,
                  cl_err *err) {
  jws j;
  const key *k = NULL;
  const alg *a = NULL;
  int rc = jws_parse(s, n, &j, err);
  if (rc != 0)
    return rc;
  ERR_set_mark();
  if ((rc = jws_header(&j, keys, kid, &k, &a, err)) == 0 &&
      (rc = jws_verify(s, &j, k, a, err)) == 0 && kid == NULL &&
      (rc = check_claims(j.payload, client_id, audience, now, c, err)) == 0) {
    strcpy(c->kid, k->kid);
    strcpy(c->alg, a->name);
  }
  ERR_pop_to_mark();
  jws_free(&j);
  return rc;
}

int cl_jwt_verify_assertion(const char *jwt, size_t len, const cl_jwks *keys, const char *client_id,
                            const char *audience, int64_t now, cl_jwt_claims *out, cl_err *err) {
  cl_jwt_claims c;
  memset(&c, 0, sizeof c);
  if (out != NULL)
    memset(out, 0, sizeof *out);
  if (jwt == NULL || keys == NULL || client_id == NULL || audience == NULL)
    return cl_err_set(err, CL_EINVAL, WHO ": NULL argument");
  int rc = verify(jwt, len, keys, NULL, client_id, audience, now, &c, err);
  if (rc == 0 && out != NULL)
    *out = c;
  return rc;
}

int cl_jwt_verify_signature_only(const char *jwt, size_t len, const cl_jwks *keys, const char *kid,
                                 cl_err *err) {
  if (jwt == NULL || keys == NULL || kid == NULL)
    return cl_err_set(err, CL_EINVAL, WHO ": NULL argument");
  return verify(jwt, len, keys, kid, NULL, NULL, 0, NULL, err);
}

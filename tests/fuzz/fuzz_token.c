/* libFuzzer target for session tokens (query/auth/cred.c), the bytes any
 * client sends as "authorization: Bearer ..." on every front door.
 *
 * The first input byte picks a mode:
 *   0: the rest, verbatim, as a token: cl_token_verify must refuse it
 *      (CL_EUNAUTH) without crashing; it cannot carry a valid signature;
 *   1: differential: a real token is issued for claims built from the
 *      input, must verify and give the same claims back, and the same token
 *      with one input-chosen byte changed must not verify (unless the
 *      change leaves it the same token, e.g. base64url padding bits);
 *   2: the rest as a SMART scope string (query/auth/scope.c, what a
 *      client sends to /auth/token or at login): parsed or refused with
 *      CL_EINVAL; what it grants parses again to the same scopes.
 * A wrong answer aborts, which libFuzzer reports as a finding. */
#include <jansson.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "query/auth/cred.h"
#include "query/auth/scope.h"
#include "store/keys.h"

#define NOW 1793000000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static cl_signer KEY;

static void init_key(void) {
  static int done;
  if (done)
    return;
  cl_err err;
  if (cl_crypto_init(&err) != 0)
    abort();
  uint8_t seed[32] = {7};
  KEY.sk = sodium_malloc(64);
  if (!KEY.sk)
    abort();
  crypto_sign_seed_keypair(KEY.pk, KEY.sk, seed);
  done = 1;
}

static void raw(const uint8_t *p, size_t n) {
  char *tok = malloc(n + 1);
  if (!tok)
    abort();
  memcpy(tok, p, n);
  tok[n] = '\0';
  json_t *claims = NULL;
  cl_err err;
  int rc = cl_token_verify(KEY.pk, tok, NOW, &claims, &err);
  if (rc != CL_EUNAUTH || claims)
    abort(); /* nobody but KEY's holder can sign, and the fuzzer is not */
  free(tok);
}

static void differential(const uint8_t *p, size_t n) {
  if (n < 3)
    return;
  size_t at = (size_t)p[0] << 8 | p[1];
  uint8_t flip = p[2] ? p[2] : 1;
  p += 3, n -= 3;
  char sub[65];
  size_t l = n < sizeof sub - 1 ? n : sizeof sub - 1;
  for (size_t i = 0; i < l; i++) /* any bytes, as a JSON string's code points */
    sub[i] = (char)(p[i] & 0x7f ? p[i] & 0x7f : 'x');
  sub[l] = '\0';
  json_t *claims = json_pack("{s:s, s:s}", "sub", l ? sub : "s", "roles", "nurse");
  char *tok, jti[33];
  cl_err err;
  if (!claims || cl_token_issue(&KEY, "k", "iss", claims, NOW, 600, &tok, jti, &err) != 0)
    abort();
  json_t *back = NULL;
  if (cl_token_verify(KEY.pk, tok, NOW + 1, &back, &err) != 0 ||
      !json_equal(json_object_get(back, "sub"), json_object_get(claims, "sub")) ||
      strcmp(json_string_value(json_object_get(back, "jti")), jti) != 0)
    abort();
  json_decref(back);
  back = NULL;
  size_t tl = strlen(tok);
  char before = tok[at % tl];
  tok[at % tl] = (char)(before ^ flip);
  int rc = cl_token_verify(KEY.pk, tok, NOW + 1, &back, &err);
  if (rc == 0) {
    /* accepted: only if it still says exactly what was signed */
    if (!json_equal(json_object_get(back, "sub"), json_object_get(claims, "sub")) ||
        strcmp(json_string_value(json_object_get(back, "jti")), jti) != 0)
      abort();
    json_decref(back);
  } else if (rc != CL_EUNAUTH || back) {
    abort();
  }
  json_decref(claims);
  free(tok);
}

static void scopes(const uint8_t *p, size_t n) {
  char *text = malloc(n + 1);
  if (!text)
    abort();
  memcpy(text, p, n);
  text[n] = '\0';
  int all = CL_SCOPE_PATIENT | CL_SCOPE_USER | CL_SCOPE_SYSTEM;
  cl_scopes s, again;
  char granted[CL_SCOPE_TEXT_MAX], twice[CL_SCOPE_TEXT_MAX];
  cl_err err;
  int rc = cl_scopes_parse(text, all, &s, granted, &err);
  if (rc == 0) {
    if (cl_scopes_parse(granted, all, &again, twice, &err) != 0 || again.n != s.n ||
        strcmp(granted, twice) != 0 || memcmp(&again, &s, sizeof s) != 0)
      abort(); /* what a token carries must mean what was granted */
    cl_scopes_allow(&s, "Observation", CL_SCOPE_R);
    cl_scopes_allow(&s, "*", CL_SCOPE_S);
  } else if (rc != CL_EINVAL) {
    abort();
  }
  free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  init_key();
  if (size == 0)
    return 0;
  if (data[0] % 3 == 1)
    differential(data + 1, size - 1);
  else if (data[0] % 3 == 2)
    scopes(data + 1, size - 1);
  else
    raw(data + 1, size - 1);
  return 0;
}

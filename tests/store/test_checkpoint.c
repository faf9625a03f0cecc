/* Tests for store/checkpoint.c.
 *
 * Besides round trips and rejection cases, two sets of published vectors
 * are checked: the PeterNeumann example key and note from the Go
 * golang.org/x/mod/sumdb/note documentation (key hash, signature bytes), and
 * real checkpoints signed by sum.golang.org (one of them with a second,
 * unknown cosigner). Notes that the library must accept but cannot produce
 * (extension lines, several signers) are built here with libsodium
 * directly, independently of checkpoint.c. */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/checkpoint.h"
#include "store/err.h"

#define EM "\xe2\x80\x94"

static uint8_t g_pk[32], g_sk[64];   /* the test signer, key name "clinlog-test" */
static uint8_t g_pk2[32], g_sk2[64]; /* another key */
static const char *g_name = "clinlog-test";

static void setup(void) {
  cr_assert_geq(sodium_init(), 0);
  uint8_t seed[32];
  for (int i = 0; i < 32; i++)
    seed[i] = (uint8_t)(i * 3 + 1);
  crypto_sign_ed25519_seed_keypair(g_pk, g_sk, seed);
  seed[0] ^= 0xff;
  crypto_sign_ed25519_seed_keypair(g_pk2, g_sk2, seed);
}

static cl_checkpoint sample(void) {
  cl_checkpoint cp;
  memset(&cp, 0, sizeof cp);
  strcpy(cp.origin, "clinlog.example/log/v1");
  cp.size = 1234567;
  for (int i = 0; i < 32; i++)
    cp.root[i] = (uint8_t)(0xf0 - i * 5);
  return cp;
}

static char *sign_ok(const cl_checkpoint *cp, const char *name, const uint8_t sk[64],
                     size_t *len) {
  char *note = NULL;
  cl_err err = {0};
  int rc = cl_checkpoint_sign(cp, name, sk, &note, len, &err);
  cr_assert_eq(rc, 0, "sign: %s", err.msg);
  cr_assert_not_null(note);
  cr_assert_eq(strlen(note), *len);
  return note;
}

/* Independent key hash: SHA-256(name || "\n" || 0x01 || pk)[0:4]. */
static void indep_key_hash(const char *name, const uint8_t pk[32], uint8_t out[4]) {
  size_t n = strlen(name);
  uint8_t *buf = malloc(n + 2 + 32);
  memcpy(buf, name, n);
  buf[n] = '\n';
  buf[n + 1] = 0x01;
  memcpy(buf + n + 2, pk, 32);
  uint8_t h[32];
  crypto_hash_sha256(h, buf, n + 2 + 32);
  memcpy(out, h, 4);
  free(buf);
}

/* Signature line for `text` by (name, sk), built with libsodium alone. */
static void indep_sig_line(const char *text, const char *name, const uint8_t sk[64], char *out,
                           size_t cap) {
  uint8_t sig[68], pk[32];
  crypto_sign_ed25519_sk_to_pk(pk, sk);
  indep_key_hash(name, pk, sig);
  crypto_sign_ed25519_detached(sig + 4, NULL, (const uint8_t *)text, strlen(text), sk);
  char b64[sodium_base64_ENCODED_LEN(68, sodium_base64_VARIANT_ORIGINAL)];
  sodium_bin2base64(b64, sizeof b64, sig, sizeof sig, sodium_base64_VARIANT_ORIGINAL);
  snprintf(out, cap, EM " %s %s\n", name, b64);
}

static int verify(const char *note, const char *name, const uint8_t pk[32], cl_checkpoint *out,
                  cl_err *err) {
  return cl_checkpoint_verify(note, strlen(note), name, pk, out, err);
}

/* Verification result for a note; checks *out is untouched on failure. */
static int verify_code(const char *note, const char *name, const uint8_t pk[32], cl_err *err) {
  cl_checkpoint out, before;
  memset(&out, 0x5a, sizeof out);
  before = out;
  int rc = verify(note, name, pk, &out, err);
  if (rc != 0)
    cr_assert(memcmp(&out, &before, sizeof out) == 0, "output changed on error");
  return rc;
}

static void expect_code(const char *note, int want, const char *msg_part, const char *what) {
  cl_err err = {0};
  int rc = verify_code(note, g_name, g_pk, &err);
  cr_assert_eq(rc, want, "%s: got %s (%s), want %s", what, cl_errname(rc), err.msg,
               cl_errname(want));
  if (want != 0) {
    cr_assert_eq(err.code, want);
    if (msg_part)
      cr_assert(strstr(err.msg, msg_part) != NULL, "%s: message \"%s\" lacks \"%s\"", what,
                err.msg, msg_part);
  }
  if (want == CL_EMALFORMED || want == 0) {
    cl_checkpoint out;
    cr_assert_eq(cl_checkpoint_parse(note, strlen(note), &out, &err), want == 0 ? 0 : want,
                 "%s: parse disagrees", what);
  }
}

/* Replaces the first occurrence of `from` in `note` with `to`. */
static char *replace(const char *note, const char *from, const char *to) {
  const char *at = strstr(note, from);
  cr_assert_not_null(at, "\"%s\" not in note", from);
  size_t n = strlen(note) - strlen(from) + strlen(to);
  char *r = malloc(n + 1);
  size_t pre = (size_t)(at - note);
  memcpy(r, note, pre);
  strcpy(r + pre, to);
  strcat(r, at + strlen(from));
  return r;
}

static char *cat(const char *a, const char *b) {
  char *r = malloc(strlen(a) + strlen(b) + 1);
  strcpy(r, a);
  strcat(r, b);
  return r;
}

/* ---- round trip and layout ----------------------------------------------- */

Test(checkpoint, round_trip, .init = setup) {
  cl_checkpoint cp = sample(), got;
  size_t len;
  char *note = sign_ok(&cp, g_name, g_sk, &len);
  cl_err err = {0};
  memset(&got, 0, sizeof got);
  cr_assert_eq(cl_checkpoint_verify(note, len, g_name, g_pk, &got, &err), 0, "%s", err.msg);
  cr_assert(memcmp(&got, &cp, sizeof cp) == 0);
  memset(&got, 0, sizeof got);
  cr_assert_eq(cl_checkpoint_parse(note, len, &got, &err), 0, "%s", err.msg);
  cr_assert(memcmp(&got, &cp, sizeof cp) == 0);
  /* Not NUL-terminated input: verify only reads note[0..len). */
  char *copy = malloc(len);
  memcpy(copy, note, len);
  cr_assert_eq(cl_checkpoint_verify(copy, len, g_name, g_pk, &got, &err), 0, "%s", err.msg);
  free(copy);
  free(note);

  /* Edge values: size 0, size UINT64_MAX, 255-byte UTF-8 origin. */
  cp.size = 0;
  note = sign_ok(&cp, g_name, g_sk, &len);
  cr_assert_eq(verify(note, g_name, g_pk, &got, &err), 0, "%s", err.msg);
  cr_assert_eq(got.size, 0);
  cr_assert(strstr(note, "\n0\n") != NULL);
  free(note);
  cp.size = UINT64_MAX;
  memset(cp.origin, 0, sizeof cp.origin);
  for (int i = 0; i < 127; i++)
    memcpy(cp.origin + 2 * i, "\xc3\xbc", 2); /* ü */
  cp.origin[254] = 'x';
  note = sign_ok(&cp, "k\xc3\xa9y.example/\xe2\x98\x83", g_sk, &len);
  cr_assert_eq(verify(note, "k\xc3\xa9y.example/\xe2\x98\x83", g_pk, &got, &err), 0, "%s",
               err.msg);
  cr_assert(memcmp(&got, &cp, sizeof cp) == 0);
  cr_assert(strstr(note, "\n18446744073709551615\n") != NULL);
  free(note);
}

Test(checkpoint, exact_layout, .init = setup) {
  cl_checkpoint cp = sample();
  size_t len;
  char *note = sign_ok(&cp, g_name, g_sk, &len);
  char root_b64[64];
  sodium_bin2base64(root_b64, sizeof root_b64, cp.root, 32, sodium_base64_VARIANT_ORIGINAL);
  char text[512];
  snprintf(text, sizeof text, "clinlog.example/log/v1\n1234567\n%s\n", root_b64);
  size_t tl = strlen(text);
  cr_assert_eq(strncmp(note, text, tl), 0, "text lines:\n%s", note);
  const char *sigline = note + tl;
  cr_assert_eq(sigline[0], '\n', "blank line");
  sigline++;
  const char *prefix = EM " clinlog-test ";
  cr_assert_eq(strncmp(sigline, prefix, strlen(prefix)), 0, "sig line: %s", sigline);
  const char *b64 = sigline + strlen(prefix);
  cr_assert_eq(strlen(b64), 92 + 1, "base64 of 68 bytes plus newline");
  cr_assert_eq(b64[92], '\n');
  cr_assert_eq(len, tl + 1 + strlen(prefix) + 93);
  uint8_t sig[80];
  size_t sig_len;
  cr_assert_eq(sodium_base642bin(sig, sizeof sig, b64, 92, NULL, &sig_len, NULL,
                                 sodium_base64_VARIANT_ORIGINAL),
               0);
  cr_assert_eq(sig_len, 68);
  uint8_t kh[4];
  indep_key_hash(g_name, g_pk, kh);
  cr_assert_arr_eq(sig, kh, 4, "key hash");
  cr_assert_eq(crypto_sign_ed25519_verify_detached(sig + 4, (const uint8_t *)text, tl, g_pk), 0,
               "signature must cover exactly the text lines");
  /* Ed25519 is deterministic: the independent signature line is identical. */
  char line[256];
  indep_sig_line(text, g_name, g_sk, line, sizeof line);
  cr_assert_str_eq(sigline, line);
  free(note);
}

/* ---- published vectors --------------------------------------------------- */

static void b64_exactn(const char *s, size_t slen, uint8_t *out, size_t n) {
  size_t got;
  cr_assert_eq(sodium_base642bin(out, n, s, slen, NULL, &got, NULL,
                                 sodium_base64_VARIANT_ORIGINAL),
               0, "bad base64 %.*s", (int)slen, s);
  cr_assert_eq(got, n);
}

static void b64_exact(const char *s, uint8_t *out, size_t n) { b64_exactn(s, strlen(s), out, n); }

/* golang.org/x/mod/sumdb/note package documentation. */
#define PN_SKEY_B64 "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
#define PN_VKEY_B64 "ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
#define PN_TEXT                                                                                \
  "If you think cryptography is the answer to your problem,\n"                                 \
  "then you don't know what your problem is.\n"
#define PN_SIG                                                                                 \
  "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="

Test(checkpoint, go_note_example_vector, .init = setup) {
  uint8_t skey[33], vkey[33], pk[32], sk[64];
  b64_exact(PN_SKEY_B64, skey, 33);
  b64_exact(PN_VKEY_B64, vkey, 33);
  cr_assert_eq(skey[0], 0x01);
  cr_assert_eq(vkey[0], 0x01);
  crypto_sign_ed25519_seed_keypair(pk, sk, skey + 1);
  cr_assert_arr_eq(pk, vkey + 1, 32, "seed does not give the published public key");

  /* Published key hash c74f20a3, via the library's signature line. */
  cl_checkpoint cp = sample();
  size_t len;
  char *note = sign_ok(&cp, "PeterNeumann", sk, &len);
  const char *b64 = strstr(note, EM " PeterNeumann ");
  cr_assert_not_null(b64);
  b64 += strlen(EM " PeterNeumann ");
  uint8_t sig[68];
  b64_exactn(b64, 92, sig, 68);
  const uint8_t want_hash[4] = {0xc7, 0x4f, 0x20, 0xa3};
  cr_assert_arr_eq(sig, want_hash, 4, "key hash differs from the published c74f20a3");
  cl_err err = {0};
  cl_checkpoint got;
  cr_assert_eq(verify(note, "PeterNeumann", pk, &got, &err), 0, "%s", err.msg);
  free(note);

  /* The published signature line is what the signing scheme produces. */
  char line[256];
  indep_sig_line(PN_TEXT, "PeterNeumann", sk, line, sizeof line);
  cr_assert_str_eq(line, EM " PeterNeumann " PN_SIG "\n");

  /* The example is a valid signed note but not a checkpoint. */
  const char *msg = PN_TEXT "\n" EM " PeterNeumann " PN_SIG "\n";
  cr_assert_eq(verify(msg, "PeterNeumann", pk, &got, &err), CL_EMALFORMED);
  cr_assert(strstr(err.msg, "line 2") != NULL, "%s", err.msg);
}

/* sum.golang.org's published verifier key "sum.golang.org+033de0ae+<this>". */
#define SUMDB_VKEY_B64 "Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"

static const char *sumdb_notes[] = {
    "go.sum database tree\n6476701\nmb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=\n\n" EM
    " sum.golang.org "
    "Az3grsLX85Gz+s1SiTbgkuqxgItqFq7gsMUEyVnrsa9LM7Us9S+1xbFIGu95949rj4nPRYfvimWEPWL+o3GeoWwOoAw=\n",
    "go.sum database tree\n65209736\n5+uGFjx6xBZG8ip1+wi77v+grwbhhukIrxEUS8PXvRo=\n\n" EM
    " sum.golang.org "
    "Az3grnbssgK7ubgFX36gVETtNv0U23qxyAhAMai2QUfeGa3nB/akvkMdlUErfcZz7l/R3cVtYspg3dxXABkGZZKdsQ8=\n",
    /* Cosigned by a witness whose key we do not know. */
    "go.sum database tree\n15067302\ngJyioq6dwR9n+NjEWORfYmH+ubeYm3kH42BBQ0bTpYI=\n\n" EM
    " sum.golang.org "
    "Az3grp1rvWOs5NKlr/xR4GLN/CDyzzakmt1o61uSxYKpK1SerqOP2ClbX/peKUZjYnyomH5Xz7GZG3TpB7OeKn4E2ww=\n" EM
    " test.example.com "
    "qTGhC/xIPQ0AXKHK6Y+9ypRfuvMZWPjRXM8NiOg5M1WREn07VQXyuIXM3NRNav3ieVFLUqDRK77PWDmL6w8w84UqeAw=\n",
};
static const uint64_t sumdb_sizes[] = {6476701, 65209736, 15067302};

Test(checkpoint, sum_golang_org_vectors, .init = setup) {
  uint8_t vkey[33];
  b64_exact(SUMDB_VKEY_B64, vkey, 33);
  cr_assert_eq(vkey[0], 0x01);
  uint8_t kh[4];
  indep_key_hash("sum.golang.org", vkey + 1, kh);
  const uint8_t want_hash[4] = {0x03, 0x3d, 0xe0, 0xae};
  cr_assert_arr_eq(kh, want_hash, 4, "published key hash 033de0ae");
  for (size_t i = 0; i < sizeof sumdb_notes / sizeof sumdb_notes[0]; i++) {
    cl_checkpoint got;
    cl_err err = {0};
    cr_assert_eq(verify(sumdb_notes[i], "sum.golang.org", vkey + 1, &got, &err), 0,
                 "note %zu: %s", i, err.msg);
    cr_assert_str_eq(got.origin, "go.sum database tree");
    cr_assert_eq(got.size, sumdb_sizes[i]);
    /* Any change to the text breaks the real signature. */
    char size_s[32], bumped[32];
    snprintf(size_s, sizeof size_s, "\n%llu\n", (unsigned long long)sumdb_sizes[i]);
    snprintf(bumped, sizeof bumped, "\n%llu\n", (unsigned long long)sumdb_sizes[i] + 1);
    char *forged = replace(sumdb_notes[i], size_s, bumped);
    cr_assert_eq(verify(forged, "sum.golang.org", vkey + 1, &got, &err), CL_EBADSIG);
    free(forged);
    /* The witness line alone is no signature by sum.golang.org. */
    cr_assert_eq(verify(sumdb_notes[i], "test.example.com", vkey + 1, &got, &err),
                 CL_EUNKNOWNKEY);
  }
}

/* ---- key hash ------------------------------------------------------------ */

Test(checkpoint, key_hash_per_spec, .init = setup) {
  const char *names[] = {"a", "clinlog-test", "example.com/log", "\xc3\xa9t\xc3\xa9"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    for (int k = 0; k < 2; k++) {
      const uint8_t *pk = k ? g_pk2 : g_pk, *sk = k ? g_sk2 : g_sk;
      cl_checkpoint cp = sample();
      size_t len;
      char *note = sign_ok(&cp, names[i], sk, &len);
      const char *sp = strrchr(note, ' ');
      uint8_t sig[68], kh[4];
      b64_exactn(sp + 1, 92, sig, 68);
      indep_key_hash(names[i], pk, kh);
      cr_assert_arr_eq(sig, kh, 4, "key hash for %s", names[i]);
      free(note);
    }
  }
}

/* ---- rejection ----------------------------------------------------------- */

Test(checkpoint, tampering_detected, .init = setup) {
  cl_checkpoint cp = sample();
  size_t len;
  char *note = sign_ok(&cp, g_name, g_sk, &len);
  char *bad;

  bad = replace(note, "\n1234567\n", "\n1234568\n");
  expect_code(bad, CL_EBADSIG, "invalid", "tampered size");
  free(bad);
  bad = replace(note, "clinlog.example", "clinlog.exbmple");
  expect_code(bad, CL_EBADSIG, NULL, "tampered origin");
  free(bad);
  /* Swap the root's first base64 character for another; still canonical. */
  bad = strdup(note);
  char *root = strchr(strchr(bad, '\n') + 1, '\n') + 1;
  root[0] = root[0] == 'A' ? 'B' : 'A';
  expect_code(bad, CL_EBADSIG, NULL, "tampered root");
  free(bad);
  /* Signature bytes: change one base64 character in the middle. */
  bad = strdup(note);
  char *sig = strrchr(bad, ' ') + 1 + 40;
  *sig = *sig == 'A' ? 'B' : 'A';
  expect_code(bad, CL_EBADSIG, "line 5", "tampered signature");
  free(bad);
  /* Extra text line appended: valid format, signature no longer covers it. */
  bad = replace(note, "\n\n", "\nextension\n\n");
  expect_code(bad, CL_EBADSIG, NULL, "extension line added");
  free(bad);

  cl_err err = {0};
  cr_assert_eq(verify_code(note, g_name, g_pk2, &err), CL_EUNKNOWNKEY, "wrong key: %s", err.msg);
  cr_assert_eq(verify_code(note, "other-name", g_pk, &err), CL_EUNKNOWNKEY);
  cr_assert_eq(verify_code(note, "clinlog-tes", g_pk, &err), CL_EUNKNOWNKEY);
  cr_assert_eq(verify_code(note, "", g_pk, &err), CL_EINVAL);
  cr_assert_eq(verify_code(note, "a b", g_pk, &err), CL_EINVAL);
  cr_assert_eq(verify_code(note, "a+b", g_pk, &err), CL_EINVAL);
  free(note);
}

Test(checkpoint, malformed_notes, .init = setup) {
  cl_checkpoint cp = sample();
  size_t len;
  char *note = sign_ok(&cp, g_name, g_sk, &len);
  char *bad, *t;

  expect_code("", CL_EMALFORMED, "empty", "empty note");
  bad = strndup(note, len - 1);
  expect_code(bad, CL_EMALFORMED, "newline", "missing trailing newline");
  free(bad);
  bad = replace(note, "\n\n", "\n");
  expect_code(bad, CL_EMALFORMED, "blank line", "missing blank line");
  free(bad);
  bad = replace(note, "\n\n", "\n\n\n");
  expect_code(bad, CL_EMALFORMED, "line 5", "two blank lines");
  free(bad);
  bad = cat(note, "x");
  expect_code(bad, CL_EMALFORMED, NULL, "trailing garbage");
  free(bad);
  bad = cat(note, "garbage\n");
  expect_code(bad, CL_EMALFORMED, "line 6", "trailing garbage line");
  free(bad);
  bad = cat(note, "\n");
  expect_code(bad, CL_EMALFORMED, "line 6", "trailing blank line");
  free(bad);
  bad = cat("\n", note);
  expect_code(bad, CL_EMALFORMED, "line 1", "leading blank line");
  free(bad);

  /* Size line. */
  const char *sizes[] = {"01234567", "+1234567", "-1", " 1234567", "1234567 ", "0x12",
                         "",         "00",       "18446744073709551616", "99999999999999999999",
                         "1e6",      "\xef\xbc\x91"};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    char to[64];
    snprintf(to, sizeof to, "\n%s\n", sizes[i]);
    bad = replace(note, "\n1234567\n", to);
    expect_code(bad, CL_EMALFORMED, i == 6 ? NULL : "line 2", sizes[i]);
    free(bad);
  }
  /* UINT64_MAX itself parses (the signature then fails). */
  bad = replace(note, "\n1234567\n", "\n18446744073709551615\n");
  expect_code(bad, CL_EBADSIG, NULL, "max size");
  free(bad);

  /* Root line. */
  char *root_line = strchr(strchr(note, '\n') + 1, '\n') + 1;
  char root[45];
  memcpy(root, root_line, 44);
  root[44] = '\0';
  cr_assert_eq(root[43], '=');
  char *roots[8];
  roots[0] = strndup(root, 43);                 /* no padding */
  roots[1] = cat(root, "=");                    /* extra padding */
  roots[2] = strdup(root);
  roots[2][5] = '!';                            /* bad alphabet */
  roots[3] = strdup(root);
  roots[3][5] = '-';                            /* URL alphabet */
  roots[4] = strdup(root);
  roots[4][42] = roots[4][42] == 'B' ? 'C' : 'B'; /* unused bits set: non-canonical */
  roots[5] = strdup("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="); /* 31 bytes */
  roots[6] = strdup("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");  /* 33 bytes */
  roots[7] = strdup("");
  for (size_t i = 0; i < 8; i++) {
    char from[64], to[80];
    snprintf(from, sizeof from, "\n%s\n", root);
    snprintf(to, sizeof to, "\n%s\n", roots[i]);
    bad = replace(note, from, to);
    expect_code(bad, CL_EMALFORMED, "line 3", roots[i]);
    free(bad);
    free(roots[i]);
  }

  /* Truncated texts. */
  expect_code("origin\n\n" EM " a AAAAAAAA\n", CL_EMALFORMED, "line 2", "origin only");
  expect_code("origin\n5\n\n" EM " a AAAAAAAA\n", CL_EMALFORMED, "line 3", "no root");

  /* Origin line. */
  bad = replace(note, "clinlog.example", "clinlog\rexample");
  expect_code(bad, CL_EMALFORMED, "line 1", "CR in origin");
  free(bad);
  bad = replace(note, "clinlog.example", "clinlog\texample");
  expect_code(bad, CL_EMALFORMED, "line 1", "tab in origin");
  free(bad);
  bad = replace(note, "clinlog.example", "clinlog\xff" "example");
  expect_code(bad, CL_EMALFORMED, "line 1", "invalid UTF-8");
  free(bad);
  bad = replace(note, "clinlog.example", "clinlog\xc0\xae" "example");
  expect_code(bad, CL_EMALFORMED, "line 1", "overlong UTF-8");
  free(bad);
  bad = replace(note, "clinlog.example", "clinlog\xed\xa0\x80" "example");
  expect_code(bad, CL_EMALFORMED, "line 1", "UTF-8 surrogate");
  free(bad);
  const char *bad_utf8[] = {"\xe0\x80\xae", "\xf0\x80\x80\xae", "\xf4\x90\x80\x80", "\xe2\x80",
                            "\x80", "\xf5\x80\x80\x80"};
  for (size_t i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++) {
    char to[64];
    snprintf(to, sizeof to, "clinlog%sexample", bad_utf8[i]);
    bad = replace(note, "clinlog.example", to);
    expect_code(bad, CL_EMALFORMED, "line 1", "bad UTF-8 sequence");
    free(bad);
  }
  /* The largest code points of each length are fine (signature fails). */
  bad = replace(note, "clinlog.example", "clinlog\xdf\xbf\xef\xbf\xbf\xf4\x8f\xbf\xbf" "example");
  expect_code(bad, CL_EBADSIG, NULL, "valid multibyte UTF-8");
  free(bad);
  {
    char *nul = malloc(len);
    memcpy(nul, note, len);
    nul[3] = '\0';
    cl_err err = {0};
    cl_checkpoint out;
    cr_assert_eq(cl_checkpoint_verify(nul, len, g_name, g_pk, &out, &err), CL_EMALFORMED);
    cr_assert_eq(cl_checkpoint_parse(nul, len, &out, &err), CL_EMALFORMED);
    free(nul);
  }
  char long_origin[300];
  memset(long_origin, 'o', 256);
  long_origin[256] = '\0';
  bad = replace(note, "clinlog.example/log/v1", long_origin);
  expect_code(bad, CL_EMALFORMED, "255", "origin of 256 bytes");
  free(bad);
  long_origin[255] = '\0';
  bad = replace(note, "clinlog.example/log/v1", long_origin);
  expect_code(bad, CL_EBADSIG, NULL, "origin of 255 bytes parses");
  free(bad);
  /* CRLF line endings. */
  t = replace(note, "\n1234567\n", "\r\n1234567\n");
  expect_code(t, CL_EMALFORMED, "line 1", "CRLF");
  free(t);

  /* Signature lines. */
  const char *sig_prefix = EM " clinlog-test ";
  const char *bad_prefixes[] = {"- clinlog-test ",      EM "clinlog-test ",
                                EM "  clinlog-test ",   EM " clinlog+test ",
                                EM " clinlog-test  ",   EM " clinlog-test\t",
                                "\xe2\x80\x93 clinlog-test ", EM " clinlog\xc2\xa0test ",
                                EM " "};
  for (size_t i = 0; i < sizeof bad_prefixes / sizeof bad_prefixes[0]; i++) {
    bad = replace(note, sig_prefix, bad_prefixes[i]);
    expect_code(bad, CL_EMALFORMED, "line 5", bad_prefixes[i]);
    free(bad);
  }
  expect_code("o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n" EM " k \n", CL_EMALFORMED,
              "line 5", "empty signature");
  expect_code("o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n" EM " k AAAAAA==\n",
              CL_EMALFORMED, "5 bytes", "4-byte signature");
  expect_code("o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n" EM " k AAAAAAA=\n",
              CL_EUNKNOWNKEY, NULL, "5-byte unknown signature is fine");
  expect_code("o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n", CL_EMALFORMED,
              "no signature", "no signatures");
  free(note);
}

/* Builds "text\n" + lines, with `ours` (our signature line) at position
 * `at` among `others` foreign lines. Returned-owned. */
static char *with_lines(const char *text, const char *ours, int at, int others) {
  size_t cap = strlen(text) + 2 + strlen(ours) + (size_t)others * 256;
  char *r = malloc(cap);
  strcpy(r, text);
  strcat(r, "\n");
  for (int i = 0; i <= others; i++) {
    if (i == at) {
      strcat(r, ours);
      if (i == others)
        break;
    }
    if (i < others) {
      char l[200];
      snprintf(l, sizeof l, EM " witness-%d.example AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g"
                            "ISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0BBQkM=\n",
               i);
      strcat(r, l);
    }
  }
  return r;
}

Test(checkpoint, extra_signers_and_extensions, .init = setup) {
  uint8_t root[32];
  memset(root, 7, sizeof root);
  char root_b64[64];
  sodium_bin2base64(root_b64, sizeof root_b64, root, 32, sodium_base64_VARIANT_ORIGINAL);
  char text[512], ours[256], other_key_line[256], impostor[256];
  snprintf(text, sizeof text, "clinlog.example/log\n42\n%s\nfirst extension\n\xc3\xa9xt 2\n",
           root_b64);
  indep_sig_line(text, g_name, g_sk, ours, sizeof ours);
  indep_sig_line(text, "other.example", g_sk2, other_key_line, sizeof other_key_line);
  indep_sig_line(text, g_name, g_sk2, impostor, sizeof impostor); /* same name, other key */

  cl_err err = {0};
  cl_checkpoint got;
  char *n;
  /* Our line first, last, or among unknown lines; extension lines ignored. */
  for (int at = 0; at <= 3; at++) {
    n = with_lines(text, ours, at, 3);
    cr_assert_eq(verify(n, g_name, g_pk, &got, &err), 0, "at %d: %s", at, err.msg);
    cr_assert_eq(got.size, 42);
    cr_assert_str_eq(got.origin, "clinlog.example/log");
    cr_assert_arr_eq(got.root, root, 32);
    free(n);
  }
  /* Real signatures by other keys, including one under our name. */
  char lines[1024];
  snprintf(lines, sizeof lines, "%s%s%s", other_key_line, impostor, ours);
  n = with_lines(text, lines, 0, 0);
  cr_assert_eq(verify(n, g_name, g_pk, &got, &err), 0, "%s", err.msg);
  cr_assert_eq(verify(n, "other.example", g_pk2, &got, &err), 0, "%s", err.msg);
  cr_assert_eq(verify(n, g_name, g_pk2, &got, &err), 0, "impostor key verifies its own line");
  free(n);
  n = with_lines(text, impostor, 0, 0);
  cr_assert_eq(verify(n, g_name, g_pk, &got, &err), CL_EUNKNOWNKEY);
  free(n);

  /* Several lines by our key: only the first counts (as in Go's note.Open). */
  char bad_ours[256];
  strcpy(bad_ours, ours);
  char *c = strrchr(bad_ours, ' ') + 30;
  *c = *c == 'A' ? 'B' : 'A';
  snprintf(lines, sizeof lines, "%s%s", ours, bad_ours);
  n = with_lines(text, lines, 0, 0);
  cr_assert_eq(verify(n, g_name, g_pk, &got, &err), 0, "%s", err.msg);
  free(n);
  snprintf(lines, sizeof lines, "%s%s", bad_ours, ours);
  n = with_lines(text, lines, 0, 0);
  cr_assert_eq(verify(n, g_name, g_pk, &got, &err), CL_EBADSIG);
  cr_assert(strstr(err.msg, "line 7") != NULL, "%s", err.msg);
  free(n);

  /* 100 signature lines are fine, 101 are not. */
  n = with_lines(text, ours, 50, 99);
  cr_assert_eq(verify(n, g_name, g_pk, &got, &err), 0, "%s", err.msg);
  free(n);
  n = with_lines(text, ours, 99, 100);
  cr_assert_eq(verify(n, g_name, g_pk, &got, &err), CL_EMALFORMED);
  cr_assert(strstr(err.msg, "100") != NULL, "%s", err.msg);
  cr_assert_eq(cl_checkpoint_parse(n, strlen(n), &got, &err), CL_EMALFORMED);
  free(n);
}

Test(checkpoint, text_size_limit, .init = setup) {
  /* Text of exactly 64 KiB parses; one byte more does not. */
  const size_t limit = CL_CHECKPOINT_MAX_TEXT;
  const char *head = "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
  const char *sigs = "\n" EM " k AAAAAAA=\n";
  for (size_t extra = 0; extra <= 1; extra++) {
    size_t text_len = limit + extra;
    size_t ext = text_len - strlen(head) - 1; /* one extension line */
    char *n = malloc(text_len + strlen(sigs) + 1);
    strcpy(n, head);
    memset(n + strlen(head), 'x', ext);
    n[strlen(head) + ext] = '\n';
    strcpy(n + text_len, sigs);
    cl_checkpoint got;
    cl_err err = {0};
    int rc = cl_checkpoint_parse(n, strlen(n), &got, &err);
    if (extra == 0) {
      cr_assert_eq(rc, 0, "%s", err.msg);
    } else {
      cr_assert_eq(rc, CL_EMALFORMED);
      cr_assert(strstr(err.msg, "65537") != NULL, "%s", err.msg);
    }
    free(n);
  }
}

Test(checkpoint, sign_rejects_bad_input, .init = setup) {
  cl_checkpoint cp = sample();
  char *out = (char *)"untouched";
  size_t out_len = 12345;
  cl_err err = {0};
  const char *names[] = {"", "a b", "a+b", "tab\there", "nl\n", "nbsp\xc2\xa0x", "bad\xff"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    cr_assert_eq(cl_checkpoint_sign(&cp, names[i], g_sk, &out, &out_len, &err), CL_EINVAL,
                 "name %zu", i);
    cr_assert_eq(err.code, CL_EINVAL);
  }
  cr_assert_eq(cl_checkpoint_sign(&cp, NULL, g_sk, &out, &out_len, &err), CL_EINVAL);
  const char *origins[] = {"", "a\nb", "a\rb", "bad\xff", "a\x01"};
  for (size_t i = 0; i < sizeof origins / sizeof origins[0]; i++) {
    cl_checkpoint c = cp;
    memset(c.origin, 0, sizeof c.origin);
    strcpy(c.origin, origins[i]);
    cr_assert_eq(cl_checkpoint_sign(&c, g_name, g_sk, &out, &out_len, &err), CL_EINVAL,
                 "origin %zu", i);
  }
  cl_checkpoint c = cp;
  memset(c.origin, 'a', sizeof c.origin); /* no NUL */
  cr_assert_eq(cl_checkpoint_sign(&c, g_name, g_sk, &out, &out_len, &err), CL_EINVAL);
  cr_assert_str_eq(out, "untouched");
  cr_assert_eq(out_len, 12345);
}

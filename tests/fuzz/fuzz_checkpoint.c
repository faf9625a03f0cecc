/* libFuzzer target for C2SP checkpoint parsing and verification
 * (store/checkpoint.c).
 *
 * Every input is fed as-is to cl_checkpoint_parse and cl_checkpoint_verify
 * (under a fixed test key). In addition, when the first byte is odd the
 * input also shapes a checkpoint that is signed, checked to verify, then
 * changed in one byte and checked NOT to verify: a signed note has exactly
 * one accepted encoding, so any single-byte change must be refused. Crashes,
 * sanitizer reports and abort() on a wrong answer are findings. */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/checkpoint.h"
#include "store/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *k_name = "fuzz.example/key";
static uint8_t g_pk[32], g_sk[64];
static int g_ready;

static void keys(void) {
  if (g_ready)
    return;
  if (sodium_init() < 0)
    abort();
  uint8_t seed[32];
  memset(seed, 0x42, sizeof seed);
  crypto_sign_ed25519_seed_keypair(g_pk, g_sk, seed);
  g_ready = 1;
}

static void check_rc(int rc) {
  if (rc != 0 && rc != CL_EMALFORMED && rc != CL_EBADSIG && rc != CL_EUNKNOWNKEY)
    abort();
}

static void raw(const uint8_t *data, size_t size) {
  cl_checkpoint cp;
  cl_err err;
  int rc = cl_checkpoint_parse((const char *)data, size, &cp, &err);
  check_rc(rc);
  if (rc == 0 && (cp.origin[0] == '\0' || strlen(cp.origin) > 255))
    abort();
  int vrc = cl_checkpoint_verify((const char *)data, size, k_name, g_pk, &cp, &err);
  check_rc(vrc);
  /* Verification is parsing plus a signature check. */
  if (rc != 0 && vrc != rc)
    abort();
}

static void round_trip(const uint8_t *data, size_t size) {
  cl_checkpoint cp;
  memset(&cp, 0, sizeof cp);
  size_t i = 0;
  /* origin: printable ASCII from the input, 1..40 bytes */
  size_t olen = size ? 1 + data[0] % 40 : 1;
  for (size_t j = 0; j < olen; j++)
    cp.origin[j] = (char)(0x21 + (i < size ? data[i++] : 'o') % 94);
  for (unsigned j = 0; j < 8; j++)
    cp.size |= (uint64_t)(i < size ? data[i++] : 0) << (8 * j);
  for (unsigned j = 0; j < 32; j++)
    cp.root[j] = i < size ? data[i++] : 0;
  size_t pos = 0;
  for (unsigned j = 0; j < 4; j++)
    pos |= (size_t)(i < size ? data[i++] : 0) << (8 * j);
  uint8_t delta = i < size ? data[i++] : 1;

  char *note;
  size_t len;
  cl_err err;
  if (cl_checkpoint_sign(&cp, k_name, g_sk, &note, &len, &err) != 0)
    abort();
  cl_checkpoint got;
  if (cl_checkpoint_verify(note, len, k_name, g_pk, &got, &err) != 0)
    abort();
  if (memcmp(&got, &cp, sizeof cp) != 0)
    abort();
  if (delta != 0) {
    note[pos % len] = (char)(note[pos % len] ^ delta);
    if (cl_checkpoint_verify(note, len, k_name, g_pk, &got, &err) == 0)
      abort();
  }
  free(note);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  keys();
  raw(data, size);
  if (size > 0 && (data[0] & 1))
    round_trip(data + 1, size - 1);
  return 0;
}

/* Auditor's replay of a data directory: recomputes every leaf and the root
 * from event 1, checks the stored tree, stream versions, event ids, every
 * signature against the keyring as it stood at that point, and every stored
 * (and an optional external) checkpoint. Stops at the first divergence and
 * names it. Opens the database read-only; never writes. */
#ifndef CL_STORE_VERIFY_H
#define CL_STORE_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "store/err.h"

typedef struct cl_verify_options {
  const char *dir;
  const char *master_key_path;  /* default <dir>/keys/master.key; if absent,
                                   content checks (decrypt, keyring) are skipped */
  const uint8_t *log_public_key; /* 32 bytes from the auditor (the only log key, for
                                   every tree size); default: the log's own */
  const struct cl_logkeys *log_keys; /* the auditor's log key history (log.pub,
                                   store/logkey.h); wins over log_public_key */
  int hashes_only;              /* skip signature and content checks */
  const char *checkpoint;       /* external signed checkpoint note (optional) */
  size_t checkpoint_len;
  /* progress: called every few thousand events, and at the end */
  void (*progress)(void *ctx, uint64_t done, uint64_t total);
  void *progress_ctx;
} cl_verify_options;

typedef struct cl_verify_report {
  int ok;                     /* 1: no divergence found */
  uint64_t fail_seq;          /* first divergence (0: not tied to one record) */
  char fail_what[CL_ERR_MSG_SIZE];
  uint64_t events;            /* records replayed */
  uint64_t tree_size;         /* meta tree size */
  uint8_t root[32];           /* recomputed root */
  uint64_t checkpoints;       /* checkpoints verified */
  uint64_t signatures;        /* Ed25519 signatures verified */
  uint64_t decrypted;         /* events decrypted and checked against their hash */
  uint64_t erased;            /* events of crypto-shredded streams */
  int content_checked;        /* 1 if the master key was available */
  double seconds;
} cl_verify_report;

/* Runs the verification. Returns 0 when it ran (see report->ok for the
 * verdict), or an error when it could not run (CL_ENOTFOUND, CL_EIO...). */
int cl_verify_dir(const cl_verify_options *o, cl_verify_report *rep, cl_err *err);

#endif

/* Error codes and the error context every fallible clinlog function fills.
 *
 * Functions return 0 on success or a negative CL_E* code. Details go into a
 * caller-provided cl_err: the code plus a fixed-size message, usable when
 * memory has run out. Each layer may prefix its own context with
 * cl_err_prefix(). Foreign error codes (RocksDB, errno, gRPC, raft) are
 * translated at the module that owns them and never travel further. */
#ifndef CL_STORE_ERR_H
#define CL_STORE_ERR_H

#include <stdarg.h>
#include <stddef.h>

#if defined(__GNUC__)
#define CL_MUST_CHECK __attribute__((warn_unused_result))
#define CL_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CL_MUST_CHECK
#define CL_PRINTF(f, a)
#endif

/* X(name, value, short description) */
#define CL_ERRORS(X)                                                          \
  X(CL_EINVAL, -1, "invalid argument")                                        \
  X(CL_ENOMEM, -2, "out of memory")                                           \
  X(CL_EIO, -3, "I/O error")                                                  \
  X(CL_ECORRUPT, -4, "corrupt data")                                          \
  X(CL_ENOTFOUND, -5, "not found")                                            \
  X(CL_ECONFLICT, -6, "wrong expected version")                               \
  X(CL_EMALFORMED, -7, "malformed message")                                   \
  X(CL_EBADSIG, -8, "bad signature")                                          \
  X(CL_EUNKNOWNKEY, -9, "unknown key")                                        \
  X(CL_EREVOKED, -10, "revoked key")                                          \
  X(CL_ETOOBIG, -11, "too large")                                             \
  X(CL_EDENIED, -12, "permission denied")                                     \
  X(CL_EDUPLICATE, -13, "duplicate event id")                                 \
  X(CL_EERASED, -14, "stream erased")                                         \
  X(CL_EEXIST, -15, "already exists")                                         \
  X(CL_EAGAIN, -16, "try again")                                              \
  X(CL_ECRYPTO, -17, "decryption failed")                                     \
  X(CL_EFAILED, -18, "log failed, reopen required")                           \
  X(CL_EVERIFY, -19, "verification failed")                                  \
  X(CL_ENOTLEADER, -20, "not the leader")                                     \
  X(CL_EUNAVAILABLE, -21, "unavailable")                                      \
  X(CL_ETIMEDOUT, -22, "timed out")                                           \
  X(CL_EUNAUTH, -23, "not authenticated")                                     \
  X(CL_ELIMITED, -24, "too many attempts")                                    \
  X(CL_EPRECOND, -25, "refused by a safety check")

enum cl_errcode {
#define CL_ERR_ENUM(name, value, desc) name = (value),
  CL_ERRORS(CL_ERR_ENUM)
#undef CL_ERR_ENUM
};

#define CL_ERR_MSG_SIZE 256

typedef struct cl_err {
  int code;                    /* 0 or a CL_E* value */
  char msg[CL_ERR_MSG_SIZE];   /* NUL-terminated, possibly truncated */
} cl_err;

/* Symbolic name ("CL_ECONFLICT") and description of a code; static strings. */
const char *cl_errname(int code);
const char *cl_strerror(int code);

/* Clears *err (if err is not NULL). */
void cl_err_clear(cl_err *err);

/* Sets err->code and formats err->msg; returns `code` so callers can write
 * `return cl_err_set(err, CL_EINVAL, "...")`. `err` may be NULL. */
int cl_err_set(cl_err *err, int code, const char *fmt, ...) CL_PRINTF(3, 4);

/* Prepends "prefix: " to err->msg, keeping the code. Returns err->code. */
int cl_err_prefix(cl_err *err, const char *fmt, ...) CL_PRINTF(2, 3);

#endif

/* Error codes and messages; see err.h. */
#include "store/err.h"

#include <stdio.h>
#include <string.h>

const char *cl_errname(int code) {
  switch (code) {
  case 0:
    return "CL_OK";
#define CL_ERR_NAME(name, value, desc)                                         \
  case value:                                                                  \
    return #name;
    CL_ERRORS(CL_ERR_NAME)
#undef CL_ERR_NAME
  default:
    return "CL_E?";
  }
}

const char *cl_strerror(int code) {
  switch (code) {
  case 0:
    return "ok";
#define CL_ERR_DESC(name, value, desc)                                         \
  case value:                                                                  \
    return desc;
    CL_ERRORS(CL_ERR_DESC)
#undef CL_ERR_DESC
  default:
    return "unknown error";
  }
}

void cl_err_clear(cl_err *err) {
  if (err) {
    err->code = 0;
    err->msg[0] = '\0';
  }
}

int cl_err_set(cl_err *err, int code, const char *fmt, ...) {
  if (!err)
    return code;
  err->code = code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  va_end(ap);
  return code;
}

int cl_err_prefix(cl_err *err, const char *fmt, ...) {
  if (!err)
    return CL_EINVAL;
  char prefix[CL_ERR_MSG_SIZE];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  /* prefix, then as much of the old message as still fits */
  char old[CL_ERR_MSG_SIZE];
  memcpy(old, err->msg, sizeof old);
  size_t n = strnlen(prefix, sizeof err->msg - 3);
  memcpy(err->msg, prefix, n);
  memcpy(err->msg + n, ": ", 2);
  size_t rest = sizeof err->msg - n - 3;
  size_t ol = strnlen(old, rest);
  memcpy(err->msg + n + 2, old, ol);
  err->msg[n + 2 + ol] = '\0';
  return err->code;
}

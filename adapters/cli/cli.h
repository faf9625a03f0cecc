/* Shared pieces of the `clinlog` command-line tool. */
#ifndef CL_ADAPTERS_CLI_H
#define CL_ADAPTERS_CLI_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "store/err.h"
#include "store/log.h"

/* Prints "clinlog: <context>: <err->msg> (<CL_E...>)" to stderr; returns
 * the exit status for the error (2 for usage, 1 otherwise). */
int cli_fail(const char *context, const cl_err *err);

/* Opens a data directory for writing or reading. */
int cli_open(const char *dir, int read_only, cl_log **log, cl_err *err);

/* Terminal progress: a single updating line on stderr when it is a tty. */
typedef struct cli_progress {
  int tty;
  const char *what;
  double t0, last;
} cli_progress;
void cli_progress_start(cli_progress *p, const char *what);
void cli_progress_update(cli_progress *p, uint64_t done, uint64_t total);
void cli_progress_end(cli_progress *p);
double cli_now(void);

/* Parses a 16-byte id from 32 hex digits or a dashed UUID. 0 on success. */
int cli_parse_uuid(const char *s, uint8_t out[16]);
void cli_format_uuid(const uint8_t id[16], char out[37]);

/* Prints a JSON value as one line to f. */
void cli_print_json(FILE *f, json_t *v);

int cmd_init(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_append(int argc, char **argv);
int cmd_read(int argc, char **argv);
int cmd_get(int argc, char **argv);
int cmd_prove(int argc, char **argv);
int cmd_checkpoint(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_verify_proof(int argc, char **argv);
int cmd_head(int argc, char **argv);

#endif

/* Shared pieces of the `clinlog` command-line tool. */
#ifndef CL_ADAPTERS_CLI_H
#define CL_ADAPTERS_CLI_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "adapters/grpc/client.h"
#include "store/err.h"
#include "store/keys.h"
#include "store/log.h"
#include "store/logkey.h"

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

/* Reads f to its end into a returned-owned buffer (free()), *len bytes;
 * NULL when out of memory (check ferror(f) for read errors). */
char *cli_read_all(FILE *f, size_t *len);

/* Parses a decimal unsigned number given for `flag`; prints
 * "clinlog: FLAG: expected a number, got ..." and returns -1 if it is not one. */
int cli_parse_u64(const char *flag, const char *s, uint64_t *out);

/* Parses a 16-byte id from 32 hex digits or a dashed UUID. 0 on success. */
int cli_parse_uuid(const char *s, uint8_t out[16]);
void cli_format_uuid(const uint8_t id[16], char out[37]);

/* Prints a string from a server with control bytes replaced, so a faulty
 * or hostile node cannot drive the terminal; "-" for empty; padded with
 * spaces to `width`. */
void cli_put_safe(FILE *f, const char *s, int width);

/* Prints a protobuf message as one line of proto3 JSON on stdout; returns
 * the exit status (0, or 1 after printing the error). */
int cli_print_message(const ProtobufCMessage *m, const char *what);

/* Prints a JSON value as one line to f. */
void cli_print_json(FILE *f, json_t *v);

/* Prints events as JSON lines on stdout (`read`, `get`, `tail`), skipping
 * those the filter drops. A cl_event_fn: ctx is a cli_event_printer. */
typedef struct cli_event_printer {
  uint32_t type;      /* event type code, 0 = all */
  const char *prefix; /* stream prefix, NULL = all */
  uint64_t printed;   /* events printed so far */
} cli_event_printer;
int cli_print_event(void *ctx, const cl_event_view *v, cl_err *err);

/* ---- talking to a clinlogd instead of a data directory (remote.c) ---- */

typedef struct cli_remote {
  const char *server;      /* --server HOST:PORT; NULL: local directory */
  const char *ca;          /* --ca PEM */
  const char *cert;        /* --cert PEM (mutual TLS) */
  const char *cert_key;    /* --cert-key PEM (also --key where that is not the signing key) */
  const char *server_name; /* --server-name NAME */
  int plaintext;           /* --plaintext */
  int timeout_ms;          /* --timeout-ms N; 0: the client's default */
  const char *token_file;  /* --token-file FILE: the session token to send (clinlog login) */
  int no_token;            /* send no token (login itself) */
} cli_remote;

/* getopt_long codes of the remote options; CLI_REMOTE_OPTIONS expands to
 * their struct option entries (without "--key"). */
enum {
  CLI_OPT_SERVER = 1000,
  CLI_OPT_CA,
  CLI_OPT_CERT,
  CLI_OPT_CERT_KEY,
  CLI_OPT_SERVER_NAME,
  CLI_OPT_PLAINTEXT,
  CLI_OPT_TIMEOUT,
  CLI_OPT_TOKEN_FILE
};
#define CLI_REMOTE_OPTIONS                                                                         \
  {"server", required_argument, 0, CLI_OPT_SERVER}, {"ca", required_argument, 0, CLI_OPT_CA},      \
      {"cert", required_argument, 0, CLI_OPT_CERT},                                                \
      {"cert-key", required_argument, 0, CLI_OPT_CERT_KEY},                                        \
      {"server-name", required_argument, 0, CLI_OPT_SERVER_NAME},                                  \
      {"plaintext", no_argument, 0, CLI_OPT_PLAINTEXT},                                            \
      {"timeout-ms", required_argument, 0, CLI_OPT_TIMEOUT}, {                                     \
    "token-file", required_argument, 0, CLI_OPT_TOKEN_FILE                                         \
  }
#define CLI_REMOTE_USAGE                                                                           \
  "  --server HOST:PORT   talk to a clinlogd instead of a data directory\n"                        \
  "  --ca PEM             CA certificates to trust (default: the system's)\n"                      \
  "  --cert PEM --cert-key PEM   client certificate and key for mutual TLS\n"                      \
  "  --server-name NAME   name expected in the server's certificate\n"                             \
  "  --plaintext          no TLS (clinlogd --dev on loopback)\n"                                   \
  "  --timeout-ms N       deadline of each call (default 30000)\n"                                 \
  "  --token-file FILE    session token of `clinlog login` (default $CLINLOG_TOKEN_FILE,\n"        \
  "                       else ~/.clinlog/token; sent when the file exists)\n"

/* Handles getopt code c (argument arg) if it is a remote option; returns 1
 * if it was one, 0 if not. */
int cli_remote_option(cli_remote *r, int c, const char *arg);

/* Opens a client for r->server. *c is returned-owned (cl_client_close). */
int cli_remote_open(const cli_remote *r, cl_client **c, cl_err *err);

/* A unary call of the cluster API (what: the command, for messages) against
 * r->server and, when that node answers that it is not the leader and names
 * the leader, once more there (unless !follow). Returns the exit status (0,
 * or 1 with the error printed); on 0, *out is returned-owned
 * (protobuf_c_message_free_unpacked) and served_by (optional, n bytes) gets
 * the node that answered. */
int cli_call_leader(const cli_remote *r, int follow, const char *what, const char *method,
                    const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp,
                    int timeout_ms, ProtobufCMessage **out, char *served_by, size_t n);

/* The principal the public key `pk` is registered to, asked of the server
 * through Log.Read of the "$principal-" streams (the last registration
 * wins, as in the keyring). 0 with out filled; CL_EUNKNOWNKEY when the
 * key is not registered; the call's error otherwise. */
int cli_remote_principal(cl_client *c, const uint8_t pk[32], char *out, size_t n, cl_err *err);

/* Signs the n serialized events `evs` (borrowed) as one batch with s and
 * appends them through c. 0 with *first and *last their sequence numbers
 * and *dup 1 when the whole batch was committed before (nothing written);
 * else the call's error (CL_EDUPLICATE: an event id is committed with
 * other bytes). */
int cli_append_signed(cl_client *c, const cl_signer *s, const ProtobufCBinaryData *evs, size_t n,
                      uint64_t *first, uint64_t *last, int *dup, cl_err *err);

/* A view (valid while *e lives) of a RecordedEvent received from a server,
 * for cli_print_event. stream_tag is NULL: servers do not send it. */
void cli_view_of_recorded(const Clinlog__V1__RecordedEvent *e, cl_event_view *v);

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
int cmd_tail(int argc, char **argv);
int cmd_cluster(int argc, char **argv);
int cmd_keys(int argc, char **argv); /* keys rotate-master|new-master (cmd_keys.c) */
int cmd_streams(int argc, char **argv);
int cmd_projections(int argc, char **argv);
int cmd_fhir(int argc, char **argv);
int cmd_ingest(int argc, char **argv); /* ingest hl7 (cmd_ingest.c) */
int cmd_ingest_readings(int argc, char **argv); /* ingest readings (cmd_ingest_readings.c) */
int cmd_ingest_fhir(int argc, char **argv); /* ingest fhir (cmd_ingest_fhir.c) */

/* What every `clinlog ingest FORMAT` takes and holds (cmd_ingest.c). */
typedef struct cli_ingest {
  cli_remote remote;
  const char *keyfile, *principal_opt, *role; /* --key, --principal, --role (NULL: unset) */
  int json;                                   /* --json */
  char **paths;                               /* the FILE (or DIR) arguments, borrowed */
  int npaths;
  cl_client *client;   /* cli_ingest_open: returned-owned (cli_ingest_close) */
  cl_signer signer;    /* the feed's key */
  char principal[128]; /* the key's principal, or --principal */
} cli_ingest;

/* Parses `clinlog ingest <what>` options (argv[0] is the format): --key,
 * --principal, --role, --json, --help, the remote ones and, when `extra`
 * names one more long option with an argument, that one (handed to
 * on_extra with ctx: 0 ok, else a usage error). Returns -1 to go on, else
 * the exit status (usage printed). */
int cli_ingest_parse(int argc, char **argv, const char *what, int (*usage_fn)(FILE *, int),
                     const char *extra, int (*on_extra)(void *, const char *), void *ctx,
                     cli_ingest *a);
/* Loads the key, opens the client and finds the key's principal (unless
 * --principal). 0, or the exit status with the error printed (nothing to
 * close then). */
int cli_ingest_open(cli_ingest *a, const char *what);
void cli_ingest_close(cli_ingest *a);
int cmd_audit(int argc, char **argv);
int cmd_kb(int argc, char **argv); /* kb check (cmd_kb.c) */
int cmd_auth_break_glass(int argc, char **argv); /* `clinlog auth break-glass` */
/* clinlog auth enroll|login|logout|whoami, login, logout (cmd_auth.c). */
int cmd_auth(int argc, char **argv);
int cmd_login(int argc, char **argv);
int cmd_logout(int argc, char **argv);
/* The session token kept by `clinlog login` (file: opt, else the default)
 * into out. 0, or -1 when there is none. */
int cli_token_read(const char *opt, char *out, size_t n);

/* clinlog fhir export|export-status|export-cancel (cmd_fhir_export.c). */
typedef struct cli_fhir_export_args {
  char **params; /* export: NAME=VALUE (_type, _since, ...); else the job id */
  int nparams;
  const char *out_dir; /* --out */
  const char *group;   /* --group ID: Group level */
  int patients;        /* --patients: Patient level */
  int strict, json;
} cli_fhir_export_args;
int cli_fhir_export(cl_client *cl, const char *sub, const cli_fhir_export_args *a);

/* `verify --remote`: replays a live node through its API (cmd_verify_remote.c).
 * log_keys (borrowed; --log-key's log.pub; NULL: learn the key history from
 * the log, trusting its genesis event and each "$log" key change only if
 * signed by the log key in force before it) and note (may be NULL) as for
 * local verify. Returns the exit status (0 verified, 3 divergence, 1 could
 * not run). */
int cli_verify_remote(const cli_remote *r, int json, int hashes_only, const cl_logkeys *log_keys,
                      const char *note, size_t note_len);

#endif

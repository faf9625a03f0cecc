/* clinlog auth break-glass PATIENT --reason TEXT [--seconds N]: an
 * emergency read of one patient's data the caller's roles do not allow
 * (clinlog.v1.Auth/BreakGlass, docs/security.md). The session of the token
 * file may then read that patient for N seconds (default 3600, at most
 * 14400); every such read is recorded as break-glass, and privacy officers
 * see the declaration (BreakGlassDeclared) as an alert.
 *
 * Exit status: 0 granted, 1 refused or failed (PERMISSION_DENIED: the
 * policy gives the caller's roles no `emergency`), 2 usage. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "adapters/cli/cli.h"
#include "adapters/grpc/grpcutil.h"
#include "clinlog/v1/auth.pb-c.h"

static const char USAGE[] =
    "usage: clinlog auth break-glass PATIENT --reason TEXT [--seconds N] [--json]\n"
    "                                --server HOST:PORT [TLS]\n"
    "Declares an emergency: the session (clinlog login) may read PATIENT's data for N\n"
    "seconds (default 3600, at most 14400). The reason is recorded and alerted "
    "on.\n" CLI_REMOTE_USAGE;

int cmd_auth_break_glass(int argc, char **argv) {
  enum { OPT_REASON = 1, OPT_SECONDS, OPT_JSON, OPT_HELP };
  static const struct option opts[] = {{"reason", required_argument, 0, OPT_REASON},
                                       {"seconds", required_argument, 0, OPT_SECONDS},
                                       {"json", no_argument, 0, OPT_JSON},
                                       {"help", no_argument, 0, OPT_HELP},
                                       CLI_REMOTE_OPTIONS,
                                       {0, 0, 0, 0}};
  cli_remote remote = {0};
  Clinlog__V1__BreakGlassRequest req = CLINLOG__V1__BREAK_GLASS_REQUEST__INIT;
  uint64_t seconds = 0;
  int json = 0, c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (cli_remote_option(&remote, c, optarg))
      continue;
    if (c == OPT_REASON) {
      req.reason = optarg;
    } else if (c == OPT_SECONDS) {
      if (cli_parse_u64("--seconds", optarg, &seconds) || seconds > 14400)
        return 2;
    } else if (c == OPT_JSON) {
      json = 1;
    } else {
      fputs(USAGE, c == OPT_HELP ? stdout : stderr);
      return c == OPT_HELP ? 0 : 2;
    }
  }
  if (!remote.server || optind + 1 != argc || !req.reason[0]) {
    fputs(USAGE, stderr);
    return 2;
  }
  req.patient_id = argv[optind];
  req.seconds = (uint32_t)seconds;
  cl_err err;
  cl_err_clear(&err);
  cl_client *cl;
  if (cli_remote_open(&remote, &cl, &err) != 0)
    return cli_fail("break-glass", &err);
  ProtobufCMessage *m;
  int rc = 0;
  if (cl_client_unary(cl, cl_grpc_method_path[M_AUTH_BREAK_GLASS], &req.base,
                      &clinlog__v1__break_glass_response__descriptor, &m, NULL, &err) != 0) {
    rc = cli_fail("break-glass", &err);
  } else {
    Clinlog__V1__BreakGlassResponse *r = (Clinlog__V1__BreakGlassResponse *)m;
    long long until = r->expires_at ? (long long)r->expires_at->seconds : 0;
    if (json)
      printf("{\"patient\":\"%s\",\"expiresAt\":%lld,\"seq\":%llu}\n", req.patient_id, until,
             (unsigned long long)r->seq);
    else
      printf("break-glass on patient %s until %lld (declared at seq %llu; every read is recorded "
             "as break-glass)\n",
             req.patient_id, until, (unsigned long long)r->seq);
    protobuf_c_message_free_unpacked(m, NULL);
  }
  cl_client_close(cl);
  return rc;
}

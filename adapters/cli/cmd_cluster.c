/* clinlog cluster status|add|remove|transfer: the operator's side of
 * clinlogd's clinlog.v1.Cluster service (proto/clinlog/v1/cluster.proto).
 *
 * Every subcommand is one unary call answered with a ClusterStatus, printed
 * as a table or (--json) as proto3 JSON. Membership changes must reach the
 * leader: a follower answers UNAVAILABLE with the leader's API address in
 * the "clinlog-leader" trailing metadata, and the call is then made once
 * more against that address (never more than once, so two nodes that name
 * each other cannot bounce us around), unless --no-follow.
 *
 * Exit status: 0 done, 1 error (server or transport), 2 usage. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/cli/cli.h"
#include "adapters/pbjson/pbjson.h"
#include "clinlog/v1/cluster.pb-c.h"

#define ADD_TIMEOUT_MS 120000 /* catching up a large log takes a while */

enum { OPT_JSON = 1, OPT_NO_FOLLOW, OPT_NO_PROMOTE, OPT_HELP };

static const char USAGE[] =
    "usage: clinlog cluster status [--json] --server HOST:PORT [TLS options]\n"
    "       clinlog cluster add ID RAFT_ADDR API_ADDR [--no-promote] [--timeout-ms N] ...\n"
    "       clinlog cluster remove ID ...\n"
    "       clinlog cluster transfer [ID] ...\n"
    "Membership and replication status of a clinlogd cluster (clinlog.v1.Cluster).\n"
    "  status     members, roles, Raft progress and the store head, as the node at\n"
    "             --server sees them (only the leader knows match index and lag)\n"
    "  add        adds node ID (RAFT_ADDR: its Raft transport, API_ADDR: its gRPC API);\n"
    "             it joins as a non-voter, catches up, then becomes a voter, and the\n"
    "             command waits for that (--timeout-ms, default 120000);\n"
    "             --no-promote keeps it a non-voting standby\n"
    "  remove     removes node ID from the cluster\n"
    "  transfer   hands leadership to voter ID (default: the most up-to-date one)\n"
    "Membership changes are made by the leader: a follower answers with the\n"
    "leader's address and the command retries there once.\n"
    "  --json               print the answer (a ClusterStatus) as proto3 JSON\n"
    "  --no-follow          do not retry against the leader a follower names\n" CLI_REMOTE_USAGE;

static const char SHORT_USAGE[] =
    "usage: clinlog cluster status|add|remove|transfer [ARGS] --server HOST:PORT [options]\n"
    "(`clinlog cluster --help` describes them)\n";

/* A decimal uint64 with nothing else around it. */
static int parse_id(const char *s, uint64_t *out) {
  if (!s || *s < '0' || *s > '9')
    return -1;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end)
    return -1;
  *out = v;
  return 0;
}

static int max_i(int a, int b) { return a > b ? a : b; }

static int slen(const char *s) { return s && *s ? (int)strlen(s) : 1; }

static void print_table(const Clinlog__V1__ClusterStatus *s) {
  int leader = s->state && !strcmp(s->state, "leader");
  printf("node %llu: ", (unsigned long long)s->node_id);
  cli_put_safe(stdout, s->state, 0);
  printf(", term %llu\n", (unsigned long long)s->term);
  if (s->leader_id) {
    printf("leader: node %llu at ", (unsigned long long)s->leader_id);
    cli_put_safe(stdout, s->leader_api_address, 0);
    printf("\n");
  } else {
    printf("leader: none known\n");
  }
  printf("commit index %llu, applied index %llu, last index %llu\n",
         (unsigned long long)s->commit_index, (unsigned long long)s->applied_index,
         (unsigned long long)s->last_index);
  char root[65] = "-";
  if (s->root_hash.len == 32)
    cl_hex(s->root_hash.data, 32, root);
  else if (s->root_hash.len)
    snprintf(root, sizeof root, "(%zu bytes?)", s->root_hash.len);
  printf("tree size %llu, root %s\n\n", (unsigned long long)s->tree_size, root);

  int w_id = 2, w_role = 4, w_state = 5, w_raft = 12, w_api = 11, w_match = 11;
  char num[32];
  for (size_t i = 0; i < s->n_nodes; i++) {
    const Clinlog__V1__NodeStatus *n = s->nodes[i];
    w_id = max_i(w_id, snprintf(num, sizeof num, "%llu", (unsigned long long)n->id));
    w_role = max_i(w_role, slen(n->role));
    w_state = max_i(w_state, slen(n->state));
    w_raft = max_i(w_raft, slen(n->raft_address));
    w_api = max_i(w_api, slen(n->api_address));
    w_match = max_i(w_match, snprintf(num, sizeof num, "%llu", (unsigned long long)n->match_index));
  }
  printf("%-*s  %-*s  %-*s  %-*s  %-*s  %-*s  %s\n", w_id, "ID", w_role, "ROLE", w_state, "STATE",
         w_raft, "RAFT ADDRESS", w_api, "API ADDRESS", w_match, "MATCH INDEX", "LAG");
  for (size_t i = 0; i < s->n_nodes; i++) {
    const Clinlog__V1__NodeStatus *n = s->nodes[i];
    printf("%-*llu  ", w_id, (unsigned long long)n->id);
    cli_put_safe(stdout, n->role, w_role);
    printf("  ");
    cli_put_safe(stdout, n->state, w_state);
    printf("  ");
    cli_put_safe(stdout, n->raft_address, w_raft);
    printf("  ");
    cli_put_safe(stdout, n->api_address, w_api);
    /* match index and lag are the leader's knowledge; elsewhere they are 0 */
    if (leader)
      printf("  %-*llu  %llu\n", w_match, (unsigned long long)n->match_index,
             (unsigned long long)n->lag);
    else
      printf("  %-*s  %s\n", w_match, "-", "-");
  }
  if (!leader)
    printf("(match index and lag: ask the leader)\n");
}

/* The cluster call against r->server, once more against the leader a
 * follower names (unless !follow). Returns the exit status; on 0, *out is
 * returned-owned (free_unpacked). Prints the errors. */
static int call(const cli_remote *r0, int follow, const char *what, const char *method,
                const ProtobufCMessage *req, int timeout_ms, Clinlog__V1__ClusterStatus **out) {
  ProtobufCMessage *m = NULL;
  int rc = cli_call_leader(r0, follow, what, method, req, &clinlog__v1__cluster_status__descriptor,
                           timeout_ms, &m, NULL, 0);
  *out = (Clinlog__V1__ClusterStatus *)m;
  return rc;
}

int cmd_cluster(int argc, char **argv) {
  static const struct option opts[] = {{"json", no_argument, 0, OPT_JSON},
                                       {"no-follow", no_argument, 0, OPT_NO_FOLLOW},
                                       {"no-promote", no_argument, 0, OPT_NO_PROMOTE},
                                       {"help", no_argument, 0, OPT_HELP},
                                       CLI_REMOTE_OPTIONS,
                                       {0, 0, 0, 0}};
  cli_remote remote = {0};
  int json = 0, follow = 1, no_promote = 0, c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (cli_remote_option(&remote, c, optarg)) {
      if (c == CLI_OPT_TIMEOUT && remote.timeout_ms <= 0) {
        fprintf(stderr, "clinlog cluster: --timeout-ms: expected a number >= 1, got \"%s\"\n",
                optarg);
        return 2;
      }
      continue;
    }
    switch (c) {
    case OPT_JSON:
      json = 1;
      break;
    case OPT_NO_FOLLOW:
      follow = 0;
      break;
    case OPT_NO_PROMOTE:
      no_promote = 1;
      break;
    default:
      fputs(c == OPT_HELP ? USAGE : SHORT_USAGE, c == OPT_HELP ? stdout : stderr);
      return c == OPT_HELP ? 0 : 2;
    }
  }
  int npos = argc - optind;
  char **pos = argv + optind;
  if (npos < 1) {
    fprintf(stderr, "clinlog cluster: which subcommand? (status, add, remove, transfer)\n%s",
            SHORT_USAGE);
    return 2;
  }
  const char *sub = pos[0];
  uint64_t id = 0;
  const char *method, *what;
  ProtobufCMessage *req;
  Clinlog__V1__ClusterStatusRequest sreq = CLINLOG__V1__CLUSTER_STATUS_REQUEST__INIT;
  Clinlog__V1__AddNodeRequest areq = CLINLOG__V1__ADD_NODE_REQUEST__INIT;
  Clinlog__V1__RemoveNodeRequest rreq = CLINLOG__V1__REMOVE_NODE_REQUEST__INIT;
  Clinlog__V1__TransferLeadershipRequest treq = CLINLOG__V1__TRANSFER_LEADERSHIP_REQUEST__INIT;
  int timeout_ms = remote.timeout_ms; /* 0: the client's default (30000) */
  if (!strcmp(sub, "status")) {
    if (npos != 1)
      goto usage;
    method = "/clinlog.v1.Cluster/Status";
    what = "cluster status";
    req = &sreq.base;
  } else if (!strcmp(sub, "add")) {
    if (npos != 4)
      goto usage;
    if (parse_id(pos[1], &id) || id == 0) {
      fprintf(stderr, "clinlog cluster add: ID: expected a number >= 1, got \"%s\"\n", pos[1]);
      return 2;
    }
    for (int i = 2; i <= 3; i++)
      if (!strchr(pos[i], ':')) {
        fprintf(stderr, "clinlog cluster add: %s: expected HOST:PORT, got \"%s\"\n",
                i == 2 ? "RAFT_ADDR" : "API_ADDR", pos[i]);
        return 2;
      }
    areq.id = id;
    areq.raft_address = pos[2];
    areq.api_address = pos[3];
    areq.voter = !no_promote;
    areq.no_promote = no_promote;
    method = "/clinlog.v1.Cluster/AddNode";
    what = "cluster add";
    req = &areq.base;
    if (!timeout_ms)
      timeout_ms = ADD_TIMEOUT_MS;
  } else if (!strcmp(sub, "remove")) {
    if (npos != 2)
      goto usage;
    if (parse_id(pos[1], &id) || id == 0) {
      fprintf(stderr, "clinlog cluster remove: ID: expected a number >= 1, got \"%s\"\n", pos[1]);
      return 2;
    }
    rreq.id = id;
    method = "/clinlog.v1.Cluster/RemoveNode";
    what = "cluster remove";
    req = &rreq.base;
  } else if (!strcmp(sub, "transfer")) {
    if (npos > 2)
      goto usage;
    if (npos == 2 && parse_id(pos[1], &id)) {
      fprintf(stderr, "clinlog cluster transfer: ID: expected a number, got \"%s\"\n", pos[1]);
      return 2;
    }
    treq.id = id;
    method = "/clinlog.v1.Cluster/TransferLeadership";
    what = "cluster transfer";
    req = &treq.base;
  } else {
    fprintf(stderr, "clinlog cluster: unknown subcommand \"%s\"\n%s", sub, SHORT_USAGE);
    return 2;
  }
  if (no_promote && req != &areq.base) {
    fprintf(stderr, "clinlog cluster %s: --no-promote is an option of `add`\n", sub);
    return 2;
  }
  if (!remote.server) {
    fprintf(stderr, "clinlog cluster %s: --server HOST:PORT required\n", sub);
    return 2;
  }

  Clinlog__V1__ClusterStatus *st;
  int status = call(&remote, follow, what, method, req, timeout_ms, &st);
  if (status)
    return status;
  if (json) {
    status = cli_print_message(&st->base, "cluster");
  } else {
    if (req == &areq.base)
      printf("added node %llu (%s)\n\n", (unsigned long long)id, no_promote ? "standby" : "voter");
    else if (req == &rreq.base)
      printf("removed node %llu\n\n", (unsigned long long)id);
    else if (req == &treq.base && st->leader_id)
      printf("leadership transferred to node %llu\n\n", (unsigned long long)st->leader_id);
    else if (req == &treq.base)
      printf("leadership transferred (the new leader is not known yet)\n\n");
    print_table(st);
  }
  clinlog__v1__cluster_status__free_unpacked(st, NULL);
  return status;

usage:
  fprintf(stderr, "clinlog cluster %s: wrong number of arguments\n%s", sub, SHORT_USAGE);
  return 2;
}

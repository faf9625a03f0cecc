/* clinlog-bench proof: what an auditor's work costs — RFC 9162 inclusion
 * and consistency proofs, their verification, and the replay of a whole
 * log (`clinlog verify`) — on a log of N events (docs/bench.md, "Proofs
 * and verify").
 *
 *   clinlog-bench proof [--quick] [--json] [--dir D] [--events N] [--proofs N]
 *                       [--clinlogd PATH]
 *
 * A fresh log (D/server) gets N events (default 200,000; --quick 50,000)
 * of ~300 bytes over 5,000 streams, in batches of 1,000 signed by one
 * batch signature, sync off (the build, not measured). Then, in the same
 * run:
 *  - raw limits (the best of three windows): SHA-256 node hashes/s
 *    (cl_merkle_node_hash, 1 thread), leaf hashes of 320-byte records
 *    (MB/s), Ed25519 verifies/s;
 *  - in process: inclusion proofs of random events at the head
 *    (cl_log_prove_inclusion) and consistency proofs from random older
 *    sizes (cl_log_prove_consistency), from 1 and 2 threads; verification
 *    of those proofs (cl_merkle_verify_inclusion / _consistency), the
 *    auditor's side; the replay of the whole log by cl_verify_dir, hashes
 *    only and with every signature and every event decrypted and checked;
 *  - over gRPC: one clinlogd --dev on the log (its defaults: audit trail
 *    on: every call recorded before it is answered), Log.ProveInclusion of
 *    random events at the head from 1 and 16 client threads on one
 *    channel, each answer checked as an auditor does (SHA-256(0x00 ||
 *    record) is the leaf hash, the path leads to the root); then the same
 *    with --audit off, to show what the trail costs.
 * No peer offers these (PostgreSQL and etcd prove nothing); every figure is
 * set against the raw limit of the same run: verifying an inclusion proof
 * hashes its path (about log2(N) nodes), so verification's limit is the
 * node-hash rate divided by the proofs' mean length; the replay's is the
 * leaf-hash rate over the log's bytes.
 * Exit status 0; 1 when a proof did not verify or a step failed; 2 on a
 * usage error. */
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapters/grpc/client.h"
#include "bench/benchutil.h"
#include "bench/connrun.h"
#include "bench/workload.h"
#include "store/merkle.h"
#include "store/verify.h"

int bench_proof_main(int argc, char **argv);

#define BATCH 1000

/* ---------------------------------------------------------- raw limits */

typedef struct raw {
  double node_hashes_per_s, leaf_mb_per_s, ed25519_verify_per_s;
} raw;

/* Calls of fn per second over `secs`, the best of three windows (the box
 * is shared: the best is the closest to the machine's limit). */
static double rate(void (*fn)(void *), void *arg, int per_call, double secs) {
  double best = 0;
  for (int w = 0; w < 3; w++) {
    size_t n = 0;
    double t0 = bench_mono(), t;
    do {
      fn(arg);
      n += (size_t)per_call;
    } while ((t = bench_mono() - t0) < secs / 3);
    if ((double)n / t > best)
      best = (double)n / t;
  }
  return best;
}

static void node_hashes(void *arg) {
  uint8_t *a = arg, out[32];
  for (int i = 0; i < 4096; i++) {
    cl_merkle_node_hash(a, a + 32, out);
    a[0] = out[0];
  }
}

static void leaf_hashes(void *arg) {
  uint8_t *rec = arg, out[32];
  for (int i = 0; i < 4096; i++) {
    cl_merkle_leaf_hash(rec, 320, out);
    rec[0] = out[0];
  }
}

typedef struct sigv {
  unsigned char pk[32], sk[64], sig[64], msg[32];
} sigv;

static void verifies(void *arg) {
  sigv *v = arg;
  for (int i = 0; i < 256; i++)
    if (crypto_sign_verify_detached(v->sig, v->msg, sizeof v->msg, v->pk) != 0)
      abort();
}

static raw raw_limits(double secs) {
  raw r = {0};
  uint8_t nodes[64] = {1}, rec[320];
  randombytes_buf(rec, sizeof rec);
  r.node_hashes_per_s = rate(node_hashes, nodes, 4096, secs);
  r.leaf_mb_per_s = rate(leaf_hashes, rec, 4096, secs) * sizeof rec / 1e6;
  sigv v = {0};
  crypto_sign_keypair(v.pk, v.sk);
  crypto_sign_detached(v.sig, NULL, v.msg, sizeof v.msg, v.sk);
  r.ed25519_verify_per_s = rate(verifies, &v, 256, secs);
  return r;
}

/* ---------------------------------------------------------- the log */

static int build(const char *dir, const cl_signer *admin, size_t events, int progress) {
  cl_signer other;
  cl_err err;
  if (cl_signer_generate(&other, &err))
    return -1;
  int made = bench_log_with_feed(dir, admin, &other, "bench-auditor", "auditor", NULL);
  cl_signer_free(&other);
  if (made)
    return -1;
  cl_log_options o;
  cl_log_options_init(&o);
  o.dir = dir;
  o.sync = 0;
  cl_log *log;
  if (cl_log_open(&o, &log, &err)) {
    fprintf(stderr, "clinlog-bench proof: %s: %s\n", dir, err.msg);
    return -1;
  }
  unsigned seed = 7;
  int rc = 0;
  for (size_t done = 0; done < events && !rc; done += BATCH) {
    bench_batch g;
    bench_batch_make(&g, BATCH, admin, &seed);
    cl_append_result r;
    if ((rc = cl_log_append(log, &g.b, &r, &err)) == 0)
      cl_append_result_free(&r);
    else
      fprintf(stderr, "clinlog-bench proof: append: %s\n", err.msg);
    bench_batch_free(&g);
    if (progress && done % 20000 == 0)
      fprintf(stderr, "\r  building the log: %zu/%zu events", done, events);
  }
  if (progress)
    fprintf(stderr, "\r%60s\r", "");
  cl_log_close(log);
  return rc ? -1 : 0;
}

/* ---------------------------------------------------------- in process */

enum { K_INCL, K_CONS };

typedef struct pctx {
  cl_log *log;
  uint64_t size;
  uint8_t root[32];
  int kind;
  int verify; /* verify (the auditor) instead of prove (the server) */
  /* proofs made before the clock starts, for the verify rows */
  struct made {
    uint64_t a; /* seq (inclusion) or old size (consistency) */
    uint8_t leaf[32], old_root[32];
    uint8_t proof[CL_MERKLE_MAX_PROOF][32];
    size_t n;
  } *made;
  size_t nmade;
  size_t hashes; /* proof hashes, summed (atomic enough: one writer per slot) */
} pctx;

static uint64_t pick(uint64_t size, size_t i) { /* spread over the log, repeatable */
  return 1 + (uint64_t)((i * 2654435761u) % size);
}

static int p_one(void *ctx, void *conn, size_t i, char *err, size_t errn) {
  (void)conn;
  pctx *x = ctx;
  cl_err e;
  struct made m, *mm = &x->made[i % x->nmade];
  if (x->verify) {
    int rc = x->kind == K_INCL
                 ? cl_merkle_verify_inclusion(mm->leaf, mm->a - 1, x->size,
                                              (const uint8_t(*)[32])mm->proof, mm->n, x->root, &e)
                 : cl_merkle_verify_consistency(mm->a, x->size, mm->old_root, x->root,
                                                (const uint8_t(*)[32])mm->proof, mm->n, &e);
    return rc ? snprintf(err, errn, "a proof did not verify: %s", e.msg), -1 : 0;
  }
  m.a = pick(x->kind == K_INCL ? x->size : x->size - 1, i);
  int rc = x->kind == K_INCL
               ? cl_log_prove_inclusion(x->log, m.a, x->size, m.proof, &m.n, m.leaf, &e)
               : cl_log_prove_consistency(x->log, m.a, x->size, m.proof, &m.n, &e);
  return rc ? snprintf(err, errn, "proof: %s", e.msg), -1 : 0;
}

/* nmade proofs of `kind`, made before the clock starts. */
static int make_proofs(pctx *x, size_t nmade) {
  if (!(x->made = calloc(nmade, sizeof *x->made)))
    return -1;
  x->nmade = nmade;
  cl_err e;
  for (size_t i = 0; i < nmade; i++) {
    struct made *m = &x->made[i];
    m->a = pick(x->kind == K_INCL ? x->size : x->size - 1, i);
    int rc = x->kind == K_INCL
                 ? cl_log_prove_inclusion(x->log, m->a, x->size, m->proof, &m->n, m->leaf, &e)
                 : cl_log_prove_consistency(x->log, m->a, x->size, m->proof, &m->n, &e) ||
                       cl_log_root_at(x->log, m->a, m->old_root, &e);
    if (rc) {
      fprintf(stderr, "clinlog-bench proof: %s\n", e.msg);
      return -1;
    }
    x->hashes += m->n;
  }
  return 0;
}

typedef struct row {
  int ran, ok;
  double per_s, p50, p99;
} row;

static row run_rows(pctx *x, int threads, size_t n, const char *label, int progress) {
  bench_connrun r = {.conns = threads,
                     .n = n,
                     .label = label,
                     .progress = progress,
                     .ctx = x,
                     .one = p_one};
  bench_connres c = bench_connrun_go(&r, "proof");
  return (row){.ran = 1, .ok = c.ok, .per_s = c.per_s, .p50 = c.p50_ms, .p99 = c.p99_ms};
}

/* ---------------------------------------------------------- over gRPC */

typedef struct gctx {
  cl_client *client;
  uint64_t size;
} gctx;

static int g_one(void *ctx, void *conn, size_t i, char *err, size_t errn) {
  (void)conn;
  gctx *x = ctx;
  Clinlog__V1__ProveInclusionRequest req = CLINLOG__V1__PROVE_INCLUSION_REQUEST__INIT;
  req.seq = pick(x->size, i);
  req.tree_size = x->size;
  Clinlog__V1__InclusionProof *p = NULL;
  cl_client_status st;
  cl_err e;
  if (cl_client_prove_inclusion(x->client, &req, &p, &st, &e))
    return snprintf(err, errn, "ProveInclusion: %s", e.msg), -1;
  uint8_t leaf[32], proof[CL_MERKLE_MAX_PROOF][32];
  int ok = p->leaf_hash.len == 32 && p->root_hash.len == 32 &&
           p->n_hashes <= CL_MERKLE_MAX_PROOF && p->leaf_index == req.seq - 1;
  if (ok) {
    cl_merkle_leaf_hash(p->record.data, p->record.len, leaf);
    ok = !memcmp(leaf, p->leaf_hash.data, 32);
  }
  for (size_t k = 0; ok && k < p->n_hashes; k++) {
    ok = p->hashes[k].len == 32;
    if (ok)
      memcpy(proof[k], p->hashes[k].data, 32);
  }
  ok = ok && cl_merkle_verify_inclusion(leaf, p->leaf_index, p->tree_size,
                                        (const uint8_t(*)[32])proof, p->n_hashes,
                                        p->root_hash.data, &e) == 0;
  clinlog__v1__inclusion_proof__free_unpacked(p, NULL);
  return ok ? 0 : (snprintf(err, errn, "the proof of seq %llu does not verify",
                            (unsigned long long)req.seq),
                   -1);
}

/* ---------------------------------------------------------- main */

static int usage(void) {
  fprintf(stderr, "usage: clinlog-bench proof [--quick] [--json] [--dir D] [--events N] "
                  "[--proofs N]\n"
                  "                           [--clinlogd PATH]\n");
  return 2;
}

static void json_row(const char *name, const row *r) {
  if (!r->ran) {
    printf("\"%s\":null", name);
    return;
  }
  printf("\"%s\":{\"per_s\":%.0f,\"p50_ms\":%.4f,\"p99_ms\":%.4f}", name, r->per_s, r->p50,
         r->p99);
}

int bench_proof_main(int argc, char **argv) {
  const char *base = "/tmp/clinlog-bench-proof", *exe_opt = NULL;
  int quick = 0, json = 0;
  long nev = 0, nprf = 0;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--dir") && i + 1 < argc)
      base = argv[++i];
    else if (!strcmp(argv[i], "--clinlogd") && i + 1 < argc)
      exe_opt = argv[++i];
    else if (!strcmp(argv[i], "--events") && i + 1 < argc && (nev = atol(argv[i + 1])) >= BATCH)
      i++;
    else if (!strcmp(argv[i], "--proofs") && i + 1 < argc && (nprf = atol(argv[i + 1])) > 0)
      i++;
    else if (!strcmp(argv[i], "--quick"))
      quick = 1;
    else if (!strcmp(argv[i], "--json"))
      json = 1;
    else
      return usage();
  }
  size_t events = nev > 0 ? (size_t)nev / BATCH * BATCH : quick ? 50000 : 200000;
  size_t nproofs = nprf > 0 ? (size_t)nprf : quick ? 20000 : 100000;
  size_t ngrpc = nprf > 0 ? (size_t)nprf : quick ? 2000 : 10000;
  char exe[PATH_MAX + 16];
  if (bench_find_exe("proof", exe_opt, argv[0], "clinlogd", exe, sizeof exe))
    return 1;
  cl_err err;
  if (cl_crypto_init(&err))
    return 1;
  mkdir(base, 0700);
  char dir[4096], logpath[4200];
  snprintf(dir, sizeof dir, "%s/server", base);
  snprintf(logpath, sizeof logpath, "%s/clinlogd.log", base);
  int progress = !json && isatty(2), status = 0;
  cl_signer admin;
  if (cl_signer_generate(&admin, &err) || build(dir, &admin, events, progress)) {
    cl_signer_free(&admin);
    return 1;
  }
  raw rl = raw_limits(quick ? 0.3 : 1.0);

  /* in process */
  row prove[2][2] = {{{0}}}, verify[2] = {{0}};
  pctx px[2] = {{0}};
  cl_verify_report vh = {0}, vf = {0};
  cl_log_options o;
  cl_log_options_init(&o);
  o.dir = dir;
  cl_log *log = NULL;
  if (cl_log_open(&o, &log, &err)) {
    fprintf(stderr, "clinlog-bench proof: %s: %s\n", dir, err.msg);
    status = 1;
  }
  for (int k = 0; k < 2 && !status; k++) {
    pctx *x = &px[k];
    x->log = log;
    x->kind = k;
    cl_log_head(log, &x->size, x->root);
    if (make_proofs(x, 4096)) {
      status = 1;
      break;
    }
    const char *lab[2] = {k == K_INCL ? "incl" : "cons", "verify"};
    for (int t = 0; t < 2; t++)
      prove[k][t] = run_rows(x, t + 1, nproofs, lab[0], progress);
    x->verify = 1;
    verify[k] = run_rows(x, 1, nproofs * 4, lab[1], progress);
    for (int t = 0; t < 2; t++)
      status |= !prove[k][t].ok;
    status |= !verify[k].ok;
  }
  uint64_t size = px[0].size;
  if (log)
    cl_log_close(log);
  if (!status) {
    cl_verify_options vo = {.dir = dir, .hashes_only = 1};
    if (progress)
      fprintf(stderr, "  verify (hashes only)\n");
    int rc = cl_verify_dir(&vo, &vh, &err);
    vo.hashes_only = 0;
    if (progress)
      fprintf(stderr, "  verify (signatures, content)\n");
    rc = rc ? rc : cl_verify_dir(&vo, &vf, &err);
    if (rc || !vh.ok || !vf.ok) {
      fprintf(stderr, "clinlog-bench proof: verify: %s %s\n", rc ? err.msg : "",
              !vh.ok ? vh.fail_what : vf.fail_what);
      status = 1;
    }
  }

  /* over gRPC: clinlogd's defaults (every call audited), then --audit off */
  row grpc[2][2] = {{{0}}};
  static const int GCONC[2] = {1, 16};
  for (int a = 0; a < 2 && !status; a++) {
    int rport;
    char raft[32];
    if (bench_free_ports(&rport, 1) != 0) {
      status = 1;
      break;
    }
    snprintf(raft, sizeof raft, "127.0.0.1:%d", rport);
    char *const sargv[] = {exe,           "--data", dir,   "--dev",
                           "--listen",    "127.0.0.1:0",   "--raft-listen",
                           raft,          a ? "--audit" : NULL,
                           (char *)"off", NULL};
    unlink(logpath);
    bench_proc srv = {0};
    cl_client *client = NULL;
    cl_client_options co;
    cl_client_options_init(&co);
    if (bench_proc_start(sargv, logpath, &srv)) {
      status = 1;
      break;
    }
    co.target = srv.target;
    co.plaintext = 1;
    co.timeout_ms = 60000;
    if (cl_client_open(&co, &client, &err)) {
      fprintf(stderr, "clinlog-bench proof: client: %s\n", err.msg);
      status = 1;
    }
    gctx g = {.client = client, .size = size};
    for (int k = 0; k < 2 && !status; k++) {
      bench_connrun r = {.conns = GCONC[k],
                         .n = ngrpc,
                         .label = a ? "grpc-noaudit" : "grpc",
                         .progress = progress,
                         .server = srv.pid,
                         .ctx = &g,
                         .one = g_one};
      bench_connres c = bench_connrun_go(&r, "proof");
      grpc[a][k] = (row){.ran = 1, .ok = c.ok, .per_s = c.per_s, .p50 = c.p50_ms, .p99 = c.p99_ms};
      status |= !c.ok;
    }
    cl_client_close(client);
    bench_proc_stop(&srv);
  }

  double mean_incl = px[0].nmade ? (double)px[0].hashes / (double)px[0].nmade : 0;
  double incl_limit = mean_incl > 0 ? rl.node_hashes_per_s / mean_incl : 0;
  double mean_cons = px[1].nmade ? (double)px[1].hashes / (double)px[1].nmade : 0;
  double log_mb = vh.events ? (double)vh.events * 300 / 1e6 : 0; /* ~300 bytes an event */
  double vh_eps = vh.seconds > 0 ? (double)vh.events / vh.seconds : 0;
  double vf_eps = vf.seconds > 0 ? (double)vf.events / vf.seconds : 0;
  double leaf_limit_eps = rl.leaf_mb_per_s * 1e6 / 300;
  char machine[128];
  bench_machine(machine, sizeof machine);
  if (json) {
    printf("{\"machine\":\"%s\",\"events\":%llu,\"raw\":{\"node_hashes_per_s\":%.0f,"
           "\"leaf_hash_mb_per_s\":%.1f,\"ed25519_verify_per_s\":%.0f},",
           machine, (unsigned long long)size, rl.node_hashes_per_s, rl.leaf_mb_per_s,
           rl.ed25519_verify_per_s);
    printf("\"inclusion\":{\"mean_hashes\":%.1f,", mean_incl);
    json_row("prove_1", &prove[0][0]);
    printf(",");
    json_row("prove_2", &prove[0][1]);
    printf(",");
    json_row("verify", &verify[0]);
    printf(",\"verify_over_raw\":%.3f},", incl_limit > 0 ? verify[0].per_s / incl_limit : 0);
    printf("\"consistency\":{\"mean_hashes\":%.1f,", mean_cons);
    json_row("prove_1", &prove[1][0]);
    printf(",");
    json_row("prove_2", &prove[1][1]);
    printf(",");
    json_row("verify", &verify[1]);
    printf("},\"grpc_inclusion\":{");
    json_row("concurrency_1", &grpc[0][0]);
    printf(",");
    json_row("concurrency_16", &grpc[0][1]);
    printf(",");
    json_row("audit_off_concurrency_1", &grpc[1][0]);
    printf(",");
    json_row("audit_off_concurrency_16", &grpc[1][1]);
    printf(",\"over_in_process_2\":%.3f},",
           prove[0][1].per_s > 0 ? grpc[0][1].per_s / prove[0][1].per_s : 0);
    printf("\"verify_log\":{\"hashes_only_events_per_s\":%.0f,\"full_events_per_s\":%.0f,"
           "\"signatures\":%llu,\"decrypted\":%llu,\"hashes_only_over_raw\":%.3f,"
           "\"full_over_raw\":%.3f},",
           vh_eps, vf_eps, (unsigned long long)vf.signatures, (unsigned long long)vf.decrypted,
           leaf_limit_eps > 0 ? vh_eps / leaf_limit_eps : 0,
           leaf_limit_eps > 0 ? vf_eps / leaf_limit_eps : 0);
    printf("\"ok\":%s}\n", status ? "false" : "true");
  } else {
    printf("clinlog-bench proof — %s; a log of %llu events (~300 bytes, 5,000 streams, "
           "batches of %d)\n\n",
           machine, (unsigned long long)size, BATCH);
    printf("raw limits: SHA-256 node hashes %.0f/s; leaf hashes %.0f MB/s; Ed25519 verify "
           "%.0f/s\n\n",
           rl.node_hashes_per_s, rl.leaf_mb_per_s, rl.ed25519_verify_per_s);
    printf("%-28s | %10s %9s %9s |\n", "", "per s", "p50 ms", "p99 ms");
    const char *names[2] = {"inclusion", "consistency"};
    for (int k = 0; k < 2; k++) {
      for (int t = 0; t < 2; t++)
        printf("%-11s prove, %d thread%s | %10.0f %9.4f %9.4f |\n", names[k], t + 1,
               t ? "s" : " ", prove[k][t].per_s, prove[k][t].p50, prove[k][t].p99);
      printf("%-11s verify, 1 thread | %10.0f %9.4f %9.4f |\n", names[k], verify[k].per_s,
             verify[k].p50, verify[k].p99);
    }
    printf("  (inclusion proofs: %.1f hashes on average; verification's raw limit %.0f/s, "
           "ratio %.2f)\n",
           mean_incl, incl_limit, incl_limit > 0 ? verify[0].per_s / incl_limit : 0);
    static const char *const GN[2][2] = {
        {"gRPC ProveInclusion, 1 conc", "gRPC ProveInclusion, 16 conc"},
        {"  the same, --audit off, 1", "  the same, --audit off, 16"}};
    for (int a = 0; a < 2; a++)
      for (int k = 0; k < 2; k++)
        printf("%-28s | %10.0f %9.3f %9.3f |\n", GN[a][k], grpc[a][k].per_s, grpc[a][k].p50,
               grpc[a][k].p99);
    printf("\nverify the log (%.0f MB): hashes only %.0f events/s (%.2f of the leaf-hash limit "
           "%.0f/s); signatures and content %.0f events/s (%.2f), %llu signatures, %llu "
           "events decrypted\n",
           log_mb, vh_eps, leaf_limit_eps > 0 ? vh_eps / leaf_limit_eps : 0, leaf_limit_eps,
           vf_eps, leaf_limit_eps > 0 ? vf_eps / leaf_limit_eps : 0,
           (unsigned long long)vf.signatures, (unsigned long long)vf.decrypted);
    if (status)
      printf("FAILED: a step failed or a proof did not verify (see stderr)\n");
  }
  free(px[0].made);
  free(px[1].made);
  cl_signer_free(&admin);
  return status;
}

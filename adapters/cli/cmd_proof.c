/* clinlog checkpoint / prove / verify-proof: RFC 9162 proofs as JSON and
 * C2SP checkpoints, checkable without access to the log. checkpoint and
 * prove work on a data directory or (--server) through a clinlogd, with
 * the same output. */
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/cli/cli.h"
#include "store/checkpoint.h"
#include "store/keys.h"
#include "store/logkey.h"
#include "store/merkle.h"

static json_t *b64(const uint8_t *p, size_t n) {
  char *s = malloc(sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL));
  if (!s)
    return json_null();
  sodium_bin2base64(s, sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL), p, n,
                    sodium_base64_VARIANT_ORIGINAL);
  json_t *v = json_string(s);
  free(s);
  return v;
}

static int unb64(json_t *v, uint8_t *out, size_t want) {
  size_t n = 0;
  const char *s = json_string_value(v);
  if (!s ||
      sodium_base642bin(out, want, s, strlen(s), NULL, &n, NULL, sodium_base64_VARIANT_ORIGINAL) !=
          0 ||
      n != want)
    return -1;
  return 0;
}

static json_t *proof_json(uint8_t (*proof)[32], size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(a, b64(proof[i], 32));
  return a;
}

int cmd_checkpoint(int argc, char **argv) {
  static const struct option opts[] = {
      {"help", no_argument, 0, 'h'}, CLI_REMOTE_OPTIONS, {0, 0, 0, 0}};
  cli_remote remote = {0};
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (cli_remote_option(&remote, c, optarg))
      continue;
    fprintf(c == 'h' ? stdout : stderr,
            "usage: clinlog checkpoint DIR\n"
            "       clinlog checkpoint --server HOST:PORT [TLS options]\n"
            "Signs a checkpoint of the current tree head (if none exists at that size) and\n"
            "prints it in the C2SP signed-note checkpoint format.\n" CLI_REMOTE_USAGE);
    return c == 'h' ? 0 : 2;
  }
  if (optind + (remote.server ? 0 : 1) != argc) {
    fprintf(stderr, "usage: clinlog checkpoint DIR|--server HOST:PORT\n");
    return 2;
  }
  cl_err err;
  cl_err_clear(&err);
  if (remote.server) {
    cl_client *cl;
    if (cli_remote_open(&remote, &cl, &err))
      return cli_fail("checkpoint", &err);
    Clinlog__V1__GetCheckpointRequest req = CLINLOG__V1__GET_CHECKPOINT_REQUEST__INIT;
    req.fresh = 1;
    Clinlog__V1__Checkpoint *cp;
    int rc = cl_client_get_checkpoint(cl, &req, &cp, NULL, &err);
    cl_client_close(cl);
    if (rc)
      return cli_fail("checkpoint", &err);
    fputs(cp->note, stdout);
    clinlog__v1__checkpoint__free_unpacked(cp, NULL);
    return 0;
  }
  cl_log *log;
  if (cli_open(argv[optind], 0, &log, &err))
    return cli_fail("checkpoint", &err);
  char *note;
  size_t len;
  int rc = cl_log_checkpoint(log, &note, &len, &err);
  cl_log_close(log);
  if (rc)
    return cli_fail("checkpoint", &err);
  fwrite(note, 1, len, stdout);
  free(note);
  return 0;
}

typedef struct rec_ctx {
  uint8_t *rec;
  size_t len;
} rec_ctx;

static int grab_record(void *vctx, const cl_event_view *v, cl_err *err) {
  rec_ctx *c = vctx;
  c->rec = malloc(v->record_len);
  if (!c->rec)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  memcpy(c->rec, v->record, v->record_len);
  c->len = v->record_len;
  return 1;
}

static json_t *pb_proof_json(ProtobufCBinaryData *h, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(a, b64(h[i].data, h[i].len));
  return a;
}

/* prove through the API: the same JSON as the local prove. */
static int prove_remote(const cli_remote *r, int inclusion, uint64_t a, uint64_t b) {
  cl_err err;
  cl_err_clear(&err);
  cl_client *c;
  if (cli_remote_open(r, &c, &err))
    return cli_fail("prove", &err);
  /* the origin (the checkpoint key name) is in every checkpoint */
  Clinlog__V1__GetCheckpointRequest creq = CLINLOG__V1__GET_CHECKPOINT_REQUEST__INIT;
  Clinlog__V1__Checkpoint *cp = NULL;
  json_t *o = NULL;
  int rc = cl_client_get_checkpoint(c, &creq, &cp, NULL, &err);
  if (rc == 0 && inclusion) {
    Clinlog__V1__ProveInclusionRequest req = CLINLOG__V1__PROVE_INCLUSION_REQUEST__INIT;
    req.seq = a;
    req.tree_size = b;
    Clinlog__V1__InclusionProof *p;
    if ((rc = cl_client_prove_inclusion(c, &req, &p, NULL, &err)) == 0) {
      o = json_pack("{s:s, s:I, s:I, s:I, s:o, s:o, s:o, s:o}", "type", "inclusion", "seq",
                    (json_int_t)p->seq, "leafIndex", (json_int_t)p->leaf_index, "treeSize",
                    (json_int_t)p->tree_size, "leafHash", b64(p->leaf_hash.data, p->leaf_hash.len),
                    "rootHash", b64(p->root_hash.data, p->root_hash.len), "record",
                    b64(p->record.data, p->record.len), "proof",
                    pb_proof_json(p->hashes, p->n_hashes));
      if (o && p->checkpoint && p->checkpoint[0])
        json_object_set_new(o, "checkpoint", json_string(p->checkpoint));
      clinlog__v1__inclusion_proof__free_unpacked(p, NULL);
    }
  } else if (rc == 0) {
    Clinlog__V1__ProveConsistencyRequest req = CLINLOG__V1__PROVE_CONSISTENCY_REQUEST__INIT;
    req.old_size = a;
    req.new_size = b;
    Clinlog__V1__ConsistencyProof *p;
    if ((rc = cl_client_prove_consistency(c, &req, &p, NULL, &err)) == 0) {
      o = json_pack("{s:s, s:I, s:I, s:o, s:o, s:o}", "type", "consistency", "oldSize",
                    (json_int_t)p->old_size, "newSize", (json_int_t)p->new_size, "oldRoot",
                    b64(p->old_root.data, p->old_root.len), "newRoot",
                    b64(p->new_root.data, p->new_root.len), "proof",
                    pb_proof_json(p->hashes, p->n_hashes));
      if (o && p->checkpoint && p->checkpoint[0])
        json_object_set_new(o, "checkpoint", json_string(p->checkpoint));
      clinlog__v1__consistency_proof__free_unpacked(p, NULL);
    }
  }
  if (o) {
    json_object_set_new(o, "origin", json_string(cp->origin));
    cli_print_json(stdout, o);
    json_decref(o);
  }
  if (cp)
    clinlog__v1__checkpoint__free_unpacked(cp, NULL);
  cl_client_close(c);
  return rc ? cli_fail("prove", &err) : 0;
}

int cmd_prove(int argc, char **argv) {
  static const struct option opts[] = {
      {"help", no_argument, 0, 'h'}, CLI_REMOTE_OPTIONS, {0, 0, 0, 0}};
  cli_remote remote = {0};
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (cli_remote_option(&remote, c, optarg))
      continue;
    optind = argc; /* help or a bad option: print the usage below */
    break;
  }
  int npos = argc - optind, base = optind + (remote.server ? 0 : 1);
  if ((remote.server ? npos < 2 || npos > 3 : npos < 3 || npos > 4) ||
      (strcmp(argv[base], "inclusion") && strcmp(argv[base], "consistency"))) {
    int help = c == 'h';
    fprintf(help ? stdout : stderr,
            "usage: clinlog prove DIR inclusion SEQ [TREE_SIZE]\n"
            "       clinlog prove DIR consistency OLD_SIZE [NEW_SIZE]\n"
            "       clinlog prove --server HOST:PORT [TLS options] inclusion|consistency ...\n"
            "Prints an RFC 9162 proof as JSON (hashes in base64). TREE_SIZE/NEW_SIZE\n"
            "default to the latest signed checkpoint's size (the current head if it is\n"
            "older than SEQ); the checkpoint at that size, if any, is included. An\n"
            "inclusion proof carries the stored record so the checker recomputes the "
            "leaf.\n" CLI_REMOTE_USAGE);
    return help ? 0 : 2;
  }
  /* the positional arguments as the local code below expects them */
  argv += base - 2;
  argc = npos - (remote.server ? 0 : 1) + 2;
  if (remote.server)
    return prove_remote(&remote, !strcmp(argv[2], "inclusion"), strtoull(argv[3], NULL, 10),
                        argc > 4 ? strtoull(argv[4], NULL, 10) : 0);
  cl_err err;
  cl_err_clear(&err);
  cl_log *log;
  if (cli_open(argv[1], 1, &log, &err))
    return cli_fail("prove", &err);
  uint64_t a = strtoull(argv[3], NULL, 10), b = argc > 4 ? strtoull(argv[4], NULL, 10) : 0;
  uint8_t proof[CL_MERKLE_MAX_PROOF][32], root[32], leaf[32];
  size_t n = 0;
  int rc;
  json_t *o = NULL;
  /* default: the latest signed checkpoint, so the proof can be checked
   * against a signature; the current head if none covers `a` yet */
  char *note = NULL;
  size_t note_len = 0;
  cl_checkpoint cp;
  if (!b && cl_log_get_checkpoint(log, 0, &note, &note_len, &err) == 0 &&
      cl_checkpoint_parse(note, note_len, &cp, &err) == 0 && cp.size >= a)
    b = cp.size;
  free(note);
  note = NULL;
  if (!b)
    cl_log_head(log, &b, NULL);
  /* the signed checkpoint at exactly that size, when there is one */
  if (cl_log_get_checkpoint(log, b, &note, &note_len, &err) == 0 &&
      (cl_checkpoint_parse(note, note_len, &cp, &err) != 0 || cp.size != b)) {
    free(note);
    note = NULL;
  }
  if (!strcmp(argv[2], "inclusion")) {
    rec_ctx rctx = {0};
    if (!(rc = cl_log_prove_inclusion(log, a, b, proof, &n, leaf, &err)) &&
        !(rc = cl_log_root_at(log, b, root, &err)) &&
        !(rc = cl_log_read_all(log, a, 1, grab_record, &rctx, &err))) {
      o = json_pack("{s:s, s:I, s:I, s:I, s:o, s:o, s:o, s:o}", "type", "inclusion", "seq",
                    (json_int_t)a, "leafIndex", (json_int_t)(a - 1), "treeSize", (json_int_t)b,
                    "leafHash", b64(leaf, 32), "rootHash", b64(root, 32), "record",
                    b64(rctx.rec, rctx.len), "proof", proof_json(proof, n));
    }
    free(rctx.rec);
  } else {
    uint8_t old_root[32];
    if (!(rc = cl_log_prove_consistency(log, a, b, proof, &n, &err)) &&
        !(rc = cl_log_root_at(log, a, old_root, &err)) &&
        !(rc = cl_log_root_at(log, b, root, &err)))
      o = json_pack("{s:s, s:I, s:I, s:o, s:o, s:o}", "type", "consistency", "oldSize",
                    (json_int_t)a, "newSize", (json_int_t)b, "oldRoot", b64(old_root, 32),
                    "newRoot", b64(root, 32), "proof", proof_json(proof, n));
  }
  if (o) {
    json_object_set_new(o, "origin", json_string(cl_log_origin(log)));
    if (note) /* the signed checkpoint at exactly this tree size */
      json_object_set_new(o, "checkpoint", json_stringn(note, note_len));
    cli_print_json(stdout, o);
    json_decref(o);
  }
  free(note);
  cl_log_close(log);
  return rc ? cli_fail("prove", &err) : 0;
}

/* clinlog verify-proof PROOF.json [--checkpoint NOTE --log-key FILE.pub]:
 * needs nothing from the log itself. */
int cmd_verify_proof(int argc, char **argv) {
  static const struct option opts[] = {{"checkpoint", required_argument, 0, 'c'},
                                       {"log-key", required_argument, 0, 'k'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  const char *cpfile = NULL, *keyfile = NULL;
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 'c':
      cpfile = optarg;
      break;
    case 'k':
      keyfile = optarg;
      break;
    default:
      fprintf(c == 'h' ? stdout : stderr,
              "usage: clinlog verify-proof PROOF.json [--checkpoint NOTE --log-key LOG.pub]\n"
              "Checks a proof printed by `clinlog prove`: recomputes the leaf hash from the\n"
              "record and runs the RFC 9162 verification against rootHash. With a checkpoint\n"
              "and the log's public key (ed25519:... line), also checks the checkpoint's\n"
              "signature and that it commits to the same tree size and root.\n");
      return c == 'h' ? 0 : 2;
    }
  }
  if (optind + 1 != argc || (cpfile && !keyfile)) {
    fprintf(stderr,
            "usage: clinlog verify-proof PROOF.json [--checkpoint NOTE --log-key LOG.pub]\n");
    return 2;
  }
  json_error_t je;
  json_t *p = json_load_file(argv[optind], 0, &je);
  if (!p) {
    fprintf(stderr, "clinlog verify-proof: %s: line %d: %s\n", argv[optind], je.line, je.text);
    return 1;
  }
  cl_err err;
  cl_err_clear(&err);
  int rc = CL_EMALFORMED;
  uint8_t proof[CL_MERKLE_MAX_PROOF][32], root[32], leaf[32], old_root[32];
  json_t *arr = json_object_get(p, "proof");
  size_t n = json_array_size(arr);
  const char *type = json_string_value(json_object_get(p, "type"));
  uint64_t size = 0;
  if (n > CL_MERKLE_MAX_PROOF || !type) {
    cl_err_set(&err, rc, "proof: not a clinlog proof document");
    goto out;
  }
  for (size_t i = 0; i < n; i++)
    if (unb64(json_array_get(arr, i), proof[i], 32)) {
      cl_err_set(&err, rc, "proof[%zu]: not a base64 SHA-256 hash", i);
      goto out;
    }
  if (!strcmp(type, "inclusion")) {
    size = (uint64_t)json_integer_value(json_object_get(p, "treeSize"));
    uint64_t seq = (uint64_t)json_integer_value(json_object_get(p, "seq"));
    const char *rec = json_string_value(json_object_get(p, "record"));
    size_t rl = rec ? strlen(rec) : 0, got = 0;
    uint8_t *rb = malloc(rl + 1);
    if (!rb || !rec || unb64(json_object_get(p, "rootHash"), root, 32) ||
        sodium_base642bin(rb, rl, rec, rl, NULL, &got, NULL, sodium_base64_VARIANT_ORIGINAL)) {
      free(rb);
      cl_err_set(&err, rc, "inclusion proof: record, rootHash, seq and treeSize required");
      goto out;
    }
    cl_merkle_leaf_hash(rb, got, leaf);
    free(rb);
    rc = seq ? cl_merkle_verify_inclusion(leaf, seq - 1, size, (const uint8_t(*)[32])proof, n, root,
                                          &err)
             : cl_err_set(&err, CL_EMALFORMED, "seq: required");
  } else if (!strcmp(type, "consistency")) {
    uint64_t old = (uint64_t)json_integer_value(json_object_get(p, "oldSize"));
    size = (uint64_t)json_integer_value(json_object_get(p, "newSize"));
    if (unb64(json_object_get(p, "oldRoot"), old_root, 32) ||
        unb64(json_object_get(p, "newRoot"), root, 32)) {
      cl_err_set(&err, rc, "consistency proof: oldRoot and newRoot required");
      goto out;
    }
    rc = cl_merkle_verify_consistency(old, size, old_root, root, (const uint8_t(*)[32])proof, n,
                                      &err);
  } else {
    cl_err_set(&err, rc, "type: must be inclusion or consistency");
    goto out;
  }
  if (rc == 0 && cpfile) {
    cl_logkeys lks; /* every log key, with the tree sizes it signs (store/logkey.h) */
    size_t len = 0;
    FILE *f = fopen(cpfile, "r");
    char note[65536];
    if (f) {
      len = fread(note, 1, sizeof note - 1, f);
      fclose(f);
    }
    note[len] = '\0';
    const char *origin = json_string_value(json_object_get(p, "origin"));
    cl_checkpoint cp;
    if (!f) {
      rc = cl_err_set(&err, CL_ENOTFOUND, "%s: cannot read", cpfile);
    } else if (!(rc = cl_logkeys_load_pub(keyfile, &lks, NULL, &err)) &&
               !(rc = cl_checkpoint_verify_logkeys(note, len, origin ? origin : "", &lks, &cp,
                                                   NULL, &err))) {
      if (cp.size != size || sodium_memcmp(cp.root, root, 32) != 0)
        rc =
            cl_err_set(&err, CL_EVERIFY,
                       "checkpoint is for size %llu; the proof's tree (size %llu) has another root",
                       (unsigned long long)cp.size, (unsigned long long)size);
    }
  }
out:
  if (rc == 0)
    printf("ok: %s proof verifies%s\n", type, cpfile ? " against the signed checkpoint" : "");
  json_decref(p); /* `type` points into p */
  return rc ? cli_fail("verify-proof", &err) : 0;
}

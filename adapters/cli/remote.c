/* The CLI's side of talking to a clinlogd: the shared --server/--ca/--cert
 * options, opening a client, and turning what the server sends into the
 * views the local code prints, so local and remote output are identical. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/cli/cli.h"
#include "store/event.h"

int cli_remote_option(cli_remote *r, int c, const char *arg) {
  switch (c) {
  case CLI_OPT_SERVER:
    r->server = arg;
    return 1;
  case CLI_OPT_CA:
    r->ca = arg;
    return 1;
  case CLI_OPT_CERT:
    r->cert = arg;
    return 1;
  case CLI_OPT_CERT_KEY:
    r->cert_key = arg;
    return 1;
  case CLI_OPT_SERVER_NAME:
    r->server_name = arg;
    return 1;
  case CLI_OPT_PLAINTEXT:
    r->plaintext = 1;
    return 1;
  case CLI_OPT_TIMEOUT:
    r->timeout_ms = atoi(arg);
    return 1;
  case CLI_OPT_TOKEN_FILE:
    r->token_file = arg;
    return 1;
  default:
    return 0;
  }
}

int cli_remote_open(const cli_remote *r, cl_client **c, cl_err *err) {
  cl_client_options o;
  cl_client_options_init(&o);
  o.target = r->server;
  o.plaintext = r->plaintext;
  o.ca_pem_file = r->ca;
  o.cert_pem_file = r->cert;
  o.key_pem_file = r->cert_key;
  o.server_name = r->server_name;
  if (r->timeout_ms > 0)
    o.timeout_ms = r->timeout_ms;
  /* a session of `clinlog login`: "authorization: Bearer <token>" on every call */
  char bearer[4096];
  memcpy(bearer, "Bearer ", 7);
  if (!r->no_token && cli_token_read(r->token_file, bearer + 7, sizeof bearer - 7) == 0) {
    o.md_key = "authorization";
    o.md_value = bearer;
  }
  int rc = cl_client_open(&o, c, err);
  sodium_memzero(bearer, sizeof bearer);
  return rc;
}

void cli_view_of_recorded(const Clinlog__V1__RecordedEvent *e, cl_event_view *v) {
  static const uint8_t zero[32];
  memset(v, 0, sizeof *v);
  v->seq = e->seq;
  v->stream_version = e->stream_version;
  v->event_type = e->event_type;
  if (e->committed_at)
    v->committed_at_ns = e->committed_at->seconds * 1000000000LL + e->committed_at->nanos;
  /* sizes are checked so a short field from a faulty server prints as zeros */
  v->event_id = e->event_id.len == 16 ? e->event_id.data : zero;
  v->event_hash = e->event_hash.len == 32 ? e->event_hash.data : zero;
  if (e->event.len) {
    v->event = e->event.data;
    v->event_len = e->event.len;
  }
  v->record = e->record.data;
  v->record_len = e->record.len;
  v->erased = e->erased;
}

int cli_call_leader(const cli_remote *r0, int follow, const char *what, const char *method,
                    const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp,
                    int timeout_ms, ProtobufCMessage **out, char *served_by, size_t n) {
  cli_remote r = *r0;
  char leader[256], target[1024];
  snprintf(target, sizeof target, "%s", r.server);
  *out = NULL;
  for (int attempt = 0;; attempt++) {
    cl_err err;
    cl_err_clear(&err);
    cl_client *cl;
    r.server = target;
    if (cli_remote_open(&r, &cl, &err))
      return cli_fail(what, &err);
    ProtobufCMessage *m = NULL;
    cl_client_status st;
    leader[0] = '\0';
    int rc = cl_client_unary_md(cl, method, req, resp, timeout_ms, NULL, "clinlog-leader", leader,
                                sizeof leader, &m, &st, &err);
    cl_client_close(cl);
    if (rc == 0) {
      *out = m;
      if (served_by)
        snprintf(served_by, n, "%s", target);
      return 0;
    }
    if (st.code == CL_GRPC_UNAVAILABLE && leader[0]) {
      int retry = follow && attempt == 0 && strcmp(leader, target) != 0;
      fprintf(stderr, "clinlog: %s: %s is not the leader; the leader is at ", what, target);
      for (const unsigned char *p = (const unsigned char *)leader; *p; p++)
        fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, stderr);
      fprintf(stderr, "%s\n", retry ? " (retrying there)" : "");
      if (!retry)
        return 1;
      snprintf(target, sizeof target, "%s", leader);
      continue;
    }
    if (st.code == CL_GRPC_UNIMPLEMENTED) {
      fprintf(stderr,
              "clinlog: %s: %s has no cluster API (UNIMPLEMENTED: %s): an older clinlogd, "
              "or one without replication?\n",
              what, target, st.details[0] ? st.details : "no details");
      return 1;
    }
    return cli_fail(what, &err);
  }
}

/* The principal `pk` is registered to, asked of the server: the
 * PrincipalRegistered and KeyRegistered events of the "$principal-" streams
 * (the last registration wins, as in the keyring). 0 if found. */
int cli_remote_principal(cl_client *c, const uint8_t pk[32], char *out, size_t n, cl_err *err) {
  Clinlog__V1__ReadRequest req = CLINLOG__V1__READ_REQUEST__INIT;
  Clinlog__V1__Filter f = CLINLOG__V1__FILTER__INIT;
  char *prefixes[1] = {"$principal-"};
  uint32_t types[2] = {cl_event_type_code("PrincipalRegistered"),
                       cl_event_type_code("KeyRegistered")};
  f.n_stream_prefixes = 1;
  f.stream_prefixes = prefixes;
  f.n_event_types = 2;
  f.event_types = types;
  req.filter = &f;
  req.stream = "";
  cl_client_stream *s;
  int rc = cl_client_read(c, &req, &s, err), found = 0;
  if (rc)
    return rc;
  ProtobufCMessage *m;
  while ((rc = cl_client_stream_next(s, &m, err)) == 1) {
    Clinlog__V1__RecordedEvent *e = (Clinlog__V1__RecordedEvent *)m;
    Clinlog__V1__Event *ev = clinlog__v1__event__unpack(NULL, e->event.len, e->event.data);
    const char *who = NULL;
    const ProtobufCBinaryData *key = NULL;
    if (ev && ev->body_case == CLINLOG__V1__EVENT__BODY_PRINCIPAL_REGISTERED &&
        ev->principal_registered) {
      who = ev->principal_registered->principal_id;
      key = &ev->principal_registered->public_key;
    } else if (ev && ev->body_case == CLINLOG__V1__EVENT__BODY_KEY_REGISTERED &&
               ev->key_registered) {
      who = ev->key_registered->principal_id;
      key = &ev->key_registered->public_key;
    }
    if (who && key->len == 32 && memcmp(key->data, pk, 32) == 0) {
      snprintf(out, n, "%s", who);
      found = 1;
    }
    if (ev)
      clinlog__v1__event__free_unpacked(ev, NULL);
    protobuf_c_message_free_unpacked(m, NULL);
  }
  cl_client_stream_free(s);
  if (rc < 0)
    return rc;
  return found ? 0 : cl_err_set(err, CL_EUNKNOWNKEY, "the signing key is not registered");
}

int cli_append_signed(cl_client *c, const cl_signer *s, const ProtobufCBinaryData *evs, size_t n,
                      uint64_t *first, uint64_t *last, int *dup, cl_err *err) {
  uint8_t(*hashes)[32] = calloc(n ? n : 1, 32);
  if (!hashes)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  for (size_t i = 0; i < n; i++)
    cl_event_hash(evs[i].data, evs[i].len, hashes[i]);
  uint8_t sig[64];
  cl_sign_batch(s, (const uint8_t(*)[32])hashes, n, sig);
  free(hashes);
  Clinlog__V1__Signature bsig = CLINLOG__V1__SIGNATURE__INIT;
  bsig.key_id = (ProtobufCBinaryData){32, (uint8_t *)s->pk};
  bsig.signature = (ProtobufCBinaryData){64, sig};
  Clinlog__V1__AppendBatch ab = CLINLOG__V1__APPEND_BATCH__INIT;
  ab.n_events = n;
  ab.events = (ProtobufCBinaryData *)evs;
  ab.batch_signature = &bsig;
  Clinlog__V1__AppendResponse *resp = NULL;
  cl_client_status st;
  int rc = cl_client_append(c, &ab, &resp, &st, err);
  if (rc)
    return rc;
  *first = *last = 0;
  if (resp->n_positions == n && n) {
    *first = resp->positions[0]->seq;
    *last = resp->positions[n - 1]->seq;
  }
  *dup = resp->duplicate;
  clinlog__v1__append_response__free_unpacked(resp, NULL);
  return 0;
}

/* The audit trail's views (query/audit/view, auditevent) over a real log:
 * AccessRecorded events appended to "$audit", signed by the log key as the
 * recorder signs them, folded by the audit projection's runner between
 * other events. Queries by patient, by principal, by time window and
 * outcome return exactly the matching records, oldest first; pages with a
 * limit and a resume cursor add up to the whole; an erased patient's audit
 * records stay; a rebuild equals the live state; nothing on disk names a
 * patient or a principal in plaintext.
 *
 * Golden file: a fixed set of records (a read, a search, a create, a
 * refused anonymous call, a failed login, a break-glass read, a gRPC log
 * read from an IPv6 client) rendered as FHIR AuditEvents is compared byte
 * for byte with tests/query/audit/auditevents.fhir.json. CL_UPDATE_GOLDEN=1
 * rewrites it instead; review it and run the validator on it
 * (node tests/fhir/validate.mjs tests/query/audit/auditevents.fhir.json). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "query/audit/auditevent.h"
#include "query/audit/view.h"
#include "store/keyring.h"
#include "tests/query/fhir_fixture.h"
#include "tests/support/testutil.h"

#define GOLDEN CL_SOURCE_DIR "/tests/query/audit/auditevents.fhir.json"
#define T0 1793000000LL /* seconds: the records' base time */
#define NS 1000000000LL

/* One record to append: the fields the tests vary. */
typedef struct rec {
  const char *principal;
  const char *patients[3];
  int64_t at_ns;
  const char *outcome;
} rec;

static int64_t in_ms(int64_t ms) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + ms;
}

/* Appends one AccessRecorded (a, borrowed) occurring at at_ns, signed by
 * the log key; id NULL: a random one. Returns its seq. */
static uint64_t append_access(cl_log *log, Clinlog__V1__AccessRecorded *a, int64_t at_ns,
                              const uint8_t *id) {
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  Clinlog__V1__RecordedBy by = CLINLOG__V1__RECORDED_BY__INIT;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  uint8_t rid[16];
  if (!id) {
    randombytes_buf(rid, 16);
    id = rid;
  }
  by.principal_id = CL_LOG_PRINCIPAL;
  by.role = CL_ROLE_LOG;
  ts.seconds = at_ns / NS;
  ts.nanos = (int32_t)(at_ns % NS);
  ev.event_id = (ProtobufCBinaryData){16, (uint8_t *)id};
  ev.stream = CL_AUDIT_STREAM;
  ev.occurred_at = &ts;
  ev.recorded_by = &by;
  ev.source_system = "clinlogd";
  ev.body_case = CLINLOG__V1__EVENT__BODY_ACCESS_RECORDED;
  ev.access_recorded = a;
  size_t len;
  uint8_t *b = cl_test_pack_event(&ev, &len);
  cl_append_result r;
  cl_err err;
  int rc = cl_test_append(log, cl_log_signer(log), &b, &len, 1, 1, NULL, 0, 0, &r, &err);
  cr_assert_eq(rc, 0, "appending an AccessRecorded signed by the log key: %s", err.msg);
  uint64_t seq = r.seq[0];
  cl_append_result_free(&r);
  free(b);
  return seq;
}

static uint64_t append_rec(cl_log *log, const rec *r) {
  Clinlog__V1__AccessRecorded a = CLINLOG__V1__ACCESS_RECORDED__INIT;
  char *pats[3];
  size_t np = 0;
  for (; np < 3 && r->patients[np]; np++)
    pats[np] = (char *)r->patients[np];
  a.principal_id = (char *)(r->principal ? r->principal : "");
  a.action = "R";
  a.resource = "Observation/obs-1";
  a.outcome = (char *)r->outcome;
  a.method = "clinlog.v1.Fhir/Read";
  a.subtype = "read";
  a.n_patients = np;
  a.patients = pats;
  return append_access(log, &a, r->at_ns, NULL);
}

static cl_runner *start(cl_log *log) {
  cl_runner_options ro;
  cl_runner_options_init(&ro);
  ro.linger_ms = 0;
  cl_runner *r;
  cl_err err;
  cr_assert_eq(cl_runner_start(log, &cl_audit_view_projection, &ro, &r, &err), 0, "%s", err.msg);
  return r;
}


/* ---------------------------------------------------------- collecting */

typedef struct got {
  uint64_t seqs[64];
  size_t n;
  int stop_after; /* return 1 after this many (0: never) */
} got;

static int collect(void *ctx, uint64_t seq, const Clinlog__V1__Event *ev, cl_err *err) {
  (void)err;
  got *g = ctx;
  cr_assert_eq(ev->body_case, CLINLOG__V1__EVENT__BODY_ACCESS_RECORDED);
  cr_assert_str_eq(ev->stream, CL_AUDIT_STREAM);
  cr_assert_lt(g->n, 64);
  g->seqs[g->n++] = seq;
  return g->stop_after && (int)g->n == g->stop_after;
}

static got query(cl_proj *p, cl_log *log, cl_audit_filter f, uint64_t *next) {
  got g = {0};
  cl_err err;
  uint64_t nx;
  cr_assert_eq(cl_audit_query(p, log, &f, collect, &g, &nx, &err), 0, "%s", err.msg);
  if (next)
    *next = nx;
  return g;
}

/* The records of recs[0..n) (at seqs) matching the filter, in the order
 * the queries promise: occurred_at, then seq. */
static got expect(const rec *recs, const uint64_t *seqs, size_t n, cl_audit_filter f) {
  got g = {0};
  size_t idx[64], m = 0;
  for (size_t i = 0; i < n; i++) {
    const rec *r = &recs[i];
    int ok = 1;
    if (f.patient) {
      int named = 0;
      for (size_t k = 0; k < 3 && r->patients[k]; k++)
        named |= !strcmp(r->patients[k], f.patient);
      ok &= named;
    }
    if (f.principal)
      ok &= r->principal && !strcmp(r->principal, f.principal);
    if (f.outcome)
      ok &= !strcmp(r->outcome, f.outcome);
    if (f.since_ns)
      ok &= r->at_ns >= f.since_ns;
    if (f.until_ns)
      ok &= r->at_ns < f.until_ns;
    if (ok)
      idx[m++] = i;
  }
  for (size_t i = 1; i < m; i++) /* insertion sort by (at, seq) */
    for (size_t j = i; j > 0; j--) {
      const rec *a = &recs[idx[j - 1]], *b = &recs[idx[j]];
      if (a->at_ns < b->at_ns || (a->at_ns == b->at_ns && seqs[idx[j - 1]] < seqs[idx[j]]))
        break;
      size_t t = idx[j];
      idx[j] = idx[j - 1];
      idx[j - 1] = t;
    }
  for (size_t i = 0; i < m; i++)
    g.seqs[g.n++] = seqs[idx[i]];
  return g;
}

static void assert_same(got a, got b, const char *what) {
  cr_assert_eq(a.n, b.n, "%s: %zu records, expected %zu", what, a.n, b.n);
  for (size_t i = 0; i < a.n; i++)
    cr_assert_eq(a.seqs[i], b.seqs[i], "%s: record %zu is seq %llu, expected %llu", what, i,
                 (unsigned long long)a.seqs[i], (unsigned long long)b.seqs[i]);
}

/* ------------------------------------------------------------- queries */

#define P1 "CANARYPAT-1"
#define P2 "CANARYPAT-2"
#define P3 "CANARYPAT-3"
#define DOC "CANARYDOC-1"
#define NURSE "CANARYDOC-2"

static const rec RECS[] = {
    {DOC, {P1}, T0 *NS, "0"},
    {NURSE, {P1, P2}, (T0 + 10) * NS, "0"},
    {DOC, {P2}, (T0 + 20) * NS, "4"},
    {NULL, {P1}, (T0 + 30) * NS, "4"}, /* refused, no principal proved */
    {DOC, {P1, P3}, (T0 + 40) * NS, "0"},
    {NURSE, {NULL}, (T0 + 50) * NS, "0"}, /* no patient named */
    {DOC, {P3}, (T0 + 25) * NS, "8"},     /* another node's clock: earlier than the one before */
    {NURSE, {P1}, (T0 + 60) * NS, "0"},
    {DOC, {P1}, (T0 + 60) * NS, "0"}, /* the same instant: log order */
    {DOC, {P2, P1}, (T0 + 70) * NS + 5, "0"},
};
#define NRECS (sizeof RECS / sizeof RECS[0])

Test(audit_view, queries_return_exactly_the_matching_records, .timeout = 120) {
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("audit", &dir, &admin, 0);
  cl_runner *run = start(log);
  uint64_t seqs[NRECS];
  cl_err err;
  for (size_t i = 0; i < NRECS; i++) {
    seqs[i] = append_rec(log, &RECS[i]);
    uint64_t s; /* other events between them: not folded */
    cr_assert_eq(cl_test_append1(log, &admin, "patient-" P1, "admin", "CANARY-NOTE", &s, &err), 0,
                 "%s", err.msg);
  }
  fx_wait_head(run, log);
  cl_proj *p = cl_runner_proj(run);

  const cl_audit_filter filters[] = {
      {0},
      {.patient = P1},
      {.patient = P2},
      {.patient = P3},
      {.principal = DOC},
      {.principal = NURSE},
      {.since_ns = (T0 + 20) * NS, .until_ns = (T0 + 60) * NS},
      {.since_ns = (T0 + 60) * NS},
      {.until_ns = (T0 + 10) * NS},
      {.patient = P1, .principal = DOC},
      {.patient = P1, .outcome = "4"},
      {.principal = DOC, .outcome = "0", .since_ns = (T0 + 1) * NS},
      {.outcome = "8"},
  };
  for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++) {
    char what[32];
    snprintf(what, sizeof what, "filter %zu", i);
    uint64_t next = 1;
    got g = query(p, log, filters[i], &next);
    assert_same(g, expect(RECS, seqs, NRECS, filters[i]), what);
    cr_assert_eq(next, 0, "%s: no more after the last", what);
  }
  /* P1's trail, in time order (the record of the earlier clock is not P1's) */
  got g = query(p, log, (cl_audit_filter){.patient = P1}, NULL);
  cr_assert_eq(g.n, 7);
  cr_assert_eq(g.seqs[0], seqs[0]);
  cr_assert_eq(g.seqs[6], seqs[9]);
  /* the skewed record sorts by its stated time */
  g = query(p, log, (cl_audit_filter){.principal = DOC}, NULL);
  cr_assert_eq(g.seqs[2], seqs[6], "T0+25 comes between T0+20 and T0+40");

  /* no match */
  uint64_t next = 1;
  g = query(p, log, (cl_audit_filter){.patient = "nobody"}, &next);
  cr_assert_eq(g.n, 0);
  cr_assert_eq(next, 0);
  g = query(p, log, (cl_audit_filter){.patient = P2, .principal = NURSE, .outcome = "4"}, &next);
  cr_assert_eq(g.n, 0);
  g = query(p, log, (cl_audit_filter){.since_ns = (T0 + 1000) * NS}, &next);
  cr_assert_eq(g.n, 0);

  /* pages of every size add up to the whole, with the cursor */
  for (size_t lim = 1; lim <= NRECS + 1; lim++) {
    got all = expect(RECS, seqs, NRECS, (cl_audit_filter){.patient = P1}), pages = {0};
    cl_audit_filter f = {.patient = P1, .limit = lim};
    for (int guard = 0; guard < 20; guard++) {
      uint64_t nx;
      got pg = query(p, log, f, &nx);
      cr_assert_leq(pg.n, lim);
      for (size_t i = 0; i < pg.n; i++)
        pages.seqs[pages.n++] = pg.seqs[i];
      if (nx == 0)
        break;
      cr_assert_eq(pg.n, lim, "a page short of its limit says there is no more");
      cr_assert_eq(nx, pg.seqs[pg.n - 1]);
      f.after_seq = nx;
    }
    char what[32];
    snprintf(what, sizeof what, "pages of %zu", lim);
    assert_same(pages, all, what);
  }
  /* a callback that stops gets a cursor to resume from */
  got st = {.stop_after = 2};
  cl_audit_filter f = {.principal = DOC};
  cr_assert_eq(cl_audit_query(p, log, &f, collect, &st, &next, &err), 0, "%s", err.msg);
  cr_assert_eq(st.n, 2);
  cr_assert_eq(next, st.seqs[1]);
  f.after_seq = next;
  g = query(p, log, f, NULL);
  got all = expect(RECS, seqs, NRECS, (cl_audit_filter){.principal = DOC});
  cr_assert_eq(g.n + 2, all.n);
  cr_assert_eq(g.seqs[0], all.seqs[2]);
  /* a cursor and a window together: the later start wins */
  f = (cl_audit_filter){.since_ns = (T0 + 45) * NS, .after_seq = seqs[0]};
  assert_same(query(p, log, f, NULL),
              expect(RECS, seqs, NRECS, (cl_audit_filter){.since_ns = (T0 + 45) * NS}),
              "cursor before the window");

  /* bad filters name what is wrong */
  f = (cl_audit_filter){.after_seq = seqs[0] + 1}; /* the observation after it */
  cr_assert_eq(cl_audit_query(p, log, &f, collect, &st, NULL, &err), CL_EINVAL);
  cr_assert(strstr(err.msg, "after_seq"), "%s", err.msg);
  f = (cl_audit_filter){.since_ns = 20, .until_ns = 10};
  cr_assert_eq(cl_audit_query(p, log, &f, collect, &st, NULL, &err), CL_EINVAL);
  cr_assert(strstr(err.msg, "since"), "%s", err.msg);

  /* erasing a patient's data keeps the audit trail of it */
  got before = query(p, log, (cl_audit_filter){.patient = P1}, NULL);
  cl_test_erase(log, &admin, "patient-" P1);
  cr_assert_eq(cl_log_purge_wait(log, in_ms(60000), &err), 0, "%s", err.msg);
  uint64_t extra = append_rec(log, &(rec){DOC, {P1}, (T0 + 80) * NS, "0"});
  fx_wait_head(run, log);
  got after = query(p, log, (cl_audit_filter){.patient = P1}, NULL);
  cr_assert_eq(after.n, before.n + 1, "an erasure removes no audit record");
  for (size_t i = 0; i < before.n; i++)
    cr_assert_eq(after.seqs[i], before.seqs[i]);
  cr_assert_eq(after.seqs[before.n], extra);

  /* rebuilt equals live, byte for byte */
  uint8_t live[32], rebuilt[32];
  uint64_t nl = cl_test_proj_digest(p, live);
  cr_assert_eq(cl_runner_rebuild(run, &err), 0, "%s", err.msg);
  fx_wait_head(run, log);
  uint64_t nr = cl_test_proj_digest(p, rebuilt);
  cr_assert_eq(nl, nr);
  cr_assert_arr_eq(live, rebuilt, 32, "a rebuild gives the live state");

  cl_runner_stop(run);
  cl_log_close(log); /* flush every family to table files */
  /* no patient or principal id in plaintext anywhere on disk (the index
   * keys are keyed hashes, the summaries sealed, the records encrypted) */
  const char *canaries[] = {"CANARYPAT", "CANARYDOC", "CANARY-NOTE"};
  for (size_t i = 0; i < 3; i++)
    cr_assert_not(cl_test_tree_contains(dir, canaries[i], strlen(canaries[i])), "%s on disk",
                  canaries[i]);
  cl_signer_free(&admin);
  cl_test_rmtree(dir);
  free(dir);
}

Test(audit_view, other_events_are_not_folded) {
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("audit_other", &dir, &admin, 0);
  cl_err err;
  uint64_t s;
  cr_assert_eq(cl_test_append1(log, &admin, "patient-x", "admin", "n", &s, &err), 0, "%s", err.msg);
  cl_runner *run = start(log);
  fx_wait_head(run, log);
  uint64_t next;
  got g = query(cl_runner_proj(run), log, (cl_audit_filter){0}, &next);
  cr_assert_eq(g.n, 0);
  /* the store keeps AccessRecorded to "$audit" and to the log key */
  Clinlog__V1__Event ev = CLINLOG__V1__EVENT__INIT;
  Clinlog__V1__AccessRecorded a = CLINLOG__V1__ACCESS_RECORDED__INIT;
  Clinlog__V1__RecordedBy by = CLINLOG__V1__RECORDED_BY__INIT;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  ts.seconds = T0;
  uint8_t id[16];
  randombytes_buf(id, 16);
  by.principal_id = "admin";
  ev.event_id = (ProtobufCBinaryData){16, id};
  ev.stream = CL_AUDIT_STREAM;
  ev.occurred_at = &ts;
  ev.recorded_by = &by;
  ev.body_case = CLINLOG__V1__EVENT__BODY_ACCESS_RECORDED;
  ev.access_recorded = &a;
  size_t len;
  uint8_t *b = cl_test_pack_event(&ev, &len);
  cl_append_result r;
  cr_assert_eq(cl_test_append(log, &admin, &b, &len, 1, 1, NULL, 0, 0, &r, &err), CL_EDENIED,
               "an admin may not write the audit trail");
  free(b);
  cl_runner_stop(run);
  cl_log_close(log);
  cl_signer_free(&admin);
  cl_test_rmtree(dir);
  free(dir);
}

/* A record committed with its call's events names them by position: the
 * `preceding` events right before its seq; any other record its resource. */
Test(audit_view, a_linked_record_names_the_events_before_it) {
  Clinlog__V1__AccessRecorded a = CLINLOG__V1__ACCESS_RECORDED__INIT;
  char buf[48];
  a.preceding = 3;
  cr_assert_str_eq(cl_audit_resource(&a, 45, buf, sizeof buf), "seq:42-44");
  a.preceding = 1;
  cr_assert_str_eq(cl_audit_resource(&a, 2, buf, sizeof buf), "seq:1-1");
  a.preceding = 5; /* more than there can be before it: not read as seqs */
  cr_assert_str_eq(cl_audit_resource(&a, 5, buf, sizeof buf), "");
  a.preceding = 2;
  a.resource = "seq:7-8"; /* a record written after its call says it itself */
  cr_assert_str_eq(cl_audit_resource(&a, 45, buf, sizeof buf), "seq:7-8");
  a.preceding = 0;
  a.resource = "Observation/o-1";
  cr_assert_str_eq(cl_audit_resource(&a, 45, buf, sizeof buf), "Observation/o-1");
}

Test(audit_view, network_addresses) {
  const char *in[] = {
      "ipv4:10.0.0.7:51234", "ipv6:[2001:db8::7]:443", "ipv6:%5B::1%5D:7525",    "[fe80::1]:80",
      "127.0.0.1:7528",      "localhost:7525",         "unix:/run/clinlog.sock", "::1",
      "host.example"};
  const char *addr[] = {"10.0.0.7",
                        "2001:db8::7",
                        "::1",
                        "fe80::1",
                        "127.0.0.1",
                        "localhost",
                        "unix:/run/clinlog.sock",
                        "::1",
                        "host.example"};
  const char *type[] = {"2", "2", "2", "2", "2", "1", "5", "2", "1"};
  for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
    char a[128];
    const char *t = cl_audit_network(in[i], a, sizeof a);
    cr_assert_not_null(t, "%s", in[i]);
    cr_assert_str_eq(a, addr[i], "%s", in[i]);
    cr_assert_str_eq(t, type[i], "%s", in[i]);
  }
  char a[8];
  cr_assert_null(cl_audit_network("", a, sizeof a));
}

/* ---------------------------------------------------------- the golden */

typedef struct golden_case {
  Clinlog__V1__AccessRecorded a;
  int64_t at_ns;
} golden_case;

static void golden_cases(golden_case *c, size_t *n) {
  static char *roles_doc[] = {"physician", "clinician"}, *roles_nurse[] = {"nurse"},
              *roles_reg[] = {"registrar"}, *pat1[] = {"pat-1001"}, *pat2[] = {"pat-2002"},
              *pat3[] = {"pat-3003"};
  size_t i = 0;
  for (size_t k = 0; k < 7; k++)
    clinlog__v1__access_recorded__init(&c[k].a);
  /* a read naming its patient */
  Clinlog__V1__AccessRecorded *a = &c[i].a;
  a->principal_id = "dr-house", a->n_roles = 2, a->roles = roles_doc;
  a->action = "R", a->resource = "Observation/obs-1", a->purpose_of_use = "TREAT";
  a->client_address = "ipv4:10.0.0.7:51234", a->server_address = "ipv4:10.0.0.1:7528";
  a->outcome = "0", a->count = 1, a->method = "clinlog.v1.Fhir/Read", a->transport = "http";
  a->subtype = "read", a->request_id = "req-0001", a->auth = "token", a->token_id = "tok-7f3a";
  a->node_id = 1, a->n_patients = 1, a->patients = pat1;
  c[i++].at_ns = T0 * NS + 123000000;
  /* a search with its query */
  a = &c[i].a;
  a->principal_id = "dr-house", a->n_roles = 2, a->roles = roles_doc;
  a->action = "E", a->resource = "Observation", a->purpose_of_use = "TREAT";
  a->client_address = "ipv4:10.0.0.7:51240", a->server_address = "ipv4:10.0.0.1:7528";
  a->outcome = "0", a->count = 12, a->method = "clinlog.v1.Fhir/Search", a->transport = "http";
  a->subtype = "search-type", a->request_id = "req-0002", a->auth = "token";
  a->token_id = "tok-7f3a", a->node_id = 1, a->n_patients = 1, a->patients = pat1;
  a->query = "patient=pat-1001&code=http://loinc.org|8867-4&date=ge2024-01-01";
  c[i++].at_ns = (T0 + 5) * NS;
  /* a create, over mutual TLS */
  a = &c[i].a;
  a->principal_id = "registrar-1", a->n_roles = 1, a->roles = roles_reg;
  a->action = "C", a->resource = "Patient/pat-2002", a->purpose_of_use = "HOPERAT";
  a->client_address = "ipv4:10.0.3.2:40100", a->server_address = "0.0.0.0:7525";
  a->outcome = "0", a->count = 1, a->method = "clinlog.v1.Fhir/Create", a->transport = "grpc";
  a->subtype = "create", a->request_id = "req-0003", a->auth = "mtls", a->node_id = 2;
  a->n_patients = 1, a->patients = pat2;
  c[i++].at_ns = (T0 + 10) * NS;
  /* a call refused before anyone was proved */
  a = &c[i].a;
  a->action = "R", a->resource = "Patient/pat-1001";
  a->client_address = "ipv4:192.0.2.9:40000", a->server_address = "ipv4:10.0.0.1:7528";
  a->outcome = "4", a->method = "clinlog.v1.Fhir/Read", a->transport = "http";
  a->subtype = "read", a->request_id = "req-0004", a->auth = "none", a->node_id = 1;
  a->n_patients = 1, a->patients = pat1;
  a->error = "CL_EUNAUTH", a->detail = "authentication required";
  c[i++].at_ns = (T0 + 20) * NS;
  /* a failed login */
  a = &c[i].a;
  a->action = "E", a->resource = "principal:jdoe";
  a->client_address = "ipv4:192.0.2.10:40002", a->server_address = "ipv4:10.0.0.1:7525";
  a->outcome = "4", a->method = "clinlog.v1.Auth/Login", a->transport = "grpc";
  a->subtype = "110122", a->request_id = "req-0005", a->auth = "none", a->node_id = 1;
  a->error = "CL_EDENIED", a->detail = "wrong password or code";
  c[i++].at_ns = (T0 + 30) * NS;
  /* break-glass */
  a = &c[i].a;
  a->principal_id = "er-nurse-4", a->n_roles = 1, a->roles = roles_nurse;
  a->action = "R", a->resource = "Patient/pat-3003", a->purpose_of_use = "TREAT";
  a->client_address = "ipv4:10.0.9.4:50500", a->server_address = "ipv4:10.0.0.1:7528";
  a->outcome = "0", a->count = 1, a->method = "clinlog.v1.Fhir/Read", a->transport = "http";
  a->subtype = "read", a->request_id = "req-0006", a->auth = "token", a->token_id = "tok-99c1";
  a->node_id = 3, a->n_patients = 1, a->patients = pat3, a->break_glass = 1;
  c[i++].at_ns = (T0 + 40) * NS;
  /* a log read over gRPC from an IPv6 client */
  a = &c[i].a;
  a->principal_id = "auditor-1", a->action = "R", a->resource = "stream:patient-pat-1001";
  a->purpose_of_use = "HSYSADMIN", a->client_address = "ipv6:[2001:db8::7]:51000";
  a->server_address = "ipv6:%5B2001:db8::1%5D:7525", a->outcome = "0", a->count = 40;
  a->method = "clinlog.v1.Log/ReadStream", a->transport = "grpc", a->request_id = "req-0007";
  a->auth = "mtls", a->node_id = 1, a->n_patients = 1, a->patients = pat1;
  c[i++].at_ns = (T0 + 50) * NS;
  *n = i;
}

typedef struct render {
  json_t *arr;
  const char *site;
} render;

static int render_one(void *ctx, uint64_t seq, const Clinlog__V1__Event *ev, cl_err *err) {
  render *r = ctx;
  json_t *ae;
  int rc = cl_audit_fhir(ev, seq, r->site, &ae, err);
  if (rc == 0)
    json_array_append_new(r->arr, ae);
  return rc;
}

Test(audit_view, auditevents_match_the_golden_file, .timeout = 120) {
  char *dir;
  cl_signer admin;
  cl_log *log = cl_test_log_new("audit_golden", &dir, &admin, 0);
  golden_case c[7];
  size_t n;
  golden_cases(c, &n);
  for (size_t i = 0; i < n; i++) {
    uint8_t id[16];
    for (int k = 0; k < 16; k++)
      id[k] = (uint8_t)(0xa0 + i * 16 + (size_t)k);
    id[6] = (uint8_t)((id[6] & 0x0f) | 0x40);
    id[8] = (uint8_t)((id[8] & 0x3f) | 0x80);
    append_access(log, &c[i].a, c[i].at_ns, id);
  }
  cl_runner *run = start(log);
  fx_wait_head(run, log);
  render r = {json_array(), "clinlog.example/hospital-a"};
  cl_err err;
  cl_audit_filter f = {0};
  cr_assert_eq(cl_audit_query(cl_runner_proj(run), log, &f, render_one, &r, NULL, &err), 0, "%s",
               err.msg);
  cr_assert_eq(json_array_size(r.arr), n);
  char *out = json_dumps(r.arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  cr_assert_not_null(out);
  if (getenv("CL_UPDATE_GOLDEN")) {
    mkdir(CL_SOURCE_DIR "/tests/query/audit", 0755);
    FILE *fp = fopen(GOLDEN, "w");
    cr_assert_not_null(fp, "%s", GOLDEN);
    fprintf(fp, "%s\n", out);
    fclose(fp);
  } else {
    size_t len;
    uint8_t *want = cl_test_read_file(GOLDEN, &len);
    cr_assert_not_null(want, "%s missing (CL_UPDATE_GOLDEN=1 writes it)", GOLDEN);
    while (len > 0 && want[len - 1] == '\n')
      len--;
    want[len] = '\0';
    if (strcmp((char *)want, out) != 0) {
      size_t i = 0, line = 1;
      while (want[i] != '\0' && want[i] == (uint8_t)out[i]) {
        if (out[i] == '\n')
          line++;
        i++;
      }
      cr_assert_fail("%s differs at line %zu:\n  want: %.80s\n  got:  %.80s", GOLDEN, line,
                     (char *)want + i, out + i);
    }
    free(want);
  }
  free(out);
  json_decref(r.arr);
  cl_runner_stop(run);
  cl_log_close(log);
  cl_signer_free(&admin);
  cl_test_rmtree(dir);
  free(dir);
}

/* The golden file through the independent FHIR R4 validator (also ctest's
 * fhir_validate); skipped where its npm packages are not installed. */
Test(audit_view, the_golden_file_is_valid_fhir_r4, .timeout = 300) {
  struct stat st;
  if (stat(CL_SOURCE_DIR "/tests/fhir/node_modules/@medplum/core", &st) != 0 ||
      system("node --version > /dev/null 2>&1") != 0)
    cr_skip_test("the validator's npm packages are not installed (cd tests/fhir && npm ci)");
  int rc = system("node " CL_SOURCE_DIR "/tests/fhir/validate.mjs " GOLDEN);
  cr_assert_eq(rc, 0, "the validator rejects an AuditEvent of %s (see above)", GOLDEN);
}

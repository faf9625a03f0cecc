/* The fixture of the Raft state machine tests (test_fsm.c,
 * test_fsm_recovery.c): clinlog's FSM (replication/fsm.c) driven by
 * libraft's deterministic in-memory fixture (raft/fixture.h), with a real
 * cl_log per server and an in-process catch-up (records copied from another
 * server's store, verified by cl_log_ingest).
 *
 * Time is the fixture's simulated clock; the election timeouts are fixed, so
 * the runs are deterministic (event ids and nonces are random, but nothing
 * in the Raft schedule depends on them). CL_RAFT_TRACE=1 prints libraft's
 * diagnostics. Every helper fails the running Criterion test on an error.
 *
 * The workload (submit_work) mixes new and existing streams, batch and
 * per-event signatures, expected-version conflicts, duplicate retries, a
 * principal registration (a keyring change) and a stream erasure, so the
 * catch-up path (cl_log_ingest) has to rebuild keys, keyring and erasures
 * as the apply path does. A test keeps its cluster in fsm_cur, which the
 * suite's fini (fsm_fini) frees. */
#ifndef CL_TESTS_REPLICATION_FSM_FIXTURE_H
#define CL_TESTS_REPLICATION_FSM_FIXTURE_H

#include <raft.h>
#include <raft/fixture.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clinlog/v1/cluster.pb-c.h"
#include "replication/fsm.h"
#include "store/log.h"
#include "tests/support/testutil.h"

#define MAX_NODES 5
#define MAX_SUBS 512
#define MAX_WORK 256
#define MAX_BATCH_EVENTS 6
#define MAX_CHUNK 128
#define CP_INTERVAL 10
#define ELECTION_MS 1000

/* ------------------------------------------------------------ the cluster */

/* A group of batches the submitting server waits for (cl_fsm.claim). */
typedef struct claim {
  struct claim *next;
  uint64_t group;
  size_t n;
  cl_apply_item *items; /* want_result set; results freed at teardown */
  int done;             /* cl_fsm.done was called */
  int rc;               /* its outcome */
} claim;

struct cluster;

typedef struct node {
  struct cluster *c;
  unsigned i;
  char dir[4096];
  cl_log *log;
  cl_fsm fsm;
  struct raft_fsm rfsm;
  int (*restore)(struct raft_fsm *, struct raft_buffer *); /* cl_fsm's own */
  char api[16];
  struct raft_tracer tracer;
  unsigned n_fatal;
  char fatal_msg[CL_ERR_MSG_SIZE + 256];
  unsigned n_fetch;   /* catch-up calls */
  unsigned n_restore; /* snapshots restored */
  claim *claims;
} node;

/* A raft_apply request and what became of it. */
typedef struct sub {
  struct raft_apply req; /* first: the callback casts back */
  int done;
  int status;
} sub;

/* What entry k of the workload did, for the checks. */
typedef struct work {
  claim *cl;                         /* the leader's claim (NULL if not claimed) */
  int kind;                          /* WORK_* of its first batch */
  uint8_t ids[MAX_BATCH_EVENTS][16]; /* first batch's event ids */
  size_t n_ids;
} work;

enum { WORK_PLAIN, WORK_CONFLICT, WORK_RETRY };

typedef struct wbatch wbatch;

typedef struct cluster {
  struct raft_fixture f;
  int fixture_up;
  unsigned n;
  node nodes[MAX_NODES];
  char *root; /* temp directory holding every data directory */
  char *dir0; /* server 0's data directory */
  char origin[256];
  cl_signer admin;
  cl_signer nurse; /* registered by the workload's entry NURSE_ENTRY */
  sub *subs;
  size_t n_subs;
  uint64_t group;
  unsigned chunk;      /* records per catch-up chunk */
  uint64_t tamper_seq; /* catch-up flips a byte of this record (0: never) */
  unsigned tamper_dst; /* ... when copying to this server (MAX_NODES: any) */
  int journaling;      /* keep a copy of every submitted entry */
  size_t n_journal;
  raft_index jindex[MAX_SUBS];
  struct raft_buffer journal[MAX_SUBS];
  /* workload */
  unsigned k; /* entries generated so far */
  unsigned n_streams;
  uint64_t expect_events; /* events the workload's committed batches add */
  wbatch *prev;           /* first batch of the previous entry (retried later) */
  work work[MAX_WORK];
} cluster;

struct wbatch {
  const cl_signer *signer;
  size_t n;
  uint8_t *ev[MAX_BATCH_EVENTS];
  size_t len[MAX_BATCH_EVENTS];
  uint8_t id[MAX_BATCH_EVENTS][16];
  int batch_sig;
  char x_stream[64]; /* expectation, if x_stream[0] */
  int x_kind;
  uint64_t x_version;
};

#define ALL(c) ((1u << (c)->n) - 1)

typedef struct until {
  cluster *c;
  unsigned mask;
  raft_index index;
  sub *s;
} until;

#define NURSE_ENTRY 12
#define ERASE_ENTRY 20
#define ERASED_STREAM "patient-1"

typedef struct records {
  size_t n;
  uint8_t **data;
  size_t *len;
} records;

typedef struct readback {
  uint64_t n;
  uint8_t *erased; /* per seq - 1; NULL: every event must decrypt */
  size_t cap;
} readback;

/* The running test's cluster, freed by fsm_fini (the suite's .fini). */
extern cluster *fsm_cur;
void fsm_fini(void);

/* The node's raft_fsm.restore: counts the restore, then cl_fsm's own. */
int node_restore(struct raft_fsm *rf, struct raft_buffer *buf);

/* Observations in `streams` by "admin", signed by `admin` (borrowed: must
 * outlive w); batch_sig: one batch signature, else one per event. */
void wbatch_init(wbatch *w, char streams[][64], size_t n, int batch_sig, const cl_signer *admin);

/* Frees the events of w (not w). */
void wbatch_free(wbatch *w);

/* Signs w with its signer and prepares it on `log` (the leader's). */
Clinlog__V1__PreparedBatch *wbatch_prepare(cl_log *log, const wbatch *w);

/* Opens n's store (under server 0's keys) into n->log and n->fsm.log. */
void open_node(cluster *c, node *n);

/* Creates server 0's store (genesis + pre_events events) and n-1 empty
 * replica stores; does not start Raft. */
cluster *stores_new(unsigned n, unsigned pre_events);

/* libraft's diagnostics, shown with CL_RAFT_TRACE=1 (the fixture's own
 * tracer prints every step). */
void trace_emit(struct raft_tracer *t, int type, const void *data);

/* Adds every store's FSM to a fresh fixture, bootstraps all as voters and
 * starts them. snapshot_threshold 0 keeps libraft's default. */
void raft_up(cluster *c, unsigned voters, unsigned snapshot_threshold, unsigned snapshot_trailing);

/* Closes the fixture (failing pending requests) and forgets the subs. */
void raft_down(cluster *c);

/* The live server in the leader state with the highest term, among mask
 * (c->n if none). */
unsigned leader_among(cluster *c, unsigned mask);

/* raft_fixture_step_until condition: every server of u->mask (an
 * until) applied u->index. */
bool has_applied(struct raft_fixture *f, void *arg);

/* Steps until a server of mask leads (fails the test after 20 election
 * timeouts); returns it. */
unsigned wait_leader(cluster *c, unsigned mask);

/* Steps until every server of mask applied `index`; fails the test if any
 * server stopped (cl_fsm.fatal) or it takes 60 election timeouts. */
void wait_applied(cluster *c, unsigned mask, raft_index index);

/* Submits e on server `leader`; NULL if raft_apply refuses it. */
sub *submit_entry(cluster *c, unsigned leader, Clinlog__V1__RaftEntry *e);

/* Waits for the request's outcome; returns its raft status. */
int wait_sub(cluster *c, sub *s);

/* Submits server 0's tree head (the cluster's first entry) on `leader`. */
sub *submit_head_entry(cluster *c, unsigned leader);

/* The first entry of the cluster: server 0's tree head. Returns its index
 * once every server in mask applied it. */
raft_index submit_head(cluster *c, unsigned mask);

/* Submits batches (prepared, ownership kept by the caller) as one entry on
 * `leader`; with out_claim the leader waits for their outcome (the claim is
 * registered before the entry can possibly apply). */
sub *submit_batches(cluster *c, unsigned leader, Clinlog__V1__PreparedBatch **pbs, size_t n,
                    claim **out_claim);

/* Generates and submits entry k of the workload on the current leader (of
 * mask): one or two batches of 1-4 events, new and existing streams, batch
 * and per-event signatures; every 10th entry (k % 10 == 5) has an
 * expected-version conflict, and k % 10 == 7 retries the first batch of the
 * entry before it (a duplicate). Entry NURSE_ENTRY registers principal
 * nurse-1 (a keyring change); once the leader's store knows that key, a
 * third of the batches are signed by it. Entry ERASE_ENTRY crypto-shreds
 * ERASED_STREAM, which takes no events after it. */
sub *submit_work(cluster *c, unsigned mask);

/* Cuts (on = 1) or restores every link between server i and the others. */
void isolate(cluster *c, unsigned i, int on);

/* Submits a last entry, waits until every server in mask applied it and
 * returns its index: after it, every store's applied index must equal it. */
raft_index settle(cluster *c, unsigned mask);

/* Every record of `log`, in order (free with records_free). */
void records_read(cl_log *log, records *r);

void records_free(records *r);

/* cl_log_read_all callback over a readback: erased events (crypto-shredded
 * streams) are flagged, every other one decrypts to the bytes its hash
 * names. */
int check_decrypts(void *ctx, const cl_event_view *v, cl_err *err);

/* An auditor's replay of nd's data directory (cl_verify_dir) passes and
 * every event decrypts or is erased. */
void assert_verifies(cluster *c, node *nd);

/* Every server in mask holds the same log, and applied raft index
 * `applied` (0: not checked). */
void assert_converged(cluster *c, unsigned mask, raft_index applied, int verify);

/* 1 if `log` holds the event with this id. */
int has_event(cl_log *log, const uint8_t id[16]);

/* The seq of the event with this id (fails the test if absent). */
uint64_t event_seq(cl_log *log, const uint8_t id[16]);

/* cl_log_read_all callback: adds the decryptable events to *(int *)ctx. */
int count_readable(void *ctx, const cl_event_view *v, cl_err *err);

/* Advances the fixture's simulated clock by ms. */
void step_ms(cluster *c, unsigned ms);

#endif

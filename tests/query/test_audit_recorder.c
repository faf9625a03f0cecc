/* The audit recorder (query/audit/recorder.h) over a real log: records from
 * many threads are each committed exactly once, signed by the log key, in
 * shared batches; an append that fails fails every record of its batch
 * (each caller hears it: fail closed) and writes nothing, and the
 * recorder recovers; an uncontended caller appends on its own thread;
 * asynchronous records do not hold their caller while another batch
 * commits, and each hears its outcome once. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "query/audit/recorder.h"
#include "store/event.h"
#include "tests/support/testutil.h"

static struct {
  char *dir;
  cl_signer admin;
  cl_log *log;
  int fail; /* the append fails while set */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int appends;
  int hold; /* the next append waits (up to 2 s) for a second one in flight */
  int in_flight, max_in_flight;
  pthread_t last_thread; /* the thread of the last append */
  int gate;              /* appends wait while set (and say so in `gated`) */
  int gated;
} F;

static int append(void *ctx, const Clinlog__V1__AppendBatch *b, cl_err *err) {
  (void)ctx;
  pthread_mutex_lock(&F.mu);
  F.appends++;
  F.last_thread = pthread_self();
  int fail = F.fail;
  if (++F.in_flight > F.max_in_flight)
    F.max_in_flight = F.in_flight;
  pthread_cond_broadcast(&F.cv);
  while (F.gate) {
    F.gated++;
    pthread_cond_broadcast(&F.cv);
    pthread_cond_wait(&F.cv, &F.mu);
  }
  if (F.hold) {
    F.hold = 0;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 2;
    while (F.in_flight < 2 && pthread_cond_timedwait(&F.cv, &F.mu, &until) == 0)
      ;
  }
  F.in_flight--;
  pthread_mutex_unlock(&F.mu);
  if (fail)
    return cl_err_set(err, CL_EIO, "the disk is gone");
  cl_append_result r;
  int code = cl_log_append(F.log, b, &r, err);
  if (code == 0)
    cl_append_result_free(&r);
  return code;
}

static void setup(void) {
  memset(&F, 0, sizeof F);
  pthread_mutex_init(&F.mu, NULL);
  pthread_cond_init(&F.cv, NULL);
  F.log = cl_test_log_new("audrec", &F.dir, &F.admin, 100);
}

static void teardown(void) {
  cl_log_close(F.log);
  cl_signer_free(&F.admin);
  cl_test_rmtree(F.dir);
  free(F.dir);
}

TestSuite(audit_recorder, .init = setup, .fini = teardown, .timeout = 60);

typedef struct seen {
  int n;
  int per_request[8 * 50];
  int bad;
} seen;

static int count_records(void *ctx, const cl_event_view *v, cl_err *err) {
  seen *s = ctx;
  Clinlog__V1__Event *ev;
  cr_assert_eq(cl_event_decode(v->event, v->event_len, &ev, err), 0, "%s", err->msg);
  int i = -1;
  if (ev->body_case != CLINLOG__V1__EVENT__BODY_ACCESS_RECORDED ||
      strcmp(ev->recorded_by->principal_id, "$log") != 0 ||
      sscanf(ev->access_recorded->request_id, "req-%d", &i) != 1 || i < 0 || i >= 8 * 50)
    s->bad++;
  else
    s->per_request[i]++;
  s->n++;
  clinlog__v1__event__free_unpacked(ev, NULL);
  return 0;
}

typedef struct worker {
  cl_audit *a;
  int first;
  int failed;
} worker;

static void *record_many(void *arg) {
  worker *w = arg;
  for (int i = 0; i < 50; i++) {
    char rid[32];
    snprintf(rid, sizeof rid, "req-%d", w->first + i);
    Clinlog__V1__AccessRecorded r = CLINLOG__V1__ACCESS_RECORDED__INIT;
    r.request_id = rid;
    r.method = "clinlog.v1.Fhir/Read";
    r.outcome = "0";
    cl_err err;
    cl_err_clear(&err);
    if (cl_audit_record(w->a, &r, &err) != 0)
      w->failed++;
  }
  return NULL;
}

Test(audit_recorder, concurrent_records_are_each_committed_once_in_shared_batches) {
  cl_audit *a;
  cl_err err;
  /* more callers (8) than batches in flight (2): the others' records ride along */
  cl_audit_options o = {.log = F.log, .append = append, .writers = 2};
  cr_assert_eq(cl_audit_open(&o, &a, &err), 0, "%s", err.msg);
  pthread_t th[8];
  worker w[8];
  for (int i = 0; i < 8; i++) {
    w[i] = (worker){a, i * 50, 0};
    pthread_create(&th[i], NULL, record_many, &w[i]);
  }
  for (int i = 0; i < 8; i++) {
    pthread_join(th[i], NULL);
    cr_assert_eq(w[i].failed, 0);
  }
  cl_audit_stats st;
  cl_audit_get_stats(a, &st);
  cl_audit_close(a);
  cr_assert_eq(st.records, 400);
  cr_assert_eq(st.failed, 0);
  cr_assert_lt(st.batches, 400, "concurrent records share commits");
  cr_assert_gt(st.max_seen, 1);
  /* in the log: every request once, and nothing else in $audit */
  seen s = {0};
  cr_assert_eq(cl_log_read_stream(F.log, "$audit", 1, 0, 0, count_records, &s, &err), 0, "%s",
               err.msg);
  cr_assert_eq(s.n, 400);
  cr_assert_eq(s.bad, 0);
  for (int i = 0; i < 400; i++)
    cr_assert_eq(s.per_request[i], 1, "request %d recorded %d times", i, s.per_request[i]);
}

/* Several writers keep several batches in flight: while one append waits
 * for its commit, the records that arrive meanwhile go out in the next
 * batch (with one writer, the held append would never see a second). */
Test(audit_recorder, batches_are_in_flight_together) {
  F.hold = 1;
  cl_audit *a;
  cl_err err;
  cl_audit_options o = {.log = F.log, .append = append, .writers = 3};
  cr_assert_eq(cl_audit_open(&o, &a, &err), 0, "%s", err.msg);
  pthread_t th[8];
  worker w[8];
  for (int i = 0; i < 8; i++) {
    w[i] = (worker){a, i * 50, 0};
    pthread_create(&th[i], NULL, record_many, &w[i]);
    if (i == 0) { /* the others arrive while the first append is held */
      pthread_mutex_lock(&F.mu);
      while (F.in_flight == 0)
        pthread_cond_wait(&F.cv, &F.mu);
      pthread_mutex_unlock(&F.mu);
    }
  }
  for (int i = 0; i < 8; i++) {
    pthread_join(th[i], NULL);
    cr_assert_eq(w[i].failed, 0);
  }
  cl_audit_stats st;
  cl_audit_get_stats(a, &st);
  cl_audit_close(a);
  cr_assert_eq(st.records, 400);
  cr_assert_geq(F.max_in_flight, 2, "appends in flight at once: %d", F.max_in_flight);
  cr_assert_leq(F.max_in_flight, 3, "no more than the writers");
  seen s = {0};
  cr_assert_eq(cl_log_read_stream(F.log, "$audit", 1, 0, 0, count_records, &s, &err), 0, "%s",
               err.msg);
  cr_assert_eq(s.n, 400);
  for (int i = 0; i < 400; i++)
    cr_assert_eq(s.per_request[i], 1, "request %d recorded %d times", i, s.per_request[i]);
}

/* Leader/follower: with nothing else in flight the caller leads its own
 * batch, so its record costs the append and no hand-off to another thread. */
Test(audit_recorder, an_uncontended_caller_appends_on_its_own_thread) {
  cl_audit *a;
  cl_err err;
  cl_audit_options o = {.log = F.log, .append = append};
  cr_assert_eq(cl_audit_open(&o, &a, &err), 0, "%s", err.msg);
  for (int i = 0; i < 3; i++) {
    Clinlog__V1__AccessRecorded r = CLINLOG__V1__ACCESS_RECORDED__INIT;
    r.request_id = "req-own";
    r.outcome = "0";
    F.last_thread = (pthread_t)0;
    cr_assert_eq(cl_audit_record(a, &r, &err), 0, "%s", err.msg);
    cr_assert(pthread_equal(F.last_thread, pthread_self()), "record %d went to another thread", i);
  }
  cl_audit_stats st;
  cl_audit_get_stats(a, &st);
  cl_audit_close(a);
  cr_assert_eq(st.records, 3);
  cr_assert_eq(st.batches, 3);
}

Test(audit_recorder, a_failed_append_fails_each_record_of_its_batch) {
  cl_audit *a;
  cl_err err;
  cl_audit_options o = {.log = F.log, .append = append};
  cr_assert_eq(cl_audit_open(&o, &a, &err), 0, "%s", err.msg);
  uint64_t before, after;
  cl_log_head(F.log, &before, NULL);
  F.fail = 1;
  pthread_t th[4];
  worker w[4];
  for (int i = 0; i < 4; i++) {
    w[i] = (worker){a, i * 50, 0};
    pthread_create(&th[i], NULL, record_many, &w[i]);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    cr_assert_eq(w[i].failed, 50, "every caller hears of its failed record");
  }
  cl_log_head(F.log, &after, NULL);
  cr_assert_eq(after, before, "nothing written");
  /* the error names why */
  Clinlog__V1__AccessRecorded r = CLINLOG__V1__ACCESS_RECORDED__INIT;
  cr_assert_eq(cl_audit_record(a, &r, &err), CL_EIO);
  cr_assert(strstr(err.msg, "the disk is gone"), "%s", err.msg);
  /* and it recovers when the writer does */
  F.fail = 0;
  cr_assert_eq(cl_audit_record(a, &r, &err), 0, "%s", err.msg);
  cl_audit_stats st;
  cl_audit_get_stats(a, &st);
  cr_assert_eq(st.failed, 201);
  cr_assert_eq(st.records, 1);
  cl_audit_close(a);
}

Test(audit_recorder, needs_an_append_function_and_closes_cleanly) {
  cl_audit *a;
  cl_err err;
  cl_audit_options none = {.log = F.log};
  cr_assert_eq(cl_audit_open(&none, &a, &err), CL_EINVAL);
  cl_audit_options o = {.log = F.log, .append = append, .max_batch = 1};
  cr_assert_eq(cl_audit_open(&o, &a, &err), 0, "%s", err.msg);
  Clinlog__V1__AccessRecorded r = CLINLOG__V1__ACCESS_RECORDED__INIT;
  cr_assert_eq(cl_audit_record(a, &r, &err), 0, "%s", err.msg);
  cl_audit_close(a);
  cl_audit_close(NULL);
}

/* Asynchronous records: each callback once, with the batch's outcome. */
typedef struct async_seen {
  pthread_mutex_t mu;
  int calls, failed;
  int per[64];
  int other_thread; /* callbacks run on a thread other than `leader` */
  pthread_t leader;
} async_seen;

typedef struct async_one {
  async_seen *s;
  int i;
} async_one;

static void async_done(void *ctx, const cl_err *err) {
  async_one *o = ctx;
  pthread_mutex_lock(&o->s->mu);
  o->s->calls++;
  o->s->per[o->i]++;
  if (err->code)
    o->s->failed++;
  if (!pthread_equal(pthread_self(), o->s->leader))
    o->s->other_thread++;
  pthread_mutex_unlock(&o->s->mu);
}

typedef struct async_lead {
  cl_audit *a;
  async_one *one;
  int rc;
} async_lead;

static void *record_async_first(void *arg) {
  async_lead *l = arg;
  Clinlog__V1__AccessRecorded r = CLINLOG__V1__ACCESS_RECORDED__INIT;
  r.request_id = "req-0";
  r.outcome = "0";
  cl_err err;
  l->rc = cl_audit_record_async(l->a, &r, async_done, l->one, &err);
  return NULL;
}

static void async_round(int fail) {
  cl_audit *a;
  cl_err err;
  cl_audit_options o = {.log = F.log, .append = append, .writers = 1};
  cr_assert_eq(cl_audit_open(&o, &a, &err), 0, "%s", err.msg);
  async_seen s;
  memset(&s, 0, sizeof s);
  pthread_mutex_init(&s.mu, NULL);
  async_one ones[21];
  for (int i = 0; i < 21; i++)
    ones[i] = (async_one){&s, i};
  uint64_t before, after;
  cl_log_head(F.log, &before, NULL);
  /* a caller leads the one batch allowed in flight; its append is held */
  F.fail = fail;
  pthread_mutex_lock(&F.mu);
  F.gate = 1;
  pthread_mutex_unlock(&F.mu);
  async_lead l = {a, &ones[0], -1};
  pthread_t th;
  pthread_create(&th, NULL, record_async_first, &l);
  pthread_mutex_lock(&F.mu);
  while (!F.gated)
    pthread_cond_wait(&F.cv, &F.mu);
  pthread_mutex_unlock(&F.mu);
  s.leader = th;
  /* the others queue and return at once: nobody waits for that commit */
  for (int i = 1; i < 21; i++) {
    char rid[32];
    snprintf(rid, sizeof rid, "req-%d", i);
    Clinlog__V1__AccessRecorded r = CLINLOG__V1__ACCESS_RECORDED__INIT;
    r.request_id = rid;
    r.outcome = "0";
    cr_assert_eq(cl_audit_record_async(a, &r, async_done, &ones[i], &err), 0, "%s", err.msg);
  }
  pthread_mutex_lock(&s.mu);
  cr_assert_eq(s.calls, 0, "no outcome before the commit");
  pthread_mutex_unlock(&s.mu);
  pthread_mutex_lock(&F.mu);
  F.gate = 0;
  pthread_cond_broadcast(&F.cv);
  pthread_mutex_unlock(&F.mu);
  /* the leader's thread also leads the queued batch (no caller waits to) */
  pthread_join(th, NULL);
  cr_assert_eq(l.rc, 0);
  cr_assert_eq(s.calls, 21, "every record's outcome, by the time its leader returns");
  for (int i = 0; i < 21; i++)
    cr_assert_eq(s.per[i], 1, "record %d told %d times", i, s.per[i]);
  cr_assert_eq(s.other_thread, 0, "the outcomes are told by the thread that committed them");
  cr_assert_eq(s.failed, fail ? 21 : 0);
  cl_audit_stats st;
  cl_audit_get_stats(a, &st);
  cr_assert_eq(st.batches, fail ? 0 : 2, "the first record alone, then the 20 queued");
  cl_audit_close(a);
  cl_log_head(F.log, &after, NULL);
  cr_assert_eq(after - before, fail ? 0 : 21);
  pthread_mutex_destroy(&s.mu);
}

Test(audit_recorder, async_records_hold_no_caller_and_each_hears_its_outcome_once) {
  async_round(0);
}

Test(audit_recorder, async_records_of_a_failed_append_each_hear_the_failure) { async_round(1); }

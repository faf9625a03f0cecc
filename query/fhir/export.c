/* FHIR Bulk Data export jobs (export.h). */
#include "query/fhir/export.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "query/fhir/fj.h"
#include "query/fhir/group.h"
#include "store/feed.h"

#define MAX_RUNNING 4 /* jobs walking or waiting at once: more is 429 */

typedef struct xfile {
  int type;
  uint64_t count;
  int has_after;
  uint8_t after[32]; /* the file starts after this key (none: the type's first) */
  uint8_t last[32];  /* and ends with this one */
} xfile;

typedef struct job {
  char id[33];
  int state; /* enum cl_fhir_export_state */
  int level;
  char group[CL_FHIR_ID_MAX]; /* CL_FHIR_EXPORT_GROUP: the Group (group.h) */
  uint64_t types;             /* bit per CL_FHIR_* type */
  int64_t since_ns;
  uint64_t as_of;
  int64_t transaction_ns;
  int64_t done_ms; /* when it finished (expiry) */
  char owner[128]; /* the principal that kicked it off, "" if anonymous */
  char request[1024];
  char progress[160];
  char error[256];
  xfile *files;
  size_t nfiles;
  cl_hmap *tags; /* patient, group level: the members' stream tags (built when first needed) */
  atomic_int cancelled;
  int refs; /* the list, the walker, readers: under x->mu */
  struct job *next;
} job;

struct cl_fhir_exports {
  char *dir;
  cl_runner *fhir;
  cl_log *log;
  cl_fhir_exports_options o;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t thread;
  atomic_int stop;
  job *jobs;
};

void cl_fhir_exports_options_init(cl_fhir_exports_options *o) {
  o->max_per_file = 100000;
  o->keep_ms = 24LL * 3600 * 1000;
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void job_unref(job *j) { /* under x->mu */
  if (--j->refs > 0)
    return;
  free(j->files);
  cl_hmap_free(j->tags);
  free(j);
}

static job *find(cl_fhir_exports *x, const char *id) { /* under x->mu */
  for (job *j = x->jobs; j; j = j->next)
    if (!strcmp(j->id, id))
      return j;
  return NULL;
}

static void unlink_job(cl_fhir_exports *x, job *j) { /* under x->mu */
  for (job **p = &x->jobs; *p; p = &(*p)->next)
    if (*p == j) {
      *p = j->next;
      job_unref(j);
      return;
    }
}

/* ------------------------------------------------------------ job files */

static void job_path(const cl_fhir_exports *x, const char *id, const char *suffix, char *out,
                     size_t n) {
  snprintf(out, n, "%s/%s.json%s", x->dir, id, suffix);
}

static const char *state_name(int s) {
  return s == CL_FHIR_EXPORT_COMPLETE ? "complete"
         : s == CL_FHIR_EXPORT_FAILED ? "failed"
                                      : "running";
}

static void hex(const uint8_t *b, size_t n, char *out) { sodium_bin2hex(out, n * 2 + 1, b, n); }

static int unhex(const char *s, uint8_t *out, size_t n) {
  size_t got = 0;
  return s != NULL && strlen(s) == n * 2 &&
                 sodium_hex2bin(out, n, s, n * 2, NULL, &got, NULL) == 0 && got == n
             ? 0
             : -1;
}

/* Writes the job's file (temporary file, fsync, rename): parameters, state
 * and file bounds. Called by the one thread that changes the job. */
static int job_save(cl_fhir_exports *x, const job *j, cl_err *err) {
  json_t *types = json_array(), *files = json_array();
  for (int t = 1; t < CL_FHIR_NTYPES; t++)
    if (j->types & (1ULL << t))
      json_array_append_new(types, json_string(cl_fhir_type_name(t)));
  for (size_t i = 0; i < j->nfiles; i++) {
    char a[65], l[65];
    hex(j->files[i].after, 32, a);
    hex(j->files[i].last, 32, l);
    json_array_append_new(files, json_pack("{s:s,s:I,s:s?,s:s}", "type",
                                           cl_fhir_type_name(j->files[i].type), "count",
                                           (json_int_t)j->files[i].count, "after",
                                           j->files[i].has_after ? a : NULL, "last", l));
  }
  json_t *o =
      json_pack("{s:s,s:s,s:s,s:i,s:s,s:o,s:I,s:I,s:I,s:I,s:s,s:s,s:o}", "id", j->id, "owner",
                j->owner, "state", state_name(j->state), "level", j->level, "group", j->group,
                "types", types, "since_ns", (json_int_t)j->since_ns, "as_of", (json_int_t)j->as_of,
                "transaction_ns", (json_int_t)j->transaction_ns, "done_ms", (json_int_t)j->done_ms,
                "request", j->request, "error", j->error, "files", files);
  char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  if (text == NULL)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  char tmp[4200], path[4200];
  job_path(x, j->id, ".tmp", tmp, sizeof tmp);
  job_path(x, j->id, "", path, sizeof path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  size_t n = strlen(text);
  int ok = fd >= 0 && write(fd, text, n) == (ssize_t)n && fsync(fd) == 0;
  if (fd >= 0)
    ok = close(fd) == 0 && ok;
  free(text);
  if (!ok || rename(tmp, path) != 0) {
    unlink(tmp);
    return cl_err_set(err, CL_EIO, "export job %s: cannot write %s: %s", j->id, path,
                      strerror(errno));
  }
  return 0;
}

static job *job_load(const char *path) {
  json_error_t je;
  json_t *o = json_load_file(path, 0, &je);
  if (o == NULL)
    return NULL;
  job *j = calloc(1, sizeof *j);
  const char *id = NULL, *state = NULL, *request = "", *error = "", *group = "", *owner = "";
  json_t *types = NULL, *files = NULL;
  json_int_t since = 0, as_of = 0, tx = 0, done = 0;
  int level = 0;
  if (j == NULL ||
      json_unpack(o, "{s:s,s?s,s:s,s:i,s?s,s:o,s:I,s:I,s:I,s:I,s?s,s?s,s:o}", "id", &id, "owner",
                  &owner, "state", &state, "level", &level, "group", &group, "types", &types,
                  "since_ns", &since, "as_of", &as_of, "transaction_ns", &tx, "done_ms", &done,
                  "request", &request, "error", &error, "files", &files) != 0 ||
      strlen(id) != 32 || !json_is_array(types) || !json_is_array(files))
    goto bad;
  snprintf(j->id, sizeof j->id, "%s", id);
  snprintf(j->owner, sizeof j->owner, "%s", owner);
  j->state = !strcmp(state, "complete") ? CL_FHIR_EXPORT_COMPLETE
             : !strcmp(state, "failed") ? CL_FHIR_EXPORT_FAILED
                                        : CL_FHIR_EXPORT_RUNNING;
  j->level = level;
  snprintf(j->group, sizeof j->group, "%s", group);
  j->since_ns = since;
  j->as_of = (uint64_t)as_of;
  j->transaction_ns = tx;
  j->done_ms = done;
  snprintf(j->request, sizeof j->request, "%s", request);
  snprintf(j->error, sizeof j->error, "%s", error);
  size_t i;
  json_t *v;
  json_array_foreach(types, i, v) {
    int t = cl_fhir_type_of(json_string_value(v));
    if (t == 0)
      goto bad;
    j->types |= 1ULL << t;
  }
  if (j->state == CL_FHIR_EXPORT_COMPLETE && json_array_size(files) > 0) {
    if ((j->files = calloc(json_array_size(files), sizeof *j->files)) == NULL)
      goto bad;
    json_array_foreach(files, i, v) {
      xfile *f = &j->files[j->nfiles];
      const char *t = NULL, *last = NULL;
      json_t *aj = NULL;
      json_int_t count = 0;
      if (json_unpack(v, "{s:s,s:I,s?o,s:s}", "type", &t, "count", &count, "after", &aj, "last",
                      &last) != 0)
        goto bad;
      const char *after = json_string_value(aj); /* null: the type's first file */
      if ((aj != NULL && !json_is_null(aj) && after == NULL) ||
          (f->type = cl_fhir_type_of(t)) == 0 || unhex(last, f->last, 32) != 0 ||
          (after != NULL && unhex(after, f->after, 32) != 0))
        goto bad;
      f->has_after = after != NULL;
      f->count = (uint64_t)count;
      j->nfiles++;
    }
  }
  if (j->state == CL_FHIR_EXPORT_RUNNING)
    snprintf(j->progress, sizeof j->progress, "queued again after a restart");
  j->refs = 1;
  json_decref(o);
  return j;
bad:
  json_decref(o);
  if (j != NULL)
    free(j->files);
  free(j);
  return NULL;
}

static void job_delete_file(cl_fhir_exports *x, const char *id) {
  char path[4200];
  job_path(x, id, "", path, sizeof path);
  unlink(path);
}

/* Drops finished jobs older than keep_ms. Under x->mu. */
static void expire(cl_fhir_exports *x) {
  int64_t now = cl_feed_now_ms();
  for (job *j = x->jobs, *next; j; j = next) {
    next = j->next;
    if (j->state != CL_FHIR_EXPORT_RUNNING && now - j->done_ms > x->o.keep_ms) {
      job_delete_file(x, j->id);
      unlink_job(x, j);
    }
  }
}

/* ------------------------------------------------------------ the walk */

static void set_progress(cl_fhir_exports *x, job *j, const char *fmt, ...) CL_PRINTF(3, 4);
static void set_progress(cl_fhir_exports *x, job *j, const char *fmt, ...) {
  va_list ap;
  pthread_mutex_lock(&x->mu);
  va_start(ap, fmt);
  vsnprintf(j->progress, sizeof j->progress, fmt, ap);
  va_end(ap);
  pthread_mutex_unlock(&x->mu);
}

static int stopped(cl_fhir_exports *x, job *j) {
  return atomic_load(&x->stop) || atomic_load(&j->cancelled);
}

typedef struct tag_walk {
  cl_hmap *tags;
  cl_fhir_exports *x;
  job *j;
} tag_walk;

static int add_tag(void *ctx, cl_fhir_resource *r, cl_err *err) {
  tag_walk *w = ctx;
  void *ok = cl_hmap_put(w->tags, r->tag, "");
  cl_fhir_resource_clear(r);
  if (ok == NULL)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  return w->x != NULL && stopped(w->x, w->j) ? 1 : 0;
}

/* The stream tags of the patients of j's level in its snapshot: every
 * patient (the Patient compartments) or the Group's members. *out
 * returned-owned. */
static int level_tags(cl_fhir_exports *x, job *j, int check_stop, cl_hmap **out, cl_err *err) {
  if (j->level == CL_FHIR_EXPORT_GROUP)
    return cl_fhir_group_tags(cl_runner_proj(x->fhir), j->as_of, j->group, out, err);
  tag_walk w = {cl_hmap_new(32, 1), check_stop ? x : NULL, j};
  if (w.tags == NULL)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  cl_fhir_snapshot s = {.as_of = j->as_of};
  uint8_t key[32];
  int rc = cl_fhir_scan_snapshot(cl_runner_proj(x->fhir), CL_FHIR_Patient, &s, NULL, NULL,
                                 CL_FHIR_NO_BODY, add_tag, &w, key, err);
  if (rc) {
    cl_hmap_free(w.tags);
    return rc;
  }
  *out = w.tags;
  return 0;
}

typedef struct count_walk {
  cl_fhir_exports *x;
  job *j;
  int type;
  xfile *files;
  size_t n, cap;
  uint64_t total;
  uint8_t *key; /* the key of the resource given */
  const char *phase;
} count_walk;

static int count_one(void *ctx, cl_fhir_resource *r, cl_err *err) {
  count_walk *w = ctx;
  cl_fhir_resource_clear(r);
  if (stopped(w->x, w->j))
    return 1;
  xfile *f = w->n > 0 ? &w->files[w->n - 1] : NULL;
  if (f == NULL || f->type != w->type || f->count == w->x->o.max_per_file) {
    int go_on = f != NULL && f->type == w->type; /* the type's next file */
    if (w->n == w->cap) {
      size_t cap = w->cap ? w->cap * 2 : 16;
      xfile *nf = realloc(w->files, cap * sizeof *nf);
      if (nf == NULL)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
      w->files = nf;
      w->cap = cap;
    }
    f = &w->files[w->n++];
    memset(f, 0, sizeof *f);
    f->type = w->type;
    if (go_on) { /* starts after the previous file's last */
      f->has_after = 1;
      memcpy(f->after, f[-1].last, 32);
    }
  }
  f->count++;
  memcpy(f->last, w->key, 32);
  if (++w->total % 1000 == 0)
    set_progress(w->x, w->j, "%s: %llu resources", w->phase, (unsigned long long)w->total);
  return 0;
}

/* Walks job j: waits for the views, then counts and cuts every type. 0
 * (complete, or interrupted: stopped() says which), or an error. */
static int walk(cl_fhir_exports *x, job *j, cl_err *err) {
  cl_proj *p = cl_runner_proj(x->fhir);
  for (;;) {
    if (stopped(x, j))
      return 0;
    cl_err we;
    if (cl_runner_wait(x->fhir, j->as_of, cl_feed_now_ms() + 500, &we) == 0)
      break;
    if (we.code != CL_ETIMEDOUT)
      return cl_err_set(err, we.code, "waiting for the views: %s", we.msg);
    cl_runner_status rs;
    cl_runner_get_status(x->fhir, &rs);
    set_progress(x, j, "waiting for the views to reach event %llu (at %llu)",
                 (unsigned long long)j->as_of, (unsigned long long)rs.position);
  }
  cl_hmap *tags = NULL;
  if (j->level != CL_FHIR_EXPORT_SYSTEM) {
    set_progress(x, j, "finding the patients");
    int rc = level_tags(x, j, 1, &tags, err);
    if (rc || stopped(x, j)) {
      cl_hmap_free(tags);
      return rc;
    }
  }
  cl_fhir_snapshot s = {.as_of = j->as_of, .since_ns = j->since_ns, .tags = tags};
  uint8_t key[32];
  count_walk w = {.x = x, .j = j, .key = key};
  int ntypes = 0, k = 0, rc = 0;
  for (int t = 1; t < CL_FHIR_NTYPES; t++)
    ntypes += (j->types >> t) & 1;
  char phase[96];
  for (int t = 1; rc == 0 && t < CL_FHIR_NTYPES && !stopped(x, j); t++) {
    if (!((j->types >> t) & 1))
      continue;
    snprintf(phase, sizeof phase, "%s (type %d of %d)", cl_fhir_type_name(t), ++k, ntypes);
    w.phase = phase;
    w.type = t;
    set_progress(x, j, "%s: %llu resources", phase, (unsigned long long)w.total);
    rc = cl_fhir_scan_snapshot(p, t, &s, NULL, NULL, CL_FHIR_NO_BODY, count_one, &w, key, err);
  }
  pthread_mutex_lock(&x->mu);
  if (rc == 0 && !stopped(x, j)) {
    j->files = w.files;
    j->nfiles = w.n;
    w.files = NULL;
    if (j->tags == NULL) {
      j->tags = tags;
      tags = NULL;
    }
    snprintf(j->progress, sizeof j->progress, "complete: %llu resources in %zu files",
             (unsigned long long)w.total, j->nfiles);
  }
  pthread_mutex_unlock(&x->mu);
  free(w.files);
  cl_hmap_free(tags);
  return rc;
}

static job *next_to_walk(cl_fhir_exports *x) { /* under x->mu */
  for (job *j = x->jobs; j; j = j->next)
    if (j->state == CL_FHIR_EXPORT_RUNNING && !atomic_load(&j->cancelled))
      return j;
  return NULL;
}

static void *walker(void *arg) {
  cl_fhir_exports *x = arg;
  pthread_mutex_lock(&x->mu);
  while (!atomic_load(&x->stop)) {
    expire(x);
    job *j = next_to_walk(x);
    if (j == NULL) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_sec += 60;
      pthread_cond_timedwait(&x->cv, &x->mu, &ts);
      continue;
    }
    j->refs++;
    pthread_mutex_unlock(&x->mu);
    cl_err err;
    cl_err_clear(&err);
    int rc = walk(x, j, &err);
    pthread_mutex_lock(&x->mu); /* cancel deletes the file under it too */
    if (!stopped(x, j)) {
      j->state = rc ? CL_FHIR_EXPORT_FAILED : CL_FHIR_EXPORT_COMPLETE;
      if (rc)
        snprintf(j->error, sizeof j->error, "%s", err.msg);
      j->done_ms = cl_feed_now_ms();
      cl_err se;
      if (job_save(x, j, &se) != 0)
        fprintf(stderr, "clinlogd: export: %s\n", se.msg);
    }
    job_unref(j);
  }
  pthread_mutex_unlock(&x->mu);
  return NULL;
}

/* ------------------------------------------------------------ lifecycle */

int cl_fhir_exports_open(const char *dir, cl_runner *fhir, cl_log *log,
                         const cl_fhir_exports_options *o, cl_fhir_exports **out, cl_err *err) {
  if (mkdir(dir, 0700) != 0 && errno != EEXIST)
    return cl_err_set(err, CL_EIO, "export directory %s: %s", dir, strerror(errno));
  cl_fhir_exports *x = calloc(1, sizeof *x);
  if (x == NULL || (x->dir = strdup(dir)) == NULL) {
    free(x);
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  }
  x->fhir = fhir;
  x->log = log;
  if (o != NULL)
    x->o = *o;
  else
    cl_fhir_exports_options_init(&x->o);
  if (x->o.max_per_file == 0)
    x->o.max_per_file = 100000;
  DIR *d = opendir(dir);
  for (struct dirent *de; d && (de = readdir(d)) != NULL;) {
    size_t n = strlen(de->d_name);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    if (n > 4 && !strcmp(de->d_name + n - 4, ".tmp")) {
      unlink(path); /* a save that a crash interrupted */
      continue;
    }
    if (n != 37 || strcmp(de->d_name + 32, ".json") != 0)
      continue;
    job *j = job_load(path);
    if (j == NULL) {
      fprintf(stderr, "clinlogd: export: cannot read the job file %s (skipped)\n", path);
      continue;
    }
    j->next = x->jobs;
    x->jobs = j;
  }
  if (d != NULL)
    closedir(d);
  pthread_mutex_init(&x->mu, NULL);
  pthread_cond_init(&x->cv, NULL);
  if (pthread_create(&x->thread, NULL, walker, x) != 0) {
    x->thread = 0;
    cl_fhir_exports_close(x);
    return cl_err_set(err, CL_ENOMEM, "export: cannot start a thread");
  }
  *out = x;
  return 0;
}

void cl_fhir_exports_close(cl_fhir_exports *x) {
  if (x == NULL)
    return;
  pthread_mutex_lock(&x->mu);
  atomic_store(&x->stop, 1);
  pthread_cond_broadcast(&x->cv);
  pthread_mutex_unlock(&x->mu);
  if (x->thread)
    pthread_join(x->thread, NULL);
  while (x->jobs) {
    job *j = x->jobs;
    x->jobs = j->next;
    job_unref(j);
  }
  pthread_cond_destroy(&x->cv);
  pthread_mutex_destroy(&x->mu);
  free(x->dir);
  free(x);
}

/* ------------------------------------------------------------ kick-off */

/* Adds the comma-separated types of `v` to *mask; CL_EINVAL names one that is not served. */
static int add_types(const char *v, uint64_t *mask, cl_err *err) {
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", v);
  char *save = NULL;
  for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    while (*t == ' ')
      t++;
    int ty = cl_fhir_type_of(t);
    if (ty == 0)
      return cl_err_set(err, CL_EINVAL, "_type: %s is not a resource type this server exports", t);
    if (ty == CL_FHIR_Group)
      return cl_err_set(err, CL_EINVAL,
                        "_type: Group resources are derived from coverage, not exported (GET "
                        "[base]/Group lists them)");
    *mask |= 1ULL << ty;
  }
  return 0;
}

static void append_param(char *req, size_t cap, const char *name, const char *value) {
  size_t n = strlen(req);
  snprintf(req + n, cap - n, "%s%s=%s", strchr(req, '?') ? "&" : "?", name, value);
}

int cl_fhir_export_start(cl_fhir_exports *x, const cl_fhir_export_req *rq, char id[33],
                         cl_err *err) {
  if (rq->level == CL_FHIR_EXPORT_GROUP) { /* it must exist now (it may lose members later) */
    cl_hmap *members;
    int rc = cl_fhir_group_tags(cl_runner_proj(x->fhir), UINT64_MAX, rq->group, &members, err);
    if (rc)
      return rc;
    cl_hmap_free(members);
  }
  job *j = calloc(1, sizeof *j);
  if (j == NULL)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  j->level = rq->level;
  snprintf(j->owner, sizeof j->owner, "%s", rq->owner ? rq->owner : "");
  if (rq->level == CL_FHIR_EXPORT_GROUP) {
    snprintf(j->group, sizeof j->group, "%s", rq->group);
    snprintf(j->request, sizeof j->request, "Group/%s/$export", rq->group);
  } else {
    snprintf(j->request, sizeof j->request, "%s",
             rq->level == CL_FHIR_EXPORT_PATIENT ? "Patient/$export" : "$export");
  }
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < rq->nparams; i++) {
    const char *n = rq->params[i].name, *v = rq->params[i].value;
    if (!strcmp(n, "_type")) {
      rc = add_types(v, &j->types, err);
      append_param(j->request, sizeof j->request, n, v);
    } else if (!strcmp(n, "_since")) {
      int64_t lo, hi;
      if (cl_fhir_date_range(v, &lo, &hi) != 0 || strchr(v, 'T') == NULL)
        rc = cl_err_set(err, CL_EINVAL, "_since: %s is not a FHIR instant", v);
      j->since_ns = lo * 1000000;
      append_param(j->request, sizeof j->request, n, v);
    } else if (!strcmp(n, "_outputFormat")) {
      if (strcmp(v, "application/fhir+ndjson") && strcmp(v, "application/ndjson") &&
          strcmp(v, "ndjson"))
        rc = cl_err_set(err, CL_EINVAL, "_outputFormat: %s is not served (NDJSON only)", v);
      append_param(j->request, sizeof j->request, n, v);
    } else if (rq->strict) { /* _elements, _typeFilter, patient, includeAssociatedData, ... */
      rc = cl_err_set(err, CL_EINVAL, "%s: not supported by this server's $export", n);
    }
  }
  if (rc) {
    free(j);
    return rc;
  }
  if (j->types == 0)
    j->types = ~1ULL & ((1ULL << CL_FHIR_NTYPES) - 1) & ~(1ULL << CL_FHIR_Group); /* stored ones */
  unsigned char rnd[16];
  randombytes_buf(rnd, sizeof rnd);
  hex(rnd, sizeof rnd, j->id);
  /* the clock, then the head: whatever committed before transactionTime is in */
  j->transaction_ns = now_ns();
  cl_log_head(x->log, &j->as_of, NULL);
  j->refs = 1;
  pthread_mutex_lock(&x->mu);
  int running = 0;
  for (job *o = x->jobs; o; o = o->next)
    running += o->state == CL_FHIR_EXPORT_RUNNING;
  pthread_mutex_unlock(&x->mu);
  if (running >= MAX_RUNNING) {
    free(j);
    return cl_err_set(err, CL_EUNAVAILABLE,
                      "%d exports are running: try again when one has finished", running);
  }
  snprintf(j->progress, sizeof j->progress, "queued");
  if ((rc = job_save(x, j, err)) != 0) {
    free(j);
    return rc;
  }
  pthread_mutex_lock(&x->mu);
  j->next = x->jobs;
  x->jobs = j;
  pthread_cond_broadcast(&x->cv);
  pthread_mutex_unlock(&x->mu);
  memcpy(id, j->id, 33);
  return 0;
}

/* ------------------------------------------------------------ status */

void cl_fhir_export_status_clear(cl_fhir_export_status *st) {
  free(st->files);
  memset(st, 0, sizeof *st);
}

int cl_fhir_export_get(cl_fhir_exports *x, const char *id, cl_fhir_export_status *st, cl_err *err) {
  memset(st, 0, sizeof *st);
  pthread_mutex_lock(&x->mu);
  expire(x);
  job *j = find(x, id ? id : "");
  if (j == NULL) {
    pthread_mutex_unlock(&x->mu);
    return cl_err_set(err, CL_ENOTFOUND, "no export job %s (never made, cancelled or expired)",
                      id ? id : "");
  }
  st->state = j->state;
  snprintf(st->progress, sizeof st->progress, "%s", j->progress);
  snprintf(st->error, sizeof st->error, "%s", j->error);
  snprintf(st->request, sizeof st->request, "%s", j->request);
  st->transaction_ns = j->transaction_ns;
  st->as_of = j->as_of;
  st->owned = j->owner[0] != '\0';
  int rc = 0;
  if (j->state == CL_FHIR_EXPORT_COMPLETE && j->nfiles > 0) {
    if ((st->files = calloc(j->nfiles, sizeof *st->files)) == NULL)
      rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < j->nfiles; i++)
      st->files[i] = (cl_fhir_export_file){j->files[i].type, j->files[i].count};
    st->nfiles = rc ? 0 : j->nfiles;
  }
  pthread_mutex_unlock(&x->mu);
  return rc;
}

int cl_fhir_export_manifest(cl_fhir_exports *x, const char *id, const char *base, char **json,
                            size_t *len, cl_err *err) {
  cl_fhir_export_status st;
  int rc = cl_fhir_export_get(x, id, &st, err);
  if (rc)
    return rc;
  if (st.state != CL_FHIR_EXPORT_COMPLETE) {
    cl_fhir_export_status_clear(&st);
    return cl_err_set(err, CL_EAGAIN, "export %s is not complete", id);
  }
  char tt[40];
  fj_instant_ns_text(st.transaction_ns, tt);
  json_t *out = json_array();
  for (size_t i = 0; i < st.nfiles; i++) {
    char url[1024];
    snprintf(url, sizeof url, "%s/$export-file/%s/%zu", base, id, i + 1);
    json_array_append_new(out,
                          json_pack("{s:s,s:s,s:I}", "type", cl_fhir_type_name(st.files[i].type),
                                    "url", url, "count", (json_int_t)st.files[i].count));
  }
  char request[2048];
  snprintf(request, sizeof request, "%s/%s", base, st.request);
  /* requiresAccessToken (Bulk Data): the files of an authenticated
   * principal's job answer that principal only (cl_fhir_export_owned), so
   * downloading them takes its credentials; an anonymous job's do not */
  json_t *m = json_pack("{s:s,s:s,s:b,s:o,s:[]}", "transactionTime", tt, "request", request,
                        "requiresAccessToken", st.owned, "output", out, "error");
  cl_fhir_export_status_clear(&st);
  *json = m ? json_dumps(m, JSON_COMPACT) : NULL;
  json_decref(m);
  if (*json == NULL)
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  *len = strlen(*json);
  return 0;
}

int cl_fhir_export_owned(cl_fhir_exports *x, const char *id, const char *caller, cl_err *err) {
  pthread_mutex_lock(&x->mu);
  expire(x);
  job *j = find(x, id ? id : "");
  int mine = j != NULL && strcmp(j->owner, caller ? caller : "") == 0;
  pthread_mutex_unlock(&x->mu);
  if (!mine) /* someone else's answers as none: ids are not confirmed to others */
    return cl_err_set(err, CL_ENOTFOUND, "no export job %s (never made, cancelled or expired)",
                      id ? id : "");
  return 0;
}

int cl_fhir_export_cancel(cl_fhir_exports *x, const char *id, cl_err *err) {
  pthread_mutex_lock(&x->mu);
  job *j = find(x, id ? id : "");
  if (j == NULL) {
    pthread_mutex_unlock(&x->mu);
    return cl_err_set(err, CL_ENOTFOUND, "no export job %s", id ? id : "");
  }
  atomic_store(&j->cancelled, 1);
  job_delete_file(x, j->id);
  unlink_job(x, j);
  pthread_mutex_unlock(&x->mu);
  return 0;
}

/* ------------------------------------------------------------ files */

typedef struct read_walk {
  char *buf;
  size_t len, cap, max;
  int full;
} read_walk;

static int add_line(void *ctx, cl_fhir_resource *r, cl_err *err) {
  read_walk *w = ctx;
  if (w->len + r->len + 1 > w->cap) {
    size_t cap = (w->len + r->len + 1) * 2;
    char *nb = realloc(w->buf, cap);
    if (nb == NULL) {
      cl_fhir_resource_clear(r);
      return cl_err_set(err, CL_ENOMEM, "out of memory");
    }
    w->buf = nb;
    w->cap = cap;
  }
  memcpy(w->buf + w->len, r->json, r->len);
  w->len += r->len;
  w->buf[w->len++] = '\n';
  cl_fhir_resource_clear(r);
  if (w->len >= w->max) {
    w->full = 1;
    return 1;
  }
  return 0;
}

int cl_fhir_export_read(cl_fhir_exports *x, const char *id, uint32_t n, const uint8_t *cursor,
                        size_t max_bytes, char **buf, size_t *len, uint8_t next[32], int *more,
                        cl_err *err) {
  *buf = NULL;
  *len = 0;
  *more = 0;
  pthread_mutex_lock(&x->mu);
  job *j = find(x, id ? id : "");
  int rc = 0;
  if (j == NULL)
    rc = cl_err_set(err, CL_ENOTFOUND, "no export job %s", id ? id : "");
  else if (j->state != CL_FHIR_EXPORT_COMPLETE)
    rc = cl_err_set(err, CL_EAGAIN, "export %s is not complete", id);
  else if (n == 0 || n > j->nfiles)
    rc = cl_err_set(err, CL_ENOTFOUND, "export %s has no file %u", id, n);
  if (rc) {
    pthread_mutex_unlock(&x->mu);
    return rc;
  }
  j->refs++;
  xfile f = j->files[n - 1];
  cl_hmap *tags = j->tags;
  pthread_mutex_unlock(&x->mu);
  if (j->level != CL_FHIR_EXPORT_SYSTEM && tags == NULL) { /* after a restart */
    if ((rc = level_tags(x, j, 0, &tags, err)) == 0) {
      pthread_mutex_lock(&x->mu);
      if (j->tags == NULL)
        j->tags = tags;
      else
        cl_hmap_free(tags);
      tags = j->tags;
      pthread_mutex_unlock(&x->mu);
    }
  }
  if (rc == 0) {
    cl_fhir_snapshot s = {.as_of = j->as_of, .since_ns = j->since_ns, .tags = tags};
    read_walk w = {.max = max_bytes ? max_bytes : 1 << 20};
    rc = cl_fhir_scan_snapshot(cl_runner_proj(x->fhir), f.type, &s,
                               cursor        ? cursor
                               : f.has_after ? f.after
                                             : NULL,
                               f.last, 0, add_line, &w, next, err);
    if (rc) {
      free(w.buf);
    } else {
      *buf = w.buf;
      *len = w.len;
      *more = w.full && memcmp(next, f.last, 32) != 0;
    }
  }
  pthread_mutex_lock(&x->mu);
  job_unref(j);
  pthread_mutex_unlock(&x->mu);
  return rc;
}

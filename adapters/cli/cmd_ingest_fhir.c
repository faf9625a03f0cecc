/* clinlog ingest fhir: FHIR R4 JSON to catalog events on a clinlogd
 * (adapters/fhir/fhirw.h has the mapping, docs/adapters.md the tables).
 *
 * Inputs: files and directories (a directory: its *.json and *.ndjson
 * files, in name order). A *.ndjson file holds one resource per line (a
 * Bulk Data export, this server's or another's); any other file one JSON
 * resource or a Bundle. A transaction Bundle is one unit, appended as one
 * atomic batch; the entries of a batch, collection or searchset Bundle and
 * each NDJSON line are units of their own. Units are mapped in an order
 * that puts what others reference first (Patients, then Encounters, then
 * the rest), so an export's files may come in any order; a reference
 * resolves to a resource of the input (its Type/id or a Bundle fullUrl) or
 * else to one on the server (clinlog.v1.Fhir/Read).
 *
 * A DiagnosticReport of an export lists its result lines as Observations
 * of their own ("Observation/<id>"). Before anything is mapped, every
 * Observation unit a report's result references is set aside as a line of
 * that report (pair_lines): it is not written on its own but taken by the
 * report as if contained (cl_fhirw_opts.line), so the report is one
 * LabResultReported as the views made it. An Observation two reports
 * reference refuses the second report. The units are parsed in memory
 * already; the pairing adds an index of the referenced lines. A
 * CoverageEligibilityResponse takes the CoverageEligibilityRequest its
 * request references in the same way (one EligibilityChecked makes both),
 * also among the entries of a transaction Bundle (tx_pairs).
 *
 * Each unit's events are signed with --key (the feed's own principal) and
 * appended, units gathered into appends of up to --batch-events events (a
 * load's throughput is one commit per batch, not per line); a batch the
 * server refuses is sent again unit by unit. The outcome per unit is
 * accepted (sequence numbers), duplicate
 * (the same input was ingested before: event ids and bytes derive from the
 * resource and the file's modification time) or refused with the element
 * path (`Observation.valueQuantity.value`) and the line or entry, or
 * skipped (a Provenance: the exporting server's own record of its writes,
 * which a server derives and never takes as input). Exit
 * status 0 when nothing was refused, 1 otherwise, 2 for usage. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "adapters/cli/cli.h"
#include "adapters/fhir/fhirw.h"
#include "adapters/grpc/grpcutil.h"
#include "adapters/service/methods.h"
#include "clinlog/v1/fhir.pb-c.h"
#include "store/keyring.h"

/* One unit of the input. */
typedef struct unit {
  char *file;        /* the path (owned) */
  size_t line;       /* NDJSON line (1-based), else 0 */
  long entry;        /* Bundle entry index, else -1 */
  json_t *res;       /* the resource, or a transaction Bundle (owned reference) */
  char *full_url;    /* the entry's fullUrl (owned), or NULL */
  int tx;            /* a transaction Bundle */
  int rank;          /* cl_fhirw_rank; a transaction: its lowest */
  int64_t mtime_ns;  /* the file's modification time: occurred_at when none is stated */
  cl_fhirw_error fe; /* a unit that did not parse */
  int bad;
} unit;

typedef struct fingest {
  cli_ingest *io; /* client, key, options */
  int json;
  json_t *results, *refs;
  uint64_t accepted, dups, skipped, refused, errors, events;
  uint64_t appends; /* append calls made (batches, and units sent again on their own) */
  cli_progress prog;
  unit *u;
  size_t n, cap;
  size_t batch_events; /* events per append at most (units together); 1: one append per unit */
  json_t *line_at;     /* "Observation/<id>" and fullUrl -> a line a report took (pair_lines) */
  json_t *tx_lines;    /* the same within the transaction being mapped (its responses' requests) */
} fingest;

/* ---- reading the input into units ---- */

static unit *add(fingest *g, const char *file, int64_t mtime) {
  if (g->n == g->cap) {
    size_t cap = g->cap ? g->cap * 2 : 64;
    unit *v = realloc(g->u, cap * sizeof *v);
    if (v == NULL)
      return NULL;
    g->u = v, g->cap = cap;
  }
  unit *u = &g->u[g->n++];
  memset(u, 0, sizeof *u);
  u->file = strdup(file);
  u->entry = -1;
  u->mtime_ns = mtime;
  return u->file ? u : (g->n--, NULL);
}

/* A parsed JSON document: a resource, or a Bundle split into entries. */
static int add_document(fingest *g, const char *file, int64_t mtime, json_t *doc, size_t line) {
  const char *rt = json_string_value(json_object_get(doc, "resourceType"));
  const char *bt = json_string_value(json_object_get(doc, "type"));
  unit *u;
  if (rt == NULL || strcmp(rt, "Bundle") != 0 || (bt && !strcmp(bt, "transaction"))) {
    if ((u = add(g, file, mtime)) == NULL)
      return CL_ENOMEM;
    u->line = line;
    u->res = json_incref(doc);
    u->tx = rt != NULL && !strcmp(rt, "Bundle");
    u->rank = u->tx ? CL_FHIRW_RANKS - 1 : cl_fhirw_rank(doc);
    json_t *es = json_object_get(doc, "entry");
    for (size_t i = 0; u->tx && i < json_array_size(es); i++) {
      int r = cl_fhirw_rank(json_object_get(json_array_get(es, i), "resource"));
      u->rank = r < u->rank ? r : u->rank;
    }
    return 0;
  }
  json_t *es = json_object_get(doc, "entry");
  int ok = bt && (!strcmp(bt, "batch") || !strcmp(bt, "collection") || !strcmp(bt, "searchset"));
  for (size_t i = 0; ok && i < json_array_size(es); i++) {
    json_t *e = json_array_get(es, i);
    if ((u = add(g, file, mtime)) == NULL)
      return CL_ENOMEM;
    u->entry = (long)i;
    u->line = line;
    u->res = json_incref(json_object_get(e, "resource"));
    const char *full = json_string_value(json_object_get(e, "fullUrl"));
    if (full != NULL && (u->full_url = strdup(full)) == NULL)
      return CL_ENOMEM;
    u->rank = cl_fhirw_rank(u->res);
  }
  if (!ok) {
    if ((u = add(g, file, mtime)) == NULL)
      return CL_ENOMEM;
    u->bad = 1;
    u->line = line;
    cl_err e;
    cl_fhirw_fail(&u->fe, &e, 400, "not-supported", "Bundle.type",
                  "a Bundle to ingest is a transaction, batch, collection or searchset");
  }
  return 0;
}

/* One piece of text (a file, or an NDJSON line) as a unit or units. */
static int add_text(fingest *g, const char *file, int64_t mtime, const char *p, size_t n,
                    size_t line) {
  json_t *doc;
  cl_fhirw_error fe;
  cl_err err;
  if (cl_fhirw_parse(p, n, &doc, &fe, &err) != 0) {
    if (err.code == CL_ENOMEM)
      return CL_ENOMEM;
    unit *u = add(g, file, mtime);
    if (u == NULL)
      return CL_ENOMEM;
    u->line = line;
    u->bad = 1;
    u->fe = fe;
    return 0;
  }
  int rc = add_document(g, file, mtime, doc, line);
  json_decref(doc);
  return rc;
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && !strcmp(s + n - k, suffix);
}

static int add_file(fingest *g, const char *file) {
  FILE *f = fopen(file, "rb");
  struct stat st;
  if (f == NULL || fstat(fileno(f), &st) != 0) {
    if (f)
      fclose(f);
    fprintf(stderr, "clinlog ingest fhir: cannot read %s\n", file);
    return 1;
  }
  size_t n;
  char *p = cli_read_all(f, &n);
  int rerr = ferror(f);
  fclose(f);
  if (p == NULL || rerr) {
    free(p);
    fprintf(stderr, "clinlog ingest fhir: cannot read %s\n", file);
    return 1;
  }
  int64_t mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
  int rc = 0;
  if (ends_with(file, ".ndjson")) {
    size_t line = 0;
    for (size_t i = 0; i < n && rc == 0;) {
      size_t e = i;
      while (e < n && p[e] != '\n')
        e++;
      line++;
      size_t k = e;
      while (k > i && (p[k - 1] == '\r' || p[k - 1] == ' ' || p[k - 1] == '\t'))
        k--;
      if (k > i)
        rc = add_text(g, file, mtime, p + i, k - i, line);
      i = e + 1;
    }
  } else {
    rc = add_text(g, file, mtime, p, n, 0);
  }
  free(p);
  if (rc)
    fprintf(stderr, "clinlog ingest fhir: out of memory reading %s\n", file);
  return rc ? 1 : 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int add_path(fingest *g, const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) {
    fprintf(stderr, "clinlog ingest fhir: no such file or directory: %s\n", path);
    return 1;
  }
  if (!S_ISDIR(st.st_mode))
    return add_file(g, path);
  DIR *d = opendir(path);
  if (d == NULL) {
    fprintf(stderr, "clinlog ingest fhir: cannot read the directory %s\n", path);
    return 1;
  }
  char **names = NULL;
  size_t nn = 0, cap = 0;
  int rc = 0;
  for (struct dirent *de; (de = readdir(d)) != NULL;) {
    if (!ends_with(de->d_name, ".json") && !ends_with(de->d_name, ".ndjson"))
      continue;
    if (nn == cap) {
      char **v = realloc(names, (cap = cap ? cap * 2 : 16) * sizeof *v);
      if (v == NULL) {
        rc = 1;
        break;
      }
      names = v;
    }
    size_t len = strlen(path) + strlen(de->d_name) + 2;
    if ((names[nn] = malloc(len)) == NULL) {
      rc = 1;
      break;
    }
    snprintf(names[nn++], len, "%s/%s", path, de->d_name);
  }
  closedir(d);
  if (names)
    qsort(names, nn, sizeof *names, by_name);
  for (size_t i = 0; i < nn; i++) {
    if (!rc)
      rc = add_file(g, names[i]);
    free(names[i]);
  }
  free(names);
  return rc;
}

/* ---- a report's result lines given as Observations of their own ---- */

/* How a unit went. */
typedef struct outcome {
  const char *status; /* accepted, duplicate, refused, error */
  cl_fhirw_error fe;
  char detail[320];
  uint64_t first_seq, last_seq;
  size_t events;
  json_t *resources; /* [{type, id}] */
} outcome;

/* Sets aside every Observation unit a DiagnosticReport unit's result
 * references (cl_fhirw_pair_lines) into g->line_at by "Observation/<id>"
 * and fullUrl, and removes it from the units: the report takes it
 * (line_of). A report referencing a line an earlier one took is refused.
 * 0, or CL_ENOMEM (the units unchanged). */
static int pair_lines(fingest *g) {
  size_t n = g->n ? g->n : 1;
  const json_t **res = calloc(n, sizeof *res);
  const char **urls = calloc(n, sizeof *urls);
  long *of = calloc(n, sizeof *of), *at = calloc(n, sizeof *at),
       *shared = calloc(n, sizeof *shared);
  int rc = res && urls && of && at && shared ? 0 : CL_ENOMEM;
  for (size_t i = 0; rc == 0 && i < g->n; i++)
    if (!g->u[i].bad && !g->u[i].tx)
      res[i] = g->u[i].res, urls[i] = g->u[i].full_url;
  if (rc == 0)
    rc = cl_fhirw_pair_lines(res, urls, g->n, of, at, shared, &g->line_at);
  size_t w = 0;
  for (size_t i = 0; rc == 0 && i < g->n; i++) {
    unit *u = &g->u[i];
    if (shared[i] >= 0) {
      char expr[64];
      snprintf(expr, sizeof expr, "Bundle.entry[%ld].resource", u->entry);
      u->bad = 1;
      cl_fhirw_pair_refusal(u->res, shared[i], u->entry >= 0 ? expr : NULL, &u->fe);
    }
  }
  for (size_t i = 0; rc == 0 && i < g->n; i++) {
    unit *u = &g->u[i];
    if (of[i] < 0) {
      g->u[w++] = *u;
      continue;
    }
    free(u->file); /* (g->line_at holds the line) */
    free(u->full_url);
    json_decref(u->res);
  }
  if (rc == 0)
    g->n = w;
  free(res), free(urls), free(of), free(at), free(shared);
  return rc;
}

/* cl_fhirw_line_fn: a line pair_lines set aside (in a transaction: one
 * of its own entries, tx_pairs). */
static int line_of(void *ctx, const char *ref, const json_t **out) {
  fingest *g = ctx;
  *out = json_object_get(g->tx_lines ? g->tx_lines : g->line_at, ref);
  return *out ? 0 : CL_ENOTFOUND;
}

/* A transaction's CoverageEligibilityResponses take the Request entries
 * their request references (cl_fhirw_pair_lines over its entries of those
 * types): taken[i] set for each, g->tx_lines their index. 0, CL_EMALFORMED
 * (a request two responses reference: o->fe) or CL_ENOMEM. */
static int tx_pairs(fingest *g, json_t *es, long *taken, outcome *o) {
  size_t n = json_array_size(es);
  const json_t **res = calloc(n ? n : 1, sizeof *res);
  const char **urls = calloc(n ? n : 1, sizeof *urls);
  long *at = calloc(n ? n : 1, sizeof *at), *shared = calloc(n ? n : 1, sizeof *shared);
  int rc = res && urls && at && shared ? 0 : CL_ENOMEM;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    json_t *r = json_object_get(json_array_get(es, i), "resource");
    const char *rt = json_string_value(json_object_get(r, "resourceType"));
    if (rt && !strncmp(rt, "CoverageEligibility", 19))
      res[i] = r, urls[i] = json_string_value(json_object_get(json_array_get(es, i), "fullUrl"));
  }
  if (rc == 0)
    rc = cl_fhirw_pair_lines(res, urls, n, taken, at, shared, &g->tx_lines);
  for (size_t i = 0; rc == 0 && i < n; i++)
    if (shared[i] >= 0) {
      char expr[64];
      snprintf(expr, sizeof expr, "Bundle.entry[%zu].resource", i);
      cl_fhirw_pair_refusal(res[i], shared[i], expr, &o->fe);
      snprintf(o->detail, sizeof o->detail, "%.100s: %.200s", o->fe.expression, o->fe.text);
      rc = CL_EMALFORMED;
    }
  free(res), free(urls), free(at), free(shared);
  return rc;
}

/* The lines report res took (its result's references set aside), as
 * {type, id} into resources. */
static void lines_taken(fingest *g, const json_t *res, json_t *resources) {
  json_t *rs = json_object_get(res, "result");
  for (size_t j = 0; j < json_array_size(rs); j++) {
    const json_t *o;
    const char *ref = json_string_value(json_object_get(json_array_get(rs, j), "reference"));
    const char *id = NULL;
    if (ref && line_of(g, ref, &o) == 0 && (id = json_string_value(json_object_get(o, "id"))))
      json_array_append_new(resources, json_pack("{s:s,s:s}", "type", "Observation", "id", id));
  }
}

/* ---- references on the server ---- */

/* cl_fhirw_fetch_fn: type/id as the server's views hold it, numbers marked
 * (cl_fhirw_parse). */
static int fetch(void *ctx, const char *type, const char *id, json_t **out, cl_err *err) {
  fingest *g = ctx;
  Clinlog__V1__FhirReadRequest req = CLINLOG__V1__FHIR_READ_REQUEST__INIT;
  req.type = (char *)type;
  req.id = (char *)id;
  ProtobufCMessage *m;
  cl_err e;
  cl_err_clear(&e);
  *out = NULL;
  if (cl_client_unary(g->io->client, cl_grpc_method_path[M_FHIR_READ], &req.base,
                      &clinlog__v1__fhir_response__descriptor, &m, NULL, &e) != 0)
    return e.code == CL_ENOTFOUND
               ? CL_ENOTFOUND
               : cl_err_set(err, e.code, "looking up %s/%s on the server: %s", type, id, e.msg);
  const Clinlog__V1__FhirResponse *r = (const Clinlog__V1__FhirResponse *)m;
  cl_fhirw_error fe;
  int rc = cl_fhirw_parse((const char *)r->json.data, r->json.len, out, &fe, &e);
  protobuf_c_message_free_unpacked(m, NULL);
  return rc == CL_ENOMEM ? cl_err_set(err, CL_ENOMEM, "out of memory") : rc ? CL_ENOTFOUND : 0;
}

static int resolve(void *ctx, const char *type, const char *id, char *bid, size_t bidn,
                   cl_err *err) {
  json_t *res;
  int rc = fetch(ctx, type, id, &res, err);
  if (rc == 0)
    rc = cl_fhirw_bid_of(res, bid, bidn);
  json_decref(res);
  return rc;
}

/* ---- one unit ---- */

static void report(fingest *g, const unit *u, outcome *o) {
  char where[64] = "";
  if (u->line)
    snprintf(where, sizeof where, " line %zu", u->line);
  if (u->entry >= 0)
    snprintf(where + strlen(where), sizeof where - strlen(where), " entry %ld", u->entry);
  if (g->json) {
    json_t *j = json_pack("{s:s,s:s,s:I}", "file", u->file, "status", o->status, "events",
                          (json_int_t)o->events);
    if (j == NULL) /* a file name that is not UTF-8 */
      j = json_pack("{s:s,s:s,s:I}", "file", "?", "status", o->status, "events",
                    (json_int_t)o->events);
    if (u->line)
      json_object_set_new(j, "line", json_integer((json_int_t)u->line));
    if (u->entry >= 0)
      json_object_set_new(j, "entry", json_integer(u->entry));
    if (o->first_seq) {
      json_object_set_new(j, "firstSeq", json_integer((json_int_t)o->first_seq));
      json_object_set_new(j, "lastSeq", json_integer((json_int_t)o->last_seq));
    }
    json_object_set(j, "resources", o->resources);
    if (!strcmp(o->status, "refused"))
      json_object_set_new(j, "error",
                          json_pack("{s:s,s:s,s:s,s:i}", "expression", o->fe.expression, "code",
                                    o->fe.code, "text", o->fe.text, "status", o->fe.status));
    else if (!strcmp(o->status, "error"))
      json_object_set_new(j, "error", json_pack("{s:s}", "text", o->detail));
    json_array_append_new(g->results, j);
  } else if (!strcmp(o->status, "refused")) {
    printf("%s%s: refused: %s%s%s\n", u->file, where, o->fe.expression,
           o->fe.expression[0] ? ": " : "", o->fe.text);
  } else if (!strcmp(o->status, "error")) {
    printf("%s%s: error: %s\n", u->file, where, o->detail);
  } else {
    printf("%s%s: %s (%zu event%s", u->file, where, o->status, o->events,
           o->events == 1 ? "" : "s");
    if (o->first_seq)
      printf(", seq %llu-%llu", (unsigned long long)o->first_seq, (unsigned long long)o->last_seq);
    printf(")\n");
  }
}

/* Maps the resources of a unit (a transaction's entries, in rank order)
 * into ms[0..*n); refs gets what they define. */
static int map_unit(fingest *g, const unit *u, json_t *refs, cl_fhirw_mapped **ms, size_t *n,
                    outcome *o) {
  cl_fhirw_opts opt = {.principal_id = g->io->principal,
                       .role = g->io->role ? g->io->role : "integration",
                       .source_system = "fhir-ingest",
                       .now_ns = u->mtime_ns,
                       .refs = refs,
                       .resolve = resolve,
                       .fetch = fetch,
                       .line = line_of,
                       .ctx = g,
                       .bulk = 1};
  cl_err err;
  json_t *es = u->tx ? json_object_get(u->res, "entry") : NULL;
  size_t total = u->tx ? json_array_size(es) : 1;
  long *taken = calloc(total ? total : 1, sizeof *taken);
  int rc = taken ? 0 : CL_ENOMEM;
  *n = 0;
  if (rc == 0 && u->tx) /* its responses take their requests (no other lines: contained) */
    rc = tx_pairs(g, es, taken, o);
  else if (rc == 0)
    taken[0] = -1;
  for (int rank = 0; rc == 0 && rank < CL_FHIRW_RANKS; rank++)
    for (size_t i = 0; rc == 0 && i < total; i++) {
      json_t *e = u->tx ? json_array_get(es, i) : NULL;
      json_t *res = u->tx ? json_object_get(e, "resource") : u->res;
      if (cl_fhirw_rank(res) != rank || taken[i] >= 0)
        continue;
      char expr[64];
      if (u->entry >= 0 || u->tx)
        snprintf(expr, sizeof expr, "Bundle.entry[%zu].resource", u->tx ? i : (size_t)u->entry);
      rc = cl_fhirw_map(res, u->tx || u->entry >= 0 ? expr : NULL, NULL, "", &opt, &ms[*n], &o->fe,
                        &err);
      if (rc == 0) {
        const char *full = u->tx ? json_string_value(json_object_get(e, "fullUrl")) : u->full_url;
        rc = cl_fhirw_refs_add(refs, ms[*n], full);
        if (rc == 0)
          rc = cl_fhirw_refs_keep(refs, ms[*n], res);
        json_array_append_new(o->resources,
                              json_pack("{s:s,s:s}", "type", ms[*n]->type, "id", ms[*n]->id));
        if (!u->tx && !strcmp(ms[*n]->type, "DiagnosticReport"))
          lines_taken(g, res, o->resources);
        if (!strcmp(ms[*n]->type, "CoverageEligibilityResponse")) { /* and its request */
          char qid[CL_FHIR_ID_MAX];
          cl_fhir_id("CoverageEligibilityRequest", ms[*n]->patient_id, ms[*n]->bid, qid);
          json_array_append_new(o->resources, json_pack("{s:s,s:s}", "type",
                                                        "CoverageEligibilityRequest", "id", qid));
        }
        (*n)++;
      } else if (rc != CL_EMALFORMED || !o->detail[0]) {
        snprintf(o->detail, sizeof o->detail, "%s", err.msg);
      }
    }
  if (rc)
    o->status = rc == CL_EMALFORMED ? "refused" : "error";
  if (rc == CL_ENOMEM && !o->detail[0])
    snprintf(o->detail, sizeof o->detail, "out of memory");
  free(taken);
  json_decref(g->tx_lines);
  g->tx_lines = NULL;
  return rc;
}

/* Counts the outcome of u and reports it. */
static void finish(fingest *g, const unit *u, outcome *o) {
  if (!strcmp(o->status, "accepted")) {
    g->accepted++;
    g->events += o->events;
  } else if (!strcmp(o->status, "duplicate")) {
    g->dups++;
  } else if (!strcmp(o->status, "skipped")) {
    g->skipped++;
  } else if (!strcmp(o->status, "refused")) {
    g->refused++;
  } else {
    g->errors++;
  }
  report(g, u, o);
  json_decref(o->resources);
  o->resources = NULL;
}

/* The events of ms[0..n) as one array (views into ms), or NULL. */
static ProtobufCBinaryData *events_of(cl_fhirw_mapped **ms, size_t n, ProtobufCBinaryData *evs,
                                      size_t *k) {
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < ms[i]->n; j++)
      evs[(*k)++] = (ProtobufCBinaryData){ms[i]->ev[j].len, ms[i]->ev[j].bytes};
  return evs;
}

/* Maps unit u against refs (what it defines is added to refs when it
 * maps, also for a transaction: a refused one is rolled back). Returns 1
 * when mapped (*ms, *n: its resources), else 0 with o set (refused,
 * skipped or error). */
static int prepare(fingest *g, const unit *u, json_t **refs, cl_fhirw_mapped ***ms, size_t *n,
                   outcome *o) {
  size_t total = u->tx ? json_array_size(json_object_get(u->res, "entry")) : 1;
  const char *rt = json_string_value(json_object_get(u->res, "resourceType"));
  *n = 0;
  *ms = NULL;
  if (u->bad) {
    o->status = "refused";
    o->fe = u->fe;
    return 0;
  }
  if (rt != NULL && !strcmp(rt, "Provenance")) {
    o->status = "skipped"; /* a server's own record of its writes: derived, never written */
    return 0;
  }
  /* one resource adds to refs only once it mapped; a transaction's entries
   * add as they map, so a refused one works on a copy */
  json_t *work = u->tx ? json_deep_copy(*refs) : json_incref(*refs);
  if ((*ms = calloc(total ? total : 1, sizeof **ms)) == NULL || work == NULL || !o->resources) {
    snprintf(o->detail, sizeof o->detail, "out of memory");
    json_decref(work);
    return 0;
  }
  int rc = map_unit(g, u, work, *ms, n, o);
  if (rc == 0 && u->tx) {
    json_decref(*refs);
    *refs = work;
  } else {
    json_decref(work);
  }
  return rc == 0;
}

static void free_mapped(cl_fhirw_mapped **ms, size_t n) {
  for (size_t i = 0; ms && i < n; i++)
    cl_fhirw_mapped_free(ms[i]);
  free(ms);
}

/* One unit on its own: mapped against the refs of what was accepted, one
 * append. */
static void one(fingest *g, const unit *u) {
  outcome o = {.status = "error", .resources = json_array()};
  cl_fhirw_mapped **ms = NULL;
  size_t n = 0;
  json_t *refs = json_deep_copy(g->refs); /* what a unit defines counts once it is written */
  if (refs == NULL) {
    snprintf(o.detail, sizeof o.detail, "out of memory");
  } else if (prepare(g, u, &refs, &ms, &n, &o)) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
      k += ms[i]->n;
    ProtobufCBinaryData *evs = calloc(k ? k : 1, sizeof *evs);
    int dup = 0;
    cl_err err;
    cl_err_clear(&err);
    size_t have = 0;
    g->appends++;
    int rc = evs ? cli_append_signed(g->io->client, &g->io->signer, events_of(ms, n, evs, &have),
                                     k, &o.first_seq, &o.last_seq, &dup, &err)
                 : cl_err_set(&err, CL_ENOMEM, "out of memory");
    if (rc == 0 || rc == CL_EDUPLICATE) { /* EDUPLICATE: written before from another file */
      o.status = rc == 0 && !dup ? "accepted" : "duplicate";
      o.events = k;
      json_decref(g->refs);
      g->refs = refs;
      refs = NULL;
    } else {
      snprintf(o.detail, sizeof o.detail, "%s (%s)", err.msg[0] ? err.msg : cl_strerror(rc),
               cl_errname(rc));
    }
    free(evs);
  }
  finish(g, u, &o);
  free_mapped(ms, n);
  json_decref(refs);
}

/* Units mapped and waiting for one append together. */
typedef struct pending {
  size_t *idx;     /* unit indexes */
  outcome *o;      /* their outcomes */
  cl_fhirw_mapped ***ms;
  size_t *nms, n, cap, events;
  json_t *refs; /* what the accepted units and these define */
} pending;

static void pending_clear(pending *p) {
  for (size_t i = 0; i < p->n; i++) {
    free_mapped(p->ms[i], p->nms[i]);
    json_decref(p->o[i].resources);
  }
  p->n = p->events = 0;
}

/* Appends the pending units as one batch; if that is refused (a unit
 * ingested before among new ones, a key revoked meanwhile, ...), each is
 * sent again on its own against the refs of what was accepted before
 * them, so each gets its own outcome exactly as without grouping.
 * Returns 1 when it had to (what was mapped against the pending units'
 * refs must then be mapped again), else 0. */
static int flush(fingest *g, pending *p) {
  if (p->n == 0)
    return 0;
  ProtobufCBinaryData *evs = calloc(p->events ? p->events : 1, sizeof *evs);
  size_t k = 0;
  for (size_t i = 0; evs && i < p->n; i++)
    events_of(p->ms[i], p->nms[i], evs, &k);
  uint64_t first = 0, last = 0;
  int dup = 0;
  cl_err err;
  cl_err_clear(&err);
  g->appends++;
  int rc = evs ? cli_append_signed(g->io->client, &g->io->signer, evs, k, &first, &last, &dup,
                                   &err)
               : CL_ENOMEM;
  free(evs);
  if (rc == 0) {
    uint64_t at = first;
    for (size_t i = 0; i < p->n; i++) {
      outcome *o = &p->o[i];
      if (p->ms[i] == NULL || p->nms[i] == 0) { /* refused or skipped when mapped */
        finish(g, &g->u[p->idx[i]], o);
        continue;
      }
      size_t ne = 0;
      for (size_t j = 0; j < p->nms[i]; j++)
        ne += p->ms[i][j]->n;
      o->status = dup ? "duplicate" : "accepted";
      o->events = ne;
      o->first_seq = at;
      o->last_seq = at + ne - 1;
      at += ne;
      finish(g, &g->u[p->idx[i]], o);
    }
    json_decref(g->refs);
    g->refs = json_incref(p->refs);
  } else {
    for (size_t i = 0; i < p->n; i++)
      if (p->ms[i] == NULL || p->nms[i] == 0)
        finish(g, &g->u[p->idx[i]], &p->o[i]);
      else
        one(g, &g->u[p->idx[i]]);
  }
  pending_clear(p);
  json_decref(p->refs);
  p->refs = json_deep_copy(g->refs);
  return rc != 0;
}

/* Every unit, in order: units are gathered into one append of up to
 * g->batch_events events (a transaction Bundle's events always together);
 * with batch_events 1, one append per unit. */
static void ingest_all(fingest *g) {
  pending p = {0};
  p.refs = json_deep_copy(g->refs);
  for (size_t i = 0; i < g->n; i++) {
    const unit *u = &g->u[i];
    if (g->batch_events <= 1 || p.refs == NULL) {
      one(g, u);
    } else {
      outcome o = {.status = "error", .resources = json_array()};
      cl_fhirw_mapped **ms;
      size_t n;
      int mapped = prepare(g, u, &p.refs, &ms, &n, &o);
      size_t ne = 0;
      for (size_t j = 0; mapped && j < n; j++)
        ne += ms[j]->n;
      if (mapped && p.n && p.events + ne > g->batch_events && flush(g, &p)) {
        /* u was mapped against refs of units that were then sent one by one:
           map it again against what was accepted */
        free_mapped(ms, n);
        json_decref(o.resources);
        o = (outcome){.status = "error", .resources = json_array()};
        mapped = p.refs ? prepare(g, u, &p.refs, &ms, &n, &o) : 0;
        for (size_t j = ne = 0; mapped && j < n; j++)
          ne += ms[j]->n;
      }
      if (!mapped) { /* refused or skipped: nothing to append (a transaction's entries mapped
                        before the refusal neither) */
        free_mapped(ms, n);
        ms = NULL, n = 0;
      }
      if (!mapped && p.n == 0) {
        finish(g, u, &o);
      } else {
        /* (a refused unit waits with the pending ones: outcomes in input order) */
        if (p.n == p.cap) {
          size_t cap = p.cap ? p.cap * 2 : 64;
          void *a = realloc(p.idx, cap * sizeof *p.idx), *b = realloc(p.o, cap * sizeof *p.o),
               *c = realloc(p.ms, cap * sizeof *p.ms), *d = realloc(p.nms, cap * sizeof *p.nms);
          p.idx = a ? a : p.idx, p.o = b ? b : p.o, p.ms = c ? c : p.ms, p.nms = d ? d : p.nms;
          if (!a || !b || !c || !d) {
            free_mapped(ms, n);
            json_decref(o.resources);
            one(g, u);
            goto next;
          }
          p.cap = cap;
        }
        p.idx[p.n] = i, p.o[p.n] = o, p.ms[p.n] = ms, p.nms[p.n] = n;
        p.n++;
        p.events += ne;
      }
    }
  next:
    cli_progress_update(&g->prog, i + 1, g->n);
  }
  flush(g, &p);
  free(p.idx), free(p.o), free(p.ms), free(p.nms);
  json_decref(p.refs);
}

/* ---- the command ---- */

static int usage(FILE *f, int rc) {
  fprintf(f, "usage: clinlog ingest fhir FILE|DIR... --server HOST:PORT --key FILE [options]\n"
             "Reads FHIR R4 JSON: a resource or a Bundle per *.json file (a transaction is\n"
             "appended as one atomic batch; batch, collection and searchset entries one by\n"
             "one) and one resource per line of *.ndjson files (a Bulk Data export); a\n"
             "directory: its *.json and *.ndjson files. Maps each to catalog events (the\n"
             "FHIR views' types: Patient, Encounter, Observation, DiagnosticReport...; a\n"
             "DiagnosticReport takes the Observations of the input its result references as\n"
             "its lines, as an export writes them; a CoverageEligibilityResponse the\n"
             "CoverageEligibilityRequest its request references: one event makes both) and\n"
             "appends them signed with --key.\n"
             "Reports each as accepted, duplicate (ingested before: nothing written),\n"
             "skipped (a Provenance) or refused with the element path and the line or\n"
             "entry. Exit status 1 if any was refused or failed.\n"
             "  --key FILE           the feed's signing key (clinlog keygen)\n"
             "  --principal ID       recorded_by.principal_id (default: the key's principal,\n"
             "                       looked up in the log)\n"
             "  --role ROLE          recorded_by.role (default: integration)\n"
             "  --batch-events N     gather units into appends of up to N events (default\n"
             "                       500; a transaction's events always together; a batch\n"
             "                       that is refused is sent again unit by unit, so each\n"
             "                       unit still gets its own outcome); 1: one append a unit\n"
             "  --json               one JSON document: per-unit results and a "
             "summary\n" CLI_REMOTE_USAGE);
  return rc;
}

static int run(fingest *g, char **paths, int npaths) {
  int status = cli_ingest_open(g->io, "ingest fhir");
  if (status)
    return status;
  for (int i = 0; i < npaths && !status; i++)
    status = add_path(g, paths[i]);
  if (status == 0 && pair_lines(g) != 0) {
    fprintf(stderr, "clinlog ingest fhir: out of memory pairing reports with their lines (and "
                    "eligibility responses with their requests)\n");
    status = 1;
  }
  if (status)
    goto fail_units;
  /* what others reference first; stable within a rank (file, then line order) */
  unit *sorted = malloc((g->n ? g->n : 1) * sizeof *sorted);
  if (sorted == NULL) {
    status = 1;
    goto fail_units;
  }
  size_t k = 0;
  for (int rank = 0; rank < CL_FHIRW_RANKS; rank++)
    for (size_t i = 0; i < g->n; i++)
      if (g->u[i].rank == rank)
        sorted[k++] = g->u[i];
  memcpy(g->u, sorted, k * sizeof *sorted);
  free(sorted);
  g->results = json_array();
  g->refs = json_object();
  cli_progress_start(&g->prog, "ingest fhir (resources)");
  if (g->json)
    g->prog.tty = 0;
  ingest_all(g);
  cli_progress_end(&g->prog);
  double secs = cli_now() - g->prog.t0;
  int ok = !g->refused && !g->errors;
  if (g->json) {
    json_t *o = json_pack("{s:o,s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f},s:b}", "results",
                          g->results, "summary", "units", (json_int_t)g->n, "accepted",
                          (json_int_t)g->accepted, "duplicates", (json_int_t)g->dups, "skipped",
                          (json_int_t)g->skipped, "refused", (json_int_t)g->refused, "errors",
                          (json_int_t)g->errors, "events", (json_int_t)g->events, "appends",
                          (json_int_t)g->appends, "seconds", secs, "ok", ok);
    cli_print_json(stdout, o);
    json_decref(o);
  } else {
    json_decref(g->results);
    printf("ingested %zu units in %.2f s: %llu accepted (%llu events), %llu duplicates, %llu "
           "skipped (Provenance), %llu refused, %llu errors\n",
           g->n, secs, (unsigned long long)g->accepted, (unsigned long long)g->events,
           (unsigned long long)g->dups, (unsigned long long)g->skipped,
           (unsigned long long)g->refused, (unsigned long long)g->errors);
  }
  json_decref(g->refs);
  status = ok ? 0 : 1;
fail_units:
  for (size_t i = 0; i < g->n; i++) {
    free(g->u[i].file);
    free(g->u[i].full_url);
    json_decref(g->u[i].res);
  }
  free(g->u);
  json_decref(g->line_at);
  cli_ingest_close(g->io);
  return status;
}

static int batch_option(void *ctx, const char *arg) {
  fingest *g = ctx;
  char *end;
  long v = strtol(arg, &end, 10);
  if (*end || v < 1 || v > 10000) /* cli_ingest_parse says which value */
    return 1;
  g->batch_events = (size_t)v;
  return 0;
}

int cmd_ingest_fhir(int argc, char **argv) {
  fingest g = {.batch_events = 500};
  cli_ingest io = {0};
  int st = cli_ingest_parse(argc, argv, "ingest fhir", usage, "batch-events", batch_option, &g,
                            &io);
  if (st >= 0)
    return st;
  g.io = &io;
  g.json = io.json;
  return run(&g, io.paths, io.npaths);
}

/* clinlog fhir export|export-status|export-cancel: FHIR Bulk Data export
 * through clinlog.v1.Fhir (docs/fhir.md, "Bulk export").
 *
 * `export` kicks a job off, follows its progress (one updating line on a
 * terminal), then downloads each file of the manifest into --out DIR as
 * <n>.<Type>.ndjson, showing resources downloaded of the total. It prints
 * one line per file (type, count, path), or with --json one JSON object:
 * {"job", "transactionTime", "asOfSequence", "resources", "files": [{"type",
 * "count", "path"}]}. A job outlives the command: `export-status JOB`
 * prints its state, `export-cancel JOB` deletes it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapters/cli/cli.h"
#include "adapters/grpc/grpcutil.h"
#include "clinlog/v1/fhir.pb-c.h"

#define MAX_PARAMS 32

static int job_call(cl_client *cl, const char *what, int method, const ProtobufCMessage *req,
                    Clinlog__V1__FhirExportJob **out) {
  cl_err err;
  cl_err_clear(&err);
  ProtobufCMessage *m;
  if (cl_client_unary(cl, cl_grpc_method_path[method], req,
                      &clinlog__v1__fhir_export_job__descriptor, &m, NULL, &err) != 0)
    return cli_fail(what, &err);
  *out = (Clinlog__V1__FhirExportJob *)m;
  return 0;
}

static void print_job(const Clinlog__V1__FhirExportJob *j, int json) {
  if (json) {
    json_t *files = json_array();
    for (size_t i = 0; i < j->n_files; i++)
      json_array_append_new(files,
                            json_pack("{s:i,s:s,s:I}", "file", (int)j->files[i]->file, "type",
                                      j->files[i]->type, "count", (json_int_t)j->files[i]->count));
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:I,s:o}", "job", j->job_id, "state", j->state,
                          "progress", j->progress, "error", j->error, "asOfSequence",
                          (json_int_t)j->as_of_sequence, "files", files);
    char *s = json_dumps(o, JSON_COMPACT);
    puts(s);
    free(s);
    json_decref(o);
    return;
  }
  printf("job %s: %s", j->job_id, j->state);
  if (j->progress[0])
    printf(" (%s)", j->progress);
  if (j->error[0])
    printf(": %s", j->error);
  putchar('\n');
  for (size_t i = 0; i < j->n_files; i++)
    printf("  file %u  %-28s %llu\n", j->files[i]->file, j->files[i]->type,
           (unsigned long long)j->files[i]->count);
}

/* Downloads file f of job `id` into path; adds its lines to *done. */
static int download(cl_client *cl, const char *id, const Clinlog__V1__FhirExportFile *f,
                    const char *path, cli_progress *prog, uint64_t *done, uint64_t total) {
  FILE *out = fopen(path, "wb");
  if (out == NULL) {
    fprintf(stderr, "clinlog fhir export: %s: %s\n", path, strerror(errno));
    return 1;
  }
  Clinlog__V1__FhirExportReadRequest req = CLINLOG__V1__FHIR_EXPORT_READ_REQUEST__INIT;
  req.job_id = (char *)id;
  req.file = f->file;
  uint8_t cursor[32];
  int st = 0;
  for (;;) {
    cl_err err;
    cl_err_clear(&err);
    ProtobufCMessage *m;
    if (cl_client_unary(cl, cl_grpc_method_path[M_FHIR_EXPORT_READ], &req.base,
                        &clinlog__v1__fhir_export_chunk__descriptor, &m, NULL, &err) != 0) {
      st = cli_fail("fhir export", &err);
      break;
    }
    Clinlog__V1__FhirExportChunk *ch = (Clinlog__V1__FhirExportChunk *)m;
    if (fwrite(ch->ndjson.data, 1, ch->ndjson.len, out) != ch->ndjson.len) {
      fprintf(stderr, "clinlog fhir export: %s: %s\n", path, strerror(errno));
      st = 1;
    }
    for (size_t i = 0; i < ch->ndjson.len; i++)
      *done += ch->ndjson.data[i] == '\n';
    cli_progress_update(prog, *done, total);
    int more = ch->next_cursor.len == 32;
    if (more)
      memcpy(cursor, ch->next_cursor.data, 32);
    clinlog__v1__fhir_export_chunk__free_unpacked(ch, NULL);
    if (st || !more)
      break;
    req.cursor = (ProtobufCBinaryData){32, cursor};
  }
  if (fclose(out) != 0 && st == 0) {
    fprintf(stderr, "clinlog fhir export: %s: %s\n", path, strerror(errno));
    st = 1;
  }
  return st;
}

/* Kick-off, progress, download. */
static int run_export(cl_client *cl, const cli_fhir_export_args *a) {
  if (a->out_dir == NULL) {
    fprintf(stderr, "clinlog fhir export: --out DIR required (the NDJSON files go there)\n");
    return 2;
  }
  if (mkdir(a->out_dir, 0700) != 0 && errno != EEXIST) {
    fprintf(stderr, "clinlog fhir export: %s: %s\n", a->out_dir, strerror(errno));
    return 1;
  }
  Clinlog__V1__FhirParam store[MAX_PARAMS], *ptrs[MAX_PARAMS];
  size_t np = 0;
  for (int i = 0; i < a->nparams; i++) {
    char *eq = strchr(a->params[i], '=');
    if (eq == NULL || eq == a->params[i] || np == MAX_PARAMS) {
      fprintf(stderr, "clinlog fhir export: %s: expected NAME=VALUE (_type=, _since=)\n",
              a->params[i]);
      return 2;
    }
    *eq = '\0';
    clinlog__v1__fhir_param__init(&store[np]);
    store[np].name = a->params[i];
    store[np].value = eq + 1;
    ptrs[np] = &store[np];
    np++;
  }
  Clinlog__V1__FhirExportRequest req = CLINLOG__V1__FHIR_EXPORT_REQUEST__INIT;
  req.level = (char *)(a->group ? "group" : a->patients ? "patient" : "system");
  req.group_id = (char *)(a->group ? a->group : "");
  req.n_params = np;
  req.params = ptrs;
  req.strict = a->strict;
  Clinlog__V1__FhirExportJob *j = NULL;
  int st = job_call(cl, "fhir export", M_FHIR_EXPORT, &req.base, &j);
  if (st)
    return st;
  char id[33];
  snprintf(id, sizeof id, "%s", j->job_id);
  /* follow its progress */
  int tty = isatty(2);
  while (!strcmp(j->state, "in-progress")) {
    if (tty)
      fprintf(stderr, "\rexport %s: %-70.70s", id, j->progress);
    clinlog__v1__fhir_export_job__free_unpacked(j, NULL);
    usleep(200000);
    Clinlog__V1__FhirExportJobRequest sr = CLINLOG__V1__FHIR_EXPORT_JOB_REQUEST__INIT;
    sr.job_id = id;
    if ((st = job_call(cl, "fhir export", M_FHIR_EXPORT_STATUS, &sr.base, &j)) != 0)
      return st;
  }
  if (tty)
    fprintf(stderr, "\r%*s\r", 90, "");
  if (strcmp(j->state, "complete") != 0) {
    fprintf(stderr, "clinlog fhir export: job %s %s: %s\n", id, j->state, j->error);
    clinlog__v1__fhir_export_job__free_unpacked(j, NULL);
    return 1;
  }
  uint64_t total = 0, done = 0;
  for (size_t i = 0; i < j->n_files; i++)
    total += j->files[i]->count;
  cli_progress prog;
  cli_progress_start(&prog, "export");
  json_t *files = json_array();
  for (size_t i = 0; st == 0 && i < j->n_files; i++) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%u.%s.ndjson", a->out_dir, j->files[i]->file,
             j->files[i]->type);
    st = download(cl, id, j->files[i], path, &prog, &done, total);
    json_array_append_new(files, json_pack("{s:s,s:I,s:s}", "type", j->files[i]->type, "count",
                                           (json_int_t)j->files[i]->count, "path", path));
  }
  cli_progress_end(&prog);
  if (st == 0) {
    char tt[64] = "";
    if (j->transaction_time != NULL) {
      time_t t = (time_t)j->transaction_time->seconds;
      struct tm tm;
      gmtime_r(&t, &tm);
      strftime(tt, sizeof tt, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    if (a->json) {
      json_t *o =
          json_pack("{s:s,s:s,s:I,s:I,s:O}", "job", id, "transactionTime", tt, "asOfSequence",
                    (json_int_t)j->as_of_sequence, "resources", (json_int_t)done, "files", files);
      char *s = json_dumps(o, JSON_COMPACT);
      puts(s);
      free(s);
      json_decref(o);
    } else {
      size_t i;
      json_t *f;
      json_array_foreach(files, i, f)
          printf("%-28s %8lld  %s\n", json_string_value(json_object_get(f, "type")),
                 (long long)json_integer_value(json_object_get(f, "count")),
                 json_string_value(json_object_get(f, "path")));
      printf("job %s: %llu resources as of log sequence %llu (%s)\n", id, (unsigned long long)done,
             (unsigned long long)j->as_of_sequence, tt);
    }
  }
  json_decref(files);
  clinlog__v1__fhir_export_job__free_unpacked(j, NULL);
  return st;
}

int cli_fhir_export(cl_client *cl, const char *sub, const cli_fhir_export_args *a) {
  if (!strcmp(sub, "export"))
    return run_export(cl, a);
  if (strcmp(sub, "export-status") != 0 && strcmp(sub, "export-cancel") != 0) {
    fprintf(stderr, "clinlog fhir: unknown subcommand \"%s\"\n", sub);
    return 2;
  }
  if (a->nparams != 1) {
    fprintf(stderr, "clinlog fhir %s: JOB (the id `export` printed)\n", sub);
    return 2;
  }
  Clinlog__V1__FhirExportJobRequest req = CLINLOG__V1__FHIR_EXPORT_JOB_REQUEST__INIT;
  req.job_id = a->params[0];
  Clinlog__V1__FhirExportJob *j = NULL;
  int st =
      job_call(cl, sub, strcmp(sub, "export-cancel") ? M_FHIR_EXPORT_STATUS : M_FHIR_EXPORT_CANCEL,
               &req.base, &j);
  if (st)
    return st;
  print_job(j, a->json);
  clinlog__v1__fhir_export_job__free_unpacked(j, NULL);
  return 0;
}

/* FHIR Bulk Data export ($export, https://hl7.org/fhir/uv/bulkdata/):
 * asynchronous jobs over the `fhir` projection (fhir.h) that both faces
 * share (the REST kick-off, status and file URLs in adapters/http; the
 * clinlog.v1.Fhir Export* calls and `clinlog fhir export`).
 *
 * A job is a consistent snapshot: at kick-off it takes the log's head
 * (after reading the clock for transactionTime), waits for the views to
 * fold it, and exports every resource as it was right after that event
 * (cl_fhir_scan_snapshot), so writers appending meanwhile change nothing in
 * it. A background thread walks each requested type and cuts it into
 * files of at most `max_per_file` resources, recording each file's bounds
 * (key hashes: no identifiers) and count; the NDJSON is produced when a
 * file is read, from the sealed versions the projection already keeps, so
 * an export writes no second copy of patient data to disk and an erased
 * patient disappears from exports already made as well.
 *
 * Jobs are files under the manager's directory (<data dir>/exports/<id>.json,
 * 0600: its owner's principal id, parameters, state and file bounds,
 * nothing else). They survive a
 * restart: a finished job is served again, an unfinished one starts its
 * walk again from the beginning of the same snapshot (the result is the
 * same). A finished job is kept `keep_ms` (default 24 hours), then deleted;
 * cancel deletes it at once.
 *
 * Levels: system (every resource), patient (the resources of every patient's
 * stream: the Patient compartments; device-only resources are not in it),
 * group (the compartments of a Group's members as of the snapshot; Groups
 * are derived from coverage, group.h).
 *
 * Thread-safety: every function may be called from any thread. */
#ifndef CL_QUERY_FHIR_EXPORT_H
#define CL_QUERY_FHIR_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "query/fhir/engine.h"
#include "query/runner.h"
#include "store/log.h"

enum cl_fhir_export_level { CL_FHIR_EXPORT_SYSTEM, CL_FHIR_EXPORT_PATIENT, CL_FHIR_EXPORT_GROUP };

enum cl_fhir_export_state {
  CL_FHIR_EXPORT_RUNNING,  /* waiting for the views, or walking them */
  CL_FHIR_EXPORT_COMPLETE, /* the manifest and files are ready */
  CL_FHIR_EXPORT_FAILED    /* error says why */
};

typedef struct cl_fhir_exports_options {
  size_t max_per_file; /* resources per NDJSON file; default 100000 */
  int64_t keep_ms;     /* how long a finished job is kept; default 24 h */
} cl_fhir_exports_options;

void cl_fhir_exports_options_init(cl_fhir_exports_options *o);

typedef struct cl_fhir_exports cl_fhir_exports;

/* Opens the job directory `dir` (created 0700 if missing), loads its jobs
 * and starts the background thread. `fhir` (the fhir projection's runner)
 * and `log` are borrowed and outlive the manager. *out returned-owned
 * (cl_fhir_exports_close). Errors: CL_EIO (the directory), CL_ENOMEM. A
 * job file that cannot be read is skipped with a line on stderr. */
int cl_fhir_exports_open(const char *dir, cl_runner *fhir, cl_log *log,
                         const cl_fhir_exports_options *o, cl_fhir_exports **out, cl_err *err);
/* Stops the thread (a walk in progress stops at its next resource and
 * resumes at the next open) and frees the manager. */
void cl_fhir_exports_close(cl_fhir_exports *x);

/* A kick-off request as a face received it. */
typedef struct cl_fhir_export_req {
  int level;                /* enum cl_fhir_export_level */
  const char *group;        /* CL_FHIR_EXPORT_GROUP: the Group's id */
  const cl_fhir_kv *params; /* _type, _since, _outputFormat (borrowed) */
  size_t nparams;
  int strict;        /* Prefer: handling=strict: an unsupported parameter fails */
  const char *owner; /* the caller's principal (NULL or "": anonymous): only it may
                        see, read or cancel the job (cl_fhir_export_owned) */
} cl_fhir_export_req;

/* Validates and queues a job. id gets its id (32 hex digits). Errors:
 * CL_EINVAL (a parameter: err names it and says why), CL_ENOTFOUND (a
 * Group), CL_EUNAVAILABLE (too many jobs running: 429 on the REST face),
 * CL_EIO, CL_ENOMEM. */
int cl_fhir_export_start(cl_fhir_exports *x, const cl_fhir_export_req *rq, char id[33],
                         cl_err *err);

typedef struct cl_fhir_export_file {
  int type; /* CL_FHIR_* */
  uint64_t count;
} cl_fhir_export_file;

typedef struct cl_fhir_export_status {
  int state;                  /* enum cl_fhir_export_state */
  char progress[160];         /* RUNNING: what it is doing, for X-Progress */
  char error[256];            /* FAILED */
  int64_t transaction_ns;     /* the manifest's transactionTime */
  uint64_t as_of;             /* the snapshot's log sequence */
  char request[1024];         /* the kick-off as a relative URL ("$export?_type=...") */
  int owned;                  /* kicked off by an authenticated principal: its status and
                                 files answer that principal only (requiresAccessToken) */
  cl_fhir_export_file *files; /* COMPLETE: returned-owned (cl_fhir_export_status_clear) */
  size_t nfiles;
} cl_fhir_export_status;

void cl_fhir_export_status_clear(cl_fhir_export_status *st);

/* 0 if job `id` exists and `caller` (a principal id; NULL or "":
 * anonymous) kicked it off. The faces ask this before the calls below, so
 * one principal never sees, reads or cancels another's export (Bulk Data:
 * the status and file URLs belong to the client that requested them).
 * CL_ENOTFOUND otherwise, with the same message as for a job that does not
 * exist, so another's job id is not confirmed. */
int cl_fhir_export_owned(cl_fhir_exports *x, const char *id, const char *caller, cl_err *err);

/* A job's state. CL_ENOTFOUND: no such job (never was, cancelled, or
 * expired). */
int cl_fhir_export_get(cl_fhir_exports *x, const char *id, cl_fhir_export_status *st, cl_err *err);

/* The Bulk Data completion manifest of a finished job, with file URLs
 * "<base>/$export-file/<id>/<n>" (n from 1). *json returned-owned (free).
 * Errors: CL_ENOTFOUND, CL_EAGAIN (not finished), CL_ENOMEM. */
int cl_fhir_export_manifest(cl_fhir_exports *x, const char *id, const char *base, char **json,
                            size_t *len, cl_err *err);

/* Cancels a job (running or finished) and deletes it. CL_ENOTFOUND. */
int cl_fhir_export_cancel(cl_fhir_exports *x, const char *id, cl_err *err);

/* Reads file n (from 1) of a finished job: NDJSON lines (one resource
 * each, as the read API serves it) after `cursor` (the resource key a
 * previous call returned in next; NULL: from the start), stopping once
 * about max_bytes are gathered. *buf returned-owned (free; NULL when the
 * file has nothing more); *more is 1 if the file goes on after next.
 * Errors: CL_ENOTFOUND (job or file), CL_EAGAIN (not finished), CL_ECRYPTO,
 * CL_EIO, CL_ENOMEM. */
int cl_fhir_export_read(cl_fhir_exports *x, const char *id, uint32_t n, const uint8_t *cursor,
                        size_t max_bytes, char **buf, size_t *len, uint8_t next[32], int *more,
                        cl_err *err);

#endif

/* The `fhir` projection: FHIR R4 views of the log, every resource version
 * with the Provenance of the event that made it.
 *
 * The fold decodes each event of a patient's (or a device's) stream, maps it
 * (map.h) and stores what changed as new resource versions:
 *
 *   | family | key                                      | value                                |
 *   |--------|------------------------------------------|--------------------------------------|
 *   | cur    | type u8 || H(type/id)[32]                | the current version: version, type,  |
 *   |        |                                          | stream tag, seq, lastUpdated, and    |
 *   |        |                                          | the index keys it holds (plain:      |
 *   |        |                                          | numbers, tags and hashes only)       |
 *   | ver    | type u8 || H(type/id)[32] || version u32 | sealed: seq u64 BE || commit time ns |
 *   |        | BE                                       | i64 BE || event id[16] || the        |
 *   |        |                                          | resource JSON (meta included); a     |
 *   |        |                                          | Provenance's packed values, its JSON |
 *   |        |                                          | made when read (fhir_int.h)          |
 *   | pat    | stream tag[32] || type u8 || H[32]       | empty: a stream's resources          |
 *   | ref    | H(target type/id)[32] || H(prov)[32]     | empty: the Provenances of a resource |
 *
 * Keys of `cur` and `ver` lead with the type: the resources of a type are
 * one range of `cur` (the type index), their versions one range of `ver`,
 * in the same order, so a scan of a type (bulk export, searches across
 * patients) reads both in one pass each instead of looking each resource
 * up.
 *
 * H is cl_proj_hash (keyed): keys hold no identifiers. Resource JSON is
 * sealed under the data key of the stream the event came from, so erasing
 * a patient shreds their views; folding the StreamErased removes every key
 * of the stream's resources as well (found through `pat` and `cur`, which
 * need no decryption).
 *
 * Versions: meta.versionId counts the events that changed the resource (an
 * event that changes nothing makes no version); meta.lastUpdated is the
 * commit time of that event. Old versions stay readable (vread, history).
 *
 * Provenance: every event that changes resources gets a
 * Provenance/<event uuid> listing each version it made as a target
 * ("Observation/x/_history/2"), who recorded it (recorded_by), when it
 * happened and was committed, its signature's key id, and the log
 * coordinates an auditor needs for an RFC 9162 inclusion proof (the log
 * sequence number and the event's hash, the Merkle leaf's data): see
 * docs/fhir.md.
 *
 * Corrections: an EnteredInError makes a new version of every resource the
 * retracted event changed, with status entered-in-error; an Amended does
 * the same to the resources of the amended event that its replacement did
 * not rewrite (the replacement's own resources are already new versions). */
#ifndef CL_QUERY_FHIR_FHIR_H
#define CL_QUERY_FHIR_FHIR_H

#include <stddef.h>
#include <stdint.h>

#include "query/fhir/map.h"
#include "query/runner.h"
#include "store/hmap.h"

/* The projection definition, for cl_runner_start. */
extern const cl_projection cl_fhir_projection;

/* One resource version as served: its JSON (wire form: exact decimals) and
 * what the store knows about it. */
typedef struct cl_fhir_resource {
  char *json; /* returned-owned: cl_fhir_resource_clear */
  size_t len;
  int type;                /* CL_FHIR_* */
  uint32_t version;        /* meta.versionId */
  uint32_t current;        /* the resource's current version */
  int64_t last_updated_ns; /* meta.lastUpdated */
  uint64_t seq;            /* the event that made this version */
  uint8_t event_id[16];
  uint8_t tag[32]; /* the stream the resource belongs to (cl_log_stream_tag) */
} cl_fhir_resource;

void cl_fhir_resource_clear(cl_fhir_resource *r);

/* Flags of the reads below. */
enum {
  CL_FHIR_STORED = 1, /* json in the stored form (decimals marked, fj.h), for engines that
                         rewrite it and call fj_finish on what they send */
  CL_FHIR_NO_BODY = 2 /* no json (NULL, len 0): a version's metadata only (its header is
                         decrypted, its JSON not made); cl_fhir_scan_snapshot also decrypts
                         nothing when the current version is the one wanted (a Provenance's:
                         when the snapshot has no since_ns, and its last_updated_ns is then 0) */
};

/* Reads resource type/id: version 0 = the current one. Errors:
 * CL_ENOTFOUND (no such resource or version; also an erased one),
 * CL_ECRYPTO, CL_EIO, CL_ENOMEM. */
int cl_fhir_read(cl_proj *p, const char *type, const char *id, uint32_t version,
                 cl_fhir_resource *out, cl_err *err);
int cl_fhir_read_ex(cl_proj *p, const char *type, const char *id, uint32_t version, int flags,
                    cl_fhir_resource *out, cl_err *err);

/* Resource callback: `r` is returned-owned by the callee (clear it). Return
 * 0 to go on, 1 to stop, or a negative error. */
typedef int (*cl_fhir_fn)(void *ctx, cl_fhir_resource *r, cl_err *err);

/* Every version of type/id, newest first. Errors: as cl_fhir_read. */
int cl_fhir_history(cl_proj *p, const char *type, const char *id, int flags, cl_fhir_fn fn,
                    void *ctx, cl_err *err);

/* The current version of every resource of stream `tag` (a patient's
 * compartment: cl_log_stream_tag of "patient-<id>"), of one type (0: all),
 * in type order. */
int cl_fhir_stream(cl_proj *p, const uint8_t tag[32], int type, int flags, cl_fhir_fn fn, void *ctx,
                   cl_err *err);

/* The current version of every resource of `type`, in key order (no
 * meaning), starting after the resource whose key hash is `after` (NULL:
 * from the start); *next gets the last key given. */
int cl_fhir_scan_type(cl_proj *p, int type, const uint8_t *after, int flags, cl_fhir_fn fn,
                      void *ctx, uint8_t next[32], cl_err *err);

/* The Provenances whose targets include type/id (any version), current
 * versions. */
int cl_fhir_provenance_of(cl_proj *p, const char *type, const char *id, int flags, cl_fhir_fn fn,
                          void *ctx, cl_err *err);

/* A consistent view for bulk export: the resources as they were right
 * after event `as_of` (each one's latest version made by an event at or
 * before it; resources first made later are not there), optionally only
 * those whose that version was updated at or after `since_ns` and only
 * those of the streams in `tags` (32-byte keys; NULL: every stream).
 * Erased streams are gone from every snapshot, old ones included. */
typedef struct cl_fhir_snapshot {
  uint64_t as_of;
  int64_t since_ns; /* 0: no lower bound */
  const cl_hmap *tags;
} cl_fhir_snapshot;

/* The resources of `type` in snapshot `s`, in key order, after the one
 * whose key hash is `after` (NULL: from the start) up to and including
 * `last` (NULL: to the end). Before each call of fn, *key gets the key
 * hash of the resource given (the cursor to resume after it). */
int cl_fhir_scan_snapshot(cl_proj *p, int type, const cl_fhir_snapshot *s, const uint8_t *after,
                          const uint8_t *last, int flags, cl_fhir_fn fn, void *ctx, uint8_t key[32],
                          cl_err *err);

/* Extension URL of a Provenance entity's log coordinates (docs/fhir.md). */
#define CL_FHIR_LOG_ENTRY_EXT "https://clinlog.dev/fhir/StructureDefinition/log-entry"

#endif

/* Groups derived from the views: one Group per payer, its members the
 * patients that payer covers (a Coverage whose payor names it). This is the
 * Group of FHIR Bulk Data's Group-level export in its most common use, a
 * payer's member list (as CMS's BCDA and Da Vinci's member attribution
 * lists use it).
 *
 * A Group is not stored: it is made from the Coverage resources of a
 * snapshot (fhir.h) whenever it is asked for, so it is always what the
 * coverage says and vanishes with an erased patient.
 *
 *   id            "payer-<payer id>" when the payer's id is a valid FHIR id
 *                 of at most 58 characters, else "payer-" + 32 hex digits
 *                 of SHA-256(system "|" value)
 *   identifier    the payer's identifier
 *   type, actual  person, true
 *   name          "Members covered by <payer name or id>"
 *   managingEntity the payer (Coverage.payor)
 *   quantity      the number of members
 *   member        entity Patient/<id>, one per patient (sorted), inactive
 *                 when none of that patient's Coverages with the payer is
 *                 active
 *   meta          lastUpdated: the newest of those Coverages (no versionId:
 *                 a derived Group has no versions of its own) */
#ifndef CL_QUERY_FHIR_GROUP_H
#define CL_QUERY_FHIR_GROUP_H

#include <jansson.h>
#include <stdint.h>

#include "query/fhir/fhir.h"

/* Every Group of the snapshot as of log sequence `as_of` (UINT64_MAX: the
 * current views). *out returned-owned: an object of group id -> {"resource":
 * the Group (stored form, fj.h), "tags": {hex stream tag of each member:
 * true}, "lu": its meta.lastUpdated in ns}. Errors: CL_ECRYPTO, CL_EIO, CL_ENOMEM, CL_ECORRUPT. */
int cl_fhir_groups(cl_proj *p, uint64_t as_of, json_t **out, cl_err *err);

/* The member streams of Group `id` as of `as_of`, as a set of 32-byte tags
 * for a snapshot (cl_fhir_snapshot.tags). *tags returned-owned
 * (cl_hmap_free). CL_ENOTFOUND: no such Group. */
int cl_fhir_group_tags(cl_proj *p, uint64_t as_of, const char *id, cl_hmap **tags, cl_err *err);

#endif

/* JSON Patch (RFC 6902) over a FHIR resource, for the REST face's PATCH
 * [type]/[id] (Content-Type application/json-patch+json): the patch is
 * applied to the resource as the views serve it and the result is written
 * as an update, so every rule of an update (and of the mapping) applies.
 *
 * The patch is outside bytes: it is parsed strictly (an array of objects,
 * each with a known `op`, a `path` and what that op needs, nothing else
 * read), JSON Pointers (RFC 6901) with their ~0 and ~1 escapes, array
 * indexes without leading zeros ("-" only where an add appends). Numbers in
 * the patch keep their text (cl_fhirw_parse's marking), so `7.10` stays
 * `7.10`; a `test` compares numbers by value (RFC 6902 section 4.6).
 *
 * Operations are applied in order to a copy: the document is changed only
 * if every operation succeeds. No shared state: thread-safe. Fuzzed by
 * tests/fuzz/fuzz_fhir_patch.c. */
#ifndef CL_ADAPTERS_FHIR_FHIRW_PATCH_H
#define CL_ADAPTERS_FHIR_FHIRW_PATCH_H

#include <jansson.h>
#include <stddef.h>

#include "adapters/fhir/fhirw.h"
#include "store/err.h"

#define CL_FHIRW_PATCH_MAX_OPS 1000 /* operations in one patch */

/* Applies the JSON Patch text (n bytes, borrowed) to *doc (a resource as
 * cl_fhirw_parse made it). On success *doc is replaced by the patched
 * document (the old reference released; returned-owned: json_decref). On
 * error *doc is unchanged and fe says why: 400 structure/invalid for a
 * patch that is not one (not JSON, not an array, an unknown op, a member
 * missing or of the wrong type, a pointer that is not one), its expression
 * "patch[<i>].<member>"; 422 processing when the patch does not apply (a
 * path that is not there, an index out of range, moving a value into
 * itself, removing the whole document) or a `test` op fails (code
 * "conflict"). Errors: CL_EMALFORMED (fe), CL_ENOMEM. */
CL_MUST_CHECK int cl_fhirw_patch(json_t **doc, const char *text, size_t n, cl_fhirw_error *fe,
                                 cl_err *err);

#endif

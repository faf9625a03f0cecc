/* What the FHIR writes tests share (tests/adapters/test_fhirw.c and
 * test_fhirw_types.c); fhirw_fixture.c has the details. */
#ifndef CL_TESTS_ADAPTERS_FHIRW_FIXTURE_H
#define CL_TESTS_ADAPTERS_FHIRW_FIXTURE_H

#include <jansson.h>

#include "adapters/fhir/fhirw.h"
#include "clinlog/v1/event.pb-c.h"
#include "query/fhir/fj.h"

/* The logical ids of encounter enc-1, prescription rx-1 and order sr-1 of
 * patient p1 (set by fw_opts). */
extern char fw_enc_id[CL_FHIR_ID_MAX], fw_rx_id[CL_FHIR_ID_MAX], fw_sr_id[CL_FHIR_ID_MAX];

/* Resources the views hold besides those (logical id -> resource, as
 * cl_fhirw_parse makes it), or NULL: what the options' fetch and resolver
 * and the views' mapper (fw_views_of) also see. A test's own. */
extern json_t *fw_world;

/* Options whose resolver knows p1, enc-1, rx-1 and sr-1 (and fw_world);
 * now is 2026-01-01. */
cl_fhirw_opts fw_opts(void);
/* text parsed as cl_fhirw_parse does (it must parse); returned-owned. */
json_t *fw_parse(const char *text);
/* text mapped with fw_opts (it must map); returned-owned. */
cl_fhirw_mapped *fw_map_ok(const char *text);
/* Every resource the views derive from m's events, by logical id
 * (returned-owned). */
json_t *fw_views_of(const cl_fhirw_mapped *m);
/* The resource the views derive from m's events (returned-owned). */
json_t *fw_view_of(const cl_fhirw_mapped *m);
/* Decimals that are integers as the views write them (returns v or its
 * replacement; takes v's reference). */
json_t *fw_ints(json_t *v);
/* Asserts want and got equal (showing both if not); takes both references. */
void fw_assert_same(json_t *want, json_t *got);
/* Writes text and reads it back from the views: the same resource; the
 * same text maps to the same bytes. */
void fw_round_trip(const char *text);

/* The one event of m, which must be of type `body`, decoded
 * (returned-owned: clinlog__v1__event__free_unpacked). */
Clinlog__V1__Event *fw_only_event(const cl_fhirw_mapped *m, unsigned body);

/* text (valid JSON) mapped with o is refused: CL_EMALFORMED, nothing
 * produced; *fe and *err say how (`i` names the case in a failure). */
void fw_map_refused(const char *text, const cl_fhirw_opts *o, size_t i, cl_fhirw_error *fe,
                    cl_err *err);

/* A bad input and how it is refused. */
typedef struct fw_bad {
  const char *json;
  int status;
  const char *expression; /* FHIRPath of the element, "" for the whole */
  const char *code;       /* OperationOutcome issue.code */
} fw_bad;

/* Each case refused as it says, nothing produced, the path in the
 * OperationOutcome. */
void fw_refused_all(const fw_bad *cases, size_t n);

#endif

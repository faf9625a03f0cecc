/* Internals of the FHIR query engine (engine.h), shared by the files that
 * implement it:
 *
 *   | file     | concern                                                     |
 *   |----------|-------------------------------------------------------------|
 *   | params.c | the search-parameter table; a request's parameters parsed   |
 *   |          | into a `query` (modifiers, chains, _count, _sort, ...)      |
 *   | match.c  | FHIR dates as ranges; a parsed criterion matched against a  |
 *   |          | resource (token, date, string, reference, quantity)         |
 *   | results.c| candidates from the store (items: stored bytes, parsed on   |
 *   |          | demand), Bundle entries and Bundles assembled from bytes    |
 *   | engine.c | the interactions, sorting, cursor paging,                   |
 *   |          | _include/_revinclude, outcomes                              |
 *
 * params.c and match.c never touch the store or build a response: they work
 * on a request's strings and on resources in their stored form (decimals
 * marked, fj.h); a chained criterion asks the engine for its targets through
 * a callback (fe_chain_fn). Everything here is reentrant and keeps no state
 * but the constant parameter table. No file but these four includes this. */
#ifndef CL_QUERY_FHIR_ENGINE_INT_H
#define CL_QUERY_FHIR_ENGINE_INT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "query/fhir/engine.h"
#include "query/fhir/fhir.h"
#include "store/err.h"
#include "store/log.h"

/* The engine (engine.h): what it reads. */
struct cl_fhir_engine {
  cl_proj *p;  /* the fhir projection (borrowed) */
  cl_log *log; /* for stream tags (borrowed) */
};

/* ---- the search-parameter table (params.c) ---- */

/* A search parameter's type (FHIR R4 search parameter types). */
enum kind { K_TOKEN, K_DATE, K_STRING, K_REFERENCE, K_QUANTITY };

/* One search parameter. Entries live in a constant table: a `const pdef *`
 * stays valid for the life of the process. */
typedef struct pdef {
  const char *type; /* NULL: every type */
  const char *name;
  int kind;          /* enum kind */
  const char *paths; /* alternatives separated by '|', each a dotted path */
} pdef;

/* The parameter of `type` (or of every type) named by the first `nl` bytes
 * of `name` (borrowed; need not be NUL-terminated there); NULL if none. */
const pdef *fe_find_param(const char *type, const char *name, size_t nl);

/* The searchParam array of a CapabilityStatement resource entry for `type`:
 * a new JSON array of {name, type} (returned-owned: json_decref). */
json_t *fe_param_list(const char *type);

/* ---- a parsed search (params.c) ---- */

/* One criterion: a parameter with its modifier, chain and value. */
typedef struct crit {
  const pdef *d;
  char mod[64];   /* modifier, "" if none ("not", "text", "exact", "contains", "missing", a
                     type for references) */
  char chain[64]; /* chained parameter of a reference (subject:Patient.identifier) */
  char *value;    /* OR-list, commas unescaped later (view: the request's value) */
} crit;

/* A search request, parsed. Strings it points to are the request's
 * (borrowed: valid while the cl_fhir_req is). */
typedef struct query {
  const char *type;
  crit c[32];
  size_t nc;
  size_t count;      /* _count */
  int summary_count; /* _summary=count */
  char sort[64];     /* "", "date", "-date", "_lastUpdated", "-_lastUpdated" */
  const pdef *sort_d;
  int sort_desc;
  char elements[512]; /* _elements */
  int inc_patient;    /* _include=*:patient|subject */
  char inc_param[64];
  int rev_prov;     /* _revinclude=Provenance:target */
  char cursor[256]; /* _cursor */
  int64_t since;    /* $everything _since (ms), INT64_MIN if none */
  char types[512];  /* $everything _type */
  json_t *ignored;  /* names of ignored parameters (owned: json_decref) */
} query;

/* Why a request was refused: the engine answers it as an OperationOutcome
 * with this HTTP status, issue code and diagnostics. */
typedef struct fe_refusal {
  int status;       /* 400 */
  const char *code; /* FHIR issue type: "invalid", "not-supported", "too-costly" */
  char text[512];   /* diagnostics (may echo request bytes; not yet UTF-8 clean) */
} fe_refusal;

/* Parses the parameters of `rq` (borrowed) for a search of `type` (or, when
 * `everything`, Patient/[id]/$everything) into *q. Returns 0, or -1 with
 * *why filled when the request is refused (bad _count, unsupported _sort,
 * modifier or _include, a malformed date, under strict handling an unknown
 * parameter). Either way q->ignored is set and the caller frees it
 * (json_decref); q borrows rq's strings. */
int fe_parse_query(const cl_fhir_req *rq, const char *type, int everything, query *q,
                   fe_refusal *why);

/* Splits a comma-separated OR list (a "\," is a literal comma) in place
 * into at most `cap` values, pointers into `s`; returns how many. */
size_t fe_split_or(char *s, char **out, size_t cap);

/* ---- matching (match.c) ---- */

/* The prefix of a date or quantity value ("eq" when it has none) into
 * `out`; returns how many characters it takes (0 or 2). */
int fe_prefix_of(const char *v, char out[3]);

/* The range an element of a resource covers (a date/dateTime/instant
 * string, or a Period whose open end is unbounded), [lo, hi) in ms; 0, or
 * -1 when `v` (borrowed) is neither. */
int fe_value_range(json_t *v, int64_t *lo, int64_t *hi);

/* Every value a parameter's paths reach in `res` (borrowed): a new array
 * (returned-owned: json_decref) of borrowed references into `res`. */
json_t *fe_values_of(json_t *res, const pdef *d);

/* Does one value `val` (no OR list) of criterion `c` match `res`? Ignores
 * the chain and the :not and :missing modifiers (fe_crit_match applies
 * them). `now` (ms) is the time the ap prefix measures from. 1 or 0. */
int fe_crit_value(json_t *res, const crit *c, const char *val, int64_t now);

/* Resolves a chain for fe_crit_match: appends to `ids` the "Type/id" of
 * every resource of `type` whose parameter `param` matches `value`
 * (borrowed). 0, or -1 with *err filled. */
typedef int (*fe_chain_fn)(void *ctx, const char *type, const char *param, const char *value,
                           json_t *ids, int64_t now, cl_err *err);

/* Does criterion `c` (its whole OR list, modifiers and chain) match `res`?
 * A chained criterion calls `chain(ctx, ...)` for each of its values. 1, 0,
 * or -1 with *err filled (only when `chain` fails). */
int fe_crit_match(json_t *res, const crit *c, int64_t now, fe_chain_fn chain, void *ctx,
                  cl_err *err);

/* 0 when no resource whose stored form (fj.h; n bytes at raw) is that
 * can match criterion `c`, else 1 (it may: fe_crit_match tells). Looks
 * at the bytes alone, for a token criterion without modifier or chain:
 * a code it names must be one of the resource's strings, which its
 * stored form holds byte for byte unless JSON escapes a character of it.
 * Spares parsing the resources a code search rejects. */
int fe_crit_may_match(const char *raw, size_t n, const crit *c);

/* ---- candidates and Bundles (results.c) ---- */

/* A candidate: its stored bytes, parsed only when a criterion, a sort key,
 * _elements or an include needs the tree ($everything and lastUpdated
 * sorts never do: their keys come from the version's commit time). */
typedef struct item {
  char *raw; /* stored form (fj.h), owned */
  size_t rawlen;
  json_t *res;  /* the parsed raw, or NULL until fe_item_res */
  char key[48]; /* sort key: a date as a fixed-width number, or "" */
  char id[CL_FHIR_ID_MAX];
  int type;
  int64_t lu_ns; /* meta.lastUpdated */
} item;

/* A growing list of candidates (zero-initialized: empty). */
typedef struct items {
  item *v;
  size_t n, cap;
} items;

/* Frees x's bytes (wiped) and tree; x is then empty. */
void fe_item_clear(item *x);
/* Clears every item and frees the list; *it is then empty. */
void fe_items_free(items *it);
/* The parsed resource of x (a view owned by x), or NULL with err set
 * (CL_ECORRUPT) when its bytes are not JSON. */
json_t *fe_item_res(item *x, cl_err *err);
/* A cl_fhir_fn over an `items` list (ctx): appends r (its json taken: read
 * with CL_FHIR_STORED). Errors: CL_ENOMEM, CL_ECORRUPT (no id). */
int fe_add_item(void *ctx, cl_fhir_resource *r, cl_err *err);
/* The patient id a criterion of q names, when the search is about one
 * patient (patient=123, patient=Patient/123, subject=Patient/123), written
 * in buf (n bytes; the return points there); NULL if none. */
const char *fe_one_patient(const query *q, char *buf, size_t n);
/* Appends to it the candidates of a search of `type`: the compartment of
 * `patient` (NULL: none named) or every resource of the type; Groups are
 * derived (group.h). Errors: as cl_fhir_scan_type. */
int fe_load_candidates(cl_fhir_engine *e, const char *type, const char *patient, items *it,
                       cl_err *err);
/* An fe_chain_fn over the engine `ctx` (chained searches). */
int fe_chain_ids(void *ctx, const char *type, const char *param, const char *value, json_t *ids,
                 int64_t now, cl_err *err);

/* A Bundle entry {fullUrl, resource, search.mode (mode NULL: none)} around
 * res (borrowed; the entry holds a new reference): returned-owned. */
json_t *fe_entry_of(const cl_fhir_req *rq, json_t *res, const char *mode);

/* A growing text, the comma-separated entries of a Bundle in stored form
 * (zero-initialized: empty; oom: an allocation failed and the text is cut:
 * fe_send_bundle then answers 500). */
typedef struct fe_text {
  char *p;
  size_t n, cap;
  int oom;
} fe_text;

/* Appends a JSON value (stolen) as the next element of the list. */
void fe_add_json(fe_text *b, json_t *v);
/* An entry of resource res (stolen), as fe_entry_of makes it. */
void fe_add_entry(fe_text *b, const cl_fhir_req *rq, json_t *res, const char *mode);
/* The same entry around a resource's stored bytes (borrowed), without
 * parsing them. */
void fe_add_raw_entry(fe_text *b, const cl_fhir_req *rq, const char *type, const char *id,
                      const char *raw, size_t n, const char *mode);
/* Sends Bundle b (stolen) with the entries (consumed: freed) as its last
 * element, through fj_finish. Errors: CL_ENOMEM (rs then says 500). */
int fe_send_bundle(cl_fhir_resp *rs, json_t *b, fe_text *entries);

#endif

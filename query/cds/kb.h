/* The clinical decision-support knowledge base: what the CDS checker (a
 * later slice of query/cds) knows about drugs. Read from a line-based text
 * file (docs/cds.md is the format reference; query/cds/seed.kb, built into
 * clinlog, is a small seed, not a complete clinical product), validated
 * strictly at load: a file with one bad line is refused whole, naming the
 * line and the reason, so a server never starts on half a knowledge base.
 *
 * What it holds, and how it is keyed (everything by code, never by name):
 *
 *   | statement      | holds                                               |
 *   |----------------|-----------------------------------------------------|
 *   | ingredient     | RxNorm ingredient RxCUI (TTY IN) -> display name    |
 *   | product        | RxNorm product RxCUI (SCD/SBD) or NDC -> ingredients|
 *   | class          | name -> ingredients (NSAIDs, MAOIs, ...)            |
 *   | interaction    | ingredient-or-class x ingredient-or-class, severity,|
 *   |                | source, mechanism, management                       |
 *   | allergy-group  | name -> ingredients that cross-react                |
 *   | dose           | ingredient + route -> max single / daily dose       |
 *   | duplicate      | classes whose members duplicate each other          |
 *   | source         | key -> citation, referenced by every interaction    |
 *
 * Class rules are expanded at load: an interaction between two classes is
 * stored once for every pair of their members, so asking about two
 * ingredient sets costs one hash lookup per ingredient pair.
 *
 * Ingredients in this API are RxCUIs (uint32_t). Pointers the knowledge base
 * returns (names, texts) are views valid until cl_kb_free.
 *
 * Thread-safety: a cl_kb is immutable once parsed; any number of threads may
 * ask it at once. */
#ifndef CL_QUERY_CDS_KB_H
#define CL_QUERY_CDS_KB_H

#include <stddef.h>
#include <stdint.h>

#include "store/err.h"

#define CL_KB_RXNORM "http://www.nlm.nih.gov/research/umls/rxnorm"
#define CL_KB_NDC "http://hl7.org/fhir/sid/ndc"
#define CL_KB_FORMAT 1          /* the format version this reader takes */
#define CL_KB_MAX_PRODUCT_ING 8 /* ingredients of one product */

typedef struct cl_kb cl_kb;

/* Interaction severity, most severe highest. */
enum cl_kb_severity {
  CL_KB_MINOR = 1,
  CL_KB_MODERATE = 2,
  CL_KB_MAJOR = 3,
  CL_KB_CONTRAINDICATED = 4,
};

/* Parses knowledge-base text (len bytes, need not be NUL-terminated; `name`
 * borrowed, for messages). On success *out is returned-owned (cl_kb_free).
 * Errors: CL_EMALFORMED with err->msg "NAME: line N: reason" (a bad header
 * or format version, an unknown statement, a bad or duplicate RxCUI, NDC,
 * class, group, interaction id or source key, a reference to an ingredient,
 * class or source not declared above it, a bad severity, route, quantity or
 * unit, a line too long), CL_ETOOBIG (class rules expanding to more pairs
 * than the reader keeps), CL_ENOMEM. On error *out is untouched. */
CL_MUST_CHECK int cl_kb_parse(const char *text, size_t len, const char *name, cl_kb **out,
                              cl_err *err);
/* Reads and parses a file (`path` borrowed). Errors: as cl_kb_parse,
 * CL_EIO (cannot open or read). */
CL_MUST_CHECK int cl_kb_load(const char *path, cl_kb **out, cl_err *err);
/* The built-in seed (query/cds/seed.kb). Errors: CL_ENOMEM. */
CL_MUST_CHECK int cl_kb_seed(cl_kb **out, cl_err *err);
void cl_kb_free(cl_kb *kb);

/* The file's `version` line (view). */
const char *cl_kb_version(const cl_kb *kb);
/* The display name of an ingredient (view), NULL if the KB does not know
 * it. For people only: nothing here matches by name. */
const char *cl_kb_ingredient_name(const cl_kb *kb, uint32_t rxcui);

/* Resolves a coded medication to its ingredients. `system` is CL_KB_RXNORM
 * (code: an ingredient RxCUI, which resolves to itself, or a product RxCUI)
 * or CL_KB_NDC (code: 11 digits, or hyphenated 5-4-2, 4-4-2, 5-3-2 or
 * 5-4-1, normalized to 11 digits). Writes up to `max` RxCUIs to out[] and
 * their count to *n. Errors: CL_EINVAL (another system, a code that is not
 * an RxCUI or NDC), CL_ENOTFOUND (a code the KB does not know). */
int cl_kb_resolve(const cl_kb *kb, const char *system, const char *code, uint32_t *out, size_t max,
                  size_t *n);
/* Normalizes an NDC (forms as above) to 11 digits + NUL in out12. Returns 0
 * or CL_EINVAL. A 10-digit NDC without hyphens is ambiguous: CL_EINVAL. */
int cl_kb_ndc11(const char *ndc, char out12[12]);

/* The classes an ingredient belongs to: writes up to `max` names (views)
 * and returns how many there are. */
size_t cl_kb_classes(const cl_kb *kb, uint32_t rxcui, const char **names, size_t max);
/* 1 if the ingredient is in class `name`, else 0. */
int cl_kb_in_class(const cl_kb *kb, uint32_t rxcui, const char *name);

/* One interaction rule matched between two ingredient sets. */
typedef struct cl_kb_interaction {
  const char *id;        /* the rule's id (view) */
  int severity;          /* enum cl_kb_severity */
  uint32_t a, b;         /* the ingredients that matched: a from set A, b from set B */
  const char *mechanism; /* views */
  const char *management;
  const char *source;   /* the source key */
  const char *citation; /* the source's citation text */
} cl_kb_interaction;

/* The interaction rules between ingredient set A (a[0..na)) and set B
 * (b[0..nb)), each rule reported once however many ingredient pairs match
 * it (the first pair found is named), most severe first, then in file
 * order. An ingredient paired with itself never interacts (that is
 * duplicate therapy). Writes up to `max` to out[] and returns how many
 * rules match (may exceed max). Cannot fail. */
size_t cl_kb_interactions(const cl_kb *kb, const uint32_t *a, size_t na, const uint32_t *b,
                          size_t nb, cl_kb_interaction *out, size_t max);

/* Allergy cross-reactivity: may `rxcui` be given to a patient allergic to
 * `allergen`? `allergen` is an ingredient RxCUI in decimal, an allergy-group
 * name or a class name. Returns CL_KB_ALLERGY_NONE (no known reaction),
 * CL_KB_ALLERGY_SAME (the allergen is this ingredient),
 * CL_KB_ALLERGY_GROUP (both are in an allergy group; *via names it) or
 * CL_KB_ALLERGY_MEMBER (the allergen is a group or class the ingredient is
 * in; *via names it). `via` may be NULL. Cannot fail: an allergen the KB
 * does not know answers NONE. */
enum cl_kb_allergy {
  CL_KB_ALLERGY_NONE = 0,
  CL_KB_ALLERGY_SAME = 1,
  CL_KB_ALLERGY_GROUP = 2,
  CL_KB_ALLERGY_MEMBER = 3,
};
int cl_kb_allergy(const cl_kb *kb, uint32_t rxcui, const char *allergen, const char **via);

/* Dose limits. Units: mg, g, mcg (1 g = 1000 mg = 1,000,000 mcg). */
enum cl_kb_dose_verdict {
  CL_KB_DOSE_OK = 0,          /* at or under the limit */
  CL_KB_DOSE_OVER = 1,        /* above the limit */
  CL_KB_DOSE_NO_LIMIT = 2,    /* the KB has no such limit for this ingredient and route */
  CL_KB_DOSE_NEED_WEIGHT = 3, /* the limit is per kg and no weight was given */
};
typedef struct cl_kb_dose_result {
  int verdict;     /* enum cl_kb_dose_verdict */
  double dose_mg;  /* the dose asked about, in mg */
  double limit_mg; /* the limit that applied, in mg (per-kg limits times the weight) */
  int per_kg;      /* 1 if the limit is per kg of body weight */
} cl_kb_dose_result;

/* Converts qty `unit` (mg, g, mcg) to mg. Returns 0 or CL_EINVAL (unknown
 * unit, negative or non-finite quantity). */
int cl_kb_to_mg(double qty, const char *unit, double *mg);
/* Checks one dose of `rxcui` by `route` (oral, iv, im, sc, sublingual,
 * rectal, transdermal, inhaled, topical) against the single-dose maximum
 * (daily = 0) or a day's total against the daily maximum (daily = 1;
 * sum the day's doses with cl_kb_to_mg first). weight_kg <= 0: unknown.
 * A dose equal to the limit is OK. Errors: CL_EINVAL (unknown unit or
 * route, bad quantity); on error *res is untouched. */
int cl_kb_dose_check(const cl_kb *kb, uint32_t rxcui, const char *route, double qty,
                     const char *unit, double weight_kg, int daily, cl_kb_dose_result *res);

/* Duplicate therapy: 1 if an ingredient of A and an ingredient of B share a
 * class marked `duplicate` (*cls names the first, may be NULL), else 0. */
int cl_kb_duplicate(const cl_kb *kb, const uint32_t *a, size_t na, const uint32_t *b, size_t nb,
                    const char **cls);

/* ------------------------------------------------ remote patient monitoring
 *
 * Thresholds for device readings and device and dispenser events
 * (docs/cds.md, "Remote patient monitoring"; the checker is rpm.h):
 *
 *   | statement      | fields                                                  |
 *   |----------------|---------------------------------------------------------|
 *   | vital          | <loinc> low|high <value> <ucum unit> <severity>         |
 *   |                | source=<key> <text...>                                  |
 *   | weight-gain    | <loinc> <amount> <unit kg|g|[lb_av]> <days> <severity>  |
 *   |                | source=<key> <text...>                                  |
 *   | device-silent  | <seconds> <severity> source=<key>                       |
 *   | device-battery | <percent> <severity> source=<key>                       |
 *   | adherence      | <missed count> <days> <severity> source=<key>           |
 *   | news2          | <window seconds> <severity> source=<key>                |
 *
 * Severity is low, moderate or high (FHIR DetectedIssue severity). A vital
 * alerts strictly past its value (a reading equal to it does not); units
 * are the UCUM codes cl_kb_ucum_convert knows. Each code may have several
 * rules (glucose: level 1 and level 2 hypoglycemia); (code, direction,
 * value) is unique. device-silent, device-battery, adherence and news2
 * appear at most once each. news2 turns the NEWS2 early-warning score on
 * (rpm.h): vitals older than <window> seconds before the newest are not
 * combined; <severity> is that of the 7-or-more band (5-6 one lower, a
 * single 3 two lower, never below low). */

/* Severities of RPM rules: the values of Clinlog__V1__IssueSeverity. */
enum cl_kb_rpm_severity { CL_KB_RPM_LOW = 1, CL_KB_RPM_MODERATE = 2, CL_KB_RPM_HIGH = 3 };

typedef struct cl_kb_vital {
  const char *rule_id;  /* "vital:<loinc>:<low|high>:<value as written>" (view) */
  const char *loinc;    /* view */
  int high;             /* 1: alerts above value; 0: below */
  double value;         /* in unit */
  const char *unit;     /* UCUM (view) */
  int severity;         /* enum cl_kb_rpm_severity */
  const char *source;   /* source key (view) */
  const char *citation; /* its citation (view) */
  const char *text;     /* for the clinician (view) */
} cl_kb_vital;

typedef struct cl_kb_weight_gain {
  const char *rule_id; /* "weight-gain:<loinc>:<amount>:<days>" (view), amount as written */
  const char *loinc;
  double amount_kg; /* the gain that alerts when exceeded, in kg */
  int days;         /* over this many days */
  int severity;
  const char *source, *citation, *text;
} cl_kb_weight_gain;

enum {
  CL_KB_RPM_SILENT = 0,
  CL_KB_RPM_BATTERY = 1,
  CL_KB_RPM_ADHERENCE = 2,
  CL_KB_RPM_NEWS2 = 3,
  CL_KB_RPM_NLIMITS = 4
};

/* device-silent (value: seconds), device-battery (value: percent),
 * adherence (value: missed doses, days: the window), news2 (value: the
 * window in seconds within which vitals are combined). */
typedef struct cl_kb_rpm_limit {
  int set;             /* 0: the KB has no such rule */
  const char *rule_id; /* "device-silent:<s>", "device-battery:<pct>", "adherence:<n>:<days>", "news2:<s>" */
  double value;
  int days;
  int severity;
  const char *source, *citation;
} cl_kb_rpm_limit;

/* Every vital rule (*n of them, file order; view valid until cl_kb_free). */
const cl_kb_vital *cl_kb_vitals(const cl_kb *kb, size_t *n);
/* Every weight-gain rule (as cl_kb_vitals). */
const cl_kb_weight_gain *cl_kb_weight_gains(const cl_kb *kb, size_t *n);
/* The device-silent, device-battery, adherence or news2 rule (never NULL; .set
 * says whether the KB has one). */
const cl_kb_rpm_limit *cl_kb_rpm_limit_get(const cl_kb *kb, int which);
/* Converts v from UCUM unit `from` to `to`: mass (kg, g, [lb_av]),
 * temperature (Cel, [degF]), pressure (mm[Hg], kPa), rates (/min,
 * {beats}/min, {breaths}/min), %, and glucose mg/dL <-> mmol/L (molar mass
 * 180.16 g/mol; only when `loinc` is a glucose code: the factor is the
 * analyte's). The same unit converts to itself. Returns 0, or -1 (units of
 * different kinds, unknown, or a non-finite v). Cannot fail otherwise. */
int cl_kb_ucum_convert(double v, const char *from, const char *to, const char *loinc, double *out);

/* Counts, for tests and the server's start-up log line. */
typedef struct cl_kb_stats {
  size_t ingredients, products, classes, interactions, pairs, groups, doses, sources;
  size_t vitals, weight_gains, rpm_limits; /* rpm_limits: of device-silent, -battery, adherence, news2 */
} cl_kb_stats;
void cl_kb_get_stats(const cl_kb *kb, cl_kb_stats *st);

/* The text of the built-in seed (generated from query/cds/seed.kb). */
extern const char cl_kb_seed_text[];

#endif

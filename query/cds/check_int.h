/* The medication checker's internals (check.h), shared by the event checks
 * (check.c), the barcode checks (check_bcma.c) and the helpers
 * (check_util.c); no other module includes this. */
#ifndef CL_QUERY_CDS_CHECK_INT_H
#define CL_QUERY_CDS_CHECK_INT_H

#include <stdint.h>

#include "query/cds/check.h"
#include "query/cds/rpm.h"

#define NS_PER_S 1000000000ll
#define NS_PER_DAY (86400ll * NS_PER_S)
#define T_OPEN INT64_MAX
#define CODE_LEN 48 /* a coding kept for codes the KB cannot resolve */

typedef struct dosage {
  int has_dose;       /* a dose with a parseable value */
  double qty;         /* as written */
  char unit[16];      /* as written (UCUM "ug" kept as is) */
  const char *route;  /* KB route name (static), NULL if none or unmapped */
  char route_raw[24]; /* the route code as written, "" if none */
  double per_day;     /* administrations a day from the frequency, 0 unknown */
} dosage;

typedef struct order {
  char *id;       /* prescription_id, owned */
  uint8_t ev[16]; /* the MedicationPrescribed (or dispense) */
  uint32_t ing[CL_KB_MAX_PRODUCT_ING];
  size_t ning;         /* 0: the KB does not know the drug */
  char code[CODE_LEN]; /* "system|code" of the first coding */
  int64_t start, end;  /* end T_OPEN: open */
  int64_t disc;        /* discontinued at; T_OPEN: not */
  dosage dose;         /* Dosage[0] */
} order;

typedef struct allergy {
  char *id; /* allergy_id, owned */
  uint8_t ev[16];
  int high; /* criticality high */
  size_t n;
  char allergen[CL_CDS_MAX_ALLERGENS][64]; /* decimal RxCUI or KB group/class name */
} allergy;

typedef struct admin {
  uint32_t ing;
  double mg;
  int64_t at;
} admin;

struct cl_cds_patient {
  char *patient_id;
  char *ids[CL_CDS_MAX_IDS];
  size_t nids;
  double weight_kg;
  int64_t weight_t; /* when weight_kg was measured (0: set by a caller, or none) */
  order *orders; /* in the order applied (findings follow it) */
  size_t norder, cap_order;
  allergy *allergies;
  size_t nallergy, cap_allergy;
  admin *admins; /* oldest first */
  size_t nadmin, cap_admin;
  cl_rpm_patient *rpm; /* remote monitoring (rpm.h), owned; NULL until an RPM event */
};

/* order o is active at t for interactions (future starts count) */
static inline int order_active(const order *o, int64_t t) { return t < o->disc && t <= o->end; }

char *cds_dupstr(const char *s);
/* t + days, saturating at T_OPEN; days <= 0 gives t. */
int64_t cds_add_days(int64_t t, long long days);
/* "mg", "g", "mcg" as the KB writes them ("ug" is "mcg"), NULL otherwise. */
const char *cds_mass_unit(const char *u);
/* Dosage[0] of an order or a fill: dose, route, administrations a day. */
void cds_read_dosage(const Clinlog__V1__Dosage *d, dosage *out);
int cds_has(const uint32_t *a, size_t n, uint32_t x);
/* A Timestamp in ns; `fallback` when absent, zero or out of range. */
int64_t cds_ts(const Google__Protobuf__Timestamp *ts, int64_t fallback);
/* Resolves a CodeableConcept: the first coding the KB resolves, else 0
 * ingredients and the first coding's "system|code" in code (may be ""). */
void cds_resolve(const cl_kb *kb, const Clinlog__V1__CodeableConcept *cc, uint32_t *ing,
                 size_t *ning, char code[CODE_LEN]);
/* A plain decimal quantity (no comparator) of 0 or more: 0, else -1. */
int cds_qty(const Clinlog__V1__Quantity *q, double *v);
/* The KB route name of a route code (HL7 v2 0162, SNOMED CT), or NULL. */
const char *cds_route(const Clinlog__V1__Code *c);
/* The KB display name of an ingredient, or "RxCUI n" written to buf. */
const char *cds_ing_name(const cl_kb *kb, uint32_t rx, char buf[24]);
/* 1 if both sets are non-empty and hold the same ingredients. */
int cds_same_set(const uint32_t *a, size_t na, const uint32_t *b, size_t nb);
/* The idempotency key of a finding (check.h): BLAKE2b-256("cds1" ||
 * trigger || rule || NUL || other or 16 zero bytes), first 16 bytes. */
void cds_key(const uint8_t trigger[16], const char *rule, const uint8_t *other, uint8_t key[16]);
/* Adds a finding unless one with the same key is already in out. */
cl_cds_finding *cds_add(const cl_kb *kb, cl_cds_findings *out, int kind, int severity,
                        const char *code, const char *source, const char *rule,
                        const uint8_t trigger[16], const uint8_t *other);
/* snprintf that never leaves half a UTF-8 sequence at a truncation. */
void cds_text(char *dst, size_t cap, const char *fmt, ...) CL_PRINTF(3, 4);

#endif

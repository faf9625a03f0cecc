/* Remote patient monitoring's internals (rpm.h), shared by the checker
 * (rpm.c) and the patient state's serializer (check_state.c); no other
 * module includes this. */
#ifndef CL_QUERY_CDS_RPM_INT_H
#define CL_QUERY_CDS_RPM_INT_H

#include <stdint.h>

#include "query/cds/news2.h"
#include "query/cds/rpm.h"

#define RPM_COND_LEN 128 /* a condition key with its NUL */

typedef struct rpm_open {
  char cond[RPM_COND_LEN]; /* rule id, "battery:<dev>", "adherence:<rx>", "silent:<dev>" */
  uint8_t key[16];         /* the alert's key (the IssueDetected's event id) */
} rpm_open;

typedef struct rpm_weight {
  int64_t t; /* measured at */
  double kg;
} rpm_weight;

typedef struct rpm_device {
  char id[CL_RPM_ID_MAX];
  int64_t last;     /* last contact, ns */
  uint8_t ev[16];   /* the event of the last contact */
  int64_t deadline; /* 0: not armed */
  uint8_t wkey[16]; /* the DEVICE_SILENT finding's key while armed */
} rpm_device;

typedef struct rpm_rx {
  char id[CL_RPM_ID_MAX]; /* prescription id, else "device:<id>" */
  size_t nmiss;
  int64_t miss[CL_RPM_MAX_MISSES]; /* times of missed/skipped doses, in arrival order */
} rpm_rx;

/* NEWS2 (rpm_news2.c): each parameter's latest value and when it was
 * measured (t 0: never); the SpO2 scale the patient is documented on. */
typedef struct rpm_news2 {
  double v[CL_NEWS2_NPARAMS]; /* air or oxygen: 1 oxygen, 0 air; consciousness: ACVPU */
  int64_t t[CL_NEWS2_NPARAMS];
  uint8_t ev[CL_NEWS2_NPARAMS][16]; /* the event that gave each value */
  int scale;                        /* 1 or 2 */
  int64_t rec_t;                    /* newest value of the last score stored (0: none) */
  int8_t rec_score[CL_NEWS2_NPARAMS]; /* its component scores */
} rpm_news2;

/* The newest measurement time of a vital code seen so far: a reading
 * measured before it (late, out of order) is kept in the log and views but
 * neither opens nor closes the code's conditions, which follow the newest
 * measurement. */
typedef struct rpm_vlast {
  char loinc[24];
  int64_t t;
} rpm_vlast;

/* Every list grows on demand (rpm_grow) up to its bound in rpm.h: most
 * patients have one device and a few vital codes, so a new state is a few
 * hundred bytes, not the bounds' 23 KB. */
struct cl_rpm_patient {
  rpm_open *open; /* in the order opened */
  size_t nopen, cap_open;
  rpm_weight *w; /* in arrival order */
  size_t nw, cap_w;
  rpm_device *dev;
  size_t ndev, cap_dev;
  rpm_rx *rx;
  size_t nrx, cap_rx;
  uint64_t unconverted, untracked;
  rpm_news2 news2;
  rpm_vlast *vlast; /* in the order first seen */
  size_t nvlast, cap_vlast;
  int oom; /* a list could not grow: the state misses what it should hold */
};

/* A list's room doubled (from 4, at most max elements of `size` bytes):
 * the list, moved, and *cap updated; out of memory: the list unchanged and
 * st->oom set. */
void *rpm_grow(cl_rpm_patient *st, void *list, size_t *cap, size_t size, size_t max);
/* Room for one more element in list (n of cap used, bound max): true, or
 * false out of memory (st->oom). The caller checks the bound first. */
#define RPM_ROOM(st, list, n, cap, max)                                                            \
  ((n) < (cap) || ((list) = rpm_grow((st), (list), &(cap), sizeof *(list), (max)), (n) < (cap)))

/* The open-condition set (rpm.c), for rpm_news2.c. */
long rpm_open_find(const cl_rpm_patient *st, const char *cond);
int rpm_open_add(cl_rpm_patient *st, const char *cond, const uint8_t key[16]);
void rpm_open_close(cl_rpm_patient *st, const char *cond);
/* A plain decimal quantity, any sign: 0, else -1. */
int rpm_value_of(const Clinlog__V1__Quantity *q, double *v);

/* Takes one coded value of a reading or observation (loinc: a LOINC code,
 * or a urn:clinlog:news2 code; q or c its value) measured at t by event id
 * into the NEWS2 state; returns 1 if a parameter changed. */
int rpm_news2_take(const cl_kb *kb, cl_rpm_patient *st, const char *system, const char *code,
                   const Clinlog__V1__Quantity *q, const Clinlog__V1__Code *c, int64_t t,
                   const uint8_t id[16]);
/* A risk score from an outside model (risk.c): alerts over its threshold,
 * one open per model; trigger: event id. */
void rpm_risk_apply(const cl_kb *kb, cl_rpm_patient *st, const Clinlog__V1__RiskScoreRecorded *r,
                    const uint8_t id[16], cl_cds_findings *out);
/* Scores the fresh parameters and raises or closes the early-warning
 * alert (rpm.h); trigger: event id. */
void rpm_news2_eval(const cl_kb *kb, cl_rpm_patient *st, const uint8_t id[16],
                    cl_cds_findings *out);

#endif

/* Remote patient monitoring's internals (rpm.h), shared by the checker
 * (rpm.c) and the patient state's serializer (check_state.c); no other
 * module includes this. */
#ifndef CL_QUERY_CDS_RPM_INT_H
#define CL_QUERY_CDS_RPM_INT_H

#include <stdint.h>

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

struct cl_rpm_patient {
  rpm_open open[CL_RPM_MAX_OPEN]; /* in the order opened */
  size_t nopen;
  rpm_weight w[CL_RPM_MAX_WEIGHTS]; /* in arrival order */
  size_t nw;
  rpm_device dev[CL_RPM_MAX_DEVICES];
  size_t ndev;
  rpm_rx rx[CL_RPM_MAX_RX];
  size_t nrx;
  uint64_t unconverted, untracked;
};

#endif

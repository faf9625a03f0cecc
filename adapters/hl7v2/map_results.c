/* ORU^R01 to catalog events (map.h): one LabResultReported per OBR with a
 * LabResult per OBX, or, for a vital-signs group (OBR-4 a LOINC vital-signs
 * panel, or every OBX-3 a LOINC vital sign), one ObservationRecorded per
 * OBX. Each OBX value by its value type (OBX-2): NM and SN as Quantity (an
 * SN range or ratio as text), ST/TX/FT as text, CE/CWE/CNE as a Code, DT
 * as a "YYYY-MM-DD" text, TS/DTM as an instant; units (OBX-6), reference
 * range (OBX-7), abnormal flags (OBX-8), status (OBX-11), time (OBX-14). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/hl7v2/map_int.h"
#include "store/alloc.h"

enum { V_NONE, V_QTY, V_STR, V_CODE, V_TIME };
typedef struct oval {
  int kind;
  Clinlog__V1__Quantity *q;
  char *s;
  pb_code *k;
  pb_ts *t;
} oval;

static int sn_value(mctx *c, const cl_hl7_seg *obx, oval *v) {
  const char *cmp = hv(obx, 5, 1, 1, 1), *n1, *sep = hv(obx, 5, 1, 3, 1), *n2;
  int rc;
  if ((rc = map_nm(c, obx, 5, 1, 2, 1, &n1)) || (rc = map_nm(c, obx, 5, 1, 4, 1, &n2)))
    return rc;
  static const char *const CMP[] = {"<", ">", "<=", ">=", "=", "<>"};
  int ok = !cmp;
  for (size_t i = 0; cmp && i < sizeof CMP / sizeof CMP[0]; i++)
    ok |= !strcmp(cmp, CMP[i]);
  if (!ok)
    return map_fail(c, CL_HL7_DATA_TYPE, obx, NULL, 5, 1, 1, 1,
                    "SN comparator '%.10s' is not one of < > <= >= = <>", cmp);
  if (sep && !strchr("-+/:", *sep))
    return map_fail(c, CL_HL7_DATA_TYPE, obx, NULL, 5, 1, 3, 1,
                    "SN separator/suffix '%.10s' is not one of - + / :", sep);
  if (!n1 && !n2)
    return 0;
  if (n2 || sep || (cmp && !strcmp(cmp, "<>"))) { /* a range or ratio: text, as sent */
    v->kind = V_STR;
    v->s = map_printf(c, "%s%s%s%s", cmp ? cmp : "", n1 ? n1 : "", sep ? sep : "", n2 ? n2 : "");
    return v->s ? 0 : CL_ENOMEM;
  }
  if (!(v->q = map_alloc(c, sizeof *v->q)))
    return CL_ENOMEM;
  clinlog__v1__quantity__init(v->q);
  v->kind = V_QTY;
  v->q->value = (char *)n1;
  v->q->comparator = S(cmp && strcmp(cmp, "=") ? cmp : NULL);
  v->q->unit = S(hf(obx, 6, 1));
  v->q->unit_display = S(hf(obx, 6, 2));
  return 0;
}

static int obx_value(mctx *c, const cl_hl7_seg *obx, oval *v) {
  memset(v, 0, sizeof *v);
  const char *vt = hf(obx, 2, 1);
  int sent = cl_hl7_raw(obx, 5, 1, 0, 0).state == CL_HL7_VALUED;
  if (!vt) {
    if (sent)
      return map_fail(c, CL_HL7_REQUIRED_MISSING, obx, NULL, 2, 1, 1, 0,
                      "value type is required when OBX-5 is valued");
    return 0;
  }
  int rc = 0;
  if (!strcmp(vt, "NM")) {
    rc = map_qty(c, obx, 5, 6, &v->q);
    v->kind = v->q ? V_QTY : V_NONE;
  } else if (!strcmp(vt, "SN")) {
    rc = sn_value(c, obx, v);
  } else if (!strcmp(vt, "ST") || !strcmp(vt, "TX") || !strcmp(vt, "FT")) {
    if (sent && !(v->s = map_text(c, obx, 5)))
      return map_oom(c);
    v->kind = sent ? V_STR : V_NONE;
  } else if (!strcmp(vt, "CE") || !strcmp(vt, "CWE") || !strcmp(vt, "CNE") || !strcmp(vt, "CF")) {
    rc = map_code(c, obx, 5, 1, &v->k);
    v->kind = v->k ? V_CODE : V_NONE;
  } else if (!strcmp(vt, "DT")) {
    rc = map_date(c, obx, 5, 1, 1, 1, (const char **)&v->s);
    v->kind = v->s ? V_STR : V_NONE;
  } else if (!strcmp(vt, "TS") || !strcmp(vt, "DTM")) {
    rc = map_ts(c, obx, 5, 1, 1, 1, &v->t);
    v->kind = v->t ? V_TIME : V_NONE;
  } else {
    return map_fail(c, CL_HL7_TABLE_VALUE, obx, NULL, 2, 1, 1, 0,
                    "value type '%.10s' is not supported (NM, SN, ST, TX, FT, CE, CWE, CNE, DT, "
                    "TS, DTM)",
                    vt);
  }
  return rc;
}

/* OBX-7: "low-high", "<x", "<=x", ">x", ">=x" become bounds in OBX-6's
 * unit; the text is always kept. */
static int ranges(mctx *c, const cl_hl7_seg *obx, Clinlog__V1__ReferenceRange ***out, size_t *n) {
  *out = NULL, *n = 0;
  const char *t = hf(obx, 7, 1);
  if (!t)
    return 0;
  Clinlog__V1__ReferenceRange *r = map_alloc(c, sizeof *r);
  *out = map_alloc(c, sizeof **out);
  char *buf = map_strdup(c, t);
  if (!r || !*out || !buf)
    return CL_ENOMEM;
  clinlog__v1__reference_range__init(r);
  r->text = (char *)t;
  char *lo = NULL, *hi = NULL;
  if (buf[0] == '<')
    hi = buf + 1 + (buf[1] == '=');
  else if (buf[0] == '>')
    lo = buf + 1 + (buf[1] == '=');
  else {
    char *dash = strchr(buf + 1, '-');
    if (dash) {
      *dash = '\0';
      lo = buf, hi = dash + 1;
    }
  }
  Clinlog__V1__Quantity **bounds[2] = {&r->low, &r->high};
  char *vals[2] = {lo, hi};
  for (int i = 0; i < 2; i++) {
    char *v = vals[i];
    while (v && *v == ' ')
      v++;
    if (!v || !*v || strspn(v, "+-.0123456789") != strlen(v))
      continue;
    Clinlog__V1__Quantity *q = map_alloc(c, sizeof *q);
    if (!q)
      return CL_ENOMEM;
    clinlog__v1__quantity__init(q);
    q->value = v;
    q->unit = S(hf(obx, 6, 1));
    *bounds[i] = q;
  }
  (*out)[(*n)++] = r;
  return 0;
}

static int interpretation(mctx *c, const cl_hl7_seg *obx, pb_code ***out, size_t *n) {
  static const char *const V3[][2] = {{"L", "Low"},
                                      {"H", "High"},
                                      {"LL", "Critical low"},
                                      {"HH", "Critical high"},
                                      {"N", "Normal"},
                                      {"A", "Abnormal"},
                                      {"AA", "Critical abnormal"},
                                      {"S", "Susceptible"},
                                      {"R", "Resistant"},
                                      {"I", "Intermediate"},
                                      {"<", "Off scale low"},
                                      {">", "Off scale high"},
                                      {"POS", "Positive"},
                                      {"NEG", "Negative"},
                                      {"IND", "Indeterminate"},
                                      {"DET", "Detected"},
                                      {"ND", "Not detected"},
                                      {"U", "Significant change up"},
                                      {"D", "Significant change down"},
                                      {"HU", "Significantly high"},
                                      {"LU", "Significantly low"}};
  size_t k = cl_hl7_nreps(obx, 8);
  *out = map_alloc(c, (k ? k : 1) * sizeof **out);
  *n = 0;
  if (!*out)
    return CL_ENOMEM;
  for (unsigned r = 1; r <= k; r++) {
    const char *v = hv(obx, 8, r, 1, 1);
    if (!v)
      continue;
    const char *disp = NULL;
    for (size_t i = 0; i < sizeof V3 / sizeof V3[0] && !disp; i++)
      if (!strcmp(v, V3[i][0]))
        disp = V3[i][1];
    pb_code *code =
        map_mkcode(c,
                   disp ? "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
                        : "http://terminology.hl7.org/CodeSystem/v2-0078",
                   v, disp);
    if (!code)
      return CL_ENOMEM;
    (*out)[(*n)++] = code;
  }
  return 0;
}

static int obs_status(mctx *c, const cl_hl7_seg *obx, int *out) {
  static const struct {
    const char *v;
    int st;
  } M[] = {{"F", CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_FINAL},
           {"U", CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_FINAL},
           {"C", CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_CORRECTED},
           {"P", CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_PRELIMINARY},
           {"R", CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_PRELIMINARY},
           {"S", CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_PRELIMINARY},
           {"X", CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_CANCELLED},
           {"N", CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_CANCELLED},
           {"W", CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_ENTERED_IN_ERROR},
           {"D", CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_ENTERED_IN_ERROR},
           {"I", CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_REGISTERED},
           {"O", CLINLOG__V1__OBSERVATION_STATUS__OBSERVATION_STATUS_REGISTERED}};
  const char *v = hf(obx, 11, 1);
  if (!v)
    return map_fail(c, CL_HL7_REQUIRED_MISSING, obx, NULL, 11, 1, 1, 0,
                    "observation result status is required");
  for (size_t i = 0; i < sizeof M / sizeof M[0]; i++)
    if (!strcmp(v, M[i].v)) {
      *out = M[i].st;
      return 0;
    }
  return map_fail(c, CL_HL7_TABLE_VALUE, obx, NULL, 11, 1, 1, 0,
                  "observation result status '%.10s' is not in table 0085", v);
}

static int report_status(mctx *c, const cl_hl7_seg *obr, int *out) {
  static const struct {
    const char *v;
    int st;
  } M[] = {{"F", CLINLOG__V1__DIAGNOSTIC_REPORT_STATUS__DIAGNOSTIC_REPORT_STATUS_FINAL},
           {"C", CLINLOG__V1__DIAGNOSTIC_REPORT_STATUS__DIAGNOSTIC_REPORT_STATUS_CORRECTED},
           {"P", CLINLOG__V1__DIAGNOSTIC_REPORT_STATUS__DIAGNOSTIC_REPORT_STATUS_PRELIMINARY},
           {"R", CLINLOG__V1__DIAGNOSTIC_REPORT_STATUS__DIAGNOSTIC_REPORT_STATUS_PRELIMINARY},
           {"A", CLINLOG__V1__DIAGNOSTIC_REPORT_STATUS__DIAGNOSTIC_REPORT_STATUS_PARTIAL},
           {"X", CLINLOG__V1__DIAGNOSTIC_REPORT_STATUS__DIAGNOSTIC_REPORT_STATUS_CANCELLED},
           {"I", CLINLOG__V1__DIAGNOSTIC_REPORT_STATUS__DIAGNOSTIC_REPORT_STATUS_REGISTERED},
           {"O", CLINLOG__V1__DIAGNOSTIC_REPORT_STATUS__DIAGNOSTIC_REPORT_STATUS_REGISTERED},
           {"S", CLINLOG__V1__DIAGNOSTIC_REPORT_STATUS__DIAGNOSTIC_REPORT_STATUS_REGISTERED}};
  const char *v = hf(obr, 25, 1);
  *out = CLINLOG__V1__DIAGNOSTIC_REPORT_STATUS__DIAGNOSTIC_REPORT_STATUS_UNSPECIFIED;
  if (!v)
    return 0;
  for (size_t i = 0; i < sizeof M / sizeof M[0]; i++)
    if (!strcmp(v, M[i].v)) {
      *out = M[i].st;
      return 0;
    }
  return map_fail(c, CL_HL7_TABLE_VALUE, obr, NULL, 25, 1, 1, 0,
                  "result status '%.10s' is not in table 0123", v);
}

/* ---- report groups ---- */

#define MAX_OBX 4096 /* results in one OBR group; beyond: refused */

/* One OBR group. Its arrays hold as many OBX as the whole message has
 * (from the message's arena: a fixed MAX_OBX pair of arrays was 64 KiB
 * zeroed a message, 12 % of an MLLP connection's CPU); nte_first[k] is
 * set for k <= nobx only. */
typedef struct group {
  const cl_hl7_seg *orc, *obr;
  const cl_hl7_seg **obx;
  const cl_hl7_seg **nte_first; /* first NTE after the OBR (0) / each OBX (k) */
  size_t nobx;
} group;

/* Starts g over for the group of OBR segment `obr` (NULL: before any). */
static void group_start(group *g, const cl_hl7_seg *orc, const cl_hl7_seg *obr) {
  g->orc = orc, g->obr = obr;
  g->nobx = 0;
  g->nte_first[0] = NULL;
}

static const char *const VITALS[] = {"8867-4",  "8480-6", "8462-4",  "8310-5", "9279-1",
                                     "59408-5", "2708-6", "29463-7", "8302-2", "39156-5",
                                     "85354-9", "8478-0", "8287-5",  NULL};
static const char *const VITAL_PANELS[] = {"85353-1", "8716-3", "85354-9", NULL};

static int loinc_in(const cl_hl7_seg *s, unsigned f, const char *const *set) {
  const char *sys1 = hv(s, f, 1, 3, 1), *sys2 = hv(s, f, 1, 6, 1);
  const char *code = sys1 && !strcmp(sys1, "LN")   ? hv(s, f, 1, 1, 1)
                     : sys2 && !strcmp(sys2, "LN") ? hv(s, f, 1, 4, 1)
                                                   : NULL;
  for (; code && *set; set++)
    if (!strcmp(code, *set))
      return 1;
  return 0;
}

static int is_vitals(const group *g) {
  if (g->obr && loinc_in(g->obr, 4, VITAL_PANELS))
    return 1;
  for (size_t i = 0; i < g->nobx; i++)
    if (!loinc_in(g->obx[i], 3, VITALS))
      return 0;
  return g->nobx > 0;
}

/* Texts of the NTE run starting at segment `first` (NTE-3, repetitions joined). */
static int notes(mctx *c, const cl_hl7_seg *first, char ***out, size_t *n) {
  *out = NULL, *n = 0;
  if (!first)
    return 0;
  size_t k = 0;
  for (size_t i = first->index;
       i <= cl_hl7_nsegments(c->m) && map_is(cl_hl7_segment_at(c->m, i), "NTE"); i++)
    k++;
  if (!(*out = map_alloc(c, k * sizeof **out)))
    return CL_ENOMEM;
  for (size_t i = 0; i < k; i++) {
    char *t = map_text(c, cl_hl7_segment_at(c->m, first->index + i), 3);
    if (!t)
      return map_oom(c);
    (*out)[(*n)++] = t;
  }
  return 0;
}

/* Sets the `value` oneof of a LabResult or an ObservationRecorded (same
 * member names, other field numbers) from v, through the descriptor. */
static void set_value(ProtobufCMessage *m, const oval *v) {
  static const char *const NAMES[] = {NULL, "quantity", "string_value", "code_value",
                                      "datetime_value"};
  if (v->kind == V_NONE)
    return;
  const ProtobufCFieldDescriptor *fd =
      protobuf_c_message_descriptor_get_field_by_name(m->descriptor, NAMES[v->kind]);
  void *p = v->kind == V_QTY    ? (void *)v->q
            : v->kind == V_STR  ? (void *)v->s
            : v->kind == V_CODE ? (void *)v->k
                                : (void *)v->t;
  uint32_t which = fd->id;
  memcpy((char *)m + fd->offset, &p, sizeof p);
  memcpy((char *)m + fd->quantifier_offset, &which, sizeof which);
}

static const char *report_id(const group *g) {
  const char *ids[] = {hf(g->obr, 3, 1), hf(g->obr, 2, 1), hf(g->orc, 3, 1), hf(g->orc, 2, 1)};
  for (size_t i = 0; i < 4; i++)
    if (ids[i])
      return ids[i];
  return NULL;
}

static int lab_result(mctx *c, const group *g, size_t i, const char *rid,
                      Clinlog__V1__LabResult **out) {
  const cl_hl7_seg *obx = g->obx[i];
  Clinlog__V1__LabResult *r = map_alloc(c, sizeof *r);
  if (!r)
    return CL_ENOMEM;
  clinlog__v1__lab_result__init(r);
  oval v;
  int rc;
  if ((rc = map_cwe(c, obx, 3, 1, &r->code)) || (rc = obx_value(c, obx, &v)) ||
      (rc = ranges(c, obx, &r->reference_range, &r->n_reference_range)) ||
      (rc = interpretation(c, obx, &r->interpretation, &r->n_interpretation)) ||
      (rc = obs_status(c, obx, (int *)&r->status)) ||
      (rc = map_ts(c, obx, 14, 1, 1, 1, &r->effective)) ||
      (rc = map_code(c, obx, 17, 1, &r->method)) || (rc = map_xon(c, obx, 23, 1, &r->performer)) ||
      (rc = notes(c, g->nte_first[i + 1], &r->notes, &r->n_notes)))
    return rc;
  if (!r->code)
    return map_fail(c, CL_HL7_REQUIRED_MISSING, obx, NULL, 3, 1, 1, 0,
                    "observation identifier is required");
  set_value(&r->base, &v);
  r->observation_id = map_printf(c, "%s-%zu", rid, i + 1);
  r->set_id = S(hf(obx, 1, 1));
  r->sub_id = S(hf(obx, 4, 1));
  *out = r;
  return r->observation_id ? 0 : CL_ENOMEM;
}

static int lab_report(mctx *c, const group *g, const char *rid) {
  Clinlog__V1__LabResultReported *b = map_alloc(c, sizeof *b);
  if (!b || !(b->results = map_alloc(c, (g->nobx ? g->nobx : 1) * sizeof *b->results)))
    return CL_ENOMEM;
  Clinlog__V1__LabResult **res = b->results;
  clinlog__v1__lab_result_reported__init(b);
  b->results = res;
  b->report_id = (char *)rid;
  int rc;
  if ((rc = map_cwe(c, g->obr, 4, 1, &b->code)) ||
      (rc = report_status(c, g->obr, (int *)&b->status)) ||
      (rc = map_ei(c, g->obr, 2, 1, &b->placer_order_number)) ||
      (!b->placer_order_number && (rc = map_ei(c, g->orc, 2, 1, &b->placer_order_number))) ||
      (rc = map_ei(c, g->obr, 3, 1, &b->filler_order_number)) ||
      (!b->filler_order_number && (rc = map_ei(c, g->orc, 3, 1, &b->filler_order_number))) ||
      (rc = map_ts(c, g->obr, 7, 1, 1, 1, &b->effective)) ||
      (rc = map_ts(c, g->obr, 22, 1, 1, 1, &b->issued)) ||
      (rc = map_xcn(c, g->obr, 16, 1, &b->ordering_provider)) ||
      (rc = map_table_code(c, g->obr, 24, "0074", &b->category)) ||
      (rc = notes(c, g->nte_first[0], &b->notes, &b->n_notes)))
    return rc;
  for (size_t i = 0; i < g->nobx; i++)
    if ((rc = lab_result(c, g, i, rid, &b->results[b->n_results++])))
      return rc;
  b->order_id = S(b->placer_order_number ? b->placer_order_number->value : NULL);
  b->encounter_id = S(c->encounter_id);
  return map_emit(c, b->effective ? b->effective : b->issued,
                  CLINLOG__V1__EVENT__BODY_LAB_RESULT_REPORTED, b);
}

static int vital(mctx *c, const group *g, size_t i, const char *rid) {
  const cl_hl7_seg *obx = g->obx[i];
  Clinlog__V1__ObservationRecorded *b = map_alloc(c, sizeof *b);
  pb_code **cat = map_alloc(c, sizeof *cat);
  if (!b || !cat)
    return CL_ENOMEM;
  clinlog__v1__observation_recorded__init(b);
  oval v;
  int rc;
  char **nv;
  size_t nn;
  if ((rc = map_cwe(c, obx, 3, 1, &b->code)) || (rc = obx_value(c, obx, &v)) ||
      (rc = ranges(c, obx, &b->reference_range, &b->n_reference_range)) ||
      (rc = interpretation(c, obx, &b->interpretation, &b->n_interpretation)) ||
      (rc = obs_status(c, obx, (int *)&b->status)) ||
      (rc = map_ts(c, obx, 14, 1, 1, 1, &b->effective)) ||
      (!b->effective && (rc = map_ts(c, g->obr, 7, 1, 1, 1, &b->effective))) ||
      (rc = map_code(c, obx, 17, 1, &b->method)) || (rc = map_code(c, obx, 20, 1, &b->body_site)) ||
      (rc = notes(c, g->nte_first[i + 1], &nv, &nn)))
    return rc;
  if (!b->code)
    return map_fail(c, CL_HL7_REQUIRED_MISSING, obx, NULL, 3, 1, 1, 0,
                    "observation identifier is required");
  size_t np = cl_hl7_nreps(obx, 16);
  if (!(b->performers = map_alloc(c, (np ? np : 1) * sizeof *b->performers)))
    return CL_ENOMEM;
  for (unsigned r = 1; r <= np; r++) {
    if ((rc = map_xcn(c, obx, 16, r, &b->performers[b->n_performers])))
      return rc;
    b->n_performers += b->performers[b->n_performers] != NULL;
  }
  set_value(&b->base, &v);
  if (!(cat[0] = map_mkcode(c, "http://terminology.hl7.org/CodeSystem/observation-category",
                            "vital-signs", "Vital Signs")))
    return CL_ENOMEM;
  b->category = cat;
  b->n_category = 1;
  b->observation_id = map_printf(c, "%s-%zu", rid, i + 1);
  b->encounter_id = S(c->encounter_id);
  b->note = S(nn ? nv[0] : NULL);
  if (!b->observation_id)
    return CL_ENOMEM;
  return map_emit(c, b->effective, CLINLOG__V1__EVENT__BODY_OBSERVATION_RECORDED, b);
}

static int group_done(mctx *c, group *g) {
  if (!g->obr && !g->nobx)
    return 0;
  if (!g->obr)
    return map_fail(c, CL_HL7_SEGMENT_SEQUENCE, g->obx[0], NULL, 0, 0, 0, 0, "OBX before any OBR");
  const char *rid = report_id(g);
  if (!rid)
    return map_fail(c, CL_HL7_REQUIRED_MISSING, g->obr, NULL, 3, 1, 1, 0,
                    "the report needs a filler (OBR-3) or placer (OBR-2) order number");
  if (!is_vitals(g))
    return lab_report(c, g, rid);
  for (size_t i = 0; i < g->nobx; i++) {
    int rc = vital(c, g, i, rid);
    if (rc)
      return rc;
  }
  return 0;
}

int map_oru(mctx *c) {
  size_t cap = cl_hl7_count(c->m, "OBX");
  if (cap > MAX_OBX)
    cap = MAX_OBX;
  group grp = {.obx = map_alloc(c, cap * sizeof *grp.obx),
               .nte_first = map_alloc(c, (cap + 1) * sizeof *grp.nte_first)};
  if (!grp.obx || !grp.nte_first)
    return CL_ENOMEM; /* map_alloc said why */
  group *g = &grp;
  group_start(g, NULL, NULL);
  int rc = 0;
  const cl_hl7_seg *orc = NULL;
  for (size_t i = 1; i <= cl_hl7_nsegments(c->m) && !rc; i++) {
    const cl_hl7_seg *s = cl_hl7_segment_at(c->m, i), *prev = cl_hl7_segment_at(c->m, i - 1);
    if (map_is(s, "ORC")) {
      orc = s;
    } else if (map_is(s, "OBR")) {
      rc = group_done(c, g);
      group_start(g, orc, s);
    } else if (map_is(s, "OBX")) {
      if (g->nobx == MAX_OBX)
        rc = map_fail(c, CL_HL7_SEGMENT_SEQUENCE, s, NULL, 0, 0, 0, 0,
                      "more than %d OBX in one report", MAX_OBX);
      else
        g->obx[g->nobx++] = s, g->nte_first[g->nobx] = NULL;
    } else if (map_is(s, "NTE") && prev && !map_is(prev, "NTE") && (g->obr || g->nobx)) {
      g->nte_first[g->nobx] = s;
    }
  }
  if (!rc)
    rc = group_done(c, g);
  if (!rc && !cl_hl7_count(c->m, "OBR"))
    rc = map_fail(c, CL_HL7_SEGMENT_SEQUENCE, NULL, "OBR", 0, 0, 0, 0,
                  "ORU^R01 needs an OBR segment");
  return rc;
}

/* Read access to a parsed HL7 v2 message (hl7.h): navigation by segment,
 * field, repetition, component and subcomponent, and HL7 location strings.
 * Every function here is a pure read of the immutable tree. */
#include <stdlib.h>
#include <string.h>

#include "adapters/hl7v2/hl7_int.h"

const cl_hl7_header *cl_hl7_header_of(const cl_hl7_msg *m) { return &m->hdr; }

size_t cl_hl7_nsegments(const cl_hl7_msg *m) { return m->nsegs; }

const cl_hl7_seg *cl_hl7_segment_at(const cl_hl7_msg *m, size_t index) {
  return index >= 1 && index <= m->nsegs ? &m->segs[index - 1] : NULL;
}

static int same_id(const cl_hl7_seg *s, const char *id) {
  return strlen(id) == 3 && memcmp(s->id, id, 3) == 0;
}

const cl_hl7_seg *cl_hl7_segment(const cl_hl7_msg *m, const char *id, size_t occ) {
  for (uint32_t i = 0; i < m->nsegs && occ > 0; i++)
    if (same_id(&m->segs[i], id) && --occ == 0)
      return &m->segs[i];
  return NULL;
}

size_t cl_hl7_count(const cl_hl7_msg *m, const char *id) {
  size_t k = 0;
  for (uint32_t i = 0; i < m->nsegs; i++)
    k += same_id(&m->segs[i], id);
  return k;
}

const char *cl_hl7_seg_id(const cl_hl7_seg *s) { return s->id; }

/* The node at a path of 1-based positions below a segment; depth 1 is a
 * field, 2 a repetition, 3 a component, 4 a subcomponent. NULL if absent. */
static const hl7_node *node(const cl_hl7_seg *s, const unsigned *pos, int depth) {
  if (!s)
    return NULL;
  const hl7_node *n = &s->node;
  for (int i = 0; i < depth; i++) {
    if (pos[i] == 0 || pos[i] > n->nkids)
      return NULL;
    n = &n->kids[pos[i] - 1];
  }
  return n;
}

size_t cl_hl7_nfields(const cl_hl7_seg *s) { return s ? s->node.nkids : 0; }

size_t cl_hl7_nreps(const cl_hl7_seg *s, unsigned field) {
  const hl7_node *n = node(s, (unsigned[]){field}, 1);
  return n ? n->nkids : 0;
}

size_t cl_hl7_ncomps(const cl_hl7_seg *s, unsigned field, unsigned rep) {
  const hl7_node *n = node(s, (unsigned[]){field, rep}, 2);
  return n ? n->nkids : 0;
}

size_t cl_hl7_nsubs(const cl_hl7_seg *s, unsigned field, unsigned rep, unsigned comp) {
  const hl7_node *n = node(s, (unsigned[]){field, rep, comp}, 3);
  return n ? n->nkids : 0;
}

static const cl_hl7_value absent = {"", 0, CL_HL7_ABSENT};

cl_hl7_value cl_hl7_get(const cl_hl7_seg *s, unsigned field, unsigned rep, unsigned comp,
                        unsigned sub) {
  const hl7_node *n = node(s, (unsigned[]){field, rep, comp, sub}, 4);
  if (!n)
    return absent;
  return (cl_hl7_value){n->val ? n->val : "", n->vallen, n->state};
}

cl_hl7_value cl_hl7_raw(const cl_hl7_seg *s, unsigned field, unsigned rep, unsigned comp,
                        unsigned sub) {
  int depth = comp == 0 ? 2 : sub == 0 ? 3 : 4;
  const hl7_node *n = node(s, (unsigned[]){field, rep, comp, sub}, depth);
  if (!n)
    return absent;
  return (cl_hl7_value){n->raw, n->rawlen, n->rawlen ? CL_HL7_VALUED : CL_HL7_EMPTY};
}

/* Reads a decimal position of 1..99999 at *p; 0 if there is none. */
static unsigned number(const char **p) {
  unsigned v = 0;
  int digits = 0;
  while (**p >= '0' && **p <= '9' && digits < 6) {
    v = v * 10 + (unsigned)(**p - '0');
    (*p)++;
    digits++;
  }
  return digits && digits < 6 ? v : 0;
}

/* "[n]" at *p, or 1 when there is no bracket; 0 when malformed. */
static unsigned bracket(const char **p) {
  if (**p != '[')
    return 1;
  (*p)++;
  unsigned v = number(p);
  if (**p != ']')
    return 0;
  (*p)++;
  return v;
}

cl_hl7_value cl_hl7_path(const cl_hl7_msg *m, const char *path) {
  if (!m || !path || strlen(path) < 5)
    return absent;
  char id[4] = {path[0], path[1], path[2], 0};
  const char *p = path + 3;
  unsigned occ = bracket(&p);
  if (occ == 0 || *p++ != '-')
    return absent;
  unsigned field = number(&p), rep = bracket(&p), comp = 1, sub = 1;
  if (*p == '.') {
    p++;
    comp = number(&p);
    if (*p == '.') {
      p++;
      sub = number(&p);
    }
  }
  if (*p != '\0')
    return absent;
  return cl_hl7_get(cl_hl7_segment(m, id, occ), field, rep, comp, sub);
}

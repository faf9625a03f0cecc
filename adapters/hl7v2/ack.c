/* The ACK builder (ack.h). Writes into one growing buffer (hl7_buf) and
 * checks for running out of memory once at the end; echoed MSH values are
 * copied raw (they are already escaped with the same encoding characters),
 * everything the builder composes goes through hl7_buf_escaped. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "adapters/hl7v2/ack.h"
#include "adapters/hl7v2/hl7_int.h"
#include "store/alloc.h"

static const cl_hl7_enc default_enc = {'|', '^', '~', '\\', '&', 0};

/* The whole raw field f of MSH (all repetitions), or nothing. */
static void echo(hl7_buf *b, const cl_hl7_seg *msh, unsigned f) {
  if (msh && f <= msh->node.nkids)
    hl7_buf_put(b, msh->node.kids[f - 1].raw, msh->node.kids[f - 1].rawlen);
}

static void num(hl7_buf *b, uint32_t v) {
  char t[16];
  if (v) {
    snprintf(t, sizeof t, "%u", v);
    hl7_buf_puts(b, t);
  }
}

static int old_version(const char *v) {
  return strcmp(v, "2.3") == 0 || strcmp(v, "2.3.1") == 0 || strcmp(v, "2.4") == 0;
}

/* ERR-2 (v2.5+): seg^seq^field^rep^comp^sub without trailing empties. */
static void location(hl7_buf *b, const cl_hl7_enc *enc, const cl_hl7_error *e) {
  if (!e->segment[0])
    return;
  uint32_t pos[5] = {e->seg_seq, e->field, e->rep, e->comp, e->sub};
  int last = 0;
  for (int i = 0; i < 5; i++)
    if (pos[i])
      last = i;
  hl7_buf_escaped(b, enc, e->segment, strlen(e->segment));
  for (int i = 0; i <= last; i++) {
    hl7_buf_putc(b, enc->comp);
    num(b, pos[i]);
  }
}

static void err_segment(hl7_buf *b, const cl_hl7_enc *enc, const char *version,
                        const cl_hl7_error *e) {
  char code[16];
  snprintf(code, sizeof code, "%d", e->code);
  const char *text = cl_hl7_code_text(e->code);
  char f = enc->field;
  hl7_buf_puts(b, "ERR");
  hl7_buf_putc(b, f);
  if (old_version(version)) { /* ERR-1 ELD: seg^seq^field^code&text&HL70357 */
    hl7_buf_escaped(b, enc, e->segment, strlen(e->segment));
    hl7_buf_putc(b, enc->comp);
    num(b, e->seg_seq);
    hl7_buf_putc(b, enc->comp);
    num(b, e->field);
    hl7_buf_putc(b, enc->comp);
    hl7_buf_puts(b, code);
    hl7_buf_putc(b, enc->sub);
    hl7_buf_escaped(b, enc, text, strlen(text));
    hl7_buf_putc(b, enc->sub);
    hl7_buf_puts(b, "HL70357");
  } else {
    hl7_buf_putc(b, f); /* ERR-1 (backward compatibility) left empty */
    location(b, enc, e);
    hl7_buf_putc(b, f);
    hl7_buf_puts(b, code);
    hl7_buf_putc(b, enc->comp);
    hl7_buf_escaped(b, enc, text, strlen(text));
    hl7_buf_putc(b, enc->comp);
    hl7_buf_puts(b, "HL70357");
    hl7_buf_putc(b, f);
    hl7_buf_putc(b, 'E');       /* ERR-4 severity */
    for (int i = 0; i < 4; i++) /* ERR-5..7 empty, ERR-8 user message */
      hl7_buf_putc(b, f);
    hl7_buf_escaped(b, enc, e->reason, strlen(e->reason));
  }
  hl7_buf_putc(b, '\r');
}

/* m: the message or its salvaged MSH, NULL for defaults. */
static int build(const cl_hl7_msg *m, const cl_hl7_error *e, const cl_hl7_ack_params *ap,
                 char **out, size_t *n, cl_err *err) {
  if (!ap || !ap->control_id || !ap->control_id[0] || !out || !n)
    return cl_err_set(err, CL_EINVAL, "hl7 ack: control id and output are required");
  if (e && e->code == 0)
    e = NULL;
  const cl_hl7_seg *msh = m ? cl_hl7_segment_at(m, 1) : NULL;
  const cl_hl7_header *h = m ? cl_hl7_header_of(m) : NULL;
  const cl_hl7_enc *enc = h ? &h->enc : &default_enc;
  const char *code = ap->ack_code;
  if (!code)
    code = !e                                                                                ? "AA"
           : (!m || e->code >= 200 || (e->seg_index == 1 && strcmp(e->segment, "MSH") == 0)) ? "AR"
                                                                                             : "AE";
  if (strcmp(code, "AA") != 0 && strcmp(code, "AE") != 0 && strcmp(code, "AR") != 0)
    return cl_err_set(err, CL_EINVAL, "hl7 ack: acknowledgement code must be AA, AE or AR");
  const char *version = h && hl7_version_supported(h->version, strlen(h->version)) ? h->version
                        : ap->default_version ? ap->default_version
                                              : "2.5.1";
  char now[32];
  const char *ts = ap->timestamp;
  if (!ts) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(now, sizeof now, "%Y%m%d%H%M%S+0000", &tm);
    ts = now;
  }
  char f = enc->field;
  hl7_buf b = {0};
  /* MSH */
  hl7_buf_puts(&b, "MSH");
  hl7_buf_putc(&b, f);
  char encs[5] = {enc->comp, enc->rep, enc->esc, enc->sub, enc->trunc};
  hl7_buf_put(&b, encs, enc->trunc ? 5 : 4);
  static const unsigned swap[] = {5, 6, 3, 4};
  for (int i = 0; i < 4; i++) {
    hl7_buf_putc(&b, f);
    echo(&b, msh, swap[i]);
  }
  hl7_buf_putc(&b, f);
  hl7_buf_escaped(&b, enc, ts, strlen(ts));
  hl7_buf_putc(&b, f);
  hl7_buf_putc(&b, f);
  hl7_buf_puts(&b, "ACK");
  if (h && h->trigger[0]) {
    hl7_buf_putc(&b, enc->comp);
    hl7_buf_escaped(&b, enc, h->trigger, strlen(h->trigger));
    if (strcmp(version, "2.3") != 0) {
      hl7_buf_putc(&b, enc->comp);
      hl7_buf_puts(&b, "ACK");
    }
  }
  hl7_buf_putc(&b, f);
  hl7_buf_escaped(&b, enc, ap->control_id, strlen(ap->control_id));
  hl7_buf_putc(&b, f);
  if (h && h->processing_id[0])
    echo(&b, msh, 11);
  else
    hl7_buf_putc(&b, 'P');
  hl7_buf_putc(&b, f);
  hl7_buf_escaped(&b, enc, version, strlen(version));
  if (h && h->charset[0] && hl7_charset_of(h->charset, strlen(h->charset)) >= 0) {
    for (int i = 12; i < 18; i++)
      hl7_buf_putc(&b, f);
    echo(&b, msh, 18);
  }
  hl7_buf_putc(&b, '\r');
  /* MSA */
  hl7_buf_puts(&b, "MSA");
  hl7_buf_putc(&b, f);
  hl7_buf_puts(&b, code);
  hl7_buf_putc(&b, f);
  if (h)
    echo(&b, msh, 10);
  if (e && old_version(version)) {
    hl7_buf_putc(&b, f);
    hl7_buf_escaped(&b, enc, e->reason, strlen(e->reason));
  }
  hl7_buf_putc(&b, '\r');
  if (e)
    err_segment(&b, enc, version, e);
  if (b.oom) {
    cl_free(b.p);
    return cl_err_set(err, CL_ENOMEM, "hl7 ack: out of memory");
  }
  *out = b.p;
  *n = b.n;
  return 0;
}

int cl_hl7_ack(const cl_hl7_msg *m, const cl_hl7_error *e, const cl_hl7_ack_params *ap, char **out,
               size_t *n, cl_err *err) {
  if (!m)
    return cl_err_set(err, CL_EINVAL, "hl7 ack: no message");
  return build(m, e, ap, out, n, err);
}

int cl_hl7_ack_raw(const uint8_t *p, size_t n, const cl_hl7_error *e, const cl_hl7_ack_params *ap,
                   char **out, size_t *outn, cl_err *err) {
  if (!e)
    return cl_err_set(err, CL_EINVAL, "hl7 ack: an error is required");
  cl_hl7_msg *m = NULL;
  cl_err ignored;
  int rc = cl_hl7_parse_msh(p, n, NULL, &m, &ignored);
  if (rc == CL_ENOMEM)
    return cl_err_set(err, CL_ENOMEM, "hl7 ack: out of memory");
  rc = build(rc == 0 ? m : NULL, e, ap, out, outn, err);
  cl_hl7_free(m);
  return rc;
}

/* adapters/hl7v2 parser: malformed input is refused with the precise
 * location (segment, segment index, field, byte offset) and the HL7 table
 * 0357 code the ACK will carry; nothing crashes on bad bytes. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/hl7v2/ack.h"
#include "adapters/hl7v2/hl7.h"
#include "hl7v2_fixture.h"
#include "store/alloc.h"

TestSuite(hl7v2_errors, .timeout = 60);

#define MSH25 "MSH|^~\\&|A|B|C|D|20261204||ADT^A01|C1|P|2.5\r"

static size_t at(const char *s, const char *needle) {
  const char *p = strstr(s, needle);
  cr_assert_not_null(p, "%s not in input", needle);
  return (size_t)(p - s);
}

static void refused(const char *s, int rc, cl_hl7_error *e) {
  hl7t_refused(s, strlen(s), NULL, rc, e);
}

/* One refusal: input, table 0357 code, segment, segment index, field,
 * component, and where: the offset of `needle` plus `add` (or `add` alone
 * without a needle, or the input's length when add is END); `reason` must
 * occur in the reason (NULL: any). */
#define END ((size_t)-1)
typedef struct refusal {
  const char *in;
  int code;
  const char *seg;
  uint32_t seg_index, field, comp;
  const char *needle;
  size_t add;
  const char *reason;
} refusal;

#define MSHV "MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|"
static const refusal refusals[] = {
    /* missing MSH */
    {"PID|1||123\r", 100, "MSH", 1, 0, 0, NULL, 0, "does not start with MSH"},
    {"", 100, "", 0, 0, 0, NULL, 0, "no segments"},
    {"\r\n\r\n", 100, "", 0, 0, 0, NULL, 0, "no segments"},
    {"MS", 100, "MSH", 1, 0, 0, NULL, 0, "does not start with MSH"},
    /* bad encoding characters */
    {"MSH|^~\\|A|B\r", 102, "MSH", 1, 2, 0, NULL, 4, "must be 4"},
    {"MSH|^^\\&|A|B\r", 102, "MSH", 1, 2, 0, NULL, 5, "character 2"},
    {"MSH|^~|&|A|B\r", 102, "MSH", 1, 2, 0, NULL, 4, "must be 4"},
    {"MSH|^~\\A|A|B\r", 102, "MSH", 1, 2, 0, NULL, 7, "character 4"},
    {"MSHA^~\\&A\r", 102, "MSH", 1, 1, 0, NULL, 3, "field separator"},
    {"MSH", 102, "MSH", 1, 1, 0, NULL, 3, "field separator"},
    {"MSH|^~\\&#!|A\r", 102, "MSH", 1, 2, 0, NULL, 4, "must be 4"},
    /* truncated */
    {"MSH|^~\\&|SEND|FAC|RCV|RFAC|2026", 101, "MSH", 1, 12, 1, NULL, END, "MSH-12"},
    {MSH25 "PID|1||7||O\\F", 102, "PID", 2, 5, 1, "\\F", 0, "unterminated"},
    /* required MSH fields, table 0103 */
    {"MSH|^~\\&|A|B|C|D|1||ADT^A01||P|2.5\r", 101, "MSH", 1, 10, 1, "||P", 1, "control id"},
    {"MSH|^~\\&|A|B|C|D|1||ADT|1|P|2.5\r", 101, "MSH", 1, 9, 2, "ADT", 0, "MSH-9.2"},
    {"MSH|^~\\&|A|B|C|D|1|||1|P|2.5\r", 101, "MSH", 1, 9, 1, "||1|P", 1, "message type"},
    {MSHV "2.5\r", 0, NULL, 0, 0, 0, NULL, 0, NULL}, /* (the reference: accepted) */
    {"MSH|^~\\&|A|B|C|D|1||ADT^A01|1|X|2.5\r", 103, "MSH", 1, 11, 1, "X|", 0, "table 0103"},
    {"MSH|^~\\&|A|B|C|D|1||ADT^A01|1||2.5\r", 101, "MSH", 1, 11, 1, "||2.5", 1, "processing id"},
    /* versions */
    {MSHV "2.9\rPID|1\r", 203, "MSH", 1, 12, 1, "2.9", 0, "unsupported version '2.9'"},
    {MSHV "2.2\r", 203, "MSH", 1, 12, 1, "2.2", 0, "'2.2'"},
    {MSHV "\r", 101, "MSH", 1, 12, 1, "\r", 0, "version id"},
    /* character sets */
    {MSHV "2.5||||||ISO IR87\rPID|1\r", 103, "MSH", 1, 18, 0, "ISO", 0, "character set"},
    {MSHV "2.5\rPID|1||7||Jos\xE9\r", 103, "MSH", 1, 18, 0, "\xE9", 0, "names no character set"},
    {MSHV "2.5||||||ASCII\rPID|1||7||Jos\xC3\xA9\r", 102, "PID", 2, 5, 1, "\xC3", 0, "not ASCII"},
    {MSHV "2.5||||||UNICODE UTF-8\rPID|1||7||x\xC0\xAF\r", 102, "PID", 2, 5, 1, "\xC0", 0,
     "invalid UTF-8"},
    {MSHV "2.5||||||UNICODE UTF-8\rNTE|1||\\XFF\\\r", 102, "NTE", 2, 3, 1, "\\XFF", 0,
     "invalid UTF-8"},
    /* segments */
    {MSH25 "PID|1\rpid|2\r", 100, "", 3, 0, 0, "pid", 0, "not a segment id"},
    {MSH25 "PIDX|1\r", 100, "", 2, 0, 0, "PIDX", 0, "not a segment id"},
    {MSH25 "PID|1\r" MSH25, 100, "MSH", 3, 0, 0, "PID|1\r", 6, "second MSH"},
    /* control bytes */
    {MSH25 "PID|1||123\x1c\r", 102, "PID", 2, 3, 0, "\x1c", 0, "0x1C"},
    {"MSH|^~\\&|A\x01|B\r", 102, "MSH", 1, 3, 0, NULL, 10, "0x01"},
};

Test(hl7v2_errors, refusals_name_their_location) {
  for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
    const refusal *r = &refusals[i];
    if (r->code == 0) {
      cl_hl7_free(hl7t_parse(r->in));
      continue;
    }
    cl_hl7_error e;
    refused(r->in, CL_EMALFORMED, &e);
    size_t off = r->add == END ? strlen(r->in) : (r->needle ? at(r->in, r->needle) : 0) + r->add;
    cr_expect_eq(e.code, r->code, "#%zu: code %d (%s)", i, e.code, e.reason);
    cr_expect_str_eq(e.segment, r->seg, "#%zu (%s)", i, e.reason);
    cr_expect_eq(e.seg_index, r->seg_index, "#%zu: index %u (%s)", i, e.seg_index, e.reason);
    cr_expect_eq(e.field, r->field, "#%zu: field %u (%s)", i, e.field, e.reason);
    cr_expect_eq(e.comp, r->comp, "#%zu: component %u (%s)", i, e.comp, e.reason);
    cr_expect_eq(e.offset, off, "#%zu: offset %zu, want %zu (%s)", i, e.offset, off, e.reason);
    cr_expect(!r->reason || strstr(e.reason, r->reason), "#%zu: reason '%s'", i, e.reason);
  }
}

Test(hl7v2_errors, escape_location_in_detail) {
  cl_hl7_error e;
  const char *s = MSH25 "PID|1||7||O\\F";
  refused(s, CL_EMALFORMED, &e);
  cr_expect_eq(e.seg_seq, 1);
  cr_expect_eq(e.rep, 1);
  cr_expect_eq(e.sub, 1);
  s = MSH25 "PID|1\r" MSH25;
  refused(s, CL_EMALFORMED, &e);
  cr_expect_eq(e.seg_seq, 2);
  /* a VID with more components is fine */
  cl_hl7_free(hl7t_parse(MSHV "2.5.1^HL7^x\r"));
}

Test(hl7v2_errors, bad_escapes) {
  cl_hl7_error e;
  static const char *const bad[] = {"\\XZZ\\", "\\X4\\", "\\X\\",   "\\X00\\", "\\Q\\",
                                    "\\\\",    "\\P\\",  "\\.xx\\", "\\.br"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char s[256];
    snprintf(s, sizeof s, MSH25 "PID|1||7||Smith^J%sohn\r", bad[i]);
    refused(s, CL_EMALFORMED, &e);
    hl7t_expect_loc(&e, 102, "PID", 2, 5, at(s, bad[i]));
    cr_expect_eq(e.comp, 2, "%s", bad[i]);
  }
  /* hex escape decoding to bytes that are not UTF-8 (message is UTF-8) */
  const char *s = "MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5||||||UNICODE UTF-8\rNTE|1||\\XFF\\\r";
  refused(s, CL_EMALFORMED, &e);
  cr_expect_eq(e.code, 102);
  cr_expect_eq(e.field, 3);
}

Test(hl7v2_errors, nul_byte) {
  cl_hl7_error e;
  char s[128];
  int n = snprintf(s, sizeof s, MSH25 "PID|1||12#3\r");
  char *nul = strchr(s, '#');
  *nul = '\0';
  hl7t_refused(s, (size_t)n, NULL, CL_EMALFORMED, &e);
  hl7t_expect_loc(&e, 102, "PID", 2, 3, (size_t)(nul - s));
  cr_expect(strstr(e.reason, "0x00") != NULL, "%s", e.reason);
}

Test(hl7v2_errors, binary_junk) {
  uint8_t junk[4096];
  uint32_t x = 12345;
  for (size_t i = 0; i < sizeof junk; i++) {
    x = x * 1103515245u + 12345u;
    junk[i] = (uint8_t)(x >> 16);
  }
  cl_hl7_error e;
  hl7t_refused(junk, sizeof junk, NULL, CL_EMALFORMED, &e);
  hl7t_expect_loc(&e, 100, "MSH", 1, 0, 0);
  /* junk after a valid MSH */
  size_t n = strlen(MSH25);
  uint8_t *p = malloc(n + sizeof junk);
  memcpy(p, MSH25, n);
  memcpy(p + n, junk, sizeof junk);
  hl7t_refused(p, n + sizeof junk, NULL, CL_EMALFORMED, &e);
  cr_expect_eq(e.seg_index, 2, "%s", e.reason);
  free(p);
}

Test(hl7v2_errors, five_megabyte_field) {
  size_t big = 5u * 1024 * 1024;
  size_t h = strlen(MSH25 "OBX|1|ED|PDF^Report||");
  char *s = malloc(h + big + 8);
  memcpy(s, MSH25 "OBX|1|ED|PDF^Report||", h);
  memset(s + h, 'A', big);
  memcpy(s + h + big, "||||F\r", 6);
  cl_hl7_error e;
  hl7t_refused(s, h + big + 6, NULL, CL_ETOOBIG, &e);
  hl7t_expect_loc(&e, 102, "OBX", 2, 5, h);
  cr_expect(strstr(e.reason, "exceeds") != NULL, "%s", e.reason);
  /* with a larger limit it parses */
  cl_hl7_limits lim = {.max_field = 6u * 1024 * 1024};
  cl_hl7_msg *m = NULL;
  cl_err err;
  cr_assert_eq(cl_hl7_parse((uint8_t *)s, h + big + 6, &lim, &m, &e, &err), 0, "%s", err.msg);
  cr_expect_eq(cl_hl7_path(m, "OBX-5").n, big);
  cl_hl7_free(m);
  free(s);
}

Test(hl7v2_errors, message_and_node_limits) {
  cl_hl7_error e;
  cl_hl7_limits lim = {.max_message = 32};
  const char *s = MSH25;
  hl7t_refused(s, strlen(s), &lim, CL_ETOOBIG, &e);
  cr_expect_eq(e.code, 207);
  cr_expect_eq(e.offset, 32);
  /* a field of nothing but delimiters: bounded by max_nodes */
  size_t k = 200000;
  size_t h = strlen(MSH25 "NTE|1||");
  char *p = malloc(h + k);
  memcpy(p, MSH25 "NTE|1||", h);
  memset(p + h, '^', k);
  cl_hl7_limits lim2 = {.max_nodes = 100000};
  hl7t_refused(p, h + k, &lim2, CL_ETOOBIG, &e);
  cr_expect_eq(e.code, 207);
  cr_expect_str_eq(e.segment, "NTE");
  free(p);
}

Test(hl7v2_errors, error_message_names_location) {
  const char *s = "MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.9\r";
  cl_hl7_msg *m = NULL;
  cl_hl7_error e;
  cl_err err;
  cr_assert_eq(cl_hl7_parse((const uint8_t *)s, strlen(s), NULL, &m, &e, &err), CL_EMALFORMED);
  cr_expect_str_eq(err.msg, "MSH-12.1 (segment 1, byte 32): unsupported version '2.9' (2.3 to 2.8 "
                            "are)");
  cr_assert_eq(cl_hl7_parse(NULL, 1, NULL, &m, &e, &err), CL_EINVAL);
  cr_assert_eq(cl_hl7_parse((const uint8_t *)s, 1, NULL, NULL, &e, &err), CL_EINVAL);
}

Test(hl7v2_errors, every_prefix_of_a_message_is_safe) {
  size_t n;
  uint8_t *p = hl7t_read("mdm_t02.hl7", &n);
  for (size_t k = 0; k <= n; k++) {
    cl_hl7_msg *m = NULL;
    cl_hl7_error e;
    cl_err err;
    int rc = cl_hl7_parse(p, k, NULL, &m, &e, &err);
    if (rc == 0)
      cl_hl7_free(m);
    else
      cr_assert(e.reason[0] && err.msg[0]);
  }
  free(p);
}

/* fuzz_hl7v2 finding: with '.' as the subcomponent separator, "2.5.1" in
 * MSH-12 is three subcomponents; the version is the first ("2"), and the
 * ACK of a message that spells it 2\T\5\T\1 must parse back. */
Test(hl7v2_errors, version_made_of_delimiters) {
  cl_hl7_error e;
  const char *s = "MSH|^~\\.|A|B|C|D|1||ORU^R01|1|P|2.5.1\r";
  refused(s, CL_EMALFORMED, &e);
  hl7t_expect_loc(&e, 203, "MSH", 1, 12, at(s, "2.5.1"));
  cr_expect(strstr(e.reason, "'2'") != NULL, "%s", e.reason);
  cl_hl7_msg *m = hl7t_parse("MSH|^~\\.|A|B|C|D|1||ORU^R01|1|P|2\\T\\5\\T\\1\r");
  cr_expect_str_eq(cl_hl7_header_of(m)->version, "2.5.1");
  cl_hl7_free(m);
}

/* Fault loop: failing the Nth allocation of a parse (and of its ACK) gives
 * CL_ENOMEM (code 207) and leaks nothing (the sanitizer build checks). */
static int fail_at, calls;
static int fail_nth(void *ctx) {
  (void)ctx;
  return ++calls == fail_at;
}

Test(hl7v2_errors, out_of_memory_at_every_allocation) {
  size_t n;
  uint8_t *p = hl7t_read("adt_a01_latin1.hl7", &n);
  int done = 0;
  for (fail_at = 1; !done && fail_at < 1000; fail_at++) {
    calls = 0;
    cl_hl7_msg *m = NULL;
    cl_hl7_error e;
    cl_err err;
    cl_alloc_set_fail_hook(fail_nth, NULL);
    int rc = cl_hl7_parse(p, n, NULL, &m, &e, &err);
    char *ack = NULL;
    size_t an = 0;
    int arc = CL_ENOMEM;
    if (rc == 0) {
      cl_hl7_ack_params ap = {.control_id = "1", .timestamp = "2026"};
      arc = cl_hl7_ack(m, NULL, &ap, &ack, &an, &err);
    }
    cl_alloc_set_fail_hook(NULL, NULL);
    if (rc != 0) {
      cr_assert_eq(rc, CL_ENOMEM, "allocation %d: %s", fail_at, err.msg);
      cr_assert_eq(e.code, 207);
      cr_assert_null(m);
    } else if (arc != 0) {
      cr_assert_eq(arc, CL_ENOMEM, "allocation %d: %s", fail_at, err.msg);
      cr_assert_null(ack);
    } else {
      done = 1;
    }
    cl_free(ack);
    cl_hl7_free(m);
  }
  cr_assert(done);
  cr_assert_gt(fail_at, 3);
  free(p);
}

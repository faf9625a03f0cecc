/* adapters/hl7v2 ACK builder: exact ACK text for accepted and refused
 * messages, for v2.3 (ERR-1) and v2.5+ (ERR-2/3/4/8), with default and
 * non-default encoding characters, and for input without a usable MSH. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/hl7v2/ack.h"
#include "adapters/hl7v2/hl7.h"
#include "hl7v2_fixture.h"
#include "store/alloc.h"

TestSuite(hl7v2_ack, .timeout = 30);

#define TS "20261205013500+0000"

static void expect_ack(const cl_hl7_msg *m, const cl_hl7_error *e, const char *ctl,
                       const char *want) {
  cl_hl7_ack_params ap = {.control_id = ctl, .timestamp = TS};
  char *ack = NULL;
  size_t n = 0;
  cl_err err;
  cr_assert_eq(cl_hl7_ack(m, e, &ap, &ack, &n, &err), 0, "%s", err.msg);
  cr_expect_str_eq(ack, want);
  cr_expect_eq(n, strlen(want));
  cl_free(ack);
}

/* The same for the corpus file `name`. */
static void expect_file_ack(const char *name, const cl_hl7_error *e, const char *ctl,
                            const char *want) {
  cl_hl7_msg *m = hl7t_load(name);
  expect_ack(m, e, ctl, want);
  cl_hl7_free(m);
}

/* Parses s expecting a refusal, and checks the ACK built from the raw bytes. */
static void expect_refusal_ack(const char *s, const char *ctl, const char *want) {
  cl_hl7_msg *m = NULL;
  cl_hl7_error e;
  cl_err err;
  cr_assert_neq(cl_hl7_parse((const uint8_t *)s, strlen(s), NULL, &m, &e, &err), 0);
  cl_hl7_ack_params ap = {.control_id = ctl, .timestamp = TS};
  char *ack = NULL;
  size_t n = 0;
  cr_assert_eq(cl_hl7_ack_raw((const uint8_t *)s, strlen(s), &e, &ap, &ack, &n, &err), 0, "%s",
               err.msg);
  cr_expect_str_eq(ack, want);
  cl_free(ack);
}

Test(hl7v2_ack, accepted) {
  expect_file_ack("adt_a01.hl7", NULL, "ACK0001",
                  "MSH|^~\\&|CLINLOG|HOSP|EPIC|STMARYS|" TS "||ACK^A01^ACK|ACK0001|P|2.5.1||||||"
                  "UNICODE UTF-8\r"
                  "MSA|AA|MSG00001\r");
}

Test(hl7v2_ack, accepted_ack_parses_back) {
  static const char *const files[] = {
      "adt_a01.hl7", "adt_a08_crlf.hl7", "oru_r01_lf.hl7", "rde_o11.hl7",     "ras_o17.hl7",
      "siu_s12.hl7", "dft_p03.hl7",      "mdm_t02.hl7",    "adt_a04_v27.hl7", "adt_a01_latin1.hl7"};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    cl_hl7_msg *m = files[i][0] == 'M' ? hl7t_parse(files[i]) : hl7t_load(files[i]);
    cl_hl7_ack_params ap = {.control_id = "K1"};
    char *ack = NULL;
    size_t n = 0;
    cl_err err;
    cr_assert_eq(cl_hl7_ack(m, NULL, &ap, &ack, &n, &err), 0, "%s", err.msg);
    cl_hl7_msg *a = NULL;
    cl_hl7_error e;
    cr_assert_eq(cl_hl7_parse((const uint8_t *)ack, n, NULL, &a, &e, &err), 0, "%s: %s", files[i],
                 err.msg);
    const cl_hl7_header *h = cl_hl7_header_of(m), *ha = cl_hl7_header_of(a);
    cr_expect_str_eq(ha->message_code, "ACK");
    cr_expect_str_eq(ha->trigger, h->trigger);
    cr_expect_str_eq(ha->control_id, "K1");
    cr_expect_str_eq(ha->sending_app, h->receiving_app);
    cr_expect_str_eq(ha->receiving_facility, h->sending_facility);
    cr_expect_str_eq(ha->version, h->version);
    cr_expect_str_eq(cl_hl7_path(a, "MSA-1").s, "AA");
    cr_expect_str_eq(cl_hl7_path(a, "MSA-2").s, h->control_id, "%s", files[i]);
    cl_hl7_free(a);
    cl_free(ack);
    cl_hl7_free(m);
  }
}

Test(hl7v2_ack, refused_content_error_is_ae_with_err_location) {
  expect_refusal_ack(
      "MSH|^~\\&|LAB|STMARYS|CLINLOG|HOSP|20261204101500||ORU^R01^ORU_R01|LAB7782|P|2.5.1\r"
      "PID|1||123456\rOBX|1|NM|2345-7^Glucose^LN||9\\XZZ\\8\r",
      "ACK0002",
      "MSH|^~\\&|CLINLOG|HOSP|LAB|STMARYS|" TS "||ACK^R01^ACK|ACK0002|P|2.5.1\r"
      "MSA|AE|LAB7782\r"
      "ERR||OBX^1^5^1^1^1|102^Data type error^HL70357|E||||hex escape '\\E\\XZZ\\E\\' has a "
      "non-hex digit\r");
}

Test(hl7v2_ack, refused_version_is_ar_with_default_version) {
  expect_refusal_ack("MSH|^~\\&|A|B|C|D|1||ADT^A01|X9|P|2.9\r", "ACK0003",
                     "MSH|^~\\&|C|D|A|B|" TS "||ACK^A01^ACK|ACK0003|P|2.5.1\r"
                     "MSA|AR|X9\r"
                     "ERR||MSH^1^12^1^1|203^Unsupported version id^HL70357|E||||unsupported "
                     "version '2.9' (2.3 to 2.8 are)\r");
}

Test(hl7v2_ack, no_msh_is_ar_with_defaults) {
  expect_refusal_ack("XYZ|garbage\r", "ACK0004",
                     "MSH|^~\\&|||||" TS "||ACK|ACK0004|P|2.5.1\r"
                     "MSA|AR|\r"
                     "ERR||MSH^1|100^Segment sequence error^HL70357|E||||the message does not "
                     "start with MSH (found 'XYZ')\r");
  /* and a message whose MSH-2 is unusable */
  expect_refusal_ack(
      "MSH|^^|A|B\r", "ACK0005",
      "MSH|^~\\&|||||" TS "||ACK|ACK0005|P|2.5.1\r"
      "MSA|AR|\r"
      "ERR||MSH^1^2|102^Data type error^HL70357|E||||encoding characters '\\S\\\\S\\' "
      "must be 4 (or, since v2.7, 5) characters\r");
}

Test(hl7v2_ack, oversized_message_still_answered_with_its_msh) {
  const char *msh = "MSH|^~\\&|A|B|C|D|1||ADT^A01|BIG1|P|2.5\rNTE|1||";
  size_t h = strlen(msh), n = h + CL_HL7_DEFAULT_MAX_MESSAGE;
  char *s = malloc(n + 1);
  memcpy(s, msh, h);
  memset(s + h, 'x', n - h);
  s[n] = '\0';
  expect_refusal_ack(s, "K3",
                     "MSH|^~\\&|C|D|A|B|" TS "||ACK^A01^ACK|K3|P|2.5\r"
                     "MSA|AR|BIG1\r"
                     "ERR|||207^Application internal error^HL70357|E||||message of 8388654 "
                     "bytes exceeds the limit of 8388608\r");
  free(s);
}

Test(hl7v2_ack, v23_uses_err1_and_msa3) {
  expect_refusal_ack("MSH|^~\\&|BILL|STMARYS|CLINLOG|HOSP|1||DFT^P03|D1|P|2.3\r"
                     "FT1|1|||x\\Q\\\r",
                     "ACK0006",
                     "MSH|^~\\&|CLINLOG|HOSP|BILL|STMARYS|" TS "||ACK^P03|ACK0006|P|2.3\r"
                     "MSA|AE|D1|unknown escape sequence '\\E\\Q\\E\\'\r"
                     "ERR|FT1^1^4^102&Data type error&HL70357\r");
}

Test(hl7v2_ack, nondefault_encoding_characters_escape) {
  /* field #, component $, repetition *, escape !, subcomponent @ */
  expect_refusal_ack("MSH#$*!@#APP$X#FAC#C#D#1##ADT$A01#CTL!F!1#P#2.5\rPID#1##7##x!Q!y\r", "ACK#4",
                     "MSH#$*!@#C#D#APP$X#FAC#" TS "##ACK$A01$ACK#ACK!F!4#P#2.5\r"
                     "MSA#AE#CTL!F!1\r"
                     "ERR##PID$1$5$1$1$1#102$Data type error$HL70357#E####unknown escape "
                     "sequence '!E!Q!E!'\r");
}

Test(hl7v2_ack, truncation_character_escaped) {
  expect_file_ack("adt_a04_v27.hl7", NULL, "A#1^2",
                  "MSH|^~\\&#|CLINLOG|HOSP|REG|STMARYS|" TS "||ACK^A04^ACK|A\\P\\1\\S\\2|P|2.7\r"
                  "MSA|AA|REG5001\r");
}

Test(hl7v2_ack, application_error_on_parsed_message) {
  cl_hl7_error e = {
      .code = 201, .segment = "MSH", .seg_seq = 1, .seg_index = 1, .field = 9, .comp = 2};
  snprintf(e.reason, sizeof e.reason, "unsupported event S12|x");
  /* 2.3.1 still uses ERR-1 and MSA-3 */
  expect_file_ack("siu_s12.hl7", &e, "K9",
                  "MSH|^~\\&|CLINLOG|HOSP|SCHED|STMARYS|" TS "||ACK^S12^ACK|K9|P|2.3.1\r"
                  "MSA|AR|SCH1001|unsupported event S12\\F\\x\r"
                  "ERR|MSH^1^9^201&Unsupported event code&HL70357\r");
}

Test(hl7v2_ack, latin1_echoes_charset) {
  expect_file_ack("adt_a01_latin1.hl7", NULL, "K2",
                  "MSH|^~\\&|CLINLOG|HOSP|EPIC|CLINIQUE|" TS "||ACK^A01^ACK|K2|P|2.5||||||8859/1\r"
                  "MSA|AA|LAT1001\r");
}

Test(hl7v2_ack, bad_parameters) {
  cl_hl7_msg *m = hl7t_load("adt_a01.hl7");
  char *ack = NULL;
  size_t n;
  cl_err err;
  cl_hl7_ack_params ap = {.control_id = NULL};
  cr_expect_eq(cl_hl7_ack(m, NULL, &ap, &ack, &n, &err), CL_EINVAL);
  ap.control_id = "1";
  ap.ack_code = "CA";
  cr_expect_eq(cl_hl7_ack(m, NULL, &ap, &ack, &n, &err), CL_EINVAL);
  cr_expect_eq(cl_hl7_ack(NULL, NULL, &ap, &ack, &n, &err), CL_EINVAL);
  cr_expect_eq(cl_hl7_ack_raw((const uint8_t *)"x", 1, NULL, &ap, &ack, &n, &err), CL_EINVAL);
  cr_expect_null(ack);
  /* an explicit code wins */
  ap.ack_code = "AE";
  cr_assert_eq(cl_hl7_ack(m, NULL, &ap, &ack, &n, &err), 0);
  cr_expect(strstr(ack, "\rMSA|AE|MSG00001\r") != NULL, "%s", ack);
  cl_free(ack);
  cl_hl7_free(m);
}

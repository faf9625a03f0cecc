/* adapters/hl7v2 parser over the corpus of tests/adapters/hl7v2/: one file
 * per message type and quirk, with exact decoded values at exact HL7
 * positions. */
#include <criterion/criterion.h>
#include <string.h>

#include "adapters/hl7v2/hl7.h"
#include "hl7v2_fixture.h"

TestSuite(hl7v2, .timeout = 30);

Test(hl7v2, adt_a01_header_and_patient) {
  cl_hl7_msg *m = hl7t_load("adt_a01.hl7");
  const cl_hl7_header *h = cl_hl7_header_of(m);
  cr_expect_str_eq(h->sending_app, "EPIC");
  cr_expect_str_eq(h->sending_facility, "STMARYS");
  cr_expect_str_eq(h->receiving_app, "CLINLOG");
  cr_expect_str_eq(h->receiving_facility, "HOSP");
  cr_expect_str_eq(h->message_code, "ADT");
  cr_expect_str_eq(h->trigger, "A01");
  cr_expect_str_eq(h->structure, "ADT_A01");
  cr_expect_str_eq(h->control_id, "MSG00001");
  cr_expect_str_eq(h->processing_id, "P");
  cr_expect_str_eq(h->version, "2.5.1");
  cr_expect_str_eq(h->charset, "UNICODE UTF-8");
  cr_expect_eq(h->enc.field, '|');
  cr_expect_eq(h->enc.comp, '^');
  cr_expect_eq(h->enc.rep, '~');
  cr_expect_eq(h->enc.esc, '\\');
  cr_expect_eq(h->enc.sub, '&');
  cr_expect_eq(h->enc.trunc, 0);
  /* MSH-1 is the field separator itself, MSH-2 the encoding characters */
  static const hl7t_case want[] = {
      {"MSH-1", "|"},
      {"MSH-2", "^~\\&"},
      {"MSH-3", "EPIC"},
      {"MSH-9.2", "A01"},
      {"MSH-18", "UNICODE UTF-8"},
      {"EVN-5.2", "Smith"},
      {"EVN-5.9", "STMARYS"},
      {"PID-3", "123456"},
      {"PID-3.4", "STMARYS"},
      {"PID-3.5", "MR"},
      {"PID-3[2].1", "987-65-4320"},
      {"PID-3[2].5", "SS"},
      {"PID-5.1", "O'Brien"},
      {"PID-5.2", "Mary"},
      {"PID-5.3", "Anne"},
      {"PID-5.5", "Mrs."},
      {"PID-7", "19600315"},
      {"PID-8", "F"},
      {"PID-11.2", "Apt 4B"},
      {"PID-11.3", "Springfield"},
      {"PID-11.7", "H"},
      {"PID-13.7", "5551234"},
      {"PID-13[2].4", "mary@example.org"},
      {"PID-18", "ACC1001"},
      /* UTF-8 as sent */
      {"NK1-2.1", "M\xC3\xBCller"},
      {"NK1-2.2", "J\xC3\xBCrgen"},
      {"NK1-3.3", "HL70063"},
      {"PV1-3.1", "4WEST"},
      {"PV1-3.2", "412"},
      {"PV1-7.2", "Welby"},
      {"PV1-19", "VN5566"},
      {"PV1-44", "20261204082900"},
      {"AL1-3.2", "Penicillin"},
      {"DG1-3.2", "Essential (primary) hypertension"},
  };
  hl7t_expect_all(m, want, sizeof want / sizeof want[0]);
  cr_expect_eq(cl_hl7_nsegments(m), 7);
  hl7t_expect_state(m, "PID-5.4", CL_HL7_EMPTY);
  hl7t_expect_state(m, "PID-5.6", CL_HL7_ABSENT);
  hl7t_expect_state(m, "PID-13[3]", CL_HL7_ABSENT);
  const cl_hl7_seg *pid = cl_hl7_segment(m, "PID", 1);
  cr_assert_not_null(pid);
  cr_expect_str_eq(cl_hl7_seg_id(pid), "PID");
  cr_expect_eq(cl_hl7_nfields(pid), 18);
  cr_expect_eq(cl_hl7_nreps(pid, 3), 2);
  cr_expect_eq(cl_hl7_ncomps(pid, 3, 2), 5);
  cr_expect_eq(cl_hl7_nsubs(pid, 3, 2, 1), 1);
  cl_hl7_value raw = cl_hl7_raw(pid, 3, 2, 0, 0);
  cr_expect_eq(raw.n, strlen("987-65-4320^^^USSSA^SS"));
  cr_expect(memcmp(raw.s, "987-65-4320^^^USSSA^SS", raw.n) == 0);
  cl_hl7_free(m);
}

Test(hl7v2, adt_a08_crlf_null_trailing_and_z_segment) {
  cl_hl7_msg *m = hl7t_load("adt_a08_crlf.hl7");
  cr_expect_str_eq(cl_hl7_header_of(m)->trigger, "A08");
  cr_expect_str_eq(cl_hl7_header_of(m)->version, "2.4");
  cr_expect_eq(cl_hl7_nsegments(m), 5);
  /* "" is an explicit null (delete the phone number), distinct from empty */
  hl7t_expect_state(m, "PID-13", CL_HL7_NULL);
  cr_expect_str_eq(cl_hl7_path(m, "PID-13").s, "");
  hl7t_expect_state(m, "PID-12", CL_HL7_EMPTY);
  static const hl7t_case want[] = {
      {"PID-14.2", "WPN"},
      {"PID-14.7", "5559999"},
      /* no CR or LF leaks into the last value of a line */
      {"PV1-3.2", "414"},
      {"ZPI-2.1", "VIP"},
      {"ZPI-2.2", "Very important person"},
      {"ZPI-3", "CONF"},
  };
  hl7t_expect_all(m, want, sizeof want / sizeof want[0]);
  /* trailing empty fields are present and empty; beyond them, absent */
  const cl_hl7_seg *pid = cl_hl7_segment(m, "PID", 1);
  cr_expect_eq(cl_hl7_nfields(pid), 28);
  hl7t_expect_state(m, "PID-28", CL_HL7_EMPTY);
  hl7t_expect_state(m, "PID-29", CL_HL7_ABSENT);
  /* the Z-segment is kept and reachable */
  cr_expect_eq(cl_hl7_count(m, "ZPI"), 1);
  hl7t_expect_state(m, "ZPI-4", CL_HL7_EMPTY);
  cr_expect_str_eq(cl_hl7_seg_id(cl_hl7_segment_at(m, 5)), "ZPI");
  cl_hl7_free(m);
}

Test(hl7v2, oru_r01_lf_observations_by_value_type) {
  cl_hl7_msg *m = hl7t_load("oru_r01_lf.hl7");
  cr_expect_str_eq(cl_hl7_header_of(m)->structure, "ORU_R01");
  cr_expect_eq(cl_hl7_count(m, "OBX"), 7);
  static const hl7t_case want[] = {
      {"OBR-4.1", "24323-8"},
      {"OBX-2", "NM"},
      {"OBX-3.1", "2345-7"},
      {"OBX-3.3", "LN"},
      {"OBX-5", "98"},
      {"OBX-6.1", "mg/dL"},
      {"OBX-6.3", "UCUM"},
      {"OBX-7", "70-99"},
      {"OBX-8", "N"},
      {"OBX-11", "F"},
      {"OBX-14", "20261204094500"},
      {"OBX[2]-5", "5.9"},
      {"OBX[2]-8", "H"},
      {"OBX[3]-2", "ST"},
      {"OBX[3]-5", "Specimen slightly hemolyzed"},
      {"OBX[4]-5.1", "371244009"},
      {"OBX[4]-5.2", "Yellow color"},
      {"OBX[4]-5.3", "SCT"},
      {"OBX[5]-5.1", "<"},
      {"OBX[5]-5.2", "0.5"},
      {"OBX[5]-8", "L"},
      {"OBX[6]-5.2", "1"},
      {"OBX[6]-5.3", ":"},
      {"OBX[6]-5.4", "128"},
      {"OBX[7]-2", "TS"},
      {"OBX[7]-5", "20261204093000-0500"},
      {"NTE-3", "Repeat potassium recommended."},
  };
  hl7t_expect_all(m, want, sizeof want / sizeof want[0]);
  hl7t_expect_state(m, "OBX[2]-6.2", CL_HL7_EMPTY);
  /* SN ratio ^1^:^128: no comparator */
  hl7t_expect_state(m, "OBX[6]-5.1", CL_HL7_EMPTY);
  cr_expect_null(cl_hl7_segment(m, "OBX", 8));
  cl_hl7_free(m);
}

Test(hl7v2, rde_o11_subcomponents) {
  cl_hl7_msg *m = hl7t_load("rde_o11.hl7");
  cr_expect_str_eq(cl_hl7_header_of(m)->structure, "RDE_O11");
  static const hl7t_case want[] = {
      {"ORC-1", "NW"},
      {"ORC-2.1", "ORD5501"},
      {"ORC-12.2", "Welby"},
      {"RXE-1.1", "1"},
      {"RXE-1.2.1", "Q8H"},
      {"RXE-1.2.2", "Every 8 hours"},
      {"RXE-1.2.3", "HL70335"},
      {"RXE-1.4", "20261204120000"},
      {"RXE-1.6", "R"},
      {"RXE-2.1", "197361"},
      {"RXE-2.2", "Amlodipine 5 MG Oral Tablet"},
      {"RXE-3", "5"},
      {"RXE-5.1", "mg"},
      {"RXE-10", "30"},
      {"RXE-12", "2"},
      {"RXR-1.2", "Oral"},
      {"TQ1-3.1.2", "Every 8 hours"},
  };
  hl7t_expect_all(m, want, sizeof want / sizeof want[0]);
  const cl_hl7_seg *rxe = cl_hl7_segment(m, "RXE", 1);
  cr_expect_eq(cl_hl7_nsubs(rxe, 1, 1, 2), 3);
  cl_hl7_free(m);
}

Test(hl7v2, ras_o17_barcode_fields) {
  cl_hl7_msg *m = hl7t_load("ras_o17.hl7");
  cr_expect_str_eq(cl_hl7_header_of(m)->trigger, "O17");
  static const hl7t_case want[] = {
      {"RXA-3", "20261204120200"},
      {"RXA-5.1", "00069-1530-30"},
      {"RXA-5.3", "NDC"},
      {"RXA-6", "5"},
      {"RXA-7.1", "mg"},
      {"RXA-10.2", "Nightingale"},
      {"RXA-15", "LOT88A2"},
      {"RXA-16", "20281231"},
      {"RXA-17.2", "Pfizer"},
      {"RXA-20", "CP"},
      {"RXA-21", "A"},
  };
  hl7t_expect_all(m, want, sizeof want / sizeof want[0]);
  cl_hl7_free(m);
}

Test(hl7v2, siu_s12_v231_no_trailing_terminator) {
  cl_hl7_msg *m = hl7t_load("siu_s12.hl7");
  const cl_hl7_header *h = cl_hl7_header_of(m);
  cr_expect_str_eq(h->version, "2.3.1");
  cr_expect_str_eq(h->structure, "");
  static const hl7t_case want[] = {
      {"SCH-1.1", "APT7001"},
      {"SCH-8.2", "Follow-up visit"},
      {"SCH-11.3", "30"},
      {"SCH-11.4", "20261210090000"},
      {"SCH-11.5", "20261210093000"},
      {"SCH-25", "BOOKED"},
      {"AIS-3.1", "99213"},
      {"AIP-3.2", "Welby"},
      /* the last segment has no terminator */ {"AIP-10", "MIN"},
  };
  hl7t_expect_all(m, want, sizeof want / sizeof want[0]);
  cl_hl7_free(m);
}

Test(hl7v2, dft_p03_v23) {
  cl_hl7_msg *m = hl7t_load("dft_p03.hl7");
  cr_expect_str_eq(cl_hl7_header_of(m)->version, "2.3");
  static const hl7t_case want[] = {
      {"FT1-6", "CG"},       {"FT1-7.1", "99213"}, {"FT1-10", "1"},        {"FT1-11.1.1", "125.00"},
      {"FT1-11.1.2", "USD"}, {"FT1-19.1", "I10"},  {"FT1-20.3", "Marcus"},
  };
  hl7t_expect_all(m, want, sizeof want / sizeof want[0]);
  cl_hl7_free(m);
}

Test(hl7v2, mdm_t02_tx_note_with_escapes) {
  cl_hl7_msg *m = hl7t_load("mdm_t02.hl7");
  static const hl7t_case want[] = {
      {"TXA-2.1", "DS"},
      {"TXA-17.1", "AU"},
      {"OBX-5[1]", "Patient admitted with hypertensive urgency."},
      {"OBX-5[2]", "BP on arrival 210/120 & HR 88; treated per protocol \\ titrated."},
      {"OBX-5[4]", "Meds: amlodipine 5 mg | daily ~ review\r\nend."},
  };
  hl7t_expect_all(m, want, sizeof want / sizeof want[0]);
  const cl_hl7_seg *obx = cl_hl7_segment(m, "OBX", 1);
  cr_expect_eq(cl_hl7_nreps(obx, 5), 4); /* TX lines are repetitions */
  /* \S\ decodes; formatting (\.br\) and highlighting (\H\ \N\) pass through */
  hl7t_expect(m, "OBX-5[3]",
              "Follow-up: Dr. Welby^Cardiology in 2 weeks.\\.br\\Signed \\H\\electronically\\N\\.");
  cr_expect_eq(cl_hl7_ncomps(obx, 5, 3), 1); /* an escaped ^ is no delimiter */
  cl_hl7_free(m);
}

Test(hl7v2, v27_five_encoding_characters) {
  cl_hl7_msg *m = hl7t_load("adt_a04_v27.hl7");
  const cl_hl7_header *h = cl_hl7_header_of(m);
  cr_expect_str_eq(h->version, "2.7");
  cr_expect_eq(h->enc.trunc, '#');
  static const hl7t_case want[] = {
      {"MSH-2", "^~\\&#"},
      {"MSH-3", "REG"},
      {"MSH-15", "AL"},
      {"PID-5.2", "Thi Lan"},
  };
  hl7t_expect_all(m, want, sizeof want / sizeof want[0]);
  hl7t_expect(m, "PV1-3.2", "Suite #4"); /* \P\ is the truncation character */
  cl_hl7_free(m);
}

Test(hl7v2, latin1_converted_to_utf8) {
  cl_hl7_msg *m = hl7t_load("adt_a01_latin1.hl7");
  cr_expect_str_eq(cl_hl7_header_of(m)->charset, "8859/1");
  static const hl7t_case want[] = {
      {"MSH-17", "FRA"},           {"PID-5.1", "M\xC3\xBCller"},  {"PID-5.2", "Jos\xC3\xA9"},
      {"PID-5.3", "\xC3\x81ngel"}, {"PID-11.3", "Z\xC3\xBCrich"},
  };
  hl7t_expect_all(m, want, sizeof want / sizeof want[0]);
  hl7t_expect(m, "PID-11.1",
              "Stra\xC3\x9F"
              "e 5");
  /* raw keeps the bytes as sent */
  cl_hl7_value raw = cl_hl7_raw(cl_hl7_segment(m, "PID", 1), 5, 1, 1, 0);
  cr_expect_eq(raw.n, 6);
  cr_expect(memcmp(raw.s, "M\xFCller", 6) == 0);
  cl_hl7_free(m);
}

Test(hl7v2, hex_escape_in_latin1_converts) {
  cl_hl7_msg *m = hl7t_parse("MSH|^~\\&|A|B|C|D|20261204||ADT^A08|X1|P|2.5||||||8859/1\r"
                             "PID|1||7||Fran\\XE7\\ois\r");
  hl7t_expect(m, "PID-5", "Fran\xC3\xA7ois");
  cl_hl7_free(m);
}

Test(hl7v2, segment_endings_mixed_blank_lines_bom) {
  cl_hl7_msg *m = hl7t_parse("\xEF\xBB\xBF\r\nMSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\r\n\r\n"
                             "EVN|A01\rPID|1\nPV1|1|I\r\n\n");
  cr_expect_eq(cl_hl7_nsegments(m), 4);
  static const hl7t_case want[] = {
      {"EVN-1", "A01"},
      {"PID-1", "1"},
      {"PV1-2", "I"},
  };
  hl7t_expect_all(m, want, sizeof want / sizeof want[0]);
  cl_hl7_free(m);
}

Test(hl7v2, nondefault_delimiters_and_all_escapes) {
  /* field #, component $, repetition *, escape !, subcomponent @ */
  cl_hl7_msg *m = hl7t_parse("MSH#$*!@#APP$X#FAC#C#D#1##ADT$A01#1#P#2.5\r"
                             "PID#1##A$B@C*D##x!F!y!S!z!T!w!R!v!E!u\r");
  static const hl7t_case want[] = {
      {"MSH-1", "#"},     {"MSH-2", "$*!@"},  {"MSH-3.2", "X"},  {"PID-3.1", "A"},
      {"PID-3.2.1", "B"}, {"PID-3.2.2", "C"}, {"PID-3[2]", "D"}, {"PID-5", "x#y$z@w*v!u"},
  };
  hl7t_expect_all(m, want, sizeof want / sizeof want[0]);
  cl_hl7_free(m);
}

Test(hl7v2, escape_passthrough_forms) {
  cl_hl7_msg *m = hl7t_parse("MSH|^~\\&|A|B|C|D|1||MDM^T02|1|P|2.5\r"
                             "NTE|1||a\\.sp2\\b\\.in+4\\c\\.ti-2\\d\\.ce\\e\\Zlocal\\f\\C2842\\g"
                             "\\M244241\\h\r");
  hl7t_expect(m, "NTE-3",
              "a\\.sp2\\b\\.in+4\\c\\.ti-2\\d\\.ce\\e\\Zlocal\\f\\C2842\\g\\M244241\\h");
  cl_hl7_free(m);
}

Test(hl7v2, ack_message_without_trigger) {
  cl_hl7_msg *m = hl7t_parse("MSH|^~\\&|A|B|C|D|1||ACK|9|P|2.3\rMSA|AA|7\r");
  cr_expect_str_eq(cl_hl7_header_of(m)->message_code, "ACK");
  cr_expect_str_eq(cl_hl7_header_of(m)->trigger, "");
  cl_hl7_free(m);
}

Test(hl7v2, accessors_out_of_range) {
  cl_hl7_msg *m = hl7t_load("adt_a01.hl7");
  cr_expect_null(cl_hl7_segment_at(m, 0));
  cr_expect_null(cl_hl7_segment_at(m, 8));
  cr_expect_null(cl_hl7_segment(m, "ZZZ", 1));
  cr_expect_null(cl_hl7_segment(m, "PID", 0));
  cr_expect_eq(cl_hl7_get(NULL, 1, 1, 1, 1).state, CL_HL7_ABSENT);
  const cl_hl7_seg *pid = cl_hl7_segment(m, "PID", 1);
  cr_expect_eq(cl_hl7_get(pid, 0, 1, 1, 1).state, CL_HL7_ABSENT);
  cr_expect_eq(cl_hl7_get(pid, 5, 1, 1, 2).state, CL_HL7_ABSENT);
  cr_expect_eq(cl_hl7_nreps(pid, 99), 0);
  static const char *const bad[] = {"",       "PID",         "PID-", "PID-x", "PID[0]-3",
                                    "PID-3[", "PID-3.1.1.1", "PI-3", "PID-3]"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    cr_expect_eq(cl_hl7_path(m, bad[i]).state, CL_HL7_ABSENT, "%s", bad[i]);
  cl_hl7_free(m);
}

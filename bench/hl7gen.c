/* HL7 v2 messages of the ingest benchmark (hl7gen.h). */
#include "bench/hl7gen.h"

#include <stdio.h>

static const char *const NAMES[BENCH_HL7_TYPES] = {"ADT^A01", "ORU^R01", "RDE^O11", "RAS^O17"};
static const char *const FAMILY[8] = {"O'Brien", "Garcia", "Nguyen", "Schmidt",
                                      "Okafor",  "Tanaka", "Rossi",  "Kowalski"};
static const char *const GIVEN[8] = {"Mary", "Luis", "Anh",   "Jurgen",
                                     "Ada",  "Yuki", "Marco", "Ewa"};

const char *bench_hl7_type_name(int t) { return t >= 0 && t < BENCH_HL7_TYPES ? NAMES[t] : "?"; }

int bench_hl7_type_of(unsigned i) {
  static const int mix[10] = {BENCH_HL7_ADT_A01, BENCH_HL7_ORU_R01, BENCH_HL7_RDE_O11,
                              BENCH_HL7_ORU_R01, BENCH_HL7_RAS_O17, BENCH_HL7_ADT_A01,
                              BENCH_HL7_ORU_R01, BENCH_HL7_RDE_O11, BENCH_HL7_ORU_R01,
                              BENCH_HL7_RAS_O17};
  return mix[i % 10];
}

size_t bench_hl7_message(char *out, size_t cap, int t, const char *tag, unsigned i,
                         unsigned patient) {
  const char *fam = FAMILY[patient % 8], *giv = GIVEN[(patient / 8) % 8];
  unsigned hh = 6 + i % 12, mm = i % 60, ss = (i / 60) % 60;
  int n = -1;
  switch (t) {
  case BENCH_HL7_ADT_A01:
    n = snprintf(
        out, cap,
        "MSH|^~\\&|EPIC|STMARYS|CLINLOG|HOSP|20261205%02u%02u%02u||ADT^A01^ADT_A01|%s%u|P|"
        "2.5.1|||AL|NE||UNICODE UTF-8\r"
        "EVN|A01|20261205%02u%02u%02u|||JSMITH^Smith^John^^^^^^STMARYS\r"
        "PID|1||P%07u^^^STMARYS^MR||%s^%s^Anne||19%02u%02u%02u|%c|||%u Main St^Apt "
        "4B^Springfield^IL^62701^USA^H||^PRN^PH^^1^217^555%04u|||M||ACC%u^^^STMARYS^AN\r"
        "NK1|1|%s^John|SPO^Spouse^HL70063|%u Main St^^Springfield^IL^62701\r"
        "PV1|1|I|4WEST^%u^B^STMARYS||||1234^Welby^Marcus^^^Dr.|||MED|||||||1234^Welby^"
        "Marcus^^^Dr.|IN|VN%s%u^^^STMARYS^VN|||||||||||||||||||||||||20261205%02u%02u%02u\r"
        "AL1|1|DA|70618^Penicillin^RXNORM|SV|Hives\r"
        "DG1|1||I10^Essential (primary) hypertension^I10C||20261205|A\r",
        hh, mm, ss, tag, i, hh, mm, ss, patient, fam, giv, 30 + patient % 60, 1 + patient % 12,
        1 + patient % 28, patient % 2 ? 'F' : 'M', 1 + patient % 400, patient % 10000, i, fam,
        1 + patient % 400, 400 + i % 40, tag, i, hh, mm, ss);
    break;
  case BENCH_HL7_ORU_R01:
    n = snprintf(
        out, cap,
        "MSH|^~\\&|MONITOR|STMARYS|CLINLOG|HOSP|20261205%02u%02u%02u||ORU^R01^ORU_R01|%s%u|"
        "P|2.5.1\r"
        "PID|1||P%07u^^^STMARYS^MR||%s^%s\r"
        "PV1|1|I|4WEST^412^B||||||||||||||||VN%u^^^STMARYS^VN\r"
        "OBR|1||%s%u^MONITOR|85353-1^Vital signs panel^LN|||20261205%02u%02u00\r"
        "OBX|1|NM|8867-4^Heart rate^LN||%u|/min^beats/minute^UCUM|60-100|%s|||F|||"
        "20261205%02u%02u%02u||NURSE7^Nightingale^Florence\r"
        "OBX|2|NM|8310-5^Body temperature^LN||%u.%u|Cel^degree Celsius^UCUM|36.1-37.2|N|||"
        "F|||20261205%02u%02u%02u\r"
        "OBX|3|NM|8480-6^Systolic blood pressure^LN||%u|mm[Hg]^millimeter of "
        "mercury^UCUM|90-140|N|||F|||20261205%02u%02u%02u\r"
        "OBX|4|NM|8462-4^Diastolic blood pressure^LN||%u|mm[Hg]^millimeter of "
        "mercury^UCUM|60-90|N|||F|||20261205%02u%02u%02u\r"
        "OBX|5|NM|59408-5^Oxygen saturation in Arterial blood by Pulse "
        "oximetry^LN||%u|%%^percent^UCUM|94-100|N|||F|||20261205%02u%02u%02u\r"
        "NTE|1||Oral probe\r",
        hh, mm, ss, tag, i, patient, fam, giv, patient, tag, i, hh, mm, 60 + i % 60,
        i % 60 >= 40 ? "H" : "N", hh, mm, ss, 36 + i % 2, i % 10, hh, mm, ss, 100 + i % 40, hh, mm,
        ss, 60 + i % 25, hh, mm, ss, 94 + i % 6, hh, mm, ss);
    break;
  case BENCH_HL7_RDE_O11:
    n = snprintf(out, cap,
                 "MSH|^~\\&|PHARM|STMARYS|CLINLOG|HOSP|20261205%02u%02u%02u||RDE^O11^RDE_O11|%s%u|"
                 "P|2.5\r"
                 "PID|1||P%07u^^^STMARYS^MR||%s^%s||19600315|F\r"
                 "PV1|1|I|4WEST^412^B\r"
                 "ORC|NW|ORD%s%u^EPIC|RX%s%u^PHARM||||||20261205%02u%02u%02u|||1234^Welby^Marcus\r"
                 "RXE|1^Q8H&Every 8 hours&HL70335^^20261205120000^^R|197361^Amlodipine 5 MG Oral "
                 "Tablet^RXNORM|5||mg^milligram^UCUM|TAB^Tablet^HL70292||||30|TAB^Tablet^"
                 "HL70292|2\r"
                 "RXR|PO^Oral^HL70162\r"
                 "TQ1|1||Q8H&Every 8 hours&HL70335\r",
                 hh, mm, ss, tag, i, patient, fam, giv, tag, i, tag, i, hh, mm, ss);
    break;
  case BENCH_HL7_RAS_O17:
    n = snprintf(out, cap,
                 "MSH|^~\\&|BCMA|STMARYS|CLINLOG|HOSP|20261205%02u%02u%02u||RAS^O17^RAS_O17|%s%u|P|"
                 "2.5.1\r"
                 "PID|1||P%07u^^^STMARYS^MR||%s^%s\r"
                 "ORC|RE|ORD%s%u^EPIC|RX%s%u^PHARM\r"
                 "RXA|0|1|20261205%02u%02u%02u|20261205%02u%02u%02u|00069-1530-30^Amlodipine 5mg "
                 "tab^NDC|5|mg^milligram^UCUM|||NURSE7^Nightingale^Florence|||||LOT%u|20281231|"
                 "PFZ^Pfizer^MVX|||CP|A\r"
                 "RXR|PO^Oral^HL70162\r",
                 hh, mm, ss, tag, i, patient, fam, giv, tag, i > 0 ? i - 1 : 0, tag,
                 i > 0 ? i - 1 : 0, hh, mm, ss, hh, mm, ss, 80000 + i % 1000);
    break;
  default:
    return 0;
  }
  return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

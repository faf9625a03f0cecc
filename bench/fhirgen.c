/* Generated FHIR R4 patient records for clinlog-bench ingest fhir (fhirgen.h). */
#include "bench/fhirgen.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One outpatient visit, modelled on tests/interop/fhir_write/synthetic_patient.json:
 * @U is the uuid's first group, @T the record's tag, @M its MRN digits.
 * Every resource but the Patient carries its business id in urn:clinlog:id,
 * as an export of the views does. */
static const char *const ENTRIES[] = {
    /* 1 Patient */
    "{\"fullUrl\":\"urn:uuid:@U-0000-4000-8000-000000000001\",\"resource\":{"
    "\"resourceType\":\"Patient\",\"identifier\":[{\"type\":{\"coding\":[{\"system\":"
    "\"http://terminology.hl7.org/CodeSystem/v2-0203\",\"code\":\"MR\"}]},\"system\":"
    "\"urn:oid:2.16.840.1.113883.19.5\",\"value\":\"BEN-@M\"}],\"name\":[{\"use\":\"official\","
    "\"family\":\"Okafor\",\"given\":[\"Adaeze\"]}],\"telecom\":[{\"system\":\"phone\",\"value\":"
    "\"+1-617-555-0142\",\"use\":\"mobile\"}],\"gender\":\"female\",\"birthDate\":\"1958-03-14\","
    "\"address\":[{\"use\":\"home\",\"line\":[\"41 Elm Street\"],\"city\":\"Somerville\","
    "\"state\":\"MA\",\"postalCode\":\"02144\",\"country\":\"US\"}]},"
    "\"request\":{\"method\":\"POST\",\"url\":\"Patient\"}}",
    /* 2 Encounter (finished: started and ended) */
    "{\"fullUrl\":\"urn:uuid:@U-0000-4000-8000-000000000002\",\"resource\":{"
    "\"resourceType\":\"Encounter\",\"identifier\":[{\"system\":\"urn:clinlog:id\",\"value\":"
    "\"enc-@T\"}],\"status\":\"finished\",\"class\":{\"system\":"
    "\"http://terminology.hl7.org/CodeSystem/v3-ActCode\",\"code\":\"AMB\",\"display\":"
    "\"ambulatory\"},\"type\":[{\"coding\":[{\"system\":\"http://snomed.info/sct\",\"code\":"
    "\"185349003\",\"display\":\"Encounter for check up\"}]}],\"subject\":{\"reference\":"
    "\"urn:uuid:@U-0000-4000-8000-000000000001\"},\"period\":{\"start\":"
    "\"2026-03-11T09:30:00Z\",\"end\":\"2026-03-11T10:05:00Z\"},\"reasonCode\":[{\"coding\":[{"
    "\"system\":\"http://snomed.info/sct\",\"code\":\"38341003\",\"display\":"
    "\"Hypertensive disorder\"}]}]},\"request\":{\"method\":\"POST\",\"url\":\"Encounter\"}}",
    /* 3 Condition */
    "{\"resource\":{\"resourceType\":\"Condition\",\"identifier\":[{\"system\":"
    "\"urn:clinlog:id\",\"value\":\"cond-@T\"}],\"clinicalStatus\":{\"coding\":[{\"system\":"
    "\"http://terminology.hl7.org/CodeSystem/condition-clinical\",\"code\":\"active\"}]},"
    "\"verificationStatus\":{\"coding\":[{\"system\":"
    "\"http://terminology.hl7.org/CodeSystem/condition-ver-status\",\"code\":\"confirmed\"}]},"
    "\"code\":{\"coding\":[{\"system\":\"http://hl7.org/fhir/sid/icd-10-cm\",\"code\":\"I10\","
    "\"display\":\"Essential (primary) hypertension\"}]},\"subject\":{\"reference\":"
    "\"urn:uuid:@U-0000-4000-8000-000000000001\"},\"encounter\":{\"reference\":"
    "\"urn:uuid:@U-0000-4000-8000-000000000002\"},\"recordedDate\":\"2026-03-11T09:55:00Z\"},"
    "\"request\":{\"method\":\"POST\",\"url\":\"Condition\"}}",
    /* 4 AllergyIntolerance */
    "{\"resource\":{\"resourceType\":\"AllergyIntolerance\",\"identifier\":[{\"system\":"
    "\"urn:clinlog:id\",\"value\":\"alg-@T\"}],\"clinicalStatus\":{\"coding\":[{\"system\":"
    "\"http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical\",\"code\":"
    "\"active\"}]},\"type\":\"allergy\",\"category\":[\"medication\"],\"criticality\":\"high\","
    "\"code\":{\"coding\":[{\"system\":\"http://www.nlm.nih.gov/research/umls/rxnorm\","
    "\"code\":\"7980\",\"display\":\"penicillin G\"}]},\"patient\":{\"reference\":"
    "\"urn:uuid:@U-0000-4000-8000-000000000001\"},\"recordedDate\":\"2026-03-11T09:40:00Z\"},"
    "\"request\":{\"method\":\"POST\",\"url\":\"AllergyIntolerance\"}}",
    /* 5 MedicationRequest */
    "{\"resource\":{\"resourceType\":\"MedicationRequest\",\"identifier\":[{\"system\":"
    "\"urn:clinlog:id\",\"value\":\"rx-@T\"}],\"status\":\"active\",\"intent\":\"order\","
    "\"medicationCodeableConcept\":{\"coding\":[{\"system\":"
    "\"http://www.nlm.nih.gov/research/umls/rxnorm\",\"code\":\"861007\",\"display\":"
    "\"metformin hydrochloride 500 MG Oral Tablet\"}]},\"subject\":{\"reference\":"
    "\"urn:uuid:@U-0000-4000-8000-000000000001\"},\"encounter\":{\"reference\":"
    "\"urn:uuid:@U-0000-4000-8000-000000000002\"},\"authoredOn\":\"2026-03-11T10:02:00Z\","
    "\"dosageInstruction\":[{\"text\":\"500 mg by mouth twice daily with meals\",\"route\":{"
    "\"coding\":[{\"system\":\"http://snomed.info/sct\",\"code\":\"26643006\",\"display\":"
    "\"Oral route\"}]},\"doseAndRate\":[{\"doseQuantity\":{\"value\":500,\"unit\":\"mg\","
    "\"system\":\"http://unitsofmeasure.org\",\"code\":\"mg\"}}]}]},"
    "\"request\":{\"method\":\"POST\",\"url\":\"MedicationRequest\"}}",
    /* 6 the blood-pressure panel */
    "{\"resource\":{\"resourceType\":\"Observation\",\"identifier\":[{\"system\":"
    "\"urn:clinlog:id\",\"value\":\"obs-bp-@T\"}],\"status\":\"final\",\"category\":[{"
    "\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/observation-category\","
    "\"code\":\"vital-signs\"}]}],\"code\":{\"coding\":[{\"system\":\"http://loinc.org\","
    "\"code\":\"85354-9\",\"display\":\"Blood pressure panel\"}]},\"subject\":{\"reference\":"
    "\"urn:uuid:@U-0000-4000-8000-000000000001\"},\"encounter\":{\"reference\":"
    "\"urn:uuid:@U-0000-4000-8000-000000000002\"},\"effectiveDateTime\":"
    "\"2026-03-11T09:42:00Z\",\"component\":[{\"code\":{\"coding\":[{\"system\":"
    "\"http://loinc.org\",\"code\":\"8480-6\"}]},\"valueQuantity\":{\"value\":148,\"unit\":"
    "\"mmHg\",\"system\":\"http://unitsofmeasure.org\",\"code\":\"mm[Hg]\"}},{\"code\":{"
    "\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"8462-4\"}]},\"valueQuantity\":{"
    "\"value\":92,\"unit\":\"mmHg\",\"system\":\"http://unitsofmeasure.org\",\"code\":"
    "\"mm[Hg]\"}}]},\"request\":{\"method\":\"POST\",\"url\":\"Observation\"}}"};

/* 7-11: one vital sign each: LOINC code, display, value, unit (UCUM) */
static const char VITAL[] =
    ",{\"resource\":{\"resourceType\":\"Observation\",\"identifier\":[{\"system\":"
    "\"urn:clinlog:id\",\"value\":\"obs-%s-@T\"}],\"status\":\"final\",\"category\":[{"
    "\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/observation-category\","
    "\"code\":\"vital-signs\"}]}],\"code\":{\"coding\":[{\"system\":\"http://loinc.org\","
    "\"code\":\"%s\",\"display\":\"%s\"}]},\"subject\":{\"reference\":"
    "\"urn:uuid:@U-0000-4000-8000-000000000001\"},\"encounter\":{\"reference\":"
    "\"urn:uuid:@U-0000-4000-8000-000000000002\"},\"effectiveDateTime\":"
    "\"2026-03-11T09:42:00Z\",\"valueQuantity\":{\"value\":%s,\"unit\":\"%s\",\"system\":"
    "\"http://unitsofmeasure.org\",\"code\":\"%s\"}},"
    "\"request\":{\"method\":\"POST\",\"url\":\"Observation\"}}";

static const char *const VITALS[][4] = {{"8867-4", "Heart rate", "72", "/min"},
                                        {"59408-5", "Oxygen saturation", "97", "%"},
                                        {"8310-5", "Body temperature", "36.8", "Cel"},
                                        {"9279-1", "Respiratory rate", "16", "/min"},
                                        {"29463-7", "Body weight", "71.5", "kg"}};

/* s with every "@X" of the table replaced; malloc'd, or NULL. */
static char *expand(const char *s, const char *const sub[][2], size_t nsub) {
  size_t cap = strlen(s) * 2 + 4096, n = 0;
  char *out = malloc(cap);
  if (!out)
    return NULL;
  while (*s) {
    const char *rep = NULL;
    size_t k = 0;
    for (; *s == '@' && k < nsub; k++)
      if (s[1] == sub[k][0][1]) {
        rep = sub[k][1];
        break;
      }
    size_t add = rep ? strlen(rep) : 1;
    if (n + add + 1 > cap) {
      char *p = realloc(out, cap = (n + add + 1) * 2);
      if (!p) {
        free(out);
        return NULL;
      }
      out = p;
    }
    memcpy(out + n, rep ? rep : s, add);
    n += add;
    s += rep ? 2 : 1;
  }
  out[n] = '\0';
  return out;
}

char *bench_fhir_bundle(const char *tag, unsigned i) {
  char vitals[8192] = "", one[2048], uu[16], mrn[16];
  for (size_t k = 0; k < sizeof VITALS / sizeof VITALS[0]; k++) {
    snprintf(one, sizeof one, VITAL, VITALS[k][0], VITALS[k][0], VITALS[k][1], VITALS[k][2],
             VITALS[k][3], VITALS[k][3]);
    strncat(vitals, one, sizeof vitals - strlen(vitals) - 1);
  }
  /* the record's tag into the uuid's first group: 8 hex digits, distinct per tag and i */
  unsigned h = 2166136261u;
  for (const char *p = tag; *p; p++)
    h = (h ^ (unsigned char)*p) * 16777619u;
  snprintf(uu, sizeof uu, "%08x", (h ^ (i * 2654435761u)) & 0xffffffffu);
  snprintf(mrn, sizeof mrn, "%u", i);
  char t[64];
  snprintf(t, sizeof t, "%s-%u", tag, i);
  size_t cap = strlen(vitals) + 64;
  for (size_t k = 0; k < sizeof ENTRIES / sizeof ENTRIES[0]; k++)
    cap += strlen(ENTRIES[k]) + 1;
  char *b = malloc(cap);
  if (!b)
    return NULL;
  strcpy(b, "{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":[");
  for (size_t k = 0; k < sizeof ENTRIES / sizeof ENTRIES[0]; k++) {
    if (k)
      strcat(b, ",");
    strcat(b, ENTRIES[k]);
  }
  strcat(b, vitals);
  strcat(b, "]}");
  char mrnt[96];
  snprintf(mrnt, sizeof mrnt, "%s%s", tag, mrn);
  const char *const sub[][2] = {{"@U", uu}, {"@T", t}, {"@M", mrnt}};
  char *out = expand(b, sub, 3);
  free(b);
  return out;
}

size_t bench_fhir_ndjson(const char *bundle, const char *pid, char ***lines) {
  *lines = NULL;
  json_error_t je;
  json_t *b = json_loads(bundle, 0, &je), *es = json_object_get(b, "entry");
  size_t n = json_array_size(es), k = 0;
  char *patient_url = NULL;
  if (!b || !n || !(*lines = calloc(n, sizeof **lines))) {
    json_decref(b);
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    json_t *e = json_array_get(es, i), *r = json_object_get(e, "resource");
    const char *full = json_string_value(json_object_get(e, "fullUrl"));
    const char *rt = json_string_value(json_object_get(r, "resourceType"));
    if (rt && !strcmp(rt, "Patient")) {
      json_object_set_new(r, "id", json_string(pid));
      free(patient_url);
      patient_url = full ? strdup(full) : NULL;
    }
  }
  char ref[160];
  snprintf(ref, sizeof ref, "Patient/%s", pid);
  for (size_t i = 0; i < n; i++) {
    json_t *r = json_object_get(json_array_get(es, i), "resource");
    const char *keys[] = {"subject", "patient"};
    for (size_t j = 0; j < 2; j++) {
      json_t *s = json_object_get(r, keys[j]);
      const char *v = json_string_value(json_object_get(s, "reference"));
      if (v && patient_url && !strcmp(v, patient_url))
        json_object_set_new(s, "reference", json_string(ref));
    }
    /* an NDJSON line cannot name the bundle's Encounter by its fullUrl:
     * the export's lines reference it by its logical id, which the
     * generator does not compute; the record's resources go without it */
    json_object_del(r, "encounter");
    char *line = json_dumps(r, JSON_COMPACT | JSON_REAL_PRECISION(15));
    if (line)
      (*lines)[k++] = line;
  }
  free(patient_url);
  json_decref(b);
  return k;
}

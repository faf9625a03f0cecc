"""Laboratory reports as clients write them (shared by test_fhir_write.py
and test_fhir_write_types.py): a DiagnosticReport with its result lines
contained, as the FHIR writes take them (docs/adapters.md, "FHIR writes")."""

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
LAB = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                   "code": "laboratory", "display": "Laboratory"}]}


def bmp_report(pid, rid):
    """A basic metabolic panel as a client sends it: the report with its
    result lines contained, and the order (who asked for it) contained."""
    subj = {"reference": "Patient/" + pid}
    issued = "2026-05-02T09:30:00Z"

    def line(cid, code, display, value, unit, low, high, flag=None):
        o = {"resourceType": "Observation", "id": cid, "status": "final", "category": [LAB],
             "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
             "subject": subj, "effectiveDateTime": "2026-05-02T07:00:00Z", "issued": issued,
             "performer": [{"display": "Central Lab"}],
             "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
             "referenceRange": [{"low": {"value": low, "unit": unit, "system": UCUM, "code": unit},
                                 "high": {"value": high, "unit": unit, "system": UCUM,
                                          "code": unit}}]}
        if flag:
            o["interpretation"] = [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                "code": flag}]}]
        return o

    placer = {"type": {"coding": [{"system": V2_0203, "code": "PLAC",
                                   "display": "Placer Identifier"}]},
              "system": "urn:oid:2.16.840.1.113883.3.72.5.9.1", "value": "PO-" + rid}
    return {
        "resourceType": "DiagnosticReport",
        "contained": [
            line("na", "2951-2", "Sodium", 139, "mmol/L", 136, 145),
            line("k", "2823-3", "Potassium", 5.9, "mmol/L", 3.5, 5.1, "H"),
            {"resourceType": "ServiceRequest", "id": "order", "identifier": [placer],
             "status": "unknown", "intent": "order",
             "code": {"coding": [{"system": LOINC, "code": "51990-0",
                                  "display": "Basic metabolic panel - Blood"}]},
             "subject": subj, "requester": {"display": "Dr Osei"}}],
        "identifier": [{"system": "urn:clinlog:id", "value": rid}, placer],
        "basedOn": [{"reference": "#order"}],
        "status": "final",
        "category": [{"coding": [{"system": V2_0074, "code": "CH"}]},
                     {"coding": [{"system": V2_0074, "code": "LAB", "display": "Laboratory"}]}],
        "code": {"coding": [{"system": LOINC, "code": "51990-0",
                             "display": "Basic metabolic panel - Blood"}]},
        "subject": subj,
        "effectiveDateTime": "2026-05-02T07:00:00Z",
        "issued": issued,
        "performer": [{"display": "Central Lab"}],
        "result": [{"reference": "#na"}, {"reference": "#k"}],
        "conclusion": "Mild hyperkalemia.",
    }


def panel_report(pid, rid, order=None):
    """A report of four lines as the round trip needs them: two lines of the
    same test (the view tells them apart by their occurrence), one with a
    business id of its own, one that states no time, performer nor status
    of its own besides what its report says (the view fills them in);
    basedOn a ServiceRequest on record (`order`: its reference) or none."""
    subj = {"reference": "Patient/" + pid}

    def line(cid, code, display, value, unit, **more):
        o = {"resourceType": "Observation", "id": cid, "status": "final",
             "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
             "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit}}
        o.update(more)
        return o

    rep = {
        "resourceType": "DiagnosticReport",
        "contained": [
            line("g1", "2345-7", "Glucose", 5.4, "mmol/L",
                 effectiveDateTime="2026-05-03T06:00:00Z"),
            line("g2", "2345-7", "Glucose", 7.90, "mmol/L",
                 effectiveDateTime="2026-05-03T08:00:00Z",
                 note=[{"text": "two hours after the meal"}]),
            line("a1c", "4548-4", "Hemoglobin A1c", 6.1, "%",
                 identifier=[{"system": "urn:clinlog:id", "value": rid + "-a1c"}],
                 performer=[{"display": "Reference Lab"}]),
            {"resourceType": "Observation", "id": "cmt", "status": "final",
             "code": {"text": "Specimen comment"}, "valueString": "slightly hemolyzed"}],
        "identifier": [{"system": "urn:clinlog:id", "value": rid}],
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "24323-8",
                             "display": "Comprehensive metabolic panel"}]},
        "subject": subj,
        "effectiveDateTime": "2026-05-03T06:00:00Z",
        "issued": "2026-05-03T10:15:00Z",
        "performer": [{"display": "Central Lab"}],
        "result": [{"reference": "#g1"}, {"reference": "#g2"}, {"reference": "#a1c"},
                   {"reference": "#cmt"}],
    }
    if order:
        rep["basedOn"] = [{"reference": order}]
    return rep

